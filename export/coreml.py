"""Core ML converter: one multifunction ``.mlpackage`` (ML program, iOS 18) per precision.

    torch.export -> run_decompositions() -> ct.convert (mlprogram) per method
      -> (int8) linear_quantize_weights, int8 per-channel -> save_multifunction -> metadata

The package holds three functions: ``forward`` (the default function, so a plain
``MLModel(path)`` is the window model), ``embed_frame`` and ``classify_window`` (the streaming
pair: ``MLModel(path, function_name="embed_frame")``). One package instead of a separate
forward package because ``save_multifunction`` de-duplicates identical weights: forward shares
its backbone with embed_frame and its GRU/head with classify_window, so the third function
costs almost no bytes.

Precisions: ``fp32`` (compute in float32), ``fp16`` (Core ML's default), ``int8`` = 8-bit
*weights only* (symmetric per-channel; activations stay fp16), file tag ``w8``. Class names,
preprocessing and the model id ride in the package's ``user_defined_metadata``
(``com.echoweave.config`` holds `ExportContext.config_json`).

Core ML ``predict`` needs macOS; on Linux the converter checks structure (functions, inputs,
outputs, shapes, op types: no ``gru``, nothing outside Core ML's op set) and writes
``coreml_reference.npz`` (inputs + eager PyTorch outputs) and ``coreml_check_macos.py`` beside
the package: on a Mac, ``python coreml_check_macos.py artifacts/<model_id>`` runs every function
and compares.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from echoweave.edge.atomic import atomic_path
from echoweave.export.formats import ArtifactRecord, ExportContext
from echoweave.export.progress import step
from echoweave.export.shared import cache, decomposed_program

#: Function order in the package; the first is the default function.
FUNCTION_ORDER = ("forward", "embed_frame", "classify_window")
#: File-name tag per precision (`PRECISION_TAGS` says q8; Core ML int8 is weights-only, hence w8).
FILE_TAGS = {"fp32": "fp32", "fp16": "fp16", "int8": "w8"}
REFERENCE_FILE = "coreml_reference.npz"
CHECK_SCRIPT = "coreml_check_macos.py"
#: Reference windows written for the Mac check.
REFERENCE_WINDOWS = 4
#: Recurrent MIL ops that must not appear (the unrolled GRU lowers to linear/sigmoid/tanh).
RECURRENT_OPS = frozenset({"gru", "lstm", "rnn"})
#: coremltools' default: weights with fewer elements stay fp16 (not worth a dequantize op).
W8_MIN_WEIGHT_ELEMENTS = 2048
INT8_NOTES = ("8-bit weights only (symmetric per-channel int8, dequantized on load/compute; activations fp16); "
              "Core ML int8 activations are not attempted")


def package_name(model_id: str, precision: str) -> str:
    """``<model_id>_<fp32|fp16|w8>.mlpackage``."""
    return f"{model_id}_{FILE_TAGS[precision]}.mlpackage"


def io_names(model) -> dict[str, tuple[list[str], str]]:
    """``{method: ([input names], output name)}`` for each declared method, from the model's input spec."""
    return {m: ([i["name"] for i in io["inputs"]], io["outputs"][0]["name"])
            for m, io in model.input_spec()["methods"].items()}


def function_order(ctx: ExportContext) -> list[str]:
    """The declared methods in package order (`FUNCTION_ORDER` first; ``forward`` is the default)."""
    return sorted(ctx.methods, key=lambda m: FUNCTION_ORDER.index(m) if m in FUNCTION_ORDER else len(FUNCTION_ORDER))


# ---- stage: export + convert ----------------------------------------------------------------
def convert_method(program, example: tuple, input_names: list[str], output_name: str, precision: str):
    """One method -> an in-memory ML program (`ct.models.MLModel`, not loaded for prediction).

    Args:
        program: the method's `ExportedProgram` after ``run_decompositions()`` (default table;
            `echoweave.export.shared.decomposed_program`, traced once per export and shared by
            both compute precisions).
        example: example inputs tuple (fixes the static shape).
        input_names: names of the Core ML inputs (``clip`` [+ derived inputs], ``frame``, ``features``).
        output_name: name of the Core ML output (``logits``, ``feature``).
        precision: ``fp32`` computes in float32, anything else in float16.
    """
    import coremltools as ct

    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                      compute_precision=compute, skip_model_load=True,
                      inputs=[ct.TensorType(name=n, shape=tuple(x.shape), dtype=np.float32)
                              for n, x in zip(input_names, example)],
                      outputs=[ct.TensorType(name=output_name, dtype=np.float32)])


def converted_functions(ctx: ExportContext, precision: str) -> dict[str, Any]:
    """``{method: MLModel}`` at fp32 or fp16 compute (int8 quantizes the fp16 ones), converted once
    per export and compute precision (kept in the export's shared cache, dropped after it)."""
    compute = "fp32" if precision == "fp32" else "fp16"
    converted = cache(ctx).setdefault("coreml", {})
    if compute not in converted:
        names = io_names(ctx.model)
        functions = {}
        for m in function_order(ctx):
            program = decomposed_program(ctx, m)
            with step("coreml", compute, m, "convert"):
                functions[m] = convert_method(program, ctx.example_inputs[m], *names[m], compute)
        converted[compute] = functions
    return converted[compute]


