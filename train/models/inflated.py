"""`i3d`: a 2-D backbone inflated to 3-D (I3D, Carreira & Zisserman 2017), window-only.

`inflate_2d_to_3d(module)` turns any of the kit's 2-D backbones (`build_backbone`: tiny,
resnet18, resnet50, mobilenet_v3_large) into its 3-D counterpart, layer by layer:

- ``Conv2d(kh, kw)`` -> ``Conv3d(kt, kh, kw)`` with ``kt = time_kernel`` (odd, default 3) when the
  spatial kernel is larger than 1x1, and ``kt = 1`` for pointwise convolutions (ResNet
  downsample/bottleneck 1x1, MobileNet expand/project/squeeze-excite); time stride 1, same
  groups (depthwise stays depthwise). Inflated weights are the 2-D kernel repeated ``kt`` times
  over time and divided by ``kt``.
- ``BatchNorm2d`` -> ``BatchNorm3d`` (affine and running statistics copied).
- ``MaxPool2d``/``AvgPool2d(k, s, p)`` -> 3-D pools of kernel ``(1, k, k)``: **no temporal
  pooling** (the network keeps its T frames down to the last layer; the receptive field in
  time grows by ``kt - 1`` per inflated convolution instead). Written as the 2-D pool on every
  frame (`FramePool2d`, the same numbers), which the edge toolchains lower and quantize.
- ``AdaptiveAvgPool2d(1)`` -> a global average pool over (T, H, W) (`GlobalAvgPool3d`, a mean:
  the form every converter lowers). In MobileNet's squeeze-excite blocks this squeezes the whole
  clip, not each frame.
- Any other ``*2d`` layer is refused (ValueError naming it); element-wise layers pass through.

**Temporal padding.** I3D pads time with zeros ("SAME"). Then the first and last ``kt // 2``
frames of every layer see part of the kernel against zeros, and a clip that is constant in time
does *not* give the 2-D activations there. The default here pads time by **replicating the edge
frames** (``time_padding="replicate"``, written as slices + concatenation, which every
toolchain lowers), so the bootstrapping is exact at every frame: a constant-in-time clip gives,
at every time step, the 2-D network's activations of that frame, and its pooled feature is the
2-D network's feature (tests/test_inflated.py holds this to float tolerance for every backbone).
``time_padding="zeros"`` is the published variant (exact on the interior frames only).

Starting from 2-D weights: `inflate_state_dict` inflates a 2-D backbone state dict into the
shapes of a 3-D one; `inflate_from_image_model(i3d, image_state_dict)` copies the stage-1 image
model's ``backbone.*`` into an `I3D` (the head keeps its fresh init), and `I3D` declares it as
its ``init_from_image_state`` hook, so ``init_from: <stage-1 run>`` in a training config inflates
the image model (no ImageNet/Kinetics weights are downloaded: the kit trains from scratch or
from its own stage 1).

Model: ``clip (B, T, C, H, W)`` -> normalise -> ``(B, C, T, H, W)`` -> inflated backbone (its 3-D
global average pool included) -> dropout -> linear. It sees the whole window at once and declares
only ``forward``; the edge streams it by recomputing the window. What the edge toolchains cannot
run is declared in `I3D.export_limits` (measured: docs in its comments).
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn

from echoweave.train.models.backbones import build_backbone
from echoweave.train.models.base import VideoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import register_model

TIME_PADDINGS = ("replicate", "zeros")


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class InflatedConv3d(nn.Conv3d):
    """``nn.Conv3d`` that pads explicitly: time by replicating the edge frames (or zeros), space
    with zeros as the 2-D layer did, then convolves without padding.

    The state dict is a plain ``Conv3d``'s (``weight (Cout, Cin/groups, kt, kh, kw)``, ``bias``).
    The padding is explicit (slices + ``cat`` for time, a constant pad for space) rather than
    ``Conv3d(padding=...)`` because litert-torch 0.10 crashes (segmentation fault in
    ``exported_programs_to_flatbuffer``) on a Conv3d whose padding is not the same on every axis,
    e.g. ``(0, 1, 1)``, or whose stride is not, e.g. ``(1, 2, 2)`` with padding 1; a VALID Conv3d
    after an explicit pad converts and runs.

    Attributes:
        time_pad: frames added before and after.
        time_padding: ``replicate`` or ``zeros``.
        space_pad: ``(ph, pw)`` zero rows/columns added on each side.
    """

    def __init__(self, *args, time_pad: int = 0, time_padding: str = "replicate", space_pad=(0, 0), **kwargs):
        super().__init__(*args, **kwargs)
        self.time_pad = int(time_pad)
        self.time_padding = time_padding
        self.space_pad = tuple(int(p) for p in space_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.time_pad
        zeros_t = p if self.time_padding == "zeros" else 0
        if p and not zeros_t:
            # (B, C, T + 2p, H, W), written as slices + cat: plain ops for every converter
            x = torch.cat([x[:, :, :1]] * p + [x] + [x[:, :, -1:]] * p, dim=2)
        ph, pw = self.space_pad
        if ph or pw or zeros_t:
            x = nn.functional.pad(x, (pw, pw, ph, ph, zeros_t, zeros_t))  # zeros: (W, H, T) pairs
        return super().forward(x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", time_pad={self.time_pad} ({self.time_padding}), space_pad={self.space_pad}"


class GlobalAvgPool3d(nn.Module):
    """Mean over (T, H, W), keeping the dims: ``(B, C, T, H, W) -> (B, C, 1, 1, 1)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4), keepdim=True)


