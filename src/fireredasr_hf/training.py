# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning FireRedASR with `Seq2SeqTrainer`: the pieces a training script combines.

    model = AutoModelForSpeechSeq2Seq.from_pretrained(resolve_model("FireRedTeam/FireRedASR-LLM-L"))
    processor = AutoProcessor.from_pretrained(...)
    apply_lora(model)                       # LLM: r 64 / alpha 16 on the language model, as the release trained it
    configure_spec_augment(model, enabled=True)
    enable_label_smoothing(model, 0.1)
    trainer = build_trainer(model, processor, Seq2SeqTrainingArguments(..., remove_unused_columns=False,
                            predict_with_generate=True), train_dataset, eval_dataset)
    trainer.train()
    save_fine_tuned_model(model, processor, "my-model")   # LoRA merged: a plain directory the pipeline loads

`fireredasr-hf finetune` (`fireredasr_hf.finetune`) wires these to command-line options.
"""

import copy
import re
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import GenerationConfig, Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer_utils import EvalPrediction
from transformers.utils import logging

from .configuration_fireredasr import FireRedAedConfig, FireRedEncoderConfig
from .data import DataCollatorForFireRedAsr
from .feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from .file_modes import make_readable
from .modeling_fireredasr_aed import FireRedAedForConditionalGeneration
from .modeling_fireredasr_llm import FireRedLlmForSpeechSeq2Seq
from .processing_fireredasr import FireRedAsrProcessor
from .scoring import score_utterances
from .tokenization_fireredasr import FireRedAsrTokenizer

logger = logging.get_logger(__name__)

# The release's LoRA (FireRedASR-LLM-L): every attention and MLP projection of the language model.
LLM_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# AED: the attention projections of the encoder and the decoder (self- and cross-attention).
AED_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
SPEC_AUGMENT_SETTINGS = (
    "mask_time_prob",
    "mask_time_length",
    "mask_time_min_masks",
    "mask_feature_prob",
    "mask_feature_length",
    "mask_feature_min_masks",
)


def _check_fireredasr_model(model) -> None:
    if not isinstance(model, (FireRedAedForConditionalGeneration, FireRedLlmForSpeechSeq2Seq)):
        raise TypeError(
            f"expected a FireRedAedForConditionalGeneration or FireRedLlmForSpeechSeq2Seq, got {type(model).__name__}"
        )


def configure_spec_augment(model, enabled: bool = True, **settings) -> FireRedEncoderConfig:
    """
    Turn SpecAugment on the encoder input on or off (it only acts in training mode) and set its masks.

    Args:
        model: a FireRedASR AED or LLM model.
        enabled (`bool`): whether to mask the features while training.
        settings: any of `mask_time_prob` (fraction of frames covered by time masks), `mask_time_length` (frames per
            mask), `mask_time_min_masks`, `mask_feature_prob`, `mask_feature_length` (mel bins per mask) and
            `mask_feature_min_masks`; see [`FireRedEncoderConfig`]. Unset ones keep their values.

    Returns the encoder configuration (saved with the model, so a reloaded model keeps the setting).
    """
    _check_fireredasr_model(model)
    unknown = sorted(set(settings) - set(SPEC_AUGMENT_SETTINGS))
    if unknown:
        raise ValueError(f"unknown SpecAugment settings {unknown}; known: {list(SPEC_AUGMENT_SETTINGS)}")
    for name in ("mask_time_prob", "mask_feature_prob"):
        if name in settings and not 0.0 <= settings[name] <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {settings[name]}")
    for name in ("mask_time_length", "mask_feature_length"):
        if name in settings and settings[name] < 1:
            raise ValueError(f"{name} must be at least 1, got {settings[name]}")
    encoder_config = model.config.encoder_config
    if settings.get("mask_feature_length", encoder_config.mask_feature_length) > encoder_config.num_mel_bins:
        raise ValueError(f"mask_feature_length cannot exceed the {encoder_config.num_mel_bins} mel bins")
    encoder_config.apply_spec_augment = enabled
    for name, value in settings.items():
        setattr(encoder_config, name, value)
    return encoder_config


def label_smoothed_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    vocab_size: int,
    num_items_in_batch: torch.Tensor | int | None = None,
    ignore_index: int = -100,
    shift_labels: torch.Tensor | None = None,
    *,
    label_smoothing: float,
    **kwargs,
) -> torch.Tensor:
    """transformers' causal-LM loss (`ForCausalLMLoss`: same arguments, shifting and normalisation) with label
    smoothing: the target distribution gives `label_smoothing` uniformly to the whole vocabulary."""
    if shift_labels is None:
        shift_labels = nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    reduction = "sum" if num_items_in_batch is not None else "mean"
    loss = nn.functional.cross_entropy(
        logits.float().reshape(-1, vocab_size),
        shift_labels.reshape(-1).to(logits.device),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    return loss if num_items_in_batch is None else _per_item(loss, num_items_in_batch)


def _per_item(loss: torch.Tensor, num_items: torch.Tensor | int) -> torch.Tensor:
    return loss / (num_items.to(loss.device) if torch.is_tensor(num_items) else num_items)


def enable_label_smoothing(model, label_smoothing: float) -> None:
    """
    Train with label-smoothed cross-entropy (0 restores the plain loss).

    The smoothing goes into the model's own loss, not into the Trainer's `label_smoothing_factor`: the Trainer would
    take the labels away from the model, which needs them to build the decoder inputs (AED) or the prompt + transcript
    sequence (LLM).
    """
    _check_fireredasr_model(model)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    # The LLM's loss is computed by its language model, over the sequence the model builds.
    loss_owner = model.language_model if isinstance(model, FireRedLlmForSpeechSeq2Seq) else model
    if label_smoothing == 0:
        loss_owner.__dict__.pop("_loss_function", None)
    else:
        loss_owner.loss_function = partial(label_smoothed_cross_entropy, label_smoothing=label_smoothing)


def add_ctc_loss(model, ctc_weight: float = 0.3, blank_token_id: int | None = None):
    """
    Train a FireRedASR-AED with an auxiliary CTC loss on its encoder (hybrid CTC/attention training, Watanabe et al.,
    2017), in place: `loss = (1 - ctc_weight) * attention loss + ctc_weight * CTC loss`, both per label token. The CTC
    branch makes the encoder's frames align with the transcript early on, which attention alone learns slowly on
    little data (a small AED trained from scratch on a few hundred utterances stays a language model without it).

    The loss uses the CTC head the model declares (`config.use_ctc_head`, FireRedASR2-AED), which is kept as it is.
    A model without one (FireRedASR-AED v1) gets a freshly initialised head, with a warning; either way the head is
    part of the model and is saved with it, so the fine-tuned model also gives token timestamps.

    Args:
        model: a [`FireRedAedForConditionalGeneration`].
        ctc_weight (`float`): the CTC share of the loss, in (0, 1); stored as `config.ctc_loss_weight`.
        blank_token_id (`int`, *optional*): the CTC blank of a new head (`<blank>`, id 0, in the release's
            vocabulary); a declared head keeps its own.

    Returns the model.
    """
    if not isinstance(model, FireRedAedForConditionalGeneration):
        raise TypeError(f"the CTC loss is for FireRedASR-AED models, got {type(model).__name__}")
    if not 0.0 < ctc_weight < 1.0:
        raise ValueError(f"ctc_weight must be in (0, 1), got {ctc_weight}")
    config = model.config
    if model.ctc_head is not None:
        if blank_token_id is not None and blank_token_id != config.ctc_blank_id:
            raise ValueError(f"the model's CTC head uses blank id {config.ctc_blank_id}, not {blank_token_id}")
    else:
        blank_token_id = 0 if blank_token_id is None else blank_token_id
        if not 0 <= blank_token_id < config.vocab_size:
            raise ValueError(f"blank_token_id {blank_token_id} is outside the vocabulary of {config.vocab_size}")
        reference = model.proj_out.weight
        ctc_head = nn.Linear(config.hidden_size, config.vocab_size, device=reference.device, dtype=reference.dtype)
        nn.init.normal_(ctc_head.weight, std=config.initializer_range)
        nn.init.zeros_(ctc_head.bias)
        model.ctc_head = ctc_head
        config.use_ctc_head = True
        config.ctc_blank_id = blank_token_id
        logger.warning(
            "The model has no CTC head (FireRedASR-AED v1): added a freshly initialised one for the CTC loss; it is "
            "saved with the model."
        )
    config.ctc_loss_weight = ctc_weight
    return model


def freeze_unused_parameters(model) -> None:
    """
    Freeze what the training loss does not reach, in place: an AED's language model (used only when decoding) and a
    CTC head while `config.ctc_loss_weight` is 0. Distributed training (DDP without `find_unused_parameters`)
    requires every trainable parameter to get a gradient.
    """
    if not isinstance(model, FireRedAedForConditionalGeneration):
        return
    if model.lm is not None:
        model.lm.requires_grad_(False)
    if model.ctc_head is not None and not model.config.ctc_loss_weight:
        model.ctc_head.requires_grad_(False)


def apply_lora(
    model,
    r: int = 64,
    alpha: int = 16,
    dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
    modules_prefix: str | None = None,
):
    """
    Add LoRA adapters (peft) to the linear layers named `target_modules`, in place. Only the adapted part is frozen
    (its base weights): the rest of the model keeps its `requires_grad` (freeze it with `freeze_encoder()` etc.).

    Defaults follow the release: for FireRedASR-LLM, r 64, alpha 16, dropout 0.05 on every attention and MLP
    projection of the language model (`modules_prefix="language_model"`); the encoder and adapter stay trainable, as
    in its training. For FireRedASR-AED the default targets are the attention projections of the encoder and decoder.

    Args:
        model: a FireRedASR AED or LLM model.
        r (`int`), alpha (`int`), dropout (`float`): LoRA rank, scaling numerator (scaling = alpha / r) and dropout.
        target_modules (`Sequence[str]`, *optional*): names of the `nn.Linear` modules to adapt (the last part of
            their path, e.g. `q_proj`).
        modules_prefix (`str`, *optional*): adapt only modules under this submodule (e.g. `language_model`,
            `model.decoder`); `None` for the LLM means `language_model`, for the AED the whole model.

    Returns the model. Merge the adapters into the weights with [`merge_lora`] (done by [`save_fine_tuned_model`]).
    """
    from peft import LoraConfig, inject_adapter_in_model

    _check_fireredasr_model(model)
    is_llm = isinstance(model, FireRedLlmForSpeechSeq2Seq)
    if target_modules is None:
        target_modules = LLM_LORA_TARGET_MODULES if is_llm else AED_LORA_TARGET_MODULES
    if modules_prefix is None and is_llm:
        modules_prefix = "language_model"
    if not target_modules:
        raise ValueError("target_modules is empty: name the linear layers to adapt, e.g. q_proj v_proj")
    if r < 1 or alpha <= 0 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"need r >= 1, alpha > 0 and 0 <= dropout < 1, got r={r}, alpha={alpha}, dropout={dropout}")
    if has_lora(model):
        raise ValueError("the model already has LoRA adapters; merge them first (merge_lora)")

    scope = re.escape(modules_prefix) + r"\." if modules_prefix else ""
    pattern = rf"{scope}(.*\.)?({'|'.join(re.escape(name) for name in target_modules)})"
    matched = [name for name, module in model.named_modules() if re.fullmatch(pattern, name)]
    if not matched:
        raise ValueError(
            f"no module of the model matches the LoRA targets {list(target_modules)}"
            + (f" under {modules_prefix!r}" if modules_prefix else "")
        )
    not_linear = [name for name in matched if not isinstance(model.get_submodule(name), nn.Linear)]
    if not_linear:
        raise ValueError(f"LoRA targets must be nn.Linear layers; these are not: {not_linear[:5]}")

    # peft freezes every base weight; restore those outside the adapted part.
    requires_grad = {name: parameter.requires_grad for name, parameter in model.named_parameters()}
    inject_adapter_in_model(
        LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern, bias="none"), model
    )
    model.train(model.training)  # the new LoRA modules (their dropout) follow the model's mode
    prefix = f"{modules_prefix}." if modules_prefix else ""
    for name, parameter in model.named_parameters():
        if name in requires_grad and not name.startswith(prefix):
            parameter.requires_grad_(requires_grad[name])
    logger.info(f"LoRA r={r} alpha={alpha} on {len(matched)} linear layers ({', '.join(target_modules)})")
    return model


def _lora_layer_class():
    from peft.tuners.lora import LoraLayer

    return LoraLayer


def merge_lora(model):
    """Merge the LoRA adapters [`apply_lora`] added into the base weights and remove them, in place; the model is
    then a plain transformers model again (what `save_pretrained` and the pipeline expect). Returns the model."""
    lora_layer = _lora_layer_class()
    names = [name for name, module in model.named_modules() if isinstance(module, lora_layer)]
    if not names:
        raise ValueError("the model has no LoRA adapters to merge")
    for name in names:
        module = model.get_submodule(name)
        module.merge(safe_merge=True)
        parent_name, _, child_name = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child_name, module.get_base_layer())
    model.__dict__.pop("peft_config", None)
    return model


def has_lora(model) -> bool:
    """Whether the model holds LoRA adapters (of [`apply_lora`])."""
    lora_layer = _lora_layer_class()
    return any(isinstance(module, lora_layer) for module in model.modules())


def build_compute_metrics(tokenizer) -> Callable[[EvalPrediction], dict[str, float]]:
    """
    `compute_metrics` for `Seq2SeqTrainer(predict_with_generate=True)`: decodes the generated ids and the labels and
    scores them the way FireRedASR does ([`score_utterances`]): `mer` over all utterances (Chinese characters and
    other words as tokens), `cer` over the all-Chinese ones and `wer` over those without Chinese, each present when
    the evaluation set has such utterances.
    """

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        predictions = prediction.predictions
        if isinstance(predictions, tuple):  # (generated ids, ...)
            predictions = predictions[0]
        if predictions.ndim != 2:
            raise ValueError(
                f"expected generated token ids (batch, length), got an array of shape {predictions.shape}: "
                "evaluate with predict_with_generate=True"
            )
        # Trainer pads across batches with -100.
        predictions = np.where(predictions < 0, tokenizer.pad_token_id, predictions)
        labels = np.where(prediction.label_ids < 0, tokenizer.pad_token_id, prediction.label_ids)
        hypotheses = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = tokenizer.batch_decode(labels, skip_special_tokens=True)
        report = score_utterances(
            {str(index): text for index, text in enumerate(references)},
            {str(index): text for index, text in enumerate(hypotheses)},
        )
        metrics = {"mer": report.mer, "cer": report.cer, "wer": report.wer}
        return {name: value for name, value in metrics.items() if value is not None}

    return compute_metrics


class FireRedAsrTrainer(Seq2SeqTrainer):
    """
    `Seq2SeqTrainer` that leaves the model's generation config as it found it. Its `prediction_step` writes every
    transformers default (`max_length=20`, ...) into `model.generation_config`, which would then be saved with the
    fine-tuned model; FireRedASR-LLM reads `max_length` as a cap on the new tokens, so its transcripts would stop
    after 20 tokens in later evaluations and in the saved model.
    """

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        generation_config = copy.deepcopy(self.model.generation_config)
        try:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            self.model.generation_config = generation_config


def build_trainer(
    model,
    processor,
    args: Seq2SeqTrainingArguments,
    train_dataset=None,
    eval_dataset=None,
    audio_column: str = "audio",
    **trainer_kwargs,
) -> FireRedAsrTrainer:
    """
    A `Seq2SeqTrainer` ([`FireRedAsrTrainer`]) for a FireRedASR model on datasets prepared with [`prepare_dataset`]: the collator computes
    the features batch by batch, and with `predict_with_generate=True` evaluation decodes and reports CER/WER/MER
    (see [`build_compute_metrics`]). `audio_column` is the datasets' audio column. Further keyword arguments go to
    `Seq2SeqTrainer` (e.g. `callbacks`).
    """
    _check_fireredasr_model(model)
    freeze_unused_parameters(model)
    if args.remove_unused_columns:
        raise ValueError(
            "set remove_unused_columns=False: the collator reads the audio column, which the Trainer would drop"
        )
    if args.label_smoothing_factor:
        raise ValueError(
            "label_smoothing_factor takes the labels away from the model, which needs them to build its decoder "
            "inputs; use enable_label_smoothing(model, factor) instead"
        )
    if isinstance(model, FireRedLlmForSpeechSeq2Seq) and args.fp16:
        raise ValueError("FireRedASR-LLM does not train in float16 (it overflows); use bf16")
    is_aed = isinstance(model, FireRedAedForConditionalGeneration)
    collator = DataCollatorForFireRedAsr(
        processor.feature_extractor,
        decoder_start_token_id=model.config.decoder_start_token_id if is_aed else None,
        audio_column=audio_column,
    )
    if args.predict_with_generate:
        trainer_kwargs.setdefault("compute_metrics", build_compute_metrics(processor.tokenizer))
    if args.dataloader_pin_memory and not torch.cuda.is_available():
        # Pinned memory only speeds up copies to a GPU; without one torch warns at every data loader it builds.
        args.dataloader_pin_memory = False
    # The Trainer gives the model the tokenizer's special tokens and logs a notice when they differ. The LLM's text
    # config has no pad token (Qwen2's has none), so the notice would come every run: the same change, done here.
    text_config = model.config.get_text_config()
    if text_config.pad_token_id is None and processor.tokenizer.pad_token_id is not None:
        text_config.pad_token_id = processor.tokenizer.pad_token_id
    return FireRedAsrTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=processor,
        **trainer_kwargs,
    )


def prepare_for_saving(model) -> None:
    """
    Make a trained model ready for `save_pretrained` (or `Trainer.save_model`), in place: LoRA adapters merged into
    the weights (so that neither peft nor this package is needed to use it), evaluation mode. A CTC head stays: it
    is declared in the configuration and gives token timestamps.
    """
    _check_fireredasr_model(model)
    if has_lora(model):
        merge_lora(model)
    model.eval()


def write_remote_code(model, processor, output_dir: str | Path) -> None:
    """
    Copy the Python files of the model, processor and pipeline into `output_dir` and declare them (`auto_map`,
    `custom_pipelines`), as converted models have them, so that `trust_remote_code=True` loads the directory where
    fireredasr-hf is not installed. Call it before saving the model and processor.
    """
    from .conversion.common import save_remote_code

    if isinstance(processor.tokenizer, FireRedAsrTokenizer):  # the LLM's Qwen2 tokenizer is part of transformers
        processor.tokenizer.register_for_auto_class()
    save_remote_code(model, model.config, processor, Path(output_dir))


def save_fine_tuned_model(model, processor, output_dir: str | Path, remote_code: bool = False) -> Path:
    """
    Save a fine-tuned model where `from_pretrained` and `pipeline("automatic-speech-recognition")` load it (see
    [`prepare_for_saving`]), with the processor files next to the weights and, with `remote_code=True`, the Python
    files for `trust_remote_code=True` (keep them when the model you started from had them, e.g. a converted Hub
    model: `auto_map` in its config).
    """
    output_dir = Path(output_dir)
    prepare_for_saving(model)
    output_dir.mkdir(parents=True, exist_ok=True)
    if remote_code:
        write_remote_code(model, processor, output_dir)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    make_readable(output_dir)  # safetensors writes 0600 files
    return output_dir


def build_aed_from_scratch(
    vocabulary_dir: str | Path,
    hidden_size: int = 256,
    encoder_layers: int = 6,
    decoder_layers: int = 3,
    attention_heads: int = 4,
    intermediate_size: int | None = None,
    conv_kernel_size: int = 15,
    dropout: float = 0.1,
    seed: int | None = None,
) -> tuple[FireRedAedForConditionalGeneration, FireRedAsrProcessor]:
    """
    A randomly initialised FireRedASR-AED and its processor for a vocabulary in the original layout: `dict.txt`,
    the SentencePiece model `train_bpe1000.model` and the global CMVN statistics `cmvn.ark` (what
    `scripts/make_synthetic_corpus.py --write-tokenizer` writes). For training small models from scratch (tests,
    demos, new languages); the released models were far larger (hidden 1280, 16 + 16 layers).

    The model decodes greedily with transformers' `generate` (no FireRed beam-search settings).
    """
    vocabulary_dir = Path(vocabulary_dir)
    for name in ("dict.txt", "train_bpe1000.model", "cmvn.ark"):
        if not (vocabulary_dir / name).is_file():
            raise FileNotFoundError(f"{vocabulary_dir / name} not found (need dict.txt, train_bpe1000.model, cmvn.ark)")
    tokenizer = FireRedAsrTokenizer(
        vocab_file=str(vocabulary_dir / "dict.txt"), spm_file=str(vocabulary_dir / "train_bpe1000.model")
    )
    processor = FireRedAsrProcessor(
        feature_extractor=FireRedAsrFeatureExtractor.from_kaldi_cmvn(str(vocabulary_dir / "cmvn.ark")),
        tokenizer=tokenizer,
    )
    intermediate_size = intermediate_size or 4 * hidden_size
    layer_sizes = {
        "hidden_size": hidden_size,
        "num_attention_heads": attention_heads,
        "intermediate_size": intermediate_size,
        "dropout": dropout,
    }
    config = FireRedAedConfig(
        encoder_config=FireRedEncoderConfig(
            num_hidden_layers=encoder_layers,
            conv_kernel_size=conv_kernel_size,
            input_dropout=dropout,
            **layer_sizes,
        ),
        num_hidden_layers=decoder_layers,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
        **layer_sizes,
    )
    if seed is not None:
        torch.manual_seed(seed)
    model = FireRedAedForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        num_beams=1,
        max_new_tokens=config.max_position_embeddings - 1,
    )
    return model, processor


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts, tied weights counted once."""
    parameters = {id(parameter): parameter for parameter in model.parameters()}.values()
    trainable = sum(parameter.numel() for parameter in parameters if parameter.requires_grad)
    return trainable, sum(parameter.numel() for parameter in parameters)


__all__ = [
    "FireRedAsrTrainer",
    "add_ctc_loss",
    "apply_lora",
    "build_aed_from_scratch",
    "build_compute_metrics",
    "build_trainer",
    "configure_spec_augment",
    "count_parameters",
    "enable_label_smoothing",
    "freeze_unused_parameters",
    "has_lora",
    "label_smoothed_cross_entropy",
    "merge_lora",
    "prepare_for_saving",
    "save_fine_tuned_model",
    "write_remote_code",
]
