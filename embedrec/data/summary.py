"""What an ingest says of the dataset it made: the summary the manifest records (:func:`summarise`: counts,
scale, histogram, split, the cleaning's report), the warnings of a valid or test split left empty or shrunk by
the rows dropped (:func:`warn_empty_splits`, :func:`warn_shrunk_splits`), and the lines ``embedrec ingest``
writes of it (:func:`format_summary`, which ``embedrec.ingestion`` re-exports for the CLI)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedrec.data.frames import cached_frame
from embedrec.data.layout import SPLITS
from embedrec.data.sources import NAMED
from embedrec.data.textfiles import is_stream, uncompressed_name

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig, SplitConfig

log = logging.getLogger("embedrec")


def _abs_source(source) -> str | None:
    """``source`` as an absolute path where it names a local file or folder; None for a release name or stdin."""
    if not isinstance(source, str) or source == "-" or not os.path.exists(source):
        return None
    return os.path.abspath(source)


def summarise(cfg: DataConfig, split_cfg: SplitConfig, raw, movies, frames, users, mtab, scale, report, cold) -> dict:
    n_users, n_movies, n_ratings = len(users), len(mtab), sum(len(f) for f in frames.values())
    hist = pd.concat([f["rating"].value_counts() for f in frames.values()]).groupby(level=0).sum().sort_index()
    return {
        "name": _name(cfg.source),
        "source": cfg.source,
        # the source as a path from anywhere (a damaged dataset's advice names it: data.dataset.dataset_fix)
        "source_path": _abs_source(cfg.source),
        # and the movies file's (data.movies as given may be relative to the folder ingest ran in): the commands that
        # ingest the dataset again name it (api.ingested_with; a first-hour review: they dropped it)
        **({"movies_path": _abs_source(cfg.movies)} if cfg.movies and not is_stream(cfg.movies) and
           _abs_source(cfg.movies) else {}),
        "layout": raw.layout,
        "counts": {"users": int(n_users), "movies": int(n_movies), "ratings": int(n_ratings)},
        # fewer than counts.movies where data.keep_unrated_movies keeps the movies file's whole catalogue
        "movies_with_training_ratings": int(np.count_nonzero(mtab["n_ratings"].to_numpy())),
        "density": float(n_ratings / (n_users * n_movies)),
        "rating_scale": list(scale),
        "min_rating": cfg.min_rating,
        # data.repeats=sum: each rating a sum of a pair's rows (a count), which train.als_count_weight weighs
        **({"repeats": "sum"} if cfg.repeats == "sum" else {}),
        # data.event_weights: the rating column's event types as these weights (a pair's summed, under sum)
        **({"event_weights": dict(cfg.event_weights)} if getattr(raw, "weighted", False) else {}),
        # the columns read under another name than data.columns gives ('score' for 'rating'): train's check of the
        # config's ingest settings takes them as the same
        **({"columns_read": dict(raw.columns_read)} if getattr(raw, "columns_read", None) else {}),
        # the unit the Unix times were read in (data.timestamp_unit, auto's as resolved): update-users reads a
        # file of new ratings in it (a red team: each file's own guess read 900000000 as microseconds)
        **({"timestamp_unit_read": raw.timestamp_unit} if getattr(raw, "timestamp_unit", None) else {}),
        "rating_histogram": {f"{v:g}": int(c) for v, c in zip(hist.index.to_numpy(), hist.to_numpy())},
        "split": {"method": split_cfg.method,
                  **({"folds": split_cfg.folds, "fold": split_cfg.fold} if split_cfg.folds is not None else {}),
                  **{k: len(v) for k, v in frames.items()}},
        "cleaning": report,
        "has_timestamps": "timestamp" in frames["train"],
        "has_user_features": raw.users is not None,
        "has_movie_metadata": movies is not None,
        "cold_movies": [x.item() if hasattr(x, "item") else x for x in cold] if cold is not None else [],
    }


def warn_empty_splits(split_cfg: SplitConfig, counts: dict, dropped: int, kept: int = 0,
                      given: dict | None = None) -> None:
    """A valid or test split asked for but left empty (too few ratings a user, or their rows dropped for users
    or movies with no training rating) is said at ingest, not found later as a nan metric. ``kept``: users whose
    one held-out rating went back to train (keep_users_in_train). ``given``: a given split's rows read of each
    part (cleaning.given_rows), whose test was the held-out file's rows, not a share."""
    if given is not None:  # (a diff review: 'set split.test to 0', which split.method=given refuses)
        lost = [k for k in ("valid", "test") if given.get(k) and counts.get(k, 0) == 0]
        if lost:
            log.warning("the %s split%s empty: none of the held-out file's %s rows is left (a pair the training "
                        "rows hold too, or of a user or movie they do not have, is dropped: ids are matched as "
                        "written), so %s", " and ".join(lost), "s are" if len(lost) > 1 else " is",
                        " and ".join(f"{given[k]:,} {k}" for k in lost),
                        " and ".join(x for k, x in (("valid", "train cannot stop early"),
                                                    ("test", "evaluate has nothing to score")) if k in lost))
        return
    empty = [k for k in ("valid", "test") if (getattr(split_cfg, k, 0) or 0) > 0 and counts.get(k, 0) == 0]
    if empty:
        why = [f"{dropped:,} row{'' if dropped == 1 else 's'} of users or movies with no training rating "
               f"{'was' if dropped == 1 else 'were'} dropped"] if dropped else []
        if kept:
            whose = "user's" if kept == 1 else "users'"
            why.append(f"{kept:,} {whose} only held-out rating went back to train, so each user has one")
        why = f" ({'; '.join(why)})" if why else ""
        then = " and ".join(x for k, x in (("valid", "train cannot stop early"),
                                           ("test", "evaluate has nothing to score")) if k in empty)
        log.warning("the %s split%s empty%s, so %s; give each user several ratings, or set %s to 0",
                    " and ".join(empty), "s are" if len(empty) > 1 else " is", why, then,
                    " and ".join(f"split.{k}" for k in empty))