def inflate_conv_weight(weight2d: torch.Tensor, time_kernel: int) -> torch.Tensor:
    """``(Cout, Cin, kh, kw)`` -> ``(Cout, Cin, kt, kh, kw)``: repeated over time, divided by kt."""
    return weight2d.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel


def _inflate_conv(conv: nn.Conv2d, time_kernel: int, time_padding: str) -> nn.Conv3d:
    if isinstance(conv.padding, str):
        raise ValueError(f"inflate_2d_to_3d: Conv2d padding={conv.padding!r} is not supported (give it as numbers)")
    if conv.padding_mode != "zeros":
        raise ValueError(f"inflate_2d_to_3d: Conv2d padding_mode={conv.padding_mode!r} is not supported")
    kh, kw = _pair(conv.kernel_size)
    kt = 1 if (kh, kw) == (1, 1) else time_kernel
    new = InflatedConv3d(conv.in_channels, conv.out_channels, (kt, kh, kw), stride=(1, *_pair(conv.stride)),
                         padding=0, dilation=(1, *_pair(conv.dilation)), groups=conv.groups,
                         bias=conv.bias is not None, time_pad=kt // 2, time_padding=time_padding,
                         space_pad=_pair(conv.padding)).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(inflate_conv_weight(conv.weight, kt))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _inflate_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm3d:
    new = nn.BatchNorm3d(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                         track_running_stats=bn.track_running_stats)
    state = bn.state_dict()  # weight, bias, running_mean/var, num_batches_tracked
    if state:
        new = new.to(next(iter(state.values())).device)
        new.load_state_dict(state)
    return new


