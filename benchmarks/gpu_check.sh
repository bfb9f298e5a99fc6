#!/usr/bin/env bash
# GPU check of fireredasr-hf, unattended, from a fresh checkout, meant to finish within 8 minutes:
#
#     bash benchmarks/gpu_check.sh [gpu_check.py options]     # e.g. --dtypes bfloat16 --batch-sizes 1 8 64
#
# 1. Python: $PYTHON if it already imports fireredasr-hf's requirements with a CUDA torch, else .venv-gpu, a
#    virtual environment that reuses the machine's CUDA torch (--system-site-packages) and installs this checkout
#    and its other requirements with pip (network needed; torch is never reinstalled).
# 2. benchmarks/gpu_check.py: full-size random AED-L and LLM-L (2 Qwen2 layers of real width) in bf16/fp16, batch
#    1-64 (RTF, utterances/s, peak GPU memory), and fixture transcripts float32 vs bf16/fp16 (the fixtures are read
#    from ../shared/fixtures or $FIREREDASR_FIXTURES; without them that part is skipped).
# The output is also written to gpu_check.log (or $GPU_CHECK_LOG).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
log=${GPU_CHECK_LOG:-gpu_check.log}
start=$(date +%s)

has_requirements() {
  PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" "$1" - <<'EOF' 2>/dev/null
import importlib.metadata as metadata, sys
import torch, transformers, safetensors, sentencepiece, soundfile, soxr, numpy  # noqa: F401
from packaging.version import Version
ok = torch.cuda.is_available() and Version("5.24") <= Version(transformers.__version__) < Version("5.25")
sys.exit(0 if ok else 1)
EOF
}

python=""
for candidate in ${PYTHON:-} .venv-gpu/bin/python .venv/bin/python python3; do
  if command -v "$candidate" >/dev/null 2>&1 && has_requirements "$candidate"; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  base=${PYTHON:-python3}
  if ! "$base" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: $base has no CUDA-enabled torch; install one (https://pytorch.org) or set PYTHON" >&2
    exit 2
  fi
  echo "gpu_check: installing fireredasr-hf into .venv-gpu (reusing $base's torch)"
  [ -x .venv-gpu/bin/python ] || "$base" -m venv --system-site-packages .venv-gpu
  # Only what is missing or too old is installed; torch comes from the system site packages.
  .venv-gpu/bin/python -m pip install -q -e . packaging
  python=.venv-gpu/bin/python
  if ! has_requirements "$python"; then
    echo "gpu_check: .venv-gpu still lacks a requirement (see pip's output above)" >&2
    exit 2
  fi
fi
echo "gpu_check: using $python ($(( $(date +%s) - start )) s)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

set -o pipefail
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" "$python" benchmarks/gpu_check.py "$@" 2>&1 | tee "$log"
echo "gpu_check: done in $(( $(date +%s) - start )) s; output in $log"
