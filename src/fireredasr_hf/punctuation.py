# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Punctuation restoration with FireRedPunc (converted to a stock `BertForTokenClassification`), and sentence chunks.

    punctuator = FireRedPunctuator.from_pretrained("FireRedTeam/FireRedPunc")  # or a local or converted directory
    punctuator("你好世界 hello world")                   # punctuated as the release's FireRedPunc.process writes it
    punctuator.punctuate_chunks([{"text": "...", "timestamp": (0.0, 4.2)}, ...])   # sentences with their times

Texts are restored as the release (FireRedASR2S `fireredpunc`) restores them: BERT word pieces lower-cased and
joined (a space between two English words or numbers unless a mark separates them), unknown characters put back, the
mark the model predicts after each token, then its rule-based fixes (ASCII marks and capitals in English, "I").
Inputs longer than the model's positions are split into windows as the release does.

Timed pieces (`chunks`, `{"text", "timestamp": (start, end)}` in seconds) can be words or characters (FireRedASR2's
word timestamps: exact times per word) or whole segments (several words: the times of the words inside are spread
over the segment in proportion to their characters). Sentence chunks end at sentence-final marks (。？！.?!) and take
the start of their first word and the end of their last. Word chunks get their mark attached to the word it follows,
written as in the sentence (`punctuated_word_chunks`), as the release's `add_punc_to_txt_with_timestamp` attaches
marks to timed words.

This module travels as remote code with the speech-recognition pipeline: it imports only transformers, torch and
the standard library (original FireRedPunc directories and Hub ids are converted by the fireredasr-hf package).
"""

import importlib
import json
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

# The punctuation model used where none is named (the CLI's default `--punctuation`).
PUNCTUATION_MODEL_ENV_VAR = "FIREREDASR_HF_PUNCTUATION_MODEL"
DEFAULT_PUNCTUATION_MODEL = "FireRedTeam/FireRedPunc"
NO_PUNCTUATION_LABEL = "O"
SENTENCE_END_MARKS = frozenset("。？！.?!")
# What the release counts as an English word or a number when it decides on spaces.
_WORD_CHARACTERS = re.compile("[a-zA-Z0-9#]+")
_CJK_CHARACTER = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def default_punctuation_model() -> str:
    """`$FIREREDASR_HF_PUNCTUATION_MODEL` if set, else the Hub repository FireRedTeam/FireRedPunc."""
    return os.environ.get(PUNCTUATION_MODEL_ENV_VAR) or DEFAULT_PUNCTUATION_MODEL


@dataclass
class PunctuatedWord:
    """A word (or character) of the input with the mark the model puts after it.

    `text` is its restored form (lower case, word pieces joined) with a leading space where the release puts one;
    `mark` is "" for none; `start`/`end` are its times in seconds (None without timestamps); `piece` the index of
    the timed piece it comes from; `confidence` that piece's, if it has one."""

    text: str
    mark: str
    start: float | None = None
    end: float | None = None
    piece: int | None = None
    confidence: float | None = None


def fix_text(text: str) -> str:
    """The release's rule-based fixes (`RuleBaedTxtFix`): lower case, ASCII marks between and after English words,
    "I", and a capital at the start and after each sentence end."""
    text = text.lower()
    for full_width, ascii_mark in (("，", ","), ("。", "."), ("？", "?"), ("！", "!")):
        text = re.sub(f"([a-z]){full_width}([a-z])", rf"\1{ascii_mark} \2", text)
    for full_width, ascii_mark in (("，", ","), ("。", "."), ("？", "?"), ("！", "!")):
        text = re.sub(f"^([a-z]+){full_width}", rf"\1{ascii_mark}", text)
    for full_width, ascii_mark in (("，", ","), ("。", "."), ("？", "?"), ("！", "!")):
        text = re.sub(f"( [a-zA-Z']+){full_width}$", rf"\1{ascii_mark}", text)
    for word in ("i", "i'm", "i'd", "i've", "i'll"):
        text = re.sub(f"^{word} ", f"{word.replace('i', 'I', 1)} ", text)
    for word in ("i", "i'm", "i'd", "i've", "i'll"):
        text = re.sub(f" {word} ", f" {word.replace('i', 'I', 1)} ", text)
    if text and re.match("[a-z]", text[0]):
        text = text[0].upper() + text[1:]
    return re.sub(r"([.!?。？！])\s+([a-z])", lambda m: f"{m.group(1)} {m.group(2).upper()}", text)


