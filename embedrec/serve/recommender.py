"""Serving from a trained run: top-K for users, similar movies, fold-in of new users, pair scores.

Reads only numpy arrays and a small JSON catalogue (ids in user_ids.npy / movie_ids.npy, titles, years and
genres in movies.json), plus FAISS indexes for approximate search: no torch, no pandas, no pyarrow, so a fresh
``embedrec recommend`` process costs little more than importing numpy. Runs written before the catalogue files
are read from their Parquet files through pyarrow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from embedrec.data.ids import IdMap, ids_from_arrow, parse_id, py_id  # noqa: F401 (re-exported for callers)
from embedrec.errors import ArtifactError, NotFoundError, UsageError, shorten
from embedrec.model.factors import Factors, augment_users, exact_topk, normalise
from embedrec.run import Run, load_run
from embedrec.sparse import gather_csr

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import RecommendConfig

log = logging.getLogger("embedrec")
COLUMNS = ["user_id", "rank", "movie_id", "title", "year", "genres", "score"]
LOGGED_UNKNOWN = 5  # unknown ids named one by one on stderr; the rest are counted in one summary line


def _read_parquet_columns(path, columns=None) -> dict:
    import pyarrow.parquet as pq

    try:
        # ParquetFile reads the file directly; pq.read_table goes through pyarrow.dataset, which imports pandas
        t = pq.ParquetFile(path).read(columns=columns)
    except FileNotFoundError:
        raise ArtifactError(f"run artifact '{path}' is missing; «rerun 'embedrec train'|train again and save (er.train(ds, cfg).save(run_dir))»") from None
    except Exception as e:
        raise ArtifactError(f"run artifact '{path}' cannot be read ({str(e).splitlines()[0]})") from None
    # one Array per column: ChunkedArray.to_numpy() would import pandas
    return {name: t.column(name).combine_chunks() for name in t.column_names}


def _index_module():
    """embedrec.serve.index (and FAISS) only when an index is searched: exact top-K needs numpy alone."""
    from embedrec.serve import index

    return index


@dataclass
class Movie:
    idx: int
    movie_id: object
    title: str
    year: int | None
    genres: list[str]


class Recommender:
    def __init__(self, run: Run, rec_cfg: RecommendConfig | None = None):
        self.run = run
        m = run.manifest
        self.cfg = rec_cfg
        self.explicit = run.explicit
        self.P = run.array("user_factors")
        self.Q = run.array("movie_factors")
        self.bu = run.array("user_bias")
        self.bm = run.array("movie_bias")
        self.mu = float(m.get("global_mean", 0.0))
        self.scale = tuple(m["dataset"]["rating_scale"]) if m["dataset"].get("rating_scale") else None
        self.seen_ptr = run.array("seen_indptr")
        self.seen_idx = run.array("seen_indices")
        if self.P.shape[0] != m["n_users"] or self.Q.shape[0] != m["n_movies"] or self.P.shape[1] != self.Q.shape[1]:
            raise ArtifactError(f"run '{run.path}': embedding shapes do not match the manifest; «rerun 'embedrec train'|train again and save (er.train(ds, cfg).save(run_dir))»")
        cat = run.catalogue()
        if cat is not None:  # .npy ids and a JSON catalogue: no pyarrow on the serving path
            self.user_ids, self.movie_ids, movies = cat
            self.titles, self.years, self.genres = movies["title"], movies["year"], movies["genres"]
        else:  # a run written before those files: its Parquet files, through pyarrow
            users = _read_parquet_columns(run.path / "users.parquet", ["user_id"])
            self.user_ids = ids_from_arrow(users["user_id"])
            movies = _read_parquet_columns(run.path / "movies.parquet", ["movie_id", "title", "year", "genres"])
            self.movie_ids = ids_from_arrow(movies["movie_id"])
            self.titles = movies["title"].to_pylist()
            self.years = movies["year"].to_pylist()
            self.genres = movies["genres"].to_pylist()
        self._ip = self._cos = self._flat = None
        self._users = self._movies = self._popularity = None

    @classmethod
    def from_parts(cls, factors: Factors, user_ids: np.ndarray, movies: dict, seen: tuple[np.ndarray, np.ndarray],
                   popularity: np.ndarray, rec_cfg: RecommendConfig | None = None) -> Recommender:
        """A Recommender over arrays in memory (a model not saved yet): exact search, no run directory.

        ``movies`` holds parallel lists movie_id, title, year, genres; ``seen`` is the CSR (indptr, indices) of
        the movies excluded per user; ``popularity`` the number of training ratings per movie."""
        self = cls.__new__(cls)
        self.run, self.cfg, self.explicit = None, rec_cfg, factors.explicit
        self.P, self.Q, self.bu, self.bm = factors.user, factors.movie, factors.user_bias, factors.movie_bias
        self.mu, self.scale = factors.global_mean, factors.rating_scale
        self.seen_ptr, self.seen_idx = seen
        self.user_ids, self.movie_ids = np.asarray(user_ids), np.asarray(movies["movie_id"])
        self.titles, self.years, self.genres = list(movies["title"]), list(movies["year"]), list(movies["genres"])
        self._ip = self._cos = self._flat = None
        self._users = self._movies = None
        self._popularity = np.asarray(popularity)
        return self

    @property
    def factors(self) -> Factors:
        """The arrays this recommender scores with (built on each access: ``scale`` may be changed)."""
        return Factors(self.P, self.Q, self.bu, self.bm, self.mu, self.explicit, self.scale)

    @property
    def popularity(self) -> np.ndarray:
        if self._popularity is None:
            self._popularity = self.run.array("popularity")
        return self._popularity

    # ----------------------------------------------------------------------------------------- lookups
    @classmethod
    def open(cls, run_dir, rec_cfg: RecommendConfig | None = None) -> Recommender:
        return cls(load_run(run_dir), rec_cfg)

    @property
    def ip_index(self):
        if self._ip is None:
            meta = self.run.manifest["index"]
            if meta.get("embeddings_sha256") != self.run.manifest.get("embeddings_sha256"):
                raise ArtifactError(f"the index in '{self.run.path}' was built from other embeddings than the run's; "
                                    "run «'embedrec index rebuild'|embedrec.run.rebuild_index(run_dir)» to rebuild it")
            ix = _index_module()
            self._ip = ix.load_index(self.run.path / ix.IP_FILE, meta, "ip", self.Q.shape[0], self.Q.shape[1] + 1)
        return self._ip

    @property
    def cos_index(self):
        if self._cos is None:
            ix = _index_module()
            self._cos = ix.load_index(self.run.path / ix.COS_FILE, self.run.manifest["index"], "cos",
                                      self.Q.shape[0], self.Q.shape[1])
        return self._cos

    @property
    def users(self) -> IdMap:
        """The user ids <-> rows (an IdMap, built on first use)."""
        if self._users is None or self._users.ids is not self.user_ids:
            self._users = IdMap(self.user_ids, "user")
        return self._users

    @property
    def movies(self) -> IdMap:
        if self._movies is None or self._movies.ids is not self.movie_ids:
            self._movies = IdMap(self.movie_ids, "movie")
        return self._movies

    def user_rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        """Map external user ids to rows; returns (rows with -1 for unknown, the parsed ids)."""
        return self.users.rows(ids)

    def movie_rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        """Map external movie ids to rows, as user_rows (a binary search, not a scan per id)."""
        return self.movies.rows(ids)

    def user_row(self, user_id) -> int:
        return self.users.row(user_id, "use «--fallback popular|missing='popular'», or «--liked/--rated|"
                                       "recommend_new(liked=..., rated=...)» to recommend for a new user")

    def movie_row(self, movie_id) -> int:
        return self.movies.row(movie_id, "check the id (movies.parquet in the run lists them) or search by title "
                                         "with «--movie \"title words\"|find_movie('title words')»")

    def find_movie(self, query: str) -> int:
        """A movie by id, exact title, 'Title (year)', or title words; ambiguity raises UsageError."""
        q = query.strip()
        hit = self.movie_rows([q])[0][0]
        if hit >= 0:
            return int(hit)
        low = q.lower()
        full = [f"{t} ({y})".lower() if y is not None else t.lower() for t, y in zip(self.titles, self.years)]
        exact = [i for i, (t, f) in enumerate(zip(self.titles, full)) if t.lower() == low or f == low]
        if len(exact) == 1:
            return exact[0]
        words = low.split()
        cands = exact or [i for i, f in enumerate(full) if all(w in f for w in words)]
        if len(cands) == 1:
            return cands[0]
        if not cands:
            if parse_id(q, self.movie_ids.dtype) is not None and self.movie_ids.dtype.kind in "iu":
                raise NotFoundError(f"movie '{shorten(q)}' is not in the training data ({len(self.movies):,} "
                                    "movies), and no title matches it; check the id (movies.parquet in the run "
                                    "lists them) or give title words", kind="movie", id=q)
            raise NotFoundError(f"no movie title matches '{shorten(query)}'; try fewer words or the movie id")
        shown = "; ".join(f"{self.movie_ids[i]}: {self.titles[i]} ({self.years[i]})" for i in cands[:10])
        more = f" and {len(cands) - 10} more" if len(cands) > 10 else ""
        raise UsageError(f"'{shorten(query)}' matches {len(cands)} movies: {shown}{more}; pass the movie id or more words")

    def allowed(self, genres: tuple[str, ...] = (), year_min: int | None = None,
                year_max: int | None = None) -> np.ndarray | None:
        """Movie rows passing the filters, or None when there is no filter."""
        if not genres and year_min is None and year_max is None:
            return None
        keep = np.ones(len(self.titles), dtype=bool)
        if genres:
            want = {self.genre_name(g) for g in genres}
            keep &= np.array([bool(want & set(gs or [])) for gs in self.genres])
        years = np.array([y if y is not None else -1 for y in self.years])
        if year_min is not None:
            keep &= years >= year_min
        if year_max is not None:
            keep &= (years <= year_max) & (years >= 0)
        out = np.flatnonzero(keep)
        if out.size == 0:
            log.warning("no movie passes the filters (--genre/--year-min/--year-max)")
        return out

    def genre_name(self, name: str) -> str:
        """The run's spelling of a genre given loosely ('sci fi', "Children's", 'comedy'); an unknown name
        raises UsageError listing the run's genres."""
        import re

        def key(g: str) -> str:
            return re.sub(r"[^a-z0-9]", "", str(g).lower())

        known = sorted({g for gs in self.genres for g in (gs or [])})
        k = key(name)
        for g in known:
            if key(g) == k or key(g) + "s" == k or key(g) == k + "s":
                return g
        listed = ", ".join(known) if known else "none: this dataset has no genres"
        raise UsageError(f"«--genre|genres» '{shorten(name, 40)}': no such genre in this run; valid genres: {listed}")

    # ----------------------------------------------------------------------------------------- scoring
    def _flat_vectors(self) -> np.ndarray | None:
        """The vectors of an exact (flat) index, as numpy; None for approximate indexes.

        A flat inner-product index holds exactly [q_m, b_m] of the run's arrays (index.augment_movies), so
        when the manifest says so they are built from the .npy files without loading FAISS at all: a fresh
        ``embedrec recommend --user`` then costs little more than importing numpy."""
        if self.run is None:  # a model in memory: exact search over its arrays
            if self._flat is None:
                self._flat = self.factors.augmented_movies()
            return self._flat
        meta = self.run.manifest.get("index") or {}
        if (meta.get("kind") == "flat" and meta.get("ip_transform", "ip") == "ip"
                and meta.get("embeddings_sha256") == self.run.manifest.get("embeddings_sha256")):
            if self._flat is None:
                self._flat = self.factors.augmented_movies()
            return self._flat
        return self.ip_index.flat_vectors()

    def _search_users(self, queries: np.ndarray, excl: tuple[np.ndarray, np.ndarray], k: int, allowed) -> tuple:
        """Top-k per query, excluding the (query row, movie) pairs in ``excl`` and movies outside ``allowed``.

        An exact index is searched as one matrix product over its stored vectors with the exclusions masked
        (identical to IndexFlatIP, without asking it for k + seen candidates); an approximate index is asked
        for more candidates until k survive the exclusions.
        """
        n = self.Q.shape[0]
        X = self._flat_vectors()
        if X is not None:
            return exact_topk(queries, X, excl, k, allowed)
        limit = n if allowed is None else allowed.size
        per_row = np.bincount(excl[0], minlength=queries.shape[0])
        bounds = np.concatenate([[0], np.cumsum(per_row)])
        out_i: list = [None] * queries.shape[0]
        out_d: list = [None] * queries.shape[0]
        # rows that need about as many candidates are searched together: a heavy user does not make the
        # whole batch ask for thousands of candidates
        want = np.minimum(k + per_row, limit)
        bucket = np.ceil(np.log2(np.maximum(want, 1))).astype(np.int64)
        pending = [(np.flatnonzero(bucket == b), int(min(2 ** b, limit))) for b in np.unique(bucket)]
        while pending:
            rows, kk = pending.pop()
            D, I = self.ip_index.search(queries[rows], max(kk, 1), allowed)
            short = []
            for j, r in enumerate(rows):
                ids, sc = I[j], D[j]
                ok = ids >= 0
                if per_row[r]:
                    ok &= ~np.isin(ids, excl[1][bounds[r]:bounds[r + 1]])
                ids, sc = ids[ok][:k], sc[ok][:k]
                if ids.size < k and kk < limit:
                    short.append(r)
                out_i[r], out_d[r] = ids, sc
            if short:
                pending.append((np.array(short), min(kk * 2, limit)))
        return out_i, out_d

    def recommend_rows(self, rows: np.ndarray, k: int, include_seen: bool = False, allowed=None):
        """Top-k (movie rows, scores) for user rows, seen movies excluded unless include_seen."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.P.shape[0]):
            # user_rows marks unknown ids -1, and P[-1] is the last user: never answer for it silently
            raise UsageError(f"user rows must be 0..{self.P.shape[0] - 1}, got {int(rows.min())} (an unknown id "
                             "from user_rows); drop the -1 rows, or call recommend(ids, missing=...) instead")
        q = augment_users(np.asarray(self.P[rows]))
        if include_seen:
            excl = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        else:
            r, c, _ = gather_csr(self.seen_ptr, self.seen_idx, np.asarray(rows))
            excl = (r, c.astype(np.int64))
        ids, scores = self._search_users(q, excl, k, allowed)
        if self.explicit:
            extra = self.mu + (self.bu[rows] if self.bu is not None else np.zeros(len(rows)))
            scores = [self._clip(s + e) for s, e in zip(scores, extra)]
        return ids, scores

    def _clip(self, scores: np.ndarray) -> np.ndarray:
        """Explicit scores are predicted ratings: clipped to the rating scale, as ``predict`` does."""
        return self.factors.clip(scores)

    def _seen(self, row: int) -> np.ndarray:
        return np.asarray(self.seen_idx[self.seen_ptr[row]:self.seen_ptr[row + 1]])

    def popular(self, k: int, allowed=None, exclude: np.ndarray | None = None):
        pop = self.popularity.astype(np.float64)
        order = np.argsort(-pop, kind="stable")
        if allowed is not None:
            order = order[np.isin(order, allowed)]
        if exclude is not None and exclude.size:
            order = order[~np.isin(order, exclude)]
        top = order[:k]
        return top, pop[top]

    def fold_in(self, liked: list = (), rated: dict | None = None) -> tuple[np.ndarray, float, np.ndarray]:
        """A user vector for someone not in the training data, from liked movies or {movie: rating}.

        Explicit models: ridge regression of (rating - mu - b_m) on [q_m, 1] gives (p, b_u).
        Implicit models: the implicit-ALS solve (Hu, Koren & Volinsky 2008) against the fixed movie factors,
        p = (Q^T Q + alpha Q_S^T Q_S + reg I)^-1 (1 + alpha) Q_S^T 1.
        """
        reg = self.cfg.foldin_reg if self.cfg else 0.1
        alpha = self.cfg.foldin_alpha if self.cfg else 10.0
        items: dict[int, float] = {}
        top = self.scale[1] if self.scale else 1.0
        for mid in liked:
            items[self.movie_row(mid)] = top
        for mid, r in (rated or {}).items():
            r = float(r)
            if not np.isfinite(r):
                raise UsageError(f"«--rated|rated» '{shorten(mid, 40)}={r:g}': the rating must be a finite number, e.g. "
                                 f"«--rated {shorten(mid, 40)}={top:g}|rated={{{shorten(mid, 40)!r}: {top:g}}}»")
            if self.scale and not self.scale[0] <= r <= self.scale[1]:
                raise UsageError(f"«--rated|rated» '{shorten(mid, 40)}={r:g}': {r:g} is outside this model's rating scale "
                                 f"{self.scale[0]:g}-{self.scale[1]:g}; give ratings from {self.scale[0]:g} to "
                                 f"{self.scale[1]:g}")
            items[self.movie_row(mid)] = r
        if not items:
            raise UsageError("give at least one movie with «--liked or --rated|liked= or rated=»")
        rows = np.array(list(items), dtype=np.int64)
        Qs = np.asarray(self.Q[rows], dtype=np.float64)
        d = self.Q.shape[1]
        if self.explicit:
            y = np.array([items[r] for r in rows]) - self.mu - (self.bm[rows] if self.bm is not None else 0.0)
            X = np.hstack([Qs, np.ones((rows.size, 1))])
            A = X.T @ X + reg * rows.size * np.eye(d + 1)
            sol = np.linalg.solve(A, X.T @ y)
            return sol[:d].astype(np.float32), float(sol[d]), rows
        Q = np.asarray(self.Q, dtype=np.float64)
        A = Q.T @ Q + alpha * Qs.T @ Qs + reg * np.eye(d)
        p = np.linalg.solve(A, (1 + alpha) * Qs.sum(axis=0))
        return p.astype(np.float32), 0.0, rows

    def user_from_features(self, values: dict[str, str]) -> tuple[np.ndarray, float]:
        """A vector for a new user from demographics alone (models trained with features.user), e.g.
        {"age": "25", "gender": "F"}: the sum of the feature embeddings, plus the one-hot blocks of crosses."""
        from embedrec.model.features import encode_values

        if self.run is None:
            raise UsageError("a new user from demographics needs the saved model: save() it, then open() the run")
        feats = self.run.manifest.get("features") or {}
        cols = {c["key"]: c for c in feats.get("user", [])}
        if not cols:
            raise UsageError("this model has no user features; train with e.g. «--set 'features.user=[age, gender]'|"
                             "features.user=[age, gender]» "
                             "on a dataset with demographics (ML-100K, ML-1M)")
        for name in values:
            if f"user.{name}" not in cols:
                raise UsageError(f"«--user-features|values»: unknown column '{shorten(name, 40)}'; this model has "
                                 f"{', '.join(k.split('.')[1] for k in cols)}")
        edges = {"user.age": feats.get("age_edges"), "movie.decade": feats.get("year_edges")}
        idx = {k: encode_values(feats, k, values.get(k.split(".")[1]), edges) for k in cols}
        for k, i in idx.items():
            given = values.get(k.split(".")[1])
            if given is not None and i == 0 and k not in ("user.age",):
                known = [v for v in cols[k]["vocab"] if v != "unknown"]
                log.warning("--user-features %s=%s: not a value this model knows; treated as unknown (known: %s)",
                            k.split(".")[1], given, ", ".join(map(str, known[:30])) + (" ..." if len(known) > 30 else ""))
        d = int(self.run.manifest["model"]["dim"])
        p = np.zeros(self.P.shape[1], dtype=np.float32)
        bias = 0.0
        for key in cols:
            name = key.replace(".", "_")
            if key in feats.get("embedded", []):
                p[:d] += self.run.array(f"feature_{name}")[idx[key]]
                bp = self.run.path / f"feature_bias_{name}.npy"
                if bp.exists():
                    bias += float(np.load(bp, allow_pickle=False)[idx[key]])
        offset = d
        for a, b in feats.get("crosses", []):
            if a.startswith("user.") and b.startswith("movie."):
                p[offset + idx[a]] = 1.0
                offset += len(cols[a]["vocab"])
        return p, bias

    def recommend_vector(self, p: np.ndarray, bias: float, k: int, exclude: np.ndarray, allowed=None):
        q = augment_users(p[None, :])
        exclude = np.asarray(exclude, dtype=np.int64)
        ids, scores = self._search_users(q, (np.zeros(exclude.size, np.int64), exclude), k, allowed)
        if self.explicit:
            return ids[0], self._clip(scores[0] + self.mu + bias)
        return ids[0], scores[0]

    def similar(self, row: int, k: int, allowed=None):
        v = normalise(np.asarray(self.Q[row:row + 1]))
        if not np.any(v):
            log.warning("movie %s has a zero embedding: similarities are all 0", self.movie_ids[row])
        if self.run is None:
            return self.factors.similar(row, k, allowed)
        D, I = self.cos_index.search(v, min(k + 1, self.Q.shape[0]), allowed)
        keep = (I[0] >= 0) & (I[0] != row)
        return I[0][keep][:k], D[0][keep][:k]

    def predict(self, urows: np.ndarray, mrows: np.ndarray) -> np.ndarray:
        """Scores of (user row, movie row) pairs (embedrec.api.Model.predict takes ids)."""
        return self.factors.predict(urows, mrows)

    # ----------------------------------------------------------------------------------------- rows
    def rows_for(self, user_id, movie_rows: np.ndarray, scores: np.ndarray) -> Iterator[dict]:
        mids = self.movie_ids[movie_rows].tolist()
        for rank, (m, mid, s) in enumerate(zip(movie_rows.tolist(), mids, np.asarray(scores).tolist()), 1):
            yield {"user_id": user_id, "rank": rank, "movie_id": mid, "title": self.titles[m],
                   "year": self.years[m], "genres": self.genres[m] or [], "score": s}


def recommend_many(rec: Recommender, lines: Iterable[str], k: int, *, include_seen=False, allowed=None,
                   strict=False, fallback="none", batch=4096, on_batch=None, name: str = "<input>"
                   ) -> Iterator[tuple]:
    """Stream (user_id, movie rows, scores) for many user ids (one per line), batched through the index.

    A header line first ('user_id' or 'user') is skipped, as ``predict`` skips one.
    ``on_batch`` is called after each batch's results were taken (the CLI flushes stdout there, so a reader
    on the other end of a pipe gets each batch's answers while the next ids are still coming)."""
    skipped = [0]

    def flush(numbered: list[tuple[int, str]]):
        buf = [t for _, t in numbered]
        rows, parsed = rec.user_rows(buf)
        known = rows >= 0
        for (n, t), r in zip(numbered, rows):
            if r < 0:
                if strict:
                    raise NotFoundError(f"{name}:{n}: user '{shorten(t)}' is not in the training data; without "
                                        "«--strict|strict=True» unknown users are skipped (or answered with "
                                        "«--fallback popular|fallback='popular'»)", kind="user", id=t)
                if fallback != "popular":
                    skipped[0] += 1
                    if skipped[0] <= LOGGED_UNKNOWN:
                        log.warning("unknown user '%s' skipped", shorten(t))
        results = {}
        if known.any():
            ids, scores = rec.recommend_rows(rows[known], k, include_seen, allowed)
            for r, i, s in zip(rows[known], ids, scores):
                results[int(r)] = (i, s)
        for t, p, r in zip(buf, parsed, rows):
            if r >= 0:
                yield (p, *results[int(r)])
            elif fallback == "popular":
                yield (p if p is not None else t, *rec.popular(k, allowed))

    buf: list[tuple[int, str]] = []
    first = True
    for n, line in enumerate(lines, 1):
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        if first:
            first = False
            if t.lower() in ("user_id", "user", "userid", "user id"):
                continue  # a header line
        buf.append((n, t))
        if len(buf) >= batch:
            yield from flush(buf)
            buf = []
            if on_batch is not None:
                on_batch()
    if buf:
        yield from flush(buf)
        if on_batch is not None:
            on_batch()
    if skipped[0] > LOGGED_UNKNOWN:
        log.warning("%s unknown users skipped in all (the first %d are named above)", f"{skipped[0]:,}",
                    LOGGED_UNKNOWN)


