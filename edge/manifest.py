"""`manifest.json`: the contract between export, the edge runtime, benchmarks and the apps.

One manifest per exported model folder ``artifacts/<model_id>/``. Plain JSON (no torch), read
by `echoweave.edge`, the benchmark harness and the Kotlin core of ``android_demo``::

    {
      "schema_version": 1,
      "model_id": "tfw_tiny",                      # folder name; file names start with it
      "model_version": "2026-11-21T23:00:00Z+<sha of weights[:12]>",
      "model": {...ModelConfig.to_dict()...},      # name, backbone, frames, input_size, ...
      "classes": [{"id": 0, "name": "APICAL_5C"}, ...],
      "frames": 4,                                 # T, window length
      "aggregation": "window" | "mean_vote",       # declared by the model; mean_vote: per-frame probs averaged
      "uncertain_threshold": 0.5,                  # confidence below this -> "uncertain view"
      "preprocessing": {...PreprocessSpec.to_dict()...},
      "input_spec": {...VideoModel.input_spec()...},# shapes/dtypes/layouts (+ derive specs) of every method
      "methods": ["forward", "embed_frame", "classify_window"],  # what the model declares; ["forward"] = window-only
      "artifacts": [
        {"id": "executorch_xnnpack_fp32", "format": "executorch", "backend": "xnnpack",
         "precision": "fp32",
         "files": [{"path": "tfw_tiny_xnnpack_fp32.pte", "sha256": "...", "bytes": 123}],
         "methods": {"forward": {"file": "tfw_tiny_xnnpack_fp32.pte", "entry": "forward"},
                     "embed_frame": {...}, "classify_window": {...}},
         "input_dtype": "float32", "output_dtype": "float32",
         "notes": "..."},
        ...
      ],
      "skipped": [{"format": "coreml", "precision": "int8", "reason": "..."}],
      "toolchain": {"echoweave": "0.1.0", "torch": "2.14.1", "executorch": "1.5.1", ...},
      "parity": {...parity.json summary per artifact id...},
      "metrics": {...held-out metrics of the checkpoint...},
      "source_checkpoint": {"path": "...", "epoch": 6, "dataset": "phantom" | path}
    }

``format`` is one of `FORMATS`; ``entry`` is the method name inside a multi-method program
(ExecuTorch), the signature key (LiteRT), the function name (Core ML multifunction) or the
graph's file (ONNX, one file per method). Paths are relative to the manifest's folder.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from echoweave.edge.atomic import write_json_atomic
from echoweave.edge.errors import EchoweaveError
from echoweave.edge.formats import PRECISIONS, LiveSequence, format_names

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
#: Artifact formats: a live view of the format table (`echoweave.edge.formats`), in its order.
FORMATS = LiveSequence(format_names)
#: Every method name a model may declare (it declares ``forward`` and, optionally, the streaming pair).
METHODS = ("forward", "embed_frame", "classify_window")
#: The streaming split: one backbone pass per new frame, then the window head.
STREAMING_METHODS = ("embed_frame", "classify_window")
AGGREGATIONS = ("window", "mean_vote")


class ManifestError(EchoweaveError, ValueError):
    """A manifest is missing, malformed, from a newer schema, or names a bad file."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (or of every file under a folder, e.g. an .mlpackage, in sorted order)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def file_bytes(path: str | Path) -> int:
    """Size of a file, or the total size of a folder (an .mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")


@functools.lru_cache(maxsize=4)
def _validator(formats: tuple[str, ...]):
    """The schema's validator, with the artifact ``format`` enum set to ``formats`` (the format
    table's names): the file lists the built-in formats for other languages' validators."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    schema["$defs"]["artifact"]["properties"]["format"]["enum"] = list(formats)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    # JSON Schema counts 4.0 as an integer; a manifest (and the Kotlin core reading it) does not.
    strict = cls.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(cls, type_checker=strict)(schema)


