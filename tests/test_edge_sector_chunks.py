"""Long recordings find their fan chunk by chunk (`Classifier.preprocess_with_sector(chunk=...)`,
`predict_windows(sector_chunk_s=...)`, `classify --sector_chunk_s`): one mask over minutes of
probe motion crops every frame unlike the clip-length runs the model trained on."""
from __future__ import annotations

import numpy as np
import pytest

import echoweave.edge as ew
from echoweave.cli import main
from tests.helpers.edge_artifacts import exported_artifacts


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    return ew.load(exported_artifacts(tiny_checkpoint), runtime="onnxruntime", threads=1)


def _fan(t, half_angle, seed, h=64, w=96):
    """Moving speckle inside a fan of the given half-angle, static bright text outside it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    ang = np.degrees(np.arctan2(xx - w // 2, yy - 4))
    fan = (np.hypot(yy - 4, xx - w // 2) < h - 8) & (np.abs(ang) < half_angle) & (yy > 4)
    frames = (rng.integers(20, 200, size=(t, h, w)) * fan).astype(np.uint8)
    frames[:, 2:7, 2:14] = 255
    return frames


def test_each_chunk_gets_its_own_fan(clf):
    # The fan widens half-way (another pose): a whole-recording mask is the union of both.
    frames = np.concatenate([_fan(30, 15, 0), _fan(30, 40, 1)])
    chunked, method = clf.preprocess_with_sector(frames, "auto", chunk=30)
    assert method == "motion"
    np.testing.assert_array_equal(chunked, np.concatenate([clf.preprocess(frames[:30]), clf.preprocess(frames[30:])]))
    assert not np.array_equal(chunked, clf.preprocess(frames))  # once over all frames: another crop
    # predict_windows converts seconds to frames with the clip's rate.
    via_seconds = clf.predict_windows(frames, fps=30.0, sector_chunk_s=1.0, via="forward")
    by_hand = [clf.forward_window(chunked[s : s + clf.span : clf.frame_stride]) for s in clf.window_starts(60, 1)]
    np.testing.assert_allclose(np.stack([p.logits for p in via_seconds]), np.stack(by_hand), atol=1e-5)
    assert [p.sector_method for p in via_seconds] == ["motion"] * len(via_seconds)


def test_a_short_remainder_joins_the_chunk_before_it(clf):
    frames = np.concatenate([_fan(30, 15, 2), _fan(40, 40, 3)])
    # 70 frames in chunks of 30: [0, 30) and [30, 70) (the 10-frame rest is under half a chunk).
    np.testing.assert_array_equal(clf.preprocess_with_sector(frames, "auto", chunk=30)[0],
                                  np.concatenate([clf.preprocess(frames[:30]), clf.preprocess(frames[30:])]))
    # 80 frames: [0, 30), [30, 60), [60, 80) (20 frames is at least half a chunk).
    frames = np.concatenate([frames, _fan(10, 25, 4)])
    np.testing.assert_array_equal(clf.preprocess_with_sector(frames, "auto", chunk=30)[0],
                                  np.concatenate([clf.preprocess(frames[a:b]) for a, b in ((0, 30), (30, 60), (60, 80))]))
    # A clip no longer than one chunk, a given sector or none: the single mask as before.
    short = frames[:30]
    np.testing.assert_array_equal(clf.preprocess_with_sector(short, "auto", chunk=30)[0], clf.preprocess(short))
    np.testing.assert_array_equal(clf.preprocess_with_sector(frames, None, chunk=30)[0], clf.preprocess(frames, None))
    with pytest.raises(ValueError, match="sector_chunk_s must be >= 0"):
        clf.predict_windows(frames, sector_chunk_s=-1.0)


def test_classify_refuses_a_negative_chunk(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["classify", "nowhere.mp4", "--model", "nowhere", "--sector_chunk_s", "-1"])
    assert exc.value.code == 2 and "--sector_chunk_s must be >= 0" in capsys.readouterr().err
