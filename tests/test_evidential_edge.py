"""Evidential models on the edge (issue 14): a model trained with the evidential loss exports a
manifest ``fusion`` entry; `Classifier.predict` fuses its key clips (`echoweave.edge.evidential`)
and reports the uncertainty, streams fuse a sliding set of windows, `echoweave classify` prints
it; a cross-entropy model has none."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from echoweave.edge.evidential import fuse, key_clip_starts  # noqa: E402
from tests.helpers.model_acceptance import manifest_of, train_and_export  # noqa: E402

torch.set_num_threads(1)
STFM = {"name": "stfm", "lstm_hidden": 16, "stream_dim": 16, "frames": 3, "frame_stride": 2}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A 1-epoch tiny STFM trained with the evidential loss, exported to ONNX fp32."""
    from echoweave.train.engine.run import run_training
    from tests.helpers.edge_artifacts import exported_artifacts
    from tests.helpers.tiny import tiny_config

    cfg = tiny_config(tmp_path_factory.mktemp("stfm"), model=STFM, optim={"epochs": 1, "loss": "reedl"})
    ckpt = run_training(cfg, show_progress=False).checkpoint
    return exported_artifacts(ckpt, formats=("onnx",))


def test_the_manifest_says_the_model_fuses_evidence(exported):
    assert manifest_of(exported)["fusion"] == {"kind": "evidential", "prior": 0.8, "key_clips": 10}


def test_predict_fuses_the_key_clips(exported):
    import echoweave.edge as ew
    from tests.conftest import make_fan_clip

    clf = ew.load(exported, runtime="onnxruntime")
    frames = make_fan_clip(t=30, h=48, w=64, seed=2)[0]
    pred = clf.predict(frames)
    # the same key clips run one by one, fused by hand
    x = clf.preprocess(frames)
    starts = key_clip_starts(len(frames), clf.span, 10)
    logits = np.stack([clf.forward_window(x[s : s + clf.span : clf.frame_stride]) for s in starts])
    class_id, probs, u = fuse(logits, 0.8)
    assert pred.windows == 10 and pred.class_id == class_id
    np.testing.assert_allclose(pred.probabilities, probs, rtol=1e-6)
    assert pred.uncertainty == pytest.approx(u * 10 * 0.8) and 0.0 < pred.uncertainty <= 1.0
    assert json.loads(json.dumps(pred.to_dict()))["uncertainty"] == pytest.approx(pred.uncertainty, abs=1e-6)
    # each window of predict_windows carries its own (one-clip) uncertainty
    (w,) = clf.predict_windows(frames, starts=[0])
    assert w.uncertainty == pytest.approx(fuse(logits[:1], 0.8).uncertainty * 0.8)
    clf.close()


def test_a_stream_fuses_windows_one_span_apart(exported):
    import echoweave.edge as ew
    from tests.conftest import make_fan_clip

    clf = ew.load(exported, runtime="onnxruntime")
    frames = make_fan_clip(t=40, h=48, w=64, seed=4)[0]
    stream = clf.stream(sector=None)
    preds = [p for p in (stream.push(f) for f in frames) if p is not None]
    assert all(p.uncertainty is not None and 0 < p.uncertainty <= 1 for p in preds)
    last = preds[-1]
    chosen = [p.logits for p in preds[::-1][:: clf.span][:10]]
    assert last.uncertainty == pytest.approx(fuse(np.stack(chosen), 0.8).uncertainty * len(chosen) * 0.8)
    clf.close()


def test_classify_prints_the_uncertainty(exported, tmp_path, capsys):
    from echoweave.cli import main
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom
    from tests.conftest import make_fan_clip

    write_dicom(Clip(frames=make_fan_clip(t=12, h=48, w=64, seed=3)[0], fps=25.0, patient_id="P1", source="x"),
                tmp_path / "loop.dcm")
    main(["classify", str(tmp_path / "loop.dcm"), "--model", str(exported), "--runtime", "onnxruntime", "--json"])
    (result,) = json.loads(capsys.readouterr().out)["results"]
    # every sliding window is run (for the timeline); the clip answer fuses 10 of them spread evenly
    assert result["prediction"]["windows"] == 10 and 0 < result["prediction"]["uncertainty"] <= 1
    import echoweave.edge as ew

    clf = ew.load(exported, runtime="onnxruntime")
    assert result["prediction"]["uncertainty"] == pytest.approx(clf.predict(make_fan_clip(t=12, h=48, w=64, seed=3)[0]).uncertainty, abs=1e-5)
    clf.close()
    main(["classify", str(tmp_path / "loop.dcm"), "--model", str(exported), "--runtime", "onnxruntime"])
    assert " uncertainty 0." in capsys.readouterr().out


def test_classify_csv_and_timeline_carry_the_uncertainty(exported, tmp_path):
    import csv

    from echoweave.cli import main
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom
    from tests.conftest import make_fan_clip

    write_dicom(Clip(frames=make_fan_clip(t=40, h=48, w=64, seed=4)[0], fps=25.0, patient_id="P1", source="x"),
                tmp_path / "scan.dcm")
    main(["classify", str(tmp_path / "scan.dcm"), "--model", str(exported), "--runtime", "onnxruntime",
          "--csv", str(tmp_path / "r.csv"), "--timeline", str(tmp_path / "t.png")])
    (row,) = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert 0 < float(row["uncertainty"]) <= 1
    doc = json.loads((tmp_path / "t.json").read_text())
    trace = doc["uncertainty"]["uncertainty"]
    assert len(trace) == len(doc["uncertainty"]["time_s"]) > 1 and all(0 < u <= 1 for u in trace)
    # each window alone (N = 1): the segment's mean is the mean of its windows' uncertainties
    assert all(0 < s["mean_uncertainty"] <= 1 for s in doc["segments"])
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_a_cross_entropy_model_has_no_uncertainty(tmp_path):
    import echoweave.edge as ew
    from tests.conftest import make_fan_clip

    folder = train_and_export(tmp_path, {"name": "tfw", "gru_hidden": 16}, ("onnx",), ("fp32",))[1]
    assert "fusion" not in manifest_of(folder)
    clf = ew.load(folder, runtime="onnxruntime")
    pred = clf.predict(make_fan_clip(t=8, h=48, w=64, seed=1)[0])
    assert pred.uncertainty is None and pred.to_dict()["uncertainty"] is None
    clf.close()
