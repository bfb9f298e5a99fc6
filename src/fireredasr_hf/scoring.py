"""Error rates the way FireRedASR scores them (the release's `fireredasr/utils/wer.py`).

Normalisation (`normalize_for_scoring`), in the original's order:

1. optionally drop special tags `<|...|>` (the original's `--rm_special`);
2. optionally write Arabic numerals as Chinese ones with `cn2an.transform(text, "an2cn")` (the original's
   `--do_tn`; needs the optional `cn2an` package, the library the original calls, so that scores stay
   comparable with published ones);
3. delete `<unk>`, turn every run of the original's punctuation set (`PUNCTUATION`: Chinese and full-width
   marks, ASCII `, . ? ! " : ( ) [ ] { } / ; \\` | = +`) into a space; the ASCII apostrophe, hyphen and
   other symbols stay part of words;
4. upper-case; every CJK unified ideograph (U+4E00-U+9FFF) is one token, everything else is split into
   words at whitespace.

Each utterance is aligned with jiwer (minimum edit distance over the tokens, all edits costing 1). The number
of errors per utterance equals the original's; where several alignments are equally cheap the split into
substitutions, deletions and insertions may differ from it.

Totals (`ScoreReport`), each the sum of errors over the sum of reference tokens of a set of utterances:

- CER: utterances whose reference tokens are all Chinese characters;
- WER: utterances whose reference has no Chinese character (English words, digits, ...);
- MER: all scored utterances (Chinese characters and words mixed). This is the single number the original
  script prints (as "WER").

Utterances with an empty reference only count towards MER. Per-utterance rates divide by max(reference
tokens, 1), as the original does.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from .extras import MissingDependencyError

PUNCTUATION = (
    "，。？！,.?!＂＃＄％＆＇（）＊＋－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､\u3000、〃〈〉《》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿"
    '–—‘’‛“”„‟…‧﹏﹑﹔·｡":()[]{}/;`|=+'
)
_PUNCTUATION_RUN = re.compile("[" + re.escape(PUNCTUATION) + "]+")
_SPECIAL_TAG = re.compile(r"<\|.*?\|>")
_CJK_CHAR = re.compile(r"([\u4e00-\u9fff])")

CATEGORIES = ("zh", "en", "mixed", "empty")


def normalize_for_scoring(text: str, *, remove_special: bool = False, convert_numbers: bool = False) -> list[str]:
    """Returns the scoring tokens of `text`: one per Chinese character, one per other word (see module doc)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a transcript string, got {type(text).__name__}")
    if remove_special:
        text = " ".join(part for part in _SPECIAL_TAG.split(text) if part.strip())
    if convert_numbers:
        text = _arabic_to_chinese_numerals(text)
    text = _PUNCTUATION_RUN.sub(" ", text.replace("<unk>", "")).upper()
    return [token for part in _CJK_CHAR.split(text) for token in part.split()]


def _arabic_to_chinese_numerals(text: str) -> str:
    try:
        import cn2an
    except ImportError as error:
        raise MissingDependencyError(
            "convert_numbers=True needs the cn2an package, the number normaliser the original FireRedASR scoring "
            "uses: pip install 'fireredasr-hf[data]' (or pip install cn2an)"
        ) from error
    return cn2an.transform(text, "an2cn")


def token_category(tokens: list[str]) -> str:
    """'zh' if every token is a Chinese character, 'en' if none is, 'mixed' otherwise, 'empty' for no tokens."""
    if not tokens:
        return "empty"
    num_chinese = sum(1 for token in tokens if _CJK_CHAR.fullmatch(token))
    if num_chinese == len(tokens):
        return "zh"
    return "en" if num_chinese == 0 else "mixed"


