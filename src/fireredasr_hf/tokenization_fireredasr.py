# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Tokenization class for FireRedASR-AED: one token per Chinese character, SentencePiece pieces for the rest."""

import os
import re
from shutil import copyfile

import sentencepiece
from transformers import PreTrainedTokenizer

from .text_files import read_text_lines

SPIECE_UNDERLINE = "▁"

# The original file names, so that an original FireRedASR-AED model folder loads as it is.
VOCAB_FILES_NAMES = {"vocab_file": "dict.txt", "spm_file": "train_bpe1000.model"}

# Punctuation the original replaces by a space before tokenizing (full and half width).
PUNCTUATION_PATTERN = re.compile(r"[，。？！,.?!]")
# CJK Unified Ideographs Extension A and the basic block: each such character is one token.
CJK_CHARACTER_PATTERN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff])")
# dict.txt writes the space token as `<space>`.
SPACE_SYMBOL = "<space>"


class FireRedAsrTokenizer(PreTrainedTokenizer):
    """
    Construct a FireRedASR-AED tokenizer from the original `dict.txt` and SentencePiece model.

    Text is upper-cased, the punctuation `，。？！,.?!` becomes spaces, every CJK character
    (U+3400-U+4DBF, U+4E00-U+9FFF) is one token and the text between them is split into SentencePiece pieces;
    tokens missing from `dict.txt` map to `unk_token`. Decoding joins the tokens, turns `▁` into spaces and strips
    the result; special tokens are printed as they are unless `skip_special_tokens=True`. Both match the original
    `ChineseCharEnglishSpmTokenizer` exactly. Encoded sequences end with `eos_token` (the target of a training
    example); the model prepends `bos_token` (`<sos>`, its decoder start token) itself.

    This tokenizer inherits from [`PreTrainedTokenizer`] which contains most of the main methods. Users should refer
    to this superclass for more information regarding those methods.

    Args:
        vocab_file (`str`):
            The original `dict.txt`: one `<token> <id>` per line, ids counting up from 0.
        spm_file (`str`):
            The original SentencePiece model (`train_bpe1000.model`) that splits non-Chinese text into pieces.
        bos_token (`str`, *optional*, defaults to `"<sos>"`):
            The start-of-sequence token, the decoder start token of the model.
        eos_token (`str`, *optional*, defaults to `"<eos>"`):
            The end-of-sequence token.
        unk_token (`str`, *optional*, defaults to `"<unk>"`):
            The token that text outside the vocabulary maps to.
        pad_token (`str`, *optional*, defaults to `"<pad>"`):
            The padding token.
        blank_token (`str`, *optional*, defaults to `"<blank>"`):
            The CTC blank token of the vocabulary (a special token; the AED model does not generate it on purpose).
        replace_punctuation (`bool`, *optional*, defaults to `True`):
            Whether to replace `，。？！,.?!` by spaces before tokenizing, as the original does by default
            (`replace_punc=True`).
        lowercase_output (`bool`, *optional*, defaults to `False`):
            Whether decoded text is lower-cased. FireRedASR2 lower-cases its transcripts (the vocabulary's English
            pieces are upper-case), so converted FireRedASR2 models set it; FireRedASR (v1) prints upper case.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file,
        spm_file,
        bos_token="<sos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        blank_token="<blank>",
        replace_punctuation=True,
        lowercase_output=False,
        **kwargs,
    ):
        self.vocab_file = vocab_file
        self.spm_file = spm_file
        self.replace_punctuation = replace_punctuation
        self.lowercase_output = lowercase_output
        self.encoder = load_dict(vocab_file)
        self.decoder = list(self.encoder)
        self.sp_model = load_sentencepiece(spm_file)

        for name, token in (
            ("bos_token", bos_token),
            ("eos_token", eos_token),
            ("unk_token", unk_token),
            ("pad_token", pad_token),
            ("blank_token", blank_token),
        ):
            if token is not None and str(token) not in self.encoder:
                raise ValueError(f"{name} {str(token)!r} is not in the vocabulary file {vocab_file}")

        # Upstream never splits special tokens out of the text ("<sos>" in a transcript is just characters).
        kwargs.setdefault("split_special_tokens", True)
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            unk_token=unk_token,
            pad_token=pad_token,
            blank_token=blank_token,
            replace_punctuation=replace_punctuation,
            lowercase_output=lowercase_output,
            special_tokens_pattern="eos",
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        return len(self.decoder)

    def get_vocab(self) -> dict[str, int]:
        vocab = self.encoder.copy()
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _tokenize(self, text: str) -> list[str]:
        check_encodable(text)
        text = text.upper()
        if self.replace_punctuation:
            text = PUNCTUATION_PATTERN.sub(" ", text)
        tokens = []
        for part in CJK_CHARACTER_PATTERN.split(text.strip()):
            part = part.strip()
            if not part:
                continue
            if CJK_CHARACTER_PATTERN.fullmatch(part):
                tokens.append(part)
            else:
                tokens.extend(self.sp_model.encode(part, out_type=str))
        return tokens

    def _convert_token_to_id(self, token: str) -> int:
        return self.encoder.get(token, self.encoder[self.unk_token])

    def _convert_id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.decoder):
            raise ValueError(f"Token id {index} is out of range: the vocabulary has ids 0 to {len(self.decoder) - 1}.")
        return self.decoder[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        text = "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()
        return text.lower() if self.lowercase_output else text

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, str]:
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_save_path = os.path.join(save_directory, prefix + self.vocab_files_names["vocab_file"])
        spm_save_path = os.path.join(save_directory, prefix + self.vocab_files_names["spm_file"])

        with open(vocab_save_path, "w", encoding="utf-8") as f:
            f.writelines(
                f"{SPACE_SYMBOL if token == ' ' else token} {index}\n" for index, token in enumerate(self.decoder)
            )

        if os.path.abspath(self.spm_file) != os.path.abspath(spm_save_path) and os.path.isfile(self.spm_file):
            copyfile(self.spm_file, spm_save_path)
        elif not os.path.isfile(self.spm_file):
            with open(spm_save_path, "wb") as f:
                f.write(self.sp_model.serialized_model_proto())
        return vocab_save_path, spm_save_path


def check_encodable(text: str) -> None:
    """Text must be valid Unicode: a lone surrogate (e.g. from bytes decoded with errors="surrogateescape") is not a
    character, and SentencePiece would fail on it deep inside."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"The text holds a lone surrogate {text[error.start]!r} at position {error.start}, which is not a Unicode "
            "character: decode the source with errors='replace' (or fix its encoding) first."
        ) from None


