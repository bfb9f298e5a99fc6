# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""CPU threads of `fireredasr-hf transcribe`: the default against 1 and 2 threads, on an idle and a loaded machine.

    python benchmarks/bench_threads.py [--rounds 3] [--copies 1] [--models tiny small] [--load-processes N]

Settings, each run as the console script in a fresh process:
- `default`: no --num-threads (the command's default: `fireredasr_hf.cpu.default_num_threads()` threads, OpenMP
  threads waiting passively);
- `1`, `2`: --num-threads 1 / 2 (passive waiting, as the command sets it);
- `2 spin`: 2 threads with the OpenMP runtime's own waiting (spin, then sleep), i.e. what the command did before it
  chose a default (torch's thread count and OpenMP's wait policy). The runtime reads the policy when torch loads it,
  so the script imports torch before the command's `main` to get it.

Conditions: `idle` (nothing of ours besides the command; the machine may be shared, so its load average is printed)
and `loaded`: N busy-looping processes (default: one per core) started by this script and stopped after the last
round. Rounds are interleaved (every setting once per round). Reported per setting: the median decoding time (from
the command's summary: reading, VAD, features and decoding, without process start and model loading), the median
CPU time of the whole command (user + system) and its median wall time.

Models: `tiny`, the shared fixture AED (d_model 64, 2 + 2 layers), converted once; `small`, a random AED of the same
vocabulary with d_model 512, 8 heads, 12 encoder and 6 decoder layers (about 60 M parameters; greedy, at most 24
tokens per file, so each setting does the same work), where intra-op threads have something to share.
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SUMMARY = re.compile(r"decoded in ([\d.]+) s")
SETTINGS = {
    "default": [],
    "1": ["--num-threads", "1"],
    "2": ["--num-threads", "2"],
    "2 spin": ["--num-threads", "2"],
}
# `2 spin`: torch (and its OpenMP runtime) is loaded before the command sets the passive policy.
SPIN_LAUNCHER = "import sys, torch; from fireredasr_hf.cli import main; sys.exit(main())"


def small_model(tiny_dir: Path, output_dir: Path) -> Path:
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    import fireredasr_hf  # noqa: F401

    tiny = AutoModelForSpeechSeq2Seq.from_pretrained(tiny_dir)
    config = tiny.config
    config.hidden_size, config.num_attention_heads, config.intermediate_size = 512, 8, 2048
    config.num_hidden_layers = 6
    encoder = config.encoder_config
    encoder.hidden_size, encoder.num_attention_heads, encoder.intermediate_size = 512, 8, 2048
    encoder.num_hidden_layers = 12
    torch.manual_seed(0)
    model = type(tiny)(config).eval()
    model.generation_config.num_beams = 1
    model.generation_config.use_fireredasr_beam_search = False
    model.generation_config.max_new_tokens = 24
    model.save_pretrained(output_dir)
    AutoProcessor.from_pretrained(tiny_dir).save_pretrained(output_dir)
    return output_dir


def run(model_dir: Path, inputs: Path, setting: str) -> dict:
    command = ["transcribe", "--model", str(model_dir), str(inputs), "--no-progress", *SETTINGS[setting]]
    if setting == "2 spin":
        command = [sys.executable, "-c", SPIN_LAUNCHER, *command]
    else:
        command = [sys.executable, "-m", "fireredasr_hf", *command]
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"decode": float(SUMMARY.search(completed.stderr).group(1)), "cpu": cpu, "wall": wall}


def start_load(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_load(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1, help="copies of the ten fixture files (default: 1)")
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    parser.add_argument("--conditions", nargs="+", default=["idle", "loaded"], choices=["idle", "loaded"])
    parser.add_argument("--load-processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from fireredasr_hf.conversion import convert_checkpoint
    from fireredasr_hf.cpu import default_num_threads

    print(f"cores: {os.cpu_count()}, default threads here: {default_num_threads()}")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        models = {"tiny": convert_checkpoint(FIXTURES / "aed-tiny", work / "tiny")}
        if "small" in args.models:
            models["small"] = small_model(models["tiny"], work / "small")
        inputs = work / "audio"
        inputs.mkdir()
        for copy in range(args.copies):
            for wav in sorted((FIXTURES / "audio").glob("*.wav")):
                shutil.copy(wav, inputs / f"{wav.stem}_{copy}.wav")

        print(f"{'model':<7}{'machine':<9}{'threads':<9}{'decode s':>9}{'CPU s':>8}{'wall s':>8}   load average")
        for condition in args.conditions:
            load = start_load(args.load_processes) if condition == "loaded" else []
            try:
                if load:
                    time.sleep(5)  # let the load settle
                for name in args.models:
                    results = {setting: [] for setting in SETTINGS}
                    load_start = os.getloadavg()
                    for _ in range(args.rounds):
                        for setting in SETTINGS:
                            results[setting].append(run(models[name], inputs, setting))
                    load_end = os.getloadavg()
                    for setting, runs in results.items():
                        median = {key: statistics.median(run[key] for run in runs) for key in ("decode", "cpu", "wall")}
                        print(
                            f"{name:<7}{condition:<9}{setting:<9}{median['decode']:>9.2f}{median['cpu']:>8.1f}"
                            f"{median['wall']:>8.1f}   {load_start[0]:.1f} -> {load_end[0]:.1f}",
                            flush=True,
                        )
            finally:
                stop_load(load)


if __name__ == "__main__":
    main()
