"""Multiply-accumulates (MACs) per call of each exported method, counted on the eager model.

``torch.utils.flop_counter.FlopCounterMode`` counts the FLOPs of matmul-like ATen ops (conv,
mm/addmm/bmm, linear) as ``2 x M x N x K``; MACs = FLOPs / 2. Elementwise ops (ReLU, adds,
batch-norm in eval, pooling) are not counted: they are not what a GEMM peak bounds.

    macs = method_macs(model)   # {"forward": ..., "embed_frame": ..., "classify_window": ..., "per_frame": ...}

``per_frame`` is the streaming cost of one new frame: one ``embed_frame`` plus one
``classify_window``. The eager model is rebuilt from the manifest's model config (weights do
not change the count), so counting needs torch but not the checkpoint; where torch is missing
(edge-only installs) `manifest_macs` falls back to a ``macs`` entry in the manifest, if any.
"""
from __future__ import annotations


def count_macs(module, inputs: tuple) -> int:
    """MACs of one call ``module(*inputs)`` (FLOPs of matmul-like ops / 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    return int(counter.get_total_flops()) // 2


def method_macs(model) -> dict[str, int]:
    """MACs per call of each declared method at batch 1, and ``per_frame``, the cost of one
    streamed frame: embed_frame + classify_window, or a whole ``forward`` for a model without the
    streaming split (the edge recomputes its window)."""
    out = {m: count_macs(module.eval(), model.example_inputs(m)) for m, module in model.method_modules().items()}
    out["per_frame"] = out["embed_frame"] + out["classify_window"] if model.streams_per_frame else out["forward"]
    return out


def model_from_manifest(manifest: dict):
    """The eager model of a manifest's config (random init; eval mode)."""
    import torch

    from echoweave.train.models import ModelConfig, build_model

    torch.manual_seed(0)
    return build_model(ModelConfig.from_dict(manifest["model"])).eval()


def manifest_macs(manifest: dict) -> dict | None:
    """MACs for a manifest: counted with torch when available, else the manifest's ``macs``
    entry, else None. The result carries ``source`` saying which."""
    try:
        import torch  # noqa: F401
    except ImportError:
        recorded = manifest.get("macs")
        return {**recorded, "source": "manifest"} if recorded else None
    return {**method_macs(model_from_manifest(manifest)), "source": "torch.utils.flop_counter on the eager model"}
