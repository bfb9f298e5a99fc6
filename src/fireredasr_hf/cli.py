# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The `fireredasr-hf` command line: `transcribe`, `eval`, `convert`, `finetune`, `serve`, `demo` and `export`.

    fireredasr-hf transcribe --model MODEL speech.wav recordings/ data/wav.scp --output-format srt --output subs/
    fireredasr-hf transcribe --ray --model MODEL manifest.parquet --output results/ --replicas 4   # on a Ray cluster
    fireredasr-hf eval --model MODEL --data data/test            # Kaldi directory (wav.scp + text) or a dataset
    fireredasr-hf convert FireRedASR-AED-L fireredasr-aed-l-hf
    fireredasr-hf finetune --model MODEL --train-data data/train --eval-data data/dev --output-dir my-model
    fireredasr-hf serve --model MODEL --port 8000                # OpenAI-compatible /v1/audio/transcriptions
    fireredasr-hf demo --model MODEL                             # the Gradio demo in the browser
    fireredasr-hf export --format sherpa-onnx MODEL OUT --int8   # for sherpa-onnx (CPUs, phones, boards)

Each subcommand is a `Command` (see `commands.py`) in `COMMANDS`; a new one is a `Command` subclass in its own
module (e.g. `serving/command.py`), listed there. This module only parses arguments and reports: transcription jobs are the engine's
(`fireredasr_hf.transcription`), scoring is `fireredasr_hf.evaluation`. Heavy imports (torch, transformers,
datasets) happen only when a command needs them.
"""

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .commands import (
    Command,
    CommandError,
    add_input_arguments,
    add_model_arguments,
    add_punctuation_argument,
    build_transcriber,
    punctuation_option,
    transcriber_options,
)
from .demo.command import DemoCommand
from .export.command import ExportCommand
from .serving.command import ServeCommand


class ProgressBar:
    """A tqdm bar over recordings with the audio duration done and the real-time factor (processing time divided
    by audio duration) so far; the engine calls it once per finished recording."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="file", disable=not enabled, dynamic_ncols=True)
        self.start = time.perf_counter()
        self.audio_seconds = 0.0

    def __call__(self, item, audio_seconds: float | None) -> None:
        if audio_seconds is not None:
            self.audio_seconds += audio_seconds
        rtf = (time.perf_counter() - self.start) / self.audio_seconds if self.audio_seconds else 0.0
        self.bar.set_postfix_str(f"audio {self.audio_seconds:.1f} s, RTF {rtf:.3f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_job(args: argparse.Namespace, num_items: int, job: Callable):
    """Runs `job(progress)` with a progress bar; returns its result."""
    bar = ProgressBar(num_items, enabled=not args.no_progress)
    try:
        return job(bar)
    finally:
        bar.close()


def report(job) -> int:
    """Prints the summary and the failures of a `JobReport`; returns the exit code (1 if anything failed)."""
    if job.resumed:
        print(f"Resumed: {job.resumed} recording(s) were already done", file=sys.stderr)
    print(
        f"{job.decoded} recording(s), {job.audio_seconds:.1f} s of audio decoded in {job.elapsed:.1f} s "
        f"(real-time factor {job.real_time_factor:.3f}); {len(job.failures)} failed",
        file=sys.stderr,
    )
    for uttid, message in job.failures.items():
        print(f"FAILED {uttid}: {message}", file=sys.stderr)
    if job.resume_log is not None and job.failures:
        print(
            f"The finished results are logged in {job.resume_log}: rerun with --resume to retry the failures",
            file=sys.stderr,
        )
    return 1 if job.failures else 0


# ----------------------------------------------------------------------------------------------------------------


# What `--ray ADDRESS` takes as a cluster address (anything else there is the first input).
RAY_ADDRESS = re.compile(r"auto|local|(ray|https?)://\S+|[\w.-]+:\d+")


class TranscribeCommand(Command):
    name = "transcribe"
    help = "transcribe audio files, folders, wav.scp lists or saved datasets"

    def add_arguments(self, parser):
        from .transcription import (
            DEFAULT_OUTPUT_NAMES,
            MAX_CUE_SECONDS,
            MAX_CUE_WIDTH,
            OUTPUT_FORMATS,
        )

        parser.add_argument(
            "inputs",
            nargs="*",  # at least one, checked in run(): `--ray INPUT` may have taken the only one as an address
            metavar="INPUT",
            help="audio file, folder (searched recursively), Kaldi wav.scp, manifest (.jsonl, .parquet), file list "
            "(.lst), fsspec URL (s3://..., a file, folder or manifest) or dataset saved with save_to_disk",
        )
        add_model_arguments(parser)
        add_input_arguments(parser)
        group = parser.add_argument_group("output")
        group.add_argument(
            "--output-format",
            choices=[*OUTPUT_FORMATS, "parquet"],
            help="txt: `uttid<TAB>text` lines; jsonl: one JSON object per recording; srt/vtt: one subtitle file "
            "per recording (a cue per sentence with punctuation, else per segment, or per line of words with "
            "--timestamps word; utterance ids become relative file paths inside --output); kaldi: a Kaldi `text` "
            "file; with --ray: jsonl or parquet shards (default: txt; with --ray: jsonl)",
        )
        group.add_argument(
            "--output",
            "-o",
            help="output file (txt, jsonl, kaldi; default: standard output) or folder (srt, vtt: required; other "
            f"formats: written there as {', '.join(DEFAULT_OUTPUT_NAMES.values())})",
        )
        group.add_argument(
            "--timestamps",
            nargs="?",
            const="segment",
            metavar="{segment,word}",
            help="jsonl: add timed chunks (`--timestamps` or `--timestamps segment`: sentences with punctuation, else "
            "segments), or word timestamps (`--timestamps word`: FireRedASR2-AED; `words` with times and "
            "confidences, and `chunks` grouping them into subtitle lines); srt/vtt: cues per sentence or segment "
            "(default) or per line of words (`--timestamps word`). Not for txt and kaldi, which have no place for "
            "them. Every recording is then split at speech pauses by the VAD, whatever its length, and its text is "
            "the joined chunk texts, which can differ from the text without --timestamps (recordings within the "
            "model's limit are otherwise decoded whole)",
        )
        group.add_argument(
            "--keep-pauses",
            action="store_true",
            help="word timestamps: keep the pauses the alignment finds before words (default: FireRedASR2's times, "
            "each word starting where the previous one ended)",
        )
        add_punctuation_argument(group)
        group.add_argument(
            "--max-cue-width",
            type=int,
            default=MAX_CUE_WIDTH,
            help=f"srt/vtt: longer cues are cut, between words (a Chinese character counts two; default: "
            f"{MAX_CUE_WIDTH})",
        )
        group.add_argument(
            "--max-cue-s",
            type=float,
            default=MAX_CUE_SECONDS,
            help=f"srt/vtt: cues lasting longer are cut (default: {MAX_CUE_SECONDS:g} s)",
        )
        group.add_argument(
            "--resume",
            action="store_true",
            help="continue an interrupted job: recordings already transcribed into this --output are not redone",
        )
        group.add_argument("--no-progress", action="store_true", help="no progress bar")
        group = parser.add_argument_group("cluster (Ray Data; see docs/cluster.md)")
        group.add_argument(
            "--ray",
            nargs="?",
            const="",
            metavar="ADDRESS",
            help="decode on a Ray cluster (ADDRESS: auto, ray://head:10001, host:port; without: $RAY_ADDRESS, else a "
            "local cluster); --output is then a folder (local or fsspec URL) of result shards",
        )
        group.add_argument("--replicas", type=int, default=1, help="model replicas (Ray actors) (default: 1)")
        group.add_argument("--gpus-per-replica", type=float, default=0, help="GPUs per replica (default: 0)")
        group.add_argument("--cpus-per-replica", type=float, default=1, help="CPUs per replica (default: 1)")

    def run(self, args):
        from .transcription import SUBTITLE_FORMATS, TIMESTAMP_LEVELS, OutputTarget, collect_inputs, transcribe_files

        if args.timestamps not in (None, *TIMESTAMP_LEVELS):
            args.inputs.insert(0, args.timestamps)  # `--timestamps INPUT ...`: an input, not a level
            args.timestamps = "segment"
        if args.ray and not RAY_ADDRESS.fullmatch(args.ray):
            args.inputs.insert(0, args.ray)  # `--ray INPUT ...`: an input, not a cluster address
            args.ray = ""
        if not args.inputs:
            raise CommandError("give at least one INPUT (audio file, folder, wav.scp, manifest, URL or dataset)")
        if args.ray is not None:
            return self.run_on_ray(args)
        args.output_format = args.output_format or "txt"
        if args.output_format == "parquet":
            raise CommandError("--output-format parquet writes the shards of a --ray job; use jsonl here")
        subtitles = args.output_format in SUBTITLE_FORMATS
        if args.timestamps and args.output_format in ("txt", "kaldi"):
            raise CommandError(
                f"--timestamps adds timed chunks to jsonl, srt and vtt output; {args.output_format} has no place for "
                "them (and its text would change): use --output-format jsonl, srt or vtt"
            )
        if subtitles and args.output is None:
            raise CommandError(f"--output-format {args.output_format} writes one file per recording: give --output DIR")
        if args.resume and args.output is None:
            raise CommandError("--resume needs --output (the results are logged next to it)")
        inputs = collect_inputs(args.inputs, args.split, args.audio_column, args.id_column)
        # The output location and every id are checked before the model is loaded.
        target = OutputTarget(args.output, args.output_format, args.max_cue_width, args.max_cue_s)
        target.check_ids(item.uttid for item in inputs.items)
        if args.keep_pauses and args.timestamps != "word":
            raise CommandError("--keep-pauses applies to word timestamps: add --timestamps word")
        timestamps = args.timestamps or ("segment" if subtitles else False)
        punctuation = punctuation_option(args)
        transcriber = build_transcriber(args, timestamps=timestamps, punctuation=punctuation)
        job = run_job(
            args,
            len(inputs.items),
            lambda progress: transcribe_files(transcriber, inputs, target, resume=args.resume, progress=progress),
        )
        return report(job)

    def run_on_ray(self, args):
        from .distributed import transcribe_on_ray
        from .transcription import collect_inputs, resolve_punctuation

        try:
            import ray.data  # noqa: F401 (checked before the inputs are listed)
        except ImportError:
            raise CommandError("--ray needs Ray Data (not installed): pip install 'fireredasr-hf[cluster]'") from None

        output_format = args.output_format or "jsonl"
        if output_format not in ("jsonl", "parquet"):
            raise CommandError(f"--ray writes jsonl or parquet shards, not {output_format}")
        if args.output is None:
            raise CommandError("--ray writes result shards into a folder: give --output DIR (or an fsspec URL)")
        inputs = collect_inputs(args.inputs, args.split, args.audio_column, args.id_column)
        # Replicas print nothing: whether the default punctuation model can be obtained is decided here, once.
        punctuation, notes = resolve_punctuation(punctuation_option(args))
        for note in notes:
            print(note, file=sys.stderr)
        options = transcriber_options(args, timestamps=args.timestamps, punctuation=punctuation)
        batch_size = options.pop("batch_size")
        if options["device"] is None:
            del options["device"]  # the runner's default: cuda with --gpus-per-replica, else cpu
        if options["num_threads"] is None:
            del options["num_threads"]  # the runner's default: --cpus-per-replica
        job = run_job(
            args,
            len(inputs.items),
            lambda progress: transcribe_on_ray(
                inputs,
                args.output,
                args.model,
                output_format=output_format,
                address=args.ray or None,
                replicas=args.replicas,
                gpus_per_replica=args.gpus_per_replica,
                cpus_per_replica=args.cpus_per_replica,
                batch_size=batch_size,
                transcriber_options=options,
                resume=args.resume,
                progress=progress,
            ),
        )
        return report(job)


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
        from .evaluation import evaluate_test_set, load_test_set
        from .extras import require

        require("data", "scoring a test set", ["datasets", "jiwer"] + (["cn2an"] if args.convert_numbers else []))

        data = Path(args.data)
        output_dir = Path(args.output_dir or f"eval-{data.resolve().name}")
        num_items = len(load_test_set(data, args.split, args.audio_column, args.id_column, args.text_column)[0])
        transcriber = build_transcriber(args)
        outcome = run_job(
            args,
            num_items,
            lambda progress: evaluate_test_set(
                transcriber,
                data,
                output_dir,
                split=args.split,
                audio_column=args.audio_column,
                id_column=args.id_column,
                text_column=args.text_column,
                convert_numbers=args.convert_numbers,
                remove_special=args.remove_special,
                resume=args.resume,
                progress=progress,
            ),
        )
        print(outcome.score_report.format_table())
        print(f"Per-utterance errors: {output_dir / 'errors.txt'}", file=sys.stderr)
        return report(outcome.job)


class ConvertCommand(Command):
    name = "convert"
    help = (
        "convert an original FireRedASR or FireRedASR2 (AED or LLM), FireRedVAD or FireRedPunc directory to a "
        "transformers one"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "input_dir",
            help="original model directory (model.pth.tar, cmvn.ark, ...; FireRedVAD: also the ONNX exports)",
        )
        parser.add_argument("output_dir", help="where to write the converted model")
        parser.add_argument(
            "--dtype",
            choices=["float32", "bfloat16", "float16"],
            help="weight dtype (default: float32 for AED, bfloat16 for LLM)",
        )
        parser.add_argument(
            "--max-shard-size",
            "--max_shard_size",
            default="5GB",
            help="safetensors shard size limit (default: 5GB)",
        )
        parser.add_argument(
            "--keep-lora",
            "--keep_lora",
            action="store_true",
            help="LLM only: keep the LoRA as a separate PEFT adapter in lora/ (applied when the model is loaded; "
            "needs peft) instead of merging it into the weights",
        )
        parser.add_argument(
            "--push-to-hub", "--push_to_hub", metavar="REPO_ID", help="upload the result to this Hub repository"
        )
        parser.add_argument(
            "--lm_dir",
            "--lm-dir",
            dest="lm_dir",
            metavar="LM_DIR",
            help="FireRedASR2-AED: directory of FireRedASR2's LSTM language model (model.pth.tar), converted into the "
            "output for shallow fusion (--lm-weight when transcribing)",
        )
        parser.add_argument(
            "--fireredasr-version",
            "--fireredasr_version",
            type=int,
            choices=[1, 2],
            help="the release (default: an AED from its CTC head, an LLM 2 when the directory name says FireRedASR2)",
        )

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
                lm_dir=args.lm_dir,
                fireredasr_version=args.fireredasr_version,
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


COMMANDS: list[Command] = [
    TranscribeCommand(),
    EvalCommand(),
    ConvertCommand(),
    FinetuneCommand(),
    ServeCommand(),
    DemoCommand(),
    ExportCommand(),
]


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
    from .cpu import prefer_passive_waiting

    # Before anything imports torch, which starts the OpenMP runtime.
    prefer_passive_waiting()
    args = build_parser().parse_args(argv)
    from .extras import MissingDependencyError
    from .transcription import TranscriptionError

    try:
        return args.handler.run(args)
    except (CommandError, TranscriptionError, MissingDependencyError) as error:
        print(f"fireredasr-hf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
