"""`echoweave train`, `echoweave evaluate` and `echoweave kfold` (torch imported inside)."""
from __future__ import annotations

from typing import Literal

from echoweave.train.config import DataConfig, OptimConfig, TrainConfig
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
):
    """Train one stage (single process, or DDP under `torchrun --nproc_per_node N -m echoweave train`).

    Shipped configs: train/configs/paper_stage1_image.yaml, paper_stage2_tfw.yaml
    (`--config FILE`); `--print_config` shows the resolved configuration.

    Args:
        out: Run folder: checkpoints, TensorBoard logs and the resolved config go here.
        stage: `image` trains single frames (stage 1); `temporal` trains windows (stage 2).
        model: The model to build (see `echoweave models`).
        data: Dataset, sampling, preprocessing and augmentation.
        optim: SGD + one-cycle schedule.
        init_from: Stage-1 run whose backbone and fc0 initialise this model.
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
    """
    cfg = TrainConfig(**dict(locals()))  # first line: locals() holds exactly the parameters
    from echoweave.train.engine.run import run_training

    result = run_training(cfg)
    print(f"checkpoint: {result.checkpoint}")
    return None


def evaluate(checkpoint: str, data_path: str | None = None, out: str | None = None,
             split: Literal["val", "all"] = "val", sampler: Literal["consecutive", "spaced"] | None = None,
             windows: int | None = None, compare: str | None = None, device: Literal["auto", "cpu", "cuda"] = "auto"):
    """Evaluate a checkpoint on held-out clips: clip- and video-level metrics with exact CIs.

    Args:
        checkpoint: Run folder or checkpoint folder.
        data_path: Dataset to evaluate on (default: the one the checkpoint was trained on).
        out: Folder for metrics.json and the confusion matrix PNG (default: the run folder).
        split: `val` = the checkpoint's held-out patients; `all` = every clip of data_path.
        sampler: Window sampling (default: the checkpoint's).
        windows: Windows per clip for consecutive sampling (default: the checkpoint's).
        compare: A second checkpoint evaluated on the same clips; adds McNemar's exact test.
        device: `auto`, `cpu` or `cuda`.
    """
    from echoweave.train.engine.evaluate import evaluate_checkpoint

    evaluate_checkpoint(checkpoint, data_path=data_path, out=out, split=split, sampler=sampler,
                        windows=windows, compare=compare, device=device)


def kfold(recipe: str = "table2_cpu", out: str = "runs/kfold", folds: int = 5, only_folds: list[int] | None = None,
          docs: str | None = None):
    """Patient-wise K-fold experiment of a recipe: one stage-1 model per fold shared by every
    stage-2 variant; per-fold and pooled results on held-out folds only.

    Args:
        recipe: Recipe YAML or shipped name (train/configs/table2_cpu.yaml reproduces the shape
            of the paper's Table 2 on the phantom).
        out: Experiment folder (per-fold runs, results.json, results.md, confusion matrices).
        folds: K.
        only_folds: Run only these fold indices (others are skipped; for quick checks).
        docs: Also write the Markdown results table to this path (e.g. docs/table2_phantom.md).
    """
    from echoweave.train.engine.kfold import run_kfold

    run_kfold(recipe, out=out, folds=folds, only_folds=only_folds, docs=docs)