@dataclass
class ErrorCounts:
    """Edit operations between reference and hypothesis tokens."""

    ref_tokens: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference tokens (divided by 1 when there are none, as the original does)."""
        return self.errors / max(self.ref_tokens, 1)

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.ref_tokens + other.ref_tokens,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )


@dataclass
class UtteranceScore:
    uttid: str
    ref_tokens: list[str]
    hyp_tokens: list[str]
    counts: ErrorCounts
    category: str
    # (kind, ref tokens, hyp tokens) chunks in order; kind is equal, substitute, delete or insert.
    alignment: list[tuple[str, list[str], list[str]]]


def align_tokens(ref: list[str], hyp: list[str]) -> tuple[ErrorCounts, list[tuple[str, list[str], list[str]]]]:
    """Minimum edit distance alignment (jiwer) of two token lists."""
    if not ref or not hyp:
        counts = ErrorCounts(len(ref), 0, len(ref), len(hyp))
        alignment = [("delete", ref, [])] if ref else []
        return counts, alignment + ([("insert", [], hyp)] if hyp else [])
    try:
        import jiwer
    except ImportError as error:
        raise MissingDependencyError(
            "scoring needs the jiwer package: pip install 'fireredasr-hf[data]' (or pip install jiwer)"
        ) from error
    output = jiwer.process_words(" ".join(ref), " ".join(hyp))
    counts = ErrorCounts(len(ref), output.substitutions, output.deletions, output.insertions)
    alignment = [
        (chunk.type, ref[chunk.ref_start_idx : chunk.ref_end_idx], hyp[chunk.hyp_start_idx : chunk.hyp_end_idx])
        for chunk in output.alignments[0]
    ]
    return counts, alignment


@dataclass
class ScoreReport:
    utterances: list[UtteranceScore]
    # Reference uttids without a hypothesis that were left out (missing="skip") or scored as empty.
    missing: list[str]

    def totals(self, categories: tuple[str, ...] = CATEGORIES) -> ErrorCounts:
        """Summed counts of the utterances whose category is in `categories`."""
        total = ErrorCounts()
        for utterance in self.utterances:
            if utterance.category in categories:
                total = total + utterance.counts
        return total

    def _rate(self, categories: tuple[str, ...]) -> float | None:
        if not any(utterance.category in categories for utterance in self.utterances):
            return None
        return self.totals(categories).rate

    @property
    def cer(self) -> float | None:
        """Character error rate over all-Chinese references (None when there are none)."""
        return self._rate(("zh",))

    @property
    def wer(self) -> float | None:
        """Word error rate over references without Chinese characters (None when there are none)."""
        return self._rate(("en",))

    @property
    def mer(self) -> float | None:
        """Mixed error rate over every scored utterance (None when nothing was scored)."""
        return self._rate(CATEGORIES)

    @property
    def sentence_error_rate(self) -> float | None:
        if not self.utterances:
            return None
        return sum(utterance.counts.errors > 0 for utterance in self.utterances) / len(self.utterances)

    def format_table(self) -> str:
        """A plain-text summary table (rates in percent)."""
        rows = [("CER", "zh", ("zh",)), ("WER", "en", ("en",)), ("MER", "all", CATEGORIES)]
        lines = [f"{'metric':<8}{'subset':<8}{'utts':>7}{'ref':>9}{'sub':>8}{'del':>8}{'ins':>8}{'rate %':>9}"]
        for metric, subset, categories in rows:
            num_utterances = sum(utterance.category in categories for utterance in self.utterances)
            if num_utterances == 0:
                continue
            counts = self.totals(categories)
            lines.append(
                f"{metric:<8}{subset:<8}{num_utterances:>7}{counts.ref_tokens:>9}{counts.substitutions:>8}"
                f"{counts.deletions:>8}{counts.insertions:>8}{100 * counts.rate:>9.2f}"
            )
        if self.utterances:
            wrong = sum(utterance.counts.errors > 0 for utterance in self.utterances)
            lines.append(
                f"SER {100 * self.sentence_error_rate:.2f} % ({wrong} of {len(self.utterances)} utterances wrong)"
            )
        if self.missing:
            lines.append(f"{len(self.missing)} reference utterance(s) had no hypothesis: {', '.join(self.missing[:5])}")
        return "\n".join(lines)

    def write_details(self, path) -> None:
        """Writes the summary and, per utterance, its counts and a REF/HYP alignment."""
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.format_table() + "\n\n")
            for utterance in self.utterances:
                counts = utterance.counts
                file.write(
                    f"{utterance.uttid} {utterance.category} rate {100 * counts.rate:.2f} % ref {counts.ref_tokens} "
                    f"sub {counts.substitutions} del {counts.deletions} ins {counts.insertions}\n"
                )
                file.write("\n".join(format_alignment(utterance.alignment)) + "\n\n")


_MARKS = {"equal": "", "substitute": "S", "delete": "D", "insert": "I"}


def _width(token: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in token)


def format_alignment(alignment: list[tuple[str, list[str], list[str]]]) -> list[str]:
    """REF and HYP lines with aligned tokens in one column ('*' = none), then S/D/I marks if there are errors."""
    columns = []
    for kind, ref, hyp in alignment:
        if kind in ("equal", "substitute"):
            columns.extend((r, h, _MARKS[kind]) for r, h in zip(ref, hyp))
        elif kind == "delete":
            columns.extend((r, "*", "D") for r in ref)
        else:
            columns.extend(("*", h, "I") for h in hyp)
    lines = ["REF:", "HYP:", "    "]
    for column in columns:
        width = max(_width(cell) for cell in column)
        for i, cell in enumerate(column):
            lines[i] += " " + cell + " " * (width - _width(cell))
    lines = [line.rstrip() for line in lines]
    return lines if lines[2] else lines[:2]


def score_utterances(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    *,
    remove_special: bool = False,
    convert_numbers: bool = False,
    missing: str = "error",
) -> ScoreReport:
    """Scores hypothesis texts against reference texts, both `{uttid: text}`, in the order of `refs`.

    `missing` decides what happens to a reference without a hypothesis: "error" raises a ValueError, "empty"
    scores it as an empty hypothesis (all deletions), "skip" leaves it out like the original script. Either way
    `ScoreReport.missing` lists them. Hypotheses without a reference are ignored.
    """
    if missing not in ("error", "empty", "skip"):
        raise ValueError(f"missing must be 'error', 'empty' or 'skip', got {missing!r}")
    absent = [uttid for uttid in refs if uttid not in hyps]
    if absent and missing == "error":
        raise ValueError(
            f"{len(absent)} reference utterance(s) have no hypothesis (first: {', '.join(absent[:5])}); "
            "pass missing='empty' or missing='skip' to score anyway"
        )
    options = {"remove_special": remove_special, "convert_numbers": convert_numbers}
    utterances = []
    for uttid, ref_text in refs.items():
        if uttid not in hyps and missing == "skip":
            continue
        ref = normalize_for_scoring(ref_text, **options)
        hyp = normalize_for_scoring(hyps.get(uttid, ""), **options)
        counts, alignment = align_tokens(ref, hyp)
        utterances.append(UtteranceScore(uttid, ref, hyp, counts, token_category(ref), alignment))
    return ScoreReport(utterances, absent)
