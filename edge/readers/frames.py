"""Read a folder of frame images (``img_00001.jpg``, ``frame_000001.jpg``, ...) into a `Clip`.

Files are ordered by natural sort, so ``img_2`` comes before ``img_10``. Folders of frames carry
no timing: pass ``fps`` or accept the 30 fps default (``meta["fps_assumed"]``).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
DEFAULT_FPS = 30.0


def check_fps(fps: float | None, where: str | Path) -> float | None:
    """``fps`` as a float, or None; 0, negative, NaN or infinite rates are a `ClipReadError`
    (a rate of 0 used to become the 30 fps default without a word)."""
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ClipReadError(where, f"fps must be a positive number, got {fps!r}") from None
    if not (value > 0 and value != float("inf")):
        raise ClipReadError(where, f"fps must be a positive number, got {fps!r}")
    return value


def natural_key(name: str) -> list:
    """Sort key that compares digit runs as numbers (``f2`` < ``f10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` in natural order (hidden files ignored)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image(path: str | Path, *, gray: bool = True) -> np.ndarray:
    """Decode one image file to ``(H, W)`` (gray) or ``(H, W, 3)`` uint8.

    Raises:
        ClipReadError: missing, truncated or unidentifiable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ClipReadError(path, "file not found")
    try:
        with Image.open(path) as im:
            im.load()  # force decoding now: truncation surfaces here, not later
            return np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise ClipReadError(path, "not a readable image (unknown or garbage format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ClipReadError(path, f"corrupt or truncated image ({e})") from None


def read_frame_folder(
    folder: str | Path,
    *,
    gray: bool = True,
    fps: float | None = None,
    start: int = 1,
    stop: int | None = None,
    expected_frames: int | None = None,
) -> Clip:
    """Read the images of one clip folder.

    Args:
        folder: directory holding the frame images.
        gray: ``(T, H, W)`` if True else ``(T, H, W, 3)``.
        fps: frame rate to record; ``None`` assumes 30 and flags ``meta["fps_assumed"]``.
        start: first frame to keep, 1-based (NED annotations count from 1).
        stop: last frame to keep, inclusive; ``None`` = the last file.
        expected_frames: if given, the folder must hold exactly this many images.

    Raises:
        ClipReadError: missing folder, no images, count mismatch, unreadable or differently sized images.
    """
    folder = Path(folder)
    fps = check_fps(fps, folder)
    if not folder.is_dir():
        raise ClipReadError(folder, "frame folder not found")
    files = list_frame_files(folder)
    if not files:
        raise ClipReadError(folder, f"no frame images ({', '.join(IMAGE_EXTENSIONS)}) in folder")
    if expected_frames is not None and len(files) != expected_frames:
        raise ClipReadError(folder, f"expected {expected_frames} frames, folder holds {len(files)}")
    stop = len(files) if stop is None else stop
    if not 1 <= start <= stop <= len(files):
        raise ClipReadError(folder, f"frame range {start}..{stop} outside 1..{len(files)}")
    frames = [read_image(p, gray=gray) for p in files[start - 1 : stop]]
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ClipReadError(folder, f"frames differ in size: {sorted(shapes)}")
    meta = {"format": "frames", "fps_assumed": fps is None, "first_file": files[start - 1].name}
    return Clip(frames=np.stack(frames), fps=float(fps) if fps else DEFAULT_FPS, source=str(folder), meta=meta)
