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
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import (
    ArtifactError,
    DataError,
    NotFoundError,
    SkippedNote,
)
from embedrec.run_layout import (
    UPDATE_PAIRS,
    UPDATED_USERS,
)
from embedrec.user_update_file import (
    Pairs,
    _file_pairs,
    _file_sha256,
    _n,
    _ratings_source,
    _say_odd_times,
    _say_untimed,
    _shown,
    _stamp,
    _warn_left_out,
    _warn_unmatched,
    read_ratings,
)
from embedrec.user_update_settings import (
    _as_ingested,
    _read_by_default,
    _say_as_ingested,
    _say_passed_over,
    _unread,
)
from embedrec.user_update_write import (
    _links,
    _write,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from collections.abc import Iterable

    from embedrec.config import DataConfig
    from embedrec.run import Run
    from embedrec.serve.recommender import Recommender

log = logging.getLogger("embedrec")
COMMAND = "embedrec update-users"


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
        log.info("solved %s of the dataset without a training rating from %s ratings in %s (and those the run "
                 "held)", _n(fitted, "movie"), "its" if fitted == 1 else "their", _shown(source))
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


