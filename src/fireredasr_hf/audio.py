"""Reading audio files into the float32 mono arrays the FireRedASR feature extractor expects.

Formats libsndfile can read (wav, flac, ogg/opus, mp3, aiff, ...) are decoded with `soundfile`; anything else
(m4a, aac, wma, video containers, ...) is decoded by the `ffmpeg` binary. Resampling always goes through
`resample` (soxr) for the tools outside the model (the feature extractor, which travels as remote code, resamples
its own input with soxr too).

`AudioLimits` bounds the duration and sampling rate of any input before it is decoded or resampled, so that a small
file cannot ask for gigabytes (a 400 kB wav whose header claims 1 Hz would need 12.8 GB at 16 kHz).
"""

import importlib
import io
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

# Extensions picked up when a directory is scanned for audio (lower case, with the dot).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".aiff", ".aif", ".webm", ".mka"}
)


class AudioDecodeError(ValueError):
    """An audio file could not be decoded (corrupt, empty, or a format no available decoder reads)."""


class AudioLimitError(ValueError):
    """Audio outside `AudioLimits` (too long, or at an implausible sampling rate), refused before it is decoded."""


# Environment variables that change the default limits (e.g. for the command line).
LIMIT_VARIABLES = {
    "max_duration_s": "FIREREDASR_MAX_AUDIO_SECONDS",
    "min_sampling_rate": "FIREREDASR_MIN_SAMPLING_RATE",
    "max_sampling_rate": "FIREREDASR_MAX_SAMPLING_RATE",
}


@dataclass(frozen=True)
class AudioLimits:
    """
    What audio is accepted, checked before anything is decoded or resampled (from a file's header, an array's
    length): at most `max_duration_s` seconds (default 6 hours; the whole recording is held in memory, 230 MB per hour
    at 16 kHz) at a sampling rate between `min_sampling_rate` and `max_sampling_rate` Hz (default 4 kHz to 192 kHz).

    `AudioLimits.from_env()` (what the readers, the feature extractor and the pipeline use) takes the defaults from
    FIREREDASR_MAX_AUDIO_SECONDS, FIREREDASR_MIN_SAMPLING_RATE and FIREREDASR_MAX_SAMPLING_RATE when they are set.
    """

    max_duration_s: float = 6 * 3600.0
    min_sampling_rate: float = 4000
    max_sampling_rate: float = 192_000

    @classmethod
    def from_env(cls) -> "AudioLimits":
        values = {}
        for name, variable in LIMIT_VARIABLES.items():
            text = os.environ.get(variable)
            if text is None or not text.strip():
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{variable} must be a positive number, got {text!r}")
            values[name] = value
        return cls(**values)

    def check(self, num_samples: int, sampling_rate: float, source: str = "the audio") -> None:
        """Refuse `num_samples` samples at `sampling_rate` Hz outside the limits (`source` names the input)."""
        if not self.min_sampling_rate <= sampling_rate <= self.max_sampling_rate:
            raise AudioLimitError(
                f"{source}: a sampling rate of {sampling_rate:g} Hz is outside the accepted {self.min_sampling_rate:g} "
                f"to {self.max_sampling_rate:g} Hz (a damaged header, or the wrong rate passed); set "
                f"{LIMIT_VARIABLES['min_sampling_rate']} / {LIMIT_VARIABLES['max_sampling_rate']} to change the limits"
            )
        duration = num_samples / sampling_rate
        if duration > self.max_duration_s:
            raise AudioLimitError(
                f"{source}: {duration / 3600:.2f} hours of audio is longer than the limit of "
                f"{self.max_duration_s / 3600:g} hours; split the recording, or raise the limit with "
                f"{LIMIT_VARIABLES['max_duration_s']}"
            )


