# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Random-weight FireRedASR-AED checkpoints in the ORIGINAL release format, built with the original classes."""

import argparse
import math
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


# Decoder reshaping for realistic decode lengths (see bench_aed_speed.py's docstring). The positional encoding's
# dimension 2i carries sin(t * 10000 ** (-2i / d_model)); the `<eos>` row reads one that rises over ~3.2 x the
# target length, so `<eos>` wins after about `eos_after_tokens` tokens.
OFFSET_BIAS = 100.0
LOGIT_SCALE = 10.0
EOS_RAMP = 68.0
EOS_BIAS = 10.0
CROSS_QUERY_SCALE = 20.0
CROSS_OUTPUT_SCALE = 5.0
RAMP_QUARTER_PERIODS_PER_TOKEN = 348 / 110


def ramp_dimension(d_model: int, eos_after_tokens: float) -> int:
    """The even positional-encoding dimension whose sinusoid reaches its maximum after ~3.2 x the target length."""
    frequency = math.pi / 2 / (RAMP_QUARTER_PERIODS_PER_TOKEN * eos_after_tokens)
    return 2 * round(d_model * math.log(1 / frequency) / math.log(10000.0) / 2)


def shape_decoder(model: FireRedAsrAed, seed: int = 1, eos_after_tokens: float = 110) -> None:
    """Reshape a random original decoder so that it ends its transcripts after about `eos_after_tokens` tokens:
    - one positional-encoding dimension (`ramp_dimension`) rises slowly; the `<eos>` output row reads it;
    - the slowest one (~0 for the first thousand positions) carries constant logit offsets that keep `<blank>
      <unk> <pad> <sos>` out of the transcripts;
    - the final LayerNorm gets random-sign gains (the tied embedding would otherwise make every step repeat its input
      token), and sharper cross-attention lets the audio steer the tokens.
    The compute per step depends only on the shapes: this changes the number of steps, not their cost. Tuned at
    d_model 512 (ramp dimension 300, `<eos>` after ~110 tokens); the embedding scale keeps the logits' size at other
    widths."""
    decoder = model.decoder
    d_model = decoder.tgt_word_emb.weight.shape[1]
    ramp_dim, offset_dim = ramp_dimension(d_model, eos_after_tokens), d_model - 2
    clean_dims = [ramp_dim, offset_dim]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        table = decoder.tgt_word_emb.weight  # the same Parameter as decoder.tgt_word_prj.weight
        table.normal_(0.0, 0.044 * math.sqrt(512 / d_model), generator=generator)
        table[:, clean_dims] = 0.0
        table[: model.eos_id, offset_dim] = -1.0  # <blank> <unk> <pad> <sos>: logit -100
        table[model.eos_id] = 0.0
        table[model.eos_id, ramp_dim] = EOS_RAMP
        table[model.eos_id, offset_dim] = EOS_BIAS / OFFSET_BIAS
        for layer in decoder.layer_stack:
            layer.cross_attn.w_qs.weight.mul_(CROSS_QUERY_SCALE)
            layer.cross_attn.fc.weight.mul_(CROSS_OUTPUT_SCALE)
            for projection in (layer.self_attn.fc, layer.cross_attn.fc, layer.mlp.w_2):
                projection.weight[clean_dims] = 0.0
                projection.bias[clean_dims] = 0.0
        signs = torch.randint(0, 2, decoder.layer_norm_out.weight.shape, generator=generator) * 2.0 - 1.0
        decoder.layer_norm_out.weight.copy_(LOGIT_SCALE * signs)
        decoder.layer_norm_out.weight[ramp_dim] = LOGIT_SCALE
        decoder.layer_norm_out.weight[offset_dim] = 0.0
        decoder.layer_norm_out.bias.zero_()
        decoder.layer_norm_out.bias[offset_dim] = OFFSET_BIAS


def looped_utterances(durations, offset: int = 0, sampling_rate: int = 16000) -> list:
    """Float32 waveforms of the given lengths (seconds): the fixture clips p01-p10 looped, each from another clip on."""
    import numpy as np
    import soundfile

    clips = [soundfile.read(path, dtype="float32")[0] for path in sorted((FIXTURES / "audio").glob("p*.wav"))]
    waveforms = []
    for index, seconds in enumerate(durations):
        start = (index + offset) % len(clips)
        looped = np.concatenate((clips[start:] + clips[:start]) * 4)
        waveforms.append(looped[: int(seconds * sampling_rate)])
    return waveforms


def build_converted_aed(
    workdir, encoder_layers: int, decoder_layers: int, eos_after_tokens: float, d_model: int = 1280, n_head: int = 20
) -> Path:
    """A random original-format AED at FireRedASR-AED-L's width and vocabulary (7832) with the given depth, its
    decoder reshaped for realistic lengths (`shape_decoder`), converted; returns the converted directory."""
    from fireredasr_hf.conversion import convert_checkpoint

    workdir = Path(workdir)
    model_args = original_aed_args(
        d_model=d_model, n_head=n_head, n_layers_enc=encoder_layers, n_layers_dec=decoder_layers, odim=7832
    )
    original = build_original_aed(model_args)
    shape_decoder(original, eos_after_tokens=eos_after_tokens)
    write_original_aed_dir(workdir / "original", model_args, original_state_dict(original))
    del original
    return convert_checkpoint(workdir / "original", workdir / "converted")
