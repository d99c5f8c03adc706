"""Serving at scale: 1,000,000 users x 500,000 movies x 64 dims, all-user top-10 through the HNSW index.

The embeddings stand in for a model trained on data with planted low-rank structure: rank-16 factors placed in
64 dimensions by a random map, plus N(0, 0.05) noise in every dimension, and N(0, 0.3) movie biases (isotropic
random 64-d vectors, which no trained model produces, defeat every approximate index: see BENCHMARKS.md). The
seen lists are 20M power-law (user, movie) pairs. A run directory is written with embedrec's own artifact
code, the index is built by it (recall@10 measured at build), then ``embedrec export --topk-all`` is timed as
a separate process, and its rows for a sample of users are checked against exact brute force.

Usage: python benchmarks/scale.py OUT_DIR [--users N --movies N --pairs N]  (prints JSON)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.artifacts import save_artifacts
from embedrec.config import IndexConfig
from embedrec.data.dataset import Dataset, Interactions
from embedrec.data.synth import sample_pairs
from embedrec.run_publish import publish

WRAP = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
        "sys.stderr.write('\\nPEAK_KB %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.exit(p.returncode)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--movies", type=int, default=500_000)
    ap.add_argument("--pairs", type=int, default=20_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--rank", type=int, default=16)
    a = ap.parse_args()
    out = Path(a.out)
    res: dict = {"users": a.users, "movies": a.movies, "seen_pairs": a.pairs, "dim": a.dim, "rank": a.rank}
    t = time.perf_counter()
    rng = np.random.default_rng(7)
    R = rng.normal(size=(a.rank, a.dim)).astype(np.float32) / np.sqrt(a.rank)
    uf = rng.normal(size=(a.users, a.rank)).astype(np.float32) @ R
    uf += rng.normal(0, 0.05, size=uf.shape).astype(np.float32)
    mf = rng.normal(size=(a.movies, a.rank)).astype(np.float32) @ R
    mf += rng.normal(0, 0.05, size=mf.shape).astype(np.float32)
    mb = rng.normal(0, 0.3, size=a.movies).astype(np.float32)
    u, m = sample_pairs(a.users, a.movies, a.pairs, rng)
    res["seconds_generate"] = round(time.perf_counter() - t, 1)
    users = pd.DataFrame({"user_idx": np.arange(a.users, dtype=np.int32), "user_id": np.arange(1, a.users + 1)})
    movies = pd.DataFrame({"movie_idx": np.arange(a.movies, dtype=np.int32), "movie_id": np.arange(1, a.movies + 1),
                           "title": [f"Movie {i}" for i in range(1, a.movies + 1)],
                           "year": pd.array(np.full(a.movies, 2000), dtype="Int32"),
                           "genres": [["Drama"]] * a.movies})
    manifest = {"name": "synthetic-scale", "counts": {"users": a.users, "movies": a.movies, "ratings": int(u.size)},
                "rating_scale": [0.5, 5.0], "inputs": {}}
    ds = Dataset(out / "ds", manifest, users, movies,
                 {"train": Interactions(u.astype(np.int32), m.astype(np.int32), np.ones(u.size, np.float32))})
    f = {"user_factors": uf, "movie_factors": mf, "user_bias": None, "movie_bias": mb, "global_mean": 0.0}
    extra = {"model": {"objective": "implicit", "loss": "planted", "dim": a.dim}, "best_epoch": 0}
    t = time.perf_counter()
    icfg = IndexConfig(kind="hnsw", hnsw_m=32, ef_construction=80, ef_search=128, recall_sample=2000)
    publish(out / "run", lambda tmp: save_artifacts(tmp, f, ds, b"", extra, "{}\n", {}, icfg, None))
    res["seconds_artifacts_and_index"] = round(time.perf_counter() - t, 1)
    man = json.loads((out / "run" / "current" / "manifest.json").read_text())
    res["index"] = man["index"]
    del uf, mf, u, m
    cmd = [sys.executable, "-c", WRAP, str(Path(sys.executable).parent / "embedrec"), "export", "--run",
           str(out / "run"), "--topk-all", str(out / "top10.parquet"), "-k", "10", "-q", "--overwrite"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    res["seconds_topk_all"] = round(time.perf_counter() - t, 1)
    res["users_per_second"] = round(a.users / res["seconds_topk_all"])
    res["peak_rss_mb_topk_all"] = int(proc.stderr.rsplit("PEAK_KB", 1)[1].split()[0]) // 1024
    # recall@10 of what was served (seen movies excluded) against exact brute force, on 1,000 users
    from embedrec.serve.recommender import Recommender
    from embedrec.sparse import top_k_scores

    rec = Recommender.open(out / "run")
    sample = np.sort(np.random.default_rng(1).choice(a.users, size=1000, replace=False))
    exact = top_k_scores(np.asarray(rec.P[sample]), np.asarray(rec.Q), rec.bm, 10, (rec.seen_ptr, rec.seen_idx),
                         sample)
    served = pd.read_parquet(out / "top10.parquet", columns=["user_id", "movie_id"])
    got = served.groupby("user_id")["movie_id"].apply(list)
    hits = [np.intersect1d(np.array(got[uid]) - 1, e).size for uid, e in zip(sample + 1, exact)]
    res["served_recall@10_vs_exact"] = round(float(np.sum(hits) / (10 * sample.size)), 4)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
