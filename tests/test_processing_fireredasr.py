"""FireRedAsrProcessor: features, training labels, decoding of generated ids, saving and loading."""

import json

import pytest
import soundfile
import torch
from transformers import AutoProcessor

from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from fireredasr_hf.processing_fireredasr import FireRedAsrProcessor
from fireredasr_hf.tokenization_fireredasr import FireRedAsrTokenizer

UTTERANCES = ["p01", "p02", "p04"]


@pytest.fixture(scope="module")
def processor(fixtures_dir):
    model_dir = fixtures_dir / "aed-tiny"
    feature_extractor = FireRedAsrFeatureExtractor.from_kaldi_cmvn(model_dir / "cmvn.ark")
    tokenizer = FireRedAsrTokenizer(str(model_dir / "dict.txt"), str(model_dir / "train_bpe1000.model"))
    return FireRedAsrProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def speech(fixtures_dir):
    audio_dir = fixtures_dir / "audio"
    transcripts = dict(line.split(" ", 1) for line in (audio_dir / "text").read_text(encoding="utf-8").splitlines())
    waveforms = [soundfile.read(audio_dir / f"{uttid}.wav", dtype="float32")[0] for uttid in UTTERANCES]
    return waveforms, [transcripts[uttid] for uttid in UTTERANCES]


def test_audio_and_text(processor, speech):
    waveforms, transcripts = speech
    inputs = processor(audio=waveforms, sampling_rate=16000, text=transcripts, return_tensors="pt")
    assert set(inputs) == {"input_features", "attention_mask", "labels"}

    features = processor.feature_extractor(waveforms, sampling_rate=16000, return_tensors="pt")
    assert torch.equal(inputs["input_features"], features["input_features"])
    assert torch.equal(inputs["attention_mask"], features["attention_mask"])

    token_ids = [processor.tokenizer.encode(text, add_special_tokens=False) for text in transcripts]
    longest = max(len(ids) for ids in token_ids) + 1
    expected = [ids + [4] + [-100] * (longest - len(ids) - 1) for ids in token_ids]
    assert inputs["labels"].dtype == torch.long
    assert inputs["labels"].tolist() == expected
    # the lower-case English transcript is upper-cased by the tokenizer, as by the original
    assert token_ids[1] == [63, 125, 81, 115, 67, 69, 68, 121, 101, 118]


def test_labels_match_the_original_tokenizer(processor, speech, fixtures_dir):
    aed_tokenizer = pytest.importorskip("fireredasr.tokenizer.aed_tokenizer")
    model_dir = fixtures_dir / "aed-tiny"
    original = aed_tokenizer.ChineseCharEnglishSpmTokenizer(
        str(model_dir / "dict.txt"), str(model_dir / "train_bpe1000.model")
    )
    _, transcripts = speech
    labels = processor(text=transcripts)["labels"]
    for text, row in zip(transcripts, labels):
        ids = original.tokenize(text)[1]
        assert row[: len(ids) + 1] == ids + [4] and set(row[len(ids) + 1 :]) <= {-100}


def test_single_utterance(processor, speech):
    waveforms, transcripts = speech
    inputs = processor(audio=waveforms[0], sampling_rate=16000, text=transcripts[0], return_tensors="np")
    assert inputs["input_features"].shape[0] == 1 and inputs["input_features"].shape[2] == 80
    assert inputs["labels"].tolist() == [[5, 6, 6, 7, 8, 9, 4]]


