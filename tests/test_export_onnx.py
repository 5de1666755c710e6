"""ONNX export of the tiny TFW checkpoint: three graphs per precision, no GRU op, QDQ over the
GRU's matrix products, fp32 parity and streaming parity in ONNX Runtime, manifest hashes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from echoweave.edge.manifest import find_artifact, read_manifest, verify_artifact_files


@pytest.fixture(scope="module")
def onnx_export(tiny_checkpoint, tmp_path_factory):
    from echoweave.export.pipeline import export_checkpoint

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("onnx_art")
    return export_checkpoint(tiny_checkpoint, out, formats=["onnx"], precisions=["fp32", "int8"],
                             calib_clips=12, show_progress=False)


def _graph(folder, art, method):
    import onnx

    return onnx.load(str(folder / art["methods"][method]["file"]))


def test_files_named_by_model_and_precision(onnx_export):
    names = sorted(p.name for p in onnx_export.folder.glob("*.onnx"))
    assert names == sorted(f"tfw_tiny_{p}{m}.onnx" for p in ("fp32", "q8")
                           for m in ("", "_embed_frame", "_classify_window"))
    assert not list(onnx_export.folder.glob(".*"))  # no temporary leftovers


def test_manifest_validates_and_hashes_match(onnx_export):
    manifest = read_manifest(onnx_export.folder)
    assert [a["id"] for a in manifest["artifacts"]] == ["onnx_cpu_fp32", "onnx_cpu_int8"]
    for art in manifest["artifacts"]:
        verify_artifact_files(onnx_export.folder, art)
        assert set(art["methods"]) == {"forward", "embed_frame", "classify_window"}
    assert manifest["aggregation"] == "window" and manifest["frames"] == 4
    assert manifest["toolchain"]["onnxruntime"]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_no_native_gru_op(onnx_export, precision):
    art = find_artifact(onnx_export.manifest, "onnx", precision)[0]
    for method in ("forward", "classify_window"):
        ops = {n.op_type for n in _graph(onnx_export.folder, art, method).graph.node}
        assert "GRU" not in ops and ("MatMul" in ops or "Gemm" in ops)


def test_int8_qdq_covers_gru_matmuls(onnx_export):
    art = find_artifact(onnx_export.manifest, "onnx", "int8")[0]
    graph = _graph(onnx_export.folder, art, "classify_window").graph
    producers = {out: node.op_type for node in graph.node for out in node.output}
    inits = {i.name for i in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    # 2 GRU layers x (3 input + 3 hidden gates) x 4 steps, plus the classifier: all quantized.
    assert len(matmuls) >= 2 * 6
    for node in matmuls:
        for inp in node.input[:2]:
            assert producers.get(inp) == "DequantizeLinear", (node.name, inp, inp in inits)
    ops = onnx_export.manifest["artifacts"][1]["extra"]["ops"]["classify_window"]
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] >= 2 * len(matmuls)


def test_fp32_parity_exact_top1(onnx_export):
    row = next(r for r in onnx_export.parity["artifacts"] if r["id"] == "onnx_cpu_fp32")
    assert row["ran"] and row["n"] > 0
    assert row["top1_agreement"] == 1.0
    assert row["max_abs_logit_diff"] < 1e-4
    assert row["streaming"]["top1_agreement"] == 1.0 and row["streaming"]["max_abs_logit_diff"] < 1e-4
    assert (onnx_export.folder / "parity.md").read_text().count("onnx_cpu_") >= 2


def test_int8_runs_and_agreement_reported(onnx_export):
    row = next(r for r in onnx_export.parity["artifacts"] if r["id"] == "onnx_cpu_int8")
    assert row["ran"] and 0.0 <= row["top1_agreement"] <= 1.0
    # Quantized, so not bit-exact, but close: logits of this model are O(1).
    assert 0.0 < row["max_abs_logit_diff"] < 0.5
    saved = json.loads((onnx_export.folder / "parity.json").read_text())
    assert saved["artifacts"][1]["accuracy_drop_pp"] == pytest.approx(row["accuracy_drop_pp"])
    assert onnx_export.manifest["parity"]["onnx_cpu_int8"]["top1_agreement"] == row["top1_agreement"]


def test_streaming_pair_equals_forward_in_ort(onnx_export, tiny_checkpoint):
    """classify_window(stack(embed_frame(f_t))) == forward on the same 4 real-looking frames."""
    from echoweave.export.onnx_format import session

    art = find_artifact(onnx_export.manifest, "onnx", "fp32")[0]
    sess = {m: session(onnx_export.folder / art["methods"][m]["file"], threads=1) for m in art["methods"]}
    clip = np.random.default_rng(3).random((1, 4, 1, 32, 32), dtype=np.float32)
    fwd = sess["forward"].run(None, {"clip": clip})[0]
    feats = np.stack([sess["embed_frame"].run(None, {"frame": clip[:, t]})[0] for t in range(4)], axis=1)
    stream = sess["classify_window"].run(None, {"features": feats})[0]
    np.testing.assert_allclose(stream, fwd, atol=1e-4)
    from echoweave.train.engine.checkpoint import load_model

    model, _ = load_model(tiny_checkpoint)
    with torch.no_grad():
        eager = model(torch.from_numpy(clip)).numpy()
    np.testing.assert_allclose(fwd, eager, atol=1e-4)
