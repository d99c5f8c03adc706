"""Where this process runs: its rank and the world size from torchrun's environment (one process: rank 0 of 1), and
``train.device`` resolved to a device (auto: a GPU when torch sees one). Numpy-free and torch-free until a GPU may be
there, so a CPU run never imports torch here; one-process training, evaluation and the command line read it as
the torchrun paths do."""

from __future__ import annotations

import os
from pathlib import Path

from embedrec.errors import ConfigError


def env_rank_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    values = []
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        raw = os.environ.get(name, "").strip()
        try:
            values.append(int(raw) if raw else default)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not an integer; launch with torchrun, "
                              "which sets it") from None
    rank, world, local = values
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"environment variables RANK={rank}, WORLD_SIZE={world} are inconsistent; launch with "
                          "torchrun, which sets them")
    return rank, world, local


def rank_world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside torchrun."""
    rank, world, _ = env_rank_world()
    return rank, world


def active() -> bool:
    """Whether this process is one of several ranks (WORLD_SIZE > 1)."""
    return env_rank_world()[1] > 1


def secondary() -> bool:
    """Whether this process is a rank other than 0 (which alone prints results and writes shared files)."""
    return env_rank_world()[0] > 0


def _cuda_possible() -> bool:
    """A cheap check that a CUDA GPU may be present, so device auto on a CPU box never imports torch."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists() or Path("/dev/dxg").exists()


def device_name(name: str = "auto", local_rank: int | None = None) -> str:
    """'cpu' or 'cuda:N' for train.device ``name`` (auto: cuda when torch sees a GPU); N is the LOCAL_RANK's GPU.

    Raises ConfigError when cuda is asked for and torch sees none."""
    if name not in ("auto", "cpu", "cuda") and not str(name).startswith(("cuda:", "cpu")):
        raise ConfigError(f"config key 'train.device': expected auto, cpu or cuda, got {name!r}")
    if name == "cpu" or (name == "auto" and not _cuda_possible()):
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        if name == "auto":
            return "cpu"
        raise ConfigError(f"config key 'train.device': cuda was asked for but torch {torch.__version__} sees no GPU "
                          f"(built with CUDA {torch.version.cuda or 'none'}); use «--set train.device=cpu|train.device='cpu'» or auto")
    _, world, local = env_rank_world()
    local = local if local_rank is None else local_rank
    count = torch.cuda.device_count()
    if world > 1 and str(name).startswith("cuda:"):  # every rank on one GPU: nccl's 'Duplicate GPU detected'
        raise ConfigError(f"config key 'train.device': {name} names one GPU for all {world} torchrun ranks, and nccl "
                          "needs a GPU per rank; use «--set train.device=cuda» (each rank takes its LOCAL_RANK's GPU)")
    if str(name).startswith("cuda:"):
        return str(name)
    # two ranks on one GPU: an internal nccl error (an H200 run, session 38). Every rank of the node refuses, from
    # torchrun's LOCAL_WORLD_SIZE (a review: rank 0, which has a GPU, went on to join the group and hung there)
    try:
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "").strip())
    except ValueError:  # another launcher: each rank knows only its own local rank
        per_node = None
    if world > 1 and max(local + 1, per_node or 0) > count:
        ranks, gpus = max(local + 1, per_node or 0), f"{count} GPU{'s' if count != 1 else ''}"
        wrap = _every_rank if per_node is not None else (lambda e: e)  # every rank of this node finds it
        raise wrap(ConfigError(
            f"config key 'train.device': torchrun runs {ranks} ranks on this machine, where torch sees {gpus}, and "
            f"nccl needs one per rank; launch torchrun --nproc-per-node {count} or fewer here, or use "
            "«--set train.device=cpu|train.device='cpu'» for gloo ranks on the CPU"))
    return f"cuda:{local}"


def _every_rank(e):
    """``e``, marked as found alike by every rank of a node: its local rank 0 alone says it (the CLI's error
    path; a review: a rank that alone found it, marked so, said nothing)."""
    e.every_rank = True
    return e


def resolve_device(name: str = "auto", local_rank: int | None = None):
    """train.device as a torch.device (see :func:`device_name`)."""
    import torch

    return torch.device(device_name(name, local_rank))
