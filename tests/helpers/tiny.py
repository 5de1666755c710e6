"""A tiny but real training setup: 3 synthetic patients, 12 views, 8 frames of 48 px, a tiny
ResNet, 32x32 inputs. Trains in about a second on one CPU core."""
from __future__ import annotations

from echoweave.train.config import TrainConfig


def tiny_config(out, **over) -> TrainConfig:
    """TrainConfig for a run taking a second or two; ``over`` merges into its sections."""
    base = {
        "out": str(out), "device": "cpu", "amp": "none", "channels_last": False, "seed": 0, "threads": 1,
        "stage": "temporal",
        "model": {"name": "tfw", "backbone": "tiny", "width": 8, "feature_dim": 64, "gru_hidden": 32,
                  "gru_layers": 2},
        "data": {"path": "phantom", "phantom_patients": 3, "phantom_clips_per_view": 1, "phantom_frames": 8,
                 "phantom_size": 48, "augment": True, "eval_windows": 2, "val_fraction": 0.34,
                 "preprocessing": {"resize": 36, "crop": 32}},
        "optim": {"epochs": 2, "batch_size": 8, "lr": 0.01},
    }
    for key, value in over.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return TrainConfig.from_dict(base)
