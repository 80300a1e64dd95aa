"""Where a run trains: the device, and distributed data parallel on PyTorch's own engine.

`torchrun --nproc-per-node N -m superres train RECIPE` starts N processes and sets RANK,
WORLD_SIZE, LOCAL_RANK and the rendezvous address; each process joins the default process
group (gloo on CPU, NCCL on CUDA), trains a DistributedDataParallel model on its shard of every
global batch, and lets rank 0 alone validate, log and write checkpoints. Launching, process
groups and the gradient all-reduce are PyTorch's; nothing here reimplements them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

DEVICES = ("cpu", "cuda", "mps")


def pick_device(name: str | None = None) -> torch.device:
    """`name` (cpu, cuda, cuda:N, mps), checked to exist; default CUDA when present, else CPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in DEVICES:
        raise ValueError(f"device {name!r}: choose one of {', '.join(DEVICES)}")
    device = torch.device(name)
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}[device.type]
    if not available:
        raise ValueError(f"device {name!r} is not available on this machine")
    return device


@dataclass(frozen=True)
class Context:
    """This process's place in the run: its rank among `world` processes, and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0 validates, logs, shows progress and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def start(device: str | None = None) -> Context:
    """Join torchrun's process group when launched by it (WORLD_SIZE > 1), else one process.
    Each rank of a CUDA run takes the GPU of its LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    chosen = pick_device(device)
    if world == 1:
        return Context(0, 1, chosen)
    if chosen.type == "cuda" and chosen.index is None:
        chosen = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), chosen)


def stop(context: Context) -> None:
    """Leave the process group (after the last collective call of the run)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    """Wait for every rank (e.g. while rank 0 writes a checkpoint the others will read)."""
    if context.distributed:
        dist.barrier()


def mean(context: Context, value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the ranks (e.g. the loss of the global batch, for the log)."""
    if not context.distributed:
        return value
    total = value.clone()
    dist.all_reduce(total)
    return total / context.world


def launch(nproc: int, argv: Sequence[str]) -> None:
    """Run `superres ARGV...` in `nproc` processes on this machine with PyTorch's launcher:
    the same as `torchrun --standalone --nproc-per-node NPROC -m superres ARGV...`."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(["--standalone", "--nproc-per-node", str(nproc), "-m", "superres", *argv])
    except ChildFailedError as err:  # its message names the failed rank and its exit code
        raise RuntimeError(f"distributed run failed: {str(err).strip().splitlines()[0]}") from None
