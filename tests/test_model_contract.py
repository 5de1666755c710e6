"""The model contract: every model declares its methods, inputs and aggregation, and the kit
iterates what it declares. A window-only 3-D CNN (`c3d`, no streaming split) and a model with a
second input derived on the device (`diff_two_stream`, frame differences) go through export,
parity (through `echoweave.edge`), `echoweave classify`, streaming and `echoweave bench` with the
same assertions as the per-frame models."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from echoweave.edge.derived_inputs import DerivedInputError, derive  # noqa: E402
from echoweave.edge.manifest import AGGREGATIONS, STREAMING_METHODS  # noqa: E402
from echoweave.train.models import ModelConfig, build_model, list_models  # noqa: E402
from tests.helpers.model_acceptance import (  # noqa: E402
    check_made_or_skipped,
    check_parity_rows,
    has_runtime,
    manifest_of,
    train_and_export,
)

REPO = Path(__file__).resolve().parents[1]
WINDOW_MODELS = ("c3d", "diff_two_stream")
RUNTIMES = ("onnxruntime", "executorch", "litert")


def _tiny(name: str):
    return build_model(ModelConfig(name=name, backbone="tiny", width=8, feature_dim=32, gru_hidden=16,
                                   gru_layers=1, input_size=32, num_classes=5)).eval()


@pytest.mark.parametrize("name", list_models())
def test_every_model_declares_its_contract(name):
    model = _tiny(name)
    methods = model.methods
    assert methods[0] == "forward"
    assert len(set(STREAMING_METHODS) & set(methods)) in (0, 2)  # the streaming pair, both or neither
    assert model.streams_per_frame == ("embed_frame" in methods)
    assert model.aggregation in AGGREGATIONS
    spec = model.input_spec()
    assert list(spec["methods"]) == list(methods) and spec["aggregation"] == model.aggregation
    with torch.no_grad():
        for method, module in model.method_modules().items():
            example = model.example_inputs(method)
            declared = spec["methods"][method]["inputs"]
            assert [list(x.shape) for x in example] == [i["shape"] for i in declared]
            out = module.eval()(*example)
            assert list(out.shape) == spec["methods"][method]["outputs"][0]["shape"]
        clip = model.example_inputs("forward")[0]
        # forward(clip) derives what it is not given exactly as the exported graph receives it
        torch.testing.assert_close(model(clip), model(*model.forward_inputs(clip)), rtol=0, atol=0)


def test_derived_input_is_the_edge_computation():
    model = _tiny("diff_two_stream")
    (entry,) = [i for i in model.input_spec()["methods"]["forward"]["inputs"] if "derive" in i]
    assert entry["derive"] == {"kind": "frame_difference", "from": "clip"} and entry["shape"] == [1, 3, 1, 32, 32]
    clip = torch.rand(2, 4, 1, 32, 32)
    (motion,) = model.derive(clip)
    edge = np.stack([derive(entry["derive"], w) for w in clip.numpy()])
    np.testing.assert_array_equal(motion.numpy(), edge)
    np.testing.assert_array_equal(edge, (clip[:, 1:] - clip[:, :-1]).numpy())
    with pytest.raises(DerivedInputError, match="loop.dcm: a frame_difference input needs at least 2 frames, got 1"):
        derive(entry["derive"], np.zeros((1, 1, 8, 8), np.float32), "loop.dcm")
    with pytest.raises(DerivedInputError, match="unknown derived input kind 'optical_flow_v9'"):
        derive({"kind": "optical_flow_v9", "from": "clip"}, np.zeros((4, 1, 8, 8), np.float32))


def test_stage_needs_are_capabilities_not_names(tmp_path):
    from echoweave.edge.errors import EchoweaveError
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    with pytest.raises(EchoweaveError, match="model 'c3d' declares \\['forward'\\]"):
        run_training(tiny_config(tmp_path / "a", model={"name": "c3d"}, freeze_backbone=True), show_progress=False)
    with pytest.raises(EchoweaveError, match="no single-frame forward"):
        run_training(tiny_config(tmp_path / "b", stage="image", model={"name": "c3d"}), show_progress=False)


def test_no_model_name_branches_outside_the_model_files():
    """Export, edge, benchmarks, the CLI and the training engine iterate what a model declares;
    only ``train/models/<model>.py`` knows a model by its name."""
    names = "|".join(re.escape(n) for n in list_models())
    patterns = [re.compile(rf"""name["']?\]?\s*(==|!=)\s*["']({names})["']"""),
                re.compile(rf"""["']({names})["']\s*(==|!=)\s*\S*name"""),
                re.compile(rf"""name["']?\]?\s+(not\s+)?in\s+[(\[{{]\s*["']({names})["']""")]
    hits = []
    for folder in ("edge", "export", "benchmarks", "kit", "train"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.parent == REPO / "train" / "models":
                continue
            for no, line in enumerate(path.read_text().splitlines(), 1):
                if any(p.search(line) for p in patterns):
                    hits.append(f"{path.relative_to(REPO)}:{no}: {line.strip()}")
    assert not hits, "model-name branches:\n" + "\n".join(hits)


# ---- acceptance: window-only and two-input models through the whole kit ---------------------
@pytest.fixture(scope="module", params=WINDOW_MODELS)
def exported(request, tmp_path_factory):
    """``(model name, checkpoint, artifact folder)``: 1 tiny epoch, exported to every format in
    fp32 and int8 (cached on disk like the other export tests)."""
    torch.set_num_threads(1)
    ckpt, folder = train_and_export(tmp_path_factory.mktemp(request.param), {"name": request.param})
    return request.param, ckpt, folder


def test_manifest_records_what_the_model_declares(exported):
    name, _, folder = exported
    manifest = manifest_of(folder)
    model = build_model(ModelConfig.from_dict(manifest["model"]))
    assert manifest["methods"] == ["forward"] == list(model.methods)
    assert manifest["aggregation"] == model.aggregation == "window"
    assert manifest["input_spec"]["methods"] == json.loads(json.dumps(model.input_spec()["methods"]))
    derived = [i for i in manifest["input_spec"]["methods"]["forward"]["inputs"] if "derive" in i]
    assert [i["name"] for i in derived] == [i["name"] for i in model.derived_inputs()]
    for art in manifest["artifacts"]:
        assert set(art["methods"]) == {"forward"}
    made, skipped = check_made_or_skipped(folder)
    assert {("onnx", "fp32"), ("onnx", "int8"), ("litert", "fp32"), ("coreml", "fp32")} <= made
    if name == "c3d":  # the acceptance case for a runtime lacking an operator: named, with the alternative
        assert "3-D" in skipped[("executorch", "fp32")] and "ONNX Runtime or LiteRT" in skipped[("executorch", "fp32")]
    else:
        assert ("executorch", "fp32") in made and ("executorch", "int8") in made


def test_parity_runs_through_the_edge_adapters(exported):
    check_parity_rows(exported[2])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stream_equals_the_window_model_and_says_how(exported, runtime):
    import echoweave.edge as ew
    from tests.conftest import make_fan_clip

    _, _, folder = exported
    if not has_runtime(folder, runtime):
        pytest.skip(f"no {runtime} artifact (the manifest says why)")
    frames = make_fan_clip(t=10, h=48, w=64, seed=5)[0]
    clf = ew.load(folder, runtime=runtime, precision="fp32")
    assert not clf.per_frame and clf.describe()["streaming"] == "window_recompute"
    windows = clf.predict_windows(frames, via="features")  # falls back to forward: no streaming split
    assert {w.via for w in windows} == {"forward"}
    from echoweave.edge.sector import estimate_sector

    stream = clf.stream(sector=estimate_sector(frames))
    streamed = [p for p in (stream.push(f) for f in frames) if p is not None]
    reference = clf.predict_windows(frames, sector=estimate_sector(frames), via="forward")
    assert len(streamed) == len(reference) == len(frames) - clf.span + 1
    for s, r in zip(streamed, reference):
        assert s.via == "forward"
        np.testing.assert_allclose(s.probabilities, r.probabilities, atol=1e-5)
    clf.close()


def test_classify_cli_names_the_computation(exported, tmp_path, capsys):
    from echoweave.cli import main
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom
    from tests.conftest import make_fan_clip

    _, _, folder = exported
    path = tmp_path / "loop.dcm"
    write_dicom(Clip(frames=make_fan_clip(t=8, h=48, w=64, seed=3)[0], fps=25.0, patient_id="P1", source="x"), path)
    for runtime in [r for r in RUNTIMES if has_runtime(folder, r)]:
        main(["classify", str(path), "--model", str(folder), "--runtime", runtime, "--json"])
        doc = json.loads(capsys.readouterr().out)
        assert doc["model"]["runtime"] == runtime and doc["model"]["streaming"] == "window_recompute"
        (result,) = doc["results"]
        assert result["ok"] and result["prediction"]["via"] == "forward" and result["prediction"]["windows"] == 5
        main(["classify", str(path), "--model", str(folder), "--runtime", runtime])
        assert "whole-window forward (no streaming split)" in capsys.readouterr().out


def test_bench_times_window_and_stream_cells(exported, tmp_path):
    from echoweave.cli import main

    _, _, folder = exported
    main(["bench", str(folder), "--runtimes", "onnxruntime", "--threads", "1", "--mode", "window,stream",
          "--precisions", "fp32", "--seconds", "0.2", "--no-gemm", "--no-memory", "--warmup", "1", "--no-peers",
          "--out", str(tmp_path / "b")])
    perf = json.loads((tmp_path / "b" / "perf.json").read_text())
    cells = {(c["runtime"], c["mode"]): c for c in perf["cells"]}
    assert ("onnxruntime", "window") in cells and ("onnxruntime", "stream") in cells
    assert all(c["latency_ms"]["median"] > 0 for c in cells.values())
    # a streamed frame of a window-only model costs a whole window: its MACs and notes say so
    macs = perf["macs"]
    assert "embed_frame" not in macs and macs["per_frame"] == macs["forward"] > 0
    assert cells[("onnxruntime", "stream")]["macs_per_call"] == macs["forward"]
    assert any("recomputes forward on the whole window" in n for n in cells[("onnxruntime", "stream")]["notes"])
