"""The command line and engine with FireRedASR2: word timestamps and confidences in JSON lines, word-level
subtitles grouped into lines, the pause-keeping option, language-model fusion, and `convert --lm_dir`."""

import argparse
import json
import re

import numpy as np
import pytest
import soundfile
import torch

from fireredasr_hf import cli
from fireredasr_hf.transcript_io import group_words_into_lines

SRT_CUE = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+)$")


@pytest.fixture(scope="module", autouse=True)
def restore_thread_count():
    num_threads = torch.get_num_threads()
    yield
    torch.set_num_threads(num_threads)


def transcribe(model_dir, *args) -> int:
    return cli.main(["transcribe", "--model", str(model_dir), "--num-threads", "1", "--no-progress", *args])


def write_lm(directory, vocab_size=142, size=16):
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(vocab_size, size)
    lstm = torch.nn.LSTM(size, size, 1, batch_first=True)
    state_dict = {"embedding.weight": embedding.weight.detach(), "fc.bias": torch.zeros(vocab_size)}
    state_dict["fc.weight"] = state_dict["embedding.weight"]
    state_dict.update({f"lstm.{key}": value.detach() for key, value in lstm.state_dict().items()})
    args = argparse.Namespace(
        idim=vocab_size, odim=vocab_size, embedding_dim=size, hidden_size=size, num_layers=1, dropout=0.0,
        tie_weights=True,
    )  # fmt: skip
    directory.mkdir()
    torch.save({"args": args, "model_state_dict": state_dict}, directory / "model.pth.tar")
    return directory


@pytest.fixture(scope="module")
def converted_with_lm(aed2_tiny_dir, tmp_path_factory):
    """`fireredasr-hf convert --lm_dir` of the tiny FireRedASR2-AED."""
    root = tmp_path_factory.mktemp("cli-lm")
    lm_dir = write_lm(root / "lm")
    assert cli.main(["convert", str(aed2_tiny_dir), str(root / "model"), "--lm_dir", str(lm_dir)]) == 0
    return root / "model"


def test_convert_lm_dir_and_lm_weight(converted_with_lm, fixtures_dir, tmp_path, capsys):
    config = json.loads((converted_with_lm / "config.json").read_text())
    assert config["use_ctc_head"] and config["lm_config"]["num_hidden_layers"] == 1
    audio = str(fixtures_dir / "audio" / "p04.wav")
    capsys.readouterr()
    assert transcribe(converted_with_lm, audio, "--output-format", "jsonl") == 0
    plain = json.loads(capsys.readouterr().out)
    assert transcribe(converted_with_lm, audio, "--output-format", "jsonl", "--lm-weight", "2.0") == 0
    fused = json.loads(capsys.readouterr().out)
    assert plain["text"] == "我们开会吧 let us start the meeting"
    assert fused["confidence"] != plain["confidence"]  # the language model took part in the search


def test_jsonl_with_word_timestamps_and_confidences(converted_aed2_dir, fixtures_dir, tmp_path):
    output = tmp_path / "out.jsonl"
    inputs = [str(fixtures_dir / "audio" / f"{uttid}.wav") for uttid in ("p02", "p04")]
    assert (
        transcribe(converted_aed2_dir, *inputs, "--output-format", "jsonl", "--timestamps", "word", "-o", str(output))
        == 0
    )
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [record["uttid"] for record in records] == ["p02", "p04"]
    for record in records:
        assert set(record) == {"uttid", "text", "duration", "source", "confidence", "chunks", "words"}
        assert 0 < record["confidence"] <= 1
        words = record["words"]
        assert all(set(word) == {"text", "timestamp", "confidence"} for word in words)
        assert all(0 <= word["timestamp"][0] <= word["timestamp"][1] <= record["duration"] for word in words)
        # The lines hold the words in order, and the text.
        assert "".join(chunk["text"].replace(" ", "") for chunk in record["chunks"]) == record["text"].replace(" ", "")
    assert [word["text"] for word in records[0]["words"]] == ["turn", "on", "the", "light"]


