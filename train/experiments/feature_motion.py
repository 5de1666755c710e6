"""How much of what a window head sees moves: the share of per-frame feature variance that
changes inside a window, for frame strides 1 and 2 (docs/motion.md, cause 1).

    python -m echoweave.train.experiments.feature_motion RUN_OR_CHECKPOINT

Loads the checkpoint's model and dataset (the phantom is regenerated from its config), embeds
every frame with ``embed_frame`` and prints, per stride, the mean variance over a window's frames
divided by the variance over all frames.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


def motion_share(features: np.ndarray, frames: int = 4, stride: int = 1) -> float:
    """Within-window variance / total variance of ``features (N clips, T frames, D)``."""
    span = (frames - 1) * stride + 1
    windows = np.stack([features[:, s : s + span : stride] for s in range(features.shape[1] - span + 1)], 1)
    within = windows.var(axis=2).mean(axis=(0, 1)).sum()  # (N, W, T, D) -> variance over T
    return float(within / features.reshape(-1, features.shape[-1]).var(axis=0).sum())


def main(argv: list[str] | None = None) -> dict:
    from echoweave.train.config import TrainConfig
    from echoweave.train.data.transforms import eval_transform
    from echoweave.train.engine.data import load_store
    from echoweave.train.engine.checkpoint import load_model
    from echoweave.train.engine.features import embed_clips

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, meta = load_model(args.checkpoint)
    data = TrainConfig.from_dict(meta["train"]).data
    store = load_store(data, show_progress=False)
    shortest = min(c.num_frames for c in store.clips)
    feats = np.stack([f[:shortest].numpy() for f in embed_clips(model, store, eval_transform(data.preprocessing), "cpu")])
    out = {f"stride {k}": motion_share(feats, model.frames, k) for k in (1, 2)}
    for key, value in out.items():
        print(f"{key}: {100 * value:.1f} % of the feature variance changes inside a {model.frames}-frame window")
    return out


if __name__ == "__main__":
    main()
