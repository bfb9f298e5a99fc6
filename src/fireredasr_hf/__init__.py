# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedASR speech recognition (AED and LLM variants) for Hugging Face transformers.

    import fireredasr_hf
    from transformers import AutoModelForSpeechSeq2Seq, pipeline

Importing the package registers the FireRedASR classes with transformers' Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForSpeechSeq2Seq`, `AutoFeatureExtractor`, `AutoTokenizer`, `AutoProcessor`) and the
"automatic-speech-recognition" pipeline, so converted checkpoints load without `trust_remote_code`.

The import itself is cheap (no torch, no transformers): the exported classes are imported on first use, and the
registrations run when transformers loads the mappings they fill (see `fireredasr_hf.registration`). To export a new
name, add it to `_import_structure` under its module (and the module to the `TYPE_CHECKING` imports below, for type
checkers and editors); to register a class with transformers, see `fireredasr_hf.registration`.
"""

import importlib
from typing import TYPE_CHECKING

from .registration import register_with_transformers

__version__ = "0.1.0"

# module -> the names it exports at the package level
_import_structure = {
    "configuration_fireredasr": ["FireRedAedConfig", "FireRedEncoderConfig", "FireRedLlmConfig", "FireRedLstmLmConfig"],
    "configuration_fireredvad": ["FireRedVadConfig"],
    "feature_extraction_fireredasr": ["FireRedAsrFeatureExtractor"],
    "modeling_fireredasr_aed": ["FireRedAedForConditionalGeneration", "FireRedAedModel"],
    "modeling_fireredasr_encoder": ["FireRedEncoder"],
    "modeling_fireredasr_llm": ["FireRedLlmForSpeechSeq2Seq"],
    "modeling_fireredvad": ["FireRedVadForAudioFrameClassification", "FireRedVadModel"],
    "pipeline_fireredasr": ["FireRedAsrPipeline"],
    "processing_fireredasr": ["FireRedAsrProcessor"],
    "processing_fireredasr_llm": ["FireRedLlmProcessor"],
    "tokenization_fireredasr": ["FireRedAsrTokenizer"],
    "tokenization_fireredasr_llm": ["FireRedLlmTokenizer"],
    "vad": ["FireRedAudioEventDetector", "FireRedStreamVad", "FireRedVad"],
}
_module_of = {name: module for module, names in _import_structure.items() for name in names}

__all__ = sorted(_module_of)  # noqa: PLE0605

if TYPE_CHECKING:  # what type checkers and editors see
    from .configuration_fireredasr import *
    from .configuration_fireredvad import *
    from .feature_extraction_fireredasr import *
    from .modeling_fireredasr_aed import *
    from .modeling_fireredasr_encoder import *
    from .modeling_fireredasr_llm import *
    from .modeling_fireredvad import *
    from .pipeline_fireredasr import *
    from .processing_fireredasr import *
    from .processing_fireredasr_llm import *
    from .tokenization_fireredasr import *
    from .tokenization_fireredasr_llm import *
    from .vad import *


def __getattr__(name: str):
    module = _module_of.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


register_with_transformers()
