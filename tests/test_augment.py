"""Clip-consistent augmentation: one set of random parameters per clip, eval geometry underneath."""
import numpy as np
import pytest
import torch

from echoweave.edge.preprocess import PreprocessSpec
from echoweave.train.data.augment import AugmentConfig, RandomClipAutocontrast, RandomClipContrast, train_transform
from echoweave.train.data.transforms import eval_transform, to_video

torch.set_num_threads(1)
SPEC = PreprocessSpec(resize=40, crop=32)  # tiny sizes keep the file fast; same code path as 232/224
EVERYTHING = AugmentConfig(rotation=25, scale=(0.8, 1.2), shift=0.1, hflip=0.5, contrast=0.4, autocontrast=0.5)


def _frame(h=48, w=56, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = (xx * 3 + yy * 2) % 200 + rng.integers(0, 40, (h, w))  # asymmetric: flips/rotations show
    img[5:15, 5:12] = 255
    return img.astype(np.uint8)


def _repeated_clip(t=4):
    return np.repeat(_frame()[None], t, axis=0)  # (T, H, W), every frame identical


@pytest.mark.parametrize("seed", range(6))
def test_identical_frames_stay_identical_so_parameters_are_shared(seed):
    torch.manual_seed(seed)
    out = train_transform(SPEC, EVERYTHING)(to_video(_repeated_clip()))
    for t in range(1, out.shape[0]):
        assert torch.equal(out[t], out[0])


def test_rgb_clips_share_parameters_too():
    clip = np.repeat(np.stack([_frame(seed=s) for s in range(3)], axis=-1)[None], 3, axis=0)  # (3, H, W, 3)
    torch.manual_seed(1)
    out = train_transform(SPEC, EVERYTHING)(to_video(clip))
    assert tuple(out.shape) == (3, 1, 32, 32)
    assert torch.equal(out[1], out[0]) and torch.equal(out[2], out[0])


def test_output_shape_dtype_and_range():
    torch.manual_seed(0)
    out = train_transform(SPEC, EVERYTHING)(to_video(_repeated_clip(5)))
    assert tuple(out.shape) == (5, 1, 32, 32) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_calls_differ_and_seeds_reproduce():
    tf, clip = train_transform(SPEC, EVERYTHING), to_video(_repeated_clip())
    torch.manual_seed(123)
    a, b = tf(clip), tf(clip)
    assert not torch.equal(a, b)
    torch.manual_seed(123)
    assert torch.equal(tf(clip), a)


def test_disabled_or_neutral_augmentation_is_the_eval_transform():
    clip = to_video(np.stack([_frame(seed=s) for s in range(3)]))
    expected = eval_transform(SPEC)(clip)
    assert torch.equal(train_transform(SPEC, AugmentConfig(enabled=False))(clip), expected)
    neutral = AugmentConfig(rotation=0, autocontrast=0, random_crop=False)
    assert torch.equal(train_transform(SPEC, neutral)(clip), expected)


def test_flip_mirrors_the_eval_output():
    spec = PreprocessSpec(resize=48, crop=40)  # 48x56 frames: no resize, even crop margins
    clip = to_video(np.stack([_frame(seed=s) for s in range(2)]))
    flip_only = AugmentConfig(rotation=0, autocontrast=0, hflip=1.0, random_crop=False)
    flipped = train_transform(spec, flip_only)(clip)
    assert torch.equal(flipped, eval_transform(spec)(clip).flip(-1))


@pytest.mark.parametrize("seed", range(3))
def test_geometry_is_shared_by_frames_with_different_content(seed):
    # Frame 1 = frame 0 + 30 grey levels, frame 2 = all white. Geometry is linear in the pixels,
    # so with one shared warp out[1] - out[0] == 30/255 * out[2] (out[2] = the warp's coverage,
    # 0 in the black fill, fractional at its border) -- at every pixel, border included.
    base = np.minimum(_frame(), 200).astype(np.uint8)
    clip = np.stack([base, base + 30, np.full_like(base, 255)])  # (3, H, W)
    torch.manual_seed(seed)
    aug = AugmentConfig(rotation=25, scale=(0.8, 1.2), shift=0.1, hflip=0.5, autocontrast=0)
    out = train_transform(SPEC, aug)(to_video(clip))
    assert not torch.equal(out[0], eval_transform(SPEC)(to_video(clip))[0])  # the warp did move something
    assert torch.allclose(out[1] - out[0], 30 / 255 * out[2], atol=1e-5)


def test_clip_autocontrast_stretches_the_clip_not_each_frame():
    frames = torch.stack([torch.full((1, 4, 4), 0.2), torch.full((1, 4, 4), 0.4)])  # (2, 1, 4, 4)
    frames[0, 0, 0, 0], frames[1, 0, 0, 0] = 0.3, 0.6
    out = RandomClipAutocontrast(p=1.0)(frames)
    assert float(out.min()) == 0.0 and float(out.max()) == pytest.approx(1.0)
    assert float(out[1].min()) == pytest.approx(0.5)  # 0.4 -> (0.4-0.2)/(0.6-0.2): not a per-frame stretch
    flat = torch.full((2, 1, 3, 3), 0.5)
    assert torch.equal(RandomClipAutocontrast(p=1.0)(flat), flat)


def test_clip_contrast_scales_around_the_clip_mean():
    frames = torch.tensor([0.2, 0.4, 0.6, 0.8]).reshape(2, 1, 1, 2)  # clip mean 0.5
    torch.manual_seed(0)
    tf = RandomClipContrast(0.5)
    factor = tf.make_params([frames])["factor"]
    torch.manual_seed(0)
    out = tf(frames)
    assert 0.5 <= factor <= 1.5
    assert torch.allclose(out, 0.5 + factor * (frames - 0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rotation": -1}, "rotation"),
        ({"scale": (1.2, 0.8)}, "scale"),
        ({"hflip": 1.5}, "hflip"),
        ({"autocontrast": -0.1}, "autocontrast"),
        ({"shift": 2.0}, "shift"),
        ({"contrast": 1.0}, "contrast"),
    ],
)
def test_config_rejects_nonsense(kwargs, message):
    with pytest.raises(ValueError, match=f"AugmentConfig.{message}"):
        AugmentConfig(**kwargs)


def test_config_accepts_lists_from_yaml():
    assert AugmentConfig(scale=[0.9, 1.1]).scale == (0.9, 1.1)
