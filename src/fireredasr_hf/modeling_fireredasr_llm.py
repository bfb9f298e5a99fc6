# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedASR-LLM: the Conformer encoder, a frame-splicing adapter and a causal language model (Qwen2)."""

import copy
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationConfig, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.generation import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.auto.modeling_auto import MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES
from transformers.utils import ModelOutput
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

from .configuration_fireredasr import FireRedLlmConfig
from .modeling_fireredasr_encoder import (
    FireRedCheckpointMixin,
    FireRedEncoder,
    check_decoding_settings,
    check_input_features,
    encode_for_decoding,
    warn_if_longer_than_trained,
)

# The ASR pipeline decodes a model with `generate` only if its class is listed here (otherwise it assumes CTC);
# registering at import time also covers loading with trust_remote_code.
MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES.setdefault("fireredasr_llm", "FireRedLlmForSpeechSeq2Seq")

FLOAT16_UNSUPPORTED = (
    "FireRedASR-LLM does not run in float16: the released model gives garbage in half precision (the original "
    "code with use_fp16, FireRedASR issues #25 and #61). Load it in bfloat16 or float32, e.g. "
    "`from_pretrained(..., dtype=torch.bfloat16)`."
)


# The release README's decoding settings (beam 3, repetition penalty 3.0, length penalty 1.0, greedy selection).
LLM_RELEASE_DECODING = {"num_beams": 3, "repetition_penalty": 3.0, "length_penalty": 1.0, "do_sample": False}
# FireRedASR2's defaults (`FireRedAsr2Config`: beam 3, repetition penalty 1.0, length penalty 0.0).
LLM2_RELEASE_DECODING = {"num_beams": 3, "repetition_penalty": 1.0, "length_penalty": 0.0, "do_sample": False}


def llm_release_generation_config(config: FireRedLlmConfig) -> GenerationConfig:
    """The generation config of converted FireRedASR-LLM checkpoints: the release's decoding settings (FireRedASR2's
    for a config with `fireredasr_version` 2, as the converter records it)."""
    decoding = LLM2_RELEASE_DECODING if getattr(config, "fireredasr_version", 1) == 2 else LLM_RELEASE_DECODING
    return GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        # An explicit cap (the LLM's context): each utterance still stops after its number of speech positions.
        max_new_tokens=config.text_config.max_position_embeddings,
        **decoding,
    )


@dataclass
class FireRedLlmAudioOutput(ModelOutput):
    r"""
    speech_embeds (`torch.FloatTensor` of shape `(batch_size, num_speech_positions, text_hidden_size)`):
        Adapter outputs, one vector per language-model position (80 ms of audio in the release); positions past
        `speech_lengths[i]` come from padding and are never placed in a prompt.
    speech_lengths (`torch.LongTensor` of shape `(batch_size,)`):
        Number of valid adapter positions of each utterance.
    encoder_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_encoder_frames, encoder_hidden_size)`):
        Conformer encoder outputs.
    encoder_attention_mask (`torch.LongTensor` of shape `(batch_size, num_encoder_frames)`):
        Valid encoder frames (1) and padding (0).
    """

    speech_embeds: torch.FloatTensor | None = None
    speech_lengths: torch.LongTensor | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_attention_mask: torch.LongTensor | None = None


