# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Model cards (README.md with Hub metadata) for converted FireRedASR checkpoints."""

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult

# Published CER (%) from the FireRedASR report / README (beam 3 recommended settings).
PUBLISHED_CER = {
    "aed": {"aishell1": 0.55, "aishell2_ios": 2.52, "wenetspeech_test_net": 4.88, "wenetspeech_test_meeting": 4.76},
    "llm": {"aishell1": 0.76, "aishell2_ios": 2.15, "wenetspeech_test_net": 4.60, "wenetspeech_test_meeting": 4.67},
}
VARIANTS = {
    "aed": {
        "name": "FireRedASR-AED-L",
        "base_model": "FireRedTeam/FireRedASR-AED-L",
        "summary": "a 1.1B-parameter attention-based encoder-decoder: Conformer encoder (16 layers, 4x convolutional "
        "subsampling, relative-position attention) and Transformer decoder (16 layers), 7,832-token joint "
        "vocabulary of Chinese characters and English BPE pieces",
        "limits": "Trained on inputs up to 60 s; longer inputs get a warning and should go through the long-form "
        "pipeline (voice activity detection), which splits them into segments the model handles.",
        "decoding": "beam 3, softmax smoothing 1.25, GNMT length penalty 0.6, EOS penalty 1.0 (the release's "
        "recommended settings, stored in `generation_config.json`)",
        "dtype_note": "Weights are stored in the dtype chosen at conversion (float32 by default, as released).",
    },
    "llm": {
        "name": "FireRedASR-LLM-L",
        "base_model": "FireRedTeam/FireRedASR-LLM-L",
        "summary": "an 8.3B-parameter speech LLM: the FireRedASR Conformer encoder, an adapter that splices two "
        "encoder frames and maps them with Linear-ReLU-Linear, and Qwen2-7B-Instruct with the released LoRA "
        "merged into its weights",
        "limits": "Trained on inputs up to 30 s; longer inputs should go through the long-form pipeline.",
        "decoding": "beam 3, repetition penalty 3.0, length penalty 1.0, at most one new token per speech position "
        "(the release's README settings, stored in `generation_config.json`)",
        "dtype_note": "Weights are stored in bfloat16 by default (about 17 GB; float16 is refused, as it overflows). "
        "Batches are decoded with left padding and per-utterance masks, so each utterance gets the transcript it "
        "gets alone.",
    },
}


KEPT_LORA_SUMMARY = (
    "an 8.3B-parameter speech LLM: the FireRedASR Conformer encoder, an adapter that splices two encoder frames and "
    "maps them with Linear-ReLU-Linear, and Qwen2-7B-Instruct with its base weights; the released LoRA is kept as a "
    "separate PEFT adapter in `{lora_adapter}/`"
)
KEPT_LORA_NOTE = (
    "The LoRA is not merged into the weights: `model.safetensors` holds the base Qwen2-7B-Instruct weights and "
    "`{lora_adapter}/` the adapter (`config.json` names it as `lora_adapter`). `from_pretrained`, `pipeline(...)` and "
    "`fireredasr-hf transcribe` apply it when they load the model, which needs the `peft` package "
    "(`pip install peft`); without the adapter the transcripts would be the base LLM's, so loading without peft "
    "fails with a message instead. Convert without `--keep-lora` for a single merged checkpoint."
)


def build_model_card(
    variant: str, source: str, repo_id: str | None = None, lora_adapter: str | None = None
) -> ModelCard:
    info = dict(VARIANTS[variant])
    if lora_adapter:
        info["summary"] = KEPT_LORA_SUMMARY.format(lora_adapter=lora_adapter)
        info["dtype_note"] += "\n\n" + KEPT_LORA_NOTE.format(lora_adapter=lora_adapter)
    eval_results = [
        EvalResult(
            task_type="automatic-speech-recognition",
            dataset_type=dataset,
            dataset_name=dataset,
            metric_type="cer",
            metric_value=value,
            metric_name="CER (%)",
        )
        for dataset, value in PUBLISHED_CER[variant].items()
    ]
    card_data = ModelCardData(
        language=["zh", "en"],
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="automatic-speech-recognition",
        tags=["fireredasr", "audio", "speech", "custom_code"],
        base_model=info["base_model"],
        model_name=info["name"],
        eval_results=eval_results,
    )
    model_id = repo_id or "path/to/this/directory"
    rows = "\n".join(f"| {dataset} | {value:.2f} |" for dataset, value in PUBLISHED_CER[variant].items())
    content = f"""---
{card_data.to_yaml()}
---

# {info["name"]} (transformers format)

{info["name"]} is {info["summary"]}. This repository holds the original release converted to safetensors for
🤗 Transformers by fireredasr-hf from `{source}`. Converted outputs are
identical to the original inference code (same features, logits and transcripts).

## Usage

```python
from transformers import pipeline

asr = pipeline("automatic-speech-recognition", model="{model_id}", trust_remote_code=True)
print(asr("speech.wav")["text"])
```

With the `fireredasr-hf` package installed (`import fireredasr_hf` registers the classes, no remote code needed):

```bash
fireredasr-hf transcribe --model {model_id} speech.wav
```

Decoding defaults: {info["decoding"]}. Override them per call, e.g. `asr(audio, generate_kwargs={{"num_beams": 1}})`.

{info["dtype_note"]}

## Input

16 kHz mono audio (other rates are resampled, multi-channel audio is downmixed). Features are 80-dim Kaldi fbank
with the release's global CMVN. {info["limits"]}

## Results (published, CER %)

| test set | CER |
|---|---|
{rows}

CER as published by the FireRedASR authors: punctuation removed, English upper-cased, each Chinese character
and each English word one token.

## License and citation

Apache-2.0, as the original release. FireRedASR: Xu et al., "FireRedASR: Open-Source Industrial-Grade Mandarin
Speech Recognition Models from Encoder-Decoder to LLM Integration" (2025);
original code: https://github.com/FireRedTeam/FireRedASR.
"""
    return ModelCard(content)


def write_model_card(
    output_dir: str | Path, variant: str, source: str, repo_id: str | None = None, lora_adapter: str | None = None
) -> Path:
    """Writes README.md; `lora_adapter`: the sub-folder of an LLM conversion that keeps the LoRA as an adapter."""
    path = Path(output_dir) / "README.md"
    build_model_card(variant, source, repo_id, lora_adapter).save(path)
    return path
