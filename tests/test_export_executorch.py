"""ExecuTorch export of the tiny TFW checkpoint: one multi-method XNNPACK `.pte` (fp32) with a
``config`` constant method, a BundledProgram that verifies itself, delegation > 90%, fp32
parity and streaming parity in the ExecuTorch runtime, no ``aten.gru`` anywhere.

ExecuTorch lowering of the three methods takes tens of seconds even for the tiny model (it is
framework overhead), so this module exports fp32 once; the full int8 export lives in
test_export_slow.py. One slow test here quantizes and lowers only the int8 head: every GRU gate
Linear int8, gate math fp32, and XNNPACK equal to the QDQ simulation.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from echoweave.edge.manifest import find_artifact, read_manifest, verify_artifact_files


@pytest.fixture(scope="module")
def et_export(tiny_checkpoint, tmp_path_factory):
    from echoweave.export.pipeline import export_checkpoint

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("et_art")
    return export_checkpoint(tiny_checkpoint, out, formats=["executorch"], precisions=["fp32"],
                             calib_clips=4, parity_clips=4, show_progress=False)


@pytest.fixture(scope="module")
def program(et_export):
    from executorch.runtime import Runtime

    art = find_artifact(et_export.manifest, "executorch", "fp32")[0]
    return Runtime.get().load_program(str(et_export.folder / art["methods"]["forward"]["file"]))


def test_one_multi_method_pte_with_config(et_export, program):
    art = find_artifact(read_manifest(et_export.folder), "executorch", "fp32")[0]
    verify_artifact_files(et_export.folder, art)
    assert [f["path"] for f in art["files"]] == ["tfw_tiny_xnnpack_fp32.pte", "tfw_tiny_xnnpack_fp32.bpte"]
    assert {m["file"] for m in art["methods"].values()} == {"tfw_tiny_xnnpack_fp32.pte"}
    assert set(program.method_names) == {"forward", "embed_frame", "classify_window", "config"}
    config = json.loads(program.load_method("config").execute([])[0])
    assert config["class_names"][0] == "APICAL_5C" and len(config["class_names"]) == 12
    assert config["preprocessing"]["crop"] == 32 and config["frames"] == 4


def test_streaming_pair_equals_forward_in_executorch(program, tiny_checkpoint):
    from echoweave.train.engine.checkpoint import load_model

    clip = torch.rand(1, 4, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    fwd = program.load_method("forward").execute([clip])[0]
    embed = program.load_method("embed_frame")
    feats = torch.stack([embed.execute([clip[:, t].contiguous()])[0] for t in range(4)], dim=1)  # (1, 4, D)
    stream = program.load_method("classify_window").execute([feats])[0]
    torch.testing.assert_close(stream, fwd, atol=1e-4, rtol=0)
    model, _ = load_model(tiny_checkpoint)
    with torch.no_grad():
        torch.testing.assert_close(fwd, model(clip), atol=1e-4, rtol=0)


def test_fp32_parity_on_held_out_clips(et_export):
    row = next(r for r in et_export.parity["artifacts"] if r["id"] == "executorch_xnnpack_fp32")
    assert row["ran"] and row["n"] >= 4
    assert row["top1_agreement"] == 1.0 and row["max_abs_logit_diff"] < 1e-4
    assert row["streaming"]["top1_agreement"] == 1.0 and row["streaming"]["max_abs_logit_diff"] < 1e-4


def test_fp32_delegates_almost_everything_to_xnnpack(et_export):
    art = find_artifact(et_export.manifest, "executorch", "fp32")[0]
    delegation = art["extra"]["delegation"]
    assert set(delegation) == {"forward", "embed_frame", "classify_window"}
    for method, d in delegation.items():
        assert d["delegated_share"] > 0.9, (method, d["ops_outside"])
        assert d["delegated_nodes"] > 0 and d["subgraphs"] >= 1
    assert "Delegation (ExecuTorch XNNPACK)" in (et_export.folder / "parity.md").read_text()


def test_bundled_program_verifies_its_expected_outputs(et_export):
    from executorch.extension.pybindings.portable_lib import _load_bundled_program_from_buffer

    bundled = _load_bundled_program_from_buffer((et_export.folder / "tfw_tiny_xnnpack_fp32.bpte").read_bytes())
    for method in ("forward", "embed_frame", "classify_window"):
        for case in range(2):
            bundled.verify_result_with_bundled_expected_output(method, case, rtol=1e-4, atol=1e-5)


def test_no_aten_gru_in_exported_methods(tiny_checkpoint):
    from echoweave.train.engine.checkpoint import load_model

    model, _ = load_model(tiny_checkpoint)
    embed, head = model.streaming_modules()
    for module, method in ((model, "forward"), (head, "classify_window")):
        ep = torch.export.export(module.eval(), model.example_inputs(method))
        targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
        assert not [t for t in targets if "gru" in t.lower()], targets
        assert any("linear" in t or "addmm" in t or "mm" in t for t in targets)


@pytest.mark.slow
def test_int8_head_quantizes_every_gru_linear_and_matches_qdq_in_xnnpack(tiny_checkpoint, tmp_path):
    """Every GRU gate Linear (and the head) reads int8 activations with per-channel int8 weights,
    the first step's ``W_h* @ zeros`` is folded to a constant, and the lowered XNNPACK program
    equals its own QDQ simulation (the unfolded zero-state linears made XNNPACK disagree by ~2 logits)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    from echoweave.export.executorch_format import quantize_module
    from echoweave.train.engine.checkpoint import load_model

    torch.set_num_threads(2)
    model, _ = load_model(tiny_checkpoint)
    _, head = model.streaming_modules()
    head.eval()
    example = model.example_inputs("classify_window")  # (1, T, D)
    gen = torch.Generator().manual_seed(0)
    samples = [(torch.rand(example[0].shape, generator=gen) * 2,) for _ in range(8)]
    q = quantize_module(head, example, samples)

    linears = [n for n in q.graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.linear.default]
    layers, frames = len(model.gru.layers), model.frames
    # Per layer: 3 input projections + 3 hidden projections for every step but the folded first.
    assert len(linears) == layers * (3 + 3 * (frames - 1)) + 1
    for n in linears:
        x, w = n.args[0], n.args[1]
        assert x.target == torch.ops.quantized_decomposed.dequantize_per_tensor.default, n.name
        assert x.args[0].op == "call_function", f"{n.name} reads a constant"
        assert w.target == torch.ops.quantized_decomposed.dequantize_per_channel.default, n.name
    owners = {key for n in linears for key, _ in n.meta["nn_module_stack"].values()}
    gates = {f"gru.layers.{k}.W_{g}" for k in range(layers) for g in ("ir", "iz", "in", "hr", "hz", "hn")}
    assert gates <= {o.split("model.", 1)[-1] for o in owners}, owners
    # Gate math stays fp32: sigmoid/tanh/mul results are never re-quantized.
    gate_math = [n for n in q.graph.nodes if n.target in (torch.ops.aten.mul.Tensor, torch.ops.aten.sigmoid.default,
                                                          torch.ops.aten.tanh.default)]
    assert len(gate_math) >= 5 * layers * frames
    for n in gate_math:
        assert all("quantize_per_tensor" not in str(u.target) for u in n.users), n.name

    lowered = to_edge_transform_and_lower({"classify_window": torch.export.export(q, example)},
                                          partitioner=[XnnpackPartitioner()])
    gm = lowered.exported_program("classify_window").graph_module
    outside = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"
               and "delegate" not in str(n.target) and "getitem" not in str(n.target)]
    assert outside == []
    path = tmp_path / "head_q8.pte"
    path.write_bytes(lowered.to_executorch().buffer)
    method = Runtime.get().load_program(str(path)).load_method("classify_window")
    for (x,) in samples[:4]:
        with torch.no_grad():
            sim, eager = q(x), head(x)
        got = method.execute([x.clone()])[0]
        # Measured on this tiny head: ~0.1 x max|logit| against QDQ without the fold, ~0.03 with it.
        torch.testing.assert_close(got, sim, atol=0.2 * float(sim.abs().max()), rtol=0)
        assert float((got - eager).abs().max()) < 0.2 * float(eager.abs().max())
