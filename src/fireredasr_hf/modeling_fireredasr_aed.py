# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedASR-AED: the Conformer encoder and a Transformer decoder with cross-attention; optionally a CTC head on the
encoder (FireRedASR2-AED) and an LSTM language model for shallow fusion in the beam search."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationConfig, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions, Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.auto.modeling_auto import MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES
from transformers.utils import ModelOutput, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_fireredasr import FireRedAedConfig, FireRedLstmLmConfig
from .generation_fireredasr import FireRedAedGenerationMixin
from .modeling_fireredasr_encoder import (
    FireRedCheckpointMixin,
    FireRedEncoder,
    FireRedEncoderModelOutput,
    eager_attention_forward,
    sinusoidal_embeddings,
    sinusoidal_inverse_frequencies,
)

logger = logging.get_logger(__name__)

# Up to this many queries per key set (a decoding step's beams) attend with matrix products on CPUs; see
# `FireRedAedDecoderAttention.forward`.
MAX_QUERIES_OF_A_DECODING_STEP = 16

# The ASR pipeline decodes a model with `generate` only if its class is listed here (otherwise it assumes CTC);
# registering at import time also covers loading with trust_remote_code.
MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES.setdefault("fireredasr_aed", "FireRedAedForConditionalGeneration")

# The releases' recommended decoding (FireRedASR README, FireRedASR2S README and `FireRedAsr2Config`): beam 3, softmax
# smoothing 1.25, GNMT length penalty 0.6, EOS penalty 1.0, language-model weight 0 (`elm_weight`).
AED_RELEASE_DECODING = {
    "num_beams": 3,
    "use_fireredasr_beam_search": True,
    "softmax_smoothing": 1.25,
    "gnmt_length_penalty": 0.6,
    "eos_penalty": 1.0,
    "lm_weight": 0.0,
}


def aed_release_generation_config(config: FireRedAedConfig) -> GenerationConfig:
    """The generation config of converted FireRedASR-AED checkpoints: the release's recommended decoding."""
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        # An explicit cap (the decoder's positions): each utterance still stops at its encoder length.
        max_new_tokens=config.max_position_embeddings - 1,
        **AED_RELEASE_DECODING,
    )


