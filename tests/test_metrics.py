"""Clip/video-level metrics, K-fold pooling and report files, checked on hand-computed toys."""
import json
import struct

import numpy as np
import pytest

from echoweave.edge.views import NED12
from echoweave.train.evaluation import (
    EvaluationInputError,
    aggregate_by_video,
    classification_metrics,
    clip_and_video_metrics,
    metrics_table_markdown,
    plot_confusion_matrix,
    pool_folds,
    write_metrics_json,
)
from echoweave.train.evaluation.metrics import top_k_accuracy
from echoweave.train.evaluation.report import confusion_figure_size
from echoweave.train.evaluation.stats import clopper_pearson_ci

NAMES3 = ("A", "B", "C")


def one_hot_probs(pred, num_classes, top=0.6):
    """Probabilities whose argmax is `pred`, rest spread evenly (rows sum to 1)."""
    pred = np.asarray(pred)
    probs = np.full((pred.size, num_classes), (1 - top) / (num_classes - 1))
    probs[np.arange(pred.size), pred] = top
    return probs


# Toy by hand (rows = true, columns = predicted):
#   A: [2, 1, 0]   B: [0, 2, 1]   C: [1, 0, 3]      correct 7 / 10
# precision = recall = F1 = (2/3, 2/3, 3/4); macro F1 = 25/36; weighted F1 = 0.7
# kappa: p_o = 0.7, p_e = (3*3 + 3*3 + 4*4) / 100 = 0.34 -> (0.7 - 0.34) / 0.66 = 6/11
TOY_LABELS = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
TOY_PRED = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0])


def test_classification_metrics_three_class_toy():
    m = classification_metrics(TOY_LABELS, one_hot_probs(TOY_PRED, 3), NAMES3)
    assert m["n"] == 10 and m["num_classes"] == 3 and m["class_names"] == list(NAMES3)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["top1_accuracy"] == pytest.approx(0.7)
    assert m["top3_accuracy"] is None and m["top3_accuracy_ci95"] is None  # K = 3: top-3 is trivially 1
    assert m["f1_macro"] == pytest.approx(25 / 36)
    assert m["precision_macro"] == pytest.approx(25 / 36)
    assert m["recall_macro"] == pytest.approx(25 / 36)
    assert m["f1_weighted"] == pytest.approx(0.7)
    assert m["cohen_kappa"] == pytest.approx(6 / 11)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert m["per_class"]["C"] == pytest.approx(
        {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4})
    assert m["per_class"]["A"]["support"] == 3
    assert m["accuracy_ci95"] == pytest.approx([0.3475, 0.9333], abs=1e-4)


def test_top_k_accuracy_by_rank_of_true_class():
    # K = 5; the true class sits at rank 1, 2, 3, 4 -> top-1 = 1/4, top-3 = 3/4.
    ranked = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    probs = np.stack([ranked] * 4)
    labels = np.array([0, 1, 2, 3])
    m = classification_metrics(labels, probs, list("abcde"))
    assert m["top1_accuracy"] == pytest.approx(0.25)
    assert m["top3_accuracy"] == pytest.approx(0.75)
    # exact binomial interval of 3 hits in 4, as for top-1 (Clopper–Pearson)
    assert m["top3_accuracy_ci95"] == pytest.approx([0.19412, 0.99369], abs=1e-5)
    assert m["top3_accuracy_ci95"] == pytest.approx(list(clopper_pearson_ci(3, 4)))
    # a class never predicted and never present gets zeros, not a warning or NaN
    assert m["per_class"]["e"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_binary_case_and_undefined_kappa():
    m = classification_metrics([0, 1, 1, 0], one_hot_probs([0, 1, 0, 0], 2), ["x", "y"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["top1_accuracy"] == pytest.approx(0.75)
    assert m["top3_accuracy"] is None
    one_class = classification_metrics([1, 1], one_hot_probs([1, 1], 3), NAMES3)
    assert one_class["accuracy"] == 1.0
    assert one_class["cohen_kappa"] is None  # 0/0: undefined, not NaN in the JSON


def test_aggregate_by_video_means_probs_in_first_seen_order():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6]])
    ids = np.array(["b", "a", "b", "c", "a"])
    labels = np.array([0, 1, 0, 0, 1])
    probs_v, labels_v, ids_v = aggregate_by_video(probs, ids, labels)
    assert ids_v.tolist() == ["b", "a", "c"]
    assert labels_v.tolist() == [0, 1, 0]
    np.testing.assert_allclose(probs_v, [[0.6, 0.4], [0.3, 0.7], [0.6, 0.4]])


