"""Original checkpoints are read without running code from them: only tensors and the `argparse.Namespace` that the
release pickles are allowed; anything else is refused before any of it runs."""

import os
import shutil
import subprocess
import sys

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
