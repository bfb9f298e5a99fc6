# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The `fireredasr-hf` command line: `transcribe`, `eval`, `convert` and `finetune`.

    fireredasr-hf transcribe --model MODEL speech.wav recordings/ data/wav.scp --output-format srt --output subs/
    fireredasr-hf eval --model MODEL --data data/test            # Kaldi directory (wav.scp + text) or a dataset
    fireredasr-hf convert FireRedASR-AED-L fireredasr-aed-l-hf
    fireredasr-hf finetune --model MODEL --train-data data/train --eval-data data/dev --output-dir my-model

Each subcommand is a `Command` in `COMMANDS`; a new one (e.g. fine-tuning) is a `Command` subclass in its own
module, listed there. Heavy imports (datasets, the hub helpers) happen only when a command needs them.
"""

import abc
import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class Command(abc.ABC):
    """A subcommand: its name, help line, arguments and what it does (returning the process exit code)."""

    name: str
    help: str

    @abc.abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    @abc.abstractmethod
    def run(self, args: argparse.Namespace) -> int: ...


class CommandError(Exception):
    """A problem with the command's arguments or inputs, reported as one line and exit code 2."""


# ----------------------------------------------------------------------------------------------------------------
# Shared by transcribe and eval: loading the pipeline, reading inputs, decoding with failures isolated per file.

# Decoding options: (flag, generate() argument, type, variants it applies to, help).
DECODING_OPTIONS = [
    ("--num-beams", "num_beams", int, ("aed", "llm"), "beam size (default: the model's generation_config, 3)"),
    ("--max-new-tokens", "max_new_tokens", int, ("aed", "llm"), "cap on tokens per segment"),
    ("--softmax-smoothing", "softmax_smoothing", float, ("aed",), "AED: logit temperature (release: 1.25)"),
    ("--aed-length-penalty", "gnmt_length_penalty", float, ("aed",), "AED: GNMT length penalty (release: 0.6)"),
    ("--eos-penalty", "eos_penalty", float, ("aed",), "AED: <eos> log-probability scale (release: 1.0)"),
    ("--repetition-penalty", "repetition_penalty", float, ("llm",), "LLM: repetition penalty (release: 3.0)"),
    ("--llm-length-penalty", "length_penalty", float, ("llm",), "LLM: beam length penalty (release: 1.0)"),
]
VARIANTS = {"fireredasr_aed": "aed", "fireredasr_llm": "llm"}
OUTPUT_FORMATS = ("txt", "jsonl", "srt", "vtt", "kaldi")
DEFAULT_OUTPUT_NAMES = {"txt": "transcripts.txt", "jsonl": "transcripts.jsonl", "kaldi": "text"}
RESUME_LOG_NAME = ".fireredasr-resume.jsonl"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and decoding")
    group.add_argument(
        "--model",
        required=True,
        help="converted model directory, original FireRedASR directory or Hub repo id (converted once, cached)",
    )
    group.add_argument("--revision", help="branch, tag or commit of a Hub model")
    group.add_argument("--device", help="cpu, cuda, cuda:1, mps, ... (default: cuda if available, else cpu)")
    group.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16", "float16"],
        default="auto",
        help="weights and compute dtype (default: as stored: float32 for AED, bfloat16 for LLM conversions)",
    )
    group.add_argument("--batch-size", type=int, default=8, help="segments decoded together (default: 8)")
    group.add_argument("--num-threads", type=int, help="CPU threads for torch (default: torch's choice)")
    for flag, _, kind, _, help_text in DECODING_OPTIONS:
        group.add_argument(flag, type=kind, help=help_text)
    group.add_argument(
        "--vad",
        choices=["silero", "energy"],
        default="silero",
        help="voice activity detector that splits long audio (default: silero)",
    )
    group.add_argument(
        "--max-segment-s",
        type=float,
        help="audio longer than this is split into segments of at most this length (default: the model's trained "
        "limit, 60 s for AED, 30 s for LLM)",
    )


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("datasets saved with save_to_disk")
    group.add_argument("--split", help="split of a DatasetDict (default: its only split)")
    group.add_argument("--audio-column", default="audio", help="audio column (default: audio)")
    group.add_argument("--id-column", default="id", help="utterance id column (default: id; else the row number)")


