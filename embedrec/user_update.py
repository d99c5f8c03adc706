"""``embedrec update-users``: the users named in a ratings file re-solved with the ratings they made since training,
the movie factors fixed, and published as the run's new model folder, so every later command serves them
(implicit's ``partial_fit_users``; ``recommend --user U --liked ...`` is the same re-solve for one request,
writing nothing: serve/update.py).

An als run records how its users' final solve weighed each seen pair (run.SOLVE_WEIGHTS) and each user's divisor
(run.USER_SCALE, where it adds recent popularity), so a user's re-solve is that solve over those weights plus one
per new rating (serve.update.als_resolve, serve.update.latest_weights: weighed as training weighs a rating, at the
latest place in the user's history). The new folder holds, for the users with a new rating in their solve, the
re-solved vectors (user_factors.npy), every new pair among the user's seen movies (seen_indptr.npy,
seen_indices.npy: never listed again) with its weight in the solve (solve_weights.npy: 0 for a rating below
data.min_rating or of a movie without training ratings, which training never learnt from either) and the new
divisors (user_scale.npy); every other file is carried over checked (run.Run.copy_verified), the FAISS indexes
too (movie vectors only, keyed on the movies' hash, which does not change), and the manifest gains an ``updates``
record. A second update composes: its re-solve reads the first's weights. Only an als run can be updated so: the
other losses fit their users by gradient steps, which no re-solve repeats, and an explicit run keeps no ratings.
Users the run does not know are refused (a new user's list is a fold-in per request; n_users never grows here).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import ArtifactError, DataError, NotFoundError, UsageError, shorten

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig
    from embedrec.data.readers import RawData
    from embedrec.run import Run
    from embedrec.serve.recommender import Recommender

log = logging.getLogger("embedrec")
COMMAND = "embedrec update-users"
NAMED = 5  # ids named one by one in a warning or an error; the rest are counted
EMPTY = "point data.source at a ratings file with rows"  # the readers' advice for an empty file (data/parsing.py)


def update_users(run_dir, ratings, data_cfg: DataConfig, *, strict: bool = False) -> dict:
    """Re-solve the users of ``ratings`` (a ratings table's path, or '-' for standard input, read as ingest reads
    one under ``data_cfg``'s reading settings) in the run at ``run_dir`` and publish the result as its new model
    folder under the run's writer lock (``Busy`` while another writer holds it). A rating of a movie the model does
    not know is left out with a warning (``strict``: refused); a user the run does not know is refused. Returns
    the ``updates`` record written, with ``model_folder`` (the new folder; None where the file adds nothing, and
    nothing is published)."""
    from embedrec.artifacts import writer_run
    from embedrec.run import load_run, publish, run_lock
    from embedrec.serve.recommender import Recommender
    from embedrec.serve.update import check_resolvable

    started = time.perf_counter()
    run_dir = writer_run(Path(run_dir))
    source = _ratings_source(ratings)
    with run_lock(run_dir, COMMAND):
        run = load_run(run_dir)
        engine = Recommender(run)
        check_resolvable(engine, lasting=True)
        raw = read_ratings(source, data_cfg, engine)
        pairs = _known_pairs(raw, engine, strict)
        plan = _plan(engine, pairs)
        record = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "ratings": {"source": source if source == "-" else str(Path(source).resolve()),
                              "sha256": _file_sha256(source, raw), "rows": int(len(raw.ratings))},
                  "users": plan.users_solved, "users_named": plan.users_named, "pairs": plan.pairs_added,
                  "pairs_solved": plan.pairs_solved, "before": run.path.name}
        if not plan.pairs_added:
            n = plan.users_named
            log.warning("nothing to update: the run already holds every rating in %s of its %s (the others, if any, "
                        "are of movies it does not know); %s still serves %s", _shown(source),
                        _n(n, "user"), run_dir, run.path.name)
            return {**record, "model_folder": None}
        folder = publish(run_dir, lambda tmp: _write(tmp, run, engine, plan, record), COMMAND)
    others = [f"{n:,} {what}" for n, what in (
        (plan.pairs_added - plan.pairs_solved, "more seen but not in their solve (below data.min_rating, or of "
                                               "movies without training ratings)"),
        (plan.already, "rated before, kept as the run weighs them")) if n]
    log.info("re-solved %s of the %s named in %s with %s%s (%.2fs)", f"{plan.users_solved:,}",
             _n(plan.users_named, "user"), _shown(source), _n(plan.pairs_solved, "new rating"),
             f" ({'; '.join(others)})" if others else "", time.perf_counter() - started)
    return {**record, "model_folder": folder.name}


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
        tilde = " (the shell left '~' unexpanded: write the path out, e.g. $HOME/...)" if source.startswith("~") else ""
        raise DataError(f"{source}: file not found («--ratings|ratings»); check the path{tilde}, or give - to read "
                        "standard input")
    if os.path.isdir(source):
        raise UsageError(f"«--ratings|ratings» '{source}' is a folder; give a ratings table (CSV, TSV or Parquet) "
                         "of user, movie, rating[, timestamp] rows")
    return source


def _file_sha256(source: str, raw: RawData) -> str | None:
    """The SHA-256 of the ratings file read (None for standard input or a pipe, read once: nothing to hash again)."""
    from embedrec.fsutil.integrity import sha256_file

    return sha256_file(source) if raw.files else None


def read_ratings(source: str, data_cfg: DataConfig, engine: Recommender) -> RawData:
    """The ratings table ``source`` read as ingest reads one (data.readers.read_generic: user, movie, rating[,
    timestamp], the columns, separator, header, encoding and format of ``data_cfg``; its errors name the file and
    line), ids as the run's are (integers where every one reads as one, else text: data.id_type auto), a table
    without a rating column as likes (each row the scale's top; on a counts model one event each)."""
    from embedrec.data.readers import read_generic

    counts = "count_weight" in engine.training_ratings
    cfg = dataclasses.replace(data_cfg, source=source, movies=None, id_type="auto",
                              repeats="sum" if counts else "latest", min_rating=None)
    try:
        raw = read_generic(source, cfg)
    except DataError as e:  # the readers' advice names ingest's data.source: here the file is --ratings
        if EMPTY not in e.raw:
            raise
        raise DataError(e.raw.replace(EMPTY, "give «--ratings|ratings» a ratings table with a row per rating "
                                             "(user, movie, rating)")) from None
    if raw.no_ratings and not counts and engine.scale:
        raw.ratings["rating"] = np.float32(engine.scale[1])
    return raw


@dataclasses.dataclass
class Pairs:
    """The file's ratings of known users and movies, one per pair: user rows, movie rows, ratings."""

    users: np.ndarray
    movies: np.ndarray
    values: np.ndarray


def _known_pairs(raw: RawData, engine: Recommender, strict: bool) -> Pairs:
    """The file's rows as (user row, movie row, rating), checked: every user one the run knows (else refused,
    the first named by its line), every rating a number the model takes (finite; within its rating scale, or a
    count above 0), a movie the model does not know left out with one warning (``strict``: refused); a pair given
    twice taken as ingest takes it (the latest rating; a counts model's events summed)."""
    import pandas as pd

    from embedrec.ingestion import dedupe_mask, sum_repeats

    df = raw.ratings.reset_index(drop=True)
    _check_values(raw, df["rating"].to_numpy(np.float64), engine)
    codes, uniques = pd.factorize(df["user_id"], sort=False)
    urows, _ = engine.users.rows(list(uniques))
    missing = np.flatnonzero(urows < 0)
    if missing.size:
        first = int(np.flatnonzero(np.isin(codes, missing))[0])
        raw_id = uniques[int(codes[first])]
        more = f" (and {missing.size - 1:,} more of its {len(uniques):,} users)" if missing.size > 1 else ""
        raise NotFoundError(f"{raw.where(first)}: {engine.users.unknown_text(raw_id)}{more}; update-users re-solves "
                            "the users a run was trained on: a new user's list comes from its ratings per request "
                            "(«recommend --liked/--rated ... without --user|recommend_new(liked=...) without user=»), "
                            "or train again with them (remove their rows from the file to update the others)",
                            kind="user", id=raw_id)
    users = urows[codes]
    codes, uniques = pd.factorize(df["movie_id"], sort=False)
    mrows, _ = engine.movies.rows(list(uniques))
    movies = mrows[codes]
    unknown = np.flatnonzero(movies < 0)
    if unknown.size:
        ids = list(dict.fromkeys(uniques[int(codes[i])] for i in unknown))
        first = int(unknown[0])
        if strict:
            more = f" (and {unknown.size - 1:,} more of the file's ratings of movies it does not know)" \
                if unknown.size > 1 else ""
            raise NotFoundError(f"{raw.where(first)}: {engine.movies.unknown_text(ids[0])}{more}; leave "
                                "«--strict|strict=True» out to leave such ratings out with a warning",
                                kind="movie", id=ids[0])
        shown = ", ".join(f"'{shorten(str(i), 40)}'" for i in ids[:NAMED]) + (
            f" and {len(ids) - NAMED:,} more" if len(ids) > NAMED else "")
        are = "is" if len(ids) == 1 else "are"
        if unknown.size == len(df):  # nothing left: an error the user wants to see, not 'nothing to update'
            every = "its one rating is" if len(df) == 1 else f"every one of its {len(df):,} ratings is"
            raise NotFoundError(f"{raw.origin[0]}: {every} of a movie the model does not know ({shown} {are} not in "
                                f"the training data; the first at {raw.where(first, cheap=True)}), so nothing is "
                                "updated; give ratings of the movies the run was trained on, by the ids of its "
                                "dataset", kind="movie", id=ids[0])
        log.warning("left %s of the %s ratings in %s out: %s %s not in the training data (the first at %s); "
                    "«--strict|strict=True» refuses them instead", f"{unknown.size:,}", f"{len(df):,}",
                    raw.origin[0], shown, are, raw.where(first, cheap=True))
    keep = movies >= 0
    frame = pd.DataFrame({"user_id": users[keep], "movie_id": movies[keep], "rating": df["rating"].to_numpy()[keep]})
    if "timestamp" in df:
        frame["timestamp"] = df["timestamp"].to_numpy()[keep]
    if "count_weight" in engine.training_ratings:  # a counts model: a pair's rows are events, summed as ingest does
        frame, repeated, became = sum_repeats(frame, first_time=False)
        if repeated:
            log.info("%s: %s of %s summed into their counts, as ingest sums them", raw.origin[0],
                     _n(repeated, "row"), _n(became, "pair"))
    else:
        mask, exact, dropped = dedupe_mask(frame)
        if exact or dropped:
            log.info("%s: %s%s given again: the latest rating of each pair kept, as ingest keeps it", raw.origin[0],
                     _n(exact, "exact duplicate") if exact else "",
                     (" and " if exact else "") + _n(dropped, "pair") if dropped else "")
        frame = frame[mask]
    return Pairs(frame["user_id"].to_numpy(np.int64), frame["movie_id"].to_numpy(np.int64),
                 frame["rating"].to_numpy(np.float64))


def _check_values(raw: RawData, r: np.ndarray, engine: Recommender) -> None:
    """Every rating finite and one the model takes (serve.foldin.bad_ratings, a request's rule too): within its
    rating scale, or on a counts model (data.repeats=sum) a count above 0; else the first is refused by its line."""
    from embedrec.serve.foldin import bad_ratings

    counts = "count_weight" in engine.training_ratings
    scale = engine.scale
    bad = bad_ratings(r, scale, counts)
    if not bad.any():
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
    raise DataError(f"{raw.where(i)}: rating {shown} {why}{more}; fix or remove that line")


@dataclasses.dataclass
class Plan:
    """What the update changes: per user with a new pair (rows sorted), its new seen movies and their solve
    weights, and its re-solved vector and divisor where a new pair enters its solve."""

    users: np.ndarray                      # the user rows with a new pair
    new_movies: list[np.ndarray]           # per such user, its new movie rows, sorted
    new_weights: list[np.ndarray]          # their weights in the solve (0: seen, not solved on)
    vectors: dict[int, np.ndarray]         # user row -> its re-solved vector
    divisors: dict[int, float]             # user row -> its divisor (run.USER_SCALE)
    users_named: int = 0
    already: int = 0

    @property
    def users_solved(self) -> int:
        return len(self.vectors)

    @property
    def pairs_added(self) -> int:
        return int(sum(m.size for m in self.new_movies))

    @property
    def pairs_solved(self) -> int:
        return int(sum(int((w > 0).sum()) for w in self.new_weights))


def _plan(engine: Recommender, pairs: Pairs) -> Plan:
    """Each user's re-solve (serve.update.als_resolve) over its trained pairs and its new ones: a movie it rated
    before (in training or an earlier update) keeps the weight it has; a rating below data.min_rating, or of a
    movie without training ratings, is seen but left out of the solve (weight 0), as training left such ratings
    out; the rest weigh as training weighs a rating at the latest place (serve.update.latest_weights). A user with
    nothing new in its solve keeps its vector bit for bit."""
    from embedrec.serve.update import als_resolve, latest_weights, new_solve_pairs

    order = np.lexsort((pairs.movies, pairs.users))
    users, movies, values = pairs.users[order], pairs.movies[order], pairs.values[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if users.size else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], users.size]
    plan = Plan(np.zeros(0, np.int64), [], [], {}, {}, users_named=int(starts.size))
    changed = []
    for a, b in zip(starts, ends):
        row = int(users[a])
        seen = engine.seen(row).astype(np.int64)
        m, v = movies[a:b], values[a:b]
        new, solved = new_solve_pairs(engine, row, m, v, seen)
        plan.already += int((~new).sum())
        m, v, solved = m[new], v[new], solved[new]
        if not m.size:
            continue
        w = np.zeros(m.size, np.float64)
        if solved.any():
            got = latest_weights(engine, dict(zip(m[solved].tolist(), v[solved].tolist())))
            # as recorded (float32, run.SOLVE_WEIGHTS), so that a later re-solve or explanation over the recorded
            # weights is this solve's
            w[solved] = np.array([got[x] for x in m[solved].tolist()], np.float32)
            detail: dict = {}
            p = als_resolve(engine, row, m[solved], w[solved], seen, detail)
            if not np.isfinite(p).all():  # never a vector that scores NaN (as recommend's fold-in refuses one)
                raise ArtifactError(f"user {engine.users.raw(row)}'s re-solved vector is not finite: this run's "
                                    "embeddings hold values too large for the solve; «run 'embedrec verify', then "
                                    "train again|train again»")
            plan.vectors[row], plan.divisors[row] = p, float(detail["divisor"])
        changed.append(row)
        plan.new_movies.append(m)
        plan.new_weights.append(w)
    plan.users = np.array(changed, np.int64)
    return plan


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


def _write(tmp: Path, run: Run, engine: Recommender, plan: Plan, record: dict) -> None:
    """The new model folder: the changed arrays written, every other listed file carried over checked, the
    manifest with the arrays' new hashes and the ``updates`` record (run.publish seals it)."""
    from embedrec.artifacts import carry_over
    from embedrec.fsutil.files import write_json
    from embedrec.run import SOLVE_WEIGHTS, UPDATES, USER_SCALE, sha256_array

    weights, scale = engine.solve_arrays()
    P = np.array(run.array("user_factors"))  # a copy: the users not re-solved keep their bytes
    for row, p in plan.vectors.items():
        P[row] = p
    ptr, idx, w = merged_seen(run.array("seen_indptr"), run.array("seen_indices"), np.asarray(weights), plan.users,
                              plan.new_movies, plan.new_weights)
    arrays = {"user_factors": P, "seen_indptr": ptr, "seen_indices": idx, SOLVE_WEIGHTS: w}
    if scale is not None:
        scale = np.array(scale)
        for row, s in plan.divisors.items():
            scale[row] = s
        arrays[USER_SCALE] = scale
    # state_dict.pt (an als run trained on a GPU, torch's engine) holds the users' trained vectors, which no
    # reader serves from (export --to torch builds its module from the arrays): left out, not kept stale
    carry_over(run, tmp, "its users cannot be updated", written={f"{k}.npy" for k in arrays},
               left_out=("state_dict.pt",))
    files = dict(run.manifest.get("files") or {})
    for name, a in arrays.items():
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)
        files[f"{name}.npy"] = sha256_array(a)
    history = run.manifest.get(UPDATES)
    manifest = {k: v for k, v in run.manifest.items() if k not in ("checksums", "model_folder")}
    write_json(tmp / "manifest.json", {**manifest, "files": files,
                                       UPDATES: [*(history if isinstance(history, list) else []), record]})
