# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The demo's launch options: command-line arguments (shared by `fireredasr-hf demo` and `spaces/app.py`) with
environment variables as defaults, since a Space has no command line. Imports nothing heavy (the command line
builds its parser from this module without loading gradio or torch)."""

import argparse
import inspect
import os
from dataclasses import dataclass

from .service import (
    DEFAULT_MAX_AUDIO_SECONDS,
    MAX_AUDIO_SECONDS_ENV_VAR,
    MODELS_ENV_VAR,
    PUNCTUATION_ENV_VAR,
    VAD_ENV_VAR,
    DemoSettings,
)

CONCURRENCY_ENV_VAR = "FIREREDASR_DEMO_CONCURRENCY_LIMIT"


@dataclass
class ServerOptions:
    """How the app is served: Gradio's queue and the web server."""

    concurrency_limit: int = 1
    max_queue_size: int = 32
    host: str | None = None
    port: int | None = None
    share: bool = False

    def __post_init__(self):
        if self.concurrency_limit < 1:
            raise ValueError(f"the concurrency limit must be at least 1, got {self.concurrency_limit}")
        if self.max_queue_size < 1:
            raise ValueError(f"the queue must hold at least 1 request, got {self.max_queue_size}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..transcription import Transcriber

    parser.add_argument(
        "--model",
        action="append",
        help="converted directory, original FireRedASR directory or Hub repo id; repeat it to offer several (the "
        f"first is the default; default: ${MODELS_ENV_VAR}, comma-separated, else FireRedTeam/FireRedASR-AED-L)",
    )
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available, else cpu)")
    parser.add_argument(
        "--dtype", choices=["auto", "float32", "bfloat16", "float16"], help="weights dtype (default: as stored)"
    )
    parser.add_argument(
        "--max-audio-seconds",
        type=float,
        help=f"longest recording accepted (default: ${MAX_AUDIO_SECONDS_ENV_VAR}, else {DEFAULT_MAX_AUDIO_SECONDS:g})",
    )
    parser.add_argument(
        "--vad",
        choices=["firered", "silero", "energy"],
        help=f"voice activity detector selected at first (users may pick another; default: ${VAD_ENV_VAR}, else "
        "FireRedVAD)",
    )
    parser.add_argument(
        "--vad-model",
        metavar="MODEL",
        help="the FireRedVAD model: a directory or Hub repo id (default: $FIREREDASR_HF_VAD_MODEL, else "
        "FireRedTeam/FireRedVAD)",
    )
    parser.add_argument(
        "--punctuation",
        metavar="MODEL",
        help="FireRedPunc model (directory or Hub repo id) that punctuates transcripts, users may turn it off; "
        f"none: no punctuation (default: ${PUNCTUATION_ENV_VAR}, else the engine's default model if it can be "
        "obtained)",
    )
    parser.add_argument("--max-loaded-models", type=int, help="models kept in memory at once (default: 1)")
    parser.add_argument(
        "--concurrency-limit",
        type=int,
        help=f"requests processed at once; the others wait in the queue (default: ${CONCURRENCY_ENV_VAR}, else 1)",
    )
    parser.add_argument("--max-queue-size", type=int, default=32, help="requests that may wait (default: 32)")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--share", action="store_true", help="also serve through a temporary public gradio.live link")
    # Load options of the installed engine, offered where it has them.
    if "quantize" in inspect.signature(Transcriber).parameters:
        parser.add_argument("--quantize", help="quantize the model's weights when loading it (see `transcribe --help`)")


def settings_from_arguments(args: argparse.Namespace) -> tuple[DemoSettings, ServerOptions]:
    load_options = {}
    if getattr(args, "quantize", None):
        load_options["quantize"] = args.quantize
    settings = DemoSettings.from_environment(
        models=args.model,
        device=args.device,
        dtype=None if args.dtype in (None, "auto") else args.dtype,
        max_audio_seconds=args.max_audio_seconds,
        vad=args.vad,
        vad_model=args.vad_model,
        punctuation=args.punctuation,
        max_loaded_models=args.max_loaded_models,
        load_options=load_options,
    )
    concurrency_limit = args.concurrency_limit
    if concurrency_limit is None:
        try:
            concurrency_limit = int(os.environ.get(CONCURRENCY_ENV_VAR, "1"))
        except ValueError:
            raise ValueError(
                f"{CONCURRENCY_ENV_VAR} must be a whole number, got {os.environ[CONCURRENCY_ENV_VAR]!r}"
            ) from None
    server = ServerOptions(concurrency_limit, args.max_queue_size, args.host, args.port, args.share)
    return settings, server


__all__ = ["CONCURRENCY_ENV_VAR", "ServerOptions", "add_arguments", "settings_from_arguments"]
