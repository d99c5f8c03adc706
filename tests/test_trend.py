"""train.als_trend (training/trend.py): recent popularity added to an als model, its weight chosen on valid.
Pure functions against hand-computed values, then known answers: chosen where the movies watched drift (a global
time cut), served as the run's user vectors and movie bias, repeated by a new user's fold-in; off without times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import embedrec as er
from embedrec import run_checks
from embedrec.config import load_config
from embedrec.data.dataset import Dataset, Interactions
from embedrec.errors import ArtifactError, ConfigError
from embedrec.model.factors import UNTRAINED_BIAS
from embedrec.serve import foldin
from embedrec.training import trend


def test_window_z_counts_the_latest_share_and_standardises():
    movies = np.array([0, 0, 1, 2, 2, 2])
    ts = np.array([1, 2, 3, 4, 5, 6])
    # the latest half: times 4, 5, 6 (the cut, the 'higher' 50% quantile, is 4): movie 2 three times
    c = np.log1p(np.array([0.0, 0.0, 3.0, 0.0]))
    want = (c - c.mean()) / c.std()
    np.testing.assert_allclose(trend.window_z(movies, ts, 4, 0.5), want)
    allc = np.log1p(np.array([2.0, 1.0, 3.0, 0.0]))
    np.testing.assert_allclose(trend.window_z(movies, ts, 4, 1.0), (allc - allc.mean()) / allc.std())
    assert not trend.window_z(np.array([0, 1]), np.array([1, 1]), 2, 1.0).any()  # all alike: zeros


def test_user_scale_is_the_std_of_each_users_scores_over_every_movie():
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(7, 5)), rng.normal(size=(40, 5)).astype(np.float32)
    P[3] = 0.0  # a user without a vector: scale 1, the vector stays zero
    want = (P @ Q.astype(np.float64).T).std(axis=1)
    want[3] = 1.0
    np.testing.assert_allclose(trend.user_scale(P, Q), want, rtol=1e-9)


def test_apply_keeps_the_models_order_at_zero_and_the_untrained_movies_out():
    rng = np.random.default_rng(1)
    f = {"user_factors": rng.normal(size=(6, 4)).astype(np.float32),
         "movie_factors": rng.normal(size=(9, 4)).astype(np.float32),
         "movie_bias": np.zeros(9, np.float32)}
    f["movie_bias"][4] = UNTRAINED_BIAS
    z = np.linspace(-1, 1, 9)
    at0 = trend.apply(f, z, 0.0)
    order = np.argsort(-(f["user_factors"] @ f["movie_factors"].T + f["movie_bias"]), axis=1)
    np.testing.assert_array_equal(np.argsort(-(at0["user_factors"] @ at0["movie_factors"].T + at0["movie_bias"]),
                                             axis=1), order)
    g = trend.apply(f, z, 2.0)
    assert g["movie_bias"][4] == UNTRAINED_BIAS and g["movie_bias"][8] == pytest.approx(2.0)
    s = (g["user_factors"].astype(np.float64) @ f["movie_factors"].astype(np.float64).T).std(axis=1)
    np.testing.assert_allclose(s, 1.0, rtol=1e-5)  # every user's model scores on one scale
    assert f["movie_bias"][8] == 0.0  # f left as it was


def _hits_dataset(seed=0, n_users=300, n_movies=120, clusters=6, per_user=30, times=True):
    """Users with a taste (a cluster: 2/3 of their movies, the rest by popularity), rating at times spread over
    [0, 1); from 0.6 on, half of every rating goes to one of 10 new hits. Held out by time: valid is [0.7, 0.8),
    test [0.8, 1) (a global cut), so the hits of the latest weeks lead the test."""
    rng = np.random.default_rng(seed)
    hits = np.arange(n_movies - 10, n_movies)
    older = np.arange(n_movies - 10)
    cluster = rng.integers(0, clusters, older.size)
    pop = 1.0 / np.arange(1, older.size + 1) ** 0.8
    pop /= pop.sum()
    u, m, t = [], [], []
    for uidx in range(n_users):
        seen: set[int] = set()
        for when in np.sort(rng.random(per_user)):
            if when >= 0.6 and rng.random() < 0.5:
                pick = int(rng.choice(hits))
            elif rng.random() < 2 / 3:
                pick = int(rng.choice(older[cluster == uidx % clusters]))
            else:
                pick = int(rng.choice(older, p=pop))
            if pick not in seen:
                seen.add(pick)
                u.append(uidx), m.append(pick), t.append(int(1_000_000 * when))
    u, m, t = np.array(u), np.array(m), np.array(t)
    part = np.where(t < 700_000, "train", np.where(t < 800_000, "valid", "test"))
    return _as_dataset("hits", n_users, n_movies, u, m, part, t if times else None)


def _as_dataset(name: str, n_users: int, n_movies: int, u, m, part, t=None) -> Dataset:
    """An implicit Dataset of rows (user ``u``, movie ``m``, time ``t`` or None) in the splits ``part`` names."""
    parts = {s: Interactions(u[part == s].astype(np.int32), m[part == s].astype(np.int32),
                             np.ones(int((part == s).sum()), np.float32),
                             None if t is None else t[part == s].astype(np.int64))
             for s in ("train", "valid", "test")}
    users_df = pd.DataFrame({"user_idx": np.arange(n_users), "user_id": np.arange(1, n_users + 1)})
    movies_df = pd.DataFrame({"movie_idx": np.arange(n_movies), "movie_id": np.arange(1, n_movies + 1),
                              "title": [f"m{i}" for i in range(n_movies)], "year": 2000,
                              "genres": [["Drama"]] * n_movies})
    return Dataset(None, {"name": name, "rating_scale": [1.0, 1.0]}, users_df, movies_df, parts)


def _cfg(*more):
    return load_config(None, ["model.dim=8", "train.epochs=6", "train.threads=1", "train.als_dims=[]", *more])


def test_valid_chooses_recent_popularity_where_the_movies_watched_drift():
    ds = _hits_dataset()
    chosen = er.train(ds, _cfg())
    off = er.train(ds, _cfg("train.als_trend=0"))
    assert chosen.config.train.als_trend > 0 and off.config.train.als_trend == 0
    got, base = (m.metrics["splits"]["test"]["model"]["ndcg@10"] for m in (chosen, off))
    assert got > base + 0.05, (got, base)
    # what the selection reports is the chosen term's valid score
    assert chosen.metrics["selection"]["valid"] > off.metrics["selection"]["valid"]
    # a new user's fold-in repeats it: a training user's own movies give that user's served vector (told without
    # times, so against a model fitted without the recency weight)
    flat = er.train(ds, _cfg("train.als_recency=0"))
    e = flat.engine
    assert e.training_ratings["solve"]["trend"] == flat.config.train.als_trend > 0
    for row in (0, 17, 123):
        movies = e.seen_idx[e.seen_ptr[row]:e.seen_ptr[row + 1]]
        p, _, _ = foldin.fold_in(e.factors, dict.fromkeys(movies.tolist(), 1.0), solve=e.training_ratings["solve"])
        np.testing.assert_allclose(p, e.factors.user[row], rtol=0, atol=2e-2 * np.abs(e.factors.user[row]).max())


def test_no_timestamps_or_a_set_zero_fit_the_model_alone():
    for ds, more in ((_hits_dataset(times=False), ()), (_hits_dataset(), ("train.als_trend=0",))):
        m = er.train(ds, _cfg(*more))
        assert m.config.train.als_trend == 0
        e = m.engine
        assert e.training_ratings["solve"]["trend"] == 0.0


def test_a_set_weight_is_applied_and_its_window_chosen_on_valid():
    m = er.train(_hits_dataset(), _cfg("train.als_trend=4"))
    assert m.config.train.als_trend == 4 and m.config.train.als_trend_window in trend.WINDOWS
    assert np.ptp(m.engine.factors.movie_bias[:-10]) > 0  # the bias is the window's counts, not zero


@pytest.mark.parametrize("key, value", [("als_trend", "-1"), ("als_trend_window", "0"), ("als_trend_window", "1.5"),
                                        ("als_trend", "lots")])
def test_bad_values_are_refused_with_the_key(key, value):
    with pytest.raises(ConfigError, match=f"train.{key}"):
        load_config(None, [f"train.{key}={value}"])


def test_a_manifest_solve_without_the_trend_reads_as_zero_and_a_bad_one_is_refused():
    solve = {"loss": "als", "a0": 0.2, "user_unobserved": 1.0, "reg": 0.02, "reg_exponent": 1.0, "recency": 0.0}
    got = run_checks.checked_training_ratings({"min_rating": None, "rating_weight": 0.0, "solve": solve}, "m.json")
    assert got["solve"]["trend"] == 0.0
    with pytest.raises(ArtifactError, match="training_ratings.solve.trend is -1"):
        run_checks.checked_training_ratings({"solve": {**solve, "trend": -1}}, "m.json")


def test_a_set_weight_is_served_even_where_valid_would_not_choose_it(caplog):
    """A review: train.als_trend=8 with its window auto came out 0 where no window beat the model alone."""
    ds = _hits_dataset()
    for name in ("valid", "test"):  # no drift: every row's time drawn afresh, so recent popularity tells nothing
        part = ds.splits[name]
        part.timestamp = np.random.default_rng(1).integers(0, 700_000, len(part))
    ds.splits["train"].timestamp = np.random.default_rng(2).integers(0, 700_000, len(ds.splits["train"]))
    m = er.train(ds, _cfg("train.als_trend=8"))
    assert m.config.train.als_trend == 8 and m.engine.training_ratings["solve"]["trend"] == 8
    assert m.metrics["selection"]["als_trend"] == 8 and m.metrics["selection"]["als_trend_window"] in trend.WINDOWS


def test_a_set_weight_without_timestamps_counts_all_the_ratings(caplog):
    """Without times there is no latest window: the popularity of all the training ratings (window 1); a window
    set below 1 is said to count nothing (it was: the weight itself was made 0)."""
    import logging

    ds = _hits_dataset(times=False)
    m = er.train(ds, _cfg("train.als_trend=8"))
    assert m.config.train.als_trend == 8 and m.config.train.als_trend_window == 1.0
    assert m.engine.training_ratings["solve"]["trend"] == 8
    tr = m.dataset.splits["train"]
    z = trend.z_of_counts(np.bincount(tr.movie, minlength=ds.n_movies))
    trained = m.engine.bm > UNTRAINED_BIAS / 2
    np.testing.assert_allclose(m.engine.bm[trained], 8 * z[trained], rtol=1e-6)
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        m = er.train(ds, _cfg("train.als_trend=8", "train.als_trend_window=0.1"))
    assert "train.als_trend_window 0.1 counts nothing here" in caplog.text
    assert m.config.train.als_trend == 8 and m.config.train.als_trend_window == 1.0


def test_a_gain_inside_the_margin_keeps_the_model_alone():
    ds = _hits_dataset()
    f = {"user_factors": np.ones((ds.n_users, 2), np.float32), "movie_factors": np.ones((ds.n_movies, 2), np.float32),
         "movie_bias": np.zeros(ds.n_movies, np.float32)}
    calls = []

    def on_valid(g):  # the model alone 0.2; any blend 0.5% better: inside the 1% margin
        calls.append(g)
        return {"ndcg@10": 0.2 if not np.any(g["movie_bias"]) else 0.201}

    cfg = _cfg()
    assert trend.choose(ds, cfg.train, f, on_valid, "ndcg@10", True) == (0.0, trend.DEFAULT_WINDOW, 0.0, None)
    assert len(calls) == 1 + len(trend.WINDOWS) * len(trend.SCREEN) + len(trend.ACTIVITY_SCREEN)  # alone, the screen


@pytest.mark.parametrize("step", [0.0001, 0.01])
def test_auto_says_each_step_of_its_search_with_the_scores_it_scored(caplog, step):
    """A known gap (session 44's reviews): train said nothing while train.als_trend auto weighed its candidates (6 s
    on 30K x 8K x 1.5M). Each step of the search is one INFO line as it is scored: its candidates' valid scores in
    the order scored (here each call's own number), the model alone, and how many were weighed so far; then the
    choice, 0 included (it was a debug line)."""
    import logging
    import re

    ds = _hits_dataset()
    f = {"user_factors": np.ones((ds.n_users, 2), np.float32), "movie_factors": np.ones((ds.n_movies, 2), np.float32),
         "movie_bias": np.zeros(ds.n_movies, np.float32)}
    given: list[float] = []

    def on_valid(g):  # the model alone 0.2, each blend after it `step` more than the one before
        given.append(round(0.2 + step * len(given), 4))
        return {"ndcg@10": given[-1]}

    with caplog.at_level(logging.INFO, logger="embedrec"):
        got = trend.choose(ds, _cfg().train, f, on_valid, "ndcg@10", True)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("als_trend auto")]
    steps, last = lines[:-1], lines[-1]
    said = [float(x) for line in steps for x in re.findall(r"(\d\.\d{4}) at ", line)]
    assert said == given[1:], (said, given)  # every blend scored, once, with its own score, in order
    counts = [int(re.search(r"(\d+) weighed so far", line)[1]) for line in steps]
    sizes = [len(re.findall(r"\d\.\d{4} at ", line)) for line in steps]
    assert counts == list(np.cumsum(sizes)) and all("the model alone 0.2000" in line for line in steps), steps
    assert steps[0].startswith(f"als_trend auto, popularity's weight in each window: valid ndcg@10 {given[1]:.4f} at "
                               f"1, {given[2]:.4f} at 8 over all the ratings; "), steps
    if step < 0.001:  # 0.55% above the model alone at best: inside the margin, two steps, then 0
        assert got[0] == 0.0 and len(steps) == 2 and sizes == [8, 3], steps
        assert last == ("als_trend auto: chose 0, the model alone (valid ndcg@10 0.2000; the best with popularity "
                        "0.2011, where a gain must pass 1%)"), last
    else:  # past it: the weights at the best window, each activity, then the activities around 1
        assert got[0] > 0 and len(steps) == 5 and sizes[:2] == [8, 3], steps
        assert last.startswith("als_trend auto: popularity (") and f"valid ndcg@10 {got[3]:.4f}" in last, last


def _with_cold_users(ds: Dataset) -> Dataset:
    """``ds`` and 40 more users with valid rows only (the latest hits), as split.cold_start keeps them."""
    import copy

    cold = copy.copy(ds)
    va = ds.splits["valid"]
    extra = np.arange(ds.n_users, ds.n_users + 40)
    cold.users = pd.concat([ds.users, pd.DataFrame({"user_idx": extra, "user_id": extra + 1})], ignore_index=True)
    cold.splits = {**ds.splits, "valid": Interactions(
        np.concatenate([va.user, np.repeat(extra, 3)]).astype(np.int32),
        np.concatenate([va.movie, np.tile([110, 111, 112], 40)]).astype(np.int32),
        np.ones(len(va) + 120, np.float32), np.concatenate([va.timestamp, np.full(120, 750_000)]))}
    return cold


def test_every_choice_on_valid_is_scored_on_the_users_with_a_vector(tmp_path):
    """A global time cut with split.cold_start: users first seen after the training window get no vector from any
    fit. A fit's epochs scored them from their drawn start vectors, partly solved towards zero, its users' final
    re-solve from exact zeros (valid NDCG@10 0.1680 against 0.1426 on ML-100K's latest 20%, 77 of 162 users
    without a training row): now every epoch, candidate, re-solve and term is scored without them, so the
    selection is the one made on the users with a vector alone."""
    import copy

    from embedrec.training.select import fit_and_refit

    ds = _hits_dataset()
    cold = _with_cold_users(ds)
    warm = copy.copy(cold)
    warm.splits = {**cold.splits, "valid": ds.splits["valid"]}  # the same users, the cold ones' valid rows gone
    got = [fit_and_refit(d, _cfg("train.als_trend=0", "train.als_user_unobserved=auto"), tmp_path / name)
           for name, d in (("cold", cold), ("warm", warm))]
    (_, _, a, ca), (_, _, b, cb) = got
    assert ca.train == cb.train
    assert [h.get("valid_ndcg@10") for h in a.history] == [h.get("valid_ndcg@10") for h in b.history]
    assert len(a.history) > 1 and a.history[0].get("valid_ndcg@10") is not None, a.history[0]
    assert a.best_value == b.best_value


def test_users_without_a_vector_are_left_out_of_the_choice():
    """split.cold_start keeps valid rows of users with no training row: their scores would be the term alone
    (recent popularity), which served them nothing (they are answered as unknown) but led the choice."""
    import copy

    from embedrec.training.select import choose_trend

    ds = _hits_dataset()
    cold = _with_cold_users(ds)
    va = ds.splits["valid"]
    import tempfile
    from pathlib import Path

    from embedrec.training.select import fit_and_refit

    with tempfile.TemporaryDirectory() as tmp:
        _, _, selected, chosen = fit_and_refit(cold, _cfg(), Path(tmp) / "run")
    again = chosen.updated({"train.als_trend": "auto", "train.als_trend_window": "auto"})
    without = copy.copy(cold)
    without.splits = {**cold.splits, "valid": va}  # the same model, the cold users' valid rows gone
    picks = [(c.train.als_trend, c.train.als_trend_window) for c in
             (choose_trend(d, again, selected, {}, resolved=False) for d in (cold, without))]
    assert picks[0] == picks[1] == (chosen.train.als_trend, chosen.train.als_trend_window) and picks[0][0] > 0, picks


def test_recommend_new_lists_the_movies_it_left_out(tmp_path):
    m = er.train(_hits_dataset(), _cfg())
    r = m.recommend_new([1, 2, 99999], k=3)
    assert list(r.unknown) == [99999] and len(r.movie_ids[0]) == 3
    with pytest.raises(er.NotFoundError, match="nor is the other movie given \\('88888'\\)"):
        m.recommend_new([99999, 88888])
    assert list(m.recommend_new([1, 99999, 99999], k=3).unknown) == [99999]  # given twice: listed once


def test_a_set_weight_with_no_valid_user_to_score_keeps_the_default_window():
    """A review: with no valid user holding a vector the windows' scores were all NaN, one was picked from them,
    and the log named another."""
    ds = _hits_dataset()
    f = {"user_factors": np.ones((ds.n_users, 2), np.float32), "movie_factors": np.ones((ds.n_movies, 2), np.float32),
         "movie_bias": np.zeros(ds.n_movies, np.float32)}
    got = trend.choose(ds, _cfg("train.als_trend=2").train, f, lambda g: {"ndcg@10": float("nan")}, "ndcg@10", True)
    assert got == (2.0, trend.DEFAULT_WINDOW, 0.0, None)
    assert trend.choose(ds, _cfg().train, f, lambda g: {"ndcg@10": float("nan")}, "ndcg@10", True)[0] == 0.0


def test_trains_line_says_the_valid_score_is_with_recent_popularity(caplog, capsys):
    """A review: the line said the trend's valid score was the users' re-solve's."""
    import logging

    from embedrec.cli.train import _report

    m = er.train(_hits_dataset(), _cfg())
    assert m.metrics["selection"]["als_trend"] > 0
    with caplog.at_level(logging.INFO, logger="embedrec"):
        _report(m.metrics, m.config, "tsv")
    assert f"with popularity weighing {m.metrics['selection']['als_trend']:g}" in caplog.text
    assert "with the users re-solved at" not in caplog.text


def test_the_popular_fallback_is_the_recent_popularity_the_model_serves():
    """A diff review (session 41): beside a model adding recent popularity, --fallback popular listed the movies
    most rated over all the training ratings. Now the list a user with a zero vector gets: the window's."""
    ds = _hits_dataset()
    chosen, off = er.train(ds, _cfg()), er.train(ds, _cfg("train.als_trend=0"))
    assert chosen.config.train.als_trend > 0
    e = chosen.engine
    top, scores = e.popular(10)
    # the 10 hits of the latest weeks lead (every rating of theirs is from 0.6 on), scored as the movie bias
    assert set(top.tolist()) == set(range(ds.n_movies - 10, ds.n_movies))
    np.testing.assert_array_equal(scores, e.bm[top].astype(np.float64))
    zero_user, _ = e.recommend_vector(np.zeros(e.P.shape[1], np.float32), 0.0, 10, np.array([], np.int64))[:2]
    assert set(np.asarray(zero_user).tolist()) == set(top.tolist())
    # through the library's fallback (an unknown user) and its popular(): the same rows
    got = chosen.recommend(["no-such-user"], k=10, missing="popular")
    assert set(got.movie_ids[0]) == set(e.movie_ids[top].tolist()) and list(got.fallback) == [True]
    # the model alone keeps the all-time count (its score, the number of training ratings)
    o = off.engine
    top_off, counts = o.popular(10)
    assert np.all(np.diff(counts) <= 0) and counts[0] == o.popularity.max()
    assert o.recent_popularity() is None


def test_activity_is_each_users_ratings_over_the_mean_to_the_power_gamma():
    assert trend.activity(np.array([0, 5, 20]), 0.0, 10.0) is None  # gamma 0: every user alike
    np.testing.assert_allclose(trend.activity(np.array([0, 5, 20]), 1.0, 10.0), [1.0, 0.5, 2.0])
    np.testing.assert_allclose(trend.activity(np.array([40]), 0.5, 10.0), [2.0])
    assert trend.typical_count(1000, 50) == 20.0
    f = {"user_factors": np.array([[1.0, 0.0], [0.0, 2.0]], np.float32),
         "movie_factors": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32), "movie_bias": None}
    plain, weighed = trend.scaled(f), trend.scaled(f, np.array([1.0, 3.0], np.float32))
    np.testing.assert_allclose(weighed["user_factors"], plain["user_factors"] * [[1.0], [3.0]], rtol=1e-6)


