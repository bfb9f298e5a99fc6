# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedAsrFeatureExtractor: parity with the original front end (knf 1.15 fbank + CMVN), input contract, errors."""

import logging
import struct

import numpy as np
import pytest
import soundfile
import torch

from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor

# Fbank accuracy against the knf 1.15 goldens (raw log-mel and after CMVN): required bounds of the project.
# Measured (this implementation, numpy 2.4, x86-64): raw max 1.9e-5 / 99.9th pct 5.7e-6 (golden/features and
# golden/aed-tiny), max 2.7e-5 / 8.6e-6 (real-speech); after CMVN max 2.7e-6 / 8.3e-7. 93-94 % of the values are
# bit-identical; the rest differ in the last bits because C's logf rounds a few mel filter weights differently.
MAX_ABS_ERROR = 2e-3
P999_ABS_ERROR = 1e-4
# This implementation's own accuracy (float32 steps as kaldi-native-fbank), with ~2x margin over the measurements:
# a change that loses it (e.g. numpy's float32 log, or float64 fbank arithmetic) fails here first.
TIGHT_MAX_ABS_ERROR = 5e-5
TIGHT_P999_ABS_ERROR = 1.5e-5

GOLDEN_SETS = {
    # name: (npz with fbank_raw.<u> [and feats.<u>], folder of <u>.wav)
    "features": ("golden/features/features.npz", "golden/features/wav"),
    "aed-tiny": ("golden/aed-tiny/features.npz", "audio"),
    "real-speech": ("real-speech/fbank.npz", "real-speech"),
}


def read_int16(path):
    samples, sampling_rate = soundfile.read(path, dtype="int16")
    assert sampling_rate == 16000
    return samples


def num_frames(num_samples):
    return 1 + (num_samples - 400) // 160


@pytest.fixture(scope="module")
def cmvn_path(fixtures_dir):
    return fixtures_dir / "aed-tiny" / "cmvn.ark"


@pytest.fixture(scope="module")
def feature_extractor(cmvn_path):
    return FireRedAsrFeatureExtractor.from_kaldi_cmvn(cmvn_path)


@pytest.fixture(scope="module")
def p01(fixtures_dir):
    return read_int16(fixtures_dir / "audio" / "p01.wav")


def features_of(feature_extractor, speech, **kwargs):
    kwargs.setdefault("sampling_rate", 16000)
    return feature_extractor(speech, return_tensors="np", **kwargs)["input_features"][0]


@pytest.mark.parametrize("golden_set", list(GOLDEN_SETS))
def test_matches_original_goldens(fixtures_dir, feature_extractor, golden_set):
    npz_path, wav_dir = GOLDEN_SETS[golden_set]
    goldens = np.load(fixtures_dir / npz_path)
    no_cmvn = FireRedAsrFeatureExtractor()
    errors = {"raw": [], "cmvn": []}
    names = [key.split(".", 1)[1] for key in goldens.files if key.startswith("fbank_raw.")]
    assert names
    for name in names:
        samples = read_int16(fixtures_dir / wav_dir / f"{name}.wav")
        expected_raw = goldens[f"fbank_raw.{name}"]
        if len(samples) < 400:  # the original returns 0 frames; we refuse (see test_rejects_bad_audio)
            assert expected_raw.shape == (0, 80)
            continue
        raw = features_of(no_cmvn, samples)
        assert raw.dtype == np.float32
        assert raw.shape == expected_raw.shape == (num_frames(len(samples)), 80), name
        errors["raw"].append(np.abs(raw - expected_raw).ravel())
        if f"feats.{name}" in goldens.files:
            feats = features_of(feature_extractor, samples)
            assert feats.shape == goldens[f"feats.{name}"].shape, name
            errors["cmvn"].append(np.abs(feats - goldens[f"feats.{name}"]).ravel())

    for kind, parts in errors.items():
        if not parts:
            continue
        error = np.concatenate(parts)
        max_error, p999_error = error.max(), np.percentile(error, 99.9)
        print(f"{golden_set} {kind}: max {max_error:.3g}, 99.9th percentile {p999_error:.3g}")
        assert max_error <= MAX_ABS_ERROR, f"{golden_set} {kind}: max |error| {max_error}"
        assert p999_error <= P999_ABS_ERROR, f"{golden_set} {kind}: 99.9th percentile |error| {p999_error}"
        assert max_error <= TIGHT_MAX_ABS_ERROR and p999_error <= TIGHT_P999_ABS_ERROR, (
            f"{golden_set} {kind}: accuracy regressed to max {max_error}, 99.9th percentile {p999_error}"
        )
    # real-speech has no CMVN goldens; the two other sets must have them
    assert bool(errors["cmvn"]) == (golden_set != "real-speech")


