# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedVAD: the DFSMN frame classifier of the FireRedVAD release (voice activity and audio event detection)."""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_fireredvad import FireRedVadConfig


@dataclass
class FireRedVadOutput(ModelOutput):
    r"""
    logits (`torch.FloatTensor` of shape `(batch_size, num_frames, num_labels)`):
        Frame logits; `torch.sigmoid(logits)` are the per-frame probabilities of each label.
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames, hidden_size)`):
        Output of the last DFSMN layer.
    memory_cache (`tuple[torch.FloatTensor]`, one per memory block, each `(batch_size, projection_size, frames)`):
        The last `config.history_frames` inputs of each memory block: pass them back as `memory_cache` with the
        next frames to continue a stream (streaming models only).
    """

    logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    memory_cache: tuple[torch.FloatTensor, ...] | None = None


class FireRedVadMemoryBlock(nn.Module):
    """The FSMN memory: each frame plus depthwise-filtered past (current frame included) and future frames."""

    def __init__(self, config: FireRedVadConfig):
        super().__init__()
        size = config.projection_size
        self.history_frames = config.history_frames
        self.lookahead_frames = config.lookahead_order * config.lookahead_stride
        self.lookahead_stride = config.lookahead_stride
        self.lookback_conv = nn.Conv1d(
            size, size, config.lookback_order, dilation=config.lookback_stride, groups=size, bias=False
        )
        self.lookahead_conv = None
        if config.lookahead_order > 0:
            self.lookahead_conv = nn.Conv1d(
                size, size, config.lookahead_order, dilation=config.lookahead_stride, groups=size, bias=False
            )

    def forward(self, hidden_states, padding_mask=None, cache=None):
        if padding_mask is not None:
            hidden_states = hidden_states.masked_fill(padding_mask, 0.0)
        channels_first = hidden_states.transpose(1, 2)  # (batch, channels, frames)
        if cache is None:
            cache = channels_first.new_zeros(channels_first.shape[0], channels_first.shape[1], self.history_frames)
        with_history = torch.cat([cache, channels_first], dim=2)
        new_cache = with_history[:, :, with_history.shape[2] - self.history_frames :]
        memory = channels_first + self.lookback_conv(with_history)
        if self.lookahead_conv is not None:
            # Frame t gets w[k] * x[t + (k + 1) * stride]; frames past the end are zeros.
            future = nn.functional.pad(channels_first, (0, self.lookahead_frames))[:, :, self.lookahead_stride :]
            memory = memory + self.lookahead_conv(future)
        memory = memory.transpose(1, 2)
        if padding_mask is not None:
            memory = memory.masked_fill(padding_mask, 0.0)
        return memory, new_cache


class FireRedVadBlock(nn.Module):
    """A DFSMN block: Linear + ReLU, a linear projection, the memory block, and a residual connection."""

    def __init__(self, config: FireRedVadConfig):
        super().__init__()
        self.linear = nn.Linear(config.projection_size, config.hidden_size)
        self.projection = nn.Linear(config.hidden_size, config.projection_size, bias=False)
        self.memory = FireRedVadMemoryBlock(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states, padding_mask=None, cache=None):
        projected = self.projection(self.dropout(nn.functional.relu(self.linear(hidden_states))))
        memory, new_cache = self.memory(projected, padding_mask, cache)
        return memory + hidden_states, new_cache


class FireRedVadPreTrainedModel(PreTrainedModel):
    config: FireRedVadConfig
    base_model_prefix = "model"
    main_input_name = "input_features"
    input_modalities = ("audio",)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)