def _light_dataset(seed=0, n_users=1200, n_movies=300, clusters=8):
    """Half the users rate 30-59 movies, 90% from two liked clusters; the other half 2-5, 90% by popularity
    (casual users pick hits). Held out per user at random: 20% test, 10% valid (none for a user with < 4)."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, clusters, n_movies)
    pop = 1.0 / np.arange(1, n_movies + 1)
    pop /= pop.sum()
    u, m, part = [], [], []
    for uidx in range(n_users):
        n = int(rng.integers(2, 6)) if uidx % 2 else int(rng.integers(30, 60))
        mine = np.flatnonzero(np.isin(cluster, rng.integers(0, clusters, 2)))
        seen: list[int] = []
        while len(seen) < n:
            pick = int(rng.choice(mine)) if rng.random() < (0.9 if n > 10 else 0.1) else \
                int(rng.choice(n_movies, p=pop))
            if pick not in seen:
                seen.append(pick)
        where = np.array(["train"] * n, dtype=object)
        k_test, k_valid = max(1, round(0.2 * n)), (max(1, round(0.1 * n)) if n >= 4 else 0)
        where[:k_test], where[k_test:k_test + k_valid] = "test", "valid"
        u += [uidx] * n
        m += seen
        part += list(rng.permutation(where))
    return _as_dataset("light", n_users, n_movies, np.array(u), np.array(m), np.array(part))


def test_valid_leans_users_with_few_ratings_to_popularity():
    """An independent check (session 42): where half the users rate a few hits, the model alone lists worse than
    the most popular movies; valid chooses popularity weighed by each user's activity (no timestamps: over all
    the ratings), which beats both, and a fold-in of a training user's movies repeats its served vector."""
    ds = _light_dataset()
    auto, off = er.train(ds, _cfg()), er.train(ds, _cfg("train.als_trend=0"))
    flat = er.train(ds, _cfg("train.als_trend_activity=0"))
    assert auto.config.train.als_trend > 0 and auto.config.train.als_trend_activity >= 1
    assert auto.config.train.als_trend_window == 1.0  # no timestamps: all the ratings
    test = {k: m.metrics["splits"]["test"] for k, m in (("auto", auto), ("off", off), ("flat", flat))}
    got = test["auto"]["model"]["ndcg@10"]
    assert got > test["off"]["model"]["ndcg@10"] + 0.02 and got > test["flat"]["model"]["ndcg@10"] + 0.02
    assert got > test["auto"]["most_popular"]["ndcg@10"] + 0.05
    solve = auto.engine.training_ratings["solve"]
    assert solve["trend_activity"] == auto.config.train.als_trend_activity
    assert solve["trend_n0"] == pytest.approx(len(auto.dataset.splits["train"]) / ds.n_users)
    e = auto.engine
    for row in (0, 1, 17, 400):  # a heavy user and light ones
        movies = e.seen_idx[e.seen_ptr[row]:e.seen_ptr[row + 1]]
        p, _, _ = foldin.fold_in(e.factors, dict.fromkeys(movies.tolist(), 1.0), solve=solve)
        np.testing.assert_allclose(p, e.factors.user[row], rtol=0, atol=2e-2 * np.abs(e.factors.user[row]).max())


