"""Per-call latency from Python against implicit (not in `make bench`): `Model.similar`, `Model.similar_users`,
`Model.recommend` of one user and of 100 users on a trained run, beside implicit 0.7's `similar_items`,
`similar_users` and `recommend` of an ALS model fit
on the same training pairs (128 factors), the median of many calls each, interleaved, one BLAS thread.

Usage: python benchmarks/call_latency.py RUN DATASET   (e.g. runs/ml-100k data/prepared/ml-100k: the quick start's)
Prints one line per round: each call's median microseconds and the ratio to implicit's.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import scipy.sparse as sps  # noqa: E402


def median_us(f, n: int = 1000) -> float:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)) * 1e6


def main() -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    import embedrec as er

    run, prepared = sys.argv[1:3]
    m = er.open(run)
    ds = er.load_dataset(prepared)
    tr = ds.splits["train"]
    X = sps.csr_matrix((np.ones(tr.user.size, np.float32), (tr.user, tr.movie)), shape=(ds.n_users, ds.n_movies))
    als = AlternatingLeastSquares(factors=128, iterations=15, random_state=0)
    als.fit(X, show_progress=False)
    movie, user = m.movie_ids[0], m.user_ids[0]  # (the first of each, by row)
    mrow, urow = 0, 0
    users = list(m.user_ids[:100])
    for _ in range(3):
        a = median_us(lambda: m.similar(movie, k=10))
        b = median_us(lambda: als.similar_items(mrow, N=11))
        c = median_us(lambda: m.recommend(user, k=10))
        d = median_us(lambda: als.recommend(urow, X[urow], N=10))
        g = median_us(lambda: m.similar_users(user, k=10))
        h = median_us(lambda: als.similar_users(urow, N=11))
        e = median_us(lambda: m.recommend(users, k=10), 100)
        f = median_us(lambda: als.recommend(np.arange(100), X[:100], N=10), 100)
        print(f"similar {a:.0f} us, implicit {b:.0f} ({a / b:.1f}x); recommend one user {c:.0f} us, implicit {d:.0f} "
              f"({c / d:.1f}x); 100 users {e:.0f} us, implicit {f:.0f} ({e / f:.1f}x); similar users {g:.0f} us, "
              f"implicit {h:.0f} ({g / h:.1f}x); load "
              f"{os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
