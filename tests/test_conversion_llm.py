"""Conversion of original FireRedASR-LLM directories: strict key mapping, LoRA merged or kept as a PEFT adapter,
tied and untied LLMs, sharding, and loading the result with trust_remote_code where fireredasr_hf is absent."""

import argparse
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fireredasr_hf.configuration_fireredasr import FireRedLlmConfig
from fireredasr_hf.conversion.common import ConversionError
from fireredasr_hf.conversion.llm import BASE_LLM_DIR, LORA_TARGETS, convert_llm_checkpoint
from fireredasr_hf.modeling_fireredasr_llm import FireRedLlmForSpeechSeq2Seq

REPO_ROOT = Path(__file__).resolve().parents[1]
LORA_PREFIX = "llm.base_model.model.model.layers"


def converted_llm_dir(fixtures_dir: Path, tmp_path_factory, dtype: str) -> Path:
    """The shared llm-tiny fixture converted once per test session (test_modeling_fireredasr_llm reuses it)."""
    output_dir = tmp_path_factory.getbasetemp() / f"llm-tiny-{dtype}"
    if not (output_dir / "README.md").is_file():  # the model card is written last
        convert_llm_checkpoint(fixtures_dir / "llm-tiny", output_dir, dtype=dtype)
    return output_dir


@pytest.fixture(scope="module")
def converted_fp32(fixtures_dir, tmp_path_factory) -> Path:
    return converted_llm_dir(fixtures_dir, tmp_path_factory, "float32")


@pytest.fixture(scope="module")
def original_package(fixtures_dir) -> dict:
    return torch.load(fixtures_dir / "llm-tiny" / "model.pth.tar", map_location="cpu", weights_only=False)


def write_original_dir(target: Path, fixtures_dir: Path, package: dict, llm_dir: Path | None = None) -> Path:
    """An original-layout directory with the given `model.pth.tar` package; the other files link to llm-tiny's."""
    source = fixtures_dir / "llm-tiny"
    target.mkdir(parents=True)
    for name in ("asr_encoder.pth.tar", "cmvn.ark"):
        (target / name).symlink_to(source / name)
    (target / BASE_LLM_DIR).symlink_to(llm_dir or source / BASE_LLM_DIR, target_is_directory=True)
    torch.save(package, target / "model.pth.tar")
    return target


def edited_package(package: dict, drop: str | None = None, add: dict | None = None) -> dict:
    state_dict = {k: v for k, v in package["model_state_dict"].items() if k != drop}
    state_dict.update(add or {})
    return {"args": package["args"], "model_state_dict": state_dict}


