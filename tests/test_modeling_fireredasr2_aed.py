"""FireRedASR2-AED against the live FireRedASR2 reference code (PyPI fasr-asr-firered 0.5.8, `fireredasr2/`): a
random model of a non-trivial shape built with the reference classes (encoder, CTC log-probabilities, n-best ids,
scores and confidences without and with LSTM language-model fusion, batches), and the fixtures' tiny AED with a CTC
head on the fixture audio (transcripts, confidences and word timestamps through `FireRedAsr2.transcribe`)."""

import argparse
import math
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import soundfile
import torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, pipeline

import fireredasr_hf  # noqa: F401  (registers the Auto classes)
from fireredasr_hf.conversion import convert_checkpoint
from fireredasr_hf.timestamps_fireredasr import hypothesis_end, word_timestamps
from fireredasr_hf.vad import SpeechSegment

EOS, PAD = 4, 2
UTTERANCES = [f"p{i:02d}" for i in range(1, 11)]
# FireRedASR2's recommended decoding, as `FireRedAsrAed.transcribe` arguments and as generate() arguments.
REFERENCE_SETTINGS = {"beam_size": 3, "nbest": 3, "softmax_smoothing": 1.25, "length_penalty": 0.6, "eos_penalty": 1.0}
OUR_SETTINGS = {
    "num_beams": 3, "num_return_sequences": 3, "softmax_smoothing": 1.25, "gnmt_length_penalty": 0.6, "eos_penalty": 1.0,
}  # fmt: skip
LM_WEIGHTS = (0.0, 0.3, 0.7)


class RecordingTorch:
    """Stands in for `torch` inside the reference decoder to record its final `topk` (the ranked n-best scores,
    which `batch_beam_search` computes but does not return)."""

    def __init__(self):
        self.topk_results = []

    def __getattr__(self, name):
        return getattr(torch, name)

    def topk(self, *args, **kwargs):
        result = torch.topk(*args, **kwargs)
        self.topk_results.append(result)
        return result


def save_lm(fireredasr2, directory, vocab_size, tie_weights, seed):
    args = argparse.Namespace(
        idim=vocab_size, odim=vocab_size, embedding_dim=48, hidden_size=48, num_layers=2, dropout=0.0,
        tie_weights=tie_weights,
    )  # fmt: skip
    torch.manual_seed(seed)
    lm = fireredasr2.lstm_lm.LstmLm.from_args(args).eval()
    directory.mkdir(parents=True)
    torch.save({"args": args, "model_state_dict": lm.state_dict()}, directory / "model.pth.tar")
    return lm


@pytest.fixture(scope="module")
def random_v2(fireredasr2, fixtures_dir, tmp_path_factory):
    """A random FireRedASR2-AED (3 heads of 24 dims, 3 + 2 layers, kernel 7) and an untied LSTM LM, built with the
    reference classes, and their conversion."""
    args = argparse.Namespace(
        idim=80, n_layers_enc=3, n_layers_dec=2, n_head=3, d_model=72, residual_dropout=0.1, dropout_rate=0.1,
        kernel_size=7, pe_maxlen=5000, sos_id=3, eos_id=4, pad_id=2, odim=142, blank_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    original = fireredasr2.aed.FireRedAsrAed.from_args(args).eval()
    with torch.no_grad():  # make <eos> likely so that hypotheses end at data-dependent lengths
        original.decoder.tgt_word_prj.weight[EOS] *= 3.0
    root = tmp_path_factory.mktemp("random-v2")
    directory = root / "FireRedASR2-AED"
    shutil.copytree(fixtures_dir / "aed-tiny", directory)
    torch.save({"args": args, "model_state_dict": original.state_dict()}, directory / "model.pth.tar")
    lm = save_lm(fireredasr2, root / "lm", args.odim, tie_weights=False, seed=1)
    converted = convert_checkpoint(directory, root / "converted", lm_dir=root / "lm")
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted).eval()

    torch.manual_seed(1)
    lengths = torch.tensor([203, 157, 96])
    features = torch.randn(3, 203, 80) * (torch.arange(203) < lengths[:, None])[..., None]
    return {"original": original, "lm": lm, "model": model, "features": features, "lengths": lengths}


def hypothesis(sequence: list[int]) -> list[int]:
    return sequence[1 : hypothesis_end(sequence, EOS, PAD)]


