# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""What the original FireRedASR checkpoints look like, and how their encoder maps onto ours.

This package is the only place that knows the original layout: file names, pickled `argparse.Namespace` arguments,
key names, the LayerNorm stored as `batch_norm`, the `pe` buffers. The model code uses descriptive names; the
rename tables below are the single record of the correspondence.
"""

import argparse
import functools
import json
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ..configuration_fireredasr import FireRedEncoderConfig
from ..file_modes import make_readable
from ..modeling_fireredasr_encoder import sinusoidal_embeddings, sinusoidal_inverse_frequencies


class ConversionError(ValueError):
    """An original checkpoint that cannot be converted faithfully (missing, unexpected or malformed tensors)."""


# (original regex, our name); applied to keys with the `encoder.` prefix removed. The order matters only where
# patterns overlap (none do).
ENCODER_KEY_RENAMES = [
    (r"^input_preprocessor\.conv\.0\.", "subsampling.conv1."),
    (r"^input_preprocessor\.conv\.2\.", "subsampling.conv2."),
    (r"^input_preprocessor\.out\.", "subsampling.out_proj."),
    (r"^layer_stack\.(\d+)\.ffn([12])\.net\.0\.", r"layers.\1.feed_forward\2.layer_norm."),
    (r"^layer_stack\.(\d+)\.ffn([12])\.net\.1\.", r"layers.\1.feed_forward\2.linear1."),
    (r"^layer_stack\.(\d+)\.ffn([12])\.net\.4\.", r"layers.\1.feed_forward\2.linear2."),
    (r"^layer_stack\.(\d+)\.mhsa\.layer_norm_q\.", r"layers.\1.self_attn.query_norm."),
    (r"^layer_stack\.(\d+)\.mhsa\.layer_norm_k\.", r"layers.\1.self_attn.key_norm."),
    (r"^layer_stack\.(\d+)\.mhsa\.layer_norm_v\.", r"layers.\1.self_attn.value_norm."),
    (r"^layer_stack\.(\d+)\.mhsa\.w_qs\.", r"layers.\1.self_attn.q_proj."),
    (r"^layer_stack\.(\d+)\.mhsa\.w_ks\.", r"layers.\1.self_attn.k_proj."),
    (r"^layer_stack\.(\d+)\.mhsa\.w_vs\.", r"layers.\1.self_attn.v_proj."),
    (r"^layer_stack\.(\d+)\.mhsa\.fc\.", r"layers.\1.self_attn.o_proj."),
    (r"^layer_stack\.(\d+)\.mhsa\.linear_pos\.", r"layers.\1.self_attn.relative_k_proj."),
    (r"^layer_stack\.(\d+)\.mhsa\.pos_bias_u$", r"layers.\1.self_attn.bias_u"),
    (r"^layer_stack\.(\d+)\.mhsa\.pos_bias_v$", r"layers.\1.self_attn.bias_v"),
    (r"^layer_stack\.(\d+)\.conv\.pre_layer_norm\.", r"layers.\1.conv.layer_norm."),
    (r"^layer_stack\.(\d+)\.conv\.pointwise_conv1\.", r"layers.\1.conv.pointwise_conv1."),
    (r"^layer_stack\.(\d+)\.conv\.depthwise_conv\.", r"layers.\1.conv.depthwise_conv."),
    # The release names this LayerNorm `batch_norm`.
    (r"^layer_stack\.(\d+)\.conv\.batch_norm\.", r"layers.\1.conv.depthwise_layer_norm."),
    (r"^layer_stack\.(\d+)\.conv\.pointwise_conv2\.", r"layers.\1.conv.pointwise_conv2."),
    (r"^layer_stack\.(\d+)\.layer_norm\.", r"layers.\1.norm_out."),
]
# The relative-position table is recomputed on the fly for any length (checked against the stored one).
ENCODER_DROPPED_KEYS = {"positional_encoding.pe"}


# What the released `*.pth.tar` files pickle besides tensors: an `argparse.Namespace` of model arguments (whose
# values are plain Python objects). Anything else in a checkpoint is refused before any of it runs.
SAFE_CHECKPOINT_GLOBALS = [argparse.Namespace]


class UnsafeCheckpointError(ConversionError):
    """A checkpoint that would need arbitrary code to be unpickled (not a released FireRedASR file)."""


# The first bytes of a checkpoint in torch's legacy (non-zip) format: a pickle (protocol 2) of its magic number.
LEGACY_CHECKPOINT_PREFIX = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
# Largest absolute weight a trained FireRedASR (or Qwen2) tensor can plausibly hold. Weights are O(1); a value above
# this is damage, typically a flipped high exponent bit (x 2**128) or garbage bytes read as floats.
MAX_ABS_WEIGHT = 1e6


class InertObject:
    """
    What an object of a class (or a reference to a function) named in `load_original_checkpoint`'s `inert_globals`
    is read as: a placeholder that runs nothing. The unpickler creates it with this `__new__` and `__init__` (its
    arguments are dropped) and hands it its pickled state through this `__setstate__`, which keeps the state as one
    attribute: no `__dict__` (`__slots__`), so the file cannot set attributes (nor shadow a method) on it. The class
    the file names is never imported, looked up or called, so whether it exists (transformers 5 lacks classes that
    4.x pickled) and what its constructor or `__setstate__` would do does not matter.
    """

    __slots__ = ("pickled_state",)
    pickled_name = ""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        object.__setattr__(self, "pickled_state", state)

    def __repr__(self) -> str:
        return f"<{type(self).pickled_name} (not loaded)>"


@functools.cache
def _inert_class(full_name: str) -> type:
    return type(full_name.rpartition(".")[2], (InertObject,), {"__slots__": (), "pickled_name": full_name})


def _unpickler_reason(error: Exception) -> str:
    """What torch's weights-only unpickler refused (e.g. the global it was asked for), from its long message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or line.startswith(("WeightsUnpickler error:", "Trying to", "Can only")):
            return line.removeprefix("WeightsUnpickler error: ").split(". Please use")[0]
    return lines[0] if lines else type(error).__name__


