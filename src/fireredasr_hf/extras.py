# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The optional dependencies of fireredasr-hf, by task, and the error that names the extra to install.

`pip install fireredasr-hf` transcribes (converted or original checkpoints, wav/flac/ogg/mp3 at any rate and
length, the command line and the Python API); each further task has an extra, `pip install 'fireredasr-hf[EXTRA]'`, listed in
`EXTRAS` (import name -> pip requirement) and in pyproject.toml (`[project.optional-dependencies]`, which a test
keeps in step with this table). Code that needs one calls `require` first:

    require("data", "fireredasr-hf eval")   # MissingDependencyError naming the extra if datasets or jiwer is missing

A new extra (or a new package in one) goes into both `EXTRAS` and pyproject.toml.
"""

import importlib.util

EXTRAS: dict[str, dict[str, str]] = {
    # Silero VAD (`--vad silero`) and reading FireRedVAD's ONNX exports (FireRedVAD itself needs nothing extra).
    "vad": {"silero_vad": "silero-vad", "onnx": "onnx"},
    # Test sets and training data: Kaldi directories and saved datasets, scoring (eval, finetune).
    "data": {"datasets": "datasets", "jiwer": "jiwer", "cn2an": "cn2an"},
    # Fine-tuning (with [data]): the Trainer's accelerate, LoRA (peft; also for --keep-lora conversions).
    "train": {"datasets": "datasets", "jiwer": "jiwer", "cn2an": "cn2an", "accelerate": "accelerate", "peft": "peft"},
    # The OpenAI-compatible transcription server.
    "serve": {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart"},
    # Transcription on a Ray cluster (`transcribe --ray`).
    "cluster": {"ray": "ray[data]"},
    # The Gradio demo.
    "demo": {"gradio": "gradio", "pandas": "pandas"},
    # ONNX / sherpa-onnx export and int8 quantization (onnxruntime's quantizer).
    "export": {"onnx": "onnx", "onnxruntime": "onnxruntime"},
}


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def missing_packages(extra: str, modules: list[str] | None = None) -> list[str]:
    """The pip names of the packages of `extra` (or of its `modules` only) that cannot be imported here."""
    packages = EXTRAS[extra]
    return [packages[module] for module in (modules or packages) if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails to import; a module blocked in sys.modules
        return False


def require(extra: str, what: str, modules: list[str] | None = None) -> None:
    """Raises `MissingDependencyError` if a package of `extra` (or only those of `modules`, import names) is not
    installed, e.g. "fireredasr-hf eval needs datasets, jiwer (not installed): pip install 'fireredasr-hf[data]'"."""
    missing = missing_packages(extra, modules)
    if missing:
        raise MissingDependencyError(
            f"{what} needs {', '.join(missing)} (not installed): pip install 'fireredasr-hf[{extra}]'"
        )


__all__ = ["EXTRAS", "MissingDependencyError", "missing_packages", "require"]
