"""FireRedPunc converted to a stock BertForTokenClassification, against the release's `FireRedPuncBert` and text
restoration (FireRedASR2S `fireredpunc/`, imported from the shared reference copy) on a tiny random model built in the
release's layout: logits, punctuated texts, texts with timestamps; transformers' own token-classification pipeline;
sentence chunks; conversion and resolution."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES_DIR, build_original_punc
from transformers import AutoTokenizer, pipeline

from fireredasr_hf.conversion import ConversionError, convert_checkpoint, detect_variant
from fireredasr_hf.conversion.common import UnsafeCheckpointError
from fireredasr_hf.hub import ModelResolutionError, resolve_punctuation_model
from fireredasr_hf.punctuation import (
    FireRedPunctuator,
    PunctuatedWord,
    fix_text,
    group_sentences,
    punctuated_word_chunks,
)

REFERENCE_DIR = Path(os.environ.get("FIREREDASR_REFERENCE", FIXTURES_DIR.parent / "reference")) / "FireRedASR2S"
ALL_MARKS = set("，。？！")
TEXTS = [
    "今天天气很好 hello world 我想去北京看看长城",
    "turn on the light 2024年10月1日 100点 see you tomorrow",
    "Speech Recognition IS a lot of fun",  # upper case: the release lower-cases
    "蜉蝣你好世界",  # characters the vocabulary lacks ([UNK], put back)
    "i am ok i'm fine 你好",
    "speech recognition is a lot of fun " * 4 + "我们开会吧" * 5,  # longer than the 39-token window
]


def reference_class(name: str):
    package_dir = REFERENCE_DIR / "fireredasr2s"
    if not (package_dir / "fireredpunc" / "punc.py").is_file():
        pytest.skip(f"the FireRedASR2S reference code is not in {REFERENCE_DIR}")
    pytest.importorskip("kaldiio")  # not needed by fireredpunc, but a sign the reference extras are installed
    if str(package_dir) not in sys.path:
        sys.path.insert(0, str(package_dir))
    import fireredpunc.punc

    return getattr(fireredpunc.punc, name)


@pytest.fixture(scope="module")
def reference(original_punc_dir):
    FireRedPunc, FireRedPuncConfig = reference_class("FireRedPunc"), reference_class("FireRedPuncConfig")
    return FireRedPunc.from_pretrained(str(original_punc_dir), FireRedPuncConfig(use_gpu=False))


@pytest.fixture(scope="module")
def punctuator(converted_punc_dir):
    return FireRedPunctuator.from_pretrained(converted_punc_dir)


def reference_logits(reference, text):
    padded, lengths, tokens = reference.model_io.text2tensor([text])
    with torch.no_grad():
        return reference.model.forward_model(padded, lengths)[0], tokens[0]


# --- Parity with the release ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_logits_match_the_release(reference, punctuator, text):
    expected, tokens = reference_logits(reference, text)
    assert punctuator.tokenize(text) == tokens
    (ours,) = punctuator.logits([tokens])
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max().item() <= 1e-5  # measured <= 7.5e-8


def test_punctuated_texts_match_the_release(reference, punctuator):
    expected = [result["punc_text"] for result in reference.process(TEXTS)]
    assert punctuator(TEXTS) == expected  # one batch
    assert [punctuator(text) for text in TEXTS] == expected  # one at a time
    assert punctuator("") == ""


def timed_words(text: str, step: float = 0.2) -> list[tuple[str, float, float]]:
    words = []
    for part in text.split():
        for word in [part] if part.isascii() else list(part):
            words.append((word, round(len(words) * step, 3), round((len(words) + 1) * step, 3)))
    return words


@pytest.mark.parametrize(
    "text",
    [
        "今天天气很好 hello world 我想去北京看看长城",
        "turn on the light 2024 年 10 月 1 日 100 点 see you tomorrow",
        "你好世界 i am the light 你好",
        "我们开会吧 let us start the meeting " * 6,  # longer than the window
    ],
    ids=range(4),
)
def test_timestamped_words_match_the_release(reference, punctuator, text):
    """Punctuation goes to the right word or character and its time, as `process_with_timestamp` attaches it."""
    words = timed_words(text)
    (expected,) = reference.process_with_timestamp([words])
    ours = punctuator.punctuate_words([{"text": w, "timestamp": (start, end)} for w, start, end in words])
    assert [(w.start, w.end) for w in ours] == [(start, end) for _, start, end in words]
    # The release cuts after every mark; grouping our words the same way gives its "sentences".
    clauses = group_sentences(ours, marks=ALL_MARKS)
    assert [(c["text"], *c["timestamp"]) for c in clauses] == [
        (s["punc_text"], s["start_s"], s["end_s"]) for s in expected["punc_sentences"]
    ]


def test_model_vocabulary_in_another_order_is_remapped(tmp_path):
    """If the model's vocabulary orders tokens differently from the tokenizer's, the embedding rows follow."""
    FireRedPunc, FireRedPuncConfig = reference_class("FireRedPunc"), reference_class("FireRedPuncConfig")
    original = build_original_punc(tmp_path / "original", permute_model_vocab=True)
    reference = FireRedPunc.from_pretrained(str(original), FireRedPuncConfig(use_gpu=False))
    punctuator = FireRedPunctuator.from_pretrained(convert_checkpoint(original, tmp_path / "converted"))
    for text in TEXTS[:3]:
        expected, tokens = reference_logits(reference, text)
        assert (punctuator.logits([tokens])[0] - expected).abs().max().item() <= 1e-5
    assert punctuator(TEXTS) == [result["punc_text"] for result in reference.process(TEXTS)]


def test_rule_based_fixes_match_the_release():
    RuleBaedTxtFix = reference_class("RuleBaedTxtFix")
    for text in [
        "hello，world。how are you？i'm fine！",
        "i am here，i'd go。 i've seen it i'll do",
        "今天，很好。hello！",
        "tim，",
        "ok。 fine? great",
        "",
        "a 1，b",
    ]:
        assert fix_text(text) == RuleBaedTxtFix.fix(text)


# --- The converted model in transformers ----------------------------------------------------------------------------


def test_converted_directory_is_a_stock_token_classifier(converted_punc_dir, original_punc_dir, punctuator):
    assert detect_variant(original_punc_dir) == "punc"
    config = json.loads((converted_punc_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForTokenClassification"]
    assert config["id2label"] == {"0": "O", "1": "，", "2": "。", "3": "？", "4": "！"}
    assert "auto_map" not in config  # stock classes only
    tokenizer = AutoTokenizer.from_pretrained(converted_punc_dir)
    assert tokenizer.convert_ids_to_tokens(tokenizer("你好 hello")["input_ids"]) == ["[CLS]", "你", "好", "hello"]

    classifier = pipeline("token-classification", model=str(converted_punc_dir))
    text = "今天天气很好 hello world 我想去北京"
    marks = punctuator.predict_marks([punctuator.tokenize(text)])[0]
    found = {item["index"] - 1: (item["word"], item["entity"]) for item in classifier(text)}
    tokens = punctuator.tokenize(text)
    assert found == {i: (tokens[i], mark) for i, mark in enumerate(marks) if mark}
    assert found  # the random model puts some marks


def test_conversion_refuses_incomplete_or_unsafe_originals(original_punc_dir, tmp_path):
    incomplete = tmp_path / "incomplete"
    shutil.copytree(original_punc_dir, incomplete)
    (incomplete / "chinese-bert-wwm-ext_vocab.txt").unlink()
    with pytest.raises(ConversionError, match="missing chinese-bert-wwm-ext_vocab.txt"):
        convert_checkpoint(incomplete, tmp_path / "out")

    from test_checkpoint_safety import _RunsCode

    unsafe = tmp_path / "unsafe"
    shutil.copytree(original_punc_dir, unsafe)
    package = torch.load(unsafe / "model.pth.tar", weights_only=False)
    package["payload"] = _RunsCode(tmp_path / "code-ran")
    torch.save(package, unsafe / "model.pth.tar")
    with pytest.raises(UnsafeCheckpointError):
        convert_checkpoint(unsafe, tmp_path / "out2")
    assert not (tmp_path / "code-ran").exists()


def test_original_directory_is_converted_once_and_cached(original_punc_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "cache"))
    first = resolve_punctuation_model(original_punc_dir)
    assert resolve_punctuation_model(original_punc_dir) == first
    assert Path(first).is_relative_to(tmp_path / "cache")
    assert resolve_punctuation_model(first) == first
    assert FireRedPunctuator.from_pretrained(original_punc_dir)("你好世界") == FireRedPunctuator.from_pretrained(first)(
        "你好世界"
    )


def test_missing_default_model_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "converted"))
    monkeypatch.delenv("FIREREDASR_HF_PUNCTUATION_MODEL", raising=False)
    with pytest.raises(ModelResolutionError, match="hf download FireRedTeam/FireRedPunc`; or pass a local copy"):
        FireRedPunctuator.from_pretrained()
    with pytest.raises(ModelResolutionError, match="is not a FireRedPunc model"):
        FireRedPunctuator.from_pretrained(tmp_path)


# --- Sentence chunks ------------------------------------------------------------------------------------------------


class MarksAfter(FireRedPunctuator):
    """Predicts fixed marks after given tokens (the tiny random model's marks are arbitrary)."""

    def __init__(self, punctuator, marks: dict[str, str]):
        self.__dict__.update(punctuator.__dict__)
        self.fixed = marks

    def predict_marks(self, token_lists):
        return [[self.fixed.get(token, "") for token in tokens] for tokens in token_lists]


def test_sentence_chunks_from_segments_and_words(punctuator):
    stub = MarksAfter(punctuator, {"好": "。", "world": "？", "北": "，", "京": "！"})
    segments = [
        {"text": "今天天气很好 hello world", "timestamp": (1.0, 3.0)},  # 6 + 5 + 5 characters
        {"text": "我想去北京", "timestamp": (4.0, 5.0)},
    ]
    assert stub.punctuate_chunks(segments) == [
        {"text": "今天天气很好。", "timestamp": (1.0, 1.75)},
        {"text": "Hello world?", "timestamp": (1.75, 3.0)},
        {"text": "我想去北，京！", "timestamp": (4.0, 5.0)},
    ]
    words = [{"text": w, "timestamp": (s, e)} for w, s, e in timed_words("今天 很好 hello world 北京")]
    assert [(c["text"], c["timestamp"]) for c in stub.punctuate_chunks(words)] == [
        ("今天很好。", (0.0, 0.8)),
        ("Hello world?", (0.8, 1.2)),
        ("北，京！", (1.2, 1.6)),
    ]
    # Whole texts follow the release's rules, which keep a full-width mark before Chinese.
    assert stub("hello world 你好") == "Hello world？你好。"
    # A last sentence without a final mark still becomes a chunk.
    assert stub.punctuate_chunks([{"text": "北 see", "timestamp": (0.0, 1.0)}])[-1]["text"] == "北，see"


def test_word_chunks_get_their_marks_written_as_in_the_sentence(punctuator):
    stub = MarksAfter(punctuator, {"好": "。", "hello": "，", "world": "？", "am": "，", "北": "，", "京": "！"})
    chunks = [
        {"text": w, "timestamp": (s, e), "confidence": 0.5}
        for w, s, e in timed_words("今天 很好 hello world i am 北京 蜉 see")
    ]
    words = stub.punctuate_words(chunks)
    marked = punctuated_word_chunks(chunks, words)
    assert [chunk["text"] for chunk in marked] == [
        "今", "天", "很", "好。", "Hello,", "world?", "I", "am，", "北，", "京！", "蜉", "see",
    ]  # fmt: skip
    assert [{**c, "text": None} for c in marked] == [{**c, "text": None} for c in chunks]
    assert [s["text"] for s in group_sentences(words)] == ["今天很好。", "Hello, world?", "I am，北，京！", "蜉see"]
    assert group_sentences(words)[0]["confidence"] == 0.5
    # Pieces the tokenizer drops (nothing to punctuate) keep their text; the others' times are their own.
    spaces = [{"text": " ", "timestamp": (0.0, 0.1)}, {"text": "好", "timestamp": (0.1, 0.2)}]
    assert punctuated_word_chunks(spaces, stub.punctuate_words(spaces)) == [spaces[0], {**spaces[1], "text": "好。"}]


def test_windows_end_where_asked(punctuator):
    seen = []

    class Recording(MarksAfter):
        def predict_marks(self, token_lists):
            seen.append(len(token_lists[0]) if len(token_lists) == 1 else [len(t) for t in token_lists])
            return super().predict_marks(token_lists)

    stub = Recording(punctuator, {})
    words = [{"text": char, "timestamp": (0.0, 0.0)} for char in "我想去北京看看长城" * 6]  # 54 one-token words
    stub.punctuate_words(words)
    assert seen == [[39, 15]]  # windows as full as they can be
    seen.clear()
    stub.punctuate_words(words, break_after={8, 17, 26, 35, 44, 53})  # segments of nine words
    assert seen == [[36, 18]]


def test_long_timed_input_is_windowed_at_piece_boundaries(punctuator):
    """Windows end where a piece ends, so a segment is never split between two windows."""
    seen = []

    class Recording(MarksAfter):
        def predict_marks(self, token_lists):
            seen.extend(len(tokens) for tokens in token_lists)
            return super().predict_marks(token_lists)

    stub = Recording(punctuator, {})
    segment = "我想去北京看看长城 hello world"  # 11 tokens
    stub.punctuate_chunks([{"text": segment, "timestamp": (i, i + 1.0)} for i in range(10)])
    assert seen == [33, 33, 33, 11]
    assert sum(seen) == 110 and max(seen) <= punctuator.max_input_length


def test_group_sentences_keeps_missing_times():
    words = [PunctuatedWord("你", ""), PunctuatedWord("好", "。"), PunctuatedWord(" ok", "")]
    assert group_sentences(words) == [
        {"text": "你好。", "timestamp": (None, None)},
        {"text": "Ok", "timestamp": (None, None)},
    ]


# --- The chain: speech recognition + punctuation ---------------------------------------------------------------


def test_asr_pipeline_with_punctuation_returns_sentences(converted_aed_dir, converted_punc_dir, fixtures_dir):
    import numpy as np
    import soundfile as sf

    if "FIREREDASR_HF_VAD_MODEL" not in os.environ:
        pytest.skip("the default detector (FireRedVAD) needs the shared fixtures")
    clips = [sf.read(fixtures_dir / "audio" / f"{u}.wav", dtype="float32")[0] for u in ("p01", "p06", "p03")]
    audio = np.concatenate([np.concatenate([clip, np.zeros(12000, np.float32)]) for clip in clips])
    asr = pipeline(
        "automatic-speech-recognition", model=str(converted_aed_dir), punctuation_model=str(converted_punc_dir)
    )
    plain = asr(audio, return_timestamps=True, punctuation_model=False)
    punctuator = asr._punctuators[str(converted_punc_dir)]
    expected = punctuator.punctuate_chunks(plain["chunks"])

    result = asr(audio, return_timestamps=True)
    assert result["chunks"] == expected and len(plain["chunks"]) == 3
    from fireredasr_hf.pipeline_fireredasr import join_segment_texts

    assert result["text"] == join_segment_texts([chunk["text"] for chunk in expected])
    # Without timestamps, short audio is decoded whole and punctuated as one piece.
    assert asr(clips[0])["text"] == punctuator(asr(clips[0], punctuation_model=False)["text"])
    assert all(chunk["text"][-1] in "。？！.?!" for chunk in result["chunks"][:-1])
    first, last = plain["chunks"][0]["timestamp"][0], plain["chunks"][-1]["timestamp"][1]
    assert result["chunks"][0]["timestamp"][0] == first and result["chunks"][-1]["timestamp"][1] == last
    starts = [chunk["timestamp"][0] for chunk in result["chunks"]]
    assert starts == sorted(starts)
    with pytest.raises(ValueError, match="punctuation_model must be"):
        asr(audio, punctuation_model=3)
