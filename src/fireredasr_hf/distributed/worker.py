# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The Ray actor of a cluster job: one loaded `Transcriber` per replica, decoding the batches Ray Data hands it."""

import json


class TranscriptionWorker:
    """
    Called by Ray Data's `map_batches` with batches of `{"uttid", "source", "location"}` rows (the location as JSON,
    see `AudioItem.location`); returns one row per recording: `{"uttid", "result", "error"}`, the engine's result as
    JSON (the fields of the command line's jsonl output) or the message of its failure. The audio is read and long
    recordings are cut into segments here, in the worker.
    """

    def __init__(self, model: str, transcriber_options: dict):
        from ..transcription import Transcriber

        self.transcriber = Transcriber(model, **transcriber_options)

    def __call__(self, batch: dict) -> dict:
        from ..transcription import item_at_location

        items = [
            item_at_location(str(uttid), str(source), json.loads(location))
            for uttid, source, location in zip(batch["uttid"], batch["source"], batch["location"], strict=True)
        ]
        rows = {"uttid": [], "result": [], "error": []}

        def on_result(item, result):
            rows["uttid"].append(item.uttid)
            rows["result"].append(json.dumps(result, ensure_ascii=False))
            rows["error"].append(None)

        def on_failure(item, message):
            rows["uttid"].append(item.uttid)
            rows["result"].append(None)
            rows["error"].append(message)

        self.transcriber.transcribe(items, on_result, on_failure)
        return rows
