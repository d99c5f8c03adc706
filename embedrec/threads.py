"""How many CPU threads a training run should use.

torch's default (one thread per core) collapses on a shared machine: on a 2-core laptop with any other load,
two threads fighting over the cores made ML-100K epochs 3-20x slower than one thread (an Adam step on 645K
embedding parameters: 110 ms at 2 threads vs 4.4 ms at 1): torch's and OpenBLAS's threads spin while they wait for
each other. Small problems gain nothing from more threads anyway, so the rule is: an explicit request wins; else
one thread for small problems; else, for the ALS C kernel (whose threads block rather than spin, and whose fit is
the same at any thread count), one thread when the other load leaves no core free, else the free cores but at
least two; for the other trainers one thread when the other load leaves fewer than two cores free, else the free
cores. (On 2 cores beside 4-14 other running tasks, two ALS threads ran at 0.93-1.24x one's speed, at up to 25%
more CPU: nothing shown gained where no core is free; docs/known-gaps.md.)

For the ALS kernel the other load is what runs now beside this process: the runnable tasks of /proc/stat less this
process's own, the median of a few reads over about 0.1 s. The 1-minute load average, the fallback where /proc is
absent, counts the decaying tail of the user's own previous command (a load of 1.0-1.4 after a train on 2 cores,
which made the next train pick one thread, 1.3-1.5x slower: BENCHMARKS.md, session 57). The other trainers read
the 1-minute average as before (:func:`load_average`): on a quiet 2-core machine it keeps them at one thread, where
a hogwild run repeats bit for bit, and more of their threads beside other work is not measured.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

# below this many example x dimension multiply-adds per epoch pass, one thread is as fast as several
# (ML-100K: 70,000 training ratings x 128 dims = 9.0M; ML-1M: 700,000 x 128 = 90M)
SMALL_WORK = 20_000_000
SAMPLES = 5  # reads of the runnable count, SAMPLE_GAP_S apart (about 0.1 s of waiting in all)
SAMPLE_GAP_S = 0.02
KEPT_S = 10.0  # a reading this recent is reused: a default train asks about 20 times, most in quick succession


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def runnable_others(running: Sequence[int], own: Sequence[int]) -> float:
    """The median over paired reads of the runnable tasks (``running``) less this process's own running threads
    (``own``, the reading thread among them), none below 0: a task that ran for one read of several is not load."""
    others = sorted(max(0, int(r) - int(o)) for r, o in zip(running, own, strict=True))
    if not others:
        raise ValueError("runnable_others needs at least one read")
    mid = len(others) // 2
    return float(others[mid]) if len(others) % 2 else (others[mid - 1] + others[mid]) / 2


def _procs_running(proc: Path) -> int | None:
    try:
        with open(proc / "stat", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _own_running(proc: Path) -> int:
    """This process's threads in state R (running or runnable), from /proc/self/task/*/stat."""
    n = 0
    try:
        tasks = os.listdir(proc / "self" / "task")
    except OSError:
        return 1  # at least the thread that asks
    for task in tasks:
        try:
            text = (proc / "self" / "task" / task / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # a thread that ended between the listing and the read
        state = text[text.rfind(")") + 2:text.rfind(")") + 3]  # after "pid (comm) ": comm may hold spaces
        n += state == "R"
    return max(1, n)


def measure_other_load(proc: str | Path = "/proc", samples: int = SAMPLES, gap: float = SAMPLE_GAP_S,
                       sleep=time.sleep) -> float:
    """Runnable tasks beside this process's own: :func:`runnable_others` of ``samples`` reads of ``proc``/stat's
    procs_running, ``gap`` seconds apart; where ``proc`` has no such count, the 1-minute load average (which counts
    this process and the tail of recent ones too); 0 where the OS reports neither."""
    proc = Path(proc)
    running, own = [], []
    for i in range(max(1, samples)):
        if i:
            sleep(gap)
        r = _procs_running(proc)
        if r is None:
            break
        running.append(r)
        own.append(_own_running(proc))
    return runnable_others(running, own) if running else load_average()


def load_average() -> float:
    """The 1-minute load average, 0 where the OS reports none: the other trainers' reading (it counts this process
    and the tail of recent ones too)."""
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def other_load() -> float:
    """:func:`measure_other_load` of this machine, a reading under KEPT_S seconds old reused."""
    global _kept
    now = time.monotonic()
    if _kept is None or now - _kept[0] >= KEPT_S:
        _kept = (now, measure_other_load())
    return _kept[1]


_kept: tuple[float, float] | None = None


def choose_threads(n_examples: int, dim: int, requested: int, *, cpus: int | None = None,
                   load: float | None = None, als: bool = False) -> int:
    """Threads for training ``n_examples`` ratings at embedding size ``dim``.

    ``requested`` > 0 (train.threads) wins. Otherwise 1 for small problems (n_examples * dim below SMALL_WORK).
    Otherwise ``free`` = the CPUs less the other load, rounded down: with ``als`` (the ALS C kernel, whose threads
    block rather than spin and whose fit is the same at any thread count) 1 when none is free, else max(free, 2),
    at most the CPUs; without it 1 when fewer than 2 are free, and the free CPUs when more. ``cpus`` and ``load`` (the other load) default to this
    machine's (:func:`available_cpus`, :func:`other_load`); they are parameters so the rule can be tested.
    """
    if requested > 0:
        return int(requested)
    if n_examples * max(dim, 1) < SMALL_WORK:
        return 1
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    # the other trainers read the 1-minute average as before (on a quiet 2-core machine they keep one thread, so a
    # hogwild run repeats bit for bit; how two of their threads fare is not measured since): the running tasks for
    # ALS alone, whose fit is the same at any thread count
    load = (other_load() if als else load_average()) if load is None else max(0.0, float(load))
    free = int(math.floor(cpus - load))
    if als:
        return 1 if free < 1 else min(cpus, max(free, 2))
    if free < 2:
        return 1
    return min(free, cpus)


def _blas_libs() -> list:
    """The loaded BLAS libraries' threadpoolctl controllers, found once ([] where threadpoolctl is absent)."""
    global _controller
    if _controller is None:
        with _blas_lock:  # (one look: two threads' first blocks found the libraries each, and their limits then
            if _controller is None:  # restored one another's)
                try:
                    from threadpoolctl import ThreadpoolController
                except ImportError:
                    _controller = []
                else:  # finds the loaded BLAS libraries once
                    _controller = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _controller


def _set_blas(libs: list, limits: Sequence[int]) -> bool:
    """Each library's thread count set, then read back: whether every one took (OpenBLAS 0.3.31 refuses a count
    set while another thread's threaded product runs: a set that does not take is said, not assumed)."""
    took = True
    for lib, n in zip(libs, limits, strict=True):
        lib.set_num_threads(n)
        took = took and lib.num_threads == n
    return took


@contextmanager
def blas_threads(threads: int):
    """numpy's BLAS limited to ``threads`` inside the block (as torch.set_num_threads limits torch's): OpenBLAS
    otherwise starts a thread per core, whose spinning slowed the ALS kernel 3x on a loaded 2-core machine.
    threadpoolctl is a dependency; in an install that left it out, nothing changes (and a fit then differs in its
    last bits with the thread count).

    The limit is the process's, not the thread's: blocks open in several threads at once (one open model's
    ``recommend`` of a few users from a web server's threads: serve.recommender's lean path) hold it together, the
    latest block's limit applying, and the last to leave restores the counts the first found (a review: each
    block restoring what it found, two threads' blocks interleaved left the process's BLAS at one thread for
    good). OpenBLAS refuses that restore while another thread's threaded product runs (two threads' blocks beside
    two unlimited products ended at one thread of two in about a third of 3-second runs): the counts to restore
    are then kept, the next block starts from them, not from the one thread it finds, and the next block's end or
    :func:`settle` (which exact search calls before its products) sets them again until they take."""
    global _base
    libs = _blas_libs()
    if not libs:
        yield
        return
    entry = (max(1, int(threads)),)
    with _blas_lock:
        if not _blas_held and _base is None:
            _base = [lib.num_threads for lib in libs]  # the counts the process had, to restore at the end
        _set_blas(libs, [entry[0]] * len(libs))
        _blas_held.append(entry)
    try:
        yield
    finally:
        with _blas_lock:
            _blas_held.remove(entry)  # (one of its limit: any such is as good)
            if not _blas_held:
                if _set_blas(libs, _base):
                    _base = None
            elif _blas_held[-1][0] != entry[0]:
                _set_blas(libs, [_blas_held[-1][0]] * len(libs))


def settle() -> None:
    """The process's BLAS thread counts set again where the last :func:`blas_threads` block's restore did not take
    and no block is open (a large product's threads then are the process's, not the one a few users' product
    left). Cheap where nothing is owed: no lock, no library call."""
    global _base
    if _base is None:
        return
    libs = _blas_libs()
    with _blas_lock:
        if _base is not None and not _blas_held and _set_blas(libs, _base):
            _base = None


_controller = None  # the BLAS libraries' controllers ([] without threadpoolctl)
_base: list | None = None  # the counts the process had before the open blocks (or a restore not yet taken)
_blas_held: list = []  # the open blocks' (limit,), oldest first
_blas_lock = threading.Lock()
