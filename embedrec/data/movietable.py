"""A movies table (CSV, TSV or Parquet) of ids, titles, genres and years: :func:`read_movies_table`, its
separator, its id column's other names (:func:`movie_id_names`) and its year column. A MovieLens release's own
movies file is read here too (``RELEASE_MOVIES_FIX``); the ratings tables are ``parsing.py``'s and ``tables.py``'s.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.config_values import plain_name
from embedrec.data.idtext import _ids
from embedrec.data.parsing import _refuse_repeated_names, movies_frame, parquet_named_twice
from embedrec.data.textfiles import (
    HEAD,
    SNIFFED,
    _decode_error,
    _label,
    _parser_error,
    _short_row,
    compressed,
    data_line,
    decompressed,
    head_line,
    is_stream,
    likely_separator,
    read_all,
    read_denied,
    refuse_binary_file,
    refuse_binary_head,
    refuse_nul,
    warn_utf8_lines,
)
from embedrec.errors import DataError, set_hint, shorten

# A movies file's id column under the field's other names, whatever data.columns.movie says; then the ratings
# file's bare names for its movie column (columns.DEFAULT_ALIASES' second tier: LensKit's and Surprise's 'item'), tried
# after them and only beside a title column, as without one a 'movie' column may hold the titles
MOVIE_ID_NAMES = ("movie_id", "itemId", "iid")
MOVIE_ID_BARE = ("movie", "item")
MOVIE_ID_LAST = ("id",)  # TMDB's movies files (a first-hour review found it refused): after the bare names, beside a
# title column (a review: in the bare names' tier, 'item,id,title' was refused as two id columns)


def movie_id_names(id_col: str, ratings_movie: str | None = None) -> list[list[str]]:
    """The names a movies file's id column is read by, each spelling once (a spelling: :func:`plain_name`, so
    'movieId' reads as 'movie_id'), in the tiers :func:`_movie_columns` tries in turn: data.columns.movie's own
    (``id_col``); the ratings' movie column's name (``ratings_movie``: 'item' where the ratings file's 'item' was
    read as it), either name with '_id' ('item' -> 'item_id'; not after a name that ends in 'id', as 'movieId_id'),
    and MOVIE_ID_NAMES; then MOVIE_ID_BARE. The missing-column message lists them as they are read (a first-hour
    review: it named 'movieId' twice, offered 'movieId_id' and left out 'movie_id' and the bare names)."""
    seen = {plain_name(id_col)}
    tiers: list[list[str]] = [[id_col]]
    for names in ((*([ratings_movie] if ratings_movie else []),
                   *(f"{n}_id" for n in (ratings_movie, id_col) if n and not plain_name(n).endswith("id")),
                   *MOVIE_ID_NAMES), MOVIE_ID_BARE, MOVIE_ID_LAST):
        tier = []
        for name in names:
            if plain_name(name) not in seen:
                seen.add(plain_name(name))
                tier.append(name)
        tiers.append(tier)
    return tiers


def _id_names_said(id_col: str, ratings_movie: str | None) -> str:
    """'movie_id, itemId, iid, movie or item (any case or punctuation: movieId is movie_id; movie and item beside a
    title column': :func:`movie_id_names`, each name once, as a missing id column's message lists them; the caller
    closes the parenthesis."""
    tiers = movie_id_names(id_col, ratings_movie)
    names = [n for tier in tiers for n in tier]
    other = "".join(w if i == 0 else w.capitalize() for i, w in enumerate(id_col.split("_"))) if "_" in id_col \
        else id_col.capitalize() if id_col != id_col.capitalize() else id_col.lower()
    late = tiers[2] + tiers[3]
    bare = (f"; {', '.join(late[:-1])} and {late[-1]}" if len(late) > 1 else f"; {late[0]}") + \
        " beside a title column" if late else ""
    return f"{', '.join(names[:-1])} or {names[-1]} (any case or punctuation: {other} is {id_col}{bare}"


def _movie_columns(found, id_col: str, title_col: str, genres_col: str | None,
                   ratings_movie: str | None = None) -> dict[str, str]:
    """{file column: configured name} for each configured movies-file column the file lacks where exactly one
    column differs from it only in case or punctuation ('movieId', 'Title'), or for the id is named by a later tier
    of :func:`movie_id_names` ('itemId', 'iid', the ratings file's name for its movie column; 'movie' or 'item'
    beside a title column), or for 'genres' is 'Genre'."""
    names = [str(c) for c in found]
    out: dict[str, str] = {}
    titled = any(plain_name(c) == plain_name(title_col) for c in names)
    for col in (id_col, title_col, genres_col):
        if not col or col in names:
            continue
        if col == id_col:  # the id's other names, a tier as one try: two such columns are refused, not one taken
            tiers = movie_id_names(col, ratings_movie)
            tries = [{plain_name(n) for n in tier} for tier in tiers[:2 + 2 * titled]]
        else:
            tries = [{plain_name(col)}, *([{"genre"}] if col == "genres" else [])]
        for spellings in tries:
            hits = [c for c in names if plain_name(c) in spellings and c not in out and
                    c not in (id_col, title_col, genres_col)]
            if len(hits) == 1:
                out[hits[0]] = col
                break
            if len(hits) > 1 and col == id_col and spellings is not tries[0]:  # (a review: 'movieId' and 'itemId'
                return {hits[0]: None, hits[1]: None}                             # both there, 'itemId' was read)
    return out


MOVIES_SEPARATOR = "data.movies_separator"  # the key that sets a movies file's separator


def _other_separator(names, sep: str) -> str | None:
    """The separator other than ``sep`` that header names read at ``sep`` hold ('Movie ID;Title;Genres' read at ','
    holds ';'), or a space between words where the header is one column of words ('movie_id title genres'); None
    where they hold none."""
    text = "".join(str(n) for n in names)
    other = likely_separator(text.replace(sep, ""))
    if other is not None:
        return other
    words = text.split()
    if len(names) == 1 and len(words) > 1 and all(re.fullmatch(r"[\w.:-]+", w) for w in words) and sep != " ":
        return " "
    return None


def _separator_fix(other: str, sep_key: str | None) -> str:
    """'read it with --set data.movies_separator=';'' (a tab and a space said by name), or a release's fix."""
    if sep_key is None:
        return "the release's file is read as released: fix or replace that file"
    return "read it with " + set_hint(sep_key, {"\t": "tab", " ": "space"}.get(other, other))


