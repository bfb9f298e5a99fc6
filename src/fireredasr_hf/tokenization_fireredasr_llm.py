# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Tokenization class for FireRedASR2-LLM: the Qwen2 tokenizer with FireRedASR2's lower-cased transcripts."""

from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer


class FireRedLlmTokenizer(Qwen2Tokenizer):
    """
    The language model's (Qwen2) tokenizer with one setting more, `lowercase_output`: decoded text is lower-cased,
    as FireRedASR2 prints its transcripts (`text.lower()` after decoding). Converted FireRedASR2-LLM models use it;
    FireRedASR-LLM (v1) models keep the plain Qwen2 tokenizer.

    Args:
        lowercase_output (`bool`, *optional*, defaults to `False`): whether `decode`/`batch_decode` lower-case the
            text.
        Other arguments: those of [`Qwen2Tokenizer`].
    """

    def __init__(self, *args, lowercase_output: bool = False, **kwargs):
        self.lowercase_output = lowercase_output
        super().__init__(*args, lowercase_output=lowercase_output, **kwargs)

    def _decode(self, *args, **kwargs) -> str:
        text = super()._decode(*args, **kwargs)
        return text.lower() if self.lowercase_output else text


__all__ = ["FireRedLlmTokenizer"]
