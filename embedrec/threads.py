"""How many CPU threads a training run should use.

torch's default (one thread per core) collapses on a shared machine: on a 2-core laptop with any other load,
two threads fighting over the cores made ML-100K epochs 3-20x slower than one thread (an Adam step on 645K
embedding parameters: 110 ms at 2 threads vs 4.4 ms at 1). Small problems gain nothing from more threads
anyway, so the rule is: an explicit request wins; else one thread for small problems or when the other load
leaves fewer than two cores free; else the free cores.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager

# below this many example x dimension multiply-adds per epoch pass, one thread is as fast as several
# (ML-100K: 70,000 training ratings x 128 dims = 9.0M; ML-1M: 700,000 x 128 = 90M)
SMALL_WORK = 20_000_000


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def other_load() -> float:
    """The 1-minute load average (runnable processes); 0 where the OS does not report one."""
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def choose_threads(n_examples: int, dim: int, requested: int, *, cpus: int | None = None,
                   load: float | None = None) -> int:
    """Threads for training ``n_examples`` ratings at embedding size ``dim``.

    ``requested`` > 0 (train.threads) wins. Otherwise 1 for small problems (n_examples * dim below
    SMALL_WORK) and when the load average leaves fewer than 2 of the CPUs free; else the free CPUs.
    ``cpus`` and ``load`` default to this machine's (they are parameters so the rule can be tested).
    """
    if requested > 0:
        return int(requested)
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    load = other_load() if load is None else max(0.0, float(load))
    if n_examples * max(dim, 1) < SMALL_WORK:
        return 1
    free = int(math.floor(cpus - load))
    if free < 2:
        return 1
    return min(free, cpus)


@contextmanager
def blas_threads(threads: int):
    """numpy's BLAS limited to ``threads`` inside the block (as torch.set_num_threads limits torch's): OpenBLAS
    otherwise starts a thread per core, whose spinning slowed the ALS kernel 3x on a loaded 2-core machine.
    threadpoolctl is a dependency; in an install that left it out, nothing changes (and a fit then differs in its
    last bits with the thread count)."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()  # finds the loaded BLAS libraries once
    if _controller is False:
        yield
        return
    with _controller.limit(limits=max(1, int(threads)), user_api="blas"):
        yield


_controller = None
