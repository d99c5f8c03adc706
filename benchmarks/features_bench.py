"""Side features on ML-100K: an ablation (ids / + features / + crosses) and a cold-start test.

Ablation: the shipped configs (`configs/ml100k-explicit.yaml`, `configs/ml100k-softmax.yaml`) on their own
splits, with only the features section changed. Cold start: 10% of movies held out entirely
(`split.cold_movies=0.1`); every one of their ratings is test. RMSE on those ratings and NDCG@10 of ranking the
held-out movies for each user who rated some of them, against a genre-average rating and genre popularity.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

FEATS = ["--set", "features.movie=[genre, decade]", "--set", "features.user=[age, gender, occupation]"]
CROSSES = ["--set", "features.crosses=[[user.age, movie.genre], [user.gender, movie.genre], "
                    "[movie.decade, movie.genre]]"]
EMBEDREC = [str(Path(sys.executable).parent / "embedrec")]
# hogwild (the shipped explicit config's optimizer) trains the plain model only: every explicit run here, ids
# only included, uses adam at the learning rate chosen for it before, so the rows differ in the features alone
ADAM = ["--set", "train.optimizer=adam", "--set", "train.lr=0.003"]


def _train(args: list[str]) -> dict:
    p = subprocess.run(EMBEDREC + ["train", *args, "-q", "--format", "json"], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(p.stderr)
    return json.loads(p.stdout)


def ablation(tmp: Path) -> list[str]:
    out = ["## Side features on ML-100K: ablation (test split; settings chosen as in the shipped configs)", "",
           "Commands: `benchmarks/features_bench.py` (the shipped configs with `--set features.*` as listed there; "
           "the explicit runs all with `train.optimizer=adam`, `train.lr=0.003`, since hogwild trains the plain "
           "model only).",
           "",
           "| variant | explicit RMSE (random 80/20) | implicit NDCG@10 (temporal) |", "|---|---|---|"]
    for name, extra in (("ids only", []), ("+ features (genre, decade, age, gender, occupation)", FEATS),
                        ("+ features + crosses (age x genre, gender x genre, decade x genre)", FEATS + CROSSES)):
        e = _train(["-c", "configs/ml100k-explicit.yaml", "--set", f"data.prepared={tmp}/ml100k",
                    "--set", f"run.dir={tmp}/fx-{len(out)}", *ADAM, *extra])
        i = _train(["-c", "configs/ml100k-softmax.yaml", "--set", f"data.prepared={tmp}/ml100k-time",
                    "--set", f"run.dir={tmp}/fi-{len(out)}", *extra])
        out.append(f"| {name} | {e['splits']['test']['model']['rmse']:.4f} | "
                   f"{i['splits']['test']['model']['ndcg@10']:.4f} |")
    return out + [""]


def cold_start(tmp: Path) -> list[str]:
    from embedrec.data.dataset import load_dataset
    from embedrec.metrics import ndcg_at_k, rmse
    from embedrec.serve.recommender import Recommender

    ds_dir = tmp / "ml100k-cold"
    subprocess.run(EMBEDREC + ["ingest", "ml-100k", "-o", str(ds_dir), "-q", "--overwrite", "--set",
                               "split.cold_movies=0.1", "--set", "data.keep_unrated_movies=true"], check=True)
    ds = load_dataset(ds_dir)
    cold_ids = set(ds.manifest["cold_movies"])
    cold = np.array([i for i, mid in enumerate(ds.movies["movie_id"]) if mid in cold_ids])
    tr, te = ds.splits["train"], ds.splits["test"]
    sel = np.isin(te.movie, cold)
    tu, tm, tr_r = te.user[sel], te.movie[sel], te.rating[sel]
    # baselines from training ratings: the mean rating of the movie's genres; genre popularity
    genres = [list(g) for g in ds.movies["genres"]]
    g_sum: dict[str, float] = {}
    g_cnt: dict[str, int] = {}
    for m, r in zip(tr.movie, tr.rating):
        for g in genres[m]:
            g_sum[g] = g_sum.get(g, 0.0) + float(r)
            g_cnt[g] = g_cnt.get(g, 0) + 1
    mu = float(tr.rating.mean())
    genre_avg = np.array([np.mean([g_sum[g] / g_cnt[g] for g in genres[m] if g in g_cnt]) if
                          any(g in g_cnt for g in genres[m]) else mu for m in range(ds.n_movies)])
    genre_pop = np.array([np.mean([g_cnt.get(g, 0) for g in genres[m]]) if genres[m] else 0.0
                          for m in range(ds.n_movies)])
    rows = ["## Cold start: 10% of ML-100K movies held out entirely (their ratings only in test)", "",
            f"{cold.size} held-out movies, {sel.sum():,} test ratings on them, random split of the rest.", "",
            "| model | RMSE on held-out movies | NDCG@10 ranking the held-out movies |", "|---|---|---|"]

    def ndcg(score: np.ndarray) -> float:
        vals = []
        for u in np.unique(tu):
            rel = tm[tu == u]
            order = cold[np.argsort(-score[u][cold] if score.ndim == 2 else -score[cold], kind="stable")][:10]
            hits = np.isin(order, rel).astype(float)[None, :]
            vals.append(ndcg_at_k(hits, np.array([rel.size]), 10)[0])
        return float(np.mean(vals))

    rows.append(f"| global mean | {rmse(np.full(tr_r.size, mu), tr_r):.4f} | — |")
    rows.append(f"| genre average (rating) / genre popularity (ranking) | {rmse(genre_avg[tm], tr_r):.4f} | "
                f"{ndcg(genre_pop):.4f} |")
    for name, extra in (("embedrec, features", FEATS), ("embedrec, features + crosses", FEATS + CROSSES)):
        run = tmp / f"cold-{len(rows)}"
        _train(["-c", "configs/ml100k-explicit.yaml", "--set", f"data.prepared={ds_dir}", "--set", f"run.dir={run}",
                *ADAM, *extra])
        rec = Recommender.open(run)
        pred = rec.predict(tu, tm)
        scores = np.asarray(rec.P) @ np.asarray(rec.Q).T + rec.bm[None, :]
        rows.append(f"| {name} | {rmse(pred, tr_r):.4f} | {ndcg(scores):.4f} |")
    return rows + [""]


if __name__ == "__main__":
    tmp = Path(sys.argv[1])
    print("\n".join(ablation(tmp) + cold_start(tmp)))
