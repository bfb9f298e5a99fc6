#!/usr/bin/env python
# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Peak memory of converting FireRedASR-LLM and of loading the converted model, in bytes per parameter.

Builds a random original-format FireRedASR-LLM directory with the full LLM-L encoder (d_model 1280, 16 layers,
20 heads, kernel 33) and adapter (2560 -> 3584 -> 3584), and a Qwen2 base LLM of the real width (hidden 3584,
intermediate 18944, 28 heads / 4 KV heads, vocab 152064, untied output matrix, bfloat16) with only `--llm_layers`
layers, carrying the release's r-64 LoRA on every projection. Then, each in a fresh process:

- conversion: `convert_llm_checkpoint(original, output, dtype="bfloat16")` (LoRA merged), and
- loading: `FireRedLlmForSpeechSeq2Seq.from_pretrained(output, dtype=torch.bfloat16)`, alone and followed by reading
  every weight (transformers memory-maps the safetensors files, so weights become resident when first used),

reporting the peak resident set (VmHWM; it includes pages of memory-mapped files, which the kernel can drop) and
the peak anonymous memory (RssAnon sampled every 10 ms: the memory the process itself needs), as bytes per
parameter of the converted model, with and without the process's baseline after its imports.

With the defaults it needs about 11 GB of disk (6 GB original, 4.6 GB converted) and builds the original in about
3 GB of memory.

    python benchmarks/bench_llm_conversion_memory.py [--work_dir DIR] [--llm_layers 2] [--max_shard_size 5GB] [--keep]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
BASE_LLM_DIR = "Qwen2-7B-Instruct"
LORA_RANK = 64
LORA_TARGETS = {
    "self_attn.q_proj": ("hidden", "hidden"),
    "self_attn.k_proj": ("kv", "hidden"),
    "self_attn.v_proj": ("kv", "hidden"),
    "self_attn.o_proj": ("hidden", "hidden"),
    "mlp.gate_proj": ("intermediate", "hidden"),
    "mlp.up_proj": ("intermediate", "hidden"),
    "mlp.down_proj": ("hidden", "intermediate"),
}

# Runs in the measured process: samples /proc/self/status in a thread while `work` runs.
MEASURE = r"""
import json, sys, threading, time

def status():
    values = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmHWM", "RssAnon"):
            values[key] = int(value.split()[0]) * 1024
    return values

peak_anon = 0
done = threading.Event()

def sample():
    global peak_anon
    while not done.is_set():
        peak_anon = max(peak_anon, status()["RssAnon"])
        time.sleep(0.01)

import torch, transformers
from fireredasr_hf.conversion.llm import convert_llm_checkpoint
from fireredasr_hf.modeling_fireredasr_llm import FireRedLlmForSpeechSeq2Seq
baseline = status()
threading.Thread(target=sample, daemon=True).start()
start = time.time()
WORK
seconds = time.time() - start
done.set()
final = status()
print(json.dumps({"baseline_rss": baseline["VmHWM"], "baseline_anon": baseline["RssAnon"], "peak_rss": final["VmHWM"],
                  "peak_anon": max(peak_anon, final["RssAnon"]), "seconds": seconds}))
"""


def random_tensor(shape, dtype=torch.float32, std=0.02):
    return torch.empty(shape, dtype=dtype).normal_(0.0, std)