def test_a_set_activity_is_screened_at_small_weights_and_a_set_term_reports_its_own_valid_score():
    """A diff review: train.als_trend_activity=2 was screened at weights 1 and 8 only, missed the margin and
    dropped the term where auto kept it at 0.25; and with every trend key set (as a run's config.yaml writes
    them) train reported the model alone's valid score as the blend's."""
    ds = _light_dataset(2)
    set2 = er.train(ds, _cfg("train.als_trend_activity=2"))
    assert set2.config.train.als_trend > 0 and set2.config.train.als_trend_activity == 2
    fixed = er.train(ds, _cfg("train.als_trend=0.5", "train.als_trend_activity=2"))
    off = er.train(ds, _cfg("train.als_trend=0"))
    assert fixed.metrics["selection"]["valid"] > off.metrics["selection"]["valid"] + 0.005
    assert fixed.metrics["selection"]["als_trend"] == 0.5 and fixed.metrics["selection"]["als_trend_window"] == 1.0


def test_a_set_weight_keeps_activity_only_past_the_paired_test():
    """A review: with train.als_trend a number and its activity auto, the gamma with the best valid score was
    kept without the margin or the paired test (test NDCG@10 0.1942 against 0.2173 at gamma 0)."""
    ds = _hits_dataset()
    f = {"user_factors": np.ones((ds.n_users, 2), np.float32), "movie_factors": np.ones((ds.n_movies, 2), np.float32),
         "movie_bias": np.zeros(ds.n_movies, np.float32)}

    def on_valid(g):
        return {"ndcg@10": 0.22 if np.ptp(g["user_factors"][:, 0]) > 1e-6 else 0.21}

    cfg = _cfg("train.als_trend=2")
    assert trend.choose(ds, cfg.train, f, on_valid, "ndcg@10", True, paired=lambda a, b: (0.01, 0.008))[2] == 0
    assert trend.choose(ds, cfg.train, f, on_valid, "ndcg@10", True, paired=lambda a, b: (0.01, 0.004))[2] > 0


