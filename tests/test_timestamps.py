"""Timestamps of FireRedASR2-AED: the batched CTC forced alignment against torchaudio (a recorded golden of 200 random
problems, and live where torchaudio is installed), and the release's rules that turn alignments into token and word
times, against the FireRedASR2 reference code on random inputs.

The golden comes from scripts/make_forced_align_golden.py run where torchaudio is installed (see docs/parity.md)."""

import importlib.util
import json
import random
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from fireredasr_hf.timestamps_fireredasr import (
    alignment_to_token_times,
    ctc_forced_align,
    fix_token_times,
    group_word_tokens,
    word_timestamps,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "fixtures" / "forced_align_golden.json"


def load_golden_script():
    spec = importlib.util.spec_from_file_location(
        "make_forced_align_golden", REPO_ROOT / "scripts" / "make_forced_align_golden.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golden():
    record = json.loads(GOLDEN.read_text(encoding="utf-8"))
    cases = load_golden_script().make_cases(record["seed"], record["num_cases"])
    assert len(cases) == len(record["alignments"]) == 200
    return cases, record["alignments"]


def align_one(case) -> list[int]:
    log_probs = torch.tensor([case["log_probs"]], dtype=torch.float32)
    return ctc_forced_align(log_probs, torch.tensor([case["labels"]]), blank=case["blank"])[0].tolist()


def test_forced_align_reproduces_torchaudio_golden(golden):
    cases, expected = golden
    mismatches = [index for index, case in enumerate(cases) if align_one(case) != expected[index]]
    assert mismatches == []
    # The golden covers the hard parts: ties, tight fits and repeated labels.
    assert sum(len(case["log_probs"]) == len(case["labels"]) for case in cases) > 10
    assert sum(any(a == b for a, b in zip(case["labels"], case["labels"][1:])) for case in cases) > 20


def test_batched_forced_align_equals_row_by_row(golden):
    """One padded batch of all 200 problems (different lengths, class counts) gives each its own alignment."""
    cases, expected = golden
    for blank in {case["blank"] for case in cases}:
        group = [(case, alignment) for case, alignment in zip(cases, expected) if case["blank"] == blank]
        frames = max(len(case["log_probs"]) for case, _ in group)
        classes = max(len(case["log_probs"][0]) for case, _ in group)
        labels = max(len(case["labels"]) for case, _ in group)
        log_probs = torch.full((len(group), frames, classes), 7.0)  # padding that would win if it were used
        targets = torch.zeros(len(group), labels, dtype=torch.long)
        for row, (case, _) in enumerate(group):
            values = torch.tensor(case["log_probs"])
            log_probs[row, : values.shape[0], : values.shape[1]] = values
            targets[row, : len(case["labels"])] = torch.tensor(case["labels"])
        input_lengths = torch.tensor([len(case["log_probs"]) for case, _ in group])
        target_lengths = torch.tensor([len(case["labels"]) for case, _ in group])
        alignments = ctc_forced_align(log_probs, targets, input_lengths, target_lengths, blank=blank)
        for row, (case, alignment) in enumerate(group):
            assert alignments[row, : input_lengths[row]].tolist() == alignment
            assert (alignments[row, input_lengths[row] :] == -1).all()


def test_forced_align_matches_live_torchaudio(golden):
    """Where torchaudio is installed: the golden problems and 200 random real-valued ones, compared live."""
    functional = pytest.importorskip("torchaudio.functional", reason="torchaudio is not installed here")
    cases, _ = golden
    generator = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    for _ in range(200):
        num_classes, num_labels = rng.randint(2, 40), rng.randint(1, 30)
        labels = [rng.randrange(1, num_classes) for _ in range(num_labels)]
        repeats = sum(a == b for a, b in pairwise(labels))
        frames = num_labels + repeats + rng.randint(0, 60)
        log_probs = torch.randn(frames, num_classes, generator=generator).log_softmax(-1)
        cases.append({"log_probs": log_probs.tolist(), "labels": labels, "blank": 0})
    for case in cases:
        log_probs = torch.tensor([case["log_probs"]], dtype=torch.float32)
        expected, _ = functional.forced_align(
            log_probs, torch.tensor([case["labels"]], dtype=torch.int32), blank=case["blank"]
        )
        assert align_one(case) == expected[0].tolist()


def test_forced_align_refuses_what_cannot_be_aligned():
    log_probs = torch.zeros(1, 3, 5)
    with pytest.raises(ValueError, match="2 labels with 1 repeats do not fit in 3 frames|do not fit"):
        ctc_forced_align(log_probs[:, :2], torch.tensor([[1, 1]]))
    with pytest.raises(ValueError, match="at least one label"):
        ctc_forced_align(log_probs, torch.tensor([[1]]), target_lengths=torch.tensor([0]))
    # A repeated label needs a blank between its two frames: 3 frames are just enough.
    assert ctc_forced_align(log_probs, torch.tensor([[1, 1]]))[0].tolist() == [1, 0, 1]


def random_alignment(rng: random.Random) -> list[int]:
    alignment = []
    for _ in range(rng.randint(1, 25)):
        token = rng.choice([0, 0, 0, rng.randint(1, 6)])
        alignment += [token] * rng.choice([1, 1, 1, 2, 5, rng.randint(1, 60)])
    return alignment


def test_alignment_to_token_times_equals_the_reference(fireredasr2):
    ctc = fireredasr2.aed.CTC
    rng = random.Random(1)
    checked = 0
    for _ in range(500):
        alignment = random_alignment(rng)
        if not any(alignment):
            assert alignment_to_token_times(alignment) == ([], [])
            continue
        assert alignment_to_token_times(alignment) == tuple(ctc.ctc_alignment_to_timestamp(alignment, 4, blank_id=0))
        checked += 1
    assert checked > 300


@pytest.fixture(scope="module")
def reference_asr(fireredasr2, fixtures_dir):
    """A FireRedAsr2 object with just the tokenizer, to call its `_get_and_fix_timestamp`."""
    asr = object.__new__(fireredasr2.asr.FireRedAsr2)
    tokenizer_module = __import__("fireredasr2.tokenizer.aed_tokenizer", fromlist=["ChineseCharEnglishSpmTokenizer"])
    model_dir = fixtures_dir / "aed-tiny"
    asr.tokenizer = tokenizer_module.ChineseCharEnglishSpmTokenizer(
        str(model_dir / "dict.txt"), str(model_dir / "train_bpe1000.model")
    )
    return asr


def test_word_timestamps_equal_the_reference_fix_and_merge(reference_asr):
    """Random hypotheses of Chinese characters and English pieces, random alignments (some failed, some running
    to the end of the audio), random durations: the (word, start, end) list equals `_get_and_fix_timestamp`'s."""
    tokenizer = reference_asr.tokenizer
    vocabulary = [index for index in range(5, len(tokenizer.dict))]
    rng = random.Random(2)
    checked = 0
    for case in range(400):
        hyp_ids = [rng.choice(vocabulary) for _ in range(rng.randint(0, 15))]
        frames = len(hyp_ids) + rng.randint(0, 80)
        duration = round(frames * 0.04 + rng.uniform(-0.05, 0.1), 4)
        if case % 7 == 0 or not hyp_ids:
            times = None
        else:
            alignment = [0] * frames
            positions = sorted(rng.sample(range(frames), len(hyp_ids)))
            for position, token in zip(positions, hyp_ids):
                alignment[position] = token
                if rng.random() < 0.3 and position + 1 < frames and position + 1 not in positions:
                    alignment[position + 1] = token
            times = alignment_to_token_times(alignment)
            if len(times[0]) != len(hyp_ids):  # two equal neighbours merged into one run
                continue
        checked += 1
        hyp = {"timestamp": times}
        expected = reference_asr._get_and_fix_timestamp(hyp, hyp_ids, duration)
        tokens = [tokenizer.dict[index].lower() for index in hyp_ids]
        token_times = None if times is None else list(zip(*times))
        words = word_timestamps(tokens, token_times, duration)
        assert [(word["text"], word["start"], word["end"]) for word in words] == [tuple(item) for item in expected]
    assert checked > 350


def test_keep_pauses_keeps_the_gap_the_clamp_removes():
    # A token at 1.0-1.4 s, a pause, a token at 3.0-3.2 s (times as the alignment gives them, before the shift).
    times = [(1.0, 1.4), (3.0, 3.2)]
    assert fix_token_times(times, 2, duration=4.0) == [[0.94, 1.34], [1.34, 3.14]]
    assert fix_token_times(times, 2, duration=4.0, keep_pauses=True) == [[0.94, 1.34], [2.94, 3.14]]
    # Failed alignment: tokens share the audio.
    assert fix_token_times(None, 2, duration=1.0) == [[0.0, 0.5], [0.5, 1.0]]


def test_words_group_pieces_and_average_confidences():
    tokens = ["你", "好", "▁hel", "lo", "'s", "▁wor", "ld", "界", "▁a"]
    assert group_word_tokens(tokens) == [[0], [1], [2, 3, 4], [5, 6], [7], [8]]
    times = [(0.1 * (i + 1), 0.1 * (i + 2)) for i in range(len(tokens))]
    words = word_timestamps(tokens, times, duration=2.0, token_confidences=[0.5, 1.0, 0.9, 0.6, 0.3, 1, 1, 0.2, 0.7])
    assert [word["text"] for word in words] == ["你", "好", "hello's", "world", "界", "a"]
    assert words[2]["confidence"] == pytest.approx(0.6)
    assert (words[2]["start"], words[2]["end"]) == (0.24, 0.54)
