"""Reading job inputs and writing transcripts: Kaldi `wav.scp` / `text`, plain text, JSON lines, SRT and WebVTT
subtitles, and a resume log so an interrupted job does not redo finished files.

Subtitle writers take the timed pieces of one recording, each either a `(start, end, text)` tuple or a mapping
`{"timestamp": (start, end), "text": ...}` (the `chunks` of transformers' speech-recognition pipeline), times in
seconds. Each piece with text becomes one cue; `split_cues` first cuts pieces that are too long or too wide for a cue.
"""

import json
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np

from .audio import AUDIO_EXTENSIONS
from .text_files import decode_text, read_text_lines


def _read_keyed_lines(path: str | os.PathLike, what: str) -> dict[str, str]:
    """Parses `key rest-of-line` lines (blank lines skipped); duplicate keys are an error."""
    entries: dict[str, str] = {}
    for number, line in enumerate(read_text_lines(path), 1):
        fields = line.strip().split(maxsplit=1)
        if not fields:
            continue
        key = fields[0]
        if key in entries:
            raise ValueError(f"{path}:{number}: uttid {key!r} appears twice in this {what}")
        entries[key] = fields[1] if len(fields) == 2 else ""
    return entries


def read_wav_scp(path: str | os.PathLike) -> dict[str, str]:
    """Reads a Kaldi `wav.scp` (`uttid path` per line) into `{uttid: path}`, in file order.

    A relative path is taken relative to the current directory when it exists there (Kaldi's convention),
    otherwise relative to the directory of the scp file. Command pipes (`uttid cmd ... |`) and archive offsets
    (`uttid file.ark:123`) are rejected.
    """
    scp_dir = Path(path).parent
    entries = _read_keyed_lines(path, "wav.scp")
    for uttid, location in entries.items():
        if not location:
            raise ValueError(f"{path}: uttid {uttid!r} has no audio path")
        if location.endswith("|"):
            raise ValueError(
                f"{path}: uttid {uttid!r} is a command pipe ({location!r}); pipes are not run, write the audio "
                "to files and list their paths instead"
            )
        if re.fullmatch(r".+\.ark:\d+", location):
            raise ValueError(f"{path}: uttid {uttid!r} points into a Kaldi archive ({location!r}); list audio files")
        entries[uttid] = resolve_listed_path(location, scp_dir)
    return entries


