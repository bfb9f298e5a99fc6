# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""`fireredasr-hf export`: the arguments and the run of the export command (the command line lists it).

fireredasr-hf export --format sherpa-onnx FireRedTeam/FireRedASR-AED-L sherpa-fireredasr-aed-l --int8
"""

import argparse
import sys

FORMATS = ("sherpa-onnx",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="converted model directory, original FireRedASR-AED directory or Hub repo id",
    )
    parser.add_argument("output_dir", metavar="OUT", help="folder to write the exported files to")
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="sherpa-onnx: encoder.onnx, decoder.onnx and tokens.txt for sherpa-onnx's FireRedASR recogniser "
        "(plus ctc.onnx for a model with a CTC head)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="int8 models (onnxruntime dynamic quantization: about 4x smaller, 2x faster on CPUs), written as "
        "encoder.int8.onnx, decoder.int8.onnx",
    )
    parser.add_argument("--revision", help="branch, tag or commit of a Hub model")


def run(args: argparse.Namespace) -> int:
    """Exports; returns the exit code. Raises `ExportError` for a model or argument it cannot export."""
    from .sherpa import export_sherpa_onnx

    result = export_sherpa_onnx(args.model, args.output_dir, int8=args.int8, revision=args.revision)
    for name, path in result.files.items():
        print(f"{name:8s} {path}", file=sys.stderr)
    arguments = ", ".join(f"{name}={path!r}" for name, path in result.recognizer_kwargs().items())
    print(
        "Transcribe with sherpa-onnx (pip install sherpa-onnx):\n"
        f"  recognizer = sherpa_onnx.OfflineRecognizer.from_fire_red_asr({arguments})",
        file=sys.stderr,
    )
    return 0
