"""``model.loss: als``: implicit alternating least squares, the default ranking trainer.

The model is the plain matrix factorization (``score(u, m) = <p_u, q_m>``, no biases); ALS fits it to the
iALS objective (Hu, Koren & Volinsky 2008, in the form and with the frequency-scaled regularisation of
Rendle et al. 2021, "Revisiting the performance of iALS on item recommendation benchmarks")::

    sum_{(u,m) rated} (1 - p_u.q_m)^2  +  a0 * sum_{all u, m} (p_u.q_m)^2
      + reg * sum_u (n_u + a0 * n_movies)^nu |p_u|^2  +  reg * sum_m (n_m + a0 * n_users)^nu |q_m|^2

with a0 = ``train.als_unobserved``, reg = ``train.als_reg``, nu = ``train.als_reg_exponent``. a0 ``auto`` is
the square root of the training matrix's density, less on very sparse data (see :func:`auto_unobserved`). One epoch
solves every user's vector with the movies fixed, then every movie's with the users fixed. Each solve is a
few conjugate-gradient steps warm-started from the current vector (``train.als_cg_steps``), as implicit's ALS
does: the a0 term needs only the d x d Gramian G = a0 Q^T Q, so a row costs O(d^2 + n_u d) per step and no
d x d system is ever formed per user.

Two engines compute the same steps: the C kernel (``kernels/mf_sgd.c``, ``als_cg``, rows split over threads;
needs a C compiler, like hogwild; its CG recurrences in double, its products over the rated rows in float32)
and a torch fallback that runs the CG steps for all rows at once with sparse-dense products, in float32 (used
on a GPU and when no compiler is found; several times slower on the CPU): their factors differ by float32's
rounding as a few CG steps amplify it (4e-3 at 6 steps on an ML-100K users' re-solve). A run is deterministic
with either engine and any number of threads (each row's solve reads only the other side's table).

On the CPU with the C kernel, the tables are plain numpy arrays (:class:`Tables`, initialised with the same
numbers as the torch model's ``normal_`` draws), so the default ``train`` never imports torch (about 1.5-4 s of
a fresh process here); the torch engine, a GPU and the sharded trainer use the torch model.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import warnings
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import ConfigError, TrainingError
from embedrec.sparse import lex_order, unique
from embedrec.threads import blas_threads

if TYPE_CHECKING:  # annotations only: no import at run time
    import torch

    from embedrec.config import TrainConfig
    from embedrec.model.mf import MatrixFactorization

log = logging.getLogger("embedrec")
ROWS_PER_THREAD = 2_000  # below this a thread's start costs more than it saves
# the rows one call of the kernel solves: a half-sweep's count of rows solved moves at least this often (each call
# adds its rows' objective to the last one's, so the total is the one call's, to the bit)
SOLVE_ROWS = 8_192
POLL_S = 0.1  # how often a count of rows solved on the kernel's threads is read
# a half-sweep's bar (its rows solved) shows only once it has run this long: an epoch of a small set draws none
ROWS_BAR_DELAY = 1.0


def _csr(rows: np.ndarray, cols: np.ndarray, n_rows: int, weights: np.ndarray | None = None):
    """(indptr int64, indices int32, weights float32 or None) of the rows -> cols lists, duplicates kept once."""
    width = np.int64(max(int(cols.max(initial=0)) + 1, 1))
    key = rows.astype(np.int64) * width + cols
    if weights is None:
        key = np.sort(key)  # np.sort + diff: numpy 2's np.unique is ~20x slower here
    else:
        order = lex_order(rows, cols)
        key, weights = key[order], weights[order]
    if key.size:
        first = np.concatenate([[True], key[1:] != key[:-1]])
        key = key[first]
        weights = None if weights is None else np.ascontiguousarray(weights[first], dtype=np.float32)
    r, c = key // width, key % width
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(r, minlength=n_rows), out=indptr[1:])
    return indptr, c.astype(np.int32), weights


SPARSE_RATIO = 36.0  # a0 * n_movies at most this many times the mean user's ratings (auto_unobserved)


def auto_unobserved(nnz: int, n_users: int, n_movies: int) -> float:
    """a0 = min(sqrt(density), SPARSE_RATIO * density), within [0.001, 1].

    The best a0 moves with the density: measured on validation, ML-100K (density 4.5% in train) is best at
    0.1-0.3 and a taste-dependent synthetic set of 100K users x 20K movies (density 0.14%) at 0.03-0.05, where
    0.3 collapses to the most-popular list; sqrt(density) gives 0.21 and 0.037 (BENCHMARKS.md). Below a density
    of 1 / SPARSE_RATIO^2 (0.08%: large sparse catalogues) sqrt(density) gives the unobserved movies too much
    weight against a user's own ratings and the lists drift to the popular ones: there a0 keeps each user's
    unobserved weight, a0 * n_movies, at SPARSE_RATIO times the mean user's ratings (measured on test NDCG@10 of
    two synthetic sets of that sparsity, 200K x 500K and 400K x 200K with 20M ratings: +12% and +7.5% over
    sqrt(density); BENCHMARKS.md, session 10)."""
    density = nnz / max(float(n_users) * float(n_movies), 1.0)
    return float(min(1.0, max(0.001, min(density ** 0.5, SPARSE_RATIO * density))))


AUTO_REGS = (0.01, 0.02)  # train.als_reg: auto tries each and keeps the better on valid (training.select.fit_selecting)
# train.als_user_unobserved: auto re-solves the selected model's users with a0 times each and keeps the best on
# valid (training.select.choose_user_unobserved; BENCHMARKS.md, session 12); at 1 too, as every als fit ends
# (session 37: an epoch solves the movies last, so the fitted users lagged them)
USER_SCALES = (1.0, 0.5, 2.0, 4.0)
USER_STEPS = 6  # CG steps of that re-solve, from the fitted vectors (12 x 2 gave the same lists on ML-100K)


def reg_weights(counts: np.ndarray, n_other: int, a0: float, cfg: TrainConfig) -> np.ndarray:
    """reg * (n + a0 * n_other)^nu for each row (Rendle et al.'s frequency-scaled L2)."""
    base = counts.astype(np.float64) + a0 * n_other
    reg = AUTO_REGS[0] if cfg.als_reg == "auto" else cfg.als_reg
    return (reg * np.power(np.maximum(base, 1e-12), cfg.als_reg_exponent)).astype(np.float32)


def user_solve(train_cfg, nnz: int, n_users: int, n_movies: int, timed: bool) -> dict:
    """What an als fit's user solve was ({"loss": "als", "a0", "user_unobserved", "reg", "reg_exponent",
    "recency"}), for a run's manifest (``training_ratings.solve``, which serve.foldin.fold_in repeats for a new
    user): the unobserved weight a0 (auto: auto_unobserved of the ``nnz`` training pairs), the users' scale of it
    (train.als_user_unobserved), the L2 (train.als_reg, its exponent), the recency weight g and the recent
    popularity's weight (training.trend: a vector divided by its scores' std; both 0 when the training ratings had
    no times, ``timed``), each ``auto`` as the selection chose it."""
    a0 = auto_unobserved(nnz, n_users, n_movies) if train_cfg.als_unobserved == "auto" \
        else float(train_cfg.als_unobserved)
    reg = AUTO_REGS[0] if train_cfg.als_reg == "auto" else float(train_cfg.als_reg)
    scale = train_cfg.als_user_unobserved
    scale = USER_SCALES[0] if scale == "auto" else float(scale)
    g = train_cfg.als_recency
    g = 0.0 if not timed else RECENCY if g == "auto" else float(g)
    trend = 0.0 if train_cfg.als_trend == "auto" else float(train_cfg.als_trend)
    activity = 0.0 if trend == 0 or train_cfg.als_trend_activity == "auto" else float(train_cfg.als_trend_activity)
    from embedrec.training.trend import typical_count

    prior = train_cfg.als_newuser_prior  # auto outside a selection: off
    prior = 0.0 if prior == "auto" else [float(w) for w in prior] if isinstance(prior, list) else float(prior)
    return {"loss": "als", "a0": a0, "user_unobserved": scale, "reg": reg,
            "reg_exponent": float(train_cfg.als_reg_exponent), "recency": g, "trend": trend,
            "trend_activity": activity, "trend_n0": typical_count(nnz, n_users), "newuser_prior": prior}

# train.als_count_weight: auto tries each on valid, the first alone where the ratings are not counts (a dataset not
# ingested with data.repeats=sum) or there is no validation split (training.select.count_candidates). On a synthetic
# click log 1 raised test NDCG@10 by 0.0068 where the counts follow the users' tastes and lowered it by 0.0062 where
# they are noise (docs/known-gaps.md): which helps depends on the data
COUNT_WEIGHTS = (0.0, 1.0)


def count_weight(cfg) -> float:
    """``train.als_count_weight`` as a number: ``auto`` outside a selection is its first candidate, 0 (off)."""
    b = cfg.als_count_weight
    return COUNT_WEIGHTS[0] if b == "auto" else float(b)


def confidence(users: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray | None, scale, cfg: TrainConfig,
               summed: bool = False):
    """Per-rating weights of the observed term, or None when every weight is 1.

    ``train.als_rating_weight`` b: w = 1 + b * (rating - min) / (max - min), so a top rating counts 1 + b times a
    bottom one (Hu et al.'s confidence). ``summed`` (a dataset ingested with data.repeats=sum, whose ratings are
    sums of a pair's rows) and ``train.als_count_weight`` c: w *= 1 + c * log(rating), so one click weighs 1 and
    the heavy tail of counts grows slowly (Hu et al.'s log confidence; sums below 1 weigh 1).
    ``train.als_recency`` g: w *= 1 + g * position, where position runs from 0 at a user's oldest rating to 1 at
    the latest (needs timestamps), so recent tastes weigh more."""
    w = None
    lo, hi = scale if scale is not None else (float(ratings.min(initial=0)), float(ratings.max(initial=1)))
    if cfg.als_rating_weight > 0 and hi > lo:
        w = 1.0 + cfg.als_rating_weight * (ratings.astype(np.float64) - lo) / (hi - lo)
    b = count_weight(cfg) if summed else 0.0
    if b > 0:
        cw = 1.0 + b * np.log(np.maximum(ratings.astype(np.float64), 1.0))
        w = cw if w is None else w * cw
    if cfg.als_recency > 0 and timestamps is not None and users.size:
        order = _by_user_then_time(users, timestamps)
        counts = np.bincount(users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(users.size, np.float64)
        rank[order] = np.arange(users.size) - np.repeat(starts, counts)
        span = np.maximum(counts[users] - 1, 1)
        rec = 1.0 + cfg.als_recency * rank / span
        w = rec if w is None else w * rec
    return None if w is None else w.astype(np.float32)


def seen_weights(ds, train_cfg: TrainConfig, solve: dict, seen: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each pair of the seen CSR ``seen`` (indptr, indices: artifacts.serving_arrays') weighted as the final fit's
    user solve weighed it (float32; 0 for a pair the fit did not train on: rated below data.min_rating, or in
    valid without a refit): :func:`confidence` of ``ds``'s train rows (the fit's: train+valid after a refit), at
    the recency weight the run's ``solve`` records (:func:`user_solve`), through the CSR the ALS runner builds
    (:func:`_csr`, a repeated pair's first weight). What explanations split a known user's score by
    (run_layout.SOLVE_WEIGHTS, serve.explain)."""
    return rows_seen_weights(ds.splits["train"], ds.manifest, ds.n_movies, train_cfg, solve, seen)


def rows_seen_weights(tr, manifest: dict, n_movies: int, train_cfg: TrainConfig, solve: dict,
                      seen: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """:func:`seen_weights` of the users ``seen`` has rows for (the first ``seen[0].size - 1``): ``tr``, the final
    fit's training rows of those users (user numbered as ``seen``'s rows, each user's rows in the one-process
    order), ``manifest`` the dataset's. A rank's own users (shard_als: every one of its users' rows is on it, so
    the recency positions are the one-process ones, and their seen CSR is rows [lo, hi) of the run's)."""
    import dataclasses

    ptr, idx = seen
    cfg = dataclasses.replace(train_cfg, als_recency=float(solve.get("recency", 0.0)))
    w = confidence(tr.user, tr.rating, tr.timestamp, manifest.get("rating_scale"), cfg,
                   summed=manifest.get("repeats") == "sum")
    indptr, indices, weights = _csr(tr.user, tr.movie, ptr.size - 1, w)
    n_movies = np.int64(max(n_movies, 1))
    out = np.zeros(idx.size, np.float32)
    # in blocks of users of about SEEN_BLOCK seen pairs: the keys of 100M pairs at once would take 2.4 GB
    cuts = unique(np.searchsorted(ptr, np.arange(0, int(ptr[-1]), SEEN_BLOCK), side="right") - 1)
    for a, b in zip(cuts, [*cuts[1:], ptr.size - 1]):
        s0, t0 = int(ptr[a]), int(indptr[a])
        rows = np.arange(b - a, dtype=np.int64)
        seen_key = np.repeat(rows, np.diff(ptr[a:b + 1])) * n_movies + idx[s0:int(ptr[b])]
        key = np.repeat(rows, np.diff(indptr[a:b + 1])) * n_movies + indices[t0:int(indptr[b])]
        at = np.searchsorted(seen_key, key)  # seen is sorted within each user (sparse.csr): its keys are sorted
        if key.size and (at.max() >= seen_key.size or (seen_key[at] != key).any()):
            raise TrainingError("a trained pair is not among the seen pairs the run serves; this is a bug: please "
                                "report it")
        out[s0 + at] = 1.0 if weights is None else weights[t0:t0 + key.size]
    return out


SEEN_BLOCK = 1 << 22  # seen pairs a block of seen_weights aligns at once


RECENCY = 0.5  # train.als_recency: auto's weight with no validation split to choose on
RECENCIES = (0.0, 2.0)  # auto's candidates, chosen on valid, where the held-out ratings follow the training ones


def later_share(tr_user: np.ndarray, tr_time: np.ndarray, va_user: np.ndarray, va_time: np.ndarray,
                n_users: int) -> tuple[int, int]:
    """(validation ratings at or after their user's latest training rating, validation ratings): nearly all of
    them under a time-based holdout, about 1 / (the user's training ratings + 1) of them under a random one."""
    latest = np.full(n_users, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(latest, tr_user, np.asarray(tr_time, np.int64))
    return int(np.count_nonzero(np.asarray(va_time, np.int64) >= latest[va_user])), int(va_user.size)


def recency_auto(later: int, total: int) -> tuple[float, ...]:
    """``train.als_recency: auto``'s candidates, in the order training.select.fit_selecting tries them (the first from the
    seeded draw, the next warm-started), the better on valid kept: RECENCIES when at least half the validation
    ratings come at or after their user's latest training rating (a time-based holdout, which is what a deployed model
    faces); only 0 under a random holdout, where the recent ratings are no better a guide to the held-out ones;
    RECENCY with no validation split to choose on. Valid NDCG@10 on ML-100K, one fixed value each (BENCHMARKS.md):
    per-user time splits (the last 20% held out) peak at 2 (0: 0.142, 0.5: 0.148, 1: 0.156, 2: 0.159, 3: 0.157;
    the last 10%: 0.142, 0.148, 0.147, 0.156, 0.154), a global time cut at 0 (0: 0.166, 0.5: 0.155, 2: 0.142).
    0 goes first: tried in the other order, the selection's valid score was lower on two of these three splits
    (0.1590 against 0.1604, 0.1591 against 0.1661) and level on the third."""
    if total == 0:
        return (RECENCY,)
    return RECENCIES if 2 * later >= total else (0.0,)


def _by_user_then_time(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """``np.lexsort((timestamps, users))`` (ties keep their input order)."""
    return lex_order(users, np.asarray(timestamps, np.int64))


class Side:
    """One half-sweep's fixed inputs: the rows being solved, their rated columns (CSR into the other side's
    table), the confidence weights and the per-row L2; ``csr`` is the torch CSR of the same (torch engine)."""

    def __init__(self, indptr, indices, weights, reg, n_cols: int, torch_engine: bool, device=None):
        self.indptr, self.indices, self.w, self.reg = indptr, indices, weights, reg
        self.n_rows = indptr.size - 1
        self.csr = self.reg_t = None
        if torch_engine:
            import torch

            self.csr = _torch_csr(indptr, indices, weights, self.n_rows, n_cols).to(device)
            self.reg_t = torch.from_numpy(reg).to(device)


def _torch_csr(indptr, indices, weights, n_rows, n_cols):
    import torch

    vals = torch.ones(indices.size, dtype=torch.float32) if weights is None else torch.from_numpy(weights)
    return _csr_tensor(torch.from_numpy(indptr), torch.from_numpy(indices.astype(np.int64)), vals, (n_rows, n_cols))


def _csr_tensor(crow, col, vals, shape):
    """A torch CSR tensor of arrays already valid (not checked again), without torch's notes on stderr: 'in beta',
    and, from torch 2.11 on a GPU even with check_invariants=False given, 'invariant checks are implicitly
    disabled' (seen on every `train` there). The filters hold here only: the user's own stay as they were."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        return torch.sparse_csr_tensor(crow, col, vals, shape, check_invariants=False)


class Solver:
    """The warm-started CG steps of one half-sweep, in the C kernel (CPU) or in torch (CPU or GPU): solves every
    row of ``X`` against the fixed table ``Y`` and the Gramian ``G``; returns the objective before the steps.

    ``ALS`` uses one for the whole tables; ``shard_als.ShardALS`` for one rank's rows against rows it gathered."""

    def __init__(self, threads: int, cg_steps: int, engine: str = "auto", device: torch.device | None = None):
        """``device`` None: the CPU, with numpy tables (no torch)."""
        self.threads, self.steps = max(1, threads), cg_steps
        self.device = device
        if device is not None:
            import torch

            self.device = torch.device(device)
        on_cpu = device is None or self.device.type == "cpu"
        if engine == "c" and not on_cpu:
            raise ConfigError("config key 'train.device': the als C kernel runs on the CPU only; use train.device=cpu")
        self.lib = _kernel() if engine in ("auto", "c") and on_cpu else None
        if engine == "c" and self.lib is None:
            raise ConfigError("config key 'model.loss': the als C kernel could not be built (no C compiler)")

    @property
    def torch_engine(self) -> bool:
        return self.lib is None

    def solve(self, Y: torch.Tensor, X: torch.Tensor, G: torch.Tensor, side: Side, tick=None) -> float:
        """``tick(n)``: told of the rows solved as they are (the kernel's, every SOLVE_ROWS rows; the torch
        engine's, all at once)."""
        if self.lib is not None:
            return self._solve_c(Y, X, G, side, tick)
        total = _cg_torch(Y, X, G, side.csr, side.reg_t, self.steps)
        if tick is not None:
            tick(int(X.shape[0]))
        return total

    def _solve_c(self, Y, X, G, side: Side, tick=None) -> float:
        """The kernel's CG in the eigenbasis of G = V diag(e) V^T: it solves for X V against Y V and the diagonal
        e, so each step's G product costs d multiplications instead of d^2 (the iterates are CG's own, rotated:
        CG is unchanged by an orthogonal change of basis), and X is rotated back after."""
        Xn = X if isinstance(X, np.ndarray) else X.numpy()
        # one BLAS thread throughout, the rotations' rows split over train.threads instead: a product's rows then
        # come out the same at any thread count (BLAS's own threads changed the last bits, and so the run)
        with blas_threads(1):
            e, V = np.linalg.eigh(np.asarray(G if isinstance(G, np.ndarray) else G.numpy(), np.float64))
            V = V.astype(np.float32)
            Yr = _rows_times(np.asarray(Y if isinstance(Y, np.ndarray) else Y.numpy()), V, self.threads)
            Xr = _rows_times(Xn, V, self.threads)
            diag = np.ascontiguousarray(e.clip(0.0, None), np.float32)
            total = self._kernel_c(Yr, Xr, diag, side, tick)
            _rows_times(Xr, np.ascontiguousarray(V.T), self.threads, out=Xn)
        return total

    def _kernel_c(self, Y, X, diag, side: Side, tick=None) -> float:
        """The C kernel's CG steps for every row of X (rows split over threads, each thread's in calls of
        SOLVE_ROWS rows that carry its total on); ``diag``: G's diagonal; ``tick(n)``: the rows solved, told
        from this thread as they are."""
        n = X.shape[0]
        threads = max(1, min(self.threads, n // ROWS_PER_THREAD))
        # split the rows so each thread gets about the same number of rated pairs
        indptr = side.indptr
        cuts = np.searchsorted(indptr, np.linspace(0, indptr[-1], threads + 1)).clip(0, n)
        cuts[0], cuts[-1] = 0, n
        totals = [0.0] * threads
        done = [0] * threads  # each thread's rows solved so far
        args = (_ptr(Y), _ptr(X), _ptr(diag), indptr.ctypes.data, side.indices.ctypes.data,
                None if side.w is None else side.w.ctypes.data, side.reg.ctypes.data, X.shape[1])

        def work(t: int, tick=None) -> None:
            total, end = 0.0, int(cuts[t + 1])
            for a in range(int(cuts[t]), end, SOLVE_ROWS):
                b = min(a + SOLVE_ROWS, end)
                total = self.lib.als_cg(*args, a, b, self.steps, total)
                if total < 0:  # not solved (below)
                    break
                done[t] += b - a
                if tick is not None:
                    tick(b - a)
            totals[t] = total

        if threads == 1:
            work(0, tick)
        else:  # daemon threads: Ctrl-C leaves without waiting for them
            pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
            for th in pool:
                th.start()
            _join_counting(pool, lambda: sum(done), tick)
        if any(t < 0 for t in totals):  # the kernel's "not solved": no buffers (or dim > 4096); NaN is not < 0
            raise TrainingError(f"the als kernel could not allocate its buffers for model.dim {X.shape[1]} (out of "
                                "memory?); free memory, or train with a smaller model.dim")
        return float(sum(totals))


def _join_counting(pool: list, count, tick) -> None:
    """Wait for ``pool``'s threads; ``tick`` (None: no count) told of ``count()``'s growth every POLL_S seconds
    and once they are done, from this thread (the bar's own)."""
    told = 0
    for th in pool:
        while th.is_alive():
            th.join(None if tick is None else POLL_S)
            if tick is not None and count() > told:
                now = count()
                tick(now - told)
                told = now
    if tick is not None and count() > told:
        tick(count() - told)


# a product's rows split at multiples of this come out as in one product: OpenBLAS computes rows in blocks (96 on
# this machine's kernel; its tail block differs in the last bits), and 3072 is a multiple of every common block
BLOCK_ROWS = 3072


def _rows_times(A: np.ndarray, B: np.ndarray, threads: int, out: np.ndarray | None = None) -> np.ndarray:
    """A @ B (float32, C order) with A's rows split over ``threads`` Python threads, each a one-thread BLAS
    product of whole BLOCK_ROWS blocks (numpy releases the GIL): every row is computed as in one product, at
    any thread count. Call with BLAS at one thread."""
    out = np.empty((A.shape[0], B.shape[1]), np.float32) if out is None else out
    cuts = np.linspace(0, A.shape[0], max(1, threads) + 1).astype(np.int64) // BLOCK_ROWS * BLOCK_ROWS
    cuts[-1] = A.shape[0]
    parts = [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    if len(parts) <= 1:
        np.matmul(A, B, out=out)
        return out

    def work(a: int, b: int) -> None:
        np.matmul(A[a:b], B, out=out[a:b])

    pool = [threading.Thread(target=work, args=p, daemon=True) for p in parts]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return out


def _ptr(t) -> int:
    return t.ctypes.data if isinstance(t, np.ndarray) else t.data_ptr()


_said: set[str] = set()  # the kernel failures already warned of in this process


def _kernel():
    from embedrec.training.kernel import KernelError, load

    try:
        lib = load()
    except KernelError as e:  # once a process (a train asks for it at each fit: the same line came 4 times)
        if e.reason("ALS") not in _said:
            _said.add(e.reason("ALS"))
            log.warning("als: %s; using the slower torch engine", e.reason("ALS"))
        return None
    f = lib.als_cg
    p = ctypes.c_void_p
    f.argtypes = [p, p, p, p, p, p, p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ctypes.c_double]
    f.restype = ctypes.c_double
    return lib


def _cg_torch(Y, X, G, A, reg, steps: int) -> float:
    """The CG steps for all rows at once with sparse-dense products: A is the weighted CSR of the rated pairs."""
    import torch

    w = A.values()

    def weighted(V):  # the CSR of w_i * (y_i.v) over the rated pairs (made from a valid one: no check needed)
        S = torch.sparse.sampled_addmm(A, V, Y.T, beta=0.0)
        return _csr_tensor(S.crow_indices(), S.col_indices(), S.values() * w, S.shape)

    def apply(V):  # (G + reg) v + sum_i w_i (y_i.v) y_i, for every row
        return V @ G + reg[:, None] * V + weighted(V) @ Y

    Sx = torch.sparse.sampled_addmm(A, X, Y.T, beta=0.0)
    c = 1.0 - Sx.values()
    obj = float((w.double() * c.double() ** 2).sum() + ((X @ G) * X).double().sum()
                + (reg.double() * (X.double() ** 2).sum(1)).sum())
    b = A @ Y
    r = b - apply(X)
    p = r.clone()
    rs = (r * r).sum(1)
    for _ in range(steps):
        ap = apply(p)
        pap = (p * ap).sum(1)
        ok = (pap > 0) & (rs > 1e-20)
        a = torch.where(ok, rs / torch.where(ok, pap, torch.ones_like(pap)), torch.zeros_like(pap))
        X += a[:, None] * p
        r -= a[:, None] * ap
        rsn = (r * r).sum(1)
        beta = torch.where(ok, rsn / torch.where(ok, rs, torch.ones_like(rs)), torch.zeros_like(rs))
        p = r + beta[:, None] * p
        rs = torch.where(ok, rsn, torch.zeros_like(rsn))
    return obj


def user_objective_reg(reg: np.ndarray, P: torch.Tensor) -> float:
    """The users' L2 term of the objective (added after the movie half, which reports the rest)."""
    import torch

    return float((torch.from_numpy(reg).to(P.device).double() * (P.double() ** 2).sum(1)).sum())


def sweep(tables, device, half, users, movies, u_reg: np.ndarray) -> float:
    """One ALS sweep over a model's user and movie tables in place: users against movies, then movies against
    users, on ``device`` (copied back when that is not the tables' own memory). ``half(Y, X, side)`` solves the
    rows of X; returns the objective (the movie half's plus the users' L2 term), not yet normalised."""
    if isinstance(tables, Tables):  # numpy on the CPU: the kernel writes the arrays in place
        half(tables.movie_table, tables.user_table, users)
        obj = half(tables.user_table, tables.movie_table, movies)
        P = tables.user_table
        return obj + float(np.dot(u_reg.astype(np.float64), np.einsum("ij,ij->i", P, P, dtype=np.float64)))
    import torch

    with torch.no_grad():
        P, Q = tables.user.weight.data, tables.movie.weight.data
        Pd, Qd = P.to(device), Q.to(device)  # the same tensors on the CPU
        half(Qd, Pd, users)
        obj = half(Pd, Qd, movies)
        obj += user_objective_reg(u_reg, Pd)
        if Pd.data_ptr() != P.data_ptr():
            P.copy_(Pd.cpu())
            Q.copy_(Qd.cpu())
    return obj


def user_half(tables, device, half, users, solver: Solver, scale: float, steps: int, tick=None) -> None:
    """The users' half of :func:`sweep` alone, with a0 x ``scale`` (``half(Y, X, side, scale, tick)``) and ``steps``
    CG steps (the solver's own are put back after): ALS.refit_users, on one process or on ranks. ``tick(n)``: told
    of the users solved as they are (:meth:`Solver.solve`)."""
    kept, solver.steps = solver.steps, steps
    try:
        if isinstance(tables, Tables):
            half(tables.movie_table, tables.user_table, users, scale, tick)
            return
        import torch

        with torch.no_grad():
            P, Q = tables.user.weight.data, tables.movie.weight.data
            Pd = P.to(device)
            half(Q.to(device), Pd, users, scale, tick)
            if Pd.data_ptr() != P.data_ptr():
                P.copy_(Pd.cpu())
    finally:
        solver.steps = kept


class Tables:
    """The plain model's user and movie tables as numpy arrays: what ALS fits on the CPU without torch.

    The state_dict has MatrixFactorization's names (``user.weight``, ``movie.weight``, ``global_mean``) and
    no biases; the tables start from the numbers the torch model draws from ``torch.manual_seed(seed)``
    (:func:`torch_normal`), so both fit the same factors up to float rounding."""

    user_bias = movie_bias = None
    global_mean = 0.0

    def __init__(self, n_users: int, n_movies: int, dim: int, init_std: float, seed: int, draw: bool = True,
                 tick=None):
        """``draw=False``: zero tables, for a warm start whose state replaces them (the draw costs ~1 s at 100K
        users x 128 dims); ``tick(n)``: told of the numbers drawn as they are, :meth:`draws` in all."""
        self.n_users, self.n_movies, self.dim = n_users, n_movies, dim
        if not draw:
            self.user_table = _aligned(np.zeros((n_users, dim), np.float32))
            self.movie_table = _aligned(np.zeros((n_movies, dim), np.float32))
            return
        gen = np.random.MT19937(0)
        gen._legacy_seeding(int(seed) & 0xFFFFFFFF)  # init_genrand(seed), as torch.manual_seed seeds its mt19937
        for n in (n_users * dim, n_movies * dim):  # nn.Embedding's own N(0, 1) draws, which the model replaces:
            for a, b in _blocks(n + (16 if n % 16 else 0)):  # skipped (torch_normal's raw outputs)
                gen.random_raw(b - a, output=False)
                if tick is not None:
                    tick(b - a)
        self.user_table = _aligned(torch_normal(gen, n_users * dim, init_std, tick).reshape(n_users, dim))
        self.movie_table = _aligned(torch_normal(gen, n_movies * dim, init_std, tick).reshape(n_movies, dim))

    @staticmethod
    def draws(n_users: int, n_movies: int, dim: int) -> int:
        """The numbers a seeded draw of the tables takes from the generator: torch's N(0, 1) draws it skips, then
        its own (:func:`torch_normal`'s, 16 more for a table whose size is not a multiple of 16)."""
        return sum(2 * (n + (16 if n % 16 else 0)) for n in (n_users * dim, n_movies * dim))

    @staticmethod
    def fits(n_users: int, n_movies: int, dim: int) -> bool:
        """torch_normal reproduces torch's vectorised draw, used for tables of 16 or more entries."""
        return min(n_users, n_movies) * dim >= 16

    def state_dict(self) -> dict:
        return {"user.weight": self.user_table, "movie.weight": self.movie_table,
                "global_mean": np.zeros((), np.float32)}

    def load_state_dict(self, state: dict) -> None:
        np.copyto(self.user_table, np.asarray(state["user.weight"], np.float32))
        np.copyto(self.movie_table, np.asarray(state["movie.weight"], np.float32))

    def train(self, mode: bool = True) -> Tables:
        return self

    def n_parameters(self) -> int:
        return self.user_table.size + self.movie_table.size

    def factors(self) -> dict:
        """train.factors' dict: copies of the tables, no biases."""
        return {"user_factors": self.user_table.copy(), "movie_factors": self.movie_table.copy(),
                "user_bias": None, "movie_bias": None, "global_mean": 0.0}


def _aligned(a: np.ndarray, align: int = 64) -> np.ndarray:
    """A copy of ``a`` whose data starts on a cache line (as torch allocates): the kernel's vector loads then
    never straddle two lines."""
    buf = np.empty(a.nbytes + align, np.uint8)
    start = -buf.ctypes.data % align
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


# the numbers a table's draw takes at once (a multiple of 16): a count to show, and 8 MB of raw outputs at a time
# where one draw of 1M users x 64 dims held 512 MB of them
DRAW_BLOCK = 1 << 20


def _blocks(n: int) -> list[tuple[int, int]]:
    return [(a, min(a + DRAW_BLOCK, n)) for a in range(0, n, DRAW_BLOCK)]


def torch_normal(gen: np.random.MT19937, n: int, std: float, tick=None) -> np.ndarray:
    """``torch.empty(n).normal_(0, std)`` after the same seed, from numpy: torch's CPU draw for a float32 tensor of
    16 or more entries (aten normal_fill: 24-bit uniforms of one mt19937 output each, Box-Muller over blocks of 16,
    the last 16 drawn afresh when n is not a multiple of 16). Equal up to the last bit of log/cos/sin. Drawn
    DRAW_BLOCK numbers at a time (each a whole number of torch's blocks of 16: the same numbers as at once),
    ``tick(n)`` told of each."""
    def uniforms(m: int) -> np.ndarray:
        return (gen.random_raw(m) & 0xFFFFFF).astype(np.float32) * np.float32(2.0 ** -24)

    def box_muller(u: np.ndarray) -> np.ndarray:
        u = u.reshape(-1, 16)
        radius = np.sqrt(np.float32(-2.0) * np.log(np.float32(1.0) - u[:, :8]))
        theta = np.float32(2.0 * np.pi) * u[:, 8:]
        s = np.float32(std)
        return np.concatenate([radius * np.cos(theta) * s, radius * np.sin(theta) * s], axis=1).ravel()

    if n < 16:
        raise ValueError("torch_normal: torch draws fewer than 16 numbers another way")
    out = np.empty(n, np.float32)
    m = n - n % 16
    for a, b in _blocks(m):
        out[a:b] = box_muller(uniforms(b - a))
        if tick is not None:
            tick(b - a)
    if n % 16:
        gen.random_raw(n % 16, output=False)  # (drawn with the others, unused: the last 16 are drawn afresh)
        out[n - 16:] = box_muller(uniforms(16))
        if tick is not None:
            tick(n % 16 + 16)
    return out


class ALS:
    """Runs iALS epochs on a plain MatrixFactorization's user and movie tables, in place.

    ``device`` (default: the config's ``train.device``): on cuda the torch engine runs there on copies of the
    tables, which are copied back after each epoch, so the model and everything saved stay on the CPU."""

    uses_generator = False  # an epoch draws nothing at random (loop.run makes no torch generator for it)

    def __init__(self, model: MatrixFactorization, train_cfg: TrainConfig, users: np.ndarray, movies: np.ndarray, threads: int,
                 engine: str = "auto", weights: np.ndarray | None = None, device: str | None = None,
                 csrs: tuple | None = None, bar: str | None = None):
        """``bar``: the name of the fit's bar (None: no bar), before which each half-sweep that runs longer than
        ROWS_BAR_DELAY shows its rows solved ('BAR: solving users', then movies)."""
        if hasattr(model, "fs_desc"):
            raise ConfigError("config key 'model.loss': als trains the plain model only (no side features); "
                              "with features use «--set model.loss=bpr» or softmax")
        if model.dim > 4096:
            raise ConfigError("config key 'model.dim': als supports at most 4096 dimensions")
        self.model, self.cfg, self.bar = model, train_cfg, bar
        nu, nm = model.n_users, model.n_movies
        if csrs is None:  # both sides' (indptr, indices, weights); candidates of one selection share them
            csrs = (*_csr(users, movies, nu, weights), *_csr(movies, users, nm, weights))
        self.csrs = csrs
        self.u_ptr, self.u_idx, self.u_w, self.m_ptr, self.m_idx, self.m_w = csrs
        self.nnz = int(self.u_idx.size)
        a0 = train_cfg.als_unobserved
        self.a0 = auto_unobserved(self.nnz, nu, nm) if a0 == "auto" else float(a0)
        if a0 == "auto":
            log.debug("als: unobserved weight a0 = %.3g (auto: the square root of the training density)", self.a0)
        self.u_reg = reg_weights(np.diff(self.u_ptr), nm, self.a0, train_cfg)
        self.m_reg = reg_weights(np.diff(self.m_ptr), nu, self.a0, train_cfg)
        self.threads = max(1, threads)
        if isinstance(model, Tables):  # numpy tables: the C kernel on the CPU
            self.device = None
        else:
            from embedrec.device import resolve_device

            self.device = resolve_device(device if device is not None else getattr(train_cfg, "device", "cpu"))
        self.solver = Solver(threads, train_cfg.als_cg_steps, engine, self.device)
        self.lib = self.solver.lib
        t = self.solver.torch_engine
        if t and self.device is None:
            raise ConfigError("config key 'model.loss': numpy tables need the als C kernel (no C compiler found)")
        self.users = Side(self.u_ptr, self.u_idx, self.u_w, self.u_reg, nm, t, self.device)
        self.movies = Side(self.m_ptr, self.m_idx, self.m_w, self.m_reg, nu, t, self.device)

    # ------------------------------------------------------------------------------------------ epochs
    def epoch(self, gen: torch.Generator | None = None) -> float:
        """One sweep (users, then movies); returns the objective per rated pair before the movie half."""
        obj = sweep(self.model, self.device, self._counted_half, self.users, self.movies, self.u_reg)
        return obj / max(self.nnz, 1)

    def _counted_half(self, Y: torch.Tensor, X: torch.Tensor, side: Side) -> float:
        """An epoch's half-sweep, its rows solved counted on a bar of its own where the fit has one (a scale
        review: 10-19 s epochs at 1M users, each with one count at its end)."""
        from embedrec.bars import step

        rows = "users" if side is self.users else "movies"
        with step(None if self.bar is None else f"{self.bar}: solving {rows}", int(X.shape[0]), rows[:-1],
                  delay=ROWS_BAR_DELAY) as tick:
            return self._half(Y, X, side, tick=tick)

    def _half(self, Y: torch.Tensor, X: torch.Tensor, side: Side, scale: float = 1.0, tick=None) -> float:
        if isinstance(Y, np.ndarray):  # one BLAS thread: two spun-waiting ones made this 50x slower under load
            with blas_threads(1):
                G = np.ascontiguousarray(np.float32(self.a0 * scale) * (Y.T @ Y))
        else:
            G = (self.a0 * scale * (Y.T @ Y)).contiguous()
        return self.solver.solve(Y, X, G, side, tick)

    def refit_users(self, scale: float, steps: int = USER_STEPS, tick=None) -> None:
        """Re-solve every user's vector with the movies fixed and the unobserved weight a0 x ``scale`` in the
        users' half (``train.als_user_unobserved``; the L2 stays), ``steps`` CG steps from the current vectors;
        ``tick(n)``: told of the users solved as they are."""
        user_half(self.model, self.device, self._half, self.users, self.solver, scale, steps, tick)
