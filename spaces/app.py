# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedASR speech recognition demo: the Hugging Face Space entry point (the app is `fireredasr_hf.demo`).

python spaces/app.py --model DIR          # locally, with a converted or original model directory or a Hub id
python spaces/app.py --help               # the options; on a Space they come from FIREREDASR_DEMO_* variables
"""

import sys
from pathlib import Path

# In a checkout of fireredasr-hf, the checkout's package is the one demonstrated (a Space installs it instead).
SOURCE_DIR = Path(__file__).resolve().parents[1] / "src"
if (SOURCE_DIR / "fireredasr_hf" / "demo" / "app.py").is_file():
    sys.path.insert(0, str(SOURCE_DIR))

from fireredasr_hf.demo.app import main

if __name__ == "__main__":
    sys.exit(main())