def test_text_only(processor):
    inputs = processor(text=["今天", "TURN ON"], return_tensors="pt")
    assert inputs["input_ids"].tolist() == [[5, 6, 4, 2, 2, 2], [63, 125, 81, 115, 67, 4]]
    assert inputs["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert inputs["labels"].tolist() == [[5, 6, 4, -100, -100, -100], [63, 125, 81, 115, 67, 4]]
    assert processor(text="今天")["labels"] == [[5, 6, 4]]


def test_padding_on_the_left_is_masked_too(processor):
    labels = processor(text=["今天", "TURN ON"], padding_side="left")["labels"]
    assert labels == [[-100, -100, -100, 5, 6, 4], [63, 125, 81, 115, 67, 4]]


def test_audio_only(processor, speech):
    waveforms, _ = speech
    inputs = processor(audio=waveforms, sampling_rate=16000, return_tensors="pt")
    features = processor.feature_extractor(waveforms, sampling_rate=16000, return_tensors="pt")
    assert set(inputs) == {"input_features", "attention_mask"}
    assert torch.equal(inputs["input_features"], features["input_features"])


def test_modality_kwargs_are_routed(processor, speech):
    waveforms, transcripts = speech
    inputs = processor(
        audio=waveforms,
        sampling_rate=16000,
        text=transcripts,
        audio_kwargs={"pad_to_multiple_of": 64},
        text_kwargs={"add_special_tokens": False},
        return_tensors="pt",
    )
    assert inputs["input_features"].shape[1] % 64 == 0
    assert inputs["labels"][0].tolist()[:7] == [5, 6, 6, 7, 8, 9, -100]


def test_bad_inputs(processor, speech):
    waveforms, transcripts = speech
    with pytest.raises(ValueError, match="needs `audio`, `text` or both"):
        processor()
    with pytest.raises(ValueError, match="Got 3 utterances but 2 transcripts"):
        processor(audio=waveforms, sampling_rate=16000, text=transcripts[:2])
    with pytest.raises(ValueError, match="`text` must be a string or a list of strings"):
        processor(text=[1, 2])


def test_decode_generated_ids(processor, fixtures_dir):
    # Every n-best hypothesis of the original AED beam search: `ids` exclude <sos> and the final <eos>, `text` is the
    # original detokenize output.
    decode = json.loads((fixtures_dir / "golden" / "aed-tiny" / "decode.json").read_text(encoding="utf-8"))["decode"]
    hypotheses = [
        hypothesis
        for setting in decode.values()
        for mode in ("bs1", "batch")
        for result in setting[mode].values()
        for hypothesis in result["nbest"]
    ]
    assert len(hypotheses) == 180
    for hypothesis in hypotheses:
        assert processor.decode(hypothesis["ids"]) == hypothesis["text"]
        generated = [3] + hypothesis["ids"] + [4] * hypothesis["finished"]
        assert processor.decode(generated, skip_special_tokens=True) == hypothesis["text"]

    generated = torch.tensor([[3, 5, 6, 6, 7, 8, 9, 4], [3, 63, 125, 81, 4, 2, 2, 2]])
    assert processor.batch_decode(generated, skip_special_tokens=True) == ["今天天气很好", "TURN"]
    assert processor.batch_decode(generated) == ["<sos>今天天气很好<eos>", "<sos> TURN<eos><pad><pad><pad>"]


def test_model_input_names(processor):
    assert processor.model_input_names == ["input_features", "attention_mask", "labels"]


def test_save_and_load(tmp_path, processor, speech):
    import fireredasr_hf  # noqa: F401  (registers the FireRedASR classes with the Auto classes)

    processor.save_pretrained(tmp_path)
    assert {"processor_config.json", "tokenizer_config.json", "dict.txt", "train_bpe1000.model"} <= {
        path.name for path in tmp_path.iterdir()
    }
    config = json.loads((tmp_path / "processor_config.json").read_text())
    assert config["processor_class"] == "FireRedAsrProcessor"
    assert config["feature_extractor"]["feature_extractor_type"] == "FireRedAsrFeatureExtractor"

    waveforms, transcripts = speech
    expected = processor(audio=waveforms, sampling_rate=16000, text=transcripts, return_tensors="pt")
    for loaded in (FireRedAsrProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is FireRedAsrProcessor
        assert isinstance(loaded.tokenizer, FireRedAsrTokenizer)
        assert isinstance(loaded.feature_extractor, FireRedAsrFeatureExtractor)
        inputs = loaded(audio=waveforms, sampling_rate=16000, text=transcripts, return_tensors="pt")
        assert set(inputs) == set(expected)
        for key in expected:
            assert torch.equal(inputs[key], expected[key]), key
        assert loaded.decode([3, 5, 6, 4], skip_special_tokens=True) == "今天"
        assert loaded.feature_extractor.cmvn_means == processor.feature_extractor.cmvn_means
