"""Deterministic eval transform (torchvision.transforms.v2), the twin of `edge.preprocess`.

    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.train.data.transforms import eval_transform, to_video
    x = eval_transform(PreprocessSpec())(to_video(clip.frames))  # (T, 1, 224, 224) float32

The pipeline is built from the spec alone, in the same order as
`echoweave.edge.preprocess.preprocess_frames`: grayscale -> float32 [0, 1] -> antialiased
bilinear Resize(shorter side) -> CenterCrop. Scaling comes before the resize so the resize
runs in float32 on every machine (torchvision's uint8 resize kernel depends on the CPU); see
the edge module for why. The sector mask is clip-level and applied by the caller beforehand.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from echoweave.edge.image import rgb_to_gray
from echoweave.edge.preprocess import PreprocessSpec

__all__ = ["GrayscaleBT601", "eval_transform", "to_video", "scale_and_geometry"]


class GrayscaleBT601(v2.Transform):
    """RGB -> 1-channel luma on ``(..., 3, H, W)`` uint8 tensors, bit-identical to the edge.

    `v2.Grayscale` weights red by 0.2989 and truncates to uint8, which differs from
    `echoweave.edge.image.rgb_to_gray` (0.299, rounded) by one grey level on many pixels; this
    transform calls that very function so the twins cannot drift. 1-channel input passes through.
    """

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if inpt.shape[-3] == 1:
            return inpt
        if inpt.shape[-3] != 3 or inpt.dtype != torch.uint8:
            raise ValueError(f"GrayscaleBT601 expects uint8 (..., 3, H, W), got {inpt.dtype} {tuple(inpt.shape)}")
        hwc = inpt.movedim(-3, -1).cpu().numpy()  # (..., H, W, 3)
        gray = torch.from_numpy(rgb_to_gray(hwc)).unsqueeze(-3).to(inpt.device)  # (..., 1, H, W)
        return tv_tensors.wrap(gray, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else gray


def to_video(frames: np.ndarray | torch.Tensor) -> tv_tensors.Video:
    """Wrap uint8 frames as a ``(T, C, H, W)`` `tv_tensors.Video`.

    Accepts ``(T, H, W)`` grayscale, ``(T, H, W, 3)`` channels-last RGB (a reader's layout), or
    an already channel-first ``(T, 1|3, H, W)`` array. A Video (not a plain tensor) is what
    makes v2 transforms draw one set of random parameters for the whole clip.
    """
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.ndim not in (3, 4):
        raise ValueError(f"frames must be uint8 (T, H, W), (T, H, W, 3) or (T, C, H, W), got {x.dtype} {tuple(x.shape)}")
    if x.ndim == 3:
        x = x.unsqueeze(1)  # (T, 1, H, W)
    elif x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)  # (T, 3, H, W)
    elif x.shape[1] not in (1, 3):
        raise ValueError(f"4-D frames must be (T, H, W, 3) or (T, 1|3, H, W), got {tuple(x.shape)}")
    return tv_tensors.Video(x.contiguous())


def _to_float(spec: PreprocessSpec) -> v2.Transform:
    if not math.isclose(spec.scale, 1.0 / 255.0, rel_tol=1e-12):
        raise ValueError(f"the torchvision transforms support scale=1/255 only, spec has {spec.scale!r}")
    return v2.ToDtype(torch.float32, scale=True)  # uint8 -> float32 * (1/255)


def scale_and_geometry(spec: PreprocessSpec) -> list[v2.Transform]:
    """The steps shared by eval and train before the crop: grayscale, to float [0, 1], resize."""
    steps: list[v2.Transform] = [GrayscaleBT601()] if spec.grayscale else []
    steps += [_to_float(spec), v2.Resize(spec.resize, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)]
    return steps


def eval_transform(spec: PreprocessSpec) -> v2.Compose:
    """The deterministic eval transform for a uint8 video ``(T, C, H, W)`` -> float32 ``(T, C', crop, crop)``.

    Args:
        spec: the model's preprocessing spec (sector masking is the caller's job).

    Returns:
        A `v2.Compose`; feed it `to_video(frames)` (or any uint8 ``(T, C, H, W)`` tensor).
    """
    return v2.Compose([*scale_and_geometry(spec), v2.CenterCrop(spec.crop)])
