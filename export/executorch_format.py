"""ExecuTorch converter: one multi-method `.pte` lowered to XNNPACK (fp32 or PT2E int8), plus a
BundledProgram `.bpte` carrying real test inputs and expected outputs.

Stages (ExecuTorch ``aot_compiler`` order): export -> quantize -> lower -> serialize.

- export: `torch.export` of `forward`, `embed_frame` and `classify_window` (batch 1).
- quantize (int8): PT2E with `XNNPACKQuantizer` (per-channel symmetric weights, int8
  activations). The per-frame backbone of a model with the streaming split is quantized
  **whole** (convolutions, residual adds, add+ReLU, pooling: ExecuTorch's own global
  symmetric config restricted to the backbone's nodes, `int8_quantizer`), so XNNPACK runs each
  residual block int8 end to end instead of dequantizing/requantizing around every add. What
  stays fp32, and why: the input normalisation ``(x - mean) / std`` (one elementwise op on the
  float input, before the first quantize); the window head's GRU gate math (sigmoid/tanh/mul/
  add on (1, D) vectors: quantized, the GRU's time slices fell out of the delegate, 34-36
  ``slice_copy`` per method; their cost is < 1 % of a frame). Convolutions, linears and pooling
  of everything else are int8. Linears on constants (the GRU's zero initial state) are folded
  first (`fold_constant_linears`). Each
- lower: `to_edge_transform_and_lower` with one dict of programs and the XNNPACK partitioner;
  class names and preprocessing ride along as the constant method ``config`` (JSON string).
- serialize: `.pte` and `.bpte`; delegation (nodes inside XNNPACK delegates vs. left in the
  portable runtime, per method) goes into the artifact record.
"""
from __future__ import annotations

import operator
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from echoweave.export.formats import PRECISION_NOTES, ArtifactRecord, ExportContext, artifact_file_name
from echoweave.export.progress import step
from echoweave.export.shared import exported_program

BACKEND = "xnnpack"
#: How many held-in calibration windows the BundledProgram carries as test cases per method.
BUNDLED_CASES = 2


def export_programs(ctx: ExportContext, precision: str) -> dict[str, Any]:
    """Stages export + quantize: one `ExportedProgram` per method (int8: PT2E-converted)."""
    modules = ctx.modules()
    if precision == "fp32":
        return {m: exported_program(ctx, m) for m in ctx.methods}  # traced once per export, shared
    quantized = quantize_methods(ctx, modules)
    return {m: torch.export.export(quantized[m], ctx.example_inputs[m]) for m in ctx.methods}


