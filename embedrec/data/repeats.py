"""Repeated (user, movie) pairs, as ``data.repeats`` takes them: :func:`dedupe_rows` keeps each pair's latest
row, where its first line was (latest; update-users' ratings file follows the same rule), :func:`sum_repeats`
sums a pair's rows into one (sum: a click or play log's counts). Under a time split a summed pair is placed by its first event, and a
training pair counted up to its user's cut: :func:`sum_repeats` keeps the repeated pairs' events
(:class:`PairEvents`), :func:`pair_cuts` gives each row's cut and :func:`cut_training_pairs` counts the
training pairs up to it. Pure functions over a ratings frame; ``ingestion.py`` applies them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from embedrec.data.split import TRAIN
from embedrec.sparse import isin


def _pair_key(ratings: pd.DataFrame) -> np.ndarray:
    """One int64 per row, equal for equal (user, movie): user_id * (max movie_id + 1) + movie_id when both ids
    are non-negative integers small enough (8 bytes a row, no hash table), else from pd.factorize codes."""
    cols = [ratings[c].to_numpy() for c in ("user_id", "movie_id")]
    if all(c.dtype.kind in "iu" for c in cols) and len(ratings):
        u, m = cols
        lo = min(int(u.min()), int(m.min()))
        width = int(m.max()) + 1
        if lo >= 0 and int(u.max()) < (2 ** 62) // max(width, 1):
            key = np.multiply(u, width, dtype=np.int64)
            np.add(key, m, out=key, casting="unsafe")
            return key
    u = pd.factorize(ratings["user_id"])[0].astype(np.int64)
    m = pd.factorize(ratings["movie_id"])[0].astype(np.int64)
    return u * (int(m.max(initial=0)) + 1) + m


def first_new_pairs(keys: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Which of ``keys`` (pair keys: user row * the movies + movie row) are each the first of their pair and not
    among ``held`` (the keys of pairs there already): the pairs of dropped rows that ingest and update-users keep as
    seen, each once and never beside a rating of the same pair."""
    _, first = np.unique(keys, return_index=True)
    fresh = np.zeros(keys.size, dtype=bool)
    fresh[first] = True
    fresh &= ~isin(keys, held)
    return fresh


def same_as_read(timed: bool) -> str:
    """What makes a row one :func:`dedupe_rows`' first count counts, in words: '(same user, movie, rating and
    time as read)'; without a time column, '(same user, movie and rating as read)'. Rows the same in the columns
    read, not identical lines (a first-hour review: 'exact duplicates dropped 188' of a file without two
    identical lines, its rows differing in a column ingest does not read)."""
    return "(same user, movie, rating and time as read)" if timed else "(same user, movie and rating as read)"


def dedupe_rows(ratings: pd.DataFrame) -> tuple[np.ndarray | None, int, int]:
    """The rows to keep, in their order: those the same in the columns read (user, movie, rating, time) dropped
    but the first, then for a repeated (user, movie) the latest rating (ties: the later line), put where the pair's
    first line was. Returns (the rows kept in that order, None where no pair repeats; repeated rows dropped;
    repeated pairs dropped). Ingest's rule of a pair given twice, which update-users' ratings file follows too
    (user_update.py).

    Each pair keeps the place of its first line, as :func:`sum_repeats` does, so the rows before the split are the
    same rows in the same order whatever is appended for a pair already there: the random and K-fold splits draw
    by the rows' order, and the latest row kept where it was read moved every row after the pair's first line up
    one place, a new draw for them all (a first-hour review: one re-rating appended to ML-100K kept 53.96% of the
    pairs in their split, against 100% for an exact copy of a line and 95% for a new pair). A file whose pairs are
    each on one row is kept as read.

    The common case (nothing repeated) costs a sorted copy of the pair keys: 16 bytes a row at the peak, where
    factorize and a hash-based unique took about 70 (ingest of 10M ratings: 1,249 MB peak before)."""
    n = len(ratings)
    key = _pair_key(ratings)
    probe = np.sort(key)
    if n < 2 or not (probe[1:] == probe[:-1]).any():
        return None, 0, 0
    del probe
    t = ratings["timestamp"].to_numpy() if "timestamp" in ratings else np.zeros(n, dtype=np.int64)
    r = ratings["rating"].to_numpy()
    order = np.lexsort((np.arange(n), t, key))
    sk, st, sr = key[order], t[order], r[order]
    exact = np.r_[False, (sk[1:] == sk[:-1]) & (st[1:] == st[:-1]) & (sr[1:] == sr[:-1])]
    n_exact = int(exact.sum())
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    del sk, st, sr, exact
    latest = order[np.r_[starts[1:], n] - 1]  # each pair's last row in (time, line) order
    first = np.minimum.reduceat(order, starts)  # each pair's first line
    rows = latest[np.argsort(first)]
    return rows, n_exact, n - n_exact - int(rows.size)


