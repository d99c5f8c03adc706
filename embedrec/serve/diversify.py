"""More diverse lists on request (``recommend --diversify LAMBDA``, ``Model.recommend(diversify=)``): maximal
marginal relevance re-ranking (Carbonell & Goldstein 1998).

From a list's top ``POOL`` x k candidates, found through the same exclusions and filters as the list itself, the
movies are picked one at a time: each time the candidate with the largest

    lambda * s'_i - (1 - lambda) * max over the movies j already picked of cos(q_i, q_j)

where s' is the model's score rescaled to [0, 1] over the candidates (min to max) and cos the cosine of the two
movies' embeddings (rows of the movie factors, the bias no part of it; a zero row is like no movie). The first pick
is the top candidate; equal values go to the earlier candidate. Each listed movie keeps the model's own score, so a
diversified list is not in score order. lambda 1 (or None) is the model's list itself: no candidate beyond k is
asked for and nothing is re-ranked. numpy only: serving imports this.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from embedrec.errors import UsageError, shorten

POOL = 5  # candidates per listed place: the re-ranking picks k of the top POOL x k


def lambda_arg(value) -> float | None:
    """``diversify=`` (``--diversify``): None (off) or a number in (0, 1]; 1 is the model's own list, smaller
    more diverse. A UsageError naming the option otherwise."""
    if value is None:
        return None
    try:
        ok = not isinstance(value, (bool, str, bytes)) and 0 < float(value) <= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        shown = str(value) if isinstance(value, (int, float)) else repr(value)
        raise UsageError(f"«--diversify |diversify=»{shorten(shown, 30)}: give a number in (0, 1]: 1 is the model's "
                         "own list, smaller more diverse (e.g. 0.7)")
    return float(value)


def on(lam: float | None) -> bool:
    """Whether ``lam`` re-ranks (None and 1 leave the list as the model ranks it)."""
    return lam is not None and lam < 1


def pool(k: int, lam: float | None) -> int:
    """How many candidates a list of ``k`` is picked from: k itself where ``lam`` re-ranks nothing."""
    return k * POOL if on(lam) else k


def mmr(scores: np.ndarray, units: np.ndarray, k: int, lam: float) -> np.ndarray:
    """The positions (into the candidates, in the order picked) of the ``k`` movies maximal marginal relevance
    picks from candidates of ``scores`` (the model's, best first) and unit embedding rows ``units``, at
    ``lam``. Pure: numpy in, numpy out (:func:`mmr_rows` of one list)."""
    s = np.asarray(scores, np.float64).reshape(1, -1)
    if not s.size:
        return np.zeros(0, np.int64)
    at = mmr_rows(s, np.asarray(units, np.float64).reshape(1, s.shape[1], -1), k, lam)[0]
    return at[at >= 0]


def mmr_rows(scores: np.ndarray, units: np.ndarray, k: int, lam: float) -> np.ndarray:
    """:func:`mmr` of many lists at once: ``scores`` (lists x candidates, NaN where a list has fewer), ``units``
    (lists x candidates x dims); each row's picks, -1 past a list's own candidates. Every step is elementwise
    along a row, so a list's picks are the same alone as among others."""
    S = np.asarray(scores, np.float64)
    B, n = S.shape
    kk = min(int(k), n)
    out = np.full((B, max(kk, 0)), -1, np.int64)
    if kk <= 0 or B == 0:
        return out
    ok = ~np.isnan(S)
    lo = np.where(ok, S, np.inf).min(axis=1, keepdims=True)
    hi = np.where(ok, S, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    rel = np.where(span > 0, (S - lo) / np.where(span > 0, span, 1.0), 1.0)  # equal scores: all 1
    V = np.asarray(units, np.float64)
    near = np.zeros((B, n))  # each candidate's largest cosine to a movie picked (none yet: 0)
    free = ok.copy()
    every = np.arange(B)
    for j in range(kk):
        value = np.where(free, lam * rel - (1.0 - lam) * near, -np.inf)
        i = np.argmax(value, axis=1)  # the first of equal values: the better-ranked candidate
        has = free[every, i]  # (a list of fewer candidates has none left)
        out[has, j] = i[has]
        free[every[has], i[has]] = False
        # the candidates' cosines to the pick, as one batched product (BLAS; a red team: an elementwise product
        # and sum made k=100 take 40 s for 943 users)
        sim = (V @ V[every, i][:, :, None])[:, :, 0]
        near = sim if j == 0 else np.maximum(near, sim)
    return out


def unit(movie_table, rows: np.ndarray) -> np.ndarray:
    """The rows ``rows`` of the movie factors at unit length (zero rows stay zero), in float64; only those rows
    are read (a memory-mapped table stays on disk)."""
    v = np.asarray(movie_table[np.asarray(rows, np.int64)], np.float64).reshape(np.size(rows), -1)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


BLOCK = 1 << 21  # the lists re-ranked at once hold about this many candidate x dimension numbers (16 MB)


def rerank(movie_table, ids: list, scores: list, k: int, lam: float) -> tuple[list, list]:
    """Lists of candidates ((movie rows, scores) per list, best first) each re-ranked to its ``k`` by
    :func:`mmr_rows`, a block of lists at a time."""
    out_ids, out_scores = [], []
    n = max((np.size(i) for i in ids), default=0)
    d = int(np.shape(movie_table)[1]) if np.ndim(movie_table) == 2 else 1
    step = max(1, BLOCK // max(n * d, 1))
    for s0 in range(0, len(ids), step):
        part_ids = [np.asarray(i) for i in ids[s0:s0 + step]]
        sizes = np.array([i.size for i in part_ids])
        S = np.full((len(part_ids), n), np.nan)
        V = np.zeros((len(part_ids), n, d))
        filled = np.arange(n)[None, :] < sizes[:, None]
        if sizes.sum():
            S[filled] = np.concatenate([np.asarray(x, np.float64) for x in scores[s0:s0 + step]])
            V[filled] = unit(movie_table, np.concatenate(part_ids))
        picks = mmr_rows(S, V, k, lam)
        for i, sc, at in zip(part_ids, scores[s0:s0 + step], picks):
            at = at[at >= 0]
            out_ids.append(i[at])
            out_scores.append(np.asarray(sc)[at])
    return out_ids, out_scores


def lists(movie_table, lam: float | None, k: int, ask: Callable[[int], tuple[list, list]]) -> tuple[list, list]:
    """``ask(n)``'s lists ((movie rows per list, scores per list): the top n, through the caller's exclusions and
    filters), each re-ranked to ``k`` at ``lam`` from its top :func:`pool` candidates; ``ask(k)`` as it is where
    ``lam`` re-ranks nothing."""
    if not on(lam):
        return ask(k)
    ids, scores = ask(pool(k, lam))
    return rerank(movie_table, list(ids), list(scores), k, lam)


def one(movie_table, lam: float | None, k: int, ask: Callable[[int], tuple]) -> tuple:
    """:func:`lists` of a single list: ``ask(n)`` gives (movie rows, scores)."""
    ids, scores = lists(movie_table, lam, k, lambda n: tuple([x] for x in ask(n)))
    return ids[0], scores[0]
