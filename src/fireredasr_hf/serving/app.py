# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The FastAPI application of `fireredasr-hf serve`: OpenAI's `/v1/audio/transcriptions`, `/v1/models`, `/health`.

    from fireredasr_hf.transcription import Transcriber
    from fireredasr_hf.serving import ServerConfig, create_app

    app = create_app(Transcriber("fireredasr-aed-l-hf", batch_size=8), ServerConfig(model_names=("fireredasr",)))
    # uvicorn.run(app, port=8000)

The event loop only parses requests and formats answers. Uploads are decoded to waveforms in the thread pool; the
model runs in the `DynamicBatcher`'s single worker thread, which decodes concurrent requests together
(`Transcriber.decode_waveforms`: long recordings are cut into segments by the pipeline's voice activity detection,
and the segments of all the batch's recordings are decoded `batch_size` at a time).
"""

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from ..audio import load_audio_bytes
from ..transcription import Transcriber
from .batching import DynamicBatcher
from .openai_api import RESPONSE_FORMATS, TIMED_FORMATS, TIMESTAMP_GRANULARITIES, ApiError, transcription_body

logger = logging.getLogger(__name__)

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
# Status for a request whose client went away before its answer (nginx's convention); nobody receives it.
CLIENT_CLOSED_REQUEST = 499


@dataclass(frozen=True)
class ServerConfig:
    """
    Args:
        model_names: the names a request's `model` may have (others get 404).
        max_wait_ms: how long a request may wait for others to share its batch (0: decode what is waiting now).
        max_audio_s: longest audio accepted (400 beyond).
        max_upload_mb: largest upload accepted, in MiB (413 beyond).
        api_key: when set, `/v1/*` needs `Authorization: Bearer <api_key>` (401 otherwise).
        request_timeout_s: a request not answered within this time gets 504 and its work is withdrawn.
    """

    model_names: tuple[str, ...]
    max_wait_ms: float = 10.0
    max_audio_s: float = 3600.0
    max_upload_mb: float = 25.0
    api_key: str | None = None
    request_timeout_s: float = 600.0


class UploadTooLarge(Exception):
    pass


def _limited_receive(receive, limit: int):
    """The ASGI `receive` of a request, stopping the upload once it is larger than `limit` bytes."""
    received = 0

    async def limited():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise UploadTooLarge
        return message

    return limited


async def _wait_for_disconnect(receive) -> None:
    # Once the body is read, uvicorn's `receive` answers only when the client disconnects (or the response is sent).
    while (await receive())["type"] != "http.disconnect":
        pass


def create_app(transcriber: Transcriber, config: ServerConfig) -> FastAPI:
    """The server's application around a loaded `Transcriber` (its `batch_size` is the largest batch)."""
    batcher = DynamicBatcher(
        lambda waveforms, timestamps: transcriber.decode_waveforms(waveforms, return_timestamps=timestamps),
        max_batch_size=transcriber.batch_size,
        max_wait_s=config.max_wait_ms / 1000,
    )
    created = int(time.time())
    max_upload_bytes = int(config.max_upload_mb * 1024 * 1024)
    word_timestamps = transcriber.supports_timestamps("word")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        # Uvicorn has answered the requests in flight by now; what is still queued is decoded before the worker stops.
        await asyncio.to_thread(batcher.close)

    app = FastAPI(title="fireredasr-hf", summary="OpenAI-compatible FireRedASR transcription", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.config = config

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return JSONResponse(error.body, status_code=error.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        kind = "not_found" if error.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            {"error": {"message": str(error.detail), "type": kind, "param": None, "code": None}},
            status_code=error.status_code,
        )

    def check_api_key(request: Request) -> None:
        if config.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_key.encode()):
            raise ApiError(
                401,
                "Incorrect or missing API key: send `Authorization: Bearer <key>` with the key the server was "
                "started with (--api-key)",
                code="invalid_api_key",
            )

    def check_model(name) -> None:
        if not isinstance(name, str) or not name:
            raise ApiError(400, "you must provide a model parameter", param="model", code="missing_model")
        if name not in config.model_names:
            raise ApiError(
                404,
                f"The model `{name}` does not exist; this server serves {', '.join(config.model_names)}",
                param="model",
                code="model_not_found",
            )

    @app.get("/health")
    async def health():
        return {"status": "ok", "receiving": batcher.expected, "waiting": batcher.waiting}

    @app.get("/v1/models")
    async def list_models(request: Request):
        check_api_key(request)
        return {"object": "list", "data": [model_card(name) for name in config.model_names]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str, request: Request):
        check_api_key(request)
        check_model(name)
        return model_card(name)

    def model_card(name: str) -> dict:
        return {"id": name, "object": "model", "created": created, "owned_by": "fireredasr-hf"}

    async def read_form(request: Request):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes:
            raise ApiError(413, f"The upload is larger than {config.max_upload_mb:g} MB", code="upload_too_large")
        limited = Request(request.scope, _limited_receive(request.receive, max_upload_bytes))
        try:
            return await limited.form(max_files=1, max_fields=32)
        except UploadTooLarge:
            raise ApiError(
                413, f"The upload is larger than {config.max_upload_mb:g} MB", code="upload_too_large"
            ) from None
        except (MultiPartException, AssertionError, ValueError) as error:
            raise ApiError(400, f"Could not parse the multipart form: {error}") from None

    def form_options(form) -> tuple[str, tuple[str, ...]]:
        response_format = form.get("response_format") or "json"
        if response_format not in RESPONSE_FORMATS:
            raise ApiError(
                400,
                f"Invalid response_format {response_format!r}: one of {', '.join(RESPONSE_FORMATS)}",
                param="response_format",
                code="invalid_value",
            )
        granularities = tuple(form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities"))
        for granularity in granularities:
            if granularity not in TIMESTAMP_GRANULARITIES:
                raise ApiError(
                    400,
                    f"Invalid timestamp granularity {granularity!r}: segment or word",
                    param="timestamp_granularities[]",
                    code="invalid_value",
                )
        if "word" in granularities:
            if response_format != "verbose_json":
                raise ApiError(
                    400,
                    "timestamp_granularities[]=word needs response_format=verbose_json",
                    param="timestamp_granularities[]",
                    code="invalid_value",
                )
            if not word_timestamps:
                raise ApiError(
                    400,
                    f"{transcriber.model_name} gives no word timestamps (only segment timestamps): ask for "
                    "timestamp_granularities[]=segment",
                    param="timestamp_granularities[]",
                    code="unsupported_value",
                )
        temperature = form.get("temperature")
        if temperature is not None and temperature != "":
            try:
                value = float(temperature)
            except ValueError:
                value = -1.0
            if not 0.0 <= value <= 1.0:
                raise ApiError(400, "temperature must be a number from 0 to 1", param="temperature")
        if str(form.get("stream", "")).lower() == "true":
            raise ApiError(400, "Streaming transcription is not supported by this server", param="stream")
        return response_format, granularities

    def submit(waveform, timestamps):
        try:
            return batcher.submit(waveform, timestamps)
        except RuntimeError:
            raise ApiError(503, "The server is shutting down", type="server_error", code="shutting_down") from None

    async def result_of(request: Request, future) -> dict:
        """The engine's result for a submitted waveform; withdrawn when the client goes away or the request times
        out."""
        result = asyncio.wrap_future(future)
        disconnect = asyncio.ensure_future(_wait_for_disconnect(request.receive))
        try:
            done, _ = await asyncio.wait(
                {result, disconnect}, timeout=config.request_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            disconnect.cancel()
        if result not in done:
            result.cancel()  # withdrawn unless its batch already runs
            if disconnect in done:
                raise ApiError(CLIENT_CLOSED_REQUEST, "The client closed the request", code="client_closed_request")
            raise ApiError(
                504,
                f"The transcription took longer than {config.request_timeout_s:g} s",
                type="server_error",
                code="timeout",
            )
        try:
            return result.result()
        except Exception as error:  # the model failed on this audio
            logger.exception("transcription failed")
            raise ApiError(
                500, f"The transcription failed: {type(error).__name__}: {error}", type="server_error"
            ) from None

    @app.post(TRANSCRIPTIONS_PATH)
    async def create_transcription(request: Request):
        check_api_key(request)
        # Announced from the start of the upload until its audio is queued, so that a batch being formed waits
        # for it.
        with batcher.expecting():
            (response_format, granularities, language), waveform = await read_request(request)
            # Segments for the timed formats; words (a second decoding) when asked for.
            words = submit(waveform, "word") if "word" in granularities else None
            only_words = words is not None and "segment" not in granularities
            segments = None if only_words else submit(waveform, response_format in TIMED_FORMATS)
        word_result = await result_of(request, words) if words is not None else None
        result = word_result if only_words else await result_of(request, segments)
        body = transcription_body(result, response_format, granularities, language, word_result)
        if isinstance(body, str):
            return PlainTextResponse(body)
        return JSONResponse(body)

    async def read_request(request: Request):
        form = await read_form(request)
        try:
            check_model(form.get("model"))
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "you must provide a file parameter (the audio, as a multipart file)", param="file")
            response_format, granularities = form_options(form)
            data = await upload.read()
        finally:
            await form.close()
        name = upload.filename or "upload"
        try:
            waveform = await run_in_threadpool(load_audio_bytes, data, transcriber.sampling_rate, name)
        except (ValueError, FileNotFoundError, RuntimeError) as error:
            raise ApiError(
                400, f"Audio file could not be decoded: {error}", param="file", code="invalid_audio"
            ) from None
        duration = len(waveform) / transcriber.sampling_rate
        if duration > config.max_audio_s:
            raise ApiError(
                400,
                f"The audio is {duration:.1f} s long; this server accepts at most {config.max_audio_s:g} s",
                param="file",
                code="audio_too_long",
            )
        return (response_format, granularities, form.get("language")), waveform

    return app


__all__ = ["ServerConfig", "create_app"]
