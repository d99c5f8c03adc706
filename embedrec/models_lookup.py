"""What a ``Model``'s arguments name, resolved against its catalogue: ``k`` (``k_arg``), the movies a list may hold
(``allowed_rows``: the genre and year filters, ``exclude`` and ``candidates``, each id checked by ``movie_rows_of``), a
known user given ratings since training (``known_row``), movies given by id or by title words (``find_movie``,
``resolve_movies``: a new user's history, read by ``told_history``) and one movie's row (``movie``). ``Model``'s
methods of the same names (``find_movie``, ``resolve_movies``, ``movie``) are these; the other questions'
modules (models_recommend.py, models_stream.py, models_scores.py) share the rest. numpy only: serving imports
this.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from embedrec.argcheck import choice_arg, genres_arg, list_arg, movie_arg
from embedrec.data.ids import id_list, is_integer_text, one_id, one_user, py_id, rated_map, refuse_frame
from embedrec.errors import NotFoundError, UsageError, library_terms, marked, shorten
from embedrec.serve.recommender import trained_on
from embedrec.sparse import unique

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
            raise no_known_candidates(given)
        if only.size < given:
            log.warning("%s of the %s «--candidates|candidates» %s not a movie of this model (not in its "
                        "training data): no list holds %s", f"{given - only.size:,}", f"{given:,}",
                        "is" if given - only.size == 1 else "are", "it" if given - only.size == 1 else "them")
    return model.engine.allowed(genres_arg(genres), year_min, year_max,
                                None if rows is None else rows[rows >= 0], only_rows=only)


def no_known_candidates(given: int) -> UsageError:
    """The one line for candidates none of which the model knows: its ids (Model's candidates=) or the CLI's
    titles (answers._excluded)."""
    return UsageError(f"none of the {given:,} «--candidates|candidates» is a movie of this model (not in its training "
                      "data), so no list could hold a movie; give ids of movies it was trained on, or leave "
                      "«--candidates|candidates» out")


class FilePairs(dict):
    """{user id: [movie ids]} read from a file of (user, movie) rows (``recommend --exclude @FILE``), with ``where``:
    {(user id, movie id): 'FILE:LINE'} of each pair's first line, which a refusal of one of its ids names."""

    def __init__(self, pairs: dict, where: dict):
        super().__init__(pairs)
        self.where = where


def as_mapping(exclude):
    """``exclude`` as a {user: movies} mapping where it is one: a Mapping, or a pandas Series of lists indexed by
    user (``df.groupby("user_id")["movie_id"].apply(list)``: a diff review found it refused as 'not an id (a
    list)'); else ``exclude`` as it is."""
    if isinstance(exclude, Mapping):
        return exclude
    if type(exclude).__name__ == "Series" and str(getattr(exclude, "dtype", "")) == "object" and len(exclude) and \
            isinstance(exclude.iloc[0], (list, tuple, set, frozenset, np.ndarray)):
        return exclude.to_dict()
    return exclude


def per_user_exclude(model, exclude, asked: tuple[np.ndarray, list] | None = None) -> tuple[dict, dict] | None:
    """``recommend(users, exclude={user id: movie ids})``: each user's own movies to leave out of that user's list
    alone (implicit's per-user ``user_items`` filter: what users did since training), as ({user row: movie rows}
    of the users the model knows, {user id as given: movie rows} of those it does not, which the popular fallback
    reads); None where ``exclude`` is no mapping (one list for every user; :func:`as_mapping`). A value is a list
    of movie ids or one id; ids the model does not know are left out, counted in one warning, as ``exclude``'s are.
    ``asked``: (the known rows, the unknown ids as given) of the users of the call: only their keys' movies are read
    (a diff review: another user's bad value failed the call, and a 943-user map cost 130 ms a one-user call), and
    a mapping none of whose keys is a user of the model is warned of (a {movie: rating} dict of another catalogue,
    or ids written otherwise than the model's: '0196', '196.0' in a file; a map of other real users is a day's file
    of users who did something, no news); without it (a stream) every key is read, and keys that are no user of
    the model are warned of."""
    exclude = as_mapping(exclude)
    if not isinstance(exclude, Mapping):
        return None
    e = model.engine
    keys = list(exclude)
    for key in keys:
        try:
            one_user(key, "the user whose movies exclude={user: [movie ids]} leaves out, e.g. exclude={196: [50]}")
        except UsageError as err:
            raise UsageError(f"«--exclude @FILE|exclude={{user: movies}}»: a key: {err}") from None
    rows, parsed = e.users.rows(keys)
    named = [str(key if p is None else p) for key, p in zip(keys, parsed)]
    if asked is not None:
        want_rows, want_ids = set(asked[0].tolist()), {str(q) for q in asked[1]}
        take = [i for i, (r, n) in enumerate(zip(rows.tolist(), named)) if r in want_rows or r < 0 and n in want_ids]
        if keys and not take and not (rows >= 0).any():  # (a map of real users not asked is no news: a day's file)
            log.warning("«--exclude @FILE|exclude» names %s, none of them a user of this model (the first: %s): "
                        "nothing is left out; «its user ids are read as --users reads them|a {user: [movie ids]} "
                        "mapping leaves each user's own movies out, a list leaves movies out of every list»",
                        f"{len(keys):,} user{'s' if len(keys) > 1 else ''}",
                        e.users.unknown_text(str(keys[0])))
    else:
        take = list(range(len(keys)))
        strangers = [keys[i] for i in take if rows[i] < 0]
        if strangers:
            log.warning("%s of the %s users «--exclude @FILE|exclude» names %s not a user of this model: %s (their "
                        "movies are left out of the most popular list only, where «--fallback popular|"
                        "missing='popular'» answers them)", f"{len(strangers):,}", f"{len(keys):,}",
                        "is" if len(strangers) == 1 else "are", e.users.unknown_text(str(strangers[0])))
    lists = []
    for i in take:
        key, value = keys[i], exclude[keys[i]]
        if isinstance(value, Mapping):
            raise UsageError(f"«--exclude @FILE|exclude={{user: movies}}»: user {key!r}'s movies are a mapping; give "
                             f"a list of movie ids, e.g. {{{key!r}: [50, 181]}}")
        items = [value] if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) else list(value)
        refuse_frame(items, f"exclude[{key!r}]: expected movie ids")
        lists.append(items)
    flat = [x for items in lists for x in items]  # one lookup for every user's movies (a loop of 100: 2x the call)
    try:
        got = movie_rows_of(model, flat, "exclude")
    except UsageError as err:  # which user's movies hold it, in each one's words (a file takes ids, no titles)
        bad = next((keys[i] for i, items in zip(take, lists) if _refused(model, items)), None)
        said = str(err)
        if bad is None:
            raise
        lib = said.replace("exclude:", f"exclude[{bad!r}]:", 1)
        line = ""
        if isinstance(exclude, FilePairs):  # the file's line of the first movie refused (a red team: no FILE:LINE)
            movies = [x for i, items in zip(take, lists) if keys[i] == bad for x in items]
            first = next((x for x in movies if _refused(model, [x])), None)
            line = exclude.where.get((bad, first), "")
        cli = (f"--exclude {line or '@FILE'}, user {bad}'s movies: {said.split(': ', 1)[1].split(';')[0]}; a file of "
               "user_id,movie_id rows takes the run's movie ids (a title's id: recommend --movie TITLE -k 1 "
               "shows it beside its similar movies, or history lists it)")
        raise UsageError(marked(cli, lib)) from None
    got = np.zeros(0, np.int64) if got is None else got
    known: dict = {}
    unknown: dict = {}
    given, missed = got.size, int(np.count_nonzero(got < 0))
    for i, part in zip(take, np.split(got, np.cumsum([len(x) for x in lists])[:-1])):
        part = unique(part[part >= 0])
        row = int(rows[i])
        into, at = (known, row) if row >= 0 else (unknown, named[i])  # (one user under two keys: both lists)
        into[at] = np.union1d(into[at], part) if at in into else part
    if missed:
        log.warning("%s of the %s movies «--exclude @FILE|exclude={user: movies}» names for its users %s not a movie "
                    "of this model (not in its training data): nothing to leave out for %s", f"{missed:,}",
                    f"{given:,}", "is" if missed == 1 else "are", "it" if missed == 1 else "them")
    return known, unknown


