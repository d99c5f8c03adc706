"""GF-CF's ideal low-pass term (Shen et al. 2021, "How Powerful is Graph Convolution for Recommendation?") as
factor blocks, computed without scipy: a seeded randomized SVD (Halko, Martinsson and Tropp 2011) of the
normalised binary matrix R~ = D_U^-1/2 R D_I^-1/2 through torch's sparse CSR products.

With W the top-k right singular vectors of R~ (movies x k), the low-pass score of user u and movie i is
r_u D_I^-1/2 W W^T D_I^1/2 e_i = x_u . y_i, where

- a = D_I^-1/2 W (movies x k): a user's block is the sum of a's rows of the movies they rated (x = R a), so a
  new user's block needs no solve;
- x = R a (users x k);
- y = D_I^1/2 W (movies x k).

A movie nobody rated has degree 0, taken as 1 (its rows of a and y are then 0, as R~'s column is 0).
Pure: arrays in, arrays out; torch is imported inside the function. On torchrun's ranks (a :class:`Part`: this
process's users and a sum over every rank) each rank holds its users' rows of R~ and x; every product summed over
the users (the movies' degrees, R~^T R~ Z, the Gram of the Krylov basis, the spread's moments) is summed over the
ranks, so every rank finds the same W, y and a, and its users' rows of one process's x.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from embedrec.sparse import unique

OVERSAMPLE = 16
POWER_ITERS = 6
DENSE_CELLS = 1 << 25  # ... and, where users x movies is at most this, in numpy alone (a float64 R~: 256 MB)
# method auto: a side of at most this many rows is decomposed densely where the Krylov blocks would span it whole
# (a 8192^2 float32 Gram: 256 MB); above EIGH64_MAX rows its eigendecomposition is float32 (_eigh)
DENSE_MAX = 8192
EIGH64_MAX = 2048
GRAM_FLOATS = 1 << 26  # _gram's dense block of A's columns: about this many floats (256 MB)


class LowPass(NamedTuple):
    x: np.ndarray  # users x k, float32: R a
    y: np.ndarray  # movies x k, float32: D_I^1/2 W
    a: np.ndarray  # movies x k, float32: D_I^-1/2 W
    s: np.ndarray  # k, float64: R~'s top singular values, largest first
    w: np.ndarray | None = None  # movies x k, float32: W itself (:func:`from_basis` serves it over other rows)


class Part(NamedTuple):
    """This process's users on torchrun's ranks: rows [lo, lo + rows) of ``n_users`` (the ranks' ranges one after
    the other, in rank order); ``reduce(array)`` sums a numpy array over every rank (a collective: every rank calls
    it in the same order); ``rank`` of ``world``. Rank 0's basis is every rank's (QR and eigendecompositions may
    round apart on other hosts' libraries)."""
    lo: int
    rows: int
    n_users: int
    reduce: Callable
    rank: int
    world: int

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def offset(self, count: int) -> tuple[int, int]:
        """(the sum of ``count`` over the ranks before this one, its sum over every rank): a collective."""
        v = np.zeros(max(int(self.world), 1), np.float64)
        v[int(self.rank)] = count
        v = np.asarray(self.reduce(v), np.float64)
        return int(v[:int(self.rank)].sum()), int(v.sum())


def binary_pairs(users, movies, n_users: int, n_movies: int):
    """The distinct (user, movie) pairs as CSR arrays (indptr, indices) sorted by user then movie."""
    u = np.asarray(users, dtype=np.int64)
    m = np.asarray(movies, dtype=np.int64)
    if u.shape != m.shape:
        raise ValueError(f"users and movies differ in length: {u.size} and {m.size}")
    if u.size and (u.min() < 0 or u.max() >= n_users or m.min() < 0 or m.max() >= n_movies):
        raise ValueError("a user or movie row is out of range")
    key = np.sort(u * n_movies + m)  # sorted, then each key once by its neighbour: np.unique took 4-6 s on the
    if key.size:  # synthetic bench's 2.45M keys with numpy 2.4 (a speed review), this 0.04-0.2 s; the same array
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    ru, rm = np.divmod(key, n_movies)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(ru, minlength=n_users), out=indptr[1:])
    return indptr, rm


