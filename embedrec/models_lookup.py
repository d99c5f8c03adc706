"""What a ``Model``'s arguments name, resolved against its catalogue: ``k`` (``k_arg``), the movies a list may hold
(``allowed_rows``: the genre and year filters, ``exclude`` and ``candidates``, each id checked by ``movie_rows_of``), a
known user given ratings since training (``known_row``), movies given by id or by title words (``find_movie``,
``resolve_movies``, ``titles_resolved``: a new user's history) and one movie's row (``movie``). ``Model``'s
methods of the same names (``find_movie``, ``resolve_movies``, ``movie``) are these; the other questions'
modules (models_recommend.py, models_stream.py, models_scores.py) share the rest. numpy only: serving imports
this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from embedrec.argcheck import genres_arg, list_arg, movie_arg
from embedrec.data.ids import is_integer_text, one_id, one_user, py_id, refuse_frame
from embedrec.errors import NotFoundError, UsageError, shorten
from embedrec.serve.recommender import trained_on

log = logging.getLogger("embedrec")


def k_arg(model, k: int | None) -> int:
    """``k=`` of a call that lists movies or users: a whole number >= 1, None the config's ``recommend.k``."""
    k = k if k is not None else model.engine.cfg.k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"k={k!r}: give a whole number k >= 1")
    return int(k)


def allowed_rows(model, genres, year_min, year_max, exclude, candidates=None) -> np.ndarray | None:
    """The movie rows a list may hold: the catalogue's filters, among the rows of ``candidates`` (movie ids;
    None: every movie), less the rows of ``exclude`` (movie ids). Ids this model does not know are ignored (no
    list could hold them; the candidates' are counted in one warning); a gap, or text no id of an integer-id
    model can be, such as a title, is a UsageError."""
    rows = movie_rows_of(model, exclude, "exclude")
    if rows is not None and (rows < 0).any():  # a first-hour review: a typo ('sku-111') left a movie in silently
        n = int((rows < 0).sum())
        log.warning("%s of the %s «--exclude|exclude» %s not a movie of this model (not in its training data): "
                    "nothing to leave out for %s: %s", f"{n:,}", f"{rows.size:,}", "is" if n == 1 else "are",
                    "it" if n == 1 else "them", shorten(", ".join(
                        repr(x) for x, r in zip(exclude if isinstance(exclude, (list, tuple, np.ndarray))
                                                else [], rows) if r < 0) or "(an iterator's)", 60))
    only = None
    if candidates is not None:
        only = movie_rows_of(model, candidates, "candidates")
        if only is None:
            raise UsageError("candidates is empty: no list could hold a movie; give the movie ids a list may "
                             "hold, e.g. «--candidates 50,181|candidates=[50, 181]», or leave it out")
        given = only.size
        only = only[only >= 0]
        if not only.size:  # a review: every list came back empty, blamed on what the users had rated
            from embedrec.answers import no_known_candidates

            raise no_known_candidates(given)
        if only.size < given:
            log.warning("%s of the %s «--candidates|candidates» %s not a movie of this model (not in its "
                        "training data): no list holds %s", f"{given - only.size:,}", f"{given:,}",
                        "is" if given - only.size == 1 else "are", "it" if given - only.size == 1 else "them")
    return model.engine.allowed(genres_arg(genres), year_min, year_max,
                                None if rows is None else rows[rows >= 0], only_rows=only)


def movie_rows_of(model, items, name: str) -> np.ndarray | None:
    """The rows of movie ids ``items`` (-1 for an id this model does not know), or None for no items."""
    e = model.engine
    refuse_frame(items, f"{name}: expected movie ids")
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise UsageError(f"{name}={shorten(repr(items), 40)}: give a list of movie ids, e.g. {name}=[50, 181]")
    items = list(items)
    if not items:
        return None
    for x in items:  # a gap or a flag is no id (as recommend(nan) says), not a movie to leave out silently
        try:
            one_id(x)
        except UsageError as err:
            raise UsageError(f"{name}: {err}") from None
    rows, parsed = e.movie_rows(items)
    if e.movie_ids.dtype.kind in "iu":  # a title (the CLI resolves them) came back without a word: a red team
        for x, p in zip(items, parsed):
            if p is None and not is_integer_text(str(x).strip()):
                raise UsageError(f"{name}: {shorten(repr(x), 40)} is not a movie id of this model (its ids "
                                 "are integers); for a title, give its id: resolve_movies([title]) or "
                                 "find_movie(title)")
    return np.asarray(rows, np.int64)


