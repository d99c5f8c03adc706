"""Ranking metrics of a model whose users are sharded over ranks (torchrun): each rank scores the sampled users it
owns, and the sums are added up over ranks, so the figures equal one process's evaluation."""

from __future__ import annotations

import numpy as np
import torch

from embedrec.dist_data import Shard
from embedrec.distributed import Group


class ShardRanking:
    """Ranking metrics of the sharded model on one split: each rank scores the sampled users it owns against
    every movie, and the sums are added up over ranks; the same numbers as evaluate_model on the whole data
    (the same sampled users, the same exclusions), up to float rounding."""

    def __init__(self, g: Group, shard: Shard, parts: list, test, ks, max_users: int, device=None, seed: int = 0):
        from embedrec.evaluate import sample_positions
        from embedrec.sparse import csr

        self.g, self.n_movies, self.device = g, shard.n_movies, device
        self.ks = sorted(set(ks))  # ranking_sums clamps a K beyond the catalogue and keeps its @K name
        lo, hi = shard.u_range(g.rank)
        pairs = [(p.user, p.movie) for p in parts if len(p)]
        if shard.below is not None and shard.below[0].size:  # rated below data.min_rating: left out as well
            pairs.append(shard.below)
        seen_u = np.concatenate([u for u, _ in pairs]) if pairs else np.zeros(0, np.int32)
        seen_m = np.concatenate([m for _, m in pairs]) if pairs else np.zeros(0, np.int32)
        self.seen = csr(seen_u - lo, seen_m, hi - lo)
        self.test = csr(test.user - lo, test.movie, hi - lo)
        has = np.diff(self.test[0]) > 0
        rows = np.flatnonzero(has)
        sizes = g.sizes(rows.size)
        total = self.with_rows = sum(sizes)
        if max_users and total > max_users:  # the sample one process draws, cut to this rank's users
            pos = sample_positions(total, max_users, seed)
            off = sum(sizes[:g.rank])
            mine = np.sort(pos[(pos >= off) & (pos < off + rows.size)] - off)
            rows, total = rows[mine], max_users
        self.rows, self.n_eval = rows, total
        self.skipped = int(g.total(np.count_nonzero(~has)))

    def metrics(self, P_local: np.ndarray, Q: np.ndarray, bias: np.ndarray | None) -> dict:
        from embedrec.evaluate import finish_ranking, ranking_sums

        sums, shown = ranking_sums(P_local, Q, bias, self.seen, self.test, self.rows, self.ks, self.n_movies,
                                   device=self.device)
        keys = list(sums)
        t = self.g.sum_(torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self.g.device))
        masks = torch.from_numpy(np.stack([shown[k] for k in self.ks]).astype(np.uint8)).to(self.g.device)
        masks = self.g.max_(masks).cpu().numpy().astype(bool)
        out = finish_ranking(dict(zip(keys, t.cpu().tolist())), dict(zip(self.ks, masks)), self.n_eval,
                             self.n_movies)
        out["users_skipped"] = self.skipped
        out["users_with_rows"] = self.with_rows  # more than users_evaluated under train.eval_users
        return out
