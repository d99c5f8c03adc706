"""The catalogue a run serves from: user and movie ids, titles, years and genres, and the lookups over them
(ids -> rows, a movie by id or title words, genre and year filters, the movie cells of an output row).

Read from a run's ``user_ids.npy``, ``movie_ids.npy`` and ``movies.json`` (numpy and json only); a run written
before those files is read from its Parquet files through pyarrow.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator

import numpy as np

from embedrec.argcheck import genre_key
from embedrec.data.ids import IdMap, ids_from_arrow, is_integer_text
from embedrec.errors import NotFoundError, UsageError, marked, set_hint, sh_quote, shorten
from embedrec.run import Run, twin_groups
from embedrec.run_fixes import run_fix
from embedrec.run_layout import CONFIG, MOVIE_IDS, MOVIES_TABLE, USER_IDS, USERS_TABLE
from embedrec.sparse import unique

log = logging.getLogger("embedrec")
TWIN_SCAN_MAX = 4  # Catalogue.twins of at most this many movies scans the titles; more, every film grouped once
TWIN_SCANS = 3  # calls of Catalogue.twins that may scan; the next groups every film once (a model kept open)
# MovieLens moves a title's leading article to its end ("Godfather, The", "Boot, Das", "Enfer, L'")
_ARTICLE_AT_END = re.compile(r"^(.+), (The|A|An|L'|La|Le|Les|Il|Lo|Gli|Das|Der|Die|Det|Den|El|Los|Las|Un|Une|Una)$")


def fold_title(text: str) -> str:
    """``text`` for title matching: without accents and case ('Misérables' and 'miserables' match, 'Café' and
    'cafe'), as users type titles on a keyboard without the catalogue's diacritics."""
    if text.isascii():  # no accents to take off (NFKD leaves ASCII as it is): the common case, a C call alone
        return text.casefold()
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


_LOOSE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'", "\u201c": '"',
                        "\u201d": '"', "\u201e": '"', "\u2013": "-", "\u2014": "-"})


def loose_title(text: str) -> str:
    """``text`` folded (:func:`fold_title`) and written as people type titles: curly quotes straight, '&' as 'and',
    no apostrophes and no dots ("Schindler’s List" and 'Schindlers List' match "Schindler's List", 'ET the
    Extra-Terrestrial' 'E.T. the Extra-Terrestrial'). The second try of a title that matched nothing as given."""
    return _loosen(fold_title(text))


def _loosen(t: str) -> str:
    """:func:`loose_title` of folded text: each word loosened alone, as it changes no space into a character or a
    character into a space but '&' (into ' and ')."""
    if not t.isascii() or "`" in t:  # (translate looks each character up: the one ASCII character it maps is '`')
        t = t.translate(_LOOSE)
    t = t.replace("&", " and ").replace("'", "").replace(".", "")
    return " ".join(t.split())


LOOSE_ID = "its id, typed loosely"  # how match_movie found a text id typed in another case or without accents

# a title's form that ends in its year, '(1984)': numbers alone never match it (Catalogue.title_rows)
_WITH_YEAR = re.compile(r" \(\d{4}\)$")
_BARE_YEAR = re.compile(r"\s((?:18|19|20)\d{2})$")  # a title's year typed without its brackets
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # a word's punctuation before and after it ('40,', '"cl9"', 'here!')
_YEAR_WORD = re.compile(r"\(\d{4}\)")


def query_word(word: str) -> str:
    """One word of a title query as it is matched: without the punctuation around it, as a title's words are read
    ('40,' is the number 40, so that 'widget 40, size m' is not 'widget 340, size m': a review), but a year in
    parentheses, '(1995)', kept (it matches a title's year) and a word of punctuation alone ('&') as it is."""
    if _YEAR_WORD.fullmatch(word):
        return word
    return _EDGES.sub("", word) or word


def _groups_by_row(groups: list) -> dict[int, np.ndarray]:
    """{row: the rows of its film} of :func:`twin_groups`' lists."""
    return {int(r): a for a in (np.asarray(g, np.int64) for g in groups) for r in a.tolist()}