def test_encoder_and_ctc_log_probs_match_the_reference(random_v2):
    original, model, features, lengths = (random_v2[k] for k in ("original", "model", "features", "lengths"))
    attention_mask = (torch.arange(features.shape[1]) < lengths[:, None]).long()
    with torch.no_grad():
        encoder_output, _, mask = original.encoder(features, lengths)
        expected_ctc = original.ctc(encoder_output)
        ours = model.get_encoder()(features, attention_mask=attention_mask)
        ctc = model.get_ctc_log_probs(ours.last_hidden_state)
    valid = mask[:, 0].bool()
    assert torch.equal(ours.attention_mask.bool(), valid)
    assert (ours.last_hidden_state - encoder_output)[valid].abs().max().item() < 1e-5
    assert (ctc - expected_ctc)[valid].abs().max().item() < 1e-5


@pytest.mark.parametrize("lm_weight", LM_WEIGHTS)
def test_nbest_scores_and_confidences_match_the_reference(random_v2, fireredasr2, monkeypatch, lm_weight):
    """Batch size 1, the reference's own semantics: ids, ranking scores and confidences of all 3 hypotheses."""
    original, lm, model, features, lengths = (random_v2[k] for k in ("original", "lm", "model", "features", "lengths"))
    decoder_module = sys.modules[type(original.decoder).__module__]
    recorder = RecordingTorch()
    monkeypatch.setattr(decoder_module, "torch", recorder)
    lengths_seen = set()
    for n in range(3):
        single = features[n : n + 1, : lengths[n]]
        expected = original.transcribe(
            single, lengths[n : n + 1], **REFERENCE_SETTINGS, elm=lm if lm_weight else None, elm_weight=lm_weight
        )[0]
        expected_scores = recorder.topk_results[-1][0][0]
        out = model.generate(single, **OUR_SETTINGS, lm_weight=lm_weight, return_dict_in_generate=True)
        for rank, reference in enumerate(expected):
            ids = hypothesis(out.sequences[rank].tolist())
            assert ids == reference["yseq"].tolist(), (n, rank)
            lengths_seen.add(len(ids))
            assert out.sequences_scores[rank].item() == pytest.approx(expected_scores[rank].item(), abs=2e-5)
            assert out.sequences_confidences[rank].item() == pytest.approx(reference["confidence"].item(), abs=1e-5)
            token_confidences = out.token_confidences[rank]
            assert torch.isnan(token_confidences[0]) and (token_confidences[1 : len(ids) + 1] <= 1).all()
    assert len(lengths_seen) > 1  # hypotheses end at different lengths


def test_lm_weight_changes_the_search_and_is_configurable(random_v2):
    model, features = random_v2["model"], random_v2["features"][:1, :203]
    assert model.generation_config.lm_weight == 0.0
    plain = model.generate(features, return_dict_in_generate=True)
    fused = model.generate(features, lm_weight=0.7, return_dict_in_generate=True)
    assert fused.sequences_scores.item() != plain.sequences_scores.item()
    model.generation_config.lm_weight = 0.7
    try:
        assert torch.equal(model.generate(features), fused.sequences)
    finally:
        model.generation_config.lm_weight = 0.0
    with pytest.raises(ValueError, match="lm_weight must be >= 0"):
        model.generate(features, lm_weight=-0.1)
    with pytest.raises(ValueError, match="FireRed beam search only"):
        model.generate(features, lm_weight=0.3, use_fireredasr_beam_search=False)


@pytest.mark.parametrize("lm_weight", [0.0, 0.3])
def test_a_batch_gives_each_utterance_its_single_result(random_v2, lm_weight):
    model, features, lengths = random_v2["model"], random_v2["features"], random_v2["lengths"]
    attention_mask = (torch.arange(features.shape[1]) < lengths[:, None]).long()
    kwargs = dict(OUR_SETTINGS, lm_weight=lm_weight, return_dict_in_generate=True, return_token_timestamps=True)
    batch = model.generate(features, attention_mask=attention_mask, **kwargs)
    for n in range(3):
        single = model.generate(features[n : n + 1, : lengths[n]], **kwargs)
        for rank in range(3):
            row = 3 * n + rank
            assert hypothesis(batch.sequences[row].tolist()) == hypothesis(single.sequences[rank].tolist())
            assert batch.sequences_scores[row].item() == pytest.approx(single.sequences_scores[rank].item(), abs=1e-4)
            assert batch.sequences_confidences[row].item() == pytest.approx(
                single.sequences_confidences[rank].item(), abs=1e-5
            )
            width = single.sequences.shape[1]
            torch.testing.assert_close(
                batch.token_timestamps[row, :width], single.token_timestamps[rank], equal_nan=True, rtol=0, atol=0
            )


