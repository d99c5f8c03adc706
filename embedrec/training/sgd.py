"""``train.optimizer: hogwild``: per-example SGD in a small C kernel, lock-free across threads.

This is how Surprise's SVD and implicit's BPR train, and why they are fast: one rating (or one positive and
its negatives) at a time, every thread updating the shared tables without locks (Hogwild). PyTorch has no
such op: its scatter-adds are atomic or sort-based, and autograd adds a graph per batch; autograd sparse SGD
measured 5-8x fewer ratings/s than this kernel here (BENCHMARKS.md). The kernel (``kernels/mf_sgd.c``) is compiled once per machine with the
system C compiler into a cache directory and called through ctypes, which releases the GIL, so Python
threads run it in parallel (``kernel.py`` builds and loads it; this module words its failures for hogwild). Each step is the exact gradient of the same per-example objective the autograd
optimisers minimise (tested against ``torch.optim.SGD`` at batch size 1), so lr and weight decays keep
their meaning.

Applies to the plain model (no side features) with the ``mse`` and ``bpr`` losses, and to SVD++'s implicit terms
(``model.implicit_terms``) with ``mse``: a user's examples in a row, its implicit sum kept exactly
(``svdpp_sgd``). With one thread a run
repeats exactly; with more, threads race on shared rows (by design), so results differ in the last digits.

CPU only: ``train.device: cuda`` with hogwild is refused in one line (``train.make_runner``; the GPU equivalent
is ``train.optimizer: sgd``, sparse autograd SGD on the same objective in batches). Under torchrun each rank runs
the kernel over its shard of the ratings (sharded by user) and the ranks merge their tables after each epoch
(``dist_sync.RowAverage``, see ``replica.py``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import ConfigError
from embedrec.training.kernel import KernelError, load

if TYPE_CHECKING:  # annotations only: no import at run time
    import torch

    from embedrec.config import TrainConfig
    from embedrec.model.mf import MatrixFactorization

PER_THREAD = 250_000
_ADAM = ", or train with «--set train.optimizer=adam»"
_INSTEAD = {"no-compiler": _ADAM + " «--set train.lr=0.003»", "compile-failed": _ADAM + " «--set train.lr=0.003»",
            "unloadable": _ADAM}  # by KernelError.kind; a cache folder that cannot be written has its own fix


def _refusal(e: KernelError) -> str:
    """The kernel loader's failure worded for ``train.optimizer: hogwild``, with the optimizer to use instead."""
    return f"config key 'train.optimizer': {e.reason('hogwild')}; {e.fix}{_INSTEAD.get(e.kind, '')}"


def refuse_cuda(device: str) -> None:
    """hogwild is a CPU kernel: an explicit ``train.device: cuda`` is refused in one line (auto runs it here)."""
    if device == "cuda" or str(device).startswith("cuda:"):
        from embedrec.device import device_name

        device_name(device)  # no GPU here: that is said first (a review: sgd on cuda then failed as well)
        raise ConfigError("config key 'train.device': hogwild is a C kernel for CPU threads and has no GPU path; "
                          "on cuda train with «--set train.optimizer=sgd» (sparse SGD on the same objective, in "
                          "batches) or adam, or set train.device=cpu or auto")


def _ptr(t) -> int | None:
    if t is None:
        return None
    return t.ctypes.data if isinstance(t, np.ndarray) else t.data_ptr()


