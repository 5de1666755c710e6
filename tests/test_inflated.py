"""`i3d` (train/models/inflated.py): a 2-D backbone inflated to 3-D. The inflation keeps the 2-D
network's activations on a clip that is constant in time (every registered backbone), starts
from a stage-1 image model, trains, and goes through export (every format, fp32 and int8),
parity, streaming and bench through `echoweave.edge`, with what a toolchain cannot run skipped
with the model's measured reason."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from echoweave.train.models import ModelConfig, build_model, init_from_image_model, list_backbones  # noqa: E402
from tests.helpers.model_acceptance import check_made_or_skipped, check_parity_rows, manifest_of, train_and_export  # noqa: E402
from echoweave.train.models.backbones import build_backbone  # noqa: E402
from echoweave.train.models.inflated import (  # noqa: E402
    I3D,
    inflate_2d_to_3d,
    inflate_from_image_model,
    inflate_state_dict,
)

torch.set_num_threads(1)
FORMATS = ("executorch", "onnx", "litert", "coreml")
PRECISIONS = ("fp32", "int8")


def _randomize_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial batch-norm statistics and affine, so copying them is tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) - 0.5)
    return net.eval()


def _constant_clip(x: torch.Tensor, t: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, T, H, W)``, the same frame T times."""
    return x.unsqueeze(2).expand(-1, -1, t, -1, -1).contiguous()


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    scale = max(float(b.abs().max()), 1e-3)
    assert float((a - b).abs().max()) <= rel * scale, (float((a - b).abs().max()), scale)


# ---- the inflation ---------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", list_backbones())
def test_constant_clip_gives_the_2d_features(backbone):
    torch.manual_seed(0)
    net2d = _randomize_bn(build_backbone(backbone, 1, 8)[0])
    net3d = inflate_2d_to_3d(net2d).eval()
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for m in net3d.modules())
    assert not any(isinstance(m, nn.Conv3d) for m in net2d.modules())  # the input is left untouched
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        _close(net3d(_constant_clip(x, 4)), net2d(x))


@pytest.mark.parametrize("backbone", ["tiny", "resnet18"])
def test_every_layer_and_every_frame_keeps_the_2d_activation(backbone):
    """Replicate temporal padding: every conv's output at every time step is the 2-D one."""
    net2d = _randomize_bn(build_backbone(backbone, 1, 8)[0])
    net3d = inflate_2d_to_3d(net2d).eval()
    seen2d, seen3d = {}, {}
    for name, m in net2d.named_modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda mod, i, o, name=name: seen2d.__setitem__(name, o))
    for name, m in net3d.named_modules():
        if isinstance(m, nn.Conv3d):
            m.register_forward_hook(lambda mod, i, o, name=name: seen3d.__setitem__(name, o))
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        net2d(x), net3d(_constant_clip(x, 5))
    assert set(seen2d) == set(seen3d) and len(seen2d) > 4
    for name, out2d in seen2d.items():
        out3d = seen3d[name]  # (B, C, T, H, W)
        assert out3d.shape[2] == 5  # no temporal striding or pooling
        for t in range(5):
            _close(out3d[:, :, t], out2d)


def test_zero_time_padding_is_exact_on_interior_frames_only():
    conv = nn.Conv2d(1, 4, 3, padding=1)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        out = inflate_2d_to_3d(conv, time_padding="zeros")(_constant_clip(x, 4))
        ref = conv(x)
    for t in (1, 2):
        _close(out[:, :, t], ref)
    assert float((out[:, :, 0] - ref).abs().max()) > 1e-3  # an edge frame sees 2/3 of the kernel


def test_inflation_rules_and_shapes():
    net2d = build_backbone("resnet18", 1)[0]
    net3d = inflate_2d_to_3d(net2d, time_kernel=3)
    assert net3d.conv1.weight.shape == (64, 1, 3, 7, 7) and net3d.conv1.stride == (1, 2, 2)
    assert net3d.layer2[0].downsample[0].weight.shape == (128, 64, 1, 1, 1)  # pointwise stays pointwise in time
    torch.testing.assert_close(net3d.conv1.weight.sum(2), net2d.conv1.weight)  # repeated / kt
    torch.testing.assert_close(net3d.bn1.running_var, net2d.bn1.running_var)
    mob = inflate_2d_to_3d(build_backbone("mobilenet_v3_large", 1)[0])
    assert any(isinstance(m, nn.Conv3d) and m.groups > 1 for m in mob.modules())  # depthwise stays depthwise
    with torch.no_grad():
        out = inflate_2d_to_3d(build_backbone("resnet18", 1)[0], time_kernel=1).eval()(torch.rand(2, 1, 3, 32, 32))
    assert out.shape == (2, 512)
    with pytest.raises(ValueError, match="time_kernel must be odd"):
        inflate_2d_to_3d(net2d, time_kernel=2)
    with pytest.raises(ValueError, match="time_padding must be one of"):
        inflate_2d_to_3d(net2d, time_padding="reflect")
    with pytest.raises(ValueError, match="no 3-D rule for InstanceNorm2d"):
        inflate_2d_to_3d(nn.Sequential(nn.Conv2d(1, 2, 3), nn.InstanceNorm2d(2)))


