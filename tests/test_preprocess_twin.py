"""The numpy eval preprocessing (edge) and the torchvision eval transform (train) are twins.

Measured on this machine: weights bit-identical; max |twin - torchvision| = 1.8e-7 over all
cases below (about 5e-5 of one grey level), the residue of float32 summation order.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from echoweave.edge.errors import ClipReadError
from echoweave.edge.image import rgb_to_gray
from echoweave.edge.preprocess import (
    PreprocessSpec,
    centre_crop_offset,
    preprocess_frames,
    resize_weights,
    resized_size,
)
from echoweave.train.data.transforms import GrayscaleBT601, eval_transform, to_video

torch.set_num_threads(1)
TWIN_TOL = 1e-6  # float32 rounding only; 1/255 would hide a wrong algorithm


def _structured(t, h, w):
    """Gradients, a bright disc and hard edges: the content where resize kernels disagree most."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for k in range(t):
        img = (xx * 255 // max(w - 1, 1) + k * 9) % 256
        disc = (yy - h / 2) ** 2 + (xx - w / 3 - 5 * k) ** 2 < (min(h, w) / 4) ** 2
        img = np.where(disc, 250, img)
        img[:, ::7] = 0  # one-pixel lines alias badly without antialias
        frames.append(img)
    return np.stack(frames).astype(np.uint8)


def test_spec_defaults_match_the_paper():
    spec = PreprocessSpec()
    assert (spec.grayscale, spec.sector_mask, spec.resize, spec.crop) == (True, True, 232, 224)
    assert spec.scale == 1 / 255 and spec.channels == 1


def test_spec_round_trips_through_json():
    spec = PreprocessSpec(grayscale=False, sector_mask=False, resize=128, crop=112)
    back = PreprocessSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert PreprocessSpec.from_dict({}) == PreprocessSpec()  # missing keys take defaults


def test_spec_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match=r"unknown preprocessing spec key\(s\) \['mean'\]"):
        PreprocessSpec.from_dict({"resize": 232, "mean": 0.5})
    with pytest.raises(ValueError, match="crop .* must not exceed resize"):
        PreprocessSpec(resize=200, crop=224)
    with pytest.raises(ValueError, match="resize must be a positive integer"):
        PreprocessSpec(resize=232.0)
    with pytest.raises(ValueError, match="grayscale must be true or false"):
        PreprocessSpec.from_dict({"grayscale": "yes"})
    with pytest.raises(ValueError, match="scale must be a positive number"):
        PreprocessSpec(scale=0.0)


@pytest.mark.parametrize(("h", "w", "expected"), [(300, 257, (270, 232)), (257, 300, (232, 270)), (480, 640, (232, 309))])
def test_resized_size_follows_torchvision_truncation(h, w, expected):
    assert resized_size(h, w, 232) == expected


def test_centre_crop_offset_rounds_half_to_even_like_torchvision():
    assert [centre_crop_offset(n, 224) for n in (224, 225, 233, 235, 270)] == [0, 0, 4, 6, 23]


@pytest.mark.parametrize(("n_in", "n_out"), [(257, 232), (300, 270), (800, 309), (90, 232), (233, 232), (232, 232)])
def test_resize_weights_are_bit_identical_to_torch(n_in, n_out):
    eye = torch.eye(n_in).reshape(n_in, 1, 1, n_in)  # each row: one input pixel set to 1
    torch_w = F.interpolate(eye, size=(1, n_out), mode="bilinear", antialias=True, align_corners=False)
    np.testing.assert_array_equal(resize_weights(n_in, n_out), torch_w[:, 0, 0, :].T.numpy())
    np.testing.assert_allclose(resize_weights(n_in, n_out).sum(axis=1), 1.0, atol=1e-6)


CASES = [(300, 257), (257, 300), (232, 232), (100, 90), (233, 233), (240, 320)]


@pytest.mark.parametrize(("h", "w"), CASES)
@pytest.mark.parametrize("content", ["random", "structured", "rgb"])
def test_numpy_twin_equals_torchvision_eval_transform(h, w, content):
    rng = np.random.default_rng(h * 1000 + w)
    if content == "random":
        frames = rng.integers(0, 256, (2, h, w), dtype=np.uint8)
    elif content == "structured":
        frames = _structured(2, h, w)
    else:
        frames = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    spec = PreprocessSpec()
    ours = preprocess_frames(frames, spec)
    theirs = eval_transform(spec)(to_video(frames))
    assert ours.shape == (2, 1, 224, 224) and ours.dtype == np.float32
    assert tuple(theirs.shape) == (2, 1, 224, 224) and theirs.dtype == torch.float32
    assert np.abs(ours - theirs.numpy()).max() <= TWIN_TOL
    assert 0.0 <= ours.min() and ours.max() <= 1.0


def test_twin_matches_for_rgb_specs_and_small_sizes():
    spec = PreprocessSpec(grayscale=False, resize=40, crop=32)
    frames = np.random.default_rng(3).integers(0, 256, (3, 61, 47, 3), dtype=np.uint8)
    ours = preprocess_frames(frames, spec)
    theirs = eval_transform(spec)(to_video(frames)).numpy()
    assert ours.shape == theirs.shape == (3, 3, 32, 32)
    assert np.abs(ours - theirs).max() <= TWIN_TOL


def test_same_size_frames_are_only_cropped_and_scaled():
    frames = np.random.default_rng(4).integers(0, 256, (1, 232, 240), dtype=np.uint8)
    out = preprocess_frames(frames, PreprocessSpec())
    np.testing.assert_array_equal(out[0, 0], frames[0, 4:228, 8:232].astype(np.float32) * np.float32(1 / 255))


def test_grayscale_step_is_bit_identical_to_edge_rgb_to_gray():
    frames = np.random.default_rng(5).integers(0, 256, (2, 9, 11, 3), dtype=np.uint8)
    gray = GrayscaleBT601()(to_video(frames))
    assert tuple(gray.shape) == (2, 1, 9, 11) and gray.dtype == torch.uint8
    np.testing.assert_array_equal(gray[:, 0].numpy(), rgb_to_gray(frames))


@pytest.mark.parametrize(
    ("frames", "problem"),
    [
        (np.zeros((2, 8, 8), np.float32), "uint8"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"\(T, H, W\) or \(T, H, W, 3\)"),
        (np.zeros((0, 8, 8), np.uint8), "must not be empty"),
    ],
)
def test_bad_frames_raise_clip_read_error_naming_the_source(frames, problem):
    with pytest.raises(ClipReadError, match=f"scan.dcm: .*{problem}"):
        preprocess_frames(frames, PreprocessSpec(), source="scan.dcm")


def test_to_video_accepts_reader_and_channel_first_layouts():
    gray = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6)
    rgb = np.stack([gray, gray + 1, gray + 2], axis=-1)  # (2, 5, 6, 3)
    assert tuple(to_video(gray).shape) == (2, 1, 5, 6)
    assert torch.equal(to_video(gray[:, None]), to_video(gray))  # already (T, 1, H, W)
    video = to_video(rgb)
    assert tuple(video.shape) == (2, 3, 5, 6) and int(video[1, 2, 4, 5]) == int(rgb[1, 4, 5, 2])
    with pytest.raises(ValueError, match="uint8"):
        to_video(gray.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(T, 1\|3, H, W\)"):
        to_video(np.zeros((2, 4, 5, 6), np.uint8))