def _where_in(error) -> str:
    """``artifacts[0].methods`` style location of a schema error (empty at the top level)."""
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())  # one line, whatever the value held
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_manifest(data: Any, where: str = MANIFEST) -> dict:
    """Check a manifest against ``manifest.schema.json`` and the rules that span fields.

    The schema (jsonschema, Draft 2020-12) checks types, required keys and allowed values; then
    class ids must be 0..K-1 in order, ``frames`` and the class count must equal the input spec's
    (and its methods' shapes), ``crop <= resize``, artifact ids are unique, every method names one
    of its artifact's files, and file paths stay inside the folder.

    Returns:
        ``data`` unchanged.

    Raises:
        ManifestError: one line naming ``where``, the field and the problem.
    """
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: a manifest is a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ManifestError(f"{where}: manifest schema {version} is newer than this echoweave understands "
                            f"({SCHEMA_VERSION}); upgrade echoweave")
    # The first problem: lowest list index, then key name (jsonschema's best_match prefers the last sibling).
    error = min(_validator(tuple(FORMATS)).iter_errors(data), default=None,
                key=lambda e: [(0, part, "") if isinstance(part, int) else (1, 0, str(part))
                               for part in e.absolute_path])
    if error is not None:
        field = _where_in(error)
        raise ManifestError(f"{where}: {field + ': ' if field else ''}{_short(error.message)}")
    _check_consistency(data, where)
    return data


def _check_consistency(data: dict, where: str) -> None:
    """The rules the schema cannot state: they relate two fields of one manifest."""
    from echoweave.edge.preprocess import PreprocessSpec

    classes, frames, spec = data["classes"], data["frames"], data["input_spec"]
    if [c["id"] for c in classes] != list(range(len(classes))):
        raise ManifestError(f"{where}: classes: ids must be 0..{len(classes) - 1} in order, got "
                            f"{_short([c['id'] for c in classes], 80)}")
    if len({c["name"] for c in classes}) != len(classes):
        raise ManifestError(f"{where}: classes: names must be unique")
    if spec["frames"] != frames:
        raise ManifestError(f"{where}: frames is {frames} but input_spec.frames is {spec['frames']}")
    if spec["num_classes"] != len(classes):
        raise ManifestError(f"{where}: {len(classes)} classes but input_spec.num_classes is {spec['num_classes']}")
    for method, io in spec["methods"].items():
        for out in io["outputs"]:
            if out.get("name") == "logits" and out["shape"][-1] != len(classes):
                raise ManifestError(f"{where}: input_spec.methods.{method} outputs {out['shape'][-1]} logits but "
                                    f"there are {len(classes)} classes")
        for inp in io["inputs"]:
            layout = inp.get("layout", "")
            if layout and len(layout) != len(inp["shape"]):
                raise ManifestError(f"{where}: input_spec.methods.{method} input has layout {layout} but a "
                                    f"{len(inp['shape'])}-d shape {inp['shape']}")
            if layout.startswith("NT") and "derive" not in inp and inp["shape"][1] != frames:
                raise ManifestError(f"{where}: input_spec.methods.{method} takes {inp['shape'][1]} frames but "
                                    f"frames is {frames}")
    _check_methods(data, where)
    try:
        PreprocessSpec.from_dict(data["preprocessing"])
    except ValueError as exc:
        raise ManifestError(f"{where}: preprocessing: {exc}") from None
    ids = set()
    for i, art in enumerate(data["artifacts"]):
        if art["id"] in ids:
            raise ManifestError(f"{where}: duplicate artifact id {art['id']!r}")
        ids.add(art["id"])
        paths = [f["path"] for f in art["files"]]
        for path in paths:
            parts = Path(path).parts
            if Path(path).is_absolute() or ".." in parts or "\\" in path:
                raise ManifestError(f"{where}: artifacts[{i}] ({art['id']}): file path {path!r} must be "
                                    "relative to the folder")
        for name, m in art["methods"].items():
            if m["file"] not in paths:
                raise ManifestError(f"{where}: artifacts[{i}] ({art['id']}): method {name!r} names file "
                                    f"{m['file']!r}, which is not one of the artifact's files")


