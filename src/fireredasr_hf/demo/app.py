# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The Gradio interface of the demo: audio in (upload, microphone, examples), model and decoding options (those the
loaded pipeline offers), transcript, segment and word tables, real-time factor and SRT/VTT/JSON downloads.

    python spaces/app.py --model DIR                 # or: fireredasr-hf demo --model DIR
    python spaces/app.py --model FireRedTeam/FireRedASR-AED-L --model FireRedTeam/FireRedASR-LLM-L

Requests wait in Gradio's queue (`--concurrency-limit` of them run at once; each model decodes one recording at a
time). On a Hugging Face Space with ZeroGPU the decoding runs under `spaces.GPU`; elsewhere that decorator is not
used. Settings also come from the environment (see `service.DemoSettings.from_environment` and
docs/deploy-space.md), since a Space has no command line.
"""

import argparse
import logging
import os
import sys

import gradio as gr

from ..examples import EXAMPLES_DIR, example_files
from .options import ServerOptions, add_arguments, settings_from_arguments
from .service import MAX_BEAMS, MIN_BEAMS, DemoError, DemoResult, DemoService, DemoSettings, ModelInfo, model_label

logger = logging.getLogger(__name__)

GPU_DURATION_ENV_VAR = "FIREREDASR_DEMO_GPU_SECONDS"
DEFAULT_GPU_SECONDS = 120
SEGMENT_COLUMNS = {"start": "start (s)", "end": "end (s)", "text": "text", "confidence": "confidence"}
DESCRIPTION = """\
# FireRedASR speech recognition

