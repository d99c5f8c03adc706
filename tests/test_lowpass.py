"""embedrec.training.lowpass: GF-CF's ideal low-pass blocks from a seeded randomized SVD, against a dense SVD."""
import numpy as np
import pytest

from embedrec.training.lowpass import binary_pairs, lowpass, user_block


def dense_reference(u, m, nu, ni, k):
    R = np.zeros((nu, ni))
    R[u, m] = 1
    du, di = R.sum(1), R.sum(0)
    Rt = R / np.sqrt(np.maximum(du, 1))[:, None] / np.sqrt(np.maximum(di, 1))[None, :]
    _, s, vt = np.linalg.svd(Rt)
    W = vt[:k].T
    sq = np.sqrt(np.maximum(di, 1))[:, None]
    return R, s[:k], W, R @ (W / sq), W * sq


def clustered(seed=0, nu=120, ni=60, blocks=4, noise=80):
    """A binary matrix of dense diagonal blocks plus a little noise: R~'s top ``blocks`` singular values stand
    well apart from the rest, so the top-k subspace is well defined."""
    rng = np.random.default_rng(seed)
    bu, bi = np.arange(nu) % blocks, np.arange(ni) % blocks
    uu, mm = np.nonzero((bu[:, None] == bi[None, :]) & (rng.random((nu, ni)) < 0.6))
    u = np.concatenate([uu, rng.integers(0, nu, noise)])
    m = np.concatenate([mm, rng.integers(0, ni, noise)])
    return u, m, nu, ni, blocks


@pytest.mark.parametrize("method", ["krylov", "subspace", "dense", "auto"])
def test_matches_dense_svd_where_the_spectrum_has_a_gap(method):
    u, m, nu, ni, k = clustered()
    lp = lowpass(u, m, nu, ni, k, seed=0, method=method)
    R, s, W, x, y = dense_reference(u, m, nu, ni, k)
    np.testing.assert_allclose(lp.s, s, rtol=1e-4)
    W_ours = lp.a * np.sqrt(np.maximum(R.sum(0), 1))[:, None]
    cos = np.linalg.svd(np.linalg.qr(W_ours)[0].T @ W, compute_uv=False)
    assert cos.min() > 0.9999
    np.testing.assert_allclose(lp.x @ lp.y.T, x @ y.T, atol=1e-4)
    assert lp.x.shape == (nu, k) and lp.y.shape == (ni, k) and lp.a.shape == (ni, k)
    assert lp.x.dtype == lp.y.dtype == lp.a.dtype == np.float32


@pytest.mark.parametrize("method,nu,ni", [("krylov", 40, 15), ("dense", 40, 15), ("dense", 15, 40)])
def test_full_rank_low_pass_gives_back_the_rated_movies(method, nu, ni):
    # k = the rank: W W^T projects on R~'s row space, so x y^T = R D_I^-1/2 W W^T D_I^1/2 = R
    rng = np.random.default_rng(3)
    u, m = rng.integers(0, nu, 200), rng.integers(0, ni, 200)
    lp = lowpass(u, m, nu, ni, min(nu, ni), seed=1, method=method)
    R = np.zeros((nu, ni))
    R[u, m] = 1
    np.testing.assert_allclose(lp.x @ lp.y.T, R, atol=1e-4)


def test_top_k_of_a_flat_spectrum_with_enough_oversampling_and_iterations():
    rng = np.random.default_rng(5)
    nu, ni, k = 200, 80, 10
    u, m = rng.integers(0, nu, 2500), (rng.zipf(1.6, 2500) % ni)
    lp = lowpass(u, m, nu, ni, k, seed=0, oversample=70, power_iters=12, method="krylov")
    R, s, W, x, y = dense_reference(u, m, nu, ni, k)
    np.testing.assert_allclose(lp.s, s, rtol=1e-3)
    np.testing.assert_allclose(lp.x @ lp.y.T, x @ y.T, atol=2e-3)