def is_url(location: str | os.PathLike) -> bool:
    """Whether an input names a location for fsspec (`s3://bucket/key`, `gs://...`, `https://...`, `file://...`)."""
    return isinstance(location, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", location) is not None


def resolve_listed_path(location: str, base: str | os.PathLike) -> str:
    """A path listed in a wav.scp, manifest or file list: URLs and absolute paths as they are; a relative path
    relative to the current directory when it exists there (Kaldi's convention), otherwise relative to the folder
    of the list (`base`, which may be a URL)."""
    if is_url(location) or os.path.isabs(location):
        return location
    if is_url(str(base)):
        return f"{str(base).rstrip('/')}/{location}"
    return location if os.path.exists(location) else str(Path(base) / location)


def read_kaldi_text(path: str | os.PathLike) -> dict[str, str]:
    """Reads a Kaldi `text` file (`uttid transcript` per line; tab-separated output files too) into a dict."""
    return _read_keyed_lines(path, "text file")


def _items(texts: Mapping[str, str] | Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    return texts.items() if isinstance(texts, Mapping) else texts


def _check_text(uttid: str, text: str) -> None:
    if not isinstance(text, str) or "\n" in text or "\r" in text:
        raise ValueError(f"the transcript of {uttid!r} must be a single-line string, got {text!r}")


def format_kaldi_text(texts: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """`uttid transcript` lines (Kaldi `text`); uttids must be non-empty and free of whitespace."""
    lines = []
    for uttid, text in _items(texts):
        if not isinstance(uttid, str) or not uttid or any(char.isspace() for char in uttid):
            raise ValueError(f"a Kaldi uttid must be non-empty without whitespace, got {uttid!r}")
        _check_text(uttid, text)
        lines.append(f"{uttid} {text}\n" if text else f"{uttid}\n")
    return "".join(lines)


def format_plain_text(texts: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """`uttid<TAB>transcript` lines, the output format of FireRedASR's own `speech2text.py`."""
    lines = []
    for uttid, text in _items(texts):
        if not isinstance(uttid, str) or not uttid or any(char in uttid for char in "\t\n\r"):
            raise ValueError(f"an uttid must be non-empty without tabs or line breaks, got {uttid!r}")
        _check_text(uttid, text)
        lines.append(f"{uttid}\t{text}\n")
    return "".join(lines)


def write_kaldi_text(path: str | os.PathLike, texts: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Writes `uttid transcript` lines (Kaldi `text`); uttids must be non-empty and free of whitespace."""
    Path(path).write_text(format_kaldi_text(texts), encoding="utf-8")


def write_plain_text(path: str | os.PathLike, texts: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Writes `uttid<TAB>transcript` lines, the output format of FireRedASR's own `speech2text.py`."""
    Path(path).write_text(format_plain_text(texts), encoding="utf-8")


def _json_default(value):
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_line(record) -> str:
    return json.dumps(record, ensure_ascii=False, default=_json_default) + "\n"


def format_jsonl(records: Iterable[Mapping]) -> str:
    """One JSON object per line (UTF-8, non-ASCII kept); dataclasses and numpy values are converted."""
    lines = []
    for record in records:
        if not isinstance(record, Mapping):
            raise TypeError(f"each JSON-lines record must be a mapping, got {type(record).__name__}")
        lines.append(_json_line(record))
    return "".join(lines)


def write_jsonl(path: str | os.PathLike, records: Iterable[Mapping]) -> None:
    """Writes one JSON object per line (UTF-8, non-ASCII kept); dataclasses and numpy values are converted."""
    Path(path).write_text(format_jsonl(records), encoding="utf-8")


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """`hh:mm:ss,mmm` (SRT; pass decimal_marker="." for WebVTT), rounded to the millisecond."""
    if not (isinstance(seconds, (int, float, np.number)) and math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a timestamp must be a finite number of seconds >= 0, got {seconds!r}")
    hours, rest = divmod(round(seconds * 1000), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole_seconds, milliseconds = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def _cues(chunks) -> list[tuple[float, float, str]]:
    cues = []
    for chunk in chunks:
        if isinstance(chunk, Mapping):
            if "timestamp" not in chunk or "text" not in chunk:
                raise ValueError(f"a subtitle chunk mapping needs 'timestamp' and 'text' keys, got {sorted(chunk)}")
            (start, end), text = chunk["timestamp"], chunk["text"]
        else:
            start, end, text = chunk
        if start is None or end is None:
            raise ValueError(f"subtitle chunk {text!r} has no {'start' if start is None else 'end'} time")
        if end < start:
            raise ValueError(f"subtitle chunk {text!r} ends ({end}) before it starts ({start})")
        # A blank line would end the cue early.
        lines = [line.strip() for line in str(text).splitlines() if line.strip()]
        if lines:
            cues.append((start, end, "\n".join(lines)))
    return cues


# Marks after which a long cue is best cut; those that end a sentence.
_SOFT_BREAKS = tuple("，、；：,;:。？！.?!")
_SENTENCE_ENDS = tuple("。？！.?!")
# A cue unit: a Chinese/Japanese character with the marks after it, or a run of other non-space characters; then
# the spaces after it.
_WIDE = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CUE_UNIT = re.compile(f"(?:[{_WIDE}][^\\w\\s]*|[^\\s{_WIDE}]+)\\s*")


def text_width(text: str) -> int:
    """Display width: two for wide (Chinese, Japanese, full-width) characters, one for the others."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def split_cues(chunks, max_width: int | None = None, max_seconds: float | None = None) -> list[dict]:
    """
    Timed chunks (`{"text", "timestamp": (start, end)}`) cut into subtitle cues of at most `max_width` (see
    `text_width`: a Chinese character counts two) and `max_seconds`. A chunk over a limit is cut between words or
    characters, at the last comma or other mark that keeps the cue at least half full, else where the limit is
    reached; times are shared in proportion to the text's width. A single word longer than a cue stays whole.
    """
    cues = []
    for start, end, text in _cues(chunks):
        total = text_width(text)
        if (max_width is None or total <= max_width) and (max_seconds is None or end - start <= max_seconds):
            cues.append({"text": text, "timestamp": (start, end)})
            continue
        seconds_per_width = (end - start) / max(total, 1)
        units = _CUE_UNIT.findall(text.replace("\n", " "))
        pieces, current = [], []
        for unit in units:
            width = text_width("".join(current) + unit.rstrip())
            if current and (
                (max_width is not None and width > max_width)
                or (max_seconds is not None and width * seconds_per_width > max_seconds)
            ):
                full = text_width("".join(current))
                cut = len(current)
                for index in range(len(current) - 1, 0, -1):
                    head = "".join(current[:index])
                    if head.rstrip().endswith(_SOFT_BREAKS) and text_width(head) >= full / 2:
                        cut = index
                        break
                pieces.append(current[:cut])
                current = current[cut:]
            current.append(unit)
        pieces.append(current)
        position = start
        for piece in pieces:
            piece_text = "".join(piece)
            piece_end = min(end, position + text_width(piece_text) * seconds_per_width)
            if piece is pieces[-1]:
                piece_end = end
            if piece_text.strip():
                cues.append({"text": piece_text.strip(), "timestamp": (round(position, 3), round(piece_end, 3))})
            position = piece_end
    return cues


def format_srt(chunks) -> str:
    """SubRip subtitles, one numbered cue per chunk with text."""
    blocks = [
        f"{index}\n{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n"
        for index, (start, end, text) in enumerate(_cues(chunks), 1)
    ]
    return "\n".join(blocks)


def format_vtt(chunks) -> str:
    """WebVTT subtitles, one cue per chunk with text (`&`, `<`, `>` escaped, so `<unk>` shows as written)."""
    blocks = ["WEBVTT\n"]
    for start, end, text in _cues(chunks):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{format_timestamp(start, '.')} --> {format_timestamp(end, '.')}\n{text}\n")
    return "\n".join(blocks)


# Subtitle lines from word timestamps: at most this wide (a CJK character counts 2, as it is displayed), long and
# without a pause inside (a longer silence, or the gap between two speech segments, starts a new line).
SUBTITLE_LINE_WIDTH = 42
SUBTITLE_LINE_SECONDS = 6.0
SUBTITLE_PAUSE_SECONDS = 0.8


def group_words_into_lines(
    words,
    max_width: int = SUBTITLE_LINE_WIDTH,
    max_seconds: float = SUBTITLE_LINE_SECONDS,
    max_pause: float = SUBTITLE_PAUSE_SECONDS,
) -> list[dict]:
    """
    Subtitle lines from timed words (`{"text", "timestamp": (start, end)}`, e.g. the pipeline's word chunks), in
    order: a word joins the current line unless the line would get wider than `max_width` (see `text_width`: a
    Chinese character counts 2), longer than `max_seconds`, or the word starts more than `max_pause` after the
    line's end; a punctuated word that ends a sentence (。？！.?!) ends its line, so that lines never straddle two
    sentences. Words are joined as segment texts are (no space between CJK characters). Each line is `{"text",
    "timestamp": [start, end]}` with `"confidence"` (the mean of its words') when the words have one.
    """
    from .pipeline_fireredasr import join_segment_texts

    lines, current = [], []

    def close():
        if current:
            line = {
                "text": join_segment_texts([word["text"] for word in current]),
                "timestamp": [current[0]["timestamp"][0], current[-1]["timestamp"][1]],
            }
            confidences = [word["confidence"] for word in current if word.get("confidence") is not None]
            if confidences and len(confidences) == len(current):
                line["confidence"] = round(sum(confidences) / len(confidences), 3)
            lines.append(line)
            current.clear()

    for word in words:
        start, end = word["timestamp"]
        if current:
            text = join_segment_texts([*(w["text"] for w in current), word["text"]])
            if (
                text_width(text) > max_width
                or end - current[0]["timestamp"][0] > max_seconds
                or start - current[-1]["timestamp"][1] > max_pause
            ):
                close()
        current.append(word)
        if word["text"].endswith(_SENTENCE_ENDS):
            close()
    close()
    return lines


def write_srt(path: str | os.PathLike, chunks) -> None:
    Path(path).write_text(format_srt(chunks), encoding="utf-8")


def write_vtt(path: str | os.PathLike, chunks) -> None:
    Path(path).write_text(format_vtt(chunks), encoding="utf-8")


def is_dataset_dir(path: str | os.PathLike) -> bool:
    """Whether `path` holds a `datasets` Dataset or DatasetDict written by `save_to_disk`."""
    path = Path(path)
    return (path / "dataset_dict.json").is_file() or (
        (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    )


@dataclass(frozen=True)
class UnreadableFolder:
    """A folder below an input folder that could not be listed (its audio files are not known)."""

    path: str
    reason: str


def _audio_files_below(directory: Path, unreadable: list[UnreadableFolder] | None) -> list[tuple[str, Path]]:
    """`(relative posix path, file)` of the audio files below `directory`, hidden files and folders skipped. A
    folder that cannot be listed goes to `unreadable`, or raises PermissionError when that is None."""

    def on_error(error: OSError) -> None:
        if unreadable is None:
            raise PermissionError(f"cannot read the folder {error.filename}: {error.strerror}")
        unreadable.append(UnreadableFolder(str(error.filename), error.strerror or type(error).__name__))

    found = []
    visited = set()  # real paths of the folders walked: linked folders are followed, link cycles are not
    for folder, subfolders, files in os.walk(directory, onerror=on_error, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            subfolders[:] = []
            continue
        visited.add(real)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in files:
            file = Path(folder, name)
            if name.startswith(".") or file.suffix.lower() not in AUDIO_EXTENSIONS or not file.is_file():
                continue
            found.append((file.relative_to(directory).as_posix(), file))
    return sorted(found)


MANIFEST_SUFFIXES = (".jsonl", ".parquet")
FILE_LIST_SUFFIXES = (".lst", ".list")
# Columns that name a recording's audio in common manifests, tried when the manifest has no `audio_column`.
MANIFEST_AUDIO_COLUMNS = ("audio", "audio_filepath", "path", "wav")


def _suffix(location: str) -> str:
    return Path(location.split("?", 1)[0]).suffix.lower()


def _stem(location: str) -> str:
    return Path(location.split("?", 1)[0].rstrip("/")).stem


def _parent(location: str) -> str:
    return location.rsplit("/", 1)[0] if is_url(location) else str(Path(location).parent)


def open_input(location: str):
    """A binary file object for a local path or an fsspec URL."""
    if not is_url(location):
        return open(location, "rb")
    try:
        import fsspec
    except ImportError as error:
        raise ValueError(f"reading {location} needs `pip install fsspec` (and the package of its protocol)") from error
    try:
        return fsspec.open(location, "rb").open()
    except ImportError as error:  # the protocol's package (s3fs, gcsfs, ...)
        raise ValueError(f"reading {location} needs a package that is not installed: {error}") from None
    except (FileNotFoundError, OSError) as error:
        raise FileNotFoundError(f"input not found: {location} ({error})") from None


def read_manifest(location: str, audio_column: str = "audio", id_column: str = "id") -> list[tuple[str, str]]:
    """`(uttid, audio path or URL)` of each row of a JSON-lines (`.jsonl`) or Parquet (`.parquet`) manifest, local or
    at an fsspec URL.

    The audio is in `audio_column` (else the first of `MANIFEST_AUDIO_COLUMNS` the manifest has, e.g. NeMo's
    `audio_filepath`), as a path or URL string or a `{"path": ...}` mapping; relative paths are relative to the
    manifest's folder (see `resolve_listed_path`). The id is `id_column` when the manifest has it, else the audio
    file's name without extension.
    """
    if _suffix(location) == ".parquet":
        import pyarrow.parquet as pq

        with open_input(location) as file:
            table = pq.read_table(file)
        columns = table.column_names
        rows = table.to_pylist()
    else:
        rows, columns = [], []
        with open_input(location) as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    raise ValueError(f"{location}:{number}: not a JSON line ({error})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{location}:{number}: a manifest line must be a JSON object")
                rows.append(row)
                columns.extend(key for key in row if key not in columns)
    if not rows:
        raise ValueError(f"manifest {location} lists no recordings")
    if audio_column not in columns:
        candidates = [name for name in MANIFEST_AUDIO_COLUMNS if name in columns]
        if not candidates:
            raise ValueError(
                f"manifest {location} has no audio column {audio_column!r} (columns: {', '.join(map(str, columns))}); "
                "name it with --audio-column"
            )
        audio_column = candidates[0]
    base = _parent(location)
    pairs = []
    for number, row in enumerate(rows, 1):
        audio = row.get(audio_column)
        if isinstance(audio, Mapping):
            audio = audio.get("path")
        if not isinstance(audio, str) or not audio:
            raise ValueError(f"{location}: row {number} has no audio path in column {audio_column!r}")
        audio = resolve_listed_path(audio, base)
        uttid = row.get(id_column)
        pairs.append((str(uttid) if uttid is not None else _stem(audio), audio))
    return pairs


def read_file_list(location: str) -> list[tuple[str, str]]:
    """`(uttid, audio path or URL)` of a file list (`.lst`, `.list`): one path per line, the id its file name without
    extension; relative paths as in `resolve_listed_path`."""
    with open_input(location) as file:
        lines = [line.strip() for line in decode_text(file.read(), location).splitlines()]
    base = _parent(location)
    paths = [resolve_listed_path(line, base) for line in lines if line]
    if not paths:
        raise ValueError(f"file list {location} lists no recordings")
    return [(_stem(path), path) for path in paths]


def find_remote_audio(url: str) -> list[tuple[str, str]]:
    """`(uttid, URL)` of the audio files below an fsspec URL (`s3://bucket/folder`), sorted; uttid = the path below
    the folder without extension, as for local folders. A URL that names an audio file is that one file."""
    if _suffix(url) in AUDIO_EXTENSIONS or url.startswith(("http://", "https://")):
        return [(_stem(url), url)]
    try:
        import fsspec
    except ImportError as error:
        raise ValueError(f"reading {url} needs `pip install fsspec` (and the package of its protocol)") from error
    try:
        filesystem, root = fsspec.core.url_to_fs(url)
    except ImportError as error:  # the protocol's package (s3fs, gcsfs, ...)
        raise ValueError(f"reading {url} needs a package that is not installed: {error}") from None
    protocol = url.split("://", 1)[0]
    if not filesystem.exists(root):
        raise FileNotFoundError(f"input not found: {url}")
    root = root.rstrip("/")
    found = []
    for key in sorted(filesystem.find(root)):
        relative = key[len(root) :].lstrip("/")
        if any(part.startswith(".") for part in relative.split("/")) or _suffix(key) not in AUDIO_EXTENSIONS:
            continue
        found.append((relative[: -len(Path(relative).suffix)], f"{protocol}://{key}"))
    if not found:
        raise ValueError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) found under {url}")
    return found


def iter_audio_inputs(
    inputs: Iterable[str | os.PathLike],
    unreadable: list[UnreadableFolder] | None = None,
    audio_column: str = "audio",
    id_column: str = "id",
) -> list[tuple[str, str]]:
    """Expands input arguments into `(uttid, audio path or URL)` pairs, in order.

    - a directory: every audio file below it (extensions in `AUDIO_EXTENSIONS`, any case; hidden files and
      folders skipped), sorted by relative path; uttid = relative path without extension (`sub/name`);
    - a `.scp` file: read as a Kaldi `wav.scp`;
    - a `.jsonl` or `.parquet` file: a manifest (see `read_manifest`; `audio_column` and `id_column` name its
      columns);
    - a `.lst` or `.list` file: one audio path per line (see `read_file_list`);
    - an fsspec URL (`s3://`, `gs://`, `https://`, ...): a manifest or file list as above, an audio file, or a
      folder searched recursively (see `find_remote_audio`);
    - any other file: one audio file, uttid = file name without extension.

    Duplicate uttids, missing paths, directories without audio and `datasets` directories (see
    `is_dataset_dir`; load those with `datasets.load_from_disk`) are errors. A folder below an input folder that
    cannot be listed is appended to `unreadable` when a list is given, else it raises PermissionError: it is
    never skipped silently.
    """
    pairs: list[tuple[str, str]] = []
    for item in inputs:
        location = str(item)
        suffix = _suffix(location)
        path = Path(item)
        if suffix in MANIFEST_SUFFIXES and (is_url(location) or path.is_file()):
            pairs.extend(read_manifest(location, audio_column, id_column))
        elif suffix in FILE_LIST_SUFFIXES and (is_url(location) or path.is_file()):
            pairs.extend(read_file_list(location))
        elif is_url(location):
            if suffix == ".scp":
                raise ValueError(f"{location}: a wav.scp must be a local file (list remote audio in a manifest)")
            pairs.extend(find_remote_audio(location))
        elif path.is_dir():
            if is_dataset_dir(path):
                raise ValueError(f"{path} is a dataset saved with datasets' save_to_disk, not a folder of audio files")
            before = len(unreadable) if unreadable is not None else 0
            found = _audio_files_below(path, unreadable)
            if not found and (unreadable is None or len(unreadable) == before):
                raise ValueError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) found under {path}")
            pairs.extend((relative[: -len(file.suffix)], str(file)) for relative, file in found)
        elif path.is_file():
            if path.suffix == ".scp":
                pairs.extend(read_wav_scp(path).items())
            else:
                pairs.append((path.stem, str(path)))
        else:
            raise FileNotFoundError(f"input not found: {item}")
    seen: dict[str, str] = {}
    for uttid, audio_path in pairs:
        if uttid in seen:
            raise ValueError(f"uttid {uttid!r} is given twice: {seen[uttid]} and {audio_path}")
        seen[uttid] = audio_path
    return pairs


class ResumeLog:
    """An append-only JSON-lines log of finished utterances, so an interrupted job can resume.

    Each `add` writes and flushes one line `{"uttid": ..., "result": ...}`. Reopening the log loads the
    results; a partial last line (the job was killed while writing) is dropped from the file and that
    utterance is simply done again. With `metadata` (e.g. model and decoding settings), the first line
    records it and reopening with different metadata raises a ValueError instead of mixing results.
    One process writes a log at a time.
    """

    def __init__(self, path: str | os.PathLike, metadata: Mapping | None = None):
        self.path = Path(path)
        self.results: dict[str, object] = {}
        recorded_metadata = None
        if self.path.exists():
            recorded_metadata = self._load()
        if metadata is not None:
            metadata = json.loads(_json_line(metadata))
            if recorded_metadata is None and self.results:
                raise ValueError(f"resume log {self.path} has results but no metadata to compare with {metadata}")
            if recorded_metadata is not None and recorded_metadata != metadata:
                raise ValueError(
                    f"resume log {self.path} belongs to a job with other settings ({recorded_metadata}, now "
                    f"{metadata}); use another log file or the same settings"
                )
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open until close())
        if metadata is not None and recorded_metadata is None:
            self._append(_json_line({"metadata": metadata}))

    def _load(self):
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        metadata = None
        for number, line in enumerate(complete.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{self.path}:{number}: damaged resume log line ({error})") from None
            if number == 1 and isinstance(record, dict) and set(record) == {"metadata"}:
                metadata = record["metadata"]
            elif isinstance(record, dict) and set(record) == {"uttid", "result"}:
                self.results[record["uttid"]] = record["result"]
            else:
                raise ValueError(f"{self.path}:{number}: not a resume log record: {line[:200]}")
        if len(complete) < len(data):
            with open(self.path, "r+b") as file:
                file.truncate(len(complete))
        return metadata

    def _append(self, line: str) -> None:
        self._file.write(line)
        self._file.flush()

    def add(self, uttid: str, result) -> None:
        """Records a finished utterance (the result must be JSON-serialisable)."""
        line = _json_line({"uttid": uttid, "result": result})
        self._append(line)
        # Kept as a resumed job would read it back (tuples become lists, dataclasses dicts).
        self.results[uttid] = json.loads(line)["result"]

    def __contains__(self, uttid: str) -> bool:
        return uttid in self.results

    def __len__(self) -> int:
        return len(self.results)

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