def _refuse_one_column(header: str, sep: str, label: str, sep_key: str | None) -> None:
    """A movies file's header line that ``sep`` leaves one column, while it holds another separator, is refused
    naming it and the key that reads it (a review: a ';' file read at data.separator ',' was 'expected 1 fields,
    found 2; check the separator' at a title's comma, or 'missing column(s) ... rename it', where the columns were
    there); one column without another separator is left to the column checks."""
    import csv

    try:
        fields = next(csv.reader([header], delimiter=sep)) if header else []
    except csv.Error:
        return
    if len(fields) != 1:
        return
    other = _other_separator(fields, sep)
    if other is None:
        return
    said = {"\t": "tabs", " ": "spaces"}.get(other, repr(other))
    raise DataError(f"{label}:1: the header line '{shorten(header, 60)}' is one column when split at {sep!r}, and "
                    f"holds {said}: its fields are separated by {said}; {_separator_fix(other, sep_key)}")


EMPTY_MOVIES_FIX = ("point data.movies at a movies file with rows (a header naming its id and title columns), or "
                    "leave data.movies out")
RELEASE_MOVIES_FIX = ("unzip or download the release again, or remove that file to read the ratings without titles "
                      "and genres")  # a release's own movies file, which data.movies does not name


def read_movies_table(path, *, sep: str | None, id_col: str, title_col: str, genres_col: str | None, genre_sep: str,
                      encoding: str, id_type: str, notes: list | None = None,
                      ratings_movie: str | None = None, empty_fix: str = EMPTY_MOVIES_FIX,
                      sep_key: str | None = MOVIES_SEPARATOR) -> pd.DataFrame:
    """A movies table (CSV/TSV/Parquet) of ids, titles and genres; ``empty_fix``: the advice where it has no rows
    (data.movies', or a release's: RELEASE_MOVIES_FIX). ``sep`` None: sniffed from its header line as a ratings
    table's is (textfiles.likely_separator; ',' where it holds none). ``sep_key``: the config key that sets its
    separator, which a header line read as one column is told to set (None: a release's file, read as released)."""
    label = _label(path)  # er.ingest(movies=df)'s cache file is 'the movies DataFrame' (textfiles.NAMED)
    parquet = str(path).endswith(".parquet")
    seps = (sep, genre_sep) if sep else (*SNIFFED, genre_sep)
    if is_stream(path):  # a pipe (<(cat movies.csv)): read once, as the ratings are (is_stream)
        path = read_all(path, label, None if parquet else (
            lambda head: refuse_binary_head(head, label, seps, encoding)))
    elif not parquet and compressed(path):  # within the decompression limits, as a compressed ratings file (a
        path = decompressed(path, label)   # review: a 13 MB .gz of zeros ran out of memory at 2.2 GB)
        refuse_binary_head(path[:HEAD], label, seps, encoding)
    elif not parquet:  # its first MiB before pandas reads it whole (a red team: 20 GB of NUL bytes filled the memory)
        refuse_binary_file(path, label, seps, encoding)
    if not parquet:
        refuse_nul(path, label, encoding)
        header = head_line(path, encoding)
        if sep is None:  # as the ratings table's (a review: a ';' movies file beside a ';' ratings file was read at
            sep = likely_separator(header) or ","  # ',' and refused: 'expected 1 fields, found 2')
        _refuse_one_column(header, sep, label, sep_key)
    try:
        src = io.BytesIO(path) if isinstance(path, bytes) else path
        if parquet:
            with open(src, "rb") if isinstance(src, (str, Path)) else contextlib.nullcontext(src) as fh:
                try:
                    df = pd.read_parquet(fh)  # Python's open: pyarrow's refuses a path that is not UTF-8
                except Exception:
                    twice = parquet_named_twice(fh)  # as the ratings file's (a red team: pyarrow's FieldRef words)
                    if twice:
                        raise DataError(f"{label}: {twice}") from None
                    raise
        else:
            df = pd.read_csv(src, sep=sep, dtype=str, keep_default_na=False, encoding=encoding)
    except DataError:  # (a ValueError: said as it is)
        raise
    except UnicodeDecodeError as e:
        raise _decode_error(label, e, encoding, None if parquet else path) from None
    except FileNotFoundError:
        raise DataError(f"{label}: movies file not found; check data.movies", path=str(label)) from None
    except PermissionError as e:
        raise read_denied(e, label) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: the movies file is empty; {empty_fix}") from None
    except (pd.errors.ParserError, ValueError, OSError) as e:
        raise _parser_error(label, e, 1, None if parquet else path, sep, encoding, None, sep_key) from None
    if len(df) == 0:  # a header alone: every rating was then 'for a movie absent from the movies file' (a red team)
        raise DataError(f"{label}: the movies file has no rows (a header line only); {empty_fix}")
    if not parquet:
        _refuse_repeated_names(path, sep, encoding, label)
    short = None if parquet else _short_row(label, path, sep, encoding, missing=None)  # (not data.missing's)
    if short:  # pandas reads the missing fields as empty: a movie without its genres (or title), silently
        raise short
    as_found = ", ".join(map(str, df.columns))  # the file's own names, for the messages below
    renamed = _movie_columns(df.columns, id_col, title_col, genres_col, ratings_movie)
    if None in renamed.values():
        a, b = list(renamed)
        raise DataError(f"{label}: columns '{a}' and '{b}' could each be the movie id (the ratings' movie column is "
                        f"'{ratings_movie or id_col}'); rename the movies file's id column to '{id_col}' (or the "
                        "other one to something else)")
    if renamed:  # 'itemId' for movie_id, 'Title' for title: as the ratings file's columns are matched
        df = df.rename(columns=renamed)
        said = f"{label}: reading column{'s' if len(renamed) > 1 else ''} " + \
            ", ".join(f"{a!r} as {b!r}" for a, b in renamed.items())
        if notes is None:
            logging.getLogger("embedrec").info("%s", said)
        else:
            notes.append(said)
    missing = [c for c in (id_col, title_col) if c not in df.columns]
    if missing:  # the required columns the file lacks; the genres, optional, said apart (a first-hour review: it
        # came up a run later; another: 'missing column(s) title, genres' named the optional one as missing)
        no_genres = bool(genres_col) and genres_col not in df.columns
        titled = [str(c) for c in df.columns if c not in (id_col, genres_col) and _title_like(str(c))]
        offer = f" ({' or '.join(repr(c) for c in titled[:3])} looks like one: " \
                f"{set_hint('data.columns.title', titled[0])})" if titled and title_col in missing else ""
        keys_fix = f"set data.columns.title to the titles' column{offer}" if title_col in missing else ""
        if no_genres:
            keys_fix += ("; " if keys_fix else "") + f"no genres column '{genres_col}' either, which is optional " \
                "(its movies then have none; data.columns.genres names one)"
        fix = keys_fix if id_col not in missing else (
            f"its id column must be named {_id_names_said(id_col, ratings_movie)}; data.columns.movie names the "
            "ratings' column too): rename it in the movies file" + (f", and {keys_fix}" if keys_fix else ""))
        other = None if parquet else _other_separator(df.columns, sep)
        if other is not None:  # the columns are there, run together by another separator (a review: 'rename it')
            said = {"\t": "tabs", " ": "spaces"}.get(other, repr(other))
            fix = f"its header holds {said}: if they separate its fields, {_separator_fix(other, sep_key)}"
        raise DataError(f"{label}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (found: "
                        f"{as_found}); {fix}")  # (a notebook review: setting data.columns.movie to it broke the ratings' reading)
    ids = _ids(df[id_col].astype(str) if id_type == "int" else df[id_col], id_type, label, id_col, 2, floats=True)
    if genres_col and genres_col not in df.columns:  # a review: every movie without genres, without a word
        logging.getLogger("embedrec").warning(
            "%s: no genres column '%s' (found: %s): the movies have no genres; where a column holds them, name it: "
            "«--set data.columns.genres=NAME|data.columns.genres=NAME»", label, genres_col, as_found)
    genres = ([_genre_list(g, genre_sep) for g in df[genres_col]]
              if genres_col and genres_col in df.columns else [[] for _ in range(len(df))])
    titles = ["" if _missing(t) else str(t) for t in df[title_col]]  # a null title: none, not 'nan' (a review)
    where = (lambda row: f"{label}: row {row + 1}") if parquet else \
        (lambda row: f"{label}:{data_line(path, sep, encoding, 1, 2, row)}")  # a quoted title can span lines
    years = _year_column(df, label, where, notes, taken=(id_col, title_col, genres_col))
    if genres_col and genres_col in df.columns:  # after every error: one line on stderr where one stops ingest
        _warn_genre_separator(df[genres_col], genre_sep, label)
    if not parquet:  # (data.encoding=latin-1 read a file holding UTF-8 lines too, as a red team's movies.csv)
        warn_utf8_lines(path, label, encoding)
    return movies_frame(list(ids), titles, genres, years)


