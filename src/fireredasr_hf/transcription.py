# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The transcription engine: what the command line, the server, the cluster runner and the demo share.

    from fireredasr_hf.transcription import Transcriber, collect_inputs, transcribe_files

    transcriber = Transcriber("FireRedTeam/FireRedASR-AED-L", batch_size=8)
    transcriber.transcribe_audio("speech.wav")["text"]                      # one recording
    inputs = collect_inputs(["recordings/", "data/wav.scp"])                 # files, folders, wav.scp, datasets
    report = transcribe_files(transcriber, inputs, output="subs/", output_format="srt", resume=True)
    report.failures                                                          # {uttid: message}

Pieces, from the bottom up:

- `AudioItem` (one recording: id, source, reader) and `collect_inputs` (files, folders searched recursively,
  Kaldi wav.scp, datasets saved with `save_to_disk`; unreadable folders become failures, never silent skips);
- `Transcriber`: a loaded FireRedASR pipeline with the job's decoding and segmentation settings; reads items ahead
  (up to `READ_AHEAD_BATCHES` x `batch_size` recordings, at most `READ_AHEAD_SECONDS` of audio) for each pipeline
  call, which decodes their VAD segments `batch_size` at a time in batches of similar length; failures are isolated
  per recording;
- `OutputTarget`: where results go (a file, a folder of subtitles, or standard output). It is checked before any
  decoding (location writable, every utterance id usable in the chosen format, subtitle paths inside the folder),
  locked against a second job writing there, and written atomically (temporary file + rename);
- `transcribe_files`: the job: resume log next to the output (kept until the outputs are safely written, so an
  interrupted or failed job can always be resumed), progress reporting, the final `JobReport`.

`TranscriptionError` is a problem with the job's arguments or inputs, reported in one line. This module and the
ones it imports know no application (command line, server, ...).
"""

import functools
import inspect
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np


class TranscriptionError(ValueError):
    """A problem with a transcription job's arguments or inputs, reported as one line."""


# ----------------------------------------------------------------------------------------------------------------
# Inputs


@dataclass
class AudioItem:
    """One recording to transcribe: its id, where it comes from (for messages) and how to read it. `location` says
    the same in plain data (JSON-serialisable), so that another process can rebuild the item with
    `item_at_location`: `{"path": file or fsspec URL}` or `{"dataset": folder, "split", "audio_column", "row"}`."""

    uttid: str
    source: str
    read: Callable[[int], "np.ndarray"]  # sampling rate -> float32 mono waveform at that rate
    location: dict | None = None


def file_item(uttid: str, path: str) -> AudioItem:
    """A recording in an audio file, local or at an fsspec URL (`s3://...`, `https://...`)."""

    def read(sampling_rate):
        from .audio import load_audio, load_audio_bytes
        from .transcript_io import is_url, open_input

        if not is_url(path):
            return load_audio(path, sampling_rate=sampling_rate)
        with open_input(path) as file:
            return load_audio_bytes(file.read(), sampling_rate=sampling_rate, name=path)

    from .transcript_io import is_url

    return AudioItem(uttid, path, read, {"path": path if is_url(path) else os.path.abspath(path)})


def item_at_location(uttid: str, source: str, location: dict) -> AudioItem:
    """The item that `AudioItem.location` describes (e.g. in a worker process of a cluster job)."""
    if "path" in location:
        return AudioItem(uttid, source, file_item(uttid, location["path"]).read, dict(location))
    dataset = _open_dataset(location["dataset"], location.get("split"), location.get("audio_column", "audio"))
    return AudioItem(uttid, source, _row_reader(dataset, location["audio_column"], location["row"]), dict(location))


@functools.lru_cache(maxsize=4)
def _open_dataset(path: str, split: str | None, audio_column: str):
    return _undecoded(load_dataset_dir(path, split), audio_column)


def _undecoded(dataset, audio_column: str):
    # Rows are decoded here (soundfile/ffmpeg + soxr) rather than by datasets, which would need torchcodec.
    from datasets import Audio

    if isinstance(dataset.features[audio_column], Audio):
        dataset = dataset.cast_column(audio_column, Audio(decode=False))
    return dataset


def _row_reader(dataset, audio_column: str, index: int):
    def read(sampling_rate):
        from .data import decode_audio

        return decode_audio(dataset[index][audio_column], sampling_rate=sampling_rate)

    return read


@dataclass
class InputCollection:
    """The recordings found in a job's inputs, and the inputs that could not be read (`{source: message}`, e.g. a
    folder without read permission), which the job reports as failures."""

    items: list[AudioItem]
    failures: dict[str, str] = field(default_factory=dict)


