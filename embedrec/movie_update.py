"""``embedrec update-users --new-movies``: the movies a ratings file names that the run does not know, added to it
(implicit's ``partial_fit_items``), before its users are re-solved (user_update.py).

Each new movie is solved as training's movie half solves a movie, against the fixed vectors of the users the run
knows that rated it (serve.update.als_new_movies: the unobserved term over every user, the frequency-scaled L2;
the low-pass block's columns by the SVD's fold-in of its column), each rating weighed as the users' re-solve weighs
it (serve.update.latest_weights), then the engine is grown by them (``Recommender.add_movies``), so the users'
re-solve that follows is over their ratings of the new movies too: one half-sweep each way, movies first. A new
movie rated only by users the file adds (no vector yet), or only below data.min_rating, has nothing to be solved
from: its ratings are left out, said, as those of a movie the run does not know are without ``new_movies``.

The new folder holds the grown movie tables (movie_factors.npy, lowpass_a.npy where the run has the block,
popularity.npy with a count of 0 for each new movie: the training ratings' counts, as for the users' new
ratings), its ids and catalogue (movies.parquet, movie_ids.npy,
movies.json: a title, year and genres where the file's own title and genres columns give them, as ingest reads
them from a ratings file, else none), and FAISS indexes built again over every movie (serve.index.build_indexes,
the run's own index settings); the manifest's n_movies grows and its ``updates`` record counts them
(``movies_added``), so run_updates.trained_movies tells the dataset's movies from them (evaluate ranks the
dataset's alone). Only an als run; one that adds recent popularity (train.als_trend) gives a new movie the bias of its
ratings in the run's recorded window (serve.update.new_movie_bias), and is refused where it records none
(serve.update.check_movies_addable).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import ArtifactError, shorten
from embedrec.run_layout import CATALOGUE, LOWPASS_A, MOVIE_FACTORS, USER_FACTORS

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.data.readers import RawData
    from embedrec.run import Run
    from embedrec.serve.recommender import Recommender
    from embedrec.user_update_file import Pairs

log = logging.getLogger("embedrec")
NAMED = 5  # movies named one by one in a warning; the rest are counted


@dataclasses.dataclass
class AddedMovies:
    """The movies an update adds, in the order their rows follow the run's: their ids (as the run's), rows of the
    movie table (float32) and of the low-pass block's a (None without one), their training ratings' counts (0: none;
    popularity.npy's), and their titles, years and genres (the file's own columns; '', None, [] where it gives
    none)."""

    ids: list
    rows: np.ndarray
    a_rows: np.ndarray | None
    counts: np.ndarray
    titles: list
    years: list
    genres: list
    bias: np.ndarray | None = None  # recent popularity's beta z where the run adds it (serve.update.new_movie_bias)
    # movies an earlier update added, re-solved by this one: {row: (its row of the movie table, of a or None, its
    # bias or None)} (:func:`resolve_added`)
    resolved: dict = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def changed(self) -> bool:
        """Whether the movie tables change: movies added or re-solved."""
        return bool(self.ids) or bool(self.resolved)


def add_movies(engine: Recommender, pairs: Pairs, raw: RawData, strict: bool = False
               ) -> tuple[AddedMovies | None, Pairs]:
    """The new movies of ``pairs`` (rows n_movies + j: user_update_file._file_pairs with ``new_movies``) solved against
    the users the run knows (:func:`solved_raters`), the engine grown by them (``Recommender.add_movies``), and
    ``pairs`` with those movies' rows made consecutive, the ratings of a new movie with nothing to solve it from
    left out (said; ``strict``: refused, as a movie the run does not know is without ``new_movies``). (None,
    ``pairs``) where the file names no new movie, or none can be solved."""
    from embedrec.serve.update import als_new_movies, new_movie_bias

    n_movies = int(engine.Q.shape[0])
    resolved = resolve_added(engine, pairs)
    new = pairs.movies >= n_movies
    if not new.any():
        return _resolved_only(engine, resolved), pairs
    raters = solved_raters(engine, pairs)
    kept = [j for j, got in enumerate(raters) if got is not None]
    left = [pairs.new_movie_ids[j] for j, got in enumerate(raters) if got is None]
    if left and strict:
        from embedrec.errors import NotFoundError

        raise NotFoundError(f"{raw.origin[0]}: new movie '{shorten(str(left[0]), 40)}'"
                            f"{f' (and {len(left) - 1:,} more)' if len(left) > 1 else ''} has no rating by a user the "
                            "run knows at or above the dataset's data.min_rating, so nothing to solve it from; "
                            "«--strict|strict=True» refuses such a file: leave those rows out, or leave «--strict|"
                            "strict=True» out to leave their ratings out with a warning", kind="movie", ids=left)
    place = np.full(len(raters), -1, np.int64)
    place[kept] = np.arange(len(kept))
    movies = pairs.movies.copy()
    movies[new] = np.where(place[movies[new] - n_movies] >= 0, n_movies + place[movies[new] - n_movies], -1)
    keep = movies >= 0
    if left and keep.any():  # (none kept: the caller's error says it, in one line)
        shown = ", ".join(f"'{shorten(str(i), 40)}'" for i in left[:NAMED]) + (
            f" and {len(left) - NAMED:,} more" if len(left) > NAMED else "")
        log.warning("left the ratings of %s of the %s new movies in %s out: %s %s no rating by a user the run "
                    "knows (a user the file adds has no vector yet to solve a movie against) at or above the "
                    "dataset's data.min_rating, so nothing to solve %s from; a later update with such ratings adds "
                    "%s", f"{len(left):,}", f"{len(raters):,}", raw.origin[0], shown,
                    "has" if len(left) == 1 else "have", "it" if len(left) == 1 else "them",
                    "it" if len(left) == 1 else "them")
    pairs = dataclasses.replace(pairs, users=pairs.users[keep], movies=movies[keep], values=pairs.values[keep],
                                times=None if pairs.times is None else pairs.times[keep],
                                new_movie_ids=[pairs.new_movie_ids[j] for j in kept])
    if not kept:
        return _resolved_only(engine, resolved), pairs
    rows, a_rows = als_new_movies(engine, [raters[j] for j in kept])
    if not np.isfinite(rows).all():  # never a movie that scores NaN
        raise ArtifactError("a new movie's solved vector is not finite: this run's embeddings hold values too large "
                            "for the solve; «run 'embedrec verify', then train again|train again»")
    # (no training rating: popularity.npy and movies.parquet's n_ratings stay the trained model's counts, as
    # update-users leaves them for the users' new ratings; a benchmark: the file's counts there overran the
    # dataset's total, which every reader of popularity.npy refuses as damaged)
    counts = np.zeros(len(kept), np.int64)
    titles, years, genres = _catalogue_of(raw, pairs.new_movie_ids)
    bias = new_movie_bias(engine, window_counts(engine, pairs, len(kept)))
    added = AddedMovies(list(pairs.new_movie_ids), rows, a_rows, counts, titles, years, genres, bias, resolved)
    engine.add_movies(rows, a_rows, counts, bias)
    return added, pairs


def _resolved_only(engine: Recommender, resolved: dict) -> AddedMovies | None:
    """An update that adds no movie but solves an earlier update's again (``resolved``), or None where neither."""
    if not resolved:
        return None
    return AddedMovies([], np.zeros((0, engine.Q.shape[1]), np.float32), None, np.zeros(0, np.int64), [], [], [],
                       resolved=resolved)


