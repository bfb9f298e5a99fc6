"""The demo without a browser: what it does for each kind of input (a transcript with files, silence, a damaged,
too long or missing file, a model that cannot be loaded), its settings, its launchers and the Space it deploys as.
The browser tests (test_demo_browser.py) drive the same app through Chromium."""

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile

from fireredasr_hf import cli
from fireredasr_hf.demo.service import DemoError, DemoService, DemoSettings, safe_stem

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLING_RATE = 16000


@pytest.fixture(scope="module")
def service(converted_aed_dir):
    return DemoService(DemoSettings(models=[str(converted_aed_dir)], device="cpu", max_audio_seconds=60))


@pytest.fixture
def clip(fixtures_dir):
    return fixtures_dir / "audio" / "p04.wav"


def write_wav(path: Path, audio: np.ndarray) -> Path:
    soundfile.write(path, audio, SAMPLING_RATE, subtype="PCM_16")
    return path


def test_a_recording_gives_transcript_segments_files_and_progress(service, clip, tmp_path):
    reports = []
    result = service.transcribe(
        str(clip), progress=lambda value, description: reports.append((value, description)), output_dir=tmp_path
    )
    expected = "我们开会吧 LET US START THE MEETING"
    assert result.text == expected and result.message is None
    assert [segment["text"] for segment in result.segments] == [expected] and result.words is None
    assert result.duration == pytest.approx(49694 / SAMPLING_RATE) and 0 < result.real_time_factor
    assert "real-time factor" in result.summary() and "FireRedASR-AED" in result.summary()
    # The pipeline's segment progress reaches the interface.
    assert ((0, 1), "Decoding: 0/1 segments") in reports and reports[-1] == ((1, 1), "Decoding: 1/1 segments")

    files = {path.name: path.read_text(encoding="utf-8") for path in result.files}
    assert sorted(files) == ["p04.json", "p04.srt", "p04.vtt"]
    start, end = result.segments[0]["start"], result.segments[0]["end"]
    assert files["p04.srt"].startswith(f"1\n00:00:00,{round(start * 1000):03d} --> ")
    assert files["p04.vtt"].startswith("WEBVTT\n") and expected in files["p04.vtt"]
    record = json.loads(files["p04.json"])
    assert record["text"] == expected and record["segments"] == [{"start": start, "end": end, "text": expected}]


def test_options_are_checked_against_the_model(service, clip):
    with pytest.raises(DemoError, match="beam size must be between 1 and 10"):
        service.transcribe(str(clip), num_beams=0)
    with pytest.raises(DemoError, match="segment timestamps only"):
        service.transcribe(str(clip), word_timestamps=True)
    with pytest.raises(DemoError, match="Unknown voice activity detector 'webrtc'"):
        service.transcribe(str(clip), vad="webrtc")
    with pytest.raises(DemoError, match="Punctuation is not available"):
        service.transcribe(str(clip), punctuation=True)
    with pytest.raises(DemoError, match="not one of this demo's models"):
        service.transcribe(str(clip), model="someone/else")
    with pytest.raises(DemoError, match="No audio"):
        service.transcribe(None)
    # The energy detector and a single beam decode the clip too.
    assert service.transcribe(str(clip), num_beams=1, vad="energy").text


def test_silence_says_no_speech_was_found(service, tmp_path):
    result = service.transcribe(str(write_wav(tmp_path / "quiet.wav", np.zeros(3 * SAMPLING_RATE))))
    assert result.text == "" and result.segments == [] and result.files == []
    assert result.message == "No speech was found in quiet.wav."


def test_a_damaged_file_is_refused_with_its_name_only(service, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8)
    with pytest.raises(DemoError) as error:
        service.transcribe(str(broken))
    assert str(error.value).startswith("broken.wav could not be read as audio")
    assert str(tmp_path) not in str(error.value)


def test_too_long_recordings_are_refused_before_decoding(converted_aed_dir, clip, tmp_path, monkeypatch):
    short = DemoService(DemoSettings(models=[str(converted_aed_dir)], max_audio_seconds=2.5))
    with pytest.raises(DemoError, match=r"p04.wav is 3.1 s long; this demo transcribes recordings of at most 2.5 s"):
        short.transcribe(str(clip))
    # A format whose header does not say its length is measured after reading.
    monkeypatch.setattr("fireredasr_hf.demo.service.audio_file_duration", lambda path: None)
    with pytest.raises(DemoError, match="at most 2.5 s"):
        short.transcribe(str(clip))


def test_a_model_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    service = DemoService(DemoSettings(models=[str(tmp_path / "missing")]))
    with pytest.raises(DemoError, match=r"could not be loaded: .*missing' is neither an existing directory"):
        service.model_info(str(tmp_path / "missing"))
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with pytest.raises(DemoError, match=r"The model empty \(local\) could not be loaded: .*not a converted"):
        DemoService(DemoSettings(models=[str(not_a_model)])).model_info(str(not_a_model))


