"""Patient-wise K-fold experiments (the shape of the paper's Table 2).

Per fold: train the stage-1 image model on the other folds, evaluate it three ways (single
frame, mean voting over 4 consecutive frames, mean voting over 4 spaced frames), then train
every stage-2 variant of the recipe from that same stage-1 model and evaluate it (a variant
with its own ``stage1`` block, e.g. another backbone, first trains and scores that stage 1 as
``<variant>_stage1``, mean vote over consecutive windows). Variants are trained in the recipe's
order, so a variant distilled from another (``distill: {teacher: <variant>}``) learns from that
fold's teacher, which must be listed before it. Only the
held-out fold is ever scored; no model is selected on it (every run keeps its last epoch), so
the training runs' logged validation on that fold leaks nothing into the reported numbers.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from echoweave.edge.atomic import write_text_atomic
from echoweave.edge.errors import EchoweaveError
from echoweave.train.data.splits import patient_kfold
from echoweave.train.engine.data import load_store, store_key
from echoweave.train.engine.evaluate import motion_pair_accuracy, predict_windows, video_predictions
from echoweave.train.engine.recipe import load_recipe, own_stage1, resolve_config_path, stage_config
from echoweave.train.engine.run import run_training
from echoweave.train.evaluation import (
    aggregate_by_video,
    mcnemar_exact,
    metrics_table_markdown,
    plot_confusion_matrix,
    pool_folds,
    write_metrics_json,
)
from echoweave.train.evaluation.metrics import top_k_accuracy
from echoweave.train.evaluation.selective import annotate_windows, selective_markdown, selective_table


def run_kfold(recipe_path: str, out: str, folds: int = 5, only_folds: list[int] | None = None,
              docs: str | None = None, show_progress: bool = True, resume: bool = False) -> dict:
    """Run the experiment; writes ``out/results.json``, ``out/results.md`` and confusion PNGs.

    With ``resume``, every run continues from its last checkpoint in ``out``: a complete run is
    loaded and scored again, not retrained, so an interrupted experiment (hours on a CPU) loses
    at most one epoch.
    """
    t0 = time.time()
    recipe = load_recipe(recipe_path)
    out = Path(out)
    exp = recipe.get("experiment", {})
    cfg1 = stage_config(recipe, "stage1", out / "fold0")
    stores = _StoreCache(show_progress)
    store = stores.get(cfg1.data)
    class_names = list(store.class_names)
    splits = patient_kfold(store.patients, store.labels, k=folds, seed=cfg1.seed)
    variants = list(recipe.get("variants", {})) or ["stage2"]
    votes = exp.get("image_votes", ["consecutive", "spaced"])
    windows = cfg1.data.eval_windows
    per_method: dict[str, list[dict]] = {}
    # Every fold's models also meet the patients of another phantom seed: people no fold saw.
    cross_seed = exp.get("cross_seed") if cfg1.data.path == "phantom" else None
    cross: dict[str, list[dict]] = {}

    def score(name, model, data_cfg, store_, idx, sampler, n_windows, prior=None):
        pred = predict_windows(model, store_, idx, data_cfg.preprocessing, sampler, n_windows, _rt_of(model))
        per_method.setdefault(name, []).append(annotate_windows(pred, store_.clips, prior))
        if cross_seed is not None:
            other = stores.get(dataclasses.replace(data_cfg, phantom_seed=int(cross_seed)))
            cross.setdefault(name, []).append(predict_windows(
                model, other, np.arange(len(other)), data_cfg.preprocessing, sampler, n_windows, _rt_of(model)))

    again = {"resume": True} if resume else {}
    for k, (train_idx, test_idx) in enumerate(splits):
        if only_folds is not None and k not in only_folds:
            continue
        fold_dir = out / f"fold{k}"
        print(f"== fold {k + 1}/{folds}: {len(train_idx)} training clips, {len(test_idx)} held-out clips")
        r1 = run_training(stage_config(recipe, "stage1", fold_dir, **again), store=store, train_idx=train_idx,
                          val_idx=test_idx, show_progress=show_progress)
        score("image (single frame)", r1.model, cfg1.data, store, test_idx, "frame", windows)
        for sampler in votes:
            score(f"image, mean vote 4 {sampler}", r1.model, cfg1.data, store, test_idx, sampler, windows)
        test_patients = set(store.patients[test_idx].tolist())
        trained = {"stage1"}  # stages of this fold done so far (a distillation teacher must be one)
        for name in variants:
            # A variant with its own stage 1 (another backbone) trains and scores it first.
            for stage in [s for s in (own_stage1(recipe, name), name) if s]:
                cfg2 = stage_config(recipe, stage, fold_dir, **again)
                _check_teacher_trained(cfg2, fold_dir, trained, stage)
                # A variant may change the data (phantom settings, another dataset): it gets its own
                # store, split by the same held-out patients.
                store2 = stores.get(cfg2.data)
                _check_same_classes(store, store2, stage)
                held = np.isin(store2.patients, list(test_patients))
                train2, test2 = np.flatnonzero(~held), np.flatnonzero(held)
                r2 = run_training(cfg2, store=store2, train_idx=train2, val_idx=test2, show_progress=show_progress)
                trained.add(stage)
                sampler = "consecutive" if cfg2.stage == "image" else cfg2.data.sampler
                score(stage, r2.model, cfg2.data, store2, test2, sampler, cfg2.data.eval_windows,
                      cfg2.optim.evidence_prior if cfg2.optim.loss == "reedl" else None)
    if not per_method:
        raise EchoweaveError(f"no fold was run (only_folds={only_folds}, folds={folds})")
    results = _summarise(per_method, class_names, exp, out)
    if exp.get("selective"):
        results["selective"] = selective_table(per_method, exp["selective"])
    if cross:
        results["cross_seed"] = {"phantom_seed": int(cross_seed),
                                 "methods": _cross_summary(cross, class_names, results["motion_pairs"])}
    results["notes"] = dict(exp.get("notes", {}))
    results["seconds"] = round(time.time() - t0, 1)
    results["recipe"] = _display_path(resolve_config_path(recipe_path))
    results["folds"], results["folds_run"] = folds, sorted(only_folds) if only_folds else list(range(folds))
    write_metrics_json(results, out / "results.json")
    table = _markdown(results, recipe_path, folds, only_folds)
    write_text_atomic(out / "results.md", table)
    if docs:
        write_text_atomic(docs, table)
    print(table)
    return results


class _StoreCache:
    """One `ClipStore` per distinct data config (`store_key`), loaded on first use."""

    def __init__(self, show_progress: bool):
        self.show_progress, self.stores = show_progress, {}

    def get(self, data_cfg):
        key = store_key(data_cfg)
        if key not in self.stores:
            self.stores[key] = load_store(data_cfg, self.show_progress)
        return self.stores[key]


def _check_teacher_trained(cfg, fold_dir: Path, trained: set[str], stage: str) -> None:
    """Refuse a variant distilled from a stage of this fold that is not trained yet (it would
    read a stale teacher from an earlier experiment in the same folder, or none)."""
    if cfg.distill is None:
        return
    teacher = Path(cfg.distill.teacher)
    if teacher.parent == fold_dir and teacher.name not in trained:
        raise EchoweaveError(f"variant {stage!r}: its distill.teacher {teacher.name!r} is not trained before it in "
                             f"this fold (trained so far: {sorted(trained)}); list the teacher earlier in variants")


def _check_same_classes(store, other, variant: str) -> None:
    if list(store.class_names) != list(other.class_names):
        raise EchoweaveError(f"variant {variant!r}: its data has classes {list(other.class_names)}, "
                             f"stage 1 was trained on {list(store.class_names)}")


def _display_path(path: Path) -> str:
    """A config path relative to the working folder when it lies below it (reports travel)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _rt_of(model):
    from echoweave.train.engine.runtime import Runtime

    return Runtime(device=next(model.parameters()).device)