def resolve_added(engine: Recommender, pairs: Pairs) -> dict:
    """The movies an earlier update added (rows from run_updates.trained_movies on), and the dataset's without a
    training rating (:func:`unfitted`: solved as one added), that this file gives new ratings
    (at or above data.min_rating, of any user), each solved again as it was added (serve.update.als_new_movies)
    over every rating the run holds of it (its seen pairs of weight above 0, as their solve weighed them) and the
    file's new ones of users it knows (weighed as the users' re-solve weighs a new rating), its recent-popularity
    bias recounted over those it holds in the window (their times the updates' records: run_layout.UPDATE_PAIRS)
    and the file's new ones, a user it adds too; the engine's rows replaced (``Recommender.add_movies``' ``replace_rows``).
    {row: (its row of the movie table, of a or None, its bias or None)}; {} where none. A review of a daily click
    log: a movie added on one day kept the vector of that day's clicks for good, its recall falling from 0.28 to
    0.19 in two days where a retrain held 0.30."""
    from embedrec.model.factors import UNTRAINED_BIAS
    from embedrec.run_layout import UPDATE_PAIRS
    from embedrec.run_updates import trained_movies
    from embedrec.serve.update import als_new_movies, latest_weights, new_movie_bias

    run = engine.run
    n_movies, n_users = int(engine.Q.shape[0]), int(engine.P.shape[0])
    first = trained_movies(run.manifest) if run is not None else n_movies
    low = engine.training_ratings["min_rating"]
    ok = (pairs.movies < n_movies) & ~np.isnan(pairs.values)  # (any user's: its count)
    ok[ok] &= (pairs.movies[ok] >= first) | unfitted(engine, pairs.movies[ok], first)
    if low is not None:
        ok &= pairs.values >= low
    if not ok.any():
        return {}
    ptr, idx = np.asarray(engine.seen_ptr, np.int64), np.asarray(engine.seen_idx, np.int64)
    new_pair = ok.copy()  # not a pair the run holds (which keeps its weight); a user the file adds holds none
    solvable = np.zeros(ok.size, bool)  # ... and of a user the run knows with a vector: solved on
    for i in np.flatnonzero(ok).tolist():  # (the file's users' slices alone read)
        u = int(pairs.users[i])
        if u < n_users:
            new_pair[i] = not np.isin(pairs.movies[i], idx[ptr[u]:ptr[u + 1]])
            solvable[i] = new_pair[i] and bool(np.asarray(engine.P[u]).any())
    movies = np.unique(pairs.movies[new_pair])  # (a new user's rating of it: its count, a review found it unsaid)
    if not movies.size:
        return {}
    weights = np.asarray(engine.solve_arrays()[0])
    held = np.flatnonzero(np.isin(idx, movies) & (weights > 0))  # (one pass over the seen pairs, grouped after)
    held = held[np.argsort(idx[held], kind="stable")]
    starts, ends = np.searchsorted(idx[held], movies), np.searchsorted(idx[held], movies, side="right")
    raters, owners = [], []
    for m, a, b in zip(movies.tolist(), starts, ends):
        mine = held[a:b]
        owners.append(np.searchsorted(ptr, mine, side="right") - 1)
        new = solvable & (pairs.movies == m)
        w = latest_weights(engine, dict(enumerate(pairs.values[new].tolist())))
        raters.append((np.concatenate([owners[-1], pairs.users[new].astype(np.int64)]),
                       np.concatenate([weights[mine].astype(np.float64), [w[i] for i in range(int(new.sum()))]])))
    some = np.array([r[0].size > 0 for r in raters], bool)
    if not some.all():  # a dataset's movie without a training rating that only users the file adds rated: nothing
        _say_unsolved(engine, movies[~some])  # to solve it from (a diff review: a zero row, said as solved)
        movies, raters, owners = movies[some], [r for r, k in zip(raters, some) if k], \
            [o for o, k in zip(owners, some) if k]
        if not movies.size:
            return {}
    rows, a_rows = als_new_movies(engine, raters)
    if not np.isfinite(rows).all():
        raise ArtifactError("a movie's solved vector is not finite: this run's embeddings hold values too large for "
                            "the solve; «run 'embedrec verify', then train again|train again»")
    counts = np.zeros(movies.size, np.int64)  # in the window: the ratings the run holds of it, and the file's new
    solve = engine.training_ratings.get("solve") or {}
    if float(solve.get("trend", 0.0)) > 0:
        cut = (solve.get("trend_window") or {}).get("cut")
        given = run.array(UPDATE_PAIRS, optional=True) if run is not None else None

        def inside(t: np.ndarray) -> int:  # (a time not given: after training, in the window)
            return int(t.size if cut is None else (np.isnan(t) | (t >= cut)).sum())

        for i, m in enumerate(movies.tolist()):
            new = new_pair & (pairs.movies == m)
            counts[i] = inside(pairs.times[new] if pairs.times is not None else np.full(int(new.sum()), np.nan))
            # the ratings the run holds of it (seen, weight above 0: a rating below data.min_rating, or a row kept
            # as seen alone, has none), at the times the updates gave them (run_layout.UPDATE_PAIRS; a file
            # without a rating column records no rating, a review found them dropped from the count)
            t = np.full(owners[i].size, np.nan)
            if given is not None:
                g = given[given["movie_idx"] == m]
                at = {int(u): float(x) for u, x in zip(g["user_idx"].tolist(), g["timestamp"].tolist())}
                t = np.array([at.get(int(u), np.nan) for u in owners[i].tolist()], np.float64)
            counts[i] += inside(t)
    bias = new_movie_bias(engine, counts)
    if bias is None and engine.factors.movie_bias is not None:  # a catalogue movie's -1000 (never served) made
        bias = np.where(np.asarray(engine.factors.movie_bias)[movies] <= UNTRAINED_BIAS, 0.0, np.nan)  # an added
    got = {int(m): (rows[i], None if a_rows is None else a_rows[i],    # movie's 0; the others keep theirs
                    None if bias is None or np.isnan(bias[i]) else float(bias[i]))
           for i, m in enumerate(movies.tolist())}
    engine.add_movies(np.zeros((0, engine.Q.shape[1]), np.float32), None, np.zeros(0, np.int64), None,
                      replace_rows=got)
    return got


