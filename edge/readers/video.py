"""Read video files (mp4, avi, mov, ...) into a `Clip` with PyAV.

The frame rate is the stream's ``average_rate`` (falling back to ``guessed_rate``, then
``base_rate``, then 30 fps with ``meta["fps_assumed"]``). A file that decodes fewer frames than
its container declares is reported as truncated rather than silently shortened.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
DEFAULT_FPS = 30.0


def _open(path: Path):
    import av

    if not path.is_file():
        raise ClipReadError(path, "file not found")
    try:
        container = av.open(str(path))
    except Exception as e:  # av.InvalidDataError, av.FFmpegError subclasses
        raise ClipReadError(path, f"not a readable video ({type(e).__name__}: {e})") from None
    if not container.streams.video:
        container.close()
        raise ClipReadError(path, "file has no video stream")
    return container


def _stream_fps(stream) -> tuple[float, bool]:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate), False
    return DEFAULT_FPS, True


def video_stream_facts(path: str | Path) -> dict:
    """Cheap facts for a catalog (no decoding): declared frame count, fps, size.

    ``num_frames`` is the declared count, or the number of demuxed packets when undeclared.
    """
    path = Path(path)
    container = _open(path)
    try:
        s = container.streams.video[0]
        fps, assumed = _stream_fps(s)
        n = int(s.frames or 0)
        if n == 0:  # container does not declare it: count packets (demux only, no decoding)
            try:
                n = sum(1 for p in container.demux(s) if p.size)
            except Exception as e:
                raise ClipReadError(path, f"corrupt video data ({type(e).__name__}: {e})") from None
        return {
            "num_frames": n,
            "fps": fps,
            "fps_assumed": assumed,
            "codec": s.codec_context.name,
            "height": int(s.codec_context.height),
            "width": int(s.codec_context.width),
        }
    finally:
        container.close()


def read_video(path: str | Path, *, gray: bool = True) -> Clip:
    """Decode every frame of the first video stream.

    Args:
        path: a video file PyAV/FFmpeg can open.
        gray: ``(T, H, W)`` luma (the decoder's ``gray`` conversion) or, if False, ``(T, H, W, 3)`` RGB.

    Returns:
        A `Clip` with ``fps`` from the stream; ``patient_id`` is empty (videos carry no patient).

    Raises:
        ClipReadError: missing, unreadable, truncated or corrupt file, or zero frames.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps, assumed = _stream_fps(stream)
        declared = int(stream.frames or 0)
        codec = stream.codec_context.name
        fmt = "gray" if gray else "rgb24"
        frames = []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format=fmt))
        except Exception as e:
            raise ClipReadError(path, f"corrupt video data after {len(frames)} frames ({type(e).__name__}: {e})") from None
    finally:
        container.close()
    if not frames:
        raise ClipReadError(path, "video has zero decodable frames")
    if declared and len(frames) < declared:
        raise ClipReadError(path, f"container declares {declared} frames but only {len(frames)} decoded (truncated?)")
    arr = np.stack(frames).astype(np.uint8, copy=False)  # (T, H, W) or (T, H, W, 3)
    meta = {"format": "video", "codec": codec, "fps_assumed": assumed, "declared_frames": declared}
    return Clip(frames=arr, fps=fps, source=str(path), meta=meta)
