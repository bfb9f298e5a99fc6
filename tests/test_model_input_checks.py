"""generate() refuses inputs that would decode silently wrong or crash deep inside, and from_pretrained refuses
incomplete checkpoints and falls back to the release's decoding without generation_config.json."""

import logging
import shutil

import pytest
import soundfile
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

import fireredasr_hf  # noqa: F401 (registers the Auto classes)


@pytest.fixture(scope="module", params=["aed", "llm"])
def variant(request, converted_aed_dir, converted_llm_dir, fixtures_dir):
    directory = converted_aed_dir if request.param == "aed" else converted_llm_dir
    model = AutoModelForSpeechSeq2Seq.from_pretrained(directory).eval()
    audio = soundfile.read(fixtures_dir / "audio" / "p02.wav", dtype="float32")[0]
    inputs = AutoProcessor.from_pretrained(directory)(audio=audio, sampling_rate=16000, return_tensors="pt")
    return request.param, directory, model, dict(inputs)


def holes(mask):
    mask = mask.clone()
    mask[:, 5:10] = 0
    return mask


BAD_FEATURES = {
    "2-D": (lambda f: f[0], ValueError, r"shape \(batch_size, num_frames, 80\).*input_features\[None\]"),
    "40 bins": (lambda f: f[..., :40], ValueError, r"shape \(batch_size, num_frames, 80\), got \(1, \d+, 40\)"),
    "81 bins": (lambda f: torch.cat([f, f[..., :1]], -1), ValueError, r"got \(1, \d+, 81\)"),
    "float64": (lambda f: f.double(), ValueError, "dtype torch.float64"),
    "int64": (lambda f: f.long(), ValueError, "dtype torch.int64"),
    "numpy": (lambda f: f.numpy(), TypeError, "must be a torch tensor"),
    "no frames": (lambda f: f[:, :0], ValueError, "holds no frame"),
    "NaN": (lambda f: f * float("nan"), ValueError, "NaN or infinite"),
}
BAD_MASKS = {
    "5 frames short": (lambda m: m[:, :-5], r"attention_mask must be a tensor of shape \(batch_size, num_frames\)"),
    "another batch": (lambda m: m.repeat(2, 1), r"attention_mask must be a tensor of shape"),
    "values 2": (lambda m: m * 2, "only 0 .* and 1"),
    "all padding": (lambda m: m * 0, "without any valid frame"),
    "holes": (holes, r"valid frames first and its padding after them"),
}
BAD_SETTINGS = {
    "num_beams=0": ({"num_beams": 0}, "num_beams must be an integer of at least 1"),
    "num_beams=2.5": ({"num_beams": 2.5}, "num_beams must be an integer"),
    "num_beams > vocabulary": ({"num_beams": 10**6}, r"num_beams must be an integer of at least 1 and at most \d+"),
    "max_new_tokens=-3": ({"max_new_tokens": -3}, "max_new_tokens"),
    "repetition_penalty=nan": ({"repetition_penalty": float("nan")}, "repetition_penalty must be a finite number"),
    "repetition_penalty=0": ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0.0"),
    "length_penalty=inf": ({"length_penalty": float("inf")}, "length_penalty must be a finite number"),
    "temperature=nan": ({"do_sample": True, "temperature": float("nan")}, "temperature"),
    "unknown argument": ({"foo": 1}, "foo"),
    "typo": ({"num_beam": 3}, "num_beam"),
}
AED_SETTINGS = {
    "softmax_smoothing=nan": ({"softmax_smoothing": float("nan")}, "softmax_smoothing must be a finite number"),
    "softmax_smoothing=0": ({"softmax_smoothing": 0.0}, "softmax_smoothing must be > 0.0"),
    "gnmt_length_penalty=-1": ({"gnmt_length_penalty": -1.0}, "gnmt_length_penalty must be >= 0.0"),
    "eos_penalty=2": ({"eos_penalty": 2.0}, r"eos_penalty must be > 0.0 and <= 1.0"),
    "eos_penalty=nan": ({"eos_penalty": float("nan")}, "eos_penalty must be a finite number"),
}


def test_valid_inputs_decode(variant):
    _, _, model, inputs = variant
    assert model.generate(**inputs).shape[0] == 1


@pytest.mark.parametrize("case", BAD_FEATURES)
def test_bad_features_are_refused(variant, case):
    _, _, model, inputs = variant
    transform, error, match = BAD_FEATURES[case]
    features = transform(inputs["input_features"])
    with pytest.raises(error, match=match):
        model.generate(input_features=features)


