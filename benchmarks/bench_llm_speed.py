# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedASR-LLM throughput by batch size against the original (fireredasr==0.0.2) at its usable batch size 1, same
random weights, and the cost of a decoded token against plain Qwen2 generation of the same length.

    python benchmarks/bench_llm_speed.py [--work_dir DIR] [--llm_layers 2] [--encoder_layers 4] [--rounds 2]

Model: a random original-format FireRedASR-LLM (`bench_llm_conversion_memory.build_original`): a Qwen2 of the real
width (hidden 3584, intermediate 18944, 28 heads / 4 KV heads, vocabulary 152064, untied output matrix) with
`--llm_layers` layers and the release's r-64 LoRA, the LLM-L encoder's width (d_model 1280) with `--encoder_layers`
layers, and the adapter; converted with `convert_llm_checkpoint(dtype="float32")` (LoRA merged). The original runs
as its `FireRedAsr.transcribe` does (ASRFeatExtractor on wav files, `LlmTokenizerWrapper.preprocess_texts`,
`FireRedAsrLlm.transcribe`; float32, eager attention, PEFT LoRA unmerged: its loader's only working setting, as
float16 gives garbage and batches decode wrongly). Ours: the processor on the waveforms and `model.generate`, in
float32 and bfloat16, with PyTorch's linear kernels and with weights packed for oneDNN (`:onednn`,
`cpu_linear.use_onednn_linear(prepack=True)`, what the command line runs on AMD CPUs), batch sizes 1/4/8/16.

Decoding: the release's settings (repetition penalty 3.0, length penalty 1.0), greedy and beam 3, with the number
of new tokens fixed at 4.5 per second of audio (`decode_max_len` / `max_new_tokens`: a random LLM never ends by
itself, real transcripts have about 4.5 tokens per second). Utterances: 16 short ones of 6 s and 4 long ones of
20 s (fixture clips looped), each configuration on its own subset (batch 1: 4 short / 2 long; larger batches: one
or two full batches).

Per-token cost: (time for N new tokens - time for 1) / (N - 1) at batch size 1, greedy, for ours (prompt built from
the audio, repetition penalty) and for plain `Qwen2ForCausalLM.generate` on token ids of the same prompt length
without penalties: the floor of this design on a CPU, where each step reads every weight of the language model.

Every contestant runs in its own process (the float32 models take 6-7 GB each), round after round; times are process
CPU seconds next to wall seconds, torch single-threaded, medians over rounds with the spread (min-max).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLING_RATE = 16000
TOKENS_PER_SECOND = 4.5
SHORT_SECONDS, LONG_SECONDS = 6.0, 20.0
REPETITION_PENALTY, LENGTH_PENALTY = 3.0, 1.0
# (set, beams, batch size, utterances): the configurations of ours; the original runs the batch-size-1 ones.
CONFIGURATIONS = [
    ("short", 1, 1, 4),
    ("short", 1, 4, 8),
    ("short", 1, 8, 8),
    ("short", 1, 16, 16),
    ("short", 3, 1, 4),
    ("short", 3, 4, 8),
    ("short", 3, 8, 8),
    ("long", 1, 1, 2),
    ("long", 1, 4, 4),
    ("long", 3, 1, 2),
    ("long", 3, 4, 4),
]


def utterances(workdir: Path) -> dict:
    """The short and long sets: wav paths (for the original) and their int16 samples (for ours)."""
    import soundfile
    from common import looped_utterances

    sets = {}
    for name, seconds, count in (("short", SHORT_SECONDS, 16), ("long", LONG_SECONDS, 4)):
        paths, waveforms = [], []
        for index, waveform in enumerate(looped_utterances([seconds] * count, offset=0 if name == "short" else 3)):
            path = workdir / f"{name}{index}.wav"
            soundfile.write(path, waveform, SAMPLING_RATE, subtype="PCM_16")
            paths.append(str(path))
            waveforms.append(soundfile.read(path, dtype="int16")[0])
        sets[name] = {"waveforms": waveforms, "paths": paths, "seconds": seconds}
    return sets


