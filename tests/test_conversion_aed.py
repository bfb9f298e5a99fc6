"""Conversion of original FireRedASR-AED checkpoints: strictness, tied weights, dtypes, sharding, model card, and
live parity with the original code on randomly initialised weights of a non-trivial configuration."""

import argparse
import json
import shutil

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForSpeechSeq2Seq

import fireredasr_hf  # noqa: F401
from fireredasr_hf.conversion import ConversionError, convert_checkpoint, detect_variant


def copy_original(fixtures_dir, tmp_path, edit_state_dict=None):
    """A copy of the tiny original AED directory, optionally with an edited state dict."""
    target = tmp_path / "original"
    shutil.copytree(fixtures_dir / "aed-tiny", target)
    if edit_state_dict is not None:
        package = torch.load(target / "model.pth.tar", map_location="cpu", weights_only=False)
        edit_state_dict(package["model_state_dict"])
        torch.save(package, target / "model.pth.tar")
    return target


def test_missing_tensor_is_named(fixtures_dir, tmp_path):
    original = copy_original(fixtures_dir, tmp_path, lambda sd: sd.pop("encoder.layer_stack.1.conv.batch_norm.bias"))
    with pytest.raises(ConversionError, match=r"model\.encoder\.layers\.1\.conv\.depthwise_layer_norm\.bias"):
        convert_checkpoint(original, tmp_path / "out")


def test_extra_tensor_is_named(fixtures_dir, tmp_path):
    original = copy_original(
        fixtures_dir, tmp_path, lambda sd: sd.__setitem__("decoder.layer_stack.0.extra.weight", torch.zeros(2))
    )
    with pytest.raises(ConversionError, match=r"layer_stack\.0\.extra\.weight"):
        convert_checkpoint(original, tmp_path / "out")


def test_wrong_directory_lists_what_was_found(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ConversionError, match="found: weights.bin"):
        detect_variant(tmp_path)
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "model.pth.tar").write_bytes(b"")
    with pytest.raises(ConversionError, match="missing cmvn.ark, dict.txt, train_bpe1000.model"):
        convert_checkpoint(incomplete, tmp_path / "out")


def test_projection_is_the_effective_tied_matrix(fixtures_dir, tmp_path, capsys):
    """The release stores the tied matrix twice and loads tgt_word_prj last: that copy is the one that counts."""

    def untie(state_dict):
        state_dict["decoder.tgt_word_emb.weight"] = state_dict["decoder.tgt_word_emb.weight"].clone() + 1.0

    original = copy_original(fixtures_dir, tmp_path, untie)
    output = convert_checkpoint(original, tmp_path / "out")
    assert "tgt_word_emb.weight differs from decoder.tgt_word_prj.weight" in capsys.readouterr().out
    projection = torch.load(original / "model.pth.tar", weights_only=False)["model_state_dict"][
        "decoder.tgt_word_prj.weight"
    ]
    model = AutoModelForSpeechSeq2Seq.from_pretrained(output)
    assert torch.equal(model.proj_out.weight, projection)
    assert torch.equal(model.model.decoder.embed_tokens.weight, projection)


def test_dtype_sharding_and_model_card(fixtures_dir, tmp_path):
    output = convert_checkpoint(fixtures_dir / "aed-tiny", tmp_path / "out", dtype="bfloat16", max_shard_size="300KB")
    index = json.loads((output / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    with safe_open(output / shards[0], "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.bfloat16
    assert "proj_out.weight" not in index["weight_map"]
    model = AutoModelForSpeechSeq2Seq.from_pretrained(output)
    assert model.dtype == torch.bfloat16
    card = (output / "README.md").read_text()
    assert "pipeline_tag: automatic-speech-recognition" in card and "60 s" in card
    # The tiny model is no released checkpoint: its card claims no published results (tests/test_model_card.py).
    assert "model-index" not in card and "424k parameters" in card
    config = json.loads((output / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSpeechSeq2Seq"].startswith("modeling_fireredasr_aed.")
    for name in (
        "modeling_fireredasr_aed.py",
        "modeling_fireredasr_encoder.py",
        "generation_fireredasr.py",
        "feature_extraction_fireredasr.py",
        "tokenization_fireredasr.py",
        "processing_fireredasr.py",
    ):
        assert (output / name).is_file()


def test_live_parity_with_the_original_code_on_random_weights(fixtures_dir, tmp_path):
    """A random original model with 3 heads of 24 dims (scaling not a power of two), 3+2 layers, kernel 7."""
    fireredasr_aed = pytest.importorskip("fireredasr.models.fireredasr_aed", reason="original code not installed")
    args = argparse.Namespace(
        idim=80,
        n_layers_enc=3,
        n_layers_dec=2,
        n_head=3,
        d_model=72,
        residual_dropout=0.1,
        dropout_rate=0.1,
        kernel_size=7,
        pe_maxlen=5000,
        sos_id=3,
        eos_id=4,
        pad_id=2,
        odim=142,
        blank_id=0,
    )
    torch.manual_seed(0)
    original = fireredasr_aed.FireRedAsrAed.from_args(args).eval()
    with torch.no_grad():  # make <eos> likely so hypotheses end at data-dependent lengths
        original.decoder.tgt_word_prj.weight[4] *= 3.0
    directory = tmp_path / "random-original"
    shutil.copytree(fixtures_dir / "aed-tiny", directory)
    torch.save({"args": args, "model_state_dict": original.state_dict()}, directory / "model.pth.tar")
    model = AutoModelForSpeechSeq2Seq.from_pretrained(convert_checkpoint(directory, tmp_path / "out")).eval()

    torch.manual_seed(1)
    lengths = torch.tensor([203, 157, 96])
    feats = torch.randn(3, 203, 80)
    attention_mask = (torch.arange(203) < lengths[:, None]).long()
    feats = feats * attention_mask[..., None]
    with torch.no_grad():
        enc, enc_lengths, enc_mask = original.encoder(feats, lengths)
        ours = model.get_encoder()(feats, attention_mask=attention_mask)
        valid = enc_mask[:, 0].bool()
        assert torch.equal(ours.attention_mask.bool(), valid)
        assert (ours.last_hidden_state - enc)[valid].abs().max().item() < 1e-4

    for n in range(3):  # batch size 1, the original's own semantics
        single = feats[n : n + 1, : lengths[n]]
        expected = original.transcribe(
            single,
            lengths[n : n + 1],
            beam_size=3,
            nbest=2,
            softmax_smoothing=1.25,
            length_penalty=0.6,
            eos_penalty=0.9,
        )[0]
        out = model.generate(
            single,
            num_beams=3,
            num_return_sequences=2,
            softmax_smoothing=1.25,
            gnmt_length_penalty=0.6,
            eos_penalty=0.9,
        )
        for rank, hypothesis in enumerate(expected):
            sequence = out[rank].tolist()
            end = sequence.index(4) if 4 in sequence else len(sequence)
            ids = [t for t in sequence[1:end]]
            expected_ids = hypothesis["yseq"].tolist()
            assert ids[: len(expected_ids)] == expected_ids and all(t == 2 for t in ids[len(expected_ids) :])
