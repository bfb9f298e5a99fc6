#!/usr/bin/env python
# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Writes the demo's example clips (synthetic speech from espeak-ng, as the synthetic corpus makes it) as 16 kHz
mono FLAC files into src/fireredasr_hf/examples/ (used by the demo and in model-card widgets).

    python scripts/make_demo_examples.py [OUT_DIR]

The clips are generated, not recorded, so they carry no speaker's voice and may be redistributed with the project
(Apache-2.0). The output depends only on this script and the espeak-ng version (1.51 for the committed files).
"""

import argparse
from pathlib import Path

import soundfile
from make_synthetic_corpus import SAMPLING_RATE, Utterance, synthesize

EXAMPLES = [
    Utterance("mandarin", (("zh", ("今天", "天气", "很好", "我们", "去", "公园", "散步", "吧")),), "", 150, 50, 0.8),
    Utterance(
        "english", (("en", ("speech", "recognition", "turns", "spoken", "words", "into", "text")),), "", 150, 50, 0.8
    ),
    Utterance(
        "mixed", (("zh", ("我们", "明天", "开会")), ("en", ("let", "us", "review", "the", "plan"))), "+m3", 150, 45, 0.8
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "src" / "fireredasr_hf" / "examples"
    parser.add_argument("output_dir", nargs="?", type=Path, default=default)
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for utterance in EXAMPLES:
        path = args.output_dir / f"{utterance.uttid}.flac"
        soundfile.write(path, synthesize(utterance), SAMPLING_RATE, format="FLAC", subtype="PCM_16")
        print(f"{path}: {utterance.transcript}")


if __name__ == "__main__":
    main()
