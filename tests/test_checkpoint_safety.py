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
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=original, env=env, capture_output=True, text=True, check=False
    )
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


# --- FireRedPunc: a whole BertModel pickled in its arguments ------------------------------------------------------


def _with_pickle(path, data: bytes) -> None:
    """A torch zip checkpoint whose pickle is `data` (hand-written opcodes)."""
    import zipfile

    torch.save({}, path)
    with zipfile.ZipFile(path) as archive:
        records = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info, content in records:
            archive.writestr(info, data if info.filename.endswith("/data.pkl") else content)


def _text(value: str) -> bytes:
    return b"X" + len(value.encode()).to_bytes(4, "little") + value.encode()


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _package_with(value: bytes) -> bytes:
    """The pickle of `{"args": argparse.Namespace(), "x": <value>}`; `value` are the opcodes that push it."""
    return b"\x80\x02}(" + _text("args") + _global("argparse", "Namespace") + b")\x81" + _text("x") + value + b"u."


def test_fireredpunc_with_its_bert_model_pickled_converts(tmp_path):
    """The release's training saves `args.bert`, the BertModel itself: converting reads it into inert placeholders
    (none of its classes' code runs) and gives the model of the same directory without it."""
    from conftest import build_original_punc

    from fireredasr_hf.conversion.punc import PICKLED_BERT_GLOBALS
    from fireredasr_hf.punctuation import FireRedPunctuator

    pickled = build_original_punc(tmp_path / "pickled", pickle_bert=True)
    plain = build_original_punc(tmp_path / "plain")
    names = set(torch.serialization.get_unsafe_globals_in_checkpoint(pickled / "model.pth.tar"))
    assert "transformers.models.bert.modeling_bert.BertModel" in names
    assert names - {"argparse.Namespace"} <= PICKLED_BERT_GLOBALS
    with pytest.raises(UnsafeCheckpointError, match="GLOBAL transformers.models.bert"):
        load_original_checkpoint(pickled / "model.pth.tar")  # other formats do not allow them

    package = load_original_checkpoint(pickled / "model.pth.tar", inert_globals=PICKLED_BERT_GLOBALS)
    bert = package["args"].bert
    assert type(bert).pickled_name == "transformers.models.bert.modeling_bert.BertModel"
    assert not isinstance(bert, torch.nn.Module) and not hasattr(bert, "forward")
    with pytest.raises(AttributeError):
        bert.config = None  # no attributes beyond the state it was given
    assert set(bert.pickled_state["_modules"]) == {"embeddings", "encoder", "pooler"}

    converted = convert_checkpoint(pickled, tmp_path / "converted")
    reference = convert_checkpoint(plain, tmp_path / "reference")
    text = "今天天气很好 hello world 我想去北京"
    punctuator, expected = FireRedPunctuator.from_pretrained(converted), FireRedPunctuator.from_pretrained(reference)
    tokens = punctuator.tokenize(text)
    assert torch.equal(punctuator.logits([tokens])[0], expected.logits([tokens])[0])


def test_fireredpunc_pickled_by_transformers_4_converts(tmp_path, monkeypatch):
    """transformers 4.41 to 4.5x pickled BERT's attention as `BertSdpaSelfAttention`, a class transformers 5 lacks:
    the name is read, never looked up."""
    from conftest import build_original_punc
    from transformers.models.bert import modeling_bert

    class BertSdpaSelfAttention(modeling_bert.BertSelfAttention):
        pass

    BertSdpaSelfAttention.__module__ = modeling_bert.__name__
    BertSdpaSelfAttention.__qualname__ = "BertSdpaSelfAttention"
    monkeypatch.setattr(modeling_bert, "BertSdpaSelfAttention", BertSdpaSelfAttention, raising=False)
    original = build_original_punc(tmp_path / "original")
    package = torch.load(original / "model.pth.tar", weights_only=False)
    package["args"].bert = modeling_bert.BertModel.from_pretrained(original / "chinese-lert-base")
    for layer in package["args"].bert.encoder.layer:
        layer.attention.self.__class__ = BertSdpaSelfAttention
    torch.save(package, original / "model.pth.tar")
    monkeypatch.undo()
    assert not hasattr(modeling_bert, "BertSdpaSelfAttention")
    assert "transformers.models.bert.modeling_bert.BertSdpaSelfAttention" in (
        torch.serialization.get_unsafe_globals_in_checkpoint(original / "model.pth.tar")
    )
    assert (convert_checkpoint(original, tmp_path / "converted") / "config.json").is_file()


@pytest.mark.parametrize(
    "value",
    [
        _global("torch.nn.modules.module", "torch.load") + _text("x") + b"\x85R",  # torch.load through attributes
        _global("transformers.models.bert.modeling_bert", "torch.load") + _text("x") + b"\x85R",
        _global("transformers.models.bert.modeling_bert", "BertModel.__init__") + b")R",
        _global("transformers.models.bert", "modeling_bert") + b")R",  # a prefix of the allowed names
        _global("os", "system") + _text("touch code-ran") + b"\x85R",
    ],
    ids=["module-attribute", "attribute-of-allowed-module", "method-of-allowed-class", "prefix", "os.system"],
)
def test_fireredpunc_allows_no_other_global(tmp_path, value, monkeypatch):
    from fireredasr_hf.conversion.punc import PICKLED_BERT_GLOBALS

    monkeypatch.chdir(tmp_path)
    _with_pickle(tmp_path / "model.pth.tar", _package_with(value))
    with pytest.raises(UnsafeCheckpointError, match="Refusing to load"):
        load_original_checkpoint(tmp_path / "model.pth.tar", inert_globals=PICKLED_BERT_GLOBALS)
    assert not (tmp_path / "code-ran").exists()


def test_allowed_bert_names_construct_nothing(tmp_path):
    """An allowed class called with file-chosen arguments (here a 10^6 x 10^6 Linear, 4 TB) is a placeholder: its
    constructor never runs."""
    from fireredasr_hf.conversion.punc import PICKLED_BERT_GLOBALS

    million = b"J\x40\x42\x0f\x00"
    _with_pickle(tmp_path / "model.pth.tar", _package_with(_global("torch.nn.modules.linear", "Linear") + million * 2 +
                                                           b"\x86R"))  # fmt: skip
    package = load_original_checkpoint(tmp_path / "model.pth.tar", inert_globals=PICKLED_BERT_GLOBALS)
    assert type(package["x"]).pickled_name == "torch.nn.modules.linear.Linear"
    assert not isinstance(package["x"], torch.nn.Module)
    _with_pickle(tmp_path / "model.pth.tar", _package_with(_global("torch._C._nn", "gelu") + _text("x") + b"\x85R"))
    assert (
        type(load_original_checkpoint(tmp_path / "model.pth.tar", inert_globals=PICKLED_BERT_GLOBALS)["x"]).__name__
        == "gelu"
    )


def test_fireredpunc_with_code_inside_its_bert_model_is_refused(tmp_path):
    from conftest import build_original_punc

    original = build_original_punc(tmp_path / "original", pickle_bert=True)
    package = torch.load(original / "model.pth.tar", weights_only=False)
    package["args"].bert.encoder.payload = _RunsCode(tmp_path / "code-ran")
    torch.save(package, original / "model.pth.tar")
    with pytest.raises(UnsafeCheckpointError, match="GLOBAL posix.system whose module posix is blocked"):
        convert_checkpoint(original, tmp_path / "out")
    assert not (tmp_path / "code-ran").exists()
