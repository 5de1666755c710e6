"""Golden vectors for the Kotlin core's evidential fusion (issue 14), written by the Python edge.

    .venv/bin/python tests/golden/make_golden_evidential.py            # rewrite the committed fixtures
    .venv/bin/python tests/golden/make_golden_evidential.py --out DIR  # write them elsewhere (the pytest does)

A set of its own beside ``golden/`` (``android_demo/core/src/test/resources/golden_evidential/``),
read by ``EvidentialGoldenTest.kt``; ``tests/test_android_golden.py`` regenerates it into a
temporary folder and fails when the committed copy is stale. Every expected value comes from
`echoweave.edge.evidential` (``softplus``, ``fuse``, ``key_clip_starts``) and from the
`Classifier` / `StreamingClassifier` methods that use it (``evidential``, ``combine_windows``,
``predict`` / ``predict_windows`` of a model with a manifest ``fusion`` entry,
``_fused_uncertainty``, ``push``), and from ``validate_manifest`` for the ``fusion`` entry.

Two kinds of cases:

* float64 inputs given here (logits built by hand): the Kotlin port must agree to 1e-9;
* the tiny linear model of ``make_golden.py`` (`LinearStreamModel`, weights written out) in the
  loop, for whole clips and streams of a fusion model: the model's float32 outputs may differ in
  the last bit between BLAS and the Kotlin loop, so these compare to 1e-5 (window starts, frame
  indices, window counts and classes exactly).
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from echoweave.edge.classifier import Classifier, Prediction, StreamingClassifier, softmax
from echoweave.edge.evidential import fuse, key_clip_starts, softplus
from echoweave.edge.manifest import ManifestError, validate_manifest
from echoweave.edge.preprocess import PreprocessSpec
from echoweave.edge.views import NED12

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "android_demo" / "core" / "src" / "test" / "resources" / "golden_evidential"


def _make_golden():
    """tests/golden/make_golden.py as a module (its Writer, phantom clips, linear model, example manifest)."""
    spec = importlib.util.spec_from_file_location("make_golden", Path(__file__).with_name("make_golden.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mg = _make_golden()


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _scaled(logits: np.ndarray, prior: float) -> tuple[np.ndarray, float]:
    """`Classifier.evidential` (probabilities, uncertainty scaled to (0, 1]) with only the fusion entry."""
    return Classifier.evidential(SimpleNamespace(fusion={"kind": "evidential", "prior": prior}), logits)


# ---- pure functions ------------------------------------------------------------------------

def softplus_cases(w) -> None:
    """softplus = logaddexp(0, x) in float64, through both branches, underflow and no overflow."""
    xs = [0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-17, -1e-17, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 20.0, -20.0,
          33.0, 36.0, 37.0, 40.0, -36.0, -37.0, -40.0, 100.0, -100.0, 700.0, 709.0, 710.0, 800.0, -700.0, -708.0,
          -709.0, -740.0, -745.0, -746.0, -800.0, 1e4, -1e4, 1e300, -1e300, 1.7976931348623157e308,
          -1.7976931348623157e308]
    rng = np.random.default_rng(41)
    xs += _floats(rng.normal(0, 4, 24))
    w.json("softplus.json", {"x": xs, "softplus": _floats(softplus(np.array(xs)))})


def fuse_cases(w) -> None:
    """`fuse` and `Classifier.evidential` (the scaled uncertainty, capped at 1) on (N, K) logits."""
    rng = np.random.default_rng(43)
    cases = [
        ("one_clip_zeros", np.zeros((1, 3)), 0.8),
        ("one_clip_one_class", np.array([[0.3]]), 0.8),
        ("one_clip_no_evidence", np.full((1, 3), -1000.0), 0.8),
        ("ten_clips_no_evidence_cap", np.full((10, 4), -1000.0), 0.1),  # N K prior / S rounds to 1 + 2^-52: capped
        ("ten_clips_no_evidence", np.full((10, 12), -800.0), 0.8),
        ("tie_first_class_wins", np.array([[2.0, 2.0, -1.0], [1.0, 1.0, 0.0]]), 0.8),
        ("huge_logits", np.array([[1e4, -1e4, 0.0], [800.0, 710.0, -800.0], [1e300, -1e300, 3.0]]), 0.8),
        ("huge_negative_only", np.array([[-1e300, -1e4, -745.0, -40.0]]), 0.8),
        ("prior_integer", rng.normal(0, 2, (3, 5)), 1),
        ("prior_2_5", rng.normal(0, 2, (4, 5)), 2.5),
        ("prior_small", rng.normal(0, 2, (2, 6)), 1e-3),
        ("stfm_10_clips_ned12", rng.normal(0, 3, (10, 12)), 0.8),
        ("stfm_10_clips_confident", rng.normal(0, 1, (10, 12)) + 8.0 * (np.arange(12) == 4), 0.8),
        ("many_clips", rng.normal(0, 5, (37, 7)), 0.8),
    ]
    out = []
    for name, logits, prior in cases:
        logits = np.asarray(logits, dtype=np.float64)
        fused = fuse(logits, prior)
        probs, scaled = _scaled(logits, prior)
        np.testing.assert_array_equal(probs, fused.probabilities)
        out.append({"name": name, "logits": [_floats(r) for r in logits], "prior": prior,
                    "class_id": fused.class_id, "probabilities": _floats(fused.probabilities),
                    "uncertainty": fused.uncertainty, "scaled_uncertainty": scaled})
    w.json("fuse.json", {"cases": out})


def key_clip_cases(w) -> None:
    """`key_clip_starts` on every (num_frames - span) in 0..40 and count in 1..12 (numpy's linspace
    and round-half-to-even: many exact .5 ties), videos shorter than the span, and a long one."""
    cases = []
    spans = [1, 4, 5, 21]
    for stop in range(41):
        for count in range(1, 13):
            span = spans[(stop + count) % len(spans)]
            cases.append([stop + span, span, count, [int(v) for v in key_clip_starts(stop + span, span, count)]])
    for num_frames, span, count in [(5, 21, 10), (1, 21, 10), (20, 21, 10), (1, 1, 1), (3, 5, 4), (120, 21, 10),
                                   (1000, 21, 10), (100001, 21, 10), (2 ** 31 - 1, 21, 10), (57, 21, 100)]:
        cases.append([num_frames, span, count, [int(v) for v in key_clip_starts(num_frames, span, count)]])
    w.json("key_clip_starts.json", {"columns": ["num_frames", "span", "count", "starts"], "cases": cases},
           compact=True)


# ---- the classifier's fusion (hand-built window logits) -----------------------------------

def fusion_manifest(classes: int, frames: int, threshold: float, fusion: dict | None, frame_stride: int = 1,
                    spec: PreprocessSpec | None = None) -> dict:
    spec = spec or PreprocessSpec(resize=20, crop=16)
    manifest = {"model_id": "golden_linear", "classes": [{"id": i, "name": n} for i, n in enumerate(NED12[:classes])],
                "frames": frames, "aggregation": "window", "uncertain_threshold": threshold,
                "preprocessing": spec.to_dict(), "frame_stride": frame_stride}
    if fusion is not None:
        manifest["fusion"] = fusion
    return manifest


def fusion_classifier(classes: int, frames: int, threshold: float, fusion: dict | None, seed: int,
                      frame_stride: int = 1, dim: int = 6):
    spec = PreprocessSpec(resize=20, crop=16)
    artifact = {"id": "golden_linear_fp32", "format": "executorch", "precision": "fp32", "methods": {},
                "input_dtype": "float32", "output_dtype": "float32"}
    model = mg.LinearStreamModel(spec, frames, dim, classes, seed)
    clf = Classifier(Path("."), fusion_manifest(classes, frames, threshold, fusion, frame_stride, spec), artifact, model)
    return clf, model


def _pred(p: Prediction) -> dict:
    return {"class_id": p.class_id, "view": p.view, "confidence": p.confidence, "uncertain": p.uncertain,
            "frame_index": p.frame_index, "time_s": p.time_s, "windows": p.windows,
            "probabilities": _floats(p.probabilities), "uncertainty": p.uncertainty}


def combine_cases(w) -> None:
    """`Classifier.combine_windows` on window predictions built by hand (float64 logits): the fusion
    branch picks ``key_clips`` windows at ``linspace(0, n - 1, key_clips).round()``; without
    fusion the mean of the window probabilities, no uncertainty."""
    rng = np.random.default_rng(47)
    classes, threshold = 5, 0.6
    cases = []
    for name, n, fusion in [
        ("one_window", 1, {"kind": "evidential", "prior": 0.8, "key_clips": 10}),
        ("three_windows_repeated", 3, {"kind": "evidential", "prior": 0.8, "key_clips": 10}),
        ("six_windows_three_keys_half_even", 6, {"kind": "evidential", "prior": 0.8, "key_clips": 3}),
        ("eight_windows_five_keys", 8, {"kind": "evidential", "prior": 0.8, "key_clips": 5}),
        ("nineteen_windows_exact", 19, {"kind": "evidential", "prior": 0.8, "key_clips": 10}),
        ("twenty_five_windows", 25, {"kind": "evidential", "prior": 1.5, "key_clips": 10}),
        ("one_key_clip", 7, {"kind": "evidential", "prior": 0.8, "key_clips": 1}),
        ("huge_logits", 4, {"kind": "evidential", "prior": 0.8, "key_clips": 4}),
        ("no_fusion_mean", 6, None),
    ]:
        clf = Classifier(Path("."), fusion_manifest(classes, 4, threshold, fusion), {"id": "x", "precision": "fp32", "methods": {}},
                         SimpleNamespace(name="hand", reentrant=True))
        logits = rng.normal(0, 3, (n, classes))
        if name == "huge_logits":
            logits[:, 0], logits[:, 1], logits[0, 2] = 1e4, -1e4, 800.0
        windows = []
        for i, z in enumerate(logits):
            p = clf.make_prediction(softmax(z), 3 + 2 * i, (3 + 2 * i) / 25.0, 0.0)
            p.logits = z
            if fusion is not None:
                p.uncertainty = clf.evidential(z[None])[1]
            windows.append(p)
        combined = clf.combine_windows(windows, 0.0)
        keys = None if fusion is None else [int(v) for v in np.linspace(0, n - 1, num=fusion["key_clips"]).round()]
        cases.append({"name": name, "fusion": fusion, "logits": [_floats(z) for z in logits],
                      "windows": [_pred(p) for p in windows], "keys": keys, "combined": _pred(combined)})
    w.json("combine.json", {"classes": list(NED12[:classes]), "uncertain_threshold": threshold, "cases": cases})


def history_cases(w) -> None:
    """`StreamingClassifier._fused_uncertainty` fed hand-built logits: this window and earlier ones
    ``ceil(span / hop)`` predictions apart, newest first, at most ``key_clips``; ``clear`` is what
    a new frame geometry does to the history."""
    rng = np.random.default_rng(53)
    classes = 4
    cases = []
    for name, frames, stride, hop, fusion, steps, clear_at in [
        ("span4_hop1_three_keys", 4, 1, 1, {"kind": "evidential", "prior": 0.8, "key_clips": 3}, 20, None),
        ("span21_hop5_ten_keys", 5, 5, 5, {"kind": "evidential", "prior": 0.8, "key_clips": 10}, 60, None),
        ("span5_hop2", 3, 2, 2, {"kind": "evidential", "prior": 0.5, "key_clips": 4}, 25, None),
        ("hop_longer_than_span", 2, 1, 7, {"kind": "evidential", "prior": 0.8, "key_clips": 3}, 8, None),
        ("one_key_clip", 4, 1, 1, {"kind": "evidential", "prior": 0.8, "key_clips": 1}, 6, None),
        ("cleared_by_geometry", 4, 1, 1, {"kind": "evidential", "prior": 0.8, "key_clips": 10}, 30, 13),
        ("huge_logits", 4, 1, 2, {"kind": "evidential", "prior": 0.8, "key_clips": 10}, 12, None),
    ]:
        clf = Classifier(Path("."), fusion_manifest(classes, frames, 0.5, fusion, stride), {"id": "x", "precision": "fp32", "methods": {}},
                         SimpleNamespace(name="hand", reentrant=True))
        stream = StreamingClassifier(clf, hop=hop, sector=None)
        logits = rng.normal(0, 3, (steps, classes))
        if name == "huge_logits":
            logits[::2, 0], logits[1::2, 1], logits[3, 2] = 1e4, -1e4, -800.0
        out = []
        for i, z in enumerate(logits):
            if clear_at is not None and i == clear_at:
                stream._recent_logits.clear()
            out.append(stream._fused_uncertainty(z))
        cases.append({"name": name, "frames": frames, "frame_stride": stride, "span": clf.span, "hop": hop,
                      "fusion": fusion, "clear_at": clear_at, "logits": [_floats(z) for z in logits],
                      "uncertainty": out})
    w.json("history.json", {"cases": cases})


# ---- a fusion model in the loop (the linear model of make_golden.py) ---------------------

def model_cases(w) -> None:
    """Whole clips (`predict` = the fused key clips, `predict_windows` with those starts, and
    `combine_windows` over sliding windows) and streams (`push`: the sliding fused uncertainty)
    of a fusion model."""
    clips = {"main": mg.phantom_frames(24, 36, 44), "wide": mg.phantom_frames(10, 30, 52, patient=2)}
    files = {name: w.npy(f"clip_{name}.npy", clip) for name, clip in clips.items()}
    classes, dim, threshold = 5, 6, 0.6
    models = {}
    out = []
    for model_name, frames, stride, seed, fusion in [
        ("t4", 4, 1, 61, {"kind": "evidential", "prior": 0.8, "key_clips": 10}),
        ("t3_stride2_keys7", 3, 2, 67, {"kind": "evidential", "prior": 0.8, "key_clips": 7}),
        ("t4_keys1", 4, 1, 61, {"kind": "evidential", "prior": 1.2, "key_clips": 1}),
        ("t4_keys3", 4, 1, 71, {"kind": "evidential", "prior": 0.8, "key_clips": 3}),
    ]:
        clf, model = fusion_classifier(classes, frames, threshold, fusion, seed, stride, dim)
        models[model_name] = {
            "frames": frames, "frame_stride": stride, "span": clf.span, "fusion": fusion,
            "embed_w": w.npy(f"model_{seed}_embed_w.npy", model.embed_w),
            "embed_b": w.npy(f"model_{seed}_embed_b.npy", model.embed_b),
            "head_w": w.npy(f"model_{seed}_head_w.npy", model.head_w),
            "head_b": w.npy(f"model_{seed}_head_b.npy", model.head_b)}
        clip_refs = {"t4": [("main", 0, 24, "none", 30.0), ("main", 0, 2, "none", 30.0), ("main", 0, 24, "auto", 25.0)],
                     "t3_stride2_keys7": [("main", 0, 14, "none", 30.0), ("main", 0, 24, "none", 30.0),
                                          ("main", 1, 4, "none", 30.0)],
                     "t4_keys1": [("main", 0, 24, "none", 30.0)],
                     "t4_keys3": [("main", 3, 13, "none", 30.0)]}[model_name]
        clip_cases = []
        for clip_name, start, stop, sector, fps in clip_refs:
            pixels = clips[clip_name][start:stop]
            sec = "auto" if sector == "auto" else None
            starts = [int(v) for v in key_clip_starts(len(pixels), clf.span, fusion["key_clips"])]
            windows = clf.predict_windows(pixels, fps=fps, sector=sec, starts=starts)
            whole = clf.predict(pixels, fps=fps, sector=sec)
            sliding = clf.predict_windows(pixels, hop=2, fps=fps, sector=sec)
            combined = clf.combine_windows(sliding, 0.0)
            clip_cases.append({"clip": [clip_name, start, stop], "sector": sector, "fps": fps, "key_starts": starts,
                               "windows": [_pred(p) | {"logits": _floats(p.logits)} for p in windows],
                               "clip_prediction": _pred(whole),
                               "hop2_windows": len(sliding), "hop2_combined": _pred(combined)})
        stream_refs = {"t4": [({"hop": 1, "sector": "none"}, [("main", 0, 24)]),
                              ({"hop": 3, "sector": "auto", "sector_frames": 6, "fps": 25.0}, [("main", 0, 24)]),
                              ({"hop": 1, "sector": "none"}, [("main", 0, 9), ("wide", 0, 10), ("main", 9, 16)])],
                       "t3_stride2_keys7": [({"hop": 2, "sector": "none"}, [("main", 0, 24)])],
                       "t4_keys1": [({"hop": 1, "sector": "none"}, [("main", 0, 10)])],
                       "t4_keys3": [({"hop": 1, "sector": "none"}, [("main", 0, 24)])]}[model_name]
        streams = []
        for opts, segments in stream_refs:
            kw = {k: v for k, v in opts.items() if k != "sector"}
            stream = StreamingClassifier(clf, sector="auto" if opts["sector"] == "auto" else None, **kw)
            events = []
            for clip_name, start, stop in segments:
                for frame in clips[clip_name][start:stop]:
                    pred = stream.push(frame)
                    events.append(None if pred is None else _pred(pred) | {"logits": _floats(pred.logits)})
            streams.append({"options": opts, "segments": [list(s) for s in segments], "events": events})
        out.append({"model": model_name, "clip_cases": clip_cases, "streams": streams})
    w.json("model_cases.json", {"classes": list(NED12[:classes]), "uncertain_threshold": threshold,
                                "spec": PreprocessSpec(resize=20, crop=16).to_dict(), "feature_dim": dim,
                                "clips": files, "models": models, "cases": out}, compact=True)


# ---- the manifest's fusion entry -----------------------------------------------------------

def manifest_cases(w) -> None:
    """The example manifest of make_golden.py with fusion entries, valid and broken, each judged by
    `validate_manifest`; what a classifier reads from a valid one."""
    base = mg.example_manifest()

    def variant(name: str, fusion) -> dict:
        m = json.loads(json.dumps(base))
        if fusion is not ...:
            m["fusion"] = fusion
        return {"name": name, "manifest": m}

    cases = [
        variant("no_fusion", ...),
        variant("stfm", {"kind": "evidential", "prior": 0.8, "key_clips": 10}),
        variant("prior_integer", {"kind": "evidential", "prior": 1, "key_clips": 3}),
        variant("one_key_clip", {"kind": "evidential", "prior": 0.05, "key_clips": 1}),
        variant("prior_zero", {"kind": "evidential", "prior": 0, "key_clips": 10}),
        variant("prior_negative", {"kind": "evidential", "prior": -0.8, "key_clips": 10}),
        variant("prior_string", {"kind": "evidential", "prior": "0.8", "key_clips": 10}),
        variant("key_clips_zero", {"kind": "evidential", "prior": 0.8, "key_clips": 0}),
        variant("key_clips_float", {"kind": "evidential", "prior": 0.8, "key_clips": 10.0}),
        variant("kind_unknown", {"kind": "softmax", "prior": 0.8, "key_clips": 10}),
        variant("missing_prior", {"kind": "evidential", "key_clips": 10}),
        variant("missing_kind", {"prior": 0.8, "key_clips": 10}),
        variant("extra_key", {"kind": "evidential", "prior": 0.8, "key_clips": 10, "lamb": 1.0}),
        variant("not_an_object", "evidential"),
        variant("null", None),
    ]
    for case in cases:
        try:
            validate_manifest(case["manifest"], "manifest.json")
            fusion = case["manifest"].get("fusion")
            case.update(valid=True, error="", fusion=fusion)
        except ManifestError as exc:
            case.update(valid=False, error=str(exc), fusion=None)
        case["manifest"] = {k: v for k, v in case["manifest"].items() if k == "fusion"}  # the rest is the base
    w.json("manifest.json", {"base": base, "cases": cases})


# ---- entry point ---------------------------------------------------------------------------

SECTIONS = [softplus_cases, fuse_cases, key_clip_cases, combine_cases, history_cases, model_cases, manifest_cases]


def generate(out: Path) -> Path:
    """Write the whole set into ``out`` (replaced atomically: built beside it, then swapped)."""
    return mg.write_set(out, SECTIONS, "tests/golden/make_golden_evidential.py")


def main(argv: list[str] | None = None) -> int:
    return mg.run_main(generate, DEFAULT_OUT, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
