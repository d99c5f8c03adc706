"""``embedrec update-users``: the users named in a ratings file re-solved with the ratings they made since training,
the movie factors fixed, and published as the run's new model folder, so every later command serves them
(implicit's ``partial_fit_users``; ``recommend --user U --liked ...`` is the same re-solve for one request,
writing nothing: serve/update.py). A user the run does not know is added to it (``new_users``, the default; else
refused): a new row at the end of every user table, its vector the one ``recommend --liked/--rated`` folds in from
the same ratings (serve.update.als_new_user), as implicit's partial_fit_users grows its user factors; its lists
carry the new users' popularity prior as that request's do (serving's ``Recommender.added_prior``). A user of the
run's dataset without a training rating (split.cold_start's: a zero vector) is as new: re-solved in its own row, it
is solved and served as the same ratings under a new id would be (run_layout.SOLVED_AS_NEW).

An als run records how its users' final solve weighed each seen pair (run_layout.SOLVE_WEIGHTS) and each user's divisor
(run_layout.USER_SCALE, where it adds recent popularity), so a user's re-solve is that solve over those weights plus one
per new rating (serve.update.als_resolve, serve.update.latest_weights: weighed as training weighs a rating, at the
latest place in the user's history); a user it adds is solved over its ratings alone, weighed as a new user's
fold-in weighs them (serve.update.new_user_weights: at the middle of a history, nothing placing them among the
training ratings). The new folder holds, for the users with a new rating in their solve, the re-solved vectors
(user_factors.npy), every new pair among the user's seen movies (seen_indptr.npy, seen_indices.npy: never listed
again) with its weight in the solve (solve_weights.npy: 0 for a rating below data.min_rating or of a movie without
training ratings, which training never learnt from either, and for the pair of a row data.missing=drop dropped, kept
as seen as ingest keeps it), the new divisors (user_scale.npy), the rows of the
users every update so far re-solved or added (run_layout.UPDATED_USERS) and each pair every update so far added with
the rating and time its file gave (run_layout.UPDATE_PAIRS, what history shows); the users it adds also get their ids
(users.parquet, user_ids.npy) and n_users in the manifest grows by them. Every other file is carried over checked
(artifacts.carry_over), the FAISS indexes too (movie vectors only, keyed on the movies' hash, which does not
change), and the manifest gains an ``updates`` record. A second update composes: its re-solve reads the first's
weights (a user the first added is a known user then). Only an als run can be updated so: the other losses fit
their users by gradient steps, which no re-solve repeats, and an explicit run keeps no ratings.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec.data.ids import then, written_apart
from embedrec.errors import (
    ArtifactError,
    DataError,
    EmbedrecError,
    NotFoundError,
    SkippedNote,
    UsageError,
    set_hint,
    shorten,
)
from embedrec.run_layout import (
    CONFIG,
    MANIFEST,
    MOVIE_BIAS,
    MOVIE_FACTORS,
    SOLVE_WEIGHTS,
    SOLVED_AS_NEW,
    STATE_DICT,
    UPDATE_PAIRS,
    UPDATE_PAIRS_DTYPE,
    UPDATED_USERS,
    UPDATES,
    USER_SCALE,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from collections.abc import Iterable

    from embedrec.config import DataConfig
    from embedrec.data.readers import RawData
    from embedrec.run import Run
    from embedrec.serve.recommender import Recommender

log = logging.getLogger("embedrec")
COMMAND = "embedrec update-users"
NAMED = 5  # ids named one by one in a warning or an error; the rest are counted
EMPTY = "point data.source at a ratings file with rows"  # the readers' advice for an empty file (data/parsing.py)
# how --ratings is read where the config does not say: as the run's dataset was ingested (its manifest's config,
# else the run's config.yaml), the new ratings being of the same data (a review: a dataset ingested with
# data.columns.user=customer, then update-users refused its since.csv, "no column 'user_id'"); not data.format
# (the file's name says it) nor data.id_type (the ids are read as the run's are: read_ratings)
AS_INGESTED = ("data.columns.user", "data.columns.movie", "data.columns.rating", "data.columns.timestamp",
               "data.separator", "data.header", "data.encoding", "data.decimal", "data.missing",
               "data.timestamp_unit", "data.timestamp_format", "data.id_case", "data.event_weights")


def update_users(run_dir, ratings, data_cfg: DataConfig, *, strict: bool = False, new_users: bool = True,
                 new_movies: bool = False, given: Iterable[str] | None = None, progress: bool = False) -> dict:
    """Re-solve the users of ``ratings`` (a ratings table's path, or '-' for standard input, read as ingest reads
    one under ``data_cfg``'s reading settings, each of AS_INGESTED that ``given`` does not name as the run's
    dataset was ingested: :func:`as_ingested`) in the run at ``run_dir`` and publish the result as its new model
    folder under the run's writer lock (``Busy`` while another writer holds it). A rating of a movie the model does
    not know is left out with a warning (``strict``: refused), or, with ``new_movies``, added to it
    (movie_update.py: solved against the users the run knows that rated it, before the users are); a user the run
    does not know is added to it (``new_users``; else the file is refused). Returns the ``updates`` record written, with ``model_folder`` (the new
    folder; None where the file adds nothing, and nothing is published). ``progress``: bars over the users solved,
    the files carried over and the bytes written and hashed."""
    from embedrec.artifacts import writer_run
    from embedrec.data.parsing import missing_dropped_said
    from embedrec.run import load_run
    from embedrec.run_publish import publish, run_lock
    from embedrec.run_updates import updates_of
    from embedrec.serve.recommender import Recommender
    from embedrec.serve.update import check_resolvable

    started = time.perf_counter()
    run_dir = writer_run(Path(run_dir))
    source = _ratings_source(ratings)
    with run_lock(run_dir, COMMAND):
        run = load_run(run_dir)
        engine = Recommender(run)
        check_resolvable(engine, lasting=True)
        if new_movies:
            from embedrec.serve.update import check_movies_addable

            check_movies_addable(engine)
        stamp = _stamp(source)  # the file as it is before it is read, compared once it is hashed (_file_sha256)
        cfg, taken, said = _as_ingested(run, data_cfg, given)
        # a column the run's dataset named otherwise is also read under its default name (the file format -h
        # documents: a first-hour review's user_id,movie_id file was refused for a run of customer_id,product_id)
        keys = [key.rsplit(".", 1)[1] for key, _ in taken if key.startswith("data.columns.")]
        try:
            # (a user or movie column given, as a default name too, is read as given: none guessed for it)
            named = given is not None and bool({"data.columns.user", "data.columns.movie"} & set(given))
            # the dataset's time unit, its Unix times' (a red team: each file's own guess read 900000000 as
            # microseconds beside a row in nanoseconds): a time of another unit's size refused by its line
            held = said if any(k == "data.timestamp_unit" for k, _ in taken) else None
            raw = read_ratings(source, cfg, engine, keys, not named, held)
        except DataError:  # how it was read, before the error that says what it lacks (the unit: its own error
            _say_as_ingested(source, said, [(k, v) for k, v in taken if k != "data.timestamp_unit"])  # names it)
            raise
        _say_as_ingested(source, said, [(k, v) for k, v in taken if not _read_by_default(raw, k) and not _unread(
            raw, k)])
        for note in raw.notes:  # the lines data.bad_lines=skip took out (ingest's other notes: said here otherwise)
            if isinstance(note, SkippedNote):
                log.warning("%s", note)
        _say_passed_over(source, said, raw)
        if raw.missing_dropped:  # said as ingest says it (a review: update-users dropped them without a word)
            log.warning("%s%s", missing_dropped_said(raw.origin[0], raw.missing_dropped),
                        "; the (user, movie) pairs of those naming a user the run knows or adds and a movie it "
                        "knows kept among that user's seen movies (never recommended back), not solved on" if raw.seen.get("missing_values") is not None
                        else "")
        _say_untimed(raw)
        _say_odd_times(raw)
        pairs = _file_pairs(raw, engine, strict, new_users, new_movies)
        added_movies = None
        if not new_movies:
            _say_unfitted(pairs, engine, source)
        if new_movies:  # solved first, against the users as the run serves them; the users' re-solve reads them
            from embedrec.movie_update import add_movies

            named = np.unique(pairs.users)
            added_movies, pairs = add_movies(engine, pairs, raw, strict)
            lost = named[~np.isin(named, pairs.users)]  # users whose every pair was of a movie left out (a review:
            if lost.size:                               # said of none, and counted nowhere)
                if not pairs.users.size:
                    raise NotFoundError(f"{raw.origin[0]}: every rating is of a new movie that no user the run "
                                        "knows rated (a user the file adds has no vector yet to solve a movie "
                                        "against), so nothing is updated; give such movies' ratings by the run's "
                                        "users too, or update these users first with ratings of movies the run "
                                        "knows", kind="movie", ids=[])
                _warn_unmatched(lost, engine, list(pairs.new_ids), raw.origin[0])
                pairs = dataclasses.replace(pairs, unmatched=pairs.unmatched + int(lost.size))
        plan = _plan(engine, pairs, progress)
        before = _updated_before(run)
        given_before = _given_before(run)
        in_all = None if before is None else int(np.union1d(before, plan.updated_rows(engine.P.shape[0])).size)
        n_users = int(engine.P.shape[0]) + plan.users_added
        record = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),  # RFC 3339, UTC (a review)
                  "ratings": {"source": source if source == "-" else str(Path(source).resolve()),
                              "sha256": _file_sha256(source, raw, stamp),
                              # every row read, those data.missing=drop dropped too (a review: 1 of a 4-row file)
                              "rows": int(len(raw.ratings) + raw.missing_dropped)},
                  "users": plan.users_solved, "users_added": plan.users_added, "users_named": plan.users_named,
                  "users_unchanged": plan.nothing_new,
                  "users_in_all": in_all, "users_as_new": len(plan.as_new), "n_users": n_users,
                  **({"movies_added": len(added_movies or ()), "n_movies": int(engine.Q.shape[0]),
                      "movies_resolved": _resolved_count(added_movies, run, again=True),
                      "movies_fitted": _resolved_count(added_movies, run, again=False)}
                     if new_movies else {}),
                  "pairs": plan.pairs_added,
                  "pairs_solved": plan.pairs_solved, "before": run.path.name}
        if plan.left_out:
            _warn_left_out(plan.left_out, engine, source)
        if not plan.pairs_added:
            n = plan.users_named - len(plan.left_out) - plan.unmatched
            held = (f"the run already holds every rating in {_shown(source)} of its {_n(n, 'user')} (the others, if "
                    "any, are of movies it does not know); a pair the run holds keeps its rating: a new value for "
                    "it is not taken (update-users adds the movies new to a user)" if n else
                    f"every user named in {_shown(source)} is left out (above)")
            log.warning("nothing to update: %s; %s still serves %s", held, run_dir, run.path.name)
            return {**record, "model_folder": None}
        hashed: dict = {}  # the files _write hashed itself: those it links, the arrays it writes
        folder = publish(run_dir, lambda tmp: hashed.update(_write(tmp, run, engine, plan, record, before,
                                                                   given_before, progress, added_movies)),
                         COMMAND, progress, hashed, links=_links(run))
    others = [f"{n:,} {what}" for n, what in (
        (plan.pairs_added - plan.pairs_solved - plan.kept_as_seen,
         "more seen but not in their solve (below data.min_rating, or of movies without training ratings)"),
        (plan.kept_as_seen, "seen from rows dropped for a missing value, not solved on"),
        (plan.already, "rated before, kept as the run weighs them")) if n]
    did = [f"re-solved {plan.users_solved:,}"] if plan.users_solved or not plan.users_added else []
    if plan.as_new:  # the dataset's users without a training rating: served as new users from now on
        did[0] += (f" ({len(plan.as_new):,} of them without a training rating, solved and served as new users "
                   "are)")
    did += [f"added {plan.users_added:,}"] if plan.users_added else []
    if added_movies is not None and len(added_movies):  # (solved from their raters the run knows)
        log.info("added %s new in %s to the run (%s movies now), each solved from the ratings of the users it "
                 "knows, before the users were", _n(len(added_movies), "movie"), _shown(source),
                 f"{int(engine.Q.shape[0]):,}")
    again, fitted = record.get("movies_resolved", 0), record.get("movies_fitted", 0)
    if again:  # (an earlier update's: movie_update.resolve_added)
        log.info("solved %s an earlier update added again, with %s ratings in %s and those the run held",
                 _n(again, "movie"), "its" if again == 1 else "their", _shown(source))
    if fitted:  # (the dataset's without a training rating: movie_update.unfitted)
        log.info("solved %s of the dataset without a training rating (no vector until now) from %s ratings in %s",
                 _n(fitted, "movie"), "its" if fitted == 1 else "their", _shown(source))
    served = f"; the run has {n_users:,} users now" if plan.users_added else ""
    if in_all is not None and updates_of(run.manifest):  # distinct users over the updates, not re-solves summed
        served += f"{',' if served else ';'} {_n(in_all, 'user')} updated since training in all"
    if plan.nothing_new:  # (an ops review: re-solved, added and left out did not add up to the users named)
        served += (f"{',' if served else ';'} {_n(plan.nothing_new, 'user')} named only movies the run held for "
                   f"{'it' if plan.nothing_new == 1 else 'them'} already")
    log.info("%s of the %s named in %s with %s%s%s (%.2fs)", " and ".join(did), _n(plan.users_named, "user"),
             _shown(source), _n(plan.pairs_solved, "new rating"), f" ({'; '.join(others)})" if others else "",
             served, time.perf_counter() - started)
    return {**record, "model_folder": folder.name}


def as_ingested(run: Run, data_cfg: DataConfig, given: Iterable[str] | None, source: str = "-") -> DataConfig:
    """``data_cfg`` with each reading setting of AS_INGESTED that ``given`` (the keys the config or --set gives:
    config_ingest.chosen_keys; None: those at other values than the defaults) does not name taken from the config the
    run's dataset was ingested with (its manifest, at the path the run records; where that cannot be read, a
    dataset moved or gone, the data section of the run's config.yaml, which records it since session 48), said in
    one line where one differs; ``data_cfg`` as it is where neither says (a dataset made in memory)."""
    cfg, taken, said = _as_ingested(run, data_cfg, given)
    _say_as_ingested(source, said, taken)
    return cfg


def _as_ingested(run: Run, data_cfg: DataConfig, given: Iterable[str] | None) -> tuple[DataConfig, list, str]:
    """(:func:`as_ingested`'s config, the (key, value) pairs it took from the recorded config, how to name that),
    nothing said."""
    from embedrec.config import DataConfig

    recorded, said = _recorded_data(run)
    if recorded is None:
        return data_cfg, [], said
    default = DataConfig()
    if given is None:  # what differs from the defaults was given
        given = [k for k in AS_INGESTED if _value(data_cfg, k) != _value(default, k)]
    data, cols, taken = {}, {}, []
    for key in AS_INGESTED:
        if key in given:
            continue
        name = key.split(".")[-1]
        then = (recorded.get("columns") or {}).get(name, ...) if key.startswith("data.columns.") else \
            recorded.get(name, ...)
        if then is ... or then == _value(data_cfg, key) or not _fits(then, _value(default, key), key):
            continue
        (cols if key.startswith("data.columns.") else data)[name] = then
        taken.append((key, then))
    if not taken:
        return data_cfg, [], said
    return dataclasses.replace(data_cfg, columns=dataclasses.replace(data_cfg.columns, **cols), **data), taken, said


def _say_as_ingested(source: str, said: str, taken: list) -> None:
    """The one line saying which reading settings were taken from how the run's dataset was ingested, if any."""
    if taken:
        log.info("reading %s as %s was ingested: %s (a key given «with --set|in the config» reads it otherwise)",
                 _shown(source), said, ", ".join(f"{key}={_shown_value(v)}" for key, v in taken))


def _say_passed_over(source: str, said: str, raw: RawData) -> None:
    """One line for each column the file names twice, the dataset's name and the default one (columns.passed_over):
    the one read, and how to read the other."""
    for key, (read, other) in (getattr(raw, "columns_passed_over", None) or {}).items():
        log.info(f"%s has both a '%s' and a '%s' column: read '%s' for the %s, as %s was ingested "
                 f"({set_hint(f'data.columns.{key}', other)} reads '%s')", _shown(source), read, other, read, key,
                 said, other)


def _read_by_default(raw: RawData, key: str) -> bool:
    """Whether the column of data.columns ``key`` was read under its default name, not the recorded one
    (tables.read_generic's ``or_default``; RawData.columns_read records the name read)."""
    from embedrec.config import ColumnsConfig
    from embedrec.config_values import plain_name

    if not key.startswith("data.columns."):
        return False
    name = key.rsplit(".", 1)[1]
    read = raw.columns_read.get(name)
    return isinstance(read, str) and plain_name(read) == plain_name(getattr(ColumnsConfig, name))


def _unread(raw: RawData, key: str) -> bool:
    """Whether the recorded setting ``key`` had nothing of the file to read: the timestamp column and its format
    where the file has no times (a first-hour review: 'reading f.csv as dataset was ingested: ...,
    data.columns.timestamp=event_time' said of a user_id,movie_id,rating file), the unit where no Unix times were
    read."""
    if key in ("data.columns.timestamp", "data.timestamp_format"):
        return "timestamp" not in raw.ratings
    return key == "data.timestamp_unit" and raw.timestamp_unit is None


def _recorded_data(run: Run) -> tuple[dict | None, str]:
    """(the data section the run's dataset was ingested with, how to name it): its manifest's config, at the path
    the run records; else the run's config.yaml's data section (checked against the run's manifest), which records
    the dataset's since session 48 (an earlier run's holds the train command's); (None, '') where neither reads."""
    import yaml

    from embedrec.config_ingest import data_as_read
    from embedrec.data.layout import read_manifest
    from embedrec.data.readers import LAYOUT_NAMES

    rec = run.manifest.get("dataset") or {}
    path, want = rec.get("path"), rec.get("files_fingerprint")
    try:  # read as every reader of a dataset's manifest reads it: bounded, a regular file, its seal checked; and
        # only the dataset the run was trained on (a red team: an edited one was followed, and one re-ingested at
        # that path would be), by its files' fingerprint
        folder = Path(path)
        manifest, _ = read_manifest(folder / "current" if (folder / "current").exists() else folder, folder)
        recorded = data_as_read(manifest)
        if isinstance(recorded, dict) and (not want or manifest.get("fingerprint") == want):
            if manifest.get("layout") in LAYOUT_NAMES:  # a release, read as released: its reading settings were
                # never applied (ingest warned them of no effect), so none is the file's (a red team: a
                # data.columns.rating=null given to ml-100k read an update's ratings as likes)
                return {}, f"dataset '{manifest.get('name') or path}'"
            return _with_unit(recorded, manifest.get("timestamp_unit_read")), \
                f"dataset '{manifest.get('name') or path}'"
    except (OSError, ValueError, TypeError, KeyError, EmbedrecError):
        pass
    if rec.get("layout") in LAYOUT_NAMES:  # the dataset gone, but the run records a release's: as above, none of
        # the reading settings config.yaml may record was applied (a session-49 gap: one was read from there)
        return {}, f"dataset '{rec.get('name') or path}'"
    try:
        raw = run.read_verified(run.path / CONFIG)
        recorded = (yaml.safe_load(raw) or {}).get("data") if raw is not None else None
    except (EmbedrecError, yaml.YAMLError, AttributeError) as e:  # said, not skipped (a red team: the error that
        # followed named the file's columns, never the damaged config.yaml)
        why = getattr(e, "raw", str(e)).split("\n")[0]  # its «CLI|library» marks resolved by the log's filter
        log.warning(f"cannot read how the run's dataset was ingested from {run.path / CONFIG} ({why}): reading "
                    "the file with the command's settings")
        recorded = None
    return (_with_unit(recorded, rec.get("timestamp_unit_read")), "the run's dataset (its config.yaml)") \
        if isinstance(recorded, dict) else (None, "")


def _with_unit(recorded: dict, unit) -> dict:
    """A dataset's recorded data section with data.timestamp_unit the unit its Unix times were read in where it
    says auto (the manifest's timestamp_unit_read): a file of new ratings is read in the dataset's unit, not its
    own guess (a red team: 900000000 beside a row in nanoseconds was read as microseconds, 1970)."""
    from embedrec.data.times import UNITS

    if recorded.get("timestamp_unit", "auto") == "auto" and unit in UNITS:
        return {**recorded, "timestamp_unit": unit}
    return recorded


def _value(data_cfg: DataConfig, key: str):
    """The value of a dotted data.* ``key`` in ``data_cfg``."""
    now: object = data_cfg
    for part in key.split(".")[1:]:
        now = getattr(now, part)
    return now


def _fits(value, default, key: str) -> bool:
    """Whether a recorded ``value`` is of the kind ``key`` takes (its default's, or None for a column a file may
    lack, data.separator's auto, no data.event_weights): a sealed manifest holds what a config took, but an older
    one may lack a key."""
    if value is None:
        return key in ("data.columns.rating", "data.columns.timestamp", "data.separator", "data.event_weights",
                       "data.timestamp_format")
    if key == "data.event_weights":  # a mapping of event types to numbers (a review: a shop log's update read its
        # event column as numbers, 'view' is not a number, where ingest had weighed it)
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(w, (int, float)) and
                                               not isinstance(w, bool) for k, w in value.items())
    if isinstance(default, bool):
        return isinstance(value, bool)
    return isinstance(value, str) if isinstance(default, str) or default is None else False


