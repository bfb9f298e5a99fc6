# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""A load generator for an OpenAI-compatible transcription server: N requests, C at a time, latencies and answers.

    python -m fireredasr_hf.serving.load_test --url http://127.0.0.1:8000 --model NAME --requests 300 \
        --concurrency 8 a.wav b.wav ...

Files are sent in turn (request i sends file i mod len(files)). Every answer is kept, so a caller can check that each
request was answered exactly once and compare the texts with an offline run.
"""

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    """`answers[i]`: (HTTP status, body text) of request i; `latencies[i]`: its seconds; `elapsed`: the run's
    seconds."""

    answers: list[tuple[int, str] | None]
    latencies: list[float]
    elapsed: float
    exceptions: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for answer in self.answers if answer is None or answer[0] != 200) + len(self.exceptions)

    @property
    def throughput(self) -> float:
        return len(self.answers) / self.elapsed

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    def summary(self) -> dict:
        return {
            "requests": len(self.answers),
            "errors": self.errors,
            "throughput_rps": round(self.throughput, 2),
            "p50_ms": round(1000 * self.percentile(0.5), 1),
            "p95_ms": round(1000 * self.percentile(0.95), 1),
            "mean_ms": round(1000 * statistics.fmean(self.latencies), 1) if self.latencies else None,
        }


async def run_load(
    url: str,
    model: str,
    files: list[str | Path],
    requests: int,
    concurrency: int,
    response_format: str = "text",
    api_key: str | None = None,
    timeout_s: float = 600.0,
) -> LoadResult:
    """Sends `requests` transcription requests, at most `concurrency` at a time, over one connection pool."""
    import httpx

    payloads = [(Path(file).name, Path(file).read_bytes()) for file in files]
    answers: list[tuple[int, str] | None] = [None] * requests
    latencies = [0.0] * requests
    exceptions: list[str] = []
    next_index = 0
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits, headers=headers) as client:

        async def worker():
            nonlocal next_index
            while next_index < requests:
                index, next_index = next_index, next_index + 1
                name, data = payloads[index % len(payloads)]
                start = time.perf_counter()
                try:
                    response = await client.post(
                        "/v1/audio/transcriptions",
                        files={"file": (name, data, "audio/wav")},
                        data={"model": model, "response_format": response_format},
                    )
                except httpx.HTTPError as error:
                    exceptions.append(f"request {index}: {type(error).__name__}: {error}")
                    continue
                latencies[index] = time.perf_counter() - start
                answers[index] = (response.status_code, response.text)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return LoadResult(answers, latencies, elapsed, exceptions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="audio files to send, in turn")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", required=True, help="the served model name")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--api-key")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run_load(args.url, args.model, args.files, args.requests, args.concurrency, api_key=args.api_key)
    )
    print(result.summary())
    for line in result.exceptions[:10]:
        print(line, file=sys.stderr)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
