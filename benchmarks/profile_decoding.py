# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Where decoding spends its time: torch.profiler's top operators for the AED decoder (batch size 1, beam 3 and
greedy) and the LLM's decoding (batch size 1, greedy), on the random mid-size models of the benchmarks.

    python benchmarks/profile_decoding.py [--work_dir DIR] [--dtype float32] [--onednn] [--rows 12] [--skip-llm]

AED: `common.build_converted_aed` (d_model 1280, 4 + 4 layers, vocabulary 7832, decoder shaped to end after ~45
tokens), a 10 s utterance; the encoder runs once before the profile (`encoder_outputs` are given to generate), so the
profile is the decoding loop alone. LLM: the model of bench_llm_speed.py (`--work_dir` with its `converted/`, built
there if missing: Qwen2 3584 wide with 2 layers, vocabulary 152064), a 6 s utterance, 27 new tokens.

Run it with `PYTHONPATH=<another checkout>/src` to profile another version of the code (the script uses only the
models' public API; `--onednn` needs `fireredasr_hf.cpu_linear`). Per-step CPU times are process CPU time (median of
3 runs); the profiler's times are wall-clock, so on a busy machine compare shares rather than milliseconds.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_converted_aed, looped_utterances  # noqa: E402


def cpu_seconds(run, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times)


def print_profile(title, run, rows):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    print(f"\n{title}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=42))


def prepare(model, onednn):
    if onednn:
        from fireredasr_hf.cpu_linear import use_onednn_linear

        use_onednn_linear(model, prepack=True)
    return model


def profile_aed(work_dir: Path, dtype, onednn: bool, rows: int):
    from transformers import AutoProcessor

    from fireredasr_hf import FireRedAedForConditionalGeneration

    model_dir = work_dir / "aed" / "converted"
    if not (model_dir / "config.json").exists():
        build_converted_aed(work_dir / "aed", encoder_layers=4, decoder_layers=4, eos_after_tokens=45)
    model = prepare(FireRedAedForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).eval(), onednn)
    processor = AutoProcessor.from_pretrained(model_dir)
    inputs = processor(looped_utterances([10.0])[0] * 32768, sampling_rate=16000, return_tensors="pt").to(dtype)
    with torch.no_grad():
        encoder_outputs = model.get_encoder()(inputs.input_features, attention_mask=inputs.attention_mask)
    for beams in (3, 1):

        def run(beams=beams):
            return model.generate(encoder_outputs=encoder_outputs, num_beams=beams)

        steps = run().shape[1] - 1
        seconds = cpu_seconds(run)
        print_profile(
            f"AED decoding, batch size 1, {'beam 3' if beams == 3 else 'greedy'}: {steps} steps, "
            f"{seconds / steps * 1e3:.2f} ms CPU per step (load average {os.getloadavg()[0]:.1f})",
            run,
            rows,
        )


def profile_llm(work_dir: Path, dtype, onednn: bool, rows: int):
    from transformers import AutoProcessor

    from fireredasr_hf import FireRedLlmForSpeechSeq2Seq

    model_dir = work_dir / "llm" / "converted"
    if not (model_dir / "config.json").exists():
        from bench_llm_speed import build

        build(work_dir / "llm", llm_layers=2, encoder_layers=4)
    model = prepare(FireRedLlmForSpeechSeq2Seq.from_pretrained(model_dir, dtype=dtype).eval(), onednn)
    processor = AutoProcessor.from_pretrained(model_dir)
    inputs = processor(audio=looped_utterances([6.0])[0] * 32768, sampling_rate=16000, return_tensors="pt")
    new_tokens = 27

    def run(count=new_tokens):
        return model.generate(**inputs, num_beams=1, max_new_tokens=count)

    run(2)
    per_token = (cpu_seconds(run) - cpu_seconds(lambda: run(1))) / (new_tokens - 1)
    print_profile(
        f"LLM generate, batch size 1, greedy, {new_tokens} new tokens: {per_token * 1e3:.1f} ms CPU per token after "
        f"the first (load average {os.getloadavg()[0]:.1f})",
        run,
        rows,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, required=True, help="where the random models are built and reused")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--onednn", action="store_true", help="linear layers packed for oneDNN (cpu_linear)")
    parser.add_argument("--rows", type=int, default=12, help="operators shown")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-llm", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(f"{args.dtype}{', oneDNN packed linear layers' if args.onednn else ''}; torch threads {args.threads}")
    profile_aed(args.work_dir, dtype, args.onednn, args.rows)
    if not args.skip_llm:
        profile_llm(args.work_dir, dtype, args.onednn, args.rows)


if __name__ == "__main__":
    main()
