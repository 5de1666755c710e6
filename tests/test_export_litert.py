"""LiteRT converter: one .tflite with three signatures, fp32 parity with eager PyTorch, the
streaming identity, static int8 with float I/O, and the graph facts (no fused GRU, int8 FCs).

One module fixture exports the trained tiny checkpoint once (fp32 ~20-40 s, int8 ~10 s here).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from echoweave.edge.manifest import METHODS

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")


def make_context(checkpoint, out):
    """An `ExportContext` of a checkpoint as the pipeline builds it, plus the held-out windows."""
    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.export import pipeline as P
    from echoweave.export.calibration import calibration_set, held_out_set
    from echoweave.export.formats import ExportContext

    model, meta, folder = P.load_checkpoint_model(checkpoint)
    spec = PreprocessSpec(**meta["preprocessing"])
    store = P.load_dataset(meta, folder)
    calib = calibration_set(store, meta, spec, model.frames, calib_clips=16)
    held = held_out_set(store, meta, spec, model.frames, windows_per_clip=2, max_clips=8)
    ctx = ExportContext(model=model, model_id="tfw_tiny", out_dir=out, calib_windows=calib.windows,
                        calib_frames=calib.windows.reshape(-1, *calib.windows.shape[2:]),
                        calib_features=P.eager_features(model, calib.windows),
                        example_inputs={m: model.example_inputs(m) for m in model.methods},
                        class_names=list(meta["class_names"]), preprocessing=dict(meta["preprocessing"]),
                        meta=meta)
    return ctx, held


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    from echoweave.export.litert import export_litert

    torch.set_num_threads(2)
    ctx, held = make_context(tiny_checkpoint, tmp_path_factory.mktemp("litert"))
    records = {p: export_litert(ctx, p) for p in ("fp32", "int8")}
    with torch.no_grad():
        windows = torch.from_numpy(held.windows)  # (N, T, C, S, S)
        eager = {"forward": ctx.model(windows).numpy(),  # (N, K)
                 "features": ctx.model.forward_features(windows).numpy()}  # (N, T, D)
    return ctx, held, records, eager


def run_litert(path, signature, inputs):
    """One signature of a ``.tflite`` through the edge runtime adapter an app uses."""
    from echoweave.edge.runtime.litert_adapter import LiteRTAdapter

    path = Path(path)
    artifact = {"id": path.stem, "format": "litert", "methods": {signature: {"file": path.name, "entry": signature}}}
    adapter = LiteRTAdapter(path.parent, artifact)
    try:
        return adapter.run(signature, *inputs)
    finally:
        adapter.close()


def run_all(path, held):
    """``(forward (N, K), per-frame features (N, T, D), streaming logits (N, K))`` from the file."""
    fwd, feats, stream = [], [], []
    for window in held.windows:
        fwd.append(run_litert(path, "forward", [window[None]])[0])
        f = np.stack([run_litert(path, "embed_frame", [frame[None]])[0] for frame in window])  # (T, D)
        feats.append(f)
        stream.append(run_litert(path, "classify_window", [f[None]])[0])
    return np.stack(fwd), np.stack(feats), np.stack(stream)


def test_record_names_one_file_with_three_signatures(exported):
    ctx, _, records, _ = exported
    assert records["fp32"].files == ["tfw_tiny_fp32.tflite"]
    assert records["int8"].files == ["tfw_tiny_q8.tflite"]
    for prec, rec in records.items():
        assert (rec.format, rec.backend, rec.precision) == ("litert", "xnnpack", prec)
        assert rec.methods == {m: {"file": rec.files[0], "entry": m, "inputs": [io["inputs"][0]["name"]]}
                               for m, io in ctx.model.input_spec()["methods"].items()}
        assert set(rec.extra["signatures"]) == set(METHODS)
        entry = rec.manifest_entry(ctx.out_dir)
        assert entry["files"][0]["bytes"] == (ctx.out_dir / rec.files[0]).stat().st_size
    # int8 weights: clearly smaller than fp32 (the tiny model is small, so not a full 4x)
    assert records["int8"].manifest_entry(ctx.out_dir)["files"][0]["bytes"] < \
        0.75 * records["fp32"].manifest_entry(ctx.out_dir)["files"][0]["bytes"]


def test_fp32_matches_eager_for_every_signature_and_streams(exported):
    ctx, held, records, eager = exported
    fwd, feats, stream = run_all(ctx.out_dir / records["fp32"].files[0], held)
    np.testing.assert_allclose(fwd, eager["forward"], atol=1e-4)
    np.testing.assert_allclose(feats, eager["features"], atol=1e-4)
    # classify_window fed with eager features equals eager forward too
    path = ctx.out_dir / records["fp32"].files[0]
    cw = np.stack([run_litert(path, "classify_window", [f[None]])[0] for f in eager["features"]])
    np.testing.assert_allclose(cw, eager["forward"], atol=1e-4)
    # the streaming identity: classify_window(4 x embed_frame) == forward, inside the artifact
    np.testing.assert_allclose(stream, fwd, atol=1e-5)


def test_graph_has_no_recurrent_op_and_float_io(exported):
    from echoweave.export.litert import RECURRENT_OPS, describe_tflite

    ctx, _, records, _ = exported
    for rec in records.values():
        facts = describe_tflite(ctx.out_dir / rec.files[0])
        assert set(facts) == set(METHODS)
        for sig, f in facts.items():
            assert not set(f["ops"]) & RECURRENT_OPS, (sig, f["ops"])
            assert not any(op.startswith("CUSTOM") for op in f["ops"])
        # the unrolled GRU: per-gate FCs, sigmoid and tanh in classify_window; none in embed_frame
        assert {"FULLY_CONNECTED", "LOGISTIC", "TANH"} <= set(facts["classify_window"]["ops"])
        assert "LOGISTIC" not in facts["embed_frame"]["ops"]
        assert rec.input_dtype == rec.output_dtype == "float32"
        assert all(io == {"input": "float32", "output": "float32"} for io in rec.extra["io_dtypes"].values())


def test_int8_is_integer_inside_including_the_gru(exported):
    from echoweave.export.litert import describe_tflite

    ctx, _, records, _ = exported
    facts = describe_tflite(ctx.out_dir / records["int8"].files[0])
    for sig, f in facts.items():
        # every FULLY_CONNECTED (backbone fc0, the GRU's gate layers, the head) is int8 x int8 -> int8
        assert set(f["fully_connected_dtypes"]) == {"INT8,INT8->INT8"}, (sig, f["fully_connected_dtypes"])
        assert f["int8_compute_share"] == 1.0, (sig, f["float_compute_ops"])
        assert f["ops"].get("QUANTIZE", 0) >= 1 and f["ops"].get("DEQUANTIZE", 0) >= 1  # float boundary
    assert sum(facts["classify_window"]["fully_connected_dtypes"].values()) == \
        facts["classify_window"]["ops"]["FULLY_CONNECTED"]
    fp32 = describe_tflite(ctx.out_dir / records["fp32"].files[0])
    assert set(fp32["forward"]["fully_connected_dtypes"]) == {"FLOAT32,FLOAT32->FLOAT32"}


def test_int8_agrees_with_eager(exported):
    ctx, held, records, eager = exported
    fwd, _, stream = run_all(ctx.out_dir / records["int8"].files[0], held)
    ref = eager["forward"]
    scale = np.abs(ref).max()
    agreement = float(np.mean(fwd.argmax(1) == ref.argmax(1)))
    print(f"litert int8 on {len(ref)} held-out windows: top-1 agreement {agreement:.3f}, "
          f"max |diff| {np.abs(fwd - ref).max():.4f} (logit scale {scale:.3f}), "
          f"streaming vs forward {np.abs(stream - fwd).max():.4f}")
    assert np.abs(fwd - ref).max() < 0.15 * scale + 1e-3
    assert agreement >= 0.75
    # embed_frame and forward are calibrated separately, so streaming is close, not bit-equal
    assert np.abs(stream - fwd).max() < 0.15 * scale + 1e-3


def test_adapter_names_file_for_unknown_signature(exported):
    from echoweave.edge.manifest import ManifestError

    ctx, _, records, _ = exported
    path = ctx.out_dir / records["fp32"].files[0]
    with pytest.raises(ManifestError, match="tfw_tiny_fp32.tflite.*no signature 'predict'"):
        run_litert(path, "predict", [np.zeros((1, 1), np.float32)])


@pytest.mark.slow
def test_int8_alone_lowers_a_temporary_fp32(tiny_checkpoint, tmp_path):
    """Exporting only int8 lowers fp32 to a temporary file and leaves just the q8 file behind."""
    from echoweave.export.litert import describe_tflite, export_litert

    ctx, held = make_context(tiny_checkpoint, tmp_path)
    rec = export_litert(ctx, "int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tfw_tiny_q8.tflite"]
    assert "lower_s" in rec.extra["timings_s"] and "quantize_s" in rec.extra["timings_s"]
    assert set(describe_tflite(tmp_path / rec.files[0])["forward"]["fully_connected_dtypes"]) == {"INT8,INT8->INT8"}
    with torch.no_grad():
        ref = ctx.model(torch.from_numpy(held.windows[:2])).numpy()
    out = np.concatenate([run_litert(tmp_path / rec.files[0], "forward", [w[None]]) for w in held.windows[:2]])
    assert np.abs(out - ref).max() < 0.15 * np.abs(ref).max() + 1e-3
