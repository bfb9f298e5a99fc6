"""FireRedASR-LLM model, processor and generation: parity with the original code's goldens (llm-tiny), batches that
decode like single utterances, dtypes, the ASR pipeline, training loss, cached decoding and freezing."""

import json

import numpy as np
import pytest
import soundfile
import torch
from test_conversion_llm import converted_llm_dir

from fireredasr_hf.configuration_fireredasr import FireRedLlmConfig
from fireredasr_hf.modeling_fireredasr_llm import FireRedLlmAdapter, FireRedLlmForSpeechSeq2Seq
from fireredasr_hf.processing_fireredasr_llm import FireRedLlmProcessor

UTTERANCES = ["p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10"]
SETTINGS = {
    "beam3_rep3_lp1": {"num_beams": 3, "repetition_penalty": 3.0, "length_penalty": 1.0},
    "beam1_rep1_lp0": {"num_beams": 1, "repetition_penalty": 1.0},
}
PAD = 151643


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    directory = fixtures_dir / "golden" / "llm-tiny"
    return json.loads((directory / "llm.json").read_text()), np.load(directory / "llm.npz")


@pytest.fixture(scope="module")
def golden_features(fixtures_dir):
    """The original front end's CMVN features (same cmvn.ark as llm-tiny)."""
    return np.load(fixtures_dir / "golden" / "aed-tiny" / "features.npz")


@pytest.fixture(scope="module")
def audio(fixtures_dir):
    return {u: soundfile.read(fixtures_dir / "audio" / f"{u}.wav", dtype="float32")[0] for u in UTTERANCES}


@pytest.fixture(scope="module")
def model_dir(fixtures_dir, tmp_path_factory):
    return converted_llm_dir(fixtures_dir, tmp_path_factory, "float32")


@pytest.fixture(scope="module")
def model(model_dir):
    return FireRedLlmForSpeechSeq2Seq.from_pretrained(model_dir).eval()


@pytest.fixture(scope="module")
def processor(model_dir):
    return FireRedLlmProcessor.from_pretrained(model_dir)


def assert_generated(ids: torch.Tensor, expected: list[int]):
    """`ids` = the expected tokens, then only padding."""
    ids = ids.tolist()
    assert ids[: len(expected)] == expected and set(ids[len(expected) :]) <= {PAD}, (ids, expected)


def tiny_config() -> FireRedLlmConfig:
    """A random model with a 100-token vocabulary (speech 99, pad 0, bos 1, end 2)."""
    return FireRedLlmConfig(
        encoder_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
        text_config={
            "model_type": "qwen2",
            "vocab_size": 100,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "tie_word_embeddings": True,
        },
        adapter_hidden_size=48,
        speech_token_id=99,
        prompt_ids=[1, 5, 99, 6, 2, 1, 7],
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return FireRedLlmForSpeechSeq2Seq(tiny_config()).eval()


def test_adapter_splices_frames_and_drops_the_odd_one():
    adapter = FireRedLlmAdapter(tiny_config())
    hidden_states = torch.randn(2, 7, 32)
    speech_embeds, lengths = adapter(hidden_states, torch.tensor([7, 4]))
    assert speech_embeds.shape == (2, 3, 4 * 8) and lengths.tolist() == [3, 2]
    spliced = torch.cat([hidden_states[:, 2], hidden_states[:, 3]], dim=-1)
    expected = adapter.linear2(torch.relu(adapter.linear1(spliced)))
    torch.testing.assert_close(speech_embeds[:, 1], expected)


@pytest.mark.parametrize("utterance", UTTERANCES)
def test_audio_features_and_merged_embeddings_match_the_original(model, golden, golden_features, utterance):
    _, arrays = golden
    features = torch.from_numpy(golden_features[f"feats.{utterance}"])[None]
    with torch.no_grad():
        audio = model.get_audio_features(features)
        input_ids, _ = model.build_prompt(audio.speech_lengths)
        merged = model.merge_speech_embeds(input_ids, audio.speech_embeds, audio.speech_lengths)
    for name, ours in (
        ("enc", audio.encoder_last_hidden_state[0]),
        ("adapter", audio.speech_embeds[0]),
        ("inputs_embeds", merged[0]),
    ):
        expected = arrays[f"{name}.{utterance}"]
        tolerance = 1e-4 * max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=tolerance, err_msg=name)
    assert audio.speech_lengths.item() == arrays[f"adapter.{utterance}"].shape[0]
    assert input_ids[0].tolist().count(151646) == audio.speech_lengths.item()


