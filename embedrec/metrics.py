"""Pure metric functions (numpy only).

Ranking metrics take a hit matrix ``hits`` (users x K, 1 where the movie at that rank is relevant) and the
number of relevant (test) movies per user ``n_rel``; they return one value per user and the caller averages.

Definitions (binary relevance, ranks 1..K):
- Precision@K = hits in top K / K
- Recall@K    = hits in top K / n_rel
- NDCG@K      = sum_i hit_i / log2(i + 1)  divided by the ideal DCG over min(n_rel, K) hits
- MAP@K       = sum_i Precision@i * hit_i / min(n_rel, K)
- HitRate@K   = 1 if any hit in top K else 0
- MRR@K       = 1 / rank of the first hit within the top K, 0 if none
- AUC@K       = implicit's AUC_at_k: the area under the ROC curve of the top K, the rest of the catalogue taken as
                ranked below it, for n_pos = n_rel relevant and n_neg = n_items - n_rel other movies:
                (sum over the misses in the top K of the hits ranked above it
                 + (hits + n_pos) / 2 * (n_neg - misses)) / (n_pos * n_neg),
                a miss being each of the K places without a hit (an empty place too, as implicit counts it); 0 where
                n_pos * n_neg is 0, and n_neg - misses taken as 0 where a K near the catalogue's size makes it less
- Coverage@K  = distinct movies recommended in anyone's top K / movies in the catalogue (one number)

Beyond-accuracy metrics take the lists ``topk`` (users x K item indices, -1 = no item at that rank) and what is
known of each item from training: ``pop`` (its number of training interactions), the long-tail flags, its genres.
Per user (the mean of a user's listed items; NaN for a user whose list is empty, left out of the mean):
- ARP@K        = mean training count of the listed items (Abdollahpouri's average recommendation popularity;
                 RecBole's AveragePopularity)
- Novelty@K    = mean self-information -log2(pop_i / n_users) of the listed items, with n_users the training
                 users and pop_i counted as 1 for an item no training user had (Zhou et al. 2010)
- LongTail@K   = share of the listed items in the long tail: every item outside the short head, the most popular
                 items whose training interactions together make up 80% of them (:func:`long_tail`)
- ILD@K        = intra-list diversity: mean over the pairs of listed items that both have genres of
                 1 - cosine(genre vectors); NaN where fewer than two have genres
Over all users' lists together (one number; ``exposure``: how many lists each item is in, :func:`add_exposure`):
- Gini@K       = Gini index of the exposure over the whole catalogue: 0 when every item is listed equally often,
                 (n - 1) / n when one item takes every place (RecBole's GiniIndex)
- Entropy@K    = Shannon entropy -sum p_i ln p_i of the exposure shares p_i (natural log, as RecBole's
                 ShannonEntropy): ln(n) at most, for n items listed equally often
"""

from __future__ import annotations

import re

import numpy as np

RANKING = ("precision", "recall", "ndcg", "map", "hitrate", "mrr", "auc", "coverage")
RATING = ("rmse", "mae")
_HIGHER_IS_BETTER = {**{m: True for m in RANKING}, "rmse": False, "mae": False}


def parse_metric(name: str) -> tuple[str, int | None]:
    """'ndcg@10' -> ('ndcg', 10); 'rmse' -> ('rmse', None). Raises ValueError with the valid names."""
    m = re.fullmatch(r"([a-z]+)(?:@(\d+))?", name.strip().lower())
    valid = "rmse, mae, or one of " + ", ".join(f"{r}@K" for r in RANKING)
    if not m:
        raise ValueError(f"'{name}' is not a metric; use {valid}")
    base, k = m.group(1), m.group(2)
    if base in RATING and k is None:
        return base, None
    if base in RANKING and k is not None and int(k) > 0:
        return base, int(k)
    raise ValueError(f"'{name}' is not a metric; use {valid}")


def higher_is_better(name: str) -> bool:
    return _HIGHER_IS_BETTER[parse_metric(name)[0]]


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.mean(np.abs(d))) if d.size else float("nan")


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / k


def recall_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / np.maximum(n_rel, 1)


