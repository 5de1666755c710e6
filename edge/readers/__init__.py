"""Clip readers: DICOM cine, video files, folders of frame images; `read_clip` picks by content.

    from echoweave.edge.readers import read_clip
    clip = read_clip("loop.dcm")            # (T, H, W) uint8, fps from the header
    clip = read_clip("loop.mp4", gray=False)  # (T, H, W, 3)

Torch-free: the edge runtime uses these too. Every failure is a `ClipReadError` naming the file.
"""
from __future__ import annotations

from pathlib import Path

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError
from echoweave.edge.readers.dicom import dicom_header_facts, is_dicom_file, pseudonymize_patient_id, read_dicom
from echoweave.edge.readers.frames import IMAGE_EXTENSIONS, check_fps, list_frame_files, natural_key, read_frame_folder, read_image
from echoweave.edge.readers.video import VIDEO_EXTENSIONS, read_video, video_stream_facts

__all__ = [
    "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "check_fps", "detect_file_format", "dicom_header_facts", "is_dicom_file",
    "list_frame_files", "natural_key", "pseudonymize_patient_id", "read_clip", "read_dicom",
    "read_frame_folder", "read_image", "read_video", "video_stream_facts",
]


def _is_video_by_magic(head: bytes) -> bool:
    return (
        head[4:8] == b"ftyp"  # ISO BMFF: mp4, mov, m4v
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head[:4] == b"\x1a\x45\xdf\xa3"  # Matroska / WebM
    )


def detect_file_format(path: str | Path) -> str | None:
    """``"dicom"``, ``"video"``, ``"image"`` or ``None`` for one file, by content first, then extension."""
    path = Path(path)
    if is_dicom_file(path):
        return "dicom"
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if _is_video_by_magic(head):
        return "video"
    ext = path.suffix.lower()
    if ext in (".dcm", ".dicom"):
        return "dicom"  # e.g. a truncated DICOM: let the reader name the problem
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def read_clip(path: str | Path, *, gray: bool = True, fps: float | None = None, **kw) -> Clip:
    """Read any supported clip: a DICOM file, a video file, a folder of frames or one image.

    Args:
        path: file or folder.
        gray: return ``(T, H, W)`` grayscale (default) or ``(T, H, W, 3)`` RGB.
        fps: frame rate for frame folders and single images (they carry none); ignored for
            DICOM and video, whose headers are authoritative.
        **kw: passed to `read_frame_folder` (``start``, ``stop``, ``expected_frames``).

    Raises:
        ClipReadError: missing path, unknown format, or a reader's own error.
    """
    path = Path(path)
    fps = check_fps(fps, path)
    if path.is_dir():
        return read_frame_folder(path, gray=gray, fps=fps, **kw)
    if not path.exists():
        raise ClipReadError(path, "file not found")
    kind = detect_file_format(path)
    if kind == "dicom":
        return read_dicom(path, gray=gray)
    if kind == "video":
        return read_video(path, gray=gray)
    if kind == "image":
        frame = read_image(path, gray=gray)
        return Clip(frames=frame[None], fps=float(fps) if fps else 30.0, source=str(path),
                    meta={"format": "image", "fps_assumed": fps is None})
    raise ClipReadError(path, "unknown clip format (expected DICOM, mp4/avi/... video, image or a folder of frames)")
