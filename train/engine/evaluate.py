"""Evaluate models on held-out clips: window ("clip") level and recording ("video") level.

A *window* is what the model sees (T frames, or one frame for the image classifier); a
*video* is one recorded clip, whose prediction is the mean of its windows' probabilities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from echoweave.edge.errors import EchoweaveError
from echoweave.train.config import TrainConfig
from echoweave.train.engine.checkpoint import load_model  # lived here before; old imports keep working
from echoweave.train.engine.data import ClipStore, FrameSamples, WindowSamples, load_store
from echoweave.train.engine.loop import predict
from echoweave.train.engine.runtime import Runtime, setup_runtime
from echoweave.train.engine.stages import ImageStage
from echoweave.train.data.transforms import eval_transform
from echoweave.train.evaluation import (
    clip_and_video_metrics,
    mcnemar_exact,
    plot_confusion_matrix,
    write_metrics_json,
)


def predict_windows(model, store: ClipStore, clip_idx, spec, sampler: str, windows: int, rt: Runtime,
                    batch_size: int = 32) -> dict[str, np.ndarray]:
    """Window probabilities of ``model`` on clips ``clip_idx``.

    Args:
        model: an `EchoModel`.
        sampler: ``consecutive`` (``windows`` evenly spread windows per clip), ``spaced`` (one
            centred TSN window per clip) or ``frame`` (every frame through ``forward_image``).

    Returns:
        dict with ``probs (N, K)``, ``logits (N, K)``, ``labels (N,)`` and ``video_ids (N,)``
        (clip index per window).
    """
    tf = eval_transform(spec)
    if sampler == "frame":
        ds, net = FrameSamples(store, clip_idx, tf), ImageStage(model)
    else:
        ds, net = WindowSamples(store, clip_idx, tf, model.frames, sampler, train=False, windows=windows,
                                stride=model.cfg.frame_stride if sampler == "consecutive" else 1), model
    probs, labels, clips, logits = predict(net, DataLoader(ds, batch_size=batch_size), rt, with_logits=True)
    return {"probs": probs, "labels": labels, "video_ids": clips, "logits": logits}


def motion_pair_accuracy(labels: np.ndarray, preds: np.ndarray, class_names, pairs=None) -> dict:
    """Accuracy on the clips of each motion-only pair (chance 0.5 for a model that cannot tell
    the pair apart), keyed ``"A|B"``, with the number of clips; pairs absent from the classes
    are left out.

    Args:
        labels: ``(N,)`` true class ids.
        preds: ``(N,)`` predicted class ids.
        class_names: name of each class id.
        pairs: ``(A, B)`` name pairs (default: the phantom's ``MOTION_ONLY_PAIRS``).
    """
    from echoweave.train.data.phantom import MOTION_ONLY_PAIRS

    out = {}
    for a, b in MOTION_ONLY_PAIRS if pairs is None else pairs:
        if a not in class_names or b not in class_names:
            continue
        sel = np.isin(labels, [list(class_names).index(a), list(class_names).index(b)])
        if sel.any():
            out[f"{a}|{b}"] = {"accuracy": float((preds[sel] == labels[sel]).mean()), "n": int(sel.sum())}
    return out


def video_predictions(pred: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, predicted classes)`` per video: the mean probability of each recording's windows."""
    vids = pred["video_ids"]
    uniq = np.unique(vids)
    labels = np.array([pred["labels"][vids == u][0] for u in uniq])
    preds = np.array([pred["probs"][vids == u].mean(0).argmax() for u in uniq])
    return labels, preds


def evaluate_checkpoint(checkpoint: str, data_path: str | None = None, out: str | None = None,
                        split: str = "val", sampler: str | None = None, windows: int | None = None,
                        compare: str | None = None, device: str = "auto", phantom_seed: int | None = None) -> dict:
    """Metrics of a checkpoint (and McNemar against ``compare``) written to ``out/eval_metrics.json``.

    With ``phantom_seed`` the clips are the phantom's of that seed (the checkpoint's other
    phantom settings), all of them scored: patients no run of another seed has seen.
    """
    rt = setup_runtime(device, "none")
    model, meta = load_model(checkpoint, rt.device)
    cfg = TrainConfig.from_dict(meta["train"])
    if data_path:
        cfg.data.path = data_path
    if phantom_seed is not None:
        cfg.data.path, cfg.data.phantom_seed, split = "phantom", int(phantom_seed), "all"
    store = load_store(cfg.data)
    if list(store.class_names) != list(meta["class_names"]):
        raise EchoweaveError(f"{checkpoint}: classes {meta['class_names']} do not match the dataset's "
                             f"{list(store.class_names)}")
    if split == "val" and not data_path and phantom_seed is None:
        held_out = set(meta["split"]["val_patients"])
        idx = [i for i, p in enumerate(store.patients) if p in held_out]
    else:
        idx = list(range(len(store)))
    if not idx:
        raise EchoweaveError(f"{checkpoint}: no clips to evaluate in split {split!r}")
    sampler = sampler or cfg.data.sampler
    windows = windows or cfg.data.eval_windows
    pred = predict_windows(model, store, idx, cfg.data.preprocessing, sampler, windows, rt)
    result = clip_and_video_metrics(pred["labels"], pred["probs"], list(store.class_names), pred["video_ids"])
    result["checkpoint"], result["sampler"], result["split"] = str(checkpoint), sampler, split
    if phantom_seed is not None:
        result["phantom_seed"] = int(phantom_seed)
    v_labels, v_preds = video_predictions(pred)
    result["motion_pairs_video"] = motion_pair_accuracy(v_labels, v_preds, store.class_names)
    if compare:
        other, _ = load_model(compare, rt.device)
        pred_b = predict_windows(other, store, idx, cfg.data.preprocessing, sampler, windows, rt)
        # McNemar on recordings (the video-level decision), as the K-fold table reports it.
        b_labels, b_preds = video_predictions(pred_b)
        result["mcnemar_vs"] = {"checkpoint": compare, "level": "video", **mcnemar_exact(v_labels, v_preds, b_preds)}
        # Windows of one recording are not independent; this one is for reference only.
        result["mcnemar_vs_windows"] = {"checkpoint": compare, "level": "window", **mcnemar_exact(
            pred["labels"], pred["probs"].argmax(1), pred_b["probs"].argmax(1))}
        result["compare"] = {"checkpoint": compare, "video_accuracy": float((b_preds == b_labels).mean()),
                             "motion_pairs_video": motion_pair_accuracy(b_labels, b_preds, store.class_names)}
    out_dir = Path(out or checkpoint)
    if out_dir.is_dir() is False:
        out_dir.mkdir(parents=True, exist_ok=True)
    write_metrics_json(result, out_dir / "eval_metrics.json")
    plot_confusion_matrix(np.array(result["video"]["confusion_matrix"]), list(store.class_names),
                          out_dir / "eval_confusion.png")
    v = result["video"]
    lo, hi = v["accuracy_ci95"]
    top3 = "" if v["top3_accuracy"] is None else (
        f"; top-3 {v['top3_accuracy']:.3f} [95% CI {v['top3_accuracy_ci95'][0]:.3f}-{v['top3_accuracy_ci95'][1]:.3f}]")
    print(f"video-level accuracy {v['accuracy']:.3f} [95% CI {lo:.3f}-{hi:.3f}]{top3} on {v['n']} clips; "
          f"macro F1 {v['f1_macro']:.3f}; window-level accuracy {result['clip']['accuracy']:.3f}")
    print(f"wrote {out_dir / 'eval_metrics.json'} and {out_dir / 'eval_confusion.png'}")
    return result
