# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""How often an utterance decoded in a padded batch gets other tokens than decoded alone, per model and dtype.

    python benchmarks/bench_batch_agreement.py [--compositions 10] [--group-size 4]

Models: the fixture models `aed-tiny` and `llm-tiny`, converted in float32 and in bfloat16. Utterances: the ten
fixture clips p01-p10 and, to have more cases near a decision boundary, noisy copies of six of them (Gaussian noise,
standard deviation 0.01). Each utterance is decoded alone (the reference), in one batch of all 16, and in
`--compositions` random partitions of the 16 into batches of `--group-size`. Settings: the model's defaults (the
release's beam search) and greedy search. A row "differs" when its token ids differ from the reference.

Also printed: the largest difference between a padded row's encoder output and the same utterance's encoder output
alone, which is where the numerics of a batch start to differ (padding changes the lengths of the attention
reductions, and with them the order of the floating-point sums).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import soundfile
import torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

import fireredasr_hf  # noqa: F401
from fireredasr_hf.conversion import convert_checkpoint

FIXTURES = Path(os.environ.get("FIREREDASR_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
GREEDY = {"num_beams": 1, "repetition_penalty": 1.0}


def clips() -> dict[str, np.ndarray]:
    audio = {
        f"p{i:02d}": soundfile.read(FIXTURES / "audio" / f"p{i:02d}.wav", dtype="float32")[0] for i in range(1, 11)
    }
    rng = np.random.default_rng(0)
    for name in ("p01", "p03", "p05", "p07", "p09", "p10"):
        audio[f"{name}+noise"] = (audio[name] + rng.normal(0, 0.01, len(audio[name]))).astype(np.float32)
    return audio


def decode(model, processor, audio, names, **settings) -> dict[str, list[int]]:
    inputs = processor(audio=[audio[name] for name in names], sampling_rate=16000, return_tensors="pt")
    pad = model.generation_config.pad_token_id
    rows = model.generate(**inputs, **settings)
    return {name: [t for t in row.tolist() if t != pad] for name, row in zip(names, rows)}


def encoder_difference(model, processor, audio, names) -> float:
    """Max |batch row - alone| of the encoder outputs over the valid frames of a batch of `names`."""
    inputs = processor(audio=[audio[name] for name in names], sampling_rate=16000, return_tensors="pt")
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else model.encoder
    dtype = next(encoder.parameters()).dtype
    with torch.no_grad():
        batch = encoder(inputs["input_features"].to(dtype), attention_mask=inputs["attention_mask"])
        largest = 0.0
        for row, name in enumerate(names):
            alone = processor(audio=[audio[name]], sampling_rate=16000, return_tensors="pt")
            single = encoder(alone["input_features"].to(dtype), attention_mask=alone["attention_mask"])
            frames = int(single.attention_mask.sum())
            difference = batch.last_hidden_state[row, :frames].float() - single.last_hidden_state[0, :frames].float()
            largest = max(largest, difference.abs().max().item())
    return largest


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compositions", type=int, default=10, help="random partitions into batches (default 10)")
    parser.add_argument("--group-size", type=int, default=4, help="utterances per batch in a partition (default 4)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    audio = clips()
    names = list(audio)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(names)} utterances; torch {torch.__version__}")
    print(f"{'model':<6}{'dtype':<10}{'setting':<9}{'batch of 16':>13}{'groups':>14}{'max |enc diff|':>16}{'s':>6}")
    with tempfile.TemporaryDirectory() as work:
        for variant in ("aed", "llm"):
            for dtype in ("float32", "bfloat16"):
                directory = convert_checkpoint(
                    FIXTURES / f"{variant}-tiny", Path(work) / f"{variant}-{dtype}", dtype=dtype
                )
                model = AutoModelForSpeechSeq2Seq.from_pretrained(directory).eval()
                processor = AutoProcessor.from_pretrained(directory)
                enc = encoder_difference(model, processor, audio, names)
                for setting, settings in (("release", {}), ("greedy", GREEDY)):
                    start = time.perf_counter()
                    alone = {}
                    for name in names:
                        alone.update(decode(model, processor, audio, [name], **settings))
                    whole = decode(model, processor, audio, names, **settings)
                    whole_diff = [name for name in names if whole[name] != alone[name]]
                    group_diff, rows = [], 0
                    for seed in range(args.compositions):
                        order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
                        for start_index in range(0, len(order), args.group_size):
                            group = order[start_index : start_index + args.group_size]
                            result = decode(model, processor, audio, group, **settings)
                            rows += len(group)
                            group_diff += [name for name in group if result[name] != alone[name]]
                    print(
                        f"{variant:<6}{dtype:<10}{setting:<9}{len(whole_diff):>6} of {len(names):<4}"
                        f"{len(group_diff):>6} of {rows:<5}{enc:>16.3g}{time.perf_counter() - start:>6.0f}"
                        + (f"   differing: {sorted(set(whole_diff + group_diff))}" if whole_diff or group_diff else ""),
                        flush=True,
                    )


if __name__ == "__main__":
    main()
