"""A known user's vector re-solved with ratings made since training, against the fixed movie factors (implicit's
``recommend(..., recalculate_user=True)``): ``recommend --user 196 --liked 50,181``. numpy only.

An als run records how its final user solve weighed each of a user's training ratings (run_layout.SOLVE_WEIGHTS: the
confidence, the rating weight and the recency weight at the rating's place in time, 0 for a movie seen but not
trained on), so the re-solve is that solve (serve.foldin.als_vector) over those weights plus one per new rating:
the new ones weighed as training weighs a rating (serve.foldin.implicit_weights) at the latest place in the
user's history (1 + g, g the run's recency weight), since they came after every training rating. With no new
rating it gives the served vector, up to what training's few conjugate-gradient steps left of the exact solve.
Other implicit models fold the user in as they fold in a new user (serve.foldin.fold_in) over the movies the run
saw the user rate (every one weighed 1, as training took them) and the new ones. An explicit model's run keeps
which movies its users rated, not their ratings, which a regression of ratings needs: refused.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from embedrec.data.ids import py_id
from embedrec.errors import ArtifactError, UsageError
from embedrec.serve import foldin
from embedrec.threads import blas_threads

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.serve.recommender import Recommender

log = logging.getLogger("embedrec")


def check_resolvable(engine: Recommender, lasting: bool = False) -> None:
    """Refuse a model whose known users cannot be re-solved as its training solved them, alike for a request's
    re-solve (:func:`known_fold_in`) and a lasting one (``lasting``: ``embedrec update-users``, user_update.py,
    whose advice differs): an explicit model (its run keeps which movies each user rated, not the ratings) and an
    als run saved before its manifest recorded the solve; where ``lasting``, also a model other than als (its
    users fitted by gradient steps) and an als run without its recorded weights (a request's re-solve meets that
    one where it reads them: :func:`trained_pairs`)."""
    if engine.explicit:
        raise UsageError("this model predicts ratings (model.objective: explicit), and its run keeps which movies "
                         "each user rated but not the ratings, which re-solving "
                         + ("its users needs (update-users updates and adds the users of an als run alone); "
                            "answer a new user per request («recommend --rated ...|recommend_new(rated=...)»), or "
                            "train again with the new ratings" if lasting else
                            "a user's vector needs; give the user's whole history as a new user's, «--rated|"
                            "recommend_new(rated=...)» without «--user|user=», or train again with the new "
                            "ratings"))
    if (engine.training_ratings.get("solve") or {}).get("loss") != "als":
        if engine.loss == "als":  # a run saved before its manifest recorded the solve
            raise UsageError("this als run was saved before embedrec recorded its users' solve, so its users cannot "
                             "be re-solved as training solved them; train it again")
        if lasting:
            raise UsageError(f"update-users re-solves an als run's users as its training solved them (the user half "
                             f"of its alternating least squares), and solves the users it adds alike; this model "
                             f"({engine.loss or 'its loss unknown'}) fits its user vectors by gradient steps, which a "
                             f"re-solve does not repeat: answer with the new ratings per request («recommend --user U "
                             f"--liked/--rated ...|recommend_new(user=U, liked=...)», a new user without «--user|"
                             f"user=»), or train again with them")
    if lasting and engine.solve_arrays() is None:
        raise unrecorded_solve(lasting)


def unrecorded_solve(lasting: bool = False) -> ArtifactError:
    """The error for an als run that does not record its users' solve weights (run_layout.SOLVE_WEIGHTS), with the advice
    of a request's re-solve or (``lasting``) update-users'."""
    return ArtifactError("this run does not record how its users' solve weighed their ratings (solve_weights.npy: "
                         "runs trained before embedrec wrote it, in one process or on ranks, lack it), so "
                         + ("update-users can neither re-solve its users nor add new ones; "
                            "train the run again, or answer a new user per request («recommend --rated "
                            "...|recommend_new(rated=...)»)" if lasting else
                            "a known user cannot be re-solved with new ratings; train the run again, "
                            "or give the user's whole history as a new user's «(--liked/--rated without --user)|"
                            "(recommend_new without user=)»"))


def new_solve_pairs(engine: Recommender, row: int, movies: np.ndarray, values: np.ndarray,
                    seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(new, solved): masks over known user ``row``'s ratings since training (``movies``, movie rows; ``values``,
    their ratings), the rules a request's re-solve (:func:`known_fold_in`) and update-users' (user_update.py)
    share. new: a movie not among the user's seen ones (``seen``, its rows; default the run's: a movie it rated
    before, in training or an earlier update, keeps what the run made of it); solved: new and entering the user's
    solve, of a movie with training ratings and rated at or above the dataset's data.min_rating (training left
    such ratings out; they stay seen)."""
    movies = np.asarray(movies, np.int64)
    seen = engine.seen(row).astype(np.int64) if seen is None else seen
    new = ~np.isin(movies, seen)
    solved = new & ~engine.untrained[movies]
    min_rating = engine.training_ratings["min_rating"]
    if min_rating is not None:
        solved &= np.asarray(values, np.float64) >= min_rating
    return new, solved


