"""Evidential fusion of key clips (EV9V's STFM): numpy only, for the app and the Kotlin port.

A model trained with the evidential loss (``optim.loss: reedl``) outputs logits whose softplus is
the evidence for each class. A video is classified from ``count`` (10) key clips spread evenly
over it: each clip's Dirichlet parameters ``alpha = softplus(logits) + prior`` (prior 0.8, the
loss's ``evidence_prior``) are summed over the clips, the class is the argmax of the sum, and::

    probabilities = sum_clips(alpha) / S          S = sum over classes of sum_clips(alpha)
    uncertainty   = K / S

(the reference: bgx666/stfm ``trainSelective.test``, which sums ``softplus(output) + lamb2`` over
``--test_num_frames 10`` clips and takes the argmax; the uncertainty is the issue's ``K / S``).

Scale of the uncertainty: the reference's per-clip uncertainty (``losses.get_uncertainty``) is
``K * prior / S``, in (0, 1]; ``K / S`` is that divided by the prior (1.25 for one clip with no
evidence). Summed over N clips ``S >= N * K * prior``, so the fused uncertainty is at most
``1 / (N * prior)`` (0.125 for 10 clips): a threshold for selective classification belongs to one
N and one prior, and `key_clip_starts` always returns ``count`` clips (repeating positions in a
short video) so that N does not change with the video's length.

    from echoweave.edge.evidential import fuse, key_clip_starts
    starts = key_clip_starts(num_frames=120, span=21)        # 10 window starts
    logits = np.stack([run_forward(frames[s : s + 21 : 5]) for s in starts])  # (10, K)
    class_id, probabilities, uncertainty = fuse(logits)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: The reference's prior evidence per class (``lamb2``) and number of key clips (``test_num_frames``).
DEFAULT_PRIOR = 0.8
DEFAULT_KEY_CLIPS = 10


class Fusion(NamedTuple):
    """The fused answer for one video (unpacks as ``class_id, probabilities, uncertainty``).

    Attributes:
        class_id: argmax of the summed Dirichlet parameters.
        probabilities: ``(K,)`` float64, the summed parameters over their total (sums to 1).
        uncertainty: ``K / S``, S the total of the summed parameters (see the module docstring
            for its scale).
    """

    class_id: int
    probabilities: np.ndarray
    uncertainty: float


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow (float64)."""
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def fuse(logits_per_clip: np.ndarray, prior: float = DEFAULT_PRIOR) -> Fusion:
    """Evidential fusion of the logits of several clips of one video.

    Args:
        logits_per_clip: ``(N, K)`` model outputs (logits, not evidence), one row per key clip.
        prior: evidence every class starts with in every clip (``evidence_prior`` of the loss).

    Returns:
        `Fusion` ``(class_id, probabilities (K,), uncertainty)``.

    Raises:
        ValueError: not a non-empty ``(N, K)`` array of finite numbers, or ``prior <= 0``.
    """
    logits = np.asarray(logits_per_clip, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"fuse expects logits of shape (clips, classes), got {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("fuse: the logits hold NaN or infinite values")
    if prior <= 0:
        raise ValueError(f"fuse: prior must be > 0, got {prior}")
    alpha = (softplus(logits) + prior).sum(axis=0)  # (K,): Dirichlet parameters summed over clips
    total = float(alpha.sum())
    return Fusion(int(alpha.argmax()), alpha / total, logits.shape[1] / total)


def key_clip_starts(num_frames: int, span: int, count: int = DEFAULT_KEY_CLIPS) -> np.ndarray:
    """First frames of ``count`` windows of ``span`` frames spread evenly over a video.

    The starts run from 0 to ``num_frames - span`` (rounded to the nearest frame), so every
    window lies inside the video; a video shorter than ``span`` gives ``count`` zeros (the window
    is then padded by repeating the last frame, as `echoweave.edge.classifier` pads short clips).
    Exactly ``count`` starts are returned, repeated where the video is short (see the module
    docstring: the uncertainty's scale depends on the number of clips fused).

    Args:
        num_frames: frames of the video.
        span: frames one window covers, ``(T - 1) * frame_stride + 1`` (21 for STFM's 5 x 5).
        count: key clips (10 in the reference).

    Returns:
        ``(count,)`` int64 start frames, non-decreasing.
    """
    if num_frames < 1 or span < 1 or count < 1:
        raise ValueError(f"key_clip_starts needs num_frames, span and count >= 1, got {num_frames}, {span}, {count}")
    return np.linspace(0, max(0, num_frames - span), num=count).round().astype(np.int64)


def reference_key_clip_frames(num_frames: int, frames: int, stride: int,
                              count: int = DEFAULT_KEY_CLIPS) -> np.ndarray:
    """The frames of the reference's key clips (bgx666/stfm ``trainSelective.test``), for
    comparing with its published numbers.

    The reference centres clip i on frame ``floor(linspace(0, num_frames - 1, count))[i]`` and
    takes ``frames`` frames ``stride`` apart around it, clamping indices to the video, so its first
    and last clips repeat the first and last frames (half of each is the same frame).
    `key_clip_starts` keeps every window inside the video instead.

    Returns:
        ``(count, frames)`` int64 frame indices.
    """
    centres = np.floor(np.linspace(0, num_frames - 1, num=count)).astype(np.int64)  # (count,)
    offsets = (np.arange(frames) - frames // 2) * stride  # (frames,)
    return np.clip(centres[:, None] + offsets[None, :], 0, num_frames - 1)
