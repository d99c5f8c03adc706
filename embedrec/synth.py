"""Synthetic MovieLens-like data with a known answer: planted low-rank structure, biases, noise, power-law
popularity and activity, timestamps. Deterministic by seed; written in chunks so memory stays bounded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


@dataclass
class Planted:
    user_factors: np.ndarray
    movie_factors: np.ndarray
    user_bias: np.ndarray
    movie_bias: np.ndarray
    mean: float
    noise: float


def planted(n_users: int, n_movies: int, rank: int, seed: int = 0, noise: float = 0.3) -> Planted:
    rng = np.random.default_rng(seed)
    return Planted(rng.normal(0, 1, (n_users, rank)).astype(np.float32) / np.sqrt(rank) * 1.0,
                   rng.normal(0, 1, (n_movies, rank)).astype(np.float32),
                   rng.normal(0, 0.3, n_users).astype(np.float32), rng.normal(0, 0.4, n_movies).astype(np.float32),
                   3.5, noise)


def sample_pairs(n_users: int, n_movies: int, n_ratings: int, rng: np.random.Generator, alpha: float = 1.0):
    """(user, movie) pairs with power-law movie popularity and user activity, without repeats."""
    mw = 1.0 / np.arange(1, n_movies + 1) ** alpha
    mw /= mw.sum()
    uw = 1.0 / np.arange(1, n_users + 1) ** (alpha * 0.5)
    uw /= uw.sum()
    mperm = rng.permutation(n_movies)
    uperm = rng.permutation(n_users)
    u = uperm[rng.choice(n_users, size=int(n_ratings * 1.3), p=uw)]
    m = mperm[rng.choice(n_movies, size=int(n_ratings * 1.3), p=mw)]
    import pandas as pd  # hash-based unique: numpy 2's np.unique is far slower at 100M keys

    key = pd.unique(u.astype(np.int64) * n_movies + m)
    key = key[rng.permutation(key.size)[:n_ratings]]
    return (key // n_movies).astype(np.int64), (key % n_movies).astype(np.int64)


def ratings_for(p: Planted, u: np.ndarray, m: np.ndarray, rng: np.random.Generator, half_stars: bool = True):
    raw = p.mean + p.user_bias[u] + p.movie_bias[m] + np.einsum("ij,ij->i", p.user_factors[u], p.movie_factors[m])
    raw = raw + rng.normal(0, p.noise, u.size)
    step = 0.5 if half_stars else 1.0
    lo = 0.5 if half_stars else 1.0
    return np.clip(np.round(raw / step) * step, lo, 5.0).astype(np.float32)


def write_movielens(out: Path, n_users: int, n_movies: int, n_ratings: int, rank: int = 8, seed: int = 0,
                    noise: float = 0.3, chunk: int = 5_000_000) -> Planted:
    """Write ratings.csv and movies.csv (MovieLens-latest layout) into ``out``; return the planted truth."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    p = planted(n_users, n_movies, rank, seed, noise)
    genre_of = rng.integers(0, len(GENRES), size=(n_movies, 2))
    years = rng.integers(1920, 2024, size=n_movies)
    with open(out / "movies.csv", "w", encoding="utf-8") as fh:
        fh.write("movieId,title,genres\n")
        for i in range(n_movies):
            g = sorted({GENRES[genre_of[i, 0]], GENRES[genre_of[i, 1]]})
            fh.write(f'{i + 1},"Movie {i + 1}, The ({years[i]})",{"|".join(g)}\n')
    u, m = sample_pairs(n_users, n_movies, n_ratings, rng)
    ts = rng.integers(9e8, 1.6e9, size=u.size)
    with open(out / "ratings.csv", "w", encoding="utf-8") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        for s in range(0, u.size, chunk):
            uu, mm = u[s:s + chunk], m[s:s + chunk]
            r = ratings_for(p, uu, mm, rng)
            block = np.char.add(np.char.add(np.char.add(np.char.add(
                (uu + 1).astype(str), ","), (mm + 1).astype(str)), ","), np.char.mod("%.1f", r))
            block = np.char.add(np.char.add(block, ","), ts[s:s + chunk].astype(str))
            fh.write("\n".join(block.tolist()))
            fh.write("\n")
    return p
