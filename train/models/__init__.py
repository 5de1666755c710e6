"""Model registry: image, gru, tfw, attention over a configurable torchvision backbone.

    from echoweave.train.models import ModelConfig, build_model, count_parameters
    model = build_model(ModelConfig(name="tfw", backbone="tiny", input_size=64))
    logits = model(model.example_inputs()[0])  # (1, K) from a (1, T, 1, 64, 64) clip in [0, 1]
    embed, classify = model.streaming_modules()

Importing this package registers every model (the model modules call `register_model`).
"""
from echoweave.train.models.backbones import build_backbone, list_backbones
from echoweave.train.models.base import EchoModel, FrameEmbedder, WindowClassifier
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import (
    build_model,
    count_model_parameters,
    count_parameters,
    describe_model,
    init_from_image_model,
    list_models,
    register_model,
)
from echoweave.train.models.unrolled_gru import UnrolledGRU
from echoweave.train.models.weaving import split_into_tokens, weave_features

# Registration order is the order `list_models()` and `echoweave models` show.
from echoweave.train.models import image as _image  # noqa: E402,F401  (registers "image")
from echoweave.train.models import recurrent as _recurrent  # noqa: E402,F401  ("gru", "tfw")
from echoweave.train.models import attention as _attention  # noqa: E402,F401  ("attention")
from echoweave.train.models.attention import AttentionClassifier  # noqa: E402
from echoweave.train.models.image import ImageClassifier  # noqa: E402
from echoweave.train.models.recurrent import RecurrentClassifier  # noqa: E402

__all__ = [
    "AttentionClassifier", "EchoModel", "FrameEmbedder", "ImageClassifier", "ModelConfig",
    "RecurrentClassifier", "UnrolledGRU", "WindowClassifier", "build_backbone", "build_model",
    "count_model_parameters", "count_parameters", "describe_model", "init_from_image_model",
    "list_backbones", "list_models", "register_model", "split_into_tokens", "weave_features",
]
