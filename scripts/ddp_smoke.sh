#!/usr/bin/env bash
# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
#
# Two-process data-parallel fine-tuning on the CPU (DDP over gloo), started with torchrun exactly as on GPUs:
#
#   bash scripts/ddp_smoke.sh MODEL TRAIN_DATA OUTPUT_DIR [extra finetune options...]
#
# MODEL is anything `fireredasr-hf finetune --model` accepts, TRAIN_DATA a Kaldi directory. It runs with $PYTHON,
# else the repository's .venv/bin/python, else python3. Each process trains on
# its half of every global batch (2 utterances each); the gradients are averaged over gloo. On GPUs drop --use-cpu
# and set --nproc_per_node to the number of GPUs.
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 MODEL TRAIN_DATA OUTPUT_DIR [finetune options...]" >&2
    exit 2
fi
model=$1 train_data=$2 output_dir=$3
shift 3
# The project's interpreter: $PYTHON, else the developer install's .venv (scripts/install.sh), else python3.
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n "${PYTHON:-}" ]]; then
    python=$PYTHON
elif [[ -x "$root/.venv/bin/python" ]]; then
    python=$root/.venv/bin/python
else
    python=$(command -v python3 || command -v python)
fi
# One thread per process: two processes already use both cores.
OMP_NUM_THREADS=1 "$python" -m torch.distributed.run --nproc_per_node 2 --master_addr 127.0.0.1 --master_port "${MASTER_PORT:-29517}" \
    -m fireredasr_hf.finetune \
    --model "$model" --train-data "$train_data" --output-dir "$output_dir" \
    --use-cpu --max-steps 2 --per-device-train-batch-size 2 --learning-rate 1e-4 --logging-steps 1 --save-steps 1000 \
    "$@"
