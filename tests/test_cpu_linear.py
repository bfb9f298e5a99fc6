"""float32 linear layers through oneDNN (`fireredasr_hf.cpu_linear`): the same products as nn.Linear, the original's
n-best lists on the fixture AED, and the loader's choice."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from transformers import AutoModelForSpeechSeq2Seq

from fireredasr_hf import cpu_linear
from fireredasr_hf.cpu_linear import OneDnnLinear, onednn_linear_available, use_onednn_linear
from fireredasr_hf.hub import load_asr_pipeline

pytestmark = pytest.mark.skipif(not onednn_linear_available(), reason="this PyTorch build has no oneDNN")
UTTERANCES = [f"p{i:02d}" for i in range(1, 11)]


def test_onednn_linear_computes_what_nn_linear_does():
    torch.manual_seed(0)
    plain = nn.Linear(64, 96)
    layer = nn.Linear(64, 96)
    layer.load_state_dict(plain.state_dict())
    model = nn.Sequential(layer, nn.ReLU(), nn.Sequential(nn.Linear(96, 8, bias=False)))
    assert use_onednn_linear(model) == 2
    assert type(layer) is OneDnnLinear and isinstance(layer, nn.Linear)
    assert model.state_dict().keys() == {"0.weight", "0.bias", "2.0.weight"}
    for shape in [(3, 64), (2, 5, 64), (1, 1, 1, 64)]:
        inputs = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(layer(inputs), plain(inputs), rtol=1e-5, atol=1e-5)
        assert layer(inputs).grad_fn is not None  # with gradients: PyTorch's own path
    with torch.no_grad():  # other dtypes: PyTorch's own path
        assert layer.to(torch.bfloat16)(torch.randn(2, 64, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_packed_layers_compute_what_nn_linear_does_and_refuse_training():
    torch.manual_seed(0)
    for dtype, tolerance in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        plain = nn.Linear(64, 96).to(dtype)
        tied = nn.Linear(96, 64, bias=False).to(dtype)
        embedding = nn.Embedding(64, 96).to(dtype)
        tied.weight = embedding.weight
        model = nn.ModuleDict({"linear": nn.Linear(64, 96).to(dtype), "tied": tied, "embedding": embedding})
        model["linear"].load_state_dict(plain.state_dict())
        assert use_onednn_linear(model, prepack=True) == 2
        assert model["linear"].weight.numel() == 0 and model["linear"].packed_weight is not None  # released
        assert model["tied"].weight is embedding.weight and embedding.weight.numel() == 64 * 96  # packed as a copy
        inputs = torch.randn(2, 3, 64, dtype=dtype)
        with torch.no_grad():
            torch.testing.assert_close(model["linear"](inputs), plain(inputs), rtol=tolerance, atol=tolerance)
            hidden = torch.randn(5, 96, dtype=dtype)
            expected = hidden @ embedding.weight.t()
            torch.testing.assert_close(model["tied"](hidden), expected, rtol=tolerance, atol=tolerance)
        with pytest.raises(RuntimeError, match="packed for CPU inference"):
            model["linear"](inputs)  # gradients on
        assert model["tied"](hidden).grad_fn is not None  # the plain weight is still there


def test_fixture_aed_gives_the_original_nbest_with_onednn_linear(converted_aed_dir, fixtures_dir):
    golden = fixtures_dir / "golden" / "aed-tiny"
    feats = np.load(golden / "features.npz")
    decode = json.loads((golden / "decode.json").read_text())["decode"]["b"]["bs1"]
    model = AutoModelForSpeechSeq2Seq.from_pretrained(converted_aed_dir).eval()
    assert use_onednn_linear(model, prepack=True) > 0
    for utt in UTTERANCES:
        inputs = torch.from_numpy(feats[f"feats.{utt}"]).unsqueeze(0)
        out = model.generate(inputs, num_beams=3, num_return_sequences=3, return_dict_in_generate=True)
        for rank, hypothesis in enumerate(decode[utt]["nbest"]):
            ids = out.sequences[rank].tolist()[1:]
            ids = ids[: ids.index(4)] if 4 in ids else [token for token in ids if token != 2]
            assert ids == hypothesis["ids"], (utt, rank)
            assert out.sequences_scores[rank].item() == pytest.approx(hypothesis["score"], abs=1e-4)


@pytest.mark.parametrize(
    ("choice", "amd", "expected"),
    [("auto", True, True), ("auto", False, False), ("onednn", False, True), ("pytorch", True, False)],
)
def test_loader_uses_onednn_on_amd_cpus_or_when_asked(converted_aed_dir, monkeypatch, choice, amd, expected):
    monkeypatch.setattr(cpu_linear, "cpu_vendor", lambda: "AuthenticAMD" if amd else "GenuineIntel")
    asr = load_asr_pipeline(converted_aed_dir, device="cpu", cpu_linear=choice)
    assert any(type(module) is OneDnnLinear for module in asr.model.modules()) == expected


def test_loader_refuses_an_unknown_choice(converted_aed_dir):
    with pytest.raises(ValueError, match="cpu_linear must be one of"):
        load_asr_pipeline(converted_aed_dir, device="cpu", cpu_linear="mkl")