def test_video_level_can_differ_from_clip_level():
    # all clips are class 0; video 7 = three clips, video 8 = one clip
    right_mean = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.3, 0.7]])
    r = clip_and_video_metrics([0, 0, 0, 0], right_mean, ["x", "y"], video_ids=[7, 7, 7, 8])
    assert r["clip"]["accuracy"] == pytest.approx(0.25)   # only clip 0 is right
    assert r["video"]["n"] == 2
    assert r["video"]["accuracy"] == pytest.approx(0.5)   # video 7 mean (0.583, 0.417): right
    wrong_mean = np.array([[0.6, 0.4], [0.55, 0.45], [0.2, 0.8], [0.7, 0.3]])
    r = clip_and_video_metrics([0, 0, 0, 0], wrong_mean, ["x", "y"], video_ids=[7, 7, 7, 8])
    assert r["clip"]["accuracy"] == pytest.approx(0.75)
    assert r["video"]["accuracy"] == pytest.approx(0.5)   # video 7 mean (0.45, 0.55): wrong
    assert clip_and_video_metrics([0], right_mean[:1], ["x", "y"])["video"] is None


def test_aggregate_rejects_inconsistent_video_labels():
    with pytest.raises(EvaluationInputError, match=r"video 'v2' has clips with different labels \[0, 2\]"):
        aggregate_by_video(one_hot_probs([0, 1, 2], 3), ["v1", "v2", "v2"], [1, 0, 2])


@pytest.mark.parametrize("labels, probs, match", [
    ([], np.zeros((0, 3)), "empty"),
    ([0, 1], np.array([[0.5, np.nan, 0.5], [0.2, 0.3, 0.5]]), "NaN"),
    ([0, 3], one_hot_probs([0, 1], 3), r"class id 3, outside range \[0, 3\)"),
    ([0, -1], one_hot_probs([0, 1], 3), "must be >= 0"),
    ([0, 1, 2], one_hot_probs([0, 1], 3), "mismatched lengths"),
    ([0, 1], np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]]), "negative"),
    ([0, 1], np.array([[2.0, 1.0, 0.5], [0.1, 0.2, 3.0]]), "apply softmax"),
    ([0, 1], np.array([0.5, 0.5]), "2-D"),
    ([0.5, 1], one_hot_probs([0, 1], 3), "fractional"),
])
def test_bad_input_raises_clear_value_error(labels, probs, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(labels, probs, NAMES3)


def test_class_name_count_must_match_columns():
    with pytest.raises(EvaluationInputError, match="2 class names for 3"):
        classification_metrics([0, 1], one_hot_probs([0, 1], 3), ["A", "B"])


def _fold(labels, pred, video_ids):
    return {"labels": np.array(labels), "probs": one_hot_probs(pred, 3),
            "video_ids": np.array(video_ids)}


def test_pool_folds_pooled_and_mean_std():
    folds = [_fold([0, 1, 2, 2], [0, 1, 0, 1], ["p1a", "p1b", "p1c", "p1c"]),  # clip acc 2/4
             _fold([1, 2], [1, 2], ["p2a", "p2b"])]                             # clip acc 2/2
    r = pool_folds(folds, NAMES3)
    assert r["num_folds"] == 2
    assert [f["clip"]["accuracy"] for f in r["folds"]] == pytest.approx([0.5, 1.0])
    assert r["pooled"]["clip"]["accuracy"] == pytest.approx(4 / 6)
    assert r["pooled"]["clip"]["n"] == 6
    acc = r["summary"]["clip"]["accuracy"]
    assert acc["mean"] == pytest.approx(0.75)
    assert acc["std"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    f1 = r["summary"]["clip"]["f1_macro"]
    assert f1["mean"] == pytest.approx(np.mean([f["clip"]["f1_macro"] for f in r["folds"]]))
    assert r["pooled"]["video"]["n"] == 5
    # video p1c: clips predicted 0 and 1 (label 2) -> mean ties 0/1 -> class 0: wrong
    assert r["folds"][0]["video"]["accuracy"] == pytest.approx(2 / 3)


def test_pool_folds_video_level_values():
    folds = [_fold([0, 0, 2, 2], [0, 1, 2, 2], ["a", "a", "b", "b"]),
             _fold([1, 1, 1], [1, 0, 0], ["c", "c", "d"])]
    r = pool_folds(folds, NAMES3)
    # video a: mean of (0.6,0.2,0.2) and (0.2,0.6,0.2) ties -> argmax picks class 0: right
    # video b right, video c: tie between 0 and 1 -> class 0: wrong, video d wrong
    assert [f["video"]["accuracy"] for f in r["folds"]] == pytest.approx([1.0, 0.0])
    assert r["pooled"]["video"]["accuracy"] == pytest.approx(0.5)
    assert r["pooled"]["video"]["confusion_matrix"] == [[1, 0, 0], [2, 0, 0], [0, 0, 1]]


def test_pool_folds_rejects_leaks_and_mixed_inputs():
    with pytest.raises(EvaluationInputError, match="appears in folds 0 and 1"):
        pool_folds([_fold([0], [0], ["v"]), _fold([0], [0], ["v"])], NAMES3)
    no_ids = {"labels": np.array([0]), "probs": one_hot_probs([0], 3)}
    with pytest.raises(EvaluationInputError, match="every fold or for none"):
        pool_folds([_fold([0], [0], ["v"]), no_ids], NAMES3)
    with pytest.raises(EvaluationInputError, match="fold 1 labels"):
        pool_folds([no_ids, {"labels": np.array([5]), "probs": one_hot_probs([0], 3)}])
    with pytest.raises(EvaluationInputError, match=r"fold 0 lacks \['probs'\]"):
        pool_folds([{"labels": np.array([0])}])
    with pytest.raises(EvaluationInputError, match="no folds"):
        pool_folds([])
    r = pool_folds([no_ids, no_ids])
    assert r["pooled"]["video"] is None and r["summary"]["video"] is None
    assert r["pooled"]["clip"]["class_names"] == ["0", "1", "2"]


def test_write_metrics_json_round_trip(tmp_path):
    m = classification_metrics(TOY_LABELS, one_hot_probs(TOY_PRED, 3), NAMES3)
    extra = {"m": m, "np_float": np.float32(0.25), "np_int": np.int64(3),
             "array": np.arange(3), "nan": float("nan"), "tuple": (1, 2), "flag": np.bool_(True)}
    path = write_metrics_json(extra, tmp_path / "sub" / "metrics.json")
    back = json.loads(path.read_text())
    assert back["m"] == json.loads(json.dumps(m))  # everything classification_metrics returns
    assert back["m"]["cohen_kappa"] == pytest.approx(6 / 11)
    assert back["np_float"] == 0.25 and back["np_int"] == 3 and back["array"] == [0, 1, 2]
    assert back["nan"] is None and back["tuple"] == [1, 2] and back["flag"] is True
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]  # no temp left


def test_write_metrics_json_rejects_unknown_objects_and_keeps_old_file(tmp_path):
    path = write_metrics_json({"a": 1}, tmp_path / "m.json")
    with pytest.raises(EvaluationInputError, match="cannot write object"):
        write_metrics_json({"a": object()}, path)
    assert json.loads(path.read_text()) == {"a": 1}


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR follows the signature
    return width, height


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_matrix_writes_png_of_expected_size(tmp_path, normalize):
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 20, size=(12, 12)) + 40 * np.eye(12, dtype=int)
    cm[3] = 0  # a class with no support must not divide by zero
    path = plot_confusion_matrix(cm, NED12, tmp_path / "cm.png", normalize=normalize, dpi=50)
    width_in, height_in = confusion_figure_size(12)
    assert path.stat().st_size > 10_000
    assert _png_size(path) == (round(width_in * 50), round(height_in * 50))
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]


