# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""int8 on CPUs: speed and agreement of `quantize="int8"` (fireredasr_hf.quantization) and of the alternatives.

    python benchmarks/bench_int8.py [--rounds 3] [--threads 1] [--proof-dir OUT]

1. Speed. A random FireRedASR-AED at AED-L's width (d_model 1280, 20 heads, feed-forward 5120, vocabulary 7832;
   4 encoder + 4 decoder layers, decoder reshaped to end after ~35 tokens, see `common.shape_decoder`) transcribes
   four utterances of 5-10 s, end to end from the waveform (features, encoder, search), greedy and beam 3 (smoothing
   1.25, length penalty 0.6), as
   - float32 (as converted), bfloat16 (`dtype=torch.bfloat16`),
   - int8: `quantize_model` (PyTorch dynamic int8 linear layers, what `--quantize int8` runs),
   - torchao through transformers: `from_pretrained(..., quantization_config=TorchAoConfig(...))` with
     `Int8DynamicActivationInt8WeightConfig()` and `Int8WeightOnlyConfig()` (eager, no torch.compile).
   Rounds interleave the variants; medians of wall and process CPU time, spread (min-max wall) and ratios to float32.
2. Agreement on the fixture model (`aed-tiny`, trained on p01-p08): token-identical share of the ten transcripts
   against float32, beam 3 and greedy.
