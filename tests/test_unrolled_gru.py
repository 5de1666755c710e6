"""UnrolledGRU equals nn.GRU, and exported tfw/gru graphs hold no aten.gru and no gather."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from echoweave.train.models import ModelConfig, UnrolledGRU, build_model, weave_features

torch.set_num_threads(1)  # the machine is shared; tiny models need no more


def _pair(input_size=7, hidden=6, layers=3, dropout=0.5, bias=True, seed=0):
    torch.manual_seed(seed)
    ref = nn.GRU(input_size, hidden, layers, batch_first=True, dropout=dropout, bias=bias)
    ours = UnrolledGRU(input_size, hidden, layers, dropout).load_from_nn_gru(ref)
    return ref, ours


@pytest.mark.parametrize("layers", [1, 3])
def test_matches_nn_gru_in_eval_with_dropout_configured(layers):
    ref, ours = _pair(layers=layers, dropout=0.5 if layers > 1 else 0.0)
    ref.eval(), ours.eval()
    x = torch.randn(3, 5, 7)  # (B, T, I), batch > 1
    with torch.no_grad():
        out_ref, h_ref = ref(x)
        out, h = ours(x)
    assert out.shape == (3, 5, 6) and h.shape == (layers, 3, 6)
    torch.testing.assert_close(out, out_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=0)


def test_matches_nn_gru_in_train_mode_without_dropout_including_h0_and_gradients():
    ref, ours = _pair(dropout=0.0)
    ref.train(), ours.train()
    x = torch.randn(4, 6, 7, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    h0 = torch.randn(3, 4, 6)
    out_ref, h_ref = ref(x, h0)
    out, h = ours(x2, h0)
    torch.testing.assert_close(out, out_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=0)
    (out_ref.square().sum() + h_ref.sum()).backward()
    (out.square().sum() + h.sum()).backward()
    torch.testing.assert_close(x2.grad, x.grad, atol=1e-5, rtol=0)


def test_inter_layer_dropout_only_in_training():
    _, ours = _pair(dropout=0.5)
    x = torch.randn(2, 4, 7)
    ours.eval()
    torch.testing.assert_close(ours(x)[0], ours(x)[0])
    ours.train()
    torch.manual_seed(1)
    a = ours(x)[0]
    torch.manual_seed(2)
    b = ours(x)[0]
    assert not torch.allclose(a, b)  # dropout between layers is live in training


def test_bias_free_gru_loads_zero_biases():
    ref, ours = _pair(bias=False, layers=2, dropout=0.0)
    x = torch.randn(2, 3, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-6, rtol=0)
    assert all(not p.detach().any() for n, p in ours.named_parameters() if n.endswith("bias"))


def test_load_rejects_mismatched_or_bidirectional_gru():
    with pytest.raises(ValueError, match="size mismatch"):
        UnrolledGRU(7, 6, 3).load_from_nn_gru(nn.GRU(7, 6, 2))
    with pytest.raises(ValueError, match="bidirectional"):
        UnrolledGRU(7, 6, 1).load_from_nn_gru(nn.GRU(7, 6, 1, bidirectional=True))


def test_weave_features_matches_the_papers_definition():
    f = torch.randn(2, 4, 16)  # (B, T=4, D=16) -> chunks of 4
    woven = weave_features(f, 4)
    c = 4
    for k in range(4):
        expected = torch.cat([f[:, t, k * c:(k + 1) * c] for t in range(4)], dim=-1)
        torch.testing.assert_close(woven[:, k], expected, atol=0, rtol=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        weave_features(torch.randn(2, 4, 10), 4)


def _targets(ep) -> list[str]:
    return [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]


@pytest.mark.filterwarnings("ignore:The tensor attributes self._flat_weights")
def test_the_graph_check_detects_nn_gru():
    # Guard that the "no gru" assertion below can fail: nn.GRU does export as aten.gru.
    gru = nn.GRU(8, 6, 2, batch_first=True).eval()
    targets = _targets(torch.export.export(gru, (torch.rand(1, 4, 8),)))
    assert any("gru" in t for t in targets)


@pytest.mark.parametrize("name", ["tfw", "gru"])
def test_exported_recurrent_models_have_no_gru_or_gather_node(name):
    model = build_model(ModelConfig(name=name, backbone="tiny", input_size=64)).eval()
    inputs = model.example_inputs()
    ep = torch.export.export(model, inputs)
    for graph in (ep, ep.run_decompositions()):  # as exported, and as core ATen (Core ML path)
        targets = _targets(graph)
        assert not [t for t in targets if "gru" in t.lower()]
        assert not [t for t in targets if "index" in t or "gather" in t]
        # select/squeeze/full_like stay outside the XNNPACK delegate and split it into pieces;
        # the GRU steps use narrow + 3-d states and a zeros buffer instead.
        assert not [t for t in targets if any(w in t for w in ("select", "squeeze", "full", "zeros"))]
        assert any("sigmoid" in t for t in targets) and any("tanh" in t for t in targets)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(*inputs), model(*inputs), atol=1e-6, rtol=0)
