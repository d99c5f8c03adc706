"""A movie's audience (`Model.audience`, `recommend --audience`), measured two ways (not in `make bench`).

quality RUN DATASET: for every movie with a rating in the dataset's test split (held out of the run's model), the
top K users of `audience(movie, k=K)` against the K most active users who have not rated it (the users' "most
popular": by their count of seen movies), NDCG@K of the movie's test raters, paired per movie with its standard
error; and the median milliseconds of a call.

scale [--users N] [--dim D] [--pairs P]: the median seconds of a call on a model in memory of N users x D
dimensions (standard normal vectors) over 1,000 movies with P seen pairs drawn at random, beside the physical bound
measured in the same loop: the user table's product with the movie's vector and a partition (what implicit's users
write by hand, the raters left in).

Usage: python benchmarks/audience.py quality runs/ml-100k data/prepared/ml-100k [--k 50]
       python benchmarks/audience.py scale --users 1000000 --dim 128 --pairs 100000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def ndcg(listed: list, relevant: set) -> float:
    gain = sum(1 / np.log2(i + 2) for i, u in enumerate(listed) if u in relevant)
    ideal = sum(1 / np.log2(i + 2) for i in range(min(len(relevant), len(listed))))
    return gain / ideal


def quality(run: str, prepared: str, k: int) -> None:
    import embedrec as er
    from embedrec.serve.audience import raters

    m = er.open(run)
    ds = er.load_dataset(prepared)
    e = m.engine
    users = ds.users.sort_values("user_idx")["user_id"].to_numpy()
    movies = ds.movies.sort_values("movie_idx")["movie_id"].to_numpy() if "movie_idx" in ds.movies else \
        ds.movies["movie_id"].to_numpy()
    test = ds.splits["test"]
    truth: dict = {}
    for u, mv in zip(users[test.user].tolist(), movies[test.movie].tolist()):
        truth.setdefault(mv, set()).add(u)
    activity = np.diff(np.asarray(e.seen_ptr)).astype(np.float64)
    zero = ~np.asarray(e.P).any(axis=1)
    ids = np.asarray(m.user_ids)
    ours, base, times = [], [], []
    for mv, relevant in truth.items():
        row = e.movie_row(mv)
        if e.untrained[row]:
            continue
        t = time.perf_counter()
        listed = m.audience(mv, k=k).user_ids[0].tolist()
        times.append(time.perf_counter() - t)
        s = activity.copy()
        s[raters(e, np.r_[row, e.catalogue.twins([row])].astype(np.int64))] = -np.inf
        s[zero] = -np.inf
        active = ids[np.lexsort((np.arange(s.size), -s))[:k]].tolist()
        ours.append(ndcg(listed, relevant))
        base.append(ndcg(active, relevant))
    a, b = np.array(ours), np.array(base)
    d = a - b
    print(f"{a.size:,} movies with test raters: audience NDCG@{k} {a.mean():.4f}, the most active users "
          f"{b.mean():.4f}; difference {d.mean():+.4f} (SE {d.std(ddof=1) / np.sqrt(d.size):.4f}); a call "
          f"{statistics.median(times) * 1e3:.2f} ms (median)")


def scale(n_users: int, dim: int, pairs: int, calls: int = 7) -> None:
    from embedrec.model.factors import Factors
    from embedrec.models import Model
    from embedrec.serve.recommender import Recommender

    rng = np.random.default_rng(0)
    n_movies = 1000
    P = rng.standard_normal((n_users, dim), dtype=np.float32)
    Q = rng.standard_normal((n_movies, dim), dtype=np.float32)
    counts = rng.multinomial(pairs, np.full(n_users, 1 / n_users))
    ptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    idx = np.concatenate([np.sort(rng.choice(n_movies, min(c, n_movies), replace=False)) for c in counts]
                         ).astype(np.int32) if n_users <= 10_000 else rng.integers(0, n_movies, ptr[-1], np.int32)
    movies = {"movie_id": np.arange(1, n_movies + 1), "title": [None] * n_movies, "year": [None] * n_movies,
              "genres": [[]] * n_movies}
    m = Model(Recommender.from_parts(Factors(P, Q, None, None), np.arange(n_users), movies, (ptr, idx),
                                     np.ones(n_movies)))
    times, bound = [], []
    for i in range(calls):
        t = time.perf_counter()
        m.audience(i + 1, k=100)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()  # the physical bound beside it: the user table read once (implicit's by-hand way,
        s = P @ Q[i + 1]         # item_factors[i] @ user_factors.T and a partition, its raters left in)
        np.argpartition(-s, 100)[:100]
        bound.append(time.perf_counter() - t)
    a, b = statistics.median(times), statistics.median(bound)
    print(f"{n_users:,} users x {dim} dims, {int(ptr[-1]):,} seen pairs: a call {a:.3f} s (median of {calls}; the "
          f"first {times[0]:.3f} s); the product and a partition alone {b:.3f} s: {a / b:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("run")
    q.add_argument("dataset")
    q.add_argument("--k", type=int, default=50)
    s = sub.add_parser("scale")
    s.add_argument("--users", type=int, default=1_000_000)
    s.add_argument("--dim", type=int, default=128)
    s.add_argument("--pairs", type=int, default=100_000_000)
    args = ap.parse_args()
    if args.what == "quality":
        quality(args.run, args.dataset, args.k)
    else:
        scale(args.users, args.dim, args.pairs)


if __name__ == "__main__":
    main()
