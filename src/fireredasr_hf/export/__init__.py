# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Exporters of FireRedASR models to other runtimes (sherpa-onnx).

    from fireredasr_hf.export import export_sherpa_onnx

The names are imported from `sherpa` on first use, so that `fireredasr-hf --help` (which imports `export.command`)
does not load torch.
"""

__all__ = [
    "DECODER_INPUT_NAMES",
    "ExportError",
    "SherpaOnnxExport",
    "decoder_feeds",
    "export_sherpa_onnx",
    "write_tokens",
]


def __getattr__(name):
    if name in __all__:
        from . import sherpa

        return getattr(sherpa, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
