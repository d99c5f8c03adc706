"""Similar movies (`recommend --movie`): how well a trained run's cosine over movie embeddings finds what a user
rates next, beside item-item alternatives computed from the same training rows.

Protocol: for every user with test ratings, up to 5 of the movies it rated in training (train + valid, what the
run was fit on) are drawn (seed 0); each one's 10 most similar movies, less the user's training movies, are
compared with the user's test movies: recall@10 (hits / min(10, test movies)), averaged over the queries, then
over users. Differences are paired per user against the run's cosine (what `recommend --movie` serves); within
2 SE is a tie. Also printed: where a known sequel ranks (Star Wars -> The Empire Strikes Back, The Godfather ->
The Godfather: Part II) under each similarity, when the titles are there (ML-100K).

Similarities: the run's cosine of movie embeddings; the cosine after removing the mean movie vector; the
"fold-in" similarity q_j^T (Q^T Q + mu I)^-1 q_m (what one liked movie gives a new user, up to scale) and its
cosine after whitening; item-item cosine of the co-rating counts (an item-kNN's similarity); and, to calibrate
the protocol, the most popular movies whatever the query (no similarity at all), which scores above every
similarity here: recall of a user's next movies rewards popularity, so this protocol does not measure how alike
two movies are, and a similarity that ranks popular movies higher gains on it for that alone.

Usage: python benchmarks/similar.py --run runs/ml-100k --data data/prepared/ml-100k  (a few seconds)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def normalise(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    n[n == 0] = 1
    return a / n


def similarities(Q: np.ndarray, X) -> dict[str, np.ndarray]:
    out = {"run's cosine (served)": normalise(Q) @ normalise(Q).T}
    qc = Q - Q.mean(0)
    out["cosine less the mean vector"] = normalise(qc) @ normalise(qc).T
    g = Q.T @ Q
    scale = float(np.median(np.linalg.eigvalsh(g)))
    for mu in (0.1, 10.0):
        ainv = np.linalg.inv(g + mu * scale * np.eye(len(g)))
        out[f"fold-in, mu {mu:g} x median eigenvalue"] = Q @ ainv @ Q.T
        w = Q @ np.linalg.cholesky(ainv)
        out[f"whitened cosine, mu {mu:g}"] = normalise(w) @ normalise(w).T
    c = (X.T @ X).toarray().astype(float)
    n = np.diag(c).copy()
    out["co-rating cosine (item-kNN)"] = c / np.sqrt(np.outer(n, n) + 1e-9)
    out["most popular (the query ignored)"] = np.tile(n, (len(n), 1))  # what the protocol gives for no similarity
    return out


def main() -> None:
    import scipy.sparse as sp

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a trained run folder (its current model is read)")
    ap.add_argument("--data", required=True, help="the prepared dataset it was trained on")
    a = ap.parse_args()
    run, data = Path(a.run) / "current", Path(a.data) / "current"
    Q = np.load(run / "movie_factors.npy", allow_pickle=False)
    splits = {s: pd.read_parquet(data / f"{s}.parquet") for s in ("train", "valid", "test")}
    movies = pd.read_parquet(data / "movies.parquet")
    fit = pd.concat([splits["train"], splits["valid"]])
    n_users = int(max(s.user_idx.max() for s in splits.values())) + 1
    X = sp.csr_matrix((np.ones(len(fit)), (fit.user_idx, fit.movie_idx)), shape=(n_users, Q.shape[0]))
    X.data[:] = 1
    trained = np.asarray(X.sum(0)).ravel() > 0
    seen = X.tolil().rows
    test = splits["test"].groupby("user_idx").movie_idx.apply(set)
    rng = np.random.default_rng(0)
    queries = {u: rng.choice(seen[u], min(5, len(seen[u])), replace=False) for u in test.index if seen[u]}
    title = dict(zip(movies.movie_idx, movies.title))
    pairs = [("Star Wars", "Empire Strikes Back"), ("Godfather, The", "Godfather: Part II")]
    idx = {t: next((i for i, s in title.items() if str(s).startswith(t)), None) for p in pairs for t in p}
    base = None
    print(f"{len(queries)} users, up to 5 queries each; recall@10 of the similar list against the user's test movies")
    for name, m in similarities(Q, X).items():
        m = m.copy()
        np.fill_diagonal(m, -np.inf)
        m[:, ~trained] = -np.inf  # recommend --movie never lists a movie no training rating named
        rec = []
        for u, qs in queries.items():
            hits = 0.0
            for q in qs:
                row = m[q].copy()
                row[seen[u]] = -np.inf
                top = np.argpartition(-row, 10)[:10]
                hits += len(test[u].intersection(top.tolist())) / min(10, len(test[u]))
            rec.append(hits / len(qs))
        rec = np.array(rec)
        base = rec if base is None else base
        d = rec - base
        ranks = ", ".join(f"{b.split(',')[0]} at {int((m[idx[a]] > m[idx[a], idx[b]]).sum()) + 1} for {a.split(',')[0]}"
                          for a, b in pairs if idx[a] is not None and idx[b] is not None)
        print(f"{name:38s} recall@10 {rec.mean():.4f}  minus served {d.mean():+.4f} (SE {d.std() / np.sqrt(len(d)):.4f})"
              f"  {ranks}")


if __name__ == "__main__":
    main()
