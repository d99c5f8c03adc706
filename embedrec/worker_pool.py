"""Jobs in spawned worker processes that stop when asked: what ``tune-dims`` runs its trials on.

Each job runs in its own process (``max_tasks_per_child=1``: its peak memory is its own), forked from a
``forkserver`` that imported what the jobs import once (torch alone took 3-7 s in each spawned worker), or spawned
where there is no forkserver (Windows). On Ctrl-C or SIGTERM
(as ``errors.Terminated``) in the parent, :func:`run_jobs` stops its workers before it returns: no job starts
after it (:func:`job` refuses), running ones get SIGTERM through a :class:`StopPipe`, jobs that finish meanwhile
are recorded, and every worker process has exited, killed after ``STOP_WAIT`` seconds if it must be, so nothing
writes into the caller's folder once its lock is released. A worker whose parent died (``kill -9``) stops its
job and exits by itself.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time

from embedrec.errors import Interrupted, Terminated

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_WAIT = 30.0  # seconds a stopping pool waits for its running jobs to stop before it kills their processes


class StopPipe:
    """The sweep's stop signal to its worker processes: ``set()`` closes the write end of a pipe, and each
    worker, holding the read end (``reader``, passed at its start), sees the end of file at once.
    Not a ``multiprocessing.Event``: its ``set()`` waits for every process waiting on it to wake, and a worker
    that exited while waiting (each one exits after its trial) never does. A pipe takes no lock, makes no
    named semaphore (nothing for the resource tracker to report as leaked), and is closed by a parent that dies
    too. Workers must be started with ``spawn`` or ``forkserver`` (a forked one would hold the write end)."""

    def __init__(self, ctx):
        self.reader, self._writer = ctx.Pipe(duplex=False)

    def set(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        self.set()
        self.reader.close()


def ended(reader) -> bool:
    try:
        return reader.poll()  # readable: the end of file, as nothing is ever sent
    except (OSError, EOFError):
        return True


# in a worker process (set by init_worker): the read end of the pool's StopPipe, and whether a job runs
_stop = None
_in_job = False


def start_method() -> str:
    """``forkserver`` where the platform has it (Linux, macOS), else ``spawn``: never ``fork``, whose workers would
    hold the StopPipe's write end and the parent's threads' locks."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


_preloaded: frozenset[str] = frozenset()  # what the forkserver this process started imported


def _forkserver(preload: tuple[str, ...]) -> None:
    """Have this process's forkserver preload ``preload``: set before it starts; a server running without one of
    them (started by an earlier pool for another model: an als sweep imports no torch) is stopped first, so that
    the next pool starts one with both (a review: torch was imported in every worker again). Between pools no
    worker runs, so stopping it costs only its next start."""
    global _preloaded
    from multiprocessing import forkserver

    want = _preloaded | set(preload)
    server = getattr(forkserver, "_forkserver", None)
    if want == _preloaded and getattr(server, "_forkserver_pid", None) is not None:
        return
    if getattr(server, "_forkserver_pid", None) is not None and hasattr(server, "_stop"):
        server._stop()
    forkserver.set_forkserver_preload(sorted(want))
    _preloaded = frozenset(want)


