"""The Netflix Prize files: Kaggle's combined_data_1.txt .. combined_data_4.txt, or the original training_set/
folder of mv_0000001.txt .. (one movie a file), each a 'MovieID:' line followed by that movie's
'CustomerID,Rating,YYYY-MM-DD' lines; movie_titles.csv (MovieID,YearOfRelease,Title, latin-1) beside them.

The ratings are streamed: read in blocks of whole lines (:data:`BLOCK`), each parsed by pandas' C engine with ':' as
its comment character (so a 'MovieID:' line is a row of one field, its movie id), the dates read as categories
(a few thousand distinct days), then checked with numpy and kept as int32 users and movies, int8 stars and int32
days; the movie id is carried forward from each 'MovieID:' row. A block that fails a check is read again line by
line (:func:`_first_bad_line`) to name the file:line and what it expected. Where each 'MovieID:' line (and any
blank line) lay is kept, so a rating is named by its file:line later without reading the file again
(:attr:`RawData.part_line`).
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedrec.data.parsing import RawData, _read_lines, movies_frame
from embedrec.data.textfiles import decompress_command, uncompressed_name, warn_utf8_lines
from embedrec.errors import DataError, shorten

log = logging.getLogger("embedrec")

COMBINED = re.compile(r"combined_data_(\d+)\.txt")  # Kaggle's netflix-prize-data
MOVIE_FILE = re.compile(r"mv_(\d+)\.txt")  # the original training_set/, one movie a file
TRAINING_SET = "training_set"
TITLES = "movie_titles.csv"
NOT_RATINGS = ("probe.txt", "qualifying.txt")  # the Prize's held-out (user, movie) pairs, without ratings
SCALE = (1.0, 5.0)
BLOCK = 32 << 20  # bytes of whole lines parsed at once
EXPECTED = "a 'MovieID:' line or a 'CustomerID,Rating,YYYY-MM-DD' line"
_HEAD = re.compile(r"(\d+):")
_RATING = re.compile(r"(\d+),(\d+),(\d{4}-\d{2}-\d{2})")
_INT32_MAX = 2**31 - 1
_COLON_INSIDE = re.compile(rb":(?!\r?\n|\Z)")  # a ':' that does not end its line


# a combined_data_N.txt compressed (as copies of the Prize are handed on): not read, so refused (a first-hour review:
# a folder's combined_data_1.txt.gz was left out without a word, a quarter of the Prize's ratings)
COMBINED_COMPRESSED = re.compile(r"combined_data_(\d+)\.txt\.(?:gz|bz2|xz|zst)", re.IGNORECASE)


def holds_netflix(d: Path) -> bool:
    """``d`` holds the Netflix Prize's ratings: a combined_data_N.txt (or one compressed, which
    :func:`ratings_files` refuses), or mv_*.txt files (in a training_set/ folder, or ``d`` that folder)."""
    if any(COMBINED.fullmatch(p.name) or COMBINED_COMPRESSED.fullmatch(p.name) for p in d.glob("combined_data_*")):
        return True
    ts = d / TRAINING_SET
    return any(MOVIE_FILE.fullmatch(p.name) for f in (d, ts) if f.is_dir() for p in f.glob("mv_*.txt"))


def is_netflix_file(path: Path) -> bool:
    """A file named as one of the Prize's ratings files (combined_data_N.txt, mv_N.txt), or whose first line that
    is not blank is a 'MovieID:' line: read as such where it is given alone."""
    if COMBINED.fullmatch(path.name) or MOVIE_FILE.fullmatch(path.name):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    lines = head.lstrip(b"\r\n").splitlines()
    return len(lines) > 1 and bool(re.fullmatch(rb"\d+:", lines[0].strip())) and \
        bool(re.fullmatch(rb"\d+,\d+,\d{4}-\d\d-\d\d", lines[1].strip()))


def _number(p: Path, pattern: re.Pattern) -> int:
    return int(pattern.fullmatch(p.name).group(1))


def ratings_files(folder: Path) -> list[Path]:
    """The ratings files read in ``folder``, in order: its combined_data_N.txt by N; else training_set/'s mv_N.txt
    by N (or its own mv_N.txt files: ``folder`` the training_set/ folder). A compressed combined_data_N.txt.gz
    (.bz2, .xz, .zst) without its plain copy beside it is refused: its ratings would be left out."""
    combined = sorted((p for p in folder.glob("combined_data_*.txt") if COMBINED.fullmatch(p.name)),
                      key=lambda p: _number(p, COMBINED))
    _refuse_compressed(folder, {p.name for p in combined})
    if combined:
        return combined
    ts = folder / TRAINING_SET
    for d in (ts, folder):
        found = sorted((p for p in d.glob("mv_*.txt") if MOVIE_FILE.fullmatch(p.name)),
                       key=lambda p: _number(p, MOVIE_FILE)) if d.is_dir() else []
        if found:
            return found
    return []


def _refuse_compressed(folder: Path, plain: set[str]) -> None:
    """A DataError naming ``folder``'s compressed combined_data files that have no plain copy (``plain``, the
    names of those read) beside them, with the command that decompresses the first."""
    packed = sorted((p for p in folder.glob("combined_data_*") if COMBINED_COMPRESSED.fullmatch(p.name)
                     and uncompressed_name(p.name) not in plain), key=lambda p: _number(p, COMBINED_COMPRESSED))
    if packed:
        more = f" (and {', '.join(p.name for p in packed[1:])})" if len(packed) > 1 else ""
        raise DataError(f"{packed[0]}: a compressed ratings file of the Netflix Prize{more}, which ingest does not "
                        f"read in a folder, so its ratings would be left out; decompress it first "
                        f"({decompress_command(packed[0])}{', and the others' if more else ''}), then give "
                        f"{folder} again")


def netflix_files(folder: Path) -> list[Path]:
    """The files :func:`read_netflix` reads in ``folder`` (its ``RawData.files``): the ratings files, then
    movie_titles.csv where it is there."""
    titles = folder / TITLES
    return [*ratings_files(folder), *([titles] if titles.exists() else [])]


# ------------------------------------------------------------------------------------------ the ratings


@dataclass
class _Part:
    """One ratings file as read: its label, its first row among all, and where its lines that are not ratings
    lay, as the number of rating rows before each ('MovieID:' lines, blank lines), for :meth:`line`."""
    label: str
    start: int
    heads: list = field(default_factory=list)  # arrays of rating rows before each 'MovieID:' line
    blanks: list = field(default_factory=list)
    rows: int = 0

    def done(self) -> None:
        self.heads = np.concatenate(self.heads) if self.heads else np.zeros(0, np.int64)
        self.blanks = np.concatenate(self.blanks) if self.blanks else np.zeros(0, np.int64)

    def line(self, row: int) -> int:
        """The 1-based line of the file's rating row ``row`` (0-based, within the file)."""
        return row + 1 + int(np.searchsorted(self.heads, row, "right")) + \
            int(np.searchsorted(self.blanks, row, "right"))


