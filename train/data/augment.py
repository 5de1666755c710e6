"""Clip-consistent training augmentation (torchvision.transforms.v2 on video tensors).

    from echoweave.train.data.augment import AugmentConfig, train_transform
    tf = train_transform(PreprocessSpec(), AugmentConfig())
    x = tf(to_video(frames))  # (T, 1, 224, 224) float32 in [0, 1]

Every random parameter is drawn **once per clip** and applied to all its frames: v2 transforms
do that for a `tv_tensors.Video` ``(T, C, H, W)``. (The NED reference code re-samples the
rotation per frame, which makes the heart jitter between frames and teaches a temporal model
motion that is not there; that defect is not copied.) Intensity changes are clip-level too:
torchvision's autocontrast and contrast use each *frame's* own min/max/mean, which would make
the brightness flicker between frames, so `RandomClipAutocontrast` and `RandomClipContrast`
compute those statistics over the whole clip.

Geometry is the eval geometry plus jitter: same grayscale, same float [0, 1] scaling, same
Resize(spec.resize) as `eval_transform`, then affine jitter, then a random (or centre) crop of
spec.crop. With augmentation disabled, the train transform *is* the eval transform.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from echoweave.edge.preprocess import PreprocessSpec
from echoweave.train.data.transforms import eval_transform, scale_and_geometry

__all__ = ["AugmentConfig", "RandomClipAutocontrast", "RandomClipContrast", "train_transform"]


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; resize and crop sizes come from the `PreprocessSpec`, not from here.

    Defaults follow the paper (random rotation within +-25 degrees and random autocontrast; it
    found these best) and leave the other jitters off.

    Attributes:
        enabled: False makes `train_transform` the deterministic eval transform.
        rotation: Maximum rotation in degrees (uniform in [-rotation, rotation]).
        scale: (min, max) zoom factor; (1, 1) disables zoom.
        shift: Maximum translation as a fraction of width/height; 0 disables.
        hflip: Probability of a horizontal flip. Off by default: a mirrored echo swaps the
            ventricles' sides, which no probe produces in a standard view.
        contrast: Contrast factor drawn from [1 - contrast, 1 + contrast] around the clip mean.
        autocontrast: Probability of stretching the clip's intensity range to [0, 1].
        random_crop: Crop at a random position (True) or in the centre (False).
    """

    enabled: bool = True
    rotation: float = 25.0
    scale: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    hflip: float = 0.0
    contrast: float = 0.0
    autocontrast: float = 0.5
    random_crop: bool = True

    def __post_init__(self):
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))  # YAML gives lists
        if len(self.scale) != 2:
            raise ValueError(f"AugmentConfig.scale must be (min, max), got {self.scale}")
        if not 0.0 <= self.rotation <= 180.0:
            raise ValueError(f"AugmentConfig.rotation must be in [0, 180] degrees, got {self.rotation}")
        lo, hi = self.scale
        if not 0.0 < lo <= hi:
            raise ValueError(f"AugmentConfig.scale must be (min, max) with 0 < min <= max, got {self.scale}")
        if not 0.0 <= self.shift <= 1.0:
            raise ValueError(f"AugmentConfig.shift must be a fraction in [0, 1], got {self.shift}")
        for name in ("hflip", "autocontrast"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} is a probability in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.contrast < 1.0:
            raise ValueError(f"AugmentConfig.contrast must be in [0, 1), got {self.contrast}")


def _clip_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Every dim but the channel one (-3): statistics over frames, rows and columns."""
    return tuple(d for d in range(x.ndim) if d != x.ndim - 3)


def _bound(x: torch.Tensor) -> float:
    return 1.0 if x.is_floating_point() else 255.0


class RandomClipAutocontrast(v2.Transform):
    """With probability p, map the clip's per-channel min..max to the full range (one stretch per clip)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"apply": bool(torch.rand(1) < self.p)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params["apply"]:
            return inpt
        x, bound = inpt.as_subclass(torch.Tensor), _bound(inpt)
        lo, hi = x.amin(dim=_clip_dims(x), keepdim=True), x.amax(dim=_clip_dims(x), keepdim=True)  # (1, C, 1, 1)
        flat = hi == lo  # a constant clip stays as it is
        gain = torch.where(flat, 1.0, bound / (hi - lo).clamp(min=1e-12))
        out = ((x.float() - torch.where(flat, 0.0, lo)) * gain).clamp(0, bound).to(x.dtype)
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out


class RandomClipContrast(v2.Transform):
    """Scale the clip's contrast around its per-channel mean by one factor from [1-c, 1+c]."""

    def __init__(self, contrast: float):
        super().__init__()
        self.contrast = contrast

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"factor": float(torch.empty(1).uniform_(1.0 - self.contrast, 1.0 + self.contrast))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        x, bound, f = inpt.as_subclass(torch.Tensor), _bound(inpt), params["factor"]
        mean = x.float().mean(dim=_clip_dims(x), keepdim=True)  # (1, C, 1, 1)
        out = (f * x.float() + (1.0 - f) * mean).clamp(0, bound)
        out = out if x.is_floating_point() else out.round().to(x.dtype)
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out


def train_transform(spec: PreprocessSpec, aug: AugmentConfig = AugmentConfig()) -> v2.Compose:
    """Training transform for a uint8 video ``(T, C, H, W)`` -> float32 ``(T, C', crop, crop)`` in [0, 1].

    Steps: grayscale -> float [0, 1] -> Resize(spec.resize) (exactly `eval_transform`'s) ->
    affine jitter (rotation, zoom, shift; bilinear, black fill like the area outside the
    sector) -> horizontal flip -> random or centre crop of spec.crop -> clip autocontrast ->
    clip contrast. All random parameters are shared by the frames of one clip.

    Args:
        spec: the model's preprocessing spec (the caller applies the sector mask beforehand).
        aug: augmentation settings; ``aug.enabled=False`` returns `eval_transform(spec)`.

    Returns:
        A `v2.Compose` drawing its randomness from torch's global generator
        (`torch.manual_seed` makes it reproducible).
    """
    if not aug.enabled:
        return eval_transform(spec)
    steps: list[v2.Transform] = scale_and_geometry(spec)
    if aug.rotation > 0 or aug.scale != (1.0, 1.0) or aug.shift > 0:
        steps.append(
            v2.RandomAffine(
                degrees=aug.rotation,
                translate=(aug.shift, aug.shift) if aug.shift > 0 else None,
                scale=aug.scale if aug.scale != (1.0, 1.0) else None,
                interpolation=v2.InterpolationMode.BILINEAR,
                fill=0,
            )
        )
    if aug.hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=aug.hflip))
    steps.append(v2.RandomCrop(spec.crop) if aug.random_crop else v2.CenterCrop(spec.crop))
    if aug.autocontrast > 0:
        steps.append(RandomClipAutocontrast(aug.autocontrast))
    if aug.contrast > 0:
        steps.append(RandomClipContrast(aug.contrast))
    return v2.Compose(steps)
