"""Damaged or incomplete original checkpoints are refused with one clear error that names the file, and a failed
conversion leaves nothing behind (the converter writes its output folder all at once)."""

import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fireredasr_hf.conversion import ConversionError, convert_checkpoint, detect_variant
from fireredasr_hf.conversion.common import MAX_ABS_WEIGHT, load_original_checkpoint
from fireredasr_hf.conversion.llm import BASE_LLM_DIR


def linked_copy(source: Path, target: Path, copies: tuple[str, ...] = ()) -> Path:
    """A copy of an original folder made of symbolic links, except `copies` (real copies, to be edited)."""
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name in copies:
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, target / entry.name)
        else:
            (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return target


def edit_checkpoint(path: Path, edit) -> None:
    package = load_original_checkpoint(path)
    package["model_state_dict"] = {key: tensor.clone() for key, tensor in package["model_state_dict"].items()}
    edit(package["model_state_dict"])
    torch.save(package, path)


def first_matrix(state_dict: dict) -> str:
    return next(key for key, tensor in state_dict.items() if tensor.ndim == 2)


def set_value(value):
    def edit(state_dict):
        state_dict[first_matrix(state_dict)].view(-1)[5] = value

    return edit


@pytest.fixture
def aed_copy(fixtures_dir, tmp_path) -> Path:
    return linked_copy(fixtures_dir / "aed-tiny", tmp_path / "original", copies=("model.pth.tar",))


def assert_refused(original: Path, output: Path, match: str, **kwargs) -> None:
    with pytest.raises(ConversionError, match=match):
        convert_checkpoint(original, output, **kwargs)
    assert not output.exists(), "a failed conversion left an output folder"
    assert not list(output.parent.glob(".partial-*")), "a failed conversion left a temporary folder"


@pytest.mark.parametrize(
    ("value", "match"),
    [(float("nan"), "NaN or infinite"), (float("inf"), "NaN or infinite"), (1e30, "magnitude 1e\\+30")],
    ids=["nan", "inf", "exponent-flip"],
)
def test_non_finite_or_huge_weights_are_refused(aed_copy, tmp_path, value, match):
    edit_checkpoint(aed_copy / "model.pth.tar", set_value(value))
    assert_refused(aed_copy, tmp_path / "out", rf"`encoder\.\S+` in .*model\.pth\.tar holds .*{match}")


def test_the_magnitude_bound_leaves_room_for_real_weights():
    # Trained weights are O(1); the bound only catches damage such as a flipped top exponent bit (x 2**128).
    assert MAX_ABS_WEIGHT >= 1e5


def flip_bit_in_first_large_record(path: Path, bit: int) -> None:
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 4096)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length + 400 + bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("bit", [3, 30], ids=["mantissa", "exponent"])
def test_a_flipped_bit_in_the_file_is_caught_by_its_checksum(aed_copy, tmp_path, bit):
    flip_bit_in_first_large_record(aed_copy / "model.pth.tar", bit)
    assert_refused(aed_copy, tmp_path / "out", r"model\.pth\.tar is damaged .*CRC")


def test_a_half_precision_checkpoint_is_refused_by_name(aed_copy, tmp_path):
    edit_checkpoint(aed_copy / "model.pth.tar", lambda sd: sd.update({k: v.half() for k, v in sd.items()}))
    assert_refused(aed_copy, tmp_path / "out", r"model\.pth\.tar stores float16 weights.*float32")


def test_garbage_is_not_taken_for_an_unsafe_pickle(aed_copy, tmp_path):
    (aed_copy / "model.pth.tar").write_bytes(bytes(range(256)) * 20)
    assert_refused(aed_copy, tmp_path / "out", r"model\.pth\.tar is not a PyTorch checkpoint")


def test_non_utf8_dict_and_empty_sentencepiece_model_are_named(fixtures_dir, tmp_path):
    original = linked_copy(fixtures_dir / "aed-tiny", tmp_path / "dict", copies=("dict.txt",))
    (original / "dict.txt").write_bytes((original / "dict.txt").read_bytes() + b"\xff\xfe 142\n")
    assert_refused(original, tmp_path / "out1", r"dict\.txt.*UTF-8")
    original = linked_copy(fixtures_dir / "aed-tiny", tmp_path / "spm", copies=("train_bpe1000.model",))
    (original / "train_bpe1000.model").write_bytes(b"")
    assert_refused(original, tmp_path / "out2", r"train_bpe1000\.model.*empty")


