# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Peak memory of converting a full-size FireRedASR-AED-L checkpoint, of loading it, and of one generate call.

    python benchmarks/bench_aed_conversion_memory.py [--workdir /tmp] [--threads 2]

A random-weight checkpoint of the released AED-L shape (d_model 1280, 20 heads, 16 + 16 layers, kernel 33,
vocabulary 7832, pe_maxlen 5000; ~4.7 GB fp32, the tied embedding and output projection stored as two tensors as in
the release) is written in the original format to a temporary folder, which is deleted at the end. Each step runs in
its own subprocess, which reports its peak resident set size (`getrusage(RUSAGE_SELF).ru_maxrss`, the kernel's
high-water mark) and, from /proc/self/status sampled every few milliseconds, the peak split into anonymous memory
(heap: copies of tensors) and file-backed pages (memory-mapped checkpoint files, which the kernel can drop under
pressure) per stage:
1. build: the original `FireRedAsrAed` with PyTorch's default initialisation, saved with `torch.save`;
2. convert: `fireredasr_hf.conversion.convert_checkpoint` (what conversion/convert_fireredasr_to_hf.py runs);
3. load + generate: `FireRedAedForConditionalGeneration.from_pretrained`, then one `generate` on 5 s of audio with
   the converted generation config (random weights: it decodes to the maximum length, the encoder length).
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GB = 1e9
FREE_DISK_NEEDED = 15 * GB  # original ~4.7 GB + converted ~4.5 GB + headroom
AED_L_SHAPE = {"d_model": 1280, "n_head": 20, "n_layers_enc": 16, "n_layers_dec": 16, "odim": 7832}


