# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Real-time factor of a full-size FireRedASR-AED-L on this CPU, to choose the hardware of a demo Space.

    python benchmarks/bench_aed_l_cpu_rtf.py [--threads 2] [--seconds 10 30] [--tokens-per-second 4] [--rounds 2]

The released weights are not needed: the model has AED-L's architecture (FireRedAedConfig defaults, 1.14B
parameters, float32 as released) with random weights, and decodes with the release's beam search (beam 3) exactly
`tokens-per-second x seconds` tokens per segment (random weights almost never end early; the count is checked), which
is the work a real transcript of that length costs: compute does not depend on the weights' values. Mandarin speech
runs at about 3-5 characters (tokens) per second. Each measurement is feature extraction + encoder + beam search of
one segment, as the pipeline runs it per VAD segment; the pipeline's other work (reading, VAD) is small beside it.
Reported per segment length: wall and CPU time per round (the rounds of all lengths interleaved), real-time factor
(wall / audio), peak memory of the process, and the load average (the machine may be shared).
"""

import argparse
import os
import resource
import time

import numpy as np
import torch

from fireredasr_hf.configuration_fireredasr import FireRedAedConfig
from fireredasr_hf.conversion.aed import aed_generation_config
from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from fireredasr_hf.modeling_fireredasr_aed import FireRedAedForConditionalGeneration

SAMPLING_RATE = 16000


def build_model(seed: int = 0) -> FireRedAedForConditionalGeneration:
    torch.manual_seed(seed)
    config = FireRedAedConfig()  # AED-L
    model = FireRedAedForConditionalGeneration(config).eval()
    model.generation_config = aed_generation_config(config)
    return model


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise shaped into 0.25 s syllables (the encoder's cost depends only on the length)."""
    rng = np.random.default_rng(seed)
    samples = round(seconds * SAMPLING_RATE)
    envelope = np.abs(np.sin(np.arange(samples) * np.pi / (0.25 * SAMPLING_RATE)))
    return (0.1 * envelope * rng.standard_normal(samples)).astype(np.float32)


def decode(model, feature_extractor, audio: np.ndarray, new_tokens: int) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    features = feature_extractor(audio * 32768, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    ids = model.generate(**features, max_new_tokens=new_tokens)
    return time.perf_counter() - wall, time.process_time() - cpu, ids.shape[-1] - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (a CPU basic Space has 2 vCPUs)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0], help="segment lengths")
    parser.add_argument("--tokens-per-second", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = build_model()
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(
        f"AED-L architecture, {parameters:,} parameters (float32), built in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    feature_extractor = FireRedAsrFeatureExtractor()
    decode(model, feature_extractor, speech_like(2.0), 4)  # warm-up

    results = {seconds: [] for seconds in args.seconds}
    for _ in range(args.rounds):
        for seconds in args.seconds:
            tokens = round(args.tokens_per_second * seconds)
            wall, cpu, generated = decode(model, feature_extractor, speech_like(seconds), tokens)
            results[seconds].append((wall, cpu, generated))
            print(f"  {seconds:.0f} s of audio, {generated} tokens: wall {wall:.1f} s, cpu {cpu:.1f} s", flush=True)

    print(f"torch threads {args.threads}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'audio s':>8}{'tokens':>8}{'wall s':>18}{'cpu s':>18}{'RTF (wall)':>12}{'RTF (cpu/threads)':>19}")
    for seconds, rounds in results.items():
        walls, cpus, generated = zip(*rounds)
        best_wall, best_cpu = min(walls), min(cpus)
        print(
            f"{seconds:>8.0f}{generated[0]:>8}{' / '.join(f'{w:.1f}' for w in walls):>18}"
            f"{' / '.join(f'{c:.1f}' for c in cpus):>18}{best_wall / seconds:>12.3f}"
            f"{best_cpu / args.threads / seconds:>19.3f}"
        )
    print(f"peak memory (max RSS) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
