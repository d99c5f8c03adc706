import hashlib

import numpy as np
import pytest

from embedrec.config import Config, SplitConfig
from embedrec.data.split import (
    TEST,
    TRAIN,
    VALID,
    check_folds_filled,
    drop_unknown,
    global_time_split,
    keep_users_in_train,
    kfold_split,
    make_split,
    random_split,
    user_folds,
    user_time_split,
)
from embedrec.errors import DataError


def test_random_split_is_seeded_and_sized():
    a, b = random_split(1000, 0.1, 0.2, 7), random_split(1000, 0.1, 0.2, 7)
    np.testing.assert_array_equal(a, b)
    assert (a == TEST).sum() == 200 and (a == VALID).sum() == 100
    assert not np.array_equal(a, random_split(1000, 0.1, 0.2, 8))


def test_user_time_split_holds_out_each_users_latest():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(20), 10)
    ts = rng.permutation(200)
    out = user_time_split(users, ts, 0.1, 0.2)
    for u in range(20):
        sel = users == u
        t, s = ts[sel], out[sel]
        assert (s == TEST).sum() == 2 and (s == VALID).sum() == 1
        assert t[s == TEST].min() > t[s == VALID].max() > t[s == TRAIN].max()


def test_user_time_split_keeps_one_training_rating_and_last_k():
    users = np.array([0, 1, 1, 1, 1])
    ts = np.array([5, 1, 2, 3, 4])
    out = user_time_split(users, ts, 0.5, 0.5, last_k=1)
    assert out[0] == TRAIN
    np.testing.assert_array_equal(out[1:], [TRAIN, TRAIN, VALID, TEST])


def test_global_time_split_is_a_cut():
    ts = np.arange(100)[::-1]
    out = global_time_split(ts, 0.1, 0.2)
    assert ts[out == TEST].min() > ts[out == VALID].max() > ts[out == TRAIN].max()


def test_drop_unknown_removes_leakage():
    assign = np.array([TRAIN, TRAIN, TEST, VALID])
    users = np.array([1, 2, 3, 1])
    movies = np.array([10, 11, 10, 12])
    out, n = drop_unknown(assign, users, movies)
    np.testing.assert_array_equal(out, [TRAIN, TRAIN, -1, -1])
    assert n == 2


def test_drop_unknown_with_valid_keeps_the_valid_windows_users_and_movies():
    """A global time cut: valid rows stay, and a test row is kept where train or valid knows its user and movie
    (hand-computed: user 3 and movie 12 are first seen in valid; user 4 and movie 13 in test)."""
    assign = np.array([TRAIN, VALID, VALID, TEST, TEST, TEST, TEST])
    users = np.array([1, 3, 1, 3, 1, 4, 1])
    movies = np.array([10, 11, 12, 12, 10, 10, 13])
    out, n = drop_unknown(assign, users, movies, with_valid=True)
    np.testing.assert_array_equal(out, [TRAIN, VALID, VALID, TEST, TEST, -1, -1])
    assert n == 2
    out, n = drop_unknown(assign, users, movies)  # train alone: valid's user 3 and movie 12 are unknown
    np.testing.assert_array_equal(out, [TRAIN, -1, -1, -1, TEST, -1, -1])
    assert n == 5


def test_keep_users_in_train_gives_back_the_first_rating_of_users_with_none():
    """A ranking check: a random split put all 4 ratings of a light user in valid, ingest dropped them as unknown,
    and the user was missing from the model (and after the refit). Hand-computed: user 7 has no train row (its
    first, row 1, goes back), user 8 one already, user 9's only other row is a held-out cold movie's (row 6)."""
    users = np.array([8, 7, 7, 8, 7, 9, 9])
    assign = np.array([TRAIN, VALID, TEST, VALID, VALID, TEST, TEST], dtype=np.int8)
    held = np.array([False, False, False, False, False, True, False])
    out, n = keep_users_in_train(assign, users, held)
    assert n == 2 and out.tolist() == [TRAIN, TRAIN, TEST, VALID, VALID, TEST, TRAIN]
    assert assign.tolist() == [TRAIN, VALID, TEST, VALID, VALID, TEST, TEST]  # not changed in place
    same, none = keep_users_in_train(out, users)
    assert none == 0 and same is out


def test_the_three_methods_split_as_before_folds_existed():
    """The defaults (split.folds null) keep every split bit for bit: the digests of each method's codes on a fixed
    draw, taken with the code before split.folds (6061dd9)."""
    rng = np.random.default_rng(3)
    users, ts = rng.integers(0, 50, 2000), rng.integers(0, 10**6, 2000)
    pinned = {"random": "f7eec88b27d7fa6c", "user_time": "517db1499d70b6a2", "global_time": "01c526a5029261f0"}
    for method, digest in pinned.items():
        codes = make_split(Config().updated({"split.method": method}).split, users, ts)
        assert hashlib.sha256(codes.tobytes()).hexdigest()[:16] == digest, method
    np.testing.assert_array_equal(make_split(SplitConfig(), users, ts), random_split(2000, 0.1, 0.2, 42))


