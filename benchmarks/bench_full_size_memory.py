# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Peak memory of the full-size models, measured: load + generate on real-length audio, random weights at real shape.

    python benchmarks/bench_full_size_memory.py [--variants llm aed] [--workdir /tmp] [--keep]

Builds converted checkpoints with random weights at the released shapes in `--workdir` (deleted afterwards unless
`--keep`; check `df -h` first: about 16 GiB for the LLM, 4.3 + 2.1 GiB for the AED):
- FireRedASR-LLM-L: the Conformer encoder of AED-L (16 layers, 1280 wide), the adapter, and Qwen2-7B-Instruct's full
  shape (28 layers, hidden 3584, 152064 vocabulary, untied output layer), bfloat16 (as `convert` writes it);
- FireRedASR-AED-L: 16 + 16 layers, 1280 wide, vocabulary 7832, float32 (as `convert` writes it) and bfloat16
  (`convert --dtype bfloat16`).
The processor files come from the fixture models (the tokenizers are only needed for the files to load).

Each measurement runs in a fresh process: `from_pretrained(dtype=...)`, then `generate` on looped fixture speech of
the given length (LLM: 30 s, its trained limit; AED: 60 s, its limit, beam 3 as configured). Random weights never
stop on their own, so decoding is capped at `--llm-new-tokens` / `--aed-new-tokens` (the AED default, 270, is what
60 s of speech produces at ~4.5 tokens per second); the memory of a step does not grow with the step count except
for the small self-attention cache. Reported: the measuring process's peak resident set size (VmHWM; file pages of
memory-mapped weights count too) after loading and after generating, with the times. Goal for the LLM: <= 18 GB.
Sizes are in GiB (2**30 bytes).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

SAMPLING_RATE = 16000
SHARD_BYTES = 2 * 1024**3


