# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Conversion of an original FireRedASR-AED or FireRedASR2-AED directory (`model.pth.tar`, `cmvn.ark`, `dict.txt`,
`train_bpe1000.model`) into a transformers model directory, optionally with FireRedASR2's LSTM language model.

The two releases share the layout; FireRedASR2-AED adds a CTC head on the encoder (`ctc.ctc_lo.*`), which is how
the converter tells them apart."""

from pathlib import Path

import torch

from ..configuration_fireredasr import FireRedAedConfig
from ..feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from ..modeling_fireredasr_aed import FireRedAedForConditionalGeneration
from ..processing_fireredasr import FireRedAsrProcessor
from ..tokenization_fireredasr import FireRedAsrTokenizer
from .common import (
    ConversionError,
    atomic_output_dir,
    check_all_used,
    check_float32_checkpoint,
    check_weight_values,
    convert_encoder_state_dict,
    encoder_config_from_args,
    load_original_checkpoint,
    rename_keys,
    required_arg,
    save_remote_code,
)
from .lm import load_lm
from .model_card import write_model_card

AED_FILES = ("model.pth.tar", "cmvn.ark", "dict.txt", "train_bpe1000.model")

# (original regex, our name) for the decoder keys with the `decoder.` prefix removed.
DECODER_KEY_RENAMES = [
    (r"^tgt_word_emb\.weight$", "model.decoder.embed_tokens.weight"),
    (r"^layer_stack\.(\d+)\.self_attn_norm\.", r"model.decoder.layers.\1.self_attn_layer_norm."),
    (r"^layer_stack\.(\d+)\.cross_attn_norm\.", r"model.decoder.layers.\1.encoder_attn_layer_norm."),
    (r"^layer_stack\.(\d+)\.mlp_norm\.", r"model.decoder.layers.\1.final_layer_norm."),
    (r"^layer_stack\.(\d+)\.self_attn\.w_qs\.", r"model.decoder.layers.\1.self_attn.q_proj."),
    (r"^layer_stack\.(\d+)\.self_attn\.w_ks\.", r"model.decoder.layers.\1.self_attn.k_proj."),
    (r"^layer_stack\.(\d+)\.self_attn\.w_vs\.", r"model.decoder.layers.\1.self_attn.v_proj."),
    (r"^layer_stack\.(\d+)\.self_attn\.fc\.", r"model.decoder.layers.\1.self_attn.o_proj."),
    (r"^layer_stack\.(\d+)\.cross_attn\.w_qs\.", r"model.decoder.layers.\1.encoder_attn.q_proj."),
    (r"^layer_stack\.(\d+)\.cross_attn\.w_ks\.", r"model.decoder.layers.\1.encoder_attn.k_proj."),
    (r"^layer_stack\.(\d+)\.cross_attn\.w_vs\.", r"model.decoder.layers.\1.encoder_attn.v_proj."),
    (r"^layer_stack\.(\d+)\.cross_attn\.fc\.", r"model.decoder.layers.\1.encoder_attn.o_proj."),
    (r"^layer_stack\.(\d+)\.mlp\.w_1\.", r"model.decoder.layers.\1.mlp.fc1."),
    (r"^layer_stack\.(\d+)\.mlp\.w_2\.", r"model.decoder.layers.\1.mlp.fc2."),
    (r"^layer_norm_out\.", "model.decoder.layer_norm."),
]
# The sinusoid is recomputed on the fly; the output projection is tied to the embedding (handled below).
DECODER_DROPPED_KEYS = {"positional_encoding.pe", "tgt_word_prj.weight"}
# FireRedASR2-AED's CTC branch (`CTC.ctc_lo`, on the final encoder output).
CTC_KEY_RENAMES = {"ctc.ctc_lo.weight": "ctc_head.weight", "ctc.ctc_lo.bias": "ctc_head.bias"}

# FireRedASR2 removes these from its transcripts (`re.sub(r"(<blank>)|(<sil>)", "", text)`); special tokens are
# skipped when decoding with `skip_special_tokens=True`.
V2_SPECIAL_TOKENS = ("<sil>",)


def check_aed_dir(input_dir: Path) -> None:
    missing = [name for name in AED_FILES if not (input_dir / name).is_file()]
    if missing:
        found = sorted(p.name for p in input_dir.iterdir()) if input_dir.is_dir() else []
        raise ConversionError(
            f"{input_dir} is not an original FireRedASR-AED directory: missing {', '.join(missing)} "
            f"(found: {', '.join(found) or 'nothing'})."
        )


def aed_config_from_args(args, source: str, use_ctc_head: bool = False, lm_config=None) -> FireRedAedConfig:
    d_model = required_arg(args, "d_model", source)
    return FireRedAedConfig(
        use_ctc_head=use_ctc_head,
        lm_config=lm_config,
        encoder_config=encoder_config_from_args(args, source),
        vocab_size=required_arg(args, "odim", source),
        hidden_size=d_model,
        num_hidden_layers=required_arg(args, "n_layers_dec", source),
        num_attention_heads=required_arg(args, "n_head", source),
        intermediate_size=4 * d_model,
        max_position_embeddings=required_arg(args, "pe_maxlen", source),
        dropout=getattr(args, "residual_dropout", 0.1),
        pad_token_id=required_arg(args, "pad_id", source),
        bos_token_id=required_arg(args, "sos_id", source),
        eos_token_id=required_arg(args, "eos_id", source),
        decoder_start_token_id=required_arg(args, "sos_id", source),
        max_audio_seconds=float(getattr(args, "input_length_max", 60.0)),
    )


def has_ctc_head(state_dict: dict) -> bool:
    """Whether an original AED state dict is FireRedASR2-AED's (with the CTC branch)."""
    return any(key.startswith("ctc.") for key in state_dict)


