"""Run an export's converters side by side in worker processes, one group of them per worker.

Lowering is single-threaded Python for most of its time (ExecuTorch's XNNPACK partitioner and
serializer, litert-torch's passes, Core ML's MIL passes), so on a 2-core machine an export that
runs its converters one after the other leaves a core idle for most of its minutes. With
``jobs > 1`` the pipeline forks workers after everything the converters share has been built
(the model, the calibration set, the fp32 `torch.export` of each method), and each worker runs
one *group* of conversions:

* ExecuTorch fp32 and int8 are separate groups (they share nothing but the fp32 traces, which
  are built before the fork);
* the other formats keep their precisions together, because int8 starts from the fp32 (ONNX,
  LiteRT) or fp16 (Core ML) result of the same format.

Groups are handed out longest first (`GROUP_COST`, measured on the full-size ResNet-50 TFW:
docs/benchmarks/export_time_r50.json), so the long ExecuTorch int8 lowering starts at once and
the short ones fill the other worker. Workers use fork (they inherit the context without
pickling it) and run torch on one thread each (GNU OpenMP is not fork-safe; `_worker_init`);
ONNX Runtime and LiteRT calibration keep their own thread pools. Records and stage timings come
back to the parent in plan order; a converter failure in a worker is raised in the parent as
the same `ExportError` (named by format and precision), and the other workers are stopped.

Verification stays in the parent, after every worker has finished (it opens the staged files).
A process that cannot fork safely (`fork_unsafe_reason`: JAX already loaded) converts one after
another and says why.
"""
from __future__ import annotations

import os
from typing import Callable

#: Relative cost of each group (seconds of the full-size quiet export, s22); unknown groups cost 50.
GROUP_COST = {("executorch", "int8"): 241.0, ("executorch", "fp32"): 96.0, ("coreml",): 91.0,
              ("litert",): 89.0, ("onnx",): 45.0}

#: What the forked workers run: set by `run_parallel` right before the pool starts (fork copies it).
_WORK: dict = {}


def plan_groups(todo: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The (format, precision) conversions in independent groups, longest (by `GROUP_COST`) first.

    ExecuTorch precisions are groups of their own; every other format is one group holding its
    precisions in plan order (its int8 reuses its fp32/fp16 result).
    """
    groups: dict[tuple, list[tuple[str, str]]] = {}
    for fmt, prec in todo:
        key = (fmt, prec) if fmt == "executorch" else (fmt,)
        groups.setdefault(key, []).append((fmt, prec))
    return [groups[k] for k in sorted(groups, key=lambda k: -GROUP_COST.get(k, 50.0))]


def default_jobs() -> int:
    """Workers for an export when none is asked for: the usable CPUs, at most 2 (more converters
    side by side cost memory, about 3-5 GB each on the full-size model, for little gain)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, usable))


def fork_unsafe_reason() -> str | None:
    """Why forking this process could hang a worker, or None when it is safe.

    A forked child gets only the forking thread; a library whose worker threads or locks were
    live in the parent deadlocks in the child. JAX (litert-torch lowers through it) is such a
    library: a worker forked from a test process that had converted to LiteRT before hung in its
    first JAX lowering. The CLI forks before anything loads JAX; a long-lived process that already
    converted a LiteRT model converts one format after another instead.
    """
    import sys

    if "jax" in sys.modules:
        return "JAX (litert-torch's lowering) is already loaded in this process, and its threads do not survive fork"
    return None


def _worker_init() -> None:
    import torch

    # One thread: GNU OpenMP (PyTorch's intra-op pool on Linux) is not fork-safe. A forked worker
    # that asked for 2 threads after the parent had run a parallel region hung in its first
    # convolution (PT2E conv-bn folding, 0 % CPU); at 1 thread no OpenMP team is started.
    torch.set_num_threads(1)


def _run_group(index: int):
    """In a worker: run group ``index`` with the parent's converter function; returns its records
    and timings."""
    return _WORK["convert_group"](_WORK["groups"][index])


def run_parallel(groups: list[list[tuple[str, str]]], convert_group: Callable, jobs: int) -> list:
    """``[convert_group(group) for group in groups]``, run in ``jobs`` forked workers.

    Args:
        groups: from `plan_groups` (longest first: that is the order they start in).
        convert_group: ``group -> (records, timings)``, run in a worker; it and what it closes
            over are inherited through fork, never pickled (results are).
        jobs: worker processes (>= 2; 1 is the caller's plain loop).

    Returns:
        The results in the order of ``groups``.

    Raises:
        Whatever a group raised, as soon as one fails (the first in start order when several
        have); the remaining groups are cancelled and the workers stopped.
    """
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    _WORK.update(convert_group=convert_group, groups=groups)
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(groups)), mp_context=multiprocessing.get_context("fork"),
                               initializer=_worker_init)
    try:
        futures = [pool.submit(_run_group, i) for i in range(len(groups))]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)  # a failure stops the export at once
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            raise failed[0].exception()
        results = [f.result() for f in futures]
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()  # a lowering cannot be interrupted politely; its files are in staging only
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        _WORK.clear()
    pool.shutdown()
    return results
