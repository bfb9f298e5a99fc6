"""FireRedAsrPipeline on every input kind, for the tiny AED and LLM fixture models, against direct model calls."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile
import torch

from fireredasr_hf.audio import load_audio, resample
from fireredasr_hf.pipeline_fireredasr import FireRedAsrPipeline, join_segment_texts
from fireredasr_hf.vad import SpeechSegment, VoiceActivityDetector

SAMPLING_RATE = 16000
UTTERANCES = [f"p{index:02d}" for index in range(1, 11)]
HAS_FFMPEG = shutil.which("ffmpeg") is not None


def build_pipeline(model_dir):
    """The plain transformers call: `import fireredasr_hf` makes the task build FireRedAsrPipeline for these models."""
    from transformers import pipeline

    import fireredasr_hf  # noqa: F401

    return pipeline("automatic-speech-recognition", model=str(model_dir))


@pytest.fixture(scope="module")
def clips(fixtures_dir):
    return {uttid: soundfile.read(fixtures_dir / "audio" / f"{uttid}.wav", dtype="float32")[0] for uttid in UTTERANCES}


@pytest.fixture(scope="module")
def aed(converted_aed_dir):
    return build_pipeline(converted_aed_dir)


@pytest.fixture(scope="module")
def llm(converted_llm_dir):
    return build_pipeline(converted_llm_dir)


def direct(asr, audio, sampling_rate=SAMPLING_RATE, **generate_kwargs) -> str:
    """The transcript of the model called without the pipeline: feature extractor, generate, decode."""
    features = asr.feature_extractor(audio, sampling_rate=sampling_rate, return_tensors="pt")
    with torch.no_grad():
        ids = asr.model.generate(**features, **generate_kwargs)
    return asr.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()


def test_pipeline_builds_the_fireredasr_class_for_both_variants(aed, llm):
    for asr in (aed, llm):
        assert isinstance(asr, FireRedAsrPipeline)
        assert asr.type == "seq2seq"
    assert (aed.model.config.max_audio_seconds, llm.model.config.max_audio_seconds) == (60.0, 30.0)


def test_other_models_keep_the_stock_pipeline(tmp_path):
    """The task's pipeline selector hands any non-FireRedASR model to transformers' own pipeline class."""
    from tokenizers import Tokenizer, models
    from transformers import (
        AutomaticSpeechRecognitionPipeline,
        MoonshineConfig,
        MoonshineForConditionalGeneration,
        PreTrainedTokenizerFast,
        Wav2Vec2FeatureExtractor,
        pipeline,
    )

    import fireredasr_hf  # noqa: F401

    config = MoonshineConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        encoder_num_hidden_layers=1,
        decoder_num_hidden_layers=1,
        encoder_num_attention_heads=2,
        decoder_num_attention_heads=2,
    )
    vocab = {f"t{i}": i for i in range(32)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")))
    asr = pipeline(
        "automatic-speech-recognition",
        model=MoonshineForConditionalGeneration(config),
        feature_extractor=Wav2Vec2FeatureExtractor(),
        tokenizer=tokenizer,
    )
    assert type(asr) is AutomaticSpeechRecognitionPipeline


@pytest.mark.parametrize("variant", ["aed", "llm"])
def test_arrays_and_batches_equal_direct_model_calls(request, variant, clips):
    asr = request.getfixturevalue(variant)
    uttids = ["p01", "p02", "p04", "p06"] if variant == "aed" else ["p01", "p04"]
    expected = [direct(asr, clips[uttid]) for uttid in uttids]
    assert asr(clips[uttids[0]]) == {"text": expected[0]}
    batched = asr([clips[uttid] for uttid in uttids], batch_size=len(uttids))
    assert [output["text"] for output in batched] == expected
    if variant == "aed":
        assert expected == [
            "今天天气很好",
            "TURN ON THE LIGHT",
            "我们开会吧 LET US START THE MEETING",
            "SPEECH RECOGNITION IS A LOT OF FUN",
        ]
    else:
        assert expected == ["今天天气很好", "我们开会吧 let us start the meeting"]


class RecordingGenerate:
    """Stands in for `model.generate` to record the valid frames of every batch it decodes."""

    def __init__(self, generate):
        self.generate = generate
        self.batches = []

    def __call__(self, input_features=None, attention_mask=None, **kwargs):
        self.batches.append(attention_mask.sum(-1).tolist())
        return self.generate(input_features=input_features, attention_mask=attention_mask, **kwargs)


def test_batches_group_segments_of_similar_length_and_keep_the_input_order(aed, clips, monkeypatch):
    # Inputs of 1-6 s, one of them long enough (with max_segment_s=2) to be cut into several segments.
    uttids = ["p01", "p07", "p02", "p09", "p04", "p10", "p03"]
    inputs = [{"raw": clips[uttid], "sampling_rate": SAMPLING_RATE, "uttid": uttid} for uttid in uttids]
    long_audio = np.concatenate([clips["p06"], np.zeros(SAMPLING_RATE // 2, np.float32), clips["p05"]])
    inputs.insert(3, {"raw": long_audio, "sampling_rate": SAMPLING_RATE, "uttid": "long"})
    options = {"max_segment_s": 4, "vad": "energy", "return_timestamps": True}
    alone = [aed(dict(item), **options) for item in inputs]
    assert len(alone[3]["chunks"]) > 1

    recorder = RecordingGenerate(aed.model.generate)
    monkeypatch.setattr(aed.model, "generate", recorder)
    batched = aed([dict(item) for item in inputs], batch_size=3, **options)
    assert [output["uttid"][0] for output in batched] == [item["uttid"] for item in inputs]
    assert [output["text"] for output in batched] == [output["text"] for output in alone]
    assert [output["chunks"] for output in batched] == [output["chunks"] for output in alone]
    # One window (8 batches) holds every segment: batches come longest first.
    lengths = [length for batch in recorder.batches for length in batch]
    assert lengths == sorted(lengths, reverse=True) and len(lengths) == sum(len(o["chunks"]) for o in alone)

    # A window of 4 segments sorts within each window; sort_window=0 keeps the input order.
    for window in (4, 0):
        recorder.batches.clear()
        batched = aed([dict(item) for item in inputs], batch_size=2, sort_window=window, **options)
        assert [output["text"] for output in batched] == [output["text"] for output in alone]
        lengths = [length for batch in recorder.batches for length in batch]
        windows = [lengths[start : start + 4] for start in range(0, len(lengths), 4)]
        if window:
            assert all(part == sorted(part, reverse=True) for part in windows)
        else:
            assert lengths != sorted(lengths, reverse=True)


@pytest.mark.parametrize(("variant", "rate"), [("aed", 8000), ("aed", 44100), ("llm", 44100)])
def test_dicts_at_any_rate_are_resampled_without_torchaudio(request, variant, rate, clips):
    asr = request.getfixturevalue(variant)
    audio = resample(clips["p01"], SAMPLING_RATE, rate)
    # Greedy: 8 kHz audio lacks the upper band the tiny model relies on and yields long garbage.
    expected = direct(asr, audio, sampling_rate=rate, num_beams=1)
    assert asr({"raw": audio, "sampling_rate": rate}, num_beams=1)["text"] == expected
    # datasets' layout: "array" (+ "path"); other keys are passed through as in transformers.
    output = asr({"array": audio, "sampling_rate": rate, "path": "x.wav", "uttid": "p01"}, num_beams=1)
    assert output == {"text": expected, "uttid": ["p01"]}
    if rate == 44100:  # upsampling keeps the speech intact
        assert expected == "今天天气很好"


def test_integer_multichannel_and_tensor_inputs_read_as_the_feature_extractor_does(aed, clips):
    clip = clips["p04"]
    expected = direct(aed, clip)
    pcm = np.round(clip * 32768).clip(-32768, 32767).astype(np.int16)
    assert aed(pcm)["text"] == direct(aed, pcm) == expected
    stereo = np.stack([clip, clip], axis=1)  # (samples, channels), as soundfile reads
    assert aed({"raw": stereo, "sampling_rate": SAMPLING_RATE})["text"] == expected
    assert aed(torch.from_numpy(clip))["text"] == expected


def test_audio_files_in_several_formats(aed, clips, tmp_path):
    clip = clips["p04"]
    expected = direct(aed, clip)
    soundfile.write(tmp_path / "p04.flac", clip, SAMPLING_RATE)
    soundfile.write(tmp_path / "p04_44k.wav", resample(clip, SAMPLING_RATE, 44100), 44100, subtype="FLOAT")
    soundfile.write(tmp_path / "p04.mp3", clip, SAMPLING_RATE)
    paths = [tmp_path / "p04.flac", tmp_path / "p04_44k.wav", tmp_path / "p04.mp3"]
    if HAS_FFMPEG:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(tmp_path / "p04.flac"), str(tmp_path / "p04.m4a")], check=True
        )
        paths.append(tmp_path / "p04.m4a")
    for path in paths:
        # Lossy formats change the samples: the reference is the model on the decoded file.
        assert aed(str(path))["text"] == direct(aed, load_audio(path)), path.name
    assert aed(str(tmp_path / "p04.flac"))["text"] == expected
    if HAS_FFMPEG:  # bytes go through ffmpeg, as in transformers
        assert aed((tmp_path / "p04.flac").read_bytes())["text"] == expected


@pytest.mark.parametrize("variant", ["aed", "llm"])
def test_generate_kwargs_are_honoured(request, variant, clips):
    asr = request.getfixturevalue(variant)
    clip = clips["p06"] if variant == "aed" else clips["p02"]
    greedy = direct(asr, clip, num_beams=1)
    assert asr(clip, generate_kwargs={"num_beams": 1})["text"] == greedy
    assert asr(clip, num_beams=1)["text"] == greedy
    short = asr(clip, max_new_tokens=2)["text"]
    assert short == direct(asr, clip, max_new_tokens=2)
    assert len(short) < len(greedy)


def test_pipeline_keeps_the_models_generation_config(aed):
    # The stock pipeline would add num_beams=5 and max_new_tokens=256.
    assert aed._generation_defaults == {"pad_token_id": aed.tokenizer.pad_token_id}
    assert aed.model.generation_config.num_beams == 3


class FixedVad(VoiceActivityDetector):
    def __init__(self, segments):
        self.segments = segments
        self.calls = 0

    def detect(self, audio, sampling_rate):
        self.calls += 1
        return [SpeechSegment(start, end) for start, end in self.segments]


def test_timestamps_give_one_chunk_per_segment(aed, clips):
    clip = clips["p06"]
    silence = np.zeros(SAMPLING_RATE, dtype=np.float32)
    audio = np.concatenate([silence, clip, silence])
    output = aed(audio, return_timestamps=True)
    (chunk,) = output["chunks"]
    start, end = chunk["timestamp"]
    assert 0.9 <= start <= 1.1 and 1.0 + 1.8 <= end <= 1.0 + len(clip) / SAMPLING_RATE + 0.1
    samples = audio[round(start * SAMPLING_RATE) : round(end * SAMPLING_RATE)]
    assert chunk["text"] == output["text"] == direct(aed, samples)

    # A plugged-in detector decides the segments; short ones are widened to 1 s of context.
    detector = FixedVad([(1.0, 1.5), (2.2, 3.2)])
    output = aed(audio, return_timestamps=True, vad=detector)
    assert detector.calls == 1
    assert [chunk["timestamp"] for chunk in output["chunks"]] == [(0.75, 1.75), (2.2, 3.2)]


def test_no_speech_gives_an_empty_transcript(aed):
    silence = np.zeros(3 * SAMPLING_RATE, dtype=np.float32)
    assert aed(silence, return_timestamps=True, vad="energy") == {"text": "", "chunks": []}
    assert aed(silence, max_segment_s=2, vad="energy") == {"text": ""}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"return_timestamps": "word"}, "segment-level timestamps only"),
        ({"chunk_length_s": 30}, "does not cut audio into fixed chunks"),
        ({"vad": "webrtc"}, "vad must be one of"),
        ({"max_segment_s": 1}, "max_segment_s must be"),
        ({"sort_window": -1}, "sort_window must be"),
    ],
)
def test_bad_options_are_refused(aed, clips, kwargs, message):
    with pytest.raises(ValueError, match=message):
        aed(clips["p01"], **kwargs)


@pytest.mark.parametrize(
    ("inputs", "error", "message"),
    [
        ({"raw": np.zeros(16000, np.float32)}, ValueError, "sampling_rate"),
        ({"raw": np.zeros(16000, np.float32), "sampling_rate": 16000, "stride": (0, 0)}, ValueError, "stride"),
        ({"raw": np.zeros(16000, np.float32), "sampling_rate": 0}, ValueError, "positive integer"),
        (np.zeros(100, np.float32), ValueError, "fewer than one"),
        (np.concatenate([np.zeros(90 * SAMPLING_RATE, np.float32), [np.nan]]), ValueError, "NaN"),
        ([0.1, 0.2], TypeError, "Expected a file path"),
    ],
)
def test_bad_inputs_are_refused(aed, inputs, error, message):
    with pytest.raises(error, match=message):
        aed(inputs)


def test_missing_and_corrupt_files_are_refused(aed, tmp_path):
    with pytest.raises(FileNotFoundError):
        aed(str(tmp_path / "missing.wav"))
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(ValueError, match="cannot decode audio file"):
        aed(str(tmp_path / "bad.wav"))


def test_join_segment_texts():
    assert join_segment_texts(["今天天气很好", "我想去北京"]) == "今天天气很好我想去北京"
    assert join_segment_texts(["TURN ON", "THE LIGHT "]) == "TURN ON THE LIGHT"
    assert (
        join_segment_texts(["我们开会吧", "LET US START", "好的。", "", "  再见"])
        == "我们开会吧 LET US START 好的。再见"
    )
    assert join_segment_texts([" one segment "]) == "one segment"
    assert join_segment_texts(["", "  "]) == ""


def test_remote_code_files_require_only_transformers_torch_and_numpy():
    from transformers.dynamic_module_utils import get_imports

    from fireredasr_hf import audio, pipeline_fireredasr, vad

    for module in (pipeline_fireredasr, audio, vad):
        required = set(get_imports(module.__file__)) - set(sys.stdlib_module_names)
        assert required <= {"transformers", "torch", "numpy", "huggingface_hub"}, (module.__name__, required)


REMOTE_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockPackage(importlib.abc.MetaPathFinder):  # as if fireredasr-hf were not installed
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "fireredasr_hf":
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, BlockPackage())
    import numpy as np, soundfile, soxr, torch
    from transformers import pipeline

    torch.set_num_threads(1)

    clip = soundfile.read(sys.argv[2], dtype="float32")[0]
    results = {}
    for model_dir in sys.argv[3:]:
        asr = pipeline("automatic-speech-recognition", model=model_dir, trust_remote_code=True)
        results[model_dir] = {
            "class": type(asr).__name__,
            "array": asr(clip)["text"],
            "dict_44k": asr({"raw": soxr.resample(clip, 16000, 44100), "sampling_rate": 44100})["text"],
            "timestamps": asr(clip, return_timestamps=True),
        }
    assert "fireredasr_hf" not in sys.modules
    with open(sys.argv[1], "w") as f:
        json.dump(results, f, ensure_ascii=False)
    """
)


