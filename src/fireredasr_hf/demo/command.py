# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""`fireredasr-hf demo`: serves the Gradio demo (the same app as `spaces/app.py`)."""

from ..commands import Command, CommandError


class DemoCommand(Command):
    name = "demo"
    help = "serve the speech recognition demo (Gradio) in the browser: upload or record, transcript, subtitles"

    def add_arguments(self, parser):
        from .options import add_arguments

        add_arguments(parser)

    def run(self, args):
        try:
            from .app import run
        except ImportError as error:
            raise CommandError(f"the demo needs gradio: pip install 'fireredasr-hf[demo]' ({error})") from None
        return run(args, prog="fireredasr-hf demo")
