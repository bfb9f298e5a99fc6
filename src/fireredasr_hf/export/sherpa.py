# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Export of FireRedASR-AED models to the ONNX layout of sherpa-onnx's FireRedASR recognisers.

    from fireredasr_hf.export import export_sherpa_onnx

    export_sherpa_onnx("FireRedTeam/FireRedASR-AED-L", "sherpa-fireredasr-aed-l", int8=True)

What sherpa-onnx (`OfflineRecognizer.from_fire_red_asr`, C++ `OfflineFireRedAsrModel`) reads:

- `encoder.onnx`: `features` (N, T, 80) float CMVN-normalised fbank, `features_length` (N,) int64 ->
  `n_layer_cross_k`, `n_layer_cross_v` (num_decoder_layers, N, T', d_model): the encoder output already projected by
  every decoder layer's cross-attention key and value projections (computed once per utterance). Its metadata:
  `num_decoder_layers`, `num_head`, `head_dim`, `sos`, `eos`, `max_len` (decoder positions) and the global CMVN
  (`cmvn_mean`, `cmvn_inv_stddev`, comma-separated), which sherpa-onnx applies to its own Kaldi fbank.
- `decoder.onnx`: one cached step. `tokens` (N, S) int64, `in_n_layer_self_k_cache` / `in_n_layer_self_v_cache`
  (num_decoder_layers, N, C, num_head, head_dim), `n_layer_cross_k`, `n_layer_cross_v`, `offset` (N,) int64 (the
  position of the first of the S tokens) -> `logits` (N, S, vocab), `out_n_layer_self_k_cache`,
  `out_n_layer_self_v_cache`. sherpa-onnx sizes the cache C itself (2.x: 8 tokens per second of audio + 4) and runs
  greedy search with batch size 1, so the decoder takes any C and attends to the positions up to `offset`.
- `tokens.txt`: `<symbol> <id>` per line (the model's vocabulary; the space token is written `<space>`).

With a CTC head (FireRedASR2-AED, or a model fine-tuned with a CTC loss) `ctc.onnx` is written too: `features`,
`features_length` -> `log_probs` (N, T', vocab), `log_probs_length` (N,), metadata `model_type=fire-red-asr-2-ctc`,
`subsampling_factor` and the CMVN, as `OfflineRecognizer.from_fire_red_asr_ctc` reads it.

`int8=True` quantizes the exported files with onnxruntime's dynamic quantization (int8 weights of the matrix
products; activations quantized at run time) and writes `encoder.int8.onnx`, `decoder.int8.onnx` (`ctc.int8.onnx`).
Files above protobuf's 2 GB limit (a float32 FireRedASR-AED-L encoder) keep their weights next to them in
`<name>.onnx.data`, which onnxruntime and sherpa-onnx read from the model's folder.
"""

import copy
import logging
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..modeling_fireredasr_aed import FireRedAedForConditionalGeneration
from ..modeling_fireredasr_encoder import eager_attention_forward, sinusoidal_embeddings
from ..quantization import is_quantized

# What sherpa-onnx's FireRedASR front end computes: 80 Kaldi mel bins of 16 kHz audio (25 ms / 10 ms frames).
SHERPA_SAMPLING_RATE = 16000
SHERPA_NUM_MEL_BINS = 80
ONNX_OPSET = 17
# protobuf cannot serialise a model of 2 GiB or more; larger exports keep their weights in an external file.
PROTOBUF_LIMIT_BYTES = 2**31 - 1
SPACE_SYMBOL = "<space>"
LLM_NOT_SUPPORTED = "sherpa-onnx runs FireRedASR-AED models only (it has no recogniser for the LLM variant)."


# The decoder's inputs in sherpa-onnx's order (it binds them by position).
DECODER_INPUT_NAMES = (
    "tokens",
    "in_n_layer_self_k_cache",
    "in_n_layer_self_v_cache",
    "n_layer_cross_k",
    "n_layer_cross_v",
    "offset",
)


def decoder_feeds(tokens, self_k_cache, self_v_cache, cross_k, cross_v, offset) -> dict:
    """onnxruntime feeds of one decoder step (numpy arrays: tokens and offset int64, the rest float32)."""
    return dict(zip(DECODER_INPUT_NAMES, (tokens, self_k_cache, self_v_cache, cross_k, cross_v, offset)))


class ExportError(ValueError):
    """A model or argument the exporter cannot turn into the requested format (with the reason)."""


@dataclass
class SherpaOnnxExport:
    """The files an export wrote, by role (`encoder`, `decoder`, `tokens`, and `ctc` for a model with a CTC head)."""

    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    int8: bool = False

    def recognizer_kwargs(self) -> dict[str, str]:
        """The file arguments of `sherpa_onnx.OfflineRecognizer.from_fire_red_asr`."""
        return {name: str(self.files[name]) for name in ("encoder", "decoder", "tokens")}


class SherpaEncoder(nn.Module):
    """The encoder followed by each decoder layer's cross-attention key and value projections."""

    def __init__(self, model: FireRedAedForConditionalGeneration):
        super().__init__()
        self.encoder = model.model.encoder
        self.cross_attentions = nn.ModuleList(layer.encoder_attn for layer in model.model.decoder.layers)

    def forward(self, features: torch.Tensor, features_length: torch.Tensor):
        frames = torch.arange(features.shape[1], device=features.device)
        attention_mask = (frames.unsqueeze(0) < features_length.unsqueeze(1)).long()
        hidden_states = self.encoder(features, attention_mask=attention_mask).last_hidden_state
        keys = torch.stack([attention.k_proj(hidden_states) for attention in self.cross_attentions])
        values = torch.stack([attention.v_proj(hidden_states) for attention in self.cross_attentions])
        return keys, values


class SherpaDecoder(nn.Module):
    """One decoder step over a preallocated self-attention cache, as sherpa-onnx drives it.

    The layers' own modules (projections, LayerNorms, feed-forward) and attention function compute the step; only the
    cache handling is specific to the export: the keys and values of the new tokens are written at positions
    `offset ... offset + S - 1` of the cache (a gather and a select, which keeps every shape static), and each query
    attends to the cache positions up to its own.
    """

    def __init__(self, model: FireRedAedForConditionalGeneration):
        super().__init__()
        decoder = model.model.decoder
        self.decoder = decoder
        self.proj_out = model.proj_out
        self.num_heads = model.config.num_attention_heads
        self.head_dim = model.config.hidden_size // model.config.num_attention_heads

    def forward(self, tokens, self_k_cache, self_v_cache, cross_k, cross_v, offset):
        batch_size, num_tokens = tokens.shape
        cache_length = self_k_cache.shape[2]
        # sherpa-onnx advances all rows together; the first row's offset is the step's position.
        start = offset[:1]
        positions = start + torch.arange(num_tokens, device=tokens.device)
        embeddings = self.decoder.embed_tokens(tokens) * self.decoder.embed_scale
        hidden_states = embeddings + sinusoidal_embeddings(positions, self.decoder.inv_freq).to(embeddings.dtype)

        cache_positions = torch.arange(cache_length, device=tokens.device)
        # Query i sees cache positions <= start + i (earlier tokens and itself); the rest is unwritten or future.
        visible = cache_positions.unsqueeze(0) <= positions.unsqueeze(1)
        self_mask = torch.zeros(visible.shape, dtype=hidden_states.dtype, device=tokens.device)
        self_mask = self_mask.masked_fill(~visible, torch.finfo(hidden_states.dtype).min)[None, None]
        written = (cache_positions >= start) & (cache_positions < start + num_tokens)
        source = torch.clamp(cache_positions - start, 0, num_tokens - 1)

        new_keys, new_values = [], []
        for index, layer in enumerate(self.decoder.layers):
            attention = layer.self_attn
            states = layer.self_attn_layer_norm(hidden_states)
            query = self._heads(attention.q_proj(states))
            keys = self._write(self_k_cache[index], self._split(attention.k_proj(states)), source, written)
            values = self._write(self_v_cache[index], self._split(attention.v_proj(states)), source, written)
            new_keys.append(keys)
            new_values.append(values)
            output, _ = eager_attention_forward(
                attention, query, keys.transpose(1, 2), values.transpose(1, 2), self_mask, attention.scaling
            )
            hidden_states = hidden_states + attention.o_proj(output.reshape(batch_size, num_tokens, -1))

            attention = layer.encoder_attn
            states = layer.encoder_attn_layer_norm(hidden_states)
            query = self._heads(attention.q_proj(states))
            output, _ = eager_attention_forward(
                attention, query, self._heads(cross_k[index]), self._heads(cross_v[index]), None, attention.scaling
            )
            hidden_states = hidden_states + attention.o_proj(output.reshape(batch_size, num_tokens, -1))
            hidden_states = hidden_states + layer.mlp(layer.final_layer_norm(hidden_states))

        logits = self.proj_out(self.decoder.layer_norm(hidden_states))
        return logits, torch.stack(new_keys), torch.stack(new_values)

    def _split(self, states: torch.Tensor) -> torch.Tensor:
        """(N, S, d_model) -> (N, S, heads, head_dim), the cache layout."""
        return states.view(states.shape[0], states.shape[1], self.num_heads, self.head_dim)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        """(N, S, d_model) -> (N, heads, S, head_dim), the attention layout."""
        return self._split(states).transpose(1, 2)

    @staticmethod
    def _write(cache, new_states, source, written):
        placed = new_states.index_select(1, source)
        return torch.where(written[None, :, None, None], placed, cache)


class SherpaCtc(nn.Module):
    """The encoder and the CTC head: log-probabilities per encoder frame and the number of valid frames."""

    def __init__(self, model: FireRedAedForConditionalGeneration):
        super().__init__()
        self.encoder = model.model.encoder
        self.ctc_head = model.ctc_head

    def forward(self, features: torch.Tensor, features_length: torch.Tensor):
        frames = torch.arange(features.shape[1], device=features.device)
        attention_mask = (frames.unsqueeze(0) < features_length.unsqueeze(1)).long()
        outputs = self.encoder(features, attention_mask=attention_mask)
        log_probs = torch.log_softmax(self.ctc_head(outputs.last_hidden_state), dim=-1)
        return log_probs, outputs.attention_mask.sum(-1)


def export_sherpa_onnx(
    model,
    output_dir: str | Path,
    int8: bool = False,
    processor=None,
    revision: str | None = None,
) -> SherpaOnnxExport:
    """
    Write a FireRedASR-AED model in sherpa-onnx's FireRedASR format (see the module docstring for the files).

    Args:
        model: a [`FireRedAedForConditionalGeneration`], or any name `fireredasr_hf.hub.resolve_model` accepts (a
            converted directory, an original FireRedASR-AED directory or a Hub repo id).
        output_dir: the folder to write (created if needed; files of an earlier export are replaced).
        int8: write int8 models (onnxruntime dynamic quantization) instead of float32 ones.
        processor: the model's processor (feature extractor for the CMVN, tokenizer for `tokens.txt`); loaded from
            `model`'s directory when not given.
        revision: branch, tag or commit when `model` names a Hub repository.

    Returns:
        A [`SherpaOnnxExport`] with the written paths.
    """
    _require_onnx(int8)
    model, processor = _load(model, processor, revision)
    _check_exportable(model, processor)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    result = SherpaOnnxExport(output_dir=output_dir, int8=int8)
    with (
        _ready_for_export(model) as export_model,
        tempfile.TemporaryDirectory(prefix=".export-", dir=output_dir) as scratch,
    ):
        for graph in _graphs(export_model, processor.feature_extractor):
            target = output_dir / f"{graph.name}{'.int8' if int8 else ''}.onnx"
            float_path = Path(scratch) / f"{graph.name}.onnx" if int8 else target
            graph.export(Path(scratch), float_path)
            if int8:
                _quantize(float_path, target)
            result.files[graph.name] = target
    result.files["tokens"] = write_tokens(processor.tokenizer, model.config.vocab_size, output_dir / "tokens.txt")
    return result


@dataclass
class _Graph:
    """One ONNX file: the module to trace, example inputs, names, dynamic axes and metadata."""

    name: str
    module: nn.Module
    inputs: tuple
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    metadata: dict[str, str] = field(default_factory=dict)

    def export(self, scratch: Path, path: Path) -> None:
        """Traces into `scratch` (where the exporter may spread the weights of a large model over many files),
        then writes `path` with the metadata, in one file or with its weights in `<name>.data`."""
        import onnx

        traced = scratch / f"{self.name}.traced.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing notes every Python-side shape check and constant; the graph tests check the result instead.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # The TorchScript exporter announces its deprecation (the torch.export one needs onnxscript).
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=r".*[Cc]onstant folding")
            torch.onnx.export(
                self.module,
                self.inputs,
                str(traced),
                input_names=self.input_names,
                output_names=self.output_names,
                dynamic_axes=self.dynamic_axes,
                opset_version=ONNX_OPSET,
                # The TorchScript exporter: it traces the Python control flow of the transformers layers as it runs.
                dynamo=False,
            )
        model = onnx.load(str(traced))
        for key, value in self.metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        _save_onnx(model, path)


def _graphs(model: FireRedAedForConditionalGeneration, feature_extractor) -> list[_Graph]:
    config = model.config
    layers, heads, hidden_size = config.num_hidden_layers, config.num_attention_heads, config.hidden_size
    features = (torch.randn(1, 100, SHERPA_NUM_MEL_BINS), torch.tensor([100], dtype=torch.long))
    feature_names = ["features", "features_length"]
    feature_axes = {"features": {0: "N", 1: "T"}, "features_length": {0: "N"}}
    cmvn = _cmvn_metadata(feature_extractor)

    encoder = _Graph(
        "encoder",
        SherpaEncoder(model),
        features,
        feature_names,
        ["n_layer_cross_k", "n_layer_cross_v"],
        {**feature_axes, "n_layer_cross_k": {1: "N", 2: "T"}, "n_layer_cross_v": {1: "N", 2: "T"}},
        {
            "model_author": "fireredasr-hf",
            "comment": "FireRedASR-AED exported by fireredasr-hf for sherpa-onnx",
            "num_decoder_layers": str(layers),
            "num_head": str(heads),
            "head_dim": str(hidden_size // heads),
            "sos": str(config.decoder_start_token_id),
            "eos": str(_single(config.eos_token_id)),
            "max_len": str(config.max_position_embeddings),
            "vocab_size": str(config.vocab_size),
            **cmvn,
        },
    )
    self_cache = torch.zeros(layers, 1, 8, heads, hidden_size // heads)
    cross = torch.randn(layers, 1, 13, hidden_size)
    cache_axes = {1: "N", 2: "C"}
    decoder = _Graph(
        "decoder",
        SherpaDecoder(model),
        (
            torch.tensor([[config.decoder_start_token_id]], dtype=torch.long),
            self_cache,
            self_cache.clone(),
            cross,
            cross.clone(),
            torch.zeros(1, dtype=torch.long),
        ),
        list(DECODER_INPUT_NAMES),
        ["logits", "out_n_layer_self_k_cache", "out_n_layer_self_v_cache"],
        {
            "tokens": {0: "N", 1: "S"},
            "in_n_layer_self_k_cache": cache_axes,
            "in_n_layer_self_v_cache": cache_axes,
            "n_layer_cross_k": {1: "N", 2: "T"},
            "n_layer_cross_v": {1: "N", 2: "T"},
            "offset": {0: "N"},
            "logits": {0: "N", 1: "S"},
            "out_n_layer_self_k_cache": cache_axes,
            "out_n_layer_self_v_cache": cache_axes,
        },
    )
    graphs = [encoder, decoder]
    if getattr(model, "ctc_head", None) is not None:
        graphs.append(
            _Graph(
                "ctc",
                SherpaCtc(model),
                features,
                feature_names,
                ["log_probs", "log_probs_length"],
                {**feature_axes, "log_probs": {0: "N", 1: "T"}, "log_probs_length": {0: "N"}},
                {
                    "model_type": "fire-red-asr-2-ctc",
                    "model_author": "fireredasr-hf",
                    "subsampling_factor": str(config.encoder_config.subsampling_factor),
                    "vocab_size": str(config.vocab_size),
                    **cmvn,
                },
            )
        )
    return graphs


def _cmvn_metadata(feature_extractor) -> dict[str, str]:
    if feature_extractor.cmvn_means is None:  # a model without CMVN: identity normalisation
        means, inverse_stds = [0.0] * SHERPA_NUM_MEL_BINS, [1.0] * SHERPA_NUM_MEL_BINS
    else:
        means, inverse_stds = feature_extractor.cmvn_means, feature_extractor.cmvn_inverse_stds
    return {
        "cmvn_mean": ",".join(repr(float(value)) for value in means),
        "cmvn_inv_stddev": ",".join(repr(float(value)) for value in inverse_stds),
    }


def _single(token_id):
    return token_id[0] if isinstance(token_id, (list, tuple)) else token_id


def _save_onnx(model, path: Path) -> None:
    """Saves in one file, or with the weights in `<name>.data` next to it when protobuf's 2 GB limit requires."""
    import onnx

    path.with_name(path.name + ".data").unlink(missing_ok=True)
    try:
        large = model.ByteSize() > PROTOBUF_LIMIT_BYTES
    except ValueError:  # protobuf refuses to even measure messages past its limit
        large = True
    if large:
        onnx.save_model(
            model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=path.name + ".data"
        )
    else:
        onnx.save_model(model, str(path))


def _quantize(float_path: Path, quantized_path: Path) -> None:
    quantized_path.with_name(quantized_path.name + ".data").unlink(missing_ok=True)
    # onnxruntime logs a suggestion to run its (static quantization) pre-processing on the root logger.
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(max(level, logging.ERROR))
    try:
        _quantize_dynamic(float_path, quantized_path)
    finally:
        root_logger.setLevel(level)


def _quantize_dynamic(float_path: Path, quantized_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(float_path),
        str(quantized_path),
        op_types_to_quantize=["MatMul"],
        weight_type=QuantType.QInt8,
        per_channel=True,
        # Matrix products of two activations (attention scores) stay in float: only the weights are int8.
        extra_options={"MatMulConstBOnly": True},
        # int8 weights are a quarter of the float ones: one file unless the float model needed an external one.
        use_external_data_format=float_path.with_name(float_path.name + ".data").exists(),
    )


def _require_onnx(int8: bool) -> None:
    import importlib.util

    missing = [
        name for name in ("onnx", "onnxruntime" if int8 else None) if name and not importlib.util.find_spec(name)
    ]
    if missing:
        raise ExportError(
            f"exporting to sherpa-onnx needs {' and '.join(missing)}: pip install 'fireredasr-hf[export]'"
        )


def _load(model, processor, revision):
    if isinstance(model, nn.Module):
        if not isinstance(model, FireRedAedForConditionalGeneration):
            raise ExportError(f"got a {type(model).__name__}; {LLM_NOT_SUPPORTED}")
        if processor is None:
            if not model.name_or_path or not Path(model.name_or_path).is_dir():
                raise ExportError("pass the model's processor: the model was not loaded from a local directory")
            processor = _load_processor(model.name_or_path)
        return model, processor

    from transformers import AutoConfig

    from ..conversion import ConversionError, detect_variant
    from ..hub import resolve_model

    local = Path(str(model)).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        # An original directory: refuse an LLM before converting it.
        try:
            variant = detect_variant(local)
        except ConversionError:
            variant = None  # resolve_model explains what the directory lacks
        if variant == "llm":
            raise ExportError(f"{model} is a FireRedASR-LLM model; {LLM_NOT_SUPPORTED}")
    try:
        path = resolve_model(model, revision=revision)
    except ValueError as error:  # ModelResolutionError: neither a converted nor an original FireRedASR model
        raise ExportError(str(error)) from error
    revision = None if Path(path).is_dir() else revision
    config = AutoConfig.from_pretrained(path, revision=revision)
    if config.model_type != "fireredasr_aed":
        raise ExportError(f"{model} is a {config.model_type} model; {LLM_NOT_SUPPORTED}")
    loaded = FireRedAedForConditionalGeneration.from_pretrained(path, revision=revision, dtype=torch.float32)
    return loaded.eval(), processor or _load_processor(path, revision)


def _load_processor(path, revision=None):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(path, revision=revision)


def _check_exportable(model, processor) -> None:
    feature_extractor = processor.feature_extractor
    if (feature_extractor.sampling_rate, feature_extractor.feature_size) != (SHERPA_SAMPLING_RATE, SHERPA_NUM_MEL_BINS):
        raise ExportError(
            f"sherpa-onnx computes {SHERPA_NUM_MEL_BINS} mel bins of {SHERPA_SAMPLING_RATE} Hz audio; this model "
            f"expects {feature_extractor.feature_size} bins at {feature_extractor.sampling_rate} Hz."
        )
    if is_quantized(model):
        raise ExportError(
            "the model's linear layers are quantized (loaded with --quantize int8?); export the float model and ask "
            "for an int8 ONNX model with int8=True (--int8)."
        )
    if getattr(model, "ctc_head", None) is not None:
        blank = getattr(model, "blank_token_id", getattr(model.config, "ctc_blank_id", 0))
        if blank != 0:
            raise ExportError(f"sherpa-onnx's CTC search takes id 0 for the blank; this model's CTC blank is {blank}.")
    if len(processor.tokenizer) < model.config.vocab_size:
        raise ExportError(
            f"the tokenizer has {len(processor.tokenizer)} tokens but the model's vocabulary has "
            f"{model.config.vocab_size}; tokens.txt needs a symbol for every output id."
        )


@contextmanager
def _ready_for_export(model: FireRedAedForConditionalGeneration):
    """The model in float32 on the CPU, in eval mode, with the plain attention path: the model itself when it already
    is float32 on the CPU (put back as it was afterwards), else a float32 CPU copy."""
    parameter = next(model.parameters())
    if parameter.dtype != torch.float32 or parameter.device.type != "cpu":
        model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    training, attention = model.training, model.config._attn_implementation
    model.eval()
    model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        model.set_attn_implementation(attention)
        model.train(training)


def write_tokens(tokenizer, vocab_size: int, path: str | Path) -> Path:
    """sherpa-onnx's `tokens.txt`: `<symbol> <id>` for ids 0 .. vocab_size - 1 (the space token as `<space>`)."""
    path = Path(path)
    symbols = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    lines = []
    for index, symbol in enumerate(symbols):
        symbol = SPACE_SYMBOL if symbol == " " else symbol
        if not symbol or any(character.isspace() for character in symbol):
            raise ExportError(f"token {index} ({symbol!r}) cannot be written to tokens.txt (it contains whitespace)")
        lines.append(f"{symbol} {index}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


__all__ = [
    "DECODER_INPUT_NAMES",
    "ExportError",
    "SherpaOnnxExport",
    "decoder_feeds",
    "export_sherpa_onnx",
    "write_tokens",
]