@dataclass
class AudioItem:
    """One recording to transcribe: its id, where it comes from (for messages) and how to read it."""

    uttid: str
    source: str
    read: Callable[[int], "np.ndarray"]  # sampling rate -> float32 mono waveform at that rate


def _file_item(uttid: str, path: str) -> AudioItem:
    def read(sampling_rate):
        from .audio import load_audio

        return load_audio(path, sampling_rate=sampling_rate)

    return AudioItem(uttid, path, read)


def load_dataset_dir(path: str, split: str | None):
    """A `datasets` Dataset saved with `save_to_disk` (one split of a DatasetDict)."""
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError as error:
        raise CommandError(f"{path} is a saved dataset; reading it needs `pip install datasets`") from error
    dataset = load_from_disk(path)
    if isinstance(dataset, DatasetDict):
        if split is None:
            if len(dataset) != 1:
                raise CommandError(f"{path} holds the splits {', '.join(dataset)}: choose one with --split")
            split = next(iter(dataset))
        if split not in dataset:
            raise CommandError(f"{path} has no split {split!r} (it has {', '.join(dataset)})")
        dataset = dataset[split]
    elif split is not None:
        raise CommandError(f"{path} is a single dataset without splits; drop --split")
    return dataset


def dataset_items(dataset, path: str, audio_column: str, id_column: str) -> list[AudioItem]:
    from datasets import Audio

    if audio_column not in dataset.column_names:
        raise CommandError(f"{path} has no audio column {audio_column!r} (columns: {', '.join(dataset.column_names)})")
    # Rows are decoded here (soundfile/ffmpeg + soxr) rather than by datasets, which would need torchcodec.
    if isinstance(dataset.features[audio_column], Audio):
        dataset = dataset.cast_column(audio_column, Audio(decode=False))
    ids = dataset[id_column] if id_column in dataset.column_names else [str(index) for index in range(len(dataset))]

    def reader(index):
        def read(sampling_rate):
            from .data import decode_audio

            return decode_audio(dataset[index][audio_column], sampling_rate=sampling_rate)

        return read

    return [AudioItem(str(uttid), f"{path}[{index}]", reader(index)) for index, uttid in enumerate(ids)]


def collect_items(inputs: list[str], args: argparse.Namespace) -> list[AudioItem]:
    """Files, directories (recursively), wav.scp files and saved datasets, in the order given."""
    from .transcript_io import is_dataset_dir, iter_audio_inputs

    items = []
    for item in inputs:
        if is_dataset_dir(item):
            items.extend(dataset_items(load_dataset_dir(item, args.split), item, args.audio_column, args.id_column))
        else:
            try:
                items.extend(_file_item(uttid, path) for uttid, path in iter_audio_inputs([item]))
            except (FileNotFoundError, ValueError) as error:
                raise CommandError(str(error)) from error
    seen = {}
    for item in items:
        if item.uttid in seen:
            raise CommandError(f"utterance id {item.uttid!r} is given twice: {seen[item.uttid]} and {item.source}")
        seen[item.uttid] = item.source
    return items


