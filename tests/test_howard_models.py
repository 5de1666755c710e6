"""Howard et al.'s time-distributed CNN (`tdcnn`) and two-stream network with Farneback optical
flow (`two_stream`): the head's pooling rule, the streaming split, the flow derivation (OpenCV,
identical in training and on the edge), the two-stream config checks, then both models trained
one tiny epoch and taken through export (every format, fp32 and int8), parity through the edge
adapters, streaming, `echoweave classify` and `echoweave bench`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from echoweave.edge.derived_inputs import DerivedInputError, derive  # noqa: E402
from echoweave.train.models import ModelConfig, build_model  # noqa: E402
from echoweave.train.models.howard import flow_spec, pool_plan, pooled_length  # noqa: E402
from tests.helpers.model_acceptance import (  # noqa: E402
    check_made_or_skipped,
    check_parity_rows,
    has_runtime,
    manifest_of,
    train_and_export,
)

torch.set_num_threads(1)
FORMATS = ("executorch", "onnx", "litert", "coreml")
RUNTIMES = ("onnxruntime", "executorch", "litert")
# Tiny sizes; two_stream: 2 chunks of 2 flow frames from a 5-frame window (the tiny phantom has 8).
TINY = {"tdcnn": {"name": "tdcnn", "tdcnn_channels": 16},
        "two_stream": {"name": "two_stream", "tdcnn_channels": 16, "frames": 5, "flow_pairs": 2, "flow_chunks": 2}}


def _model(name: str, **kw):
    cfg = {"backbone": "tiny", "width": 8, "feature_dim": 32, "input_size": 32, "num_classes": 5, **TINY[name], **kw}
    return build_model(ModelConfig(**cfg)).eval()


def _moving_window(t: int = 5, s: int = 32, step: int = 1) -> np.ndarray:
    """(T, 1, S, S) float32 in [0, 1]: a smooth blob pattern moving right ``step`` px per frame."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    frames = [0.5 + 0.4 * np.sin((xx - i * step) / 3.0) * np.cos(yy / 4.0) for i in range(t)]
    return np.stack(frames)[:, None].astype(np.float32)


# ---- tdcnn ---------------------------------------------------------------------------------
def test_pooling_rule_skips_a_pooling_that_would_leave_less_than_one_step():
    assert [pool_plan(t) for t in (1, 2, 3, 4, 5, 20)] == [
        (False, False), (True, False), (True, False), (True, True), (True, True), (True, True)]
    assert [pooled_length(t) for t in (1, 2, 3, 4, 5, 20, 41)] == [1, 1, 1, 1, 1, 5, 10]
    for frames in (1, 2, 4, 20):
        model = _model("tdcnn", frames=frames)
        pools = [m for m in model.temporal.layers if isinstance(m, torch.nn.MaxPool2d)]
        assert len(pools) == sum(pool_plan(frames))
        out = model.temporal(torch.rand(3, frames, model.feature_dim))
        assert out.shape == (3, 16)


def test_tdcnn_shapes_and_streaming_split():
    model = _model("tdcnn")
    assert model.methods == ("forward", "embed_frame", "classify_window") and model.streams_per_frame
    clip = torch.rand(2, 4, 1, 32, 32)
    with torch.no_grad():
        logits = model(clip)
        streamed = model.classify_window(torch.stack([model.embed_frame(clip[:, t]) for t in range(4)], dim=1))
    assert logits.shape == (2, 5)
    torch.testing.assert_close(streamed, logits, rtol=1e-5, atol=1e-5)  # batch 8 vs 2: float order
    # the seed's head: three separable convs of 256 kernels of size 3 (depthwise: no bias)
    paper = build_model(ModelConfig(name="tdcnn", backbone="tiny", frames=20, num_classes=14))
    convs = [m for m in paper.temporal.layers.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.groups > 1, c.out_channels) for c in convs] == [
        ((1, 3), True, 256), ((1, 1), False, 256), ((1, 3), True, 256), ((1, 1), False, 256),
        ((1, 3), True, 256), ((1, 1), False, 256)]