def duplicate_rows(ratings: pd.DataFrame) -> np.ndarray | None:
    """Which rows repeat an earlier row in every column read (user, movie, rating and time: a tracking
    double-fire, the same event sent twice), each such run's first row not among them; None where none does.
    data.duplicates=drop drops them before :func:`sum_repeats`, which counts them itself otherwise (a first-hour
    review: 449 of a log's 9,399 rows, summed without a word). A frame without times has none: there rows of the
    same user, movie and rating are a count's events."""
    n = len(ratings)
    if n < 2 or "timestamp" not in ratings:
        return None
    key = _pair_key(ratings)
    probe = np.sort(key)
    if not (probe[1:] == probe[:-1]).any():  # (no pair repeats: the common case, a sort and no argsort)
        return None
    del probe
    order = np.argsort(key, kind="stable")
    sk = key[order]
    del key
    return _exact_in_pairs(order, sk, ratings["timestamp"].to_numpy(), ratings["rating"].to_numpy())


def _exact_in_pairs(order: np.ndarray, sk: np.ndarray, t: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """:func:`duplicate_rows`' mask from the rows in pair-key order (``order``, stable; ``sk`` their keys): only
    the rows of repeated pairs are sorted again, by time and rating (a log of few repeats costs little more than
    the pair sort it shares with :func:`sum_repeats`); None where no row repeats another."""
    same = sk[1:] == sk[:-1]
    if not same.any():
        return None
    held = np.r_[same, False] | np.r_[False, same]  # the rows of a repeated pair, in pair-key order
    rows = order[held]
    k, tt, rr = sk[held], t[rows], r[rows]
    pair = np.cumsum(np.r_[True, k[1:] != k[:-1]]) - 1  # each held row's pair, 0 up (rows already in pair order)
    span = int(tt.max()) - int(tt.min()) + 1 if tt.size else 1
    if rr.size and rr.min() == rr.max() and int(pair[-1]) < (2 ** 62) // span:  # one rating (a log of events):
        # one int64 of (pair, time), one stable sort (a 4-key lexsort took 0.6 s more of CPU on 2M rows)
        within = np.argsort(pair * span + (tt - tt.min()), kind="stable")
    else:
        within = np.lexsort((rr, tt, pair))  # equal rows together, in input order (a stable sort of pair order)
    k, tt, rr = pair[within], tt[within], rr[within]
    again = (k[1:] == k[:-1]) & (tt[1:] == tt[:-1]) & (rr[1:] == rr[:-1])
    if not again.any():
        return None
    out = np.zeros(order.size, dtype=bool)
    out[rows[within][1:][again]] = True
    return out


FIRST_TIME = "_first_time"  # a summed pair's first event's time, where a time split places it: never written

EVENTS = "_events"  # a summed pair's events' place in its PairEvents (-1: a pair of one event): never written


@dataclasses.dataclass
class PairEvents:
    """The events of the pairs :func:`sum_repeats` summed from several rows, kept for a time split to count each
    training pair up to its user's cut (:func:`cut_training_pairs`): the i-th such pair's events (times and
    ratings, in input order) are ``time[bounds[i]:bounds[i + 1]]``; a summed row names its i in column EVENTS.
    ``rating`` is None where every event's rating is 1 (a log without ratings). 8 bytes an event of a repeated pair
    (12 with a float32 rating), less than the rows read, which are freed by the time of the split."""
    time: np.ndarray
    rating: np.ndarray | None
    bounds: np.ndarray


def sum_repeats(ratings: pd.DataFrame, first_time: bool = True, events: list | None = None,
                exact: list | None = None) -> tuple[pd.DataFrame, int, int]:
    """data.repeats=sum: one row per (user, movie), its rating the sum of the pair's rows' ratings (a file without
    a rating column stores each row as 1, so a count of its rows), its timestamp the latest; every other column
    from the pair's first line. Exact duplicate lines are events here, summed too. Returns (rows in the order of
    each pair's first line, rows that belonged to a repeated pair, the pairs they became). ``first_time``: a
    column FIRST_TIME holds each pair's earliest time (a time split places the pair by it); ``events`` (a list,
    with timestamps): receives the repeated pairs' events (:class:`PairEvents`), and a column EVENTS names each
    row's (nothing is added where no pair repeats: every row is then its pair's one event). ``exact`` (a list, with
    timestamps): receives how many rows repeat an earlier one in user, movie, rating and time
    (:func:`duplicate_rows`' count, from the same sort: a double-fire, summed here as an event).

    Nothing repeated costs what :func:`dedupe_rows`' check does (a sorted copy of the pair keys); the merge
    sorts the keys once (a stable argsort) and sums each run with ``np.add.reduceat``."""
    n = len(ratings)
    key = _pair_key(ratings)
    probe = np.sort(key)
    if n < 2 or not (probe[1:] == probe[:-1]).any():
        return ratings, 0, 0
    del probe
    order = np.argsort(key, kind="stable")  # within a pair: input order, so its first line comes first
    sk = key[order]
    del key
    if exact is not None and "timestamp" in ratings:
        same = _exact_in_pairs(order, sk, ratings["timestamp"].to_numpy(), ratings["rating"].to_numpy())
        exact.append(0 if same is None else int(np.count_nonzero(same)))
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    del sk
    sizes = np.diff(np.r_[starts, n])
    first = order[starts]
    # the pairs in the order of their first lines, as latest keeps rows: the frame taken once in that order (a copy
    # in key order, copied again and reordered after, held two copies of the pairs at once: a click log's peak)
    keep = np.argsort(first, kind="stable")
    out = ratings.take(first[keep])
    del first
    r = ratings["rating"].to_numpy()
    timed = events is not None and "timestamp" in ratings
    counts = timed and bool(r.min() == 1 == r.max())  # a log without ratings: an event's rating is 1, not kept
    r_sorted = r[order]
    out["rating"] = np.add.reduceat(r_sorted.astype(np.float64), starts).astype(r.dtype)[keep]
    if not timed or counts:
        del r_sorted
    repeated = sizes > 1
    if "timestamp" in ratings:
        t = ratings["timestamp"].to_numpy()[order]
        del order
        out["timestamp"] = np.maximum.reduceat(t, starts)[keep]
        if first_time:  # where a time split places the pair; not written
            out[FIRST_TIME] = np.minimum.reduceat(t, starts)[keep]
        if timed:  # the events of repeated pairs alone: a pair of one event is never cut
            of_repeated = np.repeat(repeated, sizes)
            events.append(PairEvents(t[of_repeated], None if counts else r_sorted[of_repeated],
                                     np.r_[0, np.cumsum(sizes[repeated])]))
            del of_repeated
            n_repeated = int(np.count_nonzero(repeated))
            at = np.full(len(out), -1, dtype=np.int32 if n_repeated < 2 ** 31 else np.int64)
            at[repeated] = np.arange(n_repeated)
            out[EVENTS] = at[keep]
            del at
        del t
    return out, int(sizes[repeated].sum()), int(np.count_nonzero(repeated))


NO_CUT = np.iinfo(np.int64).max  # a user with no held-out pair under user_time: every event counts


def pair_cuts(users: np.ndarray, first: np.ndarray, assign: np.ndarray, method: str) -> np.ndarray:
    """Each row's cut under a time split that placed pairs by their first event (``first``): user_time, the
    earliest first time among its user's held-out (valid or test) pairs, NO_CUT for a user with none; global_time,
    the earliest among all held-out pairs, the cut itself. A training pair's first time is at or before it."""
    held = assign > TRAIN
    if not held.any():
        return np.full(users.size, NO_CUT, dtype=np.int64)
    if method == "global_time":
        return np.full(users.size, int(first[held].min()), dtype=np.int64)
    codes, uniques = pd.factorize(users)
    per_user = np.full(len(uniques), NO_CUT, dtype=np.int64)
    earliest = pd.Series(first[held]).groupby(codes[held]).min()
    per_user[earliest.index.to_numpy()] = earliest.to_numpy()
    return per_user[codes]


def cut_training_pairs(ratings: pd.DataFrame, assign: np.ndarray, events: PairEvents, cuts: np.ndarray,
                       chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The training pairs (``assign`` TRAIN) with events after their row's cut (``cuts``, from
    :func:`pair_cuts`), counted up to it: (their rows, their ratings summed over the events at or before the
    cut, the latest of those times, the events after it). An event at the cut's own time is not after it, so each
    training pair keeps its first event. Only these pairs' events are read, about ``chunk`` at a time."""
    at = ratings[EVENTS].to_numpy()
    rows = np.flatnonzero((assign == TRAIN) & (at >= 0) & (ratings["timestamp"].to_numpy() > cuts))
    sums, latest = np.empty(rows.size, np.float64), np.empty(rows.size, np.int64)
    lo = events.bounds[at[rows]]
    sizes = events.bounds[at[rows] + 1] - lo
    ends = np.cumsum(sizes)
    dropped, i = 0, 0
    while i < rows.size:
        j = max(i + 1, int(np.searchsorted(ends, (ends[i - 1] if i else 0) + chunk, side="right")))
        size = sizes[i:j]
        heads = np.r_[0, np.cumsum(size)[:-1]]  # each pair's first event among those gathered
        idx = np.repeat(lo[i:j] - heads, size)
        idx += np.arange(idx.size)
        t = events.time[idx]
        kept = t <= np.repeat(cuts[rows[i:j]], size)
        if events.rating is None:  # every event 1: the count of those kept
            sums[i:j] = np.add.reduceat(kept, heads, dtype=np.float64)
        else:
            sums[i:j] = np.add.reduceat(np.where(kept, events.rating[idx].astype(np.float64), 0.0), heads)
        np.putmask(t, ~kept, np.iinfo(np.int64).min)
        latest[i:j] = np.maximum.reduceat(t, heads)
        dropped += int(kept.size - np.count_nonzero(kept))
        i = j
    return rows, sums, latest, dropped
