"""The eager PyTorch fp32 baseline, wrapped as a runtime adapter so it runs through the same
`echoweave.edge.Classifier` / `StreamingClassifier` code (preprocessing, ring buffer) as the
exported artifacts; only the engine differs.

Weights: the manifest's ``source_checkpoint.path`` when that checkpoint is still there; else the
model is rebuilt from the manifest's config with seeded random weights (latency does not depend
on weight values; the report says which). Needs torch: edge-only installs have no baseline.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from echoweave.edge.classifier import Classifier

def eager_artifact(methods) -> dict:
    """A manifest-style artifact entry for the eager model's declared ``methods``."""
    return {"id": "eager_pytorch_fp32", "format": "pytorch", "backend": "cpu", "precision": "fp32",
            "files": [], "methods": {m: {"file": "", "entry": m} for m in methods},
            "input_dtype": "float32", "output_dtype": "float32"}


class EagerAdapter:
    """Runs the declared methods of an eager `VideoModel` on numpy arrays (torch.inference_mode)."""

    name = "eager"
    reentrant = False

    def __init__(self, model):
        import torch

        self._torch = torch
        self.version = torch.__version__
        self._modules = {name: m.eval() for name, m in model.method_modules().items()}

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            args = [self._torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
            return self._modules[method](*args).numpy()

    def close(self) -> None:
        self._modules.clear()


def eager_model(manifest: dict) -> tuple[object, str]:
    """``(eval model, weights description)`` for a manifest (see the module docstring)."""
    from echoweave.benchmarks.macs import model_from_manifest

    src = (manifest.get("source_checkpoint") or {}).get("path")
    if src and Path(src).exists():
        try:
            from echoweave.train.engine.checkpoint import load_model

            model, _ = load_model(src)
            return model.float().eval(), f"checkpoint {src}"
        except Exception as exc:  # an unreadable checkpoint still leaves the timing baseline
            return model_from_manifest(manifest), f"random init from the manifest config ({src} unreadable: {exc})"
    why = f"checkpoint {src} not found" if src else "manifest names no source_checkpoint"
    return model_from_manifest(manifest), f"random init from the manifest config ({why}); timing only"


def open_eager(folder: str | Path, manifest: dict, model=None) -> Classifier:
    """A `Classifier` whose engine is the eager model (built with `eager_model` unless given)."""
    model = model if model is not None else eager_model(manifest)[0]
    return Classifier(Path(folder), manifest, eager_artifact(manifest["methods"]), EagerAdapter(model))
