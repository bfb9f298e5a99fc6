#!/usr/bin/env bash
# Developer install: everything fireredasr-hf's development and tests need, on a fresh Debian machine.
#
#   bash scripts/install.sh          # then: source .venv/bin/activate && python -m pytest
#
# Steps (each announced; the tools' own progress is shown):
#   1. system packages: ffmpeg (audio files), espeak-ng + sox (synthetic test speech), chromium (browser tests of
#      the demo: Playwright drives /usr/bin/chromium, no browser download);
#   2. a virtual environment in .venv (python3, or $PYTHON), torch first (constraints.txt pins the local CPU wheel);
#   3. the package in editable mode with every extra and the test tools ([all,dev,reference]);
#   4. the original release code for the live parity tests, with --no-deps (their own requirements pull in
#      modelscope and pinned torch builds): fireredasr (FireRedASR v1), fasr-asr-firered (FireRedASR2),
#      fireredvad (FireRedVAD).
# Users install with pip instead: see the README.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need_apt=()
for entry in ffmpeg:ffmpeg espeak-ng:espeak-ng sox:sox chromium:chromium; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || need_apt+=("${entry#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  step "System packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"
else
  step "System packages: ffmpeg, espeak-ng, sox and chromium are installed"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  step "Virtual environment .venv ($("$PY" --version))"
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --progress-bar off -c constraints.txt)

step "torch (CPU wheel pinned in constraints.txt)"
"${PIP[@]}" torch==2.13.0

step "fireredasr-hf (editable) with the extras all, dev and reference"
"${PIP[@]}" -e ".[all,dev,reference]"

step "Reference code for the parity tests (--no-deps)"
"${PIP[@]}" --no-deps fireredasr==0.0.2 fasr-asr-firered==0.5.8 fireredvad==0.0.2

step "Done: fireredasr-hf is installed in .venv"
echo "Activate it with 'source .venv/bin/activate' (then fireredasr-hf, python and hf are the project's), or call"
echo ".venv/bin/python, .venv/bin/fireredasr-hf and .venv/bin/hf directly. Run the tests: .venv/bin/python -m pytest"
