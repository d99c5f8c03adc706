"""``train.als_newuser_prior`` auto: the weight of a new user's popularity prior (serve.prior) for each number of
told movies, chosen on valid.

Each of up to :data:`USERS` validation users (those with a training rating, drawn from ``train.seed``) plays a new
user: for each n of serve.prior.TOLD it tells n of its training movies, liked (as ``recommend --liked`` gives
them): where the ratings have times, every other user its first n and the rest n drawn at random, for how a new
user picks what it tells is not known (told at random, ML-100K's users were served best at a weight near 7 for
one movie; told their first, near 30: BENCHMARKS.md, session 53); it is then folded in against the selected model's movies exactly as serving folds one in
(serve.foldin.als_vector's solve, here through the Gram matrix's eigenvectors and the Woodbury identity: n x n
systems instead of d x d, the same vector). Its list is scored for each weight of :data:`WEIGHTS` against its
valid movies, every training movie of its own left out (what it rated is not to be recommended, told or not), and
the table kept is the one of the best mean NDCG@10 summed over the n whose weight is never above that of a
smaller n (a longer history never leans more on popularity: :func:`monotone_best`, where a running minimum of
each n's own best carried one noisy low weight to every larger n; the smaller weight on a tie), over the n up to
:data:`LAST_WEIGHED` (10): the larger ones get 0, where the measure's hidden movies favour popularity. An n that
fewer than :data:`MIN_USERS` users have enough training movies for takes the weight before it. The table is kept only
where its sum beats the fold-in alone's (weight 0 at every n) by :data:`MARGIN` (:func:`clears_margin`); else
the prior is off, the table found recorded beside the choice.

The candidates of a user's list for every weight are its :data:`CANDIDATES` best movies by the model and the
:data:`CANDIDATES` most popular it has not rated: the top 10 of a blend of the two scores is among them unless a
movie of neither list (a hundred movies above it in each score) outscores ten of them in the blend, which takes
two scores nearly opposed across the top hundred of each. The users drawn are fewer on
a wide catalogue (:data:`SCORES`: users x movies scored for each n), so the choice costs about as much as scoring
that many pairs 7 times: a fraction of a second on ML-100K; it runs once per training, after the selection.
"""

from __future__ import annotations

import logging

import numpy as np

from embedrec.model.factors import UNTRAINED_BIAS
from embedrec.serve.prior import TOLD, standard_popularity
from embedrec.sparse import isin, setdiff, unique

log = logging.getLogger("embedrec")

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0)  # in std's of the model's scores
USERS = 300  # validation users drawn to play new users, at most
SCORES = 1 << 25  # and at most this many (user, movie) scores for each n: fewer users on a wide catalogue
MIN_USERS = 30  # fewer with n training movies: n takes the weight of the n before it
CANDIDATES = 100
K = 10
# auto weighs the lists of up to this many told movies; from the next n of TOLD (20) on its weight is 0. The measure
# hides a validation user's untold training movies from its list (the model was trained on them: as targets they
# would leak), which favours the most popular movies the more the user rated beyond the n told. On ML-100K's users
# held out of training and told 80% of their ratings (benchmarks/newusers.py's protocol, 5 seeds), the tables auto
# chose (1-3 at 20 and at 50) served them 0.0034 below the fold-in alone (SE 0.0031 at random, 0.0023 by time),
# the same tables with 0 from 20 on +0.0002 and -0.0002 (SE 0.0006): a tie (session 54)
LAST_WEIGHED = 10
# the relative gain over the fold-in alone that the table's valid NDCG@10, summed over the n scored, must pass (as
# train.als_trend's training.trend.MARGIN asks of its popularity term): a first-hour review (session 53) saw a
# table chosen on 36 validation users, where noise picks a weight; on a taste-only synthetic log with 34 a weight
# of 0.5 at one movie gained 0.54% over the n weighed (tests/test_newuser_prior.py), where ML-100K's default run's table gains 11.8%
# (0.6830 against 0.6111 summed over the n weighed, 1-10)
MARGIN = 0.01


