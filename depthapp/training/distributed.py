"""Training on several processes (``torchrun``): PyTorch's process group, gloo on the CPU and
NCCL on GPUs.

Data: every batch of a run is a pure function of ``(seed, iteration, slot)``
(:class:`~depthapp.training.data.BatchMaker`), so the sampler needs no communication: rank ``r``
of ``W`` builds slots ``r, r + W, r + 2W ...`` of the *global* batch (``--batch`` is the global
batch and must divide by ``W``), the interleaving of torch's ``DistributedSampler``. The endless
synthetic stream and finite datasets are split the same way, and the union of the ranks' slots
is exactly the batch one process would see, so the same ``--batch`` gives the same samples and
the same loss trajectory (up to BatchNorm's per-rank statistics and float summation order).

Gradients: averaged over the ranks after each backward, as ``DistributedDataParallel`` does;
by an explicit flattened all-reduce rather than the wrapper, because the training adapters call
into the network's submodules (e.g. MC-CNN's objective), which the wrapper would hide.
Rank 0 alone writes checkpoints, the log, progress and the final outputs; every rank reads the
checkpoint on ``--resume`` (multi-node runs need ``--out`` on a shared file system).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Optional

import torch

from ..errors import UsageError


@dataclass(frozen=True)
class ProcessGroup:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    def slots(self, batch: int) -> range:
        """This rank's slots of a global batch of ``batch`` samples."""
        return range(self.rank, batch, self.world)

    def barrier(self) -> None:
        torch.distributed.barrier()

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch._utils._flatten_dense_tensors(grads)
        torch.distributed.all_reduce(flat)
        flat /= self.world
        for grad, averaged in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            grad.copy_(averaged)

    def broadcast_state(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers everywhere (the same seed already builds the same
        network; this makes it hold whatever differs, e.g. a restored checkpoint)."""
        for tensor in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(tensor.data, src=0)

    def mean(self, value: float, device: str) -> float:
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(tensor)
        return float(tensor) / self.world

    def close(self) -> None:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def environment_rank() -> int:
    """This process's rank as ``torchrun`` sets it (0 outside torchrun), before joining."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def from_environment(device: str, batch: int) -> Optional[ProcessGroup]:
    """The process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment), joined;
    None for a single process. ``batch`` (the global batch) must divide by the processes."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise UsageError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise UsageError(f"RANK {rank} is outside 0..{world - 1}")
    if batch % world:  # checked before joining: a refusal must not wait for the other ranks
        raise UsageError(f"--batch {batch} (the global batch) must divide by the {world} processes "
                         f"of the run")
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return ProcessGroup(rank, world, local_rank, backend)


__all__ = ["ProcessGroup", "environment_rank", "from_environment"]
