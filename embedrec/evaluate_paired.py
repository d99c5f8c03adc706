"""Paired differences between two models' per-user metrics (mean, SE, tie) and the notes that compare a model with its baselines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from embedrec import metrics as M

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.data.dataset import Dataset


_BASELINE_NAMES = {"global_mean": "the global mean's", "biases": "the biases-only model's"}


def paired_stats(mine, theirs) -> dict:
    """The paired difference of two per-user arrays (NaN: no value for that user): {"difference": the mean of
    mine minus theirs over the users both have, "se": its standard error (the differences' standard deviation,
    n - 1, over sqrt(n); NaN under 2 users), "users": n, "tie": whether the difference is within two standard
    errors of 0 (None where there is no SE)}."""
    d = np.asarray(mine, np.float64) - np.asarray(theirs, np.float64)
    d = d[~np.isnan(d)]
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {"difference": mean, "se": se, "users": n, "tie": bool(abs(mean) <= 2 * se) if n > 1 else None}


def paired_from_sums(n: int, total: float, squares: float) -> dict:
    """:func:`paired_stats` from the differences' count, sum and sum of squares (torchrun's ranks add theirs up)."""
    mean = total / n if n else float("nan")
    se = float(np.sqrt(max(squares - n * mean * mean, 0.0) / (n - 1)) / np.sqrt(n)) if n > 1 else float("nan")
    return {"difference": mean, "se": se, "users": n, "tie": bool(abs(mean) <= 2 * se) if n > 1 else None}


# the paired rating differences user by user: each user's mean squared (absolute) error, the model's minus the
# other's, averaged over users; beside the difference of the overall RMSE (MAE), which has no SE
PAIRED_RATING = {"user_mse": "rmse", "user_mae": "mae"}


def paired_metric(key: str) -> str:
    """The metric (without @K, as --metrics names it) a key of ``paired`` is of: 'ndcg' for ndcg@10, 'rmse' for
    rmse and user_mse, 'mae' for mae and user_mae."""
    return PAIRED_RATING.get(key, key.split("@")[0])


def paired_errors(mine, theirs, ratings, squared: bool) -> tuple[dict, dict]:
    """Two explicit models' errors on the same ratings, paired user by user: ``mine`` and ``theirs`` each user's
    RMSE (``squared``) or MAE (NaN: no value), ``ratings`` how many ratings each user has. Returns (the difference
    of the overall figures, RMSE or MAE over all the ratings of the users both have, with no SE: {"difference",
    "se": None, "users", "tie": None}; :func:`paired_stats` of each user's MSE (RMSE squared), or MAE, mine minus
    theirs). The ratings of one user are not independent of each other, so the user is the unit of the SE, as
    for the ranking metrics; the per-user MSE difference is not the difference of the RMSEs, which weighs each
    rating alike and takes a root."""
    a, b = np.asarray(mine, np.float64), np.asarray(theirs, np.float64)
    n = np.asarray(ratings, np.float64)
    if squared:
        a, b = a * a, b * b
    per_user = paired_stats(a, b)
    both = ~np.isnan(a) & ~np.isnan(b) & (n > 0)
    w = n[both]
    if w.sum() > 0:
        mine_all, theirs_all = float((a[both] * w).sum() / w.sum()), float((b[both] * w).sum() / w.sum())
        if squared:
            mine_all, theirs_all = float(np.sqrt(mine_all)), float(np.sqrt(theirs_all))
        overall = mine_all - theirs_all
    else:
        overall = float("nan")
    return {"difference": overall, "se": None, "users": int(both.sum()), "tie": None}, per_user


def paired_differences(frame) -> dict:
    """{other: {metric@K: :func:`paired_stats` of the model's column minus other's}} from a per-user frame
    (:func:`evaluate_factors`' ``per_user``: the model's columns as ``ndcg@10``, each other's as
    ``other:ndcg@10``), every metric@K both have, in the frame's order. Where both have rating columns (``rmse``
    and ``other:rmse``, ``mae`` and ``other:mae``, the model's ``ratings`` beside: explicit models, the rating
    baselines): ``rmse`` and ``mae``, the difference of the overall figures (no SE), each followed by ``user_mse``
    or ``user_mae``, the per-user difference with its SE (:func:`paired_errors`)."""
    out: dict = {}
    for col in frame.columns:
        other, _, metric = str(col).rpartition(":")
        if not other or metric not in frame.columns:
            continue
        if "@" in metric:
            out.setdefault(other, {})[metric] = paired_stats(frame[metric].to_numpy(), frame[col].to_numpy())
        elif metric in PAIRED_RATING.values() and "ratings" in frame.columns:
            overall, per_user = paired_errors(frame[metric].to_numpy(), frame[col].to_numpy(),
                                              frame["ratings"].to_numpy(), squared=metric == "rmse")
            row = out.setdefault(other, {})
            row[metric] = overall
            row[f"user_{'mse' if metric == 'rmse' else metric}"] = per_user
    return out


def per_user_columns(frame, metrics):
    """A per-user frame with only ``metrics``' columns (names without @K; None: all): user_id kept, each
    recommender's metric@K by its metric's name, rmse and mae by theirs and the ratings column with either."""
    if metrics is None:
        return frame
    keep = set(metrics)

    def kept(col: str) -> bool:
        name = col.rpartition(":")[2]
        if name == "ratings":
            return bool(keep & set(M.RATING))
        return col == "user_id" or name.split("@")[0] in keep

    return frame[[c for c in frame.columns if kept(str(c))]]


def finish_per_user(result: dict, split: str, per_user: bool, metrics=None) -> dict:
    """``result`` (:func:`evaluate_factors`', other recommenders' lists joined) with ``paired``: {split: the model
    minus each other row, user by user (:func:`paired_differences`)}; its ``per_user`` frame kept where
    ``per_user``, cut to ``metrics`` (:func:`per_user_columns`), else dropped."""
    frame = result.pop("per_user")
    result["paired"] = {split: paired_differences(frame)}
    if per_user:
        result["per_user"] = per_user_columns(frame, metrics)
    return result


def behind_baselines(metrics: dict) -> list[str]:
    """Where the model does no better than a baseline it is printed beside, one sentence per split: ranking
    models by the first ndcg@K against most_popular (the same to the 4 places printed counts as no better), rating models by RMSE against the better of global_mean and
    biases; a rating model's lists too, by the first ndcg@K where it was measured (a review: an explicit model
    at 0.06 against most_popular's 0.23 was printed without a word). Empty where it does better (or where
    there is nothing to compare)."""
    out = []
    for split, models in (metrics.get("splits") or {}).items():
        model = models.get("model") or {}
        rated = {name: m["rmse"] for name, m in models.items() if name != "model" and "rmse" in m}
        explicit = "rmse" in model and bool(rated)
        if explicit:
            best = min(rated, key=rated.get)
            if model["rmse"] >= rated[best]:
                out.append(f"on the {split} split the model's RMSE ({model['rmse']:.4f}) is no better than "
                           f"{_BASELINE_NAMES.get(best, best)} ({rated[best]:.4f}): its predictions are no better "
                           "than that average here")
        ndcg = sorted((k for k in model if k.startswith("ndcg@")), key=lambda k: int(k.split("@")[1]))
        if ndcg and ndcg[0] in models.get("most_popular", {}):
            k, mine, theirs = ndcg[0], model[ndcg[0]], models["most_popular"][ndcg[0]]
            # the same to the 4 places printed is no better either (a first-hour review: a shop log's model, valid
            # having chosen popularity weighing 16, printed 0.8014 beside most_popular's 0.8014 without a word)
            paired = _popular_paired(metrics, split, k)
            if round(mine, 4) <= round(theirs, 4) and theirs > 0:  # (0 against 0: no user had a hit)
                level = "the same as" if round(mine, 4) == round(theirs, 4) and mine > theirs else "no better than"
            elif paired and paired.get("tie") and theirs > 0:  # above it, but within two paired SE: a tie
                places = _places(paired["se"])  # an SE under 0.0001 shown to its second digit, not as 0.0000
                level = (f"level with (a tie: {paired['difference']:+.{places}f}, SE {paired['se']:.{places}f}, "
                         f"paired over {paired['users']:,} users; within two SE)")
            else:
                continue
            out.append(f"on the {split} split the model's {k} ({mine:.4f}) is {level} most_popular's "
                       f"({theirs:.4f}): its lists are no better than the most popular movies here" +
                       ("; this rating model (model.objective: explicit) is fit to predict ratings: for top-K "
                        "lists train the default ranking model" if explicit else ""))
    return out


def _places(se: float) -> int:
    """Decimal places that show ``se`` to two significant digits, at least 4 (a review: 'a tie: +0.0001, SE
    0.0000' read as a contradiction)."""
    import math

    if not se or not math.isfinite(se) or se >= 1e-4:
        return 4
    return min(12, 1 - math.floor(math.log10(se)))


def _popular_paired(metrics: dict, split: str, key: str) -> dict | None:
    """The paired difference of the model's ``key`` (ndcg@K) and most_popular's on ``split``: train's
    (``vs_popular``, :func:`versus_popular`) or evaluate's (``paired``); None where neither measured it."""
    got = ((metrics.get("vs_popular") or {}).get(split) or {}).get(key)
    if got is None:
        got = (((metrics.get("paired") or {}).get(split) or {}).get("most_popular") or {}).get(key)
    return got


def versus_popular(mine: list, popular: list, ds) -> dict:
    """{ndcg@K: :func:`paired_stats` of the model's per-user values minus the most-popular lists'} for the first
    ndcg@K both have, over the users both ranked (``mine``, ``popular``: :func:`evaluate_model`'s and
    :func:`baselines`' ``per_user`` lists); {} where there is none. ``train`` keeps it in its metrics
    (``vs_popular``) so that :func:`behind_baselines` can say a model a little above most_popular is a tie with it
    (a first-hour review: 0.0208 against 0.0207 was printed without a word, where evaluate said +0.0001 +- 0.0016)."""
    if not mine or not popular:
        return {}
    a, b = _per_user_frame(mine, ds), _per_user_frame(popular, ds)
    keys = sorted((c for c in a.columns if c.startswith("ndcg@") and c in b.columns), key=lambda c: int(c[5:]))
    if not keys:
        return {}
    both = a[["user_id", keys[0]]].merge(b[["user_id", keys[0]]], on="user_id", suffixes=("", ":popular"))
    return {keys[0]: paired_stats(both[keys[0]].to_numpy(), both[f"{keys[0]}:popular"].to_numpy())}


def _per_user_frame(batches: list, ds: Dataset, extra: dict | None = None):
    """ranking_sums' per-user values as a DataFrame: user_id, then each metric@K, one row per ranked user;
    then ``extra``'s columns ({name: a value per user row})."""
    import pandas as pd

    rows = np.concatenate([r for r, _ in batches]) if batches else np.zeros(0, np.int64)
    keys = list(batches[0][1]) if batches else []
    frame = pd.DataFrame({"user_id": ds.users["user_id"].to_numpy()[rows]})
    for key in keys:
        frame[key] = np.concatenate([v[key] for _, v in batches]).astype(np.float64)
    for key, per_row in (extra or {}).items():
        frame[key] = per_row[rows]
    return frame
