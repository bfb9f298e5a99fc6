# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""CPU speed of fireredasr-hf against sherpa-onnx on the same FireRedASR-AED weights, same utterances, one process.

    python benchmarks/bench_sherpa_onnx.py [--rounds 3] [--threads 1 2] [--encoder-layers 4] [--decoder-layers 4]

Model: random weights at FireRedASR-AED-L's width (d_model 1280, 20 heads, feed-forward 5120, vocabulary 7832) with
fewer layers, built with the original `FireRedAsrAed`, converted with `convert_checkpoint` and exported with
`fireredasr_hf.export.export_sherpa_onnx` (float32 and int8). The decoder is reshaped (`common.shape_decoder`) so that
transcripts end after realistic lengths: ~35 tokens on the short utterances (5-10 s), ~115 on the long ones (20-30 s),
~4.5 tokens per second of speech, within sherpa-onnx's cap of 8 tokens per second. Each set has its own weights
(only the `<eos>` row and the decoder reshaping differ); within a set every contestant uses the same weights.

Contestants, each from the float32 waveform in memory to token ids (features, encoder, search):
- sherpa-onnx (PyPI `sherpa-onnx`, its own greedy search; `--threads` intra-op threads): float32 and int8 exports;
- fireredasr-hf (`processor(audio)` + `model.generate`, `torch.set_num_threads`): float32 and `quantize_model` int8,
  greedy (`num_beams=1`) and the release's beam 3 (smoothing 1.25, length penalty 0.6).

