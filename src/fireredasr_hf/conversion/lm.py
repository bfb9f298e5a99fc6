# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Conversion of FireRedASR2's LSTM language model (`LM_DIR/model.pth.tar`, FireRedASR2's `elm_dir`) into the
`lm` submodule of a converted FireRedASR2-AED model.

The original `LstmLm` (`fireredasr2/models/lstm_lm.py`): `embedding` (idim x embedding_dim, padding id 2), an
`nn.LSTM` of `num_layers` layers (embedding_dim -> hidden_size) and `fc` (embedding_dim -> odim), tied to the
embedding when `tie_weights`. Its `from_args` fixes `<pad>`/`<sos>`/`<eos>` to 2/3/4.
"""

from pathlib import Path

import torch

from ..configuration_fireredasr import FireRedLstmLmConfig
from .common import ConversionError, load_original_checkpoint, required_arg

LM_FILE = "model.pth.tar"
# `LstmLm.from_args` overwrites whatever the checkpoint says with these.
LM_SPECIAL_IDS = {"pad_token_id": 2, "bos_token_id": 3, "eos_token_id": 4}


def lm_config_from_args(args, source: str) -> FireRedLstmLmConfig:
    input_size, output_size = required_arg(args, "idim", source), required_arg(args, "odim", source)
    embedding_size, hidden_size = required_arg(args, "embedding_dim", source), required_arg(args, "hidden_size", source)
    if input_size != output_size:
        raise ConversionError(
            f"{source}: the language model reads {input_size} token ids but predicts {output_size}; shallow fusion "
            "needs one vocabulary."
        )
    if embedding_size != hidden_size:
        # The release applies `fc` (embedding_dim inputs) to the LSTM output (hidden_size): it only runs when equal.
        raise ConversionError(
            f"{source}: embedding_dim {embedding_size} differs from hidden_size {hidden_size}; the original LstmLm "
            "cannot run such a model."
        )
    return FireRedLstmLmConfig(
        vocab_size=output_size,
        hidden_size=hidden_size,
        num_hidden_layers=required_arg(args, "num_layers", source),
        dropout=float(getattr(args, "dropout", 0.0)),
        tie_word_embeddings=bool(required_arg(args, "tie_weights", source)),
        **LM_SPECIAL_IDS,
    )


def convert_lm_state_dict(state_dict: dict, config: FireRedLstmLmConfig, source: str) -> dict[str, torch.Tensor]:
    """Our `lm.*` tensors from the original state dict; every tensor is used or dropped for a stated reason."""
    expected = {"embedding.weight": "lm.embed_tokens.weight", "fc.bias": "lm.proj_out.bias"}
    for layer in range(config.num_hidden_layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            expected[f"lstm.{name}_l{layer}"] = f"lm.lstm.{name}_l{layer}"
    if config.tie_word_embeddings:
        # The tied output matrix is the embedding (stored under both names); it must equal it.
        projection = state_dict.get("fc.weight")
        if projection is not None and not torch.equal(projection, state_dict.get("embedding.weight", projection)):
            raise ConversionError(f"{source}: tie_weights is set but fc.weight differs from embedding.weight.")
        dropped = {"fc.weight"}
    else:
        expected["fc.weight"] = "lm.proj_out.weight"
        dropped = set()
    unexpected = sorted(set(state_dict) - set(expected) - dropped)
    missing = sorted(set(expected) - set(state_dict))
    if unexpected:
        raise ConversionError(f"Unexpected tensors in the language model {source}: {', '.join(unexpected[:10])}")
    if missing:
        raise ConversionError(f"The language model {source} lacks tensors: {', '.join(missing[:10])}")
    return {ours: state_dict[original] for original, ours in expected.items()}


def load_lm(lm_dir: str | Path) -> tuple[FireRedLstmLmConfig, dict[str, torch.Tensor]]:
    """The configuration and `lm.*` tensors of an original language-model directory."""
    lm_dir = Path(lm_dir)
    path = lm_dir / LM_FILE
    if not path.is_file():
        found = ", ".join(sorted(p.name for p in lm_dir.iterdir())) if lm_dir.is_dir() else "no such directory"
        raise ConversionError(f"--lm_dir {lm_dir}: expected the language model in {LM_FILE} (found: {found}).")
    package = load_original_checkpoint(path)
    if "model_state_dict" not in package:
        raise ConversionError(f"{path} holds no `model_state_dict`.")
    config = lm_config_from_args(package["args"], str(path))
    return config, convert_lm_state_dict(package["model_state_dict"], config, str(path))
