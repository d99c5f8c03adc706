"""Serving from a trained run: top-K for users, similar movies, fold-in of new users, pair scores.

Reads only numpy arrays and a small JSON catalogue (ids in user_ids.npy / movie_ids.npy, titles, years and
genres in movies.json), plus FAISS indexes for approximate search: no torch, no pandas, no pyarrow, so a fresh
``embedrec recommend`` process costs little more than importing numpy. Runs written before the catalogue files
are read from their Parquet files through pyarrow.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from embedrec import run_checks
from embedrec.data.ids import (
    IdMap,
    py_id,  # noqa: F401 (re-exported for callers)
)
from embedrec.errors import ArtifactError, NotFoundError, UsageError
from embedrec.model.factors import (
    UNTRAINED_BIAS,
    Factors,
    augment_users,
    exact_topk,
    exact_topk_rows,
    normalise,
    pair_dots,
    sorted_rows,
)
from embedrec.run import Run, load_run
from embedrec.run_fixes import index_fix, run_fix
from embedrec.run_layout import (
    LOWPASS_A,
    MANIFEST,
    UNKNOWN_RATED,
    serves_another,
    unknown_arrays,
)
from embedrec.serve import foldin
from embedrec.serve.catalogue import Catalogue
from embedrec.serve.recommender_foldin import FoldInServing
from embedrec.serve.recommender_prior import PriorServing
from embedrec.sparse import gather_csr, topk_of_row, unique
from embedrec.threads import blas_threads, settle
from embedrec.verify import (
    check_finite,
    check_implicit_movie,
    check_lowpass,
    check_popularity,
    check_seen_rows,
    check_served_arrays,
    damaged,
    nonfinite_rows,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import RecommendConfig

log = logging.getLogger("embedrec")
COLUMNS = ["user_id", "rank", "movie_id", "title", "year", "genres", "score"]
FALLBACK_VALUES = ("none", "popular")  # recommend's ``fallback`` column (--fallback popular); predict's names a side
LOGGED_UNKNOWN = 5  # unknown ids named one by one on stderr; the rest are counted in one summary line


def popular_instead(users, raw, count: int, where: str = "", newer: str = "") -> None:
    """The one report of an unknown user answered with the most popular movies (missing='popular', --fallback
    popular): ``Model.recommend`` and ``recommend_stream`` (``where``: its name:line) say it here, the ``count``-th
    such user named while ``count`` <= LOGGED_UNKNOWN (then :func:`unknown_summary`). ``users``: the IdMap;
    ``newer``: a stream's note that the run serves a newer model that knows the user (stream._newer_model)."""
    if count <= LOGGED_UNKNOWN:
        log.warning("%s%s: most popular movies instead%s", f"{where}: " if where else "", users.unknown_text(raw),
                    newer)


def unknown_summary(count: int, popular: bool) -> None:
    """After the unknown users :func:`popular_instead` (or a stream's skip) named: how many there were in all."""
    if count > LOGGED_UNKNOWN:
        log.warning("%s unknown users %s in all (the first %d are named above)", f"{count:,}",
                    "answered with the most popular movies" if popular else "skipped", LOGGED_UNKNOWN)


def trained_on(engine) -> str:
    """'the run was trained on DATASET; ' for an unknown id's message (a first-hour review: after ingesting
    their own file, a user's id was refused by the ML-100K run a plain `train` had made, which nothing said);
    '' for a model with no run, or a run that records no dataset. ``engine``: the Recommender."""
    run = engine.run
    path = ((run.manifest.get("dataset") or {}).get("path") if run is not None else None)
    newer = _newer_note(run)
    if not path:
        return newer
    try:
        path = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    except (ValueError, OSError):  # another drive; the current folder removed (no folder to be relative to)
        pass
    return f"{newer}the run was trained on '{path}'; "


def _newer_note(run) -> str:
    """'this model was opened before the run published a newer one ...; ' where the run's ``current`` has moved on
    since ``run`` was opened (update-users may have added the id: a review found a held Model's unknown-user
    error silent on it, as a long-lived stream's line was), else ''."""
    path = getattr(run, "path", None)
    if path is None or not serves_another(path):
        return ""
    return ("this model was opened before the run published a newer one (update-users, train): «a new command|"
            "er.open() again» reads it; ")


def _index_module():
    """embedrec.serve.index (and FAISS) only when an index is searched: exact top-K needs numpy alone."""
    from embedrec.serve import index

    return index


LOSSY_KINDS = ("ivf_sq8",)  # index kinds that store quantised vectors: their candidates are re-scored exactly
LEAN_MAX = 16  # users from which recommend_rows searches as a batch (Recommender._lean_lists below it)
FILTER_EXACT_MAX = 16_384  # a filter leaving at most this many movies: scored exactly on every index kind


def _exact_in_manifest(manifest: dict, which: str) -> bool:
    """True when the run's ``which`` index ('ip' or 'cos') is an exact (flat) one over the run's own arrays: it
    then holds exactly what Factors computes ([q_m, b_m], or the normalised q_m), and is searched with numpy."""
    meta = manifest.get("index") or {}
    return (meta.get("kind") == "flat" and meta.get(f"{which}_transform", "ip") == "ip"
            and meta.get("embeddings_sha256") == manifest.get("embeddings_sha256"))


class ZeroRows:
    """``IdMap.untrained`` of a users' table: which of the given rows are zero vectors (a picklable callable,
    so a Model and its results pickle)."""

    def __init__(self, P: np.ndarray):
        self.P = P

    def __call__(self, rows) -> np.ndarray:
        return ~np.asarray(self.P[rows]).any(axis=1)


FEW_RATINGS = 2  # a movie of at most this many training ratings gets a note on its similar movies (Recommender._similar)
# where a batch of similar-movie queries counts _similar's notes instead of saying one a movie ({"few": [...],
# "twins": [...]}: the queries' ids; answers' --movies says them in one line each; a context's own, as threads are)
SIMILAR_NOTES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("similar_notes", default=None)