@pytest.mark.parametrize("utterance", UTTERANCES)
def test_greedy_logits_and_tokens_match_the_original(model, golden, golden_features, utterance):
    references, arrays = golden
    features = torch.from_numpy(golden_features[f"feats.{utterance}"])[None]
    output = model.generate(features, **SETTINGS["beam1_rep1_lp0"], output_logits=True, return_dict_in_generate=True)
    assert_generated(output.sequences[0], references["bs1"]["beam1_rep1_lp0"][utterance]["ids"])
    logits = torch.stack(output.logits, dim=1)[0]
    top_ids = arrays[f"greedy_topk_ids.{utterance}"]
    top_logits = np.take_along_axis(logits.numpy(), top_ids, axis=-1)
    expected = arrays[f"greedy_topk_logits.{utterance}"]
    np.testing.assert_allclose(top_logits, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("utterance", ["p09"])
def test_beam_search_matches_the_original(model, processor, golden, audio, utterance):
    """p09 (held out) runs into its length limit (one token per speech position) without <|im_end|>; the batch test
    below checks the other utterances' beam search."""
    references, arrays = golden
    inputs = processor(audio=audio[utterance], sampling_rate=16000, return_tensors="pt")
    output = model.generate(**inputs, **SETTINGS["beam3_rep3_lp1"], return_dict_in_generate=True, output_scores=True)
    expected = references["bs1"]["beam3_rep3_lp1"][utterance]
    assert_generated(output.sequences[0], expected["ids"])
    np.testing.assert_allclose(
        output.sequences_scores.item(), arrays[f"sequences_scores.beam3_rep3_lp1.{utterance}"], atol=1e-4
    )
    text = processor.batch_decode(output.sequences, skip_special_tokens=True)[0]
    assert text == expected["text"]


def test_model_defaults_are_the_readme_settings(model, processor, golden, audio):
    references, _ = golden
    inputs = processor(audio=audio["p02"], sampling_rate=16000, return_tensors="pt")
    assert_generated(model.generate(**inputs)[0], references["bs1"]["beam3_rep3_lp1"]["p02"]["ids"])


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_batch_decodes_each_utterance_as_alone(model, processor, golden, audio, setting):
    """The original inserts the padded batch's speech and gives every utterance the batch's token limit, so 9 of 10
    batch transcripts differ from single-utterance ones; here each one equals its batch-size-1 golden."""
    references, _ = golden
    inputs = processor(audio=[audio[u] for u in UTTERANCES], sampling_rate=16000, return_tensors="pt")
    generated = model.generate(**inputs, **SETTINGS[setting])
    for row, utterance in zip(generated, UTTERANCES):
        assert_generated(row, references["bs1"][setting][utterance]["ids"])
    assert sum(references["batch"]["differs_from_bs1"].values()) == 9  # the original's batch output


def test_bfloat16_gives_the_fixture_transcripts(fixtures_dir, tmp_path_factory, golden, audio):
    references, _ = golden
    bf16_dir = converted_llm_dir(fixtures_dir, tmp_path_factory, "bfloat16")
    bf16_model = FireRedLlmForSpeechSeq2Seq.from_pretrained(bf16_dir).eval()
    assert bf16_model.dtype == torch.bfloat16
    bf16_processor = FireRedLlmProcessor.from_pretrained(bf16_dir)
    inputs = bf16_processor(audio=[audio[u] for u in UTTERANCES], sampling_rate=16000, return_tensors="pt")
    generated = bf16_model.generate(**inputs, **SETTINGS["beam1_rep1_lp0"])
    for row, utterance in zip(generated, UTTERANCES):
        assert_generated(row, references["bs1"]["beam1_rep1_lp0"][utterance]["ids"])
    inputs = bf16_processor(audio=audio["p02"], sampling_rate=16000, return_tensors="pt")
    assert_generated(bf16_model.generate(**inputs)[0], references["bs1"]["beam3_rep3_lp1"]["p02"]["ids"])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_onednn_packed_linear_layers_give_the_fixture_transcripts(fixtures_dir, tmp_path_factory, golden, audio, dtype):
    """`use_onednn_linear(prepack=True)` (what the command line runs on AMD CPUs): the batch-size-1 goldens."""
    from fireredasr_hf.cpu_linear import onednn_linear_available, use_onednn_linear

    if not onednn_linear_available():
        pytest.skip("this PyTorch build has no oneDNN")
    references, _ = golden
    directory = converted_llm_dir(fixtures_dir, tmp_path_factory, dtype)
    packed_model = FireRedLlmForSpeechSeq2Seq.from_pretrained(directory).eval()
    assert use_onednn_linear(packed_model, prepack=True) > 0
    processor = FireRedLlmProcessor.from_pretrained(directory)
    inputs = processor(audio=[audio[u] for u in UTTERANCES], sampling_rate=16000, return_tensors="pt")
    for row, utterance in zip(packed_model.generate(**inputs, **SETTINGS["beam1_rep1_lp0"]), UTTERANCES):
        assert_generated(row, references["bs1"]["beam1_rep1_lp0"][utterance]["ids"])


@pytest.mark.slow
def test_bfloat16_beam_batch_gives_the_fixture_transcripts(fixtures_dir, tmp_path_factory, golden, audio):
    references, _ = golden
    bf16_dir = converted_llm_dir(fixtures_dir, tmp_path_factory, "bfloat16")
    bf16_model = FireRedLlmForSpeechSeq2Seq.from_pretrained(bf16_dir).eval()
    inputs = FireRedLlmProcessor.from_pretrained(bf16_dir)(
        audio=[audio[u] for u in UTTERANCES], sampling_rate=16000, return_tensors="pt"
    )
    for row, utterance in zip(bf16_model.generate(**inputs), UTTERANCES):
        assert_generated(row, references["bs1"]["beam3_rep3_lp1"][utterance]["ids"])


def test_float16_is_refused(tiny_model):
    half_model = FireRedLlmForSpeechSeq2Seq(tiny_model.config).half()
    features = torch.randn(1, 40, 80)
    with pytest.raises(ValueError, match="does not run in float16"):
        half_model.generate(features)
    with pytest.raises(ValueError, match="does not run in float16"):
        half_model(input_features=features, labels=torch.tensor([[5, 6]]))


def test_token_limits_are_per_utterance(model, processor, golden, audio):
    references, _ = golden
    inputs = processor(audio=[audio["p05"], audio["p02"]], sampling_rate=16000, return_tensors="pt")
    for limit in ({"max_new_tokens": 3}, {"max_length": 3}):
        generated = model.generate(**inputs, **SETTINGS["beam1_rep1_lp0"], **limit)
        assert generated.shape == (2, 3)
        for row, utterance in zip(generated, ["p05", "p02"]):
            assert row.tolist() == references["bs1"]["beam1_rep1_lp0"][utterance]["ids"][:3]


def test_generate_takes_trainer_batches_and_rejects_prompts(model, processor, audio):
    inputs = processor(audio=[audio["p01"]], text=["今天天气很好"], sampling_rate=16000, return_tensors="pt")
    assert "labels" in inputs  # Seq2SeqTrainer passes them on to generate
    generated = model.generate(**inputs, **SETTINGS["beam1_rep1_lp0"])
    assert processor.batch_decode(generated, skip_special_tokens=True) == ["今天天气很好"]
    with pytest.raises(ValueError, match="builds the prompt"):
        model.generate(inputs["input_features"], input_ids=torch.tensor([[1, 2]]))


def test_cached_decoding_matches_full_forward(model, processor, audio):
    inputs = processor(audio=[audio["p06"], audio["p02"]], sampling_rate=16000, return_tensors="pt")
    output = model.generate(**inputs, num_beams=1, output_logits=True, return_dict_in_generate=True)
    step_logits = torch.stack(output.logits, dim=1)

    with torch.no_grad():
        audio_output = model.get_audio_features(inputs["input_features"], inputs["attention_mask"])
        prompt_ids, prompt_mask = model.build_prompt(audio_output.speech_lengths)
        input_ids = torch.cat([prompt_ids, output.sequences[:, :-1]], dim=1)
        attention_mask = torch.cat([prompt_mask, torch.ones_like(output.sequences[:, :-1])], dim=1)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            input_features=inputs["input_features"],
            input_features_mask=inputs["attention_mask"],
        ).logits[:, prompt_ids.shape[1] - 1 :]
    for row in range(2):
        num_steps = int((output.sequences[row] != PAD).sum())  # up to and including <|im_end|>
        scale = step_logits[row, :num_steps].abs().max()
        torch.testing.assert_close(logits[row, :num_steps], step_logits[row, :num_steps], rtol=0, atol=1e-5 * scale)


