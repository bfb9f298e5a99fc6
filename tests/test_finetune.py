"""Fine-tuning: the training entry point on the tiny AED and LLM (the loss goes down, the saved directory loads in
the pipeline), Kaldi and saved-dataset inputs, label smoothing, SpecAugment, the CTC loss, LoRA apply/merge, metrics,
the Trainer checks and a two-process DDP run. The full proof that training learns is scripts/prove_training.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import Seq2SeqTrainingArguments
from transformers.trainer_utils import EvalPrediction

from fireredasr_hf import cli
from fireredasr_hf.finetune import main as finetune_main
from fireredasr_hf.modeling_fireredasr_aed import FireRedAedForConditionalGeneration
from fireredasr_hf.modeling_fireredasr_llm import FireRedLlmForSpeechSeq2Seq
from fireredasr_hf.processing_fireredasr import FireRedAsrProcessor
from fireredasr_hf.training import (
    add_ctc_loss,
    apply_lora,
    build_aed_from_scratch,
    build_compute_metrics,
    build_trainer,
    configure_spec_augment,
    enable_label_smoothing,
    has_lora,
    merge_lora,
    save_fine_tuned_model,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Held out from the tiny models' training, so their loss there is high and fine-tuning has something to learn.
HELD_OUT = ("p09", "p10")


@pytest.fixture(scope="module")
def held_out_dir(fixtures_dir, tmp_path_factory):
    """A Kaldi directory of the two held-out fixture utterances (absolute audio paths)."""
    directory = tmp_path_factory.mktemp("held-out")
    texts = dict(line.split(" ", 1) for line in (fixtures_dir / "audio" / "text").read_text("utf-8").splitlines())
    (directory / "wav.scp").write_text(
        "".join(f"{uttid} {fixtures_dir / 'audio' / f'{uttid}.wav'}\n" for uttid in HELD_OUT), encoding="utf-8"
    )
    (directory / "text").write_text("".join(f"{uttid} {texts[uttid]}\n" for uttid in HELD_OUT), encoding="utf-8")
    return directory


def training_losses(output_dir: Path) -> list[float]:
    history = json.loads((output_dir / "training_history.json").read_text(encoding="utf-8"))
    return [entry["loss"] for entry in history["log_history"] if "loss" in entry]


def finetune_args(model_dir, data_dir, output_dir, *extra) -> list[str]:
    return [
        "--model", str(model_dir),
        "--train-data", str(data_dir),
        "--output-dir", str(output_dir),
        "--per-device-train-batch-size", "2",
        "--logging-steps", "1",
        "--save-steps", "1000",
        "--use-cpu",
        "--seed", "0",
        *extra,
    ]  # fmt: skip


def transcribe(model_dir, audio_path) -> str:
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(model_dir))
    return asr(str(audio_path))["text"]


def test_finetune_aed_lowers_the_loss_and_saves_a_pipeline_directory(
    converted_aed_dir, held_out_dir, fixtures_dir, tmp_path
):
    output_dir = tmp_path / "aed-finetuned"
    args = finetune_args(
        converted_aed_dir, held_out_dir, output_dir,
        "--max-steps", "8", "--learning-rate", "1e-2", "--eval-data", str(held_out_dir), "--eval-on-start",
        "--eval-steps", "8", "--label-smoothing", "0.1", "--spec-augment", "--generation-num-beams", "1",
    )  # fmt: skip
    assert finetune_main(args) == 0
    losses = training_losses(output_dir)
    assert len(losses) == 8 and np.mean(losses[-2:]) < 0.6 * np.mean(losses[:2]), losses
    history = json.loads((output_dir / "training_history.json").read_text(encoding="utf-8"))
    evaluations = [entry for entry in history["log_history"] if "eval_loss" in entry]
    assert evaluations[-1]["eval_loss"] < 0.6 * evaluations[0]["eval_loss"]
    assert {"eval_mer", "eval_cer"} <= set(evaluations[0])  # no English-only utterance: no WER

    # The converted model had remote code; the fine-tuned one keeps it, next to the processor files.
    for name in ("modeling_fireredasr_aed.py", "processor_config.json", "dict.txt", "generation_config.json"):
        assert (output_dir / name).is_file(), name
    config = json.loads((output_dir / "config.json").read_text())
    assert config["encoder_config"]["apply_spec_augment"] is True
    assert isinstance(transcribe(output_dir, fixtures_dir / "audio" / "p09.wav"), str)


def test_finetune_llm_with_lora_saves_merged_weights(converted_llm_dir, held_out_dir, fixtures_dir, tmp_path):
    output_dir = tmp_path / "llm-finetuned"
    args = finetune_args(
        converted_llm_dir, held_out_dir, output_dir, "--max-steps", "6", "--learning-rate", "2e-3",
        "--eval-data", str(held_out_dir), "--eval-steps", "6", "--generation-num-beams", "1",
    )  # fmt: skip
    assert finetune_main(args) == 0
    losses = training_losses(output_dir)
    assert np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2]), losses

    weights = load_file(output_dir / "model.safetensors")
    assert not [key for key in weights if "lora" in key or "base_layer" in key]
    original = load_file(converted_llm_dir / "model.safetensors")
    assert set(weights) == set(original)
    # LoRA merged into the language model; encoder and adapter trained as well (the release's recipe).
    for key in (
        "language_model.model.layers.0.self_attn.q_proj.weight",
        "encoder.layers.0.self_attn.q_proj.weight",
        "adapter.linear1.weight",
    ):
        assert not torch.equal(weights[key], original[key]), key
    assert torch.equal(weights["language_model.model.norm.weight"], original["language_model.model.norm.weight"])
    for name in ("modeling_fireredasr_llm.py", "pipeline_fireredasr.py", "processor_config.json", "tokenizer.json"):
        assert (output_dir / name).is_file(), name
    # Evaluation did not write transformers' defaults (max_length 20 would cap the LLM's transcripts) into it.
    saved, started = (json.loads((d / "generation_config.json").read_text()) for d in (output_dir, converted_llm_dir))
    assert saved == started
    assert isinstance(transcribe(output_dir, fixtures_dir / "audio" / "p09.wav"), str)


def test_finetune_with_ctc_weight_saves_the_new_head_of_a_v1_model(
    converted_aed_dir, held_out_dir, fixtures_dir, tmp_path, capsys
):
    output_dir = tmp_path / "aed-ctc"
    args = finetune_args(converted_aed_dir, held_out_dir, output_dir, "--max-steps", "2", "--ctc-weight", "0.3")
    assert finetune_main(args) == 0
    assert "--ctc-weight adds a freshly initialised one" in capsys.readouterr().out
    config = json.loads((output_dir / "config.json").read_text())
    assert (config["use_ctc_head"], config["ctc_loss_weight"]) == (True, 0.3)
    assert "ctc_head.weight" in load_file(output_dir / "model.safetensors")
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(output_dir))
    result = asr(str(fixtures_dir / "audio" / "p01.wav"), return_timestamps="word", vad="energy")
    assert all(len(chunk["timestamp"]) == 2 for chunk in result["chunks"])


def test_finetune_refuses_options_of_the_other_variant(converted_aed_dir, held_out_dir, tmp_path, capsys):
    args = finetune_args(converted_aed_dir, held_out_dir, tmp_path / "out", "--freeze-adapter")
    assert finetune_main(args) == 2
    assert "--freeze-adapter applies to FireRedASR-LLM" in capsys.readouterr().err
    # The same through the `fireredasr-hf finetune` subcommand.
    args = finetune_args(converted_aed_dir, tmp_path / "missing", tmp_path / "out")
    assert cli.main(["finetune", *args]) == 2
    assert "fireredasr-hf finetune: error:" in (error := capsys.readouterr().err)
    assert "neither a Kaldi data directory" in error


def test_finetune_reads_a_dataset_saved_to_disk(converted_aed_dir, held_out_dir, tmp_path, capsys):
    from datasets import Audio, Dataset, DatasetDict

    kaldi = dict(line.split(" ", 1) for line in (held_out_dir / "wav.scp").read_text("utf-8").splitlines())
    texts = dict(line.split(" ", 1) for line in (held_out_dir / "text").read_text("utf-8").splitlines())
    dataset = Dataset.from_dict({"speech": list(kaldi.values()), "sentence": [texts[uttid] for uttid in kaldi]})
    dataset = dataset.cast_column("speech", Audio(sampling_rate=16000))
    DatasetDict({"train": dataset, "dev": dataset}).save_to_disk(tmp_path / "dataset")
    columns = ["--audio-column", "speech", "--text-column", "sentence", "--max-steps", "1"]
    args = finetune_args(converted_aed_dir, tmp_path / "dataset", tmp_path / "out", *columns, "--train-split", "train")
    assert finetune_main(args) == 0
    assert len(training_losses(tmp_path / "out")) == 1
    args = finetune_args(converted_aed_dir, tmp_path / "dataset", tmp_path / "out", *columns)
    assert finetune_main(args) == 2
    assert "choose one with --train-split" in capsys.readouterr().err


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_label_smoothing_of_the_aed_loss(converted_aed_dir, label_smoothing):
    model = FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir).eval()
    features = torch.randn(2, 50, 80)
    labels = torch.tensor([[10, 11, 12, 4], [13, 4, -100, -100]])
    enable_label_smoothing(model, label_smoothing)
    outputs = model(input_features=features, labels=labels)
    expected = torch.nn.functional.cross_entropy(
        outputs.logits.reshape(-1, model.config.vocab_size), labels.reshape(-1), label_smoothing=label_smoothing
    )
    torch.testing.assert_close(outputs.loss, expected)


def test_label_smoothing_of_the_llm_loss_covers_the_transcript_only(converted_llm_dir):
    model = FireRedLlmForSpeechSeq2Seq.from_pretrained(converted_llm_dir).eval()
    features, mask = torch.randn(2, 60, 80), torch.ones(2, 60, dtype=torch.long)
    mask[1, 40:] = 0
    labels = torch.tensor([[100, 101, 102], [103, -100, -100]])
    enable_label_smoothing(model, 0.2)
    outputs = model(input_features=features, attention_mask=mask, labels=labels)
    speech_lengths = model.get_audio_features(features, mask).speech_lengths
    _, _, full_labels = model.build_training_inputs(labels, speech_lengths)
    expected = torch.nn.functional.cross_entropy(
        outputs.logits[:, :-1].reshape(-1, outputs.logits.shape[-1]),
        full_labels[:, 1:].reshape(-1),
        label_smoothing=0.2,
    )
    torch.testing.assert_close(outputs.loss, expected)
    enable_label_smoothing(model, 0.0)
    assert model(input_features=features, attention_mask=mask, labels=labels).loss < outputs.loss
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        enable_label_smoothing(model, 1.0)


def test_spec_augment_masks_in_training_only(converted_aed_dir):
    model = FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir)
    configure_spec_augment(model, mask_time_prob=0.3, mask_time_length=5, mask_feature_prob=0.2, mask_feature_length=8)
    seen = []
    model.model.encoder.subsampling.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].clone()))
    features = torch.randn(2, 100, 80) + 5.0  # no zeros of its own
    mask = torch.ones(2, 100, dtype=torch.long)
    mask[1, 60:] = 0
    features[1, 60:] = 0.0
    model.train()
    model.model.encoder(features, attention_mask=mask)
    masked = seen[-1] == 0
    assert 0.1 <= masked[0].all(-1).float().mean() <= 0.3  # whole frames: time masks (spans may overlap)
    assert masked[0].all(0).sum() >= 8  # whole bins: a frequency band
    assert masked[1, 60:].all()  # the padding stays padding
    model.model.encoder(features[:, :4])  # shorter than a time mask: no time mask, no error
    model.eval()
    model.model.encoder(features, attention_mask=mask)
    assert torch.equal(seen[-1], features)
    with pytest.raises(ValueError, match="mask_time_prob must be in"):
        configure_spec_augment(model, mask_time_prob=1.5)
    with pytest.raises(ValueError, match="unknown SpecAugment settings"):
        configure_spec_augment(model, mask_prob=0.1)


def test_ctc_loss_adds_a_declared_head_to_a_v1_model_and_saves_it(converted_aed_dir, tmp_path, caplog):
    model = FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir).eval()
    processor = FireRedAsrProcessor.from_pretrained(converted_aed_dir)
    features, mask = torch.randn(2, 80, 80), torch.ones(2, 80, dtype=torch.long)
    mask[1, 50:] = 0
    labels = torch.tensor([[10, 11, 12, 4], [13, 4, -100, -100]])
    attention_loss = model(input_features=features, attention_mask=mask, labels=labels).loss
    assert model.ctc_head is None
    with caplog.at_level("WARNING"):
        add_ctc_loss(model, ctc_weight=0.25)
    assert "freshly initialised" in caplog.text
    assert type(model) is FireRedAedForConditionalGeneration
    assert (model.config.use_ctc_head, model.config.ctc_loss_weight, model.config.ctc_blank_id) == (True, 0.25, 0)
    encoder_outputs = model.model.encoder(features, attention_mask=mask)
    log_probs = model.ctc_head(encoder_outputs.last_hidden_state).log_softmax(-1)
    ctc_sum = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), torch.tensor([10, 11, 12, 13]), torch.tensor([20, 13]), torch.tensor([3, 1]),
        reduction="sum",
    )  # fmt: skip
    loss = model(input_features=features, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(loss, 0.75 * attention_loss + 0.25 * ctc_sum / 6)
    assert model.generate(features, attention_mask=mask, max_new_tokens=3).shape[0] == 2

    save_fine_tuned_model(model, processor, tmp_path / "saved")
    saved = load_file(tmp_path / "saved" / "model.safetensors")
    assert torch.equal(saved["ctc_head.weight"], model.ctc_head.weight)
    reloaded = FireRedAedForConditionalGeneration.from_pretrained(tmp_path / "saved")
    assert reloaded.config.use_ctc_head and torch.equal(reloaded.ctc_head.bias, model.ctc_head.bias)
    out = reloaded.generate(features[:1], max_new_tokens=3, return_token_timestamps=True)
    assert out.token_timestamps.shape[:2] == out.sequences.shape
    with pytest.raises(ValueError, match="ctc_weight must be in"):
        add_ctc_loss(model, ctc_weight=1.0)
    with pytest.raises(TypeError, match="for FireRedASR-AED"):
        add_ctc_loss(torch.nn.Linear(2, 2))


def test_ctc_loss_keeps_the_head_a_v2_model_declares(converted_aed2_dir):
    model = FireRedAedForConditionalGeneration.from_pretrained(converted_aed2_dir)
    head = model.ctc_head.weight.detach().clone()
    add_ctc_loss(model, ctc_weight=0.3)
    assert torch.equal(model.ctc_head.weight, head) and model.config.ctc_loss_weight == 0.3
    with pytest.raises(ValueError, match="blank id 0, not 5"):
        add_ctc_loss(model, ctc_weight=0.3, blank_token_id=5)
    # Without the CTC loss the head takes no part in training: frozen, so that DDP finds no unused parameter.
    model.config.ctc_loss_weight = 0.0
    from fireredasr_hf.training import freeze_unused_parameters

    freeze_unused_parameters(model)
    assert not model.ctc_head.weight.requires_grad and model.proj_out.weight.requires_grad


def test_lora_on_the_llm_trains_the_language_model_adapters_and_merges_exactly(converted_llm_dir):
    model = FireRedLlmForSpeechSeq2Seq.from_pretrained(converted_llm_dir).eval()
    original_keys = set(model.state_dict())
    apply_lora(model)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    lm_trainable = {name for name in trainable if name.startswith("language_model.")}
    assert lm_trainable and all("lora_" in name for name in lm_trainable)
    assert len(lm_trainable) == 2 * 7 * model.config.text_config.num_hidden_layers
    assert {name.split(".")[0] for name in trainable} == {"language_model", "encoder", "adapter"}

    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    features = torch.randn(1, 60, 80)
    labels = torch.tensor([[100, 101, 102]])
    with torch.no_grad():
        adapted = model(input_features=features, labels=labels).logits
        merge_lora(model)
        merged = model(input_features=features, labels=labels).logits
    assert not has_lora(model) and set(model.state_dict()) == original_keys
    torch.testing.assert_close(merged, adapted, atol=1e-4, rtol=1e-4)

    with pytest.raises(ValueError, match="no LoRA adapters"):
        merge_lora(model)
    with pytest.raises(ValueError, match="no module of the model matches"):
        apply_lora(model, target_modules=["to_q"])
    with pytest.raises(ValueError, match="must be nn.Linear"):
        apply_lora(model, target_modules=["layers"], modules_prefix="encoder")


def test_lora_on_the_aed_decoder_only_and_save(converted_aed_dir, tmp_path, fixtures_dir):
    model = FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir)
    processor = FireRedAsrProcessor.from_pretrained(converted_aed_dir)
    apply_lora(model, r=4, alpha=8, target_modules=["fc1", "fc2"], modules_prefix="model.decoder")
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert [name for name in trainable if name.startswith("model.decoder.")] == [
        name for name in trainable if name.startswith("model.decoder.") and "lora_" in name
    ]
    assert any(name.startswith("model.encoder.") for name in trainable)  # outside the prefix: untouched
    save_fine_tuned_model(model, processor, tmp_path / "saved")
    reloaded = FireRedAedForConditionalGeneration.from_pretrained(tmp_path / "saved")
    assert set(reloaded.state_dict()) == set(
        FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir).state_dict()
    )


def test_compute_metrics_decodes_generated_ids_and_labels(fixtures_dir):
    _, processor = build_aed_from_scratch(fixtures_dir / "aed-tiny", hidden_size=32, encoder_layers=1)
    tokenizer = processor.tokenizer
    references = ["今天天气很好", "turn on the light"]
    hypotheses = ["今天天气好", "turn on the light"]
    labels = processor(text=references)["labels"]
    generated = [[3] + tokenizer(text)["input_ids"] for text in hypotheses]  # <sos> ... <eos>
    width = max(map(len, generated)) + 2
    predictions = np.array([ids + [-100] * (width - len(ids)) for ids in generated])
    metrics = build_compute_metrics(tokenizer)(EvalPrediction(predictions=predictions, label_ids=np.array(labels)))
    assert metrics == {"mer": pytest.approx(1 / 10), "cer": pytest.approx(1 / 6), "wer": 0.0}
    with pytest.raises(ValueError, match="predict_with_generate=True"):
        build_compute_metrics(tokenizer)(EvalPrediction(predictions=np.zeros((2, 3, 5)), label_ids=np.array(labels)))


def test_build_trainer_refuses_settings_that_break_fireredasr_training(converted_aed_dir, tmp_path):
    model = FireRedAedForConditionalGeneration.from_pretrained(converted_aed_dir)
    processor = FireRedAsrProcessor.from_pretrained(converted_aed_dir)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        build_trainer(model, processor, Seq2SeqTrainingArguments(tmp_path, use_cpu=True, report_to="none"))
    arguments = Seq2SeqTrainingArguments(
        tmp_path, use_cpu=True, report_to="none", remove_unused_columns=False, label_smoothing_factor=0.1
    )
    with pytest.raises(ValueError, match="enable_label_smoothing"):
        build_trainer(model, processor, arguments)


def test_build_aed_from_scratch_matches_the_vocabulary(fixtures_dir):
    model, processor = build_aed_from_scratch(fixtures_dir / "aed-tiny", hidden_size=32, encoder_layers=1, seed=0)
    assert model.config.vocab_size == len(processor.tokenizer) == 142
    assert model.generation_config.num_beams == 1
    with pytest.raises(FileNotFoundError, match="cmvn.ark"):
        build_aed_from_scratch(fixtures_dir / "audio")


def test_two_process_ddp_on_cpu(converted_aed_dir, held_out_dir, tmp_path):
    """`scripts/ddp_smoke.sh`: two gloo processes fine-tune the tiny AED; both take part in every step."""
    output_dir = tmp_path / "ddp"
    environment = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "ddp_smoke.sh"), str(converted_aed_dir), str(held_out_dir), str(output_dir)],
        check=False, capture_output=True, text=True, env=environment, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "world size 2" in result.stdout
    assert (output_dir / "model.safetensors").is_file()
    assert len(training_losses(output_dir)) == 2
