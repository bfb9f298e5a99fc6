"""Voice activity detection (VAD) and the cutting of long recordings into pieces a FireRedASR model can take.

FireRedASR-AED was trained on utterances of at most 60 s and FireRedASR-LLM on at most 30 s; nothing in the
models chunks longer input. Long-form transcription therefore runs a `VoiceActivityDetector` over the
recording, then `split_into_segments` packs the speech regions into chunks of at most `max_segment_s`.

Detectors:

- `SileroVad`: the Silero VAD model shipped inside the `silero-vad` wheel (no download; works offline).
- `EnergyVad`: a frame-energy threshold with no extra dependency, for clean recordings and tests.

Any other VAD plugs in by subclassing `VoiceActivityDetector` and implementing `detect`, which receives a
validated float32 mono array in [-1, 1] and returns `SpeechSegment`s in seconds. For example FireRedVAD
(`pip install fireredvad`; weights from the FireRedTeam/FireRedVAD model repository, directory `VAD/` with
`model.pth.tar` and `cmvn.ark`). Its `detect` takes 16 kHz audio on the int16 scale, as `(samples, rate)`:

    from fireredvad import FireRedVad, FireRedVadConfig

    class FireRedVadDetector(VoiceActivityDetector):
        def __init__(self, model_dir, **config):  # e.g. speech_threshold=0.4, min_silence_frame=20
            self.vad = FireRedVad.from_pretrained(model_dir, FireRedVadConfig(**config))

        def detect(self, audio, sampling_rate):
            audio = resample(audio, sampling_rate, 16000)
            result, _ = self.vad.detect((audio * 32768.0, 16000))
            return [SpeechSegment(start, end) for start, end in result["timestamps"]]
"""

import abc
import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .audio import resample


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


class VoiceActivityDetector(abc.ABC):
    """Finds the speech in a recording. Call it with a mono array and its sampling rate."""

    def __call__(self, audio: np.ndarray, sampling_rate: int) -> list[SpeechSegment]:
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"VAD expects mono audio of shape (num_samples,), got shape {audio.shape}; use to_mono")
        if not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(
                f"VAD expects float audio in [-1, 1], got dtype {audio.dtype}; scale integer PCM first "
                "(e.g. int16 / 32768)"
            )
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive integer number of Hz, got {sampling_rate!r}")
        if audio.size == 0:
            return []
        segments = self.detect(audio.astype(np.float32, copy=False), int(sampling_rate))
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
            raise ImportError("SileroVad needs the silero-vad package: pip install silero-vad") from error
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
