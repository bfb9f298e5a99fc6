"""The chain from the command line: FireRedVAD segments -> FireRedASR -> FireRedPunc sentences with times, written as
JSON lines and as subtitles cut at sentence boundaries and at the cue limits; what happens when the default
detector or punctuation model cannot be obtained."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fireredasr_hf import cli
from fireredasr_hf.pipeline_fireredasr import join_segment_texts
from fireredasr_hf.transcript_io import text_width

SENTENCE_END = tuple("。？！.?!")


@pytest.fixture(scope="module")
def vad_model():
    if "FIREREDASR_HF_VAD_MODEL" not in os.environ:
        pytest.skip("the default detector (FireRedVAD) needs the shared fixtures")
    return os.environ["FIREREDASR_HF_VAD_MODEL"]


@pytest.fixture(scope="module")
def recording(fixtures_dir, tmp_path_factory) -> Path:
    """Four utterances with pauses (26 s): longer than nothing, so that the detector segments it."""
    clips = [sf.read(fixtures_dir / "audio" / f"{u}.wav", dtype="float32")[0] for u in ("p01", "p06", "p03", "p04")]
    pause = np.zeros(int(1.5 * 16000), np.float32)
    path = tmp_path_factory.mktemp("recording") / "meeting.wav"
    sf.write(path, np.concatenate([pause, *[np.concatenate([clip, pause]) for clip in clips]]), 16000)
    return path


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fireredasr_hf.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def check_sentences(result: dict, duration: float) -> None:
    chunks = result["chunks"]
    assert chunks and all(chunk["text"].endswith(SENTENCE_END) for chunk in chunks[:-1])
    assert "".join(chunk["text"] for chunk in chunks).replace(" ", "") == result["text"].replace(" ", "")
    times = [time for chunk in chunks for time in chunk["timestamp"]]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= duration


def test_cli_transcribes_into_punctuated_sentences_and_subtitles(
    converted_aed_dir, original_punc_dir, recording, vad_model, tmp_path, monkeypatch
):
    env = {"FIREREDASR_HF_CACHE": str(tmp_path / "cache")}
    common = ["transcribe", "--model", str(converted_aed_dir), "--punctuation", str(original_punc_dir)]
    jsonl = run_cli(*common, str(recording), "--output-format", "jsonl", "--timestamps", "--no-progress", env=env)
    assert jsonl.returncode == 0, jsonl.stderr[-3000:]
    assert "not punctuated" not in jsonl.stderr
    (result,) = [json.loads(line) for line in jsonl.stdout.splitlines()]
    check_sentences(result, result["duration"])
    assert len(result["chunks"]) > 4  # the tiny random punctuation model cuts often

    monkeypatch.setenv("FIREREDASR_HF_CACHE", env["FIREREDASR_HF_CACHE"])  # the conversion above is reused
    code = cli.main([
        *common, str(recording), "--output-format", "srt", "--output", str(tmp_path / "srt"),
        "--max-cue-width", "12", "--max-cue-s", "1.5", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    blocks = (tmp_path / "srt" / "meeting.srt").read_text(encoding="utf-8").strip().split("\n\n")
    cues = [block.split("\n", 2)[2] for block in blocks]
    assert all(text_width(cue) <= 12 or " " not in cue for cue in cues)
    # Cues never straddle two sentences: together they give the sentences, cut further where too long.
    sentences = iter(chunk["text"] for chunk in result["chunks"])
    rebuilt, current = [], ""
    for cue in cues:
        current = f"{current} {cue}".strip() if current and not current.endswith(SENTENCE_END) else cue
        if current.endswith(SENTENCE_END):
            rebuilt.append(current)
            current = ""
    expected = [s for s in sentences if s.endswith(SENTENCE_END)]
    assert [r.replace(" ", "") for r in rebuilt] == [e.replace(" ", "") for e in expected]
    for block in blocks:
        start, end = block.split("\n")[1].split(" --> ")
        seconds = [
            sum(float(x) * m for x, m in zip(t.replace(",", ".").split(":"), (3600, 60, 1))) for t in (start, end)
        ]
        assert seconds[1] - seconds[0] <= 1.5 + 1e-3


def test_default_punctuation_model_missing_is_noted_once(converted_aed_dir, recording, vad_model, capsys, monkeypatch):
    monkeypatch.delenv("FIREREDASR_HF_PUNCTUATION_MODEL", raising=False)
    code = cli.main(["transcribe", "--model", str(converted_aed_dir), "--no-progress", str(recording)])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err.count("transcripts are not punctuated") == 1
    assert "hf download FireRedTeam/FireRedPunc" in captured.err
    assert not any(mark in captured.out for mark in "。？！，")
    code = cli.main(["transcribe", "--model", str(converted_aed_dir), "--punctuation", "none", "--no-progress",
                     str(recording)])  # fmt: skip
    assert code == 0 and "not punctuated" not in capsys.readouterr().err


def test_unavailable_detector_says_what_to_do(converted_aed_dir, recording, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FIREREDASR_HF_VAD_MODEL")  # offline, and FireRedTeam/FireRedVAD is not in any cache here
    base = ["transcribe", "--model", str(converted_aed_dir), "--punctuation", "none", "--no-progress"]

    # Named explicitly (or needed by every recording, as timestamps are): the job stops before decoding.
    for extra in (["--vad", "firered"], ["--output-format", "jsonl", "--timestamps"]):
        code = cli.main([*base, *extra, str(recording)])
        captured = capsys.readouterr()
        assert code == 2 and not captured.out and "Traceback" not in captured.err
        assert captured.err.count("FireRedVAD (FireRedTeam/FireRedVAD") == 1
        assert "hf download FireRedTeam/FireRedVAD --include 'VAD/*'" in captured.err
        assert "--vad-model DIR" in captured.err and "--vad silero" in captured.err

    # The default detector is needed only for recordings beyond the model's limit: the others are transcribed.
    assert cli.main([*base, str(recording)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("meeting\t") and captured.err.count("hf download FireRedTeam/FireRedVAD") == 1
    assert cli.main([*base, "--max-segment-s", "10", str(recording)]) == 1
    captured = capsys.readouterr()
    assert not captured.out and "FAILED meeting: " in captured.err and "needs segmentation" in captured.err


def test_detector_choice(converted_aed_dir, recording, vad_model, capsys):
    base = ["transcribe", "--model", str(converted_aed_dir), "--punctuation", "none", "--no-progress"]
    assert cli.main([*base, "--vad-model", vad_model, "--output-format", "jsonl", "--timestamps", str(recording)]) == 0
    firered = json.loads(capsys.readouterr().out)
    assert cli.main([*base, "--vad", "energy", "--output-format", "jsonl", "--timestamps", str(recording)]) == 0
    energy = json.loads(capsys.readouterr().out)
    assert len(firered["chunks"]) >= 1 and len(energy["chunks"]) >= 1
    assert cli.main([*base, "--vad", "energy", "--vad-model", vad_model, str(recording)]) == 2
    assert "--vad-model names a FireRedVAD model" in capsys.readouterr().err


@pytest.mark.slow
def test_ten_minute_recording_with_default_settings(converted_aed_dir, original_punc_dir, fixtures_dir, tmp_path):
    """Done when: a 10-minute mixed recording transcribed from the command line with default settings is segmented
    by FireRedVAD and comes back as punctuated sentences with times (the default models: the fixtures' FireRedVAD,
    and the tiny FireRedPunc named where the default would be found)."""
    from test_fireredvad import mixed_recording

    if "FIREREDASR_HF_VAD_MODEL" not in os.environ:
        pytest.skip("the default detector (FireRedVAD) needs the shared fixtures")
    path = tmp_path / "ten-minutes.wav"
    sf.write(path, mixed_recording(fixtures_dir, 600, seed=5), 16000)
    env = {"FIREREDASR_HF_PUNCTUATION_MODEL": str(original_punc_dir), "FIREREDASR_HF_CACHE": str(tmp_path / "cache")}
    result = run_cli(
        "transcribe", "--model", str(converted_aed_dir), str(path), "--output-format", "jsonl", "--timestamps",
        "--output", str(tmp_path / "out.jsonl"), "--no-progress", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert record["duration"] == 600.0
    check_sentences(record, 600.0)
    assert len(record["chunks"]) > 100 and record["chunks"][-1]["timestamp"][1] > 500


# --- With word times (FireRedASR2-AED: a CTC head) ----------------------------------------------------------------


def srt_cues(text: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        _, times, cue = block.split("\n", 2)
        start, end = (
            round(sum(float(x) * m for x, m in zip(t.replace(",", ".").split(":"), (3600, 60, 1))), 3)
            for t in times.split(" --> ")
        )
        cues.append((start, end, cue))
    return cues


def test_cli_word_timestamps_with_punctuation(
    converted_aed2_dir, original_punc_dir, recording, vad_model, tmp_path, monkeypatch, capsys
):
    """`--timestamps word --punctuation`: words carry their marks, subtitle lines end with their sentence and start
    and end with a word; segment timestamps give sentences timed by their words."""
    env = {"FIREREDASR_HF_CACHE": str(tmp_path / "cache")}
    common = ["transcribe", "--model", str(converted_aed2_dir), "--punctuation", str(original_punc_dir)]
    common.append("--no-progress")
    words_run = run_cli(*common, str(recording), "--output-format", "jsonl", "--timestamps", "word", env=env)
    assert words_run.returncode == 0, words_run.stderr[-3000:]
    (record,) = [json.loads(line) for line in words_run.stdout.splitlines()]
    words, lines = record["words"], record["chunks"]
    assert sum(word["text"].endswith(tuple("，。？！,.?!")) for word in words) > 5
    assert all(set(word) == {"text", "timestamp", "confidence"} for word in words)
    # Lines: consecutive words, never across a sentence end.
    position = 0
    for line in lines:
        count = next(
            n for n in range(1, len(words) - position + 1)
            if line["timestamp"] == [words[position]["timestamp"][0], words[position + n - 1]["timestamp"][1]]
            and line["text"].replace(" ", "") == "".join(w["text"] for w in words[position : position + n])
        )  # fmt: skip
        assert not any(w["text"].endswith(SENTENCE_END) for w in words[position : position + count - 1])
        position += count
    assert position == len(words)

    monkeypatch.setenv("FIREREDASR_HF_CACHE", env["FIREREDASR_HF_CACHE"])  # the conversion above is reused
    capsys.readouterr()
    assert cli.main([*common, str(recording), "--output-format", "jsonl", "--timestamps"]) == 0
    (sentences,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sentences["text"] == record["text"]
    check_sentences(sentences, sentences["duration"])
    word_times = {time for word in words for time in word["timestamp"]}
    assert all(set(chunk["timestamp"]) <= word_times for chunk in sentences["chunks"])

    srt = [*common, str(recording), "--timestamps", "word", "--output-format", "srt", "--output", str(tmp_path / "srt")]
    assert cli.main(srt) == 0
    cues = srt_cues((tmp_path / "srt" / "meeting.srt").read_text(encoding="utf-8"))
    assert [(start, end, text) for start, end, text in cues] == [
        (line["timestamp"][0], line["timestamp"][1], line["text"]) for line in lines
    ]


def test_server_segments_and_words_with_punctuation(converted_aed2_dir, converted_punc_dir, recording, vad_model):
    """verbose_json of a punctuating server: segments are the sentences timed by their words, words carry their
    marks, as the engine gives them."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from fireredasr_hf.serving import ServerConfig, create_app
    from fireredasr_hf.transcription import Transcriber

    transcriber = Transcriber(str(converted_aed2_dir), device="cpu", punctuation=str(converted_punc_dir))
    sentences = transcriber.transcribe_audio(str(recording), return_timestamps=True)["chunks"]
    words = transcriber.transcribe_audio(str(recording), return_timestamps="word")["chunks"]
    app = create_app(transcriber, ServerConfig(model_names=("tiny2",), max_wait_ms=5))
    with TestClient(app) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("meeting.wav", recording.read_bytes(), "audio/wav")},
            data={"model": "tiny2", "response_format": "verbose_json",
                  "timestamp_granularities[]": ["segment", "word"]},
        )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(s["text"], s["start"], s["end"]) for s in body["segments"]] == [
        (s["text"], *s["timestamp"]) for s in sentences
    ]
    assert [(w["word"], w["start"], w["end"]) for w in body["words"]] == [(w["text"], *w["timestamp"]) for w in words]
    assert any(w["word"].endswith(SENTENCE_END) for w in body["words"])
    assert body["text"] == join_segment_texts([s["text"] for s in sentences])
