"""Two-stage recipes: stage 1 trains the image model, stage 2 the temporal model from it.

A recipe YAML (``train/configs/demo_cpu.yaml``, ``table2_cpu.yaml``) has a ``base`` section
shared by both stages and ``stage1`` / ``stage2`` sections merged on top of it (nested dicts
merge key by key), each becoming a `TrainConfig`. Experiments add ``variants``: several stage-2
models trained from the same stage-1 model.

A variant with another backbone cannot start from the shared stage 1 (its features are another
network's): it carries its own ``stage1`` block, merged on top of the recipe's ``stage1``, which
is trained into ``<out>/<variant>_stage1`` and initialises the variant (`own_stage1`).

Knowledge distillation (``distill: {teacher: ...}``, `echoweave.train.engine.distill`): a
``teacher`` that names a stage of the recipe (``stage1``, ``stage2``, a variant, or a variant's
``<variant>_stage1``) resolves to that stage's run folder under the same ``out`` (in a K-fold,
the same fold); anything else is a checkpoint path.
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


OWN_STAGE1 = "_stage1"  # suffix of a variant's own stage 1: <out>/<variant>_stage1


def own_stage1(recipe: dict[str, Any], variant: str) -> str | None:
    """The stage name of ``variant``'s own stage 1 (``<variant>_stage1``), or None when it has none."""
    block = recipe.get("variants", {}).get(variant)
    return f"{variant}{OWN_STAGE1}" if isinstance(block, dict) and "stage1" in block else None


def stage_names(recipe: dict[str, Any]) -> list[str]:
    """Every stage a recipe can train, in training order: stage1, stage2, then each variant
    (preceded by its own stage 1 if it has one)."""
    names = ["stage1", "stage2"]
    for variant in recipe.get("variants", {}):
        names += [n for n in (own_stage1(recipe, variant), variant) if n]
    return names


def stage_config(recipe: dict[str, Any], stage: str, out: str | Path, **overrides: Any) -> TrainConfig:
    """The `TrainConfig` of ``stage`` (``stage1``, ``stage2``, a variant name, or a variant's
    own ``<variant>_stage1``) under ``out``.

    Variants are merged on top of ``stage2``; a variant's own stage 1 on top of ``stage1``. Stage
    2 and variants are initialised from ``out/stage1``, or from ``out/<variant>_stage1`` when the
    variant has its own. A ``distill.teacher`` or an ``init_from`` naming a stage resolves to
    ``out/<that stage>`` (a variant that fine-tunes another, e.g. ``qat``, is listed after it).
    """
    base = recipe.get("base", {})
    variants = recipe.get("variants", {})
    owner = stage[: -len(OWN_STAGE1)] if stage.endswith(OWN_STAGE1) else None
    if stage == "stage1" or (owner is not None and own_stage1(recipe, owner) == stage):
        merged = deep_merge(base, recipe["stage1"])
        if owner is not None:
            merged = deep_merge(merged, variants[owner]["stage1"])
        merged.setdefault("stage", "image")
    else:
        merged = deep_merge(base, recipe.get("stage2", {}))
        if stage != "stage2":
            if stage not in variants:
                raise EchoweaveError(f"unknown recipe stage or variant {stage!r}; known: "
                                     f"stage1, stage2, {', '.join(variants)}")
            merged = deep_merge(merged, {k: v for k, v in variants[stage].items() if k != "stage1"})
        merged.setdefault("stage", "temporal")
        merged.setdefault("init_from", str(Path(out) / (own_stage1(recipe, stage) or "stage1")))
    merged = deep_merge(merged, overrides)
    merged["out"] = str(Path(out) / stage)
    if merged.get("init_from") == stage:
        raise EchoweaveError(f"recipe stage {stage!r}: init_from names the stage itself")
    if merged.get("init_from"):  # a stage's name (e.g. a qat variant fine-tuning another) or a path
        merged["init_from"] = resolve_stage(str(merged["init_from"]), out, stage_names(recipe))
    distill = merged.get("distill")
    if isinstance(distill, dict) and "teacher" in distill:
        if distill["teacher"] == stage:
            raise EchoweaveError(f"recipe stage {stage!r}: distill.teacher names the stage itself")
        distill["teacher"] = resolve_stage(str(distill["teacher"]), out, stage_names(recipe))
    return TrainConfig.from_dict(merged)


def resolve_stage(name: str, out: str | Path, names) -> str:
    """A recipe's ``distill.teacher`` (or ``init_from``): ``out/<name>`` when it names one of the
    recipe's stages (``names``), else the checkpoint path as given."""
    return str(Path(out) / name) if name in set(names) else name


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
