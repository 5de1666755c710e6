"""The model contract: `VideoModel` declares itself; `EchoModel` is the per-frame family.

Every registered model is a `VideoModel`. It declares (docs/ARCHITECTURE.md "The model contract"):

- its **methods**: always a window ``forward``; optionally the streaming pair
  ``embed_frame`` (one frame -> a feature) and ``classify_window`` (T features -> logits);
- its **inputs**: ``forward`` takes the preprocessed pixel clip and, optionally, inputs derived
  from it on the device (``derive`` specs of `echoweave.edge.derived_inputs`, e.g. a
  frame-difference motion stream), each with its shape and layout;
- its **aggregation**: how the edge turns window outputs into a clip answer (``window``: the
  window logits; ``mean_vote``: the graph already returns the log mean of per-frame
  probabilities).

Export, parity, the manifest, `echoweave.edge.Classifier`/`StreamingClassifier` and the
benchmarks iterate what the model declares (`method_modules`, `input_spec`); nothing outside a
model's own file branches on its name. A model without the streaming split still streams: the
edge keeps the last window of preprocessed frames and recomputes ``forward`` (and says so).

The per-frame family (`EchoModel`, image/gru/tfw/attention):

    embed_frame(frame (B, C, H, W))        -> feature (B, D)     normalize -> backbone -> fc0 -> ReLU
    classify_window(features (B, T, D))    -> logits (B, K)      model-specific head
    forward(clip (B, T, C, H, W))          -> logits (B, K)      == classify_window(stack_t embed_frame(clip[:, t]))

Pixels enter in [0, 1]; normalization (mean/std from the config) is a buffer inside the graph,
so an exported artifact takes plain grayscale pixels.

The per-frame feature is the fc0 output *after* its ReLU: that is what the image model's fc1
consumes (dropout aside), the same tensor for every model of the family, so stage 2 can start
from the stage-1 image model (`init_from_image_model`).
"""
from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from echoweave.edge.derived_inputs import derive_batch, derived_shape
from echoweave.edge.manifest import STREAMING_METHODS
from echoweave.train.models.backbones import build_backbone
from echoweave.train.models.config import ModelConfig


