#!/usr/bin/env python
# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Convert an original FireRedASR or FireRedASR2 model directory (AED or LLM) to a transformers directory with
safetensors.

    python conversion/convert_fireredasr_to_hf.py --input-dir FireRedASR-AED-L --output-dir fireredasr-aed-l-hf
    python conversion/convert_fireredasr_to_hf.py --input-dir FireRedASR2-AED --output-dir fireredasr2-aed-hf \
        --lm-dir FireRedASR2-AED/lm      # optional: FireRedASR2's LSTM language model, for lm_weight > 0

Every option is accepted with hyphens or underscores (`--keep-lora` or `--keep_lora`). `fireredasr-hf convert
FireRedASR-AED-L fireredasr-aed-l-hf` does the same.

The original `*.pth.tar` files are read with `torch.load(weights_only=True)` and an allow-list of the
`argparse.Namespace` they pickle, so nothing in them runs as code; damaged files are refused (see
`fireredasr_hf.conversion.common.load_original_checkpoint`). The output loads with `AutoModelForSpeechSeq2Seq` / `pipeline(...)` after
`import fireredasr_hf`, or anywhere with `trust_remote_code=True`.
"""

import argparse

from fireredasr_hf.conversion import convert_checkpoint, push_to_hub


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--input-dir", "--input_dir", required=True, help="original model directory (model.pth.tar, cmvn.ark, ...)"
    )
    parser.add_argument("--output-dir", "--output_dir", required=True, help="where to write the converted model")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default=None,
        help="weight dtype (default: float32 for AED, bfloat16 for LLM)",
    )
    parser.add_argument("--max-shard-size", "--max_shard_size", default="5GB", help="safetensors shard size limit")
    parser.add_argument(
        "--keep-lora",
        "--keep_lora",
        action="store_true",
        help="LLM only: keep the LoRA as a separate PEFT adapter in lora/ (applied when the model is loaded; needs "
        "peft) instead of merging it into the weights",
    )
    parser.add_argument(
        "--push-to-hub", "--push_to_hub", metavar="REPO_ID", default=None, help="upload the result to this Hub repo"
    )
    parser.add_argument(
        "--lm-dir",
        "--lm_dir",
        default=None,
        help="FireRedASR2-AED only: directory of FireRedASR2's LSTM language model (model.pth.tar), converted into "
        "the output for shallow fusion (generate's lm_weight)",
    )
    parser.add_argument(
        "--fireredasr-version",
        "--fireredasr_version",
        type=int,
        choices=[1, 2],
        default=None,
        help="the release (default: AED from its CTC head; LLM 2 when the directory name contains FireRedASR2)",
    )
    parser.add_argument(
        "--source-repo-id",
        "--source_repo_id",
        metavar="REPO_ID",
        default=None,
        help="the Hub repository --input-dir was downloaded from (e.g. FireRedTeam/FireRedASR-AED-L): the model card "
        "names it, and claims a release's published results when the architecture is the release's",
    )
    args = parser.parse_args(argv)

    output_dir = convert_checkpoint(
        args.input_dir,
        args.output_dir,
        dtype=args.dtype,
        max_shard_size=args.max_shard_size,
        merge_lora=not args.keep_lora,
        source=args.source_repo_id,
        repo_id=args.push_to_hub,
        lm_dir=args.lm_dir,
        fireredasr_version=args.fireredasr_version,
    )
    print(f"Converted model written to {output_dir}")
    if args.push_to_hub:
        print(f"Uploaded to {push_to_hub(output_dir, args.push_to_hub)}")


if __name__ == "__main__":
    main()
