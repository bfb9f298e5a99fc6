# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Short synthetic speech clips (espeak-ng, see README.md here) for the demo and for model-card widgets."""

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent


def example_files() -> list[Path]:
    """The example clips, sorted by name."""
    return sorted(EXAMPLES_DIR.glob("*.flac"))


__all__ = ["EXAMPLES_DIR", "example_files"]
