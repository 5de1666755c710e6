"""A real tiny bench run through echoweave.edge (ONNX Runtime + eager baseline), its perf.json
(schema-valid), perf.md, charts, the CLI front door and --compare."""
from __future__ import annotations

import json

import numpy as np
import pytest

from echoweave.benchmarks.schema import validate_perf
from echoweave.benchmarks.stats import latency_stats

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_folder(tiny_checkpoint):
    """The tiny checkpoint exported by the real pipeline (ONNX only; cached on disk)."""
    from tests.helpers.edge_artifacts import exported_artifacts

    torch.set_num_threads(1)
    return exported_artifacts(tiny_checkpoint, formats=("onnx",))


@pytest.fixture(scope="module")
def perf(tiny_folder, tmp_path_factory):
    from echoweave.benchmarks.harness import BenchConfig, run_bench

    cfg = BenchConfig(str(tiny_folder), runtimes=["onnxruntime"], threads=[1], seconds=0.3, warmup=2,
                      gemm_shape=(32, 32, 32), gemm_seconds=0.05, memory=False, chunk_seconds=0.1,
                      phantom_size=(64, 80), phantom_frames=20, progress=False,
                      cache_dir=str(tmp_path_factory.mktemp("gemm")))
    return run_bench(cfg)


def test_perf_json_is_schema_valid_and_complete(perf):
    validate_perf(json.loads(json.dumps(perf)))
    ids = [c["id"] for c in perf["cells"]]
    assert ids == ["onnxruntime-fp32-t1-window", "onnxruntime-fp32-t1-stream", "eager-fp32-t1-window",
                   "eager-fp32-t1-stream"]
    host = perf["host"]
    assert host["physical_cores"] >= 1 and host["python"] and "onnxruntime" in host["versions"]
    assert len(host["load_average_start"]) == 3 and host["peak"]["explanation"]
    # the manifest's source_checkpoint (if still on disk), else the config with random weights
    assert perf["eager"]["available"] and perf["eager"]["weights"].startswith(("checkpoint", "random init"))
    assert {(g["runtime"], g["precision"]) for g in perf["gemm"]} == {("onnxruntime", "fp32"), ("eager", "fp32")}


def test_cells_hold_consistent_statistics(perf):
    for c in perf["cells"]:
        lat = c["latency_ms"]
        assert lat == pytest.approx(latency_stats(c["samples_ms"]), rel=1e-3)  # stats are of the samples
        assert sum(c["samples_ms"]) / 1000 >= 0.3 * 0.9  # --seconds of timed calls per cell
        assert len(c["load_ms"]["samples"]) == 3
        assert c["load_ms"]["median"] == pytest.approx(np.median(c["load_ms"]["samples"]), rel=1e-3, abs=1e-3)
        assert c["first_inference_ms"] > 0 and c["peak_rss_mb"] is None  # probe off here (see the slow test)
        budget = 1000 / 30 * (4 if c["mode"] == "window" else 1)
        assert c["realtime"]["budget_ms"] == pytest.approx(budget)
        assert c["realtime"]["headroom_p99"] == pytest.approx(budget / lat["p99"])
        mac = perf["macs"]["forward" if c["mode"] == "window" else "per_frame"]
        assert c["achieved_gmacs"] == pytest.approx(mac / (lat["median"] * 1e6))
    stream = [c for c in perf["cells"] if c["mode"] == "stream"]
    assert all(c["warmup"] == 2 + 16 + 4 for c in stream)  # + sector estimate + ring buffer fill
    ort = {c["mode"]: c for c in perf["cells"] if c["runtime"] == "onnxruntime"}
    eager = {c["mode"]: c for c in perf["cells"] if c["runtime"] == "eager"}
    for mode in ("window", "stream"):
        assert ort[mode]["speedup_vs_eager"] == pytest.approx(
            eager[mode]["latency_ms"]["median"] / ort[mode]["latency_ms"]["median"])
        assert ort[mode]["artifact_bytes"] > 0 and eager[mode]["artifact_bytes"] is None
        assert ort[mode]["threads_control"].startswith("SessionOptions.intra_op_num_threads")


def test_report_writes_markdown_and_charts(perf, tmp_path):
    from echoweave.benchmarks.report import write_report

    paths = write_report(perf, tmp_path)
    md = paths["markdown"].read_text()
    assert "| onnxruntime-fp32-t1-stream |" in md and "Theoretical peak: fp32:" in md
    assert "load average" in md.lower()
    for name in ("latency", "stream_cdf"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_runs_writes_and_compares(tiny_folder, tmp_path, capsys):
    from echoweave.cli import main

    args = ["bench", str(tiny_folder), "--runtimes", "onnxruntime", "--threads", "1", "--mode", "window",
            "--seconds", "0.2", "--no-eager", "--no-gemm", "--no-memory", "--warmup", "1"]
    main(args + ["--out", str(tmp_path / "a")])
    main(args + ["--out", str(tmp_path / "b"), "--compare", str(tmp_path / "a" / "perf.json")])
    out = capsys.readouterr().out
    assert "onnxruntime-fp32-t1-window" in out and "ratio = new / old" in out
    perf_b = json.loads((tmp_path / "b" / "perf.json").read_text())
    assert perf_b["eager"]["available"] is False and [c["runtime"] for c in perf_b["cells"]] == ["onnxruntime"]
    capsys.readouterr()
    main(["bench", str(tmp_path / "b" / "perf.json"), "--compare", str(tmp_path / "a" / "perf.json")])
    table = capsys.readouterr().out
    assert "onnxruntime-fp32-t1-window" in table and "only in" not in table


def test_cli_errors_name_the_problem(tiny_folder, tmp_path, capsys):
    from echoweave.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", str(tmp_path), "--seconds", "0.1"])
    assert exc.value.code == 2 and "no manifest here" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", str(tiny_folder), "--mode", "burst", "--seconds", "0.1"])
    assert "--mode must be a subset" in capsys.readouterr().err


def test_soak_reports_drift_fields(tiny_folder):
    import echoweave.edge as ew
    from echoweave.benchmarks.soak import soak

    clf = ew.load(tiny_folder, runtime="onnxruntime", threads=1)
    frames = np.random.default_rng(0).integers(0, 255, size=(12, 48, 64), dtype=np.uint8)
    s = soak(clf, frames, minutes=0.01, progress=False)
    assert s["frames"] > 10 and s["median_first_ms"] > 0 and s["rss_end_mb"] > 0
    assert s["cell"] == "onnxruntime-fp32-stream"


@pytest.mark.slow
def test_memory_probe_reports_peak_rss_of_a_fresh_process(tiny_folder, tmp_path):
    from echoweave.benchmarks.harness import Cell, probe_memory

    frames = tmp_path / "frames.npy"
    np.save(frames, np.random.default_rng(0).integers(0, 255, size=(24, 48, 64), dtype=np.uint8))
    mem = probe_memory(Cell("onnxruntime", "fp32", 1, "stream"), tiny_folder, str(frames), calls=3)
    assert "error" not in mem, mem
    assert mem["peak_rss_mb"] >= mem["rss_after_load_mb"] >= mem["rss_before_load_mb"] > 0
    assert mem["calls"] == 3 + 1 + 16 + 4  # calls + first inference + sector/ring-buffer warm-up