def load_original_checkpoint(
    path: str | Path, *, inert_globals: Collection[str] = (), verify_checksums: bool = True
) -> dict:
    """
    Load an original `*.pth.tar` package (`{"args": argparse.Namespace, "model_state_dict": ...}`).

    Loaded with `torch.load(weights_only=True)` and an allow-list of the one class the release pickles
    (`argparse.Namespace`): a file that asks pickle for anything else is refused with `UnsafeCheckpointError` and
    nothing of it runs. Tensors are memory-mapped, so loading does not copy the weights into memory. With
    `verify_checksums`, the CRC-32 that torch's zip format stores for every record is checked (one read of the
    file), so that bytes damaged since the file was written (a flipped bit, a bad copy) are refused.

    `inert_globals`: exact `module.name` paths of classes or functions that one format's files pickle but the
    converter does not need (FireRedPunc's `args.bert`, a whole BertModel: see `conversion.punc`). They are read as
    `InertObject` placeholders: torch's unpickler matches a pickled global against these strings as a whole (no
    prefix, no attribute traversal, so `torch.nn.modules.module.torch.load` matches nothing), and what it gets for
    one is a placeholder class, not the named object. Allowing them therefore lets no file-controlled code run: the
    pickle can only create placeholders and give them state, besides the tensors and containers torch allows.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"Original checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise ConversionError(f"{path} is empty (0 bytes): download or copy the checkpoint again.")
    is_zip = zipfile.is_zipfile(path)
    if not is_zip:
        with open(path, "rb") as file:
            if not file.read(len(LEGACY_CHECKPOINT_PREFIX)) == LEGACY_CHECKPOINT_PREFIX:
                raise ConversionError(
                    f"{path} is not a PyTorch checkpoint (neither torch's zip format nor its legacy format): "
                    "download or copy the checkpoint again."
                )
    allowed = [*SAFE_CHECKPOINT_GLOBALS, *((_inert_class(name), name) for name in sorted(inert_globals))]
    with torch.serialization.safe_globals(allowed):
        try:
            try:
                package = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
            except RuntimeError as error:
                if "mmap" not in str(error) and "zip" not in str(error).lower():
                    raise
                # Legacy (non-zip) serialisation cannot be memory-mapped.
                package = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            allowed_text = (
                "tensors, an argparse.Namespace and the classes its format pickles"
                if inert_globals
                else "tensors and an argparse.Namespace"
            )
            raise UnsafeCheckpointError(
                f"Refusing to load {path}: it is not a plain FireRedASR checkpoint (unpickling it would need "
                f"objects other than {allowed_text}, which could run code). torch says: {_unpickler_reason(error)}"
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as error:
            raise ConversionError(
                f"{path} is not a readable PyTorch checkpoint (truncated or damaged?): "
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            ) from None
    if not isinstance(package, dict) or not isinstance(package.get("args"), argparse.Namespace):
        raise ConversionError(f"{path} is not an original FireRedASR checkpoint (no pickled `args` Namespace).")
    if verify_checksums and is_zip:
        verify_zip_checksums(path)
    return package


def verify_zip_checksums(path: Path) -> None:
    """Check the CRC-32 of every record of a torch zip checkpoint (records written without one are skipped)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0 and info.file_size:
                    continue  # saved with torch.serialization.config.save.compute_crc32 = False
                with archive.open(info) as member:
                    while member.read(1 << 24):
                        pass
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ConversionError(
            f"{path} is damaged ({error}): its bytes changed after it was written (a flipped bit, an incomplete "
            "copy or download). Download or copy the checkpoint again."
        ) from None


