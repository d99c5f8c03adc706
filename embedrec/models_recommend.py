"""The top-k lists a ``Model`` gives for users and movies, which ``Model``'s methods of the same names call: a known
user's (``recommend``, an unknown one answered as ``missing=`` says), a new user's from the movies they liked or
rated, or a known user's re-solved with ratings since training, or a new user's from both those movies and
demographics (``recommend_new``), a new user's from demographics alone (``recommend_features``), a movie's similar movies (``similar``) and the most popular movies (``popular``), each
over the catalogue's filters (``models_lookup.allowed_rows``) and answered as a ``results.Recommendations``. A
stream of user ids is models_stream.py's; one user's similar users serve/similar_users.py's. numpy only: serving
imports this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np

from embedrec.argcheck import choice_arg, flag, list_arg, movie_arg
from embedrec.data.ids import id_list
from embedrec.errors import NotFoundError, UsageError, shorten
from embedrec.models_lookup import allowed_rows, as_mapping, k_arg, known_row, per_user_exclude, told_history
from embedrec.results import Recommendations
from embedrec.serve import diversify as div
from embedrec.serve.explain import UserSolve
from embedrec.serve.recommender import popular_instead, py_id, trained_on, unknown_summary
from embedrec.serve.stream import unknown_left_out

log = logging.getLogger("embedrec")


def recommend(model, users, k: int | None, *, missing: str | None, exclude_seen: bool, genres: Iterable[str],
              year_min: int | None, year_max: int | None, exclude: Iterable,
              candidates: Iterable | None, prior="auto", diversify: float | None = None) -> Recommendations:
    """``Model.recommend``: each user's top-k, the movies it gave in training left out unless asked; an unknown
    user's by ``missing`` (the config's recommend.fallback where None); ``diversify``: each list re-ranked by
    maximal marginal relevance at that lambda (serve.diversify)."""
    k = k_arg(model, k)
    lam = div.lambda_arg(diversify)
    e = model.engine
    if missing is None:  # a review: er.open(run, cfg) with recommend.fallback=popular still raised, unlike the CLI
        missing = "popular" if getattr(e.cfg, "fallback", "none") == "popular" else "error"
    exclude_seen = flag(exclude_seen, "exclude_seen")
    mapping = as_mapping(exclude)  # (a Series of lists made a dict once)
    per_user = isinstance(mapping, Mapping)
    allowed = allowed_rows(model, genres, year_min, year_max, () if per_user else exclude, candidates)
    query, rows, unknown = e.users.resolve(id_list(users), missing,
                                           lambda: trained_on(model.engine) +  # (made where an id is unknown)
                                           "«use --fallback popular, or --liked/--rated to recommend for a new "
                                           "user|pass missing='skip' or missing='popular', or use "
                                           "recommend_new(liked=...) for a new user»")
    known = rows >= 0
    # {user: movies}: each user's own, beside the seen ones; only the asked users' keys read
    own = per_user_exclude(model, mapping, (rows[known], [q for q, r in zip(query, rows) if r < 0])) \
        if per_user else None  # (no loop over the users where there is no mapping: the hot path)
    own_known, own_unknown = own or ({}, {})
    answers: dict[int, tuple] = {}
    if known.any():
        ids, scores = div.lists(e.factors.movie, lam, k,
                                lambda n: e.recommend_rows(rows[known], n, not exclude_seen, allowed, prior=prior,
                                                           own=own_known))
        answers = {int(r): (i, s) for r, i, s in zip(rows[known], ids, scores)}
    out_q, out_rows, out_scores, fallback = [], [], [], []
    said = 0
    for q, r in zip(query, rows):
        if r >= 0:
            out_q.append(e.users.raw(r))
            ids, scores = answers[int(r)]
        elif missing == "popular":
            out_q.append(q)
            said += 1  # said once for every caller (a review: silent here, a warning in streams and the CLI)
            popular_instead(e.users, q, said)
            ids, scores = div.one(e.factors.movie, lam, k,
                                  lambda n, q=q: e.popular(n, allowed, unknown_left_out(
                                      e, q, not exclude_seen, own_unknown.get(str(q)))))
        else:
            continue
        out_rows.append(ids)
        out_scores.append(scores)
        fallback.append(r < 0)
    unknown_summary(said, True)
    return Recommendations(e, out_q, out_rows, out_scores, fallback, unknown, prior=prior)


def recommend_new(model, liked: Iterable, rated: dict | None, k: int | None, *, ordered: bool,
                  exclude_seen: bool, genres: Iterable[str], year_min: int | None, year_max: int | None,
                  exclude: Iterable, candidates: Iterable | None, strict: bool, user,
                  user_features: dict | None = None, prior="auto", missing: str | None = None,
                  told=None, diversify: float | None = None) -> Recommendations:
    """``Model.recommend_new``: the top-k of a new user folded in from ``liked``/``rated`` (titles resolved, files
    read: models_lookup.told_history, ``missing`` its own), with ``user_features`` on top of its demographics'
    vector, or of a known user ``user`` re-solved with them. ``told``: that history already made (the CLI's,
    which says each title found), ``liked`` and ``rated`` then unread. ``diversify``: as ``recommend``'s."""
    k = k_arg(model, k)
    lam = div.lambda_arg(diversify)
    e = model.engine
    if user_features is not None:
        user_features = _feature_values(user_features, "recommend_new")
        if user is not None:  # refused before the user is looked up: which of the two is meant is the question
            raise UsageError("recommend_new: user_features= tell a new user, user= names a known one (its vector "
                             "re-solved from its own ratings); give one of them")
    ordered, exclude_seen = flag(ordered, "ordered"), flag(exclude_seen, "exclude_seen")
    strict = flag(strict, "strict")
    if ordered and any(isinstance(x, (set, frozenset)) for x in (liked, rated)):
        raise UsageError("ordered=True needs the history in order, oldest first: a list (or a dict of ratings), "
                         "not a set")
    row = None if user is None else known_row(model, user, ordered)
    allowed = allowed_rows(model, genres, year_min, year_max, exclude, candidates)
    # the ratings checked before titles become ids (a refusal names the movie as given: 'star wars=0'); names:
    # {id: the words given}, which a warning names
    told = told if told is not None else told_history(model, liked, rated, missing, strict)
    skipped: list = []  # history ids the model does not know: left out, in the result's unknown (a review)
    detail: dict = {}  # an als solve's parts, which the result's explain() splits its scores by
    p, b, seen, left_out = e.fold_in_parts(told.liked, told.rated, ordered=bool(ordered), strict=bool(strict),
                                           unknown=skipped, detail=None if user_features is not None else detail,
                                           user=row, features=user_features, names=told.names,
                                           step_warned=not told.mapped, from_file=told.from_file)
    if told.watched:  # a rated file's movies without a rating (watched): not folded in, never listed back
        seen = np.union1d(np.asarray(seen, np.int64), np.asarray(told.watched, np.int64))
    if exclude_seen:  # a film the catalogue lists under several ids: none of them listed back (a review: --liked
        twins = e.catalogue.twins(seen)  # 246 listed 268, 'Chasing Amy (1997)' both, first)
        if twins.size:
            seen = np.union1d(np.asarray(seen, np.int64), twins)
    # a new user's list leans to the most popular movies by how few it told (serve.prior; als runs), as does that
    # of a user update-users added (a new user told its ratings once) re-solved with more (a review: it lost it)
    new = row is None or e.added_rows([row]).size > 0
    w = e.prior_weight(int(np.size(detail["rows"])), prior) if new and "rows" in detail else \
        e.prior_weight(0, prior)  # (0: a known user's or another model's, a weight given refused there)
    prior_c = [0.0]  # the prior's multiplier in this user's scores (the same whatever the list's length)

    def ask(n: int) -> tuple:
        if w <= 0:
            return e.recommend_vector(p, b, n, seen if exclude_seen else np.zeros(0), allowed)
        got_ids, got_scores, prior_c[0] = e.recommend_with_prior(p, n, seen if exclude_seen else
                                                                 np.zeros(0, np.int64), w, allowed)
        return got_ids, got_scores

    ids, scores = div.one(e.factors.movie, lam, k, ask)
    c = prior_c[0]
    left_out = {e.movies.raw(r): v for r, v in left_out.items()}
    if left_out:  # said, not dropped silently (a review: the same list as without them, and no word)
        cli = ",".join(f"{m}={v:g}" for m, v in left_out.items())
        lib = "{" + ", ".join(f"{m!r}: {v:g}" for m, v in left_out.items()) + "}"
        log.info("note: «--rated %s|rated %s» left out of the fold-in: this model was trained on the ratings from "
                 "%g up (data.min_rating), so it never saw a lower one (rated all the same: not in the list)",
                 shorten(cli), shorten(lib), e.training_ratings["min_rating"])
    solve = UserSolve(vector=p, **detail, prior=(c, e.prior_z) if c else None) if detail else None
    # the titles missing='skip' left out are unknown too (a review: in the warning alone, so code reading unknown
    # missed them), before the ids the fold-in left out
    skipped = [*[t for t in told.skipped if t not in skipped], *skipped]
    return Recommendations(e, [None if row is None else e.users.raw(row)], [ids], [scores], [False], skipped,
                           left_out=left_out, solve=solve)


