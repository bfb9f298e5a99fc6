# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Transcription speed of the converted FireRedASR-AED against the original release code, same model, one run.

    python benchmarks/bench_aed_speed.py [--threads 2] [--repeats 3] [--utterances 4]

Model: a random-weight original-format AED of mid size (d_model 512, 8 heads, 8 encoder + 8 decoder layers, kernel
33, vocabulary 4000), built with the original `FireRedAsrAed`, saved as the release does and converted with
`fireredasr_hf.conversion.convert_checkpoint`. Audio: `--utterances` clips of 20-30 s made by concatenating the
fixture wavs p01-p10 from different starting points. Decoding: beam 3, softmax smoothing 1.25, length penalty 0.6
(the release's recommended setting and the converted model's default generation config).

Decode lengths. A random decoder never ranks `<eos>` first, so every decode would run to its maximum length (the
encoder length, ~500-750 steps here), about five times more steps than real transcripts have, and the original's
per-step cost grows with the length. The decoder is therefore reshaped (`shape_decoder`) so that the lengths are
those of real speech (~110-130 tokens for 20-30 s, ~4.5 tokens per second):
- one hidden dimension carries only a slow sinusoid of the decoder's positional encoding (rising over the first
  ~350 positions); the `<eos>` output row reads it, so `<eos>` becomes likely after ~100 tokens;
- the final LayerNorm gets random-sign gains (the tied embedding would otherwise make every step repeat its input
  token) and a bias on a second clean dimension that keeps `<blank> <unk> <pad> <sos>` out of the transcripts;
- sharper cross-attention lets the audio steer the tokens, so the stopping point varies between utterances (by a
  few tokens; it does not scale with the duration as real transcripts do).
The compute per step depends only on the shapes, so this changes the number of steps, not their cost.

Timing: both sides run the same utterances in the same process with `torch.set_num_threads(--threads)`, after one
warm-up, interleaved round by round; the median of `--repeats` rounds is reported (wall time, and process CPU time,
which is less sensitive to other load on the machine). End to end = read the wav file, features, encoder, beam
search; the decoding part (encoder + beam search, features given) is timed inside the same calls. Original: its
`ASRFeatExtractor` on the wav paths, then `FireRedAsrAed.transcribe` under `torch.no_grad()` (as its `FireRedAsr`
wrapper calls it). Ours: soundfile + `processor(audio)`, then `model.generate(**inputs)` as a user calls it.

On a machine shared with other jobs, run with `OMP_WAIT_POLICY=PASSIVE` (or `--threads 1`): with OpenMP's default
spin-waiting and more runnable threads than cores, every parallel region waits for a preempted thread, which slows
the many small operations of a cached decoding step several-fold (a 1,536-element layer_norm took ~1 ms) and the
original's few large matrix products much less, so the comparison then measures the machine's load.
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
from common import (
    FIXTURES,
    build_original_aed,
    original_aed_args,
    original_state_dict,
    shape_decoder,
    write_original_aed_dir,
)
from fireredasr.data.asr_feat import ASRFeatExtractor
from fireredasr.models.fireredasr_aed import FireRedAsrAed
from transformers import AutoProcessor

from fireredasr_hf import FireRedAedForConditionalGeneration
from fireredasr_hf.conversion import convert_checkpoint
from fireredasr_hf.conversion.common import load_original_checkpoint

SAMPLING_RATE = 16000
MODEL_ARGS = original_aed_args(d_model=512, n_head=8, n_layers_enc=8, n_layers_dec=8, odim=4000)
DECODING = {
    "beam_size": 3,
    "nbest": 1,
    "decode_max_len": 0,
    "softmax_smoothing": 1.25,
    "length_penalty": 0.6,
    "eos_penalty": 1.0,
}


