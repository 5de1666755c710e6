"""LiteRT (TFLite) converter: one ``.tflite`` holding the three methods as signatures.

    export -> (fp32) lower with litert-torch -> (int8) static a8w8 with ai-edge-quantizer -> serialize

``embed_frame``, ``classify_window`` and ``forward`` become signatures of ONE flatbuffer
(``litert_torch.signature(...).signature(...).convert()``); an app opens one file and calls
``Interpreter.get_signature_runner("embed_frame")`` per frame and ``"classify_window"`` per
window. Signature input names are the model's own (``frame``, ``features``, ``clip``).

int8 is ai-edge-quantizer's static recipe (int8 weights per channel, int8 activations, min/max
calibrated on the export's real training frames/windows/features) applied to the fp32 flatbuffer.
Why not litert-torch's PT2E quantizer: on the tiny TFW it took 80 s instead of 8 s, left the
GRU's sigmoid/tanh/mul in float between 56 DEQUANTIZE ops, and its signatures returned raw int8
logits; the static recipe keeps every op int8 (about 50 vs 72 ms per ResNet-50 window on a
2-core AVX-512 host; docs/TOOLCHAIN_NOTES.md).
The graph inputs and outputs stay float32 (``INPUT``/``OUTPUT`` left unquantized), so an app
feeds the same [0, 1] pixels to the fp32 and the int8 file.

    from echoweave.export.litert import export_litert, run_litert, describe_tflite
    record = export_litert(ctx, "int8")                       # writes ctx.out_dir/tfw_tiny_q8.tflite
    logits = run_litert(path, "forward", [clip])              # (1, K) float32
    describe_tflite(path)["classify_window"]["ops"]           # {"FULLY_CONNECTED": 25, ...}
"""
from __future__ import annotations

import collections
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from echoweave.edge.atomic import write_bytes_atomic
from echoweave.export.formats import ArtifactRecord, ExportContext, artifact_file_name
from echoweave.export.progress import step

#: Signature order inside the flatbuffer (the streaming pair first: subgraphs 0 and 1).
SIGNATURE_ORDER = ("embed_frame", "classify_window", "forward")
#: Ops that only move data between float and int8 (not compute).
BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
#: Ops a recurrent layer would appear as if the unrolled GRU were ever replaced by a fused one.
RECURRENT_OPS = frozenset({"UNIDIRECTIONAL_SEQUENCE_RNN", "UNIDIRECTIONAL_SEQUENCE_LSTM",
                           "BIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_LSTM", "RNN", "LSTM",
                           "WHILE", "CUSTOM", "FLEX"})
INT8_NOTES = ("static int8 (ai-edge-quantizer a8w8: int8 per-channel weights, int8 activations calibrated on "
              "real training clips); float32 inputs/outputs with QUANTIZE/DEQUANTIZE at the graph boundary")


def input_names(model) -> dict[str, list[str]]:
    """Signature input names per declared method, in argument order, from the model's input spec
    (``clip`` [+ derived inputs such as ``motion``], ``frame``, ``features``)."""
    return {m: [i["name"] for i in io["inputs"]] for m, io in model.input_spec()["methods"].items()}


def signature_order(ctx: ExportContext) -> list[str]:
    """The declared methods in the order they are lowered (`SIGNATURE_ORDER` first)."""
    return sorted(ctx.methods, key=lambda m: SIGNATURE_ORDER.index(m) if m in SIGNATURE_ORDER else len(SIGNATURE_ORDER))


# ---- stage: export + lower (fp32) ---------------------------------------------------------
def convert_fp32(ctx: ExportContext, path: str | Path) -> Path:
    """Lower the three methods with litert-torch into one fp32 ``.tflite`` at ``path``.

    Args:
        ctx: the export context (its model is not modified: the streaming wrappers share weights).
        path: destination file (written atomically).

    Returns:
        ``path``.
    """
    import litert_torch

    names = input_names(ctx.model)
    modules = ctx.modules()
    converter = None
    for method in signature_order(ctx):
        module = modules[method].eval()  # the wrappers are new modules (training=True by default)
        kwargs = dict(zip(names[method], ctx.example_inputs[method]))  # kwargs name the signature inputs
        converter = (converter.signature if converter else litert_torch.signature)(method, module,
                                                                                  sample_kwargs=kwargs)
    with _quiet_litert_torch(), step("litert", "fp32", ",".join(signature_order(ctx)),
                                     "trace + lower all signatures (one litert-torch convert)"):
        edge_model = converter.convert()
    write_bytes_atomic(path, edge_model.model_content())
    return Path(path)


