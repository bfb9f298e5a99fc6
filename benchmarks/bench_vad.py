# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""FireRedVAD vs Silero VAD on generated recordings with known speech: frame precision/recall, boundary error, speed.

    python benchmarks/bench_vad.py [--fixtures DIR] [--minutes 5] [--rounds 3] [--json results.json]

Recordings (one per condition, `--minutes` long each, the same utterance order and pauses in every condition):
utterances from the fixtures (espeak-ng clips and the four real recordings) and, when `espeak-ng` is installed,
more espeak-ng sentences (English and Mandarin, several speeds and pitches), separated by 0.4-3 s of silence, with a
music-like melody (decaying notes with harmonics, 2-4 s) after every fifth utterance. Conditions: clean (-70 dBFS
noise floor), pink noise at 10 dB and at 0 dB SNR (relative to the speech), and the clean recording with the
melody louder than the speech (+6 dB).

Every utterance is scaled to the same speech level (-23 dBFS), so a condition's SNR holds for each of them.
Truth: a 10 ms frame is speech where the clean utterance's frame energy is within 40 dB of its loudest frame,
with pauses shorter than 200 ms inside an utterance counted as speech (as VAD references label them). Each
detector's segments are turned into 10 ms frames and compared: precision and recall of speech frames, the share of
melody frames called speech, F1 again without the frames within 250 ms of a true boundary (the usual collar), and the
start/end boundary error of each utterance that a segment overlaps (mean and
90th percentile, ms).

Speed: x real time (seconds of audio per second of CPU time) with one thread, detectors interleaved over `--rounds`
rounds, best round; wall time next to it. On a shared machine the CPU time is the figure to trust.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402

from fireredasr_hf.audio import resample  # noqa: E402
from fireredasr_hf.vad import FireRedVad, SileroVad  # noqa: E402

DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
RATE = 16000
FRAME = 160  # 10 ms
ENGLISH = [
    "the meeting will start in ten minutes please take your seats",
    "can you hear me clearly on the other end of the line",
    "voice activity detection finds the speech in a long recording",
    "we measured the boundary error of every utterance",
    "she sells sea shells by the sea shore",
    "the weather forecast says it will rain tomorrow afternoon",
]
MANDARIN = [  # pinyin with tone numbers, read by espeak-ng's cmn-latn-pinyin voice
    "wo3 men5 xia4 wu3 san1 dian3 kai1 hui4",
    "qing3 ba3 zhe4 fen4 wen2 jian4 fa1 gei3 wo3",
    "jin1 tian1 de5 tian1 qi4 fei1 chang2 hao3",
    "yu3 yin1 shi2 bie2 ji4 shu4 fa1 zhan3 de5 hen3 kuai4",
    "zhe4 ge4 wen4 ti2 wo3 men5 ming2 tian1 zai4 tao3 lun4",
    "huan1 ying2 da4 jia1 can1 jia1 jin1 tian1 de5 hui4 yi4",
]


def fixture_clips(fixtures: Path) -> list[np.ndarray]:
    paths = sorted((fixtures / "audio").glob("p*.wav")) + sorted((fixtures / "real-speech").glob("*.wav"))
    return [soundfile.read(path, dtype="float32")[0] for path in paths]


def at_speech_level(clip: np.ndarray, level_db: float = -23.0) -> np.ndarray:
    """`clip` scaled so that its speech frames have an RMS of `level_db` dBFS (every utterance equally loud, so that
    the SNR of a condition holds for each of them)."""
    frames = clip[: len(clip) // FRAME * FRAME].reshape(-1, FRAME)
    rms = np.sqrt(np.mean(frames[true_speech_frames(clip)] ** 2))
    return clip * np.float32(10 ** (level_db / 20) / rms)


def espeak_clips() -> list[np.ndarray]:
    """espeak-ng sentences at 16 kHz (none when espeak-ng is missing)."""
    if shutil.which("espeak-ng") is None:
        print("espeak-ng not found: only the fixture utterances are used")
        return []
    clips = []
    with tempfile.TemporaryDirectory() as directory:
        jobs = [("en-us", text) for text in ENGLISH] + [("cmn-latn-pinyin", text) for text in MANDARIN]
        for index, (voice, text) in enumerate(jobs):
            path = Path(directory) / f"{index}.wav"
            speed, pitch = 140 + 15 * (index % 4), 35 + 10 * (index % 3)
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text], check=True
            )
            audio, rate = soundfile.read(path, dtype="float32")
            clips.append(resample(audio, rate, RATE))
    return clips


