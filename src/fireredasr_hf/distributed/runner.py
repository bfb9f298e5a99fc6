# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Batch transcription on a Ray cluster: Ray Data feeds the recordings to a pool of actors, each a loaded model.

The driver (this process) lists the inputs (`transcription.collect_inputs`: files, folders, wav.scp, manifests,
file lists, fsspec URLs, saved datasets), leaves out what earlier runs finished, and streams the rest through
`map_batches(TranscriptionWorker, compute=ActorPoolStrategy(size=replicas))`. The workers read the audio (so the
inputs must be reachable from every node: a shared file system or object storage), segment long recordings with
the pipeline's VAD and decode `batch_size` recordings per call. Results come back to the driver as they finish and
are written as shards (`shards.ShardedOutput`), so finished work survives any interruption and a rerun with
`resume=True` decodes only what is left.

Fault tolerance: Ray restarts a replica that dies (`max_restarts=-1`) and runs its unfinished batches again
(`max_task_retries=-1`, Ray Data's defaults for actor pools). A recording is written once: the driver keeps the ids
it has written and drops a repeated one; one that never comes back is reported as a failure, to be retried by a
resumed run.
"""

import json
import logging
import math
import os
import time
from collections.abc import Sequence

from ..transcription import (
    AudioItem,
    InputCollection,
    JobReport,
    OutputTarget,
    ProgressCallback,
    TranscriptionError,
)
from .shards import ShardedOutput

logger = logging.getLogger(__name__)

# Transcriber options that change the transcripts, recorded with the results (a resumed job must match them).
RESULT_OPTIONS = (
    "revision",
    "dtype",
    "generate_kwargs",
    "vad",
    "vad_model",
    "max_segment_s",
    "timestamps",
    "punctuation",
)


def transcribe_on_ray(
    inputs: InputCollection | Sequence[AudioItem],
    output: str | os.PathLike,
    model: str,
    *,
    output_format: str = "jsonl",
    address: str | None = None,
    replicas: int = 1,
    gpus_per_replica: float = 0,
    cpus_per_replica: float = 1,
    batch_size: int = 8,
    transcriber_options: dict | None = None,
    resume: bool = False,
    rows_per_shard: int = 1000,
    shard_interval_s: float = 60.0,
    progress: ProgressCallback | None = None,
) -> JobReport:
    """
    Transcribes `inputs` on a Ray cluster into shards in the folder `output` (local or an fsspec URL).

    Args:
        inputs: `collect_inputs(...)` or items with a `location` (the workers rebuild them from it).
        model: model directory (visible from every node) or Hub repo id (each node converts it once into its cache).
        output_format: `jsonl` or `parquet` shards, each row the fields of `transcribe --output-format jsonl`.
        address: the cluster (`auto`, `ray://head:10001`, ...); None: `RAY_ADDRESS`, else a local cluster. An already
            initialised Ray is used as it is.
        replicas, gpus_per_replica, cpus_per_replica: the actor pool (one model per replica).
        batch_size: recordings per model call in a replica.
        transcriber_options: further `Transcriber` arguments (dtype, generate_kwargs, vad, max_segment_s, timestamps,
            device, num_threads, ...). Default device: cuda with GPUs per replica, else cpu; default threads: the
            replica's CPUs.
        resume: continue an earlier job into the same output (its finished recordings are not decoded again);
            without it, an output holding results is an error.
        rows_per_shard, shard_interval_s: a shard is written every `rows_per_shard` results, or when results have
            waited `shard_interval_s`, and at the end.
        progress: called once per finished recording, like `transcribe_files`'s.

    Returns the `JobReport` (its `results` are left empty: they are in the shards; `resume_log` names the output when
    recordings failed, to retry them with `resume=True`).
    """
    import ray

    collection = inputs if isinstance(inputs, InputCollection) else InputCollection(list(inputs))
    items = collection.items
    for name, value, least in (("replicas", replicas, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise TranscriptionError(f"{name} must be a whole number >= {least}, got {value!r}")
    if gpus_per_replica < 0 or cpus_per_replica <= 0:
        raise TranscriptionError("gpus_per_replica must be >= 0 and cpus_per_replica > 0")
    OutputTarget(None, "jsonl").check_ids(item.uttid for item in items)
    for item in items:
        if item.location is None:
            raise TranscriptionError(f"{item.source} cannot be read by cluster workers (it has no location)")

    options = dict(transcriber_options or {})
    options.setdefault("device", "cuda" if gpus_per_replica > 0 else "cpu")
    options.setdefault("num_threads", max(1, int(cpus_per_replica)))
    options["batch_size"] = batch_size
    settings = {"model": str(model), "options": {key: options[key] for key in RESULT_OPTIONS if key in options}}

    target = ShardedOutput(output, output_format)
    lock = target.lock()
    try:
        target.check_settings(settings, resume)
        report = JobReport(results={}, failures=dict(collection.failures))
        finished = target.finished() if resume else set()
        pending = [item for item in items if item.uttid not in finished]
        report.resumed = len(items) - len(pending)
        started_ray = False
        if pending:
            if not ray.is_initialized():
                ray.init(address=address, logging_level=logging.WARNING)
                started_ray = True
            try:
                _run(pending, target, str(model), options, replicas, gpus_per_replica, cpus_per_replica,
                     rows_per_shard, shard_interval_s, report, progress)  # fmt: skip
            finally:
                if started_ray:
                    ray.shutdown()
        if report.failures:
            report.resume_log = target.location
        return report
    finally:
        if lock is not None:
            lock.release()


def _run(pending, target, model, options, replicas, gpus, cpus, rows_per_shard, interval_s, report, progress):
    import ray

    from .worker import TranscriptionWorker

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller reports progress
    batch_size = options["batch_size"]
    # Blocks of a few batches: a dead replica's block is decoded again, and the replicas share the work evenly.
    rows_per_block = min(max(math.ceil(len(pending) / (replicas * 8)), batch_size), batch_size * 32)
    rows = [
        {"uttid": item.uttid, "source": item.source, "location": json.dumps(item.location, ensure_ascii=False)}
        for item in pending
    ]
    dataset = ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows) / rows_per_block))
    dataset = dataset.map_batches(
        TranscriptionWorker,
        fn_constructor_kwargs={"model": model, "transcriber_options": options},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=replicas),
        num_cpus=cpus,
        num_gpus=gpus or None,
    )
    by_id = {item.uttid: item for item in pending}
    written: set[str] = set()
    failures: dict[str, tuple[str, str]] = {}
    buffer: list[dict] = []
    last_write = time.monotonic()
    start = time.perf_counter()

    def flush():
        nonlocal last_write
        if buffer:
            target.write_shard(buffer)
            buffer.clear()
        last_write = time.monotonic()

    try:
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                for row in batch.to_pylist():
                    uttid = row["uttid"]
                    if uttid in written or uttid in failures:
                        logger.warning("dropped a second result for %s (its batch was decoded twice)", uttid)
                        continue
                    item = by_id[uttid]
                    if row["error"] is not None:
                        failures[uttid] = (item.source, row["error"])
                        report.failures[uttid] = row["error"]
                        seconds = None
                    else:
                        result = json.loads(row["result"])
                        buffer.append({"uttid": uttid, **result})
                        written.add(uttid)
                        report.decoded += 1
                        report.audio_seconds += result["duration"]
                        seconds = result["duration"]
                    report.elapsed = time.perf_counter() - start
                    if progress is not None:
                        progress(item, seconds)
                if len(buffer) >= rows_per_shard or time.monotonic() - last_write >= interval_s:
                    flush()
        except ray.exceptions.RayError as error:
            raise TranscriptionError(f"the cluster job failed: {_root_message(error)}") from None
        for uttid, item in by_id.items():
            if uttid not in written and uttid not in failures:
                failures[uttid] = (item.source, "no result came back from the cluster")
                report.failures[uttid] = failures[uttid][1]
    finally:
        flush()  # what is finished is kept, whatever stopped the job
        target.write_failures(failures)
        report.elapsed = time.perf_counter() - start


def _root_message(error: BaseException) -> str:
    """The message of the exception a worker raised (e.g. the model failed to load), without Ray's wrapping."""
    cause = error
    while True:
        inner = getattr(cause, "cause", None) or cause.__cause__
        if inner is None or inner is cause:
            break
        cause = inner
    message = str(cause).strip().splitlines()
    return message[-1] if message else type(cause).__name__


__all__ = ["transcribe_on_ray"]
