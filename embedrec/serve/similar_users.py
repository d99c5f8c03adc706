"""The users most like a user (``Model.similar_users``, ``recommend --similar-users``; implicit's
``similar_users``): the cosine similarity of the served user vectors, as ``similar`` ranks movies by theirs, and,
so that a person can check an answer, how many movies each listed user rated and how many of those the query
user rated too, counted over the pairs the model was trained on (the run's seen pairs: train and valid, and those
rated below data.min_rating; the test split is held out) and those update-users added (also seen pairs): what
``history`` lists but its test rows. ``of_ids``: the answer ``Model.similar_users`` wraps in a SimilarUsers, the
query ids checked and resolved. numpy only.
"""

from __future__ import annotations

import numpy as np

from embedrec.verify import check_finite, check_seen_rows


def similar_users(engine, rows: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[list[np.ndarray],
                                                                                            list[np.ndarray]]:
    """For each user row of ``rows``: the ``k`` user rows nearest by cosine similarity (the user itself left out,
    and every user whose vector is zero: no training rating, nothing to compare), best first, equal scores in row
    order, and their similarities (float32): ``Factors.similar_users``, the cosine top-k similar movies rank by too,
    over the unit user table made once per opened model. ``engine``: the Recommender (its factors, its run for the
    one error a table that is not finite gets). ``allowed``: the only user rows a list may hold (None: every
    user)."""
    rows = np.asarray(rows, np.int64)
    P = engine.P
    check_finite(engine.run, np.asarray(P[rows]), lambda i: f"user {engine.users.raw(int(rows[i]))}'s embedding is")
    out_rows: list[np.ndarray] = []
    out_scores: list[np.ndarray] = []
    for row in rows.tolist():
        t, v = engine.factors.similar_users(row, k, allowed)
        if not np.isfinite(v).all():  # a NaN row elsewhere in the table (re-sealed after an edit): said, never listed
            bad = t[~np.isfinite(v)]
            check_finite(engine.run, np.asarray(P[bad]), lambda i, bad=bad: f"user {engine.users.raw(int(bad[i]))}'s "
                         "embedding is")
        out_rows.append(t)
        out_scores.append(v)
    return out_rows, out_scores


def co_rated(engine, row: int, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(how many movies each of ``others`` rated, how many of those user ``row`` rated too), over the run's seen
    pairs (each user's train and valid movies, those rated below data.min_rating and those update-users added),
    int64."""
    from embedrec.sparse import gather_csr

    others = np.asarray(others, np.int64)
    mine = np.zeros(engine.factors.n_movies, bool)
    mine[engine.seen(int(row))] = True
    local, movies, lengths = gather_csr(engine.seen_ptr, engine.seen_idx, others)
    check_seen_rows(engine.run, movies, engine.factors.n_movies)
    both = np.bincount(local[mine[np.asarray(movies, np.int64)]], minlength=others.size) if others.size else \
        np.zeros(0, np.int64)
    return np.asarray(lengths, np.int64), both.astype(np.int64)


def allowed_users(engine, candidates, exclude, what: str = "similar-users") -> np.ndarray | None:
    """The user rows a similar-users list (or an audience: ``what``, as the warning names the list) may hold: those
    of ``candidates`` (user ids; None: every user), less those of ``exclude`` (user ids), as
    ``models_lookup.allowed_rows`` filters movies (implicit's ``users=`` and ``filter_users=``). Ids the model does
    not know are ignored, counted in one warning each; a candidates list none of whose ids it knows is a UsageError
    (no list could hold a user)."""
    import logging

    from embedrec.data.ids import id_list, one_id, refuse_frame
    from embedrec.errors import UsageError

    def rows_of(ids, name: str) -> np.ndarray | None:
        refuse_frame(ids, f"{name}: expected user ids")
        if isinstance(ids, dict) or isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise UsageError(f"{name}={ids!r:.40}: give a list of user ids, e.g. {name}=[186, 244]")
        try:
            ids = id_list(ids)
            for x in ids:
                one_id(x)
        except UsageError as err:
            raise UsageError(f"{name}: {err}") from None
        if not ids:
            return None
        rows = np.asarray(engine.users.rows(ids)[0], np.int64)
        if (rows < 0).any():
            n = int((rows < 0).sum())
            lib = what.replace("-", "_")
            logging.getLogger("embedrec").warning(
                f"%s of the %s user ids «--{name} of --{what}|{name}= of {lib}» names %s not a user of this model "
                "(not in its training data, or without a vector): %s", f"{n:,}", f"{rows.size:,}",
                "is" if n == 1 else "are", "ignored" if name == "exclude" else "no list holds " +
                ("it" if n == 1 else "them"))
        return rows[rows >= 0]

    only = rows_of(candidates, "candidates") if candidates is not None else None
    if candidates is not None and (only is None or not only.size):
        raise UsageError("candidates: no user of this model among them, so no list could hold a user; give ids of "
                         "users it was trained on, or leave candidates out")
    out = rows_of(exclude, "exclude")
    if only is None and (out is None or not out.size):
        return None
    keep = np.ones(engine.P.shape[0], bool) if only is None else np.zeros(engine.P.shape[0], bool)
    if only is not None:
        keep[only] = True
    if out is not None:
        keep[out] = False
    return np.flatnonzero(keep)


def of_ids(engine, user, k: int, missing: str = "error", candidates=None, exclude=()) -> tuple:
    """``Model.similar_users``' answer for ``user`` (an id, or a list of ids), ``k`` checked: (the query ids as the
    run's ids are, each one's :func:`similar_users` rows and scores, its :func:`co_rated` counts: rated, both
    rated, and the ids left out), what ``results.SimilarUsers`` holds. An id not in the training data, or one with
    no trained vector, raises NotFoundError (``missing='error'``), or is left out and listed last (``'skip'``).
    ``candidates``, ``exclude``: the user ids a list may hold, and those it may not (:func:`allowed_users`)."""
    from embedrec.data.ids import id_list, one_id
    from embedrec.serve.recommender import trained_on

    e = engine
    many = isinstance(user, (list, tuple)) or type(user).__name__ in ("ndarray", "Series", "Index")
    given = id_list(user) if many else [user]
    for one in given:
        one_id(one)
    _, rows, unknown = e.users.resolve(given, missing, lambda: trained_on(e) + "give a user id it was trained on "
                                       "(a user with no trained vector has nothing to compare)«|, or pass "
                                       "missing='skip' to leave it out»")  # (made where an id is unknown)
    rows = rows[rows >= 0]
    found, scores = similar_users(e, rows, k, allowed_users(e, candidates, exclude))
    counts = [co_rated(e, int(r), f) for r, f in zip(rows, found)]
    return ([e.users.raw(int(r)) for r in rows], found, scores, [c[0] for c in counts], [c[1] for c in counts],
            unknown)
