"""`echoweave models`: list the registered models with their parameter counts.

    echoweave models                                  # table, resnet50 backbone, K=12
    echoweave models --backbone tiny --json           # machine-readable

Light module: torch and the model registry are imported inside the function.
"""
from __future__ import annotations

import json as json_lib


def models(backbone: str = "resnet50", num_classes: int = 12, frames: int = 4,
           json: bool = False) -> None:
    """List the registered models (image, gru, tfw, attention) with parameter counts.

    Models are built on torch's meta device, so counting even ResNet-50 variants takes no
    memory and well under a second each.

    Args:
        backbone: Per-frame CNN (resnet50, resnet18, mobilenet_v3_large, tiny).
        num_classes: Number of view classes K (12 for NED-12, 16 for NED-16).
        frames: Frames per window T.
        json: Print a JSON list instead of a table.
    """
    from echoweave.train.models import ModelConfig, count_model_parameters, describe_model, list_models

    rows = []
    for name in list_models():
        cfg = ModelConfig(name=name, backbone=backbone, num_classes=num_classes, frames=frames)
        rows.append({
            "name": name,
            "backbone": backbone,
            "num_classes": num_classes,
            "frames": frames,
            "feature_dim": cfg.resolved_feature_dim,
            "parameters": count_model_parameters(cfg),
            "description": describe_model(name),
        })
    if json:
        print(json_lib.dumps(rows, indent=2))
        return
    print(f"{'model':<10} {'backbone':<20} {'params':>12}  description")
    for row in rows:
        print(f"{row['name']:<10} {row['backbone']:<20} {row['parameters']:>12,}  {row['description']}")
