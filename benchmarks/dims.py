"""train.als_dims on a synthetic set: embedrec's defaults (the dimension chosen on valid) against the same with
``train.als_dims=[]`` (model.dim 128 only), EASE (lambda on valid) and implicit ALS (a grid on valid), on the
rows of ``ranking.py``'s per-user random split; paired per-user NDCG@10 differences with their standard error.

Usage: python benchmarks/dims.py USERS MOVIES INTERACTIONS CLUSTERS RANK TASTE [--no-als]
  e.g. python benchmarks/dims.py 30000 8000 800000 200 32 0.6   (BENCHMARKS.md, session 21; about 6 minutes)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import ranking as R  # noqa: E402

from embedrec.data.synth import generate  # noqa: E402


def main(argv: list[str]) -> None:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 6:
        sys.exit(__doc__)
    nu, nm, n, clusters, rank = (int(a) for a in args[:5])
    taste = float(args[5])
    su, si, _, st = generate(nu, nm, n, rank=rank, seed=1, taste=taste, clusters=clusters)
    sp = R.split_per_user(su, si, nu, nm, seed=1, times=st)
    valid_eval = R.Evaluator(sp.fit_u, sp.fit_i, sp.valid_u, sp.valid_i, nu, nm, max_users=R.VALID_USERS_MAX)
    test_eval = R.Evaluator(sp.train_u, sp.train_i, sp.test_u, sp.test_i, nu, nm)
    print(f"{nu:,} users x {nm:,} movies x {su.size:,} interactions, {clusters} clusters, rank {rank}, taste {taste}",
          flush=True)
    res = {}
    for name, over in (("embedrec defaults", []), ("embedrec als_dims=[]", ["train.als_dims=[]"])):
        info = {}
        U, V, b, sel_s, ref_s = R.fit_embedrec(sp.fit_u, sp.fit_i, nu, nm, sp.valid_u, sp.valid_i, over, info,
                                               train_t=sp.fit_t, valid_t=sp.valid_t)
        r = test_eval(R.factor_scorer(U, V, b))
        res[name] = r["ndcg"]
        print(f"{name}: dim {info['dim']}, valid {info['valid']:.4f}, test NDCG@10 {r['ndcg'].mean():.4f}, "
              f"Recall@10 {r['recall'].mean():.4f}, coverage@10 {r['coverage']:.3f}, train {sel_s + ref_s:.1f} s",
              flush=True)
    best = None
    for lam in (10, 30, 100, 300, 1000, 3000):
        _, sc, _ = next(R.fit_ease(sp.fit_u, sp.fit_i, nu, nm, {"lambda": lam}))
        v = valid_eval(sc)["ndcg"].mean()
        if best is None or v > best[0]:
            best = (v, lam)
    _, sc, _ = next(R.fit_ease(sp.train_u, sp.train_i, nu, nm, {"lambda": best[1]}))
    e = test_eval(sc)
    res["EASE"] = e["ndcg"]
    print(f"EASE (lambda {best[1]} on valid): test NDCG@10 {e['ndcg'].mean():.4f}, Recall@10 {e['recall'].mean():.4f}, "
          f"coverage@10 {e['coverage']:.3f}", flush=True)
    if "--no-als" not in argv:
        best = None
        for f in (128, 256):
            for reg in (1.0, 10.0, 100.0):
                for alpha in (1.0, 5.0, 20.0):
                    p = {"factors": f, "regularization": reg, "alpha": alpha}
                    *_, (_, sc, _) = R.fit_als(sp.fit_u, sp.fit_i, nu, nm, p, [15])
                    v = valid_eval(sc)["ndcg"].mean()
                    if best is None or v > best[0]:
                        best = (v, p)
        *_, (_, sc, _) = R.fit_als(sp.train_u, sp.train_i, nu, nm, best[1], [15])
        a = test_eval(sc)
        res["implicit ALS"] = a["ndcg"]
        print(f"implicit ALS ({best[1]} on valid, 15 iterations): test NDCG@10 {a['ndcg'].mean():.4f}, "
              f"Recall@10 {a['recall'].mean():.4f}, coverage@10 {a['coverage']:.3f}", flush=True)
    base = res["embedrec defaults"]
    for k, v in res.items():
        if k != "embedrec defaults":
            d = base - v
            se = d.std() / np.sqrt(d.size)
            verdict = "tie" if abs(d.mean()) <= 2 * se else ("win" if d.mean() > 0 else "loss")
            print(f"embedrec defaults minus {k}: {d.mean():+.4f} (SE {se:.4f}, {d.size:,} users): {verdict}")


if __name__ == "__main__":
    main(sys.argv[1:])
