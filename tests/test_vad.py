import itertools
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile

from fireredasr_hf.audio import resample
from fireredasr_hf.vad import (
    EnergyVad,
    SileroVad,
    SpeechSegment,
    VoiceActivityDetector,
    frame_energy_db,
    split_into_segments,
)

SAMPLING_RATE = 16000
TOLERANCE_S = 0.3


def speech_extent(clip: np.ndarray) -> tuple[int, int]:
    """First and last sample (exclusive) of the 10 ms frames louder than -50 dBFS: where the voice is."""
    frames = clip[: len(clip) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.flatnonzero(10 * np.log10(np.mean(frames**2, axis=1) + 1e-20) > -50)
    return int(loud[0]) * 160, (int(loud[-1]) + 1) * 160


def make_recording(fixtures_dir: Path, total_s: float, seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The fixture utterances in turn, 0.5-2 s of silence apart, over -60 dBFS white noise, `total_s` long.

    Returns the audio and the true (start, end) of the voice in every utterance, in seconds.
    """
    clips = [soundfile.read(path, dtype="float32")[0] for path in sorted((fixtures_dir / "audio").glob("p*.wav"))]
    rng = np.random.default_rng(seed)
    audio = rng.standard_normal(round(total_s * SAMPLING_RATE), dtype=np.float32) * np.float32(10 ** (-60 / 20))
    truth = []
    position = round(rng.uniform(0.5, 2.0) * SAMPLING_RATE)
    for index in range(len(audio)):
        clip = clips[index % len(clips)]
        if position + len(clip) > len(audio):
            break
        audio[position : position + len(clip)] += clip
        first, last = speech_extent(clip)
        truth.append(((position + first) / SAMPLING_RATE, (position + last) / SAMPLING_RATE))
        position += len(clip) + round(rng.uniform(0.5, 2.0) * SAMPLING_RATE)
    return audio, truth


def max_boundary_error(segments: list[SpeechSegment], truth: list[tuple[float, float]]) -> float:
    """Largest distance between a detected and a true utterance boundary.

    Detected segments less than 0.45 s apart are joined first: the mixed Mandarin/English clips have a 0.3-0.4 s
    pause inside, while utterances are at least 0.8 s apart (0.5 s of silence plus the clips' own margins).
    """
    joined: list[list[float]] = []
    for segment in segments:
        if joined and segment.start - joined[-1][1] < 0.45:
            joined[-1][1] = segment.end
        else:
            joined.append([segment.start, segment.end])
    assert len(joined) == len(truth), f"found {len(joined)} utterances, expected {len(truth)}"
    return max(
        max(abs(start - true_start), abs(end - true_end)) for (start, end), (true_start, true_end) in zip(joined, truth)
    )


@pytest.fixture(scope="module")
def silero():
    pytest.importorskip("silero_vad")
    return SileroVad()


@pytest.fixture(scope="module")
def one_minute(fixtures_dir):
    return make_recording(fixtures_dir, 60, seed=0)


# --- SpeechSegment and the detector interface ---------------------------------------------------------------------


def test_speech_segment_checks_its_bounds():
    assert SpeechSegment(1, 2.5).duration == 1.5
    assert isinstance(SpeechSegment(np.float32(1), np.int64(2)).start, float)
    for start, end in [(-0.1, 1.0), (2.0, 1.0), (0.0, float("inf")), (float("nan"), 1.0)]:
        with pytest.raises(ValueError, match="0 <= start <= end"):
            SpeechSegment(start, end)


class ConstantDetector(VoiceActivityDetector):
    def detect(self, audio, sampling_rate):
        self.seen = (audio.dtype, sampling_rate)
        return [SpeechSegment(2.0, 3.0), SpeechSegment(0.0, 1.0)]


def test_detector_base_class_validates_input_and_sorts():
    detector = ConstantDetector()
    assert detector(np.zeros(100, dtype=np.float64), 16000) == [SpeechSegment(0.0, 1.0), SpeechSegment(2.0, 3.0)]
    assert detector.seen == (np.float32, 16000)
    assert detector(np.zeros(0, dtype=np.float32), 16000) == []
    with pytest.raises(ValueError, match="mono"):
        detector(np.zeros((100, 2), dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="int16 / 32768"):
        detector(np.zeros(100, dtype=np.int16), 16000)
    with pytest.raises(ValueError, match="sampling_rate"):
        detector(np.zeros(100, dtype=np.float32), 0)


# --- EnergyVad --------------------------------------------------------------------------------------------------------


def test_frame_energy_db_keeps_a_short_last_frame():
    audio = np.concatenate([np.ones(160, np.float32), np.zeros(160, np.float32), np.full(80, 0.1, np.float32)])
    np.testing.assert_allclose(frame_energy_db(audio, 160), [0.0, -200.0, -20.0], atol=1e-4)


def test_energy_vad_finds_utterance_boundaries(one_minute):
    audio, truth = one_minute
    error = max_boundary_error(EnergyVad()(audio, SAMPLING_RATE), truth)
    assert error < 0.1  # measured 0.059 s: the 50 ms padding plus one 10 ms frame


def test_energy_vad_ignores_noise_and_short_clicks():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(SAMPLING_RATE * 5, dtype=np.float32) * np.float32(1e-3)  # -60 dBFS
    audio[SAMPLING_RATE : SAMPLING_RATE + 800] = 0.5  # 50 ms click
    assert EnergyVad()(audio, SAMPLING_RATE) == []
    audio[2 * SAMPLING_RATE : 3 * SAMPLING_RATE] = 0.1
    (segment,) = EnergyVad(speech_pad_s=0.0)(audio, SAMPLING_RATE)
    assert segment == SpeechSegment(2.0, 3.0)


def test_energy_vad_on_ten_minutes_is_fast_and_allocates_little(fixtures_dir):
    audio, truth = make_recording(fixtures_dir, 600, seed=1)
    tracemalloc.start()
    segments = EnergyVad()(audio, SAMPLING_RATE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert max_boundary_error(segments, truth) < 0.1
    assert peak < 0.05 * audio.nbytes, f"EnergyVad allocated {peak} bytes for a {audio.nbytes}-byte recording"


# --- SileroVad --------------------------------------------------------------------------------------------------------


def test_silero_keeps_torch_thread_count(monkeypatch):
    pytest.importorskip("silero_vad")
    import torch

    # Importing silero_vad afresh runs its `torch.set_num_threads(1)` again.
    for name in [name for name in sys.modules if name.split(".")[0] == "silero_vad"]:
        monkeypatch.delitem(sys.modules, name)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        SileroVad()
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_silero_rejects_bad_settings():
    with pytest.raises(ValueError, match="threshold"):
        SileroVad(threshold=1.5)
    with pytest.raises(ValueError, match="min_silence_s"):
        SileroVad(min_silence_s=-1)


def test_silero_finds_utterance_boundaries(silero, one_minute):
    audio, truth = one_minute
    error = max_boundary_error(silero(audio, SAMPLING_RATE), truth)
    assert error < TOLERANCE_S  # measured 0.127 s


def test_silero_resamples_other_rates(silero, one_minute):
    audio, truth = one_minute
    audio_44k = resample(audio[: 20 * SAMPLING_RATE], SAMPLING_RATE, 44100)
    truth = [(start, end) for start, end in truth if end < 20]
    segments = [segment for segment in silero(audio_44k, 44100) if segment.start < truth[-1][1] + 0.4]
    assert max_boundary_error(segments, truth) < TOLERANCE_S


def test_silero_finds_no_speech_in_noise(silero):
    rng = np.random.default_rng(0)
    assert silero(rng.standard_normal(SAMPLING_RATE * 3, dtype=np.float32) * np.float32(1e-3), SAMPLING_RATE) == []


def resident_bytes(key: str) -> int:
    with open("/proc/self/status") as file:
        return next(int(line.split()[1]) * 1024 for line in file if line.startswith(key))


@pytest.mark.parametrize("minutes", [3, pytest.param(10, marks=pytest.mark.slow)])
def test_silero_on_long_recordings_keeps_boundaries_and_memory(silero, fixtures_dir, minutes):
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to measure peak memory")
    silero(np.zeros(SAMPLING_RATE, np.float32), SAMPLING_RATE)  # first calls allocate the model's buffers
    audio, truth = make_recording(fixtures_dir, 60 * minutes, seed=1)
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")  # resets the peak resident set size (VmHWM) of this process
    before = resident_bytes("VmRSS:")
    segments = silero(audio, SAMPLING_RATE)
    peak_growth = resident_bytes("VmHWM:") - before
    # Measured for 10 minutes on 2 CPU cores: 0.140 s max boundary error, 3.4-9.3 s (by machine load), 0.6 MiB
    # peak growth for a 36.6 MiB recording.
    assert max_boundary_error(segments, truth) < TOLERANCE_S
    assert peak_growth < 0.2 * audio.nbytes, f"peak memory grew by {peak_growth} bytes for {audio.nbytes} of audio"


# --- split_into_segments ----------------------------------------------------------------------------------------------


def spans(chunks):
    return [(round(chunk.start, 3), round(chunk.end, 3)) for chunk in chunks]


def test_split_merges_close_regions_within_the_limit():
    regions = [SpeechSegment(0, 4), SpeechSegment(4.3, 8), SpeechSegment(8.2, 12), SpeechSegment(20, 25)]
    assert spans(split_into_segments(regions, max_segment_s=10)) == [(0, 8), (8.2, 12), (20, 25)]
    assert spans(split_into_segments(regions, max_segment_s=30)) == [(0, 12), (20, 25)]
    assert spans(split_into_segments(regions, max_segment_s=30, merge_gap_s=0.25)) == [(0, 4), (4.3, 12), (20, 25)]


def test_split_unions_overlapping_input():
    regions = [SpeechSegment(5, 9), SpeechSegment(0, 3), SpeechSegment(2, 4)]
    assert spans(split_into_segments(regions, merge_gap_s=0)) == [(0, 4), (5, 9)]
    assert spans(split_into_segments(iter(regions), merge_gap_s=0)) == [(0, 4), (5, 9)]


def test_split_cuts_long_regions_evenly_without_audio():
    chunks = split_into_segments([SpeechSegment(10, 80)], max_segment_s=30)
    assert spans(chunks) == [(10, 33.333), (33.333, 56.667), (56.667, 80)]


def test_split_cuts_at_the_quietest_point():
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(45 * SAMPLING_RATE) * 0.1).astype(np.float32)
    audio[10 * SAMPLING_RATE : int(10.5 * SAMPLING_RATE)] = 0  # too early: cuts fall in [15, 30] s
    audio[int(22.0 * SAMPLING_RATE) : int(22.3 * SAMPLING_RATE)] *= 0.01
    chunks = split_into_segments([SpeechSegment(0, 45)], audio=audio, sampling_rate=SAMPLING_RATE)
    assert len(chunks) == 2
    assert 22.0 < chunks[0].end < 22.3
    assert chunks[1].start == chunks[0].end and chunks[1].end == 45


def test_split_never_leaves_a_piece_shorter_than_min_segment():
    audio = np.ones(31 * SAMPLING_RATE, dtype=np.float32)
    audio[int(29.8 * SAMPLING_RATE) :] = 0  # quiet, but a cut there would leave less than min_segment_s
    region = SpeechSegment(0, 30.5)
    chunks = split_into_segments([region], min_segment_s=1.0, audio=audio, sampling_rate=SAMPLING_RATE)
    assert spans(chunks) == [(0, 29.5), (29.5, 30.5)]


def test_split_widens_short_chunks_into_silence():
    regions = [SpeechSegment(0.1, 0.4), SpeechSegment(5, 5.3), SpeechSegment(5.8, 5.95)]
    audio = np.zeros(6 * SAMPLING_RATE, dtype=np.float32)
    chunks = split_into_segments(regions, merge_gap_s=0.2, audio=audio, sampling_rate=SAMPLING_RATE)
    assert spans(chunks) == [(0, 1), (4.65, 5.65), (5.65, 6)]


def test_split_limits_every_chunk_on_a_long_recording(fixtures_dir):
    audio, _ = make_recording(fixtures_dir, 300, seed=2)
    regions = EnergyVad()(audio, SAMPLING_RATE)
    for max_segment_s in (10.0, 30.0):
        chunks = split_into_segments(regions, max_segment_s, merge_gap_s=2.0, audio=audio, sampling_rate=SAMPLING_RATE)
        assert all(chunk.duration <= max_segment_s + 1e-9 for chunk in chunks)
        assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))
        for region in regions:  # every bit of speech is inside a chunk
            covered = sum(max(0.0, min(c.end, region.end) - max(c.start, region.start)) for c in chunks)
            assert covered == pytest.approx(region.duration, abs=1e-6)
        assert len(chunks) < len(regions)  # regions were merged


def test_split_rejects_bad_arguments():
    with pytest.raises(ValueError, match="half of max_segment_s"):
        split_into_segments([], max_segment_s=10, min_segment_s=5)
    with pytest.raises(ValueError, match="together"):
        split_into_segments([], audio=np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="outside the recording"):
        split_into_segments([SpeechSegment(0, 2)], audio=np.zeros(SAMPLING_RATE, np.float32), sampling_rate=16000)
    with pytest.raises(TypeError, match="SpeechSegment"):
        split_into_segments([(0, 1)])
    assert split_into_segments([]) == []
