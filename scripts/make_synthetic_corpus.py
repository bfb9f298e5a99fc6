#!/usr/bin/env python
# Copyright 2026 The fireredasr-hf contributors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Generates a small synthetic spoken corpus (Mandarin, English and code-switched phrases spoken by espeak-ng) as
Kaldi data directories, for fine-tuning smoke tests and demos.

    python scripts/make_synthetic_corpus.py OUT_DIR [--num-train 400] [--num-test 60] [--seed 0] [--write-tokenizer DIR]

writes `OUT_DIR/{train,test}/` with `wav.scp` (paths relative to that folder), `text` (Chinese without spaces,
English lower-case) and `wav/<uttid>.wav` (16 kHz mono 16-bit PCM). Phrases are drawn from small word lists; the
test phrases use only words that occur in the training phrases but are combinations the training set does not
contain. Speaking rate, pitch, voice variant and loudness vary per utterance. Mandarin is spoken from pinyin with
tone numbers (`espeak-ng -v cmn-latn-pinyin`), English with `-v en-us`. The output depends only on the arguments and
the espeak-ng version.

`--write-tokenizer DIR` also writes what a randomly initialised FireRedASR-AED needs for this corpus, in the
original model folder layout: `dict.txt` (`<blank> <unk> <pad> <sos> <eos>`, the corpus's Chinese characters, then
the pieces of a SentencePiece BPE model trained on the upper-cased English training text), that model as
`train_bpe1000.model` (the file name the original code expects, whatever the vocabulary size), and `cmvn.ark`
(Kaldi binary global CMVN statistics of the training set's fbank features).
"""

import argparse
import io
import itertools
import shutil
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece
import soundfile
from pypinyin import Style, lazy_pinyin

from fireredasr_hf.audio import load_audio, resample
from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor

SAMPLING_RATE = 16000
SPECIAL_TOKENS = ["<blank>", "<unk>", "<pad>", "<sos>", "<eos>"]
CJK_CHARACTER_RANGES = (("\u3400", "\u4dbf"), ("\u4e00", "\u9fff"))

# Word lists per slot of the phrase templates below. Slots whose name ends with "?" are optional.
WORDS = {
    "zh_time?": ["今天", "明天", "昨天", "现在", "晚上", "早上"],
    "zh_subject": ["我", "你", "他", "我们", "老师", "妈妈", "朋友", "同学"],
    "zh_verb": ["喜欢", "想买", "看见", "需要", "找到", "打开", "带来"],
    "zh_object": ["苹果", "电脑", "手机", "火车票", "咖啡", "新书", "音乐", "窗户", "地图", "雨伞"],
    "en_prefix?": ["please", "can you"],
    "en_verb": ["open", "close", "find", "bring", "play", "check", "move", "clean"],
    "en_determiner": ["the", "my", "your", "this"],
    "en_adjective?": ["red", "new", "old", "big", "small", "green"],
    "en_noun": ["door", "window", "light", "music", "book", "phone", "map", "car", "table"],
    "en_suffix?": ["now", "today", "again", "later"],
}
# A phrase is a list of segments, each spoken in one language from the words of its slots.
TEMPLATES = {
    "zh": [("zh", ["zh_time?", "zh_subject", "zh_verb", "zh_object"])],
    "en": [("en", ["en_prefix?", "en_verb", "en_determiner", "en_adjective?", "en_noun", "en_suffix?"])],
    "mixed": [("zh", ["zh_subject", "zh_verb"]), ("en", ["en_determiner", "en_adjective?", "en_noun"])],
}
# Languages take turns so that even a handful of utterances covers all of them.
LANGUAGE_CYCLE = ["zh", "en", "mixed", "zh", "en"]
ESPEAK_VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us"}
ESPEAK_VARIANTS = ["", "+m3", "+m7", "+f2", "+f4"]
SPEED_WPM = (130, 190)
PITCH = (30, 70)
PEAK_LEVEL = (0.3, 0.9)
SEGMENT_GAP_S = 0.15
MAX_SAMPLING_ATTEMPTS = 100_000

# One phrase: a tuple of (language, words) segments.
Phrase = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Utterance:
    uttid: str
    phrase: Phrase
    variant: str
    speed: int
    pitch: int
    peak: float

    @property
    def transcript(self) -> str:
        return " ".join(("" if language == "zh" else " ").join(words) for language, words in self.phrase)


def sample_phrase(language: str, words: dict[str, list[str]], rng: np.random.Generator) -> Phrase:
    segments = []
    for segment_language, slots in TEMPLATES[language]:
        segment = []
        for slot in slots:
            choices = words[slot]
            if slot.endswith("?") and (not choices or rng.random() < 0.5):
                continue
            segment.append(choices[rng.integers(len(choices))])
        segments.append((segment_language, tuple(segment)))
    return tuple(segments)


def sample_phrases(
    count: int, words: dict[str, list[str]], excluded: set[Phrase], rng: np.random.Generator
) -> list[Phrase]:
    """`count` distinct phrases, none of them in `excluded`, languages taking turns."""
    phrases = []
    seen = set(excluded)
    languages = itertools.cycle(LANGUAGE_CYCLE)
    language = next(languages)
    for _ in range(MAX_SAMPLING_ATTEMPTS):
        if len(phrases) == count:
            return phrases
        phrase = sample_phrase(language, words, rng)
        if phrase not in seen:
            seen.add(phrase)
            phrases.append(phrase)
            language = next(languages)
    raise ValueError(
        f"Could only draw {len(phrases)} of {count} distinct phrases from the word lists; ask for fewer utterances."
    )


def plan_corpus(num_train: int, num_test: int, seed: int) -> dict[str, list[Utterance]]:
    """Draws the phrases and speaking parameters of both splits. The test phrases use only words the training
    phrases contain (per slot) and are all new combinations."""
    rng = np.random.default_rng(seed)
    train_phrases = sample_phrases(num_train, WORDS, set(), rng)
    used = {slot: set() for slot in WORDS}
    for phrase in train_phrases:
        for word in itertools.chain.from_iterable(words for _, words in phrase):
            for slot, slot_words in WORDS.items():
                if word in slot_words:
                    used[slot].add(word)
    train_words = {slot: [word for word in slot_words if word in used[slot]] for slot, slot_words in WORDS.items()}
    test_phrases = sample_phrases(num_test, train_words, set(train_phrases), rng)

    splits = {}
    for split, phrases in (("train", train_phrases), ("test", test_phrases)):
        splits[split] = [
            Utterance(
                uttid=f"{split}_{index:05d}",
                phrase=phrase,
                variant=ESPEAK_VARIANTS[rng.integers(len(ESPEAK_VARIANTS))],
                speed=int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                peak=float(rng.uniform(*PEAK_LEVEL)),
            )
            for index, phrase in enumerate(phrases)
        ]
    return splits


def espeak_input(language: str, words: tuple[str, ...]) -> str:
    if language == "zh":
        # The whole segment at once, so that pypinyin sees the words in context (tone sandhi of 一, neutral tones).
        return " ".join(lazy_pinyin("".join(words), style=Style.TONE3, neutral_tone_with_five=True))
    return " ".join(words)


def synthesize(utterance: Utterance) -> np.ndarray:
    """The utterance as int16 samples at 16 kHz: its segments spoken one by one, joined by short pauses and scaled
    to the utterance's peak level."""
    pieces = []
    for language, words in utterance.phrase:
        command = [
            "espeak-ng",
            "-v",
            ESPEAK_VOICES[language] + utterance.variant,
            "-s",
            str(utterance.speed),
            "-p",
            str(utterance.pitch),
            "--stdout",
            espeak_input(language, words),
        ]
        wav_bytes = subprocess.run(command, capture_output=True, check=True).stdout
        samples, sampling_rate = soundfile.read(io.BytesIO(wav_bytes), dtype="float32")
        if pieces:
            pieces.append(np.zeros(int(SEGMENT_GAP_S * SAMPLING_RATE), dtype=np.float32))
        pieces.append(resample(samples, sampling_rate, SAMPLING_RATE))
    waveform = np.concatenate(pieces)
    waveform *= utterance.peak / max(float(np.abs(waveform).max()), 1e-6)
    return np.round(waveform * 32767).astype(np.int16)


def write_split(split_dir: Path, utterances: list[Utterance], num_workers: int) -> None:
    (split_dir / "wav").mkdir(parents=True, exist_ok=True)

    def write_one(utterance: Utterance) -> None:
        soundfile.write(split_dir / "wav" / f"{utterance.uttid}.wav", synthesize(utterance), SAMPLING_RATE, "PCM_16")

    with ThreadPoolExecutor(num_workers) as pool:
        list(pool.map(write_one, utterances))
    with (
        open(split_dir / "wav.scp", "w", encoding="utf-8") as wav_scp,
        open(split_dir / "text", "w", encoding="utf-8") as text,
    ):
        for utterance in utterances:
            wav_scp.write(f"{utterance.uttid} wav/{utterance.uttid}.wav\n")
            text.write(f"{utterance.uttid} {utterance.transcript}\n")


def is_cjk_character(character: str) -> bool:
    return any(low <= character <= high for low, high in CJK_CHARACTER_RANGES)


def train_sentencepiece(sentences: list[str], vocab_size: int) -> bytes:
    """A BPE SentencePiece model of at most `vocab_size` pieces, trained in memory."""
    if not sentences:
        raise ValueError("The training split has no English text to train the SentencePiece model on.")
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    return model.getvalue()


def write_dict(path: Path, characters: list[str], sentencepiece_model: bytes) -> None:
    """A FireRedASR `dict.txt`: the special tokens, the Chinese characters, then the SentencePiece pieces (without
    its own control and unknown pieces), one `<token> <id>` per line."""
    processor = sentencepiece.SentencePieceProcessor(model_proto=sentencepiece_model)
    pieces = [
        processor.id_to_piece(index)
        for index in range(processor.get_piece_size())
        if not (processor.is_control(index) or processor.is_unknown(index))
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{token} {index}\n" for index, token in enumerate(SPECIAL_TOKENS + characters + pieces))


def write_kaldi_matrix(path: Path, matrix: np.ndarray) -> None:
    """Writes a float64 matrix in Kaldi's binary format without an utterance key (what `copy-matrix --binary=true`
    and the original `cmvn.ark` look like): `\\0B`, the token `DM `, rows and columns each as a size byte (4) and a
    little-endian int32, then the data row by row."""
    rows, columns = matrix.shape
    with open(path, "wb") as f:
        f.write(b"\0B" + b"DM " + b"\x04" + struct.pack("<i", rows) + b"\x04" + struct.pack("<i", columns))
        f.write(np.ascontiguousarray(matrix, dtype="<f8").tobytes())


def global_cmvn_stats(wav_paths: list[Path]) -> np.ndarray:
    """Kaldi global CMVN statistics (2 x 81, float64) of the fbank features without normalisation: per bin the sum
    and the sum of squares over all frames, the frame count in the last column of the first row."""
    feature_extractor = FireRedAsrFeatureExtractor()
    stats = np.zeros((2, feature_extractor.feature_size + 1), dtype=np.float64)
    for path in wav_paths:
        samples = load_audio(path, sampling_rate=SAMPLING_RATE)
        features = feature_extractor(samples, sampling_rate=SAMPLING_RATE)["input_features"][0].astype(np.float64)
        stats[0, :-1] += features.sum(axis=0)
        stats[1, :-1] += np.square(features).sum(axis=0)
        stats[0, -1] += len(features)
    return stats


def write_tokenizer(output_dir: Path, train_dir: Path, utterances: list[Utterance], bpe_vocab_size: int) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    english = [
        " ".join(words).upper() for utterance in utterances for language, words in utterance.phrase if language == "en"
    ]
    sentencepiece_model = train_sentencepiece(english, bpe_vocab_size)
    (output_dir / "train_bpe1000.model").write_bytes(sentencepiece_model)
    characters = sorted({character for u in utterances for character in u.transcript if is_cjk_character(character)})
    write_dict(output_dir / "dict.txt", characters, sentencepiece_model)
    stats = global_cmvn_stats([train_dir / "wav" / f"{utterance.uttid}.wav" for utterance in utterances])
    write_kaldi_matrix(output_dir / "cmvn.ark", stats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", type=Path, help="where the train/ and test/ Kaldi directories go")
    parser.add_argument("--num-train", type=int, default=400, help="training utterances (default 400)")
    parser.add_argument("--num-test", type=int, default=60, help="held-out utterances (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the phrase and voice choices (default 0)")
    parser.add_argument(
        "--write-tokenizer",
        type=Path,
        metavar="DIR",
        help="also write dict.txt, train_bpe1000.model and cmvn.ark for a model trained from scratch on this corpus",
    )
    parser.add_argument(
        "--bpe-vocab-size", type=int, default=100, help="upper bound of the SentencePiece vocabulary (default 100)"
    )
    parser.add_argument("--num-workers", type=int, default=4, help="espeak-ng processes run in parallel (default 4)")
    args = parser.parse_args(argv)
    if args.num_train < 1 or args.num_test < 0:
        parser.error("--num-train must be at least 1 and --num-test at least 0")
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")

    start = time.perf_counter()
    splits = plan_corpus(args.num_train, args.num_test, args.seed)
    for split, utterances in splits.items():
        write_split(args.output_dir / split, utterances, args.num_workers)
    print(
        f"Wrote {args.num_train} + {args.num_test} utterances to {args.output_dir} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    if args.write_tokenizer is not None:
        start = time.perf_counter()
        write_tokenizer(args.write_tokenizer, args.output_dir / "train", splits["train"], args.bpe_vocab_size)
        print(
            f"Wrote dict.txt, train_bpe1000.model and cmvn.ark to {args.write_tokenizer} "
            f"in {time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    main()
