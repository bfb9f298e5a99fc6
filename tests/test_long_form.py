"""Long audio through FireRedAsrPipeline: VAD segmentation, batched decoding, joined text and segment timestamps.

The recordings are the fixture utterances in turn, 0.5-2 s of digital silence apart. A segment is right when its
boundaries are within 0.3 s of the utterance's voice (the clip's frames above -50 dBFS) and its text is what the
model gives for the utterance alone. The tiny fixture AED is over-fitted to the exact clips: cutting or padding a
clip by 0.2 s changes its transcript for about half of them, so text agreement with the clip alone is checked (slow
test) with a copy fine-tuned on clips with random margins; with the fixture model itself the default tests check
that every segment's text is what the model gives for that segment's audio alone.
"""

import hashlib
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from fireredasr_hf.pipeline_fireredasr import FireRedAsrPipeline, join_segment_texts
from fireredasr_hf.vad import EnergyVad, SpeechSegment, VoiceActivityDetector

SAMPLING_RATE = 16000
UTTERANCES = [f"p{index:02d}" for index in range(1, 11)]
TOLERANCE_S = 0.3


@pytest.fixture(scope="module")
def clips(fixtures_dir):
    return {uttid: soundfile.read(fixtures_dir / "audio" / f"{uttid}.wav", dtype="float32")[0] for uttid in UTTERANCES}


def build_pipeline(model_dir):
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=str(model_dir), pipeline_class=FireRedAsrPipeline)


@pytest.fixture(scope="module")
def aed(converted_aed_dir):
    return build_pipeline(converted_aed_dir)