def test_the_paired_test_on_a_rank_without_users_adds_nothing_and_a_metric_not_per_user_is_none():
    """A review: a torchrun rank with no sampled validation user left the sum over ranks and the others hung."""
    calls = []
    test = trend.paired_test(lambda f, batches: None, "ndcg@10", reduce=lambda s: calls.append(s) or s)
    assert test({}, {}) is None and len(calls) == 1 and list(calls[0]) == [0.0, 0.0, 0.0]  # summed, then < 2 users
    assert trend.paired_test(lambda f, b: None, "coverage@10", reduce=lambda s: calls.append(s) or s)({}, {}) is None
    assert len(calls) == 1  # no sum for a metric no user has


def test_activity_must_beat_every_user_alike_by_its_margin_and_two_paired_standard_errors():
    """On ML-100K's 20% global cut activity 1.5 gained 2.7% on valid and lost on test, and on ML-100K with half its
    users cut to a few ratings choices on 1.5 SE gains did not hold (an independent check): a gamma above 0 is
    kept only where it beats the best blend weighing every user alike by MARGIN and by ACTIVITY_Z paired SEs."""
    ds = _hits_dataset()
    f = {"user_factors": np.ones((ds.n_users, 2), np.float32), "movie_factors": np.ones((ds.n_movies, 2), np.float32),
         "movie_bias": np.zeros(ds.n_movies, np.float32)}

    def on_valid(alike, weighed):
        def run(g):
            if not np.any(g["movie_bias"]):
                return {"ndcg@10": 0.2}
            by_user = np.ptp(g["user_factors"][:, 0]) > 1e-6  # activity > 0: the users' vectors differ
            return {"ndcg@10": weighed if by_user else alike}
        return run

    cfg = _cfg()
    small, big = 0.21 * (1 + trend.MARGIN / 2), 0.21 * 1.05
    got = trend.choose(ds, cfg.train, f, on_valid(0.21, small), "ndcg@10", True)
    assert got[0] > 0 and got[2] == 0 and got[3] == 0.21  # every user alike, 5% over the model alone
    got = trend.choose(ds, cfg.train, f, on_valid(0.21, big), "ndcg@10", True)
    assert got[0] > 0 and got[2] > 0 and got[3] == pytest.approx(big)  # no paired test given: the margin alone
    for se, kept in ((0.008, False), (0.004, True)):  # +0.01 at 1.25 SE, then at 2.5 SE
        got = trend.choose(ds, cfg.train, f, on_valid(0.21, big), "ndcg@10", True, paired=lambda a, b, se=se: (0.01, se))
        assert (got[2] > 0) == kept and got[0] > 0, (se, got)
    # every user alike no better than the model alone, activity not clear of it: 0
    assert trend.choose(ds, cfg.train, f, on_valid(0.2, 0.2 * (1 + trend.MARGIN / 2)), "ndcg@10", True)[0] == 0.0
    assert trend.mean_se(trend.paired_sums(np.array([1.0, 2.0, 3.0]), np.zeros(3))) == pytest.approx((2.0, 1 / 3 ** 0.5))
    assert trend.mean_se(trend.paired_sums(np.array([1.0]), np.zeros(1))) is None