def warn_shrunk_splits(split_cfg: SplitConfig, counts: dict, dropped: int, users: int) -> None:
    """Valid and test rows dropped for users or movies with no training rating, a fifth or more of those the split
    drew (a global time cut's later users): said with the counts left, not found later in a small test split
    (a review: ML-100K's global_time kept 2,286 test rows of the 20,000 asked for, without a word)."""
    kept = counts.get("valid", 0) + counts.get("test", 0)
    if not dropped or dropped < 0.2 * (kept + dropped) or not kept:
        return  # (none left: warn_empty_splits says it)
    who = f"; {users:,} user{'s' if users != 1 else ''} had no train or valid rating, left out" if users else ""
    log.warning("the %s split dropped %s of its %s valid and test rows (users or movies with no train or valid rating%s), "
                "leaving valid %s and test %s: set split.cold_start=true to keep them (evaluated without a trained "
                "vector)%s", split_cfg.method, f"{dropped:,}", f"{kept + dropped:,}", who, f"{counts.get('valid', 0):,}",
                f"{counts.get('test', 0):,}", ", or split.method=user_time, which holds out each user's latest"
                if split_cfg.method == "global_time" else "")


TIES_WARN_SHARE = 0.1  # held-out ratings drawn from among equal times above this share of them: a warning