def gram_eig(Q: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g, V, Q V): the eigenvalues and eigenvectors of the movies' Gram matrix G = Q^T Q, and the movie rows in
    that basis, which :func:`liked_vectors` solves in."""
    g, V = np.linalg.eigh(G)
    return g, V, Q @ V.astype(Q.dtype)  # (float32 factors stay float32: Q V, the one copy, is Q's size)


def liked_vectors(eig: tuple, solve: dict, told: np.ndarray, weight: float) -> np.ndarray:
    """One new user per row of ``told`` (movie rows, n each), each movie at confidence ``weight``: the vectors
    serve.foldin.als_vector solves, p = (a0 s G + X^T W X + reg (n + a0 M)^nu I)^-1 X^T w (before the recent
    popularity's scaling), here in G's eigenbasis, where the first and last terms are one diagonal D, through the
    Woodbury identity: p' = y - D^-1 X'^T (W^-1 + X' D^-1 X'^T)^-1 X' y with y = D^-1 X'^T w and X' = X V; p = V
    p'. n x n solves, every user's at once, instead of d x d ones (float64)."""
    g, V, QV = eig
    users, n = told.shape
    M = QV.shape[0]
    lam = float(solve["reg"]) * (n + float(solve["a0"]) * M) ** float(solve["reg_exponent"])
    D = float(solve["a0"]) * float(solve["user_unobserved"]) * g + lam
    X = QV[told].astype(np.float64)  # users x n x d
    y = X.sum(axis=1) * weight / D  # users x d
    inner = np.eye(n) / weight + np.einsum("und,umd->unm", X / D, X)
    t = np.linalg.solve(inner, np.einsum("und,ud->un", X, y)[..., None])[..., 0]
    return (y - np.einsum("und,un->ud", X, t) / D) @ V.T


def monotone_best(means: list) -> list[float]:
    """The weights of :data:`WEIGHTS`, one per n, that maximise the sum of the n's mean NDCG@10 (``means``: an
    array over WEIGHTS per n, None for an n too few users scored) under a weight never above a smaller n's: a
    dynamic programme over the n in order. An n without means takes the weight before it (0 for the first)."""
    kept = [m for m in means if m is not None]
    if not kept:
        return [0.0] * len(means)
    best = [np.asarray(kept[0], np.float64)]  # best[i][k]: the best sum up to the i-th n with its weight WEIGHTS[k]
    for m in kept[1:]:
        tail = np.maximum.accumulate(best[-1][::-1])[::-1]  # the best over the previous n's weights >= each
        best.append(np.asarray(m, np.float64) + tail)
    k = int(np.argmax(best[-1]))  # the first (smallest) weight of the best on a tie
    picks = [k]
    for b in best[-2::-1]:
        k = k + int(np.argmax(b[k:]))
        picks.append(k)
    picks.reverse()
    out, it, last = [], iter(picks), 0.0
    for m in means:
        last = WEIGHTS[next(it)] if m is not None else last
        out.append(last)
    return out


def weighed(values: list) -> list:
    """The items of ``values`` (one per n of TOLD) that auto weighs: those of the n up to :data:`LAST_WEIGHED`."""
    return list(values)[:TOLD.index(LAST_WEIGHED) + 1]


def clears_margin(valid: list, alone: list) -> bool:
    """Whether the chosen table's valid scores (``valid``: its mean NDCG@10 per n, None for an n too few users
    scored) summed over the n beat the fold-in alone's (``alone``, the same n) by :data:`MARGIN` of theirs."""
    mine = sum(v for v in valid if v is not None)
    base = sum(v for v in alone if v is not None)
    return mine > base * (1 + MARGIN)


