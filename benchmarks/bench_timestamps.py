# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""What word timestamps cost: FireRedASR2-AED decoding with and without `return_token_timestamps=True`, one run.

    python benchmarks/bench_timestamps.py [--threads 1] [--repeats 3] [--utterances 4]

Model: the mid-size AED of bench_aed_speed.py (d_model 512, 8 heads, 8 + 8 layers, vocabulary 4000, its decoder
shaped so that transcripts have the length of real speech, ~4.5 tokens per second) with a random CTC head, in the
FireRedASR2-AED format, converted by `convert_checkpoint`. Audio: `--utterances` clips of 20-30 s (500-750 CTC
frames, ~110-130 tokens). Decoding: the converted model's defaults (beam 3, smoothing 1.25, length penalty 0.6).

Measured per utterance, batch size 1, features given, interleaved round by round (median of `--repeats`):
- decoding: `generate(**inputs)` (encoder + beam search);
- with timestamps: `generate(**inputs, return_token_timestamps=True)`;
- the alignment alone: the CTC head, the forced alignment and the token times for the returned hypothesis
  (`_add_token_timestamps` on the same encoder output), which is what timestamps add;
- word times: FireRedASR2's rules turning token times into words (`timestamps_fireredasr.word_timestamps`).
The timestamp cost does not grow with the model (a linear layer and a Viterbi pass over frames x 2 tokens), the
decoding does: on the released 1.1B-parameter model the share is smaller than here. The CTC head of the released
size (1280 -> 8667) is timed on its own for that reason. Wall and process CPU seconds are printed; on a shared
machine the CPU times are the steadier figure.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import soundfile
import torch
from transformers import AutoProcessor

sys.path.insert(0, str(Path(__file__).parent))
from bench_aed_speed import MODEL_ARGS, SAMPLING_RATE, shape_decoder, write_utterances
from common import build_original_aed, original_state_dict, write_original_aed_dir

from fireredasr_hf import FireRedAedForConditionalGeneration
from fireredasr_hf.conversion import convert_checkpoint
from fireredasr_hf.timestamps_fireredasr import hypothesis_end, word_timestamps


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the median counts")
    parser.add_argument("--utterances", type=int, default=4, help="number of 20-30 s utterances")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_timestamps_") as workdir:
        workdir = Path(workdir)
        original = build_original_aed(MODEL_ARGS)
        shape_decoder(original)
        state_dict = original_state_dict(original)
        torch.manual_seed(2)
        head = torch.nn.Linear(MODEL_ARGS.d_model, MODEL_ARGS.odim)
        state_dict["ctc.ctc_lo.weight"], state_dict["ctc.ctc_lo.bias"] = head.weight.detach(), head.bias.detach()
        write_original_aed_dir(workdir / "original", MODEL_ARGS, state_dict)
        del original
        convert_checkpoint(workdir / "original", workdir / "converted")
        model = FireRedAedForConditionalGeneration.from_pretrained(workdir / "converted").eval()
        processor = AutoProcessor.from_pretrained(workdir / "converted")
        wav_paths = write_utterances(workdir, args.utterances)
        inputs = [
            processor(soundfile.read(path, dtype="int16")[0], sampling_rate=SAMPLING_RATE, return_tensors="pt")
            for path in wav_paths
        ]

        print(
            f"{len(inputs)} utterances of {', '.join(f'{soundfile.info(p).duration:.1f}' for p in wav_paths)} s; "
            f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        # Warm-up, and the facts of each utterance.
        facts = []
        for features in inputs:
            out = model.generate(**features, return_token_timestamps=True)
            ids = out.sequences[0].tolist()
            frames = int(model.get_encoder()(**features).attention_mask.sum())
            aligned = not torch.isnan(out.token_timestamps[0, 1, 0]).item()
            facts.append((frames, hypothesis_end(ids, 4, 2) - 1, aligned))
        print("frames / tokens / aligned: " + ", ".join(f"{f} / {t} / {a}" for f, t, a in facts))

        rounds = {"decode": [], "decode+timestamps": [], "alignment": [], "word times": []}
        for _ in range(args.repeats):
            totals = {name: [0.0, 0.0] for name in rounds}
            for features in inputs:
                _, plain = timed(model.generate, **features)
                out, with_times = timed(model.generate, **features, return_token_timestamps=True)
                with torch.no_grad():
                    encoder_outputs = model.get_encoder()(**features)
                _, alignment = timed(model._add_token_timestamps, out, encoder_outputs, model.generation_config)
                ids = out.sequences[0].tolist()
                end = hypothesis_end(ids, 4, 2)
                tokens = processor.tokenizer.convert_ids_to_tokens(ids[1:end])
                times = out.token_timestamps[0, 1:end].tolist()
                duration = features["input_features"].shape[1] / 100
                _, words = timed(word_timestamps, tokens, times, duration)
                for name, value in zip(rounds, (plain, with_times, alignment, words)):
                    totals[name][0] += value[0]
                    totals[name][1] += value[1]
            for name, values in rounds.items():
                values.append(totals[name])

        count = len(inputs)
        median = {
            name: [statistics.median(r[i] for r in values) / count for i in (0, 1)] for name, values in rounds.items()
        }
        for name, (wall, cpu) in median.items():
            print(f"{name:>18}: {1000 * wall:8.1f} ms wall, {1000 * cpu:8.1f} ms CPU per utterance")
        extra = [median["alignment"][i] + median["word times"][i] for i in (0, 1)]
        print(
            f"timestamps add {1000 * extra[0]:.1f} ms wall / {1000 * extra[1]:.1f} ms CPU per utterance: "
            f"{100 * extra[0] / median['decode'][0]:.2f}% (wall) / {100 * extra[1] / median['decode'][1]:.2f}% (CPU) "
            f"of decoding; generate with vs without timestamps: "
            f"{100 * (median['decode+timestamps'][0] / median['decode'][0] - 1):+.2f}% wall"
        )

        # The released model's CTC head (1280 -> 8667) on the frames of these utterances.
        full_head = torch.nn.Linear(1280, 8667)
        hidden = [torch.randn(1, frames, 1280) for frames, _, _ in facts]
        with torch.no_grad():
            full_head(hidden[0]).log_softmax(-1)
            samples = [
                timed(lambda: [full_head(h).float().log_softmax(-1) for h in hidden])[1] for _ in range(args.repeats)
            ]
        wall, cpu = (statistics.median(s[i] for s in samples) / count for i in (0, 1))
        print(
            f"released-size CTC head (1280 -> 8667): {1000 * wall:.1f} ms wall, {1000 * cpu:.1f} ms CPU per utterance"
        )


if __name__ == "__main__":
    main()
