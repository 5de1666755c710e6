"""Peer artifacts (`echoweave.benchmarks.peers`): each toolchain's own recipe built from the tiny
checkpoint, run through the real runtime, timed beside the kit's artifact, reported with ratios,
accuracies and verdict lines, and cached; and the kit's int8 ExecuTorch exporter quantizing the
backbone's residual adds. No wall-clock asserts: ratios are reported, never checked."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from echoweave.benchmarks import peers as P  # noqa: E402
from echoweave.edge.runtime.base import runtime_available  # noqa: E402


@pytest.fixture(scope="module")
def kit_folder(tiny_checkpoint):
    """The tiny checkpoint exported by the real pipeline to ONNX, fp32 and int8 (cached on disk).

    ONNX only: ExecuTorch lowering and LiteRT conversion take minutes even for the tiny model, so
    their peers are built and run without a kit artifact beside them in the slow test below."""
    from tests.helpers.edge_artifacts import exported_artifacts

    torch.set_num_threads(1)
    return exported_artifacts(tiny_checkpoint, formats=("onnx",), precisions=("fp32", "int8"))


def _config(folder, checkpoint, cache, **over):
    from echoweave.benchmarks.threads import executorch_pool_size

    # ExecuTorch cells exist only at its process-wide pool size; time every runtime at that count.
    threads = [executorch_pool_size() or 1]
    return P.PeerConfig(str(folder), checkpoint=str(checkpoint), threads=threads, seconds=0.2, chunk_seconds=0.05,
                        warmup=1, calib_clips=4, held_out_windows=2, cache_dir=str(cache), progress=False, **over)


@pytest.fixture(scope="module")
def peer_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("peer_cache")


@pytest.fixture(scope="module")
def report(kit_folder, tiny_checkpoint, peer_cache):
    return P.run_peers(_config(kit_folder, tiny_checkpoint, peer_cache))


def test_every_precision_of_the_kit_has_its_peers_built_and_run(report):
    by_recipe = {r["recipe"]: r for r in report["pairs"]}
    assert set(by_recipe) == {"onnxruntime-fp32", "ort-static-default", "ort-static-qdq-u8s8"}, report["skipped"]
    no_kit = {s["peer"] for s in report["skipped"]}  # no kit artifact of those formats in this export
    assert no_kit == {r.name for r in P.RECIPES if r.runtime != "onnxruntime"}
    peers = {a["artifact"]: a for a in report["artifacts"] if a["who"] == "peer"}
    assert all(a["built"] for a in peers.values())  # first run: a fresh cache
    for a in report["artifacts"]:  # every artifact ran on every held-out frame through its runtime
        acc = a["accuracy"]
        assert 0.0 <= acc["top1_agreement"] <= 1.0 and np.isfinite(acc["max_abs_logit_diff"]), a["id"]
        if a["precision"] == "fp32":
            assert acc["top1_agreement"] == 1.0 and acc["feature_sqnr_db"] > 40.0, (a["id"], acc)
        else:
            assert acc["feature_sqnr_db"] > 5.0, (a["id"], acc)  # int8 features still track eager's
    kit_int8 = [a for a in report["artifacts"] if a["who"] == "kit" and a["precision"] == "int8"]
    assert kit_int8 and all("own_head" in a["accuracy"] for a in kit_int8)
    for cell in report["cells"]:
        assert cell["samples"] >= 3 and cell["latency_ms"]["median"] > 0
        assert "samples_ms" not in cell  # statistics only: a fast model makes 10^4 calls per cell
    assert all(p["ratio_ci95"] is None or p["ratio_ci95"][0] <= p["ratio_ci95"][1] for p in report["pairs"])


def test_pairs_hold_ratios_accuracies_and_verdicts(report):
    for r in report["pairs"]:
        assert r["ratio"] == pytest.approx(r["kit_median_ms"] / r["peer_median_ms"])
        assert r["slower"] == (r["ratio"] > 1.0)
        assert any(line.startswith("SLOWER") for line in r["verdicts"]) == r["slower"]
        assert any(line.startswith("LESS ACCURATE") for line in r["verdicts"]) == r["less_accurate"]
        assert all(line in report["verdicts"] for line in r["verdicts"])
    table = P.peers_table(report)
    assert "ratio = kit median / peer median" in table
    for r in report["pairs"]:
        assert r["recipe"] in table and f"{r['ratio']:6.2f}" in table
    assert all(line in table for line in report["verdicts"])


def test_one_line_verdict_when_the_kit_is_slower_or_less_accurate():
    acc = {"top1_agreement": 1.0, "accuracy": 0.5, "feature_sqnr_db": 30.0}
    artifacts = {"kit:a": {"accuracy": {**acc, "top1_agreement": 0.9}}, "peer:b": {"accuracy": acc}}
    stats = {"median": 12.1, "p99": 15.0}
    timing = {"kit:a:t2": {"latency_ms": stats}, "peer:b:t2": {"latency_ms": {**stats, "median": 10.0}}}
    comp = {"runtime": "executorch", "precision": "int8", "method": "embed_frame", "threads": 2, "kit": "kit:a",
            "peer": "peer:b", "recipe": "executorch-xnnpack-pt2e-int8"}
    row = P._pair_row(comp, timing, artifacts)
    assert row["ratio"] == pytest.approx(1.21) and row["slower"] and row["less_accurate"]
    assert row["verdicts"][0] == ("SLOWER: kit executorch int8 embed_frame t2 is 1.21x the peer "
                                  "executorch-xnnpack-pt2e-int8 (12.10 vs 10.00 ms median)")
    assert row["verdicts"][1].startswith("LESS ACCURATE: kit executorch int8 embed_frame t2 agrees 90.0%")
    fast = P._pair_row(comp, {**timing, "kit:a:t2": {"latency_ms": {**stats, "median": 9.0}}},
                       {**artifacts, "kit:a": {"accuracy": acc}})
    assert fast["verdicts"] == [] and not fast["slower"] and not fast["less_accurate"]


def test_a_second_run_builds_nothing(report, kit_folder, tiny_checkpoint, peer_cache, monkeypatch):
    stamps = {p: p.stat().st_mtime_ns for p in peer_cache.rglob("*") if p.is_file()}
    calls = []
    monkeypatch.setattr(P, "RECIPES", tuple(dataclasses.replace(r, build=lambda *a: calls.append(a))
                                            for r in P.RECIPES))
    again = P.run_peers(_config(kit_folder, tiny_checkpoint, peer_cache))
    assert calls == []
    assert all(a["built"] is False for a in again["artifacts"] if a["who"] == "peer")
    assert {p: p.stat().st_mtime_ns for p in peer_cache.rglob("*") if p.is_file()} == stamps
    assert [r["recipe"] for r in again["pairs"]] == [r["recipe"] for r in report["pairs"]]
    first = {a["id"]: a["accuracy"]["top1_agreement"] for a in report["artifacts"]}
    assert {a["id"]: a["accuracy"]["top1_agreement"] for a in again["artifacts"]} == first


def test_cache_key_follows_weights_recipe_and_method():
    rec = P.RECIPES[0]
    key = P.cache_key("a" * 64, rec, "embed_frame", 8)
    assert key == P.cache_key("a" * 64, rec, "embed_frame", 8)
    assert len({key, P.cache_key("b" * 64, rec, "embed_frame", 8), P.cache_key("a" * 64, P.RECIPES[1], "embed_frame", 8),
                P.cache_key("a" * 64, rec, "forward", 8)}) == 4


def test_bench_cli_writes_peers_and_no_peers_turns_them_off(kit_folder, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from echoweave.cli import main

    monkeypatch.setattr(P, "CACHE", tmp_path / "cache")
    args = ["bench", str(kit_folder), "--runtimes", "onnxruntime", "--precisions", "fp32", "--threads", "1",
            "--mode", "window", "--seconds", "0.1", "--no-eager", "--no-gemm", "--no-memory", "--warmup", "1"]
    main(args + ["--out", str(tmp_path / "on"), "--peer_checkpoint", str(tiny_checkpoint)])
    out = capsys.readouterr().out
    assert "ratio = kit median / peer median" in out and "onnxruntime-fp32" in out
    peers = json.loads((tmp_path / "on" / "peers.json").read_text())
    assert [r["recipe"] for r in peers["pairs"]] == ["onnxruntime-fp32"]
    assert json.loads((tmp_path / "on" / "perf.json").read_text())["peers"]["pairs"][0]["ratio"] > 0
    assert "| onnxruntime | fp32 | embed_frame |" in (tmp_path / "on" / "peers.md").read_text()
    main(args + ["--out", str(tmp_path / "off"), "--no-peers"])
    assert not (tmp_path / "off" / "peers.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["executorch-xnnpack-pt2e-int8", "litert-torch-fp32", "litert-torch-pt2e-int8"])
def test_executorch_and_litert_peers_build_and_run_through_their_runtime(name, tiny_checkpoint, tmp_path):
    from echoweave.edge.manifest import read_manifest  # noqa: F401  (the peer entry is manifest-shaped)
    from echoweave.edge.runtime.base import open_runtime

    recipe = next(r for r in P.RECIPES if r.name == name)
    if not runtime_available(recipe.runtime):
        pytest.skip(f"{recipe.runtime} not installed")
    torch.set_num_threads(1)
    cfg = P.PeerConfig(str(tmp_path), checkpoint=str(tiny_checkpoint), calib_clips=4, held_out_windows=2,
                       cache_dir=str(tmp_path / "cache"), progress=False)
    manifest = {"source_checkpoint": {"path": str(tiny_checkpoint)}}
    data = P.load_peer_data(P.resolve_checkpoint(manifest, None), cfg, manifest)
    entry = P.peer_artifact(recipe, "embed_frame", data, cfg, {})
    assert entry["built"] and P.peer_artifact(recipe, "embed_frame", data, cfg, {})["built"] is False
    adapter = open_runtime(recipe.runtime, entry["folder"], entry, threads=1)
    try:
        acc = P.artifact_accuracy(adapter, "embed_frame", data)
    finally:
        adapter.close()
    floor = 40.0 if recipe.precision == "fp32" else 5.0
    assert acc["feature_sqnr_db"] > floor and 0.0 <= acc["top1_agreement"] <= 1.0, acc


def _residual_adds(gm) -> tuple[int, int]:
    """``(int8 adds, fp32 adds)`` of a converted PT2E graph: an int8 add reads dequantized inputs
    and its result (after the fused ReLU, if any) is quantized, so XNNPACK runs it as a QS8 add."""
    def quantized_after(node) -> bool:
        users = list(node.users)
        if len(users) == 1 and users[0].target in (torch.ops.aten.relu.default, torch.ops.aten.relu_.default):
            users = list(users[0].users)
        return bool(users) and all(u.target == torch.ops.quantized_decomposed.quantize_per_tensor.default
                                   for u in users)

    adds = [n for n in gm.graph.nodes if n.op == "call_function"
            and n.target in (torch.ops.aten.add.Tensor, torch.ops.aten.add_.Tensor)]
    dq = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    q = [n for n in adds if all(a.target == dq for a in n.args[:2]) and quantized_after(n)]
    return len(q), len(adds) - len(q)


@pytest.fixture(scope="module")
def tiny_embedder(tiny_checkpoint):
    from echoweave.train.engine.checkpoint import load_model

    torch.set_num_threads(1)
    model, _ = load_model(tiny_checkpoint)
    embed = model.method_modules()["embed_frame"].eval()
    gen = torch.Generator().manual_seed(0)
    example = model.example_inputs("embed_frame")
    samples = [(torch.rand(example[0].shape, generator=gen),) for _ in range(8)]
    return model, embed, example, samples


def test_int8_export_quantizes_the_whole_backbone_residual_adds_included(tiny_embedder):
    """Every residual add of the kit's int8 embedder is int8 (dequantized inputs, quantized
    output after its ReLU) and every conv reads int8 with per-channel int8 weights. The old
    conv/linear/pool-only annotation gave the same graph for this ResNet: the quantize after each
    block's ReLU, inserted for the next conv, is shared by the add, so no add was left fp32."""
    from echoweave.export.executorch_format import quantize_module, whole_quantized_types

    model, embed, example, samples = tiny_embedder
    whole = whole_quantized_types(model)
    assert whole == (type(model.backbone),)
    new = quantize_module(embed, example, samples, whole)
    blocks = len(model.backbone.stages)  # one residual add per BasicBlock
    assert _residual_adds(new) == (blocks, 0)
    convs = [n for n in new.graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.conv2d.default]
    assert len(convs) == 12
    for n in convs:
        assert n.args[0].target == torch.ops.quantized_decomposed.dequantize_per_tensor.default, n.name
        assert n.args[1].target == torch.ops.quantized_decomposed.dequantize_per_channel.default, n.name
    old = quantize_module(embed, example, samples)
    assert _residual_adds(old) == (blocks, 0)