def load_dataset_dir(path: str, split: str | None):
    """A `datasets` Dataset saved with `save_to_disk` (one split of a DatasetDict)."""
    from .extras import require

    require("data", f"reading the saved dataset {path}", ["datasets"])
    from datasets import DatasetDict, load_from_disk

    dataset = load_from_disk(path)
    if isinstance(dataset, DatasetDict):
        if split is None:
            if len(dataset) != 1:
                raise TranscriptionError(f"{path} holds the splits {', '.join(dataset)}: choose one with --split")
            split = next(iter(dataset))
        if split not in dataset:
            raise TranscriptionError(f"{path} has no split {split!r} (it has {', '.join(dataset)})")
        dataset = dataset[split]
    elif split is not None:
        raise TranscriptionError(f"{path} is a single dataset without splits; drop --split")
    return dataset


def dataset_items(
    dataset, path: str, audio_column: str = "audio", id_column: str = "id", split: str | None = None
) -> list[AudioItem]:
    """One item per row of a dataset (the one saved at `path`, `split` of it); ids from `id_column` (else the row
    number)."""
    if audio_column not in dataset.column_names:
        raise TranscriptionError(
            f"{path} has no audio column {audio_column!r} (columns: {', '.join(dataset.column_names)})"
        )
    dataset = _undecoded(dataset, audio_column)
    ids = dataset[id_column] if id_column in dataset.column_names else [str(index) for index in range(len(dataset))]
    location = {"dataset": os.path.abspath(path), "split": split, "audio_column": audio_column}
    return [
        AudioItem(str(uttid), f"{path}[{index}]", _row_reader(dataset, audio_column, index), {**location, "row": index})
        for index, uttid in enumerate(ids)
    ]


def collect_inputs(
    inputs: Iterable[str | os.PathLike],
    split: str | None = None,
    audio_column: str = "audio",
    id_column: str = "id",
) -> InputCollection:
    """Files, folders (recursively), wav.scp files, manifests (JSON lines, Parquet), file lists, fsspec URLs and saved
    datasets, in the order given (see `transcript_io.iter_audio_inputs`). Missing inputs, folders without audio and
    duplicate ids are errors; folders that cannot be read are failures of the job."""
    from .transcript_io import UnreadableFolder, is_dataset_dir, iter_audio_inputs

    collection = InputCollection([])
    for item in map(str, inputs):
        if is_dataset_dir(item):
            dataset = load_dataset_dir(item, split)
            collection.items.extend(dataset_items(dataset, item, audio_column, id_column, split))
            continue
        unreadable: list[UnreadableFolder] = []
        try:
            pairs = iter_audio_inputs([item], unreadable=unreadable, audio_column=audio_column, id_column=id_column)
        except (FileNotFoundError, ValueError, UnicodeDecodeError) as error:
            raise TranscriptionError(str(error)) from error
        collection.items.extend(file_item(uttid, path) for uttid, path in pairs)
        for folder in unreadable:
            collection.failures[folder.path] = f"folder not readable ({folder.reason}); its audio was not transcribed"
    seen: dict[str, str] = {}
    for audio_item in collection.items:
        if audio_item.uttid in seen:
            raise TranscriptionError(
                f"utterance id {audio_item.uttid!r} is given twice: {seen[audio_item.uttid]} and {audio_item.source}"
            )
        seen[audio_item.uttid] = audio_item.source
    return collection


# ----------------------------------------------------------------------------------------------------------------
# Decoding

# generate() options a job may set, and the model variants each applies to.
GENERATION_OPTIONS = {
    "num_beams": ("aed", "llm"),
    "max_new_tokens": ("aed", "llm"),
    "softmax_smoothing": ("aed",),
    "gnmt_length_penalty": ("aed",),
    "eos_penalty": ("aed",),
    "lm_weight": ("aed",),
    "repetition_penalty": ("llm",),
    "length_penalty": ("llm",),
}
TIMESTAMP_LEVELS = ("segment", "word")
VARIANTS = {"fireredasr_aed": "aed", "fireredasr_llm": "llm"}


@dataclass(frozen=True)
class PipelineCapabilities:
    """What a loaded pipeline offers beyond segment transcripts, found by asking the pipeline itself (its call
    options and their checks), so that applications offer exactly what the installed code and the loaded model can
    do.

    Attributes:
        word_timestamps: `return_timestamps="word"` is accepted (word-level `chunks`).
        vad_names: the voice activity detectors the pipeline knows by name; `default_vad` is the one it uses unless
            told otherwise.
        punctuation: the pipeline takes a `punctuation_model` call option.
        segment_progress: the pipeline reports decoding progress (`progress_callback`).
    """

    word_timestamps: bool
    vad_names: tuple[str, ...]
    default_vad: str | None
    punctuation: bool
    segment_progress: bool


def pipeline_supports_timestamps(pipeline, kind: bool | str) -> bool:
    """Whether `pipeline` gives timestamps of this kind (`True`: segments; `"word"`: words) for its model: the
    pipeline's own check of the option decides."""
    try:
        pipeline._sanitize_parameters(return_timestamps=kind)
    except (ValueError, TypeError):
        return False
    return True