def test_digital_silence_is_log_flt_epsilon(feature_extractor):
    raw = features_of(FireRedAsrFeatureExtractor(), np.zeros(16000, dtype=np.int16))
    assert raw.shape == (98, 80)
    assert np.all(raw == np.float32(np.log(np.float32(1.1920928955078125e-07))))


def test_cmvn_matches_original(cmvn_path, feature_extractor, p01):
    from fireredasr.data.asr_feat import CMVN

    original = CMVN(str(cmvn_path))
    assert original.dim == feature_extractor.feature_size == 80
    np.testing.assert_array_equal(np.array(feature_extractor.cmvn_means), original.means)
    np.testing.assert_array_equal(np.array(feature_extractor.cmvn_inverse_stds), original.inverse_std_variences)
    # applied in float64 and then cast, as the original: bit-identical on the same fbank (float32 would differ ~5e-7)
    raw = features_of(FireRedAsrFeatureExtractor(), p01)
    np.testing.assert_array_equal(features_of(feature_extractor, p01), original(raw).astype(np.float32))


def test_live_parity_with_original_front_end(fixtures_dir, cmvn_path, feature_extractor):
    from fireredasr.data.asr_feat import ASRFeatExtractor

    paths = [fixtures_dir / "audio" / f"{name}.wav" for name in ("p02", "p01", "p10")]
    original_features, original_lengths, _ = ASRFeatExtractor(str(cmvn_path))([str(path) for path in paths])
    batch = feature_extractor([read_int16(path) for path in paths], sampling_rate=16000, return_tensors="pt")

    assert batch["input_features"].shape == original_features.shape
    assert batch["input_features"].dtype == torch.float32
    torch.testing.assert_close(batch["attention_mask"].sum(-1).long(), original_lengths, rtol=0, atol=0)
    torch.testing.assert_close(batch["input_features"], original_features, rtol=0, atol=2e-5)


def test_batch_equals_single(fixtures_dir, feature_extractor):
    utterances = [read_int16(fixtures_dir / "audio" / f"{name}.wav") for name in ("p03", "p02", "p01")]
    batch = feature_extractor(utterances, sampling_rate=16000, return_tensors="np")
    lengths = [num_frames(len(samples)) for samples in utterances]
    assert batch["input_features"].shape == (3, max(lengths), 80)
    assert batch["attention_mask"].shape == (3, max(lengths))
    for row, (samples, length) in enumerate(zip(utterances, lengths)):
        single = feature_extractor(samples, sampling_rate=16000, return_tensors="np")
        assert single["input_features"].shape == (1, length, 80)
        np.testing.assert_array_equal(single["attention_mask"], 1)
        np.testing.assert_array_equal(batch["input_features"][row, :length], single["input_features"][0])
        np.testing.assert_array_equal(batch["input_features"][row, length:], 0.0)
        np.testing.assert_array_equal(batch["attention_mask"][row], np.arange(max(lengths)) < length)


