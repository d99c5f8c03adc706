"""Sparse per-user lists and row-wise top-k: the small numpy helpers that training, evaluation, serving and
the run directory share (numpy only; nothing above it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.data.dataset import Dataset


def unique(a) -> np.ndarray:
    """``unique(a)`` (flattened), by sorting where ``a`` holds integers: numpy 2.3+'s hash-based unique
    (std::unordered_set, numpy#31969) took 7.8 s for 2.45M distinct int64 keys on this project's machines where
    sorting them takes 0.04 s (a speed review: 11 s of a synthetic-bench train). Other dtypes: np.unique."""
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        return np.unique(a)
    s = np.sort(a.ravel())
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if s.size > 1 else s


def isin(a, b) -> np.ndarray:
    """``np.isin(a, b)`` for integer arrays, by a binary search in ``b`` sorted (np.isin's own sort path calls
    the slow np.unique of ``b``: :func:`unique`; 7.4 s for 1,000 ids in 2.45M)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind not in "iub" or b.dtype.kind not in "iub" or {a.dtype.kind, b.dtype.kind} == {"i", "u"}:
        return np.isin(a, b)  # (signed with unsigned: searchsorted would compare them as floats, wrong past 2**53)
    if b.size == 0:
        return np.zeros(a.shape, bool)
    if a.dtype.kind != "b" and b.dtype.kind != "b" and int(b.max()) - int(b.min()) <= 6 * (a.size + b.size):
        return np.isin(a, b, kind="table")  # a small range: numpy's table (no unique; 5x faster than a search)
    ub = unique(b)
    at = np.minimum(np.searchsorted(ub, a), ub.size - 1)
    return ub[at] == a


def setdiff(a, b) -> np.ndarray:
    """``np.setdiff1d(a, b)``: the sorted distinct values of ``a`` not in ``b``, through :func:`unique` and
    :func:`isin` (numpy's calls the slow np.unique of both)."""
    ua = unique(a)
    return ua[~isin(ua, b)]


def lex_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """``np.lexsort((minor, major))``: the stable order by (major, minor). Sorts packed int64 keys (key, then
    row position) with ``np.sort``, 5-15x faster than lexsort or a stable argsort at millions of rows (numpy
    sorts int64 with SIMD, argsort without): one sort where both keys and the positions fit in 63 bits, else
    two (by minor, then stably by major), else lexsort itself."""
    n = major.size
    if n == 0:
        return np.zeros(0, np.int64)
    pos_bits = max(1, (n - 1).bit_length())
    major, hi_major = _from_zero(major)
    minor, hi_minor = _from_zero(minor)
    if ((hi_major + 1) * (hi_minor + 1)).bit_length() + pos_bits <= 63:
        return _packed_order(major * (hi_minor + 1) + minor, pos_bits)
    if max(hi_major, hi_minor).bit_length() + pos_bits <= 63:
        first = _packed_order(minor, pos_bits)
        return first[_packed_order(major[first], pos_bits)]
    return np.lexsort((minor, major))


def _from_zero(a: np.ndarray) -> tuple[np.ndarray, int]:
    a = np.asarray(a, np.int64)
    lo = int(a.min())
    return a - lo, int(a.max()) - lo


def _packed_order(key: np.ndarray, pos_bits: int) -> np.ndarray:
    """The stable sorting order of non-negative ``key`` (key << pos_bits must fit an int64)."""
    key = key << pos_bits
    key |= np.arange(key.size, dtype=np.int64)
    key.sort()
    key &= (1 << pos_bits) - 1
    return key


def csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of the user -> items lists, items sorted within each user."""
    order = lex_order(users, items)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, items[order].astype(np.int32)


def seen_splits(split: str) -> tuple[str, ...]:
    """The splits whose movies are excluded from a user's candidates when ranking on ``split``: everything the
    model may have been given before it (train for valid; train and valid for test)."""
    return ("train",) if split == "valid" else ("train", "valid")


# the codes of a rated_below pair's part (Dataset.rated_below_split): data/split.py's TRAIN, VALID, TEST
PART_CODES = {"train": 0, "valid": 1, "test": 2}


def below_in(below: tuple[np.ndarray, np.ndarray] | None, parts: np.ndarray | None,
             splits: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The pairs of ``below`` (user rows, movie rows: the rated_below pairs, Dataset.rated_below) whose part
    (``parts``: Dataset.rated_below_split) is one of ``splits``: what the model may have been told of before the
    split ranked. Every pair where ``splits`` is None (serving) or ``parts`` is (a dataset ingested before the
    parts were kept); None where there is none."""
    if below is None or not below[0].size:
        return None
    if splits is None or parts is None:
        return below
    keep = np.isin(parts, [PART_CODES[s] for s in splits])
    return (below[0][keep], below[1][keep]) if keep.any() else None


def seen_csr(ds: Dataset, splits: tuple[str, ...], *, serving: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """CSR of each user's movies over the given splits of a dataset (duplicates are harmless), and the movies
    each rated below data.min_rating (``ds.rated_below``: rated, though not learnt from) in those splits' parts
    (:func:`below_in`): what a ranking on the split after them (:func:`seen_splits`: validation, evaluate) leaves
    out, where a dislike the user makes later in the held-out period is not known yet. ``serving``: every
    rated_below pair, whatever its part, as ``recommend`` and ``export --topk-all`` leave them out (the user told
    us); so too for a dataset that does not record the parts (ingested before they were kept)."""
    parts = [(p.user, p.movie) for p in (ds.splits[s] for s in splits if s in ds.splits) if len(p)]
    below = below_in(getattr(ds, "rated_below", None), getattr(ds, "rated_below_split", None),
                     None if serving else splits)
    if below is not None:
        parts.append(below)
    if not parts:
        return np.zeros(ds.n_users + 1, np.int64), np.zeros(0, np.int32)
    return csr(np.concatenate([u for u, _ in parts]), np.concatenate([m for _, m in parts]), ds.n_users)


def gather_csr(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray):
    """For the given rows of a CSR: (local row number per entry, the entries, lengths per row)."""
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    total = int(lens.sum())
    offs = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(total)
    return np.repeat(np.arange(rows.size), lens), indices[offs], lens


def topk_kernel():
    """The compiled kernel with ``topk_rows`` typed, or None where it cannot be built (numpy's top-k then)."""
    import ctypes

    from embedrec.training.kernel import KernelError, load

    try:
        lib = load()
    except KernelError:
        return None
    f = lib.topk_rows
    if f.restype is not None:
        p, i64 = ctypes.c_void_p, ctypes.c_int64
        f.argtypes = [p, i64, ctypes.c_int, i64, i64, p, p]
        f.restype = None
    return lib


def topk_fast(scores: np.ndarray, k: int, threads: int, lib=None) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`topk_from_scores` by the compiled kernel's one-pass top-k on ``threads`` threads (several times
    faster than argpartition: a scale review ranked 300K users 3x slower than a dense top-k): the same rows and
    order (equal scores to the lower movie row, -inf as -1), but a NaN score never enters a list. None where the
    kernel cannot be built (``lib``: :func:`topk_kernel`'s, where the caller holds it)."""
    lib = lib if lib is not None else topk_kernel()
    if lib is None:
        return None
    k = min(k, scores.shape[1])
    if k <= 0:  # (the kernel reads the k-th place: none to read)
        return np.zeros((scores.shape[0], 0), np.int64), np.zeros((scores.shape[0], 0), np.float32)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    n = scores.shape[0]
    idx, val = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    cuts = np.linspace(0, n, max(1, min(int(threads), n // 256)) + 1).astype(np.int64)

    def part(a: int, b: int) -> None:  # ctypes releases the GIL: the threads rank their rows in parallel
        lib.topk_rows(scores.ctypes.data, scores.shape[1], k, a, b, idx.ctypes.data, val.ctypes.data)

    if cuts.size > 2:
        import threading

        pool = [threading.Thread(target=part, args=(int(a), int(b)), daemon=True) for a, b in zip(cuts, cuts[1:])]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
    else:
        part(0, n)
    return idx, val


class PopularLists:
    """The most-popular lists (evaluate's most_popular baseline): one order of the movies for everyone, ``counts``
    (each movie's training ratings) highest first and equal counts lowest movie row first, each user's own seen
    movies skipped, and a movie without a training rating (a count of 0 or less) never listed, as no served list
    holds one. The lists a dense top-k of the counts gives (such movies at -inf: :func:`topk_from_scores`,
    :func:`topk_fast`, the GPU's ``topk_lower_first``), without scoring every user against every movie: a scale
    review (1M users x 60K movies) spent 291 s of evaluate's 600 on that matrix."""

    def __init__(self, counts: np.ndarray):
        score = np.asarray(counts, np.float32)  # (the dense path's scores: 0 + the counts, in float32)
        self.listed = int(np.count_nonzero(score > 0))  # the places a list may reach (the rest: no rating)
        self.order = np.argsort(-score, kind="stable")
        self.place = np.empty(score.size, np.int64)  # each movie's place in the order
        self.place[self.order] = np.arange(score.size)

    def top(self, exclude: tuple[np.ndarray, np.ndarray] | None, rows: np.ndarray, k: int) -> np.ndarray:
        """The top-``k`` movie rows of each of ``rows`` (users), leaving out each one's ``exclude`` CSR items;
        slots left over (fewer movies unseen than ``k``) are -1, as :func:`topk_from_scores` gives them.

        A user's seen places sorted, q_0 < q_1 < ..., its j-th unseen place is j + m, m the count of i with
        q_i - i <= j (q_i - i never falls), found by one search over every user's (row, q_i - i) keys."""
        n = self.order.size
        k = max(0, min(k, n))
        out = np.full((rows.size, k), -1, np.int64)
        if k == 0 or rows.size == 0:
            return out
        if exclude is None:
            r, c = np.zeros(0, np.int64), np.zeros(0, np.int64)
        else:
            r, c, _ = gather_csr(exclude[0], exclude[1], rows)
        seen = unique(r.astype(np.int64) * n + self.place[c])  # (row, place), sorted, each pair once
        seen_row = seen // n
        starts = np.searchsorted(seen_row, np.arange(rows.size + 1))
        within = np.arange(seen.size) - starts[seen_row]
        keys = seen - within  # row * n + (q_i - i): increasing over rows, never falling within one
        j = np.arange(k)
        m = np.searchsorted(keys, (np.arange(rows.size) * n)[:, None] + j[None, :], side="right") - starts[:-1, None]
        at = j[None, :] + m
        listed = at < self.listed
        out[listed] = self.order[at[listed]]
        return out


def topk_of_row(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_from_scores` of one row of scores (1-D): the same (indices, scores), step for step (the same
    partition, the same NaN and tie rules), without the 2-D bookkeeping that costs a single user's list more than
    its partition (a review: 1.3 ms a ``recommend(user)`` call, where implicit's took 0.3)."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, scores.dtype)
    part = np.argpartition(scores, n - k)[n - k:]
    ps = scores[part]
    if np.isnan(ps).any():  # as topk_from_scores: a NaN score goes last
        part = np.argpartition(-scores, k - 1)[:k]
        ps = scores[part]
    kth = ps.min()
    if kth > -np.inf and np.count_nonzero(scores == kth) > np.count_nonzero(ps == kth):
        part = np.concatenate([np.flatnonzero(scores > kth), np.flatnonzero(scores == kth)])[:k]
        ps = scores[part]
    order = np.lexsort((part, -ps))
    top, vals = part[order].astype(np.int64, copy=False), ps[order]
    top[vals == -np.inf] = -1
    return top, vals


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k (indices, scores), best first, equal scores in index order (the smaller index first, also
    where equal scores straddle the k-th place), so the answer never depends on how the partition fell;
    entries scored -inf come back as index -1."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((scores.shape[0], 0), np.int64), np.zeros((scores.shape[0], 0), scores.dtype)
    n = scores.shape[1]
    part = np.argpartition(scores, n - k, axis=1)[:, n - k:]  # the k largest (no negated copy)
    ps = np.take_along_axis(scores, part, axis=1)
    nan = np.flatnonzero(np.isnan(ps).any(axis=1))
    if nan.size:  # partition ranks NaN above everything; a NaN score (a broken model) goes last instead
        part[nan] = np.argpartition(-scores[nan], k - 1, axis=1)[:, :k]
        ps[nan] = np.take_along_axis(scores[nan], part[nan], axis=1)
    kth = ps.min(axis=1)
    cut = kth[:, None]
    straddle = (np.count_nonzero(scores == cut, axis=1) > np.count_nonzero(ps == cut, axis=1)) & (kth > -np.inf)
    for r in np.flatnonzero(straddle):  # the partition kept some of the equal scores at the cut: keep the first
        row = scores[r]
        part[r] = np.concatenate([np.flatnonzero(row > kth[r]), np.flatnonzero(row == kth[r])])[:k]
        ps[r] = row[part[r]]
    order = np.lexsort((part, -ps), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(ps, order, axis=1)
    top[vals == -np.inf] = -1
    return top, vals


def top_k_scores(user_vecs: np.ndarray, movie_vecs, movie_bias, k: int,
                 exclude: tuple[np.ndarray, np.ndarray] | None, rows: np.ndarray, device=None,
                 fast: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k movie indices for the given user rows, excluding each user's ``exclude`` CSR items.

    On a GPU ``device`` (train.device cuda) the scores are computed there with torch (``movie_vecs`` and
    ``movie_bias`` may already be tensors on it, see :func:`on_device`); equal scores in index order, as here. ``fast``:
    the C kernel's one-pass top-k (several times faster than argpartition; equal scores go to the lower movie
    row, where argpartition's choice is arbitrary), used by per-epoch validation, on ``fast`` threads. ``out``: a
    float32 buffer of at least (rows, movies) the scores are written into (a fresh 160 MB matrix per batch costs
    its page faults again: 0.18-0.26 s against 0.11-0.16 s for the product into a reused one, measured)."""
    if _is_gpu(device):
        r, c = (gather_csr(exclude[0], exclude[1], rows)[:2] if exclude is not None
                else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        return torch_topk(user_vecs, movie_vecs, movie_bias, (r, c), k, device)[0]
    n_rows, n_cols = user_vecs.shape[0], movie_vecs.shape[0]
    if (out is not None and out.dtype == np.float32 and user_vecs.dtype == np.float32 and movie_vecs.dtype ==
            np.float32 and out.size >= n_rows * n_cols):
        scores = np.matmul(user_vecs, movie_vecs.T, out=out.reshape(-1)[:n_rows * n_cols].reshape(n_rows, n_cols))
    else:
        scores = user_vecs @ movie_vecs.T
    if movie_bias is not None:
        scores += movie_bias[None, :]
    if exclude is not None:
        r, c, _ = gather_csr(exclude[0], exclude[1], rows)
        scores[r, c] = -np.inf
    got = topk_fast(scores, k, fast) if fast else None
    return topk_from_scores(scores, k)[0] if got is None else got[0]


def _is_gpu(device) -> bool:
    return device is not None and str(device) not in ("cpu", "auto")


def on_device(x: np.ndarray | None, device):
    """``x`` as a float32 tensor on a GPU ``device`` (copied there once), or unchanged on the CPU."""
    if x is None or not _is_gpu(device):
        return x
    import torch

    return x if torch.is_tensor(x) else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)


def torch_topk(queries: np.ndarray, X, bias, excl: tuple[np.ndarray, np.ndarray], k: int, device):
    """Top-k (indices, scores) of ``queries @ X.T (+ bias)`` on ``device`` with torch, the (query row, column)
    pairs in ``excl`` scored -inf; entries left at -inf come back as index -1 (as topk_from_scores)."""
    import torch

    Xt, bt = on_device(X, device), on_device(bias, device)
    s = on_device(np.ascontiguousarray(queries, dtype=np.float32), device) @ Xt.T
    if bt is not None:
        s += bt[None, :]
    if excl[0].size:
        s[torch.from_numpy(np.asarray(excl[0], np.int64)).to(device),
          torch.from_numpy(np.asarray(excl[1], np.int64)).to(device)] = -float("inf")
    return topk_lower_first(s, k)


def topk_lower_first(s, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k (indices, scores) of a torch tensor ``s`` as numpy, with equal scores in index order (the
    smaller first, also where they straddle the k-th place), as the CPU's :func:`topk_from_scores`; entries scored
    -inf (or NaN, a broken model's, which the CPU lists last) come back as index -1. torch.topk alone orders ties as the device falls: on a GPU the most-popular
    baseline's many equal counts gave other lists, and other metrics, than the CPU (seen on an H200, session 36)."""
    import torch

    k = min(k, s.shape[1])
    if bool(torch.isnan(s).any()):  # a broken model's NaN: torch ranks it first; never listed (a review)
        s = torch.where(torch.isnan(s), torch.full((), -float("inf"), dtype=s.dtype, device=s.device), s)
    vals, idx = torch.topk(s, k, dim=1)
    if k == 0:
        return idx.cpu().numpy(), vals.cpu().numpy()
    cut = vals[:, -1:]
    # the k lowest columns that score exactly the k-th value: a key n - column there, 0 elsewhere (int32 where
    # it holds them: half the memory of int64 beside the batch's scores)
    n = s.shape[1]
    kt = torch.int32 if n < 2**31 - 1 else torch.int64
    cols = torch.arange(n, 0, -1, device=s.device, dtype=kt)
    tie_key, tie_idx = torch.topk(torch.where(s == cut, cols, torch.zeros((), dtype=kt, device=s.device)), k, dim=1)
    vals, idx, cut = vals.cpu().numpy(), idx.cpu().numpy(), cut.cpu().numpy()
    tie_key, tie_idx = tie_key.cpu().numpy(), tie_idx.cpu().numpy()
    above = vals > cut  # every score above the cut is in the top k; the cut's own are taken lowest column first
    cand_idx = np.concatenate([np.where(above, idx, -1), np.where(tie_key > 0, tie_idx, -1)], axis=1)
    cand_val = np.concatenate([np.where(above, vals, -np.inf),
                               np.where(tie_key > 0, np.broadcast_to(cut, tie_key.shape), -np.inf)], axis=1)
    cand_idx[cand_val == -np.inf] = np.iinfo(np.int64).max  # (-inf entries sort last, then become -1)
    order = np.lexsort((cand_idx, -cand_val), axis=1)[:, :k]
    top = np.take_along_axis(cand_idx, order, axis=1)
    out = np.take_along_axis(cand_val, order, axis=1).astype(vals.dtype, copy=False)
    top[out == -np.inf] = -1
    return top, out