# ---- stage: quantize (int8) ---------------------------------------------------------------
def calibration_data(ctx: ExportContext) -> dict[str, list[dict[str, np.ndarray]]]:
    """ai-edge-quantizer calibration samples per signature from the context's real clips."""
    names = input_names(ctx.model)
    return {m: [{n: x.numpy() for n, x in zip(names[m], sample)} for sample in ctx.calibration_inputs(m)]
            for m in signature_order(ctx)}


def quantize_static_int8(float_path: str | Path, ctx: ExportContext, path: str | Path) -> Path:
    """Static int8 (a8w8) of an fp32 ``.tflite``, calibrated on ``ctx``'s real inputs.

    Graph inputs/outputs are excluded from quantization so the file keeps float32 I/O.

    Returns:
        ``path``.
    """
    from ai_edge_quantizer import qtyping, quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    quant = quantizer.Quantizer(str(float_path), recipe.static_wi8_ai8())
    for boundary in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
        quant.update_quantization_recipe(regex=".*", operation_name=boundary,
                                         algorithm_key=AlgorithmName.NO_QUANTIZE)
    data = calibration_data(ctx)
    with step("litert", "int8", ",".join(data), f"calibrate ({sum(map(len, data.values()))} samples)"):
        stats = quant.calibrate(data, num_threads=max(1, min(2, os.cpu_count() or 1)))
    with step("litert", "int8", ",".join(data), "quantize"):
        write_bytes_atomic(path, bytes(quant.quantize(stats).quantized_model))
    return Path(path)


