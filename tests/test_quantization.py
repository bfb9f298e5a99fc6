"""int8 CPU inference: `quantize_model` and `load_asr_pipeline(quantize="int8")` on the tiny AED and LLM models."""

import copy

import pytest
import torch
from torch import nn
from transformers import AutoProcessor

from fireredasr_hf import FireRedAedForConditionalGeneration
from fireredasr_hf.hub import load_asr_pipeline
from fireredasr_hf.quantization import is_quantized, quantize_model

SAMPLING_RATE = 16000


@pytest.fixture(scope="module")
def model(converted_aed_dir):
    return FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir).eval()


@pytest.fixture(scope="module")
def processor(converted_aed_dir):
    return AutoProcessor.from_pretrained(converted_aed_dir)


def transcripts(model, processor, clips) -> dict[str, list[int]]:
    ids = {}
    for uttid, clip in clips.items():
        inputs = processor(clip, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        ids[uttid] = model.generate(**inputs)[0].tolist()
    return ids


def test_int8_model_gives_the_float_transcripts(model, processor, fixture_clips):
    quantized = quantize_model(copy.deepcopy(model))
    assert is_quantized(quantized) and not is_quantized(model)
    assert not any(type(module) is nn.Linear for module in quantized.modules())
    assert quantized.dtype == torch.float32
    # Beam 3 (the release setting), token for token on all ten fixture utterances.
    assert transcripts(quantized, processor, fixture_clips) == transcripts(model, processor, fixture_clips)


def test_bfloat16_model_is_quantized_layer_by_layer(model, processor, fixture_clips):
    quantized = quantize_model(copy.deepcopy(model).to(torch.bfloat16))
    assert {parameter.dtype for parameter in quantized.parameters()} == {torch.float32}
    inputs = processor(fixture_clips["p04"], sampling_rate=SAMPLING_RATE, return_tensors="pt")
    text = processor.batch_decode(quantized.generate(**inputs), skip_special_tokens=True)[0]
    assert text == "我们开会吧 LET US START THE MEETING"


def test_quantize_refuses_what_it_cannot_do(model):
    with pytest.raises(ValueError, match="unknown quantization"):
        quantize_model(copy.deepcopy(model), "int4")
    quantized = quantize_model(copy.deepcopy(model))
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(quantized)


def test_pipeline_with_int8_for_both_variants(converted_aed_dir, converted_llm_dir, fixtures_dir):
    audio = str(fixtures_dir / "audio" / "p04.wav")
    aed = load_asr_pipeline(str(converted_aed_dir), quantize="int8")
    assert is_quantized(aed.model)
    assert aed(audio)["text"] == "我们开会吧 LET US START THE MEETING"
    llm = load_asr_pipeline(str(converted_llm_dir), quantize="int8")
    assert is_quantized(llm.model)
    assert llm(audio)["text"] == "我们开会吧 let us start the meeting"


def test_pipeline_quantize_argument_errors(converted_aed_dir):
    with pytest.raises(ValueError, match="unknown quantization"):
        load_asr_pipeline(str(converted_aed_dir), quantize="int4")
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_asr_pipeline(str(converted_aed_dir), quantize="int8", device="cuda")
    with pytest.raises(ValueError, match="float32"):
        load_asr_pipeline(str(converted_aed_dir), quantize="int8", dtype=torch.bfloat16)


def test_command_line_quantize_flag(converted_aed_dir, fixtures_dir, capsys):
    from fireredasr_hf import cli

    threads = torch.get_num_threads()
    wav = str(fixtures_dir / "audio" / "p02.wav")
    common = ["transcribe", "--model", str(converted_aed_dir), "--num-threads", "1", "--no-progress"]
    try:
        assert cli.main([*common, "--quantize", "int8", wav]) == 0
        assert capsys.readouterr().out == "p02\tTURN ON THE LIGHT\n"
        assert cli.main([*common, "--quantize", "int8", "--dtype", "bfloat16", wav]) == 2
        assert "drop dtype" in capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)
