# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Throughput of `fireredasr-hf transcribe --ray` (a local Ray cluster) against the single-process command.

    python benchmarks/bench_ray.py [--copies 60] [--replicas 1 2] [--batch-size 8] [--rounds 2]

Corpus: the ten fixture utterances (1.2-6 s), `--copies` times under distinct ids, listed in a JSON-lines manifest.
Model: the tiny fixture AED, converted once. Each configuration runs the console script in a fresh process, in turn
within a round (the order alternates between rounds):

- `single`: `fireredasr-hf transcribe MANIFEST --output-format jsonl --num-threads 1` (one process, one thread);
- `ray xN`: the same with `--ray --replicas N` (a local cluster started by the command; one thread per replica).

Reported per configuration (median over rounds): the whole command's wall time (process start, Ray start, model
loading in every replica, decoding, writing), the decoding time from the command's summary line (for Ray: from the
first batch submitted to the last result, so it includes the replicas' model loading), and recordings per second of
each. Every run's results must equal the first single-process run's, or the script fails. The machine's cores may
be shared with other work: the load average is printed before and after.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURES = Path(os.environ.get("FIREREDASR_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
SUMMARY = re.compile(r"(\d+) recording\(s\), ([\d.]+) s of audio decoded in ([\d.]+) s")


def console(*arguments: str) -> tuple[float, float, float]:
    """Runs the console script; returns (wall seconds, decoding seconds, audio seconds) from its summary line."""
    script = Path(sys.executable).parent / "fireredasr-hf"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "fireredasr_hf.cli"]
    start = time.perf_counter()
    completed = subprocess.run(
        [*command, *arguments, "--no-progress"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    wall = time.perf_counter() - start
    match = SUMMARY.search(completed.stderr)
    if completed.returncode != 0 or match is None:
        raise SystemExit(f"{' '.join(arguments)} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return wall, float(match.group(3)), float(match.group(2))


def read_rows(output: Path) -> dict:
    files = [output] if output.is_file() else sorted(output.glob("part-*.jsonl"))
    rows = [json.loads(line) for file in files for line in file.read_text().splitlines()]
    return {row["uttid"]: row for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=60)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from fireredasr_hf.conversion import convert_checkpoint

    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        model = str(convert_checkpoint(FIXTURES / "aed-tiny", work / "model"))
        manifest = work / "manifest.jsonl"
        rows = [
            {"id": f"p{index:02d}-{copy}", "audio": str(FIXTURES / "audio" / f"p{index:02d}.wav")}
            for copy in range(args.copies)
            for index in range(1, 11)
        ]
        manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
        common = [str(manifest), "--model", model, "--output-format", "jsonl", "--batch-size", str(args.batch_size)]
        configurations = {"single": ["--num-threads", "1"]}
        for replicas in args.replicas:
            configurations[f"ray x{replicas}"] = ["--ray", "--replicas", str(replicas), "--cpus-per-replica", "1"]
        measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in configurations}
        reference = None
        for round_index in range(args.rounds):
            names = list(configurations) if round_index % 2 == 0 else list(reversed(configurations))
            for name in names:
                output = work / f"{name.replace(' ', '-')}-{round_index}"
                if name == "single":
                    output = output.with_suffix(".jsonl")
                figures = console("transcribe", *common, *configurations[name], "--output", str(output))
                results = read_rows(output)
                reference = reference or results
                if results != reference:
                    raise SystemExit(f"{name}: the results differ from the single-process command's")
                measured[name].append(figures)
                print(
                    f"round {round_index + 1} {name}: wall {figures[0]:.1f} s, decoding {figures[1]:.1f} s", flush=True
                )

    count = len(rows)
    print(f"\nload average after: {os.getloadavg()} (shared machine; medians over {args.rounds} round(s))")
    print(f"{count} recordings, {measured['single'][0][2]:.0f} s of audio, batch size {args.batch_size}")
    print("| configuration | wall s | recordings/s (wall) | decoding s | recordings/s (decoding) |")
    print("|---|---|---|---|---|")
    single_wall = statistics.median(figure[0] for figure in measured["single"])
    for name, figures in measured.items():
        wall = statistics.median(figure[0] for figure in figures)
        decoding = statistics.median(figure[1] for figure in figures)
        print(f"| {name} | {wall:.1f} | {count / wall:.1f} | {decoding:.1f} | {count / decoding:.1f} |")
    for name, figures in measured.items():
        if name != "single":
            ratio = single_wall / statistics.median(figure[0] for figure in figures)
            print(f"{name}: {ratio:.2f}x the single-process command's throughput (wall)")


if __name__ == "__main__":
    main()