def pipeline_capabilities(pipeline) -> PipelineCapabilities:
    """The `PipelineCapabilities` of a FireRedASR pipeline (a `FireRedAsrPipeline` or its remote-code copy)."""
    options = inspect.signature(pipeline._sanitize_parameters).parameters
    vad_default = inspect.signature(pipeline.preprocess).parameters.get("vad")
    default_vad = vad_default.default if vad_default is not None and isinstance(vad_default.default, str) else None
    module = sys.modules.get(type(pipeline).__module__)
    vad_names = tuple(getattr(module, "VAD_NAMES", ()) or ((default_vad,) if default_vad else ()))
    return PipelineCapabilities(
        word_timestamps=pipeline_supports_timestamps(pipeline, "word"),
        vad_names=vad_names,
        default_vad=default_vad,
        punctuation="punctuation_model" in options,
        segment_progress="progress_callback" in options,
    )


class ProgressCallback(Protocol):
    """Told about every recording a job finishes: its decoded duration in seconds, or None when it failed."""

    def __call__(self, item: AudioItem, audio_seconds: float | None) -> None: ...


# `Transcriber(punctuation=AUTO_PUNCTUATION)`: the default punctuation model if it can be obtained, else none.
AUTO_PUNCTUATION = "auto"
# A job reads this many batches of recordings per pipeline call, so that the pipeline can batch segments of similar
# length (`FireRedAsrPipeline`'s `sort_window`: padding costs compute), but holds at most this much audio (float32
# at 16 kHz: 230 MB per hour) beyond the recording that crosses the limit.
READ_AHEAD_BATCHES = 8
READ_AHEAD_SECONDS = 1800.0


def punctuation_unavailable_note(name: str, error: Exception) -> str:
    return (
        f"note: transcripts are not punctuated: the default punctuation model {name} is not available "
        f"({str(error).split('. ')[0]}). Download it with `hf download {name}` or name a local copy; "
        "turning punctuation off (--punctuation none on the command line) silences this note."
    )


def resolve_punctuation(punctuation: str | None) -> tuple[str | None, list[str]]:
    """
    The punctuation model a job of several processes (e.g. cluster replicas, which print nothing) should load, and
    the notes to print: `AUTO_PUNCTUATION` is decided here, once, as a `Transcriber` decides it: the default model
    (`$FIREREDASR_HF_PUNCTUATION_MODEL`, else FireRedTeam/FireRedPunc) if it can be obtained (downloaded and
    converted into the cache now, so that the processes find it there), else none, with a note. Other values are
    returned as they are.
    """
    if punctuation != AUTO_PUNCTUATION:
        return punctuation, []
    from .hub import resolve_punctuation_model
    from .punctuation import default_punctuation_model

    name = default_punctuation_model()
    try:
        resolve_punctuation_model(name)
    except (ValueError, OSError) as error:  # ModelResolutionError, ConversionError, unreadable files
        return None, [punctuation_unavailable_note(name, error)]
    return name, []