def _shown_value(value) -> str:
    """A recorded setting as a --set writes it: null, a mapping in YAML's flow style ({view: 1, cart: 3})."""
    if value is None:
        return "null"
    if isinstance(value, dict):  # each key as a YAML key reads back (a review: 'x: y' unquoted)
        from embedrec.data.columns import _yaml_key

        return "{" + ", ".join(f"{_yaml_key(str(k))}: {w:g}" for k, w in value.items()) + "}"
    return str(value)


def _updated_before(run: Run) -> np.ndarray | None:
    """The rows of the users the run's earlier updates re-solved or added (run_layout.UPDATED_USERS; none for a trained
    model), checked; None where the run was updated before that file was kept (its users then are not known)."""
    from embedrec.run_updates import updates_of
    from embedrec.verify import check_updated_users

    got = run.array(UPDATED_USERS, optional=True)
    if got is None:
        return None if updates_of(run.manifest) else np.zeros(0, np.int64)
    return check_updated_users(run, got)  # (verify's check, and index rebuild's as it carries the file over)


def _given_before(run: Run) -> np.ndarray | None:
    """The pairs the run's earlier updates added as their files gave them (run_layout.UPDATE_PAIRS), checked as
    verify checks them (verify.check_update_pairs), before anything is read of the file (a re-sealed edit is
    refused though the file adds nothing); None where the run keeps none (a trained model, or one updated before
    the file was kept: its pairs are not known)."""
    from embedrec.verify import check_update_pairs

    got = run.array(UPDATE_PAIRS, optional=True)
    if got is None:
        return None
    return check_update_pairs(run, got, int(run.manifest["n_users"]), int(run.manifest["n_movies"]),
                              (run.array("seen_indptr", mmap=True), run.array("seen_indices", mmap=True)))


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
                                f"updated; {apart or 'give ratings of the movies the run was trained on, by the ids of its dataset'}",
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


