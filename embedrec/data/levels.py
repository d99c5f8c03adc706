"""The values a discrete rating scale takes (its levels: 1-5 by whole stars, 0.5-5 by halves) and its step, the
least gap between two: ingest's rule for a lone extreme value (data/ratings.py), and the rule a new rating meets
at serving (a ``--rated`` value, update-users' file: serve/foldin.py, user_update.py), which warns of one off the
step (4.7 on a half-star scale). numpy only: serving imports this."""

from __future__ import annotations

import numpy as np

MAX_LEVELS = 20  # distinct ratings of a discrete scale (1-5: 5; 0.5-5 by halves: 10; 1-10: 10)
TOLERANCE = 1e-4  # of a step: float32 ratings of steps of 0.1 read 0.09999996 to 0.10000002


def scale_step(levels) -> float | None:
    """The step of a discrete scale whose distinct values are ``levels`` (sorted): the least gap between two;
    None with fewer than two, or more than MAX_LEVELS (counts or other continuous values, which have none)."""
    levels = np.asarray(levels, np.float64)
    if not 2 <= levels.size <= MAX_LEVELS:
        return None
    return float(np.diff(levels).min())


def histogram_levels(histogram: dict | None) -> list[float] | None:
    """The levels of a dataset's ``rating_histogram`` (its manifest's: {'4.5': count, ...}), sorted, where they
    are those of a discrete scale (:func:`scale_step`); else None."""
    try:
        levels = sorted(float(k) for k in (histogram or {}))
    except (TypeError, ValueError):
        return None
    return levels if scale_step(levels) is not None and all(np.isfinite(levels)) else None


def off_step(values, levels) -> np.ndarray:
    """Per value of ``values``, whether it is off the step of the scale of ``levels`` (:func:`scale_step`): not the
    lowest level plus a whole number of steps (4.7 on a 0.5-5 scale by halves; 4.5 is on it, whether or not a
    training rating was 4.5). None off it where the levels have no step or are not on their own grid, and never a
    value that is one of the levels."""
    r = np.asarray(values, np.float64)
    levels = np.asarray(levels, np.float64)
    step = scale_step(levels)
    if step is None or step <= 0 or _off(levels, levels, step).any():
        # no step, or levels off their own grid (event weights 0.2, 0.5, 1; a stray 4.7 among half stars): no
        # scale to hold a value to (a code review: 1, a level itself, was said to be off 'steps of 0.3')
        return np.zeros(r.shape, bool)
    with np.errstate(invalid="ignore"):
        return _off(r, levels, step) & ~np.isclose(r[..., None], levels).any(axis=-1)


def _off(r: np.ndarray, levels: np.ndarray, step: float) -> np.ndarray:
    """Whether each of ``r`` is off the grid of ``levels[0]`` plus whole steps."""
    k = (r - float(levels[0])) / step
    with np.errstate(invalid="ignore"):
        return np.abs(k - np.round(k)) > TOLERANCE * (1 + np.abs(k))


def step_said(levels) -> str:
    """The scale of ``levels`` in words, for a warning of a value off its step: 'its training ratings go from 0.5
    to 5 in steps of 0.5'; two levels, 'its training ratings are 1 and 5'."""
    if len(levels) == 2:
        return f"its training ratings are {levels[0]:g} and {levels[1]:g}"
    return f"its training ratings go from {levels[0]:g} to {levels[-1]:g} in steps of {scale_step(levels):g}"
