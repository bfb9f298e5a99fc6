"""Reading audio files into the float32 mono arrays the FireRedASR feature extractor expects.

Formats libsndfile can read (wav, flac, ogg/opus, mp3, aiff, ...) are decoded with `soundfile`; anything else
(m4a, aac, wma, video containers, ...) is decoded by the `ffmpeg` binary. Resampling always goes through
`resample` (soxr) for the tools outside the model (the feature extractor, which travels as remote code, resamples
its own input with soxr too).
"""

import importlib
import io
import os
import shutil
import subprocess
import tempfile

import numpy as np

# Extensions picked up when a directory is scanned for audio (lower case, with the dot).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".aiff", ".aif", ".webm", ".mka"}
)


class AudioDecodeError(ValueError):
    """An audio file could not be decoded (corrupt, empty, or a format no available decoder reads)."""


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


def _read_with_ffmpeg(path: str) -> tuple[np.ndarray, int]:
    """Decodes the first audio stream of `path` with the ffmpeg binary, at its own rate and channel count."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError("the ffmpeg binary is not on PATH (install it, e.g. `apt-get install ffmpeg`)")
    # A WAV stream keeps the rate and channel count with the samples; soundfile reads it from memory.
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-f", "wav", "-c:a", "pcm_f32le", "-"]
    completed = subprocess.run(command, capture_output=True, check=False)
    if completed.returncode != 0 or not completed.stdout:
        message = completed.stderr.decode(errors="replace").strip() or f"exit status {completed.returncode}"
        raise RuntimeError(f"ffmpeg failed: {message}")
    soundfile = _import_optional("soundfile")
    audio, rate = soundfile.read(io.BytesIO(completed.stdout), dtype="float32", always_2d=True)
    return audio, rate


def _read_bytes_with_ffmpeg(data: bytes) -> tuple[np.ndarray, int]:
    # Through a file rather than a pipe: MP4/M4A files that keep their index at the end need to seek.
    with tempfile.NamedTemporaryFile(suffix=".audio") as file:
        file.write(data)
        file.flush()
        try:
            return _read_with_ffmpeg(file.name)
        except RuntimeError as error:  # the temporary file's name means nothing to the user
            raise RuntimeError(str(error).replace(f"{file.name}: ", "")) from None


def _decode(source, name: str, sampling_rate: int, read_with_ffmpeg) -> np.ndarray:
    """soundfile first, ffmpeg for what libsndfile does not read; then mono, finite, at `sampling_rate`."""
    soundfile = _import_optional("soundfile")
    try:
        audio, file_sr = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as soundfile_error:
        if not isinstance(source, str):  # the message would name the in-memory file object
            soundfile_error = getattr(soundfile_error, "error_string", soundfile_error)
        try:
            audio, file_sr = read_with_ffmpeg()
        except (FileNotFoundError, RuntimeError) as ffmpeg_error:
            raise AudioDecodeError(
                f"cannot decode audio {name}: soundfile: {soundfile_error}; ffmpeg: {ffmpeg_error}"
            ) from None
    if audio.shape[0] == 0:
        raise AudioDecodeError(f"audio {name} contains no samples")
    audio = to_mono(audio)
    if not np.isfinite(audio).all():
        raise AudioDecodeError(f"audio {name} contains NaN or infinite samples")
    return resample(audio, file_sr, sampling_rate)


def load_audio(path: str | os.PathLike, sampling_rate: int = 16000) -> np.ndarray:
    """Reads an audio file as a float32 mono array at `sampling_rate` Hz.

    Integer PCM is scaled to [-1, 1); files that store floats are returned as stored. Multi-channel audio is
    averaged into one channel. Raises `FileNotFoundError` for a missing file and `AudioDecodeError` (a
    `ValueError`) naming the file when it cannot be decoded or holds no samples.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file not found (or not a regular file): {path}")
    return _decode(path, f"file {path}", sampling_rate, lambda: _read_with_ffmpeg(path))


def load_audio_bytes(data: bytes, sampling_rate: int = 16000, name: str = "data") -> np.ndarray:
    """Reads the bytes of an audio file (an upload, an object from remote storage) like `load_audio` reads a file;
    `name` says where they come from in error messages."""
    if not data:
        raise AudioDecodeError(f"audio {name} is empty")
    return _decode(io.BytesIO(data), name, sampling_rate, lambda: _read_bytes_with_ffmpeg(data))
