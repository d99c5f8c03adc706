"""Evaluation of factor models and baselines on a split (numpy only, batched so memory stays bounded)."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import numpy as np

from embedrec import metrics as M
from embedrec.beyond import NAMES as BEYOND_NAMES
from embedrec.beyond import Exposure, catalogue
from embedrec.evaluate_paired import (
    _per_user_frame,
    paired_metric,
)
from embedrec.model.factors import UNTRAINED_BIAS, Factors
from embedrec.sparse import (  # noqa: F401 (re-exported: the helpers lived here)
    PopularLists,
    _is_gpu,
    below_in,
    csr,
    gather_csr,
    isin,
    on_device,
    seen_csr,
    seen_splits,
    setdiff,
    top_k_scores,
    topk_fast,
    topk_from_scores,
    unique,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.data.dataset import Dataset

log = logging.getLogger("embedrec")


def sample_users(eval_users: np.ndarray, max_users: int, seed: int = 0) -> np.ndarray:
    """A seeded, sorted sample of ``max_users`` of ``eval_users`` (all of them when they are fewer)."""
    if max_users and eval_users.size > max_users:
        return np.sort(eval_users[sample_positions(eval_users.size, max_users, seed)])
    return eval_users


def sample_positions(n: int, max_users: int, seed: int = 0) -> np.ndarray:
    """The positions :func:`sample_users` keeps out of ``n`` (ranks that each hold a slice of the users pick
    the same sample from these)."""
    return np.random.default_rng(seed).choice(n, size=max_users, replace=False)


def norm_ks(ks, n_movies: int) -> list[int]:
    return sorted({min(k, max(n_movies, 1)) for k in ks})  # K beyond the catalogue ranks the whole catalogue


def ranking_sums(user_vecs, movie_vecs, movie_bias, train_csr, test_csr, rows: np.ndarray, ks, n_movies: int,
                 batch=2048, progress=None, device=None, fast: int = 0, scratch: dict | None = None,
                 per_user: list | None = None, beyond=None, ranked=None) -> tuple[dict, dict]:
    """Per-metric sums over the users ``rows`` and, per K, which movies reached someone's top K: what
    :func:`finish_ranking` turns into metrics (ranks of a distributed job add theirs up first). ``fast``: see
    :func:`top_k_scores`; ``scratch``: a dict that keeps the score buffer between calls (per-epoch validation);
    ``per_user``: a list that gets (the batch's user rows, {metric@K: each user's value}) per batch; ``beyond``:
    a :class:`embedrec.beyond.Exposure` at :func:`norm_ks`' Ks that adds up the lists' beyond-accuracy metrics
    (and gives the per-user ones to ``per_user``); ``ranked``: ``(exclude, rows, k) -> top-k movie rows`` that
    gives the lists instead of the factors (which are then unused: :meth:`embedrec.sparse.PopularLists.top`, the
    most-popular baseline's), in the same batches (the sums added up in the same order)."""
    # a K beyond the catalogue ranks the whole catalogue, and keeps its name: the selection's ndcg@10 exists
    # for a catalogue of 9 movies too (its lists hold 9)
    labels = {k: min(k, max(n_movies, 1)) for k in sorted(set(ks))}
    ks = norm_ks(ks, n_movies)
    kmax = max(ks)
    batch = max(16, min(batch, int(5e7 // max(n_movies, 1))))
    if ranked is None:
        movie_bias = unservable_out(movie_vecs, movie_bias)
    Q, b = (None, None) if ranked is not None else (on_device(movie_vecs, device), on_device(movie_bias, device))
    sums = {f"{m}@{k}": 0.0 for m in M.PER_USER for k in ks}
    shown = {k: np.zeros(n_movies, dtype=bool) for k in ks}
    buf = None
    if not _is_gpu(device) and rows.size and ranked is None:
        scratch = {} if scratch is None else scratch
        need = min(batch, rows.size) * n_movies
        if scratch.get("scores") is None or scratch["scores"].size < need:
            scratch["scores"] = np.empty(need, np.float32)
        buf = scratch["scores"]
    for s in range(0, rows.size, batch):
        sub = rows[s:s + batch]
        top = (ranked(train_csr, sub, kmax) if ranked is not None
               else top_k_scores(user_vecs[sub], Q, b, kmax, train_csr, sub, device, fast, out=buf))
        _, sub_idx, lens = gather_csr(test_csr[0], test_csr[1], sub)
        sub_ptr = np.concatenate([[0], np.cumsum(lens)])
        hits = M.hit_matrix(top, sub_ptr, sub_idx)
        n_rel = np.diff(sub_ptr)
        values = M.per_user_values(hits, n_rel, ks, n_movies)
        for key, v in values.items():
            sums[key] += float(v.sum())
        if beyond is not None:
            values.update(beyond.values(top))
        if per_user is not None:
            names = [*M.PER_USER, *(beyond.per_user if beyond is not None else ())]
            per_user.append((sub, {f"{m}@{k}": values[f"{m}@{e}"] for m in names for k, e in labels.items()}))
        for k in ks:
            M.mark_shown(shown[k], top, k)
        if progress is not None:
            progress(sub.size)
    sums = {f"{m}@{k}": sums[f"{m}@{e}"] for m in M.PER_USER for k, e in labels.items()}
    return sums, {k: shown[e] for k, e in labels.items()}


def unservable_out(movie_vecs, movie_bias):
    """``movie_bias`` with the movies a plain model cannot score at -inf (no training rating named them: a zero
    vector and bias UNTRAINED_BIAS, training.fit's mask, serve.Recommender.untrained's rule), so no list holds
    them, as no served list does; ranked last before, they filled the lists of users with fewer than K other
    movies (a red team: evaluate's coverage@K counted movies no one can be served, under
    data.keep_unrated_movies). Unchanged where there are none, or the factors are already on a GPU (tensors)."""
    if not isinstance(movie_bias, np.ndarray) or not isinstance(movie_vecs, np.ndarray):
        return movie_bias
    rows = np.flatnonzero(movie_bias <= UNTRAINED_BIAS)
    if rows.size:
        rows = rows[~np.asarray(movie_vecs[rows]).any(axis=1)]
    if not rows.size:
        return movie_bias
    out = np.array(movie_bias, dtype=np.float32, copy=True)
    out[rows] = -np.inf
    return out


def finish_ranking(sums: dict, shown: dict, n_evaluated: int, n_movies: int, beyond: dict | None = None) -> dict:
    """Means of :func:`ranking_sums` over the evaluated users, coverage@K (M.coverage of the marked movies), then
    ``beyond`` (the beyond-accuracy metrics: :meth:`embedrec.beyond.Exposure.result`)."""
    n = max(n_evaluated, 1)
    out = {key: v / n for key, v in sums.items()}
    for k, mask in shown.items():
        out[f"coverage@{k}"] = M.coverage(mask) if n_movies else 0.0
    out.update(beyond or {})
    out["users_evaluated"] = int(n_evaluated)
    return out


class RankingLists:
    """A split's ranking lists, built once: the movies each user's list leaves out (``seen``, CSR), the relevant
    ones (``test``, CSR), the users ranked (``rows`` of both: a seeded sample of ``max_users`` of those with a
    relevant movie, or all), ``n_eval`` (how many users the means are over), ``skipped`` (users without one) and
    ``with_rows``; :meth:`metrics` ranks factors on them, with the beyond-accuracy metrics where a ``catalogue``
    (:func:`embedrec.beyond.catalogue`) is given. Ranks of a distributed job hold their users' rows and
    add up :meth:`sums` before :meth:`finish` (dist_eval.ShardRanking), through the hooks: ``sample(rows) ->
    (rows ranked here, n_eval, with_rows)`` and ``total(n)``, a count summed over ranks."""

    def __init__(self, seen, test, ks, n_movies: int, max_users: int = 0, seed: int = 0, sample=None, total=int,
                 catalogue=None):
        self.seen, self.test, self.ks, self.n_movies = seen, test, ks, n_movies
        self.catalogue = catalogue
        has = np.diff(test[0]) > 0
        if sample is None:
            def sample(rows):
                mine = sample_users(rows, max_users, seed)
                return mine, mine.size, rows.size

        self.rows, self.n_eval, self.with_rows = sample(np.flatnonzero(has))
        self.skipped = total(int(np.count_nonzero(~has)))

    def sums(self, user_vecs, movie_vecs, movie_bias, **kw) -> tuple[dict, dict]:
        """:func:`ranking_sums` over these lists (``kw``: its batch, progress, device, fast, scratch, ranked)."""
        return ranking_sums(user_vecs, movie_vecs, movie_bias, self.seen, self.test, self.rows, self.ks,
                            self.n_movies, **kw)

    def finish(self, sums: dict, shown: dict, beyond: dict | None = None) -> dict:
        out = finish_ranking(sums, shown, self.n_eval, self.n_movies, beyond)
        out["users_skipped"] = int(self.skipped)
        out["users_with_rows"] = int(self.with_rows)  # more than users_evaluated under a sample (train.eval_users)
        return out

    def metrics(self, user_vecs, movie_vecs, movie_bias, **kw) -> dict:
        if self.catalogue is None:
            return self.finish(*self.sums(user_vecs, movie_vecs, movie_bias, **kw))

        beyond = Exposure(self.catalogue, norm_ks(self.ks, self.n_movies))
        sums, shown = self.sums(user_vecs, movie_vecs, movie_bias, beyond=beyond, **kw)
        labels = {k: min(k, max(self.n_movies, 1)) for k in sorted(set(self.ks))}  # as ranking_sums names them
        return self.finish(sums, shown, beyond.result(labels))


def ranking_metrics(user_vecs, movie_vecs, movie_bias, train_csr, test_users, test_items, n_users, n_movies,
                    ks=(10, 20), batch=2048, progress=None, max_users: int = 0, seed: int = 0, device=None,
                    per_user: list | None = None, catalogue=None, bar: str | None = None, ranked=None) -> dict:
    """Precision/Recall/NDCG/MAP/HitRate/MRR@K and coverage@K over users with at least one test movie; with a
    ``catalogue`` (:func:`embedrec.beyond.catalogue`) the beyond-accuracy metrics too (ARP, novelty, ...).

    Users are scored in batches whose score matrix stays near 50M entries (200 MB), whatever the catalogue;
    ``max_users`` > 0 evaluates a seeded sample of that many users instead of all; ``device`` cuda scores on
    the GPU; on the CPU the C top-k ranks them on every core (the lists argpartition gives: a scale review
    found `evaluate` of 259K users 3x slower than a dense top-k). ``bar``: a bar of that name over the users ranked
    (:func:`users_bar`); ``ranked``: lists ranked without the factors (:func:`ranking_sums`')."""
    from embedrec.threads import available_cpus

    lists = RankingLists(train_csr, csr(test_users, test_items, n_users), ks, n_movies, max_users, seed,
                         catalogue=catalogue)
    with users_bar(bar, lists.rows.size) as tick:
        return lists.metrics(user_vecs, movie_vecs, movie_bias, batch=batch, progress=tick or progress,
                             device=device, per_user=per_user, fast=available_cpus(), ranked=ranked)


@contextlib.contextmanager
def users_bar(desc: str | None, total: int):
    """A tqdm bar on stderr named ``desc`` over the ``total`` users a ranking pass scores, as export --topk-all's
    (a scale review: `evaluate` of 230,262 users ranked for 83 s with nothing on stderr); yields its update, or None
    where ``desc`` is None (no bar: the caller's ``progress=False``); a bar of :func:`embedrec.bars.counted`'s."""
    from embedrec.bars import counted

    with counted(desc, total, "user") as tick:
        yield tick


def rating_metrics(pred: np.ndarray, true: np.ndarray) -> dict:
    return {"rmse": M.rmse(pred, true), "mae": M.mae(pred, true)}


def split_rating_errors(f: dict, part, scale) -> np.ndarray:
    """Prediction minus rating for each of ``part``'s ratings (predictions clipped to ``scale``)."""
    pred = Factors.from_dict(f, explicit=True, rating_scale=scale).predict(part.user, part.movie)
    return pred - np.asarray(part.rating, dtype=np.float64)


def split_rating_metrics(f: dict, part, scale, score=rating_metrics) -> dict:
    """RMSE and MAE of factors ``f``'s predictions (clipped to ``scale``) of ``part``'s ratings; ``score``:
    (predictions, ratings) -> the metrics (dist_eval.rating_sums adds them up over ranks)."""
    return score(Factors.from_dict(f, explicit=True, rating_scale=scale).predict(part.user, part.movie), part.rating)


def fit_biases(users, movies, ratings, n_users, n_movies, reg=10.0, iters=10, mu: float | None = None,
               reduce=None):
    """Biases-only baseline: mu + b_u + b_m, fit by alternating regularised least squares. ``mu``: the global
    mean (the ratings' mean if None); ``reduce``: an array's element-wise sum over ranks, for ratings sharded by
    user (each user's ratings on one rank): the movie sums are added up (dist_eval.baselines)."""
    reduce = reduce or (lambda a: a)
    mu = float(ratings.mean()) if mu is None else mu
    bu = np.zeros(n_users)
    bm = np.zeros(n_movies)
    cu = np.bincount(users, minlength=n_users)
    cm = reduce(np.bincount(movies, minlength=n_movies))
    for _ in range(iters):
        bm = reduce(np.bincount(movies, ratings - mu - bu[users], minlength=n_movies)) / (reg + cm)
        bu = np.bincount(users, ratings - mu - bm[movies], minlength=n_users) / (reg + cu)
    return mu, bu, bm


def baselines(ds: Dataset, split: str, explicit: bool, ks=(10, 20), relevant_min: float | None = None,
              max_users: int = 0, device=None, fit_on: tuple[str, ...] = ("train",), catalogue=None,
              per_user: list | None = None, rating_errors: dict | None = None, progress: bool = False,
              run_seen=None) -> dict:
    """Global mean and biases-only (ratings); most-popular (ranking). Same split, same definitions, fitted on the
    splits ``fit_on`` (those the model was fitted on: train, or train+valid for a refit run); ``catalogue``: the
    most-popular lists' beyond-accuracy metrics too (:func:`ranking_metrics`); ``per_user``: a list that gets the
    most-popular lists' per-user values (:func:`ranking_sums`'); ``rating_errors``: a dict that gets each rating
    baseline's prediction minus rating for each of the split's ratings ({"global_mean": ..., "biases": ...});
    ``progress``: a bar over the users the most-popular lists rank; ``run_seen``: an updated run's seen table,
    whose added pairs its lists leave out as the model's do (a review: the paired difference was biased)."""
    te = ds.splits[split]
    out: dict = {}
    if len(te) == 0:
        return out
    if len(fit_on) == 1:
        tr = ds.splits[fit_on[0]]
    else:
        from embedrec.data.dataset import Interactions  # here, not at import: recommend loads evaluate

        tr = Interactions.concat([ds.splits[s] for s in fit_on])
    if explicit:
        mu = float(tr.rating.mean())
        preds = {"global_mean": np.full(len(te), mu)}
        mu, bu, bm = fit_biases(tr.user, tr.movie, tr.rating.astype(np.float64), ds.n_users, ds.n_movies)
        preds["biases"] = np.clip(mu + bu[te.user] + bm[te.movie], *ds.rating_scale)
        for name, pred in preds.items():
            out[name] = rating_metrics(pred, te.rating)
            if rating_errors is not None:
                rating_errors[name] = pred - np.asarray(te.rating, dtype=np.float64)
    pop = np.bincount(tr.movie, minlength=ds.n_movies).astype(np.float32)
    train_csr = seen_csr(ds, seen_splits(split))
    if run_seen is not None:
        train_csr = _with_added(train_csr, run_seen, ds)
    tu, ti = relevant(te, relevant_min)
    # one order for everyone, each user's seen movies skipped (PopularLists): the lists a dense top-k of the counts
    # gives, without its users x movies scores
    out["most_popular"] = ranking_metrics(None, None, None, train_csr, tu, ti, ds.n_users, ds.n_movies, ks,
                                          max_users=max_users, device=device, catalogue=catalogue, per_user=per_user,
                                          bar=f"{split} most_popular" if progress else None,
                                          ranked=PopularLists(pop).top)
    return out


# evaluate's metrics by group (``embedrec evaluate --metrics``): accuracy against the held-out rows, and what the
# lists expose of the catalogue (coverage, then embedrec.beyond's)
METRIC_GROUPS = {"accuracy": (*M.RATING, *(m for m in M.RANKING if m != "coverage")),
                 "beyond": ("coverage", *BEYOND_NAMES)}
METRIC_GROUPS["all"] = (*METRIC_GROUPS["accuracy"], *METRIC_GROUPS["beyond"])


def select_metrics(result: dict, names) -> dict:
    """``result`` (evaluate's) with only the metrics ``names`` (names without @K: 'ndcg', 'novelty') in each of its
    rows, their counts (users_*, rows_*) kept; a row left with no metric (an explicit model's global_mean under
    'beyond') is left out. A copy: ``result`` is not changed."""
    keep = set(names)
    out = dict(result)
    out["splits"] = {}
    for split, rows in (result.get("splits") or {}).items():
        out["splits"][split] = {}
        for name, row in rows.items():
            kept = {key: v for key, v in row.items() if key.startswith(("users_", "rows_"))
                    or key.split("@")[0] in keep}
            if any(not key.startswith(("users_", "rows_")) for key in kept):
                out["splits"][split][name] = kept
    if "paired" in result:  # the paired differences likewise, a comparison left with no metric left out
        out["paired"] = {split: {other: {key: v for key, v in row.items() if paired_metric(key) in keep}
                                 for other, row in rows.items()} for split, rows in result["paired"].items()}
        out["paired"] = {split: {other: row for other, row in rows.items() if row}
                         for split, rows in out["paired"].items()}
    return out


def metric_names_arg(metrics) -> tuple[str, ...] | None:
    """A ``metrics`` argument (``cross_validate``'s, ``Model.evaluate``'s): metric names without @K, as evaluate
    reports them ('ndcg', 'novelty'), one or several, as a tuple (None stays None: all); UsageError otherwise."""
    if metrics is None:
        return None
    from embedrec.errors import UsageError

    names = (metrics,) if isinstance(metrics, str) else metrics
    try:
        names = tuple(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(n, str) and n in METRIC_GROUPS["all"] for n in names):
        raise UsageError(f"metrics={metrics!r}: give metric names without @K, e.g. metrics=('ndcg', "
                         f"'recall'), from {', '.join(METRIC_GROUPS['all'])}")
    return names


# the metrics measured over all the lists at once, which no user has a value of (so no per-user column)
WHOLE_LISTS = ("coverage", "gini", "entropy")


def relevant(split, min_rating: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Test (user, movie) pairs that count as relevant for ranking metrics."""
    if min_rating is None:
        return split.user, split.movie
    keep = split.rating >= min_rating
    return split.user[keep], split.movie[keep]


def evaluate_model(f: dict, ds, split: str, explicit: bool, ks, metric: str | None = None,
                   ranking: bool = True, max_users: int = 0, device=None, progress: bool = False,
                   per_user: list | None = None) -> dict:
    """Metrics of factors ``f`` on ``split`` of dataset ``ds`` (rating metrics when explicit, ranking when asked);
    ``device`` (train.device) cuda ranks on the GPU; ``progress``: a bar over the users ranked; ``per_user``: a
    list that gets the ranked users' values (:func:`ranking_sums`')."""
    return evaluator(ds, split, explicit, ks, metric, ranking, max_users, device=device)(
        f, per_user=per_user, bar=f"{split} model" if progress else None)


def evaluator(ds, split: str, explicit: bool, ks, metric: str | None = None, ranking: bool = True,
              max_users: int = 0, fast: int = 0, device=None):
    """``f -> evaluate_model(f, ds, split, ...)`` with the split's lists (seen movies, relevant movies, the
    users' sample) built once: per-epoch validation calls it every epoch, with ``fast`` (the C top-k, see
    :func:`top_k_scores`); ``device`` cuda ranks on the GPU."""
    part = ds.splits[split]
    if len(part) == 0:
        return lambda f: {}
    need_rank = ranking or (metric is not None and M.parse_metric(metric)[1] is not None)
    if need_rank:
        ks = sorted(set(ks) | ({M.parse_metric(metric)[1]} if metric and M.parse_metric(metric)[1] else set()))
        lists = RankingLists(seen_csr(ds, seen_splits(split)), csr(*relevant(part, None), ds.n_users), ks,
                             ds.n_movies, max_users)
    scratch: dict = {}  # the score buffer, kept from one epoch's validation to the next

    def run(f: dict, per_user: list | None = None, bar: str | None = None) -> dict:
        out: dict = {}
        if explicit:
            out.update(split_rating_metrics(f, part, ds.rating_scale))
        if need_rank:  # = ranking_metrics on the lists built above (``per_user``: ranking_sums'; ``bar``: users_bar's)
            with users_bar(bar, lists.rows.size) as tick:
                out.update(lists.metrics(f["user_factors"], f["movie_factors"], f["movie_bias"], fast=fast,
                                         device=score_device(device), scratch=scratch, per_user=per_user,
                                         progress=tick))
        return out

    return run


def check_ks(ks) -> tuple[int, ...]:
    """evaluate's ks: whole numbers from 1 to MAX_EVAL_K (one, or several), as a tuple; UsageError otherwise
    (``Model.evaluate`` and ``evaluate_run`` alike; a review: the latter raised a bare TypeError for ks=['10'])."""
    from embedrec.config_checks import MAX_EVAL_K
    from embedrec.errors import UsageError

    if isinstance(ks, (str, bytes)):  # '10' would be read as its characters
        raise UsageError(f"ks={ks!r}: give whole numbers >= 1, e.g. ks=10 or ks=(10, 20), not text")
    try:
        ks = (ks,) if isinstance(ks, (int, np.integer, float)) else tuple(ks)
    except TypeError:
        raise UsageError(f"ks={ks!r}: give whole numbers >= 1, e.g. ks=(10, 20)") from None
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise UsageError(f"ks={list(ks)!r}: give whole numbers >= 1, e.g. ks=(10, 20)")
    if max(ks) > MAX_EVAL_K:  # as train.eval_k and evaluate -k (a review: the library scored K=50000)
        raise UsageError(f"ks={list(ks)!r}: {max(ks)} is above the maximum {MAX_EVAL_K} (as for train.eval_k)")
    return ks


def added_pairs(run_seen: tuple[np.ndarray, np.ndarray], ds: Dataset) -> np.ndarray:
    """The pair keys (user row x n_movies + movie row) a run's seen table (``run_seen``: its seen_indptr and
    seen_indices) holds beyond its dataset's own (train, valid and every rated_below pair): those update-users
    added, sorted (the users update-users added among them: their rows come after the dataset's). The last answer
    is kept for the same arrays and dataset (evaluate asks it for the model's lists, most_popular's, its count of
    the split's rows and its ``excluded``: once each, one set difference of every seen pair)."""
    global _ADDED_LAST
    ptr, idx = run_seen
    last = _ADDED_LAST
    if last is not None and last[0] is ptr and last[1] is idx and last[2] is ds:
        return last[3]
    n = np.int64(max(ds.n_movies, 1))
    owner = np.repeat(np.arange(ptr.size - 1, dtype=np.int64), np.diff(ptr))
    ours = np.asarray(idx) < ds.n_movies  # (a movie update-users --new-movies added is in no split: not ranked)
    run_keys = owner[ours] * n + np.asarray(idx)[ours]
    own_ptr, own_idx = seen_csr(ds, ("train", "valid"), serving=True)  # the run's own: all rated_below pairs
    own = np.repeat(np.arange(own_ptr.size - 1, dtype=np.int64), np.diff(own_ptr)) * n + own_idx
    out = setdiff(run_keys, own)
    _ADDED_LAST = (ptr, idx, ds, out)
    return out


_ADDED_LAST: tuple | None = None  # added_pairs' last (seen_indptr, seen_indices, dataset, answer)


def _with_added(seen: tuple[np.ndarray, np.ndarray], run_seen, ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``seen`` (a CSR over the dataset's users) with the pairs update-users added to its users' seen movies: the
    served lists leave them out, so evaluate's do (a notebook review: an updated user's update movie entered
    evaluate's list, and er.score_lists of recommend's lists differed from its figures)."""
    n = np.int64(max(ds.n_movies, 1))
    keys = added_pairs(run_seen, ds)
    keys = keys[keys < np.int64(ds.n_users) * n]  # the dataset's users (those added rank in no split)
    if not keys.size:
        return seen
    ptr, idx = seen
    users = np.repeat(np.arange(ptr.size - 1, dtype=np.int64), np.diff(ptr))
    return csr(np.concatenate([users, keys // n]), np.concatenate([idx.astype(np.int64), keys % n]), ds.n_users)


def _untrained_ranked(test_users, ds, fit_on, user_factors=None) -> int:
    """How many of the users ranked have no rating in the splits ``fit_on`` the model was fitted on (a
    split.cold_start dataset's), so no trained vector: a review found 192 of 301 such users averaged into the
    model's figures without a word. Those ``user_factors`` gives a vector since (update-users solved them: a
    review found them counted still, 192 where 190 had none) are not counted: serving's rule, a zero row."""
    users = unique(np.asarray(test_users))
    if not users.size:
        return 0
    trained = np.zeros(ds.n_users, bool)
    for s in fit_on:
        trained[ds.splits[s].user] = True
    left = users[~trained[users]]
    if left.size and user_factors is not None:
        left = left[~np.asarray(user_factors[left]).any(axis=1)]
    return int(left.size)


def evaluate_factors(f: dict, explicit: bool, ds: Dataset, split: str = "test", ks=(10, 20), refit: bool = False,
                     what: str = "the model", device=None, progress: bool = False) -> dict:
    """Metrics of factors ``f`` (train.factors' dict) and the baselines on ``split`` of ``ds``; ``refit`` says the
    model was trained on train+valid (so valid cannot be evaluated). The result's ``per_user`` is a pandas
    DataFrame of each ranked user's metrics (user_id, then ndcg@10, ..., an explicit model's rmse, mae and
    ratings, then the rating baselines' as global_mean:rmse, ..., biases:mae, then the most_popular baseline's as
    most_popular:ndcg@10, ...), whose means are the printed ones: :func:`finish_per_user` takes the paired
    differences from it (other runs' and recommenders' columns joined to it first, where there are any).
    ``progress``: a bar over the users of each ranking pass, the model's and the most-popular baseline's."""
    check_split(ds, split, refit, what)
    fit_on = fit_splits(split, refit)
    cat = catalogue(ds, fit_on)  # popularity and genres: the beyond-accuracy metrics of every row
    out, frame = score_factors(f, explicit, ds, split, ks, fit_on, cat, device, "model" if progress else None)
    popular: list = []  # the most-popular lists' per-user values, the same users: the paired differences
    rated: dict = {}  # the rating baselines' errors
    result = {"splits": {split: {"model": out, **baselines(ds, split, explicit, ks, device=score_device(device),
                                                           fit_on=fit_on, catalogue=cat, per_user=popular,
                                                           rating_errors=rated, progress=progress,
                                                           run_seen=f.get("run_seen"))}},
              "excluded": "+".join(seen_splits(split)), **_below_counts(ds, split),
              "beyond_accuracy": cat.describe()}
    part = ds.splits[split]
    for name, errors in rated.items():  # (the model's ratings column counts theirs: the same ratings)
        per = _rating_errors(errors, part, ds)
        frame = frame.assign(**{f"{name}:{c}": per[c][_user_rows(frame, ds)] for c in RATING_COLUMNS[:2]})
    base = _per_user_frame(popular, ds)  # the same users (the same lists of relevant and seen movies)
    result["per_user"] = frame.merge(base.rename(columns={c: f"most_popular:{c}" for c in base.columns
                                                          if c != "user_id"}), on="user_id", how="left")
    return result


def check_split(ds: Dataset, split: str, refit: bool, what: str) -> None:
    """Refuse to score ``split`` of ``ds`` where it is valid and the model (``what``, as a message names it) was
    refit on train+valid (so valid is training data: UsageError, exit 2, a request this model cannot answer), or
    where the split is empty (DataError, exit 1: the dataset lacks the rows, as the README's exit-code table files
    data problems, and as cross-validate's fold without test rows is one line of exit 1); each naming the fix."""
    from embedrec.errors import DataError, UsageError

    if split == "valid" and refit:
        test = "«evaluate --split test|evaluate('test')», or " if len(ds.splits["test"]) else ""  # not an empty one
        raise UsageError(f"{what} was refit on train+valid, so its valid split is training data; {test}train with "
                         "«--set train.refit=false» to evaluate on valid")
    if len(ds.splits[split]) == 0:
        other = "valid" if split == "test" else "test"
        try_other = (f"«evaluate --split {other}|evaluate('{other}')», or " if len(ds.splits[other])
                     and not (other == "valid" and refit) else "")  # never a split refused in turn
        # (a first-hour review: after the README's serve-on-every-rating recipe, split.test=0, nothing said that
        # such a dataset serves on every rating and cannot measure its model)
        served = "" if try_other else " (a dataset ingested with no held-out split serves on every rating, and " \
            "cannot measure its model: measure on one ingested with the default split, then ingest so to serve)"
        raise DataError(f"the {split} split of '{ds.path}' is empty{served}; {try_other}ingest with a non-zero "
                        f"split.{split}" + (" and train again" if refit or not try_other else ""))


def fit_splits(split: str, refit: bool) -> tuple[str, ...]:
    """The splits a model scored on ``split`` was fitted on: train, or train+valid where it was ``refit``."""
    return seen_splits(split) if refit else ("train",)


def score_factors(f: dict, explicit: bool, ds: Dataset, split: str, ks, fit_on: tuple[str, ...], cat,
                  device=None, bar: str | None = None):
    """Factors ``f``'s row of evaluate on ``split`` of ``ds`` (an explicit model's RMSE and MAE, then the ranking
    and beyond-accuracy metrics, against Catalogue ``cat``; ``users_untrained``: the users ranked with no rating in
    ``fit_on``, the splits it was fitted on) and its per-user frame (user_id, metric@K, ..., an explicit model's
    rmse, mae and ratings): (the row, the frame). ``bar``: the row's name, for a bar over the users ranked (None:
    no bar)."""
    part = ds.splits[split]
    out: dict = {}
    errors = split_rating_errors(f, part, ds.rating_scale) if explicit else None  # predicted once, for both uses
    if explicit:
        out.update(rating_metrics(errors, 0.0))  # the errors' RMSE and MAE: split_rating_metrics' figures
    tu, ti = relevant(part, None)
    users: list = []  # each ranked user's values
    seen = seen_csr(ds, seen_splits(split))
    if f.get("run_seen") is not None:  # update-users' pairs: left out of the lists, as recommend leaves them
        seen = _with_added(seen, f["run_seen"], ds)
    out.update(ranking_metrics(f["user_factors"], f["movie_factors"], f["movie_bias"],
                               seen, tu, ti, ds.n_users, ds.n_movies, ks,
                               device=score_device(device), per_user=users, catalogue=cat,
                               bar=f"{split} {bar}" if bar is not None else None))
    untrained = _untrained_ranked(tu, ds, fit_on, f["user_factors"])
    if untrained:  # (split.cold_start) users with no trained vector: ranked by the movie biases alone, if any
        out["users_untrained"] = untrained
    return out, _per_user_frame(users, ds, _rating_errors(errors, part, ds) if explicit else None)


def _user_rows(frame, ds: Dataset) -> np.ndarray:
    """The dataset's user rows of a per-user frame's users, in its order."""
    import pandas as pd

    return pd.Index(ds.users["user_id"]).get_indexer(frame["user_id"])


RATING_COLUMNS = ("rmse", "mae", "ratings")  # an explicit model's per-user columns (evaluate --per-user)


def _rating_errors(err: np.ndarray, part, ds: Dataset) -> dict:
    """Per user row: the RMSE and MAE of the explicit model's predictions of its ``part`` ratings (``err``:
    :func:`split_rating_errors`), and how many there are (the printed RMSE is the square root of the
    ratings-weighted mean of rmse squared; the MAE the weighted mean of mae): a paired comparison with another
    model's per-user errors (a first-hour review)."""
    n = np.bincount(part.user, minlength=ds.n_users).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(np.bincount(part.user, err * err, minlength=ds.n_users) / n)
        mae = np.bincount(part.user, np.abs(err), minlength=ds.n_users) / n
    return dict(zip(RATING_COLUMNS, (rmse, mae, n.astype(np.int64))))


def _below_counts(ds: Dataset, split: str) -> dict:
    """{"excluded_rated_below": how many (user, movie) pairs kept apart as rated (below data.min_rating) the
    ranking on ``split`` leaves out (seen_csr: those of the parts before it), "rated_below_held_out": how many it
    does not (those of ``split`` and the parts after it: rated in the held-out period, so not known to the model;
    None where the dataset does not record the parts, ingested before they were kept: every one is left out)}."""
    below = getattr(ds, "rated_below", None)
    total = int(below[0].size) if below is not None else 0
    parts = getattr(ds, "rated_below_split", None)
    if parts is None:
        return {"excluded_rated_below": total, "rated_below_held_out": None if total else 0}
    before = below_in(below, parts, seen_splits(split))
    n = int(before[0].size) if before is not None else 0
    return {"excluded_rated_below": n, "rated_below_held_out": total - n}


def score_device(device):
    """train.device resolved for scoring: a cuda torch.device, or None (numpy on the CPU, torch not imported)."""
    if device is None or device == "cpu":
        return None
    from embedrec.device import device_name

    name = device_name(device) if isinstance(device, str) else str(device)
    return None if name == "cpu" else name