class _Columns:
    """The rows read so far, as narrow arrays per block."""

    def __init__(self) -> None:
        self.users: list[np.ndarray] = []
        self.movies: list[np.ndarray] = []
        self.stars: list[np.ndarray] = []
        self.days: list[np.ndarray] = []
        self.n = 0

    def add(self, users, movies, stars, days) -> None:
        self.users.append(users)
        self.movies.append(movies)
        self.stars.append(stars)
        self.days.append(days)
        self.n += len(users)

    def frame(self):
        """The ratings frame (user_id, movie_id int32, rating float32, timestamp int64 Unix seconds of the day),
        each column built from its blocks and the blocks then let go."""
        import pandas as pd

        def whole(chunks: list, dtype, scale=None):
            out = np.empty(self.n, dtype)
            at = 0
            while chunks:
                c = chunks.pop(0)
                out[at:at + len(c)] = c if scale is None else c.astype(dtype) * scale
                at += len(c)
            return out

        return pd.DataFrame({"user_id": whole(self.users, np.int32), "movie_id": whole(self.movies, np.int32),
                             "rating": whole(self.stars, np.float32),
                             "timestamp": whole(self.days, np.int64, 86400)})


def _blocks(path: Path, tick) -> Iterator[tuple[bytes, int, int]]:
    """``path``'s bytes in blocks of whole lines (the last one as it ends), each with its first line's number and
    how many lines it holds."""
    line = 1
    with open(path, "rb") as fh:
        rest = b""
        first = True
        while True:
            data = fh.read(BLOCK)
            if tick is not None and data:
                tick(len(data))
            if first:
                first = False
                if data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8):]
            if not data:
                if rest:
                    yield rest, line, rest.count(b"\n") + 1
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            lines = block.count(b"\n")
            yield block, line, lines
            line += lines


