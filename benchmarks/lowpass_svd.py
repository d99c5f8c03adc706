"""embedrec.training.lowpass (a seeded randomized SVD through torch's sparse products) against scipy's svds (the
postfit screen's) on the same rows (issue #13; not in `make bench`): seconds, interleaved (torch, scipy, torch,
...), and how far apart the two are: the principal angles between the two k-dim right singular subspaces, the
singular values, and the low-pass scores x y^T of a sample of users (relative Frobenius error, top-10 overlap).

Usage: python benchmarks/lowpass_svd.py [--synthetic [--data-seed S] | ML-100K] [--k 128] [--rounds 2]
       [--power-iters 4] [--oversample 32]
Rows: the synthetic set's (or ML-100K's) train rows of postfit.py's random split, seed 0.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import ranking as R  # noqa: E402
import torch  # noqa: E402


def scipy_lowpass(u, i, nu, ni, k):
    import scipy.sparse as sps
    from scipy.sparse.linalg import svds

    X = R.matrix(u, i, nu, ni)
    X.data[:] = 1
    du = np.asarray(X.sum(1)).ravel()
    di = np.asarray(X.sum(0)).ravel()
    Rt = (sps.diags(1 / np.sqrt(np.maximum(du, 1))) @ X @ sps.diags(1 / np.sqrt(np.maximum(di, 1)))).tocsr()
    _, s, vt = svds(Rt.astype(np.float64), k=k, random_state=0)
    order = np.argsort(-s)
    W = vt[order].T
    x = (X @ (W / np.sqrt(np.maximum(di, 1))[:, None])).astype(np.float32)
    y = (W * np.sqrt(np.maximum(di, 1))[:, None]).astype(np.float32)
    return W, s[order], x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--power-iters", type=int, default=None)
    ap.add_argument("--oversample", type=int, default=None)
    ap.add_argument("--no-scipy", action="store_true")
    ap.add_argument("--ref", help="an .npz of scipy's (W, s, x, y): read where it exists (no scipy run), else written")
    a = ap.parse_args()
    torch.set_num_threads(R.THREADS)
    from embedrec.training import lowpass as L

    if a.synthetic:
        from embedrec.data.synth import generate

        nu, ni = 100_000, 20_000
        u, i, _, ts = generate(nu, ni, 3_500_000, seed=a.data_seed, taste=0.5)
    else:
        u, i, ts, _r, nu, ni = R.load_ml100k(ratings=True)
    sp = R.split_per_user(u, i, nu, ni, seed=0, times=ts)
    u, i = sp.train_u, sp.train_i
    print(f"{nu} users x {ni} movies, {u.size} train rows, k {a.k}; load {os.getloadavg()[0]:.1f}", flush=True)
    kw = {}
    if a.power_iters is not None:
        kw["power_iters"] = a.power_iters
    if a.oversample is not None:
        kw["oversample"] = a.oversample
    ours = ref = None
    for r in range(a.rounds):
        t = time.perf_counter()
        ours = L.lowpass(u, i, nu, ni, a.k, seed=0, threads=R.THREADS, **kw)
        print(f"round {r}: embedrec lowpass {time.perf_counter() - t:.1f} s (load {os.getloadavg()[0]:.1f})",
              flush=True)
        if not a.no_scipy and not (a.ref and Path(a.ref).exists()) and r < max(a.rounds - 1, 1):
            t = time.perf_counter()
            ref = scipy_lowpass(u, i, nu, ni, a.k)
            print(f"round {r}: scipy svds {time.perf_counter() - t:.1f} s (load {os.getloadavg()[0]:.1f})",
                  flush=True)
    if a.ref and ref is not None and not Path(a.ref).exists():
        np.savez(a.ref, W=ref[0], s=ref[1], x=ref[2], y=ref[3])
    elif a.ref and Path(a.ref).exists():
        z = np.load(a.ref)
        ref = (z["W"], z["s"], z["x"], z["y"])
    if ref is None:
        return
    W, s, x, y = ref
    di = np.bincount(i, minlength=ni).astype(np.float64)
    Wo = ours.a.astype(np.float64) * np.sqrt(np.maximum(di, 1))[:, None]  # W = D_I^1/2 a
    Qo = np.linalg.qr(Wo)[0]
    cos = np.linalg.svd(Qo.T @ W, compute_uv=False)
    print(f"principal angles' cosines: min {cos.min():.6f}, 10th smallest {np.sort(cos)[9]:.6f}, "
          f"median {np.median(cos):.6f}; angles above 1 degree: {(cos < np.cos(np.radians(1))).sum()} of {cos.size}")
    print(f"singular values: top {s[0]:.4f} / {ours.s[0]:.4f}, k-th {s[-1]:.4f} / {ours.s[-1]:.4f}, "
          f"max relative difference {np.max(np.abs(ours.s - s) / s):.2e}")
    rows = np.random.default_rng(0).choice(nu, size=min(2000, nu), replace=False)
    S_ref = x[rows] @ y.T
    S_our = ours.x[rows] @ ours.y.T
    err = np.linalg.norm(S_our - S_ref) / np.linalg.norm(S_ref)
    top_ref = np.argpartition(-S_ref, 10, axis=1)[:, :10]
    top_our = np.argpartition(-S_our, 10, axis=1)[:, :10]
    overlap = np.mean([np.intersect1d(p, q).size / 10 for p, q in zip(top_ref, top_our)])
    print(f"low-pass scores of {rows.size} users: relative Frobenius error {err:.2e}, top-10 overlap {overlap:.4f}")


if __name__ == "__main__":
    main()
