"""The golden vectors committed for android_demo's Kotlin core are up to date with the Python edge.

Regenerates the set into a temporary folder with `tests/golden/make_golden.py` and compares it
with the committed copy: the same files, integer/uint8 arrays and JSON structure exactly, floats
to 1e-6 (BLAS may sum in another order on another CPU). A stale set means the Kotlin tests would
be checking an old Python behaviour: rerun the script and commit.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "golden" / "make_golden.py"
COMMITTED = REPO / "android_demo" / "core" / "src" / "test" / "resources" / "golden"
FIX = "run: .venv/bin/python tests/golden/make_golden.py"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_golden", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _same_json(a, b, where: str, rtol: float = 1e-6, fix: str = FIX) -> None:
    """``a`` equals ``b`` (floats to ``rtol``); a failure says how to regenerate (``fix``)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), f"{where}: {a!r} vs {b!r}"
        assert abs(a - b) <= rtol * max(1.0, abs(a)), f"{where}: {a!r} vs {b!r}; {fix}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{where}: keys differ; {fix}"
        for k in a:
            _same_json(a[k], b[k], f"{where}.{k}", rtol, fix)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ; {fix}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same_json(x, y, f"{where}[{i}]", rtol, fix)
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}; {fix}"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    return _load_generator().generate(tmp_path_factory.mktemp("golden") / "golden")


def test_golden_set_is_small_and_complete():
    files = _files(COMMITTED)
    total = sum((COMMITTED / f).stat().st_size for f in files)
    assert total < 1_000_000, f"golden set is {total} bytes; keep it under 1 MB"
    for section in ("manifest", "gray", "resize", "preprocess", "sector", "softmax", "stream", "timeline", "latency"):
        assert any(f.startswith(section + "/") for f in files), f"no {section} fixtures; {FIX}"


def test_committed_golden_vectors_match_the_current_python_edge(regenerated):
    assert _files(regenerated) == _files(COMMITTED), f"the set of golden files changed; {FIX}"
    for name in _files(COMMITTED):
        new, old = regenerated / name, COMMITTED / name
        if name.endswith(".npy"):
            a, b = np.load(new), np.load(old)
            assert a.dtype == b.dtype and a.shape == b.shape, f"{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}; {FIX}"
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=f"{name}; {FIX}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{name}; {FIX}")
        else:
            _same_json(json.loads(new.read_text()), json.loads(old.read_text()), name)


def test_golden_expectations_exercise_the_edge_cases(regenerated):
    """The set covers what makes the ports hard: rounding ties, every sector method, stream resets."""
    sector = json.loads((regenerated / "sector" / "cases.json").read_text())["cases"]
    assert {c["method"] for c in sector} == {"motion", "single_frame_brightness", "whole_image"}
    manifest = json.loads((regenerated / "manifest" / "cases.json").read_text())["cases"]
    assert sum(c["valid"] for c in manifest) == 4 and len(manifest) > 20
    stream = json.loads((regenerated / "stream" / "cases.json").read_text())
    by_name = {s["name"]: s for s in stream["scenarios"]}
    assert by_name["static_region_change"]["events"][-1]["sector_updates"] == 2  # refreshed once
    assert by_name["refresh_off"]["events"][-1]["sector_updates"] == 1
    assert by_name["geometry_change"]["events"][-1]["sector_updates"] == 3  # one estimate per frame geometry
    gray = np.load(regenerated / "gray" / "rgb.npy")
    luma = gray.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert (np.abs(luma - np.floor(luma) - 0.5) < 1e-6).sum() > 1000  # many exact .5 ties


def test_kotlin_core_reads_the_edge_manifest_schema():
    """The Kotlin core validates manifests with a copy of the edge's JSON Schema (a resource of the core)."""
    copy = REPO / "android_demo" / "core" / "src" / "main" / "resources" / "org" / "echoweave" / "core" / "manifest.schema.json"
    edge = REPO / "edge" / "manifest.schema.json"
    assert copy.read_bytes() == edge.read_bytes(), f"the Kotlin core's schema is stale: cp {edge} {copy}"


