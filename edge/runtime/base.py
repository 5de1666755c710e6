"""The adapter protocol, the table of runtimes, and how one is chosen and opened.

A runtime adapter runs the methods of one exported artifact (``forward``, ``embed_frame``,
``classify_window``) on numpy arrays. `RUNTIMES` says which artifact format each runtime reads,
which module proves it is installed, which pip package provides it and on which platform it can
predict; `load` in `echoweave.edge.classifier` walks `PREFERENCE` and takes the first runtime that
is installed *and* has an artifact in the manifest. Both are live views of the format table
(`echoweave.edge.formats`, docs/ARCHITECTURE.md "The edge runtime"): a registered format is a
runtime here too.

Thread safety: ``reentrant`` says whether one adapter may run calls from several threads at
once (ONNX Runtime sessions may); the classifier holds a lock around the others.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.formats import FormatInfo, LiveMapping, LiveSequence, format_rows, runtime_names


class RuntimeNotAvailable(EchoweaveError, ImportError):
    """The requested runtime is not installed here, or cannot predict on this platform."""


@runtime_checkable
class RuntimeAdapter(Protocol):
    """What every adapter offers.

    Attributes:
        name: runtime name (a key of `RUNTIMES`).
        version: the engine's version string.
        reentrant: True if `run` may be called from several threads at the same time.
    """

    name: str
    version: str
    reentrant: bool

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        """Run one method on its input arrays (manifest order); returns its first output as numpy."""

    def close(self) -> None:
        """Release the engine's resources."""


@dataclass(frozen=True)
class RuntimeInfo:
    """The runtime's part of one row of the format table (`echoweave.edge.formats.FormatInfo`).

    Attributes:
        name: runtime name used by ``load(runtime=...)`` and ``--runtime``.
        format: the manifest artifact ``format`` it reads.
        modules: importable modules that provide it, first found wins.
        pip: what to ``pip install`` to get it.
        adapter: ``module:Class`` of the adapter, imported only when opened.
        platforms: ``sys.platform`` values where it can predict (empty = everywhere).
        platform_reason: why it cannot predict elsewhere.
    """

    name: str
    format: str
    modules: tuple[str, ...]
    pip: str
    adapter: str
    platforms: tuple[str, ...] = ()
    platform_reason: str = ""

    @classmethod
    def of(cls, row: FormatInfo) -> "RuntimeInfo":
        return cls(row.runtime, row.format, row.modules, row.pip, row.adapter, row.platforms, row.platform_reason)


#: ``{runtime name: RuntimeInfo}``, a read-only live view of the format table.
RUNTIMES: LiveMapping = LiveMapping(lambda: {r.runtime: RuntimeInfo.of(r) for r in format_rows()})
#: Order `load` tries when no runtime is named (first installed one with a matching artifact): the table's order.
PREFERENCE: LiveSequence = LiveSequence(runtime_names)


def module_installed(module: str) -> bool:
    """True if ``module`` can be imported, found *without importing it* (nor its parents' heavy deps)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    locations = list(spec.submodule_search_locations or [])
    for part in rest:  # look for the submodule's file without running the parent's __init__
        found = [p for loc in locations for p in (Path(loc) / part, Path(loc) / f"{part}.py")
                 if p.exists() or any(Path(loc).glob(f"{part}.*.so"))]
        if not found:
            return False
        locations = [str(p) for p in found if p.is_dir()]
    return True


def installed_module(name: str) -> str | None:
    """The first of a runtime's modules that is installed, or None."""
    return next((m for m in RUNTIMES[name].modules if module_installed(m)), None)


def runtime_available(name: str) -> bool:
    """True if runtime ``name`` is installed and can predict on this platform."""
    info = RUNTIMES[name]
    if info.platforms and sys.platform not in info.platforms:
        return False
    return installed_module(name) is not None


def available_runtimes() -> list[str]:
    """Runtimes usable here, in `PREFERENCE` order."""
    return [name for name in PREFERENCE if runtime_available(name)]


def require_runtime(name: str) -> RuntimeInfo:
    """The table row of ``name``; raises `RuntimeNotAvailable` naming what to install or why not."""
    if name not in RUNTIMES:
        raise RuntimeNotAvailable(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    info = RUNTIMES[name]
    if info.platforms and sys.platform not in info.platforms:
        raise RuntimeNotAvailable(f"runtime {name!r} can only predict on {'/'.join(info.platforms)} "
                                  f"(this is {sys.platform}); pick another runtime")
    if installed_module(name) is None:
        raise RuntimeNotAvailable(f"runtime {name!r} is not installed: pip install {info.pip}")
    return info


def open_runtime(name: str, folder: str | Path, artifact: dict, threads: int | None = None) -> RuntimeAdapter:
    """Open ``artifact`` (a manifest entry) from ``folder`` with runtime ``name``.

    Raises:
        RuntimeNotAvailable: the runtime is unknown, not installed, or not usable on this platform.
        ManifestError: the artifact's format does not match the runtime.
    """
    from echoweave.edge.manifest import ManifestError

    info = require_runtime(name)
    if artifact["format"] != info.format:
        raise ManifestError(f"artifact {artifact['id']!r} is {artifact['format']!r}; runtime {name!r} reads "
                            f"{info.format!r}")
    module, cls = info.adapter.split(":")
    return getattr(importlib.import_module(module), cls)(Path(folder), artifact, threads=threads)


def method_entry(folder: Path, artifact: dict, method: str) -> tuple[Path, str]:
    """``(file path, entry name)`` of one method of an artifact; clear error if it was not exported."""
    from echoweave.edge.manifest import ManifestError

    if method not in artifact["methods"]:
        raise ManifestError(f"artifact {artifact['id']!r} has no method {method!r} "
                            f"(it has {', '.join(artifact['methods'])})")
    m = artifact["methods"][method]
    return folder / m["file"], m.get("entry", method)
