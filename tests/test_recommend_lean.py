"""One user's list (and a few users') through the lean path (Recommender._lean_lists): the same movies and the same
score bytes as the batch search, filters and exclusions included, without the batch's search."""

import numpy as np
import pytest

from embedrec.model.factors import Factors
from embedrec.models import Model
from embedrec.serve import recommender as rec_mod
from embedrec.serve.recommender import LEAN_MAX, Recommender
from embedrec.sparse import topk_from_scores, topk_of_row


def _model(explicit: bool, n_users=60, n_movies=300, d=16, seed=0) -> Model:
    rng = np.random.default_rng(seed)
    P = rng.normal(size=(n_users, d)).astype(np.float32)
    Q = rng.normal(size=(n_movies, d)).astype(np.float32)
    Q[7] = Q[3]  # equal scores for every user: ties broken by movie row, on both paths
    bm = rng.normal(size=n_movies).astype(np.float32)
    bm[7] = bm[3]
    bu = rng.normal(size=n_users).astype(np.float32) if explicit else None
    f = Factors(P, Q, bu, bm, 3.5 if explicit else 0.0, explicit, (1.0, 5.0) if explicit else None)
    seen = [np.sort(rng.choice(n_movies, size=int(rng.integers(0, 40)), replace=False)) for _ in range(n_users)]
    indptr = np.cumsum([0] + [s.size for s in seen])
    genres = [["Drama"] if m % 3 else ["Comedy"] for m in range(n_movies)]
    movies = {"movie_id": np.arange(1, n_movies + 1) * 10, "title": [f"m{m}" for m in range(n_movies)],
              "year": [1950 + m % 60 for m in range(n_movies)], "genres": genres}
    engine = Recommender.from_parts(f, np.arange(1, n_users + 1) * 7, movies,
                                    (indptr, np.concatenate(seen).astype(np.int32)), np.ones(n_movies))
    return Model(engine)


def _bytes(r):
    return [(np.asarray(i).tobytes(), np.asarray(i).dtype.str, np.asarray(s).tobytes(), np.asarray(s).dtype.str)
            for i, s in zip(r.movie_ids, r.scores)]


ASKS = [dict(k=10), dict(k=5, exclude_seen=False), dict(k=300), dict(k=8, genres=["Drama"]),
        dict(k=8, genres=["Comedy"]), dict(k=6, exclude=[40, 80, 100]), dict(k=6, year_min=1970),
        dict(k=6, candidates=list(range(10, 3000, 10))[:250]), dict(k=6, candidates=[30, 40, 70, 80, 90])]


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("ask", ASKS)
def test_one_user_and_a_few_as_the_batch(monkeypatch, explicit, ask):
    m = _model(explicit)
    users = [int(u) for u in m.user_ids]
    assert len(users) > LEAN_MAX  # the batch searches as a batch
    batch = _bytes(m.recommend(users, **ask))
    searched = []
    real = Recommender._search
    monkeypatch.setattr(Recommender, "_search", lambda self, *a: searched.append(1) or real(self, *a))
    one = [_bytes(m.recommend(u, **ask))[0] for u in users]
    few = [x for s in range(0, len(users), 5) for x in _bytes(m.recommend(users[s:s + 5], **ask))]
    narrow = ask.get("genres") == ["Comedy"] or len(ask.get("candidates", [0] * 300)) < 150  # (under half the
    # movies: exact_topk scores a narrow filter's movies alone, and the lean path leaves it that search)
    assert one == batch and few == batch
    assert bool(searched) == narrow  # the lean path answered every other call


def test_approximate_index_keeps_its_search(monkeypatch):
    m = _model(False)
    monkeypatch.setattr(Recommender, "_flat_vectors", lambda self: None)  # as an HNSW run's
    called = []
    monkeypatch.setattr(Recommender, "_search_users", lambda self, q, excl, k, allowed: called.append(q.shape[0])
                        or ([np.array([0])] * q.shape[0], [np.array([1.0], np.float32)] * q.shape[0]))
    m.recommend(7, k=3)
    assert called == [1]


@pytest.mark.parametrize("seed", range(6))
def test_topk_of_row_is_topk_from_scores(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 6, size=50).astype(np.float32)  # many ties, straddling the cut
    s[rng.choice(50, 8, replace=False)] = -np.inf
    if seed % 2:
        s[rng.choice(50, 3, replace=False)] = np.nan
    for k in (1, 5, 20, 45, 60):
        want_i, want_v = topk_from_scores(s[None, :], k)
        got_i, got_v = topk_of_row(s, k)
        assert got_i.tolist() == want_i[0].tolist()
        assert got_v.tobytes() == want_v[0].tobytes()


