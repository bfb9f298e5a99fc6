#!/usr/bin/env python
# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The bad-input and fault sweep: feeds hostile and careless inputs to the pipeline, processor, generate(),
tokenizer, converter, model loading and command line, and prints a table of case -> outcome with counts.

    PYTHONPATH=src python scripts/bad_input_sweep.py                   # everything (about 10 minutes on 2 cores)
    PYTHONPATH=src python scripts/bad_input_sweep.py --groups generate tokenizer --no-cli
    PYTHONPATH=src python scripts/bad_input_sweep.py --json sweep.json # also write the results as JSON

Outcomes:
    ok           the input is valid and gave the right result
    clear error  the input is invalid and was refused with an error of a plain type (ValueError, TypeError,
                 OSError, ...) whose message names the file or argument at fault (the CLI: exit code 1 or 2, one
                 `error:` / `FAILED` line, no traceback)
    obscure      an error, but from deep inside (IndexError, RuntimeError, UnicodeError, MemoryError, a crash, a
                 time-out), or one that does not say what is wrong
    wrong        no error, but a wrong result: an invalid input accepted and decoded, a valid one refused, code run
                 from a model file, a file written outside the output folder, a partial conversion left behind
    lost         finished results lost (neither the outputs nor a resumable log hold them)
    skipped      the case cannot run here (file permissions, when run as root); not a verdict

Every case runs in a forked child process with a memory cap (address space of the parent + 4 GiB) and a time-out,
so that resource bombs and crashes are measured, not suffered. It needs the shared fixtures (`../shared/fixtures`
or `$FIREREDASR_FIXTURES`). It uses only the public API of fireredasr-hf, so it also measures older versions
(point PYTHONPATH at their `src`).
"""

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import wave
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
import soundfile
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("FIREREDASR_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
OUTCOMES = ("ok", "clear error", "obscure", "wrong", "lost", "skipped")
# Error types that can be a clear refusal (if the message names what is wrong). UnicodeError and JSONDecodeError are
# ValueErrors raised deep inside a reader, not refusals.
CLEAR_ERROR_TYPES = (ValueError, TypeError, OSError, ImportError, NotImplementedError)
OBSCURE_ERROR_TYPES = (UnicodeError, json.JSONDecodeError, MemoryError, RecursionError)
MEMORY_HEADROOM = 4 << 30
SAMPLING_RATE = 16000


class Wrong(Exception):
    """Raised by a case's own check: the call returned, but with a wrong result (or did something it must not)."""


class Lost(Exception):
    """Raised by a CLI case: finished results are gone."""


class Skipped(Exception):
    """Raised by a case that cannot run here (e.g. file permissions do not bind root); not counted."""


@dataclass
class Case:
    group: str
    name: str
    run: Callable
    expect: str = "error"  # "error": must be refused clearly; "ok": must work (run raises Wrong if the result is bad)
    mentions: tuple = ()  # a clear error names one of these (case-insensitive); empty: any message
    timeout: float = 180.0


@dataclass
class Result:
    case: Case
    outcome: str
    detail: str
    seconds: float = 0.0


@dataclass
class Context:
    """What the cases share, built once in the parent before the cases are forked."""

    work: Path
    resources: dict = field(default_factory=dict)

    def get(self, name, build):
        if name not in self.resources:
            self.resources[name] = build()
        return self.resources[name]


# ------------------------------------------------------------------------------------------------------------------
# Verdicts


def first_line(text: str) -> str:
    text = str(text).strip()
    return text.splitlines()[0] if text else ""


def error_verdict(case: Case, error: BaseException) -> tuple[str, str]:
    message = str(error)
    summary = f"{type(error).__name__}: {first_line(message)[:160]}"
    if isinstance(error, Wrong):
        return "wrong", str(error)
    if isinstance(error, Lost):
        return "lost", str(error)
    if isinstance(error, Skipped):
        return "skipped", str(error)
    if case.expect == "ok":
        return ("wrong" if isinstance(error, CLEAR_ERROR_TYPES) else "obscure"), f"valid input refused: {summary}"
    if isinstance(error, OBSCURE_ERROR_TYPES) or not isinstance(error, CLEAR_ERROR_TYPES):
        return "obscure", summary
    if case.mentions and not any(str(m).lower() in message.lower() for m in case.mentions):
        return "obscure", f"does not name {' / '.join(map(str, case.mentions))}: {summary}"
    return "clear error", summary


def run_case(case: Case, context: Context) -> tuple[str, str]:
    try:
        value = case.run(context)
    except BaseException as error:  # noqa: BLE001 (every failure is classified)
        return error_verdict(case, error)
    if case.expect == "ok":
        return "ok", "" if value is None else str(value)[:160]
    return "wrong", f"accepted: {str(value)[:160]}" if value is not None else "accepted without an error"


def child_main(case: Case, context: Context, connection) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        vm_size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    limit = vm_size + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        verdict = run_case(case, context)
    except BaseException as error:  # noqa: BLE001
        verdict = ("obscure", f"{type(error).__name__} in the verdict: {error}")
    connection.send(verdict)
    connection.close()
    os._exit(0)


