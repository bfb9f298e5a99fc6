# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The FireRedASR Conformer encoder, shared by FireRedASR-AED and FireRedASR-LLM."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices
from transformers.utils import logging
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_fireredasr import FireRedEncoderConfig

logger = logging.get_logger(__name__)

FBANK_FRAME_SECONDS = 0.01


@dataclass
class FireRedEncoderModelOutput(BaseModelOutput):
    r"""
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
        Mask of the valid subsampled frames (1 valid, 0 padding); the sequence is 4x shorter than the input.
    """

    attention_mask: torch.LongTensor | None = None


def warn_if_longer_than_trained(input_features, attention_mask, max_audio_seconds: float) -> None:
    """One warning for inputs longer than the model was trained on (the models still run on them)."""
    num_frames = attention_mask.sum(-1).max().item() if attention_mask is not None else input_features.shape[1]
    seconds = num_frames * FBANK_FRAME_SECONDS
    if seconds > max_audio_seconds:
        logger.warning_once(
            f"Input of {seconds:.1f} s is longer than the {max_audio_seconds:.0f} s the model was trained on; its "
            "transcript may be incomplete or hallucinated. Split long audio with the long-form pipeline (voice "
            "activity detection) instead."
        )


def check_input_features(input_features, attention_mask, num_mel_bins: int) -> None:
    """
    Refuse model inputs that would decode silently wrong or crash deep inside: `input_features` must be a float
    tensor `(batch_size, num_frames, num_mel_bins)` of finite values (float64 is refused: the feature extractor gives
    float32), and `attention_mask` (if given) `(batch_size, num_frames)` with 1 for each utterance's valid frames, all
    before its padding (0), and at least one valid frame.
    """
    if not isinstance(input_features, torch.Tensor):
        raise TypeError(
            f"input_features must be a torch tensor (the feature extractor's output with return_tensors='pt'), got "
            f"{type(input_features).__name__}."
        )
    if input_features.ndim != 3 or input_features.shape[-1] != num_mel_bins:
        hint = " Add the batch axis: input_features[None]." if input_features.ndim == 2 else ""
        raise ValueError(
            f"input_features must have shape (batch_size, num_frames, {num_mel_bins}), got "
            f"{tuple(input_features.shape)}.{hint}"
        )
    if not input_features.is_floating_point() or input_features.dtype == torch.float64:
        raise ValueError(
            f"input_features has dtype {input_features.dtype}; pass the float32 features of the feature extractor "
            "(or cast them to the model's dtype, e.g. `input_features.to(model.dtype)`)."
        )
    if input_features.shape[0] == 0 or input_features.shape[1] == 0:
        raise ValueError(f"input_features holds no frame (shape {tuple(input_features.shape)}).")
    if not bool(torch.isfinite(input_features).all()):
        raise ValueError("input_features contains NaN or infinite values.")
    if attention_mask is None:
        return
    if not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != tuple(input_features.shape[:2]):
        shape = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask)
        raise ValueError(
            f"attention_mask must be a tensor of shape (batch_size, num_frames) = {tuple(input_features.shape[:2])} "
            f"matching input_features, got {shape}."
        )
    if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (valid frame).")
    valid = attention_mask.bool()
    if not bool(valid[:, 0].all()):
        raise ValueError("attention_mask marks an utterance without any valid frame (a row of zeros).")
    if bool((valid[:, 1:] & ~valid[:, :-1]).any()):
        raise ValueError(
            "attention_mask must mark each utterance's valid frames first and its padding after them (1...1 0...0), "
            "as the feature extractor does; a 0 before a 1 would be read as a shorter utterance."
        )