def _cross_summary(cross: dict, class_names, pairs) -> dict:
    """Video-level accuracy, top-3 accuracy (None with K <= 3) and per motion-only pair accuracy
    of each fold's model on the other seed's patients, as mean and standard deviation over folds."""
    out = {}
    for name, fold_preds in cross.items():
        accs, top3s, pair_accs = [], [], {"|".join(p): [] for p in pairs}
        for pred in fold_preds:
            labels, preds = video_predictions(pred)
            accs.append(float((labels == preds).mean()))
            probs_v, labels_v, _ = aggregate_by_video(pred["probs"], pred["video_ids"], pred["labels"])
            top3s.append(top_k_accuracy(labels_v, probs_v, 3))
            for key, v in motion_pair_accuracy(labels, preds, class_names, pairs).items():
                pair_accs[key].append(v["accuracy"])
        top3 = None if None in top3s else (float(np.mean(top3s)), float(np.std(top3s)))
        out[name] = {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
                     "top3_mean": None if top3 is None else top3[0], "top3_std": None if top3 is None else top3[1],
                     "videos": int(len(np.unique(fold_preds[0]["video_ids"]))), "folds": len(accs),
                     "motion_pairs": {k: float(np.mean(v)) for k, v in pair_accs.items() if v}}
    return out


def _summarise(per_method, class_names, exp, out: Path) -> dict:
    from echoweave.train.data.phantom import MOTION_ONLY_PAIRS

    pairs = [p for p in exp.get("motion_pairs", MOTION_ONLY_PAIRS) if p[0] in class_names and p[1] in class_names]
    methods = {}
    for name, fold_preds in per_method.items():
        pooled = pool_folds(fold_preds, class_names=class_names)
        # Video level: mean probability of each recording's windows (folds hold disjoint clips).
        merged = {key: np.concatenate([f[key] for f in fold_preds]) for key in ("labels", "probs", "video_ids")}
        uniq = np.unique(merged["video_ids"])
        v_labels, v_preds = video_predictions(merged)
        pooled["motion_pairs_video"] = motion_pair_accuracy(v_labels, v_preds, class_names, pairs)
        pooled["_video_preds"] = (uniq, v_labels, v_preds)
        slug = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
        plot_confusion_matrix(np.array(pooled["pooled"]["video"]["confusion_matrix"]), class_names,
                              out / f"confusion_{slug}.png", title=name)
        methods[name] = pooled
    tests = {}
    for a, b in exp.get("mcnemar", []):
        if a in methods and b in methods:
            ua, la, pa = methods[a]["_video_preds"]
            ub, lb, pb = methods[b]["_video_preds"]
            if not np.array_equal(ua, ub):
                raise EchoweaveError(f"McNemar needs the same clips for {a} and {b}")
            tests[f"{a} vs {b}"] = mcnemar_exact(la, pa, pb)
    for m in methods.values():
        m.pop("_video_preds")
    return {"methods": methods, "mcnemar_video": tests, "class_names": class_names,
            "motion_pairs": [list(p) for p in pairs]}


