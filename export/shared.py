"""What the converters of one export share, so no method is traced twice.

`torch.export` of a method costs as much as a converter's own lowering passes on the unrolled
GRU (tens of seconds on the full-size model); ONNX, Core ML and the ExecuTorch fp32 path all
start from the same fp32 `ExportedProgram`, so each method is exported once per export and
handed to every converter. The cache lives on the `ExportContext` (one export), never in a
module global, so nothing outlives the export.

None of the consumers mutates the program: ``run_decompositions`` returns a new one, and
`torch.onnx.export`, ``to_edge_transform_and_lower`` and ``coremltools.convert`` read it
(tests/test_export_progress.py exports every format from shared programs and checks parity).
"""
from __future__ import annotations

from typing import Any

#: The conversions that start from the shared fp32 programs (ExecuTorch int8 and LiteRT trace
#: their own: PT2E needs the pre-dispatch graph, litert-torch exports inside ``convert``).
USERS = {("executorch", "fp32"), ("onnx", "fp32"), ("coreml", "fp32"), ("coreml", "fp16"), ("coreml", "int8")}


def cache(ctx) -> dict[str, Any]:
    """The export's shared-object cache (a dict stored on the context)."""
    return ctx.__dict__.setdefault("_shared_exports", {})


def exported_program(ctx, method: str):
    """The fp32 `torch.export.ExportedProgram` of ``method`` (batch 1), traced once per export."""
    import torch

    programs = cache(ctx).setdefault("exported", {})
    if method not in programs:
        from echoweave.export.progress import step

        with step("torch.export", "fp32", method, "trace (shared by all formats)"):
            programs[method] = torch.export.export(ctx.modules()[method], ctx.example_inputs[method])
    return programs[method]


def decomposed_program(ctx, method: str):
    """`exported_program` after the default decomposition table (what Core ML converts), once per export."""
    programs = cache(ctx).setdefault("decomposed", {})
    if method not in programs:
        programs[method] = exported_program(ctx, method).run_decompositions()
    return programs[method]