@pytest.mark.parametrize("case", BAD_MASKS)
def test_bad_attention_masks_are_refused(variant, case):
    _, _, model, inputs = variant
    transform, match = BAD_MASKS[case]
    with pytest.raises(ValueError, match=match):
        model.generate(input_features=inputs["input_features"], attention_mask=transform(inputs["attention_mask"]))


@pytest.mark.parametrize("case", [*BAD_SETTINGS, *AED_SETTINGS])
def test_bad_decoding_settings_are_refused(variant, case):
    name, _, model, inputs = variant
    if case in AED_SETTINGS and name != "aed":
        pytest.skip("an AED setting")
    settings, match = {**BAD_SETTINGS, **AED_SETTINGS}[case]
    with pytest.raises(ValueError, match=match):
        model.generate(**inputs, **settings)


def test_a_boolean_mask_and_half_precision_features_are_accepted(converted_aed_dir, fixtures_dir):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed_dir, dtype=torch.bfloat16).eval()
    audio = soundfile.read(fixtures_dir / "audio" / "p01.wav", dtype="float32")[0]
    inputs = AutoProcessor.from_pretrained(converted_aed_dir)(audio=audio, sampling_rate=16000, return_tensors="pt")
    # float32 features (as the processor gives them) into a bfloat16 model: cast, as the LLM does.
    expected = model.generate(input_features=inputs["input_features"].to(torch.bfloat16))
    assert torch.equal(
        model.generate(inputs["input_features"], attention_mask=inputs["attention_mask"].bool()), expected
    )


def drop_tensor(directory, name_part: str) -> str:
    weights_file = next(directory.glob("*.safetensors"))
    tensors = load_file(weights_file)
    key = next(key for key in sorted(tensors) if name_part in key)
    del tensors[key]
    save_file(tensors, weights_file, metadata={"format": "pt"})
    return key


@pytest.mark.parametrize("name", ["aed", "llm"])
def test_a_checkpoint_missing_a_tensor_is_refused(name, converted_aed_dir, converted_llm_dir, tmp_path):
    directory = shutil.copytree(converted_aed_dir if name == "aed" else converted_llm_dir, tmp_path / "model")
    key = drop_tensor(directory, "layers.1.")
    with pytest.raises(ValueError, match=rf"lacks 1 tensor\(s\): {key.replace('.', '[.]')}.*would be random"):
        AutoModelForSpeechSeq2Seq.from_pretrained(directory)
    # Opting in returns the report instead.
    _, report = AutoModelForSpeechSeq2Seq.from_pretrained(directory, output_loading_info=True)
    assert key in report["missing_keys"]


@pytest.mark.parametrize("name", ["aed", "llm"])
def test_without_generation_config_the_release_settings_are_used(
    name, converted_aed_dir, converted_llm_dir, tmp_path, caplog
):
    source = converted_aed_dir if name == "aed" else converted_llm_dir
    directory = shutil.copytree(source, tmp_path / "model")
    (directory / "generation_config.json").unlink()
    with caplog.at_level(logging.WARNING):
        model = AutoModelForSpeechSeq2Seq.from_pretrained(directory)
    assert "has no generation_config.json: decoding with the release's settings (num_beams=3" in caplog.text
    reference = AutoModelForSpeechSeq2Seq.from_pretrained(source).generation_config
    assert model.generation_config.to_diff_dict() == reference.to_diff_dict()


def test_damaged_weights_are_one_clear_error(converted_aed_dir, tmp_path):
    directory = shutil.copytree(converted_aed_dir, tmp_path / "model")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"weights of .*model cannot be read .* damaged or incomplete"):
        AutoModelForSpeechSeq2Seq.from_pretrained(directory)


def test_aed_refuses_generate_arguments_its_beam_search_would_ignore(converted_aed_dir, fixtures_dir):
    from transformers import LogitsProcessorList

    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed_dir).eval()
    audio = soundfile.read(fixtures_dir / "audio" / "p02.wav", dtype="float32")[0]
    inputs = AutoProcessor.from_pretrained(converted_aed_dir)(audio=audio, sampling_rate=16000, return_tensors="pt")
    with pytest.raises(ValueError, match="does not use: logits_processor"):
        model.generate(**inputs, logits_processor=LogitsProcessorList())
    # Seq2SeqTrainer passes synced_gpus (each process decodes its own batch to the end) and labels.
    expected = model.generate(**inputs)
    assert torch.equal(model.generate(**inputs, synced_gpus=False, labels=torch.tensor([[5, 4]])), expected)
