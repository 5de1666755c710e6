"""The converter interface: what every export format receives, returns and is registered as.

A *converter* is a plain function ``(ctx: ExportContext, precision: str) -> ArtifactRecord``
that writes its files into ``ctx.out_dir`` (the temporary staging folder of the export) and
describes them. Converters are registered by import path in a row of the format table
(`echoweave.edge.formats`, one row per format; `CONVERTERS` is a view of it) and imported only
when used (`load_converter`), so `echoweave export` works when one converter package is not
installed: that format is skipped with the reason "package X not installed".

Combinations that are deliberately not produced are kept in the row's ``unsupported`` entries
with a reason (ExecuTorch's ``aot_compiler`` style; `UNSUPPORTED` lists them all), not
discovered by try/except::

    from echoweave.export.formats import ExportContext, ArtifactRecord, artifact_file_name

    def export_litert(ctx: ExportContext, precision: str) -> ArtifactRecord:
        name = artifact_file_name(ctx.model_id, precision, ".tflite")  # tfw_tiny_q8.tflite
        ... convert ctx.modules()["embed_frame"] with ctx.example_inputs["embed_frame"],
        ... calibrate int8 on ctx.calibration_inputs("embed_frame") (real training frames)
        return ArtifactRecord(format="litert", backend="xnnpack", precision=precision,
                              files=[name], methods=ctx.method_table(name))

Rules for converters:
- Do not modify ``ctx.model`` (other converters use it after you); deepcopy if a library
  mutates modules in place.
- Calibrate int8 on ``ctx.calibration_inputs(method)`` (real training clips), never on random
  tensors.
- Write only inside ``ctx.out_dir``; ``files`` and ``methods[*]["file"]`` are relative to it.
- Every artifact provides every method the model declares (`ExportContext.methods`: always
  ``forward``, and ``embed_frame``/``classify_window`` for models with the streaming split), with
  all of each method's inputs (`ExportContext.input_names`); ``entry`` is the method name inside a
  multi-method program, the signature key (LiteRT), the function name (Core ML multifunction) or
  the file's own graph (ONNX: ``"main"``). `ExportContext.method_table` builds the common case.
- There is no export-side runner: parity opens each staged artifact with the format's
  `echoweave.edge` runtime adapter, as an app does (`echoweave.export.parity`).
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.formats import FormatInfo, LiveMapping, LiveSequence, format_rows, get_format
from echoweave.edge.manifest import file_bytes, sha256_file

class ExportError(EchoweaveError):
    """The export refused its input (checkpoint, data, destination) or a converter failed."""


#: Short precision tags used in file names (docs/ARCHITECTURE.md "Export": ``tfw_r50_xnnpack_q8.pte``).
PRECISION_TAGS = {"fp32": "fp32", "fp16": "fp16", "int8": "q8"}


@dataclass
class ExportContext:
    """Everything a converter needs, built once per export by the pipeline.

    Attributes:
        model: the `VideoModel`, eval mode, fp32, on CPU. Do not modify it. Its declared
            methods (`methods`) are what every converter exports.
        model_id: folder name and file-name prefix, e.g. ``tfw_tiny`` or ``tfw_r50``.
        out_dir: the staging folder converters write into (renamed into place at the end).
        calib_windows: ``float32 (N, T, C, S, S)`` preprocessed windows of real *training* clips.
        calib_frames: ``float32 (M, C, S, S)`` the frames of those windows.
        calib_features: ``float32 (N, T, D)`` eager fp32 ``embed_frame`` outputs of the windows
            (None for a model without the streaming split).
        example_inputs: per method, the tuple of torch tensors `torch.export` traces with.
        class_names: class name per class id.
        preprocessing: `PreprocessSpec.to_dict()`-style dict (travels into the artifact config).
        meta: the checkpoint's metadata (model config, train config, metrics ...).
    """

    model: Any
    model_id: str
    out_dir: Path
    calib_windows: np.ndarray
    calib_frames: np.ndarray
    calib_features: np.ndarray | None
    example_inputs: dict[str, tuple]
    class_names: list[str]
    preprocessing: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods the model declares (``forward`` first), in export order."""
        return tuple(self.model.methods)

    def modules(self) -> dict[str, Any]:
        """Each declared method as an `nn.Module` sharing the model's weights."""
        # Wrappers are fresh modules (training=True); eval() so exporters see inference mode.
        return {m: module.eval() for m, module in self.model.method_modules().items()}

    def input_names(self, method: str) -> list[str]:
        """The method's input names, in argument order (from the model's input spec)."""
        return [i["name"] for i in self.model.input_spec()["methods"][method]["inputs"]]

    def method_table(self, file: str, entry: str | None = None) -> dict[str, dict[str, str]]:
        """``methods`` of an `ArtifactRecord` whose declared methods all live in one file: each
        method's entry is its own name (or ``entry`` for all of them)."""
        return {m: {"file": file, "entry": entry or m} for m in self.methods}

    def calibration_inputs(self, method: str) -> list[tuple]:
        """Batch-1 calibration samples for ``method`` as tuples of torch tensors.

        ``forward`` gets windows ``(1, T, C, S, S)`` plus the derived inputs computed from them
        (as the edge does), ``embed_frame`` frames ``(1, C, S, S)``, ``classify_window``
        features ``(1, T, D)`` from the eager fp32 embedder.
        """
        import torch

        source = {"forward": self.calib_windows, "embed_frame": self.calib_frames,
                  "classify_window": self.calib_features}[method]
        if source is None:
            raise ExportError(f"{self.model_id}: no calibration inputs for {method!r} (the model does not declare it)")
        # A fresh copy: ``x[None]`` has stride 0 on the new axis, which ExecuTorch rejects.
        samples = [torch.from_numpy(np.array(x[None], copy=True)) for x in source]
        if method == "forward":
            return [tuple(t.contiguous() for t in self.model.forward_inputs(x)) for x in samples]
        return [(x,) for x in samples]

    def config_json(self) -> str:
        """Class names, preprocessing and model id as JSON (rides inside artifacts that can
        carry constants, e.g. ExecuTorch ``constant_methods``)."""
        import json

        return json.dumps({"model_id": self.model_id, "class_names": list(self.class_names),
                           "preprocessing": self.preprocessing, "frames": int(self.model.frames)})


