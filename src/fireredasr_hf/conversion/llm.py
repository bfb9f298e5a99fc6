# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Conversion of an original FireRedASR-LLM or FireRedASR2-LLM directory (`model.pth.tar`, `asr_encoder.pth.tar`,
`cmvn.ark` and the base LLM in `Qwen2-7B-Instruct/`) into a transformers model directory.

Both releases have this layout and the same model (FireRedASR2's `fireredasr_llm.py` is v1's); they differ in how
their loaders merge the LoRA (v2: a fixed scaling 16 / 64, in the LLM's bfloat16), in the decoding defaults and in
FireRedASR2 lower-casing its transcripts. Nothing in the files tells the releases apart, so the version comes from
the caller (`fireredasr_version`, see `conversion.detect_version`).

The release keeps the base LLM apart: `model.pth.tar` holds the encoder, the adapter (`encoder_projector`) and a
LoRA on every attention and MLP projection of the LLM. By default the LoRA is merged into the base weights
(`W + alpha / r * B @ A`, in float32, then cast). The converted weights are written tensor by tensor from
memory-mapped sources, so converting the 8B model needs memory for about one tensor (the largest is the 152064 x 3584
embedding), not for a copy of the model.
"""

import json
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoConfig, AutoTokenizer
from transformers.utils.hub import convert_file_size_to_int

from ..configuration_fireredasr import FireRedLlmConfig
from ..extras import require
from ..feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from ..modeling_fireredasr_llm import (
    FLOAT16_UNSUPPORTED,
    FireRedLlmForSpeechSeq2Seq,
    llm_release_generation_config,
)
from ..processing_fireredasr_llm import FireRedLlmProcessor
from ..tokenization_fireredasr_llm import FireRedLlmTokenizer
from .common import (
    ConversionError,
    atomic_output_dir,
    check_all_used,
    check_float32_checkpoint,
    check_weight_values,
    convert_encoder_state_dict,
    encoder_config_from_args,
    load_original_checkpoint,
    rename_keys,
    required_arg,
    save_remote_code,
)
from .model_card import write_model_card

LLM_FILES = ("model.pth.tar", "asr_encoder.pth.tar", "cmvn.ark")
# The original loader reads the base LLM from this sub-directory (a copy of or link to Qwen/Qwen2-7B-Instruct).
BASE_LLM_DIR = "Qwen2-7B-Instruct"
SPEECH_TOKEN = "<speech>"

ADAPTER_KEY_RENAMES = [(r"^linear([12])\.(weight|bias)$", r"adapter.linear\1.\2")]
LORA_KEY = re.compile(
    r"^llm\.base_model\.model\.model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)"
    r"\.lora_([AB])\.default\.weight$"
)
LORA_TARGETS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
# `FireRedAsrLlm.from_args` hard-codes `LoraConfig(r=64, lora_alpha=16, lora_dropout=0.05)`. Checkpoints store
# neither r nor alpha: r is the rank of the stored matrices, alpha is the release's constant (scaling 16 / 64 = 0.25).
RELEASE_LORA_ALPHA = 16.0
RELEASE_LORA_DROPOUT = 0.05
LORA_DIR = "lora"

# FireRedASR2's loader (`asr.py: _merge_lora_state_dict(lora_alpha=16, lora_r=64)`) merges with this scaling whatever
# the stored rank, in the dtype it loads the LLM in (bfloat16).
V2_LORA_SCALING = 16.0 / 64.0

TensorSource = Callable[[], torch.Tensor]
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16"}


def check_llm_dir(input_dir: Path) -> Path:
    missing = [name for name in LLM_FILES if not (input_dir / name).is_file()]
    llm_dir = input_dir / BASE_LLM_DIR
    if not (llm_dir / "config.json").is_file():
        missing.append(f"{BASE_LLM_DIR}/config.json")
    if missing:
        found = sorted(p.name for p in input_dir.iterdir()) if input_dir.is_dir() else []
        raise ConversionError(
            f"{input_dir} is not an original FireRedASR-LLM directory: missing {', '.join(missing)} "
            f"(found: {', '.join(found) or 'nothing'}). The base LLM goes in {BASE_LLM_DIR}/ (download "
            "Qwen/Qwen2-7B-Instruct and link it there, as the release README says)."
        )
    return llm_dir


def base_llm_sources(llm_dir: Path) -> tuple[dict[str, TensorSource], dict[str, tuple[int, ...]]]:
    """Lazy readers and shapes of the base LLM's tensors (memory-mapped safetensors; nothing is read yet)."""
    index_file = llm_dir / "model.safetensors.index.json"
    if index_file.is_file():
        weight_map = json.loads(index_file.read_text())["weight_map"]
        files = sorted(set(weight_map.values()))
    elif (llm_dir / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise ConversionError(
            f"No safetensors weights in {llm_dir} (expected model.safetensors or model.safetensors.index.json)."
        )
    sources, shapes = {}, {}
    for file_name in files:
        handle = safe_open(str(llm_dir / file_name), framework="pt")
        keys = handle.keys()  # a safetensors handle is not a mapping
        for key in keys:
            sources[key] = lambda handle=handle, key=key: handle.get_tensor(key)
            shapes[key] = tuple(handle.get_slice(key).get_shape())
    return sources, shapes


def split_original_state_dict(state_dict: dict) -> tuple[dict, dict]:
    """The adapter (prefix removed) and LoRA tensors of `model.pth.tar`; keys of no known part are an error."""
    unknown = [k for k in state_dict if not k.startswith(("encoder.", "encoder_projector.", "llm."))]
    if unknown:
        raise ConversionError(f"Unexpected tensors in the original LLM checkpoint: {', '.join(unknown[:10])}")
    adapter = {k[len("encoder_projector.") :]: v for k, v in state_dict.items() if k.startswith("encoder_projector.")}
    lora = {k: v for k, v in state_dict.items() if k.startswith("llm.")}
    return adapter, lora


def collect_lora_pairs(lora_tensors: dict, num_layers: int) -> tuple[dict[str, tuple], int]:
    """`{base key: (A, B)}` for every LoRA target of every layer, and the rank r; strict in both directions."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in lora_tensors.items():
        match = LORA_KEY.match(key)
        if match is None:
            raise ConversionError(f"Unexpected tensor in the original LLM checkpoint: `{key}` (not a known LoRA key).")
        layer, module, which = match.groups()
        pairs.setdefault(f"model.layers.{layer}.{module}.weight", {})[which] = tensor

    expected = {f"model.layers.{i}.{module}.weight" for i in range(num_layers) for module in LORA_TARGETS}
    provided = {key for key, pair in pairs.items() if set(pair) == {"A", "B"}}
    missing = sorted(
        f"llm.base_model.model.{key[: -len('.weight')]}.lora_{which}.default.weight"
        for key in expected
        for which in "AB"
        if which not in pairs.get(key, {})
    )
    if missing:
        raise ConversionError(f"The original LLM checkpoint lacks LoRA tensors: {', '.join(missing[:10])}")
    check_all_used(expected, provided, "LoRA")
    ranks = {pair["A"].shape[0] for pair in pairs.values()} | {pair["B"].shape[1] for pair in pairs.values()}
    if len(ranks) != 1:
        raise ConversionError(f"The LoRA matrices have inconsistent ranks {sorted(ranks)}.")
    return {key: (pair["A"], pair["B"]) for key, pair in pairs.items()}, ranks.pop()


def merged_lora_source(
    base: TensorSource,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scaling: float,
    merge_dtype: torch.dtype | None = None,
):
    if merge_dtype is None:
        # In float32, as PEFT's merge would on the release's float32 model; the caller casts to the output dtype.
        return lambda: base().float() + scaling * (lora_b.float() @ lora_a.float())
    # As FireRedASR2's loader: `param.add_((lora_b @ lora_a).to(param.dtype) * scaling)` on the LLM's weights.
    return lambda: base().to(merge_dtype) + (lora_b @ lora_a).to(merge_dtype) * scaling


def encoder_state_dict(state_dict: dict, encoder_package: dict, model_path: Path, encoder_path: Path) -> dict:
    """
    The state dict holding the encoder's `encoder.*` tensors. The original builds the encoder from
    `asr_encoder.pth.tar` (an AED checkpoint: its weights if it holds any), then loads `model.pth.tar` over the whole
    model, so `model.pth.tar`'s `encoder.*` win when present (both releases ship them there, with an arguments-only
    `asr_encoder.pth.tar`). The AED's decoder and CTC head in `asr_encoder.pth.tar` are not part of the LLM.
    """
    if any(key.startswith("encoder.") for key in state_dict):
        return state_dict
    encoder_weights = {
        key: tensor for key, tensor in encoder_package.get("model_state_dict", {}).items() if key.startswith("encoder.")
    }
    if not encoder_weights:
        raise ConversionError(f"No encoder weights: neither {model_path} nor {encoder_path} holds `encoder.*` tensors.")
    return encoder_weights


def speech_sources(state_dict: dict, adapter_state_dict: dict) -> tuple[dict[str, TensorSource], dict[str, tuple]]:
    """Readers and shapes of the encoder and adapter tensors under our names."""
    tensors = {f"encoder.{key}": t for key, t in convert_encoder_state_dict(state_dict, "encoder.").items()}
    for old, new in rename_keys(adapter_state_dict, ADAPTER_KEY_RENAMES, set(), "adapter").items():
        tensors[new] = adapter_state_dict[old]
    return {key: (lambda t=t: t) for key, t in tensors.items()}, {key: tuple(t.shape) for key, t in tensors.items()}


def language_model_sources(
    llm_dir: Path,
    text_config,
    lora_pairs: dict,
    scaling: float,
    merge_lora: bool,
    merge_dtype: torch.dtype | None = None,
) -> tuple[dict[str, TensorSource], dict[str, tuple]]:
    """Readers and shapes of the language model's tensors under our names, with the LoRA merged if asked (in float32,
    or in `merge_dtype` as FireRedASR2's loader does)."""
    sources, shapes = base_llm_sources(llm_dir)
    if text_config.tie_word_embeddings and "lm_head.weight" in sources:
        # Dropped: a tied LLM's output matrix is its embedding (transformers ties them when loading the base LLM).
        del sources["lm_head.weight"]
    for base_key, (lora_a, lora_b) in lora_pairs.items():
        out_features, in_features = shapes.get(base_key, (None, None))
        if lora_a.shape[1] != in_features or lora_b.shape[0] != out_features:
            raise ConversionError(
                f"The LoRA of `{base_key}` ({tuple(lora_b.shape)} @ {tuple(lora_a.shape)}) does not fit the base "
                f"weight {shapes.get(base_key)}."
            )
        if merge_lora:
            sources[base_key] = merged_lora_source(sources[base_key], lora_a, lora_b, scaling, merge_dtype)
    return (
        {f"language_model.{key}": source for key, source in sources.items()},
        {f"language_model.{key}": shapes[key] for key in sources},
    )


def llm_architecture(package_args, encoder_config, text_config, adapter: dict, source: str) -> dict:
    """The FireRedLlmConfig arguments that fix the model's shapes."""
    rate = required_arg(package_args, "encoder_downsample_rate", source)
    linear1 = adapter.get("linear1.weight")
    if linear1 is None:
        raise ConversionError(f"{source} lacks `encoder_projector.linear1.weight`.")
    if linear1.shape[1] != encoder_config.hidden_size * rate:
        raise ConversionError(
            f"encoder_projector.linear1.weight has {linear1.shape[1]} inputs; expected encoder width "
            f"{encoder_config.hidden_size} x encoder_downsample_rate {rate}."
        )
    return {
        "encoder_config": encoder_config,
        "text_config": text_config,
        "adapter_downsample_rate": rate,
        "adapter_hidden_size": linear1.shape[0],
        "max_audio_seconds": float(getattr(package_args, "input_length_max", 30.0)),
    }


def token_ids(tokenizer) -> dict:
    """The FireRedLlmConfig arguments that come from the tokenizer: special ids and the tokenized decode prompt."""
    template = FireRedLlmConfig.prompt_template
    return {
        "speech_token": SPEECH_TOKEN,
        "speech_token_id": tokenizer.convert_tokens_to_ids(SPEECH_TOKEN),
        "prompt_template": template,
        "prompt_ids": tokenizer(template.format(speech=SPEECH_TOKEN), add_special_tokens=False)["input_ids"],
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|im_start|>"),
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
    }


# The tokenizer files of Qwen/Qwen2-7B-Instruct: the fast tokenizer, or the slow one's vocabulary and merges.
TOKENIZER_FILE_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))
# Text the base LLM's tokenizer must encode and decode unchanged (a tokenizer without its vocabulary turns everything
# into nothing, and every transcript would come out empty).
TOKENIZER_PROBE = "今天天气很好 speech recognition 123"


