"""Ingest's split of the cleaned ratings, over the rules of ``data/split.py``: :func:`assign_splits` gives each row
its part (0 train, 1 valid, 2 test), holds out the cold movies, counts a time split's summed training pairs up to
their cut (``data/repeats.py``), and gives back or drops the held-out rows of users or movies training does not
know; and the pairs the cleaning keeps apart as rated (below data.min_rating, a movie the k-core filter dropped):
their rows in the dataset's indices (:func:`rated_below`, :func:`rated_below_unknown`) and their parts, split as
the kept ratings are (:func:`split_below`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedrec.data.given import PART, given_assign
from embedrec.data.repeats import EVENTS, FIRST_TIME, PairEvents, cut_training_pairs, pair_cuts
from embedrec.data.split import (
    TEST,
    TIME_METHODS,
    TRAIN,
    VALID,
    below_split,
    drop_unknown,
    held_out_cuts,
    keep_users_in_train,
    make_split,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import SplitConfig


def assign_splits(ratings: pd.DataFrame, split_cfg: SplitConfig, report: dict, left: list | None = None,
                  events: list | None = None, min_rating: float | None = None, below: list | None = None,
                  below_cuts: list | None = None):
    """(the ratings kept, their split codes, the held-out cold movies or None). ``left`` (a list) receives the ids
    of the users left with no row at all (cleaning.users_left_out counts them). A time split places a summed pair
    by its first event (FIRST_TIME: when the user chose the movie), and ``events`` (a list holding the pairs'
    :class:`PairEvents`, emptied here) has each training pair counted up to its cut (:func:`_count_up_to_cuts`;
    ``min_rating`` and ``below`` as :func:`~embedrec.ingestion.clean` takes them). Without split.cold_start, test
    rows of users or movies that neither train nor valid knows are dropped; valid rows stay (the refit on
    train+valid learns them: an independent check found ML-100K's latest-20% global cut dropping 8,267 valid rows
    of 77 users, whom the refit then never learnt and recommend answered as unknown, and a review ML-100K's random
    split with split.test=0 dropping the 13 movies first rated in valid, never served). ``below_cuts`` (a list)
    receives a time split's :class:`~embedrec.data.split.Cuts` (:func:`_time_cuts`). Where a time split's cuts fell
    among ratings of equal time (drawn at random from split.seed), ``report["split_ties"]`` says how many."""
    users_arr = ratings["user_id"].to_numpy()
    movies_arr = ratings["movie_id"].to_numpy()
    ts = ratings["timestamp"].to_numpy() if "timestamp" in ratings else None
    if FIRST_TIME in ratings:
        ts = ratings[FIRST_TIME].to_numpy()
        del ratings[FIRST_TIME]  # (never written)
    ties: dict = {}
    assign = given_assign(ratings, split_cfg, report, below[0] if below else None) \
        if split_cfg.method == "given" else make_split(split_cfg, users_arr, ts, movies_arr, ties)
    if ties.get("held_out"):  # a time split's cuts among ratings of equal time, drawn at random (summary.say_ties)
        report["split_ties"] = ties
    cuts = pair_cuts(users_arr, ts, assign, split_cfg.method) if events and split_cfg.method in TIME_METHODS \
        else None
    if below_cuts is not None:  # the kept ratings' cuts, which the pairs set apart as rated are split by
        below_cuts.append(_time_cuts(split_cfg, assign, users_arr, ts))
    cold = is_cold = None
    if split_cfg.cold_movies > 0:
        rng = np.random.default_rng(split_cfg.seed + 1)
        distinct = np.sort(pd.unique(movies_arr))
        cold = rng.choice(distinct, size=max(1, int(round(distinct.size * split_cfg.cold_movies))), replace=False)
        is_cold = pd.Series(movies_arr).isin(cold).to_numpy()
        assign[is_cold] = TEST  # every rating of a held-out movie is test
        report["cold_movies_held_out"] = int(cold.size)
    below_after = 0
    if cuts is not None:  # (a held-out cold movie's pairs too keep every event)
        below_after = _count_up_to_cuts(ratings, assign, events.pop(), cuts, report, min_rating, below)
        del cuts
    if EVENTS in ratings:
        del ratings[EVENTS]  # (never written)
    dropped = 0
    if not split_cfg.cold_start:
        if split_cfg.folds is not None:  # a K-fold split: a user's row given back is a valid one where it has
            # one, so the test folds keep every rating but those of users with no other (a user of one rating)
            assign, given = keep_users_in_train(assign, users_arr, assign == TEST)
            assign, more = keep_users_in_train(assign, users_arr)
            given += more
            if given:
                report["users_given_a_train_row"] = given
        elif split_cfg.method == "random":  # (a time split keeps one per user already, or cuts time on purpose)
            assign, given = keep_users_in_train(assign, users_arr, is_cold)
            if given:
                report["users_given_a_train_row"] = given
        assign, dropped = drop_unknown(assign, users_arr, movies_arr, keep_movies=cold, with_valid=True)
        report["eval_rows_dropped_unknown"] = dropped
    if (dropped or below_after) and left is not None:  # users whose every row was dropped (a global cut's later
        # users: a review found 192 such users of ML-100K's global_time split missing from users_left_out)
        # (pandas' hash-based difference: numpy's setdiff1d of text ids compares each with each, 47 s of a review's
        # 30,000 users 'u000001' where integer ids took 3 s)
        out = pd.Index(pd.unique(users_arr)).difference(pd.unique(users_arr[assign >= 0]), sort=False).to_numpy()
        if out.size:
            left.append(out)
    keep = assign >= 0
    if keep.all():  # no copy of every row when nothing is dropped
        return ratings, assign, cold
    return ratings[keep], assign[keep], cold


def _count_up_to_cuts(ratings: pd.DataFrame, assign: np.ndarray, events: PairEvents, cuts: np.ndarray,
                      report: dict, min_rating: float | None, below: list | None) -> int:
    """Each training pair with events after its cut counted up to it (:func:`cut_training_pairs`): its rating the
    sum of its events up to the cut and its timestamp the latest of them, in ``ratings``; the later events are
    dropped (they re-chose a movie the training split shows the user chose already), counted in ``report``. A pair
    so left below ``min_rating`` is dropped from training (``assign`` -1) and kept as rated (``below``): at the cut
    it was not yet the positive the threshold asks for. Returns how many such pairs."""
    rows, sums, latest, n_events = cut_training_pairs(ratings, assign, events, cuts)
    report["training_pairs_cut"] = int(rows.size)
    report["training_events_after_cut_dropped"] = n_events
    if not rows.size:
        return 0
    r = ratings["rating"].to_numpy().copy()
    r[rows] = sums.astype(r.dtype)
    ratings["rating"] = r
    t = ratings["timestamp"].to_numpy().copy()
    t[rows] = latest
    ratings["timestamp"] = t
    if min_rating is None:
        return 0
    low = rows[r[rows] < min_rating]
    report["cut_pairs_below_min_rating"] = int(low.size)
    if low.size:
        assign[low] = -1
        pairs = ratings[pair_columns(ratings)].iloc[low].reset_index(drop=True)  # its time up to the cut: a
        # training pair set apart is in the train part (split_below)
        if below:
            below[0] = pd.concat([below[0], pairs], ignore_index=True)
        elif below is not None:
            below.append(pairs)
    return int(low.size)


def rated_below(pairs: pd.DataFrame, uids: np.ndarray, mids: np.ndarray) -> pd.DataFrame:
    """The (user_idx, movie_idx) of the pairs data.min_rating (or the k-core filter) dropped whose user and movie
    are in the dataset: movies the user rated, though not learnt from, which recommend never offers them."""
    u = np.searchsorted(uids, pairs["user_id"].to_numpy())
    m = np.searchsorted(mids, pairs["movie_id"].to_numpy())
    ok = (u < uids.size) & (m < mids.size)
    ok[ok] = (uids[u[ok]] == pairs["user_id"].to_numpy()[ok]) & (mids[m[ok]] == pairs["movie_id"].to_numpy()[ok])
    out = pd.DataFrame({"user_idx": u[ok].astype(np.int32), "movie_idx": m[ok].astype(np.int32)})
    if "timestamp" in pairs:  # for a time split's parts (split_below), which then drops it
        out["timestamp"] = pairs["timestamp"].to_numpy()[ok]
    if PART in pairs:  # a given split's (split_below)
        out[PART] = pairs[PART].to_numpy()[ok]
    return out


def pair_columns(ratings: pd.DataFrame) -> list[str]:
    """The columns a pair the cleaning keeps apart is kept with: its user and movie, and its time where the
    ratings have times (a time split puts it in a part by it: :func:`split_below`)."""
    return ["user_id", "movie_id", *(["timestamp"] if "timestamp" in ratings else []),
            *([PART] if PART in ratings else [])]  # (a given split's: its part)


def _time_cuts(split_cfg: SplitConfig, assign: np.ndarray, users: np.ndarray, ts: np.ndarray | None):
    """A time split's :class:`~embedrec.data.split.Cuts` (per user for user_time, one for global_time) of the split
    codes ``assign`` as made (before the cold movies, the rows given back or dropped), which the pairs kept apart
    are split by; None for a random or K-fold split."""
    if ts is None or split_cfg.folds is not None or split_cfg.method not in TIME_METHODS:
        return None
    return held_out_cuts(assign, ts, users if split_cfg.method == "user_time" else None)


def split_below(below: pd.DataFrame, split_cfg: SplitConfig, cuts, cold: np.ndarray | None, uids: np.ndarray,
                mids: np.ndarray, report: dict) -> pd.DataFrame:
    """The rated_below table (user_idx, movie_idx[, timestamp]) with each pair's part, ``split`` (int8: 0 train, 1
    valid, 2 test; split.below_split), in place of its time: evaluation on a split leaves out only the pairs of the
    parts before it, as it leaves out only the ratings of those parts, where serving leaves out every one. A pair
    on a held-out cold movie (split.cold_movies) is test, as that movie's ratings are. Counted in
    ``report["rated_below_split"]``."""
    users = uids[below["user_idx"].to_numpy()]
    ts = below["timestamp"].to_numpy(np.int64) if "timestamp" in below else None
    if split_cfg.method == "given":  # each pair's file's part; a pair kept as seen for another reason, in train
        parts = below[PART].fillna(TRAIN).to_numpy(np.int8) if PART in below else np.full(len(below), TRAIN, np.int8)
    else:
        parts = below_split(split_cfg, users, ts, cuts)
    if cold is not None:
        parts[pd.Series(mids[below["movie_idx"].to_numpy()]).isin(cold).to_numpy()] = TEST  # (hashed: np.isin
        # compares text ids each with each)
    report["rated_below_split"] = {name: int(np.count_nonzero(parts == code))
                                   for name, code in (("train", TRAIN), ("valid", VALID), ("test", TEST))}
    return pd.DataFrame({"user_idx": below["user_idx"].to_numpy(), "movie_idx": below["movie_idx"].to_numpy(),
                         "split": parts})


def rated_below_unknown(pairs: pd.DataFrame, uids: np.ndarray, mids: np.ndarray) -> pd.DataFrame:
    """(user_id, movie_idx) of the pairs the cleaning dropped (data.min_rating, the k-core filter) whose user is
    not in the dataset (not in ``uids``) and whose movie is: what ``--fallback popular`` must not offer them."""
    u = pairs["user_id"].to_numpy()
    known = pd.Series(u).isin(uids).to_numpy()  # (hashed: np.isin compares text ids each with each)
    m = np.searchsorted(mids, pairs["movie_id"].to_numpy())
    ok = ~known & (m < mids.size)
    ok[ok] = mids[m[ok]] == pairs["movie_id"].to_numpy()[ok]
    return pd.DataFrame({"user_id": pairs["user_id"].to_numpy()[ok], "movie_idx": m[ok].astype(np.int32)})
