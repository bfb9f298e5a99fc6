"""A cheap `import fireredasr_hf` and a quick `--help`, with the registrations with transformers still in place.

No timings here (benchmarks/bench_startup.py measures them): the tests check what is imported.
"""

import subprocess
import sys
import textwrap

import pytest

import fireredasr_hf
from fireredasr_hf import cli, registration

HEAVY = ("torch", "transformers", "numpy", "datasets", "peft", "huggingface_hub")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False, timeout=600
    )


def test_import_and_every_help_load_no_heavy_package():
    result = run_python(f"""
        import sys
        import fireredasr_hf
        after_import = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
        from fireredasr_hf import cli
        for command in [[]] + [[c.name] for c in cli.COMMANDS]:
            try:
                cli.main([*command, "--help"])
            except SystemExit as exit:
                assert exit.code == 0, command
        after_help = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
        print(after_import, after_help)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "[] []"


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "fireredasr_hf", "transcribe", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: fireredasr-hf transcribe")


def test_exports_load_on_first_use():
    assert set(fireredasr_hf.__all__) <= set(dir(fireredasr_hf))
    for name in fireredasr_hf.__all__:
        assert getattr(fireredasr_hf, name).__name__ == name
    with pytest.raises(AttributeError):
        fireredasr_hf.NoSuchThing  # noqa: B018


CHECK_REGISTRATIONS = """
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoProcessor, AutoTokenizer
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING, MODEL_MAPPING
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING
    from transformers.pipelines import PIPELINE_REGISTRY
    from fireredasr_hf import configuration_fireredasr as configs

    aed, llm = configs.FireRedAedConfig, configs.FireRedLlmConfig
    assert CONFIG_MAPPING["fireredasr_aed"] is aed and CONFIG_MAPPING["fireredasr_llm"] is llm
    assert CONFIG_MAPPING["fireredasr_encoder"] is configs.FireRedEncoderConfig
    assert CONFIG_MAPPING[configs.FireRedLstmLmConfig.model_type] is configs.FireRedLstmLmConfig
    assert TOKENIZER_MAPPING[llm].__name__ == "FireRedLlmTokenizer"
    from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_FRAME_CLASSIFICATION_MAPPING
    from fireredasr_hf.configuration_fireredvad import FireRedVadConfig

    assert CONFIG_MAPPING[FireRedVadConfig.model_type] is FireRedVadConfig
    assert MODEL_FOR_AUDIO_FRAME_CLASSIFICATION_MAPPING[FireRedVadConfig].__name__ == "FireRedVadForAudioFrameClassification"
    assert FEATURE_EXTRACTOR_MAPPING[FireRedVadConfig].__name__ == "FireRedAsrFeatureExtractor"
    assert MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING[aed].__name__ == "FireRedAedForConditionalGeneration"
    assert MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING[llm].__name__ == "FireRedLlmForSpeechSeq2Seq"
    assert MODEL_MAPPING[aed].__name__ == "FireRedAedModel"
    assert FEATURE_EXTRACTOR_MAPPING[llm].__name__ == "FireRedAsrFeatureExtractor"
    assert TOKENIZER_MAPPING[aed].__name__ == "FireRedAsrTokenizer"
    assert PROCESSOR_MAPPING[aed].__name__ == "FireRedAsrProcessor"
    assert PROCESSOR_MAPPING[llm].__name__ == "FireRedLlmProcessor"
    impl = PIPELINE_REGISTRY.supported_tasks["automatic-speech-recognition"]["impl"]
    assert impl.__name__ == "SpeechRecognitionPipelineSelector"
    assert configs.USE_INSTALLED_PIPELINE
    print("registered")
"""


@pytest.mark.parametrize(
    "first",
    [
        # A submodule first: it imports transformers' Auto classes while it is itself half imported.
        "import fireredasr_hf.configuration_fireredasr; import fireredasr_hf.pipeline_fireredasr",
        # transformers first: the registrations run at `import fireredasr_hf`.
        "from transformers import pipeline, AutoModelForSpeechSeq2Seq; import fireredasr_hf",
    ],
    ids=["submodule-first", "transformers-first"],
)
def test_registrations_whatever_is_imported_first(first):
    result = run_python(first + "\n" + textwrap.dedent(CHECK_REGISTRATIONS))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "registered"


def test_registrations_in_this_process():
    """Whatever order the test modules imported things in."""
    exec(textwrap.dedent(CHECK_REGISTRATIONS), {})  # noqa: S102


def test_registrations_wait_for_the_module_and_run_once(monkeypatch):
    calls = []
    hooks = registration.PostImportHooks({"json.tool": calls.append})
    monkeypatch.setattr(sys, "meta_path", [hooks, *sys.meta_path])
    monkeypatch.delitem(sys.modules, "json.tool", raising=False)
    hooks.run_ready()
    assert calls == []
    import json.tool  # noqa: F401  (not a tracked prefix: runs at the next check)

    hooks.run_ready()
    assert [module.__name__ for module in calls] == ["json.tool"]
    assert hooks not in sys.meta_path  # nothing left to register: the finder removed itself
    hooks.run_ready()
    assert len(calls) == 1


def test_cli_sets_passive_openmp_waiting_before_torch(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays
