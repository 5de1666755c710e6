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
    """

    compute: Callable[[np.ndarray, dict], np.ndarray]
    shape: Callable[[tuple, dict], tuple]
    min_frames: int = 1


def _frame_difference(window: np.ndarray, spec: dict) -> np.ndarray:
    return (window[1:] - window[:-1]).astype(np.float32)  # (T - 1, C, S, S)


DERIVATIONS: dict[str, Derivation] = {
    # Temporal difference of neighbouring frames: the cheapest motion signal, in [-1, 1].
    "frame_difference": Derivation(_frame_difference, lambda s, spec: (s[0] - 1, *s[1:]), min_frames=2),
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
