"""A new user's popularity prior (``train.als_newuser_prior``): how much the most popular movies weigh in the list
of someone folded in from a few liked or rated movies.

A fold-in of one or three movies ranks their neighbourhood: the solve's unobserved term (a0 Q^T Q) whitens the
popular direction out of a short history, so the list is of niche neighbours, where the user's next movies are
mostly popular ones. On ML-100K (users split apart from the model; each tells N of its ratings at random and the
rest are the targets) the default model's fold-in scored NDCG@10 0.430 at N = 1 against 0.543 for the most
popular movies (BENCHMARKS.md, session 53). A new user's served score is therefore the model's plus a popularity
term whose weight falls as the history grows:

    score(m) = <p, q_m> + b_m + w(n) s z_m,

with z_m the movie's standardised log(1 + training count) over the trained movies, s the std of the user's model
scores over them, and w(n) (in standard deviations of the model's scores) read from a table over the numbers of
told movies :data:`TOLD` (:func:`weight`), which the selection chooses on valid (training.newuser_prior). Ranking
by it is ranking by z(model) + w z(popularity): the model's scale does not matter, and w = 0 is the fold-in alone.
Trained users' lists are never changed (their long histories had valid choose ``train.als_trend`` instead); a user
``update-users`` adds is a new user told its ratings once and for all, and is listed with the prior for the movies
in its solve (``Recommender.added_prior``), as is a user of the dataset without a training rating that it solves
(run_layout.SOLVED_AS_NEW).
"""

from __future__ import annotations

import math

import numpy as np

from embedrec.config_sections import NEWUSER_TOLD as TOLD  # the told counts the table holds a weight for
from embedrec.errors import UsageError

# a table's last weight (at TOLD[-1] movies) falls linearly in log n to 0 at this many told movies: a history
# that long is a trained user's, whose list has no prior. On ML-100K's users told 80% of their ratings
# (benchmarks/newusers.py, 5 seeds), a table holding 1-2 from 50 movies on served them 0.002-0.022 below the
# fold-in alone, users told 100 or more losing most (-0.075, SE 0.023, on one seed; session 54)
FADE_TO = 200


def weight(table, n: int) -> float:
    """w(n) of a table (a list of len(TOLD) weights, or one number for every n): linear in log n between the
    table's points, the first weight at n <= 1, the last at n = 50 falling linearly in log n to 0 at
    :data:`FADE_TO`. 0 for no movie."""
    if n <= 0 or table is None:
        return 0.0
    if isinstance(table, (int, float)):
        return float(table)
    if n >= TOLD[-1]:
        fade = 1.0 - math.log(n / TOLD[-1]) / math.log(FADE_TO / TOLD[-1])
        return float(table[-1]) * max(0.0, fade)
    for (a, wa), (b, wb) in zip(zip(TOLD, table), zip(TOLD[1:], table[1:])):
        if a <= n <= b:
            t = (math.log(n) - math.log(a)) / (math.log(b) - math.log(a))
            return float(wa + t * (wb - wa))
    return float(table[0])  # n < 1 is not reached (n is a count)


def given_weight(value) -> float:
    """A request's own weight (``recommend --prior``, ``recommend_new(prior=)``): a number from 0 to 1000, or
    'off' (0); UsageError otherwise ('auto' is the caller's: the run's table)."""
    if isinstance(value, str) and value.strip().lower() == "off":
        return 0.0
    try:
        w = float(value)
    except (TypeError, ValueError):
        w = float("nan")
    if isinstance(value, bool) or not 0 <= w <= 1000:
        raise UsageError(f"«--prior|prior=» {value!r:.40}: give auto (the run's weight for the number of movies "
                         "given), off (or 0: the movies' neighbourhood alone) or a weight from 0 to 1000")
    return w


def standard_popularity(counts: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """z_m: log(1 + count) standardised over the ``trained`` movies (a mask), 0 elsewhere (float64)."""
    x = np.log1p(np.maximum(np.asarray(counts, np.float64), 0.0))
    z = np.zeros(x.shape)
    if trained.any():
        v = x[trained]
        sd = v.std()
        z[trained] = (v - v.mean()) / (sd if sd > 0 else 1.0)
    return z


MOMENT_BLOCK = 1 << 16  # movies a block of :func:`spreads`' moments sums (float64: 64 MB at 128 dimensions)


def spreads(users: np.ndarray, movies: np.ndarray, bias: np.ndarray | None, trained: np.ndarray) -> np.ndarray:
    """The std over the ``trained`` movies of each user's model scores <p, q_m> + b_m, from the movies' moments (their
    mean and covariance, one pass over the movies in blocks) at O(d^2) a user, not a product with every movie: what
    :func:`scales` reads off the scores, to float rounding (float64 moments against the scores' float32 sums).
    An export's ``user_prior`` of 100,000 added users: seconds, where scoring every movie took minutes."""
    P = np.asarray(users, np.float64)
    d = P.shape[1]
    n = int(np.count_nonzero(trained))
    if n == 0 or P.shape[0] == 0:
        return np.zeros(P.shape[0])
    rows = np.flatnonzero(trained)
    m, M = np.zeros(d), np.zeros((d, d))
    bm = bb = 0.0
    mb = np.zeros(d)
    for a in range(0, rows.size, MOMENT_BLOCK):
        at = rows[a:a + MOMENT_BLOCK]
        Q = np.asarray(movies[at], np.float64)
        m += Q.sum(axis=0)
        M += Q.T @ Q
        if bias is not None:
            b = np.asarray(bias, np.float64)[at]
            bm, bb, mb = bm + b.sum(), bb + b @ b, mb + Q.T @ b
    m, M, bm, bb, mb = m / n, M / n, bm / n, bb / n, mb / n
    cov = M - np.outer(m, m)
    var = ((P @ cov) * P).sum(axis=1) + 2 * P @ (mb - m * bm) + (bb - bm * bm)
    return np.sqrt(np.maximum(var, 0.0))


def scales(scores: np.ndarray, trained: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """c = w s for each row of ``scores`` (users x movies, float64: a user's model scores over every movie) at its
    weight in ``weights``: the popularity term's multiplier, s the row's std over the ``trained`` movies (1 where
    they are all equal: the popular list alone then ranks, at any w > 0), 0 at a weight of 0."""
    weights = np.asarray(weights, np.float64)
    out = np.zeros(weights.size)
    on = weights > 0
    if not trained.any() or not on.any():
        return out
    some = scores if on.all() else scores[on]
    sd = (some if trained.all() else some[:, trained]).std(axis=1)  # (no copy where every movie is trained)
    out[on] = weights[on] * np.where(sd > 0, sd, 1.0)
    return out
