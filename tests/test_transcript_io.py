import json
from pathlib import Path

import numpy as np
import pytest

from fireredasr_hf.transcript_io import (
    ResumeLog,
    format_srt,
    format_timestamp,
    format_vtt,
    is_dataset_dir,
    iter_audio_inputs,
    read_kaldi_text,
    read_wav_scp,
    write_jsonl,
    write_kaldi_text,
    write_plain_text,
    write_srt,
    write_vtt,
)
from fireredasr_hf.vad import SpeechSegment

# --- wav.scp and text ---------------------------------------------------------------------------------------------------


def test_read_fixture_wav_scp(fixtures_dir, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # relative paths of the fixture are relative to its folder
    entries = read_wav_scp(fixtures_dir / "audio" / "wav.scp")
    assert list(entries) == [f"p{i:02d}" for i in range(1, 11)]
    assert all(Path(path).is_file() for path in entries.values())
    assert Path(entries["p03"]).name == "p03.wav"


def test_wav_scp_relative_paths_prefer_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "a.wav").touch()
    scp = tmp_path / "data" / "wav.scp"
    scp.write_text("a wav/a.wav\nb b.wav\n")
    monkeypatch.chdir(tmp_path)
    assert read_wav_scp(scp) == {"a": "wav/a.wav", "b": str(tmp_path / "data" / "b.wav")}


@pytest.mark.parametrize(
    "content, message",
    [
        ("a sox x.wav -t wav - |\n", "command pipe"),
        ("a feats.ark:1234\n", "Kaldi archive"),
        ("a x.wav\na y.wav\n", r"wav.scp:2: uttid 'a' appears twice"),
        ("a\n", "no audio path"),
    ],
)
def test_wav_scp_rejects(tmp_path, content, message):
    (tmp_path / "wav.scp").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_wav_scp(tmp_path / "wav.scp")


def test_kaldi_text_round_trip(tmp_path):
    texts = {"u1": "今天天气很好", "u2": "turn  on the light", "u3": ""}
    write_kaldi_text(tmp_path / "text", texts)
    assert (tmp_path / "text").read_text(encoding="utf-8") == "u1 今天天气很好\nu2 turn  on the light\nu3\n"
    assert read_kaldi_text(tmp_path / "text") == texts
    (tmp_path / "tabs").write_text("\ufeffu1\t你好\n\n  u2   hello world  \n", encoding="utf-8")
    assert read_kaldi_text(tmp_path / "tabs") == {"u1": "你好", "u2": "hello world"}


def test_fixture_text(fixtures_dir):
    texts = read_kaldi_text(fixtures_dir / "audio" / "text")
    assert texts["p04"] == "我们开会吧 let us start the meeting" and len(texts) == 10


def test_text_writers_reject_bad_entries(tmp_path):
    with pytest.raises(ValueError, match="without whitespace"):
        write_kaldi_text(tmp_path / "text", [("my utt", "x")])
    with pytest.raises(ValueError, match="single-line"):
        write_kaldi_text(tmp_path / "text", {"u": "two\nlines"})
    with pytest.raises(ValueError, match="without tabs"):
        write_plain_text(tmp_path / "out.txt", {"a\tb": "x"})


def test_plain_text_and_jsonl(tmp_path):
    write_plain_text(tmp_path / "out.txt", [("sub/my file", "你好 world"), ("b", "")])
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "sub/my file\t你好 world\nb\t\n"
    records = [
        {"uttid": "a", "text": "你好", "segments": [SpeechSegment(0.5, 1.25)], "rtf": np.float32(0.5)},
        {"uttid": "b", "text": "", "timestamp": (0.0, 1.0), "array": np.arange(2)},
    ]
    write_jsonl(tmp_path / "out.jsonl", records)
    content = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert "你好" in content  # not \u-escaped
    assert [json.loads(line) for line in content.splitlines()] == [
        {"uttid": "a", "text": "你好", "segments": [{"start": 0.5, "end": 1.25}], "rtf": 0.5},
        {"uttid": "b", "text": "", "timestamp": [0.0, 1.0], "array": [0, 1]},
    ]
    with pytest.raises(TypeError, match="mapping"):
        write_jsonl(tmp_path / "bad.jsonl", [("a", "b")])


