"""Property-based tests (hypothesis): for any input, the building blocks give a correct result or a clear ValueError,
never a crash from deep inside or a silently wrong result. Example counts are kept small for the default run (a few
seconds per test); `FIREREDASR_HYPOTHESIS_PROFILE=thorough pytest tests/test_properties.py` runs 1000 examples each."""

import math
import os
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fireredasr_hf.feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from fireredasr_hf.transcript_io import format_kaldi_text, format_plain_text, read_kaldi_text, read_text_lines
from fireredasr_hf.transcription import OutputTarget, TranscriptionError, subtitle_relative_path
from fireredasr_hf.vad import SpeechSegment, split_into_segments

settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("FIREREDASR_HYPOTHESIS_PROFILE", "default"))

# ----------------------------------------------------------------------------------------------------------------
# Feature extractor: any dtype, shape, rate and length -> features of the documented shape, or a clear ValueError.

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_, np.complex64]
RATES = st.one_of(
    st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    st.integers(-10, 400_000),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def audio_arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.integers(0, 3000 if axis == ndim - 1 else 10)) for axis in range(ndim))
    if np.dtype(dtype).kind == "f":
        elements = st.floats(-1.5, 1.5, width=np.dtype(dtype).itemsize * 8) | st.sampled_from([np.nan, np.inf])
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements, fill=st.nothing() if elements is None else None))


@pytest.fixture(scope="module")
def feature_extractor():
    return FireRedAsrFeatureExtractor()


@given(audio=audio_arrays(), rate=RATES)
def test_feature_extractor_gives_features_or_a_value_error(feature_extractor, audio, rate):
    try:
        features = feature_extractor(audio, sampling_rate=rate, return_tensors="np")
    except ValueError as error:
        assert str(error) and "Traceback" not in str(error)
        return
    values = features["input_features"]
    assert values.dtype == np.float32 and values.ndim == 3 and values.shape[0] == 1 and values.shape[2] == 80
    assert np.isfinite(values).all()
    assert features["attention_mask"].shape == values.shape[:2] and features["attention_mask"].all()
    if rate == 16000 and audio.ndim == 1:
        assert values.shape[1] == 1 + (len(audio) - 400) // 160


# ----------------------------------------------------------------------------------------------------------------
# Tokenizer: any text is tokenized or refused with a ValueError (only lone surrogates); text made of the vocabulary
# comes back as the tokenizer normalises it.


@pytest.fixture(scope="module")
def tokenizer(fixtures_dir):
    from fireredasr_hf.tokenization_fireredasr import FireRedAsrTokenizer

    directory = fixtures_dir / "aed-tiny"
    return FireRedAsrTokenizer(vocab_file=str(directory / "dict.txt"), spm_file=str(directory / "train_bpe1000.model"))


ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)


@given(text=ANY_TEXT)
def test_tokenizer_takes_any_text_or_refuses_it_clearly(tokenizer, text):
    try:
        ids = tokenizer(text)["input_ids"]
    except ValueError as error:
        assert "lone surrogate" in str(error)
        assert any(0xD800 <= ord(char) <= 0xDFFF for char in text)
        return
    assert ids[-1] == tokenizer.eos_token_id and all(0 <= i < len(tokenizer) for i in ids)
    assert isinstance(tokenizer.decode(ids, skip_special_tokens=True), str)


ENGLISH_WORDS = "TURN ON THE LIGHT SPEECH RECOGNITION IS A LOT OF FUN LET US START MEETING SEE YOU TOMORROW".split()


@st.composite
def vocabulary_texts(draw, tokenizer):
    cjk = [token for token in tokenizer.get_vocab() if len(token) == 1 and "\u4e00" <= token <= "\u9fff"]
    pieces = draw(st.lists(st.sampled_from(cjk) | st.sampled_from(ENGLISH_WORDS), max_size=12))
    text = ""
    for index, piece in enumerate(pieces):
        gap = draw(st.sampled_from(["", " ", "  ", "，", "."]))
        if not gap and index and pieces[index - 1].isascii() and piece.isascii():
            gap = " "  # two English words need a separator
        text += gap + (piece.lower() if draw(st.booleans()) else piece)
    return pieces, text


@given(data=st.data())
def test_tokenizer_round_trips_vocabulary_text(tokenizer, data):
    pieces, text = data.draw(vocabulary_texts(tokenizer))
    # Normalised as the release does: upper case, punctuation dropped, no space before a Chinese character, one
    # space before every English word.
    expected = "".join(piece if len(piece) == 1 and not piece.isascii() else f" {piece}" for piece in pieces).strip()
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == expected


