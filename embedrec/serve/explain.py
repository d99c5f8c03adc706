"""Why an als user's score of a movie is what it is: the score split over the movies the user rated (Hu, Koren &
Volinsky 2008, section 5; implicit's ``explain``). numpy only.

An als user vector solves the user's half of the training objective (training.als; a new user's fold-in repeats
it, serve.foldin.fold_in)::

    A p = sum_j w_j q_j,    A = a0 s Q^T Q + sum_j w_j q_j q_j^T + reg (n + a0 N)^nu I

over the movies j the user rated (w_j: the confidence training gave each, training.als.confidence), so its score
of movie m is one term per rated movie::

    p . q_m = sum_j w_j (q_m^T A^-1 q_j).

Where the run adds recent popularity (training.trend) the served vector is p / d (d: the user's std of scores,
over its weight of the term) and the movie's bias beta z_m is added: each term is divided by d and the bias is
a part of its own. A known user's served vector is the few conjugate-gradient steps training took towards that
solve, not the solve itself (training.als.USER_STEPS): what it holds beyond the exact solve is the
``remainder``, a part of its own too (over every user's top 10 on ML-100K's default run, 1e-5 of the list's top
score at the median, 8e-5 at most; up to about 1e-2 where its users were re-solved from the fitted vectors at
another unobserved weight, train.als_user_unobserved other than 1, in USER_STEPS steps; a fold-in's is float
rounding), so the parts add up to the score ``predict`` gives for the pair.

An explicit model's new user is a ridge solve too (serve.foldin.fold_in): with x_j = [q_j, 1] and y_j its rating
less mu + b_j (less q_j . z on an SVD++ run, whose vector adds the implicit sum z = sum_j y'_j / sqrt(n))::

    [p, b_u] = A^-1 sum_j x_j y_j,    A = X^T X + reg n I,

so its score of movie m, mu + b_m + [q_m, 1] . [p + z, b_u], is mu + b_m (the ``bias`` part: the baseline) plus
one term per rated movie, y_j x_m^T A^-1 x_j (+ q_m . y'_j / sqrt(n)). A predicted rating is clipped to the
rating scale: what the clip takes off is a part of its own (``clip``), so the parts add up to that score too.
(Known users of an explicit model were fitted by gradient steps: no such split.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedrec.model.factors import UNTRAINED_BIAS, Factors, pair_dots
from embedrec.threads import blas_threads

# The linear algebra of an explanation (the movies' Gramian, a d x d solve) runs on one BLAS thread: OpenBLAS's own
# threads, started and left spinning for a few small products, cost a fresh `recommend --user 196 --explain` 0.15 s
# of CPU on a loaded 2-core machine (ML-100K, d 128; the work itself takes 5 ms), where limiting them costs ~10 ms
SERIAL = 1


@dataclass(frozen=True)
class UserSolve:
    """One user's solve: the rated movie ``rows`` and their ``weights`` w_j (float64), the matrix ``A``, the
    ``divisor`` d of the served vector (1 without recent popularity) and the served ``vector`` itself. An
    explicit model's new user (``user_bias`` its b_u, not None): ``weights`` are the residual ratings y_j, ``A`` is
    over [q_j, 1], and ``implicit`` (an SVD++ run's) the rated movies' y'_j / sqrt(n), whose sum the vector adds."""

    rows: np.ndarray
    weights: np.ndarray
    A: np.ndarray
    divisor: float
    vector: np.ndarray
    user_bias: float | None = None
    implicit: np.ndarray | None = None
    prior: tuple[float, np.ndarray] | None = None  # a new user's popularity prior (c, z_m): c z_m in each score
    # the low-pass block (training.lowpass): (d, w, a's rows of ``rows``): the solve is over the first d columns,
    # and each rated movie j adds w a_j . y_m, y_m the movie's last k columns (serve.foldin.lowpass_rows)
    lowpass: tuple[int, float, np.ndarray] | None = None


@dataclass(frozen=True)
class Split:
    """One movie's score in parts: ``score`` (the pair's score, as ``Factors.predict`` gives it), ``parts`` (each
    rated movie's term, in the order of the solve's rows), ``bias`` (the movie's bias: recent popularity where
    the run adds it; an explicit model's mu + b_m), ``clip`` (an explicit score's clip to the rating scale, 0
    within it), ``prior`` (a new user's popularity prior, c z_m: serve.prior) and ``remainder`` (score - clip - bias -
    prior - the parts' sum)."""

    movie: int
    score: float
    parts: np.ndarray
    bias: float
    remainder: float
    clip: float = 0.0
    prior: float = 0.0  # a new user's popularity prior's part of the score (serve.prior), 0 elsewhere


def split_scores(solve: UserSolve, factors: Factors, movies: np.ndarray) -> list[Split]:
    """The score of each movie row of ``movies`` for the user of ``solve``, split over the user's rated movies:
    one d x d solve against all the movies at once (A^-1 [q_m ...]), then w_j q_j . (A^-1 q_m) / d."""
    movies = np.asarray(movies, dtype=np.int64)
    if not movies.size:
        return []
    if solve.user_bias is not None:
        return _split_explicit(solve, factors, movies)
    Qm = np.asarray(np.take(factors.movie, movies, axis=0), dtype=np.float64)
    Qs = np.asarray(np.take(factors.movie, solve.rows, axis=0), dtype=np.float64)
    d = Qm.shape[1] if solve.lowpass is None else solve.lowpass[0]  # the solve's columns (the block's after them)
    with blas_threads(SERIAL):  # a d x d solve: BLAS's threads would cost more to start than they save (SERIAL)
        Z = np.linalg.solve(solve.A, Qm[:, :d].T) if solve.rows.size else np.zeros((d, movies.size))
        parts = (Qs[:, :d] @ Z).T * (np.asarray(solve.weights, np.float64) / solve.divisor)[None, :]  # movies x
        if solve.lowpass is not None:  # rated; each rated movie's part of the low-pass block, w a_j . y_m
            parts = parts + (solve.lowpass[2] @ Qm[:, d:].T).T * (solve.lowpass[1] / solve.divisor)
    vector = np.asarray(solve.vector, dtype=np.float32)
    scores = pair_dots(np.repeat(vector[None, :], movies.size, axis=0),
                       np.asarray(np.take(factors.movie, movies, axis=0), np.float32))
    bias = np.zeros(movies.size) if factors.movie_bias is None else \
        np.asarray(np.take(factors.movie_bias, movies), np.float64)
    prior = np.zeros(movies.size) if solve.prior is None else \
        solve.prior[0] * np.asarray(np.take(solve.prior[1], movies), np.float64)  # a new user's (serve.prior)
    scores = scores + bias + prior  # Factors.predict's number for the pair (an implicit model's), the prior's added
    return [Split(int(m), float(s), p, float(b), float(s - b - r - p.sum()), prior=float(r))
            for m, s, p, b, r in zip(movies, scores, parts, bias, prior)]


def _split_explicit(solve: UserSolve, factors: Factors, movies: np.ndarray) -> list[Split]:
    """split_scores for an explicit model's new user: y_j x_m^T A^-1 x_j (+ q_m . y'_j / sqrt(n)) per rated movie,
    mu + b_m the bias, the clip to the rating scale apart. A movie no training rating named scores mu + b_u (as
    Factors.predict scores it): its x_m is [0, 1], and it has no b_m."""
    Qm32 = np.asarray(np.take(factors.movie, movies, axis=0), np.float32)
    bm = np.zeros(movies.size) if factors.movie_bias is None else \
        np.asarray(np.take(factors.movie_bias, movies), np.float64)
    trained = bm > UNTRAINED_BIAS
    bm = np.where(trained, bm, 0.0)
    Qm = np.where(trained[:, None], np.asarray(Qm32, np.float64), 0.0)
    Xm = np.hstack([Qm, np.ones((movies.size, 1))])
    Xs = np.hstack([np.asarray(np.take(factors.movie, solve.rows, axis=0), np.float64),
                    np.ones((solve.rows.size, 1))])
    with blas_threads(SERIAL):  # (SERIAL)
        Z = np.linalg.solve(solve.A, Xm.T) if solve.rows.size else np.zeros((Xm.shape[1], movies.size))
        parts = (Xs @ Z).T * np.asarray(solve.weights, np.float64)[None, :]  # movies x rated
        if solve.implicit is not None:
            parts = parts + Qm @ np.asarray(solve.implicit, np.float64).T
    vector = np.asarray(solve.vector, dtype=np.float32)
    dots = pair_dots(np.repeat(vector[None, :], movies.size, axis=0), Qm32)
    # Factors.predict's number for the pair before its clip: mu + b_u, and q_m . p + b_m for a trained movie
    raw = factors.global_mean + float(solve.user_bias) + np.where(trained, dots + bm, 0.0)
    scores = factors.clip(raw)
    bias = factors.global_mean + bm
    return [Split(int(m), float(s), p, float(b), float(r - b - p.sum()), float(s - r))
            for m, s, r, p, b in zip(movies, scores, raw, parts, bias)]


def top_parts(parts: np.ndarray, n: int) -> np.ndarray:
    """The positions of the ``n`` largest parts, largest first (equal ones in the solve's row order)."""
    order = np.lexsort((np.arange(parts.size), -parts))
    return order[:n]


def because_text(items: list[dict] | None) -> str | None:
    """``--explain``'s cell in a table, CSV or TSV (results.Explanation.because's items): each named movie's id,
    title and share of the score, '50 Star Wars (1977) 31%; 181 Return of the Jedi (1983) 12%' (its contribution,
    +0.012, where the score is not above 0 and a share says nothing); an explicit model's baseline and clip too,
    'baseline 4.64 (97%); 50 Star Wars 3.4%; ...; clip -0.21'; None (an empty cell) for a list of popular
    movies."""
    if items is None:
        return None

    def share(it: dict) -> str:
        s = it["share"]
        if s is None:
            return f"{it['contribution']:+.3g}"
        return f"{100 * s:.0f}%" if abs(s) >= 0.095 else f"{100 * s:.1f}%"

    def said(it: dict) -> str:
        term = it.get("term", "rated")
        if term == "popularity":  # a new user's popularity prior (serve.prior)
            return "popular movies " + share(it)
        if term == "movie_bias":  # the movie's recent popularity (train.als_trend)
            return "movie bias " + share(it)
        if term == "baseline":
            return f"baseline {it['contribution']:.3g}" + (f" ({share(it)})" if it["share"] is not None else "")
        if term != "rated":  # the clip
            return f"{term} {it['contribution']:+.3g}"
        return " ".join(str(x) for x in (it["movie_id"], it["title"], share(it)) if x is not None)

    return "; ".join(said(it) for it in items)
