"""torchrun / DistributedDataParallel helpers: process group set-up, gathers with gradients.

A process started by torchrun finds RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT in its environment; without them training runs as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from reid.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str = "auto", use_cuda: bool | None = None) -> DistInfo:
    """Join the process group described by the torchrun environment (no-op when absent).

    backend "auto": nccl when CUDA is used, gloo on the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda is None:
        use_cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ConfigError(f"train.dist_backend: unknown backend {backend!r} (auto, nccl, gloo)")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(value: Any, info: DistInfo, src: int = 0) -> Any:
    """`value` as held by rank `src`, on every rank (picklable objects)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """[value of rank 0, value of rank 1, ...] on every rank."""
    if not info.enabled:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of `tensor` over processes (a new tensor; no gradient)."""
    if not info.enabled:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def broadcast_module(module: torch.nn.Module, info: DistInfo, src: int = 0) -> None:
    """Copy the parameters and buffers of rank `src` into every rank's `module`, in place."""
    if not info.enabled:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=src)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.size = dist.get_rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        start = ctx.rank * ctx.size
        return grad[start : start + ctx.size].contiguous()


def all_gather_with_grad(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate (world * n, ...) the equal-sized tensors of all processes in rank order.

    The gradient flows back to this process's own rows only; the other rows are
    constants here (each process back-propagates through its own part). DDP averages the
    per-process gradients, so a loss on the gathered batch must be multiplied by the
    world size for the update to equal the gradient of that loss (see the trainer).
    """
    if not info.enabled:
        return tensor
    return _GatherWithGrad.apply(tensor)
