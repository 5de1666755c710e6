"""Shared pytest fixtures: small real-format clips and a synthetic fan with burned-in text."""
from __future__ import annotations

import numpy as np
import pytest


def make_fan_clip(t: int = 8, h: int = 64, w: int = 96, seed: int = 0):
    """A clip with a moving speckle fan and static bright "text" outside it.

    Returns:
        ``(frames (T, H, W) uint8, fan_mask (H, W) bool, text_mask (H, W) bool)``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    apex_y, apex_x = 4, w // 2
    r = np.hypot(yy - apex_y, xx - apex_x)
    ang = np.degrees(np.arctan2(xx - apex_x, yy - apex_y))  # 0 = straight down
    fan = (r < h - 8) & (np.abs(ang) < 35) & (yy > apex_y)
    frames = np.zeros((t, h, w), np.uint8)
    for i in range(t):
        speckle = rng.integers(20, 200, size=(h, w))
        frames[i][fan] = speckle[fan]
    text = np.zeros((h, w), bool)
    text[2:7, 2:14] = True  # "patient name" block, top-left
    text[h - 6 : h - 2, w - 20 : w - 3] = True  # "date" block, bottom-right
    text[20:24, 2:8] = True  # a settings label beside the fan
    text &= ~fan
    frames[:, text] = 255
    return frames, fan, text


@pytest.fixture
def fan_clip():
    """``(frames, fan_mask, text_mask)`` from `make_fan_clip` with default sizes."""
    return make_fan_clip()


@pytest.fixture(scope="session")
def ybr_cine_path() -> str:
    """The real 30-frame apical cardiac cine (YBR_FULL_422, JPEG baseline) shipped with pydicom."""
    from pydicom.data import get_testdata_file

    return get_testdata_file("examples_ybr_color.dcm")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A real trained checkpoint folder of the tiny TFW model (1 epoch on 3 phantom patients).

    Its ``checkpoint.json`` names the dataset (the phantom config), the class names, the
    preprocessing spec and the held-out patients, like any checkpoint.
    """
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    out = tmp_path_factory.mktemp("tiny_run")
    result = run_training(tiny_config(out, optim={"epochs": 1}), show_progress=False)
    return result.checkpoint
