#!/usr/bin/env python
# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Golden alignments of `torchaudio.functional.forced_align` for tests/test_timestamps.py.

FireRedASR2 times its tokens with torchaudio's CTC forced alignment; fireredasr-hf does the same in plain torch
(`timestamps_fireredasr.ctc_forced_align`). torchaudio cannot be installed next to the torch the project uses, so
this script runs in a side environment and records what torchaudio answers for 200 random problems; the default test
run compares against the record, and against torchaudio itself wherever it is installed.

    python3 -m venv /work/side-torchaudio
    /work/side-torchaudio/bin/pip install torch==2.9.1 'torchaudio==2.9.*'
    /work/side-torchaudio/bin/python scripts/make_forced_align_golden.py tests/fixtures/forced_align_golden.json

The problems come from `make_cases(seed)`, which uses only Python's `random` (the same numbers on every platform
and version), so the record holds the alignments but not the inputs. The scores are dyadic fractions: float32 holds
them exactly, and the coarse ones make ties, which exercises torchaudio's tie-breaking.
"""

import json
import random
import sys
from itertools import pairwise
from pathlib import Path

SEED = 20260212
NUM_CASES = 200


def make_cases(seed: int = SEED, count: int = NUM_CASES) -> list[dict]:
    """`count` alignment problems: `{"log_probs": frames x classes, "labels": [...], "blank": id}`."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        num_classes = rng.randint(2, 9)
        blank = rng.choice([0, 0, 0, rng.randrange(num_classes)])
        others = [label for label in range(num_classes) if label != blank]
        labels = [rng.choice(others) for _ in range(rng.randint(1, 12))]
        repeats = sum(a == b for a, b in pairwise(labels))
        # Tight fits (no spare frame) to long sequences.
        num_frames = len(labels) + repeats + rng.choice([0, 0, 1, 2, 3, rng.randint(4, 40)])
        grid = rng.choice([1, 2, 8, 1024, 2**20])
        log_probs = [[-rng.randint(0, 8 * grid) / grid for _ in range(num_classes)] for _ in range(num_frames)]
        cases.append({"log_probs": log_probs, "labels": labels, "blank": blank})
    return cases


def main(argv: list[str]) -> int:
    import torch
    import torchaudio
    import torchaudio.functional as F

    output = Path(argv[0] if argv else "tests/fixtures/forced_align_golden.json")
    alignments = []
    for case in make_cases():
        log_probs = torch.tensor([case["log_probs"]], dtype=torch.float32)
        targets = torch.tensor([case["labels"]], dtype=torch.int32)
        alignment, _ = F.forced_align(log_probs, targets, blank=case["blank"])
        alignments.append(alignment[0].tolist())
    record = {
        "what": "torchaudio.functional.forced_align on scripts/make_forced_align_golden.py:make_cases(seed)",
        "seed": SEED,
        "num_cases": NUM_CASES,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "alignments": alignments,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(alignments)} alignments of torchaudio {torchaudio.__version__} written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
