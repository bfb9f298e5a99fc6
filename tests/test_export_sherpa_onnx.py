"""Export to sherpa-onnx: the ONNX graphs against the model, and sherpa-onnx's own recogniser on the exported files."""

import copy

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from fireredasr_hf import FireRedAedForConditionalGeneration, cli
from fireredasr_hf.export import ExportError, decoder_feeds, export_sherpa_onnx, write_tokens
from fireredasr_hf.quantization import quantize_model

onnxruntime = pytest.importorskip("onnxruntime")
sherpa_onnx = pytest.importorskip("sherpa_onnx")

UTTERANCES = [f"p{index:02d}" for index in range(1, 11)]
TRAINING_UTTERANCES = UTTERANCES[:8]  # the tiny model was over-fitted on p01-p08; p09, p10 are held out
SAMPLING_RATE = 16000


@pytest.fixture(scope="module")
def model(converted_aed_dir):
    return FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir).eval()


@pytest.fixture(scope="module")
def processor(converted_aed_dir):
    return AutoProcessor.from_pretrained(converted_aed_dir)


@pytest.fixture(scope="module")
def fp32_export(converted_aed_dir, tmp_path_factory):
    return export_sherpa_onnx(str(converted_aed_dir), tmp_path_factory.mktemp("sherpa-fp32"))


@pytest.fixture(scope="module")
def int8_export(converted_aed_dir, tmp_path_factory):
    return export_sherpa_onnx(str(converted_aed_dir), tmp_path_factory.mktemp("sherpa-int8"), int8=True)