def _end_forkserver() -> None:
    """After a stopped or failed pool: end this process's forkserver now (it may be importing its preload, at
    full CPU, and would exit only after that, once this process has), so no process of the pool outlives it
    (a review). The next pool starts a new one."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None or not hasattr(server, "_stop"):
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        server._stop()  # closes its pipe, reaps it


def init_worker(stop_reader, sweep: int, forked: bool = False) -> None:
    """A worker's start (the pool's initializer). SIGTERM stops the trial it runs as ``errors.Terminated`` and
    SIGINT (Ctrl-C at a terminal reaches every worker; unless ignored, as in a background job) as
    KeyboardInterrupt; between trials both are ignored (the parent ends the process). A thread turns the
    parent's stop (or its death) into that SIGTERM, so a worker stops whether or not the signal reached it.
    ``sweep``: the sweep's pid, given by the sweep (a worker that starts after it died has another parent).
    ``forked``: the worker's parent is the pool's forkserver, a child of the sweep that exits when the sweep dies."""
    global _stop
    _stop = stop_reader
    signal.signal(signal.SIGTERM, _worker_signal)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # a terminal that hangs up reaches every worker too
        signal.signal(signal.SIGHUP, _worker_signal)  # (not under nohup, which ignores it: a review)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _worker_signal)
    parents = (sweep, os.getppid()) if forked and _exists(sweep) else (sweep,)
    threading.Thread(target=_stop_watch, args=(stop_reader, parents), name="embedrec-tune-stop",
                     daemon=True).start()
    if hasattr(signal, "pthread_sigmask"):  # held since the parent started this process: see stop_signals_held
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _start_tracker() -> None:
    """multiprocessing's resource tracker started (where it is not yet) with SIGHUP blocked, which it never
    unblocks (it ignores only SIGINT and SIGTERM): a terminal hanging up on the process group killed it, and its
    successor printed a traceback for each name it had not seen (a review). Before anything makes a lock or a
    queue, which starts it."""
    from multiprocessing import resource_tracker

    if not hasattr(signal, "pthread_sigmask"):
        return
    was = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, was)


@contextlib.contextmanager
def stop_signals_held():
    """Block Ctrl-C and SIGTERM in this thread while the pool starts: the threads it starts and the worker
    processes they spawn inherit the mask (through fork and exec), so a signal to the process group (Ctrl-C at
    a terminal, ``timeout``, a scheduler) waits until ``init_worker`` has installed the worker's handlers,
    instead of killing the interpreter while it starts (a page of tracebacks, "Fatal Python error:
    init_import_site"). Here, a signal that arrives meanwhile is taken when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return

    _start_tracker()  # first: starting it unblocks SIGINT and SIGTERM in the calling thread
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _worker_signal(signum, frame) -> None:
    if _in_job:
        raise Terminated(signum) if signum in (signal.SIGTERM, signal.SIGHUP) else KeyboardInterrupt()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process of that number: there is one
        pass
    return True


def _stop_watch(reader, parents: tuple[int, ...]) -> None:
    """The stop's watch in a worker: SIGTERM to the worker's main thread when the sweep stops or dies. After the
    sweep's process dies (``kill -9``: the worker's parent is no longer ``parents[-1]``, the sweep or its
    forkserver, which exits with it), nobody will end this worker, and an idle one would wait for its next trial
    for ever (it holds both ends of the pool's queue itself): it gives a running trial STOP_WAIT seconds to
    stop, then exits."""
    try:
        reader.poll(None)
    except (OSError, EOFError):
        pass
    signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
    while os.getppid() == parents[-1] and _exists(parents[0]):  # a live sweep ends its workers itself (and a
        time.sleep(0.2)  # dying one's pipe closes before its children are handed on: checked until it is gone)
    deadline = time.monotonic() + STOP_WAIT
    while _in_job and time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(1)


@contextlib.contextmanager
def job(refusal: str):
    """The body of a job in a worker process: raises ``Interrupted(refusal)`` at once, before anything is loaded or
    written, when the pool is stopping (a replacement worker took a queued job after the stop); while it runs, a
    stop (SIGTERM, Ctrl-C) is raised in it (``Terminated``, KeyboardInterrupt)."""
    global _in_job
    _in_job = True
    try:
        if _stop is not None and ended(_stop):
            raise Interrupted(refusal)
        yield
    finally:
        _in_job = False


SCRIPT_HINT = (" (from a Python script, put its code under `if __name__ == \"__main__\":`: workers start by "
               "importing the script, and its top-level code would run again in each)")


def in_spawned_main() -> bool:
    """Whether this process is a spawned worker still importing its parent's script: the script's top-level code
    runs again there, and embedrec's writers must not (a review: a script without the __main__ guard ingested,
    trained and saved once more in each tune-dims worker, then failed on the locks). ``_inheriting`` is what
    multiprocessing's own check of that phase reads (spawn._check_not_importing_main); once the worker runs its
    job, it is gone."""
    return bool(getattr(mp.current_process(), "_inheriting", False))


def _from_a_script() -> bool:
    """Whether this process runs a user's script (``python script.py``; not the embedrec command, not -m)."""
    import sys
    from pathlib import Path

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is not None and getattr(main, "__spec__", None) is None and Path(path).name != "embedrec"


def refuse_in_spawned_main(what: str) -> None:
    """A UsageError when ``what`` (an embedrec call) runs from a script re-imported by a spawned worker."""
    if in_spawned_main():
        from embedrec.errors import UsageError

        raise UsageError(f"{what} was called while a worker process imported the script{SCRIPT_HINT}")


def run_jobs(fn, jobs: list[tuple[tuple, tuple]], workers: int, record, preload: tuple[str, ...] = ()) -> None:
    """Run ``fn(*args)`` for each ``(args, key)`` of ``jobs`` in ``workers`` worker processes, each process one
    job (its peak memory its own), calling ``record(*key, result)`` as each finishes. ``fn``: a module-level
    function (workers import it by name) that runs inside :func:`job`, in this process's environment variables
    as they are now. ``preload``: the modules the forkserver imports once for every worker, none whose import
    starts a thread a fork would lose (pyarrow's jemalloc thread: see tune.trial_modules); where there is no
    forkserver each worker imports what it needs. On any exception here (Ctrl-C, SIGTERM as ``Terminated``, a
    failed job) the pool is stopped before it goes on: see ``_stop_pool``."""
    import sys

    main = sys.modules.get("__main__")
    hidden = None  # `python - < script.py`: __main__'s file is '<stdin>', which each worker would run as a path
    if getattr(main, "__spec__", None) is None and isinstance(getattr(main, "__file__", None), str) and \
            not os.path.isfile(main.__file__):  # (a first-hour review: FileNotFoundError in every worker)
        hidden = main.__dict__.pop("__file__")  # as `python -c` and a notebook, which have none
    try:
        _run_jobs(fn, jobs, workers, record, preload)
    finally:
        if hidden is not None:
            main.__file__ = hidden


def _run_jobs(fn, jobs: list[tuple[tuple, tuple]], workers: int, record, preload: tuple[str, ...]) -> None:
    method = start_method()
    ctx = mp.get_context(method)
    _start_tracker()  # before the pool's locks and queues start it
    if method == "forkserver":
        _forkserver(preload)
    stop = StopPipe(ctx)
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1,
                                  initializer=init_worker, initargs=(stop.reader, os.getpid(), method == "forkserver"))
    futs: dict[cf.Future, tuple] = {}
    env = dict(os.environ)  # a forkserver's workers have its environment, from its start, not this process's now
    try:
        with stop_signals_held():  # the workers and the forkserver (and the pool's thread) inherit it
            for args, key in jobs:
                futs[pool.submit(_in_env, env, fn, *args)] = key
        for fut in cf.as_completed(futs):
            record(*futs[fut], fut.result())
            del futs[fut]  # after: a trial whose record a signal cut short is recorded again by _stop_pool
        pool.shutdown(wait=True)
    except cf.process.BrokenProcessPool:  # a worker died starting or running (e.g. a script without the
        _stop_pool(pool, stop, futs, record)  # __main__ guard: refused in the worker, see in_spawned_main)
        from embedrec.errors import TrainingError

        why = SCRIPT_HINT if _from_a_script() else " (killed, or out of memory?)"
        raise TrainingError(f"a worker process ended before its trial finished{why}; the trials that finished are "
                            "kept: rerun to go on") from None
    except BaseException:
        _stop_pool(pool, stop, futs, record)
        raise
    finally:
        stop.close()