# ---- optical flow --------------------------------------------------------------------------
def test_flow_derivation_is_opencv_farneback():
    spec = flow_spec(ModelConfig(input_size=32))
    window = _moving_window()
    flow = derive(spec, window)
    assert flow.shape == (4, 2, 32, 32) and flow.dtype == np.float32
    u8 = np.clip(np.rint(window[:, 0] * 255), 0, 255).astype(np.uint8)
    for t in range(4):
        direct = cv2.calcOpticalFlowFarneback(u8[t], u8[t + 1], None, 0.5, 3, 15, 3, 5, 1.2, 0)  # (S, S, 2)
        np.testing.assert_array_equal(flow[t], np.clip(direct.transpose(2, 0, 1) / spec["bound"], -1, 1))
    # a rightward motion of 1 px/frame: x flow ~ +1 px (bound 2 px -> +0.5), y flow ~ 0
    centre = flow[:, :, 8:24, 8:24]
    assert 0.3 < float(np.median(centre[:, 0])) < 0.7 and abs(float(np.median(centre[:, 1]))) < 0.1


def test_training_derives_exactly_what_the_edge_computes():
    model = _model("two_stream")
    (entry,) = [i for i in model.input_spec()["methods"]["forward"]["inputs"] if "derive" in i]
    assert entry["name"] == "flow" and entry["shape"] == [1, 4, 2, 32, 32] and entry["derive"]["kind"] == "farneback_flow"
    clip = torch.from_numpy(np.stack([_moving_window(), _moving_window(step=2)]))  # (2, 5, 1, 32, 32)
    (flow,) = model.derive(clip)
    edge = np.stack([derive(entry["derive"], w) for w in clip.numpy()])
    np.testing.assert_array_equal(flow.numpy(), edge)
    with torch.no_grad():  # forward(clip) computes the same flow the exported graph is given
        torch.testing.assert_close(model(clip), model(clip, torch.from_numpy(edge)), rtol=0, atol=0)


def test_flow_of_a_single_frame_names_the_source():
    spec = flow_spec(ModelConfig(input_size=8))
    with pytest.raises(DerivedInputError, match="loop.dcm: a farneback_flow input needs at least 2 frames, got 1"):
        derive(spec, np.zeros((1, 1, 8, 8), np.float32), "loop.dcm")


# ---- two_stream ----------------------------------------------------------------------------
def test_two_stream_config_validation():
    with pytest.raises(ValueError, match=r"frames=5 holds 4 optical-flow frames, but flow_chunks=3 x flow_pairs=2 "
                                         r"needs 6: set model.frames >= 7"):
        _model("two_stream", flow_chunks=3)
    with pytest.raises(ValueError, match="needs 40: set model.frames >= 41"):
        build_model(ModelConfig(name="two_stream", backbone="tiny", frames=20, flow_pairs=10, flow_chunks=4))
    with pytest.raises(ValueError, match="flow_pairs must be >= 1 or None"):
        ModelConfig(flow_pairs=0)
    with pytest.raises(ValueError, match=r"spatial_frames must be None or in \[1, frames=5\]"):
        ModelConfig(frames=5, spatial_frames=6)
    with pytest.raises(ValueError, match="contrast must be 'none'"):
        _model("two_stream", contrast="window_mean")
    # defaults fit any window: one chunk of every flow frame
    default = build_model(ModelConfig(name="two_stream", backbone="tiny", input_size=32))
    assert (default.flow_pairs, default.flow_chunks, default.spatial_frames) == (3, 1, 4)
    paper = build_model(ModelConfig(name="two_stream", backbone="tiny", frames=41, flow_pairs=10, flow_chunks=4,
                                    spatial_frames=20, input_size=32))
    assert paper.flow_cnn.stem[0].in_channels == 20 and paper.spatial_head.frames == 20


def test_two_stream_streams_see_the_declared_frames_and_chunks():
    model = _model("two_stream", frames=7, spatial_frames=3)  # 6 flow frames, 2 x 2 used
    clip = torch.rand(1, 7, 1, 32, 32)
    flow = torch.rand(1, 6, 2, 32, 32)
    seen = []
    hook = model.flow_cnn.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        ref = model(clip, flow)
        later = clip.clone()
        later[:, 3:] = 0.0  # frames the spatial stream does not see
        other_flow = flow.clone()
        other_flow[:, 4:] = 0.0  # flow frames after the chunks
        assert torch.equal(model(later, other_flow), ref)
    hook.remove()
    # chunk c holds flow frames 2c, 2c+1 as channels x0 y0 x1 y1
    expected = torch.cat([flow[:, 0:2].reshape(1, 4, 32, 32), flow[:, 2:4].reshape(1, 4, 32, 32)])
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=0)
    assert torch.equal(seen[0][1, 1], flow[0, 2, 1])


