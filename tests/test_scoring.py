import random
import sys

import pytest

from fireredasr_hf.scoring import (
    ErrorCounts,
    align_tokens,
    format_alignment,
    normalize_for_scoring,
    score_utterances,
    token_category,
)


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("今天天气很好。", ["今", "天", "天", "气", "很", "好"]),
        ("Hello, World! 你好？", ["HELLO", "WORLD", "你", "好"]),
        ("我们开会吧，let us start", ["我", "们", "开", "会", "吧", "LET", "US", "START"]),
        ("mixed中文english", ["MIXED", "中", "文", "ENGLISH"]),
        ("don't stop-me (now)", ["DON'T", "STOP-ME", "NOW"]),  # apostrophe and hyphen stay inside words
        ("a<unk>b <unk> 好", ["AB", "好"]),
        ("《书名》“引号”…", ["书", "名", "引", "号"]),
        ("x\u3000y", ["X", "Y"]),
        ("  ", []),
        ("", []),
    ],
)
def test_normalize_for_scoring(text, tokens):
    assert normalize_for_scoring(text) == tokens


def test_special_tags_are_kept_or_removed():
    text = "<|zh|>你好<|en|>hello"
    assert normalize_for_scoring(text, remove_special=True) == ["你", "好", "HELLO"]
    assert normalize_for_scoring(text) == ["<", "ZH", ">", "你", "好", "<", "EN", ">HELLO"]


def test_normalize_rejects_non_strings():
    with pytest.raises(TypeError, match="transcript string"):
        normalize_for_scoring(None)


def test_number_normalisation_needs_cn2an(monkeypatch):
    monkeypatch.setitem(sys.modules, "cn2an", None)  # makes `import cn2an` fail
    with pytest.raises(ImportError, match="pip install cn2an"):
        normalize_for_scoring("3个", convert_numbers=True)
    assert normalize_for_scoring("3个") == ["3", "个"]


def test_number_normalisation_with_cn2an():
    pytest.importorskip("cn2an")
    assert normalize_for_scoring("我有3个苹果", convert_numbers=True) == ["我", "有", "三", "个", "苹", "果"]


def test_token_category():
    assert token_category(["今", "天"]) == "zh"
    assert token_category(["TURN", "3"]) == "en"
    assert token_category(["今", "ON"]) == "mixed"
    assert token_category([]) == "empty"


# Hand-counted (each a unique cheapest alignment): z1 很->不 (S) + 啊 (I); e1 ON->OFF (S) + THE (D), or THE->OFF
# (S) + ON (D); m1 吧 (D) + NOW (I); x1 嗯 (I).
REFS = {
    "z1": "今天天气很好。",
    "e1": "Turn on the light.",
    "m1": "我们开会吧，let us start the meeting",
    "z2": "火车站离这里不远",
    "x1": "",
}
HYPS = {
    "z1": "今天天气不好啊",
    "e1": "turn off light",
    "m1": "我们开会 let us start the meeting now",
    "z2": "火车站离这里不远",
    "x1": "嗯",
    "extra": "ignored",
}


def test_score_utterances_hand_counted():
    report = score_utterances(REFS, HYPS)
    counts = {
        u.uttid: (u.counts.ref_tokens, u.counts.substitutions, u.counts.deletions, u.counts.insertions)
        for u in report.utterances
    }
    assert counts == {
        "z1": (6, 1, 0, 1),
        "e1": (4, 1, 1, 0),
        "m1": (10, 0, 1, 1),
        "z2": (8, 0, 0, 0),
        "x1": (0, 0, 0, 1),
    }
    assert [u.category for u in report.utterances] == ["zh", "en", "mixed", "zh", "empty"]
    assert report.cer == pytest.approx(2 / 14)
    assert report.wer == pytest.approx(2 / 4)
    assert report.mer == pytest.approx(7 / 28)
    assert report.sentence_error_rate == pytest.approx(4 / 5)
    assert report.totals(("zh", "en")) == ErrorCounts(18, 2, 1, 1)
    assert report.missing == []


def test_rates_are_none_without_utterances_of_a_kind():
    report = score_utterances({"a": "你好"}, {"a": "你"})
    assert report.cer == 0.5 and report.mer == 0.5 and report.wer is None
    empty = score_utterances({}, {})
    assert empty.mer is None and empty.sentence_error_rate is None


