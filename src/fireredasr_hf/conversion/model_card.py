# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Model cards (README.md with Hub metadata) for converted FireRedASR checkpoints, true to the model they describe.

Everything a card states about the model is read from the converted directory: sizes and architecture from
`config.json`, the parameter count from the safetensors headers, the trained input length from the config. The
original is named only by its Hub repo id (a local path never appears). Published evaluation results, the base model
and the release's license are claimed only for a released checkpoint, recognised in `RELEASED_CHECKPOINTS` by

- its Hub repo id (the source a conversion was made from) together with its exact architecture, or
- its exact architecture together with the fingerprint of its weights (`weights_fingerprint`), for conversions of a
  local copy.

`RELEASED_CHECKPOINTS` is data, keyed by Hub repo id: a new release (e.g. FireRedASR2) is one entry.
"""

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.repocard_data import EvalResult
from huggingface_hub.utils import validate_repo_id

from ..examples import example_files

PAPER_URL = "https://arxiv.org/abs/2501.14350"
ORIGINAL_CODE_URL = "https://github.com/FireRedTeam/FireRedASR"
FIREREDASR_CITATION = """@article{xu2025fireredasr,
  title   = {FireRedASR: Open-Source Industrial-Grade Mandarin Speech Recognition Models from Encoder-Decoder to LLM
             Integration},
  author  = {Xu, Kai-Tuo and Xie, Feng-Long and Tang, Xu and Hu, Yao},
  journal = {arXiv preprint arXiv:2501.14350},
  year    = {2025}
}"""
FIREREDASR2S_CITATION = """@misc{xu2026fireredasr2s,
  title        = {FireRedASR2S: A State-of-the-Art Industrial-Grade All-in-One Automatic Speech Recognition System},
  author       = {Xu, Kai-Tuo and others},
  year         = {2026},
  howpublished = {https://github.com/FireRedTeam/FireRedASR2S}
}"""
# Widget clips when the card does not know its own repository (its example files cannot be addressed by URL).
HUB_SPEECH_SAMPLES = (
    ("LibriSpeech sample 1 (English)", "https://cdn-media.huggingface.co/speech_samples/sample1.flac"),
    ("LibriSpeech sample 2 (English)", "https://cdn-media.huggingface.co/speech_samples/sample2.flac"),
)
EXAMPLE_TITLES = {"mandarin": "Mandarin (synthetic)", "english": "English (synthetic)", "mixed": "Mandarin + English"}
# Elements sampled from each tensor for the weights fingerprint.
FINGERPRINT_SAMPLES = 4096


@dataclass(frozen=True)
class PublishedResult:
    """One published evaluation result: `metric` ("cer" or "wer", in %) on the `split` of a test set."""

    dataset: str  # as shown, e.g. "AISHELL-1"
    dataset_type: str  # model-index dataset id (a Hub dataset id where one exists)
    metric: str
    value: float
    split: str = "test"
    config: str | None = None


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """A checkpoint released by its authors, and what its card may claim.

    Attributes:
        repo_id: its Hub repository (original format).
        name: its name.
        architecture: `architecture_signature` of its converted config; a conversion must match it exactly.
        fingerprint: `weights_fingerprint` of its conversion (recognises a conversion of a local copy); None where not
            recorded, then only the Hub id recognises it.
        results: the published results (model-index and the results table).
        source_note: where the results were published.
        citation: BibTeX of the paper.
        license: the release's license.
        version: 1 (FireRedASR) or 2 (FireRedASR2); a converter that knows the version passes it.
        summary_rows: averages published next to the results (table only).
    """

    repo_id: str
    name: str
    architecture: dict
    fingerprint: str | None
    results: tuple[PublishedResult, ...]
    source_note: str
    citation: str = FIREREDASR_CITATION
    license: str = "apache-2.0"
    extra_tags: tuple[str, ...] = field(default=())
    version: int = 1  # FireRedASR or FireRedASR2 (the LLM releases have the same architecture)
    summary_rows: tuple[tuple[str, float], ...] = ()  # averages shown under the results table


def _encoder_signature(num_layers: int = 16, hidden: int = 1280, heads: int = 20) -> dict:
    return {
        "num_mel_bins": 80,
        "hidden_size": hidden,
        "num_hidden_layers": num_layers,
        "num_attention_heads": heads,
        "intermediate_size": 4 * hidden,
        "conv_kernel_size": 33,
    }


_MANDARIN_RESULTS_NOTE = (
    "FireRedASR technical report (Xu et al., 2025), Tables 2 and 5: character error rate (CER) for Mandarin and "
    "Chinese dialects, word error rate (WER) for English"
)


def _paper_results(aishell1, aishell2, ws_net, ws_meeting, kespeech, clean, other) -> tuple[PublishedResult, ...]:
    return (
        PublishedResult("AISHELL-1", "aishell-1", "cer", aishell1),
        PublishedResult("AISHELL-2 (iOS)", "aishell-2", "cer", aishell2, config="ios"),
        PublishedResult("WenetSpeech Test_Net", "wenetspeech", "cer", ws_net, split="test_net"),
        PublishedResult("WenetSpeech Test_Meeting", "wenetspeech", "cer", ws_meeting, split="test_meeting"),
        PublishedResult("KeSpeech", "kespeech", "cer", kespeech),
        PublishedResult("LibriSpeech test-clean", "openslr/librispeech_asr", "wer", clean, config="clean"),
        PublishedResult("LibriSpeech test-other", "openslr/librispeech_asr", "wer", other, config="other"),
    )


# FireRedASR2 (FireRedASR2S README, Feb 2026): CER (%) on 24 public sets as (LLM, AED); ws = WenetSpeech,
# md = MagicData. Sets 5-23 are dialects and accents, 24 singing.
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
_V2_RESULTS_NOTE = (
    "FireRedASR2S README (February 2026): CER (WER for English); ws = WenetSpeech, md = MagicData, sets 5-23 are "
    "dialects and accents, 24 is singing"
)


def _v2_results(column: int) -> tuple[PublishedResult, ...]:
    return tuple(PublishedResult(name, name, "cer", values[column]) for name, values in V2_PUBLISHED_CER.items())


def _v2_averages(column: int) -> tuple[tuple[str, float], ...]:
    return tuple((name, values[column]) for name, values in V2_AVERAGES.items())


_AED_L_ARCHITECTURE = {
    "model_type": "fireredasr_aed",
    "encoder": _encoder_signature(),
    "hidden_size": 1280,
    "num_hidden_layers": 16,
    "num_attention_heads": 20,
    "intermediate_size": 5120,
    "vocab_size": 7832,
    "max_position_embeddings": 5000,
    "use_ctc_head": False,
}
_LLM_L_ARCHITECTURE = {
    "model_type": "fireredasr_llm",
    "encoder": _encoder_signature(),
    "adapter_downsample_rate": 2,
    "adapter_hidden_size": 3584,
    "text": {
        "model_type": "qwen2",
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "intermediate_size": 18944,
        "vocab_size": 152064,
    },
}

RELEASED_CHECKPOINTS: dict[str, ReleasedCheckpoint] = {
    "FireRedTeam/FireRedASR-AED-L": ReleasedCheckpoint(
        repo_id="FireRedTeam/FireRedASR-AED-L",
        name="FireRedASR-AED-L",
        architecture=_AED_L_ARCHITECTURE,
        fingerprint=None,
        results=_paper_results(0.55, 2.52, 4.88, 4.76, 4.48, 1.93, 4.44),
        source_note=_MANDARIN_RESULTS_NOTE,
    ),
    "FireRedTeam/FireRedASR-LLM-L": ReleasedCheckpoint(
        repo_id="FireRedTeam/FireRedASR-LLM-L",
        name="FireRedASR-LLM-L",
        architecture=_LLM_L_ARCHITECTURE,
        fingerprint=None,
        results=_paper_results(0.76, 2.15, 4.60, 4.67, 3.56, 1.73, 3.67),
        source_note=_MANDARIN_RESULTS_NOTE,
        extra_tags=("qwen2",),
    ),
    "FireRedTeam/FireRedASR2-AED": ReleasedCheckpoint(
        repo_id="FireRedTeam/FireRedASR2-AED",
        name="FireRedASR2-AED",
        architecture={**_AED_L_ARCHITECTURE, "vocab_size": 8667, "use_ctc_head": True},
        fingerprint=None,
        results=_v2_results(1),
        summary_rows=_v2_averages(1),
        source_note=_V2_RESULTS_NOTE,
        citation=FIREREDASR2S_CITATION,
        version=2,
    ),
    "FireRedTeam/FireRedASR2-LLM": ReleasedCheckpoint(
        repo_id="FireRedTeam/FireRedASR2-LLM",
        name="FireRedASR2-LLM",
        architecture=_LLM_L_ARCHITECTURE,
        fingerprint=None,
        results=_v2_results(0),
        summary_rows=_v2_averages(0),
        source_note=_V2_RESULTS_NOTE,
        citation=FIREREDASR2S_CITATION,
        extra_tags=("qwen2",),
        version=2,
    ),
}


# ----------------------------------------------------------------------------------------------------------------
# What the converted directory says about the model


def read_config(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))


def _pick(config: dict, keys) -> dict:
    return {key: config.get(key) for key in keys}


def architecture_signature(config: dict) -> dict:
    """The sizes that identify an architecture (a `config.json` as a dict)."""
    encoder = _pick(
        config.get("encoder_config") or {},
        (
            "num_mel_bins",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "conv_kernel_size",
        ),
    )
    if config.get("model_type") == "fireredasr_llm":
        text = _pick(
            config.get("text_config") or {},
            (
                "model_type",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "intermediate_size",
                "vocab_size",
            ),
        )
        return {
            "model_type": "fireredasr_llm",
            "encoder": encoder,
            "adapter_downsample_rate": config.get("adapter_downsample_rate"),
            "adapter_hidden_size": config.get("adapter_hidden_size"),
            "text": text,
        }
    return {
        "model_type": config.get("model_type"),
        "encoder": encoder,
        **_pick(
            config,
            (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "vocab_size",
                "max_position_embeddings",
            ),
        ),
        "use_ctc_head": bool(config.get("use_ctc_head", False)),
    }


def _weight_files(model_dir: Path) -> list[Path]:
    """The model's safetensors files (a PEFT adapter kept beside it, in `lora/`, is not part of the model)."""
    return sorted(Path(model_dir).glob("*.safetensors"))


def count_parameters(model_dir: Path) -> int:
    """The numbers stored in the model's safetensors files (tied weights are stored, and counted, once)."""
    from safetensors import safe_open

    total = 0
    for file in _weight_files(model_dir):
        with safe_open(str(file), "pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                count = 1
                for size in handle.get_slice(name).get_shape():
                    count *= size
                total += count
    return total


def weights_fingerprint(model_dir: Path) -> str:
    """A digest of the model's weights: every tensor's name, shape and up to `FINGERPRINT_SAMPLES` evenly spaced
    elements, in bfloat16 (so a float32 and a bfloat16 conversion of the same checkpoint agree), in name order
    (so sharding does not matter). A fine-tuned copy changes it; the same release converted again does not."""
    import torch
    from safetensors import safe_open

    locations = {}
    for file in _weight_files(model_dir):
        with safe_open(str(file), "pt") as handle:
            locations.update({name: file for name in handle.keys()})  # noqa: SIM118
    digest = hashlib.sha256()
    for name in sorted(locations):
        with safe_open(str(locations[name]), "pt") as handle:
            tensor = handle.get_tensor(name)
        flat = tensor.reshape(-1)
        sample = flat[:: max(1, flat.numel() // FINGERPRINT_SAMPLES)][:FINGERPRINT_SAMPLES]
        digest.update(f"{name}\0{tuple(tensor.shape)}\0".encode())
        digest.update(sample.to(torch.bfloat16).view(torch.int16).numpy().tobytes())
    return digest.hexdigest()


def hub_repo_id(source: str | None) -> str | None:
    """`source` when it names a Hub repository (`owner/name`, not a path on this machine), else None."""
    if not source or Path(source).expanduser().exists() or source.count("/") != 1 or source.startswith((".", "~")):
        return None
    try:
        validate_repo_id(source)
    except HFValidationError:
        return None
    return source


def identify_release(
    model_dir: Path, source: str | None = None, version: int | None = None
) -> ReleasedCheckpoint | None:
    """The released checkpoint `model_dir` is a conversion of, if it is one (see the module docstring); `version`
    (1 or 2, where the converter knows it) rules out the releases of the other version."""
    signature = architecture_signature(read_config(model_dir))
    candidates = [
        release
        for release in RELEASED_CHECKPOINTS.values()
        if release.architecture == signature and version in (None, release.version)
    ]
    if not candidates:
        return None
    repo_id = hub_repo_id(source)
    fingerprint = None
    for release in candidates:
        if release.fingerprint is not None and fingerprint is None:
            fingerprint = weights_fingerprint(model_dir)
        if release.repo_id == repo_id and release.fingerprint in (None, fingerprint):
            return release
        if release.fingerprint is not None and release.fingerprint == fingerprint:
            return release
    return None


# ----------------------------------------------------------------------------------------------------------------
# The card


def format_count(count: int) -> str:
    """A parameter count in three significant digits: 424k, 1.16B."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


def describe_architecture(config: dict, parameters: int) -> str:
    encoder = config["encoder_config"]
    conformer = (
        f"a Conformer encoder ({encoder['num_hidden_layers']} layers, width {encoder['hidden_size']}, "
        f"{encoder['num_attention_heads']} attention heads, convolution kernel {encoder['conv_kernel_size']}, 4x "
        f"subsampling of {encoder['num_mel_bins']}-dim fbank features, relative-position attention)"
    )
    if config["model_type"] == "fireredasr_llm":
        text = config["text_config"]
        return (
            f"a speech LLM with {format_count(parameters)} parameters: {conformer}, an adapter that splices "
            f"{config['adapter_downsample_rate']} encoder frames and maps them with Linear-ReLU-Linear to width "
            f"{config['adapter_hidden_size']}, and a {text.get('model_type', 'decoder-only').capitalize()} language "
            f"model ({text['num_hidden_layers']} layers, width {text['hidden_size']}, {text['vocab_size']:,}-token "
            "vocabulary) that writes the transcript after a prompt"
        )
    return (
        f"an attention-based encoder-decoder with {format_count(parameters)} parameters: {conformer} and a "
        f"Transformer decoder ({config['num_hidden_layers']} layers, width {config['hidden_size']}, "
        f"{config['num_attention_heads']} heads) over a {config['vocab_size']:,}-token joint vocabulary of Chinese "
        "characters and English BPE pieces"
    )


def decoding_defaults(model_dir: Path, variant: str) -> str:
    path = Path(model_dir) / "generation_config.json"
    generation = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    beams = generation.get("num_beams", 1)
    if variant == "llm":
        return (
            f"beam {beams}, repetition penalty {generation.get('repetition_penalty', 1.0)}, length penalty "
            f"{generation.get('length_penalty', 1.0)}"
        )
    lm = f", language-model weight {generation['lm_weight']}" if "lm_weight" in generation else ""
    return (
        f"beam {beams}, softmax smoothing {generation.get('softmax_smoothing', 1.0)}, GNMT length penalty "
        f"{generation.get('gnmt_length_penalty', 0.0)}, EOS penalty {generation.get('eos_penalty', 1.0)}{lm}"
    )


def _eval_results(release: ReleasedCheckpoint) -> list[EvalResult]:
    return [
        EvalResult(
            task_type="automatic-speech-recognition",
            task_name="Speech Recognition",
            dataset_type=result.dataset_type,
            dataset_name=result.dataset,
            dataset_config=result.config,
            dataset_split=result.split,
            metric_type=result.metric,
            metric_name=f"{result.metric.upper()} (%)",
            metric_value=result.value,
            source_name="FireRedASR technical report",
            source_url=PAPER_URL,
        )
        for result in release.results
    ]


def _widget(repo_id: str | None, examples: list[str]) -> list[dict]:
    if repo_id is None or not examples:
        return [{"example_title": title, "src": url} for title, url in HUB_SPEECH_SAMPLES]
    return [
        {
            "example_title": EXAMPLE_TITLES.get(Path(name).stem, Path(name).stem),
            "src": f"https://huggingface.co/{repo_id}/resolve/main/{name}",
        }
        for name in examples
    ]


def copy_examples(model_dir: Path) -> list[str]:
    """Copies the example clips into `<model_dir>/examples/`; returns their paths relative to the directory."""
    target = Path(model_dir) / "examples"
    target.mkdir(exist_ok=True)
    names = []
    for clip in example_files():
        shutil.copyfile(clip, target / clip.name)
        names.append(f"examples/{clip.name}")
    return names


def lowercases_output(model_dir: Path) -> bool:
    """Whether the tokenizer lower-cases transcripts (as FireRedASR2 prints them)."""
    path = Path(model_dir) / "tokenizer_config.json"
    return path.is_file() and bool(json.loads(path.read_text(encoding="utf-8")).get("lowercase_output"))


def build_model_card(
    model_dir: str | Path,
    variant: str,
    source: str | None = None,
    repo_id: str | None = None,
    version: int | None = None,
    has_lm: bool | None = None,
) -> ModelCard:
    """The card of the converted model in `model_dir` (its config and weights must be written). `source` names the
    original (shown only when it is a Hub repo id), `repo_id` the repository the card is meant for (its examples),
    `version` the FireRedASR generation where the converter knows it (else: 2 for a model with a CTC head or
    lower-cased transcripts), `has_lm` whether FireRedASR2's language model is in the directory (default: read from
    its config)."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    parameters = count_parameters(model_dir)
    release = identify_release(model_dir, source, version)
    source_repo = hub_repo_id(source)
    examples = sorted(f"examples/{path.name}" for path in (model_dir / "examples").glob("*.flac"))
    trained_seconds = config.get("max_audio_seconds")
    is_llm = variant == "llm"
    lowercase = lowercases_output(model_dir)
    if version is None:
        version = release.version if release else 2 if config.get("use_ctc_head") or lowercase else 1
    if has_lm is None:
        has_lm = config.get("lm_config") is not None
    kind = f"FireRedASR{'2' if version == 2 else ''}-{'LLM' if is_llm else 'AED'}"
    name = release.name if release else f"{kind} ({format_count(parameters)} parameters)"
    base_model = release.repo_id if release else source_repo

    card_data = ModelCardData(
        language=["zh", "en"],
        license=release.license if release else "other",
        license_name=None if release else "same-as-source",
        library_name="transformers",
        pipeline_tag="automatic-speech-recognition",
        tags=["fireredasr", "audio", "speech", "custom_code", *(release.extra_tags if release else ())],
        base_model=base_model,
        model_name=name,
        eval_results=_eval_results(release) if release else None,
        widget=_widget(repo_id, examples),
    )
    model_id = repo_id or "path/to/this/directory"
    if release:
        origin = (
            f"This repository holds [{release.name}](https://huggingface.co/{release.repo_id}), released by the "
            "FireRedASR authors, converted to safetensors"
        )
    elif source_repo:
        origin = (
            f"This repository holds the checkpoint of [{source_repo}](https://huggingface.co/{source_repo}) "
            "converted to safetensors"
        )
    else:
        origin = "This repository holds an original-format FireRedASR checkpoint converted to safetensors"
    dtype = config.get("dtype") or (config.get("text_config") or {}).get("dtype") or "float32"
    sections = [
        f"# {name} for 🤗 Transformers",
        (
            f"{kind} is {describe_architecture(config, parameters)}. {origin} for 🤗 Transformers by fireredasr-hf "
            f"(weights in {dtype}). The converted model gives the same features, logits and transcripts as the "
            "original inference code."
        ),
        _usage_section(model_id, variant, model_dir, examples),
        _long_audio_section(model_id, trained_seconds),
    ]
    if config.get("lora_adapter"):
        sections.append(_kept_lora_section(config["lora_adapter"]))
    if config.get("use_ctc_head"):
        sections.append(_word_timestamps_section(has_lm))
    sections.append(_finetuning_section(model_id))
    if release:
        sections.append(_results_section(release))
    sections.append(_limitations_section(variant, trained_seconds, dtype, release, lowercase))
    sections.append(_license_section(release, source_repo, version))
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"
    return ModelCard(content)


def _kept_lora_section(lora_adapter: str) -> str:
    """What a `--keep-lora` conversion holds, and what loading it needs."""
    return f"""## The LoRA is a separate adapter

The language model's weights in `model.safetensors` are the base LLM's; the released LoRA is kept unmerged, as a PEFT
adapter in `{lora_adapter}/` (`config.json` names it as `lora_adapter`). `from_pretrained`, `pipeline(...)` and
`fireredasr-hf transcribe` apply it when they load the model, which needs the `peft` package (`pip install peft`);
without the adapter the transcripts would be the base LLM's, so loading without peft fails with a message instead.
Convert without `--keep-lora` for a single merged checkpoint."""


def _usage_section(model_id: str, variant: str, model_dir: Path, examples: list[str]) -> str:
    clips = (
        f" The `examples/` folder holds {len(examples)} short synthetic clips to try ({', '.join(examples)})."
        if examples
        else ""
    )
    decoding = decoding_defaults(model_dir, variant)
    return f"""## Usage

With the fireredasr-hf package installed (`pip install fireredasr-hf`), importing it registers the FireRedASR
classes with transformers, so no remote code runs:

```python
import fireredasr_hf  # registers the FireRedASR classes and pipeline
from transformers import pipeline

asr = pipeline("automatic-speech-recognition", model="{model_id}")
print(asr("speech.wav")["text"])
```

Without it, the model's own code (in this repository) loads with `trust_remote_code=True`:

```python
from transformers import pipeline

asr = pipeline("automatic-speech-recognition", model="{model_id}", trust_remote_code=True)
```

The model and processor directly (16 kHz mono audio as numpy arrays; other rates are resampled):

```python
import fireredasr_hf
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

processor = AutoProcessor.from_pretrained("{model_id}")
model = AutoModelForSpeechSeq2Seq.from_pretrained("{model_id}")
inputs = processor(audio=[waveform], sampling_rate=16000, return_tensors="pt")
ids = model.generate(**inputs)
print(processor.batch_decode(ids, skip_special_tokens=True))
```

Decoding defaults ({decoding}) are in `generation_config.json`; override them per call, e.g.
`model.generate(**inputs, num_beams=1)` or `asr(audio, generate_kwargs={{"num_beams": 1}})`.

From the command line (files, folders, Kaldi `wav.scp` lists, saved datasets; text, JSON lines, SRT or WebVTT):{clips}

```bash
fireredasr-hf transcribe --model {model_id} speech.wav recordings/ --output-format srt --output subtitles/
fireredasr-hf demo --model {model_id}      # a Gradio demo in the browser
```"""


def _long_audio_section(model_id: str, trained_seconds) -> str:
    limit = f"{trained_seconds:g} s" if trained_seconds else "its trained length"
    return f"""## Long audio and timestamps

The model was trained on utterances of at most {limit}. The pipeline splits longer recordings at pauses with
voice activity detection (Silero VAD by default; `vad="energy"` needs no extra package) into segments of at most
`max_segment_s` (default {limit}), decodes them in batches and joins the text. `return_timestamps=True` returns
one chunk per segment with its start and end in seconds:

```python
asr("meeting.mp3", return_timestamps=True, batch_size=8)["chunks"]
# [{{"text": "...", "timestamp": (0.52, 7.9)}}, ...]
```"""


def _word_timestamps_section(has_lm: bool) -> str:
    if has_lm:
        lm_note = (
            "This directory also holds FireRedASR2's LSTM language model (`lm`); fuse it with "
            '`generate_kwargs={"lm_weight": 0.3}` (0 by default, as the release).'
        )
    else:
        lm_note = (
            "FireRedASR2's LSTM language model can be converted into the directory with `--lm_dir` and fused with "
            '`generate_kwargs={"lm_weight": ...}`.'
        )
    return f"""## Word timestamps, confidence and language-model fusion

The CTC head on the encoder gives token and word timestamps by forced alignment, and the beam search gives a
confidence per token and per utterance (FireRedASR2's `confidence`):

```python
out = asr("speech.wav", return_timestamps="word")
out["confidence"], out["chunks"][0]  # {{"text": ..., "timestamp": (start, end), "confidence": ...}}
```

Times follow FireRedASR2 by default (tokens shifted 60 ms earlier, each start clamped to the previous end);
`keep_pauses=True` keeps the gaps the alignment finds. {lm_note}"""


def _finetuning_section(model_id: str) -> str:
    return f"""## Fine-tuning

The model trains with `Seq2SeqTrainer` (labels from the processor's tokenizer), fully or with LoRA. fireredasr-hf
wraps a recipe for Kaldi data directories (`wav.scp` + `text`) and saved `datasets`:

```bash
fireredasr-hf finetune --model {model_id} --train-data data/train --eval-data data/dev --output-dir my-model
```"""


def _results_section(release: ReleasedCheckpoint) -> str:
    rows = "\n".join(
        [
            f"| {result.dataset} | {result.split} | {result.metric.upper()} | {result.value:.2f} |"
            for result in release.results
        ]
        + [f"| **{name}** | | CER | **{value:.2f}** |" for name, value in release.summary_rows]
    )
    return f"""## Evaluation results

Published results of {release.name} (error rates in %, lower is better):

| test set | split | metric | value |
|---|---|---|---|
{rows}

Source: {release.source_note} ([paper]({PAPER_URL}))."""


def _limitations_section(
    variant: str, trained_seconds, dtype: str, release: ReleasedCheckpoint | None, lowercase: bool
) -> str:
    limit = f"{trained_seconds:g} s" if trained_seconds else "the trained length"
    if release:
        data = (
            f"{release.name} was trained on Mandarin Chinese and English speech (and covers Chinese dialects to a "
            "lesser degree); other languages are transcribed poorly or not at all."
        )
    else:
        data = (
            "What this checkpoint was trained on is not recorded here; its vocabulary holds Chinese characters and "
            "English pieces, the languages it can write."
        )
    points = [
        data,
        f"Inputs longer than {limit} get a warning when decoded in one piece; the pipeline segments them.",
        (
            "Transcripts are lower-cased, as FireRedASR2 prints them, and have no punctuation (FireRedPunc adds it)."
            if lowercase
            else "The released models write transcripts without punctuation (AED: English in upper case), as their "
            "training targets were."
        ),
    ]
    if variant == "llm":
        points.append(
            "Run it in bfloat16 (as stored by default) or float32: float16 overflows and gives garbage, and the "
            "converter refuses it. At full size (8.3B parameters, about 17 GB in bfloat16) a GPU is needed for "
            "practical speed."
        )
    else:
        points.append(f"Weights are stored in {dtype}; float16 and bfloat16 inference work but were not evaluated.")
    return "## Limitations\n\n" + "\n".join(f"- {point}" for point in points)


def _license_section(release: ReleasedCheckpoint | None, source_repo: str | None, version: int) -> str:
    if release:
        licence = (
            f"Apache-2.0, as the original release ([{release.repo_id}](https://huggingface.co/{release.repo_id}))."
        )
    else:
        where = f"[{source_repo}](https://huggingface.co/{source_repo})" if source_repo else "the original checkpoint"
        licence = f"The license of these weights is that of {where}; the model code is Apache-2.0."
    citation = release.citation if release else FIREREDASR2S_CITATION if version == 2 else FIREREDASR_CITATION
    return f"""## License and citation

{licence} Original code: {ORIGINAL_CODE_URL}.

```bibtex
{citation}
```"""


def write_model_card(
    output_dir: str | Path,
    variant: str,
    source: str | None = None,
    repo_id: str | None = None,
    version: int | None = None,
    has_lm: bool | None = None,
) -> Path:
    """Writes `<output_dir>/README.md` (and the example clips its widget and usage refer to); the arguments are
    `build_model_card`'s."""
    copy_examples(output_dir)
    path = Path(output_dir) / "README.md"
    build_model_card(output_dir, variant, source, repo_id, version=version, has_lm=has_lm).save(path)
    return path


__all__ = [
    "RELEASED_CHECKPOINTS",
    "PublishedResult",
    "ReleasedCheckpoint",
    "architecture_signature",
    "build_model_card",
    "identify_release",
    "weights_fingerprint",
    "write_model_card",
]
