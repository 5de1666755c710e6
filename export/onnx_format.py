"""ONNX converter: three graphs (`forward`, `embed_frame`, `classify_window`), fp32 or int8 QDQ.

ONNX has no multi-method container, so each method is its own file
(``tfw_tiny_fp32.onnx``, ``tfw_tiny_fp32_embed_frame.onnx``, ``tfw_tiny_fp32_classify_window.onnx``).

int8 is ONNX Runtime static QDQ with **U8S8** (uint8 activations, int8 per-channel weights):
3x faster than the default S8S8 on AVX-512 VNNI here (docs/TOOLCHAIN_NOTES.md). Each graph is calibrated
on real training clips: windows for `forward`, frames for `embed_frame`, and for
`classify_window` the features of the *int8* `embed_frame` graph (what the head sees at run
time; see `executorch_format` for why).

The unrolled GRU exports as MatMul/Gemm + elementwise ops, never a native ``GRU`` op, so QDQ
reaches the recurrent weights too (`op_counts` lets tests check both).
"""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from echoweave.export.formats import PRECISION_NOTES, ArtifactRecord, ExportContext, artifact_file_name
from echoweave.export.progress import step
from echoweave.export.shared import cache, exported_program

BACKEND = "cpu"
OPSET = 18


def export_onnx_graph(module, example: tuple, input_names: list[str], output_names: list[str],
                      path: Path) -> None:
    """Stage export: `torch.onnx.export` (dynamo) of one method to ``path`` (weights inlined).

    ``module`` is an `nn.Module` or, to skip the trace, the method's `torch.export.ExportedProgram`."""
    program = torch.onnx.export(module, example, input_names=input_names,
                                output_names=output_names, opset_version=OPSET, dynamo=True,
                                external_data=False, verbose=False)
    program.optimize()
    program.save(str(path), external_data=False)


class WindowReader:
    """`CalibrationDataReader` over calibration samples: each a tuple of numpy arrays, one per
    named graph input (in ``names`` order)."""

    def __init__(self, names: list[str], samples: list[tuple[np.ndarray, ...]]):
        self.names, self.samples, self.i = names, samples, 0

    def get_next(self):
        if self.i >= len(self.samples):
            return None
        self.i += 1
        return dict(zip(self.names, self.samples[self.i - 1]))

    def rewind(self):
        self.i = 0


def quantize_graph(src: Path, dst: Path, input_names: list[str], samples: list[tuple[np.ndarray, ...]]) -> None:
    """Stage quantize: static QDQ U8S8 per-channel of ``src`` into ``dst``, calibrated on ``samples``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(WindowReader, CalibrationDataReader):
        pass

    prepared = dst.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(dst), Reader(input_names, samples), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        prepared.unlink(missing_ok=True)


def session(path: str | Path, threads: int = 0):
    """An ORT CPU session (``threads`` 0 = ORT default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def op_counts(path: str | Path) -> dict[str, int]:
    """How many nodes of each op type a graph holds (``GRU``, ``QuantizeLinear``, ``MatMul`` ...)."""
    import onnx

    return dict(Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node))


def export_onnx(ctx: ExportContext, precision: str) -> ArtifactRecord:
    """Write the three ONNX graphs of one precision into ``ctx.out_dir``.

    Each method is traced once per export (`echoweave.export.shared.exported_program`) and
    translated to ONNX once: int8 quantizes the fp32 graphs the fp32 artifact wrote (or writes
    hidden fp32 graphs when fp32 is not exported, removed afterwards).

    Args:
        ctx: the export context.
        precision: ``fp32`` or ``int8`` (QDQ U8S8).

    Returns:
        The artifact record; ``extra["ops"]`` holds per-method op counts.
    """
    files = {m: artifact_file_name(ctx.model_id, precision, ".onnx", method=m) for m in ctx.methods}
    spec = ctx.model.input_spec()["methods"]
    inputs = {m: ctx.input_names(m) for m in ctx.methods}
    outputs = {m: [o["name"] for o in spec[m]["outputs"]] for m in ctx.methods}
    staging = Path(ctx.out_dir)
    for method in ctx.methods:
        fp32_path = fp32_graph(ctx, method, inputs[method], outputs[method], visible=precision == "fp32")
        if precision == "int8":
            samples = calibration_samples(ctx, method, files, staging)
            with step("onnx", precision, method, f"quantize QDQ U8S8 ({len(samples)} calibration samples)"):
                quantize_graph(fp32_path, staging / files[method], inputs[method], samples)
    if precision == "int8":  # drop hidden intermediates (a later fp32 artifact translates again)
        graphs = cache(ctx).get("onnx_fp32", {})
        for method, path in list(graphs.items()):
            if path.name.startswith("."):
                path.unlink(missing_ok=True)
                del graphs[method]
    ops = {m: op_counts(staging / files[m]) for m in ctx.methods}
    return ArtifactRecord(
        format="onnx", backend=BACKEND, precision=precision, files=[files[m] for m in ctx.methods],
        methods={m: {"file": files[m], "entry": "main"} for m in ctx.methods},
        notes=PRECISION_NOTES.get(("onnx", precision), "fp32 graphs for ONNX Runtime"),
        extra={"opset": OPSET, "ops": ops,
               "inputs": {m: inputs[m][0] if len(inputs[m]) == 1 else inputs[m] for m in ctx.methods},
               "outputs": {m: outputs[m][0] for m in ctx.methods}},
    )


def fp32_graph(ctx: ExportContext, method: str, input_names: list[str], output_names: list[str],
               visible: bool) -> Path:
    """The method's fp32 ONNX graph in the staging folder, translated once per export.

    ``visible``: the fp32 artifact's own file; else (int8 without fp32 before it) a hidden
    ``.<name>.fp32`` intermediate that `export_onnx` removes when the int8 graphs are written.
    """
    graphs = cache(ctx).setdefault("onnx_fp32", {})
    if method not in graphs:
        name = artifact_file_name(ctx.model_id, "fp32", ".onnx", method=method)
        path = Path(ctx.out_dir) / (name if visible else f".{name}.fp32")
        with step("onnx", "fp32", method, "torch.onnx.export"):
            export_onnx_graph(exported_program(ctx, method), ctx.example_inputs[method], input_names,
                              output_names, path)
        graphs[method] = path
    return graphs[method]


def calibration_samples(ctx: ExportContext, method: str, files: dict[str, str],
                        staging: Path) -> list[tuple[np.ndarray, ...]]:
    """Real calibration inputs of one graph; the head's are features of the int8 embedder
    (`embed_frame` is quantized first: a model declares it before `classify_window`)."""
    if method != "classify_window":
        return [tuple(x.numpy() for x in sample) for sample in ctx.calibration_inputs(method)]
    embed = session(staging / files["embed_frame"])
    name = ctx.input_names("embed_frame")[0]
    feats = []
    for window in ctx.calib_windows:  # (T, C, S, S)
        rows = [embed.run(None, {name: frame[None]})[0] for frame in window]  # T x (1, D)
        feats.append((np.stack(rows, axis=1).astype(np.float32),))  # (1, T, D)
    return feats
