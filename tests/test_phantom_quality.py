"""The phantom's frame-quality knob (issue 14): degraded clips for uncertainty experiments."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from echoweave.edge.errors import EchoweaveError
from echoweave.train.config import DataConfig
from echoweave.train.data.phantom import (
    PhantomConfig,
    clip_quality,
    generate_clip,
    generate_dataset,
    make_patient,
    render_frames,
    sector_mask,
)
from echoweave.train.data.phantom.quality import DROPOUT_LEVEL, SHADOW_GAIN, Degradation, degrade
from echoweave.train.data.phantom.scanner import FanGrid

SMALL = PhantomConfig(num_patients=3, clips_per_view=2, num_frames=8, height=64, width=64)


def test_share_zero_is_the_phantom_without_the_knob_and_clean_clips_never_change():
    clean = generate_dataset(SMALL)
    mixed = generate_dataset(dataclasses.replace(SMALL, degraded=0.5))
    assert not any(c.meta["quality"]["degraded"] for c in clean)
    flags = [c.meta["quality"]["degraded"] for c in mixed]
    assert 0 < sum(flags) < len(flags)
    for a, b, bad in zip(clean, mixed, flags):
        assert a.source == b.source
        if bad:
            assert not np.array_equal(a.frames, b.frames), b.source
        else:
            np.testing.assert_array_equal(a.frames, b.frames)


def test_share_of_degraded_clips_follows_the_knob():
    cfg = PhantomConfig(num_patients=10, clips_per_view=2, num_frames=1, height=32, width=32)
    patients = [make_patient(p) for p in range(10)]
    for share in (0.0, 0.3, 1.0):
        c = dataclasses.replace(cfg, degraded=share)
        n = sum(clip_quality(v, p, k, c).degraded for p in patients for v in c.class_set for k in range(2))
        # 240 clips, binomial: 0.3 -> 72 expected, sd 7.1
        assert {0.0: n == 0, 0.3: 50 <= n <= 94, 1.0: n == 240}[share], (share, n)


def test_degraded_frame_alone_equals_the_same_frame_of_the_clip_and_overlay_is_untouched():
    cfg = dataclasses.replace(SMALL, degraded=1.0)
    p = make_patient(1)
    whole = render_frames("PLAX_LV", p, 0, cfg)
    for t in (0, 5):
        np.testing.assert_array_equal(render_frames("PLAX_LV", p, 0, cfg, [t])[0], whole[t])
    clean = render_frames("PLAX_LV", p, 0, SMALL)
    outside = ~sector_mask(p, cfg)
    np.testing.assert_array_equal(whole[:, outside], clean[:, outside])  # burned-in text, ECG strip


def test_each_artefact_does_what_it_says():
    grid = FanGrid.build(64, 64, 34.0)
    fan = grid.mask
    frames = np.full((40, 64, 64), 120, np.uint8)
    key = (0, 1, 2, 3)
    lost = degrade(frames, np.arange(40), Degradation(dropout=0.5), grid, key)
    dark = lost[:, fan].mean(1) < 3 * DROPOUT_LEVEL
    assert 8 <= dark.sum() <= 32  # about half of 40 frames lost
    np.testing.assert_array_equal(lost[~dark], frames[~dark])  # the others untouched
    noisy = degrade(frames, np.arange(40), Degradation(noise=60.0), grid, key)
    assert 45 < noisy[:, fan].astype(float).std() < 65
    shadow = Degradation(shadow_deg=30.0, shadow_centre_deg=0.0, shadow_start=0.3)
    shaded = degrade(frames, np.arange(2), shadow, grid, key)
    theta = np.degrees(np.arctan2(grid.sx, grid.sy))
    core = fan & (np.abs(theta) < 10) & (grid.rr > 0.4)
    side = fan & (np.abs(theta) > 25)
    assert np.allclose(shaded[0, core], 120 * SHADOW_GAIN, atol=1)
    assert (shaded[0, side] == 120).all()
    assert degrade(frames, np.arange(40), Degradation(), grid, key) is frames


def test_clip_meta_says_what_is_wrong_and_bad_share_is_refused():
    cfg = dataclasses.replace(SMALL, degraded=1.0)
    q = generate_clip("APICAL_4C_LVRV", make_patient(0), 0, cfg).meta["quality"]
    assert q["degraded"] and (q["dropout"] > 0 or q["noise"] > 0 or q["shadow_deg"] > 0)
    for bad in (-0.1, 1.5):
        with pytest.raises(EchoweaveError, match="degraded"):
            PhantomConfig(degraded=bad)


def test_training_data_config_reaches_the_phantom():
    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.train.engine.data import load_store, store_key

    base = DataConfig(phantom_patients=2, phantom_clips_per_view=1, phantom_frames=4, phantom_size=48,
                      preprocessing=PreprocessSpec(resize=40, crop=32))
    bad = dataclasses.replace(base, phantom_degraded=1.0)
    assert store_key(base) != store_key(bad)
    store = load_store(bad, show_progress=False)
    assert all(c.meta["quality"]["degraded"] for c in store.clips)
