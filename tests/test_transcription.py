"""The transcription engine: outputs stay inside the folder named, finished work survives failures (resume log kept
until the outputs are written), ids and the output location are checked before decoding, one job per output."""

import errno
import json
import os
import shutil

import pytest

from fireredasr_hf import cli, transcription
from fireredasr_hf.transcription import (
    OutputTarget,
    OutputWriteError,
    Transcriber,
    TranscriptionError,
    collect_inputs,
    file_item,
    subtitle_relative_path,
    transcribe_files,
)

EXPECTED = {"p01": "今天天气很好", "p02": "TURN ON THE LIGHT"}


@pytest.fixture(scope="module")
def transcriber(converted_aed_dir):
    return Transcriber(str(converted_aed_dir), device="cpu", batch_size=2)


@pytest.fixture
def items(fixtures_dir):
    return [file_item(uttid, str(fixtures_dir / "audio" / f"{uttid}.wav")) for uttid in EXPECTED]


class CountingTranscriber:
    """Wraps a Transcriber and counts the recordings it is asked to decode."""

    def __init__(self, transcriber):
        self.inner = transcriber
        self.decoded = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def transcribe(self, items, on_result, on_failure):
        self.decoded.extend(item.uttid for item in items)
        self.inner.transcribe(items, on_result, on_failure)


@pytest.mark.parametrize("uttid", ["../../x", "/abs/path", "a/../../b", "a//b", "", "a\\b", "x\ny", "./x", "a/."])
def test_ids_that_would_leave_the_output_folder_are_refused(uttid):
    with pytest.raises(TranscriptionError, match="cannot name a subtitle file|empty|line break"):
        OutputTarget.check_ids(type("T", (), {"format": "srt", "subtitles": True})(), [uttid])


def test_subtitle_paths_keep_sub_folders():
    assert subtitle_relative_path("sub/p04", "srt").as_posix() == "sub/p04.srt"


def test_a_hostile_id_stops_the_job_before_decoding_and_writes_nothing(transcriber, fixtures_dir, tmp_path):
    counting = CountingTranscriber(transcriber)
    items = [file_item("../../escaped", str(fixtures_dir / "audio" / "p01.wav"))]
    with pytest.raises(TranscriptionError, match="escaped"):
        transcribe_files(counting, items, tmp_path / "out" / "subs", "srt")
    assert counting.decoded == []
    assert not list(tmp_path.rglob("*.srt"))


def test_a_linked_sub_folder_leading_outside_is_refused(transcriber, items, tmp_path):
    output, outside = tmp_path / "subs", tmp_path / "outside"
    output.mkdir()
    outside.mkdir()
    os.symlink(outside, output / "link")
    linked = [file_item("link/p01", items[0].source)]
    with pytest.raises(OutputWriteError, match="leads outside the output folder"):
        transcribe_files(transcriber, linked, output, "srt")
    assert not list(outside.iterdir())
    assert (output / transcription.RESUME_LOG_NAME).is_file()  # the decoded result is kept


@pytest.mark.parametrize(
    ("output_format", "uttid", "message"),
    [("kaldi", "has space", "whitespace"), ("txt", "has\ttab", "tab"), ("jsonl", "line\nbreak", "line break")],
)
def test_ids_the_format_cannot_hold_are_refused_before_decoding(
    transcriber, items, tmp_path, output_format, uttid, message
):
    counting = CountingTranscriber(transcriber)
    bad = [items[0], file_item(uttid, items[1].source)]
    with pytest.raises(TranscriptionError, match=message):
        transcribe_files(counting, bad, tmp_path / "out", output_format)
    assert counting.decoded == []


def test_an_unwritable_output_location_is_an_error_before_decoding(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(TranscriptionError, match="cannot write into"):
        OutputTarget(blocker / "out.txt", "txt")


def test_a_failed_write_keeps_every_result_for_resume(transcriber, items, tmp_path, monkeypatch):
    output = tmp_path / "out.txt"

    def disk_full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transcription, "write_atomically", disk_full)
    with pytest.raises(OutputWriteError, match="No space left on device.*kept in .*resume.jsonl.*--resume"):
        transcribe_files(transcriber, items, output, "txt")
    log = tmp_path / "out.txt.resume.jsonl"
    assert len(log.read_text().splitlines()) == 3  # settings + both results
    monkeypatch.undo()

    counting = CountingTranscriber(transcriber)
    report = transcribe_files(counting, items, output, "txt", resume=True)
    assert counting.decoded == [] and report.resumed == 2
    assert output.read_text().splitlines() == [f"{u}\t{t}" for u, t in EXPECTED.items()]
    assert not log.exists()


def test_an_unfinished_earlier_job_is_not_overwritten_without_resume(transcriber, items, tmp_path):
    output = tmp_path / "out.txt"
    log = tmp_path / "out.txt.resume.jsonl"
    log.write_text(json.dumps({"metadata": transcriber.settings()}) + "\n")
    with pytest.raises(TranscriptionError, match="did not finish.*--resume"):
        transcribe_files(transcriber, items, output, "txt")
    assert log.exists()