def ndcg_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    disc = _discounts(k)
    dcg = (hits[:, :k] * disc[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal_cum[np.minimum(n_rel, k)]
    return np.divide(dcg, idcg, out=np.zeros_like(dcg, dtype=np.float64), where=idcg > 0)


def map_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    h = hits[:, :k].astype(np.float64)
    prec_i = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    return (prec_i * h).sum(axis=1) / np.maximum(np.minimum(n_rel, k), 1)


def hitrate_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return (hits[:, :k].sum(axis=1) > 0).astype(np.float64)


def mrr_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    h = hits[:, :k] > 0
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)


def auc_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int, n_items: int) -> np.ndarray:
    """Per user, implicit's AUC_at_k over a catalogue of ``n_items`` movies (the module's definition). ``hits``
    narrower than k (lists shorter than k) count their missing places as misses, each below every hit."""
    h = (np.asarray(hits)[:, :k] > 0).astype(np.float64)
    pos = np.asarray(n_rel, np.float64)
    neg = float(n_items) - pos
    found = h.sum(axis=1)
    above = np.cumsum(h, axis=1) - h  # the hits ranked above each place
    area = ((1.0 - h) * above).sum(axis=1) + (k - h.shape[1]) * found
    misses = k - found
    area += (found + pos) / 2.0 * np.maximum(neg - misses, 0.0)
    denom = pos * neg
    return np.divide(area, denom, out=np.zeros_like(area), where=denom > 0)


# the per-user ranking metrics, each f(hits, n_rel, k); those of CATALOGUE also take the number of movies, n_items
CATALOGUE = {"auc": auc_at_k}
PER_USER = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "hitrate": hitrate_at_k,
    "mrr": mrr_at_k,
    **CATALOGUE,
}


def per_user_values(hits: np.ndarray, n_rel: np.ndarray, ks, n_items: int | None) -> dict[str, np.ndarray]:
    """{'name@k': each user's value} of every PER_USER metric at each k, each metric at every k in turn (evaluate's
    order); those of CATALOGUE only where ``n_items`` is known."""
    out = {}
    for name, fn in PER_USER.items():
        if name in CATALOGUE:
            if n_items is None:
                continue
            for k in ks:
                out[f"{name}@{k}"] = fn(hits, n_rel, k, n_items)
        else:
            for k in ks:
                out[f"{name}@{k}"] = fn(hits, n_rel, k)
    return out