def recommend_features(model, values: dict, k: int | None, *, genres: Iterable[str], year_min: int | None,
                       year_max: int | None, exclude: Iterable,
                       candidates: Iterable | None, diversify: float | None = None) -> Recommendations:
    """``Model.recommend_features``: the top-k of a new user from demographics alone (``diversify``: as
    ``recommend``'s)."""
    values = _feature_values(values, "recommend_features", "values")
    k = k_arg(model, k)
    lam = div.lambda_arg(diversify)
    e = model.engine
    allowed = allowed_rows(model, genres, year_min, year_max, exclude, candidates)
    p, b = e.user_from_features(values)
    ids, scores = div.one(e.factors.movie, lam, k, lambda n: e.recommend_vector(p, b, n, np.zeros(0), allowed))
    return Recommendations(e, [None], [ids], [scores], [False], [])


def _feature_values(values, where: str, name: str = "user_features") -> dict:
    """A new user's demographics as a dict {column: value}; anything else (text, a list) a UsageError."""
    if not hasattr(values, "items") or isinstance(values, (str, bytes)):
        raise UsageError(f"{where}: {name}={shorten(repr(values), 40)}: give {{column: value}}, e.g. "
                         "{'age': 25, 'gender': 'F'}")
    return dict(values.items())


SIMILAR_MISSING = ("error", "skip")  # what an unknown query of similar and similar_users gets (no popular list)


