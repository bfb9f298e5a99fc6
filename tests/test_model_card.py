"""Model cards written by the converter: true to the converted model (sizes and architecture from its config and
weights, the source only as a Hub id), published results only for released checkpoints (Hub id or architecture +
weights fingerprint), metadata that huggingface_hub parses as the Hub does, Markdown that renders without broken
tables or links to missing files."""

import html.parser
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from huggingface_hub.utils import validate_repo_id
from safetensors.torch import load_file, save_file

from fireredasr_hf.configuration_fireredasr import FireRedAedConfig, FireRedLlmConfig
from fireredasr_hf.conversion import convert_checkpoint, model_card
from fireredasr_hf.conversion.model_card import (
    RELEASED_CHECKPOINTS,
    PublishedResult,
    ReleasedCheckpoint,
    architecture_signature,
    build_model_card,
    weights_fingerprint,
)

markdown = pytest.importorskip("markdown", reason="rendering model cards needs the markdown package")

TINY_RELEASE = "owner/tiny-release"


def tiny_release(model_dir: Path, fingerprint: str | None = None) -> ReleasedCheckpoint:
    """A stand-in release with the tiny model's architecture (the real ones are far too large for tests)."""
    return ReleasedCheckpoint(
        repo_id=TINY_RELEASE,
        name="Tiny-Release",
        architecture=architecture_signature(model_card.read_config(model_dir)),
        fingerprint=fingerprint,
        results=(
            PublishedResult("AISHELL-1", "aishell-1", "cer", 0.55),
            PublishedResult("LibriSpeech test-clean", "openslr/librispeech_asr", "wer", 1.93, config="clean"),
        ),
        source_note="a test table.",
    )


@pytest.fixture
def released_tiny(monkeypatch, converted_aed_dir):
    def register(fingerprint=None):
        release = tiny_release(converted_aed_dir, fingerprint)
        monkeypatch.setitem(RELEASED_CHECKPOINTS, TINY_RELEASE, release)
        return release

    return register


# ----------------------------------------------------------------------------------------------------------------
# Rendering and metadata checks, applied to every card below


class LinkCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "href" in attrs:
            self.targets.append(attrs["href"])
        if tag == "img" and "src" in attrs:
            self.targets.append(attrs["src"])


def markdown_tables(body: str) -> list[list[str]]:
    """The pipe tables of a Markdown text (outside code fences), each as its lines."""
    tables, current, fenced = [], [], False
    for line in body.splitlines() + [""]:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def check_card(model_dir: Path) -> ModelCard:
    """The card's metadata parses (model-index included) and is what the Hub expects; its Markdown renders with
    every table well-formed and every relative link or image present in the model directory."""
    path = model_dir / "README.md"
    card = ModelCard.load(path, ignore_metadata_errors=False)
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "automatic-speech-recognition"
    assert data.language == ["zh", "en"] and data.license
    for base in [data.base_model] if isinstance(data.base_model, str) else data.base_model or []:
        validate_repo_id(base)
    if data.eval_results:
        # The model-index round-trips through huggingface_hub's own conversion, as the Hub reads it.
        name, results = model_index_to_eval_results(eval_results_to_model_index(data.model_name, data.eval_results))
        assert name == data.model_name and len(results) == len(data.eval_results)
        assert all(
            result.metric_type in ("cer", "wer") and result.task_type == "automatic-speech-recognition"
            for result in results
        )
    for example in data.widget:
        assert example["src"].startswith("https://") and example["example_title"]

    html = markdown.markdown(card.text, extensions=["tables", "fenced_code"])
    tables = markdown_tables(card.text)
    assert html.count("<table>") == len(tables), "a table did not render as one"
    for table in tables:
        header = cells(table[0])
        assert len(table) >= 3 and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", table[1].replace(" ", "")), table[:2]
        assert all(len(cells(row)) == len(header) for row in table), f"rows of another width than {header}"
    collector = LinkCollector()
    collector.feed(html)
    for target in collector.targets:
        if not re.match(r"[a-z]+://|#|mailto:", target):
            assert (model_dir / target).exists(), f"the card links to {target}, which is not in {model_dir}"
    return card


# ----------------------------------------------------------------------------------------------------------------


def test_a_tiny_model_gets_a_card_true_to_it(converted_aed_dir, fixtures_dir):
    card = check_card(converted_aed_dir)
    text = (converted_aed_dir / "README.md").read_text(encoding="utf-8")
    # Sizes from its config and weights: 424,480 stored numbers (the fixture's documented count), 2+2 layers.
    assert model_card.count_parameters(converted_aed_dir) == 424_480
    assert "424k parameters" in text and "Conformer encoder (2 layers, width 64" in text
    assert "Transformer decoder (2 layers, width 64, 4 heads) over a 142-token" in text
    for claim in ("1.1B", "1.16B", "16 layers", "FireRedASR-AED-L", "0.55", "model-index"):
        assert claim not in text
    assert card.data.base_model is None and card.data.eval_results is None and card.data.license == "other"
    # No local path: neither the source nor the output folder.
    assert str(fixtures_dir) not in text and str(converted_aed_dir) not in text and "/tmp" not in text


