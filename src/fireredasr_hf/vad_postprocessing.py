# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The FireRedVAD release's post-processing: from per-frame probabilities to speech segments.

Both state machines are reproduced step for step (including their float arithmetic and rounding), so that the same
probabilities give the same segments as PyPI `fireredvad==0.0.2` (`core/vad_postprocessor.py`,
`core/stream_vad_postprocessor.py`). Times are in seconds; frames are 10 ms apart and 25 ms long.
"""

from collections import deque
from dataclasses import dataclass

import numpy as np

FRAME_SHIFT_S = 0.010
FRAME_LENGTH_S = 0.025
FRAMES_PER_SECOND = 100

SILENCE, POSSIBLE_SPEECH, SPEECH, POSSIBLE_SILENCE = range(4)


def _check_frames(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a whole number of 10 ms frames >= 0, got {value!r}")


def _check_threshold(name: str, value: float) -> None:
    if not (isinstance(value, (int, float, np.floating)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


class _Settings:
    """The settings both post-processors share, checked."""

    def _set(self, smooth_window_size, speech_threshold, min_speech_frame, max_speech_frame, min_silence_frame):
        _check_threshold("speech_threshold", speech_threshold)
        _check_frames(
            smooth_window_size=smooth_window_size,
            min_speech_frame=min_speech_frame,
            max_speech_frame=max_speech_frame,
            min_silence_frame=min_silence_frame,
        )
        if min_speech_frame <= 0:
            raise ValueError("min_speech_frame must be positive")
        self.smooth_window_size = max(1, smooth_window_size)
        self.speech_threshold = float(speech_threshold)
        self.min_speech_frame = min_speech_frame
        self.max_speech_frame = max_speech_frame
        self.min_silence_frame = min_silence_frame


class FireRedVadPostprocessor(_Settings):
    """
    Non-streaming post-processing of the FireRedVAD release (`VadPostprocessor`), with its README defaults.

    1. The probabilities are smoothed with a moving average over `smooth_window_size` frames (the first frames
       average what there is) and compared with `speech_threshold` (>=).
    2. A state machine turns the frame decisions into speech: speech starts after `min_speech_frame` consecutive
       speech frames (from the first of them) and ends after `min_silence_frame` consecutive non-speech frames.
    3. Each speech start moves `smooth_window_size` frames earlier (the smoothing's delay); silences shorter than
       `merge_silence_frame` are bridged; speech is extended by `extend_speech_frame` frames on both sides.
    4. Speech longer than `max_speech_frame` frames is cut at its least likely frame (raw probability) within
       every window of [max/2, max) frames.

    Args:
        smooth_window_size (`int`, defaults to 5), speech_threshold (`float`, defaults to 0.4),
        min_speech_frame (`int`, defaults to 20), max_speech_frame (`int`, defaults to 2000),
        min_silence_frame (`int`, defaults to 20), merge_silence_frame (`int`, defaults to 0),
        extend_speech_frame (`int`, defaults to 0): the release's settings, in 10 ms frames.
    """

    def __init__(
        self,
        smooth_window_size: int = 5,
        speech_threshold: float = 0.4,
        min_speech_frame: int = 20,
        max_speech_frame: int = 2000,
        min_silence_frame: int = 20,
        merge_silence_frame: int = 0,
        extend_speech_frame: int = 0,
    ):
        self._set(smooth_window_size, speech_threshold, min_speech_frame, max_speech_frame, min_silence_frame)
        _check_frames(merge_silence_frame=merge_silence_frame, extend_speech_frame=extend_speech_frame)
        if max_speech_frame < 2:
            raise ValueError(f"max_speech_frame must be at least 2 frames, got {max_speech_frame}")
        self.merge_silence_frame = merge_silence_frame
        self.extend_speech_frame = extend_speech_frame

    def decisions(self, probabilities) -> list[int]:
        """0/1 per frame (1 = speech) for the raw per-frame speech probabilities."""
        probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if probabilities.size == 0:
            return []
        is_speech = self._smooth(probabilities) >= self.speech_threshold
        decisions = self._state_machine(is_speech.tolist())
        decisions = self._move_starts_back(decisions)
        decisions = self._merge_short_silences(decisions)
        decisions = self._extend(decisions)
        return self._split_long_speech(decisions, probabilities.tolist())

    def segments(self, decisions, duration: float | None = None) -> list[tuple[float, float]]:
        """`(start, end)` seconds of the speech runs of `decisions`, rounded to the millisecond; a run that lasts to
        the end closes at the end of the last frame (at most `duration`)."""
        segments = []
        start = None
        for t, decision in enumerate(decisions):
            if decision == 1 and start is None:
                start = t
            elif decision == 0 and start is not None:
                segments.append((start * FRAME_SHIFT_S, t * FRAME_SHIFT_S))
                start = None
        if start is not None:
            end = len(decisions) * FRAME_SHIFT_S + FRAME_LENGTH_S
            if duration is not None:
                end = min(end, duration)
            segments.append((start * FRAME_SHIFT_S, end))
        return [(round(start, 3), round(end, 3)) for start, end in segments]

    def __call__(self, probabilities, duration: float | None = None) -> list[tuple[float, float]]:
        """Speech segments `(start, end)` in seconds for the raw per-frame speech probabilities."""
        return self.segments(self.decisions(probabilities), duration)

    def _smooth(self, probabilities: np.ndarray) -> np.ndarray:
        window = self.smooth_window_size
        if window <= 1:
            return probabilities
        smoothed = np.convolve(probabilities, np.ones(window) / window, mode="full")[: len(probabilities)]
        for i in range(min(window - 1, len(probabilities))):  # the first frames: the mean of what there is
            smoothed[i] = np.mean(probabilities[: i + 1])
        return smoothed

    def _state_machine(self, is_speech: list[bool]) -> list[int]:
        if self.min_speech_frame <= 0 and self.min_silence_frame <= 0:
            return [int(value) for value in is_speech]
        decisions = [0] * len(is_speech)
        state, speech_start, silence_start = SILENCE, -1, -1
        for t, speech in enumerate(is_speech):
            if state == SILENCE:
                if speech:
                    state, speech_start = POSSIBLE_SPEECH, t
            elif state == POSSIBLE_SPEECH:
                if speech:
                    if t - speech_start >= self.min_speech_frame:
                        state = SPEECH
                        decisions[speech_start:t] = [1] * (t - speech_start)
                else:
                    state, speech_start = SILENCE, -1
            elif state == SPEECH:
                if not speech:
                    state, silence_start = POSSIBLE_SILENCE, t
            elif not speech:  # POSSIBLE_SILENCE
                if t - silence_start >= self.min_silence_frame:
                    state, speech_start = SILENCE, -1
            else:
                state, silence_start = SPEECH, -1
            decisions[t] = 1 if state in (SPEECH, POSSIBLE_SILENCE) else 0
        return decisions

    def _move_starts_back(self, decisions: list[int]) -> list[int]:
        moved = decisions.copy()
        for t in range(1, len(decisions)):
            if decisions[t - 1] == 0 and decisions[t] == 1:
                start = max(0, t - self.smooth_window_size)
                moved[start:t] = [1] * (t - start)
        return moved

    def _merge_short_silences(self, decisions: list[int]) -> list[int]:
        if self.merge_silence_frame <= 0:
            return decisions
        merged = decisions.copy()
        silence_start = None
        for t in range(1, len(decisions)):
            if decisions[t - 1] == 1 and decisions[t] == 0 and silence_start is None:
                silence_start = t
            elif decisions[t - 1] == 0 and decisions[t] == 1 and silence_start is not None:
                if t - silence_start < self.merge_silence_frame:
                    merged[silence_start:t] = [1] * (t - silence_start)
                silence_start = None
        return merged

    def _extend(self, decisions: list[int]) -> list[int]:
        if self.extend_speech_frame <= 0:
            return decisions
        kernel = np.ones(2 * self.extend_speech_frame + 1)
        return (np.convolve(np.array(decisions), kernel, mode="same") > 0).astype(int).tolist()

    def _split_long_speech(self, decisions: list[int], probabilities: list[float]) -> list[int]:
        split = decisions.copy()
        # The release works from the rounded segment times back to frames (int() truncates, as it does).
        for start_s, end_s in self.segments(decisions):
            start_frame, end_frame = int(start_s / FRAME_SHIFT_S), int(end_s / FRAME_SHIFT_S)
            if end_frame - start_frame > self.max_speech_frame:
                for point in self._split_points(probabilities[start_frame:end_frame]):
                    split[start_frame + point] = 0
        return split

    def _split_points(self, probabilities: list[float]) -> list[int]:
        points = []
        start = 0
        while len(probabilities) - start > self.max_speech_frame:
            window_start = int(start + self.max_speech_frame / 2)
            window_end = int(start + self.max_speech_frame)
            point = window_start + int(np.argmin(probabilities[window_start:window_end]))
            points.append(point)
            start = point + 1
        return points


@dataclass
class StreamVadFrameResult:
    """What the streaming post-processing says about one frame (frame numbers are 1-based, as in the release)."""

    frame_idx: int
    is_speech: bool
    raw_prob: float
    smoothed_prob: float
    is_speech_start: bool = False
    is_speech_end: bool = False
    speech_start_frame: int = -1
    speech_end_frame: int = -1


class FireRedStreamVadPostprocessor(_Settings):
    """
    Streaming post-processing of the FireRedVAD release (`StreamVadPostprocessor`), one frame at a time, with its
    README defaults.

    The probability is smoothed over the last `smooth_window_size` frames and compared with `speech_threshold`;
    speech starts after `min_speech_frame` speech frames (reported `pad_start_frame` frames earlier, at least the
    smoothing window) and ends after `min_silence_frame` non-speech frames; a segment reaching `max_speech_frame`
    frames is ended and a new one starts on the next frame.
    """

    def __init__(
        self,
        smooth_window_size: int = 5,
        speech_threshold: float = 0.4,
        pad_start_frame: int = 5,
        min_speech_frame: int = 8,
        max_speech_frame: int = 2000,
        min_silence_frame: int = 20,
    ):
        self._set(smooth_window_size, speech_threshold, min_speech_frame, max_speech_frame, min_silence_frame)
        _check_frames(pad_start_frame=pad_start_frame)
        self.pad_start_frame = max(self.smooth_window_size, pad_start_frame)
        self.reset()

    def reset(self) -> None:
        self.frame_count = 0
        self._window = deque()
        self._window_sum = 0.0
        self._state = SILENCE
        self._speech_count = 0
        self._silence_count = 0
        self._hit_max_speech = False
        self._last_speech_start_frame = -1
        self._last_speech_end_frame = -1

    def process(self, probability: float) -> StreamVadFrameResult:
        """The result for the next frame, given its raw speech probability."""
        probability = float(probability)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"a speech probability must be in [0, 1], got {probability}")
        self.frame_count += 1
        smoothed = self._smooth(probability)
        result = StreamVadFrameResult(
            frame_idx=self.frame_count,
            is_speech=int(smoothed >= self.speech_threshold),
            raw_prob=round(probability, 3),
            smoothed_prob=round(smoothed, 3),
        )
        self._transition(result.is_speech, result)
        return result

    def _smooth(self, probability: float) -> float:
        if self.smooth_window_size <= 1:
            return probability
        self._window.append(probability)
        self._window_sum += probability
        if len(self._window) > self.smooth_window_size:
            self._window_sum -= self._window.popleft()
        return self._window_sum / len(self._window)

    def _end_at_max_length(self, result: StreamVadFrameResult) -> None:
        self._hit_max_speech = True
        self._speech_count = 0
        result.is_speech_end = True
        result.speech_end_frame = self.frame_count
        result.speech_start_frame = self._last_speech_start_frame
        self._last_speech_start_frame = -1
        self._last_speech_end_frame = result.speech_end_frame

    def _transition(self, is_speech: int, result: StreamVadFrameResult) -> None:
        if self._hit_max_speech:
            result.is_speech_start = True
            result.speech_start_frame = self.frame_count
            self._last_speech_start_frame = result.speech_start_frame
            self._hit_max_speech = False

        if self._state == SILENCE:
            if is_speech:
                self._state = POSSIBLE_SPEECH
                self._speech_count += 1
            else:
                self._silence_count += 1
                self._speech_count = 0
        elif self._state == POSSIBLE_SPEECH:
            if is_speech:
                self._speech_count += 1
                if self._speech_count >= self.min_speech_frame:
                    self._state = SPEECH
                    result.is_speech_start = True
                    result.speech_start_frame = max(
                        1,
                        self.frame_count - self._speech_count + 1 - self.pad_start_frame,
                        self._last_speech_end_frame + 1,
                    )
                    self._last_speech_start_frame = result.speech_start_frame
                    self._silence_count = 0
            else:
                self._state = SILENCE
                self._silence_count = 1
                self._speech_count = 0
        elif self._state == SPEECH:
            self._speech_count += 1
            if is_speech:
                self._silence_count = 0
                if self._speech_count >= self.max_speech_frame:
                    self._end_at_max_length(result)
            else:
                self._state = POSSIBLE_SILENCE
                self._silence_count += 1
        else:  # POSSIBLE_SILENCE
            self._speech_count += 1
            if is_speech:
                self._state = SPEECH
                self._silence_count = 0
                if self._speech_count >= self.max_speech_frame:
                    self._end_at_max_length(result)
            else:
                self._silence_count += 1
                if self._silence_count >= self.min_silence_frame:
                    self._state = SILENCE
                    result.is_speech_end = True
                    result.speech_end_frame = self.frame_count
                    result.speech_start_frame = self._last_speech_start_frame
                    self._last_speech_end_frame = result.speech_end_frame
                    self._last_speech_start_frame = -1
                    self._speech_count = 0


def stream_results_to_segments(results: list[StreamVadFrameResult]) -> list[tuple[float, float]]:
    """`(start, end)` seconds of the speech the streaming results mark (the release's `results_to_timestamps`):
    a segment still open after the last frame ends there."""
    results = sorted(results, key=lambda result: result.frame_idx)
    frames = []
    start = -1
    for result in results:
        if result.is_speech_start:
            start = max(0, result.speech_start_frame - 1)
        elif result.is_speech_end:
            frames.append((start, max(0, result.speech_end_frame - 1)))
            start = -1
    if start != -1:
        frames.append((start, results[-1].frame_idx - 1))
    return [(start / FRAMES_PER_SECOND, end / FRAMES_PER_SECOND) for start, end in frames]


def event_ratio(probabilities, threshold: float) -> float:
    """Share of frames whose raw probability reaches `threshold`, rounded to 3 decimals (the release's
    `event2ratio`)."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if probabilities.size == 0:
        return 0
    return round(int(np.count_nonzero(probabilities >= threshold)) / probabilities.size, 3)


__all__ = [
    "FRAME_LENGTH_S",
    "FRAME_SHIFT_S",
    "FireRedStreamVadPostprocessor",
    "FireRedVadPostprocessor",
    "StreamVadFrameResult",
    "event_ratio",
    "stream_results_to_segments",
]
