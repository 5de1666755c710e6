"""`echoweave.edge.atomic`: one way to write a file (temporary sibling, mode 0644, os.replace),
used by every writer in the package."""
from __future__ import annotations

import ast
import contextlib
import json
import os
import stat
from pathlib import Path

import pytest

from echoweave.edge.atomic import atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("edge", "train", "export", "benchmarks", "kit")
# Files that still call os.replace themselves: each swaps a whole folder into place (an
# .mlpackage, a dataset, an epoch checkpoint, an export), which atomic_path does not do.
FOLDER_SWAPS = {"edge/atomic.py", "export/coreml.py", "export/pipeline.py", "train/data/layout_writers.py",
                "train/engine/checkpoint.py"}


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_helper_writes_mode_0644_whatever_the_umask(tmp_path):
    with umask(0o077):  # a private umask must not make shared files private, nor 0o000 make them writable
        paths = [write_text_atomic(tmp_path / "a" / "t.txt", "tëxt\n"),
                 write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01"),
                 write_json_atomic(tmp_path / "c.json", {"b": 1, "a": [1, 2]})]
        with atomic_path(tmp_path / "d.npz") as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".npz" and tmp.exists()
            tmp.write_bytes(b"npz")
        paths.append(tmp_path / "d.npz")
    with umask(0o000):
        paths.append(write_text_atomic(tmp_path / "e.txt", "x"))
    assert [mode(p) for p in paths] == [0o644] * 5
    assert (tmp_path / "a" / "t.txt").read_text(encoding="utf-8") == "tëxt\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.json").read_text() == json.dumps({"b": 1, "a": [1, 2]}, indent=2, sort_keys=True) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "c.json", "d.npz", "e.txt"]


def test_a_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_text_atomic(tmp_path / "report.png", "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]

    with pytest.raises(KeyboardInterrupt):  # also on interrupts, not only on Exception
        with atomic_path(tmp_path / "new.txt"):
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]


def test_the_temporary_keeps_the_suffix_or_takes_the_given_one(tmp_path):
    with atomic_path(tmp_path / "chart.png") as tmp:  # matplotlib picks the format from the suffix
        assert tmp.name.startswith(".chart.png.") and tmp.suffix == ".png"
    with atomic_path(tmp_path / "perf.md", suffix=".tmp") as tmp:
        assert tmp.suffix == ".tmp"
    with atomic_path(tmp_path / "latest") as tmp:
        assert tmp.suffix == ".tmp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png", "latest", "perf.md"]


def test_package_writers_give_mode_0644(tmp_path):
    pytest.importorskip("matplotlib")
    from echoweave.train.evaluation.report import plot_confusion_matrix, write_metrics_json

    with umask(0o077):
        written = [write_metrics_json({"accuracy": 0.5}, tmp_path / "metrics.json"),
                   plot_confusion_matrix([[2, 0], [1, 1]], ["A2C", "A4C"], tmp_path / "confusion.png")]
    assert [mode(p) for p in written] == [0o644, 0o644]
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _calls(tree: ast.AST, module: str, names: set[str]) -> list[int]:
    """Line numbers of ``module.name(...)`` calls, or ``name(...)`` after ``from module import name``."""
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == module
                for a in n.names if a.name in names}
    lines = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        f = n.func
        if isinstance(f, ast.Attribute) and f.attr in names and isinstance(f.value, ast.Name) and f.value.id == module:
            lines.append(n.lineno)
        elif isinstance(f, ast.Name) and f.id in imported:
            lines.append(n.lineno)
    return lines


def _package_sources():
    for folder in PACKAGE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), str(path))


def test_only_edge_atomic_makes_temporary_files_to_rename():
    """No hand-rolled atomic writes: mkstemp / NamedTemporaryFile live in edge/atomic.py only, and
    os.replace only there and in the folder swaps listed above."""
    temp_files, renames = [], []
    for rel, tree in _package_sources():
        if rel == "edge/atomic.py":
            continue
        temp_files += [f"{rel}:{ln}" for ln in _calls(tree, "tempfile", {"mkstemp", "NamedTemporaryFile"})]
        if rel not in FOLDER_SWAPS:
            renames += [f"{rel}:{ln}" for ln in _calls(tree, "os", {"replace", "rename"})]
    assert not temp_files, "write through echoweave.edge.atomic (atomic_path) instead of: " + ", ".join(temp_files)
    assert not renames, "a file rename outside echoweave.edge.atomic: " + ", ".join(renames)


def test_the_scan_finds_calls():
    tree = ast.parse("import os, tempfile\nfrom tempfile import mkstemp as m\n"
                     "tempfile.mkstemp()\nm()\nos.replace('a', 'b')\n")
    assert _calls(tree, "tempfile", {"mkstemp"}) == [3, 4]
    assert _calls(tree, "os", {"replace"}) == [5]
