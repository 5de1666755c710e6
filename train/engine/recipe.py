"""Two-stage recipes: stage 1 trains the image model, stage 2 the temporal model from it.

A recipe YAML (``train/configs/demo_cpu.yaml``, ``table2_cpu.yaml``) has a ``base`` section
shared by both stages and ``stage1`` / ``stage2`` sections merged on top of it (nested dicts
merge key by key), each becoming a `TrainConfig`. Experiments add ``variants``: several stage-2
models trained from the same stage-1 model.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from echoweave.edge.errors import EchoweaveError
from echoweave.train.config import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``; nested dicts are merged, everything else replaced."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_config_path(path: str | Path) -> Path:
    """A path as given, or the name of a shipped config (``demo_cpu`` -> train/configs/demo_cpu.yaml)."""
    p = Path(path)
    if p.is_file():
        return p
    for candidate in (CONFIG_DIR / p, CONFIG_DIR / f"{p}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(q.stem for q in CONFIG_DIR.glob("*.yaml")))
    raise EchoweaveError(f"{path}: no such config file (shipped configs: {shipped})")


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe YAML and check its sections."""
    p = resolve_config_path(path)
    data = yaml.safe_load(p.read_text()) or {}
    unknown = sorted(set(data) - {"base", "stage1", "stage2", "variants", "experiment", "description"})
    if unknown:
        raise EchoweaveError(f"{p}: unknown recipe sections {unknown}")
    if "stage1" not in data:
        raise EchoweaveError(f"{p}: a recipe needs a stage1 section")
    return data


def stage_config(recipe: dict[str, Any], stage: str, out: str | Path, **overrides: Any) -> TrainConfig:
    """The `TrainConfig` of ``stage`` (``stage1``, ``stage2`` or a variant name) under ``out``.

    Variants are merged on top of ``stage2``. Stage 2 and variants are initialised from
    ``out/stage1``.
    """
    base = recipe.get("base", {})
    if stage == "stage1":
        merged = deep_merge(base, recipe["stage1"])
        merged.setdefault("stage", "image")
    else:
        merged = deep_merge(base, recipe.get("stage2", {}))
        if stage != "stage2":
            variants = recipe.get("variants", {})
            if stage not in variants:
                raise EchoweaveError(f"unknown recipe stage or variant {stage!r}; known: "
                                     f"stage1, stage2, {', '.join(variants)}")
            merged = deep_merge(merged, variants[stage])
        merged.setdefault("stage", "temporal")
        merged.setdefault("init_from", str(Path(out) / "stage1"))
    merged = deep_merge(merged, overrides)
    merged["out"] = str(Path(out) / stage)
    return TrainConfig.from_dict(merged)


def run_recipe(path: str | Path, out: str | Path, show_progress: bool = True, **overrides: Any) -> dict:
    """Train stage 1 then stage 2 of a recipe; returns both `RunResult`s by stage name."""
    from echoweave.train.engine.run import run_training

    recipe = load_recipe(path)
    results = {"stage1": run_training(stage_config(recipe, "stage1", out, **overrides), show_progress=show_progress)}
    if "stage2" in recipe:
        store = results["stage1"].store
        cfg2 = stage_config(recipe, "stage2", out, **overrides)
        # Same store and same patient split as stage 1: validation patients stay unseen.
        results["stage2"] = run_training(cfg2, store=store, train_idx=_train_indices(results["stage1"]),
                                         val_idx=results["stage1"].val_indices, show_progress=show_progress)
    return results


def _train_indices(result) -> list[int]:
    held_out = set(int(i) for i in result.val_indices)
    return [i for i in range(len(result.store)) if i not in held_out]
