"""`echoweave models`: list the registered models with their parameter counts.

    echoweave models                                  # table, resnet50 backbone, K=12
    echoweave models --backbone tiny --json           # machine-readable

Light module: torch and the model registry are imported inside the function.
"""
from __future__ import annotations

import json as json_lib


def models(backbone: str = "resnet50", num_classes: int = 12, frames: int = 4,
           json: bool = False) -> None:
    """List the registered models with parameter counts and how each streams (per-frame or window).

    Models are built on torch's meta device, so counting even ResNet-50 variants takes no
    memory and well under a second each.

    Args:
        backbone: Per-frame CNN (resnet50, resnet18, mobilenet_v3_large, mobilenet_v3_small, tiny, sononet).
        num_classes: Number of view classes K (12 for NED-12, 16 for NED-16).
        frames: Frames per window T.
        json: Print a JSON list instead of a table.
    """
    import torch

    from echoweave.train.models import ModelConfig, build_model, count_model_parameters, describe_model, list_models

    rows = []
    for name in list_models():
        cfg = ModelConfig(name=name, backbone=backbone, num_classes=num_classes, frames=frames)
        with torch.device("meta"):
            model = build_model(cfg)
        rows.append({
            "name": name,
            "backbone": backbone,
            "num_classes": num_classes,
            "frames": frames,
            "feature_dim": getattr(model, "feature_dim", None),
            "methods": list(model.methods),
            "aggregation": model.aggregation,
            "derived_inputs": [i["name"] for i in model.derived_inputs()],
            "parameters": count_model_parameters(cfg),
            "description": describe_model(name),
        })
    if json:
        print(json_lib.dumps(rows, indent=2))
        return
    print(f"{'model':<16} {'backbone':<20} {'params':>12}  {'streams':<9} description")
    for row in rows:
        streams = "per-frame" if "embed_frame" in row["methods"] else "window"
        print(f"{row['name']:<16} {row['backbone']:<20} {row['parameters']:>12,}  {streams:<9} {row['description']}")