@dataclasses.dataclass
class Added:
    """A user the update adds: its id (as the run's), its seen movie rows (sorted) with their weights in its solve
    (float32 as recorded; 0: seen, not solved on), its vector and divisor, and how many of its movies the file
    gave (``pairs``; the others are those the dataset's cleaning kept of a user it left out: rated_below_unknown)."""

    id: object
    movies: np.ndarray
    weights: np.ndarray
    vector: np.ndarray
    divisor: float
    pairs: int


@dataclasses.dataclass
class Plan:
    """What the update changes: per known user with a new pair (rows sorted), its new seen movies and their solve
    weights, and its re-solved vector and divisor where a new pair enters its solve; the users it adds, in the order
    their rows follow the run's (``added``), and the ids of the new users it leaves out (``left_out``: no rating it
    can solve on)."""

    users: np.ndarray                      # the user rows with a new pair
    new_movies: list[np.ndarray]           # per such user, its new movie rows, sorted
    new_weights: list[np.ndarray]          # their weights in the solve (0: seen, not solved on)
    vectors: dict[int, np.ndarray]         # user row -> its re-solved vector
    divisors: dict[int, float]             # user row -> its divisor (run_layout.USER_SCALE)
    users_named: int = 0                   # the users the file names (those left with no known movie too)
    unmatched: int = 0                     # of them, those whose every rating is of a movie the run does not know
    already: int = 0
    nothing_new: int = 0                   # known users of the file with only pairs the run holds already
    kept_as_seen: int = 0                  # of the pairs added, those of rows dropped for a missing value
    # per user with a pair added, in row order (those added after the run's): its row and each pair's movie row,
    # rating and time as the file gave them (Pairs), what run_layout.UPDATE_PAIRS records; ``given``: Pairs.given
    given_pairs: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = dataclasses.field(default_factory=list)
    given: bool = True
    added: list[Added] = dataclasses.field(default_factory=list)
    left_out: list = dataclasses.field(default_factory=list)
    # of the users re-solved, the dataset's users without a training rating, solved as new ones (in row order)
    as_new: list[int] = dataclasses.field(default_factory=list)

    @property
    def users_solved(self) -> int:
        return len(self.vectors)

    @property
    def users_added(self) -> int:
        return len(self.added)

    @property
    def pairs_added(self) -> int:
        return int(sum(m.size for m in self.new_movies)) + sum(a.pairs for a in self.added)

    @property
    def pairs_solved(self) -> int:
        return int(sum(int((w > 0).sum()) for w in (*self.new_weights, *(a.weights for a in self.added))))

    def updated_rows(self, n_users: int) -> np.ndarray:
        """The rows of the users this update re-solves or adds (those it adds after the run's ``n_users``)."""
        return np.union1d(np.fromiter(self.vectors, np.int64, len(self.vectors)),
                          np.arange(n_users, n_users + self.users_added, dtype=np.int64))


