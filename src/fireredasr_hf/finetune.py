# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Fine-tune FireRedASR (AED or LLM) on your own data with `Seq2SeqTrainer`.

    fireredasr-hf finetune --model FireRedTeam/FireRedASR-AED-L --train-data data/train --eval-data data/dev \\
        --output-dir my-aed --num-train-epochs 3 --learning-rate 5e-5 --spec-augment --label-smoothing 0.1 --bf16

The data is a Kaldi directory (`wav.scp` + `text`) or a dataset saved with `save_to_disk` (audio and text columns).
The result in `--output-dir` is a model directory that `pipeline("automatic-speech-recognition", model=...)` and
`fireredasr-hf transcribe --model ...` load (LoRA merged, processor files included); the Trainer's checkpoints go to
`--output-dir/checkpoints`. Several GPUs or machines: start the same command with `torchrun --nproc_per_node N -m
fireredasr_hf.finetune ...` or `accelerate launch -m fireredasr_hf.finetune ...` (see docs/finetuning.md).

Only argparse and the standard library are imported at module level, so the CLI stays quick to start.
"""

import argparse
import json
import sys
from pathlib import Path

VARIANTS = {"fireredasr_aed": "aed", "fireredasr_llm": "llm"}
# The release's training filters (checkpoint args input_length_* / output_length_*): seconds and label tokens.
MAX_DURATION_S = {"aed": 60.0, "llm": 30.0}
MAX_LABEL_LENGTH = {"aed": 250, "llm": 150}


class FinetuneError(ValueError):
    """A problem with the fine-tuning arguments, model or data, reported as one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `finetune` options (shared by `fireredasr-hf finetune` and `python -m fireredasr_hf.finetune`)."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        required=True,
        help="model to start from: a converted directory, an original FireRedASR directory or a Hub repo id",
    )
    model.add_argument("--revision", help="branch, tag or commit of a Hub model")
    model.add_argument("--cache-dir", help="converted-model cache (default: $FIREREDASR_HF_CACHE or the HF home)")

    data = parser.add_argument_group("data")
    data.add_argument(
        "--train-data", required=True, help="Kaldi data directory (wav.scp + text) or a dataset saved to disk"
    )
    data.add_argument("--eval-data", help="held-out data, same formats; evaluated with CER/WER/MER")
    data.add_argument("--train-split", help="split of a saved DatasetDict for --train-data")
    data.add_argument("--eval-split", help="split of a saved DatasetDict for --eval-data")
    data.add_argument("--audio-column", default="audio", help="audio column of a dataset (default: audio)")
    data.add_argument("--text-column", default="text", help="transcript column of a dataset (default: text)")
    data.add_argument("--min-duration", type=float, default=0.1, help="drop shorter utterances, seconds (0.1)")
    data.add_argument(
        "--max-duration", type=float, help="drop longer utterances, seconds (default: 60 for AED, 30 for LLM)"
    )
    data.add_argument(
        "--max-label-length", type=int, help="drop transcripts with more tokens (default: 250 for AED, 150 for LLM)"
    )
    data.add_argument("--preprocessing-num-workers", type=int, help="processes for reading and tokenizing the data")

    recipe = parser.add_argument_group("what to train")
    recipe.add_argument("--freeze-encoder", action="store_true", help="keep the Conformer encoder fixed")
    recipe.add_argument("--freeze-decoder", action="store_true", help="AED: keep the decoder fixed")
    recipe.add_argument("--freeze-adapter", action="store_true", help="LLM: keep the adapter fixed")
    recipe.add_argument(
        "--lora",
        action=argparse.BooleanOptionalAction,
        help="train LoRA adapters instead of the adapted weights (default: on for LLM, on the language model as the "
        "release did; off for AED)",
    )
    recipe.add_argument("--lora-r", type=int, default=64, help="LoRA rank (default 64, the release's)")
    recipe.add_argument("--lora-alpha", type=int, default=16, help="LoRA alpha (default 16, the release's)")
    recipe.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    recipe.add_argument(
        "--lora-target-modules",
        nargs="+",
        help="linear layers to adapt (default: LLM q/k/v/o/gate/up/down_proj, AED q/k/v/o_proj)",
    )
    recipe.add_argument(
        "--lora-modules-prefix",
        help="adapt only modules under this one (default: language_model for LLM, the whole model for AED)",
    )

    recipe.add_argument(
        "--ctc-weight",
        type=float,
        default=0.0,
        help="AED: add the CTC loss of the model's CTC head with this weight, e.g. 0.3 (speeds up learning the "
        "alignment on little data or from scratch). FireRedASR2-AED has a head; a FireRedASR-AED (v1) model gets a new "
        "one. The head is saved with the model and gives word timestamps",
    )

    regularisation = parser.add_argument_group("regularisation")
    regularisation.add_argument("--label-smoothing", type=float, default=0.0, help="e.g. 0.1 (default: off)")
    regularisation.add_argument(
        "--spec-augment", action="store_true", help="mask time spans and mel bands of the training features"
    )
    regularisation.add_argument("--mask-time-prob", type=float, default=0.05, help="time-masked share (0.05)")
    regularisation.add_argument("--mask-time-length", type=int, default=10, help="frames per time mask (10)")
    regularisation.add_argument("--mask-feature-prob", type=float, default=0.1, help="band-masked share (0.1)")
    regularisation.add_argument("--mask-feature-length", type=int, default=10, help="mel bins per band mask (10)")

    training = parser.add_argument_group("training")
    training.add_argument("--output-dir", required=True, help="where the fine-tuned model (and checkpoints/) go")
    training.add_argument("--num-train-epochs", type=float, default=3.0, help="epochs (default 3)")
    training.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (overrides epochs)")
    training.add_argument("--learning-rate", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    training.add_argument("--warmup-steps", type=float, default=0, help="warm-up steps, or a fraction below 1")
    training.add_argument(
        "--lr-scheduler-type", default="linear", help="transformers scheduler name (linear, cosine, ...)"
    )
    training.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0)")
    training.add_argument("--per-device-train-batch-size", type=int, default=8, help="utterances per device (8)")
    training.add_argument("--per-device-eval-batch-size", type=int, default=8, help="utterances per device (8)")
    training.add_argument("--gradient-accumulation-steps", type=int, default=1, help="batches per update (1)")
    training.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations (saves memory)")
    precision = training.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision")
    precision.add_argument("--fp16", action="store_true", help="float16 mixed precision (AED only)")
    training.add_argument(
        "--eval-steps", type=int, help="evaluate every N steps (default: every epoch when --eval-data is given)"
    )
    training.add_argument(
        "--eval-on-start", action="store_true", help="also evaluate before training (the starting point's scores)"
    )
    training.add_argument("--save-steps", type=int, help="checkpoint every N steps (default: every epoch)")
    training.add_argument("--save-total-limit", type=int, default=2, help="checkpoints kept (default 2)")
    training.add_argument("--logging-steps", type=float, default=10, help="log the loss every N steps (10)")
    training.add_argument(
        "--generation-num-beams", type=int, help="beam size when evaluating (default: the model's generation config)"
    )
    training.add_argument("--generation-max-length", type=int, help="token cap when evaluating")
    training.add_argument("--seed", type=int, default=42, help="random seed (42)")
    training.add_argument("--dataloader-num-workers", type=int, default=0, help="collator processes (0)")
    training.add_argument("--resume-from-checkpoint", help="a checkpoint directory, or `latest` for the newest one")
    training.add_argument("--report-to", default="none", help="tensorboard, wandb, ... (default: none)")
    training.add_argument("--use-cpu", action="store_true", help="train on the CPU even if a GPU is present")
    training.add_argument("--deepspeed", help="DeepSpeed JSON configuration (ZeRO stage 1 or 2)")


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fireredasr-hf finetune",
        description="Fine-tune a FireRedASR model (AED or LLM) with Seq2SeqTrainer.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def _check_arguments(args: argparse.Namespace, variant: str) -> None:
    if variant == "aed" and args.freeze_adapter:
        raise FinetuneError("--freeze-adapter applies to FireRedASR-LLM; an AED model has no adapter")
    if variant == "llm" and args.freeze_decoder:
        raise FinetuneError("--freeze-decoder applies to FireRedASR-AED; for the LLM, LoRA or not decides (--no-lora)")
    if variant == "llm" and args.ctc_weight:
        raise FinetuneError("--ctc-weight applies to FireRedASR-AED")
    if variant == "llm" and args.fp16:
        raise FinetuneError("FireRedASR-LLM does not train in float16 (its activations overflow); use --bf16")
    if args.freeze_encoder and args.freeze_decoder and not args.lora:
        raise FinetuneError("--freeze-encoder with --freeze-decoder leaves nothing to train")
    if (args.eval_steps is not None or args.eval_on_start) and not args.eval_data:
        raise FinetuneError("--eval-steps and --eval-on-start need --eval-data")