def say_ties(split_cfg: SplitConfig, ties: dict | None) -> None:
    """The line of a time split whose cuts fell among ratings of equal time, their order drawn at random from
    split.seed (``ties``: the report's split_ties, from :func:`~embedrec.data.split.user_time_split` or
    :func:`~embedrec.data.split.global_time_split`): a note where the ratings so drawn are at most a tenth of the
    held-out ones (ML-100K's seconds under user_time: 2,036 of 29,988), a warning above it (a review's dates
    without a time of day: 930 of 943 users' cuts, most held-out ratings drawn), the split then being by time for
    the rest alone."""
    if not ties or not ties.get("held_out"):
        return
    drawn, held = ties["held_out"], ties.get("of_held_out", 0)
    per_user = "users" in ties
    shares = [(name, f"{split_cfg.last_k}" if split_cfg.last_k else f"{share * 100:g}%")
              for name, share in (("test", split_cfg.test), ("valid", split_cfg.valid)) if share > 0]
    latest = "last" if split_cfg.last_k else "latest"
    parts = ", ".join(f"{name} {'their' if per_user else 'the'} {latest} {size}" if not i else
                      f"{name} the {size} before" for i, (name, size) in enumerate(shares))
    if per_user:
        who = f"{ties['users']:,} of {ties.get('of_users', 0):,} users' time cuts ({parts}) fall"
    elif len(shares) == 1:
        who = f"the global_time cut ({parts}) falls"
    else:
        who = (f"both global_time cuts ({parts}) fall" if ties.get("cuts") == 2 else
               f"one of the global_time cuts ({parts}) falls")
    many = held and drawn > TIES_WARN_SHARE * held
    (log.warning if many else log.info)(
        "%s among ratings of equal time%s: those ties were broken at random (split.seed), which chose %s of the %s "
        "held-out ratings%s", who, " (dates without a time of day?)" if ties.get("days") else "", f"{drawn:,}",
        f"{held:,}", ", so the split is by time for the rest alone" if many else "")


def _name(source: str) -> str:
    from embedrec.config_keys import dataset_name

    if dataset_name(source) == "stdin":  # '-', /dev/stdin, a pipe's /dev/fd/63 (not '63')
        return "stdin"
    return source if source in NAMED else Path(uncompressed_name(source)).stem


def format_summary(s: dict) -> str:
    """``embedrec ingest``'s lines of a dataset's summary ``s`` (what :func:`summarise` made, or a manifest, which
    holds it: ``Dataset.summary``); its last line, where it was written and in how long, only where ``s`` says."""
    c = s["counts"]
    seen = (s.get("cleaning") or {}).get("after_cleaning") or {}
    trained = s.get("movies_with_training_ratings", c["movies"])
    rated = seen.get("movies", c["movies"])
    def n(count: int, what: str) -> str:  # '1 user', '2 users'
        return f"{count:,} {what}{'' if count == 1 else 's'}"

    if trained == c["movies"]:
        movies = f"{n(c['movies'], 'movie')} with training ratings" + (f" ({rated:,} in the data)" if rated != trained
                                                                        else "")
    else:  # data.keep_unrated_movies: the catalogue holds movies no training rating names
        movies = f"{n(c['movies'], 'movie')} ({trained:,} with training ratings, {rated:,} rated in the data)"
    counted = s.get("repeats") == "sum"  # a click or play log: pairs and their counts (a first-hour pass: 'ratings')
    rows, values = ("pair", "counts") if counted else ("rating", "rating values")
    if s.get("event_weights"):  # a column of event types weighed: the values are weights, or their sums
        values = "summed weights" if counted else "event weights"
    # a DataFrame given to er.ingest is read from its cache file, a Parquet one: said as what the caller gave (a
    # first-hour review read 'layout parquet' of a frame, its read line saying 'a pandas DataFrame')
    layout = "from a pandas DataFrame" if cached_frame(str(s.get("source") or "")) else f"layout {s['layout']}"
    lines = [f"{s['name']}: {n(c['users'], 'user')} x {movies}, "
             f"{n(c['ratings'], rows)} (density {s['density']:.4%}), {layout}",
             # (not 'ratings:', which read as a dataset of that name's line: ratings.csv's, a first-hour review)
             f"{values}: " + "  ".join(f"{k}:{v:,}" for k, v in s["rating_histogram"].items())
             if len(s["rating_histogram"]) <= 12 else f"{values}: {_spread(s['rating_histogram'])}",
             f"split ({_split_named(s['split'])}): " + ", ".join(f"{k} {s['split'][k]:,}" for k in SPLITS),
             "cleaning: " + ", ".join(_cleaning_item(k, v, s["cleaning"], s.get("min_rating"), counted,
                                                     s.get("has_timestamps", True))
                                      for k, v in s["cleaning"].items()
                                      if isinstance(v, int) and k not in ("repeated_pairs_summed", "training_pairs_cut",
                                                                          "exact_duplicates_summed",
                                                                          "below_min_rating_kept_as_seen",
                                                                          *(f"{w}_kept_as_seen" for w in DROPPED_ROWS))),
             *([f"wrote {s['output']} in {s['seconds']:.1f}s"] if "output" in s else [])]
    return "\n".join(lines)


