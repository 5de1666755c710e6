"""The format table: one row per export format, and every other format list derives from it.

A row (`FormatInfo`) holds everything the kit knows about one format: the manifest ``format``
name, the ``--runtime`` name of the engine that reads it, the modules that prove that engine is
installed and the pip package that provides it, the runtime adapter and the converter (both as
import paths, imported only when used: edge never imports a converter, nor torch), the
precisions the converter produces with a note per precision for the manifest, the combinations
deliberately not produced (with their reason), how the engine's threads are set, the file
suffix, the platforms where it can predict (and why not elsewhere), and whether ``echoweave
export`` produces it by default. The table's order is the runtime preference order: with no
runtime named, `echoweave.edge.load` takes the first installed runtime that has an artifact.

Derived from it (see docs/ARCHITECTURE.md, "Export" and "The edge runtime"):
`echoweave.edge.manifest.FORMATS` and the manifest validator's format check,
`echoweave.edge.runtime.base.RUNTIMES` / `PREFERENCE`, `echoweave.export.formats.CONVERTERS` /
`UNSUPPORTED` / `PRECISION_NOTES`, `echoweave.export.pipeline.DEFAULT_FORMATS`, the GEMM
ceilings and thread notes of `echoweave.benchmarks`, and the ``--runtime`` choices and
``--formats`` default of the CLI. Those names are live views (`LiveSequence`, `LiveMapping`):
they read the table on every use, so a format registered at run time shows up everywhere.

Adding a format is one converter file, one adapter file and one row::

    from echoweave.edge.formats import FormatInfo, Unsupported, register_format

    register_format(FormatInfo(
        format="torchscript", runtime="torchscript", suffix=".pt",
        modules=("torch",), pip="torch", adapter="mypkg.ts_adapter:TorchScriptAdapter",
        converter="mypkg.ts_format:export_torchscript", converter_package="torch",
        precisions=("fp32",), unsupported=(Unsupported("int8", "*", "no quantizer wired"),),
        thread_control="torch.set_num_threads (process-wide)", default_export=False))

Built-in formats are the rows of `BUILTIN_FORMATS` below; ``edge/manifest.schema.json`` lists
their names for the apps' own validators (the Kotlin core keeps a byte copy of it), and the
Python validator replaces that list with the table's current names.
"""
from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, NamedTuple

