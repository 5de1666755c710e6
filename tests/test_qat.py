"""Quantization-aware fine-tuning (train/engine/qat.py): int8 rounding simulated in training only,
straight-through gradients, frozen BatchNorm statistics, plain fp32 checkpoints."""
from __future__ import annotations

import pytest
import torch

from echoweave.edge.errors import EchoweaveError
from echoweave.train.engine import checkpoint as ckpt
from echoweave.train.engine.qat import QuantAware, fake_quant_activation, fake_quant_weight
from echoweave.train.engine.run import build_run_model, run_training
from echoweave.train.models import build_model
from tests.helpers.tiny import tiny_config

torch.set_num_threads(1)


def test_weights_round_to_127_levels_per_output_channel():
    w = torch.randn(6, 3, 3, 3) * torch.tensor([1e-3, 0.1, 1.0, 5.0, 30.0, 0.5]).view(6, 1, 1, 1)
    q = fake_quant_weight(w)
    for c in range(6):
        step = w[c].abs().max() / 127
        levels = q[c] / step
        assert torch.allclose(levels, levels.round(), atol=1e-3), c  # a multiple of its own channel's step
        assert (q[c] - w[c]).abs().max() <= step / 2 + 1e-6
        assert torch.isclose(q[c].abs().max(), w[c].abs().max())  # the extreme is exact (symmetric)


def test_activations_round_to_256_levels_with_exact_zero_and_straight_through_gradient():
    x = torch.cat([torch.linspace(-0.4, 7.0, 5000), torch.zeros(7)]).requires_grad_(True)
    q = fake_quant_activation(x)
    assert q.unique().numel() <= 256
    assert (q[-7:] == 0).all()  # ReLU zeros and padding stay exactly zero
    assert (q - x).abs().max() <= (7.4 / 255) / 2 + 1e-5
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # inside the range the gradient passes unchanged


def test_simulation_runs_in_training_only_and_keeps_state_dict_and_batchnorm_statistics(tmp_path):
    cfg = tiny_config(tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg.model.replace(num_classes=12, input_size=32))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, cfg.model.frames, 1, 32, 32)
    model.eval()
    with torch.no_grad():
        fp32 = model(x)
    qa = QuantAware(model)
    assert sorted(model.state_dict()) == sorted(before)
    with torch.no_grad():
        assert torch.equal(model(x), fp32)  # eval mode: the fp32 model, untouched
    model.train()
    torch.manual_seed(1)
    out = model(x)
    assert not torch.allclose(out, fp32, atol=1e-6)  # training mode: rounded
    out.sum().backward()
    convs = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in convs)
    # BatchNorm ran on its running statistics: a training-mode forward left them as they were.
    for k, v in model.state_dict().items():
        if "running_" in k or "num_batches" in k:
            assert torch.equal(v, before[k]), k
    qa.remove()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), fp32)
    assert "qat: int8 fake quantization of" in qa.summary()


def test_a_qat_stage_starts_from_every_weight_of_the_same_model_and_saves_plain_weights(tmp_path):
    source = run_training(tiny_config(tmp_path / "src", optim={"epochs": 1}), show_progress=False)
    # lr 0: the fine-tuning changes nothing, so what it saves is exactly what it started from;
    # a head left at its fresh initialisation (only backbone + fc0 copied) or BatchNorm statistics
    # updated by training batches would show here.
    qat = tiny_config(tmp_path / "qat", qat=True, init_from=str(source.checkpoint), optim={"epochs": 1, "lr": 0.0})
    result = run_training(qat, show_progress=False)
    src_state, _, _ = ckpt.load_checkpoint(source.checkpoint)
    new_state, meta, _ = ckpt.load_checkpoint(result.checkpoint)
    assert sorted(new_state) == sorted(src_state)
    for k, v in src_state.items():
        assert torch.equal(new_state[k], v), k
    assert meta["train"]["qat"] is True
    # With a learning rate it trains through the rounding: weights move.
    moved = run_training(tiny_config(tmp_path / "qat2", qat=True, init_from=str(source.checkpoint),
                                     optim={"epochs": 1, "lr": 0.01}), show_progress=False)
    moved_state, _, _ = ckpt.load_checkpoint(moved.checkpoint)
    assert any(not torch.equal(moved_state[k], v) for k, v in src_state.items() if k.startswith("backbone."))


def test_qat_refuses_cached_features(tmp_path):
    cfg = tiny_config(tmp_path, qat=True, freeze_backbone=True, cache_features=True)
    with pytest.raises(EchoweaveError, match="qat simulates int8 inside the backbone"):
        build_run_model(cfg, [f"v{i}" for i in range(12)])


def test_qat_refuses_to_start_from_another_model(tmp_path):
    image = run_training(tiny_config(tmp_path / "img", stage="image", model={"name": "image"},
                                     optim={"epochs": 1}), show_progress=False)
    # A plain stage 2 starts from the image model's backbone; a qat stage would train a fresh head
    # through int8 rounding for one short epoch, so it is refused by name.
    with pytest.raises(EchoweaveError, match="qat fine-tunes a trained model"):
        build_run_model(tiny_config(tmp_path / "q", qat=True, init_from=str(image.checkpoint)),
                        list(image.store.class_names))


def test_qat_refuses_a_model_without_a_per_frame_backbone():
    with pytest.raises(EchoweaveError, match="no per-frame backbone"):
        QuantAware(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_a_kfold_qat_variant_fine_tunes_the_variant_it_names(tmp_path):
    import yaml

    from echoweave.train.engine.kfold import run_kfold
    from echoweave.train.engine.recipe import stage_config
    from tests.helpers.tiny import tiny_recipe

    recipe = tiny_recipe({
        "tfw": {"model": {"name": "tfw"}},
        "tfw_qat": {"model": {"name": "tfw"}, "init_from": "tfw", "qat": True, "freeze_backbone": False,
                    "cache_features": False, "optim": {"epochs": 1, "lr": 0.0}},
    })
    cfg = stage_config(recipe, "tfw_qat", tmp_path / "fold0")
    assert cfg.init_from == str(tmp_path / "fold0" / "tfw") and cfg.qat
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    res = run_kfold(str(path), out=str(tmp_path / "exp"), folds=2, show_progress=False)
    assert {"tfw", "tfw_qat"} <= set(res["methods"])
    for fold in ("fold0", "fold1"):  # lr 0: the qat run is the run it names, weight for weight
        src, _, _ = ckpt.load_checkpoint(tmp_path / "exp" / fold / "tfw")
        qat, meta, _ = ckpt.load_checkpoint(tmp_path / "exp" / fold / "tfw_qat")
        assert meta["train"]["qat"] and all(torch.equal(qat[k], v) for k, v in src.items())
    # so both rows score the same predictions
    assert res["methods"]["tfw_qat"]["pooled"]["video"] == res["methods"]["tfw"]["pooled"]["video"]


def test_a_recipe_stage_cannot_start_from_itself():
    from echoweave.train.engine.recipe import stage_config
    from tests.helpers.tiny import tiny_recipe

    with pytest.raises(EchoweaveError, match="init_from names the stage itself"):
        stage_config(tiny_recipe({"v": {"init_from": "v"}}), "v", "/tmp/x")