def test_x_is_the_sum_of_a_over_the_rated_movies_and_repeats_count_once():
    u, m, nu, ni, k = clustered(seed=2)
    lp = lowpass(u, m, nu, ni, k, seed=0)
    twice = lowpass(np.concatenate([u, u[:50]]), np.concatenate([m, m[:50]]), nu, ni, k, seed=0)
    np.testing.assert_array_equal(lp.x, twice.x)
    np.testing.assert_array_equal(lp.y, twice.y)
    for user in (0, 7, 33):
        rated = m[u == user]
        np.testing.assert_allclose(user_block(lp.a, np.concatenate([rated, rated[:2]])), lp.x[user], atol=1e-5)


def test_seeded_and_deterministic_signs():
    u, m, nu, ni, k = clustered(seed=4)
    a, b = lowpass(u, m, nu, ni, k, seed=7), lowpass(u, m, nu, ni, k, seed=7)
    np.testing.assert_array_equal(a.a, b.a)
    c = lowpass(u, m, nu, ni, k, seed=8)
    np.testing.assert_allclose(a.x @ a.y.T, c.x @ c.y.T, atol=1e-4)


def test_users_and_movies_without_rows_get_zero_blocks_and_k_is_capped():
    u = np.array([0, 0, 1, 3, 3, 3])
    m = np.array([0, 2, 2, 0, 1, 2])
    lp = lowpass(u, m, 6, 5, 100, seed=0)  # users 2, 4 and 5, movies 3 and 4 have no rows
    assert lp.x.shape == (6, 5) and lp.a.shape == (5, 5)
    assert not lp.x[[2, 4, 5]].any()
    np.testing.assert_allclose(lp.y[[3, 4]], 0, atol=1e-6)
    np.testing.assert_allclose(lp.a[[3, 4]], 0, atol=1e-6)
    R = np.zeros((6, 5))
    R[u, m] = 1
    np.testing.assert_allclose(lp.x @ lp.y.T, R, atol=1e-4)


def test_refuses_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        binary_pairs([0, 1], [0], 2, 2)
    with pytest.raises(ValueError, match="out of range"):
        binary_pairs([0, 2], [0, 1], 2, 2)
    with pytest.raises(ValueError, match="k must be"):
        lowpass([0], [0], 1, 1, 0)
    with pytest.raises(ValueError, match="method is"):
        lowpass([0], [0], 1, 1, 1, method="lanczos")


