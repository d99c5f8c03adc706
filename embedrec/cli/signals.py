"""SIGTERM taken as Ctrl-C while a command works."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys

from embedrec.cli.state import _State
from embedrec.errors import (
    Terminated,
    signal_name,
    stop_signal,
)


def _signal_again(hook, pending: list, unraisable) -> None:
    """sys.unraisablehook while sigterm_as_interrupt's block runs: a stop (SIGTERM's Terminated, Ctrl-C's
    KeyboardInterrupt) raised where Python cannot raise it (a finalizer, matplotlib's weakref callbacks) is sent
    again to this process, so it stops the work at its next step (a red team: 'Exception ignored ... Terminated',
    a traceback, then the export went on to exit 0); anything else goes to ``hook``, Python's."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):  # (from a thread a moment later: sent from here, its
        import threading  # handler would run in this hook, which Python ignores too)

        again = threading.Timer(0.01, os.kill, (os.getpid(), stop_signal(unraisable.exc_value) or signal.SIGINT))
        again.daemon = True
        pending.append(again)
        again.start()
        return
    hook(unraisable)


class _SigtermState:
    """What sigterm_as_interrupt's handler does: raise Terminated, or after ``defer()`` (the work is published;
    only its report is left) note the signal, SIGINT's too, which ``came`` then says."""

    def __init__(self, handler=None) -> None:
        self.deferred = False
        self.came: str | bool = False  # after defer(): the signal's name
        self._handler = handler

    def defer(self) -> None:
        self.deferred = True
        if self._handler is not None:
            signal.signal(signal.SIGINT, self._handler)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM (and SIGHUP) raises ``errors.Terminated`` (a KeyboardInterrupt) in the main
    thread, so it
    takes Ctrl-C's way out (``train``, ``tune-dims``); once the block calls ``defer()`` on what it yields (the
    run is published), a SIGTERM or SIGINT waits for the block's end instead (``came``), so a finished run is not
    reported as killed. The previous handlers come back afterwards, except SIGTERM's in the process's own command
    (``cli.run``), which leaves next: a SIGTERM in that second is ignored, not a silent exit 143. Elsewhere than
    the main thread (where Python cannot install a handler) it does nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield _SigtermState()
        return

    def handler(signum, frame):
        if state.deferred:
            state.came = signal_name(signum)
            return
        raise Terminated(signum)

    state = _SigtermState(handler)
    # SIGHUP (a terminal or SSH session that hangs up) as SIGTERM: temporaries and locks go, the checkpoint stays,
    # one line (to a log file, where stderr was one), exit 129 (a review: the default action left no word)
    # (not where SIGHUP is ignored: nohup's promise, which a review found overridden; nor SIGTERM where the process
    # was started with it ignored, `trap '' TERM`: a review found it honoured after the first second)
    previous = tuple(signal.getsignal(sig) if signal.getsignal(sig) is signal.SIG_IGN else signal.signal(sig, handler)
                     if sig != signal.SIGINT else signal.getsignal(sig)
                     for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    hook, pending = sys.unraisablehook, []
    sys.unraisablehook = functools.partial(_signal_again, hook, pending)
    try:
        yield state
    finally:
        sys.unraisablehook = hook
        for again in pending:  # a stop sent again that the block outran: the work is done, not killed at exit
            again.cancel()
        # the process's own command leaves next: a SIGTERM in that second stays noted, not a kill (exit 0 for a
        # published run); Ctrl-C gets its handler back, so it can still cut a torchrun rank's wait at exit short
        keep = (signal.SIGTERM, signal.SIGHUP) if state.deferred and _State.process else ()
        for sig, was in zip((signal.SIGTERM, signal.SIGINT, signal.SIGHUP), previous):
            if sig not in keep:
                signal.signal(sig, signal.SIG_DFL if was is None else was)
