# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""`fireredasr-hf serve`: the OpenAI-compatible transcription server, run by uvicorn.

fireredasr-hf serve --model FireRedTeam/FireRedASR-AED-L --port 8000 --batch-size 8 --max-wait-ms 10
"""

import argparse
import os

from ..commands import (
    Command,
    CommandError,
    add_model_arguments,
    add_punctuation_argument,
    build_transcriber,
    punctuation_option,
)

API_KEY_VARIABLE = "FIREREDASR_API_KEY"


class ServeCommand(Command):
    name = "serve"
    help = "serve a model over HTTP with OpenAI's audio API (/v1/audio/transcriptions), batching concurrent requests"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_model_arguments(parser)
        add_punctuation_argument(parser.add_argument_group("punctuation (text, segments and words)"))
        group = parser.add_argument_group("server")
        group.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0: all)"
        )
        group.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
        group.add_argument(
            "--served-model-name",
            action="append",
            metavar="NAME",
            help="a name clients give as `model` (repeatable; default: the --model argument); others get 404",
        )
        group.add_argument(
            "--max-wait-ms",
            type=float,
            default=10.0,
            help="how long a request may wait for others to share its batch (default: 10; --batch-size 1 turns "
            "batching off)",
        )
        group.add_argument("--max-audio-s", type=float, default=3600.0, help="longest audio accepted (default: 3600)")
        group.add_argument(
            "--max-upload-mb", type=float, default=25.0, help="largest upload accepted, in MB (default: 25, as OpenAI)"
        )
        group.add_argument(
            "--api-key",
            default=os.environ.get(API_KEY_VARIABLE),
            help=f"require `Authorization: Bearer KEY` on /v1/* (default: ${API_KEY_VARIABLE}; none: open)",
        )
        group.add_argument(
            "--request-timeout-s",
            type=float,
            default=600.0,
            help="a request not answered within this time gets 504 and its work is withdrawn (default: 600)",
        )
        group.add_argument(
            "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="(info)"
        )

    def run(self, args: argparse.Namespace) -> int:
        try:
            import uvicorn

            from .app import ServerConfig, create_app
        except ImportError as error:
            raise CommandError(
                f"fireredasr-hf serve needs {error.name} (not installed): pip install 'fireredasr-hf[serve]'"
            ) from None

        for flag, value in (
            ("--max-wait-ms", args.max_wait_ms),
            ("--max-audio-s", args.max_audio_s),
            ("--max-upload-mb", args.max_upload_mb),
            ("--request-timeout-s", args.request_timeout_s),
        ):
            if value < 0 or (value == 0 and flag != "--max-wait-ms"):
                raise CommandError(f"{flag} must be {'>= 0' if flag == '--max-wait-ms' else 'positive'}, got {value:g}")
        if not 0 <= args.port < 65536:
            raise CommandError(f"--port must be from 0 to 65535, got {args.port}")
        if args.api_key is not None and not args.api_key.strip():
            raise CommandError("--api-key is empty")
        config = ServerConfig(
            model_names=tuple(args.served_model_name or [args.model]),
            max_wait_ms=args.max_wait_ms,
            max_audio_s=args.max_audio_s,
            max_upload_mb=args.max_upload_mb,
            api_key=args.api_key,
            request_timeout_s=args.request_timeout_s,
        )
        app = create_app(build_transcriber(args, punctuation=punctuation_option(args)), config)
        # On SIGINT/SIGTERM uvicorn stops accepting connections and lets the requests in flight finish.
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                log_level=args.log_level,
                timeout_graceful_shutdown=int(args.request_timeout_s) + 1,
            )
        )
        server.run()
        return 0
