"""Original checkpoints are read without running code from them: only tensors and the `argparse.Namespace` that the
release pickles are allowed; anything else is refused before any of it runs."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fireredasr_hf.conversion import ConversionError, convert_checkpoint
from fireredasr_hf.conversion.common import UnsafeCheckpointError, load_original_checkpoint


class _RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_copy(fixtures_dir, tmp_path, name="model.pth.tar"):
    target = tmp_path / "original"
    shutil.copytree(fixtures_dir / "aed-tiny", target)
    marker = tmp_path / "code-ran"
    package = torch.load(target / "model.pth.tar", map_location="cpu", weights_only=False)
    package["payload"] = _RunsCode(marker)
    torch.save(package, target / name)
    return target, marker


def test_the_released_layout_loads(fixtures_dir):
    package = load_original_checkpoint(fixtures_dir / "aed-tiny" / "model.pth.tar")
    assert package["args"].d_model > 0 and package["model_state_dict"]


def test_a_checkpoint_that_would_run_code_is_refused(fixtures_dir, tmp_path):
    original, marker = _malicious_copy(fixtures_dir, tmp_path)
    with pytest.raises(UnsafeCheckpointError, match=r"Refusing to load .*model\.pth\.tar"):
        convert_checkpoint(original, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_the_force_no_weights_only_variable_does_not_reopen_the_hole(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    original, marker = _malicious_copy(fixtures_dir, tmp_path)
    with pytest.raises(UnsafeCheckpointError):
        load_original_checkpoint(original / "model.pth.tar")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", None], ids=["empty", "garbage", "truncated"])
def test_damaged_checkpoints_give_one_clear_error(fixtures_dir, tmp_path, content):
    path = tmp_path / "model.pth.tar"
    if content is None:
        data = (fixtures_dir / "aed-tiny" / "model.pth.tar").read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(ConversionError, match=str(path).replace(".", r"\.")):
        load_original_checkpoint(path)


def test_resolving_a_malicious_directory_from_the_cli_runs_no_code(fixtures_dir, tmp_path):
    original, marker = _malicious_copy(fixtures_dir, tmp_path)
    audio = fixtures_dir / "audio" / "p01.wav"
    env = {**os.environ, "FIREREDASR_HF_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "fireredasr_hf.cli", "transcribe", "--model", str(original), str(audio)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "Refusing to load" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_an_llm_asr_encoder_that_would_run_code_is_refused(fixtures_dir, tmp_path):
    original = tmp_path / "original"
    original.mkdir()
    for entry in (fixtures_dir / "llm-tiny").iterdir():
        if entry.name != "asr_encoder.pth.tar":
            (original / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    marker = tmp_path / "code-ran"
    package = load_original_checkpoint(fixtures_dir / "llm-tiny" / "asr_encoder.pth.tar")
    package["payload"] = _RunsCode(marker)
    torch.save(package, original / "asr_encoder.pth.tar")
    with pytest.raises(UnsafeCheckpointError, match=r"Refusing to load .*asr_encoder\.pth\.tar"):
        convert_checkpoint(original, tmp_path / "out", dtype="float32")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_importing_the_package_next_to_malicious_originals_runs_no_code(fixtures_dir, tmp_path):
    """Nothing is converted or unpickled at import time: not from the working directory, the converted-model cache or
    the Hugging Face cache."""
    original, marker = _malicious_copy(fixtures_dir, tmp_path)
    hf_home = tmp_path / "hf-home"
    snapshot = hf_home / "hub" / "models--someone--evil" / "snapshots" / ("0" * 40)
    shutil.copytree(original, snapshot)
    env = {**os.environ, "HF_HOME": str(hf_home), "FIREREDASR_HF_CACHE": str(original)}
    code = (
        "import fireredasr_hf, fireredasr_hf.hub, fireredasr_hf.cli, fireredasr_hf.conversion, "
        "fireredasr_hf.transcription, fireredasr_hf.pipeline_fireredasr"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=original, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_every_torch_load_goes_through_the_safe_loader():
    """The project's own code reads original checkpoints only with load_original_checkpoint (weights_only=True and
    an allow-list): no other torch.load call in the package, the conversion script and the benchmarks, and none with
    weights_only=False anywhere (scripts included)."""
    root = Path(__file__).resolve().parents[1]
    safe_loader = root / "src" / "fireredasr_hf" / "conversion" / "common.py"
    offenders = []
    for folder in ("src", "conversion", "benchmarks", "scripts"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load"):
                    continue
                unsafe = any(
                    keyword.arg == "weights_only" and ast.unparse(keyword.value) != "True" for keyword in node.keywords
                )
                if unsafe or (path != safe_loader and folder != "scripts"):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"torch.load outside load_original_checkpoint: {offenders}"