class FramePool2d(nn.Module):
    """A 2-D pool applied to every frame: ``(B, C, T, H, W) -> (B, C, T, H', W')``.

    The same result as the 3-D pool of kernel ``(1, k, k)`` (no temporal pooling), written as the
    2-D pool on ``(B, C*T, H, W)``: LiteRT lowers ``max_pool3d`` into a chain of MAXIMUM ops that
    ai-edge-quantizer cannot calibrate (int8 export fails: "MAXIMUM not found in
    tensor_name_to_qsv"), while MAX_POOL_2D quantizes; ExecuTorch has no ``max_pool3d`` kernel
    (OperatorMissing) but has the 2-D one.
    """

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pool = copy.deepcopy(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, t = x.shape[1], x.shape[2]
        return self.pool(x.flatten(1, 2)).unflatten(1, (c, t))  # (B, C*T, H', W') -> (B, C, T, H', W')


def _inflate_layer(layer: nn.Module, time_kernel: int, time_padding: str) -> nn.Module | None:
    """The 3-D counterpart of one 2-D layer, or None when the layer is dimension-agnostic."""
    if isinstance(layer, nn.Conv2d):
        return _inflate_conv(layer, time_kernel, time_padding)
    if isinstance(layer, nn.BatchNorm2d):
        return _inflate_bn(layer)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return FramePool2d(layer)
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        if _pair(layer.output_size) != (1, 1):
            raise ValueError(f"inflate_2d_to_3d: only AdaptiveAvgPool2d(1) inflates (a global pool), "
                             f"got output_size={layer.output_size}")
        return GlobalAvgPool3d()
    if type(layer).__name__.endswith("2d"):
        raise ValueError(f"inflate_2d_to_3d: no 3-D rule for {type(layer).__name__}; supported 2-D layers: "
                         "Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1)")
    return None


def inflate_2d_to_3d(module: nn.Module, time_kernel: int = 3, time_padding: str = "replicate") -> nn.Module:
    """A 3-D copy of a 2-D network (the input is left untouched); see the module docstring.

    The copy takes ``(B, C, T, H, W)`` where the original took ``(B, C, H, W)`` and returns what
    the original returned (the kit's backbones: pooled features ``(B, F)``).

    Args:
        module: a 2-D network (e.g. `build_backbone(...)[0]`).
        time_kernel: temporal size kt of inflated convolutions (odd, >= 1; 1 gives a per-frame
            network whose global pool averages over time).
        time_padding: ``replicate`` (exact bootstrapping at every frame) or ``zeros`` (I3D).

    Raises:
        ValueError: an even/invalid ``time_kernel``, an unknown ``time_padding``, or a 2-D layer
            without a 3-D rule.
    """
    if time_kernel < 1 or time_kernel % 2 == 0:
        raise ValueError(f"inflate_2d_to_3d: time_kernel must be odd and >= 1, got {time_kernel}")
    if time_padding not in TIME_PADDINGS:
        raise ValueError(f"inflate_2d_to_3d: time_padding must be one of {TIME_PADDINGS}, got {time_padding!r}")
    root = _inflate_layer(module, time_kernel, time_padding)
    if root is not None:
        return root
    net = copy.deepcopy(module)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            new = _inflate_layer(child, time_kernel, time_padding)
            if new is not None:
                setattr(parent, name, new)
    return net


def inflate_state_dict(state2d: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """2-D tensors in the shapes of a 3-D state dict: conv kernels ``(O, I, kh, kw)`` whose target
    is ``(O, I, kt, kh, kw)`` are inflated (repeated over time, divided by kt), the rest copied.

    Args:
        state2d: a state dict of the 2-D network (or the keys of it to copy).
        target: the 3-D network's state dict (shapes only).

    Returns:
        ``{key: tensor}`` for every key of ``target`` that ``state2d`` has.

    Raises:
        ValueError: a tensor whose shape is neither the target's nor its 2-D form.
    """
    out = {}
    for key, want in target.items():
        if key not in state2d:
            continue
        src = state2d[key]
        if tuple(src.shape) == tuple(want.shape):
            out[key] = src
        elif src.dim() == 4 and want.dim() == 5 and tuple(want.shape[:2]) + tuple(want.shape[3:]) == tuple(src.shape):
            out[key] = inflate_conv_weight(src, want.shape[2])
        else:
            raise ValueError(f"inflate_state_dict: {key} is {tuple(src.shape)} in the 2-D state dict and "
                             f"{tuple(want.shape)} in the 3-D one (another backbone or width?)")
    return out


def inflate_from_image_model(model: "I3D", image_state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Initialise an `I3D`'s backbone from a 2-D model's ``backbone.*`` (the stage-1 image model).

    The head (dropout -> fc) keeps its fresh initialisation; nothing is frozen.

    Returns:
        The copied keys, sorted.

    Raises:
        ValueError: backbone tensors missing from the image state dict or of another backbone.
    """
    own = model.state_dict()
    wanted = sorted(k for k in own if k.startswith("backbone."))
    missing = [k for k in wanted if k not in image_state_dict]
    if missing:
        raise ValueError(f"inflate_from_image_model: the image state dict lacks {len(missing)} backbone tensors "
                         f"(first: {missing[:3]}); was it built with backbone {model.cfg.backbone!r} "
                         f"(width {model.cfg.width})?")
    state = inflate_state_dict({k: image_state_dict[k] for k in wanted}, {k: own[k] for k in wanted})
    model.load_state_dict(state, strict=False)
    return wanted


class I3D(VideoModel):
    """The configured 2-D backbone inflated to 3-D, 3-D global average pool, dropout, linear."""

    #: Temporal kernel of inflated convolutions and how time is padded (module docstring).
    time_kernel = 3
    time_padding = "replicate"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        backbone2d, self.backbone_dim = build_backbone(cfg.backbone, cfg.in_channels, cfg.width)
        self.backbone = inflate_2d_to_3d(backbone2d, self.time_kernel, self.time_padding)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(self.backbone_dim, cfg.num_classes)

    def init_from_image_state(self, image_state_dict: Mapping[str, torch.Tensor]) -> list[str]:
        """Stage-2 initialisation from a 2-D image model (`inflate_from_image_model`)."""
        return inflate_from_image_model(self, image_state_dict)

    def export_limits(self) -> dict[tuple[str, str], str]:
        # Measured with executorch 1.5.1, litert-torch 0.10.0, ai-edge-quantizer 0.10.0 on tiny
        # exports (tests/test_inflated.py): the fp32 .pte lowers but execute() fails with 0x12
        # (InvalidArgument: the portable convolution is 1-D/2-D only; XNNPACK takes no 3-D conv);
        # int8 does not build ("Missing out variants: {'quantized_decomposed::dequantize_per_channel'}",
        # the undelegated per-channel int8 conv3d). ONNX Runtime and LiteRT (fp32 and int8) run
        # it with the tiny and resnet18 backbones (resnet18 and mobilenet_v3_large exported by hand
        # at 32 px), and Core ML converts it (predicting needs macOS). docs/TOOLCHAIN_NOTES.md.
        limits = {
            ("executorch", "*"): "3-D convolution: XNNPACK has no 3-D kernels, ExecuTorch's portable kernels reject "
                                 "conv3d (execute: 0x12 InvalidArgument) and the int8 program does not build "
                                 "(\"Missing out variants: {'quantized_decomposed::dequantize_per_channel'}\"); "
                                 "use the ONNX Runtime or LiteRT artifact",
        }
        if any(isinstance(m, nn.Conv3d) and m.groups > 1 for m in self.modules()):
            # mobilenet_v3_large's depthwise convolutions: litert-torch refuses the graph.
            limits[("litert", "*")] = ("grouped (depthwise) 3-D convolution: LiteRT has no builtin for it "
                                       "(litert-torch: 'Some ops are not supported by the native TFLite runtime "
                                       "... TF Select ops: Conv3D'); use the ONNX Runtime artifact")
        return limits

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of a clip ``(B, T, C, H, W)`` of [0, 1] pixels."""
        self.check_clip(clip)
        x = self.normalize(clip).transpose(1, 2)  # (B, C, T, H, W)
        x = self.backbone(x)  # (B, F): the inflated backbone ends in its 3-D global average pool
        return self.fc(self.dropout(x))  # (B, K)


@register_model("i3d", "2-D backbone inflated to 3-D (I3D), 3-D global average pool (window-only)")
def i3d(cfg: ModelConfig) -> I3D:
    """Inflated 3-D CNN."""
    return I3D(cfg)