def test_padding_options(p01, feature_extractor):
    length = num_frames(len(p01))
    padded = feature_extractor(p01, sampling_rate=16000, padding="max_length", max_length=300, return_tensors="np")
    assert padded["input_features"].shape == (1, 300, 80)
    assert padded["attention_mask"].sum() == length
    multiple = feature_extractor(p01, sampling_rate=16000, pad_to_multiple_of=64, return_tensors="np")
    assert multiple["input_features"].shape == (1, 256, 80)
    truncated = feature_extractor(p01, sampling_rate=16000, max_length=100, truncation=True, return_tensors="np")
    np.testing.assert_array_equal(truncated["input_features"][0], features_of(feature_extractor, p01)[:100])
    no_mask = feature_extractor(p01, sampling_rate=16000, return_attention_mask=False)
    assert set(no_mask) == {"input_features"}


def test_integer_and_float_inputs_agree(p01, feature_extractor):
    expected = features_of(feature_extractor, p01)
    as_float = p01.astype(np.float32) / 32768
    same_audio = {
        "int32": p01.astype(np.int32),
        "float32": as_float,
        "float64": as_float.astype(np.float64),
        "torch float32": torch.from_numpy(as_float),
        "torch int16": torch.from_numpy(p01),
        "list of floats": as_float.tolist(),
        "batch of lists": [as_float.tolist()],
        "tuple batch": (torch.from_numpy(as_float),),
    }
    for name, speech in same_audio.items():
        np.testing.assert_array_equal(features_of(feature_extractor, speech), expected, err_msg=name)


def test_multichannel_layouts_are_downmixed(p01, feature_extractor):
    left = p01.astype(np.float32) / 32768
    right = np.roll(left, 7) * np.float32(0.5)
    mono = features_of(feature_extractor, (left.astype(np.float64) + right) / 2)
    np.testing.assert_array_equal(features_of(feature_extractor, np.stack([left, right], axis=1)), mono)
    np.testing.assert_array_equal(features_of(feature_extractor, np.stack([left, right], axis=0)), mono)
    np.testing.assert_array_equal(features_of(feature_extractor, torch.from_numpy(np.stack([left, right]))), mono)
    np.testing.assert_array_equal(features_of(feature_extractor, left[:, None]), features_of(feature_extractor, left))


def test_resampled_44k_stereo_matches_16k(p01, feature_extractor):
    soxr = pytest.importorskip("soxr")
    audio_16k = p01.astype(np.float32) / 32768
    audio_44k = soxr.resample(audio_16k, 16000, 44100)
    stereo_44k = np.stack([audio_44k, audio_44k], axis=1)
    features = features_of(feature_extractor, stereo_44k, sampling_rate=44100)

    # exactly the features of its own 16 kHz mono conversion
    converted = soxr.resample(stereo_44k.astype(np.float64).mean(axis=1), 44100, 16000)
    np.testing.assert_array_equal(features, features_of(feature_extractor, converted))

    # close to the features of the original 16 kHz audio, as far as the resampler allows. Measured on p01..p10
    # (CMVN units): median |diff| 5e-7, mean 0.006, 99th pct 0.23-0.26, max 0.96-1.2; the large ones are in digital
    # silence and in the top mel bins above soxr's pass band (~7.3 kHz).
    expected = features_of(feature_extractor, audio_16k)
    assert features.shape == expected.shape
    diff = np.abs(features - expected)
    assert np.median(diff) < 1e-5
    assert diff.mean() < 0.02
    assert np.percentile(diff, 99) < 0.5
    assert diff.max() < 2.0


def test_missing_sampling_rate_warns(p01, feature_extractor, caplog):
    with caplog.at_level(logging.WARNING):
        features = feature_extractor(p01, return_tensors="np")["input_features"][0]
    assert "sampling_rate" in caplog.text
    np.testing.assert_array_equal(features, features_of(feature_extractor, p01))


