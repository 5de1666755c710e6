"""Multi-stream late fusion (`multistream`, Sharma et al.'s FR, FR/2, FR/4, FR/8 streams): each
stream is its stream model on a strided slice of one full-rate window, the fusion is the log of
the mean softmax, it trains, and it goes through export (ONNX and ExecuTorch fp32, parity
through the edge adapters), `Classifier.predict` and streaming like any window-only model."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from echoweave.train.models import ModelConfig, build_model  # noqa: E402
from echoweave.train.models.multistream import stream_frames, stream_slices  # noqa: E402

torch.set_num_threads(1)
# 2 frames per stream at strides 1, 2, 4, 8: a 9-frame window (the recipe: 12 frames, 89).
TINY = {"name": "multistream", "frames": 9, "stream_frames": 2, "stream_model": "c3d", "width": 4,
        "backbone": "tiny", "feature_dim": 16, "tdcnn_channels": 8, "input_size": 32, "num_classes": 5}


def _model(**kw):
    return build_model(ModelConfig(**{**TINY, **kw})).eval()


def test_the_seeds_streams_are_centred_strided_slices_of_one_89_frame_window():
    cfg = ModelConfig(name="multistream", frames=89)
    assert stream_frames(cfg) == 12  # None: as many as the window holds at FR/8
    slices = stream_slices(89, (1, 2, 4, 8), 12)
    idx = [np.arange(89)[s] for s in slices]
    assert [len(i) for i in idx] == [12, 12, 12, 12]
    assert [int(np.diff(i)[0]) for i in idx] == [1, 2, 4, 8]
    assert (idx[3][0], idx[3][-1]) == (0, 88)  # FR/8 spans the whole window
    # every stream is centred on the window's centre, frame 44 (the even spans half a frame early)
    assert [(i[0] + i[-1]) / 2 for i in idx] == [43.5, 44.0, 44.0, 44.0]
    with pytest.raises(ValueError, match="set model.frames to at least 89"):
        stream_slices(88, (1, 2, 4, 8), 12)


def test_forward_is_each_stream_model_on_its_strided_sub_window_fused_by_mean_softmax():
    model = _model()
    clip = torch.rand(3, 9, 1, 32, 32)
    with torch.no_grad():
        fused = model(clip)
        subs = [net(clip[:, start : start + (2 - 1) * s + 1 : s]) for net, s, start in
                zip(model.stream_nets, (1, 2, 4, 8), (3, 3, 2, 0))]
    assert [tuple(x.shape) for x in subs] == [(3, 5)] * 4
    mean_p = torch.stack([torch.softmax(z, -1) for z in subs]).mean(0)  # (B, K)
    torch.testing.assert_close(fused, mean_p.log(), rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.softmax(fused, -1), mean_p, rtol=0, atol=1e-6)  # softmax of the output is the fusion
    assert len({id(p) for net in model.stream_nets for p in net.parameters()}) == \
        sum(1 for _ in model.parameters())  # four separate stream models, no weight shared


def test_fusion_math_on_known_stream_outputs():
    model = _model(streams=(1, 2), stream_frames=3, frames=5)
    known = [torch.tensor([[math.log(0.7), math.log(0.1), math.log(0.1), math.log(0.05), math.log(0.05)]]),
             torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0]])]  # p = (0.7, .1, .1, .05, .05) and uniform 0.2
    model.stream_logits = lambda clip: known
    out = torch.softmax(model(torch.rand(1, 5, 1, 32, 32)), -1)
    torch.testing.assert_close(out, torch.tensor([[0.45, 0.15, 0.15, 0.125, 0.125]]), rtol=0, atol=1e-6)
    # a class every stream rules out stays finite (logsumexp, not log of an underflowed 0)
    model.stream_logits = lambda clip: [torch.tensor([[0.0, -200.0]]), torch.tensor([[0.0, -300.0]])]
    assert torch.isfinite(model(torch.rand(1, 5, 1, 32, 32))).all()


def test_config_checks_and_declarations():
    with pytest.raises(ValueError, match="at least 9"):
        _model(frames=8)
    with pytest.raises(ValueError, match="distinct strides"):
        ModelConfig(name="multistream", streams=(1, 1))
    with pytest.raises(ValueError, match="cannot be multistream"):
        _model(stream_model="multistream")
    with pytest.raises(ValueError, match="derived inputs"):
        _model(stream_model="diff_two_stream")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        _model(stream_model="nope")
    model = _model()
    assert model.methods == ("forward",) and model.aggregation == "window"
    # c3d's own export limits, said to come from the stream model
    limits = model.export_limits()
    assert set(limits) == set(_model(name="c3d", frames=2).export_limits())
    assert limits[("executorch", "*")].startswith("stream model c3d: 3-D convolution")
    spec = model.input_spec()
    assert spec["frames"] == 9 and spec["frame_stride"] == 1
    assert spec["streams"] == [{"stride": 1, "start": 3, "frames": 2}, {"stride": 2, "start": 3, "frames": 2},
                               {"stride": 4, "start": 2, "frames": 2}, {"stride": 8, "start": 0, "frames": 2}]
    cfg = ModelConfig.from_dict(model.cfg.to_dict())  # JSON round trip (checkpoint, manifest)
    assert cfg.streams == (1, 2, 4, 8) and cfg == model.cfg


def test_wraps_every_registered_pixel_only_model():
    """Any registered model is a stream model unless it takes derived inputs (refused, named)."""
    from echoweave.train.models import list_models

    tiny = {**TINY, "feature_dim": 16, "gru_hidden": 8, "gru_layers": 1, "lstm_hidden": 8, "stream_dim": 8,
            "streams": (1, 2), "stream_frames": 2, "frames": 3}
    clip = torch.rand(1, 3, 1, 32, 32)
    for name in (n for n in list_models() if n != "multistream"):
        single = build_model(ModelConfig(**{**tiny, "name": name, "frames": 2}))
        if single.derived_inputs():
            with pytest.raises(ValueError, match="derived inputs"):
                _model(**{**tiny, "stream_model": name})
            continue
        model = _model(**{**tiny, "stream_model": name})
        with torch.no_grad():
            probs = [torch.softmax(net(clip[:, sl]), -1) for net, sl in zip(model.stream_nets, model.slices)]
            torch.testing.assert_close(model(clip), ((probs[0] + probs[1]) / 2).log(), rtol=0, atol=1e-5,
                                       msg=lambda m: f"{name}: {m}")


def test_per_frame_stream_models_start_from_the_stage1_image_model():
    image = build_model(ModelConfig(**{**TINY, "name": "image", "frames": 2}))
    model = _model(stream_model="tdcnn")
    copied = model.init_from_image_state(image.state_dict())
    assert copied and all(k.startswith("stream_nets.") for k in copied)
    for net in model.stream_nets:
        torch.testing.assert_close(net.fc0.weight, image.fc0.weight, rtol=0, atol=0)


def test_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = _model(dropout=0.0).train()
    clip, y = torch.rand(8, 9, 1, 32, 32), torch.arange(8) % 5
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(clip), y)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for net in model.stream_nets
                   for p in net.fc.parameters())  # every stream learns
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


# ---- through the kit: train (phantom), export, parity, classify, stream -----------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(checkpoint, artifact folder)``: 1 tiny epoch on 12-frame phantom clips, exported to
    ONNX and ExecuTorch fp32 (cached). The stream model is `tdcnn` (per-frame 2-D CNN + temporal
    convolutions), which ExecuTorch runs; `c3d` streams would be refused there (3-D ops)."""
    from echoweave.train.engine.run import run_training
    from tests.helpers.edge_artifacts import exported_artifacts
    from tests.helpers.tiny import tiny_config

    model = {k: v for k, v in TINY.items() if k not in ("input_size", "num_classes")}
    cfg = tiny_config(tmp_path_factory.mktemp("multistream"), model={**model, "stream_model": "tdcnn"},
                      data={"phantom_frames": 12}, optim={"epochs": 1})
    ckpt = run_training(cfg, show_progress=False).checkpoint
    return Path(ckpt), exported_artifacts(ckpt, formats=("executorch", "onnx"), precisions=("fp32",))


