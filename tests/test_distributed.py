"""`fireredasr-hf transcribe --ray`: the Ray Data runner on a local cluster (`ray.init(num_cpus=2)`) with the tiny
fixture model: results equal the single-process command's, a killed replica's recordings are redone with no
duplicate or missing row, an interrupted or extended job resumes with only what is left; and the output folder's
rules (settings, resume) without a cluster.

The tests that start a cluster take minutes on 2 shared cores: they are marked slow
(`.venv/bin/python -m pytest -m slow tests/test_distributed.py`, run by .ci/run)."""

import json
import os
import signal
from pathlib import Path

import pytest

from fireredasr_hf import cli
from fireredasr_hf.distributed import ShardedOutput, read_results, transcribe_on_ray
from fireredasr_hf.transcription import TranscriptionError, collect_inputs

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

WORKER_NAME = "MapWorker(MapBatches(TranscriptionWorker))"


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def single_process(converted_aed_dir, fixtures_dir, tmp_path_factory):
    """The single-process command's jsonl results for the fixture wav.scp, with timestamps, by uttid."""
    output = tmp_path_factory.mktemp("cli") / "out.jsonl"
    scp = str(fixtures_dir / "audio" / "wav.scp")
    arguments = ["transcribe", scp, "--model", str(converted_aed_dir), "--output-format", "jsonl"]
    assert cli.main([*arguments, "--output", str(output), "--timestamps", "--no-progress", "--num-threads", "1"]) == 0
    return {row["uttid"]: row for row in map(json.loads, output.read_text().splitlines())}


def manifest(fixtures_dir, directory: Path, copies: int) -> Path:
    """A JSON-lines manifest of the ten fixture recordings, `copies` times under distinct ids (`p01-0`, ...)."""
    rows = [
        {"id": f"p{index:02d}-{copy}", "audio": str(fixtures_dir / "audio" / f"p{index:02d}.wav")}
        for copy in range(copies)
        for index in range(1, 11)
    ]
    path = directory / "manifest.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def by_uttid(rows):
    ids = [row["uttid"] for row in rows]
    assert len(ids) == len(set(ids)), "duplicate rows"
    return {row["uttid"]: row for row in rows}


# ----------------------------------------------------------------------------------------------------------------
# On a local cluster


@pytest.mark.slow
@pytest.mark.parametrize("output_format", ["jsonl", "parquet"])
def test_results_equal_the_single_process_command(
    local_cluster, converted_aed_dir, fixtures_dir, single_process, tmp_path, output_format
):
    arguments = ["transcribe", "--ray", str(fixtures_dir / "audio" / "wav.scp"), "--model", str(converted_aed_dir)]
    arguments += ["--output", str(tmp_path / "out"), "--output-format", output_format, "--timestamps"]
    assert cli.main([*arguments, "--replicas", "2", "--batch-size", "3", "--no-progress"]) == 0
    assert by_uttid(read_results(tmp_path / "out")) == single_process
    assert {Path(name).suffix for name in ShardedOutput(tmp_path / "out").shard_names()} == {f".{output_format}"}


@pytest.mark.slow
def test_a_killed_replica_is_restarted_and_its_recordings_redone_once(
    local_cluster, converted_aed_dir, fixtures_dir, single_process, tmp_path
):
    inputs = collect_inputs([manifest(fixtures_dir, tmp_path, copies=4)])
    killed = []

    def kill_a_replica_midway(item, seconds):
        if len(killed) == 0:
            workers = [
                p for p in psutil.process_iter(["pid", "cmdline"]) if WORKER_NAME in " ".join(p.info["cmdline"] or [])
            ]
            assert len(workers) == 1
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    report = transcribe_on_ray(
        inputs,
        tmp_path / "out",
        str(converted_aed_dir),
        replicas=1,
        batch_size=2,
        transcriber_options={"timestamps": True},  # as the single-process run
        progress=kill_a_replica_midway,
    )
    assert killed and not psutil.pid_exists(killed[0])
    assert report.failures == {} and report.decoded == 40
    rows = by_uttid(read_results(tmp_path / "out"))
    assert sorted(rows) == sorted(item.uttid for item in inputs.items)  # none missing, none twice
    for uttid, row in rows.items():
        expected = single_process[uttid.split("-")[0]]
        assert (row["text"], row["chunks"]) == (expected["text"], expected["chunks"])


