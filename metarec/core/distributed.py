"""Data-parallel meta-training over torch.distributed: who this process is, and the collectives.

Launched with `torchrun --nproc-per-node N metarec meta-train ...`, every process runs the same fit:
the same start search and the same random draws; each meta-batch's users are split across the ranks
(`shard`), whose gradients are summed (`all_reduce_grads`) before every rank takes the same
optimiser step, and validation users are split the same way (`sum_over_ranks`). Rank 0 alone writes
files. gloo on the CPU, NCCL on CUDA. Without torchrun (WORLD_SIZE unset or 1) nothing here
communicates and `world()` is (0, 1).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from datetime import timedelta

import numpy as np

from metarec.core.errors import ConfigError, RankLostError

log = logging.getLogger(__name__)

TIMEOUT_S = 300  # a collective that waits longer than this for a rank fails the run instead of hanging


def world() -> tuple[int, int]:
    """(this process's rank, the number of processes); (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files and logs (rank 0, or no process group)."""
    return world()[0] == 0


def launched_size() -> int:
    """How many processes torchrun started (WORLD_SIZE in the environment; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE") or 1)


def init_from_env(device: str = "cpu", timeout_s: float = TIMEOUT_S) -> bool:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT): gloo for the CPU, NCCL for CUDA, with `timeout_s` on every
    collective. Returns False (and does nothing) without WORLD_SIZE > 1 or when already joined."""
    import torch
    import torch.distributed as dist

    if launched_size() <= 1 or dist.is_initialized():
        return False
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    log.info("rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), dist.get_backend())
    return True


def shutdown() -> None:
    """Leave the process group cleanly (every rank waits for the others first); nothing without one.
    A process that exits while gloo's threads still run aborts ("terminate called...")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        barrier("the end of the run")
        dist.destroy_process_group()


def shard(n: int, rank: int, size: int) -> slice:
    """Rank `rank`'s contiguous share of n items (the first n % size ranks get one more)."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def check_batch(meta_batch: int) -> None:
    """Refuse a meta-batch with fewer users than processes (a rank would have no task)."""
    size = world()[1]
    if meta_batch < size:
        raise ConfigError(f"meta_batch {meta_batch} is smaller than the {size} processes: each needs a user")


def all_reduce_sum(flat, what: str):
    """Sum a tensor over the ranks in place; a lost rank is a RankLostError naming `what`."""
    import torch.distributed as dist

    with _or_rank_lost(f"during {what}"):
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return flat


def barrier(what: str) -> None:
    """Wait until every rank gets here (e.g. rank 0 has written a checkpoint the others may read);
    nothing without a process group."""
    if world()[1] == 1:
        return
    import torch.distributed as dist

    with _or_rank_lost(f"at {what}"):
        dist.barrier()


@contextmanager
def _or_rank_lost(where: str):
    """A collective's failure (a rank died, hung or timed out) as a RankLostError saying `where`."""
    try:
        yield
    except RuntimeError as e:  # torch.distributed's DistBackendError and DistNetworkError are RuntimeErrors
        rank, size = world()
        raise RankLostError(f"rank {rank} of {size} lost contact with the others {where}: a process died, hung or "
                            f"waited past the {TIMEOUT_S} s timeout ({e})") from e


def all_reduce_grads(params, extra=None, what: str = "a meta-step"):
    """Sum the gradients of `params` (and the 0-d tensor `extra`, returned summed) over the ranks, as
    one flat buffer: one collective per step."""
    import torch

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    parts = [g.reshape(-1) for g in grads] + ([extra.detach().reshape(1).to(grads[0].dtype)] if extra is not None else [])
    flat = all_reduce_sum(torch.cat(parts), what)
    at = 0
    for p, g in zip(params, grads):
        n = g.numel()
        if p.grad is None:
            p.grad = flat[at:at + n].view_as(p).clone()
        else:
            p.grad.copy_(flat[at:at + n].view_as(p.grad))
        at += n
    return flat[at] if extra is not None else None


def sum_over_ranks(values: np.ndarray, what: str = "validation") -> np.ndarray:
    """float64 values summed over the ranks (itself without a process group)."""
    if world()[1] == 1:
        return values
    import torch
    import torch.distributed as dist

    t = torch.as_tensor(np.asarray(values, np.float64))
    if dist.get_backend() == "nccl":  # NCCL reduces CUDA tensors only
        return all_reduce_sum(t.cuda(), what).cpu().numpy()
    return all_reduce_sum(t, what).numpy()
