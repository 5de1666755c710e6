"""Setting a runtime's thread count for one benchmark cell, and saying honestly how.

| runtime | how threads are set | per load? |
|---|---|---|
| onnxruntime | ``SessionOptions.intra_op_num_threads`` (inter-op 1) at session creation | yes |
| litert | ``Interpreter(num_threads=...)`` at creation | yes |
| executorch | one process-wide XNNPACK thread pool; the Python bindings expose only the experimental ``_unsafe_reset_threadpool(n)`` (the same call ``executor_runner`` makes at start-up). The harness resets it between cells, never during an execution, and restores the original size at the end. | no (process-wide) |
| eager | ``torch.set_num_threads(n)`` (process-wide intra-op pool), set before each of its chunks | no (process-wide) |
| coreml | not settable (Core ML schedules its compute units) | no |
"""
from __future__ import annotations

THREAD_CONTROL = {
    "onnxruntime": "SessionOptions.intra_op_num_threads at load (inter_op 1)",
    "litert": "Interpreter(num_threads) at load",
    "executorch": "process-wide XNNPACK pool reset between cells (experimental _unsafe_reset_threadpool)",
    "eager": "torch.set_num_threads before each chunk (process-wide)",
    "coreml": "not settable (Core ML schedules its own compute units)",
}


def executorch_pool_size() -> int | None:
    """Current size of ExecuTorch's thread pool (None if ExecuTorch is not importable)."""
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError:
        return None
    return int(portable_lib._threadpool_get_thread_count())


def apply_threads(runtime: str, threads: int) -> None:
    """Make the process-wide pools match ``threads`` before a cell runs (no-op for per-load runtimes)."""
    if runtime == "executorch":
        from executorch.extension.pybindings import portable_lib

        if portable_lib._threadpool_get_thread_count() != threads:
            portable_lib._unsafe_reset_threadpool(int(threads))
    elif runtime == "eager":
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(int(threads))
