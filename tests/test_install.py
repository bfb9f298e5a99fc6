"""The user's install: the wheel, installed with no extras into a clean virtual environment, transcribes; the
commands that need an extra say which.

Builds the wheel from the checkout's files (tracked or not ignored, copied to a temporary folder so the checkout
stays clean), creates a venv without access to this environment's packages, installs this environment's torch
version first (`pip install torch==X`, a local CPU wheel on the project's machines: see constraints.txt) and then
the wheel, with pip resolving the declared dependencies. Slow, mostly pip (6.6 minutes on the shared 2-core machine
at load average 14; the installs alone took 50 s when it was quieter); run with
`python -m pytest -m slow tests/test_install.py` (.ci/run does).
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXTRA_PACKAGES = ("datasets", "jiwer", "accelerate", "peft", "fastapi", "gradio", "onnx")


def run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def source_tree(destination: Path) -> Path:
    """The files of the checkout that a commit would hold (tracked, or untracked and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (e.g. an unpacked source archive)
        shutil.copytree(REPO_ROOT, destination, ignore=shutil.ignore_patterns(".venv", "build", "dist", "*.egg-info"))
        return destination
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory) -> dict:
    """A venv with the wheel and its declared dependencies only; returns paths and the environment to run it in."""
    import torch

    work = tmp_path_factory.mktemp("install")
    source = source_tree(work / "source")
    # With this environment's setuptools when it has one (no download); else in pip's isolated build environment.
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(work / "dist"), "."], cwd=source)
    (wheel,) = (work / "dist").glob("fireredasr_hf-*.whl")

    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    pip = [str(python), "-m", "pip", "install", "--progress-bar", "off", "-c", str(REPO_ROOT / "constraints.txt")]
    run([*pip, f"torch=={torch.__version__.split('+')[0]}"], env=env)
    run([*pip, str(wheel)], env=env)
    return {"python": python, "bin": env_dir / "bin", "env": env, "work": work}


def console(clean_env, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(clean_env["bin"] / "fireredasr-hf"), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env["env"],
        cwd=cwd or clean_env["work"],
        timeout=600,
    )


@pytest.mark.slow
def test_the_wheel_without_extras_transcribes_and_names_the_extras(clean_env, fixtures_dir, tmp_path):
    python, env = clean_env["python"], clean_env["env"]
    # Nothing of an extra came in, and the package is the installed one, not this checkout's.
    probe = "import importlib.util as u, fireredasr_hf; print(fireredasr_hf.__file__); "
    probe += f"print([m for m in {EXTRA_PACKAGES!r} if u.find_spec(m)])"
    lines = run([str(python), "-c", probe], env=env).stdout.splitlines()
    assert str(clean_env["bin"].parent) in lines[0] and lines[1] == "[]"

    assert console(clean_env, "--help").returncode == 0
    assert run([str(python), "-m", "fireredasr_hf", "transcribe", "--help"], env=env).stdout.startswith("usage:")

    # The main job on an original-format model: converted once into the cache, then transcribed; and subtitles,
    # which run the default detector, FireRedVAD (the fixture's ONNX exports, converted here: reading ONNX is the
    # [vad] extra's, the converted model needs nothing beyond the core).
    from fireredasr_hf.conversion import convert_checkpoint

    env["FIREREDASR_HF_VAD_MODEL"] = str(convert_checkpoint(fixtures_dir / "firered-vad", tmp_path / "vad"))
    env["FIREREDASR_HF_CACHE"] = str(tmp_path / "cache")
    audio = fixtures_dir / "audio"
    result = console(
        clean_env, "transcribe", "--model", fixtures_dir / "aed-tiny", audio / "p01.wav", audio / "p02.wav"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["p01\t今天天气很好", "p02\tTURN ON THE LIGHT"]
    result = console(
        clean_env, "transcribe", "--model", fixtures_dir / "aed-tiny", audio / "p02.wav", "--output-format", "srt",
        "-o", tmp_path / "srt",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "srt" / "p02.srt").read_text().startswith("1\n00:00:")

    # Commands that need an extra name it, in one line, with exit code 2.
    kaldi = tmp_path / "test"
    kaldi.mkdir()
    (kaldi / "wav.scp").write_text(f"p01 {audio / 'p01.wav'}\n")
    (kaldi / "text").write_text("p01 今天天气很好\n")
    expected = {
        "[data]": ["eval", "--model", fixtures_dir / "aed-tiny", "--data", kaldi],
        "[train]": ["finetune", "--model", fixtures_dir / "aed-tiny", "--train-data", kaldi, "--output-dir", tmp_path],
    }
    for extra, args in expected.items():
        result = console(clean_env, *args)
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.strip().splitlines()[-1].endswith(f"pip install 'fireredasr-hf{extra}'"), result.stderr
        assert "Traceback" not in result.stderr
    result = console(clean_env, "convert", fixtures_dir / "llm-tiny", tmp_path / "llm", "--keep-lora")
    assert result.returncode == 2 and "pip install 'fireredasr-hf[train]'" in result.stderr, result.stderr[-3000:]
