"""`fireredasr-hf serve`: the official openai client against the server on localhost (every response format), bad
requests and their status codes, limits, cancellation, graceful shutdown, and a small concurrent load with dynamic
batching (benchmarks/bench_serving.py measures throughput and latency)."""

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError
from contextlib import contextmanager

import httpx
import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from fireredasr_hf.serving import ServerConfig, create_app
from fireredasr_hf.serving.batching import DynamicBatcher
from fireredasr_hf.serving.load_test import run_load
from fireredasr_hf.serving.openai_api import transcription_body
from fireredasr_hf.transcript_io import format_srt, format_vtt
from fireredasr_hf.transcription import Transcriber

MODEL = "fireredasr-tiny"
UTTERANCES = ("p01", "p02", "p03", "p04", "p06")


@pytest.fixture(scope="module")
def transcriber(converted_aed_dir):
    return Transcriber(str(converted_aed_dir), device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def audio(fixtures_dir):
    return {uttid: fixtures_dir / "audio" / f"{uttid}.wav" for uttid in UTTERANCES}


@pytest.fixture(scope="module")
def offline(transcriber, audio):
    """The offline pipeline's results: plain and with segment timestamps."""
    return {
        uttid: (
            transcriber.transcribe_audio(str(path)),
            transcriber.transcribe_audio(str(path), return_timestamps=True),
        )
        for uttid, path in audio.items()
    }


@contextmanager
def running(app):
    """Serves `app` with uvicorn on a free loopback port, in a thread; yields (base URL, uvicorn server)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture(scope="module")
def server(transcriber):
    app = create_app(transcriber, ServerConfig(model_names=(MODEL,), max_wait_ms=5))
    with running(app) as (url, _):
        yield url, app


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0)


def post(url, files=None, data=None, headers=None, timeout=120):
    return httpx.post(f"{url}/v1/audio/transcriptions", files=files, data=data, headers=headers, timeout=timeout)


def wav(audio, uttid="p01"):
    return {"file": (f"{uttid}.wav", audio[uttid].read_bytes(), "audio/wav")}


# ----------------------------------------------------------------------------------------------------------------
# The openai client, every response format


def test_json_and_text_equal_the_offline_pipeline(client, audio, offline):
    for uttid, path in audio.items():
        with open(path, "rb") as file:
            result = client.audio.transcriptions.create(file=file, model=MODEL)
        assert result.text == offline[uttid][0]["text"]
        assert result.usage.seconds == pytest.approx(path.stat().st_size / 32000, abs=0.01)
    text = client.audio.transcriptions.create(file=audio["p04"], model=MODEL, response_format="text")
    assert text == offline["p04"][0]["text"] + "\n"


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
def test_subtitles_equal_the_offline_segments(client, audio, offline, response_format):
    subtitles = client.audio.transcriptions.create(file=audio["p04"], model=MODEL, response_format=response_format)
    chunks = offline["p04"][1]["chunks"]
    assert subtitles == (format_srt if response_format == "srt" else format_vtt)(chunks)
    assert ("-->" in subtitles) and (subtitles.startswith("WEBVTT") == (response_format == "vtt"))


def test_verbose_json_has_openai_segments(client, audio, offline):
    result = client.audio.transcriptions.create(
        file=audio["p04"], model=MODEL, response_format="verbose_json", timestamp_granularities=["segment"]
    )
    chunks = offline["p04"][1]["chunks"]
    assert result.text == offline["p04"][1]["text"]
    assert result.duration == pytest.approx(3.106, abs=1e-3)
    assert result.language == "chinese"  # Chinese characters in the text
    assert [(s.start, s.end, s.text) for s in result.segments] == [(*c["timestamp"], c["text"]) for c in chunks]
    assert [s.id for s in result.segments] == list(range(len(chunks)))
    assert result.words is None
    english = client.audio.transcriptions.create(file=audio["p02"], model=MODEL, response_format="verbose_json")
    assert english.language == "english" and english.segments  # segments by default


def test_models_and_health(client, server):
    assert [model.id for model in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "fireredasr-hf"
    assert httpx.get(f"{server[0]}/health").json()["status"] == "ok"


def test_temperature_and_language_are_accepted_and_ignored(client, audio, offline):
    result = client.audio.transcriptions.create(file=audio["p01"], model=MODEL, temperature=0.7, language="zh")
    assert result.text == offline["p01"][0]["text"]


def test_verbose_json_words_and_granularities():
    """The shapes for models with word timestamps (the pipeline's `return_timestamps="word"` chunks)."""
    segments = {"text": "你好 HELLO", "duration": 2.0, "chunks": [{"text": "你好 HELLO", "timestamp": [0.1, 1.9]}]}
    words = {
        "text": "你好 HELLO",
        "duration": 2.0,
        "chunks": [
            {"text": "你", "timestamp": [0.1, 0.4], "confidence": 0.9},
            {"text": "好", "timestamp": [0.4, 0.8], "confidence": 0.8},
            {"text": "HELLO", "timestamp": [1.0, 1.9]},
        ],
    }
    both = transcription_body(segments, "verbose_json", ("segment", "word"), "zh", words)
    assert both["language"] == "chinese" and len(both["segments"]) == 1
    assert both["words"] == [
        {"word": "你", "start": 0.1, "end": 0.4, "probability": 0.9},
        {"word": "好", "start": 0.4, "end": 0.8, "probability": 0.8},
        {"word": "HELLO", "start": 1.0, "end": 1.9},
    ]
    only_words = transcription_body(words, "verbose_json", ("word",), None, words)
    assert "segments" not in only_words and len(only_words["words"]) == 3
    assert "words" not in transcription_body(segments, "verbose_json", ("segment",))


# ----------------------------------------------------------------------------------------------------------------
# Bad requests: status codes and OpenAI's error shape


def assert_error(response, status, code=None, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def test_wrong_model_is_404(client, audio):
    with pytest.raises(openai.NotFoundError, match="whisper-1"):
        client.audio.transcriptions.create(file=audio["p01"], model="whisper-1")


@pytest.mark.parametrize(
    ("data", "files", "param"),
    [
        ({}, "wav", "model"),
        ({"model": MODEL}, None, "file"),
        ({"model": MODEL, "response_format": "xml"}, "wav", "response_format"),
        ({"model": MODEL, "timestamp_granularities[]": "phoneme"}, "wav", "timestamp_granularities[]"),
        ({"model": MODEL, "timestamp_granularities[]": "word"}, "wav", "timestamp_granularities[]"),  # json + word
        ({"model": MODEL, "temperature": "hot"}, "wav", "temperature"),
        ({"model": MODEL, "stream": "true"}, "wav", "stream"),
    ],
)
def test_bad_fields_are_400(server, audio, data, files, param):
    assert_error(post(server[0], files=wav(audio) if files else {"x": ("x", b"")}, data=data), 400, param=param)


def test_word_timestamps_are_400_for_models_without_them(client, transcriber, audio):
    assert not transcriber.supports_timestamps("word")
    with pytest.raises(openai.BadRequestError, match="no word timestamps"):
        client.audio.transcriptions.create(
            file=audio["p01"], model=MODEL, response_format="verbose_json", timestamp_granularities=["word"]
        )


def test_unreadable_audio_is_400(server):
    error = assert_error(post(server[0], files={"file": ("x.wav", b"RIFF not audio")}, data={"model": MODEL}), 400)
    assert error["code"] == "invalid_audio" and "x.wav" in error["message"]
    assert_error(post(server[0], files={"file": ("empty.wav", b"")}, data={"model": MODEL}), 400, "invalid_audio")


def test_unknown_route_is_404_in_openai_shape(server):
    assert_error(httpx.get(f"{server[0]}/v1/nothing"), 404)


@pytest.fixture(scope="module")
def strict_server(transcriber):
    """Small limits and an API key."""
    config = ServerConfig(model_names=(MODEL,), max_audio_s=2.0, max_upload_mb=0.06, api_key="secret")
    with running(create_app(transcriber, config)) as (url, _):
        yield url


def test_api_key(strict_server, audio):
    files, data = wav(audio, "p02"), {"model": MODEL}
    assert_error(post(strict_server, files=files, data=data), 401, "invalid_api_key")
    assert_error(post(strict_server, files=files, data=data, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(httpx.get(f"{strict_server}/v1/models"), 401)
    assert post(strict_server, files=files, data=data, headers={"Authorization": "Bearer secret"}).status_code == 200
    assert httpx.get(f"{strict_server}/health").status_code == 200  # open to load balancers
    authorised = openai.OpenAI(base_url=f"{strict_server}/v1", api_key="secret", max_retries=0)
    assert authorised.audio.transcriptions.create(file=audio["p02"], model=MODEL).text == "TURN ON THE LIGHT"


def test_upload_limit_is_413_with_or_without_content_length(strict_server, audio):
    headers = {"Authorization": "Bearer secret"}
    big = wav(audio, "p01")  # 76 kB > 0.06 MB
    assert_error(post(strict_server, files=big, data={"model": MODEL}, headers=headers), 413, "upload_too_large")
    # Chunked (no Content-Length): stopped while streaming.
    body, content_type = slow_upload(audio, "p01", delay_s=0)
    response = httpx.post(
        f"{strict_server}/v1/audio/transcriptions", content=body, headers={**headers, **content_type}, timeout=60
    )
    assert_error(response, 413, "upload_too_large")


def test_audio_duration_limit_is_400(strict_server, audio):
    # p03 (3.7 s) is small enough to upload (120 kB at 16 kHz would not be): send it as 8 kHz FLAC.
    import io

    import soundfile

    samples, rate = soundfile.read(audio["p03"])
    buffer = io.BytesIO()
    soundfile.write(buffer, samples[::2], rate // 2, format="FLAC")
    response = post(
        strict_server,
        files={"file": ("p03.flac", buffer.getvalue())},
        data={"model": MODEL},
        headers={"Authorization": "Bearer secret"},
    )
    assert "3.7 s" in assert_error(response, 400, "audio_too_long", "file")["message"]


# ----------------------------------------------------------------------------------------------------------------
# Timeouts, disconnects, shutdown


def slow_upload(audio, uttid="p02", delay_s=0.3):
    """A multipart body streamed in pieces, `delay_s` apart (chunked, no Content-Length): the request stays in
    flight while it uploads."""
    request = httpx.Request("POST", "/", files=wav(audio, uttid), data={"model": MODEL})
    body = request.read()

    def pieces():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]
            time.sleep(delay_s)

    return pieces(), {"Content-Type": request.headers["Content-Type"]}


def wait_until(predicate, seconds=30):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def waiting_server(transcriber):
    """Requests wait up to 3 s for a request announced as on its way (which never comes), then are decoded."""
    app = create_app(transcriber, ServerConfig(model_names=(MODEL,), max_wait_ms=3000, request_timeout_s=0.5))
    with running(app) as (url, _), app.state.batcher.expecting():
        yield url, app.state.batcher


def test_a_timed_out_request_is_504_and_never_decoded(waiting_server, audio):
    url, batcher = waiting_server
    assert_error(post(url, files=wav(audio), data={"model": MODEL}), 504, "timeout")
    wait_until(lambda: batcher.stats.cancelled == 1)  # skipped when its batch was formed, never decoded
    assert batcher.stats.requests == 0


def test_a_client_disconnect_withdraws_its_work(waiting_server, audio):
    url, batcher = waiting_server
    with pytest.raises(httpx.ReadTimeout):
        post(url, files=wav(audio), data={"model": MODEL}, timeout=0.2)  # the client gives up and disconnects
    wait_until(lambda: batcher.stats.cancelled == 1)
    assert batcher.stats.requests == 0


def test_no_batching_delay_for_a_lone_request(transcriber, audio):
    app = create_app(transcriber, ServerConfig(model_names=(MODEL,), max_wait_ms=60_000))
    with running(app) as (url, _):
        assert post(url, files=wav(audio), data={"model": MODEL}, timeout=30).status_code == 200


def test_shutdown_finishes_the_requests_in_flight(transcriber, audio):
    app = create_app(transcriber, ServerConfig(model_names=(MODEL,)))
    answers = []
    with running(app) as (url, server):
        body, headers = slow_upload(audio)
        thread = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/v1/audio/transcriptions", content=body, headers=headers, timeout=60)
            )
        )
        thread.start()
        wait_until(lambda: app.state.batcher.expected == 1)  # uploading
        server.should_exit = True  # what SIGTERM does
        thread.join(60)
    assert answers[0].status_code == 200 and answers[0].json()["text"] == "TURN ON THE LIGHT"


def test_serve_command_answers_then_stops_gracefully_on_sigterm(converted_aed_dir, audio):
    """The console command: it serves the openai client, and SIGTERM lets the request in flight finish."""
    script = "import socket\ns = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()\n"
    port = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    command = [sys.executable, "-m", "fireredasr_hf.cli", "serve", "--model", str(converted_aed_dir)]
    command += ["--port", str(port), "--served-model-name", MODEL, "--num-threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"

    def health():
        assert process.poll() is None, process.stdout.read()
        try:
            return httpx.get(f"{url}/health", timeout=5).json()
        except httpx.HTTPError:
            return None

    try:
        wait_until(lambda: health() is not None, seconds=180)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert client.audio.transcriptions.create(file=audio["p01"], model=MODEL).text == "今天天气很好"
        body, headers = slow_upload(audio)
        answers = []
        thread = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/v1/audio/transcriptions", content=body, headers=headers, timeout=60)
            )
        )
        thread.start()
        wait_until(lambda: health()["receiving"] == 1)
        process.send_signal(signal.SIGTERM)
        thread.join(60)
        # Uvicorn shuts down, then lets the signal end the process as it would have (exit status -SIGTERM).
        assert process.wait(60) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert answers[0].status_code == 200 and answers[0].json()["text"] == "TURN ON THE LIGHT"


# ----------------------------------------------------------------------------------------------------------------
# Concurrency: dynamic batching under load (benchmarks/bench_serving.py for the figures)


def test_concurrent_requests_are_batched_and_each_answered_once(server, audio, offline):
    url, app = server
    batcher = app.state.batcher
    before = (batcher.stats.batches, batcher.stats.requests)
    uttids = list(audio)
    result = asyncio.run(run_load(url, MODEL, [audio[uttid] for uttid in uttids], requests=40, concurrency=8))
    assert result.errors == 0 and result.exceptions == []
    for index, answer in enumerate(result.answers):
        assert answer == (200, offline[uttids[index % len(uttids)]][0]["text"] + "\n")
    assert batcher.stats.requests - before[1] == 40
    assert batcher.stats.batches - before[0] < 40 and batcher.stats.largest_batch > 1  # requests shared model calls


# ----------------------------------------------------------------------------------------------------------------
# The batcher alone


def test_batcher_groups_by_key_and_respects_the_batch_size():
    calls = []

    def decode(waveforms, key):
        calls.append((key, list(waveforms)))
        return [f"{key}:{w}" for w in waveforms]

    batcher = DynamicBatcher(decode, max_batch_size=3, max_wait_s=0.2)
    futures = [batcher.submit(index, key=index % 2 == 0) for index in range(7)]
    batcher.start()
    assert [future.result(10) for future in futures] == [f"{index % 2 == 0}:{index}" for index in range(7)]
    batcher.close()
    assert all(len(waveforms) <= 3 for _, waveforms in calls)
    assert all(all((w % 2 == 0) == key for w in waveforms) for key, waveforms in calls)
    assert sorted(w for _, waveforms in calls for w in waveforms) == list(range(7))


def test_batcher_waits_for_announced_requests_at_most_max_wait():
    calls = []
    batcher = DynamicBatcher(lambda waveforms, key: calls.append(list(waveforms)) or list(waveforms), 8, 0.5)
    batcher.start()
    with batcher.expecting():  # on its way: the first request waits for it
        first = batcher.submit("first")
        time.sleep(0.1)
        second = batcher.submit("second")
    assert (first.result(10), second.result(10)) == ("first", "second")
    assert calls == [["first", "second"]]
    with batcher.expecting():  # never comes: the wait ends after max_wait_s
        start = time.monotonic()
        assert batcher.submit("alone").result(10) == "alone"
        assert 0.45 < time.monotonic() - start < 5
    start = time.monotonic()
    assert batcher.submit("nobody on the way").result(10) == "nobody on the way"
    assert time.monotonic() - start < 0.4
    batcher.close()


def test_batcher_skips_cancelled_requests_and_isolates_failures():
    def decode(waveforms, key):
        return [ValueError("bad") if w == "bad" else w for w in waveforms]

    batcher = DynamicBatcher(decode, max_batch_size=4, max_wait_s=0.5)
    cancelled, bad, good = batcher.submit("cancelled"), batcher.submit("bad"), batcher.submit("good")
    assert cancelled.cancel()
    batcher.start()
    assert good.result(10) == "good"
    with pytest.raises(ValueError, match="bad"):
        bad.result(10)
    with pytest.raises(CancelledError):
        cancelled.result()
    batcher.close()
    assert batcher.stats.cancelled == 1 and batcher.stats.requests == 2 and batcher.stats.batches == 1


def test_batcher_close_decodes_what_is_waiting_then_refuses():
    batcher = DynamicBatcher(lambda waveforms, key: list(waveforms), max_batch_size=8, max_wait_s=60)
    batcher.start()
    with batcher.expecting():
        future = batcher.submit("queued")
        batcher.close(timeout=10)  # does not wait the 60 s for company
    assert future.result(0) == "queued"
    with pytest.raises(RuntimeError, match="shutting down"):
        batcher.submit("late")


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on():
    def decode(waveforms, key):
        if "boom" in waveforms:
            raise RuntimeError("model crashed")
        return list(waveforms)

    batcher = DynamicBatcher(decode, max_batch_size=1, max_wait_s=0)
    batcher.start()
    with pytest.raises(RuntimeError, match="model crashed"):
        batcher.submit("boom").result(10)
    assert batcher.submit("fine").result(10) == "fine"
    batcher.close()


def test_json_error_body_shape_for_unknown_model_has_code(server, audio):
    error = assert_error(post(server[0], files=wav(audio), data={"model": "nope"}), 404, "model_not_found", "model")
    assert json.dumps(error)


def test_serve_punctuates_as_transcribe_does(converted_aed_dir, converted_punc_dir, monkeypatch, capsys):
    """`serve --punctuation MODEL` gives the server's engine that model; by default the default model if it can be
    obtained, else a note; `none` turns it off."""
    from fireredasr_hf import cli
    from fireredasr_hf.punctuation import FireRedPunctuator
    from fireredasr_hf.serving import app as serving_app

    engines = []
    monkeypatch.setattr(serving_app, "create_app", lambda transcriber, config: engines.append(transcriber))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    monkeypatch.delenv("FIREREDASR_HF_PUNCTUATION_MODEL", raising=False)
    arguments = ["serve", "--model", str(converted_aed_dir), "--vad", "energy"]
    assert cli.main([*arguments, "--punctuation", str(converted_punc_dir)]) == 0
    assert isinstance(engines[-1].call_kwargs["punctuation_model"], FireRedPunctuator)
    assert cli.main(arguments) == 0  # FireRedTeam/FireRedPunc cannot be downloaded here
    assert "punctuation_model" not in engines[-1].call_kwargs
    assert capsys.readouterr().err.count("transcripts are not punctuated") == 1
    assert cli.main([*arguments, "--punctuation", "none"]) == 0
    assert "punctuation_model" not in engines[-1].call_kwargs and "not punctuated" not in capsys.readouterr().err
