# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning data for FireRedASR with `datasets` and `Seq2SeqTrainer`: Kaldi data directories, example
preparation (decoding, duration and label-length filters, labels) and the batch collator.

The fbank features are computed in the collator, batch by batch, not stored in the dataset. Stored features would
take 320 bytes per 10 ms frame (80 float32), as much as the 16-bit audio itself, held in RAM for in-memory datasets
(such as `load_kaldi_dir`'s) or in a cache file next to the data otherwise: ~17 GB for 150 hours. Computed on the
fly they cost ~4 ms of one CPU core per second of audio (decoding wav + fbank + CMVN, measured on 16-utterance
batches), which `dataloader_num_workers` spreads over processes, and the prepared dataset stays as small as its
transcripts. Because the collator reads the audio column, train with `remove_unused_columns=False`.

Typical use (AED; for LLM pass `max_duration_s=30.0` and no decoder start token):

    train_dataset = prepare_dataset(load_kaldi_dir("data/train"), processor)
    collator = DataCollatorForFireRedAsr(processor.feature_extractor, model.config.decoder_start_token_id)
    trainer = Seq2SeqTrainer(
        model, Seq2SeqTrainingArguments(..., remove_unused_columns=False),
        train_dataset=train_dataset, data_collator=collator,
    )
"""

import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers.utils import logging

from .audio import AudioLimits, load_audio, load_audio_bytes, resample, to_mono
from .text_files import read_text_lines

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.get_logger(__name__)

# Columns `prepare_dataset` adds.
LABELS_COLUMN = "labels"
DURATION_COLUMN = "duration"


def _read_kaldi_table(path: Path) -> dict[str, str]:
    """Reads a Kaldi `<uttid> <value>` table (`wav.scp`, `text`) into an ordered dict; the value may be empty or hold
    spaces."""
    if not path.is_file():
        raise FileNotFoundError(f"Kaldi data directory file not found: {path}")
    table = {}
    for line_number, line in enumerate(read_text_lines(path), start=1):
        line = line.strip()
        if not line:
            continue
        uttid, *value = line.split(maxsplit=1)
        if uttid in table:
            raise ValueError(f"{path}, line {line_number}: utterance id {uttid!r} appears twice")
        table[uttid] = value[0] if value else ""
    return table


def _resolve_wav_path(directory: Path, uttid: str, rxfilename: str) -> str:
    wav_scp = directory / "wav.scp"
    if not rxfilename:
        raise ValueError(f"{wav_scp}: utterance {uttid!r} has no audio path")
    if rxfilename.endswith("|") or rxfilename == "-":
        raise ValueError(
            f"{wav_scp}: utterance {uttid!r} reads its audio from a command or stdin ({rxfilename!r}); only file "
            "paths are supported: write the audio to files first"
        )
    path = Path(rxfilename)
    # Relative paths: to the data directory (portable folders), else to the working directory (Kaldi recipes).
    candidates = [path] if path.is_absolute() else [directory / path, path]
    existing = [candidate for candidate in candidates if candidate.is_file()]
    if not existing and re.search(r"\.ark:\d+$", rxfilename):
        raise ValueError(
            f"{wav_scp}: utterance {uttid!r} points into a Kaldi archive ({rxfilename!r}); only audio files are "
            "supported"
        )
    return str((existing or candidates)[0].absolute())


def load_kaldi_dir(path: str | os.PathLike) -> "Dataset":
    """
    Load a Kaldi data directory as a `datasets.Dataset` with the columns `id`, `audio` (the file path as a string)
    and `text`.

    Reads `wav.scp` (`<uttid> <path>`) and `text` (`<uttid> <transcript>`) and keeps the utterances present in both,
    in the order of `wav.scp`; utterances found in only one file are dropped with a warning. Relative audio paths are
    taken relative to the data directory, or to the working directory when they exist only there (Kaldi recipes).
    Commands (`... |`) and archive offsets in `wav.scp` are not supported.

    Raises:
        `FileNotFoundError`: `wav.scp`, `text` or audio files are missing.
        `ValueError`: an utterance id appears twice in a file, `wav.scp` holds a command, or no utterance is in both.
    """
    from datasets import Dataset

    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"Kaldi data directory not found: {directory}")
    wav_scp = _read_kaldi_table(directory / "wav.scp")
    texts = _read_kaldi_table(directory / "text")

    ids = [uttid for uttid in wav_scp if uttid in texts]
    if not ids:
        raise ValueError(
            f"{directory}: no utterance id is in both wav.scp ({len(wav_scp)} ids) and text ({len(texts)} ids)"
        )
    only_audio = [uttid for uttid in wav_scp if uttid not in texts]
    only_text = [uttid for uttid in texts if uttid not in wav_scp]
    if only_audio or only_text:
        logger.warning(
            f"{directory}: dropped {len(only_audio)} utterances without a transcript (e.g. {only_audio[:3]}) and "
            f"{len(only_text)} transcripts without audio (e.g. {only_text[:3]}); kept {len(ids)}."
        )

    audio_paths = [_resolve_wav_path(directory, uttid, wav_scp[uttid]) for uttid in ids]
    missing = [audio_path for audio_path in audio_paths if not os.path.isfile(audio_path)]
    if missing:
        raise FileNotFoundError(
            f"{directory}/wav.scp: {len(missing)} of {len(ids)} audio files do not exist, e.g. {missing[:3]}"
        )
    return Dataset.from_dict({"id": ids, "audio": audio_paths, "text": [texts[uttid] for uttid in ids]})


def decode_audio(audio: Any, sampling_rate: int = 16000) -> np.ndarray:
    """
    Decode one example's audio into a float32 mono waveform at `sampling_rate` Hz, without torchcodec.

    Accepts a file path, a `datasets` `Audio(decode=False)` value (`{"bytes", "path"}`; the bytes are used when
    present), a `{"array", "sampling_rate"}` dict (1-D, or 2-D with channels first as `datasets` returns them) and a
    decoded `datasets` `Audio` value (torchcodec `AudioDecoder`, read through its `["array"]` and `["sampling_rate"]`).
    Audio at another rate is resampled with soxr.
    """
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio, sampling_rate=sampling_rate)
    if isinstance(audio, dict) and "array" not in audio:
        if audio.get("bytes") is not None:
            return load_audio_bytes(audio["bytes"], sampling_rate, name=f"bytes of {audio.get('path')!r}")
        if audio.get("path") is not None:
            return load_audio(audio["path"], sampling_rate=sampling_rate)
        raise ValueError("audio dict has neither `array`, `bytes` nor `path`")
    if isinstance(audio, dict) or hasattr(audio, "get_all_samples"):
        if isinstance(audio, dict) and "sampling_rate" not in audio:
            raise ValueError("audio dict with an `array` needs its `sampling_rate`")
        array = np.asarray(audio["array"])
        if array.dtype.kind != "f":
            raise ValueError(f"audio `array` must hold float samples in [-1, 1], got dtype {array.dtype}")
        AudioLimits.from_env().check(array.shape[-1], int(audio["sampling_rate"]), "the audio `array`")
        return resample(to_mono(array, channel_axis=0), int(audio["sampling_rate"]), sampling_rate)
    raise ValueError(
        f"cannot read audio of type {type(audio).__name__}: expected a file path, a dict with `array` and "
        "`sampling_rate` or with `bytes`/`path`, or a decoded `datasets` Audio value"
    )


def _measure_and_label(batch, indices, *, audio_column, text_column, processor, sampling_rate):
    texts = batch[text_column]
    for index, text in zip(indices, texts):
        if not isinstance(text, str):
            raise ValueError(f"row {index}: column {text_column!r} must hold strings, got {type(text).__name__}")
    durations = [len(decode_audio(audio, sampling_rate)) / sampling_rate for audio in batch[audio_column]]
    # The processor knows the model's labels (AED: ids + <eos>; LLM: ids of the normalised transcript); its batch
    # padding (-100) is removed again, the collator pads each batch.
    labels = [[token_id for token_id in row if token_id != -100] for row in processor(text=texts)["labels"]]
    return {LABELS_COLUMN: labels, DURATION_COLUMN: durations}


def _within(values, low, high):
    return [low <= value <= high for value in values]


def _label_length_at_most(labels, max_length):
    return [len(label) <= max_length for label in labels]


def prepare_dataset(
    dataset: "Dataset",
    processor,
    audio_column: str = "audio",
    text_column: str = "text",
    min_duration_s: float = 0.1,
    max_duration_s: float = 60.0,
    max_label_length: int | None = None,
    num_proc: int | None = None,
) -> "Dataset":
    """
    Prepare a speech dataset for fine-tuning: decode every example once (checking it can be read), drop examples
    outside the duration bounds or with too many label tokens, and add the columns `labels` (the training labels
    the processor makes of the transcript, `processor(text=...)["labels"]`) and `duration` (seconds at the feature
    extractor's sampling rate).

    The audio column is kept as it is: [`DataCollatorForFireRedAsr`] decodes it and computes the features for each
    batch (see the module docstring for why). It may hold file paths, `Audio(decode=False)` values, `{"array",
    "sampling_rate"}` dicts or decoded `Audio` values (torchcodec); see [`decode_audio`].

    The original models were trained on 0.1-60 s for FireRedASR-AED (and at most 250 tokens) and 0.1-30 s for
    FireRedASR-LLM (at most 150 tokens): use `max_duration_s=60.0` (the default) for AED and `max_duration_s=30.0`
    for LLM, as the models are not known to work beyond these lengths.

    Args:
        dataset (`datasets.Dataset`):
            The examples, e.g. from [`load_kaldi_dir`] or `datasets.load_dataset`.
        processor:
            [`FireRedAsrProcessor`] (labels: FireRed token ids followed by `<eos>`) or [`FireRedLlmProcessor`]
            (labels: Qwen2 ids of the transcript normalised as in the release's training); in general anything with
            a `feature_extractor` (its `sampling_rate` and `frame_length` are used) that returns `labels` padded with
            -100 for `processor(text=list_of_transcripts)`.
        audio_column (`str`, *optional*, defaults to `"audio"`):
            The column holding the audio.
        text_column (`str`, *optional*, defaults to `"text"`):
            The column holding the transcripts.
        min_duration_s (`float`, *optional*, defaults to 0.1):
            Examples shorter than this are dropped. At least one fbank frame (25 ms).
        max_duration_s (`float`, *optional*, defaults to 60.0):
            Examples longer than this are dropped.
        max_label_length (`int`, *optional*):
            Examples with more label tokens are dropped; `None` keeps all.
        num_proc (`int`, *optional*):
            Processes for decoding and tokenizing (`datasets.Dataset.map`).

    Returns:
        `datasets.Dataset`: the kept examples with all their columns plus `labels` and `duration`.
    """
    feature_extractor = processor.feature_extractor
    sampling_rate = feature_extractor.sampling_rate
    for column in (audio_column, text_column):
        if column not in dataset.column_names:
            raise ValueError(f"column {column!r} is not in the dataset (columns: {dataset.column_names})")
    clashing = [column for column in (LABELS_COLUMN, DURATION_COLUMN) if column in dataset.column_names]
    if clashing:
        raise ValueError(f"the dataset already has the column(s) {clashing} that prepare_dataset adds; rename them")
    min_frame_s = feature_extractor.frame_length / sampling_rate
    if not min_frame_s <= min_duration_s <= max_duration_s:
        raise ValueError(
            f"need {min_frame_s} <= min_duration_s <= max_duration_s (one fbank frame is {min_frame_s} s), got "
            f"min_duration_s={min_duration_s}, max_duration_s={max_duration_s}"
        )
    if max_label_length is not None and max_label_length < 1:
        raise ValueError(f"max_label_length must be at least 1 (or None), got {max_label_length}")

    dataset = dataset.map(
        partial(
            _measure_and_label,
            audio_column=audio_column,
            text_column=text_column,
            processor=processor,
            sampling_rate=sampling_rate,
        ),
        batched=True,
        with_indices=True,
        num_proc=num_proc,
        desc="Decoding audio and tokenizing transcripts",
    )
    num_examples = len(dataset)
    dataset = dataset.filter(
        partial(_within, low=min_duration_s, high=max_duration_s),
        input_columns=DURATION_COLUMN,
        batched=True,
        num_proc=num_proc,
        desc=f"Keeping {min_duration_s}-{max_duration_s} s",
    )
    num_within_duration = len(dataset)
    if max_label_length is not None:
        dataset = dataset.filter(
            partial(_label_length_at_most, max_length=max_label_length),
            input_columns=LABELS_COLUMN,
            batched=True,
            num_proc=num_proc,
            desc=f"Keeping at most {max_label_length} label tokens",
        )
    logger.info(
        f"prepare_dataset kept {len(dataset)} of {num_examples} examples: dropped {num_examples - num_within_duration} "
        f"outside {min_duration_s}-{max_duration_s} s and {num_within_duration - len(dataset)} with more than "
        f"{max_label_length} label tokens."
    )
    if len(dataset) == 0:
        logger.warning("prepare_dataset dropped every example; check the duration and label-length bounds.")
    return dataset


@dataclass
class DataCollatorForFireRedAsr:
    """
    Collates prepared examples (see [`prepare_dataset`]) into a FireRedASR training batch for `Seq2SeqTrainer`.

    Decodes each example's audio, computes the fbank + CMVN features with the feature extractor (zero padding after
    CMVN, frame-level `attention_mask`) and pads the labels with `label_pad_token_id`. The same collator serves the
    AED model (labels = FireRed token ids + `<eos>`) and the LLM model (labels = Qwen2 ids of the normalised
    transcript; the model builds its prompt itself).

    Args:
        feature_extractor ([`FireRedAsrFeatureExtractor`]):
            Computes and pads the features; audio is decoded at its `sampling_rate`.
        decoder_start_token_id (`int`, *optional*):
            The decoder start token (`<sos>` for AED). When every label row starts with it, it is removed, since the
            model prepends it itself. `None` never removes anything (LLM).
        audio_column (`str`, *optional*, defaults to `"audio"`):
            The example key holding the audio.
        label_pad_token_id (`int`, *optional*, defaults to -100):
            The label padding, ignored by the loss.

    Returns a dict of tensors: `input_features` (batch, frames, 80) float32, `attention_mask` (batch, frames) and
    `labels` (batch, label_length) int64.
    """

    feature_extractor: Any
    decoder_start_token_id: int | None = None
    audio_column: str = "audio"
    label_pad_token_id: int = -100

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty list of examples")
        for key in (self.audio_column, LABELS_COLUMN):
            if key not in features[0]:
                raise ValueError(
                    f"examples have no {key!r} (keys: {sorted(features[0])}); prepare them with prepare_dataset and "
                    "train with remove_unused_columns=False so that the audio column reaches the collator"
                )
        sampling_rate = self.feature_extractor.sampling_rate
        waveforms = [decode_audio(feature[self.audio_column], sampling_rate) for feature in features]
        batch = self.feature_extractor(
            waveforms, sampling_rate=sampling_rate, padding="longest", return_attention_mask=True, return_tensors="pt"
        )

        labels = [list(feature[LABELS_COLUMN]) for feature in features]
        if self.decoder_start_token_id is not None and all(
            label and label[0] == self.decoder_start_token_id for label in labels
        ):
            labels = [label[1:] for label in labels]
        padded_labels = torch.full((len(labels), max(map(len, labels))), self.label_pad_token_id, dtype=torch.long)
        for row, label in enumerate(labels):
            padded_labels[row, : len(label)] = torch.tensor(label, dtype=torch.long)

        return {
            "input_features": batch["input_features"],
            "attention_mask": batch["attention_mask"],
            "labels": padded_labels,
        }


__all__ = ["DataCollatorForFireRedAsr", "decode_audio", "load_kaldi_dir", "prepare_dataset"]
