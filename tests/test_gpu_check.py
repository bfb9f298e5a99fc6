"""benchmarks/gpu_check.sh and gpu_check.py: their logic on the CPU at tiny sizes (the GPU run itself needs a GPU)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO_ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_run_prints_every_table(fixtures_dir, capsys):
    gpu_check = load_gpu_check()
    threads = torch.get_num_threads()
    try:
        code = gpu_check.main(
            ["--device", "cpu", "--tiny", "--dtypes", "bfloat16", "--batch-sizes", "1", "2", "--seconds", "2"]
        )
    finally:
        torch.set_num_threads(threads)
    output = capsys.readouterr().out
    assert code == 0
    assert "FireRedASR-AED (" in output and "FireRedASR-LLM, 2 Qwen2 layers (" in output
    rows = [line.split() for line in output.splitlines() if line.strip().startswith("bfloat16")]
    assert [(row[0], row[1]) for row in rows] == [("bfloat16", "1"), ("bfloat16", "2")] * 2
    assert all(float(row[4]) > 0 for row in rows)  # RTF
    # The fixture models give the same transcripts in bfloat16 as in float32.
    assert "AED  bfloat16: 10/10" in output and "LLM  bfloat16: 10/10" in output


def test_budget_skips_and_lists_what_did_not_run(capsys):
    gpu_check = load_gpu_check()
    assert gpu_check.main(["--device", "cpu", "--tiny", "--budget-s", "0", "--parts", "aed"]) == 0
    output = capsys.readouterr().out
    assert "skipped (past --budget-s 0): FireRedASR-AED" in output


def test_shell_script_refuses_a_python_without_cuda(tmp_path):
    assert subprocess.run(["bash", "-n", str(REPO_ROOT / "benchmarks" / "gpu_check.sh")], check=False).returncode == 0
    if torch.cuda.is_available():
        return
    completed = subprocess.run(
        ["bash", str(REPO_ROOT / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHON": sys.executable, "GPU_CHECK_LOG": str(tmp_path / "log")},
        timeout=120,
    )
    assert completed.returncode == 2
    assert "has no CUDA-enabled torch" in completed.stderr
