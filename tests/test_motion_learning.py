"""Slow: the CPU recipe learns motion. Trained end to end on the phantom, the temporal model tells
the motion-only view pairs apart on held-out patients while single frames stay near chance."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_demo_recipe_separates_the_motion_only_pairs_single_frames_do_not(tmp_path):
    from echoweave.train.engine.evaluate import motion_pair_accuracy, predict_windows, video_predictions
    from echoweave.train.engine.kfold import _rt_of
    from echoweave.train.engine.recipe import load_recipe, run_recipe, stage_config

    runs = run_recipe("demo_cpu", tmp_path / "runs", show_progress=False)
    store, held = runs["stage1"].store, runs["stage1"].val_indices  # patients neither stage saw
    cfg2 = stage_config(load_recipe("demo_cpu"), "stage2", tmp_path / "runs")
    temporal, image = runs["stage2"].model, runs["stage1"].model
    assert temporal.cfg.contrast == "window_mean" and temporal.cfg.frame_stride == 2
    spec, windows = cfg2.data.preprocessing, cfg2.data.eval_windows
    names = list(store.class_names)
    temporal_pairs = motion_pair_accuracy(*video_predictions(
        predict_windows(temporal, store, held, spec, "consecutive", windows, _rt_of(temporal))), names)
    frame_pairs = motion_pair_accuracy(*video_predictions(
        predict_windows(image, store, held, spec, "frame", windows, _rt_of(image))), names)
    assert len(temporal_pairs) == 2 and all(v["n"] >= 12 for v in temporal_pairs.values())
    for pair, v in temporal_pairs.items():
        assert v["accuracy"] >= 0.8, (pair, temporal_pairs, frame_pairs)
    assert np.mean([v["accuracy"] for v in frame_pairs.values()]) <= 0.65, frame_pairs