def _plan(engine: Recommender, pairs: Pairs, progress: bool = False) -> Plan:
    """Each known user's re-solve (serve.update.als_resolve) over its trained pairs and its new ones: a movie it
    rated before (in training or an earlier update) keeps the weight it has; a rating below data.min_rating, or of a
    movie without training ratings, is seen but left out of the solve (weight 0), as training left such ratings
    out; the rest weigh as training weighs a rating at the latest place (serve.update.latest_weights), but a user of
    the dataset with nothing in its solve (no training rating: split.cold_start's) is solved as a new user told
    them (serve.update.new_user_weights; ``Plan.as_new``). A user with nothing new in its solve keeps its vector
    bit for bit. Each new user's solve (:func:`_new_user`). ``progress``: a bar over the users named."""
    from embedrec.bars import step, ticking
    from embedrec.run_updates import trained_users
    from embedrec.serve.update import (
        als_resolve,
        latest_weights,
        new_solve_pairs,
        new_user_weights,
        trained_pairs,
    )

    n_users = int(engine.P.shape[0])
    dataset_users = trained_users(engine.run.manifest)
    order = np.lexsort((pairs.movies, pairs.users))
    users, movies, values = pairs.users[order], pairs.movies[order], pairs.values[order]
    times = pairs.times[order] if pairs.times is not None else np.full(order.size, np.nan)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if users.size else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], users.size]
    plan = Plan(np.zeros(0, np.int64), [], [], {}, {}, users_named=max(pairs.named, int(starts.size)),
                unmatched=pairs.unmatched, given=pairs.given)
    changed = []
    with step("solving users" if progress else None, int(starts.size), "user") as tick:
        for a, b in ticking(zip(starts, ends), tick):
            row = int(users[a])
            if row >= n_users:  # a user the run does not know (rows in the file's order: so are the ones added)
                new_id = pairs.new_ids[row - n_users]
                got = _new_user(engine, new_id, movies[a:b], values[a:b])
                if got is None:
                    plan.left_out.append(new_id)
                else:
                    plan.added.append(got)
                    plan.kept_as_seen += int(np.isnan(values[a:b]).sum())
                    plan.given_pairs.append((n_users + len(plan.added) - 1, movies[a:b], values[a:b], times[a:b]))
                continue
            seen = engine.seen(row).astype(np.int64)
            m, v, t = movies[a:b], values[a:b], times[a:b]
            new, solved = new_solve_pairs(engine, row, m, v, seen)
            solved &= ~np.isnan(v)  # a pair of a row dropped for a missing value: seen, not solved on (_kept_as_seen)
            plan.already += int((~new).sum())
            m, v, t, solved = m[new], v[new], t[new], solved[new]
            if not m.size:  # every movie it names, the run holds for it already
                plan.nothing_new += 1
                continue
            plan.given_pairs.append((row, m, v, t))
            plan.kept_as_seen += int(np.isnan(v).sum())
            w = np.zeros(m.size, np.float64)
            if solved.any():
                # a user of the dataset without a training rating (split.cold_start's; nothing in its solve yet) is a
                # new user told these ratings: weighed as the fold-in weighs a new user's, and served as one (its row in
                # run_layout.SOLVED_AS_NEW, the new users' prior in its lists), as the same ratings under a new id are
                fresh = row < dataset_users and not trained_pairs(engine, row, seen)[0].size
                weigh = new_user_weights if fresh else latest_weights
                got = weigh(engine, dict(zip(m[solved].tolist(), v[solved].tolist())))
                # as recorded (float32, run_layout.SOLVE_WEIGHTS), so that a later re-solve or explanation over the recorded
                # weights is this solve's
                w[solved] = np.array([got[x] for x in m[solved].tolist()], np.float32)
                detail: dict = {}
                p = als_resolve(engine, row, m[solved], w[solved], seen, detail)
                _refuse_nonfinite(p, engine.users.raw(row))
                plan.vectors[row], plan.divisors[row] = p, float(detail["divisor"])
                if fresh:
                    plan.as_new.append(row)
            changed.append(row)
            plan.new_movies.append(m)
            plan.new_weights.append(w)
    plan.users = np.array(changed, np.int64)
    return plan