def _refused(model, items: list) -> bool:
    """Whether ``movie_rows_of`` refuses ``items`` (one user's, to name it)."""
    try:
        movie_rows_of(model, items, "exclude")
    except UsageError:
        return True
    return False


def refuse_mapping(items, name: str) -> None:
    """A mapping given as ``name`` (exclude=, candidates=) where only one list applies: read as its keys, the user
    ids would be taken for movie ids (a peer-parity review: ``exclude={user: [movies]}`` left 196 of 200 movies in
    and dropped movies numbered as the users)."""
    if isinstance(as_mapping(items), Mapping):
        per_user = " (recommend(users, exclude={user: [movie ids]}) leaves out each user's own)" \
            if name == "exclude" else ""
        raise UsageError(f"{name}= takes one list of movie ids for every list, not a mapping{per_user}: a "
                         f"mapping's keys would be read as movie ids; give a list, e.g. {name}=[50, 181]")


def movie_rows_of(model, items, name: str) -> np.ndarray | None:
    """The rows of movie ids ``items`` (-1 for an id this model does not know), or None for no items."""
    e = model.engine
    refuse_frame(items, f"{name}: expected movie ids")
    refuse_mapping(items, name)
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
    rows = model.engine.users.resolve([user], "error", lambda: trained_on(model.engine) + "«without --user, --liked/--rated "
                                      "are a new user's: drop --user|without user=, liked=/rated= are a new "
                                      "user's: leave user= out»")[1]
    return int(rows[0])