class Recommender(PriorServing, FoldInServing):
    """Top-K for users, similar movies, new users and pair scores over one model's ``Factors`` (and, for
    approximate index kinds, its FAISS indexes); ids and titles come from its ``Catalogue``."""

    def __init__(self, run: Run, rec_cfg: RecommendConfig | None = None):
        m = run.manifest
        scale = tuple(m["dataset"]["rating_scale"]) if m["dataset"].get("rating_scale") else None
        # each file checked as it is opened; the large ones (above integrity.VERIFY_ON_OPEN_MAX: by their size and
        # the stat their manifest recorded, else a streamed hash) memory-mapped, not read whole: a request reads the
        # user rows and seen movies it asks for (a scale review: --movie and --liked, which read no user, peaked at
        # 700 MB on a 512 MB user table, and --user took 0.64-1.0 s reading it)
        factors = Factors(run.array("user_factors", mapped=True), run.array("movie_factors", mapped=True),
                          run.array("user_bias"), run.array("movie_bias"), float(m.get("global_mean", 0.0)),
                          run.explicit, scale)
        factors = replace(factors, lowpass_a=lowpass_array(run, factors.movie.shape[1]),
                          als_columns=(((m.get("training_ratings") or {}).get("solve") or {}).get("lowpass") or {})
                          .get("d"))  # (checked by lowpass_array)
        seen = (run.array("seen_indptr", mapped=True), run.array("seen_indices", mapped=True))
        check_served_arrays(run, factors.user, factors.movie, seen, (factors.user_bias, factors.movie_bias))
        self._setup(run, rec_cfg, factors, Catalogue.from_run(run), seen, None, m.get("training_ratings"),
                    user_features=bool((m.get("features") or {}).get("user")))
        self._check_movies()

    def _check_movies(self) -> None:
        """Every movie row finite, checked once as the run is opened (numpy over the table, read whole and hashed
        already): a NaN row scores NaN, which an exact (flat) search never lists (a red team: such a movie was
        left out of every list without a word, where an approximate index listed it and was refused); refused as
        a listed one is, naming the table and the first such movie."""
        bad, first = nonfinite_rows(self.factors.movie, self.factors.movie_bias)
        if bad:
            self._refuse_movie(first)

    def _setup(self, run, rec_cfg, factors: Factors, catalogue: Catalogue, seen: tuple, popularity,
               training_ratings: dict | None, unknown_rated=None, user_features: bool = False,
               implicit: np.ndarray | None = None, solve_arrays: tuple | None = None) -> None:
        from embedrec.config import RecommendConfig  # the defaults written once, there

        self.run, self.cfg, self.factors, self.catalogue = run, rec_cfg or RecommendConfig(), factors, catalogue
        self.seen_ptr, self.seen_idx = seen
        # a user without a training rating (split.cold_start's, in test only) has a zero vector (fit's
        # zero_untrained_users): no vector to speak of, so answered as an unknown id (a model with user features
        # scores them from those). Only the rows asked about are read.
        if not user_features:
            catalogue.users.untrained = ZeroRows(factors.user)
        self._popularity = popularity
        self._unknown = unknown_rated  # (IdMap, indptr, movie rows) of Dataset.rated_below_unknown, read on first use
        self._ip = self._cos = self._flat = self._exact = self._untrained = None
        self._prior_z = None  # the new users' popularity prior's z_m (serve.prior), made at the first one
        self._gram = None  # (the factors, their Q^T Q, mean row) for the implicit fold-ins, made at the first new user
        self._implicit = implicit  # an SVD++ run's y_j: read at its first new user (False: the run has none)
        self._solve_arrays = solve_arrays  # an als run's users' solve (explanations): read at its first use
        self._as_new = None  # the dataset's users an update solved as new ones (solved_as_new): read at first use
        # how training took the ratings (the dataset's data.min_rating, train.als_rating_weight); a run written
        # before the manifest said so: every rating as a positive interaction
        where = run.path / MANIFEST if run is not None else "<in memory>"
        self.training_ratings = {"min_rating": None, "rating_weight": 0.0,
                                 **run_checks.checked_training_ratings(training_ratings, str(where))}

    def __getstate__(self) -> dict:
        """What a pickle carries: everything this model answers from, the files it reads on first use read now
        (the popularity, the unknown users' ratings, an approximate index), so a copy answers after its run folder
        is gone (a red team: a pickled HNSW model failed once a later train pruned its folder)."""
        if self.run is not None:
            loads = [lambda: self.popularity, self._unknown_table, self.implicit_movie,
                     lambda: self.run.keep(foldin.feature_arrays(self.run)),  # a new user's demographics (a review)
                     self.solve_arrays, self.solved_as_new]
            loads += [load for which, load in (("ip", lambda: self.ip_index), ("cos", lambda: self.cos_index))
                      if not _exact_in_manifest(self.run.manifest, which)]
            for load in loads:
                with contextlib.suppress(ArtifactError):  # what cannot be read now fails when asked, as it would here
                    load()
        return self.__dict__.copy()

    def implicit_movie(self) -> np.ndarray | None:
        """An explicit SVD++ run's y_j (read once, on first use), which a new user's fold-in adds; None for any
        other model, or a run saved before they were (its new users are folded in without them)."""
        if self._implicit is None:
            from embedrec.model.factors import IMPLICIT_MOVIE

            got = self.run.array(IMPLICIT_MOVIE, optional=True) if self.run is not None and self.explicit else None
            self._implicit = False if got is None else check_implicit_movie(self.run, got, self.Q)
        return None if self._implicit is False else self._implicit

    @classmethod
    def from_parts(cls, factors: Factors, user_ids: np.ndarray, movies: dict, seen: tuple[np.ndarray, np.ndarray],
                   popularity: np.ndarray, rec_cfg: RecommendConfig | None = None,
                   training_ratings: dict | None = None, unknown_rated=None, user_features: bool = False,
                   implicit: np.ndarray | None = None, solve_arrays: tuple | None = None,
                   loss: str | None = None) -> Recommender:
        """A Recommender over arrays in memory (a model not saved yet): exact search, no run directory.

        ``movies`` holds parallel lists movie_id, title, year, genres; ``seen`` is the CSR (indptr, indices) of
        the movies excluded per user; ``popularity`` the number of training ratings per movie;
        ``training_ratings`` how training took the ratings, as a run's manifest says it: {"min_rating": the dataset's
        data.min_rating, "rating_weight": train.als_rating_weight of an als fit, else 0}; ``unknown_rated`` the
        dataset's rated_below_unknown table (Dataset.rated_below_unknown), if any; ``user_features`` whether the
        model scores users by features (then a user without training ratings is still scored); ``implicit`` an
        SVD++ model's y_j (:meth:`implicit_movie`); ``solve_arrays`` an als model's (seen pairs' solve weights,
        users' divisors or None), which :meth:`solve_arrays` gives (None: the model has none); ``loss`` the model's
        (model.loss), which :attr:`loss` says where no solve does (a bpr model in memory: 'its loss unknown')."""
        self = cls.__new__(cls)
        self._setup(None, rec_cfg, factors, Catalogue.from_parts(user_ids, movies), seen, np.asarray(popularity),
                    training_ratings, _unknown_lookup(unknown_arrays(unknown_rated) if unknown_rated is not None
                                                      and len(unknown_rated) else None), user_features,
                    False if implicit is None else implicit,
                    False if solve_arrays is None or solve_arrays[0] is None else solve_arrays)
        self._parts_loss = loss
        return self

    @classmethod
    def open(cls, run_dir, rec_cfg: RecommendConfig | None = None, dataset=None) -> Recommender:
        """``dataset``: the config's data.prepared, named when neither a run nor a dataset is there (load_run)."""
        return cls(load_run(run_dir, dataset), rec_cfg)

    # ----------------------------------------------------------------- the model's arrays (read through factors)
    explicit = property(lambda self: self.factors.explicit)
    P = property(lambda self: self.factors.user, doc="user factors (= factors.user)")
    Q = property(lambda self: self.factors.movie, doc="movie factors (= factors.movie)")
    bu = property(lambda self: self.factors.user_bias)
    bm = property(lambda self: self.factors.movie_bias)
    mu = property(lambda self: self.factors.global_mean)

    @property
    def scale(self) -> tuple[float, float] | None:
        """The rating scale explicit scores are clipped to (settable: it replaces ``factors``)."""
        return self.factors.rating_scale

    @scale.setter
    def scale(self, value) -> None:
        self.factors = replace(self.factors, rating_scale=tuple(value) if value else None)

    @property
    def popularity(self) -> np.ndarray:
        if self._popularity is None:  # one count per movie, checked as read (a cheap shape check)
            self._popularity = check_popularity(self.run, self.run.array("popularity"), self.factors.n_movies)
        return self._popularity

    # ----------------------------------------------------------------- the catalogue's ids and lookups
    user_ids = property(lambda self: self.catalogue.user_ids)
    movie_ids = property(lambda self: self.catalogue.movie_ids)
    titles = property(lambda self: self.catalogue.titles)
    years = property(lambda self: self.catalogue.years)
    genres = property(lambda self: self.catalogue.genres)
    users = property(lambda self: self.catalogue.users)
    movies = property(lambda self: self.catalogue.movies)

    def user_rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        return self.catalogue.user_rows(ids)

    def movie_rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        return self.catalogue.movie_rows(ids)

    def user_row(self, user_id) -> int:
        return self.catalogue.user_row(user_id)

    def movie_row(self, movie_id) -> int:
        return self.catalogue.movie_row(movie_id)

    def find_movie(self, query: str) -> int:
        return self.match_movie(query)[0]

    def match_movie(self, query: str, suggest: bool = True) -> tuple[int, str]:
        """Catalogue.match_movie, a film listed under several ids taken at its most rated (the training ratings'
        counts, read only then). Words no movie title holds: a NotFoundError of kind 'title', its ``id`` the
        words (an unknown movie id stays kind 'movie', which a new user's history leaves out)."""
        try:
            return self.catalogue.match_movie(query, lambda: self.popularity, suggest)
        except NotFoundError as e:
            if e.kind is None:
                e.kind, e.id, e.ids = "title", query, [query]
            raise

    def allowed(self, genres: tuple[str, ...] = (), year_min: int | None = None, year_max: int | None = None,
                exclude_rows: np.ndarray | None = None, only_rows: np.ndarray | None = None):
        return self.catalogue.allowed(genres, year_min, year_max, exclude_rows=exclude_rows, only_rows=only_rows)

    def rows_for(self, user_id, movie_rows: np.ndarray, scores: np.ndarray) -> Iterator[dict]:
        return self.catalogue.rows_for(user_id, movie_rows, scores)

    # ----------------------------------------------------------------- indexes
    @property
    def ip_index(self):
        if self._ip is None:
            meta = self.run.manifest["index"]
            if meta.get("embeddings_sha256") != self.run.manifest.get("embeddings_sha256"):
                raise ArtifactError(f"the index in '{self.run.path}' was built from other embeddings than the run's; "
                                    f"{index_fix(self.run.path, meta)}")
            ix = _index_module()
            self.run.check_here(ix.IP_FILE)
            self._ip = ix.load_index(self.run.path / ix.IP_FILE, meta, "ip", self.Q.shape[0], self.Q.shape[1] + 1,
                                     index_fix(self.run.path, meta), ix.expected_rows(self.factors, "ip"))
        return self._ip

    @property
    def cos_index(self):
        if self._cos is None:
            ix = _index_module()
            self.run.check_here(ix.COS_FILE)
            self._cos = ix.load_index(self.run.path / ix.COS_FILE, self.run.manifest["index"], "cos",
                                      self.Q.shape[0], self.factors.cos_movie.shape[1],
                                      index_fix(self.run.path, self.run.manifest["index"]),
                                      ix.expected_rows(self.factors, "cos"))
        return self._cos

    def _flat_vectors(self) -> np.ndarray | None:
        """The vectors of an exact (flat) index, as numpy; None for approximate indexes.

        A flat inner-product index holds exactly [q_m, b_m] of the run's arrays (index.augment_movies), so
        when the manifest says so they are built from the .npy files without loading FAISS at all: a fresh
        ``embedrec recommend --user`` then costs little more than importing numpy."""
        if self.run is None or _exact_in_manifest(self.run.manifest, "ip"):
            if self._flat is None:
                self._flat = self.factors.augmented_movies()
            return self._flat
        return self.ip_index.flat_vectors()

    # ----------------------------------------------------------------- scoring
    def _search_users(self, queries: np.ndarray, excl: tuple[np.ndarray, np.ndarray], k: int, allowed) -> tuple:
        """Top-k per query, excluding the (query row, movie) pairs in ``excl`` and movies outside ``allowed``.

        An exact index is searched as one matrix product over its stored vectors with the exclusions masked
        (exact_topk: the same movies and scores as IndexFlatIP, equal scores in row order); an approximate
        index is asked for more candidates until k survive the exclusions.
        """
        X = self._flat_vectors()
        if X is not None:
            return self._trained_only(*exact_topk(queries, X, excl, k, allowed))
        if allowed is not None and allowed.size <= FILTER_EXACT_MAX:  # a narrow filter: its movies scored exactly,
            rows = sorted_rows(allowed)  # those alone (a review: HNSW's walk under one found 0.92-0.94 of the exact
            X_rows = self.factors.augmented_movies(rows)  # top 10, said nowhere; scoring them costs less than it)
            return self._trained_only(*exact_topk_rows(queries, X_rows, rows, excl, k, self.Q.shape[0]))
        ids, scores, short = _index_module().search_excluding(self.ip_index, queries, excl, k, allowed,
                                                              self.Q.shape[0])
        if self._lossy():
            ids, scores = _rescore(self.factors, queries, ids)
        if short.size:  # the index reached fewer than k of the movies these users may get: score those exactly
            log.debug("approximate index: %d quer(y/ies) reached fewer than %d movies; scored exactly", short.size, k)
            if self._exact is None:
                self._exact = self.factors.augmented_movies()
            pos = np.full(queries.shape[0], -1, np.int64)
            pos[short] = np.arange(short.size)
            keep = pos[excl[0]] >= 0
            got_i, got_d = exact_topk(queries[short], self._exact, (pos[excl[0][keep]], excl[1][keep]), k, allowed)
            for j, r in enumerate(short):
                ids[r], scores[r] = got_i[j], got_d[j]
        return self._trained_only(ids, scores)

    @property
    def untrained(self) -> np.ndarray:
        """Per movie row: no training rating named it and the model has nothing else for it (a plain model's zero
        vector and bias -1000); a feature model scores such movies from their features, and marks none."""
        if self._untrained is None:
            bm = self.factors.movie_bias
            self._untrained = np.zeros(self.Q.shape[0], bool)
            rows = np.flatnonzero(np.asarray(bm) <= UNTRAINED_BIAS) if bm is not None else ()
            if len(rows):  # only those rows of Q are read (a big catalogue's is memory-mapped)
                self._untrained[rows[~np.asarray(self.Q[rows]).any(axis=1)]] = True
        return self._untrained

    def add_movies(self, rows: np.ndarray, a_rows: np.ndarray | None, counts: np.ndarray,
                   bias: np.ndarray | None = None, replace_rows: dict | None = None) -> None:
        """Grow this engine's movie tables by new movies (``rows`` of the movie table, ``a_rows`` of the low-pass
        block's a, ``counts`` their popularity, ``bias`` their movie bias: recent popularity's), after the run's:
        what update-users' users' re-solve reads once it has solved the movies it adds (movie_update.py);
        ``replace_rows``: {row: (movie row, a row or None, bias or None)} of movies an earlier update added, solved
        again. The engine's own, in memory: its run folder is unchanged,
        and its indexes, titles and ids are not grown (a writer's engine, not one that serves)."""
        f, popularity = self.factors, np.asarray(self.popularity)  # (read, checked, before the tables grow)
        a = None if f.lowpass_a is None else np.vstack([np.asarray(f.lowpass_a), np.zeros(
            (len(rows), f.lowpass_a.shape[1]), np.float32) if a_rows is None else np.asarray(a_rows, np.float32)])
        bias = None if f.movie_bias is None else np.concatenate([
            np.asarray(f.movie_bias), np.zeros(len(rows), np.float32) if bias is None else np.asarray(bias, np.float32)])
        movie = np.vstack([np.asarray(f.movie), np.asarray(rows, f.movie.dtype)])
        for r, (q, ar, b) in (replace_rows or {}).items():
            movie[r] = q
            if ar is not None and a is not None:
                a[r] = ar
            if b is not None and bias is not None:
                bias[r] = b
        self.factors = replace(f, movie=movie, movie_bias=bias, lowpass_a=a)
        self._popularity = np.concatenate([popularity, np.asarray(counts, popularity.dtype)])
        self._untrained = self._flat = self._exact = self._ip = self._cos = None
        self._prior_z = None

    def untrained_movies(self, rows: np.ndarray, what: str, give: str) -> UsageError:
        """The one refusal of movies no training rating named (data.keep_unrated_movies): a plain model has a zero
        vector for them, so they tell it nothing ``what`` (about a new user, about similar movies); ``give``: what
        to give instead. A new user's fold-in and ``similar`` raise it."""
        names = ", ".join(str(py_id(self.movie_ids[r])) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
        one = len(rows) == 1
        return UsageError(f"no training rating names {'this movie' if one else 'these movies'} ({names}), so "
                          f"{'it tells' if one else 'they tell'} this model nothing {what}; give {give}")

    def _trained_only(self, ids: list, scores: list) -> tuple[list, list]:
        """The answers without the movies no training rating named (data.keep_unrated_movies, a plain model: a
        zero vector and bias -1000, so they come last): never recommended, as the note on a short list says (a
        review: `-k 1682` listed them at -1000)."""
        untrained = self.untrained
        if not untrained.any():
            return ids, scores
        keep = [~untrained[i] for i in ids]
        return [i[m] for i, m in zip(ids, keep)], [s[m] for s, m in zip(scores, keep)]

    def _lossy(self) -> bool:
        return self.run is not None and (self.run.manifest.get("index") or {}).get("kind") in LOSSY_KINDS

    def recommend_rows(self, rows: np.ndarray, k: int, include_seen: bool = False, allowed=None, search=None,
                       prior="auto", prior_any: bool = False, own: dict | None = None):
        """Top-k (movie rows, scores) for user rows, seen movies excluded unless include_seen. ``search``:
        (queries [p_u, 1], exclusions (query row, movie row), k) -> (movie rows, scores) per query, in place of
        the index (export's exact scoring on a GPU); the checks and the tail are the same either way. ``prior``:
        the new users' prior of the users update-users added (:meth:`added_prior`); ``prior_any``: a weight given
        applies to such users among ``rows`` and refuses nothing where there are none (a stream's batch: the
        stream checked the run once, :meth:`check_stream_prior`). ``own``: {user row: movie rows} each user's own
        movies to leave out beside the seen ones (``recommend(users, exclude={user: movies})``, implicit's
        per-user ``user_items`` filter), their twins too, whatever ``include_seen``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.P.shape[0]):
            # user_rows marks unknown ids -1, and P[-1] is the last user: never answer for it silently
            raise UsageError(f"user rows must be 0..{self.P.shape[0] - 1}, got {int(rows.min())} (an unknown id "
                             "from user_rows); drop the -1 rows, or call recommend(ids, missing=...) instead")
        users = np.asarray(self.P[rows])
        self._check_users(users, rows)
        q = augment_users(users)
        own = own or None
        got = self._lean_lists(rows, q, k, include_seen, allowed, own) if search is None and \
            rows.size <= LEAN_MAX else None
        if got is not None:  # a user or a few over an exact index: the same lists, with less bookkeeping
            ids, scores = got
        else:
            ids, scores = self._search(rows, q, k, include_seen, allowed, search, own)
        ids, scores = self._finite(*exact_scores(self.factors, users, ids,
                                                 self.factors.user_offset(rows) if self.explicit else None))
        return self._prior_tail(rows, users, k, include_seen, allowed, prior, prior_any, ids, scores, own)

    def _left_out(self, row: int, include_seen: bool, own: dict | None) -> np.ndarray:
        """The movie rows user ``row``'s list leaves out: :meth:`excluded` unless ``include_seen``, and its ``own``
        movies with their twins."""
        out = np.zeros(0, np.int64) if include_seen else self.excluded(row)
        mine = own.get(row) if own else None
        if mine is not None and mine.size:
            out = np.union1d(out, self.catalogue.with_twins(np.zeros(mine.size, np.int64), mine)[1])
        return out

    def _search(self, rows: np.ndarray, q: np.ndarray, k: int, include_seen: bool, allowed, search,
                own: dict | None = None) -> tuple:
        """:meth:`recommend_rows`' search of many users (or over an approximate index): the seen movies (and each
        user's ``own``) gathered as (query row, movie row) pairs, then the index, or ``search``."""
        if include_seen:
            r, c = np.zeros(0, np.int64), np.zeros(0, np.int64)
        else:
            r, c, _ = gather_csr(self.seen_ptr, self.seen_idx, np.asarray(rows))
            check_seen_rows(self.run, c, self.factors.n_movies)
        if own:
            at = [(j, own[row]) for j, row in enumerate(rows.tolist()) if row in own]
            r = np.concatenate([r, *(np.full(m.size, j, np.int64) for j, m in at)]).astype(np.int64)
            c = np.concatenate([c, *(m for _, m in at)]).astype(np.int64)
            order = np.argsort(r, kind="stable")  # (grouped by user, as the seen pairs come)
            r, c = r[order], c[order]
        if r.size:  # (a film rated under one id is not offered under another)
            excl = self.catalogue.with_twins(r, c)
        else:
            excl = (r, c)
        if search is None:
            return self._search_users(q, excl, k, allowed)
        if allowed is not None:
            raise UsageError("recommend_rows: a search of its own takes no allowed movies")
        return self._trained_only(*search(q, excl, k))

    def _lean_lists(self, rows: np.ndarray, q: np.ndarray, k: int, include_seen: bool, allowed, own=None):
        """The lists of a few users (at most ``LEAN_MAX``: one ``recommend(user)`` call, a small batch) over an exact
        index, as :meth:`_search_users` finds them but without its batch bookkeeping (a review: a loop of
        ``recommend(u)`` cost 1.3 ms a call, implicit's 0.3): one product of the users' rows with the movies
        (``exact_topk``'s, on one BLAS thread for 2-16 users: its scores to float32's rounding), each user's seen movies and the filter masked, a partition
        of k (``sparse.topk_of_row``, topk_from_scores' rules). None where another search answers: an approximate
        index, or a filter narrow enough that exact_topk scores its movies alone."""
        X = self._flat_vectors()
        n = X.shape[0] if X is not None else 0
        if X is None or (allowed is not None and 0 < np.size(allowed) < n // 2):
            return None
        if rows.size == 1:
            settle()  # (as exact_topk: the process's BLAS threads, and one block: rows.size <= its smallest step)
            S = q @ X.T
        else:  # a few rows: OpenBLAS's threads cost more to start than the product (20 ms, not 1, for 8 users on a
            with blas_threads(1):  # loaded 2-core machine); the same numbers to float32's rounding (some kernels sum
                S = q @ X.T        # a few rows another way on two threads), and the lists: exact_scores orders
                # them by each pair's own sum (tests/test_recommend_lean.py)
        if allowed is not None:
            mask = np.ones(n, dtype=bool)
            mask[allowed] = False
            S[:, mask] = -np.inf
        ids, scores = [], []
        for j, row in enumerate(rows.tolist()):
            s = S[j]
            if not include_seen or own:
                s[self._left_out(row, include_seen, own)] = -np.inf
            top, vals = topk_of_row(s, k)
            ids.append(top[top >= 0])
            scores.append(vals[top >= 0])
        return self._trained_only(ids, scores)

    def _prior_tail(self, rows: np.ndarray, users: np.ndarray, k: int, include_seen: bool, allowed, prior,
                    prior_any: bool, ids: list, scores: list, own: dict | None = None) -> tuple[list, list]:
        """:meth:`recommend_rows`' last step: the lists of the users update-users added, made again with the new
        users' prior (:meth:`added_prior`)."""
        added = self.added_prior(rows, prior, refuse=not prior_any)  # the users update-users added: listed as when
        # told per request
        at = [j for j, row in enumerate(rows.tolist()) if row in added] if added else []
        for s0 in range(0, len(at), self._prior_batch()):  # scored together, a bounded block at a time
            part = at[s0:s0 + self._prior_batch()]
            got = self._prior_lists(users[part], [added[int(rows[j])] for j in part], k,
                                    [self._left_out(int(rows[j]), include_seen, own) for j in part],
                                    allowed)
            for j, (i, sc, _) in zip(part, got):
                ids[j], scores[j] = i, sc
        return ids, scores

    def check_user_rows(self, rows) -> None:
        """Refuse known user ``rows`` (-1, an unknown id, left out) whose vector, or an explicit model's bias, is not
        finite, as a list of theirs is refused: ``predict`` and ``explain`` read them without a list (a red team:
        predict served a re-sealed NaN user row's score blank, exit 0, where recommend refused the user)."""
        rows = unique(np.asarray(rows, np.int64))
        rows = rows[rows >= 0]
        self._check_users(np.asarray(self.P[rows]), rows)
        if self.explicit and self.bu is not None:
            check_finite(self.run, np.asarray(np.take(self.bu, rows), np.float64).reshape(-1, 1),
                         lambda i: f"user_bias.npy: user {py_id(self.catalogue.users.ids[int(rows[i])])}'s row is")

    def _check_users(self, users: np.ndarray, rows: np.ndarray) -> None:
        check_finite(self.run, users, lambda i: f"user {py_id(self.catalogue.users.ids[int(rows[i])])}'s embedding is")

    def _finite(self, ids: list, scores: list) -> tuple[list, list]:
        """The lists, where every listed movie's score is finite; else the first such movie's table row is refused
        as damaged (a red team: an inf in a re-sealed run's movie_factors.npy, which the checksums pass, was served
        as the top movie of 290 users; checked on the listed rows only, so start-up stays cheap)."""
        if len(scores) and not all(np.isfinite(s).all() for s in scores):
            rows = np.concatenate([np.asarray(i)[~np.isfinite(s)] for i, s in zip(ids, scores)]).astype(np.int64)
            self._refuse_movie(int(rows[0]))
            raise damaged(self.run, "a listed score is not finite (NaN or inf)")  # finite rows, a sum beyond float32
        return ids, scores

    def _refuse_movie(self, row: int) -> None:
        """A movie row that is not finite refused as damaged, naming its table and the movie (nothing where both
        tables' rows are finite)."""
        for name, table in (("movie_factors", self.factors.movie), ("movie_bias", self.factors.movie_bias)):
            if table is not None:
                t = np.asarray(np.take(table, [row], axis=0), np.float64).reshape(1, -1)
                check_finite(self.run, t, lambda i, name=name: f"{name}.npy: movie {py_id(self.movie_ids[row])}'s "
                             "row is")

    def _clip(self, scores: np.ndarray) -> np.ndarray:
        """Explicit scores are predicted ratings: clipped to the rating scale, as ``predict`` does."""
        return self.factors.clip(scores)

    def seen(self, row: int) -> np.ndarray:
        """The movie rows user ``row`` has seen in the run (seen_indptr, seen_indices: its train and valid movies,
        those rated below data.min_rating or dropped by the k-core filter, those update-users added), checked to be
        rows of the model."""
        movies = np.asarray(self.seen_idx[self.seen_ptr[row]:self.seen_ptr[row + 1]])
        check_seen_rows(self.run, movies, self.factors.n_movies)
        return movies

    def excluded(self, row: int) -> np.ndarray:
        """What user ``row``'s lists leave out: its :meth:`seen` movies and their twins (the same film under another
        id, :meth:`Catalogue.with_twins`: a user who rated 246 'Chasing Amy (1997)' was offered 268)."""
        seen = self.seen(row)
        return self.catalogue.with_twins(np.zeros(seen.size, np.int64), seen)[1]

    def _unknown_table(self) -> tuple:
        """(IdMap, indptr, movie rows) of the users not in the training data who rated below data.min_rating,
        read from the run on first use."""
        if self._unknown is None:
            arrays = None
            if self.run is not None and self.run.checksum(f"{UNKNOWN_RATED[0]}.npy"):
                arrays = tuple(self.run.array(name) for name in UNKNOWN_RATED)
            self._unknown = _unknown_lookup(arrays, run_fix(self.run.path) if self.run is not None else None)
        return self._unknown

    def rated_by_unknown(self, user_id) -> np.ndarray | None:
        """What the popular fallback leaves out for a user answered as unknown: the movie rows a user not in the
        training data rated below data.min_rating (every rating of theirs was, so the dataset left them out), or
        those a user of the dataset without a vector rated (in valid: a global time cut's later users, on a run
        trained without a refit; a review found their own valid movies offered them). None for anyone else."""
        ids, indptr, movies = self._unknown_table()
        row = ids.rows([user_id])[0][0] if len(ids) else -1
        if row >= 0:
            return movies[indptr[row]:indptr[row + 1]]
        own = self.catalogue.users.own_row(user_id)  # in the dataset, though answered as unknown
        return self.seen(int(own)) if 0 <= own < self.P.shape[0] else None

    def recent_popularity(self) -> np.ndarray | None:
        """Where the run added recent popularity (train.als_trend, its solve's ``trend`` > 0): each movie's
        beta z_m, the movie bias the model scores a user it knows nothing of by (z_m the standardised log count
        over the window the model counts: training.trend). None for any other model."""
        solve = None if self.explicit else self.training_ratings.get("solve")
        if not solve or float(solve.get("trend", 0.0)) <= 0 or self.bm is None:
            return None
        return np.asarray(self.bm, np.float64).reshape(-1)

    def popular(self, k: int, allowed=None, exclude: np.ndarray | None = None):
        """The ``k`` movies with the most training ratings (train and valid), scored by that count; where the
        model adds recent popularity, those most rated in its latest window (:meth:`recent_popularity`, ties by
        all the ratings), scored as the model scores someone it knows nothing of: what it serves a user whose
        vector is 0 (a diff review, session 41: an all-time list beside a model that ranks by the recent one)."""
        pop = self.popularity.astype(np.float64)
        recent = self.recent_popularity()
        order = np.argsort(-pop, kind="stable") if recent is None else np.lexsort((-pop, -recent))
        order = order[pop[order] > 0]  # a movie no training rating named is no one's popular pick
        if allowed is not None:
            order = order[np.isin(order, allowed)]
        if exclude is not None and exclude.size:
            order = order[~np.isin(order, exclude)]
        top = order[:k]
        return top, (pop if recent is None else recent)[top]

    @property
    def loss(self) -> str | None:
        """The model's loss as its run says (als, softmax, bpr, mse; "explicit" for rating prediction), None where
        nothing says it (a model from arrays without a solve)."""
        if self.explicit:
            return "explicit"
        solve = self.training_ratings.get("solve") or {}
        if solve.get("loss"):
            return solve["loss"]
        return (self.run.manifest.get("model") or {}).get("loss") if self.run is not None else \
            getattr(self, "_parts_loss", None)

    def recommend_vector(self, p: np.ndarray, bias: float, k: int, exclude: np.ndarray, allowed=None):
        q = augment_users(p[None, :])
        exclude = np.asarray(exclude, dtype=np.int64)
        ids, scores = self._finite(*self._search_users(q, (np.zeros(exclude.size, np.int64), exclude), k, allowed))
        if self.explicit:
            return ids[0], self._clip(scores[0] + self.mu + bias)
        return ids[0], scores[0]

    def similar(self, row: int, k: int, allowed=None):
        """Top-k movie rows by cosine similarity to movie ``row`` (itself excluded): exact over the factors
        for a model in memory or a flat index, through the cosine index otherwise."""
        ids, scores = self._similar(row, k, allowed)
        self._finite([ids], [scores])
        return ids, scores

    def _similar(self, row: int, k: int, allowed=None):
        untrained = self.untrained
        if untrained[row]:  # a zero vector: every cosine 0, an arbitrary list (a review)
            raise self.untrained_movies(np.array([row]), "about which movies are like it",
                                        "a movie it was trained on")
        query = np.asarray(self.Q[row])  # a damaged row (a review: two movies listed, 'every other movie')
        check_finite(self.run, query[None], lambda i: f"movie {py_id(self.movie_ids[row])}'s embedding is")
        if not np.any(query):
            log.warning("movie %s has a zero embedding: similarities are all 0", self.movie_ids[row])
        if untrained.any():  # movies no training rating named are never listed (they would come at cosine 0)
            allowed = np.flatnonzero(~untrained) if allowed is None else allowed[~untrained[allowed]]
        few = int(self.popularity[row]) if self.loss == "als" and self.popularity is not None else FEW_RATINGS + 1
        counted = SIMILAR_NOTES.get()
        if 0 < few <= FEW_RATINGS:  # a review: Homage's 6 'similar' movies each at cosine 1.0000, its one rater's
            # others (an als model's vector of a movie is its raters' solve; a diff review: not bpr's, nor explicit's)
            if counted is not None:
                counted["few"].append(py_id(self.movie_ids[row]))
            else:
                log.info("note: movie %s has %d training rating%s: its vector is %s, so the movies most like it "
                         "are those %s also rated, however unlike the films are; a likeness from so few ratings says "
                         "little", py_id(self.movie_ids[row]), few, "" if few == 1 else "s",
                         "its one rater's solve" if few == 1 else "its raters' solve",
                         "that user" if few == 1 else "they")
        twins = self.catalogue.twins([row])  # the same film under another id: not a movie like it (a review)
        if twins.size:
            allowed = np.setdiff1d(np.arange(self.Q.shape[0]) if allowed is None else allowed, twins)
            if counted is not None:
                counted["twins"].append(py_id(self.movie_ids[row]))
            else:
                log.info("note: %s left out of the movies like %s: the same film ('%s') under another id",
                         ", ".join(str(py_id(self.movie_ids[r])) for r in twins), py_id(self.movie_ids[row]),
                         self.catalogue.shown(row))
        if self.run is None or _exact_in_manifest(self.run.manifest, "cos") or \
                (allowed is not None and allowed.size <= FILTER_EXACT_MAX):  # a narrow filter: as _search_users
            return self.factors.similar(row, k, allowed)
        v = normalise(np.asarray(self.factors.cos_movie[row:row + 1]))
        D, I = self.cos_index.search(v, min(k + 1, self.Q.shape[0]), allowed)
        keep = (I[0] >= 0) & (I[0] != row)
        if keep.sum() < min(k, _index_module().left(np.array([row]), self.Q.shape[0], allowed)):
            # the index reached fewer movies than asked for and there are: as _search_users, score exactly
            return self.factors.similar(row, k, allowed)
        if self._lossy():
            ids, scores = _rescore(self.factors, v, [I[0][keep]], unit=True)
            return ids[0][:k], scores[0][:k]
        return I[0][keep][:k], D[0][keep][:k]

    def predict(self, urows: np.ndarray, mrows: np.ndarray) -> np.ndarray:
        """Scores of (user row, movie row) pairs (embedrec.models.Model.predict takes ids)."""
        return self.factors.predict(urows, mrows)


def exact_scores(factors: Factors, users: np.ndarray, ids: list, offset: np.ndarray | None = None) -> tuple[list, list]:
    """Each user's listed movie rows scored again pair by pair, p_u . q_m + b_m (``Factors.predict``'s numbers:
    each pair's own float32 sum, ``factors.pair_dots``), and ordered by that score (equal ones in row order): the
    numbers a user's list prints do not depend on the batch it was scored in, on the index or on the device (a
    matrix product's blocked float32 sums do: a red team found `--user 21` and the same user in a `--users` stream
    printing 0.631551 and 0.63155), and equal ``predict``'s for the same pair. Implicit scores are float32 (the
    sums are); explicit ones add each user's ``offset`` (mu + b_u) and are clipped to the rating scale."""
    if not len(ids):  # no user: no list (np.split would give one empty one)
        return [], []
    if len(ids) == 1:  # one user's list (recommend(user)): the same numbers, without the batch's segments
        return _exact_one(factors, users, ids[0], offset)
    lengths = np.fromiter((len(i) for i in ids), np.int64, len(ids))
    rows = np.concatenate(ids).astype(np.int64, copy=False)
    seg = np.repeat(np.arange(len(ids)), lengths)
    out = np.empty(rows.size, np.float64)
    step = max(1, (1 << 20) // max(factors.movie.shape[1], 1))  # blocks of 4 MB (float32)
    for a in range(0, rows.size, step):
        out[a:a + step] = pair_dots(np.take(users, seg[a:a + step], axis=0),
                                    np.take(factors.movie, rows[a:a + step], axis=0))
    if factors.movie_bias is not None:
        out += np.take(factors.movie_bias, rows)
    # in order already, nearly always (the search's own order): checked in one pass, and only the lists out of order
    # sorted (at k 200 on ML-100K, 35 of 943,000 neighbours were)
    ok = (out[:-1] > out[1:]) | ((out[:-1] == out[1:]) & (rows[:-1] < rows[1:])) | (seg[1:] != seg[:-1])
    if not ok.all():
        ends = np.cumsum(lengths)
        for s in unique(seg[:-1][~ok]):
            a, b = ends[s] - lengths[s], ends[s]
            order = np.lexsort((rows[a:b], -out[a:b]))
            rows[a:b], out[a:b] = rows[a:b][order], out[a:b][order]
    if offset is not None:
        out = factors.clip(out + np.asarray(offset, np.float64)[seg])
    else:
        out = out.astype(np.float32)
    if lengths.size and (lengths == lengths[0]).all() and lengths[0]:  # k each, as nearly always: rows of a matrix
        return list(rows.reshape(-1, int(lengths[0]))), list(out.reshape(-1, int(lengths[0])))
    cuts = np.cumsum(lengths)[:-1]
    return np.split(rows, cuts), np.split(out, cuts)


def _exact_one(factors: Factors, users: np.ndarray, ids, offset: np.ndarray | None) -> tuple[list, list]:
    """:func:`exact_scores` of one list: each pair scored by ``pair_dots`` over the same rows (the user's row
    repeated, the movies' rows), ordered by (score, row), offset and clipped or float32 as there."""
    rows = np.asarray(ids).astype(np.int64, copy=True)
    step = max(1, (1 << 20) // max(factors.movie.shape[1], 1))
    out = np.empty(rows.size, np.float64)
    for a in range(0, rows.size, step):
        out[a:a + step] = pair_dots(np.take(users, np.zeros(rows[a:a + step].size, np.int64), axis=0),
                                    np.take(factors.movie, rows[a:a + step], axis=0))
    if factors.movie_bias is not None:
        out += np.take(factors.movie_bias, rows)
    if rows.size > 1 and not ((out[:-1] > out[1:]) | ((out[:-1] == out[1:]) & (rows[:-1] < rows[1:]))).all():
        order = np.lexsort((rows, -out))
        rows, out = rows[order], out[order]
    out = factors.clip(out + np.asarray(offset, np.float64)[0]) if offset is not None else out.astype(np.float32)
    return [rows], [out]


def _rescore(factors: Factors, queries: np.ndarray, ids: list, unit: bool = False) -> tuple[list, list]:
    """The model's own scores of each query's candidates from a lossy index, best first (equal scores in row
    order): queries are [p_u, 1] against [q_m, b_m], or with ``unit`` normalised movie vectors (cosine)."""
    out_i, out_d = [], []
    for q, i in zip(queries, ids):
        M = np.asarray((factors.cos_movie if unit else factors.movie)[i], dtype=np.float32)
        if unit:
            s = normalise(M) @ q
        else:
            s = M @ q[:-1] + (factors.movie_bias[i] if factors.movie_bias is not None else np.float32(0))
        order = np.lexsort((i, -s))
        out_i.append(i[order])
        out_d.append(s[order].astype(np.float32))
    return out_i, out_d


def _unknown_lookup(arrays, fix: str | None = None) -> tuple:
    """(IdMap of the users, CSR indptr, movie rows) from run_layout.unknown_arrays' arrays (None: no such users)."""
    if arrays is None:
        return IdMap(np.zeros(0, np.int64), "user"), np.zeros(1, np.int64), np.zeros(0, np.int64)
    users, indptr, movies = arrays
    if indptr.shape != (users.size + 1,) or int(indptr[-1]) != movies.size:
        raise ArtifactError("the run's unknown_*.npy arrays (movies rated by users the dataset left out) "
                            f"do not fit together; {fix or '«rerun embedrec train|train again»'}")
    return IdMap(users, "user"), indptr, movies



def lowpass_array(run: Run, width: int) -> np.ndarray | None:
    """An als run's low-pass block's a (run_layout.LOWPASS_A, movies x k), checked against its manifest's record and
    the tables' ``width`` (d + k: verify.check_lowpass); None where the run has no block. Memory-mapped and not
    scanned for NaN as the run opens (only a new user's fold-in reads it, and its vector is checked finite:
    _finite_vector): at 500K movies x 128 a whole read would be 256 MB on every `recommend --user`."""
    return check_lowpass(run, run.array(LOWPASS_A, optional=True, mapped=True), width, finite=False)
