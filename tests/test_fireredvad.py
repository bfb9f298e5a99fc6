"""FireRedVAD on the real released weights (the ONNX exports in the shared fixtures).

- the torch model reproduces onnxruntime's frame probabilities (all three models) on real and synthetic speech;
- the post-processing reproduces PyPI fireredvad 0.0.2's post-processors exactly, for its README settings and others;
- end to end, our detectors give the release's segments (fireredvad's own classes, run on original-format
  `model.pth.tar` directories built from the ONNX weights);
- streaming in any piece size gives the frames of the whole recording;
- the loading paths: ONNX directory, original directories, save_pretrained, the converter, the Hub id offline.
"""

import dataclasses
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fireredasr_hf import FireRedAudioEventDetector, FireRedStreamVad, FireRedVad
from fireredasr_hf.conversion import convert_checkpoint, detect_variant
from fireredasr_hf.conversion.common import UnsafeCheckpointError
from fireredasr_hf.conversion.vad import KIND_ONNX_FILES, args_from_state_dict, read_onnx_weights
from fireredasr_hf.hub import ModelResolutionError
from fireredasr_hf.vad import SpeechSegment
from fireredasr_hf.vad_postprocessing import (
    FireRedStreamVadPostprocessor,
    FireRedVadPostprocessor,
    stream_results_to_segments,
)

SAMPLING_RATE = 16000
KIND_DIRS = {"vad": "VAD", "stream-vad": "Stream-VAD", "aed": "AED"}
# The release's parameter counts (fireredvad README: "#param of DetectModel ... is 588417").
PARAMETERS = {"vad": 588417, "stream-vad": 567937, "aed": 588931}


@pytest.fixture(scope="module")
def vad_dir(fixtures_dir) -> Path:
    directory = fixtures_dir / "firered-vad"
    if not (directory / "cmvn.ark").is_file():
        pytest.skip(f"the FireRedVAD fixtures are not in {directory}")
    return directory


@pytest.fixture(scope="module")
def vad(vad_dir):
    return FireRedVad.from_pretrained(vad_dir)


@pytest.fixture(scope="module")
def stream_vad(vad_dir):
    return FireRedStreamVad.from_pretrained(vad_dir)


@pytest.fixture(scope="module")
def event_detector(vad_dir):
    return FireRedAudioEventDetector.from_pretrained(vad_dir)


@pytest.fixture(scope="module")
def original_dir(vad_dir, tmp_path_factory) -> Path:
    """The Hub repository's layout (`VAD/`, `Stream-VAD/`, `AED/`, each `model.pth.tar` + `cmvn.ark`), written from the
    ONNX weights with the release's checkpoint format (`{"args": Namespace, "model_state_dict": ...}`)."""
    root = tmp_path_factory.mktemp("FireRedVAD")
    for kind, folder in KIND_DIRS.items():
        state_dict, dilations = read_onnx_weights(vad_dir / KIND_ONNX_FILES[kind])
        args = args_from_state_dict(state_dict, dilations)
        (root / folder).mkdir()
        torch.save({"args": args, "model_state_dict": state_dict}, root / folder / "model.pth.tar")
        shutil.copy(vad_dir / "cmvn.ark", root / folder / "cmvn.ark")
    return root


def speech_files(fixtures_dir) -> list[Path]:
    return sorted((fixtures_dir / "real-speech").glob("*.wav")) + sorted((fixtures_dir / "audio").glob("p*.wav"))


def read(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SAMPLING_RATE
    return audio


def mixed_recording(fixtures_dir, seconds: float, seed: int = 0) -> np.ndarray:
    """Real and synthetic utterances in turn with 0.2-3 s pauses, over -50 dBFS noise, with a stretch of tones."""
    rng = np.random.default_rng(seed)
    clips = [read(path) for path in speech_files(fixtures_dir)]
    audio = rng.standard_normal(round(seconds * SAMPLING_RATE)).astype(np.float32) * np.float32(10 ** (-50 / 20))
    position = 0
    for index in itertools.count():
        clip = clips[index % len(clips)]
        position += round(rng.uniform(0.2, 3.0) * SAMPLING_RATE)
        if position + len(clip) > len(audio):
            break
        audio[position : position + len(clip)] += clip
        position += len(clip)
        if index % 7 == 6:  # now and then some music-like tones
            tone = np.arange(2 * SAMPLING_RATE) / SAMPLING_RATE
            piece = 0.1 * np.sin(2 * np.pi * rng.choice([262.0, 330.0, 392.0]) * tone).astype(np.float32)
            if position + len(piece) < len(audio):
                audio[position : position + len(piece)] += piece
                position += len(piece)
    return audio


def onnx_session(vad_dir, kind):
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(vad_dir / KIND_ONNX_FILES[kind]), options, providers=["CPUExecutionProvider"])