def quantize_module(module: torch.nn.Module, example: tuple, samples: list[tuple],
                    whole: tuple[type, ...] = ()) -> torch.fx.GraphModule:
    """PT2E int8 of one method: export, fold constant linears, annotate, calibrate, convert.

    Args:
        module: the method's module (eval mode).
        example: example inputs `torch.export` traces with.
        samples: calibration inputs (tuples of batch-1 tensors).
        whole: module types quantized whole (every op XNNPACK's quantizer annotates, residual
            adds included); see `int8_quantizer`.

    Returns:
        The converted (QDQ) graph module; `torch.export` it again to lower.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(module, example).module()
    fold_constant_linears(graph)
    prepared = prepare_pt2e(graph, int8_quantizer(whole))
    with torch.no_grad():
        for sample in samples:
            prepared(*sample)
    return convert_pt2e(prepared)


def quantize_methods(ctx: ExportContext, modules: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Module]:
    """PT2E int8 (XNNPACK per-channel symmetric) of each declared method, calibrated on real
    clips; the window head on what the *quantized* embedder produces."""
    whole = whole_quantized_types(ctx.model)
    out = {m: quantize_module(modules[m], ctx.example_inputs[m], ctx.calibration_inputs(m), whole)
           for m in ctx.methods if m != "classify_window"}
    if "classify_window" in ctx.methods:
        out["classify_window"] = quantize_module(modules["classify_window"], ctx.example_inputs["classify_window"],
                                                 quantized_features(out["embed_frame"], ctx))
    return out


def whole_quantized_types(model) -> tuple[type, ...]:
    """Module types `int8_quantizer` quantizes whole: the per-frame backbone of a model that
    declares the streaming split (its residual adds then run int8 in XNNPACK); none otherwise
    (window-only models keep the conv/linear/pooling annotation they were validated with)."""
    backbone = getattr(model, "backbone", None)
    return (type(backbone),) if model.streams_per_frame and isinstance(backbone, torch.nn.Module) else ()


def int8_quantizer(whole: tuple[type, ...] = ()):
    """`XNNPACKQuantizer` with ExecuTorch's symmetric per-channel config: inside modules of the
    ``whole`` types every pattern it knows (conv(+relu), linear(+relu), add(+relu), mul, cat,
    adaptive pooling, and what propagates through max-pool/reshape); everywhere else only
    convolutions, linears and pooling (with fused ReLUs).

    Outside the whole-quantized modules element-wise add/mul/cat (the GRU gate math) stay fp32:
    XNNPACK runs them in fp32 inside the same delegate, and the GRU's time slices then stay fp32
    too, so they are delegated (quantized, the slices between dq/q pairs were left outside: 34-36
    ``slice_copy`` per method). Activations are quantized only where a conv/linear reads them.

    The whole modules are selected with a node filter, not ``set_module_type``: that filter also
    rejects a pattern's weight/buffer nodes (they carry no module stack), which silently left every
    conv + batch-norm of the backbone unquantized.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        CONV_TARGETS,
        LINEAR_TARGETS,
        ADAPTIVE_AVG_POOL2D_TARGETS,
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=True)
    quantizer = XNNPACKQuantizer()
    everywhere = CONV_TARGETS | LINEAR_TARGETS | ADAPTIVE_AVG_POOL2D_TARGETS
    if not whole:
        for target in sorted(everywhere, key=str):
            if isinstance(target, torch._ops.OpOverload):
                quantizer.set_operator_type(target, config)
        return quantizer
    names = {f"{t.__module__}.{t.__qualname__}" for t in whole}
    fused = everywhere | {torch.ops.aten.relu.default, torch.ops.aten.relu_.default}

    def in_scope(node: torch.fx.Node) -> bool:
        stack = node.meta.get("nn_module_stack")
        if not stack or node.op != "call_function" or node.target in fused:
            return True  # constants, and the ops quantized everywhere
        return any((t if isinstance(t, str) else f"{t.__module__}.{t.__qualname__}") in names for _, t in stack.values())

    quantizer.set_global(config)
    quantizer.set_filter_function(in_scope)
    return quantizer


def fold_constant_linears(gm: torch.fx.GraphModule) -> int:
    """Replace ``linear(constant, W, b)`` by its precomputed value (a new buffer); returns how many.

    The unrolled GRU's first step multiplies the zeros ``h0`` buffer by ``W_h*``. Quantized, such a
    linear (input observer saw only zeros: scale 2**-12, zero point -128, input a constant the
    partitioner bakes into the delegate) runs wrong inside XNNPACK although the Python QDQ
    simulation is right: on the demo TFW the int8 head agreed 72-79 % top-1 with fp32 (max logit
    diff ~2) while QDQ agreed 100 %. Left fp32 it fails to compile in XNNPACK
    (``xnn_status_invalid_parameter``). Its value is a constant (= the bias), so fold it; every
    linear that sees data stays int8.
    """
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != torch.ops.aten.linear.default:
            continue
        args = [a for a in node.args if isinstance(a, torch.fx.Node)]
        if not all(a.op == "get_attr" for a in args):
            continue
        constants = dict(gm.named_parameters()) | dict(gm.named_buffers())
        with torch.no_grad():
            value = node.target(*[constants[a.target] for a in args]).detach().clone()
        name = f"_folded_linear_{folded}"
        gm.register_buffer(name, value)
        with gm.graph.inserting_before(node):
            const = gm.graph.get_attr(name)
        node.replace_all_uses_with(const)
        gm.graph.erase_node(node)
        folded += 1
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return folded


def quantized_features(embed_q: torch.nn.Module, ctx: ExportContext) -> list[tuple[torch.Tensor]]:
    """Calibration features for the head: the quantized embedder's outputs on the calibration windows."""
    samples = []
    with torch.no_grad():
        for window in ctx.calib_windows:  # (T, C, S, S)
            feats = [embed_q(torch.from_numpy(frame[None])) for frame in window]  # T x (1, D)
            samples.append((torch.stack(feats, dim=1),))  # (1, T, D)
    return samples


