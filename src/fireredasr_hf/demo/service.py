# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""What the demo does, without its user interface: models loaded on demand (one decoding at a time per model),
one recording checked, transcribed and turned into a transcript, tables, the real-time factor and SRT/VTT/JSON
files. Every problem a user can cause or meet (an unreadable or too long file, silence, a model that cannot be
loaded) is a `DemoError` with a message meant for that user, never a traceback.
"""

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..transcription import AUTO_PUNCTUATION, PipelineCapabilities, Transcriber, TranscriptionError

logger = logging.getLogger(__name__)

# Environment variables that configure a deployed demo (a Space has no command line).
MODELS_ENV_VAR = "FIREREDASR_DEMO_MODELS"
MAX_AUDIO_SECONDS_ENV_VAR = "FIREREDASR_DEMO_MAX_AUDIO_SECONDS"
VAD_ENV_VAR = "FIREREDASR_DEMO_VAD"
PUNCTUATION_ENV_VAR = "FIREREDASR_DEMO_PUNCTUATION"
DEFAULT_MODELS = ("FireRedTeam/FireRedASR-AED-L",)
DEFAULT_MAX_AUDIO_SECONDS = 900.0
MIN_BEAMS, MAX_BEAMS = 1, 10


class DemoError(Exception):
    """A problem with the user's recording, options or model choice, worded for the user of the demo."""


@dataclass
class DemoSettings:
    """How the demo is set up.

    Args:
        models: the model choices (converted or original directories, Hub repo ids); the first is the default.
        device, dtype: where and how models are loaded (see `Transcriber`).
        max_audio_seconds: longer recordings are refused before decoding.
        vad, vad_model: the voice activity detector models start with (the engine's default, FireRedVAD, when
            None; see `Transcriber`); users may pick another one the pipeline knows.
        punctuation: the punctuation model (`"auto"`: the engine's default model if it can be obtained; `"none"`:
            none; else a directory or Hub id). Users may turn it off per recording.
        max_loaded_models: models kept in memory at once (the least recently used one is dropped).
        load_options: further `Transcriber` arguments (e.g. options of newer engines).
    """

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    device: str | None = None
    dtype: str | None = None
    max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS
    vad: str | None = None
    vad_model: str | None = None
    punctuation: str = AUTO_PUNCTUATION
    max_loaded_models: int = 1
    load_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.models:
            raise ValueError("the demo needs at least one model")
        if not self.max_audio_seconds > 0:
            raise ValueError(f"the longest accepted recording must be positive, got {self.max_audio_seconds} s")
        if self.max_loaded_models < 1:
            raise ValueError(f"at least one model must stay loaded, got {self.max_loaded_models}")

    @classmethod
    def from_environment(cls, **overrides) -> "DemoSettings":
        """Settings from the `FIREREDASR_DEMO_*` environment variables; `overrides` that are not None win."""
        values = {}
        if os.environ.get(MODELS_ENV_VAR):
            values["models"] = [name.strip() for name in os.environ[MODELS_ENV_VAR].split(",") if name.strip()]
        if os.environ.get(MAX_AUDIO_SECONDS_ENV_VAR):
            try:
                values["max_audio_seconds"] = float(os.environ[MAX_AUDIO_SECONDS_ENV_VAR])
            except ValueError:
                value = os.environ[MAX_AUDIO_SECONDS_ENV_VAR]
                raise ValueError(f"{MAX_AUDIO_SECONDS_ENV_VAR} must be a number of seconds, got {value!r}") from None
        if os.environ.get(VAD_ENV_VAR):
            values["vad"] = os.environ[VAD_ENV_VAR]
        if os.environ.get(PUNCTUATION_ENV_VAR):
            values["punctuation"] = os.environ[PUNCTUATION_ENV_VAR]
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass(frozen=True)
class ModelInfo:
    """A loaded model as the interface presents it."""

    name: str
    label: str
    variant: str
    parameters: int
    device: str
    default_beams: int
    capabilities: PipelineCapabilities
    vad: str | None  # the detector it starts with (a name the pipeline knows)
    punctuation: bool  # a punctuation model is loaded (users may turn it off per recording)
    notes: tuple[str, ...] = ()  # what the engine noted when loading it (e.g. punctuation not available)

    @property
    def description(self) -> str:
        # Imported here: the conversion package loads torch, and `fireredasr-hf demo --help` reads this module.
        from ..conversion.model_card import format_count

        size = format_count(self.parameters)
        return f"{self.label}: FireRedASR-{self.variant.upper()}, {size} parameters, {self.device}"


