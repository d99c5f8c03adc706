"""The library's progress bars: tqdm on stderr, drawn only where the caller asks for them (a ``progress`` flag;
the CLI's is cli.app.progress_enabled: a terminal with a width, no -q). Every bar of a count goes through
:func:`counted`: evaluate.users_bar's users ranked, a publish's bytes written and hashed and movies indexed,
update-users' users solved, train's blends and lists weighed. The library never prints: a long step without a
count to show says what it does in a log line instead (the ``embedrec`` logger's INFO, which -q silences too).
tqdm is imported only where a bar is drawn."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator


@contextlib.contextmanager
def counted(desc: str | None, total: int | None, unit: str, *, leave: bool = True,
            scale: bool = False) -> Iterator[Callable[[int], object] | None]:
    """A bar named ``desc`` over ``total`` ``unit``s; yields its update (called with how many more are done), or
    None where ``desc`` is None (the caller's progress off: no bar, nothing imported). ``total`` None: a count with
    no total known ahead, shown as 'DESC (UNIT): N [elapsed]' (``unit`` then plural). ``leave``: the bar stays once
    its step is over (False: cleared then, as the steps of a publish clear theirs, whose outcome the lines after
    them say); ``scale``: counts shown as k, M, G (bytes)."""
    if desc is None:
        yield None
        return
    from tqdm import tqdm

    shape = "{desc} ({unit}): {n_fmt} [{elapsed}]" if total is None else None
    with tqdm(total=total, desc=desc, unit=unit, leave=leave, unit_scale=scale, bar_format=shape) as bar:
        yield bar.update


def step(desc: str | None, total: int | None, unit: str, *, scale: bool = False):
    """:func:`counted` for one step of a longer command (its bar cleared as the step ends)."""
    return counted(desc, total, unit, leave=False, scale=scale)


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
