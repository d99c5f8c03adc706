"""Sparse per-user lists and row-wise top-k: the small numpy helpers that training, evaluation, serving and
the run directory share (numpy only; nothing above it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.data.dataset import Dataset


def csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of the user -> items lists, items sorted within each user."""
    order = np.lexsort((items, users))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, items[order].astype(np.int32)


def seen_splits(split: str) -> tuple[str, ...]:
    """The splits whose movies are excluded from a user's candidates when ranking on ``split``: everything the
    model may have been given before it (train for valid; train and valid for test)."""
    return ("train",) if split == "valid" else ("train", "valid")


def seen_csr(ds: Dataset, splits: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """CSR of each user's movies over the given splits of a dataset (duplicates are harmless)."""
    parts = [ds.splits[s] for s in splits if s in ds.splits and len(ds.splits[s])]
    if not parts:
        return np.zeros(ds.n_users + 1, np.int64), np.zeros(0, np.int32)
    return csr(np.concatenate([p.user for p in parts]), np.concatenate([p.movie for p in parts]), ds.n_users)


def gather_csr(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray):
    """For the given rows of a CSR: (local row number per entry, the entries, lengths per row)."""
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    total = int(lens.sum())
    offs = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(total)
    return np.repeat(np.arange(rows.size), lens), indices[offs], lens


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k (indices, scores), best first; entries scored -inf come back as index -1."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-ps, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(ps, order, axis=1)
    top[vals == -np.inf] = -1
    return top, vals
