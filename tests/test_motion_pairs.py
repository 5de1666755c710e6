"""Motion-only view pairs: same frames, opposite motion. Fast statistics plus the (slow) CNN check."""
from __future__ import annotations

import numpy as np
import pytest

from echoweave.train.data.phantom import MOTION_ONLY_PAIRS
from echoweave.train.experiments.motion_pairs import (
    MotionPairSetup,
    frame_statistics,
    pair_windows,
    run,
    vertical_motion,
)


def test_at_least_two_pairs_of_distinct_ned12_views():
    from echoweave.edge.views import NED12

    assert len(MOTION_ONLY_PAIRS) >= 2
    flat = [v for pair in MOTION_ONLY_PAIRS for v in pair]
    assert len(set(flat)) == len(flat) and set(flat) <= set(NED12)


@pytest.mark.parametrize("pair", MOTION_ONLY_PAIRS)
def test_single_frames_match_in_distribution_but_motion_is_opposite(pair):
    stats = frame_statistics(pair)
    # Per-pixel t statistics of single frames look like noise (E[t^2] ~ 1) ...
    assert stats["mean_t2"] < 1.4, stats
    # ... while the lower half moves down in most steps of one view and up in most of the other.
    down = stats["downward_fraction"]
    assert down[pair[0]] > 0.6 and down[pair[1]] < 0.4, stats


def test_views_with_different_anatomy_fail_the_single_frame_match():
    """The same statistic does see a difference where the anatomy differs (the test has power)."""
    stats = frame_statistics(("PSAX_PAPS", "PSAX_APEX"))
    assert stats["mean_t2"] > 3.0, stats
    assert abs(stats["downward_fraction"]["PSAX_PAPS"] - stats["downward_fraction"]["PSAX_APEX"]) < 0.15


def test_vertical_motion_measures_a_known_shift():
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 255, (12, 12)), np.ones((4, 4))).astype(np.float32)  # blocky texture
    from scipy.ndimage import shift

    frames = np.stack([shift(base, (0.5 * t, 0), order=1, mode="nearest") for t in range(4)]).astype(np.uint8)
    v = vertical_motion(frames)
    assert v.shape == (3,)
    assert np.all(v > 0.3) and np.all(v < 0.7)  # 0.5 px/frame downward
    assert np.all(vertical_motion(frames[::-1]) < -0.3)


def test_pair_windows_are_consecutive_frames_with_pair_labels():
    setup = MotionPairSetup(clips_per_view=1, num_frames=8, size=32)
    x, y, clip_no = pair_windows(setup, first_patient=0, num_patients=2)
    per_clip = (8 - 4) // 2 + 1
    assert x.shape == (2 * 4 * per_clip, 4, 32, 32) and x.dtype == np.uint8
    assert sorted(set(y.tolist())) == [0, 1, 2, 3]
    assert np.array_equal(np.bincount(clip_no), [per_clip] * (2 * 4))
    # Overlapping windows of one clip share frames: window 1 starts two frames after window 0.
    assert np.array_equal(x[0, 2:], x[1, :2])


@pytest.mark.slow
def test_single_frame_cnn_is_at_chance_and_temporal_cnn_is_not():
    """Tiny CNNs on CPU, split by patient: one frame cannot tell the pair apart, four frames can."""
    report = run(MotionPairSetup())
    single, temporal = report["single_frame"]["accuracy"], report["temporal"]["accuracy"]
    print(f"\nmotion-only pairs, held-out within-pair accuracy: single-frame {single:.3f}, "
          f"temporal {temporal:.3f} (n={report['temporal']['n_test']}, {report['seconds']['total']:.0f} s)")
    assert single < 0.62
    assert temporal > 0.8
    assert all(acc > 0.75 for acc in report["temporal"]["per_pair"].values())