def test_training_loss_covers_the_transcript_only(model, processor, audio, fixtures_dir):
    transcripts = dict(line.split(" ", 1) for line in (fixtures_dir / "audio" / "text").read_text().splitlines())
    utterances = ["p01", "p04"]
    inputs = processor(
        audio=[audio[u] for u in utterances],
        text=[transcripts[u].upper() + "。" for u in utterances],  # normalised like the release's training text
        sampling_rate=16000,
        return_tensors="pt",
    )
    tokenizer = processor.tokenizer
    assert inputs["labels"][0].tolist() == tokenizer("今天天气很好")["input_ids"] + [-100] * (
        inputs["labels"].shape[1] - len(tokenizer("今天天气很好")["input_ids"])
    )
    loss = model(**inputs).loss
    # The tiny model was over-fitted on these utterances with the release's training template.
    assert loss.item() < 0.05

    with torch.no_grad():
        speech_lengths = model.get_audio_features(inputs["input_features"], inputs["attention_mask"]).speech_lengths
        input_ids, attention_mask, labels = model.build_training_inputs(inputs["labels"], speech_lengths)
        # p01: the template text with one placeholder per speech position, then the transcript and <|im_end|>.
        prompt = "<|im_start|>user\n<speech>请转写音频为文字<|im_end|>\n<|im_start|>assistant\n"
        expected = tokenizer(prompt + "今天天气很好<|im_end|>")["input_ids"]
        speech_index = expected.index(151646)
        expected[speech_index : speech_index + 1] = [151646] * speech_lengths[0].item()
        assert input_ids[0, : len(expected)].tolist() == expected
        assert attention_mask[0].sum().item() == len(expected)
        transcript_length = len(tokenizer("今天天气很好")["input_ids"]) + 1
        assert (labels[0] != -100).sum().item() == transcript_length
        assert labels[0, len(expected) - transcript_length : len(expected)].tolist() == expected[-transcript_length:]

        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_features=inputs["input_features"],
            input_features_mask=inputs["attention_mask"],
        ).logits
        manual = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100
        )
    torch.testing.assert_close(loss.detach(), manual)

    swapped = model(
        input_features=inputs["input_features"],
        attention_mask=inputs["attention_mask"],
        labels=inputs["labels"].flip(0),
    ).loss
    assert swapped.item() > 1.0