class Stopwatch:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_original(workdir: Path, sets: dict) -> dict:
    import torch
    from fireredasr.data.asr_feat import ASRFeatExtractor
    from fireredasr.models.fireredasr_llm import FireRedAsrLlm
    from fireredasr.tokenizer.llm_tokenizer import DEFAULT_SPEECH_TOKEN, LlmTokenizerWrapper

    from fireredasr_hf.conversion.common import load_original_checkpoint

    # The release's `load_firered_llm_model_and_tokenizer` (its module imports modelscope, for downloads).
    original = workdir / "original"
    package = load_original_checkpoint(original / "model.pth.tar")
    package["args"].encoder_path = str(original / "asr_encoder.pth.tar")
    package["args"].llm_dir = str(original / "Qwen2-7B-Instruct")
    model = FireRedAsrLlm.from_args(package["args"])
    model.load_state_dict(package["model_state_dict"], strict=False)
    model.eval()
    tokenizer = LlmTokenizerWrapper.build_llm_tokenizer(package["args"].llm_dir)
    del package
    features = ASRFeatExtractor(str(original / "cmvn.ark"))

    # `LlmTokenizerWrapper.preprocess_texts(decode=True)` for one utterance; its `apply_chat_template` call predates
    # transformers 5, which returns a BatchEncoding unless asked for the ids.
    template = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']}}"
        "{% if loop.last %}{{''}}{% else %}{{ '<|im_end|>\n' }}{% endif %}{% endfor %}"
    )
    messages = [
        {"role": "user", "content": f"{DEFAULT_SPEECH_TOKEN}请转写音频为文字"},
        {"role": "assistant", "content": ""},
    ]
    prompt = tokenizer.apply_chat_template(messages, tokenize=True, chat_template=template, return_dict=False)

    def transcribe(path, beams, new_tokens):
        feats, lengths, _ = features([path])
        input_ids = torch.tensor([prompt], dtype=torch.int)
        attention_mask = torch.ones_like(input_ids)
        with torch.no_grad():
            ids = model.transcribe(
                feats, lengths, input_ids, attention_mask, beams, new_tokens, 0, REPETITION_PENALTY, LENGTH_PENALTY
            )
        return ids[0].tolist()

    transcribe(sets["short"]["paths"][0], 1, 2)  # warm-up
    results = {}
    for set_name, beams, batch_size, count in CONFIGURATIONS:
        if batch_size != 1:
            continue
        new_tokens = round(TOKENS_PER_SECOND * sets[set_name]["seconds"])
        ids = []
        with Stopwatch() as watch:
            for path in sets[set_name]["paths"][:count]:
                ids.append(transcribe(path, beams, new_tokens))
        results[f"{set_name}/{beams}/1"] = {"wall": watch.wall, "cpu": watch.cpu, "count": count, "ids": ids}
    return results


