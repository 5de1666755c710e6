"""Quantization-aware fine-tuning (``qat: true``): train through int8 rounding so that the
post-training int8 export keeps the model's decisions.

Why: a TFW head with feature contrast reads the *difference* between a frame's features and its
window's mean. int8 rounding noise is independent per frame and does not cancel there, while the
static part of the features does: on the trained MobileNetV3-Small student the backbone's int8
features were 27 dB above their error, the contrast only 11 dB, and no single block, pool or
squeeze-excitation kept in fp32 gained more than 1 dB (docs/benchmarks/student_mnv3s_parity.md).
The whole backbone must learn features whose temporal differences survive rounding.

What is simulated while the model is in training mode (straight-through gradients,
`torch.fake_quantize_per_*`):

- weights of every ``Conv2d`` and ``Linear`` of the model: int8 symmetric per output channel,
  as the exporters quantize them (with BatchNorm folded the per-channel scale only rescales, so
  quantizing the unfolded weight rounds the same way);
- activations of the per-frame backbone: uint8 per tensor, scaled to the batch's own range, at
  the outputs of BatchNorm, ReLU/ReLU6/Hardswish/Hardsigmoid, pooling, squeeze-excitation and
  residual blocks (one rounding more than XNNPACK where it fuses BatchNorm with its ReLU, so the
  simulation errs on the noisy side); and the output of the embedding (``fc0``/``act0``).

BatchNorm statistics are frozen (each BatchNorm runs in eval mode even while training): the
model is already trained, and batch statistics of a fine-tuning batch would drift them from
what the exporters fold. In eval mode nothing is simulated: validation reports the fp32 model,
like every other run, and the checkpoint holds plain fp32 weights with the usual keys.
"""
from __future__ import annotations

import types

import torch
from torch import nn
from torch.nn import functional as F

from echoweave.edge.errors import EchoweaveError

#: Module types whose outputs are int8 tensors in the exported per-frame backbone.
_ACTIVATION_TYPES = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.AdaptiveAvgPool2d,
                     nn.AvgPool2d, nn.MaxPool2d)
#: Blocks whose output is a residual add or a squeeze-excitation product (torchvision names).
_BLOCK_NAMES = ("InvertedResidual", "SqueezeExcitation", "BasicBlock", "Bottleneck")


def fake_quant_activation(x: torch.Tensor) -> torch.Tensor:
    """uint8 per-tensor affine rounding of ``x`` over its own range (which always holds 0)."""
    if not x.is_floating_point():
        return x
    xf = x.float()
    lo, hi = torch.aminmax(xf.detach())
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    scale = torch.clamp((hi - lo) / 255.0, min=1e-8)
    zero_point = torch.clamp(torch.round(-lo / scale), 0, 255).to(torch.int32)
    return torch.fake_quantize_per_tensor_affine(xf, scale, zero_point, 0, 255).to(x.dtype)


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """int8 symmetric per-output-channel rounding of a weight (levels -127..127)."""
    wf = w.float()
    scale = torch.clamp(wf.detach().abs().flatten(1).amax(1) / 127.0, min=1e-12)
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(wf, scale, zero, 0, -127, 127).to(w.dtype)


class QuantAware:
    """Fake int8 quantization attached to a model for training (see the module docstring).

    Use ``QuantAware(model)`` after the weights are loaded; `remove()` detaches everything.
    State dicts are unchanged: weights stay fp32 parameters under their own names.
    """

    def __init__(self, model: nn.Module):
        backbone = getattr(model, "backbone", None)
        if not isinstance(backbone, nn.Module):
            raise EchoweaveError(f"qat: model {type(model).__name__} has no per-frame backbone to quantize "
                                 "(only models with the embed_frame/classify_window split are supported)")
        self.model = model
        self.handles: list = []
        self.weights: list[nn.Module] = []
        self.activations = 0

        def active() -> bool:
            return model.training

        def activation_hook(module, inputs, output):
            return fake_quant_activation(output) if active() else output

        def frozen_bn(module, inputs):
            module.train(False)  # statistics frozen: see the module docstring

        for module in backbone.modules():
            if isinstance(module, _ACTIVATION_TYPES) or type(module).__name__ in _BLOCK_NAMES:
                self.handles.append(module.register_forward_hook(activation_hook))
                self.activations += 1
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                self.handles.append(module.register_forward_pre_hook(frozen_bn))
        for name in ("act0", "fc0"):
            embed_out = getattr(model, name, None)
            if isinstance(embed_out, nn.Module):
                self.handles.append(embed_out.register_forward_hook(activation_hook))
                self.activations += 1
                break
        for module in model.modules():
            if type(module) in (nn.Conv2d, nn.Linear):
                module.forward = types.MethodType(_quantized_forward, module)  # instance override
                self.weights.append(module)

    def remove(self) -> None:
        """Detach every hook and forward override."""
        for handle in self.handles:
            handle.remove()
        for module in self.weights:
            del module.forward
        self.handles, self.weights = [], []

    def summary(self) -> str:
        """One line: what is simulated."""
        return (f"qat: int8 fake quantization of {len(self.weights)} weights (per channel) and "
                f"{self.activations} activation points (per tensor); BatchNorm statistics frozen")


def _quantized_forward(self, x: torch.Tensor) -> torch.Tensor:
    """``Conv2d``/``Linear`` forward with per-channel int8 weights while the model trains."""
    weight = fake_quant_weight(self.weight) if self.training else self.weight
    if isinstance(self, nn.Conv2d):
        return self._conv_forward(x, weight, self.bias)
    return F.linear(x, weight, self.bias)


__all__ = ["QuantAware", "fake_quant_activation", "fake_quant_weight"]
