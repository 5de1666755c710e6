"""Frame samplers: exact index arrays for eval, bounds and coverage for training draws."""
import numpy as np
import pytest

from echoweave.edge.errors import ClipReadError
from echoweave.train.data.samplers import (
    ShortClipError,
    sample_consecutive,
    sample_first,
    sample_spaced,
    sample_stride,
    sliding_windows,
)


def _eq(actual, expected):
    assert actual.dtype == np.int64
    np.testing.assert_array_equal(actual, np.asarray(expected, dtype=np.int64))


def test_docstring_examples_hold():
    _eq(sample_spaced(40, 4), [5, 15, 25, 35])
    _eq(sample_consecutive(40, 4), [18, 19, 20, 21])
    _eq(sample_stride(40, 4, stride=4), [13, 17, 21, 25])
    _eq(sliding_windows(10, 4, hop=2), [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]])


def test_consecutive_eval_is_centred():
    _eq(sample_consecutive(10, 4), [3, 4, 5, 6])
    _eq(sample_consecutive(4, 4), [0, 1, 2, 3])
    _eq(sample_consecutive(5, 4), [0, 1, 2, 3])  # one spare frame: floor(1/2) = 0


def test_consecutive_training_draws_every_valid_start_and_nothing_else():
    rng = np.random.default_rng(0)
    starts = {int(sample_consecutive(10, 4, rng)[0]) for _ in range(400)}
    assert starts == set(range(7))
    sample = sample_consecutive(10, 4, rng)
    _eq(np.diff(sample), [1, 1, 1])


def test_spaced_eval_takes_segment_centres():
    _eq(sample_spaced(10, 4), [1, 3, 6, 8])  # L = 2.5: floor(1.25, 3.75, 6.25, 8.75)
    _eq(sample_spaced(4, 4), [0, 1, 2, 3])
    _eq(sample_spaced(7, 1), [3])


def test_spaced_training_stays_in_its_segment_and_reaches_the_tail():
    rng = np.random.default_rng(1)
    draws = np.stack([sample_spaced(10, 4, rng) for _ in range(500)])  # (500, 4)
    edges = [(0, 2), (2, 5), (5, 7), (7, 10)]  # floor(k * 2.5)
    for k, (lo, hi) in enumerate(edges):
        assert set(draws[:, k].tolist()) == set(range(lo, hi))


def test_same_seed_same_draws():
    a = [sample_spaced(50, 4, np.random.default_rng(7)) for _ in range(2)]
    _eq(a[0], a[1])


def test_stride_eval_centred_and_training_bounded():
    _eq(sample_stride(20, 4, 2), [6, 8, 10, 12])  # span 7, room 13 -> start 6
    _eq(sample_stride(7, 4, 2), [0, 2, 4, 6])
    rng = np.random.default_rng(2)
    starts = {int(sample_stride(20, 4, 2, rng)[0]) for _ in range(600)}
    assert starts == set(range(14))


def test_first_frames():
    _eq(sample_first(9, 4), [0, 1, 2, 3])


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: sample_consecutive(3, 4), [0, 1, 2, 2]),
        (lambda: sample_consecutive(3, 4, np.random.default_rng(0)), [0, 1, 2, 2]),
        (lambda: sample_spaced(3, 4), [0, 1, 2, 2]),
        (lambda: sample_spaced(2, 4, np.random.default_rng(0)), [0, 1, 1, 1]),
        (lambda: sample_stride(5, 4, 2), [0, 2, 4, 4]),
        (lambda: sample_first(1, 4), [0, 0, 0, 0]),
        (lambda: sliding_windows(3, 4, 2), [[0, 1, 2, 2]]),
    ],
)
def test_short_clips_repeat_the_last_frame(call, expected):
    _eq(call(), expected)


@pytest.mark.parametrize(
    ("call", "needed", "available"),
    [
        (lambda: sample_consecutive(3, 4, short="error"), 4, 3),
        (lambda: sample_spaced(3, 4, short="error"), 4, 3),
        (lambda: sample_stride(6, 4, 2, short="error"), 7, 6),
        (lambda: sample_first(2, 4, short="error"), 4, 2),
        (lambda: sliding_windows(8, 4, 1, stride=3, short="error"), 10, 8),
    ],
)
def test_short_error_says_needed_and_available(call, needed, available):
    with pytest.raises(ShortClipError, match=f"needs {needed} frames but has only {available}") as info:
        call()
    assert (info.value.needed, info.value.available) == (needed, available)
    assert isinstance(info.value, ClipReadError) and isinstance(info.value, ValueError)


def test_zero_frames_and_bad_arguments_are_errors():
    with pytest.raises(ClipReadError, match="empty clip"):
        sample_spaced(0, 4)
    with pytest.raises(ValueError, match="T .* at least 1"):
        sample_consecutive(10, 0)
    with pytest.raises(ValueError, match="short must be one of"):
        sample_first(10, 4, short="loop")
    with pytest.raises(ValueError, match="stride must be at least 1"):
        sample_stride(10, 4, 0)
    with pytest.raises(ValueError, match="hop and stride"):
        sliding_windows(10, 4, 0)


def test_sliding_windows_regular_strided_and_cover_end():
    _eq(sliding_windows(9, 4, 2), [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]])
    _eq(sliding_windows(9, 4, 2, cover_end=True), [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [5, 6, 7, 8]])
    _eq(sliding_windows(8, 4, 2, cover_end=True), [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]])  # already ends on 7
    _eq(sliding_windows(10, 3, 3, stride=2), [[0, 2, 4], [3, 5, 7]])
    assert sliding_windows(100, 4, 1).shape == (97, 4)
