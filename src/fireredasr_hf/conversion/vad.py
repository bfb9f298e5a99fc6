# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The released FireRedVAD models (VAD, Stream-VAD, AED) in their original forms, and their conversion.

Two original forms exist:

- the PyTorch checkpoints of the Hub repository FireRedTeam/FireRedVAD: `VAD/`, `Stream-VAD/` and `AED/`, each with
  `model.pth.tar` (`{"args": argparse.Namespace(idim, R, M, H, P, N1, S1, N2, S2, dropout, odim), "model_state_dict"}`)
  and `cmvn.ark`;
- the ONNX exports of the GitHub repository (`fireredvad_vad.onnx`, `fireredvad_stream_vad_with_cache.onnx`,
  `fireredvad_aed.onnx` next to one `cmvn.ark`). Their weights are read from the graph initializers with the `onnx`
  package (nothing is executed): Linear weights are stored transposed under anonymous names and are found through
  the MatMul node that uses them, whose name carries the module path.
"""

import argparse
import re
from pathlib import Path

import torch

from ..configuration_fireredvad import AUDIO_EVENT_LABELS, KIND_DIRS, VAD_KINDS, VAD_LABELS, FireRedVadConfig
from ..feature_extraction_fireredasr import FireRedAsrFeatureExtractor
from ..modeling_fireredvad import FireRedVadForAudioFrameClassification
from ..vad import save_vad_model
from .common import ConversionError, check_all_used, load_original_checkpoint, rename_keys, required_arg

# The ONNX export of each released model in the GitHub repository.
KIND_ONNX_FILES = {
    "vad": "fireredvad_vad.onnx",
    "stream-vad": "fireredvad_stream_vad_with_cache.onnx",
    "aed": "fireredvad_aed.onnx",
}
VAD_FILES = ("model.pth.tar", "cmvn.ark")
CMVN_FILE = "cmvn.ark"

# (original regex, our name); the DNN layers are every third module of an nn.Sequential(Linear, ReLU, Dropout, ...).
VAD_KEY_RENAMES = [
    (r"^dfsmn\.fc1\.0\.", "model.input_linear."),
    (r"^dfsmn\.fc2\.0\.", "model.input_projection."),
    (r"^dfsmn\.fsmn1\.lookback_filter\.", "model.input_memory.lookback_conv."),
    (r"^dfsmn\.fsmn1\.lookahead_filter\.", "model.input_memory.lookahead_conv."),
    (r"^dfsmn\.fsmns\.(\d+)\.fc1\.0\.", r"model.blocks.\1.linear."),
    (r"^dfsmn\.fsmns\.(\d+)\.fc2\.", r"model.blocks.\1.projection."),
    (r"^dfsmn\.fsmns\.(\d+)\.fsmn\.lookback_filter\.", r"model.blocks.\1.memory.lookback_conv."),
    (r"^dfsmn\.fsmns\.(\d+)\.fsmn\.lookahead_filter\.", r"model.blocks.\1.memory.lookahead_conv."),
    (r"^dfsmn\.dnns\.(\d+)\.", r"model.output_layers.\1."),  # renumbered below
    (r"^out\.", "classifier."),
]


def labels_for(num_labels: int) -> dict[int, str]:
    if num_labels == len(VAD_LABELS):
        return dict(VAD_LABELS)
    if num_labels == len(AUDIO_EVENT_LABELS):
        return dict(AUDIO_EVENT_LABELS)
    return {index: f"label_{index}" for index in range(num_labels)}


def vad_config_from_args(args: argparse.Namespace, source: str) -> FireRedVadConfig:
    return FireRedVadConfig(
        num_mel_bins=required_arg(args, "idim", source),
        num_blocks=required_arg(args, "R", source),
        num_dnn_layers=required_arg(args, "M", source),
        hidden_size=required_arg(args, "H", source),
        projection_size=required_arg(args, "P", source),
        lookback_order=required_arg(args, "N1", source),
        lookback_stride=required_arg(args, "S1", source),
        lookahead_order=getattr(args, "N2", 0),
        lookahead_stride=getattr(args, "S2", 0) or 1,
        dropout=float(getattr(args, "dropout", 0.1)),
        id2label=labels_for(required_arg(args, "odim", source)),
    )


def convert_vad_state_dict(state_dict: dict) -> dict[str, torch.Tensor]:
    """Our state dict from an original DetectModel one (every key mapped or refused)."""
    converted = {}
    for old, new in rename_keys(state_dict, VAD_KEY_RENAMES, set(), "FireRedVAD model").items():
        dnn = re.match(r"^model\.output_layers\.(\d+)\.(\w+)$", new)
        if dnn:  # module i of Sequential(Linear, ReLU, Dropout, Linear, ...) is Linear number i / 3
            if int(dnn[1]) % 3:
                raise ConversionError(f"Unexpected tensor in the original FireRedVAD model: `{old}`.")
            new = f"model.output_layers.{int(dnn[1]) // 3}.{dnn[2]}"
        converted[new] = state_dict[old]
    return converted


def build_vad_model(config: FireRedVadConfig, state_dict: dict, source: str) -> FireRedVadForAudioFrameClassification:
    """The model with the converted weights (float32, eval mode), every weight checked to be present and used."""
    converted = convert_vad_state_dict(state_dict)
    model = FireRedVadForAudioFrameClassification(config)
    expected = model.state_dict()
    check_all_used(set(expected), set(converted), f"FireRedVAD model ({source})")
    for key, tensor in converted.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ConversionError(
                f"{source}: `{key}` has shape {tuple(tensor.shape)}, the configuration expects "
                f"{tuple(expected[key].shape)}."
            )
    model.load_state_dict({key: tensor.float() for key, tensor in converted.items()}, strict=True)
    return model.eval()


# ---- ONNX ----------------------------------------------------------------------------------------------------------


def read_onnx_weights(onnx_file: Path) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """The original state dict of a FireRedVAD ONNX export, and the convolution dilations (`S1`, `S2`)."""
    from ..extras import require

    require("vad", f"Reading FireRedVAD's ONNX export {onnx_file}", ["onnx"])
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(onnx_file)).graph
    except Exception as error:  # onnx raises DecodeError and others from protobuf
        raise ConversionError(f"{onnx_file} is not a readable ONNX model: {error}") from None
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    state_dict, dilations = {}, {}
    for name, tensor in initializers.items():
        if name.startswith("model.") and tensor.data_type == onnx.TensorProto.FLOAT:
            state_dict[name[len("model.") :]] = torch.from_numpy(numpy_helper.to_array(tensor).copy())
    for node in graph.node:
        weights = [name for name in node.input if name in initializers]
        if node.op_type == "MatMul" and weights and not weights[0].startswith("model."):
            # "/model/dfsmn/fsmns.0/fc1/fc1.0/MatMul" -> "dfsmn.fsmns.0.fc1.0" (a child scope repeats its parent).
            path: list[str] = []
            for part in node.name.split("/")[2:-1]:
                if path and part.startswith(path[-1] + "."):
                    path[-1] = part
                else:
                    path.append(part)
            # torch exports Linear(x) as MatMul(x, weight.T) + bias.
            matrix = numpy_helper.to_array(initializers[weights[0]])
            state_dict[".".join(path) + ".weight"] = torch.from_numpy(matrix.T.copy())
        elif node.op_type == "Conv" and "/fsmn1/" in node.name:
            attributes = {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}
            key = "S1" if "lookback" in node.name else "S2"
            dilations[key] = int(attributes.get("dilations", [1])[0])
    if "dfsmn.fc1.0.weight" not in state_dict or "out.weight" not in state_dict:
        raise ConversionError(
            f"{onnx_file} is not a FireRedVAD ONNX export (no DFSMN input layer or output layer found)."
        )
    return state_dict, dilations


def args_from_state_dict(state_dict: dict, dilations: dict[str, int]) -> argparse.Namespace:
    """The original model arguments implied by the tensor shapes (the ONNX files do not store them)."""
    hidden_size, num_mel_bins = state_dict["dfsmn.fc1.0.weight"].shape
    projection_size = state_dict["dfsmn.fc2.0.weight"].shape[0]
    lookahead = state_dict.get("dfsmn.fsmn1.lookahead_filter.weight")
    return argparse.Namespace(
        idim=num_mel_bins,
        R=1 + len({key.split(".")[2] for key in state_dict if key.startswith("dfsmn.fsmns.")}),
        M=len({key for key in state_dict if re.match(r"^dfsmn\.dnns\.\d+\.weight$", key)}),
        H=hidden_size,
        P=projection_size,
        N1=state_dict["dfsmn.fsmn1.lookback_filter.weight"].shape[-1],
        S1=dilations.get("S1", 1),
        N2=lookahead.shape[-1] if lookahead is not None else 0,
        S2=dilations.get("S2", 1) if lookahead is not None else 0,
        dropout=0.1,  # training-only, not exported
        odim=state_dict["out.weight"].shape[0],
    )


# ---- Loading and converting ----------------------------------------------------------------------------------------


def find_original_vad(path: Path, kind: str) -> tuple[str, Path, Path] | None:
    """`("onnx" | "pth", model file, cmvn.ark)` of the `kind` model in an original directory, or None.

    A directory may be one model's folder (`model.pth.tar` + `cmvn.ark`), the Hub repository's root (with `VAD/`,
    `Stream-VAD/`, `AED/`) or a folder of the ONNX exports with one `cmvn.ark`.
    """
    if kind not in VAD_KINDS:
        raise ValueError(f"kind must be one of {', '.join(VAD_KINDS)}, got {kind!r}")
    onnx_file = path / KIND_ONNX_FILES[kind]
    if onnx_file.is_file() and (path / CMVN_FILE).is_file():
        return "onnx", onnx_file, path / CMVN_FILE
    sub_dir = path / KIND_DIRS[kind]
    for directory in (sub_dir, path):
        if all((directory / name).is_file() for name in VAD_FILES):
            return "pth", directory / "model.pth.tar", directory / CMVN_FILE
    return None


def is_original_vad_dir(path: Path) -> bool:
    """Whether `path` holds a released FireRedVAD model in an original form (not a FireRedASR or FireRedPunc model,
    which also have a `model.pth.tar`)."""
    if any((path / name).exists() for name in ("dict.txt", "asr_encoder.pth.tar", "out_dict")):
        return False
    return any(find_original_vad(path, kind) is not None for kind in VAD_KINDS)


def load_original_vad(path: str | Path, kind: str | None = "vad"):
    """The `kind` model of an original FireRedVAD directory as `(model, feature_extractor)`; `kind=None` takes the
    one model of a `model.pth.tar` folder, whatever it is."""
    path = Path(path)
    found = find_original_vad(path, kind or "vad")
    if found is None:
        kind = kind or "vad"
        listing = ", ".join(sorted(p.name for p in path.iterdir())) if path.is_dir() else "not a directory"
        raise ConversionError(
            f"{path} holds no original FireRedVAD {kind} model: expected {KIND_DIRS[kind]}/model.pth.tar + "
            f"{KIND_DIRS[kind]}/cmvn.ark, model.pth.tar + cmvn.ark, or {KIND_ONNX_FILES[kind]} + cmvn.ark "
            f"(found: {listing or 'nothing'})."
        )
    form, model_file, cmvn_file = found
    if form == "onnx":
        state_dict, dilations = read_onnx_weights(model_file)
        args = args_from_state_dict(state_dict, dilations)
    else:
        package = load_original_checkpoint(model_file)
        if "model_state_dict" not in package:
            raise ConversionError(f"{model_file} holds no `model_state_dict`.")
        state_dict, args = package["model_state_dict"], package["args"]
        if not all(hasattr(args, name) for name in ("R", "M", "H", "P", "N1")):
            raise ConversionError(
                f"{model_file} is not a FireRedVAD checkpoint: its arguments lack the DFSMN sizes (R, M, H, P, N1). "
                "(A FireRedASR-AED directory also needs dict.txt and train_bpe1000.model.)"
            )
    config = vad_config_from_args(args, str(model_file))
    if kind is not None and config.kind != kind:
        raise ConversionError(f"{model_file} is a FireRedVAD {config.kind} model, not a {kind} model.")
    model = build_vad_model(config, state_dict, str(model_file))
    try:
        feature_extractor = FireRedAsrFeatureExtractor.from_kaldi_cmvn(cmvn_file, return_attention_mask=False)
    except ValueError as error:
        raise ConversionError(str(error)) from error
    if feature_extractor.feature_size != config.num_mel_bins:
        raise ConversionError(
            f"{cmvn_file} has statistics for {feature_extractor.feature_size} features, the model reads "
            f"{config.num_mel_bins}."
        )
    return model, feature_extractor


def convert_vad_checkpoint(input_dir: str | Path, output_dir: str | Path) -> Path:
    """Convert an original FireRedVAD directory. One model's folder (`model.pth.tar` + `cmvn.ark`) becomes one model
    directory; a folder of several (the Hub repository's root, the ONNX exports) becomes `VAD/`, `Stream-VAD/` and
    `AED/` subdirectories, as in the Hub repository."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if all((input_dir / name).is_file() for name in VAD_FILES):
        save_vad_model(*load_original_vad(input_dir, kind=None), output_dir)
        return output_dir
    kinds = [kind for kind in VAD_KINDS if find_original_vad(input_dir, kind) is not None]
    if not kinds:
        load_original_vad(input_dir, "vad")  # raises the error that lists what was found
    for kind in kinds:
        save_vad_model(*load_original_vad(input_dir, kind), output_dir / KIND_DIRS[kind])
    return output_dir


__all__ = [
    "KIND_DIRS",
    "KIND_ONNX_FILES",
    "VAD_KINDS",
    "convert_vad_checkpoint",
    "find_original_vad",
    "is_original_vad_dir",
    "load_original_vad",
    "save_vad_model",
]