def known_fold_in(engine: Recommender, row: int, items: dict[int, float],
                  detail: dict | None = None) -> tuple[np.ndarray, dict[int, float]]:
    """(the user vector, {movie row: rating} of the new ratings left out) for known user ``row`` given
    ``items`` ({movie row: rating}, the ratings since training, as foldin.rated_rows reads them, those of movies
    without training ratings left out, as Recommender.fold_in_parts leaves them out; empty: the training ratings
    alone), by :func:`new_solve_pairs`' rules: a movie the user rated before (among the run's seen movies for that
    user, an update-users' too) keeps what the run made of it, said in a note; an implicit model leaves out a new
    rating below the dataset's data.min_rating, as training did (returned, as fold_in_parts' are). ``detail`` (a
    dict, als): the solve, as foldin.als_vector gives it (explanations)."""
    check_resolvable(engine)
    seen = engine.seen(row).astype(np.int64)
    movies = np.fromiter(items, np.int64, len(items))
    new, solved = new_solve_pairs(engine, row, movies, np.fromiter(items.values(), np.float64, len(items)), seen)
    if not new.all():
        again = movies[~new].tolist()
        names = ", ".join(str(py_id(engine.movie_ids[m])) for m in again[:5]) + (" ..." if len(again) > 5 else "")
        # (as the run weighs it: training's weight, or an update-users' since, a review: not 'as training weighed')
        log.info("note: user %s rated %s before (%s): kept as the run weighs %s", engine.users.raw(row),
                 "a given movie" if len(again) == 1 else f"{len(again):,} of the given movies", names,
                 "it" if len(again) == 1 else "them")
    left_out = {m: items[m] for m in movies[new & ~solved].tolist()}
    kept = {m: items[m] for m in movies[solved].tolist()}
    t = engine.training_ratings
    if (t.get("solve") or {}).get("loss") == "als":
        new_w = latest_weights(engine, kept)
        return als_resolve(engine, row, np.fromiter(new_w, np.int64, len(new_w)),
                           np.fromiter(new_w.values(), np.float64, len(new_w)), seen, detail), left_out
    if t["min_rating"] is not None:
        raise UsageError(f"this run's seen movies mix the ratings it trained on with those below {t['min_rating']:g} "
                         "(data.min_rating) and keep no ratings to tell them apart, so the user's history cannot "
                         "be folded in; give the user's whole history as a new user's, «--liked/--rated|"
                         "recommend_new(...)» without «--user|user=», or train again with the new ratings")
    new_w = foldin.implicit_weights(kept, engine.scale, None, t["rating_weight"], t.get("count_weight", 0.0)) \
        if kept else {}
    trained = seen[~engine.untrained[seen]] if seen.size else seen
    history = {**dict.fromkeys(trained.tolist(), 1.0), **new_w}
    if not history:
        raise UsageError(f"user {engine.users.raw(row)} has no rated movie this model was trained on and no new "
                         "one to fold in")
    cfg = engine.cfg
    solve_rec = t.get("solve")
    gram = mean = None
    if (solve_rec or {}).get("loss") != "softmax":
        gram, mean = engine.movie_gram()
    with blas_threads(1):
        p, _, _ = foldin.fold_in(engine.factors, history, cfg.foldin_reg, cfg.foldin_alpha, solve_rec, gram,
                                 None, cfg.foldin_recency, None, mean, detail)
    return p, left_out


def latest_weights(engine: Recommender, items: dict[int, float]) -> dict[int, float]:
    """{movie row: its weight in an als run's user solve} of ratings made since training ({movie row: rating},
    none below data.min_rating): weighed as training weighs a rating (foldin.implicit_weights: the rating weight,
    a counts model's count weight) at the latest place in the user's history, 1 + g (g the run's recency weight,
    ``training_ratings.solve.recency``), since they came after every training rating. What the per-request
    re-solve (:func:`known_fold_in`) and the lasting one (``embedrec update-users``, user_update.py, which records
    them in the run's solve weights) give a new rating."""
    if not items:
        return {}
    t = engine.training_ratings
    latest = 1.0 + float((t.get("solve") or {}).get("recency", 0.0))
    w = foldin.implicit_weights(items, engine.scale, None, t["rating_weight"], t.get("count_weight", 0.0))
    return {m: latest * v for m, v in w.items()}