def test_a_tie_between_windows_keeps_the_widest():
    """An independent check: a set weight on a random split scored the same on valid over the latest 3% and over
    all the ratings, took 3% and lost 0.012 test NDCG@10; a tie now keeps all the ratings."""
    ds = _hits_dataset()
    f = {"user_factors": np.ones((ds.n_users, 2), np.float32), "movie_factors": np.ones((ds.n_movies, 2), np.float32),
         "movie_bias": np.zeros(ds.n_movies, np.float32)}
    got = trend.choose(ds, _cfg("train.als_trend=2", "train.als_trend_activity=0").train, f,
                       lambda g: {"ndcg@10": 0.3}, "ndcg@10", True)
    assert got[:3] == (2.0, 1.0, 0.0)


def test_a_valid_split_of_users_without_a_vector_alone_trains_as_without_one(tmp_path, caplog):
    """A review: where no valid user had a training rating, the per-epoch score was empty and train stopped on an
    internal error (KeyError 'ndcg@10'); now it says why nothing is chosen on valid, and trains as without one
    (the refit still learns those users from their valid rows)."""
    import copy

    from embedrec.training.select import fit_and_refit

    cold = _with_cold_users(_hits_dataset())
    va = cold.splits["valid"]
    only = va.user >= cold.n_users - 40
    alone = copy.copy(cold)
    alone.splits = {**cold.splits, "valid": Interactions(va.user[only], va.movie[only], va.rating[only],
                                                         va.timestamp[only])}
    with caplog.at_level("WARNING", logger="embedrec"):
        merged, final, selected, chosen = fit_and_refit(alone, _cfg("train.epochs=3"), tmp_path / "run")
    assert "none of the 120 validation ratings is of a user with a training rating" in caplog.text, caplog.text
    assert selected.epochs_run == 3 and chosen.train.als_trend == 0
    assert len(merged.splits["train"]) == len(alone.splits["train"]) + 120  # the refit learnt them