def write_utterances(directory: Path, count: int) -> list[Path]:
    """`count` int16 wavs of 20 to 30 s, each the fixture clips p01-p10 looped from a different clip onwards."""
    clips = [soundfile.read(path, dtype="int16")[0] for path in sorted((FIXTURES / "audio").glob("p*.wav"))]
    paths = []
    for index, seconds in enumerate(np.linspace(20.0, 30.0, count)):
        looped = np.concatenate((clips[index % len(clips) :] + clips[: index % len(clips)]) * 2)
        path = directory / f"utt{index}_{seconds:.1f}s.wav"
        soundfile.write(path, looped[: int(seconds * SAMPLING_RATE)], SAMPLING_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def load_original(model_dir: Path) -> FireRedAsrAed:
    """As the release's `load_fireredasr_aed_model` does."""
    package = load_original_checkpoint(model_dir / "model.pth.tar")
    model = FireRedAsrAed.from_args(package["args"])
    model.load_state_dict(package["model_state_dict"], strict=True)
    return model.eval()


class Stopwatch:
    """Wall and process CPU seconds since the last `lap`."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self):
        wall, cpu = time.perf_counter(), time.process_time()
        elapsed = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return elapsed


def run_original(model, feature_extractor, wav_paths):
    """Token ids per utterance and (features, decoding) times."""
    watch = Stopwatch()
    features, lengths, _ = feature_extractor([str(path) for path in wav_paths])
    features_time = watch.lap()
    with torch.no_grad():
        hypotheses = model.transcribe(features, lengths, **DECODING)
    decode_time = watch.lap()
    return [nbest[0]["yseq"].tolist() for nbest in hypotheses], features_time, decode_time


def run_ours(model, processor, wav_paths):
    watch = Stopwatch()
    audio = [soundfile.read(path, dtype="int16")[0] for path in wav_paths]
    inputs = processor(audio if len(audio) > 1 else audio[0], sampling_rate=SAMPLING_RATE, return_tensors="pt")
    features_time = watch.lap()
    sequences = model.generate(**inputs)
    decode_time = watch.lap()
    return [hypothesis_ids(row, model.generation_config) for row in sequences.tolist()], features_time, decode_time


def hypothesis_ids(sequence, generation_config):
    """The original's `yseq`: the tokens after the start token, up to `<eos>` (padding of a batch removed)."""
    tokens = sequence[1:]
    if generation_config.eos_token_id in tokens:
        return tokens[: tokens.index(generation_config.eos_token_id)]
    while tokens and tokens[-1] == generation_config.pad_token_id:
        tokens.pop()
    return tokens


def add(totals, times):
    return tuple(total + value for total, value in zip(totals, times))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both implementations")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the median counts")
    parser.add_argument("--utterances", type=int, default=4, help="number of 20-30 s utterances")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_aed_speed_") as workdir:
        workdir = Path(workdir)
        original = build_original_aed(MODEL_ARGS)
        shape_decoder(original)
        write_original_aed_dir(workdir / "original", MODEL_ARGS, original_state_dict(original))
        del original
        convert_checkpoint(workdir / "original", workdir / "converted")
        wav_paths = write_utterances(workdir, args.utterances)

        original = load_original(workdir / "original")
        original_features = ASRFeatExtractor(str(workdir / "original" / "cmvn.ark"))
        ours = FireRedAedForConditionalGeneration.from_pretrained(workdir / "converted")
        processor = AutoProcessor.from_pretrained(workdir / "converted")

        durations = [soundfile.info(path).duration for path in wav_paths]
        print(
            f"{len(wav_paths)} utterances ({', '.join(f'{d:.1f}' for d in durations)} s, {sum(durations):.1f} s in all); "
            f"beam 3, smoothing 1.25, lp 0.6; torch threads {torch.get_num_threads()}; "
            f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )

        shortest = [wav_paths[0]]
        run_original(original, original_features, shortest)  # warm-up
        run_ours(ours, processor, shortest)

        contestants = {
            "original": lambda paths: run_original(original, original_features, paths),
            "ours": lambda paths: run_ours(ours, processor, paths),
        }
        modes = {"batch size 1": [[path] for path in wav_paths], f"batch of {len(wav_paths)}": [wav_paths]}
        # timings[mode][name] = list over rounds of (features (wall, cpu), decoding (wall, cpu))
        timings = {mode: {name: [] for name in contestants} for mode in modes}
        token_ids = {mode: {} for mode in modes}
        for round_index in range(args.repeats):
            for mode, batches in modes.items():
                for name, run in contestants.items():
                    features_total, decode_total, ids = (0.0, 0.0), (0.0, 0.0), []
                    for batch in batches:
                        batch_ids, features_time, decode_time = run(batch)
                        ids += batch_ids
                        features_total, decode_total = (
                            add(features_total, features_time),
                            add(decode_total, decode_time),
                        )
                    timings[mode][name].append((features_total, decode_total))
                    token_ids[mode].setdefault(name, ids)
            print(f"round {round_index + 1}/{args.repeats} done (load average {os.getloadavg()[0]:.1f})", flush=True)

        report_agreement(token_ids, durations)
        report_timings(timings, sum(durations))


def report_agreement(token_ids, durations):
    single, batch = (token_ids[mode] for mode in token_ids)
    lengths = [len(ids) for ids in single["original"]]
    print(
        f"\ntokens per utterance (original, batch size 1): {lengths} "
        f"({sum(lengths) / sum(durations):.1f} tokens per second of audio)"
    )
    for label, first, second in [
        ("batch size 1: ours vs original", single["ours"], single["original"]),
        ("batch: ours vs original", batch["ours"], batch["original"]),
        ("ours: batch vs batch size 1", batch["ours"], single["ours"]),
        ("original: batch vs batch size 1", batch["original"], single["original"]),
    ]:
        same = sum(a == b for a, b in zip(first, second))
        print(f"token ids identical, {label}: {same}/{len(first)}")


def report_timings(timings, audio_seconds):
    print(f"\nmedian seconds for all utterances ({audio_seconds:.1f} s of audio); wall / process CPU")
    print(f"{'':16s}{'':10s}{'decoding (encoder + search)':>30s}{'end to end':>24s}{'x real time (e2e wall)':>24s}")
    medians = {}
    for mode, by_name in timings.items():
        for name, rounds in by_name.items():
            decode = tuple(statistics.median(r[1][k] for r in rounds) for k in range(2))
            end_to_end = tuple(statistics.median(r[0][k] + r[1][k] for r in rounds) for k in range(2))
            medians[mode, name] = decode, end_to_end
            print(
                f"{mode:16s}{name:10s}{decode[0]:17.2f} / {decode[1]:8.2f}{end_to_end[0]:13.2f} / {end_to_end[1]:8.2f}"
                f"{audio_seconds / end_to_end[0]:20.1f}"
            )
    print("\nspeed-up ours / original (target: decoding >= 3x, end to end >= 2x)")
    for mode in timings:
        (orig_decode, orig_e2e), (our_decode, our_e2e) = medians[mode, "original"], medians[mode, "ours"]
        print(
            f"{mode:16s} decoding {orig_decode[0] / our_decode[0]:6.2f}x wall {orig_decode[1] / our_decode[1]:6.2f}x cpu"
            f"   end to end {orig_e2e[0] / our_e2e[0]:6.2f}x wall {orig_e2e[1] / our_e2e[1]:6.2f}x cpu"
        )


if __name__ == "__main__":
    main()