# ---- stage: quantize (8-bit weights) --------------------------------------------------------
def quantize_weights_int8(mlmodel):
    """Symmetric per-channel int8 weights (``constexpr_blockwise_shift_scale`` ops, iOS 18)."""
    import coremltools.optimize as cto

    op_config = cto.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                   granularity="per_channel",
                                                   weight_threshold=W8_MIN_WEIGHT_ELEMENTS)
    return cto.coreml.linear_quantize_weights(mlmodel, config=cto.coreml.OptimizationConfig(global_config=op_config))


# ---- stage: serialize -----------------------------------------------------------------------
def save_multifunction(functions: dict[str, Any], dest: Path, metadata: dict[str, str],
                       description: str) -> Path:
    """Merge per-method programs into one multifunction package at ``dest`` (atomic rename).

    Args:
        functions: ``{function name: MLModel}``; the first is the default function.
        dest: the ``.mlpackage`` folder to write.
        metadata: ``user_defined_metadata`` (strings).
        description: the package's ``short_description``.
    """
    import coremltools as ct

    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        desc = ct.utils.MultiFunctionDescriptor()
        for name, mlmodel in functions.items():
            single = Path(tmp) / f"{name}.mlpackage"
            mlmodel.save(str(single))
            desc.add_function(str(single), src_function_name="main", target_function_name=name)
        desc.default_function_name = next(iter(functions))
        merged = Path(tmp) / "merged.mlpackage"
        ct.utils.save_multifunction(desc, str(merged))
        # Metadata lives in the package's spec: reload without compiling, set, save again.
        package = ct.models.MLModel(str(merged), skip_model_load=True)
        package.short_description = description
        package.author = "echoweave export"
        package.user_defined_metadata.update(metadata)
        final = Path(tmp) / "final.mlpackage"
        package.save(str(final))
        for f in final.rglob("*"):  # coremltools writes model.mlmodel 0600; the package is shipped
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
        os.chmod(final, 0o755)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(final, dest)  # a folder swap (.mlpackage), not a file write: atomic_path does files
    return dest


def package_metadata(ctx: ExportContext, precision: str) -> dict[str, str]:
    """The strings an app reads from ``MLModel.modelDescription.metadata[.creatorDefinedKey]``."""
    spec = ctx.model.input_spec()
    return {
        "com.echoweave.config": ctx.config_json(),
        "com.echoweave.model_id": ctx.model_id,
        "com.echoweave.precision": {"int8": "int8 weights (w8), fp16 activations"}.get(precision, precision),
        "com.echoweave.class_names": json.dumps(list(ctx.class_names)),
        "com.echoweave.preprocessing": json.dumps(ctx.preprocessing),
        "com.echoweave.functions": ",".join(function_order(ctx)),
        "com.echoweave.input": json.dumps({"pixels": "grayscale in [0, 1], normalization inside the graph",
                                           "frames": spec["frames"], "input_size": spec["input_size"]}),
    }


def write_reference(ctx: ExportContext, path: Path, windows: int = REFERENCE_WINDOWS) -> Path:
    """``coreml_reference.npz``: per function, batch-1 inputs and eager PyTorch outputs.

    Keys ``<function>__in__<input name>`` and ``<function>__out__<output name>`` hold stacks
    ``(n, *shape)`` of single calls; ``meta`` is a JSON string (names, source of the inputs).
    Inputs are real calibration windows (training clips), their frames and their eager features.
    """
    import torch

    names = io_names(ctx.model)
    modules = ctx.modules()
    # Calibration samples (tuples of batch-1 tensors): windows (+ derived inputs), their frames, features.
    take = {"forward": windows, "embed_frame": windows * ctx.model.frames, "classify_window": windows}
    arrays: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for m in function_order(ctx):
            samples = ctx.calibration_inputs(m)[: take.get(m, windows)]
            for k, input_name in enumerate(names[m][0]):
                arrays[f"{m}__in__{input_name}"] = np.stack([s[k].numpy() for s in samples]).astype(np.float32)
            y = np.stack([modules[m].eval()(*s).numpy() for s in samples])
            arrays[f"{m}__out__{names[m][1]}"] = y.astype(np.float32)
    meta = {"model_id": ctx.model_id, "functions": {m: {"input": names[m][0][0], "inputs": names[m][0],
                                                        "output": names[m][1]}
                                                    for m in function_order(ctx)},
            "inputs": "real calibration windows (training clips), their frames and eager embed_frame features",
            "expected": "eager PyTorch fp32"}
    with atomic_path(path, suffix=".npz") as tmp:  # savez appends .npz to a name without it
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    return path