def check_decoding_settings(generation_config, vocab_size: int, extra_settings: dict | None = None) -> None:
    """
    Refuse decoding settings that would decode wrongly without an error: counts must be positive integers (beams at
    most the vocabulary), penalties and temperatures finite and in range. `extra_settings` are the model's own
    settings: `{name: (value, low, high, low_inclusive)}`, a finite value in that range (None: no bound).
    """

    def positive_int(name, value, high=None):
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high is not None and value > high):
            bound = f" and at most {high}" if high is not None else ""
            raise ValueError(f"{name} must be an integer of at least 1{bound}, got {value!r}.")

    def finite(name, value, low=None, high=None, low_inclusive=False):
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}.")
        too_low = low is not None and (value < low if low_inclusive else value <= low)
        if too_low or (high is not None and value > high):
            lower = "" if low is None else f"{'>=' if low_inclusive else '>'} {low}"
            upper = "" if high is None else f"<= {high}"
            raise ValueError(f"{name} must be {' and '.join(filter(None, (lower, upper)))}, got {value!r}.")

    config = generation_config
    positive_int("num_beams", config.num_beams, high=vocab_size)
    positive_int("num_return_sequences", config.num_return_sequences)
    positive_int("max_new_tokens", config.max_new_tokens)
    finite("repetition_penalty", config.repetition_penalty, low=0.0)
    finite("length_penalty", config.length_penalty)
    if config.do_sample:
        finite("temperature", config.temperature, low=0.0)
        finite("top_p", config.top_p, low=0.0, high=1.0)
    for name, (value, low, high, low_inclusive) in (extra_settings or {}).items():
        finite(name, value, low=low, high=high, low_inclusive=low_inclusive)


class FireRedCheckpointMixin:
    """
    Loading rules of the FireRedASR models, before `PreTrainedModel` in their bases:

    - `from_pretrained` refuses a checkpoint that lacks tensors of the model or holds them in other shapes (transformers
      would only log a report and run with randomly initialised weights). Pass `output_loading_info=True` to get the
      report instead and decide yourself (`ignore_mismatched_sizes=True` accepts re-initialised mismatched tensors).
    - a model directory without `generation_config.json` decodes with the release's settings
      (`release_generation_config()`), with a warning, instead of transformers' greedy defaults.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        wants_report = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        except Exception as error:
            # safetensors' own error type (not imported here: remote code imports transformers and torch only).
            if not type(error).__module__.startswith("safetensors"):
                raise
            raise ValueError(
                f"The weights of {pretrained_model_name_or_path} cannot be read ({error}): the safetensors files are "
                "damaged or incomplete. Download or convert the model again."
            ) from None
        if model.can_generate() and kwargs.get("generation_config") is None:
            model.use_release_generation_config_if_missing()
        if wants_report:
            return model, info
        missing = sorted(info.get("missing_keys", ()))
        mismatched = [] if kwargs.get("ignore_mismatched_sizes") else sorted(info.get("mismatched_keys", ()))
        if missing or mismatched:
            problems = []
            if missing:
                problems.append(f"lacks {len(missing)} tensor(s): {', '.join(missing[:8])}")
            if mismatched:
                shown = ", ".join(f"{key} {tuple(first)} vs {tuple(second)}" for key, first, second in mismatched)
                problems.append(f"holds tensors of other shapes: {shown[:500]}")
            raise ValueError(
                f"The checkpoint {pretrained_model_name_or_path} {'; and '.join(problems)}. Those weights would be "
                "random: the files are incomplete or from another model. Download or convert the model again (pass "
                "output_loading_info=True to load it anyway and inspect the report)."
            )
        return model

    def use_release_generation_config_if_missing(self) -> None:
        """Without a generation_config.json, transformers builds greedy defaults from config.json; use the
        release's decoding instead, with a warning."""
        if not getattr(self.generation_config, "_from_model_config", False):
            return
        release = self.release_generation_config()
        settings = ", ".join(f"{name}={getattr(release, name)}" for name in self.release_decoding)
        logger.warning(
            f"{self.config.name_or_path} has no generation_config.json: decoding with the release's settings "
            f"({settings}) instead of transformers' greedy defaults. Convert the model again to get the file."
        )
        self.generation_config = release

    # The names of the release's decoding settings (shown when they are used as the fallback).
    release_decoding: tuple[str, ...] = ()

    def release_generation_config(self):
        """The generation config with the release's recommended decoding (defined by each generative model)."""
        raise NotImplementedError