def build_tokenizer(llm_dir: Path, vocab_size: int, lowercase_output: bool = False):
    """The base LLM's tokenizer with `<speech>` added as a special token, as the release builds it; with
    `lowercase_output` (FireRedASR2) a [`FireRedLlmTokenizer`] that lower-cases decoded text. Checked to round trip
    text and to fit the LLM's `vocab_size` embedding rows."""
    if not any(all((llm_dir / name).is_file() for name in names) for names in TOKENIZER_FILE_SETS):
        raise ConversionError(
            f"{llm_dir} holds no tokenizer (tokenizer.json, or vocab.json and merges.txt): copy the complete "
            "Qwen/Qwen2-7B-Instruct there, tokenizer files included."
        )
    try:
        if lowercase_output:
            tokenizer = FireRedLlmTokenizer.from_pretrained(llm_dir, lowercase_output=True)
        else:
            tokenizer = AutoTokenizer.from_pretrained(llm_dir)
        round_trip = tokenizer.decode(tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"])
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ConversionError(
            f"The tokenizer in {llm_dir} cannot be loaded ({type(error).__name__}: {error}): copy the tokenizer files "
            "of Qwen/Qwen2-7B-Instruct again."
        ) from None
    if round_trip != TOKENIZER_PROBE:
        raise ConversionError(
            f"The tokenizer in {llm_dir} turns {TOKENIZER_PROBE!r} into {round_trip!r}: it is not Qwen2's (or its "
            "files are incomplete). Copy the tokenizer files of Qwen/Qwen2-7B-Instruct again."
        )
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id != tokenizer.convert_tokens_to_ids("<|endoftext|>"):
        raise ConversionError(f"The tokenizer in {llm_dir} must pad with <|endoftext|>, as the release asserts.")
    for token in ("<|im_start|>", "<|im_end|>"):
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise ConversionError(f"The tokenizer in {llm_dir} lacks the chat token {token}.")
    tokenizer.add_special_tokens({"additional_special_tokens": [SPEECH_TOKEN]})
    if len(tokenizer) > vocab_size:
        raise ConversionError(
            f"The tokenizer in {llm_dir} has {len(tokenizer)} tokens (with <speech>) but the LLM has only {vocab_size} "
            "embedding rows: the tokenizer and the weights are not from the same model."
        )
    return tokenizer


def plan_shards(sizes: dict[str, int], max_shard_size: int) -> list[list[str]]:
    shards, current, current_size = [], [], 0
    for key, size in sizes.items():
        if current and current_size + size > max_shard_size:
            shards.append(current)
            current, current_size = [], 0
        current.append(key)
        current_size += size
    if current:
        shards.append(current)
    return shards


def write_safetensors(
    path: Path, keys: list[str], sources: dict, shapes: dict, dtype: torch.dtype, origin_of: Callable[[str], str]
) -> None:
    """
    Write one safetensors file tensor by tensor: the header (names, shapes, offsets) is known up front, so only one
    tensor is in memory at a time, not the whole file. Every tensor is checked for NaN, infinite and implausibly large
    values (`origin_of(key)` names where it comes from).
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for key in keys:
        size = itemsize * torch.Size(shapes[key]).numel()
        header[key] = {
            "dtype": SAFETENSORS_DTYPES[dtype],
            "shape": list(shapes[key]),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # the tensor data starts 8-byte aligned
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(header_bytes)))
        file.write(header_bytes)
        for key in keys:
            tensor = sources[key]()
            if tuple(tensor.shape) != tuple(shapes[key]):
                raise ConversionError(f"`{key}` has shape {tuple(tensor.shape)}; the model expects {shapes[key]}.")
            check_weight_values(key, tensor, origin_of(key))
            converted = tensor.to(dtype)
            if converted.dtype != tensor.dtype:
                check_weight_values(key, converted, f"{origin_of(key)} cast to {str(dtype).removeprefix('torch.')}")
            file.write(converted.contiguous().view(torch.uint8).numpy().data)


def write_shards(
    sources: dict[str, TensorSource],
    shapes: dict[str, tuple],
    dtype: torch.dtype,
    output_dir: Path,
    max_shard_size,
    origin_of: Callable[[str], str],
) -> None:
    """Write the tensors (in the order of `sources`) as safetensors shards of at most `max_shard_size`."""
    if sys.byteorder != "little":
        raise ConversionError("safetensors files are little-endian; convert on a little-endian machine.")
    itemsize = torch.empty((), dtype=dtype).element_size()
    sizes = {key: itemsize * torch.Size(shapes[key]).numel() for key in sources}
    shards = plan_shards(sizes, convert_file_size_to_int(max_shard_size))
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    for name, keys in zip(names, shards):
        write_safetensors(output_dir / name, keys, sources, shapes, dtype, origin_of)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(sizes.values())},
            "weight_map": {key: name for name, keys in zip(names, shards) for key in keys},
        }
        (output_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def write_peft_adapter(lora_pairs: dict, rank: int, output_dir: Path, alpha: float = RELEASE_LORA_ALPHA) -> None:
    """The LoRA as a PEFT adapter of the converted model, in `output_dir/lora` (see `FireRedLlmConfig.lora_adapter`);
    its scaling is `alpha / rank`."""
    from peft import LoraConfig

    # A regex, so that the encoder's q/k/v/o projections are not targeted.
    targets = "|".join(re.escape(module) for module in LORA_TARGETS)
    lora_config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=RELEASE_LORA_DROPOUT,
        target_modules=rf"language_model\.model\.layers\.\d+\.({targets})",
        bias="none",
    )
    adapter_dir = output_dir / LORA_DIR
    lora_config.save_pretrained(str(adapter_dir))
    # Kept in the release's float32: the adapter is small and runs unmerged.
    tensors = {}
    for base_key, (lora_a, lora_b) in lora_pairs.items():
        module = f"base_model.model.language_model.{base_key[: -len('.weight')]}"
        tensors[f"{module}.lora_A.weight"] = lora_a.float().contiguous()
        tensors[f"{module}.lora_B.weight"] = lora_b.float().contiguous()
    save_file(tensors, str(adapter_dir / "adapter_model.safetensors"), metadata={"format": "pt"})


def convert_llm_checkpoint(
    input_dir: str | Path,
    output_dir: str | Path,
    dtype: str = "bfloat16",
    merge_lora: bool = True,
    max_shard_size: str | int = "5GB",
    source: str | None = None,
    repo_id: str | None = None,
    fireredasr_version: int = 1,
) -> Path:
    """
    Convert an original FireRedASR-LLM (`fireredasr_version=1`) or FireRedASR2-LLM (2) directory; returns the
    output directory (written all at once: a failed conversion leaves nothing there).

    Args:
        input_dir: the original directory: `model.pth.tar`, `asr_encoder.pth.tar` (its `args` describe the encoder),
            `cmvn.ark` and `Qwen2-7B-Instruct/` (config, tokenizer and safetensors weights of the base LLM).
        output_dir: where to write the transformers directory.
        dtype: weight dtype, `"bfloat16"` (default) or `"float32"` (the release's inference dtype, for exact parity).
            `"float16"` is refused: the released model gives garbage in half precision.
        merge_lora: merge the LoRA into the LLM weights (default). With `False` the LLM keeps its base weights and
            the LoRA is written as a PEFT adapter to `output_dir/lora`, named in the config (`lora_adapter`):
            `from_pretrained` (and so `pipeline` and `fireredasr-hf transcribe`) applies it, which needs peft.
        max_shard_size: largest safetensors shard.
        source: where the original came from, for the model card.
        fireredasr_version: 1 (FireRedASR-LLM-L) or 2 (FireRedASR2-LLM): v2 merges the LoRA as FireRedASR2's
            loader does (scaling 16 / 64 whatever the rank, in the output dtype), decodes with FireRedASR2's defaults
            and lower-cases transcripts ([`FireRedLlmTokenizer`] with `lowercase_output`).
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if fireredasr_version not in (1, 2):
        raise ConversionError(f"fireredasr_version must be 1 or 2, got {fireredasr_version!r}.")
    is_v2 = fireredasr_version == 2
    if dtype not in ("bfloat16", "float32"):
        if dtype == "float16":
            raise ConversionError(FLOAT16_UNSUPPORTED)
        raise ConversionError(f"dtype must be 'bfloat16' or 'float32', got {dtype!r}.")
    torch_dtype = getattr(torch, dtype)
    llm_dir = check_llm_dir(input_dir)
    if not merge_lora:
        require("train", "keeping the LoRA as a separate adapter (--keep-lora)", ["peft"])

    model_path, encoder_path = input_dir / "model.pth.tar", input_dir / "asr_encoder.pth.tar"
    package = load_original_checkpoint(model_path)
    if "model_state_dict" not in package:
        raise ConversionError(f"{model_path} holds no `model_state_dict`.")
    encoder_package = load_original_checkpoint(encoder_path)
    encoder_config = encoder_config_from_args(encoder_package["args"], str(encoder_path))
    state_dict = package["model_state_dict"]
    check_float32_checkpoint(state_dict, model_path)
    adapter_state_dict, lora_tensors = split_original_state_dict(state_dict)
    for key, tensor in state_dict.items():
        check_weight_values(key, tensor, model_path)

    text_config = AutoConfig.from_pretrained(llm_dir)
    text_config._name_or_path = ""  # not the local path of the base LLM
    architecture = llm_architecture(package["args"], encoder_config, text_config, adapter_state_dict, str(model_path))
    with torch.device("meta"):
        model = FireRedLlmForSpeechSeq2Seq(FireRedLlmConfig(**architecture))
    tied_keys = set(model.all_tied_weights_keys)
    expected_shapes = {key: tuple(t.shape) for key, t in model.state_dict().items() if key not in tied_keys}

    sources, shapes = speech_sources(
        encoder_state_dict(state_dict, encoder_package, model_path, encoder_path), adapter_state_dict
    )
    uses_lora = bool(getattr(package["args"], "use_lora", 0))
    if uses_lora != bool(lora_tensors):
        raise ConversionError(
            f"{model_path} has use_lora={int(uses_lora)} but {'holds' if lora_tensors else 'lacks'} LoRA tensors."
        )
    lora_pairs, rank = collect_lora_pairs(lora_tensors, text_config.num_hidden_layers) if uses_lora else ({}, 0)
    scaling = V2_LORA_SCALING if is_v2 else RELEASE_LORA_ALPHA / max(rank, 1)
    llm_sources, llm_shapes = language_model_sources(
        llm_dir, text_config, lora_pairs, scaling, merge_lora, merge_dtype=torch_dtype if is_v2 else None
    )
    sources.update(llm_sources)
    shapes.update(llm_shapes)

    check_all_used(set(expected_shapes), set(sources), "FireRedASR-LLM model")
    for key, shape in shapes.items():
        if shape != expected_shapes[key]:
            raise ConversionError(f"`{key}` has shape {shape}; the model expects {expected_shapes[key]}.")

    # Every tensor is accounted for; now the (slower) tokenizer.
    tokenizer = build_tokenizer(llm_dir, text_config.vocab_size, lowercase_output=is_v2)
    keep_lora = bool(lora_pairs) and not merge_lora
    config = FireRedLlmConfig(**architecture, **token_ids(tokenizer), lora_adapter=LORA_DIR if keep_lora else None)
    for sub_config in (config, config.encoder_config, config.text_config):
        sub_config.dtype = dtype
    if is_v2:
        config.fireredasr_version = 2  # picks the release's decoding settings (llm_release_generation_config)
    try:
        feature_extractor = FireRedAsrFeatureExtractor.from_kaldi_cmvn(str(input_dir / "cmvn.ark"))
    except ValueError as error:  # a damaged cmvn.ark (the message names it)
        raise ConversionError(str(error)) from None
    processor = FireRedLlmProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    if is_v2:
        tokenizer.register_for_auto_class()

    encoder_origin = model_path if any(key.startswith("encoder.") for key in state_dict) else encoder_path

    def origin_of(key: str) -> str:
        if key.startswith("encoder."):
            return str(encoder_origin)
        if not key.startswith("language_model."):
            return str(model_path)
        return f"{llm_dir} (with the LoRA of {model_path.name})" if lora_pairs and merge_lora else str(llm_dir)

    with atomic_output_dir(output_dir) as work_dir:
        ordered = {key: sources[key] for key in expected_shapes}
        write_shards(ordered, expected_shapes, torch_dtype, work_dir, max_shard_size, origin_of)
        if keep_lora:
            write_peft_adapter(lora_pairs, rank, work_dir, alpha=scaling * rank)
        save_remote_code(model, config, processor, work_dir)
        config.save_pretrained(work_dir)
        llm_release_generation_config(config).save_pretrained(work_dir)
        processor.save_pretrained(work_dir)
        write_model_card(
            work_dir,
            variant="llm",
            source=source or str(input_dir),
            repo_id=repo_id,
            version=fireredasr_version,
        )
    return output_dir
