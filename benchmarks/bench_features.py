# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Throughput of FireRedAsrFeatureExtractor vs the original front end (kaldi-native-fbank 1.15), same audio, one run.

    python benchmarks/bench_features.py [--fixtures DIR] [--repeat 5] [--rounds 3]

Audio: every fixture wav of at least one frame (audio/, golden/features/wav/, real-speech/), read as int16 and kept
in memory, so file reading is not timed. Each contestant featurizes every utterance one at a time, `--repeat` times
per round; the best of `--rounds` rounds is reported as x real time (seconds of audio per second of compute).

kaldi-native-fbank is single-threaded; our mel projection is a numpy (OpenBLAS) matmul, which by default uses all
cores and slows down badly when they are busy with other work. On a loaded machine compare like with like:
`OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_features.py`.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile
from fireredasr.data.asr_feat import CMVN, KaldifeatFbank

from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor

DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def load_audio(fixtures):
    wav_paths = sorted(
        [
            *fixtures.glob("audio/*.wav"),
            *fixtures.glob("golden/features/wav/*.wav"),
            *fixtures.glob("real-speech/**/*.wav"),
        ]
    )
    waveforms = []
    for path in wav_paths:
        samples, sampling_rate = soundfile.read(path, dtype="int16")
        if sampling_rate != 16000:
            raise ValueError(f"{path} is at {sampling_rate} Hz; the fixtures are 16 kHz")
        if len(samples) >= 400:
            waveforms.append(samples)
    return waveforms


def best_seconds(featurize, waveforms, repeat, rounds):
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            for samples in waveforms:
                featurize(samples)
        timings.append(time.perf_counter() - start)
    return min(timings)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="the shared fixtures folder")
    parser.add_argument("--repeat", type=int, default=5, help="passes over all audio per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the fastest one counts")
    args = parser.parse_args()

    cmvn_path = args.fixtures / "aed-tiny" / "cmvn.ark"
    waveforms = load_audio(args.fixtures)
    audio_seconds = args.repeat * sum(len(samples) for samples in waveforms) / 16000

    original_fbank = KaldifeatFbank(num_mel_bins=80, frame_length=25, frame_shift=10, dither=0.0)
    original_cmvn = CMVN(str(cmvn_path))
    feature_extractor = FireRedAsrFeatureExtractor.from_kaldi_cmvn(cmvn_path)

    contestants = {
        "original fbank (knf 1.15 via KaldifeatFbank)": lambda samples: original_fbank((16000, samples)),
        "ours fbank only (_extract_fbank_features)": lambda samples: feature_extractor._extract_fbank_features(
            samples.astype(np.float32)
        ),
        "original fbank + CMVN": lambda samples: original_cmvn(original_fbank((16000, samples))).astype(np.float32),
        "ours __call__ (fbank + CMVN, checks, BatchFeature)": lambda samples: feature_extractor(
            samples, sampling_rate=16000
        ),
    }
    print(
        f"{len(waveforms)} utterances, {audio_seconds / args.repeat:.1f} s of audio x {args.repeat} repeats, "
        f"best of {args.rounds} rounds"
    )
    speeds = {}
    for name, featurize in contestants.items():
        seconds = best_seconds(featurize, waveforms, args.repeat, args.rounds)
        speeds[name] = audio_seconds / seconds
        print(f"{name:55s} {seconds:7.3f} s  {speeds[name]:8.0f} x real time")
    names = list(contestants)
    print(f"fbank only: ours / original = {speeds[names[1]] / speeds[names[0]]:.2f}")
    print(f"fbank + CMVN: ours / original = {speeds[names[3]] / speeds[names[2]]:.2f}")


if __name__ == "__main__":
    main()
