"""The CLI's log lines: a handler that draws around the progress bars, and the heartbeat."""

from __future__ import annotations

import logging
import os
import sys
import time

import click

from embedrec.errors import (
    TermsFilter,
)

log = logging.getLogger("embedrec")



class _BarAwareHandler(logging.StreamHandler):
    """Log lines go above a live tqdm bar (tqdm.write) instead of into it; tqdm is never imported for this. A bar
    still in its delay (bars.counted's ``delay``: nothing drawn yet) is left undrawn: tqdm.write draws every bar
    again after the line, and a bar so drawn was never cleared (tqdm clears only a bar it drew itself; a review:
    ingest's 'preparing' bar, drawn by a note said 0.3 s into its 2 s delay, stayed in front of the summary)."""

    last = 0.0  # time.monotonic() of the last line written (_Heartbeat's)

    def emit(self, record):
        self.last = time.monotonic()
        tq = getattr(sys.modules.get("tqdm"), "tqdm", None)  # (None while another thread imports it: a review
        # saw the heartbeat's line fail on the half-made module)
        if tq is not None and getattr(tq, "_instances", None):
            waiting = [b for b in list(tq._instances) if not b.disable and b.delay and  # noqa: SLF001
                       b.last_print_t < b.start_t + b.delay]
            for b in waiting:  # (a disabled bar is neither cleared nor drawn by tqdm.write)
                b.disable = True
            try:
                tq.write(self.format(record), file=self.stream)
            except Exception:
                self.handleError(record)
            finally:
                for b in waiting:
                    b.disable = False
            return
        super().emit(record)


# where stderr is no terminal (a log file, CI, nohup), so no bar is drawn: a line after this long without one, that
# the command is still working and how long it has (a first-hour review: train was silent for 69 s, then 100 s,
# in a log); EMBEDREC_HEARTBEAT_S sets the seconds (0: none). Not for recommend and predict, whose silence is an
# input that has not come yet
HEARTBEAT_S = 60.0


HEARTBEAT_ENV = "EMBEDREC_HEARTBEAT_S"


class _Heartbeat:
    """A daemon thread that says, through ``handler``'s logger, that the command is still working once no line
    has been written for ``every`` seconds (then again each ``every`` seconds of silence), until :meth:`stop`."""

    _current: _Heartbeat | None = None

    def __init__(self, handler: _BarAwareHandler, every: float):
        import threading

        self.handler, self.every, self.started = handler, every, time.monotonic()
        handler.last = self.started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedrec-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(min(self.every, 1.0)):
            now = time.monotonic()
            if now - self.handler.last >= self.every and not self._stop.is_set():
                log.info("... still working (%s since the line above, %s since the command began)",
                         _duration(now - self.handler.last), _duration(now - self.started))

    def stop(self) -> None:
        self._stop.set()

    @classmethod
    def start(cls, handler: _BarAwareHandler, quiet: bool) -> None:
        """Stop the one running (a command before this one in the process), and start one where it applies."""
        if cls._current is not None:
            cls._current.stop()
            cls._current = None
        try:
            every = float(os.environ.get(HEARTBEAT_ENV, HEARTBEAT_S))
        except ValueError:
            every = HEARTBEAT_S
        ctx = click.get_current_context(silent=True)
        name = ctx.command.name if ctx is not None else None
        if quiet or not every > 0 or name in STREAMING or sys.stderr is None or sys.stderr.isatty():  # (nan: none)
            return
        cls._current = cls(handler, every)


def _duration(seconds: float) -> str:
    """'45 s', '2 min 5 s', '1 h 3 min'."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _setup_logging(quiet: bool, verbose: bool) -> None:
    log.handlers.clear()
    for f in list(log.filters):
        log.removeFilter(f)
    log.addFilter(TermsFilter(cli=True))  # log lines name options as flags (--set train.lr=0.01, --overwrite)
    handler = _BarAwareHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    _Heartbeat.start(handler, quiet)


STREAMING = ("recommend", "predict")  # answer as their input comes: stdout holds the rows answered before a Ctrl-C