def recover_unknown_tokens(text: str, tokens: list[str]) -> list[str]:
    """The release's `_recover_unk`: `[UNK]` tokens replaced by the characters of `text` they stand for (`text`
    lower-cased); unrecoverable ones are dropped."""
    if "[UNK]" not in tokens:
        return tokens
    text_no_space = text.replace(" ", "")
    if re.match(r"^[^a-zA-Z0-9']+$", text) and len(text_no_space) == len(tokens):
        if all(token == "[UNK]" or token == char for char, token in zip(text_no_space, tokens)):
            return list(text_no_space)
    recovered, position, i = [], 0, 0
    while i < len(tokens):
        if tokens[i] != "[UNK]":
            recovered.append(tokens[i])
            position += len(tokens[i].replace("##", ""))
            i += 1
            continue
        j = i
        while j < len(tokens) and tokens[j] == "[UNK]":
            j += 1
        count = j - i
        following = tokens[j].replace("##", "") if j < len(tokens) else ""
        remaining = text_no_space[position:]
        if following:
            anchor = remaining.find(following)
            characters = remaining[:anchor] if anchor != -1 else remaining[:count]
        else:
            characters = text_no_space[position : position + count]
        recovered.extend(characters[k] if k < len(characters) else "" for k in range(count))
        position += len(characters)
        i = j
    return [token for token in recovered if token and token != "[UNK]"]


def join_tokens(tokens: list[str], marks: list[str]) -> str:
    """Text of word pieces and the marks after them, as the release joins them (`add_punc_to_txt`)."""
    text = ""
    for i, token in enumerate(tokens):
        if token.startswith("##"):
            token = token.replace("##", "")
        elif i > 0 and _WORD_CHARACTERS.search(token) and _WORD_CHARACTERS.search(tokens[i - 1]) and not marks[i - 1]:
            token = " " + token
        text += token + marks[i]
    return text.replace("  ", " ")


def split_words(text: str) -> list[str]:
    """The words of a piece of text: whitespace-separated parts, Chinese characters one by one."""
    words = []
    for part in text.split():
        words.extend(piece for piece in re.split(f"({_CJK_CHARACTER.pattern})", part) if piece)
    return words


def _sentences(words: list[PunctuatedWord], marks=SENTENCE_END_MARKS):
    """(the words of a sentence, its text with the release's fixes), in order: a sentence ends at a word whose mark
    is in `marks`, or with the last word."""
    current = []
    for index, word in enumerate(words):
        current.append(word)
        if word.mark in marks or index == len(words) - 1:
            yield current, fix_text("".join(w.text + w.mark for w in current).replace("  ", " ").strip())
            current = []


def group_sentences(words: list[PunctuatedWord], marks=SENTENCE_END_MARKS) -> list[dict]:
    """Sentence chunks `{"text", "timestamp": (start, end)}` from punctuated words: a sentence ends at a word whose
    mark is in `marks`; its text gets the release's fixes. A sentence whose words all have a confidence gets
    `"confidence"`, their mean."""
    sentences = []
    for group, text in _sentences(words, marks):
        sentence = {"text": text, "timestamp": (group[0].start, group[-1].end)}
        confidences = [word.confidence for word in group]
        if None not in confidences:
            sentence["confidence"] = round(sum(confidences) / len(confidences), 3)
        sentences.append(sentence)
    return sentences


# How `fix_text` may write a mark after an English word.
_ASCII_MARKS = {",": "，", ".": "。", "?": "？", "!": "！"}


def _words_as_written(group: list[PunctuatedWord], sentence: str) -> list[tuple[str, str]]:
    """(word, mark) of each word as the fixed `sentence` writes them (capitals, ASCII marks after English words).
    `fix_text` changes case and marks and adds spaces, never other characters, so the sentence's characters other
    than spaces are the words' and marks' in order."""
    characters = [char for char in sentence if not char.isspace()]
    written, position = [], 0
    for word in group:
        body_length = len(word.text.strip())
        body = "".join(characters[position : position + body_length])
        mark = "".join(characters[position + body_length : position + body_length + len(word.mark)])
        position += body_length + len(word.mark)
        if body.lower() != word.text.strip().lower() or _ASCII_MARKS.get(mark, mark) != word.mark:
            return [(word.text.strip(), word.mark) for word in group]  # not expected; the words as predicted
        written.append((body, mark))
    return written


def punctuated_word_chunks(chunks: list[dict], words: list[PunctuatedWord]) -> list[dict]:
    """
    Timed word chunks (`{"text", "timestamp"[, ...]}`, one word or character each, as given to `punctuate_words`)
    with the mark predicted after each word attached to its text, both written as in their sentence (`group_sentences`:
    "Hello," "world." rather than "hello，" "world。"); times and other keys unchanged. This is where the release's
    `add_punc_to_txt_with_timestamp` puts marks: after the last word piece of a word, with that word's time. A word
    the model did not see (no tokens) keeps its text.
    """
    result = [dict(chunk) for chunk in chunks]
    for group, sentence in _sentences(words):
        for word, (body, mark) in zip(group, _words_as_written(group, sentence)):
            if word.piece is None:
                continue
            original = result[word.piece]["text"].strip()
            # The model's text is lower-cased and normalised; the case of the sentence is taken where they agree.
            result[word.piece]["text"] = (body if body.lower() == original.lower() else original) + mark
    return result