def run_isolated(case: Case, context: Context) -> Result:
    start = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=child_main, args=(case, context, sender))
    process.start()
    sender.close()
    verdict = None
    if receiver.poll(case.timeout):
        try:
            verdict = receiver.recv()
        except EOFError:
            verdict = None
    process.join(5)
    if process.is_alive():
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        if verdict is None:
            verdict = ("obscure", f"no answer within {case.timeout:.0f} s (hang or runaway work)")
    if verdict is None:
        code = process.exitcode
        verdict = ("obscure", f"the process died ({'signal ' + str(-code) if code and code < 0 else f'exit {code}'})")
    return Result(case, verdict[0], verdict[1], time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------------------------
# Shared resources


def convert(source: Path, target: Path, **kwargs) -> Path:
    from fireredasr_hf.conversion import convert_checkpoint

    if not target.exists():
        convert_checkpoint(source, target, **kwargs)
    return target


def aed_dir(ctx: Context) -> Path:
    return ctx.get("aed_dir", lambda: convert(FIXTURES / "aed-tiny", ctx.work / "aed-hf"))


def llm_dir(ctx: Context) -> Path:
    return ctx.get("llm_dir", lambda: convert(FIXTURES / "llm-tiny", ctx.work / "llm-hf", dtype="float32"))


def build_pipeline(model_dir: Path):
    from transformers import pipeline

    import fireredasr_hf  # noqa: F401

    return pipeline("automatic-speech-recognition", model=str(model_dir))


def aed_pipe(ctx):
    return ctx.get("aed_pipe", lambda: build_pipeline(aed_dir(ctx)))


def llm_pipe(ctx):
    return ctx.get("llm_pipe", lambda: build_pipeline(llm_dir(ctx)))


def clip(ctx, uttid="p01") -> np.ndarray:
    return ctx.get(f"clip_{uttid}", lambda: soundfile.read(FIXTURES / "audio" / f"{uttid}.wav", dtype="float32")[0])


def reference_text(ctx, uttid="p01") -> str:
    return ctx.get(f"ref_{uttid}", lambda: aed_pipe(ctx)(clip(ctx, uttid).copy())["text"])


def aed_features(ctx):
    def build():
        pipe = aed_pipe(ctx)
        return dict(pipe.feature_extractor(clip(ctx), sampling_rate=SAMPLING_RATE, return_tensors="pt"))

    return ctx.get("aed_features", build)


def llm_features(ctx):
    def build():
        pipe = llm_pipe(ctx)
        return dict(pipe.feature_extractor(clip(ctx), sampling_rate=SAMPLING_RATE, return_tensors="pt"))

    return ctx.get("llm_features", build)


def scratch(ctx, name: str) -> Path:
    """A fresh folder for one case (cases run in child processes; names are unique per case)."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx.work))
    return path


def link_copy(source: Path, target: Path, replace: tuple = ()) -> Path:
    """A copy of an original model folder made of symbolic links, except the `replace` files (real copies)."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name in replace:
            if entry.is_dir():
                shutil.copytree(entry, target / entry.name)
            else:
                shutil.copy(entry, target / entry.name)
        else:
            (target / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
    return target


def load_package(path: Path) -> dict:
    """An original checkpoint, read without running code (tensors and argparse.Namespace only), with its tensors in
    memory (not mapped from the file, which the cases overwrite)."""
    try:
        from fireredasr_hf.conversion.common import load_original_checkpoint
    except ImportError:  # versions before the safe loader
        with torch.serialization.safe_globals([argparse.Namespace]):
            package = torch.load(path, map_location="cpu", weights_only=True)  # noqa: S614
    else:
        package = load_original_checkpoint(path)
    return {
        key: {k: v.clone() for k, v in value.items()} if key == "model_state_dict" else value
        for key, value in package.items()
    }


class RunsCode:
    """Unpickling it runs a shell command (what a crafted checkpoint does); here it only creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype="PCM_16") -> Path:
    soundfile.write(path, samples, rate, subtype=subtype)
    return path


def wav_claiming_rate(path: Path, rate: int, num_samples: int) -> Path:
    """A 16-bit PCM wav whose header claims `rate` Hz (a few hundred kB of noise)."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.random.default_rng(0).normal(0, 3000, num_samples)).astype("<i2").tobytes())
    return path


def expect_text(reference: str):
    def check(output):
        text = output["text"] if isinstance(output, dict) else output
        if text != reference:
            raise Wrong(f"transcript {text!r} differs from the reference {reference!r}")
        return f"text {text!r}"

    return check


# ------------------------------------------------------------------------------------------------------------------
# Cases: pipeline


def case_adder(cases: list, group: str, **defaults):
    """`add(name, run, **options)`: a case of `group` appended to `cases`."""

    def add(name, run, **kwargs):
        cases.append(Case(group, name, run, **{**defaults, **kwargs}))

    return add


def pipeline_cases() -> list[Case]:
    cases = []
    add = case_adder(cases, "pipeline")

    def on_file(make, expect="error", mentions=None, **call):
        def run(ctx):
            path = make(scratch(ctx, "pipe"))
            return aed_pipe(ctx)(str(path), **call)["text"]

        return run

    add("empty input list", lambda ctx: aed_pipe(ctx)([]), mentions=("empty", "no input", "no audio"))
    add("missing file", lambda ctx: aed_pipe(ctx)(str(ctx.work / "nope.wav")), mentions=("nope.wav",))
    add(
        "0-byte wav",
        on_file(lambda d: write_file(d / "empty.wav", b"")),
        mentions=("empty.wav",),
    )
    add(
        "garbage .wav",
        on_file(lambda d: write_file(d / "junk.wav", os.urandom(5000))),
        mentions=("junk.wav",),
    )

    def header_only(d):
        path = write_wav(d / "header.wav", np.zeros(16000, np.int16), 16000)
        path.write_bytes(path.read_bytes()[:44])
        return path

    add("wav header without samples", on_file(header_only), mentions=("header.wav",))
    add(
        "400 kB wav claiming 1 Hz (12.8 GB when resampled)",
        on_file(lambda d: wav_claiming_rate(d / "one-hz.wav", 1, 200_000)),
        mentions=("one-hz.wav",),
    )
    add(
        "wav claiming 2 Hz, 10 k samples",
        on_file(lambda d: wav_claiming_rate(d / "two-hz.wav", 2, 10_000)),
        mentions=("two-hz.wav",),
    )
    add(
        "wav claiming 2 GHz",
        on_file(lambda d: wav_claiming_rate(d / "ghz.wav", 2_000_000_000, 200_000)),
        mentions=("ghz.wav",),
    )
    add(
        "float wav with NaN samples",
        on_file(lambda d: write_wav(d / "nan.wav", np.full(16000, np.nan, np.float32), 16000, "FLOAT")),
        mentions=("nan.wav",),
    )
    add(
        "float wav with inf samples",
        on_file(lambda d: write_wav(d / "inf.wav", np.full(16000, np.inf, np.float32), 16000, "FLOAT")),
        mentions=("inf.wav",),
    )
    add(
        "wav of 10 samples",
        on_file(lambda d: write_wav(d / "short.wav", np.zeros(10, np.int16), 16000)),
        mentions=("short.wav", "samples", "frame"),
    )

    def resampled_8k(ctx):
        from fireredasr_hf.audio import resample

        path = write_wav(scratch(ctx, "pipe") / "p01-8k.wav", resample(clip(ctx), 16000, 8000), 8000)
        text = aed_pipe(ctx)(str(path))["text"]
        if not isinstance(text, str):
            raise Wrong(f"no text: {text!r}")
        return f"text {text!r}"

    add("8 kHz wav", resampled_8k, expect="ok")

    def stereo_48k(ctx):
        from fireredasr_hf.audio import resample

        mono = resample(clip(ctx), 16000, 48000)
        path = write_wav(scratch(ctx, "pipe") / "p01-48k.wav", np.stack([mono, mono], 1), 48000)
        return aed_pipe(ctx)(str(path))["text"]

    add("48 kHz stereo wav", stereo_48k, expect="ok")
    add(
        "2 s of digital silence",
        lambda ctx: repr(aed_pipe(ctx)(np.zeros(32000, np.float32))["text"]),
        expect="ok",
    )

    def same_text(convert_audio):
        def run(ctx):
            return expect_text(reference_text(ctx))(aed_pipe(ctx)(convert_audio(clip(ctx).copy())))

        return run

    add("float64 array", same_text(lambda a: a.astype(np.float64)), expect="ok")
    add("int16 array", same_text(lambda a: (a * 32768).astype(np.int16)), expect="ok")
    add("torch tensor", same_text(torch.from_numpy), expect="ok")
    add(
        "dict at 16 kHz with extra keys",
        same_text(lambda a: {"raw": a, "sampling_rate": 16000, "id": "x"}),
        expect="ok",
    )

    def dict_rate(rate, samples=16000):
        return lambda ctx: aed_pipe(ctx)({"raw": np.zeros(samples, np.float32) + 0.01, "sampling_rate": rate})

    add("dict sampling_rate 0", dict_rate(0), mentions=("sampling_rate",))
    add("dict sampling_rate -16000", dict_rate(-16000), mentions=("sampling_rate",))
    add("dict sampling_rate 16000.5", dict_rate(16000.5), mentions=("sampling_rate",))
    add("dict sampling_rate '16000'", dict_rate("16000"), mentions=("sampling_rate",))
    add("dict sampling_rate None", dict_rate(None), mentions=("sampling_rate",))
    add("dict sampling_rate 1, 1 M samples (bomb)", dict_rate(1, 1_000_000), mentions=("sampling_rate", "rate"))
    add("dict sampling_rate 10**9", dict_rate(10**9, 1000), mentions=("sampling_rate", "rate"))
    add(
        "dict without sampling_rate",
        lambda ctx: aed_pipe(ctx)({"raw": np.zeros(16000, np.float32)}),
        mentions=("sampling_rate",),
    )

    def broadcast_hours(hours):
        def run(ctx):
            samples = np.broadcast_to(np.float32(0.001), (int(hours * 3600 * SAMPLING_RATE),))
            return aed_pipe(ctx)({"raw": samples, "sampling_rate": 8000})["text"]

        return run

    add("100 hours of audio (a zero-cost strided array)", broadcast_hours(100), mentions=("duration", "long", "hour"))
    for name, array in [
        ("bool array", np.ones(16000, bool)),
        ("complex array", np.ones(16000, np.complex64)),
        ("string array", np.array(["a"] * 16000)),
        ("object array", np.array([None] * 16000, dtype=object)),
        ("3-D array", np.zeros((2, 2, 16000), np.float32)),
        ("empty array", np.zeros(0, np.float32)),
        ("NaN array", np.full(16000, np.nan, np.float32)),
        ("inf array at 8 kHz", np.full(16000, np.inf, np.float64)),
    ]:
        audio = {"raw": array, "sampling_rate": 8000} if "8 kHz" in name else array
        add(
            name,
            lambda ctx, audio=audio: aed_pipe(ctx)(audio),
            mentions=("audio", "dtype", "dimension", "shape", "empty", "nan", "samples"),
        )
    add(
        "return_timestamps='word'",
        lambda ctx: aed_pipe(ctx)(clip(ctx), return_timestamps="word"),
        mentions=("return_timestamps", "timestamps"),
    )
    for value in (1, float("nan"), float("inf"), -5):
        add(
            f"max_segment_s={value}",
            lambda ctx, value=value: aed_pipe(ctx)(clip(ctx), max_segment_s=value),
            mentions=("max_segment_s",),
        )
    add("vad='nope'", lambda ctx: aed_pipe(ctx)(clip(ctx), vad="nope"), mentions=("vad",))
    add("chunk_length_s=30", lambda ctx: aed_pipe(ctx)(clip(ctx), chunk_length_s=30), mentions=("chunk_length_s",))
    add(
        "generate_kwargs num_beams=0",
        lambda ctx: aed_pipe(ctx)(clip(ctx), generate_kwargs={"num_beams": 0}),
        mentions=("num_beams",),
    )
    add(
        "generate_kwargs with a typo (num_beam=3)",
        lambda ctx: aed_pipe(ctx)(clip(ctx), generate_kwargs={"num_beam": 3}),
        mentions=("num_beam",),
    )
    add(
        "garbage bytes",
        lambda ctx: aed_pipe(ctx)(os.urandom(2000)),
        mentions=("audio", "ffmpeg", "malformed", "decode"),
    )
    add(
        "LLM: empty input list",
        lambda ctx: llm_pipe(ctx)([]),
        mentions=("empty", "no input", "no audio"),
    )
    return cases


# ------------------------------------------------------------------------------------------------------------------
# Cases: feature extractor and processor


def feature_cases() -> list[Case]:
    cases = []
    add = case_adder(cases, "processor")

    def fe(ctx):
        return aed_pipe(ctx).feature_extractor

    def call(audio, **kwargs):
        return lambda ctx: fe(ctx)(audio, **kwargs)["input_features"][0].shape

    noise = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    add("float32 at 16 kHz", call(noise, sampling_rate=16000), expect="ok")
    add("float16 samples", call(noise.astype(np.float16), sampling_rate=16000), expect="ok")
    add("int8 samples", call((noise * 100).astype(np.int8), sampling_rate=16000), expect="ok")
    add("python list of floats", call(noise.tolist(), sampling_rate=16000), expect="ok")
    add("8 kHz", call(noise, sampling_rate=8000), expect="ok")
    for rate in (0, -1, float("nan"), float("inf")):
        add(f"sampling_rate={rate}", call(noise, sampling_rate=rate), mentions=("sampling_rate",))
    add(
        "sampling_rate=1, 1 M samples (bomb)",
        call(np.zeros(1_000_000, np.float32), sampling_rate=1),
        mentions=("sampling_rate", "rate"),
    )
    add("sampling_rate=10**12", call(noise, sampling_rate=10**12), mentions=("sampling_rate", "rate"))
    add(
        "100 hours (strided zeros)",
        call(np.broadcast_to(np.float32(0.0), (100 * 3600 * 16000,)), sampling_rate=16000),
        mentions=("duration", "long", "hour"),
    )
    for name, audio in [
        ("bool samples", np.ones(16000, bool)),
        ("uint8 samples", np.ones(16000, np.uint8)),
        ("complex samples", np.ones(16000, np.complex64)),
        ("string", "speech.wav"),
        ("None", None),
        ("3-D array", np.zeros((2, 2, 16000), np.float32)),
        ("empty array", np.zeros(0, np.float32)),
        ("empty list", []),
        ("NaN samples", np.full(16000, np.nan, np.float32)),
        ("2-D 10000 x 10000", np.zeros((10000, 10000), np.float32)),
        ("ragged nested list", [[0.0] * 500, [0.0] * 300, "x"]),
        ("int64 samples near 2**63", np.full(16000, 2**62, np.int64)),
        ("float samples of 1e30", np.full(16000, 1e30, np.float64)),
    ]:
        add(
            name,
            call(audio, sampling_rate=16000),
            mentions=("audio", "dtype", "dimension", "shape", "empty", "nan", "raw_speech", "samples"),
        )

    def cmvn(content, name="cmvn.ark"):
        def run(ctx):
            from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor

            path = scratch(ctx, "cmvn") / name
            if content is not None:
                path.write_bytes(content)
            return FireRedAsrFeatureExtractor.from_kaldi_cmvn(path)

        return run

    add("cmvn.ark missing", cmvn(None), mentions=("cmvn.ark",))
    add("cmvn.ark empty", cmvn(b""), mentions=("cmvn.ark",))
    add("cmvn.ark garbage", cmvn(os.urandom(300)), mentions=("cmvn.ark",))
    add("cmvn.ark truncated", cmvn((FIXTURES / "aed-tiny" / "cmvn.ark").read_bytes()[:100]), mentions=("cmvn.ark",))

    def processor_text(text):
        def run(ctx):
            from transformers import AutoProcessor

            processor = ctx.get("aed_processor", lambda: AutoProcessor.from_pretrained(aed_dir(ctx)))
            return processor(text=text)["labels"]

        return run

    add("processor text with a lone surrogate", processor_text("abc\ud800"), mentions=("surrogate", "text"))
    add("processor text=None with audio=None", processor_text(None), mentions=("audio", "text"))
    add("processor text=[1, 2]", processor_text([1, 2]), mentions=("text",))
    return cases


# ------------------------------------------------------------------------------------------------------------------
# Cases: generate()


def generate_cases() -> list[Case]:
    cases = []

    def model(ctx, variant):
        return (aed_pipe if variant == "AED" else llm_pipe)(ctx).model

    def features(ctx, variant):
        return dict((aed_features if variant == "AED" else llm_features)(ctx))

    def gen(variant, transform=None, **kwargs):
        def run(ctx):
            inputs = features(ctx, variant)
            if transform is not None:
                inputs = transform(inputs)
            output = model(ctx, variant).generate(**inputs, **kwargs)
            return f"returned {tuple(output.shape) if hasattr(output, 'shape') else type(output).__name__}"

        return run

    def with_features(function):
        return lambda inputs: {**inputs, "input_features": function(inputs["input_features"])}

    def with_mask(function):
        return lambda inputs: {**inputs, "attention_mask": function(inputs["attention_mask"], inputs["input_features"])}

    def holes(mask, _):
        mask = mask.clone()
        mask[:, 10:20] = 0
        return mask

    for variant in ("AED", "LLM"):

        def add(name, run, variant=variant, **kwargs):
            cases.append(Case("generate", f"{variant}: {name}", run, **kwargs))

        add("valid features", gen(variant), expect="ok")
        add("2-D features (no batch axis)", gen(variant, with_features(lambda f: f[0])), mentions=("input_features",))
        add(
            "40-dim features",
            gen(variant, with_features(lambda f: f[..., :40].contiguous())),
            mentions=("input_features", "80"),
        )
        add("81-dim features", gen(variant, with_features(lambda f: torch.cat([f, f[..., :1]], -1))), mentions=("80",))
        add("float64 features", gen(variant, with_features(lambda f: f.double())), mentions=("float64", "dtype"))
        add("int64 features", gen(variant, with_features(lambda f: f.long())), mentions=("dtype", "int64"))
        add("numpy features", gen(variant, with_features(lambda f: f.numpy())), mentions=("input_features", "tensor"))
        add("0 frames", gen(variant, lambda i: {"input_features": i["input_features"][:, :0]}), mentions=("frame",))
        add("NaN features", gen(variant, with_features(lambda f: f * float("nan"))), mentions=("nan", "finite"))
        add(
            "attention mask 5 frames short",
            gen(variant, with_mask(lambda m, f: m[:, :-5])),
            mentions=("attention_mask",),
        )
        add(
            "attention mask of another batch size",
            gen(variant, with_mask(lambda m, f: m.repeat(2, 1))),
            mentions=("attention_mask",),
        )
        add(
            "attention mask with 2s",
            gen(variant, with_mask(lambda m, f: m * 2)),
            mentions=("attention_mask",),
        )
        add("attention mask all 0", gen(variant, with_mask(lambda m, f: m * 0)), mentions=("attention_mask",))
        add("attention mask with holes", gen(variant, with_mask(holes)), mentions=("attention_mask",))
        add("num_beams=0", gen(variant, num_beams=0), mentions=("num_beams",))
        add("num_beams=-2", gen(variant, num_beams=-2), mentions=("num_beams",))
        add("num_beams=2.5", gen(variant, num_beams=2.5), mentions=("num_beams",))
        add("num_beams=10**6", gen(variant, num_beams=10**6), mentions=("num_beams",))
        add("max_new_tokens=0", gen(variant, max_new_tokens=0), mentions=("max_new_tokens",))
        add("max_new_tokens=-3", gen(variant, max_new_tokens=-3), mentions=("max_new_tokens",))
        add("unknown keyword foo=1", gen(variant, foo=1), mentions=("foo",))
        add("typo num_beam=3", gen(variant, num_beam=3), mentions=("num_beam",))
        add(
            "num_return_sequences=5 > num_beams=3",
            gen(variant, num_return_sequences=5),
            mentions=("num_return_sequences",),
        )
        add(
            "temperature=nan with sampling",
            gen(variant, do_sample=True, temperature=float("nan")),
            mentions=("temperature",),
        )
        add(
            "no input_features",
            lambda ctx, variant=variant: model(ctx, variant).generate(),
            mentions=("input_features",),
        )
        if variant == "AED":

            def bf16_model_fp32_features(ctx):
                from transformers import AutoModelForSpeechSeq2Seq

                half = AutoModelForSpeechSeq2Seq.from_pretrained(aed_dir(ctx), dtype=torch.bfloat16).eval()
                return f"returned {tuple(half.generate(**features(ctx, 'AED')).shape)}"

            add("bfloat16 model, float32 features (as the processor gives)", bf16_model_fp32_features, expect="ok")
        if variant == "AED":
            for name, value in [
                ("softmax_smoothing", float("nan")),
                ("softmax_smoothing", 0.0),
                ("softmax_smoothing", float("inf")),
                ("gnmt_length_penalty", float("nan")),
                ("gnmt_length_penalty", -1.0),
                ("eos_penalty", float("nan")),
                ("eos_penalty", 0.0),
                ("eos_penalty", 2.0),
            ]:
                add(f"{name}={value}", gen(variant, **{name: value}), mentions=(name,))
        else:
            for name, value in [
                ("repetition_penalty", float("nan")),
                ("repetition_penalty", 0.0),
                ("repetition_penalty", -3.0),
                ("length_penalty", float("nan")),
            ]:
                add(f"{name}={value}", gen(variant, **{name: value}), mentions=(name,))
    return cases


# ------------------------------------------------------------------------------------------------------------------
# Cases: tokenizer


def tokenizer_cases() -> list[Case]:
    cases = []
    add = case_adder(cases, "tokenizer")

    def tokenizer(ctx):
        return aed_pipe(ctx).tokenizer

    def round_trip(text, expected):
        def run(ctx):
            ids = tokenizer(ctx)(text)["input_ids"]
            decoded = tokenizer(ctx).decode(ids, skip_special_tokens=True)
            if decoded != expected:
                raise Wrong(f"{text!r} -> {decoded!r}, expected {expected!r}")
            return f"{decoded!r}"

        return run

    add("lone surrogate", lambda ctx: tokenizer(ctx)("abc\udc80def")["input_ids"], mentions=("surrogate", "text"))
    add("empty string", round_trip("", ""), expect="ok")
    add("Chinese round trip", round_trip("今天天气很好", "今天天气很好"), expect="ok")
    add("NUL and control characters", lambda ctx: tokenizer(ctx)("a\x00b\x07c")["input_ids"], expect="ok")
    add("100 k characters", lambda ctx: len(tokenizer(ctx)("今天" * 50_000)["input_ids"]), expect="ok")
    add("text=None", lambda ctx: tokenizer(ctx)(None), mentions=("text", "str", "None"))
    add("text=123", lambda ctx: tokenizer(ctx)(123), mentions=("text", "str", "int"))
    add("decode id 10**6", lambda ctx: tokenizer(ctx).decode([10**6]), mentions=("10000", "id", "range"))
    add("decode id -1", lambda ctx: tokenizer(ctx).decode([-1]), mentions=("-1", "id", "range"))

    def build(dict_bytes=None, spm_bytes=None, name="tok"):
        def run(ctx):
            from fireredasr_hf.tokenization_fireredasr import FireRedAsrTokenizer

            folder = scratch(ctx, name)
            vocab, spm = folder / "dict.txt", folder / "train_bpe1000.model"
            vocab.write_bytes(
                dict_bytes if dict_bytes is not None else (FIXTURES / "aed-tiny" / "dict.txt").read_bytes()
            )
            spm.write_bytes(
                spm_bytes if spm_bytes is not None else (FIXTURES / "aed-tiny" / "train_bpe1000.model").read_bytes()
            )
            return len(FireRedAsrTokenizer(vocab_file=str(vocab), spm_file=str(spm)))

        return run

    original_dict = (FIXTURES / "aed-tiny" / "dict.txt").read_bytes()
    add("empty SentencePiece model", build(spm_bytes=b""), mentions=("train_bpe1000.model",))
    add("garbage SentencePiece model", build(spm_bytes=os.urandom(500)), mentions=("train_bpe1000.model",))
    add("non-UTF-8 dict.txt", build(dict_bytes=original_dict + b"\xff\xfe 142\n"), mentions=("dict.txt",))
    add("dict.txt in GBK", build(dict_bytes=original_dict.decode().encode("gbk")), mentions=("dict.txt",))
    add("empty dict.txt", build(dict_bytes=b""), mentions=("dict.txt",))
    add("dict.txt with a duplicate", build(dict_bytes=original_dict + b"<eos> 142\n"), mentions=("dict.txt",))
    return cases


# ------------------------------------------------------------------------------------------------------------------
# Cases: converter and loading of converted folders


def conversion_cases() -> list[Case]:
    cases = []
    add = case_adder(cases, "converter")

    def convert_modified(variant, modify, replace=("model.pth.tar",), check_output=True, **kwargs):
        """Convert a copy of the fixture `variant` after `modify(folder, marker)`; a conversion that fails must leave
        no output folder, and code must not run."""

        def run(ctx):
            folder = scratch(ctx, "conv")
            original = link_copy(FIXTURES / f"{variant}-tiny", folder / "original", replace)
            code_marker = folder / "code-ran"
            modify(original, code_marker)
            output = folder / "out"
            from fireredasr_hf.conversion import convert_checkpoint

            try:
                convert_checkpoint(original, output, **kwargs)
            except BaseException as error:
                if code_marker.exists():
                    raise Wrong("code from the checkpoint ran") from None
                if check_output and output.exists() and any(output.iterdir()):
                    raise Wrong(
                        f"failed ({type(error).__name__}: {first_line(error)[:80]}) but left a partial "
                        f"conversion in {output}"
                    ) from None
                raise
            if code_marker.exists():
                raise Wrong("code from the checkpoint ran")
            return f"converted into {output}"

        return run

    def edit_package(name="model.pth.tar", edit=None):
        def modify(original, marker):
            package = load_package(original / name)
            edit(package, marker)
            torch.save(package, original / name)

        return modify

    def inject(marker_key="payload"):
        return lambda package, marker: package.__setitem__(marker_key, RunsCode(marker))

    def first_weight(package):
        return next(k for k, v in package["model_state_dict"].items() if v.dtype == torch.float32 and v.ndim == 2)

    def set_value(value):
        def edit(package, marker):
            state = package["model_state_dict"]
            key = first_weight(package)
            state[key] = state[key].clone()
            state[key].view(-1)[7] = value

        return edit

    def fp16(package, marker):
        package["model_state_dict"] = {k: v.half() for k, v in package["model_state_dict"].items()}

    def drop_tensor(package, marker):
        del package["model_state_dict"][first_weight(package)]

    def extra_tensor(package, marker):
        package["model_state_dict"]["decoder.mystery.weight"] = torch.zeros(3)

    def flip_bit(bit):
        def modify(original, marker):
            path = original / "model.pth.tar"
            with zipfile.ZipFile(path) as archive:
                info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 4096)
                offset = info.header_offset
            data = bytearray(path.read_bytes())
            name_length, extra_length = struct.unpack("<HH", data[offset + 26 : offset + 30])
            position = offset + 30 + name_length + extra_length + 4 * 100 + bit // 8  # float 100 of the record
            data[position] ^= 1 << (bit % 8)
            path.write_bytes(bytes(data))

        return modify

    def write(name, content):
        def modify(original, marker):
            target = original / name
            if target.is_symlink() or target.exists():
                target.unlink()
            if content is not None:
                target.write_bytes(content)

        return modify

    add(
        "missing folder",
        lambda ctx: __import__("fireredasr_hf.conversion").conversion.convert_checkpoint(
            ctx.work / "no-such-model", ctx.work / "no-such-out"
        ),
        mentions=("no-such-model",),
    )
    add("empty folder", convert_modified("aed", write("model.pth.tar", None)), mentions=("original",))
    add(
        "AED model.pth.tar that runs code",
        convert_modified("aed", edit_package(edit=inject())),
        mentions=("model.pth.tar",),
    )
    add(
        "LLM asr_encoder.pth.tar that runs code",
        convert_modified("llm", edit_package("asr_encoder.pth.tar", inject()), replace=("asr_encoder.pth.tar",)),
        mentions=("asr_encoder.pth.tar",),
    )
    add(
        "LLM model.pth.tar that runs code",
        convert_modified("llm", edit_package(edit=inject())),
        mentions=("model.pth.tar",),
    )
    add("empty model.pth.tar", convert_modified("aed", write("model.pth.tar", b"")), mentions=("model.pth.tar",))
    add(
        "garbage model.pth.tar",
        convert_modified("aed", write("model.pth.tar", os.urandom(4000))),
        mentions=("model.pth.tar",),
    )
    add(
        "truncated model.pth.tar",
        convert_modified("aed", write("model.pth.tar", (FIXTURES / "aed-tiny/model.pth.tar").read_bytes()[:100_000])),
        mentions=("model.pth.tar",),
    )
    add("float16 model.pth.tar", convert_modified("aed", edit_package(edit=fp16)), mentions=("float16",))
    add("NaN weight", convert_modified("aed", edit_package(edit=set_value(float("nan")))), mentions=("nan", "finite"))
    add("inf weight", convert_modified("aed", edit_package(edit=set_value(float("inf")))), mentions=("inf", "finite"))
    add(
        "weight 1e30 (exponent bit flipped)",
        convert_modified("aed", edit_package(edit=set_value(1e30))),
        mentions=("1e+30", "magnitude", "large"),
    )
    add("exponent bit flipped in the file", convert_modified("aed", flip_bit(30)), mentions=("model.pth.tar",))
    add("mantissa bit flipped in the file", convert_modified("aed", flip_bit(3)), mentions=("model.pth.tar",))
    add("missing tensor", convert_modified("aed", edit_package(edit=drop_tensor)), mentions=("lacks", "missing"))
    add("unexpected tensor", convert_modified("aed", edit_package(edit=extra_tensor)), mentions=("mystery",))
    add(
        "non-UTF-8 dict.txt",
        convert_modified(
            "aed", write("dict.txt", (FIXTURES / "aed-tiny/dict.txt").read_bytes() + b"\xff 142\n"), replace=()
        ),
        mentions=("dict.txt",),
    )
    add(
        "empty train_bpe1000.model",
        convert_modified("aed", write("train_bpe1000.model", b""), replace=()),
        mentions=("train_bpe1000.model",),
    )
    add(
        "garbage cmvn.ark",
        convert_modified("aed", write("cmvn.ark", os.urandom(200)), replace=()),
        mentions=("cmvn.ark",),
    )
    add(
        "LLM folder without asr_encoder.pth.tar",
        convert_modified("llm", write("asr_encoder.pth.tar", None), replace=()),
        mentions=("asr_encoder.pth.tar",),
    )

    def strip_qwen(patterns):
        def modify(original, marker):
            qwen = original / "Qwen2-7B-Instruct"
            source = qwen.resolve()
            qwen.unlink()
            qwen.mkdir()
            for entry in source.iterdir():
                if not any(entry.match(pattern) for pattern in patterns):
                    (qwen / entry.name).symlink_to(entry)

        return modify

    add(
        "LLM: Qwen2 folder without tokenizer files",
        convert_modified("llm", strip_qwen(("tokenizer*", "vocab.json", "merges.txt")), replace=(), dtype="float32"),
        mentions=("tokenizer",),
    )
    add(
        "LLM: Qwen2 folder without weights",
        convert_modified("llm", strip_qwen(("*.safetensors", "*.index.json")), replace=(), dtype="float32"),
        mentions=("safetensors",),
    )

    def qwen_nan(original, marker):
        from safetensors.torch import load_file, save_file

        qwen = original / "Qwen2-7B-Instruct"
        source = qwen.resolve()
        qwen.unlink()
        shutil.copytree(source, qwen)
        weights = next(qwen.glob("*.safetensors"))
        tensors = load_file(weights)
        key = next(k for k, v in tensors.items() if v.ndim == 2)
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[3] = float("nan")
        save_file(tensors, weights, metadata={"format": "pt"})

    add(
        "LLM: NaN in the Qwen2 weights",
        convert_modified("llm", qwen_nan, replace=(), dtype="float32"),
        mentions=("nan", "finite"),
    )
    add(
        "LLM: dtype float16",
        convert_modified("llm", lambda o, m: None, replace=(), dtype="float16"),
        mentions=("float16",),
    )

    def into_existing(ctx):
        folder = scratch(ctx, "conv")
        output = folder / "out"
        output.mkdir()
        (output / "my-notes.txt").write_text("keep me")
        from fireredasr_hf.conversion import convert_checkpoint

        try:
            convert_checkpoint(FIXTURES / "aed-tiny", output)
        finally:
            if not (output / "my-notes.txt").exists():
                raise Wrong("a file of the user in the output folder was deleted")
        raise Wrong(f"converted into a non-empty folder of other files ({sorted(p.name for p in output.iterdir())})")

    add("output folder holds other files", into_existing, mentions=("out",))

    def output_is_file(ctx):
        folder = scratch(ctx, "conv")
        (folder / "out").write_text("x")
        from fireredasr_hf.conversion import convert_checkpoint

        return convert_checkpoint(FIXTURES / "aed-tiny", folder / "out")

    add("output path is a file", output_is_file, mentions=("out",))

    # Loading converted folders.
    def damaged_converted(variant, damage):
        def run(ctx):
            from transformers import AutoModelForSpeechSeq2Seq

            import fireredasr_hf  # noqa: F401

            source = aed_dir(ctx) if variant == "aed" else llm_dir(ctx)
            target = scratch(ctx, "conv") / "model"
            shutil.copytree(source, target)
            damage(target)
            model = AutoModelForSpeechSeq2Seq.from_pretrained(target)
            return check_loaded(model, variant)

        return run

    def check_loaded(model, variant):
        config = model.generation_config
        if variant == "aed":
            if not (config.num_beams == 3 and getattr(config, "use_fireredasr_beam_search", False)):
                raise Wrong(
                    f"decodes with num_beams={config.num_beams}, "
                    f"use_fireredasr_beam_search={getattr(config, 'use_fireredasr_beam_search', None)}"
                )
        elif not (config.num_beams == 3 and config.repetition_penalty == 3.0):
            raise Wrong(f"decodes with num_beams={config.num_beams}, repetition_penalty={config.repetition_penalty}")
        return "loaded with the release's decoding settings"

    def drop_safetensor(target):
        from safetensors.torch import load_file, save_file

        files = sorted(target.glob("*.safetensors"))
        tensors = load_file(files[0])
        key = min(k for k in tensors if k.endswith("weight"))
        del tensors[key]
        save_file(tensors, files[0], metadata={"format": "pt"})

    for variant in ("aed", "llm"):
        add(
            f"{variant.upper()} converted folder missing a tensor",
            damaged_converted(variant, drop_safetensor),
            mentions=("weight", "missing", "lacks"),
        )
        cases.append(
            Case(
                "converter",
                f"{variant.upper()} converted folder without generation_config.json",
                damaged_converted(variant, lambda t: (t / "generation_config.json").unlink()),
                expect="ok",
            )
        )
    add(
        "AED converted folder with truncated safetensors",
        damaged_converted(
            "aed", lambda t: (t / "model.safetensors").write_bytes((t / "model.safetensors").read_bytes()[:5000])
        ),
        mentions=("safetensors", "model"),
    )
    return cases


# ------------------------------------------------------------------------------------------------------------------
# Cases: model resolution, import, segmentation


def resolution_cases() -> list[Case]:
    cases = []
    add = case_adder(cases, "resolve")

    def malicious_original(ctx) -> tuple[Path, Path]:
        folder = scratch(ctx, "evil")
        original = link_copy(FIXTURES / "aed-tiny", folder / "original", ("model.pth.tar",))
        marker = folder / "code-ran"
        package = load_package(original / "model.pth.tar")
        package["payload"] = RunsCode(marker)
        torch.save(package, original / "model.pth.tar")
        return original, marker

    def resolve_malicious(load):
        def run(ctx):
            original, marker = malicious_original(ctx)
            os.environ["FIREREDASR_HF_CACHE"] = str(original.parent / "cache")
            try:
                load(original)
            finally:
                if marker.exists():
                    raise Wrong("code from model.pth.tar ran")

        return run

    from_hub = lambda name: __import__("fireredasr_hf.hub", fromlist=["x"])
    add(
        "resolve_model(malicious original folder)",
        resolve_malicious(lambda p: from_hub(0).resolve_model(p)),
        mentions=("model.pth.tar",),
    )
    add(
        "load_asr_pipeline(malicious original folder)",
        resolve_malicious(lambda p: from_hub(0).load_asr_pipeline(p)),
        mentions=("model.pth.tar",),
    )

    def import_near_malicious(ctx):
        original, marker = malicious_original(ctx)
        hf_home = original.parent / "hf-home"
        snapshot = hf_home / "hub" / "models--evil--model" / "snapshots" / ("0" * 40)
        snapshot.parent.mkdir(parents=True)
        shutil.copytree(original, snapshot, symlinks=True)
        env = {**os.environ, "HF_HOME": str(hf_home), "FIREREDASR_HF_CACHE": str(original)}
        code = "import fireredasr_hf, fireredasr_hf.hub, fireredasr_hf.cli, fireredasr_hf.conversion"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=original,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if marker.exists():
            raise Wrong("importing fireredasr_hf ran code from the model folder")
        if result.returncode != 0:
            raise RuntimeError(first_line(result.stderr[-500:]))
        return "imported, no code ran"

    add("import fireredasr_hf next to a malicious original", import_near_malicious, expect="ok")

    def llm_without_encoder(ctx):
        folder = scratch(ctx, "resolve")
        original = link_copy(FIXTURES / "llm-tiny", folder / "original")
        (original / "asr_encoder.pth.tar").unlink()
        (original / "Qwen2-7B-Instruct").unlink()
        os.environ["FIREREDASR_HF_CACHE"] = str(folder / "cache")
        return from_hub(0).resolve_model(original)

    add("resolve_model(LLM folder without asr_encoder.pth.tar)", llm_without_encoder, mentions=("asr_encoder.pth.tar",))
    add(
        "resolve_model(a file)",
        lambda ctx: from_hub(0).resolve_model(FIXTURES / "aed-tiny" / "dict.txt"),
        mentions=("dict.txt",),
    )
    add(
        "resolve_model('not a repo id!!')",
        lambda ctx: from_hub(0).resolve_model("not a repo id!!"),
        mentions=("not a repo id",),
    )

    return cases


def segment_cases() -> list[Case]:
    cases = []

    def segments(spans, **kwargs):
        def run(ctx):
            from fireredasr_hf.vad import SpeechSegment, split_into_segments

            return split_into_segments([SpeechSegment(*span) for span in spans], **kwargs)

        return run

    cases.append(Case("segments", "NaN segment end", segments([(0.0, float("nan"))]), mentions=("end", "segment")))
    cases.append(Case("segments", "end before start", segments([(5.0, 1.0)]), mentions=("start", "end")))
    cases.append(
        Case(
            "segments",
            "max_segment_s=nan",
            segments([(0.0, 10.0)], max_segment_s=float("nan")),
            mentions=("max_segment_s",),
        )
    )
    cases.append(
        Case("segments", "max_segment_s=0", segments([(0.0, 10.0)], max_segment_s=0.0), mentions=("max_segment_s",))
    )

    def overlapping(ctx):
        from fireredasr_hf.vad import SpeechSegment, split_into_segments

        chunks = split_into_segments(
            [SpeechSegment(0, 50), SpeechSegment(10, 70), SpeechSegment(69, 140)], max_segment_s=30
        )
        for left, right in itertools.pairwise(chunks):
            if right.start < left.end:
                raise Wrong(f"overlapping chunks {left} {right}")
        if any(chunk.duration > 30 for chunk in chunks) or chunks[0].start > 0 or chunks[-1].end < 140:
            raise Wrong(f"bad chunks {chunks}")
        return f"{len(chunks)} chunks"

    cases.append(Case("segments", "overlapping regions", overlapping, expect="ok"))

    def cut_rounding(ctx):
        from fireredasr_hf.vad import SpeechSegment, split_into_segments

        audio = np.random.default_rng(3200).normal(0, 0.1, 28600).astype(np.float32)
        chunks = split_into_segments([SpeechSegment(0.0, 286.0)], 24.7890625, 0.0, 0.0, audio=audio, sampling_rate=100)
        longest = max(chunk.duration for chunk in chunks)
        if longest > 24.7890625:
            raise Wrong(f"a chunk of {longest} s exceeds max_segment_s=24.7890625")
        return f"{len(chunks)} chunks, longest {longest:.4f} s"

    cases.append(Case("segments", "cuts rounded to samples stay within max_segment_s", cut_rounding, expect="ok"))
    return cases


# ------------------------------------------------------------------------------------------------------------------
# Cases: command line


def cli(ctx, *arguments, cwd=None, timeout=600, env=None):
    # The energy VAD: offline, in every version of the command line (FireRedVAD, the later default, needs the Hub).
    if arguments and arguments[0] == "transcribe":
        arguments = (*arguments, "--vad", "energy")
    command = [sys.executable, "-m", "fireredasr_hf.cli", *map(str, arguments)]
    environment = {**os.environ, "FIREREDASR_HF_CACHE": str(ctx.work / "cli-cache"), **(env or {})}
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=environment, check=False
    )


