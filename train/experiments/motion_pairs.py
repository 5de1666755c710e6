"""Motion-only view pairs: a single frame cannot tell them apart, four consecutive frames can.

The phantom's ``MOTION_ONLY_PAIRS`` show one anatomy with the cardiac cycle running in opposite
directions. This experiment trains two tiny CNNs on CPU on those views, split by patient:

* single-frame: one frame in, view out;
* temporal: four consecutive frames in (the last frame plus the three frame differences as
  channels), view out.

Each is scored on held-out patients *within its pair* (is it A or B, given it is one of the pair),
where chance is 50 %. Run it:

    python -m echoweave.train.experiments.motion_pairs
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np

from echoweave.train.data.phantom import MOTION_ONLY_PAIRS, PhantomConfig, generate_clip, make_patient

WINDOW = 4


@dataclass(frozen=True)
class MotionPairSetup:
    """Sizes of the experiment (defaults run in about half a minute on one CPU thread).

    Attributes:
        train_patients: patients used for training.
        test_patients: held-out patients used for scoring.
        clips_per_view: clips of each view per patient.
        num_frames: frames per clip.
        size: frame side in pixels.
        difficulty: phantom difficulty.
        epochs: training epochs of each model.
        seed: phantom and torch seed.
        threads: torch CPU threads.
    """

    train_patients: int = 10
    test_patients: int = 6
    clips_per_view: int = 8
    num_frames: int = 12
    size: int = 64
    difficulty: float = 0.3
    epochs: int = 12
    seed: int = 0
    threads: int = 1


def pair_windows(setup: MotionPairSetup, first_patient: int, num_patients: int, stride: int = 2):
    """Four-frame windows of every clip of the motion-only views for a range of patients.

    Returns:
        windows ``(N, 4, H, W)`` uint8, labels ``(N,)`` (index into the flattened pairs: pair ``i``
        is labels ``2i`` and ``2i + 1``), clip numbers ``(N,)`` (which clip each window came from).
    """
    views = tuple(v for pair in MOTION_ONLY_PAIRS for v in pair)
    cfg = PhantomConfig(num_patients=first_patient + num_patients, clips_per_view=setup.clips_per_view,
                        num_frames=setup.num_frames, height=setup.size, width=setup.size,
                        difficulty=setup.difficulty, seed=setup.seed, class_set=views,
                        burned_in_text=False, ecg_strip=False)
    xs, ys, clip_numbers = [], [], []
    n_clips = 0
    for p in range(first_patient, first_patient + num_patients):
        patient = make_patient(p, setup.seed)
        for view in views:
            for c in range(setup.clips_per_view):
                clip = generate_clip(view, patient, c, cfg)
                for s in range(0, clip.num_frames - WINDOW + 1, stride):
                    xs.append(clip.frames[s:s + WINDOW])
                    ys.append(clip.label)
                    clip_numbers.append(n_clips)
                n_clips += 1
    return np.stack(xs), np.asarray(ys), np.asarray(clip_numbers)


def vertical_motion(frames: np.ndarray) -> np.ndarray:
    """Global vertical velocity of the lower half of each frame step (one Lucas-Kanade estimate).

    Args:
        frames: ``(T, H, W)`` uint8.

    Returns:
        ``(T - 1,)`` velocities in pixels per frame, positive = moving down (away from the probe).
    """
    f = frames.astype(np.float32)
    half = f.shape[1] // 2  # the valve ring of the motion-only views lives in the lower half
    dt = (f[1:] - f[:-1])[:, half:]  # (T-1, H/2, W)
    dy = np.gradient(0.5 * (f[1:] + f[:-1]), axis=1)[:, half:]  # (T-1, H/2, W)
    return -(dt * dy).sum(axis=(1, 2)) / ((dy**2).sum(axis=(1, 2)) + 1e-6)


def frame_statistics(views: tuple[str, str], num_patients: int = 6, clips_per_view: int = 4, num_frames: int = 16,
                     size: int = 40, seed: int = 0) -> dict:
    """Two numbers that say whether two views differ in single frames or only in motion.

    * ``mean_t2``: per-pixel two-sample t statistic of single frames (frame 0 of each clip, one
      sample per clip), squared and averaged over the fan. About 1 when the two views' frames
      come from one distribution, far above 1 when their anatomy differs.
    * ``downward_fraction``: for each view, the fraction of frame steps whose lower half moves
      down (see :func:`vertical_motion`), averaged over clips.
    """
    cfg = PhantomConfig(num_patients=num_patients, clips_per_view=clips_per_view, num_frames=num_frames,
                        height=size, width=size, seed=seed, class_set=tuple(views),
                        burned_in_text=False, ecg_strip=False)
    clips = [generate_clip(v, make_patient(p, seed), c, cfg)
             for p in range(num_patients) for v in views for c in range(clips_per_view)]
    labels = np.array([c.label for c in clips])
    first = np.stack([c.frames[0] for c in clips]).astype(np.float64)  # (N, H, W)
    a, b = first[labels == 0], first[labels == 1]
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    lit = se > 0  # pixels that ever vary (the fan)
    t = (a.mean(0) - b.mean(0))[lit] / se[lit]
    down = np.array([(vertical_motion(c.frames) > 0).mean() for c in clips])
    return {"views": list(views), "mean_t2": float(np.mean(t**2)), "clips_per_view": int(len(a)),
            "downward_fraction": {views[k]: float(down[labels == k].mean()) for k in (0, 1)}}


def _inputs(windows: np.ndarray, temporal: bool):
    """Network input: the last frame, plus the frame differences when ``temporal``."""
    import torch

    x = torch.from_numpy(windows).float() / 255.0  # (N, 4, H, W)
    if not temporal:
        return x[:, -1:]  # (N, 1, H, W)
    diffs = (x[:, 1:] - x[:, :-1]) * 4.0  # (N, 3, H, W); scaled up, motion is a small signal
    return diffs


def tiny_cnn(in_channels: int, num_classes: int):
    """Three strided convolutions, then average and max pooling over space, then a linear layer."""
    import torch
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            )
            self.head = nn.Linear(64, num_classes)

        def forward(self, x):
            f = self.features(x)  # (B, 32, H/8, W/8)
            pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)  # (B, 64)
            return self.head(pooled)  # (B, K)

    return TinyCNN()


def train_and_score(train_x, train_y, test_x, test_y, temporal: bool, setup: MotionPairSetup) -> dict:
    """Train one tiny CNN and return its held-out within-pair accuracy (overall and per pair)."""
    import torch
    from torch import nn

    torch.manual_seed(setup.seed)
    xtr, xte = _inputs(train_x, temporal), _inputs(test_x, temporal)
    ytr = torch.from_numpy(train_y).long()
    model = tiny_cnn(xtr.shape[1], 2 * len(MOTION_ONLY_PAIRS))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = setup.epochs * int(np.ceil(len(xtr) / 32))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(setup.seed)
    model.train()
    for _ in range(setup.epochs):
        for idx in torch.randperm(len(xtr), generator=gen).split(32):
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(b) for b in xte.split(256)]).numpy()  # (N, 2P)
    # Within-pair decision: compare only the two logits of the true pair (chance 50 %).
    pair = test_y // 2
    pair_logits = logits.reshape(len(logits), -1, 2)[np.arange(len(logits)), pair]  # (N, 2)
    correct = pair_logits.argmax(1) == test_y % 2
    per_pair = {f"{a}|{b}": float(correct[pair == i].mean()) for i, (a, b) in enumerate(MOTION_ONLY_PAIRS)}
    return {"accuracy": float(correct.mean()), "per_pair": per_pair, "n_test": int(len(correct)),
            "four_way_accuracy": float((logits.argmax(1) == test_y).mean())}


def run(setup: MotionPairSetup = MotionPairSetup()) -> dict:
    """Generate the data, train both models, and return a JSON-able report."""
    import torch

    t0 = time.time()
    threads = torch.get_num_threads()
    torch.set_num_threads(setup.threads)
    try:
        train_x, train_y, _ = pair_windows(setup, 0, setup.train_patients)
        test_x, test_y, _ = pair_windows(setup, setup.train_patients, setup.test_patients)
        t_data = time.time() - t0
        single = train_and_score(train_x, train_y, test_x, test_y, temporal=False, setup=setup)
        temporal = train_and_score(train_x, train_y, test_x, test_y, temporal=True, setup=setup)
    finally:
        torch.set_num_threads(threads)  # the thread pool is process-wide; leave it as found
    stats = [frame_statistics(pair, seed=setup.seed) for pair in MOTION_ONLY_PAIRS]
    return {
        "pairs": [list(p) for p in MOTION_ONLY_PAIRS],
        "setup": asdict(setup),
        "n_train_windows": int(len(train_y)),
        "single_frame": single,
        "temporal": temporal,
        "chance": 0.5,
        "frame_statistics": stats,
        "seconds": {"data": round(t_data, 2), "total": round(time.time() - t0, 2)},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
