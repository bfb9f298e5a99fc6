# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Load test of `fireredasr-hf serve` on loopback: throughput and latency with dynamic batching on and off.

    python benchmarks/bench_serving.py [--requests 300] [--concurrency 1 8 32] [--batch-size 8] [--max-wait-ms 10]
                                       [--rounds 1]

Two servers run side by side on the tiny fixture AED (converted once into a temporary directory), one thread each:
batching on (`--batch-size B --max-wait-ms W`) and off (`--batch-size 1`, every request decoded alone). Each round
sends, for every concurrency level, `--requests` requests to each server in turn (the order alternates between
rounds); the ten fixture utterances (1.2-6 s) are sent in turn. Every request must be answered exactly once with
status 200 and the text of the offline pipeline (`Transcriber.transcribe_audio`), or the script fails.

Reported per (mode, concurrency): throughput (requests/s), p50 and p95 latency, errors, and the server's CPU
seconds per request (psutil). The client (httpx, asyncio) runs in this process and shares the machine's cores with
the server, so absolute figures depend on the machine; the ratio on/off, measured in the same run, is the point.
The fixture model is tiny: the figures measure the server's and the pipeline's per-request overhead, which
batching amortises, more than a real model's compute (where batching gains more on a GPU).
"""

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from fireredasr_hf.conversion import convert_checkpoint
from fireredasr_hf.serving.load_test import run_load
from fireredasr_hf.transcription import Transcriber

FIXTURES = Path(os.environ.get("FIREREDASR_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
UTTERANCES = [f"p{index:02d}" for index in range(1, 11)]
MODEL = "fireredasr-tiny"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: Path, batch_size: int, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "fireredasr_hf.cli", "serve", "--model", str(model_dir), "--port", str(port)]
    command += ["--served-model-name", MODEL, "--batch-size", str(batch_size), "--max-wait-ms", str(max_wait_ms)]
    command += ["--num-threads", "1", "--log-level", "warning"]
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start within 300 s")
        time.sleep(0.2)


def measure(url: str, pid: int, files: list[Path], expected: list[str], requests: int, concurrency: int) -> dict:
    server = psutil.Process(pid)
    cpu_before = sum(server.cpu_times()[:2])
    result = asyncio.run(run_load(url, MODEL, files, requests, concurrency))
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    problems = list(result.exceptions)
    for index, answer in enumerate(result.answers):
        if answer != (200, expected[index % len(expected)] + "\n"):
            problems.append(f"request {index}: {answer!r:.200}")
    if problems:
        raise SystemExit(f"{len(problems)} wrong answers at concurrency {concurrency}: {problems[:5]}")
    return {**result.summary(), "server_cpu_ms_per_request": round(1000 * cpu / requests, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as temporary:
        model_dir = convert_checkpoint(FIXTURES / "aed-tiny", Path(temporary) / "aed-tiny-hf")
        files = [FIXTURES / "audio" / f"{uttid}.wav" for uttid in UTTERANCES]
        offline = Transcriber(str(model_dir), device="cpu", batch_size=1)
        expected = [offline.transcribe_audio(str(file))["text"] for file in files]
        del offline

        modes = {
            f"on (batch {args.batch_size}, wait {args.max_wait_ms:g} ms)": (args.batch_size, args.max_wait_ms),
            "off (batch 1)": (1, 0.0),
        }
        servers = {name: start_server(model_dir, *settings) for name, settings in modes.items()}
        results: dict[tuple[str, int], list[dict]] = {}
        try:
            for _, url in servers.values():  # warm-up: first calls allocate and import lazily
                asyncio.run(run_load(url, MODEL, files, 20, 4))
            for round_index in range(args.rounds):
                order = list(servers) if round_index % 2 == 0 else list(reversed(servers))
                for concurrency in args.concurrency:
                    for name in order:
                        process, url = servers[name]
                        row = measure(url, process.pid, files, expected, args.requests, concurrency)
                        results.setdefault((name, concurrency), []).append(row)
                        print(f"round {round_index + 1} {name} c={concurrency}: {row}", flush=True)
        finally:
            for process, _ in servers.values():
                process.send_signal(signal.SIGTERM)
            for process, _ in servers.values():
                process.wait(60)

    print(f"\nload average after: {os.getloadavg()} (the machine is shared; medians over {args.rounds} round(s))")
    header = f"| {'batching':<30} | conc. | req/s  | p50 ms  | p95 ms  | errors | server CPU ms/req |"
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for concurrency in args.concurrency:
        for name in modes:
            rows = results[(name, concurrency)]

            def median(key, rows=rows):
                return statistics.median(row[key] for row in rows)

            print(
                f"| {name:<30} | {concurrency:>5} | {median('throughput_rps'):>6.1f} | {median('p50_ms'):>7.1f} | "
                f"{median('p95_ms'):>7.1f} | {sum(row['errors'] for row in rows):>6} | "
                f"{median('server_cpu_ms_per_request'):>17.1f} |"
            )
    for concurrency in args.concurrency:
        on, off = (statistics.median(row["throughput_rps"] for row in results[(name, concurrency)]) for name in modes)
        print(f"concurrency {concurrency}: batching on / off throughput = {on / off:.2f}x")


if __name__ == "__main__":
    main()