def build_original(directory: Path, llm_layers: int, encoder_layers: int = 16) -> None:
    """The random original-format directory (keys and args as the release's, encoder built from the original code)."""
    from fireredasr.models.module.conformer_encoder import ConformerEncoder
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from fireredasr_hf.conversion.common import load_original_checkpoint

    source = FIXTURES / "llm-tiny"
    directory.mkdir(parents=True)
    encoder_args = load_original_checkpoint(source / "asr_encoder.pth.tar")["args"]
    for name, value in {
        "d_model": 1280,
        "n_head": 20,
        "n_layers_enc": encoder_layers,
        "n_layers_dec": 16,
        "kernel_size": 33,
        "d_inner": 5120,
        "odim": 7832,
    }.items():
        setattr(encoder_args, name, value)
    torch.save({"args": encoder_args}, directory / "asr_encoder.pth.tar")
    shutil.copy(source / "cmvn.ark", directory / "cmvn.ark")

    # The keys and shapes of a one-block encoder, repeated for every block (faster than building all of them).
    one_block = ConformerEncoder(80, 1, 20, 1280, kernel_size=33).state_dict()
    state_dict = {}
    for key, tensor in one_block.items():
        if key == "positional_encoding.pe":
            state_dict[f"encoder.{key}"] = tensor
        elif key.startswith("layer_stack.0."):
            for block in range(encoder_layers):
                state_dict[f"encoder.layer_stack.{block}.{key[len('layer_stack.0.') :]}"] = random_tensor(tensor.shape)
        else:
            state_dict[f"encoder.{key}"] = random_tensor(tensor.shape)
    del one_block
    state_dict["encoder_projector.linear1.weight"] = random_tensor((3584, 2560))
    state_dict["encoder_projector.linear1.bias"] = random_tensor((3584,))
    state_dict["encoder_projector.linear2.weight"] = random_tensor((3584, 3584))
    state_dict["encoder_projector.linear2.bias"] = random_tensor((3584,))
    widths = {"hidden": 3584, "kv": 512, "intermediate": 18944}
    for layer in range(llm_layers):
        for module, (out_features, in_features) in LORA_TARGETS.items():
            key = f"llm.base_model.model.model.layers.{layer}.{module}"
            state_dict[f"{key}.lora_A.default.weight"] = random_tensor((LORA_RANK, widths[in_features]))
            state_dict[f"{key}.lora_B.default.weight"] = random_tensor((widths[out_features], LORA_RANK))
    llm_args = load_original_checkpoint(source / "model.pth.tar")["args"]
    torch.save({"args": llm_args, "model_state_dict": state_dict}, directory / "model.pth.tar")
    del state_dict

    llm_dir = directory / BASE_LLM_DIR
    text_config = Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=llm_layers,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
        dtype="bfloat16",
    )
    text_config.save_pretrained(llm_dir)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "generation_config.json",
    ):
        shutil.copy(source / BASE_LLM_DIR / name, llm_dir / name)
    with torch.device("meta"):
        shapes = {key: tensor.shape for key, tensor in Qwen2ForCausalLM(text_config).state_dict().items()}
    from safetensors.torch import save_file

    weight_map, shard, shard_bytes, shard_index = {}, {}, 0, 0

    def flush():
        nonlocal shard, shard_bytes, shard_index
        shard_index += 1
        name = f"model-{shard_index:05d}.safetensors"
        save_file(shard, llm_dir / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
        shard, shard_bytes = {}, 0

    for key, shape in shapes.items():
        shard[key] = random_tensor(shape, torch.bfloat16)
        shard_bytes += shard[key].numel() * 2
        if shard_bytes > 2**31:
            flush()
    if shard:
        flush()
    (llm_dir / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def measure(work: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE.replace("WORK", work)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, default=None, help="where to build (default: a temporary folder)")
    parser.add_argument("--llm_layers", type=int, default=2, help="Qwen2 layers of the random base LLM")
    parser.add_argument("--max_shard_size", default="5GB", help="shard size of the converted model")
    parser.add_argument("--keep", action="store_true", help="keep the built and converted directories")
    args = parser.parse_args(argv)

    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="fireredasr-llm-bench-"))
    original, converted = work_dir / "original", work_dir / "converted"
    try:
        start = time.time()
        build_original(original, args.llm_layers)
        print(f"built the random original in {time.time() - start:.0f} s")

        conversion = measure(
            f"convert_llm_checkpoint({str(original)!r}, {str(converted)!r}, dtype='bfloat16', "
            f"max_shard_size={args.max_shard_size!r})"
        )
        load = f"model = FireRedLlmForSpeechSeq2Seq.from_pretrained({str(converted)!r}, dtype=torch.bfloat16)"
        loading = measure(load)
        # transformers maps the safetensors file into memory: the weights are read (and become resident) when used.
        reading = measure(load + "\nchecksum = sum(parameter.amax().item() for parameter in model.parameters())")
        index_file = converted / "model.safetensors.index.json"
        if index_file.is_file():
            total_bytes = json.loads(index_file.read_text())["metadata"]["total_size"]
        else:
            total_bytes = (converted / "model.safetensors").stat().st_size
        num_parameters = total_bytes // 2  # bfloat16

        print(
            f"converted model: {num_parameters:,} parameters ({args.llm_layers} of 28 Qwen2 layers), "
            f"max_shard_size {args.max_shard_size}"
        )
        results = (("conversion", conversion), ("loading (bf16)", loading), ("loading + reading every weight", reading))
        for name, result in results:
            print(
                f"{name}: {result['seconds']:.0f} s; "
                f"peak RSS {result['peak_rss'] / 2**30:.2f} GiB = {result['peak_rss'] / num_parameters:.2f} B/param "
                f"({(result['peak_rss'] - result['baseline_rss']) / num_parameters:.2f} above the "
                f"{result['baseline_rss'] / 2**30:.2f} GiB baseline); "
                f"peak anonymous {result['peak_anon'] / 2**30:.2f} GiB = {result['peak_anon'] / num_parameters:.2f} "
                f"B/param ({(result['peak_anon'] - result['baseline_anon']) / num_parameters:.2f} above baseline)"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
