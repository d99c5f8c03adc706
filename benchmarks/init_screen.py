"""A screen of the ALS fit's starting movie table (issue #13; not in `make bench`): levers.py run with the drawn
N(0, model.init_std) movie table replaced by GF-CF's ideal low-pass basis of the fit's rows, the top-k right singular
vectors W of D_U^-1/2 R D_I^-1/2 (k the dimension), each column times its singular value^p, rows times
D_I^(q/2), then scaled so the mean row norm is the drawn table's. The users start as drawn (the first sweep solves
them first). A selection's every candidate and the refit's replay start from it, as from the drawn tables.

Usage: INIT=p,q python benchmarks/init_screen.py [levers.py's arguments]   (INIT unset: the drawn tables)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import levers  # noqa: E402  (sets the thread variables before numpy)
import numpy as np  # noqa: E402
import ranking as R  # noqa: E402
import scipy.sparse as sps  # noqa: E402

from embedrec.training import als  # noqa: E402

ROWS = {}  # the (users, movies) of the last dataset the bench made, by its shape


def lowpass(users, movies, n_users, n_movies, dim, p, q):
    from scipy.sparse.linalg import svds

    X = R.matrix(users, movies, n_users, n_movies)
    du, di = np.asarray(X.sum(1)).ravel(), np.asarray(X.sum(0)).ravel()
    Rt = sps.diags(1 / np.sqrt(np.maximum(du, 1))) @ X @ sps.diags(1 / np.sqrt(np.maximum(di, 1)))
    _, s, vt = svds(Rt.astype(np.float64), k=dim, random_state=0)
    return vt.T * s[None, :] ** p * np.maximum(di, 1)[:, None] ** (q / 2)


def main() -> None:
    spec = os.environ.get("INIT")
    if spec:
        p, q = map(float, spec.split(","))
        made = R._embedrec_dataset

        def recording(u, i, vu, vi, n_users, n_items, *a, **k):
            ROWS[(n_users, n_items)] = (u, i)
            return made(u, i, vu, vi, n_users, n_items, *a, **k)
        R._embedrec_dataset = recording
        init = als.Tables.__init__

        def patched(self, n_users, n_movies, dim, init_std, seed, draw=True, tick=None):
            init(self, n_users, n_movies, dim, init_std, seed, draw, tick)
            if draw and (n_users, n_movies) in ROWS:
                V = lowpass(*ROWS[(n_users, n_movies)], n_users, n_movies, dim, p, q)
                drawn = np.linalg.norm(self.movie_table, axis=1).mean()
                V *= drawn / max(np.linalg.norm(V, axis=1).mean(), 1e-12)
                self.movie_table[:] = V.astype(np.float32)
        als.Tables.__init__ = patched
    levers.main()


if __name__ == "__main__":
    main()
