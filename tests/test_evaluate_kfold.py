"""Held-out evaluation of checkpoints and the patient-wise K-fold experiment (tiny, real runs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from echoweave.edge.errors import EchoweaveError
from echoweave.train.engine.checkpoint import load_model
from echoweave.train.engine.evaluate import evaluate_checkpoint
from echoweave.train.engine.kfold import run_kfold
from tests.helpers.tiny import tiny_config, tiny_recipe


def test_evaluate_checkpoint_on_held_out_patients(tiny_checkpoint, tmp_path):
    res = evaluate_checkpoint(str(tiny_checkpoint), out=str(tmp_path), compare=str(tiny_checkpoint), device="cpu")
    _, meta = load_model(tiny_checkpoint)
    n_val = meta["split"]["val_clips"]
    assert res["video"]["n"] == n_val  # one video-level prediction per held-out clip
    assert res["clip"]["n"] == n_val * 2  # eval_windows=2 windows per clip in the tiny config
    assert 0.0 <= res["video"]["accuracy"] <= 1.0
    lo, hi = res["video"]["accuracy_ci95"]
    assert lo <= res["video"]["accuracy"] <= hi
    # top-3 beside top-1, with its exact interval (12 classes)
    lo3, hi3 = res["video"]["top3_accuracy_ci95"]
    assert res["video"]["accuracy"] <= res["video"]["top3_accuracy"] and lo3 <= res["video"]["top3_accuracy"] <= hi3
    # The same model compared with itself disagrees nowhere.
    assert (res["mcnemar_vs"]["b"], res["mcnemar_vs"]["c"], res["mcnemar_vs"]["p"]) == (0, 0, 1.0)
    saved = json.loads((tmp_path / "eval_metrics.json").read_text())
    assert saved["video"]["accuracy"] == pytest.approx(res["video"]["accuracy"])
    assert (tmp_path / "eval_confusion.png").stat().st_size > 1000


def test_evaluate_refuses_dataset_with_other_classes(tiny_checkpoint, tmp_path):
    state_dir = tiny_checkpoint
    meta_path = state_dir / "checkpoint.json"
    original = meta_path.read_text()
    try:
        meta = json.loads(original)
        meta["class_names"] = meta["class_names"][::-1]
        meta_path.write_text(json.dumps(meta))
        with pytest.raises(EchoweaveError, match="do not match"):
            evaluate_checkpoint(str(state_dir), out=str(tmp_path), device="cpu")
    finally:
        meta_path.write_text(original)


def _tiny_recipe(path):
    recipe = tiny_recipe({
        "gru_over_time": {"model": {"name": "gru"}},
        "tfw_consecutive": {"model": {"name": "tfw"}},
        "tfw_spaced": {"model": {"name": "tfw"}, "data": {"sampler": "spaced"}},
        # Its own data (longer clips) and a frame stride: both must reach the run.
        "tfw_contrast_fr2": {"model": {"name": "tfw", "contrast": "window_mean", "frame_stride": 2},
                             "data": {"phantom_frames": 10}},
    }, stage2_epochs=2, experiment={"mcnemar": [["tfw_consecutive", "image (single frame)"]], "cross_seed": 1,
                                    "notes": {"tfw_consecutive": "the paper's TFW"}})
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_kfold_reports_every_method_on_held_out_folds(tmp_path, monkeypatch):
    recipe = _tiny_recipe(tmp_path / "recipe.yaml")
    res = run_kfold(str(recipe), out=str(tmp_path / "exp"), folds=2, docs=str(tmp_path / "docs" / "t.md"),
                    show_progress=False)
    methods = res["methods"]
    assert set(methods) == {"image (single frame)", "image, mean vote 4 consecutive", "image, mean vote 4 spaced",
                            "gru_over_time", "tfw_consecutive", "tfw_spaced", "tfw_contrast_fr2"}
    # The variant trained on its own store (10-frame clips), with its stride and contrast recorded.
    meta = json.loads(next((tmp_path / "exp" / "fold0" / "tfw_contrast_fr2").glob("checkpoints/*/checkpoint.json"))
                      .read_text())
    assert meta["train"]["data"]["phantom_frames"] == 10 and meta["model"]["frame_stride"] == 2
    # Every model also met the 48 clips of another phantom seed's patients, in each fold.
    cross = res["cross_seed"]["methods"]
    assert set(cross) == set(methods) and all(m["videos"] == 48 and m["folds"] == 2 for m in cross.values())
    # Every clip of the dataset is scored exactly once at video level (held out in one fold).
    n_clips = 4 * 12
    for name, m in methods.items():
        assert m["pooled"]["video"]["n"] == n_clips, name
        assert m["num_folds"] == 2
    # Single-frame evaluation scores every frame; votes score windows.
    assert methods["image (single frame)"]["pooled"]["clip"]["n"] == n_clips * 8
    test = res["mcnemar_video"]["tfw_consecutive vs image (single frame)"]
    assert test["n"] == n_clips and 0.0 <= test["p"] <= 1.0
    md = (tmp_path / "docs" / "t.md").read_text()
    assert "Synthetic data" in md and "tfw_spaced" in md and "Motion-only" in md
    assert "another phantom seed" in md and "**tfw_consecutive**: the paper's TFW" in md
    # top-3 in the pooled tables (with its CI), across folds and on the other seed's patients
    assert md.count("top-3 [95% CI]") == 2 and "| method | accuracy | macro F1 | top-3 |" in md
    assert "| method | accuracy | top-3 |" in md
    for name, m in methods.items():
        assert m["pooled"]["video"]["top3_accuracy"] >= m["pooled"]["video"]["accuracy"], name
        assert m["summary"]["video"]["top3_accuracy"]["n"] == 2
        assert 0.0 <= cross[name]["top3_mean"] <= 1.0 and cross[name]["top3_std"] >= 0.0
    assert (tmp_path / "exp" / "results.json").is_file()
    assert (tmp_path / "exp" / "confusion_tfw_consecutive.png").is_file()
    # An interrupted experiment continues: complete runs are loaded and scored again, not retrained.
    weights = {f: f.stat().st_mtime_ns for f in (tmp_path / "exp").glob("fold*/*/checkpoints/*/model.safetensors")}
    import echoweave.train.engine.run as run_module

    def no_datasets(*args, **kwargs):  # a complete run's clips (cached features) must not be embedded again
        raise AssertionError("a complete run built its training datasets on --resume")

    monkeypatch.setattr(run_module, "_datasets", no_datasets)
    again = run_kfold(str(recipe), out=str(tmp_path / "exp"), folds=2, show_progress=False, resume=True)
    assert {f: f.stat().st_mtime_ns for f in weights} == weights and len(weights) >= 2 * 5  # 5 runs a fold
    for name, m in methods.items():
        assert again["methods"][name]["pooled"]["video"] == m["pooled"]["video"], name
    with pytest.raises(EchoweaveError, match="already holds a run"):
        run_kfold(str(recipe), out=str(tmp_path / "exp"), folds=2, show_progress=False)
    monkeypatch.undo()


def test_kfold_with_too_few_patients_is_an_error(tmp_path):
    recipe = _tiny_recipe(tmp_path / "recipe.yaml")
    with pytest.raises(EchoweaveError):
        run_kfold(str(recipe), out=str(tmp_path / "exp"), folds=5, show_progress=False)


def test_motion_pair_accuracy_counts_only_pair_clips():
    from echoweave.train.engine.evaluate import motion_pair_accuracy

    names = ["A", "B", "C"]
    labels = np.array([0, 1, 0, 1, 2])
    preds = np.array([0, 0, 0, 1, 1])
    out = motion_pair_accuracy(labels, preds, names, [("A", "B")])
    assert out == {"A|B": {"accuracy": 0.75, "n": 4}}


def test_a_run_on_a_handed_over_store_records_that_store_so_export_finds_its_held_out_patients(tmp_path):
    """A store with more patients than the config names (k-fold, experiments) used to leave a
    checkpoint whose held-out patients export could not find ("no held-out clips")."""
    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.export.calibration import held_out_set
    from echoweave.export.pipeline import load_dataset
    from echoweave.train.engine.data import load_store
    from echoweave.train.engine.run import run_training

    cfg = tiny_config(tmp_path / "run", optim={"epochs": 1})
    bigger = load_store(tiny_config(tmp_path, data={"phantom_patients": 5}).data, show_progress=False)
    held = np.flatnonzero(bigger.patients == bigger.patients[-1])  # the 5th patient, absent from a 3-patient phantom
    result = run_training(cfg, store=bigger, train_idx=np.setdiff1d(np.arange(len(bigger)), held), val_idx=held,
                          show_progress=False)
    meta = json.loads((Path(result.checkpoint) / "checkpoint.json").read_text())
    assert meta["train"]["data"]["phantom_patients"] == 5
    store = load_dataset(meta, Path(result.checkpoint))
    windows = held_out_set(store, meta, PreprocessSpec(**meta["preprocessing"]), 4, 2)
    assert len(windows) == 2 * 12