def new_user_weights(engine: Recommender, items: dict[int, float]) -> dict[int, float]:
    """{movie row: its weight in an als run's user solve} of a new user's ratings ({movie row: rating}, none below
    data.min_rating nor of a movie without training ratings): as a new user's per-request fold-in weighs them
    (foldin.implicit_weights, at the middle of a history: foldin.untimed_weight), since nothing places them among
    the training ratings. What ``embedrec update-users`` gives the ratings of a user it adds to the run
    (user_update.py), so that user's vector is the one ``recommend --liked/--rated`` folds in from them."""
    if not items:
        return {}
    t = engine.training_ratings
    mid = foldin.untimed_weight(t["solve"])
    w = foldin.implicit_weights(items, engine.scale, None, t["rating_weight"], t.get("count_weight", 0.0))
    return {m: v * mid for m, v in w.items()}


def als_new_user(engine: Recommender, rows: np.ndarray, w: np.ndarray, detail: dict | None = None) -> np.ndarray:
    """A new user's vector of an als run's user solve (foldin.als_vector) over the movie ``rows`` it rated with
    their weights ``w`` (:func:`new_user_weights`; float64), the movie factors fixed: the solve of a new user's
    fold-in (foldin.fold_in), which :func:`als_resolve` is for a known user. ``detail``: as foldin.als_vector fills
    it (the divisor among it)."""
    gram, mean = engine.movie_gram()
    with blas_threads(1):  # a d x d solve: as a new user's fold-in (recommender_foldin.FOLDIN_SERIAL_MAX)
        return foldin.als_vector(engine.factors, engine.training_ratings["solve"], gram, mean,
                                 np.asarray(rows, np.int64), np.asarray(w, np.float64), detail)


def als_resolve(engine: Recommender, row: int, rows: np.ndarray, w: np.ndarray, seen: np.ndarray | None = None,
                detail: dict | None = None) -> np.ndarray:
    """Known user ``row``'s vector of an als run's final user solve (foldin.als_vector) over the pairs it trained
    on (:func:`trained_pairs`) and the movie ``rows`` with their solve weights ``w`` (:func:`latest_weights`;
    float64), the movie factors fixed. ``detail``: as foldin.als_vector fills it (the divisor among it)."""
    old, w_old = trained_pairs(engine, row, seen)
    rows = np.concatenate([old, np.asarray(rows, np.int64)])
    w = np.concatenate([w_old, np.asarray(w, np.float64)])
    gram, mean = engine.movie_gram()
    with blas_threads(1):  # a d x d solve: as a new user's fold-in (recommender_foldin.FOLDIN_SERIAL_MAX)
        return foldin.als_vector(engine.factors, engine.training_ratings["solve"], gram, mean, rows, w, detail)