def test_a_runs_config_says_in_a_comment_what_each_auto_chose(tmp_path, synth_dir):
    """A known gap: a run's config.yaml kept `train.als_unobserved: auto` (and model.loss, train.metric auto)
    without the value the run used, which only the manifest held. `auto` stays (a rerun re-chooses: the weight is a
    rule of the ratings, the refit's differ from the selection's, so a number would train another model), and a
    comment after it says what this run chose, from the manifest; a choice on valid is written as its number."""
    import json

    import yaml

    cfg = _cfg("train.als_trend=0", f"data.prepared={tmp_path / 'ds'}", f"run.dir={tmp_path / 'run'}")
    m = er.train(er.ingest(str(synth_dir[0]), cfg), cfg)
    m.save()
    text = (tmp_path / "run" / "current" / "config.yaml").read_text()
    manifest = json.loads((tmp_path / "run" / "current" / "manifest.json").read_text())
    a0 = manifest["training_ratings"]["solve"]["a0"]
    chosen = m.metrics["selection"]["als_unobserved"]
    if chosen == "auto":  # the rule's weight kept: auto, and the refit's number in the comment
        assert f"\n  als_unobserved: auto  # this run: {a0:.4g}\n" in text, text
    else:  # the half chosen on valid: its number, as the other choices
        assert f"\n  als_unobserved: {chosen}\n" in text and a0 == chosen, text
    assert "\n  loss: auto  # this run: als\n" in text and "\n  metric: auto  # this run: ndcg@10\n" in text
    assert "\n  optimizer: auto\n" in text  # als reads none: nothing said
    assert f"\n  als_reg: {m.config.train.als_reg}\n" in text  # a choice on valid: its number
    assert yaml.safe_load(text)["train"]["als_unobserved"] == chosen  # what a rerun reads: the config's own values
    assert load_config(str(tmp_path / "run" / "current" / "config.yaml")).train == m.config.train
    # the writer alone: a comment after an auto it was told of, never after a number
    cfg = _cfg("train.als_reg=0.5")
    plain = cfg.to_yaml()
    said = cfg.to_yaml({"train.als_unobserved": "0.25", "train.als_reg": "9", "model.loss": "als"})
    assert said == plain.replace("  als_unobserved: auto\n", "  als_unobserved: auto  # this run: 0.25\n").replace(
        "  loss: auto\n", "  loss: auto  # this run: als\n") and said != plain
