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

    def __repr__(self) -> str:  # an API review: the default repr dumped every array into a notebook's cell
        return (f"Planted({self.user_factors.shape[0]:,} users x {self.movie_factors.shape[0]:,} movies, rank "
                f"{self.user_factors.shape[1]}, mean {self.mean:g}, noise {self.noise:g})")


def planted(n_users: int, n_movies: int, rank: int, seed: int = 0, noise: float = 0.3) -> Planted:
    rng = np.random.default_rng(seed)
    return Planted(rng.normal(0, 1, (n_users, rank)).astype(np.float32) / np.sqrt(rank) * 1.0,
                   rng.normal(0, 1, (n_movies, rank)).astype(np.float32),
                   rng.normal(0, 0.3, n_users).astype(np.float32), rng.normal(0, 0.4, n_movies).astype(np.float32),
                   3.5, noise)


@dataclass
class Taste:
    """Taste clusters tied to the planted factors: each movie belongs to the cluster whose (unit) direction
    its factor vector points to most; each user prefers the ``TOP`` clusters its factor vector points to most,
    with weights ``TASTE_WEIGHTS`` in that order (empty clusters are never preferred)."""
    movie_cluster: np.ndarray  # (n_movies,) int32
    user_clusters: np.ndarray  # (n_users, TOP) int32, most preferred first
    user_weights: np.ndarray   # (TOP,) float64, sums to 1


TASTE_WEIGHTS = (0.6, 0.3, 0.1)


def taste_clusters(p: Planted, n_clusters: int, rng: np.random.Generator, chunk: int = 1 << 18) -> Taste:
    rank = p.movie_factors.shape[1]
    cent = rng.normal(0, 1, (n_clusters, rank))
    cent = (cent / np.linalg.norm(cent, axis=1, keepdims=True)).astype(np.float32)
    n_movies, n_users = p.movie_factors.shape[0], p.user_factors.shape[0]
    mc = np.empty(n_movies, np.int32)
    for s in range(0, n_movies, chunk):
        mc[s:s + chunk] = np.argmax(p.movie_factors[s:s + chunk] @ cent.T, axis=1)
    empty = np.bincount(mc, minlength=n_clusters) == 0
    top = min(len(TASTE_WEIGHTS), int((~empty).sum()))
    uc = np.empty((n_users, top), np.int32)
    for s in range(0, n_users, chunk):
        aff = p.user_factors[s:s + chunk] @ cent.T
        aff[:, empty] = -np.inf
        part = np.argpartition(-aff, top - 1, axis=1)[:, :top]
        order = np.argsort(-np.take_along_axis(aff, part, axis=1), axis=1, kind="stable")
        uc[s:s + chunk] = np.take_along_axis(part, order, axis=1)
    w = np.asarray(TASTE_WEIGHTS[:top], np.float64)
    return Taste(mc, uc, w / w.sum())