class FireRedAedDecoderCacheLayer(DynamicLayer):
    """
    The self-attention keys and values of one decoder layer for step-by-step decoding. A beam reordering that keeps
    every row in place (most steps of a converged search) copies nothing. In float32, and on GPUs, keys and values
    live in buffers with room for `capacity_step` more positions: a step writes its position in place instead of
    copying the whole cache (`torch.cat`), and a reordering gathers the rows into a second buffer; `keys` and
    `values` are views of the filled part, and where other code replaces them (cropping, batch selection) the next
    update continues from the replacements. CPU matrix products in bfloat16 and float16 copy such views (a head's
    positions do not end where the next head's start), which costs more than the concatenation: there the layer
    concatenates as `DynamicLayer` does.
    """

    capacity_step = 64

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer = self._value_buffer = None
        self._spare_buffers = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if key_states.device.type == "cpu" and key_states.dtype in (torch.bfloat16, torch.float16):
            self._key_buffer = self._value_buffer = self._spare_buffers = None
            return super().update(key_states, value_states)
        length = self.get_seq_length()
        new_length = length + key_states.shape[-2]
        if not self._holds_views() or new_length > self._key_buffer.shape[-2]:
            self._allocate(key_states, value_states, new_length)
        self._key_buffer[:, :, length:new_length] = key_states
        self._value_buffer[:, :, length:new_length] = value_states
        self.keys = self._key_buffer[:, :, :new_length]
        self.values = self._value_buffer[:, :, :new_length]
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.get_seq_length() == 0:
            return
        beam_idx = beam_idx.to(self.keys.device)
        rows = self.keys.shape[0]
        if beam_idx.shape[0] == rows and torch.equal(beam_idx, torch.arange(rows, device=beam_idx.device)):
            return
        if not self._holds_views() or beam_idx.shape[0] != rows:
            super().reorder_cache(beam_idx)
            return
        if self._spare_buffers is None or self._spare_buffers[0].shape != self._key_buffer.shape:
            self._spare_buffers = (torch.empty_like(self._key_buffer), torch.empty_like(self._value_buffer))
        spare_keys, spare_values = self._spare_buffers
        torch.index_select(self._key_buffer, 0, beam_idx, out=spare_keys)
        torch.index_select(self._value_buffer, 0, beam_idx, out=spare_values)
        self._spare_buffers = (self._key_buffer, self._value_buffer)
        self._key_buffer, self._value_buffer = spare_keys, spare_values
        length = self.keys.shape[-2]
        self.keys = self._key_buffer[:, :, :length]
        self.values = self._value_buffer[:, :, :length]

    def _holds_views(self) -> bool:
        """Whether `keys` is still the view of the buffer that `update` made."""
        return (
            self._key_buffer is not None
            and self.keys.data_ptr() == self._key_buffer.data_ptr()
            and self.keys.shape[:2] == self._key_buffer.shape[:2]
        )

    def _allocate(self, key_states: torch.Tensor, value_states: torch.Tensor, length: int) -> None:
        """Buffers shaped like `key_states` and `value_states` with room for `length` positions or a little more,
        holding the cached positions."""
        capacity = -(-length // self.capacity_step) * self.capacity_step
        key_buffer = key_states.new_empty(*key_states.shape[:2], capacity, key_states.shape[-1])
        value_buffer = value_states.new_empty(*value_states.shape[:2], capacity, value_states.shape[-1])
        cached = self.get_seq_length()
        if cached:
            key_buffer[:, :, :cached] = self.keys
            value_buffer[:, :, :cached] = self.values
        self._key_buffer, self._value_buffer = key_buffer, value_buffer
        self._spare_buffers = None


class FireRedAedDecoderAttention(nn.Module):
    """Multi-head attention of the decoder; the key projection has no bias, as in the release."""

    def __init__(self, config: FireRedAedConfig, layer_idx: int, is_cross_attention: bool):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.num_key_value_groups = 1
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = not is_cross_attention

        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, query_length, _ = hidden_states.shape
        query_states = self.q_proj(hidden_states).view(batch_size, query_length, -1, self.head_dim).transpose(1, 2)

        if self.is_cross_attention:
            if cache is not None and cache.is_updated.get(self.layer_idx):
                # Encoder keys and values are computed once per utterance and reused at every step.
                key_states = cache.cross_attention_cache.layers[self.layer_idx].keys
                value_states = cache.cross_attention_cache.layers[self.layer_idx].values
            else:
                key_states, value_states = self._project_key_value(encoder_hidden_states)
                if cache is not None:
                    key_states, value_states = cache.cross_attention_cache.update(
                        key_states, value_states, self.layer_idx
                    )
                    cache.is_updated[self.layer_idx] = True
        else:
            key_states, value_states = self._project_key_value(hidden_states)
            if cache is not None:
                key_states, value_states = cache.self_attention_cache.update(key_states, value_states, self.layer_idx)

        # Beam search keeps one copy of each utterance's encoder states for all its beams (rows utterance-major):
        # the beams then attend as further queries of their utterance.
        group_size = batch_size // key_states.shape[0]
        if group_size > 1:
            query_states, attention_mask = self._group_queries(query_states, attention_mask, group_size)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        if (
            self.config._attn_implementation == "sdpa"
            and query_states.device.type == "cpu"
            and query_states.shape[2] <= MAX_QUERIES_OF_A_DECODING_STEP
            # sdpa makes causal masks itself (none is passed): only where none is needed
            and (self.is_cross_attention or query_length == 1 or attention_mask is not None)
        ):
            # PyTorch's fused CPU attention kernel works in blocks of queries: for the few queries of a decoding step
            # the two matrix products of the eager attention are several times faster (20 times in bfloat16).
            attention_interface = eager_attention_forward
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,
        )
        if group_size > 1:
            # (utterances, beams x queries, heads, head_dim) back to one row per beam
            attn_output = attn_output.reshape(batch_size, query_length, -1, self.head_dim)
            if attn_weights is not None:
                attn_weights = attn_weights.unflatten(2, (group_size, query_length)).transpose(1, 2).flatten(0, 1)
        attn_output = attn_output.reshape(batch_size, query_length, -1).contiguous()
        return self.dropout(self.o_proj(attn_output)), attn_weights

    def _group_queries(
        self, query_states: torch.Tensor, attention_mask: torch.Tensor | None, group_size: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(rows, heads, queries, head_dim) queries of `group_size` consecutive rows per key set -> (key sets, heads,
        group_size x queries, head_dim), and the key sets' mask repeated for every row of a group."""
        rows, num_heads, query_length, head_dim = query_states.shape
        query_states = query_states.view(rows // group_size, group_size, num_heads, query_length, head_dim)
        query_states = query_states.transpose(1, 2).reshape(rows // group_size, num_heads, -1, head_dim)
        if attention_mask is not None and attention_mask.shape[-2] > 1:
            attention_mask = attention_mask.repeat(1, 1, group_size, 1)
        return query_states, attention_mask

    def _project_key_value(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (hidden_states.shape[0], hidden_states.shape[1], -1, self.head_dim)
        key_states = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        return key_states, value_states


class FireRedAedDecoderMLP(nn.Module):
    def __init__(self, config: FireRedAedConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation_fn = nn.GELU()
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation_fn(self.fc1(hidden_states))))


class FireRedAedDecoderLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm decoder layer: causal self-attention, cross-attention on the encoder, GELU feed-forward."""

    def __init__(self, config: FireRedAedConfig, layer_idx: int):
        super().__init__()
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = FireRedAedDecoderAttention(config, layer_idx, is_cross_attention=False)
        self.encoder_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder_attn = FireRedAedDecoderAttention(config, layer_idx, is_cross_attention=True)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = FireRedAedDecoderMLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.self_attn(self.self_attn_layer_norm(hidden_states), attention_mask, cache=cache, **kwargs)
        hidden_states = hidden_states + attn_output
        attn_output, _ = self.encoder_attn(
            self.encoder_attn_layer_norm(hidden_states),
            encoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            cache=cache,
            **kwargs,
        )
        hidden_states = hidden_states + attn_output
        return hidden_states + self.mlp(self.final_layer_norm(hidden_states))


class FireRedAedPreTrainedModel(FireRedCheckpointMixin, PreTrainedModel):
    config: FireRedAedConfig
    base_model_prefix = "model"
    main_input_name = "input_features"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _no_split_modules = ["FireRedEncoderLayer", "FireRedAedDecoderLayer"]
    _supports_sdpa = True
    # The encoder's relative-position term is an additive attention bias, which flash attention cannot take.
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, FireRedAedDecoder):
            init.copy_(module.inv_freq, sinusoidal_inverse_frequencies(module.config.hidden_size))


class FireRedAedDecoder(FireRedAedPreTrainedModel):
    """Transformer decoder: token embedding x sqrt(d_model) + sinusoidal position, pre-LN layers, final LayerNorm."""

    main_input_name = "input_ids"
    _can_record_outputs = {
        "hidden_states": FireRedAedDecoderLayer,
        "attentions": OutputRecorder(FireRedAedDecoderAttention, index=1, layer_name="self_attn"),
        "cross_attentions": OutputRecorder(FireRedAedDecoderAttention, index=1, layer_name="encoder_attn"),
    }

    def __init__(self, config: FireRedAedConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.embed_scale = math.sqrt(config.hidden_size)
        self.inv_freq = nn.Buffer(sinusoidal_inverse_frequencies(config.hidden_size), persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList([FireRedAedDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("Specify exactly one of input_ids or inputs_embeds.")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if use_cache and cache is None:
            self_attention_cache = DynamicCache(config=self.config)
            self_attention_cache.layers = [FireRedAedDecoderCacheLayer() for _ in self_attention_cache.layers]
            cache = EncoderDecoderCache(self_attention_cache, DynamicCache(config=self.config))
        if position_ids is None:
            past_length = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_length
            position_ids = position_ids.unsqueeze(0)

        positions = sinusoidal_embeddings(position_ids.reshape(-1), self.inv_freq.to(inputs_embeds.device))
        positions = positions.view(*position_ids.shape, -1).to(inputs_embeds.dtype)
        hidden_states = self.dropout(inputs_embeds * self.embed_scale + positions)

        if attention_mask is None and hidden_states.shape[1] == 1:
            causal_mask = None  # one new token attends to every earlier one: a decoding step needs no mask
        else:
            causal_mask = create_causal_mask(
                config=self.config,
                inputs_embeds=hidden_states,
                attention_mask=attention_mask,
                cache=cache,
                position_ids=position_ids,
            )
        # A prepared 4-D mask (`prepare_encoder_attention_mask`) is used as is.
        encoder_attention_mask = create_bidirectional_mask(
            config=self.config,
            inputs_embeds=hidden_states,
            attention_mask=encoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
        )
        for layer in self.layers:
            hidden_states = layer(
                hidden_states,
                causal_mask,
                encoder_hidden_states,  # positional, for gradient checkpointing
                encoder_attention_mask=encoder_attention_mask,
                cache=cache,
                **kwargs,
            )
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=self.layer_norm(hidden_states), cache=cache if use_cache else None
        )

    def prepare_encoder_attention_mask(
        self, encoder_hidden_states: torch.Tensor, encoder_attention_mask: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The cross-attention mask of decoding steps (one query per row) in the form the attention implementation
        takes, made once for all the steps of a generation (the encoder frames never change)."""
        return create_bidirectional_mask(
            config=self.config,
            inputs_embeds=encoder_hidden_states[:, :1],
            attention_mask=encoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
        )


class FireRedAedModel(FireRedAedPreTrainedModel):
    def __init__(self, config: FireRedAedConfig):
        super().__init__(config)
        self.encoder = FireRedEncoder(config.encoder_config)
        self.decoder = FireRedAedDecoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.decoder.embed_tokens

    def set_input_embeddings(self, value):
        self.decoder.embed_tokens = value

    def freeze_encoder(self):
        """Stop gradient updates of the encoder (for decoder-only fine-tuning)."""
        self.encoder.requires_grad_(False)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: FireRedEncoderModelOutput | None = None,
        cache: EncoderDecoderCache | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        decoder_position_ids: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            CMVN-normalised fbank features from [`FireRedAsrFeatureExtractor`].
        attention_mask (`torch.Tensor` of shape `(batch_size, num_frames)`, *optional*):
            Frame mask of `input_features` (1 valid, 0 padding).
        """
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_features, attention_mask=attention_mask, **kwargs)
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
            cache=cache,
            inputs_embeds=decoder_inputs_embeds,
            position_ids=decoder_position_ids,
            use_cache=use_cache,
            **kwargs,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: the start token, then the labels without their last position."""
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


@dataclass
class FireRedLstmLmOutput(ModelOutput):
    r"""
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
        Next-token logits.
    state (`tuple(torch.FloatTensor)`):
        The LSTM's `(h, c)`, each of shape `(num_hidden_layers, batch_size, hidden_size)`, to continue from.
    """

    logits: torch.FloatTensor | None = None
    state: tuple[torch.FloatTensor, torch.FloatTensor] | None = None


class FireRedLstmLm(PreTrainedModel):
    """
    The LSTM language model of FireRedASR2-AED's shallow fusion: embedding, LSTM layers, output projection (tied to
    the embedding when `tie_word_embeddings`). The beam search feeds it one token per step, starting from `<sos>`.
    """

    config: FireRedLstmLmConfig
    base_model_prefix = "lm"
    main_input_name = "input_ids"
    _tied_weights_keys = {"proj_out.weight": "embed_tokens.weight"}

    def __init__(self, config: FireRedLstmLmConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.lstm = nn.LSTM(
            config.hidden_size,
            config.hidden_size,
            config.num_hidden_layers,
            batch_first=True,
            dropout=config.dropout if config.num_hidden_layers > 1 else 0.0,
        )
        self.proj_out = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def get_output_embeddings(self):
        return self.proj_out

    def forward(
        self,
        input_ids: torch.LongTensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> FireRedLstmLmOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Token ids (the first one `<sos>` for a new sequence).
        state (`tuple(torch.Tensor)`, *optional*):
            The `(h, c)` of a previous call, to continue the sequences; zeros when omitted.
        """
        hidden_states, state = self.lstm(self.embed_tokens(input_ids), state)
        return FireRedLstmLmOutput(logits=self.proj_out(hidden_states), state=state)


class FireRedAedForConditionalGeneration(FireRedAedGenerationMixin, FireRedAedPreTrainedModel):
    """
    FireRedASR-AED with its output projection (tied to the decoder embedding); transcribes with `generate`.

    With `config.use_ctc_head` it has `ctc_head`, a linear layer from the encoder output to the vocabulary
    (FireRedASR2-AED's CTC branch): `generate(..., return_token_timestamps=True)` aligns the hypotheses with it, and
    `config.ctc_loss_weight` adds its CTC loss to the training loss. With `config.lm_config` it has `lm`, an LSTM
    language model that the beam search fuses with weight `lm_weight` (generation config; 0 by default).
    """

    _tied_weights_keys = {"proj_out.weight": "model.decoder.embed_tokens.weight"}
    release_decoding = tuple(AED_RELEASE_DECODING)

    def __init__(self, config: FireRedAedConfig):
        super().__init__(config)
        self.model = FireRedAedModel(config)
        self.proj_out = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.ctc_head = nn.Linear(config.hidden_size, config.vocab_size) if config.use_ctc_head else None
        self.lm = FireRedLstmLm(config.lm_config) if config.lm_config is not None else None
        self.post_init()

    def release_generation_config(self) -> GenerationConfig:
        return aed_release_generation_config(self.config)

    def get_output_embeddings(self):
        return self.proj_out

    def set_output_embeddings(self, new_embeddings):
        self.proj_out = new_embeddings

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def freeze_encoder(self):
        self.model.freeze_encoder()

    def freeze_decoder(self):
        """Stop gradient updates of the decoder and the (tied) output projection."""
        self.model.decoder.requires_grad_(False)
        self.proj_out.requires_grad_(False)

    def get_ctc_log_probs(self, encoder_hidden_states: torch.Tensor) -> torch.FloatTensor:
        """Per-frame CTC log-probabilities (float32) of encoder outputs, `(batch, frames, vocab_size)`."""
        if self.ctc_head is None:
            raise ValueError(
                "This model has no CTC head (config.use_ctc_head is False): FireRedASR2-AED checkpoints have one; "
                "a FireRedASR-AED (v1) model gets one by fine-tuning with a CTC loss (`fireredasr-hf finetune "
                "--ctc-weight`)."
            )
        return self.ctc_head(encoder_hidden_states).float().log_softmax(-1)

    def _ctc_loss(self, encoder_outputs, labels: torch.LongTensor, num_items_in_batch) -> torch.Tensor:
        log_probs = self.get_ctc_log_probs(encoder_outputs.last_hidden_state)
        targets = (labels >= 0) & (labels != self.config.eos_token_id)
        loss = nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            labels[targets],
            encoder_outputs.attention_mask.sum(-1),
            targets.sum(-1),
            blank=self.config.ctc_blank_id,
            reduction="sum",
            # An utterance with more tokens than encoder frames cannot be aligned: it adds nothing.
            zero_infinity=True,
        )
        # Normalised like the attention loss: per label token of the (accumulated) batch.
        num_items = (labels >= 0).sum() if num_items_in_batch is None else num_items_in_batch
        return loss / (num_items.to(loss.device) if torch.is_tensor(num_items) else num_items)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: FireRedEncoderModelOutput | None = None,
        cache: EncoderDecoderCache | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        decoder_position_ids: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Transcript token ids ending with `<eos>`, padded with -100. Without `decoder_input_ids` the decoder is
            fed the labels shifted right behind the decoder start token (`<sos>`). With `config.ctc_loss_weight`
            w > 0 the loss is `(1 - w) * attention loss + w * CTC loss` (the CTC head on the encoder output; hybrid
            CTC/attention training, Watanabe et al., 2017), both per label token.
        """
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
        ctc_loss_weight = self.config.ctc_loss_weight if labels is not None else 0.0
        if ctc_loss_weight > 0 and encoder_outputs is None:
            encoder_outputs = self.model.encoder(input_features, attention_mask=attention_mask)

        outputs = self.model(
            input_features,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            decoder_inputs_embeds=decoder_inputs_embeds,
            decoder_position_ids=decoder_position_ids,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.proj_out(outputs.last_hidden_state)

        loss = None
        if labels is not None:
            # Labels are already aligned with the logits (the decoder input is the shifted copy).
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.vocab_size, shift_labels=labels, **kwargs
            )
            if ctc_loss_weight > 0:
                ctc_loss = self._ctc_loss(encoder_outputs, labels, kwargs.get("num_items_in_batch"))
                loss = (1 - ctc_loss_weight) * loss + ctc_loss_weight * ctc_loss

        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )


__all__ = [
    "AED_RELEASE_DECODING",
    "FireRedAedDecoder",
    "FireRedAedForConditionalGeneration",
    "FireRedAedModel",
    "FireRedAedPreTrainedModel",
    "FireRedLstmLm",
    "aed_release_generation_config",
]
