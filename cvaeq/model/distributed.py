"""Training on several processes: torchrun + DistributedDataParallel.

Launch one process per GPU (or a few on a CPU) with torchrun; each process
trains on its shard of every epoch (a ``DistributedSampler`` in
:func:`~cvaeq.model.train.train`), gradients are averaged by DDP (NCCL on
GPUs, gloo on CPUs), and rank 0 evaluates and writes the checkpoints::

    torchrun --nproc_per_node=2 -m cvaeq.cli.torchrun -- --n 200000 --epochs 20 --out model.safetensors

which is the same as ``torchrun ... $(which cvaeq) train --distributed ...``
(the launcher is the CLI's, :mod:`cvaeq.cli.torchrun`: this module knows
nothing of the command line). ``--batch`` is per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import CvaeqError

__all__ = ["DistContext", "init_distributed"]


@dataclass
class DistContext:
    """This process's place in a distributed run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model wrapped in DistributedDataParallel on this process's device."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun set up (``RANK``, ``WORLD_SIZE``, ...).

    NCCL when this process gets a GPU, gloo otherwise.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise CvaeqError("--distributed needs to be launched by torchrun (RANK and WORLD_SIZE are not set)")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CvaeqError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if use_cuda:
        torch.cuda.set_device(local % torch.cuda.device_count())
        dev = torch.device("cuda", local % torch.cuda.device_count())
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local, dev, backend)