def load_pipeline(args: argparse.Namespace):
    """The FireRedASR pipeline for `--model` and the generate() options chosen on the command line."""
    import torch

    from .hub import load_asr_pipeline

    if args.num_threads is not None:
        if args.num_threads < 1:
            raise CommandError(f"--num-threads must be at least 1, got {args.num_threads}")
        torch.set_num_threads(args.num_threads)
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1, got {args.batch_size}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    try:
        asr = load_asr_pipeline(args.model, revision=args.revision, device=device, dtype=dtype)
    except ValueError as error:  # a name that is neither a converted nor an original FireRedASR model
        raise CommandError(str(error)) from error
    variant = VARIANTS[asr.model.config.model_type]  # resolve_model accepts FireRedASR models only
    generate_kwargs = {}
    for flag, name, _, variants, _ in DECODING_OPTIONS:
        value = getattr(args, name_of(flag))
        if value is None:
            continue
        if variant not in variants:
            raise CommandError(f"{flag} applies to FireRedASR-{variants[0].upper()} models only")
        generate_kwargs[name] = value
    return asr, generate_kwargs


def name_of(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def segmentation_options(args: argparse.Namespace) -> dict:
    options = {"vad": args.vad}
    if args.max_segment_s is not None:
        options["max_segment_s"] = args.max_segment_s
    return options


class Progress:
    """A tqdm bar over recordings with the audio duration done and the real-time factor (processing time divided
    by audio duration) so far."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="file", disable=not enabled, dynamic_ncols=True)
        self.start = time.perf_counter()
        self.audio_seconds = 0.0
        self.decoded = 0

    def advance(self, audio_seconds: float | None) -> None:
        """One recording done: decoded (its duration) or failed (None)."""
        if audio_seconds is not None:
            self.audio_seconds += audio_seconds
            self.decoded += 1
        self.bar.set_postfix_str(f"audio {self.audio_seconds:.1f} s, RTF {self.real_time_factor:.3f}", refresh=False)
        self.bar.update(1)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def real_time_factor(self) -> float:
        return self.elapsed / self.audio_seconds if self.audio_seconds else 0.0

    def close(self) -> None:
        self.bar.close()


def transcribe_items(asr, items, call_kwargs, batch_size, results, resume_log, progress) -> dict[str, str]:
    """Transcribes `items` not already in `results`, `batch_size` recordings per pipeline call. A recording that
    cannot be read or decoded is reported in the returned `{uttid: error}` and the others go on."""
    sampling_rate = asr.feature_extractor.sampling_rate
    failures = {}
    pending = [item for item in items if item.uttid not in results]
    for start in range(0, len(pending), batch_size):
        group = []
        for item in pending[start : start + batch_size]:
            try:
                group.append((item, item.read(sampling_rate)))
            except Exception as error:  # noqa: BLE001 (any unreadable file is reported and skipped)
                failures[item.uttid] = f"{item.source}: {error}"
                progress.advance(None)
        if not group:
            continue
        try:
            outputs = asr([{"raw": waveform, "sampling_rate": sampling_rate} for _, waveform in group], **call_kwargs)
        except Exception:  # noqa: BLE001 (find the recording that failed by decoding them one at a time)
            outputs = None
        for index, (item, waveform) in enumerate(group):
            try:
                output = (
                    outputs[index]
                    if outputs is not None
                    else asr({"raw": waveform, "sampling_rate": sampling_rate}, **call_kwargs)
                )
            except Exception as error:  # noqa: BLE001
                failures[item.uttid] = f"{item.source}: {type(error).__name__}: {error}"
                progress.advance(None)
                continue
            duration = len(waveform) / sampling_rate
            result = {"text": output["text"], "duration": round(duration, 3), "source": item.source}
            if "chunks" in output:
                result["chunks"] = [{"text": c["text"], "timestamp": list(c["timestamp"])} for c in output["chunks"]]
            results[item.uttid] = result
            if resume_log is not None:
                resume_log.add(item.uttid, result)
            progress.advance(duration)
    return failures


def run_decoding(args, items, output_marker: Path | None, return_timestamps: bool):
    """Loads the model and decodes `items` with a progress bar and resume log; returns (results, failures,
    progress). `output_marker` is the file or directory next to which the resume log lives (None: no log)."""
    from .transcript_io import ResumeLog

    asr, generate_kwargs = load_pipeline(args)
    call_kwargs = {"batch_size": args.batch_size, **segmentation_options(args)}
    if return_timestamps:
        call_kwargs["return_timestamps"] = True
    if generate_kwargs:
        call_kwargs["generate_kwargs"] = generate_kwargs

    resume_log, results = None, {}
    if output_marker is not None:
        log_path = output_marker / RESUME_LOG_NAME if output_marker.is_dir() else Path(f"{output_marker}.resume.jsonl")
        if not args.resume and log_path.exists():
            log_path.unlink()
        metadata = {
            "model": asr.model.name_or_path,
            "options": {k: v for k, v in call_kwargs.items() if k != "batch_size"},
        }
        try:
            resume_log = ResumeLog(log_path, metadata=metadata)
        except ValueError as error:
            raise CommandError(str(error)) from error
        wanted = {item.uttid for item in items}
        results = {uttid: result for uttid, result in resume_log.results.items() if uttid in wanted}
        if results:
            print(f"Resuming: {len(results)} of {len(items)} recordings already done ({log_path})", file=sys.stderr)

    progress = Progress(len(items) - len(results), enabled=not args.no_progress)
    try:
        failures = transcribe_items(asr, items, call_kwargs, args.batch_size, results, resume_log, progress)
    finally:
        progress.close()
        if resume_log is not None:
            resume_log.close()
    if resume_log is not None and not failures:
        resume_log.path.unlink()
    return results, failures, progress


def report(progress: Progress, failures: dict[str, str]) -> int:
    """Prints the summary and the failures; returns the exit code (1 if any recording failed)."""
    print(
        f"{progress.decoded} recording(s), {progress.audio_seconds:.1f} s of audio decoded in {progress.elapsed:.1f} s "
        f"(real-time factor {progress.real_time_factor:.3f}); {len(failures)} failed",
        file=sys.stderr,
    )
    for uttid, message in failures.items():
        print(f"FAILED {uttid}: {message}", file=sys.stderr)
    return 1 if failures else 0


# ----------------------------------------------------------------------------------------------------------------


class TranscribeCommand(Command):
    name = "transcribe"
    help = "transcribe audio files, folders, wav.scp lists or saved datasets"

    def add_arguments(self, parser):
        parser.add_argument(
            "inputs",
            nargs="+",
            metavar="INPUT",
            help="audio file, folder (searched recursively), Kaldi wav.scp or dataset saved with save_to_disk",
        )
        add_model_arguments(parser)
        add_input_arguments(parser)
        group = parser.add_argument_group("output")
        group.add_argument(
            "--output-format",
            choices=OUTPUT_FORMATS,
            default="txt",
            help="txt: `uttid<TAB>text` lines; jsonl: one JSON object per recording; srt/vtt: one subtitle file "
            "per recording (from segment timestamps); kaldi: a Kaldi `text` file (default: txt)",
        )
        group.add_argument(
            "--output",
            "-o",
            help="output file (txt, jsonl, kaldi; default: standard output) or folder (srt, vtt: required; other "
            f"formats: written there as {', '.join(DEFAULT_OUTPUT_NAMES.values())})",
        )
        group.add_argument(
            "--timestamps", action="store_true", help="jsonl: add segment timestamps (srt/vtt always have them)"
        )
        group.add_argument(
            "--resume",
            action="store_true",
            help="continue an interrupted job: recordings already transcribed into this --output are not redone",
        )
        group.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(self, args):
        subtitles = args.output_format in ("srt", "vtt")
        if subtitles and args.output is None:
            raise CommandError(f"--output-format {args.output_format} writes one file per recording: give --output DIR")
        if args.resume and args.output is None:
            raise CommandError("--resume needs --output (the results are logged next to it)")
        items = collect_items(args.inputs, args)
        output = None if args.output is None else Path(args.output)
        if output is not None:
            if subtitles or args.output.endswith(os.sep) or output.is_dir():
                output.mkdir(parents=True, exist_ok=True)
            else:
                output.parent.mkdir(parents=True, exist_ok=True)
        results, failures, progress = run_decoding(args, items, output, return_timestamps=subtitles or args.timestamps)
        write_outputs(items, results, args.output_format, output)
        return report(progress, failures)


def write_outputs(items: list[AudioItem], results: dict, output_format: str, output: Path | None) -> None:
    from .transcript_io import write_srt, write_vtt

    done = [item.uttid for item in items if item.uttid in results]
    if output_format in ("srt", "vtt"):
        write = write_srt if output_format == "srt" else write_vtt
        for uttid in done:
            path = output / f"{uttid}.{output_format}"
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path, [(*chunk["timestamp"], chunk["text"]) for chunk in results[uttid]["chunks"]])
        return
    if output is None:
        # The writers take a path: write to a temporary file and copy it to standard output.
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / DEFAULT_OUTPUT_NAMES[output_format]
            write_text_outputs(done, results, output_format, path)
            sys.stdout.write(path.read_text(encoding="utf-8"))
        return
    if output.is_dir():
        output = output / DEFAULT_OUTPUT_NAMES[output_format]
    write_text_outputs(done, results, output_format, output)


def write_text_outputs(uttids: list[str], results: dict, output_format: str, path: Path) -> None:
    from .transcript_io import write_jsonl, write_kaldi_text, write_plain_text

    texts = [(uttid, results[uttid]["text"]) for uttid in uttids]
    if output_format == "txt":
        write_plain_text(path, texts)
    elif output_format == "kaldi":
        write_kaldi_text(path, texts)
    else:
        write_jsonl(path, ({"uttid": uttid, **results[uttid]} for uttid in uttids))


class EvalCommand(Command):
    name = "eval"
    help = "transcribe a test set and score it: CER (Chinese), WER (English), MER (all), as FireRedASR does"

    def add_arguments(self, parser):
        add_model_arguments(parser)
        group = parser.add_argument_group("data and scoring")
        group.add_argument(
            "--data",
            required=True,
            help="Kaldi data directory (wav.scp + text) or dataset saved with save_to_disk (audio + text columns)",
        )
        group.add_argument("--text-column", default="text", help="reference column of a dataset (default: text)")
        add_input_arguments(parser)
        group.add_argument(
            "--output-dir",
            default=None,
            help="where hyp.txt (Kaldi text), errors.txt (per-utterance alignments) and scores.json go "
            "(default: eval-<data folder name>)",
        )
        group.add_argument(
            "--convert-numbers",
            action="store_true",
            help="write Arabic numerals as Chinese ones before scoring (the original's --do_tn; needs cn2an)",
        )
        group.add_argument(
            "--remove-special",
            action="store_true",
            help="drop <|...|> tags before scoring (the original's --rm_special)",
        )
        group.add_argument("--resume", action="store_true", help="continue an interrupted evaluation")
        group.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(self, args):
        from .scoring import score_utterances
        from .transcript_io import write_kaldi_text

        data = Path(args.data)
        items, refs = self.load_test_set(data, args)
        output_dir = Path(args.output_dir or f"eval-{data.resolve().name}")
        output_dir.mkdir(parents=True, exist_ok=True)
        results, failures, progress = run_decoding(args, items, output_dir, return_timestamps=False)

        hyps = {item.uttid: results[item.uttid]["text"] for item in items if item.uttid in results}
        write_kaldi_text(output_dir / "hyp.txt", hyps)
        # Failed recordings count as empty hypotheses: all their reference tokens are deletions.
        score_report = score_utterances(
            refs, hyps, remove_special=args.remove_special, convert_numbers=args.convert_numbers, missing="empty"
        )
        score_report.write_details(output_dir / "errors.txt")
        scores = {
            "cer": score_report.cer,
            "wer": score_report.wer,
            "mer": score_report.mer,
            "utterances": len(score_report.utterances),
            "failed": sorted(failures),
            "model": args.model,
            "data": str(data),
        }
        (output_dir / "scores.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(score_report.format_table())
        print(f"Per-utterance errors: {output_dir / 'errors.txt'}", file=sys.stderr)
        return report(progress, failures)

    @staticmethod
    def load_test_set(data: Path, args) -> tuple[list[AudioItem], dict[str, str]]:
        from .transcript_io import is_dataset_dir

        if is_dataset_dir(data):
            dataset = load_dataset_dir(str(data), args.split)
            if args.text_column not in dataset.column_names:
                raise CommandError(f"{data} has no reference column {args.text_column!r}; name it with --text-column")
            items = dataset_items(dataset, str(data), args.audio_column, args.id_column)
            return items, dict(zip((item.uttid for item in items), dataset[args.text_column]))
        if (data / "wav.scp").is_file() and (data / "text").is_file():
            from .data import load_kaldi_dir

            try:
                dataset = load_kaldi_dir(data)
            except (FileNotFoundError, ValueError) as error:
                raise CommandError(str(error)) from error
            items = [_file_item(uttid, path) for uttid, path in zip(dataset["id"], dataset["audio"])]
            return items, dict(zip(dataset["id"], dataset["text"]))
        raise CommandError(f"{data} is neither a Kaldi data directory (wav.scp + text) nor a dataset saved to disk")


class ConvertCommand(Command):
    name = "convert"
    help = "convert an original FireRedASR directory (AED or LLM) to a transformers directory"

    def add_arguments(self, parser):
        parser.add_argument("input_dir", help="original model directory (model.pth.tar, cmvn.ark, ...)")
        parser.add_argument("output_dir", help="where to write the converted model")
        parser.add_argument(
            "--dtype",
            choices=["float32", "bfloat16", "float16"],
            help="weight dtype (default: float32 for AED, bfloat16 for LLM)",
        )
        parser.add_argument("--max-shard-size", default="5GB", help="safetensors shard size limit (default: 5GB)")
        parser.add_argument(
            "--keep-lora", action="store_true", help="LLM only: keep the LoRA as a separate PEFT adapter (not merged)"
        )
        parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the result to this Hub repository")

    def run(self, args):
        from .conversion import ConversionError, convert_checkpoint, push_to_hub

        try:
            output_dir = convert_checkpoint(
                args.input_dir,
                args.output_dir,
                dtype=args.dtype,
                max_shard_size=args.max_shard_size,
                merge_lora=not args.keep_lora,
                repo_id=args.push_to_hub,
            )
        except ConversionError as error:
            raise CommandError(str(error)) from error
        print(f"Converted model written to {output_dir}")
        if args.push_to_hub:
            print(f"Uploaded to {push_to_hub(output_dir, args.push_to_hub)}")
        return 0


class FinetuneCommand(Command):
    name = "finetune"
    help = "fine-tune a model (AED or LLM) on a Kaldi directory or a saved dataset with Seq2SeqTrainer"

    def add_arguments(self, parser):
        from .finetune import add_arguments

        add_arguments(parser)

    def run(self, args):
        from .finetune import FinetuneError, run

        try:
            return run(args)
        except FinetuneError as error:
            raise CommandError(str(error)) from error


class ExportCommand(Command):
    name = "export"
    help = "export a FireRedASR-AED model for another runtime (sherpa-onnx, float32 or int8)"

    def add_arguments(self, parser):
        from .export.command import add_arguments

        add_arguments(parser)

    def run(self, args):
        from .export import ExportError
        from .export.command import run

        try:
            return run(args)
        except ExportError as error:
            raise CommandError(str(error)) from error


COMMANDS: list[Command] = [TranscribeCommand(), EvalCommand(), ConvertCommand(), FinetuneCommand(), ExportCommand()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fireredasr-hf", description="FireRedASR speech recognition with Hugging Face transformers."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        subparser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(subparser)
        subparser.set_defaults(handler=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler.run(args)
    except CommandError as error:
        print(f"fireredasr-hf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