3. Agreement on a fine-tuned model (`--proof-dir`, the output folder of `scripts/prove_training.py`: its
   `aed-from-scratch` model and the synthetic corpus it was trained on): error rates (FireRedASR's CER / MER) of
   float32 and int8 on the training and held-out splits, and the token-identical share of the transcripts.
"""

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

from fireredasr_hf.cpu import prefer_passive_waiting

# As the command line does, before torch loads OpenMP: idle threads sleep instead of spinning (this machine is shared).
prefer_passive_waiting()


import torch
from common import FIXTURES, build_converted_aed, looped_utterances
from transformers import AutoProcessor

from fireredasr_hf import FireRedAedForConditionalGeneration
from fireredasr_hf.quantization import quantize_model

SAMPLING_RATE = 16000
DURATIONS = (5.0, 6.5, 8.0, 10.0)
DECODINGS = {"greedy": {"num_beams": 1}, "beam 3": {"num_beams": 3}}


def load_variants(model_dir, names) -> dict:
    """The model in each numeric variant (all CPU, eval mode)."""
    from transformers import TorchAoConfig

    variants = {}
    float_model = FireRedAedForConditionalGeneration.from_pretrained(model_dir).eval()
    for name in names:
        if name == "float32":
            variants[name] = float_model
        elif name == "bfloat16":
            variants[name] = copy.deepcopy(float_model).to(torch.bfloat16)
        elif name == "int8":
            variants[name] = quantize_model(copy.deepcopy(float_model))
        else:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig

            config = Int8DynamicActivationInt8WeightConfig() if name == "torchao int8" else Int8WeightOnlyConfig()
            variants[name] = FireRedAedForConditionalGeneration.from_pretrained(
                model_dir, quantization_config=TorchAoConfig(config), device_map="cpu"
            ).eval()
    return variants


def transcribe(model, processor, waveform, **decoding) -> list[int]:
    inputs = processor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    if model.dtype != torch.float32:
        inputs["input_features"] = inputs["input_features"].to(model.dtype)
    tokens = model.generate(**inputs, **decoding)[0, 1:].tolist()
    eos_id = model.generation_config.eos_token_id
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens


def speed(args) -> None:
    names = ["float32", "bfloat16", "int8", "torchao int8", "torchao int8 weight-only"]
    with tempfile.TemporaryDirectory(prefix="bench_int8_") as workdir:
        model_dir = build_converted_aed(workdir, 4, 4, eos_after_tokens=35)
        processor = AutoProcessor.from_pretrained(model_dir)
        variants = load_variants(model_dir, names)
        waveforms = looped_utterances(DURATIONS)
        audio_seconds = sum(DURATIONS)
        torch.set_num_threads(args.threads)
        for model in variants.values():  # warm-up
            transcribe(model, processor, waveforms[0][: 3 * SAMPLING_RATE], num_beams=1)
        timings, tokens = {}, {}
        for round_index in range(args.rounds):
            for decoding_name, decoding in DECODINGS.items():
                for name, model in variants.items():
                    wall, cpu = time.perf_counter(), time.process_time()
                    ids = [transcribe(model, processor, waveform, **decoding) for waveform in waveforms]
                    timings.setdefault((name, decoding_name), []).append(
                        (time.perf_counter() - wall, time.process_time() - cpu)
                    )
                    tokens.setdefault((name, decoding_name), ids)
            print(f"round {round_index + 1}/{args.rounds} done, load average {os.getloadavg()[0]:.2f}", flush=True)

    print(
        f"\n1. speed: d_model 1280, 4 + 4 layers, {len(DURATIONS)} utterances of {audio_seconds:.1f} s in all, "
        f"{args.threads} thread(s), median of {args.rounds} rounds"
    )
    print(
        f"{'variant':28s}{'decoding':>9s}{'tokens':>8s}{'wall s':>8s}{'(min-max)':>15s}{'CPU s':>8s}{'CPU/fp32':>10s}"
    )
    for decoding_name in DECODINGS:
        reference = statistics.median(cpu for _, cpu in timings["float32", decoding_name])
        for name in names:
            rounds = timings[name, decoding_name]
            walls = [wall for wall, _ in rounds]
            cpu = statistics.median(cpu for _, cpu in rounds)
            count = sum(len(ids) for ids in tokens[name, decoding_name])
            print(
                f"{name:28s}{decoding_name:>9s}{count:8d}{statistics.median(walls):8.2f}   "
                f"({min(walls):5.2f}-{max(walls):5.2f}){cpu:8.2f}{cpu / reference:10.2f}"
            )


def fixture_agreement() -> None:
    from fireredasr_hf.conversion import convert_checkpoint

    with tempfile.TemporaryDirectory(prefix="bench_int8_tiny_") as workdir:
        model_dir = convert_checkpoint(FIXTURES / "aed-tiny", Path(workdir) / "aed-tiny")
        processor = AutoProcessor.from_pretrained(model_dir)
        names = ["float32", "int8", "bfloat16", "torchao int8"]
        variants = load_variants(model_dir, names)
        import soundfile

        clips = [soundfile.read(path, dtype="float32")[0] for path in sorted((FIXTURES / "audio").glob("p*.wav"))]
        print(f"\n2. fixture model (aed-tiny), {len(clips)} utterances: token-identical transcripts vs float32")
        for decoding_name, decoding in DECODINGS.items():
            reference = [transcribe(variants["float32"], processor, clip, **decoding) for clip in clips]
            for name in names[1:]:
                ids = [transcribe(variants[name], processor, clip, **decoding) for clip in clips]
                same = sum(a == b for a, b in zip(ids, reference))
                print(f"  {name:14s}{decoding_name:>8s}: {same}/{len(clips)}")


def proof_agreement(proof_dir: Path) -> None:
    from fireredasr_hf.data import load_kaldi_dir
    from fireredasr_hf.hub import load_asr_pipeline
    from fireredasr_hf.scoring import score_utterances

    model_dir = proof_dir / "aed-from-scratch"
    pipelines = {
        "float32": load_asr_pipeline(str(model_dir)),
        "int8": load_asr_pipeline(str(model_dir), quantize="int8"),
    }
    print(f"\n3. fine-tuned model ({model_dir}), greedy as its proof scores it and beam 3")
    for split in ("train", "test"):
        dataset = load_kaldi_dir(proof_dir / "corpus" / split)
        refs = dict(zip(dataset["id"], dataset["text"]))
        for decoding_name, decoding in DECODINGS.items():
            hyps = {}
            for name, asr in pipelines.items():
                outputs = asr(list(dataset["audio"]), batch_size=8, generate_kwargs=decoding)
                hyps[name] = {uttid: output["text"] for uttid, output in zip(dataset["id"], outputs)}
            line = f"  {split:5s} ({len(refs)}) {decoding_name:7s}"
            for name in pipelines:
                report = score_utterances(refs, hyps[name])
                line += f"  {name}: MER {100 * report.mer:.2f}%" + (
                    f" CER {100 * report.cer:.2f}%" if report.cer is not None else ""
                )
            same = sum(hyps["float32"][uttid] == hyps["int8"][uttid] for uttid in refs)
            print(f"{line}  identical transcripts {same}/{len(refs)}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--proof-dir", type=Path, help="output folder of scripts/prove_training.py (part 3)")
    parser.add_argument("--parts", nargs="+", default=["1", "2", "3"], help="which parts to run (1 2 3)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}", flush=True)
    if "1" in args.parts:
        speed(args)
    if "2" in args.parts:
        fixture_agreement()
    if "3" in args.parts and args.proof_dir is not None:
        proof_agreement(args.proof_dir)


if __name__ == "__main__":
    main()
