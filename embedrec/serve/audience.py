"""The users most likely to take to a movie (``Model.audience``, ``recommend --audience``): recommend's question
turned round. Each user's score for the movie is ``predict``'s for the pair, the one its own list gives it (<p_u,
q_m> + b_m, plus c_u z_m for a user update-users added with the new users' prior, whose list sums it another way,
to the last float32 bit; plus an explicit model's mu + b_u, clipped to its scale), best first, equal scores in
user row order (an explicit model's users tied at its scale's top by the prediction before the clip, as a user's
list orders its movies); the users who rated the movie (or a twin of it: the same film under another id) left out
unless ``include_seen``, as recommend leaves the movie out of their lists; a user without a trained vector (no training rating) never listed: nothing to score it from.
implicit answers it only by hand (its issues #322 and #492: ``item_factors[i] @ user_factors.T``, the raters left
in). One matrix-vector product over the user table a movie, then the candidates near the cut scored again pair by
pair, so a listed score equals ``predict``'s for the pair. numpy only.
"""

from __future__ import annotations

import numpy as np

from embedrec.sparse import topk_of_row
from embedrec.verify import check_finite

# the relative margin under the k-th product score within which users are scored again pair by pair: a matrix-vector
# product's float32 sums and a pair's own (factors.pair_dots) differ in the last bits, never by this much
MARGIN = 1e-4


def raters(engine, rows: np.ndarray) -> np.ndarray:
    """The user rows (sorted, each once) whose seen movies hold any of movie ``rows``: the run's seen pairs (train
    and valid, those rated below data.min_rating, those update-users added; the test split is held out), one pass
    over them."""
    idx = np.asarray(engine.seen_idx)
    hit = np.zeros(idx.shape, bool)
    for r in np.asarray(rows, np.int64).tolist():  # a movie and its twins: a compare each (np.isin's table or hash
        hit |= idx == r                             # cost 5-25x that at 100M pairs)
    at = np.flatnonzero(hit)
    if not at.size:
        return np.zeros(0, np.int64)
    users = np.searchsorted(np.asarray(engine.seen_ptr), at, side="right") - 1  # (ascending, as the positions)
    return users[np.r_[True, users[1:] != users[:-1]]].astype(np.int64)


def raters_each(engine, queries: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`raters` of each of ``queries`` (movie rows: a movie and its twins) from one pass over the seen pairs
    (``np.isin`` of them all), grouped by movie: many movies' audiences (``--audience @FILE``) read the 100M pairs
    of a large run once, not once a movie."""
    from embedrec.sparse import unique

    idx = np.asarray(engine.seen_idx)
    want = unique(np.concatenate([np.asarray(q, np.int64) for q in queries]))
    at = np.flatnonzero(np.isin(idx, want.astype(idx.dtype)))
    users = np.searchsorted(np.asarray(engine.seen_ptr), at, side="right") - 1
    movies = idx[at].astype(np.int64)
    order = np.argsort(movies, kind="stable")
    movies, users = movies[order], users[order].astype(np.int64)
    out = []
    for q in queries:
        q = np.asarray(q, np.int64)
        lo, hi = np.searchsorted(movies, q, "left"), np.searchsorted(movies, q, "right")
        out.append(unique(np.concatenate([users[a:b] for a, b in zip(lo.tolist(), hi.tolist())])) if q.size else
                   np.zeros(0, np.int64))
    return out


class _Table:
    """What every movie's audience reads of the users: the user table, the rows that are zero (no vector: made once
    per opened model, kept on it), each user's prior multiplier c_u (None: none has one;
    Recommender.user_priors, kept too) and an explicit model's mu + b_u."""

    def __init__(self, engine):
        f = engine.factors
        self.P = np.asarray(engine.P)
        kept = getattr(engine, "_zero_users", None)
        if kept is None or kept[0] is not engine.P:
            kept = engine._zero_users = (engine.P, ~self.P.any(axis=1))
        self.zero = kept[1]
        self.c = engine.user_priors()
        self.offset = f.user_offset(np.arange(self.P.shape[0], dtype=np.int64)) if f.explicit else None