MISSING = ("error", "skip")  # what a title no movie matches gets: resolve_movies' and recommend_new's missing=


@dataclass
class Told:
    """A new user's history as recommend_new folds it in: ``liked`` (ids), ``rated`` ({id: rating}), ``names``
    ({id: the words given} of the rated movies found by title, which a warning names), ``mapped`` (a file's
    ratings mapped onto the model's scale: not warned of as off its step), ``how`` ({token: how it was found}
    where that is worth saying: a year one off, one of a title's several ids), ``skipped`` (the tokens left out:
    no movie matched them), ``scale`` (the file's own scale where its ratings are on another than the model's and
    were left as given, their values changing nothing: what a note on low ratings reads them on), ``from_file``
    (the ratings were read from a file or a DataFrame: left as given on a model whose list no value changes, not
    held to its scale; a value typed in is)."""

    liked: list
    rated: dict
    names: dict = field(default_factory=dict)
    mapped: bool = False
    how: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    scale: tuple | None = None
    from_file: bool = False
    watched: list = field(default_factory=list)  # movie rows a rated file lists without a rating: never listed


FILE_TITLES_SAID = 20  # a --liked/--rated file's titles said a line each up to this many (-v: every one)


def told_history(model, liked, rated, missing: str | None = None, strict: bool = False,
                 said=None, notes: bool = True) -> Told:
    """``recommend_new``'s ``liked`` and ``rated``, each a list/dict or a file (``os.PathLike``, as ``recommend
    --liked @FILE``/``--rated @FILE`` give them: serve.userfile; ``rated`` a DataFrame too), the ratings checked
    (before titles become ids: a refusal names the movie as given) and the titles turned into ids. A file's
    ratings are mapped onto the model's scale where they are on another (IMDb's 1-10; not where no value changes
    the list: Recommender.values_ignored). ``missing``: what a title no movie matches gets, 'error' (the
    NotFoundError) or 'skip' (left out, said in one note; every one missed: the first's error); None: 'skip' for a
    file, else 'error'. ``strict`` (unknown ids refused) goes with 'error' only. ``said(model, opt, token, id, how)``: the
    CLI's line per title found (a file's only where ``how`` says something), and per text taken as an id (``how``
    None); ``notes``: log ``how`` where no ``said`` says it."""
    from embedrec.serve import userfile

    e = model.engine
    for name, given in (("liked", liked), ("rated", rated)):  # a path given as text: a title to --liked's rule, so
        if isinstance(given, (list, tuple)) and len(given) == 1:  # said (a review: 'no movie title matches', a
            given = given[0]  # notebook's diary.csv; the command line's one token alike)
        if isinstance(given, str) and given.strip().lower().endswith((".csv", ".tsv", ".txt", ".zip", ".gz")) \
                and os.path.isfile(given.strip()):
            raise UsageError(f"«--{name} {given.strip()}|{name}={given.strip()!r}» is read as a movie's title or id; "
                             f"for the file of that name give «--{name} @{given.strip()}|{name}=pathlib.Path("
                             f"{given.strip()!r})»")
    files, lines = {}, {"liked": [], "rated": []}  # a file's: each movie's line, in order
    others: dict = {}  # a rated table's other title of a movie (IMDb's 'Original Title'), tried where its own misses
    own_ids: dict = {}  # a rated table's id beside each title, which picks among the movies sharing that title
    if userfile.is_file(liked):
        files["liked"], liked = str(liked), userfile.read_liked(liked, lines=lines["liked"],
                                                                names=e.catalogue.file_names())
    mapped, scale, watched = False, None, []
    from_file = userfile.is_file(rated) or type(rated).__name__ == "DataFrame"
    if from_file:
        table = userfile.read_rated(rated, names=e.catalogue.file_names(), counts=e._counts()) \
            if userfile.is_file(rated) else \
            userfile.rated_table(*userfile.frame_table(rated), "the DataFrame", names=e.catalogue.file_names(),
                                 counts=e._counts())
        files["rated"], lines["rated"] = table.name, [table.lines.get(m) for m in table.ratings]
        others, own_ids = table.others, table.ids
        watched = _watched_rows(model, table.watched)
        if e.values_ignored() or e._counts():  # as given; a note on low ratings reads them on their own scale
            rated, scale = table.ratings, None if e._counts() else userfile.file_scale(table, e.scale)
        else:
            rated = userfile.rescaled(table, e.scale)
        mapped = rated != table.ratings
    if missing is not None:
        choice_arg(missing, MISSING, "missing")
    if strict and missing == "skip":
        raise UsageError("strict=True refuses a movie the model does not know, missing='skip' leaves it out: give "
                         "one of them")
    rated = rated_map(rated)
    e.check_ratings(rated, from_file=from_file)
    out = Told([], {}, mapped=mapped, scale=scale, from_file=from_file, watched=watched)
    for name, tokens in (("liked", id_list(liked) if liked is not None else []), ("rated", list(rated))):
        if not tokens:
            continue
        how = "error" if strict else missing or ("skip" if name in files else "error")
        try:
            ids, by_title, found_how, skipped = resolve_detail(model, tokens, how, f"«--{name}|{name}»" + (
                f" {files[name]}" if name in files else ""), others=others if name == "rated" else None,
                row_ids=own_ids if name == "rated" else None)
        except (NotFoundError, UsageError) as err:  # a file's title: refused naming FILE:LINE, as its other errors
            at = getattr(err, "token_at", None)     # are (a first-hour review: --strict's had neither)
            line = lines[name][at] if name in files and at is not None and at < len(lines[name]) else None
            if line is not None and isinstance(getattr(err, "raw", None), str):
                err.raw = f"«--{name}|{name}» {files[name]}:{line}: {err.raw}"
                err.args = (library_terms(err.raw), *err.args[1:])
            raise
        out.how.update(found_how)
        out.skipped += skipped
        if name == "liked" and name in files:  # a liked movie listed again (a diary's rewatch): taken once, said
            ids = _once_a_movie(name, files[name], tokens, ids, lines[name])
        elif name in files:  # two lines of a file naming one movie: both named (a review: 'movie 50 is rated twice')
            _one_line_a_movie(model, name, files[name], tokens, ids, lines[name])
        if said is not None:  # a file's titles each said where it names at most FILE_TITLES_SAID (a first-hour
            # review could not check what its lines were taken as), else only where a guess was made (hundreds)
            titled = [t for t, m in zip(tokens, ids) if m is not _MISSED and t in by_title]
            each = name not in files or len(titled) <= FILE_TITLES_SAID
            for token, movie in zip(tokens, ids):
                if movie is _MISSED:
                    continue
                if token in by_title and (each or token in found_how):
                    said(model, f"--{name}", token, movie, found_how.get(token, ""))
                elif token in by_title:
                    log.debug("--%s '%s': movie %s", name, shorten(token, 60), movie)
                elif token not in by_title and isinstance(token, str) and name not in files:
                    said(model, f"--{name}", token, movie, None)  # by its id
            if not each:
                log.info("«--%s|%s» %s: %s titles matched as written (-v lists each)", name, name, files[name],
                         f"{sum(t not in found_how for t in titled):,}")
        elif notes:
            for token, note in found_how.items():
                log.info("«--%s|%s» '%s': movie %s (%s)", name, name, shorten(token, 60), by_title[token], note)
        if name == "liked":
            out.liked = [i for i in ids if i is not _MISSED]
            continue
        firsts: dict = {}
        for given, key in zip(tokens, ids):
            if key is _MISSED:
                continue
            if isinstance(given, str) and given != str(key):
                out.names[key] = given
            if py_id(key) in firsts:  # (the CLI's lines said each title's movie just before)
                raise UsageError(f"«--rated|rated»: movie {shorten(repr(key), 40)} is rated twice" + ("" if said else (
                    f" (as {shorten(repr(firsts[py_id(key)]), 40)} and {shorten(repr(given), 40)})")) +
                    "; give each movie one rating")
            firsts[py_id(key)] = given
            out.rated[key] = rated[given]
    return out