def test_plot_confusion_matrix_rejects_bad_shapes(tmp_path):
    with pytest.raises(EvaluationInputError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(EvaluationInputError, match="2 class names for 3"):
        plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "x.png")


def test_metrics_table_markdown():
    m = classification_metrics(TOY_LABELS, one_hot_probs(TOY_PRED, 3), NAMES3)
    table = metrics_table_markdown({"TFW|r50": m})
    assert table.splitlines() == [
        "| model | accuracy [95% CI] | macro F1 | kappa | top-3 [95% CI] | N |",
        "|---|---|---|---|---|---|",
        "| TFW\\|r50 | 0.700 [0.348, 0.933] | 0.694 | 0.545 | – | 10 |",
    ]
    with pytest.raises(EvaluationInputError, match="lacks metrics"):
        metrics_table_markdown({"x": {"accuracy": 0.5}})


def test_top3_in_the_table_and_across_folds():
    # K = 4, 5 clips: true class at rank 1, 2, 3, 4, 1 -> top-1 2/5, top-3 4/5
    probs = np.tile([0.4, 0.3, 0.2, 0.1], (5, 1))
    labels = np.array([0, 1, 2, 3, 0])
    assert top_k_accuracy(labels, probs, 1) == pytest.approx(0.4)
    assert top_k_accuracy(labels, probs, 3) == pytest.approx(0.8)
    assert top_k_accuracy(labels, probs, 4) is None  # k >= K: trivially 1
    m = classification_metrics(labels, probs, list("abcd"))
    lo, hi = clopper_pearson_ci(4, 5)
    row = metrics_table_markdown({"m": m}).splitlines()[2]
    assert row == f"| m | 0.400 [{m['accuracy_ci95'][0]:.3f}, {m['accuracy_ci95'][1]:.3f}] | " \
                  f"{m['f1_macro']:.3f} | {m['cohen_kappa']:.3f} | 0.800 [{lo:.3f}, {hi:.3f}] | 5 |"
    # per-fold top-3 spread: fold 0 has 4/5 in the top 3, fold 1 (ranks 3, 2, 1, 0) 1/2: class 1, not 0
    fold1 = {"labels": np.array([0, 1]), "probs": np.tile([0.1, 0.2, 0.3, 0.4], (2, 1))}
    pooled = pool_folds([{"labels": labels, "probs": probs}, fold1], list("abcd"))
    assert pooled["summary"]["clip"]["top3_accuracy"] == pytest.approx({"mean": 0.65, "std": 0.212132, "n": 2})
    assert pooled["pooled"]["clip"]["top3_accuracy"] == pytest.approx(5 / 7)
    # with K <= 3 top-3 is left out of the summary rather than reported as 1
    three = pool_folds([{"labels": TOY_LABELS, "probs": one_hot_probs(TOY_PRED, 3)}] * 2, NAMES3)
    assert "top3_accuracy" not in three["summary"]["clip"]