# ---- the converter --------------------------------------------------------------------------
def export_coreml(ctx: ExportContext, precision: str) -> ArtifactRecord:
    """Write ``<model_id>_<fp32|fp16|w8>.mlpackage`` (+ reference npz and the Mac check script).

    Args:
        ctx: the export context (its model is not modified).
        precision: ``fp32``, ``fp16`` or ``int8`` (8-bit weights only).

    Returns:
        The artifact record; ``extra`` holds the structural facts (functions, I/O, op types),
        the number of 8-bit weight tensors and timings.

    Raises:
        RuntimeError: the package misses a function or holds a recurrent/unknown op.
    """
    if precision not in FILE_TAGS:
        raise ValueError(f"coreml: precision {precision!r} not produced; one of {', '.join(FILE_TAGS)}")
    out_dir = Path(ctx.out_dir)
    name = package_name(ctx.model_id, precision)
    t0 = time.perf_counter()
    functions = converted_functions(ctx, precision)
    timings = {"convert_s": time.perf_counter() - t0}
    if precision == "int8":
        t1 = time.perf_counter()
        quantized = {}
        for m, f in functions.items():
            with step("coreml", precision, m, "quantize weights (w8)"):
                quantized[m] = quantize_weights_int8(f)
        functions = quantized
        timings["quantize_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    description = (f"{ctx.model_id}: echocardiogram view classifier ({len(ctx.class_names)} views, "
                   f"{ctx.model.frames}-frame windows); functions {', '.join(function_order(ctx))} (forward is the default)")
    with step("coreml", precision, ",".join(functions), "save multifunction package"):
        save_multifunction(functions, out_dir / name, package_metadata(ctx, precision), description)
    timings["save_s"] = time.perf_counter() - t2
    write_reference(ctx, out_dir / REFERENCE_FILE)
    shutil.copyfile(Path(__file__).with_name(CHECK_SCRIPT), out_dir / CHECK_SCRIPT)
    facts = describe_mlpackage(out_dir / name)
    check_package(facts, out_dir / name, function_order(ctx))
    extra = {"functions": facts["functions"], "default_function": facts["default_function"],
             "specification_version": facts["specification_version"],
             "weights_8bit": sum(f["ops"].get("constexpr_blockwise_shift_scale", 0)
                                 for f in facts["functions"].values()),
             "minimum_deployment_target": "iOS18 / macOS15 (multifunction)",
             "timings_s": {k: round(v, 2) for k, v in timings.items()},
             "check": f"on macOS: python {CHECK_SCRIPT} <this folder> (compares with {REFERENCE_FILE})"}
    return ArtifactRecord(format="coreml", backend="mlprogram", precision=precision,
                          files=[name, REFERENCE_FILE, CHECK_SCRIPT],
                          methods=ctx.method_table(name), extra=extra,
                          notes=INT8_NOTES if precision == "int8" else
                          f"ML program, {precision} compute, multifunction (iOS 18)")


# ---- structure (what Linux can check) -------------------------------------------------------
_DTYPES = {65568: "float32", 65552: "float16", 131104: "int32", 131080: "int8"}


def describe_mlpackage(path: str | Path) -> dict[str, Any]:
    """Functions, their inputs/outputs and MIL op types, read from the saved package's spec.

    Returns:
        ``{"specification_version", "default_function", "metadata": {...}, "short_description",
        "functions": {name: {"inputs": [{name, shape, dtype}], "outputs": [...], "ops": {type: n}}}}``.
    """
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))

    def tensors(features) -> list[dict[str, Any]]:
        return [{"name": f.name, "shape": list(f.type.multiArrayType.shape),
                 "dtype": _DTYPES.get(f.type.multiArrayType.dataType, str(f.type.multiArrayType.dataType))}
                for f in features]

    def count_ops(block, counter: collections.Counter) -> None:
        for op in block.operations:
            counter[op.type] += 1
            for inner in op.blocks:
                count_ops(inner, counter)

    functions = {}
    for fn in spec.description.functions:
        ops: collections.Counter = collections.Counter()
        for block in spec.mlProgram.functions[fn.name].block_specializations.values():
            count_ops(block, ops)
        functions[fn.name] = {"inputs": tensors(fn.input), "outputs": tensors(fn.output),
                              "ops": dict(sorted(ops.items()))}
    return {"specification_version": int(spec.specificationVersion),
            "default_function": spec.description.defaultFunctionName, "functions": functions,
            "metadata": dict(spec.description.metadata.userDefined),
            "short_description": spec.description.metadata.shortDescription}


def check_package(facts: dict[str, Any], path: str | Path, functions=FUNCTION_ORDER) -> None:
    """Refuse a package without the three functions or with ops Core ML does not define.

    Raises:
        RuntimeError: naming the package and the problem.
    """
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    missing = [m for m in functions if m not in facts["functions"]]
    if missing:
        raise RuntimeError(f"{path}: functions {missing} missing (found {sorted(facts['functions'])})")
    for name, fn in facts["functions"].items():
        recurrent = sorted(set(fn["ops"]) & RECURRENT_OPS)
        if recurrent:
            raise RuntimeError(f"{path}: function {name} holds {recurrent}; the GRU must reach Core ML unrolled")
        unknown = sorted(op for op in fn["ops"] if op not in SSAOpRegistry.core_ops)
        if unknown:
            raise RuntimeError(f"{path}: function {name} holds ops outside Core ML's op set: {unknown}")