def _unaccented(text: str) -> str:
    """``text`` without its accents ('café' -> 'cafe'): its letters decomposed, their combining marks left out."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class Catalogue:
    """Ids, titles, years and genres per row, and the lookups over them. Its lists are the run's: read them, never
    change them in place (the filters index each genre's rows and the years once per list)."""

    _by_genre: tuple | None = None  # (defaults for a Catalogue pickled before these caches existed)
    _year_array: tuple | None = None
    _loose_names: tuple | None = None
    _close: tuple | None = None
    _index: tuple | None = None
    _loose_index: tuple | None = None
    _words: tuple | None = None
    _loose_words: tuple | None = None
    _user_fold = None  # () -> whether the run's dataset read its user ids lower-cased (:func:`users_folded`)
    _columns_read = None  # () -> the columns the run's dataset was read from (:func:`columns_read`)
    _loose_ids: tuple | None = None  # (the movie ids, {an id typed loosely: its rows}): _loose_id_rows'

    def __init__(self, user_ids: np.ndarray, movie_ids: np.ndarray, titles: list, years: list, genres: list,
                 twins: list | None = None):
        """``twins``: the rows of each film listed under several ids (:func:`twin_groups` of the titles and years,
        as a run's movies.json holds them since session 67); None: found from the titles on first use."""
        self.user_ids, self.movie_ids = user_ids, movie_ids
        self.titles, self.years, self.genres = titles, years, genres
        self._users = self._movies = self._names = self._loose_names = self._close = None
        self._index = self._loose_index = self._words = self._loose_words = None
        self._sources: dict = {}  # {"user"|"movie": (the run's file of those ids, its fix)}: a run's, said as damage
        self._by_genre: tuple | None = None  # (the genres list it was built from, {genre: movie rows})
        self._year_array: tuple | None = None  # (the years list, an int array with -1 for none)
        self._twin_rows: tuple | None = None  # (the titles list, {row: the rows of its film}): twins'
        self._twin_pairs: tuple | None = None  # (the titles list, (rows, their twins) sorted by row, a bool a row): with_twins'
        # whether a known user's lists leave out twins (with_twins): a catalogue in memory (from_parts), or a run's
        # whose movies.json holds its groups; a run trained before (none recorded) lists as it did, not grouping
        # every title at each fresh recommend (0.37 s to 0.59 s at 273,000 titles: a diff review)
        self.twins_known = True
        if twins is not None:
            self._twin_rows = (titles, _groups_by_row(twins))

    @classmethod
    def from_run(cls, run: Run) -> Catalogue:
        out = cls._from_run(run)
        out._sources = {k: (f"run '{run.path}': {name}", run_fix(run.path)) for k, name in
                        (("user", USER_IDS if run.checksum(USER_IDS) else USERS_TABLE),
                         ("movie", MOVIE_IDS if run.checksum(MOVIE_IDS) else MOVIES_TABLE))}
        out._user_fold = functools.partial(users_folded, run)
        out._columns_read = functools.partial(columns_read, run)
        return out

    @classmethod
    def _from_run(cls, run: Run) -> Catalogue:
        cat = run.catalogue()
        if cat is not None:  # .npy ids and a JSON catalogue: no pyarrow on the serving path
            user_ids, movie_ids, movies = cat
            out = cls(user_ids, movie_ids, movies["title"], movies["year"], movies["genres"], movies.get("twins"))
            out.twins_known = movies.get("twins") is not None
            return out
        # a run written before those files: its Parquet files, through pyarrow
        # one Array per column: ChunkedArray.to_numpy() would import pandas
        users = {c: a.combine_chunks() for c, a in zip(["user_id"], run.parquet("users", ["user_id"]).columns)}
        cols = ["movie_id", "title", "year", "genres"]
        movies = {c: a.combine_chunks() for c, a in zip(cols, run.parquet("movies", cols).columns)}
        out = cls(ids_from_arrow(users["user_id"]), ids_from_arrow(movies["movie_id"]), movies["title"].to_pylist(),
                  movies["year"].to_pylist(), movies["genres"].to_pylist())
        out.twins_known = False
        return out

    @classmethod
    def from_parts(cls, user_ids: np.ndarray, movies: dict) -> Catalogue:
        """From arrays in memory: ``movies`` holds parallel lists movie_id, title, year, genres."""
        return cls(np.asarray(user_ids), np.asarray(movies["movie_id"]), list(movies["title"]), list(movies["year"]),
                   list(movies["genres"]))

    # ----------------------------------------------------------------------------------------- ids -> rows
    @property
    def users(self) -> IdMap:
        """The user ids <-> rows (an IdMap, built on first use)."""
        if self._users is None or self._users.ids is not self.user_ids:
            self._users = IdMap(self.user_ids, "user", self._id_source("user"))
            self._users.fold = getattr(self, "_user_fold", None)
        return self._users

    @property
    def movies(self) -> IdMap:
        if self._movies is None or self._movies.ids is not self.movie_ids:
            self._movies = IdMap(self.movie_ids, "movie", self._id_source("movie"))
        return self._movies

    def _id_source(self, kind: str) -> tuple[str, str] | None:
        return (getattr(self, "_sources", None) or {}).get(kind)  # (a Catalogue pickled before it had them: none)

    def user_rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        """Map external user ids to rows; returns (rows with -1 for unknown, the parsed ids)."""
        return self.users.rows(ids)

    def movie_rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        """Map external movie ids to rows, as user_rows (a binary search, not a scan per id)."""
        return self.movies.rows(ids)

    def user_row(self, user_id) -> int:
        return self.users.row(user_id, "use «--fallback popular|missing='popular'», or «--liked/--rated|"
                                       "recommend_new(liked=..., rated=...)» to recommend for a new user")

    def movie_row(self, movie_id) -> int:
        row = int(self.movies.rows([movie_id])[0][0])
        if row >= 0:  # the hint below is worked out for an unknown id only (any(titles) reads the whole catalogue)
            return row
        if not any(self.titles):  # a review: the hint offered a title search that this run then refused
            return self.movies.row(movie_id, "check the id (movies.parquet in the run lists them; this run has no "
                                             "titles to search: its dataset was ingested without a movies file)")
        return self.movies.row(movie_id, "check the id (movies.parquet in the run lists them) or search by title "
                                         "with «--movie \"title words\"|find_movie('title words')»")

    def file_names(self) -> dict:
        """{'movie', 'rating', 'title': the name of the column the run's dataset read each from} (as its config.yaml
        records them: a new user's file headed by them is read as one headed 'movie_id,rating' is; a review: 'artist,
        plays' was refused on a dataset read from those columns); {} for a catalogue of no run."""
        if getattr(self, "_columns_read", None) is None:
            return {}
        if not isinstance(getattr(self, "_file_names", None), dict):
            self._file_names = self._columns_read()
        return self._file_names

    # ----------------------------------------------------------------------------------------- search
    def find_movie(self, query: str, counts=None) -> int:
        """A movie by id, exact title, 'Title (year)', or title words; an exact title wins over word matches, and
        a title is also matched with its article in front ('The Godfather' for 'Godfather, The') or, when no title
        is exactly the query, without it ('Godfather'); then as typed loosely (:func:`loose_title`), then, for
        'Title (year)', at the year one off. Ambiguity raises UsageError, except between rows of one title and year
        (a catalogue listing a film twice: the more rated is taken, ``counts`` a callable giving each movie's
        training ratings). Not found, NotFoundError: of kind 'movie' where the query may be an id (a new user's
        history leaves an unknown one out), else none; either offers close titles."""
        return self.match_movie(query, counts)[0]

    def match_movie(self, query: str, counts=None, suggest: bool = True) -> tuple[int, str]:
        """:meth:`find_movie`'s row and how it was found where that is worth saying: '' for an id or a title as
        given, else a clause ('no title of 1975 matches; this is of 1974', 'one of 2 movies titled ...: the
        more rated'). ``suggest`` False: a query no title matches is refused without close titles (a file's misses
        each skipped: difflib over 100,000 titles takes about a second)."""
        q = query.strip()
        hit = self.movie_rows([q])[0][0]
        if hit >= 0:
            return int(hit), ""
        cands, how = self.title_rows(q), ""
        if not cands:
            cands = self.title_rows(q, loose=True)
        year = _WITH_YEAR.search(q)
        bare = _BARE_YEAR.search(q) if not cands and not year else None
        if bare:  # 'pulp fiction 1995': the year without its brackets, read as 'Title (year)' is, one off too (a
            try:  # first-hour review: '(1995)' found it, '1995' did not)
                return self.match_movie(f"{q[:bare.start()]} ({bare.group(1)})", counts, suggest=False)
            except NotFoundError:
                pass
        if not cands and year:  # Letterboxd's and IMDb's years are often one off MovieLens's (a first-hour review)
            given, head = int(q[-5:-1]), q[:year.start()]
            near = sorted({r for y in (given - 1, given + 1) for r in  # the title exactly, as given or typed loosely
                           (self.title_rows(f"{head} ({y})", words=False) or
                            self.title_rows(f"{head} ({y})", loose=True, words=False))})
            if near and len(self._one_film(near)) == 1:
                cands = near
                how = f"no title of {given} matches; this is of {self.years[near[0]]}"
        if not cands and year and ":" in q[:year.start()]:  # IMDb's 'Star Wars: Episode IV - A New Hope', Letterboxd's
            # 'Léon: The Professional' (a first-hour review): each side of the first ':' as a title of its own
            cands, how = self._subtitle_rows(q[:year.start()], int(q[-5:-1]))
        if not cands and year:  # a catalogue without years (titles from a ratings file's own column, a movies file
            # without them: a first-hour review's Letterboxd file matched none): the title alone, among movies of no year
            head = q[:year.start()]
            bare = [r for r in (self.title_rows(head, words=False) or self.title_rows(head, loose=True, words=False))
                    if self.years[r] is None]
            if bare and len(self._one_film(bare)) == 1:
                cands, how = bare, f"its year {q[-5:-1]} not checked: this movie has none here"
        if len(cands) > 1 and len(self._one_film(cands)) == 1:  # one film under several ids (ML-100K's 21 pairs)
            counted = np.asarray(counts(), np.int64)[cands] if counts is not None else np.zeros(len(cands), np.int64)
            best = cands[int(np.argmax(counted))]  # the first of the most rated
            listed = ", ".join(f"{self.movie_ids[r]} has {int(c):,}" for r, c in zip(cands, counted))
            tie = counts is None or (counted == counted.max()).sum() > 1
            said = f"one of {len(cands)} movies titled '{self.shown(best)}', " + (
                "the first" if counts is None else f"the first of the most rated ({listed} ratings)" if tie else
                f"the more rated ({listed} ratings)")
            return best, f"{how}; {said}" if how else said
        if len(cands) == 1:
            return cands[0], how
        if not cands:
            titled, ints = any(self.titles), self.movie_ids.dtype.kind in "iu"
            if not titled and not ints:  # text ids are the names (an artist's): typed loosely, as a title is
                loose = self._loose_id_rows(q)  # ('sigur ros' for 'Sigur Rós': a review found it refused)
                if len(loose) == 1:
                    return loose[0], LOOSE_ID
            if not titled and ints and not is_integer_text(q):  # no id, and no titles to match: an error where its
                # words are given (not kind 'movie', the unknown id a new user's history leaves out: a review found
                # --liked 'star wars,181' answered from 181 alone while --movie 'star wars' was refused)
                raise NotFoundError(f"'{shorten(q)}' is no movie id (this run's are integers), and this run has no "
                                    "titles to search for it (its dataset was ingested without a movies file: "
                                    "data.movies); give movie ids (movies.parquet in the run lists them)")
            if not titled or not ints or is_integer_text(q):  # it may be an id
                how = ("no title matches it; check the id (movies.parquet in the run lists them) or give title "
                       "words") if titled else ("this run has no titles to search (its dataset was ingested without "
                                                "a movies file: data.movies); check the id (movies.parquet in the "
                                                "run lists them)")
                meant = self.movies.meant(q)  # (a red team: '036324453x' for '036324453X' had no 'did you mean',
                # which --user gave)
                raise NotFoundError(f"movie '{shorten(q)}' is not in the training data ({len(self.movies):,} "
                                    f"movies){meant or ', and ' + how}"
                                    f"{self.close_titles(q) if titled and suggest and not meant else ''}", kind="movie",
                                    id=q)
            raise NotFoundError(f"no movie title matches '{shorten(query)}' (of the {len(self.movies):,} movies "
                                "with training ratings: a movie no kept rating names is not in the model); try fewer "
                                f"words or the movie id{self._several_ids(q)}{self.close_titles(q) if suggest else ''}")
        shown = "; ".join(f"{self.movie_ids[i]}: {self.shown(i)}" for i in cands[:10])  # no '(None)' for a movie
        # without a year (a notebook review)
        more = f" and {len(cands) - 10} more" if len(cands) > 10 else ""
        several = UsageError(f"'{shorten(query)}' matches {len(cands)} movies: {shown}{more}; pass the movie id or more "
                             "words")
        several.matches = len(cands)  # what a caller tells this refusal by (models_lookup.resolve_detail), not its text
        several.first = "; ".join(f"{self.movie_ids[i]}: {self.shown(i)}" for i in cands[:3])  # (its note's)
        raise several

    def _loose_id_rows(self, query: str) -> list[int]:
        """The rows whose text ids are ``query`` typed loosely (:func:`loose_title`: case, accents, quotes, '&'), for a
        catalogue without titles; the ids so written indexed once, at the first such question."""
        if getattr(self, "_loose_ids", None) is None or self._loose_ids[0] is not self.movie_ids:
            index: dict[str, list[int]] = {}
            for row, mid in enumerate(self.movie_ids.tolist()):
                index.setdefault(loose_title(str(mid)), []).append(row)
            self._loose_ids = (self.movie_ids, index)
        return self._loose_ids[1].get(loose_title(query), [])

    def _subtitle_rows(self, head: str, given: int) -> tuple[list[int], str]:
        """(the rows, how) where ``head``'s side before or after its first ':' names exactly one film at the year
        ``given`` (or, where none is, at the year one off, as :meth:`match_movie` allows), the text after a ' - ' in
        the second side tried too (IMDb's 'Star Wars: Episode V - The Empire Strikes Back'): ([], '') where neither
        side names a film, or the sides name different films or one names several."""
        sides = [s.strip() for s in head.split(":", 1)]
        if " - " in sides[1]:  # IMDb's 'Star Wars: Episode V - The Empire Strikes Back': the episode's own title
            sides.append(sides[1].split(" - ", 1)[1].strip())
        for years in ((given,), (given - 1, given + 1)):
            found: dict[int, str] = {}
            for side in sides:
                if not side:
                    continue
                for y in years:
                    name = f"{side} ({y})"
                    for r in self.title_rows(name, words=False) or self.title_rows(name, loose=True, words=False):
                        found.setdefault(r, side)
            if not found:
                continue
            rows = sorted(found)
            if len(self._one_film(rows)) != 1:
                return [], ""
            side = found[rows[0]]
            which = ("before ':'", "after ':'", "after ':' and ' - '")[sides.index(side)]
            how = f"no title matches it; its title {which} does"
            if self.years[rows[0]] != given:
                how = f"no title of {given} matches; its title {which} does, of {self.years[rows[0]]}"
            return rows, how
        return [], ""

    def shown(self, row: int) -> str:
        """A movie as its title and year read: 'Heat (1995)', a title alone where it has no year."""
        return (self.titles[row] or "") + (f" ({self.years[row]})" if self.years[row] is not None else "")

    def twin_films(self) -> int:
        """How many films the catalogue lists under several ids, where a known user's lists leave out a rated
        film's other ids (``twins_known``; its recorded groups): 0 otherwise, or where none is recorded."""
        if not getattr(self, "twins_known", True) or self._twin_rows is None:
            return 0
        return len({a[0] for a in (r.tolist() for r in self._twin_rows[1].values()) if a})

    def twins(self, rows) -> np.ndarray:
        """The other rows of the films of ``rows``: a catalogue listing one film under several ids (ML-100K's 17
        titles, e.g. 246 and 268 'Chasing Amy (1997)'), by title and year as written (a title without a year is
        no film's twin: two 'Hamlet's may be two films); sorted, none of ``rows``. A list of movies like one, or
        for one who liked it, leaves them out (a review: --movie 246 listed 268 first, and --liked 246 listed it
        too)."""
        rows = np.asarray(rows, np.int64).ravel()
        built = self._twin_rows is not None and self._twin_rows[0] is self.titles
        self._twin_scans = getattr(self, "_twin_scans", 0) + 1
        if not built and rows.size <= TWIN_SCAN_MAX and self._twin_scans <= TWIN_SCANS:  # a few movies (--movie, a
            # short --liked) of a run from before movies.json held the groups: each one's title looked for (0.03 s a
            # movie at 500,000 titles), not every film grouped (0.7 s: a fresh recommend's time); past TWIN_SCANS
            # calls (a model kept open: a server's, a notebook's) grouped once (a review: 13-29 ms every call)
            found = [r2 for r in rows.tolist() if self.titles[r] and self.years[r] is not None
                     for r2, t in enumerate(self.titles) if t == self.titles[r] and self.years[r2] == self.years[r]]
            return np.setdiff1d(np.asarray(found, np.int64), rows) if found else np.zeros(0, np.int64)
        groups = self._film_groups()
        if not groups or rows.size == 0:
            return np.zeros(0, np.int64)
        found = [groups[r] for r in rows.tolist() if r in groups]
        return np.setdiff1d(np.concatenate(found), rows) if found else np.zeros(0, np.int64)

    def _film_groups(self) -> dict[int, np.ndarray]:
        """{row: the rows of its film} of every film listed under several ids: the run's (movies.json), or found
        from the titles on first use (0.7 s at 500,000 titles)."""
        if self._twin_rows is None or self._twin_rows[0] is not self.titles:
            self._twin_rows = (self.titles, _groups_by_row(twin_groups(self.titles, self.years)))
        return self._twin_rows[1]

    def with_twins(self, users: np.ndarray, movies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(user, movie) pairs (a list's exclusions, grouped by user) with the pairs of each movie's twins added, still
        grouped by user (the same film under another id: a user who rated 246 'Chasing Amy (1997)' is not offered 268,
        its twin; 9 of ML-100K's 9,430 top-10 slots were before session 67); the pairs as given where the catalogue
        has no twins."""
        if not getattr(self, "twins_known", True):  # (a run from before movies.json held them: as listed then)
            return np.asarray(users, np.int64), np.asarray(movies, np.int64)
        if self._twin_pairs is None or self._twin_pairs[0] is not self.titles:
            groups = self._film_groups()
            src = np.asarray(sorted(groups), np.int64)
            parts = [groups[int(r)][groups[int(r)] != r] for r in src.tolist()]
            has = np.zeros(len(self.titles), bool)  # each row's: whether it has a twin (one look for a list's
            has[src] = True                          # movies: most have none, 5 us where the search took 45)
            self._twin_pairs = (self.titles, (np.repeat(src, [len(p) for p in parts]),
                                              np.concatenate(parts) if parts else np.zeros(0, np.int64), has))
        src, dst, has = self._twin_pairs[1]
        users, movies = np.asarray(users, np.int64), np.asarray(movies, np.int64)
        if not src.size or not movies.size or not has[movies].any():
            return users, movies
        lo, hi = np.searchsorted(src, movies, "left"), np.searchsorted(src, movies, "right")
        n = hi - lo
        if not n.any():
            return users, movies
        at = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))  # each pair's twins' places in dst
        users, movies = np.concatenate([users, np.repeat(users, n)]), np.concatenate([movies, dst[at]])
        order = np.argsort(users, kind="stable")  # grouped by user, as given: an index's search slices each
        return users[order], movies[order]        # user's exclusions by counts (a diff review: with an HNSW index
        # every user after the first twin got another's, 7,131 of 9,430 slots a movie the user rated)

    def _one_film(self, rows: list[int]) -> set:
        """The distinct (title, year) of ``rows``: one where a catalogue lists one film under several ids."""
        return {(fold_title(self.titles[r] or ""), self.years[r]) for r in rows}

    # a catalogue above this many titles offers no close titles (difflib compares the query with each of them)
    CLOSE_MAX = 100_000

    def close_titles(self, query: str) -> str:
        """'; did you mean 'Schindler's List (1993)'?' for a query no title matches: up to 3 titles close to it
        (difflib, over the loosely typed forms, with and without the year as the query has it); '' where none is,
        or the catalogue has more than :attr:`CLOSE_MAX` titles."""
        import difflib

        if len(self.titles) > self.CLOSE_MAX:
            return ""
        with_year = bool(_WITH_YEAR.search(query.strip()))
        if self._close is None or self._close[0] is not self.titles:
            forms: dict[str, dict[str, int]] = {"year": {}, "bare": {}}
            for row, title in enumerate(self.titles):
                if title:
                    bare = loose_title(title)
                    forms["bare"].setdefault(bare, row)  # its year after it as loose_title writes it (a form of
                    # only dots and quotes, '', is written from the title with its year)
                    shown = f"{bare} ({self.years[row]})" if bare and self.years[row] is not None else None
                    forms["year"].setdefault(shown or loose_title(self.shown(row)), row)
            self._close = (self.titles, forms, {})  # (and each kind's counted characters: _close_candidates)
        forms = self._close[1]["year" if with_year else "bare"]
        typed = loose_title(query)
        near = difflib.get_close_matches(typed, self._close_candidates(typed, "year" if with_year else "bare"), n=3,
                                         cutoff=0.75)
        if not near:
            return ""
        return "; did you mean " + " or ".join(f"'{self.shown(forms[n])}'" for n in near) + "?"

    def _close_candidates(self, typed: str, kind: str, cutoff: float = 0.75) -> list[str]:
        """The forms of ``kind`` ('year', 'bare') whose characters could give difflib's ratio ``cutoff`` against
        ``typed``: those whose ``quick_ratio`` (the characters held in common, counted, over both lengths) reaches
        it, which bounds the ratio from above, so difflib over them alone picks what it picks over every form. Each
        form's characters are counted once per catalogue (a review: difflib over 100,000 titles took seconds)."""
        if len(self._close) < 3:  # (a Catalogue pickled before it counted them)
            self._close = (*self._close, {})
        cached = self._close[2]
        if kind not in cached:
            names = list(self._close[1][kind])
            code = np.frombuffer("".join(names).encode("utf-32-le", "surrogatepass"),  # code points (a lone
                                 np.uint32).astype(np.int64)  # surrogate too: @- text read with surrogateescape)
            lengths = np.fromiter(map(len, names), np.int64, len(names))
            form = np.repeat(np.arange(len(names), dtype=np.int64), lengths)
            key = (form << 21) | code  # (a code point is below 2**21)
            order = np.argsort(key, kind="stable")  # each form's characters grouped, in order
            key = key[order]
            first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            rank = np.empty(len(code), np.int64)  # the character's count in its form so far (1 for its first)
            rank[order] = np.arange(len(code)) - np.repeat(first, np.diff(np.r_[first, len(code)])) + 1
            cached[kind] = (names, code, rank, form, lengths)
        names, code, rank, form, lengths = cached[kind]
        typed_codes = np.frombuffer(typed.encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.int64)
        have = np.zeros(max(int(code.max(initial=0)), int(typed_codes.max(initial=0))) + 1, np.int64)
        np.add.at(have, typed_codes, 1)  # the typed text's count of each character
        common = np.bincount(form, weights=rank <= have[code], minlength=len(names))
        total = lengths + len(typed)
        keep = np.flatnonzero(np.where(total > 0, 2.0 * common / np.maximum(total, 1), 1.0) >= cutoff)
        return [names[i] for i in keep.tolist()]

    def _several_ids(self, query: str) -> str:
        """Where ``query`` is movie ids joined by commas ('50,181', as --liked takes them), the end of find_movie's
        message saying that one query names one movie (a first-hour review: `--movie 50,181` was said as title words
        alone); '' otherwise."""
        parts = [x.strip() for x in query.split(",")]
        if len(parts) < 2 or not all(parts) or (self.movie_rows(parts)[0] < 0).any():
            return ""
        return "; " + marked("one --movie takes one movie (in Python, similar() takes a list of them)",
                             f"a text names one movie: give several as a list, {parts!r}")

    def title_rows(self, query: str, loose: bool = False, words: bool = True) -> list[int]:
        """The rows whose titles ``query`` names, as :meth:`find_movie` matches titles: those it names exactly
        ('Title', 'Title (year)', the article in front, then without it) where any, else (``words``) those holding
        every one of its words; ``loose``: the query and the titles as :func:`loose_title` writes them."""
        fold = loose_title if loose else fold_title
        low = " ".join(fold(query.strip()).split())
        by_name, by_bare = self._title_index(loose)  # (a dict: a miss scans the titles once, for its words)
        exact = by_name.get(low) or by_bare.get(low)
        if exact or not words:
            return list(exact or [])
        names, _ = self._title_names(loose)
        # a number is a whole word ('50' is '50 First Dates', not the year of 'Cinderella (1950)': a first-hour pass);
        # other words match within words ('godfath'); numbers alone are a title's words, never its year (a review:
        # --liked 1984 on ML-100K matched every movie of 1984; 'fargo 1996' still finds Fargo (1996))
        words = [query_word(w) for w in low.split()]
        find = [re.compile(rf"(?<![0-9]){re.escape(w)}(?![0-9])").search if w.isdigit() else
                (lambda f, w=w: w in f) for w in words]
        # the rows that may match, through the names' words (a miss scanned every title: 8 ms a line of a file on
        # ML-100K, 0.7 s on 100,000 titles; a first-hour review), each then tested as before
        rows = self._word_rows(words, loose) if words else range(len(names))
        if all(w.isdigit() for w in words):
            return [i for i in rows if all(any(m(f) for f in names[i] if not _WITH_YEAR.search(f)) for m in find)]
        return [i for i in rows if all(any(m(f) for f in names[i]) for m in find)]

    # the rarest query words whose rows are intersected before the rows left are tested (the others then tested)
    _WORDS_INTERSECTED = 2
    _WORDS_KEPT = 1 << 22  # rows of the query words seen kept, in all (32 MB): a file's lines share many words

    def _word_rows(self, words: list[str], loose: bool = False) -> list[int]:
        """The rows, in order, whose names hold each of the rarest of ``words`` within one of their words (a superset
        of :meth:`title_rows`' word matches: a query word has no space, so it lies within one word of a name that
        holds it), through :meth:`_word_index`; a word no name holds: no rows."""
        vocab, grams, indptr, posted, memo = self._word_index(loose)
        found = []
        for w in set(words):
            rows = memo.get(w)
            if rows is None:
                if len(w) <= 3:  # its own gram: exactly the words that hold it
                    held = grams.get(w, ())
                else:  # the words holding each of its trigrams, the fewest first, then each tested
                    lists = sorted((grams.get(w[i:i + 3], ()) for i in range(len(w) - 2)), key=len)
                    held = [t for t in set(lists[0]).intersection(*lists[1:]) if w in vocab[t]] if lists[0] else ()
                rows = unique(_gather(indptr, posted, np.asarray(list(held), np.int64)))
                if memo.get(None, 0) + len(rows) <= self._WORDS_KEPT:
                    memo[w], memo[None] = rows, memo.get(None, 0) + len(rows)
            if not len(rows):
                return []
            found.append((len(rows), w, rows))
        found.sort(key=lambda f: f[:2])
        out = found[0][2]
        for _, _, rows in found[1:self._WORDS_INTERSECTED]:
            out = np.intersect1d(out, rows, assume_unique=True)
        return out.tolist()

    def _word_index(self, loose: bool = False) -> tuple[list[str], dict, np.ndarray, np.ndarray, dict]:
        """The words of the names :meth:`title_rows` tests (``str.split``'s, as a query's), built once: (each word
        once; {each gram of 1 to 3 characters of those words: the words holding it}; CSR indptr and rows: the rows
        whose names hold each word; {a query word: its rows}, filled by :meth:`_word_rows`, and None: how many rows
        it keeps). ``loose``: the words as given, each loosened (:func:`_loosen`: the loose names' words, as
        loose_title loosens a name's folded words one by one), without reading every title again."""
        cached = self._loose_words if loose else self._words
        if cached is not None:
            return cached
        vocab: dict[str, int] = {}
        if loose:
            given, _, at, rows = self._word_index()[:4]
            pairs = [(vocab.setdefault(w, len(vocab)), t) for t, word in enumerate(given) for w in _loosen(word).split()]
            word, was = (np.asarray([p[i] for p in pairs], np.int64) for i in (0, 1))
            n = at[was + 1] - at[was]
            token, row_of = np.repeat(word, n), _gather(at, rows, was)
        else:
            names, _ = self._title_names()
            tokens: list[int] = []
            lengths = np.zeros(len(names), np.int64)
            for row, forms in enumerate(names):
                held = set(" ".join(forms).split())
                lengths[row] = len(held)
                tokens.extend(vocab.setdefault(t, len(vocab)) for t in held)
            token = np.asarray(tokens, np.int64)
            row_of = np.repeat(np.arange(len(names), dtype=np.int64), lengths)
        key = np.sort(token * max(len(self.titles), 1) + row_of)
        key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key  # each (word, row) once, in order
        indptr = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(np.bincount(key // max(len(self.titles), 1), minlength=len(vocab)), out=indptr[1:])
        grams: dict[str, list[int]] = {}
        for t, w in enumerate(vocab):
            for g in {w[i:i + k] for k in (1, 2, 3) for i in range(len(w) - k + 1)}:
                grams.setdefault(g, []).append(t)
        cached = (list(vocab), grams, indptr, key % max(len(self.titles), 1), {})
        if loose:
            self._loose_words = cached
        else:
            self._words = cached
        return cached

    def _title_index(self, loose: bool = False) -> tuple[dict, dict]:
        """{each name of :meth:`_title_names`: its rows in order}, with and without the article, built once."""
        cached = self._loose_index if loose else self._index
        if cached is None:
            cached = ({}, {})
            for forms, index in zip(self._title_names(loose), cached):
                for row, names in enumerate(forms):
                    for name in names:
                        index.setdefault(name, []).append(row)
            if loose:
                self._loose_index = cached
            else:
                self._index = cached
        return cached

    def _title_names(self, loose: bool = False) -> tuple[list[set[str]], list[set[str]]]:
        """Each movie's names folded (``fold_title``: lower case, no accents), with and without ' (year)': its title as
        stored, without an alternative title in parentheses ('City of Lost Children, The (Cité des enfants perdus,
        La)'), and that with its trailing article in front ('The City of Lost Children', "L'Enfer"); and apart, as a
        second choice, that without its article ('City of Lost Children': 'Hours' is 'Hours (2013)', not 'Hours,
        The (2002)'). ``loose``: each as :func:`loose_title` writes it (built at the first loose try)."""
        cached = self._loose_names if loose else self._names
        if cached is None:
            fold = loose_title if loose else fold_title
            names, bare = [], []
            for title, year in zip(self.titles, self.years):
                title = title or ""
                main = re.sub(r" \([^()]*\)$", "", title)
                forms, without = {title, main}, set()
                m = _ARTICLE_AT_END.match(main)
                if m:
                    forms.add(m[2] + ("" if m[2].endswith("'") else " ") + m[1])
                    without.add(m[1])
                for group, out in ((forms, names), (without, bare)):
                    group = {fold(f) for f in group}
                    out.append(group | ({f"{f} ({year})" for f in group} if year is not None else set()))
            cached = names, bare
            if loose:
                self._loose_names = cached
            else:
                self._names = cached
        return cached

    def allowed(self, genres: tuple[str, ...] = (), year_min: int | None = None,
                year_max: int | None = None, say: bool = True,
                exclude_rows: np.ndarray | None = None, only_rows: np.ndarray | None = None) -> np.ndarray | None:
        """Movie rows passing the filters, among ``only_rows`` (the candidates) where given, and not in
        ``exclude_rows``, or None when there is no filter; ``say``: warn when none passes."""
        if not genres and year_min is None and year_max is None and exclude_rows is None and only_rows is None:
            return None
        years = []
        for name, y in (("year_min", year_min), ("year_max", year_max)):
            if isinstance(y, (float, np.floating)) and float(y).is_integer():  # 1990.0: a year column with a gap
                y = int(y)  # is float (a red team: df.year.min() was refused, where 196.0 is user 196)
            if y is not None and (isinstance(y, bool) or not isinstance(y, (int, np.integer))):
                raise UsageError(f"«--year-min/--year-max|{name}» {y!r}: expected a whole year such as 1990")
            years.append(y)
        year_min, year_max = years
        if (year_min is not None or year_max is not None) and not any(y is not None for y in self.years):
            # as --genre on a run without genres (a red team: a header alone and exit 0, where --genre is refused)
            raise UsageError("«--year-min/--year-max|year_min/year_max»: no movie of this run has a year (its "
                             "dataset gave none); leave the year filter out, or ingest with a movies file "
                             "(data.movies) whose titles end in their year, as 'Heat (1995)', and train again")
        if year_min is not None and year_max is not None and year_min > year_max:
            raise UsageError(f"«--year-min|year_min» {year_min} is after «--year-max|year_max» {year_max}: no movie "
                             "can pass; swap them")
        keep = np.ones(len(self.titles), dtype=bool)
        alone = []  # (the filter as given, how many movies it admits alone): said where together they admit none
        want: list[str] = []
        if genres:  # the rows of each genre, found once (a measurement: 65 ms a call over 200K movies)
            want = list(dict.fromkeys(self.genre_name(g) for g in genres))
            rows = self.genre_rows()
            keep[:] = False
            for g in want:
                keep[rows[g]] = True
            alone.append((marked(" ".join(f"--genre {sh_quote(g)}" for g in want), f"genres={want!r}"),
                          int(keep.sum())))
        years = self.year_array() if year_min is not None or year_max is not None else None
        if years is not None:
            span = (years >= (year_min if year_min is not None else 0)) & (years >= 0) & \
                (years <= (year_max if year_max is not None else np.iinfo(np.int64).max))
            keep &= span
            given = [(o, n, y) for o, n, y in (("--year-min", "year_min", year_min), ("--year-max", "year_max",
                                                                                      year_max)) if y is not None]
            alone.append((marked(" ".join(f"{o} {y}" for o, _, y in given), ", ".join(f"{n}={y}" for _, n, y in given)),
                          int(span.sum())))
        if only_rows is not None:
            among = np.zeros(len(self.titles), dtype=bool)
            among[np.asarray(only_rows, np.int64)] = True
            keep &= among
            alone.append((marked("--candidates", "candidates"), int(among.sum())))
        if exclude_rows is not None:
            keep[np.asarray(exclude_rows, np.int64)] = False
        out = np.flatnonzero(keep)
        if out.size == 0 and say:  # once, naming each filter with what it admits alone (a first-hour review: every
            # user of --users was then said to have 'rated every movie the filters let through')
            left = len(unique(np.asarray(exclude_rows, np.int64))) if exclude_rows is not None else 0
            said = [f"{what}: {n:,} movie{'' if n == 1 else 's'}" for what, n in alone]
            if exclude_rows is not None:
                said.append(f"{marked('--exclude', 'exclude')} leaves out {left:,}")
            one = len(said) == 1  # the marks in the message itself (not its arguments): TermsFilter renders them
            log.warning(f"no movie passes the filter{'' if one else 's together'} ({'; '.join(said)}), so every list "
                        f"is empty; loosen {'it' if one else 'them'}")
        return out

    def genre_rows(self) -> dict[str, np.ndarray]:
        """{genre: the rows of the movies that have it}, built once per genres list."""
        if self._by_genre is None or self._by_genre[0] is not self.genres:
            found: dict[str, list[int]] = {}
            for row, gs in enumerate(self.genres):
                for g in gs or ():
                    found.setdefault(g, []).append(row)
            self._by_genre = (self.genres, {g: np.asarray(r, np.int64) for g, r in found.items()})
        return self._by_genre[1]

    def year_array(self) -> np.ndarray:
        """Each movie's year as an int array, -1 where it has none; built once per years list."""
        if self._year_array is None or self._year_array[0] is not self.years:
            self._year_array = (self.years, np.array([_year(y) for y in self.years], np.int64))
        return self._year_array[1]

    def genre_name(self, name: str) -> str:
        """The run's spelling of a genre given loosely ('sci fi', "Children's", 'comedy'); an unknown name
        raises UsageError listing the run's genres."""
        known = sorted(self.genre_rows())
        k = genre_key(name)
        for g in known:
            if genre_key(g) == k or genre_key(g) + "s" == k or genre_key(g) == k + "s":
                return g
        bare = [g for g in known if _unaccented(genre_key(g)) == _unaccented(k)]  # typed without its accents, as
        if len(bare) == 1:  # titles are matched ('cafe & the' for 'Café & Thé': an own-data review found it refused)
            return bare[0]
        joined = [g for g in known if "," in g or ";" in g]  # 'Drama, Comedy': one genre, its movies file's
        if joined:  # separator not data.genre_separator (a first-hour review: 'Drama' refused, 'Drama' listed)
            listed = ", ".join(f"'{g}'" for g in known)
        else:
            listed = ", ".join(known) if known else ("none: this dataset has no genres (ingest with a movies file, "
                                                     "data.movies, that has a genres column, and train again)")
        hint = ""
        if any(k in (genre_key(x) for x in re.split(r"[,;]", g)) for g in joined):
            sep = "," if any(k in (genre_key(x) for x in g.split(",")) for g in joined) else ";"
            hint = (f" ('{shorten(name, 40)}' is part of a genre with '{sep}' in it: the movies file separated its "
                    f"genres with '{sep}'; ingest again with {set_hint('data.genre_separator', sep)} and train "
                    "again)")
        raise UsageError(f"«--genre|genres» '{shorten(name, 40)}': no such genre in this run; valid genres: "
                         f"{listed}{hint}")

    # ----------------------------------------------------------------------------------------- rows
    def rows_for(self, user_id, movie_rows: np.ndarray, scores: np.ndarray) -> Iterator[dict]:
        """Output rows (user_id, rank, movie_id, title, year, genres, score) of one answer."""
        mids = self.movie_ids[movie_rows].tolist()
        for rank, (m, mid, s) in enumerate(zip(movie_rows.tolist(), mids, np.asarray(scores).tolist()), 1):
            yield {"user_id": user_id, "rank": rank, "movie_id": mid, "title": self.titles[m] or None,  # none: null
                   "year": self.years[m], "genres": list(self.genres[m] or []), "score": s}  # a copy: a red
            # team's row['genres'].append('Horror') changed the model's own list, its filters and exports


def users_folded(run: Run) -> bool:
    """Whether ``run``'s dataset was ingested with data.id_case=fold (its user ids lower-cased), as its config.yaml
    records (:func:`_data_section`); False where it records none. Asked at the first user id not found as given
    (IdMap.fold): a text id is then looked up lower-cased, as update-users reads one."""
    return _data_section(run).get("id_case") == "fold"


def columns_read(run: Run) -> dict:
    """{'movie', 'rating', 'title': the column ``run``'s dataset read each from} where its config.yaml records a
    name (:func:`_data_section`)."""
    cols = _data_section(run).get("columns")
    return {k: v for k, v in cols.items() if k in ("movie", "rating", "title") and isinstance(v, str) and v} \
        if isinstance(cols, dict) else {}


def _data_section(run: Run) -> dict:
    """The data section of ``run``'s config.yaml (which records the dataset's since session 48), checked against its
    manifest (damage is the run's error); {} where it holds none."""
    import yaml

    raw = run.read_verified(run.path / CONFIG)
    try:
        data = (yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}).get("data") \
            if raw is not None else None
    except (yaml.YAMLError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def _gather(indptr: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The CSR lists ``at`` of (``indptr``, ``values``), one after another."""
    n = indptr[at + 1] - indptr[at]
    return values[np.arange(n.sum()) + np.repeat(indptr[at] - (np.cumsum(n) - n), n)]


def _year(y) -> int:
    """A movie's year as an int, -1 for none (None, NaN, pd.NA: a review found NaN an internal error)."""
    if y is None:
        return -1
    try:
        return int(y)
    except (TypeError, ValueError):
        return -1