__all__ = ["BUILTIN_FORMATS", "PRECISIONS", "FormatInfo", "LiveMapping", "LiveSequence", "Unsupported", "default_formats",
           "format_names", "format_rows", "get_format", "get_runtime", "register_format", "registered",
           "runtime_names", "unregister_format"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Artifact precisions a manifest may name (re-exported as `echoweave.edge.manifest.PRECISIONS`).
PRECISIONS = ("fp32", "fp16", "int8")


class Unsupported(NamedTuple):
    """A precision a format deliberately does not produce, for one model or all (``"*"``), and why."""

    precision: str
    model: str  # registered model name (ModelConfig.name) or "*"
    reason: str


@dataclass(frozen=True)
class FormatInfo:
    """One row of the format table.

    Attributes:
        format: the manifest artifact ``format`` (and ``--formats`` name of ``echoweave export``).
        runtime: the engine's name for ``load(runtime=...)`` and ``--runtime``.
        suffix: the artifact file's suffix (``.pte``, ``.onnx``, ``.tflite``, ``.mlpackage``).
        modules: importable modules that provide the engine, the first installed one wins.
        pip: what to ``pip install`` to get the engine.
        adapter: ``"module:Class"`` of the runtime adapter (imported only when an artifact is opened).
        converter: ``"module:function"`` of the converter (imported only by ``echoweave export``).
        converter_package: import name whose absence skips the converter ("package X not installed").
        precisions: precisions the converter produces.
        precision_notes: ``{precision: note}`` for the manifest where a precision is not the obvious thing.
        unsupported: combinations deliberately not produced, each with its reason.
        thread_control: how the engine's thread count is set (benchmark reports carry it).
        platforms: ``sys.platform`` values where the engine can predict (empty = everywhere).
        platform_reason: why it cannot predict elsewhere (parity and load errors say it).
        default_export: ``echoweave export`` produces it when no ``--formats`` is given.
    """

    format: str
    runtime: str
    suffix: str
    modules: tuple[str, ...]
    pip: str
    adapter: str
    converter: str
    converter_package: str
    precisions: tuple[str, ...]
    precision_notes: Mapping[str, str] = field(default_factory=dict, hash=False)
    unsupported: tuple[Unsupported, ...] = ()
    thread_control: str = ""
    platforms: tuple[str, ...] = ()
    platform_reason: str = ""
    default_export: bool = True

    def __post_init__(self):
        for attr in ("format", "runtime"):
            if not _NAME.match(getattr(self, attr)):
                raise ValueError(f"format table: {attr} {getattr(self, attr)!r} must be a lower-case identifier")
        where = f"format table row {self.format!r}"
        if not self.suffix.startswith("."):
            raise ValueError(f"{where}: suffix {self.suffix!r} must start with '.'")
        for attr in ("adapter", "converter"):
            module, _, name = getattr(self, attr).partition(":")
            if not module or not name:
                raise ValueError(f"{where}: {attr} {getattr(self, attr)!r} must be 'module:name'")
        for attr in ("modules", "precisions", "unsupported", "platforms"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not self.modules or not self.precisions:
            raise ValueError(f"{where}: needs at least one runtime module and one precision")
        object.__setattr__(self, "unsupported", tuple(Unsupported(*u) for u in self.unsupported))
        object.__setattr__(self, "precision_notes", MappingProxyType(dict(self.precision_notes)))
        if self.platforms and not self.platform_reason:
            raise ValueError(f"{where}: a format limited to {'/'.join(self.platforms)} needs a platform_reason")

    def note(self, precision: str) -> str | None:
        """The manifest note of ``precision`` (None when there is nothing to say)."""
        return self.precision_notes.get(precision)

    def unsupported_reason(self, precision: str, model_name: str) -> str | None:
        """Why ``(this format, precision, model)`` is not produced, or None when it is."""
        for u in self.unsupported:
            if u.precision == precision and u.model in ("*", model_name):
                return u.reason
        if precision not in self.precisions:
            return f"{self.format} converter produces {', '.join(self.precisions)} only"
        return None


BUILTIN_FORMATS: tuple[FormatInfo, ...] = (
    FormatInfo(
        format="executorch", runtime="executorch", suffix=".pte",
        modules=("executorch.runtime",), pip="executorch",
        adapter="echoweave.edge.runtime.executorch_adapter:ExecuTorchAdapter",
        converter="echoweave.export.executorch_format:export_executorch", converter_package="executorch",
        precisions=("fp32", "int8"),
        precision_notes={"int8": "PT2E XNNPACKQuantizer, per-channel symmetric int8 weights, int8 activations"},
        unsupported=(Unsupported("fp16", "*", "XNNPACK fp16 kernels need ARMv8.2 FP16 arithmetic; on x86 and "
                                 "older phones they fall back or fail; int8 is the CPU fast path"),),
        thread_control="process-wide XNNPACK pool, not settable per load; measured at the pool's size only"),
    FormatInfo(
        format="onnx", runtime="onnxruntime", suffix=".onnx",
        modules=("onnxruntime",), pip="onnxruntime",
        adapter="echoweave.edge.runtime.onnx_adapter:OnnxRuntimeAdapter",
        converter="echoweave.export.onnx_format:export_onnx", converter_package="onnxruntime",
        precisions=("fp32", "int8"),
        precision_notes={"int8": "QDQ U8S8 (uint8 activations, int8 per-channel weights), static calibration"},
        unsupported=(Unsupported("fp16", "*", "ONNX Runtime's CPU provider lacks fp16 kernels for most ops (it "
                                 "would insert casts and run slower than fp32); use int8 QDQ"),),
        thread_control="SessionOptions.intra_op_num_threads at load (inter_op 1; classify_window 1)"),
    FormatInfo(
        format="litert", runtime="litert", suffix=".tflite",
        # tflite_runtime is a fallback only: its last release cannot load models under numpy 2.
        modules=("ai_edge_litert.interpreter", "tflite_runtime.interpreter"), pip="ai-edge-litert",
        adapter="echoweave.edge.runtime.litert_adapter:LiteRTAdapter",
        converter="echoweave.export.litert:export_litert", converter_package="litert_torch",
        precisions=("fp32", "int8"),
        unsupported=(Unsupported("fp16", "*", "not exported: LiteRT fp16 only pays off on the GPU delegate, "
                                 "which this kit does not benchmark; int8 is the CPU/NPU path"),),
        thread_control="Interpreter(num_threads) at load"),
    FormatInfo(
        format="coreml", runtime="coreml", suffix=".mlpackage",
        modules=("coremltools",), pip="coremltools",
        adapter="echoweave.edge.runtime.coreml_adapter:CoreMLAdapter",
        converter="echoweave.export.coreml:export_coreml", converter_package="coremltools",
        precisions=("fp32", "fp16", "int8"),
        precision_notes={"int8": "8-bit weights only (activations fp16); Core ML int8 activations are not attempted"},
        thread_control="not settable (Core ML schedules its own compute units)",
        platforms=("darwin",), platform_reason="Core ML predict needs macOS; only structural checks on Linux"),
)

_lock = threading.Lock()
_rows: tuple[FormatInfo, ...] = BUILTIN_FORMATS  # replaced whole on every change: readers never see half an edit
_version = 0  # bumped on every change; the live views cache on it


def format_rows() -> tuple[FormatInfo, ...]:
    """Every row, in runtime preference order."""
    return _rows


def format_names() -> tuple[str, ...]:
    """Manifest format names, in table order."""
    return tuple(r.format for r in _rows)


def runtime_names() -> tuple[str, ...]:
    """Runtime names, in preference order."""
    return tuple(r.runtime for r in _rows)


def default_formats() -> tuple[str, ...]:
    """The formats ``echoweave export`` produces when none are named."""
    return tuple(r.format for r in _rows if r.default_export)


def get_format(name: str) -> FormatInfo:
    """The row of manifest format ``name``; KeyError naming the known ones."""
    for r in _rows:
        if r.format == name:
            return r
    raise KeyError(f"unknown format {name!r}; known: {', '.join(format_names())}")


def get_runtime(name: str) -> FormatInfo:
    """The row whose runtime is ``name``; KeyError naming the known ones."""
    for r in _rows:
        if r.runtime == name:
            return r
    raise KeyError(f"unknown runtime {name!r}; known: {', '.join(runtime_names())}")


def _set_rows(rows: tuple[FormatInfo, ...]) -> None:
    global _rows, _version
    _rows, _version = rows, _version + 1


def register_format(row: FormatInfo, *, replace: bool = False) -> FormatInfo:
    """Add ``row`` at the end of the table (last in preference).

    Args:
        row: the new format.
        replace: instead replace the row of the same format in place (same preference position);
            for tests that change one fact of a built-in row.

    Raises:
        ValueError: a row with this format or runtime name exists (and ``replace`` is False), the
            format to replace does not exist, or a precision is not a manifest precision.
    """
    if not isinstance(row, FormatInfo):
        raise TypeError(f"register_format takes a FormatInfo, got {type(row).__name__}")
    bad = [p for p in (*row.precisions, *(u.precision for u in row.unsupported), *row.precision_notes)
           if p not in PRECISIONS]
    if bad:
        raise ValueError(f"format {row.format!r}: precision(s) {bad} are not manifest precisions {PRECISIONS}")
    with _lock:
        names = [r.format for r in _rows]
        if replace:
            if row.format not in names:
                raise ValueError(f"format {row.format!r} is not registered; nothing to replace")
            i = names.index(row.format)
            rows = (*_rows[:i], row, *_rows[i + 1:])
        else:
            rows = (*_rows, row)
        for attr in ("format", "runtime"):
            values = [getattr(r, attr) for r in rows]
            if len(set(values)) != len(values):
                raise ValueError(f"format table: {attr} {getattr(row, attr)!r} is already registered")
        _set_rows(rows)
    return row


def unregister_format(name: str) -> FormatInfo:
    """Remove the row of format ``name`` and return it (KeyError if there is none)."""
    with _lock:
        row = get_format(name)
        _set_rows(tuple(r for r in _rows if r.format != name))
    return row


@contextlib.contextmanager
def registered(row: FormatInfo, *, replace: bool = False) -> Iterator[FormatInfo]:
    """Register ``row`` for the duration of a ``with`` block (tests); the table is restored after.

    With ``replace=True`` the row of the same format is swapped for ``row`` and put back after.
    """
    old = get_format(row.format) if replace else None
    register_format(row, replace=replace)
    try:
        yield row
    finally:
        if old is not None:
            register_format(old, replace=True)
        else:
            unregister_format(row.format)


class LiveSequence(Sequence):
    """A read-only tuple recomputed from the table whenever it changed (``PREFERENCE``, ``FORMATS``).

    Compares equal to a tuple or list with the same items.
    """

    def __init__(self, compute: Callable[[], Sequence]):
        self._compute = compute
        self._cache: tuple[int, tuple] | None = None

    def _value(self) -> tuple:
        cache = self._cache
        if cache is None or cache[0] != _version:
            cache = self._cache = (_version, tuple(self._compute()))
        return cache[1]

    def __getitem__(self, i):
        return self._value()[i]

    def __len__(self) -> int:
        return len(self._value())

    def __iter__(self):
        return iter(self._value())

    def __contains__(self, item) -> bool:
        return item in self._value()

    def __eq__(self, other) -> bool:
        if isinstance(other, (LiveSequence, tuple, list)):
            return self._value() == tuple(other)
        return NotImplemented

    __hash__ = None  # its value changes

    def __repr__(self) -> str:
        return repr(self._value())


class LiveMapping(Mapping):
    """A read-only dict recomputed from the table whenever it changed (``RUNTIMES``, ``CONVERTERS``)."""

    def __init__(self, compute: Callable[[], Mapping]):
        self._compute = compute
        self._cache: tuple[int, dict] | None = None

    def _value(self) -> dict:
        cache = self._cache
        if cache is None or cache[0] != _version:
            cache = self._cache = (_version, dict(self._compute()))
        return cache[1]

    def __getitem__(self, key) -> Any:
        return self._value()[key]

    def __len__(self) -> int:
        return len(self._value())

    def __iter__(self):
        return iter(self._value())

    def __contains__(self, key) -> bool:
        return key in self._value()

    def __repr__(self) -> str:
        return repr(self._value())
