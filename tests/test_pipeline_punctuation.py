"""The chain with word times: FireRedASR2-AED (CTC head) + FireRedPunc through the pipeline. Sentence chunks take
their times from their words' CTC alignment, word chunks carry the marks where FireRedASR2S's punctuation attaches
them, and the chain agrees with the reference system (FireRedASR2S `fireredasr2system.py`, run on the same tiny
models with the reference ASR and punctuation code)."""

import importlib.util
import re
import sys
import types
from itertools import pairwise

import numpy as np
import pytest
import soundfile as sf
from test_pipeline_word_timestamps import Segments, whole
from transformers import pipeline

import fireredasr_hf  # noqa: F401
from fireredasr_hf.pipeline_fireredasr import join_segment_texts

SAMPLING_RATE = 16000
SENTENCE_END = tuple("。？！.?!")
ANY_MARK = re.compile("[，。？！,.?!]$")
FULL_WIDTH = str.maketrans(",.?!", "，。？！")


@pytest.fixture(scope="module")
def asr2(converted_aed2_dir):
    return pipeline("automatic-speech-recognition", model=str(converted_aed2_dir))


def exact_time(sample: int) -> bool:
    """Whether the time of `sample` converts back to it both as the pipeline (round) and as the reference system
    (int) converts, and is a whole millisecond (the reference offsets words by whole milliseconds)."""
    seconds = sample / SAMPLING_RATE
    return int(seconds * SAMPLING_RATE) == sample and int(seconds * 1000) * 16 == sample


@pytest.fixture(scope="module")
def recording(fixtures_dir, tmp_path_factory):
    """Four utterances (Chinese, English, mixed) after pauses of about 1 s, as 16-bit PCM (exactly what the fixture
    files hold) in an array and a file, and their segments, on exact sample times."""
    pieces, segments, position = [], [], 0
    for uttid in ("p01", "p02", "p04", "p06"):
        clip = sf.read(fixtures_dir / "audio" / f"{uttid}.wav", dtype="float32")[0]
        clip = clip[: len(clip) - len(clip) % 16]
        pause = SAMPLING_RATE
        while not (exact_time(position + pause) and exact_time(position + pause + len(clip))):
            pause += 16
        pieces += [np.zeros(pause, np.float32), clip]
        segments.append(((position + pause) / SAMPLING_RATE, (position + pause + len(clip)) / SAMPLING_RATE))
        position += pause + len(clip)
    audio = np.concatenate(pieces)
    path = tmp_path_factory.mktemp("recording") / "recording.wav"
    sf.write(path, audio, SAMPLING_RATE, subtype="PCM_16")
    assert np.array_equal(sf.read(path, dtype="float32")[0], audio)
    return audio, Segments(*segments), path


def normalised(text: str) -> str:
    """A text without spaces, in lower case, with ASCII marks written full-width (how the release's rule-based fixes
    may write them differently)."""
    return text.replace(" ", "").lower().translate(FULL_WIDTH)


def test_sentences_take_their_times_from_their_words(asr2, converted_punc_dir, recording):
    audio, segments, _ = recording
    punctuation = str(converted_punc_dir)
    words = asr2(audio, return_timestamps="word", vad=segments)["chunks"]
    result = asr2(audio, return_timestamps=True, vad=segments, punctuation_model=punctuation)
    sentences = result["chunks"]
    assert len(sentences) > 4 and all(s["text"].endswith(SENTENCE_END) for s in sentences[:-1])
    # Each sentence spans whole words, from its first word's start to its last word's end.
    boundaries = {word["timestamp"][0] for word in words} | {word["timestamp"][1] for word in words}
    assert all(set(sentence["timestamp"]) <= boundaries for sentence in sentences)
    assert sentences[0]["timestamp"][0] == words[0]["timestamp"][0] > segments.segments[0][0]
    assert sentences[-1]["timestamp"][1] == words[-1]["timestamp"][1]
    assert all(a["timestamp"][1] <= b["timestamp"][0] for a, b in pairwise(sentences))
    unpunctuated = normalised("".join(s["text"] for s in sentences)).translate(str.maketrans("", "", "，。？！"))
    assert unpunctuated == "".join(word["text"] for word in words)
    # A sentence's confidence is its words' mean.
    assert all(0 < sentence["confidence"] <= 1 for sentence in sentences)

    # The same punctuated text with word chunks, and without timestamps (the same segments, no alignment).
    punctuated_words = asr2(audio, return_timestamps="word", vad=segments, punctuation_model=punctuation)
    assert punctuated_words["text"] == result["text"]
    untimed = asr2(audio, vad=segments, max_segment_s=5, punctuation_model=punctuation)
    assert untimed["text"] == result["text"] == join_segment_texts([s["text"] for s in sentences])