def test_a_hub_source_is_named_without_claiming_its_results(converted_aed_dir):
    """The converter names where a conversion came from; results need the released architecture too."""
    card = build_model_card(converted_aed_dir, "aed", source="FireRedTeam/FireRedASR-AED-L")
    assert card.data.base_model == "FireRedTeam/FireRedASR-AED-L" and card.data.eval_results is None
    assert "Evaluation results" not in card.text and "released by the FireRedASR authors" not in card.text
    local = build_model_card(converted_aed_dir, "aed", source=str(converted_aed_dir))
    assert local.data.base_model is None and str(converted_aed_dir) not in str(local)


def test_a_release_is_recognised_by_its_hub_id(converted_aed_dir, released_tiny, tmp_path):
    release = released_tiny()
    model_dir = tmp_path / "model"
    shutil.copytree(converted_aed_dir, model_dir)
    model_card.write_model_card(model_dir, "aed", source=TINY_RELEASE, repo_id="someone/tiny-hf")
    card = check_card(model_dir)
    assert card.data.base_model == TINY_RELEASE and card.data.license == "apache-2.0"
    assert [(result.dataset_name, result.metric_type, result.metric_value) for result in card.data.eval_results] == [
        ("AISHELL-1", "cer", 0.55),
        ("LibriSpeech test-clean", "wer", 1.93),
    ]
    assert "| AISHELL-1 | test | CER | 0.55 |" in card.text and "@article{xu2025fireredasr" in card.text
    # The widget plays the example clips copied into the repository.
    assert [example["src"] for example in card.data.widget] == [
        f"https://huggingface.co/someone/tiny-hf/resolve/main/examples/{name}"
        for name in ("english.flac", "mandarin.flac", "mixed.flac")
    ]
    assert all((model_dir / "examples" / name).is_file() for name in ("english.flac", "mandarin.flac", "mixed.flac"))
    assert release.name in card.text


def test_a_local_copy_is_recognised_by_architecture_and_weights(
    converted_aed_dir, fixtures_dir, released_tiny, tmp_path
):
    released_tiny(fingerprint=weights_fingerprint(converted_aed_dir))
    assert model_card.identify_release(converted_aed_dir, source=str(fixtures_dir / "aed-tiny")).repo_id == TINY_RELEASE
    # The same checkpoint converted to bfloat16 and sharded has the same fingerprint.
    bf16 = convert_checkpoint(fixtures_dir / "aed-tiny", tmp_path / "bf16", dtype="bfloat16", max_shard_size="300KB")
    assert weights_fingerprint(bf16) == weights_fingerprint(converted_aed_dir)
    assert build_model_card(bf16, "aed", source=str(fixtures_dir / "aed-tiny")).data.eval_results
    # A fine-tuned copy (one weight changed) is not the release, even under the release's Hub id.
    tuned = tmp_path / "tuned"
    shutil.copytree(converted_aed_dir, tuned)
    weights = load_file(tuned / "model.safetensors")
    name = min(weights)
    weights[name] = weights[name] + 1e-2
    save_file(weights, tuned / "model.safetensors", metadata={"format": "pt"})
    assert model_card.identify_release(tuned) is None
    assert model_card.identify_release(tuned, source=TINY_RELEASE) is None
    assert build_model_card(tuned, "aed", source=TINY_RELEASE).data.eval_results is None


def test_llm_card(converted_llm_dir):
    card = check_card(converted_llm_dir)
    text = card.text
    config = json.loads((converted_llm_dir / "config.json").read_text())
    parameters = model_card.count_parameters(converted_llm_dir)
    assert f"speech LLM with {model_card.format_count(parameters)} parameters" in text
    assert f"language model ({config['text_config']['num_hidden_layers']} layers" in text
    assert "float16 overflows" in text and "30 s" in text
    assert card.data.eval_results is None and "8.3B" not in text.split("## Limitations")[0]