@pytest.mark.parametrize(
    "speech, sampling_rate, message",
    [
        (np.zeros(399, dtype=np.int16), 16000, "fewer than one 25 ms frame"),
        (np.zeros(1000, dtype=np.float32), 44100, "fewer than one 25 ms frame"),  # 363 samples at 16 kHz
        (np.zeros(0, dtype=np.float32), 16000, "empty"),
        (np.zeros((0, 2), dtype=np.float32), 16000, "empty"),
        ([], 16000, "empty list"),
        (np.full(1000, np.nan, dtype=np.float32), 16000, "NaN or infinite"),
        (np.concatenate([np.zeros(999), [np.inf]]), 16000, "NaN or infinite"),
        (np.zeros((2, 1000, 2), dtype=np.float32), 16000, "3 dimensions"),
        (np.float32(0.5), 16000, "0 dimensions"),
        (np.zeros((20, 1000), dtype=np.float32), 16000, "not a multi-channel recording"),
        (np.zeros(1000, dtype=np.uint8), 16000, "dtype uint8"),
        (np.zeros(1000, dtype=np.complex64), 16000, "dtype complex64"),
        (np.zeros(1000, dtype=bool), 16000, "dtype bool"),
        (np.zeros(1000, dtype=np.float32), 0, "positive"),
    ],
)
def test_rejects_bad_audio(feature_extractor, speech, sampling_rate, message):
    with pytest.raises(ValueError, match=message):
        feature_extractor(speech, sampling_rate=sampling_rate)


def test_bad_utterance_in_batch_is_named(p01, feature_extractor):
    batch = [p01, p01[:300], p01]
    with pytest.raises(ValueError, match="utterance 1 of the batch.*fewer than one"):
        feature_extractor(batch, sampling_rate=16000)
    nan_audio = np.full(1000, np.nan)
    with pytest.raises(ValueError, match="utterance 2 of the batch.*NaN"):
        feature_extractor([p01, p01, nan_audio], sampling_rate=16000)


