"""The click layer: one module per command (parse options, call one library function, write rows).

``app.py`` holds the group, logging and the single place where errors become one stderr line and an exit code;
``options.py`` the options and input types commands share. Importing this package registers every command on
``main``; each command imports the library lazily, so ``embedrec recommend`` loads no torch or pandas.
"""

from embedrec.cli import (  # noqa: F401
    config,
    crossval,
    evaluate,
    export,
    history,
    index,
    ingest,
    predict,
    recommend,
    train,
    tune,
    update,
    verify,
)
from embedrec.cli.app import main, progress_enabled, set_short_help
from embedrec.cli.state import _State

set_short_help(main)

__all__ = ["main", "progress_enabled", "run"]


def run() -> None:
    """The `embedrec` command (console script and ``python -m embedrec``): ``main`` as a process.

    A failed command has already said what is wrong in one line; it then leaves at once (``os._exit``) instead
    of through the interpreter's shutdown, where a native library's thread pool torn down with the process can
    abort it ("terminate called without an active exception", exit code -6 instead of 1: seen once in 216
    damaged-dataset `evaluate` runs). CliRunner and notebooks call ``main`` and are not affected."""
    import os
    import sys

    _closed_streams()
    _State.process = True
    from embedrec.output import stdout_offset, whole_writes

    sys.stdout = whole_writes(sys.stdout)  # PYTHONUNBUFFERED=1: a short write's rest was lost in silence (rc 0)
    _State.stdout_start = stdout_offset()  # where the rows begin, for a write that fails part-way (whole_rows)
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code == 0:
            if os.environ.get("WORLD_SIZE"):  # only then: the import stays off every other command's exit
                from embedrec.device import active

                if active():  # a torchrun rank that finished: no interpreter teardown either
                    _leave(0, exit_handlers=True)
            # done, and said: a SIGTERM or Ctrl-C now (the interpreter's teardown of torch and pandas took a
            # second, with the default handlers back) made a finished, published command exit 143 or 130 in
            # silence (a red team); it is ignored, and the process leaves at once
            import signal

            for stream in (sys.stdout, sys.stderr):  # first, still stoppable: a reader that does not read (a review)
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            _leave(0, exit_handlers=True)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        _leave(code)


def _leave(code: int, exit_handlers: bool = False) -> None:
    """Flush and leave at once (``os._exit``), without the interpreter's teardown; ``exit_handlers``: run the
    atexit handlers first (a torchrun rank whose command succeeded). Under load,
    gloo's and the native thread pools' threads torn down with a finished rank aborted it ("terminate called
    without an active exception", about 1 in 10 two-rank test runs with the CPU oversubscribed), which torchrun
    reports as a failed job."""
    import atexit
    import logging
    import os
    import sys

    if exit_handlers:
        atexit._run_exitfuncs()  # no public equivalent; the handlers run as at a normal exit
        if code == 0 and "embedrec.distributed" in sys.modules:  # only a process that joined a group waited
            from embedrec.distributed import interrupted_at_exit

            if interrupted_at_exit():
                code = 130  # Ctrl-C while the rank waited for the others (distributed._finish)
    if not exit_handlers and "embedrec.distributed" in sys.modules:
        from embedrec.distributed import leaving

        leaving()  # a torchrun rank gone with its line, not killed outright, for the ranks that lose it (the atexit
        # handlers, distributed._finish's among them, are not run here)
    util = sys.modules.get("multiprocessing.util")
    if util is not None and not exit_handlers:  # what multiprocessing's own exit handler frees first: its named
        try:  # semaphores (a tune-dims pool's, tqdm's lock), else its resource tracker, outliving this process,
            util._run_finalizers(0)  # says "There appear to be 5 leaked semaphore objects" after the one line
        except Exception:  # no public equivalent; never worth a traceback on the way out
            pass
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _closed_streams() -> None:
    """A standard stream the shell closed (``>&-``, ``<&-``): Python leaves it None. Its descriptor is held on
    /dev/null, so no file opened later takes it (a native library's write to fd 2 would land in that file).
    A closed stdout is one line and exit 1 before any work (stderr closed too: exit 1, nothing said); a closed
    stderr only silences messages; a closed stdin stays None and is refused where '-' reads it."""
    import os
    import sys

    closed = {fd: getattr(sys, name) is None or _bad_fd(getattr(sys, name))
              for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr"))}
    for fd in (fd for fd, c in closed.items() if c):
        try:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        except OSError:
            pass
    if closed[0]:
        sys.stdin = None
    if closed[2]:
        sys.stderr = open(os.devnull, "w")
    if closed[1]:
        if not closed[2]:
            print("error: standard output is closed (>&-); send it to a file or to /dev/null instead",
                  file=sys.stderr, flush=True)
        os._exit(1)


def _bad_fd(stream) -> bool:
    """Whether a standard stream's descriptor is closed (a stream without one, CliRunner's, is not)."""
    import errno
    import os

    try:
        os.fstat(stream.fileno())
    except OSError as e:
        return e.errno == errno.EBADF
    except ValueError:
        return False
    return False
