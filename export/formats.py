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
                              files=[name], methods={m: {"file": name, "entry": m} for m in METHODS})

Rules for converters:
- Do not modify ``ctx.model`` (other converters use it after you); deepcopy if a library
  mutates modules in place.
- Calibrate int8 on ``ctx.calibration_inputs(method)`` (real training clips), never on random
  tensors.
- Write only inside ``ctx.out_dir``; ``files`` and ``methods[*]["file"]`` are relative to it.
- Every artifact provides the three methods (`forward`, `embed_frame`, `classify_window`);
  ``entry`` is the method name inside a multi-method program, the signature key (LiteRT), the
  function name (Core ML multifunction) or the file's own graph (ONNX: ``"main"``).
- A format that can run on this host has a runner (`PARITY_RUNNERS`, functions of `echoweave.export.parity`):
  ``run(folder, record, method, inputs: list[np.ndarray]) -> np.ndarray`` (first output);
  the parity report executes every artifact that has one. (Transitional: parity is moving to
  the formats' `echoweave.edge` runtime adapters, after which a format needs no runner.)
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
from echoweave.edge.manifest import METHODS, file_bytes, sha256_file

class ExportError(EchoweaveError):
    """The export refused its input (checkpoint, data, destination) or a converter failed."""


#: Short precision tags used in file names (docs/ARCHITECTURE.md "Export": ``tfw_r50_xnnpack_q8.pte``).
PRECISION_TAGS = {"fp32": "fp32", "fp16": "fp16", "int8": "q8"}


@dataclass
class ExportContext:
    """Everything a converter needs, built once per export by the pipeline.

    Attributes:
        model: the `EchoModel`, eval mode, fp32, on CPU. Do not modify it.
        model_id: folder name and file-name prefix, e.g. ``tfw_tiny`` or ``tfw_r50``.
        out_dir: the staging folder converters write into (renamed into place at the end).
        calib_windows: ``float32 (N, T, C, S, S)`` preprocessed windows of real *training* clips.
        calib_frames: ``float32 (M, C, S, S)`` the frames of those windows.
        calib_features: ``float32 (N, T, D)`` eager fp32 ``embed_frame`` outputs of the windows.
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
    calib_features: np.ndarray
    example_inputs: dict[str, tuple]
    class_names: list[str]
    preprocessing: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def modules(self) -> dict[str, Any]:
        """The three methods as separate `nn.Module` s sharing the model's weights."""
        embedder, classifier = self.model.streaming_modules()
        # The wrappers are fresh modules (training=True); eval() so exporters see inference mode.
        return {"forward": self.model.eval(), "embed_frame": embedder.eval(), "classify_window": classifier.eval()}

    def calibration_inputs(self, method: str) -> list[tuple]:
        """Batch-1 calibration samples for ``method`` as tuples of torch tensors.

        ``forward`` gets windows ``(1, T, C, S, S)``, ``embed_frame`` frames ``(1, C, S, S)``,
        ``classify_window`` features ``(1, T, D)`` from the eager fp32 embedder.
        """
        import torch

        source = {"forward": self.calib_windows, "embed_frame": self.calib_frames,
                  "classify_window": self.calib_features}[method]
        # A fresh copy: ``x[None]`` has stride 0 on the new axis, which ExecuTorch rejects.
        return [(torch.from_numpy(np.array(x[None], copy=True)),) for x in source]

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


#: Parity runners of the formats that have one (``echoweave.export.parity``). Transitional: the
#: parity rewrite runs every artifact through its format's `echoweave.edge` adapter and drops these.
PARITY_RUNNERS = {"executorch": "echoweave.export.parity:run_executorch",
                  "onnx": "echoweave.export.parity:run_onnx",
                  "litert": "echoweave.export.parity:run_litert"}


@dataclass(frozen=True)
class ConverterSpec:
    """The export side of one row of the format table (`echoweave.edge.formats.FormatInfo`).

    Attributes:
        converter: ``"module:function"`` import path of the converter.
        precisions: precisions the converter produces.
        package: the import name whose absence skips the format.
        runner: ``"module:function"`` running an artifact here, or None (e.g. Core ML needs macOS).
        no_runner_reason: why there is no runner (goes into the parity report).
    """

    converter: str
    precisions: tuple[str, ...]
    package: str
    runner: str | None = None
    no_runner_reason: str = ""

    @classmethod
    def of(cls, row: FormatInfo) -> "ConverterSpec":
        runner = PARITY_RUNNERS.get(row.format)
        reason = "" if runner else (row.platform_reason or f"parity has no {row.format} runner yet (it will run "
                                    f"{row.format} through its echoweave.edge adapter, {row.adapter})")
        return cls(row.converter, row.precisions, row.converter_package, runner, reason)


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


def load_runner(format: str) -> Callable | None:
    """Import the runner of ``format``, or None when artifacts of it cannot run here."""
    spec = CONVERTERS[format]
    if spec.runner is None:
        return None
    return _resolve(spec.runner)


def all_methods(file: str, entry: str | None = None) -> dict[str, dict[str, str]]:
    """``methods`` for a single multi-method file: each method's entry is its own name
    (or ``entry`` for all of them)."""
    return {m: {"file": file, "entry": entry or m} for m in METHODS}
