# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Conversion of original checkpoints into transformers model directories: FireRedASR and FireRedASR2 (AED and LLM
directories) and the FireRedASR2S companions FireRedVAD and FireRedPunc."""

import re
from pathlib import Path

from .common import ConversionError, atomic_output_dir, load_original_checkpoint

# FireRedASR2 checkpoints by name: the Hub repositories (FireRedTeam/FireRedASR2-AED, FireRedTeam/FireRedASR2-LLM) and
# the directories their READMEs download them to (pretrained_models/FireRedASR2-AED, ...).
FIRERED_V2_NAME = re.compile(r"fireredasr2", re.IGNORECASE)


def detect_variant(input_dir: str | Path) -> str:
    """ "aed", "llm", "vad" (FireRedVAD) or "punc" (FireRedPunc) for an original model directory; a clear error
    listing what was found otherwise."""
    from .vad import is_original_vad_dir

    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise ConversionError(f"Not a directory: {input_dir}")
    if (input_dir / "out_dict").is_file():
        return "punc"
    if (input_dir / "asr_encoder.pth.tar").is_file():
        return "llm"
    # Before the FireRedVAD check: an LLM folder without asr_encoder.pth.tar has VAD's model.pth.tar + cmvn.ark.
    llm_hint = llm_without_encoder_args(input_dir) if (input_dir / "model.pth.tar").is_file() else None
    if llm_hint:
        raise ConversionError(
            f"{input_dir} looks like an original FireRedASR-LLM directory ({llm_hint}) but lacks "
            "asr_encoder.pth.tar, which holds the encoder's arguments: download it with the rest of the release "
            "(e.g. `hf download FireRedTeam/FireRedASR-LLM-L asr_encoder.pth.tar --local-dir DIR`)."
        )
    if is_original_vad_dir(input_dir):
        return "vad"
    if (input_dir / "model.pth.tar").is_file():
        return "aed"
    found = ", ".join(sorted(p.name for p in input_dir.iterdir())) or "nothing"
    raise ConversionError(
        f"{input_dir} is not an original FireRedASR directory: expected model.pth.tar (AED) or model.pth.tar + "
        f"asr_encoder.pth.tar + Qwen2-7B-Instruct/ (LLM), or a FireRedVAD (VAD/model.pth.tar + cmvn.ark, or the "
        f"ONNX exports with cmvn.ark) or FireRedPunc (model.pth.tar, out_dict, chinese-lert-base/) model; "
        f"found: {found}."
    )


def llm_without_encoder_args(input_dir: Path) -> str | None:
    """Why a directory with `model.pth.tar` but no `asr_encoder.pth.tar` is an LLM one (None: it is not)."""
    from .llm import BASE_LLM_DIR

    if (input_dir / BASE_LLM_DIR).exists():
        return f"it has {BASE_LLM_DIR}/"
    if (input_dir / "dict.txt").is_file() or (input_dir / "train_bpe1000.model").is_file():
        return None
    # Neither complete AED nor LLM: the checkpoint's own arguments tell (read safely, without its tensors).
    try:
        package = load_original_checkpoint(input_dir / "model.pth.tar", verify_checksums=False)
    except ConversionError:
        return None  # unreadable: the AED checks report what is missing
    if hasattr(package["args"], "encoder_downsample_rate"):
        return "its model.pth.tar holds the speech adapter of an LLM"
    return None


def llm_version_from_name(*names: str | Path | None) -> int:
    """2 when the last component of a name (Hub repo id or directory path) says FireRedASR2, else 1: the LLM files
    of both releases look alike (see `conversion.llm`)."""
    return 2 if any(name is not None and FIRERED_V2_NAME.search(Path(str(name)).name) for name in names) else 1


def convert_checkpoint(
    input_dir: str | Path,
    output_dir: str | Path,
    dtype: str | None = None,
    max_shard_size: str = "5GB",
    merge_lora: bool = True,
    source: str | None = None,
    repo_id: str | None = None,
    lm_dir: str | Path | None = None,
    fireredasr_version: int | None = None,
) -> Path:
    """
    Convert an original AED, LLM (FireRedASR or FireRedASR2), FireRedVAD or FireRedPunc directory (detected from its
    files). dtype defaults: AED float32, LLM bfloat16 (FireRedVAD and FireRedPunc stay float32). `source` is where the
    original came from (the model card names it only when it is a Hub repo id), `repo_id` the Hub repository the
    result is meant for (used in the card's examples).

    The release: an AED with a CTC head is FireRedASR2-AED; an LLM is FireRedASR2-LLM when `fireredasr_version=2`
    or, without it, when `source` or the directory name contains "FireRedASR2" (the files of the two LLM releases
    do not differ). `lm_dir` (AED only) adds FireRedASR2's LSTM language model for shallow fusion.
    """
    if fireredasr_version not in (None, 1, 2):
        raise ConversionError(f"fireredasr_version must be 1 or 2, got {fireredasr_version!r}.")
    variant = detect_variant(input_dir)
    if lm_dir is not None and variant != "aed":
        raise ConversionError("--lm_dir applies to FireRedASR2-AED: only its beam search fuses a language model.")
    if variant in ("vad", "punc"):
        from .punc import convert_punc_checkpoint
        from .vad import convert_vad_checkpoint

        # Written all at once, as the AED and LLM converters write theirs.
        with atomic_output_dir(output_dir) as work_dir:
            if variant == "vad":
                convert_vad_checkpoint(input_dir, work_dir)
            else:
                convert_punc_checkpoint(input_dir, work_dir, source=source)
        return Path(output_dir)
    if variant == "aed":
        from .aed import convert_aed_checkpoint

        return convert_aed_checkpoint(
            input_dir,
            output_dir,
            dtype or "float32",
            max_shard_size,
            source=source,
            repo_id=repo_id,
            lm_dir=lm_dir,
            fireredasr_version=fireredasr_version,
        )
    from .llm import convert_llm_checkpoint

    version = fireredasr_version
    if version is None:
        version = llm_version_from_name(source, Path(input_dir).resolve())
        print(
            f"note: converting {source or input_dir} as FireRedASR{'2' if version == 2 else ''}-LLM (from its name; "
            "pass fireredasr_version / --fireredasr_version to choose)."
        )

    return convert_llm_checkpoint(
        input_dir,
        output_dir,
        dtype=dtype or "bfloat16",
        merge_lora=merge_lora,
        max_shard_size=max_shard_size,
        source=source,
        repo_id=repo_id,
        fireredasr_version=version,
    )


def push_to_hub(output_dir: str | Path, repo_id: str) -> str:
    """Upload a converted directory to a Hub model repository (created if needed); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(output_dir), repo_id=repo_id)
    return f"https://huggingface.co/{repo_id}"


__all__ = ["ConversionError", "convert_checkpoint", "detect_variant", "llm_version_from_name", "push_to_hub"]