def run_ours(workdir: Path, sets: dict, variant: str) -> dict:
    import torch
    from transformers import AutoProcessor

    from fireredasr_hf import FireRedLlmForSpeechSeq2Seq
    from fireredasr_hf.cpu_linear import use_onednn_linear

    dtype_name, _, kernels = variant.partition(":")
    model = FireRedLlmForSpeechSeq2Seq.from_pretrained(workdir / "converted", dtype=getattr(torch, dtype_name)).eval()
    if kernels == "onednn":
        use_onednn_linear(model, prepack=True)
    processor = AutoProcessor.from_pretrained(workdir / "converted")

    def generate(waveforms, beams, new_tokens, **kwargs):
        options = {"repetition_penalty": REPETITION_PENALTY, "length_penalty": LENGTH_PENALTY, **kwargs}
        inputs = processor(audio=waveforms, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        with torch.no_grad():
            return model.generate(**inputs, num_beams=beams, max_new_tokens=new_tokens, **options)

    generate(sets["short"]["waveforms"][:1], 1, 2)  # warm-up
    results = {}
    for set_name, beams, batch_size, count in CONFIGURATIONS:
        new_tokens = round(TOKENS_PER_SECOND * sets[set_name]["seconds"])
        waveforms = sets[set_name]["waveforms"][:count]
        ids = []
        with Stopwatch() as watch:
            for start in range(0, count, batch_size):
                ids += generate(waveforms[start : start + batch_size], beams, new_tokens).tolist()
        results[f"{set_name}/{beams}/{batch_size}"] = {"wall": watch.wall, "cpu": watch.cpu, "count": count, "ids": ids}

    # Per-token cost at batch size 1, greedy: ours and plain Qwen2 on a prompt of the same length.
    waveform = sets["short"]["waveforms"][:1]
    new_tokens = round(TOKENS_PER_SECOND * SHORT_SECONDS)
    inputs = processor(audio=waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    with torch.no_grad():
        speech_positions = int(model.get_audio_features(**inputs).speech_lengths[0])
    prompt_length = len(model.config.prompt_ids) - 1 + speech_positions
    prompt = torch.randint(0, 150000, (1, prompt_length))

    def plain(count):
        with torch.no_grad():
            return model.language_model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=count,
                min_new_tokens=count,
                num_beams=1,
                do_sample=False,
                eos_token_id=None,
            )

    per_token = {}
    for name, run in (
        ("ours", lambda count: generate(waveform, 1, count)),
        ("ours, no repetition penalty", lambda count: generate(waveform, 1, count, repetition_penalty=1.0)),
        ("plain Qwen2", plain),
    ):
        run(2)
        with Stopwatch() as one:
            run(1)
        with Stopwatch() as many:
            run(new_tokens)
        per_token[name] = {
            "cpu": (many.cpu - one.cpu) / (new_tokens - 1),
            "wall": (many.wall - one.wall) / (new_tokens - 1),
            "first": one.cpu,
        }
    results["per_token"] = per_token
    results["prompt_length"] = prompt_length
    return results


def worker(args):
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    torch.set_num_threads(args.threads)
    sets = utterances(Path(args.scratch))
    if args.worker == "original":
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # the original calls torch.load without it
        results = run_original(args.work_dir, sets)
    else:
        results = run_ours(args.work_dir, sets, args.worker.partition(":")[2])
    print("RESULT " + json.dumps(results))


def build(work_dir: Path, llm_layers: int, encoder_layers: int) -> None:
    from bench_llm_conversion_memory import build_original

    from fireredasr_hf.conversion.llm import convert_llm_checkpoint

    if not (work_dir / "original" / "model.pth.tar").exists():
        build_original(work_dir / "original", llm_layers, encoder_layers=encoder_layers)
    if not (work_dir / "converted" / "config.json").exists():
        convert_llm_checkpoint(work_dir / "original", work_dir / "converted", dtype="float32")


def spawn(name: str, args, scratch: str) -> dict:
    command = [sys.executable, __file__, "--worker", name, "--work_dir", str(args.work_dir), "--scratch", scratch]
    command += ["--threads", str(args.threads)] + (["--only", *args.only] if args.only else [])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def report(runs: dict, args) -> None:
    contestants = list(runs)
    print(f"\nutterances per CPU-second (wall in brackets), medians over {args.rounds} rounds, spread min-max")
    print(f"{'set / decoding / batch':28s}" + "".join(f"{name:>30s}" for name in contestants))
    for set_name, beams, batch_size, count in CONFIGURATIONS:
        key = f"{set_name}/{beams}/{batch_size}"
        seconds = SHORT_SECONDS if set_name == "short" else LONG_SECONDS
        label = f"{set_name} {seconds:.0f} s, {'greedy' if beams == 1 else f'beam {beams}'}, {batch_size}"
        cells = []
        for name in contestants:
            rounds = [r[key] for r in runs[name] if key in r]
            if not rounds:
                cells.append(f"{'-':>30s}")
                continue
            rates = [r["count"] / r["cpu"] for r in rounds]
            wall = statistics.median(r["count"] / r["wall"] for r in rounds)
            cells.append(f"{statistics.median(rates):>10.3f} ({wall:.3f}) {min(rates):.3f}-{max(rates):.3f}".rjust(30))
        print(f"{label:28s}" + "".join(cells))
    reference = runs.get("original")
    if reference:
        print("\ntoken ids identical to the original (batch 1 subsets; larger batches: the same utterances):")
        for name in contestants[1:]:
            same = total = 0
            for set_name, beams, batch_size, count in CONFIGURATIONS:
                original_ids = reference[0].get(f"{set_name}/{beams}/1", {}).get("ids", [])
                ours = runs[name][0][f"{set_name}/{beams}/{batch_size}"]["ids"]
                for a, b in zip(original_ids, ours):
                    same += strip(a) == strip(b)
                    total += 1
            print(f"  {name}: {same}/{total}")
    print("\nper decoded token at batch size 1, greedy (CPU ms, wall ms; median over rounds):")
    for name in contestants[1:]:
        first = runs[name][0]
        for variant in first["per_token"]:
            cpu = statistics.median(r["per_token"][variant]["cpu"] for r in runs[name]) * 1e3
            wall = statistics.median(r["per_token"][variant]["wall"] for r in runs[name]) * 1e3
            print(f"  {name}, {variant}: {cpu:.1f} ms CPU, {wall:.1f} ms wall (prompt {first['prompt_length']} tokens)")


def strip(ids: list[int]) -> list[int]:
    """Token ids up to the first end or padding token (151645 <|im_end|>, 151643 <|endoftext|>)."""
    for position, token in enumerate(ids):
        if token in (151643, 151645):
            return ids[:position]
    return ids


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, help="where the models are built (and reused); default: temporary")
    parser.add_argument("--llm_layers", type=int, default=2)
    parser.add_argument("--encoder_layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--contestants",
        nargs="+",
        default=["original", "ours:float32", "ours:float32:onednn", "ours:bfloat16", "ours:bfloat16:onednn"],
        help="original, or ours:DTYPE[:onednn] (linear layers packed for oneDNN, cpu_linear.use_onednn_linear)",
    )
    parser.add_argument("--only", nargs="+", help="configurations to run, as SET/BEAMS/BATCH (e.g. short/1/8)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        CONFIGURATIONS[:] = [c for c in CONFIGURATIONS if "/".join(map(str, c[:3])) in args.only]
    if args.worker:
        worker(args)
        return

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory(prefix="bench_llm_speed_") as scratch:
        args.work_dir = args.work_dir or Path(scratch) / "models"
        build(args.work_dir, args.llm_layers, args.encoder_layers)
        print(
            f"Qwen2 3584 wide, {args.llm_layers} layers, vocabulary 152064; encoder 1280 wide, {args.encoder_layers} "
            f"layers; torch threads {args.threads}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
            flush=True,
        )
        runs = {name: [] for name in args.contestants}
        for round_index in range(args.rounds):
            for name in args.contestants:
                runs[name].append(spawn(name, args, scratch))
            print(f"round {round_index + 1}/{args.rounds} done (load average {os.getloadavg()[0]:.1f})", flush=True)
        report(runs, args)


if __name__ == "__main__":
    main()