def _check_methods(data: dict, where: str) -> None:
    """The model's declared methods (docs/ARCHITECTURE.md "The model contract"): ``forward``
    always, the streaming pair both or neither, described in the input spec; an artifact holds
    only declared methods, and enough of them to classify."""
    from echoweave.edge.derived_inputs import DERIVATIONS

    methods, spec = data["methods"], data["input_spec"]["methods"]
    if "forward" not in methods:
        raise ManifestError(f"{where}: methods {methods} lack 'forward' (every model has a window forward)")
    if len(set(STREAMING_METHODS) & set(methods)) == 1:
        raise ManifestError(f"{where}: methods {methods} name only one of the streaming pair {list(STREAMING_METHODS)}")
    if set(methods) != set(spec):
        raise ManifestError(f"{where}: methods {methods} differ from input_spec.methods {sorted(spec)}")
    for method, io in spec.items():
        for inp in io["inputs"]:
            derive = inp.get("derive")
            if derive is not None and derive["kind"] not in DERIVATIONS:
                raise ManifestError(f"{where}: input_spec.methods.{method} input {inp.get('name', '?')!r} is derived "
                                    f"by {derive['kind']!r}, which this echoweave does not know (known: "
                                    f"{', '.join(DERIVATIONS)}); upgrade echoweave")
    for i, art in enumerate(data["artifacts"]):
        extra = [m for m in art["methods"] if m not in methods]
        if extra:
            raise ManifestError(f"{where}: artifacts[{i}] ({art['id']}) has method(s) {extra} the model does not declare")
        # An artifact may ship a subset (e.g. only the streaming pair for an app), but it must classify.
        if "forward" not in art["methods"] and not all(m in art["methods"] for m in STREAMING_METHODS):
            raise ManifestError(f"{where}: artifacts[{i}] ({art['id']}) can classify nothing: it has neither forward "
                                f"nor the streaming pair {list(STREAMING_METHODS)}")


def read_manifest(folder: str | Path) -> dict:
    """Read and validate ``folder/manifest.json``."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest here (is this an artifacts/<model_id> folder?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    return validate_manifest(data, str(path))


def write_manifest(folder: str | Path, data: dict) -> Path:
    """Validate and write ``folder/manifest.json`` atomically."""
    path = Path(folder) / MANIFEST
    validate_manifest(data, str(path))
    return write_json_atomic(path, data, indent=2, sort_keys=False)


def check_inside(folder: str | Path, path: str | Path) -> None:
    """Refuse ``path`` (and, for a folder such as an .mlpackage, anything below it) if its real
    location, symlinks resolved, is outside ``folder``.

    Raises:
        ManifestError: naming the path and where it really leads.
    """
    root = os.path.realpath(folder)
    entries = [str(path)]
    if os.path.isdir(path):
        for base, dirs, files in os.walk(os.path.realpath(path)):  # links inside are listed, not followed
            entries += [os.path.join(base, n) for n in dirs + files]
    for entry in entries:
        real = os.path.realpath(entry)
        if os.path.commonpath([root, real]) != root:
            raise ManifestError(f"{entry}: leads outside the artifact folder (to {real}); refused")


def verify_artifact_files(folder: str | Path, artifact: dict) -> None:
    """Check every file of an artifact exists and matches its recorded sha256 and size.

    Every path is resolved first (symlinks followed) and must stay inside ``folder``: a link such
    as ``evil -> /etc`` with a path ``evil/passwd`` is refused before anything reads it.

    Raises:
        ManifestError: a file is absent, outside the folder, or was changed/tampered with since export.
    """
    for f in artifact["files"]:
        p = Path(folder) / f["path"]
        check_inside(folder, p)
        if not p.exists():
            raise ManifestError(f"{p}: artifact file named in the manifest is missing")
        if "bytes" in f and file_bytes(p) != f["bytes"]:
            raise ManifestError(f"{p}: size {file_bytes(p)} differs from the manifest's {f['bytes']} "
                                "(truncated or replaced)")
        digest = sha256_file(p)
        if digest != f["sha256"]:
            raise ManifestError(f"{p}: sha256 {digest[:12]}... does not match the manifest's "
                                f"{f['sha256'][:12]}... (file changed or tampered with)")


def find_artifact(manifest: dict, format: str | None = None, precision: str | None = None) -> list[dict]:
    """Artifacts matching a format and/or precision, in manifest order."""
    return [a for a in manifest["artifacts"]
            if (format is None or a["format"] == format) and (precision is None or a["precision"] == precision)]