def test_word_chunks_carry_the_marks_of_their_sentences(asr2, converted_punc_dir, recording):
    audio, segments, _ = recording
    plain = asr2(audio, return_timestamps="word", vad=segments)["chunks"]
    result = asr2(audio, return_timestamps="word", vad=segments, punctuation_model=str(converted_punc_dir))
    words = result["chunks"]
    # The same words with the same times and confidences; only the text changes, by a mark and letter case.
    assert [{**w, "text": None} for w in words] == [{**w, "text": None} for w in plain]
    assert [ANY_MARK.sub("", w["text"]).lower() for w in words] == [w["text"] for w in plain]
    assert sum(bool(ANY_MARK.search(w["text"])) for w in words) > 5  # the tiny random model punctuates often
    # The sentences are the words up to each sentence end, written alike.
    sentences = asr2(audio, return_timestamps=True, vad=segments, punctuation_model=str(converted_punc_dir))["chunks"]
    grouped, current = [], []
    for word in words:
        current.append(word)
        if word["text"].endswith(SENTENCE_END):
            grouped.append(current)
            current = []
    grouped += [current] if current else []
    assert [(g[0]["timestamp"][0], g[-1]["timestamp"][1]) for g in grouped] == [s["timestamp"] for s in sentences]
    assert [join_segment_texts([w["text"] for w in g]).replace(" ", "") for g in grouped] == [
        s["text"].replace(" ", "") for s in sentences
    ]
    # English words after a mark are capitalised as in the sentence, and get ASCII marks between English words.
    english = [w["text"] for w in words if w["text"][0].isascii()]
    assert any(w[0].isupper() for w in english) and not any(mark in "".join(english) for mark in "，。？！")


def test_settings_of_the_pipeline_and_of_the_call_combine(converted_aed2_dir, converted_punc_dir, recording):
    """Punctuation given when the pipeline is built and timestamps per call (or the reverse) align the words too;
    `punctuation_model=False` turns it off for a call (segment chunks again)."""
    audio, segments, _ = recording
    built_with_punctuation = pipeline(
        "automatic-speech-recognition", model=str(converted_aed2_dir), punctuation_model=str(converted_punc_dir)
    )
    built_with_timestamps = pipeline(
        "automatic-speech-recognition", model=str(converted_aed2_dir), return_timestamps=True
    )
    first = built_with_punctuation(audio, return_timestamps=True, vad=segments)
    second = built_with_timestamps(audio, vad=segments, punctuation_model=str(converted_punc_dir))
    assert first == second and first["chunks"][0]["timestamp"][0] != segments.segments[0][0]
    off = built_with_punctuation(audio, return_timestamps=True, vad=segments, punctuation_model=False)
    assert [chunk["timestamp"] for chunk in off["chunks"]] == [
        (round(start, 3), round(end, 3)) for start, end in segments.segments
    ]


def test_models_without_a_ctc_head_keep_segment_times(converted_aed_dir, converted_punc_dir, recording):
    audio, segments, _ = recording
    asr = pipeline("automatic-speech-recognition", model=str(converted_aed_dir))
    result = asr(audio, return_timestamps=True, vad=segments, punctuation_model=str(converted_punc_dir))
    assert result["chunks"][0]["timestamp"][0] == round(segments.segments[0][0], 3)
    assert result["chunks"][-1]["timestamp"][1] == round(segments.segments[-1][1], 3)