def test_two_stream_spatial_stream_starts_from_an_image_model():
    image = build_model(ModelConfig(name="image", backbone="tiny", width=8, feature_dim=32, input_size=32,
                                    num_classes=5)).eval()
    model = _model("two_stream")
    copied = model.init_from_image_state(image.state_dict())
    assert "fc0.weight" in copied and all(k.startswith(("backbone.", "fc0.")) for k in copied)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.act0(model.fc0(model.backbone(model.normalize(x)))), image.embed_frame(x),
                                   rtol=0, atol=0)
    with pytest.raises(ValueError, match="does not fit the spatial stream"):
        _model("two_stream", width=4).init_from_image_state(image.state_dict())


# ---- acceptance: trained, exported, run on the edge ----------------------------------------
@pytest.fixture(scope="module", params=("tdcnn", "two_stream"))
def exported(request, tmp_path_factory):
    """``(model name, checkpoint, artifact folder)``: 1 tiny epoch, every format in fp32 and int8
    (cached on disk like the other export tests)."""
    ckpt, folder = train_and_export(tmp_path_factory.mktemp(request.param), TINY[request.param], FORMATS)
    return request.param, ckpt, folder


def test_export_makes_or_skips_every_format_with_the_models_reason(exported):
    name, _, folder = exported
    manifest = manifest_of(folder)
    made, _ = check_made_or_skipped(folder, FORMATS)
    assert {("onnx", "fp32"), ("onnx", "int8"), ("litert", "fp32"), ("executorch", "fp32")} <= made
    for art in manifest["artifacts"]:
        if art["format"] == "executorch":  # every node of every method inside XNNPACK
            assert art["extra"]["delegated_share_min"] == 1.0, art["extra"]["delegation"]
    if name == "two_stream":
        model = build_model(ModelConfig.from_dict(manifest["model"]))
        (flow,) = [i for i in manifest["input_spec"]["methods"]["forward"]["inputs"] if "derive" in i]
        assert flow["derive"] == flow_spec(model.cfg) and flow["shape"] == [1, 4, 2, 32, 32]