def _new_user(engine: Recommender, user_id, movies: np.ndarray, values: np.ndarray) -> Added | None:
    """A user the run does not know, with its ratings in the file (``movies``, movie rows, sorted; ``values``): its
    vector solved as a new user's fold-in solves one from the same ratings (serve.update.new_user_weights,
    als_new_user: ``recommend --liked/--rated`` gives the same list), its movies seen, those below data.min_rating
    or without training ratings at weight 0, as the fold-in leaves them out; where the dataset's cleaning left the
    user out (every rating below data.min_rating: the run's rated_below_unknown), those movies seen too, at weight
    0. None where no rating is one the model learns from (the fold-in refuses such a user)."""
    from embedrec.serve.update import als_new_user, new_user_weights

    solved = ~engine.untrained[movies] & ~np.isnan(values)  # (NaN: a row dropped for a missing value, seen alone)
    low = engine.training_ratings["min_rating"]
    if low is not None:
        solved &= values >= low
    if not solved.any():
        return None
    got = new_user_weights(engine, dict(zip(movies[solved].tolist(), values[solved].tolist())))
    w = np.zeros(movies.size, np.float32)  # as recorded (run_layout.SOLVE_WEIGHTS): the solve below is over these
    w[solved] = np.array([got[m] for m in movies[solved].tolist()], np.float32)
    detail: dict = {}
    p = als_new_user(engine, movies[solved], w[solved].astype(np.float64), detail)
    _refuse_nonfinite(p, user_id)
    before = engine.rated_by_unknown(user_id)  # what the popular fallback left out for it, kept out still
    extra = np.setdiff1d(np.asarray(before, np.int64), movies) if before is not None else np.zeros(0, np.int64)
    rows = np.concatenate([movies, extra])
    order = np.argsort(rows, kind="stable")
    return Added(user_id, rows[order], np.concatenate([w, np.zeros(extra.size, np.float32)])[order], p,
                 float(detail["divisor"]), int(movies.size))


