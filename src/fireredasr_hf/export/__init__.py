# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Exporters of FireRedASR models to other runtimes (sherpa-onnx)."""

from .sherpa import ExportError, SherpaOnnxExport, export_sherpa_onnx, write_tokens

__all__ = ["ExportError", "SherpaOnnxExport", "export_sherpa_onnx", "write_tokens"]
