"""The pipeline's FireRedASR2 outputs: word chunks (Whisper's shape) offset by their VAD segment, the pause-keeping
setting, confidences per utterance, segment and word, and language-model fusion through `generate_kwargs`."""

from itertools import pairwise

import numpy as np
import pytest
import soundfile
from transformers import pipeline

import fireredasr_hf  # noqa: F401
from fireredasr_hf.vad import SpeechSegment

SAMPLING_RATE = 16000


@pytest.fixture(scope="module")
def asr2(converted_aed2_dir):
    return pipeline("automatic-speech-recognition", model=str(converted_aed2_dir))


@pytest.fixture(scope="module")
def aed(converted_aed_dir):
    return pipeline("automatic-speech-recognition", model=str(converted_aed_dir))


@pytest.fixture(scope="module")
def llm(converted_llm_dir):
    return pipeline("automatic-speech-recognition", model=str(converted_llm_dir))


@pytest.fixture(scope="module")
def clips(fixtures_dir):
    return {
        uttid: soundfile.read(fixtures_dir / "audio" / f"{uttid}.wav", dtype="float32")[0]
        for uttid in ("p01", "p02", "p04", "p06")
    }


class Segments:
    def __init__(self, *segments):
        self.segments = segments

    def __call__(self, audio, sampling_rate):
        return [SpeechSegment(start, end) for start, end in self.segments]


def whole(audio, sampling_rate):
    return [SpeechSegment(0.0, len(audio) / sampling_rate)]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLING_RATE), np.float32)


def test_word_chunks_of_long_audio_are_those_of_each_segment_offset_by_its_start(asr2, clips):
    audio = np.concatenate([silence(1.0), clips["p02"], silence(1.5), clips["p04"], silence(0.5)])
    first = (1.0, 1.0 + len(clips["p02"]) / SAMPLING_RATE)
    second = (first[1] + 1.5, first[1] + 1.5 + len(clips["p04"]) / SAMPLING_RATE)
    output = asr2(audio, return_timestamps="word", vad=Segments(first, second), batch_size=2)
    expected = []
    for start, end in (first, second):
        alone = asr2(
            audio[round(start * SAMPLING_RATE) : round(end * SAMPLING_RATE)], return_timestamps="word", vad=whole
        )
        expected += [
            {**chunk, "timestamp": (round(start + chunk["timestamp"][0], 3), round(start + chunk["timestamp"][1], 3))}
            for chunk in alone["chunks"]
        ]
    assert output["chunks"] == expected
    assert [chunk["text"] for chunk in output["chunks"]] == [
        "turn", "on", "the", "light", "我", "们", "开", "会", "吧", "let", "us", "start", "the", "meeting",
    ]  # fmt: skip
    assert output["text"] == "turn on the light 我们开会吧 let us start the meeting"
    assert all(set(chunk) == {"text", "timestamp", "confidence"} for chunk in output["chunks"])
    starts = [chunk["timestamp"][0] for chunk in output["chunks"]]
    assert starts == sorted(starts) and starts[0] >= first[0] and starts[4] >= round(second[0], 3)
    assert 0 < output["confidence"] <= 1


def test_keep_pauses_only_moves_starts_later(asr2, clips):
    audio = clips["p01"]  # its alignment leaves a gap before one word, which the clamp removes
    reference = asr2(audio, return_timestamps="word", vad=whole)["chunks"]
    kept = asr2(audio, return_timestamps="word", vad=whole, keep_pauses=True)["chunks"]
    assert [chunk["text"] for chunk in kept] == [chunk["text"] for chunk in reference]
    assert [chunk["timestamp"][1] for chunk in kept] == [chunk["timestamp"][1] for chunk in reference]
    # The release's clamp makes every word start where the previous ended; without it some start later.
    assert all(a["timestamp"][1] == b["timestamp"][0] for a, b in pairwise(reference))
    assert all(k["timestamp"][0] >= r["timestamp"][0] for k, r in zip(kept, reference))
    assert any(k["timestamp"][0] > r["timestamp"][0] for k, r in zip(kept, reference))


def test_segment_chunks_and_confidence_options(asr2, aed, llm, clips):
    output = asr2(clips["p01"], return_timestamps=True, vad="energy")
    assert set(output) == {"text", "confidence", "chunks"}
    assert set(output["chunks"][0]) == {"text", "timestamp", "confidence"}
    assert "confidence" not in asr2(clips["p01"], return_confidence=False)
    # FireRedASR (v1) AED: no confidence unless asked, as the v1 release; the LLM has none.
    assert set(aed(clips["p01"])) == {"text"}
    assert 0 < aed(clips["p01"], return_confidence=True)["confidence"] <= 1
    with pytest.raises(ValueError, match="FireRedASR-LLM models give no confidence"):
        llm(clips["p01"], return_confidence=True)


def test_lm_weight_through_generate_kwargs(converted_aed2_dir, clips, tmp_path):
    """The per-call fusion weight reaches generate (an error here proves it: this model has no language model)."""
    asr = pipeline("automatic-speech-recognition", model=str(converted_aed2_dir))
    with pytest.raises(ValueError, match="needs a language model"):
        asr(clips["p01"], generate_kwargs={"lm_weight": 0.3})
    assert asr(clips["p01"], generate_kwargs={"lm_weight": 0.0})["text"] == "今天天气很好"