@dataclass
class DemoResult:
    """One transcribed recording."""

    text: str
    segments: list[dict]
    words: list[dict] | None
    duration: float
    elapsed: float
    model: ModelInfo
    files: list[Path]
    message: str | None = None  # a note for the user (e.g. no speech found)
    confidence: float | None = None  # of the whole transcript, where the model gives one

    @property
    def real_time_factor(self) -> float:
        return self.elapsed / self.duration if self.duration else 0.0

    def summary(self) -> str:
        pieces = [
            f"{self.duration:.2f} s of audio transcribed in {self.elapsed:.2f} s",
            f"real-time factor {self.real_time_factor:.3f}",
            f"{len(self.segments)} segment{'s' if len(self.segments) != 1 else ''}",
            self.model.description,
        ]
        if self.confidence is not None:
            pieces.insert(2, f"confidence {self.confidence:.2f}")
        return " · ".join(pieces)


def model_label(name: str) -> str:
    """How a model choice is shown: a Hub id as is, a local directory by its name (the path stays private)."""
    path = Path(name).expanduser()
    return f"{path.resolve().name} (local)" if path.is_dir() else name


ProgressReporter = Callable[[float | tuple[int, int], str], None]


def _no_progress(progress, description):
    pass


class ModelPool:
    """The demo's models, loaded on first use and kept (the `max_loaded_models` most recently used). Each has a lock: a
    pipeline decodes one recording at a time (its voice activity detector is stateful)."""

    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self._models: OrderedDict[str, tuple[Transcriber, ModelInfo, threading.Lock]] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> tuple[Transcriber, ModelInfo, threading.Lock]:
        if name not in self.settings.models:
            raise DemoError(f"{name!r} is not one of this demo's models ({', '.join(self.settings.models)})")
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            loading = self._loading.setdefault(name, threading.Lock())
        # Requests for the same model wait for one load; the other models stay available meanwhile.
        with loading:
            with self._lock:
                if name in self._models:
                    return self._models[name]
            entry = self._load(name)
            with self._lock:
                while len(self._models) >= self.settings.max_loaded_models:
                    self._models.popitem(last=False)
                self._models[name] = entry
            return entry

    def _load(self, name: str) -> tuple[Transcriber, ModelInfo, threading.Lock]:
        try:
            punctuation = self.settings.punctuation
            transcriber = Transcriber(
                name,
                device=self.settings.device,
                dtype=self.settings.dtype,
                batch_size=1,
                vad=self.settings.vad,
                vad_model=self.settings.vad_model,
                punctuation=None if punctuation.lower() == "none" else punctuation,
                **self.settings.load_options,
            )
        except (TranscriptionError, OSError) as error:
            raise DemoError(f"The model {model_label(name)} could not be loaded: {error}") from None
        model = transcriber.pipeline.model
        info = ModelInfo(
            name=name,
            label=model_label(name),
            variant=transcriber.variant,
            parameters=sum(parameter.numel() for parameter in model.parameters()),
            device=str(model.device),
            default_beams=int(model.generation_config.num_beams or 1),
            capabilities=transcriber.capabilities,
            vad=detector_name(transcriber.call_kwargs.get("vad")),
            punctuation="punctuation_model" in transcriber.call_kwargs,
            notes=tuple(transcriber.notes),
        )
        for note in info.notes:
            logger.warning("%s: %s", info.label, note)
        return transcriber, info, threading.Lock()


