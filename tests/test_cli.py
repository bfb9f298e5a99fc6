"""The `fireredasr-hf` command line: transcribe (inputs, output formats, failures, resume), eval, convert."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from fireredasr_hf import cli, transcription
from fireredasr_hf.pipeline_fireredasr import FireRedAsrPipeline
from fireredasr_hf.transcript_io import read_kaldi_text

EXPECTED = {
    "p01": "今天天气很好",
    "p02": "TURN ON THE LIGHT",
    "p03": "我想去北京看看长城",
    "p04": "我们开会吧 LET US START THE MEETING",
    "p06": "SPEECH RECOGNITION IS A LOT OF FUN",
}


@pytest.fixture(scope="module", autouse=True)
def restore_thread_count():
    # The commands below run with --num-threads 1, which sets torch's global thread count.
    num_threads = torch.get_num_threads()
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(scope="module")
def audio_dir(fixtures_dir, tmp_path_factory):
    """p01, p02 (wav), sub/p04 (flac) and a corrupt bad.wav."""
    directory = tmp_path_factory.mktemp("audio")
    for uttid in ("p01", "p02"):
        shutil.copy(fixtures_dir / "audio" / f"{uttid}.wav", directory)
    (directory / "sub").mkdir()
    audio, rate = soundfile.read(fixtures_dir / "audio" / "p04.wav")
    soundfile.write(directory / "sub" / "p04.flac", audio, rate)
    (directory / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    return directory


def run_console(*args, cwd) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "fireredasr-hf"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "fireredasr_hf.cli"]
    return subprocess.run(
        [*command, *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def transcribe(model_dir, *args) -> int:
    return cli.main(["transcribe", "--model", str(model_dir), "--num-threads", "1", "--no-progress", *args])


def test_console_script_reports_a_corrupt_file_and_resumes_without_redoing_finished_files(
    converted_aed_dir, audio_dir, fixtures_dir, tmp_path
):
    inputs = tmp_path / "inputs"
    shutil.copytree(audio_dir, inputs)
    output = tmp_path / "subtitles"
    arguments = [
        "transcribe",
        "--model",
        str(converted_aed_dir),
        str(inputs),
        "--output-format",
        "srt",
        "--output",
        str(output),
        "--num-threads",
        "1",
        "--batch-size",
        "2",
    ]
    first = run_console(*arguments, cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-2000:]
    stderr = first.stderr
    assert "3 recording(s), 6.7 s of audio decoded in" in stderr and "real-time factor" in stderr
    assert "1 failed" in stderr and "FAILED bad: " in stderr and "cannot decode audio file" in stderr
    assert "file/s" in stderr or "s/file" in stderr  # the progress bar
    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("*.srt")) == [
        "p01.srt",
        "p02.srt",
        "sub/p04.srt",
    ]
    cue_number, times, text = (output / "sub" / "p04.srt").read_text().splitlines()
    assert cue_number == "1" and times.startswith("00:00:00,") and " --> 00:00:0" in times and text
    log = output / transcription.RESUME_LOG_NAME
    assert len(log.read_text().splitlines()) == 4  # metadata + 3 results; the failure is retried next time

    shutil.copy(fixtures_dir / "audio" / "p03.wav", inputs / "bad.wav")  # the file is fixed
    second = run_console(*arguments, "--resume", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Resumed: 3 recording(s) were already done" in second.stderr
    assert "1 recording(s), 3.7 s of audio decoded" in second.stderr  # only the fixed one
    assert (output / "bad.srt").read_text().startswith("1\n00:00:00,")
    assert not log.exists()  # everything succeeded: nothing left to resume


def test_output_formats(converted_aed_dir, audio_dir, tmp_path, capsys):
    inputs = [str(audio_dir / "p01.wav"), str(audio_dir / "sub")]
    assert transcribe(converted_aed_dir, *inputs, "--output-format", "kaldi", "-o", str(tmp_path / "text")) == 0
    assert read_kaldi_text(tmp_path / "text") == {"p01": EXPECTED["p01"], "p04": EXPECTED["p04"]}

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert transcribe(converted_aed_dir, *inputs, "--output-format", "jsonl", "--timestamps", "-o", str(out_dir)) == 0
    records = [json.loads(line) for line in (out_dir / "transcripts.jsonl").read_text().splitlines()]
    # With timestamps the clips are cut to their speech, which changes what the tiny model reads.
    assert [record["uttid"] for record in records] == ["p01", "p04"]
    assert records[0]["duration"] == 2.398 and records[0]["source"] == inputs[0]
    (chunk,) = records[0]["chunks"]
    assert chunk["text"] == records[0]["text"] and 0 <= chunk["timestamp"][0] < chunk["timestamp"][1] <= 2.4

    assert transcribe(converted_aed_dir, *inputs, "--output-format", "vtt", "-o", str(tmp_path / "vtt")) == 0
    vtt = (tmp_path / "vtt" / "p01.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n00:00:00.") and vtt.endswith(f"\n{chunk['text']}\n")

    capsys.readouterr()
    assert transcribe(converted_aed_dir, *inputs) == 0  # txt on standard output
    assert capsys.readouterr().out.splitlines() == [f"p01\t{EXPECTED['p01']}", f"p04\t{EXPECTED['p04']}"]


def test_wav_scp_dataset_and_decoding_options(converted_aed_dir, fixtures_dir, tmp_path, capsys):
    from datasets import Audio, Dataset

    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"utt_{u} {fixtures_dir / 'audio' / f'{u}.wav'}\n" for u in ("p06", "p02")))
    dataset = Dataset.from_dict(
        {"id": ["a", "b"], "audio": [str(fixtures_dir / "audio" / f"{u}.wav") for u in ("p03", "p01")]}
    ).cast_column("audio", Audio())
    dataset.save_to_disk(tmp_path / "dataset")
    capsys.readouterr()
    assert transcribe(converted_aed_dir, str(scp), str(tmp_path / "dataset"), "--output-format", "kaldi") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"utt_p06 {EXPECTED['p06']}",
        f"utt_p02 {EXPECTED['p02']}",
        f"a {EXPECTED['p03']}",
        f"b {EXPECTED['p01']}",
    ]

    assert transcribe(converted_aed_dir, str(scp), "--num-beams", "1", "--max-new-tokens", "3") == 0
    assert capsys.readouterr().out.splitlines() == ["utt_p06\tSPEECH RECOGNITION", "utt_p02\tTURN"]

    assert transcribe(converted_aed_dir, str(scp), "--repetition-penalty", "2") == 2
    assert "--repetition-penalty applies to FireRedASR-LLM models only" in capsys.readouterr().err


def test_resume_after_an_interruption_decodes_only_the_rest(converted_aed_dir, fixtures_dir, tmp_path, monkeypatch):
    scp = tmp_path / "wav.scp"
    uttids = ["p01", "p02", "p03", "p04"]
    scp.write_text("".join(f"{u} {fixtures_dir / 'audio' / f'{u}.wav'}\n" for u in uttids))
    output = tmp_path / "out.txt"
    decoded = []
    call = FireRedAsrPipeline.__call__

    def counting_call(self, inputs, **kwargs):
        decoded.extend(inputs if isinstance(inputs, list) else [inputs])
        return call(self, inputs, **kwargs)

    monkeypatch.setattr(FireRedAsrPipeline, "__call__", counting_call)
    advance = cli.ProgressBar.__call__
    finished = []

    def interrupt_after_two(self, item, audio_seconds):
        advance(self, item, audio_seconds)
        finished.append(item.uttid)
        if len(finished) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.ProgressBar, "__call__", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        transcribe(converted_aed_dir, str(scp), "--batch-size", "1", "-o", str(output))
    assert len(decoded) == 2 and not output.exists()
    monkeypatch.setattr(cli.ProgressBar, "__call__", advance)

    assert (
        transcribe(converted_aed_dir, str(scp), "--batch-size", "1", "-o", str(output), "--num-beams", "1", "--resume")
        == 2
    )  # other settings than the interrupted job: refused
    decoded.clear()
    assert transcribe(converted_aed_dir, str(scp), "--batch-size", "1", "-o", str(output), "--resume") == 0
    assert len(decoded) == 2
    assert output.read_text().splitlines() == [f"{u}\t{EXPECTED[u]}" for u in uttids]
    assert not Path(f"{output}.resume.jsonl").exists()


def test_argument_errors(converted_aed_dir, fixtures_dir, tmp_path, capsys):
    assert transcribe(converted_aed_dir, str(tmp_path / "missing.wav")) == 2
    assert "input not found" in capsys.readouterr().err
    assert transcribe(converted_aed_dir, str(tmp_path), "--output-format", "srt") == 2
    assert "give --output DIR" in capsys.readouterr().err
    assert transcribe(converted_aed_dir, str(tmp_path), "--resume") == 2
    assert "--resume needs --output" in capsys.readouterr().err
    assert transcribe(converted_aed_dir, str(tmp_path)) == 2
    assert "no audio files" in capsys.readouterr().err
    assert transcribe(tmp_path, str(fixtures_dir / "audio" / "p01.wav")) == 2
    assert "not a converted FireRedASR model" in capsys.readouterr().err


def test_eval_scores_a_kaldi_directory(converted_aed_dir, fixtures_dir, tmp_path, capsys):
    # Hypotheses are EXPECTED; the references below differ from them by a known number of edits.
    references = {
        "p01": "今天天气不好",  # 6 tokens, 1 substitution
        "p03": "我想去北京看长城",  # 8 tokens, 1 insertion (看看)
        "p02": "turn off the light",  # 4 words, 1 substitution
        "p06": "speech recognition is a lot of fun",  # 7 words, correct (case folded)
        "p04": "我们开会吧 let us start meeting",  # 5 characters + 4 words, 1 insertion (THE)
    }
    data = tmp_path / "test"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{u} {fixtures_dir / 'audio' / f'{u}.wav'}\n" for u in references))
    (data / "text").write_text("".join(f"{u} {text}\n" for u, text in references.items()))
    output_dir = tmp_path / "eval"
    code = cli.main(
        [
            "eval",
            "--model",
            str(converted_aed_dir),
            "--data",
            str(data),
            "--output-dir",
            str(output_dir),
            "--num-threads",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    scores = json.loads((output_dir / "scores.json").read_text())
    assert scores["cer"] == pytest.approx(2 / 14)  # p01, p03
    assert scores["wer"] == pytest.approx(1 / 11)  # p02, p06
    assert scores["mer"] == pytest.approx(4 / 34)  # all five
    assert scores["utterances"] == 5 and scores["failed"] == []
    assert "CER     zh" in table and "14.29" in table and "9.09" in table and "11.76" in table
    assert read_kaldi_text(output_dir / "hyp.txt") == {u: EXPECTED[u] for u in references}
    details = (output_dir / "errors.txt").read_text()
    assert "p04 mixed rate 11.11 % ref 9 sub 0 del 0 ins 1" in details


def test_convert_writes_a_loadable_directory(fixtures_dir, tmp_path, capsys):
    assert (
        cli.main(["convert", str(fixtures_dir / "aed-tiny"), str(tmp_path / "converted"), "--max_shard_size", "1GB"])
        == 0
    )
    assert "Converted model written to" in capsys.readouterr().out
    assert json.loads((tmp_path / "converted" / "config.json").read_text())["model_type"] == "fireredasr_aed"
    # Readable like the user's other files (safetensors itself writes 0600 files).
    umask = os.umask(0o022)
    os.umask(umask)
    converted = list((tmp_path / "converted").rglob("*"))
    assert (tmp_path / "converted" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    assert {path.stat().st_mode & 0o777 for path in converted if path.is_file()} == {0o666 & ~umask}
    assert {path.stat().st_mode & 0o777 for path in converted if path.is_dir()} <= {0o777 & ~umask}
    assert cli.main(["convert", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "is not an original FireRedASR directory" in capsys.readouterr().err


def test_commands_are_listed_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = capsys.readouterr().out
    assert all(command.name in help_text for command in cli.COMMANDS)


def test_transcribe_with_the_llm_variant(converted_llm_dir, fixtures_dir, capsys):
    wav = str(fixtures_dir / "audio" / "p02.wav")
    assert transcribe(converted_llm_dir, wav, "--repetition-penalty", "3.0", "--llm-length-penalty", "1.0") == 0
    assert capsys.readouterr().out == "p02\tturn on the light\n"
    assert transcribe(converted_llm_dir, wav, "--softmax-smoothing", "1.25") == 2
    assert "--softmax-smoothing applies to FireRedASR-AED models only" in capsys.readouterr().err


def test_timestamps_apply_to_jsonl_only(converted_aed_dir, audio_dir, capsys):
    """txt and kaldi texts never change with --timestamps: the option is refused there."""
    for output_format in ("txt", "kaldi"):
        assert (
            transcribe(converted_aed_dir, str(audio_dir / "p01.wav"), "--output-format", output_format, "--timestamps")
            == 2
        )
        assert "--timestamps adds timed chunks to jsonl, srt and vtt output" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_a_device_this_machine_lacks_is_one_line_and_exit_2(converted_aed_dir, fixtures_dir, device, capsys):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    wav = str(fixtures_dir / "audio" / "p01.wav")
    assert cli.main(["transcribe", "--model", str(converted_aed_dir), "--device", device, wav]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fireredasr-hf transcribe: error: device") and ("available" in line or "usable" in line)


def test_a_missing_extra_is_named(fixtures_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jiwer", None)  # as if the [data] extra were not installed
    data = tmp_path / "test"
    data.mkdir()
    (data / "wav.scp").write_text(f"p01 {fixtures_dir / 'audio' / 'p01.wav'}\n")
    (data / "text").write_text("p01 今天天气很好\n")
    assert cli.main(["eval", "--model", str(tmp_path), "--data", str(data)]) == 2
    assert capsys.readouterr().err.strip().endswith("needs jiwer (not installed): pip install 'fireredasr-hf[data]'")