# `encode_for_decoding` encodes a CPU batch one utterance at a time when more than this share of its frames is padding.
MAX_PADDING_SHARE = 0.1


def encode_for_decoding(
    encoder: nn.Module, input_features: torch.Tensor, attention_mask: torch.Tensor | None
) -> "FireRedEncoderModelOutput":
    """
    The encoder outputs of a batch to decode from. On CPUs a batch gains little from encoding its utterances together
    (the encoder's matrix products already have hundreds of rows per utterance) but pays for every padded frame: when
    padding exceeds `MAX_PADDING_SHARE` of the batch's frames, the utterances are encoded one at a time, each without
    padding, and their outputs padded with zeros into one batch. The valid frames are those of the batched encoder
    (padded frames are masked everywhere in the encoder), and so are the output mask and shape.
    """
    lengths = attention_mask.sum(-1).tolist() if attention_mask is not None else None
    if (
        lengths is None
        or input_features.device.type != "cpu"
        or len(lengths) < 2
        or min(lengths) < 1
        or sum(lengths) >= (1 - MAX_PADDING_SHARE) * len(lengths) * input_features.shape[1]
    ):
        return encoder(input_features, attention_mask=attention_mask)
    outputs = [encoder(features[None, :length]) for features, length in zip(input_features, lengths)]
    batched_frames = encoder.subsampling.output_frames(input_features.shape[1])
    hidden_states = outputs[0].last_hidden_state.new_zeros(len(lengths), batched_frames, encoder.config.hidden_size)
    for row, output in enumerate(outputs):
        hidden_states[row, : output.last_hidden_state.shape[1]] = output.last_hidden_state[0]
    output_mask = torch.arange(batched_frames, device=input_features.device) * 4 < attention_mask.sum(-1, keepdim=True)
    return FireRedEncoderModelOutput(last_hidden_state=hidden_states, attention_mask=output_mask.long())


def swish(hidden_states: torch.Tensor) -> torch.Tensor:
    # Written out rather than F.silu: the release computes x * sigmoid(x), which can differ in the last ulp.
    return hidden_states * torch.sigmoid(hidden_states)


def sinusoidal_inverse_frequencies(hidden_size: int) -> torch.Tensor:
    """The `div_term` of the release's sinusoidal position tables, computed with the same float32 operations (on the
    CPU, so that it also works while a model is built on the meta device)."""
    log_base = torch.log(torch.tensor(10000.0, device="cpu")).item()
    return torch.exp(torch.arange(0, hidden_size, 2, dtype=torch.float32, device="cpu") * -(log_base / hidden_size))


def sinusoidal_embeddings(positions: torch.Tensor, inverse_frequencies: torch.Tensor) -> torch.Tensor:
    """Rows `[sin(p f_0), cos(p f_0), sin(p f_1), ...]` for each (possibly negative) position p, in float32."""
    angles = positions.float().unsqueeze(1) * inverse_frequencies.unsqueeze(0)
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)


