"""Several taste vectors a user (issue #13's random split; not in `make bench`): a screen of Weston et al.'s
"multiple user interests" (MaxMF, RecSys 2013) over the default model, whose loss to EASE grows with a user's
ratings (docs/known-gaps.md). The defaults are fitted once (``fit_and_refit``, as ``train``); each user with
enough ratings in at least two groups of movies also gets one vector a group, solved exactly against the fitted
movie vectors with that group's movies alone as the positives (the runner's weights, unobserved weight and L2);
the served plain part becomes (1 - b) u.v + b max_g u_g.v (the trend term, where served, kept as it is).

Groups: k-means (C clusters) of the fitted movie vectors, normalised; a user's groups are the clusters holding at
least ``m`` of their movies (the rest stay in the user's own vector alone). C, m and b are chosen on valid (the
selection's model, the fit rows), then scored on test with the refit's model (train+valid), paired per test user
with the defaults and with EASE tuned on the same valid rows.

Usage: python benchmarks/interest_screen.py [--seed S | --time | --synthetic]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import ranking as R  # noqa: E402
from levers import paired, screen_parser, screen_start  # noqa: E402
from postfit import Stage  # noqa: E402


def kmeans(X: np.ndarray, c: int, seed: int = 0, iters: int = 30) -> np.ndarray:
    """Spherical k-means labels of the rows of X (normalised), k-means++ start."""
    rng = np.random.default_rng(seed)
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    centres = [Xn[rng.integers(len(Xn))]]
    for _ in range(1, c):
        d = 1 - np.max(Xn @ np.array(centres).T, axis=1)
        p = np.maximum(d, 0) ** 2
        centres.append(Xn[rng.choice(len(Xn), p=p / p.sum())])
    C = np.array(centres)
    for _ in range(iters):
        lab = np.argmax(Xn @ C.T, axis=1)
        for j in range(c):
            if (lab == j).any():
                v = Xn[lab == j].sum(0)
                C[j] = v / max(np.linalg.norm(v), 1e-12)
    return np.argmax(Xn @ C.T, axis=1)


def group_vectors(st: Stage, runner, U: np.ndarray, V: np.ndarray, labels: np.ndarray, m: int) -> np.ndarray:
    """(users x G x d) the users' group vectors (NaN where a user has fewer groups; a user of one group or none
    has only NaN rows), G the most groups any user has."""
    ptr, idx, w = runner.u_ptr, runner.u_idx, runner.u_w
    V64 = V.astype(np.float64)
    G = runner.a0 * st.scale * (V64.T @ V64)
    d = V.shape[1]
    per = []
    most = 1
    for u in range(len(ptr) - 1):
        a, e = ptr[u], ptr[u + 1]
        items = idx[a:e]
        wu = np.ones(e - a) if w is None else w[a:e].astype(np.float64)
        labs = labels[items]
        counts = np.bincount(labs, minlength=labels.max() + 1)
        keep = np.flatnonzero(counts >= m)
        if keep.size < 2:
            per.append(None)
            continue
        vecs = []
        for g in keep:
            sel = labs == g
            Y, ww = V64[items[sel]], wu[sel]
            A = G + (Y * ww[:, None]).T @ Y + runner.u_reg[u] * np.eye(d)
            vecs.append(np.linalg.solve(A, Y.T @ ww))
        per.append(np.array(vecs, np.float32))
        most = max(most, len(vecs))
    out = np.full((len(per), most, d), np.nan, np.float32)
    for u, v in enumerate(per):
        if v is not None:
            out[u, :len(v)] = v
    return out


def multi_scores(st: Stage, U, V, groups, b):
    """Per-user NDCG@10 of the served scores with the plain part (1-b) u.v + b max_g u_g.v."""
    from embedrec.training import trend

    f = trend.served({"user_factors": U, "movie_factors": V, "user_bias": None, "movie_bias": None,
                      "global_mean": 0.0}, st.ds, st.train_cfg)
    base = R.factor_scorer(f["user_factors"], f["movie_factors"], f.get("movie_bias"))
    Uc, Vc = np.ascontiguousarray(U, np.float32), np.ascontiguousarray(V, np.float32)

    def score(rows):
        s = base(rows)
        plain = Uc[rows] @ Vc.T
        g = groups[rows]  # rows x G x d
        has = ~np.isnan(g[:, 0, 0])
        if has.any():
            gs = np.einsum("rgd,md->rgm", np.nan_to_num(g[has], nan=0.0), Vc)
            gs[np.isnan(g[has][:, :, 0])] = -np.inf
            best = gs.max(1)
            s[has] += b * (best - plain[has])
        return s
    return st.ev(score)["ndcg"]


def main() -> None:
    ap = screen_parser(__doc__)
    ap.add_argument("--clusters", default="4,8,16")
    ap.add_argument("--min", default="10,20")
    ap.add_argument("--b", default="0.25,0.5,1.0")
    a = ap.parse_args()
    from embedrec.config import load_config
    from embedrec.training.select import fit_and_refit

    u, sp, valid, test, source, best, ease, t0 = screen_start(a)
    cfg = load_config(None, [f"train.threads={R.THREADS}"])
    ds = R._embedrec_dataset(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, sp.n_users, sp.n_items, sp.fit_t, sp.valid_t)
    with tempfile.TemporaryDirectory() as tmp:
        merged, result, selected, chosen = fit_and_refit(ds, cfg, Path(tmp) / "run")
    t = chosen.train
    split = "time" if a.time else f"random seed {a.seed}"
    va = Stage(ds, selected.model, cfg.model, t, valid)
    te = Stage(merged, result.model, cfg.model, t, test)
    m = va.copy()
    va_runner = va.resolve(m, 0)
    Uv, Vv = m.user_table, m.movie_table
    v_base = va.score(Uv, Vv)
    Ut, Vt = result.model.user_table, result.model.movie_table
    base = te.score(Ut, Vt)
    te_runner = te.on.runner(te.copy())
    print(f"{source}, {split}: EASE lambda {best[1]} test {ease.mean():.4f}; defaults valid {v_base.mean():.4f}, test "
          f"{base.mean():.4f}, vs EASE {paired(base - ease)}; {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    cache = {}
    for c in map(int, a.clusters.split(",")):
        for mn in map(int, a.min.split(",")):
            s = time.perf_counter()
            labels = kmeans(Vv, c)
            g = group_vectors(va, va_runner, Uv, Vv, labels, mn)
            cache[(c, mn)] = g
            for b in map(float, a.b.split(",")):
                v = float(multi_scores(va, Uv, Vv, g, b).mean())
                rows.append((v, (c, mn, b)))
                print(f"  C {c} m {mn} b {b}: valid {v:.4f} ({(v / v_base.mean() - 1) * 100:+.2f}%), users with groups "
                      f"{int((~np.isnan(g[:, 0, 0])).sum())} {time.perf_counter() - s:.1f} s", flush=True)
    v, (c, mn, b) = max(rows, key=lambda r: r[0])
    if v <= v_base.mean():
        print(f"valid chose none (best C {c} m {mn} b {b}: {v:.4f})", flush=True)
        return
    labels = kmeans(Vt, c)
    g = group_vectors(te, te_runner, Ut, Vt, labels, mn)
    nd = multi_scores(te, Ut, Vt, g, b)
    print(f"chose C {c} m {mn} b {b}: valid {v:.4f} ({(v / v_base.mean() - 1) * 100:+.2f}%), test {nd.mean():.4f}, vs "
          f"defaults {paired(nd - base)}, vs EASE {paired(nd - ease)}", flush=True)


if __name__ == "__main__":
    main()