def test_labels_with_the_end_token_are_refused(tiny_model):
    with pytest.raises(ValueError, match="without the end token"):
        tiny_model(input_features=torch.randn(1, 40, 80), labels=torch.tensor([[5, 2]]))


@pytest.mark.parametrize("freeze", ["freeze_encoder", "freeze_adapter", "freeze_language_model"])
def test_freezing(freeze):
    torch.manual_seed(0)
    model = FireRedLlmForSpeechSeq2Seq(tiny_config()).train()
    getattr(model, freeze)()
    model(input_features=torch.randn(2, 50, 80), labels=torch.tensor([[5, 6, 7], [8, -100, -100]])).loss.backward()
    frozen = {"freeze_encoder": "encoder", "freeze_adapter": "adapter", "freeze_language_model": "language_model"}
    for part in ("encoder", "adapter", "language_model"):
        grads = [p.grad for p in getattr(model, part).parameters()]
        if part == frozen[freeze]:
            assert all(grad is None for grad in grads)
        else:
            assert any(grad is not None and grad.abs().sum() > 0 for grad in grads)


def test_very_short_audio_gets_one_token(tiny_model):
    # 4 fbank frames -> 1 encoder frame -> no adapter position; the release still generates one token.
    generated = tiny_model.generate(torch.randn(1, 4, 80), num_beams=1)
    assert generated.shape == (1, 1)