class DemoService:
    """Transcribes one recording at a time for a user of the demo (thread-safe: the interface calls it from its
    worker threads)."""

    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self.models = ModelPool(settings)

    def model_info(self, name: str) -> ModelInfo:
        return self.models.get(name)[1]

    def transcribe(
        self,
        audio_path: str | os.PathLike | None,
        model: str | None = None,
        num_beams: int | None = None,
        word_timestamps: bool = False,
        vad: str | None = None,
        punctuation: bool | None = None,
        progress: ProgressReporter = _no_progress,
        output_dir: str | os.PathLike | None = None,
    ) -> DemoResult:
        """Transcribes the recording at `audio_path` with segment timestamps (and word timestamps when asked and
        available) and writes `<name>.srt`, `.vtt` and `.json` into `output_dir` (default: a new temporary folder).
        `progress(value, description)` is told how it goes: a fraction, or `(segments_done, segments_total)`."""
        from ..audio import load_audio

        if audio_path is None:
            raise DemoError("No audio: upload a file, record with the microphone or pick an example first.")
        name = Path(audio_path).name
        limit = self.settings.max_audio_seconds
        known_duration = audio_file_duration(audio_path)  # from the header: a long file is refused before reading it
        if known_duration is not None and known_duration > limit:
            raise DemoError(too_long_message(name, known_duration, limit))
        model = model or self.settings.models[0]
        progress(0.0, "Loading the model")
        transcriber, info, lock = self.models.get(model)

        options: dict = {"return_timestamps": True}
        if num_beams is not None:
            if not MIN_BEAMS <= int(num_beams) <= MAX_BEAMS:
                raise DemoError(f"The beam size must be between {MIN_BEAMS} and {MAX_BEAMS}, got {num_beams}.")
            options["generate_kwargs"] = {"num_beams": int(num_beams)}
        if word_timestamps:
            if not info.capabilities.word_timestamps:
                raise DemoError(f"{info.label} gives segment timestamps only.")
            options["return_timestamps"] = "word"
        if vad and vad != info.vad:  # the model's own detector (e.g. FireRedVAD from --vad-model) unless another
            if vad not in info.capabilities.vad_names:
                raise DemoError(
                    f"Unknown voice activity detector {vad!r} (one of {', '.join(info.capabilities.vad_names)})."
                )
            options["vad"] = vad
        if punctuation and not info.punctuation:
            raise DemoError(f"Punctuation is not available with {info.label} in this demo.")
        if punctuation is False and info.punctuation:
            options["punctuation_model"] = False  # this recording without it

        progress(0.0, "Reading the audio")
        try:
            audio = load_audio(audio_path, sampling_rate=transcriber.sampling_rate)
        except (ValueError, OSError):
            raise DemoError(
                f"{name} could not be read as audio: the file is damaged or not in an audio format "
                "(wav, flac, mp3, ogg, m4a, ... are read)."
            ) from None
        duration = len(audio) / transcriber.sampling_rate
        if duration > limit:
            raise DemoError(too_long_message(name, duration, limit))

        if info.capabilities.segment_progress:
            options["progress_callback"] = lambda done, total: progress(
                (done, total), f"Decoding: {done}/{total} segments"
            )
        progress(0.0, "Waiting for the model" if lock.locked() else "Detecting speech")
        with lock:
            progress(0.0, "Detecting speech")
            start = time.perf_counter()
            try:
                output = transcriber.transcribe_audio(
                    {"raw": audio, "sampling_rate": transcriber.sampling_rate}, **options
                )
            except Exception as error:  # the user gets one line; the log keeps the traceback
                logger.exception("Decoding %s with %s failed", name, model)
                raise DemoError(f"Decoding {name} failed: {type(error).__name__}: {error}") from None
            elapsed = time.perf_counter() - start

        chunks = [chunk_row(chunk) for chunk in output.get("chunks", [])]
        if word_timestamps:  # word chunks (as Whisper's); segments where the result has them, else lines of words
            words = chunks
            segments = [chunk_row(chunk) for chunk in output["segments"]] if "segments" in output else lines(words)
        else:
            words, segments = None, chunks
        text = output["text"].strip()
        message = None
        if not text:
            message = f"No speech was found in {name}."
        confidence = output.get("confidence")
        confidence = float(confidence) if isinstance(confidence, (int, float)) else None
        result = DemoResult(text, segments, words, duration, elapsed, info, [], message, confidence)
        if text:
            result.files = write_result_files(result, Path(audio_path).stem, output_dir)
        return result


