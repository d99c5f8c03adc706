"""New users (strong generalisation) on ML-100K: what `recommend --liked` / `recommend_new` gives someone who was
not in the training data, beside peers that answer new users natively.

Protocol (Liang et al. 2018's strong generalisation), per seed: the users are split 80/10/10 into known,
validation and test users. Every model is fit on the known users' ratings only. A validation or test user's
ratings are split 80/20, at random or by time (its earliest 80%): the 80% are what that user tells the model
(folded in; for EASE the row x_u), the 20% are the targets; NDCG@10 over all movies minus the told ones.
- embedrec: `er.train` on the known users (its own selection on a 10% validation share of their ratings, then
  the refit), then `Recommender.fold_in` for each new user: what `recommend --liked` does. Also reported: the
  fixed Hu et al. solve of the earlier releases (alpha 10, reg 0.1), for the before/after.
- EASE: lambda tuned on the validation users; scores x_u B.
- implicit ALS: tuned on the validation users; a new user's vector from `recalculate_user` (its own solve).
- most popular (known users' counts).
- Told the order (`recommend --ordered`): each new user's told movies in time order, oldest first. embedrec
  weighs them 1 + recommend.foldin_recency x position (0 oldest, 1 latest); so that the comparison is fair the
  peers get the same weights as their x_u (EASE) or confidences (implicit ALS), the weight's r chosen on the
  validation users from ORDER_WEIGHTS at each peer's tuned settings.
Paired per-user differences against the best peer (each user's differences averaged over the seeds it is a test
user in, then std / sqrt(users)); within 2 SE is a tie.

Usage: python benchmarks/newusers.py [--seeds 5] [--protocol random|time|both] [--out FILE.json] [--set KEY=VALUE ...]
(about 2 minutes on 2 cores for both)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import ranking as R  # noqa: E402  (sets the BLAS thread variables before numpy loads)

GRIDS = {"EASE": {"lambda": [100.0, 250.0, 500.0, 1000.0]},
         "implicit ALS": {"factors": [64, 128], "regularization": [1.0, 10.0, 50.0], "alpha": [1.0, 5.0],
                          "iterations": [15]}}
ORDER_WEIGHTS = [2.0, 4.0, 8.0]  # the peers' r when told the order (embedrec: recommend.foldin_recency)


def partition(u, i, t, n_users, seed, by_time: bool = False):
    """(known mask, {"valid": (fold-in rows, target rows), "test": ...}) over the rating rows. A new user tells
    80% of its ratings: drawn at random, or (``by_time``) its earliest 80%, the latest 20% being the targets."""
    rng = np.random.default_rng(seed)
    role = rng.permutation(np.arange(n_users) % 10)  # 0: valid user, 1: test user, else known
    kinds = {}
    told = rng.random(u.size) < 0.8
    if by_time:
        order = np.lexsort((i, t, u))  # each user's ratings oldest first
        counts = np.bincount(u, minlength=n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(u.size, np.int64)
        rank[order] = np.arange(u.size) - np.repeat(starts, counts)
        told = rank < np.round(0.8 * counts[u])
    for name, r in (("valid", 0), ("test", 1)):
        mine = role[u] == r
        kinds[name] = (mine & told, mine & ~told)
    return role[u] >= 2, kinds


def told_in_order(u, i, t, told, n_users, n_items):
    """r -> the told rows' matrix with each user's movies weighted 1 + r x position (0 oldest, 1 latest), and
    {user: its told movie rows, oldest first}."""
    import scipy.sparse as sp

    tu, ti, tt = u[told], i[told], t[told]
    order = np.lexsort((ti, tt, tu))
    counts = np.bincount(tu, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(tu.size, np.int64)
    rank[order] = np.arange(tu.size) - np.repeat(starts, counts)
    pos = rank / np.maximum(counts[tu] - 1, 1)
    history = {int(k): ti[order][starts[k]:starts[k] + counts[k]] for k in np.flatnonzero(counts)}
    return (lambda r: sp.csr_matrix(((1 + r * pos).astype(np.float32), (tu, ti)), shape=(n_users, n_items)),
            history)


def evaluator(u, i, fold, target, n_users, n_items):
    return R.Evaluator(u[fold], i[fold], u[target], i[target], n_users, n_items)


def ease_scorer(u, i, n_users, n_items, lam, X_told):
    """EASE's B from the known users' rows (as ranking.fit_ease: B = I - P / diag(P), zero diagonal); a new
    user's scores x_u B from what that user told."""
    X = R.matrix(u, i, n_users, n_items)
    G = (X.T @ X).toarray().astype(np.float64)
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = (-P / np.diag(P)[None, :]).astype(np.float32)
    np.fill_diagonal(B, 0.0)
    return lambda rows: np.asarray(X_told[rows] @ B)


