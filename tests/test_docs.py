"""The code blocks of README.md and docs/*.md marked `<!-- runnable -->` run as written.

Each marked block runs in a fresh process, as a reader would paste it: bash blocks with `bash -e` and the project's
`fireredasr-hf`, `python` and `hf` first on PATH; python blocks with the project's interpreter. The working folder
holds the names the docs use, backed by the tiny fixture models (see README.md, "Development"):

    fireredasr-aed-l-hf/ fireredasr-llm-l-hf/          converted tiny AED and LLM
    FireRedASR-AED-L/ FireRedASR-LLM-L/                the originals (for `convert`)
    FireRedTeam/FireRedASR-AED-L/ FireRedTeam/FireRedASR-LLM-L/
                                                       the originals again, under their Hub ids: a Hub id that names
                                                       an existing folder is read from it, so nothing is downloaded
    speech.wav a.wav b.flac meeting.mp3 recordings/    audio (16 kHz; meeting.mp3 is 20 s)
    data/train data/dev data/test                      Kaldi directories (wav.scp + text)

Slow (every block starts Python and loads a model: 11 blocks took 25 minutes on the shared 2-core machine at load
average 15, a few minutes when it is idle); run with `python -m pytest -m slow tests/test_docs.py` (.ci/run does).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^```(\w+)\s*$")


def runnable_blocks(path: Path) -> list[tuple[int, str, str]]:
    """(line number, language, code) of every fenced block that directly follows the marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        match = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        if match is None:
            raise AssertionError(f"{path.name}:{index + 1}: {MARKER} must be followed by a ```bash or ```python block")
        end = next(i for i in range(index + 2, len(lines)) if lines[i].strip() == "```")
        blocks.append((index + 2, match.group(1), "\n".join(lines[index + 2 : end]) + "\n"))
    return blocks


BLOCKS = [
    pytest.param(language, code, id=f"{path.relative_to(REPO_ROOT)}:{line}")
    for path in DOCUMENTS
    for line, language, code in runnable_blocks(path)
]


def test_the_docs_mark_their_main_examples_runnable():
    documents = {param.id.split(":")[0] for param in BLOCKS}
    assert {"README.md", "docs/transcription.md", "docs/finetuning.md", "docs/model-cache.md"} <= documents
    assert all(param.values[0] in ("bash", "python") for param in BLOCKS)


def write_kaldi_dir(directory: Path, audio_dir: Path, uttids: list[str], texts: dict[str, str]) -> None:
    directory.mkdir(parents=True)
    (directory / "wav.scp").write_text("".join(f"{uttid} {audio_dir / f'{uttid}.wav'}\n" for uttid in uttids))
    (directory / "text").write_text("".join(f"{uttid} {texts[uttid]}\n" for uttid in uttids))


@pytest.fixture(scope="module")
def sandbox(fixtures_dir, tmp_path_factory) -> Path:
    """The folder with the names the docs use (each block gets a folder of links to it)."""
    from fireredasr_hf.conversion import convert_checkpoint

    root = tmp_path_factory.mktemp("docs")
    convert_checkpoint(fixtures_dir / "aed-tiny", root / "fireredasr-aed-l-hf")
    convert_checkpoint(fixtures_dir / "llm-tiny", root / "fireredasr-llm-l-hf", dtype="float32")
    (root / "FireRedTeam").mkdir()
    for name, original in (("FireRedASR-AED-L", "aed-tiny"), ("FireRedASR-LLM-L", "llm-tiny")):
        (root / name).symlink_to(fixtures_dir / original)
        (root / "FireRedTeam" / name).symlink_to(fixtures_dir / original)

    audio_dir = fixtures_dir / "audio"
    shutil.copy(audio_dir / "p04.wav", root / "speech.wav")
    shutil.copy(audio_dir / "p01.wav", root / "a.wav")
    samples, rate = soundfile.read(audio_dir / "p02.wav")
    soundfile.write(root / "b.flac", samples, rate)
    silence = np.zeros(rate, dtype=np.float32)
    clips = [soundfile.read(audio_dir / f"p{index:02d}.wav", dtype="float32")[0] for index in range(1, 8)]
    soundfile.write(root / "meeting.mp3", np.concatenate([part for clip in clips for part in (silence, clip)]), rate)
    (root / "recordings").mkdir()
    for uttid in ("p01", "p03"):
        shutil.copy(audio_dir / f"{uttid}.wav", root / "recordings")
    texts = dict(line.split(maxsplit=1) for line in (audio_dir / "text").read_text().splitlines())
    write_kaldi_dir(root / "data" / "train", audio_dir, ["p01", "p02", "p03", "p04"], texts)
    write_kaldi_dir(root / "data" / "dev", audio_dir, ["p05", "p06"], texts)
    write_kaldi_dir(root / "data" / "test", audio_dir, ["p07", "p08", "p09", "p10"], texts)
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("language", "code"), BLOCKS)
def test_runnable_block(language, code, sandbox, tmp_path):
    for entry in sandbox.iterdir():
        (tmp_path / entry.name).symlink_to(entry)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(sandbox / ".hf-home"),
        "FIREREDASR_HF_CACHE": str(sandbox / ".converted"),
        "OMP_NUM_THREADS": "1",
    }
    if language == "bash":
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        (tmp_path / "snippet.py").write_text(code)
        command = [sys.executable, "snippet.py"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"{code}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}"