def test_inflated_start_is_blind_to_the_direction_of_time():
    """docs/motion.md "i3d and the motion-only pairs": an I3D fresh from the inflation (of a stage-1
    model or, as `I3D.__init__` does, of a random 2-D one) has every kernel symmetric in time, so with
    symmetric padding its logits are exactly those of the reversed window; a C3D's random 3-D kernels
    are not."""
    torch.manual_seed(0)
    x = torch.rand(2, 4, 1, 32, 32)
    for padding in ("replicate", "zeros"):
        model = I3D(ModelConfig(name="i3d", backbone="tiny", width=4, frames=4, num_classes=3, input_size=32))
        model.backbone = inflate_2d_to_3d(build_backbone("tiny", 1, 4)[0], time_padding=padding)
        with torch.no_grad():
            _close(model.eval()(torch.flip(x, dims=[1])), model(x))
    c3d = build_model(ModelConfig(name="c3d", backbone="tiny", width=4, frames=4, num_classes=3, input_size=32)).eval()
    with torch.no_grad():
        assert float((c3d(torch.flip(x, dims=[1])) - c3d(x)).abs().max()) > 1e-4


def test_i3d_model_shapes_and_declarations():
    cfg = ModelConfig(name="i3d", backbone="tiny", width=8, frames=4, input_size=32, num_classes=5)
    model = build_model(cfg).eval()
    assert isinstance(model, I3D) and model.methods == ("forward",) and model.aggregation == "window"
    clip = torch.rand(3, 4, 1, 32, 32)
    with torch.no_grad():
        assert model(clip).shape == (3, 5)
        assert model.backbone(model.normalize(clip).transpose(1, 2)).shape == (3, 64)
    with pytest.raises(ValueError, match="expects a clip"):
        model(torch.rand(1, 3, 1, 32, 32))
    with pytest.raises(ValueError, match="contrast"):
        build_model(cfg.replace(contrast="window_mean"))
    limits = model.export_limits()
    assert set(limits) == {("executorch", "*")} and "0x12" in limits[("executorch", "*")]
    mobile = build_model(cfg.replace(backbone="mobilenet_v3_large"))
    assert ("litert", "*") in mobile.export_limits() and "Conv3D" in mobile.export_limits()[("litert", "*")]


def test_starts_from_the_image_model():
    """The stage-1 image model's backbone, inflated: a constant clip gives its features."""
    cfg = ModelConfig(name="image", backbone="tiny", width=8, feature_dim=32, input_size=32, num_classes=5)
    image = build_model(cfg)
    _randomize_bn(image.backbone)
    image.eval()
    i3d = build_model(cfg.replace(name="i3d"))
    fc_before = i3d.fc.weight.clone()
    copied = init_from_image_model(i3d, image.state_dict())  # the registry's stage-2 entry point
    assert copied and all(k.startswith("backbone.") for k in copied)
    torch.testing.assert_close(i3d.fc.weight, fc_before, rtol=0, atol=0)  # the head keeps its init
    i3d.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        _close(i3d.backbone(_constant_clip(image.normalize(x), 4)), image.backbone(image.normalize(x)))
    with pytest.raises(ValueError, match="backbone 'tiny'"):
        inflate_from_image_model(i3d, build_model(cfg.replace(backbone="resnet18")).state_dict())
    with pytest.raises(ValueError, match="another backbone or width"):
        inflate_state_dict({"w": torch.zeros(4, 1, 3, 3)}, {"w": torch.zeros(4, 2, 3, 3, 3)})