def als_scorer(ku, ki, n_users, n_items, params, X_told):
    """implicit ALS fit on the known users; a new user's vector from its own ``recalculate_user``."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        m = AlternatingLeastSquares(random_state=0, num_threads=R.THREADS, **params)
        m.fit(R.matrix(ku, ki, n_users, n_items), show_progress=False)
    V = np.asarray(m.item_factors)

    def score(rows):
        with threadpool_limits(1, "blas"):
            P = m.recalculate_user(rows, sp.csr_matrix(X_told[rows]))
        return np.asarray(P) @ V.T
    return score


def ordered_scorer(engine, history):
    """Each new user's vector from ``engine.fold_in(its movie ids oldest first, ordered=True)``: what
    `recommend --liked ... --ordered` does."""
    Q = np.asarray(engine.factors.movie)
    bias = 0.0 if engine.factors.movie_bias is None else np.asarray(engine.factors.movie_bias)[None, :]
    ids = engine.movie_ids

    def score(rows):
        P = np.zeros((rows.size, Q.shape[1]), np.float32)
        for k, r in enumerate(rows):
            if int(r) in history:
                P[k] = engine.fold_in(list(ids[history[int(r)]]), ordered=True)[0]
        return P @ Q.T + bias
    return score


def fold_scorer(factors, solve, X_told, engine=None):
    """Each new user's vector from ``foldin.fold_in`` of what it told (``solve``: the run's, or None: the fixed
    solve of the earlier releases), scored as `recommend` scores it: with
    the movie bias (the recent popularity where valid chose train.als_trend); with ``engine`` (the run's
    Recommender), the new users' popularity prior added at its weight for the movies in the solve, as
    `recommend --liked` serves the list (serve.prior; session 54: the rows before scored the fold-in alone)."""
    from embedrec.serve import foldin

    Q = np.asarray(factors.movie)
    bias = 0.0 if factors.movie_bias is None else np.asarray(factors.movie_bias)[None, :]

    def score(rows):
        P = np.zeros((rows.size, Q.shape[1]), np.float32)
        told = np.zeros(rows.size, np.int64)
        for k, r in enumerate(rows):
            items = dict.fromkeys(X_told[r].indices.tolist(), 1.0)
            detail: dict = {}
            P[k] = foldin.fold_in(factors, items, solve=solve, detail=detail)[0] if items else 0.0
            told[k] = np.size(detail.get("rows", ()))
        if engine is None:
            return P @ Q.T + bias
        return engine.prior_scores(P, [engine.prior_weight(int(n)) for n in told])[0]
    return score


def one_seed(seed: int, u, i, t, n_users: int, n_items: int, by_time: bool,
             sets: tuple = ()) -> tuple[dict, np.ndarray, dict]:
    """({model: per-test-user NDCG@10}, the test users, {peer: tuned settings}) of one user partition."""
    import embedrec as er

    known, kinds = partition(u, i, t, n_users, seed, by_time)
    ku, ki = u[known], i[known]
    told_all = kinds["valid"][0] | kinds["test"][0]
    X_told = R.matrix(u[told_all], i[told_all], n_users, n_items)  # what each new user tells
    weighted, history = told_in_order(u, i, t, told_all, n_users, n_items)
    ev = {k: evaluator(u, i, f, tg, n_users, n_items) for k, (f, tg) in kinds.items()}
    out, tuned = {}, {}
    _, pop, _ = next(R.fit_most_popular(ku, ki, n_users, n_items, {}))
    out["most popular"] = ev["test"](pop)["ndcg"]
    tuned["EASE"] = max(GRIDS["EASE"]["lambda"], key=lambda lam: ev["valid"](
        ease_scorer(ku, ki, n_users, n_items, lam, X_told))["ndcg"].mean())
    out["EASE"] = ev["test"](ease_scorer(ku, ki, n_users, n_items, tuned["EASE"], X_told))["ndcg"]
    grid = GRIDS["implicit ALS"]
    points = [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
    tuned["implicit ALS"] = max(points, key=lambda p: ev["valid"](
        als_scorer(ku, ki, n_users, n_items, p, X_told))["ndcg"].mean())
    out["implicit ALS"] = ev["test"](als_scorer(ku, ki, n_users, n_items, tuned["implicit ALS"], X_told))["ndcg"]
    # told the order: the peers weigh each user's movies as embedrec does, r chosen on the validation users
    r = tuned["EASE (told the order)"] = max(ORDER_WEIGHTS, key=lambda r: ev["valid"](
        ease_scorer(ku, ki, n_users, n_items, tuned["EASE"], weighted(r)))["ndcg"].mean())
    out["EASE (told the order)"] = ev["test"](ease_scorer(ku, ki, n_users, n_items, tuned["EASE"], weighted(r)))["ndcg"]
    r = tuned["implicit ALS (told the order)"] = max(ORDER_WEIGHTS, key=lambda r: ev["valid"](
        als_scorer(ku, ki, n_users, n_items, tuned["implicit ALS"], weighted(r)))["ndcg"].mean())
    out["implicit ALS (told the order)"] = ev["test"](als_scorer(ku, ki, n_users, n_items, tuned["implicit ALS"],
                                                                 weighted(r)))["ndcg"]
    # embedrec: what `train` fits on the known users (a 10% validation share of their rows), then the fold-in
    va = np.random.default_rng(1000 + seed).random(ku.size) < 0.1
    ds = R._embedrec_dataset(ku[~va], ki[~va], ku[va], ki[va], n_users, n_items)
    engine = er.train(ds, er.load_config(None, [f"train.threads={R.THREADS}", *sets])).engine
    out["embedrec (fold-in)"] = ev["test"](fold_scorer(engine.factors, engine.training_ratings.get("solve"),
                                                       X_told))["ndcg"]
    out["embedrec (served: fold-in + prior)"] = ev["test"](fold_scorer(
        engine.factors, engine.training_ratings.get("solve"), X_told, engine))["ndcg"]
    out["embedrec (earlier fixed solve)"] = ev["test"](fold_scorer(engine.factors, None, X_told))["ndcg"]
    out["embedrec (fold-in, --ordered)"] = ev["test"](ordered_scorer(engine, history))["ndcg"]
    if by_time:  # trained as a user with this task would: each known user's latest 10% as valid, with the times
        kt = t[known]  # (ingest --set split.method=user_time --set split.valid=0.1), so valid is split as test is
        va = latest_share(ku, kt, n_users, 0.1)
        ds = R._embedrec_dataset(ku[~va], ki[~va], ku[va], ki[va], n_users, n_items, kt[~va], kt[va])
        engine = er.train(ds, er.load_config(None, [f"train.threads={R.THREADS}", *sets])).engine
        out["embedrec (fold-in, valid by time)"] = ev["test"](fold_scorer(
            engine.factors, engine.training_ratings.get("solve"), X_told))["ndcg"]
        out["embedrec (fold-in, valid by time, --ordered)"] = ev["test"](ordered_scorer(engine, history))["ndcg"]
    return out, ev["test"].users, tuned


def latest_share(u, t, n_users: int, share: float) -> np.ndarray:
    """The mask of each user's latest ``share`` of rows by time (round(share x count), ties by row order), as
    ingest's ``split.method: user_time`` holds out."""
    order = np.lexsort((np.arange(u.size), t, u))
    counts = np.bincount(u, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(u.size, np.int64)
    rank[order] = np.arange(u.size) - np.repeat(starts, counts)
    return rank >= counts[u] - np.round(share * counts[u])


PROTOCOLS = {"random": "each new user tells a random 80% of its ratings; the other 20% are the targets",
             "time": "each new user tells its earliest 80% of ratings; its latest 20% are the targets"}


def run_protocol(name: str, seeds: int, u, i, t, n_users: int, n_items: int, sets: tuple = ()) -> dict:
    per: dict[str, list] = {}
    users: list[np.ndarray] = []
    tuned: dict[str, list] = {}
    t0 = time.perf_counter()
    for seed in range(seeds):
        out, test_users, chosen = one_seed(seed, u, i, t, n_users, n_items, name == "time", sets)
        users.append(test_users)
        for model, v in out.items():
            per.setdefault(model, []).append(v)
        for model, v in chosen.items():
            tuned.setdefault(model, []).append(v)
        R.log(f"{name}, seed {seed}: " + ", ".join(f"{k} {v.mean():.4f}" for k, v in out.items()))
    runs = [{"users": users[s], "models": {k: {"ndcg": per[k][s]} for k in per}} for s in range(seeds)]
    peers = ["most popular", "EASE", "implicit ALS"]
    ordered = ["EASE (told the order)", "implicit ALS (told the order)"]
    means = {k: float(np.mean([x.mean() for x in v])) for k, v in per.items()}
    best_peer = max(peers, key=means.get)
    best_ordered = max(ordered, key=means.get)
    vs = {k: R.paired(runs, k, best_peer) for k in per if k not in peers + ordered}
    for k in ("embedrec (fold-in, --ordered)", "embedrec (fold-in, valid by time, --ordered)"):
        if k in per:
            vs[f"{k} against peers told the order"] = R.paired(runs, k, best_ordered)
    return {"protocol": name, "seeds": seeds, "seconds": round(time.perf_counter() - t0, 1), "ndcg@10": means,
            "test_users_per_seed": [int(x.size) for x in users], "tuned": tuned, "vs_best_peer": vs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--protocol", choices=[*PROTOCOLS, "both"], default="both")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="an embedrec config override for its fits and fold-ins, e.g. train.als_recency=0")
    a = ap.parse_args()
    u, i, t, n_users, n_items = R.load_ml100k()
    names = list(PROTOCOLS) if a.protocol == "both" else [a.protocol]
    results = [run_protocol(name, a.seeds, u, i, t, n_users, n_items, tuple(a.sets)) for name in names]
    if a.out:
        a.out.write_text(json.dumps(results, indent=1, default=str))
    print("\n\n".join(markdown(r) for r in results))


def markdown(result: dict) -> str:
    """The table `make bench` puts in BENCHMARKS.md."""
    lines = [f"#### {result['protocol'].capitalize()}: {PROTOCOLS[result['protocol']]}", "",
             f"ML-100K, {result['seeds']} seeds of an 80/10/10 user partition ({result['seconds']:.0f} s); test users "
             f"per seed: {', '.join(map(str, result['test_users_per_seed']))}. Tuned (per seed): EASE lambda "
             f"{', '.join(f'{x:g}' for x in result['tuned']['EASE'])}; implicit ALS "
             + "; ".join(json.dumps(p) for p in result["tuned"]["implicit ALS"]) + "; told the order, r: EASE "
             f"{', '.join(f'{x:g}' for x in result['tuned']['EASE (told the order)'])}, implicit ALS "
             f"{', '.join(f'{x:g}' for x in result['tuned']['implicit ALS (told the order)'])}.", "",
             "| model | NDCG@10 of the new users |", "|---|---|"]
    for name, v in result["ndcg@10"].items():
        lines.append(f"| {name} | {v:.4f} |")
    lines.append("")
    for name, d in result["vs_best_peer"].items():
        name = name.replace(" against peers told the order", "")
        lines.append(f"- {name} vs best peer ({d['vs']}): paired NDCG@10 difference {d['diff']:+.4f} (SE "
                     f"{d['se']:.4f}, {d['users']} users): **{d['verdict']}**")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