Mandarin and English speech recognition with [FireRedASR](https://github.com/FireRedTeam/FireRedASR) in Hugging
Face Transformers. Upload a recording or use the microphone; long recordings are split at pauses by voice activity
detection and transcribed segment by segment, with timestamps.
"""


def gpu_decorator(duration: int | None = None):
    """`spaces.GPU(duration=...)` where the `spaces` package exists (Hugging Face ZeroGPU Spaces), else a decorator
    that returns the function unchanged."""
    try:
        import spaces
    except ImportError:
        spaces = None
    if not callable(getattr(spaces, "GPU", None)):  # not installed (or another module of that name)
        return lambda function: function
    if duration is None:
        duration = int(os.environ.get(GPU_DURATION_ENV_VAR, DEFAULT_GPU_SECONDS))
    return spaces.GPU(duration=duration)


def rows_table(rows: list[dict] | None):
    """A segment or word list as a table with a column per field present (confidence only where given)."""
    import pandas as pd

    rows = rows or []
    keys = [key for key in SEGMENT_COLUMNS if any(key in row for row in rows)] or ["start", "end", "text"]
    table = pd.DataFrame([[row.get(key) for key in keys] for row in rows], columns=[SEGMENT_COLUMNS[k] for k in keys])
    for column in ("start (s)", "end (s)"):
        table[column] = table[column].map(lambda value: f"{value:.2f}")
    return table


def option_updates(service: DemoService, info: ModelInfo) -> tuple:
    """The option controls as the model's pipeline allows: beam size, word timestamps, VAD, punctuation."""
    capabilities = info.capabilities
    return (
        gr.update(value=info.default_beams),
        gr.update(visible=capabilities.word_timestamps, value=False),
        gr.update(
            choices=list(capabilities.vad_names),
            value=info.vad or capabilities.default_vad,
            visible=bool(capabilities.vad_names),
        ),
        gr.update(visible=info.punctuation, value=info.punctuation),
        model_status(info),
    )


def model_status(info: ModelInfo) -> str:
    """The model line of the status, with what the engine noted when loading it."""
    return "  \n".join([f"Model: {info.description}", *info.notes])


def build_demo(service: DemoService, initial: ModelInfo | None = None) -> gr.Blocks:
    """The Blocks app over `service`; `initial` (the default model, loaded) sets the options shown at first."""
    settings = service.settings
    choices = [(model_label(name), name) for name in settings.models]
    capabilities = initial.capabilities if initial is not None else None
    gpu = gpu_decorator()

    with gr.Blocks(title="FireRedASR speech recognition", analytics_enabled=False) as demo:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            with gr.Column(scale=1):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording", elem_id="audio")
                if example_files():
                    gr.Examples(
                        [[str(path)] for path in example_files()],
                        inputs=[audio],
                        label="Examples (synthetic speech)",
                    )
                model = gr.Dropdown(choices, value=settings.models[0], label="Model", elem_id="model")
                with gr.Accordion("Decoding options", open=False):
                    num_beams = gr.Slider(
                        MIN_BEAMS,
                        MAX_BEAMS,
                        value=initial.default_beams if initial else 3,
                        step=1,
                        label="Beam size",
                        elem_id="num-beams",
                    )
                    word_timestamps = gr.Checkbox(
                        False,
                        label="Word timestamps",
                        visible=bool(capabilities and capabilities.word_timestamps),
                        elem_id="word-timestamps",
                    )
                    vad = gr.Dropdown(
                        list(capabilities.vad_names) if capabilities else [],
                        value=(initial.vad or capabilities.default_vad) if capabilities else None,
                        label="Voice activity detection (splits long audio)",
                        visible=bool(capabilities and capabilities.vad_names),
                        elem_id="vad",
                    )
                    punctuation = gr.Checkbox(
                        bool(initial and initial.punctuation),
                        label="Punctuation (transcripts cut into sentences)",
                        visible=bool(initial and initial.punctuation),
                        elem_id="punctuation",
                    )
                gr.Markdown(f"Recordings up to {settings.max_audio_seconds / 60:g} min.", elem_id="limits")
                button = gr.Button("Transcribe", variant="primary", elem_id="transcribe")
            with gr.Column(scale=1):
                transcript = gr.Textbox(
                    label="Transcript", lines=5, interactive=False, buttons=["copy"], elem_id="transcript"
                )
                status = gr.Markdown(model_status(initial) if initial else "", elem_id="status")
                with gr.Tab("Segments"):
                    segments = gr.Dataframe(rows_table([]), interactive=False, wrap=True, elem_id="segments")
                with gr.Tab("Words", visible=bool(capabilities and capabilities.word_timestamps)) as words_tab:
                    words = gr.Dataframe(rows_table([]), interactive=False, wrap=True, elem_id="words")
                downloads = gr.File(label="Downloads (SRT, VTT, JSON)", file_count="multiple", elem_id="downloads")

        def select_model(name, progress=gr.Progress()):  # noqa: B008 (how Gradio passes progress)
            progress(0.0, desc=f"Loading {model_label(name)}")
            try:
                info = service.model_info(name)
            except DemoError as error:
                raise gr.Error(str(error), duration=None, title="Model not available", print_exception=False) from None
            return (*option_updates(service, info), gr.update(visible=info.capabilities.word_timestamps))

        def clear_outputs():
            return "", "", rows_table([]), rows_table([]), None

        @gpu
        def transcribe(audio_path, name, beams, want_words, vad_name, punctuate, progress=gr.Progress()):  # noqa: B008
            def report(value, description):
                if isinstance(value, tuple):
                    progress(value, desc=description, unit="segments")
                else:
                    progress(value, desc=description)

            try:
                result = service.transcribe(
                    audio_path,
                    model=name,
                    num_beams=beams,
                    word_timestamps=bool(want_words),
                    vad=vad_name,
                    punctuation=bool(punctuate),  # False: this recording without the model's punctuation
                    progress=report,
                )
            except DemoError as error:
                raise gr.Error(str(error), duration=None, title="Cannot transcribe", print_exception=False) from None
            return present(result)

        def present(result: DemoResult):
            if result.message:
                gr.Warning(result.message, title="No speech")
            status_text = result.message or result.summary()
            return (
                result.text,
                status_text,
                rows_table(result.segments),
                rows_table(result.words),
                [str(path) for path in result.files] or None,
            )

        outputs = [transcript, status, segments, words, downloads]
        model.change(
            select_model,
            inputs=[model],
            outputs=[num_beams, word_timestamps, vad, punctuation, status, words_tab],
            concurrency_id="models",
        )
        button.click(clear_outputs, outputs=outputs, queue=False, show_progress="hidden").then(
            transcribe,
            inputs=[audio, model, num_beams, word_timestamps, vad, punctuation],
            outputs=outputs,
            concurrency_id="models",
            api_name="transcribe",
        )
    return demo


# ----------------------------------------------------------------------------------------------------------------
# Running it


def serve(settings: DemoSettings, server: ServerOptions, block: bool = True):
    """Loads the default model (so that a model that cannot be loaded stops here, with its reason) and serves the
    demo: until interrupted, or in the background with `block=False` (returns the local URL and the Blocks, whose
    `close()` stops it). Raises `DemoError` when the default model cannot be loaded."""
    service = DemoService(settings)
    print(f"Loading {model_label(settings.models[0])} ...", file=sys.stderr)
    initial = service.model_info(settings.models[0])
    demo = build_demo(service, initial)
    demo.queue(default_concurrency_limit=server.concurrency_limit, max_size=server.max_queue_size)
    _, url, _ = demo.launch(
        server_name=server.host,
        server_port=server.port,
        share=server.share,
        prevent_thread_lock=not block,
        allowed_paths=[str(EXAMPLES_DIR)],
        max_file_size="500mb",
        footer_links=["gradio", "settings"],
    )
    return url, demo


def run(args: argparse.Namespace, prog: str = "fireredasr-hf demo") -> int:
    """Serves the demo with the options parsed by `add_arguments`; returns the exit code (2: bad settings or a model
    that cannot be loaded, said in one line)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(*settings_from_arguments(args))
    except (DemoError, ValueError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FireRedASR speech recognition demo (Gradio).")
    add_arguments(parser)
    return run(parser.parse_args(argv), prog=parser.prog)


__all__ = ["build_demo", "gpu_decorator", "main", "run", "serve"]