class Hogwild:
    """Runs epochs of per-example SGD on a plain MatrixFactorization's tables, in place."""

    def __init__(self, model: MatrixFactorization, loss: str, train_cfg: TrainConfig, users: torch.Tensor, movies: torch.Tensor,
                 ratings: torch.Tensor, n_movies: int, threads: int, rank: int = 0):
        if hasattr(model, "fs_desc"):  # first: with features, no loss makes hogwild work (a review)
            raise ConfigError("config key 'train.optimizer': hogwild trains the plain model only; with side "
                              "features use auto (adam there), adam, sgd or adagrad")
        if loss not in ("mse", "bpr"):
            raise ConfigError(f"config key 'train.optimizer': hogwild trains the mse and bpr losses, not {loss}; "
                              "use «--set model.loss=bpr», or another optimizer (adam, sgd, adagrad)")
        if model.dim > 4096 or loss == "bpr" and train_cfg.negatives > 64:  # (mse draws no negatives)
            raise ConfigError("config key 'train.optimizer': hogwild supports model.dim <= 4096 and "
                              "train.negatives <= 64; use another optimizer")
        import torch

        try:
            self.lib = load()
        except KernelError as e:
            raise ConfigError(_refusal(e)) from None
        self.rank = rank  # ranks of one job draw different negatives from the same epoch seed
        self.model, self.bpr, self.cfg = model, loss == "bpr", train_cfg
        self.users, self.movies = users.to(torch.int64).contiguous(), movies.to(torch.int64).contiguous()
        self.ratings = ratings.to(torch.float32).contiguous()
        # a thread per 250,000 examples at most: below that, starting threads costs more than they save
        self.n_movies, self.threads = n_movies, max(1, min(threads, users.shape[0] // PER_THREAD))
        self.indptr = self.indices = None
        self.svdpp = getattr(model, "implicit_movie", None) is not None
        if self.svdpp:  # SVD++: each user's examples together (kernels/mf_sgd.c svdpp_sgd), users shuffled
            if self.bpr:
                raise ConfigError("config key 'train.optimizer': hogwild trains SVD++'s implicit terms "
                                  "(model.implicit_terms) for the explicit model only; use adam for bpr with them")
            u = self.users.numpy()
            by_user = np.argsort(u, kind="stable")
            self.ex_movies = np.ascontiguousarray(self.movies.numpy()[by_user])
            self.ex_ratings = np.ascontiguousarray(self.ratings.numpy()[by_user])
            self.ex_indptr = np.zeros(model.n_users + 1, np.int64)
            np.cumsum(np.bincount(u, minlength=model.n_users), out=self.ex_indptr[1:])
            self.threads = max(1, min(threads, users.shape[0] // PER_THREAD))
        if self.bpr:  # each user's rated movies, sorted, so sampled negatives can be re-drawn (as implicit does)
            u = self.users.numpy()
            key = np.sort(u * np.int64(n_movies) + self.movies.numpy())  # 10x faster than np.lexsort (measured)
            self.indices = (key % n_movies).astype(np.int32)
            counts = np.bincount(u, minlength=model.n_users)
            self.indptr = np.zeros(model.n_users + 1, np.int64)
            np.cumsum(counts, out=self.indptr[1:])

    def epoch(self, gen: torch.Generator) -> float:
        """One pass over the ratings in a seeded random order; returns the mean per-example objective."""
        import torch

        if self.svdpp:
            return self._svdpp_epoch(gen)
        n = self.users.shape[0]
        order = torch.randperm(n, generator=gen)
        seed = int(torch.randint(0, 2**62, (1,), generator=gen)) + 1_000_003 * self.rank
        m, c = self.model, self.cfg
        tables = [m.user.weight, m.movie.weight, m.user_bias.weight if m.user_bias is not None else None,
                  m.movie_bias.weight if m.movie_bias is not None else None]
        for t in tables:  # the kernel writes the parameters' memory directly
            assert t is None or t.is_contiguous() and t.dtype == torch.float32
        ptrs = [_ptr(t) for t in tables]
        args = (ptrs, m.dim, float(m.global_mean), c.lr, *c.weight_decays("bpr" if self.bpr else "mse"),
                c.weight_decay_bias)
        bounds = np.linspace(0, n, self.threads + 1).astype(np.int64)
        totals = [0.0] * self.threads

        def work(t: int) -> None:
            totals[t] = self._call(args, order, int(bounds[t]), int(bounds[t + 1]), seed + 7919 * t)

        # always in worker threads: the main thread stays free to take Ctrl-C (a ctypes call would hold it
        # until the slice ends); daemon, so an interrupted run exits without waiting for them
        pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(self.threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        return sum(totals) / max(n, 1)

    def _svdpp_epoch(self, gen: torch.Generator) -> float:
        """One pass with SVD++'s terms: the users in a seeded random order, each user's examples in a row (so
        its implicit sum is kept exactly in O(dim) a step), the threads each given a run of users holding about
        an equal share of the examples."""
        import torch

        m, c = self.model, self.cfg
        order = torch.randperm(m.n_users, generator=gen).numpy().astype(np.int64)
        seed = int(torch.randint(0, 2**62, (1,), generator=gen)) + 1_000_003 * self.rank
        tables = [m.user.weight, m.movie.weight, m.implicit_movie.weight,
                  m.user_bias.weight if m.user_bias is not None else None,
                  m.movie_bias.weight if m.movie_bias is not None else None]
        for t in tables:  # the kernel writes the parameters' memory directly
            assert t is None or t.is_contiguous() and t.dtype == torch.float32
        ptrs = [_ptr(t) for t in tables]
        wu, wm = c.weight_decays("mse")
        nptr = np.ascontiguousarray(m.rated_indptr.numpy(), dtype=np.int64)
        nidx = np.ascontiguousarray(m.rated_indices.numpy(), dtype=np.int64)
        done = np.cumsum(np.diff(self.ex_indptr)[order])
        bounds = [0, *np.searchsorted(done, done[-1] * np.arange(1, self.threads) / self.threads).tolist(),
                  m.n_users] if done.size else [0, 0]
        totals = [0.0] * (len(bounds) - 1)

        def work(t: int) -> None:
            totals[t] = self.lib.svdpp_sgd(*ptrs, m.dim, _ptr(self.ex_indptr), _ptr(self.ex_movies),
                                           _ptr(self.ex_ratings), _ptr(nptr), _ptr(nidx), _ptr(order),
                                           int(bounds[t]), int(bounds[t + 1]), float(m.global_mean), c.lr, wu, wm,
                                           c.weight_decay_bias, (seed + 7919 * t) % 2**64)

        pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(len(totals))]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        m._implicit_cache = None  # its key is y's version, which the kernel's writes do not move
        return sum(totals) / max(self.users.shape[0], 1)

    def _call(self, args, order, start: int, end: int, seed: int) -> float:
        ptrs, dim, mu, lr, wu, wm, wb = args
        return self.lib.mf_sgd(int(self.bpr), ptrs[0], ptrs[1], ptrs[2], ptrs[3], dim,
                               _ptr(self.users), _ptr(self.movies), _ptr(self.ratings), _ptr(order), start, end,
                               mu, lr, wu, wm, wb, self.cfg.negatives, self.n_movies, _ptr(self.indptr),
                               _ptr(self.indices), seed % 2**64)