def _say_unsolved(engine: Recommender, rows: np.ndarray) -> None:
    """The warning for movies of the dataset without a training rating (``rows``) that the file rates, none of them
    by a user the run knows with a vector: left as they are (no vector, never served), as a new movie with nothing
    to solve it from is left out (:func:`add_movies`)."""
    shown = ", ".join(f"'{shorten(str(engine.movie_ids[r]), 40)}'" for r in rows[:NAMED].tolist()) + (
        f" and {rows.size - NAMED:,} more" if rows.size > NAMED else "")
    one = rows.size == 1
    log.warning("left %s of the dataset without a training rating as %s (%s): %s no rating in the file by a user "
                "the run knows (a user the file adds has no vector yet to solve a movie against) at or above the "
                "dataset's data.min_rating, so nothing to solve %s from; a later update with such ratings solves %s",
                f"{rows.size:,} movie{'' if one else 's'}", "it is" if one else "they are", shown,
                "it has" if one else "they have", "it" if one else "them", "it" if one else "them")


def unfitted(engine: Recommender, rows: np.ndarray, first: int) -> np.ndarray:
    """Per movie row of ``rows``: one of the dataset's (below ``first``, run_updates.trained_movies) that no training
    rating named: kept in the catalogue without a vector (data.keep_unrated_movies; a movie only the test split
    rated), or given one by an earlier update (a training count of 0: popularity.npy): what ``--new-movies`` solves
    from the file's ratings as it solves a movie it adds (a review: such a movie's ratings were seen, solved on by
    no one, and the movie never served, without a warning)."""
    rows = np.asarray(rows, np.int64)
    return (rows < first) & (engine.untrained[rows] | (np.asarray(engine.popularity)[rows] == 0))


