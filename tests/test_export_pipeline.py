"""The export pipeline around the converters: skip table, refusals, atomic staging, CLI, model card.

Uses the ONNX fp32 converter (the cheapest real one) on the tiny checkpoint; failures are
simulated by making a real stage raise midway (monkeypatch), never by fake converters.
"""
from __future__ import annotations

import dataclasses
import os
import json
import shutil

import pytest
import torch

from echoweave.edge import formats as format_table
from echoweave.edge.manifest import read_manifest, sha256_file, verify_artifact_files
from echoweave.export import formats
from echoweave.export.pipeline import ExportError, export_checkpoint, plan_exports


def _fast_export(ckpt, out, **kw):
    torch.set_num_threads(2)
    return export_checkpoint(ckpt, out, formats=kw.pop("formats", ["onnx"]), precisions=kw.pop("precisions", ["fp32"]),
                             calib_clips=4, parity_clips=2, show_progress=False, **kw)


def _snapshot(folder):
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())}


def _edited_checkpoint(tiny_checkpoint, tmp_path, edit):
    ck = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, ck)
    meta = json.loads((ck / "checkpoint.json").read_text())
    edit(meta)
    (ck / "checkpoint.json").write_text(json.dumps(meta))
    return ck


@pytest.fixture(scope="module")
def good_export(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline_art")
    return _fast_export(tiny_checkpoint, out)


# ---- the plan: a table with reasons --------------------------------------------------------------
def test_plan_skips_unsupported_combinations_with_reasons():
    todo, skipped = plan_exports(["executorch", "onnx"], ["fp32", "fp16", "int8"], "tfw")
    assert todo == [("executorch", "fp32"), ("executorch", "int8"), ("onnx", "fp32"), ("onnx", "int8")]
    reasons = {(s["format"], s["precision"]): s["reason"] for s in skipped}
    assert set(reasons) == {("executorch", "fp16"), ("onnx", "fp16")}
    assert "fp16" in reasons[("onnx", "fp16")] and reasons[("onnx", "fp16")] == formats.unsupported_reason("onnx", "fp16", "tfw")
    with pytest.raises(ExportError, match="unknown format 'tflite'"):
        plan_exports(["tflite"], ["fp32"], "tfw")


def test_missing_converter_package_is_a_skip_not_a_crash():
    row = format_table.get_format("onnx")
    with format_table.registered(dataclasses.replace(row, converter_package="no_such_package_xyz"), replace=True):
        assert formats.CONVERTERS["onnx"].package == "no_such_package_xyz"
        todo, skipped = plan_exports(["onnx"], ["fp32"], "tfw")
    assert todo == [] and skipped == [{"format": "onnx", "precision": "fp32",
                                       "reason": "package no_such_package_xyz not installed"}]
    assert formats.missing_package("onnx") is None  # the table is back


# ---- a good export ---------------------------------------------------------------------------------
def test_good_export_writes_manifest_reports_and_card(good_export):
    folder = good_export.folder
    assert folder.name == "tfw_tiny"
    manifest = read_manifest(folder)
    verify_artifact_files(folder, manifest["artifacts"][0])
    assert manifest["classes"][0] == {"id": 0, "name": "APICAL_5C"} and len(manifest["classes"]) == 12
    assert manifest["input_spec"]["methods"]["embed_frame"]["inputs"][0]["shape"] == [1, 1, 32, 32]
    assert manifest["uncertain_threshold"] == 0.5 and manifest["source_checkpoint"]["dataset"] == "phantom"
    assert manifest["parity"]["onnx_cpu_fp32"]["top1_agreement"] == 1.0
    card = (folder / "MODEL_CARD.md").read_text()
    assert "not a diagnosis" in card and "synthetic echo phantom" in card and "95%" in card
    held = json.loads((folder / "parity.json").read_text())["held_out"]
    assert held["patients"] == ["P002"] and held["clips"] == 2  # val patients only, capped by parity_clips
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tfw_tiny"]  # no staging leftovers


# ---- atomicity -------------------------------------------------------------------------------------
def _fail_on_second_graph(monkeypatch, exc):
    from echoweave.export import onnx_format

    real, calls = onnx_format.export_onnx_graph, []

    def flaky(*args, **kw):
        calls.append(args[2])  # the graph's input names
        if len(calls) == 2:  # the first graph is already written into the staging folder
            raise exc
        return real(*args, **kw)

    monkeypatch.setattr(onnx_format, "export_onnx_graph", flaky)
    return calls


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failure_midway_leaves_existing_export_untouched(good_export, tiny_checkpoint, monkeypatch, exc):
    before = _snapshot(good_export.folder)
    calls = _fail_on_second_graph(monkeypatch, exc)
    with pytest.raises(ExportError if isinstance(exc, RuntimeError) else KeyboardInterrupt) as info:
        _fast_export(tiny_checkpoint, good_export.folder.parent)
    assert calls == [["clip"], ["frame"]]  # the input names of forward, then embed_frame
    if isinstance(exc, RuntimeError):
        assert "onnx fp32 export failed" in str(info.value) and "disk on fire" in str(info.value)
    assert _snapshot(good_export.folder) == before
    assert sorted(p.name for p in good_export.folder.parent.iterdir()) == ["tfw_tiny"]


def test_failure_on_fresh_destination_leaves_nothing(tiny_checkpoint, tmp_path, monkeypatch):
    _fail_on_second_graph(monkeypatch, RuntimeError("boom"))
    with pytest.raises(ExportError):
        _fast_export(tiny_checkpoint, tmp_path / "art")
    assert list((tmp_path / "art").iterdir()) == []


# ---- refusals --------------------------------------------------------------------------------------
def test_refuses_missing_checkpoint(tmp_path):
    with pytest.raises(ExportError, match="no complete checkpoint"):
        _fast_export(tmp_path / "nothing_here", tmp_path / "art")


def test_refuses_unknown_model(tiny_checkpoint, tmp_path):
    ck = _edited_checkpoint(tiny_checkpoint, tmp_path, lambda m: m["model"].update(name="transformer9000"))
    with pytest.raises(ExportError, match="unknown model 'transformer9000'"):
        _fast_export(ck, tmp_path / "art")


def test_refuses_empty_calibration_set(tiny_checkpoint, tmp_path):
    # Every patient held out: no training clip is left to calibrate on.
    ck = _edited_checkpoint(tiny_checkpoint, tmp_path,
                            lambda m: m["split"].update(val_patients=["P000", "P001", "P002"]))
    with pytest.raises(ExportError, match="calibration set is empty"):
        _fast_export(ck, tmp_path / "art")
    assert not (tmp_path / "art" / "tfw_tiny").exists()


def test_refuses_destination_with_another_model(good_export, tiny_checkpoint, tmp_path):
    out = tmp_path / "art"
    shutil.copytree(good_export.folder, out / "tfw_tiny")
    manifest = json.loads((out / "tfw_tiny" / "manifest.json").read_text())
    manifest["model"]["gru_hidden"] = 999
    (out / "tfw_tiny" / "manifest.json").write_text(json.dumps(manifest))
    before = _snapshot(out / "tfw_tiny")
    with pytest.raises(ExportError, match="holds a different model"):
        _fast_export(tiny_checkpoint, out)
    assert _snapshot(out / "tfw_tiny") == before


def test_refuses_folder_that_is_not_an_export(tiny_checkpoint, tmp_path):
    (tmp_path / "art" / "tfw_tiny").mkdir(parents=True)
    (tmp_path / "art" / "tfw_tiny" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an echoweave export"):
        _fast_export(tiny_checkpoint, tmp_path / "art")


def test_cli_reports_refusal_with_skip_reasons(tiny_checkpoint, tmp_path, capsys):
    from echoweave.cli import main

    with pytest.raises(SystemExit) as info:
        main(["export", str(tiny_checkpoint), "--out", str(tmp_path / "art"),
              "--formats", "onnx,executorch", "--precisions", "fp16"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "nothing to export" in err and "onnx fp16" in err and "executorch fp16" in err
    assert not (tmp_path / "art" / "tfw_tiny").exists()


def test_leftovers_of_a_killed_export_are_cleaned_or_restored(tmp_path):
    from echoweave.export.pipeline import recover_interrupted, staging_folder

    dest = tmp_path / "tfw_tiny"
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    stale = tmp_path / f".tfw_tiny.staging-{dead}-abcd"
    stale.mkdir()
    (stale / "half.pte").write_bytes(b"half")
    previous = tmp_path / f".tfw_tiny.old-{dead}-1700000000"
    previous.mkdir()
    (previous / "manifest.json").write_text("{}")
    live = tmp_path / f".tfw_tiny.staging-{os.getpid()}-efgh"  # an export running right now
    live.mkdir()
    touched = recover_interrupted(dest)
    assert set(touched) == {stale, previous}
    assert not stale.exists() and live.exists()
    assert (dest / "manifest.json").read_text() == "{}"  # the previous export is back
    with staging_folder(dest) as tmp:
        assert tmp.name.startswith(f".tfw_tiny.staging-{os.getpid()}-")
        (tmp / "manifest.json").write_text('{"new": 1}')
    assert (dest / "manifest.json").read_text() == '{"new": 1}'