Timing: rounds interleave the contestants (and the thread counts) so that a change in the machine's load hits all of
them; per round and contestant the seconds over all utterances of a set, wall and process CPU time (all threads).
Reported: medians over rounds and the spread (min-max of wall), the real-time factor (wall / audio), and ratios to
sherpa-onnx int8 greedy at the same thread count (> 1: that contestant is slower). The load average is printed each
round: the machine this runs on may be shared. Quantization changes a random model's transcripts more than a trained
one's, so the int8 contestants may decode a few more or fewer tokens: the table gives the token counts and the CPU
time per token, and a component breakdown (encoder, and one greedy step at equal lengths) follows each set.
"""

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

from fireredasr_hf.cpu import prefer_passive_waiting

# As the command line does, before torch loads OpenMP: idle threads sleep instead of spinning (this machine is shared).
prefer_passive_waiting()


import numpy as np
import sherpa_onnx
import torch
from common import build_converted_aed, looped_utterances
from transformers import AutoProcessor

from fireredasr_hf import FireRedAedForConditionalGeneration
from fireredasr_hf.export import decoder_feeds, export_sherpa_onnx
from fireredasr_hf.quantization import quantize_model

SAMPLING_RATE = 16000
# (name, durations in seconds, tokens after which the reshaped decoder ends its transcripts)
UTTERANCE_SETS = [("short", (5.0, 6.5, 8.0, 10.0), 35), ("long", (20.0, 30.0), 115)]
BEAM_3 = {"num_beams": 3, "softmax_smoothing": 1.25, "gnmt_length_penalty": 0.6}
GREEDY = {"num_beams": 1}


def build_models(workdir: Path, args, eos_after_tokens: int):
    """The converted model (float32 and int8) and the sherpa-onnx exports (float32 and int8) of one weight set."""
    converted = build_converted_aed(workdir, args.encoder_layers, args.decoder_layers, eos_after_tokens)
    ours = FireRedAedForConditionalGeneration.from_pretrained(converted).eval()
    processor = AutoProcessor.from_pretrained(converted)
    ours_int8 = quantize_model(copy.deepcopy(ours))
    exports = {
        precision: export_sherpa_onnx(
            ours, workdir / f"sherpa-{precision}", int8=precision == "int8", processor=processor
        )
        for precision in ("fp32", "int8")
    }
    return ours, ours_int8, processor, exports


def sherpa_contestant(export, threads: int):
    recognizer = sherpa_onnx.OfflineRecognizer.from_fire_red_asr(num_threads=threads, **export.recognizer_kwargs())
    vocabulary = {}
    for line in export.files["tokens"].read_text(encoding="utf-8").splitlines():
        symbol, index = line.rsplit(" ", 1)
        vocabulary[symbol] = int(index)

    def run(waveform):
        stream = recognizer.create_stream()
        stream.accept_waveform(SAMPLING_RATE, waveform)
        recognizer.decode_stream(stream)
        # sherpa-onnx shows a leading "▁" of a piece as a space.
        return [vocabulary[token.replace(" ", "▁")] for token in stream.result.tokens]

    return run


def ours_contestant(model, processor, threads: int, decoding: dict):
    eos_id = model.generation_config.eos_token_id

    def run(waveform):
        torch.set_num_threads(threads)
        inputs = processor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        tokens = model.generate(**inputs, **decoding)[0, 1:].tolist()
        return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens

    return run


def component_breakdown(ours, ours_int8, processor, exports, waveform, steps: int = 32, repeats: int = 3):
    """Encoder CPU ms and CPU ms per greedy decoding step, ours against onnxruntime running the exported graphs
    the way sherpa-onnx does (one thread, its cache layout), for one utterance; best of `repeats`."""
    import onnxruntime

    torch.set_num_threads(1)
    inputs = processor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    rows = {}
    for precision, model in (("fp32", ours), ("int8", ours_int8)):
        encoder_ms, step_ms = [], []
        for _ in range(repeats):
            cpu = time.process_time()
            encoder_outputs = model.get_encoder()(**inputs)
            encoder_ms.append((time.process_time() - cpu) * 1000)
            cpu = time.process_time()
            generated = model.generate(encoder_outputs=encoder_outputs, num_beams=1, max_new_tokens=steps)
            step_ms.append((time.process_time() - cpu) * 1000 / (generated.shape[1] - 1))
        rows[f"fireredasr-hf {precision}"] = (min(encoder_ms), min(step_ms))

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    features = inputs["input_features"].numpy()
    lengths = np.array([features.shape[1]], dtype=np.int64)
    for precision, export in exports.items():
        encoder = onnxruntime.InferenceSession(str(export.files["encoder"]), options)
        decoder = onnxruntime.InferenceSession(str(export.files["decoder"]), options)
        encoder_ms, step_ms = [], []
        for _ in range(repeats):
            cpu = time.process_time()
            cross_k, cross_v = encoder.run(None, {"features": features, "features_length": lengths})
            encoder_ms.append((time.process_time() - cpu) * 1000)
            layers, _, _, hidden_size = cross_k.shape
            heads = ours.config.num_attention_heads
            cache = np.zeros((layers, 1, steps + 4, heads, hidden_size // heads), dtype=np.float32)
            self_k, self_v, token = cache, cache.copy(), ours.config.decoder_start_token_id
            cpu = time.process_time()
            for step in range(steps):
                feeds = decoder_feeds(np.array([[token]]), self_k, self_v, cross_k, cross_v, np.array([step]))
                logits, self_k, self_v = decoder.run(None, feeds)
                token = int(logits[0, -1].argmax())
            step_ms.append((time.process_time() - cpu) * 1000 / steps)
        rows[f"onnxruntime (sherpa-onnx graphs) {precision}"] = (min(encoder_ms), min(step_ms))

    seconds = len(waveform) / SAMPLING_RATE
    print(f"\ncomponents, 1 thread, {seconds:.1f} s utterance, {steps} greedy steps (CPU ms, best of {repeats}):")
    print(f"{'':40s}{'encoder':>10s}{'per step':>10s}")
    for name, (encoder_ms, step_ms) in rows.items():
        print(f"{name:40s}{encoder_ms:10.0f}{step_ms:10.2f}")


def time_set(run, waveforms):
    wall, cpu = time.perf_counter(), time.process_time()
    token_ids = [run(waveform) for waveform in waveforms]
    return time.perf_counter() - wall, time.process_time() - cpu, token_ids


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (medians and spread over them)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    parser.add_argument("--encoder-layers", type=int, default=4)
    parser.add_argument("--decoder-layers", type=int, default=4)
    parser.add_argument("--sets", nargs="+", default=[name for name, _, _ in UTTERANCE_SETS], help="short, long")
    args = parser.parse_args()

    print(
        f"d_model 1280, {args.encoder_layers} encoder + {args.decoder_layers} decoder layers, vocabulary 7832; "
        f"OMP_NUM_THREADS {os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}; {os.cpu_count()} CPUs; "
        f"sherpa-onnx {sherpa_onnx.__version__}, torch {torch.__version__}",
        flush=True,
    )
    for set_index, (set_name, durations, eos_after_tokens) in enumerate(UTTERANCE_SETS):
        if set_name not in args.sets:
            continue
        with tempfile.TemporaryDirectory(prefix="bench_sherpa_onnx_") as workdir:
            ours, ours_int8, processor, exports = build_models(Path(workdir), args, eos_after_tokens)
            waveforms = looped_utterances(durations, offset=set_index * 3)
            contestants = {}
            for threads in args.threads:
                for precision in ("fp32", "int8"):
                    contestants[f"sherpa-onnx {precision} greedy", threads] = sherpa_contestant(
                        exports[precision], threads
                    )
                for precision, model in (("fp32", ours), ("int8", ours_int8)):
                    for decoding_name, decoding in (("greedy", GREEDY), ("beam 3", BEAM_3)):
                        contestants[f"fireredasr-hf {precision} {decoding_name}", threads] = ours_contestant(
                            model, processor, threads, decoding
                        )
            audio_seconds = sum(len(waveform) for waveform in waveforms) / SAMPLING_RATE
            print(
                f"\n== {set_name}: {len(waveforms)} utterances ({', '.join(f'{d:.1f}' for d in durations)} s, "
                f"{audio_seconds:.1f} s)",
                flush=True,
            )
            for run in contestants.values():  # warm-up
                run(waveforms[0][: 3 * SAMPLING_RATE])
            timings = {key: [] for key in contestants}
            token_ids = {}
            for round_index in range(args.rounds):
                for key, run in contestants.items():
                    wall, cpu, ids = time_set(run, waveforms)
                    timings[key].append((wall, cpu))
                    token_ids.setdefault(key, ids)
                print(
                    f"round {round_index + 1}/{args.rounds} done, load average "
                    f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}",
                    flush=True,
                )
            report(timings, token_ids, audio_seconds, args.threads)
            component_breakdown(ours, ours_int8, processor, exports, waveforms[0])


def report(timings, token_ids, audio_seconds, thread_counts):
    reference_name = "sherpa-onnx int8 greedy"
    print(
        f"\n{'contestant':34s}{'threads':>8s}{'tokens':>8s}{'wall s':>9s}{'(min-max)':>15s}{'CPU s':>8s}{'RTF':>7s}"
        f"{'wall/ref':>10s}{'CPU/ref':>9s}{'CPU ms/token':>14s}"
    )
    for threads in thread_counts:
        reference = timings[reference_name, threads]
        reference_wall = statistics.median(wall for wall, _ in reference)
        reference_cpu = statistics.median(cpu for _, cpu in reference)
        for (name, key_threads), rounds in timings.items():
            if key_threads != threads:
                continue
            walls = [wall for wall, _ in rounds]
            wall, cpu = statistics.median(walls), statistics.median(cpu for _, cpu in rounds)
            tokens = sum(len(ids) for ids in token_ids[name, threads])
            print(
                f"{name:34s}{threads:8d}{tokens:8d}{wall:9.2f}   ({min(walls):5.2f}-{max(walls):5.2f}){cpu:8.2f}"
                f"{wall / audio_seconds:7.3f}{wall / reference_wall:10.2f}{cpu / reference_cpu:9.2f}"
                f"{cpu * 1000 / tokens:14.1f}"
            )
    threads = thread_counts[0]
    reference_ids = token_ids["sherpa-onnx fp32 greedy", threads]
    print(f"\ntoken ids identical to sherpa-onnx fp32 greedy ({threads} thread(s)), per utterance:")
    for (name, key_threads), ids in token_ids.items():
        if key_threads == threads and "greedy" in name:
            same = sum(first == second for first, second in zip(ids, reference_ids))
            print(f"  {name:34s}{same}/{len(ids)}")


if __name__ == "__main__":
    main()