def similar_missing(missing: str, call: str) -> None:
    """``missing=`` of ``similar``, ``similar_users`` and ``audience``: 'error' or 'skip'; 'popular', recommend's
    third way, is refused saying why (a list of the most popular movies is no answer to 'which are like this
    one')."""
    if missing == "popular":
        raise UsageError(f"{call}: missing='popular' gives an unknown user the most popular movies (recommend); an "
                         f"unknown query of {call} has nothing to answer from: pass missing='skip' to leave it out, or "
                         "missing='error'")
    choice_arg(missing, SIMILAR_MISSING, "missing")


def similar(model, movie, k: int | None, *, genres: Iterable[str], year_min: int | None, year_max: int | None,
            exclude: Iterable, candidates: Iterable | None, missing: str = "error") -> Recommendations:
    """``Model.similar``: the k movies nearest each of ``movie`` (ids or title words) by cosine similarity; a query
    naming no movie of the model by ``missing``: 'error' (NotFoundError), 'skip' (left out, in the result's
    ``unknown``, as recommend's missing='skip' leaves an unknown user out)."""
    similar_missing(missing, "similar")
    k = k_arg(model, k)
    e = model.engine
    allowed = allowed_rows(model, genres, year_min, year_max, exclude, candidates)
    many = isinstance(movie, (list, tuple)) or type(movie).__name__ in ("ndarray", "Series", "Index")
    queries, out_ids, out_scores, unknown = [], [], [], []
    done: dict = {}  # a movie asked again: its list once (a red team's 100,000 lines of one movie: 18 s, each searched)
    for one in (list_arg(movie, "similar") if many else [movie]):  # a review: one id only, no titles
        one = movie_arg(one, "similar", "50) or similar('star wars'")
        # text: an id where it is one exactly, else title words (find_movie; ambiguity is a UsageError listing
        # the candidates), as recommend_new's liked= and rated= read theirs (resolve_movies)
        try:
            row = e.find_movie(one) if isinstance(one, str) else e.movie_row(one)
        except NotFoundError:  # an unknown id, or words no title holds (an ambiguous title stays a UsageError)
            if missing == "error":
                raise
            unknown.append(py_id(one))
            continue
        if row not in done:
            done[row] = e.similar(row, k, allowed)
        ids, scores = done[row]  # (the same arrays, read-only in the result, for each time it is asked)
        queries.append(py_id(e.movie_ids[row]))
        out_ids.append(ids)
        out_scores.append(scores)
    return Recommendations(e, queries, out_ids, out_scores, [False] * len(queries), unknown,
                           query_column="movie_id_query")