def test_a_second_job_on_the_same_output_stops_at_once(transcriber, items, tmp_path):
    target = OutputTarget(tmp_path / "out.txt", "txt")
    held = target.lock()
    try:
        with pytest.raises(TranscriptionError, match="another transcription job is writing"):
            transcribe_files(transcriber, items, tmp_path / "out.txt", "txt")
    finally:
        held.release()
    assert transcribe_files(transcriber, items, tmp_path / "out.txt", "txt").failures == {}


def test_outputs_are_replaced_atomically_and_readable(transcriber, items, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text("old\n")
    umask = os.umask(0o022)
    try:
        transcribe_files(transcriber, items, output, "jsonl")
    finally:
        os.umask(umask)
    assert [json.loads(line)["uttid"] for line in output.read_text().splitlines()] == list(EXPECTED)
    assert output.stat().st_mode & 0o777 == 0o644  # like any file the user writes, not mkstemp's 0600
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".tmp")]


def test_an_unreadable_sub_folder_is_a_failure_not_a_silent_skip(
    converted_aed_dir, fixtures_dir, tmp_path, monkeypatch, capsys
):
    inputs = tmp_path / "inputs"
    (inputs / "locked").mkdir(parents=True)
    shutil.copy(fixtures_dir / "audio" / "p01.wav", inputs)
    shutil.copy(fixtures_dir / "audio" / "p02.wav", inputs / "locked")
    scandir = os.scandir

    def refuse_locked(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_locked)
    collection = collect_inputs([inputs])
    assert [item.uttid for item in collection.items] == ["p01"]
    assert list(collection.failures) == [str(inputs / "locked")]

    code = cli.main(["transcribe", "--model", str(converted_aed_dir), "--no-progress", str(inputs)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == f"p01\t{EXPECTED['p01']}\n"
    assert f"FAILED {inputs / 'locked'}: folder not readable (Permission denied)" in captured.err


def test_device_without_hardware_is_a_usage_error(converted_aed_dir, fixtures_dir, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    wav = str(fixtures_dir / "audio" / "p01.wav")
    assert cli.main(["transcribe", "--model", str(converted_aed_dir), "--device", "cuda", wav]) == 2
    assert "no usable CUDA GPU" in capsys.readouterr().err


def test_capabilities_are_read_from_the_pipeline(transcriber):
    from fireredasr_hf.pipeline_fireredasr import VAD_NAMES

    capabilities = transcriber.capabilities
    assert capabilities.vad_names == VAD_NAMES
    assert capabilities.default_vad in VAD_NAMES
    assert capabilities.segment_progress

    class OlderPipeline:
        """A pipeline whose options lack progress and punctuation, and which refuses word timestamps."""

        def _sanitize_parameters(self, return_timestamps=None, vad=None):
            if return_timestamps == "word":
                raise ValueError("segment-level timestamps only")
            return {}, {}, {}

        def preprocess(self, inputs, vad="energy"):
            pass

    older = transcription.pipeline_capabilities(OlderPipeline())
    assert older == transcription.PipelineCapabilities(
        word_timestamps=False, vad_names=("energy",), default_vad="energy", punctuation=False, segment_progress=False
    )

    class NewerPipeline(OlderPipeline):
        def _sanitize_parameters(
            self, return_timestamps=None, vad=None, punctuation_model=None, progress_callback=None
        ):
            return {}, {}, {}

    newer = transcription.pipeline_capabilities(NewerPipeline())
    assert newer.word_timestamps and newer.punctuation and newer.segment_progress


def test_recordings_are_read_ahead_for_length_sorted_batches(transcriber, fixtures_dir, monkeypatch):
    uttids = ["p01", "p02", "p03", "p04", "p05"]
    items = [file_item(uttid, str(fixtures_dir / "audio" / f"{uttid}.wav")) for uttid in uttids]
    items.insert(2, file_item("missing", str(fixtures_dir / "audio" / "missing.wav")))
    calls = []
    decode = transcriber.decode_waveforms

    def recording_decode(waveforms, **kwargs):
        calls.append(len(waveforms))
        return decode(waveforms, **kwargs)

    monkeypatch.setattr(transcriber, "decode_waveforms", recording_decode)
    results, failures = [], []
    on_result, on_failure = (lambda item, _: results.append(item.uttid)), (lambda item, _: failures.append(item.uttid))
    transcriber.transcribe(items, on_result, on_failure)
    # batch_size 2: up to 16 recordings per pipeline call, the unreadable one reported on its own.
    assert calls == [5] and results == uttids and failures == ["missing"]

    # At most READ_AHEAD_SECONDS of audio per call (here: less than any recording, so one per call).
    monkeypatch.setattr(transcription, "READ_AHEAD_SECONDS", 0.5)
    calls.clear()
    results.clear()
    transcriber.transcribe(items, on_result, on_failure)
    assert calls == [1, 1, 1, 1, 1]
    assert results == uttids
