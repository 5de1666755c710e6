"""The stream cell reports where a streamed frame's time goes (decode/convert, sector, resize,
model, head), in perf.json, perf.md and the printed table. Values are checked for presence and
sign only: timing is for benchmarks, not unit tests."""
from __future__ import annotations

import json

import pytest

from echoweave.benchmarks.cells import SPLIT_PARTS
from echoweave.benchmarks.schema import validate_perf

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def perf(tiny_checkpoint, tmp_path_factory):
    from echoweave.benchmarks.harness import BenchConfig, run_bench
    from tests.helpers.edge_artifacts import exported_artifacts

    torch.set_num_threads(1)
    folder = exported_artifacts(tiny_checkpoint, formats=("onnx",))
    cfg = BenchConfig(str(folder), runtimes=["onnxruntime"], threads=[1], modes=["window", "stream"], seconds=0.2,
                      warmup=2, eager=False, gemm=False, memory=False, chunk_seconds=0.1, phantom_size=(64, 80),
                      phantom_frames=20, progress=False)
    return run_bench(cfg)


def test_stream_cells_report_their_split(perf):
    validate_perf(json.loads(json.dumps(perf)))
    stream = [c for c in perf["cells"] if c["mode"] == "stream"]
    window = [c for c in perf["cells"] if c["mode"] == "window"]
    assert stream and window and all(c["stream_split_ms"] is None for c in window)
    for c in stream:
        split = c["stream_split_ms"]
        for part in SPLIT_PARTS:
            assert split[part] > 0, (part, split)  # the tiny TFW streams: sector estimated, per-frame split
        assert split["preprocess"] >= split["resize"] and split["other"] is not None and split["other"] >= 0
        assert split["frame_shape"] == [64, 80] and split["calls"] > 0


def test_split_is_in_the_report_and_the_printed_table(perf):
    from echoweave.benchmarks.harness import stream_split_table
    from echoweave.benchmarks.report import perf_markdown

    table = stream_split_table(perf)
    assert "onnxruntime-fp32-t1-stream" in table and all(p in table.splitlines()[0] for p in SPLIT_PARTS)
    md = perf_markdown(perf)
    assert "## Where a streamed frame's time goes" in md and "| onnxruntime-fp32-t1-stream |" in md