def _in_env(env: dict, fn, *args):
    """``fn(*args)`` in a worker, with the environment variables ``env`` (the sweep's as it started)."""
    if dict(os.environ) != env:
        os.environ.clear()
        os.environ.update(env)
    return fn(*args)


def _stop_pool(pool: cf.ProcessPoolExecutor, stop: StopPipe, futs: dict, record) -> None:
    """Stop a pool of trials: no trial starts any more (queued ones are cancelled, a worker that takes one
    returns at once), running ones stop (their workers get SIGTERM through ``stop``); trials that finish
    meanwhile are recorded. Waits up to ``STOP_WAIT`` seconds (less after a second Ctrl-C or SIGTERM), then kills
    the workers left, and returns once every worker process has exited."""
    procs = getattr(pool, "_processes", None)  # the pool's live {pid: process}; shutdown() drops the attribute
    try:
        stop.set()
        for fut in futs:
            fut.cancel()  # not yet handed to a worker
        cf.wait(futs, timeout=STOP_WAIT)
        for fut, key in list(futs.items()):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                with contextlib.suppress(Exception):
                    record(*key, fut.result())
    except KeyboardInterrupt:  # asked again (Ctrl-C, SIGTERM): stop waiting
        pass
    finally:
        if not all(fut.done() for fut in futs):
            _kill(procs)
        for _ in range(3):  # asked yet again while waiting: kill what is left, and still wait for it to exit
            try:
                pool.shutdown(wait=True, cancel_futures=True)
                break
            except KeyboardInterrupt:
                _kill(procs)
        if start_method() == "forkserver":
            _end_forkserver()


def _kill(procs) -> None:
    for p in _alive(procs):
        with contextlib.suppress(OSError, ValueError):
            p.kill()


def _alive(procs) -> list:
    for _ in range(10):  # the pool's manager thread may change the dict meanwhile
        try:
            return [p for p in list((procs or {}).values()) if p.is_alive()]
        except RuntimeError:
            continue
    return []