# --- subtitles ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, srt",
    [
        (0, "00:00:00,000"),
        (1.5, "00:00:01,500"),
        (3661.2346, "01:01:01,235"),
        (59.9996, "00:01:00,000"),
        (360000, "100:00:00,000"),
        (np.float32(2.25), "00:00:02,250"),
    ],
)
def test_format_timestamp(seconds, srt):
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, ".") == srt.replace(",", ".")


@pytest.mark.parametrize("seconds", [-0.001, float("nan"), float("inf"), None])
def test_format_timestamp_rejects(seconds):
    with pytest.raises(ValueError, match="finite number of seconds"):
        format_timestamp(seconds)


CHUNKS = [
    (0.5, 2.0, "今天天气很好"),
    {"timestamp": (2.0, 3.5), "text": "  "},  # no text: no cue
    {"timestamp": (3.5, 65.25), "text": "TURN ON <unk> & go\n\nnow"},
]


def test_srt(tmp_path):
    expected = (
        "1\n00:00:00,500 --> 00:00:02,000\n今天天气很好\n\n2\n00:00:03,500 --> 00:01:05,250\nTURN ON <unk> & go\nnow\n"
    )
    assert format_srt(CHUNKS) == expected
    write_srt(tmp_path / "a.srt", CHUNKS)
    assert (tmp_path / "a.srt").read_text(encoding="utf-8") == expected


def test_vtt(tmp_path):
    expected = (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:02.000\n今天天气很好\n\n"
        "00:00:03.500 --> 00:01:05.250\nTURN ON &lt;unk&gt; &amp; go\nnow\n"
    )
    assert format_vtt(CHUNKS) == expected
    write_vtt(tmp_path / "a.vtt", CHUNKS)
    assert (tmp_path / "a.vtt").read_text(encoding="utf-8") == expected
    assert format_vtt([]) == "WEBVTT\n"


def test_subtitles_reject_bad_chunks():
    with pytest.raises(ValueError, match="no end time"):
        format_srt([{"timestamp": (1.0, None), "text": "x"}])
    with pytest.raises(ValueError, match="ends .* before it starts"):
        format_vtt([(2.0, 1.0, "x")])
    with pytest.raises(ValueError, match="'timestamp' and 'text'"):
        format_srt([{"start": 0, "end": 1, "text": "x"}])


# --- inputs -------------------------------------------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    for relative in ["b.flac", "sub/a.WAV", "sub/deeper/c.mp3", "notes.txt", ".hidden/x.wav", "sub/._a.wav"]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).touch()


def test_iter_audio_inputs_directory(tmp_path):
    make_tree(tmp_path / "corpus")
    pairs = iter_audio_inputs([tmp_path / "corpus"])
    assert pairs == [
        ("b", str(tmp_path / "corpus" / "b.flac")),
        ("sub/a", str(tmp_path / "corpus" / "sub" / "a.WAV")),
        ("sub/deeper/c", str(tmp_path / "corpus" / "sub" / "deeper" / "c.mp3")),
    ]


def test_iter_audio_inputs_mixed_arguments(tmp_path, fixtures_dir):
    make_tree(tmp_path / "corpus")
    (tmp_path / "single.m4a").touch()
    pairs = iter_audio_inputs([str(tmp_path / "single.m4a"), fixtures_dir / "audio" / "wav.scp", tmp_path / "corpus"])
    assert [uttid for uttid, _ in pairs] == [
        "single",
        *[f"p{i:02d}" for i in range(1, 11)],
        "b",
        "sub/a",
        "sub/deeper/c",
    ]


