"""A screen of seed bagging (issue #13; not in `make bench`): the defaults fitted (``fit_and_refit``, as ``train``)
at train.seed 0..m-1, served as one dot product, U' = [U_1 .. U_m] / m, V' = [V_1 .. V_m] (m x the dimension:
the mean of the m models' scores). Valid: the selections' models (users re-solved at their chosen scale, as
served), on the bench's valid evaluator; test: the refits', paired per user with seed 0's model alone (the
defaults) and with EASE tuned on valid (levers.py's).

Usage: python benchmarks/bag_screen.py [--seed S | --time | --synthetic] [--models M] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import ranking as R  # noqa: E402
from levers import paired, screen_start  # noqa: E402


def served(ds, model, train_cfg, model_cfg, resolve: bool):
    from embedrec.training import trend
    from embedrec.training.fit import factors
    from embedrec.training.select import OneProcess

    if resolve:  # the selection's model as served: its users re-solved at the chosen scale
        on = OneProcess(ds, model_cfg, train_cfg, {})
        model = on.copy(model)
        with on.blas(on.dim):
            on.runner(model).refit_users(float(train_cfg.als_user_unobserved))
    f = trend.served(factors(model), ds, train_cfg)
    extra = [] if f.get("movie_bias") is None else [f["movie_bias"][:, None]]  # a bias as one more column
    U = np.hstack([f["user_factors"]] + ([np.ones((f["user_factors"].shape[0], 1), np.float32)] if extra else []))
    return U, np.hstack([f["movie_factors"], *extra])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    from embedrec.config import load_config
    from embedrec.training.select import fit_and_refit

    u, sp, valid, test, source, best, ease, t0 = screen_start(a)
    nu, ni = sp.n_users, sp.n_items
    split = "time" if a.time else f"random seed {a.seed}"
    print(f"{source}, {split}: EASE lambda {best[1]} test {ease.mean():.4f}; {time.perf_counter() - t0:.0f} s",
          flush=True)
    ds = R._embedrec_dataset(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, nu, ni, sp.fit_t, sp.valid_t)
    vs, ts_ = [], []
    base = None
    for s in range(a.models):
        t1 = time.perf_counter()
        cfg = load_config(None, [f"train.threads={R.THREADS}", f"train.seed={s}", *a.set])
        with tempfile.TemporaryDirectory() as tmp:
            merged, result, selected, chosen = fit_and_refit(ds, cfg, Path(tmp) / "run")
        vs.append(served(ds, selected.model, chosen.train, cfg.model, True))
        ts_.append(served(merged, result.model, chosen.train, cfg.model, False))
        one_v = valid(R.factor_scorer(*vs[-1]))["ndcg"].mean()
        one_t = test(R.factor_scorer(*ts_[-1]))["ndcg"]
        base = one_t if base is None else base
        m = len(vs)
        bag_v = valid(R.factor_scorer(np.hstack([U for U, _ in vs]) / m, np.hstack([V for _, V in vs])))["ndcg"]
        bag_t = test(R.factor_scorer(np.hstack([U for U, _ in ts_]) / m, np.hstack([V for _, V in ts_])))["ndcg"]
        if m == 1:
            v_base = bag_v.mean()
        t = chosen.train
        print(f"seed {s} alone: valid {one_v:.4f}, test {one_t.mean():.4f} (dim {selected.model.dim}, reg {t.als_reg}, "
              f"users' a0 x{t.als_user_unobserved}); bag of {m}: valid {bag_v.mean():.4f} "
              f"({(bag_v.mean() / v_base - 1) * 100:+.2f}%), test {bag_t.mean():.4f}, vs seed 0 {paired(bag_t - base)},"
              f" vs EASE {paired(bag_t - ease)}; {time.perf_counter() - t1:.0f} s", flush=True)


if __name__ == "__main__":
    main()
