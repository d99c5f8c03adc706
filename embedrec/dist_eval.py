"""Metrics of a model whose users are sharded over ranks (torchrun): each rank scores the users it owns, and the
sums are added up over ranks, so the figures equal one process's evaluation (up to float rounding): ranking
metrics (``ShardRanking``), and for the replicated trainers (replica.py) rating metrics and the baselines
(``Evaluator``, ``baselines``)."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch

from embedrec.dist_data import Shard
from embedrec.distributed import Group
from embedrec.evaluate import RankingLists, fit_biases, sample_positions, split_rating_metrics
from embedrec.evaluate_paired import paired_from_sums
from embedrec.sparse import PopularLists, below_in, csr, seen_splits, unique


class ShardRanking:
    """Ranking metrics of the sharded model on one split: each rank scores the sampled users it owns against
    every movie, and the sums are added up over ranks; the same numbers as evaluate_model on the whole data
    (the same sampled users, the same exclusions), up to float rounding. ``parts``: the splits before ``split``, the
    one ranked (``test``'s rows), whose movies are left out, and so are the pairs rated below data.min_rating of
    those parts (sparse.seen_csr)."""

    def __init__(self, g: Group, shard: Shard, parts: list, test, ks, max_users: int, device=None, seed: int = 0, *,
                 split: str):
        self.g, self.device = g, device
        lo, hi = shard.u_range(g.rank)
        pairs = [(p.user, p.movie) for p in parts if len(p)]
        below = below_in(shard.below, shard.below_split, seen_splits(split))
        if below is not None:
            pairs.append(below)
        seen_u = np.concatenate([u for u, _ in pairs]) if pairs else np.zeros(0, np.int32)
        seen_m = np.concatenate([m for _, m in pairs]) if pairs else np.zeros(0, np.int32)

        def sample(rows: np.ndarray):  # the sample one process draws, cut to this rank's users
            sizes = g.sizes(rows.size)
            total = sum(sizes)
            if max_users and total > max_users:
                pos = sample_positions(total, max_users, seed)
                off = sum(sizes[:g.rank])
                return rows[np.sort(pos[(pos >= off) & (pos < off + rows.size)] - off)], max_users, total
            return rows, total, total

        self.lists = RankingLists(csr(seen_u - lo, seen_m, hi - lo), csr(test.user - lo, test.movie, hi - lo), ks,
                                  shard.n_movies, sample=sample, total=lambda n: int(g.total(n)))

    def metrics(self, P_local: np.ndarray | None, Q: np.ndarray | None, bias: np.ndarray | None,
                per_user: list | None = None, ranked=None) -> dict:
        """``per_user``: gets this rank's users' values; ``ranked``: lists ranked without factors (the most-popular
        baseline's, :class:`embedrec.sparse.PopularLists`; evaluate.ranking_sums')."""
        sums, shown = self.lists.sums(P_local, Q, bias, device=self.device, per_user=per_user, ranked=ranked)
        keys, ks = list(sums), list(shown)  # ranking_sums clamps a K beyond the catalogue and keeps its @K name
        t = self.g.sum_(torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self.g.device))
        masks = torch.from_numpy(np.stack([shown[k] for k in ks]).astype(np.uint8)).to(self.g.device)
        masks = self.g.max_(masks).cpu().numpy().astype(bool)
        return self.lists.finish(dict(zip(keys, t.cpu().tolist())), dict(zip(ks, masks)))


def versus_popular(g: Group, mine: list, popular: list, ks) -> dict:
    """evaluate_paired.versus_popular over the ranks: {ndcg@K (the smallest of ``ks``): the paired difference of the
    model's per-user values and the most-popular lists' (ShardRanking.metrics' ``per_user`` batches, each rank's
    own users), its SE, users and tie}, from every rank's sums of the differences and their squares (a review: a
    torchrun train's metrics.json had no vs_popular, so the tie with most_popular one process warns of went
    unsaid); {} where no user was ranked by both. A collective: every rank calls it."""
    key = f"ndcg@{min(ks)}"

    def values(batches: list) -> tuple[np.ndarray, np.ndarray]:
        if not batches or key not in batches[0][1]:
            return np.zeros(0, np.int64), np.zeros(0)
        return (np.concatenate([r for r, _ in batches]).astype(np.int64),
                np.concatenate([v[key] for _, v in batches]).astype(np.float64))

    (ra, va), (rb, vb) = values(mine), values(popular)
    _, ia, ib = np.intersect1d(ra, rb, assume_unique=True, return_indices=True)  # the users both ranked
    d = va[ia] - vb[ib]
    d = d[~np.isnan(d)]
    t = g.sum_(torch.tensor([float(d.size), float(d.sum()), float(d @ d)], dtype=torch.float64, device=g.device))
    n, total, squares = t.cpu().tolist()
    return {key: paired_from_sums(int(n), total, squares)} if n else {}


def held_out(g: Group, shard: Shard) -> dict:
    """metrics.json's ``held_out`` (train_workflow.held_out's: valid's and test's ratings and users) summed over the
    ranks, whose users are apart: a torchrun train recorded none, so said no note of the movies held out a user
    beside valid's and test's figures (a docs review)."""
    out = {}
    for split in ("valid", "test"):
        part = shard.splits.get(split)
        n = int(g.total(0 if part is None else len(part)))
        if n:
            out[split] = {"ratings": n, "users": int(g.total(unique(part.user).size if part is not None else 0))}
    return out


def rating_sums(g: Group, pred: np.ndarray, true: np.ndarray) -> dict:
    """rmse and mae over every rank's (prediction, rating) pairs."""
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    t = g.sum_(torch.tensor([float(d @ d), float(np.abs(d).sum()), float(d.size)], dtype=torch.float64,
                            device=g.device)).cpu().tolist()
    return {"rmse": math.sqrt(t[0] / t[2]), "mae": t[1] / t[2]} if t[2] else {"rmse": float("nan"),
                                                                             "mae": float("nan")}


