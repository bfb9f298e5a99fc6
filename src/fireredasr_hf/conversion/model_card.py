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
# FireRedASR2 (FireRedASR2S README, Feb 2026): CER (%) on 24 public sets, (LLM, AED). ws = WenetSpeech, md = MagicData.
V2_PUBLISHED_CER = {
    "aishell1": (0.64, 0.57),
    "aishell2": (2.15, 2.51),
    "ws-net": (4.44, 4.57),
    "ws-meeting": (4.32, 4.53),
    "kespeech": (3.08, 3.60),
    "ws-yue-short": (5.14, 5.15),
    "ws-yue-long": (8.71, 8.54),
    "ws-chuan-easy": (10.90, 10.60),
    "ws-chuan-hard": (20.71, 21.35),
    "md-heavy": (7.42, 7.43),
    "md-yue-conv": (12.23, 11.66),
    "md-yue-daily": (3.61, 3.35),
    "md-yue-vehicle": (4.50, 4.83),
    "md-chuan-conv": (13.18, 13.07),
    "md-chuan-daily": (4.90, 5.17),
    "md-shanghai-conv": (28.70, 27.02),
    "md-shanghai-daily": (24.94, 24.18),
    "md-wu": (7.15, 7.14),
    "md-zhengzhou-conv": (10.20, 10.65),
    "md-zhengzhou-daily": (5.80, 6.26),
    "md-wuhan": (9.60, 10.81),
    "md-tianjin": (15.45, 15.30),
    "md-changsha": (23.18, 25.64),
    "opencpop": (1.12, 1.17),
}
V2_AVERAGES = {
    "average, Mandarin (1-4)": (2.89, 3.05),
    "average, dialects (5-23)": (11.55, 11.67),
    "average, all (1-24)": (9.67, 9.80),
}
V2_MANDARIN_SETS = ("aishell1", "aishell2", "ws-net", "ws-meeting")
V2_TIMESTAMPS_NOTE = """
## Timestamps, confidence and language-model fusion

The CTC head on the encoder (`ctc_head`) gives token and word timestamps by forced alignment, and the beam search
gives a confidence per token and per utterance (FireRedASR2's `confidence`):

```python
out = asr("speech.wav", return_timestamps="word")
out["confidence"], out["chunks"][0]  # {"text": ..., "timestamp": (start, end), "confidence": ...}
```

Times follow FireRedASR2 by default (tokens shifted 60 ms earlier, each start clamped to the previous end);
`keep_pauses=True` keeps the gaps the alignment finds. {lm_note}
"""
V2_LM_PRESENT = (
    "This directory also holds FireRedASR2's LSTM language model (`lm`); fuse it with "
    '`generate_kwargs={"lm_weight": 0.3}` (0 by default, as the release).'
)
V2_LM_ABSENT = (
    "FireRedASR2's LSTM language model can be converted into the directory with `--lm_dir` and fused with "
    '`generate_kwargs={"lm_weight": ...}`.'
)
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
V2_VARIANTS = {
    "aed": {
        **VARIANTS["aed"],
        "name": "FireRedASR2-AED",
        "base_model": "FireRedTeam/FireRedASR2-AED",
        "summary": "the attention-based encoder-decoder of FireRedASR2 (FireRedASR2S): Conformer encoder with a CTC "
        "head for timestamps, Transformer decoder, joint vocabulary of Chinese characters and English BPE pieces; "
        "Mandarin, 20+ Chinese dialects and accents, English, code-switching and singing",
        "decoding": "beam 3, softmax smoothing 1.25, GNMT length penalty 0.6, EOS penalty 1.0, language-model weight "
        "0 (FireRedASR2's recommended settings, stored in `generation_config.json`); transcripts are lower-cased as "
        "FireRedASR2 prints them",
    },
    "llm": {
        **VARIANTS["llm"],
        "name": "FireRedASR2-LLM",
        "base_model": "FireRedTeam/FireRedASR2-LLM",
        "summary": "the speech LLM of FireRedASR2 (FireRedASR2S): the FireRedASR2 Conformer encoder, an adapter that "
        "splices two encoder frames and maps them with Linear-ReLU-Linear, and Qwen2-7B-Instruct with the released "
        "LoRA merged into its weights; Mandarin, 20+ Chinese dialects and accents, English and code-switching",
        "decoding": "beam 3, repetition penalty 1.0, length penalty 0.0, at most one new token per speech position "
        "(FireRedASR2's defaults, stored in `generation_config.json`); transcripts are lower-cased as FireRedASR2 "
        "prints them",
    },
}


