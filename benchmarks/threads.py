"""Setting a runtime's thread count for one benchmark cell, and saying honestly how.

How each runtime's threads are set is a fact of its format's row (``thread_control`` in
`echoweave.edge.formats`); `THREAD_CONTROL` is that column plus eager PyTorch, which is not a
format. Per load: ONNX Runtime (``SessionOptions.intra_op_num_threads``, inter-op 1) and LiteRT
(``Interpreter(num_threads=...)``). Process-wide: eager (``torch.set_num_threads(n)``, set before
each of its chunks) and ExecuTorch: one XNNPACK thread pool (its size is read with
``_threadpool_get_thread_count``). The bindings' experimental ``_unsafe_reset_threadpool(n)`` is
**not** used: resetting it while several XNNPACK programs were loaded segfaulted a full ResNet-50
run here (null function pointer after the reset). So only the pool's own size is measured
in-process; other counts are skipped with this reason (use ``executor_runner --cpu_threads`` on a
device). Core ML schedules its own compute units (not settable). See docs/ARCHITECTURE.md
"Benchmarks".
"""
from __future__ import annotations

from echoweave.edge.formats import LiveMapping, format_rows

#: ``{runtime: how its threads are set}``: the format table's column plus eager (live view).
THREAD_CONTROL: LiveMapping = LiveMapping(lambda: {
    **{r.runtime: r.thread_control for r in format_rows()},
    "eager": "torch.set_num_threads before each chunk (process-wide)",
})


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
