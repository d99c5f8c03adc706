"""The library's progress bars: tqdm on stderr, drawn only where the caller asks for them (a ``progress`` flag;
the CLI's is cli.app.progress_enabled: a terminal with a width, no -q). Every bar of a count goes through
:func:`counted`: evaluate.users_bar's users ranked, a publish's bytes written and hashed and movies indexed,
update-users' users solved, train's blends and lists weighed, its tables drawn and rows solved, recommend --users'
users answered, an IVF index's k-means iterations, ingest's bytes or rows parsed and rows written (:func:`stages`:
its named stages between them).
The library never prints: a long step without a
count to show says what it does in a log line instead (the ``embedrec`` logger's INFO, which -q silences too).
tqdm is imported only where a bar is drawn."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator

INGEST_DELAY_S = 2.0  # seconds before one of ingest's bars is first drawn: a step that ends sooner shows none
REDRAW_S = 1.0  # seconds between two frames of a stages bar while a stage runs (its elapsed time going on)


@contextlib.contextmanager
def counted(desc: str | None, total: int | None, unit: str, *, leave: bool = True,
            scale: bool = False, delay: float = 0.0) -> Iterator[Callable[[int], object] | None]:
    """A bar named ``desc`` over ``total`` ``unit``s; yields its update (called with how many more are done, and
    optionally ``note``: a text shown after the rate, as '12,345 users answered' beside the bytes read), or None
    where ``desc`` is None (the caller's progress off: no bar, nothing imported); ``draw=True``: the frame is drawn
    now, once the bar is past its ``delay`` (a note that must not wait for the next update: :func:`stages`). ``total`` None: a count with
    no total known ahead, shown as 'DESC (UNIT): N [elapsed]' (``unit`` then plural). ``leave``: the bar stays once
    its step is over (False: cleared then, as the steps of a publish clear theirs, whose outcome the lines after
    them say, its count as it ended drawn first: :func:`last_frame`); ``scale``: counts shown as k, M, G (bytes);
    ``delay``: seconds before the bar is first drawn (a step that ends sooner draws and clears nothing)."""
    if desc is None:
        yield None
        return
    from tqdm import tqdm

    shape = "{desc} ({unit}): {n_fmt} [{elapsed}]" if total is None else None
    with tqdm(total=total, desc=desc, unit=unit, leave=leave, unit_scale=scale, bar_format=shape,
              delay=delay) as bar:
        def tick(n: int = 1, note: str | None = None, draw: bool = False):
            if note is not None:
                bar.set_postfix_str(note, refresh=False)  # (drawn with the count, at most every 0.1 s)
            out = bar.update(n)
            if draw and not out and not bar.disable and bar._time() >= bar.start_t + bar.delay:
                bar.refresh()  # (``draw``: now, though the last frame was drawn less than 0.1 s ago)
                bar.last_print_n, bar.last_print_t = bar.n, bar._time()  # (drawn: tqdm clears it as it closes)
            return out

        try:
            yield tick
        finally:
            if not leave:
                last_frame(bar)


def last_frame(bar) -> None:
    """Draw ``bar``'s count as it is now where its last frame shows less, before a bar that is not left clears
    itself: tqdm draws at most every 0.1 s and draws no closing frame for such a bar, so its last frame stopped
    short of what was done (a scale review: 'solving users' at 2,787/3,000, 'writing the model' at 589M/628M,
    'HNSW top-K' at 59,800/60,000, each then cleared)."""
    if bar.disable or bar.last_print_t < bar.start_t + bar.delay:  # (still in its delay: nothing drawn to clear)
        return
    if bar.n != bar.last_print_n:
        bar.refresh()


def step(desc: str | None, total: int | None, unit: str, *, scale: bool = False, delay: float = 0.0):
    """:func:`counted` for one step of a longer command (its bar cleared as the step ends)."""
    return counted(desc, total, unit, leave=False, scale=scale, delay=delay)


@contextlib.contextmanager
def stages(desc: str | None, total: int, *, delay: float = 0.0) -> Iterator[Callable[[str], None] | None]:
    """A bar over a job's ``total`` named stages (a :func:`step`'s: cleared as the job ends), for stages without a
    count of their own to show (a whole column sorted or hashed at once); yields ``begin(name)``, called as each
    stage begins: the one before it is counted done and ``name`` is shown after the count ('2/4 stages [00:03]
    splitting 5,000,000 ratings'), so a frame drawn while a stage runs names it; None where ``desc`` is None.
    The last stage is counted done as the job ends without an error. ``delay``: as :func:`counted`'s. tqdm draws
    a frame only as a count changes, so a thread draws the bar again every :data:`REDRAW_S` seconds while a stage
    runs: its first frame at the delay, its elapsed time going on through a long stage (a first-hour review: an
    8M-row Parquet ingest showed nothing for 11 s, the bar first drawn as its third stage began)."""
    import threading

    with step(desc, total, "stage", delay=delay) as tick:
        if tick is None:
            yield None
            return
        begun, done, lock = [], threading.Event(), threading.Lock()

        def begin(name: str) -> None:
            with lock:
                tick(1 if begun else 0, note=name, draw=True)  # (the name drawn as it begins: it may be long)
                begun.append(name)

        def redraw() -> None:
            while not done.wait(min(REDRAW_S, max(delay, 0.05))):
                with lock:
                    if begun:
                        tick(0, draw=True)

        drawer = threading.Thread(target=redraw, name="embedrec-stages", daemon=True)
        drawer.start()
        try:
            yield begin
        finally:
            done.set()
            drawer.join()
        if begun:
            tick(1)


def ticking(items: Iterable, tick: Callable[[int], object] | None) -> Iterator:
    """``items``, ``tick(1)`` called as the loop is done with each (its body run, or left by a ``continue``);
    ``tick`` None (no bar): ``items`` as they are."""
    for item in items:
        yield item
        if tick is not None:
            tick(1)


def counting(fn: Callable, tick: Callable[[int], object] | None) -> Callable:
    """``fn``, ``tick(1)`` called as each call of it returns; ``tick`` None (no bar): ``fn`` itself."""
    if tick is None:
        return fn

    def counted_call(*args, **kwargs):
        out = fn(*args, **kwargs)
        tick(1)
        return out
    return counted_call


class _CountedRaw(io.RawIOBase):
    """A binary file's reads, each one's bytes ticked as it returns (:func:`counting_reader`)."""

    def __init__(self, fh, tick: Callable[[int], object]) -> None:
        super().__init__()
        self._fh, self._tick = fh, tick

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._fh.readinto(buffer)
        if n:
            self._tick(n)
        return n

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()


def counting_reader(fh, tick: Callable[[int], object] | None):
    """``fh`` (a binary file open for reading, or a BytesIO), ``tick(n)`` called with the bytes each read of it
    returns; ``tick`` None (no bar): ``fh`` itself. A parser that reads it block by block (pandas' C engine, 256 KiB
    at a time) is counted as it takes its input in: the bar is at most one block ahead of the rows parsed, and
    reaches the file's size as the parse reads its last block. (A path handed to the parser instead is read
    however it reads it, in threads over a mapped file for pandas' parallel parse: nothing to count.)"""
    return fh if tick is None else _CountedRaw(fh, tick)


class Restartable:
    """A bar's update (``update``) that counts what it was given, so that ``restart()`` takes it back: a step that
    starts over (a table read again) shows its own progress, never more than its total."""

    def __init__(self, update: Callable[[int], object]) -> None:
        self._update, self.done = update, 0

    def __call__(self, n: int) -> None:
        self.done += n
        self._update(n)

    def restart(self) -> None:
        if self.done:
            self._update(-self.done)
            self.done = 0