def test_word_level_subtitles(converted_aed2_dir, fixtures_dir, tmp_path):
    """Two sentences with a pause between them: more than one line, each within the width, the words in order."""
    clips = [soundfile.read(fixtures_dir / "audio" / f"{uttid}.wav", dtype="float32") for uttid in ("p05", "p07")]
    rate = clips[0][1]
    soundfile.write(tmp_path / "talk.wav", np.concatenate([clips[0][0], np.zeros(rate), clips[1][0]]), rate)
    common = ["--timestamps", "word", "--vad", "energy"]
    assert (
        transcribe(
            converted_aed2_dir,
            str(tmp_path / "talk.wav"),
            "--output-format",
            "srt",
            *common,
            "-o",
            str(tmp_path / "srt"),
        )
        == 0
    )
    assert (
        transcribe(
            converted_aed2_dir,
            str(tmp_path / "talk.wav"),
            "--output-format",
            "jsonl",
            *common,
            "-o",
            str(tmp_path / "out.jsonl"),
        )
        == 0
    )
    record = json.loads((tmp_path / "out.jsonl").read_text())
    blocks = (tmp_path / "srt" / "talk.srt").read_text().strip().split("\n\n")
    cues = [SRT_CUE.match(block).groups() for block in blocks]
    assert len(cues) >= 2 and [cue[0] for cue in cues] == [str(index) for index in range(1, len(cues) + 1)]
    assert [cue[3] for cue in cues] == [chunk["text"] for chunk in record["chunks"]]
    assert "".join(cue[3] for cue in cues) == "".join(word["text"] for word in record["words"])
    assert all(len(cue[3]) <= 21 for cue in cues)  # Chinese: 21 characters fill the 42 columns


def test_word_options_are_checked(converted_aed_dir, converted_aed2_dir, fixtures_dir, capsys):
    audio = str(fixtures_dir / "audio" / "p01.wav")
    assert transcribe(converted_aed_dir, audio, "--timestamps", "word", "--output-format", "jsonl") == 2
    assert "word timestamps come from the CTC head of FireRedASR2-AED" in capsys.readouterr().err
    assert transcribe(converted_aed2_dir, audio, "--keep-pauses") == 2
    assert "--keep-pauses applies to word timestamps" in capsys.readouterr().err
    assert transcribe(converted_aed2_dir, audio, "--lm-weight", "0.3") == 1  # fails per recording: no LM
    assert "needs a language model" in capsys.readouterr().err


def test_words_are_grouped_into_lines_by_width_duration_and_pauses():
    def word(text, start, end):
        return {"text": text, "timestamp": [start, end], "confidence": 0.5}

    words = [word(c, i * 0.2, i * 0.2 + 0.2) for i, c in enumerate("一二三四五六七八九十一二三四五六七八九十一二三")]
    lines = group_words_into_lines(words)
    assert [len(line["text"]) for line in lines] == [21, 2]  # 42 columns: 21 CJK characters
    english = [word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(["hello", "world", "again"])]
    english.append(word("later", 5.0, 5.5))  # after a pause
    lines = group_words_into_lines(english)
    assert [line["text"] for line in lines] == ["hello world again", "later"]
    assert lines[0] == {"text": "hello world again", "timestamp": [0.0, 1.4], "confidence": 0.5}
    long = [word(f"w{i}", i * 1.0, i * 1.0 + 1.0) for i in range(8)]
    assert [line["text"] for line in group_words_into_lines(long)] == ["w0 w1 w2 w3 w4 w5", "w6 w7"]


def test_server_gives_fireredasr2_words_with_their_probability(converted_aed2_dir, fixtures_dir):
    """`fireredasr-hf serve` with a FireRedASR2-AED: verbose_json words are the pipeline's word chunks."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from fireredasr_hf.serving import ServerConfig, create_app
    from fireredasr_hf.transcription import Transcriber

    transcriber = Transcriber(str(converted_aed2_dir), device="cpu", batch_size=4)
    path = fixtures_dir / "audio" / "p02.wav"
    expected = transcriber.transcribe_audio(str(path), return_timestamps="word")["chunks"]
    app = create_app(transcriber, ServerConfig(model_names=("tiny2",), max_wait_ms=5))
    with TestClient(app) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("p02.wav", path.read_bytes(), "audio/wav")},
            data={"model": "tiny2", "response_format": "verbose_json", "timestamp_granularities[]": "word"},
        )
    assert response.status_code == 200, response.text
    words = response.json()["words"]
    assert [(w["word"], w["start"], w["end"], w["probability"]) for w in words] == [
        (c["text"], *c["timestamp"], c["confidence"]) for c in expected
    ]


def test_timestamps_flag_before_an_input_takes_no_level(converted_aed2_dir, fixtures_dir, capsys):
    """`--timestamps INPUT`: INPUT is an input (segment timestamps), as before the flag took a level."""
    audio = str(fixtures_dir / "audio" / "p02.wav")
    assert transcribe(converted_aed2_dir, "--output-format", "jsonl", "--vad", "energy", "--timestamps", audio) == 0
    record = json.loads(capsys.readouterr().out)
    assert "words" not in record and record["chunks"][0]["text"] == record["text"]
