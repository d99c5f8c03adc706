import numpy as np

from embedrec.data.split import (
    TEST,
    TRAIN,
    VALID,
    drop_unknown,
    global_time_split,
    keep_users_in_train,
    random_split,
    user_time_split,
)


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