def test_parity_runs_through_the_edge_adapters(exported):
    for row in check_parity_rows(exported[2]):
        if row["precision"] == "fp32":  # every method, the streaming split included
            assert all(m["sqnr_db"] >= 40.0 for m in row["methods"].values()), row["id"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stream_equals_the_window_model(exported, runtime):
    import echoweave.edge as ew
    from echoweave.edge.sector import estimate_sector
    from tests.conftest import make_fan_clip

    name, _, folder = exported
    if not has_runtime(folder, runtime):
        pytest.skip(f"no {runtime} artifact (the manifest says why)")
    frames = make_fan_clip(t=10, h=48, w=64, seed=5)[0]
    clf = ew.load(folder, runtime=runtime, precision="fp32")
    sector = estimate_sector(frames)
    stream = clf.stream(sector=sector)
    streamed = [p for p in (stream.push(f) for f in frames) if p is not None]
    reference = clf.predict_windows(frames, sector=sector, via="forward")
    assert len(streamed) == len(reference) == len(frames) - clf.span + 1
    assert {s.via for s in streamed} == ({"features"} if name == "tdcnn" else {"forward"})
    for s, r in zip(streamed, reference):
        np.testing.assert_allclose(s.probabilities, r.probabilities, atol=1e-4)
    clf.close()


def test_stream_computes_one_flow_pair_per_frame(exported, monkeypatch):
    """The stream keeps each frame's flow pair: after the first window, one OpenCV pair per new
    frame, and every prediction equals the window model on the buffered frames, also after the
    "auto" sector is estimated and the buffered frames are re-embedded."""
    import echoweave.edge as ew
    import echoweave.edge.classifier as classifier_module
    from echoweave.edge.classifier import softmax
    from tests.conftest import make_fan_clip

    name, _, folder = exported
    if name != "two_stream":
        pytest.skip("tdcnn has no derived input")
    clf = ew.load(folder, runtime="onnxruntime", precision="fp32")
    assert clf.derived_pairwise and not clf.per_frame
    calls = []
    real = classifier_module.derive
    monkeypatch.setattr(classifier_module, "derive", lambda spec, w, source="window": calls.append(len(w)) or real(spec, w, source))
    frames = make_fan_clip(t=24, h=48, w=64, seed=3)[0]
    stream = clf.stream(sector="auto", sector_frames=16)
    for i, f in enumerate(frames):
        before = len(calls)
        pred = stream.push(f)
        if i not in (0, 15):  # frame 16 re-embeds the buffer after the sector estimate
            assert calls[before:] == ([2] if i >= clf.frame_stride else []), i
        if pred is not None:
            window = np.stack(list(stream._features)[:: stream.stride])
            calls.clear()
            np.testing.assert_allclose(pred.probabilities, softmax(clf.forward_window(window)), atol=1e-6)
            assert calls == [clf.frames] * len(clf.derived_inputs)  # the reference derives the whole window
            calls.clear()
    assert stream.sector_updates == 1
    clf.close()


def test_classify_cli(exported, tmp_path, capsys):
    from echoweave.cli import main
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom
    from tests.conftest import make_fan_clip

    name, _, folder = exported
    span = manifest_of(folder)["frames"]
    path = tmp_path / "loop.dcm"
    write_dicom(Clip(frames=make_fan_clip(t=8, h=48, w=64, seed=3)[0], fps=25.0, patient_id="P1", source="x"), path)
    for runtime in [r for r in RUNTIMES if has_runtime(folder, r)]:
        main(["classify", str(path), "--model", str(folder), "--runtime", runtime, "--json"])
        (result,) = json.loads(capsys.readouterr().out)["results"]
        assert result["ok"] and result["prediction"]["windows"] == 8 - span + 1, (runtime, result)


def test_the_edge_refuses_the_flow_of_one_frame_naming_the_file(exported, tmp_path, capsys):
    import echoweave.edge as ew

    name, _, folder = exported
    if name != "two_stream":
        pytest.skip("no derived input")
    clf = ew.load(folder, runtime="onnxruntime", precision="fp32")
    with pytest.raises(DerivedInputError, match="loop.dcm: a farneback_flow input needs at least 2 frames, got 1"):
        clf.window_inputs(np.zeros((1, 1, 32, 32), np.float32), "loop.dcm")  # the flow of a single frame
    # a one-frame clip is refused before padding (its flow would be between copies of one frame) ...
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom
    from tests.conftest import make_fan_clip

    one = Clip(frames=make_fan_clip(t=1, h=48, w=64, seed=3)[0], fps=25.0, patient_id="P1", source="still.dcm")
    with pytest.raises(DerivedInputError, match=r"still.dcm: 1 frame; this model's 'flow' input \(farneback_flow\) "
                                                r"is computed between frames and needs at least 2"):
        clf.predict(one)
    # ... and `echoweave classify` reports it for that file and goes on with the others
    from echoweave.cli import main

    (tmp_path / "scans").mkdir()
    write_dicom(one, tmp_path / "scans" / "still.dcm")
    write_dicom(Clip(frames=make_fan_clip(t=3, h=48, w=64, seed=3)[0], fps=25.0, patient_id="P1", source="x"),
                tmp_path / "scans" / "short.dcm")
    with pytest.raises(SystemExit) as exit_info:  # 1 of 2 clips failed
        main(["classify", str(tmp_path / "scans"), "--model", str(folder), "--runtime", "onnxruntime", "--json"])
    results = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert exit_info.value.code == 1 and not results["still.dcm"]["ok"]
    assert "needs at least 2" in json.dumps(results["still.dcm"])
    assert results["short.dcm"]["ok"] and "padded by repeating the last frame" in json.dumps(results["short.dcm"])
    clf.close()


def test_bench_notes_the_flow_in_the_stream_cost(exported, tmp_path):
    from echoweave.cli import main

    name, _, folder = exported
    main(["bench", str(folder), "--runtimes", "onnxruntime", "--threads", "1", "--mode", "window,stream",
          "--precisions", "fp32", "--seconds", "0.2", "--no-gemm", "--no-memory", "--warmup", "1", "--no-peers",
          "--out", str(tmp_path / "b")])
    cells = {c["mode"]: c for c in json.loads((tmp_path / "b" / "perf.json").read_text())["cells"]}
    assert cells["window"]["latency_ms"]["median"] > 0 and cells["stream"]["latency_ms"]["median"] > 0
    flow_note = ("each streamed frame includes computing its derived inputs (farneback_flow): one frame pair per "
                 "frame, the window's other pairs kept from earlier frames")
    assert (flow_note in cells["stream"]["notes"]) == (name == "two_stream")
    window_note = "each window includes computing the derived inputs of the window (farneback_flow)"
    assert (window_note in cells["window"]["notes"]) == (name == "two_stream")