class FireRedLlmAdapter(nn.Module):
    """
    Splices `adapter_downsample_rate` consecutive encoder frames into one vector (dropping the frames that do not
    fill a group) and maps it to the language model's width with Linear-ReLU-Linear.
    """

    def __init__(self, config: FireRedLlmConfig):
        super().__init__()
        self.downsample_rate = config.adapter_downsample_rate
        self.linear1 = nn.Linear(config.encoder_config.hidden_size * self.downsample_rate, config.adapter_hidden_size)
        self.activation = nn.ReLU()
        self.linear2 = nn.Linear(config.adapter_hidden_size, config.text_config.hidden_size)

    def forward(
        self, encoder_hidden_states: torch.Tensor, encoder_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size, num_frames, hidden_size = encoder_hidden_states.shape
        num_positions = num_frames // self.downsample_rate
        spliced = encoder_hidden_states[:, : num_positions * self.downsample_rate].reshape(
            batch_size, num_positions, hidden_size * self.downsample_rate
        )
        speech_embeds = self.linear2(self.activation(self.linear1(spliced)))
        return speech_embeds, encoder_lengths // self.downsample_rate


class PerUtteranceLengthCriteria(StoppingCriteria):
    """
    Stops each utterance after its own number of new tokens. Hypotheses that reach their utterance's limit finish
    exactly as they would at `max_length` when the utterance is decoded alone: in beam search, the best of them
    join the finished hypotheses and the utterance's beams stop.
    """

    def __init__(self, prompt_length: int, max_new_tokens: torch.Tensor):
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        # Rows are utterance-major (each utterance's beams or candidates are consecutive).
        rows_per_utterance = input_ids.shape[0] // self.max_new_tokens.shape[0]
        limits = self.max_new_tokens.to(input_ids.device).repeat_interleave(rows_per_utterance)
        return input_ids.shape[1] - self.prompt_length >= limits


class FireRedLlmPreTrainedModel(FireRedCheckpointMixin, PreTrainedModel):
    config: FireRedLlmConfig
    base_model_prefix = "model"
    main_input_name = "input_features"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["FireRedEncoderLayer"]
    _supports_sdpa = True
    # The encoder's relative-position term is an additive attention bias, which flash attention cannot take.
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True


class FireRedLlmForSpeechSeq2Seq(FireRedLlmPreTrainedModel, GenerationMixin):
    """
    FireRedASR-LLM: the Conformer `encoder`, the frame-splicing `adapter` and the causal `language_model`, which reads
    the adapter outputs in place of the `<speech>` placeholders of its prompt.

    `generate(input_features, attention_mask)` builds the prompt for every utterance (one placeholder per adapter
    position), and returns only the new tokens, so it plugs into `pipeline("automatic-speech-recognition")` and
    `Seq2SeqTrainer(predict_with_generate=True)`. `forward(input_features, attention_mask, labels)` trains on
    transcripts: the model builds prompt + transcript + `<|im_end|>` and computes the loss on the transcript part only,
    as the release's training template does.
    """

    release_decoding = tuple(LLM_RELEASE_DECODING)

    def __init__(self, config: FireRedLlmConfig):
        super().__init__(config)
        self.encoder = FireRedEncoder(config.encoder_config)
        self.adapter = FireRedLlmAdapter(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def release_generation_config(self) -> GenerationConfig:
        return llm_release_generation_config(self.config)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, then the LoRA adapter of a directory that keeps it separate
        (`config.lora_adapter`, written by conversions with `--keep-lora`): without it the weights would be the base
        LLM's, and the transcripts wrong."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, report) with output_loading_info
        if model.config.lora_adapter and not getattr(model, "_hf_peft_config_loaded", False):
            model.load_lora_adapter(pretrained_model_name_or_path, **kwargs)
        return loaded

    def load_lora_adapter(self, pretrained_model_name_or_path, **kwargs) -> None:
        """Applies the PEFT LoRA adapter in the `config.lora_adapter` sub-folder of the model directory or repo."""
        subfolder = "/".join(filter(None, [kwargs.get("subfolder"), self.config.lora_adapter]))
        try:
            import peft  # noqa: F401
        except ImportError:
            raise ImportError(
                f"{pretrained_model_name_or_path} keeps its LoRA as a separate adapter ({subfolder}/), which needs "
                "the peft package: `pip install peft` (or `pip install 'fireredasr-hf[train]'`). Or convert the "
                "original again without --keep-lora to merge the LoRA into the weights."
            ) from None
        hub_kwargs = ("revision", "token", "cache_dir", "local_files_only", "force_download", "proxies")
        adapter_kwargs = {"subfolder": subfolder, **{key: kwargs[key] for key in hub_kwargs if key in kwargs}}
        self.load_adapter(str(pretrained_model_name_or_path), adapter_kwargs=adapter_kwargs)

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings: nn.Module):
        self.language_model.set_output_embeddings(new_embeddings)

    def freeze_encoder(self):
        """Stop gradient updates of the Conformer encoder."""
        self.encoder.requires_grad_(False)

    def freeze_adapter(self):
        """Stop gradient updates of the adapter."""
        self.adapter.requires_grad_(False)

    def freeze_language_model(self):
        """Stop gradient updates of the language model (e.g. before adding a LoRA with peft)."""
        self.language_model.requires_grad_(False)

    def _check_dtype(self):
        if self.language_model.dtype == torch.float16 or self.encoder.dtype == torch.float16:
            raise ValueError(FLOAT16_UNSUPPORTED)

    def get_audio_features(
        self, input_features: torch.FloatTensor, attention_mask: torch.Tensor | None = None
    ) -> FireRedLlmAudioOutput:
        r"""
        Encode fbank features and map them to language-model positions.

        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            CMVN-normalised fbank features from [`FireRedAsrFeatureExtractor`].
        attention_mask (`torch.Tensor` of shape `(batch_size, num_frames)`, *optional*):
            1 for valid feature frames, 0 for padding. Without it every frame is valid.
        """
        self._check_dtype()
        input_features = input_features.to(self.encoder.dtype)
        if torch.is_grad_enabled():
            encoder_outputs = self.encoder(input_features, attention_mask=attention_mask)
        else:
            encoder_outputs = encode_for_decoding(self.encoder, input_features, attention_mask)
        encoder_lengths = encoder_outputs.attention_mask.sum(-1)
        speech_embeds, speech_lengths = self.adapter(encoder_outputs.last_hidden_state, encoder_lengths)
        return FireRedLlmAudioOutput(
            speech_embeds=speech_embeds,
            speech_lengths=speech_lengths,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
        )

    def _prompt_parts(self) -> tuple[list[int], list[int]]:
        """The prompt ids before and after the speech placeholder."""
        prompt_ids = self.config.prompt_ids
        speech_index = prompt_ids.index(self.config.speech_token_id)
        return prompt_ids[:speech_index], prompt_ids[speech_index + 1 :]

    def build_prompt(self, speech_lengths: torch.Tensor) -> tuple[torch.LongTensor, torch.LongTensor]:
        """
        The decode prompt of every utterance, with its speech placeholder repeated `speech_lengths[i]` times, left-padded
        (as batched generation with a causal language model needs). Returns `input_ids` and `attention_mask`.
        """
        prefix, suffix = self._prompt_parts()
        device = speech_lengths.device
        lengths = speech_lengths.tolist()
        prompt_length = len(prefix) + len(suffix) + max(lengths)
        input_ids = torch.full((len(lengths), prompt_length), self.config.pad_token_id, dtype=torch.long, device=device)
        attention_mask = torch.zeros_like(input_ids)
        for row, num_positions in enumerate(lengths):
            ids = prefix + [self.config.speech_token_id] * num_positions + suffix
            input_ids[row, prompt_length - len(ids) :] = torch.tensor(ids, device=device)
            attention_mask[row, prompt_length - len(ids) :] = 1
        return input_ids, attention_mask

    def build_training_inputs(
        self, labels: torch.LongTensor, speech_lengths: torch.Tensor
    ) -> tuple[torch.LongTensor, torch.LongTensor, torch.LongTensor]:
        """
        The release's training sequences from transcript ids (`labels`, padded with -100): prompt (with
        `speech_lengths[i]` placeholders) + transcript + `<|im_end|>`, right-padded. Returns `input_ids`,
        `attention_mask` and the full-sequence `labels`, -100 everywhere but on the transcript and `<|im_end|>`.
        """
        prefix, suffix = self._prompt_parts()
        eos_token_id = self.config.eos_token_id
        sequences, targets = [], []
        for transcript, num_positions in zip(labels, speech_lengths.tolist()):
            transcript = transcript[transcript != -100].tolist()
            if eos_token_id in transcript:
                raise ValueError(
                    f"`labels` must be transcript token ids without the end token {eos_token_id}; the model appends it."
                )
            prompt = prefix + [self.config.speech_token_id] * num_positions + suffix
            sequences.append(prompt + transcript + [eos_token_id])
            targets.append([-100] * len(prompt) + transcript + [eos_token_id])

        length = max(len(sequence) for sequence in sequences)
        input_ids = torch.full((len(sequences), length), self.config.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        full_labels = torch.full_like(input_ids, -100)
        for row, (sequence, target) in enumerate(zip(sequences, targets)):
            input_ids[row, : len(sequence)] = torch.tensor(sequence)
            attention_mask[row, : len(sequence)] = 1
            full_labels[row, : len(target)] = torch.tensor(target)
        device = labels.device
        return input_ids.to(device), attention_mask.to(device), full_labels.to(device)

    def merge_speech_embeds(
        self, input_ids: torch.LongTensor, speech_embeds: torch.Tensor, speech_lengths: torch.Tensor
    ) -> torch.Tensor:
        """Token embeddings of `input_ids` with the valid adapter outputs placed at the `<speech>` placeholders."""
        inputs_embeds = self.get_input_embeddings()(input_ids)
        placeholder_mask = input_ids == self.config.speech_token_id
        valid_positions = torch.arange(speech_embeds.shape[1], device=speech_embeds.device) < speech_lengths[:, None]
        speech_embeds = speech_embeds[valid_positions]
        if placeholder_mask.sum().item() != speech_embeds.shape[0]:
            raise ValueError(
                f"The prompts hold {placeholder_mask.sum().item()} speech placeholders (token id "
                f"{self.config.speech_token_id}) but the audio gives {speech_embeds.shape[0]} adapter positions; each "
                "utterance needs one placeholder per adapter position (see `build_prompt`)."
            )
        return inputs_embeds.masked_scatter(
            placeholder_mask.unsqueeze(-1).to(inputs_embeds.device), speech_embeds.to(inputs_embeds.dtype)
        )

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_features: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        input_ids: torch.LongTensor | None = None,
        input_features_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        Two ways to call it:

        - **Transcripts** (training, no `input_ids`): `input_features`, their frame `attention_mask` and `labels` =
          transcript token ids padded with -100 (as [`FireRedLlmProcessor`] makes them). The model builds the
          release's training sequence (prompt with one placeholder per adapter position, transcript, `<|im_end|>`)
          and returns the loss over the transcript and `<|im_end|>`.
        - **Tokens**: `input_ids` holding `<speech>` placeholders (one per adapter position, e.g. from
          `build_prompt`), their `attention_mask`, and the audio as `input_features` with its frame mask
          `input_features_mask`; `labels` (optional) are then aligned with `input_ids` (standard causal-LM labels).

        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            CMVN-normalised fbank features.
        attention_mask (`torch.Tensor`, *optional*):
            The frame mask of `input_features` when no `input_ids` are given, else the mask of `input_ids`.
        labels (`torch.LongTensor`, *optional*):
            Transcript token ids padded with -100 (without `input_ids`), or labels aligned with `input_ids`.
        input_features_mask (`torch.Tensor` of shape `(batch_size, num_frames)`, *optional*):
            Frame mask of `input_features` when `input_ids` are given.
        """
        self._check_dtype()
        if input_ids is None and inputs_embeds is None:
            if input_features is None or labels is None:
                raise ValueError(
                    "Pass `input_features` with transcript `labels` (training), or `input_ids` with `<speech>` "
                    "placeholders (and `input_features` for them)."
                )
            audio = self.get_audio_features(input_features, attention_mask)
            input_ids, attention_mask, labels = self.build_training_inputs(labels, audio.speech_lengths)
            inputs_embeds = self.merge_speech_embeds(input_ids, audio.speech_embeds, audio.speech_lengths)
        elif input_features is not None:
            if inputs_embeds is not None:
                raise ValueError("Pass `input_features` with `input_ids`, not with `inputs_embeds`.")
            audio = self.get_audio_features(input_features, input_features_mask)
            inputs_embeds = self.merge_speech_embeds(input_ids, audio.speech_embeds, audio.speech_lengths)
        elif inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )

    def _resolve_generation_config(self, generation_config: GenerationConfig | None, kwargs: dict):
        """The effective generation config (`generation_config`, completed by the model's, then updated with
        `kwargs`) and the remaining model kwargs."""
        if generation_config is None:
            generation_config = copy.deepcopy(self.generation_config)
        else:
            generation_config = copy.deepcopy(generation_config)
            generation_config.update(**self.generation_config.to_dict(), defaults_only=True)
        model_kwargs = generation_config.update(**kwargs)
        # `max_length` (e.g. Seq2SeqTrainer's `generation_max_length`) bounds the returned sequence, which holds only
        # new tokens here: it caps the new tokens like `max_new_tokens`.
        if generation_config.max_length is not None:
            caps = [cap for cap in (generation_config.max_new_tokens, generation_config.max_length) if cap is not None]
            generation_config.max_new_tokens = min(caps)
            generation_config.max_length = None
        return generation_config, model_kwargs

    def _check_generate_inputs(self, input_features, attention_mask, generation_config) -> None:
        """Refuse what would decode silently wrong: malformed features or masks, invalid settings (unknown arguments
        are refused by the language model's generate)."""
        check_input_features(input_features, attention_mask, self.config.encoder_config.num_mel_bins)
        check_decoding_settings(generation_config, self.config.text_config.vocab_size)

    @torch.no_grad()
    def generate(
        self,
        input_features: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        logits_processor: LogitsProcessorList | None = None,
        stopping_criteria: StoppingCriteriaList | None = None,
        **kwargs,
    ):
        r"""
        Transcribe audio: returns the new token ids only (`(batch_size, num_new_tokens)`, padded with the pad token),
        or a generate output whose `sequences` hold only the new tokens when `return_dict_in_generate=True`.

        Each utterance gets the release's decode prompt with one placeholder per adapter position of its own audio,
        and stops after at most that many new tokens (further capped by `max_new_tokens` / `max_length`). Prompts
        are left-padded and masked, so an utterance decodes the same in a batch as alone: exactly in float32; in
        bfloat16 the padded lengths change the rounding, which can change a nearly tied beam (docs/parity.md). The repetition penalty
        counts generated tokens only, as in the release (which generated from embeddings alone).

        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            CMVN-normalised fbank features.
        attention_mask (`torch.Tensor` of shape `(batch_size, num_frames)`, *optional*):
            Frame mask of `input_features` (1 valid, 0 padding).
        kwargs:
            Generation options (`num_beams`, `repetition_penalty`, `max_new_tokens`, ...). `labels` (passed by
            `Seq2SeqTrainer`) are ignored.
        """
        kwargs.pop("labels", None)
        for name in ("input_ids", "inputs_embeds", "decoder_input_ids"):
            if kwargs.get(name) is not None:
                raise ValueError(f"`{name}` is not accepted: generate builds the prompt from `input_features`.")
        if input_features is None:
            raise ValueError("generate needs `input_features` (from the feature extractor or processor).")
        generation_config, model_kwargs = self._resolve_generation_config(generation_config, kwargs)
        self._check_generate_inputs(input_features, attention_mask, generation_config)

        warn_if_longer_than_trained(input_features, attention_mask, self.config.max_audio_seconds)
        audio = self.get_audio_features(input_features, attention_mask)
        input_ids, prompt_mask = self.build_prompt(audio.speech_lengths)
        inputs_embeds = self.merge_speech_embeds(input_ids, audio.speech_embeds, audio.speech_lengths)
        prompt_length = input_ids.shape[1]

        cap = generation_config.max_new_tokens
        max_new_tokens = audio.speech_lengths if cap is None else audio.speech_lengths.clamp(max=cap)
        max_new_tokens = max_new_tokens.clamp(min=1)
        generation_config.max_new_tokens = int(max_new_tokens.max())
        stopping_criteria = StoppingCriteriaList(
            [PerUtteranceLengthCriteria(prompt_length, max_new_tokens), *(stopping_criteria or [])]
        )
        logits_processor = LogitsProcessorList(logits_processor or [])
        penalty = generation_config.repetition_penalty
        if penalty is not None and penalty != 1.0:
            # Generation starts from the prompt ids, which transformers would penalise too.
            logits_processor.insert(
                0, RepetitionPenaltyLogitsProcessor(float(penalty), prompt_ignore_length=prompt_length)
            )
            generation_config.repetition_penalty = 1.0

        outputs = self.language_model.generate(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=prompt_mask,
            generation_config=generation_config,
            logits_processor=logits_processor,
            stopping_criteria=stopping_criteria,
            **model_kwargs,
        )
        if isinstance(outputs, torch.Tensor):
            return outputs[:, prompt_length:]
        outputs.sequences = outputs.sequences[:, prompt_length:]
        return outputs


__all__ = [
    "LLM2_RELEASE_DECODING",
    "LLM_RELEASE_DECODING",
    "FireRedLlmAdapter",
    "FireRedLlmForSpeechSeq2Seq",
    "FireRedLlmPreTrainedModel",
    "llm_release_generation_config",
]
