"""Selective classification (issue 14): accuracy on the most certain videos, evidential vs softmax."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from echoweave.edge.clip import Clip
from echoweave.edge.errors import EchoweaveError
from echoweave.edge.evidential import fuse
from echoweave.train.evaluation.selective import (
    annotate_windows,
    risk_coverage,
    selective_markdown,
    selective_summary,
    video_outcomes,
)


def _pred():
    # Two videos of 3 windows each (ids 7 and 2), K = 3; plus one window of video 5.
    logits = np.array([[4.0, 0.0, -1.0], [3.0, 1.0, 0.0], [-2.0, 5.0, 0.0],    # video 7: label 0
                       [0.1, 0.0, 0.2], [0.0, 0.3, 0.1], [0.2, 0.1, 0.0],      # video 2: label 2
                       [9.0, -3.0, -3.0]])                                      # video 5: label 0
    e = np.exp(logits - logits.max(1, keepdims=True))
    return {"logits": logits, "probs": e / e.sum(1, keepdims=True), "labels": np.array([0, 0, 0, 2, 2, 2, 0]),
            "video_ids": np.array([7, 7, 7, 2, 2, 2, 5]), "degraded": np.array([0, 0, 0, 1, 1, 1, 0], bool)}


def test_evidential_outcomes_are_the_edge_fusion_and_softmax_the_mean_vote():
    pred = _pred()
    ev = video_outcomes(pred, evidential_prior=0.8)
    assert ev["video_ids"].tolist() == [2, 5, 7]
    for row, vid in enumerate(ev["video_ids"]):
        sel = pred["video_ids"] == vid
        cls, _, k_over_s = fuse(pred["logits"][sel], 0.8)
        assert ev["preds"][row] == cls
        assert ev["uncertainty"][row] == pytest.approx(min(1.0, k_over_s * sel.sum() * 0.8))
    assert ev["degraded"].tolist() == [True, False, False]
    # The near-zero logits of video 2 carry little evidence: the most uncertain video.
    assert ev["uncertainty"].argmax() == 0
    sm = video_outcomes(pred)
    mean7 = pred["probs"][:3].mean(0)
    assert sm["preds"][2] == mean7.argmax() and sm["uncertainty"][2] == pytest.approx(1 - mean7.max())
    with pytest.raises(EchoweaveError, match="logits"):
        video_outcomes({k: v for k, v in pred.items() if k != "logits"}, evidential_prior=0.8)


def test_selective_summary_keeps_the_most_certain_videos():
    correct = np.array([True, False, True, True, False, True, True, True, False, True])
    unc = np.array([0.1, 0.9, 0.2, 0.3, 0.8, 0.15, 0.05, 0.4, 0.7, 0.6])
    s = selective_summary(correct, unc, degraded=np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], bool))
    # Sorted by uncertainty: the seven right videos, then the three wrong ones.
    assert s["coverage"]["0.5"] == {"n": 5, "accuracy": 1.0, "accuracy_ci95": s["coverage"]["0.5"]["accuracy_ci95"]}
    assert s["coverage"]["0.8"]["accuracy"] == 7 / 8 and s["coverage"]["1"]["accuracy"] == 0.7
    assert s["aurc"] == pytest.approx(s["optimal_aurc"])  # a perfect ranking
    q = s["quality"]
    assert q["clean"]["accuracy"] == 1.0 and q["degraded"]["accuracy"] == 0.0 and q["degraded"]["n"] == 3
    assert q["degraded_share_of_abstained_at_0.5"] == pytest.approx(3 / 5)
    # A ranking that puts the errors first is worse than optimal.
    worse = selective_summary(correct, -unc)
    assert worse["aurc"] > s["aurc"] and worse["coverage"]["0.5"]["accuracy"] == pytest.approx(0.4)
    cov, acc = risk_coverage(correct, unc)
    assert cov[-1] == 1.0 and acc[-1] == pytest.approx(0.7) and acc[:7].tolist() == [1.0] * 7
    with pytest.raises(EchoweaveError):
        selective_summary(correct, unc[:3])
    md = selective_markdown({"stfm": {"certainty": "evidential", **s}, "tfw": {"certainty": "softmax", **worse}})
    assert md[0].startswith("| method | certainty | acc @ 50% most certain") and len(md) == 4
    assert "1.000 [" in md[2] and "0.000 (3)" in md[2]


def test_annotate_windows_reads_clip_quality_and_gives_dirichlet_means():
    pred = _pred()
    clips = {i: Clip(np.zeros((2, 8, 8), np.uint8), 30.0, "P", 0, meta={"quality": {"degraded": i == 2}})
             for i in (2, 5, 7)}
    out = annotate_windows(pred, clips, 0.8)
    assert out["degraded"].tolist() == [False] * 3 + [True] * 3 + [False]
    alpha = np.logaddexp(0, pred["logits"]) + 0.8
    np.testing.assert_allclose(out["probs"], alpha / alpha.sum(1, keepdims=True))
    np.testing.assert_allclose(annotate_windows(pred, clips)["probs"], pred["probs"])  # softmax kept


def test_kfold_with_an_evidential_model_and_degraded_clips_writes_the_selective_table(tmp_path):
    from echoweave.train.engine.kfold import run_kfold
    from tests.helpers.tiny import tiny_recipe

    recipe = tiny_recipe({
        "tfw": {"model": {"name": "tfw"}},
        "stfm": {"init_from": None, "freeze_backbone": False, "cache_features": False,
                 "model": {"name": "stfm", "width": 8, "frames": 3, "frame_stride": 2, "lstm_hidden": 16,
                           "stream_dim": 16},
                 "optim": {"loss": "reedl", "evidence_prior": 0.8, "optimizer": "adamw"}},
    }, experiment={"image_votes": [], "selective": ["stfm", "tfw", "absent"]}, phantom_degraded=0.5, eval_windows=3)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    res = run_kfold(str(path), out=str(tmp_path / "exp"), folds=2, docs=str(tmp_path / "t.md"), show_progress=False)
    sel = res["selective"]
    assert list(sel) == ["stfm", "tfw"]
    assert sel["stfm"]["certainty"] == "evidential" and sel["tfw"]["certainty"] == "softmax"
    for r in sel.values():
        assert r["videos"] == 48 and r["coverage"]["1"]["n"] == 48 and r["coverage"]["0.5"]["n"] == 24
        q = r["quality"]
        assert q["clean"]["n"] + q["degraded"]["n"] == 48 and 0 < q["degraded"]["n"] < 48
        assert 0 < q["clean"]["mean_uncertainty"] <= 1
    md = (tmp_path / "t.md").read_text()
    assert "Selective classification" in md and "| stfm | evidential |" in md
    assert json.loads((tmp_path / "exp" / "results.json").read_text())["selective"]["stfm"]["videos"] == 48