def test_missing_soxr_is_a_clear_import_error(p01, feature_extractor, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def import_without_soxr(name, *args, **kwargs):
        if name == "soxr":
            raise ImportError("No module named 'soxr'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_soxr)
    with pytest.raises(ImportError, match="pip install soxr"):
        feature_extractor(p01, sampling_rate=8000)
    features_of(feature_extractor, p01)  # 16 kHz needs no soxr


def test_save_and_load_keeps_cmvn(tmp_path, p01, feature_extractor):
    feature_extractor.save_pretrained(tmp_path)
    loaded = FireRedAsrFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.cmvn_means == feature_extractor.cmvn_means
    assert loaded.cmvn_inverse_stds == feature_extractor.cmvn_inverse_stds
    np.testing.assert_array_equal(features_of(loaded, p01), features_of(feature_extractor, p01))
    saved = loaded.to_dict()
    assert "mel_filters" not in saved and "window" not in saved and "frame_length" not in saved

    no_cmvn = FireRedAsrFeatureExtractor()
    no_cmvn.save_pretrained(tmp_path / "no_cmvn")
    assert FireRedAsrFeatureExtractor.from_pretrained(tmp_path / "no_cmvn").cmvn_means is None


def test_auto_feature_extractor(tmp_path, p01, feature_extractor):
    from transformers import AutoFeatureExtractor
    from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING

    import fireredasr_hf  # noqa: F401  (registers the Auto classes)

    if FireRedAsrFeatureExtractor not in FEATURE_EXTRACTOR_MAPPING._extra_content.values():
        pytest.skip("fireredasr_hf does not register FireRedAsrFeatureExtractor with AutoFeatureExtractor yet")
    feature_extractor.save_pretrained(tmp_path)
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(loaded, FireRedAsrFeatureExtractor)
    np.testing.assert_array_equal(features_of(loaded, p01), features_of(feature_extractor, p01))


def test_constructor_validates_cmvn():
    with pytest.raises(ValueError, match="given together"):
        FireRedAsrFeatureExtractor(cmvn_means=[0.0] * 80)
    with pytest.raises(ValueError, match="80 values each"):
        FireRedAsrFeatureExtractor(cmvn_means=[0.0] * 79, cmvn_inverse_stds=[1.0] * 79)
    with pytest.raises(ValueError, match="finite"):
        FireRedAsrFeatureExtractor(cmvn_means=[float("nan")] * 80, cmvn_inverse_stds=[1.0] * 80)


# --- Kaldi cmvn.ark reader -------------------------------------------------------------------------------------


def kaldi_binary_matrix(matrix, type_token):
    dtype = "<f8" if type_token == b"DM " else "<f4"
    rows, cols = matrix.shape
    header = b"\0B" + type_token + struct.pack("<bi", 4, rows) + struct.pack("<bi", 4, cols)
    return header + np.ascontiguousarray(matrix, dtype=dtype).tobytes()


def kaldi_text_matrix(matrix):
    return (" [\n" + "\n".join("  " + " ".join(repr(float(v)) for v in row) for row in matrix) + " ]\n").encode()


@pytest.fixture(scope="module")
def cmvn_stats(cmvn_path):
    import kaldiio

    return kaldiio.load_mat(str(cmvn_path))


@pytest.mark.parametrize(
    "layout", ["DM", "key DM", "FM", "key FM", "text", "key text", "kaldiio text ark", "kaldiio FM"]
)
def test_reads_kaldi_cmvn_formats(tmp_path, cmvn_stats, feature_extractor, layout):
    import kaldiio

    path = tmp_path / "cmvn.ark"
    if layout == "kaldiio text ark":
        kaldiio.save_ark(str(path), {"global": cmvn_stats}, text=True)
    elif layout == "kaldiio FM":
        kaldiio.save_mat(str(path), cmvn_stats.astype(np.float32))
    else:
        key = b"global_cmvn " if layout.startswith("key ") else b""
        kind = layout.removeprefix("key ")
        body = kaldi_text_matrix(cmvn_stats) if kind == "text" else kaldi_binary_matrix(cmvn_stats, f"{kind} ".encode())
        path.write_bytes(key + body)

    loaded = FireRedAsrFeatureExtractor.from_kaldi_cmvn(path)
    if "FM" in layout:  # float32 statistics: measured relative differences 5e-8 (means) and 8e-7 (inverse stds)
        np.testing.assert_allclose(loaded.cmvn_means, feature_extractor.cmvn_means, rtol=1e-6)
        np.testing.assert_allclose(loaded.cmvn_inverse_stds, feature_extractor.cmvn_inverse_stds, rtol=1e-5)
    else:
        assert loaded.cmvn_means == feature_extractor.cmvn_means
        assert loaded.cmvn_inverse_stds == feature_extractor.cmvn_inverse_stds


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "expected a binary matrix"),
        (b"garbage", "expected a binary matrix"),
        (b"\0BCM \x04\x02\x00\x00\x00", "unsupported binary object type"),
        (b"\0BDM \x04\x02\x00\x00\x00", "truncated or malformed matrix header"),
        (b"\0BDM " + struct.pack("<bi", 4, 2) + struct.pack("<bi", 4, 81) + b"\0" * 100, "truncated data"),
        (b"\0BDM " + struct.pack("<bi", 4, -2) + struct.pack("<bi", 4, 81), "invalid matrix size"),
        (kaldi_binary_matrix(np.ones((2, 3)), b"DM ") + b"x " + kaldi_binary_matrix(np.ones((2, 3)), b"DM "), "after"),
        (b" [\n 1 2 3\n 4 5 ]\n", "different lengths"),
        (b" [\n 1 2 3\n 4 5 6\n", r"single `\[ ... \]` block"),
        (b" [\n 1 2 x\n 4 5 6 ]\n", "non-numeric"),
        (kaldi_text_matrix(np.ones((3, 81))), r"2 x \(dim \+ 1\) matrix"),
        (kaldi_text_matrix(np.zeros((2, 81))), "frame count"),
        (kaldi_binary_matrix(np.full((2, 81), np.nan), b"DM "), "NaN or infinite"),
    ],
)
def test_rejects_malformed_cmvn(tmp_path, content, message):
    path = tmp_path / "cmvn.ark"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        FireRedAsrFeatureExtractor.from_kaldi_cmvn(path)
