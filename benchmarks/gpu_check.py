# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""GPU check: full-size random FireRedASR-AED-L and FireRedASR-LLM-L (2 Qwen2 layers of real width) in bf16/fp16 at
batch sizes 1-64 (real-time factor, utterances per second, peak GPU memory), and transcripts of the fixture models in
float32 against bf16/fp16. Run by `benchmarks/gpu_check.sh` on a fresh checkout; by hand:

    python benchmarks/gpu_check.py                                # CUDA, full size
    python benchmarks/gpu_check.py --device cpu --tiny            # the same logic at tiny sizes on a CPU (seconds)

Models are built on the device from their configurations (random weights; the released shapes are the config
defaults): AED-L 16 + 16 layers, 1280 wide, vocabulary 7832; LLM-L the same encoder, the adapter and Qwen2-7B's width
(hidden 3584, 28 heads / 4 key-value heads, feed-forward 18944, vocabulary 152064) with 2 layers instead of 28. Audio:
`--seconds`-long utterances of looped fixture speech (synthetic noise without the fixtures); the features are
computed once per batch on the CPU and are not timed. Random decoders never stop on their own, so each utterance
decodes `--tokens-per-second` x its duration new tokens (4.5: real Mandarin speech), with the release's beam 3
(AED: smoothing 1.25, length penalty 0.6; LLM: repetition penalty 3.0). Timed: encoder + search on the device
(synchronised), after one warm-up per setting. RTF = decoding seconds / audio seconds. Goal for AED-L bf16 batched
on an H100/H200: RTF <= 0.005.

