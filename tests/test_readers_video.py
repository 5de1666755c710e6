"""Video reader (PyAV): mp4 (H.264), avi (MJPEG, MPEG-4 Part 2), and broken files."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError
from echoweave.edge.readers import read_clip, read_video, video_stream_facts
from echoweave.train.data.layout_writers import write_video


def _moving_gradient(t=10, h=48, w=64):
    """Smooth gray frames with a bright square moving right: easy on lossy codecs, easy to check."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.empty((t, h, w), np.uint8)
    for i in range(t):
        f = 40 + xx * 2 + yy
        f[10:26, 4 + 3 * i : 20 + 3 * i] = 230
        frames[i] = f
    return frames


@pytest.mark.parametrize("name,fps", [("a.mp4", 30.0), ("a.avi", 25.0)])
def test_written_video_round_trip(tmp_path, name, fps):
    frames = _moving_gradient()
    path = write_video(Clip(frames, fps=fps), tmp_path / name)
    clip = read_clip(path)
    assert clip.frames.shape == (10, 48, 64) and clip.fps == pytest.approx(fps)
    err = np.abs(clip.frames.astype(int) - frames)
    assert err.mean() < 1.5 and np.percentile(err, 99) <= 8
    # the square moved: its centre column in the last frame is bright, in the first it is not
    assert clip.frames[-1, 18, 4 + 27 + 8] > 200 and clip.frames[0, 18, 4 + 27 + 8] < 150
    rgb = read_video(path, gray=False)
    assert rgb.frames.shape == (10, 48, 64, 3)
    assert clip.meta["codec"] == ("h264" if name.endswith("mp4") else "mjpeg")
    facts = video_stream_facts(path)
    assert facts["num_frames"] == 10 and facts["fps"] == pytest.approx(fps)


def test_mpeg4_avi_written_directly_with_pyav(tmp_path):
    frames = _moving_gradient(t=6)
    path = tmp_path / "m.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=Fraction(25, 2))
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.qmin = s.codec_context.qmax = 2
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, -1), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    clip = read_clip(path)
    assert clip.num_frames == 6 and clip.fps == pytest.approx(12.5)
    assert np.abs(clip.frames.astype(int) - frames).mean() < 2.0


@pytest.mark.parametrize("name", ["a.mp4", "a.avi"])
def test_truncated_video_is_an_error(tmp_path, name):
    path = write_video(Clip(_moving_gradient(t=12), fps=30.0), tmp_path / name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ClipReadError) as e:
        read_video(path)
    assert e.value.path == str(path)
    # mp4 loses its index (moov atom): unreadable; avi decodes a prefix: reported as truncated.
    assert ("not a readable video" if name.endswith("mp4") else "container declares 12 frames") in e.value.problem


def test_garbage_missing_and_empty_video(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ClipReadError, match="junk.mp4"):
        read_clip(junk)
    with pytest.raises(ClipReadError, match="file not found"):
        read_clip(tmp_path / "absent.mp4")
    empty = tmp_path / "empty.avi"  # a valid container whose video stream holds no frames
    with av.open(str(empty), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        c.start_encoding()
    assert empty.stat().st_size > 0
    with pytest.raises(ClipReadError, match="empty.avi: video has zero decodable frames"):
        read_clip(empty)