def check_device(device: str | None) -> str:
    """The torch device to run on: `device` when this machine has it (default: cuda if available, else cpu)."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind = str(device).split(":", 1)[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise TranscriptionError(f"device {device!r} was asked for, but this machine has no usable CUDA GPU")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise TranscriptionError(f"device {device!r} was asked for, but MPS is not available on this machine")
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise TranscriptionError(f"unknown device {device!r}: {error}") from None
    return str(device)


class UnavailableVad:
    """Stands in for a default detector that could not be loaded: any recording that needs it fails with the reason."""

    def __init__(self, reason: str):
        self.reason = reason

    def __call__(self, audio, sampling_rate):
        raise TranscriptionError(f"this recording needs segmentation, but {self.reason}")


class Transcriber:
    """
    A FireRedASR pipeline loaded with a job's settings.

    Args:
        model: converted directory, original FireRedASR directory or Hub repo id (see `hub.resolve_model`), or an
            already built `FireRedAsrPipeline`.
        revision, device, dtype: where and how to load it (dtype: a torch dtype or its name; default: as stored).
        quantize: `"int8"` for int8 linear layers on the CPU (see `fireredasr_hf.quantization`; the device then
            defaults to the CPU).
        num_threads: torch CPU threads (default: `fireredasr_hf.cpu.default_num_threads()`, the physical cores this
            process may use, or `OMP_NUM_THREADS` when set).
        batch_size: segments decoded together (in batches of similar length, from the segments of the recordings
            that a job reads ahead, see `transcribe`).
        generate_kwargs: generate() options (see `GENERATION_OPTIONS`; each is checked against the model variant).
        option_label: how an option is named in error messages (e.g. its command-line flag).
        vad, max_segment_s: segmentation of long audio (see `FireRedAsrPipeline`). The default detector, FireRedVAD
            (`vad=None` or "firered"), is loaded here from `vad_model` (a directory or Hub id; default:
            `$FIREREDASR_HF_VAD_MODEL`, else FireRedTeam/FireRedVAD), so that a missing model is reported once,
            before any decoding, with what to do.
        timestamps: `False`, `True` or `"segment"` (`chunks` in every result: segments; sentences with punctuation,
            timed by their words on models with a CTC head) or `"word"` (models with a CTC head, FireRedASR2-AED:
            `words`, each with the mark that follows it when punctuated, and `chunks` that group them into subtitle
            lines, which end with their sentence, see `transcript_io.group_words_into_lines`).
        keep_pauses: word times with the pauses the alignment finds (default: FireRedASR2's, see
            `FireRedAsrPipeline`).
        punctuation: FireRedPunc model (directory, Hub id or `FireRedPunctuator`) that punctuates the transcripts
            (and makes the chunks sentences); `AUTO_PUNCTUATION` takes the default model
            (`$FIREREDASR_HF_PUNCTUATION_MODEL`, else FireRedTeam/FireRedPunc) if it can be obtained and otherwise
            goes without, noting why in `notes`; None: no punctuation.
    """

    def __init__(
        self,
        model,
        *,
        revision: str | None = None,
        device: str | None = None,
        dtype=None,
        quantize: str | None = None,
        num_threads: int | None = None,
        batch_size: int = 8,
        generate_kwargs: dict | None = None,
        option_label: Callable[[str], str] = str,
        vad=None,
        vad_model: str | os.PathLike | None = None,
        max_segment_s: float | None = None,
        timestamps: bool | str | None = False,
        keep_pauses: bool = False,
        punctuation=None,
    ):
        import torch

        if num_threads is None:
            from .cpu import default_num_threads

            num_threads = default_num_threads()
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise TranscriptionError(f"the number of threads must be at least 1, got {num_threads}")
        torch.set_num_threads(num_threads)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise TranscriptionError(f"the batch size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        if isinstance(model, str | os.PathLike):
            from .hub import load_asr_pipeline

            if isinstance(dtype, str):
                dtype = None if dtype == "auto" else getattr(torch, dtype)
            try:
                device = check_device(device if device is not None or quantize is None else "cpu")
                self.pipeline = load_asr_pipeline(
                    model, revision=revision, device=device, dtype=dtype, quantize=quantize
                )
            except ValueError as error:  # neither a converted nor an original FireRedASR model
                raise TranscriptionError(str(error)) from error
        else:
            if quantize is not None:
                raise TranscriptionError("quantize applies when the Transcriber loads the model (pass its name)")
            self.pipeline = model
        self.quantize = quantize
        # As the user named it (a Hub id rather than the cache folder it was converted into).
        self.model_name = str(model) if isinstance(model, str | os.PathLike) else self.pipeline.model.name_or_path
        self.variant = VARIANTS.get(self.pipeline.model.config.model_type)
        if self.variant is None:
            raise TranscriptionError(f"{self.model_name} is not a FireRedASR model")
        generate_kwargs = dict(generate_kwargs or {})
        for name in generate_kwargs:
            variants = GENERATION_OPTIONS.get(name)
            if variants is not None and self.variant not in variants:
                raise TranscriptionError(
                    f"{option_label(name)} applies to FireRedASR-{variants[0].upper()} models only"
                )
        self.call_kwargs: dict[str, Any] = {}
        self.notes: list[str] = []
        self.vad_name = str(vad_model) if vad_model is not None else None
        if vad is None and vad_model is None and not timestamps:
            # The default detector is only needed for recordings longer than the model's limit: when it cannot be
            # obtained (offline, not cached), shorter recordings are still transcribed and longer ones fail alone.
            try:
                vad = self._load_fireredvad(None)
            except TranscriptionError as error:
                vad = UnavailableVad(str(error))
                self.notes.append(
                    f"note: recordings longer than the model's limit need segmentation, which will fail: {error}"
                )
        elif vad is None or vad == "firered":
            vad = self._load_fireredvad(vad_model)
        elif vad_model is not None:
            raise TranscriptionError(f"a VAD model is only used by the FireRedVAD detector, not by {vad!r}")
        self.call_kwargs["vad"] = vad
        self.punctuation_name = None
        punctuator = self._load_punctuation(punctuation)
        if punctuator is not None:
            self.call_kwargs["punctuation_model"] = punctuator
        if max_segment_s is not None:
            self.call_kwargs["max_segment_s"] = max_segment_s
        timestamps = timestamps or False
        if timestamps not in (False, True, *TIMESTAMP_LEVELS):
            raise TranscriptionError(f"timestamps must be one of {', '.join(TIMESTAMP_LEVELS)}, got {timestamps!r}")
        self.word_timestamps = timestamps == "word"
        if self.word_timestamps and not self.supports_timestamps("word"):
            raise TranscriptionError(
                f"{self.model_name} gives segment timestamps only: word timestamps come from the CTC head of "
                "FireRedASR2-AED models"
            )
        if timestamps:
            self.call_kwargs["return_timestamps"] = "word" if self.word_timestamps else True
        if keep_pauses:
            self.call_kwargs["keep_pauses"] = True
        if generate_kwargs:
            self.call_kwargs["generate_kwargs"] = generate_kwargs

    def _load_fireredvad(self, name):
        from .vad import FireRedVad, default_fireredvad_model

        self.vad_name = str(name) if name is not None else default_fireredvad_model()
        try:
            return FireRedVad.from_pretrained(self.vad_name)
        except (ValueError, OSError) as error:  # ModelResolutionError, ConversionError, unreadable files
            raise TranscriptionError(f"the voice activity detector (FireRedVAD) cannot be loaded: {error}") from None

    def _load_punctuation(self, punctuation):
        from .punctuation import FireRedPunctuator, default_punctuation_model

        if punctuation is None or isinstance(punctuation, FireRedPunctuator):
            self.punctuation_name = None if punctuation is None else type(punctuation).__name__
            return punctuation
        automatic = punctuation == AUTO_PUNCTUATION
        name = default_punctuation_model() if automatic else str(punctuation)
        try:
            punctuator = FireRedPunctuator.from_pretrained(name, device=self.pipeline.device)
        except (ValueError, OSError) as error:
            if not automatic:
                raise TranscriptionError(f"the punctuation model {name} cannot be loaded: {error}") from None
            self.notes.append(punctuation_unavailable_note(name, error))
            return None
        self.punctuation_name = name
        return punctuator

    @property
    def sampling_rate(self) -> int:
        return self.pipeline.feature_extractor.sampling_rate

    @property
    def capabilities(self) -> PipelineCapabilities:
        """What the loaded pipeline offers (word timestamps, VADs, punctuation, progress); see
        `PipelineCapabilities`."""
        return pipeline_capabilities(self.pipeline)

    def settings(self) -> dict:
        """What determines the transcripts (model and options), as recorded in a resume log."""
        options = {
            key: (value if isinstance(value, str | int | float | bool | dict) else type(value).__name__)
            for key, value in self.call_kwargs.items()
        }
        if self.vad_name is not None:
            options["vad_model"] = self.vad_name
        if self.punctuation_name is not None:
            options["punctuation_model"] = self.punctuation_name
        settings = {"model": str(self.pipeline.model.name_or_path), "options": options}
        if self.quantize is not None:
            settings["quantize"] = self.quantize
        return settings

    def transcribe_audio(self, audio, **call_kwargs) -> dict:
        """The pipeline's result for one recording (path, array, `{"raw", "sampling_rate"}` dict, ...)."""
        return self.pipeline(audio, **{**self.call_kwargs, **call_kwargs})

    def supports_timestamps(self, kind: bool | str) -> bool:
        """Whether the pipeline gives timestamps of this kind (`True`: segments; `"word"`: words) for this model."""
        return pipeline_supports_timestamps(self.pipeline, kind)

    def decode_waveforms(
        self, waveforms: Sequence["np.ndarray"], return_timestamps: bool | str | None = None
    ) -> list[dict | Exception]:
        """
        Decodes recordings already read (float32 mono at `sampling_rate`) in one pipeline call: their segments are
        decoded `batch_size` at a time, whatever recording they come from, in batches of similar length. Returns, per recording, its result
        `{"text", "duration"[, "chunks"]}` or the exception that stopped it: when the batch fails, each recording is
        decoded again alone, so that one bad recording fails alone. `return_timestamps` overrides the job's setting.

        This is the call that the batch jobs, the server's dynamic batching and the cluster workers share.
        """
        call_kwargs = dict(self.call_kwargs)
        if return_timestamps is not None:
            call_kwargs.pop("return_timestamps", None)
            if return_timestamps:
                call_kwargs["return_timestamps"] = return_timestamps
        sampling_rate = self.sampling_rate
        inputs = [{"raw": waveform, "sampling_rate": sampling_rate} for waveform in waveforms]
        if not inputs:
            return []
        try:
            outputs = self.pipeline(inputs, batch_size=self.batch_size, **call_kwargs)
        except Exception:  # noqa: BLE001 (find the recording that failed by decoding them one at a time)
            outputs = None
        results: list[dict | Exception] = []
        for index, waveform in enumerate(waveforms):
            try:
                output = outputs[index] if outputs is not None else self.pipeline(inputs[index], **call_kwargs)
            except ImportError as error:
                # A missing optional package (e.g. a VAD's) would fail every recording that needs it: stop here.
                raise TranscriptionError(str(error)) from error
            except Exception as error:  # noqa: BLE001
                results.append(error)
                continue
            result = {"text": output["text"], "duration": round(len(waveform) / sampling_rate, 3)}
            if "confidence" in output:  # FireRedASR2-AED: the utterance's (see FireRedAsrPipeline)
                result["confidence"] = output["confidence"]
            if "chunks" in output:  # segments, or words (with their confidence where the model gives it)
                result["chunks"] = [{**chunk, "timestamp": list(chunk["timestamp"])} for chunk in output["chunks"]]
            results.append(result)
        return results

    def transcribe(
        self,
        items: Sequence[AudioItem],
        on_result: Callable[[AudioItem, dict], None],
        on_failure: Callable[[AudioItem, str], None],
    ) -> None:
        """Decodes `items` and reports each one as a result (`{"text", "duration", "source"[, "confidence"][,
        "chunks"][, "words"]}`) or a failure message. Recordings are read ahead, up to `READ_AHEAD_BATCHES` x
        `batch_size` of them and at most `READ_AHEAD_SECONDS` of audio, and decoded in one pipeline call (see
        `decode_waveforms`), whose segments are batched by length; results are reported in the order of `items`. A
        recording that cannot be read or decoded fails alone. With word timestamps, `words` are the words and
        `chunks` group them into subtitle lines (`transcript_io.group_words_into_lines`)."""
        from .transcript_io import group_words_into_lines

        sampling_rate = self.sampling_rate
        read_ahead = self.batch_size * READ_AHEAD_BATCHES if self.batch_size > 1 else 1
        position = 0
        while position < len(items):
            group, samples = [], 0
            while position < len(items) and len(group) < read_ahead and samples < READ_AHEAD_SECONDS * sampling_rate:
                item = items[position]
                position += 1
                try:
                    waveform = item.read(sampling_rate)
                except Exception as error:  # noqa: BLE001 (any unreadable file is reported and skipped)
                    on_failure(item, f"{item.source}: {error}")
                    continue
                group.append((item, waveform))
                samples += len(waveform)
            results = self.decode_waveforms([waveform for _, waveform in group])
            for (item, _), result in zip(group, results, strict=True):
                if isinstance(result, Exception):
                    on_failure(item, f"{item.source}: {type(result).__name__}: {result}")
                else:
                    # Keys in the order of the job's outputs: text, duration, source, confidence, chunks, words.
                    result = {"text": result["text"], "duration": result["duration"], "source": item.source, **result}
                    if self.word_timestamps and "chunks" in result:
                        words = result.pop("chunks")
                        result["chunks"] = group_words_into_lines(words)
                        result["words"] = words
                    on_result(item, result)


