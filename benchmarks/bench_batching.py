# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Batch throughput of the transcription engine: utterances per CPU-second by batch size on a mix of 2-30 s
utterances, in float32 and bfloat16, with PyTorch's own linear kernels and with weights packed for oneDNN; and how
often each gives the token ids of float32.

    python benchmarks/bench_batching.py [--utterances 24] [--rounds 2] [--batch-sizes 1 4 8 16] [--work_dir DIR]
        [--variants float32 float32-onednn bfloat16 bfloat16-onednn] [--num-beams 3]

Model: a random original-format FireRedASR-AED at AED-L's width (d_model 1280, 20 heads, vocabulary 7832) with 4
encoder + 4 decoder layers (`common.build_converted_aed`), converted. A random decoder has no notion of the end of
speech, so its decoder is shaped (`common.shape_decoder`) not to end by itself, and `RealisticLengthAed` stops each
utterance after 4.5 tokens per second of its own audio (the rate of real Chinese transcripts), at batch size 1 as in
a batch: every configuration does the same decoding work. Decoding: the converted model's default (FireRed beam
search, beam 3, softmax smoothing 1.25, length penalty 0.6) or greedy (`--num-beams 1`).

Variants: `float32` and `bfloat16` with PyTorch's kernels (what `pipeline()` and `from_pretrained` give), and
`-onednn` with `cpu_linear.use_onednn_linear(prepack=True)` (what the command line and the engine's loader run on
AMD CPUs).