def _markdown(results: dict, recipe_path: str, folds: int, only_folds) -> str:
    rows = {name: m["pooled"]["video"] for name, m in results["methods"].items()}
    lines = [
        "# Patient-wise K-fold results (pooled over held-out folds, video level)",
        "",
        "**Synthetic data**: these numbers come from the echoweave echo phantom, not from patients.",
        "",
        f"Command: `echoweave kfold --recipe {recipe_path} --folds {folds}"
        + (f" --only_folds {list(only_folds)}" if only_folds else "") + "`",
        f"Recipe: `{results['recipe']}`; run time {results['seconds']} s.",
        "",
        metrics_table_markdown(rows),
        "",
        *_notes_markdown(results.get("notes") or {}, list(results["methods"])),
        "## Window level (what the model sees: one frame or one 4-frame window)",
        "",
        metrics_table_markdown({n: m["pooled"]["clip"] for n, m in results["methods"].items()}),
        "",
        "## Mean ± std across folds (video-level accuracy, macro F1, top-3 accuracy)",
        "",
        "| method | accuracy | macro F1 | top-3 |",
        "|---|---|---|---|",
    ]
    for name, m in results["methods"].items():
        s = m["summary"]["video"] if "video" in m["summary"] else m["summary"]
        acc, f1 = s["accuracy"], s["f1_macro"]
        fmt = lambda d: "–" if d is None else (
            f"{d['mean']:.3f} ± {d['std']:.3f}" if d.get("std") is not None else f"{d['mean']:.3f}")
        lines.append(f"| {name} | {fmt(acc)} | {fmt(f1)} | {fmt(s.get('top3_accuracy'))} |")
    lines += ["", "## Motion-only class pairs (video-level accuracy on their clips)", "",
              "| method | " + " | ".join(results["motion_pairs"] and ["/".join(p) for p in results["motion_pairs"]]) + " |",
              "|---|" + "---|" * len(results["motion_pairs"])]
    for name, m in results["methods"].items():
        cells = [f"{m['motion_pairs_video'].get('|'.join(p), {}).get('accuracy', float('nan')):.3f}"
                 for p in results["motion_pairs"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if results.get("cross_seed"):
        cs = results["cross_seed"]
        some = next(iter(cs["methods"].values()))
        lines += ["", f"## Patients of another phantom seed (seed {cs['phantom_seed']}, {some['videos']} videos, "
                      f"every fold's model; mean ± std over {some['folds']} folds)", "",
                  "| method | accuracy | top-3 | " + " | ".join("/".join(p) for p in results["motion_pairs"]) + " |",
                  "|---|---|---|" + "---|" * len(results["motion_pairs"])]
        for name, m in cs["methods"].items():
            cells = [f"{m['motion_pairs'].get('|'.join(p), float('nan')):.3f}" for p in results["motion_pairs"]]
            top3 = "–" if m.get("top3_mean") is None else f"{m['top3_mean']:.3f} ± {m['top3_std']:.3f}"
            lines.append(f"| {name} | {m['accuracy_mean']:.3f} ± {m['accuracy_std']:.3f} | {top3} | "
                         + " | ".join(cells) + " |")
    if results.get("selective"):
        lines += ["", "## Selective classification (videos ranked by the model's own uncertainty)", "",
                  "Evidential models fuse their windows' Dirichlet parameters (the edge's fusion) and rank by "
                  "its uncertainty N K prior / S; softmax models rank by 1 - max mean probability. Degraded = "
                  "a clip of the phantom's frame-quality knob (dropped frames, heavy noise, acoustic shadow).", "",
                  *selective_markdown(results["selective"])]
    if results["mcnemar_video"]:
        lines += ["", "## McNemar's exact test (video level)", "", "| comparison | b | c | p |", "|---|---|---|---|"]
        for name, t in results["mcnemar_video"].items():
            lines.append(f"| {name} | {t['b']} | {t['c']} | {t['p']:.4g} |")
    return "\n".join(lines) + "\n"


def _notes_markdown(notes: dict, methods: list[str]) -> list[str]:
    """What each method is (the recipe's ``experiment.notes``), as a list under the table."""
    rows = [f"- **{name}**: {notes[name]}" for name in methods if name in notes]
    return ["What the rows are:", "", *rows, ""] if rows else []