def window_counts(engine: Recommender, pairs: Pairs, n: int) -> np.ndarray:
    """Each of the ``n`` new movies' ratings in ``pairs`` in the run's recent-popularity window (its
    ``solve.trend_window``: a time at or after its cut, or none given, as new ratings come after the training ones;
    every one where the window is all the ratings), as training counted its movies' (its rows: a rating at or above
    data.min_rating, not a row data.missing=drop dropped). Zeros where the run adds no recent popularity."""
    solve = engine.training_ratings.get("solve") or {}
    n_movies = int(engine.Q.shape[0])
    if float(solve.get("trend", 0.0)) <= 0:
        return np.zeros(n, np.int64)
    cut = (solve.get("trend_window") or {}).get("cut")
    ok = (pairs.movies >= n_movies) & ~np.isnan(pairs.values)
    low = engine.training_ratings["min_rating"]
    if low is not None:
        ok &= pairs.values >= low
    if cut is not None and pairs.times is not None:
        ok &= np.isnan(pairs.times) | (pairs.times >= cut)
    return np.bincount(pairs.movies[ok] - n_movies, minlength=n).astype(np.int64)


def solved_raters(engine: Recommender, pairs: Pairs) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """For each new movie of ``pairs`` (row n_movies + j, j in order), (its raters' user rows, their weights) to be
    solved from: the pairs of users the run knows with a vector (not a user the file adds, nor one of the
    dataset's without a training rating: a zero vector), a rating given (not a row data.missing=drop dropped, kept as
    seen alone) at or above data.min_rating, weighed as the users' re-solve weighs a new rating
    (serve.update.latest_weights); None for a movie with no such pair."""
    from embedrec.serve.update import latest_weights

    n_movies, n_users = int(engine.Q.shape[0]), int(engine.P.shape[0])
    low = engine.training_ratings["min_rating"]
    P = engine.P
    out: list = [None] * len(pairs.new_movie_ids)
    ok = (pairs.movies >= n_movies) & (pairs.users < n_users) & ~np.isnan(pairs.values)
    if low is not None:
        ok &= pairs.values >= low
    at = np.flatnonzero(ok)
    if at.size:
        at = at[np.asarray(P[pairs.users[at]]).any(axis=1)]
    order = at[np.argsort(pairs.movies[at], kind="stable")]
    movies = pairs.movies[order]
    starts = np.flatnonzero(np.r_[True, movies[1:] != movies[:-1]]) if movies.size else np.zeros(0, np.int64)
    for a, b in zip(starts, np.r_[starts[1:], movies.size]):
        rows = order[a:b]
        w = latest_weights(engine, dict(enumerate(pairs.values[rows].tolist())))
        out[int(movies[a]) - n_movies] = (pairs.users[rows].astype(np.int64),
                                          np.array([w[i] for i in range(rows.size)], np.float64))
    return out


