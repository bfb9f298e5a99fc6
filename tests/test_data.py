"""Fine-tuning data: Kaldi directories, example preparation and filters, the collator, the synthetic corpus script."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset

from fireredasr_hf.audio import AudioDecodeError
from fireredasr_hf.data import DataCollatorForFireRedAsr, decode_audio, load_kaldi_dir, prepare_dataset
from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from fireredasr_hf.processing_fireredasr import FireRedAsrProcessor
from fireredasr_hf.processing_fireredasr_llm import FireRedLlmProcessor
from fireredasr_hf.tokenization_fireredasr import FireRedAsrTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
SOS_ID, EOS_ID = 3, 4


@pytest.fixture(scope="module")
def audio_dir(fixtures_dir):
    return fixtures_dir / "audio"


@pytest.fixture(scope="module")
def transcripts(audio_dir):
    lines = (audio_dir / "text").read_text(encoding="utf-8").splitlines()
    return dict(line.split(" ", 1) for line in lines)


@pytest.fixture(scope="module")
def num_samples(audio_dir, transcripts):
    return {uttid: soundfile.info(audio_dir / f"{uttid}.wav").frames for uttid in transcripts}


@pytest.fixture(scope="module")
def processor(fixtures_dir):
    model_dir = fixtures_dir / "aed-tiny"
    return FireRedAsrProcessor(
        FireRedAsrFeatureExtractor.from_kaldi_cmvn(model_dir / "cmvn.ark"),
        FireRedAsrTokenizer(str(model_dir / "dict.txt"), str(model_dir / "train_bpe1000.model")),
    )


def write_kaldi_dir(directory, wav_lines, text_lines):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wav.scp").write_text("".join(f"{line}\n" for line in wav_lines), encoding="utf-8")
    (directory / "text").write_text("".join(f"{line}\n" for line in text_lines), encoding="utf-8")
    return directory


# load_kaldi_dir


def test_load_kaldi_dir_keeps_utterances_in_both_files(tmp_path, audio_dir, monkeypatch):
    data_dir = tmp_path / "data"
    (data_dir / "wav").mkdir(parents=True)
    shutil.copy(audio_dir / "p02.wav", data_dir / "wav" / "p02.wav")
    shutil.copy(audio_dir / "p03.wav", tmp_path / "p03.wav")
    (tmp_path / "wav").mkdir()
    shutil.copy(audio_dir / "p05.wav", tmp_path / "wav" / "p02.wav")  # the data directory's file wins
    monkeypatch.chdir(tmp_path)
    write_kaldi_dir(
        data_dir,
        [
            f"p01 {audio_dir / 'p01.wav'}",  # absolute
            "p02 wav/p02.wav",  # relative to the data directory
            "p03\tp03.wav",  # relative to the working directory, tab-separated
            f"p04 {audio_dir / 'p04.wav'}",  # no transcript
        ],
        ["p03 我想去北京  看看", "p02 turn on the light", "p01", "p05 no audio"],
    )
    dataset = load_kaldi_dir(data_dir)
    assert dataset.column_names == ["id", "audio", "text"]
    assert dataset["id"] == ["p01", "p02", "p03"]  # the order of wav.scp
    assert dataset["text"] == ["", "turn on the light", "我想去北京  看看"]
    assert dataset["audio"] == [
        str(audio_dir / "p01.wav"),
        str(data_dir / "wav" / "p02.wav"),
        str(tmp_path / "p03.wav"),
    ]


@pytest.mark.parametrize(
    "wav_lines, text_lines, error, message",
    [
        (["p01 {audio}/p01.wav", "p01 {audio}/p02.wav"], ["p01 a"], ValueError, "'p01' appears twice"),
        (["p01 {audio}/p01.wav"], ["p01 a", "p01 b"], ValueError, "'p01' appears twice"),
        (["p01 {audio}/missing.wav"], ["p01 a"], FileNotFoundError, "1 of 1 audio files do not exist"),
        (["p01 sox {audio}/p01.wav -t wav - |"], ["p01 a"], ValueError, "command or stdin"),
        (["p01 raw.ark:1234"], ["p01 a"], ValueError, "Kaldi archive"),
        (["p01"], ["p01 a"], ValueError, "has no audio path"),
        (["p01 {audio}/p01.wav"], ["p02 a"], ValueError, "no utterance id is in both"),
    ],
)
def test_load_kaldi_dir_errors(tmp_path, audio_dir, wav_lines, text_lines, error, message):
    data_dir = write_kaldi_dir(tmp_path, [line.format(audio=audio_dir) for line in wav_lines], text_lines)
    with pytest.raises(error, match=message):
        load_kaldi_dir(data_dir)


def test_load_kaldi_dir_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory not found"):
        load_kaldi_dir(tmp_path / "nowhere")
    (tmp_path / "wav.scp").write_text("p01 a.wav\n")
    with pytest.raises(FileNotFoundError, match="text"):
        load_kaldi_dir(tmp_path)


# decode_audio


def test_decode_audio_forms_agree(audio_dir):
    path = audio_dir / "p01.wav"
    reference, sampling_rate = soundfile.read(path, dtype="float32")
    assert sampling_rate == 16000
    forms = [
        str(path),
        path,
        {"path": str(path), "bytes": None},
        {"path": "ignored when there are bytes", "bytes": path.read_bytes()},
        {"array": reference.astype(np.float64), "sampling_rate": 16000},
        {"array": np.stack([reference, reference]), "sampling_rate": 16000},  # channels first, as datasets returns
    ]
    for form in forms:
        waveform = decode_audio(form)
        assert waveform.dtype == np.float32
        np.testing.assert_allclose(waveform, reference, atol=1e-7)


def test_decode_audio_resamples(audio_dir):
    reference, _ = soundfile.read(audio_dir / "p01.wav", dtype="float32")
    waveform_8k = decode_audio({"array": reference, "sampling_rate": 16000}, sampling_rate=8000)
    assert len(waveform_8k) == round(len(reference) / 2)
    restored = decode_audio({"array": waveform_8k, "sampling_rate": 8000})
    assert abs(len(restored) - len(reference)) <= 1
    # a band-limited round trip: close, not identical
    restored = restored[: len(reference)]
    assert np.sqrt(np.mean((restored - reference) ** 2)) < 0.2 * np.sqrt(np.mean(reference**2))


@pytest.mark.parametrize(
    "audio, error, message",
    [
        ({"array": np.zeros(16000, dtype=np.int16), "sampling_rate": 16000}, ValueError, "float samples"),
        ({"array": np.zeros(16000, dtype=np.float32)}, ValueError, "needs its `sampling_rate`"),
        ({"bytes": None, "path": None}, ValueError, "neither"),
        ({"bytes": b"not audio", "path": "x.wav"}, AudioDecodeError, "x.wav"),
        (np.zeros(16000, dtype=np.float32), ValueError, "cannot read audio of type ndarray"),
        ("/nonexistent/file.wav", FileNotFoundError, "file.wav"),
    ],
)
def test_decode_audio_errors(audio, error, message):
    with pytest.raises(error, match=message):
        decode_audio(audio)


# prepare_dataset


def test_prepare_dataset_duration_filter(audio_dir, processor, transcripts, num_samples):
    # the bounds are inclusive: exactly the durations of p01 and p04
    min_duration_s, max_duration_s = num_samples["p01"] / 16000, num_samples["p04"] / 16000
    prepared = prepare_dataset(
        load_kaldi_dir(audio_dir), processor, min_duration_s=min_duration_s, max_duration_s=max_duration_s
    )
    expected = [uttid for uttid in transcripts if min_duration_s <= num_samples[uttid] / 16000 <= max_duration_s]
    assert prepared["id"] == expected == ["p01", "p04", "p08", "p10"]
    assert prepared.column_names == ["id", "audio", "text", "labels", "duration"]
    assert prepared["duration"] == [num_samples[uttid] / 16000 for uttid in expected]
    for example in prepared:
        assert example["labels"] == processor.tokenizer(example["text"]).input_ids
        assert example["labels"][-1] == EOS_ID


def test_prepare_dataset_default_bounds_keep_everything(audio_dir, processor, transcripts):
    prepared = prepare_dataset(load_kaldi_dir(audio_dir), processor)
    assert prepared["id"] == list(transcripts)


def test_prepare_dataset_label_length_filter(audio_dir, processor, transcripts):
    label_lengths = {uttid: len(processor.tokenizer(text).input_ids) for uttid, text in transcripts.items()}
    max_label_length = 7
    assert 0 < sum(length > max_label_length for length in label_lengths.values()) < len(label_lengths)
    prepared = prepare_dataset(load_kaldi_dir(audio_dir), processor, max_label_length=max_label_length)
    assert prepared["id"] == [uttid for uttid, length in label_lengths.items() if length <= max_label_length]
    assert max(len(labels) for labels in prepared["labels"]) == max_label_length


def test_prepare_dataset_llm_labels(fixtures_dir, audio_dir, processor, transcripts):
    """The LLM variant: labels are the Qwen2 ids of the normalised transcript, no special tokens."""
    from transformers import AutoTokenizer

    qwen_tokenizer = AutoTokenizer.from_pretrained(fixtures_dir / "llm-tiny" / "Qwen2-7B-Instruct")
    llm_processor = FireRedLlmProcessor(processor.feature_extractor, qwen_tokenizer)
    dataset = load_kaldi_dir(audio_dir).map(lambda example: {"text": example["text"].upper() + "!"})
    prepared = prepare_dataset(dataset, llm_processor, max_duration_s=30.0)
    assert prepared["id"] == list(transcripts)
    for example in prepared:
        assert example["labels"] == qwen_tokenizer.encode(transcripts[example["id"]], add_special_tokens=False)
        assert qwen_tokenizer.decode(example["labels"]) == transcripts[example["id"]]


def test_prepare_dataset_accepts_arrays_and_undecoded_audio(audio_dir, processor, num_samples):
    waveform, _ = soundfile.read(audio_dir / "p02.wav", dtype="float32")
    from_arrays = Dataset.from_dict(
        {
            "speech": [{"array": waveform, "sampling_rate": 16000}, {"array": waveform[:800], "sampling_rate": 16000}],
            "sentence": ["turn on the light", "too short"],
        }
    )
    prepared = prepare_dataset(from_arrays, processor, audio_column="speech", text_column="sentence")
    assert prepared["sentence"] == ["turn on the light"]
    assert prepared["duration"] == [num_samples["p02"] / 16000]

    undecoded = load_kaldi_dir(audio_dir).cast_column("audio", Audio(decode=False))
    prepared = prepare_dataset(undecoded, processor, max_duration_s=2.5)
    assert prepared["id"] == ["p01", "p02", "p06"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"audio_column": "wav"}, "column 'wav' is not in the dataset"),
        ({"text_column": "sentence"}, "column 'sentence' is not in the dataset"),
        ({"min_duration_s": 0.01}, "one fbank frame"),
        ({"min_duration_s": 5.0, "max_duration_s": 4.0}, "min_duration_s <= max_duration_s"),
        ({"max_label_length": 0}, "max_label_length must be at least 1"),
    ],
)
def test_prepare_dataset_argument_errors(audio_dir, processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare_dataset(load_kaldi_dir(audio_dir), processor, **kwargs)


def test_prepare_dataset_data_errors(audio_dir, processor):
    clashing = load_kaldi_dir(audio_dir).add_column("labels", [[1]] * 10)
    with pytest.raises(ValueError, match=r"already has the column\(s\) \['labels'\]"):
        prepare_dataset(clashing, processor)
    not_text = Dataset.from_dict({"audio": [str(audio_dir / "p01.wav")], "text": [None]})
    with pytest.raises(ValueError, match="row 0: column 'text' must hold strings, got NoneType"):
        prepare_dataset(not_text, processor)


# DataCollatorForFireRedAsr


def test_collator_pads_features_and_labels(audio_dir, processor):
    feature_extractor = processor.feature_extractor
    uttids = ["p02", "p01", "p06"]
    waveforms = [soundfile.read(audio_dir / f"{uttid}.wav", dtype="float32")[0] for uttid in uttids]
    examples = [
        {"audio": str(audio_dir / "p02.wav"), "labels": [10, 11, EOS_ID], "text": "ignored"},
        {"audio": {"array": waveforms[1], "sampling_rate": 16000}, "labels": [12, EOS_ID]},
        {"audio": {"path": None, "bytes": (audio_dir / "p06.wav").read_bytes()}, "labels": [13, 14, 15, 16, EOS_ID]},
    ]
    batch = DataCollatorForFireRedAsr(feature_extractor, decoder_start_token_id=SOS_ID)(examples)
    assert set(batch) == {"input_features", "attention_mask", "labels"}

    num_frames = [1 + (len(waveform) - 400) // 160 for waveform in waveforms]
    assert batch["input_features"].shape == (3, max(num_frames), 80)
    assert batch["input_features"].dtype == torch.float32
    assert batch["attention_mask"].tolist() == [[1] * n + [0] * (max(num_frames) - n) for n in num_frames]
    for row, (waveform, n) in enumerate(zip(waveforms, num_frames)):
        single = feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_features"][0]
        torch.testing.assert_close(batch["input_features"][row, :n], single, rtol=0, atol=0)
        assert torch.count_nonzero(batch["input_features"][row, n:]) == 0  # zero padding after CMVN

    assert batch["labels"].dtype == torch.long
    assert batch["labels"].tolist() == [
        [10, 11, EOS_ID, -100, -100],
        [12, EOS_ID, -100, -100, -100],
        [13, 14, 15, 16, EOS_ID],
    ]


@pytest.mark.parametrize(
    "labels, decoder_start_token_id, expected",
    [
        ([[SOS_ID, 10, EOS_ID], [SOS_ID, EOS_ID]], SOS_ID, [[10, EOS_ID], [EOS_ID, -100]]),  # every row: dropped
        ([[SOS_ID, 10, EOS_ID], [11, EOS_ID]], SOS_ID, [[SOS_ID, 10, EOS_ID], [11, EOS_ID, -100]]),  # not every row
        ([[SOS_ID, 10, EOS_ID], [SOS_ID, EOS_ID]], None, [[SOS_ID, 10, EOS_ID], [SOS_ID, EOS_ID, -100]]),  # LLM
        ([[SOS_ID, 10], []], SOS_ID, [[SOS_ID, 10], [-100, -100]]),  # an empty row does not start with it
    ],
)
def test_collator_decoder_start_token(processor, labels, decoder_start_token_id, expected):
    silence = {"array": np.zeros(1600, dtype=np.float32), "sampling_rate": 16000}
    collator = DataCollatorForFireRedAsr(processor.feature_extractor, decoder_start_token_id=decoder_start_token_id)
    batch = collator([{"audio": silence, "labels": row} for row in labels])
    assert batch["labels"].tolist() == expected


def test_collator_custom_columns_and_errors(processor):
    silence = {"array": np.zeros(1600, dtype=np.float32), "sampling_rate": 16000}
    collator = DataCollatorForFireRedAsr(processor.feature_extractor, audio_column="speech", label_pad_token_id=-1)
    batch = collator([{"speech": silence, "labels": [5]}, {"speech": silence, "labels": [5, 6]}])
    assert batch["labels"].tolist() == [[5, -1], [5, 6]]
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        collator([{"labels": [5]}])
    with pytest.raises(ValueError, match="empty list"):
        collator([])


def test_prepared_dataset_through_collator_and_dataloader(audio_dir, processor):
    prepared = prepare_dataset(load_kaldi_dir(audio_dir), processor, max_duration_s=3.0)
    collator = DataCollatorForFireRedAsr(processor.feature_extractor, decoder_start_token_id=SOS_ID)
    loader = torch.utils.data.DataLoader(prepared, batch_size=4, collate_fn=collator)
    batches = list(loader)
    assert [len(batch["labels"]) for batch in batches] == [4, 1]
    expected = processor(
        audio=[decode_audio(path) for path in prepared["audio"][:4]],
        text=prepared["text"][:4],
        sampling_rate=16000,
        return_tensors="pt",
    )
    for key in ("input_features", "attention_mask", "labels"):
        assert torch.equal(batches[0][key], expected[key].to(batches[0][key].dtype)), key


def _torchcodec_skip_reason(audio_dir):
    try:
        Dataset.from_dict({"audio": [str(audio_dir / "p01.wav")]}).cast_column("audio", Audio())[0]["audio"]["array"]
    except (ImportError, OSError, RuntimeError) as error:  # torchcodec missing, or unable to load its libraries
        return f"datasets cannot decode audio here (torchcodec): {type(error).__name__}: {error}"
    return None


def test_decoded_audio_column(audio_dir, processor, num_samples):
    reason = _torchcodec_skip_reason(audio_dir)
    if reason:
        pytest.skip(reason)
    decoded = load_kaldi_dir(audio_dir).cast_column("audio", Audio(sampling_rate=16000))
    assert not isinstance(decoded[0]["audio"], (str, dict))  # a torchcodec AudioDecoder
    prepared = prepare_dataset(decoded, processor, max_duration_s=2.5)
    assert prepared["id"] == ["p01", "p02", "p06"]
    assert prepared["duration"] == [num_samples[uttid] / 16000 for uttid in prepared["id"]]
    collator = DataCollatorForFireRedAsr(processor.feature_extractor, decoder_start_token_id=SOS_ID)
    from_decoder = collator([prepared[i] for i in range(3)])
    from_paths = collator([{"audio": str(audio_dir / f"{u}.wav"), "labels": [5]} for u in prepared["id"]])
    torch.testing.assert_close(from_decoder["input_features"], from_paths["input_features"], rtol=0, atol=1e-4)
    assert torch.equal(from_decoder["attention_mask"], from_paths["attention_mask"])


# scripts/make_synthetic_corpus.py


@pytest.fixture(scope="module")
def corpus_script():
    pytest.importorskip("pypinyin", reason="the corpus script needs pypinyin (the dev extra)")
    spec = importlib.util.spec_from_file_location(
        "make_synthetic_corpus", REPO_ROOT / "scripts" / "make_synthetic_corpus.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_corpus_is_deterministic_and_holds_out_new_combinations(corpus_script):
    splits = corpus_script.plan_corpus(num_train=40, num_test=10, seed=3)
    assert splits == corpus_script.plan_corpus(num_train=40, num_test=10, seed=3)
    assert splits != corpus_script.plan_corpus(num_train=40, num_test=10, seed=4)
    train, test = splits["train"], splits["test"]
    train_transcripts = {utterance.transcript for utterance in train}
    assert len(train_transcripts) == 40
    assert not train_transcripts & {utterance.transcript for utterance in test}
    train_words = {word for u in train for _, words in u.phrase for word in words}
    assert {word for u in test for _, words in u.phrase for word in words} <= train_words
    languages = {tuple(language for language, _ in u.phrase) for u in test}
    assert languages == {("zh",), ("en",), ("zh", "en")}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_corpus_script_smoke(tmp_path, corpus_script):
    corpus_dir, tokenizer_dir = tmp_path / "corpus", tmp_path / "tokenizer"
    corpus_script.main(
        [
            str(corpus_dir),
            "--num-train",
            "6",
            "--num-test",
            "3",
            "--seed",
            "1",
            "--write-tokenizer",
            str(tokenizer_dir),
            "--num-workers",
            "2",
        ]
    )

    datasets = {split: load_kaldi_dir(corpus_dir / split) for split in ("train", "test")}
    assert [len(datasets[split]) for split in ("train", "test")] == [6, 3]
    for split, dataset in datasets.items():
        assert (corpus_dir / split / "wav.scp").read_text().splitlines()[0] == f"{split}_00000 wav/{split}_00000.wav"
        for example in dataset:
            info = soundfile.info(example["audio"])
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert 0.5 < info.duration < 6.0
            assert example["text"] and example["text"] == example["text"].lower()
    assert not set(datasets["train"]["text"]) & set(datasets["test"]["text"])

    # cmvn.ark: Kaldi binary double 2 x 81 with the statistics of the training features
    cmvn_path = tokenizer_dir / "cmvn.ark"
    assert cmvn_path.stat().st_size == 1311
    assert cmvn_path.read_bytes()[:15] == b"\0BDM \x04\x02\x00\x00\x00\x04\x51\x00\x00\x00"
    raw_extractor = FireRedAsrFeatureExtractor()
    raw_features = np.concatenate(
        [
            raw_extractor(decode_audio(path), sampling_rate=16000)["input_features"][0]
            for path in datasets["train"]["audio"]
        ]
    ).astype(np.float64)
    kaldiio = pytest.importorskip("kaldiio")
    stats = kaldiio.load_mat(str(cmvn_path))
    assert stats.shape == (2, 81) and stats.dtype == np.float64
    assert stats[0, 80] == len(raw_features) and stats[1, 80] == 0
    np.testing.assert_allclose(stats[0, :80], raw_features.sum(0), rtol=1e-9)
    np.testing.assert_allclose(stats[1, :80], np.square(raw_features).sum(0), rtol=1e-9)
    normalized = FireRedAsrFeatureExtractor.from_kaldi_cmvn(cmvn_path)(
        [decode_audio(path) for path in datasets["train"]["audio"]], sampling_rate=16000, padding=False
    )["input_features"]
    normalized = np.concatenate(normalized)
    np.testing.assert_allclose(normalized.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(0), 1, atol=1e-3)

    # dict.txt + train_bpe1000.model: a FireRed tokenizer that covers the whole corpus
    tokenizer = FireRedAsrTokenizer(str(tokenizer_dir / "dict.txt"), str(tokenizer_dir / "train_bpe1000.model"))
    dict_lines = (tokenizer_dir / "dict.txt").read_text(encoding="utf-8").splitlines()
    assert dict_lines[:5] == ["<blank> 0", "<unk> 1", "<pad> 2", "<sos> 3", "<eos> 4"]
    assert any(line.startswith("▁") for line in dict_lines) and all(line == line.upper() for line in dict_lines[5:])
    for text in list(datasets["train"]["text"]) + list(datasets["test"]["text"]):
        ids = tokenizer(text).input_ids
        assert tokenizer.unk_token_id not in ids and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids, skip_special_tokens=True) == text.upper()
