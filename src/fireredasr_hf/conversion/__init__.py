# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Conversion of original checkpoints into transformers model directories: FireRedASR (AED and LLM directories) and
the FireRedASR2S companions FireRedVAD and FireRedPunc."""

from pathlib import Path

from .common import ConversionError


def detect_variant(input_dir: str | Path) -> str:
    """ "aed", "llm", "vad" (FireRedVAD) or "punc" (FireRedPunc) for an original model directory; a clear error
    listing what was found otherwise."""
    from .vad import is_original_vad_dir

    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise ConversionError(f"Not a directory: {input_dir}")
    if (input_dir / "out_dict").is_file():
        return "punc"
    if is_original_vad_dir(input_dir):
        return "vad"
    if (input_dir / "asr_encoder.pth.tar").is_file():
        return "llm"
    if (input_dir / "model.pth.tar").is_file():
        return "aed"
    found = ", ".join(sorted(p.name for p in input_dir.iterdir())) or "nothing"
    raise ConversionError(
        f"{input_dir} is not an original FireRedASR directory: expected model.pth.tar (AED) or model.pth.tar + "
        f"asr_encoder.pth.tar + Qwen2-7B-Instruct/ (LLM), or a FireRedVAD (VAD/model.pth.tar + cmvn.ark, or the "
        f"ONNX exports with cmvn.ark) or FireRedPunc (model.pth.tar, out_dict, chinese-lert-base/) model; "
        f"found: {found}."
    )


def convert_checkpoint(
    input_dir: str | Path,
    output_dir: str | Path,
    dtype: str | None = None,
    max_shard_size: str = "5GB",
    merge_lora: bool = True,
    source: str | None = None,
    repo_id: str | None = None,
) -> Path:
    """Convert an original AED, LLM, FireRedVAD or FireRedPunc directory (detected from its files). dtype defaults:
    AED float32, LLM bfloat16 (FireRedVAD and FireRedPunc stay float32). `source` is where the original came from
    (the model card names it only when it is a Hub repo id), `repo_id` the Hub repository the result is meant for
    (used in the card's examples)."""
    variant = detect_variant(input_dir)
    if variant == "vad":
        from .vad import convert_vad_checkpoint

        return convert_vad_checkpoint(input_dir, output_dir)
    if variant == "punc":
        from .punc import convert_punc_checkpoint

        return convert_punc_checkpoint(input_dir, output_dir, source=source)
    if variant == "aed":
        from .aed import convert_aed_checkpoint

        return convert_aed_checkpoint(
            input_dir, output_dir, dtype or "float32", max_shard_size, source=source, repo_id=repo_id
        )
    from .llm import convert_llm_checkpoint

    return convert_llm_checkpoint(
        input_dir,
        output_dir,
        dtype=dtype or "bfloat16",
        merge_lora=merge_lora,
        max_shard_size=max_shard_size,
        source=source,
        repo_id=repo_id,
    )


def push_to_hub(output_dir: str | Path, repo_id: str) -> str:
    """Upload a converted directory to a Hub model repository (created if needed); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(output_dir), repo_id=repo_id)
    return f"https://huggingface.co/{repo_id}"


__all__ = ["ConversionError", "convert_checkpoint", "detect_variant", "push_to_hub"]