def test_i3d_trains_and_init_from_inflates_the_stage1_run(tmp_path):
    from echoweave.train.engine.checkpoint import load_checkpoint
    from echoweave.train.engine.run import build_run_model, run_training
    from tests.helpers.edge_artifacts import tiny_image_checkpoint
    from tests.helpers.tiny import tiny_config

    stage1 = tiny_image_checkpoint(tmp_path / "stage1")
    cfg = tiny_config(tmp_path / "i3d", model={"name": "i3d"}, init_from=str(stage1), optim={"epochs": 1})
    state, meta, _ = load_checkpoint(stage1)
    model = build_run_model(cfg, meta["class_names"])
    w2d = state["backbone.stem.0.weight"]
    torch.testing.assert_close(model.backbone.stem[0].weight, w2d.unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)
    result = run_training(cfg, show_progress=False)
    assert Path(result.checkpoint).is_dir()
    assert not torch.equal(result.model.backbone.stem[0].weight.cpu(), model.backbone.stem[0].weight)  # it trained


# ---- acceptance: export, parity, streaming, bench ----------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(checkpoint, artifact folder)``: 1 tiny epoch, exported to every format in fp32 and int8
    (cached on disk like the other export tests)."""
    return train_and_export(tmp_path_factory.mktemp("i3d"), {"name": "i3d"}, FORMATS, PRECISIONS)


def test_export_makes_what_runs_and_skips_the_rest_with_the_models_reason(exported):
    _, folder = exported
    assert manifest_of(folder)["methods"] == ["forward"] and manifest_of(folder)["aggregation"] == "window"
    made, skipped = check_made_or_skipped(folder, FORMATS, PRECISIONS)
    # measured: ONNX Runtime and LiteRT run the tiny i3d in fp32 and int8, Core ML converts it
    assert {("onnx", "fp32"), ("onnx", "int8"), ("litert", "fp32"), ("litert", "int8"),
            ("coreml", "fp32"), ("coreml", "int8")} <= made
    assert set(skipped) == {("executorch", "fp32"), ("executorch", "int8")}
    assert "ONNX Runtime or LiteRT" in skipped[("executorch", "fp32")]


def test_parity_rows_through_the_edge(exported):
    ran = check_parity_rows(exported[1])
    assert {r["runtime"] for r in ran} == {"onnxruntime", "litert"} and {r["precision"] for r in ran} == {"fp32", "int8"}


@pytest.mark.parametrize("runtime", ["onnxruntime", "litert", "executorch"])
def test_stream_equals_the_window_model(exported, runtime):
    import echoweave.edge as ew
    from echoweave.edge.runtime.base import RUNTIMES
    from echoweave.edge.sector import estimate_sector
    from tests.conftest import make_fan_clip

    _, folder = exported
    manifest = manifest_of(folder)
    if not any(a["format"] == RUNTIMES[runtime].format for a in manifest["artifacts"]):
        reasons = [s["reason"] for s in manifest["skipped"] if s["format"] == RUNTIMES[runtime].format]
        assert reasons and all(r.startswith("i3d: ") for r in reasons)
        pytest.skip(f"no {runtime} artifact: {reasons[0]}")
    frames = make_fan_clip(t=10, h=48, w=64, seed=5)[0]
    sector = estimate_sector(frames)
    for precision in PRECISIONS:
        clf = ew.load(folder, runtime=runtime, precision=precision)
        assert not clf.per_frame and clf.describe()["streaming"] == "window_recompute"
        stream = clf.stream(sector=sector)
        streamed = [p for p in (stream.push(f) for f in frames) if p is not None]
        reference = clf.predict_windows(frames, sector=sector, via="forward")
        assert len(streamed) == len(reference) == len(frames) - clf.span + 1
        for s, r in zip(streamed, reference):
            assert s.via == "forward"
            np.testing.assert_allclose(s.probabilities, r.probabilities, atol=1e-5)
        clf.close()


def test_bench_times_window_and_stream(exported, tmp_path):
    from echoweave.cli import main

    _, folder = exported
    main(["bench", str(folder), "--runtimes", "onnxruntime,litert", "--threads", "1", "--mode", "window,stream",
          "--precisions", "fp32", "--seconds", "0.2", "--no-gemm", "--no-memory", "--warmup", "1", "--no-peers",
          "--out", str(tmp_path / "b")])
    perf = json.loads((tmp_path / "b" / "perf.json").read_text())
    cells = {(c["runtime"], c["mode"]): c for c in perf["cells"]}
    assert set(cells) >= {(r, m) for r in ("onnxruntime", "litert") for m in ("window", "stream")}
    assert all(c["latency_ms"]["median"] > 0 for c in cells.values())
    assert perf["macs"]["per_frame"] == perf["macs"]["forward"] > 0