def test_user_folds_deal_each_users_ratings_evenly():
    """Hand-computed bounds: a user of n ratings has floor(n/K) or ceil(n/K) in each fold; the folds' sizes differ
    by at most one; a user of fewer ratings than folds is in that many folds, once each."""
    rng = np.random.default_rng(0)
    counts = [1, 2, 3, 4, 5, 7, 11, 23, 40]
    users = rng.permutation(np.repeat(np.arange(len(counts)) * 10, counts))  # ids 0, 10, ..., in shuffled rows
    for k in (2, 3, 5):
        f = user_folds(users, k, seed=7)
        assert f.min() >= 0 and f.max() == k - 1
        sizes = np.bincount(f, minlength=k)
        assert sizes.max() - sizes.min() <= 1 and sizes.sum() == users.size
        for u, n in zip(np.arange(len(counts)) * 10, counts):
            per = np.bincount(f[users == u], minlength=k)
            assert per.min() == n // k and per.max() == -(-n // k), (k, u)
            assert (per > 0).sum() == min(n, k)


def test_user_folds_are_seeded_and_take_any_id_type():
    users = np.repeat(np.array(["a", "b", "c", "d"], dtype=object), [9, 4, 6, 1])
    a, b = user_folds(users, 3, 1), user_folds(users, 3, 1)
    np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, user_folds(users, 3, s)) for s in range(2, 6))
    codes = np.repeat(np.arange(4), [9, 4, 6, 1])  # the same folds as numbers: the ids' type does not matter
    np.testing.assert_array_equal(user_folds(codes, 3, 1), a)


@pytest.mark.parametrize("k", [2, 5])
def test_kfold_test_splits_partition_the_ratings(k):
    """Over fold = 0 .. K-1 the test splits are disjoint and hold every rating once; each fold's valid is
    round(n * valid) ratings drawn from the other folds; the same seed gives the same splits."""
    rng = np.random.default_rng(1)
    users = rng.integers(0, 40, 1000)
    seen = np.zeros(users.size, dtype=int)
    folds = user_folds(users, k, 42)
    for i in range(k):
        codes = kfold_split(users, k, i, 0.1, 42)
        np.testing.assert_array_equal(codes, kfold_split(users, k, i, 0.1, 42))
        np.testing.assert_array_equal(codes == TEST, folds == i)  # the test split is that fold, whatever i
        assert (codes == VALID).sum() == 100 and not (codes[folds == i] == VALID).any()
        seen += codes == TEST
    assert (seen == 1).all()
    assert not np.array_equal(kfold_split(users, k, 0, 0.1, 42), kfold_split(users, k, 0, 0.1, 43))


def test_make_split_takes_the_folds_from_the_config():
    users = np.repeat(np.arange(30), 10)
    cfg = Config().updated({"split.folds": 5, "split.fold": 3, "split.seed": 9}).split
    np.testing.assert_array_equal(make_split(cfg, users, None), kfold_split(users, 5, 3, 0.1, 9))
    assert (make_split(cfg, users, None) == TEST).sum() == 60  # 2 of each user's 10


def test_more_folds_than_the_median_user_has_ratings_are_refused():
    """Hand-computed medians: users of 1, 2, 3, 10 and 10 ratings (median 3) take 3 folds and not 4; of 1, 1, 2
    and 5 (median 1.5), no K; make_split checks it before it deals."""
    users = np.repeat([7, 3, 9, 1, 5], [1, 2, 3, 10, 10])
    check_folds_filled(users, 3)
    with pytest.raises(DataError) as e:
        check_folds_filled(users, 4)
    assert str(e.value) == ("config key 'split.folds' (4) is more folds than the median user has ratings (3, of 5 "
                            "users): each user's ratings are dealt into the folds, so most users would be missing "
                            "from most folds' test split; give at most 3 folds, or keep only the users with 4 ratings "
                            "or more (data.min_user_ratings=4)")
    with pytest.raises(DataError, match=r"\(1.5, of 4 users\): .*; this data has too few ratings a user to deal "
                                        r"into folds; keep only the users with 2 ratings or more "
                                        r"\(data.min_user_ratings=2\)$"):
        check_folds_filled(np.repeat(["a", "b", "c", "d"], [1, 1, 2, 5]), 2)
    check_folds_filled(np.array([], dtype=np.int64), 5)  # no users: nothing to say here
    with pytest.raises(DataError, match="more folds than the median user"):
        make_split(Config().updated({"split.folds": 4}).split, users, None)


