# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Real-time factor of `fireredasr-hf transcribe` with the tiny fixture AED, as a user runs it.

    python benchmarks/bench_cli_rtf.py [--threads 1 2] [--batch-sizes 1 8] [--copies 5] [--minutes 10]

Model: the shared fixture `aed-tiny` (d_model 64, 2 + 2 layers), converted once into a temporary directory; its
generation config is the release's beam 3 / smoothing 1.25 / length penalty 0.6. Inputs, written as 16 kHz wav:
- short files: the ten fixture utterances (1.2-6 s), `--copies` times (a folder of 10 x copies files);
- one long recording: the utterances in turn with 0.5-2 s of silence between them, `--minutes` long, which the
  pipeline splits with Silero VAD (`--output-format srt`, so with segment timestamps).

Each configuration runs the console script in a fresh process. Reported: the command's own real-time factor
(decoding time / audio duration, from its summary line: reading, VAD, features, encoder and beam search, without
process start and model loading) and the whole command's wall time. The fixture model is tiny, so the numbers
measure the pipeline's overhead (reading, VAD, features, batching) more than a real model's compute.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
UTTERANCES = [f"p{index:02d}" for index in range(1, 11)]
SAMPLING_RATE = 16000
SUMMARY = re.compile(r"(\d+) recording\(s\), ([\d.]+) s of audio decoded in ([\d.]+) s \(real-time factor ([\d.]+)\)")


def long_recording(minutes: float, seed: int = 0) -> np.ndarray:
    clips = [soundfile.read(FIXTURES / "audio" / f"{uttid}.wav", dtype="float32")[0] for uttid in UTTERANCES]
    rng = np.random.default_rng(seed)
    audio = np.zeros(round(minutes * 60 * SAMPLING_RATE), dtype=np.float32)
    position, index = round(rng.uniform(0.5, 2.0) * SAMPLING_RATE), 0
    while position + len(clips[index % len(clips)]) <= len(audio):
        clip = clips[index % len(clips)]
        audio[position : position + len(clip)] = clip
        position += len(clip) + round(rng.uniform(0.5, 2.0) * SAMPLING_RATE)
        index += 1
    return audio


def run(model_dir: Path, inputs: Path, output: Path, threads: int, batch_size: int, output_format: str) -> dict:
    script = Path(sys.executable).parent / "fireredasr-hf"
    command = [str(script), "transcribe", "--model", str(model_dir), str(inputs), "--num-threads", str(threads)]
    command += ["--batch-size", str(batch_size), "--output-format", output_format, "--output", str(output)]
    command += ["--no-progress"]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    files, audio_s, decode_s, rtf = SUMMARY.search(completed.stderr).groups()
    return {
        "files": int(files),
        "audio_s": float(audio_s),
        "decode_s": float(decode_s),
        "rtf": float(rtf),
        "wall": wall,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()

    from fireredasr_hf.conversion import convert_checkpoint

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model_dir = convert_checkpoint(FIXTURES / "aed-tiny", work / "model")
        short = work / "short"
        short.mkdir()
        for copy in range(args.copies):
            for uttid in UTTERANCES:
                shutil.copy(FIXTURES / "audio" / f"{uttid}.wav", short / f"{uttid}_{copy}.wav")
        long = work / "long.wav"
        soundfile.write(long, long_recording(args.minutes), SAMPLING_RATE)

        print(f"{'input':<22}{'threads':>8}{'batch':>7}{'audio s':>9}{'decode s':>10}{'RTF':>8}{'command s':>11}")
        for name, inputs, output_format, output in [
            (f"{len(UTTERANCES) * args.copies} short files", short, "txt", work / "out.txt"),
            (f"{args.minutes:g} min recording", long, "srt", work / "srt"),
        ]:
            for threads in args.threads:
                for batch_size in args.batch_sizes:
                    result = run(model_dir, inputs, output, threads, batch_size, output_format)
                    print(
                        f"{name:<22}{threads:>8}{batch_size:>7}{result['audio_s']:>9.1f}{result['decode_s']:>10.1f}"
                        f"{result['rtf']:>8.3f}{result['wall']:>11.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