def popular(model, k: int | None, *, genres: Iterable[str], year_min: int | None, year_max: int | None,
            exclude: Iterable, candidates: Iterable | None) -> Recommendations:
    """``Model.popular``: the k movies with the most training ratings (or the trend's, where the model adds it)."""
    e = model.engine
    ids, scores = e.popular(k_arg(model, k), allowed_rows(model, genres, year_min, year_max, exclude, candidates))
    return Recommendations(e, [None], [ids], [scores], [True], [])


def audience(model, movie, k: int | None, *, exclude_seen: bool = True, candidates: Iterable | None = None,
             exclude: Iterable = (), missing: str = "error"):
    """``Model.audience``: for each of ``movie`` (an id or title words, or a list of them), the k users whose own
    lists score it highest (serve.audience), its raters left out unless not ``exclude_seen``; ``candidates`` and
    ``exclude``: user ids, as similar_users' (serve.similar_users.allowed_users); a query naming no movie of the
    model by ``missing``, as :func:`similar`'s."""
    from embedrec.results import Audience
    from embedrec.serve.audience import audience as audience_rows
    from embedrec.serve.similar_users import allowed_users

    similar_missing(missing, "audience")
    k = k_arg(model, k)
    exclude_seen = flag(exclude_seen, "exclude_seen")
    e = model.engine
    many = isinstance(movie, (list, tuple)) or type(movie).__name__ in ("ndarray", "Series", "Index")
    rows, unknown = [], []
    for one in (list_arg(movie, "audience") if many else [movie]):
        one = movie_arg(one, "audience", "50) or audience('star wars'")
        try:
            rows.append(e.find_movie(one) if isinstance(one, str) else e.movie_row(one))
        except NotFoundError:  # an unknown id, or words no title holds (an ambiguous title stays a UsageError)
            if missing == "error":
                raise
            unknown.append(py_id(one))
    allowed = allowed_users(e, candidates, exclude, "audience")
    got_rows, got_scores = audience_rows(e, rows, k, allowed, include_seen=not exclude_seen)
    return Audience(e, [py_id(e.movie_ids[r]) for r in rows], got_rows, got_scores, unknown)
