"""Issue 16: the kit tried as a demanding user and as an attacker would. One test (or a few) per
case, numbered as in the issue; every one runs the real component (no mocks) and fails if the
defect comes back.

Errors must be one line naming the file and the problem, a non-zero exit and no traceback, and
must leave what was already written untouched.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from echoweave.edge.errors import EchoweaveError

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``echoweave ARGV`` in-process: ``(exit status, stdout, stderr)``."""
    from echoweave.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """A refused command: non-zero exit, one ``echoweave: error:`` line naming every needle, no traceback."""
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("echoweave: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---- 1, 2, 16: training runs and checkpoints --------------------------------------------------
@pytest.fixture(scope="module")
def store():
    import torch

    from echoweave.train.engine.data import load_store
    from tests.helpers.tiny import tiny_config

    torch.set_num_threads(1)
    return load_store(tiny_config("unused").data, show_progress=False)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "tb" not in p.relative_to(folder).parts}


def test_01_training_into_an_existing_run_is_refused_and_loses_nothing(tmp_path, store):
    from echoweave.train.engine import checkpoint as ckpt
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    run_training(tiny_config(tmp_path, optim={"epochs": 2}), store=store, show_progress=False)
    before = _snapshot(tmp_path)
    with pytest.raises(EchoweaveError, match=r"already holds a run .*epoch_0002.*--resume.*--overwrite"):
        run_training(tiny_config(tmp_path, optim={"epochs": 1}), store=store, show_progress=False)
    assert _snapshot(tmp_path) == before  # config.json, metrics.json and both checkpoints untouched

    # An explicit overwrite replaces the run; the new checkpoint survives pruning and `latest` names it.
    result = run_training(tiny_config(tmp_path, optim={"epochs": 1}, overwrite=True), store=store,
                          show_progress=False)
    assert result.checkpoint.name == "epoch_0001" and result.checkpoint.is_dir()
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "epoch_0001"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*")) == ["epoch_0001"]
    assert ckpt.find_checkpoint(tmp_path) == result.checkpoint


def test_01_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    import torch

    from echoweave.train.engine import checkpoint as ckpt

    model = torch.nn.Linear(2, 2)
    for epoch in (9, 10):  # an older, longer run left higher epoch numbers behind
        ckpt.save_checkpoint(tmp_path, epoch, model, {"class_names": ["a", "b"]}, keep=2)
    final = ckpt.save_checkpoint(tmp_path, 1, model, {"class_names": ["a", "b"]}, keep=2)
    assert final.is_dir() and (final / ckpt.WEIGHTS).is_file()
    assert ckpt.find_checkpoint(tmp_path) == final
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*")) == ["epoch_0001", "epoch_0010"]


class _Payload:
    """Unpickling this runs ``exec``: what a crafted train_state.pt would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_02_resume_never_executes_code_from_the_checkpoint_folder(tmp_path, store):
    import torch

    from echoweave.train.engine import checkpoint as ckpt
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    run_training(tiny_config(tmp_path, optim={"epochs": 1}), store=store, show_progress=False)
    folder = ckpt.find_checkpoint(tmp_path)
    assert ckpt.load_train_state(folder)["optimizer"]["param_groups"]  # the real state loads
    marker = tmp_path / "payload_ran"
    torch.save({"optimizer": _Payload(marker), "scheduler": {}}, folder / ckpt.STATE)
    with pytest.raises(EchoweaveError, match=r"train_state.pt: refused: .*could run code") as info:
        run_training(tiny_config(tmp_path, optim={"epochs": 2}, resume=True), store=store, show_progress=False)
    assert "\n" not in str(info.value)
    assert not marker.exists(), "the pickle payload ran"
    assert ckpt.find_checkpoint(tmp_path) == folder  # nothing was trained or written over


def test_16_stale_temporary_epoch_folders_are_cleaned_on_the_next_start(tmp_path, store):
    from echoweave.train.engine import checkpoint as ckpt
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    run_training(tiny_config(tmp_path, optim={"epochs": 2}), store=store, show_progress=False)
    stale = tmp_path / "checkpoints" / ".epoch_0003.k1ll3d"  # what kill -9 during save_checkpoint leaves
    stale.mkdir()
    (stale / ckpt.WEIGHTS).write_bytes(b"half a file")
    assert ckpt.find_checkpoint(tmp_path).name == "epoch_0002"  # never mistaken for a checkpoint
    run_training(tiny_config(tmp_path, optim={"epochs": 2}, resume=True), store=store, show_progress=False)
    assert not stale.exists()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []
    assert ckpt.find_checkpoint(tmp_path).name == "epoch_0002"
