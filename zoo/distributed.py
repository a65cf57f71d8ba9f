"""Data parallelism on PyTorch's own engine, ``torch.distributed``.

The zoo starts no cluster of its own: a process group is whatever ``torchrun`` (or Ray Train,
Spark's TorchDistributor, Lightning...) set up, gloo on CPU, NCCL on GPU. When one is initialised
with more than one process, the fits that support it (the Gaussian mixtures and k-means of
:mod:`zoo.mixture`, SVI of the minibatch models) treat the data each rank passes as its shard of one
data set: the sufficient statistics (or gradients) are summed over the ranks, every rank runs the
same update, rank 0 draws the initialisation and broadcasts it, and only rank 0 writes outputs.

Everything here is a no-op in a single process, so the same code runs with and without a group.

    torchrun --nproc-per-node 2 -m apps.cli fit-em --data big.npy --K 16 --out fit/
"""
from __future__ import annotations

import contextlib
import os
import threading

import torch

__all__ = [
    "active", "rank", "world_size", "is_main", "backend_device", "all_reduce_sum", "broadcast_object",
    "all_gather_object", "init_from_env", "barrier", "local",
]

_state = threading.local()


@contextlib.contextmanager
def local():
    """Within the block this process acts alone: :func:`active` is False, so a fit started here (rank
    0 drawing an initialisation with k-means, say) runs on its own data without collectives."""
    before = getattr(_state, "local", False)
    _state.local = True
    try:
        yield
    finally:
        _state.local = before


def _dist():
    import torch.distributed as dist

    return dist


def active() -> bool:
    """Whether a process group with more than one process is initialised."""
    if getattr(_state, "local", False):
        return False
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a group)."""
    return _dist().get_rank() if active() else 0


def world_size() -> int:
    """The number of processes (1 without a group)."""
    return _dist().get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this process writes outputs (rank 0, or the only process)."""
    return rank() == 0


def backend_device() -> torch.device:
    """Where the group's collectives take their tensors: the current CUDA device for NCCL, else the CPU."""
    if active() and _dist().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The sums over the ranks of ``tensors``, in one flat float64 buffer and one collective.

    Returns new tensors with the shapes, dtypes and devices of the inputs (the inputs themselves
    when there is no group). Every rank receives the same bits: the collective reduces each piece
    of the buffer once and sends that result to every rank.
    """
    if not active():
        return tensors
    dev = backend_device()
    flat = torch.cat([t.detach().reshape(-1).to(device=dev, dtype=torch.float64) for t in tensors])
    _dist().all_reduce(flat)
    out, start = [], 0
    for t in tensors:
        piece = flat[start:start + t.numel()].view(t.shape)
        out.append(piece.to(device=t.device, dtype=t.dtype))
        start += t.numel()
    return tuple(out)


def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank (pickled; tensors come back on the CPU)."""
    if not active():
        return obj
    box = [_to_cpu(obj) if rank() == src else None]
    _dist().broadcast_object_list(box, src=src, device=backend_device())
    return box[0]


def all_gather_object(obj) -> list:
    """Every rank's ``obj``, in rank order (pickled; tensors come back on the CPU)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    _dist().all_gather_object(out, _to_cpu(obj))
    return out


def barrier() -> None:
    """Wait for every rank (no-op without a group)."""
    if active():
        _dist().barrier()


def init_from_env(backend: str | None = None) -> bool:
    """Initialise the default process group from ``torchrun``'s environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) when it names more than one process and no
    group exists yet. ``backend`` defaults to NCCL when CUDA is available, else gloo. Returns
    whether a group with more than one process is active afterwards."""
    dist = _dist()
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend not in ("gloo", "nccl"):
            raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return active()


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
