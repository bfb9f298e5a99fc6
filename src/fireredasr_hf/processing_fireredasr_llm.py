# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Processor class for FireRedASR-LLM: the fbank + CMVN feature extractor and the LLM (Qwen2) tokenizer."""

import re

from transformers import BatchFeature, ProcessorMixin

from .processing_fireredasr import transcript_list

# The release's transcript normalisation for training (`LlmTokenizerWrapper.clean_text`).
PUNCTUATION = re.compile(r"[，。？！,.!?《》（）·“”、/]")
WHITESPACE = re.compile(r"\s+")
CJK_CHARACTER = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff])")


class FireRedLlmProcessor(ProcessorMixin):
    r"""
    Constructs a FireRedASR-LLM processor, which wraps a [`FireRedAsrFeatureExtractor`] and the language model's
    tokenizer (Qwen2, with the `<speech>` placeholder added as a special token) into a single processor.

    [`~FireRedLlmProcessor.__call__`] turns audio into `input_features` and `attention_mask`, and transcripts into the
    training `labels` (token ids of the normalised transcript, padded with -100); the model builds the prompt around
    them. [`~FireRedLlmProcessor.decode`] and [`~FireRedLlmProcessor.batch_decode`] turn generated ids into text.

    Args:
        feature_extractor ([`FireRedAsrFeatureExtractor`]):
            The feature extractor.
        tokenizer ([`Qwen2Tokenizer`]):
            The language model's tokenizer, holding the `<speech>` token.
    """

    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    @staticmethod
    def normalize_transcript(text: str) -> str:
        """
        The release's training normalisation: remove punctuation, collapse whitespace, drop the spaces next to
        Chinese characters (keeping those between English words) and lower-case.
        """
        text = WHITESPACE.sub(" ", PUNCTUATION.sub("", text))
        parts = [part for part in CJK_CHARACTER.split(text.strip()) if part.strip()]
        return "".join(parts).strip().lower()

    def __call__(self, audio=None, text=None, sampling_rate=None, **kwargs) -> BatchFeature:
        """
        Prepare audio and/or transcripts for the model.

        Args:
            audio (`np.ndarray`, `torch.Tensor`, `list[float]`, or a list of those, *optional*):
                One utterance or a batch of utterances, passed to [`FireRedAsrFeatureExtractor.__call__`].
            text (`str` or `list[str]`, *optional*):
                The transcript(s): one per utterance when `audio` is given. They are normalised as in the release's
                training (see [`~FireRedLlmProcessor.normalize_transcript`]).
            sampling_rate (`int`, *optional*):
                The sampling rate of `audio`; audio at another rate than the feature extractor's is resampled.
            kwargs:
                Options of the feature extractor (`padding`, `return_attention_mask`, ...) and `return_tensors`
                (`"pt"` or `"np"`).

        Returns:
            [`BatchFeature`]: with `audio`, `input_features` `(batch_size, num_frames, feature_size)` and the frame
            `attention_mask`; with `text`, `labels` `(batch_size, label_length)`: the token ids of each normalised
            transcript, padded with -100 (the model adds the prompt and the closing `<|im_end|>`).
        """
        if audio is None and text is None:
            raise ValueError(f"{self.__class__.__name__} needs `audio`, `text` or both.")
        return_tensors = kwargs.pop("return_tensors", None)
        inputs = {}
        if audio is not None:
            if sampling_rate is not None:
                kwargs["sampling_rate"] = sampling_rate
            inputs = dict(self.feature_extractor(audio, **kwargs))
        if text is not None:
            texts = transcript_list(text, len(inputs["input_features"]) if audio is not None else None)
            token_ids = [
                self.tokenizer(self.normalize_transcript(transcript), add_special_tokens=False)["input_ids"]
                for transcript in texts
            ]
            length = max(len(ids) for ids in token_ids)
            inputs["labels"] = [ids + [-100] * (length - len(ids)) for ids in token_ids]
        return BatchFeature(inputs, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return self.feature_extractor.model_input_names + ["labels"]


__all__ = ["FireRedLlmProcessor"]
