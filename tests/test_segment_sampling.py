"""Uncertainty-aware segment sampling wired into training (``data.segment_sampling``): windows
centred where the bank plans, the bank fed with each window's evidential confidence, saved with
the checkpoint, and a resumed run equal to an uninterrupted one."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from echoweave.edge.errors import EchoweaveError  # noqa: E402
from echoweave.train.data.transforms import eval_transform  # noqa: E402
from echoweave.train.data.uncertainty_sampling import UNSEEN, SegmentBank, window_around  # noqa: E402
from echoweave.train.engine.checkpoint import load_train_state  # noqa: E402
from echoweave.train.engine.data import WindowSamples, load_store  # noqa: E402
from tests.helpers.tiny import tiny_config  # noqa: E402

torch.set_num_threads(1)
SAMPLING = {"segment_sampling": True, "segment_size": 4, "segment_warmup_epochs": 1, "augment": False}
REEDL = {"loss": "reedl", "epochs": 3}


def test_training_windows_are_centred_where_the_bank_plans():
    cfg = tiny_config("unused")
    store = load_store(cfg.data, show_progress=False)
    clips = [0, 1, 2]
    bank = SegmentBank({c: store.clips[c].num_frames for c in clips}, segment_size=4, warmup_epochs=0, seed=3)
    bank.update(1, 6, 0.9)  # clip 1's second segment (frames 4-7) is the confident one
    ds = WindowSamples(store, clips, eval_transform(cfg.data.preprocessing), 4, "consecutive", train=True,
                       repeats=5, stride=2, bank=bank)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        np.testing.assert_array_equal(ds.centres, bank.plan_epoch([c for c, _ in ds.items], epoch))
        for i, (c, _) in enumerate(ds.items):
            item = ds[i]
            assert item["clip"] == c and item["centre"] == ds.centres[i]
            expected = store.clips[c].frames[window_around(ds.centres[i], 4, 2, store.clips[c].num_frames)]
            np.testing.assert_array_equal(item["x"].numpy(), ds.transform(torch.as_tensor(expected)[:, None]).numpy())
    greedy = [ds.centres[i] for i, (c, _) in enumerate(ds.items) if c == 1]
    assert sum(4 <= f < 8 for f in greedy) >= 3  # epsilon 0.2: mostly the confident segment
    with pytest.raises(EchoweaveError, match="consecutive sampler"):
        WindowSamples(store, clips, None, 4, "spaced", train=True, bank=bank)


def test_a_run_feeds_the_bank_saves_it_and_resumes_exactly(tmp_path):
    from echoweave.train.engine.run import run_training

    def run(out, **over):
        cfg = tiny_config(out, data=SAMPLING, optim=REEDL, keep_checkpoints=3, **over)
        return run_training(cfg, show_progress=False)

    full = run(tmp_path / "full")
    state = load_train_state(full.checkpoint)
    bank = state["segment_bank"]
    values = np.concatenate([np.asarray(v) for v in bank["values"]])
    assert bank["segment_size"] == 4 and (values != UNSEEN).any() and ((values == UNSEEN) | (values > 0)).all()
    # interrupted after epoch 2, resumed: the same bank and the same weights as the run that never stopped
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "epoch_0003")
    resumed = run(tmp_path / "cut", resume=True)
    assert load_train_state(resumed.checkpoint)["segment_bank"] == bank
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_segment_sampling_needs_the_evidential_loss(tmp_path):
    from echoweave.train.engine.run import run_training

    with pytest.raises(EchoweaveError, match="needs optim.loss: reedl"):
        run_training(tiny_config(tmp_path, data=SAMPLING, optim={"epochs": 1}), show_progress=False)
