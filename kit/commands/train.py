"""`echoweave train`, `echoweave evaluate` and `echoweave kfold` (torch imported inside).

    echoweave train --config train/configs/paper_stage1_image.yaml --data.path /data/NED
    echoweave train --recipe demo_cpu --out runs/demo            # both stages of a multi-stage recipe
    echoweave evaluate runs/paper/stage2 --compare runs/paper/stage1
    echoweave kfold --recipe table2_cpu --folds 5
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from echoweave.edge.errors import EchoweaveError
from echoweave.train.config import DataConfig, DistillConfig, OptimConfig, TrainConfig
from echoweave.train.models.config import ModelConfig

_DEFAULT = TrainConfig()


def train(
    out: str = _DEFAULT.out,
    stage: Literal["image", "temporal"] = _DEFAULT.stage,
    model: ModelConfig = _DEFAULT.model,
    data: DataConfig = _DEFAULT.data,
    optim: OptimConfig = _DEFAULT.optim,
    init_from: str | None = None,
    freeze_backbone: bool = False,
    cache_features: bool = False,
    seed: int = 0,
    device: Literal["auto", "cpu", "cuda"] = "auto",
    amp: Literal["bf16", "none"] = "bf16",
    channels_last: bool = True,
    compile: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    keep_checkpoints: int = 2,
    threads: int = 0,
    distill: DistillConfig | None = None,
    qat: bool = False,
    recipe: str | None = None,
):
    """Train one stage, or both stages of a multi-stage recipe with --recipe.

    Single process, or DDP under `torchrun --nproc_per_node N -m echoweave train`. Shipped
    single-stage configs: train/configs/paper_stage1_image.yaml, paper_stage2_tfw.yaml
    (`--config FILE`); shipped recipes: demo_cpu, table2_cpu (`--recipe NAME`). `--print_config`
    shows the resolved configuration.

    Args:
        out: Run folder: checkpoints/, TensorBoard logs (tb/), the resolved config (config.json) and
            metrics.json go here.
        stage: `image` trains single frames (stage 1); `temporal` trains windows (stage 2).
        model: The model to build (see `echoweave models`).
        data: Dataset, sampling, preprocessing and augmentation.
        optim: SGD + one-cycle schedule.
        init_from: Stage-1 run whose backbone and fc0 initialise this model; a run of the same
            model (equal model config) initialises every weight (fine-tuning).
        freeze_backbone: Keep the per-frame CNN fixed (fast CPU experiments only).
        cache_features: With a frozen backbone, train the head on cached features.
        seed: Seed of data order, augmentation and initialisation.
        device: `auto` (CUDA when present), `cpu` or `cuda`.
        amp: `bf16` autocast on CUDA, or `none`.
        channels_last: Channels-last memory format (faster convolutions on GPUs).
        compile: Wrap the model in torch.compile.
        resume: Continue from the last complete checkpoint in `out`.
        overwrite: Replace a run already in `out` (without this or --resume such a folder is refused).
        keep_checkpoints: Complete epoch checkpoints to keep.
        threads: CPU threads for torch (0 = torch's default).
        distill: Knowledge distillation from a trained teacher checkpoint (`--distill.teacher RUN`,
            `--distill.temperature`, `--distill.alpha`): loss alpha*T^2*KL + (1-alpha)*CE.
        qat: Quantization-aware fine-tuning: train through simulated int8 rounding so the int8
            export keeps the model's decisions (usually one short stage `--init_from` the finished
            run, with `--cache_features false --freeze_backbone false` and a small `--optim.lr`).
        recipe: A multi-stage recipe (shipped name such as `demo_cpu`, or a YAML path): train its
            stage 1, then stage 2 initialised from it, into OUT/stage1 and OUT/stage2 (OUT defaults
            to runs/<recipe name>). Every other option given here that differs from its default
            overrides both stages.
    """
    params = dict(locals())  # first line: locals() holds exactly the parameters
    recipe = params.pop("recipe")
    cfg = TrainConfig(**params)
    if recipe:
        return _train_recipe(recipe, cfg)
    from echoweave.train.engine.run import run_training

    result = run_training(cfg)
    print(f"checkpoint: {result.checkpoint}")
    return None


def _train_recipe(recipe: str, cfg: TrainConfig) -> None:
    """Both stages of ``recipe``; the options of ``cfg`` that differ from the defaults override them."""
    from echoweave.train.engine.recipe import run_recipe

    from echoweave.argv_rewrites import given_options

    values = cfg.to_dict()
    overrides = changed_values(values, _DEFAULT.to_dict())
    # An option written on the command line overrides the recipe even when it equals the
    # default (`--data.phantom_clips_per_view 2` against a recipe's 4 must not be dropped).
    for name in given_options():
        _set_given(overrides, values, name.split("."))
    for key in ("stage", "init_from"):
        if key in overrides:
            raise EchoweaveError(f"--{key} cannot be combined with --recipe {recipe}: each stage of the recipe sets it")
    out = overrides.pop("out", None) or str(Path("runs") / Path(recipe).stem)
    runs = run_recipe(recipe, out, **overrides)
    for stage, result in runs.items():
        print(f"{stage} checkpoint: {result.checkpoint}")


def _set_given(overrides: dict, values: dict, path: list[str]) -> None:
    """Copy the leaf ``path`` of ``values`` into ``overrides`` (unknown paths are left alone)."""
    value = values
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return
        value = value[key]
    if isinstance(value, dict):
        return  # a whole group (`--data file.yaml`): its changed leaves are already there
    target = overrides
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


def changed_values(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that differ from ``defaults``, nested dicts compared key by key.

    Args:
        values: A configuration as a nested dict.
        defaults: The same configuration's defaults.

    Returns:
        A nested dict holding only the changed leaves.
    """
    out = {}
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            nested = changed_values(value, default)
            if nested:
                out[key] = nested
        elif value != default:
            out[key] = value
    return out