def detector_name(vad) -> str | None:
    """The name the pipeline knows a detector by: a name as is, a FireRedVAD object as "firered"."""
    from ..vad import FireRedVad

    if isinstance(vad, str):
        return vad
    return "firered" if isinstance(vad, FireRedVad) else None


def chunk_row(chunk: dict) -> dict:
    """A segment or word of the pipeline's result as `{"start", "end", "text"[, "confidence"]}`."""
    start, end = chunk["timestamp"]
    row = {"start": float(start), "end": float(end), "text": chunk["text"].strip()}
    if chunk.get("confidence") is not None:
        row["confidence"] = round(float(chunk["confidence"]), 4)
    return row


def lines(words: list[dict], max_pause: float = 0.5, max_seconds: float = 7.0) -> list[dict]:
    """Words grouped into subtitle lines: a line ends at a pause longer than `max_pause` or before it would last
    longer than `max_seconds`. Texts are joined as the pipeline joins segments (no space between Chinese characters)."""
    from ..pipeline_fireredasr import join_segment_texts

    groups: list[list[dict]] = []
    for word in words:
        if (
            groups
            and word["start"] - groups[-1][-1]["end"] <= max_pause
            and word["end"] - groups[-1][0]["start"] <= max_seconds
        ):
            groups[-1].append(word)
        else:
            groups.append([word])
    return [
        {
            "start": group[0]["start"],
            "end": group[-1]["end"],
            "text": join_segment_texts([word["text"] for word in group]),
        }
        for group in groups
    ]


def audio_file_duration(path) -> float | None:
    """The duration a file's header declares (read without decoding), or None when soundfile cannot tell."""
    import soundfile

    try:
        return float(soundfile.info(str(path)).duration)
    except (RuntimeError, ValueError, OSError, soundfile.LibsndfileError):
        return None


def too_long_message(name: str, duration: float, limit: float) -> str:
    return (
        f"{name} is {format_duration(duration)} long; this demo transcribes recordings of at most "
        f"{format_duration(limit)}. Cut it, or run the demo yourself with a higher limit (--max-audio-seconds)."
    )


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def safe_stem(stem: str) -> str:
    """A file name stem that is safe on every system (uploads can be named anything)."""
    stem = re.sub(r"[^\w.-]+", "_", stem, flags=re.UNICODE).strip("._")
    return stem[:80] or "transcript"


def write_result_files(result: DemoResult, stem: str, output_dir=None) -> list[Path]:
    """`<stem>.srt` and `.vtt` (segments) and `<stem>.json` (everything) in `output_dir` or a new temporary
    folder."""
    from ..transcript_io import format_srt, format_vtt

    folder = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="fireredasr-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(stem)
    cues = [(row["start"], row["end"], row["text"]) for row in result.segments or result.words or []]
    record = {
        "text": result.text,
        "duration": round(result.duration, 3),
        "model": result.model.label,
        "real_time_factor": round(result.real_time_factor, 4),
        "segments": result.segments,
    }
    if result.words is not None:
        record["words"] = result.words
    files = {
        f"{stem}.srt": format_srt(cues),
        f"{stem}.vtt": format_vtt(cues),
        f"{stem}.json": json.dumps(record, ensure_ascii=False, indent=2) + "\n",
    }
    paths = []
    for file_name, content in files.items():
        path = folder / file_name
        path.write_text(content, encoding="utf-8")
        paths.append(path)
    return paths


__all__ = [
    "DemoError",
    "DemoResult",
    "DemoService",
    "DemoSettings",
    "ModelInfo",
    "ModelPool",
]