def to_mono(audio: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """Averages the channels of `audio` into a float32 array of shape (num_samples,).

    `channel_axis` is -1 for (num_samples, num_channels) arrays (soundfile's layout) and 0 for
    (num_channels, num_samples) arrays (torchaudio's layout). A 1-D array is returned as float32. Values are
    kept as they are: integer PCM is not rescaled.
    """
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio.astype(np.float32, copy=False)
    if audio.ndim != 2:
        raise ValueError(f"expected audio of shape (num_samples,) or with one channel axis, got shape {audio.shape}")
    if channel_axis not in (-2, -1, 0, 1):
        raise ValueError(f"channel_axis must be 0 or -1 for 2-D audio, got {channel_axis}")
    num_channels = audio.shape[channel_axis]
    num_samples = audio.shape[1 - channel_axis % 2]
    if num_channels > num_samples:
        # More channels than samples almost certainly means the layout was read the wrong way round.
        raise ValueError(
            f"audio of shape {audio.shape} has {num_channels} channels along axis {channel_axis} but only "
            f"{num_samples} samples; pass channel_axis={1 - channel_axis % 2} if the other axis holds the channels"
        )
    return audio.mean(axis=channel_axis, dtype=np.float32)


def _import_optional(name: str):
    """soundfile and soxr are imported where used, and inside `try` so that transformers does not require them when
    this module travels as remote code (with the speech-recognition pipeline)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f"reading or resampling audio needs the {name} package: pip install {name}") from error


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resamples `audio` (samples along the first axis) from `orig_sr` to `target_sr` Hz with soxr, as float32."""
    for name, rate in (("orig_sr", orig_sr), ("target_sr", target_sr)):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise ValueError(f"{name} must be a positive integer number of Hz, got {rate!r}")
    audio = np.asarray(audio, dtype=np.float32)
    if orig_sr == target_sr:
        return audio
    soxr = _import_optional("soxr")
    return soxr.resample(audio, int(orig_sr), int(target_sr)).astype(np.float32, copy=False)


def _read_with_ffmpeg(path: str, max_duration_s: float) -> tuple[np.ndarray, int]:
    """Decodes the first audio stream of `path` with the ffmpeg binary, at its own rate and channel count; at most
    `max_duration_s` (and a second more, to tell a longer input)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError("the ffmpeg binary is not on PATH (install it, e.g. `apt-get install ffmpeg`)")
    # A WAV stream keeps the rate and channel count with the samples; soundfile reads it from memory.
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-t", f"{max_duration_s + 1:.3f}"]
    command += ["-f", "wav", "-c:a", "pcm_f32le", "-"]
    completed = subprocess.run(command, capture_output=True, check=False)
    if completed.returncode != 0 or not completed.stdout:
        message = completed.stderr.decode(errors="replace").strip() or f"exit status {completed.returncode}"
        raise RuntimeError(f"ffmpeg failed: {message}")
    soundfile = _import_optional("soundfile")
    audio, rate = soundfile.read(io.BytesIO(completed.stdout), dtype="float32", always_2d=True)
    return audio, rate


def _read_bytes_with_ffmpeg(data: bytes, max_duration_s: float) -> tuple[np.ndarray, int]:
    # Through a file rather than a pipe: MP4/M4A files that keep their index at the end need to seek.
    with tempfile.NamedTemporaryFile(suffix=".audio") as file:
        file.write(data)
        file.flush()
        try:
            return _read_with_ffmpeg(file.name, max_duration_s)
        except RuntimeError as error:  # the temporary file's name means nothing to the user
            raise RuntimeError(str(error).replace(f"{file.name}: ", "")) from None


def _decode(source, name: str, sampling_rate: int, read_with_ffmpeg, limits: AudioLimits | None) -> np.ndarray:
    """soundfile first, ffmpeg for what libsndfile does not read; then mono, finite, at `sampling_rate`. The duration
    and rate are checked against `limits` (default `AudioLimits.from_env()`) before decoding (from the header) or, for
    ffmpeg, which decodes at most the limit, right after."""
    limits = limits or AudioLimits.from_env()
    soundfile = _import_optional("soundfile")
    try:
        info = soundfile.info(source)
        limits.check(info.frames, info.samplerate, name)
        if hasattr(source, "seek"):
            source.seek(0)
        audio, file_sr = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as soundfile_error:
        if not isinstance(source, str):  # the message would name the in-memory file object
            soundfile_error = getattr(soundfile_error, "error_string", soundfile_error)
        try:
            audio, file_sr = read_with_ffmpeg(limits.max_duration_s)
        except (FileNotFoundError, RuntimeError) as ffmpeg_error:
            raise AudioDecodeError(
                f"cannot decode audio {name}: soundfile: {soundfile_error}; ffmpeg: {ffmpeg_error}"
            ) from None
        limits.check(audio.shape[0], file_sr, name)
    if audio.shape[0] == 0:
        raise AudioDecodeError(f"audio {name} contains no samples")
    audio = to_mono(audio)
    if not np.isfinite(audio).all():
        raise AudioDecodeError(f"audio {name} contains NaN or infinite samples")
    return resample(audio, file_sr, sampling_rate)


def load_audio(path: str | os.PathLike, sampling_rate: int = 16000, limits: AudioLimits | None = None) -> np.ndarray:
    """Reads an audio file as a float32 mono array at `sampling_rate` Hz.

    Integer PCM is scaled to [-1, 1); files that store floats are returned as stored. Multi-channel audio is
    averaged into one channel. Raises `FileNotFoundError` for a missing file, `AudioLimitError` (a `ValueError`)
    naming the file when its duration or rate is outside `limits` (default: `AudioLimits.from_env()`, checked from
    the header before decoding), and `AudioDecodeError` (a `ValueError`) naming the file when it cannot be decoded
    or holds no samples.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file not found (or not a regular file): {path}")
    return _decode(path, f"file {path}", sampling_rate, lambda limit: _read_with_ffmpeg(path, limit), limits)


def load_audio_bytes(
    data: bytes, sampling_rate: int = 16000, name: str = "data", limits: AudioLimits | None = None
) -> np.ndarray:
    """Reads the bytes of an audio file (an upload, an object from remote storage) like `load_audio` reads a file;
    `name` says where they come from in error messages."""
    if not data:
        raise AudioDecodeError(f"audio {name} is empty")
    return _decode(io.BytesIO(data), name, sampling_rate, lambda limit: _read_bytes_with_ffmpeg(data, limit), limits)
