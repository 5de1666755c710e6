"""StreamingClassifier: hop, sector estimate and refresh, bad frames leave the state intact,
concurrent streams on one Classifier, flat memory over 10,000 frames."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import echoweave.edge as ew
from echoweave.edge.classifier import StreamInputError
from echoweave.edge.errors import ClipReadError
from echoweave.edge.sector import estimate_sector
from tests.conftest import make_fan_clip
from tests.helpers.edge_artifacts import exported_artifacts


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    return ew.load(exported_artifacts(tiny_checkpoint), runtime="litert", threads=1)


@pytest.fixture(scope="module")
def clf_ort(tiny_checkpoint):
    return ew.load(exported_artifacts(tiny_checkpoint), runtime="onnxruntime", threads=1)


def _probs(preds):
    return np.stack([p.probabilities for p in preds if p is not None])


def _fan_frames(t, half_angle, seed, h=64, w=96, text_rows=(2, 7)):
    """Moving speckle inside a fan of the given half-angle, bright static text outside it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    ang = np.degrees(np.arctan2(xx - w // 2, yy - 4))
    fan = (np.hypot(yy - 4, xx - w // 2) < h - 8) & (np.abs(ang) < half_angle) & (yy > 4)
    frames = rng.integers(20, 200, size=(t, h, w)).astype(np.uint8) * fan
    frames[:, text_rows[0] : text_rows[1], 2:14] = 255
    return frames.astype(np.uint8)


def test_hop_emits_every_hop_th_window(clf):
    frames = make_fan_clip(t=14, seed=3)[0]
    stream = clf.stream(hop=3, sector=None)
    pushed = [stream.push(f) for f in frames]
    assert [i for i, p in enumerate(pushed) if p is not None] == [3, 6, 9, 12]
    ref = clf.predict_windows(frames, hop=3, sector=None, via="forward")
    np.testing.assert_allclose(_probs(pushed), _probs(ref), atol=1e-6)
    assert stream.frames_seen == 14
    with pytest.raises(ValueError, match="differs from the model's T=4"):
        clf.stream(window=8)


BAD_FRAMES = [
    (np.full((64, 96), np.nan, np.float32), "float32 \\(it contains NaN\\)"),
    (np.zeros((64, 96), np.int16), "must be uint8 pixels, got int16"),
    (np.zeros((64, 96, 4), np.uint8), "must be \\(H, W\\) or \\(H, W, 3\\)"),
    (np.zeros((2, 64, 96), np.uint8), "must be \\(H, W\\) or \\(H, W, 3\\)"),
    (np.zeros((0, 96), np.uint8), "must not be empty"),
    ([[1, 2], [3, 4]], "must be a numpy array, got list"),
]


def test_bad_frames_raise_and_leave_the_stream_unchanged(clf):
    frames = make_fan_clip(t=10, seed=4)[0]
    clean, dirty = clf.stream(), clf.stream()
    expected = [clean.push(f) for f in frames]
    got = []
    for i, f in enumerate(frames):
        bad, message = BAD_FRAMES[i % len(BAD_FRAMES)]
        with pytest.raises(StreamInputError, match=message) as info:
            dirty.push(bad)
        assert isinstance(info.value, (ClipReadError, ValueError)) and info.value.path == "stream"
        got.append(dirty.push(f))
    assert dirty.frames_seen == clean.frames_seen == 10
    np.testing.assert_array_equal(_probs(got), _probs(expected))
    with pytest.raises(StreamInputError, match="time_s must be finite"):
        dirty.push(frames[0], time_s=float("nan"))


def test_auto_sector_is_estimated_after_16_frames_and_the_window_re_embedded(clf):
    frames = _fan_frames(24, 35, seed=1)
    stream = clf.stream(sector="auto")
    pushed = [stream.push(f) for f in frames[:15]]
    assert stream.sector is None and stream.sector_updates == 0  # whole image so far
    whole = clf.predict_windows(frames[11:15], sector=None)[0]
    np.testing.assert_allclose(pushed[14].probabilities, whole.probabilities, atol=1e-6)
    p16 = stream.push(frames[15])
    expected_sector = estimate_sector(frames[:16])
    assert stream.sector_updates == 1 and stream.sector.method == "motion"
    np.testing.assert_array_equal(stream.sector.mask, expected_sector.mask)
    assert not stream.sector.mask[2:7, 2:14].any()  # the burned-in text is outside
    # The whole window (frames 12..15) now uses the new mask, as the window model would.
    ref = clf.predict_windows(frames[12:16], sector=expected_sector, via="forward")[0]
    np.testing.assert_allclose(p16.probabilities, ref.probabilities, atol=1e-6)
    for f in frames[16:]:
        stream.push(f)
    assert stream.sector_updates == 1  # static region unchanged: no refresh


def test_sector_refreshes_when_the_picture_changes(clf):
    narrow, wide = _fan_frames(20, 25, seed=2), _fan_frames(40, 50, seed=3, text_rows=(50, 56))
    stream = clf.stream(sector="auto")
    for f in narrow:
        stream.push(f)
    first = stream.sector
    assert stream.sector_updates == 1
    for f in wide[:15]:
        stream.push(f)
    assert stream.sector is first  # change seen, the old mask stays in use while collecting frames
    for f in wide[15:]:
        stream.push(f)
    assert stream.sector_updates == 2
    assert stream.sector.mask.sum() > first.mask.sum() * 1.5  # the wider fan
    np.testing.assert_array_equal(stream.sector.mask, estimate_sector(wide[:16]).mask)
    no_refresh = clf.stream(sector="auto", refresh=False)
    for f in np.concatenate([narrow, wide]):
        no_refresh.push(f)
    assert no_refresh.sector_updates == 1


def test_frame_size_change_restarts_the_window(clf):
    stream = clf.stream(sector="auto")
    for f in _fan_frames(20, 35, seed=5):
        stream.push(f)
    small = _fan_frames(4, 35, seed=6, h=48, w=64)
    out = [stream.push(f) for f in small]
    assert [p is None for p in out] == [True, True, True, False]  # a new window of 4 frames
    assert stream.sector is None  # re-estimating for the new geometry
    np.testing.assert_allclose(out[-1].probabilities, clf.predict_windows(small, sector=None)[0].probabilities,
                               atol=1e-6)


def test_app_given_mask_is_used_and_checked(clf):
    frames, fan, _ = make_fan_clip(t=6, seed=8)
    stream = clf.stream(sector=fan)
    out = [stream.push(f) for f in frames]
    sector = stream.sector
    assert sector.method == "given" and stream.sector_updates == 0
    ref = clf.predict_windows(frames, sector=sector, via="forward")
    np.testing.assert_allclose(_probs(out), _probs(ref), atol=1e-6)
    with pytest.raises(ValueError, match="non-empty \\(H, W\\) bool"):
        clf.stream(sector=np.zeros((4, 4), bool))


@pytest.mark.parametrize("which", ["clf", "clf_ort"])
def test_concurrent_streams_equal_sequential(which, request):
    classifier = request.getfixturevalue(which)  # litert (locked) and onnxruntime (re-entrant)
    clips = [_fan_frames(30, 30 + 5 * i, seed=10 + i) for i in range(4)]
    sequential = [_probs(_run(classifier, c)) for c in clips]
    results = [None] * len(clips)

    def worker(i):
        results[i] = _probs(_run(classifier, clips[i]))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, sequential):
        np.testing.assert_array_equal(got, want)


def _run(classifier, frames):
    stream = classifier.stream()
    return [p for p in (stream.push(f) for f in frames) if p is not None]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_memory_is_flat_over_10000_frames(clf):
    frames = _fan_frames(50, 35, seed=20, h=48, w=64)
    stream = clf.stream(sector="auto")
    for i in range(1000):  # warm-up: caches, allocator pools
        stream.push(frames[i % 50])
    before = _rss_mb()
    emitted = 0
    for i in range(9000):
        emitted += stream.push(frames[i % 50]) is not None
    growth = _rss_mb() - before
    assert emitted == 9000 and stream.frames_seen == 10000
    assert len(stream._features) == 4 and len(stream._raw) == 4 and len(stream._pending) < 16
    assert growth < 30, f"RSS grew {growth:.1f} MB over 9000 frames"
