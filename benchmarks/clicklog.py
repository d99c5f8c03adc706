"""A synthetic click log (one line per event: user_id,item_id,timestamp, no rating column) and what a time split
of its summed pairs holds out.

write: pairs drawn by sample_pairs (power-law popularity, half the draws from the user's taste clusters); a pair
whose movie is in one of the user's taste clusters is clicked 1 + Poisson(3) times, any other 1 + Poisson(0.3);
each pair's first click falls uniformly in a year, each later one an Exp(30 days) gap after the one before.
check: a prepared dataset (`embedrec ingest LOG --set split.method=user_time`) against its log: how many test
pairs the user first clicked before their cut (the user's latest training event), and whether every training
count is the user's clicks of the movie up to that cut.

Usage: python benchmarks/clicklog.py write OUT.csv [--users 20000 --movies 3000 --pairs 500000 --seed 0]
       python benchmarks/clicklog.py check DATASET LOG.csv
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embedrec.data import synth  # noqa: E402

DAY = 86_400
START = 1_600_000_000


def write(out: Path, n_users: int, n_movies: int, n_pairs: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = synth.planted(n_users, n_movies, 8, seed)
    # the taste clusters sample_pairs draws from: its rng's state after its two permutations
    twin = copy.deepcopy(rng)
    twin.permutation(n_movies)
    twin.permutation(n_users)
    taste = synth.taste_clusters(p, 32, twin)
    u, m = synth.sample_pairs(n_users, n_movies, n_pairs, rng, taste=0.5, p=p, clusters=32)
    explained = (taste.user_clusters[u] == taste.movie_cluster[m][:, None]).any(axis=1)
    clicks = 1 + rng.poisson(np.where(explained, 3.0, 0.3))
    first = START + rng.integers(0, 365 * DAY, size=u.size)
    ev_u, ev_m = np.repeat(u, clicks), np.repeat(m, clicks)
    pair_start = np.repeat(np.cumsum(clicks) - clicks, clicks)
    gaps = rng.exponential(30 * DAY, size=ev_u.size).astype(np.int64)
    gaps[pair_start] = 0  # each pair's first click at its first time
    at = np.cumsum(gaps)
    at -= np.repeat(at[np.cumsum(clicks) - clicks], clicks)  # the gaps summed within each pair
    ev_t = np.repeat(first, clicks) + at
    order = np.argsort(ev_t, kind="stable")  # a log in time order
    pd.DataFrame({"user_id": ev_u[order] + 1, "item_id": ev_m[order] + 1, "timestamp": ev_t[order]}).to_csv(
        out, index=False)
    print(f"{out}: {ev_u.size:,} events of {u.size:,} pairs ({explained.mean():.0%} in a taste cluster, "
          f"{clicks[explained].mean():.2f} clicks each; others {clicks[~explained].mean():.2f})")


def check(ds: Path, log_path: Path) -> None:
    ds = ds / "current" if (ds / "current").exists() else ds
    users = pd.read_parquet(ds / "users.parquet")["user_id"].to_numpy()
    movies = pd.read_parquet(ds / "movies.parquet")["movie_id"].to_numpy()
    parts = {}
    for name in ("train", "valid", "test"):
        f = pd.read_parquet(ds / f"{name}.parquet")
        parts[name] = pd.DataFrame({"user_id": users[f["user_idx"]], "item_id": movies[f["movie_idx"]],
                                    "count": f["rating"].to_numpy(), "time": f["timestamp"].to_numpy()})
    events = pd.read_csv(log_path)
    first = events.groupby(["user_id", "item_id"])["timestamp"].min().rename("first")
    cut = parts["train"].groupby("user_id")["time"].max().rename("cut")  # the user's latest training event
    test = parts["test"].join(first, on=["user_id", "item_id"]).join(cut, on="user_id")
    early = int((test["first"] < test["cut"]).sum())
    print(f"test pairs first clicked before their user's latest training event: {early:,} of {len(test):,} "
          f"({early / len(test):.1%})")
    held = pd.concat([parts["valid"], parts["test"]]).join(first, on=["user_id", "item_id"])
    user_cut = held.groupby("user_id")["first"].min().rename("user_cut")  # the earliest held-out pair's first click
    ev = events.join(user_cut, on="user_id")
    up_to = ev[~(ev["timestamp"] > ev["user_cut"])].groupby(["user_id", "item_id"])["timestamp"].agg(["size", "max"])
    train = parts["train"].join(up_to, on=["user_id", "item_id"])
    counted = int((train["count"] == train["size"]).sum())
    timed = int((train["time"] == train["max"]).sum())
    kept = int(sum(f["count"].sum() for f in parts.values()))
    print(f"training pairs whose count is the user's clicks up to the user's cut: {counted:,} of {len(train):,}; "
          f"whose time is the latest of them: {timed:,}; clicks in no split's counts: {len(events) - kept:,} of "
          f"{len(events):,}")

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("--users", type=int, default=20_000)
    w.add_argument("--movies", type=int, default=3_000)
    w.add_argument("--pairs", type=int, default=500_000)
    w.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("check")
    c.add_argument("dataset", type=Path)
    c.add_argument("log", type=Path)
    a = ap.parse_args()
    if a.cmd == "write":
        write(a.out, a.users, a.movies, a.pairs, a.seed)
    else:
        check(a.dataset, a.log)


if __name__ == "__main__":
    main()
