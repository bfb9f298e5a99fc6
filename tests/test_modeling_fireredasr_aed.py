"""FireRedASR-AED against the goldens of the original code, plus the transformers contracts (cache, loss,
save/load, remote code, dtypes, batching)."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, GenerationConfig

import fireredasr_hf  # noqa: F401  (registers the Auto classes)
from fireredasr_hf import FireRedAedConfig, FireRedAedForConditionalGeneration, FireRedEncoderConfig


UTTERANCES = [f"p{i:02d}" for i in range(1, 11)]
# The original's decode settings of the goldens (FireRedAsrAed.transcribe arguments) in generate() terms.
SETTINGS = {
    "a": dict(num_beams=1, num_return_sequences=1, softmax_smoothing=1.0, gnmt_length_penalty=0.0, eos_penalty=1.0),
    "b": dict(num_beams=3, num_return_sequences=3, softmax_smoothing=1.25, gnmt_length_penalty=0.6, eos_penalty=1.0),
    "c": dict(num_beams=5, num_return_sequences=2, softmax_smoothing=1.0, gnmt_length_penalty=1.0, eos_penalty=0.8),
    "d": dict(
        num_beams=3,
        num_return_sequences=3,
        softmax_smoothing=1.25,
        gnmt_length_penalty=0.6,
        eos_penalty=1.0,
        max_new_tokens=8,
    ),
}
EOS, PAD = 4, 2


@pytest.fixture(scope="module")
def goldens(fixtures_dir):
    golden = fixtures_dir / "golden" / "aed-tiny"
    return {
        "features": np.load(golden / "features.npz"),
        "encoder": np.load(golden / "encoder.npz"),
        "decoder": np.load(golden / "decoder.npz"),
        "decode": json.loads((golden / "decode.json").read_text())["decode"],
    }


@pytest.fixture(scope="module")
def model(converted_aed_dir):
    return AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed_dir).eval()


def features(goldens, utt):
    return torch.from_numpy(goldens["features"][f"feats.{utt}"]).unsqueeze(0)


def padded_batch(goldens):
    feats = [torch.from_numpy(goldens["features"][f"feats.{u}"]) for u in UTTERANCES]
    batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    lengths = torch.tensor([f.shape[0] for f in feats])
    return batch, (torch.arange(batch.shape[1]) < lengths[:, None]).long()


def hypothesis_ids(sequence: list[int], finished: bool) -> list[int]:
    """The original's `yseq`: tokens after <sos>, before <eos> (an unfinished hypothesis is only padded)."""
    end = sequence.index(EOS) if EOS in sequence else len(sequence)
    ids = sequence[1:end]
    while not finished and ids and ids[-1] == PAD:
        ids.pop()
    return ids


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_encoder_matches_original(model, goldens, attn_implementation):
    model.set_attn_implementation(attn_implementation)
    worst = 0.0
    with torch.no_grad():
        for utt in UTTERANCES:
            golden = torch.from_numpy(goldens["encoder"][f"enc.{utt}"])
            output = model.get_encoder()(features(goldens, utt))
            assert output.last_hidden_state.shape[1:] == golden.shape
            assert output.attention_mask.sum().item() == goldens["encoder"][f"enc_len.{utt}"]
            worst = max(worst, (output.last_hidden_state[0] - golden).abs().max().item())
    model.set_attn_implementation("sdpa")
    assert worst <= 1e-4 * max(1.0, float(np.abs(goldens["encoder"]["enc.p01"]).max()))


def test_padded_batch_encoder_matches_original(model, goldens):
    batch, attention_mask = padded_batch(goldens)
    with torch.no_grad():
        output = model.get_encoder()(batch, attention_mask=attention_mask)
    golden_mask = torch.from_numpy(goldens["encoder"]["batch.enc_mask"][:, 0]).long()
    assert torch.equal(output.attention_mask, golden_mask)
    valid = golden_mask.bool()
    golden = torch.from_numpy(goldens["encoder"]["batch.enc"])
    assert (output.last_hidden_state - golden)[valid].abs().max().item() <= 1e-4


