"""A lever of the default model measured on one split of a real dataset (session 54; not in `make bench`): the
defaults against the same with ``--set`` overrides, each against EASE tuned on the same validation rows, paired per
test user, and by the users' activity (their ratings in the whole dataset), where the heavy users of a wide
catalogue lose to EASE (BENCHMARKS.md, sessions 51-54).

Usage: python benchmarks/levers.py [--source SOURCE | --synthetic | --tastes] [--seed S | --time] NAME=SET[;SET...] ...
  SOURCE: what `embedrec ingest` reads (default ml-100k; a MovieLens folder or zip, a ratings CSV such as
  ML-1M's of BENCHMARKS.md session 53); --synthetic: the bench's 100K x 20K x 3.5M set (ranking.py's, EASE on
  its 5,000 most popular movies and its lambda grid, as there); --tastes: 1,000 tastes over 5,000 movies
  (generate(20000, 5000, 600000, clusters=1000, taste=0.9); EASE over every movie, lambda 12.5-100); the split: ranking.py's per-user random 80/20 of
  seed S (default 0), or with --time its per-user chronological one. The first variant is the base the others
  are paired against.
  e.g. python benchmarks/levers.py --source ratings.csv base= lower='train.als_reg=0.0085'
       'wide=train.als_dims=[512]'                       (ML-1M: about 15 s a variant on 2 cores, EASE 20 s)
Prints one line per variant on stdout: its own valid NDCG@10 (the selection's), test NDCG@10, the paired
difference to EASE and to the base (SE), the dimension and epochs, what the selection chose, the seconds, and
the difference to EASE by the users' ratings (20-49, 50-99, 100-199, 200-499, 500+).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as ranking.py: 2 cores for every model
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
import torch  # noqa: E402

EASE_LAMBDAS = (50, 100, 200, 500, 1000, 2000, 4000, 8000)
ACTIVITY = ((20, 50), (50, 100), (100, 200), (200, 500), (500, None))


def fit(sp: R.Split, overrides: list[str]) -> tuple:
    """What ``embedrec train`` fits with ``overrides`` (ranking.fit_embedrec's steps), and what it chose."""
    from embedrec.config import load_config
    from embedrec.train_workflow import served_factors
    from embedrec.training.fit import factors
    from embedrec.training.select import fit_and_refit

    cfg = load_config(None, [f"train.threads={R.THREADS}", *overrides])
    ds = R._embedrec_dataset(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, sp.n_users, sp.n_items, sp.fit_t, sp.valid_t)
    with tempfile.TemporaryDirectory() as tmp:
        merged, result, selected, chosen = fit_and_refit(ds, cfg, Path(tmp) / "run")
    f = served_factors(factors(result.model, result.unrated), merged, chosen, result.loss, selected.lowpass_basis)
    t = chosen.train
    said = (f"dim {result.model.dim}, epoch {selected.best_epoch}/{selected.epochs_run}, refit "
            f"{result.epochs_run if result is not selected else 0}, reg {t.als_reg}, a0 {t.als_unobserved}, users' "
            f"a0 x{t.als_user_unobserved}, recency {t.als_recency}, trend {t.als_trend}, lowpass {t.als_lowpass}")
    return R.factor_scorer(f["user_factors"], f["movie_factors"], f.get("movie_bias")), float(selected.best_value), said


def paired(d: np.ndarray) -> str:
    return f"{d.mean():+.4f} (SE {d.std(ddof=1) / np.sqrt(d.size):.4f})"


def bench_split(synthetic: bool, time_split: bool, seed: int, source: str = "ml-100k", tastes: bool = False):
    """The rows a lever is measured on, as ranking.py's protocols draw them: (u, the split, the valid and test
    evaluators, EASE's lambda grid, the source's name); ``synthetic``: the bench's 100K x 20K x 3.5M set;
    ``tastes``: 1,000 tastes over 5,000 movies (20K users x 600K interactions, taste 0.9), where EASE led the
    defaults until the block's width was chosen (BENCHMARKS.md, sessions 59-61; EASE over every movie)."""
    lambdas = EASE_LAMBDAS
    if synthetic or tastes:  # as ranking.py's synthetic protocol
        from embedrec.data.synth import generate

        if tastes:
            nu, ni = 20_000, 5_000
            u, i, _, ts = generate(nu, ni, 600_000, seed=0, clusters=1000, taste=0.9)
            lambdas, source = (12.5, 25, 50, 100), "1,000 tastes, 20K x 5K x 600K"
            R.EASE_MAX_ITEMS = max(R.EASE_MAX_ITEMS, ni)
        else:
            nu, ni = 100_000, 20_000
            u, i, _, ts = generate(nu, ni, 3_500_000, seed=0, taste=0.5)
            lambdas, source = R.GRIDS["synthetic"]["EASE"]["lambda"], "synthetic 100K x 20K x 3.5M"
    else:
        u, i, ts, _r, nu, ni = R.load_ml100k(ratings=True, source=source)
        R.EASE_MAX_ITEMS = max(R.EASE_MAX_ITEMS, ni)  # every movie, as protocols.py's
    sp = R.split_per_user(u, i, nu, ni, ts=ts) if time_split else R.split_per_user(u, i, nu, ni, seed=seed, times=ts)
    valid = R.Evaluator(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, nu, ni, max_users=R.VALID_USERS_MAX)
    test = R.Evaluator(sp.train_u, sp.train_i, sp.test_u, sp.test_i, nu, ni)
    return u, sp, valid, test, lambdas, source


def screen_parser(doc: str):
    """A screen's argument parser with the split's options every screen takes: --seed, --time, --synthetic."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--synthetic", action="store_true")
    return ap


def screen_start(a) -> tuple:
    """A screen's common start (``a``: its parsed --synthetic, --time and --seed): R.THREADS threads, the rows
    (:func:`bench_split`) and EASE tuned on them (:func:`tuned_ease`). Returns (u, the split, the valid and test
    evaluators, the source's name, EASE's (valid NDCG@10, lambda), its per-user test NDCG@10, the start time)."""
    import time

    import torch

    torch.set_num_threads(R.THREADS)
    t0 = time.perf_counter()
    u, sp, valid, test, lambdas, source = bench_split(a.synthetic, a.time, a.seed)
    best, ease = tuned_ease(sp, valid, test, lambdas)
    return u, sp, valid, test, source, best, ease, t0


def tuned_ease(sp, valid, test, lambdas) -> tuple[tuple[float, float], np.ndarray]:
    """EASE tuned on valid (its lambda of ``lambdas``), refit on train+valid, as protocols.py tunes it: ((its valid
    NDCG@10, lambda), its per-user test NDCG@10)."""
    best = None
    for lam in lambdas:
        for _, scorer, _ in R.fit_ease(sp.fit_u, sp.fit_i, sp.n_users, sp.n_items, {"lambda": lam}):
            v = float(valid(scorer)["ndcg"].mean())
            if best is None or v > best[0]:
                best = (v, lam)
    for _, scorer, _ in R.fit_ease(sp.train_u, sp.train_i, sp.n_users, sp.n_items, {"lambda": best[1]}):
        ease = test(scorer)["ndcg"]
    return best, ease


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="ml-100k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time", action="store_true", help="the per-user chronological split (no seed)")
    ap.add_argument("--synthetic", action="store_true", help="the bench's 100K x 20K x 3.5M synthetic set")
    ap.add_argument("--tastes", action="store_true", help="1,000 tastes over 5,000 movies (20K users, 600K rows)")
    ap.add_argument("variants", nargs="+", help="NAME=SET[;SET...] ('base=' for the defaults)")
    a = ap.parse_args()
    torch.set_num_threads(R.THREADS)
    u, sp, valid, test, lambdas, a.source = bench_split(a.synthetic, a.time, a.seed, a.source, a.tastes)
    nu = sp.n_users
    best, ease = tuned_ease(sp, valid, test, lambdas)
    split = "time" if a.time else f"random seed {a.seed}"
    print(f"{a.source}, {split}: {test.users.size:,} test users; EASE lambda {best[1]} (valid {best[0]:.4f}), "
          f"test NDCG@10 {ease.mean():.4f}", flush=True)
    count = np.bincount(u, minlength=nu)[test.users]
    base = None
    for spec in a.variants:
        name, _, sets = spec.partition("=")
        t0 = time.perf_counter()
        scorer, own_valid, said = fit(sp, [s for s in sets.split(";") if s])
        secs = time.perf_counter() - t0
        nd = test(scorer)["ndcg"]
        base = nd if base is None else base
        by = " ".join(f"{lo}{'-' + str(hi - 1) if hi else '+'} {(nd - ease)[(count >= lo) & (count < (hi or 1 << 62))].mean():+.4f}"
                      for lo, hi in ACTIVITY if ((count >= lo) & (count < (hi or 1 << 62))).any())
        print(f"{name}: valid {own_valid:.4f}, test {nd.mean():.4f}, vs EASE {paired(nd - ease)}, vs {a.variants[0].partition('=')[0]} "
              f"{paired(nd - base)}; {said}; {secs:.0f} s | vs EASE by ratings: {by}", flush=True)


if __name__ == "__main__":
    main()