def published_results(variant: str, version: int) -> tuple[dict[str, float], str]:
    """The CER figures for the card's metadata and its markdown table."""
    if version == 1:
        cer = PUBLISHED_CER[variant]
        rows = "\n".join(f"| {dataset} | {value:.2f} |" for dataset, value in cer.items())
        table = f"""| test set | CER |
|---|---|
{rows}

CER as published by the FireRedASR authors: punctuation removed, English upper-cased, each Chinese character
and each English word one token."""
        return cer, table
    column = 0 if variant == "llm" else 1
    cer = {dataset: V2_PUBLISHED_CER[dataset][column] for dataset in V2_MANDARIN_SETS}
    rows = [f"| {dataset} | {values[column]:.2f} |" for dataset, values in V2_PUBLISHED_CER.items()]
    rows += [f"| **{name}** | **{values[column]:.2f}** |" for name, values in V2_AVERAGES.items()]
    table = (
        "| test set | CER |\n|---|---|\n"
        + "\n".join(rows)
        + """

CER (WER for English) as published in the FireRedASR2S README (ws = WenetSpeech, md = MagicData; sets 5-23 are
dialects and accents, 24 is singing)."""
    )
    return cer, table


def build_model_card(
    variant: str, source: str, repo_id: str | None = None, version: int = 1, has_lm: bool = False
) -> ModelCard:
    info = (V2_VARIANTS if version == 2 else VARIANTS)[variant]
    cer, results_table = published_results(variant, version)
    eval_results = [
        EvalResult(
            task_type="automatic-speech-recognition",
            dataset_type=dataset,
            dataset_name=dataset,
            metric_type="cer",
            metric_value=value,
            metric_name="CER (%)",
        )
        for dataset, value in cer.items()
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
    extra = ""
    if version == 2 and variant == "aed":
        extra = V2_TIMESTAMPS_NOTE.replace("{lm_note}", V2_LM_PRESENT if has_lm else V2_LM_ABSENT)
    citation = (
        'FireRedASR2S: Xu et al., "FireRedASR2S: A State-of-the-Art Industrial-Grade All-in-One Automatic Speech '
        'Recognition System" (2026); original code: https://github.com/FireRedTeam/FireRedASR2S.'
        if version == 2
        else 'FireRedASR: Xu et al., "FireRedASR: Open-Source Industrial-Grade Mandarin\nSpeech Recognition Models '
        'from Encoder-Decoder to LLM Integration" (2025);\noriginal code: https://github.com/FireRedTeam/FireRedASR.'
    )
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
{extra}
## Input

16 kHz mono audio (other rates are resampled, multi-channel audio is downmixed). Features are 80-dim Kaldi fbank
with the release's global CMVN. {info["limits"]}

## Results (published, CER %)

{results_table}

## License and citation

Apache-2.0, as the original release. {citation}
"""
    return ModelCard(content)


def write_model_card(
    output_dir: str | Path,
    variant: str,
    source: str,
    repo_id: str | None = None,
    version: int = 1,
    has_lm: bool = False,
) -> Path:
    path = Path(output_dir) / "README.md"
    build_model_card(variant, source, repo_id, version=version, has_lm=has_lm).save(path)
    return path