def delegation_stats(lowered_program, methods) -> dict[str, Any]:
    """Per method: nodes inside XNNPACK delegates, nodes left in the portable runtime (by op).

    Counted on the lowered edge graphs: every ``call_function`` in a delegate's original
    subgraph is delegated; top-level ``call_function`` nodes other than the delegate calls and
    their output ``getitem`` s run outside.
    """
    stats = {}
    for method in methods:
        gm = lowered_program.exported_program(method).graph_module
        delegated, outside, subgraphs = 0, Counter(), 0
        for node in gm.graph.nodes:
            if node.op == "get_attr" and node.name.startswith("lowered_module_"):
                subgraphs += 1
                sub = getattr(gm, node.name).original_module.graph
                delegated += sum(1 for n in sub.nodes if n.op == "call_function")
            elif node.op == "call_function":
                name = getattr(node.target, "__name__", str(node.target))
                if "executorch_call_delegate" in name or node.target is operator.getitem:
                    continue
                outside[name] += 1
        total = delegated + sum(outside.values())
        stats[method] = {"delegated_nodes": delegated, "outside_nodes": sum(outside.values()),
                         "delegated_share": delegated / total if total else 0.0, "subgraphs": subgraphs,
                         "ops_outside": dict(outside)}
    return stats


def bundled_cases(ctx: ExportContext, programs: dict[str, Any]):
    """MethodTestSuites with a few real calibration inputs and the lowered method's expected outputs."""
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite

    suites = []
    for method in ctx.methods:
        module = programs[method].module()
        cases = []
        for sample in ctx.calibration_inputs(method)[:BUNDLED_CASES]:
            with torch.no_grad():
                expected = module(*sample)
            # Bundled tensors must be dense: exported graphs may return expanded (stride 0) views.
            cases.append(MethodTestCase(inputs=[x.clone().contiguous() for x in sample],
                                        expected_outputs=[expected.clone().contiguous()]))
        suites.append(MethodTestSuite(method_name=method, test_cases=cases))
    return suites


def export_executorch(ctx: ExportContext, precision: str) -> ArtifactRecord:
    """Write ``<model_id>_xnnpack_<fp32|q8>.pte`` (+ ``.bpte``) into ``ctx.out_dir``.

    Args:
        ctx: the export context (model, real calibration windows, example inputs).
        precision: ``fp32`` or ``int8``.

    Returns:
        The artifact record, with delegation statistics in ``extra["delegation"]``.
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools import BundledProgram
    from executorch.devtools.bundled_program.serialize import serialize_from_bundled_program_to_flatbuffer
    from executorch.exir import to_edge_transform_and_lower

    methods = ",".join(ctx.methods)
    with step("executorch", precision, methods, "export" if precision == "fp32" else "export + quantize"):
        programs = export_programs(ctx, precision)
    with step("executorch", precision, methods, "lower to XNNPACK"):
        lowered = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()],
                                              constant_methods={"config": ctx.config_json()})
    delegation = delegation_stats(lowered, ctx.methods)
    with step("executorch", precision, methods, "to_executorch"):
        et_program = lowered.to_executorch()

    pte = artifact_file_name(ctx.model_id, precision, ".pte", backend=BACKEND)
    bpte = artifact_file_name(ctx.model_id, precision, ".bpte", backend=BACKEND)
    Path(ctx.out_dir, pte).write_bytes(et_program.buffer)
    bundled = BundledProgram(et_program, bundled_cases(ctx, programs))
    Path(ctx.out_dir, bpte).write_bytes(serialize_from_bundled_program_to_flatbuffer(bundled))

    shares = [d["delegated_share"] for d in delegation.values()]
    return ArtifactRecord(
        format="executorch", backend=BACKEND, precision=precision, files=[pte, bpte],
        methods=ctx.method_table(pte),
        notes=PRECISION_NOTES.get(("executorch", precision), "fp32, lowered to XNNPACK"),
        extra={"delegation": delegation, "delegated_share_min": min(shares),
               "constant_methods": ["config"], "bundled_program": bpte,
               "bundled_cases_per_method": BUNDLED_CASES},
    )
