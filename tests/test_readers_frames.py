"""Frame-folder reader (Pillow): natural order, ranges, and broken images."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from echoweave.edge.errors import ClipReadError
from echoweave.edge.readers import read_clip, read_frame_folder


def _write_pngs(folder, n, pattern="img_{}.png", size=(12, 16)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        Image.fromarray(np.full(size, i * 10, np.uint8)).save(folder / pattern.format(i))
    return folder


def test_natural_order_and_values(tmp_path):
    folder = _write_pngs(tmp_path / "clip", 12)  # img_1 .. img_12: lexical order would put 10 after 1
    clip = read_clip(folder, fps=20.0)
    assert clip.frames.shape == (12, 12, 16) and clip.fps == 20.0 and clip.meta["fps_assumed"] is False
    assert clip.frames[:, 0, 0].tolist() == [i * 10 for i in range(1, 13)]
    assert read_clip(folder).meta["fps_assumed"] is True and read_clip(folder).fps == 30.0


def test_jpeg_frames_range_and_rgb(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    yy, xx = np.mgrid[0:24, 0:32]
    for i in range(1, 6):
        Image.fromarray((xx * 4 + yy * 2 + i * 8).astype(np.uint8)).save(folder / f"frame_{i:06d}.jpg", quality=95)
    clip = read_frame_folder(folder, start=2, stop=4)
    assert clip.num_frames == 3
    expected = (xx * 4 + yy * 2 + 16).astype(int)
    assert np.abs(clip.frames[0].astype(int) - expected).max() <= 3
    assert read_frame_folder(folder, gray=False).frames.shape == (5, 24, 32, 3)
    with pytest.raises(ClipReadError, match="expected 7 frames, folder holds 5"):
        read_frame_folder(folder, expected_frames=7)
    with pytest.raises(ClipReadError, match="outside 1..5"):
        read_frame_folder(folder, start=3, stop=9)


def test_single_image_is_one_frame(tmp_path):
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "still.png")
    clip = read_clip(tmp_path / "still.png")
    assert clip.frames.shape == (1, 8, 8) and int(clip.frames[0, 3, 3]) == 77


def test_truncated_garbage_empty_and_mixed_sizes(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(folder / "img_00001.jpg")
    data = (folder / "img_00001.jpg").read_bytes()
    (folder / "img_00001.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ClipReadError, match=r"img_00001.jpg: corrupt or truncated image"):
        read_clip(folder)
    (folder / "img_00001.jpg").write_bytes(b"not a jpeg at all" * 10)
    with pytest.raises(ClipReadError, match="img_00001.jpg: not a readable image"):
        read_clip(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ClipReadError, match="no frame images"):
        read_frame_folder(empty)
    with pytest.raises(ClipReadError, match="not found"):
        read_clip(tmp_path / "nowhere")
    mixed = _write_pngs(tmp_path / "mixed", 2)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(mixed / "img_3.png")
    with pytest.raises(ClipReadError, match="differ in size"):
        read_frame_folder(mixed)
