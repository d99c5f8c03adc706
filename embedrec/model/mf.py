"""The scoring module: biased matrix factorization. It only scores; the fit loop lives in train.py."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from embedrec.model.factors import (
    IMPLICIT_MOVIE,
    auto_dim,  # noqa: F401 (its home was here; factors.py needs no torch)
)

if TYPE_CHECKING:  # annotations only
    from embedrec.model.factors import Factors


class MatrixFactorization(nn.Module):
    """score(u, m) = mu + b_u + b_m + <p_u, q_m> (explicit); implicit keeps <p_u, q_m> + b_m.

    With ``rated`` (the CSR ``(indptr, indices)`` of the movies each user rated in the training data), the user
    vector gains SVD++'s implicit terms (Koren 2008): p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j, one learned y_j per
    movie. The sum is fixed per user once trained, so the exported user vector carries it and serving scores
    with the plain formula.
    """

    def __init__(self, n_users: int, n_movies: int, dim: int, *, user_bias: bool = True, movie_bias: bool = True,
                 sparse: bool = False, init_std: float = 0.05, global_mean: float = 0.0,
                 rated: tuple | None = None):
        super().__init__()
        self.n_users, self.n_movies, self.dim = n_users, n_movies, dim
        self.user = nn.Embedding(n_users, dim, sparse=sparse)
        self.movie = nn.Embedding(n_movies, dim, sparse=sparse)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.movie.weight, std=init_std)
        self.user_bias = nn.Embedding(n_users, 1, sparse=sparse) if user_bias else None
        self.movie_bias = nn.Embedding(n_movies, 1, sparse=sparse) if movie_bias else None
        for b in (self.user_bias, self.movie_bias):
            if b is not None:
                nn.init.zeros_(b.weight)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        self.implicit_movie = None  # y_j, SVD++'s implicit-feedback vectors (dense: each step touches most rows)
        if rated is not None:
            indptr = torch.as_tensor(np.asarray(rated[0]), dtype=torch.long)
            if indptr.shape[0] != n_users + 1:
                raise ValueError(f"rated: indptr has {indptr.shape[0]} entries for {n_users} users")
            self.implicit_movie = nn.Embedding(n_movies, dim)
            nn.init.normal_(self.implicit_movie.weight, std=init_std)
            # the rated lists come from the data the model is trained on, so they are not part of its state
            self.register_buffer("rated_indptr", indptr, persistent=False)
            self.register_buffer("rated_indices", torch.as_tensor(np.asarray(rated[1]), dtype=torch.long),
                                 persistent=False)
            self.register_buffer("rated_norm", (indptr[1:] - indptr[:-1]).clamp(min=1).float().rsqrt(),
                                 persistent=False)

    # -- SVD++ implicit terms
    def _rated(self) -> tuple[torch.Tensor, torch.Tensor]:
        """N (users x movies, CSR, |N(u)|^-1/2 per rated movie) and its transpose, built once from the rated
        lists."""
        if getattr(self, "_rated_cache", None) is None:
            ip, idx, norm = self.rated_indptr, self.rated_indices, self.rated_norm
            vals = torch.repeat_interleave(norm, ip[1:] - ip[:-1], output_size=idx.shape[0])
            with warnings.catch_warnings():  # "sparse CSR support is in beta": the few ops used here are tested
                warnings.simplefilter("ignore", UserWarning)
                n = torch.sparse_csr_tensor(ip, idx, vals, (self.n_users, self.n_movies), check_invariants=True)
                t = n.to_sparse_coo().t().coalesce().to_sparse_csr()
            self._rated_cache = (n, t)
        return self._rated_cache

    def implicit_all(self) -> torch.Tensor:
        """(n_users, dim): |N(u)|^-1/2 sum_{j in N(u)} y_j for every user (zero for a user who rated nothing).

        One sparse product over all training ratings (cheaper here than per-batch bags, whose backward sorts),
        computed once per version of the y table: a training step that asks twice (the score and the L2 part of
        the user vector) shares one product, and the optimiser's in-place step makes the next call recompute."""
        y = self.implicit_movie.weight
        key = (y._version, torch.is_grad_enabled())
        cached = getattr(self, "_implicit_cache", None)
        if cached is not None and cached[0] == key and cached[1] is y:
            return cached[2]
        n, t = self._rated()
        z = _RatedSum.apply(y, n, t)
        self._implicit_cache = (key, y, z)
        return z

    def implicit_of(self, u: torch.Tensor) -> torch.Tensor:
        return self.implicit_all()[u]

    def user_l2_part(self, u: torch.Tensor, pu: torch.Tensor) -> torch.Tensor:
        """The part of ``pu`` (= ``user_vec(u)``) the per-example user L2 applies to: all of it, except SVD++'s
        implicit sum, whose y_j have their own term (``implicit_penalty``), as in Koren's objective."""
        return pu if self.implicit_movie is None else pu - self.implicit_of(u)

    def implicit_penalty(self, u: torch.Tensor) -> torch.Tensor | None:
        """The L2 term of the implicit vectors, per example: |N(u)|^-1/2 sum_{j in N(u)} ||y_j||^2 (the sum's own
        normalisation), averaged over the examples ``u``; None without implicit terms. On ML-100K validation
        this beat both Koren's sum_j ||y_j||^2 per example (too strong at a useful weight) and the mean over
        N(u) (which wanted about 10 times the weight)."""
        if self.implicit_movie is None:
            return None
        share = torch.bincount(u, minlength=self.n_users).float().unsqueeze(1) / u.shape[0]
        coef = (self._rated()[1] @ share).squeeze(1)  # per movie: sum over the batch's users of |N(u)|^-1/2
        return (coef * self.implicit_movie.weight.pow(2).sum(-1)).sum()

    @classmethod
    def from_factors(cls, f: Factors) -> MatrixFactorization:
        """The module that scores exactly as ``f`` does (``forward(u, m)`` = ``f.predict`` before clipping), in
        eval mode: the served model as a PyTorch module, whatever trained it (ALS fits numpy tables without
        torch; side features and SVD++ are folded into the exported user vectors)."""
        n_users, dim = f.user.shape
        model = cls(n_users, f.movie.shape[0], dim, user_bias=f.user_bias is not None,
                    movie_bias=f.movie_bias is not None, global_mean=f.global_mean)
        with torch.no_grad():
            model.user.weight.copy_(torch.from_numpy(np.ascontiguousarray(f.user, dtype=np.float32)))
            model.movie.weight.copy_(torch.from_numpy(np.ascontiguousarray(f.movie, dtype=np.float32)))
            for table, values in ((model.user_bias, f.user_bias), (model.movie_bias, f.movie_bias)):
                if table is not None:
                    table.weight.copy_(torch.from_numpy(np.asarray(values, dtype=np.float32)[:, None]))
        return model.eval()

    def movie_bias_of(self, m: torch.Tensor) -> torch.Tensor:
        return self.movie_bias(m).squeeze(-1) if self.movie_bias is not None else torch.zeros(m.shape, device=m.device)

    # the interface the trainer uses; FeatureMF adds features and crosses behind the same methods
    def user_vec(self, u: torch.Tensor) -> torch.Tensor:
        return self.user(u) if self.implicit_movie is None else self.user(u) + self.implicit_of(u)

    def movie_vec(self, m: torch.Tensor) -> torch.Tensor:
        return self.movie(m)

    def user_bias_of(self, u: torch.Tensor) -> torch.Tensor:
        return self.user_bias(u).squeeze(-1) if self.user_bias is not None else torch.zeros(u.shape, device=u.device)

    def cross_score(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor | None:
        return None

    def cross_matrix(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor | None:
        return None

    def forward(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        s = (self.user_vec(u) * self.movie(m)).sum(-1) + self.movie_bias_of(m) + self.global_mean
        if self.user_bias is not None:
            s = s + self.user_bias(u).squeeze(-1)
        return s


class _RatedSum(torch.autograd.Function):
    """N @ Y with N a fixed sparse matrix; the backward uses N's precomputed transpose (torch would transpose
    the CSR matrix again at every step)."""

    @staticmethod
    def forward(ctx, weight, n, t):
        ctx.t = t
        return torch.sparse.mm(n, weight)

    @staticmethod
    def backward(ctx, grad):
        return torch.sparse.mm(ctx.t, grad.contiguous()), None, None


class SVDpp(MatrixFactorization):
    """The plain model with SVD++ implicit terms (``model.implicit_terms``): exports p_u + the implicit sum as
    the user vector, so the exported factors score exactly as the model does."""

    @torch.no_grad()
    def export(self, unrated: torch.Tensor | None = None) -> dict:
        """Like ``train.factors`` for the plain model; movies without training ratings get a zero vector and
        bias -1000 (never trained: they never rank above a movie the model learned)."""
        P = self.user.weight + self.implicit_all()
        Q = self.movie.weight.detach().clone()
        bm = self.movie_bias.weight[:, 0].clone() if self.movie_bias is not None else None
        if unrated is not None and unrated.any():
            unrated = unrated.to(Q.device)
            Q[unrated] = 0.0
            bm = torch.zeros(self.n_movies, device=Q.device) if bm is None else bm
            bm[unrated] = -1000.0

        return {"user_factors": P.cpu().numpy().copy(), "movie_factors": Q.cpu().numpy().copy(),
                "user_bias": self.user_bias.weight[:, 0].cpu().numpy().copy() if self.user_bias is not None else None,
                "movie_bias": bm.cpu().numpy().copy() if bm is not None else None, "global_mean": float(self.global_mean),
                # saved beside the factors (artifacts: extra arrays, checksummed): a new user's implicit sum
                "feature_tables": {IMPLICIT_MOVIE: self.implicit_movie.weight.detach().cpu().numpy().copy()}}


def _pad(idx, size: int) -> torch.Tensor:
    t = torch.as_tensor(idx, dtype=torch.long).clone()
    t[t < 0] = size
    return t


class FeatureMF(MatrixFactorization):
    """Matrix factorization with side features and hashed crosses.

    - A movie's vector is its id embedding plus the mean-pooled embeddings of its feature values (LightFM
      style), each column projected to the model dimension when its own dimension differs; likewise users.
      Feature columns also carry a bias per value (a genre's bias), so a movie with no ratings still has a
      vector and a bias from its features: cold start.
    - A cross [a, b] adds a learned weight per (hashed) combination of values to the score, the wide part of a
      wide-and-deep model. A user x movie cross is exactly a dot product between the user's one-hot value of
      a and a per-movie block (the mean weight over the movie's b values for each a), so the exported vectors
      [p_u, one-hot(a_u)] and [q_m, block_m] keep the FAISS inner product equal to the model's score; a
      movie x movie cross folds into the movie bias, a user x user cross into the user bias.
    """

    def __init__(self, n_users: int, n_movies: int, dim: int, fs, *, explicit: bool, init_std: float = 0.05,
                 **kw):
        super().__init__(n_users, n_movies, dim, init_std=init_std, **kw)
        from embedrec.model.features import cross_hash

        self._hash = cross_hash
        self.fs_desc = fs.describe()
        self.explicit = explicit
        self.cols = {c.key: c for c in fs.movie + fs.user}
        self.emb, self.proj, self.fbias = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        for key, c in self.cols.items():
            name = key.replace(".", "_")
            self.register_buffer(f"idx_{name}", _pad(c.idx, c.size), persistent=False)
            if key not in fs.embedded:
                continue
            e = nn.Embedding(c.size + 1, c.dim, padding_idx=c.size)
            nn.init.normal_(e.weight, std=init_std)
            with torch.no_grad():
                e.weight[c.size].zero_()
            self.emb[name] = e
            if c.dim != dim:
                self.proj[name] = nn.Linear(c.dim, dim, bias=False)
            if c.side == "movie" or explicit:
                b = nn.Embedding(c.size + 1, 1, padding_idx=c.size)
                nn.init.zeros_(b.weight)
                self.fbias[name] = b
        self.crosses = list(fs.crosses)
        self.buckets = fs.buckets
        self.cross_w = nn.ModuleList()
        for _ in self.crosses:
            w = nn.Embedding(fs.buckets, 1)
            nn.init.zeros_(w.weight)
            self.cross_w.append(w)

    # -- pooled lookups
    def _values(self, key: str, rows: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"idx_{key.replace('.', '_')}")[rows]

    def _pool(self, key: str, rows: torch.Tensor, table: nn.Embedding) -> torch.Tensor:
        idx = self._values(key, rows)
        pad = self.cols[key].size
        cnt = (idx != pad).sum(-1, keepdim=True).clamp(min=1)
        return table(idx).sum(-2) / cnt

    def _side(self, side: str, rows: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        out = base
        for key in self.cols:
            name = key.replace(".", "_")
            if key.startswith(side) and name in self.emb:
                v = self._pool(key, rows, self.emb[name])
                out = out + (self.proj[name](v) if name in self.proj else v)
        return out

    def user_vec(self, u):
        return self._side("user.", u, super().user_vec(u))

    def movie_vec(self, m):
        return self._side("movie.", m, self.movie(m))

    def _fbias(self, side: str, rows) -> torch.Tensor:
        out = torch.zeros(rows.shape[0], device=rows.device)
        for key in self.cols:
            name = key.replace(".", "_")
            if key.startswith(side) and name in self.fbias:
                out = out + self._pool(key, rows, self.fbias[name]).squeeze(-1)
        return out

    def _pair_cross(self, ci: int, va: torch.Tensor, pad_a: int, vb: torch.Tensor, pad_b: int) -> torch.Tensor:
        """Mean cross weight over all value pairs; va (N, La), vb (N, Lb) -> (N,)."""
        a, b = va.unsqueeze(-1), vb.unsqueeze(-2)
        mask = ((a != pad_a) & (b != pad_b)).float()
        h = self._hash(a.clamp(max=pad_a - 1), b.clamp(max=pad_b - 1), ci, self.buckets)
        w = self.cross_w[ci](h).squeeze(-1)
        return (w * mask).sum((-1, -2)) / mask.sum((-1, -2)).clamp(min=1)

    def movie_bias_of(self, m):
        out = super().movie_bias_of(m) + self._fbias("movie.", m)
        for ci, (ka, kb) in enumerate(self.crosses):
            if ka.startswith("movie.") and kb.startswith("movie."):
                out = out + self._pair_cross(ci, self._values(ka, m), self.cols[ka].size, self._values(kb, m),
                                             self.cols[kb].size)
        return out

    def user_bias_of(self, u):
        out = self.user_bias(u).squeeze(-1) if self.user_bias is not None else torch.zeros(u.shape[0], device=u.device)
        if not self.explicit:
            return out
        out = out + self._fbias("user.", u)
        for ci, (ka, kb) in enumerate(self.crosses):
            if ka.startswith("user.") and kb.startswith("user."):
                out = out + self._pair_cross(ci, self._values(ka, u), self.cols[ka].size, self._values(kb, u),
                                             self.cols[kb].size)
        return out

    def user_movie_crosses(self):
        return [(ci, ka, kb) for ci, (ka, kb) in enumerate(self.crosses)
                if ka.startswith("user.") and kb.startswith("movie.")]

    def cross_block(self, ci: int, kb: str, m: torch.Tensor, size_a: int) -> torch.Tensor:
        """(len(m), size_a): for each value a of the user column, the mean weight over the movie's b values."""
        vb = self._values(kb, m)
        n = vb.shape[0]
        a = torch.arange(size_a, device=m.device).view(1, size_a, 1).expand(n, size_a, vb.shape[1])
        b = vb.unsqueeze(1).expand(n, size_a, vb.shape[1])
        pad_b = self.cols[kb].size
        mask = (b != pad_b).float()
        w = self.cross_w[ci](self._hash(a, b.clamp(max=pad_b - 1), ci, self.buckets)).squeeze(-1)
        return (w * mask).sum(-1) / mask.sum(-1).clamp(min=1)

    def cross_score(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Sum of user x movie cross weights for pairs (u[i], m[i])."""
        out = torch.zeros(u.shape[0], device=u.device)
        for ci, ka, kb in self.user_movie_crosses():
            a = self._values(ka, u)[:, 0]
            block = self.cross_block(ci, kb, m, self.cols[ka].size)
            out = out + block.gather(1, a.unsqueeze(1)).squeeze(1)
        return out

    def cross_matrix(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(len(u), len(m)) user x movie cross terms, for softmax logits."""
        out = torch.zeros(u.shape[0], m.shape[0], device=u.device)
        for ci, ka, kb in self.user_movie_crosses():
            block = self.cross_block(ci, kb, m, self.cols[ka].size)  # (M, A)
            out = out + block.T[self._values(ka, u)[:, 0]]
        return out

    def forward(self, u, m):
        s = (self.user_vec(u) * self.movie_vec(m)).sum(-1) + self.movie_bias_of(m) + self.cross_score(u, m)
        if self.explicit:
            s = s + self.user_bias_of(u) + self.global_mean
        return s

    @torch.no_grad()
    def export(self, unrated: torch.Tensor | None = None) -> dict:
        """Numpy factors the model scores with: [p_u, one-hot blocks] . [q_m, cross blocks] + b_m (+ b_u + mu).

        Movies without training ratings (``unrated``) keep only their feature part: their id embedding and
        id bias were never trained.
        """
        dev = self.movie.weight.device
        users = torch.arange(self.n_users, device=dev)
        movies = torch.arange(self.n_movies, device=dev)
        qv = self.movie_vec(movies)
        bm = self.movie_bias_of(movies)
        if unrated is not None and unrated.any():  # drop the untrained id parts: features only
            unrated = unrated.to(dev)
            qv[unrated] -= self.movie.weight[unrated]
            if self.movie_bias is not None:
                bm[unrated] -= self.movie_bias.weight[unrated, 0]
        P = [self.user_vec(users)]
        Q = [qv]
        for ci, ka, kb in self.user_movie_crosses():
            size_a = self.cols[ka].size
            P.append(torch.nn.functional.one_hot(self._values(ka, users)[:, 0], size_a).float())
            Q.append(self.cross_block(ci, kb, movies, size_a))
        tables = {}
        for key in self.cols:
            name = key.replace(".", "_")
            if name in self.emb:
                e = self.emb[name].weight
                tables[f"feature_{name}"] = (self.proj[name](e) if name in self.proj else e).cpu().numpy().copy()
            if name in self.fbias:
                tables[f"feature_bias_{name}"] = self.fbias[name].weight[:, 0].cpu().numpy().copy()
        return {"feature_tables": tables,
                "user_factors": torch.cat(P, 1).cpu().numpy().copy(), "movie_factors": torch.cat(Q, 1).cpu().numpy().copy(),
                "user_bias": self.user_bias_of(users).cpu().numpy().copy() if self.explicit else None,
                "movie_bias": bm.cpu().numpy().copy(), "global_mean": float(self.global_mean)}