def lowpass(users, movies, n_users: int, n_movies: int, k: int = 128, *, seed: int = 0,
            oversample: int = OVERSAMPLE, power_iters: int = POWER_ITERS, method: str = "auto",
            threads: int | None = None, part: Part | None = None) -> LowPass:
    """The low-pass blocks (x, y, a) and singular values of the training pairs ``(users, movies)`` (0-based rows;
    a pair given twice counts once). ``k`` is capped at min(n_users, n_movies). Deterministic for a seed and
    thread count: the random start is drawn by numpy's ``default_rng(seed)``.

    ``method``: "auto" (default) is "dense" where the smaller side is at most DENSE_MAX and the Krylov blocks would
    be as wide as it (ML-100K's 943 users: an exact eigendecomposition of the smaller side's Gram), else "krylov": a randomized block Krylov method (Musco and Musco 2015): the blocks
    R~^T O, (R~^T R~) R~^T O, ... (``power_iters`` + 1 of them, each k + ``oversample`` wide, each
    re-orthonormalised), then the best rank-k approximation within their span (Rayleigh-Ritz); it holds a
    users x (power_iters + 1)(k + oversample) block at the end. "subspace": subspace (power) iteration on a
    k + ``oversample`` block, cheaper in memory, far less accurate where R~'s spectrum is flat around k.

    ``part`` (torchrun's ranks): ``users`` are this rank's, rows [part.lo, part.lo + part.rows) of ``n_users``;
    x is returned for them alone. The dense method decomposes the movies' Gram there (summed over the ranks), where
    the movies are at most DENSE_MAX and the Krylov blocks would span them or they are at most EIGH64_MAX; the
    Krylov method draws one process's start and keeps its rows; no subspace method."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if method not in ("auto", "krylov", "subspace", "dense"):
        raise ValueError(f"method is auto, krylov, subspace or dense, not {method!r}")
    if part is not None and method == "subspace":
        raise ValueError("the subspace method runs in one process only")
    k = min(k, n_users, n_movies)
    lo, mine = (0, n_users) if part is None else (int(part.lo), int(part.rows))
    indptr, idx = binary_pairs(np.asarray(users, dtype=np.int64) - lo, movies, mine, n_movies)
    du = np.diff(indptr).astype(np.float64)
    di = np.bincount(idx, minlength=n_movies).astype(np.float64)
    if part is not None:
        di = np.asarray(part.reduce(di), np.float64)
    su = 1 / np.sqrt(np.maximum(du, 1))
    si = 1 / np.sqrt(np.maximum(di, 1))
    rows = np.repeat(np.arange(mine), np.diff(indptr))
    vals = (su[rows] * si[idx]).astype(np.float32)
    if method == "auto":
        method = auto_method(n_users, n_movies, k, oversample, power_iters, part is not None)
    if method == "dense" and n_users * n_movies <= DENSE_CELLS and part is None:
        # numpy alone: no torch import (ML-100K's train paid seconds for one), on one BLAS thread: ML-100K's eigh
        # took 0.74 s on one, 4.2 s on two at load 5 (OpenBLAS's threads spin on a busy box)
        from embedrec.threads import blas_threads

        with blas_threads(1):
            W, lam, R = _dense_numpy(rows, idx, vals, n_users, n_movies, k)
            W = _signed(W, di)
            a = (W * si[:, None]).astype(np.float32)
            x = (R != 0).astype(np.float32) @ a  # R a
        y = (W / si[:, None]).astype(np.float32)
        return LowPass(x, y, a, np.sqrt(np.maximum(lam, 0)), W.astype(np.float32))
    W, lam, a, x = _torch_blocks(indptr, idx, rows, vals, di, si, mine, n_movies, k, oversample, power_iters,
                                 method, seed, threads, part)
    y = (W / si[:, None]).astype(np.float32)
    return LowPass(x.astype(np.float32), y, a, np.sqrt(np.maximum(lam, 0)), W.astype(np.float32))


def auto_method(n_users: int, n_movies: int, k: int, oversample: int = OVERSAMPLE, power_iters: int = POWER_ITERS,
                ranks: bool = False) -> str:
    """What method "auto" is: "dense" where the smaller side has at most DENSE_MAX rows and the Krylov blocks
    ((power_iters + 1) x (k + oversample) columns) would span it whole (its dense Gram is cheaper, and exact), else
    "krylov". On torchrun's ranks (``ranks``) the same choice, the dense Gram being the movies' (the users' would
    cross the ranks; the top-k subspace is the same), and "krylov" where one process's dense side is its users
    and the movies pass DENSE_MAX: so the ranks make one process's block, an exact SVD where it makes one (a red
    team: the ranks went dense up to 2,048 movies where one process ran the Krylov method, 2.5e-3 apart in a)."""
    span = (power_iters + 1) * (k + max(oversample, 0))
    side = min(n_users, n_movies)
    if side > DENSE_MAX or side > span:
        return "krylov"
    return "dense" if not ranks or n_movies <= DENSE_MAX else "krylov"


def from_basis(W: np.ndarray, users, movies, n_users: int, n_movies: int, part: Part | None = None) -> LowPass:
    """The blocks of the pairs ``(users, movies)`` over a basis ``W`` (movies x k) found on other rows, weighed by
    these rows' movie degrees: a = D_I^-1/2 W, y = D_I^1/2 W, x = R a (a movie without a pair here: 0), and no
    singular values (empty). What the refit on train+valid serves from the selection's W: the second SVD took
    13-63 s on the synthetic 100K x 20K set at load 5-8, and c was chosen on this W. ``part``: as
    :func:`lowpass`'s (the degrees summed over the ranks, x of this rank's users)."""
    lo, n_users = (0, n_users) if part is None else (int(part.lo), int(part.rows))
    indptr, idx = binary_pairs(np.asarray(users, dtype=np.int64) - lo, movies, n_users, n_movies)
    di = np.bincount(idx, minlength=n_movies).astype(np.float64)
    if part is not None:
        di = np.asarray(part.reduce(di), np.float64)
    si = 1 / np.sqrt(np.maximum(di, 1))
    W = np.where((di > 0)[:, None], np.asarray(W, np.float64), 0.0)
    a = (W * si[:, None]).astype(np.float32)
    x = np.zeros((n_users, a.shape[1]), np.float32)
    counts = np.diff(indptr)
    step = max(1, BASIS_BLOCK // max(a.shape[1], 1))  # about BASIS_BLOCK floats of a's rows at a time
    u = 0
    while u < n_users:  # users in blocks of about ``step`` pairs, each block's rows summed per user
        e = int(np.searchsorted(indptr, indptr[u] + step, side="right")) - 1
        e = min(max(e, u + 1), n_users)
        lo, hi = int(indptr[u]), int(indptr[e])
        have = np.flatnonzero(counts[u:e] > 0)
        if have.size:
            x[u + have] = np.add.reduceat(a[idx[lo:hi]], (indptr[u:e][have] - lo).astype(np.int64), axis=0)
        u = e
    return LowPass(x, (W / si[:, None]).astype(np.float32), a, np.zeros(0), W.astype(np.float32))


def _signed(W: np.ndarray, di: np.ndarray) -> np.ndarray:
    """W with a fixed sign per column (its largest entry positive), so that equal inputs give equal blocks, and R~'s
    zero columns 0 (only a singular value of 0, k at R~'s rank or above, reaches them)."""
    pick = np.abs(W).argmax(0)
    W = W * np.sign(W[pick, np.arange(W.shape[1])])
    W[di == 0] = 0
    return W


def _dense_numpy(rows, idx, vals, n_users, n_movies, k):
    """The exact top-k (W, eigenvalues) from the dense Gram of the smaller side, in float64, numpy only, and the
    dense R~."""
    R = np.zeros((n_users, n_movies), np.float64)
    R[rows, idx] = vals
    if n_movies <= n_users:
        lam, E = np.linalg.eigh(R.T @ R)
        return E[:, ::-1][:, :k].copy(), lam[::-1][:k].copy(), R
    lam, E = np.linalg.eigh(R @ R.T)
    lam, E = lam[::-1][:k].copy(), E[:, ::-1][:, :k]
    s = np.sqrt(np.maximum(lam, 0))
    W = R.T @ E  # R~^T u_j = s_j w_j
    keep = s > 1e-6 * max(float(s[0]), 1e-30)
    W = np.where(keep[None, :], W / np.where(keep, s, 1.0)[None, :], 0.0)
    return W, lam, R


def _torch_blocks(indptr, idx, rows, vals, di, si, n_users, n_movies, k, oversample, power_iters, method, seed,
                  threads, part: Part | None = None):
    """(W, eigenvalues, a, x) through torch's sparse CSR products (the Krylov, subspace or dense-Gram method);
    ``n_users``: the rows of ``indptr`` (this rank's with ``part``)."""
    import warnings

    import torch

    red = None if part is None else (lambda t: torch.from_numpy(np.ascontiguousarray(part.reduce(t.numpy()))))

    # R~ (users x movies) and R~^T (movies x users), each as CSR: a CSR times a dense block is torch's fast path
    order = np.argsort(idx, kind="stable")
    tptr = np.zeros(n_movies + 1, np.int64)
    np.cumsum(np.bincount(idx, minlength=n_movies), out=tptr[1:])  # (these rows' own: di sums every rank's)
    with warnings.catch_warnings():  # torch's "sparse CSR is in beta"
        warnings.simplefilter("ignore", UserWarning)
        A = torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(idx), torch.from_numpy(vals),
                                    size=(n_users, n_movies), check_invariants=False)
        At = torch.sparse_csr_tensor(torch.from_numpy(tptr), torch.from_numpy(rows[order]),
                                     torch.from_numpy(vals[order]), size=(n_movies, n_users), check_invariants=False)
        ones = torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(idx),
                                       torch.ones(idx.size, dtype=torch.float32), size=(n_users, n_movies),
                                       check_invariants=False)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if method == "dense":
            W, lam = _dense(A, At, n_users, n_movies, k, red)
        elif method == "krylov":
            W, lam = _block_krylov(A, At, n_users, n_movies, k, oversample, power_iters, seed, part, red)
        else:
            W, lam = _subspace(A, At, n_users, n_movies, k, oversample, power_iters, seed)
        W, lam = W.numpy(), lam.numpy()
        if part is not None:  # rank 0's, on every rank
            W, lam = (np.asarray(part.reduce(v if part.leader else np.zeros_like(v))) for v in (W, lam))
        W = _signed(W, di)
        a = (W * si[:, None]).astype(np.float32)
        x = (ones @ torch.from_numpy(a)).numpy()  # R a (float32: a float64 copy at 1M users x 128 is 1 GB)
    finally:
        if threads:
            torch.set_num_threads(before)
    return W, lam, a, x