def test_random_model_token_timestamps_match_the_reference(random_v2):
    """Token times of the 1-best from the reference's `get_token_timestamp_torchaudio` (alignment failures
    included: a garbage hypothesis longer than the CTC frames has no times)."""
    original, model, features, lengths = (random_v2[k] for k in ("original", "model", "features", "lengths"))
    for n in range(3):
        single = features[n : n + 1, : lengths[n]]
        expected = original.transcribe(single, lengths[n : n + 1], **REFERENCE_SETTINGS, return_timestamp=True)[0][0]
        out = model.generate(single, **OUR_SETTINGS, return_token_timestamps=True)
        positions = [p for p in range(1, hypothesis_end(out.sequences[0].tolist(), EOS, PAD))]
        times = out.token_timestamps[0, positions]
        if expected["timestamp"] is None:
            assert torch.isnan(times).all()
        else:
            assert times[:, 0].tolist() == expected["timestamp"][0] and times[:, 1].tolist() == expected["timestamp"][1]


@pytest.fixture(scope="module")
def reference_lm_dir(fireredasr2, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-lm") / "lm"
    save_lm(fireredasr2, directory, 142, tie_weights=True, seed=2)
    return directory


@pytest.fixture(scope="module")
def converted_aed2_with_lm(aed2_tiny_dir, reference_lm_dir, tmp_path_factory):
    return convert_checkpoint(aed2_tiny_dir, tmp_path_factory.mktemp("aed2-lm") / "model", lm_dir=reference_lm_dir)


def whole_input(audio, sampling_rate):
    """A VAD that keeps the whole input as one segment, as FireRedASR2's ASR call sees a file."""
    return [SpeechSegment(0.0, len(audio) / sampling_rate)]


@pytest.mark.parametrize("lm_weight", [0.0, 0.3])
def test_fixture_audio_transcripts_confidences_and_word_times_equal_the_reference(
    fireredasr2, fixtures_dir, aed2_tiny_dir, reference_lm_dir, converted_aed2_with_lm, lm_weight
):
    """The pipeline against `FireRedAsr2.transcribe(return_timestamp=True)` on the ten fixture recordings: text,
    confidence (3 decimals, as the reference rounds) and every (word, start, end) to the millisecond."""
    config = fireredasr2.asr.FireRedAsr2Config(
        use_gpu=False, beam_size=3, nbest=1, softmax_smoothing=1.25, aed_length_penalty=0.6, eos_penalty=1.0,
        return_timestamp=True, elm_dir=str(reference_lm_dir) if lm_weight else "", elm_weight=lm_weight,
    )  # fmt: skip
    reference = fireredasr2.asr.FireRedAsr2.from_pretrained("aed", str(aed2_tiny_dir), config)
    asr = pipeline("automatic-speech-recognition", model=str(converted_aed2_with_lm))
    for uttid in UTTERANCES:
        path = str(fixtures_dir / "audio" / f"{uttid}.wav")
        expected = reference.transcribe([uttid], [path])[0]
        result = asr(path, return_timestamps="word", vad=whole_input, generate_kwargs={"lm_weight": lm_weight})
        assert result["text"] == expected["text"], uttid
        assert result["confidence"] == expected["confidence"], uttid
        words = [(chunk["text"], *chunk["timestamp"]) for chunk in result["chunks"]]
        assert words == [(word, round(start, 3), round(end, 3)) for word, start, end in expected["timestamp"]], uttid
        assert all(0 <= chunk["confidence"] <= 1 for chunk in result["chunks"])


def test_generate_then_word_timestamps_equal_the_reference_on_fixture_audio(
    fireredasr2, fixtures_dir, aed2_tiny_dir, converted_aed2_dir
):
    """The same through `generate(return_token_timestamps=True)` and `timestamps_fireredasr.word_timestamps`, the
    unrounded reference values compared exactly."""
    config = fireredasr2.asr.FireRedAsr2Config(use_gpu=False, return_timestamp=True)
    reference = fireredasr2.asr.FireRedAsr2.from_pretrained("aed", str(aed2_tiny_dir), config)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed2_dir).eval()
    processor = AutoProcessor.from_pretrained(converted_aed2_dir)
    for uttid in UTTERANCES:
        path = fixtures_dir / "audio" / f"{uttid}.wav"
        expected = reference.transcribe([uttid], [str(path)])[0]
        audio, rate = soundfile.read(path, dtype="float32")
        out = model.generate(
            **processor(audio=audio, sampling_rate=rate, return_tensors="pt"), return_token_timestamps=True
        )
        ids = out.sequences[0].tolist()
        end = hypothesis_end(ids, EOS, PAD)
        tokens = [token.lower() for token in processor.tokenizer.convert_ids_to_tokens(ids[1:end])]
        times = out.token_timestamps[0, 1:end].tolist()
        words = word_timestamps(tokens, None if math.isnan(times[0][0]) else times, len(audio) / rate)
        assert [(word["text"], word["start"], word["end"]) for word in words] == [
            tuple(w) for w in expected["timestamp"]
        ]
        assert processor.batch_decode(out.sequences, skip_special_tokens=True)[0] == expected["text"]


