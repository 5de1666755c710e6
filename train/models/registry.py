"""Model registry in the manner of timm: `@register_model` builders, `build_model(cfg)`.

    from echoweave.train.models import ModelConfig, build_model, count_parameters
    model = build_model(ModelConfig(name="tfw", backbone="resnet50", num_classes=12))
    print(count_parameters(model))  # 30261708
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from echoweave.train.models.backbones import check_backbone, list_backbones
from echoweave.train.models.base import EchoModel, VideoModel
from echoweave.train.models.config import ModelConfig

_MODELS: dict[str, Callable[[ModelConfig], VideoModel]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, description: str = "") -> Callable:
    """Decorator registering a builder `fn(cfg: ModelConfig) -> VideoModel` under `name`.

    Args:
        name: Registry key (`ModelConfig.name`).
        description: One line shown by `echoweave models`.
    """

    def decorator(fn: Callable[[ModelConfig], VideoModel]) -> Callable[[ModelConfig], VideoModel]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = fn
        _DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().splitlines()[0]
        return fn

    return decorator


def list_models() -> list[str]:
    """Registered model names, in registration order."""
    return list(_MODELS)


def describe_model(name: str) -> str:
    """The one-line description a model was registered with."""
    check_model(name)
    return _DESCRIPTIONS[name]


def check_model(name: str) -> None:
    """Raise ValueError naming the registered models when `name` is not one of them."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(_MODELS)}")


def build_model(cfg: ModelConfig | None = None, **overrides: Any) -> VideoModel:
    """Build a randomly initialised model.

    Args:
        cfg: The config (defaults to `ModelConfig()`, the paper's tfw/resnet50/K=12).
        **overrides: Fields replaced on `cfg` first, e.g. `build_model(name="gru", backbone="tiny")`.

    Returns:
        The `VideoModel`, in training mode like any fresh nn.Module.

    Raises:
        ValueError: Unknown model or backbone (the message lists the known ones).
    """
    cfg = ModelConfig() if cfg is None else cfg
    if overrides:
        cfg = cfg.replace(**overrides)
    check_model(cfg.name)
    check_backbone(cfg.backbone)
    model = _MODELS[cfg.name](cfg)
    model.model_name = cfg.name
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (works on meta-device models too)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_model_parameters(cfg: ModelConfig) -> int:
    """Parameter count of the model `cfg` describes, built on the meta device (no memory, ~no time)."""
    with torch.device("meta"):
        return count_parameters(build_model(cfg))


def init_from_image_model(temporal: EchoModel, image_state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Stage 2 initialisation: copy the stage-1 image model's backbone and fc0 into `temporal`.

    The head (GRU, attention, fc1) keeps its fresh initialisation; nothing is frozen.

    Args:
        temporal: Any `EchoModel` (gru, tfw, attention, or another image model).
        image_state_dict: `state_dict()` of a trained `image` model with the same backbone and D.

    Returns:
        The copied keys, sorted.

    Raises:
        ValueError: A backbone/fc0 tensor is missing or has another shape (different backbone).

    A model outside the per-frame family that can start from a 2-D image model declares how with
    an ``init_from_image_state(state_dict) -> copied keys`` method (e.g. `i3d` inflates the
    backbone); it is called instead.
    """
    hook = getattr(temporal, "init_from_image_state", None)
    if callable(hook):
        return hook(image_state_dict)
    if not isinstance(temporal, EchoModel):
        raise ValueError(f"init_from_image_model: {type(temporal).__name__} has no per-frame backbone + fc0 to "
                         "initialise from the image model (only the per-frame family has)")
    own = temporal.state_dict()
    wanted = sorted(k for k in own if k.startswith(("backbone.", "fc0.")))
    missing = [k for k in wanted if k not in image_state_dict]
    if missing:
        raise ValueError(f"init_from_image_model: image state dict lacks {len(missing)} backbone/fc0 "
                         f"tensors (first: {missing[:3]}); was it built with backbone "
                         f"{temporal.cfg.backbone!r}?")
    wrong = [(k, tuple(image_state_dict[k].shape), tuple(own[k].shape))
             for k in wanted if tuple(image_state_dict[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise ValueError(f"init_from_image_model: shape mismatch for {len(wrong)} tensors, e.g. "
                         f"{wrong[0][0]} image {wrong[0][1]} vs temporal {wrong[0][2]}")
    temporal.load_state_dict({k: image_state_dict[k] for k in wanted}, strict=False)
    return wanted


__all__ = ["register_model", "list_models", "list_backbones", "describe_model", "build_model",
           "count_parameters", "count_model_parameters", "init_from_image_model"]