@pytest.fixture(scope="module")
def greedy_tokens(model, processor, fixture_clips):
    """Our greedy transcripts (token strings) of the fixture utterances."""
    tokens = {}
    for uttid, clip in fixture_clips.items():
        inputs = processor(clip, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        ids = model.generate(**inputs, num_beams=1)[0, 1:].tolist()
        ids = ids[: ids.index(model.config.eos_token_id)] if model.config.eos_token_id in ids else ids
        tokens[uttid] = processor.tokenizer.convert_ids_to_tokens(ids)
    return tokens


def sherpa_tokens(export, clips) -> dict[str, list[str]]:
    recognizer = sherpa_onnx.OfflineRecognizer.from_fire_red_asr(num_threads=1, **export.recognizer_kwargs())
    tokens = {}
    for uttid, clip in clips.items():
        stream = recognizer.create_stream()
        stream.accept_waveform(SAMPLING_RATE, clip)
        recognizer.decode_stream(stream)
        # sherpa-onnx prints a piece's leading "▁" as a space.
        tokens[uttid] = ["▁" + token[1:] if token.startswith(" ") else token for token in stream.result.tokens]
    return tokens


def sherpa_token_limit(clip) -> int:
    """sherpa-onnx 2.x stops its greedy search after 8 tokens per second of audio (counted in fbank frames)."""
    num_frames = 1 + (len(clip) - 400) // 160
    return num_frames * 8 // 100


def test_sherpa_onnx_gives_our_greedy_transcripts(fp32_export, greedy_tokens, fixture_clips):
    produced = sherpa_tokens(fp32_export, fixture_clips)
    for uttid, ours in greedy_tokens.items():
        theirs = produced[uttid]
        # Token for token; where sherpa-onnx's length limit cuts a transcript, the part it decoded.
        assert theirs == ours[: len(theirs)], uttid
        assert len(theirs) == min(len(ours), sherpa_token_limit(fixture_clips[uttid])), uttid
    # The limit cuts only p02 (1.16 s, 9 tokens allowed, "TURN ON THE LIGHT" has 10).
    assert sum(produced[uttid] == greedy_tokens[uttid] for uttid in UTTERANCES) == 9


def test_int8_export_agrees_on_the_training_utterances(int8_export, fp32_export, fixture_clips):
    training = {uttid: fixture_clips[uttid] for uttid in TRAINING_UTTERANCES}
    assert sherpa_tokens(int8_export, training) == sherpa_tokens(fp32_export, training)
    assert {path.name for path in int8_export.files.values()} == {
        "encoder.int8.onnx",
        "decoder.int8.onnx",
        "tokens.txt",
    }
    fp32_bytes = sum(fp32_export.files[name].stat().st_size for name in ("encoder", "decoder"))
    int8_bytes = sum(int8_export.files[name].stat().st_size for name in ("encoder", "decoder"))
    assert int8_bytes < 0.6 * fp32_bytes


def test_encoder_graph_gives_the_cross_attention_keys_and_values(fp32_export, model, processor, fixture_clips):
    session = onnxruntime.InferenceSession(str(fp32_export.files["encoder"]))
    inputs = processor([fixture_clips["p01"], fixture_clips["p02"]], sampling_rate=SAMPLING_RATE, return_tensors="pt")
    lengths = inputs["attention_mask"].sum(-1)
    keys, values = session.run(None, {"features": inputs["input_features"].numpy(), "features_length": lengths.numpy()})
    with torch.no_grad():
        encoder_outputs = model.model.encoder(inputs["input_features"], attention_mask=inputs["attention_mask"])
        hidden = encoder_outputs.last_hidden_state
        layers = model.model.decoder.layers
        expected_keys = torch.stack([layer.encoder_attn.k_proj(hidden) for layer in layers]).numpy()
        expected_values = torch.stack([layer.encoder_attn.v_proj(hidden) for layer in layers]).numpy()
    assert keys.shape == (len(layers), 2, hidden.shape[1], model.config.hidden_size)
    valid = encoder_outputs.attention_mask.bool().numpy()  # padded frames of the shorter utterance are masked later
    for row in range(2):
        np.testing.assert_allclose(keys[:, row, valid[row]], expected_keys[:, row, valid[row]], atol=1e-4)
        np.testing.assert_allclose(values[:, row, valid[row]], expected_values[:, row, valid[row]], atol=1e-4)


def test_decoder_graph_steps_give_the_model_logits(fp32_export, model, processor, fixture_clips):
    """Cached single-token steps and a multi-token call over sherpa-onnx's preallocated cache equal the model's
    teacher-forced logits."""
    encoder = onnxruntime.InferenceSession(str(fp32_export.files["encoder"]))
    decoder = onnxruntime.InferenceSession(str(fp32_export.files["decoder"]))
    inputs = processor(fixture_clips["p04"], sampling_rate=SAMPLING_RATE, return_tensors="pt")
    cross_k, cross_v = encoder.run(
        None,
        {"features": inputs["input_features"].numpy(), "features_length": inputs["attention_mask"].sum(-1).numpy()},
    )
    tokens = [model.config.decoder_start_token_id] + processor.tokenizer("我们开会吧 LET US")["input_ids"][:-1]
    with torch.no_grad():
        expected = model(**inputs, decoder_input_ids=torch.tensor([tokens])).logits[0].numpy()

    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    cache_shape = (config.num_hidden_layers, 1, len(tokens) + 4, config.num_attention_heads, head_dim)
    self_k, self_v = np.zeros(cache_shape, np.float32), np.zeros(cache_shape, np.float32)
    for position, token in enumerate(tokens):
        logits, self_k, self_v = decoder.run(
            None,
            decoder_feeds(np.array([[token]]), self_k, self_v, cross_k, cross_v, np.array([position])),
        )
        np.testing.assert_allclose(logits[0, 0], expected[position], atol=1e-4, rtol=1e-4)

    # All tokens at once from an empty cache: a causal pass over the cache positions.
    empty = np.zeros(cache_shape, np.float32)
    logits, _, _ = decoder.run(None, decoder_feeds(np.array([tokens]), empty, empty, cross_k, cross_v, np.array([0])))
    np.testing.assert_allclose(logits[0], expected, atol=1e-4, rtol=1e-4)


def test_metadata_and_tokens(fp32_export, model, processor):
    import onnx

    metadata = {entry.key: entry.value for entry in onnx.load(str(fp32_export.files["encoder"])).metadata_props}
    config = model.config
    assert metadata["num_decoder_layers"] == str(config.num_hidden_layers)
    assert metadata["num_head"] == str(config.num_attention_heads)
    assert metadata["head_dim"] == str(config.hidden_size // config.num_attention_heads)
    assert (metadata["sos"], metadata["eos"]) == ("3", "4")
    assert metadata["max_len"] == str(config.max_position_embeddings)
    means = [float(value) for value in metadata["cmvn_mean"].split(",")]
    inverse_stds = [float(value) for value in metadata["cmvn_inv_stddev"].split(",")]
    assert means == processor.feature_extractor.cmvn_means
    assert inverse_stds == processor.feature_extractor.cmvn_inverse_stds

    lines = fp32_export.files["tokens"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == config.vocab_size
    assert lines[:5] == ["<blank> 0", "<unk> 1", "<pad> 2", "<sos> 3", "<eos> 4"]
    assert lines[10] == f"{processor.tokenizer.convert_ids_to_tokens(10)} 10"


def test_tokens_file_writes_the_space_token_and_refuses_unwritable_ones(tmp_path):
    class Tokenizer:
        def __init__(self, symbols):
            self.symbols = symbols

        def convert_ids_to_tokens(self, ids):
            return [self.symbols[index] for index in ids]

    path = write_tokens(Tokenizer(["<blank>", " ", "▁A"]), 3, tmp_path / "tokens.txt")
    assert path.read_text(encoding="utf-8") == "<blank> 0\n<space> 1\n▁A 2\n"
    with pytest.raises(ExportError, match="whitespace"):
        write_tokens(Tokenizer(["<blank>", "a b"]), 2, tmp_path / "bad.txt")


def test_fireredasr2_aed_exports_its_decoder_and_its_ctc_head(converted_aed2_dir, fixture_clips, tmp_path):
    """A FireRedASR2-AED (here the tiny trained AED with a random CTC head, converted from the v2 layout): the
    encoder/decoder pair sherpa-onnx runs for v1 and v2 AED models, and the CTC head as its `fire-red-asr-2-ctc`
    model, each giving our greedy transcripts."""
    model = FireRedAedForConditionalGeneration.from_pretrained(converted_aed2_dir).eval()
    processor = AutoProcessor.from_pretrained(converted_aed2_dir)
    export = export_sherpa_onnx(str(converted_aed2_dir), tmp_path)
    assert sorted(export.files) == ["ctc", "decoder", "encoder", "tokens"]
    clips = {uttid: fixture_clips[uttid] for uttid in ("p01", "p04")}
    for uttid, tokens in sherpa_tokens(export, clips).items():
        inputs = processor(clips[uttid], sampling_rate=SAMPLING_RATE, return_tensors="pt")
        ids = model.generate(**inputs, num_beams=1)[0, 1:].tolist()
        ids = ids[: ids.index(model.config.eos_token_id)]
        assert tokens == processor.tokenizer.convert_ids_to_tokens(ids)

    recognizer = sherpa_onnx.OfflineRecognizer.from_fire_red_asr_ctc(
        model=str(export.files["ctc"]), tokens=str(export.files["tokens"]), num_threads=1
    )
    for uttid, clip in clips.items():
        stream = recognizer.create_stream()
        stream.accept_waveform(SAMPLING_RATE, clip)
        recognizer.decode_stream(stream)
        inputs = processor(clip, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        with torch.no_grad():
            best = model.get_ctc_log_probs(model.get_encoder()(**inputs).last_hidden_state)[0].argmax(-1).tolist()
        blank = model.config.ctc_blank_id
        collapsed = [
            token for index, token in enumerate(best) if token != blank and (index == 0 or token != best[index - 1])
        ]
        expected = processor.tokenizer.convert_ids_to_tokens(collapsed)
        assert len(expected) > 3  # the random head emits tokens
        assert [token.replace(" ", "▁") for token in stream.result.tokens] == expected


def test_export_refuses_llm_and_quantized_models(fixtures_dir, converted_llm_dir, model, processor, tmp_path):
    with pytest.raises(ExportError, match="FireRedASR-LLM model"):
        export_sherpa_onnx(str(fixtures_dir / "llm-tiny"), tmp_path / "llm")
    with pytest.raises(ExportError, match="fireredasr_llm model"):
        export_sherpa_onnx(str(converted_llm_dir), tmp_path / "llm")
    with pytest.raises(ExportError, match="quantized"):
        export_sherpa_onnx(quantize_model(copy.deepcopy(model)), tmp_path / "int8", processor=processor)


def test_export_command(converted_aed_dir, tmp_path, capsys):
    output = tmp_path / "out"
    assert cli.main(["export", "--format", "sherpa-onnx", str(converted_aed_dir), str(output)]) == 0
    assert sorted(path.name for path in output.iterdir()) == ["decoder.onnx", "encoder.onnx", "tokens.txt"]
    assert "from_fire_red_asr(" in capsys.readouterr().err
    assert cli.main(["export", "--format", "sherpa-onnx", str(tmp_path / "missing"), str(output)]) == 2
    assert "neither an existing directory nor a Hub repo id" in capsys.readouterr().err


def test_models_past_the_protobuf_limit_keep_their_weights_beside_them(
    converted_aed_dir, fixture_clips, fp32_export, tmp_path, monkeypatch
):
    """A float32 FireRedASR-AED-L encoder is over protobuf's 2 GB: such files are written with `<name>.data`
    (checked here with the limit lowered), sherpa-onnx reads them, and int8 quantization starts from them."""
    from fireredasr_hf.export import sherpa

    monkeypatch.setattr(sherpa, "PROTOBUF_LIMIT_BYTES", 100_000)
    large = export_sherpa_onnx(str(converted_aed_dir), tmp_path / "fp32")
    assert sorted(path.name for path in (tmp_path / "fp32").iterdir()) == [
        "decoder.onnx",
        "decoder.onnx.data",
        "encoder.onnx",
        "encoder.onnx.data",
        "tokens.txt",
    ]
    subset = {uttid: fixture_clips[uttid] for uttid in ("p01", "p04")}
    assert sherpa_tokens(large, subset) == sherpa_tokens(fp32_export, subset)
    quantized = export_sherpa_onnx(str(converted_aed_dir), tmp_path / "int8", int8=True)
    assert sherpa_tokens(quantized, subset) == sherpa_tokens(fp32_export, subset)


def test_export_leaves_the_callers_model_as_it_was(model, processor, tmp_path):
    model.train()
    try:
        export_sherpa_onnx(model, tmp_path, processor=processor)
        assert model.training and model.config._attn_implementation == "sdpa"
    finally:
        model.eval()
    export_sherpa_onnx(copy.deepcopy(model).to(torch.bfloat16), tmp_path / "bf16", processor=processor)
    assert (tmp_path / "bf16" / "decoder.onnx").is_file()