class FireRedVadModel(FireRedVadPreTrainedModel):
    """The DFSMN trunk of FireRedVAD: fbank frames in, one hidden vector per frame out (no subsampling)."""

    def __init__(self, config: FireRedVadConfig):
        super().__init__(config)
        self.input_linear = nn.Linear(config.num_mel_bins, config.hidden_size)
        self.input_projection = nn.Linear(config.hidden_size, config.projection_size)
        self.input_memory = FireRedVadMemoryBlock(config)
        self.blocks = nn.ModuleList([FireRedVadBlock(config) for _ in range(config.num_blocks - 1)])
        self.output_layers = nn.ModuleList(
            [nn.Linear(config.projection_size, config.hidden_size)]
            + [nn.Linear(config.hidden_size, config.hidden_size) for _ in range(config.num_dnn_layers - 1)]
        )
        self.dropout = nn.Dropout(config.dropout)
        self.post_init()

    def forward(
        self,
        input_features: torch.FloatTensor,
        attention_mask: torch.Tensor | None = None,
        memory_cache: tuple[torch.FloatTensor, ...] | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> FireRedVadOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            fbank frames after CMVN, as [`FireRedAsrFeatureExtractor`] computes them with the model's `cmvn.ark`.
        attention_mask (`torch.Tensor` of shape `(batch_size, num_frames)`, *optional*):
            1 for frames of the audio, 0 for padding (padded frames are zeroed inside, as in the release).
        memory_cache (`tuple[torch.FloatTensor]`, *optional*):
            `memory_cache` of the previous call, to continue a stream; streaming models only (`lookahead_order=0`).
        use_cache (`bool`, *optional*):
            Whether to return `memory_cache` (default: whether `memory_cache` was given).
        """
        if memory_cache is not None and not self.config.is_streaming:
            raise ValueError(
                "memory_cache continues a stream, which needs a streaming model (lookahead_order=0); this model looks "
                f"{self.config.lookahead_order} frames ahead. Use the FireRedVAD Stream-VAD model for streaming."
            )
        if memory_cache is not None and len(memory_cache) != self.config.num_blocks:
            raise ValueError(f"memory_cache needs {self.config.num_blocks} tensors, got {len(memory_cache)}.")
        padding_mask = None
        if attention_mask is not None:
            padding_mask = (attention_mask == 0).unsqueeze(-1)
        hidden_states = nn.functional.relu(self.input_linear(input_features))
        hidden_states = nn.functional.relu(self.input_projection(self.dropout(hidden_states)))
        hidden_states, cache = self.input_memory(
            self.dropout(hidden_states), padding_mask, memory_cache[0] if memory_cache is not None else None
        )
        new_cache = [cache]
        for index, block in enumerate(self.blocks, start=1):
            hidden_states, cache = block(
                hidden_states, padding_mask, memory_cache[index] if memory_cache is not None else None
            )
            new_cache.append(cache)
        for layer in self.output_layers:
            hidden_states = self.dropout(nn.functional.relu(layer(hidden_states)))
        if use_cache is None:
            use_cache = memory_cache is not None
        return FireRedVadOutput(last_hidden_state=hidden_states, memory_cache=tuple(new_cache) if use_cache else None)


class FireRedVadForAudioFrameClassification(FireRedVadPreTrainedModel):
    """FireRedVAD: the DFSMN trunk and a linear classifier; `sigmoid(logits)` are per-frame label probabilities
    (speech for VAD; speech, singing and music for audio event detection), one per 10 ms fbank frame."""

    def __init__(self, config: FireRedVadConfig):
        super().__init__(config)
        self.model = FireRedVadModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_features: torch.FloatTensor,
        attention_mask: torch.Tensor | None = None,
        memory_cache: tuple[torch.FloatTensor, ...] | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> FireRedVadOutput:
        r"""
        The arguments of [`FireRedVadModel.forward`]. With a streaming model, feeding a recording in consecutive
        pieces with the `memory_cache` of each call gives the logits of feeding it whole.
        """
        outputs = self.model(input_features, attention_mask, memory_cache=memory_cache, use_cache=use_cache)
        return FireRedVadOutput(
            logits=self.classifier(outputs.last_hidden_state),
            last_hidden_state=outputs.last_hidden_state,
            memory_cache=outputs.memory_cache,
        )


__all__ = ["FireRedVadForAudioFrameClassification", "FireRedVadModel", "FireRedVadPreTrainedModel"]