def test_decoding_encodes_a_padded_cpu_batch_one_utterance_at_a_time(model, goldens, monkeypatch):
    from fireredasr_hf import modeling_fireredasr_encoder
    from fireredasr_hf.modeling_fireredasr_encoder import encode_for_decoding

    batch, attention_mask = padded_batch(goldens)
    encoder = model.get_encoder()
    calls, forward = [], encoder.forward

    def counting_forward(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(encoder, "forward", counting_forward)
    with torch.no_grad():
        batched = encoder(batch, attention_mask=attention_mask)
        calls.clear()
        alone = encode_for_decoding(encoder, batch, attention_mask)
        assert len(calls) == len(UTTERANCES)  # the fixture clips differ in length: one call per utterance
        assert torch.equal(alone.attention_mask, batched.attention_mask)
        assert alone.last_hidden_state.shape == batched.last_hidden_state.shape
        valid = batched.attention_mask.bool()
        assert (alone.last_hidden_state - batched.last_hidden_state)[valid].abs().max().item() <= 1e-4
        assert not alone.last_hidden_state[~valid].any()
        # Little padding: one batched call.
        monkeypatch.setattr(modeling_fireredasr_encoder, "MAX_PADDING_SHARE", 1.0)
        calls.clear()
        encode_for_decoding(encoder, batch, attention_mask)
        assert len(calls) == 1


@pytest.mark.parametrize("setting", ["a", "b"])
def test_teacher_forced_logits_match_original(model, goldens, setting):
    with torch.no_grad():
        for utt in UTTERANCES:
            decoder_input_ids = torch.from_numpy(goldens["decoder"][f"tf_ys_in.{setting}.{utt}"]).unsqueeze(0)
            logits = model(features(goldens, utt), decoder_input_ids=decoder_input_ids).logits[0]
            golden = torch.from_numpy(goldens["decoder"][f"tf_logits.{setting}.{utt}"])
            assert (logits - golden).abs().max().item() <= 1e-4 * max(1.0, golden.abs().max().item())


def test_cached_decoding_equals_uncached(model, goldens):
    ids = torch.from_numpy(goldens["decoder"]["tf_ys_in.b.p04"]).unsqueeze(0)
    inputs = features(goldens, "p04")
    with torch.no_grad():
        full = model(inputs, decoder_input_ids=ids, use_cache=False).logits[0]
        encoder_outputs = model.get_encoder()(inputs)
        cache, steps = None, []
        for position in range(ids.shape[1]):
            out = model(
                encoder_outputs=encoder_outputs,
                decoder_input_ids=ids[:, position : position + 1],
                cache=cache,
                use_cache=True,
            )
            cache = out.cache
            steps.append(out.logits[0, -1])
    assert (torch.stack(steps) - full).abs().max().item() < 1e-4
    assert cache.get_seq_length() == ids.shape[1]


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_generate_reproduces_original_nbest(model, goldens, setting):
    for utt in UTTERANCES:
        out = model.generate(features(goldens, utt), return_dict_in_generate=True, **SETTINGS[setting])
        expected = goldens["decode"][setting]["bs1"][utt]["nbest"]
        assert out.sequences.shape[0] == len(expected)
        for rank, hypothesis in enumerate(expected):
            assert hypothesis_ids(out.sequences[rank].tolist(), hypothesis["finished"]) == hypothesis["ids"], (
                setting,
                utt,
                rank,
            )
            assert out.sequences_scores[rank].item() == pytest.approx(hypothesis["score"], abs=1e-4)


def test_default_generation_is_the_release_recommendation(model, converted_aed_dir, goldens):
    """A converted checkpoint decodes with setting (b) without any arguments; texts equal the original's."""
    processor = AutoProcessor.from_pretrained(converted_aed_dir)
    config = model.generation_config
    assert (config.num_beams, config.softmax_smoothing, config.gnmt_length_penalty, config.eos_penalty) == (
        3,
        1.25,
        0.6,
        1.0,
    )
    for utt in UTTERANCES:
        sequences = model.generate(features(goldens, utt))
        text = processor.batch_decode(sequences[:, 1:], skip_special_tokens=False)[0]
        text = text.replace("<eos>", "").replace("<pad>", "").strip()
        assert text == goldens["decode"]["b"]["bs1"][utt]["nbest"][0]["text"]


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_batch_gives_each_utterance_its_single_result(model, goldens, setting):
    batch, attention_mask = padded_batch(goldens)
    kwargs = SETTINGS[setting]
    out = model.generate(batch, attention_mask=attention_mask, return_dict_in_generate=True, **kwargs)
    k = kwargs["num_return_sequences"]
    differs_from_original_batch = set()
    for n, utt in enumerate(UTTERANCES):
        for rank in range(k):
            sequence = out.sequences[n * k + rank].tolist()
            single = goldens["decode"][setting]["bs1"][utt]["nbest"][rank]
            assert hypothesis_ids(sequence, single["finished"]) == single["ids"]
            original_batch = goldens["decode"][setting]["batch"][utt]["nbest"][rank]
            if hypothesis_ids(sequence, original_batch["finished"]) != original_batch["ids"]:
                differs_from_original_batch.add((utt, rank + 1))
    # Where the original's batch result depends on the padded length (its maxlen), ours follows the single result.
    expected = {"a": set(), "b": {("p10", 2), ("p10", 3)}, "c": {("p05", 2), ("p10", 1), ("p10", 2)}, "d": set()}
    assert differs_from_original_batch == expected[setting]


def test_standard_generation_strategies(model, goldens):
    inputs = features(goldens, "p03")
    expected = goldens["decode"]["a"]["bs1"]["p03"]["nbest"][0]["ids"]
    greedy = model.generate(inputs, use_fireredasr_beam_search=False, num_beams=1)
    assert hypothesis_ids(greedy[0].tolist(), True) == expected
    beams = model.generate(
        inputs,
        use_fireredasr_beam_search=False,
        num_beams=2,
        num_return_sequences=2,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert beams.sequences.shape[0] == 2 and beams.sequences_scores is not None
    assert hypothesis_ids(beams.sequences[0].tolist(), True) == expected
    limited = model.generate(inputs, use_fireredasr_beam_search=False, num_beams=1, max_new_tokens=3)
    assert limited.shape[1] <= 4


def test_fireredasr_beam_search_outputs(model, goldens):
    out = model.generate(
        features(goldens, "p02"),
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
        num_return_sequences=2,
    )
    assert out.sequences.shape[0] == 2
    assert len(out.scores) == len(out.logits) > 0
    assert out.scores[0].shape == (3, model.config.vocab_size)
    assert out.beam_indices.shape == out.sequences.shape
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(features(goldens, "p02"), num_return_sequences=4)
    with pytest.raises(ValueError, match="eos_penalty"):
        model.generate(features(goldens, "p02"), eos_penalty=1.5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_gives_the_goldens_transcripts(converted_aed_dir, goldens, dtype):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed_dir, dtype=dtype).eval()
    for utt in UTTERANCES[:8]:  # the training utterances; held-out garbage has tiny margins
        sequences = model.generate(features(goldens, utt).to(dtype))
        assert hypothesis_ids(sequences[0].tolist(), True) == goldens["decode"]["b"]["bs1"][utt]["nbest"][0]["ids"]


def tiny_config(**kwargs):
    encoder = FireRedEncoderConfig(
        hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=64, conv_kernel_size=5
    )
    return FireRedAedConfig(
        encoder_config=encoder,
        vocab_size=50,
        hidden_size=32,
        num_attention_heads=4,
        num_hidden_layers=2,
        intermediate_size=64,
        **kwargs,
    )


def test_loss_with_padded_labels_and_training_step():
    torch.manual_seed(0)
    model = FireRedAedForConditionalGeneration(tiny_config()).train()
    inputs = torch.randn(2, 60, 80)
    attention_mask = torch.ones(2, 60, dtype=torch.long)
    attention_mask[1, 40:] = 0
    labels = torch.tensor([[10, 11, 12, 4], [13, 14, 4, -100]])
    out = model(inputs, attention_mask=attention_mask, labels=labels)
    valid = labels != -100
    manual = torch.nn.functional.cross_entropy(out.logits[valid], labels[valid])
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-5)
    # decoder inputs are the labels shifted right behind <sos>, -100 replaced by <pad>
    decoder_inputs = fireredasr_hf.modeling_fireredasr_aed.shift_tokens_right(labels, 2, 3)
    assert decoder_inputs.tolist() == [[3, 10, 11, 12], [3, 13, 14, 4]]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.config.dropout = 0.0
    losses = []
    for _ in range(20):
        loss = model(inputs, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_freezing():
    model = FireRedAedForConditionalGeneration(tiny_config())
    model.freeze_encoder()
    assert not any(p.requires_grad for p in model.model.encoder.parameters())
    assert all(p.requires_grad for p in model.model.decoder.parameters())
    model.freeze_decoder()
    assert not model.proj_out.weight.requires_grad


def test_spec_augment_only_in_training():
    config = tiny_config()
    config.encoder_config.apply_spec_augment = True
    config.encoder_config.mask_time_prob = 0.5
    config.encoder_config.mask_feature_prob = 0.3
    model = FireRedAedForConditionalGeneration(config)
    encoder = model.get_encoder()
    inputs = torch.randn(2, 100, 80)
    encoder.train()
    masked = encoder._mask_input_features(inputs, None)
    assert (masked == 0).any() and not (inputs == 0).any()
    encoder.eval()
    with torch.no_grad():
        first, second = encoder(inputs).last_hidden_state, encoder(inputs).last_hidden_state
    assert torch.equal(first, second)


def test_save_load_round_trip_ties_and_stores_projection_once(tmp_path):
    torch.manual_seed(0)
    model = FireRedAedForConditionalGeneration(tiny_config()).eval()
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "proj_out.weight" not in keys and "model.decoder.embed_tokens.weight" in keys
    reloaded = AutoModelForSpeechSeq2Seq.from_pretrained(tmp_path).eval()
    assert reloaded.proj_out.weight.data_ptr() == reloaded.model.decoder.embed_tokens.weight.data_ptr()
    inputs = torch.randn(1, 50, 80)
    ids = torch.tensor([[3, 7, 8]])
    with torch.no_grad():
        assert torch.equal(model(inputs, decoder_input_ids=ids).logits, reloaded(inputs, decoder_input_ids=ids).logits)


def test_generation_config_knobs_survive_save(tmp_path):
    config = GenerationConfig(
        use_fireredasr_beam_search=True, softmax_smoothing=1.25, gnmt_length_penalty=0.6, eos_penalty=0.9, num_beams=3
    )
    config.save_pretrained(tmp_path)
    reloaded = GenerationConfig.from_pretrained(tmp_path)
    assert (reloaded.softmax_smoothing, reloaded.gnmt_length_penalty, reloaded.eos_penalty) == (1.25, 0.6, 0.9)


def test_long_input_warns_and_runs_past_the_original_limit(caplog):
    """The release fails beyond 5000 encoder frames (~200 s); positions here are computed for any length."""
    torch.manual_seed(0)
    encoder = FireRedEncoderConfig(
        hidden_size=8, num_attention_heads=2, num_hidden_layers=1, intermediate_size=16, conv_kernel_size=3
    )
    config = FireRedAedConfig(
        encoder_config=encoder,
        vocab_size=20,
        hidden_size=8,
        num_attention_heads=2,
        num_hidden_layers=1,
        intermediate_size=16,
    )
    model = FireRedAedForConditionalGeneration(config).eval()
    frames = 20_400  # 204 s -> 5100 encoder frames
    with caplog.at_level("WARNING"):
        sequences = model.generate(torch.randn(1, frames, 80), max_new_tokens=2, num_beams=1)
    assert sequences.shape[1] <= 4
    assert "longer than the 60 s" in caplog.text


def test_trust_remote_code_in_a_fresh_process(converted_aed_dir, goldens, tmp_path):
    """The converted directory carries its code: it loads where fireredasr_hf cannot be imported."""
    np.save(tmp_path / "feats.npy", goldens["features"]["feats.p01"])
    from conftest import run_without_the_package

    result = run_without_the_package(
        f"""
        import numpy as np, torch
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor
        model = AutoModelForSpeechSeq2Seq.from_pretrained({str(converted_aed_dir)!r}, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained({str(converted_aed_dir)!r}, trust_remote_code=True)
        feats = torch.from_numpy(np.load({str(tmp_path / "feats.npy")!r}))[None]
        print("TEXT=" + processor.batch_decode(model.generate(feats), skip_special_tokens=True)[0])
        """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TEXT=" + goldens["decode"]["b"]["bs1"]["p01"]["nbest"][0]["text"] in result.stdout


def test_generate_runs_the_encoder_without_autograd():
    """Encoder activations kept for backward would cost GBs on long inputs at full size."""
    model = FireRedAedForConditionalGeneration(tiny_config()).eval()
    grad_enabled = []
    model.get_encoder().register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
    model.generate(torch.randn(1, 40, 80), num_beams=2)
    model.generate(torch.randn(1, 40, 80), use_fireredasr_beam_search=True)
    assert grad_enabled == [False, False]