def _catalogue_of(raw: RawData, ids: list) -> tuple[list, list, list]:
    """(titles, years, genres) of the new movies ``ids`` from the file's own title and genres columns (RawData.movies,
    as ingest reads a ratings file's: a year in a title's '(1995)' read so), '' / None / [] where it gives none."""
    movies = raw.movies
    if movies is None or not len(movies):
        return [""] * len(ids), [None] * len(ids), [[] for _ in ids]
    by = movies.drop_duplicates("movie_id").set_index("movie_id")
    titles, years, genres = [], [], []
    for i in ids:
        row = by.loc[i] if i in by.index else None
        titles.append("" if row is None or not isinstance(row["title"], str) else row["title"])
        y = None if row is None else row.get("year")
        years.append(None if y is None or y is np.nan or (isinstance(y, float) and np.isnan(y)) or
                     str(y) == "<NA>" else int(y))
        g = None if row is None else row.get("genres")
        genres.append(list(g) if g is not None and not isinstance(g, float) else [])
    return titles, years, genres


def movie_arrays(engine: Recommender, run: Run, added: AddedMovies) -> dict:
    """The grown movie arrays an update writes (run_layout's names, without .npy): the movie table (its rows as
    served, the new ones after them: never a copy of it in memory), the low-pass block's a, the movie bias (a new
    movie's recent popularity, where the run adds it: AddedMovies.bias) and the popularity (0 for a new movie: the training
    ratings' counts)."""
    from embedrec.artifacts import PatchedRows

    n = int(engine.Q.shape[0]) - len(added)  # (the engine holds them already: Recommender.add_movies)
    again = added.resolved  # (an earlier update's movies, solved again: their rows replaced)
    out = {"movie_factors": PatchedRows(run.array("movie_factors", mmap=True), {r: v[0] for r, v in again.items()},
                                        added.rows if len(added) else None),
           "popularity": np.concatenate([np.asarray(run.array("popularity"))[:n],
                                         added.counts.astype(run.array("popularity").dtype)])}
    lowpass = run.array(LOWPASS_A, mmap=True, optional=True)
    if lowpass is not None and (added.a_rows is not None or again):
        out[LOWPASS_A] = PatchedRows(lowpass, {r: v[1] for r, v in again.items() if v[1] is not None},
                                     added.a_rows if len(added) else None)
    bias = run.array("movie_bias", optional=True)
    if bias is not None:
        new = np.zeros(len(added), bias.dtype) if added.bias is None else added.bias.astype(bias.dtype)
        bias = np.concatenate([bias, new])
        for r, v in again.items():
            if v[2] is not None:
                bias[r] = v[2]
        out["movie_bias"] = bias
    return out