_MISSED = object()  # resolve_detail's id of a token left out


def _watched_rows(model, watched: dict) -> list[int]:
    """The movie rows of a rated file's rows without a rating (``watched``: {movie as given: line}), each found as a
    title or id is, one no movie matches (or several do) left aside without a word: they are never listed, not
    folded in."""
    e, rows = model.engine, []
    for token in watched:
        try:
            rows.append(int(e.match_movie(str(token), suggest=False)[0]))
        except (NotFoundError, UsageError):
            continue
    return rows


def _once_a_movie(name: str, file: str, tokens: list, ids: list, lines: list) -> list:
    """``ids`` with each movie a liked file names again kept at its last line alone (the others ``_MISSED``), as a
    rated file keeps a movie's last line (userfile.rated_table), and a history in order has its latest place: said
    in one line naming the first movie so named (a first-hour review: a diary's rewatch, or a click log's repeated
    item, refused the whole file; a review: the first line kept lost a rewatch's latest place)."""
    last: dict = {}
    for i, movie in enumerate(ids):
        if movie is not _MISSED:
            last[py_id(movie)] = i
    out, again = [], []
    for i, movie in enumerate(ids):
        if movie is not _MISSED and last[py_id(movie)] != i:
            again.append((i, last[py_id(movie)]))
            out.append(_MISSED)
        else:
            out.append(movie)
    if again:
        i, j = again[0]
        at = (f"line {lines[i]}" if i < len(lines) and lines[i] is not None else f"'{shorten(tokens[i], 50)}'")
        later = (f"line {lines[j]}" if j < len(lines) and lines[j] is not None else f"'{shorten(tokens[j], 50)}'")
        log.info("«--%s|%s» %s: %s line%s name%s a movie a later line names again (%s, again at %s): each movie "
                 "taken once, at its last line", name, name, file, f"{len(again):,}", "" if len(again) == 1 else "s",
                 "s" if len(again) == 1 else "", at, later)
    return out


