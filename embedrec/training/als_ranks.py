"""Implicit ALS on ranks (torchrun): this rank's rows of the two tables (``ShardTables``, started from the numbers one
process draws), the epoch runner (``ShardALS``: each half-sweep fetches the other table's rows its ratings touch,
``Blocks``, and sums the Gramian over ranks), and every movie's vector gathered for scoring. The workflow around
it (selection, refit, metrics, publish) is ``embedrec.shard_als``."""

from __future__ import annotations

import numpy as np
import torch

from embedrec.dist_data import Shard
from embedrec.distributed import Group, RowFetch, owners, send_to_owners
from embedrec.training.als import (
    USER_STEPS,
    Side,
    Solver,
    _csr,
    auto_unobserved,
    confidence,
    reg_weights,
    sweep,
    user_half,
)


class ShardTables(torch.nn.Module):
    """This rank's rows of the user and movie tables (``user.weight``, ``movie.weight``, as MatrixFactorization)."""

    def __init__(self, user: torch.Tensor, movie: torch.Tensor):
        super().__init__()
        self.user = torch.nn.Embedding(user.shape[0], user.shape[1], _weight=user)
        self.movie = torch.nn.Embedding(movie.shape[0], movie.shape[1], _weight=movie)
        self.dim = user.shape[1]


