"""The model registry and the EchoModel contract: every registered model in one parametrized test,
exact parameter counts, the streaming split, stage-2 initialisation and the `models` command."""
from __future__ import annotations

import json

import pytest
import torch

from echoweave.train.models import (
    VideoModel,
    ModelConfig,
    build_model,
    count_model_parameters,
    count_parameters,
    init_from_image_model,
    list_backbones,
    list_models,
    weave_features,
)

torch.set_num_threads(1)  # the machine is shared; tiny models need no more

# ResNet-50 (1-channel conv1, no fc) 23,501,760 + fc0 2048x2048 4,196,352 = CNN 27,698,112;
# GRU 3 layers, hidden 256 on 2048 inputs = 2,560,512; head 256x12 = 3,084.
TFW_R50_K12 = 30_261_708
CASES = [(name, "tiny") for name in list_models()] + [("tfw", "resnet18")]


def _cfg(name: str, backbone: str = "tiny", **kw) -> ModelConfig:
    return ModelConfig(name=name, backbone=backbone, input_size=64, num_classes=5, **kw)


@pytest.mark.parametrize("name,backbone", CASES)
def test_every_registered_model(name, backbone):
    torch.manual_seed(0)
    model = build_model(_cfg(name, backbone))
    assert isinstance(model, VideoModel) and model.model_name == name
    clip = torch.rand(2, 4, 1, 64, 64)  # (B, T, C, H, W) pixels in [0, 1]

    model.train()
    logits = model(clip)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
    assert sum(float(p.grad.abs().sum()) > 0 for p in model.parameters()) > len(list(model.parameters())) // 2
    if not model.streams_per_frame:  # window-only: the contract test covers it (test_model_contract.py)
        return
    assert any(p.grad.abs().sum() > 0 for p in model.backbone.parameters())

    model.eval()
    with torch.no_grad():
        window = model(clip)
        streamed = model.classify_window(torch.stack([model.embed_frame(clip[:, t]) for t in range(4)], dim=1))
    torch.testing.assert_close(window, streamed, atol=1e-5, rtol=1e-5)
    assert model.embed_frame(clip[:, 0]).shape == (2, model.feature_dim)


def test_tfw_resnet50_parameter_count_is_the_papers_30_3m():
    n = count_model_parameters(ModelConfig(name="tfw", backbone="resnet50", num_classes=12))
    print(f"tfw/resnet50/K=12 parameters: {n:,}")
    assert n == TFW_R50_K12
    assert abs(n - 30.3e6) <= 0.2e6
    with torch.device("meta"):
        model = build_model(ModelConfig())  # the defaults are the paper's model
    cnn = count_parameters(model.backbone) + count_parameters(model.fc0)
    assert cnn == 27_698_112 and count_parameters(model.gru) == 2_560_512
    # Weaving is a reshape: the no-weaving baseline has exactly the same parameters.
    assert count_model_parameters(ModelConfig(name="gru")) == TFW_R50_K12
    assert count_model_parameters(ModelConfig(name="image")) == 27_698_112 + 2048 * 12 + 12


@pytest.mark.slow
def test_tfw_resnet50_at_224_runs():
    model = build_model(ModelConfig()).eval()
    assert count_parameters(model) == TFW_R50_K12
    with torch.no_grad():
        logits = model(*model.example_inputs())
    assert logits.shape == (1, 12) and torch.isfinite(logits).all()


@pytest.mark.parametrize("backbone,dim", [("resnet50", 2048), ("resnet18", 512),
                                          ("mobilenet_v3_large", 960), ("tiny", 128),
                                          ("mobilenet_v3_small", 576)])
def test_backbones_take_one_channel_and_report_their_feature_dim(backbone, dim):
    with torch.device("meta"):
        model = build_model(name="image", backbone=backbone)
    assert model.backbone_dim == dim
    assert model.fc0.in_features == dim
    assert model.fc0.out_features == (256 if backbone == "tiny" else 2048)
    first_conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 1


def test_mobilenet_backbone_runs_at_small_input():
    model = build_model(_cfg("tfw", "mobilenet_v3_large")).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 1, 64, 64)).shape == (1, 5)


def test_unknown_model_or_backbone_lists_known_ones():
    with pytest.raises(ValueError, match="known models: image, gru, tfw, attention"):
        build_model(name="vit")
    with pytest.raises(ValueError, match="known backbones: resnet50, resnet18, mobilenet_v3_large, tiny"):
        build_model(name="tfw", backbone="vgg16")
    assert list_backbones() == ["resnet50", "resnet18", "mobilenet_v3_large", "tiny", "sononet", "mobilenet_v3_small"]


def test_bad_shapes_and_configs_are_clear_errors():
    model = build_model(_cfg("tfw")).eval()
    with pytest.raises(ValueError, match=r"expects a clip \(B, 4, 1, H, W\)"):
        model(torch.rand(1, 3, 1, 64, 64))
    with pytest.raises(ValueError, match=r"expects features \(B, 4, 256\)"):
        model.classify_window(torch.rand(1, 4, 255))
    with pytest.raises(ValueError, match="divisible by frames"):
        build_model(_cfg("tfw", feature_dim=250))
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.5)
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({"name": "tfw", "hidden": 3})