@pytest.mark.slow
def test_an_interrupted_job_resumes_with_only_what_is_left(local_cluster, converted_aed_dir, fixtures_dir, tmp_path):
    inputs = collect_inputs([manifest(fixtures_dir, tmp_path, copies=3)])
    output, seen = tmp_path / "out", []

    def interrupt(item, seconds):
        seen.append(item.uttid)
        if len(seen) == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transcribe_on_ray(inputs, output, str(converted_aed_dir), batch_size=2, rows_per_shard=1, progress=interrupt)
    kept = by_uttid(read_results(output))
    assert 12 <= len(kept) < 30  # what had come back was written before the interruption

    with pytest.raises(TranscriptionError, match="--resume"):
        transcribe_on_ray(inputs, output, str(converted_aed_dir))
    decoded = []
    report = transcribe_on_ray(
        inputs, output, str(converted_aed_dir), batch_size=4, resume=True, progress=lambda i, s: decoded.append(i.uttid)
    )
    assert report.resumed == len(kept) and report.decoded == 30 - len(kept)
    assert sorted(decoded) == sorted({item.uttid for item in inputs.items} - set(kept))
    assert sorted(by_uttid(read_results(output))) == sorted(item.uttid for item in inputs.items)

    # Nothing left: a resumed run starts no cluster work at all.
    again = transcribe_on_ray(inputs, output, str(converted_aed_dir), resume=True)
    assert (again.resumed, again.decoded) == (30, 0)


@pytest.mark.slow
def test_unreadable_recordings_are_failures_retried_by_a_resumed_run(
    local_cluster, converted_aed_dir, fixtures_dir, tmp_path
):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not audio")
    inputs = collect_inputs([fixtures_dir / "audio" / "p01.wav", broken])
    report = transcribe_on_ray(inputs, tmp_path / "out", str(converted_aed_dir))
    assert list(report.failures) == ["broken"] and "cannot decode" in report.failures["broken"]
    assert report.resume_log == str(tmp_path / "out")
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert [row["uttid"] for row in failures] == ["broken"]
    assert [row["uttid"] for row in read_results(tmp_path / "out")] == ["p01"]


# ----------------------------------------------------------------------------------------------------------------
# Without a cluster


def test_output_settings_must_match_to_resume(tmp_path):
    output = ShardedOutput(tmp_path / "out")
    output.check_settings({"model": "a", "options": {}}, resume=False)
    output.write_shard([{"uttid": "x", "text": "t", "duration": 1.0, "source": "x.wav"}])
    with pytest.raises(TranscriptionError, match="--resume"):
        ShardedOutput(tmp_path / "out").check_settings({"model": "a", "options": {}}, resume=False)
    with pytest.raises(TranscriptionError, match="other settings"):
        ShardedOutput(tmp_path / "out").check_settings({"model": "b", "options": {}}, resume=True)
    resumed = ShardedOutput(tmp_path / "out")
    resumed.check_settings({"model": "a", "options": {}}, resume=True)
    assert resumed.finished() == {"x"}


def test_shards_are_written_whole(tmp_path, monkeypatch):
    output = ShardedOutput(tmp_path / "out", "parquet")
    name = output.write_shard([{"uttid": "x", "text": "t", "duration": 1.0, "source": "x.wav"}])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [name]  # no temporary left
    assert read_results(tmp_path / "out") == [{"uttid": "x", "text": "t", "duration": 1.0, "source": "x.wav"}]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output-format", "srt"], "jsonl or parquet"),
        ([], "--output DIR"),
    ],
)
def test_ray_arguments_are_checked_before_anything_runs(fixtures_dir, extra, message, capsys):
    arguments = ["transcribe", "--ray", str(fixtures_dir / "audio" / "p01.wav"), "--model", "unused", *extra]
    assert cli.main(arguments) == 2
    assert message in capsys.readouterr().err