def _qr(X):
    import torch

    return torch.linalg.qr(X).Q


def _top_k_in(A, K, k, At=None, chunk: int = 256, red=None):
    """(W, eigenvalues) of the best rank-k approximation of A within the span of K's orthonormal columns: the
    top-k eigenpairs of (A K)^T (A K), in float64, largest first. With ``At`` (A's transpose as CSR) that Gram is
    K^T (A^T (A K)), made ``chunk`` columns of K at a time: no users x K-wide block (at 1M users and 7 x 144
    columns, 4 GB in float32 and 8 GB in float64). ``red``: the Gram summed over torchrun's ranks."""
    import torch

    if At is None:
        B = (A @ K).double()
        G = B.T @ B
    else:
        G = torch.empty(K.shape[1], K.shape[1], dtype=torch.float64)
        for s in range(0, K.shape[1], chunk):  # (float32 products: the same subspace as float64's, 30% faster)
            G[:, s:s + chunk] = (K.T @ (At @ (A @ K[:, s:s + chunk].contiguous()))).double()
    if red is not None:
        G = red(G)
    if At is not None:
        G = (G + G.T) / 2
    lam, E = _eigh(G)
    return K.double() @ E[:, :k], lam[:k]


def _gram(A, At, n: int, other: int, red=None):
    """The dense n x n Gram At @ A (float32) of A (other x n, CSR; At its transpose), a chunk of columns at a time:
    A times a chunk of the identity is that chunk of A's columns as a dense other x chunk block, about
    GRAM_FLOATS floats (a whole one at 20,000 users x 5,000 movies: 400 MB)."""
    import torch

    G = torch.empty(n, n, dtype=torch.float32)
    step = max(1, min(n, GRAM_FLOATS // max(other, 1)))
    for s in range(0, n, step):
        e = min(n, s + step)
        E = torch.zeros(n, e - s, dtype=torch.float32)
        E[torch.arange(s, e), torch.arange(e - s)] = 1.0
        G[:, s:e] = At @ (A @ E)
    if red is not None:  # the other side's rows on every rank: their sum
        G = red(G)
    return (G + G.T) / 2


def _eigh(G):
    """(eigenvalues, eigenvectors) of the symmetric ``G``, descending: float64 up to EIGH64_MAX rows, else float32
    (a random 5,000-row Gram at load 3.9: 27 s against 65 s; the block needs the top-k subspace, which R~'s gap
    at k keeps far above float32's error: its eigenvalues are at most 1; the 1,000-taste set's valid scores at
    1,024 columns were the same to 4 digits as with the float64 Krylov SVD). Above EIGH64_MAX rows on no more
    threads than the cores other processes leave free (:func:`eigh_threads`)."""
    import torch

    if G.shape[0] <= EIGH64_MAX:
        lam, E = torch.linalg.eigh(G.double())
        return lam.flip(0).double(), E.flip(1).double()
    from embedrec.threads import available_cpus, other_load

    before = torch.get_num_threads()
    torch.set_num_threads(eigh_threads(before, available_cpus(), other_load() if before > 1 else 0.0))
    try:
        lam, E = torch.linalg.eigh(G.float())
    finally:
        torch.set_num_threads(before)
    return lam.flip(0).double(), E.flip(1).double()


def eigh_threads(threads: int, cpus: int, other: float) -> int:
    """The threads of a large eigendecomposition: ``threads``, at most the ``cpus`` less the ``other`` processes'
    load (rounded down), at least 1. LAPACK's threads spin: the 1,000-taste set's 5,000-row decomposition took
    55-84 s on two threads with two other tasks running (load 3.5-4.7) and 31-37 s at load 3 against 17-20 s on
    one; at load 1.6, 4.3 s on two against 8.3 s on one (BENCHMARKS.md, session 61)."""
    import math

    return max(1, min(int(threads), int(math.floor(int(cpus) - max(0.0, float(other))))))


def _dense(A, At, n_users, n_movies, k, red=None):
    """The exact top-k (W, eigenvalues) from the dense Gram of the smaller side (the movies' on torchrun's ranks,
    ``red`` summing it over them)."""
    import torch

    if n_movies <= n_users or red is not None:
        lam, E = _eigh(_gram(A, At, n_movies, n_users, red))  # R~^T R~
        return E[:, :k], lam[:k]
    lam, E = _eigh(_gram(At, A, n_users, n_movies))  # R~ R~^T
    lam, E = lam[:k], E[:, :k]
    s = lam.clamp(min=0).sqrt()
    W = (At @ E.float()).double()  # R~^T u_j = s_j w_j
    keep = s > 1e-6 * max(float(s[0]), 1e-30)
    W = torch.where(keep[None, :], W / torch.where(keep, s, 1.0)[None, :], torch.zeros_like(W))
    return W, lam


def _subspace(A, At, n_users, n_movies, k, oversample, power_iters, seed):
    import torch

    ell = min(k + max(oversample, 0), n_users, n_movies)
    omega = torch.from_numpy(_start(seed, 0, n_users, ell))
    Q = _qr(At @ omega)
    for _ in range(power_iters):
        Q = _qr(At @ _qr(A @ Q))
    return _top_k_in(A, Q, k)


def _block_krylov(A, At, n_users, n_movies, k, oversample, power_iters, seed, part: Part | None = None, red=None):
    import torch

    total = n_users if part is None else int(part.n_users)
    ell = min(k + max(oversample, 0), total, n_movies)
    omega = torch.from_numpy(_start(seed, 0 if part is None else int(part.lo), n_users, ell))
    Z = At @ omega
    Z = _qr(Z if red is None else red(Z))
    blocks = [Z]
    for _ in range(power_iters):
        if sum(b.shape[1] for b in blocks) >= n_movies:
            break
        Z = At @ (A @ Z)  # (R~'s singular values are at most 1: no users-side QR needed between the products)
        Z = _qr(Z if red is None else red(Z))
        blocks.append(Z)
    K = torch.cat(blocks, 1)
    del blocks
    # float32: on the synthetic 100K x 20K set the same subspace as a float64 QR and float64 Gram (median cosine of
    # the principal angles 0.9999996, top-10 overlap of the low-pass scores 0.996) in 7.6-8.5 s against 11.4-12.3 s
    K = _qr(K) if K.shape[1] <= n_movies else _qr(K[:, :n_movies])
    return _top_k_in(A, K, k, At, red=red)


# the Gaussian start is drawn in blocks of this many users' rows, block b from its own stream default_rng([seed, b]):
# a part of the draw (another value draws another start), so that a rank draws its own rows alone (one stream
# replayed up to a rank's first row took 8.3 s at 2M users x 144 columns: a red team)
START_BLOCK = 1 << 16


def _start(seed: int, lo: int, rows: int, ell: int) -> np.ndarray:
    """Rows [lo, lo + rows) of the users x ``ell`` Gaussian start (float32), the same rows whichever process
    draws them: each block of :data:`START_BLOCK` rows from its own seeded stream."""
    out = np.empty((rows, ell), np.float32)
    b = lo // START_BLOCK
    while b * START_BLOCK < lo + rows:
        first = b * START_BLOCK
        block = np.random.default_rng([int(seed), b]).standard_normal((START_BLOCK, ell), dtype=np.float32)
        s, e = max(lo, first), min(lo + rows, first + START_BLOCK)
        out[s - lo:e - lo] = block[s - first:e - first]
        b += 1
    return out


def user_block(a: np.ndarray, movies) -> np.ndarray:
    """A user's low-pass block from the movies they rated (0-based rows, a repeat counts once): the sum of a's
    rows. This is how a new user is folded in: no solve."""
    m = unique(np.asarray(movies, dtype=np.int64))
    return a[m].sum(0, dtype=np.float64).astype(np.float32)


# ---- the block in an als model (train.als_lowpass): what train chooses on valid and serves ----------------------

# train.als_lowpass auto's weights c of the block, relative to the model's own scores (the block's scores are scaled
# to the model's spread first, :func:`spread`). On two draws of a synthetic 100K x 20K x 3.5M log valid NDCG@10 at
# c 0.5-5 lay within 0.4% of each other and 5-6% above the model alone (test +0.0125, SE 0.0003); on ML-100K every
# c above 0.1 lost on valid (BENCHMARKS.md, session 59)
CS = (0.05, 0.2, 0.5, 1.0, 2.0)
# the relative valid gain the best c must pass, and its paired standard errors. The paired test decides where
# valid's noise is the question: on ML-100K's ten random seeds and time split it kept every block off that test did
# not confirm (z 1.6 at +1.00% on seed 4: -0.0004, SE 0.0012); the margin says a block that doubles the served
# columns must gain at least this much. It was 1% (sessions 60-61): on ML-1M's random split that refused blocks
# valid scored +0.73% to +0.99% at 2.4 to 2.9 paired SE, which gained on test on each of four seeds (+0.0019 to
# +0.0042, SE 0.0006-0.0007); at 0.5% ML-100K's choices are unchanged (a helper's screen reading those test
# figures, BENCHMARKS.md, session 62)
MARGIN = 0.005
Z = 2.0
SPREAD_USERS = 500  # the seeded sample of trained users the two score spreads are measured on
DEFAULT_K = 128  # the block's columns where train.als_lowpass_k auto has nothing to widen it for (widths())
BASIS_BLOCK = 1 << 22  # from_basis sums a's rows over about this many floats at a time
# auto tries no block above this many training pairs (as train.als_dims auto: the 100M run keeps its time) or where
# the SVD's working set (:func:`working_bytes`) would pass MAX_BYTES
MAX_PAIRS = 25_000_000
MAX_BYTES = 2 << 30
MAX_K = 4096  # train.als_lowpass_k's bound (config_sections)


def working_bytes(n_users: int, n_movies: int, k: int) -> int:
    """About the bytes the block's SVD holds at once: the Krylov blocks over the movies (float32, their float64
    QR and a float32 copy) and, over the users, one block product and x (float32)."""
    ell = k + OVERSAMPLE
    return int(n_movies) * (POWER_ITERS + 1) * ell * 16 + int(n_users) * (ell + k) * 4


def too_large(nnz: int, n_users: int, n_movies: int, k: int) -> str | None:
    """Why auto makes no block here (too many pairs, or too many bytes), or None."""
    if nnz > MAX_PAIRS:
        return f"{nnz:,} training pairs, above the {MAX_PAIRS:,} auto makes a block for (its SVD's time)"
    got = working_bytes(n_users, n_movies, k)
    if got > MAX_BYTES:
        return f"its SVD would hold about {got / 2**30:.1f} GiB, above the {MAX_BYTES / 2**30:g} GiB auto allows"
    return None


def block_k(train_cfg, n_users: int, n_movies: int) -> int:
    """The block's columns: train.als_lowpass_k (auto: :data:`DEFAULT_K`, what a block made without a choice of
    its width has), at most min(users, movies)."""
    k = train_cfg.als_lowpass_k
    return max(1, min(DEFAULT_K if k == "auto" else int(k), int(n_users), int(n_movies)))


def widths(train_cfg, n_users: int, n_movies: int, dim: int, base_dim: int) -> tuple[int, ...]:
    """The block's widths auto scores on valid, narrowest first: train.als_lowpass_k as a number alone (at most
    min(users, movies)); ``auto``: :data:`DEFAULT_K`, and where train.als_dims chose a dimension ``dim`` above
    the config's ``base_dim`` (the data asked the factors for more rank), DEFAULT_K x 2, x 4, ... up to 2 x
    ``dim``, each at most min(users, movies) and within :data:`MAX_BYTES` of SVD working set. One SVD at the
    widest serves them all (:func:`prefix`), so a set that keeps model.dim pays nothing more. On 1,000 tastes over
    5,000 movies (als_dims chose 512) the block at 128 columns lost on valid at every weight and the model lost
    to EASE (-0.0209, SE 0.0009); auto chose 1,024 and won (+0.0139, SE 0.0006; BENCHMARKS.md, session 61). On
    ML-100K and ML-1M no width above 128 gained on valid (a helper's screen, benchmarks/widths.py)."""
    rank = max(1, min(int(n_users), int(n_movies)))
    if train_cfg.als_lowpass_k != "auto":
        return (min(int(train_cfg.als_lowpass_k), rank),)
    out = [min(DEFAULT_K, rank)]
    while int(dim) > int(base_dim) and out[-1] * 2 <= min(2 * int(dim), rank, MAX_K) \
            and working_bytes(n_users, n_movies, out[-1] * 2) <= MAX_BYTES:
        out.append(out[-1] * 2)
    return tuple(out)


def prefix(lp: LowPass, k: int) -> LowPass:
    """``lp``'s first ``k`` columns: the block of the top k singular vectors (the SVD's columns are ordered
    largest first, so a wider decomposition holds every narrower one). Copies where ``k`` is narrower, so a kept
    prefix does not hold the wide arrays (users x 1,024 floats) alive; ``lp`` itself where it is as wide."""
    k = int(k)
    if k >= lp.y.shape[1]:
        return lp
    cut = np.ascontiguousarray
    return LowPass(cut(lp.x[:, :k]), cut(lp.y[:, :k]), cut(lp.a[:, :k]), lp.s[:k].copy(),
                   None if lp.w is None else cut(lp.w[:, :k]))


def of_rows(tr, n_users: int, n_movies: int, train_cfg, threads: int | None = None, k: int | None = None,
            part: Part | None = None) -> LowPass:
    """:func:`lowpass` of a split's rows ``tr`` (every pair, whatever its rating), seeded by train.seed, ``k``
    columns wide (default :func:`block_k`); ``part``: this rank's rows (:class:`Part`)."""
    return lowpass(tr.user, tr.movie, n_users, n_movies, block_k(train_cfg, n_users, n_movies) if k is None else k,
                   seed=int(train_cfg.seed), threads=threads, part=part)


def _moments(P: np.ndarray, Q: np.ndarray) -> tuple[float, float]:
    """The sums over the users ``P`` of the mean square and the mean of their scores p . q over every movie of
    ``Q``, through Q^T Q (no users x movies matrix: 500 x 500K would be 1 GB)."""
    from embedrec.training.trend import gram_mean

    G, mean = gram_mean(Q)
    P = np.asarray(P, np.float64)
    m = max(Q.shape[0], 1)
    return float(((P @ (G / m)) * P).sum()), float((P @ mean).sum())


def _spread(second: float, first: float, n: int) -> float:
    """The std of the scores from :func:`_moments`' sums over ``n`` users."""
    second, first = second / max(n, 1), first / max(n, 1)
    return float(np.sqrt(max(second - first * first, 0.0)))


def spread(f: dict, lp: LowPass, seed: int, part: Part | None = None) -> float:
    """s: the std of the model's scores over the std of the block's, on a seeded sample of :data:`SPREAD_USERS`
    users with a nonzero block (a trained user), so that weight c = 1 puts the two on one scale. 1 where either
    is 0. ``part`` (torchrun's ranks: ``f``'s users and ``lp.x`` this rank's rows): the same sample as one
    process's, each rank's sums added, the same s on every rank."""
    users = np.flatnonzero(np.abs(lp.x).sum(1) > 0)  # (this rank's rows on ranks: the ranks' users in order)
    before, total = (0, users.size) if part is None else part.offset(users.size)
    if total == 0:
        return 1.0
    n = min(SPREAD_USERS, total)
    # one process's rng.choice(users, n) draws these positions in the list of users (every rank's, in order)
    at = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    pick = users[at[(at >= before) & (at < before + users.size)] - before]
    sums = np.array([*_moments(np.asarray(f["user_factors"])[pick], np.asarray(f["movie_factors"])),
                     *_moments(lp.x[pick], lp.y)])
    if part is not None:
        sums = np.asarray(part.reduce(sums), np.float64)
    model, block = _spread(sums[0], sums[1], n), _spread(sums[2], sums[3], n)
    return model / block if model > 0 and block > 0 else 1.0


def with_block(f: dict, lp: LowPass, c: float, s: float) -> dict:
    """``f`` (an als model's factors) with the block as k more columns: U' = [U, c s x], V' = [V, y]; one dot
    product still scores it (the index, predict and the exports read it unchanged). ``lowpass_a`` (a, for a new
    user's block, run_layout.LOWPASS_A) and ``lowpass`` (the manifest's record: k, c, spread, weight, d) go with
    it. ``f`` itself is left as it is."""
    U, V = np.asarray(f["user_factors"], np.float32), np.asarray(f["movie_factors"], np.float32)
    w = float(c) * float(s)
    return {**f, "user_factors": np.hstack([U, (np.float32(w) * lp.x).astype(np.float32)]),
            "movie_factors": np.hstack([V, lp.y.astype(np.float32)]), "lowpass_a": lp.a.astype(np.float32),
            "lowpass": {"k": int(lp.y.shape[1]), "c": float(c), "spread": float(s), "weight": w,
                        "d": int(V.shape[1])}}


def weight_of(train_cfg) -> float:
    """c as train.als_lowpass gives it (auto outside a selection: 0, off)."""
    c = train_cfg.als_lowpass
    return 0.0 if c == "auto" else float(c)


def served(f: dict, ds, train_cfg, threads: int | None = None, basis: np.ndarray | None = None) -> dict:
    """The served factors: ``f`` with the block at train.als_lowpass c over ``ds``'s train rows (the final
    fit's: train+valid after a refit), its spread measured on ``f``; ``f`` itself at c 0. ``basis``: the W the
    selection found (:func:`from_basis`: no second SVD), else the SVD of these rows."""
    c = weight_of(train_cfg)
    tr = ds.splits["train"]
    if c <= 0 or len(tr) == 0:
        return f
    lp = of_rows(tr, ds.n_users, ds.n_movies, train_cfg, threads) if basis is None else \
        from_basis(basis, tr.user, tr.movie, ds.n_users, ds.n_movies)
    return with_block(f, lp, c, spread(f, lp, int(train_cfg.seed)))


def choose(f: dict, lp: LowPass, on_valid, metric: str, higher: bool, given, seed: int,
           paired=None, ks: tuple[int, ...] | None = None, part: Part | None = None) -> tuple[float, float, dict]:
    """(c, s, detail) on the selection's factors ``f`` and the block ``lp`` of its train rows; ``on_valid(f) ->
    metrics``. auto (``given``): every c of :data:`CS` at each width of ``ks`` (:func:`widths`; default lp's
    own; each a :func:`prefix` of ``lp``), the best (width, c) kept where it beats the model alone by
    :data:`MARGIN` and (``paired(fa, fb) -> (mean, se)`` or None) by :data:`Z` paired standard errors; else 0.
    A number: that c. ``detail``: the valid scores by c at the width chosen (the narrowest where none is), that
    width ``k``, its s, the model alone's score, and with more than one width every width's scores ``widths``
    (metrics.json's selection). ``s`` is the spread at detail's ``k``. ``part``: :func:`spread`'s (torchrun's
    ranks; ``on_valid`` and ``paired`` are then collectives too)."""
    full = int(lp.y.shape[1])
    ks = tuple(int(k) for k in (ks or (full,)) if 0 < int(k) <= full) or (full,)
    if given != "auto":
        s = spread(f, prefix(lp, ks[0]), seed, part)
        return float(given), s, {"c": float(given), "spread": s, "k": ks[0]}
    base = float(on_valid(f).get(metric, float("nan")))
    tried, spreads = {}, {}
    for k in ks:
        block = prefix(lp, k)
        spreads[k] = spread(f, block, seed, part)
        for c in CS:
            tried[k, c] = float(on_valid(with_block(f, block, c, spreads[k])).get(metric, float("nan")))
    finite = [kc for kc in tried if np.isfinite(tried[kc])]
    best = max(finite, key=lambda kc: tried[kc] if higher else -tried[kc]) if finite else (ks[0], CS[0])
    k = best[0] if finite and np.isfinite(base) else ks[0]
    detail = {"alone": base, "valid": {f"{c:g}": tried[k, c] for c in CS}, "spread": spreads[k], "k": k}
    if len(ks) > 1:
        detail["widths"] = {str(w): {f"{c:g}": tried[w, c] for c in CS} for w in ks}
    if not finite or not np.isfinite(base):
        return 0.0, spreads[k], {**detail, "c": 0.0}
    clear = tried[best] > base * (1 + MARGIN) if higher else tried[best] < base * (1 - MARGIN)
    if clear and paired is not None:
        got = paired(with_block(f, prefix(lp, k), best[1], spreads[k]), f)
        if got is not None:
            mean, se = got
            detail["paired"] = {"mean": mean, "se": se}
            clear = mean > Z * se if higher else mean < -Z * se
    return (best[1] if clear else 0.0), spreads[k], {**detail, "c": best[1] if clear else 0.0, "best": best[1]}