class FireRedPunctuator:
    """
    FireRedPunc applied to texts and to timed pieces (see the module docstring).

    Args:
        model: a `BertForTokenClassification` whose labels are the marks that follow a token ("O": none).
        tokenizer: its tokenizer (prepending `[CLS]` only, as converted).
        batch_size (`int`, defaults to 8): texts (or windows of a long text) run together.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.marks = [
            "" if model.config.id2label[i] == NO_PUNCTUATION_LABEL else model.config.id2label[i]
            for i in range(model.config.num_labels)
        ]
        self.vocab = tokenizer.get_vocab()
        self.unk_id = self.vocab[tokenizer.unk_token]
        self.cls_id = self.vocab[tokenizer.cls_token]
        self.pad_id = self.vocab[tokenizer.pad_token]
        # The release's window: the model's positions less the [CLS] in front.
        self.max_input_length = model.config.max_position_embeddings - 1

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: bool | str | None = None,
        device=None,
        dtype=None,
        batch_size: int = 8,
    ):
        """Loads FireRedPunc: a converted directory, an original FireRedPunc directory or a Hub repo id (both converted
        once and cached by the fireredasr-hf package). Default: `$FIREREDASR_HF_PUNCTUATION_MODEL`, else
        FireRedTeam/FireRedPunc."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        name = str(name_or_path if name_or_path is not None else default_punctuation_model())
        directory = Path(name).expanduser()
        if not _is_token_classifier(directory):
            try:
                hub = importlib.import_module(".hub", __package__)
            except ImportError:
                raise ValueError(
                    f"{name} is not a converted FireRedPunc directory; converting the original or downloading a Hub "
                    "repository needs the fireredasr-hf package (pip install fireredasr-hf)."
                ) from None
            directory = Path(hub.resolve_punctuation_model(name, revision=revision, cache_dir=cache_dir, token=token))
        model = AutoModelForTokenClassification.from_pretrained(directory, dtype=dtype)
        if device is not None:
            model = model.to(device)
        return cls(model, AutoTokenizer.from_pretrained(directory), batch_size=batch_size)

    # --- Tokens and predictions ------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of `text` with `[UNK]` put back as the characters it stands for (the release's tokenizer)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        # The backend directly: tokenize() warns about texts longer than the model, which are windowed here.
        tokens = backend.encode(text, add_special_tokens=False).tokens if backend else self.tokenizer.tokenize(text)
        try:
            return recover_unknown_tokens(text.lower(), tokens)
        except (IndexError, ValueError):  # the release keeps the tokens when recovery fails
            return tokens

    def logits(self, token_lists: list[list[str]]):
        """Logits `(num_tokens, num_labels)` per token list. A list longer than the model's window is split into
        windows of that many tokens, each run with its own `[CLS]` (the release's `forward_model`)."""
        windows, owners = [], []
        for index, tokens in enumerate(token_lists):
            ids = [self.vocab.get(token, self.unk_id) for token in tokens]
            for start in range(0, len(ids), self.max_input_length):
                windows.append(ids[start : start + self.max_input_length])
                owners.append(index)
        scores = self._run(windows)
        outputs = [[] for _ in token_lists]
        for owner, score in zip(owners, scores):
            outputs[owner].append(score)
        import torch

        empty = torch.zeros(0, len(self.marks))
        return [torch.cat(parts) if parts else empty for parts in outputs]

    def _run(self, windows: list[list[int]]):
        import torch

        scores = []
        for first in range(0, len(windows), self.batch_size):
            batch = windows[first : first + self.batch_size]
            length = max(len(ids) for ids in batch) + 1
            input_ids = torch.full((len(batch), length), self.pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), length), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, : len(ids) + 1] = torch.tensor([self.cls_id, *ids])
                attention_mask[row, : len(ids) + 1] = 1
            device = self.model.device
            with torch.inference_mode():
                output = self.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
            logits = output.logits.float().cpu()
            scores.extend(logits[row, 1 : len(ids) + 1] for row, ids in enumerate(batch))
        return scores

    def predict_marks(self, token_lists: list[list[str]]) -> list[list[str]]:
        """The mark after each token ("" for none)."""
        return [[self.marks[i] for i in scores.argmax(-1).tolist()] for scores in self.logits(token_lists)]

    # --- Texts -------------------------------------------------------------------------------------------------------

    def __call__(self, texts: str | list[str]) -> str | list[str]:
        """Punctuated text(s), as the release's `FireRedPunc.process` writes them."""
        single = isinstance(texts, str)
        token_lists = [self.tokenize(text) for text in ([texts] if single else texts)]
        results = [
            fix_text(join_tokens(tokens, marks)) for tokens, marks in zip(token_lists, self.predict_marks(token_lists))
        ]
        return results[0] if single else results

    # --- Timed pieces ------------------------------------------------------------------------------------------------

    def punctuate_words(self, chunks: list[dict], break_after: Collection[int] | None = None) -> list[PunctuatedWord]:
        """The words of timed pieces (`{"text", "timestamp": (start, end)[, "confidence"]}`, in order) with their
        marks and times.

        A piece without spaces and with at most one Chinese character is one word (a word timestamp); longer pieces
        are split into words whose times divide the piece's time in proportion to their characters. Each word gets
        the mark predicted after its last word piece, and a leading space where the release's
        `add_punc_to_txt_with_timestamp` puts one. Consecutive pieces are run through the model together, in windows
        that end at piece boundaries where possible: after any piece, or, with `break_after` (indices of pieces, e.g.
        the last word of each speech segment), after those."""
        words, breaks = [], set()  # (text, start, end, piece); indices of the words a window may end with
        for index, chunk in enumerate(chunks):
            start, end = chunk["timestamp"]
            parts = [chunk["text"].strip()] if _is_single_word(chunk["text"]) else split_words(chunk["text"])
            total = sum(len(part) for part in parts) or 1
            position = 0
            for part in parts:
                word_start = start if start is None or end is None else start + (end - start) * position / total
                position += len(part)
                word_end = end if start is None or end is None else start + (end - start) * position / total
                words.append((part, word_start, word_end, index))
            if words and (break_after is None or index in break_after):
                breaks.add(len(words) - 1)
        word_tokens = [self.tokenize(text) for text, _, _, _ in words]
        marks = self._marks_in_windows(word_tokens, breaks)
        results, last_text, last_mark = [], "", ""
        for (_, start, end, piece), tokens, word_marks in zip(words, word_tokens, marks):
            if not tokens:
                continue
            text = "".join(re.sub("^##", "", token) for token in tokens)
            mark = word_marks[-1]
            if _WORD_CHARACTERS.search(text) and _WORD_CHARACTERS.search(last_text) and not last_mark:
                text = " " + text
            confidence = chunks[piece].get("confidence")
            results.append(PunctuatedWord(text, mark, _round(start), _round(end), piece, confidence))
            last_text, last_mark = text, mark
        return results

    def _marks_in_windows(self, word_tokens: list[list[str]], breaks: set[int]) -> list[list[str]]:
        """Marks per word piece of consecutive words, run in windows of at most the model's length that end after a
        word in `breaks` (or after any word when there is none in a window)."""
        windows, current, length = [], [], 0
        for index, tokens in enumerate(word_tokens):
            while current and length + len(tokens) > self.max_input_length:
                cut = max((k for k in range(len(current)) if current[k] in breaks), default=len(current) - 1)
                windows.append(current[: cut + 1])
                current = current[cut + 1 :]
                length = sum(len(word_tokens[k]) for k in current)
            current.append(index)
            length += len(tokens)
        if current:
            windows.append(current)
        flat = [[token for k in window for token in word_tokens[k]] for window in windows]
        marks = [[] for _ in word_tokens]
        for window, window_marks in zip(windows, self.predict_marks(flat)):
            position = 0
            for k in window:
                marks[k] = window_marks[position : position + len(word_tokens[k])]
                position += len(word_tokens[k])
        return marks

    def punctuate_chunks(self, chunks: list[dict]) -> list[dict]:
        """Sentence chunks `{"text", "timestamp": (start, end)}` of timed pieces (see `punctuate_words`)."""
        return group_sentences(self.punctuate_words(chunks))


def _is_single_word(text: str) -> bool:
    text = text.strip()
    return " " not in text and len(_CJK_CHARACTER.findall(text)) <= 1


def _round(value):
    return None if value is None else round(float(value), 3)


def _is_token_classifier(directory: Path) -> bool:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(name.endswith("ForTokenClassification") for name in config.get("architectures") or [])


__all__ = [
    "DEFAULT_PUNCTUATION_MODEL",
    "FireRedPunctuator",
    "PunctuatedWord",
    "default_punctuation_model",
    "fix_text",
    "group_sentences",
    "join_tokens",
    "punctuated_word_chunks",
    "recover_unknown_tokens",
]