def test_parquet_output_needs_ray(fixtures_dir, tmp_path, capsys):
    arguments = ["transcribe", str(fixtures_dir / "audio" / "p01.wav"), "--model", "unused"]
    assert cli.main([*arguments, "--output-format", "parquet", "--output", str(tmp_path / "o")]) == 2
    assert "--ray" in capsys.readouterr().err


def test_ray_jobs_decide_the_default_punctuation_model_on_the_driver(
    original_punc_dir, fixtures_dir, tmp_path, monkeypatch, capsys
):
    """Replicas print nothing, so the driver decides what the single-process command decides: the default model
    (converted into the cache before any replica starts) when it can be obtained, else none, with the same note."""
    import fireredasr_hf.distributed
    from fireredasr_hf.hub import resolve_punctuation_model
    from fireredasr_hf.transcription import JobReport

    punctuation = []

    def transcribe_on_ray(inputs, output, model, transcriber_options, **kwargs):
        punctuation.append(transcriber_options["punctuation"])
        return JobReport(results={}, failures={})

    monkeypatch.setattr(fireredasr_hf.distributed, "transcribe_on_ray", transcribe_on_ray)
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    arguments = ["transcribe", "--ray", str(fixtures_dir / "audio" / "p01.wav"), "--model", "unused", "--no-progress"]
    arguments += ["--output", str(tmp_path / "out")]

    monkeypatch.setenv("FIREREDASR_HF_PUNCTUATION_MODEL", str(original_punc_dir))
    assert cli.main(arguments) == 0
    assert punctuation == [str(original_punc_dir)] and "not punctuated" not in capsys.readouterr().err
    assert Path(resolve_punctuation_model(original_punc_dir)).is_relative_to(tmp_path / "cache")  # already there

    monkeypatch.delenv("FIREREDASR_HF_PUNCTUATION_MODEL")  # FireRedTeam/FireRedPunc: not downloadable here
    assert cli.main(arguments) == 0
    assert punctuation[-1] is None
    error = capsys.readouterr().err
    assert error.count("transcripts are not punctuated") == 1 and "hf download FireRedTeam/FireRedPunc" in error

    assert cli.main([*arguments, "--punctuation", "none"]) == 0
    assert punctuation[-1] is None and "not punctuated" not in capsys.readouterr().err
    assert cli.main([*arguments, "--punctuation", str(original_punc_dir)]) == 0
    assert punctuation[-1] == str(original_punc_dir)


@pytest.mark.slow
def test_default_punctuation_reaches_the_replicas(
    local_cluster, converted_aed_dir, original_punc_dir, fixtures_dir, tmp_path, monkeypatch
):
    """`--ray` with the default punctuation model available punctuates as the single-process command does."""
    monkeypatch.setenv("FIREREDASR_HF_PUNCTUATION_MODEL", str(original_punc_dir))
    monkeypatch.setenv("FIREREDASR_HF_CACHE", str(tmp_path / "cache"))
    scp = str(fixtures_dir / "audio" / "wav.scp")
    arguments = ["transcribe", scp, "--model", str(converted_aed_dir), "--timestamps", "--no-progress"]
    assert cli.main([*arguments, "--output-format", "jsonl", "--output", str(tmp_path / "one.jsonl")]) == 0
    expected = {row["uttid"]: row for row in map(json.loads, (tmp_path / "one.jsonl").read_text().splitlines())}
    assert any(mark in row["text"] for row in expected.values() for mark in "，。？！")
    assert cli.main([*arguments, "--ray", "--output", str(tmp_path / "out"), "--replicas", "2"]) == 0
    assert by_uttid(read_results(tmp_path / "out")) == expected