def test_missing_hypotheses():
    refs = {"a": "你好", "b": "hello world"}
    with pytest.raises(ValueError, match="have no hypothesis.*b"):
        score_utterances(refs, {"a": "你好"})
    as_empty = score_utterances(refs, {"a": "你好"}, missing="empty")
    assert as_empty.missing == ["b"] and as_empty.mer == pytest.approx(2 / 4)
    skipped = score_utterances(refs, {"a": "你好"}, missing="skip")
    assert [u.uttid for u in skipped.utterances] == ["a"] and skipped.mer == 0.0
    with pytest.raises(ValueError, match="missing must be"):
        score_utterances(refs, {}, missing="ignore")


def test_format_table_and_details(tmp_path):
    report = score_utterances(REFS, HYPS)
    table = report.format_table()
    lines = table.splitlines()
    assert lines[1].split() == ["CER", "zh", "2", "14", "1", "0", "1", "14.29"]
    assert lines[2].split() == ["WER", "en", "1", "4", "1", "1", "0", "50.00"]
    assert lines[3].split() == ["MER", "all", "5", "28", "2", "2", "3", "25.00"]
    assert "(4 of 5 utterances wrong)" in lines[4]
    report.write_details(tmp_path / "details.txt")
    details = (tmp_path / "details.txt").read_text(encoding="utf-8")
    assert details.startswith(table)
    assert (
        "e1 en rate 50.00 % ref 4 sub 1 del 1 ins 0\nREF: TURN ON  THE LIGHT\nHYP: TURN OFF *   LIGHT\n          S   D\n"
        in details
    )
    assert (
        "z2 zh rate 0.00 % ref 8 sub 0 del 0 ins 0\nREF: 火 车 站 离 这 里 不 远\nHYP: 火 车 站 离 这 里 不 远\n\n"
        in details
    )


def test_alignment_columns_are_padded_to_display_width():
    _, alignment = align_tokens(["今", "天", "好"], ["今", "HELLO", "好", "X"])
    assert format_alignment(alignment) == ["REF: 今 天    好 *", "HYP: 今 HELLO 好 X", "        S        I"]


def test_missing_report_line():
    report = score_utterances({"a": "x", "b": "y"}, {"a": "x"}, missing="skip")
    assert report.format_table().splitlines()[-1] == "1 reference utterance(s) had no hypothesis: b"


# --- parity with the original scoring script (fireredasr/utils/wer.py of the release) ---------------------------------


@pytest.fixture(scope="module")
def original_wer():
    return pytest.importorskip("fireredasr.utils.wer")


PARITY_TEXTS = [
    *REFS.values(),
    *[value for value in HYPS.values()],
    "我们今天去北京开会，明天回上海。",
    "ＡＢＣ full-width Ｌａｔｉｎ and １２３",
    "It's 3.5% of $20 — 真的吗？！",
    "tabs\tand\nnewlines 《》「」【】",
    "<|en|> tags <|zh|>你好 <unk> x",
    "#hash @at ~tilde ^caret _under *star &amp 'quote'",
]


def test_tokens_match_the_original(original_wer):
    for text in PARITY_TEXTS:
        assert normalize_for_scoring(text) == original_wer.text2tokens(text), text
    ascii_and_symbols = [
        chr(c) for c in [*range(0x20, 0x7F), *range(0x2000, 0x2070), *range(0x3000, 0x3040), *range(0xFF00, 0xFF70)]
    ]
    for char in ascii_and_symbols:
        assert normalize_for_scoring(f"a{char}b") == original_wer.text2tokens(f"a{char}b"), repr(char)


def test_special_removal_matches_the_original(original_wer, tmp_path):
    path = tmp_path / "text"
    path.write_text(
        "".join(f"u{i} {' '.join(text.split())}\n" for i, text in enumerate(PARITY_TEXTS) if text.strip()),
        encoding="utf-8",
    )
    original = original_wer.read_uttid2tokens(str(path), do_tn=False, rm_special=True)
    for i, text in enumerate(PARITY_TEXTS):
        if text.strip():
            assert normalize_for_scoring(text, remove_special=True) == original[f"u{i}"], text


def test_error_counts_match_the_original(original_wer):
    rng = random.Random(0)
    vocabulary = ["今", "天", "好", "A", "B", "HELLO", "WORLD", "3"]
    pairs = [(normalize_for_scoring(REFS[u]), normalize_for_scoring(HYPS[u])) for u in REFS]
    pairs += [
        (
            [rng.choice(vocabulary) for _ in range(rng.randint(0, 12))],
            [rng.choice(vocabulary) for _ in range(rng.randint(0, 12))],
        )
        for _ in range(300)
    ]
    for ref, hyp in pairs:
        counts, _ = align_tokens(ref, hyp)
        original = original_wer.compute_one_wer_info(ref, hyp)
        assert (counts.ref_tokens, counts.errors) == (original.r, original.e), (ref, hyp)