def _spread(hist: dict) -> str:
    """'350 distinct, from 1 to 5,000 (median 3)': a histogram of more values than the summary lists ({'4.5': count}),
    by its lowest, middle and highest value (a first-hour review: a play log's counts were '350 distinct' alone)."""
    pairs = sorted((float(k), int(c)) for k, c in hist.items())
    total, half, seen, median = sum(c for _, c in pairs), 0, 0, pairs[0][0]
    half = (total + 1) // 2
    for v, c in pairs:
        seen += c
        if seen >= half:
            median = v
            break

    def said(v: float) -> str:
        return f"{v:,.0f}" if v == int(v) and abs(v) < 1e15 else f"{v:g}"

    return f"{len(pairs):,} distinct, from {said(pairs[0][0])} to {said(pairs[-1][0])} (median {said(median)})"


def _split_named(split: dict) -> str:
    """'random', or a K-fold split's 'random, test fold 3 of 5 (split.fold=2)': counted from 1, the key's value
    from 0 (a first-hour review read cross-validate's 'fold 0 of 0-4')."""
    if not isinstance(split.get("folds"), int):
        return str(split["method"])
    fold = split.get("fold")
    return (f"{split['method']}, test fold {fold + 1} of {split['folds']} (split.fold={fold})" if isinstance(fold, int)
            else f"{split['method']}, test fold {fold} of {split['folds']}")


# the rows the reading drops that may name a user and a movie (their pairs kept as seen: ingestion._kept_as_seen),
# by the cleaning counts' prefix, as the summary says them
DROPPED_ROWS = {"missing_values": "with a missing value", "out_of_scale": "with a rating outside the scale"}


