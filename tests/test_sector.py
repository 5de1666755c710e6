"""Sector (fan) mask: found from motion, burned-in text removed, fan content kept."""
from __future__ import annotations

import numpy as np
import pytest

from echoweave.edge.clip import Clip
from echoweave.edge.readers import read_clip
from echoweave.edge.sector import (
    BRIGHTNESS,
    MOTION,
    WHOLE_IMAGE,
    apply_sector,
    box_mean,
    estimate_sector,
    largest_component,
    mask_clip,
)


def _uncrop(cropped: np.ndarray, bbox, shape) -> np.ndarray:
    """Put a cropped (T, h, w[, 3]) result back into a zero canvas of the original size."""
    top, bottom, left, right = bbox
    out = np.zeros(shape, np.uint8)
    out[:, top:bottom, left:right] = cropped
    return out


def test_box_mean_matches_brute_force():
    rng = np.random.default_rng(1)
    m = rng.random((9, 11)) > 0.5
    got = box_mean(m, 3)
    pad = np.pad(m.astype(float), 1)
    want = np.array([[pad[y : y + 3, x : x + 3].mean() for x in range(11)] for y in range(9)])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_largest_component_keeps_the_biggest_blob():
    m = np.zeros((10, 12), bool)
    m[1:3, 1:3] = True  # 4 px
    m[5:9, 4:10] = True  # 24 px
    m[0, 11] = True
    out = largest_component(m)
    assert out.sum() == 24 and out[5:9, 4:10].all() and not out[1:3, 1:3].any()


def test_synthetic_fan_text_removed_fan_kept(fan_clip):
    frames, fan, text = fan_clip
    sector = estimate_sector(frames)
    assert sector.method == MOTION
    assert not (sector.mask & text).any()
    assert (sector.mask & fan).sum() / fan.sum() > 0.97
    assert (sector.mask & ~fan).sum() / fan.sum() < 0.03  # no spill beyond the fan
    out = _uncrop(apply_sector(frames, sector), sector.bbox, frames.shape)
    assert (out[:, text] == 0).all()  # every burned-in text pixel is blank
    keep = sector.mask
    np.testing.assert_array_equal(out[:, keep], frames[:, keep])  # fan content untouched
    top, bottom, left, right = sector.bbox
    ys, xs = np.nonzero(fan)
    assert abs(top - ys.min()) <= 2 and abs(bottom - 1 - ys.max()) <= 2
    assert abs(left - xs.min()) <= 2 and abs(right - 1 - xs.max()) <= 2


def test_noisy_capture_raises_threshold_and_still_drops_text(fan_clip):
    frames, fan, text = fan_clip
    noise = np.random.default_rng(3).normal(0, 2.0, frames.shape)
    noisy = np.clip(frames + noise, 0, 255).astype(np.uint8)  # frame-grabber noise everywhere
    sector = estimate_sector(noisy)
    assert sector.method == MOTION and not (sector.mask & text).any()
    assert (sector.mask & fan).sum() / fan.sum() > 0.95


def test_real_cine_burned_in_text_is_gone(ybr_cine_path):
    clip = read_clip(ybr_cine_path, gray=False)
    gray = clip.gray().frames  # (30, 240, 320)
    std, peak = gray.std(0), gray.max(0)
    text = (std == 0) & (peak > 40)  # bright pixels that never change: labels, icons, scale, UI bar
    assert text.sum() > 1000
    assert text[:30, :60].sum() > 100 and text[225:, :].sum() > 200  # "PLA/Gen THI" and the bottom bar
    masked = mask_clip(clip)
    assert masked.meta["sector_method"] == MOTION and masked.meta["sector_from_motion"] is True
    top, bottom, left, right = masked.meta["sector_bbox"]
    assert masked.frames.shape == (30, bottom - top, right - left, 3)
    out = _uncrop(masked.frames, masked.meta["sector_bbox"], clip.frames.shape)
    assert (out[:, text] == 0).all()
    moving = std > 3
    sector = estimate_sector(gray)
    assert (sector.mask & moving).sum() / moving.sum() > 0.99  # the fan's content is preserved
    np.testing.assert_array_equal(out[:, sector.mask], clip.frames[:, sector.mask])
    assert 0.25 < sector.mask.mean() < 0.5  # a fan, not the whole screen
    assert top < 30 and bottom > 195  # apex near the top, arc near the bottom


def test_single_frame_falls_back_and_says_so(fan_clip):
    frames, fan, text = fan_clip
    one = Clip(frames[:1], fps=30.0)
    masked = mask_clip(one)
    assert masked.meta["sector_method"] == BRIGHTNESS and masked.meta["sector_from_motion"] is False
    sector = estimate_sector(frames[:1])
    assert (sector.mask & fan).sum() / fan.sum() > 0.9
    dark = estimate_sector(np.zeros((1, 20, 30), np.uint8))
    assert dark.method == WHOLE_IMAGE and dark.mask.all() and dark.bbox == (0, 20, 0, 30)


def test_frozen_loop_is_not_trusted(fan_clip):
    frames, _, _ = fan_clip
    frozen = np.repeat(frames[:1], 5, axis=0)  # T > 1 but no motion
    assert estimate_sector(frozen).method == BRIGHTNESS


def test_apply_sector_shape_checks(fan_clip):
    frames, _, _ = fan_clip
    sector = estimate_sector(frames)
    with pytest.raises(ValueError, match="differ in size"):
        apply_sector(frames[:, :10], sector)


def test_edge_readers_and_sector_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, echoweave.edge.readers, echoweave.edge.sector; "
        "bad = [m for m in ('torch', 'scipy', 'torchvision') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
