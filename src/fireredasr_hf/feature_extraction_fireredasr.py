# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Feature extractor class for FireRedASR: 80-dim Kaldi log-mel filter bank plus global CMVN."""

import os
import struct

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import is_torch_tensor, logging

from .audio import AudioLimits

logger = logging.get_logger(__name__)

# The original front end is kaldi-native-fbank with its default options and dither 0. These are fixed behaviour,
# not settings: the released models were trained on exactly these features.
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
PREEMPHASIS_COEFFICIENT = 0.97
POVEY_WINDOW_EXPONENT = 0.85
LOW_FREQUENCY = 20.0  # Hz; the high edge is the Nyquist frequency
MEL_BREAK_FREQUENCY = 700.0  # Kaldi mel scale: 1127 ln(1 + f / 700)
MEL_SCALE_FACTOR = 1127.0
LOG_FLOOR = np.finfo(np.float32).eps  # FLT_EPSILON, the floor of the mel energies before the log
INT16_SCALE = 32768.0  # the original reads 16-bit PCM without rescaling
VARIANCE_FLOOR = 1e-20  # CMVN variance floor of the original
# Largest accepted sample on the int16 scale (32-bit PCM's range; float samples up to 65536).
MAX_SAMPLE_MAGNITUDE = 2.0**31
# A 2-D array is one multi-channel recording; an axis of at most this many entries is its channel axis.
MAX_CHANNELS = 8


def _float32_log(values):
    # Correctly rounded float32 log (as C's logf, up to its last-bit rounding); numpy's float32 log is less exact.
    return np.log(np.asarray(values, dtype=np.float64)).astype(np.float32)


def _kaldi_mel_scale(frequencies):
    frequencies = np.asarray(frequencies, dtype=np.float32)
    return np.float32(MEL_SCALE_FACTOR) * _float32_log(np.float32(1.0) + frequencies / np.float32(MEL_BREAK_FREQUENCY))


def kaldi_mel_filters(num_mel_bins, sampling_rate, fft_length):
    """
    Kaldi's triangular mel filters (`MelBanks`) as a `(num_mel_bins, fft_length // 2)` float32 matrix.

    Computed in float32 like kaldi-native-fbank, so that the weights match it bit for bit (up to the last-bit
    rounding of the C library's `logf`). The Nyquist FFT bin is not used, as in Kaldi.
    """
    num_fft_bins = fft_length // 2
    fft_bin_width = np.float32(sampling_rate) / np.float32(fft_length)
    fft_bin_mels = _kaldi_mel_scale(fft_bin_width * np.arange(num_fft_bins, dtype=np.float32))

    mel_low = _kaldi_mel_scale(LOW_FREQUENCY)
    mel_high = _kaldi_mel_scale(0.5 * sampling_rate)
    mel_delta = (mel_high - mel_low) / np.float32(num_mel_bins + 1)
    bins = np.arange(num_mel_bins, dtype=np.float32)[:, None]
    left = mel_low + bins * mel_delta
    center = mel_low + (bins + np.float32(1)) * mel_delta
    right = mel_low + (bins + np.float32(2)) * mel_delta

    rising = (fft_bin_mels - left) / (center - left)
    falling = (right - fft_bin_mels) / (right - center)
    inside = (fft_bin_mels > left) & (fft_bin_mels < right)
    return np.where(inside, np.where(fft_bin_mels <= center, rising, falling), np.float32(0)).astype(np.float32)


def povey_window(frame_length):
    """Kaldi's "povey" window, `(0.5 - 0.5 cos(2 pi n / (N - 1))) ** 0.85`, computed in float64 and stored as float32."""
    step = 2 * np.pi / (frame_length - 1)
    return ((0.5 - 0.5 * np.cos(step * np.arange(frame_length))) ** POVEY_WINDOW_EXPONENT).astype(np.float32)