def test_iter_audio_inputs_errors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.wav").touch()
    (tmp_path / "b" / "x.wav").touch()
    with pytest.raises(ValueError, match="uttid 'x' is given twice"):
        iter_audio_inputs([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(FileNotFoundError, match="nothing.wav"):
        iter_audio_inputs([tmp_path / "nothing.wav"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        iter_audio_inputs([tmp_path / "empty"])


def test_dataset_directories(tmp_path):
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"audio": ["a.wav"], "text": ["x"]})
    dataset.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "dict"))
    assert is_dataset_dir(tmp_path / "single") and is_dataset_dir(tmp_path / "dict")
    (tmp_path / "plain").mkdir()
    assert not is_dataset_dir(tmp_path / "plain")
    with pytest.raises(ValueError, match="save_to_disk"):
        iter_audio_inputs([tmp_path / "single"])


# --- resume log ---------------------------------------------------------------------------------------------------------


def test_resume_log_round_trip(tmp_path):
    path = tmp_path / "done.jsonl"
    with ResumeLog(path) as log:
        log.add("a", {"text": "你好", "timestamp": (0.0, 1.5)})
        log.add("b", {"text": "hello"})
        assert "a" in log and "c" not in log and len(log) == 2
        assert log.results["a"] == {"text": "你好", "timestamp": [0.0, 1.5]}
    with ResumeLog(path) as log:
        assert log.results == {"a": {"text": "你好", "timestamp": [0.0, 1.5]}, "b": {"text": "hello"}}
        log.add("c", {"text": "again"})
    with ResumeLog(path) as log:
        assert len(log) == 3


def test_resume_log_drops_a_truncated_last_line(tmp_path):
    path = tmp_path / "done.jsonl"
    with ResumeLog(path) as log:
        log.add("a", {"text": "一"})
        log.add("b", {"text": "二"})
    complete = path.read_bytes()
    path.write_bytes(complete + '{"uttid": "c", "result": {"text": "三'.encode()[:-1])  # cut inside a character
    with ResumeLog(path) as log:
        assert set(log.results) == {"a", "b"}
        assert path.read_bytes() == complete  # the partial line is gone
        log.add("c", {"text": "三"})
    with ResumeLog(path) as log:
        assert log.results["c"] == {"text": "三"}


def test_resume_log_rejects_damage_and_other_settings(tmp_path):
    path = tmp_path / "done.jsonl"
    path.write_text('{"uttid": "a", "result": 1}\nnot json\n{"uttid": "b", "result": 2}\n')
    with pytest.raises(ValueError, match=r"done.jsonl:2: damaged"):
        ResumeLog(path)
    path.write_text('{"uttid": "a"}\n')
    with pytest.raises(ValueError, match="not a resume log record"):
        ResumeLog(path)

    settings = {"model": "aed", "beam_size": 3}
    other = tmp_path / "other.jsonl"
    with ResumeLog(other, metadata=settings) as log:
        log.add("a", "x")
    with ResumeLog(other, metadata={"beam_size": 3, "model": "aed"}) as log:
        assert log.results == {"a": "x"}
    with pytest.raises(ValueError, match="other settings"):
        ResumeLog(other, metadata={"model": "llm", "beam_size": 3})
    with ResumeLog(other) as log:  # without metadata: no check
        assert log.results == {"a": "x"}
    plain = tmp_path / "plain.jsonl"
    with ResumeLog(plain) as log:
        log.add("a", "x")
    with pytest.raises(ValueError, match="no metadata"):
        ResumeLog(plain, metadata=settings)


def test_resume_log_writes_each_result_immediately(tmp_path):
    path = tmp_path / "done.jsonl"
    log = ResumeLog(path)
    log.add("a", {"text": "x"})
    # Another reader sees the line before the log is closed (as after a crash).
    with ResumeLog(path) as reader:
        assert reader.results == {"a": {"text": "x"}}
    log.close()