def _one_line_a_movie(model, name: str, file: str, tokens: list, ids: list, lines: list) -> None:
    """A file's two lines that name one movie (as typed otherwise: 'Star Wars' and 'Star Wars (1977)', a title and
    its id, or a line repeated) refused in one line naming the file's two lines (``lines``: each token's), the words
    of each and the movie."""
    first: dict = {}
    for i, (token, movie) in enumerate(zip(tokens, ids)):
        if movie is _MISSED:
            continue
        j = first.setdefault(py_id(movie), i)
        if j == i:
            continue
        m = model.engine.movie_rows([movie])[0][0]
        title = model.engine.catalogue.shown(int(m)) if m >= 0 and any(model.engine.catalogue.titles) else ""
        at, was = (lines[k] if k < len(lines) else None for k in (i, j))
        raise UsageError(f"«--{name}|{name}» {file}" + (f":{at}" if at is not None else "") + f": '{shorten(token, 50)}'"
                         f" is movie {movie}{f' ({title})' if title else ''}, as '{shorten(tokens[j], 50)}'"
                         + (f" at line {was}" if was is not None else "") + " is; give each movie once (remove one "
                         "of the two lines)")


def _own_id_row(e, title: str, own) -> int:
    """The movie row of ``own`` (the id a rated file's row gives beside ``title``) where the run has that id and its
    title is ``title`` as given (case and accents aside; with its year where the file gives one), else -1: the id
    then says nothing the title does not (another catalogue's ids: MovieLens' movieId, a diff review)."""
    if own is None:
        return -1
    row = int(e.movie_rows([own])[0][0])
    if row < 0:
        return -1
    from embedrec.serve.catalogue import fold_title

    given = fold_title(title.strip())
    return row if given in (fold_title(e.catalogue.titles[row] or ""), fold_title(e.catalogue.shown(row))) else -1