def cli_verdict(result, mentions=(), expect_code=(1, 2)):
    """Raise like a Python call would: a clear CLI error becomes ValueError, anything else RuntimeError."""
    stderr = result.stderr
    if "Traceback" in stderr:
        raise RuntimeError(f"traceback: {first_line(stderr.strip().splitlines()[-1])[:150]}")
    if result.returncode == 0:
        return f"exit 0: {first_line(stderr.strip().splitlines()[-1] if stderr.strip() else '')[:120]}"
    lines = [line for line in stderr.splitlines() if "error:" in line or line.startswith("FAILED")]
    if result.returncode not in expect_code or not lines:
        raise RuntimeError(f"exit {result.returncode}: {first_line(stderr[-300:])}")
    message = " | ".join(lines)
    if mentions and not any(m.lower() in message.lower() for m in mentions):
        raise RuntimeError(f"exit {result.returncode}, does not name {mentions}: {message[:150]}")
    raise ValueError(message[:200])


def check_not_lost(result, folder: Path, output: Path | None, uttid: str) -> None:
    """Raise Lost when the job decoded the recording (it says so, or its traceback comes from a writer) but neither
    the output nor a resume log holds its transcript."""
    decoded = "decoded in" in result.stderr or re.search(r"in write_\w+", result.stderr) is not None
    if not decoded:
        return  # refused before decoding: nothing was done, nothing lost
    resume = list(folder.rglob("*resume*"))
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in folder.rglob("*") if path.is_file()]
    if output is not None and output.is_file():
        texts.append(output.read_text(encoding="utf-8", errors="replace"))
    if not resume and not any(uttid in text for text in texts):
        raise Lost(f"exit {result.returncode}: the decoded transcript of {uttid!r} is in no output and no resume log")