def sum_ranks(g: Group, a: np.ndarray) -> np.ndarray:
    """The element-wise sum of ``a`` over ranks (through the group's device)."""
    return g.sum_(torch.from_numpy(np.ascontiguousarray(a)).to(g.device)).cpu().numpy()


class Evaluator:
    """evaluate_model on shards: rating metrics (explicit) and ranking metrics of factors ``f`` on ``part``."""

    def __init__(self, g: Group, shard: Shard, seen: list, part, ks, max_users: int, explicit: bool, ranking: bool,
                 device=None, *, split: str):
        self.g, self.shard, self.part, self.explicit = g, shard, part, explicit
        self.scale = tuple(shard.manifest["rating_scale"]) if explicit else None
        self.rank = ShardRanking(g, shard, seen, part, ks, max_users, device, split=split) if ranking else None

    def metrics(self, f: dict, per_user: list | None = None) -> dict:
        """``per_user``: gets this rank's users' ranking values (ShardRanking.metrics')."""
        out: dict = {}
        if self.explicit:
            out.update(split_rating_metrics(f, self.part, self.scale, partial(rating_sums, self.g)))
        if self.rank is not None:
            lo, hi = self.shard.u_range(self.g.rank)
            out.update(self.rank.metrics(f["user_factors"][lo:hi], f["movie_factors"], f["movie_bias"],
                                         per_user=per_user))
        return out


def baselines(g: Group, shard: Shard, seen: list, part, ks, max_users: int, explicit: bool, device=None, *,
              split: str, per_user: list | None = None) -> dict:
    """evaluate.baselines on shards: global mean and biases-only (explicit), most popular (``per_user``: gets its
    lists' values of this rank's users)."""
    tr = seen[0]
    out: dict = {}
    if explicit:
        n = g.total(len(tr))
        mu = g.total(float(tr.rating.astype(np.float64).sum())) / n
        out["global_mean"] = rating_sums(g, np.full(len(part), mu), part.rating)
        # the movie sums added over ranks (each user's ratings are on its rank)
        _, bu, bm = fit_biases(tr.user, tr.movie, tr.rating.astype(np.float64), shard.n_users, shard.n_movies,
                               mu=mu, reduce=partial(sum_ranks, g))
        lo, hi = shard.manifest["rating_scale"]
        out["biases"] = rating_sums(g, np.clip(mu + bu[part.user] + bm[part.movie], lo, hi), part.rating)
    pop = sum_ranks(g, np.bincount(tr.movie, minlength=shard.n_movies).astype(np.int64))
    ev = ShardRanking(g, shard, seen, part, ks, max_users, device, split=split)
    out["most_popular"] = ev.metrics(None, None, None, ranked=PopularLists(pop).top, per_user=per_user)
    return out
