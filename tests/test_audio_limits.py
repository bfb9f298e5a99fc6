"""Resource bombs: audio whose duration or sampling rate would ask for gigabytes is refused, naming the input, before
anything is decoded or resampled; the limits are configurable. Also the other one-line errors of the audio path."""

import shutil
import subprocess
import time
import wave

import numpy as np
import pytest
import soundfile

from fireredasr_hf.audio import AudioLimitError, AudioLimits, load_audio, load_audio_bytes
from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from fireredasr_hf.transcript_io import read_kaldi_text, read_wav_scp

HOURS_100 = 100 * 3600 * 16000


def wav_claiming(path, rate: int, num_samples: int):
    """A 16-bit wav of noise whose header claims `rate` Hz (a 400 kB file at 1 Hz is 55 hours of audio)."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.random.default_rng(0).normal(0, 3000, num_samples).astype("<i2").tobytes())
    return path


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    for variable in ("FIREREDASR_MAX_AUDIO_SECONDS", "FIREREDASR_MIN_SAMPLING_RATE", "FIREREDASR_MAX_SAMPLING_RATE"):
        monkeypatch.delenv(variable, raising=False)


def test_a_header_claiming_1_hz_is_refused_before_decoding(tmp_path):
    path = wav_claiming(tmp_path / "one-hz.wav", 1, 200_000)
    with pytest.raises(AudioLimitError, match=r"one-hz\.wav: a sampling rate of 1 Hz is outside the accepted 4000"):
        load_audio(path)
    with pytest.raises(AudioLimitError, match="upload: a sampling rate of 1 Hz"):
        load_audio_bytes(path.read_bytes(), name="upload")


def test_the_duration_limit_applies_to_files_and_can_be_raised(tmp_path, monkeypatch):
    path = tmp_path / "two-seconds.wav"
    soundfile.write(path, np.zeros(32000, np.float32), 16000)
    monkeypatch.setenv("FIREREDASR_MAX_AUDIO_SECONDS", "1.5")
    with pytest.raises(
        AudioLimitError, match=r"two-seconds\.wav: 0\.00 hours .* limit of .* FIREREDASR_MAX_AUDIO_SECONDS"
    ):
        load_audio(path)
    assert load_audio(path, limits=AudioLimits(max_duration_s=3)).shape == (32000,)
    monkeypatch.setenv("FIREREDASR_MAX_AUDIO_SECONDS", "-1")
    with pytest.raises(ValueError, match="FIREREDASR_MAX_AUDIO_SECONDS must be a positive number"):
        load_audio(path)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
def test_ffmpeg_decodes_at_most_the_limit(tmp_path, monkeypatch):
    source = tmp_path / "noise.wav"
    soundfile.write(source, np.random.default_rng(0).normal(0, 0.1, 16000 * 4).astype(np.float32), 16000)
    target = tmp_path / "noise.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), str(target)], check=True)
    monkeypatch.setenv("FIREREDASR_MAX_AUDIO_SECONDS", "2")
    with pytest.raises(AudioLimitError, match=r"noise\.m4a: .* hours of audio is longer than the limit"):
        load_audio(target)


def feature_extractor():
    return FireRedAsrFeatureExtractor(cmvn_means=None, cmvn_inverse_stds=None)


@pytest.mark.parametrize(
    ("samples", "rate", "match"),
    [
        (np.zeros(1_000_000, np.float32), 1, "1 Hz is outside"),
        (np.zeros(16000, np.float32), float("inf"), "inf Hz is outside"),
        (np.zeros(16000, np.float32), 10**12, "1e\\+12 Hz is outside"),
        (np.broadcast_to(np.float32(0), (HOURS_100,)), 16000, "100.00 hours of audio is longer"),
    ],
    ids=["1-hz", "inf", "terahertz", "100-hours"],
)
def test_the_feature_extractor_refuses_before_allocating(samples, rate, match):
    start = time.perf_counter()
    with pytest.raises(AudioLimitError, match=match):
        feature_extractor()(samples, sampling_rate=rate)
    assert time.perf_counter() - start < 5  # refused, not computed


@pytest.fixture(scope="module")
def aed(converted_aed_dir):
    from transformers import pipeline

    import fireredasr_hf  # noqa: F401

    return pipeline("automatic-speech-recognition", model=str(converted_aed_dir))


@pytest.mark.parametrize(
    ("make_input", "match"),
    [
        (lambda tmp: {"raw": np.zeros(1_000_000, np.float32), "sampling_rate": 1}, "1 Hz is outside"),
        (lambda tmp: np.broadcast_to(np.float32(0), (HOURS_100,)), "100.00 hours"),
        (lambda tmp: {"raw": np.broadcast_to(np.float32(0), (HOURS_100,)), "sampling_rate": 8000}, "200.00 hours"),
        (lambda tmp: str(wav_claiming(tmp / "one-hz.wav", 1, 200_000)), r"one-hz\.wav: a sampling rate of 1 Hz"),
        (lambda tmp: wav_claiming(tmp / "b.wav", 1, 200_000).read_bytes(), "given as bytes: a sampling rate of 1"),
    ],
    ids=["dict-1-hz", "array-100-hours", "dict-200-hours", "file-1-hz", "bytes-1-hz"],
)
def test_the_pipeline_refuses_resource_bombs(aed, tmp_path, make_input, match):
    with pytest.raises(AudioLimitError, match=match):
        aed(make_input(tmp_path))


def test_the_pipeline_refuses_an_empty_list_and_non_finite_max_segment(aed):
    with pytest.raises(ValueError, match="The input list is empty"):
        aed([])
    with pytest.raises(ValueError, match="max_segment_s must be a finite number"):
        aed(np.zeros(16000, np.float32), max_segment_s=float("inf"))


def test_non_utf8_lists_are_named_with_their_line(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_bytes("a a.wav\nb b.wav\n".encode() + "c 录音.wav\n".encode("gbk"))
    with pytest.raises(ValueError, match=r"wav\.scp, line 3: not UTF-8 text .*iconv"):
        read_wav_scp(scp)
    text = tmp_path / "text"
    text.write_bytes(b"\xef\xbb\xbfa \xe4\xbd\xa0\xe5\xa5\xbd\n")  # UTF-8 with a byte order mark: fine
    assert read_kaldi_text(text) == {"a": "你好"}


@pytest.mark.parametrize(
    "samples", [np.full(16000, 2**62, np.int64), np.full(16000, 1e30), np.full(16000, 1e6, np.float32)]
)
def test_samples_beyond_any_pcm_range_are_refused(samples):
    with pytest.raises(ValueError, match="far beyond any recording"):
        feature_extractor()(samples, sampling_rate=16000)
