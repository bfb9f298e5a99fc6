# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Configurations of the FireRedASR models: the shared Conformer encoder, the AED model (with its optional CTC head
and LSTM language model) and the LLM model."""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# Set by `import fireredasr_hf`: its registered pipeline then serves, and a directory's remote-code pipeline
# declaration (`custom_pipelines`, for processes without the package) is not loaded, as transformers would otherwise
# insist on trust_remote_code.
USE_INSTALLED_PIPELINE = False


def drop_remote_pipeline_declaration(kwargs: dict) -> None:
    if USE_INSTALLED_PIPELINE:
        kwargs.pop("custom_pipelines", None)


@strict
class FireRedEncoderConfig(PreTrainedConfig):
    r"""
    Configuration of the FireRedASR Conformer encoder (4x convolutional subsampling, relative-position
    self-attention, macaron feed-forwards, convolution module). The defaults are those of FireRedASR-AED-L and
    FireRedASR-LLM-L.

    Args:
        num_mel_bins (`int`, defaults to 80): dimension of the input fbank features.
        hidden_size (`int`, defaults to 1280): model dimension (`d_model` of the original).
        num_hidden_layers (`int`, defaults to 16): number of Conformer blocks.
        num_attention_heads (`int`, defaults to 20): attention heads per block.
        intermediate_size (`int`, defaults to 5120): feed-forward inner size (4 x hidden_size in the release).
        conv_kernel_size (`int`, defaults to 33): depthwise convolution kernel size (odd).
        subsampling_conv_channels (`int`, defaults to 32): channels of the two stride-2 subsampling convolutions.
        dropout (`float`, defaults to 0.1): residual dropout inside the blocks.
        input_dropout (`float`, defaults to 0.1): dropout on the subsampled features and the position embeddings.
        attention_dropout (`float`, defaults to 0.0): dropout on attention probabilities.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm.
        initializer_range (`float`, defaults to 0.02): std of the normal initialiser.
        apply_spec_augment (`bool`, defaults to `False`): SpecAugment on the input features, in training only.
        mask_time_prob / mask_time_length / mask_time_min_masks: SpecAugment time masking (fraction of frames
            covered, mask span in frames, minimum number of masks).
        mask_feature_prob / mask_feature_length / mask_feature_min_masks: SpecAugment frequency masking.
    """

    model_type = "fireredasr_encoder"

    num_mel_bins: int = 80
    hidden_size: int = 1280
    num_hidden_layers: int = 16
    num_attention_heads: int = 20
    intermediate_size: int = 5120
    conv_kernel_size: int = 33
    subsampling_conv_channels: int = 32
    dropout: float = 0.1
    input_dropout: float = 0.1
    attention_dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    apply_spec_augment: bool = False
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_time_min_masks: int = 2
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    mask_feature_min_masks: int = 0

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.conv_kernel_size % 2 != 1:
            raise ValueError(f"conv_kernel_size must be odd, got {self.conv_kernel_size}.")

    @property
    def subsampling_factor(self) -> int:
        return 4


@strict
class FireRedLstmLmConfig(PreTrainedConfig):
    r"""
    Configuration of the LSTM language model that FireRedASR2-AED can fuse into its beam search (shallow fusion,
    `lm_weight` in the generation config): token embedding, a stack of LSTM layers and an output projection over the
    AED's vocabulary, fed one token per decoding step from `<sos>`.

    Args:
        vocab_size (`int`, defaults to 7832): vocabulary size; it must be the AED's.
        hidden_size (`int`, defaults to 512): embedding and LSTM width (the release uses one size for both).
        num_hidden_layers (`int`, defaults to 2): LSTM layers.
        dropout (`float`, defaults to 0.0): dropout between LSTM layers (training only).
        tie_word_embeddings (`bool`, defaults to `True`): whether the output projection is the embedding matrix.
        eos_weight (`float`, defaults to 3.0): the release multiplies the language model's `<eos>` log-probability by
            3 before fusing it (`models/module/transformer_decoder.py` of FireRedASR2), which discourages ending early.
    """

    model_type = "fireredasr_lstm_lm"

    vocab_size: int = 7832
    hidden_size: int = 512
    num_hidden_layers: int = 2
    dropout: float = 0.0
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True
    eos_weight: float = 3.0
    pad_token_id: int | None = 2
    bos_token_id: int | None = 3
    eos_token_id: int | None = 4


@strict
class FireRedAedConfig(PreTrainedConfig):
    r"""
    Configuration of FireRedASR-AED: the Conformer encoder (`encoder_config`) and a pre-LayerNorm Transformer
    decoder with sinusoidal positions and an output projection tied to the token embedding. Defaults are
    FireRedASR-AED-L (1.1B parameters).

    Args:
        encoder_config (`dict` or [`FireRedEncoderConfig`]): the encoder configuration.
        vocab_size (`int`, defaults to 7832): size of the joint character + BPE vocabulary.
        hidden_size (`int`, defaults to 1280): decoder model dimension (equal to the encoder's in the release).
        num_hidden_layers (`int`, defaults to 16): decoder layers.
        num_attention_heads (`int`, defaults to 20): decoder attention heads.
        intermediate_size (`int`, defaults to 5120): decoder feed-forward inner size.
        max_position_embeddings (`int`, defaults to 5000): decoder positions (`pe_maxlen` of the original).
        dropout (`float`, defaults to 0.1): residual dropout of the decoder.
        attention_dropout (`float`, defaults to 0.0): dropout on decoder attention probabilities.
        max_audio_seconds (`float`, defaults to 60.0): longest input the model was trained on; longer inputs get a
            warning here and are split by voice activity detection in the long-form pipeline.
        use_ctc_head (`bool`, defaults to `False`): whether the model has a CTC head (a linear layer from the encoder
            output to the vocabulary, as FireRedASR2-AED). It gives token timestamps by forced alignment
            (`generate(..., return_token_timestamps=True)`) and, with `ctc_loss_weight`, an auxiliary training loss.
        ctc_blank_id (`int`, defaults to 0): the CTC blank (`<blank>`, id 0 in the release's vocabulary).
        ctc_loss_weight (`float`, defaults to 0.0): with labels, the loss is `(1 - w) * attention + w * CTC` (both
            per label token); 0 trains the attention decoder alone (the CTC head then stays as it is).
        lm_config (`dict` or [`FireRedLstmLmConfig`], *optional*): an LSTM language model for shallow fusion in the
            beam search (`lm_weight` in the generation config); `None` for none.
    """

    model_type = "fireredasr_aed"
    sub_configs_defaults = {
        "encoder_config": FireRedEncoderConfig,
        "lm_config": SubConfigSpec(config_class=FireRedLstmLmConfig, optional=True),
    }

    encoder_config: dict | PreTrainedConfig | None = None
    lm_config: dict | PreTrainedConfig | None = None
    vocab_size: int = 7832
    hidden_size: int = 1280
    num_hidden_layers: int = 16
    num_attention_heads: int = 20
    intermediate_size: int = 5120
    max_position_embeddings: int = 5000
    dropout: float = 0.1
    attention_dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    max_audio_seconds: float = 60.0
    use_cache: bool = True
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True
    pad_token_id: int | None = 2
    bos_token_id: int | None = 3
    eos_token_id: int | None = 4
    decoder_start_token_id: int | None = 3
    use_ctc_head: bool = False
    ctc_blank_id: int = 0
    ctc_loss_weight: float = 0.0

    def __post_init__(self, **kwargs):
        drop_remote_pipeline_declaration(kwargs)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if not 0 <= self.ctc_blank_id < self.vocab_size:
            raise ValueError(f"ctc_blank_id {self.ctc_blank_id} is outside the vocabulary of {self.vocab_size}.")
        if not 0.0 <= self.ctc_loss_weight < 1.0:
            raise ValueError(f"ctc_loss_weight must be in [0, 1), got {self.ctc_loss_weight}.")
        if self.ctc_loss_weight > 0 and not self.use_ctc_head:
            raise ValueError("ctc_loss_weight > 0 needs the CTC head (use_ctc_head=True).")
        if self.lm_config is not None and self.lm_config.vocab_size != self.vocab_size:
            raise ValueError(
                f"The language model predicts {self.lm_config.vocab_size} tokens but the AED {self.vocab_size}: "
                "shallow fusion needs the same vocabulary."
            )
        if self.encoder_config.hidden_size != self.hidden_size:
            raise ValueError(
                f"The decoder attends to encoder states of size {self.encoder_config.hidden_size}, but its own "
                f"hidden_size is {self.hidden_size}; FireRedASR uses one model dimension for both."
            )


@strict
class FireRedLlmConfig(PreTrainedConfig):
    r"""
    Configuration of FireRedASR-LLM: the Conformer encoder (`encoder_config`), an adapter that splices
    `adapter_downsample_rate` consecutive encoder frames and maps them with Linear-ReLU-Linear to the language
    model's width, and a causal language model (`text_config`, Qwen2-7B-Instruct in the release) whose prompt
    holds the speech at the `<speech>` placeholder. Defaults are FireRedASR-LLM-L.

    Args:
        encoder_config (`dict` or [`FireRedEncoderConfig`]): the encoder configuration.
        text_config (`dict` or `PreTrainedConfig`): the language model configuration (a Qwen2 configuration).
        adapter_downsample_rate (`int`, defaults to 2): encoder frames spliced into one language-model position.
        adapter_hidden_size (`int`, *optional*): inner size of the adapter (defaults to the LLM hidden size).
        speech_token_id (`int`, defaults to 151646): id of the `<speech>` placeholder in the LLM tokenizer.
        prompt_template (`str`): the decode prompt; `{speech}` marks where the speech placeholder tokens go.
        prompt_ids (`list[int]`, *optional*): `prompt_template` tokenized by the LLM tokenizer with `{speech}` as one
            `speech_token_id`; the model expands it to one placeholder per adapter position. Defaults to the
            release's prompt in Qwen2 ids (`<|im_start|>user\n<speech>请转写音频为文字<|im_end|>\n<|im_start|>assistant\n`).
        max_audio_seconds (`float`, defaults to 30.0): longest input the model was trained on.
        lora_adapter (`str`, *optional*): sub-folder of the model directory that holds a LoRA of the language model
            as a separate PEFT adapter (conversions with `--keep-lora`); `from_pretrained` applies it (needs peft).
            None (the default) when the LoRA is merged into the weights.
    """

    model_type = "fireredasr_llm"
    sub_configs_defaults = {
        "encoder_config": FireRedEncoderConfig,
        "text_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="qwen2",
            init_kwargs={
                "vocab_size": 152064,
                "hidden_size": 3584,
                "intermediate_size": 18944,
                "num_hidden_layers": 28,
                "num_attention_heads": 28,
                "num_key_value_heads": 4,
                "max_position_embeddings": 32768,
                "rope_theta": 1000000.0,
                "rms_norm_eps": 1e-6,
                "tie_word_embeddings": False,
            },
        ),
    }

    encoder_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    adapter_downsample_rate: int = 2
    adapter_hidden_size: int | None = None
    speech_token: str = "<speech>"
    speech_token_id: int = 151646
    prompt_template: str = "<|im_start|>user\n{speech}请转写音频为文字<|im_end|>\n<|im_start|>assistant\n"
    prompt_ids: list[int] | None = None
    max_audio_seconds: float = 30.0
    lora_adapter: str | None = None
    initializer_range: float = 0.02
    use_cache: bool = True
    pad_token_id: int | None = 151643
    bos_token_id: int | None = 151644
    eos_token_id: int | None = 151645

    def __post_init__(self, **kwargs):
        drop_remote_pipeline_declaration(kwargs)
        super().__post_init__(**kwargs)
        if self.adapter_hidden_size is None:
            self.adapter_hidden_size = self.text_config.hidden_size
        if self.prompt_ids is None:  # the release's decode prompt in Qwen2 ids (`<speech>` = 151646)
            self.prompt_ids = [
                151644,
                872,
                198,
                151646,
                14880,
                46670,
                61443,
                111268,
                17714,
                87335,
                151645,
                198,
                151644,
                77091,
                198,
            ]

    def validate_architecture(self):
        if "{speech}" not in self.prompt_template:
            raise ValueError("prompt_template must contain the '{speech}' field where the speech is placed.")
        if self.prompt_ids.count(self.speech_token_id) != 1:
            raise ValueError(
                f"prompt_ids must hold the speech token id {self.speech_token_id} exactly once, got {self.prompt_ids}."
            )

    def get_text_config(self, *args, **kwargs):
        return self.text_config


__all__ = ["FireRedAedConfig", "FireRedEncoderConfig", "FireRedLlmConfig", "FireRedLstmLmConfig"]
