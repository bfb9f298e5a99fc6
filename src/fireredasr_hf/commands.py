# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""What the `fireredasr-hf` subcommands share: the `Command` base class, `CommandError`, and the model and decoding
arguments that build the engine's `Transcriber`.

A subcommand is a `Command` subclass, in `cli.py` or in the module of the application it runs (e.g.
`serving/command.py`), listed in `cli.COMMANDS`. This module imports no application, so any of them can import it.
"""

import abc
import argparse


class Command(abc.ABC):
    """A subcommand: its name, help line, arguments and what it does (returning the process exit code)."""

    name: str
    help: str

    @abc.abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    @abc.abstractmethod
    def run(self, args: argparse.Namespace) -> int: ...


class CommandError(Exception):
    """A problem with the command's arguments or inputs, reported as one line and exit code 2."""


# ----------------------------------------------------------------------------------------------------------------
# The engine's options as command-line arguments (transcribe, eval, serve).

# Decoding options: (flag, generate() argument, help). Which model variants each applies to is the engine's
# `GENERATION_OPTIONS`.
DECODING_OPTIONS = [
    ("--num-beams", "num_beams", int, "beam size (default: the model's generation_config, 3)"),
    ("--max-new-tokens", "max_new_tokens", int, "cap on tokens per segment"),
    ("--softmax-smoothing", "softmax_smoothing", float, "AED: logit temperature (release: 1.25)"),
    ("--aed-length-penalty", "gnmt_length_penalty", float, "AED: GNMT length penalty (release: 0.6)"),
    ("--eos-penalty", "eos_penalty", float, "AED: <eos> log-probability scale (release: 1.0)"),
    (
        "--lm-weight",
        "lm_weight",
        float,
        (
            "AED: weight of the model's LSTM language model in the beam search (FireRedASR2's --elm_weight; needs a "
            "model converted with --lm_dir; default 0)"
        ),
    ),
    ("--repetition-penalty", "repetition_penalty", float, "LLM: repetition penalty (release: 3.0)"),
    ("--llm-length-penalty", "length_penalty", float, "LLM: beam length penalty (release: 1.0)"),
]
FLAGS = {name: flag for flag, name, _, _ in DECODING_OPTIONS}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and decoding")
    group.add_argument(
        "--model",
        required=True,
        help="converted model directory, original FireRedASR directory or Hub repo id (converted once, cached)",
    )
    group.add_argument("--revision", help="branch, tag or commit of a Hub model")
    group.add_argument("--device", help="cpu, cuda, cuda:1, mps, ... (default: cuda if available, else cpu)")
    group.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16", "float16"],
        default="auto",
        help="weights and compute dtype (default: as stored: float32 for AED, bfloat16 for LLM conversions)",
    )
    group.add_argument(
        "--quantize",
        choices=["int8"],
        help="int8: int8 linear layers for CPU inference (dynamic quantization; runs on the CPU, several times faster "
        "than float32 there; see docs/performance.md)",
    )
    group.add_argument("--batch-size", type=int, default=8, help="segments decoded together (default: 8)")
    group.add_argument(
        "--num-threads",
        type=int,
        help="CPU threads for torch (default: the physical cores this process may use, or OMP_NUM_THREADS)",
    )
    for flag, name, kind, help_text in DECODING_OPTIONS:
        group.add_argument(flag, dest=name, type=kind, help=help_text)
    group.add_argument(
        "--vad",
        choices=["firered", "silero", "energy"],
        help="voice activity detector that splits long audio: firered (FireRedVAD, the default), silero (Silero VAD, "
        "from the silero-vad package) or energy (a frame-energy threshold, for clean recordings)",
    )
    group.add_argument(
        "--vad-model",
        metavar="MODEL",
        help="the FireRedVAD model: a directory (as downloaded from the Hub, the ONNX exports with cmvn.ark, or "
        "converted) or a Hub repo id (default: $FIREREDASR_HF_VAD_MODEL, else FireRedTeam/FireRedVAD)",
    )
    group.add_argument(
        "--max-segment-s",
        type=float,
        help="audio longer than this is split into segments of at most this length (default: the model's trained "
        "limit, 60 s for AED, 30 s for LLM)",
    )


def add_punctuation_argument(group) -> None:
    """`--punctuation MODEL` (transcribe, serve); read it with `punctuation_option`."""
    from .transcription import AUTO_PUNCTUATION

    group.add_argument(
        "--punctuation",
        metavar="MODEL",
        default=AUTO_PUNCTUATION,
        help="FireRedPunc model that punctuates the transcripts and cuts them into sentences: a directory "
        "(original or converted) or a Hub repo id; none: no punctuation (default: "
        "$FIREREDASR_HF_PUNCTUATION_MODEL, else FireRedTeam/FireRedPunc, if it can be obtained; otherwise the "
        "transcripts stay unpunctuated, with a note)",
    )


def punctuation_option(args: argparse.Namespace) -> str | None:
    """The engine's `punctuation` for `--punctuation` (None for `none`)."""
    return None if args.punctuation.lower() == "none" else args.punctuation


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("datasets saved with save_to_disk")
    group.add_argument("--split", help="split of a DatasetDict (default: its only split)")
    group.add_argument("--audio-column", default="audio", help="audio column (default: audio)")
    group.add_argument("--id-column", default="id", help="utterance id column (default: id; else the row number)")


def transcriber_options(args: argparse.Namespace, timestamps: bool | str | None = False, punctuation=None) -> dict:
    """The engine's `Transcriber` arguments (besides the model) for the options given on the command line."""
    if args.vad_model is not None and args.vad not in (None, "firered"):
        raise CommandError("--vad-model names a FireRedVAD model: it goes with --vad firered")
    return {
        "revision": args.revision,
        "device": args.device,
        "dtype": args.dtype,
        "quantize": args.quantize,
        "num_threads": args.num_threads,
        "batch_size": args.batch_size,
        "generate_kwargs": {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None},
        "option_label": FLAGS.get,
        "vad": args.vad,
        "vad_model": args.vad_model,
        "max_segment_s": args.max_segment_s,
        "timestamps": timestamps,
        "keep_pauses": getattr(args, "keep_pauses", False),
        "punctuation": punctuation,
    }


def build_transcriber(args: argparse.Namespace, timestamps: bool | str | None = False, punctuation=None):
    """The engine's `Transcriber` for `--model` and the decoding options given on the command line; prints the
    engine's notes (e.g. that the default punctuation model is not available) once."""
    import sys

    from .transcription import Transcriber

    transcriber = Transcriber(args.model, **transcriber_options(args, timestamps, punctuation))
    for note in transcriber.notes:
        print(note, file=sys.stderr)
    return transcriber
