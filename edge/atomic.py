"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Everything echoweave writes for people or apps to read (manifests, checkpoints' JSON, timelines,
reports, perf.json, exported model files) goes through here: write a temporary file in the same
folder, give it mode 0644 (``mkstemp`` creates 0600, but these files are shared with other users
and devices), then ``os.replace`` it into place. On any error the temporary file is removed and
the old file, if any, is left as it was.

    write_text_atomic("out/perf.md", text)
    write_bytes_atomic("out/model.tflite", flatbuffer)
    with atomic_path("out/chart.png") as tmp:     # for libraries that write a file themselves
        fig.savefig(tmp)
    save_figure(fig, "out/chart.png")             # the same for a matplotlib figure, closed after

This module is the only place that calls ``tempfile.mkstemp`` (tests/test_atomic.py checks).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it becomes ``path`` (mode 0644).

    The temporary file exists (empty) when the block starts; write or overwrite it. If the
    block raises, the temporary file is removed and ``path`` is untouched. ``suffix`` is the
    temporary file's ending (default: ``path``'s own suffix), for libraries that pick a format
    from it (matplotlib ``savefig``) or append one when it is missing (numpy ``savez``).
    Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=(path.suffix or ".tmp") if suffix is None else suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parents created, mode 0644). Returns the path."""
    path = Path(path)
    with atomic_path(path, suffix=".tmp") as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (parents created, mode 0644). Returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any, indent: int = 2, sort_keys: bool = True) -> Path:
    """Write ``data`` as JSON (with a final newline) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")


def save_figure(fig, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure as PNG atomically (`atomic_path`) and close it, also on error."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", **savefig_kwargs)
    finally:
        import matplotlib.pyplot as plt  # only figures reach here, so matplotlib is installed

        plt.close(fig)
    return path
