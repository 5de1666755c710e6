"""Device, precision and process-group setup for training (single process or torchrun + DDP).

Under ``torchrun`` the usual environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) is present and
``setup_distributed`` joins the process group: NCCL on CUDA, gloo on CPU (which is how the DDP
path is tested on a machine without a GPU).
"""
from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class Runtime:
    """Where and how this process trains.

    Attributes:
        device: the torch device of this process.
        rank: global rank (0 when not distributed).
        world_size: number of processes.
        amp_dtype: autocast dtype (bf16 on CUDA when asked) or None.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    amp_dtype: torch.dtype | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        """Autocast context for the forward pass (a no-op without mixed precision)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)


def setup_runtime(device: str = "auto", amp: str = "bf16", threads: int = 0) -> Runtime:
    """Pick the device, join the process group under torchrun, and set CPU threads.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: ``bf16`` enables bf16 autocast on CUDA; CPU training stays fp32.
        threads: torch intra-op threads on CPU (0 leaves the default).
    """
    if threads > 0:
        torch.set_num_threads(threads)
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for but CUDA is not available")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    amp_dtype = torch.bfloat16 if (use_cuda and amp == "bf16") else None
    return Runtime(device=dev, rank=rank, world_size=world_size, amp_dtype=amp_dtype)


def teardown_runtime(rt: Runtime) -> None:
    """Leave the process group (if any)."""
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def all_reduce_sum(values: list[float], rt: Runtime) -> list[float]:
    """Sum a few scalars over all processes (identity when not distributed)."""
    if not rt.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=rt.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()