Path: `Transcriber.transcribe` (what the CLI's jobs run): recordings read ahead, one pipeline call per group, the
pipeline's segments batched `batch_size` at a time in length order (`sort_window`, default); "input order" is the
same batch size with `sort_window=0`, the batching before length sorting. Audio: fixture clips p01-p10 looped to
log-uniform random durations of 2-30 s, in memory (no file reading).

Timing: torch single-threaded (`--threads`), process CPU time next to wall time, configurations interleaved round by
round; the table gives the median over rounds and the spread (min-max) of utterances per CPU-second. The machine's
load average is printed: on a shared machine CPU time is the robust figure.

Agreement: the share of utterances whose token ids (and transcripts) equal float32's with PyTorch's kernels, at batch
size 1, for the fixtures' tiny trained AED and LLM on the ten fixture clips, and for the random model above.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from common import FIXTURES, build_converted_aed, looped_utterances
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, pipeline

import fireredasr_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from fireredasr_hf import FireRedAedForConditionalGeneration
from fireredasr_hf.conversion import convert_checkpoint
from fireredasr_hf.cpu_linear import use_onednn_linear
from fireredasr_hf.transcription import AudioItem, Transcriber

SAMPLING_RATE = 16000
# Real transcripts: ~4.5 tokens per second of speech; the encoder gives 25 frames per second.
TOKENS_PER_ENCODER_FRAME = 4.5 / 25
FIXTURE_CLIPS = [f"p{index:02d}" for index in range(1, 11)]
VARIANTS = ("float32", "float32-onednn", "bfloat16", "bfloat16-onednn")


class RealisticLengthAed(FireRedAedForConditionalGeneration):
    """Decodes each utterance for 4.5 tokens per second of its audio (its decoder never ends by itself)."""

    def _fireredasr_beam_search(self, encoder_outputs, encoder_lengths, *args, **kwargs):
        steps = torch.ceil(encoder_lengths * TOKENS_PER_ENCODER_FRAME).long()
        return super()._fireredasr_beam_search(encoder_outputs, steps, *args, **kwargs)


def utterance_durations(count: int, seed: int = 0) -> list[float]:
    """Log-uniform durations of 2-30 s (more short utterances than long ones, as in real corpora)."""
    rng = np.random.default_rng(seed)
    return [round(float(seconds), 2) for seconds in np.exp(rng.uniform(np.log(2.0), np.log(30.0), count))]


def build_transcriber(model_dir: Path, variant: str, batch_size: int, num_beams: int, sort: bool, threads: int):
    model = load_variant(RealisticLengthAed, model_dir, variant)
    processor = AutoProcessor.from_pretrained(model_dir)
    asr = pipeline(
        "automatic-speech-recognition",
        model=model,
        feature_extractor=processor.feature_extractor,
        tokenizer=processor.tokenizer,
        sort_window=None if sort else 0,
    )
    # The engine sets torch's thread count (by default to the physical cores): give it the benchmark's.
    return Transcriber(
        asr, batch_size=batch_size, vad="energy", num_threads=threads, generate_kwargs={"num_beams": num_beams}
    )


def transcribe(transcriber, waveforms) -> tuple[list[str], float, float]:
    """Texts, wall seconds and process CPU seconds of one job over the waveforms."""
    items = [AudioItem(str(index), f"utterance {index}", lambda rate, w=w: w) for index, w in enumerate(waveforms)]
    texts = {}

    def on_failure(item, message):
        raise RuntimeError(message)

    wall, cpu = time.perf_counter(), time.process_time()
    transcriber.transcribe(items, lambda item, result: texts.__setitem__(item.uttid, result["text"]), on_failure)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return [texts[item.uttid] for item in items], wall, cpu


def measure_throughput(model_dir, waveforms, args):
    configurations = []
    for variant in args.variants:
        for batch_size in args.batch_sizes:
            configurations.append((variant, batch_size, True))
        if args.unsorted_batch_size:
            configurations.append((variant, args.unsorted_batch_size, False))
    transcribers = {
        configuration: build_transcriber(
            model_dir, configuration[0], configuration[1], args.num_beams, configuration[2], args.threads
        )
        for configuration in configurations
    }
    for configuration, transcriber in transcribers.items():  # warm-up
        transcribe(transcriber, waveforms[:2])
    timings = {configuration: [] for configuration in configurations}
    texts = {}
    for round_index in range(args.rounds):
        for configuration in configurations:
            outputs, wall, cpu = transcribe(transcribers[configuration], waveforms)
            timings[configuration].append((wall, cpu))
            texts.setdefault(configuration, outputs)
        print(f"round {round_index + 1}/{args.rounds} done (load average {os.getloadavg()[0]:.1f})", flush=True)

    count, audio_seconds = len(waveforms), sum(len(w) for w in waveforms) / SAMPLING_RATE
    print(
        f"\n{count} utterances, {audio_seconds:.0f} s of audio; beam {args.num_beams}; medians over {args.rounds} "
        f"rounds (spread min-max); torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'variant':16s}{'batch':>16s}{'utt / CPU-s':>13s}{'spread':>15s}{'utt / wall-s':>14s}{'CPU RTF':>9s}{'vs batch 1':>12s}"
    )
    for variant in args.variants:
        baseline = None
        for configuration in configurations:
            if configuration[0] != variant:
                continue
            walls, cpus = zip(*timings[configuration])
            rates = [count / cpu for cpu in cpus]
            rate = statistics.median(rates)
            baseline = baseline or rate
            label = f"{configuration[1]}" + ("" if configuration[2] else " (input order)")
            print(
                f"{variant:16s}{label:>16s}{rate:13.3f}{min(rates):7.3f}-{max(rates):.3f}"
                f"{count / statistics.median(walls):14.3f}{statistics.median(cpus) / audio_seconds:9.3f}"
                f"{rate / baseline:11.2f}x"
            )
    reference = texts[configurations[0]]
    for configuration in configurations[1:]:
        same = sum(a == b for a, b in zip(texts[configuration], reference))
        if configuration[0] == configurations[0][0]:
            print(f"{configuration[0]} batch {configuration[1]}: same text as batch 1 for {same}/{count} utterances")


def token_ids(model, processor, waveform, **generate_kwargs) -> list[int]:
    inputs = processor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt").to(model.dtype)
    with torch.no_grad():
        return model.generate(**inputs, **generate_kwargs)[0].tolist()


def load_variant(model_class, model_dir: Path, variant: str):
    dtype_name, _, kernels = variant.partition("-")
    model = model_class.from_pretrained(model_dir, dtype=getattr(torch, dtype_name)).eval()
    if kernels == "onednn":
        use_onednn_linear(model, prepack=True)
    return model


def report_agreement(workdir: Path, random_dir: Path, waveforms, num_beams: int, variants):
    """Token ids (and transcripts) of each variant against float32 with PyTorch's own kernels, batch size 1."""
    others = [variant for variant in variants if variant != "float32"]
    print("\nagainst float32 (PyTorch's kernels), batch size 1: token ids identical (transcripts identical)")
    clips = [soundfile.read(FIXTURES / "audio" / f"{uttid}.wav", dtype="int16")[0] for uttid in FIXTURE_CLIPS]
    for name, source in (("fixture AED (tiny, trained)", "aed-tiny"), ("fixture LLM (tiny, trained)", "llm-tiny")):
        converted = convert_checkpoint(FIXTURES / source, workdir / f"{source}-hf", dtype="float32")
        processor = AutoProcessor.from_pretrained(converted)
        ids, texts = {}, {}
        for variant in ["float32", *others]:
            model = load_variant(AutoModelForSpeechSeq2Seq, converted, variant)
            ids[variant] = [token_ids(model, processor, clip) for clip in clips]
            texts[variant] = processor.batch_decode(ids[variant], skip_special_tokens=True)
        cells = [
            f"{variant} {sum(a == b for a, b in zip(ids[variant], ids['float32']))}/{len(clips)} "
            f"({sum(a == b for a, b in zip(texts[variant], texts['float32']))}/{len(clips)})"
            for variant in others
        ]
        print(f"  {name}, default decoding: {'; '.join(cells)}")
    processor = AutoProcessor.from_pretrained(random_dir)
    ids = {}
    for variant in ["float32", *others]:
        model = load_variant(RealisticLengthAed, random_dir, variant)
        ids[variant] = [token_ids(model, processor, w * 32768, num_beams=num_beams) for w in waveforms]
    cells = []
    for variant in others:
        pairs = list(zip(ids["float32"], ids[variant]))
        prefix = [next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a)) / len(a) for a, b in pairs]
        cells.append(
            f"{variant} {sum(a == b for a, b in pairs)}/{len(pairs)} (share before the first difference "
            f"{statistics.mean(prefix):.2f})"
        )
    print(f"  random d_model-1280 model, beam {num_beams}: {'; '.join(cells)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=24, help="utterances of 2-30 s")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds (interleaved)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--unsorted-batch-size", type=int, default=8, help="also time this batch size in input order")
    parser.add_argument("--num-beams", type=int, default=3)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=VARIANTS,
        help="dtype, and -onednn for linear layers packed for oneDNN (cpu_linear.use_onednn_linear)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--work_dir", type=Path, help="keep (and reuse) the random model here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_batching_") as scratch:
        workdir = args.work_dir or Path(scratch)
        model_dir = workdir / "converted"
        if not (model_dir / "config.json").exists():
            # <eos> after ~2000 tokens: never within the 4.5 tokens per second that RealisticLengthAed decodes.
            build_converted_aed(workdir, encoder_layers=4, decoder_layers=4, eos_after_tokens=2000)
        durations = utterance_durations(args.utterances)
        waveforms = looped_utterances(durations)
        print(
            f"durations (s): {', '.join(f'{d:.1f}' for d in sorted(durations))}; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
            flush=True,
        )
        measure_throughput(model_dir, waveforms, args)
        if not args.skip_agreement:
            report_agreement(workdir, model_dir, waveforms, args.num_beams, args.variants)


if __name__ == "__main__":
    main()