def test_config_round_trips_through_json():
    cfg = _cfg("attention", mean=(0.1,), std=(0.3,))
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.mean == (0.1,)


def test_normalization_is_inside_the_graph_and_follows_the_config():
    torch.manual_seed(0)
    a = build_model(_cfg("image", mean=(0.0,), std=(1.0,))).eval()
    b = build_model(_cfg("image", mean=(0.5,), std=(0.25,))).eval()
    b.load_state_dict(a.state_dict())  # same weights; mean/std are not in the state dict
    assert "pixel_mean" not in a.state_dict()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(b.embed_frame(x), a.embed_frame((x - 0.5) / 0.25), atol=1e-5, rtol=1e-5)


def test_tfw_is_the_gru_baseline_on_woven_features():
    torch.manual_seed(0)
    tfw, gru = build_model(_cfg("tfw")).eval(), build_model(_cfg("gru")).eval()
    gru.load_state_dict(tfw.state_dict())  # identical parameter names and shapes
    feats = torch.rand(2, 4, 256)
    with torch.no_grad():
        torch.testing.assert_close(tfw.classify_window(feats), gru.classify_window(weave_features(feats, 4)))
        assert not torch.allclose(tfw.classify_window(feats), gru.classify_window(feats))


def test_image_window_is_mean_voting_of_frame_probabilities():
    torch.manual_seed(0)
    model = build_model(_cfg("image")).eval()
    clip = torch.rand(3, 4, 1, 64, 64)
    with torch.no_grad():
        voted = model(clip).softmax(-1)
        per_frame = torch.stack([model.forward_image(clip[:, t]).softmax(-1) for t in range(4)], 1)
    torch.testing.assert_close(voted, per_frame.mean(1), atol=1e-6, rtol=1e-5)


def test_input_spec_and_example_inputs_describe_the_real_methods():
    model = build_model(_cfg("tfw")).eval()
    spec = json.loads(json.dumps(model.input_spec()))  # plain JSON-able dict
    assert spec["normalization"] == {"mean": [0.449], "std": [0.226], "in_graph": True}
    assert spec["pixel_range"] == [0.0, 1.0]
    embed, classify = model.streaming_modules()
    modules = {"forward": model, "embed_frame": embed, "classify_window": classify}
    for method, io in spec["methods"].items():
        (x,) = model.example_inputs(method)
        assert list(x.shape) == io["inputs"][0]["shape"] and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        torch.testing.assert_close(x, model.example_inputs(method)[0])  # deterministic
        with torch.no_grad():
            assert list(modules[method](x).shape) == io["outputs"][0]["shape"]
    assert spec["methods"]["forward"]["inputs"][0]["layout"] == "NTCHW"
    with pytest.raises(ValueError, match="unknown method"):
        model.example_inputs("predict")


def test_streaming_modules_export_separately_and_match_the_window_model():
    torch.manual_seed(0)
    model = build_model(_cfg("tfw")).eval()
    embed, classify = model.streaming_modules()
    ep_embed = torch.export.export(embed, model.example_inputs("embed_frame"))
    ep_cls = torch.export.export(classify, model.example_inputs("classify_window"))
    clip = torch.rand(1, 4, 1, 64, 64)
    with torch.no_grad():
        feats = torch.stack([ep_embed.module()(clip[:, t]) for t in range(4)], dim=1)  # ring buffer
        torch.testing.assert_close(ep_cls.module()(feats), model(clip), atol=1e-5, rtol=1e-5)


def test_init_from_image_model_copies_backbone_and_fc0_only():
    torch.manual_seed(0)
    image = build_model(_cfg("image")).eval()
    tfw = build_model(_cfg("tfw")).eval()
    head_before = tfw.head.weight.clone()
    copied = init_from_image_model(tfw, image.state_dict())
    assert "fc0.weight" in copied and all(k.startswith(("backbone.", "fc0.")) for k in copied)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tfw.embed_frame(x), image.embed_frame(x), atol=0, rtol=0)
    torch.testing.assert_close(tfw.head.weight, head_before, atol=0, rtol=0)
    with pytest.raises(ValueError, match="backbone"):
        init_from_image_model(build_model(_cfg("tfw", "resnet18")), image.state_dict())


def test_models_command_lists_every_model_with_its_count(capsys):
    from echoweave.cli import main

    main(["models", "--backbone", "tiny", "--num_classes", "5", "--json", "true"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list_models()
    for row in rows:
        assert row["parameters"] == count_parameters(build_model(_cfg(row["name"])))
    main(["models"])
    table = capsys.readouterr().out
    assert "tfw" in table and f"{TFW_R50_K12:,}" in table


def test_explicit_attention_equals_nn_multihead_attention():
    from echoweave.train.models.attention import MultiHeadSelfAttention

    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    ours = MultiHeadSelfAttention(32, 4).eval()
    with torch.no_grad():
        for proj, w, b in zip((ours.q, ours.k, ours.v), ref.in_proj_weight.chunk(3), ref.in_proj_bias.chunk(3)):
            proj.weight.copy_(w), proj.bias.copy_(b)
        ours.out.load_state_dict(ref.out_proj.state_dict())
        x = torch.randn(3, 16, 32)  # (B, 16 tokens, E)
        torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0], atol=1e-5, rtol=1e-5)
