# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Dynamic batching: requests that arrive close together are decoded in one model call, by one worker thread.

A request is submitted as a waveform with a key (the decoding options that must be equal within a batch, e.g. with
or without timestamps) and answered through a `concurrent.futures.Future`. The worker takes the oldest waiting
request and decodes it together with the others waiting with the same key, up to `max_batch_size`. While more
requests are on their way (announced with `expecting()`: the server announces a request as soon as it starts
reading its upload), the worker waits for them, at most `max_wait_s` from the oldest request's arrival; with none
on the way it does not wait, so a lone request pays no batching delay. A request cancelled before its batch starts
(its client went away, or it timed out) is never decoded; one cancelled while its batch runs is decoded and its
result dropped.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# Decodes a batch: waveforms and their common key -> one result or exception per waveform.
DecodeBatch = Callable[[Sequence[Any], Hashable], Sequence[Any]]


@dataclass
class _Request:
    waveform: Any
    key: Hashable
    arrival: float
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """Counts since start: batches decoded, requests decoded, requests cancelled before decoding."""

    batches: int = 0
    requests: int = 0
    cancelled: int = 0
    largest_batch: int = 0


class DynamicBatcher:
    """
    One worker thread that decodes submitted waveforms in batches.

    Args:
        decode: called with the waveforms of a batch and their key; returns one result per waveform (an exception
            instance fails that request alone). An exception raised by `decode` fails the whole batch.
        max_batch_size: requests decoded together at most.
        max_wait_s: how long the oldest waiting request may wait for others to join its batch.
    """

    def __init__(self, decode: DecodeBatch, max_batch_size: int, max_wait_s: float):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.decode = decode
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.stats = BatchStats()
        self._waiting: deque[_Request] = deque()
        self._condition = threading.Condition()
        self._closing = False
        self._expected = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fireredasr-decoder", daemon=True)
        self._thread.start()

    def submit(self, waveform, key: Hashable = None) -> Future:
        """Queues a waveform; the future gets its result (or exception). Cancel the future to withdraw it."""
        request = _Request(waveform, key, time.monotonic())
        with self._condition:
            if self._closing:
                raise RuntimeError("the server is shutting down")
            self._waiting.append(request)
            self._condition.notify()
        return request.future

    @contextmanager
    def expecting(self):
        """Announces a request that will be submitted within the block (e.g. while its upload is read and decoded),
        so that a batch waits for it (at most `max_wait_s`)."""
        with self._condition:
            self._expected += 1
        try:
            yield
        finally:
            with self._condition:
                self._expected -= 1
                self._condition.notify()

    @property
    def waiting(self) -> int:
        """Requests queued for decoding."""
        return len(self._waiting)

    @property
    def expected(self) -> int:
        """Requests announced and not yet queued."""
        return self._expected

    def close(self, timeout: float | None = None) -> None:
        """Stops taking requests, decodes those already waiting, then stops the worker."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next_batch(self) -> list[_Request] | None:
        with self._condition:
            while not self._waiting:
                if self._closing:
                    return None
                self._condition.wait()
            first = self._waiting[0]
            deadline = first.arrival + self.max_wait_s
            # Wait for company on its way, unless shutting down (then what is waiting goes at once).
            while not self._closing and self._expected > 0 and self._count(first.key) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            batch, kept = [], deque()
            while self._waiting:
                request = self._waiting.popleft()
                if request.key == first.key and len(batch) < self.max_batch_size:
                    batch.append(request)
                else:
                    kept.append(request)
            self._waiting = kept
        return batch

    def _count(self, key: Hashable) -> int:
        return sum(1 for request in self._waiting if request.key == key and not request.future.cancelled())

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            # A future cancelled while waiting is dropped here; the others can no longer be cancelled.
            running = [request for request in batch if request.future.set_running_or_notify_cancel()]
            self.stats.cancelled += len(batch) - len(running)
            if not running:
                continue
            try:
                results = self.decode([request.waveform for request in running], running[0].key)
            except BaseException as error:
                logger.exception("decoding a batch of %d failed", len(running))
                results = [error] * len(running)
            self.stats.batches += 1
            self.stats.requests += len(running)
            self.stats.largest_batch = max(self.stats.largest_batch, len(running))
            for request, result in zip(running, results, strict=True):
                if isinstance(result, BaseException):
                    request.future.set_exception(result)
                else:
                    request.future.set_result(result)


__all__ = ["BatchStats", "DynamicBatcher"]