@pytest.mark.slow
def test_int8_embedder_lowers_whole_into_xnnpack_and_matches_its_simulation(tiny_embedder, tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    from echoweave.export.executorch_format import delegation_stats, quantize_module, whole_quantized_types

    model, embed, example, samples = tiny_embedder
    new = quantize_module(embed, example, samples, whole_quantized_types(model))
    lowered = to_edge_transform_and_lower({"embed_frame": torch.export.export(new, example)},
                                          partitioner=[XnnpackPartitioner()])
    stats = delegation_stats(lowered, ["embed_frame"])["embed_frame"]
    assert stats["delegated_share"] > 0.9, stats["ops_outside"]
    path = tmp_path / "embed_q8.pte"
    path.write_bytes(lowered.to_executorch().buffer)
    method = Runtime.get().load_program(str(path)).load_method("embed_frame")
    for (x,) in samples[:4]:
        with torch.no_grad():
            sim, eager = new(x), embed(x)
        got = method.execute([x.clone()])[0]
        torch.testing.assert_close(got, sim, atol=0.2 * float(sim.abs().max()), rtol=0)
        assert float((got - eager).abs().max()) < 0.2 * float(eager.abs().max())


def test_peers_default_to_the_method_a_stream_runs():
    from echoweave.commands.bench import default_peer_methods

    assert default_peer_methods({"methods": ["forward", "embed_frame", "classify_window"]}) == ["embed_frame"]
    assert default_peer_methods({"methods": ["forward"]}) == ["forward"]  # window-only (c3d, stfm)


def test_slower_verdict_carries_the_ratio_interval_and_says_when_it_is_noise():
    rng = np.random.default_rng(3)
    acc = {"top1_agreement": 1.0, "accuracy": 0.5, "feature_sqnr_db": 30.0}
    artifacts = {"kit:a": {"accuracy": acc}, "peer:b": {"accuracy": acc}}
    comp = {"runtime": "onnxruntime", "precision": "int8", "method": "embed_frame", "threads": 2, "kit": "kit:a",
            "peer": "peer:b", "recipe": "ort-static-qdq-u8s8"}

    def cell(samples):
        return {"latency_ms": {"median": float(np.median(samples)), "p99": float(np.max(samples))},
                "samples_ms": list(samples)}

    peer = rng.normal(35.0, 2.0, 200)
    tied = P._pair_row(comp, {"kit:a:t2": cell(peer * 1.01 + rng.normal(0, 2.0, 200)), "peer:b:t2": cell(peer)},
                       artifacts)
    low, high = tied["ratio_ci95"]
    assert low <= tied["ratio"] <= high and low < 1.0 < high
    assert tied["slower"] == (tied["ratio"] > 1.0) and not tied["significantly_slower"]
    if tied["slower"]:
        assert tied["verdicts"][0].endswith("within this run's timing noise)")
    slow = P._pair_row(comp, {"kit:a:t2": cell(peer * 1.2), "peer:b:t2": cell(peer)}, artifacts)
    assert slow["significantly_slower"] and slow["ratio_ci95"][0] > 1.0
    assert "95% interval" in slow["verdicts"][0] and "noise" not in slow["verdicts"][0]
    assert P.median_ratio_ci([1.0] * 4, [1.0] * 50) is None  # too few calls to say
