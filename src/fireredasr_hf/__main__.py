# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""`python -m fireredasr_hf ...` runs the `fireredasr-hf` command line."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
