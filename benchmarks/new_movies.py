"""New movies (item cold start) on ML-100K: what `update-users --new-movies` (``er.update_users(run, ratings,
new_movies=True)``) gives a movie the trained run did not know, beside implicit ALS's ``partial_fit_items``: the
item-side mirror of benchmarks/newusers.py.

Protocol, per seed: among the movies with at least 10 ratings, 10% are drawn as new movies (test) and another 10%
as validation new movies (the peer's tuning alone). Every rating of a test new movie is taken out of the known
data; each new movie's ratings are split at random 50/50 (of n, ceil(n/2) arrival): the arrival ratings are what the
update is given, the other half's raters are the targets. The question is `audience`'s: the 50 users most likely
to watch the movie, its arrival raters left out; NDCG@50 of its target raters (binary, ideal DCG over
min(targets, 50)).
- embedrec (fold-in): the known ratings (every user, every rating of the other movies, with their times) written
  to a CSV, `embedrec ingest --set split.test=0` (its own 10% valid share, which train selects on and then refits
  on), `embedrec train` with its defaults, then ``er.update_users(run, arrival.csv, new_movies=True)`` (its wall
  seconds timed in process) and ``er.open(run).audience(movie, k=50)`` (arrival raters left out by the run).
- implicit ALS (partial_fit_items): implicit 0.7.3's CPU AlternatingLeastSquares on a user x movie matrix of ones
  of the known ratings, tuned on the validation new movies (the same protocol: their ratings out of the fit,
  half given to partial_fit_items, NDCG@50 of the other half's raters) over GRID (--grid wide, the default: 120
  points, its edges past where valid chose; --grid brief: 64/128 factors, regularization 0.1/1/10, alpha 1/5/20,
  15 iterations), refit on all known ratings, then
  ``partial_fit_items(new ids, arrival movie x user matrix)`` (timed) and user_factors @ item_factor, arrival raters
  out, top 50.
- most active users: the users with the most known ratings, arrival raters out.
- embedrec (retrained, upper bound): ingest + train on the known and the arrival ratings together, audience with
  the arrival raters excluded (``exclude=``).
Paired per-movie difference embedrec (fold-in) minus implicit ALS (partial_fit_items): each movie's differences
averaged over the seeds it is a test movie in, then std / sqrt(movies); within 2 SE is a tie (the pooled
(seed, movie) figure is in the JSON too); NDCG@50 also by the new movies' arrival ratings. Exposure: every user's
top-10 (`recommend`, seen movies out; implicit U V^T), the share of its slots the new movies hold and the share of
those that are target pairs, for the fold-ins and both retrained models (implicit's fit on known + arrival rows at
its tuned settings). Invariants checked per seed: `embedrec verify --run RUN` exits 0 after the
update; no arrival rater in its movie's audience; no new movie in the `recommend` list (k=50) of 50 of its
arrival raters (sampled).

Usage: python benchmarks/new_movies.py [--seeds 3] [--out FILE.json] [--grid wide|brief] [--set KEY=VALUE ...]
       [--workdir DIR] [--keep]
(2 cores: about 50 s a seed with --grid wide, 20 s with --grid brief; two embedrec ingest + train of 3-5 s each)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import ranking as R  # noqa: E402  (sets the BLAS thread variables before numpy loads)
import scipy.sparse as sp  # noqa: E402

K = 50
MIN_RATINGS = 10  # a movie drawn as new has at least this many ratings
SHARE = 0.1       # of those movies: drawn as new (test), and as many again as the peer's validation new movies
# the brief's grid (factors 64/128, regularization 0.1/1/10, alpha 1/5/20, 15 iterations) widened where its
# corner was chosen (regularization 10, alpha 1 on seed 0): 30, 100; alpha 0.5; 32 factors; 30 iterations
GRID = {"factors": [32, 64, 128], "regularization": [0.1, 1.0, 10.0, 30.0, 100.0], "alpha": [0.5, 1.0, 5.0, 20.0],
        "iterations": [15, 30]}  # --grid wide (the default); --grid brief: the first grid alone
BUCKETS = ((5, 10), (10, 20), (20, 40), (40, 10**9))  # new movies by their arrival ratings, for the breakdown
SPOT = 50         # arrival raters whose recommend lists are checked per seed
EXE = [sys.executable, "-m", "embedrec"]
SETS: list[str] = []  # --set KEY=VALUE for embedrec's train (both runs)
GRIDS = {"brief": {"factors": [64, 128], "regularization": [0.1, 1.0, 10.0], "alpha": [1.0, 5.0, 20.0],
                   "iterations": [15]}}


# ------------------------------------------------------------------------------------------------ protocol

def draw(i, n_items, seed):
    """(test new movies, validation new movies): two disjoint draws of SHARE of the movies with MIN_RATINGS."""
    eligible = np.flatnonzero(np.bincount(i, minlength=n_items) >= MIN_RATINGS)
    perm = np.random.default_rng(seed).permutation(eligible)
    n = int(round(SHARE * eligible.size))
    return np.sort(perm[:n]), np.sort(perm[n:2 * n])


def halves(i, movies, seed):
    """(arrival mask, target mask) over the rows: each of ``movies``' ratings in a random order, ceil(n/2) arrival."""
    on = np.isin(i, movies)
    key = np.random.default_rng(10_000 + seed).random(i.size)
    order = np.lexsort((key, i))
    counts = np.bincount(i, minlength=int(i.max()) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(i.size, np.int64)
    rank[order] = np.arange(i.size) - starts[i[order]]
    arrival = on & (rank < counts[i] - counts[i] // 2)
    return arrival, on & ~arrival


def ndcg(listed, targets) -> float:
    """NDCG@K of one list (user rows, best first) against a set of target rows (binary relevance)."""
    hits = np.array([u in targets for u in listed[:K]], bool)
    dcg = float((hits / np.log2(np.arange(2, hits.size + 2))).sum())
    ideal = float((1 / np.log2(np.arange(2, min(len(targets), K) + 2))).sum())
    return dcg / ideal if ideal else 0.0


def score_lists(lists: dict, target_of: dict) -> np.ndarray:
    return np.array([ndcg(lists[m], target_of[m]) for m in sorted(target_of)])


def raters(u, i, mask, movies) -> dict:
    return {int(m): set(u[mask & (i == m)].tolist()) for m in movies}


# ------------------------------------------------------------------------------------------------ implicit ALS

def implicit_lists(ku, ki, n_users, n_items, params, new, au, ai, arrival_of):
    """implicit ALS fit on the known rows (user x movie ones), ``partial_fit_items`` of the ``new`` movies from their
    arrival rows (au, ai): ({movie: top-K user rows, arrival raters out}, partial_fit_items seconds, fit seconds)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    X = R.matrix(ku, ki, n_users, n_items)
    known_cols = np.setdiff1d(np.arange(n_items), new)  # the fit sees the known movies alone, compact ids
    with threadpool_limits(1, "blas"):
        m = AlternatingLeastSquares(random_state=0, num_threads=R.THREADS, **params)
        t = time.perf_counter()
        m.fit(X[:, known_cols].tocsr(), show_progress=False)
        fit_s = time.perf_counter() - t
        col = {int(mv): known_cols.size + j for j, mv in enumerate(new)}
        ids = np.array([col[int(mv)] for mv in new], np.int64)
        A = sp.csr_matrix((np.ones(au.size, np.float32), (np.array([col[int(x)] for x in ai], np.int64) - known_cols.size,
                                                           au)), shape=(new.size, n_users))
        A.sum_duplicates()
        A.data[:] = 1.0
        t = time.perf_counter()
        if new.size:
            m.partial_fit_items(ids, A)
        pf_s = time.perf_counter() - t
    U, V = np.asarray(m.user_factors), np.asarray(m.item_factors)
    VV = np.zeros((n_items, V.shape[1]), V.dtype)  # the movie rows' vectors (a movie in neither: 0)
    VV[known_cols] = V[:known_cols.size]
    VV[new] = V[ids] if new.size else VV[new]
    S = U @ V[ids].T  # users x new movies
    lists = {}
    for j, mv in enumerate(new):
        s = S[:, j].copy()
        s[list(arrival_of[int(mv)])] = -np.inf
        lists[int(mv)] = np.argsort(-s, kind="stable")[:K]
    return lists, pf_s, fit_s, (U, VV)


def implicit_slots(U, VV, seen: sp.csr_matrix, new, target_pairs: set, k: int = 10) -> dict:
    """The share of the users' top-k lists (over every movie, each user's known and arrival movies out) held by the
    new movies, and the share of those slots that are target pairs: how far `recommend` pushes the new movies."""
    S = U @ VV.T
    S[seen.nonzero()] = -np.inf
    top = np.argpartition(-S, k, axis=1)[:, :k]
    return slots_of({u: top[u] for u in range(top.shape[0])}, new, target_pairs)


def slots_of(lists: dict, new, target_pairs: set) -> dict:
    newset = set(int(x) for x in new)
    slots = [(u, int(m)) for u, ms in lists.items() for m in ms]
    on_new = [(u, m) for u, m in slots if m in newset]
    return {"new_movie_share_of_top10": len(on_new) / max(len(slots), 1),
            "target_share_of_new_slots": sum(p in target_pairs for p in on_new) / max(len(on_new), 1)}


def tune_implicit(ku, ki, n_users, n_items, valid, seed):
    """The GRID point with the best mean NDCG@K over the validation new movies (their rows out of the fit)."""
    out = ~np.isin(ki, valid)
    arrival, target = halves(ki, valid, seed)
    arr_of, tgt_of = raters(ku, ki, arrival, valid), raters(ku, ki, target, valid)
    points = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
    scores = []
    for p in points:
        lists, _, _, _ = implicit_lists(ku[out], ki[out], n_users, n_items, p, valid, ku[arrival], ki[arrival], arr_of)
        scores.append(float(score_lists(lists, tgt_of).mean()))
    best = int(np.argmax(scores))
    return points[best], scores[best]


# ------------------------------------------------------------------------------------------------ embedrec

def write_csv(path: Path, u, i, r, t) -> None:
    """user_id,movie_id,rating,timestamp with ids = row + 1."""
    pd.DataFrame({"user_id": u + 1, "movie_id": i + 1, "rating": r, "timestamp": t}).to_csv(path, index=False)


def cli(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EMBEDREC_CONFIG"}
    p = subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, env=env)
    if p.returncode and args[0] != "verify":
        sys.exit(f"embedrec {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p


def embedrec_run(work: Path, name: str, u, i, r, t) -> tuple[Path, float]:
    """ingest (split.test=0) + train with defaults on these rows: (the run dir, seconds)."""
    csv, ds, run = work / f"{name}.csv", work / f"{name}-ds", work / f"{name}-run"
    write_csv(csv, u, i, r, t)
    t0 = time.perf_counter()
    cli("ingest", csv, "-o", ds, "--overwrite", "--set", "split.test=0", "-q")
    cli("train", "--run", run, "--set", f"data.prepared={ds}", *[x for kv in SETS for x in ("--set", kv)], "-q")
    return run, time.perf_counter() - t0


def audience_lists(run: Path, new, exclude_of: dict | None = None) -> dict:
    """{movie row: top-K user rows} from ``er.open(run).audience``; with ``exclude_of`` those users excluded."""
    import embedrec as er

    m = er.open(run)
    out = {}
    for mv in new:
        ex = [] if exclude_of is None else [x + 1 for x in exclude_of[int(mv)]]
        a = m.audience(int(mv) + 1, k=K, exclude=ex)
        out[int(mv)] = np.asarray(a.user_ids[0], np.int64) - 1
    return out


def spot_check(run: Path, au, ai, seed) -> dict:
    """Recommend lists (k=K) of SPOT arrival raters: how many hold a new movie they gave in the arrival file."""
    import embedrec as er

    m = er.open(run)
    users = np.random.default_rng(20_000 + seed).choice(np.unique(au), size=min(SPOT, np.unique(au).size),
                                                        replace=False)
    bad = 0
    for user in users:
        given = set((ai[au == user] + 1).tolist())
        listed = set(np.asarray(m.recommend(int(user) + 1, k=K).movie_ids[0]).tolist())
        bad += bool(given & listed)
    return {"raters_checked": int(users.size), "lists_with_an_arrival_movie": bad}


def embedrec_slots(run: Path, n_users: int, new, target_pairs: set, k: int = 10) -> dict:
    """slots_of over every user's ``recommend`` list (k=10) of the run (its seen movies out, as it serves)."""
    import embedrec as er

    rec = er.open(run).recommend(list(range(1, n_users + 1)), k=k)
    lists = {int(q) - 1: np.asarray(x, np.int64) - 1 for q, x in zip(rec.query_ids, rec.movie_ids)}
    return slots_of(lists, new, target_pairs)


# ------------------------------------------------------------------------------------------------ one seed

def one_seed(seed, u, i, r, t, n_users, n_items, work: Path) -> dict:
    import embedrec as er

    new, valid = draw(i, n_items, seed)
    arrival, target = halves(i, new, seed)
    known = ~np.isin(i, new)
    arr_of, tgt_of = raters(u, i, arrival, new), raters(u, i, target, new)
    ku, ki = u[known], i[known]
    res = {"seed": seed, "movies": [int(x) + 1 for x in new], "models": {}, "seconds": {}, "checks": {}}

    # most active users
    active = np.argsort(-np.bincount(ku, minlength=n_users), kind="stable")
    lists = {int(mv): active[~np.isin(active, list(arr_of[int(mv)]))][:K] for mv in new}
    res["models"]["most active users"] = score_lists(lists, tgt_of)

    # implicit ALS, tuned on the validation new movies, then partial_fit_items
    t0 = time.perf_counter()
    params, vscore = tune_implicit(ku, ki, n_users, n_items, valid, seed)
    res["seconds"]["implicit tuning"] = time.perf_counter() - t0
    res["implicit_params"], res["implicit_valid_ndcg"] = params, vscore
    lists, pf_s, fit_s, f = implicit_lists(ku, ki, n_users, n_items, params, new, u[arrival], i[arrival], arr_of)
    res["models"]["implicit ALS (partial_fit_items)"] = score_lists(lists, tgt_of)
    both = known | arrival
    seen = R.matrix(u[both], i[both], n_users, n_items)
    tpairs = set(zip(u[target].tolist(), i[target].tolist()))
    res["slots"] = {"implicit ALS (partial_fit_items)": implicit_slots(*f, seen, new, tpairs)}
    # implicit ALS fit on the known and arrival rows together (its own upper bound), for the slots alone
    _, _, _, g = implicit_lists(u[both], i[both], n_users, n_items, params, np.zeros(0, np.int64), u[:0], i[:0], {})
    res["slots"]["implicit ALS (retrained with arrivals)"] = implicit_slots(*g, seen, new, tpairs)
    res["seconds"]["implicit fit"], res["seconds"]["implicit partial_fit_items"] = fit_s, pf_s

    # embedrec: train on the known rows, update-users --new-movies with the arrival rows
    run, secs = embedrec_run(work, f"s{seed}-known", ku, ki, r[known], t[known])
    res["seconds"]["embedrec ingest+train"] = secs
    arr_csv = work / f"s{seed}-arrival.csv"
    write_csv(arr_csv, u[arrival], i[arrival], r[arrival], t[arrival])
    t0 = time.perf_counter()
    rec = er.update_users(run, arr_csv, new_movies=True)
    res["seconds"]["embedrec update_users"] = time.perf_counter() - t0
    cli_dir = run.with_name(run.name + "-cli")
    shutil.copytree(run, cli_dir, symlinks=True)
    t0 = time.perf_counter()
    cli("update-users", "--ratings", arr_csv, "--new-movies", "--run", cli_dir, "-q")
    res["seconds"]["embedrec update-users CLI (process)"] = time.perf_counter() - t0
    res["update_record"] = {k: rec.get(k) for k in ("movies_added", "n_movies", "users", "users_added", "pairs",
                                                     "pairs_solved")}
    solve = er.open(run).engine.training_ratings["solve"]
    res["embedrec_solve"] = {k: solve.get(k) for k in ("a0", "user_unobserved", "reg", "trend")}
    v = cli("verify", "--run", run)
    res["checks"]["verify_rc"] = v.returncode
    if v.returncode:
        res["checks"]["verify_stderr"] = v.stderr[-1500:]
    lists = audience_lists(run, new)
    res["checks"]["arrival_raters_in_audience"] = int(sum(len(set(lists[mv].tolist()) & arr_of[mv]) for mv in lists))
    res["checks"]["short_audiences"] = int(sum(lists[mv].size < K for mv in lists))
    res["models"]["embedrec (update-users --new-movies)"] = score_lists(lists, tgt_of)
    res["checks"].update(spot_check(run, u[arrival], i[arrival], seed))
    res["slots"]["embedrec (update-users --new-movies)"] = embedrec_slots(run, n_users, new, tpairs)

    # embedrec retrained with the arrival rows: the upper bound
    run2, secs = embedrec_run(work, f"s{seed}-retrained", u[both], i[both], r[both], t[both])
    res["seconds"]["embedrec ingest+train (retrained)"] = secs
    res["models"]["embedrec (retrained with arrivals)"] = score_lists(audience_lists(run2, new, arr_of), tgt_of)
    res["slots"]["embedrec (retrained with arrivals)"] = embedrec_slots(run2, n_users, new, tpairs)
    res["arrival_counts"] = [len(arr_of[int(mv)]) for mv in new]
    res["n_new"], res["n_valid"] = int(new.size), int(valid.size)
    res["arrival_rows"], res["target_rows"] = int(arrival.sum()), int(target.sum())
    return res


def paired(runs, a, b) -> dict:
    per: dict[int, list] = {}
    pooled = []
    for run in runs:
        d = run["models"][a] - run["models"][b]
        pooled.extend(d.tolist())
        for mv, x in zip(run["movies"], d):
            per.setdefault(mv, []).append(x)
    d = np.array([np.mean(v) for v in per.values()])
    diff, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
    pooled = np.array(pooled)
    return {"a": a, "b": b, "diff": diff, "se": se, "movies": int(d.size),
            "verdict": "tie" if not abs(diff) > 2 * se else ("win" if diff > 0 else "loss"),
            "pooled_diff": float(pooled.mean()), "pooled_se": float(pooled.std(ddof=1) / np.sqrt(pooled.size)),
            "pooled_n": int(pooled.size)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--workdir", type=Path, help="where the CSVs, datasets and runs go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--grid", choices=["wide", "brief"], default="wide", help="implicit ALS's tuning grid")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="an embedrec train override (both embedrec runs), e.g. train.als_user_unobserved=1")
    a = ap.parse_args()
    global GRID
    GRID = GRIDS.get(a.grid, GRID)
    SETS.extend(a.sets)
    u, i, t, r, n_users, n_items = R.load_ml100k(ratings=True)
    R.log(f"ML-100K: {u.size:,} ratings, {n_users} users x {n_items} movies")
    work = Path(tempfile.mkdtemp(prefix="new-movies-", dir=a.workdir))
    t0 = time.perf_counter()
    runs = []
    try:
        for seed in range(a.seeds):
            res = one_seed(seed, u, i, r, t, n_users, n_items, work)
            runs.append(res)
            R.log(f"seed {seed}: " + ", ".join(f"{k} {v.mean():.4f}" for k, v in res["models"].items())
                  + f"; implicit {res['implicit_params']}; checks {res['checks']}")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = summarize(runs, time.perf_counter() - t0, n_items)
    result.update(grid=a.grid, embedrec_sets=a.sets)
    if a.out:
        a.out.write_text(json.dumps({**result, "runs": [{**x, "models": {k: v.tolist() for k, v in x["models"].items()}}
                                                         for x in runs]}, indent=1, default=str))
    print(markdown(result))


def summarize(runs, seconds, n_items: int) -> dict:
    names = list(runs[0]["models"])
    counts = np.concatenate([x["arrival_counts"] for x in runs])
    buckets = {}
    for lo, hi in BUCKETS:
        on = (counts >= lo) & (counts < hi)
        buckets[f"{lo}-{hi - 1}" if hi < 10**9 else f"{lo}+"] = {
            "movies": int(on.sum()), **{k: float(np.concatenate([x["models"][k] for x in runs])[on].mean())
                                         for k in names}}
    slots = {k: {f: float(np.mean([x["slots"][k][f] for x in runs])) for f in runs[0]["slots"][k]}
             for k in runs[0]["slots"]}
    secs = {k: float(np.mean([x["seconds"][k] for x in runs])) for k in runs[0]["seconds"]}
    return {"seeds": len(runs), "seconds": round(seconds, 1),
            "ndcg@50": {k: float(np.mean(np.concatenate([x["models"][k] for x in runs]))) for k in names},
            "ndcg@50_per_seed": {k: [float(x["models"][k].mean()) for x in runs] for k in names},
            "new_movies_per_seed": [x["n_new"] for x in runs], "implicit_params": [x["implicit_params"] for x in runs],
            "mean_seconds": secs, "by_arrival_ratings": buckets, "slots": slots,
            "catalogue_share": float(np.mean([x["n_new"] for x in runs]) / n_items), "checks": [x["checks"] for x in runs],
            "update_records": [x["update_record"] for x in runs],
            "embedrec_solve": [x["embedrec_solve"] for x in runs],
            "fold_in_share_per_seed": [x["slots"]["embedrec (update-users --new-movies)"]["new_movie_share_of_top10"]
                                       for x in runs],
            "paired": paired(runs, "embedrec (update-users --new-movies)", "implicit ALS (partial_fit_items)")}


def markdown(res: dict) -> str:
    lines = [f"ML-100K item cold start, {res['seeds']} seeds ({res['seconds']:.0f} s; implicit grid {res['grid']}"
             f"{'; embedrec --set ' + ' '.join(res['embedrec_sets']) if res['embedrec_sets'] else ''}); new movies per seed: "
             f"{', '.join(map(str, res['new_movies_per_seed']))}; implicit ALS tuned (per seed): "
             + "; ".join(json.dumps(p) for p in res["implicit_params"]) + ".", "",
             "| model | NDCG@50 of the new movies' target raters | per seed |", "|---|---|---|"]
    for k, v in res["ndcg@50"].items():
        lines.append(f"| {k} | {v:.4f} | {', '.join(f'{x:.4f}' for x in res['ndcg@50_per_seed'][k])} |")
    names = list(res["ndcg@50"])
    lines += ["", "| arrival ratings | movies | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for b, v in res["by_arrival_ratings"].items():
        lines.append(f"| {b} | {v['movies']} | " + " | ".join(f"{v[k]:.4f}" for k in names) + " |")
    lines += ["", f"Every user's top-10 (`recommend`; implicit: U V^T, seen out): the share of slots held by the new "
              f"movies ({100 * res['catalogue_share']:.1f}% of the catalogue), and of those slots the share that are "
              "target pairs (the user rated the movie in the held-out half).", "",
              "| model | new-movie share of top-10 slots | target share of those slots |", "|---|---|---|"]
    for k, v in res["slots"].items():
        lines.append(f"| {k} | {100 * v['new_movie_share_of_top10']:.1f}% | "
                     f"{100 * v['target_share_of_new_slots']:.1f}% |")
    lines += ["", "embedrec's trained als_user_unobserved per seed: " + ", ".join(
        str(x["user_unobserved"]) for x in res["embedrec_solve"]) + "; its fold-in's new-movie share of top-10 "
        "slots per seed: " + ", ".join(f"{100 * x:.1f}%" for x in res["fold_in_share_per_seed"])]
    d = res["paired"]
    lines += ["", f"- {d['a']} vs {d['b']}: paired NDCG@50 difference {d['diff']:+.4f} (SE {d['se']:.4f}, "
              f"{d['movies']} movies, each averaged over its seeds): **{d['verdict']}**; pooled over (seed, movie): "
              f"{d['pooled_diff']:+.4f} (SE {d['pooled_se']:.4f}, n {d['pooled_n']})"]
    s = res["mean_seconds"]
    lines += [f"- seconds (mean a seed): update_users (in process, {res['update_records'][0]['movies_added']} movies) "
              f"{s['embedrec update_users']:.2f}; update-users CLI process {s['embedrec update-users CLI (process)']:.2f}"
              f"; partial_fit_items {s['implicit partial_fit_items']:.4f}; implicit fit {s['implicit fit']:.2f}; "
              f"embedrec ingest+train {s['embedrec ingest+train']:.1f}",
              "- checks per seed: " + "; ".join(json.dumps({k: v for k, v in c.items() if k != "verify_stderr"})
                                                for c in res["checks"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
