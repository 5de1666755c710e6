"""Knowledge distillation (`echoweave.train.engine.distill`): the loss, that it pulls the student
toward the teacher, the refusals, resume, and K-fold variants distilled from another variant.
Tiny backbones, 32 px inputs, one CPU thread."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
import yaml

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.manifest import sha256_file
from echoweave.train.config import DistillConfig, TrainConfig
from echoweave.train.engine import checkpoint as ckpt
from echoweave.train.engine import run as run_mod
from echoweave.train.engine.data import load_store
from echoweave.train.engine.distill import Teacher, distillation_loss, soft_kl
from echoweave.train.engine.recipe import stage_config
from echoweave.train.engine.run import build_run_model, run_training
from tests.helpers.tiny import tiny_config, tiny_recipe

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store():
    return load_store(tiny_config("unused").data, show_progress=False)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory, store):
    """A tiny stage-1 image teacher and a TFW teacher trained from it (one epoch each)."""
    root = tmp_path_factory.mktemp("teachers")
    run_training(tiny_config(root / "image", stage="image", model={"name": "image"}, optim={"epochs": 1}),
                 store=store, show_progress=False)
    run_training(tiny_config(root / "tfw", init_from=str(root / "image"), optim={"epochs": 1}), store=store,
                 show_progress=False)
    return root


def test_distillation_loss_equals_a_hand_computation():
    student = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    teacher = torch.tensor([[1.0, 2.0, 0.0], [-2.0, 0.5, 1.5]])
    target = torch.tensor([0, 2])
    T, alpha = 2.0, 0.7

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    kl, ce = 0.0, 0.0
    for s, t, y in zip(student.numpy().astype(np.float64), teacher.numpy().astype(np.float64), target.numpy()):
        p_t, p_s = softmax(t / T), softmax(s / T)
        kl += float(np.sum(p_t * (np.log(p_t) - np.log(p_s))))
        ce += -math.log(softmax(s)[y])
    kl, ce = kl / 2, ce / 2
    loss, got_kl = distillation_loss(student, teacher, target, T, alpha)
    assert got_kl.item() == pytest.approx(kl, rel=1e-5)
    assert loss.item() == pytest.approx(alpha * T * T * kl + (1 - alpha) * ce, rel=1e-5)
    # alpha 0 is the plain cross-entropy; a student equal to its teacher has zero KL
    assert distillation_loss(student, teacher, target, T, 0.0)[0].item() == pytest.approx(ce, rel=1e-5)
    assert soft_kl(teacher, teacher, T).item() == pytest.approx(0.0, abs=1e-7)


def test_config_validates_and_round_trips():
    cfg = TrainConfig.from_dict({"distill": {"teacher": "runs/t", "temperature": 3.0, "alpha": 0.5}})
    assert TrainConfig.from_dict(cfg.to_dict()).distill == DistillConfig("runs/t", 3.0, 0.5)
    for bad in ({"teacher": ""}, {"teacher": "x", "temperature": 0}, {"teacher": "x", "alpha": 1.5}):
        with pytest.raises(ValueError):
            TrainConfig.from_dict({"distill": bad})
    with pytest.raises(ValueError, match="unknown DistillConfig keys"):
        TrainConfig.from_dict({"distill": {"teacher": "x", "tau": 2}})


def test_distilled_steps_move_the_student_toward_the_teacher(teachers, store):
    torch.manual_seed(0)
    cfg = tiny_config("unused", distill={"teacher": str(teachers / "tfw"), "temperature": 2.0, "alpha": 1.0})
    student = build_run_model(cfg, store.class_names)
    teacher = Teacher(cfg, store.class_names, torch.device("cpu"), student)
    assert teacher.mode == "window" and not any(p.requires_grad for p in teacher.model.parameters())
    x = torch.rand(8, cfg.model.frames, 1, 32, 32)
    y = torch.randint(0, len(store.class_names), (8,))
    student.eval()  # no dropout: the KL of one fixed batch
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    kls = []
    for _ in range(8):
        loss, kl = distillation_loss(student(x), teacher.logits({"x": x}, x), y, teacher.temperature, teacher.alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
        kls.append(kl.item())
    assert kls[-1] < 0.5 * kls[0], kls
    assert not teacher.model.training  # the teacher stays in eval mode


def test_a_teacher_with_another_class_set_is_refused_naming_it(teachers, store, tmp_path):
    state, meta, folder = ckpt.load_checkpoint(teachers / "tfw")
    other = tmp_path / "other_teacher"
    meta = {**meta, "class_names": list(reversed(meta["class_names"]))}
    model, _ = ckpt.load_model(teachers / "tfw")
    bad = ckpt.save_checkpoint(other, 1, model, meta, {"optimizer": {}, "scheduler": {}})
    with pytest.raises(EchoweaveError, match=re.escape(f"distill.teacher {bad}: the teacher's classes")):
        run_training(tiny_config(tmp_path / "s", distill={"teacher": str(other)}, optim={"epochs": 1}),
                     store=store, show_progress=False)


def test_an_image_stage_refuses_a_window_teacher_and_a_window_mismatch(teachers, store, tmp_path):
    with pytest.raises(EchoweaveError, match="no single-frame output"):
        run_training(tiny_config(tmp_path / "a", stage="image", model={"name": "image"},
                                 distill={"teacher": str(teachers / "tfw")}, optim={"epochs": 1}),
                     store=store, show_progress=False)
    with pytest.raises(EchoweaveError, match="same window"):
        run_training(tiny_config(tmp_path / "b", model={"frame_stride": 2},
                                 distill={"teacher": str(teachers / "tfw")}, optim={"epochs": 1}),
                     store=store, show_progress=False)


def test_image_stage_and_cached_feature_stage_distil_another_backbone(teachers, store, tmp_path):
    # Stage 1: a wider student image model learns from the teacher's image model, frame by frame.
    s1 = run_training(tiny_config(tmp_path / "s1", stage="image", model={"name": "image", "width": 4},
                                  distill={"teacher": str(teachers / "image")}, optim={"epochs": 1}),
                      store=store, show_progress=False)
    assert "train_distill_kl" in s1.metrics and np.isfinite(s1.metrics["train_distill_kl"])
    # Stage 2 on cached features of its own frozen backbone, from the TFW teacher's cached features.
    cfg = tiny_config(tmp_path / "s2", init_from=str(tmp_path / "s1"), freeze_backbone=True, cache_features=True,
                      model={"width": 4}, distill={"teacher": str(teachers / "tfw"), "alpha": 0.5},
                      optim={"epochs": 1})
    r2 = run_training(cfg, store=store, show_progress=False)
    state, meta, folder = ckpt.load_checkpoint(tmp_path / "s2")
    rec = meta["distill"]
    assert rec["mode"] == "features" and rec["alpha"] == 0.5 and rec["model"] == "tfw"
    teacher_folder = ckpt.find_checkpoint(teachers / "tfw")
    assert rec["checkpoint"] == str(teacher_folder.resolve())
    assert rec["weights_sha256"] == sha256_file(teacher_folder / ckpt.WEIGHTS)
    assert meta["train"]["distill"]["teacher"] == str(teachers / "tfw")
    # The student's checkpoint holds the student only.
    assert set(state) == set(r2.model.state_dict())


def test_resume_with_distillation_equals_uninterrupted_and_checks_the_teacher(teachers, store, tmp_path,
                                                                             monkeypatch):
    over = {"distill": {"teacher": str(teachers / "tfw"), "temperature": 3.0, "alpha": 0.8}, "optim": {"epochs": 2}}
    full = run_training(tiny_config(tmp_path / "full", **over), store=store, show_progress=False)
    real = run_mod.train_one_epoch
    calls = {"n": 0}

    def dies_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "train_one_epoch", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_config(tmp_path / "killed", **over), store=store, show_progress=False)
    monkeypatch.setattr(run_mod, "train_one_epoch", real)
    resumed = run_training(tiny_config(tmp_path / "killed", resume=True, **over), store=store, show_progress=False)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed distilled run must end with identical weights"
    # A teacher whose weights changed since the run started is refused on resume.
    _, meta, folder = ckpt.load_checkpoint(tmp_path / "killed")
    meta["distill"]["weights_sha256"] = "0" * 64
    ckpt.write_json_atomic(folder / ckpt.META, meta)
    with pytest.raises(EchoweaveError, match="mix two teachers"):
        run_training(tiny_config(tmp_path / "killed", resume=True, **{**over, "optim": {"epochs": 3}}), store=store,
                     show_progress=False)


def _distill_recipe(path):
    recipe = tiny_recipe({
        "tfw_teacher": {"model": {"name": "tfw", "contrast": "window_mean", "frame_stride": 2}},
        # Another backbone: its own stage 1, distilled from the shared stage 1, then the TFW head
        # on its own frozen features, distilled from the teacher variant of the same fold.
        "tfw_student": {"stage1": {"model": {"backbone": "mobilenet_v3_small", "feature_dim": 32},
                                   "distill": {"teacher": "stage1"}},
                        "model": {"name": "tfw", "backbone": "mobilenet_v3_small", "feature_dim": 32,
                                  "contrast": "window_mean", "frame_stride": 2},
                        "distill": {"teacher": "tfw_teacher", "temperature": 4.0, "alpha": 0.9}},
    }, experiment={"image_votes": ["consecutive"], "mcnemar": [["tfw_student", "tfw_teacher"]]})
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return recipe


def test_recipe_names_resolve_to_the_same_runs_folder(tmp_path):
    recipe = _distill_recipe(tmp_path / "r.yaml")
    s1 = stage_config(recipe, "tfw_student_stage1", tmp_path / "fold0")
    s2 = stage_config(recipe, "tfw_student", tmp_path / "fold0")
    assert s1.stage == "image" and s1.model.backbone == "mobilenet_v3_small" and s1.init_from is None
    assert s1.distill.teacher == str(tmp_path / "fold0" / "stage1")
    assert s1.out == str(tmp_path / "fold0" / "tfw_student_stage1")
    assert s2.init_from == str(tmp_path / "fold0" / "tfw_student_stage1")
    assert s2.distill.teacher == str(tmp_path / "fold0" / "tfw_teacher")
    assert stage_config(recipe, "tfw_teacher", tmp_path / "fold0").init_from == str(tmp_path / "fold0" / "stage1")
    # A path that names no stage stays a path.
    recipe["variants"]["tfw_student"]["distill"]["teacher"] = "runs/elsewhere/stage2"
    assert stage_config(recipe, "tfw_student", tmp_path).distill.teacher == "runs/elsewhere/stage2"


def test_kfold_trains_a_student_variant_from_a_teacher_variant_of_the_same_fold(tmp_path):
    from echoweave.train.engine.kfold import run_kfold

    recipe = _distill_recipe(tmp_path / "r.yaml")
    res = run_kfold(str(tmp_path / "r.yaml"), out=str(tmp_path / "exp"), folds=2, only_folds=[0],
                    show_progress=False)
    assert {"tfw_teacher", "tfw_student_stage1", "tfw_student"} <= set(res["methods"])
    fold = tmp_path / "exp" / "fold0"
    meta = json.loads((ckpt.find_checkpoint(fold / "tfw_student") / ckpt.META).read_text())
    assert meta["distill"]["checkpoint"] == str(ckpt.find_checkpoint(fold / "tfw_teacher").resolve())
    assert meta["model"]["backbone"] == "mobilenet_v3_small" and meta["train"]["init_from"] == str(
        fold / "tfw_student_stage1")
    meta1 = json.loads((ckpt.find_checkpoint(fold / "tfw_student_stage1") / ckpt.META).read_text())
    assert meta1["distill"]["checkpoint"] == str(ckpt.find_checkpoint(fold / "stage1").resolve())
    # A student listed before its teacher is refused before anything stale could be read.
    variants = recipe["variants"]
    recipe["variants"] = {"tfw_student": variants["tfw_student"], "tfw_teacher": variants["tfw_teacher"]}
    (tmp_path / "r2.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    with pytest.raises(EchoweaveError, match="not trained before it"):
        run_kfold(str(tmp_path / "r2.yaml"), out=str(tmp_path / "exp2"), folds=2, only_folds=[0],
                  show_progress=False)


def test_the_train_command_takes_distill_options_and_a_run_config_with_distill(tmp_path):
    from echoweave.cli import build_parser

    cfg = build_parser().parse_args(["train", "--distill.teacher", "runs/t/stage2", "--distill.alpha", "0.5"])
    assert (cfg.train.distill.teacher, cfg.train.distill.alpha, cfg.train.distill.temperature) == (
        "runs/t/stage2", 0.5, 4.0)
    # A run folder's config.json (TrainConfig.to_dict, distill included) is accepted by --config.
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TrainConfig.from_dict({"distill": {"teacher": "runs/t"}}).to_dict()))
    assert build_parser().parse_args(["train", "--config", str(path)]).train.distill.teacher == "runs/t"