def read_kaldi_matrix(path):
    """
    Read one matrix from a Kaldi archive or matrix file, without kaldiio.

    Supported: binary double (`\\0BDM `) and binary float (`\\0BFM `) matrices and the text form `[ ... ]`, each with
    or without a leading `key ` (an archive holding one entry). Returns a float64 array.
    """
    with open(path, "rb") as file:
        data = file.read()

    def fail(problem):
        raise ValueError(f"{path} is not a Kaldi matrix file: {problem}")

    body = data
    if not body.startswith(b"\0B") and not body.lstrip().startswith(b"["):
        # `key ` then the matrix, as in a Kaldi archive
        key, separator, body = data.partition(b" ")
        if not separator or not key:
            fail("expected a binary matrix (`\\0B`), a text matrix (`[`) or `<key> ` before one")

    if body.startswith(b"\0B"):
        type_token = body[2:5]
        if type_token not in (b"DM ", b"FM "):
            fail(f"unsupported binary object type {type_token!r} (only `DM ` and `FM ` matrices are supported)")
        header = body[5:15]
        if len(header) < 10 or header[0] != 4 or header[5] != 4:
            fail("truncated or malformed matrix header")
        num_rows, num_cols = struct.unpack("<i", header[1:5])[0], struct.unpack("<i", header[6:10])[0]
        if num_rows <= 0 or num_cols <= 0:
            fail(f"invalid matrix size {num_rows}x{num_cols}")
        dtype = np.dtype("<f8") if type_token == b"DM " else np.dtype("<f4")
        payload = body[15:]
        expected = num_rows * num_cols * dtype.itemsize
        if len(payload) < expected:
            fail(f"truncated data: a {num_rows}x{num_cols} matrix needs {expected} bytes, found {len(payload)}")
        if payload[expected:].strip():
            fail("unexpected data after the matrix (only archives with a single matrix are supported)")
        return np.frombuffer(payload[:expected], dtype=dtype).reshape(num_rows, num_cols).astype(np.float64)

    text = body.decode("ascii", errors="replace").strip()
    if not text.startswith("[") or not text.endswith("]") or text.count("[") != 1 or text.count("]") != 1:
        fail("a text matrix must be a single `[ ... ]` block")
    try:
        rows = [[float(value) for value in line.split()] for line in text[1:-1].splitlines() if line.strip()]
    except ValueError as error:
        fail(f"non-numeric value in the text matrix ({error})")
    if not rows or any(len(row) != len(rows[0]) for row in rows):
        fail("the rows of the text matrix are empty or of different lengths")
    return np.array(rows, dtype=np.float64)


class FireRedAsrFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Constructs a FireRedASR feature extractor.

    This feature extractor inherits from [`~feature_extraction_sequence_utils.SequenceFeatureExtractor`] which contains
    most of the main methods. Users should refer to this superclass for more information regarding those methods.

    It computes the front end of the original FireRedASR (AED and LLM): Kaldi log-mel filter-bank features exactly as
    kaldi-native-fbank computes them (25 ms "povey" windows every 10 ms with `snip_edges`, DC removal,
    pre-emphasis 0.97, no dither, 512-point FFT power spectrum, triangular Kaldi mel filters from 20 Hz to Nyquist,
    natural log floored at `FLT_EPSILON`), then global cepstral mean and variance normalization (CMVN) with the
    statistics of the model's `cmvn.ark`, computed in float64 as the original does. The float32 arithmetic of
    kaldi-native-fbank is reproduced in vectorized numpy: most values are bit-identical to it, the others differ by
    at most ~3e-5 (the C library's `logf` rounds a few mel filter weights differently).

    Args:
        feature_size (`int`, *optional*, defaults to 80):
            The number of mel filters, i.e. the feature dimension.
        sampling_rate (`int`, *optional*, defaults to 16000):
            The sampling rate (Hz) the features are computed at. Audio at another rate is resampled to it (needs
            `soxr`).
        padding_value (`float`, *optional*, defaults to 0.0):
            The value that pads the features of shorter utterances in a batch (after CMVN, as in the original).
        cmvn_means (`list[float]`, *optional*):
            The per-dimension means of the global CMVN. `None` (with `cmvn_inverse_stds`) disables CMVN.
        cmvn_inverse_stds (`list[float]`, *optional*):
            The per-dimension inverse standard deviations of the global CMVN.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Whether [`~FireRedAsrFeatureExtractor.__call__`] returns the frame-level attention mask by default.
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size=80,
        sampling_rate=16000,
        padding_value=0.0,
        cmvn_means=None,
        cmvn_inverse_stds=None,
        return_attention_mask=True,
        **kwargs,
    ):
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        if (cmvn_means is None) != (cmvn_inverse_stds is None):
            raise ValueError("`cmvn_means` and `cmvn_inverse_stds` must be given together (or both be None).")
        if cmvn_means is not None:
            cmvn_means = [float(value) for value in cmvn_means]
            cmvn_inverse_stds = [float(value) for value in cmvn_inverse_stds]
            if len(cmvn_means) != feature_size or len(cmvn_inverse_stds) != feature_size:
                raise ValueError(
                    f"`cmvn_means` and `cmvn_inverse_stds` need {feature_size} values each (`feature_size`), got "
                    f"{len(cmvn_means)} and {len(cmvn_inverse_stds)}."
                )
            if not np.isfinite(cmvn_means + cmvn_inverse_stds).all():
                raise ValueError("`cmvn_means` and `cmvn_inverse_stds` must be finite.")
        self.cmvn_means = cmvn_means
        self.cmvn_inverse_stds = cmvn_inverse_stds

        # Kaldi's frame sizes: truncated sample counts, FFT length rounded up to a power of two
        self.frame_length = int(sampling_rate * FRAME_LENGTH_MS / 1000)
        self.hop_length = int(sampling_rate * FRAME_SHIFT_MS / 1000)
        self.fft_length = 1 << (self.frame_length - 1).bit_length()
        self.window = povey_window(self.frame_length)
        self.mel_filters = kaldi_mel_filters(feature_size, sampling_rate, self.fft_length)

    def to_dict(self):
        output = super().to_dict()  # drops `window` and `mel_filters`
        for derived in ("frame_length", "hop_length", "fft_length"):
            del output[derived]
        return output

    @classmethod
    def from_kaldi_cmvn(cls, cmvn_path, **kwargs):
        """
        Instantiate a feature extractor with the global CMVN of a Kaldi `cmvn.ark` (as shipped with the original
        models).

        The file holds the accumulated statistics, a 2 x (D + 1) matrix: row 0 the per-dimension sums and the frame
        count in its last column, row 1 the sums of squares. As in the original, `mean = sum / count`,
        `variance = max(sum_of_squares / count - mean ** 2, 1e-20)` and `inverse_std = 1 / sqrt(variance)`, in float64.

        Args:
            cmvn_path (`str` or `os.PathLike`):
                A Kaldi matrix file: binary double (`DM`) or float (`FM`), or text, with or without an utterance key.
            kwargs:
                Further arguments of [`FireRedAsrFeatureExtractor`] (`feature_size` defaults to D).
        """
        cmvn_path = os.fspath(cmvn_path)
        stats = read_kaldi_matrix(cmvn_path)
        if stats.shape[0] != 2 or stats.shape[1] < 2:
            raise ValueError(f"{cmvn_path}: CMVN statistics must be a 2 x (dim + 1) matrix, got {stats.shape}.")
        if not np.isfinite(stats).all():
            raise ValueError(f"{cmvn_path}: CMVN statistics contain NaN or infinite values.")
        count = stats[0, -1]
        if count < 1:
            raise ValueError(f"{cmvn_path}: the frame count of the CMVN statistics (row 0, last column) is {count}.")
        means = stats[0, :-1] / count
        variances = np.maximum(stats[1, :-1] / count - means * means, VARIANCE_FLOOR)
        inverse_stds = 1.0 / np.sqrt(variances)
        kwargs.setdefault("feature_size", stats.shape[1] - 1)
        return cls(cmvn_means=means.tolist(), cmvn_inverse_stds=inverse_stds.tolist(), **kwargs)

    def _extract_fbank_features(self, waveform):
        """
        Kaldi log-mel filter bank of one int16-scale float32 waveform, shape `(num_frames, feature_size)`, with
        `num_frames = 1 + (len(waveform) - frame_length) // hop_length` (Kaldi's `snip_edges`).

        Each step repeats kaldi-native-fbank's float32 operations (its FFT runs in float64), vectorized over frames.
        """
        num_frames = 1 + (len(waveform) - self.frame_length) // self.hop_length
        frames = np.lib.stride_tricks.sliding_window_view(waveform, self.frame_length)[:: self.hop_length][:num_frames]

        # DC removal with a sequential float32 sum, as the C loop adds
        frame_sums = np.cumsum(frames, axis=1, dtype=np.float32)[:, -1]
        frames = frames - (frame_sums / np.float32(self.frame_length))[:, None]

        # pre-emphasis; the first sample is scaled by (1 - coefficient)
        coefficient = np.float32(PREEMPHASIS_COEFFICIENT)
        emphasized = np.empty_like(frames)
        emphasized[:, 1:] = frames[:, 1:] - coefficient * frames[:, :-1]
        emphasized[:, 0] = frames[:, 0] - coefficient * frames[:, 0]
        emphasized *= self.window

        spectrum = np.fft.rfft(emphasized.astype(np.float64), n=self.fft_length)[:, : self.fft_length // 2]
        real, imaginary = spectrum.real.astype(np.float32), spectrum.imag.astype(np.float32)
        power = real * real + imaginary * imaginary

        mel_energies = power @ self.mel_filters.T
        return _float32_log(np.maximum(mel_energies, LOG_FLOOR))

    def _apply_cmvn(self, features):
        # float64 as in the original (float32 features minus float64 numpy statistics), then back to float32
        means = np.asarray(self.cmvn_means, dtype=np.float64)
        inverse_stds = np.asarray(self.cmvn_inverse_stds, dtype=np.float64)
        return ((features - means) * inverse_stds).astype(np.float32)

    def _to_mono_waveform(self, speech, sampling_rate, location):
        """Validate one utterance and return it as a mono int16-scale float32 waveform at `self.sampling_rate`."""
        if is_torch_tensor(speech):
            speech = speech.detach().cpu()
            speech = (speech.float() if speech.is_floating_point() and speech.element_size() < 4 else speech).numpy()
        array = np.asarray(speech)
        if array.dtype.kind not in "fi":
            raise ValueError(
                f"Audio{location} has dtype {array.dtype}; expected float samples in [-1, 1] or signed integer PCM."
            )
        if array.ndim not in (1, 2):
            raise ValueError(
                f"Audio{location} has {array.ndim} dimensions (shape {array.shape}); expected 1-D mono samples or a "
                "2-D multi-channel recording. Pass a batch as a list of utterances."
            )
        if array.size == 0:
            raise ValueError(f"Audio{location} is empty.")
        channel_axis = None
        if array.ndim == 2:
            if array.shape[1] <= MAX_CHANNELS:  # (samples, channels), as soundfile returns
                channel_axis = 1
            elif array.shape[0] <= MAX_CHANNELS:  # (channels, samples), as torchaudio returns
                channel_axis = 0
            else:
                raise ValueError(
                    f"Audio{location} of shape {array.shape} is 2-D but neither axis has at most {MAX_CHANNELS} "
                    "entries, so it is not a multi-channel recording. Pass a batch as a list of 1-D arrays."
                )
        # Before anything is allocated: the duration and rate bound what converting and resampling need.
        num_samples = array.shape[0] if channel_axis != 0 else array.shape[1]
        AudioLimits.from_env().check(num_samples, sampling_rate, f"Audio{location}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"Audio{location} contains NaN or infinite samples.")

        waveform = array.astype(np.float64)
        if channel_axis is not None:
            waveform = waveform.mean(axis=channel_axis)
        if array.dtype.kind == "f":
            waveform *= INT16_SCALE
        # Beyond any PCM format (and the float32 power spectrum would overflow into NaN features).
        peak = float(np.abs(waveform).max())
        if peak > MAX_SAMPLE_MAGNITUDE:
            raise ValueError(
                f"Audio{location} has samples of magnitude {peak:.3g} on the int16 scale, far beyond any recording: "
                "float samples belong in [-1, 1], integer arrays are int16-scale PCM."
            )

        if sampling_rate != self.sampling_rate:
            try:
                import soxr
            except ImportError as error:
                raise ImportError(
                    f"Audio at {sampling_rate} Hz has to be resampled to {self.sampling_rate} Hz, which needs the "
                    f"`soxr` package (`pip install soxr`); or resample it before calling {self.__class__.__name__}."
                ) from error
            waveform = soxr.resample(waveform, sampling_rate, self.sampling_rate)

        if len(waveform) < self.frame_length:
            raise ValueError(
                f"Audio{location} has {len(waveform)} samples at {self.sampling_rate} Hz, fewer than one "
                f"{FRAME_LENGTH_MS:g} ms frame ({self.frame_length} samples), so it has no features."
            )
        return waveform.astype(np.float32)

    def __call__(
        self,
        raw_speech,
        sampling_rate=None,
        padding="longest",
        max_length=None,
        truncation=False,
        pad_to_multiple_of=None,
        return_tensors=None,
        return_attention_mask=None,
        **kwargs,
    ) -> BatchFeature:
        """
        Featurize one utterance or a batch of utterances.

        Args:
            raw_speech (`np.ndarray`, `torch.Tensor`, `list[float]`, or a list of those):
                One utterance or a list of utterances (a batch). Float samples are audio in [-1, 1] and are scaled by
                32768; integer arrays are PCM taken as they are (int16 scale, as the original reads wav files). A 1-D
                array is mono audio; a 2-D array is ONE multi-channel recording and is averaged to mono: an axis of
                at most 8 entries is the channel axis, the last one first (`(samples, channels)` as soundfile returns,
                otherwise `(channels, samples)` as torchaudio returns). Pass batches as lists, not as 2-D arrays.
            sampling_rate (`int`, *optional*):
                The sampling rate of `raw_speech`. Audio at another rate than `self.sampling_rate` is resampled with
                `soxr`. It is strongly recommended to pass it; without it the audio is assumed to be at
                `self.sampling_rate`.
            padding (`bool`, `str` or [`~utils.PaddingStrategy`], *optional*, defaults to `"longest"`):
                `"longest"` (or `True`) pads to the longest utterance of the batch, `"max_length"` to `max_length`
                frames, `False` (or `"do_not_pad"`) returns the unpadded features.
            max_length (`int`, *optional*):
                Maximum number of frames, for `padding="max_length"` and `truncation`.
            truncation (`bool`, *optional*, defaults to `False`):
                Whether to cut the features of longer utterances to `max_length` frames.
            pad_to_multiple_of (`int`, *optional*):
                Pad the number of frames to a multiple of this value.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` for PyTorch tensors, `"np"` for numpy arrays (the default for padded batches).
            return_attention_mask (`bool`, *optional*):
                Whether to return the frame-level `attention_mask` (1 for frames of the audio, 0 for padding).
                Defaults to `self.return_attention_mask`.

        Returns:
            [`BatchFeature`]: `input_features` of shape `(batch_size, num_frames, feature_size)` (float32) and
            `attention_mask` of shape `(batch_size, num_frames)`. An utterance of N samples (at
            `self.sampling_rate`) has `1 + (N - 400) // 160` frames; padding comes after CMVN and is
            `padding_value`.
        """
        if sampling_rate is None:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{self.__class__.__name__}()`. "
                "Failing to do so can result in silent errors that might be hard to debug."
            )
            sampling_rate = self.sampling_rate
        elif isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, float, np.number)):
            raise ValueError(f"`sampling_rate` must be a number of Hz, got {sampling_rate!r}.")
        elif not sampling_rate > 0:
            raise ValueError(f"`sampling_rate` must be a positive number of Hz, got {sampling_rate}.")

        if isinstance(raw_speech, (list, tuple)):
            if len(raw_speech) == 0:
                raise ValueError("`raw_speech` is an empty list: there is no audio to featurize.")
            is_batched = isinstance(raw_speech[0], (np.ndarray, list, tuple)) or is_torch_tensor(raw_speech[0])
        else:
            is_batched = False
        if is_batched:
            waveforms = [
                self._to_mono_waveform(speech, sampling_rate, f" (utterance {index} of the batch)")
                for index, speech in enumerate(raw_speech)
            ]
        else:
            waveforms = [self._to_mono_waveform(raw_speech, sampling_rate, "")]

        features = [self._extract_fbank_features(waveform) for waveform in waveforms]
        if self.cmvn_means is not None:
            features = [self._apply_cmvn(feature) for feature in features]

        padded_inputs = self.pad(
            BatchFeature({"input_features": features}),
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
        )
        if return_tensors is not None:
            padded_inputs = padded_inputs.convert_to_tensors(return_tensors)
        return padded_inputs


__all__ = ["FireRedAsrFeatureExtractor"]