@pytest.mark.parametrize("block", [1 << 22, 40])  # one block of users, or many (a user's rows never split)
def test_from_basis_over_the_rows_it_was_found_on_is_the_svd_blocks(monkeypatch, block):
    """from_basis(W of these rows, these rows) gives the SVD's x, y and a back; over more rows each block is that
    basis weighed by the new degrees (a = W / sqrt(d), y = W sqrt(d), x = R a), a movie without a pair 0."""
    from embedrec.training import lowpass as L
    from embedrec.training.lowpass import from_basis

    monkeypatch.setattr(L, "BASIS_BLOCK", block)

    rng = np.random.default_rng(7)
    nu, ni = 60, 25
    u, m = rng.integers(0, nu, 400), rng.integers(0, ni - 3, 400)  # the last 3 movies never rated here
    lp = lowpass(u, m, nu, ni, 8, seed=0)
    again = from_basis(lp.w, u, m, nu, ni)
    for got, want in ((again.x, lp.x), (again.y, lp.y), (again.a, lp.a)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    u2, m2 = np.concatenate([u, rng.integers(0, nu, 100), [5]]), np.concatenate([m, rng.integers(0, ni - 3, 100), [ni - 1]])
    more = from_basis(lp.w, u2, m2, nu, ni)
    R = np.zeros((nu, ni))
    R[u2, m2] = 1
    d = R.sum(0)
    W = np.where(d[:, None] > 0, lp.w, 0.0)
    np.testing.assert_allclose(more.a, W / np.sqrt(np.maximum(d, 1))[:, None], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(more.y, W * np.sqrt(np.maximum(d, 1))[:, None], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(more.x, R @ more.a, rtol=1e-4, atol=1e-5)
    assert not more.x[[i for i in range(nu) if not R[i].any()]].any()


@pytest.mark.parametrize("nu,ni", [(120, 60), (60, 120)])
@pytest.mark.parametrize("eigh64", [4096, 8])
def test_torchs_dense_gram_in_chunks_matches_the_dense_svd(monkeypatch, nu, ni, eigh64):
    """The dense method through torch (a set above DENSE_CELLS): the smaller side's Gram made a few columns at a
    time (GRAM_FLOATS) and decomposed in float64, or in float32 above EIGH64_MAX rows: the same block."""
    from embedrec.training import lowpass as lp_mod

    monkeypatch.setattr(lp_mod, "DENSE_CELLS", 0)
    monkeypatch.setattr(lp_mod, "GRAM_FLOATS", 7 * max(nu, ni))  # 7 columns a chunk
    monkeypatch.setattr(lp_mod, "EIGH64_MAX", eigh64)
    u, m, _, _, k = clustered(nu=nu, ni=ni)
    lp = lowpass(u, m, nu, ni, k, seed=0, method="auto")
    R, s, W, x, y = dense_reference(u, m, nu, ni, k)
    np.testing.assert_allclose(lp.s, s, rtol=1e-4)
    np.testing.assert_allclose(lp.x @ lp.y.T, x @ y.T, atol=1e-4)


def test_a_large_eigendecomposition_takes_the_cores_others_leave_free():
    """eigh_threads: the threads asked for, at most the cores less the other load (rounded down), at least one."""
    from embedrec.training.lowpass import eigh_threads

    assert eigh_threads(2, 2, 0.0) == 2 and eigh_threads(2, 2, 0.4) == 1 and eigh_threads(2, 2, 3.0) == 1
    assert eigh_threads(8, 16, 9.5) == 6 and eigh_threads(1, 16, 0.0) == 1 and eigh_threads(4, 16, -1.0) == 4


# ------------------------------------------------------------------------------------ on torchrun's ranks
class _Ranks:
    """torchrun's ranks simulated by threads: ``part(r, lo, rows, n)`` is rank r's Part, whose reduce sums every
    rank's array (in rank order: the same sum on each) once all have called it."""

    def __init__(self, world):
        import threading

        self.world, self.slots, self.barrier = world, [None] * world, threading.Barrier(world, timeout=60)
        self.calls = [0] * world

    def part(self, r, lo, rows, n):
        from embedrec.training.lowpass import Part

        def reduce(a):
            self.calls[r] += 1
            self.slots[r] = np.array(a, copy=True)
            self.barrier.wait()
            out = sum(self.slots[1:], self.slots[0].copy())
            self.barrier.wait()
            return out

        return Part(lo, rows, n, reduce, r, self.world)

    def run(self, fn, cuts):
        """fn(r, part) on each rank's thread, users [cuts[r], cuts[r + 1]); their results in rank order."""
        import threading

        out, errors = [None] * self.world, []

        def one(r):
            try:
                out[r] = fn(r, self.part(r, cuts[r], cuts[r + 1] - cuts[r], cuts[-1]))
            except BaseException as e:  # (a failing rank would leave the others at the barrier: it breaks it)
                errors.append(e)
                self.barrier.abort()

        threads = [threading.Thread(target=one, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out


@pytest.mark.parametrize("method", ["dense", "krylov", "auto"])
@pytest.mark.parametrize("cuts", [(0, 50, 120), (0, 1, 70, 120)])
def test_ranks_holding_their_users_rows_find_one_processs_blocks(method, cuts):
    """lowpass on ranks (a Part each: its users' rows, sums over every rank): every rank's y, a and singular
    values are one process's, and its x is one process's rows of its users: the Krylov start replays one
    process's draw, the dense method decomposes the movies' Gram summed over the ranks. from_basis too."""
    from embedrec.training.lowpass import from_basis

    u, m, nu, ni, k = clustered(nu=120, ni=60)
    one = lowpass(u, m, nu, ni, k, seed=3, method=method)
    world = len(cuts) - 1

    def fit(r, part):
        mine = (u >= cuts[r]) & (u < cuts[r + 1])
        lp = lowpass(u[mine], m[mine], nu, ni, k, seed=3, method=method, part=part)
        return lp, from_basis(one.w, u[mine], m[mine], nu, ni, part=part)

    got = _Ranks(world).run(fit, cuts)
    again = from_basis(one.w, u, m, nu, ni)
    for r, (lp, fb) in enumerate(got):
        np.testing.assert_allclose(lp.s, one.s, rtol=1e-5)
        for mine, theirs in ((lp.y, one.y), (lp.a, one.a), (lp.x, one.x[cuts[r]:cuts[r + 1]]),
                             (fb.y, again.y), (fb.x, again.x[cuts[r]:cuts[r + 1]])):
            np.testing.assert_allclose(mine, theirs, atol=2e-5)
    assert all(np.array_equal(got[0][0].w, g[0].w) for g in got)  # rank 0's basis, on every rank


def test_the_krylov_start_of_a_rank_is_one_processs_rows(monkeypatch):
    """_start: any rows of the start are those rows of the whole start (each block of START_BLOCK rows from its own
    seeded stream), within a block, across blocks, at the end; another seed draws another start."""
    from embedrec.training import lowpass as L

    monkeypatch.setattr(L, "START_BLOCK", 64)
    whole = L._start(4, 0, 300, 7)
    assert whole.shape == (300, 7) and whole.dtype == np.float32 and abs(float(whole.std()) - 1) < 0.05
    for lo, rows in ((0, 300), (130, 100), (299, 1), (128, 50), (10, 20), (64, 64), (5, 0)):
        np.testing.assert_array_equal(L._start(4, lo, rows, 7), whole[lo:lo + rows])
    assert not np.array_equal(L._start(5, 0, 300, 7), whole)
    np.testing.assert_array_equal(whole[:64], np.random.default_rng([4, 0]).standard_normal((64, 7), dtype=np.float32))


@pytest.mark.parametrize("nu,ni,k,one,ranks", [
    (943, 1682, 128, "dense", "dense"),  # ML-100K: one process decomposes its users' Gram, the ranks the movies'
    (6040, 3706, 128, "krylov", "krylov"),  # ML-1M: the Krylov blocks (1,008 columns) do not span a side
    (1000, 300, 8, "krylov", "krylov"),  # a red team: the ranks went dense up to 2,048 movies here
    (300, 120, 8, "dense", "dense"),
    (900, 20000, 128, "dense", "krylov"),  # one process's dense side is its users; the movies pass DENSE_MAX
    (20000, 9000, 4096, "krylov", "krylov"),  # a side above DENSE_MAX
])
def test_auto_makes_the_ranks_run_one_processs_method(nu, ni, k, one, ranks):
    from embedrec.training.lowpass import auto_method

    assert auto_method(nu, ni, k) == one and auto_method(nu, ni, k, ranks=True) == ranks


def test_the_spread_on_ranks_is_one_processs():
    """spread with a Part: one process's sample of users, each rank's moments summed: the same s on every rank."""
    from embedrec.training.lowpass import spread

    u, m, nu, ni, k = clustered(nu=1200, ni=60, noise=3000)
    lp = lowpass(u, m, nu, ni, k, seed=0)
    rng = np.random.default_rng(1)
    f = {"user_factors": rng.standard_normal((nu, 5)).astype(np.float32),
         "movie_factors": rng.standard_normal((ni, 5)).astype(np.float32)}
    want = spread(f, lp, seed=2)
    cuts = (0, 700, 1200)

    def one(r, part):
        sl = slice(cuts[r], cuts[r + 1])
        return spread({**f, "user_factors": f["user_factors"][sl]}, lp._replace(x=lp.x[sl]), 2, part)

    got = _Ranks(2).run(one, cuts)
    assert got[0] == got[1] == pytest.approx(want, rel=1e-9)
