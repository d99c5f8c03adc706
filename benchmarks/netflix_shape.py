"""A folder of the Netflix Prize's shape, to measure `embedrec ingest` on (the Prize's own files are not here).

Four ``combined_data_N.txt`` (``MOVIE:`` then ``USER,RATING,YYYY-MM-DD`` lines) and ``movie_titles.csv``: 17,770
movies, 480,189 users (ids spread up to about 2.4M, as the Prize's reach 2,649,429) and 100,480,507 ratings by
default, each (user, movie) pair once; a movie's count falls with its popularity rank (exponent 0.95), between 3
and half the users. Ratings and dates are uniform (the reader's cost does not depend on them).

Usage: python benchmarks/netflix_shape.py OUT_FOLDER [--ratings N] [--seed S]
then:  /usr/bin/time -v embedrec ingest OUT_FOLDER -o DATASET
(session 59: the default folder written in 604 s at load 14; its ingest peaked at 6,859 MB, docs/known-gaps.md)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

MOVIES, USERS, RATINGS = 17_770, 480_189, 100_480_507


def counts(total: int, movies: int, users: int) -> np.ndarray:
    """Each movie's ratings: proportional to rank**-0.95, within [3, users // 2], summing to ``total``."""
    w = 1.0 / np.arange(1, movies + 1) ** 0.95
    lo, hi = 0.0, float(total) * 10
    for _ in range(100):  # the scale whose clipped counts sum to total
        mid = (lo + hi) / 2
        if np.clip((w / w.sum() * mid).astype(np.int64), 3, users // 2).sum() < total:
            lo = mid
        else:
            hi = mid
    n = np.clip((w / w.sum() * lo).astype(np.int64), 3, users // 2)
    short = total - int(n.sum())
    room = np.flatnonzero(n < users // 2)[::-1]
    n[room[:short]] += 1  # the rest one each to the least rated movies with room
    return n


def write(out: Path, total: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n = rng.permutation(counts(total, MOVIES, USERS))
    user_ids = 1 + np.arange(USERS, dtype=np.int64) * 5 + rng.integers(0, 5, USERS)
    days = pd.date_range("1999-11-11", periods=2_200, freq="D").strftime("%Y-%m-%d").to_numpy()
    step = 1_000_003 % USERS  # coprime with USERS: a movie's users are distinct
    bounds = np.linspace(0, MOVIES, 5).astype(int)
    for part in range(4):
        with open(out / f"combined_data_{part + 1}.txt", "w", newline="\n") as f:
            for m in range(bounds[part], bounds[part + 1]):
                c = int(n[m])
                at = (int(rng.integers(0, USERS)) + np.arange(c, dtype=np.int64) * step) % USERS
                f.write(f"{m + 1}:\n")
                pd.DataFrame({"u": user_ids[at], "r": rng.integers(1, 6, c),
                              "d": days[rng.integers(0, len(days), c)]}).to_csv(f, header=False, index=False)
    years = 1950 + np.arange(MOVIES) % 56
    pd.DataFrame({"id": np.arange(1, MOVIES + 1), "year": years,
                  "title": [f"Movie {i}, part two" for i in range(1, MOVIES + 1)]}).to_csv(
        out / "movie_titles.csv", header=False, index=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--ratings", type=int, default=RATINGS)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t = time.perf_counter()
    write(a.out, a.ratings, a.seed)
    print(f"wrote {a.ratings:,} ratings to {a.out} in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