# ----------------------------------------------------------------------------------------------------------------
# Outputs

OUTPUT_FORMATS = ("txt", "jsonl", "srt", "vtt", "kaldi")
SUBTITLE_FORMATS = ("srt", "vtt")
# Subtitle cues longer than this are cut (width: a Chinese character counts two; two lines of 40 Latin letters).
MAX_CUE_WIDTH = 80
MAX_CUE_SECONDS = 7.0
DEFAULT_OUTPUT_NAMES = {"txt": "transcripts.txt", "jsonl": "transcripts.jsonl", "kaldi": "text"}
RESUME_LOG_NAME = ".fireredasr-resume.jsonl"
LOCK_NAME = ".fireredasr-hf.lock"


def subtitle_relative_path(uttid: str, extension: str) -> Path:
    """The path of an utterance's subtitle file inside the output folder: its id (which may name sub-folders, as
    ids of files found in sub-folders do) plus the extension. Ids that would leave the folder or that no file
    system can hold (absolute, `..`, empty parts, control characters) are refused."""
    parts = uttid.split("/")
    if (
        not uttid
        or uttid.startswith("/")
        or "\\" in uttid
        or any(part in ("", ".", "..") for part in parts)
        or any(ord(char) < 32 or char == "\x7f" for char in uttid)
        or any(len(part.encode("utf-8")) > 250 for part in parts)
    ):
        raise TranscriptionError(
            f"utterance id {uttid!r} cannot name a subtitle file inside the output folder (ids become file paths: "
            "no absolute paths, '..', empty parts, backslashes or control characters); rename it in the input"
        )
    return Path(*parts[:-1], f"{parts[-1]}.{extension}")