def resolve_detail(model, tokens: list, missing: str = "error", what: str = "movies",
                   others: dict | None = None, row_ids: dict | None = None) -> tuple[list, dict, dict, list]:
    """(an id per token, ``_MISSED`` for one left out; {token: id} of those found by their title; {token: how}
    where that is worth saying; the tokens left out), each token by ``Model.find_movie``'s rule, text no title
    holds that may be an unknown id kept as given. ``missing='skip'``: a title no movie matches, or that several
    do, is left out and said in one note naming ``what`` (every token missed: the first's error, as with
    'error'). ``others``: {token: another title of it} (an IMDb export's 'Original Title'), tried where the token
    matches no title, said in its how; ``row_ids``: {token: the id its file's row gives beside it}, taken where the
    run's movie of that id has that title (:func:`_own_id_row`: SKUs of one title)."""
    if isinstance(tokens, (str, bytes)):
        raise UsageError(f"resolve_movies: got the text '{shorten(tokens)}'; give a list of ids or titles, e.g. "
                         "['star wars', 181]")
    e = model.engine
    ids, by_title, hows, missed = [], {}, {}, []
    first, first_at = None, None
    for t in list_arg(tokens, "resolve_movies"):
        t = movie_arg(t, "resolve_movies", "['star wars', 181]")
        if not isinstance(t, str):
            ids.append(t)
            continue
        picked = _own_id_row(e, t, (row_ids or {}).get(t))
        if picked >= 0:  # the file's id beside the title, the run's movie of that title: that one (SKUs of one
            found = py_id(e.movie_ids[picked])  # title, which the title alone took as the more rated: a review)
            ids.append(found)
            if str(found) != t.strip():
                by_title[t] = found
            continue
        try:
            try:
                row, how = e.match_movie(t, suggest=missing != "skip")
            except NotFoundError as err:
                other = (others or {}).get(t)
                if err.kind == "movie" or not other:
                    raise
                try:  # IMDb's 'Original Title' where its 'Title' matches nothing (a first-hour review)
                    row, how = e.match_movie(other, suggest=False)
                except (NotFoundError, UsageError):
                    raise err from None
                how = f"no title matches it; its original title '{shorten(other, 50)}' does" + (f" ({how})" if how
                                                                                               else "")
        except NotFoundError as err:
            if err.kind == "movie":  # an id this model does not know: left out (or refused, strict) by recommend_new
                ids.append(t)
                continue
            if missing != "skip":  # title words that match nothing: said here
                err.token_at = len(ids)  # (told_history names a file's line)
                raise
            first = first or err
            first_at = len(ids) if first is err else first_at
            missed.append((t, ""))
            ids.append(_MISSED)
            continue
        except UsageError as err:  # several movies match (Catalogue.match_movie's refusal)
            several = getattr(err, "matches", None)
            if missing != "skip" or not several:
                err.token_at = len(ids)
                raise
            first = first or err
            first_at = len(ids) if first is err else first_at
            missed.append((t, f"{several} movies match it: {getattr(err, 'first', '')}"
                                  f"{', ...' if several > 3 else ''}; give the id of the one meant"))
            ids.append(_MISSED)
            continue
        found = py_id(e.movie_ids[row])
        ids.append(found)
        if str(found) != t.strip():
            by_title[t] = found
            if how:
                hows[t] = how
    if missed:
        if all(i is _MISSED for i in ids):
            try:
                e.match_movie(missed[0][0])  # its error as typed, close titles offered
            except (NotFoundError, UsageError) as err:
                err.token_at = first_at
                raise
            first.token_at = first_at
            raise first
        shown = ", ".join(f"'{shorten(t, 50)}'" + (f" ({n})" if n else "") for t, n in missed[:5]) + (
            f" and {len(missed) - 5:,} more" if len(missed) > 5 else "")
        log.warning(what.replace("%", "%%") + ": matched %s of %s movies; not found: %s",
                    f"{len(ids) - len(missed):,}", f"{len(ids):,}", shown, extra={"marks_only": True})
    return ids, by_title, hows, [t for t, _ in missed]