def coverage_at_k(topk: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one user's top K (topk holds item indices, -1 = none)."""
    shown = np.zeros(n_items, dtype=bool)
    mark_shown(shown, topk, k)
    return coverage(shown)


def mark_shown(shown: np.ndarray, topk: np.ndarray, k: int) -> None:
    """Mark in ``shown`` (one flag per item) the items of these users' top K: coverage over users in batches."""
    ids = topk[:, :k].ravel()
    shown[ids[ids >= 0]] = True


def coverage(shown: np.ndarray) -> float:
    """The share of items ``mark_shown`` marked."""
    return float(np.count_nonzero(shown) / shown.size) if shown.size else 0.0


def hit_matrix(topk: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """hits[u, r] = 1 where topk[u, r] is among row u's relevant items, given as CSR (indptr, indices).

    One vectorised membership test over (row, item) keys; -1 entries in topk never hit.
    """
    n_rows = topk.shape[0]
    width = int(max(topk.max(initial=0), indices.max(initial=0))) + 1
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
    rel_keys = rows * width + indices.astype(np.int64)
    top_keys = np.arange(n_rows, dtype=np.int64)[:, None] * width + topk.astype(np.int64)
    # a binary search in the sorted keys (np.isin's sort path calls numpy 2.3+'s hash-based np.unique, numpy#31969:
    # 5.1 s for 100,000 users' top 10 against 2M pairs, where this takes a tenth of it; sparse.isin's way)
    rel = np.sort(rel_keys)
    hits = (rel[np.minimum(np.searchsorted(rel, top_keys), rel.size - 1)] == top_keys) if rel.size else \
        np.zeros(top_keys.shape, bool)
    hits &= topk >= 0
    return hits.astype(np.float64)


# ------------------------------------------------------------------------------ beyond accuracy
HEAD_SHARE = 0.8  # the short head: the most popular items holding this share of the training interactions


def long_tail(pop: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """Flags of the long-tail items: all but the short head, the most popular items whose training counts ``pop``
    together reach ``head_share`` of all of them (items tied with the last of those are head too, so the split
    does not depend on the items' order). Every item is tail where there is no training interaction."""
    pop = np.asarray(pop, dtype=np.float64)
    total = pop.sum()
    if total <= 0:
        return np.ones(pop.size, dtype=bool)
    desc = np.sort(pop)[::-1]
    last = int(np.searchsorted(np.cumsum(desc), head_share * total * (1 - 1e-12)))  # first reaching the share
    return pop < desc[min(last, desc.size - 1)]


def _listed(topk: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the top k, flags of its real entries, how many there are per user)."""
    top = np.asarray(topk)[:, :k]
    ok = top >= 0
    return top, ok, ok.sum(axis=1)


def mean_listed(values: np.ndarray, topk: np.ndarray, k: int) -> np.ndarray:
    """Per user: the mean of ``values`` (one per item) over the user's listed items; NaN for an empty list."""
    top, ok, n = _listed(topk, k)
    total = np.where(ok, values[np.where(ok, top, 0)], 0.0).sum(axis=1) if values.size else np.zeros(top.shape[0])
    return np.divide(total, n, out=np.full(top.shape[0], np.nan), where=n > 0)


def arp_at_k(topk: np.ndarray, pop: np.ndarray, k: int) -> np.ndarray:
    """Average recommendation popularity: per user, the mean training count ``pop`` of the listed items."""
    return mean_listed(np.asarray(pop, dtype=np.float64), topk, k)


def self_information(pop: np.ndarray, n_users: int) -> np.ndarray:
    """-log2(pop_i / n_users) per item, an item no training user had counted as had by one (a finite maximum)."""
    return np.log2(max(int(n_users), 1)) - np.log2(np.maximum(np.asarray(pop, dtype=np.float64), 1.0))


def novelty_at_k(topk: np.ndarray, pop: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Per user: the mean self-information of the listed items (:func:`self_information`)."""
    return mean_listed(self_information(pop, n_users), topk, k)


def longtail_at_k(topk: np.ndarray, tail: np.ndarray, k: int) -> np.ndarray:
    """Per user: the share of the listed items that are long-tail items (``tail``: :func:`long_tail`'s flags)."""
    return mean_listed(np.asarray(tail, dtype=np.float64), topk, k)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (one row per item, e.g. 0/1 genre flags) scaled to length 1; all-zero rows stay zero."""
    v = np.asarray(vectors, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def ild_at_k(topk: np.ndarray, units: np.ndarray, k: int, chunk: int = 1 << 20) -> np.ndarray:
    """Intra-list diversity per user: the mean of 1 - cosine over the pairs of listed items that both have a
    vector (``units``: :func:`unit_rows`, zero rows for items without one); NaN where fewer than two have one.

    With unit rows u_i, the sum of cosines over the pairs is (|sum_i u_i|^2 - m) / 2 for the m items listed with a
    vector: O(K) a user, not O(K^2); users taken ``chunk`` entries of (users x K x dims) at a time."""
    top, ok, _ = _listed(topk, k)
    out = np.full(top.shape[0], np.nan)
    if not units.size or not top.size:
        return out
    has = np.linalg.norm(units, axis=1) > 0
    step = max(1, chunk // max(top.shape[1] * units.shape[1], 1))
    for s in range(0, top.shape[0], step):
        t = top[s:s + step]
        none = (~ok[s:s + step]).sum(axis=1)  # the -1 entries, each read as the last item: taken off again
        total = units[t].sum(axis=1) - none[:, None] * units[-1]
        m = (has[t].sum(axis=1) - none * has[-1]).astype(np.float64)
        pairs = m * (m - 1)  # twice the number of pairs
        sim = np.divide((total * total).sum(axis=1) - m, pairs, out=np.zeros_like(m), where=pairs > 0)
        out[s:s + step] = np.where(m >= 2, np.clip(1.0 - sim, 0.0, 1.0), np.nan)
    return out


def add_exposure(exposure: np.ndarray, topk: np.ndarray, k: int) -> None:
    """Add to ``exposure`` (one count per item) how many of these users' top K lists each item is in: over users
    in batches, as :func:`mark_shown`."""
    ids = np.asarray(topk)[:, :k].ravel()
    exposure += np.bincount(ids[ids >= 0], minlength=exposure.size)[:exposure.size].astype(exposure.dtype)


def gini(exposure: np.ndarray) -> float:
    """Gini index of ``exposure`` (one count per catalogue item, zeros included): sum_i (2i - n - 1) c_i / (n sum c)
    over the counts sorted ascending, i = 1..n; NaN where nothing was listed."""
    c = np.sort(np.asarray(exposure, dtype=np.float64))
    n, total = c.size, c.sum()
    if n == 0 or total <= 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * c).sum() / (n * total))


def entropy(exposure: np.ndarray) -> float:
    """Shannon entropy (natural log) of the shares of ``exposure``; NaN where nothing was listed."""
    c = np.asarray(exposure, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return float("nan")
    p = c[c > 0] / total
    return float(-(p * np.log(p)).sum())
