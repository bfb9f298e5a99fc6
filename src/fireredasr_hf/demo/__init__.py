# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The speech recognition demo (Gradio), run locally with `fireredasr-hf demo --model DIR` or deployed as a Hugging
Face Space from `spaces/`.

- `service`: what the demo does (models, checks, transcription, result files), with no user interface;
- `app`: the Gradio Blocks interface and its launcher (`main`, `add_arguments`, `run`);
- `command`: the `demo` subcommand of `fireredasr-hf`.

Its example clips are `fireredasr_hf.examples`.

Importing this package imports nothing heavy; `app` needs `pip install fireredasr-hf[demo]` (gradio).
"""