class OutputTarget:
    """
    Where a job's results go: `path` None (standard output; txt, jsonl and kaldi only), a folder (srt and vtt: one
    file per recording; other formats: `DEFAULT_OUTPUT_NAMES` inside it) or a file.

    Creating one checks the location (the folder is created, must be writable); `check_ids` checks every utterance id
    against the format before decoding; `write` writes atomically. Nothing is ever written outside the folder named.
    Subtitle cues are the result's chunks (sentences with punctuation, else segments), cut where longer than
    `max_cue_width` or `max_cue_seconds` (None: no limit; see `transcript_io.split_cues`).
    """

    def __init__(
        self,
        path: str | os.PathLike | None,
        output_format: str,
        max_cue_width: int | None = MAX_CUE_WIDTH,
        max_cue_seconds: float | None = MAX_CUE_SECONDS,
    ):
        if output_format not in OUTPUT_FORMATS:
            raise TranscriptionError(f"unknown output format {output_format!r} (one of {', '.join(OUTPUT_FORMATS)})")
        if max_cue_width is not None and max_cue_width < 2:
            raise TranscriptionError(f"the maximum cue width must be at least 2, got {max_cue_width}")
        if max_cue_seconds is not None and not max_cue_seconds > 0:
            raise TranscriptionError(f"the maximum cue duration must be positive, got {max_cue_seconds}")
        self.max_cue_width = max_cue_width
        self.max_cue_seconds = max_cue_seconds
        self.format = output_format
        self.subtitles = output_format in SUBTITLE_FORMATS
        if path is None:
            if self.subtitles:
                raise TranscriptionError(f"output format {output_format} writes one file per recording: name a folder")
            self.path = self.directory = None
            return
        path = Path(path)
        if self.subtitles or str(path).endswith(os.sep) or path.is_dir():
            self.directory = path
            self.path = path if self.subtitles else path / DEFAULT_OUTPUT_NAMES[output_format]
        else:
            self.directory, self.path = path.parent, path
        if self.path.is_dir() and not self.subtitles:
            raise TranscriptionError(f"{self.path} is a folder; name the output file or another folder")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as error:
            raise TranscriptionError(f"cannot write into {self.directory}: {error.strerror or error}") from None

    @property
    def resume_log_path(self) -> Path | None:
        if self.path is None:
            return None
        return self.directory / RESUME_LOG_NAME if self.subtitles else Path(f"{self.path}.resume.jsonl")

    @property
    def lock_path(self) -> Path | None:
        if self.path is None:
            return None
        return self.directory / LOCK_NAME if self.subtitles else self.directory / f".{self.path.name}.lock"

    def check_ids(self, uttids: Iterable[str]) -> None:
        """Refuses, before any decoding, utterance ids that the format cannot hold."""
        for uttid in uttids:
            if not uttid:
                raise TranscriptionError("an utterance id is empty; every recording needs an id")
            if any(char in uttid for char in "\n\r"):
                raise TranscriptionError(f"utterance id {uttid!r} contains a line break")
            if self.format == "kaldi" and any(char.isspace() for char in uttid):
                raise TranscriptionError(
                    f"utterance id {uttid!r} contains whitespace, which a Kaldi text file cannot hold; use "
                    "--output-format txt or jsonl, or rename it"
                )
            if self.format == "txt" and "\t" in uttid:
                raise TranscriptionError(
                    f"utterance id {uttid!r} contains a tab, which separates id and text in txt output; use "
                    "--output-format jsonl, or rename it"
                )
            if self.subtitles:
                subtitle_relative_path(uttid, self.format)

    def lock(self):
        """A lock held while a job writes here, so that a second job naming the same output stops at once."""
        return _NoLock() if self.lock_path is None else lock_output(self.lock_path, self.path)

    def write(self, uttids: Sequence[str], results: dict[str, dict]) -> None:
        """Writes the results of `uttids` (in that order): every file is written to a temporary name and renamed into
        place, so a failure leaves earlier outputs intact and never a half-written file."""
        from .transcript_io import format_srt, format_vtt, split_cues

        if self.subtitles:
            format_subtitles = format_srt if self.format == "srt" else format_vtt
            root = self.directory.resolve()
            for uttid in uttids:
                path = self.directory / subtitle_relative_path(uttid, self.format)
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.parent.resolve().is_relative_to(root):  # a symbolic link inside the folder
                    raise TranscriptionError(f"{path.parent} leads outside the output folder {self.directory}")
                cues = split_cues(results[uttid]["chunks"], self.max_cue_width, self.max_cue_seconds)
                write_atomically(path, format_subtitles(cues))
            return
        text = format_text_outputs(uttids, results, self.format)
        if self.path is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_atomically(self.path, text)