def convert_aed_state_dict(state_dict: dict, config: FireRedAedConfig) -> dict[str, torch.Tensor]:
    """Our state dict (without the tied output projection) from the original one; strict in both directions."""
    unknown = [key for key in state_dict if not key.startswith(("encoder.", "decoder.")) and key not in CTC_KEY_RENAMES]
    if unknown:
        raise ConversionError(f"Unexpected tensors in the original AED checkpoint: {', '.join(unknown[:10])}")
    converted = {f"model.encoder.{k}": v for k, v in convert_encoder_state_dict(state_dict, "encoder.").items()}
    converted.update(
        {ours: state_dict[original] for original, ours in CTC_KEY_RENAMES.items() if original in state_dict}
    )

    decoder_keys = [key[len("decoder.") :] for key in state_dict if key.startswith("decoder.")]
    for old, new in rename_keys(decoder_keys, DECODER_KEY_RENAMES, DECODER_DROPPED_KEYS, "decoder").items():
        if new is not None:
            converted[new] = state_dict["decoder." + old]

    # The release ties the output projection to the embedding but stores both matrices; loading copies the
    # embedding first and the projection second into the one shared Parameter, so the projection is what counts.
    projection = state_dict.get("decoder.tgt_word_prj.weight")
    if projection is not None:
        embedding = converted.get("model.decoder.embed_tokens.weight")
        if embedding is not None and not torch.equal(embedding, projection):
            difference = (embedding.float() - projection.float()).abs().max().item()
            print(
                "note: decoder.tgt_word_emb.weight differs from decoder.tgt_word_prj.weight "
                f"(max |diff| {difference:.3g}); using tgt_word_prj.weight, as the original code effectively does."
            )
        converted["model.decoder.embed_tokens.weight"] = projection
    return converted


