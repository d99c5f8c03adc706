"""A user's history in the prepared dataset a run was trained on (``Model.history``, ``embedrec history``): each
movie they rated, its rating (a click log's count), its time where the data has times, and the part of the
dataset it is in: the ``train``, ``valid`` or ``test`` split, or ``rated_below`` (rated, never trained on: below
data.min_rating, or a movie the k-core filter dropped that data.keep_unrated_movies kept; the dataset keeps no
rating or time of those; for a user the cleaning left out, whose every rating was below data.min_rating, its
movies in rated_below_unknown.parquet, by its id); and, on a run ``embedrec update-users`` updated, ``update``: a
movie an update gave the user, with the rating and time its file gave (:func:`with_updates`,
run_layout.UPDATE_PAIRS). :func:`user_history`: the rows ``Model.history`` wraps in a History, its arguments
checked.

The run keeps only which movies each user was trained on (seen_*.npy), not the ratings, times or the test split,
so these are read from the dataset's Parquet files, each checked against the SHA-256 its manifest lists, through
pyarrow with numpy from the columns' buffers: no pandas (``data/dataset.py``'s reader imports it; serving stays
off it, tests/test_layers.py). Where the dataset is, and what is said where it is gone, damaged or another one,
are ``data/layout.py``'s rules, which ``load_dataset`` and ``evaluate`` follow too. A dataset's user and movie
rows are the run's (a run pins its dataset by the fingerprint of its files, which is checked here), so titles,
years and genres come from the run's catalogue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedrec.data import layout
from embedrec.errors import ArtifactError, NotFoundError, UsageError, first_line, shorten

SPLITS = layout.SPLITS
BELOW = layout.OPTIONAL[0]  # rated_below: written where the cleaning kept such pairs as seen
LEFT_OUT = layout.OPTIONAL[1]  # rated_below_unknown: what the users the cleaning left out rated, by their ids
UPDATE = "update"  # a movie update-users added to the user's seen ones: in the run, in no file of the dataset
PARTS = (*SPLITS, BELOW, UPDATE)
SEEN_PARTS = ("train", "valid", BELOW)  # what a trained run's seen pairs are (seen_*.npy), update-users' aside
SORTS = ("time", "rating", "title")


@dataclass(frozen=True)
class Rated:
    """One user's rows of a prepared dataset: ``movies`` (movie rows, int64), ``ratings`` (float64; NaN for
    ``rated_below``, whose ratings the dataset does not keep), ``times`` (Unix seconds as float64, NaN where
    none; None where the dataset has no times), ``parts`` (each row's index into PARTS), ``counts`` (the
    ratings are a click log's counts, data.repeats: sum), ``dataset`` (the folder read) and ``weighted`` (those
    counts are event types' weights summed, data.event_weights)."""

    movies: np.ndarray
    ratings: np.ndarray
    times: np.ndarray | None
    parts: np.ndarray
    counts: bool
    dataset: Path
    weighted: bool = False


def user_history(engine, user, *, splits, sort: str | None, k: int | None, dataset_dir, moved_to,
                 dataset) -> tuple:
    """``Model.history``'s rows: (the user's id as the run's ids are, its :class:`Rated` rows, the order they are
    listed in, its first ``k`` only, and that order whole: the summary's counts), its arguments checked as the
    method's docstring says. ``engine``: the Recommender; ``dataset()``: (the dataset path the run records, its
    files' fingerprint, the run's name for messages), ``Model._history_dataset`` (a TrainedModel's is the Dataset it
    was trained on)."""
    from embedrec.argcheck import choice_arg, count_arg, path_arg
    from embedrec.data.ids import one_user, then
    from embedrec.run_updates import trained_movies, trained_users, updates_of
    from embedrec.serve.recommender import trained_on

    e = engine
    parts = check_parts(splits)
    if sort is not None:
        choice_arg(sort, SORTS, "sort")
    if k is not None:
        k = count_arg(k, "k", 1)
    given = "dataset_dir"  # the argument that names the folder read, which a refusal of it names
    if moved_to is not None:  # its path checked as dataset_dir's where it is read
        if not isinstance(moved_to, (str, os.PathLike)) or not str(moved_to):
            raise UsageError(f"history: moved_to must be a path (str or pathlib.Path), not "
                             f"{shorten(repr(moved_to), 40)}")
        if dataset_dir is not None:
            raise UsageError("history: give dataset_dir= (read there) or moved_to= (read there where the "
                             "recorded folder has moved), not both")
        recorded, fingerprint, _ = dataset()
        dataset_dir, given = layout.moved_to(recorded, moved_to, fingerprint), "moved_to"
    elif dataset_dir is not None:
        path_arg(dataset_dir, "history", "dataset_dir")
    one_user(user, "e.g. history(196) (a call for each user)")
    row = e.users.own_row(user)  # a user without a trained vector still has a history (its test rows)
    # a user the dataset's cleaning left out (its every rating below data.min_rating): in no user row of the
    # dataset, its movies in rated_below_unknown by its id, which the run keeps too (unknown_*.npy: the popular
    # fallback's), so its history is those rated_below rows (a review: it was 'not in the training data')
    if row < 0 and e.rated_by_unknown(user) is None:
        raise NotFoundError(then(e.users.unknown_text(user), f"{trained_on(e)}give a user id of its dataset"),
                            kind="user", id=user)
    user_id = e.users.raw(row) if row >= 0 else e.users.own_rows([user])[1][0]  # as the run's ids are
    recorded, fingerprint, name = dataset()
    folder = layout.find(recorded, dataset_dir, name, "history(user, dataset_dir=FOLDER)", given)
    updated = UPDATE in parts and row >= 0 and e.run is not None and bool(updates_of(e.run.manifest))
    read = tuple(p for p in PARTS if p in parts or updated and p in SEEN_PARTS)
    # the dataset's users: a user update-users added has a row after them, and none in its files, so it is read
    # as a user left out (by its id, in rated_below_unknown where the cleaning left it out; a model in memory,
    # not saved yet, has no update)
    users = trained_users(e.run.manifest) if e.run is not None else e.factors.n_users
    movies = trained_movies(e.run.manifest) if e.run is not None else e.factors.n_movies  # (and its movies)
    rated = read_user(folder, row if 0 <= row < users else -1, read, fingerprint, name, users,
                      movies, recorded, given, user_id)
    if updated:  # the movies update-users gave the user: its seen ones in the run that the dataset lacks (a
        # trained user's rated_below movies stay out of its solve, as training left them, whatever an update
        # gives: only an added user's solve is read for them)
        rated = with_updates(rated, e.seen(row), parts, _solved(e, row, rated) if row >= users else None,
                             given_pairs(e, row))
    if sort == "time" and rated.times is None:
        raise UsageError(f"«--sort time|sort='time'»: dataset '{folder}' has no times (it was ingested without a "
                         "timestamp column); sort by «--sort rating|sort='rating'» or «--sort title|sort='title'»")
    listed = order(rated, sort or ("time" if rated.times is not None else "rating"), e.titles)
    return user_id, rated, listed[:k], listed


def given_pairs(engine, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(movie rows, ratings, times) of the pairs update-users gave user ``row`` as its files gave them
    (run_layout.UPDATE_PAIRS, checked as verify checks it: verify.check_update_pairs), each NaN where none was
    given; None where the run keeps no such file (not updated, or updated before the file was kept)."""
    from embedrec.run_layout import UPDATE_PAIRS
    from embedrec.verify import check_update_pairs

    run = engine.run
    got = run.array(UPDATE_PAIRS, optional=True) if run is not None else None
    if got is None:
        return None
    check_update_pairs(run, got, int(run.manifest["n_users"]), engine.factors.n_movies)
    mine = got[got["user_idx"] == row]
    return mine["movie_idx"].astype(np.int64), mine["rating"].astype(np.float64), mine["timestamp"].astype(np.float64)


def _solved(engine, row: int, rated: Rated) -> np.ndarray | None:
    """The seen movies of user ``row`` in its solve (weight above 0, run_layout.SOLVE_WEIGHTS), where its history
    ``rated`` holds rated_below rows (what :func:`with_updates` tells an update's rating of such a movie by); None
    where it holds none, or the run records no solve."""
    e = engine
    got = e.solve_arrays() if (np.asarray(rated.parts) == PARTS.index(BELOW)).any() else None
    if got is None:
        return None
    return e.seen(row)[np.asarray(got[0][int(e.seen_ptr[row]):int(e.seen_ptr[row + 1])]) > 0]


def read_user(path: Path, row: int, parts: tuple[str, ...], fingerprint: str | None, run_name: str,
              n_users: int, n_movies: int, recorded=None, given: str = "dataset_dir", user_id=None) -> Rated:
    """User ``row``'s rows in ``parts`` of the dataset at ``path`` (its ``current`` generation, held against
    pruning while it is read); ``row`` -1: a user the dataset's cleaning left out (every rating below
    data.min_rating), whose rows are its ``rated_below`` ones alone, read by its id ``user_id`` (as the run's) from
    rated_below_unknown.parquet (none where the dataset has no such file or the id is not in it). Its layout
    checked first (``layout.check_layout``), then its manifest (``layout.parse_manifest``) and that it is the run's
    dataset (``layout.check_same``: its ``fingerprint``, the run's record of it, None: not checked; ``recorded``:
    the folder the run names; ``given``: the argument that named ``path``, which its fix names), then each file
    against its SHA-256: what ``load_dataset`` checks, said alike. ArtifactError for a dataset other than the run's
    or a damaged one."""
    from embedrec.fsutil.generations import open_current

    path = layout.check_layout(path)
    got = open_current(path) if os.path.lexists(path / "current") else None
    folder, hold = got if got is not None else (path, None)
    try:
        return _read(folder, path, row, parts, fingerprint, run_name, n_users, n_movies, recorded, given, user_id)
    finally:
        if hold is not None:
            hold.close()


def _read(folder: Path, path: Path, row: int, parts, fingerprint, run_name: str, n_users: int,
          n_movies: int, recorded, given: str, user_id) -> Rated:
    from embedrec.fsutil.integrity import fingerprint_of

    manifest, fix = layout.read_manifest(folder, path)
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    has = manifest.get("fingerprint") or (fingerprint_of(files) if files else "")
    layout.check_same(path, manifest, has, recorded, fingerprint, run_name, n_users, n_movies, given)
    timed = bool(manifest.get("has_timestamps"))
    got = []
    for p, part in enumerate(PARTS):
        name = f"{part if row >= 0 else LEFT_OUT}.parquet"  # a user left out: in that file alone, by its id
        if part not in parts or part == UPDATE or (part == BELOW and name not in files) or (row < 0 and part != BELOW):
            continue  # (update: in no file of the dataset; rated_below and rated_below_unknown: written where they
            # hold a pair)
        cols = _user_rows(folder / name, files.get(name), ("user_idx", row) if row >= 0 else ("user_id", user_id),
                          part != BELOW, timed and part != BELOW, fix)
        if cols["movie_idx"].size and (cols["movie_idx"].min() < 0 or cols["movie_idx"].max() >= n_movies):
            raise ArtifactError(f"prepared dataset file '{folder / name}' names a movie row outside the dataset's "
                                f"{n_movies}; {fix}")
        got.append((p, cols))
    movies = np.concatenate([c["movie_idx"] for _, c in got]) if got else np.zeros(0, np.int64)
    nan = [np.full(c["movie_idx"].size, np.nan) for _, c in got]
    ratings = np.concatenate([c.get("rating", z) for (_, c), z in zip(got, nan)]) if got else np.zeros(0)
    times = (np.concatenate([c.get("timestamp", z) for (_, c), z in zip(got, nan)]) if got else np.zeros(0)) \
        if timed else None
    which = np.concatenate([np.full(c["movie_idx"].size, p, np.int8) for p, c in got]) if got else np.zeros(0, np.int8)
    return Rated(movies.astype(np.int64), ratings.astype(np.float64), None if times is None else
                 times.astype(np.float64), which, manifest.get("repeats") == "sum", path,
                 bool(((manifest.get("config") or {}).get("data") or {}).get("event_weights")))


def with_updates(rated: Rated, seen: np.ndarray, parts: tuple[str, ...], solved: np.ndarray | None = None,
                 given: tuple | None = None) -> Rated:
    """``rated`` (read with every part of SEEN_PARTS) with an ``update`` row for each movie of ``seen`` (the
    user's seen movies in the run update-users updated) that none of those parts holds: a movie an update gave the
    user, since a trained run's seen pairs are exactly those of SEEN_PARTS (for a user an update added, the
    ``rated_below`` ones the dataset's cleaning kept of it, read by its id). Its rating and time are the file's
    (``given``: the user's (movie rows, ratings, times) the run keeps, :func:`given_pairs`), NaN where the file
    gave none or the run does not keep them (``given`` None, or a movie not in it: a run updated before they were
    kept). Then only the rows of ``parts``. A movie of the test split given again in an update is both a ``test`` row and an
    ``update`` one: the model has seen it (what evaluate counts); so is a ``rated_below`` movie among ``solved``
    (the seen movies in the user's solve, weight above 0; None: not known), which training never solves on: an
    added user's rating of a movie it had rated below data.min_rating, now one the model learns from."""
    below = np.isin(rated.movies, np.asarray(solved if solved is not None else (), np.int64)) & \
        (rated.parts == PARTS.index(BELOW))
    held = rated.movies[np.isin(rated.parts, [PARTS.index(p) for p in SEEN_PARTS]) & ~below]
    new = np.setdiff1d(np.asarray(seen, np.int64), held)
    ratings, when = np.full(new.size, np.nan), np.full(new.size, np.nan)
    if given is not None and new.size and given[0].size:
        order = np.argsort(given[0], kind="stable")
        at = np.minimum(np.searchsorted(given[0][order], new), order.size - 1)
        hit = given[0][order[at]] == new
        ratings[hit], when[hit] = given[1][order[at[hit]]], given[2][order[at[hit]]]
    movies = np.concatenate([rated.movies, new])
    which = np.concatenate([rated.parts, np.full(new.size, PARTS.index(UPDATE), np.int8)])
    keep = np.isin(which, [PARTS.index(p) for p in parts])
    times = None if rated.times is None else np.concatenate([rated.times, when])[keep]
    return Rated(movies[keep], np.concatenate([rated.ratings, ratings])[keep], times, which[keep], rated.counts,
                 rated.dataset, rated.weighted)


def _user_rows(where: Path, entry, user: tuple, rated: bool, timed: bool, fix: str) -> dict[str, np.ndarray]:
    """{column: values} of one user's rows in one Parquet file of the dataset (movie_idx, and rating and timestamp
    where asked), the file checked against its manifest ``entry`` first; ``user``: ('user_idx', its row), or
    ('user_id', its id) in rated_below_unknown.parquet, which names users by id; ``fix``: how to repair the dataset
    (``layout.dataset_fix``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from embedrec.fsutil.files import missing_error, read_denied
    from embedrec.fsutil.integrity import VERIFY_ON_OPEN_MAX, read_checked

    what = "prepared dataset file"
    key, value = user
    cols = [key, "movie_idx", *(["rating"] if rated else []), *(["timestamp"] if timed else [])]
    try:
        data = read_checked(where, entry, what, fix, VERIFY_ON_OPEN_MAX)
        with (open(where, "rb") if data is None else pa.BufferReader(data)) as fh:  # Python's open: any path's bytes
            table = pq.ParquetFile(fh).read(columns=cols)
    except FileNotFoundError:
        raise missing_error(where, what, fix) from None
    except PermissionError as e:
        raise read_denied(e, where, what) from None
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise ArtifactError(f"{what} '{where}' cannot be read ({first_line(e)}); {fix}") from None
    mine = np.flatnonzero(_column(table, key, np.int32, where, fix) == value if key == "user_idx" else
                          _ids(table, key, value, where, fix))
    return {c: _column(table, c, dtype, where, fix)[mine] for c, dtype in
            zip(cols[1:], (np.int32, np.float32, np.int64)[:len(cols) - 1])}


def _ids(table, name: str, value, where: Path, fix: str) -> np.ndarray:
    """Which cells of ``table``'s id column ``name`` hold ``value`` (an id as the run's: int or str), read without
    pyarrow's compute functions or to_numpy (each imports pandas): integers from their buffer, text as Python
    strings."""
    from embedrec.data.ids import ids_from_arrow

    arr = table.column(name).combine_chunks()
    if arr.null_count:
        raise ArtifactError(f"prepared dataset file '{where}': column '{name}' has empty cells; {fix}")
    ids = ids_from_arrow(arr)
    if ids.dtype.kind in "iu" and not isinstance(value, (int, np.integer)):  # a text id: no integer id is it
        return np.zeros(ids.size, bool)
    return np.asarray(ids == value, bool).reshape(ids.size)


def _column(table, name: str, dtype, where: Path, fix: str) -> np.ndarray:
    """A column of ``table`` as numpy ``dtype`` from its buffer (pyarrow's to_numpy imports pandas)."""
    import pyarrow as pa

    arr = table.column(name).combine_chunks()
    want = pa.from_numpy_dtype(np.dtype(dtype))
    if arr.type != want:
        try:
            arr = arr.cast(want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ArtifactError(f"prepared dataset file '{where}': column '{name}' holds {arr.type}, not {want}; "
                                f"{fix}") from None
    if arr.null_count:
        raise ArtifactError(f"prepared dataset file '{where}': column '{name}' has empty cells; {fix}")
    dtype = np.dtype(dtype)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize).copy()


def check_parts(splits) -> tuple[str, ...]:
    """``splits`` (None: all of PARTS) as a tuple of PARTS' names, each once in PARTS' order; UsageError naming one
    that is none of them."""
    from embedrec.argcheck import texts_arg

    if splits is None:
        return PARTS
    given = texts_arg(splits)
    # a name that is no text refused as such (a red team: a 2-D array's rows met `in` as numpy's 'truth value of
    # an array ... is ambiguous' ValueError)
    if given is None:
        raise UsageError(f"splits={shorten(repr(splits), 40)}: give split names, e.g. splits=['test'] or "
                         "('valid', 'test')")
    bad = [s for s in given if s not in PARTS]
    if bad or not given:
        raise UsageError(f"«--split|splits=» {', '.join(map(repr, bad)) or 'is empty'}: "
                         f"{'no such split; ' if bad else ''}give one or more of {', '.join(PARTS)}")
    return tuple(p for p in PARTS if p in given)


def order(rated: Rated, sort: str, titles: list) -> np.ndarray:
    """The positions of ``rated``'s rows in ``sort`` order: 'time' newest first, 'rating' highest first (equal ones
    newest first), 'title' A to Z (case and accents aside, as titles are matched; untitled movies last); then by split
    (train, valid, test, rated_below, update) and movie row, so the order never depends on the files' row order; rows
    without a time or rating after those with one, but for 'time' an update's rows without a time (its file had
    none, or the run was updated before it kept them), which came after every row of the dataset: those first. An
    update's row with its file's time is placed by it, among the dataset's."""
    from embedrec.serve.catalogue import fold_title

    n = rated.movies.size
    times = rated.times if rated.times is not None else np.full(n, np.nan)
    keys = [rated.movies, rated.parts]
    if sort in ("time", "rating"):
        newest = np.where(rated.parts == PARTS.index(UPDATE), -np.inf, np.inf) if sort == "time" else np.inf
        keys.append(np.where(np.isnan(times), newest, -np.nan_to_num(times)))  # newest first, none last
    if sort == "rating":
        keys.append(np.where(np.isnan(rated.ratings), np.inf, -np.nan_to_num(rated.ratings)))
    if sort == "title":
        folded = [fold_title(titles[m] or "") for m in rated.movies.tolist()]
        keys.append(np.unique(np.asarray(folded, dtype=object), return_inverse=True)[1] if n else np.zeros(0, np.int64))
        keys.append(np.array([not t for t in folded], bool))  # a movie without a title after those with one
    return np.lexsort(keys) if n else np.zeros(0, np.int64)