def test_luma_is_the_same_whatever_the_summation_order():
    """rgb_to_gray rounds the exact weighted sum: float64 sums in any order agree, and so does the edge."""
    from echoweave.edge.image import rgb_to_gray

    rgb = np.load(COMMITTED / "gray" / "rgb.npy")
    w = np.array([0.299, 0.587, 0.114], np.float32).astype(np.float64)
    x = rgb.astype(np.float64)
    forward = x[:, 0] * w[0] + x[:, 1] * w[1] + x[:, 2] * w[2]
    backward = x[:, 2] * w[2] + x[:, 1] * w[1] + x[:, 0] * w[0]
    np.testing.assert_array_equal(forward, backward)
    np.testing.assert_array_equal(rgb_to_gray(rgb), np.rint(forward).astype(np.uint8))
    np.testing.assert_array_equal(rgb_to_gray(rgb.reshape(-1, 1, 3))[:, 0], rgb_to_gray(rgb))


# ---- evidential fusion (issue 14): a set of its own, golden_evidential/ -----------------------

EVIDENTIAL_SCRIPT = REPO / "tests" / "golden" / "make_golden_evidential.py"
EVIDENTIAL_COMMITTED = REPO / "android_demo" / "core" / "src" / "test" / "resources" / "golden_evidential"
EVIDENTIAL_FIX = "run: .venv/bin/python tests/golden/make_golden_evidential.py"


@pytest.fixture(scope="module")
def regenerated_evidential(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("make_golden_evidential", EVIDENTIAL_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(tmp_path_factory.mktemp("golden") / "golden_evidential")


def test_committed_evidential_golden_vectors_match_the_current_python_edge(regenerated_evidential):
    files = _files(EVIDENTIAL_COMMITTED)
    assert _files(regenerated_evidential) == files, f"the set of evidential golden files changed; {EVIDENTIAL_FIX}"
    assert sum((EVIDENTIAL_COMMITTED / f).stat().st_size for f in files) < 500_000
    for name in files:
        new, old = regenerated_evidential / name, EVIDENTIAL_COMMITTED / name
        if name.endswith(".npy"):
            a, b = np.load(new), np.load(old)
            assert a.dtype == b.dtype and a.shape == b.shape, f"{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=f"{name}; {EVIDENTIAL_FIX}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{name}; {EVIDENTIAL_FIX}")
        elif name == "model_cases.json":  # the linear model in the loop: BLAS may sum in another order
            _same_json(json.loads(new.read_text()), json.loads(old.read_text()), name)
        else:
            # hand-built float64 cases: pure float64 arithmetic, no BLAS (the Kotlin test holds them to 1e-9)
            _same_json(json.loads(new.read_text()), json.loads(old.read_text()), name, 1e-12, EVIDENTIAL_FIX)


def test_evidential_golden_vectors_exercise_the_edge_cases(regenerated_evidential):
    """One clip, softplus past exp's overflow, the cap at 1, videos shorter than the span,
    round-half-to-even in key_clip_starts, a history cleared by a new geometry."""
    from echoweave.edge.evidential import softplus

    root = regenerated_evidential
    sp = json.loads((root / "softplus.json").read_text())
    assert max(sp["x"]) > 710 and min(sp["x"]) < -746 and np.isfinite(softplus(np.array(sp["x"]))).all()
    fuse_cases = {c["name"]: c for c in json.loads((root / "fuse.json").read_text())["cases"]}
    assert any(len(c["logits"]) == 1 for c in fuse_cases.values())
    assert fuse_cases["ten_clips_no_evidence_cap"]["scaled_uncertainty"] == 1.0
    assert fuse_cases["ten_clips_no_evidence_cap"]["uncertainty"] * 10 * 0.1 > 1.0  # the cap is what made it 1
    starts = json.loads((root / "key_clip_starts.json").read_text())["cases"]
    ties = 0
    for num_frames, span, count, got in starts:
        stop = max(0, num_frames - span)
        exact = [i * (stop / (count - 1)) for i in range(count)] if count > 1 else [0.0]
        ties += sum(v % 1 == 0.5 for v in exact[:-1])
        assert got == [int(v) for v in np.round(np.linspace(0, stop, count))]
    assert ties > 50  # numpy's round-half-to-even decides these (round(2.5) == 2)
    assert any(n < span for n, span, _, _ in starts)
    history = {c["name"]: c for c in json.loads((root / "history.json").read_text())["cases"]}
    assert history["cleared_by_geometry"]["clear_at"] is not None
    models = json.loads((root / "model_cases.json").read_text())
    clip_starts = [cc["key_starts"] for case in models["cases"] for cc in case["clip_cases"]]
    assert [0, 2, 3, 4, 6, 8, 9] in clip_starts and [0] * 10 in clip_starts  # half-even; shorter than the span
    manifest = json.loads((root / "manifest.json").read_text())["cases"]
    assert sum(c["valid"] for c in manifest) == 4 and len(manifest) >= 15
