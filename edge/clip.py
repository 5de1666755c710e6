"""The one clip type every reader returns and every sampler consumes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from echoweave.edge.errors import ClipReadError


@dataclass
class Clip:
    """A short ultrasound recording.

    Attributes:
        frames: ``uint8`` pixels, ``(T, H, W)`` grayscale or ``(T, H, W, 3)`` RGB before conversion.
        fps: frames per second (from the header where the format has one).
        patient_id: who was scanned; used only to keep splits apart, never logged from DICOM.
        label: class id, or ``None`` when unlabelled.
        source: path of the file or folder the clip came from.
        view: class name matching ``label`` (``None`` when unlabelled).
        meta: extra reader facts (format, photometric interpretation, ...), never patient data.
    """

    frames: np.ndarray
    fps: float
    patient_id: str = ""
    label: int | None = None
    source: str = ""
    view: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        f = self.frames
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8:
            raise ClipReadError(self.source, f"frames must be a uint8 numpy array, got {getattr(f, 'dtype', type(f))}")
        if f.ndim not in (3, 4) or (f.ndim == 4 and f.shape[-1] != 3):
            raise ClipReadError(self.source, f"frames must be (T, H, W) or (T, H, W, 3), got shape {f.shape}")
        if f.shape[0] == 0:
            raise ClipReadError(self.source, "clip has zero frames")
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ClipReadError(self.source, f"fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def gray(self) -> "Clip":
        """Return this clip with ``(T, H, W)`` grayscale frames (ITU-R BT.601 luma for RGB)."""
        if self.frames.ndim == 3:
            return self
        from echoweave.edge.image import rgb_to_gray

        return Clip(rgb_to_gray(self.frames), self.fps, self.patient_id, self.label, self.source, self.view, dict(self.meta))
