# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""What the original FireRedASR checkpoints look like, and how their encoder maps onto ours.

This package is the only place that knows the original layout: file names, pickled `argparse.Namespace` arguments,
key names, the LayerNorm stored as `batch_norm`, the `pe` buffers. The model code uses descriptive names; the
rename tables below are the single record of the correspondence.
"""

import argparse
import functools
import pickle
import re
from collections.abc import Collection
from pathlib import Path

import torch

from ..configuration_fireredasr import FireRedEncoderConfig
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


def load_original_checkpoint(path: str | Path, *, inert_globals: Collection[str] = ()) -> dict:
    """
    Load an original `*.pth.tar` package (`{"args": argparse.Namespace, "model_state_dict": ...}`).

    Loaded with `torch.load(weights_only=True)` and an allow-list of the one class the release pickles
    (`argparse.Namespace`): a file that asks pickle for anything else is refused with `UnsafeCheckpointError` and
    nothing of it runs. Tensors are memory-mapped, so loading does not copy the weights into memory.

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
    return package


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
