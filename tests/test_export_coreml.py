"""Core ML converter: multifunction .mlpackage (forward default, embed_frame, classify_window),
fp16 and 8-bit-weight variants, metadata, MIL op types, the reference npz and the Mac check
script. Prediction needs macOS, so on Linux the package structure is what is checked.

One module fixture converts the trained tiny checkpoint once (fp16 ~30-50 s here; the int8
variant reuses the fp16 programs and only quantizes weights).
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from echoweave.edge.manifest import METHODS

pytest.importorskip("coremltools")


def make_context(checkpoint, out):
    """An `ExportContext` of a checkpoint as the pipeline builds it."""
    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.export import pipeline as P
    from echoweave.export.calibration import calibration_set
    from echoweave.export.formats import ExportContext

    model, meta, folder = P.load_checkpoint_model(checkpoint)
    spec = PreprocessSpec(**meta["preprocessing"])
    calib = calibration_set(P.load_dataset(meta, folder), meta, spec, model.frames, calib_clips=8)
    return ExportContext(model=model, model_id="tfw_tiny", out_dir=out, calib_windows=calib.windows,
                         calib_frames=calib.windows.reshape(-1, *calib.windows.shape[2:]),
                         calib_features=P.eager_features(model, calib.windows),
                         example_inputs={m: model.example_inputs(m) for m in model.methods},
                         class_names=list(meta["class_names"]), preprocessing=dict(meta["preprocessing"]),
                         meta=meta)


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    from echoweave.export.coreml import describe_mlpackage, export_coreml

    torch.set_num_threads(2)
    ctx = make_context(tiny_checkpoint, tmp_path_factory.mktemp("coreml"))
    records = {p: export_coreml(ctx, p) for p in ("fp16", "int8")}
    facts = {p: describe_mlpackage(ctx.out_dir / r.files[0]) for p, r in records.items()}
    return ctx, records, facts


def test_records_name_the_packages(exported):
    ctx, records, _ = exported
    assert records["fp16"].files[0] == "tfw_tiny_fp16.mlpackage"
    assert records["int8"].files[0] == "tfw_tiny_w8.mlpackage"
    for prec, rec in records.items():
        assert (rec.format, rec.backend, rec.precision) == ("coreml", "mlprogram", prec)
        assert rec.methods == {m: {"file": rec.files[0], "entry": m} for m in METHODS}
        assert {"coreml_reference.npz", "coreml_check_macos.py"} <= set(rec.files)
        entry = rec.manifest_entry(ctx.out_dir)  # hashes the package folder
        assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in entry["files"])
    assert "weights only" in records["int8"].notes


def test_functions_inputs_outputs_and_metadata(exported):
    ctx, _, facts = exported
    s, d, t, k = ctx.model.cfg.input_size, ctx.model.feature_dim, ctx.model.frames, ctx.model.num_classes
    expected = {"forward": ("clip", [1, t, 1, s, s], "logits", [1, k]),
                "embed_frame": ("frame", [1, 1, s, s], "feature", [1, d]),
                "classify_window": ("features", [1, t, d], "logits", [1, k])}
    for prec, f in facts.items():
        assert f["specification_version"] >= 9  # iOS 18: multifunction
        assert f["default_function"] == "forward"
        assert set(f["functions"]) == set(METHODS)
        for name, (iname, ishape, oname, oshape) in expected.items():
            fn = f["functions"][name]
            assert fn["inputs"] == [{"name": iname, "shape": ishape, "dtype": "float32"}]
            assert fn["outputs"] == [{"name": oname, "shape": oshape, "dtype": "float32"}]
        meta = f["metadata"]
        assert json.loads(meta["com.echoweave.class_names"]) == ctx.class_names
        config = json.loads(meta["com.echoweave.config"])
        assert config["preprocessing"] == ctx.preprocessing and config["frames"] == t
        assert meta["com.echoweave.functions"] == "forward,embed_frame,classify_window"
        assert "view classifier" in f["short_description"]


def test_mil_ops_are_core_ml_ops_and_the_gru_is_unrolled(exported):
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    _, _, facts = exported
    for prec, f in facts.items():
        for name, fn in f["functions"].items():
            ops = set(fn["ops"])
            assert not ops & {"gru", "lstm", "rnn"}, (prec, name, ops)
            assert ops <= set(SSAOpRegistry.core_ops), (prec, name, ops - set(SSAOpRegistry.core_ops))
        assert {"linear", "sigmoid", "tanh"} <= set(f["functions"]["classify_window"]["ops"])
        assert "sigmoid" not in f["functions"]["embed_frame"]["ops"]


def test_w8_quantizes_weights_and_shrinks_the_package(exported):
    from echoweave.edge.manifest import file_bytes
    from echoweave.train.models import count_parameters

    ctx, records, facts = exported
    assert not any("constexpr" in op for fn in facts["fp16"]["functions"].values() for op in fn["ops"])
    for name in ("forward", "embed_frame"):  # conv/fc0 weights above coremltools' 2048-element threshold
        assert facts["int8"]["functions"][name]["ops"].get("constexpr_blockwise_shift_scale", 0) > 0
    assert records["int8"].extra["weights_8bit"] > 0
    weights = {p: (ctx.out_dir / r.files[0] / "Data/com.apple.CoreML/weights/weight.bin").stat().st_size
               for p, r in records.items()}
    assert weights["int8"] < 0.8 * weights["fp16"]
    # one copy of the weights for three functions: save_multifunction de-duplicated them
    assert weights["fp16"] < 1.2 * 2 * count_parameters(ctx.model)
    assert file_bytes(ctx.out_dir / records["int8"].files[0]) < file_bytes(ctx.out_dir / records["fp16"].files[0])


def test_reference_npz_holds_eager_outputs(exported):
    ctx, _, _ = exported
    with np.load(ctx.out_dir / "coreml_reference.npz") as data:
        meta = json.loads(str(data["meta"]))
        arrays = {key: data[key] for key in data.files if key != "meta"}
    assert meta["functions"]["embed_frame"] == {"input": "frame", "inputs": ["frame"], "output": "feature"}
    n, t = 4, ctx.model.frames
    assert arrays["forward__in__clip"].shape == (n, 1, *ctx.calib_windows.shape[1:])
    assert arrays["embed_frame__in__frame"].shape == (n * t, 1, *ctx.calib_windows.shape[2:])
    with torch.no_grad():
        logits = ctx.model(torch.from_numpy(ctx.calib_windows[:n])).numpy()  # (n, K)
    np.testing.assert_allclose(arrays["forward__out__logits"][:, 0], logits, atol=1e-5)
    # the inputs are real clips (not random): windows come from the calibration set
    np.testing.assert_array_equal(arrays["forward__in__clip"][:, 0], ctx.calib_windows[:n])
    # classify_window's reference features are embed_frame's reference outputs, window by window
    np.testing.assert_allclose(arrays["classify_window__in__features"].reshape(n * t, -1),
                               arrays["embed_frame__out__feature"].reshape(n * t, -1), atol=1e-5)
    np.testing.assert_allclose(arrays["classify_window__out__logits"], arrays["forward__out__logits"], atol=1e-5)


def test_check_script_uses_only_coremltools_and_numpy(exported):
    ctx, _, _ = exported
    tree = ast.parse((ctx.out_dir / "coreml_check_macos.py").read_text())
    imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - {"__future__", "argparse", "json", "re", "sys", "pathlib"} == {"numpy", "coremltools"}


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS the script really predicts")
def test_check_script_fails_clearly_off_macos(exported, tmp_path):
    ctx, _, _ = exported
    script = ctx.out_dir / "coreml_check_macos.py"
    help_run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert help_run.returncode == 0 and "--compute_units" in help_run.stdout
    run = subprocess.run([sys.executable, str(script), str(ctx.out_dir)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "Core ML prediction needs macOS" in run.stderr and "2 package(s)" in run.stderr
    empty = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "coreml_reference.npz: no reference file" in empty.stderr
    bad = subprocess.run([sys.executable, str(script), str(ctx.out_dir), "--package", "nope.mlpackage"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "nope.mlpackage: no such .mlpackage" in bad.stderr


def test_check_package_refuses_a_gru_and_missing_functions():
    from echoweave.export.coreml import check_package

    fn = {"inputs": [], "outputs": [], "ops": {"linear": 1}}
    good = {"functions": {m: dict(fn) for m in METHODS}}
    check_package(good, "x.mlpackage")
    with pytest.raises(RuntimeError, match="x.mlpackage: function forward holds \\['gru'\\]"):
        check_package({"functions": {**good["functions"], "forward": {**fn, "ops": {"gru": 1}}}}, "x.mlpackage")
    with pytest.raises(RuntimeError, match="functions \\['embed_frame'\\] missing"):
        check_package({"functions": {m: fn for m in METHODS if m != "embed_frame"}}, "x.mlpackage")
    with pytest.raises(RuntimeError, match="outside Core ML's op set: \\['my_custom_op'\\]"):
        check_package({"functions": {**good["functions"], "embed_frame": {**fn, "ops": {"my_custom_op": 1}}}},
                      "x.mlpackage")