def check_float32_checkpoint(state_dict: dict, path: Path) -> None:
    """The released checkpoints store float32 weights; a half-precision copy is refused with a clear message."""
    dtypes = {tensor.dtype for tensor in state_dict.values() if tensor.is_floating_point()}
    if dtypes and dtypes != {torch.float32}:
        names = ", ".join(sorted(str(dtype).removeprefix("torch.") for dtype in dtypes))
        raise ConversionError(
            f"{path} stores {names} weights, but the released FireRedASR checkpoints are float32 and the converter "
            "checks them as such. Convert the original float32 file; choose the converted precision with `dtype` "
            "(--dtype)."
        )


def check_weight_values(name: str, tensor: torch.Tensor, source: str | Path) -> None:
    """Refuse NaN, infinite and implausibly large weights (damaged files, e.g. a flipped high exponent bit)."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        count = int((~finite).sum())
        raise ConversionError(
            f"`{name}` in {source} holds {count} NaN or infinite value(s): the file is damaged (or the model "
            "diverged in training). Download or copy it again."
        )
    largest = float(tensor.abs().max())
    if largest > MAX_ABS_WEIGHT:
        raise ConversionError(
            f"`{name}` in {source} holds a weight of magnitude {largest:.3g} (trained weights stay far below "
            f"{MAX_ABS_WEIGHT:.0e}): the file is damaged, e.g. a flipped bit. Download or copy it again."
        )


def required_arg(args: argparse.Namespace, name: str, source: str):
    if not hasattr(args, name):
        raise ConversionError(f"The checkpoint arguments in {source} lack `{name}`.")
    return getattr(args, name)


def encoder_config_from_args(args: argparse.Namespace, source: str) -> FireRedEncoderConfig:
    d_model = required_arg(args, "d_model", source)
    return FireRedEncoderConfig(
        num_mel_bins=required_arg(args, "idim", source),
        hidden_size=d_model,
        num_hidden_layers=required_arg(args, "n_layers_enc", source),
        num_attention_heads=required_arg(args, "n_head", source),
        # The release hard-codes the feed-forward width (its `d_inner` argument is not read).
        intermediate_size=4 * d_model,
        conv_kernel_size=required_arg(args, "kernel_size", source),
        dropout=getattr(args, "residual_dropout", 0.1),
        input_dropout=getattr(args, "dropout_rate", 0.1),
    )


def rename_keys(keys, renames, dropped, component: str) -> dict[str, str | None]:
    """Map every original key to our name (None = deliberately dropped); any other key is an error."""
    mapping = {}
    for key in keys:
        if key in dropped:
            mapping[key] = None
            continue
        for pattern, replacement in renames:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                mapping[key] = new_key
                break
        else:
            raise ConversionError(f"Unexpected tensor in the original {component}: `{key}`.")
    return mapping


def convert_encoder_state_dict(state_dict: dict, prefix: str = "encoder.") -> dict[str, torch.Tensor]:
    """The encoder tensors of an original state dict under our names (without a prefix)."""
    encoder_keys = [key[len(prefix) :] for key in state_dict if key.startswith(prefix)]
    mapping = rename_keys(encoder_keys, ENCODER_KEY_RENAMES, ENCODER_DROPPED_KEYS, "encoder")
    stored_table = state_dict.get(prefix + "positional_encoding.pe")
    if stored_table is not None:
        check_relative_position_table(stored_table)
    return {new: state_dict[prefix + old] for old, new in mapping.items() if new is not None}


def check_relative_position_table(stored_table: torch.Tensor, rows_to_check: int = 64) -> None:
    """The stored (1, 2 * 5000 - 1, d) table must equal the one the encoder computes on the fly."""
    center = (stored_table.shape[1] - 1) // 2
    hidden_size = stored_table.shape[-1]
    positions = torch.arange(rows_to_check - 1, -rows_to_check, -1)
    computed = sinusoidal_embeddings(positions, sinusoidal_inverse_frequencies(hidden_size))
    stored = stored_table[0, center - rows_to_check + 1 : center + rows_to_check].float()
    error = (computed - stored).abs().max().item()
    # float32 sines computed by other code (and other CPUs' vector math) differ by a few ulps (1.9e-6 seen); a table
    # of another kind differs by order 1.
    if error > 1e-4:
        raise ConversionError(
            f"The checkpoint's relative position table differs from the standard sinusoid (max error {error:.2e}); "
            "this converter assumes the release's table."
        )


def check_all_used(expected: set[str], provided: set[str], component: str) -> None:
    missing = sorted(expected - provided)
    unexpected = sorted(provided - expected)
    if missing:
        raise ConversionError(f"The original {component} lacks tensors: {', '.join(missing[:10])}")
    if unexpected:
        raise ConversionError(f"Unexpected tensors for the {component}: {', '.join(unexpected[:10])}")


def save_remote_code(model, config, processor, output_dir: Path) -> None:
    """
    Make `output_dir` loadable where fireredasr-hf is not installed: `auto_map` entries in `config` for the model,
    config, processor and feature extractor, the speech-recognition pipeline declaration, and the Python files they
    need. Call it before `config` and the processor are saved.
    """
    from transformers.dynamic_module_utils import custom_object_save

    config.register_for_auto_class()
    model.register_for_auto_class("AutoModelForSpeechSeq2Seq")
    processor.register_for_auto_class()
    processor.feature_extractor.register_for_auto_class()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    save_pipeline_code(config, output_dir)
    custom_object_save(model, output_dir, config=config)


def save_pipeline_code(config, output_dir: Path) -> None:
    """
    Declare `FireRedAsrPipeline` as the directory's speech-recognition pipeline and copy its code
    (`pipeline_fireredasr.py` with the `audio.py` and `vad.py` it imports), so that
    `pipeline("automatic-speech-recognition", model=DIR, trust_remote_code=True)` builds it where fireredasr-hf is not
    installed. Call it before the config is saved: the declaration is `config.custom_pipelines`.
    """
    from transformers.dynamic_module_utils import custom_object_save

    from ..pipeline_fireredasr import FireRedAsrPipeline

    config.custom_pipelines = {
        "automatic-speech-recognition": {
            "impl": f"{FireRedAsrPipeline.__module__.rsplit('.', 1)[-1]}.{FireRedAsrPipeline.__name__}",
            "pt": ["AutoModelForSpeechSeq2Seq"],
            "type": "audio",
        }
    }
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    custom_object_save(FireRedAsrPipeline, output_dir)


# Temporary folders next to an output folder being written; anything with this prefix is unfinished work.
PARTIAL_PREFIX = ".partial-"


# Model types of the folders the converters write (FireRedPunc's is a stock BERT, told apart by its model card).
CONVERTED_MODEL_TYPES = ("fireredasr_aed", "fireredasr_llm", "fireredvad")


def is_converted_dir(path: Path) -> bool:
    """Whether `path` holds a conversion written by this package: a config.json (in it, or in a sub-folder for
    FireRedVAD's several models) naming one of its model types, or FireRedPunc's model card."""
    path = Path(path)
    for config_file in [path / "config.json", *path.glob("*/config.json")]:
        try:
            if json.loads(config_file.read_text(encoding="utf-8")).get("model_type") in CONVERTED_MODEL_TYPES:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    try:
        return "# FireRedPunc (converted)" in (path / "README.md").read_text(encoding="utf-8")
    except OSError:
        return False


@contextmanager
def atomic_output_dir(output_dir: str | Path) -> Iterator[Path]:
    """
    Write a folder all at once: yields a temporary sibling of `output_dir` to fill; when the block succeeds its files
    are flushed to disk and it is renamed to `output_dir`, when it fails it is removed. A crash leaves at most a
    `.partial-*` sibling, never a half-written `output_dir`.

    `output_dir` may be missing, an empty folder or an earlier conversion (replaced once the new one is complete);
    a folder holding anything else is refused, so that no file of the user is overwritten or mixed in.
    """
    output_dir = Path(output_dir).absolute()
    if output_dir.exists() and not output_dir.is_dir():
        raise ConversionError(f"The output {output_dir} exists and is not a folder: choose another output folder.")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not is_converted_dir(output_dir):
        found = ", ".join(sorted(entry.name for entry in output_dir.iterdir())[:10])
        raise ConversionError(
            f"The output folder {output_dir} is not empty and holds no earlier conversion (found: {found}): choose "
            "a new or empty folder, so that no file in it is overwritten."
        )
    try:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{output_dir.name}-", dir=output_dir.parent))
    except OSError as error:
        raise ConversionError(f"Cannot write the output folder {output_dir}: {error}") from None
    try:
        yield work_dir
        make_readable(work_dir)  # mkdtemp makes a private folder, safetensors private files
        sync_tree(work_dir)
        if output_dir.is_dir():
            previous = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{output_dir.name}-old-", dir=output_dir.parent))
            output_dir.rename(previous / "model")
            work_dir.rename(output_dir)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            work_dir.rename(output_dir)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise


def sync_tree(directory: Path) -> None:
    """Flush the files of `directory` to disk before a rename publishes them (a crash must not leave empty files)."""
    for file in Path(directory).rglob("*"):
        if file.is_file() and not file.is_symlink():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    if hasattr(os, "O_DIRECTORY"):
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
