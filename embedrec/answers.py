"""``embedrec recommend``'s question asked of a ``Model``: a ``Request`` names one mode (a user, many users as a
stream, a movie's similar movies, a user's similar users, a new user from liked/rated movies, from
demographics, or from both) and its options; ``answer`` (``Model.answer``) chooses the method that answers it and returns an
``Answer``: the rows (a ``Recommendations``, a ``SimilarUsers``, or the stream's answers as they come; ``columns``
and ``rows()`` whichever it is) and, once they are written, the notes said on the log
(a list shorter than k, an explicit model's lists, --rated values an implicit model ignores, --ordered on a model
that takes a set). The CLI parses options into a Request, writes the rows and calls ``Answer.log_notes``; a
notebook gets the same answer and the same notes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embedrec.data.ids import id_list as _as_list
from embedrec.data.ids import parse_id, refuse_frame
from embedrec.errors import (
    EmbedrecError,
    NotFoundError,
    UsageError,
    cli_terms,
    library_terms,
    sh_quote,
    shorten,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.models import Model
    from embedrec.results import Recommendations, SimilarUsers

log = logging.getLogger("embedrec")

_MODES = ("user", "users", "movie", "movies", "similar_users", "audience", "liked", "rated", "user_features")
# the options that apply to some modes only: {Request field: the modes it applies to} (Request._applies)
ONLY_FOR = {"include_seen": ("user", "users", "liked", "rated", "audience"), "fallback": ("user", "users"),
            "strict": ("users", "movies", "liked", "rated", "audience"), "ordered": ("liked", "rated"),
            "prior": ("user", "users", "liked", "rated"), "explain": ("user", "users", "liked", "rated"),
            "diversify": ("user", "users", "liked", "rated", "user_features")}
# the options that filter movies by what they are, which similar users and an audience (lists of users) refuse:
# (field, CLI option, library name); their exclude and candidates are user ids (what those lists may hold)
MOVIE_FILTERS = (("genres", "--genre", "genres"), ("year", "--year-min/--year-max", "year_min/year_max"))
USER_LISTS = ("similar_users", "audience")  # the modes that list users


@dataclass(frozen=True)
class Request:
    """One ``recommend`` question. Give exactly one of ``user`` (a user id), ``users`` (user ids one per line: a
    file, stdin, a list; answered as a stream in batches), ``movie`` (an id or title words: similar movies),
    ``similar_users`` (a user id: the users most like that user, ``Model.similar_users``; its answer's result a
    ``SimilarUsers``), ``audience`` (a movie id or title words, or a list of them: the users most likely to take to
    each, ``Model.audience``; its answer's result an ``Audience``; with a list, a movie the model does not know is
    left out, said, or refused with ``strict``), ``liked`` and/or ``rated`` (a new user: movie ids or titles, and {movie id or title:
    rating}; with ``user`` too, that known user plus these ratings since training), or ``user_features``
    ({column: value}: a new user from demographics; with ``liked`` and/or ``rated`` too, a new user told both:
    ``Model.recommend_new(user_features=...)``).

    ``k`` (default recommend.k; every mode), ``fallback`` ('none' or 'popular' for an unknown user; default
    recommend.fallback), ``strict`` (``users``, ``liked``/``rated``: an unknown id is an error), ``include_seen``, ``ordered``
    (``liked``/``rated`` oldest first), the filters ``genres``, ``year_min``, ``year_max``, ``exclude`` (movie
    ids or titles no list may hold) and ``candidates`` (the only movie ids or titles a list may hold; None: every
    movie; for ``similar_users`` and ``audience``, which list users, user ids: what those lists may hold, a
    campaign's opt-outs and segment; genres and years refused there); for ``users``:
    ``batch_size`` (default recommend.batch_size), ``on_batch`` (called after each batch) and ``name`` (the
    input's name in messages); for ``user``, ``users`` and ``liked``/``rated``: ``explain``, how many of the user's
    rated movies to name behind each listed movie (the answer's ``explanations``: ``Recommendations.explain``; a
    stream's answers each carry their own, ``recommend_stream(explain=)``; None: none); for ``liked``/``rated``:
    ``prior``, the most popular movies' weight in a new user's list ('auto', 'off' or a weight:
    ``Model.recommend_new(prior=)``); for the modes that list movies for a user (all but ``movie`` and
    ``similar_users``): ``diversify``, a lambda in (0, 1] that re-ranks each list for diversity
    (``Model.recommend(diversify=)``; None: the model's own lists)."""

    user: Any = None
    users: Iterable | None = None
    movie: Any = None
    movies: Iterable | None = None  # many movies' similar movies: ids or titles, one a line (a file's lines) or a list
    similar_users: Any = None
    audience: Any = None
    liked: list | None = None
    rated: dict | None = None
    user_features: dict | None = None
    k: int | None = None
    fallback: str | None = None
    strict: bool = False
    include_seen: bool = False
    ordered: bool = False
    genres: tuple = ()
    year_min: int | None = None
    year_max: int | None = None
    exclude: tuple = ()
    candidates: tuple | None = None
    batch_size: int | None = None
    on_batch: Callable[[], Any] | None = None
    name: str = "<input>"
    explain: int | None = None
    prior: Any = "auto"
    diversify: float | None = None

    def mode(self) -> str:
        """The mode asked ('liked' for a new user given liked movies, with or without ``rated``; 'rated' for one
        given ``rated`` alone; either with ``user`` too: that known user plus these ratings since training, or
        with ``user_features`` too: a new user told by its demographics as well); UsageError unless exactly
        one."""
        given = [m for m in _MODES if getattr(self, m) is not None]
        history = (["liked"], ["rated"], ["liked", "rated"])
        if given[-1:] == ["user_features"] and given[:-1] in history:
            given = given[:-1]  # a new user told by demographics and movies (recommend_new's user_features=)
        elif given[:1] == ["user"] and given[1:] in history:
            given = given[1:]  # a known user plus ratings since training (recommend_new's user=)
        if len(given) != 1 and given != ["liked", "rated"]:
            raise UsageError("give exactly one of «--user|user», «--users|users», «--movie|movie», «--movies|movies», "
                             "«--similar-users|similar_users», «--audience|audience», «--liked/--rated|liked/rated» "
                             "(with «--user|user»: that "
                             "user's ratings since training), or «--user-features|user_features» (with "
                             "«--liked/--rated|liked/rated»: a new user told both)" + self._modes_given())
        if self.ordered and given == ["liked", "rated"]:
            raise UsageError("«--ordered|ordered=True» takes one history, oldest first: give «--liked|liked» or "
                             "«--rated|rated», not both")
        if given in (["similar_users"], ["audience"]):
            filters = {"genres": bool(self.genres), "year": self.year_min is not None or self.year_max is not None}
            mode = given[0].replace("_", "-")
            for field, option, name in MOVIE_FILTERS:
                if filters[field]:
                    raise UsageError(f"«{option}|{name}» does not apply to «--{mode}|{given[0]}», which "
                                     "lists users, not movies")
        return given[0]

    def checked_mode(self) -> str:
        """:meth:`mode`, each option given checked to apply to it (:meth:`_applies`): what ``Model.answer`` and
        `recommend` ask before any work."""
        mode = self.mode()
        self._applies(mode)
        return mode

    def _applies(self, mode: str) -> None:
        """Each option given applies to ``mode`` (ONLY_FOR), the CLI's and the library's one rule (an architecture
        review: Model.answer answered what `recommend` refused, --movie with include_seen, --similar-users with
        ordered, strict with fallback 'popular')."""
        plus = self.user is not None and mode in ("liked", "rated")  # a known user plus its ratings since training
        if plus and self.fallback is not None:
            raise UsageError("«--fallback|fallback» answers an unknown «--user|user» with the most popular movies; "
                             "with «--liked/--rated|liked/rated», «--user|user» is a user the model knows (a new "
                             "user's ratings: drop «--user|user»)")
        given = {"include_seen": bool(self.include_seen), "fallback": self.fallback is not None,
                 "strict": bool(self.strict), "ordered": bool(self.ordered),
                 "prior": not (isinstance(self.prior, str) and self.prior.strip().lower() == "auto"),
                 "explain": self.explain is not None, "diversify": self.diversify is not None}
        for name, modes in ONLY_FOR.items():
            if given[name] and mode not in modes:
                listed = [m.replace("_", "-") for m in modes]
                cli = ", ".join(f"--{m}" for m in listed[:-1]) + f" and --{listed[-1]}"
                lib = ", ".join(m.replace("-", "_") for m in listed[:-1]) + f" and {modes[-1]}"
                raise UsageError(f"«--{name.replace('_', '-')}|{name}» does not apply to "
                                 f"«--{mode.replace('_', '-')}|{mode}»; it is for «{cli}|{lib}»")
        if self.strict and self.fallback == "popular":
            raise UsageError("«--strict and --fallback popular|strict=True and fallback='popular'» conflict: one fails "
                             "on an unknown user, the other answers it; give one of them")

    def _modes_given(self) -> str:
        """Which modes were given, as the refusal says them: a known user's or a new user's history named with
        what it goes with ('«--user with --liked|user with liked»'); '' where none was."""
        def name(m: str) -> str:
            return f"«--{m.replace('_', '-')}|{m}»"

        have = {m: getattr(self, m) is not None for m in _MODES}
        history = have["liked"] or have["rated"]
        plus = have["user"] and history  # a known user plus its ratings since training
        told = not have["user"] and have["user_features"] and history  # a new user told by demographics and movies
        named = [name(m) for m in ("user", "users", "movie", "movies", "similar_users", "audience")
                 if have[m] and not (m == "user" and plus)]
        if history:  # --rated with --liked is one history, named by --liked
            named.append(("«--user with |user with »" if plus else "") + name("liked" if have["liked"] else "rated")
                         + (" with «--user-features|user_features»" if told else ""))
        if have["user_features"] and not told:
            named.append(name("user_features"))
        if not named:
            return ""
        listed = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
        return f"; «this command gave {cli_terms(listed)}|{library_terms(listed)} were given»"


class Answer:
    """What ``Model.answer`` gives: ``result`` (a Recommendations) or ``stream`` (``users``, and the CLI's
    ``movies``: the answers as they come, a :class:`~embedrec.results.StreamAnswer` each, for
    ``Model.write_stream``, its first column ``query_column``); ``fallback_column``: whether
    the rows carry the ``fallback`` column (an unknown user answered with the most popular movies);
    ``explanations``: ``result.explain(request.explain)`` where the request asked for them (the rows' ``because``:
    ``result.to_rows(explanations=...)``); ``result`` is a :class:`~embedrec.results.SimilarUsers` for a
    ``similar_users`` request, an :class:`~embedrec.results.Audience` for an ``audience`` one. ``columns`` and ``rows()``: the rows as the CLI writes them, whichever the result.
    Call :meth:`log_notes` once the rows are written."""

    def __init__(self, model: Model, request: Request, result: Recommendations | SimilarUsers | None = None,
                 stream: Iterator | None = None, notes: Callable[[], None] | None = None):
        self.model, self.request, self.result = model, request, result
        self.explanations: list | None = None  # request.explain's: result.explain(request.explain)
        self.answered = 0
        self.fallbacks = 0  # a stream's users answered with the most popular movies
        self.skipped = 0  # a stream's ids skipped as unknown, once it is read to its end
        self.stream = None if stream is None else self._counted(stream)
        self.fallback_column = (request.fallback == "popular" and (stream is not None or request.user is not None
                                                                   and request.liked is None and request.rated is None))
        self._notes = notes
        self.rated_scale: tuple | None = None  # a --rated file's own scale, its values left as given (Told.scale)
        self.watched: list = []  # the ids of a --rated file's movies without a rating, left out of the list
        self.query_column: str | None = None  # a stream's first column (Model.write_stream): None, user_id

    def __repr__(self) -> str:  # a notebook review: '<embedrec.answers.Answer object at 0x...>'
        try:
            mode = self.request.mode()
        except Exception:  # noqa: BLE001 (a repr never raises)
            mode = "?"
        if self.stream is not None:
            what = f"a stream, {self.answered:,} answered so far"
        else:
            header = getattr(self.result, "_header", None)  # the result's summary line (its repr adds rows)
            what = header() if header is not None else repr(self.result)
        extra = (", fallback column" if self.fallback_column else "") + \
            (", explained" if self.explanations is not None else "")
        return f"<Answer: {mode}, {what}{extra}>"

    def _counted(self, items: Iterator) -> Iterator:
        while True:
            try:
                item = next(items)
            except StopIteration as end:  # recommend_many's value: the ids it skipped as unknown
                self.skipped = end.value or 0
                return
            self.answered += 1
            self.fallbacks += bool(getattr(item, "fallback", False))
            yield item

    @property
    def columns(self) -> list[str]:
        """The columns of :meth:`rows`: the result's own, then ``fallback`` and ``because`` where the answer has
        them."""
        self._not_a_stream()
        return (self.result.columns + (["fallback"] if self.fallback_column else [])
                + (["because"] if self.explanations is not None else []))

    def rows(self, because_as_text: bool = False) -> Iterator[dict]:
        """The result's rows, one dict per listed movie (or user), with the answer's ``fallback`` and ``because``
        columns; ``because_as_text``: the because cell as text (csv, tsv, a table), else a list of objects (json).
        A stream's rows are written by ``Model.write_stream``."""
        self._not_a_stream()
        if self.request.similar_users is not None or self.request.audience is not None:  # users, not movies: neither
            # column applies
            return self.result.to_rows()
        return self.result.to_rows(fallback_column=self.fallback_column, explanations=self.explanations,
                                   because_as_text=because_as_text)

    def _not_a_stream(self) -> None:
        if self.result is None:
            raise UsageError("this answer is a stream (users=): write it with Model.write_stream(answer.stream, "
                             "out, fmt)")

    def log_notes(self) -> None:
        """The notes said after the rows (not before: an error stays the only line)."""
        if self._notes is not None:
            self._notes()


def answer(model: Model, request: Request) -> Answer:
    """``Model.answer``: the method of ``model`` that answers ``request``'s mode, its options filled from the
    model's recommend config."""
    mode = request.checked_mode()
    _check_request(request, mode)
    e = model.engine
    k = request.k if request.k is not None else e.cfg.k
    fallback = request.fallback or e.cfg.fallback
    request = _replace(request, k=k, fallback=fallback)
    if mode in USER_LISTS:
        return _users_listed(model, request, mode, k)
    exclude = _movies_excluded(model, request, mode)
    candidates = None
    if request.candidates is not None:
        candidates = _movie_candidates(model, request)
        request = _replace(request, candidates=tuple(candidates))  # titles found: the notes' filter is the list's
    filters = {"genres": request.genres, "year_min": request.year_min, "year_max": request.year_max,
               "exclude": exclude, "candidates": candidates}
    if mode == "users":  # streamed in batches: rows as they come
        return _users_streamed(model, request, k, fallback, filters)
    if mode == "movies" and getattr(request.movies, "lines_of_a_file", False) and not request.strict:  # the CLI's
        # --movies: answered in batches as the lines come (a known gap: every answer held until the input ended, 1 KB
        # a line); --strict reads the whole input first and fails before printing anything, as --users --strict
        return _movies_streamed(model, request, k, filters)
    return _one_list(model, request, mode, k, fallback, filters)


def _check_request(request: Request, mode: str) -> None:
    """``request``'s options refused where they do not apply to ``mode`` or are not of their kind: --explain and
    --diversify, one user= or similar_users= id, the flags, --fallback."""
    from embedrec.argcheck import flag

    if request.explain is not None:
        from embedrec.argcheck import count_arg

        count_arg(request.explain, "explain", 1)
        if mode not in ("user", "users", "liked", "rated"):  # a review: --rated alone was refused
            raise UsageError("«--explain|explain» names the rated movies behind a user's list: give it with "
                             "«--user, --users or --liked/--rated|user=, users= or liked=/rated=»")
        if request.user_features is not None:  # a new user told both: part of each score is its demographics'
            raise UsageError("«--explain|explain» splits a score over the user's rated movies; a new user told by "
                             "«--user-features|user_features» too owes part of each score to them, which no rated "
                             "movie explains: drop one of «--explain and --user-features|explain and "
                             "user_features»")
    if request.diversify is not None:
        from embedrec.serve.diversify import lambda_arg

        lambda_arg(request.diversify)
        if mode in ("movie", "movies", "similar_users", "audience"):
            raise UsageError("«--diversify|diversify» re-ranks a user's list: give it with «--user, --users, "
                             "--liked/--rated or --user-features|user=, users=, liked=/rated= or user_features=»")
    if request.user is not None and not isinstance(request.user, (str, bytes)) and hasattr(request.user, "__iter__"):
        raise UsageError(f"user={shorten(repr(request.user), 40)}: user= takes one id; for many give "
                         "users=[...]")  # a red team: the message suggested the list it refused
    if mode == "similar_users" and not isinstance(request.similar_users, (str, bytes)) and \
            hasattr(request.similar_users, "__iter__"):  # as movie= takes one movie: Model.similar_users takes a list
        raise UsageError(f"similar_users={shorten(repr(request.similar_users), 40)}: similar_users= takes one id; "
                         "for many give them to Model.similar_users([...])")
    for name in ("strict", "include_seen", "ordered"):  # read by their truth, "no" had meant True
        flag(getattr(request, name), name, "Request")
    if request.fallback not in (None, "none", "popular"):
        raise UsageError(f"«--fallback|fallback» {shorten(repr(request.fallback), 30)}: give 'none' or 'popular'")


def _users_listed(model: Model, request: Request, mode: str, k: int) -> Answer:
    """A list of users (similar_users, audience): exclude and candidates are user ids."""
    # lists of users: exclude and candidates are user ids, what such a list may hold (a
    # campaign's opt-outs, a segment; a usability review: refused as movie filters on the command line)
    if isinstance(request.exclude, Mapping):
        raise UsageError(f"«--exclude|exclude» of (user, movie) pairs does not apply to «--{mode.replace('_', '-')}"
                         f"|{mode}», which lists users: give user ids (one per line in a file)")
    try:
        users_out = _as_list(request.exclude)
        users_only = None if request.candidates is None else _as_list(request.candidates)
    except UsageError as err:
        raise UsageError(f"«--exclude/--candidates|exclude/candidates»: {err}") from None
    if mode == "similar_users":
        out = Answer(model, request, result=model.similar_users(request.similar_users, k, candidates=users_only,
                                                                exclude=users_out))
        out._notes = lambda: users_short_note(out.result, k)
        return out
    if isinstance(request.audience, (str, bytes)) or not hasattr(request.audience, "__iter__"):
        asked = _found(model, request.audience, "--audience")
    else:  # several (the CLI's --audience @FILE, a list): each one's audience, in the order given
        asked = _audience_movies(model, list(request.audience), request.strict)
    out = Answer(model, request, result=model.audience(asked, k, exclude_seen=not request.include_seen,
                                                       candidates=users_only, exclude=users_out))
    out._notes = lambda: audience_note(out.result, k, request.include_seen)
    return out


def _movies_excluded(model: Model, request: Request, mode: str):
    """``request.exclude`` for a list of movies: the movies found, or (user, movie) pairs (a mapping) for
    --user and --users alone."""
    if isinstance(request.exclude, Mapping):  # (user, movie) pairs: each user's own movies, out of its list alone
        if mode not in ("user", "users"):
            raise UsageError("«--exclude @FILE|exclude» of (user, movie) pairs leaves each user's own movies out of "
                             "that user's list: it applies to «--user|user» (without «--liked/--rated|liked/rated») "
                             "and «--users|users»; give movies alone (one per line) for a list of this mode")
        return request.exclude
    try:
        tokens = _as_list(request.exclude)
    except UsageError as err:  # which argument held the gap, as Model.recommend(exclude=) says
        raise UsageError(f"exclude: {err}") from None
    return _excluded(model, tokens)


def _movie_candidates(model: Model, request: Request) -> list:
    """``request.candidates``' movies found."""
    try:
        tokens = _as_list(request.candidates)
    except UsageError as err:
        raise UsageError(f"candidates: {err}") from None
    return _excluded(model, tokens, "--candidates")


def _users_streamed(model: Model, request: Request, k: int, fallback: str, filters: dict) -> Answer:
    """--users: each user's list, streamed in batches."""
    e = model.engine
    missing = "error" if request.strict else "popular" if fallback == "popular" else "skip"
    batch = request.batch_size if request.batch_size is not None else e.cfg.batch_size
    triples = model.recommend_stream(request.users, k, missing=missing, exclude_seen=not request.include_seen,
                                     batch_size=batch, on_batch=request.on_batch, name=request.name,
                                     explain=request.explain, prior=request.prior,
                                     diversify=request.diversify, **filters)
    out = Answer(model, request, stream=triples)
    out._notes = lambda: _stream_notes(out)
    return out


def _movies_streamed(model: Model, request: Request, k: int, filters: dict) -> Answer:
    """The CLI's --movies: each line's similar movies, answered in batches as the lines come."""
    first: list = []  # the first list answered: the notes of a list shorter than k, or empty, are of it
    out = Answer(model, request, stream=_similar_stream(model, request, k, filters, first))
    out.query_column = "movie_id_query"
    out._notes = lambda: _list_notes(_answered_by(out, first[0])) if first else None  # (a diff review: lost)
    return out


def _one_list(model: Model, request: Request, mode: str, k: int, fallback: str, filters: dict) -> Answer:
    """One list of movies: a user's, a movie's similar movies, those of each line of --movies, or a new user's (by
    user features, or by liked/rated movies); their explanations, where asked for."""
    told = None  # a new user's history (liked/rated), as told_history read it
    if mode == "user":  # an unknown user: the library's error, or its warning with the most popular movies
        res = model.recommend([request.user], k, missing="popular" if fallback == "popular" else "error",
                              exclude_seen=not request.include_seen, prior=request.prior,
                              diversify=request.diversify, **filters)
    elif mode == "movie":
        res = model.similar(_found(model, request.movie), k, **filters)
    elif mode == "movies":  # each line's movie, as --movie takes it; one not in the model left out (said), or refused
        res = _similar_of_lines(model, request, k, filters)
    elif mode == "user_features":
        res = model.recommend_features(request.user_features, k, diversify=request.diversify, **filters)
    else:
        told, res, request = _new_user_list(model, request, k, filters)
    out = Answer(model, request, result=res)
    if told is not None:  # a new user's: a --rated file's values on their own scale, for rated_note
        out.rated_scale = told.scale
        out.watched = [model.engine.movies.raw(r) for r in told.watched]
    if request.explain is not None:  # before any row is written: a model without them is refused in one line
        out.explanations = res.explain(request.explain)
    out._notes = lambda: _list_notes(out)
    return out


def _new_user_list(model: Model, request: Request, k: int, filters: dict):
    """A new user's list by its liked/rated movies: its history as told, the list, and ``request`` with the movies
    found."""
    # one id or title is one movie ('12', 'star wars': a red team found them split into characters); a file
    # read (--liked @FILE, --rated @FILE: serve.userfile), its titles no movie matches left out unless --strict
    from embedrec.models_lookup import told_history
    from embedrec.models_recommend import recommend_new

    told = told_history(model, request.liked, request.rated, strict=request.strict, said=_said_found)
    res = recommend_new(model, (), None, k, ordered=request.ordered, user=request.user,
                        exclude_seen=not request.include_seen, strict=request.strict,
                        user_features=request.user_features, prior=request.prior, told=told,
                        diversify=request.diversify, **filters)
    request = _replace(request, liked=told.liked if request.liked is not None else None,
                       rated=None if request.rated is None else told.rated)
    return told, res, request


MOVIE_HEADER_WORDS = ("movie_id", "movie", "movieid", "item_id", "item", "title")  # a --movies file's header
_NUMBERS_ROW = re.compile(r"\s*-?\d+(?:\.\d+)?(?:\s*[,;]\s*-?\d+(?:\.\d+)?)+\s*")  # '1,5', '50;4.5': a table's row


def movie_queries(lines, name: str = "<input>") -> list[tuple[str, Any]]:
    """The queries of ``movies=`` as (where: 'FILE:N' or 'movies[i]', the movie as given): a file's lines (the CLI's
    --movies, an open file, a path) each one movie, an id or title words as --movie takes it, blank lines and '#'
    comments skipped, a header line first ('movie_id', 'title', ...) too, CSV quotes taken off; a list's items as
    they are. A line of a table (a tab, or a header of several columns) refused naming its line, as --users does."""
    import os

    refuse_frame(lines, "movies= takes movie ids or titles")  # (its iteration gives its column names: a review)
    if isinstance(lines, os.PathLike):
        import io

        try:
            with open(lines, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"movies={shorten(repr(str(lines)), 60)}: cannot be read as UTF-8 text "
                             f"({type(e).__name__}: {shorten(e, 80)}); give a file of one movie a line") from None
        return movie_queries(io.StringIO(text), str(lines))
    if isinstance(lines, (str, bytes)) or not hasattr(lines, "__iter__"):
        raise UsageError(f"movies={shorten(repr(lines), 40)}: give a list of movie ids or titles, an open file or a "
                         "pathlib.Path of one a line; for one movie: movie=")
    return list(movie_query_lines(lines, name))


def movie_query_lines(lines, name: str = "<input>") -> Iterator[tuple[str, Any]]:
    """:func:`movie_queries` one line at a time, as they are read (``lines``: a file's lines or a list, checked
    by :func:`movie_queries`): what ``recommend --movies`` answers in batches."""
    from embedrec.serve.stream import unquoted

    filelike = getattr(lines, "lines_of_a_file", False) or hasattr(lines, "readline")  # (its last line too)
    first = True  # (no movie yet: a header line may come)
    for n, line in enumerate(lines, 1):
        if not isinstance(line, str) or not filelike and not line.endswith(("\n", "\r")):
            first = False
            yield f"movies[{n - 1}]", line  # a list's item: an id or title as it is
            continue
        t = unquoted(line.strip().lstrip("\ufeff").strip())
        if not t or t.startswith("#"):
            continue
        if "\r" in t:  # an old Mac's line ends: '1\r2' was read as the title words of '8 1/2' (a review)
            raise UsageError(f"{name}:{n}: the line holds a carriage return (\\r): its line ends are not \\n; "
                             "convert them first (tr '\\r' '\\n')")
        head = t.replace("\t", ",").split(",")
        if "\t" in t or first and len(head) > 1 and head[0].strip().lower() in MOVIE_HEADER_WORDS or \
                _NUMBERS_ROW.fullmatch(t):  # a tab; a table's header; numbers a separator apart ('1,5': id, rating)
            raise UsageError(f"{name}:{n}: '{shorten(t)}' is a table's line: give one movie a line (its first "
                             f"column: cut -d, -f1, or cut -f1 for a TSV)")
        if first and t.lower() in MOVIE_HEADER_WORDS:
            continue
        first = False
        yield f"{name}:{n}", t


def _similar_of_lines(model: Model, request: Request, k: int, filters: dict):
    """``movies=``'s answer: each query's similar movies (:func:`movie_queries`), as --movie finds it (a title's
    line said with its line); one the model does not know left out, said in one warning with the first's reason,
    or (``strict``) refused naming its line, as an ambiguous title is; none answered: NotFoundError, as --users. The
    notes a movie's list gets (a movie of few ratings, a film's other id left out) said once for all of them."""
    queries = movie_queries(request.movies, request.name)
    found: dict = {}  # a line given again: found once, its title said once (the same answer)
    missed: list = []
    counted: dict = {"few": [], "twins": []}
    ids = _found_movies(model, request, queries, found, missed)
    _said_missed(request, missed, len(queries), bool(ids))
    res = _similar_counted(model, ids, k, filters, counted)
    _similar_notes(counted)
    return res


def _answered_by(out: Answer, result) -> Answer:
    """A copy of a streamed ``out`` with ``result`` (its first list) as its result: what its notes read."""
    import copy

    done = copy.copy(out)
    done.result, done.stream = result, None
    return done


def _similar_stream(model: Model, request: Request, k: int, filters: dict, first: list | None = None) -> Iterator:
    """``recommend --movies``' answer as it comes: :func:`_similar_of_lines`' lists, a batch of lines at a time
    (``request.batch_size``; a batch ends where the input pauses, as ``--users``' does), each query a
    :class:`~embedrec.results.StreamAnswer` for ``Model.write_stream``; what it says of the lines (left out,
    none answered, the notes) said once they are all read (``first`` gets the first batch's lists, whose first
    list the notes of a short or empty list read, as the whole input's were). One list does not depend on what
    else is asked, so the rows are those of the whole input at once (1M lines held 1 GB before their first row)."""
    from embedrec.serve.stream import batches

    lines = request.movies
    ready = getattr(lines, "ready", None)
    found: dict = {}
    missed: list = []
    counted: dict = {"few": [], "twins": []}
    asked = answered = 0
    batch = request.batch_size if request.batch_size is not None else model.engine.cfg.batch_size
    for chunk in batches(movie_query_lines(lines, request.name), batch, ready if callable(ready) else None):
        asked += len(chunk)
        ids = _found_movies(model, request, chunk, found, missed)
        if ids:
            answered += len(ids)
            res = _similar_counted(model, ids, k, filters, counted)
            if first is not None and not first:
                first.append(res)
            yield from res.triples()
        if request.on_batch is not None:
            request.on_batch()
    _said_missed(request, missed, asked, bool(answered))
    _similar_notes(counted)


def _found_movies(model: Model, request: Request, queries, found: dict, missed: list) -> list:
    """The movie of each query (where, token) as ``--movie`` finds it (a title's said with its line); ``found``:
    the tokens found before (a line given again: found once, its title said once); one not known appended to
    ``missed`` (where, the error), or (``strict``) refused naming its line; a title of several movies refused."""
    ids = []
    for where, token in queries:
        if isinstance(token, str) and token in found:
            ids.append(found[token])
            continue
        try:
            movie = model.find_movie(token)
        except NotFoundError as err:
            if request.strict:
                raise NotFoundError(f"{where}: {err.raw}", kind=err.kind, id=getattr(err, "id", None)) from None
            missed.append((where, err))
            continue
        except UsageError as err:  # a title of several movies
            raise UsageError(f"{where}: {err.raw}") from None
        if isinstance(token, str) and str(movie) != token.strip():  # a title: its movie said, with its line
            how = ""
            with contextlib.suppress(EmbedrecError):
                how = model.engine.match_movie(token.strip(), suggest=False)[1]
            _said_title(model, where, token, movie, how)
        if isinstance(token, str):
            found[token] = movie
        ids.append(movie)
    return ids


def _said_missed(request: Request, missed: list, asked: int, any_found: bool) -> None:
    """The movies left out, in one warning with the first's reason; none found of ``asked`` queries: NotFoundError
    (none asked: a warning)."""
    if missed:  # (the first's reason in the format, its own marks rendered as the line's: a review saw them raw)
        _marked("%s: %s of its %s movies left out (%s: " + missed[0][1].raw.replace("%", "%%") + "); «--strict|"
                "strict=True» refuses them instead", request.name, f"{len(missed):,}", f"{asked:,}",
                missed[0][0], level=logging.WARNING)
    if not any_found:
        if asked:
            raise NotFoundError(f"{request.name}: no movie answered: none of its {asked:,} movies is one this "
                                "model knows (the first said above); check the ids or titles and the run")
        log.warning("%s: no movie answered (the input held no movie id or title)", request.name)


def _similar_counted(model: Model, ids: list, k: int, filters: dict, counted: dict):
    """``model.similar(ids)``, the notes of its movies (few ratings, a film's other id) added to ``counted``."""
    from embedrec.serve.recommender import SIMILAR_NOTES

    token = SIMILAR_NOTES.set(counted)
    try:
        return model.similar(ids, k, **filters)
    finally:
        SIMILAR_NOTES.reset(token)


def _similar_notes(counted: dict) -> None:
    """The notes of the movies asked (:func:`_similar_counted`'s), each movie once."""
    from embedrec.serve.recommender import FEW_RATINGS

    few, twins = list(dict.fromkeys(counted["few"])), list(dict.fromkeys(counted["twins"]))  # each movie once
    if few:
        _marked("note: %s of the movies asked (%s) %s at most %d training ratings: an als model's vector of such a "
                "movie is its few raters' solve, so the movies most like it are those they also rated; a likeness "
                "from so few ratings says little", f"{len(few):,}", _some(few), "has" if len(few) == 1 else "have",
                FEW_RATINGS)
    if twins:
        _marked("note: %s of the movies asked (%s) %s the catalogue lists under another id too: that id is left "
                "out of %s", f"{len(twins):,}", _some(twins), "is a film" if len(twins) == 1 else "are films",
                "its list" if len(twins) == 1 else "their lists")


def _some(ids: list) -> str:
    """The first ids of a list, and how many more: '814, 1130, 1373 and 215 more'."""
    head = ", ".join(str(i) for i in ids[:3])
    return head + (f" and {len(ids) - 3:,} more" if len(ids) > 3 else "")


def _replace(request: Request, **changes) -> Request:
    import dataclasses

    return dataclasses.replace(request, **changes)


# ----------------------------------------------------------------------------------------- the notes
def _stream_notes(out: Answer) -> None:
    r = out.request
    if not out.answered:  # a header alone said nothing of why (a first-hour review: < /dev/null)
        log.warning("%s: no user answered (the input held no user id%s)", r.name,  # (none at all: an ops review
                    "" if r.fallback == "popular" or not out.skipped else " this model knows")  # read "knows" so)
    if r.explain is not None and out.fallbacks:  # as --user says it of its one user
        _marked("note: «--explain|explain»: %s user%s not in the training data, so %s list of the most popular movies "
                "has no rated movie behind it (its 'because' empty)", f"{out.fallbacks:,}",
                " is" if out.fallbacks == 1 else "s are", "its" if out.fallbacks == 1 else "each one's")
    explicit_note(out.model)


def _list_notes(out: Answer) -> None:
    r, res, model = out.request, out.result, out.model
    filtered = (any(v is not None for v in (r.year_min, r.year_max)) or bool(r.genres) or  # (a user's own
                bool(r.exclude) and not isinstance(r.exclude, Mapping)  # movies are no filter: said as such)
                or r.candidates is not None)

    def none_pass() -> bool:  # no filter at all: allowed() is None, every movie passes
        def rows(ids):
            if not ids:
                return None
            got = model.engine.movie_rows(list(ids))[0]
            return got[got >= 0]

        allowed = model.engine.catalogue.allowed(r.genres, r.year_min, r.year_max, say=False,
                                                 only_rows=None if r.candidates is None else rows(r.candidates),
                                                 exclude_rows=None if isinstance(r.exclude, Mapping) else
                                                 rows(r.exclude))  # a review: an --exclude that
        return allowed is not None and allowed.size == 0                      # left nothing was said twice

    demographics_alone = r.user_features is not None and r.liked is None and r.rated is None  # no movie given
    short_note(res, r.k, r.movie is not None or r.movies is not None, r.include_seen or demographics_alone, filtered,
               none_pass, own=isinstance(r.exclude, Mapping) and len(res) > 0 and  # (its own named in the file)
               str(res.query_ids[0]) in {str(key) for key in r.exclude})
    if r.movie is None and r.movies is None and not (r.user is not None and res.unknown):  # not for --fallback
        # popular's list, nor for similar movies (ranked by cosine, not by predicted rating: a review)
        explicit_note(model)
    if r.rated is not None:
        rated_note(model, r.liked or [], r.rated, res.left_out, r.ordered, r.user_features is not None,
                   out.rated_scale, out.watched)
    if r.ordered and not model.uses_order:
        unordered_note(model)
    if out.explanations is not None and any(x is None for x in out.explanations):
        _marked("note: «--explain|explain»: user %s is not in the training data, so its list of the most popular "
                "movies has no rated movie behind it", str(res.query_ids[0]))


def _resolved(model: Model, tokens: list, opt: str) -> list:
    """The movie ids of liked/rated tokens (ids, or title words: Model.resolve_movies), each one found by its title
    said with that title: 'batman' is one of four."""
    ids, by_title = model.resolve_movies(tokens)
    for token, movie in by_title.items():
        _said_title(model, opt, token, movie)
    for token, movie in zip(tokens, ids):
        if isinstance(token, str) and token not in by_title:
            _also_titled(model, opt, token, movie)
    return ids


def _excluded(model: Model, tokens: list, opt: str = "--exclude") -> list:
    """The movie ids of ``exclude``'s tokens, or ``candidates``' (``opt``; ids, or titles as --movie takes them);
    a title the model does not know is left out with a warning, as an unknown id is (a review: an unknown text id,
    'M999', failed the whole command where an unknown number was ignored). Ids are taken as they are, in one
    pass (a candidates file may hold thousands)."""
    name = opt.lstrip("-")
    for token in tokens:
        if isinstance(token, str) and not token.strip():  # resolve_movies' own message named resolve_movies
            raise UsageError(f"«{opt}|{name}» has an empty entry; give movie ids or titles, e.g. "
                             f"«{opt} 50,fargo|{name}=[50, 'fargo']»")
    known = model.engine.movie_rows([t.strip() if isinstance(t, str) else t for t in tokens])[0] if tokens else []
    out, unknown = [], []
    movies = model.engine.catalogue.movies
    for token, row in zip(tokens, known):
        if row < 0 and isinstance(token, str) and token.strip().isdigit() and movies.ids.dtype.kind in "iu" and \
                parse_id(token, movies.ids.dtype) is None:  # '0223': no id of this model (a review: silently kept)
            log.warning("«%s|%s» %s; %s", opt, name, movies.unknown_text(token.strip()),
                        "nothing to leave out" if opt == "--exclude" else "left out")
            continue
        if row >= 0 or not isinstance(token, str) or token.strip().isdigit() and movies.ids.dtype.kind in "iu":
            out.append(token.strip() if isinstance(token, str) else token)  # an id: the library counts or ignores
            continue  # one it does not know (on a run of text ids, digits no id holds are title words: '50')
        try:
            out += _resolved(model, [token], opt)
        except NotFoundError:
            unknown.append(token)
    if unknown and not out and opt == "--candidates":  # one line, as the library's for unknown ids (a review:
        from embedrec.models_lookup import no_known_candidates

        raise no_known_candidates(len(tokens))           # each title 'left out', then 'candidates is empty')
    for token in unknown:
        log.warning("«%s|%s» %s: no movie of this model has that id or title; %s", opt, name,
                    shorten(repr(token), 40), "nothing to leave out" if opt == "--exclude" else "left out")
    return out


def _found(model: Model, token, opt: str = "--movie"):
    """The movie a ``movie`` (or ``audience``: ``opt``) request names: an id, or title words (find_movie, where a
    number may be a title's words too)."""
    try:
        movie = model.find_movie(token)
    except NotFoundError as err:  # (the hint of ids joined by commas names the option: a usability review)
        hint = "one --movie takes one movie (in Python, similar() takes a list of them)"
        if opt == "--movie" or hint not in err.raw:
            raise
        raise NotFoundError(err.raw.replace(hint, f"one {opt} takes one movie (several: {opt} @FILE, a movie a "
                                                  "line; in Python, audience() takes a list)"),
                            kind=err.kind, id=getattr(err, "id", None)) from None
    if str(movie) != str(token).strip():
        how = ""  # a guess made (a year one off, none in the catalogue), said as --liked says it (a review)
        if isinstance(token, str):
            with contextlib.suppress(EmbedrecError):
                how = model.engine.match_movie(token.strip(), suggest=False)[1]
        _said_title(model, opt, str(token), movie, how)
    elif isinstance(token, str):
        _also_titled(model, opt, token, movie)
    return movie


def _said_found(model: Model, opt: str, token: str, movie, how: str | None) -> None:
    """What a liked or rated text named: :func:`_said_title` of a title (``how`` a guess made, or ''), or
    :func:`_also_titled` of an id (``how`` None)."""
    if how is None:
        _also_titled(model, opt, token, movie)
    else:
        _said_title(model, opt, token, movie, how)


def _said_title(model: Model, opt: str, token: str, movie, how: str = "") -> None:
    """The line of a title found: its movie, and how where a guess was made (a year one off, one of a title's
    several ids: Catalogue.match_movie)."""
    m = model.movie(movie)
    if not m["title"]:  # a catalogue without titles: a text id typed loosely (Catalogue.match_movie; a review
        from embedrec.serve.catalogue import LOOSE_ID  # found 'movie Sigur Rós, None')

        _marked(f"«{opt}» '%s': movie %s (%s)", token.strip(), movie, how or LOOSE_ID)
        return
    _marked(f"«{opt}» '%s': movie %s, %s%s%s", token.strip(), movie, m["title"], _year(m), f" ({how})" if how else "")


def _year(m: dict) -> str:
    return "" if m["year"] is None else f" ({m['year']})"


def _also_titled(model: Model, opt: str, token: str, movie) -> None:
    """On a run of text ids, a text taken as a movie's id that title words name too ('50': the id 50, and '50 First
    Dates'): one line saying which it was taken as, and the id to give for the title (--movie and --liked read a
    text by one rule, Model.find_movie's: an id first, then titles)."""
    cat = model.engine.catalogue
    if cat.movie_ids.dtype.kind in "iu" or str(movie) != token.strip():  # a number is an id on an integer-id run
        return
    rows = [r for r in cat.title_rows(token) if str(cat.movie_ids[r]) != str(movie)]
    if not rows:
        return
    named = [model.movie(cat.movie_ids[r]) for r in rows[:3]]
    m = model.movie(movie)
    if len(rows) == 1:
        _marked(f"«{opt}» '%s': movie %s, %s%s, by its id; the title %s%s matches it too: give its id, %s, for that "
                "one", token.strip(), movie, m["title"], _year(m), named[0]["title"], _year(named[0]),
                named[0]["movie_id"])
        return
    shown = "; ".join(f"{n['movie_id']}: {n['title']}{_year(n)}" for n in named)
    more = f" and {len(rows) - 3:,} more" if len(rows) > 3 else ""
    _marked(f"«{opt}» '%s': movie %s, %s%s, by its id; {len(rows):,} titles match it too (%s%s): give the id of the "
            "one meant", token.strip(), movie, m["title"], _year(m), shown, more)


def short_note(res, k: int, similar: bool, seen_kept: bool, filtered: bool, none_pass, own: bool = False) -> None:
    """A list shorter than k, said on the log: it holds every movie that could be in it. Not when no movie
    passes the filters (``none_pass()``, asked only of a short filtered list: the filter is not run again for
    every answer), which the library said (a first-hour review: said twice). An empty list says so, as that
    line does, with why (:func:`empty_note`; a first-hour review: `--liked 50 --candidates 50` was '0 movies,
    fewer than the 10 asked for'). ``own``: a user's own movies were left out too (``exclude={user: movies}``,
    ``--exclude @FILE`` of pairs), said beside its rated ones (a diff review: blamed on them alone)."""
    got = len(res.movie_ids[0]) if len(res) else k
    if got < k and filtered and none_pass():
        return
    if got == 0:
        empty_note(res, similar, seen_kept, filtered, own)
        return
    if got < k:  # a fallback's list of popular movies too (a review: --fallback popular -k 500 said nothing)
        which = "every other movie" if similar else "every movie"
        if not (similar or seen_kept):
            which += " the user has not rated" if res.query_ids[0] is not None else " not among the given ones"
        if own and not similar:
            which += " nor «--exclude @FILE|exclude» leaves out for it" if not seen_kept else \
                " «--exclude @FILE|exclude» does not leave out for it"
        which += " that matches the filters" if filtered else ""
        log.info(f"note: %s movie%s, fewer than the %s asked for: that is {which} (movies without training ratings are "
                 "never recommended)", f"{got:,}", "" if got == 1 else "s", f"{k:,}")


def empty_note(res, similar: bool, seen_kept: bool, filtered: bool, own: bool = False) -> None:
    """:func:`short_note`'s line for an empty list (``filtered``: some filter was given), worded as the library's
    for filters that pass no movie ('..., so every list is empty; loosen them'): what the movies that pass are,
    the user's own (the given ones, or what a known user rated), the movie asked about, or untrained ones."""
    mine = not (similar or seen_kept or res.fallback[0])  # a user's own movies are left out of its list
    who = "the movie asked about" if similar else None if not mine else \
        "one the user has rated" if res.query_ids[0] is not None else "among the given ones"
    if own and not similar:  # (exclude={user: movies}: its own left out, whatever include_seen)
        who = ("one «--exclude @FILE|exclude» leaves out for the user" if who is None else
               f"{who} or «--exclude @FILE|exclude» leaves out for it")
    which = "every movie that matches the filters" if filtered else "every movie"
    if who is None:  # nothing left out but the movies without training ratings
        _marked(f"note: no movie {'that matches the filters ' if filtered else ''}has training ratings, so the list "
                "is empty (movies without them are never recommended)" + ("; loosen the filters" if filtered else ""))
        return
    then = [] if not filtered else ["loosen the filters"]
    if mine:
        then.append("give «--include-seen|include_seen=True» to list " + (
            "what the user rated" if res.query_ids[0] is not None else "the given ones")
            + (" (those «--exclude @FILE|exclude» leaves out for it stay out)" if own else ""))
    _marked(f"note: {which} is {who}, so the list is empty (movies without training ratings are never recommended)"
            + (f"; {', or '.join(then)}" if then else ""))


def users_short_note(res: SimilarUsers, k: int) -> None:
    """A list of similar users shorter than k, said on the log as :func:`short_note` says a movie list's: it holds
    every other user with a vector."""
    got = len(res.user_ids[0]) if len(res) else k
    if got < k:
        log.info("note: %s user%s, fewer than the %s asked for: that is every other user (users without training "
                 "ratings have no vector and are never listed)", f"{got:,}", "" if got == 1 else "s", f"{k:,}")


def _audience_movies(model: Model, tokens: list, strict: bool) -> list:
    """The movies of a list of them (``audience=[...]``, ``--audience @FILE``'s lines), each found as --movie finds
    it; one the model does not know refused (``strict``) or left out, said in one warning with the first's reason
    (as --movies leaves such lines out)."""
    found, missed = [], []
    for token in tokens:
        try:
            found.append(_found(model, token, "--audience"))
        except NotFoundError as err:
            if strict:
                raise NotFoundError(f"«--audience|audience»: {err.raw}", kind=err.kind,
                                    id=getattr(err, "id", None)) from None
            missed.append(err)
    if missed:
        log.warning("«--audience|audience»: %s of its %s movies left out (%s)%s", f"{len(missed):,}",
                    f"{len(tokens):,}", shorten(missed[0].raw, 160),
                    "«; --strict refuses them instead|; strict=True refuses them instead»")
    if not found:
        raise NotFoundError("«--audience|audience»: none of its movies is a movie of this model; check the ids or "
                            "titles")
    return found


def audience_note(res, k: int, include_seen: bool) -> None:
    """An audience shorter than k, said on the log as :func:`users_short_note` says a similar-users list's."""
    got = len(res.user_ids[0]) if len(res) else k
    if got == 0 and not include_seen:  # (a usability review: '0 users, fewer than the 10 asked for')
        log.info("note: no user to list: every user with a vector has rated it, and its raters are left out "
                 "(«--include-seen|exclude_seen=False» lists them)")
    elif got < k:
        if include_seen:
            log.info("note: %s user%s, fewer than the %s asked for: that is every user with a vector", f"{got:,}",
                     "" if got == 1 else "s", f"{k:,}")
        else:
            log.info("note: %s user%s, fewer than the %s asked for: that is every user with a vector who has not rated "
                     "it (its raters are left out; «--include-seen|exclude_seen=False» lists them too)", f"{got:,}",
                     "" if got == 1 else "s", f"{k:,}")


def explicit_note(model: Model) -> None:
    """After a user's list from an explicit run (not before: an error stays the only line)."""
    if model.engine.explicit:
        log.info("note: this run predicts ratings (model.objective: explicit), so its lists rank by predicted "
                 "rating, which favours movies few users rated; for top-K lists train a ranking model "
                 "(model.objective: implicit, the default)")


def unordered_note(model: Model) -> None:
    """After a new user's list with ``ordered`` from a model that takes the movies as a set: why."""
    e = model.engine
    loss = e.loss
    if loss == "als" and e.training_ratings.get("solve"):
        why = "recommend.foldin_recency is 0"
    elif loss == "als":
        why = "this als run was saved before embedrec recorded its users' solve; train it again to use the order"
    else:
        why = f"this model ({loss or 'its loss unknown'}) takes a new user's movies as a set; only als models " \
              "(model.loss: als, the default) weigh the latest most"
    _marked("note: «--ordered|ordered=True» changed nothing: %s", why)


LISTED_MAX = 200  # the longest list of movies a note writes out as a command's argument


def rated_note(model: Model, liked: list, rated: dict, left_out: dict, ordered: bool = False,
               features: bool = False, file_scale: tuple | None = None, watched: list | None = None) -> None:
    """After a new user's list from an implicit run, where the rated values changed nothing: training took each
    rating the dataset kept as a positive interaction, weighted by its value only with train.als_rating_weight >
    0, and fold-in takes them the same way. What the fold-in left out (below data.min_rating) the library said
    (``left_out``): the note then speaks of the other values, in the singular for one, and is not made where
    none is left. ``features``: the user was told by its demographics too, which the same list keeps.
    ``file_scale``: the scale of a --rated file's values where it is not the model's (IMDb's 1-10 on a 1-5 model:
    models_lookup.Told.scale): its low ratings are those below that scale's middle."""
    e = model.engine
    if e.explicit or e.training_ratings["rating_weight"] > 0 or e.training_ratings.get("count_weight", 0) > 0:
        return  # the values weigh the movies (a review: a count-weighted model was said to ignore them)
    if left_out:  # the values kept, if any (a review: 'the other values' where the one given was left out)
        kept = len(rated) - len(left_out)
        if kept > 0:
            _marked("note: this model (model.objective: implicit) takes every rating it kept as a positive "
                    "interaction, so the other «--rated|rated» " + ("value makes" if kept == 1 else "values make")
                    + " no difference")
        return
    # no movie left out: the same movies liked give the same vector and the same exclusions
    low = e.training_ratings["min_rating"]
    def listed(ids) -> str:  # as --liked and --exclude read it back: an id holding a comma or a quote in double
        return sh_quote(",".join('"' + str(m).replace('"', '""') + '"' if any(c in str(m) for c in ',"')
                                    else str(m) for m in ids))  # quotes, the list shell-quoted (safe text as it is)

    def whole(ids) -> str:  # the list where a command line can hold it, else said by its count: a list shortened
        text = listed(ids)  # with '[...]' is no command to run (a review: a diary's 600 movies in one line)
        return text if len(text) <= LISTED_MAX and shorten(text, LISTED_MAX) == text else \
            f"(the same {len(ids):,} movies)"

    same = whole([*liked, *rated])
    # a --rated file's movies without a rating: left out of its list, so of the same one too (quoted as the liked
    # ones: a review found 'Heat, The' split at its comma)
    gone = [whole(watched)] if watched else []
    counts = "count_weight" in e.training_ratings  # a red team: a count model's note spoke of ratings
    trained = ("every pair as a positive interaction, its count unweighted (train.als_count_weight 0)" if counts
               and low is None else f"the pairs counted {low:g} or more times (data.min_rating), their counts "
               "unweighted (train.als_count_weight 0)" if counts else "every rating as a positive interaction"
               if low is None else f"the ratings from {low:g} up (data.min_rating) as positive interactions")
    # a low rating is a like here too (a first-hour review: a 1.5-star film drove two of the top 5, the note not
    # saying how to keep it out): counted, with what learns from the liked ones alone
    lows = ""
    scale = e.scale
    if low is None and not counts and scale and scale[1] > 100 and file_scale is None:  # no star or percent scale:
        # counts read as ratings (plays; ingest warned so), where a floor at the scale's middle would drop nearly every
        # pair (a first-hour review was told data.min_rating=3751 of plays whose median was 1)
        lows = (f"; its values ({scale[0]:g}-{scale[1]:g}) look like counts, such as plays: to weigh each pair by its "
                "count, ingest with «--set data.repeats=sum|data.repeats='sum'» and train again")
    elif low is None and not counts and scale and scale[1] > scale[0]:
        on = file_scale or scale  # (a file's own: a review found IMDb's 2 and 4 of 10 counted by 1-5's middle, 3)
        mid = (on[0] + on[1]) / 2
        n = sum(1 for v in rated.values() if float(v) < mid)
        if n:
            floor = math.ceil((sum(scale) / 2 + scale[1]) / 2)  # (data.min_rating: on the model's scale)
            whose = "its" if file_scale is None else "the file's"
            lows = (f"; {n} of them rated below {mid:g} (the middle of {whose} {on[0]:g}-{on[1]:g} scale) count"
                    f"{'s' if n == 1 else ''} as a like too: leave {'it' if n == 1 else 'them'} out, or ingest with "
                    f"«--set data.min_rating={floor}|data.min_rating={floor}» and train again to learn from the "
                    "higher ratings alone")
    _marked("note: this model (model.objective: implicit) was trained on %s, so the «--rated|rated» values make no "
            "difference: «--liked|liked» %s" + (" «--ordered|ordered=True»" if ordered else "")
            + (" with the same «--user-features|user_features»" if features else "")
            + (" «--exclude|exclude» %s" if gone else "") + " gives the same list"
            + lows, trained, same, *gone)  # (lows: numbers and marks alone, read as the format's own)


def _marked(msg: str, *args, level: int = logging.INFO) -> None:
    """An info line (or ``level``'s) whose «CLI|library» marks are the format's own: its arguments (titles, ids) are
    shown as they are, never read as marks (errors.TermsFilter)."""
    log.log(level, msg, *args, extra={"marks_only": True})
