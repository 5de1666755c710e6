"""One table of format facts (`echoweave.edge.formats`): every other format list is a view of it,
and adding a format is one converter, one adapter and one row.

The throw-away TorchScript format of `tests.helpers.throwaway_format` is registered here and goes
through plan, export, manifest, `echoweave.edge.load`, window and stream classification and the
CLI's ``--runtime`` choices, with no other edit anywhere; unregistering it restores the table.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest

from echoweave.benchmarks import gemm
from echoweave.benchmarks.threads import THREAD_CONTROL
from echoweave.edge import manifest as mf
from echoweave.edge.formats import (
    BUILTIN_FORMATS,
    default_formats,
    format_names,
    format_rows,
    get_format,
    get_runtime,
    register_format,
    registered,
    runtime_names,
    unregister_format,
)
from echoweave.edge.runtime import base as runtime_base
from echoweave.export import formats as export_formats
from echoweave.export import pipeline
from tests.helpers import throwaway_format
from tests.helpers.throwaway_format import TORCHSCRIPT

REPO = Path(__file__).resolve().parents[1]
BUILTIN = ("executorch", "onnx", "litert", "coreml")


# ---- the views -----------------------------------------------------------------------------------
def test_every_format_list_is_a_view_of_the_table():
    assert format_names() == BUILTIN == tuple(r.format for r in BUILTIN_FORMATS)
    assert mf.FORMATS == BUILTIN and list(mf.FORMATS) == list(BUILTIN)
    assert runtime_base.PREFERENCE == runtime_names() == ("executorch", "onnxruntime", "litert", "coreml")
    assert {n: r.format for n, r in runtime_base.RUNTIMES.items()} == {r.runtime: r.format for r in format_rows()}
    assert runtime_base.RUNTIMES["coreml"].platforms == ("darwin",)
    assert list(export_formats.CONVERTERS) == list(BUILTIN)
    assert tuple(pipeline.DEFAULT_FORMATS) == default_formats() == BUILTIN
    assert set(THREAD_CONTROL) == {*runtime_names(), "eager"}
    assert {(u.format, u.precision) for u in export_formats.UNSUPPORTED} == {
        ("executorch", "fp16"), ("onnx", "fp16"), ("litert", "fp16")}
    assert export_formats.PRECISION_NOTES[("onnx", "int8")] == get_format("onnx").note("int8")
    # Core ML: no parity run on Linux, and the reason is the row's.
    assert runtime_base.RUNTIMES["coreml"].platform_reason == get_format("coreml").platform_reason \
        == "Core ML predict needs macOS; only structural checks on Linux"
    assert set(gemm.BUILDERS) <= set(BUILTIN)
    for row in format_rows():
        assert set(row.precisions) <= set(mf.PRECISIONS) and row.suffix.startswith(".")
        assert get_runtime(row.runtime) is row
    # The schema file lists the built-in formats for the apps' own validators (the Kotlin core).
    schema = json.loads(mf.SCHEMA_FILE.read_text())
    assert tuple(schema["$defs"]["artifact"]["properties"]["format"]["enum"]) == BUILTIN


def test_register_refuses_duplicates_and_bad_rows_and_unregister_restores():
    before = format_rows()
    with pytest.raises(ValueError, match="format 'onnx' is already registered"):
        register_format(get_format("onnx"))
    with pytest.raises(ValueError, match="runtime 'onnxruntime' is already registered"):
        register_format(dataclasses.replace(TORCHSCRIPT, runtime="onnxruntime"))
    with pytest.raises(ValueError, match="not manifest precisions"):
        register_format(dataclasses.replace(TORCHSCRIPT, precisions=("bf16",)))
    with pytest.raises(ValueError, match="lower-case identifier"):
        dataclasses.replace(TORCHSCRIPT, format="Torch Script")
    with pytest.raises(ValueError, match="needs a platform_reason"):
        dataclasses.replace(TORCHSCRIPT, platforms=("darwin",))
    with pytest.raises(ValueError, match="nothing to replace"):
        register_format(TORCHSCRIPT, replace=True)
    with pytest.raises(KeyError, match="unknown format 'torchscript'"):
        unregister_format("torchscript")
    assert format_rows() == before
    register_format(TORCHSCRIPT)
    try:
        assert format_rows() == (*before, TORCHSCRIPT)
    finally:
        assert unregister_format("torchscript") is TORCHSCRIPT
    assert format_rows() == before


def test_a_registered_format_is_everywhere_and_gone_after():
    with registered(TORCHSCRIPT):
        assert mf.FORMATS[-1] == "torchscript" and runtime_base.PREFERENCE[-1] == "torchscript"
        info = runtime_base.RUNTIMES["torchscript"]
        assert (info.format, info.adapter, info.pip) == ("torchscript", TORCHSCRIPT.adapter, "torch")
        assert runtime_base.runtime_available("torchscript")
        spec = export_formats.CONVERTERS["torchscript"]
        assert spec.converter == TORCHSCRIPT.converter
        assert export_formats.load_converter("torchscript") is throwaway_format.export_torchscript
        assert THREAD_CONTROL["torchscript"] == TORCHSCRIPT.thread_control
        assert "torchscript" not in pipeline.DEFAULT_FORMATS  # default_export=False
        todo, skipped = pipeline.plan_exports(["torchscript"], ["fp32", "fp16", "int8"], "tfw")
        assert todo == [("torchscript", "fp32")]
        assert {s["precision"]: s["reason"] for s in skipped} == {
            "fp16": "torchscript converter produces fp32 only",
            "int8": "throw-away test format: no quantizer is wired for TorchScript"}
    for view in (mf.FORMATS, runtime_base.PREFERENCE, runtime_base.RUNTIMES, export_formats.CONVERTERS,
                 THREAD_CONTROL):
        assert "torchscript" not in view
    assert format_rows() == BUILTIN_FORMATS
    with pytest.raises(pipeline.ExportError, match="unknown format 'torchscript'"):
        pipeline.plan_exports(["torchscript"], ["fp32"], "tfw")


def test_the_cli_offers_a_registered_runtime():
    from echoweave.commands.classify import classify

    assert typing.get_args(typing.get_type_hints(classify)["runtime"])[0] == typing.Literal[runtime_names()]
    code = ("from echoweave.edge.formats import register_format\n"
            "from tests.helpers.throwaway_format import TORCHSCRIPT\n"
            "register_format(TORCHSCRIPT)\n"
            "from echoweave.cli import main\n"
            "main(['classify', '--help'])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'coreml', 'torchscript'" in " ".join(out.stdout.split())


# ---- export, load, classify ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def torchscript_export(tiny_checkpoint, tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    with registered(TORCHSCRIPT):
        return pipeline.export_checkpoint(tiny_checkpoint, tmp_path_factory.mktemp("torchscript_art"),
                                          formats=["torchscript"], precisions=["fp32", "int8"], calib_clips=4,
                                          parity_clips=2, show_progress=False)


def test_export_load_and_classify_with_a_registered_format(torchscript_export, tiny_checkpoint):
    import torch

    import echoweave.edge as ew
    from tests.helpers.stream_parity import assert_file_and_stream_agree

    folder = torchscript_export.folder
    frames = np.random.default_rng(7).integers(0, 256, size=(9, 40, 50), dtype=np.uint8)
    with registered(TORCHSCRIPT):
        manifest = mf.read_manifest(folder)
        (art,) = manifest["artifacts"]
        assert (art["id"], art["format"], art["precision"]) == ("torchscript_cpu_fp32", "torchscript", "fp32")
        assert set(art["methods"]) == set(manifest["methods"]) and all(f["path"].endswith(".pt") for f in art["files"])
        assert manifest["skipped"] == [{"format": "torchscript", "precision": "int8",
                                        "reason": "throw-away test format: no quantizer is wired for TorchScript"}]
        # Parity ran the throw-away format through its own edge adapter: no runner was written for it.
        (entry,) = json.loads((folder / "parity.json").read_text())["artifacts"]
        assert entry["ran"] and entry["runtime"] == "torchscript" and entry["verdict"] != "MISSED", entry
        assert entry["methods"]["forward"]["sqnr_db"] >= 40.0 and entry["methods_run"] == manifest["methods"]

        clf = ew.load(folder, runtime="torchscript")
        assert clf.runtime == "torchscript" and ew.load(folder).runtime == "torchscript"
        x = clf.preprocess(frames, sector=None)
        model, _, _ = pipeline.load_checkpoint_model(tiny_checkpoint)
        with torch.no_grad():
            windows = torch.stack([torch.from_numpy(x[s : s + 4]) for s in range(len(x) - 3)])
            eager = torch.softmax(model(windows).double(), -1).numpy()
        assert_file_and_stream_agree(clf, frames, eager)
        p = clf.predict(frames, sector=None)
        assert p.runtime == "torchscript" and p.view == clf.class_names[p.class_id]
        clf.close()
    # Unregistered, the manifest names a format this echoweave does not know.
    with pytest.raises(mf.ManifestError, match="'torchscript' is not one of"):
        mf.read_manifest(folder)