def _say_unfitted(pairs: Pairs, engine: Recommender, source: str) -> None:
    """A note where the file rates the dataset's movies without a training rating (data.keep_unrated_movies: no
    vector), which a plain update keeps as seen, solved on by no one, and ``--new-movies``
    solves (a review: such ratings went into an INFO count of 'more seen but not in their solve')."""
    known = pairs.movies < engine.Q.shape[0]
    hit = np.zeros(known.size, bool)
    hit[known] = engine.untrained[pairs.movies[known]]  # (no movie an update added is: it has a vector)
    if hit.any():
        movies = np.unique(pairs.movies[hit])
        log.info("note: %s in %s %s of %s of the dataset without a training rating (no vector yet), kept as seen "
                 "and not solved on; «--new-movies|new_movies=True» solves them from these ratings",
                 _n(int(hit.sum()), "rating"), _shown(source), "is" if hit.sum() == 1 else "are",
                 _n(movies.size, "movie"))


def _resolved_count(added, run: Run, again: bool) -> int:
    """How many movies the update solved over rows the run has (``added.resolved``): ``again``, those an earlier
    update added (rows from run_updates.trained_movies on); else the dataset's without a training rating
    (movie_update.unfitted)."""
    from embedrec.run_updates import trained_movies

    if added is None or not added.resolved:
        return 0
    first = trained_movies(run.manifest)
    return sum((r >= first) == again for r in added.resolved)