def test_the_least_recently_used_model_is_dropped(converted_aed_dir, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(converted_aed_dir, target_is_directory=True)
    names = [str(converted_aed_dir), str(alias)]
    service = DemoService(DemoSettings(models=names, max_loaded_models=1))
    first = service.models.get(names[0])
    assert service.models.get(names[0]) is first
    service.models.get(names[1])
    assert list(service.models._models) == [names[1]]
    assert service.models.get(names[0]) is not first


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("FIREREDASR_DEMO_MODELS", "owner/a, owner/b")
    monkeypatch.setenv("FIREREDASR_DEMO_MAX_AUDIO_SECONDS", "30")
    settings = DemoSettings.from_environment(models=None, max_audio_seconds=None)
    assert settings.models == ["owner/a", "owner/b"] and settings.max_audio_seconds == 30
    assert DemoSettings.from_environment(models=["x/y"]).models == ["x/y"]  # the command line wins
    monkeypatch.setenv("FIREREDASR_DEMO_MAX_AUDIO_SECONDS", "ten minutes")
    with pytest.raises(ValueError, match="FIREREDASR_DEMO_MAX_AUDIO_SECONDS must be a number"):
        DemoSettings.from_environment()
    with pytest.raises(ValueError, match="must be positive"):
        DemoSettings(max_audio_seconds=0)


def test_upload_names_become_safe_file_names():
    assert safe_stem("会议 录音 (1)") == "会议_录音_1"
    assert safe_stem("../../etc/passwd") == "etc_passwd"
    assert safe_stem("...") == "transcript"


def test_gpu_decorator_uses_spaces_where_installed(monkeypatch):
    pytest.importorskip("gradio")
    from fireredasr_hf.demo import app

    def function():
        pass

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert app.gpu_decorator()(function) is function
    monkeypatch.setitem(sys.modules, "spaces", types.ModuleType("spaces"))  # e.g. the folder spaces/ of a checkout
    assert app.gpu_decorator()(function) is function

    calls = []

    def gpu(duration):
        calls.append(duration)
        return lambda wrapped: ("on GPU", wrapped)

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.setenv("FIREREDASR_DEMO_GPU_SECONDS", "60")
    assert app.gpu_decorator()(function) == ("on GPU", function) and calls == [60]


def test_the_app_shows_only_the_options_the_pipeline_offers(service, converted_aed_dir):
    pytest.importorskip("gradio")
    from fireredasr_hf.demo.app import build_demo

    info = service.model_info(str(converted_aed_dir))
    demo = build_demo(service, info)
    components = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    for elem_id in ("audio", "model", "num-beams", "transcribe", "transcript", "status", "segments", "downloads"):
        assert elem_id in components
    assert components["audio"].sources == ["upload", "microphone"]
    assert components["num-beams"].value == info.default_beams == 3
    assert components["vad"].visible and components["vad"].value == info.capabilities.default_vad
    assert not components["word-timestamps"].visible and not components["punctuation"].visible


def test_the_demo_command_reports_a_missing_model(tmp_path, capsys):
    pytest.importorskip("gradio")
    assert cli.main(["demo", "--model", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert re.search(r"fireredasr-hf demo: error: The model .*missing could not be loaded", error)
    assert "Traceback" not in error


def test_the_command_line_does_not_load_gradio():
    code = (
        "import sys\n"
        "from fireredasr_hf import cli\n"
        "cli.build_parser()\n"
        "assert 'gradio' not in sys.modules, 'building the parser imported gradio'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_the_app_uses_the_engine_not_the_command_line():
    """The demo's modules import no application (the `demo` command's module is the command line's, by design)."""
    import ast

    demo_dir = REPO_ROOT / "src" / "fireredasr_hf" / "demo"
    for path in [*demo_dir.glob("*.py"), REPO_ROOT / "spaces" / "app.py"]:
        if path.name == "command.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                assert not re.search(r"(^|\.)(cli|commands|server|serve)$", module), f"{path.name} imports {module}"


def test_spaces_folder_is_a_valid_gradio_space():
    from huggingface_hub import SpaceCard
    from huggingface_hub.utils import validate_repo_id

    card = SpaceCard.load(REPO_ROOT / "spaces" / "README.md")
    data = card.data
    assert data.sdk == "gradio" and data.app_file == "app.py" and (REPO_ROOT / "spaces" / data.app_file).is_file()
    assert re.fullmatch(r"6\.\d+\.\d+", str(data.sdk_version))
    assert data.license == "apache-2.0" and data.title and data.emoji
    assert data.models and all(validate_repo_id(model) is None for model in data.models)
    requirements = (REPO_ROOT / "spaces" / "requirements.txt").read_text().split()
    assert any(line.startswith("fireredasr-hf[") and "demo" in line for line in requirements)


def test_example_clips_are_short_synthetic_speech():
    from fireredasr_hf.examples import example_files

    files = example_files()
    assert [path.name for path in files] == ["english.flac", "mandarin.flac", "mixed.flac"]
    readme = (files[0].parent / "README.md").read_text(encoding="utf-8")
    for path in files:
        info = soundfile.info(path)
        assert info.samplerate == SAMPLING_RATE and info.channels == 1 and info.duration < 10
        assert path.name in readme


def test_readme_shows_a_screenshot_of_the_demo():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"\]\((docs/images/demo-[\w-]+\.png)\)", readme)
    assert images, "README.md shows no screenshot of the demo"
    for image in images:
        assert (REPO_ROOT / image).is_file(), f"README.md shows {image}, which does not exist"


def test_word_timestamps_and_confidence_where_the_pipeline_gives_them(converted_aed_dir, clip, tmp_path):
    """A pipeline with word timestamps (Whisper-shaped word chunks) and confidence, as FireRedASR2 gives them."""
    import dataclasses

    name = str(converted_aed_dir)
    service = DemoService(DemoSettings(models=[name]))
    transcriber, info, lock = service.models.get(name)
    words = [("今", 0.10, 0.30), ("天", 0.30, 0.50), ("TURN", 1.60, 1.90), ("ON", 1.90, 2.10)]

    class WordTranscriber:
        sampling_rate = transcriber.sampling_rate

        def transcribe_audio(self, audio, **options):
            assert options["return_timestamps"] == "word"
            chunks = [{"text": w, "timestamp": (s, e), "confidence": 0.9} for w, s, e in words]
            return {"text": "今天 TURN ON", "chunks": chunks, "confidence": 0.875}

    capabilities = dataclasses.replace(info.capabilities, word_timestamps=True)
    service.models._models[name] = (WordTranscriber(), dataclasses.replace(info, capabilities=capabilities), lock)
    result = service.transcribe(str(clip), word_timestamps=True, output_dir=tmp_path)
    assert [(row["text"], row["start"], row["confidence"]) for row in result.words] == [
        (w, s, 0.9) for w, s, _ in words
    ]
    # No segments in the result: lines of words, split at the 1.1 s pause, joined as Chinese and English are.
    assert result.segments == [
        {"start": 0.10, "end": 0.50, "text": "今天"},
        {"start": 1.60, "end": 2.10, "text": "TURN ON"},
    ]
    assert result.confidence == 0.875 and "confidence 0.88" in result.summary()
    srt = (tmp_path / "p04.srt").read_text(encoding="utf-8")
    assert srt.count(" --> ") == 2 and "今天" in srt
    assert json.loads((tmp_path / "p04.json").read_text(encoding="utf-8"))["words"][2]["text"] == "TURN"


def test_punctuation_is_offered_where_a_model_is_loaded_and_can_be_turned_off(
    converted_aed_dir, converted_punc_dir, clip
):
    service = DemoService(DemoSettings(models=[str(converted_aed_dir)], punctuation=str(converted_punc_dir)))
    info = service.model_info(str(converted_aed_dir))
    assert info.punctuation and info.capabilities.punctuation
    punctuated = service.transcribe(str(clip))
    plain = service.transcribe(str(clip), punctuation=False)
    assert plain.text == "我们开会吧 LET US START THE MEETING"

    def letters(text):
        return re.sub(r"[\s，。？！、,.?!]", "", text).upper()

    # The same words, punctuated (by the tiny random model) and cut into sentences.
    assert letters(punctuated.text) == letters(plain.text)
    assert letters("".join(row["text"] for row in punctuated.segments)) == letters(plain.text)
    # No punctuation model: the option is not offered, and asking for it is an error.
    without = DemoService(DemoSettings(models=[str(converted_aed_dir)], punctuation="none"))
    assert not without.model_info(str(converted_aed_dir)).punctuation
    with pytest.raises(DemoError, match="Punctuation is not available"):
        without.transcribe(str(clip), punctuation=True)


def test_a_fireredasr2_model_offers_word_timestamps_and_confidence(converted_aed2_dir, clip, tmp_path):
    """With a model that has a CTC head (FireRedASR2-AED), the demo offers word timestamps and shows confidence."""
    name = str(converted_aed2_dir)
    service = DemoService(DemoSettings(models=[name]))
    info = service.model_info(name)
    assert info.capabilities.word_timestamps
    segments_only = service.transcribe(str(clip))
    assert segments_only.words is None and segments_only.confidence is not None
    assert "confidence" in segments_only.segments[0]  # per segment, in the table

    result = service.transcribe(str(clip), word_timestamps=True, output_dir=tmp_path)
    assert result.text == segments_only.text == "我们开会吧 let us start the meeting"  # FireRedASR2 lower-cases
    assert [row["text"] for row in result.words][-2:] == ["the", "meeting"]
    assert all(0 <= row["start"] <= row["end"] <= result.duration for row in result.words)
    assert result.segments and result.segments[0]["start"] == result.words[0]["start"]
    assert json.loads((tmp_path / "p04.json").read_text(encoding="utf-8"))["words"] == result.words
