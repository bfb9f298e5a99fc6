"""Conversion of FireRedASR2 checkpoints: FireRedASR2-AED (CTC head, strictness, the LSTM language model of
`--lm_dir`, model card, lower-cased transcripts) and FireRedASR2-LLM (recognised by name or `fireredasr_version`, the
release loader's LoRA merge, encoder weights from either file, FireRedASR2's decoding defaults), with the
FireRedASR2-LLM ids checked against the live reference."""

import argparse
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, AutoTokenizer

import fireredasr_hf  # noqa: F401
from fireredasr_hf.conversion import ConversionError, convert_checkpoint
from fireredasr_hf.conversion.common import load_original_checkpoint
from fireredasr_hf.conversion.llm import BASE_LLM_DIR, LORA_TARGETS
from fireredasr_hf.tokenization_fireredasr_llm import FireRedLlmTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
LORA_PREFIX = "llm.base_model.model.model.layers"


def edited_aed2(aed2_tiny_dir: Path, target: Path, edit) -> Path:
    shutil.copytree(aed2_tiny_dir, target, symlinks=True)
    (target / "model.pth.tar").unlink()
    package = load_original_checkpoint(aed2_tiny_dir / "model.pth.tar")
    state_dict = dict(package["model_state_dict"])
    edit(state_dict)
    torch.save({"args": package["args"], "model_state_dict": state_dict}, target / "model.pth.tar")
    return target


def write_lm(directory: Path, tie_weights=True, vocab_size=142, hidden_size=16, embedding_dim=16, edit=None) -> Path:
    """An original-format LSTM LM (`fireredasr2/models/lstm_lm.py` keys and args)."""
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(vocab_size, embedding_dim)
    lstm = torch.nn.LSTM(embedding_dim, hidden_size, 2, batch_first=True)
    state_dict = {"embedding.weight": embedding.weight.detach()}
    state_dict.update({f"lstm.{key}": value.detach() for key, value in lstm.state_dict().items()})
    state_dict["fc.weight"] = state_dict["embedding.weight"] if tie_weights else torch.randn(vocab_size, embedding_dim)
    state_dict["fc.bias"] = torch.zeros(vocab_size)
    if edit is not None:
        edit(state_dict)
    args = argparse.Namespace(
        idim=vocab_size, odim=vocab_size, embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=2,
        dropout=0.1, tie_weights=tie_weights,
    )  # fmt: skip
    directory.mkdir(parents=True)
    torch.save({"args": args, "model_state_dict": state_dict}, directory / "model.pth.tar")
    return directory


