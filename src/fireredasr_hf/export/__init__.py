# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Exporters of FireRedASR models to other runtimes (sherpa-onnx).

The names below are imported on first use, so that `fireredasr-hf --help` (which imports `export.command`) does not
load torch.
"""

import importlib

_EXPORTS = {
    "DECODER_INPUT_NAMES": "sherpa",
    "ExportError": "sherpa",
    "SherpaOnnxExport": "sherpa",
    "decoder_feeds": "sherpa",
    "export_sherpa_onnx": "sherpa",
    "write_tokens": "sherpa",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return sorted([*globals(), *__all__])
