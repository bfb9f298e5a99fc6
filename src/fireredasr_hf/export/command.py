# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""`fireredasr-hf export`: a FireRedASR-AED model in another runtime's format (sherpa-onnx).

fireredasr-hf export --format sherpa-onnx FireRedTeam/FireRedASR-AED-L sherpa-fireredasr-aed-l --int8
"""

import argparse
import sys

from ..commands import Command, CommandError

FORMATS = ("sherpa-onnx",)


class ExportCommand(Command):
    name = "export"
    help = "export a FireRedASR-AED model for another runtime (sherpa-onnx, float32 or int8)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
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

    def run(self, args: argparse.Namespace) -> int:
        from .sherpa import ExportError, export_sherpa_onnx

        try:
            result = export_sherpa_onnx(args.model, args.output_dir, int8=args.int8, revision=args.revision)
        except ExportError as error:
            raise CommandError(str(error)) from error
        for name, path in result.files.items():
            print(f"{name:8s} {path}", file=sys.stderr)
        arguments = ", ".join(f"{name}={path!r}" for name, path in result.recognizer_kwargs().items())
        print(
            "Transcribe with sherpa-onnx (pip install sherpa-onnx):\n"
            f"  recognizer = sherpa_onnx.OfflineRecognizer.from_fire_red_asr({arguments})",
            file=sys.stderr,
        )
        return 0
