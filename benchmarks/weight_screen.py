"""A screen of the observed term's weights (issue #13; not in `make bench`): levers.py run with each training
pair's ALS confidence (train.als_rating_weight's, the recency's) multiplied by (pop_i / mean)^-beta * (n_u / mean)^-gamma,
pop_i the movie's and n_u the user's training pairs, then scaled back to the mean weight it had: beta > 0 leans the
fit to the long tail (an inverse-propensity weight), beta < 0 to popular movies; gamma > 0 gives light users more of
the movie solve. Every fit of a selection and the refit weigh so; OBS=beta,gamma,items: the movies' solve alone
(the users' solve as the defaults weigh it).

Usage: OBS=beta,gamma[,items] python benchmarks/weight_screen.py [levers.py's arguments]   (OBS unset: the defaults)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import levers  # noqa: E402  (sets the thread variables before numpy)
import numpy as np  # noqa: E402

from embedrec.training import als  # noqa: E402


def main() -> None:
    spec = os.environ.get("OBS")
    if spec:
        beta, gamma, *side = spec.split(",")
        beta, gamma, items_only = float(beta), float(gamma), side == ["items"]
        init = als.ALS.__init__

        def patched(self, model, train_cfg, users, movies, threads, engine="auto", weights=None, device=None,
                    csrs=None, bar=None):
            pop = np.bincount(movies, minlength=model.n_movies).astype(np.float64)
            act = np.bincount(users, minlength=model.n_users).astype(np.float64)
            w = np.ones(users.size) if weights is None else weights.astype(np.float64)
            mean = w.mean()
            w = w * (pop[movies] / pop[movies].mean()) ** -beta * (act[users] / act[users].mean()) ** -gamma
            w = (w * mean / w.mean()).astype(np.float32)
            if items_only:  # the users' own solve as the defaults weigh it: the movies' solve alone reweighed
                csrs = (*als._csr(users, movies, model.n_users, weights), *als._csr(movies, users, model.n_movies, w))
                init(self, model, train_cfg, users, movies, threads, engine, weights, device, csrs, bar)
                return
            init(self, model, train_cfg, users, movies, threads, engine, w, device, None, bar)
        als.ALS.__init__ = patched
    levers.main()


if __name__ == "__main__":
    main()