# ---- the converter --------------------------------------------------------------------------
def export_litert(ctx: ExportContext, precision: str) -> ArtifactRecord:
    """Write ``<model_id>_fp32.tflite`` or ``<model_id>_q8.tflite`` into ``ctx.out_dir``.

    int8 reuses ``<model_id>_fp32.tflite`` when this export already wrote it, else lowers a
    temporary fp32 file first.

    Args:
        ctx: the export context.
        precision: ``fp32`` or ``int8``.

    Returns:
        The artifact record: one file, the three methods as signatures, the graph facts in
        ``extra`` (ops per signature, int8 coverage, I/O dtypes, timings).
    """
    if precision not in ("fp32", "int8"):
        raise ValueError(f"litert: precision {precision!r} not produced; fp32 or int8")
    out_dir = Path(ctx.out_dir)
    name = artifact_file_name(ctx.model_id, precision, ".tflite")
    fp32_path = out_dir / artifact_file_name(ctx.model_id, "fp32", ".tflite")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if precision == "fp32":
        convert_fp32(ctx, fp32_path)
        timings["lower_s"] = time.perf_counter() - t0
    else:
        with tempfile.TemporaryDirectory() as tmp:
            source = fp32_path
            if not source.is_file():
                source = convert_fp32(ctx, Path(tmp) / "float.tflite")
                timings["lower_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            quantize_static_int8(source, ctx, out_dir / name)
            timings["quantize_s"] = time.perf_counter() - t1
    facts = describe_tflite(out_dir / name)
    check_graph(facts, out_dir / name, int8=precision == "int8", methods=ctx.methods)
    io = io_dtypes(out_dir / name)
    extra = {"signatures": {s: {"ops": f["ops"], "int8_compute_share": f["int8_compute_share"],
                                "fully_connected_dtypes": f["fully_connected_dtypes"]}
                            for s, f in facts.items()},
             "io_dtypes": io, "timings_s": {k: round(v, 2) for k, v in timings.items()},
             "runtime": "ai_edge_litert.interpreter.Interpreter (XNNPACK CPU delegate by default)"}
    if precision == "int8":
        extra["quantization"] = "ai-edge-quantizer static_wi8_ai8 (min/max), INPUT/OUTPUT kept float32"
    forward_io = io["forward"]
    names = input_names(ctx.model)
    # Signature inputs are keyed by name; record their argument order for the runtime adapter.
    methods = {m: {**entry, "inputs": names[m]} for m, entry in ctx.method_table(name).items()}
    return ArtifactRecord(format="litert", backend="xnnpack", precision=precision, files=[name],
                          methods=methods, input_dtype=forward_io["input"],
                          output_dtype=forward_io["output"], extra=extra,
                          notes=INT8_NOTES if precision == "int8" else "fp32, one .tflite with three signatures")


# ---- graph facts ----------------------------------------------------------------------------
def describe_tflite(path: str | Path) -> dict[str, dict[str, Any]]:
    """Ops and dtypes per signature, read from the flatbuffer itself (all subgraphs).

    Returns:
        ``{signature: {"ops": {op: count}, "fully_connected_dtypes": {"INT8,INT8->INT8": n},
        "int8_compute_share": share of non-boundary ops whose first input is int8,
        "float_compute_ops": {op: count} of compute ops left in float}}``.
    """
    from ai_edge_litert import schema_py_generated as schema

    buf = Path(path).read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    subgraph_of = {model.SignatureDefs(i).SubgraphIndex(): model.SignatureDefs(i).SignatureKey().decode()
                   for i in range(model.SignatureDefsLength())}
    facts = {}
    for si in range(model.SubgraphsLength()):
        graph = model.Subgraphs(si)
        ops: collections.Counter = collections.Counter()
        fc: collections.Counter = collections.Counter()
        float_ops: collections.Counter = collections.Counter()
        compute = int8_compute = 0
        for oi in range(graph.OperatorsLength()):
            op = graph.Operators(oi)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
            if name == "CUSTOM":
                name = f"CUSTOM:{code.CustomCode().decode()}"
            ops[name] += 1

            def dtype(tensor_index: int) -> str:
                return type_names[graph.Tensors(tensor_index).Type()] if tensor_index >= 0 else "NONE"

            inputs = [op.Inputs(i) for i in range(op.InputsLength())]
            if name == "FULLY_CONNECTED":
                fc[f"{dtype(inputs[0])},{dtype(inputs[1])}->{dtype(op.Outputs(0))}"] += 1
            if name not in BOUNDARY_OPS:
                compute += 1
                if dtype(inputs[0]) == "INT8":
                    int8_compute += 1
                else:
                    float_ops[name] += 1
        facts[subgraph_of.get(si, f"subgraph_{si}")] = {
            "ops": dict(sorted(ops.items())), "fully_connected_dtypes": dict(fc),
            "int8_compute_share": round(int8_compute / compute, 4) if compute else 0.0,
            "float_compute_ops": dict(float_ops)}
    return facts


def check_graph(facts: dict[str, dict[str, Any]], path: str | Path, int8: bool,
                methods=("forward", "embed_frame", "classify_window")) -> None:
    """Refuse a file whose signatures are missing, hold a fused/custom recurrent op, or (int8)
    keep a FULLY_CONNECTED in float.

    Raises:
        RuntimeError: naming the file and the problem.
    """
    missing = [m for m in methods if m not in facts]
    if missing:
        raise RuntimeError(f"{path}: signatures {missing} missing (found {sorted(facts)})")
    for sig, f in facts.items():
        bad = sorted(op for op in f["ops"] if op in RECURRENT_OPS or op.startswith("CUSTOM"))
        if bad:
            raise RuntimeError(f"{path}: signature {sig} holds {bad}; the unrolled GRU should lower to "
                               "FULLY_CONNECTED/LOGISTIC/TANH only")
        if int8:
            float_fc = {k: n for k, n in f["fully_connected_dtypes"].items() if not k.startswith("INT8,INT8")}
            if float_fc:
                raise RuntimeError(f"{path}: signature {sig} keeps FULLY_CONNECTED layers in float {float_fc}")


def io_dtypes(path: str | Path) -> dict[str, dict[str, str]]:
    """``{signature: {"input": dtype, "output": dtype}}`` as the interpreter reports them."""
    interp = _interpreter(str(path))
    out = {}
    for sig in interp.get_signature_list():
        runner = interp.get_signature_runner(sig)
        inp = next(iter(runner.get_input_details().values()))  # dtypes are shared by a signature's inputs
        outp = next(iter(runner.get_output_details().values()))
        out[sig] = {"input": np.dtype(inp["dtype"]).name, "output": np.dtype(outp["dtype"]).name}
    return out


def _interpreter(path: str):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # an edge install with only the (numpy-1, 2023) tflite-runtime
        from tflite_runtime.interpreter import Interpreter
    return Interpreter(model_path=path, num_threads=2)


@contextlib.contextmanager
def _quiet_litert_torch():
    # litert-torch prints a progress line per stage unless this variable says "n".
    old = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = old