@dataclass
class EvalDataConfig:
    """The data of an evaluation; every field left unset takes the checkpoint's own value.

    Attributes:
        path: Dataset to evaluate on (default: the one the checkpoint was trained on).
        sampler: Window sampling, `consecutive` or `spaced` (default: the checkpoint's).
        eval_windows: Windows per clip for consecutive sampling; their mean probability is the
            clip's prediction (default: the checkpoint's).
        phantom_seed: Evaluate on the synthetic phantom generated with this seed (its patients
            are people no run of another seed has seen; every clip is scored). The phantom's
            other settings are the checkpoint's.
    """

    path: str | None = None
    sampler: Literal["consecutive", "spaced"] | None = None
    eval_windows: int | None = None
    phantom_seed: int | None = None


def evaluate(checkpoint: str, data: EvalDataConfig = EvalDataConfig(), out: str | None = None,
             split: Literal["val", "all"] = "val", compare: str | None = None,
             device: Literal["auto", "cpu", "cuda"] = "auto"):
    """Evaluate a checkpoint on held-out clips: clip- and video-level metrics with exact CIs.

    Writes OUT/eval_metrics.json (clip- and video-level metrics, McNemar's test with --compare)
    and OUT/eval_confusion.png.

    Args:
        checkpoint: Run folder, its checkpoints/ folder or one epoch_* checkpoint folder.
        data: The dataset and window sampling (default: the checkpoint's own).
        out: Folder for eval_metrics.json and eval_confusion.png (default: the CHECKPOINT folder).
        split: `val` = the checkpoint's held-out patients; `all` = every clip of --data.path.
        compare: A second checkpoint evaluated on the same clips; adds McNemar's exact test.
        device: `auto`, `cpu` or `cuda`.
    """
    from echoweave.train.engine.evaluate import evaluate_checkpoint

    evaluate_checkpoint(checkpoint, data_path=data.path, out=out, split=split, sampler=data.sampler,
                        windows=data.eval_windows, compare=compare, device=device, phantom_seed=data.phantom_seed)


def kfold(recipe: str = "table2_cpu", out: str = "runs/kfold", folds: int = 5,
          only_folds: list[int] | int | None = None, docs: str | None = None, resume: bool = False):
    """Patient-wise K-fold experiment of a recipe: one stage-1 model per fold shared by every
    stage-2 variant; per-fold and pooled results on held-out folds only.

    Args:
        recipe: Recipe YAML or shipped name (train/configs/table2_cpu.yaml reproduces the shape
            of the paper's Table 2 on the phantom).
        out: Experiment folder (per-fold runs, results.json, results.md, confusion matrices).
        folds: K.
        only_folds: Run only these fold indices, `[0,2]` or one index `0` (others are skipped).
        docs: Also write the Markdown results table to this path (e.g. docs/table2_phantom.md).
        resume: Continue an interrupted experiment in OUT: complete runs are loaded and scored,
            not retrained; an incomplete one continues from its last checkpoint.
    """
    from echoweave.train.engine.kfold import run_kfold

    if isinstance(only_folds, int):
        only_folds = [only_folds]
    run_kfold(recipe, out=out, folds=folds, only_folds=only_folds, docs=docs, resume=resume)
