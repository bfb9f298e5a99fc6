# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Processor class for FireRedASR-AED: the fbank + CMVN feature extractor and the char + BPE tokenizer."""

from transformers import BatchFeature, ProcessorMixin


def transcript_list(text, num_utterances: int | None) -> list[str]:
    """`text` (one string or a list) as a list of transcripts, checked against the number of utterances."""
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, (list, tuple)) or not all(isinstance(transcript, str) for transcript in texts):
        raise ValueError(f"`text` must be a string or a list of strings, got {type(text).__name__}.")
    if num_utterances is not None and len(texts) != num_utterances:
        raise ValueError(
            f"Got {num_utterances} utterances but {len(texts)} transcripts: pass one transcript per utterance."
        )
    return list(texts)


class FireRedAsrProcessor(ProcessorMixin):
    r"""
    Constructs a FireRedASR-AED processor, which wraps a [`FireRedAsrFeatureExtractor`] and a
    [`FireRedAsrTokenizer`] into a single processor.

    [`~FireRedAsrProcessor.__call__`] turns audio into `input_features` and `attention_mask`, and transcripts into the
    training `labels` (their token ids followed by `<eos>`, padded with -100). [`~FireRedAsrProcessor.decode`] and
    [`~FireRedAsrProcessor.batch_decode`] turn generated ids back into text.

    Args:
        feature_extractor ([`FireRedAsrFeatureExtractor`]):
            The feature extractor.
        tokenizer ([`FireRedAsrTokenizer`]):
            The tokenizer.
    """

    # Labels of a batch are padded to the longest transcript; the padding becomes -100.
    text_kwargs = {"padding": True}

    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    def __call__(self, audio=None, text=None, sampling_rate=None, **kwargs) -> BatchFeature:
        """
        Prepare audio and/or transcripts for the model.

        Args:
            audio (`np.ndarray`, `torch.Tensor`, `list[float]`, or a list of those, *optional*):
                One utterance or a batch of utterances, passed to [`FireRedAsrFeatureExtractor.__call__`].
            text (`str` or `list[str]`, *optional*):
                The transcript(s): one per utterance when `audio` is given.
            sampling_rate (`int`, *optional*):
                The sampling rate of `audio`; audio at another rate than the feature extractor's is resampled.
            kwargs:
                Options of the feature extractor (`padding`, `max_length`, `truncation`, `pad_to_multiple_of`,
                `return_attention_mask`) and of the tokenizer, directly or as `audio_kwargs` / `text_kwargs`
                dictionaries, and `return_tensors` (`"pt"` or `"np"`).

        Returns:
            [`BatchFeature`]: with `audio`, `input_features` `(batch_size, num_frames, feature_size)` and the frame
            `attention_mask`; with `text`, `labels` `(batch_size, label_length)`: the token ids of each transcript
            followed by `<eos>` (no `<sos>`: the model shifts the labels right behind its decoder start token),
            padded with -100. With `text` only, also the tokenizer's `input_ids` (padded with `<pad>`) and
            `attention_mask`.
        """
        if audio is None and text is None:
            raise ValueError(f"{self.__class__.__name__} needs `audio`, `text` or both.")
        if sampling_rate is not None:
            kwargs["sampling_rate"] = sampling_rate
        output_kwargs = self._merge_kwargs(tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        text_kwargs = output_kwargs["text_kwargs"]
        return_tensors = text_kwargs.pop("return_tensors", None)

        inputs = {}
        if audio is not None:
            inputs = self.feature_extractor(audio, **output_kwargs["audio_kwargs"])
            if text is None:
                return inputs

        texts = transcript_list(text, len(inputs["input_features"]) if audio is not None else None)

        # The attention mask tells the padding apart from the tokens, whatever the padding side.
        text_kwargs["return_attention_mask"] = True
        encodings = self.tokenizer(list(texts), **text_kwargs)
        labels = [
            [token_id if keep else -100 for token_id, keep in zip(token_ids, attention_mask)]
            for token_ids, attention_mask in zip(encodings["input_ids"], encodings["attention_mask"])
        ]
        if audio is None:
            inputs = dict(encodings)
        inputs["labels"] = labels
        return BatchFeature(dict(inputs), tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return self.feature_extractor.model_input_names + ["labels"]


__all__ = ["FireRedAsrProcessor", "transcript_list"]