def test_user_time_ties_at_a_cut_are_drawn_and_counted():
    """Hand-computed: user 0's five ratings share one time (test rint(1.25) = 1, valid 1: both cuts in the tie, two
    held-out ratings drawn); user 1's times 1, 2, 3, 3 (test 1, valid 1): its test cut falls between its two
    ratings at 3 (one drawn), its valid cut between 2 and 3 is no tie. Whichever rows are drawn, the counts per
    user and time are those of the cut."""
    users = np.array([0] * 5 + [1] * 4)
    ts = np.array([1, 1, 1, 1, 1, 1, 2, 3, 3])
    movies = np.array([10, 11, 12, 13, 14, 10, 11, 12, 13])
    ties: dict = {}
    out = user_time_split(users, ts, 0.25, 0.25, movies=movies, seed=1, ties=ties)
    assert ties == {"users": 2, "of_users": 2, "held_out": 3, "of_held_out": 4, "days": False}
    assert sorted(out[:5].tolist()) == [TRAIN, TRAIN, TRAIN, VALID, TEST]
    assert out[5:7].tolist() == [TRAIN, TRAIN] and sorted(out[7:].tolist()) == [VALID, TEST]
    drawn = {tuple(user_time_split(users, ts, 0.25, 0.25, movies=movies, seed=s)[:5]) for s in range(20)}
    assert len(drawn) > 5  # the seed draws them, not the rows' order: of 20 seeds, more than 5 ways


def test_a_time_split_is_the_same_whatever_the_rows_order():
    """A review: a stable sort kept ties in time in the file's order, so the same ratings sorted otherwise were
    split otherwise. Random tables with many ties (5 times), shuffled: the same split, row for row; another seed
    another split."""
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = 300
        u, m, t = rng.integers(0, 10, n), rng.permutation(n) + 1000, rng.integers(0, 5, n)
        p = rng.permutation(n)
        a = user_time_split(u, t, 0.1, 0.2, movies=m, seed=3)
        np.testing.assert_array_equal(a[p], user_time_split(u[p], t[p], 0.1, 0.2, movies=m[p], seed=3))
        a = user_time_split(u, t, 0.3, 0.3, last_k=2, movies=m, seed=3)
        np.testing.assert_array_equal(a[p], user_time_split(u[p], t[p], 0.3, 0.3, last_k=2, movies=m[p], seed=3))
        g = global_time_split(t, 0.1, 0.2, users=u, movies=m, seed=3)
        np.testing.assert_array_equal(g[p], global_time_split(t[p], 0.1, 0.2, users=u[p], movies=m[p], seed=3))
        assert (g == TEST).sum() == 60 and (g == VALID).sum() == 30
        assert t[g == TEST].min() >= t[g == VALID].max() >= t[g == TRAIN].max()
    assert not np.array_equal(user_time_split(u, t, 0.1, 0.2, movies=m, seed=3),
                              user_time_split(u, t, 0.1, 0.2, movies=m, seed=4))


def test_a_file_sorted_by_rating_within_each_day_no_longer_chooses_the_test_ratings():
    """The review's file: 200 users who rated 10 movies on one day, each user's rows sorted by rating (1 to 5,
    twice). Kept in the file's order, the test split was every user's two 5s (mean 5.0); drawn, it holds
    every rating value, its mean near the whole's 3 (400 draws: SE about 0.07)."""
    users = np.repeat(np.arange(200), 10)
    ratings = np.tile(np.repeat(np.arange(1, 6), 2), 200)
    movies = np.tile(np.arange(10), 200)
    ts = np.full(users.size, 19_000 * 86_400)
    ties: dict = {}
    out = user_time_split(users, ts, 0.0, 0.2, movies=movies, seed=42, ties=ties)
    assert set(ratings[out == TEST].tolist()) == {1, 2, 3, 4, 5}
    assert abs(ratings[out == TEST].mean() - 3) < 0.3
    assert ties == {"users": 200, "of_users": 200, "held_out": 400, "of_held_out": 400, "days": True}


def test_global_time_ties_at_the_cuts_are_drawn_and_counted():
    """Hand-computed: times 0-8 and five ratings at 9 (14 ratings: test 3, valid 1): both cuts fall among the five
    at 9, which hold one training rating, the valid and the test ones (four drawn). Four at 10 after times 0-9:
    the valid cut falls where they begin (no tie), the test cut among them (three drawn). Times 0-13 all apart:
    no tie, no count, the split as before."""
    users, movies = np.arange(14) % 3, np.arange(14)
    ties: dict = {}
    out = global_time_split(np.r_[np.arange(9), [9] * 5], 1 / 14, 3 / 14, users=users, movies=movies, seed=0,
                            ties=ties)
    assert ties == {"cuts": 2, "held_out": 4, "of_held_out": 4, "days": False}
    assert out[:9].tolist() == [TRAIN] * 9 and sorted(out[9:].tolist()) == [TRAIN, VALID, TEST, TEST, TEST]
    ties = {}
    out = global_time_split(np.r_[np.arange(10), [10] * 4], 1 / 14, 3 / 14, users=users, movies=movies, ties=ties)
    assert ties == {"cuts": 1, "held_out": 3, "of_held_out": 4, "days": False}
    assert out[:10].tolist() == [TRAIN] * 10 and sorted(out[10:].tolist()) == [VALID, TEST, TEST, TEST]
    ties = {}
    out = global_time_split(np.arange(14), 1 / 14, 3 / 14, users=users, movies=movies, ties=ties)
    assert ties == {"cuts": 0, "held_out": 0, "of_held_out": 4, "days": False}
    assert out.tolist() == [TRAIN] * 10 + [VALID] + [TEST] * 3
