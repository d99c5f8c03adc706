"""What a trained model scores with, as plain numpy: one implementation of the scoring formula.

    score(u, m) = p_u . q_m + b_m                        (implicit models: a ranking score)
    score(u, m) = mu + b_u + b_m + p_u . q_m, clipped     (explicit models: a predicted rating)

Used by the Recommender (over a run's files or a model in memory) and by the exact top-K search; and the one
cosine top-k (:func:`cosine_topk`) that similar movies and similar users rank by. numpy only: no torch, no pandas,
no FAISS.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from embedrec.sparse import topk_fast, topk_from_scores, topk_of_row, unique
from embedrec.threads import available_cpus, settle

UNTRAINED_BIAS = -1000.0  # the bias a plain model's export gives a movie without training ratings (training.fit)

# predict's fallback column: which of the pair was not in the training data
FALLBACKS = ("none", "user_unknown", "movie_unknown", "both")
# an SVD++ run's y_j (implicit_movie.npy): a new user's fold-in adds their implicit sum, as training's users have
IMPLICIT_MOVIE = "implicit_movie"



def auto_dim(n_movies: int) -> int:
    """The classic starting point: the fourth root of the (movie) vocabulary size, at least 2."""
    return max(2, int(round(n_movies ** 0.25)))

@dataclass(frozen=True)
class Factors:
    user: np.ndarray                 # (n_users, d)
    movie: np.ndarray                # (n_movies, d)
    user_bias: np.ndarray | None     # (n_users,) explicit models with biases
    movie_bias: np.ndarray | None    # (n_movies,)
    global_mean: float = 0.0
    explicit: bool = False
    rating_scale: tuple[float, float] | None = None
    # an als run with the low-pass block (training.lowpass): a = D_I^-1/2 W (movies x k), whose rows over a new
    # user's movies give its block (serve.foldin.als_vector); the block's columns are the last k of each table
    lowpass_a: np.ndarray | None = None
    # ... and the als columns before it (solve.lowpass.d), which similar movies' cosine reads alone: the block's y
    # grows with a movie's popularity, and over all the columns similar movies lost (recall@10 0.1842 -> 0.1184 on
    # ML-100K; the same planted cluster 0.930 -> 0.803 on a synthetic set; BENCHMARKS.md, session 60)
    als_columns: int | None = None

    @classmethod
    def from_dict(cls, f: dict, explicit: bool, rating_scale=None) -> Factors:
        """From the dict ``train.factors`` returns (user_factors, movie_factors, user_bias, movie_bias, global_mean)."""
        return cls(f["user_factors"], f["movie_factors"], f.get("user_bias"), f.get("movie_bias"),
                   float(f.get("global_mean") or 0.0), explicit, tuple(rating_scale) if rating_scale else None,
                   f.get("lowpass_a"), (f.get("lowpass") or {}).get("d"))

    def __repr__(self) -> str:  # a notebook review: the default repr printed every array whole
        biases = ", biases" if self.user_bias is not None else ""
        kind = f"explicit {self.rating_scale[0]:g}-{self.rating_scale[1]:g}" if self.explicit and self.rating_scale \
            else "explicit" if self.explicit else "implicit"
        return (f"<Factors: {self.user.shape[0]:,} users x {self.movie.shape[0]:,} movies x dim "
                f"{self.movie.shape[1] if self.movie.ndim == 2 else '?'} ({self.movie.dtype}), {kind}{biases}>")

    @property
    def n_users(self) -> int:
        return self.user.shape[0]

    @property
    def n_movies(self) -> int:
        return self.movie.shape[0]

    def clip(self, scores: np.ndarray) -> np.ndarray:
        """Explicit scores are predicted ratings: clipped to the rating scale."""
        return np.clip(scores, self.rating_scale[0], self.rating_scale[1]) if self.explicit and self.rating_scale \
            else scores

    def augmented_movies(self, rows: np.ndarray | None = None) -> np.ndarray:
        """[q_m, b_m] per movie (of ``rows`` only, where given): an inner product with [p_u, 1] gives p_u . q_m +
        b_m (index.augment_movies)."""
        movie = self.movie if rows is None else np.take(self.movie, rows, axis=0)
        n = movie.shape[0]
        b = self.movie_bias if self.movie_bias is not None else np.zeros(self.n_movies, dtype=np.float32)
        b = b if rows is None else np.take(b, rows)
        return np.ascontiguousarray(np.hstack([movie, np.asarray(b).reshape(n, 1)]), dtype=np.float32)

    def user_offset(self, users: np.ndarray) -> np.ndarray:
        """What an explicit score adds to the inner product per user: mu + b_u (0 for implicit models)."""
        users = np.asarray(users, dtype=np.int64)
        if not self.explicit:
            return np.zeros(users.size)
        return self.global_mean + (self.user_bias[users] if self.user_bias is not None else np.zeros(users.size))

    def predict(self, users: np.ndarray, movies: np.ndarray, batch: int = 1 << 20) -> np.ndarray:
        """The score of each (user row, movie row) pair, in batches of ``batch`` pairs: the predicted rating
        (clipped to the scale) for explicit models. A movie no training rating named (bias UNTRAINED_BIAS) gets
        mu + b_u from an explicit model, as ``predict_fallback`` answers an unknown movie: the one scoring rule
        that evaluation, tune-dims and ``Model.predict`` use."""
        users, movies = np.asarray(users, dtype=np.int64), np.asarray(movies, dtype=np.int64)
        out = np.empty(users.size, dtype=np.float64)
        for s in range(0, users.size, batch):
            u, m = users[s:s + batch], movies[s:s + batch]
            # np.take: fancy indexing with int32 ids is several times slower (measured)
            p = pair_dots(np.take(self.user, u, axis=0), np.take(self.movie, m, axis=0))
            if self.movie_bias is not None:
                mb = np.take(self.movie_bias, m)
                p += mb
                if self.explicit:
                    p[mb <= UNTRAINED_BIAS] = 0.0  # no training rating named the movie: only mu + b_u
            if self.explicit:
                p += self.user_offset(u)
            out[s:s + batch] = p
        return self.clip(out)

    def predict_fallback(self, users: np.ndarray, movies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores for pairs whose rows may be -1 (not in the training data), and which fallback each used.

        A missing side drops its terms, as Surprise answers an unknown id: explicit models give mu + b_m for an
        unknown user, mu + b_u for an unknown movie, mu for both. Implicit models have no such baseline: an
        unknown user gets b_m where the model has movie biases, anything else NaN.
        Returns (scores, codes) with codes indexing FALLBACKS."""
        users, movies = np.asarray(users, dtype=np.int64), np.asarray(movies, dtype=np.int64)
        ku, km = users >= 0, movies >= 0
        code = np.where(ku, 0, 1) + np.where(km, 0, 2)
        out = np.full(users.size, np.nan)
        both = ku & km
        out[both] = self.predict(users[both], movies[both])
        if self.explicit:
            out[~both] = self.global_mean
            mb = self.movie_bias if self.movie_bias is not None else np.zeros(self.n_movies)
            ub = self.user_bias if self.user_bias is not None else np.zeros(self.n_users)
            only_m, only_u = ~ku & km, ku & ~km
            out[only_m] += mb[movies[only_m]]
            out[only_u] += ub[users[only_u]]
            out[~both] = self.clip(out[~both])
        elif self.movie_bias is not None:
            only_m = ~ku & km
            out[only_m] = self.movie_bias[movies[only_m]]
        return out, code

    def fallback_said(self, code: str) -> str:
        """What ``predict_fallback`` answers a pair whose fallback is ``code`` (one of FALLBACKS) with, in words:
        the rule above said once, for the lines that name an unknown id (``predict --pairs``)."""
        if code == "none":
            return "scored by the model"
        if self.explicit:
            return {"user_unknown": "scored from the biases (the mean and the movie's bias)",
                    "movie_unknown": "scored from the biases (the mean and the user's bias)",
                    "both": "scored as the mean rating"}[code]
        if self.movie_bias is None:
            return "no score (this ranking model has no biases)"
        if code == "user_unknown":
            return "scored from the movie's bias alone (a ranking score)"
        return "no score (a ranking model has no bias for an unknown movie)"

    @property
    def cos_movie(self) -> np.ndarray:
        """The movie table's columns similar movies' cosine reads: all, or the als ones before the low-pass block
        (:attr:`als_columns`)."""
        return self.movie if self.als_columns is None else self.movie[:, :self.als_columns]

    def similar(self, row: int, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k movie rows by cosine similarity to movie ``row`` (:func:`cosine_topk`: itself and movies with
        a zero vector never listed), over the movies' unit vectors made once (:attr:`unit_movies`); a filter that
        leaves under half the movies (``allowed``) is scored over those movies alone, normalised as they are read
        (its own size: a big catalogue's table is not read whole for it)."""
        return _cosine_among(lambda: self.unit_movies, self.cos_movie, row, k, allowed)

    def similar_users(self, row: int, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k user rows by cosine similarity to user ``row`` (:func:`cosine_topk`: itself and users with a
        zero vector, no training rating, never listed), over the users' unit vectors made once
        (:attr:`unit_users`), among the user rows ``allowed`` where given, as :meth:`similar` ranks movies."""
        return _cosine_among(lambda: self.unit_users, self.user, row, k, allowed)

    @cached_property
    def unit_users(self) -> UnitRows:
        """The user table's rows at unit length, and its zero rows: made at the first similar-users question and
        kept with these factors (a copy of the table in memory, float32), so a later one scores without
        normalising the table again (factors replaced: made again)."""
        return UnitRows(self.user)

    @cached_property
    def unit_movies(self) -> UnitRows:
        """The movie table's rows at unit length, and its zero rows: made at the first exact similar-movies question
        that reads the whole table, and kept with these factors, as :attr:`unit_users`."""
        return UnitRows(self.cos_movie)

    def __getstate__(self) -> dict:
        """A pickle carries the factors, not the unit tables made from them (made again where asked)."""
        return {name: value for name, value in self.__dict__.items() if name not in ("unit_users", "unit_movies")}


class UnitRows:
    """A table's rows scaled to unit length (:func:`normalise`: a zero row stays zero) and the rows that are zero (no
    vector: nothing to compare), what :func:`cosine_topk` searches; made once per table (``Factors.unit_users``,
    ``Factors.unit_movies``)."""

    __slots__ = ("unit", "zero_rows")

    def __init__(self, table: np.ndarray):
        self.unit = normalise(np.asarray(table, dtype=np.float32))
        self.zero_rows = np.flatnonzero(~self.unit.any(axis=1))


def _cosine_among(unit, table: np.ndarray, row: int, k: int, allowed: np.ndarray | None):
    """:meth:`Factors.similar`'s and :meth:`Factors.similar_users`' search: the k rows of ``table`` nearest row
    ``row`` by cosine, over its unit rows (``unit()``, made once), or, where ``allowed`` leaves under half the
    rows, over those rows alone, normalised as they are read (a big table is not read whole for a narrow filter)."""
    n = table.shape[0]
    if allowed is not None and np.size(allowed) < n // 2:
        rows = sorted_rows(allowed)
        rows = rows[rows != row]
        if not rows.size:
            return rows, np.zeros(0, np.float32)
        q = normalise(np.asarray(table[row:row + 1], dtype=np.float32))[0]
        top, vals = cosine_topk(UnitRows(np.take(table, rows, axis=0)), q, k)
        return rows[top], vals
    units = unit()
    outside = None
    if allowed is not None:
        outside = np.ones(n, dtype=bool)
        outside[allowed] = False
    return cosine_topk(units, units.unit[row], k, own=row, outside=outside)


def cosine_topk(table: UnitRows, query: np.ndarray, k: int, own: int | None = None,
                outside: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ``table`` nearest the unit vector ``query`` by cosine similarity, best first, equal scores in
    row order (``sparse.topk_from_scores``), and their scores (float32): the one ranking of similar movies and
    similar users. Never listed: the table's zero rows (a vector of zeros is like nothing), the query's own row
    ``own``, and the rows ``outside`` marks (a filter's, a bool per row). The scores are one matrix-vector product,
    ``table.unit @ query``: a query's list does not depend on what else is asked beside it. A NaN row scores NaN
    and ranks last; the callers refuse a listed one."""
    s = np.asarray(table.unit @ query, dtype=np.float32)
    s[table.zero_rows] = -np.inf
    if own is not None:
        s[own] = -np.inf
    if outside is not None:
        s[outside] = -np.inf
    top, vals = topk_of_row(s, k)
    keep = top >= 0
    return top[keep], vals[keep]


def sorted_rows(allowed) -> np.ndarray:
    """``allowed`` as ascending rows, each once (equal scores then stay in movie row order)."""
    rows = np.asarray(allowed, np.int64)
    return rows if not np.any(np.diff(rows) <= 0) else unique(rows)


def exact_topk_rows(queries: np.ndarray, X_rows: np.ndarray, rows: np.ndarray,
                    excl: tuple[np.ndarray, np.ndarray], k: int, n: int) -> tuple[list, list]:
    """:func:`exact_topk` over the movies ``rows`` (ascending, of a catalogue of ``n``) alone, ``X_rows`` their
    vectors: the (query, movie) pairs in ``excl`` excluded; movie rows and scores per query."""
    pos = np.full(n, -1, np.int64)
    pos[rows] = np.arange(rows.size)
    keep = pos[excl[1]] >= 0
    got_i, got_d = exact_topk(queries, X_rows, (excl[0][keep], pos[excl[1][keep]]), k)
    return [rows[i] for i in got_i], got_d


def pair_dots(u: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Row-wise inner products of two equal-shaped blocks, as float64: each pair's own float32 sum (einsum's loop
    over one row), so a pair's score is the same whatever else is scored beside it, where a matrix product's
    blocked sums depend on the batch (tested at several dimensions, orders and alignments). ``predict`` and a
    list's scores (``serve.recommender.exact_scores``) both use it: one pair, one number."""
    return np.einsum("ij,ij->i", u, m).astype(np.float64)


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as index.normalise."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(n, 1e-12), dtype=np.float32)


def augment_users(user_factors: np.ndarray) -> np.ndarray:
    """[p_u, 1] per user, as index.augment_users (kept here so exact search never imports FAISS)."""
    return np.ascontiguousarray(np.hstack([user_factors, np.ones((user_factors.shape[0], 1), np.float32)]),
                                dtype=np.float32)


FAST_TOPK_MIN = 64  # queries from which exact_topk ranks with the compiled kernel (sparse.topk_fast)


def exact_topk(queries: np.ndarray, X: np.ndarray, excl: tuple[np.ndarray, np.ndarray], k: int,
               allowed: np.ndarray | None = None) -> tuple[list, list]:
    """Top-k (rows, scores) of ``queries @ X.T`` per query, the (query, movie) pairs in ``excl`` and the movies
    outside ``allowed`` excluded; the movies of searching an IndexFlatIP over X, done as one matrix product (over
    the allowed rows alone where a filter leaves fewer than half of them: a narrow filter costs its own size; the
    scores then may differ from the whole product's in float32's last bits, which the served lists' own rescoring,
    ``serve.recommender.exact_scores``, settles)."""
    n = X.shape[0]
    if allowed is not None and 0 < np.size(allowed) < n // 2:
        rows = sorted_rows(allowed)
        return exact_topk_rows(queries, np.ascontiguousarray(X[rows]), rows, excl, k, n)
    mask = None
    if allowed is not None:
        mask = np.ones(n, dtype=bool)
        mask[allowed] = False
    settle()  # (the process's BLAS threads for the products, where a few users' product in another thread left one)
    out_i, out_d = [], []
    step = max(16, int(5e7 // max(n, 1)))  # keep each score matrix near 200 MB
    lib = None
    if queries.shape[0] >= FAST_TOPK_MIN and queries.dtype == X.dtype == np.float32:  # many users (export, a
        # stream's batch) of float32 factors (what a run holds; float64 ones keep their precision): the C top-k, on every
        from embedrec.sparse import topk_kernel  # core (one user's argpartition costs less than loading it)

        lib, threads = topk_kernel(), available_cpus()
    for s in range(0, queries.shape[0], step):
        scores = queries[s:s + step] @ X.T
        sel = (excl[0] >= s) & (excl[0] < s + step)
        scores[excl[0][sel] - s, excl[1][sel]] = -np.inf
        if mask is not None:
            scores[:, mask] = -np.inf
        got = topk_fast(scores, k, threads, lib) if lib is not None else None
        if got is None and scores.shape[0] < FAST_TOPK_MIN:  # a user or a few: row by row, the same answer as
            for row in scores:                               # topk_from_scores' without its 2-D bookkeeping
                t, v = topk_of_row(row, k)
                out_i.append(t[t >= 0])
                out_d.append(v[t >= 0])
            continue
        top, vals = topk_from_scores(scores, k) if got is None else got
        keep = top >= 0
        out_i += [t[m] for t, m in zip(top, keep)]
        out_d += [v[m] for v, m in zip(vals, keep)]
    return out_i, out_d
