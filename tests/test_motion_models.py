"""Models that use time: order sensitivity, the feature-contrast head and the frame stride from
training through export to the edge runtime (file and stream), exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import echoweave.edge as ew
from echoweave.train.models import build_model
from echoweave.train.models.base import window_contrast
from tests.helpers.edge_artifacts import exported_artifacts
from tests.helpers.stream_parity import assert_file_and_stream_agree
from tests.helpers.tiny import tiny_config

TEMPORAL = ("gru", "tfw", "attention")
RUNTIMES = ("onnxruntime", "executorch", "litert")


def _window(seed: int = 0) -> torch.Tensor:
    return torch.rand(3, 4, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("contrast", ["none", "window_mean"])
@pytest.mark.parametrize("name", TEMPORAL)
def test_temporal_models_change_their_logits_when_the_window_is_reversed(name, contrast):
    torch.manual_seed(0)
    model = build_model(name=name, backbone="tiny", width=8, feature_dim=64, gru_hidden=32, gru_layers=2,
                        input_size=32, contrast=contrast).eval()
    with torch.no_grad():  # generic weights: attention's position embedding starts near zero (std 0.02)
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    x = _window()
    with torch.no_grad():
        forward, backward = model(x), model(x.flip(1))
    # An order-blind head (a mean, a bag of frames) gives identical logits; these must not.
    assert (forward - backward).abs().max() > 1e-3


def test_the_order_check_can_fail_mean_voting_ignores_order():
    torch.manual_seed(0)
    model = build_model(name="image", backbone="tiny", width=8, feature_dim=64, input_size=32).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    x = _window()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.flip(1)), atol=1e-5, rtol=0)


def test_window_contrast_removes_what_is_static_in_a_window():
    feats = torch.randn(2, 4, 8)
    static = torch.randn(2, 1, 8)  # a clip's appearance: the same in every frame
    out = window_contrast(feats + static)
    torch.testing.assert_close(out, window_contrast(feats))
    torch.testing.assert_close(out.mean(1), torch.zeros(2, 8), atol=1e-6, rtol=0)


def test_contrast_head_standardises_with_training_statistics_and_exports_as_an_affine():
    torch.manual_seed(0)
    model = build_model(name="gru", backbone="tiny", width=8, feature_dim=64, gru_hidden=32, gru_layers=2,
                        input_size=32, contrast="window_mean")
    feats = torch.rand(16, 4, 64) * 0.01  # contrast features are small next to raw ones
    model.train()
    for _ in range(60):
        model.classify_window(feats)
    bn = model.contrast_norm.bn
    assert bn.num_batches_tracked == 60 and bn.running_var.mean() < 1e-2  # it learned the small scale (0.9 ** 60 of the initial 1 is left)
    model.eval()
    expected = torch.nn.functional.batch_norm(window_contrast(feats).flatten(0, 1), bn.running_mean,
                                              bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    torch.testing.assert_close(model.contrast_norm(window_contrast(feats)), expected.unflatten(0, (16, 4)))


def test_image_model_refuses_a_contrast():
    with pytest.raises(ValueError, match="contrast must be 'none'"):
        build_model(name="image", backbone="tiny", contrast="window_mean")


def test_data_stride_moved_to_the_model(tmp_path):
    with pytest.raises(ValueError, match="model.frame_stride"):
        tiny_config(tmp_path, data={"stride": 2})


def test_windows_take_every_stride_th_frame_in_training_and_evaluation(tmp_path):
    from echoweave.train.engine.data import WindowSamples, load_store

    cfg = tiny_config(tmp_path)
    store = load_store(cfg.data, show_progress=False)
    ev = WindowSamples(store, [0], None, 4, "consecutive", train=False, windows=2, stride=2)
    assert [list(idx) for _, idx in ev.items] == [[0, 2, 4, 6], [1, 3, 5, 7]]  # 8 frames, span 7
    tr = WindowSamples(store, [0], None, 4, "consecutive", train=True, repeats=20, stride=2, seed=3)
    for i in range(20):
        idx = tr._draw(0, i)
        assert list(np.diff(idx)) == [2, 2, 2] and idx[0] in (0, 1)


@pytest.fixture(scope="module")
def contrast_checkpoint(tmp_path_factory):
    """A trained tiny TFW with the feature-contrast head and frame stride 2."""
    from echoweave.train.engine.run import run_training

    out = tmp_path_factory.mktemp("contrast_run")
    cfg = tiny_config(out, model={"contrast": "window_mean", "frame_stride": 2},
                      optim={"epochs": 1, "optimizer": "adam", "lr": 0.003})
    return run_training(cfg, show_progress=False).checkpoint


@pytest.fixture(scope="module")
def contrast_dir(contrast_checkpoint):
    return exported_artifacts(contrast_checkpoint)


def test_checkpoint_and_manifest_record_the_stride_and_the_contrast(contrast_checkpoint, contrast_dir):
    import json

    meta = json.loads((Path(contrast_checkpoint) / "checkpoint.json").read_text())
    assert meta["model"]["frame_stride"] == 2 and meta["model"]["contrast"] == "window_mean"
    manifest = json.loads((contrast_dir / "manifest.json").read_text())
    assert manifest["frame_stride"] == 2
    assert manifest["input_spec"]["frame_stride"] == 2 and manifest["input_spec"]["contrast"] == "window_mean"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_strided_contrast_model_streams_exactly_like_eager(contrast_dir, contrast_checkpoint, runtime):
    from echoweave.train.engine.checkpoint import load_model

    clf = ew.load(contrast_dir, runtime=runtime, threads=1)
    assert clf.frames == 4 and clf.frame_stride == 2 and clf.span == 7
    frames = np.random.default_rng(5).integers(0, 256, size=(12, 40, 50), dtype=np.uint8)
    x = clf.preprocess(frames, sector=None)  # (12, 1, 32, 32)
    model, _ = load_model(contrast_checkpoint)
    with torch.no_grad():
        windows = torch.stack([torch.from_numpy(x[s : s + 7 : 2]) for s in range(6)])  # (6, 4, 1, S, S)
        eager = torch.softmax(model(windows).double(), -1).numpy()
    pushed = assert_file_and_stream_agree(clf, frames, eager)
    assert [p is None for p in pushed] == [True] * 6 + [False] * 6  # first prediction once 7 frames are in
    assert [p.frame_index for p in pushed if p] == list(range(6, 12))


def test_motion_share_measures_the_part_of_the_features_that_moves():
    from echoweave.train.experiments.feature_motion import motion_share

    rng = np.random.default_rng(0)
    static = rng.normal(size=(50, 1, 8)).repeat(16, axis=1)  # (clips, frames, D): appearance only
    assert motion_share(static) == pytest.approx(0.0, abs=1e-12)
    moving = static + 0.1 * np.sin(np.arange(16))[None, :, None]
    assert 0.0 < motion_share(moving, stride=1) < motion_share(moving, stride=2) < 0.05


def test_a_frame_stride_with_spaced_sampling_is_refused_not_ignored(tmp_path):
    from echoweave.edge.errors import EchoweaveError
    from echoweave.train.engine.run import run_training

    cfg = tiny_config(tmp_path, model={"frame_stride": 2}, data={"sampler": "spaced"}, optim={"epochs": 1})
    with pytest.raises(EchoweaveError, match="frame stride 2 needs the consecutive sampler"):
        run_training(cfg, show_progress=False)
