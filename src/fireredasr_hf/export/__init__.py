# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Exporters of FireRedASR models to other runtimes (sherpa-onnx)."""

from .sherpa import (
    DECODER_INPUT_NAMES,
    ExportError,
    SherpaOnnxExport,
    decoder_feeds,
    export_sherpa_onnx,
    write_tokens,
)

__all__ = [
    "DECODER_INPUT_NAMES",
    "ExportError",
    "SherpaOnnxExport",
    "decoder_feeds",
    "export_sherpa_onnx",
    "write_tokens",
]
