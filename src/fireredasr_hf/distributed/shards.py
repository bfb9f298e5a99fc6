# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The output folder of a cluster job: result shards, the failures of the last run, and the job's settings.

    OUTPUT/
      job.json                    model and decoding settings (a resumed job must have the same)
      part-<run>-00000.jsonl      results, one JSON object per recording (the fields of `transcribe --output-format
      part-<run>-00001.jsonl      jsonl`: uttid, text, duration, source[, chunks]); or .parquet with the same columns
      failures.jsonl              the recordings the last run could not transcribe: uttid, source, error

Every file is written whole under a temporary name and then renamed (locally), or put as one object (object
stores), so a shard is either complete or absent: after any interruption the finished recordings are exactly those
in the shards, and a resumed run decodes the others. The folder may be local or an fsspec URL (`s3://...`).
"""

import json
import os
import uuid
from pathlib import Path

from ..transcript_io import format_jsonl
from ..transcription import LOCK_NAME, TranscriptionError, lock_output, write_atomically

SHARD_FORMATS = ("jsonl", "parquet")
SHARD_PREFIX = "part-"
JOB_FILE = "job.json"
FAILURES_FILE = "failures.jsonl"


class ShardedOutput:
    """A job's output folder (see the module's description); `output_format` is `jsonl` or `parquet`."""

    def __init__(self, location: str | os.PathLike, output_format: str = "jsonl"):
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        if output_format not in SHARD_FORMATS:
            raise TranscriptionError(f"a cluster job writes {' or '.join(SHARD_FORMATS)} shards, not {output_format}")
        self.location = str(location)
        self.format = output_format
        self.filesystem, self.root = fsspec.core.url_to_fs(self.location)
        self.local = isinstance(self.filesystem, LocalFileSystem)
        self.run_id = uuid.uuid4().hex[:8]
        self.shards_written = 0
        try:
            self.filesystem.makedirs(self.root, exist_ok=True)
        except OSError as error:
            raise TranscriptionError(f"cannot create the output folder {self.location}: {error}") from None
        if self.local and not os.access(self.root, os.W_OK):
            raise TranscriptionError(f"cannot write into {self.location}")

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def lock(self):
        """One job per local folder (object stores have no lock: run one job per output there)."""
        if not self.local:
            return None
        return lock_output(Path(self.root) / LOCK_NAME, self.location)

    def shard_names(self) -> list[str]:
        try:
            names = [Path(path).name for path in self.filesystem.ls(self.root, detail=False)]
        except FileNotFoundError:  # an object-store prefix with nothing under it yet
            return []
        return sorted(name for name in names if name.startswith(SHARD_PREFIX) and name.endswith((".jsonl", ".parquet")))

    def finished(self) -> set[str]:
        """The utterance ids in the shards (finished by earlier runs)."""
        finished = set()
        for name in self.shard_names():
            with self.filesystem.open(self.path(name), "rb") as file:
                if name.endswith(".parquet"):
                    import pyarrow.parquet as pq

                    finished.update(pq.read_table(file, columns=["uttid"]).column("uttid").to_pylist())
                else:
                    finished.update(json.loads(line)["uttid"] for line in file if line.strip())
        return finished

    def check_settings(self, settings: dict, resume: bool) -> None:
        """Records the job's settings; an earlier job's results are an error unless resuming with the same settings."""
        settings = json.loads(json.dumps(settings, default=lambda value: type(value).__name__))
        job_file = self.path(JOB_FILE)
        if self.filesystem.exists(job_file):
            with self.filesystem.open(job_file, "r", encoding="utf-8") as file:
                recorded = json.load(file)
            if self.shard_names() and not resume:
                raise TranscriptionError(
                    f"{self.location} holds the results of an earlier job: continue it with --resume (resume=True), "
                    "or choose another output"
                )
            if resume and recorded != settings:
                raise TranscriptionError(
                    f"{self.location} holds results of a job with other settings ({recorded}, now {settings}): resume "
                    "with the same settings, or choose another output"
                )
        elif self.shard_names():
            raise TranscriptionError(f"{self.location} holds result shards but no {JOB_FILE}: choose another output")
        self.put(JOB_FILE, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")

    def put(self, name: str, content: str | bytes) -> None:
        """Writes a whole file at once (see the module's description)."""
        if self.local:
            write_atomically(Path(self.root) / name, content)
        else:
            self.filesystem.pipe_file(self.path(name), content.encode() if isinstance(content, str) else content)

    def write_shard(self, rows: list[dict]) -> str:
        """Writes the next shard of this run; returns its name."""
        name = f"{SHARD_PREFIX}{self.run_id}-{self.shards_written:05d}.{self.format}"
        if self.format == "jsonl":
            self.put(name, format_jsonl(rows))
        else:
            import io

            import pyarrow as pa
            import pyarrow.parquet as pq

            buffer = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(rows), buffer)
            self.put(name, buffer.getvalue())
        self.shards_written += 1
        return name

    def write_failures(self, failures: dict[str, tuple[str, str]]) -> None:
        """The failures of this run (`{uttid: (source, message)}`), replacing the last run's; none: no file."""
        if failures:
            rows = [{"uttid": uttid, "source": source, "error": error} for uttid, (source, error) in failures.items()]
            self.put(FAILURES_FILE, format_jsonl(rows))
        elif self.filesystem.exists(self.path(FAILURES_FILE)):
            self.filesystem.rm(self.path(FAILURES_FILE))


def read_results(location: str | os.PathLike) -> list[dict]:
    """Every result row in a job's output folder (all shards, in shard order)."""
    output = ShardedOutput(location, "jsonl")
    rows = []
    for name in output.shard_names():
        with output.filesystem.open(output.path(name), "rb") as file:
            if name.endswith(".parquet"):
                import pyarrow.parquet as pq

                rows.extend(_drop_nulls(row) for row in pq.read_table(file).to_pylist())
            else:
                rows.extend(json.loads(line) for line in file if line.strip())
    return rows


def _drop_nulls(row: dict) -> dict:
    # Parquet gives every row every column: absent fields come back as None.
    return {key: value for key, value in row.items() if value is not None}


__all__ = ["SHARD_FORMATS", "ShardedOutput", "read_results"]
