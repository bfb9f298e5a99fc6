# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The shapes of OpenAI's audio API: transcription responses (json, text, srt, vtt, verbose_json) and errors.

What FireRedASR does not compute is filled with neutral values, as other OpenAI-compatible servers do: a segment's
`avg_logprob` and `no_speech_prob` are 0.0, its `tokens` empty, its `temperature` 0.0 (decoding is beam search
whatever the request's temperature). `language` is the request's, else "chinese" when the text has Chinese
characters and "english" otherwise (FireRedASR recognises Mandarin, Chinese dialects and English).
"""

import re
import zlib
from typing import Any

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
TIMESTAMP_GRANULARITIES = ("segment", "word")
# Formats whose responses carry times: decoded with segment timestamps (voice activity detection).
TIMED_FORMATS = ("srt", "vtt", "verbose_json")
LANGUAGE_NAMES = {"zh": "chinese", "en": "english", "yue": "cantonese"}
_CHINESE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


class ApiError(Exception):
    """An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with a status code."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


def language_name(language: str | None, text: str) -> str:
    if language:
        return LANGUAGE_NAMES.get(language.lower(), language)
    return "chinese" if _CHINESE.search(text) else "english"


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: UTF-8 length over zlib-compressed length."""
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0


def verbose_segments(chunks: list[dict]) -> list[dict]:
    return [
        {
            "id": index,
            "seek": round(chunk["timestamp"][0] * 100),  # start in 10 ms feature frames
            "start": chunk["timestamp"][0],
            "end": chunk["timestamp"][1],
            "text": chunk["text"],
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": compression_ratio(chunk["text"]),
            "no_speech_prob": 0.0,
        }
        for index, chunk in enumerate(chunks)
    ]


def verbose_words(chunks: list[dict]) -> list[dict]:
    """Word chunks (`return_timestamps="word"`) as OpenAI words; a word's `confidence`, when the model gives one,
    is passed on as `probability` (the name faster-whisper servers use)."""
    words = []
    for chunk in chunks:
        word = {"word": chunk["text"], "start": chunk["timestamp"][0], "end": chunk["timestamp"][1]}
        if chunk.get("confidence") is not None:
            word["probability"] = chunk["confidence"]
        words.append(word)
    return words


def transcription_body(
    result: dict,
    response_format: str,
    granularities: tuple[str, ...] = (),
    language: str | None = None,
    word_result: dict | None = None,
) -> Any:
    """The response body of a transcription: a dict (json, verbose_json) or a string (text, srt, vtt).

    `result` is the engine's result (`{"text", "duration"[, "chunks"]}`, with segment chunks for the timed formats);
    `word_result` the result decoded with word timestamps, when `"word"` is asked for.
    """
    from ..transcript_io import format_srt, format_vtt

    text = result["text"]
    if response_format == "text":
        return text + "\n"
    if response_format == "srt":
        return format_srt(result["chunks"])
    if response_format == "vtt":
        return format_vtt(result["chunks"])
    usage = {"type": "duration", "seconds": result["duration"]}
    if response_format == "json":
        return {"text": text, "usage": usage}
    body = {"task": "transcribe", "language": language_name(language, text), "duration": result["duration"]}
    body["text"] = text
    # As OpenAI: segments unless only words are asked for.
    if "segment" in granularities or "word" not in granularities:
        body["segments"] = verbose_segments(result["chunks"])
    if "word" in granularities and word_result is not None:
        body["words"] = verbose_words(word_result.get("chunks", []))
    body["usage"] = usage
    return body


__all__ = [
    "RESPONSE_FORMATS",
    "TIMED_FORMATS",
    "TIMESTAMP_GRANULARITIES",
    "ApiError",
    "transcription_body",
]