def test_remote_code_pipeline_in_a_process_without_the_package(
    converted_aed_dir, converted_llm_dir, fixtures_dir, tmp_path, aed, llm, clips
):
    from transformers import AutoConfig

    from fireredasr_hf.conversion.common import save_pipeline_code

    model_dirs = []
    for name, source in (("aed", converted_aed_dir), ("llm", converted_llm_dir)):
        model_dir = tmp_path / name
        shutil.copytree(source, model_dir)
        config = AutoConfig.from_pretrained(model_dir)
        save_pipeline_code(config, model_dir)
        config.save_pretrained(model_dir)
        model_dirs.append(str(model_dir))
    assert {"pipeline_fireredasr.py", "audio.py", "vad.py", "modeling_fireredvad.py"} <= {
        path.name for path in (tmp_path / "aed").iterdir()
    }

    script = tmp_path / "remote.py"
    script.write_text(REMOTE_SCRIPT)
    result_file = tmp_path / "result.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    # Without the package, the default detector (FireRedVAD) is read from a converted copy.
    if "FIREREDASR_HF_VAD_MODEL" in os.environ:
        from fireredasr_hf import FireRedVad

        FireRedVad.from_pretrained().save_pretrained(tmp_path / "fireredvad")
        env["FIREREDASR_HF_VAD_MODEL"] = str(tmp_path / "fireredvad")
    completed = subprocess.run(
        [sys.executable, str(script), str(result_file), str(fixtures_dir / "audio" / "p01.wav"), *model_dirs],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(result_file.read_text())
    for model_dir, asr in zip(model_dirs, (aed, llm)):
        expected = direct(asr, clips["p01"])
        result = results[model_dir]
        assert result["class"] == "FireRedAsrPipeline"
        assert result["array"] == result["dict_44k"] == expected == "今天天气很好"
        assert [chunk["text"] for chunk in result["timestamps"]["chunks"]] == [result["timestamps"]["text"]]


def test_text_has_no_surrounding_spaces_and_equals_the_joined_chunks(converted_aed_dir, fixtures_dir, monkeypatch):
    import fireredasr_hf  # noqa: F401
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(converted_aed_dir))
    monkeypatch.setattr(asr.tokenizer, "decode", lambda *args, **kwargs: " decoded text ")
    wav = str(fixtures_dir / "audio" / "p01.wav")
    assert asr(wav)["text"] == "decoded text"
    output = asr(wav, return_timestamps=True)
    assert output["text"] == join_segment_texts([chunk["text"] for chunk in output["chunks"]]) == "decoded text"
