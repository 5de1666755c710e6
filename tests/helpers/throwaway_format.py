"""A throw-away export format, TorchScript, added the way docs/ARCHITECTURE.md says a format is
added: one converter, one runtime adapter and one row of the format table. Nothing else in the
kit knows about it; `tests/test_format_registry.py` registers `TORCHSCRIPT` and exports, loads
and classifies with it.

    from echoweave.edge.formats import registered
    with registered(TORCHSCRIPT):
        export_checkpoint(ckpt, out, formats=["torchscript"], precisions=["fp32"])
        clf = echoweave.edge.load(out / "tfw_tiny", runtime="torchscript")

Each declared method is traced (`torch.jit.trace`) into its own ``.pt`` file, like ONNX writes
one graph per method.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from echoweave.edge.formats import FormatInfo, Unsupported
from echoweave.edge.runtime.base import method_entry


# ---- the converter (export side: torch is imported when it runs) --------------------------------
def export_torchscript(ctx, precision: str):
    """Write ``<model_id>_fp32[_<method>].pt`` per declared method into ``ctx.out_dir``."""
    import torch

    from echoweave.export.formats import ArtifactRecord, artifact_file_name

    files, methods = [], {}
    for method, module in ctx.modules().items():
        name = artifact_file_name(ctx.model_id, precision, TORCHSCRIPT.suffix, method=method)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; fine for a throw-away format
            traced = torch.jit.trace(module, tuple(ctx.example_inputs[method]), check_trace=False)
        traced.save(str(Path(ctx.out_dir) / name))
        files.append(name)
        methods[method] = {"file": name, "entry": method}
    return ArtifactRecord(format=TORCHSCRIPT.format, backend="cpu", precision=precision, files=files,
                          methods=methods, notes=TORCHSCRIPT.note(precision) or "")


# ---- the runtime adapter (edge side: torch is imported when an artifact is opened) ---------------
class TorchScriptAdapter:
    """Run a TorchScript artifact: one ``torch.jit`` module per method file.

    Args:
        folder: the artifact folder.
        artifact: its manifest entry (``format == "torchscript"``).
        threads: ignored (torch's intra-op pool is process-wide).
    """

    name = "torchscript"
    reentrant = False

    def __init__(self, folder: Path, artifact: dict, threads: int | None = None):
        import torch

        self._torch = torch
        self.version = torch.__version__
        self._modules = {}
        for method in artifact["methods"]:
            path, _ = method_entry(Path(folder), artifact, method)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                self._modules[method] = torch.jit.load(str(path), map_location="cpu").eval()

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self._modules[method](*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
        return (out[0] if isinstance(out, (tuple, list)) else out).numpy()

    def close(self) -> None:
        self._modules.clear()


# ---- the row -------------------------------------------------------------------------------------
TORCHSCRIPT = FormatInfo(
    format="torchscript", runtime="torchscript", suffix=".pt",
    modules=("torch",), pip="torch",
    adapter=f"{__name__}:TorchScriptAdapter",
    converter=f"{__name__}:export_torchscript", converter_package="torch",
    precisions=("fp32",),
    precision_notes={"fp32": "fp32 TorchScript (torch.jit.trace), one file per method"},
    unsupported=(Unsupported("int8", "*", "throw-away test format: no quantizer is wired for TorchScript"),),
    thread_control="torch.set_num_threads (process-wide)",
    default_export=False,
)