def test_processor_normalises_transcripts_like_the_release(processor):
    from fireredasr.tokenizer.llm_tokenizer import LlmTokenizerWrapper

    for text in ["你好，世界! Hello  World.", "我 们 开会吧 Let us  start", "《书》（注）·“引”、a/b\\c", " "]:
        assert processor.normalize_transcript(text) == LlmTokenizerWrapper.clean_text(text)
    labels = processor(text=["Turn on the LIGHT!", "你好"], return_tensors="pt")["labels"]
    assert processor.batch_decode(labels.masked_fill(labels == -100, PAD), skip_special_tokens=True) == [
        "turn on the light",
        "你好",
    ]
    with pytest.raises(ValueError, match="one transcript per utterance"):
        processor(audio=[np.zeros(1600, dtype=np.float32)], text=["a", "b"])


def test_pipeline_from_the_converted_directory(model_dir, golden, fixtures_dir, audio):
    from transformers import AutoProcessor, pipeline

    import fireredasr_hf  # noqa: F401  (registers the FireRedASR classes)

    assert isinstance(AutoProcessor.from_pretrained(model_dir), FireRedLlmProcessor)

    references, _ = golden
    asr = pipeline("automatic-speech-recognition", model=str(model_dir))
    assert asr.type == "seq2seq"
    assert asr(str(fixtures_dir / "audio" / "p02.wav"))["text"] == references["bs1"]["beam3_rep3_lp1"]["p02"]["text"]
    texts = [result["text"] for result in asr([audio["p01"], audio["p08"]], batch_size=2)]
    assert texts == [references["bs1"]["beam3_rep3_lp1"][u]["text"] for u in ("p01", "p08")]


def test_generation_config_argument_and_long_input_warning():
    from transformers import GenerationConfig
    from transformers.testing_utils import CaptureLogger

    from fireredasr_hf import modeling_fireredasr_encoder

    torch.manual_seed(0)
    config = tiny_config()
    config.max_audio_seconds = 0.5
    model = FireRedLlmForSpeechSeq2Seq(config).eval()
    model.generation_config.max_new_tokens = 2
    with CaptureLogger(modeling_fireredasr_encoder.logger) as captured:
        # 60 frames = 0.6 s; the model's max_new_tokens completes the given config
        generated = model.generate(torch.randn(1, 60, 80), generation_config=GenerationConfig(num_beams=2))
    assert "Input of 0.6 s is longer than" in captured.out
    assert generated.shape[1] <= 2