def _cleaning_item(key: str, value: int, cleaning: dict, floor=None, counted: bool = False,
                   timed: bool = True) -> str:
    """'repeated pairs dropped 3'; the rows the same in the columns read (``timed``: a time column was read) as
    'repeated rows (same user, movie, rating and time as read) dropped 188' (the manifest's
    exact_duplicates_dropped); data.repeats=sum's two counts as one: 'repeats summed 5 rows into 2 pairs', and
    a time split's of them: '2 training pairs counted up to the cut (3 later events dropped)'; data.min_rating's
    two as one, saying what each counts (a review: 'below min rating dropped 28,707 ... below min rating kept as
    seen 28,104'): '28,707 ratings below data.min_rating 1 dropped from training (28,104 of them kept as seen, never
    recommended back; the other 603 are of users left out or of movies not in the dataset)'."""
    if key == "given_valid_drawn":  # split.method=given without validation rows
        how = "each user's latest" if cleaning.get("given_valid_by") == "user_time" else "at random"
        return f"{value:,} of the training rows drawn as valid, {how} (split.valid: no validation rows given)"
    if key == "below_min_rating_dropped":
        below = f"below data.min_rating {floor:g}" if isinstance(floor, (int, float)) else "below data.min_rating"
        text = f"{value:,} {'pair' if counted else 'rating'}{'' if value == 1 else 's'} {below} dropped from training"
        if "below_min_rating_kept_as_seen" not in cleaning:
            return text
        kept, cut = cleaning["below_min_rating_kept_as_seen"], cleaning.get("cut_pairs_below_min_rating", 0)
        # (a time split's summed pair counted below it at its cut is kept as seen too: cut_pairs_below_min_rating)
        rest = value + cut - kept
        other = f"; the other {rest:,} are of users left out or of movies not in the dataset" if rest > 0 else ""
        return f"{text} ({kept:,} {'of them' if not cut else 'with the cut pairs below it'} kept as seen, never " \
               f"recommended back{other})"
    if key in (f"{w}_dropped" for w in DROPPED_ROWS):  # data.missing=drop's, data.out_of_scale=drop's
        why = key[:-len("_dropped")]
        text = f"{value:,} row{'' if value == 1 else 's'} {DROPPED_ROWS[why]} dropped"
        kept = cleaning.get(f"{why}_kept_as_seen")
        if not value or kept is None:
            return text
        n = value - kept
        # (a row off the scale has its rating, so it names a user and a movie: only a row missing a value may not)
        lacks = ("lacks a user or a movie, " if n == 1 else "lack a user or a movie, ") if why == "missing_values" \
            else ""
        rest = "" if n <= 0 else (f"; the other {n:,} {lacks}" + (
            "repeats a pair already there, or is of a user left out or of a movie not in the dataset" if n == 1 else
            "repeat a pair already there, or are of users left out or of movies not in the dataset"))
        return f"{text} ({kept:,} (user, movie) pair{' kept' if kept == 1 else 's kept'} as seen, never recommended " \
               f"back, not trained on{rest})"
    if key == "bad_lines_skipped":  # data.bad_lines=skip's (the lines: the reading's note)
        return f"{value:,} line{'' if value == 1 else 's'} with too many fields skipped"
    if key == "bad_values_skipped":  # ... and the lines whose values could not be read
        return f"{value:,} line{'' if value == 1 else 's'} with a value that cannot be read skipped"
    if key == "missing_times_kept":  # data.missing=drop's rows whose time alone was empty, under a random split
        kept = "kept in their parts" if "given_rows" in cleaning else "kept and trained on"  # (a given split's: some
        return (f"{value:,} row{'' if value == 1 else 's'} without a time {kept} (at "  # may be held-out rows)
                f"{'its user' + chr(39) + 's' if value == 1 else 'their users' + chr(39)} middle time"
                f"{'' if value == 1 else 's'})")
    if key == "missing_times_dropped":  # ... under a time split: among the rows dropped for a missing value
        return (f"{value:,} of them without a time alone (the split holds ratings out by their time)")
    if key == "repeated_rows_summed":
        pairs = cleaning.get("repeated_pairs_summed", 0)
        text = f"repeats summed {value:,} rows into {pairs:,} pair{'' if pairs == 1 else 's'}"
        same = cleaning.get("exact_duplicates_summed", 0)
        if not same:
            return text
        from embedrec.data.repeats import same_as_read

        # (a first-hour review: a log's tracking double-fires were summed as events without a word)
        return (f"{text} ({same:,} of them repeated rows {same_as_read(True)}, summed as events; "
                "data.duplicates=drop drops them first)")
    if key == "training_events_after_cut_dropped":
        pairs = cleaning.get("training_pairs_cut", 0)
        return (f"{pairs:,} training pair{'' if pairs == 1 else 's'} counted up to the cut ({value:,} later "
                f"event{'' if value == 1 else 's'} dropped)")
    if key == "exact_duplicates_dropped":
        from embedrec.data.repeats import same_as_read

        return f"repeated rows {same_as_read(timed)} dropped {value:,}"
    return f"{key.replace('_', ' ')} {value:,}"
