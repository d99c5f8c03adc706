"""Similar users per call on a synthetic user table (numpy, in process): `Model.similar_users(user, k=10)` over a
model in memory of N users x d dimensions (standard normal vectors, every 1000th a zero one), its first call
(which makes the unit user table, Factors.unit_users) and the median of the later ones. With --every-call the
unit table is dropped before each call, which is what every call paid before it was kept (session 47).

Usage: python benchmarks/similar_users.py [--users 1000000] [--dim 64] [--calls 11] [--every-call]
(about 10 seconds on 2 cores at 1M x 64)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from embedrec.model.factors import Factors
from embedrec.models import Model
from embedrec.serve.recommender import Recommender


def model(n_users: int, dim: int, seed: int = 0) -> Model:
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n_users, dim), dtype=np.float32)
    P[::1000] = 0  # users without a vector: never listed, never asked
    Q = rng.standard_normal((100, dim), dtype=np.float32)
    indptr = np.zeros(n_users + 1, np.int64)  # nobody saw anything: both_rated and rated are 0
    movies = {"movie_id": np.arange(1, 101), "title": [f"m{i}" for i in range(100)], "year": [None] * 100,
              "genres": [[]] * 100}
    return Model(Recommender.from_parts(Factors(P, Q, None, None), np.arange(n_users), movies,
                                        (indptr, np.zeros(0, np.int32)), np.ones(100)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--calls", type=int, default=11, help="calls after the first")
    ap.add_argument("--every-call", action="store_true", help="drop the unit table before each call")
    args = ap.parse_args()
    m = model(args.users, args.dim)
    rng = np.random.default_rng(1)
    asked = [int(u) for u in rng.integers(0, args.users, 4 * (args.calls + 1)) if u % 1000][:args.calls + 1]
    times = []
    for user in asked:
        if args.every_call:
            m.engine.factors.__dict__.pop("unit_users", None)
        t = time.perf_counter()
        m.similar_users(user, k=10)
        times.append(time.perf_counter() - t)
    print(f"{args.users:,} users x {args.dim}: first call {times[0]:.3f} s, then median {statistics.median(times[1:]):.4f} s "
          f"(min {min(times[1:]):.4f}, max {max(times[1:]):.4f}) over {len(times) - 1} calls"
          + (" (the unit table made at every call)" if args.every_call else ""))


if __name__ == "__main__":
    main()
