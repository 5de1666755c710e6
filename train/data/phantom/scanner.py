"""The phantom's "ultrasound machine": fan geometry, speckle, attenuation, log compression, and the
burned-in screen furniture (text, depth scale, ECG strip) outside the fan.

Image geometry: the fan's apex sits just below the top edge in the middle column; its radius is
86 % of the image height, which leaves a strip at the bottom for the ECG trace.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

APEX_ROW = 1.0
RADIUS_FRACTION = 0.86
NEAR_FIELD = 0.02  # the fan starts a hair below the apex (sector units)
LOG_K = 12.0  # log-compression strength


@dataclass(frozen=True)
class FanGrid:
    """Per-pixel geometry of one image size and sector opening, all ``(H, W)`` float32 / bool.

    Attributes:
        sx, sy: pixel position relative to the apex, in sector radii (``sy = 1`` is the fan's depth).
        rr: distance to the apex in sector radii.
        mask: True inside the fan.
        radius_px: fan radius in pixels.
    """

    sx: np.ndarray
    sy: np.ndarray
    rr: np.ndarray
    mask: np.ndarray
    radius_px: float

    @classmethod
    def build(cls, height: int, width: int, half_angle_deg: float) -> "FanGrid":
        radius = RADIUS_FRACTION * (height - 1)
        rows = (np.arange(height, dtype=np.float32) - APEX_ROW)[:, None]
        cols = (np.arange(width, dtype=np.float32) - (width - 1) / 2.0)[None, :]
        sx = np.broadcast_to(cols / radius, (height, width)).astype(np.float32)
        sy = np.broadcast_to(rows / radius, (height, width)).astype(np.float32)
        rr = np.sqrt(sx**2 + sy**2)
        theta = np.degrees(np.arctan2(sx, sy))
        mask = (rr <= 1.0) & (rr >= NEAR_FIELD) & (np.abs(theta) <= half_angle_deg) & (sy > 0)
        return cls(sx, sy, rr, mask, radius)


def anatomy_coordinates(grid: FanGrid, angle_deg: float, zoom: float, shift: tuple[float, float],
                        pivot: tuple[float, float] = (0.0, 0.52)) -> tuple[np.ndarray, np.ndarray]:
    """Map fan pixels into anatomy space: the probe tilts by ``angle_deg`` about ``pivot`` and the
    imaging depth / heart size shows as ``zoom`` (>1 = the heart looks bigger)."""
    a = np.deg2rad(angle_deg)
    c, s = np.float32(np.cos(a)), np.float32(np.sin(a))
    px, py = grid.sx - pivot[0], grid.sy - pivot[1]
    X = pivot[0] + (c * px - s * py) / zoom + shift[0]
    Y = pivot[1] + (s * px + c * py) / zoom + shift[1]
    return X.astype(np.float32), Y.astype(np.float32)


def speckle(base: np.ndarray, fresh: np.ndarray, correlation: float, strength: float) -> np.ndarray:
    """Multiplicative speckle with unit mean.

    Args:
        base: ``(2, H, W)`` standard normals shared by the whole clip (tissue speckle persists).
        fresh: ``(T, 2, H, W)`` standard normals, one draw per frame (decorrelation over time).
        correlation: frame-to-frame correlation of the complex field, in ``[0, 1]``.
        strength: 0 = no speckle, 1 = fully developed Rayleigh speckle.

    Returns:
        ``(T, H, W)`` float32 speckle factors.
    """
    rho = np.float32(correlation)
    z = rho * base[None] + np.sqrt(1 - rho**2, dtype=np.float32) * fresh  # (T, 2, H, W) re/im parts
    # Lateral smoothing: speckle grains are wider than they are deep, as in a real beam.
    z = (z + np.roll(z, 1, axis=-1) + np.roll(z, -1, axis=-1)) / np.float32(np.sqrt(3.0))
    amp = np.sqrt(0.5 * (z[:, 0] ** 2 + z[:, 1] ** 2)) / np.float32(np.sqrt(np.pi) / 2)  # Rayleigh, mean 1
    return (1.0 - strength) + strength * amp


def bmode(echo: np.ndarray, grid: FanGrid, speckle_field: np.ndarray, gain: float, attenuation: float,
          noise: np.ndarray, noise_sigma: float) -> np.ndarray:
    """Turn an echogenicity canvas into uint8 B-mode frames, black outside the fan.

    Args:
        echo: ``(T, H, W)`` echogenicity in ``[0, 1]``.
        grid: fan geometry.
        speckle_field: ``(T, H, W)`` multiplicative speckle.
        gain: overall gain.
        attenuation: depth attenuation coefficient (per sector radius, after TGC).
        noise: ``(T, H, W)`` standard normals (electronic noise after compression).
        noise_sigma: noise level on the ``[0, 1]`` display scale.
    """
    depth_gain = np.exp(-attenuation * grid.rr).astype(np.float32)
    clutter = np.float32(0.25) * np.exp(-grid.rr / 0.05).astype(np.float32)  # near-field reverberation
    intensity = gain * (echo + clutter) * speckle_field * depth_gain  # (T, H, W)
    shown = np.log1p(LOG_K * intensity) / np.float32(np.log1p(LOG_K))
    shown += np.float32(noise_sigma) * noise
    out = np.clip(shown * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out *= grid.mask  # exactly zero outside the fan
    return out


def _ecg_wave(phase: np.ndarray) -> np.ndarray:
    """A stylised ECG beat (P, QRS, T) as a function of phase in ``[0, 1)``."""
    g = lambda mu, sd, amp: amp * np.exp(-0.5 * ((phase - mu) / sd) ** 2)  # noqa: E731
    return g(0.1, 0.025, 0.15) + g(0.2, 0.008, -0.15) + g(0.22, 0.01, 1.0) + g(0.24, 0.008, -0.25) + g(0.5, 0.05, 0.3)


def screen_overlay(grid: FanGrid, lines: dict, depth_cm: float, heart_rate_bpm: float, fps: float,
                   ecg_phase: float | None, text: bool) -> np.ndarray:
    """Static ``(H, W)`` uint8 screen furniture, zero inside the fan.

    Args:
        grid: fan geometry (the overlay never touches the fan).
        lines: ``{"top_left": str, "top_right": str}`` text to burn in.
        depth_cm: depth shown by the scale on the right edge (one tick per cm).
        heart_rate_bpm: sets the ECG trace's period.
        fps: frame rate (only the trace's time axis).
        ecg_phase: phase of the trace's first sample, or ``None`` for no ECG strip. It is drawn
            independently of the heart's phase on purpose: a synchronised trace would tell a
            single frame which way the cycle runs.
        text: burn in the text and the depth scale.
    """
    from PIL import Image, ImageDraw, ImageFont

    h, w = grid.mask.shape
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    if text:
        font = ImageFont.load_default(size=max(6, round(h / 14)))
        draw.text((2, 0), lines.get("top_left", ""), fill=230, font=font)
        right = lines.get("top_right", "")
        tw = draw.textlength(right, font=font)
        draw.text((w - 2 - tw, 0), right, fill=230, font=font)
        for cm in range(int(depth_cm) + 1):  # depth scale: a tick per centimetre along the right edge
            y = APEX_ROW + grid.radius_px * cm / depth_cm
            draw.line([(w - 4, y), (w - 1, y)], fill=200)
        label = f"{depth_cm:.0f}cm"
        draw.text((w - 2 - draw.textlength(label, font=font), APEX_ROW + grid.radius_px * 0.55), label, fill=200, font=font)
    if ecg_phase is not None:
        top = int(np.ceil(APEX_ROW + grid.radius_px)) + 2
        if h - top >= 5:
            cols = np.arange(4, w - 4)
            seconds = (cols - 4) / (w - 8) * 2.0  # the strip shows two seconds
            ph = np.mod(ecg_phase + seconds * heart_rate_bpm / 60.0, 1.0)
            base, amp = h - 3, (h - top - 3)
            ys = base - amp * np.clip(_ecg_wave(ph), -0.3, 1.0)
            draw.line(list(zip(cols.tolist(), ys.tolist())), fill=170, width=1)
    out = np.asarray(img, dtype=np.uint8).copy()
    out[grid.mask] = 0
    return out
