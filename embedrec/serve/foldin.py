"""A user vector for someone not in the training data: from liked or rated movies (fold-in), or from
demographics alone (models trained with ``features.user``). numpy only."""

from __future__ import annotations

import logging

import numpy as np

from embedrec.data.levels import off_step, step_said
from embedrec.errors import NotFoundError, UsageError, marked, sh_quote, shorten
from embedrec.model.factors import Factors
from embedrec.run import Run
from embedrec.serve.catalogue import Catalogue

log = logging.getLogger("embedrec")

# recommend.foldin_recency (its default in config.RecommendConfig): an als fold-in's weight of a new user's
# movies told in order, 1 + this x position (0 oldest, 1 latest). Chosen on the validation users of
# benchmarks/newusers.py's time protocol (ML-100K users held out of training, each telling its earliest 80%;
# 5 seeds): valid NDCG@10 0.2162 at 2, 0.2203 at 4, 0.2201 at 8, 0.2136 at 16 (BENCHMARKS.md, session 16).


def rated_rows(catalogue: Catalogue, liked=(), rated: dict | None = None,
               scale: tuple[float, float] | None = None, counts: bool = False, strict: bool = False,
               unknown_out: list | None = None, whose: str = "the new user's {} movies",
               levels: list | None = None, names: dict | None = None, check_scale: bool = True) -> dict[int, float]:
    """{movie row: rating} from liked movie ids (rated at the top of the scale) and {movie id: rating}; ratings
    outside ``scale`` or not finite raise UsageError, as do a movie given twice (liked and rated, or twice in
    one of them) and an empty request. ``counts``: a model trained on counts (data.repeats=sum), whose
    --rated values are a new user's counts: any above 0, and a liked movie counts 1 (one event). A movie id the
    model does not know is left out with a warning (a history from a live system names items newer than the
    model: an ops review found 249 of 300 new users' histories refused for one), unless ``strict`` or no movie
    given is known: then NotFoundError names the first and how many more there are. ``unknown_out`` (a list)
    receives the ids left out; ``whose``: the movies given, in that warning ({} their number). ``levels``: the
    values of the training ratings' discrete scale (the run's ``training_ratings.rating_levels``), a rating off
    whose step is used as given, with a warning (:func:`warn_off_step`) naming the movie as ``names`` ({id: as
    given}) has it, where its title words were turned into the id. ``check_scale`` False: any finite value is
    taken (a model whose list no value changes: Recommender.values_ignored)."""
    items: dict[int, float] = {}
    unknown: list[NotFoundError] = []

    def row_of(mid) -> int | None:
        try:
            return catalogue.movie_row(mid)
        except NotFoundError as e:
            if strict or e.kind != "movie":
                raise
            if all(str(x.id) != str(e.id) for x in unknown):  # given twice: said once (a review)
                unknown.append(e)
            return None

    top = 1.0 if counts or not scale else scale[1]
    for mid in liked:
        row = row_of(mid)
        if row is None:
            continue
        if row in items:
            raise UsageError(f"movie '{shorten(mid, 40)}' is liked twice; give each movie once")
        items[row] = top
    liked_rows = set(items)
    checked = {}
    for mid, r in (rated or {}).items():
        r = checked[mid] = checked_rating(mid, r, scale, counts, check_scale)
        row = row_of(mid)
        if row is None:
            continue
        if row in items:
            where = "in both «--liked and --rated|liked and rated»" if row in liked_rows else "rated twice"
            raise UsageError(f"movie '{shorten(mid, 40)}' is {where}; give each movie once")
        items[row] = r
    if unknown and not items:
        if len(unknown) == 1:
            raise unknown[0]
        raise NotFoundError(f"{unknown[0].raw}; nor {'is the other movie' if len(unknown) == 2 else f'are the other {len(unknown) - 1:,} movies'} given ("
                            + ", ".join(f"'{shorten(str(e.id), 40)}'" for e in unknown[1:4])
                            + (" ..." if len(unknown) > 4 else "") + ")", kind="movie",
                            ids=[e.id for e in unknown])
    if unknown_out is not None:
        unknown_out.extend(e.id for e in unknown)
    if unknown:
        shown = ", ".join(f"'{shorten(str(e.id), 40)}'" for e in unknown[:3]) + (
            f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        log.warning("left %d of %s out of the fold-in: %s %s not in the training data (the list comes from the "
                    "others; «--strict|strict=True» refuses an unknown movie instead)", len(unknown),
                    whose.format(len(unknown) + len(items)), shown, "is" if len(unknown) == 1 else "are")
    if not items:
        raise UsageError("give at least one movie with «--liked or --rated|liked= or rated=»")
    if levels and checked and not counts:
        warn_off_step(checked, levels, names)
    return items


def warn_off_step(rated: dict, levels: list, names: dict | None = None) -> None:
    """One warning where ratings of ``rated`` ({movie id: rating}, each checked) are off the step of the
    training ratings' scale (``levels``: data.levels.off_step; 4.7 on a half-star scale): the first named, as
    given (``names``: {id: the title words it was found by}; a code review: 'star wars=4.5' was warned of as
    '50=4.5'), the others counted. They are used as given (a first-hour review: 4.7 on a run of half stars was
    taken silently, where 6 is refused as outside the scale)."""
    off = [(mid, r) for (mid, r), bad in zip(rated.items(), off_step(list(rated.values()), levels)) if bad]
    if not off:
        return
    (mid, r), more = off[0], len(off) - 1
    shown = f"{r:g}" if float(f"{r:g}") == r else repr(r)
    log.warning("«--rated|rated» '%s=%s': %s is not on this model's rating step (%s)%s; %s used as given",
                shorten(str((names or {}).get(mid, mid)), 40), shown, shown, step_said(levels),
                "" if not more else f", nor {'is 1 more' if more == 1 else f'are {more} more'} of the ratings given",
                "they are" if more else "it is")


def rated_example(movies: list, scale: tuple[float, float] | None, counts: bool = False) -> str:
    """A --rated value of ``movies`` (one or two ids, as given or the run's own), for advice: 'm0050=5' or
    'm0001=5,m0002=4', the first at the scale's top, the second a step of 1 below it (within the scale); on a
    model trained on counts (``counts``) 1 each. Title words are quoted for the shell ('star wars=5')."""
    top = 1.0 if counts or not scale else scale[1]
    ratings = (top, top if counts or not scale else max(scale[0], top - 1))
    return ",".join(sh_quote(f"{shorten(str(m), 40)}={r:g}") for m, r in zip(movies, ratings))


def checked_rating(mid, r, scale: tuple[float, float] | None, counts: bool = False,
                   check_scale: bool = True) -> float:
    """A new user's rating ``r`` of movie ``mid`` as a float, or UsageError where it is no rating the model takes
    (:func:`bad_ratings`: not finite; outside ``scale``; on a model trained on counts, ``counts``, not above 0),
    a flag or not a number. ``mid`` is named as the request gave it: a caller that resolves title words to ids
    checks the ratings first, with the words (a first-hour review: 'star wars=0' refused as 'm-0050=0').
    ``check_scale`` False: any finite number (``scale`` only for the advice's example)."""
    top = 1.0 if counts or not scale else scale[1]
    name = shorten(mid, 40)
    e_g = f"e.g. «--rated {rated_example([name], scale, counts)}|rated={{{name!r}: {top:g}}}»"
    if isinstance(r, (bool, np.bool_)):  # a red team: True taken as 1
        raise UsageError(f"«--rated|rated» '{name}': {r!r} is a flag, not a rating; give a number, "
                         f"{e_g}")
    try:
        r = float(r)
    except (TypeError, ValueError):
        raise UsageError(f"«--rated|rated» '{name}': rating {shorten(repr(r), 40)} is not a number, "
                         f"{e_g}") from None
    if bad_ratings(r, scale if check_scale else None, counts):  # which rule it breaks, said
        if not np.isfinite(r):
            raise UsageError(f"«--rated|rated» '{name}={r:g}': the rating must be a finite number, "
                             f"{e_g}")
        if counts:
            raise UsageError(f"«--rated|rated» '{name}={r:g}': this model was trained on counts "
                             f"(data.repeats=sum), so a value is how many times the user chose the movie: give "
                             f"one above 0")
        shown = f"{r:g}" if float(f"{r:g}") == r else repr(r)  # 5.0000001, not 5
        raise UsageError(f"«--rated|rated» '{name}={shown}': {shown} is outside this model's rating "
                         f"scale {scale[0]:g}-{scale[1]:g}; give ratings from {scale[0]:g} to {scale[1]:g}")
    return r


def bad_ratings(values, scale: tuple[float, float] | None, counts: bool = False) -> np.ndarray:
    """Per value of ``values`` (one or an array), whether it is not a rating the model takes: not finite; on a model
    trained on counts (``counts``, data.repeats=sum) not above 0; else outside ``scale`` (where there is one). The
    rule of a request's ratings (:func:`rated_rows`) and of update-users' file (user_update.py)."""
    r = np.asarray(values, np.float64)
    bad = ~np.isfinite(r)
    if counts:
        bad |= r <= 0
    elif scale:
        bad |= (r < scale[0]) | (r > scale[1])
    return bad


def below_min_rating(items: dict[int, float], min_rating: float | None) -> list[int]:
    """The movie rows of ``items`` ({movie row: rating}) rated below the dataset's ``data.min_rating``: ingest
    dropped such ratings from training, so an implicit fold-in leaves them out (the movies stay rated: seen)."""
    return [] if min_rating is None else [m for m, r in items.items() if r < min_rating]


def implicit_weights(items: dict[int, float], scale: tuple[float, float] | None, min_rating: float | None = None,
                     rating_weight: float = 0.0, count_weight: float = 0.0) -> dict[int, float]:
    """{movie row: weight} for an implicit model's fold-in from {movie row: rating}, the ratings taken as training
    took them: those below the dataset's ``data.min_rating`` dropped (ingest dropped them), the rest weighted
    1 + b (r - lo) / (hi - lo) with b = ``train.als_rating_weight`` (als.confidence), so all alike when b is 0.
    Nothing left is a UsageError."""
    low = set(below_min_rating(items, min_rating))
    kept = {m: r for m, r in items.items() if m not in low}
    if not kept:
        raise UsageError(f"«--rated|rated»: every rating is below {min_rating:g}, the lowest this model's dataset "
                         f"keeps (data.min_rating), so the model never saw such ratings; rate at least one movie "
                         f"{min_rating:g} or higher")
    w = dict.fromkeys(kept, 1.0)
    if rating_weight > 0 and scale and scale[1] > scale[0]:
        w = {m: 1.0 + rating_weight * (r - scale[0]) / (scale[1] - scale[0]) for m, r in kept.items()}
    if count_weight > 0:  # train.als_count_weight c on a counts model: w *= 1 + c log(count), as als.confidence
        w = {m: v * (1.0 + count_weight * float(np.log(max(kept[m], 1.0)))) for m, v in w.items()}
    return w


def fold_in(factors: Factors, items: dict[int, float], reg: float = 0.1, alpha: float = 10.0,
            solve: dict | None = None, gram: np.ndarray | None = None, positions: np.ndarray | None = None,
            recency: float = 0.0, implicit: np.ndarray | None = None,
            mean: np.ndarray | None = None, detail: dict | None = None,
            offset: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """(p, b_u, movie rows) for a new user who rated ``items`` ({movie row: value}), movie factors fixed.

    Explicit models (values are ratings): ridge regression of (rating - mu - b_m) on [q_m, 1] gives (p, b_u).
    With SVD++'s terms (``implicit``: the run's y_j), the user's implicit sum z = |N(u)|^-1/2 sum of y_j over the
    rated movies is taken as training's users have it: the regression of (rating - mu - b_m - q_m.z) gives p, and
    the vector is p + z (held-in ML-100K users told their own train+valid ratings: test RMSE 0.8953 against 0.8990
    without z and 0.8971 for their trained vectors; session 36).
    Implicit models (values are weights w, see implicit_weights) repeat the user's half of their own training
    objective, as the run's manifest records it (``solve``), so a new user's vector is on the scale of the
    training users' and lands where theirs would:
    - als (training.als.user_solve): the solve that gave each training user its vector; every movie's unobserved
      weight a0 x the user scale, each rated movie's confidence w (times 1 + g/2 for the recency weight g: the
      mean of a training user's), the L2 frequency-scaled:
      p = (a0 s Q^T Q + Q_S^T W Q_S + reg (n + a0 N)^nu I)^-1 Q_S^T w;
    - softmax: the user's softmax log-likelihood of its movies with the training's L2 on the user vector,
      maximised by Newton's method (:func:`softmax_user`).
    Without it (bpr, or a run saved before the manifest said so): the implicit-ALS solve of Hu, Koren & Volinsky
    (2008) against the fixed movie factors, each movie's confidence 1 + alpha w,
    p = (Q^T Q + alpha Q_S^T W Q_S + reg I)^-1 Q_S^T (1 + alpha w).
    ``gram``: Q^T Q when the caller holds it (:func:`movie_gram_mean`), else computed here; ``mean``: the mean
    movie row likewise, read where the run added recent popularity (``solve["trend"]``: the vector
    is divided by the std of its scores, as training's users were; training.trend).
    ``positions`` (als only): each movie's place in the user's history, 0 (oldest) to 1 (latest), in the order of
    ``items`` (:func:`history_positions`); each weight is then w (1 + ``recency`` x position) instead of
    w (1 + g/2), so the latest movies lead (recommend --ordered).
    ``detail`` (a dict; als and explicit models) receives the solve the vector came from, which explanations split
    its scores by (serve.explain.UserSolve): the movie rows, their weights w (an explicit model's residual ratings
    y), the matrix A and the divisor of the vector (an explicit model's b_u and SVD++ terms too).
    ``offset`` ((f, b_f): the vector and bias :func:`user_from_features` gives a new user's demographics, on a
    model trained with user features): a new user told by both, as a feature model builds a user's vector, its
    features' embeddings plus a vector of its own (LightFM's). The vector is taken as f + r and the same solve
    finds r, its L2 on r (where the fold-in alone puts it on the whole vector): a prior centred on the features'
    vector instead of 0. Explicit: the ridge regression of the ratings less the features' prediction
    (q_m . f + b_f), p = f + r and b_u = b_f + b_r; softmax: the user objective with each movie's logit raised
    by q_m . f (:func:`softmax_user` over b + Q f), p = f + r; the fixed solve:
    A p = Q_S^T (1 + alpha w) + reg f. With no movie, p = f and b_u = b_f exactly; with f = 0 and b_f = 0, each
    is the fold-in alone to the bit. An als model trains no user features (training.als), so takes no offset.
    """
    if offset is not None and not items:  # nothing told beyond the demographics: their vector, as it is
        return offset[0], float(offset[1]), np.zeros(0, np.int64)
    f = None if offset is None else np.asarray(offset[0], np.float64)
    rows = np.array(list(items), dtype=np.int64)
    Qs = np.asarray(factors.movie[rows], dtype=np.float64)
    d = factors.movie.shape[1]
    if factors.explicit:
        bm = factors.movie_bias[rows] if factors.movie_bias is not None else 0.0
        y = np.array([items[r] for r in rows]) - factors.global_mean - bm
        z = 0.0
        if implicit is not None and rows.size:
            z = np.asarray(implicit[rows], dtype=np.float64).sum(axis=0) / np.sqrt(rows.size)
            y = y - Qs @ z
        if f is not None:  # what the demographics predict already: the solve finds the rest
            y = y - (Qs @ f + float(offset[1]))
        X = np.hstack([Qs, np.ones((rows.size, 1))])
        A = X.T @ X + reg * rows.size * np.eye(d + 1)
        sol = _solve(A, X.T @ y)
        if detail is not None:  # the ridge solve, which explanations split a score by (serve.explain)
            detail.update(rows=rows, weights=y, A=A, divisor=1.0, user_bias=float(sol[d]),
                          implicit=None if implicit is None or not rows.size else
                          np.asarray(implicit[rows], dtype=np.float64) / np.sqrt(rows.size))
        if f is not None:
            return (sol[:d] + z + f).astype(np.float32), float(sol[d]) + float(offset[1]), rows
        return (sol[:d] + z).astype(np.float32), float(sol[d]), rows
    w = np.array([items[r] for r in rows], dtype=np.float64)
    kind = (solve or {}).get("loss")
    n_movies = factors.movie.shape[0]
    if kind != "softmax" and gram is None:
        gram, mean = movie_gram_mean(factors)
    if kind == "als":
        if f is not None:
            raise UsageError("an als model is trained without user features, so it has none to fold a new user's "
                             "movies in beside; give «--liked/--rated|liked/rated» alone")
        if positions is not None:  # told in order: the latest movies weigh most
            w = w * (1.0 + recency * np.asarray(positions, np.float64))
        else:  # a training user's confidences were weighed 1 + g x position in time, 0 to 1: a new user's
            # movies, told without times, at the mean, 1 + g / 2
            w = w * untimed_weight(solve)
        return als_vector(factors, solve, gram, mean, rows, w, detail), 0.0, rows
    if kind == "softmax":
        Q = np.asarray(factors.movie, dtype=np.float64)
        b = np.zeros(n_movies) if factors.movie_bias is None else np.asarray(factors.movie_bias, np.float64)
        l2 = max(float(solve["l2"]), SOFTMAX_L2_FLOOR)
        if f is not None:  # each logit raised by q_m . f: the solve's vector is r, the user's f + r
            return (softmax_user(Q, b + Q @ f, rows, w, l2) + f).astype(np.float32), 0.0, rows
        return softmax_user(Q, b, rows, w, l2).astype(np.float32), 0.0, rows
    A = gram + alpha * (Qs * w[:, None]).T @ Qs + reg * np.eye(d)
    rhs = Qs.T @ (1 + alpha * w)
    p = _solve(A, rhs if f is None else rhs + reg * f)  # its L2 reg ||p - f||^2: a pull towards f
    return p.astype(np.float32), 0.0, rows


def untimed_weight(solve: dict) -> float:
    """1 + g / 2 (g: an als run's recency weight, ``solve["recency"]``): the factor of a new user's movies told
    without an order, at the middle of a history, where a training user's rating at place x (0 oldest, 1 latest)
    weighs 1 + g x. A new user's fold-in (:func:`fold_in`) and one update-users adds to the run
    (serve.update.new_user_weights) weigh its movies by it."""
    return 1.0 + float(solve.get("recency", 0.0)) / 2


def als_vector(factors: Factors, solve: dict, gram: np.ndarray, mean: np.ndarray | None, rows: np.ndarray,
               w: np.ndarray, detail: dict | None = None) -> np.ndarray:
    """The user vector of an als run's user solve (``solve``: the run's ``training_ratings.solve``) over the movie
    ``rows`` the user rated, each with its final confidence ``w`` (float64; training.als.confidence's, recency
    included): p = A^-1 Q_S^T w (:func:`als_matrix`), divided by the user's std of scores where the run adds
    recent popularity, times its activity weight, as training.trend scales a training user's. A new user's
    fold-in (:func:`fold_in`) and a known user's re-solve with ratings since training
    (``Recommender.fold_in_parts(user=...)``) share it. ``detail`` (a dict) receives the rows, weights, A and
    the divisor (serve.explain.UserSolve); ``gram``: Q^T Q, ``mean`` the mean movie row (read where None)."""
    rows = np.asarray(rows, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    d = als_columns(solve, factors.movie.shape[1])
    Qs = np.asarray(np.take(factors.movie, rows, axis=0), dtype=np.float64).reshape(rows.size, -1)[:, :d]
    A = als_matrix(solve, gram[:d, :d], Qs, w, factors.movie.shape[0])
    p = _solve(A, Qs.T @ w, "give more rated movies, or retrain with a larger train.als_reg (this solve "
                            "repeats the training's, recommend.foldin_reg does not apply)")
    block = lowpass_block(factors, solve, rows[w > 0])
    if block is not None:  # the low-pass block's columns: w x the sum of a's rows told, no solve (training.lowpass)
        p = np.concatenate([p, block])
    divisor = 1.0
    if float(solve.get("trend", 0.0)) > 0:  # popularity in the movie bias: vectors on the std's scale
        scaled, divisors = trend_scaled(p[None, :], factors.movie, solve, gram,
                                        movie_gram_mean(factors)[1] if mean is None else mean, rows.size)
        p, divisor = scaled[0], float(divisors[0])
    if detail is not None:
        detail.update(rows=rows, weights=w, A=A, divisor=divisor,
                      lowpass=None if block is None else lowpass_rows(factors, solve, rows))
    return p.astype(np.float32)


def als_columns(solve: dict, width: int) -> int:
    """The columns of an als run's tables its user solve fits: all of them, or the first d where the run adds the
    low-pass block (``solve["lowpass"]``, its k columns the last ones; training.lowpass)."""
    rec = solve.get("lowpass")
    return int(rec["d"]) if rec else width


def lowpass_block(factors: Factors, solve: dict, rows: np.ndarray) -> np.ndarray | None:
    """A user's low-pass block from the movie ``rows`` it rated (each trained on: a weight above 0), as training
    gives a training user's: w x the sum of a's rows (training.lowpass.user_block, float64); None where the run
    has no block."""
    rec = solve.get("lowpass")
    if not rec:
        return None
    if factors.lowpass_a is None:
        from embedrec.errors import ArtifactError

        raise ArtifactError("this run records a low-pass block (training_ratings.solve.lowpass) but holds no "
                            "lowpass_a.npy, so a user's block cannot be made; run 'embedrec verify', then train "
                            "again")
    from embedrec.training.lowpass import user_block

    return float(rec["weight"]) * np.asarray(user_block(factors.lowpass_a, rows), np.float64)


def lowpass_rows(factors: Factors, solve: dict, rows: np.ndarray) -> tuple[int, float, np.ndarray]:
    """(d, w, a's rows of ``rows``, float64): what explanations split the block's part of a score by, each rated
    movie j adding w a_j . y_m (serve.explain)."""
    rec = solve["lowpass"]
    return (int(rec["d"]), float(rec["weight"]),
            np.asarray(np.take(factors.lowpass_a, np.asarray(rows, np.int64), axis=0), np.float64))


def trend_scaled(P: np.ndarray, movie: np.ndarray, solve: dict, gram: np.ndarray, mean: np.ndarray,
                 n: int) -> tuple[np.ndarray, np.ndarray]:
    """(the users ``P`` (float64, one row each, every one told ``n`` movies) as an als run that adds recent
    popularity serves them (``solve["trend"]`` > 0; training.trend): each divided by the std of its scores and
    multiplied by its activity weight for ``n`` movies, and each user's divisor of its solved vector); ``P`` itself
    and divisors 1 otherwise."""
    if float(solve.get("trend", 0.0)) <= 0:
        return P, np.ones(P.shape[0])
    from embedrec.training.trend import activity, user_scale

    div = user_scale(P, movie, gram, mean)
    mult = activity(np.array([n]), float(solve.get("trend_activity", 0.0)),
                    float(solve.get("trend_n0", 1.0)))  # a user's weight of it, by the movies it gave
    if mult is not None:
        div = div / float(mult[0])
    return P / div[:, None], div


def als_matrix(solve: dict, gram: np.ndarray, Qs: np.ndarray, w: np.ndarray, n_movies: int) -> np.ndarray:
    """A = a0 s Q^T Q + Q_S^T W Q_S + reg (n + a0 N)^nu I: the matrix of an als user's solve (training.als's user
    half, as the run's ``solve`` records it) over its rated movies' rows ``Qs`` (float64) and weights ``w``;
    ``gram``: Q^T Q of every movie. A new user's fold-in and a known user's explanation (serve.explain) share it."""
    a0 = float(solve["a0"]) * float(solve["user_unobserved"])
    lam = float(solve["reg"]) * (Qs.shape[0] + float(solve["a0"]) * n_movies) ** float(solve["reg_exponent"])
    return a0 * gram + (Qs * w[:, None]).T @ Qs + lam * np.eye(Qs.shape[1])


def _solve(A: np.ndarray, b: np.ndarray, fix: str = "give more rated movies or raise the L2, e.g. "
           "«--set recommend.foldin_reg=0.1|recommend.foldin_reg=0.1» (the default)") -> np.ndarray:
    """np.linalg.solve, a singular A a UsageError naming the L2 that keeps it regular (recommend.foldin_reg
    1e-20 was an internal LinAlgError; a red team)."""
    try:
        return np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        raise UsageError(f"the new user's fold-in solve is singular; {fix}") from None


def history_positions(n: int) -> np.ndarray:
    """Places 0 (oldest) to 1 (latest) of ``n`` movies given oldest first, as training places a user's ratings
    (training.als.confidence: rank / (count - 1); one movie: 0)."""
    return np.arange(n, dtype=np.float64) / max(n - 1, 1)


def movie_gram_mean(factors: Factors) -> tuple[np.ndarray, np.ndarray]:
    """(Q^T Q, the mean movie row), float64, in one pass (training.trend.gram_mean): the unobserved term, and with
    it each new user's std of scores where the run added recent popularity. It reads every movie (a second at
    500K x 128), so a Recommender computes it once and passes it to each fold-in."""
    from embedrec.training.trend import gram_mean

    return gram_mean(factors.movie)


# The L2 of a softmax fold-in at least: without one (train.weight_decay_user 0) the likelihood has no finite
# maximiser, while early stopping kept the training users' vectors finite. On ML-100K a model trained so folds a
# training user's own movies into 80% of that user's top 10 at 0.01 (0.01-0.03 alike; 27% with none; the fixed
# solve of before: 42%).
SOFTMAX_L2_FLOOR = 0.01


def softmax_user(Q: np.ndarray, b: np.ndarray, rows: np.ndarray, w: np.ndarray, l2: float,
                 steps: int = 30, tol: float = 1e-6) -> np.ndarray:
    """The user vector p minimising what a softmax model's training gives one user: the mean over its movies
    (weights ``w``) of -log softmax(Q p + b)[i], plus ``l2`` ||p||^2 (train.weight_decay_user, per example, as
    losses.l2 adds it). Convex in p: damped Newton with the exact Hessian Q^T (diag(pi) - pi pi^T) Q + 2 l2 I
    (d x d), a backtracking line search, from p = 0 (the popularity list), until the gradient is below ``tol``."""
    from numpy.linalg import LinAlgError

    wn = w / w.sum()
    target = (Q[rows] * wn[:, None]).sum(0)  # the told movies' weighted mean vector
    d = Q.shape[1]
    p = np.zeros(d)

    def value(v: np.ndarray) -> tuple[float, np.ndarray]:
        z = Q @ v + b
        top = z.max()
        e = np.exp(z - top)
        total = e.sum()
        return float(top + np.log(total) - wn @ z[rows] + l2 * v @ v), e / total

    f, pi = value(p)
    for _ in range(steps):
        mean = Q.T @ pi
        g = mean - target + 2 * l2 * p
        if np.abs(g).max() < tol:
            break
        H = (Q * pi[:, None]).T @ Q - np.outer(mean, mean) + 2 * l2 * np.eye(d)
        try:
            step = -np.linalg.solve(H, g)
        except LinAlgError:
            step = -g
        t, slope = 1.0, float(g @ step)
        while t > 1e-8:
            f_new, pi_new = value(p + t * step)
            if f_new <= f + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break
        p, f, pi = p + t * step, f_new, pi_new
    return p


def feature_arrays(run: Run) -> list[str]:
    """The names of the arrays user_from_features reads (each feature's embeddings and bias)."""
    feats = run.manifest.get("features") or {}
    keys = [c["key"] for c in feats.get("user", []) if c["key"] in feats.get("embedded", [])]
    return [f"{kind}{k.replace('.', '_')}" for k in keys for kind in ("feature_", "feature_bias_")]


def user_from_features(run: Run, dim: int, values: dict[str, str], told: bool = False) -> tuple[np.ndarray, float]:
    """A vector of length ``dim`` for a new user from demographics alone, e.g. {"age": "25", "gender": "F"}:
    the sum of the run's feature embeddings, plus the one-hot blocks of crosses. ``told``: the user is told by
    liked/rated movies too (the refusal of a run without user features then says to give those alone)."""
    from embedrec.model.features import encode_values

    feats = run.manifest.get("features") or {}
    cols = {c["key"]: c for c in feats.get("user", [])}
    if not cols:
        raise UsageError("this model has no user features; train with e.g. «--set 'features.user=[age, gender]'|"
                         "features.user=[age, gender]» "
                         "on a dataset with demographics (ML-100K, ML-1M)"
                         + (", or drop «--user-features|user_features» to fold in «--liked/--rated|liked/rated» "
                            "alone" if told else ""))
    for name in values:
        if f"user.{name}" not in cols:
            raise UsageError(f"«--user-features|values»: unknown column '{shorten(name, 40)}'; this model has "
                             f"{', '.join(k.split('.')[1] for k in cols)}")
    if "user.age" in cols and values.get("age") is not None:
        _check_age(values["age"])
    edges = {"user.age": feats.get("age_edges"), "movie.decade": feats.get("year_edges")}
    idx = {k: encode_values(feats, k, values.get(k.split(".")[1]), edges) for k in cols}
    for k, i in idx.items():
        given = values.get(k.split(".")[1])
        if given is not None and i == 0 and k not in ("user.age",):
            known = [v for v in cols[k]["vocab"] if v != "unknown"]
            log.warning(marked("--user-features %s=%s", "values[%r]=%r") + ": not a value this model knows; treated as "
                        "unknown (known: %s)",
                        k.split(".")[1], given, ", ".join(map(str, known[:30])) + (" ..." if len(known) > 30 else ""),
                        extra={"marks_only": True})  # the marks are the format's: both terms take the same 3 args
    d = int(run.manifest["model"]["dim"])
    p = np.zeros(dim, dtype=np.float32)
    bias = 0.0
    for key in cols:
        name = key.replace(".", "_")
        if key in feats.get("embedded", []):
            p[:d] += run.array(f"feature_{name}")[idx[key]]
            fb = run.array(f"feature_bias_{name}", optional=True)  # checked, as every run file
            if fb is not None:
                bias += float(fb[idx[key]])
    offset = d
    for a, b in feats.get("crosses", []):
        if a.startswith("user.") and b.startswith("movie."):
            p[offset + idx[a]] = 1.0
            offset += len(cols[a]["vocab"])
    return p, bias


def _check_age(value) -> None:
    """An age in years, 0 to 150, as a number or its text; anything else is a UsageError naming the value."""
    shown = shorten(repr(value), 40)
    try:
        age = float(value)
    except (TypeError, ValueError):
        age = None
    if age is None or isinstance(value, bool):
        why = "expected a number"
    elif not np.isfinite(age) or not 0 <= age <= 150:
        why = "expected an age in years from 0 to 150"
    else:
        return
    raise UsageError(f"«--user-features age={shown}|values['age']={shown}»: {why}, e.g. "
                     "«--user-features age=25|values={'age': 25}»")
