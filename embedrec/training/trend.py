"""``train.als_trend``: recent popularity added to an als model's ranking, its weight chosen on valid.

Where the movies watched drift over time (a global time cut: the test is the next weeks of every user), what the
users watched lately predicts the next weeks better than any fit of the whole history: on ML-100K cut at one
time, the most popular movies of the latest weeks scored above every tuned model (an independent check, session
41). The served score is then the model's, standardised per user, plus beta times the movie's standardised
log count over the latest share ``w`` of the fit's ratings:

    score(u, m) = <p_u, q_m> / s_u + beta z_m,   s_u = the std of <p_u, q_m> over all movies,

which is the inner product of the user vector p_u / s_u with q_m plus a movie bias beta z_m: the index serves it
as it serves any model's bias, and a new user's fold-in divides its vector by its own s (serve.foldin). The
ranking of a user's list by the model alone is unchanged by the scale s_u, so beta 0 is the model as fitted.
``train.als_trend_activity`` gamma weighs the term by user, beta (n0 / n_u)^gamma with n_u the user's training
ratings (:func:`activity`): the user vector is then also multiplied by (n_u / n0)^gamma. Without timestamps the
counts are of all the training ratings (window 1).

``auto`` (with valid rows and timestamps): betas 1 and 8 at each window of :data:`WINDOWS`; where one beats the
model alone on valid by more than :data:`MARGIN`, every beta of :data:`BETAS` at the best window, the best kept;
else 0 (the model alone), so data without drift keeps the model as it was: on ML-100K's random, per-user time
and leave-one-out splits the screen chose 0 (and on a per-user time split of a synthetic log whose releases
peak and fade it chose 2, rightly: +0.087 test NDCG@10), and on a global cut of its latest 20% it chose the latest 10% at beta 16 (test
NDCG@10 0.1824 to 0.2312; BENCHMARKS.md, session 41). Counts come from the rows of the fit the term is added to:
the selection's train rows on valid, the refit's train+valid rows in the served model.
"""

from __future__ import annotations

import logging

import numpy as np

from embedrec.model.factors import UNTRAINED_BIAS

log = logging.getLogger("embedrec")

WINDOWS = (1.0, 0.3, 0.1, 0.03)  # the latest share of the fit's ratings counted (1: all of them); widest first: a tie
# keeps the least aggressive (a review: a set weight on a random split tied at 0.03 and 1, took 0.03, lost 0.012)
DEFAULT_WINDOW = 0.1  # train.als_trend_window auto where nothing chose it (a number for als_trend, no valid split)
SCREEN = (1.0, 8.0)  # the betas each window is first tried at (a blend can lose at 1 and win at 8: a global cut)
BETAS = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # tried at the best window once the screen found a gain
# train.als_trend_activity auto: the exponent gamma of a user's weight of the term, beta (n0 / n_u)^gamma (n_u the
# user's training ratings, n0 their mean a user): 0 weighs every user alike; 1 leans a user with few ratings to
# popularity, as a Bayesian prior leans an estimate from few observations to the mean (an independent check,
# session 42: users with 1-4 ratings, half of a synthetic log's, got lists worse than the most popular; gamma 1
# chosen on valid raised test NDCG@10 by 0.012-0.019 on three such logs, and 0 kept on ML-100K's splits)
ACTIVITY = (0.0, 1.0)  # 0 screened at every window and beta of SCREEN, then 1 at the best window
ACTIVITY_SCREEN = (0.25, 1.0, 8.0)  # the betas gamma 1 is screened at
ACTIVITY_FINE = (0.5, 1.5, 2.0, 3.0)  # tried at the best window and beta where 1 is the best
# activity > 0 is kept where it beats the best blend weighing every user alike (or the model alone) by MARGIN and
# by ACTIVITY_Z paired standard errors over the same validation users: on ML-100K's 20% global cut gamma 1.5
# gained 2.7% on valid (+0.0053, SE 0.0082 over 84 users on a variant) and lost 0.0096 test NDCG@10 (SE 0.0044);
# on ML-100K with half its users cut to 2-10 ratings choices on 1.5 SE gains did not hold on test (an independent
# check, session 42); on the light-user logs it gained 5.7-7.9% over thousands of users and won on test
ACTIVITY_Z = 2.0
# the relative valid gain the screen must pass (a review: +0.0002, 0.06%, chose 8 and lowered test NDCG@10); the
# global cuts measured gained 12% and 44%
MARGIN = 0.01


