# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Batch transcription on a Ray cluster: `fireredasr-hf transcribe --ray` (see docs/cluster.md).

    from fireredasr_hf.transcription import collect_inputs
    from fireredasr_hf.distributed import transcribe_on_ray, read_results

    report = transcribe_on_ray(collect_inputs(["s3://bucket/manifest.parquet"]), "s3://bucket/results",
                               "FireRedTeam/FireRedASR-AED-L", replicas=8, gpus_per_replica=1, resume=True)
    rows = read_results("s3://bucket/results")

Modules: `runner` (the driver), `worker` (the Ray actor: one model per replica), `shards` (the output folder).
Ray is imported only when a job runs.
"""

from .runner import transcribe_on_ray
from .shards import ShardedOutput, read_results

__all__ = ["ShardedOutput", "read_results", "transcribe_on_ray"]
