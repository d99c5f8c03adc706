"""update-users' file read: its rows as the run's users and movies (Pairs), checked and said."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from embedrec.data.ids import then, written_apart
from embedrec.data.parsing import INGEST_ZEROS, LIKES_AS_THEY_ARE
from embedrec.errors import (
    DataError,
    NotFoundError,
    UsageError,
    shorten,
)

log = logging.getLogger("embedrec")

if TYPE_CHECKING:  # annotations only: no import at run time

    from embedrec.config import DataConfig
    from embedrec.data.readers import RawData
    from embedrec.serve.recommender import Recommender



NAMED = 5  # ids named one by one in a warning or an error; the rest are counted


EMPTY = "point data.source at a ratings file with rows"  # the readers' advice for an empty file (data/parsing.py)


def _say_untimed(raw: RawData) -> None:
    """One line for the rows data.missing=drop kept whose time alone is empty (data/tables.py): an update orders
    its ratings by no time (each weighs as a rating since training does), so they are solved on, and recorded
    without a time (run_layout.UPDATE_PAIRS: NaN), as a file without a time column gives none."""
    from embedrec.data.times import NO_TIME

    if "timestamp" not in raw.ratings:
        return
    untimed = np.flatnonzero(raw.ratings["timestamp"].to_numpy() == NO_TIME)
    if untimed.size:
        n = int(untimed.size)
        log.info("%s: %s with a user, a movie and a rating but no time (the first at %s) kept and solved on, as an "
                 "update orders its ratings by no time (recorded without one)", raw.origin[0],
                 _n(n, "row"), raw.where(int(untimed[0]), cheap=True))


def _say_odd_times(raw: RawData) -> None:
    """One warning for the rows dated at or before 1970-01-01 or more than a year past today (as read: Unix
    seconds, or the unit the dataset was read in): a wrong unit or a placeholder, which an update would order the
    user's ratings by (a red team: 99999999999999, -1 and 0 were recorded without a word, where ingest warns)."""
    from embedrec.data.times import NO_TIME

    if "timestamp" not in raw.ratings:
        return
    t = raw.ratings["timestamp"].to_numpy()
    late = time.time() + 366 * 86400
    odd = np.flatnonzero((t != NO_TIME) & ((t <= 0) | (t > late)))
    if odd.size:
        first = int(t[odd[0]])
        when = "at or before 1970-01-01" if first <= 0 else f"in the year {1970 + first // 31_556_952}"
        log.warning("%s: %s dated at or before 1970 or more than a year from now (the first at %s, read as %d Unix "
                    "seconds: %s): check the file's times (another unit? set data.timestamp_unit) and fix those lines; they "
                    "are kept as read", raw.origin[0], _n(int(odd.size), "row"), raw.where(int(odd[0]), cheap=True),
                    first, when)


def _warn_left_out(ids: list, engine: Recommender, source: str) -> None:
    """One warning for the new users the update leaves out, none of their ratings one the run learns from."""
    shown = ", ".join(f"'{shorten(str(i), 40)}'" for i in ids[:NAMED]) + (
        f" and {len(ids) - NAMED:,} more" if len(ids) > NAMED else "")
    low = engine.training_ratings["min_rating"]
    why = (f"below data.min_rating {low:g} or of a movie without training ratings" if low is not None else
           "of a movie without training ratings")
    one = len(ids) == 1
    log.warning("left %s named in %s out (%s): each of %s ratings is %s, which the model does not learn from, so no "
                "vector can be solved for %s (recommend --rated refuses such a user alike); %s unknown to the run",
                _n(len(ids), "new user"), _shown(source), shown, "its" if one else "their", why,
                "it" if one else "them", "it stays" if one else "they stay")


