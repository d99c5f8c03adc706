"""The scoring module: biased matrix factorization. It only scores; the fit loop lives in train.py."""

from __future__ import annotations

import math

import torch
from torch import nn


def auto_dim(n_users: int, n_movies: int) -> int:
    """The classic starting point: the fourth root of the (movie) vocabulary size, at least 2."""
    return max(2, int(round(math.pow(n_movies, 0.25))))


class MatrixFactorization(nn.Module):
    """score(u, m) = mu + b_u + b_m + <p_u, q_m> (explicit); implicit keeps <p_u, q_m> + b_m."""

    def __init__(self, n_users: int, n_movies: int, dim: int, *, user_bias: bool = True, movie_bias: bool = True,
                 sparse: bool = False, init_std: float = 0.05, global_mean: float = 0.0):
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

    def movie_bias_of(self, m: torch.Tensor) -> torch.Tensor:
        return self.movie_bias(m).squeeze(-1) if self.movie_bias is not None else torch.zeros(m.shape)

    def forward(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        s = (self.user(u) * self.movie(m)).sum(-1) + self.movie_bias_of(m)
        if self.user_bias is not None:
            s = s + self.user_bias(u).squeeze(-1) + self.global_mean
        return s
