# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Token and word timestamps of FireRedASR2-AED: CTC forced alignment of a hypothesis and the release's rules that
turn the alignment into times.

The steps, as FireRedASR2's `get_token_timestamp_torchaudio` and `asr.py` do them:

1. `ctc_forced_align`: the best path of the hypothesis through the CTC lattice (the same path as
   `torchaudio.functional.forced_align`, ties included), batched, in plain torch;
2. `alignment_to_token_times`: first frame of each token -> start, next token's start -> end, unusually long tokens
   shortened (`CTC.ctc_alignment_to_timestamp`);
3. `fix_token_times`: a 0.06 s shift, starts clamped to the previous end and to the audio, a uniform split when the
   alignment failed (`FireRedAsr2._get_and_fix_timestamp`); `keep_pauses=True` leaves out the clamp, which otherwise
   pulls the first token after a pause back to the end of the previous one;
4. `group_word_tokens`: SentencePiece pieces merged into English words, one group per CJK character
   (`merge_spm_timestamp`).

Remote code: imports torch only.
"""

import re
from itertools import pairwise

import torch

# Frame shift of the fbank features (ms); the encoder subsamples it 4x, so a CTC frame is 40 ms.
FBANK_FRAME_SHIFT_MS = 10
# The release moves every token 60 ms earlier (`SHIFT = 0.06` in `_get_and_fix_timestamp`): CTC spikes come late.
REFERENCE_SHIFT_S = 0.06
SPIECE_UNDERLINE = "▁"
_WORD_CONTINUATION = re.compile(r"^[a-zA-Z']+$")


def ctc_forced_align(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor | None = None,
    target_lengths: torch.Tensor | None = None,
    blank: int = 0,
) -> torch.LongTensor:
    """
    Viterbi alignment of label sequences to CTC outputs, for a batch.

    Equal to `torchaudio.functional.forced_align` (2.9) row by row: the same float32 sums, the same window of states
    at each frame, and the same choice of predecessor, which is not always the best one: the skip over a blank when
    strictly better than both alternatives, else the previous state when strictly better than both, else staying
    (so a tie between the previous state and the skip, both better than staying, stays); the path ends on the last
    label unless the final blank is strictly better. The result is torchaudio's path, which can score lower than
    the Viterbi optimum.

    Args:
        log_probs (`torch.Tensor` of shape `(batch, frames, classes)`): CTC log-probabilities (any scores work).
        targets (`torch.LongTensor` of shape `(batch, max_target_length)`): label ids without blanks, padded.
        input_lengths (`torch.LongTensor` of shape `(batch,)`, *optional*): valid frames per row (default: all).
        target_lengths (`torch.LongTensor` of shape `(batch,)`, *optional*): labels per row (default: all).
        blank (`int`): the blank id.

    Returns:
        `torch.LongTensor` of shape `(batch, frames)`: the label (or blank) of each frame; -1 past `input_lengths`.

    Raises:
        ValueError: a row whose labels do not fit its frames (CTC needs one frame per label plus one per repeated
            neighbour) or that has no labels.
    """
    batch_size, num_frames, _ = log_probs.shape
    device = log_probs.device
    if input_lengths is None:
        input_lengths = torch.full((batch_size,), num_frames, dtype=torch.long)
    if target_lengths is None:
        target_lengths = torch.full((batch_size,), targets.shape[1], dtype=torch.long)
    frame_counts, label_counts = input_lengths.tolist(), target_lengths.tolist()
    label_lists = [row[:count] for row, count in zip(targets.tolist(), label_counts)]
    windows = []
    for row, (labels, frames) in enumerate(zip(label_lists, frame_counts)):
        if not labels:
            raise ValueError("Every row needs at least one label to align.")
        repeats = sum(a == b for a, b in pairwise(labels))
        if len(labels) + repeats > frames:
            raise ValueError(f"Row {row}: {len(labels)} labels with {repeats} repeats do not fit in {frames} frames.")
        windows.append(_torchaudio_windows(labels, frames, num_frames))

    # The extended label sequence: blank, y1, blank, y2, ..., yL, blank.
    targets = targets.to(device)
    num_states = 2 * targets.shape[1] + 1
    states = torch.full((batch_size, num_states), blank, dtype=torch.long, device=device)
    states[:, 1::2] = targets
    # Skipping the blank before a label is allowed unless it repeats the previous label.
    can_skip = torch.zeros(batch_size, num_states, dtype=torch.bool, device=device)
    can_skip[:, 3::2] = targets[:, 1:] != targets[:, :-1]
    window = torch.tensor(windows, dtype=torch.long, device=device)  # (batch, frames, 2): [first, end) state
    state_index = torch.arange(num_states, device=device)
    in_window = (state_index >= window[..., :1]) & (state_index < window[..., 1:])  # (batch, frames, states)

    emissions = log_probs.gather(2, states[:, None, :].expand(batch_size, num_frames, num_states))
    minus_inf = torch.tensor(float("-inf"), dtype=log_probs.dtype, device=device)
    alpha = torch.where(in_window[:, 0], emissions[:, 0], minus_inf)
    backpointers = torch.zeros(num_frames, batch_size, num_states, dtype=torch.int8, device=device)
    pad1 = minus_inf.expand(batch_size, 1)
    pad2 = minus_inf.expand(batch_size, 2)
    frames_per_row = torch.tensor(frame_counts, device=device)
    for frame in range(1, num_frames):
        stay = alpha
        advance = torch.cat([pad1, alpha[:, :-1]], dim=1)
        skip = torch.where(can_skip, torch.cat([pad2, alpha[:, :-2]], dim=1), minus_inf)
        take_skip = (skip > advance) & (skip > stay)
        take_advance = ~take_skip & (advance > stay) & (advance > skip)
        best = torch.where(take_skip, skip, torch.where(take_advance, advance, stay))
        backpointers[frame] = torch.where(take_skip, 2, take_advance.to(torch.long)).to(torch.int8)
        running = (frame < frames_per_row)[:, None]
        alpha = torch.where(running, torch.where(in_window[:, frame], best + emissions[:, frame], minus_inf), alpha)

    rows = torch.arange(batch_size, device=device)
    last_state = 2 * torch.tensor(label_counts, device=device)  # the final blank of each row
    end_on_blank = alpha[rows, last_state] > alpha[rows, last_state - 1]
    state = torch.where(end_on_blank, last_state, last_state - 1)
    alignment = torch.full((batch_size, num_frames), -1, dtype=torch.long, device=device)
    for frame in range(num_frames - 1, -1, -1):
        running = frame < frames_per_row
        alignment[:, frame] = torch.where(running, states[rows, state], -1)
        state = torch.where(running, state - backpointers[frame, rows, state].long(), state)
    return alignment


def _torchaudio_windows(labels: list[int], frames: int, width: int) -> list[list[int]]:
    """The `[first, end)` states torchaudio's `forced_align` fills at each frame (its `start`/`end` bookkeeping),
    padded to `width` frames."""
    num_labels = len(labels)
    needed = num_labels + sum(a == b for a, b in pairwise(labels))
    start = 0 if frames - needed > 0 else 1
    end = 1 if num_labels == 0 else 2
    windows = [[start, end]]
    for frame in range(1, frames):
        if frames - frame <= needed:
            if start % 2 == 1 and start // 2 + 1 < num_labels and labels[start // 2] != labels[start // 2 + 1]:
                start += 1
            start += 1
        if frame <= needed:
            if end % 2 == 0 and end < 2 * num_labels and labels[end // 2 - 1] != labels[end // 2]:
                end += 1
            end += 1
        windows.append([start, end])
    return windows + [[0, 0]] * (width - frames)


def alignment_to_token_times(
    alignment: list[int], subsampling: int = 4, blank: int = 0
) -> tuple[list[float], list[float]]:
    """
    Start and end seconds of each token of a frame alignment (FireRedASR2's `CTC.ctc_alignment_to_timestamp`, with
    its arithmetic): a token starts at `0.04 * (its first frame + 1)`, ends where the next one starts (the last at
    `(40 * frames + 25) / 1000`), and a token longer than twice the average is cut to
    `start + max(1.5 * average, 0.04 * its frames)`; ends are rounded to the millisecond.
    """
    frame_ms = FBANK_FRAME_SHIFT_MS * subsampling
    starts: list[float] = []
    ends: list[float] = []
    spans: list[float] = []
    num_frames = len(alignment)
    frame = 0
    while frame < num_frames:
        token = alignment[frame]
        frame += 1
        if token == blank:
            continue
        first = frame
        starts.append(frame_ms * frame / 1000.0)
        if len(starts) == len(ends) + 2:
            ends.append(starts[-1])
        while frame < num_frames and alignment[frame] == token:
            frame += 1
        spans.append((frame - first + 1) * frame_ms / 1000.0)
    if not starts:
        return [], []
    ends.append((frame_ms * num_frames + 25) / 1000.0)

    average = sum(end - start for start, end in zip(starts, ends)) / len(ends)
    refined = []
    for start, end, span in zip(starts, ends, spans):
        if end - start > 2 * average:
            end = start + max(1.5 * average, span)
        refined.append(round(end, 3))
    return starts, refined


def fix_token_times(
    token_times: list[tuple[float, float]] | None,
    num_tokens: int,
    duration: float,
    keep_pauses: bool = False,
    shift: float = REFERENCE_SHIFT_S,
) -> list[list[float]]:
    """
    The release's final token times (FireRedASR2's `_get_and_fix_timestamp`), `[start, end]` per token, in seconds
    from the start of the audio, rounded to the millisecond.

    Args:
        token_times: `(start, end)` per token from the alignment, or `None` when it failed (the tokens then share
            the audio uniformly).
        num_tokens: number of tokens (used when `token_times` is `None`).
        duration: length of the audio in seconds (samples / sampling rate).
        keep_pauses: `False` (the release): every start is moved back to the previous end if it is later, so
            consecutive tokens touch and pauses vanish (upstream FireRedASR2S issues #41 and #58). `True`: starts
            stay where the alignment puts them (shifted), so a pause before a token shows as a gap.
        shift: seconds subtracted from the alignment's times (0.06 in the release).
    """
    times = []
    last_end = duration
    if token_times is None:
        average = duration / num_tokens if num_tokens > 0 else 0
        for index in range(num_tokens):
            start = min(max(0, index * average), last_end)
            end = min((index + 1) * average, duration)
            last_end = end
            times.append([round(start, 3), round(end, 3)])
    else:
        for start, end in token_times:
            start = max(0, start - shift)
            start = min(start, duration) if keep_pauses else min(start, last_end)
            end = min(max(0, end - shift), duration)
            last_end = end
            times.append([round(start, 3), round(end, 3)])
    # Tokens pushed to the very end of the audio get distinct times just before it.
    for offset in range(len(times)):
        index = -(offset + 1)
        start, end = times[index]
        if abs(duration - start) < 0.001:
            times[index][0] = duration - (offset + 1) * 0.001
        if offset != 0 and abs(duration - end) < 0.001:
            times[index][1] = duration - offset * 0.001
    return times


def hypothesis_end(ids: list[int], eos_token_id: int, pad_token_id: int | None) -> int:
    """
    The index after the last hypothesis token of a generated sequence `[<sos>, tokens..., <eos>, <pad>...]` (an
    unfinished hypothesis has no `<eos>` and is followed by padding only).
    """
    for index in range(1, len(ids)):
        if ids[index] == eos_token_id:
            return index
    end = len(ids)
    while end > 1 and ids[end - 1] == pad_token_id:
        end -= 1
    return end


def group_word_tokens(tokens: list[str]) -> list[list[int]]:
    """
    Token indices of each word, as FireRedASR2's `merge_spm_timestamp` groups them: a piece starting with `▁` takes
    the following pieces made of ASCII letters and apostrophes; every other token (a CJK character, a piece after
    something else) is a word of its own.
    """
    groups = []
    index = 0
    while index < len(tokens):
        group = [index]
        index += 1
        if tokens[group[0]].startswith(SPIECE_UNDERLINE):
            while index < len(tokens) and _WORD_CONTINUATION.match(tokens[index]):
                group.append(index)
                index += 1
        groups.append(group)
    return groups


def word_timestamps(
    tokens: list[str],
    token_times: list[tuple[float, float]] | None,
    duration: float,
    keep_pauses: bool = False,
    token_confidences: list[float] | None = None,
) -> list[dict]:
    """
    Words with times (and confidences) from the tokens of one hypothesis: `fix_token_times`, then
    `group_word_tokens`. Each word is `{"text", "start", "end"}` (+ `"confidence"`, the mean of its tokens').
    With `keep_pauses=False` the `(text, start, end)` triples equal the `timestamp` list of FireRedASR2's
    `FireRedAsr2.transcribe` (given tokens lower-cased as it does).
    """
    if token_times is not None and len(token_times) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(token_times)} token times.")
    times = fix_token_times(token_times, len(tokens), duration, keep_pauses=keep_pauses)
    words = []
    for group in group_word_tokens(tokens):
        text = tokens[group[0]]
        if text.startswith(SPIECE_UNDERLINE):
            text = text.replace(SPIECE_UNDERLINE, "") + "".join(tokens[index] for index in group[1:])
        word = {"text": text, "start": times[group[0]][0], "end": times[group[-1]][1]}
        if token_confidences is not None:
            word["confidence"] = sum(token_confidences[index] for index in group) / len(group)
        words.append(word)
    return words


__all__ = [
    "REFERENCE_SHIFT_S",
    "alignment_to_token_times",
    "ctc_forced_align",
    "fix_token_times",
    "group_word_tokens",
    "hypothesis_end",
    "word_timestamps",
]
