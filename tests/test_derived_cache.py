"""Derived inputs computed once per clip for training (`DerivedCache`): a window's slice of the
cache is exactly what the model (and the edge) computes on that window, for flow and frame
differences, strided, padded short clips, the memory budget, and a real training run."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from echoweave.edge.derived_inputs import is_pairwise  # noqa: E402
from echoweave.train.data.transforms import eval_transform  # noqa: E402
from echoweave.train.engine.data import WindowSamples, load_store  # noqa: E402
from echoweave.train.engine.derived_cache import DerivedCache  # noqa: E402
from echoweave.train.models import ModelConfig, build_model  # noqa: E402
from tests.helpers.tiny import tiny_config  # noqa: E402

torch.set_num_threads(1)
MODELS = {"two_stream": {"name": "two_stream", "tdcnn_channels": 16, "frames": 5, "flow_pairs": 2, "flow_chunks": 2},
          "diff_two_stream": {"name": "diff_two_stream", "frames": 4}}


@pytest.fixture(scope="module")
def store():
    return load_store(tiny_config("unused").data, show_progress=False)


def _model(name: str, stride: int):
    cfg = {"backbone": "tiny", "width": 8, "feature_dim": 32, "input_size": 32, "num_classes": 12,
           "frame_stride": stride, **MODELS[name]}
    return build_model(ModelConfig(**cfg)).eval()


def _check_items(ds: WindowSamples, model) -> int:
    """Every item's derived inputs == the model's own derivation of its pixels; returns items checked."""
    for i in range(len(ds)):
        item = ds[i]
        expected = model.derive(item["x"][None])
        assert len(item["derived"]) == len(expected)
        for got, want in zip(item["derived"], expected):
            assert got.dtype == torch.float32
            np.testing.assert_array_equal(got.numpy(), want[0].numpy())
    return len(ds)


@pytest.mark.parametrize("name,stride", [("two_stream", 2), ("two_stream", 1), ("diff_two_stream", 3)])
def test_cached_windows_equal_the_models_own_derivation(store, name, stride):
    model = _model(name, stride)
    tf = eval_transform(tiny_config("unused").data.preprocessing)
    clips = np.arange(6)
    cache = DerivedCache(store, clips, tf, model.derived_inputs(), stride, show_progress=False)
    assert all(is_pairwise(s["derive"]) for s in model.derived_inputs())
    assert len(cache.clips) == 6 and cache.cached_bytes > 0
    n = store.clips[0].num_frames
    assert next(iter(cache.clips.values()))[0].shape[0] == n  # one pair per frame
    # evaluation windows (fixed positions; at stride 3 a 4-frame window spans 10 > 8 frames: padded)
    ev = WindowSamples(store, clips, tf, model.frames, "consecutive", train=False, windows=3, stride=stride,
                       derived=cache)
    assert _check_items(ev, model) >= 6
    # training windows without augmentation, two epochs of fresh positions
    tr = WindowSamples(store, clips, tf, model.frames, "consecutive", train=True, repeats=2, seed=1,
                       stride=stride, derived=cache)
    for epoch in (0, 1):
        tr.set_epoch(epoch)
        _check_items(tr, model)


def test_a_window_outside_the_cache_is_computed_the_same_way(store):
    model = _model("two_stream", 2)
    tf = eval_transform(tiny_config("unused").data.preprocessing)
    empty = DerivedCache(store, [0, 1], tf, model.derived_inputs(), 2, budget_bytes=0, show_progress=False)
    assert empty.clips == {} and "cached per clip for 0/2 clips" in empty.summary()
    ds = WindowSamples(store, [0, 1], tf, model.frames, "consecutive", train=False, windows=2, stride=2,
                       derived=empty)
    _check_items(ds, model)
    # a cached clip but a window that is not a chain of the cached pairs (stride 1 vs the cache's 2)
    cache = DerivedCache(store, [0], tf, model.derived_inputs(), 2, show_progress=False)
    x = ds[0]["x"]
    (flow,) = cache.window_inputs(0, np.arange(model.frames), x)
    np.testing.assert_array_equal(flow.numpy(), model.derive(x[None])[0][0].numpy())


def test_training_caches_flow_when_augmentation_is_off(tmp_path, capsys):
    from echoweave.train.engine.run import run_training

    model = {**MODELS["two_stream"], "frame_stride": 2}
    run_training(tiny_config(tmp_path / "plain", model=model, data={"augment": False}, optim={"epochs": 1}),
                 show_progress=False)
    out = capsys.readouterr().out
    assert "derived inputs (farneback_flow) cached per clip for 36/36 clips at frame stride 2" in out
    # augmented training windows have their own flow: only the validation clips are cached
    run_training(tiny_config(tmp_path / "aug", model=model, optim={"epochs": 1}), show_progress=False)
    line = next(l for l in capsys.readouterr().out.splitlines() if "cached per clip" in l)
    cached, total = (int(v) for v in line.split(" for ")[1].split(" clips")[0].split("/"))
    assert 0 < cached == total < 36
    run_training(tiny_config(tmp_path / "off", model=model, data={"augment": False, "derived_cache_gb": 0},
                             optim={"epochs": 1}), show_progress=False)
    assert "cached per clip" not in capsys.readouterr().out


def test_the_cache_benchmark_reports_both_paths(tmp_path):
    from echoweave.benchmarks.derived_cache import main

    report = main(["--size", "32", "--frames", "5", "--clip_frames", "12", "--repeats", "1", "--windows", "1",
                   "--out", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").exists()
    clips = report["setup"]["clips"]
    # one (x, y) flow pair per frame of every clip, float32
    assert report["cache"]["megabytes"] == round(clips * 12 * 2 * 32 * 32 * 4 / 1e6, 1)
    assert f"for {clips}/{clips} clips" in report["cache"]["summary"]
    assert all(v > 0 for v in report["median_epoch_s"].values()) and report["speedup"] > 0
