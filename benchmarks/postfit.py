"""Post-fit levers of the default model, screened on one split (issue #13; not in `make bench`): the defaults'
model is fitted once (``fit_and_refit``, as ``train``), then each lever is applied to the selection's model (fit on
the fit rows: its grid scored on valid) and, at the values valid chose, to the refit's (train+valid: scored on
test), paired per test user with the defaults and with EASE tuned on the same valid rows (levers.py's).

Levers (each keeps the served model a plain user x movie dot product):
  smooth  GF-CF / LightGCN-style low-pass of the movie vectors, V' = (1-b) V + b P^h V, P the row-normalised
          item-item co-occurrence of the fit's users (D_I^-1/2 R^T D_U^-1 R D_I^-1/2), h hops (b < 0: a sharpening,
          as BSPM's); the users
          re-solved against V' (one ALS user half-step at the chosen unobserved scale, CG from the fitted users).
  lowpass GF-CF's ideal low-pass term as an extra block: U' = [U, c x_u], V' = [V, y], with W the top-k right
          singular vectors of R~ = D_U^-1/2 R D_I^-1/2, x_u = r_u D_I^-1/2 W and y = D_I^1/2 W (c scaled by the
          two score spreads).
  dimreg  the users re-solved exactly with an L2 that grows (c > 0) or shrinks (c < 0) along the movie factors'
          principal directions, by a user's activity: reg_u * max(1 + c * t_j * (n_med / n_u)^g, 0.05), t_j from 0
          (the largest direction) to 1 (g < 0 with c < 0: heavy users' fine directions less penalised).
  timepop time-local popularity as an extra block: x_u the user's share of ratings in each of B equal-count time
          bins (smoothed over neighbouring bins), y_m the movie's centred log count in each bin (bins scaled
          alike), c scaled by the two score spreads: the movies popular when the user rated.

Usage: python benchmarks/postfit.py [--seed S | --time | --synthetic] [--levers smooth,lowpass,dimreg,timepop]
Prints, per lever, the valid NDCG@10 of each grid point (the bench's valid evaluator, the first row the defaults),
the point chosen, and on test: NDCG@10 and the paired difference to the defaults and to EASE (SE).
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
import scipy.sparse as sps  # noqa: E402
from levers import paired, screen_parser, screen_start  # noqa: E402


class Stage:
    """One model of the run (the selection's on the fit rows, or the refit's on train+valid) with what a lever
    needs: its runner (the users' re-solve), the binary rating matrix it trained on, and its served factors."""

    def __init__(self, ds, model, model_cfg, train_cfg, evaluator):
        from embedrec.training.select import OneProcess

        self.ds, self.model, self.train_cfg, self.ev = ds, model, train_cfg, evaluator
        self.on = OneProcess(ds, model_cfg, train_cfg, {})
        tr = ds.splits["train"]
        self.R = R.matrix(tr.user, tr.movie, ds.n_users, ds.n_movies)
        self.scale = float(train_cfg.als_user_unobserved)

    def copy(self):
        return self.on.copy(self.model)

    def resolve(self, m, steps: int):
        from embedrec.training.als import USER_STEPS

        runner = self.on.runner(m)
        with self.on.blas(self.on.dim):
            runner.refit_users(self.scale, steps=steps or USER_STEPS)
        return runner

    def score(self, U, V, extra=None):
        """Per-user NDCG@10 of U.V (with the served trend term as train adds it; ``extra``: (Ux, Vx) blocks)."""
        from embedrec.training import trend

        f = trend.served({"user_factors": U, "movie_factors": V, "user_bias": None, "movie_bias": None,
                          "global_mean": 0.0}, self.ds, self.train_cfg)
        Uf, Vf = f["user_factors"], f["movie_factors"]
        if extra is not None:
            Uf, Vf = np.hstack([Uf, extra[0]]), np.hstack([Vf, extra[1]])
        return self.ev(R.factor_scorer(Uf, Vf, f.get("movie_bias")))["ndcg"]


def propagator(X: sps.csr_matrix):
    """v -> P v for P the row-normalised D_I^-1/2 R^T D_U^-1 R D_I^-1/2 (never formed)."""
    du = np.asarray(X.sum(1)).ravel()
    di = np.asarray(X.sum(0)).ravel()
    Rt = sps.diags(1 / np.sqrt(np.maximum(du, 1))) @ X @ sps.diags(1 / np.sqrt(np.maximum(di, 1)))
    Rt = Rt.tocsr()
    RtT = Rt.T.tocsr()
    rows = RtT @ (Rt @ np.ones(X.shape[1]))
    inv = 1 / np.maximum(rows, 1e-12)
    return lambda V: (inv[:, None] * (RtT @ (Rt @ V.astype(np.float64)))).astype(np.float32), Rt, di


def lever_smooth(st: Stage, b: float, hops: int, steps: int):
    prop, _, _ = propagator(st.R)
    m = st.copy()
    V = m.movie_table.copy()
    PV = V
    for _ in range(hops):
        PV = prop(PV)
    m.movie_table[:] = (1 - b) * V + b * PV
    if b != 0:
        st.resolve(m, steps)
    return m.user_table, m.movie_table


def lowpass_blocks(st: Stage, k: int):
    _, Rt, di = propagator(st.R)
    from scipy.sparse.linalg import svds

    _, s, vt = svds(Rt.astype(np.float64), k=k, random_state=0)
    W = vt.T  # movies x k
    x = (st.R @ (W / np.sqrt(np.maximum(di, 1))[:, None])).astype(np.float32)
    y = (W * np.sqrt(np.maximum(di, 1))[:, None]).astype(np.float32)
    return x, y


def exact_users(st: Stage, runner, V: np.ndarray, c: float, g: float) -> np.ndarray:
    """Every user solved exactly against V (the runner's weights, a0 x the chosen scale, its L2), the L2 of each
    principal direction of V scaled by 1 + c * t_j * (n_med / n_u)^g."""
    ptr, idx, w = runner.u_ptr, runner.u_idx, runner.u_w
    lam, Q = np.linalg.eigh(V.astype(np.float64).T @ V.astype(np.float64))
    Q = Q[:, ::-1]  # largest first
    Vr = V.astype(np.float64) @ Q
    d = V.shape[1]
    t = np.arange(d) / max(d - 1, 1)
    G = runner.a0 * st.scale * (Vr.T @ Vr)
    n = np.diff(ptr).astype(np.float64)
    med = np.median(n[n > 0])
    U = np.zeros((n.size, d))
    for u in range(n.size):
        a, e = ptr[u], ptr[u + 1]
        if a == e:
            continue
        Y = Vr[idx[a:e]]
        wu = np.ones(e - a) if w is None else w[a:e].astype(np.float64)
        prof = np.maximum(1 + c * t * (med / n[u]) ** g, 0.05)
        A = G + (Y * wu[:, None]).T @ Y + np.diag(runner.u_reg[u] * prof)
        U[u] = np.linalg.solve(A, Y.T @ wu)
    return (U @ Q.T).astype(np.float32)


def timepop_blocks(st: Stage, bins: int, width: float):
    """The time-local popularity block: x_u the user's training ratings' share in each of ``bins`` equal-count time
    bins, smoothed over neighbouring bins (a Gaussian of ``width`` bins), and y_m the movie's log count in each bin
    (each bin's counts scaled to the mean bin's), so x_u . y_m is the movie's popularity when the user rated."""
    tr = st.ds.splits["train"]
    ts = tr.timestamp.astype(np.float64)
    edges = np.quantile(ts, np.linspace(0, 1, bins + 1)[1:-1])
    b = np.searchsorted(edges, ts, side="right")
    nu, ni = st.ds.n_users, st.ds.n_movies
    cu = np.zeros((nu, bins))
    np.add.at(cu, (tr.user, b), 1.0)
    cm = np.zeros((ni, bins))
    np.add.at(cm, (tr.movie, b), 1.0)
    if width > 0:
        j = np.arange(bins)
        kern = np.exp(-0.5 * ((j[:, None] - j[None, :]) / width) ** 2)
        cu = cu @ kern
    x = cu / np.maximum(cu.sum(axis=1, keepdims=True), 1e-12)
    tot = cm.sum(axis=0)
    y = np.log1p(cm * (tot.mean() / np.maximum(tot, 1.0)))
    y -= y.mean(axis=0, keepdims=True)
    return x.astype(np.float32), y.astype(np.float32)


def main() -> None:
    ap = screen_parser(__doc__)
    ap.add_argument("--levers", default="smooth,lowpass,dimreg")
    ap.add_argument("--smooth", default="-0.3,-0.2,-0.1,0.1,0.2", help="the b grid (below 0: BSPM-style sharpening)")
    ap.add_argument("--lowpass", default="128,256:0.05,0.1,0.2", help="k grid : c grid")
    ap.add_argument("--dimreg", default="-0.9,-0.5,1:0,-1", help="c grid : g grid")
    ap.add_argument("--timepop", default="8,32:0,1:0.05,0.1,0.2,0.4", help="bins grid : width grid : c grid")
    a = ap.parse_args()
    from embedrec.config import load_config
    from embedrec.training.select import fit_and_refit

    u, sp, valid, test, source, best, ease, t0 = screen_start(a)
    nu, ni = sp.n_users, sp.n_items
    cfg = load_config(None, [f"train.threads={R.THREADS}"])
    ds = R._embedrec_dataset(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, nu, ni, sp.fit_t, sp.valid_t)
    with tempfile.TemporaryDirectory() as tmp:
        merged, result, selected, chosen = fit_and_refit(ds, cfg, Path(tmp) / "run")
    t = chosen.train
    split = "time" if a.time else f"random seed {a.seed}"
    print(f"{source}, {split}: EASE lambda {best[1]} test {ease.mean():.4f}; defaults dim "
          f"{selected.model.dim}, reg {t.als_reg}, users' a0 x{t.als_user_unobserved}, recency {t.als_recency}, "
          f"trend {t.als_trend}; {time.perf_counter() - t0:.0f} s", flush=True)
    va = Stage(ds, selected.model, cfg.model, t, valid)
    te = Stage(merged, result.model, cfg.model, t, test)
    # the defaults as served: the selection's users re-solved at the chosen scale (the refit's end so already)
    m = va.copy()
    va.resolve(m, 0)
    v_base = va.score(m.user_table, m.movie_table).mean()
    base = te.score(result.model.user_table, result.model.movie_table)
    print(f"defaults: valid {v_base:.4f}, test {base.mean():.4f}, vs EASE {paired(base - ease)}", flush=True)

    def report(name, grid, run_valid, run_test):
        rows = []
        for p in grid:
            s = time.perf_counter()
            v = float(run_valid(p).mean())
            rows.append((v, p))
            print(f"  {name} {p}: valid {v:.4f} ({(v / v_base - 1) * 100:+.2f}%) {time.perf_counter() - s:.1f} s",
                  flush=True)
        v, p = max(rows, key=lambda r: r[0])
        if v <= v_base:
            print(f"{name}: valid chose none (best {p}: {v:.4f})", flush=True)
            return
        nd = run_test(p)
        print(f"{name}: chose {p}, valid {v:.4f} ({(v / v_base - 1) * 100:+.2f}%), test {nd.mean():.4f}, vs defaults "
              f"{paired(nd - base)}, vs EASE {paired(nd - ease)}", flush=True)

    def with_block(st, x, y, c):
        """The stage's served users and movies (valid's re-solved as the defaults serve them) with the extra block
        (x, y), its weight c scaled by the two score spreads."""
        U, V = st.model.user_table, st.model.movie_table
        if st is va:
            mm = va.copy()
            va.resolve(mm, 0)
            U, V = mm.user_table, mm.movie_table
        rows = np.arange(min(500, U.shape[0]))
        spread = (U[rows] @ V.T).std() / max((x[rows] @ y.T).std(), 1e-12)
        return st.score(U, V, (np.float32(c * spread) * x, y))

    levers = a.levers.split(",")
    if "smooth" in levers:
        grid = [(b, h, 0) for h in (1, 2) for b in map(float, a.smooth.split(","))]

        def sm(st, p):
            U, V = lever_smooth(st, *p)
            return st.score(U, V)
        report("smooth (b, hops, steps)", grid, lambda p: sm(va, p), lambda p: sm(te, p))
    if "lowpass" in levers:
        ks, cs = a.lowpass.split(":")
        blocks = {}

        def lp(st, p):
            k, c = p
            key = (id(st), k)
            if key not in blocks:
                blocks[key] = lowpass_blocks(st, k)
            return with_block(st, *blocks[key], c)
        report("lowpass (k, c)", [(int(k), float(c)) for k in ks.split(",") for c in cs.split(",")],
               lambda p: lp(va, p), lambda p: lp(te, p))
    if "timepop" in levers:
        bs, ws, cs = a.timepop.split(":")
        tblocks = {}

        def tp(st, p):
            nb, w, c = p
            key = (id(st), nb, w)
            if key not in tblocks:
                tblocks[key] = timepop_blocks(st, nb, w)
            return with_block(st, *tblocks[key], c)
        report("timepop (bins, width, c)", [(int(b), float(w), float(c)) for b in bs.split(",")
                                              for w in ws.split(",") for c in cs.split(",")],
               lambda p: tp(va, p), lambda p: tp(te, p))
    if "dimreg" in levers:
        cs, gs = a.dimreg.split(":")

        def dr(st, p):
            mm = st.copy()
            runner = st.on.runner(mm)
            U = exact_users(st, runner, mm.movie_table, *p)
            return st.score(U, mm.movie_table)
        print(f"  dimreg exact solve, no profile: valid {dr(va, (0.0, 0.0)).mean():.4f}", flush=True)
        report("dimreg (c, g)", [(float(c), float(g)) for c in cs.split(",") for g in gs.split(",")],
               lambda p: dr(va, p), lambda p: dr(te, p))


if __name__ == "__main__":
    main()