def frame_energy(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def true_speech_frames(clip: np.ndarray) -> np.ndarray:
    """Speech frames of a clean utterance: within 40 dB of its loudest frame, pauses < 200 ms filled."""
    energy = frame_energy(clip)
    speech = energy > energy.max() - 40
    edges = np.flatnonzero(np.diff(speech.astype(np.int8)))
    for start, end in zip(edges[1::2] + 1, edges[2::2] + 1):  # silent runs between speech runs
        if end - start < 20:
            speech[start:end] = True
    return speech


def melody(seconds: float, rng) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    notes = rng.choice([261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3], size=int(seconds * 3) + 1)
    music = np.zeros_like(t)
    for k, note in enumerate(notes):
        inside = (t >= k / 3) & (t < (k + 1) / 3)
        for harmonic in range(1, 6):
            envelope = np.exp(-4 * (t[inside] - k / 3))
            music[inside] += envelope * np.sin(2 * np.pi * note * harmonic * t[inside]) / harmonic
    return (music / np.abs(music).max()).astype(np.float32)


def pink_noise(num_samples: int, rng) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, num_samples)
    return (noise / noise.std()).astype(np.float32)


def build_recordings(clips, minutes: float, seed: int = 0):
    """The four conditions' recordings, the truth (speech per frame), the melody frames and the utterance spans."""
    rng = np.random.default_rng(seed)
    total = round(minutes * 60 * RATE)
    speech = np.zeros(total, np.float32)
    music = np.zeros(total, np.float32)
    truth = np.zeros(total // FRAME, bool)
    utterances = []
    position, index = 0, 0
    while True:
        position += round(rng.uniform(0.4, 3.0) * RATE) // FRAME * FRAME
        clip = clips[rng.integers(len(clips))]
        if position + len(clip) + RATE > total:
            break
        speech[position : position + len(clip)] += clip
        frames = true_speech_frames(clip)
        first = position // FRAME
        truth[first : first + len(frames)] |= frames
        voiced = np.flatnonzero(frames)
        utterances.append(((first + voiced[0]) / 100, (first + voiced[-1] + 1) / 100))
        position += len(clip)
        index += 1
        if index % 5 == 0:
            position += round(0.5 * RATE)
            piece = melody(rng.uniform(2, 4), rng)
            if position + len(piece) < total:
                music[position : position + len(piece)] = piece
                position += len(piece)
    speech_rms = np.sqrt(np.mean(speech[truth.repeat(FRAME)[:total]] ** 2))
    music_frames = np.abs(music[: len(truth) * FRAME]).reshape(-1, FRAME).max(axis=1) > 0
    noise = pink_noise(total, rng)
    floor = np.float32(10 ** (-70 / 20))
    quiet_music = music * np.float32(speech_rms * 10 ** (-6 / 20))
    recordings = {
        "clean": speech + quiet_music + floor * noise,
        "noise 10 dB SNR": speech + quiet_music + np.float32(speech_rms * 10 ** (-10 / 20)) * noise,
        "noise 0 dB SNR": speech + quiet_music + np.float32(speech_rms) * noise,
        "loud music (+6 dB)": speech + music * np.float32(speech_rms * 10 ** (6 / 20)) + floor * noise,
    }
    for name, audio in recordings.items():
        peak = np.abs(audio).max()
        if peak > 0.99:
            recordings[name] = audio * np.float32(0.99 / peak)
    return recordings, truth, music_frames, utterances


def segments_to_frames(segments, num_frames: int) -> np.ndarray:
    frames = np.zeros(num_frames, bool)
    for segment in segments:
        frames[round(segment.start * 100) : round(segment.end * 100)] = True
    return frames


def precision_recall(found: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> tuple[float, float, float]:
    found, truth = found[scored], truth[scored]
    true_positive = np.count_nonzero(found & truth)
    precision = true_positive / max(np.count_nonzero(found), 1)
    recall = true_positive / max(np.count_nonzero(truth), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-9)


def score(segments, truth, music_frames, utterances, collar_frames: int = 25) -> dict:
    found = segments_to_frames(segments, len(truth))
    precision, recall, f1 = precision_recall(found, truth, np.ones_like(truth))
    # The usual forgiveness of VAD scoring: frames within 250 ms of a true speech boundary are not scored.
    boundaries = np.flatnonzero(np.diff(truth.astype(np.int8))) + 1
    near = np.zeros_like(truth)
    for boundary in boundaries:
        near[max(0, boundary - collar_frames) : boundary + collar_frames] = True
    collar_f1 = precision_recall(found, truth, ~near)[2]
    errors, missed = [], 0
    for start, end in utterances:
        overlapping = [s for s in segments if s.end > start and s.start < end]
        if not overlapping:
            missed += 1
            continue
        errors += [abs(min(s.start for s in overlapping) - start), abs(max(s.end for s in overlapping) - end)]
    errors = np.array(errors) * 1000
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_collar": collar_f1,
        "music_false_alarm": np.count_nonzero(found & music_frames & ~truth) / max(np.count_nonzero(music_frames), 1),
        "boundary_mean_ms": float(errors.mean()) if errors.size else float("nan"),
        "boundary_p90_ms": float(np.percentile(errors, 90)) if errors.size else float("nan"),
        "missed_utterances": missed,
    }


def timed(detector, audio):
    cpu, wall = time.process_time(), time.perf_counter()
    segments = detector(audio, RATE)
    return segments, time.process_time() - cpu, time.perf_counter() - wall


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="the shared fixtures folder")
    parser.add_argument("--vad-model", default=None, help="FireRedVAD model (default: as FireRedVad.from_pretrained)")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of each condition's recording")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (detectors interleaved)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    torch.set_num_threads(1)
    detectors = {"FireRedVAD": FireRedVad.from_pretrained(args.vad_model), "Silero VAD": SileroVad()}
    clips = [at_speech_level(clip) for clip in fixture_clips(args.fixtures) + espeak_clips()]
    recordings, truth, music_frames, utterances = build_recordings(clips, args.minutes)
    print(f"{len(clips)} distinct utterances; {len(utterances)} placed per recording of {args.minutes:g} min")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; torch threads: 1")

    results = {}
    for condition, audio in recordings.items():
        for name, detector in detectors.items():
            segments, _, _ = timed(detector, audio)
            results.setdefault(condition, {})[name] = score(segments, truth, music_frames, utterances)

    audio = recordings["noise 10 dB SNR"]
    speed = {name: {"cpu": [], "wall": []} for name in detectors}
    for _ in range(args.rounds):
        for name, detector in detectors.items():
            _, cpu, wall = timed(detector, audio)
            speed[name]["cpu"].append(cpu)
            speed[name]["wall"].append(wall)
    seconds = len(audio) / RATE

    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB\n")
    print(
        "| condition | VAD | precision | recall | F1 | F1, 250 ms collar | melody called speech | "
        "boundary error mean / p90 (ms) | missed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for condition, by_vad in results.items():
        for name, r in by_vad.items():
            print(
                f"| {condition} | {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | "
                f"{r['f1_collar']:.3f} | "
                f"{100 * r['music_false_alarm']:.1f}% | {r['boundary_mean_ms']:.0f} / {r['boundary_p90_ms']:.0f} | "
                f"{r['missed_utterances']}/{len(utterances)} |"
            )
    print(f"\nSpeed on {seconds:.0f} s of audio (noise 10 dB SNR), best of {args.rounds} interleaved rounds:\n")
    print("| VAD | x real time, 1 thread (CPU time) | x real time (wall clock) |")
    print("|---|---|---|")
    for name, timing in speed.items():
        print(f"| {name} | {seconds / min(timing['cpu']):.0f} | {seconds / min(timing['wall']):.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"accuracy": results, "speed": speed, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
