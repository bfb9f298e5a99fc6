# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Scoring a test set: transcribe it with the engine, then CER (Chinese), WER (English) and MER (all) as FireRedASR
scores them, with per-utterance alignments.

    from fireredasr_hf.transcription import Transcriber
    from fireredasr_hf.evaluation import evaluate_test_set

    outcome = evaluate_test_set(Transcriber("fireredasr-aed-l-hf"), "data/test", "eval-test")
    outcome.scores["cer"]
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .transcription import (
    AudioItem,
    JobReport,
    OutputTarget,
    Transcriber,
    TranscriptionError,
    dataset_items,
    file_item,
    load_dataset_dir,
    transcribe_files,
)


def load_test_set(
    data: str | os.PathLike,
    split: str | None = None,
    audio_column: str = "audio",
    id_column: str = "id",
    text_column: str = "text",
) -> tuple[list[AudioItem], dict[str, str]]:
    """The recordings and reference transcripts of a Kaldi data directory (wav.scp + text) or a dataset saved with
    `save_to_disk` (audio + text columns)."""
    from .transcript_io import is_dataset_dir

    data = Path(data)
    if is_dataset_dir(data):
        dataset = load_dataset_dir(str(data), split)
        if text_column not in dataset.column_names:
            raise TranscriptionError(f"{data} has no reference column {text_column!r}; name it with --text-column")
        items = dataset_items(dataset, str(data), audio_column, id_column)
        return items, dict(zip((item.uttid for item in items), dataset[text_column], strict=True))
    if (data / "wav.scp").is_file() and (data / "text").is_file():
        from .data import load_kaldi_dir

        try:
            dataset = load_kaldi_dir(data)
        except (FileNotFoundError, ValueError) as error:
            raise TranscriptionError(str(error)) from error
        items = [file_item(uttid, path) for uttid, path in zip(dataset["id"], dataset["audio"], strict=True)]
        return items, dict(zip(dataset["id"], dataset["text"], strict=True))
    raise TranscriptionError(f"{data} is neither a Kaldi data directory (wav.scp + text) nor a dataset saved to disk")


@dataclass
class Evaluation:
    """The scores (`scores.json`'s content), the detailed report and the transcription job's report."""

    scores: dict
    score_report: object
    job: JobReport


def evaluate_test_set(
    transcriber: Transcriber,
    data: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    split: str | None = None,
    audio_column: str = "audio",
    id_column: str = "id",
    text_column: str = "text",
    convert_numbers: bool = False,
    remove_special: bool = False,
    resume: bool = False,
    progress=None,
) -> Evaluation:
    """Transcribes a test set and writes `hyp.txt` (Kaldi text), `errors.txt` (per-utterance alignments) and
    `scores.json` into `output_dir`. Recordings that fail count as empty hypotheses (all reference tokens deleted)."""
    from .scoring import score_utterances

    items, refs = load_test_set(data, split, audio_column, id_column, text_column)
    output_dir = Path(output_dir)
    # The hypotheses are a Kaldi text file: the same checks, lock, resume log and atomic write as any job's output.
    target = OutputTarget(output_dir / "hyp.txt", "kaldi")
    job = transcribe_files(transcriber, items, target, resume=resume, progress=progress)
    hyps = {item.uttid: job.results[item.uttid]["text"] for item in items if item.uttid in job.results}
    score_report = score_utterances(
        refs, hyps, remove_special=remove_special, convert_numbers=convert_numbers, missing="empty"
    )
    score_report.write_details(output_dir / "errors.txt")
    scores = {
        "cer": score_report.cer,
        "wer": score_report.wer,
        "mer": score_report.mer,
        "utterances": len(score_report.utterances),
        "failed": sorted(job.failures),
        "model": transcriber.model_name,
        "data": str(data),
    }
    (output_dir / "scores.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return Evaluation(scores, score_report, job)