def onnx_probabilities(session, features: np.ndarray) -> np.ndarray:
    inputs = {"feat": features[None]}
    if "caches_in" in {i.name for i in session.get_inputs()}:
        inputs["caches_in"] = np.zeros((8, 1, 128, 19), np.float32)
    return session.run(None, inputs)[0][0]


# --- The model against onnxruntime -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vad", "stream-vad", "aed"])
def test_torch_model_reproduces_onnxruntime(vad_dir, fixtures_dir, kind):
    detector = {"vad": FireRedVad, "stream-vad": FireRedStreamVad, "aed": FireRedAudioEventDetector}[kind]
    model = detector.from_pretrained(vad_dir)
    assert sum(p.numel() for p in model.model.parameters()) == PARAMETERS[kind]
    session = onnx_session(vad_dir, kind)
    worst = 0.0
    for path in speech_files(fixtures_dir):
        features = model.features(read(path), SAMPLING_RATE)
        ours = model.frame_probabilities(features)
        worst = max(worst, float(np.abs(ours - onnx_probabilities(session, features)).max()))
    assert worst <= 1e-5  # measured 3.0e-7


@pytest.mark.parametrize(
    "minutes, chunk_max_frame", [(2, 5000), pytest.param(10, 30000, marks=pytest.mark.slow)], ids=["2min", "10min"]
)
def test_long_recording_matches_onnxruntime_and_the_release_postprocessor(
    vad, vad_dir, fixtures_dir, minutes, chunk_max_frame
):
    VadPostprocessor = pytest.importorskip("fireredvad.core.vad_postprocessor").VadPostprocessor
    audio = mixed_recording(fixtures_dir, 60 * minutes)
    vad = FireRedVad(vad.model, vad.feature_extractor, chunk_max_frame=chunk_max_frame)
    features = vad.features(audio, SAMPLING_RATE)
    assert features.shape == (1 + (len(audio) - 400) // 160, 80)
    ours = vad.frame_probabilities(features)[:, 0]
    # The release runs inputs longer than chunk_max_frame frames in independent chunks; so do we (and ONNX here).
    session = onnx_session(vad_dir, "vad")
    chunks = np.split(features, range(chunk_max_frame, len(features), chunk_max_frame))
    reference = np.concatenate([onnx_probabilities(session, chunk)[:, 0] for chunk in chunks])
    assert np.abs(ours - reference).max() <= 1e-5  # measured 4.2e-7 (10 minutes)
    release = VadPostprocessor(5, 0.4, 20, 2000, 20, 0, 0)
    expected = release.decision_to_segment(release.process(torch.from_numpy(ours).tolist()), len(audio) / 16000)
    segments = vad.detect(audio, SAMPLING_RATE)
    assert [(s.start, s.end) for s in segments] == expected
    assert len(segments) > 10 * minutes


# --- Post-processing against the release ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probability_tracks(fixtures_dir, vad) -> list[np.ndarray]:
    """Real probabilities and synthetic tracks with short bursts, dips, long runs and threshold-level values."""
    rng = np.random.default_rng(1)
    tracks = [vad.speech_probabilities(mixed_recording(fixtures_dir, 60, seed=2), SAMPLING_RATE)]
    for _ in range(4):
        runs = rng.integers(1, 60, size=200)
        levels = rng.choice([0.05, 0.39, 0.4, 0.41, 0.6, 0.95], size=200)
        track = np.repeat(levels, runs) + rng.normal(0, 0.02, runs.sum())
        tracks.append(np.clip(track, 0, 1).astype(np.float32))
    tracks.append(np.full(4500, 0.9, np.float32))  # one long run, to be split
    tracks.append(np.array([0.9, 0.9, 0.1], np.float32))
    tracks.append(np.zeros(0, np.float32))
    return tracks


SETTINGS = [
    # (smooth_window_size, speech_threshold, min_speech_frame, max_speech_frame, min_silence_frame, merge, extend)
    (5, 0.4, 20, 2000, 20, 0, 0),  # the README
    (5, 0.4, 8, 2000, 20, 0, 0),
    (1, 0.5, 1, 300, 0, 0, 0),
    (10, 0.3, 5, 150, 5, 30, 0),
    (3, 0.6, 30, 500, 40, 10, 7),
    (5, 0.4, 20, 2, 20, 50, 25),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_postprocessor_reproduces_the_release(probability_tracks, settings):
    VadPostprocessor = pytest.importorskip("fireredvad.core.vad_postprocessor").VadPostprocessor
    release = VadPostprocessor(*settings)
    ours = FireRedVadPostprocessor(*settings)
    for track in probability_tracks:
        raw = torch.from_numpy(track).tolist()  # what the release gets from its model
        decisions = release.process(raw)
        assert ours.decisions(track) == decisions
        for duration in (None, len(track) / 100 - 0.003):
            assert ours.segments(decisions, duration) == release.decision_to_segment(decisions, duration)


STREAM_SETTINGS = [
    # (smooth_window_size, speech_threshold, pad_start_frame, min_speech_frame, max_speech_frame, min_silence_frame)
    (5, 0.4, 5, 8, 2000, 20),  # the README
    (5, 0.5, 5, 8, 2000, 20),  # FireRedStreamVadConfig's own default threshold
    (1, 0.3, 0, 1, 100, 1),
    (8, 0.6, 12, 15, 300, 10),
]


@pytest.mark.parametrize("settings", STREAM_SETTINGS)
def test_stream_postprocessor_reproduces_the_release(probability_tracks, settings):
    module = pytest.importorskip("fireredvad.core.stream_vad_postprocessor")
    FireRedStreamVadRelease = pytest.importorskip("fireredvad.stream_vad").FireRedStreamVad
    for track in probability_tracks[:-1]:
        release, ours = module.StreamVadPostprocessor(*settings), FireRedStreamVadPostprocessor(*settings)
        expected = [release.process_one_frame(p) for p in torch.from_numpy(track).tolist()]
        results = [ours.process(p) for p in track]
        assert [dataclasses.astuple(r) for r in results] == [dataclasses.astuple(r) for r in expected]
        if results:
            assert stream_results_to_segments(results) == FireRedStreamVadRelease.results_to_timestamps(expected)


def test_postprocessor_rejects_bad_settings():
    with pytest.raises(ValueError, match="speech_threshold"):
        FireRedVadPostprocessor(speech_threshold=1.5)
    with pytest.raises(ValueError, match="min_speech_frame"):
        FireRedVadPostprocessor(min_speech_frame=0)
    with pytest.raises(ValueError, match="min_silence_frame"):
        FireRedStreamVadPostprocessor(min_silence_frame=-1)
    with pytest.raises(ValueError, match="probability"):
        FireRedStreamVadPostprocessor().process(1.5)


# --- End to end against the release's classes ---------------------------------------------------------------------


def test_detectors_give_the_release_segments(original_dir, fixtures_dir):
    release = pytest.importorskip("fireredvad")
    clips = [read(path) for path in speech_files(fixtures_dir)[:6]] + [mixed_recording(fixtures_dir, 40, seed=3)]
    vad, release_vad = (
        FireRedVad.from_pretrained(original_dir),
        release.FireRedVad.from_pretrained(str(original_dir / "VAD"), release.FireRedVadConfig()),
    )
    events, release_events = (
        FireRedAudioEventDetector.from_pretrained(original_dir),
        release.FireRedAed.from_pretrained(str(original_dir / "AED"), release.FireRedAedConfig()),
    )
    stream_config = release.FireRedStreamVadConfig(speech_threshold=0.4)  # the README's setting
    stream, release_stream = (
        FireRedStreamVad.from_pretrained(original_dir),
        release.FireRedStreamVad.from_pretrained(str(original_dir / "Stream-VAD"), stream_config),
    )
    for audio in clips:
        pcm = np.round(audio * 32768).astype(np.int16)  # the release reads 16-bit PCM
        audio = pcm / np.float32(32768)
        result, probabilities = release_vad.detect((pcm, SAMPLING_RATE))
        # Our front end differs from kaldi-native-fbank by float rounding only.
        assert np.abs(vad.speech_probabilities(audio, SAMPLING_RATE) - probabilities.numpy()).max() < 1e-4
        assert [(s.start, s.end) for s in vad.detect(audio, SAMPLING_RATE)] == result["timestamps"]

        result, probabilities = release_events.detect((pcm, SAMPLING_RATE))
        ours = events.event_probabilities(audio, SAMPLING_RATE)
        assert np.abs(ours - probabilities.numpy()).max() < 1e-4
        detected = events.detect(audio, SAMPLING_RATE)
        assert {e: [(s.start, s.end) for s in detected[e]] for e in detected} == result["event2timestamps"]
        assert events.ratios(ours) == result["event2ratio"]

        _, result = release_stream.detect_full((pcm, SAMPLING_RATE))
        assert [(s.start, s.end) for s in stream.detect(audio, SAMPLING_RATE)] == result["timestamps"]


@pytest.mark.parametrize("piece_ms", [10, 100, 1000, 37])
def test_streaming_in_any_piece_size_gives_the_whole_recording(stream_vad, fixtures_dir, piece_ms):
    audio = mixed_recording(fixtures_dir, 15, seed=4)
    whole = FireRedStreamVadPostprocessor()
    expected = [whole.process(p) for p in stream_vad.speech_probabilities(audio, SAMPLING_RATE)]
    stream_vad.reset()
    piece = piece_ms * SAMPLING_RATE // 1000
    results = []
    for start in range(0, len(audio), piece):
        results += stream_vad.accept_waveform(audio[start : start + piece])
    stream_vad.reset()
    assert len(results) == len(expected)
    raw = np.array([r.raw_prob for r in results]), np.array([r.raw_prob for r in expected])
    assert np.abs(raw[0] - raw[1]).max() <= 0.0015  # rounded to 3 decimals by the release's result type
    decisions = [
        (r.is_speech, r.is_speech_start, r.is_speech_end, r.speech_start_frame, r.speech_end_frame) for r in results
    ]
    assert decisions == [
        (r.is_speech, r.is_speech_start, r.is_speech_end, r.speech_start_frame, r.speech_end_frame) for r in expected
    ]
    assert stream_results_to_segments(results) == [(s.start, s.end) for s in stream_vad.detect(audio, SAMPLING_RATE)]
    assert any(r.is_speech_start for r in results)


def test_streaming_model_state_matches_onnx_with_cache(stream_vad, vad_dir, fixtures_dir):
    """Chunk by chunk with the carried cache, the torch model gives the ONNX streaming model's probabilities."""
    session = onnx_session(vad_dir, "stream-vad")
    features = stream_vad.features(read(speech_files(fixtures_dir)[0]), SAMPLING_RATE)
    cache, memory, ours, theirs = np.zeros((8, 1, 128, 19), np.float32), None, [], []
    for start in range(0, len(features), 7):
        chunk = features[start : start + 7]
        probabilities, cache = session.run(None, {"feat": chunk[None], "caches_in": cache})
        theirs.append(probabilities[0, :, 0])
        with torch.inference_mode():
            output = stream_vad.model(torch.from_numpy(chunk)[None], memory_cache=memory, use_cache=True)
        memory = output.memory_cache
        ours.append(torch.sigmoid(output.logits[0, :, 0]).numpy())
    whole = stream_vad.frame_probabilities(features)[:, 0]
    assert np.abs(np.concatenate(ours) - np.concatenate(theirs)).max() <= 1e-5
    assert np.abs(np.concatenate(ours) - whole).max() <= 1e-5
    assert np.abs(np.stack([c.numpy() for c in memory])[:, :, :, -19:] - cache).max() <= 1e-4


def test_streaming_needs_a_streaming_model(vad, stream_vad):
    with pytest.raises(ValueError, match="streaming model"):
        vad.model(torch.zeros(1, 5, 80), memory_cache=tuple(torch.zeros(1, 128, 19) for _ in range(8)))
    with pytest.raises(ValueError, match="16000 Hz"):
        stream_vad.accept_waveform(np.zeros(100, np.float32), 8000)
    with pytest.raises(ValueError, match="needs a FireRedVAD vad model"):
        FireRedVad(stream_vad.model, stream_vad.feature_extractor)


# --- What the detectors find -----------------------------------------------------------------------------------------


def test_speech_probabilities_are_one_per_frame_at_any_rate(vad, fixtures_dir):
    audio = read(fixtures_dir / "audio" / "p04.wav")
    probabilities = vad.speech_probabilities(audio, SAMPLING_RATE)
    assert probabilities.dtype == np.float32 and probabilities.shape == (1 + (len(audio) - 400) // 160,)
    from fireredasr_hf.audio import resample

    at_44k = vad.speech_probabilities(resample(audio, SAMPLING_RATE, 44100), 44100)
    assert abs(len(at_44k) - len(probabilities)) <= 1
    assert np.abs(at_44k[: len(probabilities) - 1] - probabilities[: len(at_44k) - 1]).mean() < 0.02
    assert vad.speech_probabilities(np.zeros(399, np.float32), SAMPLING_RATE).shape == (0,)
    assert vad(np.zeros(399, np.float32), SAMPLING_RATE) == []
    with pytest.raises(ValueError, match="int16 / 32768"):
        vad.speech_probabilities(np.zeros(1000, np.int16), SAMPLING_RATE)


def test_finds_utterances_and_ignores_noise_and_tones(vad, fixtures_dir):
    from test_vad import make_recording, max_boundary_error

    audio, truth = make_recording(fixtures_dir, 60, seed=0)
    assert max_boundary_error(vad(audio, SAMPLING_RATE), truth) < 0.3
    rng = np.random.default_rng(0)
    assert vad(rng.standard_normal(3 * SAMPLING_RATE).astype(np.float32) * np.float32(0.05), SAMPLING_RATE) == []
    assert vad(tones(4.0), SAMPLING_RATE) == []


def tones(seconds: float) -> np.ndarray:
    """A music-like melody: decaying notes with harmonics."""
    t = np.arange(round(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    notes = [261.6, 329.6, 392.0, 440.0, 349.2, 293.7]
    music = np.zeros_like(t)
    for k in range(int(seconds * 2)):
        inside = (t >= k / 2) & (t < (k + 1) / 2)
        for harmonic in range(1, 5):
            music[inside] += (
                np.exp(-3 * (t[inside] - k / 2)) * np.sin(2 * np.pi * notes[k % 6] * harmonic * t[inside]) / harmonic
            )
    return (0.2 * music / np.abs(music).max()).astype(np.float32)


def test_events_find_music_and_tag_speech_over_it(vad_dir, fixtures_dir, event_detector):
    speech = read(fixtures_dir / "audio" / "p05.wav")
    over_music = speech + tones(len(speech) / SAMPLING_RATE + 0.01)[: len(speech)]
    gap = np.zeros(SAMPLING_RATE, np.float32)
    audio = np.concatenate([over_music, gap, tones(6.0), gap, speech])
    events = event_detector.detect(audio, SAMPLING_RATE)
    music_end = (2 * len(speech) + 2 * len(gap) + 6 * SAMPLING_RATE) / SAMPLING_RATE - len(speech) / SAMPLING_RATE
    assert events["music"] and events["music"][0].start < 0.5 and events["music"][-1].end >= music_end - 1.5
    assert not events["singing"] and len(events["speech"]) == 2
    tagged = FireRedVad.from_pretrained(vad_dir, tag_events=True)
    assert [s.events for s in tagged(audio, SAMPLING_RATE)] == [("speech", "music"), ("speech",)]


class StubEvents:
    """An event detector that reports fixed segments (the real models hardly ever call music speech)."""

    EVENTS = FireRedAudioEventDetector.EVENTS

    def detect(self, audio, sampling_rate):
        return {
            "speech": [SpeechSegment(0.0, 1.0)],
            "singing": [SpeechSegment(2.0, 3.0)],
            "music": [SpeechSegment(1.0, 3.0)],
        }


def test_skip_events_drop_segments_without_speech(vad):
    class Fixed(FireRedVad):
        def speech_probabilities(self, audio, sampling_rate):
            return np.repeat(np.array([0.9, 0.0, 0.9, 0.0, 0.9, 0.0], np.float32), [100, 50, 50, 50, 50, 10])

    audio = np.zeros(3 * SAMPLING_RATE, np.float32)
    parts = (vad.model, vad.feature_extractor)
    tagged = Fixed(*parts, event_detector=StubEvents(), tag_events=True)(audio, SAMPLING_RATE)
    assert [s.events for s in tagged] == [("speech",), ("music",), ("singing", "music")]
    kept = Fixed(*parts, event_detector=StubEvents(), skip_events=("singing",))(audio, SAMPLING_RATE)
    assert kept == [SpeechSegment(s.start, s.end) for s in tagged[:2]]
    assert len(Fixed(*parts, event_detector=StubEvents(), skip_events=("music", "singing"))(audio, SAMPLING_RATE)) == 1
    with pytest.raises(ValueError, match="skip_events"):
        FireRedVad(*parts, event_detector=StubEvents(), skip_events=("noise",))
    with pytest.raises(ValueError, match="need an event_detector"):
        FireRedVad(*parts, tag_events=True)


# --- Loading, saving, converting ----------------------------------------------------------------------------------


def test_original_pth_directories_load_through_the_safe_loader(original_dir, vad, fixtures_dir, monkeypatch):
    from fireredasr_hf.conversion import vad as conversion

    calls = []
    real = conversion.load_original_checkpoint
    monkeypatch.setattr(conversion, "load_original_checkpoint", lambda path: calls.append(path) or real(path))
    audio = read(speech_files(fixtures_dir)[0])
    expected = vad.speech_probabilities(audio, SAMPLING_RATE)
    for name in (original_dir, original_dir / "VAD"):
        assert np.array_equal(FireRedVad.from_pretrained(name).speech_probabilities(audio, SAMPLING_RATE), expected)
    assert calls == [original_dir / "VAD" / "model.pth.tar"] * 2
    with pytest.raises(ValueError, match="not a stream-vad model"):
        FireRedStreamVad.from_pretrained(original_dir / "VAD")


def test_a_checkpoint_that_would_run_code_is_refused(original_dir, tmp_path):
    from test_checkpoint_safety import _RunsCode

    target = tmp_path / "VAD"
    shutil.copytree(original_dir / "VAD", target)
    package = torch.load(target / "model.pth.tar", weights_only=False)
    package["payload"] = _RunsCode(tmp_path / "code-ran")
    torch.save(package, target / "model.pth.tar")
    with pytest.raises(ModelResolutionError, match="Refusing to load"):
        FireRedVad.from_pretrained(target)
    with pytest.raises(UnsafeCheckpointError):
        convert_checkpoint(target, tmp_path / "out")
    assert not (tmp_path / "code-ran").exists()


def test_save_pretrained_round_trip(vad, stream_vad, tmp_path, fixtures_dir):
    audio = read(speech_files(fixtures_dir)[1])
    vad.save_pretrained(tmp_path / "vad")
    config = json.loads((tmp_path / "vad" / "config.json").read_text())
    assert config["model_type"] == "fireredvad" and "AutoModelForAudioFrameClassification" in config["auto_map"]
    assert (tmp_path / "vad" / "modeling_fireredvad.py").is_file()
    loaded = FireRedVad.from_pretrained(tmp_path / "vad")
    assert np.array_equal(
        loaded.speech_probabilities(audio, SAMPLING_RATE), vad.speech_probabilities(audio, SAMPLING_RATE)
    )
    stream_vad.save_pretrained(tmp_path / "root" / "Stream-VAD")
    assert FireRedStreamVad.from_pretrained(tmp_path / "root").detect(audio, SAMPLING_RATE) == stream_vad.detect(
        audio, SAMPLING_RATE
    )


def test_converter_handles_both_original_forms(vad_dir, original_dir, tmp_path, fixtures_dir, vad):
    assert detect_variant(vad_dir) == detect_variant(original_dir) == detect_variant(original_dir / "AED") == "vad"
    assert detect_variant(fixtures_dir / "aed-tiny") == "aed"
    convert_checkpoint(vad_dir, tmp_path / "from-onnx")
    assert sorted(p.name for p in (tmp_path / "from-onnx").iterdir()) == ["AED", "Stream-VAD", "VAD"]
    convert_checkpoint(original_dir / "AED", tmp_path / "aed")
    assert json.loads((tmp_path / "aed" / "config.json").read_text())["id2label"] == {
        "0": "speech",
        "1": "singing",
        "2": "music",
    }
    audio = read(speech_files(fixtures_dir)[2])
    converted = FireRedVad.from_pretrained(tmp_path / "from-onnx")
    assert np.array_equal(
        converted.speech_probabilities(audio, SAMPLING_RATE), vad.speech_probabilities(audio, SAMPLING_RATE)
    )


def test_remote_code_in_a_fresh_process(vad, tmp_path, fixtures_dir):
    """A saved FireRedVAD directory loads with transformers' Auto classes where fireredasr_hf cannot be imported."""
    vad.save_pretrained(tmp_path / "vad")
    audio = read(speech_files(fixtures_dir)[0])
    features = vad.features(audio, SAMPLING_RATE)
    np.save(tmp_path / "features.npy", features)
    np.save(tmp_path / "expected.npy", vad.frame_probabilities(features))
    from conftest import run_without_the_package

    result = run_without_the_package(
        f"""
        import numpy as np, torch
        from transformers import AutoFeatureExtractor, AutoModelForAudioFrameClassification
        model = AutoModelForAudioFrameClassification.from_pretrained({str(tmp_path / "vad")!r}, trust_remote_code=True)
        AutoFeatureExtractor.from_pretrained({str(tmp_path / "vad")!r}, trust_remote_code=True)
        features = torch.from_numpy(np.load({str(tmp_path / "features.npy")!r}))[None]
        with torch.no_grad():
            probabilities = torch.sigmoid(model(features).logits[0]).numpy()
        print("ERROR=", float(np.abs(probabilities - np.load({str(tmp_path / "expected.npy")!r})).max()))
        """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.split("ERROR=")[1]) <= 1e-6


def test_missing_default_model_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "converted"))
    monkeypatch.delenv("FIREREDASR_HF_VAD_MODEL", raising=False)
    with pytest.raises(ModelResolutionError) as error:
        FireRedVad.from_pretrained()
    message = str(error.value)
    assert "hf download FireRedTeam/FireRedVAD --include 'VAD/*'" in message
    assert "--vad-model DIR" in message and "FIREREDASR_HF_VAD_MODEL" in message and "--vad silero" in message
    with pytest.raises(ModelResolutionError, match="holds no original FireRedVAD"):
        FireRedVad.from_pretrained(tmp_path)


def test_hub_repository_is_converted_once_and_found_offline(original_dir, tmp_path, monkeypatch, fixtures_dir):
    from huggingface_hub import HfApi, constants
    from test_hub import SHA, FakeHub

    from fireredasr_hf import hub

    fake = FakeHub(tmp_path / "hf-cache")
    monkeypatch.setattr(HfApi, "model_info", lambda api, repo_id, **kw: fake.model_info(api, repo_id, **kw))
    monkeypatch.setattr(hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "converted"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    fake.add("FireRedTeam/FireRedVAD", original_dir, extra={"README.md": fixtures_dir / "README.md"})

    audio = read(speech_files(fixtures_dir)[0])
    online = FireRedVad.from_pretrained("FireRedTeam/FireRedVAD")
    assert {name for _, name in fake.downloads} == {"VAD/model.pth.tar", "VAD/cmvn.ark"}
    entry = tmp_path / "converted" / "hub" / "models--FireRedTeam--FireRedVAD" / SHA / "VAD"
    assert json.loads((entry / "config.json").read_text())["model_type"] == "fireredvad"

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    shutil.rmtree(tmp_path / "hf-cache")  # the originals are gone: our conversion is found through refs.json
    offline = FireRedVad.from_pretrained("FireRedTeam/FireRedVAD")
    assert offline.detect(audio, SAMPLING_RATE) == online.detect(audio, SAMPLING_RATE)
    with pytest.raises(ModelResolutionError, match="--include 'AED/\\*'"):
        FireRedAudioEventDetector.from_pretrained("FireRedTeam/FireRedVAD")


def test_onnx_directory_without_onnx_names_the_extra(vad_dir, tmp_path, monkeypatch, fixtures_dir):
    """The released ONNX files need the onnx package: without it, loading them (and the command line that was given
    them) says which extra installs it instead of failing with a traceback."""
    import os
    import subprocess
    import sys

    from fireredasr_hf import extras
    from fireredasr_hf.extras import MissingDependencyError

    real_importable = extras._importable
    monkeypatch.setattr(extras, "_importable", lambda module: module != "onnx" and real_importable(module))
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "converted"))
    with pytest.raises(MissingDependencyError, match=r"onnx \(not installed\): pip install 'fireredasr-hf\[vad\]'"):
        FireRedVad.from_pretrained(vad_dir)

    # The command line, in a process where `import onnx` fails.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['onnx'] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    env["FIREREDASR_HF_CACHE"] = str(tmp_path / "converted")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fireredasr_hf",
            "transcribe",
            "--model",
            str(fixtures_dir / "aed-tiny"),
            "--vad-model",
            str(vad_dir),
            str(fixtures_dir / "audio" / "p01.wav"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "pip install 'fireredasr-hf[vad]'" in result.stderr