class MemoryMonitor:
    """Samples this process's RSS split (anonymous / file-backed) and keeps the peaks of each named stage."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.stages = []
        self.stage_peak = {"rss": 0, "anon": 0, "file": 0}
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    @staticmethod
    def read():
        fields = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                fields[name] = int(value.split()[0]) * 1024
        return {"rss": fields["VmRSS"], "anon": fields["RssAnon"], "file": fields["RssFile"] + fields["RssShmem"]}

    def _sample(self):
        while self.running:
            self._update(self.read())
            time.sleep(self.interval)

    def _update(self, sample):
        with self.lock:
            for key, value in sample.items():
                self.stage_peak[key] = max(self.stage_peak[key], value)

    def mark(self, stage):
        """Close the stage that ends now: its peaks and the memory held at its end."""
        now = self.read()
        self._update(now)
        with self.lock:
            self.stages.append({"stage": stage, "peak": dict(self.stage_peak), "end": now})
            self.stage_peak = dict(now)

    def report(self, **extra):
        self.running = False
        self.thread.join()
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        print("RESULT " + json.dumps({"max_rss": max_rss, "stages": self.stages, **extra}), flush=True)


def child_build(workdir: Path):
    monitor = MemoryMonitor()
    from common import build_original_aed, original_aed_args, original_state_dict, write_original_aed_dir

    args = original_aed_args(**AED_L_SHAPE, kernel_size=33, pe_maxlen=5000)
    monitor.mark("imports")
    model = build_original_aed(args)
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    monitor.mark("FireRedAsrAed.from_args (random init)")
    state_dict = original_state_dict(model)
    checkpoint_bytes = sum(t.numel() * t.element_size() for t in state_dict.values())
    write_original_aed_dir(workdir / "original", args, state_dict)
    monitor.mark("torch.save")
    monitor.report(parameter_bytes=parameter_bytes, checkpoint_tensor_bytes=checkpoint_bytes)


def child_convert(workdir: Path):
    monitor = MemoryMonitor()
    import inspect

    from fireredasr_hf.conversion import aed, convert_checkpoint

    monitor.mark("imports")

    def traced(function, label):
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            monitor.mark(label)
            return result

        return wrapper

    # Each stage ends when one of the conversion's helpers (or a load/save method) returns.
    for name, value in list(vars(aed).items()):
        if inspect.isfunction(value) and name != "convert_aed_checkpoint":
            setattr(aed, name, traced(value, name))
    for cls, method in [
        (aed.FireRedAedForConditionalGeneration, "load_state_dict"),
        (aed.FireRedAedForConditionalGeneration, "save_pretrained"),
        (aed.FireRedAsrProcessor, "save_pretrained"),
    ]:
        setattr(cls, method, traced(getattr(cls, method), f"{cls.__name__}.{method}"))
    convert_checkpoint(workdir / "original", workdir / "converted")
    monitor.mark("rest of convert_checkpoint")
    monitor.report()


def child_load_generate(workdir: Path):
    monitor = MemoryMonitor()
    import numpy as np
    import soundfile
    from common import FIXTURES
    from transformers import AutoProcessor

    from fireredasr_hf import FireRedAedForConditionalGeneration

    monitor.mark("imports")
    model = FireRedAedForConditionalGeneration.from_pretrained(workdir / "converted")
    monitor.mark("from_pretrained")
    processor = AutoProcessor.from_pretrained(workdir / "converted")
    clips = [soundfile.read(path, dtype="int16")[0] for path in sorted((FIXTURES / "audio").glob("p*.wav"))]
    inputs = processor(np.concatenate(clips)[: 5 * 16000], sampling_rate=16000, return_tensors="pt")
    monitor.mark("processor")
    start = time.perf_counter()
    sequences = model.generate(**inputs)
    seconds = time.perf_counter() - start
    monitor.mark("generate (5 s of audio)")
    monitor.report(generated_tokens=sequences.shape[1] - 1, generate_seconds=seconds)


CHILDREN = {"build": child_build, "convert": child_convert, "load_generate": child_load_generate}


def run_child(role, workdir, threads):
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, __file__, "--child", role, "--workdir", str(workdir), "--threads", str(threads)],
        check=False,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"step {role} failed:\n{completed.stdout}\n{completed.stderr}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :]), time.perf_counter() - start


def print_step(title, result, seconds, weight_bytes):
    print(
        f"\n{title}: peak RSS {result['max_rss'] / GB:.2f} GB = {result['max_rss'] / weight_bytes:.2f}x the fp32 "
        f"weights ({seconds:.0f} s)"
    )
    print(f"  {'stage':62s} {'peak RSS':>9s} {'anon':>7s} {'file':>7s}   {'held after: anon':>16s} {'file':>6s}")
    for stage in result["stages"]:
        peak, end = stage["peak"], stage["end"]
        print(
            f"  {stage['stage']:62s} {peak['rss'] / GB:9.2f} {peak['anon'] / GB:7.2f} {peak['file'] / GB:7.2f}"
            f"   {end['anon'] / GB:16.2f} {end['file'] / GB:6.2f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()), help="where the temp folder goes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in each step")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        CHILDREN[args.child](args.workdir)
        return

    free = shutil.disk_usage(args.workdir).free
    if free < FREE_DISK_NEEDED:
        raise SystemExit(
            f"{args.workdir} has {free / GB:.1f} GB free; this benchmark needs {FREE_DISK_NEEDED / GB:.0f}."
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench_aed_memory_", dir=args.workdir))
    try:
        build, build_seconds = run_child("build", workdir, args.threads)
        weight_bytes = build["parameter_bytes"]
        original_file = (workdir / "original" / "model.pth.tar").stat().st_size
        print(
            f"AED-L shape {AED_L_SHAPE}: fp32 parameters {weight_bytes / GB:.2f} GB (tied matrix once); original "
            f"state dict {build['checkpoint_tensor_bytes'] / GB:.2f} GB (+ pe buffers, projection stored twice); "
            f"model.pth.tar {original_file / GB:.2f} GB. Multiples below are of the fp32 parameters."
        )
        print_step("build + torch.save (original classes)", build, build_seconds, weight_bytes)

        convert, convert_seconds = run_child("convert", workdir, args.threads)
        converted_bytes = sum(path.stat().st_size for path in (workdir / "converted").glob("*.safetensors"))
        print_step("convert_checkpoint", convert, convert_seconds, weight_bytes)
        print(f"  converted safetensors: {converted_bytes / GB:.2f} GB")

        load, load_seconds = run_child("load_generate", workdir, args.threads)
        print_step("from_pretrained + generate", load, load_seconds, weight_bytes)
        print(f"  generate: {load['generated_tokens']} tokens in {load['generate_seconds']:.1f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