def _n(n: int, word: str) -> str:
    """'1 rating', '2 ratings', '1,000 pairs': a count with its noun, plural but for one."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _shown(source: str) -> str:
    return "standard input" if source == "-" else f"'{source}'"


def _ratings_source(ratings) -> str:
    """``ratings`` as the path read_generic takes: '-' (standard input) or an existing file; a folder, a missing
    file or anything but a path is refused in one line."""
    if type(ratings).__name__ == "DataFrame":
        raise UsageError("update_users: ratings is a path here, not a DataFrame; write it first "
                         "(df.to_parquet('since.parquet', index=False)) and give that path")
    if not isinstance(ratings, (str, os.PathLike)) or str(ratings) == "":
        raise UsageError(f"«--ratings|ratings» {shorten(repr(ratings), 40)} is not a file path; give the ratings "
                         "table (CSV, TSV or Parquet), or «-|'-'» for standard input")
    source = os.fspath(ratings)
    if source == "-":
        import sys

        if sys.stdin is None:  # <&-
            raise DataError("«--ratings|ratings» '-': standard input is closed; pipe the ratings in or give a file")
        return source
    if not os.path.exists(source):
        from embedrec.fsutil.files import loop_error

        loop = loop_error(source, "«--ratings|ratings» file", "give the file's own path, or «- to read|'-' for» "
                          "standard input", DataError)  # a loop of links said as one, not 'not found' (a red team)
        if loop is not None:
            raise loop
        tilde = " (the shell left '~' unexpanded: write the path out, e.g. $HOME/...)" if source.startswith("~") else ""
        raise DataError(f"{source}: file not found («--ratings|ratings»); check the path{tilde}, or give - to read "
                        "standard input")
    if os.path.isdir(source):
        raise UsageError(f"«--ratings|ratings» '{source}' is a folder; give a ratings table (CSV, TSV or Parquet) "
                         "of user, movie, rating[, timestamp] rows")
    return source


def _stamp(source: str) -> tuple | None:
    """The ratings file ``source`` stamped before it is read (``integrity.read_stamp``); None for standard input,
    or where it cannot be (read_ratings says why)."""
    from embedrec.fsutil.integrity import read_stamp

    if source == "-":
        return None
    try:
        return read_stamp(source)
    except OSError:
        return None


def _file_sha256(source: str, raw: RawData, stamp: tuple | None) -> str | None:
    """The SHA-256 of the ratings file read (None for standard input or a pipe, read once: nothing to hash again),
    refused where it is not the file ``stamp`` stamped before it was read (``integrity.sha256_as_read``: replaced
    or written to while update-users read it; its checksum was then the new file's, beside the old file's rows)."""
    from embedrec.fsutil.integrity import sha256_as_read

    return sha256_as_read(source, stamp, "update-users") if raw.files else None


def read_ratings(source: str, data_cfg: DataConfig, engine: Recommender, or_default=(),
                 guess: bool = True, held_unit: str | None = None) -> RawData:
    """The ratings table ``source`` read as ingest reads one (data.readers.read_generic: user, movie, rating[,
    timestamp], the columns, separator, header, encoding and format of ``data_cfg``; its errors name the file and
    line), ids as the run's are (integers where every one reads as one, else text: data.id_type auto), a table
    without a rating column as likes (each row the scale's top; on a counts model one event each). ``or_default``:
    the data.columns keys ('user', ...) whose column may be named by its default name instead (user_id, ...). A
    header line naming a user or a movie the run knows is data: a missing column's error then says how to read a
    file without a header line (data.header=false). ``guess``: a missing user or movie column may be guessed
    (read_generic's). ``held_unit``: data.timestamp_unit is the run's dataset's, named so (read_generic's: a Unix
    time of another unit's size refused by its line)."""
    from embedrec.data.readers import read_generic

    counts = "count_weight" in engine.training_ratings
    cfg = dataclasses.replace(data_cfg, source=source, movies=None, id_type="auto",
                              repeats="sum" if counts else "latest", min_rating=None)
    # what a row counts as without a rating column, for a missing one's advice (not ingest's 'rating 1')
    unrated = ("one event, a pair's rows summed into its count" if counts else
               f"a like, rating {engine.scale[1]:g}, the scale's top" if engine.scale else "a like, rating 1")
    try:
        raw = read_generic(source, cfg, unrated, or_default, lambda names: _names_ids(names, engine), guess=guess,
                           held_unit=held_unit)
    except DataError as e:  # the readers' advice names ingest's data.source: here the file is --ratings
        if LIKES_AS_THEY_ARE in e.raw:  # true/false words: ingest's ways to read them are not an update's (a diff
            # review: the advice pasted here was refused, its -1 outside the model's scale)
            scale = f" of this model's scale, {engine.scale[0]:g}-{engine.scale[1]:g}" if engine.scale else ""
            raise DataError(e.raw.split(LIKES_AS_THEY_ARE)[0].replace(INGEST_ZEROS, "") + scale) from None
        if EMPTY not in e.raw:
            raise
        raise DataError(e.raw.replace(EMPTY, "give «--ratings|ratings» a ratings table with a row per " + (
            "event (user, movie[, timestamp]: a counts model's rows are summed)" if counts else
            "rating (user, movie, rating)"))) from None
    if raw.no_ratings and not counts and engine.scale:
        raw.ratings["rating"] = np.float32(engine.scale[1])
    return raw


def _names_ids(names: list[str], engine: Recommender) -> bool:
    """Whether one of a header line's ``names`` is an id of a user or a movie the run knows: the line is data."""
    names = [n.strip() for n in names]
    return bool((engine.users.own_rows(names)[0] >= 0).any() or (engine.movies.rows(names)[0] >= 0).any())


@dataclasses.dataclass
class Pairs:
    """The file's ratings of known movies, one per pair: user rows, movie rows, ratings (NaN: the pair of a row
    data.missing=drop dropped, kept as seen: :func:`_kept_as_seen`) and times (the kept row's, through the rule
    that keeps a pair's latest row, or a counts model's summed one), what the update records of each pair it adds
    (run_layout.UPDATE_PAIRS); a user the run does not know has row n_users + j, j its place among ``new_ids``
    (their ids as the run's, in the file's order)."""

    users: np.ndarray
    movies: np.ndarray
    values: np.ndarray
    new_ids: list = dataclasses.field(default_factory=list)
    named: int = 0  # the users the file names, each once (those left with no known movie too)
    unmatched: int = 0  # of them, those whose every row is of a movie the model does not know
    times: np.ndarray | None = None  # each pair's time as the file gave it (Unix seconds; NaN: none given)
    given: bool = True  # whether ``values`` are the file's (False: a file without a rating column, read as likes)
    new_movie_ids: list = dataclasses.field(default_factory=list)  # new_movies: row n_movies + j's id, as the run's


def _file_pairs(raw: RawData, engine: Recommender, strict: bool, new_users: bool = True,
                new_movies: bool = False) -> Pairs:
    """The file's rows as (user row, movie row, rating), checked: every user one the run knows (a cold-start user
    without a trained vector among them) or, with ``new_users``, a new one, given row n_users + j in the order the
    file first names it (else refused, the first named by its line; an id that can be no id of the run's, a word
    where its ids are integers or an integer beyond their type, is refused either way, saying what is wrong with
    it and how to write it), every rating a number the model takes (finite; within its
    rating scale, or a count above 0), a movie the model does not know left out with one warning (``strict``:
    refused; ``new_movies``: given row n_movies + j in the order the file first names it, as a new user is, an
    id that can be no movie id of the run's, or that is one of its own written another way, refused); a pair given
    twice taken as ingest takes it (the latest rating; a counts model's events summed)."""
    import pandas as pd

    from embedrec.data.repeats import dedupe_rows, same_as_read, sum_repeats
    from embedrec.data.times import NO_TIME

    df = raw.ratings.reset_index(drop=True)
    _check_values(raw, df["rating"].to_numpy(np.float64), engine)
    codes, uniques = pd.factorize(df["user_id"], sort=False)
    urows, parsed = engine.users.own_rows(list(uniques))
    missing = np.flatnonzero(urows < 0)
    no_id = [int(i) for i in missing if parsed[i] is None]
    if no_id or (missing.size and not new_users):
        bad = np.asarray(no_id if no_id else missing)
        first = int(np.flatnonzero(np.isin(codes, bad))[0])
        raw_id = uniques[int(codes[first])]
        more = f" (and {bad.size - 1:,} more of its {len(uniques):,} users)" if bad.size > 1 else ""
        said, fix = engine.users.unknown_text(raw_id), (
            "«--no-new-users|new_users=False» refuses a user the run does not know: leave it out to add such "
            "users (their vectors solved from the file's ratings, as «recommend --liked/--rated|recommend_new("
            "liked=...)» folds one in), or remove their rows to update the others")
        if no_id:  # what is wrong with the id, and how to write it (a review: 'not in the training data, fix the
            # id' said of 9223372036854775808, though a user not in the training data is added)
            said, how = engine.users.malformed(raw_id) or engine.users.beyond_text(raw_id) or (said, "fix the id")
            added = " (a user the run does not know is added under the id the file gives it)" if new_users else ""
            fix = f"{how}{added}, or remove its rows"
        raise NotFoundError(f"{raw.where(first)}: {said}{more}; {fix}", kind="user", id=raw_id,
                            ids=[raw_id] + [uniques[int(i)] for i in bad if uniques[int(i)] != raw_id])
    _refuse_ids_written_apart(raw, codes, uniques, missing, engine)
    new_ids: dict = {}  # parsed id -> its place: ' u1' and 'u1' are one id of a text run, as its lookups read them
    for i in missing.tolist():
        urows[i] = engine.P.shape[0] + new_ids.setdefault(parsed[i], len(new_ids))
    users = urows[codes]
    codes, uniques = pd.factorize(df["movie_id"], sort=False)
    mrows, mparsed = engine.movies.own_rows(list(uniques))
    new_movie_ids: dict = {}  # new_movies: parsed id -> its place (row n_movies + place), in the file's order
    if new_movies:
        lost = np.flatnonzero(mrows < 0)
        no_id = [int(i) for i in lost if mparsed[i] is None]
        if no_id:  # an id that can be no movie id of the run's (a word where its ids are integers): refused
            first = int(np.flatnonzero(np.isin(codes, no_id))[0])
            raw_id = uniques[int(codes[first])]
            said, how = engine.movies.malformed(raw_id) or engine.movies.beyond_text(raw_id) or (
                engine.movies.unknown_text(raw_id), "fix the id")
            raise NotFoundError(f"{raw.where(first)}: {said}; {how} (a movie the run does not know is added under "
                                "the id the file gives it), or remove its rows", kind="movie", id=raw_id)
        _refuse_ids_written_apart(raw, codes, uniques, lost, engine, "movie")
        for i in lost.tolist():
            mrows[i] = engine.Q.shape[0] + new_movie_ids.setdefault(mparsed[i], len(new_movie_ids))
    movies = mrows[codes]
    unknown = np.flatnonzero(movies < 0)
    if unknown.size:
        ids = list(dict.fromkeys(uniques[int(codes[i])] for i in unknown))
        first = int(unknown[0])
        apart = _written_apart(ids, engine.movies.ids)
        if strict:
            more = f" (and {unknown.size - 1:,} more of the file's ratings of movies it does not know)" \
                if unknown.size > 1 else ""
            raise NotFoundError(then(f"{raw.where(first)}: {engine.movies.unknown_text(ids[0])}",
                                     apart or "leave «--strict|strict=True» out to leave such ratings out with a "
                                     "warning", more),
                                kind="movie", ids=ids)
        shown = ", ".join(f"'{shorten(str(i), 40)}'" for i in ids[:NAMED]) + (
            f" and {len(ids) - NAMED:,} more" if len(ids) > NAMED else "")
        are = "is" if len(ids) == 1 else "are"
        meant = engine.movies.meant(str(ids[0]).strip())  # its case or leading zeros (a red team: not said)
        if unknown.size == len(df):  # nothing left: an error the user wants to see, not 'nothing to update'
            every = "its one rating is" if len(df) == 1 else f"every one of its {len(df):,} ratings is"
            raise NotFoundError(f"{raw.origin[0]}: {every} of a movie the model does not know ({shown} {are} not in "
                                f"the training data; the first at {raw.where(first, cheap=True)}{meant}), so nothing is "
                                f"updated; {apart or 'to add them to the run, give «--new-movies|new_movies=True» (they are solved from the ratings of the users it knows); else give ratings of the movies the run was trained on, by the ids of its dataset'}",
                                kind="movie", ids=ids)
        # (the marks in the format, where the log's filter resolves them; the arguments shown as they are)
        log.warning("left %s of the %s ratings in %s out: %s %s not in the training data (the first at %s%s); %s"
                    "«--new-movies|new_movies=True» adds such movies, «--strict|strict=True» refuses them instead",
                    f"{unknown.size:,}", f"{len(df):,}",
                    raw.origin[0], shown, are, raw.where(first, cheap=True), meant, f"{apart}; " if apart else "",
                    extra={"marks_only": True})
    keep = movies >= 0
    named = pd.unique(users)  # each user once, in the file's order (' u1' and 'u1' one user, as above)
    unmatched = named[~np.isin(named, users[keep])]
    if unmatched.size:
        _warn_unmatched(unmatched, engine, list(new_ids), raw.origin[0])
    frame = pd.DataFrame({"user_id": users[keep], "movie_id": movies[keep], "rating": df["rating"].to_numpy()[keep]})
    if "timestamp" in df:
        frame["timestamp"] = df["timestamp"].to_numpy()[keep]
    if "count_weight" in engine.training_ratings:  # a counts model: a pair's rows are events, summed as ingest does
        frame, repeated, became = sum_repeats(frame, first_time=False)
        if repeated:
            log.info("%s: %s of %s summed into their counts, as ingest sums them", raw.origin[0],
                     _n(repeated, "row"), _n(became, "pair"))
    else:
        rows, exact, dropped = dedupe_rows(frame)
        if exact or dropped:
            log.info("%s: %s%s given again: the latest rating of each pair kept, as ingest keeps it", raw.origin[0],
                     f"{_n(exact, 'row')} {same_as_read('timestamp' in frame)}" if exact else "",
                     (" and " if exact else "") + _n(dropped, "pair") if dropped else "")
        if rows is not None:
            frame = frame.take(rows)
    u, m = frame["user_id"].to_numpy(np.int64), frame["movie_id"].to_numpy(np.int64)
    su, sm = _kept_as_seen(raw, engine, new_ids, u, m, new_movie_ids)
    t = frame["timestamp"].to_numpy() if "timestamp" in frame else None
    # (a row data.missing=drop kept without its time, NO_TIME: solved on as any, an update ordering its ratings by
    # no time; recorded without one, as a file without the column gives none)
    t = np.full(len(frame), np.nan) if t is None else np.where(t == NO_TIME, np.nan, t.astype(np.float64))
    none = np.full(su.size, np.nan)  # (a dropped row's rating and time are not read: RawData.seen holds its ids)
    return Pairs(np.concatenate([u, su]), np.concatenate([m, sm]),
                 np.concatenate([frame["rating"].to_numpy(np.float64), none]), list(new_ids),
                 int(named.size), int(unmatched.size), np.concatenate([t, none]),
                 # a file without a rating column gave no rating (its rows read as likes), but a counts model's
                 # count is what it gave
                 not raw.no_ratings or "count_weight" in engine.training_ratings, list(new_movie_ids))


def _kept_as_seen(raw: RawData, engine: Recommender, new_ids: dict, users: np.ndarray,
                  movies: np.ndarray, new_movie_ids: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(user rows, movie rows) of the pairs of the rows data.missing=drop dropped (RawData.seen) that the update
    keeps as seen, as ingest keeps a dataset's (ingestion._kept_as_seen: never recommended back, not solved on): a
    row naming a user and a movie says the user met it, its rating or time missing or not (a review: such a pair
    came back in the user's list after an update, where ingest kept it out). Each pair once, of a movie the run
    knows and a user it knows or one the file's kept rows add (``new_ids``: parsed id -> its place; a new user
    named in dropped rows alone has nothing to solve on, and is not added; a movie, so, of ``new_movie_ids``), a
    pair the file rates (``users``, ``movies``: its kept pairs) left out."""
    from embedrec.data.repeats import first_new_pairs

    new_movie_ids = new_movie_ids or {}

    got = raw.seen.get("missing_values")
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if got is None or not len(got):
        return none
    n_users = int(engine.P.shape[0])
    urows, parsed = engine.users.own_rows(got["user_id"].tolist())
    for i in np.flatnonzero(urows < 0).tolist():
        if parsed[i] is not None and parsed[i] in new_ids:
            urows[i] = n_users + new_ids[parsed[i]]
    mrows, mparsed = engine.movies.own_rows(got["movie_id"].tolist())
    for i in np.flatnonzero(mrows < 0).tolist():  # a movie the file's kept rows add (new_movies: a review found
        if mparsed[i] is not None and mparsed[i] in new_movie_ids:  # its dropped row's pair recommended back)
            mrows[i] = int(engine.Q.shape[0]) + new_movie_ids[mparsed[i]]
    ok = (urows >= 0) & (mrows >= 0)
    ok[ok] &= (urows[ok] < n_users) | np.isin(urows[ok], users)  # a new user the kept rows add
    width = np.int64(max(engine.Q.shape[0] + len(new_movie_ids), 1))  # (the new movies' rows after the run's)
    key = urows[ok] * width + mrows[ok]
    key = np.sort(key[first_new_pairs(key, users * width + movies)])
    return key // width, key % width


def _warn_unmatched(rows: np.ndarray, engine: Recommender, new_ids: list, where: str) -> None:
    """One warning for the users of the file (``rows``: their rows, a new user's n_users + j, j its place in
    ``new_ids``) whose every rating is of a movie the model does not know (a first-hour review: such a new user
    was left out without a word, and the summary counted one user named of a file naming two): counted, the first
    NAMED named, what becomes of them and what to do."""
    n_users = int(engine.P.shape[0])
    new = rows >= n_users
    ids = [new_ids[int(r) - n_users] if r >= n_users else engine.users.raw(int(r)) for r in rows[:NAMED].tolist()]
    shown = ", ".join(f"'{shorten(str(i), 40)}'{' (new)' if n else ''}" for i, n in zip(ids, new[:NAMED].tolist()))
    shown += f" and {rows.size - NAMED:,} more" if rows.size > NAMED else ""
    one = rows.size == 1
    fate = []
    if new.any():
        k = int(new.sum())
        fate.append(f"{_n(k, 'new user')} not added ({'it stays' if k == 1 else 'they stay'} unknown to the run)")
    if (~new).any():
        k = int((~new).sum())
        fate.append(f"{_n(k, 'known user')} {'keeps its' if k == 1 else 'keep their'} vector as trained")
    log.warning("left %s named in %s out (%s): %s is of a movie the model does not know (above), so nothing is "
                "solved for %s: %s; to update %s, give ratings of movies the run was trained on, by the ids of its "
                "dataset", _n(rows.size, "user"), where, shown, "its every rating" if one else "every rating of each",
                "it" if one else "them", " and ".join(fate), "it" if one else "them")


def _check_values(raw: RawData, r: np.ndarray, engine: Recommender) -> None:
    """Every rating finite and one the model takes (serve.foldin.bad_ratings, a request's rule too): within its
    rating scale, or on a counts model (data.repeats=sum) a count above 0; else the first is refused by its line."""
    from embedrec.serve.foldin import bad_ratings

    counts = "count_weight" in engine.training_ratings
    scale = engine.scale
    bad = bad_ratings(r, scale, counts)
    if not bad.any():
        _warn_off_step(raw, r, engine.training_ratings.get("rating_levels") if not counts else None)
        return
    i = int(np.flatnonzero(bad)[0])
    shown = f"{r[i]:g}"
    if not np.isfinite(r[i]):
        why = "is not a finite number"
    elif counts:
        why = ("is not a count above 0: this model was trained on counts (data.repeats=sum), so a value is how many "
               "times the user chose the movie")
    else:
        why = f"is outside this model's rating scale {scale[0]:g}-{scale[1]:g}"
    more = f" ({int(bad.sum()) - 1:,} more such rows)" if int(bad.sum()) > 1 else ""
    raise DataError(f"{raw.where(i)}: rating {shown} {why}{more}; fix or remove {raw.that}")


def _warn_off_step(raw: RawData, r: np.ndarray, levels: list | None) -> None:
    """One warning where ratings of the file are off the step of the training ratings' scale (``levels``, the
    run's ``training_ratings.rating_levels``: data.levels.off_step; 4.7 on a half-star scale), as a request's
    (serve.foldin.warn_off_step): the first named by its line, the others counted. They are used as given."""
    from embedrec.data.levels import off_step, step_said

    if not levels or raw.no_ratings:  # (a file without ratings: each row the scale's top)
        return
    off = off_step(r, levels)
    if not off.any():
        return
    i, n = int(np.flatnonzero(off)[0]), int(off.sum())
    more = f"; {_n(n - 1, 'more such row')}" if n > 1 else ""
    log.warning("%s: rating %g is not on this model's rating step (%s%s); %s used as given", raw.where(i), r[i],
                step_said(levels), more, "they are" if n > 1 else "it is")


def _refuse_ids_written_apart(raw: RawData, codes: np.ndarray, uniques, missing: np.ndarray, engine,
                              kind: str = "user") -> None:
    """NotFoundError where users the file would add are the run's own written another way ('186' for the run's
    '00186', as a spreadsheet drops leading zeros; case; Unicode's other form: data.ids.IdMap.meant): added, each
    would be a second user with a new user's list while the real one went un-updated (a review: 12 of a day's 15
    'new' users so, exit 0). The first named, with how many, and how to write them."""
    ids = engine.users if kind == "user" else engine.movies
    apart = [(i, hint) for i in missing.tolist() for hint in [ids.meant(str(uniques[i]).strip())] if hint]
    if kind == "movie" and missing.size:  # '0040' for the run's 40 (the same integer, written so)
        hits, first = written_apart([uniques[i] for i in missing.tolist()], ids.ids)
        said = {i for i, _ in apart}
        apart += [(int(i), f"; did you mean {first[1]!r} (the same number written otherwise)?"
                   if first is not None and uniques[i] == first[0] else "")
                  for i in missing[hits].tolist() if int(i) not in said]
    if not apart:
        return
    i, hint = apart[0]
    first = int(np.flatnonzero(codes == i)[0])
    which = (f"{len(apart):,} of the {missing.size:,} {kind}s the file would add are the run's" if len(apart) > 1 else
             "it is the run's")
    raise NotFoundError(f"{raw.where(first)}: {kind} '{shorten(str(uniques[i]), 40)}' is not in the run{hint} {which} "
                        f"written another way, which added would be new {kind}s beside the run's own; write the file's "
                        "ids as the run writes them and update again (ids are matched as written)", kind=kind,
                        id=uniques[i],
                        ids=[uniques[j] for j, _ in apart])


def _written_apart(ids: list, known) -> str | None:
    """What to say where some of a ratings file's unknown movie ``ids`` are the run's (``known``) written another
    way ('0040' in the file, 40 in the run: :func:`data.ids.written_apart`): an example pair and how to write them
    (a review: said in ingest and evaluate --lists only); None where none is. They are never joined so."""
    hits, first = written_apart(ids, known)
    if first is None:
        return None
    n = int(hits.sum())
    ours, theirs = (repr(x) if isinstance(x, str) else str(x) for x in first)
    which = "the unknown id is" if len(ids) == 1 else f"{n:,} of the {len(ids):,} unknown ids {'is' if n == 1 else 'are'}"
    return (f"{which} the run's movie {'id' if n == 1 else 'ids'} written another way ({ours} in the file is {theirs} "
            f"in the run's dataset): write the file's ids as the dataset writes them ({theirs} "
            f"for {ours}) and update again (ids are matched as written)")