def test_small_batch_product_single_threaded_within_rounding():
    # the few users' product under one BLAS thread is the threaded product up to float32's rounding (not always its
    # bits: OpenBLAS 0.3.31's Haswell kernels on an AMD EPYC sum 4-16 rows another way on two threads, 60-87% of the
    # entries a few ulps apart); the lists agree because exact_scores scores each listed pair again by pair_dots
    # and orders by that (test_one_user_and_a_few_as_the_batch)
    from embedrec.threads import blas_threads

    rng = np.random.default_rng(3)
    q = rng.normal(size=(LEAN_MAX, 129)).astype(np.float32)
    X = rng.normal(size=(4000, 129)).astype(np.float32)
    with blas_threads(2):
        a = q @ X.T
    with blas_threads(1):
        b = q @ X.T
    exact = q.astype(np.float64) @ X.T.astype(np.float64)
    assert np.abs(a - exact).max() < 1e-4 and np.abs(b - exact).max() < 1e-4


def test_unknown_user_message_names_the_dataset_only_when_raised(monkeypatch):
    m = _model(False)
    calls = []
    real = rec_mod.trained_on
    monkeypatch.setattr("embedrec.models_recommend.trained_on", lambda e: calls.append(1) or real(e))
    m.recommend(7, k=2)
    assert calls == []  # a known user's call makes no message
    with pytest.raises(Exception, match="999"):
        m.recommend(999, k=2)
    assert calls == [1]


def test_blas_limit_restored_after_two_threads_blocks_interleave():
    """blas_threads' limit is the process's: two threads' blocks entered A, B and left A, B (one open model's
    recommend of a few users from two threads: the lean path's product) leave the process's BLAS as they found it,
    not at one thread for good (each block restoring what it found left the 1 that the other had set)."""
    import threading

    from threadpoolctl import threadpool_info

    from embedrec.threads import blas_threads

    def limits():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = limits()
    if not before or max(before) < 2:
        pytest.skip("one BLAS thread already: nothing to see restored")
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a():
        with blas_threads(1):
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def b():
        a_in.wait(10)
        with blas_threads(1):
            b_in.set()
            a_out.wait(10)

    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    assert limits() == before
    with blas_threads(max(before)):  # nested blocks of other limits: each leaves the one outside it
        outer = limits()
        with blas_threads(1):
            assert limits() != outer
        assert limits() == outer
    assert limits() == before


class _RefusingBlas:
    """A BLAS library's controller as OpenBLAS 0.3.31 behaves: a thread count set while another thread's threaded
    product runs (``busy``) does not take."""

    user_api = "blas"

    def __init__(self):
        self.n, self.busy = 2, False

    @property
    def num_threads(self):
        return self.n

    def set_num_threads(self, n):
        if not self.busy:
            self.n = n


def test_blas_restore_refused_is_kept_and_set_again_by_the_next_block_or_settle(monkeypatch):
    """The last block's restore, refused by OpenBLAS while another thread's product runs, is kept: the next block
    starts from the counts owed (not from the one thread it finds, which it would then restore for good: the
    process's BLAS left at one thread of two), and settle() (exact search's, before its products) sets them."""
    import embedrec.threads as T
    from embedrec.model.factors import exact_topk

    lib = _RefusingBlas()
    monkeypatch.setattr(T, "_controller", [lib])
    monkeypatch.setattr(T, "_base", None)
    monkeypatch.setattr(T, "_blas_held", [])
    with T.blas_threads(1):
        assert lib.n == 1
        lib.busy = True  # another thread's threaded product starts
    assert lib.n == 1  # the restore did not take
    lib.busy = False
    with T.blas_threads(1):
        assert lib.n == 1
    assert lib.n == 2 and T._base is None
    with T.blas_threads(1):
        lib.busy = True
    T.settle()
    assert lib.n == 1  # still refused: still owed
    lib.busy = False
    T.settle()
    assert lib.n == 2 and T._base is None
    T.settle()  # nothing owed: nothing set
    assert lib.n == 2
    with T.blas_threads(1):
        lib.busy = True
    lib.busy = False
    got = exact_topk(np.eye(2, dtype=np.float32), np.eye(3, 2, dtype=np.float32), (np.zeros(0, int), np.zeros(0, int)), 2)
    assert lib.n == 2 and [list(g) for g in got[0]] == [[0, 1], [1, 0]]