def voice_extent(clip: np.ndarray) -> tuple[int, int]:
    """First and last sample (exclusive) of the clip's 10 ms frames louder than -50 dBFS."""
    frames = clip[: len(clip) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.flatnonzero(10 * np.log10(np.mean(frames**2, axis=1) + 1e-20) > -50)
    return int(loud[0]) * 160, (int(loud[-1]) + 1) * 160


def make_recording(clips: dict, total_s: float, seed: int = 0):
    """The clips in turn, 0.5-2 s of silence apart, `total_s` long. Returns the audio and, per utterance, its
    uttid and the (start, end) of its voice in seconds."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(round(total_s * SAMPLING_RATE), dtype=np.float32)
    truth = []
    position = round(rng.uniform(0.5, 2.0) * SAMPLING_RATE)
    for index in range(len(audio)):
        uttid = UTTERANCES[index % len(UTTERANCES)]
        clip = clips[uttid]
        if position + len(clip) > len(audio):
            break
        audio[position : position + len(clip)] = clip
        first, last = voice_extent(clip)
        truth.append((uttid, (position + first) / SAMPLING_RATE, (position + last) / SAMPLING_RATE))
        position += len(clip) + round(rng.uniform(0.5, 2.0) * SAMPLING_RATE)
    return audio, truth


def boundary_errors(chunks, truth) -> list[float]:
    assert len(chunks) == len(truth), "one segment per utterance expected"
    return [
        max(abs(chunk["timestamp"][0] - start), abs(chunk["timestamp"][1] - end))
        for chunk, (_, start, end) in zip(chunks, truth)
    ]


def decode_alone(asr, audio: np.ndarray) -> str:
    features = asr.feature_extractor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    with torch.no_grad():
        return asr.tokenizer.batch_decode(asr.model.generate(**features), skip_special_tokens=True)[0]


def test_long_recording_is_cut_at_the_utterances_and_decoded_in_batches(aed, clips):
    audio, truth = make_recording(clips, total_s=75.0)
    output = aed(audio, return_timestamps=True, batch_size=8, max_segment_s=30)
    chunks = output["chunks"]
    assert max(boundary_errors(chunks, truth)) <= TOLERANCE_S
    # Every segment reads as its own audio decoded alone, in order, whatever the batch it was decoded in.
    for chunk in chunks:
        start, end = chunk["timestamp"]
        samples = audio[round(start * SAMPLING_RATE) : round(end * SAMPLING_RATE)]
        assert chunk["text"] == decode_alone(aed, samples)
    assert output["text"] == join_segment_texts([chunk["text"] for chunk in chunks])
    # The same text without timestamps (the recording is longer than max_segment_s, so it is segmented anyway).
    assert aed(audio, batch_size=3, max_segment_s=30) == {"text": output["text"]}


class FixedVad(VoiceActivityDetector):
    def __init__(self, segments):
        self.segments = segments
        self.calls = 0

    def detect(self, audio, sampling_rate):
        self.calls += 1
        return [SpeechSegment(start, end) for start, end in self.segments]


def test_segments_are_featurized_only_as_the_batches_are_decoded(aed, clips, monkeypatch):
    """Memory is bounded by the segment batch: features of later segments do not exist while a batch decodes."""
    audio, truth = make_recording(clips, total_s=40.0, seed=1)
    events = []
    features, generate = aed._features, aed.model.generate

    def spy_features(samples):
        events.append("features")
        return features(samples)

    def spy_generate(**kwargs):
        events.append(("generate", len(kwargs["input_features"])))
        return generate(**kwargs)

    monkeypatch.setattr(aed, "_features", spy_features)
    monkeypatch.setattr(aed.model, "generate", spy_generate)
    detector = FixedVad([(start, end) for _, start, end in truth])
    output = aed(audio, return_timestamps=True, vad=detector, batch_size=3, num_beams=1)

    assert len(output["chunks"]) == len(truth) == 8
    # Each batch is decoded as soon as its segments (and no more) are featurized.
    assert events == (["features"] * 3 + [("generate", 3)]) * 2 + ["features"] * 2 + [("generate", 2)]


def test_the_trained_limit_decides_when_to_segment(aed, clips, monkeypatch):
    audio = np.concatenate([np.zeros(SAMPLING_RATE, np.float32), clips["p01"], np.zeros(2 * SAMPLING_RATE, np.float32)])
    detector = FixedVad([(1.0, 3.1)])
    assert aed(audio, vad=detector)["text"] == decode_alone(aed, audio)  # 5.4 s: within the 60 s limit
    assert detector.calls == 0
    monkeypatch.setattr(aed.model.config, "max_audio_seconds", 4.0)
    chunks = aed(audio, vad=detector, return_timestamps=True)["chunks"]
    assert detector.calls == 1
    segment = audio[SAMPLING_RATE : round(3.1 * SAMPLING_RATE)]
    assert chunks == [{"text": decode_alone(aed, segment), "timestamp": (1.0, 3.1)}]


def test_speech_without_pauses_is_cut_within_max_segment(aed, clips):
    audio = np.concatenate([clips[uttid] for uttid in UTTERANCES[:6]])  # 18 s of continuous speech
    output = aed(audio, return_timestamps=True, vad=EnergyVad(), max_segment_s=6, num_beams=1, batch_size=4)
    spans = [chunk["timestamp"] for chunk in output["chunks"]]
    assert len(spans) >= 3
    assert all(0 < end - start <= 6.0 for start, end in spans)
    assert all(previous[1] <= start for previous, (start, _) in itertools.pairwise(spans))
    assert spans[0][0] < 0.1 and spans[-1][1] > len(audio) / SAMPLING_RATE - 0.5


# ---------------------------------------------------------------------------------------------------------------
# Slow: the 10-minute acceptance test and the memory measurement.


def train_boundary_robust_aed(source_dir, output_dir, clips, texts, steps=200, seed=0):
    """Fine-tunes the tiny AED on the fixture clips with random margins (0-0.7 s of the clip's own silence or
    digital silence on each side, sometimes faint noise), so that its transcripts do not depend on where a
    segment starts and ends."""
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    processor = AutoProcessor.from_pretrained(source_dir)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(source_dir)
    model.config.dropout = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0

    def with_random_margins(clip):
        first, last = voice_extent(clip)
        lead, tail = (round(rng.uniform(0, 0.7) * SAMPLING_RATE) for _ in range(2))
        audio = np.concatenate(
            [
                np.zeros(max(0, lead - first), np.float32),
                clip[max(0, first - lead) : last + tail],
                np.zeros(max(0, last + tail - len(clip)), np.float32),
            ]
        )
        if rng.random() < 0.5:
            audio = audio + rng.standard_normal(len(audio)).astype(np.float32) * np.float32(
                10 ** (rng.uniform(-80, -55) / 20)
            )
        return audio

    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        inputs = processor(
            [with_random_margins(clips[uttid]) for uttid in UTTERANCES],
            text=[texts[uttid] for uttid in UTTERANCES],
            sampling_rate=SAMPLING_RATE,
            return_tensors="pt",
        )
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)


@pytest.fixture(scope="module")
def robust_aed_dir(request, converted_aed_dir, clips, fixtures_dir):
    """The boundary-robust tiny AED, trained once (about 3 minutes on 2 busy cores) and kept in pytest's cache."""
    from fireredasr_hf.transcript_io import read_kaldi_text

    digest = hashlib.sha256((converted_aed_dir / "model.safetensors").read_bytes()).hexdigest()[:12]
    cache_dir = request.config.cache.mkdir(f"fireredasr-boundary-robust-aed-{digest}")
    if not (cache_dir / "config.json").is_file():
        texts = read_kaldi_text(fixtures_dir / "audio" / "text")
        train_boundary_robust_aed(converted_aed_dir, cache_dir, clips, texts)
    return cache_dir


@pytest.mark.slow
def test_ten_minute_recording_acceptance(robust_aed_dir, clips, capsys):
    asr = build_pipeline(robust_aed_dir)
    alone = {uttid: decode_alone(asr, clip) for uttid, clip in clips.items()}
    audio, truth = make_recording(clips, total_s=600.0, seed=2)
    output = asr(audio, return_timestamps=True, batch_size=8)
    errors = boundary_errors(output["chunks"], truth)
    agreement = [chunk["text"] == alone[uttid] for chunk, (uttid, _, _) in zip(output["chunks"], truth)]
    with capsys.disabled():
        print(
            f"\n10 min, {len(truth)} utterances: boundary error max {max(errors):.3f} s, mean {np.mean(errors):.3f} s; "
            f"text equal to the utterance alone for {np.mean(agreement):.1%}"
        )
    assert max(errors) <= TOLERANCE_S
    assert np.mean(agreement) >= 0.9


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading, time, tracemalloc
    import numpy as np, torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[4])
    from test_long_form import build_pipeline, make_recording, clips_from

    def rss_kib():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    clips = clips_from(sys.argv[2])
    asr = build_pipeline(sys.argv[1])
    asr(make_recording(clips, 60.0)[0], return_timestamps=True, batch_size=8, num_beams=1)  # warm-up, VAD loaded
    audio, truth = make_recording(clips, float(sys.argv[3]))
    peak, running = [rss_kib()], True

    def sample():
        while running:
            peak.append(max(peak[-1], rss_kib()))
            time.sleep(0.005)

    before = peak[0]
    sampler = threading.Thread(target=sample)
    sampler.start()
    tracemalloc.start()
    output = asr(audio, return_timestamps=True, batch_size=8, num_beams=1)
    traced_peak = tracemalloc.get_traced_memory()[1]
    running = False
    sampler.join()
    print(json.dumps({
        "rss_growth_kib": peak[-1] - before, "traced_peak_kib": traced_peak // 1024,
        "audio_kib": audio.nbytes // 1024, "segments": len(output["chunks"]),
    }))
    """
)


def clips_from(fixtures_audio_dir):
    return {uttid: soundfile.read(f"{fixtures_audio_dir}/{uttid}.wav", dtype="float32")[0] for uttid in UTTERANCES}


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_recording_length(converted_aed_dir, fixtures_dir, tmp_path, capsys):
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    measured = {}
    for minutes in (2, 10):
        completed = subprocess.run(
            [
                sys.executable,
                str(script),
                str(converted_aed_dir),
                str(fixtures_dir / "audio"),
                str(60.0 * minutes),
                str(Path(__file__).parent),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        measured[minutes] = json.loads(completed.stdout.strip().splitlines()[-1])
    with capsys.disabled():
        print(f"\npeak RSS growth while transcribing: {measured}")
    # A float32 16 kHz input is not copied and features exist for one batch of segments at a time, so 10 minutes
    # need no more than 2: one copy of the waveform would add 30 MB. numpy's allocations (tracemalloc) are exact;
    # the resident size varies by ~10 MB from run to run.
    assert measured[10]["traced_peak_kib"] - measured[2]["traced_peak_kib"] <= 4 * 1024, measured
    assert measured[10]["rss_growth_kib"] - measured[2]["rss_growth_kib"] <= 24 * 1024, measured


def test_progress_callback_reports_each_decoded_segment(aed, clips):
    audio, truth = make_recording(clips, total_s=40.0, seed=1)
    detector = FixedVad([(start, end) for _, start, end in truth])
    reports = []
    options = {"vad": detector, "return_timestamps": True, "batch_size": 3, "num_beams": 1}
    output = aed(audio, **options, progress_callback=lambda *report: reports.append(report))
    # Segments known, then one report per decoded segment, in order; the result is unchanged.
    assert reports == [(0, 8)] + [(done, 8) for done in range(1, 9)]
    assert output == aed(audio, **options)

    # A list input reports each input's segments; silence reports a total of 0 and nothing else.
    reports.clear()
    silence = np.zeros(3 * SAMPLING_RATE, dtype=np.float32)
    aed(
        [clips["p02"], silence],
        vad=EnergyVad(),
        return_timestamps=True,
        batch_size=2,
        num_beams=1,
        progress_callback=lambda *report: reports.append(report),
    )
    assert sorted(reports) == [(0, 0), (0, 1), (1, 1)]
    assert reports.index((0, 1)) < reports.index((1, 1))

    with pytest.raises(ValueError, match="progress_callback must be callable"):
        aed(audio, progress_callback="print")