def test_converted_directory(converted_fp32, fixtures_dir):
    config = json.loads((converted_fp32 / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_fireredasr.FireRedLlmConfig",
        "AutoModelForSpeechSeq2Seq": "modeling_fireredasr_llm.FireRedLlmForSpeechSeq2Seq",
    }
    golden = json.loads((fixtures_dir / "golden" / "llm-tiny" / "llm.json").read_text())
    assert config["prompt_ids"] == golden["prompt_ids"]
    assert config["speech_token_id"] == 151646 and config["adapter_downsample_rate"] == 2
    assert "_name_or_path" not in config["text_config"]  # not the local path of the base LLM

    generation = json.loads((converted_fp32 / "generation_config.json").read_text())
    assert {k: generation[k] for k in ("num_beams", "repetition_penalty", "length_penalty", "do_sample")} == {
        "num_beams": 3,
        "repetition_penalty": 3.0,
        "length_penalty": 1.0,
        "do_sample": False,
    }
    assert (generation["eos_token_id"], generation["pad_token_id"]) == (151645, 151643)
    assert generation["max_new_tokens"] >= 32768  # explicit, so the ASR pipeline does not inject 256

    processor_config = json.loads((converted_fp32 / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_fireredasr_llm.FireRedLlmProcessor"
    assert processor_config["feature_extractor"]["auto_map"]["AutoFeatureExtractor"] == (
        "feature_extraction_fireredasr.FireRedAsrFeatureExtractor"
    )
    for name in (
        "modeling_fireredasr_llm.py",
        "modeling_fireredasr_encoder.py",
        "configuration_fireredasr.py",
        "processing_fireredasr_llm.py",
        "feature_extraction_fireredasr.py",
        "README.md",
    ):
        assert (converted_fp32 / name).is_file(), name
    assert not (converted_fp32 / "lora").exists()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(converted_fp32)
    assert tokenizer.convert_tokens_to_ids("<speech>") == 151646
    assert tokenizer.decode([151644, 151646, 151645, 151643], skip_special_tokens=True) == ""


def test_weights_are_complete_and_lora_is_merged(converted_fp32, original_package, fixtures_dir):
    weights = load_file(converted_fp32 / "model.safetensors")
    with torch.device("meta"):
        model = FireRedLlmForSpeechSeq2Seq(FireRedLlmConfig.from_pretrained(converted_fp32))
    # Tied LLM (as the tiny base LLM): the output matrix is the embedding and is not stored.
    assert set(weights) == set(model.state_dict()) - {"language_model.lm_head.weight"}
    assert all(tensor.dtype == torch.float32 for tensor in weights.values())

    state_dict = original_package["model_state_dict"]
    base = load_file(fixtures_dir / "llm-tiny" / BASE_LLM_DIR / "model.safetensors")
    for layer in range(2):
        for module in LORA_TARGETS:
            lora_a = state_dict[f"{LORA_PREFIX}.{layer}.{module}.lora_A.default.weight"]
            lora_b = state_dict[f"{LORA_PREFIX}.{layer}.{module}.lora_B.default.weight"]
            # r = 64 from the shapes, alpha = 16 (the release's constant): scaling 0.25.
            expected = base[f"model.layers.{layer}.{module}.weight"].float() + 0.25 * lora_b @ lora_a
            torch.testing.assert_close(
                weights[f"language_model.model.layers.{layer}.{module}.weight"], expected, rtol=0, atol=0
            )
    assert torch.equal(weights["adapter.linear1.weight"], state_dict["encoder_projector.linear1.weight"])
    assert torch.equal(
        weights["encoder.layers.1.conv.depthwise_layer_norm.weight"],
        state_dict["encoder.layer_stack.1.conv.batch_norm.weight"],
    )


def test_default_dtype_is_bfloat16_and_float16_is_refused(fixtures_dir, tmp_path_factory, tmp_path):
    converted = converted_llm_dir(fixtures_dir, tmp_path_factory, "bfloat16")
    with safe_open(converted / "model.safetensors", framework="pt") as weights:
        dtypes = {weights.get_slice(key).get_dtype() for key in weights.keys()}  # noqa: SIM118 (not a mapping)
    assert dtypes == {"BF16"}
    assert json.loads((converted / "config.json").read_text())["dtype"] == "bfloat16"
    with pytest.raises(ConversionError, match="float16"):
        convert_llm_checkpoint(fixtures_dir / "llm-tiny", tmp_path / "out", dtype="float16")


def test_sharded_output_loads_like_the_single_file(converted_fp32, fixtures_dir, tmp_path):
    sharded = convert_llm_checkpoint(
        fixtures_dir / "llm-tiny", tmp_path / "sharded", dtype="float32", max_shard_size="8MB"
    )
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and all(os.path.getsize(sharded / name) <= 40_000_000 for name in shards)
    reference = load_file(converted_fp32 / "model.safetensors")
    merged = {}
    for name in shards:
        merged.update(load_file(sharded / name))
    assert merged.keys() == reference.keys()
    assert all(torch.equal(merged[key], reference[key]) for key in reference)
    model = FireRedLlmForSpeechSeq2Seq.from_pretrained(sharded)
    assert torch.equal(model.adapter.linear2.bias, reference["adapter.linear2.bias"])


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("encoder.layer_stack.0.mhsa.w_qs.weight", "lacks tensors: encoder.layers.0.self_attn.q_proj.weight"),
        (
            f"{LORA_PREFIX}.1.mlp.up_proj.lora_B.default.weight",
            "lacks LoRA tensors: " + LORA_PREFIX + ".1.mlp.up_proj.lora_B",
        ),
        ("encoder_projector.linear2.bias", "lacks tensors: adapter.linear2.bias"),
    ],
)
def test_missing_tensor_is_named(original_package, fixtures_dir, tmp_path, drop, message):
    original = write_original_dir(tmp_path / "original", fixtures_dir, edited_package(original_package, drop=drop))
    with pytest.raises(ConversionError, match=message.replace(".", r"\.")):
        convert_llm_checkpoint(original, tmp_path / "out")


@pytest.mark.parametrize(
    "extra",
    [
        "decoder.layer_stack.0.mlp.w_1.weight",
        "encoder.layer_stack.0.mhsa.extra_scale",
        f"{LORA_PREFIX}.0.self_attn.q_proj.base_layer.weight",
        f"{LORA_PREFIX}.0.input_layernorm.lora_A.default.weight",
    ],
)
def test_unexpected_tensor_is_named(original_package, fixtures_dir, tmp_path, extra):
    package = edited_package(original_package, add={extra: torch.zeros(4)})
    original = write_original_dir(tmp_path / "original", fixtures_dir, package)
    short_name = extra.removeprefix("encoder.")
    with pytest.raises(ConversionError, match=short_name.replace(".", r"\.")):
        convert_llm_checkpoint(original, tmp_path / "out")


def test_base_llm_mismatch_is_named(original_package, fixtures_dir, tmp_path):
    base_dir = fixtures_dir / "llm-tiny" / BASE_LLM_DIR
    weights = load_file(base_dir / "model.safetensors")

    def base_copy(name, tensors):
        copy_dir = tmp_path / name
        copy_dir.mkdir()
        for path in base_dir.iterdir():
            if path.name != "model.safetensors":
                (copy_dir / path.name).symlink_to(path)
        save_file(tensors, copy_dir / "model.safetensors", metadata={"format": "pt"})
        return write_original_dir(tmp_path / f"original-{name}", fixtures_dir, original_package, llm_dir=copy_dir)

    missing = {k: v for k, v in weights.items() if k != "model.layers.1.post_attention_layernorm.weight"}
    with pytest.raises(ConversionError, match=r"language_model\.model\.layers\.1\.post_attention_layernorm\.weight"):
        convert_llm_checkpoint(base_copy("missing", missing), tmp_path / "out1")
    extra = {**weights, "model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(8)}
    with pytest.raises(ConversionError, match=r"language_model\.model\.layers\.0\.self_attn\.rotary_emb\.inv_freq"):
        convert_llm_checkpoint(base_copy("extra", extra), tmp_path / "out2")


def test_bad_shapes_and_directories_are_explained(original_package, fixtures_dir, tmp_path):
    state_dict = original_package["model_state_dict"]
    bad_lora = {f"{LORA_PREFIX}.0.mlp.down_proj.lora_A.default.weight": torch.zeros(64, 99)}
    original = write_original_dir(tmp_path / "lora", fixtures_dir, edited_package(original_package, add=bad_lora))
    with pytest.raises(ConversionError, match=r"LoRA of `model\.layers\.0\.mlp\.down_proj\.weight`"):
        convert_llm_checkpoint(original, tmp_path / "out1")
    bad_adapter = {"encoder_projector.linear2.weight": state_dict["encoder_projector.linear2.weight"][:, :10]}
    original = write_original_dir(tmp_path / "adapter", fixtures_dir, edited_package(original_package, add=bad_adapter))
    with pytest.raises(ConversionError, match=r"`adapter\.linear2\.weight` has shape \(64, 10\)"):
        convert_llm_checkpoint(original, tmp_path / "out2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="missing model.pth.tar, asr_encoder.pth.tar, cmvn.ark"):
        convert_llm_checkpoint(tmp_path / "empty", tmp_path / "out3")


@pytest.fixture(scope="module")
def untied_original_dir(fixtures_dir, tmp_path_factory) -> Path:
    """A random original-format LLM directory whose base LLM does not tie its output matrix (as Qwen2-7B-Instruct),
    built with the original classes so that the keys are the release's."""
    from fireredasr.models.module.adapter import Adapter
    from fireredasr.models.module.conformer_encoder import ConformerEncoder
    from transformers import Qwen2Config, Qwen2ForCausalLM

    source = fixtures_dir / "llm-tiny"
    target = tmp_path_factory.mktemp("untied-original")
    torch.manual_seed(0)
    encoder_args = torch.load(source / "asr_encoder.pth.tar", weights_only=False)["args"]
    encoder = ConformerEncoder(
        encoder_args.idim,
        encoder_args.n_layers_enc,
        encoder_args.n_head,
        encoder_args.d_model,
        kernel_size=encoder_args.kernel_size,
    )
    text_config = Qwen2Config(
        vocab_size=152064,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
    )
    llm = Qwen2ForCausalLM(text_config)
    with torch.no_grad():  # larger than the default init, so that the logits depend on every part
        for parameter in llm.parameters():
            parameter.normal_(0.0, 0.2)
    llm.to(torch.bfloat16).save_pretrained(target / BASE_LLM_DIR)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        (target / BASE_LLM_DIR / name).symlink_to(source / BASE_LLM_DIR / name)
    adapter = Adapter(encoder_args.d_model, text_config.hidden_size, 2)

    state_dict = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state_dict.update({f"encoder_projector.{k}": v for k, v in adapter.state_dict().items()})
    shapes = {
        "q_proj": (48, 48),
        "k_proj": (24, 48),
        "v_proj": (24, 48),
        "o_proj": (48, 48),
        "gate_proj": (96, 48),
        "up_proj": (96, 48),
        "down_proj": (48, 96),
    }
    for layer in range(2):
        for module in LORA_TARGETS:
            out_features, in_features = shapes[module.split(".")[1]]
            key = f"{LORA_PREFIX}.{layer}.{module}"
            state_dict[f"{key}.lora_A.default.weight"] = 0.1 * torch.randn(64, in_features)
            state_dict[f"{key}.lora_B.default.weight"] = 0.1 * torch.randn(out_features, 64)
    llm_args = torch.load(source / "model.pth.tar", weights_only=False)["args"]
    torch.save({"args": llm_args, "model_state_dict": state_dict}, target / "model.pth.tar")
    for name in ("asr_encoder.pth.tar", "cmvn.ark"):
        (target / name).symlink_to(source / name)
    return target


def test_untied_llm_matches_the_original_code(untied_original_dir, tmp_path, monkeypatch):
    """Live parity with the original FireRedAsrLlm (PEFT LoRA unmerged, fp32, eager) on random weights."""
    from fireredasr.models.fireredasr_llm import FireRedAsrLlm

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # the original calls torch.load without it
    package = torch.load(untied_original_dir / "model.pth.tar", weights_only=False)
    args = argparse.Namespace(**vars(package["args"]))
    args.encoder_path = str(untied_original_dir / "asr_encoder.pth.tar")
    args.llm_dir = str(untied_original_dir / BASE_LLM_DIR)
    original = FireRedAsrLlm.from_args(args)
    original.load_state_dict(package["model_state_dict"], strict=False)
    original.eval()

    torch.manual_seed(1)
    features = torch.randn(1, 87, 80)
    with torch.no_grad():
        encoder_output, lengths, _ = original.encoder(features, torch.tensor([87]))
        speech, _ = original.encoder_projector(encoder_output, lengths)
        prompt = torch.tensor(
            [[151644, 872, 198, 151646, 14880, 46670, 61443, 111268, 17714, 87335, 151645, 198, 151644, 77091, 198]]
        )
        embeds = original.llm.get_input_embeddings()(prompt)
        merged, _, _ = original._merge_input_ids_with_speech_features(speech, embeds, prompt, torch.ones_like(prompt))
        expected = original.llm(inputs_embeds=merged).logits

    for merge_lora in (True, False):
        output_dir = convert_llm_checkpoint(
            untied_original_dir, tmp_path / f"merge-{merge_lora}", dtype="float32", merge_lora=merge_lora
        )
        weights = load_file(output_dir / "model.safetensors")
        assert "language_model.lm_head.weight" in weights
        model = FireRedLlmForSpeechSeq2Seq.from_pretrained(output_dir).eval()
        assert model.language_model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
        if not merge_lora:  # from_pretrained applied the adapter that the config names
            adapter_config = json.loads((output_dir / "lora" / "adapter_config.json").read_text())
            assert (adapter_config["r"], adapter_config["lora_alpha"]) == (64, 16)
            lora_modules = [name for name, _ in model.named_modules() if name.endswith("lora_A")]
            assert lora_modules and not any("encoder" in name for name in lora_modules)
        input_ids, attention_mask = model.build_prompt(torch.tensor([speech.shape[1]]))
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attention_mask, input_features=features).logits
        scale = expected.abs().max().item()
        torch.testing.assert_close(logits, expected, rtol=0, atol=2e-5 * scale)


def test_loads_with_trust_remote_code_without_the_package(converted_fp32, fixtures_dir, tmp_path):
    script = f"""
import sys
sys.modules["fireredasr_hf"] = None  # importing it fails
sys.path = [entry for entry in sys.path if not entry.endswith("src")]
import soundfile
from transformers import AutoProcessor, pipeline

asr = pipeline("automatic-speech-recognition", model={str(converted_fp32)!r}, trust_remote_code=True)
assert type(asr.model).__module__.startswith("transformers_modules."), type(asr.model).__module__
audio, rate = soundfile.read({str(fixtures_dir / "audio" / "p02.wav")!r}, dtype="float32")
print(asr(audio)["text"])
processor = AutoProcessor.from_pretrained({str(converted_fp32)!r}, trust_remote_code=True)
assert type(processor).__module__.startswith("transformers_modules."), type(processor).__module__
inputs = processor(audio=audio, sampling_rate=rate, return_tensors="pt")
print(processor.batch_decode(asr.model.generate(**inputs), skip_special_tokens=True)[0])
"""
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-2:] == ["turn on the light", "turn on the light"]


@pytest.mark.parametrize("spelling", ["underscores", "hyphens"])
def test_conversion_script_keeps_the_lora_on_request(fixtures_dir, tmp_path, spelling):
    script = runpy.run_path(str(REPO_ROOT / "conversion" / "convert_fireredasr_to_hf.py"))
    output_dir = tmp_path / "keep-lora"
    args = ["--input_dir", str(fixtures_dir / "llm-tiny"), "--output_dir", str(output_dir), "--keep_lora"]
    script["main"]([arg.replace("_", "-") if spelling == "hyphens" and arg.startswith("--") else arg for arg in args])
    config = json.loads((output_dir / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["lora_adapter"] == "lora"
    card = (output_dir / "README.md").read_text()
    assert "## The LoRA is a separate adapter" in card and "PEFT\nadapter in `lora/`" in card
    adapter = load_file(output_dir / "lora" / "adapter_model.safetensors")
    assert len(adapter) == 2 * 2 * len(LORA_TARGETS)
    assert "base_model.model.language_model.model.layers.1.mlp.down_proj.lora_B.weight" in adapter


def test_a_kept_lora_is_applied_when_loading(fixtures_dir, tmp_path, monkeypatch):
    """`--keep-lora` output transcribes like the merged conversion through the plain pipeline; without peft, loading
    it fails with a message instead of giving the base LLM's transcripts."""
    from transformers import pipeline

    import fireredasr_hf  # noqa: F401

    output_dir = convert_llm_checkpoint(fixtures_dir / "llm-tiny", tmp_path / "keep", dtype="float32", merge_lora=False)
    umask = os.umask(0o022)
    os.umask(umask)
    assert {oct(path.stat().st_mode & 0o777) for path in output_dir.rglob("*")} <= {
        oct(0o666 & ~umask),
        oct(0o777 & ~umask),
    }
    asr = pipeline("automatic-speech-recognition", model=str(output_dir))
    assert asr(str(fixtures_dir / "audio" / "p02.wav"))["text"] == "turn on the light"

    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ImportError, match=r"keeps its LoRA as a separate adapter \(lora/\).*pip install peft"):
        FireRedLlmForSpeechSeq2Seq.from_pretrained(output_dir)