def write_movie_ids(tmp: Path, run: Run, added: AddedMovies, n_movies: int) -> set[str]:
    """The catalogue of the grown movies: movies.parquet gains a row each (its row, its id, title, year, genres,
    n_ratings: 0, no training rating), and movie_ids.npy and movies.json (titles, years, genres; the twins of the
    run's own, a new movie listed under no other id: it has no year's title twin of its own unless the file gives
    one) are written from it as artifacts.write_catalogue writes them. Returns the names of the files written."""
    import json

    from embedrec.artifacts import grow_id_table
    from embedrec.run import twin_groups

    grown, out = grow_id_table(tmp, run, "movie", {"movie_id": added.ids, "title": added.titles, "year": added.years,
                                                   "genres": added.genres, "n_ratings": added.counts}, n_movies)
    if run.checksum(CATALOGUE):
        cat = {c: grown.column(c).combine_chunks().to_pylist() for c in ("title", "year", "genres")}
        cat["genres"] = [g or [] for g in cat["genres"]]
        cat["title"] = [t or "" for t in cat["title"]]
        cat["twins"] = twin_groups(cat["title"], cat["year"])
        (tmp / CATALOGUE).write_text(json.dumps(cat, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        out.add(CATALOGUE)
    return out


def index_of(tmp: Path, run: Run, arrays: dict, emb_hash: str, progress: bool = False) -> dict:
    """The FAISS indexes built again over the grown movie table (``arrays``: what the update writes), with the
    run's own index settings (its config.yaml's ``index``), into ``tmp``; their record for the manifest."""
    from embedrec.run_inputs import run_index_config
    from embedrec.serve.index import build_indexes

    f = {"movie_factors": np.load(tmp / MOVIE_FACTORS, mmap_mode="r", allow_pickle=False),
         "movie_bias": arrays.get("movie_bias"),
         "user_factors": np.load(tmp / USER_FACTORS, mmap_mode="r", allow_pickle=False)
         if (tmp / USER_FACTORS).exists() else run.array("user_factors", mapped=True),
         "lowpass": ((run.manifest.get("training_ratings") or {}).get("solve") or {}).get("lowpass")}
    seen = (np.load(tmp / "seen_indptr.npy", mmap_mode="r"), np.load(tmp / "seen_indices.npy", mmap_mode="r"))
    return build_indexes(tmp, f, run_index_config(run), emb_hash, seen=seen, progress=progress)