def choose(ds, f: dict, solve: dict, liked_weight: float, seed: int,
           counts: np.ndarray | None = None, bar: str | None = None) -> tuple[list[float], dict] | None:
    """(the weight for each n of TOLD, {"users": [users scored at each n], "valid": [the chosen weight's mean
    NDCG@10 at each n], "alone": [the fold-in alone's]}) on ``ds``'s train and valid splits, for the selected
    als model ``f`` (train.factors' dict, recent popularity added where the run adds it) whose user solve is
    ``solve`` (training.als.user_solve); ``liked_weight``: a liked movie's confidence in it. None without a
    validation user that has a training rating. A table with a weight above 0 that does not clear
    :data:`MARGIN` gives every weight 0 (its "valid" the fold-in alone's), the table in the dict's
    "below_margin": {"weights", "valid"}. ``counts``: each movie's training ratings (default ``ds``'s; torchrun's
    rank 0 gives every rank's, its own users being a part of them). ``bar``: a bar of that name over the users'
    lists scored (each user once for each n it is told)."""
    from embedrec import bars
    from embedrec.metrics import ndcg_at_k
    from embedrec.serve.foldin import trend_scaled

    tr, va = ds.splits["train"], ds.splits.get("valid")
    if va is None or not len(va) or not len(tr):
        return None
    Q = np.asarray(f["movie_factors"])
    Q = Q if Q.dtype in (np.float32, np.float64) else Q.astype(np.float64)
    M = Q.shape[0]
    counts = np.bincount(tr.movie, minlength=M) if counts is None else np.asarray(counts)
    bias = f.get("movie_bias")
    bm = np.zeros(M) if bias is None else np.asarray(bias, np.float64)
    trained = (counts > 0) & (bm > UNTRAINED_BIAS)
    if trained.sum() <= K:
        return None
    zp = standard_popularity(counts, trained)
    n_train = np.bincount(tr.user, minlength=ds.n_users)
    users = unique(va.user)
    users = users[n_train[users] > 0]
    if not users.size:
        return None
    rng = np.random.default_rng(seed)
    cap = int(min(USERS, max(MIN_USERS, SCORES // M)))
    if users.size > cap:
        users = np.sort(rng.choice(users, cap, replace=False))
    pos = np.full(ds.n_users, -1, np.int64)
    pos[users] = np.arange(users.size)
    mine_tr = pos[tr.user] >= 0
    seen_keys = unique(pos[tr.user[mine_tr]] * M + tr.movie[mine_tr])  # (user position, movie) of train
    mine_va = pos[va.user] >= 0
    truth_keys = setdiff(pos[va.user[mine_va]] * M + va.movie[mine_va], seen_keys)
    n_truth = np.bincount(truth_keys // M, minlength=users.size)
    from embedrec.training.trend import gram_mean

    G, mean = gram_mean(Q)  # float64, in blocks
    lp = solve.get("lowpass")  # the low-pass block (training.lowpass): solved over the first d columns, the block
    d = int(lp["d"]) if lp else Q.shape[1]  # the sum of a's rows told, times its weight (serve.foldin.als_vector)
    eig = gram_eig(np.ascontiguousarray(Q[:, :d]) if lp else Q, G[:d, :d])
    timed = tr.timestamp is not None
    keys = (tr.movie[mine_tr], tr.timestamp[mine_tr], pos[tr.user[mine_tr]]) if timed else \
        (tr.movie[mine_tr], pos[tr.user[mine_tr]])
    by_user = tr.movie[mine_tr][np.lexsort(keys)]  # each user's movies in turn, oldest first where timed
    starts = np.concatenate([[0], np.cumsum(np.bincount(pos[tr.user[mine_tr]], minlength=users.size))])
    means_by_n, scored = [], []
    told_by = {n: np.flatnonzero((np.diff(starts) >= n) & (n_truth > 0)) for n in TOLD}  # who is told n movies
    with bars.step(bar, sum(i.size for i in told_by.values() if i.size >= MIN_USERS), "list") as tick:
        for n in TOLD:
            idx = told_by[n]
            if idx.size < MIN_USERS:
                means_by_n.append(None)
                scored.append(int(idx.size))
                continue
            told = np.stack([by_user[starts[i]:starts[i] + n] if timed and j % 2 else  # its first n, or n at random
                             rng.choice(by_user[starts[i]:starts[i + 1]], n, replace=False) for j, i in enumerate(idx)])
            P = liked_vectors(eig, solve, told, liked_weight)
            if lp:
                P = np.hstack([P, float(lp["weight"]) * np.asarray(f["lowpass_a"], np.float64)[told].sum(axis=1)])
            P = trend_scaled(P, Q, solve, G, mean, n)[0]
            values = np.zeros((idx.size, len(WEIGHTS)))
            step = max(1, (1 << 22) // M)
            for s0 in range(0, idx.size, step):
                part = idx[s0:s0 + step]
                S = P[s0:s0 + part.size].astype(Q.dtype) @ Q.T + bm
                St = S[:, trained]
                Z = (S - St.mean(axis=1, keepdims=True)) / np.maximum(St.std(axis=1, keepdims=True), 1e-12)
                Z[:, ~trained] = -np.inf
                sizes = starts[part + 1] - starts[part]  # what the user rated is never listed
                rated = np.concatenate([by_user[starts[i]:starts[i + 1]] for i in part])
                Z[np.repeat(np.arange(part.size), sizes), rated] = -np.inf
                if M <= 2 * CANDIDATES:  # a small catalogue: every movie a candidate
                    cand = np.broadcast_to(np.arange(M), Z.shape)
                    zc = Z.copy()
                else:
                    top = np.argpartition(-Z, CANDIDATES, axis=1)[:, :CANDIDATES]
                    top_pop = np.argpartition(-np.where(np.isfinite(Z), zp, -np.inf), CANDIDATES, axis=1)[:, :CANDIDATES]
                    cand = np.sort(np.hstack([top, top_pop]), axis=1)
                    zc = np.take_along_axis(Z, cand, axis=1)
                    zc[:, 1:][cand[:, 1:] == cand[:, :-1]] = -np.inf  # a movie in both lists: once
                hit = isin(part[:, None] * M + cand, truth_keys)
                zpc = zp[cand]
                for k, w in enumerate(WEIGHTS):
                    sc = zc + w * zpc
                    best = np.argpartition(-sc, K - 1, axis=1)[:, :K]
                    best = np.take_along_axis(best, np.argsort(-np.take_along_axis(sc, best, axis=1), axis=1,
                                                               kind="stable"), axis=1)
                    values[s0:s0 + part.size, k] = ndcg_at_k(np.take_along_axis(hit, best, axis=1).astype(np.float64),
                                                             n_truth[part], K)
                if tick is not None:
                    tick(part.size)
            means_by_n.append(values.mean(axis=0))
            scored.append(int(idx.size))
    weighed_n = len(weighed(TOLD))  # the n past LAST_WEIGHED: weight 0 (the table stays non-increasing)
    chosen = monotone_best(means_by_n[:weighed_n]) + [0.0] * (len(TOLD) - weighed_n)
    pick = [None if m is None else m[WEIGHTS.index(w)] for m, w in zip(means_by_n, chosen)]
    best_values = [None if v is None else round(float(v), 6) for v in pick]
    alone = [None if m is None else round(float(m[0]), 6) for m in means_by_n]
    # (the margin on the n weighed: the others, equal on both sides, would shrink a real gain's share; a review)
    if any(chosen) and not clears_margin(weighed(best_values), weighed(alone)):  # noise's pick, on few users: off
        return [0.0] * len(chosen), {"users": scored, "valid": alone, "alone": alone,
                                     "below_margin": {"weights": chosen, "valid": best_values}}
    return chosen, {"users": scored, "valid": best_values, "alone": alone}
