"""The ``embedrec`` console script (and ``python -m embedrec``): ``cli.run`` once the CLI's modules are in.

A Ctrl-C while they are still being imported (click and every command's module: the first ~0.1 s of the
process) leaves with exit 130 and the one line a later Ctrl-C gives, not Python's traceback; nothing has been
read or written by then. A SIGTERM or SIGHUP from here on is taken as Ctrl-C is (``errors.Terminated``): in the
imports, exit 143 or 129 with its line; later, where a command has not installed its own handling yet (a
train's torch import, a red team: 6 of 43 SIGTERMs in train's first seconds left with status -15 and no line),
the command's own way out of a Ctrl-C, said as terminated; so in ``cli.run``'s set-up and click's parsing of the
group's options (a pipeline review: a traceback, or click's 'Aborted!' with exit 1). A signal ignored when the
process started (SIGHUP under ``nohup``) stays ignored. Only the interpreter's own start-up and the package's
``__init__`` (two imports), before this module runs, are left to Python.
"""

import signal
import sys


def _terminated(signum, frame) -> None:
    from embedrec.errors import Terminated

    raise Terminated(signum)


def _take_stop_signals() -> None:
    """SIGTERM and SIGHUP raise ``errors.Terminated`` where their handler is still the default one."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _terminated)


def _stopped(e: KeyboardInterrupt) -> None:
    """Leave as a stop before any work: its one line, exit 130 (Ctrl-C) or 128 + the signal."""
    signum = getattr(e, "signum", 0)  # (errors.Terminated's; a plain Ctrl-C has none)
    try:
        from embedrec.errors import how_stopped

        sys.stderr.write(f"{how_stopped(signum)}: nothing half-written was left behind\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    raise SystemExit(128 + signum if signum else 130) from None


def main() -> None:
    _take_stop_signals()
    try:
        from embedrec.cli import run
    except KeyboardInterrupt as e:
        _stopped(e)
    try:
        run()
    except KeyboardInterrupt as e:  # in run's set-up before click's main (a pipeline review: a traceback, exit 1);
        _stopped(e)  # a command's own stop is said in the command (cli.app.Group.invoke) and leaves by SystemExit