def known_row(model, user, ordered: bool = False) -> int:
    """The row of ``user``, a known user given ratings since training (recommend_new's and explain's
    ``user=`` beside ``liked``/``rated``); an unknown one is NotFoundError saying its ratings are a new
    user's."""
    one_user(user, "the known user whose ratings since training liked=/rated= hold, e.g. user=196")
    if ordered:
        raise UsageError("«--ordered|ordered=True» orders a new user's history; a known user's new ratings all "
                         "come after its training ones (weighed as its latest): leave «--ordered|ordered» out")
    rows = model.engine.users.resolve([user], "error", trained_on(model.engine) + "«without --user, --liked/--rated "
                                      "are a new user's: drop --user|without user=, liked=/rated= are a new "
                                      "user's: leave user= out»")[1]
    return int(rows[0])


def titles_resolved(model, liked: list, rated: dict, names: dict | None = None) -> tuple[list, dict]:
    """recommend_new's history with title words turned into ids (``Model.resolve_movies``; a first-hour review:
    liked=['star wars', 172] left 'star wars' out as an unknown id, then listed Star Wars at rank 4). ``names``
    (a dict) receives {id: the words given} of the rated movies found by their title, for the words a warning
    names."""
    if liked:
        liked = model.resolve_movies(liked)[0]
    if rated:
        keys = model.resolve_movies(list(rated))[0]
        firsts: dict = {}
        for given, key in zip(rated, keys):
            if names is not None and isinstance(given, str) and given != str(key):
                names[key] = given
            if py_id(key) in firsts:
                raise UsageError(f"rated: movie {shorten(repr(key), 40)} is rated twice (as "
                                 f"{shorten(repr(firsts[py_id(key)]), 40)} and {shorten(repr(given), 40)}); "
                                 "give each movie one rating")
            firsts[py_id(key)] = given
        rated = dict(zip(keys, rated.values()))
    return liked, rated


def find_movie(model, query: str):
    """``Model.find_movie``: a movie id from an id, an exact title, 'Title (year)' or title words."""
    query = movie_arg(query, "find_movie", "'star wars'")  # not the title 'None' (a review)
    if isinstance(query, (float, np.floating)) and float(query).is_integer():
        query = int(query)  # 50.0, as a pandas column with a gap holds movie 50 (as similar() reads it)
    return py_id(model.engine.movie_ids[model.engine.find_movie(str(query))])


def resolve_movies(model, tokens: Iterable) -> tuple[list, dict]:
    """``Model.resolve_movies``: (the ids of ``tokens`` in order, {token: id} of those found by their title), each
    by ``Model.find_movie``'s rule, text no title holds that may be an unknown id kept as given (words no id can be
    are an error, on a run without titles too)."""
    if isinstance(tokens, (str, bytes)):
        raise UsageError(f"resolve_movies: got the text '{shorten(tokens)}'; give a list of ids or titles, e.g. "
                         "['star wars', 181]")
    ids, by_title = [], {}
    for t in list_arg(tokens, "resolve_movies"):
        t = movie_arg(t, "resolve_movies", "['star wars', 181]")
        if not isinstance(t, str):
            ids.append(t)
            continue
        try:
            found = model.find_movie(t)
        except NotFoundError as e:
            if e.kind != "movie":  # title words that match nothing: said here
                raise
            ids.append(t)  # an id this model does not know: left out (or refused, strict) by recommend_new
            continue
        ids.append(found)
        if str(found) != t.strip():
            by_title[t] = found
    return ids, by_title


def movie(model, movie) -> dict:
    """``Model.movie``: one movie's row, {'movie_id', 'title', 'year', 'genres'}."""
    e = model.engine
    row = e.movie_row(movie_arg(movie, "movie"))
    return {"movie_id": py_id(e.movie_ids[row]), "title": e.titles[row] or None, "year": e.years[row],
            "genres": list(e.genres[row] or [])}
