#!/usr/bin/env bash
# Installs everything fireredasr-hf needs for development and tests on a fresh Debian machine:
# system packages (ffmpeg for audio files, espeak-ng + sox for synthetic test speech), a virtual
# environment in .venv, the package with its extras, and the original release code for live parity tests.
# Chromium (Debian's) is the browser the demo's browser tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for bin in ffmpeg espeak-ng sox chromium; do command -v "$bin" >/dev/null 2>&1 || need_apt+=("$bin"); done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q -c constraints.txt torch==2.13.0
.venv/bin/pip install -q -c constraints.txt -e ".[data,vad,demo,dev,reference,serve,cluster]"
# The original FireRedASR and FireRedVAD release code (Apache-2.0), test-only references; --no-deps avoids modelscope.
.venv/bin/pip install -q --no-deps fireredasr==0.0.2 fireredvad==0.0.2
# The FireRedASR2 reference (its `fireredasr2/` package is FireRedASR2S's code), test-only too; the tests import its
# submodules directly (its package __init__ and torchaudio are not needed).
.venv/bin/pip install -q --no-deps fasr-asr-firered==0.5.8
echo "fireredasr-hf installed in .venv"
