# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Shows that fine-tuning learns, not just runs, on a CPU in minutes.

    python scripts/prove_training.py OUT_DIR [--llm-model DIR] [--max-train-minutes 15] [--num-threads 1]

1. Generates the synthetic spoken corpus (`scripts/make_synthetic_corpus.py`: espeak-ng Mandarin from pinyin,
   English and code-switched phrases; 400 training and 60 held-out utterances whose phrases the training split does
   not contain) with the vocabulary and CMVN statistics of a new model.
2. Trains a randomly initialised small FireRedASR-AED on the training split for at most `--max-train-minutes`
   (hybrid CTC/attention loss, `Seq2SeqTrainer`), scoring a quarter of the training split and the held-out split
   every few epochs, then the whole training split and the held-out split, with greedy decoding. The trained model
   is saved and transcribes through `pipeline("automatic-speech-recognition")`.
3. Fine-tunes the tiny FireRedASR-LLM test model (`--llm-model`, an original-format directory or a converted one;
   trained on eight other sentences, its Qwen2 weights random) with LoRA on the language model, through
   `fireredasr-hf finetune`, on `--llm-phrases` new phrases of the corpus, and compares its loss and error rates
   on those phrases and on the held-out split before and after.
4. Writes `OUT_DIR/training_curves.png` (loss and error-rate curves) and `OUT_DIR/training_results.json`.

Error rates are FireRedASR's (`fireredasr_hf.scoring`): CER over the all-Chinese utterances, WER over the English
ones, MER over all of them (Chinese characters and English words as tokens). On a busy 2-core machine one thread
per process is faster than two (`--num-threads`).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import Seq2SeqTrainingArguments, TrainerCallback

