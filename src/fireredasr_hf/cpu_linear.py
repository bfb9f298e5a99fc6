# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""float32 linear layers through oneDNN on CPUs where PyTorch's BLAS (MKL) is slow.

    from fireredasr_hf.cpu_linear import use_onednn_linear
    use_onednn_linear(model)          # in place; returns the number of layers changed

PyTorch computes a float32 `nn.Linear` on x86 CPUs with MKL's sgemm. On AMD CPUs MKL runs code paths that are not
its AVX-512 ones: on an AMD EPYC (Zen 5) a 1280 x 5120 layer took twice as long as oneDNN's matrix product for 250 to
750 rows (the encoder), and for the 1 to 16 rows of a decoding step up to 5 times as long, as MKL reads the weights
once per row for up to 3 rows (beam 3 of the AED decoder; the LLM's 152064 x 3584 output matrix: 350 ms per step at
beam 3 against 109 ms). oneDNN, which PyTorch already uses for convolutions and bfloat16 matrix products, computes the
same float32 products (no reduced precision; the sums in another order) from the same weights, without a copy.

`use_onednn_linear` makes a model's `nn.Linear` layers (the language model's included) take that path for float32
inference on the CPU (no gradients); anything else (training, GPUs, other dtypes) runs as before. The state dict,
saving and moving the model are unchanged. `load_asr_pipeline` (the command line, the server, the cluster runner)
applies it on CPUs from AMD (`onednn_linear_is_preferred`); on Intel CPUs MKL is at least as fast.
"""

import functools
import platform
from pathlib import Path

import torch
from torch import nn


def onednn_linear_available() -> bool:
    """Whether this PyTorch build has oneDNN's linear operator (x86 builds with MKLDNN)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@functools.cache
def cpu_vendor() -> str:
    """The CPU's vendor id (`AuthenticAMD`, `GenuineIntel`, ...), or "" when it cannot be read."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
        return ""
    processor = platform.processor()
    return "AuthenticAMD" if "AMD" in processor else processor


def onednn_linear_is_preferred() -> bool:
    """Whether float32 linear layers should run on oneDNN here: an AMD x86 CPU and a build that has it."""
    return onednn_linear_available() and cpu_vendor() == "AuthenticAMD"


class OneDnnLinear(nn.Linear):
    """`nn.Linear` whose float32 CPU inference (gradients off) runs oneDNN's matrix product; see the module
    docstring. Layers become this class through `use_onednn_linear`."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if (
            input.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and input.device.type == "cpu"
            and self.weight.device.type == "cpu"
            and not torch.is_grad_enabled()
        ):
            flat = input.reshape(-1, self.in_features).contiguous()
            output = torch.ops.mkldnn._linear_pointwise(flat, self.weight, self.bias, "none", [], "")
            return output.view(*input.shape[:-1], self.out_features)
        return super().forward(input)


def use_onednn_linear(model: nn.Module) -> int:
    """Make every plain `nn.Linear` of `model` a `OneDnnLinear`, in place; returns how many were changed (0 when
    this PyTorch build has no oneDNN). Subclasses of `nn.Linear` (quantized or otherwise specialised layers) are left
    as they are."""
    if not onednn_linear_available():
        return 0
    changed = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDnnLinear
            changed += 1
    return changed


__all__ = ["OneDnnLinear", "cpu_vendor", "onednn_linear_available", "onednn_linear_is_preferred", "use_onednn_linear"]