def test_fireredasr2_aed_converts_with_its_ctc_head(converted_aed2_dir, aed2_tiny_dir):
    config = json.loads((converted_aed2_dir / "config.json").read_text())
    assert (config["use_ctc_head"], config["ctc_blank_id"], config["ctc_loss_weight"]) == (True, 0, 0.0)
    assert config.get("lm_config") is None
    weights = load_file(converted_aed2_dir / "model.safetensors")
    original = load_original_checkpoint(aed2_tiny_dir / "model.pth.tar")["model_state_dict"]
    assert torch.equal(weights["ctc_head.weight"], original["ctc.ctc_lo.weight"])
    assert torch.equal(weights["ctc_head.bias"], original["ctc.ctc_lo.bias"])
    generation = json.loads((converted_aed2_dir / "generation_config.json").read_text())
    assert {key: generation[key] for key in ("num_beams", "softmax_smoothing", "gnmt_length_penalty", "eos_penalty", "lm_weight")} == {
        "num_beams": 3, "softmax_smoothing": 1.25, "gnmt_length_penalty": 0.6, "eos_penalty": 1.0, "lm_weight": 0.0,
    }  # fmt: skip
    tokenizer_config = json.loads((converted_aed2_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["lowercase_output"] is True
    processor = AutoProcessor.from_pretrained(converted_aed2_dir)
    assert processor.batch_decode([[3, 5, 6, 120, 4]], skip_special_tokens=True)[0].islower()
    card = (converted_aed2_dir / "README.md").read_text()
    # A tiny random model: a FireRedASR2-AED card without the release's published results (test_model_card.py).
    assert "FireRedASR2-AED" in card and "model-index" not in card and "0.57" not in card
    assert 'return_timestamps="word"' in card and "--lm_dir" in card
    assert (converted_aed2_dir / "timestamps_fireredasr.py").is_file()


def test_a_v1_aed_keeps_converting_without_a_head(converted_aed_dir):
    config = json.loads((converted_aed_dir / "config.json").read_text())
    assert config["use_ctc_head"] is False
    assert not [key for key in load_file(converted_aed_dir / "model.safetensors") if key.startswith(("ctc", "lm."))]
    assert json.loads((converted_aed_dir / "tokenizer_config.json").read_text())["lowercase_output"] is False
    card = (converted_aed_dir / "README.md").read_text()
    assert "# FireRedASR-AED (" in card and "FireRedASR2" not in card


def test_ctc_tensors_are_checked_strictly(aed2_tiny_dir, tmp_path):
    missing = edited_aed2(aed2_tiny_dir, tmp_path / "missing", lambda sd: sd.pop("ctc.ctc_lo.bias"))
    with pytest.raises(ConversionError, match=r"lacks tensors: ctc_head\.bias"):
        convert_checkpoint(missing, tmp_path / "out1")
    extra = edited_aed2(
        aed2_tiny_dir, tmp_path / "extra", lambda sd: sd.__setitem__("ctc.ctc_hi.weight", torch.zeros(2))
    )
    with pytest.raises(
        ConversionError, match=r"Unexpected tensors in the original AED checkpoint: ctc\.ctc_hi\.weight"
    ):
        convert_checkpoint(extra, tmp_path / "out2")
    with pytest.raises(ConversionError, match="FireRedASR2-AED checkpoint .*not FireRedASR-AED"):
        convert_checkpoint(aed2_tiny_dir, tmp_path / "out3", fireredasr_version=1)


@pytest.mark.parametrize("tie_weights", [True, False])
def test_lm_dir_adds_the_language_model(aed2_tiny_dir, tmp_path, tie_weights):
    lm_dir = write_lm(tmp_path / "lm", tie_weights=tie_weights)
    output = convert_checkpoint(aed2_tiny_dir, tmp_path / "out", lm_dir=lm_dir)
    config = json.loads((output / "config.json").read_text())["lm_config"]
    assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"]) == (142, 16, 2)
    assert (config["tie_word_embeddings"], config["eos_token_id"], config["eos_weight"]) == (tie_weights, 4, 3.0)
    weights = load_file(output / "model.safetensors")
    original = torch.load(lm_dir / "model.pth.tar", weights_only=False)["model_state_dict"]
    assert torch.equal(weights["lm.lstm.weight_hh_l1"], original["lstm.weight_hh_l1"])
    assert ("lm.proj_out.weight" in weights) is (not tie_weights)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(output)
    assert torch.equal(model.lm.proj_out.weight, original["fc.weight"])
    assert "holds FireRedASR2's LSTM language model" in (output / "README.md").read_text()


def test_bad_language_models_are_explained(aed2_tiny_dir, converted_llm_dir, fixtures_dir, tmp_path):
    cases = {
        "missing": ({"edit": lambda sd: sd.pop("lstm.bias_ih_l1")}, r"lacks tensors: lstm\.bias_ih_l1"),
        "extra": (
            {"edit": lambda sd: sd.__setitem__("proj.weight", torch.zeros(1))},
            r"Unexpected tensors.*proj\.weight",
        ),
        "sizes": ({"hidden_size": 24}, "embedding_dim 16 differs from hidden_size 24"),
        "vocabulary": ({"vocab_size": 150}, "predicts 150 tokens but the AED 142"),
        "untied": ({"edit": lambda sd: sd.__setitem__("fc.weight", sd["fc.weight"] + 1)}, "fc.weight differs"),
    }
    for name, (options, message) in cases.items():
        lm_dir = write_lm(tmp_path / name, **options)
        with pytest.raises((ConversionError, ValueError), match=message):
            convert_checkpoint(aed2_tiny_dir, tmp_path / f"out-{name}", lm_dir=lm_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="--lm_dir .*expected the language model in model.pth.tar"):
        convert_checkpoint(aed2_tiny_dir, tmp_path / "out-empty", lm_dir=tmp_path / "empty")
    with pytest.raises(ConversionError, match="--lm_dir applies to FireRedASR2-AED"):
        convert_checkpoint(fixtures_dir / "llm-tiny", tmp_path / "out-llm", lm_dir=tmp_path / "missing")


def test_conversion_script_takes_lm_dir(aed2_tiny_dir, tmp_path):
    script = runpy.run_path(str(REPO_ROOT / "conversion" / "convert_fireredasr_to_hf.py"))
    lm_dir = write_lm(tmp_path / "lm")
    output = tmp_path / "out"
    script["main"](["--input_dir", str(aed2_tiny_dir), "--output_dir", str(output), "--lm_dir", str(lm_dir)])
    assert json.loads((output / "config.json").read_text())["lm_config"]["vocab_size"] == 142


@pytest.fixture(scope="module")
def llm2_dir(fixtures_dir, tmp_path_factory) -> Path:
    """The fixtures' tiny LLM in a directory named as FireRedASR2-LLM's (the two releases share the layout)."""
    target = tmp_path_factory.mktemp("llm2") / "FireRedASR2-LLM"
    target.mkdir()
    for path in (fixtures_dir / "llm-tiny").iterdir():
        (target / path.name).symlink_to(path, target_is_directory=path.is_dir())
    return target


@pytest.fixture(scope="module")
def converted_llm2_bf16(llm2_dir, tmp_path_factory) -> Path:
    return convert_checkpoint(llm2_dir, tmp_path_factory.mktemp("llm2-hf") / "model")


def test_fireredasr2_llm_is_recognised_by_name_and_gets_v2_settings(converted_llm2_bf16, converted_llm_dir, capsys):
    generation = json.loads((converted_llm2_bf16 / "generation_config.json").read_text())
    assert {key: generation[key] for key in ("num_beams", "repetition_penalty", "length_penalty")} == {
        "num_beams": 3, "repetition_penalty": 1.0, "length_penalty": 0.0,
    }  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(converted_llm2_bf16)
    assert isinstance(tokenizer, FireRedLlmTokenizer) and tokenizer.lowercase_output
    ids = tokenizer("Turn ON the light", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "turn on the light"
    assert AutoProcessor.from_pretrained(converted_llm2_bf16).batch_decode([ids])[0] == "turn on the light"
    card = (converted_llm2_bf16 / "README.md").read_text()
    assert "FireRedASR2-LLM" in card and "model-index" not in card and "lower-cased" in card
    # v1 conversions are unchanged: the Qwen2 tokenizer, the README decoding.
    assert not isinstance(AutoTokenizer.from_pretrained(converted_llm_dir), FireRedLlmTokenizer)


def test_fireredasr2_llm_ids_equal_the_reference(fireredasr2, llm2_dir, converted_llm2_bf16, fixtures_dir, monkeypatch):
    """FireRedASR2's loader (LLM in bfloat16 with its own LoRA merge, encoder in float32) and transcribe call
    against the default (bfloat16) conversion, at batch size 1 with FireRedASR2's defaults."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    original, tokenizer = fireredasr2.asr.load_firered_llm_model_and_tokenizer(
        str(llm2_dir / "model.pth.tar"), str(llm2_dir / "asr_encoder.pth.tar"), str(llm2_dir / BASE_LLM_DIR)
    )
    original.eval()
    extractor = fireredasr2.feat.ASRFeatExtractor(str(llm2_dir / "cmvn.ark"))
    wrapper = fireredasr2.llm.LlmTokenizerWrapper
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_llm2_bf16).eval()
    assert model.dtype == torch.bfloat16
    processor = AutoProcessor.from_pretrained(converted_llm2_bf16)
    for uttid in ("p01", "p02", "p04", "p06"):
        path = str(fixtures_dir / "audio" / f"{uttid}.wav")
        feats, lengths, _, _, _ = extractor([path], [uttid])
        input_ids, attention_mask, _, _ = wrapper.preprocess_texts([""], tokenizer, max_len=128, decode=True)
        with torch.no_grad():
            expected = original.transcribe(
                feats, lengths, input_ids, attention_mask, beam_size=3, repetition_penalty=1.0, llm_length_penalty=0.0
            )
        audio, rate = soundfile.read(path, dtype="float32")
        ours = model.generate(**processor(audio=audio, sampling_rate=rate, return_tensors="pt"))
        expected_ids = [token for token in expected[0].tolist() if token != tokenizer.pad_token_id]
        assert [token for token in ours[0].tolist() if token != tokenizer.pad_token_id] == expected_ids, uttid
        assert (
            processor.batch_decode(ours, skip_special_tokens=True)[0]
            == tokenizer.decode(expected_ids, skip_special_tokens=True).lower()
        )


@pytest.fixture(scope="module")
def rank4_llm2_dir(fixtures_dir, tmp_path_factory) -> Path:
    """A FireRedASR2-LLM directory with a rank-4 LoRA and no encoder weights in model.pth.tar: they are in
    asr_encoder.pth.tar (an AED checkpoint with decoder and CTC head), which the reference loader also reads."""
    source = fixtures_dir / "llm-tiny"
    target = tmp_path_factory.mktemp("rank4") / "FireRedASR2-LLM"
    target.mkdir()
    for name in ("cmvn.ark", BASE_LLM_DIR):
        (target / name).symlink_to(source / name)
    package = load_original_checkpoint(source / "model.pth.tar")
    encoder = {key: value for key, value in package["model_state_dict"].items() if key.startswith("encoder.")}
    state_dict = {
        key: value for key, value in package["model_state_dict"].items() if key.startswith("encoder_projector.")
    }
    generator = torch.Generator().manual_seed(0)
    base = load_file(source / BASE_LLM_DIR / "model.safetensors")
    for layer in range(2):
        for module in LORA_TARGETS:
            out_features, in_features = base[f"model.layers.{layer}.{module}.weight"].shape
            key = f"{LORA_PREFIX}.{layer}.{module}"
            state_dict[f"{key}.lora_A.default.weight"] = torch.randn(4, in_features, generator=generator) * 0.3
            state_dict[f"{key}.lora_B.default.weight"] = torch.randn(out_features, 4, generator=generator) * 0.3
    torch.save({"args": package["args"], "model_state_dict": state_dict}, target / "model.pth.tar")
    aed = load_original_checkpoint(fixtures_dir / "aed-tiny" / "model.pth.tar")
    aed_state_dict = {key: value for key, value in aed["model_state_dict"].items() if not key.startswith("encoder.")}
    aed_state_dict.update(encoder)
    aed_state_dict["ctc.ctc_lo.weight"] = torch.zeros(142, 64)
    aed_state_dict["ctc.ctc_lo.bias"] = torch.zeros(142)
    encoder_args = load_original_checkpoint(source / "asr_encoder.pth.tar")["args"]
    torch.save({"args": encoder_args, "model_state_dict": aed_state_dict}, target / "asr_encoder.pth.tar")
    return target


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_fireredasr2_llm_lora_is_merged_as_the_reference_loader_does(
    fireredasr2, rank4_llm2_dir, fixtures_dir, tmp_path, monkeypatch, dtype
):
    """Scaling 16 / 64 whatever the rank, `(B @ A)` cast to the LLM's dtype before adding: bit-identical to the
    weights of FireRedASR2's loader in bfloat16 (its dtype); the encoder weights come from asr_encoder.pth.tar."""
    output = convert_checkpoint(rank4_llm2_dir, tmp_path / "out", dtype=dtype)
    weights = load_file(output / "model.safetensors")
    llm_encoder = load_original_checkpoint(fixtures_dir / "llm-tiny" / "model.pth.tar")["model_state_dict"]
    assert torch.equal(
        weights["encoder.layers.1.conv.depthwise_conv.weight"].float(),
        llm_encoder["encoder.layer_stack.1.conv.depthwise_conv.weight"]
        .to(weights["encoder.layers.1.conv.depthwise_conv.weight"].dtype)
        .float(),
    )
    package = load_original_checkpoint(rank4_llm2_dir / "model.pth.tar")
    base = load_file(fixtures_dir / "llm-tiny" / BASE_LLM_DIR / "model.safetensors")
    key = "model.layers.1.mlp.down_proj"
    lora_a = package["model_state_dict"][f"{LORA_PREFIX}.1.mlp.down_proj.lora_A.default.weight"]
    lora_b = package["model_state_dict"][f"{LORA_PREFIX}.1.mlp.down_proj.lora_B.default.weight"]
    torch_dtype = getattr(torch, dtype)
    expected = base[f"{key}.weight"].to(torch_dtype) + (lora_b @ lora_a).to(torch_dtype) * 0.25
    assert torch.equal(weights[f"language_model.{key}.weight"], expected)
    if dtype == "bfloat16":
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
        original, _ = fireredasr2.asr.load_firered_llm_model_and_tokenizer(
            str(rank4_llm2_dir / "model.pth.tar"), str(rank4_llm2_dir / "asr_encoder.pth.tar"),
            str(rank4_llm2_dir / BASE_LLM_DIR),
        )  # fmt: skip
        for name, parameter in original.llm.named_parameters():
            if name.startswith("model.layers."):
                assert torch.equal(weights[f"language_model.{name}"], parameter.detach()), name
        encoder_key = "encoder.layers.0.self_attn.q_proj.weight"
        assert torch.equal(
            weights[encoder_key].float(), original.encoder.layer_stack[0].mhsa.w_qs.weight.to(torch.bfloat16).float()
        )


def test_llm_release_can_be_chosen_explicitly(fixtures_dir, tmp_path, capsys):
    convert_checkpoint(fixtures_dir / "llm-tiny", tmp_path / "out1", dtype="float32")
    assert "as FireRedASR-LLM (from its name" in capsys.readouterr().out
    script = runpy.run_path(str(REPO_ROOT / "conversion" / "convert_fireredasr_to_hf.py"))
    output = tmp_path / "out2"
    script["main"](
        ["--input_dir", str(fixtures_dir / "llm-tiny"), "--output_dir", str(output), "--dtype", "float32",
         "--fireredasr_version", "2"]
    )  # fmt: skip
    assert "note:" not in capsys.readouterr().out
    assert json.loads((output / "generation_config.json").read_text())["repetition_penalty"] == 1.0
    assert "FireRedASR2-LLM" in (output / "README.md").read_text()


@pytest.mark.slow
def test_fireredasr2_llm_loads_with_trust_remote_code_without_the_package(converted_llm2_bf16, fixtures_dir, tmp_path):
    """The lower-casing tokenizer travels with the directory as remote code, like the model."""
    script = f"""
import sys
sys.modules["fireredasr_hf"] = None  # importing it fails
sys.path = [entry for entry in sys.path if not entry.endswith("src")]
from transformers import AutoTokenizer, pipeline

tokenizer = AutoTokenizer.from_pretrained({str(converted_llm2_bf16)!r}, trust_remote_code=True)
assert type(tokenizer).__module__.startswith("transformers_modules."), type(tokenizer).__module__
assert tokenizer.decode(tokenizer("Hello SPEECH", add_special_tokens=False)["input_ids"]) == "hello speech"
asr = pipeline("automatic-speech-recognition", model={str(converted_llm2_bf16)!r}, trust_remote_code=True)
print(asr({str(fixtures_dir / "audio" / "p02.wav")!r})["text"])
"""
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "turn on the light"