def window_z(movies: np.ndarray, timestamps: np.ndarray | None, n_movies: int, share: float) -> np.ndarray:
    """Each movie's log(1 + count) over the latest ``share`` of the ratings (by time; ties at the cut counted;
    all of them without ``timestamps``), standardised over all ``n_movies`` (mean 0, std 1; all zeros where every
    movie counts the same)."""
    return window_stats(movies, timestamps, n_movies, share)[0]


def window_stats(movies: np.ndarray, timestamps: np.ndarray | None, n_movies: int, share: float
                 ) -> tuple[np.ndarray, dict]:
    """(:func:`window_z`, its record {"cut": the earliest time counted (None: every rating), "mean", "sd": of
    log(1 + count) over every movie}): what a movie added later (update-users --new-movies) is given its z by,
    from its own ratings in the window (:func:`z_of_count`)."""
    movies = np.asarray(movies, dtype=np.int64)
    ts = None if timestamps is None else np.asarray(timestamps)
    cut = None
    if share < 1.0 and ts is not None and ts.size:
        cut = np.quantile(ts, 1.0 - share, method="higher")
        movies = movies[ts >= cut]
    c = np.log1p(np.bincount(movies, minlength=n_movies).astype(np.float64))
    return z_of_counts(np.bincount(movies, minlength=n_movies)), {
        "cut": None if cut is None else int(cut), "mean": float(c.mean()) if c.size else 0.0,
        "sd": float(c.std()) if c.size else 0.0}


def z_of_count(count, window: dict) -> np.ndarray:
    """The z of ``count`` ratings in the window (:func:`window_stats`' record): as the run's own movies' (0 where
    every movie counted the same)."""
    c = np.log1p(np.asarray(count, dtype=np.float64))
    sd = float(window["sd"])
    return np.zeros(c.shape) if sd == 0 else (c - float(window["mean"])) / sd


def z_of_counts(counts: np.ndarray) -> np.ndarray:
    """log(1 + count) standardised over every movie (zeros where all count the same): :func:`window_z`'s, from
    counts a caller summed (torchrun's ranks, each counting its users' ratings)."""
    c = np.log1p(np.asarray(counts, dtype=np.float64))
    sd = c.std()
    return np.zeros(c.size) if sd == 0 else (c - c.mean()) / sd