def test_released_entries_describe_the_released_architectures():
    """Each entry's architecture is what converting that release gives (the configs' defaults are the releases)."""
    aed = RELEASED_CHECKPOINTS["FireRedTeam/FireRedASR-AED-L"]
    assert architecture_signature(FireRedAedConfig().to_dict()) == aed.architecture
    from transformers import Qwen2Config

    qwen2_7b = Qwen2Config(
        hidden_size=3584,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        intermediate_size=18944,
        vocab_size=152064,
    )
    llm = RELEASED_CHECKPOINTS["FireRedTeam/FireRedASR-LLM-L"]
    assert architecture_signature(FireRedLlmConfig(text_config=qwen2_7b.to_dict()).to_dict()) == llm.architecture
    # FireRedASR2: the same architectures, AED with a CTC head and its new vocabulary; the LLM is told apart by the
    # version the converter passes (the two LLM releases' files do not differ).
    aed2 = RELEASED_CHECKPOINTS["FireRedTeam/FireRedASR2-AED"]
    assert architecture_signature(FireRedAedConfig(vocab_size=8667, use_ctc_head=True).to_dict()) == aed2.architecture
    llm2 = RELEASED_CHECKPOINTS["FireRedTeam/FireRedASR2-LLM"]
    assert llm2.architecture == llm.architecture and (llm.version, llm2.version) == (1, 2)
    assert dict(aed2.summary_rows)["average, Mandarin (1-4)"] == 3.05
    # The model-index values are the report's CERs (Table 2) per test set.
    cers = {result.dataset: result.value for result in aed.results if result.metric == "cer"}
    assert [cers[name] for name in ("AISHELL-1", "AISHELL-2 (iOS)", "WenetSpeech Test_Net")] == [0.55, 2.52, 4.88]
    for release in RELEASED_CHECKPOINTS.values():
        validate_repo_id(release.repo_id)
        assert all(result.metric in ("cer", "wer") for result in release.results)
    # AED-L's parameters from its architecture (on the meta device): the 1,169,573,728 numbers of the released file
    # less its second copy of the 7832 x 1280 output matrix and the positional-encoding tables (9999 and 5000 rows of
    # 1280), which are computed, not stored. The report rounds it to 1.1B.
    from fireredasr_hf.modeling_fireredasr_aed import FireRedAedForConditionalGeneration

    with torch.device("meta"):
        model = FireRedAedForConditionalGeneration(FireRedAedConfig())
    count = sum(parameter.numel() for parameter in model.parameters())
    assert count == 1_169_573_728 - 7832 * 1280 - (9999 + 5000) * 1280 == 1_140_350_048
    assert model_card.format_count(count) == "1.14B"


def test_broken_tables_and_missing_link_targets_are_caught(converted_aed_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(converted_aed_dir, model_dir)
    readme = model_dir / "README.md"
    original = readme.read_text(encoding="utf-8")
    readme.write_text(original + "\n| a | b |\n|---|---|\n| 1 | 2 | 3 |\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="rows of another width"):
        check_card(model_dir)
    readme.write_text(original + "\nSee [the guide](docs/guide.md).\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="docs/guide.md, which is not in"):
        check_card(model_dir)


def test_the_punctuation_model_card_names_no_local_path(converted_punc_dir, original_punc_dir):
    text = (converted_punc_dir / "README.md").read_text(encoding="utf-8")
    assert str(original_punc_dir) not in text and "converted from the original checkpoint" in text
    card = ModelCard.load(converted_punc_dir / "README.md", ignore_metadata_errors=False)
    assert card.data.pipeline_tag == "token-classification" and card.data.library_name == "transformers"
    assert "<table>" not in markdown.markdown(card.text, extensions=["tables", "fenced_code"])


def test_a_fireredasr2_release_card(converted_aed2_dir, monkeypatch, tmp_path):
    """A FireRedASR2-AED conversion: word timestamps section, v2 results with the published averages, v2 citation;
    the version the converter passes keeps v1 releases of the same architecture out."""
    import dataclasses

    model_dir = tmp_path / "aed2"
    shutil.copytree(converted_aed2_dir, model_dir)
    release = RELEASED_CHECKPOINTS["FireRedTeam/FireRedASR2-AED"]
    signature = architecture_signature(model_card.read_config(model_dir))
    monkeypatch.setitem(
        RELEASED_CHECKPOINTS, TINY_RELEASE, dataclasses.replace(release, repo_id=TINY_RELEASE, architecture=signature)
    )
    model_card.write_model_card(model_dir, "aed", source=TINY_RELEASE, version=2)
    card = check_card(model_dir)
    assert len(card.data.eval_results) == 24 and card.data.eval_results[0].metric_value == 0.57
    assert "| **average, Mandarin (1-4)** | | CER | **3.05** |" in card.text
    assert 'return_timestamps="word"' in card.text and "@misc{xu2026fireredasr2s" in card.text
    assert "lower-cased" in card.text
    assert model_card.identify_release(model_dir, source=TINY_RELEASE, version=1) is None