def load_split(path: str, split: str | None, split_option: str, processor, variant: str, args: argparse.Namespace):
    """A Kaldi directory or saved dataset, prepared for training (decoded once, filtered, labelled); `split_option`
    names the option that chooses `split`, for messages."""
    from .data import load_kaldi_dir, prepare_dataset
    from .transcript_io import is_dataset_dir

    directory = Path(path)
    if is_dataset_dir(directory):
        from datasets import Audio

        from .transcription import TranscriptionError, load_dataset_dir

        try:
            dataset = load_dataset_dir(path, split)
        except TranscriptionError as error:
            raise FinetuneError(str(error).replace("--split", split_option)) from None
        # The collator decodes the audio itself (soundfile/ffmpeg + soxr); datasets would need torchcodec.
        if isinstance(dataset.features.get(args.audio_column), Audio):
            dataset = dataset.cast_column(args.audio_column, Audio(decode=False))
    elif (directory / "wav.scp").is_file():
        if split is not None:
            raise FinetuneError(f"{path} is a Kaldi directory, which has no splits; drop {split_option}")
        dataset = load_kaldi_dir(directory)
    else:
        raise FinetuneError(f"{path} is neither a Kaldi data directory (wav.scp + text) nor a dataset saved to disk")
    max_duration = args.max_duration if args.max_duration is not None else MAX_DURATION_S[variant]
    max_label_length = args.max_label_length if args.max_label_length is not None else MAX_LABEL_LENGTH[variant]
    prepared = prepare_dataset(
        dataset,
        processor,
        audio_column=args.audio_column,
        text_column=args.text_column,
        min_duration_s=args.min_duration,
        max_duration_s=max_duration,
        max_label_length=max_label_length,
        num_proc=args.preprocessing_num_workers,
    )
    if len(prepared) == 0:
        raise FinetuneError(
            f"{path}: no utterance is within {args.min_duration}-{max_duration} s with at most {max_label_length} "
            "label tokens"
        )
    return prepared