def load_sentencepiece(path) -> sentencepiece.SentencePieceProcessor:
    """The SentencePiece model at `path`, with one clear error for a missing, empty or damaged file."""
    if not os.path.isfile(path):
        raise ValueError(f"SentencePiece model not found: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"The SentencePiece model {path} is empty (0 bytes): copy train_bpe1000.model again.")
    try:
        return sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as error:
        raise ValueError(
            f"{path} is not a SentencePiece model ({str(error).strip()}): copy train_bpe1000.model again."
        ) from None


def load_dict(path: str) -> dict[str, int]:
    """Reads a FireRedASR `dict.txt` the way the original does: `<token> <id>` per line, a line with one field gets
    its line number as id, an empty line and `<space>` stand for the space token, and ids must count up from 0."""
    vocab = {}
    for line_number, line in enumerate(read_text_lines(path)):
        fields = line.split()
        token = fields[0] if fields else " "
        if len(fields) >= 2 and not (fields[1].isdigit() and int(fields[1]) == line_number):
            raise ValueError(
                f"{path}, line {line_number + 1}: token {token!r} has id {fields[1]!r}, expected {line_number} "
                "(ids must count up from 0, one per line)"
            )
        token = " " if token == SPACE_SYMBOL else token
        if token in vocab:
            raise ValueError(f"{path}, line {line_number + 1}: token {token!r} appears twice")
        vocab[token] = line_number
    return vocab


__all__ = ["FireRedAsrTokenizer"]
