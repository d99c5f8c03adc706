"""The low-pass block's width k chosen on valid too (a helper's measurement; not in `make bench`): the defaults are
fitted once (``fit_and_refit``, as ``train``), then the block (training.lowpass, as train builds and serves it) is
tried at every width of ``--widths`` (capped at min(users, movies)) and weight c of lowpass.CS on the selection's
model (its users re-solved at the chosen scale, as train's choice sees them) on valid, and the picks of two rules
are served on the refit (train+valid) over the selection's basis W (lowpass.from_basis, as train serves it) and
scored on test, paired per test user with the defaults (today's served model: auto at k 128) and with EASE tuned
on the same valid rows.

One SVD per stage at the largest width (``--method``: dense, an exact eigendecomposition, whose top-k is a column
prefix, so each width costs only scoring; krylov: one SVD per width, each timed).

Rules: "best": the best valid over every (k, c), kept where it beats the model alone by lowpass.MARGIN and Z paired
SE (per valid user, the bench's valid evaluator), else off. "grow": k goes 128 -> 256 -> ... only while the best
over c at the next k beats the current k's by more than MARGIN; at the k it stops at, its best c, kept by the same
test against the model alone.

Usage: python benchmarks/widths.py [--seed S | --time] [--source SRC | --taste1000 | --synthetic] [--widths ..]
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
import torch  # noqa: E402
from levers import EASE_LAMBDAS, paired, tuned_ease  # noqa: E402
from postfit import Stage  # noqa: E402


def se(d):
    return float(d.std(ddof=1) / np.sqrt(d.size))


def sliced(lp, k):
    from embedrec.training.lowpass import LowPass

    return LowPass(lp.x[:, :k], lp.y[:, :k], lp.a[:, :k], lp.s[:k], None if lp.w is None else lp.w[:, :k])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--source", default="ml-100k")
    ap.add_argument("--taste1000", action="store_true", help="generate(20000, 5000, 600000, clusters=1000, taste=0.9)")
    ap.add_argument("--synthetic", action="store_true", help="generate(100000, 20000, 3500000, seed=0, taste=0.5)")
    ap.add_argument("--widths", default="128,256,512,1024")
    ap.add_argument("--method", default="dense")
    ap.add_argument("--test-all", action="store_true", help="also score test at every (k, c)")
    a = ap.parse_args()
    from embedrec.config import load_config
    from embedrec.train_workflow import served_factors
    from embedrec.training import lowpass as L
    from embedrec.training import trend
    from embedrec.training.fit import factors
    from embedrec.training.select import fit_and_refit

    torch.set_num_threads(R.THREADS)
    t0 = time.perf_counter()
    lambdas = EASE_LAMBDAS
    if a.taste1000 or a.synthetic:
        from embedrec.data.synth import generate

        if a.taste1000:
            nu, ni = 20_000, 5_000
            u, i, _, ts = generate(nu, ni, 600_000, seed=0, clusters=1000, taste=0.9)
            lambdas, source = (25, 50, 100, 200, 500, 1000, 2000, 4000), "1,000 tastes 20K x 5K x 600K"
        else:
            nu, ni = 100_000, 20_000
            u, i, _, ts = generate(nu, ni, 3_500_000, seed=0, taste=0.5)
            lambdas, source = R.GRIDS["synthetic"]["EASE"]["lambda"], "synthetic 100K x 20K x 3.5M"
        sp = R.split_per_user(u, i, nu, ni, seed=a.seed, times=ts)
        if a.taste1000:
            R.EASE_MAX_ITEMS = max(R.EASE_MAX_ITEMS, ni)
    else:
        u, i, ts, _r, nu, ni = R.load_ml100k(ratings=True, source=a.source)
        R.EASE_MAX_ITEMS = max(R.EASE_MAX_ITEMS, ni)
        source = a.source
        sp = R.split_per_user(u, i, nu, ni, ts=ts) if a.time else R.split_per_user(u, i, nu, ni, seed=a.seed, times=ts)
    valid = R.Evaluator(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, nu, ni, max_users=R.VALID_USERS_MAX)
    test = R.Evaluator(sp.train_u, sp.train_i, sp.test_u, sp.test_i, nu, ni)
    best, ease = tuned_ease(sp, valid, test, lambdas)
    t_ease = time.perf_counter() - t0
    cfg = load_config(None, [f"train.threads={R.THREADS}"])
    ds = R._embedrec_dataset(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, nu, ni, sp.fit_t, sp.valid_t)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        merged, result, selected, chosen = fit_and_refit(ds, cfg, Path(tmp) / "run")
    t_fit = time.perf_counter() - t1
    t = chosen.train
    split = "time" if a.time else f"random seed {a.seed}"
    print(f"{source}, {split}: {nu} users x {ni} movies; EASE lambda {best[1]} (valid {best[0]:.4f}) test "
          f"{ease.mean():.4f} ({t_ease:.0f} s); defaults dim {selected.model.dim}, users' a0 x{t.als_user_unobserved}, "
          f"trend {t.als_trend}, lowpass {t.als_lowpass} (auto's record: {getattr(selected, 'lowpass', None)}); "
          f"fit_and_refit {t_fit:.0f} s", flush=True)
    # today's served model (levers.fit's)
    fd = served_factors(factors(result.model, result.unrated), merged, chosen, result.loss, selected.lowpass_basis)
    base = test(R.factor_scorer(fd["user_factors"], fd["movie_factors"], fd.get("movie_bias")))["ndcg"]
    # the selection's factors, users re-solved at the chosen scale (as train's choice sees them; no trend: train
    # chooses the block before the trend)
    va = Stage(ds, selected.model, cfg.model, t, valid)
    m = va.copy()
    va.resolve(m, 0)
    f = factors(m, selected.unrated)

    def on_valid(g):
        return valid(R.factor_scorer(g["user_factors"], g["movie_factors"], g.get("movie_bias")))["ndcg"]

    alone = on_valid(f)
    f_test = factors(result.model, result.unrated)

    def on_test(g):
        g = trend.served(g, merged, t)
        return test(R.factor_scorer(g["user_factors"], g["movie_factors"], g.get("movie_bias")))["ndcg"]

    alone_test = on_test(f_test)
    print(f"defaults (served): test {base.mean():.4f}, vs EASE {paired(base - ease)}; model alone: valid "
          f"{alone.mean():.4f}, test {alone_test.mean():.4f}, vs defaults {paired(alone_test - base)}", flush=True)

    ks = sorted({min(int(k), nu, ni) for k in a.widths.split(",")})
    tr = ds.splits["train"]
    blocks, svd_secs = {}, {}
    if a.method == "dense":
        s0 = time.perf_counter()
        lp_all = L.lowpass(tr.user, tr.movie, ds.n_users, ds.n_movies, k=max(ks), method="dense")
        svd_secs[max(ks)] = time.perf_counter() - s0
        print(f"SVD (dense) at k {max(ks)}: {svd_secs[max(ks)]:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)
        for k in ks:
            blocks[k] = sliced(lp_all, k)
    else:
        for k in ks:
            s0 = time.perf_counter()
            blocks[k] = L.lowpass(tr.user, tr.movie, ds.n_users, ds.n_movies, k=k, seed=int(t.seed), method=a.method)
            svd_secs[k] = time.perf_counter() - s0
            print(f"SVD ({a.method}) at k {k}: {svd_secs[k]:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)
    seed = int(t.seed)
    vals, spreads, score_secs = {}, {}, {}
    print(f"valid NDCG@10, model alone {alone.mean():.4f}", flush=True)
    for k in ks:
        lp = blocks[k]
        spreads[k] = L.spread(f, lp, seed)
        row = []
        for c in L.CS:
            s0 = time.perf_counter()
            vals[k, c] = on_valid(L.with_block(f, lp, c, spreads[k]))
            score_secs[k, c] = time.perf_counter() - s0
            d = vals[k, c] - alone
            row.append(f"c {c:g}: {vals[k, c].mean():.4f} ({(vals[k, c].mean() / alone.mean() - 1) * 100:+.2f}%, "
                       f"z {d.mean() / se(d):+.1f})")
        print(f"  k {k} (spread {spreads[k]:.3g}): " + "; ".join(row) +
              f"  [{score_secs[k, L.CS[-1]]:.2f} s a scoring]", flush=True)

    def kept(k, c):
        v = vals[k, c]
        d = v - alone
        return bool(v.mean() > alone.mean() * (1 + L.MARGIN) and d.mean() > L.Z * se(d))

    def best_c(k):
        return max(L.CS, key=lambda c: vals[k, c].mean())

    kb, cb = max(((k, c) for k in ks for c in L.CS), key=lambda p: vals[p].mean())
    pick_best = (kb, cb) if kept(kb, cb) else None
    kg = ks[0]
    for k in ks[1:]:
        if vals[k, best_c(k)].mean() > vals[kg, best_c(kg)].mean() * (1 + L.MARGIN):
            kg = k
        else:
            break
    cg = best_c(kg)
    pick_grow = (kg, cg) if kept(kg, cg) else None
    k0, c0 = ks[0], best_c(ks[0])
    pick_today = (k0, c0) if kept(k0, c0) else None

    test_cache = {}
    basis_secs = {}

    def served_test(k, c):
        if (k, c) not in test_cache:
            s0 = time.perf_counter()
            lpt = L.from_basis(blocks[k].w, merged.splits["train"].user, merged.splits["train"].movie,
                               merged.n_users, merged.n_movies)
            basis_secs[k] = time.perf_counter() - s0
            test_cache[k, c] = on_test(L.with_block(f_test, lpt, c, L.spread(f_test, lpt, seed)))
        return test_cache[k, c]

    for name, pick, (pk, pc) in (("today (k 128 auto, recomputed)", pick_today, (k0, c0)),
                                 ("best over (k, c)", pick_best, (kb, cb)), ("grow k", pick_grow, (kg, cg))):
        d = vals[pk, pc] - alone
        desc = (f"best ({pk}, {pc:g}) valid {vals[pk, pc].mean():.4f} ({(vals[pk, pc].mean() / alone.mean() - 1) * 100:+.2f}%, "
                f"paired {d.mean():+.4f} SE {se(d):.4f})")
        nd = served_test(*pick) if pick is not None else alone_test
        print(f"rule {name}: {desc} -> {'kept' if pick else 'off'}; test {nd.mean():.4f}, vs defaults "
              f"{paired(nd - base)}, vs EASE {paired(nd - ease)}", flush=True)
        if pick is None:  # what the pick would have given had it been kept
            nd = served_test(pk, pc)
            print(f"   (had ({pk}, {pc:g}) been kept: test {nd.mean():.4f}, vs defaults {paired(nd - base)}, vs EASE "
                  f"{paired(nd - ease)})", flush=True)
    if a.test_all:
        for k in ks:
            print(f"  test k {k}: " + "; ".join(f"c {c:g} {served_test(k, c).mean():.4f} "
                                                 f"({paired(served_test(k, c) - ease)} vs EASE)" for c in L.CS),
                  flush=True)
    big = max(ks)
    print(f"seconds: SVD {', '.join(f'k {k}: {s:.1f}' for k, s in svd_secs.items())}; one valid scoring at k {big}: "
          f"{score_secs[big, L.CS[-1]]:.2f} s (alone: see above); from_basis at k {big}: "
          f"{basis_secs.get(big, float('nan')):.2f} s; load {os.getloadavg()[0]:.2f}; total "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
