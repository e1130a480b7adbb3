"""Training across processes with ``torchrun``: which rank this process is, the process
group (gloo on the CPU, nccl on GPUs), and the few collectives the digit trainer needs.

``torchrun --nproc-per-node N -m training digits ...`` starts N copies of the trainer;
each finds its rank here (torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), trains on
its shard of every batch under DistributedDataParallel, and only rank 0 writes the run
folder. A plain ``python -m training digits`` is rank 0 of a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the run's processes."""

    rank: int = 0  # this process (0 writes the run folder)
    world: int = 1  # processes training together
    local_rank: int = 0  # this process on its machine (its GPU, on GPU machines)

    @property
    def writer(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def ranks_from_env(env: dict[str, str] | None = None) -> Ranks:
    """The ranks torchrun gave this process (a world of one without torchrun).
    ValueError for inconsistent values."""
    env = dict(os.environ) if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    rank, local = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", env.get("RANK", "0")))
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"RANK {rank}, LOCAL_RANK {local}, WORLD_SIZE {world} from the environment do not fit")
    return Ranks(rank, world, local)


def threads_per_rank(threads: int, ranks: Ranks, device: str, env: dict[str, str] | None = None,
                     cores: int | None = None) -> int:
    """The CPU threads one rank computes with: ``threads``, but on the CPU never more than
    its share of this machine's cores (ranks that together ask for more threads than
    there are cores wait on each other at every all-reduce: 2 ranks of 2 threads on 2
    cores trained 6x slower than 2 ranks of 1)."""
    threads = max(1, threads)
    if not ranks.distributed or torch.device(device).type != "cpu":
        return threads
    env = dict(os.environ) if env is None else env
    local_world = max(1, int(env.get("LOCAL_WORLD_SIZE", ranks.world)))
    return min(threads, max(1, (cores or os.cpu_count() or 1) // local_world))


def start(ranks: Ranks, device: str) -> torch.device:
    """Join the process group (a no-op for a world of one); the device this rank trains
    on: its own GPU (``cuda:LOCAL_RANK``) for ``device`` cuda, else the CPU."""
    dev = torch.device(device)
    if dev.type == "cuda" and ranks.distributed:
        dev = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(dev)
    if ranks.distributed and not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=ranks.rank, world_size=ranks.world)
    return dev


def stop(ranks: Ranks) -> None:
    if ranks.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def all_sum(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """``values`` summed over all ranks (themselves in a world of one)."""
    if not ranks.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()
