# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Reading the text files of models and jobs (dict.txt, wav.scp, text): UTF-8, with one clear error otherwise.

Standard library only: the tokenizer travels with converted models as remote code and imports it.
"""

import io
import os
from pathlib import Path


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file (a byte order mark is dropped; line breaks as `open` reads them). A file in
    another encoding is one clear error naming the file and line, not a UnicodeDecodeError from deep inside."""
    return io.StringIO(decode_text(Path(path).read_bytes(), str(path)), newline=None).readlines()


def decode_text(data: bytes, name: str) -> str:
    """The UTF-8 text of a file's bytes (without a byte order mark); `name` (a path or URL) names it in the error."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{name}, line {line}: not UTF-8 text (byte {data[error.start]:#04x}); save the file as UTF-8 (for "
            f"example `iconv -f GBK -t UTF-8 {Path(name).name}`)"
        ) from None


__all__ = ["decode_text", "read_text_lines"]
