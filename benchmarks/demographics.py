"""New users from demographics alone (``recommend --user-features``) against most-popular lists, on ML-100K.

Usage (a run trained with user features on a prepared ML-100K dataset, as the README's side-features example):

    embedrec ingest ml-100k -o data/prepared/ml-100k
    embedrec train --run runs/feat --set 'features.movie=[genre, decade]' \
        --set 'features.user=[age, gender, occupation]'
    python benchmarks/demographics.py runs/feat data/prepared/ml-100k

Each test user is scored as if new: its list comes from its age, gender and occupation only (its own id
embedding is not used), and is compared with the most popular movies of the training rows and with the most
popular movies among users of its age band and gender. Every list leaves out the user's train and valid movies;
the relevant movies are its test rows. A proxy that favours the model: the feature embeddings were trained on
these users' own training rows. NDCG@10 differences are paired per user (standard error in brackets)."""
import sys

import numpy as np
import pandas as pd

import embedrec as er
from embedrec.metrics import ndcg_at_k, recall_at_k

K = 10
AGE_BANDS = [0, 18, 25, 35, 45, 50, 56, 200]  # MovieLens-1M's bands


def top(ranked, seen: set, k: int = K) -> list:
    out = []
    for x in ranked:
        if x not in seen and x not in out:
            out.append(x)
            if len(out) == k:
                break
    return out


def main(run: str, ds: str) -> None:
    model = er.open(run)
    cur = f"{ds}/current"
    users = pd.read_parquet(f"{cur}/users.parquet")
    movies = pd.read_parquet(f"{cur}/movies.parquet")
    idx_of = dict(zip(movies.movie_id, movies.movie_idx))
    fit = pd.concat([pd.read_parquet(f"{cur}/{s}.parquet") for s in ("train", "valid")])
    test = pd.read_parquet(f"{cur}/test.parquet")
    seen = fit.groupby("user_idx")["movie_idx"].apply(set).to_dict()
    truth = test.groupby("user_idx")["movie_idx"].apply(set).to_dict()
    users["band"] = pd.cut(users.age.astype(float), AGE_BANDS, right=False).astype(str)
    group = {r.user_idx: (r.band, r.gender) for r in users.itertuples()}
    popular = list(fit["movie_idx"].value_counts().index)
    by_group = {g: list(fit[fit.user_idx.map(group) == g]["movie_idx"].value_counts().index) + popular
                for g in set(group.values())}
    lists: dict[tuple, list] = {}
    hits = {"demographics (the model)": [], "most popular": [], "most popular in the age band and gender": []}
    order = sorted(truth)
    for u in order:
        r = users[users.user_idx == u].iloc[0]
        values = {"age": str(int(r.age)), "gender": r.gender, "occupation": r.occupation}
        key = tuple(values.values())
        if key not in lists:
            rec = model.recommend_features(values, k=K + 1000).to_frame()
            lists[key] = [idx_of[m] for m in rec["movie_id"]]
        s, t = seen.get(u, set()), truth[u]
        for name, ranked in zip(hits, (lists[key], popular, by_group[group[u]])):
            hits[name].append([m in t for m in top(ranked, s)])
    n_rel = np.array([len(truth[u]) for u in order])
    nd = {name: ndcg_at_k(np.array(h, float), n_rel, K) for name, h in hits.items()}
    base = nd["most popular"]
    print("| list | NDCG@10 | Recall@10 | minus most popular (SE) |")
    print("|---|---|---|---|")
    for name, v in nd.items():
        d = v - base
        rec = recall_at_k(np.array(hits[name], float), n_rel, K).mean()
        diff = "" if name == "most popular" else f"{d.mean():+.4f} ({d.std(ddof=1) / np.sqrt(len(d)):.4f})"
        print(f"| {name} | {v.mean():.4f} | {rec:.4f} | {diff} |")
    distinct = len({tuple(v[:K]) for v in lists.values()})
    print(f"\n{len(order)} test users; {len(lists)} demographic combinations; {distinct} distinct top-{K} lists "
          "before each user's seen movies are left out")


if __name__ == "__main__":
    main(*sys.argv[1:3])