`--budget-s` bounds the run: settings that would start after it are skipped (and listed).
"""

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("FIREREDASR_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
SAMPLING_RATE = 16000
UTTERANCES = [f"p{index:02d}" for index in range(1, 11)]
AED_BEAM_3 = {
    "use_fireredasr_beam_search": True,
    "num_beams": 3,
    "softmax_smoothing": 1.25,
    "gnmt_length_penalty": 0.6,
}
LLM_BEAM_3 = {"num_beams": 3, "repetition_penalty": 3.0, "length_penalty": 1.0}
TINY_ENCODER = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}


class Budget:
    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds
        self.skipped = []

    def allows(self, what: str) -> bool:
        if time.perf_counter() < self.deadline:
            return True
        self.skipped.append(what)
        return False


def speech(seconds: float) -> np.ndarray:
    """Looped fixture speech (float32, 16 kHz), or noise when the fixtures are absent."""
    clips = sorted((FIXTURES / "audio").glob("p*.wav"))
    if not clips:
        return np.random.default_rng(0).standard_normal(int(seconds * SAMPLING_RATE)).astype(np.float32) * 0.1
    import soundfile

    audio = np.concatenate([soundfile.read(path, dtype="float32")[0] for path in clips])
    return np.tile(audio, math.ceil(seconds * SAMPLING_RATE / len(audio)))[: int(seconds * SAMPLING_RATE)]


def build_aed(tiny: bool, device: str):
    from fireredasr_hf import FireRedAedConfig, FireRedAedForConditionalGeneration

    sizes = TINY_ENCODER if tiny else {}
    config = FireRedAedConfig(encoder_config=dict(sizes), **sizes)
    with torch.device(device):
        return FireRedAedForConditionalGeneration(config).eval()


def build_llm(tiny: bool, device: str):
    from fireredasr_hf import FireRedLlmConfig, FireRedLlmForSpeechSeq2Seq
    from fireredasr_hf.configuration_fireredasr import FireRedLlmConfig as _Config

    text_defaults = dict(_Config.sub_configs_defaults["text_config"].init_kwargs)
    text_config = {**text_defaults, "model_type": "qwen2", "num_hidden_layers": 2}
    if tiny:
        text_config.update(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2)
    config = FireRedLlmConfig(encoder_config=dict(TINY_ENCODER if tiny else {}), text_config=text_config)
    with torch.device(device):
        return FireRedLlmForSpeechSeq2Seq(config).eval()


def features(batch_size: int, seconds: float, device: str, dtype: torch.dtype):
    from fireredasr_hf import FireRedAsrFeatureExtractor

    waveform = speech(seconds)
    inputs = FireRedAsrFeatureExtractor()([waveform] * batch_size, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    return {
        "input_features": inputs["input_features"].to(device=device, dtype=dtype),
        "attention_mask": inputs["attention_mask"].to(device),
    }


def count_parameters(model) -> str:
    count = sum(parameter.numel() for parameter in model.parameters())
    return f"{count / 1e9:.2f}B parameters" if count >= 1e8 else f"{count / 1e6:.1f}M parameters"


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 1024**3 if device.startswith("cuda") else float("nan")


def throughput(name: str, model, decoding: dict, args, budget: Budget) -> None:
    """RTF, utterances per second and peak memory per dtype and batch size."""
    new_tokens = max(1, round(args.tokens_per_second * args.seconds))
    print(f"\n{name}: {args.seconds:.0f} s utterances, {new_tokens} new tokens each, {decoding}", flush=True)
    print(f"{'dtype':>10s}{'batch':>7s}{'audio s':>9s}{'decode s':>10s}{'RTF':>9s}{'utt/s':>8s}{'peak GB':>9s}")
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        model.to(dtype)
        for batch_size in args.batch_sizes:
            if not budget.allows(f"{name} {dtype_name} batch {batch_size}"):
                continue
            inputs = features(batch_size, args.seconds, args.device, dtype)
            options = {**decoding, "max_new_tokens": new_tokens}
            model.generate(**inputs, **options)  # warm-up
            synchronize(args.device)
            reset_peak(args.device)
            start = time.perf_counter()
            model.generate(**inputs, **options)
            synchronize(args.device)
            elapsed = time.perf_counter() - start
            audio_seconds = batch_size * args.seconds
            print(
                f"{dtype_name:>10s}{batch_size:7d}{audio_seconds:9.0f}{elapsed:10.3f}{elapsed / audio_seconds:9.4f}"
                f"{batch_size / elapsed:8.1f}{peak_gb(args.device):9.2f}",
                flush=True,
            )


def fixture_equality(args, budget: Budget) -> None:
    """Transcripts of the fixture models (converted from the original format) in float32 and each of `--dtypes`."""
    if not (FIXTURES / "aed-tiny").is_dir():
        print(f"\nfixture transcripts: skipped (no fixtures at {FIXTURES}; set FIREREDASR_FIXTURES)", flush=True)
        return
    import soundfile
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from fireredasr_hf.conversion import convert_checkpoint

    clips = [soundfile.read(FIXTURES / "audio" / f"{uttid}.wav", dtype="float32")[0] for uttid in UTTERANCES]
    print(f"\nfixture transcripts ({len(clips)} utterances, batch of all, beam 3): identical to float32", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as workdir:
        for variant in ("aed", "llm"):
            if not budget.allows(f"fixture transcripts {variant}"):
                continue
            model_dir = convert_checkpoint(FIXTURES / f"{variant}-tiny", Path(workdir) / variant, dtype="float32")
            processor = AutoProcessor.from_pretrained(model_dir)
            inputs = processor(audio=clips, sampling_rate=SAMPLING_RATE, return_tensors="pt")
            transcripts = {}
            for dtype_name in ["float32", *args.dtypes]:
                dtype = getattr(torch, dtype_name)
                model = AutoModelForSpeechSeq2Seq.from_pretrained(model_dir, dtype=dtype).to(args.device).eval()
                batch = {
                    "input_features": inputs["input_features"].to(device=args.device, dtype=dtype),
                    "attention_mask": inputs["attention_mask"].to(args.device),
                }
                ids = model.generate(**batch)
                transcripts[dtype_name] = processor.batch_decode(ids, skip_special_tokens=True)
            for dtype_name in args.dtypes:
                same = sum(a == b for a, b in zip(transcripts[dtype_name], transcripts["float32"]))
                print(f"  {variant.upper()} {dtype_name:>9s}: {same}/{len(clips)}", flush=True)
                for index, (a, b) in enumerate(zip(transcripts[dtype_name], transcripts["float32"])):
                    if a != b:
                        print(f"    {UTTERANCES[index]}: float32 {b!r} / {dtype_name} {a!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (a check of this script, not of speed)")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each utterance (default: 10)")
    parser.add_argument("--tokens-per-second", type=float, default=4.5)
    parser.add_argument("--parts", nargs="+", default=["aed", "llm", "fixtures"])
    parser.add_argument("--budget-s", type=float, default=360.0, help="skip settings that would start later")
    args = parser.parse_args(argv)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: CUDA is not available (use --device cpu --tiny to check the script on a CPU)", file=sys.stderr)
        return 2
    budget = Budget(args.budget_s)
    if args.device.startswith("cuda"):
        properties = torch.cuda.get_device_properties(args.device)
        device_name = f"{properties.name}, {properties.total_memory / 1024**3:.0f} GB"
    else:
        device_name = f"CPU, {torch.get_num_threads()} threads"
    print(f"device {args.device} ({device_name}); torch {torch.__version__}", flush=True)
    torch.manual_seed(0)
    with torch.no_grad():
        if "aed" in args.parts:
            model = build_aed(args.tiny, args.device)
            throughput(f"FireRedASR-AED ({count_parameters(model)})", model, AED_BEAM_3, args, budget)
            del model
        if "llm" in args.parts:
            model = build_llm(args.tiny, args.device)
            name = f"FireRedASR-LLM, 2 Qwen2 layers ({count_parameters(model)})"
            throughput(name, model, LLM_BEAM_3, args, budget)
            del model
        if "fixtures" in args.parts:
            fixture_equality(args, budget)
    if budget.skipped:
        print(f"\nskipped (past --budget-s {args.budget_s:.0f}): {', '.join(budget.skipped)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