from fireredasr_hf.data import load_kaldi_dir, prepare_dataset
from fireredasr_hf.finetune import main as finetune_main
from fireredasr_hf.training import (
    add_ctc_loss,
    build_aed_from_scratch,
    build_trainer,
    count_parameters,
    save_fine_tuned_model,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = Path(os.environ.get("FIREREDASR_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
# The small AED trained from scratch: 2.0 M parameters. No dropout (nor SpecAugment): the proof is how quickly it fits
# the training split; the held-out figures show how an unregularised model trained on 400 phrases generalises.
AED_ARCHITECTURE = {
    "hidden_size": 128,
    "encoder_layers": 3,
    "decoder_layers": 2,
    "attention_heads": 4,
    "conv_kernel_size": 15,
    "dropout": 0.0,
}


class TimeLimit(TrainerCallback):
    """Stops training once `seconds` have passed since it began (evaluations included)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = None
        self.stopped_early = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.start > self.seconds:
            self.stopped_early = True
            control.should_training_stop = True


def generate_corpus(corpus_dir: Path, seed: int) -> None:
    if (corpus_dir / "vocabulary" / "cmvn.ark").is_file():
        print(f"Reusing the corpus in {corpus_dir}")
        return
    command = [
        sys.executable,
        str(REPO_ROOT / "scripts" / "make_synthetic_corpus.py"),
        str(corpus_dir),
        "--num-train", "400",
        "--num-test", "60",
        "--seed", str(seed),
        "--write-tokenizer", str(corpus_dir / "vocabulary"),
    ]  # fmt: skip
    subprocess.run(command, check=True)


def scores(metrics: dict, prefix: str) -> dict:
    return {
        name: metrics[f"{prefix}_{name}"] for name in ("loss", "mer", "cer", "wer") if f"{prefix}_{name}" in metrics
    }


def train_aed_from_scratch(corpus_dir: Path, output_dir: Path, args: argparse.Namespace) -> dict:
    model, processor = build_aed_from_scratch(corpus_dir / "vocabulary", seed=args.seed, **AED_ARCHITECTURE)
    add_ctc_loss(model, ctc_weight=args.ctc_weight)
    _, num_parameters = count_parameters(model)
    train = prepare_dataset(load_kaldi_dir(corpus_dir / "train"), processor)
    held_out = prepare_dataset(load_kaldi_dir(corpus_dir / "test"), processor)
    # Every fourth utterance: all three languages (they take turns in the corpus), a quarter of the evaluation cost.
    train_quarter = train.select(range(0, len(train), 4))
    steps_per_epoch = -(-len(train) // args.aed_batch_size)
    training_args = Seq2SeqTrainingArguments(
        output_dir=str(output_dir / "aed-checkpoints"),
        per_device_train_batch_size=args.aed_batch_size,
        per_device_eval_batch_size=32,
        learning_rate=args.aed_learning_rate,
        warmup_steps=100,
        lr_scheduler_type="linear",
        num_train_epochs=args.aed_epochs,
        logging_steps=steps_per_epoch,
        eval_strategy="steps",
        eval_steps=3 * steps_per_epoch,
        save_strategy="no",
        predict_with_generate=True,
        generation_num_beams=1,
        remove_unused_columns=False,
        use_cpu=True,
        report_to="none",
        seed=args.seed,
        disable_tqdm=True,
    )
    time_limit = TimeLimit(60 * args.max_train_minutes)
    trainer = build_trainer(
        model,
        processor,
        training_args,
        train_dataset=train,
        eval_dataset={"train_quarter": train_quarter, "held_out": held_out},
        callbacks=[time_limit],
    )
    load_before = os.getloadavg()
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    final_train = trainer.evaluate(train, metric_key_prefix="train")
    final_held_out = trainer.evaluate(held_out, metric_key_prefix="held_out")

    model_dir = save_fine_tuned_model(model, processor, output_dir / "aed-from-scratch")
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(model_dir))
    examples = [
        {"reference": held_out[index]["text"], "pipeline": asr(held_out[index]["audio"])["text"]} for index in range(5)
    ]
    history = trainer.state.log_history
    return {
        "architecture": AED_ARCHITECTURE,
        "parameters": num_parameters,
        "ctc_weight": args.ctc_weight,
        "batch_size": args.aed_batch_size,
        "learning_rate": args.aed_learning_rate,
        "epochs_trained": round(trainer.state.epoch, 2),
        "steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 1),
        "stopped_by_time_limit": time_limit.stopped_early,
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "final_train": scores(final_train, "train"),
        "final_held_out": scores(final_held_out, "held_out"),
        "loss_curve": [(entry["epoch"], entry["loss"]) for entry in history if "loss" in entry],
        "eval_curve": [
            {"epoch": entry["epoch"], **scores(entry, f"eval_{name}"), "split": name}
            for entry in history
            for name in ("train_quarter", "held_out")
            if f"eval_{name}_loss" in entry
        ],
        "pipeline_examples": examples,
    }


def write_subset(source_dir: Path, target_dir: Path, count: int) -> Path:
    """The first `count` utterances of a Kaldi directory, with absolute audio paths."""
    dataset = load_kaldi_dir(source_dir).select(range(count))
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / "wav.scp").write_text("".join(f"{i} {a}\n" for i, a in zip(dataset["id"], dataset["audio"])), "utf-8")
    (target_dir / "text").write_text("".join(f"{i} {t}\n" for i, t in zip(dataset["id"], dataset["text"])), "utf-8")
    return target_dir


def evaluate_model(model_dir: Path, data_dir: Path, output_dir: Path) -> dict:
    """Loss and greedy error rates of a saved model on a Kaldi directory."""
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    model = AutoModelForSpeechSeq2Seq.from_pretrained(model_dir, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(model_dir)
    dataset = prepare_dataset(load_kaldi_dir(data_dir), processor, max_duration_s=30.0)
    arguments = Seq2SeqTrainingArguments(
        output_dir=str(output_dir),
        per_device_eval_batch_size=16,
        predict_with_generate=True,
        generation_num_beams=1,
        remove_unused_columns=False,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    return scores(build_trainer(model, processor, arguments).evaluate(dataset), "eval")


def fine_tune_llm(corpus_dir: Path, output_dir: Path, args: argparse.Namespace) -> dict:
    from fireredasr_hf.hub import resolve_model

    cache_dir = output_dir / "converted-models"
    phrases_dir = write_subset(corpus_dir / "train", output_dir / "llm-phrases", args.llm_phrases)
    llm_dir = output_dir / "llm-lora"
    start = time.perf_counter()
    exit_code = finetune_main(
        [
            "--model", str(args.llm_model),
            "--cache-dir", str(cache_dir),
            "--train-data", str(phrases_dir),
            "--eval-data", str(phrases_dir),
            "--output-dir", str(llm_dir),
            "--num-train-epochs", str(args.llm_epochs),
            "--learning-rate", str(args.llm_learning_rate),
            "--warmup-steps", "10",
            "--per-device-train-batch-size", "8",
            "--per-device-eval-batch-size", "24",
            "--generation-num-beams", "1",
            "--eval-on-start",
            "--eval-steps", "30",
            "--logging-steps", "6",
            "--save-steps", "100000",
            "--seed", str(args.seed),
            "--use-cpu",
        ]
    )  # fmt: skip
    if exit_code != 0:
        raise SystemExit(f"LLM fine-tuning failed with exit code {exit_code}")
    seconds = time.perf_counter() - start
    history = json.loads((llm_dir / "training_history.json").read_text(encoding="utf-8"))["log_history"]
    evaluations = [{"epoch": entry["epoch"], **scores(entry, "eval")} for entry in history if "eval_loss" in entry]
    starting_model = resolve_model(args.llm_model, cache_dir=cache_dir)
    return {
        "lora": {"r": 64, "alpha": 16, "dropout": 0.05, "on": "language_model q/k/v/o/gate/up/down_proj"},
        "trained": "LoRA + encoder + adapter",
        "phrases": args.llm_phrases,
        "epochs": args.llm_epochs,
        "learning_rate": args.llm_learning_rate,
        "seconds": round(seconds, 1),
        "phrases_before": evaluations[0],
        "phrases_after": evaluations[-1],
        "held_out_before": evaluate_model(starting_model, corpus_dir / "test", output_dir / "llm-eval"),
        "held_out_after": evaluate_model(llm_dir, corpus_dir / "test", output_dir / "llm-eval"),
        "loss_curve": [(entry["epoch"], entry["loss"]) for entry in history if "loss" in entry],
        "eval_curve": evaluations,
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    aed = results["aed_from_scratch"]
    ax = axes[0][0]
    ax.plot(*zip(*aed["loss_curve"]), label="training loss (CTC + attention)")
    for split in ("train_quarter", "held_out"):
        points = [(entry["epoch"], entry["loss"]) for entry in aed["eval_curve"] if entry["split"] == split]
        ax.plot(*zip(*points), marker="o", label=f"{split} loss")
    ax.set(title=f"AED from scratch ({aed['parameters'] / 1e6:.1f} M parameters)", xlabel="epoch", ylabel="loss")
    ax.legend()
    ax = axes[0][1]
    for split in ("train_quarter", "held_out"):
        for metric, style in (("mer", "-"), ("cer", "--")):
            points = [(e["epoch"], e[metric]) for e in aed["eval_curve"] if e["split"] == split and metric in e]
            ax.plot(*zip(*points), style, marker="o", label=f"{split} {metric.upper()}")
    ax.axhline(0.2, color="grey", linewidth=0.8)
    ax.set(title="AED error rates (greedy)", xlabel="epoch", ylabel="error rate", ylim=(0, 1.2))
    ax.legend()

    llm = results.get("llm_lora")
    if llm is not None:
        ax = axes[1][0]
        ax.plot(*zip(*llm["loss_curve"]), label="training loss")
        ax.plot(*zip(*[(e["epoch"], e["loss"]) for e in llm["eval_curve"]]), marker="o", label="eval loss (eval mode)")
        ax.set(title=f"tiny LLM, LoRA on {llm['phrases']} new phrases", xlabel="epoch", ylabel="loss")
        ax.legend()
        ax = axes[1][1]
        for metric in ("mer", "cer", "wer"):
            ax.plot(*zip(*[(e["epoch"], e[metric]) for e in llm["eval_curve"]]), marker="o", label=metric.upper())
        ax.set(title="tiny LLM error rates on its new phrases (greedy)", xlabel="epoch", ylabel="error rate")
        ax.legend()
    else:
        axes[1][0].set_axis_off()
        axes[1][1].set_axis_off()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--llm-model", type=Path, default=FIXTURES_DIR / "llm-tiny", help="tiny LLM to fine-tune")
    parser.add_argument("--skip-llm", action="store_true", help="only train the AED")
    parser.add_argument("--max-train-minutes", type=float, default=15.0, help="AED training time limit (15)")
    parser.add_argument("--aed-epochs", type=float, default=40)
    parser.add_argument("--aed-batch-size", type=int, default=8)
    parser.add_argument("--aed-learning-rate", type=float, default=2e-3)
    parser.add_argument("--ctc-weight", type=float, default=0.3)
    parser.add_argument("--llm-phrases", type=int, default=24, help="new phrases the LLM is fine-tuned on (24)")
    parser.add_argument("--llm-epochs", type=float, default=60)
    parser.add_argument("--llm-learning-rate", type=float, default=3e-3)
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads (1: fastest on a busy 2-core CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.skip_llm and not args.llm_model.is_dir():
        parser.error(f"--llm-model {args.llm_model} not found (pass the tiny LLM's directory or --skip-llm)")
    torch.set_num_threads(args.num_threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)

    corpus_dir = args.output_dir / "corpus"
    generate_corpus(corpus_dir, args.seed)
    results = {"cpu_count": os.cpu_count(), "num_threads": args.num_threads}
    results["aed_from_scratch"] = train_aed_from_scratch(corpus_dir, args.output_dir, args)
    if not args.skip_llm:
        results["llm_lora"] = fine_tune_llm(corpus_dir, args.output_dir, args)

    (args.output_dir / "training_results.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    plot(results, args.output_dir / "training_curves.png")
    aed = results["aed_from_scratch"]
    print(
        f"AED from scratch: {aed['train_seconds']:.0f} s of training ({aed['epochs_trained']} epochs), "
        f"training split {aed['final_train']}, held-out split {aed['final_held_out']}"
    )
    if "llm_lora" in results:
        llm = results["llm_lora"]
        print(
            f"LLM LoRA ({llm['seconds']:.0f} s): its {llm['phrases']} new phrases before {llm['phrases_before']}, "
            f"after {llm['phrases_after']}; held-out before {llm['held_out_before']}, after {llm['held_out_after']}"
        )
    print(f"Curves: {args.output_dir / 'training_curves.png'}, figures: {args.output_dir / 'training_results.json'}")


if __name__ == "__main__":
    main()