def test_features_are_the_reference_front_end(fireredasr2, fixtures_dir, converted_aed2_dir):
    extractor = fireredasr2.feat.ASRFeatExtractor(str(fixtures_dir / "aed-tiny" / "cmvn.ark"))
    processor = AutoProcessor.from_pretrained(converted_aed2_dir)
    paths = [str(fixtures_dir / "audio" / f"{uttid}.wav") for uttid in UTTERANCES[:4]]
    expected, lengths, _, _, _ = extractor(paths, UTTERANCES[:4])
    for row, path in enumerate(paths):
        audio, rate = soundfile.read(path, dtype="float32")
        features = processor(audio=audio, sampling_rate=rate, return_tensors="pt")["input_features"][0]
        assert features.shape[0] == lengths[row]
        assert (features - expected[row, : lengths[row]]).abs().max().item() < 1e-4


def test_models_without_a_ctc_head_or_lm_say_so(converted_aed_dir, converted_aed2_dir):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed_dir).eval()
    features = torch.randn(1, 60, 80)
    with pytest.raises(ValueError, match="needs a model with a CTC head"):
        model.generate(features, return_token_timestamps=True)
    with pytest.raises(ValueError, match="needs a language model.*--lm_dir"):
        model.generate(features, lm_weight=0.3)
    asr = pipeline("automatic-speech-recognition", model=str(converted_aed_dir))
    with pytest.raises(ValueError, match="segment-level timestamps only.*CTC head"):
        asr(torch.zeros(16000).numpy(), return_timestamps="word")
    with pytest.raises(ValueError, match="return_timestamps must be"):
        asr(torch.zeros(16000).numpy(), return_timestamps="char")


def test_standard_strategies_also_get_token_timestamps(converted_aed2_dir, fixtures_dir):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed2_dir).eval()
    processor = AutoProcessor.from_pretrained(converted_aed2_dir)
    audio, rate = soundfile.read(fixtures_dir / "audio" / "p01.wav", dtype="float32")
    inputs = processor(audio=audio, sampling_rate=rate, return_tensors="pt")
    firered = model.generate(**inputs, num_beams=1, return_token_timestamps=True)
    greedy = model.generate(**inputs, use_fireredasr_beam_search=False, num_beams=1, return_token_timestamps=True)
    assert torch.equal(greedy.sequences, firered.sequences)
    torch.testing.assert_close(greedy.token_timestamps, firered.token_timestamps, equal_nan=True, rtol=0, atol=0)
    assert greedy.sequences_confidences is None and firered.sequences_confidences is not None


def test_ctc_head_and_lm_survive_save_and_load_and_remote_code(converted_aed2_with_lm, fixtures_dir, tmp_path):
    """The converted directory carries the CTC head, the LM and the timestamp code: it gives word timestamps and
    fuses the LM where fireredasr_hf cannot be imported."""
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed2_with_lm).eval()
    assert model.lm is not None and model.ctc_head is not None
    assert model.lm.proj_out.weight.data_ptr() == model.lm.embed_tokens.weight.data_ptr()  # tied, stored once
    audio_path = fixtures_dir / "audio" / "p04.wav"
    asr = pipeline("automatic-speech-recognition", model=str(converted_aed2_with_lm))
    expected = asr(str(audio_path), return_timestamps="word", vad=whole_input, generate_kwargs={"lm_weight": 0.3})
    script = textwrap.dedent(f"""
        import sys
        from types import SimpleNamespace
        sys.modules["fireredasr_hf"] = None  # importing it fails
        sys.path = [entry for entry in sys.path if not entry.endswith("src")]
        from transformers import pipeline
        asr = pipeline("automatic-speech-recognition", model={str(converted_aed2_with_lm)!r}, trust_remote_code=True)
        assert type(asr.model).__module__.startswith("transformers_modules."), type(asr.model).__module__
        whole_input = lambda audio, rate: [SimpleNamespace(start=0.0, end=len(audio) / rate)]
        out = asr({str(audio_path)!r}, return_timestamps="word", vad=whole_input, generate_kwargs={{"lm_weight": 0.3}})
        print("RESULT=" + repr((out["text"], out["confidence"], [c["text"] for c in out["chunks"]])))
    """)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text, confidence, words = eval(result.stdout.split("RESULT=")[-1])
    assert text == expected["text"] and words == [chunk["text"] for chunk in expected["chunks"]]
    assert 0 < confidence <= 1