def _io(name: str, shape: list[int], layout: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": "float32", "layout": layout, **extra}


class VideoModel(nn.Module, abc.ABC):
    """Base of every registered model: a window ``forward`` over declared inputs.

    Subclasses implement ``forward(clip, *derived)`` and may override `derived_inputs` (extra
    ``forward`` inputs computed from the clip), `aggregation`, and `method_modules` (to add the
    streaming split, as `EchoModel` does).

    Attributes:
        cfg: The `ModelConfig` the model was built from.
        frames: T, the window length.
        num_classes: K.
    """

    #: Set by `register_model` on the class the builder returns.
    model_name: str = ""
    #: How window outputs become a clip answer on the edge (``manifest.AGGREGATIONS``).
    aggregation: str = "window"
    #: Why ``contrast: window_mean`` cannot apply (None where the model has a window head over
    #: per-frame features that it can contrast).
    contrast_refusal: str | None = "has no per-frame window head to contrast"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.frames = cfg.frames
        self.num_classes = cfg.num_classes
        if cfg.contrast != "none" and self.contrast_refusal:
            raise ValueError(f"{cfg.name} {self.contrast_refusal}; contrast must be 'none', got {cfg.contrast!r}")
        # Non-persistent: the config is the single source of mean/std (it travels to the manifest).
        mean = torch.tensor(cfg.mean, dtype=torch.float32).expand(cfg.in_channels).clone()
        std = torch.tensor(cfg.std, dtype=torch.float32).expand(cfg.in_channels).clone()
        self.register_buffer("pixel_mean", mean.view(1, -1, 1, 1), persistent=False)  # (1, C, 1, 1)
        self.register_buffer("pixel_std", std.view(1, -1, 1, 1), persistent=False)  # (1, C, 1, 1)

    # ---- declarations --------------------------------------------------------------------
    def derived_inputs(self) -> list[dict[str, Any]]:
        """Extra ``forward`` inputs computed from the clip, in argument order:
        ``[{"name", "layout", "derive": {"kind", "from": "clip", ...}}]`` (none by default)."""
        return []

    def method_modules(self) -> dict[str, nn.Module]:
        """Each declared method as an eval-ready module sharing this model's weights (``forward`` first)."""
        return {"forward": self}

    def export_limits(self) -> dict[tuple[str, str], str]:
        """Formats this model's operators cannot go to: ``{(format, precision or "*"): reason}``.

        The format table (`echoweave.edge.formats`) holds what a format cannot do for any model;
        this holds what only this model's operators hit (found by trying, stated with the
        toolchain's own error). The export skips these with the reason, in the manifest.
        """
        return {}

    @property
    def methods(self) -> tuple[str, ...]:
        """Names of the declared methods."""
        return tuple(self.method_modules())

    @property
    def streams_per_frame(self) -> bool:
        """True if the model declares the streaming split (`STREAMING_METHODS`)."""
        return all(m in self.methods for m in STREAMING_METHODS)

    @property
    def window_span(self) -> int:
        """Frames of the clip one window covers."""
        return self.cfg.window_span

    # ---- inputs ------------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``[0, 1]`` pixels ``(..., C, H, W)`` -> network input (the config's mean/std, in the graph)."""
        return (x - self.pixel_mean) / self.pixel_std

    def check_clip(self, clip: torch.Tensor) -> None:
        """Raise ValueError unless ``clip`` is ``(B, T, C, H, W)`` with this model's T and C."""
        expected = (self.frames, self.cfg.in_channels)
        if not torch.jit.is_tracing() and (clip.dim() != 5 or (clip.shape[1], clip.shape[2]) != expected):
            raise ValueError(f"{type(self).__name__} expects a clip (B, {self.frames}, "
                             f"{self.cfg.in_channels}, H, W), got {tuple(clip.shape)}")

    def derive(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The derived inputs of a clip ``(B, T, C, H, W)``, computed exactly as the edge does
        (`echoweave.edge.derived_inputs`, numpy on the CPU), on the clip's device."""
        if not self.derived_inputs():
            return ()
        windows = clip.detach().float().cpu().numpy()
        return tuple(torch.from_numpy(derive_batch(spec["derive"], windows)).to(clip.device, clip.dtype)
                     for spec in self.derived_inputs())

    def forward_inputs(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every ``forward`` argument for a pixel clip: ``(clip, *derived)``."""
        return (clip, *self.derive(clip))

    # ---- what export and benchmarks need -------------------------------------------------
    def _method_shapes(self, batch_size: int = 1) -> dict[str, dict[str, list[dict[str, Any]]]]:
        c, s, t, k = self.cfg.in_channels, self.cfg.input_size, self.frames, self.num_classes
        window = (t, c, s, s)
        inputs = [_io("clip", [batch_size, *window], "NTCHW")]
        for spec in self.derived_inputs():
            shape = derived_shape(spec["derive"], window)
            inputs.append(_io(spec["name"], [batch_size, *shape], spec.get("layout", ""),
                              derive=dict(spec["derive"])))
        return {"forward": {"inputs": inputs, "outputs": [_io("logits", [batch_size, k], "NK")]}}

    def example_inputs(self, method: str = "forward", batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        """Deterministic example inputs (seeded) for ``method``, as a tuple for `torch.export`.

        Pixel inputs are U[0, 1); derived inputs are computed from them, as on the device.
        """
        shapes = self._method_shapes(batch_size)
        if method not in shapes:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(shapes)}")
        gen = torch.Generator().manual_seed(0)
        first = torch.rand(shapes[method]["inputs"][0]["shape"], generator=gen)
        if method == "forward":
            return self.forward_inputs(first)
        return (first,)

    def input_spec(self) -> dict[str, Any]:
        """Plain-dict description of the declared methods' inputs/outputs for the manifest."""
        return {
            "model": self.cfg.name,
            "backbone": self.cfg.backbone,
            "frames": self.frames,
            "input_size": self.cfg.input_size,
            "in_channels": self.cfg.in_channels,
            "num_classes": self.num_classes,
            "frame_stride": self.cfg.frame_stride,
            "contrast": self.cfg.contrast,
            "pixel_range": [0.0, 1.0],
            "normalization": {"mean": list(self.cfg.mean), "std": list(self.cfg.std), "in_graph": True},
            "aggregation": self.aggregation,
            "methods": self._method_shapes(1),
        }

    def streaming_modules(self) -> tuple[nn.Module, nn.Module] | None:
        """``(embed_frame module, classify_window module)``, or None without the streaming split."""
        mods = self.method_modules()
        return (mods["embed_frame"], mods["classify_window"]) if self.streams_per_frame else None


class EchoModel(VideoModel):
    """The per-frame family: backbone + fc0 per frame, a window head per subclass.

    Declares the streaming split (``embed_frame``, ``classify_window``) besides ``forward``.
    Subclasses implement `forward_head(features (B, T, D)) -> logits (B, K)`.

    Attributes:
        feature_dim: D, the per-frame feature size.
    """

    contrast_refusal = None

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.feature_dim = cfg.resolved_feature_dim
        self.backbone, self.backbone_dim = build_backbone(cfg.backbone, cfg.in_channels, cfg.width)
        self.fc0 = nn.Linear(self.backbone_dim, self.feature_dim)
        self.act0 = nn.ReLU()
        # Feature contrast (docs/motion.md): window-mean-subtracted features are small next to the
        # raw ones, and a GRU fed them without rescaling never leaves chance; standardise them.
        self.contrast_norm = FeatureStandardizer(self.feature_dim) if cfg.contrast == "window_mean" else None

    # ---- the streaming split -------------------------------------------------------------
    def embed_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Per-frame feature of `[0, 1]` pixels.

        Args:
            frame: `(B, C, H, W)` float pixels in [0, 1].

        Returns:
            `(B, D)` features (fc0 output after ReLU).
        """
        x = self.normalize(frame)  # (B, C, H, W)
        x = self.backbone(x)  # (B, F) pooled
        return self.act0(self.fc0(x))  # (B, D)

    def classify_window(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of a window of per-frame features.

        Args:
            features: `(B, T, D)` outputs of `embed_frame` for T = `frames` consecutive frames.

        Returns:
            `(B, K)` logits.
        """
        # Shape checks are skipped under jit.trace, where sizes are traced values (TracerWarning).
        if not torch.jit.is_tracing() and tuple(features.shape[1:]) != (self.frames, self.feature_dim):
            raise ValueError(f"{type(self).__name__}.classify_window expects features "
                             f"(B, {self.frames}, {self.feature_dim}), got {tuple(features.shape)}")
        if self.contrast_norm is not None:
            features = self.contrast_norm(window_contrast(features))  # (B, T, D)
        return self.forward_head(features)

    # ---- timm-style split and the window forward -----------------------------------------
    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """Embed every frame of a clip in one backbone batch.

        Args:
            clip: `(B, T, C, H, W)` float pixels in [0, 1], T = `frames`.

        Returns:
            `(B, T, D)` features.
        """
        self.check_clip(clip)
        # flatten/unflatten with the configured T instead of sizes read from the input: no
        # shape arithmetic in the graph (it breaks the jit.trace path of coremltools).
        feats = self.embed_frame(clip.flatten(0, 1))  # (B*T, D)
        return feats.unflatten(0, (-1, self.frames))  # (B, T, D)

    @abc.abstractmethod
    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Model-specific window head: `(B, T, D)` features -> `(B, K)` logits."""

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Window logits `(B, K)` of a clip `(B, T, C, H, W)` of [0, 1] pixels."""
        return self.classify_window(self.forward_features(clip))

    # ---- declarations ----------------------------------------------------------------------
    def method_modules(self) -> dict[str, nn.Module]:
        return {"forward": self, "embed_frame": FrameEmbedder(self), "classify_window": WindowClassifier(self)}

    def _method_shapes(self, batch_size: int = 1) -> dict[str, dict[str, list[dict[str, Any]]]]:
        c, s, t, d, k = self.cfg.in_channels, self.cfg.input_size, self.frames, self.feature_dim, self.num_classes
        logits = _io("logits", [batch_size, k], "NK")
        return {
            **super()._method_shapes(batch_size),
            "embed_frame": {"inputs": [_io("frame", [batch_size, c, s, s], "NCHW")],
                            "outputs": [_io("feature", [batch_size, d], "ND")]},
            "classify_window": {"inputs": [_io("features", [batch_size, t, d], "NTD")], "outputs": [logits]},
        }

    def input_spec(self) -> dict[str, Any]:
        return {**super().input_spec(), "feature_dim": self.feature_dim}


def window_contrast(features: torch.Tensor) -> torch.Tensor:
    """Each frame's feature minus the mean feature of its window (``contrast: window_mean``).

    What is static over a window (the clip's appearance, which a head can memorise per training
    patient) cancels; what changes (the motion) stays. Computed inside ``classify_window`` so a
    streamed window and an exported artifact see exactly the same thing.

    Args:
        features: ``(B, T, D)`` per-frame features.

    Returns:
        ``(B, T, D)`` features with zero mean over T.
    """
    # Mean over T as a 4-d global average pool, the form XNNPACK's mean lowers (as in image.py).
    mean = features.transpose(1, 2).unsqueeze(-1).mean(dim=(-2, -1), keepdim=True)  # (B, D, 1, 1)
    return features - mean.flatten(1).unsqueeze(1)  # (B, T, D)


class FeatureStandardizer(nn.Module):
    """Per-dimension standardisation of window-head inputs ``(B, T, D)``.

    Training normalises with batch statistics (``nn.BatchNorm1d`` over every frame of the batch)
    and keeps running estimates; inference applies them as one fixed affine written as
    elementwise ops, which every edge toolchain delegates (a batch-norm op on a 3-d tensor is not
    guaranteed to lower).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.bn(x.flatten(0, 1)).unflatten(0, x.shape[:2])  # (B, T, D)
        scale = self.bn.weight * torch.rsqrt(self.bn.running_var + self.bn.eps)  # (D,)
        return (x - self.bn.running_mean) * scale + self.bn.bias  # (B, T, D)


class FrameEmbedder(nn.Module):
    """`forward = model.embed_frame` as its own module (shares the model's parameters)."""

    def __init__(self, model: EchoModel):
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.model.embed_frame(frame)  # (B, D)


class WindowClassifier(nn.Module):
    """`forward = model.classify_window` as its own module (shares the model's parameters)."""

    def __init__(self, model: EchoModel):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.classify_window(features)  # (B, K)
