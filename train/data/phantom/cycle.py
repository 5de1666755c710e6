"""The phantom's cardiac cycle: phase bookkeeping and the waveforms that drive walls and valves.

A phase is a float in ``[0, 1)``; 0 is the start of systole. Every waveform is deliberately
asymmetric in time (fast systole, slower relaxation; valves that snap open and drift shut), so
that a cycle played backwards is a different *motion* made of the very same *frames*. That is
what the motion-only class pairs rely on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SYSTOLE_END = 0.30  # contraction peaks here ...
RELAX_END = 0.75  # ... and is relaxed again here; the rest of the cycle is diastasis.


def cardiac_phases(start_phase: float, heart_rate_bpm: float, fps: float, frame_indices: np.ndarray,
                   time_reversed: bool = False) -> np.ndarray:
    """Phase of each requested frame.

    Args:
        start_phase: phase of frame 0, in ``[0, 1)``.
        heart_rate_bpm: beats per minute.
        fps: frames per second.
        frame_indices: ``(T,)`` integer frame numbers.
        time_reversed: play the cycle backwards (phase decreases with time).

    Returns:
        ``(T,)`` float64 phases in ``[0, 1)``.
    """
    t = np.asarray(frame_indices, dtype=np.float64)
    phase = start_phase + t * heart_rate_bpm / 60.0 / fps
    if time_reversed:
        # Mirror around 0: with a uniformly random start phase every single frame is drawn from
        # the same distribution as in forward time; only the order of frames differs.
        phase = -phase
    return np.mod(phase, 1.0)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _window(phase: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """1 inside ``[start, end]`` with smooth ramps of width ``ramp`` at both ends, else 0."""
    return _smoothstep((phase - start) / ramp) * _smoothstep((end - phase) / ramp)


def contraction(phase: np.ndarray) -> np.ndarray:
    """Ventricular contraction in ``[0, 1]``: quick rise in systole, slower relaxation, then rest."""
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(phase / SYSTOLE_END, 0, 1))
    fall = 0.5 + 0.5 * np.cos(np.pi * np.clip((phase - SYSTOLE_END) / (RELAX_END - SYSTOLE_END), 0, 1))
    return np.where(phase < SYSTOLE_END, rise, fall)


def atrial_kick(phase: np.ndarray) -> np.ndarray:
    """Atrial contraction at end-diastole, in ``[0, 1]``."""
    return _window(phase, 0.84, 0.97, 0.05)


def semilunar_open(phase: np.ndarray) -> np.ndarray:
    """Aortic/pulmonary valve opening in ``[0, 1]``: open during ejection."""
    return _window(phase, 0.04, SYSTOLE_END, 0.03)


def atrioventricular_open(phase: np.ndarray) -> np.ndarray:
    """Mitral/tricuspid opening in ``[0, 1]``: E wave (fast open, partial closure), A wave."""
    e_wave = _smoothstep((phase - 0.33) / 0.05) * (1.0 - 0.55 * _smoothstep((phase - 0.40) / 0.35))
    e_wave = e_wave * _smoothstep((0.99 - phase) / 0.03)
    a_wave = 0.35 * _window(phase, 0.82, 0.97, 0.04)
    return np.clip(e_wave + a_wave, 0.0, 1.0)


def sawtooth(phase: np.ndarray) -> np.ndarray:
    """Snap open in 12 % of the cycle, drift shut over the next 73 %, stay shut.

    Used by the leaflets of the motion-only views: forwards the leaflet sweeps slowly one way for
    most of the cycle, backwards it sweeps slowly the other way.
    """
    up = np.clip(phase / 0.12, 0, 1)
    down = 1.0 - np.clip((phase - 0.12) / 0.73, 0, 1)
    return np.where(phase < 0.12, up, down)


DRIVES = {
    "contraction": contraction,
    "atrial": lambda p: 0.6 * contraction(p) - 0.5 * atrial_kick(p),  # atria fill in systole, empty at the kick
    "semilunar": semilunar_open,
    "av": atrioventricular_open,
    "saw": sawtooth,
    "static": lambda p: np.zeros_like(p),
}


@dataclass(frozen=True)
class CycleState:
    """Every drive evaluated at the frames' phases, each shaped ``(T, 1, 1)`` to broadcast on images."""

    values: dict

    @classmethod
    def at(cls, phases: np.ndarray) -> "CycleState":
        p = np.asarray(phases, dtype=np.float64)
        return cls({name: fn(p).astype(np.float32)[:, None, None] for name, fn in DRIVES.items()})

    def __getitem__(self, drive: str) -> np.ndarray:
        return self.values[drive]
