"""Setting a runtime's thread count for one benchmark cell, and saying honestly how.

| runtime | how threads are set | per load? |
|---|---|---|
| onnxruntime | ``SessionOptions.intra_op_num_threads`` (inter-op 1) at session creation | yes |
| litert | ``Interpreter(num_threads=...)`` at creation | yes |
| executorch | one process-wide XNNPACK thread pool (its size is read with ``_threadpool_get_thread_count``). The bindings' experimental ``_unsafe_reset_threadpool(n)`` is **not** used: resetting it while several XNNPACK programs were loaded segfaulted a full ResNet-50 run here (null function pointer after the reset), matching TOOLCHAIN.md's "do not reset it". So only the pool's own size is measured in-process; other counts are skipped with this reason (use ``executor_runner --cpu_threads`` on a device). | no (process-wide) |
| eager | ``torch.set_num_threads(n)`` (process-wide intra-op pool), set before each of its chunks | no (process-wide) |
| coreml | not settable (Core ML schedules its compute units) | no |
"""
from __future__ import annotations

THREAD_CONTROL = {
    "onnxruntime": "SessionOptions.intra_op_num_threads at load (inter_op 1)",
    "litert": "Interpreter(num_threads) at load",
    "executorch": "process-wide XNNPACK pool, not settable per load; measured at the pool's size only",
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


def executorch_skip_reason(threads: int) -> str | None:
    """Why an ExecuTorch cell at ``threads`` cannot run in this process (None if it can)."""
    pool = executorch_pool_size()
    if pool is None or pool == threads:
        return None
    return (f"ExecuTorch's XNNPACK thread pool is process-wide ({pool} threads here) and cannot be set per load; "
            "resetting it with several programs loaded segfaulted, so only threads="
            f"{pool} is measured (on a device use executor_runner --cpu_threads)")


def apply_threads(runtime: str, threads: int) -> None:
    """Make the process-wide pools match ``threads`` before a cell runs (no-op for per-load
    runtimes; ExecuTorch cells exist only at the pool's own size, see `executorch_skip_reason`)."""
    if runtime == "eager":
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(int(threads))
