"""Voice activity detection (VAD) and the cutting of long recordings into pieces a FireRedASR model can take.

FireRedASR-AED was trained on utterances of at most 60 s and FireRedASR-LLM on at most 30 s; nothing in the
models chunks longer input. Long-form transcription therefore runs a `VoiceActivityDetector` over the
recording, then `split_into_segments` packs the speech regions into chunks of at most `max_segment_s`.

Detectors:

- `FireRedVad`: FireRedVAD, the DFSMN voice activity detector of the FireRedASR2S system (the default of the
  pipeline and the CLI), with the release's post-processing. `FireRedStreamVad` is its streaming form,
  `FireRedAudioEventDetector` the audio event model (speech, singing, music), which `FireRedVad` can also use to tag
  or skip music and singing.
- `SileroVad`: the Silero VAD model shipped inside the `silero-vad` wheel (no download; works offline).
- `EnergyVad`: a frame-energy threshold with no extra dependency, for clean recordings and tests.

Any other VAD plugs in by subclassing `VoiceActivityDetector` and implementing `detect`, which receives a
validated float32 mono array in [-1, 1] and returns `SpeechSegment`s in seconds.
"""

import abc
import importlib
import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import resample
from .vad_postprocessing import (
    FireRedStreamVadPostprocessor,
    FireRedVadPostprocessor,
    StreamVadFrameResult,
    event_ratio,
    stream_results_to_segments,
)


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of a recording, in seconds from its start."""

    start: float
    end: float

    def __post_init__(self):
        # Plain floats whatever came in (numpy scalars included), so segments serialise to JSON.
        object.__setattr__(self, "start", float(self.start))
        object.__setattr__(self, "end", float(self.end))
        if not (0.0 <= self.start <= self.end) or not math.isfinite(self.end):
            raise ValueError(
                f"a speech segment needs 0 <= start <= end (finite), got start={self.start}, end={self.end}"
            )

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class TaggedSpeechSegment(SpeechSegment):
    """A speech segment with the audio events found in it (e.g. `("speech", "music")`)."""

    events: tuple[str, ...] = ()


def check_audio(audio, sampling_rate) -> np.ndarray:
    """`audio` as a float32 mono array, after checking that it is one (and that the rate is a positive integer)."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"VAD expects mono audio of shape (num_samples,), got shape {audio.shape}; use to_mono")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(
            f"VAD expects float audio in [-1, 1], got dtype {audio.dtype}; scale integer PCM first (e.g. int16 / 32768)"
        )
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
        raise ValueError(f"sampling_rate must be a positive integer number of Hz, got {sampling_rate!r}")
    return audio.astype(np.float32, copy=False)


class VoiceActivityDetector(abc.ABC):
    """Finds the speech in a recording. Call it with a mono array and its sampling rate."""

    def __call__(self, audio: np.ndarray, sampling_rate: int) -> list[SpeechSegment]:
        audio = check_audio(audio, sampling_rate)
        if audio.size == 0:
            return []
        segments = self.detect(audio, int(sampling_rate))
        return sorted(segments, key=lambda segment: segment.start)

    @abc.abstractmethod
    def detect(self, audio: np.ndarray, sampling_rate: int) -> list[SpeechSegment]:
        """Returns the speech segments of a non-empty float32 mono array."""


def _check_durations(**durations: float) -> None:
    for name, value in durations.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


