# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Linear layers through oneDNN on CPUs, with weights packed in its layout for inference.

    from fireredasr_hf.cpu_linear import use_onednn_linear
    use_onednn_linear(model)                 # float32 layers on oneDNN; the model is unchanged otherwise
    use_onednn_linear(model, prepack=True)   # weights packed for inference (float32 and bfloat16): CPU inference only

PyTorch computes a float32 `nn.Linear` on x86 CPUs with MKL's sgemm. On AMD CPUs MKL runs code paths that are not
its AVX-512 ones: on an AMD EPYC (Zen 5) a 1280 x 5120 layer took twice as long as oneDNN's matrix product for 250 to
750 rows (the encoder), and for the 1 to 16 rows of a decoding step up to 5 times as long, as MKL reads the weights
once per row for up to 3 rows (beam 3 of the AED decoder; the LLM's 152064 x 3584 output matrix: 350 ms per step at
beam 3 against 109 ms). oneDNN, which PyTorch already uses for convolutions and bfloat16 matrix products, computes the
same float32 products (no reduced precision; the sums in another order) from the same weights, without a copy.

Packed weights (oneDNN's blocked layout, made once) make the few-row products of decoding steps read the weights at
close to the memory bandwidth: about twice as fast again for 1 to 3 rows in float32 and in bfloat16 (the LLM's output
matrix in bfloat16: 63 -> 34 ms per step), and a few per cent faster for the encoder's hundreds of rows. A packed layer
keeps only the packed weight (the model's memory does not grow), so a model with packed layers is for inference on
the CPU: training, moving it to another device or saving it is refused or meaningless. Weights shared with another
layer (a tied embedding) are packed as a copy and stay in place for the other layer.

`load_asr_pipeline` (the command line, the server, the cluster runner) applies `use_onednn_linear(prepack=True)` on
CPUs from AMD (`onednn_linear_is_preferred`); on Intel CPUs, where MKL's float32 kernels are its fast ones, only when
asked (`cpu_linear="onednn"`).
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
    """Whether linear layers should run on oneDNN here: an AMD x86 CPU and a build that has it."""
    return onednn_linear_available() and cpu_vendor() == "AuthenticAMD"


class OneDnnLinear(nn.Linear):
    """
    `nn.Linear` whose CPU inference (gradients off) runs oneDNN's matrix product: float32 layers from their weight,
    packed layers (`packed_weight`, float32 or bfloat16) from the packed one. Layers become this class through
    `use_onednn_linear`; see the module docstring.
    """

    packed_weight: torch.Tensor | None = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        packed = self.packed_weight is not None and not torch.is_grad_enabled() and input.device.type == "cpu"
        if self.packed_weight is not None and not packed:
            if self.weight.numel():  # packed as a copy (a tied weight): the plain one is still there
                return super().forward(input)
            raise RuntimeError(
                "This linear layer's weight is packed for CPU inference (use_onednn_linear(prepack=True)): it "
                "runs on the CPU without gradients only. Load the model again to train it or to move it."
            )
        if not packed and not (
            input.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and input.device.type == "cpu"
            and self.weight.device.type == "cpu"
            and not torch.is_grad_enabled()
        ):
            return super().forward(input)
        weight = self.packed_weight if packed else self.weight
        flat = input.reshape(-1, self.in_features).contiguous()
        output = torch.ops.mkldnn._linear_pointwise(flat, weight, self.bias, "none", [], "")
        return output.view(*input.shape[:-1], self.out_features)

    def pack(self, release_weight: bool = True) -> bool:
        """Packs the weight in oneDNN's layout and, with `release_weight`, releases the plain one (an empty parameter
        takes its place, keeping the layer's dtype and device for code that asks). False (nothing done) where oneDNN
        cannot take this dtype on this CPU."""
        weight = self.weight.detach()
        if weight.device.type != "cpu" or weight.dtype not in (torch.float32, torch.bfloat16):
            return False
        if weight.dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight)
        if release_weight:
            self.weight = nn.Parameter(weight.new_empty(0), requires_grad=False)
        return True


def use_onednn_linear(model: nn.Module, prepack: bool = False) -> int:
    """
    Make every plain `nn.Linear` of `model` a `OneDnnLinear`, in place; with `prepack`, also pack their weights
    (see the module docstring: the model is then for CPU inference only).
    Returns how many layers now run on oneDNN (0 when this PyTorch build has no oneDNN). Subclasses of `nn.Linear`
    (quantized or otherwise specialised layers) are left as they are.
    """
    if not onednn_linear_available():
        return 0
    uses = {}
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            uses[id(parameter)] = uses.get(id(parameter), 0) + 1
    changed = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDnnLinear
            changed += 1
        if prepack and type(module) is OneDnnLinear and module.packed_weight is None:
            # A weight shared with another module (a tied embedding) is packed as a copy.
            module.pack(release_weight=uses[id(module.weight)] == 1)
    return changed


__all__ = ["OneDnnLinear", "cpu_vendor", "onednn_linear_available", "onednn_linear_is_preferred", "use_onednn_linear"]
