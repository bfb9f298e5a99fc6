# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedASR speech recognition (AED and LLM variants) for Hugging Face transformers.

Importing the package registers the FireRedASR classes with transformers' Auto classes, so
`AutoModelForSpeechSeq2Seq`, `AutoProcessor`, `AutoFeatureExtractor`, `AutoTokenizer` and
`pipeline("automatic-speech-recognition")` load converted checkpoints without `trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioFrameClassification,
    AutoModelForSpeechSeq2Seq,
    AutoProcessor,
    AutoTokenizer,
)
from transformers.pipelines import PIPELINE_REGISTRY

from . import configuration_fireredasr
from .configuration_fireredasr import FireRedAedConfig, FireRedEncoderConfig, FireRedLlmConfig, FireRedLstmLmConfig
from .configuration_fireredvad import FireRedVadConfig
from .feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from .modeling_fireredasr_aed import FireRedAedForConditionalGeneration, FireRedAedModel
from .modeling_fireredasr_encoder import FireRedEncoder
from .modeling_fireredasr_llm import FireRedLlmForSpeechSeq2Seq
from .modeling_fireredvad import FireRedVadForAudioFrameClassification, FireRedVadModel
from .pipeline_fireredasr import FireRedAsrPipeline, SpeechRecognitionPipelineSelector
from .processing_fireredasr import FireRedAsrProcessor
from .processing_fireredasr_llm import FireRedLlmProcessor
from .tokenization_fireredasr import FireRedAsrTokenizer
from .tokenization_fireredasr_llm import FireRedLlmTokenizer
from .vad import FireRedAudioEventDetector, FireRedStreamVad, FireRedVad

__version__ = "0.1.0"

AutoConfig.register(FireRedEncoderConfig.model_type, FireRedEncoderConfig, exist_ok=True)
AutoConfig.register(FireRedAedConfig.model_type, FireRedAedConfig, exist_ok=True)
AutoConfig.register(FireRedLlmConfig.model_type, FireRedLlmConfig, exist_ok=True)
AutoConfig.register(FireRedLstmLmConfig.model_type, FireRedLstmLmConfig, exist_ok=True)
AutoConfig.register(FireRedVadConfig.model_type, FireRedVadConfig, exist_ok=True)
AutoModel.register(FireRedEncoderConfig, FireRedEncoder, exist_ok=True)
AutoModel.register(FireRedAedConfig, FireRedAedModel, exist_ok=True)
AutoModel.register(FireRedVadConfig, FireRedVadModel, exist_ok=True)
AutoModelForAudioFrameClassification.register(FireRedVadConfig, FireRedVadForAudioFrameClassification, exist_ok=True)
AutoFeatureExtractor.register(FireRedVadConfig, FireRedAsrFeatureExtractor, exist_ok=True)
AutoModelForSpeechSeq2Seq.register(FireRedAedConfig, FireRedAedForConditionalGeneration, exist_ok=True)
AutoModelForSpeechSeq2Seq.register(FireRedLlmConfig, FireRedLlmForSpeechSeq2Seq, exist_ok=True)
AutoFeatureExtractor.register(FireRedAedConfig, FireRedAsrFeatureExtractor, exist_ok=True)
AutoFeatureExtractor.register(FireRedLlmConfig, FireRedAsrFeatureExtractor, exist_ok=True)
AutoTokenizer.register(FireRedAedConfig, tokenizer_class=FireRedAsrTokenizer, exist_ok=True)
# FireRedASR2-LLM conversions name it in tokenizer_config.json; FireRedASR-LLM ones keep the Qwen2 tokenizer.
AutoTokenizer.register(FireRedLlmConfig, tokenizer_class=FireRedLlmTokenizer, exist_ok=True)
AutoProcessor.register(FireRedAedConfig, FireRedAsrProcessor, exist_ok=True)
AutoProcessor.register(FireRedLlmConfig, FireRedLlmProcessor, exist_ok=True)

# `pipeline("automatic-speech-recognition", model=...)` builds FireRedAsrPipeline for FireRedASR models (any input
# rate, long audio, timestamps) and the stock pipeline for every other model. Converted directories also declare the
# pipeline as remote code (`custom_pipelines`) for processes without this package; here the installed one serves.
PIPELINE_REGISTRY.supported_tasks["automatic-speech-recognition"]["impl"] = SpeechRecognitionPipelineSelector
configuration_fireredasr.USE_INSTALLED_PIPELINE = True

__all__ = [
    "FireRedAudioEventDetector",
    "FireRedStreamVad",
    "FireRedVad",
    "FireRedVadConfig",
    "FireRedVadForAudioFrameClassification",
    "FireRedVadModel",
    "FireRedAedConfig",
    "FireRedAedForConditionalGeneration",
    "FireRedAedModel",
    "FireRedAsrFeatureExtractor",
    "FireRedAsrPipeline",
    "FireRedAsrProcessor",
    "FireRedAsrTokenizer",
    "FireRedEncoder",
    "FireRedEncoderConfig",
    "FireRedLlmConfig",
    "FireRedLlmForSpeechSeq2Seq",
    "FireRedLlmProcessor",
    "FireRedLlmTokenizer",
    "FireRedLstmLmConfig",
]