class SileroVad(VoiceActivityDetector):
    """Silero VAD (`pip install silero-vad`), loaded from the model file inside the wheel.

    Args:
        threshold: speech probability above which a 32 ms window counts as speech.
        min_speech_s: speech regions shorter than this are dropped.
        min_silence_s: a region ends only after this much silence.
        speech_pad_s: padding added on both sides of every region.

    Audio at rates other than 8 or 16 kHz is resampled to 16 kHz first. The model is stateful: use one
    instance per thread. While it runs, torch's global thread count is set to 1 (then restored).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.1,
        speech_pad_s: float = 0.03,
    ):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
        _check_durations(min_speech_s=min_speech_s, min_silence_s=min_silence_s, speech_pad_s=speech_pad_s)
        import torch

        # silero_vad sets torch's global thread count to 1 when first imported; keep the caller's setting.
        num_threads = torch.get_num_threads()
        try:
            import silero_vad
        except ImportError as error:
            raise ImportError(
                "Silero VAD (splitting audio longer than the model's limit, or asked for timestamps) needs the "
                "silero-vad package: pip install 'fireredasr-hf[vad]' (or pip install silero-vad), or choose another "
                "detector (vad='energy', --vad energy)"
            ) from error
        with warnings.catch_warnings():
            # Deprecation notices from silero_vad's own loading code (importlib.resources.path, torch.jit.load).
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model = silero_vad.load_silero_vad()
        torch.set_num_threads(num_threads)
        self._get_speech_timestamps = silero_vad.get_speech_timestamps
        self.threshold = threshold
        self.min_speech_s = min_speech_s
        self.min_silence_s = min_silence_s
        self.speech_pad_s = speech_pad_s

    def detect(self, audio: np.ndarray, sampling_rate: int) -> list[SpeechSegment]:
        import torch

        if sampling_rate not in (8000, 16000):
            audio, sampling_rate = resample(audio, sampling_rate, 16000), 16000
        with warnings.catch_warnings():
            # A read-only array is shared with torch, never written.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            samples = torch.from_numpy(audio)
        # The model runs one 32 ms window at a time; more than one thread makes that far slower (measured 3.4 s
        # with one thread and 110 s with two for 10 minutes of audio on a busy 2-core machine).
        num_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            timestamps = self._get_speech_timestamps(
                samples,
                self.model,
                threshold=self.threshold,
                sampling_rate=sampling_rate,
                min_speech_duration_ms=self.min_speech_s * 1000,
                min_silence_duration_ms=self.min_silence_s * 1000,
                speech_pad_ms=self.speech_pad_s * 1000,
            )
        finally:
            torch.set_num_threads(num_threads)
        return [SpeechSegment(item["start"] / sampling_rate, item["end"] / sampling_rate) for item in timestamps]


class EnergyVad(VoiceActivityDetector):
    """Marks frames whose energy is above `threshold_db` dBFS (0 dB = a full-scale square wave) as speech.

    Meant for clean recordings and tests; it cannot tell speech from loud noise or music.

    Args:
        threshold_db: frame energy threshold in dB relative to full scale.
        frame_s: frame length (frames do not overlap).
        min_speech_s: speech regions shorter than this are dropped.
        min_silence_s: silences shorter than this inside speech are bridged.
        speech_pad_s: padding added on both sides of every region.
    """

    def __init__(
        self,
        threshold_db: float = -45.0,
        frame_s: float = 0.01,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.3,
        speech_pad_s: float = 0.05,
    ):
        _check_durations(min_speech_s=min_speech_s, min_silence_s=min_silence_s, speech_pad_s=speech_pad_s)
        if not (math.isfinite(frame_s) and frame_s > 0):
            raise ValueError(f"frame_s must be a positive number of seconds, got {frame_s!r}")
        self.threshold_db = threshold_db
        self.frame_s = frame_s
        self.min_speech_s = min_speech_s
        self.min_silence_s = min_silence_s
        self.speech_pad_s = speech_pad_s

    def detect(self, audio: np.ndarray, sampling_rate: int) -> list[SpeechSegment]:
        frame_length = max(1, round(self.frame_s * sampling_rate))
        is_speech = frame_energy_db(audio, frame_length) > self.threshold_db
        # Frame indices where speech regions start and end (end exclusive).
        edges = np.flatnonzero(np.diff(is_speech.astype(np.int8), prepend=0, append=0))
        duration = len(audio) / sampling_rate
        frame_s = frame_length / sampling_rate
        regions: list[list[float]] = []
        for start, end in zip(edges[::2] * frame_s, np.minimum(edges[1::2] * frame_s, duration)):
            if regions and start - regions[-1][1] < self.min_silence_s:
                regions[-1][1] = end
            else:
                regions.append([start, end])
        segments: list[SpeechSegment] = []
        for start, end in regions:
            if end - start < self.min_speech_s:
                continue
            start, end = max(0.0, start - self.speech_pad_s), min(duration, end + self.speech_pad_s)
            if segments and start <= segments[-1].end:
                start = segments.pop().start
            segments.append(SpeechSegment(float(start), float(end)))
        return segments


# --- FireRedVAD -------------------------------------------------------------------------------------------------------

# The FireRedVAD model used where none is named (`vad="firered"`, the CLI's `--vad firered`): a Hub id or a directory.
FIREREDVAD_MODEL_ENV_VAR = "FIREREDASR_HF_VAD_MODEL"
DEFAULT_FIREREDVAD_MODEL = "FireRedTeam/FireRedVAD"
# The feature extractor works on int16-scale samples.
INT16_SCALE = 32768.0
# Frames featurized at once (30 s), which bounds the front end's memory on long recordings.
FEATURE_BLOCK_FRAMES = 3000


def default_fireredvad_model() -> str:
    """`$FIREREDASR_HF_VAD_MODEL` if set, else the Hub repository FireRedTeam/FireRedVAD."""
    return os.environ.get(FIREREDVAD_MODEL_ENV_VAR) or DEFAULT_FIREREDVAD_MODEL


def load_fireredvad_model(
    name_or_path: str | os.PathLike | None = None,
    kind: str = "vad",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: bool | str | None = None,
):
    """
    One released FireRedVAD model (`kind`: "vad", "stream-vad" or "aed") as `(model, feature_extractor)`.

    `name_or_path` (default: `default_fireredvad_model()`) is a converted model directory, a converted copy of the
    whole repository (with `VAD/`, `Stream-VAD/`, `AED/`), an original directory (the Hub repository's layout with
    `model.pth.tar` + `cmvn.ark` per model, or the ONNX exports with `cmvn.ark`; read in memory, in milliseconds), or
    a Hub repo id (downloaded, converted once and cached like the FireRedASR models, see `fireredasr_hf.hub`).
    """
    from .configuration_fireredvad import KIND_DIRS
    from .feature_extraction_fireredasr import FireRedAsrFeatureExtractor
    from .modeling_fireredvad import FireRedVadForAudioFrameClassification

    name = str(name_or_path if name_or_path is not None else default_fireredvad_model())
    path = Path(name).expanduser()
    if kind not in KIND_DIRS:
        raise ValueError(f"kind must be one of {', '.join(KIND_DIRS)}, got {kind!r}")
    for directory in (path, path / KIND_DIRS[kind]):
        if _is_converted_fireredvad(directory):
            model = FireRedVadForAudioFrameClassification.from_pretrained(directory).eval()
            if model.config.kind != kind:
                raise ValueError(f"{directory} holds a FireRedVAD {model.config.kind} model, not a {kind} model.")
            return model, FireRedAsrFeatureExtractor.from_pretrained(directory)
    try:
        # Original files and Hub ids need the package's conversion code (not shipped as remote code with a model).
        hub = importlib.import_module(".hub", __package__)
    except ImportError:
        raise ValueError(
            f"{name} is not a converted FireRedVAD directory; reading original FireRedVAD files or a Hub repository "
            "needs the fireredasr-hf package (pip install fireredasr-hf). Without it, name a converted FireRedVAD "
            f"directory (as `fireredasr-hf convert` writes it) in {FIREREDVAD_MODEL_ENV_VAR} or "
            "FireRedVad.from_pretrained(DIR), or choose another detector (vad='silero')."
        ) from None
    return hub.load_vad_model(name, kind, revision=revision, cache_dir=cache_dir, token=token)


def save_vad_model(model, feature_extractor, output_dir: str | os.PathLike) -> None:
    """A FireRedVAD model directory (weights, config, CMVN), loadable with or without this package (remote code)."""
    from transformers.dynamic_module_utils import custom_object_save

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.config.register_for_auto_class()
    model.register_for_auto_class("AutoModelForAudioFrameClassification")
    feature_extractor.register_for_auto_class()
    custom_object_save(model, output_dir, config=model.config)
    custom_object_save(feature_extractor, output_dir)
    model.save_pretrained(output_dir)
    feature_extractor.save_pretrained(output_dir)


def _is_converted_fireredvad(directory: Path) -> bool:
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type") == "fireredvad"
    except (OSError, ValueError, AttributeError):
        return False


class FireRedFrameModel:
    """A FireRedVAD model with its front end: per-frame probabilities (one per 10 ms) for audio at any rate."""

    kind = "vad"

    def __init__(self, model, feature_extractor, chunk_max_frame: int = 30000):
        if model.config.kind != self.kind:
            raise ValueError(
                f"{type(self).__name__} needs a FireRedVAD {self.kind} model, got a {model.config.kind} one"
            )
        if isinstance(chunk_max_frame, bool) or not isinstance(chunk_max_frame, int) or chunk_max_frame < 1:
            raise ValueError(f"chunk_max_frame must be a positive number of frames, got {chunk_max_frame!r}")
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.chunk_max_frame = chunk_max_frame

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: bool | str | None = None,
        device=None,
        **settings,
    ):
        """Loads the model (see `load_fireredvad_model` for the accepted names; default: `$FIREREDASR_HF_VAD_MODEL`,
        else FireRedTeam/FireRedVAD; on the CPU unless `device` says otherwise) with post-processing `settings` (the
        release's names and defaults)."""
        model, feature_extractor = load_fireredvad_model(path_or_hub_id, cls.kind, revision, cache_dir, token)
        return cls(model if device is None else model.to(device), feature_extractor, **settings)

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Saves the model and its front end (CMVN) as a model directory that `from_pretrained` reads."""
        save_vad_model(self.model, self.feature_extractor, Path(save_directory))

    def features(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """fbank + CMVN frames `(num_frames, num_mel_bins)` of float audio in [-1, 1]; none for < 25 ms of audio."""
        extractor = self.feature_extractor
        audio = check_audio(audio, sampling_rate)
        if sampling_rate != extractor.sampling_rate:
            audio = resample(audio, sampling_rate, extractor.sampling_rate)
        hop, window = extractor.hop_length, extractor.frame_length
        num_frames = 0 if len(audio) < window else 1 + (len(audio) - window) // hop
        blocks = [np.zeros((0, extractor.feature_size), np.float32)]
        for first in range(0, num_frames, FEATURE_BLOCK_FRAMES):
            last = min(first + FEATURE_BLOCK_FRAMES, num_frames)
            samples = audio[first * hop : (last - 1) * hop + window]
            blocks.append(self._featurize(samples))
        return np.concatenate(blocks)

    def _featurize(self, samples: np.ndarray) -> np.ndarray:
        extractor = self.feature_extractor
        # As the feature extractor scales float audio (float64 product, then float32).
        waveform = (samples.astype(np.float64) * INT16_SCALE).astype(np.float32)
        features = extractor._extract_fbank_features(waveform)
        return extractor._apply_cmvn(features) if extractor.cmvn_means is not None else features

    def frame_probabilities(self, features: np.ndarray) -> np.ndarray:
        """`(num_frames, num_labels)` probabilities. As in the release, inputs longer than `chunk_max_frame` frames
        (300 s) are run in independent chunks of that many frames."""
        import torch

        outputs = [np.zeros((0, self.model.config.num_labels), np.float32)]
        with torch.inference_mode():
            for first in range(0, len(features), self.chunk_max_frame):
                chunk = torch.from_numpy(np.ascontiguousarray(features[first : first + self.chunk_max_frame]))
                logits = self.model(self._to_model(chunk)).logits[0]
                outputs.append(torch.sigmoid(logits.float()).cpu().numpy())
        return np.concatenate(outputs)

    def _to_model(self, features):
        """A batch of one, on the model's device and in its dtype."""
        return features.unsqueeze(0).to(device=self.model.device, dtype=self.model.dtype)


class FireRedVad(FireRedFrameModel, VoiceActivityDetector):
    """
    FireRedVAD (non-streaming): the released DFSMN voice activity detector with the release's post-processing.

        vad = FireRedVad.from_pretrained("FireRedTeam/FireRedVAD")   # or a local directory, see below
        probabilities = vad.speech_probabilities(audio, sampling_rate)  # one per 10 ms frame
        segments = vad.detect(audio, sampling_rate)                     # [SpeechSegment(start, end), ...]

    `from_pretrained` takes a Hub repo id, a directory with the released ONNX files and `cmvn.ark`, an original
    `model.pth.tar` directory (`VAD/` or the repository root) or a directory saved by `save_pretrained`.
    Audio is float in [-1, 1] at any rate (resampled to 16 kHz). Detection gives the same segments as the
    release's `FireRedVad.detect` (PyPI fireredvad 0.0.2) for the same probabilities.

    Args:
        postprocessing: the release's settings, with its README defaults (in 10 ms frames): smooth_window_size (5),
            speech_threshold (0.4), min_speech_frame (20), max_speech_frame (2000, 20 s), min_silence_frame (20),
            merge_silence_frame (0), extend_speech_frame (0); see `FireRedVadPostprocessor`.
        chunk_max_frame (`int`, defaults to 30000): longer inputs run in independent chunks, as in the release.
        event_detector (`FireRedAudioEventDetector`, *optional*): tags each segment with the audio events (speech,
            singing, music) covering at least half of it (`TaggedSpeechSegment.events`). `from_pretrained` loads one
            from the same source when `tag_events` or `skip_events` is set.
        tag_events (`bool`, defaults to False): tag segments with their events.
        skip_events (`tuple[str]`, defaults to ()): drop segments tagged with one of these events (e.g.
            `("music",)`) unless they are also tagged as speech (speech over music is kept).
    """

    def __init__(
        self,
        model,
        feature_extractor,
        *,
        chunk_max_frame: int = 30000,
        event_detector: "FireRedAudioEventDetector | None" = None,
        tag_events: bool = False,
        skip_events: tuple[str, ...] = (),
        **postprocessing,
    ):
        super().__init__(model, feature_extractor, chunk_max_frame)
        self.postprocessor = FireRedVadPostprocessor(**postprocessing)
        skip_events = tuple(skip_events)
        unknown = sorted(set(skip_events) - set(FireRedAudioEventDetector.EVENTS))
        if unknown:
            raise ValueError(f"skip_events must name events of {FireRedAudioEventDetector.EVENTS}, got {unknown}")
        if (tag_events or skip_events) and event_detector is None:
            raise ValueError("tag_events and skip_events need an event_detector (a FireRedAudioEventDetector)")
        self.event_detector = event_detector
        self.tag_events = tag_events
        self.skip_events = skip_events

    @classmethod
    def from_pretrained(
        cls, path_or_hub_id=None, *, revision=None, cache_dir=None, token=None, device=None, **settings
    ):
        """Loads FireRedVAD (and, for `tag_events`/`skip_events`, the audio event model from the same source)."""
        source = {"revision": revision, "cache_dir": cache_dir, "token": token, "device": device}
        if (settings.get("tag_events") or settings.get("skip_events")) and settings.get("event_detector") is None:
            settings["event_detector"] = FireRedAudioEventDetector.from_pretrained(path_or_hub_id, **source)
        return super().from_pretrained(path_or_hub_id, **source, **settings)

    def speech_probabilities(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """The model's speech probability of every 10 ms frame (before smoothing), float32 `(num_frames,)`."""
        return self.frame_probabilities(self.features(audio, sampling_rate))[:, 0]

    def detect(self, audio: np.ndarray, sampling_rate: int) -> list[SpeechSegment]:
        """The speech segments after the release's post-processing (times rounded to the millisecond)."""
        audio = check_audio(audio, sampling_rate)
        duration = len(audio) / sampling_rate
        probabilities = self.speech_probabilities(audio, sampling_rate)
        segments = [SpeechSegment(start, end) for start, end in self.postprocessor(probabilities, duration)]
        if self.event_detector is None or not (self.tag_events or self.skip_events) or not segments:
            return segments
        events = self.event_detector.detect(audio, sampling_rate)
        tagged = []
        for segment in segments:
            found = tuple(event for event in events if _covers(events[event], segment))
            tagged.append(TaggedSpeechSegment(segment.start, segment.end, found))
        kept = [s for s in tagged if "speech" in s.events or not set(s.events) & set(self.skip_events)]
        return kept if self.tag_events else [SpeechSegment(s.start, s.end) for s in kept]


def _covers(event_segments: list[SpeechSegment], segment: SpeechSegment) -> bool:
    """Whether `event_segments` cover at least half of `segment`."""
    overlap = sum(max(0.0, min(e.end, segment.end) - max(e.start, segment.start)) for e in event_segments)
    return segment.duration > 0 and overlap >= segment.duration / 2


class FireRedAudioEventDetector(FireRedFrameModel):
    """
    The FireRedVAD audio event model: per-frame probabilities of speech, singing and music, and their segments after
    the release's post-processing (one `FireRedVadPostprocessor` per event, the release's `FireRedAed`).

        events = FireRedAudioEventDetector.from_pretrained("FireRedTeam/FireRedVAD").detect(audio, sampling_rate)
        events["music"]   # [SpeechSegment(start, end), ...]

    Args (the release's README defaults): smooth_window_size (5), speech_threshold (0.4), singing_threshold (0.5),
        music_threshold (0.5), min_event_frame (20), max_event_frame (2000), min_silence_frame (20),
        merge_silence_frame (0), extend_speech_frame (0), chunk_max_frame (30000).
    """

    kind = "aed"
    EVENTS = ("speech", "singing", "music")

    def __init__(
        self,
        model,
        feature_extractor,
        *,
        smooth_window_size: int = 5,
        speech_threshold: float = 0.4,
        singing_threshold: float = 0.5,
        music_threshold: float = 0.5,
        min_event_frame: int = 20,
        max_event_frame: int = 2000,
        min_silence_frame: int = 20,
        merge_silence_frame: int = 0,
        extend_speech_frame: int = 0,
        chunk_max_frame: int = 30000,
    ):
        super().__init__(model, feature_extractor, chunk_max_frame)
        self.thresholds = {"speech": speech_threshold, "singing": singing_threshold, "music": music_threshold}
        self.postprocessors = {
            event: FireRedVadPostprocessor(
                smooth_window_size=smooth_window_size,
                speech_threshold=threshold,
                min_speech_frame=min_event_frame,
                max_speech_frame=max_event_frame,
                min_silence_frame=min_silence_frame,
                merge_silence_frame=merge_silence_frame,
                extend_speech_frame=extend_speech_frame,
            )
            for event, threshold in self.thresholds.items()
        }

    def event_probabilities(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """Probabilities of speech, singing and music per 10 ms frame, float32 `(num_frames, 3)`."""
        return self.frame_probabilities(self.features(audio, sampling_rate))

    def detect(self, audio: np.ndarray, sampling_rate: int) -> dict[str, list[SpeechSegment]]:
        """`{"speech": [...], "singing": [...], "music": [...]}` segments after the release's post-processing."""
        audio = check_audio(audio, sampling_rate)
        probabilities = self.event_probabilities(audio, sampling_rate)
        return self.segments(probabilities, len(audio) / sampling_rate)

    def segments(self, probabilities: np.ndarray, duration: float | None = None) -> dict[str, list[SpeechSegment]]:
        return {
            event: [SpeechSegment(s, e) for s, e in self.postprocessors[event](probabilities[:, index], duration)]
            for index, event in enumerate(self.EVENTS)
        }

    def ratios(self, probabilities: np.ndarray) -> dict[str, float]:
        """Share of frames whose raw probability reaches each event's threshold (the release's `event2ratio`)."""
        return {event: event_ratio(probabilities[:, i], self.thresholds[event]) for i, event in enumerate(self.EVENTS)}


class FireRedStreamVad(FireRedFrameModel, VoiceActivityDetector):
    """
    FireRedVAD's streaming model and post-processing (the release's `FireRedStreamVad`), for audio that arrives in
    pieces of any length:

        vad = FireRedStreamVad.from_pretrained("FireRedTeam/FireRedVAD")
        for piece in microphone:                      # float32 in [-1, 1] at 16 kHz, e.g. 10 ms or 1 s at a time
            for frame in vad.accept_waveform(piece):  # one StreamVadFrameResult per completed 10 ms frame
                if frame.is_speech_start: ...
        vad.reset()                                   # before the next stream

    The samples of a frame that is not complete yet wait for the next piece, and the model's memory is carried
    over, so any split of a recording gives the frames, probabilities and decisions of the whole recording (up to
    float rounding of the probabilities, ~1e-7). `detect(audio, sampling_rate)` runs a whole recording at once (the
    release's `detect_full`).

    Args:
        postprocessing: the release's settings, with its README defaults (in 10 ms frames): smooth_window_size (5),
            speech_threshold (0.4), pad_start_frame (5), min_speech_frame (8), max_speech_frame (2000),
            min_silence_frame (20); see `FireRedStreamVadPostprocessor`.
        chunk_max_frame (`int`, defaults to 30000): for `detect`, as in the release.
    """

    kind = "stream-vad"

    def __init__(self, model, feature_extractor, *, chunk_max_frame: int = 30000, **postprocessing):
        super().__init__(model, feature_extractor, chunk_max_frame)
        self.settings = postprocessing
        self.postprocessor = FireRedStreamVadPostprocessor(**postprocessing)
        self.reset()

    def reset(self) -> None:
        """Forgets the current stream (buffered samples, model memory, post-processing state)."""
        self._pending = np.zeros(0, np.float32)
        self._memory_cache = None
        self.postprocessor.reset()

    def accept_waveform(self, samples: np.ndarray, sampling_rate: int = 16000) -> list[StreamVadFrameResult]:
        """Feeds the next piece of the stream (float in [-1, 1], 16 kHz); returns the results of the frames it
        completes (none while less than a 25 ms frame has arrived)."""
        import torch

        if sampling_rate != self.feature_extractor.sampling_rate:
            raise ValueError(
                f"streaming takes audio at {self.feature_extractor.sampling_rate} Hz, got {sampling_rate} Hz "
                "(resample the stream first)"
            )
        samples = check_audio(samples, sampling_rate)
        pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        hop, window = self.feature_extractor.hop_length, self.feature_extractor.frame_length
        if len(pending) < window:
            self._pending = pending.copy()
            return []
        num_frames = 1 + (len(pending) - window) // hop
        features = self._featurize(pending[: (num_frames - 1) * hop + window])
        self._pending = pending[num_frames * hop :].copy()
        with torch.inference_mode():
            outputs = self.model(
                self._to_model(torch.from_numpy(features)), memory_cache=self._memory_cache, use_cache=True
            )
        self._memory_cache = outputs.memory_cache
        probabilities = torch.sigmoid(outputs.logits[0, :, 0].float()).cpu().tolist()
        return [self.postprocessor.process(probability) for probability in probabilities]

    def speech_probabilities(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """The streaming model's speech probability of every 10 ms frame of a whole recording, `(num_frames,)`."""
        return self.frame_probabilities(self.features(audio, sampling_rate))[:, 0]

    def detect(self, audio: np.ndarray, sampling_rate: int) -> list[SpeechSegment]:
        """Speech segments of a whole recording (the release's `detect_full`); the stream state is not touched."""
        postprocessor = FireRedStreamVadPostprocessor(**self.settings)
        results = [postprocessor.process(p) for p in self.speech_probabilities(audio, sampling_rate).tolist()]
        return [SpeechSegment(start, end) for start, end in stream_results_to_segments(results)] if results else []


def frame_energy_db(audio: np.ndarray, frame_length: int) -> np.ndarray:
    """Mean-square energy in dB of consecutive non-overlapping frames; a short last frame is kept.

    Works on views of `audio`, so memory stays at one float per frame whatever the recording's length.
    """
    num_full = len(audio) // frame_length
    frames = audio[: num_full * frame_length].reshape(num_full, frame_length)
    energy = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frame_length
    tail = audio[num_full * frame_length :]
    if tail.size:
        energy = np.append(energy, np.dot(tail.astype(np.float64), tail) / tail.size)
    # Full-scale square wave = 0 dB; the floor keeps digital silence finite (-200 dB).
    return 10.0 * np.log10(np.maximum(energy, 1e-20))


def split_into_segments(
    segments: list[SpeechSegment],
    max_segment_s: float = 30.0,
    min_segment_s: float = 1.0,
    merge_gap_s: float = 0.5,
    *,
    audio: np.ndarray | None = None,
    sampling_rate: int | None = None,
) -> list[SpeechSegment]:
    """Turns VAD speech regions into the chunks a model transcribes one at a time.

    1. Regions longer than `max_segment_s` are cut: each cut lies between `max_segment_s / 2` and
       `max_segment_s` after the previous one, at the quietest 100 ms of audio there when `audio` is given,
       otherwise the region is cut into equal parts. No piece is shorter than `min_segment_s`.
    2. Neighbouring pieces separated by at most `merge_gap_s` of non-speech are joined while the joined chunk
       stays within `max_segment_s` (the gap is transcribed with them).
    3. Chunks still shorter than `min_segment_s` are widened into the surrounding non-speech (never over a
       neighbour, never outside the recording) to give the model some context.

    Every returned chunk is at most `max_segment_s` long. The defaults (30 s) suit both FireRedASR-AED
    (trained on <= 60 s) and FireRedASR-LLM (<= 30 s).
    """
    _check_durations(max_segment_s=max_segment_s, min_segment_s=min_segment_s, merge_gap_s=merge_gap_s)
    if max_segment_s <= 0:
        raise ValueError(f"max_segment_s must be positive, got {max_segment_s}")
    if min_segment_s >= max_segment_s / 2:
        raise ValueError(f"min_segment_s ({min_segment_s}) must be below half of max_segment_s ({max_segment_s})")
    if (audio is None) != (sampling_rate is None):
        raise ValueError("pass audio and sampling_rate together (or neither)")
    duration = None
    if audio is not None:
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"audio must be mono of shape (num_samples,), got shape {audio.shape}")
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive integer number of Hz, got {sampling_rate!r}")
        duration = len(audio) / sampling_rate

    regions = _union(segments, duration)
    pieces = []
    for region in regions:
        if audio is None:
            pieces.extend(_split_evenly(region, max_segment_s))
        else:
            pieces.extend(_split_at_quiet_points(region, max_segment_s, min_segment_s, audio, sampling_rate))

    chunks: list[SpeechSegment] = []
    for piece in pieces:
        if chunks and piece.start - chunks[-1].end <= merge_gap_s and piece.end - chunks[-1].start <= max_segment_s:
            chunks[-1] = SpeechSegment(chunks[-1].start, piece.end)
        else:
            chunks.append(piece)

    upper_limit = duration if duration is not None else (chunks[-1].end if chunks else 0.0)
    for i, chunk in enumerate(chunks):
        if chunk.duration >= min_segment_s:
            continue
        left_limit = chunks[i - 1].end if i > 0 else 0.0
        right_limit = chunks[i + 1].start if i + 1 < len(chunks) else upper_limit
        missing = min_segment_s - chunk.duration
        # Half on each side; what one side lacks goes to the other.
        grow_left = min(chunk.start - left_limit, max(missing / 2, missing - (right_limit - chunk.end)))
        grow_right = min(right_limit - chunk.end, missing - grow_left)
        start, end = chunk.start - grow_left, chunk.end + grow_right
        chunks[i] = SpeechSegment(start, end)
    return chunks


def _union(segments: list[SpeechSegment], duration: float | None) -> list[SpeechSegment]:
    """Sorts the segments and merges overlapping ones; checks that they lie inside the recording."""
    segments = list(segments)
    for segment in segments:
        if not isinstance(segment, SpeechSegment):
            raise TypeError(f"expected SpeechSegment items, got {type(segment).__name__}")
    merged: list[SpeechSegment] = []
    for segment in sorted(segments, key=lambda s: s.start):
        end = segment.end
        if duration is not None:
            # VADs round their timestamps; more than 10 ms past the end is a wrong input, not rounding.
            if segment.start >= duration or end > duration + 0.01:
                raise ValueError(f"{segment} lies outside the recording of {duration:.3f} s")
            end = min(end, duration)
        if merged and segment.start <= merged[-1].end:
            merged[-1] = SpeechSegment(merged[-1].start, max(merged[-1].end, end))
        else:
            merged.append(SpeechSegment(segment.start, end))
    return [segment for segment in merged if segment.duration > 0]


def _split_evenly(region: SpeechSegment, max_segment_s: float) -> list[SpeechSegment]:
    count = math.ceil(region.duration / max_segment_s)
    bounds = [region.start + region.duration * k / count for k in range(count)] + [region.end]
    return [SpeechSegment(start, end) for start, end in itertools.pairwise(bounds)]


def _split_at_quiet_points(
    region: SpeechSegment, max_segment_s: float, min_segment_s: float, audio: np.ndarray, sampling_rate: int
) -> list[SpeechSegment]:
    window = max(1, round(0.1 * sampling_rate))
    pieces = []
    start = region.start
    while region.end - start > max_segment_s:
        first = round((start + max_segment_s / 2) * sampling_rate)
        # Rounded down: a cut rounded up to the next sample would make the piece longer than max_segment_s.
        last = math.floor(min(start + max_segment_s, region.end - min_segment_s) * sampling_rate)
        # Energy of every 100 ms window centred in [first, last], from a running sum over that stretch only.
        lo, hi = max(0, first - window // 2), min(len(audio), last + window - window // 2)
        squares = np.square(audio[lo:hi], dtype=np.float64)
        running = np.concatenate(([0.0], np.cumsum(squares)))
        energy = running[window:] - running[:-window]
        if energy.size == 0:
            cut = (first + last) // 2
        else:
            # The last quietest window, so that pieces come out as long as allowed.
            quietest = energy.size - 1 - int(np.argmin(energy[::-1]))
            cut = min(max(lo + quietest + window // 2, first), last)
        pieces.append(SpeechSegment(start, cut / sampling_rate))
        start = cut / sampling_rate
    pieces.append(SpeechSegment(start, region.end))
    return pieces