def training_arguments(args: argparse.Namespace):
    from transformers import Seq2SeqTrainingArguments

    if args.eval_data:
        eval_strategy = "steps" if args.eval_steps else "epoch"
    else:
        eval_strategy = "no"
    saving = (
        {"save_strategy": "steps", "save_steps": args.save_steps} if args.save_steps else {"save_strategy": "epoch"}
    )
    return Seq2SeqTrainingArguments(
        output_dir=str(Path(args.output_dir) / "checkpoints"),
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        lr_scheduler_type=args.lr_scheduler_type,
        weight_decay=args.weight_decay,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        activation_checkpointing=args.gradient_checkpointing,
        bf16=args.bf16,
        fp16=args.fp16,
        eval_strategy=eval_strategy,
        eval_steps=args.eval_steps,
        eval_on_start=args.eval_on_start,
        **saving,
        save_total_limit=args.save_total_limit,
        logging_steps=args.logging_steps,
        predict_with_generate=True,
        generation_num_beams=args.generation_num_beams,
        generation_max_length=args.generation_max_length,
        seed=args.seed,
        dataloader_num_workers=args.dataloader_num_workers,
        report_to=args.report_to,
        use_cpu=args.use_cpu,
        deepspeed=args.deepspeed,
        # The collator reads the audio column.
        remove_unused_columns=False,
        # Every trainable parameter takes part in every step (frozen ones are not tracked).
        ddp_find_unused_parameters=False,
    )


def configure_model(model, args: argparse.Namespace) -> None:
    """LoRA, freezing, SpecAugment, label smoothing and the CTC loss as the options say, in place."""
    from .training import (
        add_ctc_loss,
        apply_lora,
        configure_spec_augment,
        enable_label_smoothing,
        freeze_unused_parameters,
    )

    if args.lora:
        apply_lora(
            model,
            r=args.lora_r,
            alpha=args.lora_alpha,
            dropout=args.lora_dropout,
            target_modules=args.lora_target_modules,
            modules_prefix=args.lora_modules_prefix,
        )
    if args.freeze_encoder:
        model.freeze_encoder()
    if args.freeze_decoder:
        model.freeze_decoder()
    if args.freeze_adapter:
        model.freeze_adapter()
    if args.spec_augment:
        configure_spec_augment(
            model,
            mask_time_prob=args.mask_time_prob,
            mask_time_length=args.mask_time_length,
            mask_feature_prob=args.mask_feature_prob,
            mask_feature_length=args.mask_feature_length,
        )
    enable_label_smoothing(model, args.label_smoothing)
    if args.ctc_weight:
        if getattr(model, "ctc_head", None) is None:
            print(
                "note: the model has no CTC head (a FireRedASR-AED v1 model): --ctc-weight adds a freshly initialised "
                "one, trained from scratch and saved with the model (it gives word timestamps once trained)."
            )
        add_ctc_loss(model, args.ctc_weight)
    freeze_unused_parameters(model)  # so that the count of trainable parameters printed next is the true one


