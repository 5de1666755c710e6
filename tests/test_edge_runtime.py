"""Edge runtime: artifact selection and its errors, parity of every runtime with eager PyTorch,
streaming == window model, mean-vote models not averaged twice, and no torch on import."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import echoweave.edge as ew
from echoweave.edge.manifest import ManifestError, read_manifest, write_manifest
from echoweave.edge.runtime import RuntimeNotAvailable, available_runtimes
from echoweave.edge import formats as format_table
from echoweave.edge.runtime import base as runtime_base
from tests.helpers.edge_artifacts import exported_artifacts, tiny_image_checkpoint
from tests.helpers.stream_parity import assert_file_and_stream_agree

RUNTIMES = ("onnxruntime", "executorch", "litert")


@pytest.fixture(scope="module")
def tfw_dir(tiny_checkpoint):
    return exported_artifacts(tiny_checkpoint)


@pytest.fixture(scope="module")
def image_ckpt(tmp_path_factory):
    return tiny_image_checkpoint(tmp_path_factory.mktemp("image_run"))


@pytest.fixture(scope="module")
def image_dir(image_ckpt):
    return exported_artifacts(image_ckpt, formats=("onnx",))


@pytest.fixture
def frames():
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(9, 40, 50), dtype=np.uint8)


def _copy(src, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def _eager_window_probs(checkpoint, x):
    import torch

    from echoweave.train.engine.checkpoint import load_model

    torch.set_num_threads(1)
    model, _ = load_model(checkpoint)
    with torch.no_grad():
        clips = torch.stack([torch.from_numpy(x[s : s + 4]) for s in range(len(x) - 3)])  # (W, 4, 1, S, S)
        return torch.softmax(model(clips).double(), -1).numpy(), model


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_runtime_matches_eager_and_streaming_equals_window_model(tfw_dir, tiny_checkpoint, frames, runtime):
    clf = ew.load(tfw_dir, runtime=runtime)
    assert clf.runtime == runtime and clf.frames == 4 and len(clf.class_names) == 12
    x = clf.preprocess(frames, sector=None)  # (9, 1, 32, 32)
    eager, _ = _eager_window_probs(tiny_checkpoint, x)
    pushed = assert_file_and_stream_agree(clf, frames, eager)
    assert [p is None for p in pushed] == [True] * 3 + [False] * 6  # a prediction once 4 frames are in
    assert [p.frame_index for p in pushed if p] == list(range(3, 9))


def test_mean_vote_model_is_averaged_once(image_dir, image_ckpt, frames):
    import torch

    clf = ew.load(image_dir, runtime="onnxruntime")
    assert clf.aggregation == "mean_vote"
    x = clf.preprocess(frames, sector=None)
    _, model = _eager_window_probs(image_ckpt, x)
    with torch.no_grad():
        per_frame = torch.softmax(model.forward_image(torch.from_numpy(x)).double(), -1).numpy()  # (9, K)
    expected = np.stack([per_frame[s : s + 4].mean(0) for s in range(6)])  # the paper's mean vote
    got = np.stack([p.probabilities for p in clf.predict_windows(frames, sector=None)])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # A second softmax over the mean would flatten the distribution: make sure that is not what we return.
    twice = np.exp(expected) / np.exp(expected).sum(-1, keepdims=True)
    assert np.abs(got - twice).max() > 1e-4
    clip = clf.predict(frames, sector=None)
    np.testing.assert_allclose(clip.probabilities, expected.mean(0), atol=1e-5)
    assert clip.windows == 6 and clip.class_id == int(expected.mean(0).argmax())


def test_default_runtime_follows_preference(tfw_dir):
    clf = ew.load(tfw_dir)
    assert available_runtimes()[:3] == ["executorch", "onnxruntime", "litert"]
    assert clf.runtime == "executorch"
    assert ew.load(tfw_dir, precision="fp32").runtime == "executorch"


def test_prediction_fields(tfw_dir, frames):
    clf = ew.load(tfw_dir, runtime="onnxruntime")
    p = clf.predict(frames, fps=10.0, sector=None)
    assert p.view == clf.class_names[p.class_id]
    assert p.confidence == pytest.approx(p.probabilities.max()) and p.probabilities.sum() == pytest.approx(1.0)
    assert p.uncertain == (p.confidence < clf.uncertain_threshold)
    assert p.frame_index == 8 and p.time_s == pytest.approx(0.8) and p.latency_ms > 0
    short = clf.predict(frames[:2], sector=None)  # shorter than T: padded with the last frame
    assert short.windows == 1 and short.frame_index == 1
    d = p.to_dict()
    assert json.loads(json.dumps(d))["view"] == p.view and len(d["probabilities"]) == 12


def test_unknown_precision_lists_what_exists(tfw_dir):
    with pytest.raises(ManifestError, match=r"no artifact with precision 'int8'.*onnx_cpu_fp32 \(onnx fp32\)"):
        ew.load(tfw_dir, precision="int8")
    with pytest.raises(ManifestError, match=r"no onnx artifact with precision fp16 for runtime 'onnxruntime'"):
        ew.load(tfw_dir, runtime="onnxruntime", precision="fp16")


def test_runtime_without_artifact_lists_what_exists(tfw_dir, tmp_path):
    folder = _copy(tfw_dir, tmp_path)
    manifest = read_manifest(folder)
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["format"] == "onnx"]
    write_manifest(folder, manifest)
    with pytest.raises(ManifestError, match=r"no litert artifact for runtime 'litert'; the manifest has: onnx_cpu_fp32"):
        ew.load(folder, runtime="litert")
    assert ew.load(folder).runtime == "onnxruntime"  # executorch is installed but has no artifact here


def test_runtime_not_installed_names_pip_package(tfw_dir):
    row = format_table.get_runtime("litert")
    with format_table.registered(dataclasses.replace(row, modules=("no_such_module_for_echoweave",)), replace=True):
        assert runtime_base.RUNTIMES["litert"].modules == ("no_such_module_for_echoweave",)
        with pytest.raises(RuntimeNotAvailable, match="runtime 'litert' is not installed: pip install ai-edge-litert"):
            ew.load(tfw_dir, runtime="litert")
    assert runtime_base.RUNTIMES["litert"] == runtime_base.RuntimeInfo.of(row)
    with pytest.raises(RuntimeNotAvailable, match="unknown runtime 'tensorrt'"):
        ew.load(tfw_dir, runtime="tensorrt")


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML predicts on macOS")
def test_coreml_on_linux_is_a_clear_error(tfw_dir):
    with pytest.raises(RuntimeNotAvailable, match="can only predict on darwin"):
        ew.load(tfw_dir, runtime="coreml")


def test_tampered_and_missing_files(tfw_dir, tmp_path):
    folder = _copy(tfw_dir, tmp_path)
    files = {a["format"]: a["methods"] for a in read_manifest(folder)["artifacts"]}
    onnx = folder / files["onnx"]["embed_frame"]["file"]
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    onnx.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256 .* does not match"):
        ew.load(folder, runtime="onnxruntime")
    assert ew.load(folder, runtime="litert").runtime == "litert"  # only the chosen artifact is checked
    tflite = files["litert"]["embed_frame"]["file"]
    (folder / tflite).unlink()
    with pytest.raises(ManifestError, match=f"{tflite}: artifact file named in the manifest is missing"):
        ew.load(folder, runtime="litert")


def test_newer_and_missing_manifest(tfw_dir, tmp_path):
    folder = _copy(tfw_dir, tmp_path)
    data = json.loads((folder / "manifest.json").read_text())
    data["schema_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="schema 99 is newer"):
        ew.load(folder)
    with pytest.raises(ManifestError, match="no manifest here"):
        ew.load(tmp_path / "nowhere")


def test_int8_artifact_stays_close_to_eager(tiny_checkpoint, frames):
    folder = exported_artifacts(tiny_checkpoint, formats=("onnx",), precisions=("int8",))
    clf = ew.load(folder, precision="int8")
    assert clf.runtime == "onnxruntime" and clf.precision == "int8"
    x = clf.preprocess(frames, sector=None)
    eager, _ = _eager_window_probs(tiny_checkpoint, x)
    via_forward = np.stack([p.probabilities for p in clf.predict_windows(frames, sector=None, via="forward")])
    stream = clf.stream(sector=None)
    streamed = np.stack([p.probabilities for p in (stream.push(f) for f in frames) if p is not None])
    # Quantized halves (embed_frame, classify_window) round differently from the quantized whole.
    np.testing.assert_allclose(streamed, via_forward, atol=5e-3)
    np.testing.assert_allclose(via_forward, eager, atol=2e-2)
    assert (via_forward.argmax(1) == eager.argmax(1)).mean() >= 5 / 6


def test_int8_quantization_helpers():
    from echoweave.edge.classifier import dequantize, quantize

    q = quantize(np.array([0.0, 1.0, 2.6, 500.0, -3.0], np.float32), "uint8", {"scale": 0.5, "zero_point": 10})
    assert q.dtype == np.uint8 and q.tolist() == [10, 12, 15, 255, 4]
    s8 = quantize(np.array([0.0, 1.0]), "int8", {"scale": 1 / 255, "zero_point": -128})
    assert s8.tolist() == [-128, 127]
    np.testing.assert_allclose(dequantize(s8, {"scale": 1 / 255, "zero_point": -128}), [0.0, 1.0], atol=1e-6)


def test_edge_imports_no_torch():
    code = ("import sys, echoweave.edge as ew; from echoweave.edge import classifier, batch, timeline; "
            "from echoweave.edge.runtime import base, onnx_adapter, litert_adapter, executorch_adapter, coreml_adapter; "
            "import echoweave.commands.classify; ew.load, ew.StreamingClassifier, ew.Prediction; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'executorch', 'tensorflow', 'jax')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_onnx_window_head_runs_single_threaded_so_its_pool_cannot_spin_against_the_embedder(tfw_dir):
    """Each ONNX Runtime session owns a spinning thread pool; the head's would steal a core from the
    next embed_frame while streaming (measured 2x on the full-size model), so it gets one thread."""
    from echoweave.edge.runtime.onnx_adapter import OnnxRuntimeAdapter

    manifest = read_manifest(tfw_dir)
    artifact = next(a for a in manifest["artifacts"] if a["format"] == "onnx" and a["precision"] == "fp32")
    for threads, heavy in ((2, 2), (None, 0)):  # 0: ORT's default (one per core)
        adapter = OnnxRuntimeAdapter(tfw_dir, artifact, threads=threads)
        try:
            opts = {m: s[0].get_session_options() for m, s in adapter._sessions.items()}
            assert opts["classify_window"].intra_op_num_threads == 1
            assert opts["embed_frame"].intra_op_num_threads == heavy
            assert opts["forward"].intra_op_num_threads == heavy
        finally:
            adapter.close()
