# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""int8 inference on CPUs: dynamic quantization of a loaded model's linear layers.

    from fireredasr_hf.hub import load_asr_pipeline
    asr = load_asr_pipeline("FireRedTeam/FireRedASR-AED-L", device="cpu", quantize="int8")

    from fireredasr_hf.quantization import quantize_model
    model = quantize_model(FireRedAedForConditionalGeneration.from_pretrained(path))   # the same, on a model

Every `nn.Linear` (and the Conformer's pointwise convolutions, linear layers in the release's layout) gets int8
weights (one scale per output channel) and runs PyTorch's dynamic quantized linear: the activations are quantized
per call, the product runs in int8 with int32 accumulation (fbgemm/oneDNN kernels), the output is float32. The rest
of the model (other convolutions, embeddings, LayerNorms, attention) computes in float32. A decoding step
reads a quarter of the weight bytes, which is what a cached step of the AED decoder or the LLM waits for on a CPU.

Why not `from_pretrained(..., quantization_config=TorchAoConfig(...))`: torchao's int8 layouts run fast under
`torch.compile`, but without it (generate() with its changing shapes) they were measured slower than float32 on CPUs
(benchmarks/bench_int8.py prints both). PyTorch marks `torch.ao.quantization` deprecated in favour of torchao; it is
what ships fast eager int8 CPU kernels today, and this module is the one place that uses it.

The quantized model is for inference on the CPU: it cannot move to a GPU and is not meant to be saved (quantize
again after loading; it takes seconds).
"""

import warnings

from torch import nn

from .modeling_fireredasr_encoder import FireRedEncoderPointwiseConv

QUANTIZE_METHODS = ("int8",)


def quantize_model(model: nn.Module, method: str = "int8") -> nn.Module:
    """
    Quantize `model`'s linear layers for CPU inference, in place (see the module docstring); returns the model.

    Args:
        model: a loaded FireRedASR model (AED or LLM) on the CPU, in any floating dtype: the linear layers are
            quantized one at a time (so a bfloat16 LLM never exists in float32 as a whole) and the remaining weights
            are cast to float32, in which the quantized layers take and return activations.
        method: `"int8"` (the only method).
    """
    if method not in QUANTIZE_METHODS:
        raise ValueError(f"unknown quantization {method!r}; choose one of {', '.join(QUANTIZE_METHODS)}")
    devices = {parameter.device.type for parameter in model.parameters()}
    if devices - {"cpu"}:
        raise ValueError(
            f"int8 quantization runs on the CPU, but the model is on {', '.join(sorted(devices))}; load it on the CPU "
            "(on a GPU use --dtype bfloat16 instead)."
        )
    if any(_is_quantized(module) for module in model.modules()):
        raise ValueError("the model is already quantized")

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao on every call; see the module docstring.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*quantize_per_(tensor|channel).*deprecated")
        from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
        from torch.ao.quantization import per_channel_dynamic_qconfig

        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, FireRedEncoderPointwiseConv):  # a linear layer stored as a convolution
                    linear = nn.Linear(child.in_channels, child.out_channels, bias=child.bias is not None)
                    linear.weight = nn.Parameter(child.weight.detach().squeeze(-1))
                    linear.bias = child.bias
                    child = linear
                elif type(child) is not nn.Linear:
                    continue
                child.float()
                child.qconfig = per_channel_dynamic_qconfig
                setattr(parent, name, DynamicQuantizedLinear.from_float(child))
    return model.float()


def _is_quantized(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.ao.nn.quantized")


def is_quantized(model: nn.Module) -> bool:
    """Whether `quantize_model` has been applied to `model`."""
    return any(_is_quantized(module) for module in model.modules())


__all__ = ["QUANTIZE_METHODS", "is_quantized", "quantize_model"]
