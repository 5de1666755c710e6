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


def tiny_recipe(variants: dict, stage2_epochs: int = 1, experiment: dict | None = None, **data) -> dict:
    """A two-stage K-fold recipe on `tiny_config`'s model and data (4 patients; ``data`` updates
    the data section): a 1-epoch image stage 1 and cached-feature stage-2 ``variants``."""
    cfg = tiny_config("unused").to_dict()
    base = {k: cfg[k] for k in ("device", "amp", "channels_last", "seed", "threads", "model", "data")}
    base["data"].update(phantom_patients=4, **data)
    return {
        "base": base,
        "stage1": {"stage": "image", "model": {"name": "image"}, "optim": {"epochs": 1, "batch_size": 16}},
        "stage2": {"stage": "temporal", "freeze_backbone": True, "cache_features": True,
                   "optim": {"epochs": stage2_epochs, "batch_size": 8, "lr": 0.02}},
        "variants": variants,
        **({"experiment": experiment} if experiment is not None else {}),
    }