def sample_pairs(n_users: int, n_movies: int, n_ratings: int, rng: np.random.Generator, alpha: float = 1.0,
                 taste: float = 0.0, p: Planted | None = None, clusters: int = 32, chunk: int = 10_000_000):
    """(user, movie) pairs with power-law movie popularity and user activity, without repeats.

    ``taste`` = 0 is the popularity-only draw (which movies a user sees does not depend on the user, so no
    model can beat most-popular on it). With ``taste`` > 0 that share of each user's draws is taken from the
    user's preferred taste clusters (see :class:`Taste`; tied to the planted factors ``p``, drawn from ``rng``
    when ``p`` is None), popularity-weighted within the cluster; the rest by popularity alone. Drawn in chunks
    of ``chunk`` pairs; the keys (8 bytes a draw, 1.5 draws a pair; sorted in place) are the peak memory."""
    mw = 1.0 / np.arange(1, n_movies + 1) ** alpha
    mw /= mw.sum()
    uw = 1.0 / np.arange(1, n_users + 1) ** (alpha * 0.5)
    uw /= uw.sum()
    mperm = rng.permutation(n_movies)
    uperm = rng.permutation(n_users)
    import pandas as pd  # hash-based unique: numpy 2's np.unique is far slower at 100M keys

    if taste <= 0.0:
        u = uperm[rng.choice(n_users, size=int(n_ratings * 1.3), p=uw)]
        m = mperm[rng.choice(n_movies, size=int(n_ratings * 1.3), p=mw)]
        key = pd.unique(u.astype(np.int64) * n_movies + m)
    else:
        if p is None:
            p = planted(n_users, n_movies, 8, int(rng.integers(2 ** 31)))
        t = taste_clusters(p, clusters, rng)
        weight = np.empty(n_movies)
        weight[mperm] = mw
        members = [np.flatnonzero(t.movie_cluster == k) for k in range(clusters)]
        within = [weight[mk] / weight[mk].sum() if mk.size else None for mk in members]
        wcum = np.cumsum(t.user_weights)[:-1]
        keys, have, want = [], 0, int(n_ratings * 1.5)
        # i.i.d. draws as counts (multinomial) expanded and shuffled: several times faster than rng.choice's
        # binary search per draw at 1M users x 500K movies; the users come out grouped, which pairs them with
        # shuffled movie draws just as well
        for _ in range(8):  # taste draws repeat more often: draw again while repeats leave too few pairs
            for s in range(0, want, chunk):
                n = min(chunk, want - s)
                u = np.repeat(uperm, rng.multinomial(n, uw))
                m = np.repeat(mperm, rng.multinomial(n, mw))
                rng.shuffle(m)
                pick = np.flatnonzero(rng.random(n) < taste)
                slot = np.searchsorted(wcum, rng.random(pick.size), side="right")
                c = t.user_clusters[u[pick], slot]
                by = np.argsort(c.astype(np.int16) if clusters < 2 ** 15 else c, kind="stable")
                cnt = np.bincount(c, minlength=clusters)
                draws = []
                for k in np.flatnonzero(cnt):  # popularity-weighted within the cluster
                    d = np.repeat(members[k], rng.multinomial(cnt[k], within[k]))
                    rng.shuffle(d)
                    draws.append(d)
                if draws:
                    m[pick[by]] = np.concatenate(draws)
                keys.append(u * n_movies + m)
                del u, m, pick, slot, c, by, draws
            key = np.concatenate(keys) if len(keys) > 1 else keys[0]
            keys.clear()
            key.sort()  # in place; sort + diff is 10x faster than pd.unique here
            key = key[np.concatenate([[True], key[1:] != key[:-1]])]
            keys.append(key)
            if key.size >= n_ratings or key.size <= have:
                break
            have, want = key.size, int((n_ratings - key.size) * 2) + 1
    key = key[rng.permutation(key.size)[:n_ratings]]
    return (key // n_movies).astype(np.int64, copy=False), (key % n_movies).astype(np.int64, copy=False)


def ratings_for(p: Planted, u: np.ndarray, m: np.ndarray, rng: np.random.Generator, half_stars: bool = True):
    # np.take: fancy indexing is several times slower on large tables
    raw = p.mean + np.take(p.user_bias, u) + np.take(p.movie_bias, m) + np.einsum(
        "ij,ij->i", np.take(p.user_factors, u, axis=0), np.take(p.movie_factors, m, axis=0))
    raw = raw + rng.normal(0, p.noise, u.size)
    step = 0.5 if half_stars else 1.0
    lo = 0.5 if half_stars else 1.0
    return np.clip(np.round(raw / step) * step, lo, 5.0).astype(np.float32)


def generate(n_users: int, n_movies: int, n_ratings: int, rank: int = 8, seed: int = 0, noise: float = 0.3,
             taste: float = 0.5, clusters: int = 32):
    """In-memory interactions: (users, movies, ratings, timestamps) arrays (0-based ids, int64/float32/int64),
    taste-dependent by default (see :func:`sample_pairs`). Deterministic by seed."""
    rng = np.random.default_rng(seed)
    p = planted(n_users, n_movies, rank, seed, noise)
    u, m = sample_pairs(n_users, n_movies, n_ratings, rng, taste=taste, p=p, clusters=clusters)
    ts = rng.integers(9e8, 1.6e9, size=u.size)
    r = np.empty(u.size, np.float32)
    for s in range(0, u.size, 5_000_000):
        r[s:s + 5_000_000] = ratings_for(p, u[s:s + 5_000_000], m[s:s + 5_000_000], rng)
    return u, m, r, ts


def write_movielens(out: Path, n_users: int, n_movies: int, n_ratings: int, rank: int = 8, seed: int = 0,
                    noise: float = 0.3, chunk: int = 5_000_000, taste: float = 0.0, clusters: int = 32) -> Planted:
    """Write ratings.csv and movies.csv (MovieLens-latest layout) into ``out``; return the planted truth.
    ``taste`` > 0 makes which movies a user rates depend on the user (see :func:`sample_pairs`)."""
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
    u, m = sample_pairs(n_users, n_movies, n_ratings, rng, taste=taste, p=p, clusters=clusters)
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