def lock_output(lock_path: Path, output) -> "_HeldLock":
    """Takes the lock file of an output (released with `.release()`); another job holding it is an error."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise TranscriptionError(
            f"another transcription job is writing to {output} (lock {lock_path}); wait for it to finish or choose "
            "another output"
        ) from None
    return _HeldLock(lock)


class _NoLock:
    def release(self) -> None:
        pass


@dataclass
class _HeldLock:
    lock: Any

    def release(self) -> None:
        self.lock.release()


def write_atomically(path: Path, content: str | bytes) -> None:
    """Writes a file under a temporary name in its folder, then renames it into place: readers see the whole file or
    none of it."""
    from .file_modes import make_readable

    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
        make_readable(temporary)  # mkstemp creates 0600 files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def format_text_outputs(uttids: Sequence[str], results: dict[str, dict], output_format: str) -> str:
    """The txt (`uttid<TAB>text`), kaldi (`uttid text`) or jsonl (one object per recording) text of `uttids`."""
    from .transcript_io import format_jsonl, format_kaldi_text, format_plain_text

    if output_format == "jsonl":
        return format_jsonl({"uttid": uttid, **results[uttid]} for uttid in uttids)
    texts = [(uttid, results[uttid]["text"]) for uttid in uttids]
    return format_kaldi_text(texts) if output_format == "kaldi" else format_plain_text(texts)


# ----------------------------------------------------------------------------------------------------------------
# The job


@dataclass
class JobReport:
    """What a job did: results by utterance id, failures (`{uttid or input: message}`), decoded recordings and
    their audio duration, wall-clock time; `resume_log` is the log kept for a later `resume=True` run (None when
    everything was done and written)."""

    results: dict[str, dict]
    failures: dict[str, str]
    decoded: int = 0
    audio_seconds: float = 0.0
    elapsed: float = 0.0
    resumed: int = 0
    resume_log: Path | None = None

    @property
    def real_time_factor(self) -> float:
        return self.elapsed / self.audio_seconds if self.audio_seconds else 0.0


class OutputWriteError(TranscriptionError):
    """The transcripts were decoded but could not be written; the resume log keeps them."""


def transcribe_files(
    transcriber: Transcriber,
    inputs: InputCollection | Sequence[AudioItem],
    output: OutputTarget | str | os.PathLike | None = None,
    output_format: str = "txt",
    resume: bool = False,
    progress: ProgressCallback | None = None,
    write: bool = True,
) -> JobReport:
    """
    Transcribes `inputs` and writes the results to `output` (see `OutputTarget`).

    Before decoding, the output location and every utterance id are checked and the output is locked. Each finished
    recording is appended to a resume log next to the output; the log is removed only once the outputs are written
    and nothing failed. With `resume=True` a job continues an earlier one with the same settings (recordings in
    its log are not decoded again); without it, an earlier job's unfinished log is an error rather than lost work.
    `write=False` decodes (with the log) but leaves the writing to the caller (e.g. evaluation writes its own files).
    """
    collection = inputs if isinstance(inputs, InputCollection) else InputCollection(list(inputs))
    items = collection.items
    target = output if isinstance(output, OutputTarget) else OutputTarget(output, output_format)
    target.check_ids(item.uttid for item in items)
    if resume and target.resume_log_path is None:
        raise TranscriptionError("resuming needs an output file or folder (the results are logged next to it)")

    lock = target.lock()
    try:
        return _run_job(transcriber, collection, target, resume, progress, write)
    finally:
        lock.release()


def _run_job(transcriber, collection, target, resume, progress, write) -> JobReport:
    from .transcript_io import ResumeLog

    items = collection.items
    report = JobReport(results={}, failures=dict(collection.failures))
    resume_log = None
    log_path = target.resume_log_path
    if log_path is not None:
        if log_path.exists() and not resume:
            raise TranscriptionError(
                f"an earlier job writing to {target.path} did not finish ({log_path} holds its results): continue it "
                f"with --resume (resume=True), or delete {log_path} to start again"
            )
        try:
            resume_log = ResumeLog(log_path, metadata=transcriber.settings())
        except ValueError as error:
            raise TranscriptionError(str(error)) from error
        wanted = {item.uttid for item in items}
        report.results = {uttid: result for uttid, result in resume_log.results.items() if uttid in wanted}
        report.resumed = len(report.results)

    start = time.perf_counter()

    def on_result(item, result):
        report.results[item.uttid] = result
        if resume_log is not None:
            resume_log.add(item.uttid, result)
        report.decoded += 1
        report.audio_seconds += result["duration"]
        report.elapsed = time.perf_counter() - start
        if progress is not None:
            progress(item, result["duration"])

    def on_failure(item, message):
        report.failures[item.uttid] = message
        report.elapsed = time.perf_counter() - start
        if progress is not None:
            progress(item, None)

    pending = [item for item in items if item.uttid not in report.results]
    try:
        transcriber.transcribe(pending, on_result, on_failure)
    finally:
        report.elapsed = time.perf_counter() - start
        if resume_log is not None:
            resume_log.close()
    report.resume_log = log_path

    if write:
        done = [item.uttid for item in items if item.uttid in report.results]
        try:
            target.write(done, report.results)
        except (OSError, TranscriptionError) as error:
            where = f" they are kept in {log_path}; fix the problem and run again with --resume" if log_path else ""
            detail = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise OutputWriteError(
                f"the transcripts could not be written to {target.path} ({detail});{where}"
            ) from None
    if log_path is not None and write and not report.failures:
        log_path.unlink(missing_ok=True)
        report.resume_log = None
    return report


__all__ = [
    "AUTO_PUNCTUATION",
    "AudioItem",
    "GENERATION_OPTIONS",
    "InputCollection",
    "JobReport",
    "OUTPUT_FORMATS",
    "OutputTarget",
    "OutputWriteError",
    "PipelineCapabilities",
    "Transcriber",
    "TranscriptionError",
    "collect_inputs",
    "dataset_items",
    "file_item",
    "item_at_location",
    "load_dataset_dir",
    "pipeline_capabilities",
    "resolve_punctuation",
    "transcribe_files",
]