def cli_cases() -> list[Case]:
    cases = []
    add = case_adder(cases, "cli", timeout=600)
    audio = FIXTURES / "audio" / "p01.wav"

    def transcribe(*arguments, mentions=(), setup=None, check=None):
        def run(ctx):
            folder = scratch(ctx, "cli")
            extra = setup(folder) if setup is not None else ()
            result = cli(
                ctx,
                "transcribe",
                "--model",
                aed_dir(ctx),
                "--no-progress",
                *extra,
                *[a(folder) if callable(a) else a for a in arguments],
            )
            if check is not None:
                check(folder, result)
            return cli_verdict(result, mentions)

        return run

    add(
        "valid file to txt",
        transcribe(
            audio,
            "--output",
            lambda f: f / "out.txt",
            check=lambda f, r: (f / "out.txt").is_file() or (_ for _ in ()).throw(Wrong("no output")),
        ),
        expect="ok",
    )
    add("missing input file", transcribe("nope.wav"), mentions=("nope.wav",))
    add("--batch-size 0", transcribe(audio, "--batch-size", "0"), mentions=("--batch-size", "batch size"))
    add("--num-beams 0", transcribe(audio, "--num-beams", "0"), mentions=("num_beams", "--num-beams"))
    add(
        "--softmax-smoothing nan",
        transcribe(audio, "--softmax-smoothing", "nan"),
        mentions=("softmax_smoothing", "--softmax-smoothing"),
    )
    add("--device cuda without CUDA", transcribe(audio, "--device", "cuda"), mentions=("cuda",))

    def one_hz(folder):
        wav_claiming_rate(folder / "one-hz.wav", 1, 200_000)
        return (folder / "one-hz.wav",)

    add("wav claiming 1 Hz", transcribe(setup=one_hz), mentions=("one-hz.wav",))

    def scp(lines, encoding="utf-8"):
        def setup(folder):
            path = folder / "wav.scp"
            path.write_bytes("".join(lines).encode(encoding, errors="surrogateescape"))
            return (path,)

        return setup

    add("non-UTF-8 wav.scp", transcribe(setup=scp([f"utt\udcff1 {audio}\n"])), mentions=("wav.scp",))

    def outside(uttid, output_format):
        def check(folder, result):
            escaped = [p for p in folder.parent.rglob(f"*.{output_format}") if not p.is_relative_to(folder / "out")]
            absolute = Path(f"{uttid}.{output_format}")
            if absolute.is_absolute() and absolute.exists():
                escaped.append(absolute)
                absolute.unlink()
            if escaped:
                raise Wrong(f"wrote outside --output: {escaped}")
            inside = list((folder / "out").rglob(f"*.{output_format}")) if (folder / "out").exists() else []
            if result.returncode == 0 and not inside:
                raise Lost("exit 0 but no subtitle file")

        return transcribe(
            "--output-format",
            output_format,
            "--output",
            lambda f: f / "out",
            setup=scp([f"{uttid} {audio}\n"]),
            check=check,
            mentions=("uttid", "id", "../"),
        )

    add("uttid '../../escaped' to srt", outside("../../escaped", "srt"), expect="error")
    add("uttid '/tmp/escaped-PID' to vtt", outside(f"/tmp/escaped-{os.getpid()}", "vtt"), expect="error")

    def kaldi_space(ctx):
        folder = scratch(ctx, "cli")
        data = folder / "inputs"
        data.mkdir()
        shutil.copy(audio, data / "my file.wav")
        output = folder / "text"
        result = cli(
            ctx,
            "transcribe",
            "--model",
            aed_dir(ctx),
            "--no-progress",
            data,
            "--output-format",
            "kaldi",
            "--output",
            output,
        )
        check_not_lost(result, folder, output, "my file")
        return cli_verdict(result, ("my file", "id", "uttid"))

    add("uttid with a space to a Kaldi text file", kaldi_space)

    def read_only_output(ctx):
        folder = scratch(ctx, "cli")
        output = folder / "ro"
        output.mkdir()
        output.chmod(0o500)
        if os.geteuid() == 0:  # root writes anywhere it may; /sys/kernel is a folder nobody can write files into
            output = Path("/sys/kernel")
        try:
            result = cli(ctx, "transcribe", "--model", aed_dir(ctx), "--no-progress", audio, "--output", output)
        finally:
            (folder / "ro").chmod(0o700)
        check_not_lost(result, folder, None, "p01")
        return cli_verdict(result, (str(output), "writ", "permission"))

    add("read-only output folder", read_only_output)

    def unreadable_subfolder(ctx):
        folder = scratch(ctx, "cli")
        data = folder / "inputs"
        (data / "locked").mkdir(parents=True)
        shutil.copy(audio, data / "a.wav")
        shutil.copy(audio, data / "locked" / "b.wav")
        (data / "locked").chmod(0)
        try:
            result = cli(ctx, "transcribe", "--model", aed_dir(ctx), "--no-progress", data)
        finally:
            (data / "locked").chmod(0o700)
        if os.geteuid() == 0:
            raise Skipped("root reads any folder")
        if result.returncode == 0:
            raise Wrong("exit 0: the unreadable sub-folder was skipped silently")
        return cli_verdict(result, ("locked",))

    add("unreadable sub-folder", unreadable_subfolder)

    def malicious_model(ctx):
        folder = scratch(ctx, "cli")
        original = link_copy(FIXTURES / "aed-tiny", folder / "original", ("model.pth.tar",))
        marker = folder / "code-ran"
        package = load_package(original / "model.pth.tar")
        package["payload"] = RunsCode(marker)
        torch.save(package, original / "model.pth.tar")
        result = cli(ctx, "transcribe", "--model", original, "--no-progress", audio)
        if marker.exists():
            raise Wrong("code from model.pth.tar ran")
        return cli_verdict(result, ("model.pth.tar",))

    add("--model with a malicious model.pth.tar", malicious_model)

    def tab_in_file_name(ctx):
        folder = scratch(ctx, "cli")
        data = folder / "inputs"
        data.mkdir()
        shutil.copy(audio, data / "a\tb.wav")
        output = folder / "out.txt"
        result = cli(ctx, "transcribe", "--model", aed_dir(ctx), "--no-progress", data, "--output", output)
        check_not_lost(result, folder, output, "a\tb")
        if result.returncode == 0 and output.read_text(encoding="utf-8").count("\t") != 1:
            raise Wrong("the id's tab was written into a tab-separated file")
        return cli_verdict(result, ("a\\tb", "tab", "id"))

    add("file name with a tab to txt", tab_in_file_name)

    def second_job_same_output(ctx):
        from filelock import FileLock

        folder = scratch(ctx, "cli")
        output = folder / "out.txt"
        # What a first job holds while it writes `out.txt` (the second job must stop, not interleave its writes).
        with FileLock(str(folder / ".out.txt.lock"), timeout=0):
            result = cli(ctx, "transcribe", "--model", aed_dir(ctx), "--no-progress", audio, "--output", output)
        if result.returncode == 0:
            raise Wrong("a second job wrote the output that another job holds")
        return cli_verdict(result, ("another", "lock"))

    add("second job on the same --output", second_job_same_output)
    return cases


