"""Shared acceptance steps for a registered model: train one tiny epoch, export every format
(cached), and the checks every model's export must pass (made or skipped with the model's own
reason; parity rows through the edge adapters)."""
from __future__ import annotations

import json
import re
from pathlib import Path

ALL_FORMATS = ("executorch", "onnx", "litert", "coreml")
PRECISIONS = ("fp32", "int8")


def train_and_export(out, model: dict, formats=ALL_FORMATS, precisions=PRECISIONS) -> tuple[Path, Path]:
    """``(checkpoint, artifact folder)`` of a 1-epoch tiny run of ``model`` (a ModelConfig dict)."""
    from echoweave.train.engine.run import run_training
    from tests.helpers.edge_artifacts import exported_artifacts
    from tests.helpers.tiny import tiny_config

    ckpt = run_training(tiny_config(out, model=model, optim={"epochs": 1}), show_progress=False).checkpoint
    return Path(ckpt), exported_artifacts(ckpt, formats=formats, precisions=precisions)


def manifest_of(folder) -> dict:
    return json.loads((Path(folder) / "manifest.json").read_text())


def has_runtime(folder, runtime: str) -> bool:
    """True if the export holds an artifact ``runtime`` reads."""
    from echoweave.edge.runtime.base import RUNTIMES

    return any(a["format"] == RUNTIMES[runtime].format for a in manifest_of(folder)["artifacts"])


def check_made_or_skipped(folder, formats=ALL_FORMATS, precisions=PRECISIONS) -> tuple[set, dict]:
    """Every (format, precision) asked for is made, or skipped with the model's own declared
    reason (`VideoModel.export_limits`). Returns ``(made, skipped {(format, precision): reason})``."""
    from echoweave.train.models import ModelConfig, build_model

    manifest = manifest_of(folder)
    model = build_model(ModelConfig.from_dict(manifest["model"]))
    assert manifest["methods"] == list(model.methods)
    made = {(a["format"], a["precision"]) for a in manifest["artifacts"]}
    skipped = {(r["format"], r["precision"]): r["reason"] for r in manifest["skipped"]}
    assert made | set(skipped) == {(f, p) for f in formats for p in precisions}
    limits = model.export_limits()
    for (fmt, prec), reason in skipped.items():
        own = limits.get((fmt, prec)) or limits.get((fmt, "*"))
        assert own and reason == f"{manifest['model']['name']}: {own}", (fmt, prec, reason)
    return made, skipped


def check_parity_rows(folder) -> list[dict]:
    """Parity ran every artifact a runtime here reads, through its edge adapter, all declared
    methods, never MISSED, fp32 forward >= 40 dB; Core ML rows are "not run" (macOS only).
    Returns the rows that ran."""
    manifest = manifest_of(folder)
    report = json.loads((Path(folder) / "parity.json").read_text())
    ran = [r for r in report["artifacts"] if r["ran"]]
    want = {rt for rt in ("onnxruntime", "executorch", "litert") if has_runtime(folder, rt)}
    assert {r["runtime"] for r in ran} == want and "onnxruntime" in want
    for row in ran:
        assert row["methods_run"] == manifest["methods"]
        assert row["verdict"] != "MISSED", (row["id"], row["why"])
        if row["precision"] == "fp32":
            assert row["methods"]["forward"]["sqnr_db"] >= 40.0, row["id"]
        if manifest["methods"] == ["forward"]:  # window-only: its streaming row is its forward
            assert row["streaming_vs_forward_max_abs"] == 0.0
    not_run = [r for r in report["artifacts"] if not r["ran"]]
    assert not_run and all(r["format"] == "coreml" and re.search("macOS|darwin", r["reason"]) for r in not_run)
    return ran