def gram_mean(movie_factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q^T Q, the mean row) of the movie factors, float64, in blocks (no float64 copy of the whole table)."""
    Q = np.asarray(movie_factors)
    G, tot = np.zeros((Q.shape[1], Q.shape[1])), np.zeros(Q.shape[1])
    for s in range(0, Q.shape[0], 65536):
        block = np.asarray(Q[s:s + 65536], dtype=np.float64)
        G += block.T @ block
        tot += block.sum(axis=0)
    return G, tot / max(Q.shape[0], 1)


def user_scale(users: np.ndarray, movie_factors: np.ndarray, gram: np.ndarray | None = None,
               mean: np.ndarray | None = None) -> np.ndarray:
    """Each user's std of <p_u, q_m> over every movie row (float64), from the movies' Gram matrix Q^T Q and mean
    row: var = p^T (Q^T Q / M) p - (p . mean)^2. 1 where it is 0 (a zero vector: a user without one)."""
    P = np.atleast_2d(np.asarray(users, dtype=np.float64))
    if gram is None or mean is None:
        gram, mean = gram_mean(movie_factors)
    m = np.asarray(movie_factors).shape[0]
    var = ((P @ (gram / m)) * P).sum(axis=1) - (P @ mean) ** 2  # (a 3-operand einsum took 15x as long)
    s = np.sqrt(np.maximum(var, 0.0))
    s[s <= 1e-12] = 1.0
    return s


def typical_count(nnz: int, n_users: int) -> float:
    """n0 of :data:`ACTIVITY`: the training ratings a user on average (``nnz`` over ``n_users``; a run's solve
    records it for a new user's fold-in)."""
    return max(float(nnz) / max(int(n_users), 1), 1e-12)


def activity(counts: np.ndarray, gamma: float, n0: float) -> np.ndarray | None:
    """Each user's multiplier of its scaled vector, (n_u / n0)^gamma (float32; 1 for a user without ratings,
    whose vector is zero): dividing a user's score by its weight of the term, (n0 / n_u)^gamma, keeps its list
    and leaves the term a movie bias beta z shared by all. None at gamma 0 (every user alike)."""
    if gamma == 0:
        return None
    n = np.asarray(counts, dtype=np.float64)
    return np.where(n > 0, (np.maximum(n, 1e-12) / n0) ** gamma, 1.0).astype(np.float32)


def apply(f: dict, z: np.ndarray, beta: float, mult: np.ndarray | None = None) -> dict:
    """The factors ``f`` with the term added: users divided by their :func:`user_scale` (and multiplied by
    ``mult``, :func:`activity`'s), the movie bias beta z (a movie without training ratings keeps its
    UNTRAINED_BIAS). ``f`` itself is left as it is."""
    return with_bias(scaled(f, mult), f, z, beta)


def scaled(f: dict, mult: np.ndarray | None = None) -> dict:
    """``f`` with each user vector divided by its :func:`user_scale` (the same lists: a user's scores are all
    divided alike), then multiplied by ``mult`` (one positive number a user) where given; ``user_scale`` holds
    each user's divisor (float32: the served vector is the fitted one divided by it)."""
    g = dict(f)
    Q = f["movie_factors"]
    gram, mean = gram_mean(Q)
    P = np.asarray(f["user_factors"])
    s = np.empty(P.shape[0])
    for a in range(0, P.shape[0], 65536):  # float64 blocks
        s[a:a + 65536] = user_scale(P[a:a + 65536], Q, gram, mean)
    if mult is not None:
        s = s / np.asarray(mult, np.float64)
    g["user_scale"] = s.astype(np.float32)  # each user's divisor, which explanations read (run_layout.USER_SCALE)
    g["user_factors"] = P.astype(np.float32) / g["user_scale"][:, None]  # no float64 copy of the table
    return g


def with_bias(g: dict, f: dict, z: np.ndarray, beta: float) -> dict:
    """``g`` with the movie bias beta z, where ``f``'s movie bias does not mark a movie without training ratings."""
    mb = f.get("movie_bias")
    bias = np.zeros(f["movie_factors"].shape[0], np.float32) if mb is None else np.array(mb, np.float32).reshape(-1)
    trained = bias > UNTRAINED_BIAS / 2
    bias[trained] = (beta * z[trained]).astype(np.float32)
    return {**g, "movie_bias": bias}


def has_times(ds) -> bool:
    return ds.splits["train"].timestamp is not None and len(ds.splits["train"]) > 0


def paired_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(sum of d, sum of d^2, n) of the per-user differences d = a - b (the same users, in the same order): what
    ranks add up before :func:`mean_se`."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.array([d.sum(), (d * d).sum(), float(d.size)])


def user_values(batches: list, metric: str) -> np.ndarray | None:
    """The per-user values of ``metric`` that evaluate.ranking_sums' ``per_user`` batches hold, by user row (none
    where a rank scored no user); None where they do not hold it."""
    if not batches:
        return np.zeros(0)
    if metric not in batches[0][1]:
        return None
    rows = np.concatenate([np.asarray(r) for r, _ in batches])
    vals = np.concatenate([np.asarray(v[metric], np.float64) for _, v in batches])
    return vals[np.argsort(rows, kind="stable")]


def paired_test(users_of, metric: str, reduce=None):
    """:func:`choose`'s ``paired``: ``users_of(f, batches)`` scores factors ``f`` on valid, filling
    evaluate.ranking_sums' per-user ``batches``; ``reduce`` adds :func:`paired_sums`' values up over torchrun's
    ranks (None: one process)."""
    from embedrec.metrics import PER_USER

    def paired(fa: dict, fb: dict):
        if metric.split("@")[0] not in PER_USER:  # (decided alike on every rank: none enters the sum alone)
            return None
        got = []
        for fx in (fa, fb):
            batches: list = []
            users_of(fx, batches)
            got.append(user_values(batches, metric))
        if got[0] is None or got[1] is None:
            return None
        sums = paired_sums(*got)
        return mean_se(sums if reduce is None else reduce(sums))
    return paired


def mean_se(sums: np.ndarray) -> tuple[float, float] | None:
    """The mean of the differences and its standard error from :func:`paired_sums`' (summed) values; None under
    two users."""
    s, s2, n = (float(x) for x in sums)
    if n < 2:
        return None
    mean = s / n
    var = max(s2 / n - mean * mean, 0.0) * n / (n - 1)
    return mean, float(np.sqrt(var / n))


def served(f: dict, ds, train_cfg) -> dict:
    """The served factors: ``f`` with the term at train.als_trend (a number after the selection; auto is 0
    outside one) over the latest train.als_trend_window of ``ds``'s train rows (the fit's; all of them without
    timestamps), each user weighing it by train.als_trend_activity, or ``f`` itself."""
    beta = 0.0 if train_cfg.als_trend == "auto" else float(train_cfg.als_trend)
    tr = ds.splits["train"]
    if beta <= 0 or len(tr) == 0:
        return f
    w = served_window(train_cfg, has_times(ds))
    gamma = 0.0 if train_cfg.als_trend_activity == "auto" else float(train_cfg.als_trend_activity)
    mult = activity(np.bincount(tr.user, minlength=ds.n_users), gamma, typical_count(len(tr), ds.n_users))
    z, window = window_stats(tr.movie, tr.timestamp, ds.n_movies, w)
    return {**apply(f, z, beta, mult), "trend_window": window}  # (the run's record: a movie added later's z)


def served_window(train_cfg, timed: bool) -> float:
    """The window a served term counts: train.als_trend_window (auto outside a selection: the default); 1 (all
    the ratings) without timestamps."""
    if not timed:
        return 1.0
    return DEFAULT_WINDOW if train_cfg.als_trend_window == "auto" else float(train_cfg.als_trend_window)


def settled(train_cfg, has_valid: bool, timed: bool, where, say: bool = True) -> dict | None:
    """The train.als_trend* values where nothing is to be chosen on valid ({} where all are numbers already),
    or None where :func:`choose` is to choose: all set, 0, or no valid rows. Without timestamps the popularity is
    counted over all the training ratings (window 1; a window below 1 set is warned of). ``where``: the dataset,
    for it; ``say``: whether to warn (torchrun's rank 0 alone)."""
    beta, window, gamma = train_cfg.als_trend, train_cfg.als_trend_window, train_cfg.als_trend_activity
    fixed = {}
    if not timed:
        if window not in ("auto", 1, 1.0) and beta != 0 and say:
            log.warning("train.als_trend_window %g counts nothing here: dataset '%s' has no timestamps, so the "
                        "popularity is counted over all the training ratings (window 1)", float(window), where)
        if window != 1.0:
            fixed["train.als_trend_window"] = 1.0
        window = 1.0
    if beta != "auto" and window != "auto" and gamma != "auto" and (beta == 0 or not has_valid):
        return fixed  # (a weight set with valid rows is scored there by choose: the selection's valid score is
    if beta == 0 or not has_valid:  # the served blend's; a review: train said the model alone's as the blend's)
        return {"train.als_trend": 0.0 if beta == "auto" else beta,
                "train.als_trend_window": DEFAULT_WINDOW if window == "auto" else window,
                "train.als_trend_activity": 0.0 if gamma == "auto" else gamma}
    return None


def choose(ds, train_cfg, f: dict, on_valid, metric: str, higher: bool,
           window_zs=None, counts=None, n0: float | None = None,
           paired=None) -> tuple[float, float, float, float | None]:
    """(beta, window, activity gamma, its valid score, or None where the model alone stays) on the selection's
    factors ``f`` (fit on ``ds``'s train rows); ``on_valid(f) -> metrics``. train.als_trend auto: every window
    at each beta of :data:`SCREEN` (gamma 0), then gamma 1 at the best window and each beta of
    :data:`ACTIVITY_SCREEN`; where one beats the model alone by more than
    :data:`MARGIN`, every beta of :data:`BETAS` at the best window and gamma, then (gamma 1 best) the gammas of
    :data:`ACTIVITY_FINE` at the best beta, the best kept; else 0 (the model alone). A number: that weight, its
    window and gamma the best on valid where auto (a number set is never turned into 0: a review). Without
    timestamps the one window is 1 (all the ratings). ``window_zs``: a window's z (torchrun's ranks: from counts
    summed over them), else :func:`window_z` of ``ds``'s train rows; ``counts``: the training ratings of each of
    ``f``'s users, ``n0`` their :func:`typical_count` (the ranks' own; else ``ds``'s); ``paired(fa, fb)``: (the
    mean, its standard error) of the per-user valid differences of two factor sets (:func:`paired_sums`), or
    None where it cannot tell; activity above 0 must pass it (without it, the margin alone)."""
    tr = ds.splits["train"]
    timed = tr.timestamp is not None
    if not timed:
        windows = (1.0,)
    else:
        windows = WINDOWS if train_cfg.als_trend_window == "auto" else (float(train_cfg.als_trend_window),)
    gammas = ACTIVITY if train_cfg.als_trend_activity == "auto" else (float(train_cfg.als_trend_activity),)
    if counts is None:
        counts, n0 = np.bincount(tr.user, minlength=ds.n_users), typical_count(len(tr), ds.n_users)
    auto = train_cfg.als_trend == "auto"
    g = scaled(f)
    zs = {w: window_zs(w) if window_zs is not None else window_z(tr.movie, tr.timestamp, ds.n_movies, w)
          for w in windows}
    search = _Search(f, g, zs, counts, n0, on_valid, metric, higher, paired, timed)
    if not auto:
        return _chosen_at(search, float(train_cfg.als_trend), train_cfg.als_trend_activity, windows, gammas)
    return _chosen_auto(search, train_cfg.als_trend_activity, windows, gammas)


class _Search:
    """The blends :func:`choose` scores on valid, each keyed (window, beta, gamma): the factors blended, each
    key's valid score in ``tried`` (``base``: the model alone's), the best of some, and the lines said of them."""

    def __init__(self, f: dict, g: dict, zs: dict, counts, n0, on_valid, metric: str, higher: bool, paired,
                 timed: bool):
        self.f, self.g, self.zs, self.counts, self.n0 = f, g, zs, counts, n0
        self.on_valid, self.metric, self.higher, self.paired, self.timed = on_valid, metric, higher, paired, timed
        self.users: dict = {}  # one gamma's user table at a time (a copy of the users' each: at 1M x 128, 512 MB)
        self.tried: dict = {}
        self.base: float | None = None

    def blend(self, w: float, b: float, a: float) -> dict:
        users = self.users
        if a not in users:
            m = activity(self.counts, a, self.n0)
            users.clear()
            users[a] = self.g["user_factors"] if m is None else self.g["user_factors"] * m[:, None]
        return with_bias({**self.g, "user_factors": users[a]}, self.f, self.zs[w], b)

    def score(self, w: float, b: float, a: float) -> float:
        return float(self.on_valid(self.blend(w, b, a)).get(self.metric, float("nan")))

    def best_of(self, keys) -> tuple:
        tried = self.tried
        return max(keys, key=lambda k: tried[k] if self.higher else -tried[k])

    def beats(self, score: float, ref: float) -> bool:
        """Whether ``score`` beats ``ref`` by MARGIN."""
        return score > ref * (1 + MARGIN) if self.higher else score < ref * (1 - MARGIN)

    def clear_of(self, key, ref: float, other) -> bool:
        """Whether activity ``key`` beats ``ref`` (the score of ``other``, a blend key weighing every user alike,
        or None: the model alone) by MARGIN and by ACTIVITY_Z paired standard errors."""
        clear = self.beats(self.tried[key], ref)
        if clear and self.paired is not None:  # beyond two paired standard errors over the same valid users
            got = self.paired(self.blend(*key), self.blend(*other) if other is not None else self.f)
            if got is not None:
                mean, se = got
                clear = (mean > ACTIVITY_Z * se) if self.higher else (mean < -ACTIVITY_Z * se)
                log.debug("als_trend: activity %g against every user alike, paired valid %s %+.4f (SE %.4f)",
                          key[2], self.metric, mean, se)
        return clear

    def said(self, keys) -> str:
        tried = self.tried
        return ", ".join(f"{tried[k]:.4f} at {k[1]:g}" + (f" over the latest {k[0]:g}" if self.timed else "") +
                         (f", activity {k[2]:g}" if len(set(x[2] for x in keys)) > 1 else "") for k in keys)

    def weighed(self, what: str, keys) -> None:
        """One line as each step of auto's search is scored (a known gap: train said nothing while it weighed
        them): its candidates' valid scores by window, then weight or activity, and how many were scored so far."""
        tried, metric, timed = self.tried, self.metric, self.timed

        def where(w: float, a: float) -> str:
            return ((" over all the ratings" if w >= 1 else f" over the latest {100 * w:g}%") if timed else "") + \
                (f", activity {a:g}" if a else "")

        if len({k[1] for k in keys}) == 1 and len({k[2] for k in keys}) > 1:  # the activities at one weight
            text = f"{what} at weight {keys[0][1]:g}{where(keys[0][0], 0)}: valid {metric} " + ", ".join(
                f"{tried[k]:.4f} at {k[2]:g}" for k in keys)
        elif len({(k[0], k[2]) for k in keys}) == 1:  # the weights at one window and activity
            text = f"{what}{where(keys[0][0], keys[0][2])}: valid {metric} " + ", ".join(
                f"{tried[k]:.4f} at {k[1]:g}" for k in keys)
        else:  # the weights at each window
            groups: dict = {}
            for k in keys:
                groups.setdefault((k[0], k[2]), []).append(k)
            text = f"{what}: valid {metric} " + "; ".join(
                ", ".join(f"{tried[k]:.4f} at {k[1]:g}" for k in ks) + where(*wa) for wa, ks in groups.items())
        log.info("als_trend auto, %s (the model alone %.4f; %d weighed so far)", text, self.base, len(tried))


def _chosen_at(s: _Search, beta: float, activity_set, windows: tuple, gammas: tuple
               ) -> tuple[float, float, float, float | None]:
    """:func:`choose` under a set weight ``beta``: the window and gamma the best on valid (an activity above 0 kept
    only where it clearly beats every user alike), or a default where no validation user can be scored."""
    s.tried = tried = {(w, beta, a): s.score(w, beta, a) for a in gammas for w in windows}
    done = [k for k in tried if np.isfinite(tried[k])]
    if activity_set == "auto" and done and s.best_of(done)[2] == 1.0:  # around it, as auto does
        w = s.best_of(done)[0]
        tried.update({(w, beta, x): s.score(w, beta, x) for x in ACTIVITY_FINE})
    if not any(np.isfinite(v) for v in tried.values()):  # no valid user to score (all without a vector)
        w = DEFAULT_WINDOW if len(windows) > 1 else windows[0]
        a = 0.0 if len(gammas) > 1 else gammas[0]
        log.info("als_trend %g: no validation user has a trained vector to choose its window or activity on; "
                 "window %g, activity %g", beta, w, a)
        return beta, w, a, None
    best = s.best_of(k for k in tried if np.isfinite(tried[k]))
    flat = [k for k in tried if k[2] == 0 and np.isfinite(tried[k])]
    if activity_set == "auto" and best[2] > 0 and flat and \
            not s.clear_of(best, tried[s.best_of(flat)], s.best_of(flat)):  # as auto's weight (a review: unchecked)
        best = s.best_of(flat)
    if len(tried) > 1:
        log.info("als_trend %g: window %g, activity %g (valid %s %s)", beta, best[0], best[2], s.metric,
                 s.said(list(tried)))
    return beta, best[0], best[2], tried[best]


def _chosen_auto(s: _Search, activity_set, windows: tuple, gammas: tuple) -> tuple[float, float, float, float | None]:
    """:func:`choose` under train.als_trend auto: the screen, then (where it beats the model alone by MARGIN) every
    weight at its best window, the activities around 1, and an activity above 0 kept only where it clearly beats
    every user alike; else 0, the model alone."""
    s.base = base = float(s.on_valid(s.f).get(s.metric, float("nan")))
    tried = _screened(s, windows, gammas)
    finite = [k for k in tried if np.isfinite(tried[k])]
    best = s.best_of(finite) if finite else next(iter(tried))
    if not np.isfinite(base) or not finite or not s.beats(tried[best], base):
        log.info("als_trend auto: chose 0, the model alone (valid %s %.4f; the best with popularity %s, where a "
                 "gain must pass %g%%)", s.metric, base, "none" if not finite else f"{tried[best]:.4f}", 100 * MARGIN)
        return (0.0, DEFAULT_WINDOW if len(windows) > 1 else windows[0],
                0.0 if len(gammas) > 1 else gammas[0], None)
    w = best[0]
    best = _best_weight(s, w, best, activity_set, gammas)
    if activity_set == "auto" and best[2] > 0:  # activity must beat every user alike clearly
        best = _clear_activity(s, best)
        if best is None:
            return 0.0, DEFAULT_WINDOW if len(windows) > 1 else windows[0], 0.0, None
    log.info("als_trend auto: popularity (%s) weighs %g%s: valid %s %.4f against %.4f for the model alone",
             f"the latest {100 * w:g}% of the training ratings" if s.timed and w < 1 else "all the training ratings",
             best[1], f", a user's weight x (n0 / its ratings)^{best[2]:g}" if best[2] else "", s.metric, tried[best],
             base)
    return best[1], w, best[2], tried[best]


def _screened(s: _Search, windows: tuple, gammas: tuple) -> dict:
    """Auto's screen: the first gamma at each window and screened beta, then each other gamma at the best window so
    far; ``s.tried``, said a line a step."""
    # a set gamma above 0 is screened as auto's gamma 1 is, a small weight too (a review: set to 2, the screen's 1
    # and 8 missed the margin and the term was dropped where auto kept 0.25)
    s.tried = tried = {(w, b, gammas[0]): s.score(w, b, gammas[0]) for w in windows
                       for b in (SCREEN if gammas[0] == 0 else ACTIVITY_SCREEN)}
    s.weighed("popularity's weight" + (" in each window" if len(windows) > 1 else ""), list(tried))
    for a in gammas[1:]:  # the other gammas at the best window so far, a smaller beta too: the users' weights
        done = [k for k in tried if np.isfinite(tried[k])]  # spread, so the median user's must be small
        w = s.best_of(done)[0] if done else windows[0]
        step = {(w, b, a): s.score(w, b, a) for b in ACTIVITY_SCREEN}
        tried.update(step)
        s.weighed("popularity's weight", list(step))
    return tried


def _best_weight(s: _Search, w: float, best: tuple, activity_set, gammas: tuple) -> tuple:
    """Every weight of BETAS at window ``w`` and each gamma screened, then (gamma 1 best) the activities around 1 at
    the best weight: the best key."""
    tried = s.tried
    for a in gammas:  # every weight at the best window, at each gamma screened (a review: gamma 1 won the screen by
        step = {(w, b, a): s.score(w, b, a) for b in BETAS if (w, b, a) not in tried}  # 0.0002, and gamma 0's
        tried.update(step)  # sweep, never run, beat its best)
        if step:
            s.weighed("every weight", list(step))
    best = s.best_of(k for k in tried if k[0] == w and k[2] in gammas)
    if activity_set == "auto" and best[2] == 1.0:
        step = {(w, best[1], x): s.score(w, best[1], x) for x in ACTIVITY_FINE}
        tried.update(step)
        s.weighed("the activities around 1", list(step))
        best = s.best_of(k for k in tried if k[0] == w and k[1] == best[1])
    return best


def _clear_activity(s: _Search, best: tuple) -> tuple | None:
    """``best``, an activity above 0, where it clearly beats every user alike and the model alone; else the best
    weighing every user alike where that beats the model alone (said), else None: the model alone (said)."""
    tried, base, higher, metric = s.tried, s.base, s.higher, s.metric
    flat = [k for k in tried if k[2] == 0 and np.isfinite(tried[k])]
    ref = max([base] + [tried[k] for k in flat]) if higher else min([base] + [tried[k] for k in flat])
    if not s.clear_of(best, ref, s.best_of(flat) if flat and tried[s.best_of(flat)] == ref else None):
        if not flat or not s.beats(tried[s.best_of(flat)], base):
            log.info("als_trend auto: chose 0, the model alone (activity %g's valid %s %.4f is not clearly "
                     "above %.4f)", best[2], metric, tried[best], ref)
            return None
        log.info("als_trend auto: activity %g's valid %s %.4f is not clearly above every user alike's %.4f (by "
                 "%g%% and %g paired SE): activity 0", best[2], metric, tried[best], ref, 100 * MARGIN, ACTIVITY_Z)  # (said: a first-hour review
        # found the lower figure chosen, its reason at -v alone)
        best = s.best_of(flat)
    return best
