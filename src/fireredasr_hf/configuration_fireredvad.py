# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Configuration of FireRedVAD: the DFSMN frame classifier of the FireRedVAD release (VAD, Stream-VAD, AED)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# The labels of the two released heads: one speech probability (VAD, Stream-VAD) or three event probabilities
# (audio event detection).
VAD_LABELS = {0: "speech"}
AUDIO_EVENT_LABELS = {0: "speech", 1: "singing", 2: "music"}
# The three released models and their folders, in the Hub repository FireRedTeam/FireRedVAD and in converted copies.
VAD_KINDS = ("vad", "stream-vad", "aed")
KIND_DIRS = {"vad": "VAD", "stream-vad": "Stream-VAD", "aed": "AED"}


@strict
class FireRedVadConfig(PreTrainedConfig):
    r"""
    Configuration of a FireRedVAD model: a deep feed-forward sequential memory network (DFSMN) over 80-dim fbank
    frames, one sigmoid output per label and 10 ms frame. Defaults are the released non-streaming VAD (588k
    parameters); the streaming VAD has `lookahead_order=0`, the audio event model three labels.

    The DFSMN is: Linear(num_mel_bins -> hidden) + ReLU, Linear(hidden -> projection) + ReLU, a memory block, then
    `num_blocks - 1` blocks of [Linear(projection -> hidden) + ReLU, Linear(projection, no bias), memory block,
    residual], then `num_dnn_layers` Linear + ReLU layers of width `hidden_size` and the classifier. A memory block adds
    to each frame a per-channel weighted sum of the `lookback_order` frames up to and including it (`lookback_stride`
    apart) and of the `lookahead_order` frames after it (`lookahead_stride` apart).

    Args:
        num_mel_bins (`int`, defaults to 80): input feature dimension (`idim` of the original).
        num_blocks (`int`, defaults to 8): memory blocks, the first included (`R`).
        num_dnn_layers (`int`, defaults to 1): Linear + ReLU layers after the last block (`M`).
        hidden_size (`int`, defaults to 256): width of the linear layers (`H`).
        projection_size (`int`, defaults to 128): width of the memory blocks (`P`).
        lookback_order (`int`, defaults to 20): frames each memory block looks back over, current frame included
            (`N1`).
        lookback_stride (`int`, defaults to 1): spacing of those frames (`S1`).
        lookahead_order (`int`, defaults to 20): future frames each memory block looks at (`N2`); 0 for streaming.
        lookahead_stride (`int`, defaults to 1): spacing of those frames (`S2`).
        dropout (`float`, defaults to 0.1): dropout after each ReLU, in training only.
        id2label (`dict`): the outputs, `{0: "speech"}` for VAD, `{0: "speech", 1: "singing", 2: "music"}` for audio
            event detection.
    """

    model_type = "fireredvad"

    num_mel_bins: int = 80
    num_blocks: int = 8
    num_dnn_layers: int = 1
    hidden_size: int = 256
    projection_size: int = 128
    lookback_order: int = 20
    lookback_stride: int = 1
    lookahead_order: int = 20
    lookahead_stride: int = 1
    dropout: float = 0.1
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.id2label is None and "num_labels" not in kwargs:
            self.id2label = dict(VAD_LABELS)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        if self.num_blocks < 1 or self.num_dnn_layers < 1:
            raise ValueError(
                f"num_blocks and num_dnn_layers must be at least 1, got {self.num_blocks} and {self.num_dnn_layers}."
            )
        if self.lookback_order < 1 or self.lookahead_order < 0:
            raise ValueError(
                f"lookback_order must be >= 1 and lookahead_order >= 0, got {self.lookback_order} and "
                f"{self.lookahead_order}."
            )
        if self.lookback_stride < 1 or self.lookahead_stride < 1:
            raise ValueError("lookback_stride and lookahead_stride must be at least 1.")

    @property
    def history_frames(self) -> int:
        """Frames of past input each memory block needs besides the current one (its streaming cache length)."""
        return (self.lookback_order - 1) * self.lookback_stride

    @property
    def is_streaming(self) -> bool:
        """Whether the model looks only at past frames, so that it can run on audio as it arrives."""
        return self.lookahead_order == 0

    @property
    def kind(self) -> str:
        """Which released model this is: "aed" (speech, singing and music), "stream-vad" (no look-ahead) or "vad"."""
        if self.num_labels == len(AUDIO_EVENT_LABELS):
            return "aed"
        return "stream-vad" if self.is_streaming else "vad"


__all__ = ["FireRedVadConfig"]
