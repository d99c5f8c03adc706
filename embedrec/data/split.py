"""Seeded, deterministic train/valid/test splits. Each returns an int8 array: 0 train, 1 valid, 2 test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import DataError

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import SplitConfig

TRAIN, VALID, TEST = 0, 1, 2
TIME_METHODS = ("user_time", "global_time")  # split.method's that hold ratings out by their time


def random_split(n: int, valid: float, test: float, seed: int) -> np.ndarray:
    """Random by rating: a seeded permutation; the first ``test`` share goes to test, the next to valid."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test, n_valid = int(round(n * test)), int(round(n * valid))
    out = np.zeros(n, dtype=np.int8)
    out[perm[:n_test]] = TEST
    out[perm[n_test:n_test + n_valid]] = VALID
    return out


def user_folds(users: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each rating's fold, 0 to ``folds`` - 1, stratified by user: the users are taken in a seeded random order,
    each user's ratings in a seeded random order, and the ratings so lined up are dealt into the folds in turn. So
    each fold holds a share of every user's ratings: a user's folds differ in size by at most one rating (a user
    with fewer ratings than folds is in that many folds only, one rating each), and the folds' sizes by at most
    one. The same ``seed`` gives the same folds whatever fold is then held out."""
    import pandas as pd  # hash-based factorize: ids of any type, in linear time

    n = users.size
    rng = np.random.default_rng(seed)
    codes, uniques = pd.factorize(users)
    user_rank = rng.permutation(len(uniques))[codes]  # each user's place in the line-up
    perm = rng.permutation(n)  # the ratings' order within a user
    order = perm[np.argsort(user_rank[perm], kind="stable")]
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) % folds
    return out


def kfold_split(users: np.ndarray, folds: int, fold: int, valid: float, seed: int) -> np.ndarray:
    """K-fold by user (:func:`user_folds`): fold ``fold`` is test; valid is a seeded random ``valid`` share of all
    the ratings, drawn from the other folds (as :func:`random_split` draws it from all of them); the rest is train.
    Over ``fold`` = 0 .. ``folds`` - 1 the test splits are disjoint and hold every rating once."""
    n = users.size
    which = user_folds(users, folds, seed)
    out = np.zeros(n, dtype=np.int8)
    out[which == fold] = TEST
    rest = np.flatnonzero(which != fold)
    rng = np.random.default_rng([seed, fold])  # each fold's own draw, the same on every run
    n_valid = min(int(round(n * valid)), rest.size)
    out[rest[rng.permutation(rest.size)[:n_valid]]] = VALID
    return out


DAY = 86_400  # seconds: times that are all whole days (UTC midnights) are dates without a time of day


def _sortable(ids: np.ndarray) -> np.ndarray:
    """Ids as numbers in their order: text ids (an object array) as the codes of their sorted distinct values,
    which sort far faster than the strings (5M rows of one day: 22 s of CPU to lexsort them)."""
    if ids.dtype != object:
        return ids
    import pandas as pd

    return pd.factorize(ids, sort=True)[0]


def _break_ties(order: np.ndarray, same: np.ndarray, cuts: np.ndarray, canon: tuple, seed: int,
                ties: dict | None) -> np.ndarray:
    """``order`` (a stable sort of the rows by the split's keys: (user, time), or time) with each run of equal keys
    that holds one of ``cuts`` (sorted positions where a held-out part begins) put in a random order drawn from
    ``seed``, in place; returns which of ``cuts`` fell inside such a run. ``same``: whether each sorted position's
    keys equal the one's before it. A run's rows are first put in the order of ``canon`` (the rows' arrays that
    tell them apart: the movie, or the user and the movie), so that the draw, made over the runs in order, gives
    the same split whatever the order of the input's rows, where each (user, movie) is one row (as ingest leaves
    them); a stable sort alone left a user's same-day ratings to the file's order (a review: a file sorted by
    rating within each user's day put a test mean rating of 4.358 where another order gave 3.481). ``ties`` (a
    dict) receives ``held_out``: the held-out rows so chosen among equal keys, and ``days``: whether every time
    at such a cut is a whole day."""
    tied = same[cuts]
    if ties is not None:
        ties.update(held_out=0, days=False)
    if not tied.any():
        return tied
    at = cuts[tied]
    heads = np.flatnonzero(~same)  # where each run of equal keys begins
    k = np.searchsorted(heads, at, side="right") - 1
    run, which = np.unique(k, return_inverse=True)  # a run holding two cuts (valid and test) is drawn once
    starts = heads[run]
    ends = np.where(run + 1 < heads.size, heads[np.minimum(run + 1, heads.size - 1)], same.size)
    del heads
    sizes = ends - starts
    runs = np.repeat(np.arange(run.size, dtype=np.int32 if run.size < 2**31 else np.int64), sizes)
    pos = np.repeat(starts - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    pos += np.arange(pos.size)
    rows = order[pos]
    rows = rows[np.lexsort((*(_sortable(np.asarray(a)[rows]) for a in reversed(canon)), runs))]
    drawn = np.lexsort((np.random.default_rng(seed).permutation(rows.size), runs))
    del runs
    order[pos] = rows[drawn]
    del rows, drawn, pos
    if ties is not None:
        earliest = ends.copy()  # each run's first cut: its rows from there on are held out
        np.minimum.at(earliest, which, at)
        ties["held_out"] = int((ends - earliest).sum())
    return tied


def user_time_split(users: np.ndarray, timestamps: np.ndarray, valid: float, test: float,
                    last_k: int | None = None, movies: np.ndarray | None = None, seed: int = 42,
                    ties: dict | None = None) -> np.ndarray:
    """Per user by time: each user's latest ratings go to test, the ones just before to valid.

    With ``last_k`` the latest k go to test (and the k before to valid when valid > 0); otherwise the latest
    ``round(count * test)`` and ``round(count * valid)``. Every user keeps at least one training rating. Where a
    user's cut falls among ratings of equal time, which of them are held out is drawn at random from ``seed``
    (:func:`_break_ties`; ``movies``: each rating's movie, which makes the draw the same whatever the rows' order;
    without them it follows the input's order). ``ties`` (a dict) receives ``users``: how many users' valid or
    test cut fell among equal times, ``of_users``, ``held_out`` (the held-out ratings so drawn), ``of_held_out``
    and ``days`` (every such time a whole day).
    """
    n = users.size
    order = np.lexsort((timestamps, users))  # a stable sort: ties in time are drawn below (_break_ties)
    su = users[order]
    new_user = np.r_[True, su[1:] != su[:-1]]
    del su
    starts = np.flatnonzero(new_user)
    st = np.asarray(timestamps)[order]
    same = ~new_user
    same[1:] &= st[1:] == st[:-1]
    del new_user
    counts = np.diff(np.r_[starts, n])
    if last_k is not None:
        n_test = np.full(counts.size, last_k if test > 0 else 0)
        n_valid = np.full(counts.size, last_k if valid > 0 else 0)
    else:
        n_test = np.rint(counts * test).astype(np.int64)
        n_valid = np.rint(counts * valid).astype(np.int64)
    n_test = np.minimum(n_test, counts - 1)
    n_valid = np.minimum(n_valid, counts - 1 - n_test)
    ends = starts + counts
    has_t, has_v = n_test > 0, n_valid > 0
    cuts = np.r_[(ends - n_test)[has_t], (ends - n_test - n_valid)[has_v]]
    at_cuts = st[cuts]
    del st
    canon = (np.arange(n),) if movies is None else (movies,)
    tied = _break_ties(order, same, cuts, canon, seed, ties)
    del same
    if ties is not None:
        users_tied = np.zeros(counts.size, dtype=bool)
        users_tied[np.r_[np.flatnonzero(has_t), np.flatnonzero(has_v)][tied]] = True
        ties.update(users=int(users_tied.sum()), of_users=int(counts.size),
                    of_held_out=int(n_test.sum() + n_valid.sum()),
                    days=bool(tied.any()) and bool(np.all(at_cuts[tied] % DAY == 0)))
    # each user's run in time order: train, then valid from its start, then test; per user, not per row (a row's
    # int64 arrays took 80 bytes a rating at the peak of a 20M-event click log's ingest)
    step = np.zeros(n + 1, dtype=np.int8)
    np.add.at(step, ends - n_test - n_valid, 1)
    np.add.at(step, ends - n_test, 1)
    np.add.at(step, ends, -2)
    sorted_out = np.cumsum(step[:n], dtype=np.int8)
    del step
    out = np.empty(n, dtype=np.int8)
    out[order] = sorted_out
    return out


def global_time_split(timestamps: np.ndarray, valid: float, test: float, users: np.ndarray | None = None,
                      movies: np.ndarray | None = None, seed: int = 42, ties: dict | None = None) -> np.ndarray:
    """A global time cut: the latest ``test`` share of all ratings is test, the share before it valid. Where a cut
    falls among ratings of equal time, which of them are held out is drawn at random from ``seed``
    (:func:`_break_ties`; ``users`` and ``movies``: each rating's, which make the draw the same whatever the rows'
    order; without them it follows the input's order). ``ties`` (a dict) receives ``cuts`` (how many of the one or
    two cuts fell among equal times), ``held_out``, ``of_held_out`` and ``days``, as :func:`user_time_split`'s."""
    n = timestamps.size
    order = np.argsort(timestamps, kind="stable")
    n_test, n_valid = int(round(n * test)), int(round(n * valid))
    n_test = min(n_test, n)
    n_valid = min(n_valid, n - n_test)
    st = np.asarray(timestamps)[order]
    same = np.r_[False, st[1:] == st[:-1]]
    cuts = np.array([c for c, k in ((n - n_test, n_test), (n - n_test - n_valid, n_valid)) if k and c < n],
                    dtype=np.int64)
    at_cuts = st[cuts]
    del st
    canon = (np.arange(n),) if users is None or movies is None else (users, movies)
    tied = _break_ties(order, same, cuts, canon, seed, ties)
    if ties is not None:
        ties.update(cuts=int(tied.sum()), of_held_out=n_test + n_valid,
                    days=bool(tied.any()) and bool(np.all(at_cuts[tied] % DAY == 0)))
    out = np.zeros(n, dtype=np.int8)
    if n_test:
        out[order[n - n_test:]] = TEST
    if n_valid:
        out[order[n - n_test - n_valid:n - n_test]] = VALID
    return out


def check_folds_filled(users: np.ndarray, folds: int) -> None:
    """A DataError where ``folds`` is more than the median user's ratings: a user of n < K ratings is in n folds
    only (:func:`user_folds`), so more than half the users would be missing from most folds' test split, and the
    folds would no longer each hold a Kth of every user's ratings (a review: split.folds=100000 on ML-100K, whose
    median user has 65 ratings, was ingested to a test split of one rating)."""
    import pandas as pd

    codes = pd.factorize(users)[0]
    if codes.size == 0:
        return
    median = float(np.median(np.bincount(codes)))
    if folds <= median:
        return
    most = int(median)
    fix = (f"give at most {most} folds, or keep only" if most >= 2 else "this data has too few ratings a user to "
           "deal into folds; keep only")
    raise DataError(f"config key 'split.folds' ({folds}) is more folds than the median user has ratings ({median:g}, "
                    f"of {int(codes.max()) + 1:,} users): each user's ratings are dealt into the folds, so most users "
                    f"would be missing from most folds' test split; {fix} the users with {folds} ratings or more "
                    f"(data.min_user_ratings={folds})")


def make_split(cfg: SplitConfig, users: np.ndarray, timestamps: np.ndarray | None, movies: np.ndarray | None = None,
               ties: dict | None = None) -> np.ndarray:
    """Dispatch on ``cfg.method`` (a SplitConfig); with ``cfg.folds``, the K-fold split (random only: the config
    refuses the time methods with folds). A time split draws its ties in time from split.seed (``movies``: each
    rating's, for a draw that does not follow the rows' order; ``ties``, a dict, receives what was drawn:
    :func:`user_time_split`, :func:`global_time_split`)."""
    if cfg.folds is not None:
        check_folds_filled(users, cfg.folds)
        return kfold_split(users, cfg.folds, cfg.fold, cfg.valid, cfg.seed)
    if cfg.method == "random":
        return random_split(users.size, cfg.valid, cfg.test, cfg.seed)
    if timestamps is None:
        raise DataError(f"split.method={cfg.method} needs timestamps, and the input has none; "
                        "use «--set split.method=random» or map data.columns.timestamp")
    if cfg.method == "user_time":
        return user_time_split(users, timestamps, cfg.valid, cfg.test, cfg.last_k, movies, cfg.seed, ties)
    return global_time_split(timestamps, cfg.valid, cfg.test, users, movies, cfg.seed, ties)


def keep_users_in_train(assign: np.ndarray, users: np.ndarray,
                        held_out: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """A random split can put every rating of a light user in valid/test, after which the user would be dropped
    as unknown though it is in the data (and missing from the model after the refit too): such a user's first
    rating (in input order) goes back to train, never one of the ``held_out`` rows (split.cold_movies' movies).
    Returns the new codes and how many users got one."""
    import pandas as pd

    known = pd.Series(users).isin(pd.unique(users[assign == TRAIN])).to_numpy()
    rows = np.flatnonzero(~known if held_out is None else ~known & ~held_out)
    if rows.size == 0:
        return assign, 0
    first = rows[~pd.Series(users[rows]).duplicated().to_numpy()]
    out = assign.copy()
    out[first] = TRAIN
    return out, int(first.size)


def drop_unknown(assign: np.ndarray, users: np.ndarray, movies: np.ndarray,
                 keep_movies: np.ndarray | None = None, with_valid: bool = False) -> tuple[np.ndarray, int]:
    """Mark valid/test rows whose user or movie has no training rating as dropped (-1); returns the count.

    Movies in ``keep_movies`` (held out on purpose for a cold-start test) are not dropped for being unseen.
    ``with_valid``: valid rows count as training ones (a global time cut's: the refit on train+valid learns the
    users and movies first seen in the valid window, so their valid rows stay and so do their test rows)."""
    import pandas as pd  # hash-based unique/isin: numpy 2's np.unique is far slower on tens of millions

    train = (assign == TRAIN) | (assign == VALID) if with_valid else assign == TRAIN
    known_u = np.array(pd.Series(users).isin(pd.unique(users[train])), dtype=bool)
    known_m = np.array(pd.Series(movies).isin(pd.unique(movies[train])), dtype=bool)
    if keep_movies is not None:
        known_m |= pd.Series(movies).isin(keep_movies).to_numpy()
    drop = (~train) & ~(known_u & known_m)
    out = assign.copy()
    out[drop] = -1
    return out, int(drop.sum())


# The pairs ingest keeps apart as rated (Dataset.rated_below: below data.min_rating, or on a movie the k-core
# filter dropped) are split as the kept ratings are, by these, so that evaluation on a split leaves out only those
# rated in the parts before it (and serving every one). They are drawn on their own (their own seeds, derived from
# split.seed), so the kept ratings' split is the same, row for row, whether a file has such pairs or not.
NO_CUT = np.iinfo(np.int64).max  # a user's cut where it has no rating in that part: nothing falls at or after it
BELOW_STREAM = 0x62656C6F77  # 'below': the seed stream of the pairs kept apart, beside split.seed's own


def below_seed(seed: int) -> int:
    """The seed the pairs kept apart are drawn with: derived from split.seed (``seed``), never equal to it, so
    their draw is not the kept ratings' draw replayed over other rows."""
    return int(np.random.SeedSequence([int(seed), BELOW_STREAM]).generate_state(1, np.uint64)[0] >> 1)


@dataclass
class Cuts:
    """Where a time split's held-out parts begin: the time of the earliest valid and of the earliest test rating
    (NO_CUT where the part is empty), one pair for a global cut (``users`` None), else one per user of
    ``users`` (a user_time split: each user its own)."""

    valid: np.ndarray  # int64, one per user of ``users`` (one in all for a global cut)
    test: np.ndarray
    users: np.ndarray | None = None


def held_out_cuts(assign: np.ndarray, timestamps: np.ndarray, users: np.ndarray | None = None) -> Cuts:
    """The :class:`Cuts` of a time split (``assign``: its codes, as made, before any row is dropped or given back;
    ``users``: each rating's user for a per-user cut, None for a global one)."""
    import pandas as pd

    ts = np.asarray(timestamps, dtype=np.int64)
    if users is None:
        first = [ts[assign == code].min() if np.any(assign == code) else NO_CUT for code in (VALID, TEST)]
        return Cuts(np.array([first[0]], np.int64), np.array([first[1]], np.int64))
    per = [pd.Series(ts[assign == code]).groupby(users[assign == code], sort=True).min() for code in (VALID, TEST)]
    index = per[0].index.union(per[1].index)
    valid, test = (p.reindex(index, fill_value=NO_CUT).to_numpy(np.int64) for p in per)
    return Cuts(valid, test, index.to_numpy())


def time_parts(cuts: Cuts, users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Each pair's part by its time against ``cuts``: test at or after its user's test cut (the global one), valid
    at or after the valid cut, else train; a pair at the very time a part begins is in that part (its ratings
    there may be, ties in time being drawn at random from split.seed), and a user with no held-out rating keeps its pairs
    in train."""
    import pandas as pd

    ts = np.asarray(timestamps, dtype=np.int64)
    if cuts.users is None:
        valid, test = np.full(ts.size, cuts.valid[0]), np.full(ts.size, cuts.test[0])
    else:
        at = pd.Index(cuts.users).get_indexer(users)
        known = at >= 0
        valid, test = np.full(ts.size, NO_CUT), np.full(ts.size, NO_CUT)
        valid[known], test[known] = cuts.valid[at[known]], cuts.test[at[known]]
    out = np.full(ts.size, TRAIN, np.int8)
    out[ts >= valid] = VALID
    out[ts >= test] = TEST
    return out


def below_split(cfg: SplitConfig, users: np.ndarray, timestamps: np.ndarray | None,
                cuts: Cuts | None) -> np.ndarray:
    """The part (TRAIN, VALID, TEST) of each pair kept apart as rated (``users``: each pair's user), as
    :func:`make_split` splits the kept ratings: a random split draws them with its shares (with the seed
    :func:`below_seed` derives from split.seed), a K-fold split deals each user's into the same number of folds
    and holds out the same fold (:func:`kfold_split`), a time split puts each by its time against the kept
    ratings' cuts (``cuts``: :func:`held_out_cuts` of their split; :func:`time_parts`). The per-user rule that
    gives a user whose every rating was held out one back in train is not applied: it keeps a user known to the
    model, which a pair kept apart never teaches."""
    if cfg.folds is not None:
        return kfold_split(users, cfg.folds, cfg.fold, cfg.valid, below_seed(cfg.seed))
    if cfg.method == "random":
        return random_split(users.size, cfg.valid, cfg.test, below_seed(cfg.seed))
    if timestamps is None or cuts is None:
        raise DataError(f"split.method={cfg.method}: the pairs kept apart as rated have no times to split them by")
    return time_parts(cuts, users, timestamps)