def trained_pairs(engine: Recommender, row: int, seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(movie rows, weights) of the pairs an als run's final solve trained known user ``row`` on: the run's seen
    movies for that user with their recorded weights (run_layout.SOLVE_WEIGHTS), those of weight 0 (seen, not trained
    on) left out. ArtifactError where the run records none (trained before it was written)."""
    arrays = engine.solve_arrays()
    if arrays is None:
        raise unrecorded_solve()
    weights = arrays[0]
    seen = engine.seen(row).astype(np.int64) if seen is None else seen
    a, b = int(engine.seen_ptr[row]), int(engine.seen_ptr[row + 1])
    w = np.asarray(weights[a:b], np.float64)
    keep = w > 0
    return seen[keep], w[keep]


def check_movies_addable(engine: Recommender) -> None:
    """Refuse adding movies (update-users' ``new_movies``) to a run whose served movie rows no fold-in can give a
    new movie: one that adds recent popularity (train.als_trend: each movie's bias is its count over a window of the
    training ratings standardised over every movie) without the record of that window (``solve.trend_window``:
    training.trend.window_stats, which a run trained before session 71 lacks)."""
    solve = engine.training_ratings.get("solve") or {}
    if float(solve.get("trend", 0.0)) > 0 and not solve.get("trend_window"):
        raise UsageError("this run adds recent popularity to its lists (train.als_trend: each movie's bias its "
                         "count in the latest training ratings, standardised over every movie) and does not record "
                         "that window (a run trained before embedrec kept it), so no fold-in gives a new movie its "
                         "bias; leave «--new-movies|new_movies=True» out (the new movies' ratings are then left out, "
                         "said), or train again")


def fitted_users(engine: Recommender) -> np.ndarray:
    """The users as the als fit solved them: the served table, times each user's divisor where the run adds recent
    popularity (run_layout.USER_SCALE: training.trend.scaled divides the fitted vectors by it), the served table
    itself otherwise. What a new movie is solved against, as training's movie half solved its movies."""
    arrays = engine.solve_arrays()
    scale = None if arrays is None else arrays[1]
    P = engine.P
    if scale is None or float((engine.training_ratings.get("solve") or {}).get("trend", 0.0)) <= 0:
        return P
    return np.asarray(P, np.float32) * np.asarray(scale, np.float32)[:, None]


def new_movie_bias(engine: Recommender, counts: np.ndarray) -> np.ndarray | None:
    """The movie bias of new movies of ``counts`` ratings each in the run's recent-popularity window (beta z:
    training.trend.z_of_count over the run's recorded window), None where the run adds none."""
    solve = engine.training_ratings.get("solve") or {}
    beta = float(solve.get("trend", 0.0))
    if beta <= 0:
        return None
    from embedrec.training.trend import z_of_count

    bias = (beta * z_of_count(counts, solve["trend_window"])).astype(np.float32)
    if not np.isfinite(bias).all():  # (a re-sealed window's sd of 1e-300: a review)
        raise ArtifactError("a new movie's recent-popularity bias is not finite: this run's record of its window "
                            "(training_ratings.solve.trend_window) holds values no training writes; run 'embedrec "
                            "verify', then train again")
    return bias


CALIBRATION_MOVIES = 200  # trained movies a new movie's unobserved weight is calibrated on (of 5+ trained raters)
CALIBRATION_STEPS = 9  # multipliers tried, from 1 to the users' own scale (train.als_user_unobserved) geometrically


def calibrated_unobserved(engine: Recommender, gram: np.ndarray, d: int) -> float:
    """The multiplier of a0 for a new movie's solve: the one, from 1 to the users' scale s of it
    (train.als_user_unobserved, which their last solve used, after training's last movie half), by which the
    run's own trained movies, folded in from their raters and recorded weights, come back nearest their trained
    rows (summed squared error over up to :data:`CALIBRATION_MOVIES` movies of 5 or more raters, seeded). 1 where s
    is 1. A benchmark found new movies solved at a0 against users solved at 4 a0 in 25% of the top-10 slots where
    they were 7% of the catalogue (3.4% once retrained), at s a0 in none: the trained movies say where between."""
    solve = engine.training_ratings["solve"]
    s = float(solve.get("user_unobserved", 1.0) or 1.0)
    arrays = engine.solve_arrays()
    if s == 1.0 or arrays is None:
        return 1.0
    P = fitted_users(engine)
    n_users, n_movies = int(P.shape[0]), int(engine.Q.shape[0])
    weights = np.asarray(arrays[0])
    idx = np.asarray(engine.seen_idx, np.int64)
    on = weights > 0
    counts = np.bincount(idx[on], minlength=n_movies)
    eligible = np.flatnonzero(counts >= 5)
    if not eligible.size:
        return 1.0
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(eligible, min(CALIBRATION_MOVIES, eligible.size), replace=False))
    at = np.flatnonzero(on & np.isin(idx, sample))  # (the sample's pairs; their users by the CSR's pointers)
    at = at[np.argsort(idx[at], kind="stable")]
    movies, w = idx[at], weights[at].astype(np.float64)
    users = np.searchsorted(np.asarray(engine.seen_ptr, np.int64), at, side="right") - 1
    starts = np.searchsorted(movies, sample)
    ends = np.searchsorted(movies, sample, side="right")
    Q = np.asarray(np.take(engine.Q, sample, axis=0), np.float64)[:, :d]
    a0 = float(solve["a0"])
    reg, nu = float(solve["reg"]), float(solve["reg_exponent"])
    blocks = [(np.asarray(np.take(P, users[a:b], axis=0), np.float64)[:, :d], w[a:b]) for a, b in zip(starts, ends)]
    best, best_err = 1.0, np.inf
    with blas_threads(1):
        for m in s ** np.linspace(0.0, 1.0, CALIBRATION_STEPS):
            err = 0.0
            for (Ps, ws), q in zip(blocks, Q):
                lam = reg * (ws.size + a0 * n_users) ** nu
                A = a0 * m * gram + (Ps * ws[:, None]).T @ Ps + lam * np.eye(d)
                try:
                    err += float(((np.linalg.solve(A, Ps.T @ ws) - q) ** 2).sum())
                except np.linalg.LinAlgError:
                    err = np.inf
                    break
            if err < best_err:
                best, best_err = float(m), err
    return best


def als_new_movies(engine: Recommender, raters: list[tuple[np.ndarray, np.ndarray]]
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows of new movies for an als run's tables (implicit's ``partial_fit_items``): each movie of ``raters``
    ((user rows, their solve weights as training weighs a rating: float64, all above 0) each) solved as training's
    movie half solves a movie against the fixed user vectors P (the served table, every user's row; the run's
    first d columns where it adds the low-pass block):

        q = (a0 P^T P + P_S^T W P_S + reg (n + a0 N)^nu I)^-1 P_S^T w

    (training.als: the unobserved term over every user, the frequency-scaled L2 of n raters; a0 times the
    multiplier :func:`calibrated_unobserved` finds on the run's own movies, as the users' last solve scaled theirs). Where the run adds the low-pass block (training.lowpass: U' = [U, c s x], V' = [V, y], x = R a), the
    movie's block columns are the SVD's fold-in of its column of R, y = M^-1 sum_u x_u / d_u over its raters (d_u
    a rater's trained pairs: its seen pairs of weight above 0, run_layout.SOLVE_WEIGHTS; M = x^T D_U^-1 x, the
    singular values squared on its diagonal for an exact SVD, read from the users' blocks), and its row of a (a new
    user's block reads it) y / n: the rows training's SVD gives a movie of those raters (up to the randomized SVD's
    error: on ML-100K a trained movie's own y folded in so at cosine 0.97-0.99, its als columns at 0.996-0.999). Returns (the rows, float32, a row per movie; a's rows, or None without a block)."""
    solve = engine.training_ratings["solve"]
    P = fitted_users(engine)
    width = int(P.shape[1])
    rec = solve.get("lowpass")
    d = int(rec["d"]) if rec else width
    a0 = float(solve["a0"])
    n_users = int(P.shape[0])
    gram = np.zeros((d, d))
    for s in range(0, n_users, 65536):  # float64 blocks: no float64 copy of the table
        block = np.asarray(P[s:s + 65536, :d], np.float64)
        gram += block.T @ block
    unobserved = a0 * calibrated_unobserved(engine, gram, d)  # (the L2's a0 stays training's)
    out = np.zeros((len(raters), width), np.float32)
    a_rows = None
    if rec:
        weights = np.asarray(engine.solve_arrays()[0])
        owner = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(np.asarray(engine.seen_ptr, np.int64)))
        du = np.bincount(owner[weights > 0], minlength=n_users).astype(np.float64)
        weight = float(rec["weight"])
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(du > 0, 1.0 / du, 0.0)
        M = np.zeros((width - d, width - d))  # x^T D_U^-1 x: the singular values squared (its diagonal, nearly)
        for s in range(0, n_users, 65536):  # x = R a of every user: the served block over its weight
            x = np.asarray(P[s:s + 65536, d:], np.float64) / weight
            M += (x * inv[s:s + 65536, None]).T @ x
        a_rows = np.zeros((len(raters), width - d), np.float32)
    with blas_threads(1):  # d x d solves, one a movie
        for i, (users, w) in enumerate(raters):
            users = np.asarray(users, np.int64)
            w = np.asarray(w, np.float64)
            Ps = np.asarray(np.take(P, users, axis=0), np.float64)[:, :d]
            lam = float(solve["reg"]) * (users.size + a0 * n_users) ** float(solve["reg_exponent"])
            A = unobserved * gram + (Ps * w[:, None]).T @ Ps + lam * np.eye(d)
            try:
                out[i, :d] = np.linalg.solve(A, Ps.T @ w)
            except np.linalg.LinAlgError:
                raise UsageError("a new movie's solve is singular (this run's user vectors hold values too large "
                                 "for it); run 'embedrec verify', then train again") from None
            if rec:
                x = np.asarray(np.take(P, users, axis=0), np.float64)[:, d:] / weight
                y = np.linalg.lstsq(M, (x * inv[users, None]).sum(0), rcond=None)[0]
                out[i, d:] = y
                a_rows[i] = y / users.size
    return out, a_rows
