import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from fireredasr_hf import audio as audio_module
from fireredasr_hf.audio import AUDIO_EXTENSIONS, AudioDecodeError, load_audio, resample, to_mono


@pytest.fixture(scope="module")
def p01(fixtures_dir):
    path = fixtures_dir / "audio" / "p01.wav"
    return path, soundfile.read(path, dtype="int16")[0]


def test_load_wav_scales_int16_exactly(p01):
    path, pcm = p01
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (38375,)
    np.testing.assert_array_equal(audio * 32768, pcm)


def test_load_resamples_and_downmixes(p01, tmp_path):
    _, pcm = p01
    reference = pcm / np.float32(32768)
    audio_44k = resample(reference, 16000, 44100)
    stereo = np.stack([audio_44k, 0.5 * audio_44k], axis=1)
    soundfile.write(tmp_path / "stereo.flac", stereo, 44100, subtype="PCM_24")
    audio = load_audio(tmp_path / "stereo.flac")
    assert audio.dtype == np.float32 and audio.shape == reference.shape
    # 16 kHz -> 44.1 kHz -> 16 kHz with soxr is nearly transparent; the mix is 0.75 * the signal.
    error = audio - 0.75 * reference
    assert np.max(np.abs(error)) < 1e-2
    assert np.sqrt(np.mean(error**2)) < 0.01 * np.sqrt(np.mean(reference**2))
    assert load_audio(tmp_path / "stereo.flac", sampling_rate=8000).shape == (len(reference) // 2,)


def test_load_ogg_vorbis(p01, tmp_path):
    _, pcm = p01
    soundfile.write(tmp_path / "clip.ogg", pcm, 16000, format="OGG", subtype="VORBIS")
    audio = load_audio(tmp_path / "clip.ogg")
    assert abs(len(audio) - len(pcm)) < 160
    assert np.corrcoef(audio[:30000], pcm[:30000])[0, 1] > 0.95


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
def test_load_m4a_through_ffmpeg(p01, tmp_path):
    _, pcm = p01
    stereo = np.stack([pcm, pcm // 2], axis=1)
    soundfile.write(tmp_path / "stereo.wav", stereo, 16000)
    target = tmp_path / "clip.m4a"
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(tmp_path / "stereo.wav"), "-ar", "44100", str(target)]
    subprocess.run(command, check=True)
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.info(target)  # libsndfile cannot read it: ffmpeg decodes it
    audio = load_audio(target)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(pcm)) < 0.05 * 16000  # AAC adds encoder delay/padding
    expected_rms = np.sqrt(np.mean(np.square(0.75 * pcm / 32768)))
    assert np.sqrt(np.mean(np.square(audio))) == pytest.approx(expected_rms, rel=0.05)


def test_missing_ffmpeg_gives_a_clear_error(tmp_path, monkeypatch):
    target = tmp_path / "clip.m4a"
    target.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    monkeypatch.setattr(audio_module.shutil, "which", lambda name: None)
    with pytest.raises(AudioDecodeError, match=r"clip\.m4a.*ffmpeg binary is not on PATH"):
        load_audio(target)


@pytest.mark.parametrize("content", [b"", b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4])
def test_corrupt_or_empty_file_raises_decode_error(tmp_path, content):
    target = tmp_path / "broken.wav"
    target.write_bytes(content)
    with pytest.raises(AudioDecodeError, match=r"cannot decode audio file .*broken\.wav") as error:
        load_audio(target)
    assert isinstance(error.value, ValueError)


def test_file_without_samples_or_with_nan(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.int16), 16000)
    with pytest.raises(AudioDecodeError, match=r"empty\.wav contains no samples"):
        load_audio(tmp_path / "empty.wav")
    soundfile.write(tmp_path / "nan.wav", np.array([0.1, np.nan], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="NaN"):
        load_audio(tmp_path / "nan.wav")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path)


def test_to_mono_layouts():
    samples_first = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, -1.0]], dtype=np.float64)
    np.testing.assert_allclose(to_mono(samples_first), [0.5, 0.5, -0.5])
    assert to_mono(samples_first).dtype == np.float32
    np.testing.assert_allclose(to_mono(samples_first.T, channel_axis=0), [0.5, 0.5, -0.5])
    assert to_mono(np.arange(4, dtype=np.int16)).dtype == np.float32
    with pytest.raises(ValueError, match="channel_axis=0"):
        to_mono(samples_first.T)  # (2, 3) read as 3 channels of 2 samples
    with pytest.raises(ValueError, match="shape"):
        to_mono(np.zeros((2, 2, 2)))


def test_resample_rates_and_frequency():
    t = np.arange(48000) / 48000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    down = resample(tone, 48000, 16000)
    assert down.dtype == np.float32 and down.shape == (16000,)
    assert np.argmax(np.abs(np.fft.rfft(down))) == 1000  # 1 Hz bins: still a 1 kHz tone
    assert resample(tone, 16000, 16000) is not None and np.array_equal(resample(tone, 16000, 16000), tone)
    for bad in (0, -8000, 16000.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            resample(tone, bad, 16000)


def test_audio_extensions():
    assert {".wav", ".flac", ".ogg", ".mp3", ".m4a"} <= AUDIO_EXTENSIONS
    assert all(extension == extension.lower() and extension.startswith(".") for extension in AUDIO_EXTENSIONS)