def convert_aed_checkpoint(
    input_dir: str | Path,
    output_dir: str | Path,
    dtype: str = "float32",
    max_shard_size: str = "5GB",
    source: str | None = None,
    repo_id: str | None = None,
    lm_dir: str | Path | None = None,
    fireredasr_version: int | None = None,
) -> Path:
    """
    Convert an original FireRedASR-AED or FireRedASR2-AED directory; returns the output directory (written all at
    once: a failed conversion leaves nothing there).

    FireRedASR2-AED (recognised by its CTC head) converts with the head (`ctc_head`, for token timestamps), a
    tokenizer that lower-cases transcripts as FireRedASR2 does, and the FireRedASR2 model card. `lm_dir` adds
    FireRedASR2's LSTM language model (`lm_dir/model.pth.tar`) as the `lm` submodule, for shallow fusion
    (`lm_weight` in `generate`). `fireredasr_version` (1 or 2), when given, must match what the checkpoint is.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_aed_dir(input_dir)
    checkpoint_path = input_dir / "model.pth.tar"
    package = load_original_checkpoint(checkpoint_path)
    if "model_state_dict" not in package:
        raise ConversionError(f"{checkpoint_path} holds no `model_state_dict`.")
    check_float32_checkpoint(package["model_state_dict"], checkpoint_path)
    for key, tensor in package["model_state_dict"].items():
        check_weight_values(key, tensor, checkpoint_path)
    version = 2 if has_ctc_head(package["model_state_dict"]) else 1
    if fireredasr_version is not None and fireredasr_version != version:
        raise ConversionError(
            f"{checkpoint_path} is a FireRedASR{'2' if version == 2 else ''}-AED checkpoint "
            f"({'with' if version == 2 else 'without'} a CTC head), not FireRedASR{'2' if version == 1 else ''}-AED "
            f"as fireredasr_version={fireredasr_version} says."
        )
    lm_config, lm_state_dict = load_lm(lm_dir) if lm_dir is not None else (None, {})
    for key, tensor in lm_state_dict.items():
        check_weight_values(key, tensor, Path(lm_dir) / "model.pth.tar")
    vocab_size = required_arg(package["args"], "odim", str(checkpoint_path))
    if lm_config is not None and lm_config.vocab_size != vocab_size:
        raise ConversionError(
            f"--lm_dir {lm_dir}: the language model predicts {lm_config.vocab_size} tokens but the AED {vocab_size}: "
            "shallow fusion needs the same vocabulary."
        )
    config = aed_config_from_args(package["args"], str(checkpoint_path), use_ctc_head=version == 2, lm_config=lm_config)
    state_dict = convert_aed_state_dict(package["model_state_dict"], config)
    state_dict.update(lm_state_dict)

    with torch.device("meta"):
        model = FireRedAedForConditionalGeneration(config)
    tied_keys = set(model.all_tied_weights_keys)
    expected = {key for key in model.state_dict() if key not in tied_keys}
    check_all_used(expected, set(state_dict), "AED model")
    torch_dtype = getattr(torch, dtype)
    for key, tensor in state_dict.items():
        state_dict[key] = tensor.to(torch_dtype)
        if torch_dtype != tensor.dtype:
            check_weight_values(key, state_dict[key], f"{checkpoint_path} cast to {dtype}")
    model.load_state_dict(state_dict, strict=False, assign=True)
    model.tie_weights()
    model.generation_config = model.release_generation_config()
    model.eval()

    try:
        tokenizer = FireRedAsrTokenizer(
            vocab_file=str(input_dir / "dict.txt"),
            spm_file=str(input_dir / "train_bpe1000.model"),
            lowercase_output=version == 2,
        )
        feature_extractor = FireRedAsrFeatureExtractor.from_kaldi_cmvn(str(input_dir / "cmvn.ark"))
    except ValueError as error:  # a damaged dict.txt, SentencePiece model or cmvn.ark (the message names it)
        raise ConversionError(str(error)) from None
    if version == 2:
        extra = [token for token in V2_SPECIAL_TOKENS if token in tokenizer.encoder]
        if extra:
            tokenizer.add_special_tokens({"additional_special_tokens": extra})
    if len(tokenizer) != config.vocab_size:
        raise ConversionError(
            f"dict.txt has {len(tokenizer)} tokens but the model predicts {config.vocab_size}; wrong dict.txt?"
        )
    processor = FireRedAsrProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)

    tokenizer.register_for_auto_class()
    with atomic_output_dir(output_dir) as work_dir:
        save_remote_code(model, model.config, processor, work_dir)
        model.save_pretrained(work_dir, max_shard_size=max_shard_size)
        processor.save_pretrained(work_dir)
        write_model_card(
            work_dir,
            variant="aed",
            source=source or str(input_dir),
            repo_id=repo_id,
            version=version,
            has_lm=lm_config is not None,
        )
    return output_dir