def _title_like(name: str) -> bool:
    """Whether a movies file's column is named as titles are ('Book-Title', 'movie_title', 'name'), for the error of
    a missing title column to offer it."""
    words = re.split(r"[^a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())
    return any(w in ("title", "titles", "name") for w in words)


# a movies table's year column, by its name in lower case, '-' and spaces as '_' (a first-hour review: Book-Crossing's
# Year-Of-Publication was left unread, its titles holding no year)
YEAR_COLUMNS = ("year", "release_year", "releaseyear", "year_of_publication", "publication_year", "year_published",
                "pub_year", "year_of_release", "published_year")


def _year_column(df: pd.DataFrame, label: str, where, notes: list | None, taken) -> list | None:
    """The years of a movies table's 'year' column (YEAR_COLUMNS), None where it has none: a first-hour review
    found it dropped, every movie without a year, while --year-min then said the file gave none. A year the column
    gives wins over the title's '(1995)'; an empty cell or a null marker (YEAR_NULLS: R's NA, IMDb's \\N) gives
    none, and the title's year then stands. A cell is a whole number from 1 to 9999 in ASCII digits ('1995',
    '1995.0' as pandas writes a float column), a date that starts with one ('1995-07-14'), or a date of a Parquet
    date column; anything else ('1e3', '+1995', '1995-1998') is refused with its line (``where(row)``)."""
    col = next((c for c in df.columns if c not in taken
                and re.sub(r"[\s-]+", "_", str(c).strip().lower()) in YEAR_COLUMNS), None)
    if col is None:
        return None
    years: list = []
    for i, v in enumerate(df[col].tolist()):
        if hasattr(v, "year") and not isinstance(v, str) and not _missing(v):  # a Parquet date or timestamp
            years.append(int(v.year))
            continue
        text = "" if _missing(v) else str(v).strip()
        if not text or text.lower() in YEAR_NULLS or _YEAR_ZERO.fullmatch(text):  # (Book-Crossing's unknown: 0)
            years.append(None)
            continue
        m = _YEAR_TEXT.fullmatch(text) or _YEAR_DATE.fullmatch(text)
        if m is None or not 1 <= int(m.group(1)) <= 9999:
            raise DataError(f"{where(i)}: column '{col}' holds '{shorten(text, 20)}', not a year; write it as a whole "
                            "number such as 1995, or leave it empty (or NA) where it is not known")
        years.append(int(m.group(1)))
    said = f"{label}: reading column '{col}' as the movies' years"
    if notes is None:
        logging.getLogger("embedrec").info("%s", said)
    else:
        notes.append(said)
    return years


YEAR_NULLS = ("na", "n/a", "nan", "nat", "null", "none", "\\n", "-", "?", "unknown")  # a year column's null markers
# ASCII digits only (str.isdigit and float() take '١٩٩٥', '1_995', '1e3'); no re flags (pandas 3's str.match)
_YEAR_TEXT = re.compile(r"([0-9]{1,4})(?:\.0*)?")
_YEAR_ZERO = re.compile(r"0+(?:\.0*)?")  # year 0: none known, as Book-Crossing writes it
_YEAR_DATE = re.compile(r"([0-9]{4})-(?:0?[1-9]|1[0-2])(?:-(?:0?[1-9]|[12][0-9]|3[01]))?(?:[ T][0-9:.+Z-]*)?")


def _warn_genre_separator(cells: pd.Series, sep: str, label: str) -> None:
    """One warning where no genres cell holds data.genre_separator but many hold another separator: each cell is
    then one genre ('Drama, Comedy'), which a first-hour review found stored so in silence."""
    text = [g for g in cells.tolist() if isinstance(g, str) and g.strip() and _listed(g) is None]  # (a list
    # literal's commas are no separator: read as its list)
    if not text or any(sep in g for g in text):
        return
    for other in (",", ";", "|", "/"):
        n = sum(other in g for g in text) if other != sep else 0
        if n and n >= len(text) / 10:
            example = next(g for g in text if other in g)
            logging.getLogger("embedrec").warning(
                "%s: no genres cell holds data.genre_separator '%s', and %d of %d hold '%s': each is read as one "
                "genre ('%s'); where '%s' separates them, ingest with " +  # the mark in the message: TermsFilter
                set_hint("data.genre_separator", other).replace("%", "%%"), label, sep, n, len(text), other,  # reads
                shorten(example, 40), other)  # marks there only
            return


def _missing(v) -> bool:
    """A null cell (None, NaN, pandas' NA) of a movies table, as Parquet and pandas hold it."""
    return v is None or (not isinstance(v, (str, list, tuple, np.ndarray)) and bool(pd.isna(v)))


def _genre_list(g, sep: str) -> list[str]:
    """A movies table's genres cell: text split at ``sep``, or a list as a Parquet list column holds it (as
    embedrec's own movies.parquet writes it: a review found it an internal error); null is none."""
    if _missing(g):
        return []
    if isinstance(g, (list, tuple, np.ndarray)):
        return [str(x) for x in g if not _missing(x) and str(x)]
    listed = _listed(str(g))
    if listed is not None:  # a list written as text: JSON's ["A", "B"], pandas' to_csv of a list column ['A', 'B']
        return listed
    return str(g).split(sep) if str(g) else []


def _listed(text: str) -> list[str] | None:
    """The genres of a cell holding a list literal of texts ('["Drama", "War"]', "['Maison, Jardin', 'Musique']":
    what JSON or pandas' to_csv of a list column writes; an own-data review found each such cell read as one genre,
    and the separator a warning then offered split inside the quotes); None for any other text. Read with json,
    else ast.literal_eval (literals alone: nothing is run), and only a list of texts is taken."""
    t = text.strip()
    if len(t) < 2 or t[0] != "[" or t[-1] != "]":
        return None
    try:
        got = json.loads(t)
    except (ValueError, RecursionError):  # (brackets nested thousands deep: a diff review's internal error)
        try:
            got = ast.literal_eval(t)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    if not isinstance(got, list) or not all(isinstance(x, str) for x in got):
        return None
    return [x for x in got if x]
