import os
from pathlib import Path

import pytest

# Tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The test models are tiny: on a 2-core machine intra-op threads cost more in synchronisation than they gain (and
# stall badly when the machine is busy). Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = Path(os.environ.get("FIREREDASR_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
# The pipeline's and the CLI's default detector (FireRedVAD) comes from the released weights in the fixtures, as a
# user points at a local copy (the Hub repository cannot be downloaded here).
if (FIXTURES_DIR / "firered-vad" / "cmvn.ark").is_file():
    os.environ.setdefault("FIREREDASR_HF_VAD_MODEL", str(FIXTURES_DIR / "firered-vad"))


def run_without_the_package(script: str, cwd: Path, timeout: float = 300):
    """Runs a Python script in a fresh process where fireredasr_hf cannot be imported (as for a user who loads a
    converted directory with `trust_remote_code=True`); returns the CompletedProcess."""
    import subprocess
    import sys
    import textwrap

    preamble = textwrap.dedent("""
        import sys
        sys.modules["fireredasr_hf"] = None  # importing it fails, wherever the package is (whatever its folder)
        try:
            import fireredasr_hf
            raise SystemExit("fireredasr_hf is importable; the test would prove nothing")
        except ImportError:
            pass
    """)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared fixtures (original-format tiny models, audio, goldens of the original code)."""
    if not (FIXTURES_DIR / "README.md").is_file():
        pytest.skip(f"shared fixtures not found at {FIXTURES_DIR} (set FIREREDASR_FIXTURES to their folder)")
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def converted_aed_dir(fixtures_dir, tmp_path_factory) -> Path:
    """The shared tiny original AED converted once per test session (float32)."""
    from fireredasr_hf.conversion import convert_checkpoint

    return convert_checkpoint(fixtures_dir / "aed-tiny", tmp_path_factory.mktemp("aed-tiny-hf"))


@pytest.fixture(scope="session")
def converted_llm_dir(fixtures_dir, tmp_path_factory) -> Path:
    """The shared tiny original LLM converted once per test session, in float32 (fast on CPU; LoRA merged)."""
    from fireredasr_hf.conversion import convert_checkpoint

    return convert_checkpoint(fixtures_dir / "llm-tiny", tmp_path_factory.mktemp("llm-tiny-hf"), dtype="float32")


@pytest.fixture(scope="session")
def fixture_clips(fixtures_dir) -> dict:
    """The ten fixture utterances p01-p10 as float32 waveforms (16 kHz), by utterance id."""
    import soundfile

    return {
        f"p{index:02d}": soundfile.read(fixtures_dir / "audio" / f"p{index:02d}.wav", dtype="float32")[0]
        for index in range(1, 11)
    }


@pytest.fixture(scope="session")
def fireredasr2():
    """
    The FireRedASR2 reference code (`fireredasr2/` of PyPI fasr-asr-firered 0.5.8), test-only: its package `__init__`
    imports the LLM path and sys.path hacks, so a bare `fireredasr2` package is registered and the submodules are
    imported one by one. Where torchaudio is missing (it cannot be installed next to this torch), the reference's
    `torchaudio.functional.forced_align` is served by our `ctc_forced_align`, which tests/test_timestamps.py checks
    against torchaudio itself; the stub is visible to the reference module only.
    """
    import importlib
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("fireredasr2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the FireRedASR2 reference (pip install --no-deps fasr-asr-firered==0.5.8) is not installed")
    if not isinstance(sys.modules.get("fireredasr2"), types.ModuleType) or not hasattr(
        sys.modules["fireredasr2"], "__path__"
    ):
        package = types.ModuleType("fireredasr2")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["fireredasr2"] = package

    stubbed = importlib.util.find_spec("torchaudio") is None
    if stubbed:
        from fireredasr_hf.timestamps_fireredasr import ctc_forced_align

        def forced_align(log_probs, targets, input_lengths=None, target_lengths=None, blank=0):
            alignment = ctc_forced_align(log_probs, targets, input_lengths, target_lengths, blank=blank)
            return alignment, log_probs.gather(2, alignment.clamp(min=0)[..., None])[..., 0]

        torchaudio = types.ModuleType("torchaudio")
        torchaudio.functional = types.SimpleNamespace(forced_align=forced_align)
        sys.modules["torchaudio"] = torchaudio
    try:
        modules = {
            name: importlib.import_module(f"fireredasr2.{path}")
            for name, path in {
                "aed": "models.fireredasr_aed",
                "lstm_lm": "models.lstm_lm",
                "asr": "asr",
                "feat": "data.asr_feat",
                "llm": "models.fireredasr_llm",
            }.items()
        }
    finally:
        if stubbed:
            del sys.modules["torchaudio"]
    modules["torchaudio_is_real"] = not stubbed
    return types.SimpleNamespace(**modules)


@pytest.fixture(scope="session")
def aed2_tiny_dir(fixtures_dir, tmp_path_factory) -> Path:
    """
    A FireRedASR2-AED directory in the original format: the fixtures' tiny trained AED (which transcribes the
    training utterances) with a random CTC head `ctc.ctc_lo` added, as FireRedASR2's `FireRedAsrAed` stores it.
    """
    import torch

    from fireredasr_hf.conversion.common import load_original_checkpoint

    source = fixtures_dir / "aed-tiny"
    target = tmp_path_factory.mktemp("aed2-tiny") / "FireRedASR2-AED"
    target.mkdir()
    for name in ("cmvn.ark", "dict.txt", "train_bpe1000.model"):
        (target / name).symlink_to(source / name)
    package = load_original_checkpoint(source / "model.pth.tar")
    state_dict = {key: tensor.clone() for key, tensor in package["model_state_dict"].items()}
    generator = torch.Generator().manual_seed(0)
    d_model, vocab_size = package["args"].d_model, package["args"].odim
    state_dict["ctc.ctc_lo.weight"] = torch.randn(vocab_size, d_model, generator=generator) * 0.3
    state_dict["ctc.ctc_lo.bias"] = torch.randn(vocab_size, generator=generator)
    torch.save({"args": package["args"], "model_state_dict": state_dict}, target / "model.pth.tar")
    return target


@pytest.fixture(scope="session")
def converted_aed2_dir(aed2_tiny_dir, tmp_path_factory) -> Path:
    """`aed2_tiny_dir` converted once per test session (float32)."""
    from fireredasr_hf.conversion import convert_checkpoint

    return convert_checkpoint(aed2_tiny_dir, tmp_path_factory.mktemp("aed2-tiny-hf") / "model")


def build_original_punc(
    root: Path, max_positions: int = 40, permute_model_vocab: bool = False, pickle_bert: bool = False
) -> Path:
    """A tiny random FireRedPunc directory in the release's layout: `chinese-lert-base/` (BERT config, vocab,
    pretrained weights the release starts from), `chinese-bert-wwm-ext_vocab.txt`, `out_dict` and `model.pth.tar`
    (`{"args": Namespace, "model_state_dict": bert.* + classifier.*}`). With `permute_model_vocab`, the model's
    vocabulary lists the tokens in another order than the tokenizer's. With `pickle_bert`, `args.bert` is the
    fine-tuned BertModel itself (pooler removed), as the release's training saves its arguments; otherwise None."""
    import argparse
    import json

    import torch
    from transformers import BertConfig, BertModel

    chars = "今天气很好我想去北京看长城们开会吧请把窗户打一下让新鲜空进来这个问题明上午再讨论火车站离里不远"
    chars += "他每早跑步半小时谢大家你世界的是了在有人中国年月日号点分"
    words = "hello world turn on the light let us start meeting speech recognition is a lot of fun see you tomorrow"
    words += " i am"
    pieces = ["##s", "##ing", "##ed", "##lo", "##er", "##t", "##o", "##n", "##e", "##a"]
    digits = [str(d) for d in range(10)] + [f"##{d}" for d in range(10)] + ["2024", "100"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "，", "。", "？", "！", "'", *chars, *words.split()]
    vocab = list(dict.fromkeys([*vocab, *pieces, *digits, *"abcdefghijklmnopqrstuvwxyz"]))
    bert_dir = root / "chinese-lert-base"
    bert_dir.mkdir(parents=True)
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (bert_dir / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=max_positions,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(bert_dir)
    torch.manual_seed(1)
    state = {f"bert.{key}": value for key, value in BertModel(config, add_pooling_layer=False).state_dict().items()}
    state.update({f"classifier.{key}": value for key, value in torch.nn.Linear(32, 5).state_dict().items()})
    model_vocab = list(vocab)
    if permute_model_vocab:
        model_vocab = model_vocab[:5] + model_vocab[5:][::-1]
        order = [vocab.index(token) for token in model_vocab]
        state["bert.embeddings.word_embeddings.weight"] = state["bert.embeddings.word_embeddings.weight"][order].clone()
    (root / "chinese-bert-wwm-ext_vocab.txt").write_text("\n".join(model_vocab) + "\n", encoding="utf-8")
    (root / "out_dict").write_text("<space>\n，\n。\n？\n！\n", encoding="utf-8")
    args = argparse.Namespace(
        odim=5,
        cls_id=model_vocab.index("[CLS]"),
        classifier_dropout=0.1,
        ignore_index=-100,
        pretrained_bert="chinese-lert-base",
        bert=None,
    )
    if pickle_bert:
        # `FireRedPuncBert.from_args`: args.bert = BertModel.from_pretrained(...); args.bert.pooler = None; the model
        # trains it, and its state dict shares the tensors.
        args.bert = BertModel.from_pretrained(bert_dir)
        args.bert.pooler = None
        args.bert.load_state_dict({key[len("bert.") :]: value for key, value in state.items() if key[:5] == "bert."})
        state.update({f"bert.{key}": value for key, value in args.bert.state_dict().items()})
    torch.save({"args": args, "model_state_dict": state}, root / "model.pth.tar")
    return root


@pytest.fixture(scope="session")
def original_punc_dir(tmp_path_factory) -> Path:
    """A tiny random FireRedPunc model in the release's layout (see `build_original_punc`)."""
    return build_original_punc(tmp_path_factory.mktemp("FireRedPunc"))


@pytest.fixture(scope="session")
def converted_punc_dir(original_punc_dir, tmp_path_factory) -> Path:
    from fireredasr_hf.conversion import convert_checkpoint

    return convert_checkpoint(original_punc_dir, tmp_path_factory.mktemp("fireredpunc-hf"))