def as_rows(rec: Recommender, triples: Iterable[tuple]) -> Iterator[dict]:
    for user_id, ids, scores in triples:
        yield from rec.rows_for(user_id, ids, scores)


def write_delimited(rec: Recommender, triples: Iterable[tuple], fmt: str, out, header: bool = True) -> None:
    """CSV/TSV rows of COLUMNS, fast: each movie's cells are quoted once and reused."""
    import csv
    import io

    from embedrec.output import _plain

    delim = "," if fmt == "csv" else "\t"
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator="")
    cache: dict[int, str] = {}

    def cells(values) -> str:
        buf.seek(0)
        buf.truncate()
        w.writerow([_plain(v) for v in values])
        return buf.getvalue()

    # the header goes out with the first row, so an error before it (--strict) leaves stdout empty
    for user_id, ids, scores in triples:
        if header:
            out.write(delim.join(COLUMNS) + "\n")
            header = False
        u = cells([user_id])
        parts = []
        for rank, (m, sc) in enumerate(zip(ids.tolist(), np.asarray(scores).tolist()), 1):
            mc = cache.get(m)
            if mc is None:
                mc = cache[m] = cells([self_id(rec, m), rec.titles[m], rec.years[m], rec.genres[m] or []])
            parts.append(f"{u}{delim}{rank}{delim}{mc}{delim}{round(sc, 6)!r}\n")
        out.write("".join(parts))
    if header:
        out.write(delim.join(COLUMNS) + "\n")


def write_jsonl(rec: Recommender, triples: Iterable[tuple], out) -> None:
    """JSON Lines of COLUMNS, fast like write_delimited: each movie's JSON fields are encoded once and reused
    (the same objects ``write_rows(as_rows(...), COLUMNS, "jsonl")`` prints)."""
    import json
    import math

    cache: dict[int, str] = {}
    for user_id, ids, scores in triples:
        u = '{"user_id": ' + json.dumps(user_id, ensure_ascii=False) + ', "rank": '
        parts = []
        for rank, (m, sc) in enumerate(zip(ids.tolist(), np.asarray(scores).tolist()), 1):
            mc = cache.get(m)
            if mc is None:
                mc = cache[m] = json.dumps({"movie_id": self_id(rec, m), "title": rec.titles[m], "year": rec.years[m],
                                            "genres": rec.genres[m] or []}, ensure_ascii=False)[1:-1]
            parts.append(f'{u}{rank}, {mc}, "score": {repr(sc) if math.isfinite(sc) else "null"}}}\n')
        out.write("".join(parts))


def self_id(rec: Recommender, m: int):
    return py_id(rec.movie_ids[m])


# ----------------------------------------------------------------------------------------- option text
def parse_pairs(text: str, option: str, example: str) -> list[tuple[str, str]]:
    """'a=1,b=2' as [(a, '1'), (b, '2')]; a part without '=' is a UsageError naming ``option``."""
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} '{shorten(part)}': expected NAME=VALUE, e.g. {option} {example}")
        out.append((key.strip(), value.strip()))
    return out


def parse_rated(text: str) -> dict:
    """'50=5,181=4' as {'50': 5.0, '181': 4.0} (the --rated option)."""
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        mid, sep, r = part.partition("=")
        try:
            out[mid.strip()] = float(r)
        except ValueError:
            raise UsageError(f"--rated '{shorten(part)}': expected MOVIE=RATING, e.g. --rated 50=5,181=4") from None
        if not sep:
            raise UsageError(f"--rated '{shorten(part)}': expected MOVIE=RATING, e.g. --rated 50=5,181=4")
    return out


def parse_liked(text: str) -> list[str]:
    """'50,181' as ['50', '181'] (the --liked option)."""
    return [t.strip() for t in text.split(",") if t.strip()]