# ----------------------------------------------------------------------------------------------------------------
# split_into_segments: chunks cover the speech, do not overlap, stay within max_segment_s and the recording.


@st.composite
def segmentation_inputs(draw):
    duration = draw(st.floats(1.0, 400.0))
    regions = []
    for _ in range(draw(st.integers(0, 12))):
        start = draw(st.floats(0.0, duration - 0.01))
        regions.append(SpeechSegment(start, draw(st.floats(start, duration))))
    max_segment_s = draw(st.floats(2.0, 60.0))
    min_segment_s = draw(st.floats(0.0, max_segment_s / 2 - 0.01))
    merge_gap_s = draw(st.floats(0.0, 3.0))
    with_audio = draw(st.booleans())
    return duration, regions, max_segment_s, min_segment_s, merge_gap_s, with_audio


@given(inputs=segmentation_inputs(), seed=st.integers(0, 2**16))
def test_segments_cover_speech_without_overlap_within_the_limits(inputs, seed):
    duration, regions, max_segment_s, min_segment_s, merge_gap_s, with_audio = inputs
    rate = 100
    audio = None
    if with_audio:
        audio = np.random.default_rng(seed).normal(0, 0.1, math.ceil(duration * rate)).astype(np.float32)
        duration = len(audio) / rate
    kwargs = {"audio": audio, "sampling_rate": rate} if with_audio else {}
    chunks = split_into_segments(regions, max_segment_s, min_segment_s, merge_gap_s, **kwargs)
    tolerance = 1e-6
    for left, right in zip(chunks, chunks[1:]):
        assert left.end <= right.start + tolerance, "chunks overlap or are out of order"
    for chunk in chunks:
        assert chunk.duration <= max_segment_s + tolerance
        assert chunk.start >= -tolerance and (not with_audio or chunk.end <= duration + tolerance)
    for region in regions:
        if region.duration <= 0 or (with_audio and region.start >= duration):
            continue
        covered = sum(max(0.0, min(c.end, region.end) - max(c.start, region.start)) for c in chunks)
        assert covered >= min(region.end, duration if with_audio else region.end) - region.start - 1e-4


# ----------------------------------------------------------------------------------------------------------------
# Transcript writers: any id gives a path inside the output folder or a clear refusal; accepted ids round-trip.

IDS = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=40) | st.sampled_from(
    ["../x", "/etc/passwd", "a/../../b", "a//b", ".", "..", "a\\b", "sub/utt", "~", "C:\\x", "a\x00b", "x" * 300]
)


@given(uttid=IDS)
def test_any_id_gives_a_path_inside_the_output_folder_or_a_clear_refusal(tmp_path_factory, uttid):
    root = tmp_path_factory.getbasetemp() / "subtitles"
    try:
        relative = subtitle_relative_path(uttid, "srt")
    except TranscriptionError as error:
        assert repr(uttid) in str(error)
        return
    assert not relative.is_absolute() and ".." not in relative.parts
    path = (root / relative).resolve()
    assert path.is_relative_to(root.resolve()) and path.name.endswith(".srt")


@given(uttid=IDS, text=st.text(alphabet=string.printable.replace("\n", "").replace("\r", "") + "今天", max_size=20))
def test_accepted_ids_round_trip_through_text_outputs(tmp_path_factory, uttid, text):
    folder = tmp_path_factory.getbasetemp() / "outputs"
    folder.mkdir(exist_ok=True)
    assume("\x0b" not in text and "\x0c" not in text)  # str.split would treat them as separators inside the text
    for output_format, formatter in (("kaldi", format_kaldi_text), ("txt", format_plain_text)):
        target = OutputTarget(folder / f"out.{output_format}", output_format)
        try:
            target.check_ids([uttid])
        except TranscriptionError as error:
            assert repr(uttid) in str(error) or "empty" in str(error)
            continue
        path = folder / f"out.{output_format}"
        path.write_text(formatter([(uttid, text.strip())]), encoding="utf-8")
        if output_format == "kaldi":
            assert read_kaldi_text(path) == {uttid: " ".join(text.split())} or text.strip() != " ".join(text.split())
        else:
            lines = read_text_lines(path)
            assert lines == [f"{uttid}\t{text.strip()}\n"]
