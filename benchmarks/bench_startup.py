# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Start-up time: `fireredasr-hf --help`, `transcribe --help`, `import fireredasr_hf`, against transformers' imports.

    python benchmarks/bench_startup.py [--rounds 7] [--before GIT_REVISION]

Each statement runs in a fresh interpreter (this one, with `src/` of the tree measured first on PYTHONPATH); the
rounds are interleaved (every statement, and every tree, once per round) and the medians of wall time and of CPU
time (user + system, which other processes on a shared machine disturb less) are printed. With `--before REV` the
same statements also run on `src/` of that git revision (e.g. the commit before the lazy imports), extracted into
a temporary folder.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
STATEMENTS = {
    "fireredasr-hf --help": "import sys; sys.argv = ['fireredasr-hf', '--help']; from fireredasr_hf.cli import main; main()",
    "fireredasr-hf transcribe --help": (
        "import sys; sys.argv = ['fireredasr-hf', 'transcribe', '--help']; from fireredasr_hf.cli import main; main()"
    ),
    "import fireredasr_hf": "import fireredasr_hf",
    "import fireredasr_hf + AutoModelForSpeechSeq2Seq": (
        "import fireredasr_hf; from transformers import AutoModelForSpeechSeq2Seq"
    ),
    "(reference) python -c pass": "pass",
    "(reference) import transformers": "import transformers",
    "(reference) transformers model code": "from transformers import PreTrainedModel, AutoModelForSpeechSeq2Seq",
}


def run(statement: str, src: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", help="git revision to compare with (its src/ is measured too)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        trees = {"now": REPO_ROOT / "src"}
        if args.before:
            archive = subprocess.run(
                ["git", "-C", str(REPO_ROOT), "archive", args.before, "src"], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", work], input=archive, check=True)
            trees = {f"before ({args.before})": Path(work) / "src", **trees}
        # The references (no fireredasr_hf code) run once per round, on the current tree.
        pairs = [(tree, name) for name in STATEMENTS for tree in trees if tree == "now" or "(reference)" not in name]
        for tree, name in pairs:  # warm the file cache and the bytecode
            run(STATEMENTS[name], trees[tree])
        results = {pair: [] for pair in pairs}
        load_start = os.getloadavg()
        for _ in range(args.rounds):
            for tree, name in pairs:
                results[tree, name].append(run(STATEMENTS[name], trees[tree]))
        load_end = os.getloadavg()

    print(f"{args.rounds} rounds, load average {load_start[0]:.1f} -> {load_end[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'statement':<52}{'tree':<22}{'wall s':>8}{'CPU s':>8}")
    for (tree, name), runs in results.items():
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        print(f"{name:<52}{tree:<22}{wall:>8.2f}{cpu:>8.2f}")


if __name__ == "__main__":
    main()
