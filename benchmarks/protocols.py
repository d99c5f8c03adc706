"""Extra ranking protocols (session 17; not in `make bench`: about 33 minutes for all six on 2 cores) for embedrec's default model vs tuned implicit ALS / EASE / most popular.

Reuses benchmarks/ranking.py (split code, Evaluator, peer fit functions, grids, fit_embedrec, paired).
Peers are tuned on each split's validation rows (per seed), refit on train+valid, scored once on test.

Usage: python benchmarks/protocols.py PROTOCOL [--out FILE.json] [--source SOURCE]
  PROTOCOL: pos4 | light | gtime | loo | synth03 | synth08 | time | random
  time, random: the bench's two ML-100K protocols (per-user chronological 80/20; per-user random 80/20, seeds 0-2)
  on another dataset: --source is anything `embedrec ingest` reads (a release it can download, a local
  MovieLens folder or zip such as ml-latest-small/, a ratings CSV), ingested with its defaults.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as ranking.py: 2 cores for every model
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import ranking as R  # noqa: E402
import torch  # noqa: E402

log = R.log
PEERS = ["implicit ALS", "EASE"]
VARIANTS = {"embedrec (defaults)": []}


def split_global_time(u, i, ts, n_users, n_items, test=0.2, valid=0.1) -> R.Split:
    order = np.lexsort((i, u, ts))
    u, i, ts = u[order], i[order], ts[order]
    n = u.size
    n_test, n_valid = int(round(test * n)), int(round(valid * n))
    fit = slice(0, n - n_test - n_valid)
    val = slice(n - n_test - n_valid, n - n_test)
    trn = slice(0, n - n_test)
    tst = slice(n - n_test, n)
    return R.Split(n_users, n_items, u[fit], i[fit], u[val], i[val], u[trn], i[trn], u[tst], i[tst],
                   ts[fit], ts[val], ts[trn])


def split_loo(u, i, ts, n_users, n_items) -> R.Split:
    order = np.lexsort((i, ts, u))
    u, i, ts = u[order], i[order], ts[order]
    cnt = np.bincount(u, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    from_end = cnt[u] - 1 - (np.arange(u.size) - start[u])
    is_test = (from_end == 0) & (cnt[u] >= 3)
    is_valid = (from_end == 1) & (cnt[u] >= 3)
    is_fit = ~is_test & ~is_valid
    return R.Split(n_users, n_items, u[is_fit], i[is_fit], u[is_valid], i[is_valid], u[~is_test], i[~is_test],
                   u[is_test], i[is_test], ts[is_fit], ts[is_valid], ts[~is_test])


def run_split(sp_: R.Split, grids: dict, label: str, peer_valid_users: np.ndarray | None = None) -> dict:
    """As ranking.run_split (tuning per split), peers ALS + EASE + most popular, embedrec defaults only.
    ``peer_valid_users``: if given, the peers' validation NDCG@10 is scored on these users only (embedrec's own
    selection still sees every valid row, as `train` does)."""
    vmask = np.ones(sp_.valid_u.size, bool) if peer_valid_users is None else np.isin(sp_.valid_u, peer_valid_users)
    valid_eval = R.Evaluator(sp_.fit_u, sp_.fit_i, sp_.valid_u[vmask], sp_.valid_i[vmask], sp_.n_users, sp_.n_items,
                             max_users=R.VALID_USERS_MAX)
    test_eval = R.Evaluator(sp_.train_u, sp_.train_i, sp_.test_u, sp_.test_i, sp_.n_users, sp_.n_items)
    out = {"users": test_eval.users, "models": {}, "tuned": {}}
    log(f"{label}: {sp_.train_u.size:,} train rows ({sp_.fit_u.size:,} fit + {sp_.valid_u.size:,} valid), "
        f"{sp_.test_u.size:,} test rows, {test_eval.users.size:,} test users, {valid_eval.users.size:,} peer-valid users")

    def record(name, scorer, secs, **extra):
        r = test_eval(scorer)
        log(f"{label}: {name}: test NDCG@10 {r['ndcg'].mean():.4f} HR/recall@10 {r['recall'].mean():.4f} "
            f"(fit {secs:.1f}s) {extra.get('params')}")
        out["models"][name] = {"ndcg": r["ndcg"], "recall": r["recall"], "coverage": r["coverage"],
                               "fit_seconds": secs, **extra}

    scorer, secs = R.fit_once(R.fit_most_popular, None, sp_.train_u, sp_.train_i, sp_.n_users, sp_.n_items, {})
    record("most popular", scorer, secs, params={})
    for name in PEERS:
        fn, key, step_key = R.PEERS[name]
        t0 = time.perf_counter()
        best = None
        grid = dict(grids[key])
        steps = sorted(grid.pop(step_key)) if step_key else [None]
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values))
            for n, scorer, _secs in fn(sp_.fit_u, sp_.fit_i, sp_.n_users, sp_.n_items, params, steps):
                at = {**params, step_key: n} if step_key else params
                v = float(valid_eval(scorer)["ndcg"].mean())
                if best is None or v > best[0]:
                    best = (v, at)
                del scorer
        tune_s = time.perf_counter() - t0
        log(f"{label}: {name}: best valid {best[0]:.4f} at {best[1]} (tuning {tune_s:.1f}s)")
        scorer, secs = R.fit_once(fn, step_key, sp_.train_u, sp_.train_i, sp_.n_users, sp_.n_items, best[1])
        out["tuned"][name] = best[1]
        record(name, scorer, secs, params=best[1], valid_ndcg=best[0], tune_seconds=tune_s)
        del scorer
    for name, overrides in VARIANTS.items():
        info: dict = {}
        t0 = time.perf_counter()
        U, V, b, sel_s, refit_s = R.fit_embedrec(sp_.fit_u, sp_.fit_i, sp_.n_users, sp_.n_items, sp_.valid_u,
                                                 sp_.valid_i, list(overrides), info, sp_.fit_t, sp_.valid_t)
        params = {"loss": info["loss"], "dim": info["dim"], "epochs": info["best_epoch"],
                  "refit_epochs": info["refit_epochs"], "chosen": info["chosen"]}
        log(f"{label}: {name}: own valid {info['valid']:.4f}; train {time.perf_counter() - t0:.1f}s")
        record(name, R.factor_scorer(U, V, b), refit_s, params=params, valid_ndcg=info["valid"], embedrec=True)
    return out


def subset(run: dict, users: np.ndarray) -> dict:
    keep = np.isin(run["users"], users)
    models = {}
    for n, m in run["models"].items():
        mm = dict(m)
        mm["ndcg"], mm["recall"] = m["ndcg"][keep], m["recall"][keep]
        models[n] = mm
    return {"users": run["users"][keep], "models": models, "tuned": run["tuned"]}


def report(title: str, runs: list[dict]) -> dict:
    names = list(runs[0]["models"])
    res = {"title": title, "users_per_run": [int(r["users"].size) for r in runs], "models": {}}
    for n in names:
        per = [r["models"][n] for r in runs]
        res["models"][n] = {"ndcg@10": float(np.mean([p["ndcg"].mean() for p in per])),
                            "recall@10": float(np.mean([p["recall"].mean() for p in per])),
                            "ndcg@10_per_run": [float(p["ndcg"].mean()) for p in per],
                            "params": [p.get("params") for p in per]}
    peers = [n for n in names if not runs[0]["models"][n].get("embedrec")]
    best = max(peers, key=lambda n: res["models"][n]["ndcg@10"])
    res["best_peer"] = best
    res["paired_vs_best"] = R.paired(runs, "embedrec (defaults)", best)
    res["paired_vs_each"] = {p: R.paired(runs, "embedrec (defaults)", p) for p in peers}
    # recall/HR paired vs best too
    d_tot = []
    for p in peers:
        n_users = max(int(r["users"].max(initial=-1)) + 1 for r in runs)
        tot, cnt = np.zeros(n_users), np.zeros(n_users)
        for r in runs:
            tot[r["users"]] += r["models"]["embedrec (defaults)"]["recall"] - r["models"][p]["recall"]
            cnt[r["users"]] += 1
        d = tot[cnt > 0] / cnt[cnt > 0]
        d_tot.append((p, float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))))
    res["paired_recall_vs_each"] = {p: {"diff": m, "se": s} for p, m, s in d_tot}
    print(f"\n## {title}  (users per run: {res['users_per_run']})")
    for n, m in res["models"].items():
        print(f"  {n:22s} NDCG@10 {m['ndcg@10']:.4f}  Recall/HR@10 {m['recall@10']:.4f}  per-run "
              f"{[round(x, 4) for x in m['ndcg@10_per_run']]}  params {m['params']}")
    c = res["paired_vs_best"]
    print(f"  embedrec - best peer ({best}): {c['diff']:+.4f} (SE {c['se']:.4f}, {c['users']} users): {c['verdict'].upper()}")
    for p, c in res["paired_vs_each"].items():
        r = res["paired_recall_vs_each"][p]
        print(f"    vs {p}: NDCG {c['diff']:+.4f} (SE {c['se']:.4f}) {c['verdict']}; recall/HR {r['diff']:+.4f} (SE {r['se']:.4f})")
    sys.stdout.flush()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("protocol", choices=["pos4", "light", "gtime", "loo", "synth03", "synth08", "time", "random"])
    ap.add_argument("--out")
    ap.add_argument("--source", default="ml-100k", help="what `embedrec ingest` reads (protocols on ML-100K)")
    a = ap.parse_args()
    torch.set_num_threads(R.THREADS)
    t_all = time.perf_counter()
    results = []
    if a.protocol in ("pos4", "light", "gtime", "loo"):
        u, i, ts, r, n_users, n_items = R.load_ml100k(ratings=True, source=a.source)
        grids = R.GRIDS["ml100k"]
    if a.protocol in ("time", "random"):
        u, i, ts, r, n_users, n_items = R.load_ml100k(ratings=True, source=a.source)
        grids = R.GRIDS["ml100k"]
        R.EASE_MAX_ITEMS = max(R.EASE_MAX_ITEMS, n_items)  # every movie, as on ML-100K (not a top-5,000 cut)
        log(f"{a.source}: {u.size:,} ratings, {n_users:,} users, {n_items:,} movies")
    if a.protocol == "time":
        runs = [run_split(R.split_per_user(u, i, n_users, n_items, ts=ts), grids, f"{a.source} time")]
        results.append(report(f"{a.source} per-user chronological 80/20", runs))
    elif a.protocol == "random":
        runs = [run_split(R.split_per_user(u, i, n_users, n_items, seed=s, times=ts), grids, f"{a.source} seed {s}")
                for s in (0, 1, 2)]
        results.append(report(f"{a.source} per-user random 80/20, seeds 0-2", runs))
    elif a.protocol == "pos4":
        keep = r >= 4
        u, i, ts = u[keep], i[keep], ts[keep]
        log(f"pos4: {u.size:,} rows with rating >= 4, {np.unique(u).size} users")
        runs = [run_split(R.split_per_user(u, i, n_users, n_items, seed=s, times=ts), grids, f"pos4 seed {s}")
                for s in (0, 1, 2)]
        results.append(report("ML-100K ratings>=4, per-user random 80/20, seeds 0-2", runs))
    elif a.protocol == "light":
        cnt = np.bincount(u, minlength=n_users)
        light = np.flatnonzero(cnt <= 40)
        log(f"light: {light.size} users with <= 40 ratings")
        runs_all, runs_lt = [], []
        for s in (0, 1, 2):
            sp_ = R.split_per_user(u, i, n_users, n_items, seed=s, times=ts)
            runs_all.append(run_split(sp_, grids, f"light(A: peers tuned on all valid) seed {s}"))
            runs_lt.append(run_split(sp_, grids, f"light(B: peers tuned on light valid) seed {s}", peer_valid_users=light))
        results.append(report("ML-100K random 80/20, ALL users (peers tuned on all valid), seeds 0-2", runs_all))
        results.append(report(f"ML-100K random 80/20, light users (<=40 ratings, {light.size}) only; peers tuned on all valid",
                              [subset(x, light) for x in runs_all]))
        results.append(report("ML-100K random 80/20, light users only; peers tuned on light users' valid",
                              [subset(x, light) for x in runs_lt]))
    elif a.protocol == "gtime":
        runs = [run_split(split_global_time(u, i, ts, n_users, n_items), grids, "gtime")]
        results.append(report("ML-100K global time split 70/10/20", runs))
    elif a.protocol == "loo":
        runs = [run_split(split_loo(u, i, ts, n_users, n_items), grids, "loo")]
        results.append(report("ML-100K leave-last-one-out (recall@10 = HR@10)", runs))
    else:
        from embedrec.data.synth import generate
        taste = 0.3 if a.protocol == "synth03" else 0.8
        t = time.perf_counter()
        su, si, _, st = generate(20_000, 5_000, 500_000, seed=0, taste=taste)
        log(f"synthetic taste {taste}: {su.size:,} rows in {time.perf_counter() - t:.1f}s")
        runs = [run_split(R.split_per_user(su, si, 20_000, 5_000, seed=0, times=st), R.GRIDS["synthetic"],
                          f"synth taste {taste}")]
        results.append(report(f"Synthetic 20K x 5K x 500K taste {taste}, per-user random 80/20 seed 0", runs))
    log(f"done in {time.perf_counter() - t_all:.0f}s")
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
