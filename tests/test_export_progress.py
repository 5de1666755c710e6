"""Export progress and sharing: a line per format, precision and method while a converter works,
and no method traced or translated twice when one trace can serve every format.

Calls are counted with the export-time benchmark's call profile (`CallProfile`, a wrapper around
the toolchain functions), never timed.
"""
from __future__ import annotations

import io
import re

import pytest
import torch

from echoweave.benchmarks.export_time import CallProfile, stage_labels
from echoweave.export.pipeline import export_checkpoint
from echoweave.export.progress import Progress, step

FORMATS = ["onnx", "coreml"]
PRECISIONS = ["fp32", "int8"]


@pytest.fixture(scope="module")
def profiled_export(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip("coremltools")
    torch.set_num_threads(2)
    out, lines = tmp_path_factory.mktemp("progress_art"), io.StringIO()
    profile = CallProfile()
    import echoweave.export.pipeline as pipeline

    original = pipeline.Progress
    pipeline.Progress = lambda show: Progress(show, stream=lines)  # capture the lines as a user sees them
    try:
        with profile.installed(), stage_labels(profile):
            result = export_checkpoint(tiny_checkpoint, out, formats=FORMATS, precisions=PRECISIONS, calib_clips=2,
                                       parity_clips=1, show_progress=True)
    finally:
        pipeline.Progress = original
    return result, profile, lines.getvalue()


def _top_level(profile, label):
    return [c for c in profile.calls if c["label"] == label and c["parent"] is None]


def test_a_progress_line_per_format_precision_and_method(profiled_export):
    result, _, text = profiled_export
    methods = result.manifest["methods"]
    assert len(methods) == 3
    for fmt in FORMATS:
        for precision in PRECISIONS:
            for method in methods:
                started = re.search(rf"^\[export\] {fmt} {precision} {method}: .* \.\.\.$", text, re.M)
                finished = re.search(rf"^\[export\] {fmt} {precision} {method}: .* done in \d+\.\d s$", text, re.M)
                assert started and finished, f"no progress line for {fmt} {precision} {method}:\n{text}"
    # the timings say where the time went, per format / precision / method / step
    keys = [k for k in result.timings if k.startswith("onnx int8 / embed_frame / quantize")]
    assert keys and result.timings[keys[0]] >= 0.0


def test_each_method_is_traced_once_for_all_formats(profiled_export):
    result, profile, _ = profiled_export
    methods = result.manifest["methods"]
    traces = _top_level(profile, "torch.export")  # the converters' own; nested ones belong to a toolchain call
    assert len(traces) == len(methods), [(c["stage"], c["method"]) for c in traces]
    # ONNX: one translation per method for both precisions (int8 quantizes the fp32 graphs)
    onnx = _top_level(profile, "torch.onnx.export")
    assert len(onnx) == len(methods) and {c["stage"] for c in onnx} == {"onnx fp32"}
    assert not [c for c in profile.calls if c["label"] == "torch.export" and c["parent"] == "torch.onnx.export"]
    # Core ML: one conversion per method and compute precision (fp32, and the fp16 that int8 quantizes)
    coreml = _top_level(profile, "coreml convert")
    assert sorted(c["stage"] for c in coreml) == ["coreml fp32"] * len(methods) + ["coreml int8"] * len(methods)
    assert len(_top_level(profile, "run_decompositions")) == len(methods)  # Core ML's decomposition, shared
    assert {a["id"] for a in result.manifest["artifacts"]} == {"onnx_cpu_fp32", "onnx_cpu_int8", "coreml_mlprogram_fp32",
                                                               "coreml_mlprogram_int8"}
    assert not [p for p in result.folder.iterdir() if p.name.startswith(".")]  # no intermediate left behind


def test_shared_programs_keep_parity(profiled_export):
    result, _, _ = profiled_export
    parity = result.manifest["parity"]
    assert parity["onnx_cpu_fp32"]["top1_agreement"] == 1.0
    assert parity["onnx_cpu_int8"]["top1_agreement"] >= 0.5  # a one-epoch tiny model; the value is not the point


def test_step_is_silent_without_an_active_export_and_adds_up_when_repeated():
    with step("onnx", "fp32", "forward", "export"):  # a converter called on its own: no error, no output
        pass
    lines = io.StringIO()
    progress = Progress(stream=lines)
    with progress.active():
        for _ in range(2):
            with step("litert", "int8", "embed_frame", "calibrate"):
                pass
    text = lines.getvalue().splitlines()
    assert text[0] == "[export] litert int8 embed_frame: calibrate ..." and len(text) == 4
    assert list(progress.timings) == ["litert int8 / embed_frame / calibrate"]
    with step("onnx", "fp32", "forward", "export"):  # the export is over: silent again
        pass
    assert len(lines.getvalue().splitlines()) == 4
