# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The speech-recognition pipeline of FireRedASR (AED and LLM): any input rate, long audio, segment timestamps.

`FireRedAsrPipeline` is transformers' `AutomaticSpeechRecognitionPipeline` with three changes:

- audio is read and resampled without torchaudio: files with soundfile (ffmpeg for other formats), arrays and
  `{"raw"|"array", "sampling_rate"}` dicts by the feature extractor's own mono/resampling path (soxr);
- inputs longer than `max_segment_s` (default: the model's trained limit `config.max_audio_seconds`, 60 s for AED,
  30 s for LLM) are cut into speech segments by voice activity detection and the segments are decoded in batches
  of `batch_size`, grouped by length (`sort_window`); the segment texts are joined (see `join_segment_texts`);
- `return_timestamps=True` returns `chunks`, one per speech segment, `{"text", "timestamp": (start, end)}` in
  seconds (the stock pipeline refuses timestamps for sequence-to-sequence models other than Whisper);
  `return_timestamps="word"` (models with a CTC head, FireRedASR2-AED) one per word, shaped like Whisper's word
  chunks;
- FireRedASR2-AED results carry the beam search's `confidence` (per utterance, per segment chunk and per word), as
  FireRedASR2 reports it; `return_confidence=True` asks any AED model for it;
- `punctuation_model=` (FireRedPunc, see `punctuation.py`) punctuates the transcript; the segment `chunks` are then
  sentences, each with its start and end (from its words' CTC alignment on models with a CTC head), and word
  `chunks` carry the mark that follows the word.

Converted checkpoints declare it in `config.json` (`custom_pipelines`) and carry this file, so
`pipeline("automatic-speech-recognition", model=DIR, trust_remote_code=True)` builds it where fireredasr-hf is not
installed. This module is therefore remote code: it imports only transformers, torch, numpy and its siblings.
"""

import math
import os
import re
from collections import defaultdict

import numpy as np
from huggingface_hub.utils import httpx
from torch.utils.data import DataLoader, IterableDataset
from transformers.pipelines.automatic_speech_recognition import AutomaticSpeechRecognitionPipeline
from transformers.pipelines.base import pad_collate_fn
from transformers.pipelines.pt_utils import PipelineChunkIterator, PipelineIterator, PipelinePackIterator

from .audio import AudioLimits, load_audio, load_audio_bytes
from .punctuation import FireRedPunctuator, group_sentences, punctuated_word_chunks
from .timestamps_fireredasr import hypothesis_end, word_timestamps
from .vad import EnergyVad, FireRedVad, SileroVad, SpeechSegment, split_into_segments

# The feature extractor works on int16-scale samples; the pipeline keeps audio in [-1, 1] as VADs expect.
INT16_SCALE = 32768.0
# What the pipeline takes from FireRedASR-AED's generate output besides the sequences.
GENERATE_OUTPUTS = ("sequences_confidences", "token_confidences", "token_timestamps")
VAD_NAMES = ("firered", "silero", "energy")
DEFAULT_VAD = "firered"
# With batch_size > 1, segments are read this many batches ahead and batched by length (see `sort_window`).
SORT_WINDOW_BATCHES = 8
# The position of a segment in the pipeline's input order, carried through a length-sorted batch.
POSITION_KEY = "_fireredasr_position"
# Ideographs, kana, CJK punctuation and full-width forms: scripts written without spaces between words.
_UNSPACED_CHAR = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]"
)


def join_segment_texts(texts: list[str]) -> str:
    """Joins the transcripts of consecutive segments into one text.

    Each text is stripped and empty ones are skipped. Two neighbours are joined without a space when the last
    character of the first and the first character of the second are both Chinese (or Japanese) characters or
    CJK punctuation, as Chinese is written without spaces; otherwise (English words, or a change of script)
    with one space, as FireRedASR itself writes a space before an English word that follows Chinese.
    A single text is returned stripped, so the text of a recording is always the join of its segment texts.
    """
    joined = ""
    for text in texts:
        text = text.strip()
        if not text:
            continue
        if joined and not (_UNSPACED_CHAR.match(joined[-1]) and _UNSPACED_CHAR.match(text[0])):
            joined += " "
        joined += text
    return joined


class FireRedAsrPipeline(AutomaticSpeechRecognitionPipeline):
    """
    Speech recognition with FireRedASR-AED or FireRedASR-LLM, for audio of any length.

    Inputs: a file path or URL (wav, flac, ogg, mp3 through soundfile; m4a and other formats through the `ffmpeg`
    binary), bytes of an audio file (ffmpeg), a 1-D array at the feature extractor's rate (16 kHz), a
    `{"raw"|"array": samples, "sampling_rate": rate}` dict at any rate, a decoded `datasets` audio value, or a list
    of those (decoded `batch_size` segments at a time). Multi-channel arrays are averaged to mono as the feature
    extractor does; integer arrays are int16-scale PCM. Other keys of a dict input are passed through to the
    output, as in transformers.

    Call options (also accepted when the pipeline is built):
        return_timestamps (`bool` or `"word"`): add `chunks`, one per decoded segment: `{"text", "timestamp":
            (start, end)}` in seconds; with `"word"` one per word instead (English words merged from their pieces,
            one chunk per Chinese character), from the CTC forced alignment of models with a CTC head
            (FireRedASR2-AED), as FireRedASR2 times its words. The audio is then always segmented by the VAD,
            whatever its length, and word times are offset by their segment's start; so `text` (the joined chunk
            texts) can differ from the text without timestamps, where an input within `max_segment_s` is decoded
            whole.
        keep_pauses (`bool`, defaults to `False`): word times as FireRedASR2 gives them (`False`: every word starts
            where the previous one ends, so pauses vanish, upstream FireRedASR2S issues #41 and #58), or with the
            gaps the alignment finds before a word (`True`).
        return_confidence (`bool`, *optional*): add `"confidence"` to the result and its chunks. Defaults to `True`
            for models with a CTC head (FireRedASR2-AED, which reports it) and `False` otherwise; any AED model
            decoding with the FireRed beam search has it, FireRedASR-LLM has none.
        vad (`"firered"`, `"silero"`, `"energy"` or a `VoiceActivityDetector`): how speech is found in long audio.
            `"firered"` (the default) is FireRedVAD with the release's settings, from `$FIREREDASR_HF_VAD_MODEL` if
            set, else the Hub repository FireRedTeam/FireRedVAD (downloaded and converted once); pass
            `FireRedVad.from_pretrained(DIR, ...)` for another copy or other settings. `"silero"` is Silero VAD
            (`pip install silero-vad`, model inside the wheel); `"energy"` a frame-energy threshold for clean
            recordings; any object called as `vad(audio, sampling_rate)` that returns segments with `start` and
            `end` in seconds plugs in.
        max_segment_s (`float`): longer inputs are segmented, and no segment is longer. Defaults to the model's
            trained limit `config.max_audio_seconds`.
        punctuation_model (`str`, `FireRedPunctuator` or `None`): punctuates the transcript with FireRedPunc (a
            converted or original directory, or a Hub id such as FireRedTeam/FireRedPunc, loaded once per
            pipeline). `text` is then punctuated, and with `return_timestamps=True` the `chunks` are sentences (cut
            after 。？！.?!), each from the start of its first word to the end of its last: word times from the CTC
            alignment on models with a CTC head (FireRedASR2-AED; the tokens are aligned for this), else segment
            times spread over their characters. With `return_timestamps="word"` each word chunk carries the mark
            that follows it, written as in its sentence ("Hello," "world."), where FireRedASR2S's punctuation
            (`add_punc_to_txt_with_timestamp`) attaches it.
        progress_callback (`Callable[[int, int], None]`): told how decoding advances, as `(segments_done,
            segments_total)` of one input: once its segments are known (`segments_done=0`; a total of 0 means no
            speech was found) and after each of its segments is decoded. A list input reports each of its inputs
            in turn (their segments may share batches, and with `sort_window` they are decoded in length order:
            reports of several inputs can interleave, each one's counting up). For progress bars of long recordings.
        sort_window (`int`, defaults to 8 x `batch_size`): with `batch_size` > 1, the segments (of all the inputs of a
            list, and the many segments of a long input) are read this many at a time, sorted by length and decoded
            longest first, so that each batch holds segments of similar length (padding costs compute); results keep
            the input order. 0 (or any value up to `batch_size`) batches the segments in input order.
        generate_kwargs / generation options: passed to `model.generate` (e.g. `num_beams=1`).

    Results: `{"text"}`, with `"confidence"` (see `return_confidence`: the mean token confidence of the FireRed beam
    search, FireRedASR2's utterance confidence; over all tokens of all segments for segmented audio; `None` without
    tokens) and `"chunks"` with timestamps. Without segmentation (an input within `max_segment_s` and no timestamps) the
    text equals `tokenizer.decode(model.generate(**feature_extractor(audio)), skip_special_tokens=True).strip()`.
    Besides the waveform (used as is when it is a float32 array at 16 kHz, otherwise read into one, 64 kB per second), decoding a long
    input needs the memory of one batch of segments, whatever its length: segments are featurized as their batch
    is decoded.
    """

    # FireRedASR models decode with their own generation_config.json (the release's beam settings); the stock
    # defaults (num_beams=5, max_new_tokens=256) would change results and cut long segments.
    _default_generation_config = None

    def __init__(self, model, feature_extractor=None, tokenizer=None, device=None, **kwargs):
        self._detectors = {}
        self._punctuators = {}
        super().__init__(model, feature_extractor=feature_extractor, tokenizer=tokenizer, device=device, **kwargs)
        # Both variants decode with generate(); the stock pipeline would take an unlisted class for CTC.
        self.type = "seq2seq"

    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, (list, tuple)) and not inputs:
            raise ValueError("The input list is empty: pass at least one recording (path, array or dict).")
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        return_timestamps=None,
        vad=None,
        max_segment_s=None,
        keep_pauses=None,
        return_confidence=None,
        punctuation_model=None,
        sort_window=None,
        progress_callback=None,
        chunk_length_s=None,
        stride_length_s=None,
        **kwargs,
    ):
        if chunk_length_s is not None or stride_length_s is not None:
            raise ValueError(
                "FireRedAsrPipeline does not cut audio into fixed chunks (`chunk_length_s`, `stride_length_s`): long "
                "audio is split at speech pauses found by voice activity detection. Use `max_segment_s` (and `vad`)."
            )
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(**kwargs)
        if return_timestamps is not None:
            if not (isinstance(return_timestamps, bool) or return_timestamps == "word"):
                raise ValueError(
                    "return_timestamps must be True (one chunk per speech segment), 'word' (one chunk per word) or "
                    f"False, got {return_timestamps!r}."
                )
            if return_timestamps == "word" and not self._has_ctc_head():
                raise ValueError(
                    "This model gives segment-level timestamps only (return_timestamps=True): word timestamps come "
                    "from a CTC head, which FireRedASR2-AED models have and FireRedASR (v1) and LLM models have not."
                )
            preprocess_params["return_timestamps"] = bool(return_timestamps)
            postprocess_params["return_timestamps"] = return_timestamps
        if keep_pauses is not None:
            postprocess_params["keep_pauses"] = bool(keep_pauses)
        if return_confidence is not None:
            if return_confidence and not hasattr(self.model, "_fireredasr_beam_search"):
                raise ValueError("return_confidence=True: FireRedASR-LLM models give no confidence.")
            postprocess_params["return_confidence"] = bool(return_confidence)
        if vad is not None:
            if not (vad in VAD_NAMES if isinstance(vad, str) else callable(vad)):
                raise ValueError(
                    f"vad must be one of {', '.join(map(repr, VAD_NAMES))} or a VoiceActivityDetector, got {vad!r}."
                )
            preprocess_params["vad"] = vad
        if max_segment_s is not None:
            if (
                isinstance(max_segment_s, bool)
                or not isinstance(max_segment_s, (int, float))
                or not math.isfinite(max_segment_s)
                or max_segment_s < 2
            ):
                raise ValueError(f"max_segment_s must be a finite number of seconds >= 2, got {max_segment_s!r}.")
            preprocess_params["max_segment_s"] = float(max_segment_s)
        if punctuation_model is not None:
            postprocess_params["punctuator"] = self._punctuator(punctuation_model)
        if return_timestamps is not None or punctuation_model is not None:
            # Token times are aligned for word chunks, and for sentences timed by their words (models with a CTC
            # head). This call's settings complete those the pipeline was built with.
            built_with = getattr(self, "_postprocess_params", {})
            timestamps = postprocess_params.get("return_timestamps", built_with.get("return_timestamps", False))
            punctuator = postprocess_params.get("punctuator", built_with.get("punctuator"))
            forward_params["return_token_timestamps"] = timestamps == "word" or (
                bool(timestamps) and punctuator is not None and self._has_ctc_head()
            )
        if progress_callback is not None:
            if not callable(progress_callback):
                raise ValueError(f"progress_callback must be callable, got {progress_callback!r}.")
            preprocess_params["progress_callback"] = progress_callback
            forward_params["progress_callback"] = progress_callback
        if sort_window is not None:
            if isinstance(sort_window, bool) or not isinstance(sort_window, int) or sort_window < 0:
                raise ValueError(f"sort_window must be a number of segments >= 0, got {sort_window!r}.")
            # Read by `get_iterator`, which batches the segments.
            preprocess_params["sort_window"] = sort_window
        return preprocess_params, forward_params, postprocess_params

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        """transformers' iteration over the inputs' segments, which with `batch_size` > 1 batches segments of similar
        length: they are read `sort_window` at a time, sorted longest first, decoded, and put back in input order
        before each input's segments are joined."""
        preprocess_params = dict(preprocess_params)
        sort_window = preprocess_params.pop("sort_window", None)
        if sort_window is None:
            sort_window = SORT_WINDOW_BATCHES * batch_size
        if batch_size <= 1 or sort_window <= batch_size:
            return super().get_iterator(
                inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
            )
        preprocess_params["featurize"] = False  # features are made as the sorted segments are batched
        segments = LengthSortedSegments(
            PipelineChunkIterator(inputs, self.preprocess, preprocess_params), sort_window, self._features
        )
        collate_fn = pad_collate_fn(self.tokenizer, self.feature_extractor)
        # At most one worker process, as in transformers' ChunkPipeline: the segments come from one iterator.
        loader = DataLoader(segments, num_workers=min(num_workers, 1), batch_size=batch_size, collate_fn=collate_fn)
        decoded = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        by_input = PipelinePackIterator(InputOrder(decoded), lambda output: output, {})
        return PipelineIterator(by_input, self.postprocess, postprocess_params)

    def _detector(self, vad):
        if not isinstance(vad, str):
            return vad
        if vad not in self._detectors:
            detectors = {"firered": FireRedVad.from_pretrained, "silero": SileroVad, "energy": EnergyVad}
            self._detectors[vad] = detectors[vad]()
        return self._detectors[vad]

    def _punctuator(self, punctuation_model):
        """The punctuator for `punctuation_model` (False disables punctuation for a call)."""
        if punctuation_model is False or isinstance(punctuation_model, FireRedPunctuator):
            return punctuation_model or None
        if not isinstance(punctuation_model, (str, os.PathLike)):
            raise ValueError(
                f"punctuation_model must be a FireRedPunc directory or Hub id, a FireRedPunctuator or False, got "
                f"{punctuation_model!r}."
            )
        name = str(punctuation_model)
        if name not in self._punctuators:
            self._punctuators[name] = FireRedPunctuator.from_pretrained(name, device=self.device)
        return self._punctuators[name]

    def _read_audio(self, inputs) -> tuple[np.ndarray, dict]:
        """The input as float32 mono samples in [-1, 1] at the feature extractor's rate, and its extra keys."""
        sampling_rate = self.feature_extractor.sampling_rate
        if isinstance(inputs, str):
            if inputs.startswith(("http://", "https://")):
                inputs = httpx.get(inputs, follow_redirects=True).content
            else:
                return load_audio(inputs, sampling_rate=sampling_rate), {}
        if isinstance(inputs, bytes):
            return load_audio_bytes(inputs, sampling_rate=sampling_rate, name="given as bytes"), {}
        # A datasets audio value decoded by torchcodec (channels first).
        if hasattr(inputs, "get_all_samples"):
            samples = inputs.get_all_samples()
            inputs = {"array": samples.data.numpy(), "sampling_rate": samples.sample_rate}

        extra = {}
        input_rate = sampling_rate
        if isinstance(inputs, dict):
            if "stride" in inputs:
                raise ValueError("`stride` is only usable with CTC models; FireRedASR models are sequence-to-sequence.")
            if "sampling_rate" not in inputs or not ("raw" in inputs or "array" in inputs):
                raise ValueError(
                    'A dict input needs the audio under "raw" (or "array", as in datasets) and its "sampling_rate", '
                    f"got the keys {sorted(inputs)}."
                )
            extra = dict(inputs)
            samples = extra.pop("raw", None)
            if samples is None:
                # datasets' path of a decoded array; the array is what is transcribed.
                extra.pop("path", None)
                samples = extra.pop("array")
            input_rate = extra.pop("sampling_rate")
            if isinstance(input_rate, bool) or not isinstance(input_rate, (int, np.integer)) or input_rate <= 0:
                raise ValueError(f'"sampling_rate" must be a positive integer number of Hz, got {input_rate!r}.')
            inputs = samples
        if hasattr(inputs, "detach"):  # torch tensors
            inputs = inputs.detach().cpu().float().numpy() if inputs.is_floating_point() else inputs.cpu().numpy()
        if not isinstance(inputs, np.ndarray):
            raise TypeError(
                f"Expected a file path, URL, bytes, numpy array, torch tensor or dict with audio, got {type(inputs)}."
            )
        if inputs.ndim == 1 and inputs.dtype == np.float32 and input_rate == sampling_rate:
            # Already what the feature extractor reads: used as is, without a copy of the whole recording. A NaN or
            # infinity anywhere makes the float64 sum non-finite (the VAD would not notice it).
            AudioLimits.from_env().check(len(inputs), sampling_rate, "The audio")
            if not np.isfinite(np.sum(inputs, dtype=np.float64)):
                raise ValueError("The audio contains NaN or infinite samples.")
            return inputs, extra
        # The feature extractor's checks, downmix and resampling (soxr), so that the pipeline reads an array
        # exactly as a direct call of the feature extractor does.
        waveform = self.feature_extractor._to_mono_waveform(inputs, int(input_rate), "")
        return waveform / np.float32(INT16_SCALE), extra

    def preprocess(
        self,
        inputs,
        return_timestamps=False,
        vad=DEFAULT_VAD,
        max_segment_s=None,
        progress_callback=None,
        featurize=True,
    ):
        """The input's segments, each with its features; with `featurize=False` with its samples instead (`"samples"`,
        a view of the input's waveform), featurized later (`get_iterator` sorts segments by length first)."""
        audio, extra = self._read_audio(inputs)
        sampling_rate = self.feature_extractor.sampling_rate
        if max_segment_s is None:
            max_segment_s = float(self.model.config.max_audio_seconds)
        duration = len(audio) / sampling_rate

        if not return_timestamps and duration <= max_segment_s:
            segments = [SpeechSegment(0.0, duration)]
        else:
            speech = self._detector(vad)(audio, sampling_rate)
            segments = split_into_segments(
                [SpeechSegment(region.start, region.end) for region in speech],
                max_segment_s=max_segment_s,
                min_segment_s=min(1.0, max_segment_s / 4),
                audio=audio,
                sampling_rate=sampling_rate,
            )

        if progress_callback is not None:
            progress_callback(0, len(segments))
        if not segments:
            # No speech. Every input must yield an item: decode 100 ms (a token or two) and drop the result.
            placeholder = audio[: round(0.1 * sampling_rate)]
            audio_or_features = self._features(placeholder) if featurize else {"samples": placeholder}
            yield {"is_last": True, "segment": None, "segment_progress": None, **audio_or_features, **extra}
            return
        for index, segment in enumerate(segments):
            samples = audio[round(segment.start * sampling_rate) : round(segment.end * sampling_rate)]
            yield {
                "is_last": index == len(segments) - 1,
                "segment": (segment.start, segment.end),
                # (segments decoded once this one is, segments of the input), for progress_callback.
                "segment_progress": (index + 1, len(segments)),
                **(self._features(samples) if featurize else {"samples": samples}),
                **extra,
            }

    def _features(self, samples: np.ndarray) -> dict:
        sampling_rate = self.feature_extractor.sampling_rate
        features = self.feature_extractor(
            samples, sampling_rate=sampling_rate, return_tensors="pt", return_attention_mask=True
        )
        if self.dtype is not None:
            features = features.to(dtype=self.dtype)
        return dict(features)

    def _forward(self, model_inputs, return_token_timestamps=False, progress_callback=None, **generate_kwargs):
        progress = model_inputs.pop("segment_progress", None)
        attention_mask = model_inputs.pop("attention_mask", None)
        is_last = model_inputs.pop("is_last")
        input_features = model_inputs.pop("input_features")
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs)
        generate_kwargs["return_dict_in_generate"] = True
        if return_token_timestamps:
            generate_kwargs["return_token_timestamps"] = True
        outputs = self.model.generate(input_features=input_features, attention_mask=attention_mask, **generate_kwargs)
        out = {"tokens": outputs["sequences"]}
        for key in GENERATE_OUTPUTS:
            if outputs.get(key) is not None:
                out[key] = outputs[key]
        if progress_callback is not None:
            # One segment, or a batch of them (a list, possibly of several inputs, in decoding order).
            for done_and_total in progress if isinstance(progress, list) else [progress]:
                if done_and_total is not None:
                    progress_callback(*done_and_total)
        # The rest of the inputs (the segment, a dict input's extra keys) goes to postprocess.
        return {"is_last": is_last, **out, **model_inputs}

    def _has_ctc_head(self) -> bool:
        return bool(getattr(self.model.config, "use_ctc_head", False))

    def postprocess(
        self, model_outputs, return_timestamps=False, keep_pauses=False, return_confidence=None, punctuator=None
    ):
        if return_confidence is None:
            return_confidence = self._has_ctc_head()
        texts, chunks, words = [], [], []
        segment_ends = set()  # index of the last word of each segment
        timed_words = False  # whether words were timed (word chunks, or sentences timed by their words)
        confidences = []  # (confidence, number of tokens) per segment
        extra = defaultdict(list)
        for output in model_outputs:
            output = dict(output)
            tokens, segment = output.pop("tokens"), output.pop("segment")
            generated = {key: output.pop(key, None) for key in GENERATE_OUTPUTS}
            for key in ("is_last", "stride"):
                output.pop(key, None)
            for key, value in output.items():
                extra[key].append(value)
            if segment is None:
                continue
            ids = tokens[0].tolist()
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            texts.append(text)
            chunk = {"text": text.strip(), "timestamp": (round(segment[0], 3), round(segment[1], 3))}
            if return_confidence and generated["sequences_confidences"] is not None:
                confidence = float(generated["sequences_confidences"][0])
                num_tokens = self._hypothesis_end(ids) - 1
                chunk["confidence"] = None if num_tokens == 0 else round(confidence, 3)
                confidences.append((confidence, num_tokens))
            chunks.append(chunk)
            if return_timestamps and generated["token_timestamps"] is not None:
                timed_words = True
                words += self._word_chunks(ids, generated, segment, keep_pauses, return_confidence)
                if words:
                    segment_ends.add(len(words) - 1)
        result = {"text": join_segment_texts(texts) if texts else ""}
        if confidences:
            result["confidence"] = overall_confidence(confidences)
        if punctuator is not None and timed_words:
            # Sentences over the whole recording (the punctuation model sees neighbouring segments together, in
            # windows that end with a segment), timed by their words; the words carry their marks.
            punctuated = punctuator.punctuate_words(words, break_after=segment_ends)
            chunks = group_sentences(punctuated)
            result["text"] = join_segment_texts([chunk["text"] for chunk in chunks])
            if return_timestamps == "word":
                words = punctuated_word_chunks(words, punctuated)
        elif punctuator is not None:
            # Segment times spread over their words.
            chunks = punctuator.punctuate_chunks([chunk for chunk in chunks if chunk["text"]])
            result["text"] = join_segment_texts([chunk["text"] for chunk in chunks])
        if return_timestamps == "word":
            result["chunks"] = words
        elif return_timestamps:
            result["chunks"] = chunks
        return {**result, **extra}

    def _hypothesis_end(self, ids: list[int]) -> int:
        eos_token_id = self.model.generation_config.eos_token_id
        eos_token_id = eos_token_id[0] if isinstance(eos_token_id, (list, tuple)) else eos_token_id
        return hypothesis_end(ids, eos_token_id, self.tokenizer.pad_token_id)

    def _word_chunks(
        self, ids: list[int], generated: dict, segment: tuple[float, float], keep_pauses: bool, with_confidence: bool
    ) -> list:
        """Whisper-shaped word chunks of one decoded segment, with times from the start of the input."""
        sampling_rate = self.feature_extractor.sampling_rate
        duration = (round(segment[1] * sampling_rate) - round(segment[0] * sampling_rate)) / sampling_rate
        end = self._hypothesis_end(ids)
        blank_id = self.model.config.ctc_blank_id
        # Blanks have no place in a CTC alignment (FireRedASR2 aligns the hypothesis without them).
        positions = [position for position in range(1, end) if ids[position] != blank_id]
        token_times = generated["token_timestamps"][0][positions].tolist()
        if any(math.isnan(start) for start, _ in token_times):  # the hypothesis could not be aligned
            token_times = None
        tokens = self.tokenizer.convert_ids_to_tokens([ids[position] for position in positions])
        if getattr(self.tokenizer, "lowercase_output", False):
            tokens = [token.lower() for token in tokens]
        token_confidences = None
        if with_confidence and generated["token_confidences"] is not None:
            token_confidences = generated["token_confidences"][0][positions].tolist()
        special_tokens = {token.lower() for token in self.tokenizer.all_special_tokens} | set(
            self.tokenizer.all_special_tokens
        )
        chunks = []
        for word in word_timestamps(tokens, token_times, duration, keep_pauses, token_confidences):
            if word["text"] in special_tokens or not word["text"].strip():
                continue
            chunk = {
                "text": word["text"],
                "timestamp": (round(segment[0] + word["start"], 3), round(segment[0] + word["end"], 3)),
            }
            if "confidence" in word:
                chunk["confidence"] = round(word["confidence"], 3)
            chunks.append(chunk)
        return chunks


class LengthSortedSegments(IterableDataset):
    """
    The pipeline's segments (`preprocess` items with their `"samples"`) read `window` at a time and given longest
    first within each window, so that batches hold segments of similar length (little padding). Each is featurized
    (`featurize`) as it is given, that is as its batch is assembled, so that features exist for one batch only; it
    carries its position in the input order under `POSITION_KEY` for `InputOrder`, and its `segment_progress` counts
    its input's segments decoded in this order (so that `progress_callback` still counts up for each input).
    """

    def __init__(self, segments, window: int, featurize):
        self.segments = segments
        self.window = window
        self.featurize = featurize

    def __iter__(self):
        window, decoded = [], {}  # decoded: segments given so far, per input number
        input_number = 0
        for position, segment in enumerate(self.segments):
            segment[POSITION_KEY] = position
            window.append((input_number, segment))
            if segment["is_last"]:
                input_number += 1
            if len(window) == self.window:
                yield from self._longest_first(window, decoded)
                window = []
        yield from self._longest_first(window, decoded)

    def _longest_first(self, window: list, decoded: dict):
        for input_number, segment in sorted(window, key=lambda item: len(item[1]["samples"]), reverse=True):
            progress = segment.get("segment_progress")
            if progress is not None:
                done = decoded.get(input_number, 0) + 1
                decoded[input_number] = done
                if done == progress[1]:
                    del decoded[input_number]
                segment["segment_progress"] = (done, progress[1])
            segment.update(self.featurize(segment.pop("samples")))
            yield segment


class InputOrder:
    """Decoded segments (dicts carrying `POSITION_KEY`), which come sorted by length within windows, back in input
    order; at most one window is held."""

    def __init__(self, outputs):
        self.outputs = outputs

    def __iter__(self):
        pending = {}
        next_position = 0
        for output in self.outputs:
            pending[output.pop(POSITION_KEY)] = output
            while next_position in pending:
                yield pending.pop(next_position)
                next_position += 1


def overall_confidence(confidences: list[tuple[float, int]]) -> float | None:
    """The mean token confidence over segments given as (mean confidence, number of tokens); `None` without tokens."""
    segments = [(confidence, count) for confidence, count in confidences if count > 0]
    if not segments:
        return None
    if len(segments) == 1:
        return round(segments[0][0], 3)
    return round(sum(confidence * count for confidence, count in segments) / sum(count for _, count in segments), 3)


__all__ = ["FireRedAsrPipeline", "join_segment_texts"]


FIRERED_MODEL_TYPES = ("fireredasr_aed", "fireredasr_llm")


class SpeechRecognitionPipelineSelector(AutomaticSpeechRecognitionPipeline):
    """
    The "automatic-speech-recognition" task's pipeline class while fireredasr-hf is imported: a FireRedASR model gets
    a `FireRedAsrPipeline`, any other model transformers' own `AutomaticSpeechRecognitionPipeline`, unchanged.
    """

    def __new__(cls, *args, **kwargs):
        model = kwargs["model"] if "model" in kwargs else args[0]
        is_firered = getattr(model.config, "model_type", None) in FIRERED_MODEL_TYPES
        pipeline_class = FireRedAsrPipeline if is_firered else AutomaticSpeechRecognitionPipeline
        # Not an instance of this class, so Python does not call __init__ on it a second time.
        return pipeline_class(*args, **kwargs)