def _stream_rows(n: int, d: int, std: float, lo: int, hi: int, chunk_rows: int = 1 << 16) -> torch.Tensor:
    """Rows lo..hi-1 of what ``normal_(std)`` on an (n, d) table draws from torch's global generator, drawing
    the whole stream in chunks (the same draws: whole 16-value blocks, the last call ending where the table's
    does), so memory stays at one chunk plus the kept rows."""
    out = torch.empty((hi - lo, d))
    total = n * d
    if total < 4096:  # small tables: one draw
        t = torch.empty((n, d)).normal_(0.0, std)
        return t[lo:hi].clone()
    step = max(16, (chunk_rows * d) // 16 * 16)
    starts = list(range(0, total, step))
    if len(starts) > 1 and total - starts[-1] < 16:  # keep the final call at 16 values or more
        starts.pop()
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else total
        flat = torch.empty(e - s).normal_(0.0, std)
        a, b = max(s, lo * d), min(e, hi * d)
        if a < b:
            out.view(-1)[a - lo * d:b - lo * d] = flat[a - s:b - s]
    return out


def init_tables(shard: Shard, rank: int, dim: int, init_std: float, seed: int) -> ShardTables:
    """This rank's rows of MatrixFactorization's initial tables under ``torch.manual_seed(seed)``: the stream
    holds nn.Embedding's own N(0, 1) initialisation of both tables, then normal_(init_std) of each."""
    (ulo, uhi), (mlo, mhi) = shard.u_range(rank), shard.m_range(rank)
    torch.manual_seed(seed)
    _stream_rows(shard.n_users, dim, 1.0, 0, 0)
    _stream_rows(shard.n_movies, dim, 1.0, 0, 0)
    user = _stream_rows(shard.n_users, dim, init_std, ulo, uhi)
    movie = _stream_rows(shard.n_movies, dim, init_std, mlo, mhi)
    return ShardTables(user, movie)


# ------------------------------------------------------------------------------------------------ the trainer
class ShardALS:
    """The ALS epoch runner of one rank (``epoch(gen) -> objective per rated pair``, as als.ALS)."""

    def __init__(self, g: Group, tables: ShardTables, shard: Shard, train, train_cfg, threads: int):
        self.g, self.tables, self.cfg = g, tables, train_cfg
        (ulo, uhi), (mlo, mhi) = shard.u_range(g.rank), shard.m_range(g.rank)
        nu, nm = shard.n_users, shard.n_movies
        w = confidence(train.user - ulo, train.rating, train.timestamp, shard.manifest.get("rating_scale"), train_cfg,
                       summed=shard.manifest.get("repeats") == "sum")
        u_ptr, u_idx, u_w = _csr(train.user - ulo, train.movie, uhi - ulo, w)  # deduplicated, first weight kept
        users = np.repeat(np.arange(ulo, uhi, dtype=np.int32), np.diff(u_ptr))
        cols = [u_idx, users] + ([u_w] if u_w is not None else [])
        got = send_to_owners(g, cols, owners(u_idx, shard.m_cuts))
        m_ptr, m_idx, m_w = _csr(got[0] - mlo, got[1], mhi - mlo, got[2] if u_w is not None else None)
        self.nnz = int(g.total(u_idx.size))
        self.movies_unrated = np.diff(m_ptr) == 0
        a0 = train_cfg.als_unobserved
        self.a0 = auto_unobserved(self.nnz, nu, nm) if a0 == "auto" else float(a0)
        self.u_reg = reg_weights(np.diff(u_ptr), nm, self.a0, train_cfg)
        m_reg = reg_weights(np.diff(m_ptr), nu, self.a0, train_cfg)
        self.solver = Solver(threads, train_cfg.als_cg_steps, "auto", g.device)
        te = self.solver.torch_engine
        limit = getattr(train_cfg, "fetch_rows", 0)
        self.users = Blocks(g, u_ptr, u_idx, u_w, self.u_reg, shard.m_cuts, limit, te)
        self.movies = Blocks(g, m_ptr, m_idx, m_w, m_reg, shard.u_cuts, limit, te)
        self.held = {"ratings_by_user": int(u_idx.size), "ratings_by_movie": int(m_idx.size),
                     "fetched_movie_rows": self.users.fetched, "fetched_user_rows": self.movies.fetched,
                     "rounds": (len(self.users.rounds), len(self.movies.rounds))}

    def epoch(self, gen: torch.Generator | None = None) -> float:
        obj = sweep(self.tables, self.g.device, self._half, self.users, self.movies, self.u_reg)
        return self.g.total(obj) / max(self.nnz, 1)

    def _half(self, Y_local, X, blocks: Blocks, scale: float = 1.0, tick=None) -> float:
        G = self.g.sum_((Y_local.T @ Y_local).contiguous())
        G = (self.a0 * scale * G).contiguous()
        obj = 0.0
        for fetch, lo, hi, side in blocks.rounds:  # every rank takes part in every round (it serves the others)
            Y = fetch.fetch(Y_local)
            if side is not None:
                obj += self.solver.solve(Y, X[lo:hi], G, side, tick)
        return obj

    def refit_users(self, scale: float, steps: int = USER_STEPS, tick=None) -> None:
        """als.ALS.refit_users on ranks: this rank's users solved again against every movie (fetched as in a
        sweep) with the unobserved weight a0 x ``scale``; ``tick(n)``: told of this rank's users solved."""
        user_half(self.tables, self.g.device, self._half, self.users, self.solver, scale, steps, tick)


class Blocks:
    """One half-sweep's rows in blocks whose ratings touch at most ``limit`` rows of the other table (train.
    fetch_rows; 0: one block), each with its RowFetch and its Side (columns renumbered into the fetched rows).
    Ranks agree on the number of rounds; a rank out of blocks fetches nothing but still serves its rows."""

    def __init__(self, g: Group, indptr, indices, weights, reg, other_cuts, limit: int, torch_engine: bool):
        n = indptr.size - 1
        cuts = [0, n]
        if limit and indptr[-1] > limit:  # each block: as many rows as fit in limit ratings, at least one row
            cuts = [0]
            while cuts[-1] < n:
                lo = cuts[-1]
                cuts.append(max(int(np.searchsorted(indptr, indptr[lo] + limit, side="right")) - 1, lo + 1))
        n_rounds = int(g.max_(torch.tensor([len(cuts) - 1], device=g.device)).item())
        self.rounds, self.fetched = [], 0
        for r in range(n_rounds):
            if r < len(cuts) - 1:
                lo, hi = cuts[r], cuts[r + 1]
                a, b = int(indptr[lo]), int(indptr[hi])
                need, local = np.unique(indices[a:b], return_inverse=True)
                side = Side(indptr[lo:hi + 1] - a, local.astype(np.int32), None if weights is None else weights[a:b],
                            reg[lo:hi], need.size, torch_engine, g.device)
            else:
                lo = hi = 0
                need, side = np.zeros(0, np.int64), None
            self.rounds.append((RowFetch(g, need, other_cuts), lo, hi, side))
            self.fetched = max(self.fetched, int(need.size))


def full_movies(g: Group, tables: ShardTables, unrated: np.ndarray | None):
    """Every movie's vector (all-gathered) and bias, with train.factors' masking of movies nobody rated."""
    Q = g.allgather(tables.movie.weight.detach().to(g.device)).cpu().numpy().copy()
    if unrated is None or not unrated.any():
        return Q, None
    Q[unrated] = 0.0
    b = np.zeros(Q.shape[0], np.float32)
    b[unrated] = -1000.0
    return Q, b


def gathered_unrated(g: Group, runner: ShardALS) -> np.ndarray | None:
    mask = g.allgather(torch.from_numpy(runner.movies_unrated.astype(np.uint8)).to(g.device)).cpu().numpy()
    mask = mask.astype(bool)
    return mask if mask.any() else None
