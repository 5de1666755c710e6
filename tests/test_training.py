"""Training engine: configs parse, a real run learns, checkpoints are atomic and resumable, DDP works."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from echoweave.edge.errors import EchoweaveError
from echoweave.train.config import TrainConfig
from echoweave.train.engine import checkpoint as ckpt
from echoweave.train.engine import run as run_mod
from echoweave.train.engine.data import load_store
from echoweave.train.engine.recipe import CONFIG_DIR, load_recipe, stage_config
from echoweave.train.engine.run import run_training
from tests.helpers.tiny import tiny_config

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store():
    return load_store(tiny_config("unused").data, show_progress=False)


def test_shipped_configs_parse():
    files = sorted(CONFIG_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {"paper_stage1_image", "paper_stage2_tfw", "demo_cpu", "table2_cpu"}
    for f in files:
        data = yaml.safe_load(f.read_text())
        if "stage1" in data:  # a recipe: every stage and variant resolves to a valid TrainConfig
            recipe = load_recipe(f)
            names = ["stage1", "stage2", *recipe.get("variants", {})]
            cfgs = [stage_config(recipe, n, "/tmp/x") for n in names]
            assert cfgs[0].stage == "image" and all(c.stage == "temporal" for c in cfgs[1:])
            # Stage 2 starts from stage 1 (a variant with its own stage 1, e.g. another backbone, from
            # that), except models trained from scratch (said explicitly: null) and qat fine-tuning of
            # an earlier variant of the recipe.
            earlier = lambda n: {f"/tmp/x/{m}" for m in names[1:names.index(n)]}  # noqa: E731
            assert all(c.init_from in ("/tmp/x/stage1", f"/tmp/x/{n}_stage1")
                       or (c.init_from is None and not c.freeze_backbone)
                       or (c.qat and c.init_from in earlier(n)) for n, c in zip(names[1:], cfgs[1:]))
        else:
            cfg = TrainConfig.from_dict(data)
            # NED's recipes: beta1/momentum 0.75; Howard's (Keras Adam), EV9V's (AdamW) and the fetal
            # workflow's (SGD momentum / Adam defaults) use 0.9
            if not f.stem.startswith(("paper_howard", "howard", "paper_stfm", "stfm", "fetal")):
                assert cfg.optim.momentum == 0.75, f.name
    s1 = TrainConfig.from_dict(yaml.safe_load((CONFIG_DIR / "paper_stage1_image.yaml").read_text()))
    s2 = TrainConfig.from_dict(yaml.safe_load((CONFIG_DIR / "paper_stage2_tfw.yaml").read_text()))
    assert (s1.optim.lr, s1.optim.weight_decay, s1.optim.epochs, s1.optim.batch_size) == (0.08, 5e-4, 50, 16)
    assert (s2.optim.lr, s2.optim.weight_decay, s2.optim.epochs, s2.model.name) == (0.003, 1e-3, 60, "tfw")
    assert s1.model.backbone == s2.model.backbone == "resnet50"


def test_unknown_config_keys_are_errors():
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"optim": {"learning_rate": 1.0}})
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"model": {"name": "tfw", "hidden": 3}})


def test_unknown_model_is_a_clear_error(tmp_path, store):
    cfg = tiny_config(tmp_path, model={"name": "transformer9000"})
    with pytest.raises(ValueError, match="transformer9000"):
        run_training(cfg, store=store, show_progress=False)


def test_run_writes_checkpoint_with_metadata(tmp_path, store):
    result = run_training(tiny_config(tmp_path / "run"), store=store, show_progress=False)
    state, meta, folder = ckpt.load_checkpoint(tmp_path / "run")
    assert folder.name == "epoch_0002" and meta["epoch"] == 2
    assert meta["class_names"][0] == "APICAL_5C" and len(meta["class_names"]) == 12
    assert meta["preprocessing"]["crop"] == 32 and meta["model"]["input_size"] == 32
    assert meta["model"]["num_classes"] == 12
    # Validation patients are disjoint from training patients.
    val = set(meta["split"]["val_patients"])
    train_patients = set(store.patients) - val
    assert val and train_patients
    assert set(state) == set(result.model.state_dict())
    assert (tmp_path / "run" / "tb").is_dir() and any((tmp_path / "run" / "tb").iterdir())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and np.isfinite(metrics["final"]["train_loss"])


def test_resume_after_kill_equals_uninterrupted(tmp_path, store, monkeypatch):
    full = run_training(tiny_config(tmp_path / "full", optim={"epochs": 3}), store=store, show_progress=False)

    calls = {"n": 0}
    real = run_mod.train_one_epoch

    def dies_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process is killed during epoch 2
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "train_one_epoch", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_config(tmp_path / "killed", optim={"epochs": 3}), store=store, show_progress=False)
    assert ckpt.find_checkpoint(tmp_path / "killed").name == "epoch_0001"
    monkeypatch.setattr(run_mod, "train_one_epoch", real)
    loads, real_load = [], ckpt.load_checkpoint
    monkeypatch.setattr(ckpt, "load_checkpoint", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    resumed = run_training(tiny_config(tmp_path / "killed", optim={"epochs": 3}, resume=True), store=store,
                           show_progress=False)
    assert len(loads) == 1, "an incomplete run's weights are read once on resume"
    monkeypatch.setattr(ckpt, "load_checkpoint", real_load)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run must end with identical weights"
    # and it really trained on after resuming (weights differ from the epoch-1 checkpoint)
    s1, _, _ = ckpt.load_checkpoint(tmp_path / "killed" / "checkpoints" / "epoch_0001") if (
        tmp_path / "killed" / "checkpoints" / "epoch_0001").exists() else (None, None, None)
    if s1 is not None:
        assert any(not torch.equal(s1[k], b[k]) for k in s1)


def test_nan_loss_stops_without_overwriting_checkpoint(tmp_path, store, monkeypatch):
    run_training(tiny_config(tmp_path, optim={"epochs": 1}), store=store, show_progress=False)
    before = (tmp_path / "checkpoints" / "epoch_0001" / ckpt.WEIGHTS).read_bytes()
    from echoweave.train.models.recurrent import RecurrentClassifier

    monkeypatch.setattr(RecurrentClassifier, "forward_head", lambda self, f: f[:, -1, :1].expand(
        -1, self.num_classes) * float("nan"))
    with pytest.raises(EchoweaveError, match="loss became nan"):
        run_training(tiny_config(tmp_path, optim={"epochs": 2}, resume=True), store=store, show_progress=False)
    assert ckpt.find_checkpoint(tmp_path).name == "epoch_0001"
    assert (tmp_path / "checkpoints" / "epoch_0001" / ckpt.WEIGHTS).read_bytes() == before


def test_stage2_from_stage1_and_class_mismatch(tmp_path, store):
    run_training(tiny_config(tmp_path / "s1", stage="image", model={"name": "image"}, optim={"epochs": 1}),
                 store=store, show_progress=False)
    s1_state, meta, _ = ckpt.load_checkpoint(tmp_path / "s1")
    r2 = run_training(tiny_config(tmp_path / "s2", init_from=str(tmp_path / "s1"), optim={"epochs": 1, "lr": 0.0}),
                      store=store, show_progress=False)
    # lr 0 (momentum aside, no step changes weights): the backbone is exactly stage 1's
    got = r2.model.state_dict()
    conv = [k for k, v in s1_state.items() if k.startswith("backbone.") and v.ndim == 4][0]
    assert torch.equal(got[conv], s1_state[conv])
    # A stage-1 checkpoint trained on other classes is refused.
    meta["class_names"] = list(reversed(meta["class_names"]))
    ckpt.write_json_atomic(tmp_path / "s1" / "checkpoints" / "epoch_0001" / ckpt.META, meta)
    with pytest.raises(EchoweaveError, match="do not match"):
        run_training(tiny_config(tmp_path / "s3", init_from=str(tmp_path / "s1"), optim={"epochs": 1}),
                     store=store, show_progress=False)


def test_frozen_backbone_with_cached_features_trains_only_the_head(tmp_path, store):
    run_training(tiny_config(tmp_path / "s1", stage="image", model={"name": "image"}, optim={"epochs": 1}),
                 store=store, show_progress=False)
    s1_state, _, _ = ckpt.load_checkpoint(tmp_path / "s1")
    r2 = run_training(tiny_config(tmp_path / "s2", init_from=str(tmp_path / "s1"), freeze_backbone=True,
                                  cache_features=True, optim={"epochs": 2, "lr": 0.05}),
                      store=store, show_progress=False)
    got = r2.model.state_dict()
    for k, v in s1_state.items():
        if k.startswith(("backbone.", "fc0.")) and v.dtype.is_floating_point and "running" not in k:
            assert torch.equal(got[k], v), k
    assert r2.metrics["val_clip_accuracy"] >= 0.0


def test_empty_split_is_an_error(tmp_path, store):
    with pytest.raises(EchoweaveError, match="empty split"):
        run_training(tiny_config(tmp_path), store=store, train_idx=[], val_idx=[0], show_progress=False)


def test_ddp_two_processes_gloo(tmp_path):
    cfg = tiny_config(tmp_path / "ddp", optim={"epochs": 1}).to_dict()
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
         "-m", "echoweave", "train", "--config", str(path), "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, meta, folder = ckpt.load_checkpoint(tmp_path / "ddp")
    assert folder.name == "epoch_0001"
    # Both ranks contributed: the all-reduced sample count covers the whole training split
    # (DistributedSampler pads to an even split, so at most one duplicate).
    n_train = meta["split"]["train_clips"] * cfg["data"]["train_windows"]
    assert n_train <= meta["metrics"]["train_samples"] <= n_train + 1