GROUPS = {
    "pipeline": pipeline_cases,
    "processor": feature_cases,
    "generate": generate_cases,
    "tokenizer": tokenizer_cases,
    "converter": conversion_cases,
    "resolve": resolution_cases,
    "segments": segment_cases,
    "cli": cli_cases,
}


def print_table(results: list[Result]) -> None:
    width = max(len(f"{r.case.group}: {r.case.name}") for r in results)
    print(f"{'case':<{width}}  {'outcome':<11}  detail")
    print(f"{'-' * width}  {'-' * 11}  {'-' * 40}")
    for result in results:
        name = f"{result.case.group}: {result.case.name}"
        print(f"{name:<{width}}  {result.outcome:<11}  {result.detail[:150]}")
    print()
    groups = sorted({r.case.group for r in results}, key=list(GROUPS).index)
    header = "".join(f"{outcome:>13}" for outcome in OUTCOMES)
    print(f"{'group':<12}{header}{'total':>8}")
    for group in [*groups, "all"]:
        counts = Counter(r.outcome for r in results if group in ("all", r.case.group))
        row = "".join(f"{counts[outcome]:>13}" for outcome in OUTCOMES)
        print(f"{group:<12}{row}{sum(counts.values()):>8}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", nargs="+", choices=list(GROUPS), help="only these groups (default: all)")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line cases (the slowest)")
    parser.add_argument("-k", dest="keyword", help="only cases whose name contains this text")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not (FIXTURES / "README.md").is_file():
        parser.error(f"the shared fixtures are not at {FIXTURES} (set FIREREDASR_FIXTURES)")

    groups = args.groups or [g for g in GROUPS if not (args.no_cli and g == "cli")]
    cases = [case for group in groups for case in GROUPS[group]()]
    if args.keyword:
        cases = [case for case in cases if args.keyword.lower() in case.name.lower()]
    import fireredasr_hf

    print(
        f"fireredasr_hf {getattr(fireredasr_hf, '__version__', '?')} from {Path(fireredasr_hf.__file__).parent}; "
        f"{len(cases)} cases; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="fireredasr-sweep-") as work:
        context = Context(Path(work))
        # Shared models are built here, once, so that every forked case inherits them.
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            aed_pipe(context)
            if any("LLM" in case.name or case.group in ("generate",) for case in cases):
                llm_pipe(context)
                llm_features(context)
            aed_features(context)
            reference_text(context)
        results = []
        for case in cases:
            result = run_isolated(case, context)
            results.append(result)
            print(
                f"  {result.outcome:<11} {case.group}: {case.name} ({result.seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        print_table(results)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {"group": r.case.group, "case": r.case.name, "outcome": r.outcome, "detail": r.detail}
                    for r in results
                ],
                indent=1,
                ensure_ascii=False,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