class _Bad(Exception):
    """A block that failed a check: read again line by line to say where and why."""


def _parse(block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A block's ratings as (customers int32, stars int8, days int32), with where its 'MovieID:' lines lie among
    its rows that are not blank and the movie id each gives; _Bad where a line is neither a 'MovieID:' line nor a
    rating line as the layout writes them."""
    import pandas as pd

    try:
        df = pd.read_csv(io.BytesIO(block), names=["a", "b", "c"], header=None, comment=":", engine="c",
                         dtype={"a": "int64", "b": "float32", "c": "category"}, quoting=3, skip_blank_lines=True,
                         keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OverflowError) as e:
        raise _Bad from e
    a = df["a"].to_numpy()
    b = df["b"].to_numpy()
    c = df["c"].cat
    codes = c.codes.to_numpy()
    head = np.isnan(b)
    if ((codes < 0) != head).any():  # a 'MovieID:' line has no date, a rating line has one
        raise _Bad
    at = np.flatnonzero(head)
    colons = block.count(b":")  # ':' only ends a 'MovieID:' line, one a line
    if colons != at.size or _COLON_INSIDE.search(block):
        raise _Bad
    if a.size and (a.min() < 0 or a.max() > _INT32_MAX):
        raise _Bad
    rated = ~head if at.size else slice(None)
    given = b[rated]
    stars = given.astype(np.int8)
    if (stars != given).any():  # (a fraction, or beyond int8, which the cast changes)
        raise _Bad
    cats = c.categories
    if any(len(str(s)) != 10 for s in cats):  # ('2005-9-6' is a date to pandas too)
        raise _Bad
    try:
        dates = pd.to_datetime(pd.Index(cats.astype(str)), format="%Y-%m-%d")
    except (ValueError, TypeError) as e:
        raise _Bad from e
    day = dates.to_numpy().astype("datetime64[D]").astype(np.int64).astype(np.int32)
    return a[rated].astype(np.int32), stars, day[codes[rated]], at, a[at].astype(np.int32)


def _first_bad_line(label: str, block: bytes, line: int, movie: int | None) -> DataError:
    """The first line of ``block`` (its first line ``line``) that is not of the layout, said with what it
    expected; ``movie``: the movie the lines before the block rate (None: the file's first lines)."""
    for n, raw in enumerate(block.split(b"\n"), line):
        text = raw.decode("latin-1").rstrip("\r")
        if not text:
            continue
        shown = shorten(text.strip(), 60)
        if _HEAD.fullmatch(text):
            movie = int(text[:-1])
            if movie > _INT32_MAX:
                return DataError(f"{label}:{n}: movie id {text[:-1]} is beyond the layout's ids (up to "
                                 f"{_INT32_MAX:,}); fix that line")
            continue
        m = _RATING.fullmatch(text)
        if m is None:
            if _HEAD.fullmatch(text.strip()) or _RATING.fullmatch(text.strip()):
                what = "spaces around it"
            elif text.strip().endswith(":"):
                what = "a movie id that is not a whole number"
            elif text.count(",") != 2:
                what = f"{text.count(',') + 1} comma-separated fields, not 3"
            elif not re.fullmatch(r"\d+", text.split(",")[0]):
                what = "a customer id that is not a whole number"
            elif not re.fullmatch(r"\d+", text.split(",")[1]):
                what = "a rating that is not a whole number of stars"
            else:
                what = "a date not written YYYY-MM-DD"
            return DataError(f"{label}:{n}: expected {EXPECTED}, found '{shown}' ({what}); fix or remove that line")
        if movie is None:
            return DataError(f"{label}:{n}: the rating line '{shown}' comes before any 'MovieID:' line, so its "
                             "movie is unknown; the file must begin with its movie's 'MovieID:' line (fix the file, "
                             "or give the whole file as downloaded)")
        user, stars, date = m.groups()
        if int(user) > _INT32_MAX:
            return DataError(f"{label}:{n}: customer id {user} is beyond the layout's ids (up to {_INT32_MAX:,}); "
                             "fix that line")
        if int(stars) > 127:
            return DataError(f"{label}:{n}: rating {stars} is not a number of stars (1-5); fix or remove that line")
        try:
            np.datetime64(date, "D")
        except ValueError:
            return DataError(f"{label}:{n}: the date '{date}' is not a day of the calendar (YYYY-MM-DD); fix that "
                             "line")
    last = line + block.count(b"\n")
    return DataError(f"{label}:{line}: a line in lines {line:,}-{last:,} is not {EXPECTED}; fix or remove it")


def _parsed_or_none(block: bytes):
    try:
        return _parse(block)
    except _Bad:
        return None


def _parsed(path: Path, tick) -> Iterator[tuple[bytes, int, int, tuple | None]]:
    """:func:`_blocks` with each block's :func:`_parse` (None where it failed a check), in order."""
    for block, line, lines in _blocks(path, tick):
        yield block, line, lines, _parsed_or_none(block)


def _read_file(path: Path, label: str, cols: _Columns, part: _Part, tick) -> None:
    """``path``'s ratings added to ``cols``, where its 'MovieID:' and blank lines lay to ``part``."""
    movie = None  # the movie the lines so far rate
    for block, line, lines in _blocks(path, tick):
        try:
            users, stars, days, at, ids = _parse(block)
        except _Bad:
            raise _first_bad_line(label, block, line, movie) from None
        n = len(users)
        if movie is None and n and (not at.size or at[0] != 0):  # a rating before the file's first 'MovieID:'
            raise _first_bad_line(label, block, line, None)
        before = at - np.arange(at.size)  # the block's ratings before each of its 'MovieID:' lines
        movies = np.repeat(np.r_[np.int32(movie or 0), ids], np.diff(np.r_[0, before, n]))
        if at.size:
            movie = int(ids[-1])
        part.heads.append(part.rows + before)
        if lines != n + at.size:  # blank lines (skipped by the parse): where they lie, in rows of ratings
            part.blanks.append(_blank_rows(block, part.rows))
        cols.add(users, movies.astype(np.int32, copy=False), stars, days)
        part.rows += n


def _blank_rows(block: bytes, rows: int) -> np.ndarray:
    """For each blank line of ``block``, the rating rows before it (``rows`` before the block)."""
    kinds = []  # 0 blank, 1 'MovieID:', 2 a rating
    for raw in block.split(b"\n")[:block.count(b"\n") + (not block.endswith(b"\n"))]:
        text = raw.rstrip(b"\r")
        kinds.append(0 if not text else 1 if text.endswith(b":") else 2)
    k = np.array(kinds, np.int8)
    rated_before = np.cumsum(k == 2) - (k == 2)
    return (rows + rated_before[k == 0]).astype(np.int64)


# ------------------------------------------------------------------------------------------ movie_titles.csv


def read_titles(path: Path):
    """movie_titles.csv: MovieID,YearOfRelease,Title lines, split at their first two commas (titles hold commas),
    the year 'NULL' where unknown; latin-1 as released (a copy saved as UTF-8 read as that)."""
    ids, titles, years = [], [], []
    seen: dict[int, int] = {}
    for n, line in enumerate(_read_lines(path, ("utf-8", "latin-1")), 1):
        if not line.strip():
            continue
        parts = line.split(",", 2)
        if len(parts) < 3:
            raise DataError(f"{path}:{n}: expected MovieID,YearOfRelease,Title, found '{shorten(line, 60)}' "
                            f"({len(parts)} field{'s' if len(parts) > 1 else ''}); fix or remove that line")
        mid, year, title = parts
        if not re.fullmatch(r"\d+", mid.strip()):
            raise DataError(f"{path}:{n}: movie id '{shorten(mid, 30)}' is not a whole number (expected "
                            "MovieID,YearOfRelease,Title); fix that line")
        year = year.strip()
        if year.upper() not in ("NULL", "") and not re.fullmatch(r"\d{4}", year):
            raise DataError(f"{path}:{n}: year '{shorten(year, 30)}' is not a year nor NULL (expected "
                            "MovieID,YearOfRelease,Title); fix that line")
        movie = int(mid)
        if movie in seen:
            raise DataError(f"{path}:{n}: movie {movie} is listed again (first at line {seen[movie]}); remove one of "
                            "the two lines")
        seen[movie] = n
        ids.append(movie)
        titles.append(title.strip())
        years.append(int(year) if year.isdigit() else None)
    if not ids:
        raise DataError(f"{path}: holds no movie; give the movie_titles.csv of the Netflix Prize files, or remove "
                        "it to read the ratings without titles")
    warn_utf8_lines(path, str(path), "latin-1")
    # the year is the file's own column: a title's '(1999)' stays the title's words
    frame = movies_frame(ids, titles, [[] for _ in ids], years)
    frame["title"] = titles
    return frame


# ------------------------------------------------------------------------------------------ the readers


def _read(files: list[Path], tick, shown: Callable[[Path], str]) -> tuple[_Columns, list[_Part]]:
    """Every file's ratings, in order: a file of a block or more read block by block; smaller ones (training_set/'s,
    one movie a file) read together, as many as make a block, each its own part."""
    cols, parts = _Columns(), []
    group: list[Path] = []
    size = 0
    for p in files:
        n = p.stat().st_size
        if n >= BLOCK:
            _read_group(group, cols, parts, tick, shown)
            group, size = [], 0
            part = _Part(str(p), cols.n)
            _read_file(p, shown(p), cols, part, tick)
            part.done()
            parts.append(part)
            continue
        group.append(p)
        size += n
        if size >= BLOCK:
            _read_group(group, cols, parts, tick, shown)
            group, size = [], 0
    _read_group(group, cols, parts, tick, shown)
    empty = [p for p, part in zip(files, parts) if part.rows == 0]
    if cols.n == 0:
        raise DataError(f"{files[0] if len(files) == 1 else files[0].parent}: no rating in "
                        f"{'it' if len(files) == 1 else f'its {len(files)} ratings files'}; give the Netflix Prize "
                        "files as downloaded")
    if empty:
        log.warning("%s%s: no rating in %s", shown(empty[0]), f" and {len(empty) - 1} more" if len(empty) > 1 else "",
                    "it" if len(empty) == 1 else "them")
    return cols, parts


_STARTS = re.compile(rb"(?:\r?\n)*\d+:\r?\n")  # a ratings file's first line that is not blank: its 'MovieID:'


def _read_group(group: list[Path], cols: _Columns, parts: list[_Part], tick, shown) -> None:
    """Files smaller than a block, parsed as one block (a file's parse costs some milliseconds however small: 17,770
    training_set/ files read one by one took 151 s of 10M ratings, 8 s as combined_data files), each its own part.
    Each must begin with its 'MovieID:' line (else the movie of the file before would run on into it). A group with
    a blank line is read again file by file, to know where each file's lines lie."""
    if not group:
        return
    texts = []
    for p in group:
        data = p.read_bytes()
        if tick is not None:
            tick(len(data))
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]
        if data.strip() and not _STARTS.match(data + b"\n"):
            raise _first_bad_line(shown(p), data, 1, None)
        texts.append(data if not data or data.endswith(b"\n") else data + b"\n")
    try:
        users, stars, days, at, ids = _parse(b"".join(texts))
    except _Bad:
        for p, data in zip(group, texts):
            try:
                _parse(data)
            except _Bad:
                raise _first_bad_line(shown(p), data, 1, None) from None
        raise DataError(f"{shown(group[0])}: a line of it or of the {len(group) - 1} files after it is not "
                        f"{EXPECTED}; fix or remove it") from None
    lines = np.array([t.count(b"\n") for t in texts], np.int64)
    heads = np.array([t.count(b":") for t in texts], np.int64)
    if int(lines.sum()) != len(users) + at.size or int(heads.sum()) != at.size:  # blank lines: file by file
        for p in group:
            part = _Part(str(p), cols.n)
            _read_file(p, shown(p), cols, part, None)
            part.done()
            parts.append(part)
        return
    before = at - np.arange(at.size)  # the group's ratings before each 'MovieID:' line
    movies = np.repeat(ids, np.diff(np.r_[before, len(users)]))  # (every file begins with its 'MovieID:')
    rated = lines - heads
    r0 = np.r_[0, np.cumsum(rated)[:-1]]
    h0 = np.r_[0, np.cumsum(heads)[:-1]]
    for k, p in enumerate(group):
        part = _Part(str(p), cols.n + int(r0[k]), rows=int(rated[k]))
        part.heads = [before[h0[k]:h0[k] + heads[k]] - r0[k]]
        part.done()
        parts.append(part)
    cols.add(users, movies.astype(np.int32, copy=False), stars, days)


def _raw(cols: _Columns, parts: list[_Part], files: list[Path], movies) -> RawData:
    def part_line(at: int, row: int) -> int:
        return parts[at].line(row)

    return RawData(cols.frame(), movies, None, "netflix", SCALE, files, (parts[0].label, 1),
                   parts=[(p.label, p.start) for p in parts], part_line=part_line)


def read_netflix(root: Path, tick=None) -> RawData:
    """A folder of the Netflix Prize files: combined_data_N.txt (or training_set/mv_*.txt, read where no
    combined_data file is there) with movie_titles.csv. ``tick``: a bar's update over the ratings files' bytes."""
    files = ratings_files(root)
    if (root / TRAINING_SET).is_dir() and files and files[0].parent == root:
        log.info("%s: read its combined_data files; %s/ (the same ratings, one movie a file) is not read", root,
                 TRAINING_SET)
    present = [n for n in NOT_RATINGS if (root / n).exists()]
    if present:
        log.info("%s: %s %s the Prize's (movie, customer) pairs to predict, not ratings: not read", root,
                 " and ".join(present), "holds" if len(present) == 1 else "hold")
    _note_gaps(root, files)
    cols, parts = _read(files, tick, str)
    titles = root / TITLES
    movies = None
    if titles.exists():
        movies = read_titles(titles)
    else:
        log.warning("%s: no %s beside the ratings: the movies get no titles or years, so `recommend --movie TITLE` "
                    "cannot find them (ids still work); add the Prize's %s for them", root, TITLES, TITLES)
    return _raw(cols, parts, [*files, *([titles] if movies is not None else [])], movies)


def _note_gaps(root: Path, files: list[Path]) -> None:
    """A warning naming the combined_data numbers missing between the first and the last read (a first-hour
    review: combined_data_1.txt and _3.txt were read without a word of _2's ratings)."""
    numbers = [_number(p, COMBINED) for p in files if COMBINED.fullmatch(p.name)]
    missing = sorted(set(range(min(numbers), max(numbers) + 1)) - set(numbers)) if numbers else []
    if missing:
        names = ", ".join(f"combined_data_{n}.txt" for n in missing)
        log.warning("%s: no %s between %s and %s: %s ratings are not read; add %s to read the whole Prize", root,
                    names, files[0].name, files[-1].name, "its" if len(missing) == 1 else "their",
                    "it" if len(missing) == 1 else "them")


def read_netflix_file(path: Path, tick=None) -> RawData:
    """One ratings file of the Prize given alone (combined_data_N.txt, mv_N.txt): its ratings, no titles."""
    cols, parts = _read([path], tick, str)
    beside = path.parent / TITLES
    log.info("%s: read alone, as one of the Netflix Prize files: its movies get no titles (%s)", path,
             f"give the folder {path.parent}/ to read them from its {TITLES}" if beside.exists() else
             f"read from {TITLES} where the file is given in its folder")
    return _raw(cols, parts, [path], None)