def audience_of(engine, row: int, k: int, table: _Table, allowed: np.ndarray | None = None,
                include_seen: bool = False, rated: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` user rows whose lists score movie ``row`` highest and their scores (float32 for a ranking model,
    float64 predicted ratings for an explicit one, as ``predict`` gives them), best first, equal scores in row order.
    ``allowed``: the only user rows it may list (None: every user); ``include_seen``: the movie's raters too;
    ``rated``: its raters found already (:func:`raters_each`), else found here."""
    f = engine.factors
    q = np.asarray(f.movie[row], np.float32)
    if not np.isfinite(q).all() or (f.movie_bias is not None and not np.isfinite(f.movie_bias[row])):
        engine._refuse_movie(row)  # a damaged movie row: refused as a list holding it is
    s = np.asarray(table.P @ q, np.float64)
    if f.movie_bias is not None:
        s += float(f.movie_bias[row])
    if table.c is not None:
        s += table.c * float(engine.prior_z[row])
    if table.offset is not None:
        s = f.clip(s + table.offset)
    out = table.zero.copy()
    if not include_seen:
        out[rated if rated is not None else raters(engine, _with_twins(engine, row))] = True
    if allowed is not None:
        keep = np.zeros(out.size, bool)
        keep[allowed] = True
        out |= ~keep
    s[out] = -np.inf
    top, vals = topk_of_row(s, k)
    top, vals = top[top >= 0], vals[top >= 0]
    if not top.size:
        return top, np.zeros(0, np.float64 if f.explicit else np.float32)
    if not np.isfinite(vals).all():  # a NaN user row (re-sealed after an edit): named, never listed
        bad = top[~np.isfinite(vals)]
        check_finite(engine.run, table.P[bad], lambda i: f"user {engine.users.raw(int(bad[i]))}'s embedding is")
    # the users near the cut, each pair scored as predict and a list score it (its own float32 sum), then ranked
    cut = float(vals[-1]) if top.size == k else -np.inf
    near = np.flatnonzero(s >= cut - MARGIN * max(1.0, abs(cut))) if np.isfinite(cut) else top
    movies = np.full(near.size, row, np.int64)
    exact = f.predict(near, movies)
    offsets = engine.prior_offsets(near, movies)
    if offsets is not None:
        exact = exact + offsets
    # an explicit model's users tied at its scale's top are ordered by the prediction before the clip, as a user's
    # list orders its movies (serve.recommender.exact_scores: a usability review found 86 users at 5.0 taken in row
    # order); the scores shown stay predict's
    ranked = _unclipped(f, near, row) if f.explicit else exact
    order = np.lexsort((near, -ranked))[:k]
    users, scores = near[order], exact[order]
    return users, scores if f.explicit else scores.astype(np.float32)


def _unclipped(f, users: np.ndarray, row: int) -> np.ndarray:
    """An explicit model's predictions of ``users`` for movie ``row`` before the clip to its scale: predict's
    terms, summed as it sums them (factors.pair_dots over the same rows, then b_m, then mu + b_u)."""
    from embedrec.model.factors import pair_dots

    p = pair_dots(np.take(f.user, users, axis=0), np.take(f.movie, np.full(users.size, row, np.int64), axis=0))
    if f.movie_bias is not None:
        p += float(f.movie_bias[row])
    return p + f.user_offset(users)


def audience(engine, rows, k: int, allowed: np.ndarray | None = None,
             include_seen: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """:func:`audience_of` each movie row of ``rows`` (checked to have training ratings: a movie without them has
    nothing the users' vectors could be scored against), the users' table read once for them all."""
    rows = np.asarray(rows, np.int64)
    untrained = rows[engine.untrained[rows]]
    if untrained.size:
        raise engine.untrained_movies(untrained, "about who would like it", "a movie with training ratings")
    table = _Table(engine)
    rated = [None] * rows.size
    if not include_seen and rows.size > 2:  # several movies: their raters from one pass over the seen pairs
        rated = raters_each(engine, [_with_twins(engine, int(r)) for r in rows.tolist()])
    got = [audience_of(engine, int(r), k, table, allowed, include_seen, rated[i]) for i, r in enumerate(rows.tolist())]
    return [g[0] for g in got], [g[1] for g in got]


def _with_twins(engine, row: int) -> np.ndarray:
    """Movie ``row`` and the rows of its twins (the same film under another id)."""
    return engine.catalogue.with_twins(np.zeros(1, np.int64), np.array([row]))[1]