# --- Against the reference system --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_system_module(fireredasr2):
    """FireRedASR2S's `fireredasr2system.py`, with its imports served by the reference ASR (PyPI fasr-asr-firered's
    `fireredasr2`) and punctuation (the shared reference's `fireredpunc`) code; VAD and language identification are
    stand-ins (the tests give the segments and turn LID off)."""
    from test_punctuation import REFERENCE_DIR, reference_class

    path = REFERENCE_DIR / "fireredasr2s" / "fireredasr2system.py"
    if not path.is_file():
        pytest.skip(f"the FireRedASR2S reference code is not in {REFERENCE_DIR}")

    class Unused:
        def __init__(self, *args, **kwargs):
            pass

    served = {
        "fireredasr2s": types.ModuleType("fireredasr2s"),
        "fireredasr2s.fireredasr2": types.SimpleNamespace(
            FireRedAsr2=fireredasr2.asr.FireRedAsr2, FireRedAsr2Config=fireredasr2.asr.FireRedAsr2Config
        ),
        "fireredasr2s.fireredpunc": types.SimpleNamespace(
            FireRedPunc=reference_class("FireRedPunc"), FireRedPuncConfig=reference_class("FireRedPuncConfig")
        ),
        "fireredasr2s.fireredlid": types.SimpleNamespace(FireRedLid=Unused, FireRedLidConfig=Unused),
        "fireredasr2s.fireredvad": types.SimpleNamespace(FireRedVad=Unused, FireRedVadConfig=Unused),
    }
    saved = {name: sys.modules.get(name) for name in served}
    sys.modules.update(served)
    try:
        spec = importlib.util.spec_from_file_location("reference_fireredasr2system", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module


@pytest.fixture(scope="module")
def reference_system(reference_system_module, fireredasr2, aed2_tiny_dir, original_punc_dir):
    """`FireRedAsr2System` with timestamps and punctuation on the tiny original models, without LID; `vad_segments`
    sets the segments its VAD step returns (None: no VAD, the whole file)."""
    from test_punctuation import reference_class

    module = reference_system_module
    asr_config = fireredasr2.asr.FireRedAsr2Config(use_gpu=False, return_timestamp=True)
    punc_config = reference_class("FireRedPuncConfig")(use_gpu=False)
    system = module.FireRedAsr2System.__new__(module.FireRedAsr2System)
    system.asr = fireredasr2.asr.FireRedAsr2.from_pretrained("aed", str(aed2_tiny_dir), asr_config)
    system.punc = reference_class("FireRedPunc").from_pretrained(str(original_punc_dir), punc_config)
    system.lid = None

    def run(path, vad_segments=None):
        system.vad = types.SimpleNamespace(detect=lambda _: ({"timestamps": vad_segments}, None))
        system.config = module.FireRedAsr2SystemConfig(
            asr_config=asr_config, punc_config=punc_config, enable_vad=vad_segments is not None, enable_lid=False
        )
        return system.process(str(path))

    return run


def assert_same_words(words: list[dict], reference: list[dict]) -> None:
    """Our punctuated words are the reference system's (unpunctuated, times in truncated milliseconds)."""
    assert [ANY_MARK.sub("", word["text"]).lower() for word in words] == [word["text"] for word in reference]
    for word, expected in zip(words, reference):
        assert abs(word["timestamp"][0] * 1000 - expected["start_ms"]) <= 1
        assert abs(word["timestamp"][1] * 1000 - expected["end_ms"]) <= 1


def clauses_of(words: list[dict]) -> list[dict]:
    """The release's punctuated pieces: words up to each mark, commas included."""
    clauses, current = [], []
    for word in words:
        current.append(word)
        if ANY_MARK.search(word["text"]) or word is words[-1]:
            text = "".join(w["text"] for w in current)
            clauses.append({"text": text, "start": current[0]["timestamp"][0], "end": current[-1]["timestamp"][1]})
            current = []
    return clauses


@pytest.mark.parametrize("uttid", [f"p{index:02d}" for index in range(1, 11)])
def test_one_segment_equals_the_reference_system(reference_system, asr2, converted_punc_dir, fixtures_dir, uttid):
    """A recording decoded whole (the reference system without VAD): the same words and times, the same marks after
    the same words, and the reference's punctuated pieces (cut after every mark) with its times."""
    path = fixtures_dir / "audio" / f"{uttid}.wav"
    expected = reference_system(path)
    result = asr2(str(path), return_timestamps="word", vad=whole, punctuation_model=str(converted_punc_dir))
    words = result["chunks"]
    assert_same_words(words, expected["words"])
    # Pieces: the same text and marks (the reference fixes each piece alone, so letter case and ASCII marks may
    # differ), the same times inside the recording; the reference stretches the first and last to the segment.
    clauses = clauses_of(words)
    sentences = expected["sentences"]
    assert [normalised(c["text"]) for c in clauses] == [normalised(s["text"]) for s in sentences]
    assert normalised(result["text"]) == normalised(expected["text"])
    for index, (clause, sentence) in enumerate(zip(clauses, sentences)):
        if index > 0:
            assert abs(clause["start"] * 1000 - sentence["start_ms"]) <= 1
        if index < len(sentences) - 1:
            assert abs(clause["end"] * 1000 - sentence["end_ms"]) <= 1
    assert sentences[0]["start_ms"] == 0 and clauses[0]["start"] >= 0


def test_segments_give_the_reference_systems_words(reference_system, asr2, converted_punc_dir, recording):
    """Several VAD segments: the same words at the same times as the reference system (the punctuation differs
    where the model sees neighbouring segments together, which the reference punctuates one by one)."""
    _, segments, path = recording
    expected = reference_system(path, vad_segments=list(segments.segments))
    words = asr2(str(path), return_timestamps="word", vad=segments, punctuation_model=str(converted_punc_dir))
    words = words["chunks"]
    assert_same_words(words, expected["words"])