def find_movie(model, query: str):
    """``Model.find_movie``: a movie id from an id, an exact title, 'Title (year)' or title words."""
    query = movie_arg(query, "find_movie", "'star wars'")  # not the title 'None' (a review)
    if isinstance(query, (float, np.floating)) and float(query).is_integer():
        query = int(query)  # 50.0, as a pandas column with a gap holds movie 50 (as similar() reads it)
    return py_id(model.engine.movie_ids[model.engine.find_movie(str(query))])


def resolve_movies(model, tokens: Iterable, missing: str = "error") -> tuple[list, dict]:
    """``Model.resolve_movies``: (the ids of ``tokens`` in order, {token: id} of those found by their title), each
    by ``Model.find_movie``'s rule, text no title holds that may be an unknown id kept as given (words no id can be
    are an error, on a run without titles too). ``missing='skip'``: a title no movie matches (or several do) is
    left out of the ids, said in one note."""
    choice_arg(missing, MISSING, "missing")
    ids, by_title, _, _ = resolve_detail(model, tokens, missing)
    return [i for i in ids if i is not _MISSED], by_title


def movie(model, movie) -> dict:
    """``Model.movie``: one movie's row, {'movie_id', 'title', 'year', 'genres'}."""
    e = model.engine
    row = e.movie_row(movie_arg(movie, "movie"))
    return {"movie_id": py_id(e.movie_ids[row]), "title": e.titles[row] or None, "year": e.years[row],
            "genres": list(e.genres[row] or [])}
