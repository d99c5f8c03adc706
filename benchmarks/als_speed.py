"""One ALS sweep of embedrec's kernel against one iteration of implicit's ALS, same data, same cores.

100,000 users x 20,000 movies, ~3.2M power-law interactions, 64 dims (``--dim``), 2 threads each; implicit's
per-iteration time is (fit with 4 iterations - fit with 1) / 3 so its set-up is not counted against it.
Usage: python benchmarks/als_speed.py [--dim 64]   (prints one JSON line)
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=64)
    a = ap.parse_args()
    nu, nm, n, d = 100_000, 20_000, 3_500_000, a.dim
    rng = np.random.default_rng(0)
    pop = 1.0 / np.arange(1, nm + 1) ** 0.9
    pop /= pop.sum()
    key = np.unique(rng.integers(0, nu, n) * nm + rng.choice(nm, n, p=pop))
    u, m = key // nm, key % nm
    from embedrec.model.mf import MatrixFactorization
    from embedrec.training.als import ALS

    cfg = SimpleNamespace(als_unobserved=0.05, als_reg=0.01, als_reg_exponent=1.0, als_cg_steps=3, als_rating_weight=0.0,
                          als_recency=0.0)
    model = MatrixFactorization(nu, nm, d, user_bias=False, movie_bias=False, init_std=0.05)
    als = ALS(model, cfg, u, m, threads=2)
    als.epoch()  # warm-up (kernel load)
    t = time.perf_counter()
    for _ in range(3):
        als.epoch()
    ours = (time.perf_counter() - t) / 3
    import implicit
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    X = sp.csr_matrix((np.ones(key.size, np.float32), (u, m)), shape=(nu, nm))
    times = {}
    with threadpool_limits(1, "blas"):
        for it in (1, 4):
            al = implicit.cpu.als.AlternatingLeastSquares(factors=d, iterations=it, num_threads=2, random_state=0)
            t = time.perf_counter()
            al.fit(X, show_progress=False)
            times[it] = time.perf_counter() - t
    theirs = (times[4] - times[1]) / 3
    print(json.dumps({"interactions": int(key.size), "dim": d, "embedrec_sweep_s": round(ours, 3),
                      "implicit_iteration_s": round(theirs, 3), "ratio": round(ours / theirs, 2)}))


if __name__ == "__main__":
    main()