@pytest.mark.slow
def test_export_and_parity_through_the_edge_adapters(exported):
    import json

    from tests.helpers.model_acceptance import manifest_of

    _, folder = exported
    manifest = manifest_of(folder)
    assert manifest["frames"] == 9 and manifest.get("frame_stride", 1) == 1 and manifest["methods"] == ["forward"]
    assert {(a["format"], a["precision"]) for a in manifest["artifacts"]} == {("executorch", "fp32"), ("onnx", "fp32")}
    rows = [r for r in json.loads((folder / "parity.json").read_text())["artifacts"] if r["ran"]]
    assert {r["runtime"] for r in rows} == {"onnxruntime", "executorch"}
    for r in rows:
        assert r["verdict"] == "met" and r["methods"]["forward"]["sqnr_db"] >= 40.0, r["id"]


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ("onnxruntime", "executorch"))
def test_classify_a_clip_through_the_edge_equals_the_eager_model(exported, runtime):
    import echoweave.edge as ew
    from echoweave.train.engine.checkpoint import load_model
    from tests.conftest import make_fan_clip

    ckpt, folder = exported
    model, _ = load_model(ckpt)
    clf = ew.load(folder, runtime=runtime, precision="fp32")
    frames = make_fan_clip(t=12, h=48, w=64, seed=3)[0]
    windows = clf.predict_windows(frames, sector=None)
    assert len(windows) == 12 - 9 + 1 and all(w.via == "forward" for w in windows)
    x = torch.from_numpy(clf.preprocess(frames, sector=None))  # (12, 1, 32, 32)
    with torch.no_grad():
        eager = torch.softmax(model.eval()(torch.stack([x[s : s + 9] for s in range(4)])), -1).numpy()
    np.testing.assert_allclose(np.stack([w.probabilities for w in windows]), eager, atol=1e-4)
    clip = clf.predict(frames, sector=None)
    np.testing.assert_allclose(clip.probabilities, eager.mean(0), atol=1e-4)
    stream = clf.stream(sector=None)
    streamed = [p for p in (stream.push(f) for f in frames) if p is not None]
    np.testing.assert_allclose(np.stack([p.probabilities for p in streamed]), eager, atol=1e-4)
    clf.close()
