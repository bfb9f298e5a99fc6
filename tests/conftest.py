import os
from pathlib import Path

import pytest

# Tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The test models are tiny: on a 2-core machine intra-op threads cost more in synchronisation than they gain (and
# stall badly when the machine is busy). Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = Path(os.environ.get("FIREREDASR_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
# The pipeline's and the CLI's default detector (FireRedVAD) comes from the released weights in the fixtures, as a
# user points at a local copy (the Hub repository cannot be downloaded here).
if (FIXTURES_DIR / "firered-vad" / "cmvn.ark").is_file():
    os.environ.setdefault("FIREREDASR_HF_VAD_MODEL", str(FIXTURES_DIR / "firered-vad"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared fixtures (original-format tiny models, audio, goldens of the original code)."""
    if not (FIXTURES_DIR / "README.md").is_file():
        pytest.skip(f"shared fixtures not found at {FIXTURES_DIR} (set FIREREDASR_FIXTURES to their folder)")
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def converted_aed_dir(fixtures_dir, tmp_path_factory) -> Path:
    """The shared tiny original AED converted once per test session (float32)."""
    from fireredasr_hf.conversion import convert_checkpoint

    return convert_checkpoint(fixtures_dir / "aed-tiny", tmp_path_factory.mktemp("aed-tiny-hf"))


@pytest.fixture(scope="session")
def converted_llm_dir(fixtures_dir, tmp_path_factory) -> Path:
    """The shared tiny original LLM converted once per test session, in float32 (fast on CPU; LoRA merged)."""
    from fireredasr_hf.conversion import convert_checkpoint

    return convert_checkpoint(fixtures_dir / "llm-tiny", tmp_path_factory.mktemp("llm-tiny-hf"), dtype="float32")
