# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Random-weight FireRedASR-AED checkpoints in the ORIGINAL release format, built with the original classes."""

import argparse
import shutil
from pathlib import Path

import torch
from fireredasr.models.fireredasr_aed import FireRedAsrAed

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SPECIAL_TOKENS = ["<blank>", "<unk>", "<pad>", "<sos>", "<eos>"]
CJK_START = 0x4E00


def original_aed_args(d_model, n_head, n_layers_enc, n_layers_dec, odim, kernel_size=33, pe_maxlen=5000):
    """The argument Namespace the release pickles into model.pth.tar (same field names and fixed values)."""
    return argparse.Namespace(
        blank="<blank>",
        blank_id=0,
        d_inner=4 * d_model,
        d_model=d_model,
        dropout_rate=0.1,
        eos="<eos>",
        eos_id=4,
        idim=80,
        input_length_max=60.0,
        input_length_min=0.1,
        kernel_size=kernel_size,
        n_head=n_head,
        n_layers_dec=n_layers_dec,
        n_layers_enc=n_layers_enc,
        odim=odim,
        output_length_max=250,
        output_length_min=1,
        pad="<pad>",
        pad_id=2,
        pe_maxlen=pe_maxlen,
        residual_dropout=0.1,
        sos="<sos>",
        sos_id=3,
        unk="<unk>",
    )


def build_original_aed(args, seed=0) -> FireRedAsrAed:
    """The original model with PyTorch's default random initialisation, in eval mode."""
    torch.manual_seed(seed)
    return FireRedAsrAed.from_args(args).eval()


def original_state_dict(model: FireRedAsrAed) -> dict:
    """The state dict as the release stores it: the tied embedding and output projection as two tensors."""
    state_dict = model.state_dict()
    state_dict["decoder.tgt_word_prj.weight"] = state_dict["decoder.tgt_word_prj.weight"].clone()
    return state_dict


def write_vocabulary(path, vocab_size):
    """dict.txt: the five special tokens, the upper-case pieces of the fixture dictionary, then CJK characters."""
    fixture_pieces = [
        line.split()[0]
        for line in (FIXTURES / "aed-tiny" / "dict.txt").read_text(encoding="utf-8").splitlines()
        if not "\u4e00" <= line[0] <= "\u9fff" and line.split()[0] not in SPECIAL_TOKENS
    ]
    tokens = SPECIAL_TOKENS + fixture_pieces
    tokens += [chr(CJK_START + i) for i in range(vocab_size - len(tokens))]
    Path(path).write_text("".join(f"{token} {index}\n" for index, token in enumerate(tokens)), encoding="utf-8")


def write_original_aed_dir(directory, args, state_dict) -> Path:
    """An original AED directory: model.pth.tar, cmvn.ark and the sentencepiece model of the tiny fixture, dict.txt."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"args": args, "model_state_dict": state_dict}, directory / "model.pth.tar")
    shutil.copy(FIXTURES / "aed-tiny" / "cmvn.ark", directory / "cmvn.ark")
    shutil.copy(FIXTURES / "aed-tiny" / "train_bpe1000.model", directory / "train_bpe1000.model")
    write_vocabulary(directory / "dict.txt", args.odim)
    return directory