def _refuse_nonfinite(p: np.ndarray, user_id) -> None:
    if not np.isfinite(p).all():  # never a vector that scores NaN (as recommend's fold-in refuses one)
        raise ArtifactError(f"user {user_id}'s solved vector is not finite: this run's embeddings hold values too "
                            "large for the solve; «run 'embedrec verify', then train again|train again»")


def merged_seen(ptr: np.ndarray, idx: np.ndarray, weights: np.ndarray, users: np.ndarray,
                movies: list[np.ndarray], new_w: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seen CSR (``ptr``, ``idx``) and its aligned ``weights`` with each of ``users``' (sorted rows) new
    ``movies`` (sorted, none among its seen ones) inserted in order, with weights ``new_w``: each user's movies stay
    sorted (sparse.csr's order, which seen_weights and the readers rely on), the other users' slices as they were;
    dtypes kept."""
    at = []
    for row, m in zip(users, movies):
        a, b = int(ptr[row]), int(ptr[row + 1])
        at.append(a + np.searchsorted(idx[a:b], m))
    at = np.concatenate(at) if at else np.zeros(0, np.int64)
    new_idx = np.insert(idx, at, np.concatenate(movies).astype(idx.dtype) if movies else np.zeros(0, idx.dtype))
    new_weights = np.insert(weights, at, np.concatenate(new_w).astype(weights.dtype) if new_w else
                            np.zeros(0, weights.dtype))
    added = np.zeros(ptr.size - 1, np.int64)
    added[users] = [m.size for m in movies]
    new_ptr = ptr.copy()
    new_ptr[1:] += np.cumsum(added).astype(ptr.dtype)
    return new_ptr, new_idx, new_weights


def appended_seen(ptr: np.ndarray, idx: np.ndarray, weights: np.ndarray, movies: list[np.ndarray],
                  new_w: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seen CSR (``ptr``, ``idx``) and its aligned ``weights`` with a user appended for each of ``movies`` (its
    seen movie rows, sorted) with its weights ``new_w``: the rows of the users an update adds, after the run's;
    dtypes kept."""
    counts = np.fromiter((m.size for m in movies), np.int64, len(movies))
    new_ptr = np.concatenate([ptr, (int(ptr[-1]) + np.cumsum(counts)).astype(ptr.dtype)])
    new_idx = np.concatenate([idx, *(m.astype(idx.dtype) for m in movies)])
    return new_ptr, new_idx, np.concatenate([weights, *(w.astype(weights.dtype) for w in new_w)])


def _write(tmp: Path, run: Run, engine: Recommender, plan: Plan, record: dict, before: np.ndarray | None,
           given_before: np.ndarray | None, progress: bool = False, movies=None) -> dict:
    """The new model folder: the changed arrays written (and the users' ids where the update adds users), every
    other listed file carried over checked (hard-linked where it can be), the manifest with the arrays' new hashes,
    n_users and the ``updates`` record (run_publish.publish seals it). ``given_before``: the earlier updates' pairs as
    their files gave them (:func:`_given_before`), which this update's follow. ``progress``: bars over the files
    carried over and the arrays written. ``movies``: the movies the update adds (movie_update.AddedMovies), whose
    rows grow the movie arrays and catalogue, and over which the indexes are built again (n_movies and the
    embeddings' hash in the manifest with them). Returns the files it hashed itself, those artifacts.carry_over
    linked and the arrays hashed as they were written (publish's ``hashed``)."""
    from embedrec.artifacts import PatchedRows, carry_over, save_arrays
    from embedrec.fsutil.files import write_json

    weights, scale = engine.solve_arrays()
    n_users = int(engine.P.shape[0])
    # the users not re-solved keep their bytes: the table written a block at a time from the one served (as the
    # engine opened it: checked, and memory-mapped where large), its re-solved rows replaced and the added users'
    # after it (never a copy of it in memory)
    P = engine.P
    ptr, idx, w = merged_seen(run.array("seen_indptr"), run.array("seen_indices"), np.asarray(weights), plan.users,
                              plan.new_movies, plan.new_weights)
    added = plan.added
    if added:
        ptr, idx, w = appended_seen(ptr, idx, w, [a.movies for a in added], [a.weights for a in added])
    P = PatchedRows(P, plan.vectors, np.stack([a.vector for a in added]).astype(P.dtype) if added else None)
    arrays = {"user_factors": P, "seen_indptr": ptr, "seen_indices": idx, SOLVE_WEIGHTS: w}
    if scale is not None:
        scale = np.array(scale)
        for row, s in plan.divisors.items():
            scale[row] = s
        arrays[USER_SCALE] = np.concatenate([scale, np.array([a.divisor for a in added], scale.dtype)])
    bias = run.array("user_bias") if added else None  # (an als run has none: a model with one, 0 for a new user)
    if bias is not None:
        arrays["user_bias"] = np.concatenate([bias, np.zeros(len(added), bias.dtype)])
    if before is not None:
        arrays[UPDATED_USERS] = np.union1d(before, plan.updated_rows(n_users)).astype(np.int64)
    if plan.as_new:  # the earlier updates' too (a file carried over where this update solves none)
        arrays[SOLVED_AS_NEW] = np.union1d(engine.solved_as_new(), plan.as_new).astype(np.int64)
    # the earlier updates' pairs as their files gave them, then this one's (history shows them)
    arrays[UPDATE_PAIRS] = given_pairs(plan) if given_before is None else \
        np.concatenate([given_before, given_pairs(plan)])
    n_movies = int(run.manifest["n_movies"])
    changed = movies is not None and movies.changed  # (movies added, or an earlier update's solved again)
    if changed:
        from embedrec.movie_update import movie_arrays

        arrays.update(movie_arrays(engine, run, movies))
    written = {f"{k}.npy" for k in arrays}
    if added:
        written |= _write_user_ids(tmp, run, [a.id for a in added], n_users)
    if movies is not None and len(movies):
        from embedrec.movie_update import write_movie_ids

        written |= write_movie_ids(tmp, run, movies, n_movies)
    # state_dict.pt (an als run trained on a GPU, torch's engine) holds the users' trained vectors, which no
    # reader serves from (export --to torch builds its module from the arrays): left out, not kept stale
    hashed = carry_over(run, tmp, "its users cannot be updated", written=written, left_out=(STATE_DICT,),
                        rebuilt=(".faiss",) if changed else (), progress=progress, link=_links(run))
    files = {**(run.manifest.get("files") or {}),
             **save_arrays(tmp, arrays, "writing the update" if progress else None, hashed)}
    history = run.manifest.get(UPDATES)
    manifest = {k: v for k, v in run.manifest.items() if k not in ("checksums", "model_folder")}
    if changed:  # the indexes over every movie, built again (the embeddings' hash as train makes it)
        import hashlib

        from embedrec.movie_update import index_of

        emb = hashlib.sha256((files[MOVIE_FACTORS] + files.get(MOVIE_BIAS, "")).encode()).hexdigest()
        manifest.update(n_movies=n_movies + len(movies), embeddings_sha256=emb,
                        index=index_of(tmp, run, arrays, emb, progress))
    write_json(tmp / MANIFEST, {**manifest, "files": files, "n_users": n_users + len(added),
                                UPDATES: [*(history if isinstance(history, list) else []), record]})
    return hashed


def _links(run: Run) -> bool:
    """Whether an update hard-links the files it carries from ``run``'s model folder: where that model is an update
    itself. The trained model an update is built on keeps its own bytes (the first update copies them), the way back
    run_updates.updates_fix names for a damaged updated model: a file damaged in place is damaged in every folder
    linked to it."""
    from embedrec.run_updates import updates_of

    return bool(updates_of(run.manifest))


def given_pairs(plan: Plan) -> np.ndarray:
    """The pairs ``plan`` adds to its users' seen movies as the file gave them (run_layout.UPDATE_PAIRS: user row,
    movie row, rating, time; by user, then movie), each rating NaN where the file gave none (Plan.given)."""
    got = plan.given_pairs
    out = np.zeros(int(sum(m.size for _, m, _, _ in got)), UPDATE_PAIRS_DTYPE)
    if got:
        out["user_idx"] = np.concatenate([np.full(m.size, row, np.int64) for row, m, _, _ in got])
        out["movie_idx"] = np.concatenate([m for _, m, _, _ in got])
        out["rating"] = np.concatenate([v for _, _, v, _ in got]) if plan.given else np.nan
        out["timestamp"] = np.concatenate([t for _, _, _, t in got])
    return out


def _write_user_ids(tmp: Path, run: Run, ids: list, n_users: int) -> set[str]:
    """The ids of the users an update adds, after the run's: users.parquet gains a row each (its row, its id; the
    other columns, a dataset's demographics, empty), and user_ids.npy (where the run has it) the ids
    (artifacts.grow_id_table). Returns the names of the files written."""
    from embedrec.artifacts import grow_id_table

    return grow_id_table(tmp, run, "user", {"user_id": ids}, n_users)[1]


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