def run(args: argparse.Namespace) -> int:
    """Fine-tune as the parsed `args` say; returns the exit code. Raises [`FinetuneError`] for bad input and
    `MissingDependencyError` when the [train] extra is not installed."""
    from .extras import require

    require("train", "fine-tuning", ["datasets", "jiwer", "accelerate", "peft"])
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from .hub import ModelResolutionError, resolve_model
    from .training import build_trainer, count_parameters, prepare_for_saving, write_remote_code

    try:
        model_path = resolve_model(args.model, revision=args.revision, cache_dir=args.cache_dir)
    except ModelResolutionError as error:
        raise FinetuneError(str(error)) from None
    revision = args.revision if not Path(model_path).is_dir() else None
    # float32 master weights; --bf16 / --fp16 train in mixed precision.
    model = AutoModelForSpeechSeq2Seq.from_pretrained(model_path, revision=revision, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(model_path, revision=revision)
    variant = VARIANTS.get(model.config.model_type)
    if variant is None:
        raise FinetuneError(f"{args.model} is a {model.config.model_type!r} model, not FireRedASR AED or LLM")
    if args.lora is None:
        args.lora = variant == "llm"
    _check_arguments(args, variant)
    remote_code = bool(getattr(model.config, "auto_map", None))

    training_args = training_arguments(args)
    if args.lora and (training_args.fsdp or (training_args.deepspeed and _zero_stage(args.deepspeed) == 3)):
        raise FinetuneError(
            "LoRA is merged into the full weights at the end, which FSDP and ZeRO-3 shard; train LoRA with DDP or "
            "ZeRO-1/2 (the frozen weights fit where their gradients need not)"
        )

    try:
        configure_model(model, args)
    except ValueError as error:
        raise FinetuneError(str(error)) from None
    trainable, total = count_parameters(model)
    if trainable == 0:
        raise FinetuneError("every parameter is frozen: nothing to train")
    if training_args.process_index == 0:
        print(
            f"Training {trainable:,} of {total:,} parameters ({variant.upper()}, LoRA {'on' if args.lora else 'off'}) "
            f"on {training_args.device.type}, world size {training_args.world_size}"
        )

    # Every process prepares the data; the main one first, so that datasets on disk are cached once.
    try:
        with training_args.main_process_first(desc="preparing the data"):
            train_dataset = load_split(args.train_data, args.train_split, "--train-split", processor, variant, args)
            eval_dataset = None
            if args.eval_data:
                eval_dataset = load_split(args.eval_data, args.eval_split, "--eval-split", processor, variant, args)
    except (FileNotFoundError, ValueError) as error:
        raise FinetuneError(str(error)) from None

    trainer = build_trainer(
        model, processor, training_args, train_dataset, eval_dataset, audio_column=args.audio_column
    )
    resume = args.resume_from_checkpoint
    trainer.train(resume_from_checkpoint=True if resume == "latest" else resume)
    metrics = trainer.evaluate() if eval_dataset is not None else {}

    from .file_modes import make_readable

    output_dir = Path(args.output_dir)
    prepare_for_saving(model)
    if remote_code and trainer.is_world_process_zero():
        write_remote_code(model, processor, output_dir)
    # Gathers sharded weights (FSDP, DeepSpeed) and writes model and processor from the main process.
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        history = {"log_history": trainer.state.log_history, "final_eval": metrics, "source_model": args.model}
        (output_dir / "training_history.json").write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
        make_readable(output_dir)  # safetensors writes 0600 files
        print(f"Fine-tuned model written to {output_dir}")
        if metrics:
            print("Final evaluation: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if _is_number(v)))
    return 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _zero_stage(deepspeed_config: str) -> int | None:
    try:
        config = json.loads(Path(deepspeed_config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FinetuneError(f"cannot read the DeepSpeed configuration {deepspeed_config}: {error}") from None
    return config.get("zero_optimization", {}).get("stage")


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        return run(args)
    except FinetuneError as error:
        print(f"fireredasr-hf finetune: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