@dataclass
class ArtifactRecord:
    """What a converter produced (paths relative to the export folder).

    Attributes:
        format: a format of the table (`echoweave.edge.formats`; `echoweave.edge.manifest.FORMATS`).
        backend: delegate/compute unit, e.g. ``xnnpack``, ``cpu``, ``mlprogram``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        files: file (or folder, e.g. ``.mlpackage``) names relative to the export folder.
        methods: ``{method: {"file": name, "entry": entry}}`` for all three methods.
        input_dtype: dtype the app feeds (``float32``: pixels in [0, 1]).
        output_dtype: dtype of the logits.
        extra: format-specific facts for the manifest/parity report (delegation share, ops
            left outside the delegate, quantization scheme, ...). JSON-serializable.
        notes: one human sentence on what this artifact is (e.g. "8-bit weights only").
        id: unique id; defaults to ``<format>_<backend>_<precision>``.
    """

    format: str
    backend: str
    precision: str
    files: list[str]
    methods: dict[str, dict[str, str]]
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    id: str = ""

    def __post_init__(self):
        if not self.id:
            self.id = f"{self.format}_{self.backend}_{self.precision}"

    def manifest_entry(self, folder: str | Path) -> dict[str, Any]:
        """The manifest's artifact entry, with sha256 and size of every file in ``folder``."""
        folder = Path(folder)
        return {
            "id": self.id, "format": self.format, "backend": self.backend, "precision": self.precision,
            "files": [{"path": f, "sha256": sha256_file(folder / f), "bytes": file_bytes(folder / f)}
                      for f in self.files],
            "methods": self.methods, "input_dtype": self.input_dtype, "output_dtype": self.output_dtype,
            "notes": self.notes, **({"extra": self.extra} if self.extra else {}),
        }


def artifact_file_name(model_id: str, precision: str, suffix: str, backend: str | None = None,
                       method: str | None = None) -> str:
    """``<model_id>[_<backend>]_<fp32|fp16|q8>[_<method>]<suffix>``, e.g. ``tfw_tiny_xnnpack_q8.pte``,
    ``tfw_tiny_fp32_embed_frame.onnx``."""
    parts = [model_id] + ([backend] if backend else []) + [PRECISION_TAGS[precision]]
    parts += [method] if method and method != "forward" else []
    return "_".join(parts) + suffix


@dataclass(frozen=True)
class ConverterSpec:
    """The export side of one row of the format table (`echoweave.edge.formats.FormatInfo`).

    Attributes:
        converter: ``"module:function"`` import path of the converter.
        precisions: precisions the converter produces.
        package: the import name whose absence skips the format.
    """

    converter: str
    precisions: tuple[str, ...]
    package: str

    @classmethod
    def of(cls, row: FormatInfo) -> "ConverterSpec":
        return cls(row.converter, row.precisions, row.converter_package)


#: ``{format: ConverterSpec}``, a read-only live view of the format table.
CONVERTERS: LiveMapping = LiveMapping(lambda: {r.format: ConverterSpec.of(r) for r in format_rows()})


@dataclass(frozen=True)
class Unsupported:
    """A (format, precision, model) combination not produced, and why (a row's ``unsupported`` entry)."""

    format: str
    precision: str
    model: str  # registered model name (ModelConfig.name) or "*"
    reason: str


#: Every unsupported combination of the table, flattened (live view).
UNSUPPORTED: LiveSequence = LiveSequence(
    lambda: [Unsupported(r.format, *u) for r in format_rows() for u in r.unsupported])

#: What a precision means for a format when it is not the obvious thing (manifest notes; live view).
PRECISION_NOTES: LiveMapping = LiveMapping(
    lambda: {(r.format, p): note for r in format_rows() for p, note in r.precision_notes.items()})


def unsupported_reason(format: str, precision: str, model_name: str) -> str | None:
    """The reason a combination is not produced, or None when it is."""
    try:
        row = get_format(format)
    except KeyError as exc:
        return exc.args[0]
    return row.unsupported_reason(precision, model_name)


def missing_package(format: str) -> str | None:
    """``"package X not installed"`` when the format's package (or its converter module) is absent."""
    row = get_format(format)
    if not _findable(row.converter_package):
        return f"package {row.converter_package} not installed"
    module = row.converter.split(":")[0]
    if not _findable(module):
        return f"converter module {module} not available in this echoweave"
    return None


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _resolve(path: str) -> Callable:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def load_converter(format: str) -> Callable[[ExportContext, str], ArtifactRecord]:
    """Import and return the converter function of ``format`` (lazy import)."""
    return _resolve(get_format(format).converter)


