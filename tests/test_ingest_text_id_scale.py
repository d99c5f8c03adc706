"""Ingest's set operations on text ids are hashed, never each id compared with each (a first-hour review: numpy's
setdiff1d of 30,000 text users took 47 s of a 51-55 s ingest that integer ids did in 3 s). Each id here counts the
comparisons made with it, so a quadratic step fails however fast the machine is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from embedrec.config_sections import SplitConfig
from embedrec.data.assign import assign_splits, rated_below_unknown, split_below

N_USERS = 600


class Counted(str):
    """A text id that counts the (in)equality tests made with it."""

    calls = 0

    def __eq__(self, other):
        Counted.calls += 1
        return str.__eq__(self, other)

    def __ne__(self, other):  # (numpy's setdiff1d tests each id != each)
        Counted.calls += 1
        return str.__ne__(self, other)

    __hash__ = str.__hash__


def _ids(prefix: str, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [Counted(f"{prefix}{i:06d}") for i in range(n)]
    return out


def _ratings(rng) -> pd.DataFrame:
    """Four ratings for each of N_USERS text users over 3,000 text movies (many rated once: test rows to drop), as
    object columns (each row its own id object, as a reader's column holds them)."""
    users = np.repeat(np.arange(N_USERS), 4)
    movies = rng.integers(0, 3000, users.size)
    u = np.empty(users.size, dtype=object)
    u[:] = [Counted(f"u{i:06d}") for i in users]
    m = np.empty(users.size, dtype=object)
    m[:] = [Counted(f"b{i:04d}X") for i in movies]
    return pd.DataFrame({"user_id": pd.Series(u, dtype=object), "movie_id": pd.Series(m, dtype=object),
                         "rating": np.ones(users.size, np.float32)})


def test_the_users_left_with_no_row_are_found_without_comparing_each_user_with_each():
    ratings = _ratings(np.random.default_rng(0))
    report: dict = {}
    left: list = []
    Counted.calls = 0
    kept, assign, _ = assign_splits(ratings, SplitConfig(test=0.5), report, left)
    assert report["eval_rows_dropped_unknown"] > 0  # (the step that finds the users left runs)
    assert Counted.calls < 20 * len(ratings), Counted.calls  # numpy's setdiff1d: about N_USERS ** 2 / 2
    gone = set(np.concatenate(left).tolist()) if left else set()
    assert gone == set(ratings["user_id"]) - set(kept["user_id"])  # the same users as before


def test_the_dropped_pairs_of_users_not_in_the_dataset_are_found_by_hash():
    uids = np.sort(_ids("u", N_USERS))
    mids = np.sort(_ids("b", 40))
    pairs = pd.DataFrame({"user_id": pd.Series(_ids("u", 2 * N_USERS), dtype=object),
                          "movie_id": pd.Series(np.resize(_ids("b", 40), 2 * N_USERS), dtype=object)})
    Counted.calls = 0
    out = rated_below_unknown(pairs, uids, mids)
    assert Counted.calls < 40 * len(pairs), Counted.calls  # np.isin: 2 * N_USERS ** 2 (searchsorted: log2 of it)
    assert out["user_id"].tolist() == [f"u{i:06d}" for i in range(N_USERS, 2 * N_USERS)]


def test_the_held_out_cold_movies_pairs_kept_apart_are_found_by_hash():
    mids = np.sort(_ids("b", 2 * N_USERS))
    uids = np.sort(_ids("u", 3))
    cold = mids[::2].copy()
    below = pd.DataFrame({"user_idx": np.zeros(mids.size, np.int32), "movie_idx": np.arange(mids.size, dtype=np.int32)})
    report: dict = {}
    Counted.calls = 0
    parts = split_below(below, SplitConfig(), None, cold, uids, mids, report)["split"].to_numpy()
    assert Counted.calls < 20 * mids.size, Counted.calls  # np.isin: mids.size * cold.size
    assert (parts[::2] == 2).all()  # every pair on a cold movie is test
