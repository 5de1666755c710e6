"""Uncertainty-aware sampling of training clips (EV9V's STFM): a bank of segment confidences.

Each training video is cut into segments of ``segment_size`` (20) frames. The bank keeps, per
segment, an exponential moving average of ``1 - uncertainty`` of the training clips centred in
it (the evidential uncertainty ``K * prior / sum(alpha)`` of the clip's logits,
`echoweave.train.engine.losses.evidential_uncertainty`). A training draw picks a segment
epsilon-greedily: with probability ``epsilon`` (0.2) a random segment (exploration), otherwise the
most confident one; the clip is then centred on a random frame of that segment. For the first
``warmup_epochs`` (5) epochs every draw explores (epsilon 1), so the bank fills before it steers.

Reference: bgx666/stfm ``data_utils/dataloader.py`` ``EchoSelectSegdata`` (segments, the -0.1
"never seen" value, EMA weight 0.3 on the new value, a random frame in the segment or its middle
with ``fixed_center``) and ``trainSelective.py`` (``1 - get_uncertainty`` into the bank after each
batch; epsilon 1.0 for epochs 1-5, then ``--epsilon 0.2``). Kept: all of those values. Changed:

- **Draws are pure functions** of ``(seed, epoch, item)`` and the bank's values (a generator per
  draw, as `echoweave.train.engine.data.WindowSamples` seeds windows), so an epoch is
  reproducible and, with the bank in the checkpoint (`state_dict`), a resumed run draws what the
  original would have.
- **Ties** between equally confident segments (every segment of an unseen video) are broken at
  random with that generator; the reference's ``argmax`` takes the first, so an unseen video's
  greedy draw is always its first segment.
- **Plan per epoch**: `plan_epoch` draws the whole epoch from the bank in the main process;
  updates made during the epoch steer the next one. In the reference the bank lives in the
  Dataset, which its DataLoader's persistent worker processes copied when they started: as far as
  its code reads, updates made in the main process (and the switch to epsilon 0.2 at epoch 6)
  never reached the workers that draw, so its sampling stayed uniform over segments.

Torch-free (numpy), like the other samplers.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: A segment no clip has been centred in yet (the reference's -0.1): below every confidence, so
#: the greedy choice prefers any segment already seen, and exploration finds the others.
UNSEEN = -0.1
STATE_VERSION = 1


class SegmentBank:
    """Per-segment EMA confidences of the training videos, and epsilon-greedy draws from them.

    Args:
        frames_per_video: ``{video id: number of frames}`` of the training videos (the id is the
            caller's, e.g. the store's clip index).
        segment_size: frames per segment (20); a video has ``ceil(frames / segment_size)``
            segments (at least 1), the last one possibly shorter.
        epsilon: exploration rate after the warm-up (0.2).
        warmup_epochs: epochs (0-based ``epoch < warmup_epochs``) in which every draw explores (5).
        ema: weight of a new confidence in the moving average (0.3: ``new * 0.3 + old * 0.7``).
        seed: seeds every draw together with the epoch and item.
        fixed_centre: centre the clip on the segment's middle frame instead of a random one.
    """

    def __init__(self, frames_per_video: Mapping[int, int], segment_size: int = 20, epsilon: float = 0.2,
                 warmup_epochs: int = 5, ema: float = 0.3, seed: int = 0, fixed_centre: bool = False):
        if segment_size < 1 or warmup_epochs < 0 or not 0.0 <= epsilon <= 1.0 or not 0.0 < ema <= 1.0:
            raise ValueError(f"SegmentBank needs segment_size >= 1, warmup_epochs >= 0, epsilon in [0, 1] and ema "
                             f"in (0, 1]; got {segment_size}, {warmup_epochs}, {epsilon}, {ema}")
        if not frames_per_video or min(frames_per_video.values()) < 1:
            raise ValueError("SegmentBank needs at least one video, each with at least one frame")
        self.frames = {int(v): int(n) for v, n in frames_per_video.items()}
        self.segment_size, self.epsilon, self.warmup_epochs = segment_size, epsilon, warmup_epochs
        self.ema, self.seed, self.fixed_centre = ema, seed, fixed_centre
        self.values = {v: np.full(self.num_segments(v), UNSEEN) for v in self.frames}

    # ---- the bank ----------------------------------------------------------------------------
    def num_segments(self, video: int) -> int:
        """Segments of ``video``: ``ceil(frames / segment_size)``, at least 1."""
        return max(1, -(-self.frames[video] // self.segment_size))

    def segment_of(self, video: int, frame: int) -> int:
        """The segment holding ``frame`` of ``video``."""
        return min(int(frame) // self.segment_size, self.num_segments(video) - 1)

    def update(self, video: int, centre_frame: int, confidence: float) -> None:
        """Fold one clip's confidence (``1 - uncertainty``) into the segment of its centre frame.

        The first value a segment gets replaces `UNSEEN`; later ones are averaged in with weight
        ``ema``.
        """
        confidence = float(confidence)
        if not np.isfinite(confidence):
            raise ValueError(f"SegmentBank.update: confidence must be finite, got {confidence}")
        seg = self.segment_of(video, centre_frame)
        old = self.values[video][seg]
        self.values[video][seg] = confidence if old == UNSEEN else self.ema * confidence + (1 - self.ema) * old

    def update_batch(self, videos: Iterable[int], centre_frames: Iterable[int], confidences: Iterable[float]) -> None:
        """`update` for every clip of a batch, in order."""
        for video, frame, conf in zip(videos, centre_frames, confidences, strict=True):
            self.update(int(video), int(frame), float(conf))

    # ---- draws ---------------------------------------------------------------------------------
    def epsilon_at(self, epoch: int) -> float:
        """Exploration rate of ``epoch`` (0-based): 1 during the warm-up, then ``epsilon``."""
        return 1.0 if epoch < self.warmup_epochs else self.epsilon

    def draw(self, video: int, epoch: int, item: int) -> tuple[int, int, bool]:
        """The training clip of ``item`` (a position in the epoch) from ``video``.

        Returns:
            ``(segment, centre frame, explored)``: ``explored`` is True when the segment was
            chosen at random rather than as the most confident one.
        """
        rng = np.random.default_rng((self.seed, epoch, item))
        values = self.values[video]
        explored = bool(rng.random() < self.epsilon_at(epoch))
        if explored:
            seg = int(rng.integers(len(values)))
        else:
            best = np.flatnonzero(values == values.max())
            seg = int(best[rng.integers(len(best))])
        start = seg * self.segment_size
        end = min(start + self.segment_size, self.frames[video])
        centre = (start + end) // 2 if self.fixed_centre else int(rng.integers(start, end))
        return seg, min(centre, self.frames[video] - 1), explored

    def plan_epoch(self, videos: Sequence[int], epoch: int) -> np.ndarray:
        """Centre frames of a whole epoch, item ``i`` drawn from ``videos[i]`` (see `draw`).

        Drawn in one place from the bank as it stands, so worker processes that load the clips
        need only the plan, never the bank.

        Returns:
            ``(len(videos),)`` int64 centre frames.
        """
        return np.array([self.draw(int(v), epoch, i)[1] for i, v in enumerate(videos)], dtype=np.int64)

    # ---- checkpoint --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The bank as plain lists and numbers (``torch.load(weights_only=True)`` reads it back)."""
        videos = sorted(self.frames)
        return {"version": STATE_VERSION, "segment_size": self.segment_size, "videos": videos,
                "frames": [self.frames[v] for v in videos],
                "values": [[float(x) for x in self.values[v]] for v in videos]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore values saved by `state_dict` from a bank of the same videos and segments.

        Raises:
            ValueError: another version, segment size, set of videos or frame counts (the bank of
                another split or dataset).
        """
        videos = sorted(self.frames)
        theirs = (state.get("version"), state.get("segment_size"), list(state.get("videos", [])),
                  list(state.get("frames", [])))
        ours = (STATE_VERSION, self.segment_size, videos, [self.frames[v] for v in videos])
        if theirs != ours:
            raise ValueError("SegmentBank.load_state_dict: the saved bank is of other videos or segments "
                             f"(version, segment_size, {len(theirs[2])} videos, frames differ from "
                             f"{ours[0]}, {ours[1]}, {len(videos)} videos)")
        for v, values in zip(videos, state["values"], strict=True):
            if len(values) != self.num_segments(v):
                raise ValueError(f"SegmentBank.load_state_dict: video {v} has {len(values)} saved segments, "
                                 f"expected {self.num_segments(v)}")
            self.values[v] = np.asarray(values, dtype=np.float64)


def window_around(centre: int, frames: int, stride: int, num_frames: int) -> np.ndarray:
    """Frame indices of a window of ``frames`` frames ``stride`` apart centred on ``centre``,
    clamped to the video (the reference's ``_get_clip_indices``: near an end the first or last
    frame repeats).

    >>> window_around(2, 5, 5, 100).tolist()
    [0, 0, 2, 7, 12]
    """
    offsets = (np.arange(frames) - frames // 2) * stride
    return np.clip(int(centre) + offsets, 0, num_frames - 1).astype(np.int64)


__all__ = ["SegmentBank", "UNSEEN", "window_around"]
