"""A ``Model``'s scores of pairs and their parts: ``predict`` (the score of each (user id, movie id) pair, however
given: pairs, a DataFrame, one user and its movies, or Surprise's keywords ``uid=``, ``iid=``, ``r_ui=None``, read by
``surprise_keywords``; ``PREDICT_MISSING``: what a pair with an unknown id gets, ``PREDICT_ALIASES`` recommend's
word 'popular' for its 'fallback') and ``explain`` (a user's score for a movie split over the movies it rated, by
``results.explained``). ``Model``'s methods of the same names call these. numpy only: serving imports this.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from embedrec.argcheck import choice_arg, count_arg, flag, list_arg, movie_arg
from embedrec.data.ids import one_id, one_user, refuse_frame, then
from embedrec.errors import NotFoundError, UsageError, shorten
from embedrec.model.factors import FALLBACKS
from embedrec.models_lookup import known_row, told_history
from embedrec.results import Predictions, explained
from embedrec.serve.explain import UserSolve
from embedrec.serve.recommender import trained_on
from embedrec.verify import damaged

PREDICT_MISSING = ("fallback", "error", "skip")
# predict's missing='popular': 'fallback' under the name recommend gives its own (an architecture review: the one
# unknown-id word a notebook user tries first was refused here); for an unknown user the fallback is the movie's
# baseline mu + b_m, its popularity term, as an unknown user's recommend list is the most popular movies
PREDICT_ALIASES = {"popular": "fallback"}
class _OnePair:
    """Model.predict's movie when none is given (a pairs list then): shown as '...' in help(), as the docs write
    it (a notebook review: '<object object at 0x...>')."""

    def __repr__(self) -> str:
        return "..."


ONE_PAIR = _OnePair()  # Model.predict(user, movie): the movie given (one pair)


def surprise_keywords(pairs, movie, uid, iid, r_ui) -> tuple:
    """Model.predict's (pairs, movie) from Surprise's keywords ``uid=``, ``iid=``, ``r_ui=None`` where given (a
    known gap: predict(uid=196, iid=242) was a TypeError); each named once, ``r_ui`` None alone."""
    if r_ui is not None:
        raise UsageError(f"predict: r_ui={shorten(repr(r_ui), 30)}: a true rating is not kept (Predictions holds the "
                         "ids, fallback and score); leave r_ui out and compare pred.scores with your ratings, or "
                         "score a run's split with evaluate()")
    if uid is not ONE_PAIR:
        if pairs is not ONE_PAIR:
            raise UsageError("predict: the user given twice (a first argument and uid=); give predict(196, 242) or "
                             "predict(uid=196, iid=242)")
        pairs = uid
    if iid is not ONE_PAIR:
        if movie is not ONE_PAIR:
            raise UsageError("predict: the movie given twice (a second argument and iid=); give predict(196, 242) or "
                             "predict(uid=196, iid=242)")
        if pairs is ONE_PAIR:
            raise UsageError("predict: iid= needs its user: predict(uid=196, iid=242)")
        movie = iid
    if pairs is ONE_PAIR:
        raise UsageError("predict: give (user id, movie id) pairs, predict([(196, 242)]), or one user and its movie, "
                         "predict(196, 242) or predict(uid=196, iid=242)")
    return pairs, movie


def predict(model, pairs: Iterable, movie, *, missing: str, uid, iid, r_ui, words: bool = True) -> Predictions:
    """``Model.predict``: the score of each (user id, movie id) pair, however given (pairs, a DataFrame, one user
    and its movies, Surprise's keywords), with the fallback an unknown id gets by ``missing``. ``words``: warn of
    a known user's movie given in words (a title) on an integer-id model (``predict --pairs`` refuses such a line
    itself)."""
    choice_arg(missing, (*PREDICT_MISSING, *PREDICT_ALIASES), "missing")
    missing = PREDICT_ALIASES.get(missing, missing)
    pairs, movie = surprise_keywords(pairs, movie, uid, iid, r_ui)
    if movie is not ONE_PAIR:  # one user: a movie, or several (predict(196, [242, 302]))
        refuse_frame(movie, "predict(user, movies): expected a movie id or a list of movie ids")
        if isinstance(movie, np.ndarray) and movie.ndim == 0:  # np.array(242): one movie (a review: TypeError)
            movie = movie.item()
        many = not isinstance(movie, (str, bytes)) and hasattr(movie, "__iter__")
        pairs = [(pairs, m) for m in movie] if many else [(pairs, movie)]
    elif isinstance(pairs, (int, float, np.number)) and not isinstance(pairs, bool):  # a review: 'not a flat list of ids' for predict(196)
        raise UsageError(f"predict({shorten(repr(pairs), 30)}) needs a movie too: predict({shorten(repr(pairs), 30)}, "
                         "242), or (user, movie) pairs: predict([(196, 242), (196, 302)])")
    e = model.engine
    if hasattr(pairs, "itertuples"):  # a DataFrame: iterating it gives its column names
        from embedrec.list_metrics import _named_columns

        # userId/movieId, item_id...: as ingest and score_lists take them (a review: MovieLens' own names refused)
        pairs = _named_columns(pairs, None)
        if not {"user_id", "movie_id"} <= set(pairs.columns):
            raise UsageError(f"predict: a DataFrame needs the columns user_id and movie_id (or userId, movieId and "
                             f"the like), not {shorten(list(pairs.columns))}; rename them, or pass "
                             "df[[USER, MOVIE]].to_numpy()")
        users, movies = (pairs[c].to_numpy() for c in ("user_id", "movie_id"))
        if users.dtype.kind in "iu" and movies.dtype.kind in "iu" and \
                all(np.asarray(ids).dtype.kind in "iu" for ids in (e.user_ids, e.movie_ids)):
            # integer ids of an integer-id model: each column looked up whole, the ids as given being the model's
            # (each pair checked and parsed in Python took 1.8 s of 200,000 pairs' 1.9, a review)
            return _predicted(e, e.users.rows(users)[0], e.movies.rows(movies)[0], users, movies, missing)
        pairs = pairs[["user_id", "movie_id"]].itertuples(index=False, name=None)
    if isinstance(pairs, (str, bytes)):  # iterating '196,242' gives its characters
        raise UsageError(f"predict: got the text '{shorten(pairs)}'; give (user id, movie id) pairs, e.g. "
                         "predict([(196, 242)]) (the CLI's --pairs reads such text)")
    try:
        pairs = list(pairs)
        if any(isinstance(p, (str, bytes)) for p in pairs):  # '196' would be read as the pair of its characters
            raise TypeError
        pairs = [tuple(p) for p in pairs]
    except TypeError:
        raise UsageError("predict: expected (user id, movie id) pairs, e.g. predict([(196, 242)]), not a flat "
                         "list of ids") from None
    for p in pairs:
        if len(p) != 2:  # a red team: (1, 6, 3) was taken, its third item dropped
            raise UsageError(f"predict: expected (user id, movie id) pairs, got {shorten(p)}; a DataFrame may have "
                             "other columns (its user_id and movie_id are read)")
    users, movies = [p[0] for p in pairs], [p[1] for p in pairs]
    for n, (u, m) in enumerate(zip(users, movies), 1):
        try:
            one_id(u)
            one_id(m)
        except UsageError as err:
            raise UsageError(f"predict: pair {n} ({shorten(u)}, {shorten(m)}): {err}") from None
    uq, urows, _ = e.users.resolve(users, "skip")
    mq, mrows, _ = e.movies.resolve(movies, "skip")
    return _predicted(e, urows, mrows, uq, mq, missing, words)


def _predicted(e, urows: np.ndarray, mrows: np.ndarray, uq, mq, missing: str, words: bool = False) -> Predictions:
    """:func:`predict`'s answer of the pairs' rows (``urows``, ``mrows``: -1 unknown) and ids (``uq``, ``mq``: as
    given, parsed to the model's types; integer arrays: the model's own ids, as its integer ids are given)."""
    mrows = np.where((mrows >= 0) & e.untrained[np.maximum(mrows, 0)], -1, mrows)  # no training rating: as
    bad = (urows < 0) | (mrows < 0)                                                 # unknown (a review)
    if bad.any() and missing == "error":
        i = int(np.flatnonzero(bad)[0])
        kind, given, ids = ("user", uq[i], e.users) if urows[i] < 0 else ("movie", mq[i], e.movies)
        given = given.item() if isinstance(given, np.generic) else given
        raise NotFoundError(then(ids.unknown_text(given), "pass missing='fallback' or missing='skip'"), kind=kind,
                            id=given)
    if words and bad.any() and np.asarray(e.movie_ids).dtype.kind in "iu":  # text no id of this model's can be
        from embedrec.data.ids import is_integer_text

        titles = [m for m, r, ur in zip(mq, mrows, urows) if r < 0 and ur >= 0 and isinstance(m, str)
                  and not is_integer_text(m) and any(c.isalpha() for c in m)]  # (a known user's movie in words)
        if titles:  # (a review: predict(uid=196, iid='star wars') answered NaN without a word, where explain found it)
            import logging

            logging.getLogger("embedrec").warning(
                "predict: %s of the movies given (%s) can be no movie id of this model (its ids are integers): %s; a "
                "title's id is «embedrec recommend --movie TITLE|m.find_movie(title)»'s", f"{len(titles):,}",
                shorten(repr(titles[0]), 40), "left out" if missing == "skip" else "answered by the fallback")
    keep = ~bad if missing == "skip" else np.ones(len(urows), bool)
    urows, mrows = urows[keep], mrows[keep]
    scores, codes = e.factors.predict_fallback(urows, mrows)
    offsets = e.prior_offsets(urows, mrows)  # a user update-users added: its list's popularity prior (serve.prior)
    if offsets is not None:
        scores = scores + np.where((urows >= 0) & (mrows >= 0), offsets, 0.0)
    # a score of a known pair that is not finite: its user's row named where that is the cause (a NaN row or bias,
    # recommend's line), else the sum (finite rows beyond float32). Checked only then: the rows' check on every
    # request cost 14% of a one-pair predict (a review), and a NaN row or bias always gives a NaN score. (A
    # fallback's NaN is its "no score", e.g. a ranking model's unknown movie.)
    over = (urows >= 0) & (mrows >= 0) & ~np.isfinite(scores)
    if over.any():
        e.check_user_rows(urows[over & (urows >= 0)])  # (the movie rows were checked as the model opened)
        i = int(np.flatnonzero(over)[0])
        given = np.asarray(uq, object)[keep][i], np.asarray(mq, object)[keep][i]
        raise damaged(e.run, f"the score of user {given[0]} for movie {given[1]} is not finite (NaN or inf)")
    if isinstance(uq, np.ndarray) and isinstance(mq, np.ndarray):  # (integer ids: each the model's as given)
        uid, mid = uq[keep].tolist(), mq[keep].tolist()
    else:
        uid = [q if r < 0 else e.users.raw(r) for q, r in zip(np.asarray(uq, object)[keep], urows)]
        mid = [q if r < 0 else e.movies.raw(r) for q, r in zip(np.asarray(mq, object)[keep], mrows)]
    return Predictions(uid, mid, scores, [FALLBACKS[c] for c in codes],
                       (np.asarray(e.user_ids).dtype.kind, np.asarray(e.movie_ids).dtype.kind))


def explain(model, user, movie, n: int, *, liked: Iterable, rated: dict | None, ordered: bool, strict: bool,
            prior="auto"):
    """``Model.explain``: a known user's (its recorded solve) or a new user's (folded in from ``liked``/``rated``)
    score for each movie split over the movies it rated, by ``results.explained``."""
    e = model.engine
    n = count_arg(n, "n", 1)
    ordered, strict = flag(ordered, "ordered"), flag(strict, "strict")
    given = not (liked is None or isinstance(liked, tuple) and not liked) or rated is not None  # (an array: no ==)
    if movie is None:
        raise UsageError("explain: give the movie to explain, e.g. explain(196, 242), or explain(movie=242, "
                         "liked=[50, 181]) for a new user")
    if user is None and not given:
        raise UsageError("explain: give a user id, or a new user's liked=/rated= movies (both: a known user "
                         "with ratings since training)")
    many = isinstance(movie, (list, tuple)) or type(movie).__name__ in ("ndarray", "Series", "Index")
    rows = []
    for one in (list_arg(movie, "explain") if many else [movie]):
        one = movie_arg(one, "explain", "196, 242) or explain(196, 'star wars'")
        # text by find_movie's rule, as similar() and resolve_movies() read theirs (a review: the old loop)
        rows.append(e.find_movie(one) if isinstance(one, str) else e.movie_row(one))
    e.explainable(new_user=user is None)  # an als model, or a new user's explicit one (before its solve)
    if user is not None and not given:
        one_user(user, "e.g. explain(196, 50) (recommend([196, 186]).explain() explains several users' lists)")
        _, urows, _ = e.users.resolve([user], "error", lambda: trained_on(model.engine) + "«explain a new user with "
                                      "--liked/--rated|pass liked= or rated= for a new user»")
        solve, who = e.known_solve(int(urows[0]), prior), e.users.raw(int(urows[0]))
    else:  # as recommend_new folds the user in (titles resolved, unknown movies left out and said)
        row = None if user is None else known_row(model, user, ordered)
        if ordered and any(isinstance(x, (set, frozenset)) for x in (liked, rated)):
            raise UsageError("ordered=True needs the history in order, oldest first: a list (or a dict of "
                             "ratings), not a set")
        history = told_history(model, liked, rated, strict=strict)  # names: {id: the words given}, for a warning
        detail: dict = {}
        p, _, _, _ = e.fold_in_parts(history.liked, history.rated, ordered=ordered, strict=strict, unknown=[],
                                     detail=detail, user=row, names=history.names, step_warned=not history.mapped,
                                     from_file=history.from_file)
        # a new user's list, or that of one update-users added (a new user told more): its told movies
        told = int(np.size(detail.get("rows", ()))) if "rows" in detail and (
            row is None or e.added_rows([row]).size) else 0
        solve = UserSolve(vector=p, **detail, prior=e.new_user_prior(p, told, prior))  # leans to the popular
        who = None if row is None else e.users.raw(row)

    out = explained(e, solve, who, np.asarray(rows, np.int64), n)
    return out if many else out[0]
