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
- Coverage@K  = distinct movies recommended in anyone's top K / movies in the catalogue (one number)
"""

from __future__ import annotations

import re

import numpy as np

RANKING = ("precision", "recall", "ndcg", "map", "hitrate", "mrr", "coverage")
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


PER_USER = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "hitrate": hitrate_at_k,
    "mrr": mrr_at_k,
}


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
    hits = np.isin(top_keys, rel_keys) & (topk >= 0)
    return hits.astype(np.float64)
