# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""An OpenAI-compatible transcription server with dynamic batching: `fireredasr-hf serve` (see docs/serving.md).

    from fireredasr_hf.serving import ServerConfig, create_app    # the FastAPI application, for your own ASGI server

Modules: `app` (endpoints, limits, errors), `batching` (the dynamic batcher: one model thread), `openai_api` (the
OpenAI response and error shapes), `command` (the `serve` subcommand). FastAPI is imported only when the
application is built, so the command line stays fast.
"""


def __getattr__(name):
    if name in ("ServerConfig", "create_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServerConfig", "create_app"]
