"""Converters side by side (`echoweave.export.parallel`): groups run in forked workers, the
result equals the one-after-the-other export, and a failure in a worker stops the export with
the converter's name and leaves nothing behind."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from echoweave.export import pipeline
from echoweave.export.formats import ExportError
from echoweave.export.parallel import plan_groups
from echoweave.export.pipeline import export_checkpoint

FORMATS = ["onnx", "litert"]
PRECISIONS = ["fp32", "int8"]


def test_groups_keep_dependent_precisions_together_and_start_with_the_longest():
    todo = [("executorch", "fp32"), ("executorch", "int8"), ("onnx", "fp32"), ("onnx", "int8"),
            ("litert", "fp32"), ("litert", "int8"), ("coreml", "fp32"), ("coreml", "int8")]
    groups = plan_groups(todo)
    assert groups[0] == [("executorch", "int8")]  # the longest lowering starts at once
    assert [("onnx", "fp32"), ("onnx", "int8")] in groups  # int8 quantizes the fp32 graph: same worker, in order
    assert [("litert", "fp32"), ("litert", "int8")] in groups
    assert sorted(k for g in groups for k in g) == sorted(todo)
    assert plan_groups([("onnx", "int8")]) == [[("onnx", "int8")]]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def parallel_export(tiny_checkpoint, tmp_path_factory):
    """The tiny TFW exported to ONNX and LiteRT with two workers; the pid of every conversion."""
    pytest.importorskip("litert_torch")
    pids_file = tmp_path_factory.mktemp("pids") / "pids.txt"
    original = pipeline.load_converter

    def recording(fmt):
        convert = original(fmt)

        def wrapped(ctx, precision):
            with open(pids_file, "a") as fh:  # appended by the worker process that converts
                fh.write(f"{fmt} {precision} {os.getpid()}\n")
            return convert(ctx, precision)
        return wrapped

    pipeline.load_converter = recording
    try:
        out = tmp_path_factory.mktemp("parallel_art")
        result = export_checkpoint(tiny_checkpoint, out, formats=FORMATS, precisions=PRECISIONS, calib_clips=2,
                                   parity_clips=1, show_progress=True, jobs=2)
    finally:
        pipeline.load_converter = original
    pids = [line.split() for line in pids_file.read_text().splitlines()]
    return result, {(f, p): int(pid) for f, p, pid in pids}


def test_groups_run_in_two_worker_processes_and_records_keep_plan_order(parallel_export):
    result, pids = parallel_export
    assert set(pids) == {(f, p) for f in FORMATS for p in PRECISIONS}
    assert os.getpid() not in pids.values()
    assert len(set(pids.values())) == 2  # one worker per format group
    assert pids["onnx", "fp32"] == pids["onnx", "int8"] and pids["litert", "fp32"] == pids["litert", "int8"]
    ids = [a["id"] for a in result.manifest["artifacts"]]
    assert [i.split("_")[0] for i in ids] == ["onnx", "onnx", "litert", "litert"]
    for fmt in FORMATS:  # the workers' stage timings come back to the parent
        for precision in PRECISIONS:
            assert result.timings[f"{fmt} {precision}: export -> quantize -> lower -> serialize"] > 0
    assert any(k.startswith("onnx int8 / embed_frame / quantize") for k in result.timings)
    rows = {r["id"]: r for r in result.parity["artifacts"]}
    for art in result.manifest["artifacts"]:  # every artifact was verified by the parent, from the files
        assert rows[art["id"]]["ran"] and rows[art["id"]]["methods"]["streaming"]["sqnr_db"] > 10
        for f in art["files"]:
            assert _sha(result.folder / f["path"]) == f["sha256"]


def test_parallel_export_writes_what_the_sequential_one_writes(parallel_export, tiny_checkpoint, tmp_path):
    result, _ = parallel_export
    seq = export_checkpoint(tiny_checkpoint, tmp_path, formats=["onnx"], precisions=["fp32"], calib_clips=2,
                            parity_clips=1, show_progress=False, jobs=1)
    par_art = next(a for a in result.manifest["artifacts"] if a["id"] == "onnx_cpu_fp32")
    seq_art = next(a for a in seq.manifest["artifacts"] if a["id"] == "onnx_cpu_fp32")
    assert [f["sha256"] for f in par_art["files"]] == [f["sha256"] for f in seq_art["files"]]
    assert result.parity["held_out"] == seq.parity["held_out"]  # verified on the same held-out windows
    par_row = next(r for r in result.parity["artifacts"] if r["id"] == "onnx_cpu_fp32")
    seq_row = next(r for r in seq.parity["artifacts"] if r["id"] == "onnx_cpu_fp32")
    assert par_row["verdict"] == seq_row["verdict"]


def test_a_failing_worker_stops_the_export_by_name_and_keeps_the_old_export(tiny_checkpoint, tmp_path, monkeypatch,
                                                                               capfd):
    out = tmp_path / "art"
    first = export_checkpoint(tiny_checkpoint, out, formats=["onnx"], precisions=["fp32"], calib_clips=2,
                              parity_clips=1, show_progress=False, jobs=1)
    before = {p.name: _sha(p) for p in first.folder.iterdir() if p.is_file()}
    original = pipeline.load_converter

    def broken(fmt):
        if fmt == "litert":
            def fail(ctx, precision):
                raise RuntimeError("converter crashed on purpose")
            return fail
        return original(fmt)

    monkeypatch.setattr(pipeline, "load_converter", broken)
    with pytest.raises(ExportError, match=r"litert fp32 export failed: RuntimeError: converter crashed on purpose"):
        export_checkpoint(tiny_checkpoint, out, formats=["onnx", "litert"], precisions=["fp32"], calib_clips=2,
                          parity_clips=1, show_progress=True, jobs=2, overwrite=True)
    assert {p.name: _sha(p) for p in first.folder.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == [first.folder.name]  # no staging folder left
    assert re.search(r"worker processes", capfd.readouterr().out)
