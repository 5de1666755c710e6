"""Model registry: image, gru, tfw, attention over a configurable torchvision backbone.

    from echoweave.train.models import ModelConfig, build_model, count_parameters
    model = build_model(ModelConfig(name="tfw", backbone="tiny", input_size=64))
    logits = model(model.example_inputs()[0])  # (1, K) from a (1, T, 1, 64, 64) clip in [0, 1]
    embed, classify = model.streaming_modules()

Attributes are loaded lazily (PEP 562): `echoweave.train.models.config` (the light `ModelConfig`)
can be imported without torch, so the CLI describes itself in an edge-only install. The first
access to anything else imports torch and registers every model.
"""
from __future__ import annotations

import importlib

# name -> defining submodule
_EXPORTS = {
    "build_backbone": "backbones", "list_backbones": "backbones",
    "EchoModel": "base", "FrameEmbedder": "base", "VideoModel": "base", "WindowClassifier": "base",
    "ModelConfig": "config",
    "build_model": "registry", "count_model_parameters": "registry", "count_parameters": "registry",
    "describe_model": "registry", "init_from_image_model": "registry", "list_models": "registry",
    "register_model": "registry",
    "UnrolledGRU": "unrolled_gru",
    "split_into_tokens": "weaving", "weave_features": "weaving",
    "AttentionClassifier": "attention", "ImageClassifier": "image", "RecurrentClassifier": "recurrent",
    "C3D": "video", "DiffTwoStream": "video",
    "TDCNN": "howard", "TemporalConvHead": "howard", "TwoStream": "howard",
    "I3D": "inflated", "inflate_2d_to_3d": "inflated", "inflate_from_image_model": "inflated",
    "STFM": "stfm", "split_resnet": "stfm", "UnrolledLSTM": "unrolled_lstm",
    "MultiStream": "multistream",
    "SonoNet": "sononet", "UnrolledConvLSTM": "convlstm",
    "SonoNetClassifier": "fetal", "FeatureTemporalModel": "fetal", "SonoNetRCN": "fetal", "SonoCNN2DT": "fetal",
}
# Registration order is the order `list_models()` and `echoweave models` show.
_MODEL_MODULES = ("image", "recurrent", "attention", "video", "howard", "inflated", "stfm", "fetal", "multistream")

__all__ = sorted(_EXPORTS)


def _register_all() -> None:
    for mod in _MODEL_MODULES:
        importlib.import_module(f"{__name__}.{mod}")


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    if _EXPORTS[name] != "config":
        _register_all()
    value = getattr(module, name)
    globals()[name] = value
    return value