def peak_rss_gb() -> float:
    """This process's peak resident set size. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    through exec, so a measuring process started by a larger one would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def build_checkpoint(variant: str, target: Path, stored_dtype: str) -> Path:
    """A converted model directory with random weights at the released shape (written shard by shard)."""
    from common import FIXTURES
    from safetensors.torch import save_file

    from fireredasr_hf import (
        FireRedAedConfig,
        FireRedAedForConditionalGeneration,
        FireRedLlmConfig,
        FireRedLlmForSpeechSeq2Seq,
    )
    from fireredasr_hf.conversion import convert_checkpoint

    if (target / "model.safetensors.index.json").is_file():
        print(f"reusing {target}", flush=True)
        return target
    # The tiny fixture model converted, for the processor files, then the weights and config replaced.
    convert_checkpoint(FIXTURES / f"{variant}-tiny", target, dtype=stored_dtype)
    for stale in target.glob("model*.safetensors*"):
        stale.unlink()
    config_class, model_class = {
        "llm": (FireRedLlmConfig, FireRedLlmForSpeechSeq2Seq),
        "aed": (FireRedAedConfig, FireRedAedForConditionalGeneration),
    }[variant]
    tiny_config = config_class.from_pretrained(target)
    config = config_class()  # the released shapes are the defaults
    config.architectures, config.auto_map = tiny_config.architectures, tiny_config.auto_map
    config.custom_pipelines = getattr(tiny_config, "custom_pipelines", None)
    dtype = getattr(torch, stored_dtype)
    config.dtype = dtype
    with torch.device("meta"):
        model = model_class(config)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    generator = torch.Generator().manual_seed(0)
    shard, shard_bytes, weight_map, total = {}, 0, {}, 0
    names = [name for name in model.state_dict() if name not in tied]
    shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
    del model
    start = time.perf_counter()
    for name in names:
        shape = shapes[name]
        if len(shape) == 1 and name.endswith("weight"):
            tensor = torch.ones(shape, dtype=dtype)  # norm gains
        elif len(shape) == 1:
            tensor = torch.zeros(shape, dtype=dtype)
        else:
            tensor = (torch.randn(shape, generator=generator) * 0.02).to(dtype)
        shard[name] = tensor
        shard_bytes += tensor.numel() * tensor.element_size()
        if shard_bytes >= SHARD_BYTES:
            total += write_shard(shard, target, len(set(weight_map.values())) + 1, weight_map, save_file)
            shard, shard_bytes = {}, 0
    if shard:
        total += write_shard(shard, target, len(set(weight_map.values())) + 1, weight_map, save_file)
    # Shard names are numbered as written; the index names each file.
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (target / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config.save_pretrained(target)
    print(
        f"wrote {total / 1024**3:.1f} GiB of random {variant} weights in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return target


def write_shard(shard: dict, target: Path, number: int, weight_map: dict, save_file) -> int:
    filename = f"model-{number:05d}.safetensors"
    save_file(shard, str(target / filename), metadata={"format": "pt"})
    weight_map.update({name: filename for name in shard})
    return sum(tensor.numel() * tensor.element_size() for tensor in shard.values())


def measure(args) -> None:
    """One load + generate, in this (fresh) process; prints one JSON line."""
    from common import looped_utterances
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    import fireredasr_hf  # noqa: F401 (registers the classes)

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    result = {"variant": args.variant, "dtype": args.dtype, "audio_s": args.seconds, "baseline_gb": peak_rss_gb()}
    start = time.perf_counter()
    model = AutoModelForSpeechSeq2Seq.from_pretrained(args.model, dtype=dtype).eval()
    processor = AutoProcessor.from_pretrained(args.model)
    result["load_s"] = time.perf_counter() - start
    result["after_load_gb"] = peak_rss_gb()
    result["parameters_b"] = sum(parameter.numel() for parameter in model.parameters()) / 1e9

    waveform = looped_utterances([args.seconds])[0]
    inputs = processor(audio=waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    inputs = {key: value.to(dtype) if value.is_floating_point() else value for key, value in inputs.items()}
    start = time.perf_counter()
    generated = model.generate(**inputs, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    result["generate_s"] = time.perf_counter() - start
    # The LLM returns the new tokens, the AED the start token and the new tokens.
    result["new_tokens"] = int(generated.shape[-1]) - (1 if args.variant == "aed" else 0)
    result["after_generate_gb"] = peak_rss_gb()
    print(json.dumps(result), flush=True)


def run_measurement(model_dir: Path, variant: str, dtype: str, seconds: float, new_tokens: int, threads: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "measure",
        "--model",
        str(model_dir),
        "--variant",
        variant,
        "--dtype",
        dtype,
        "--seconds",
        str(seconds),
        "--new-tokens",
        str(new_tokens),
        "--threads",
        str(threads),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"measurement failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    inner = sub.add_parser("measure")
    inner.add_argument("--model", required=True)
    inner.add_argument("--variant", required=True)
    inner.add_argument("--dtype", required=True)
    inner.add_argument("--seconds", type=float, required=True)
    inner.add_argument("--new-tokens", type=int, required=True)
    inner.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["llm", "aed"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--keep", action="store_true", help="keep the random checkpoints")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--llm-new-tokens", type=int, default=8)
    parser.add_argument("--aed-new-tokens", type=int, default=270)
    args = parser.parse_args()
    if args.command == "measure":
        measure(args)
        return

    print(
        f"{os.cpu_count()} CPUs, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.1f} GB RAM; "
        f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}",
        flush=True,
    )
    # (variant, dtype the checkpoint is stored in, dtype it is loaded in, audio seconds, new tokens)
    plans = {
        "llm": [("bfloat16", "bfloat16", 30.0, args.llm_new_tokens)],
        "aed": [
            ("float32", "float32", 60.0, args.aed_new_tokens),
            ("float32", "bfloat16", 60.0, args.aed_new_tokens),
            ("bfloat16", "bfloat16", 60.0, args.aed_new_tokens),
        ],
    }
    results = []
    for variant in args.variants:
        for stored in dict.fromkeys(stored for stored, *_ in plans[variant]):
            model_dir = args.workdir / f"fireredasr-{variant}-l-random-{stored}"
            try:
                build_checkpoint(variant, model_dir, stored)
                for _, dtype, seconds, new_tokens in (plan for plan in plans[variant] if plan[0] == stored):
                    result = run_measurement(model_dir, variant, dtype, seconds, new_tokens, args.threads)
                    result["stored"] = stored
                    results.append(result)
                    print(json.dumps(result), flush=True)
            finally:
                if not args.keep:
                    shutil.rmtree(model_dir, ignore_errors=True)
    print(
        f"\n{'model':8s}{'stored':>10s}{'loaded':>10s}{'params':>8s}{'audio':>7s}{'tokens':>8s}{'load s':>8s}"
        f"{'generate s':>12s}{'peak RSS after load':>21s}{'after generate':>16s}"
    )
    for r in results:
        print(
            f"{r['variant'].upper() + '-L':8s}{r['stored']:>10s}{r['dtype']:>10s}{r['parameters_b']:7.2f}B"
            f"{r['audio_s']:6.0f}s{r['new_tokens']:8d}{r['load_s']:8.0f}{r['generate_s']:12.0f}"
            f"{r['after_load_gb']:17.2f} GiB{r['after_generate_gb']:12.2f} GiB"
        )


if __name__ == "__main__":
    main()