def test_an_llm_folder_without_asr_encoder_gets_its_own_message(fixtures_dir, tmp_path):
    with_base = linked_copy(fixtures_dir / "llm-tiny", tmp_path / "with-base")
    (with_base / "asr_encoder.pth.tar").unlink()
    with pytest.raises(ConversionError, match=r"looks like an original FireRedASR-LLM .*Qwen2.*lacks asr_encoder"):
        detect_variant(with_base)
    as_released = linked_copy(fixtures_dir / "llm-tiny", tmp_path / "as-released")
    for name in ("asr_encoder.pth.tar", BASE_LLM_DIR):
        (as_released / name).unlink()
    assert_refused(as_released, tmp_path / "out", r"FireRedASR-LLM .*speech adapter.*lacks asr_encoder\.pth\.tar")


def llm_with_edited_base(fixtures_dir, tmp_path, edit) -> Path:
    original = linked_copy(fixtures_dir / "llm-tiny", tmp_path / "original")
    base = original / BASE_LLM_DIR
    base.unlink()
    linked_copy(fixtures_dir / "llm-tiny" / BASE_LLM_DIR, base, copies=("model.safetensors",))
    edit(base)
    return original


def test_a_base_llm_without_tokenizer_is_refused(fixtures_dir, tmp_path):
    def drop_tokenizer(base):
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
            (base / name).unlink(missing_ok=True)

    original = llm_with_edited_base(fixtures_dir, tmp_path, drop_tokenizer)
    assert_refused(original, tmp_path / "out", r"Qwen2-7B-Instruct holds no tokenizer", dtype="float32")


def test_a_tokenizer_that_loses_text_is_refused(fixtures_dir, tmp_path):
    def other_tokenizer(base):
        # A tokenizer.json with its vocabulary gone: text comes out as nothing (every transcript would be empty).
        import json

        spec = json.loads((base / "tokenizer.json").read_text())
        spec["model"]["vocab"] = {"a": 0, "b": 1}
        spec["model"]["merges"] = []
        (base / "tokenizer.json").unlink()
        (base / "tokenizer.json").write_text(json.dumps(spec))

    original = llm_with_edited_base(fixtures_dir, tmp_path, other_tokenizer)
    assert_refused(original, tmp_path / "out", r"The tokenizer in .*(cannot be loaded|turns '今天)", dtype="float32")


def test_nan_in_the_base_llm_is_refused(fixtures_dir, tmp_path):
    def poison(base):
        weights = load_file(base / "model.safetensors")
        key = next(k for k, v in weights.items() if v.ndim == 2)
        weights[key] = weights[key].clone()
        weights[key].view(-1)[3] = float("nan")
        save_file(weights, base / "model.safetensors", metadata={"format": "pt"})

    original = llm_with_edited_base(fixtures_dir, tmp_path, poison)
    assert_refused(original, tmp_path / "out", r"Qwen2-7B-Instruct.* holds 1 NaN", dtype="float32")


def test_output_folder_rules(fixtures_dir, tmp_path):
    source = fixtures_dir / "aed-tiny"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConversionError, match=r"foreign is not empty .*notes\.txt"):
        convert_checkpoint(source, foreign)
    assert (foreign / "notes.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConversionError, match="exists and is not a folder"):
        convert_checkpoint(source, tmp_path / "a-file")
    # An earlier conversion is replaced (only once the new one is complete), an empty folder is filled.
    converted = convert_checkpoint(source, tmp_path / "converted")
    (converted / "stale.safetensors").write_bytes(b"old")
    convert_checkpoint(source, converted)
    assert not (converted / "stale.safetensors").exists() and (converted / "config.json").is_file()
    (tmp_path / "empty").mkdir()
    assert (convert_checkpoint(source, tmp_path / "empty") / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".partial-*"))
