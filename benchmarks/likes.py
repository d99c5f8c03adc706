"""A like/dislike file: the default model with its dislikes kept apart (`data.min_rating: auto`, the default) against
the same model learning them as likes (`data.min_rating: null`), on ML-100K's ratings made 0/1 likes (4 and 5 stars
1, the rest 0).

Per seed: the 0/1 file ingested twice with the same split seed (default random 70/10/20), once each way, and the
default model trained on each (`embedrec train`, no settings). The two splits differ (auto drops the 0s before it
splits), so both are scored alike: on the same targets, each user's likes that both test splits hold, and over the
same candidates, every movie but those either dataset's train or valid split holds for the user (likes and
dislikes). A dislike held out as test is a candidate for both, as a dislike not yet made is where the lists are
served: neither model may know it (a review: the first version let auto's lists leave out every dislike, the
held-out ones too, which doubled the gain). NDCG@10 per user, paired, the differences pooled over the seeds;
within 2 SE is a tie.

Usage: python benchmarks/likes.py [--seeds 3]   (about 1 minute on 2 idle cores; 3 under load)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ranking as R  # noqa: E402  (sets the BLAS thread variables before numpy's first use)

import embedrec as er  # noqa: E402


def ndcg(lst, rel: set, k: int = 10) -> float:
    gain = sum(1 / np.log2(i + 2) for i, x in enumerate(lst[:k]) if x in rel)
    return gain / sum(1 / np.log2(i + 2) for i in range(min(k, len(rel))))


def pairs(ds: Path, part: str, likes_only: bool = False) -> set:
    """(user id, movie id) of the rows of split ``part`` of dataset ``ds`` (those rated 1 alone: ``likes_only``)."""
    t, u, m = (pd.read_parquet(ds / f"{n}.parquet") for n in (part, "users", "movies"))
    if likes_only:
        t = t[t["rating"] == 1]
    return set(zip(u["user_id"].to_numpy()[t["user_idx"]].tolist(), m["movie_id"].to_numpy()[t["movie_idx"]].tolist()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    seeds = range(ap.parse_args().seeds)
    tmp = Path(tempfile.mkdtemp(prefix="embedrec-likes-"))
    u, i, t, r, _, _ = R.load_ml100k(ratings=True)  # every ML-100K rating, through embedrec's own ingest
    pd.DataFrame({"user_id": u + 1, "movie_id": i + 1, "rating": (r >= 4).astype(int), "timestamp": t}).to_csv(
        tmp / "likes.csv", index=False)
    exe = [sys.executable, "-m", "embedrec"]
    diffs = []
    for seed in seeds:
        for name, floor in (("auto", "auto"), ("null", "null")):
            ds, run = tmp / f"{name}{seed}", tmp / f"run-{name}{seed}"
            subprocess.run([*exe, "ingest", str(tmp / "likes.csv"), "-o", str(ds), "-q", "--set", f"split.seed={seed}",
                            "--set", f"data.min_rating={floor}"], check=True)
            subprocess.run([*exe, "train", "--set", f"data.prepared={ds}", "--run", str(run), "-q"], check=True,
                           stdout=subprocess.DEVNULL)
        rel: dict = {}
        for u, m in pairs(tmp / f"auto{seed}", "test", True) & pairs(tmp / f"null{seed}", "test", True):
            rel.setdefault(u, set()).add(m)
        known: dict = {}  # the candidates left out for both: either dataset's train and valid rows of the user
        for ds in (tmp / f"auto{seed}", tmp / f"null{seed}"):
            for part in ("train", "valid"):
                for u, m in pairs(ds, part):
                    known.setdefault(u, set()).add(m)
        users = sorted(rel)
        lists = {}
        for name in ("auto", "null"):
            with er.open(tmp / f"run-{name}{seed}") as model:
                wide = max(len(known.get(u, ())) for u in users) + 10
                recs = model.recommend(users, min(wide, model.n_movies), exclude_seen=False)
                lists[name] = {u: [x for x in movies.tolist() if x not in known.get(u, ())][:10]
                               for u, movies in zip(recs.query_ids, recs.movie_ids)}
        a = np.array([ndcg(lists["auto"][u], rel[u]) for u in users])
        b = np.array([ndcg(lists["null"][u], rel[u]) for u in users])
        d = a - b
        diffs.append(d)
        print(f"seed {seed}: {len(users)} users; dislikes apart (auto) {a.mean():.4f}, learnt as likes (null) "
              f"{b.mean():.4f}; paired {d.mean():+.4f} (SE {d.std(ddof=1) / np.sqrt(d.size):.4f})")
    d = np.concatenate(diffs)
    print(f"all seeds: paired {d.mean():+.4f} (SE {d.std(ddof=1) / np.sqrt(d.size):.4f}) over {d.size:,} user-seeds")
    shutil.rmtree(tmp, ignore_errors=True)  # its datasets and runs (a review: 186 MB left behind each time)


if __name__ == "__main__":
    main()
