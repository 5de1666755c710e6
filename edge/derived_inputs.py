"""Inputs a model takes besides its pixels, computed from them on the device.

A model may declare a second input (a motion stream, optical flow, ...) that the app does not
feed: the manifest's input spec names, for that input, ``derive: {"kind": ..., "from": "clip"}``
plus any parameters of the kind. Training, export calibration, parity and the edge runtime all
compute it with the function registered here, on the preprocessed window, so the numbers the
model was trained on are the numbers it gets on the phone (docs/ARCHITECTURE.md "The model
contract").

    from echoweave.edge.derived_inputs import derive
    motion = derive({"kind": "frame_difference", "from": "clip"}, window)  # (T - 1, C, S, S)

numpy only: the edge imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from echoweave.edge.errors import EchoweaveError


class DerivedInputError(EchoweaveError, ValueError):
    """A derived input cannot be computed: unknown kind, or a window it cannot use."""


@dataclass(frozen=True)
class Derivation:
    """One kind of derived input.

    Attributes:
        compute: ``(window (T, C, S, S) float32, spec) -> array`` for one window.
        shape: ``(window shape (T, C, S, S), spec) -> shape`` of the result, without computing it.
        min_frames: the fewest frames a window must hold.
        pairwise: entry ``t`` of the result depends only on frames ``t`` and ``t + 1`` (so a
            trainer may compute it once per frame pair of a clip and slice windows from it).
    """

    compute: Callable[[np.ndarray, dict], np.ndarray]
    shape: Callable[[tuple, dict], tuple]
    min_frames: int = 1
    pairwise: bool = False


def _frame_difference(window: np.ndarray, spec: dict) -> np.ndarray:
    return (window[1:] - window[:-1]).astype(np.float32)  # (T - 1, C, S, S)


#: OpenCV's documented example parameters of ``calcOpticalFlowFarneback``; a spec may override
#: each (the model writes all of them, so the manifest states exactly what the device computes).
FARNEBACK_DEFAULTS = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5,
                      "poly_sigma": 1.2, "bound": 4.0}


def _farneback_flow(window: np.ndarray, spec: dict) -> np.ndarray:
    """Dense optical flow between neighbouring frames (OpenCV Farneback), ``(T - 1, 2, S, S)``.

    Channel 0 is the x (horizontal) displacement, channel 1 the y one, in pixels of the
    preprocessed frame divided by ``bound`` and clipped to [-1, 1]. Frames are averaged over
    channels and quantized to uint8 (``rint(255 x)``) first: Farneback's documented input is an
    8-bit single-channel image, and float32 frames in [0, 1] (which OpenCV also accepts) gave
    ~1e-5 px for a 1-px shift (its thresholds assume 0..255 intensities).
    """
    try:
        import cv2  # opencv-python-headless: only models with a flow input need it
    except ImportError as exc:
        raise DerivedInputError(f"a farneback_flow input needs OpenCV ({exc}); pip install "
                                "opencv-python-headless (it comes with echoweave[edge])") from None

    p = {**FARNEBACK_DEFAULTS, **{k: spec[k] for k in FARNEBACK_DEFAULTS if k in spec}}
    gray = window.mean(axis=1) if window.shape[1] > 1 else window[:, 0]  # (T, S, S)
    frames = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
    out = np.empty((len(frames) - 1, 2, *frames.shape[1:]), np.float32)
    for t in range(len(frames) - 1):
        flow = cv2.calcOpticalFlowFarneback(frames[t], frames[t + 1], None, float(p["pyr_scale"]), int(p["levels"]),
                                            int(p["winsize"]), int(p["iterations"]), int(p["poly_n"]),
                                            float(p["poly_sigma"]), 0)  # (S, S, 2): x, y
        out[t] = flow.transpose(2, 0, 1)
    return np.clip(out / np.float32(p["bound"]), -1.0, 1.0, out=out)


DERIVATIONS: dict[str, Derivation] = {
    # Temporal difference of neighbouring frames: the cheapest motion signal, in [-1, 1].
    "frame_difference": Derivation(_frame_difference, lambda s, spec: (s[0] - 1, *s[1:]), min_frames=2,
                                   pairwise=True),
    # Dense optical flow (x, y) of neighbouring frames, OpenCV Farneback, scaled to [-1, 1].
    "farneback_flow": Derivation(_farneback_flow, lambda s, spec: (s[0] - 1, 2, *s[2:]), min_frames=2,
                                 pairwise=True),
}


def register_derivation(kind: str, derivation: Derivation) -> None:
    """Add a kind of derived input (refuses to replace one)."""
    if kind in DERIVATIONS:
        raise ValueError(f"derived input kind {kind!r} is already registered")
    DERIVATIONS[kind] = derivation


def _lookup(spec: dict) -> Derivation:
    kind = spec.get("kind")
    if kind not in DERIVATIONS:
        raise DerivedInputError(f"unknown derived input kind {kind!r}; this echoweave knows: "
                                f"{', '.join(DERIVATIONS)} (upgrade echoweave?)")
    return DERIVATIONS[kind]


def min_frames(spec: dict) -> int:
    """The fewest real frames a window must hold for this kind (2 for motion between frames)."""
    return _lookup(spec).min_frames


def is_pairwise(spec: dict) -> bool:
    """True when the kind's entry ``t`` depends only on frames ``t`` and ``t + 1``."""
    return _lookup(spec).pairwise


def derived_shape(spec: dict, window_shape: tuple) -> tuple:
    """Shape of the derived input of one window of ``window_shape`` ``(T, C, S, S)``."""
    return tuple(int(d) for d in _lookup(spec).shape(tuple(window_shape), spec))


def derive(spec: dict, window: np.ndarray, source: str = "window") -> np.ndarray:
    """The derived input of one preprocessed window ``(T, C, S, S)`` float32.

    Raises:
        DerivedInputError: unknown kind, or fewer frames than the kind needs (naming ``source``).
    """
    d = _lookup(spec)
    window = np.asarray(window, dtype=np.float32)
    if window.ndim < 1 or len(window) < d.min_frames:
        raise DerivedInputError(f"{source}: a {spec['kind']} input needs at least {d.min_frames} frames, got "
                                f"{len(window) if window.ndim else 0}")
    return np.ascontiguousarray(d.compute(window, spec), dtype=np.float32)


def derive_batch(spec: dict, windows: np.ndarray) -> np.ndarray:
    """`derive` of every window of ``(B, T, C, S, S)``, stacked ``(B, ...)``."""
    return np.stack([derive(spec, w) for w in windows])
