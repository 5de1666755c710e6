"""Converters side by side (`echoweave.export.parallel`): groups run in forked workers, the
result equals the one-after-the-other export, a failure in a worker stops the export with the
converter's name and leaves nothing behind, and a process that cannot fork safely does not.

The parallel exports run in a fresh interpreter, as `echoweave export` does: this test process
has loaded JAX (earlier LiteRT conversions), and a worker forked from it would hang, which is
exactly what `fork_unsafe_reason` refuses (tested below in this process)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from echoweave.export import pipeline
from echoweave.export.formats import ExportError
from echoweave.export.parallel import fork_unsafe_reason, plan_groups
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


def _run_fresh(code: str, tmp: Path) -> dict:
    """Run ``code`` in a fresh interpreter (as the CLI runs); it writes its result to ``result.json``."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {**json.loads((tmp / "result.json").read_text()), "stdout": proc.stdout}


@pytest.fixture(scope="module")
def parallel_export(tiny_checkpoint, tmp_path_factory):
    """The tiny TFW exported to ONNX and LiteRT with two workers, in a fresh interpreter; the pid
    of every conversion (recorded by a wrapped converter, inherited through fork)."""
    pytest.importorskip("litert_torch")
    tmp = tmp_path_factory.mktemp("parallel")
    result = _run_fresh(f"""
        import json, os
        from echoweave.export import pipeline

        original = pipeline.load_converter

        def recording(fmt):
            convert = original(fmt)

            def wrapped(ctx, precision):
                with open("pids.txt", "a") as fh:  # appended by the worker process that converts
                    fh.write(f"{{fmt}} {{precision}} {{os.getpid()}}\\n")
                return convert(ctx, precision)
            return wrapped

        pipeline.load_converter = recording
        res = pipeline.export_checkpoint({str(tiny_checkpoint)!r}, "art", formats={FORMATS!r},
                                         precisions={PRECISIONS!r}, calib_clips=2, parity_clips=1, jobs=2)
        json.dump({{"folder": str(res.folder.resolve()), "timings": res.timings, "pid": os.getpid()}},
                  open("result.json", "w"))
        """, tmp)
    pids = [line.split() for line in (tmp / "pids.txt").read_text().splitlines()]
    folder = Path(result["folder"])
    return {**result, "manifest": json.loads((folder / "manifest.json").read_text()),
            "parity": json.loads((folder / "parity.json").read_text()),
            "pids": {(f, p): int(pid) for f, p, pid in pids}}


def test_groups_run_in_two_worker_processes_and_records_keep_plan_order(parallel_export):
    pids, manifest, timings = parallel_export["pids"], parallel_export["manifest"], parallel_export["timings"]
    assert set(pids) == {(f, p) for f in FORMATS for p in PRECISIONS}
    assert parallel_export["pid"] not in pids.values()
    assert len(set(pids.values())) == 2  # one worker per format group
    assert pids["onnx", "fp32"] == pids["onnx", "int8"] and pids["litert", "fp32"] == pids["litert", "int8"]
    assert "2 groups of converters in 2 worker processes" in parallel_export["stdout"]
    ids = [a["id"] for a in manifest["artifacts"]]
    assert [i.split("_")[0] for i in ids] == ["onnx", "onnx", "litert", "litert"]
    for fmt in FORMATS:  # the workers' stage timings come back to the parent
        for precision in PRECISIONS:
            assert timings[f"{fmt} {precision}: export -> quantize -> lower -> serialize"] > 0
    assert any(k.startswith("onnx int8 / embed_frame / quantize") for k in timings)
    rows = {r["id"]: r for r in parallel_export["parity"]["artifacts"]}
    folder = Path(parallel_export["folder"])
    for art in manifest["artifacts"]:  # every artifact was verified by the parent, from the files
        assert rows[art["id"]]["ran"] and rows[art["id"]]["methods"]["streaming"]["sqnr_db"] > 10
        for f in art["files"]:
            assert _sha(folder / f["path"]) == f["sha256"]


def test_parallel_export_writes_what_the_sequential_one_writes(parallel_export, tiny_checkpoint, tmp_path):
    seq = export_checkpoint(tiny_checkpoint, tmp_path, formats=["onnx"], precisions=["fp32"], calib_clips=2,
                            parity_clips=1, show_progress=False, jobs=1)
    par_art = next(a for a in parallel_export["manifest"]["artifacts"] if a["id"] == "onnx_cpu_fp32")
    seq_art = next(a for a in seq.manifest["artifacts"] if a["id"] == "onnx_cpu_fp32")
    assert [f["sha256"] for f in par_art["files"]] == [f["sha256"] for f in seq_art["files"]]
    assert parallel_export["parity"]["held_out"] == seq.parity["held_out"]  # the same held-out windows
    par_row = next(r for r in parallel_export["parity"]["artifacts"] if r["id"] == "onnx_cpu_fp32")
    seq_row = next(r for r in seq.parity["artifacts"] if r["id"] == "onnx_cpu_fp32")
    assert par_row["verdict"] == seq_row["verdict"]


def test_a_failing_worker_stops_the_export_by_name_and_keeps_the_old_export(tiny_checkpoint, tmp_path):
    out = tmp_path / "art"
    first = export_checkpoint(tiny_checkpoint, out, formats=["onnx"], precisions=["fp32"], calib_clips=2,
                              parity_clips=1, show_progress=False, jobs=1)
    before = {p.name: _sha(p) for p in first.folder.iterdir() if p.is_file()}
    result = _run_fresh(f"""
        import json
        from echoweave.export import pipeline
        from echoweave.export.formats import ExportError

        original = pipeline.load_converter

        def broken(fmt):
            if fmt == "litert":
                def fail(ctx, precision):
                    raise RuntimeError("converter crashed on purpose")
                return fail
            return original(fmt)

        pipeline.load_converter = broken
        try:
            pipeline.export_checkpoint({str(tiny_checkpoint)!r}, {str(out)!r}, formats=["onnx", "litert"],
                                       precisions=["fp32"], calib_clips=2, parity_clips=1, jobs=2, overwrite=True)
            error = None
        except ExportError as exc:
            error = str(exc)
        json.dump({{"error": error}}, open("result.json", "w"))
        """, tmp_path)
    assert result["error"] and result["error"].endswith("litert fp32 export failed: RuntimeError: converter "
                                                        "crashed on purpose")
    assert "worker processes" in result["stdout"]
    assert {p.name: _sha(p) for p in first.folder.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == [first.folder.name]  # no staging folder left


def test_a_process_that_loaded_jax_converts_one_after_another(tiny_checkpoint, tmp_path, capfd):
    """Forking after JAX is loaded hung a worker; such a process does not fork, and says why."""
    pytest.importorskip("jax")
    import jax  # noqa: F401  (what an earlier LiteRT conversion in this process leaves loaded)

    assert "JAX" in fork_unsafe_reason()
    result = export_checkpoint(tiny_checkpoint, tmp_path, formats=["onnx", "coreml"] if _has("coremltools")
                               else ["onnx"], precisions=["fp32"], calib_clips=2, parity_clips=1, jobs=2)
    out = capfd.readouterr().out
    if len(result.manifest["artifacts"]) > 1:
        assert "converters one after another, not in 2 workers: JAX" in out
    assert "worker processes" not in out
    assert result.manifest["artifacts"][0]["id"] == "onnx_cpu_fp32"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