class FireRedEncoderRelPositionalEncoding(nn.Module):
    """Relative position table for positions `T-1, ..., 0, ..., -(T-1)`, computed for any length `T`."""

    def __init__(self, config: FireRedEncoderConfig):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.inv_freq = nn.Buffer(sinusoidal_inverse_frequencies(config.hidden_size), persistent=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        seq_length = hidden_states.shape[1]
        positions = torch.arange(seq_length - 1, -seq_length, -1, device=hidden_states.device)
        table = sinusoidal_embeddings(positions, self.inv_freq.to(hidden_states.device))
        return table.unsqueeze(0).to(hidden_states.dtype)


class FireRedEncoderSubsampling(nn.Module):
    """Two unpadded 3x3 stride-2 convolutions with ReLU and a linear projection: 4x fewer frames."""

    # The release appends `context - 1` zero frames so that the 7-frame receptive field fits at the end.
    right_context = 6

    def __init__(self, config: FireRedEncoderConfig):
        super().__init__()
        channels = config.subsampling_conv_channels
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=2)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=2)
        subsampled_mel_bins = ((config.num_mel_bins - 1) // 2 - 1) // 2
        self.out_proj = nn.Linear(channels * subsampled_mel_bins, config.hidden_size)

    def output_frames(self, num_frames: int) -> int:
        """Number of output frames (valid or not) for `num_frames` input frames."""
        padded = num_frames + self.right_context
        return ((padded - 3) // 2 + 1 - 3) // 2 + 1

    def forward(
        self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden_states = nn.functional.pad(input_features, (0, 0, 0, self.right_context)).unsqueeze(1)
        hidden_states = nn.functional.relu(self.conv1(hidden_states))
        hidden_states = nn.functional.relu(self.conv2(hidden_states))
        batch_size, channels, num_frames, mel_bins = hidden_states.shape
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, num_frames, channels * mel_bins)
        hidden_states = self.out_proj(hidden_states)

        if attention_mask is None:
            input_lengths = torch.full((batch_size,), input_features.shape[1], device=input_features.device)
        else:
            input_lengths = attention_mask.sum(-1)
        # Release mask rule (every second frame of every second frame of the input mask): output frame k is valid
        # iff input frame 4k is, i.e. ceil(L / 4) valid frames.
        output_mask = torch.arange(num_frames, device=input_features.device) * 4 < input_lengths.unsqueeze(-1)
        return hidden_states, output_mask


class FireRedEncoderFeedForward(nn.Module):
    def __init__(self, config: FireRedEncoderConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.linear1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.linear2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = swish(self.linear1(self.layer_norm(hidden_states)))
        return self.dropout(self.linear2(self.dropout(hidden_states)))


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # the masks made for sdpa (True: attend)
            attn_weights = attn_weights.masked_fill(attention_mask.logical_not(), torch.finfo(attn_weights.dtype).min)
        else:
            attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class FireRedEncoderAttention(nn.Module):
    """
    Relative-position multi-head self-attention (Transformer-XL style) with a separate LayerNorm on the query, key and
    value inputs. The positional term (with its rel-shift) and the padding mask travel to the attention function as
    its additive mask, so eager and sdpa share one implementation.
    """

    def __init__(self, config: FireRedEncoderConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.num_key_value_groups = 1
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = False

        self.query_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.key_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.value_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.relative_k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.bias_u = nn.Parameter(torch.zeros(self.num_heads, self.head_dim))
        self.bias_v = nn.Parameter(torch.zeros(self.num_heads, self.head_dim))
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_length, _ = hidden_states.shape
        hidden_shape = (batch_size, seq_length, self.num_heads, self.head_dim)

        query_states = self.q_proj(self.query_norm(hidden_states)).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(self.key_norm(hidden_states)).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(self.value_norm(hidden_states)).view(hidden_shape).transpose(1, 2)
        relative_key_states = self.relative_k_proj(position_embeddings)
        relative_key_states = relative_key_states.view(1, -1, self.num_heads, self.head_dim).transpose(1, 2)

        matrix_bd = (query_states + self.bias_v.unsqueeze(1)) @ relative_key_states.transpose(-2, -1)
        matrix_bd = self._rel_shift(matrix_bd) * self.scaling
        if attention_mask is not None:
            matrix_bd = matrix_bd.masked_fill(attention_mask.logical_not(), torch.finfo(matrix_bd.dtype).min)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query=query_states + self.bias_u.unsqueeze(1),
            key=key_states,
            value=value_states,
            attention_mask=matrix_bd,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch_size, seq_length, -1)
        return self.dropout(self.o_proj(attn_output)), attn_weights

    @staticmethod
    def _rel_shift(scores: torch.Tensor) -> torch.Tensor:
        """(B, H, T, 2T-1) scores over relative positions T-1..-(T-1) -> (B, H, T, T) with entry [i, j] at i - j."""
        batch_size, num_heads, query_length, position_length = scores.shape
        scores = nn.functional.pad(scores, (1, 0))
        scores = scores.view(batch_size, num_heads, position_length + 1, query_length)[:, :, 1:]
        return scores.reshape(batch_size, num_heads, query_length, position_length)[..., : position_length // 2 + 1]


class FireRedEncoderPointwiseConv(nn.Conv1d):
    """A kernel-size-1 convolution (the release's layer and weight layout) computed as the matrix product it is, on
    (batch, frames, channels) states: no transposes, the CPU's fast matrix-product path, and a layer that int8
    quantization can replace by a quantized linear layer."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(hidden_states, self.weight.squeeze(-1), self.bias)


class FireRedEncoderDepthwiseConv(nn.Conv1d):
    """The depthwise convolution over frames (the release's layer and weight layout) on (batch, frames, channels)
    states, run as a 2-D convolution with a 1 x kernel_size kernel: the same sums, and on CPUs oneDNN's 2-D depthwise
    kernels, an order of magnitude faster than its 1-D ones for this shape."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__(channels, channels, kernel_size, padding=(kernel_size - 1) // 2, groups=channels, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = nn.functional.conv2d(
            hidden_states.transpose(1, 2).unsqueeze(2),
            self.weight.unsqueeze(2),
            self.bias,
            padding=(0, self.padding[0]),
            groups=self.groups,
        )
        return hidden_states.squeeze(2).transpose(1, 2)


class FireRedEncoderConvolutionModule(nn.Module):
    """LayerNorm, pointwise conv + GLU, depthwise conv, LayerNorm, swish, pointwise conv; padded frames zeroed."""

    def __init__(self, config: FireRedEncoderConfig):
        super().__init__()
        channels = 2 * config.hidden_size
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pointwise_conv1 = FireRedEncoderPointwiseConv(config.hidden_size, 2 * channels)
        self.depthwise_conv = FireRedEncoderDepthwiseConv(channels, config.conv_kernel_size)
        self.depthwise_layer_norm = nn.LayerNorm(channels, eps=config.layer_norm_eps)
        self.pointwise_conv2 = FireRedEncoderPointwiseConv(channels, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        padding = ~padding_mask.unsqueeze(-1) if padding_mask is not None else None
        hidden_states = self.layer_norm(hidden_states)
        if padding is not None:
            hidden_states = hidden_states.masked_fill(padding, 0.0)
        hidden_states = nn.functional.glu(self.pointwise_conv1(hidden_states), dim=-1)
        hidden_states = self.depthwise_conv(hidden_states)
        hidden_states = swish(self.depthwise_layer_norm(hidden_states))
        hidden_states = self.dropout(self.pointwise_conv2(hidden_states))
        if padding is not None:
            hidden_states = hidden_states.masked_fill(padding, 0.0)
        return hidden_states


class FireRedEncoderLayer(GradientCheckpointingLayer):
    """Macaron Conformer block: half feed-forward, self-attention, convolution, half feed-forward, LayerNorm."""

    def __init__(self, config: FireRedEncoderConfig, layer_idx: int):
        super().__init__()
        self.feed_forward1 = FireRedEncoderFeedForward(config)
        self.self_attn = FireRedEncoderAttention(config, layer_idx)
        self.conv = FireRedEncoderConvolutionModule(config)
        self.feed_forward2 = FireRedEncoderFeedForward(config)
        self.norm_out = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attention_mask = padding_mask[:, None, None, :] if padding_mask is not None else None
        # The release's feed-forward returns x + net(x); keeping 0.5 * x + 0.5 * (x + net(x)) is bit-exact.
        hidden_states = 0.5 * hidden_states + 0.5 * (hidden_states + self.feed_forward1(hidden_states))
        attn_output, _ = self.self_attn(hidden_states, position_embeddings, attention_mask, **kwargs)
        hidden_states = hidden_states + attn_output
        hidden_states = hidden_states + self.conv(hidden_states, padding_mask)
        hidden_states = 0.5 * hidden_states + 0.5 * (hidden_states + self.feed_forward2(hidden_states))
        return self.norm_out(hidden_states)


class FireRedEncoderPreTrainedModel(FireRedCheckpointMixin, PreTrainedModel):
    config: FireRedEncoderConfig
    base_model_prefix = "encoder"
    main_input_name = "input_features"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _no_split_modules = ["FireRedEncoderLayer"]
    _supports_sdpa = True
    # The positional term is an additive attention bias, which flash attention cannot take.
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": FireRedEncoderLayer,
        "attentions": OutputRecorder(FireRedEncoderAttention, index=1),
    }

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, FireRedEncoderAttention):
            init.normal_(module.bias_u, mean=0.0, std=self.config.initializer_range)
            init.normal_(module.bias_v, mean=0.0, std=self.config.initializer_range)
        elif isinstance(module, FireRedEncoderRelPositionalEncoding):
            init.copy_(module.inv_freq, sinusoidal_inverse_frequencies(module.hidden_size))

    @staticmethod
    def subsampled_lengths(input_lengths: torch.Tensor) -> torch.Tensor:
        """Number of valid encoder frames for `input_lengths` fbank frames (the release rule, ceil(L / 4))."""
        return (input_lengths + 3) // 4


class FireRedEncoder(FireRedEncoderPreTrainedModel):
    """Conformer encoder: (batch, frames, mel bins) fbank features -> (batch, frames / 4, hidden_size) states."""

    def __init__(self, config: FireRedEncoderConfig):
        super().__init__(config)
        self.subsampling = FireRedEncoderSubsampling(config)
        self.positional_encoding = FireRedEncoderRelPositionalEncoding(config)
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.layers = nn.ModuleList([FireRedEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False
        self.post_init()

    def _mask_input_features(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None):
        """SpecAugment (https://huggingface.co/papers/1904.08779): zero random time spans and mel-bin bands."""
        config = self.config
        batch_size, num_frames, num_bins = input_features.shape
        # A batch shorter than one time mask (e.g. only 0.1 s utterances) gets no time masks.
        if config.mask_time_prob > 0 and num_frames >= config.mask_time_length:
            time_mask = _compute_mask_indices(
                (batch_size, num_frames),
                mask_prob=config.mask_time_prob,
                mask_length=config.mask_time_length,
                attention_mask=attention_mask,
                min_masks=config.mask_time_min_masks,
            )
            time_mask = torch.tensor(time_mask, device=input_features.device, dtype=torch.bool)
            input_features = input_features.masked_fill(time_mask[:, :, None], 0.0)
        if config.mask_feature_prob > 0:
            feature_mask = _compute_mask_indices(
                (batch_size, num_bins),
                mask_prob=config.mask_feature_prob,
                mask_length=config.mask_feature_length,
                min_masks=config.mask_feature_min_masks,
            )
            feature_mask = torch.tensor(feature_mask, device=input_features.device, dtype=torch.bool)
            input_features = input_features.masked_fill(feature_mask[:, None, :], 0.0)
        return input_features

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> FireRedEncoderModelOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            CMVN-normalised fbank features from [`FireRedAsrFeatureExtractor`].
        attention_mask (`torch.Tensor` of shape `(batch_size, num_frames)`, *optional*):
            1 for valid frames, 0 for padding. Without it every frame is valid.
        """
        if input_features.shape[1] < 1:
            raise ValueError("The encoder needs at least one feature frame (25 ms of audio).")
        if self.training and self.config.apply_spec_augment:
            input_features = self._mask_input_features(input_features, attention_mask)

        hidden_states, padding_mask = self.subsampling(input_features, attention_mask)
        position_embeddings = self.input_dropout(self.positional_encoding(hidden_states))
        hidden_states = self.input_dropout(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states, position_embeddings, padding_mask, **kwargs)

        return FireRedEncoderModelOutput(last_hidden_state=hidden_states, attention_mask=padding_mask.long())


__all__ = [
    "FireRedCheckpointMixin",
    "FireRedEncoder",
    "FireRedEncoderModelOutput",
    "FireRedEncoderPreTrainedModel",
    "check_decoding_settings",
    "check_input_features",
    "encode_for_decoding",
    "warn_if_longer_than_trained",
]
