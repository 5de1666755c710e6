"""The phantom's frame-quality knob: clips of poor quality, so that uncertainty has something to detect.

At the point of care many frames are poor: the probe loses contact for a moment (a dark frame),
the gain is wrong or the patient moves (heavy noise), a rib or air hides part of the heart (an
acoustic shadow: a dark wedge below the obstacle). `PhantomConfig.degraded` is the share of clips
rendered with one or more of these; which clips, which artefacts and how strong are drawn from a
generator of their own (tag ``_TAG_QUALITY``), so a phantom with ``degraded = 0`` is exactly the
phantom without the knob, and changing the share never changes a clean clip's pixels.

    from echoweave.train.data.phantom import PhantomConfig, generate_dataset
    clips = generate_dataset(PhantomConfig(degraded=0.3))
    clips[0].meta["quality"]   # {"degraded": True, "dropout": 0.31, "noise": 0.0, "shadow_deg": 27.4, ...}

Every artefact stays inside the fan (the burned-in text and ECG strip outside it are untouched)
and is decided per clip (kinds, strengths, shadow position) and per frame (which frames drop out,
the noise field) from seeded generators, so one frame rendered alone equals the same frame of the
whole clip, as everywhere else in the phantom.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from echoweave.train.data.phantom.scanner import FanGrid

_TAG_QUALITY = 0x9A11

#: Each artefact's chance of appearing in a degraded clip (at least one always does).
ARTEFACT_CHANCE = 0.6
#: Ranges the strengths are drawn from (uniform).
DROPOUT_RANGE = (0.25, 0.5)  # share of frames lost
NOISE_RANGE = (40.0, 70.0)  # std of additive noise, grey levels
SHADOW_WIDTH_RANGE = (18.0, 32.0)  # degrees
SHADOW_START_RANGE = (0.12, 0.35)  # sector radii below the apex where the obstacle sits
SHADOW_GAIN = 0.12  # what is left of the echo inside the shadow
DROPOUT_LEVEL = 6.0  # mean grey level of a lost frame (electronic noise only)


@dataclass(frozen=True)
class Degradation:
    """What is wrong with one clip (all zero for a clean clip).

    Attributes:
        dropout: share of frames lost (the fan goes dark but for electronic noise).
        noise: std of additive Gaussian noise inside the fan, in grey levels.
        shadow_deg: width of an acoustic shadow wedge in degrees (0 = none).
        shadow_centre_deg: the wedge's centre, degrees from the fan's axis.
        shadow_start: depth (sector radii) at which the shadow begins.
    """

    dropout: float = 0.0
    noise: float = 0.0
    shadow_deg: float = 0.0
    shadow_centre_deg: float = 0.0
    shadow_start: float = 0.0

    @property
    def degraded(self) -> bool:
        """True when any artefact is present."""
        return self.dropout > 0 or self.noise > 0 or self.shadow_deg > 0

    def to_meta(self) -> dict:
        """``{"degraded": bool, ...fields}`` rounded for a clip's ``meta["quality"]``."""
        return {"degraded": self.degraded, **{k: round(float(v), 4) for k, v in asdict(self).items()}}


CLEAN = Degradation()


def draw_degradation(fraction: float, seed: int, patient: int, view: int, clip: int,
                     half_angle_deg: float) -> Degradation:
    """Whether clip ``(patient, view, clip)`` of phantom ``seed`` is degraded, and how.

    Args:
        fraction: share of degraded clips in [0, 1] (`PhantomConfig.degraded`).
        seed, patient, view, clip: the clip's identity (seeds the draw).
        half_angle_deg: the patient's fan half-opening (the shadow stays inside the fan).
    """
    if fraction <= 0:
        return CLEAN
    rng = np.random.default_rng([seed, _TAG_QUALITY, patient, view, clip])
    if rng.uniform() >= fraction:
        return CLEAN
    kinds = rng.uniform(size=3) < ARTEFACT_CHANCE
    if not kinds.any():
        kinds[int(rng.integers(3))] = True
    strengths = (rng.uniform(*DROPOUT_RANGE), rng.uniform(*NOISE_RANGE), rng.uniform(*SHADOW_WIDTH_RANGE))
    width = strengths[2] if kinds[2] else 0.0
    room = max(0.0, half_angle_deg - width / 2)
    return Degradation(
        dropout=float(strengths[0]) if kinds[0] else 0.0,
        noise=float(strengths[1]) if kinds[1] else 0.0,
        shadow_deg=float(width),
        shadow_centre_deg=float(rng.uniform(-room, room)) if kinds[2] else 0.0,
        shadow_start=float(rng.uniform(*SHADOW_START_RANGE)) if kinds[2] else 0.0,
    )


def shadow_gain(grid: FanGrid, deg: Degradation) -> np.ndarray:
    """``(H, W)`` float32 factor: 1 outside the shadow, `SHADOW_GAIN` inside, soft edges."""
    theta = np.degrees(np.arctan2(grid.sx, grid.sy))
    # Soft over ~2 degrees at the sides and ~0.03 radii at the top (a shadow's edges blur).
    side = np.clip((deg.shadow_deg / 2 - np.abs(theta - deg.shadow_centre_deg)) / 2.0 + 0.5, 0, 1)
    top = np.clip((grid.rr - deg.shadow_start) / 0.03 + 0.5, 0, 1)
    inside = (side * top).astype(np.float32)
    return (1.0 - (1.0 - SHADOW_GAIN) * inside).astype(np.float32)


def degrade(frames: np.ndarray, frame_indices, deg: Degradation, grid: FanGrid,
            key: tuple[int, ...]) -> np.ndarray:
    """Apply ``deg`` to ``frames`` inside the fan.

    Args:
        frames: ``(T, H, W)`` uint8 clean frames (not modified).
        frame_indices: ``(T,)`` frame numbers (seed each frame's dropout and noise draw).
        deg: the clip's degradation (`draw_degradation`).
        grid: the clip's fan geometry.
        key: ``(seed, patient, view, clip)`` of the clip.

    Returns:
        ``(T, H, W)`` uint8 frames (the input itself when ``deg`` is clean).
    """
    if not deg.degraded:
        return frames
    fan = grid.mask
    out = frames.astype(np.float32)
    if deg.shadow_deg > 0:
        out[:, fan] *= shadow_gain(grid, deg)[fan]
    for i, t in enumerate(np.asarray(frame_indices).reshape(-1)):
        rng = np.random.default_rng([key[0], _TAG_QUALITY, *key[1:], int(t)])
        lost = rng.uniform() < deg.dropout
        noise = rng.standard_normal(int(fan.sum()), dtype=np.float32)
        if lost:
            out[i, fan] = DROPOUT_LEVEL * (1.0 + 0.5 * noise)
        elif deg.noise > 0:
            out[i, fan] += deg.noise * noise
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
