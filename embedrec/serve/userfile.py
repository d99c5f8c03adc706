"""A new user's own file of movies: ``recommend --liked @FILE`` and ``--rated @FILE``, and ``recommend_new(liked=
Path(...), rated=Path(...))`` (or a DataFrame of ratings). Liked: a title or id per line, as ``--exclude @FILE``
reads one. Rated: a table with a header whose movie (title or id), year and rating columns are found by name
(Letterboxd's ``Name,Year,Rating``, IMDb's ``Title,Year,Your Rating``, ``movie,rating``, ``title,rating``), or
``MOVIE=RATING`` a line; its values' scale (Letterboxd's 0.5-5 in halves, IMDb's 1-10) mapped linearly onto a
model's (:func:`rescaled`). The csv module only: serving imports this.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
import stat
from dataclasses import dataclass, field

from embedrec.data.ids import NA_WORDS
from embedrec.errors import DataError, UsageError, marked, shorten

log = logging.getLogger("embedrec")

# a header's names, compared without case, spaces, '_' or '-' (``_key``)
TITLE_NAMES = ("title", "name", "movie", "film", "movietitle", "filmtitle", "originaltitle", "primarytitle")
ID_NAMES = ("movieid", "itemid", "item", "iid", "mid")
YEAR_NAMES = ("year", "releaseyear", "movieyear")
RATING_NAMES = ("rating", "yourrating", "myrating", "stars", "score", "rate")
# IMDb's title types that no film catalogue holds (its ratings.csv lists series and episodes beside films)
NOT_FILMS = {"tvseries", "tvminiseries", "tvepisode", "videogame", "podcastseries", "podcastepisode", "musicvideo"}

# the scales a file's ratings are read on where its source is known by its header
LETTERBOXD, IMDB = (0.5, 5.0), (1.0, 10.0)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().strip('"').lower())


def _vocab(names: dict | None) -> tuple[tuple, tuple, tuple]:
    """(title, id, rating) header names (as :func:`_key` writes them): :data:`TITLE_NAMES`, :data:`ID_NAMES`,
    :data:`RATING_NAMES`, each with the run's dataset's own where ``names`` gives them ({'movie': 'artist', 'rating':
    'plays', 'title': ...}: the columns its ingest read, :meth:`serve.catalogue.Catalogue.file_names`; a review: a
    file headed 'artist,plays' was refused on a dataset ingested from those columns)."""
    names = {k: _key(str(v)) for k, v in (names or {}).items() if v}
    more = {k: (names[k],) if k in names else () for k in ("movie", "title", "rating")}
    return (TITLE_NAMES + tuple(t for t in more["title"] if t not in TITLE_NAMES),
            ID_NAMES + tuple(t for t in more["movie"] if t not in ID_NAMES + TITLE_NAMES),
            RATING_NAMES + tuple(t for t in more["rating"] if t not in RATING_NAMES))


# a counts model's (data.repeats=sum) rating column as embedrec's own files name it ('history --format csv': count)
COUNT_NAMES = ("count", "counts")


@dataclass
class RatedFile:
    """What a rated file holds: ``ratings`` {movie as the file gives it ('Heat (1995)', or an id): rating} in file
    order, ``lines`` {that movie: its line}, ``scale`` the file's own scale where its source says it
    (Letterboxd's, IMDb's; else None), ``source`` that source's name ('Letterboxd', 'IMDb', ''), ``others`` {that
    movie: its other title} where a column 'Original Title' beside the title column gives another ('Il postino
    (1994)' for IMDb's 'The Postman (1994)'), tried where the title matches nothing; ``watched`` {movie: line} of
    the rows without a rating, which the list leaves out."""

    name: str
    ratings: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    scale: tuple | None = None
    source: str = ""
    others: dict = field(default_factory=dict)
    watched: dict = field(default_factory=dict)  # {movie as given: line} of the rows without a rating (a diary's)
    ids: dict = field(default_factory=dict)  # {title as given: its row's id} where an id column stands beside the
    # title column: it picks among the movies of that title (SKUs sharing one: an own-data review), never over it


class ReadFile(os.PathLike):
    """A new user's file already read, its bytes and its name for messages: the CLI's ``--liked @-`` and ``--rated
    @-``, standard input ('<stdin>')."""

    def __init__(self, data: bytes, name: str = "<stdin>"):
        self.data, self.name = data, name

    def __fspath__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


def is_file(value) -> bool:
    """Whether ``liked=``/``rated=`` name a file (a ``pathlib.Path`` or any ``os.PathLike``): text is a movie."""
    return isinstance(value, os.PathLike)


# the member of a zip archive (Letterboxd's export: ratings.csv, watched.csv, diary.csv, likes/films.csv...) read
# for each option, in order of choice
ZIP_MEMBERS = {"--rated": ("ratings.csv",), "--liked": ("watched.csv", "ratings.csv")}


def _text(path, option: str) -> tuple[str, str]:
    """(the file's text, its name for messages): a zip archive's member named in :data:`ZIP_MEMBERS` where the file
    is one (Letterboxd delivers its export so), its name 'export.zip:ratings.csv'; a :class:`ReadFile`'s bytes as
    they were read (up to :data:`USER_FILE_MAX` too); a path's through :func:`file_bytes`."""
    where = f"«{option}|{option.lstrip('-')}» '{shorten(str(path), 80)}'"
    if isinstance(path, ReadFile):
        data = path.data
        if len(data) > USER_FILE_MAX:  # (the CLI's standard input is read up to it: this is one given from Python)
            raise UsageError(f"{where}: {len(data):,} bytes, more than the {USER_FILE_MAX:,} such a file is read up "
                             "to (a new user's export is kilobytes); give the new user's own file")
    else:
        stdin = marked(f"{option} @-", f"{option.lstrip('-')}=ReadFile(its bytes)")
        try:
            data = file_bytes(path, where, f"a file of the new user's movies, or {stdin} to read standard input")
        except OSError as e:  # a missing input: DataError, exit 1 as --users FILE's (a shell review: 2)
            raise DataError(f"{where}: cannot read it ({e.strerror or e}); give a file of the new user's movies") \
                from None
    if data[:4] == b"PK\x03\x04":
        return _zip_member(path, data, option)
    if data[:2] == b"\x1f\x8b":  # gzip's mark: its text, inflated up to ZIP_MEMBER_MAX (its lines were matched as
        return decoded(_gunzipped(data, where), str(path)), str(path)  # titles, '\x1f\x8b\x08...')
    return decoded(data, str(path)), str(path)


def _gunzipped(data: bytes, where: str) -> bytes:
    """A gzip file's bytes inflated, up to :data:`ZIP_MEMBER_MAX` (more refused in one line, as a zip's member)."""
    import gzip
    import zlib

    try:
        out = read_capped(gzip.GzipFile(fileobj=io.BytesIO(data)), ZIP_MEMBER_MAX)
    except (OSError, EOFError, zlib.error) as e:
        raise UsageError(f"{where}: a gzip file that cannot be read ({shorten(str(e), 80)}); give the file "
                         "itself, or gzip it again") from None
    if out is None:
        raise UsageError(f"{where}: a gzip file that inflates past the {ZIP_MEMBER_MAX:,} bytes such a file is read "
                         "up to (a new user's export is kilobytes); give the new user's own file")
    return out


def file_bytes(path, where: str, give: str) -> bytes:
    """The bytes of the file at ``path``, read in blocks up to :data:`USER_FILE_MAX`: a pipe (``<(cmd)``) read to
    its end within that cap; a path that is no regular file nor pipe (a device, a folder, a socket: /dev/zero was
    read until the memory ran out, a red team) refused before it is opened, a file past the cap before more than
    one block past it is read; each in one line that begins with ``where`` and ends with ``give``, what to give
    instead (OSError, a file that cannot be read, the caller's to say). Also ``--exclude @FILE``'s and
    ``--candidates @FILE``'s (cli.options.parse_movie_list)."""
    mode = os.stat(path).st_mode  # (before open: a FIFO's open would wait for a writer)
    if stat.S_ISFIFO(mode):  # a pipe (a shell's <(cmd): a shell review was refused it): read to its end, up to the
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # cap; opened without waiting for a writer (a named FIFO
        os.set_blocking(fd, True)  # no one writes to reads as empty), then read as the writer writes
        with os.fdopen(fd, "rb") as fh:
            data = read_capped(fh, USER_FILE_MAX)
        if data is None:
            raise _too_large(where, "more than", give)
        return data
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) \
            else "no regular file"
        raise UsageError(f"{where}: {what}, not a file; give {give}")
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        data = read_capped(fh, USER_FILE_MAX) if size <= USER_FILE_MAX else None
        if data is None:  # (one that grew past the cap as it was read: its size now)
            size = max(size, os.fstat(fh.fileno()).st_size)
            raise _too_large(where, f"{size:,} bytes, more than", give)
    return data


def _too_large(where: str, what: str, give: str) -> UsageError:
    """The refusal of a new user's file past :data:`USER_FILE_MAX` bytes (``what``: its size said, or 'more than'
    for a pipe, whose size is not known), one for files and pipes."""
    return UsageError(f"{where}: {what} the {USER_FILE_MAX:,} {'bytes ' if what == 'more than' else ''}such a file "
                      f"is read up to (a new user's export is kilobytes); give {give}")


def decoded(data: bytes, name: str) -> str:
    """A new user's file's text: decoded by its byte-order mark (UTF-8's, UTF-16's, UTF-32's: Windows' Notepad and
    Excel write them; a review found a UTF-16 file's bytes echoed raw), else as UTF-8. A file that is not UTF-8
    and holds no UTF-8 character but ASCII is read as Windows-1252 (what Excel saves a CSV in on a Western
    Windows: 'Am\xe9lie' is 'Amélie'; Latin-1's letters are the same bytes), said in a warning naming the first
    such line and its character; one that mixes UTF-8 characters with bytes that are not UTF-8 keeps its UTF-8 and
    reads the other bytes as backslash escapes ('\xe9'), which no title matches and stderr can show (never the
    raw bytes), said in a warning naming the first such line."""
    for mark, enc in _BOMS:
        if data.startswith(mark):
            return data[len(mark):].decode(enc, errors="backslashreplace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        if not _BEYOND_ASCII.search(data.decode("utf-8", errors="surrogateescape")):  # no UTF-8 beyond ASCII
            text = data.decode("cp1252", errors="backslashreplace")  # (its 5 unused bytes as escapes)
            log.warning("%s:%d is not UTF-8 (byte 0x%02x): read as Windows-1252, Excel's Western encoding, where it "
                        "is %r; save the file as UTF-8 if it is in another", name, line, data[e.start],
                        bytes([data[e.start]]).decode("cp1252", errors="backslashreplace"))
            return text
        log.warning("%s:%d is not UTF-8 (byte 0x%02x): its bytes that are not UTF-8 are read as '\\x..' "
                    "escapes, which match no title; save the file as UTF-8", name, line, data[e.start])
        return data.decode("utf-8", errors="backslashreplace")


# a character of a UTF-8 decoding with surrogateescape other than ASCII and the escapes of bytes not UTF-8
_BEYOND_ASCII = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")
# UTF-32's marks first: its little-endian one begins with UTF-16's
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
USER_FILE_MAX = 64 << 20  # bytes a new user's file (or standard input, @-) is read up to, in memory whole
ZIP_MEMBER_MAX = 64 << 20  # bytes a zip's member is inflated up to (in memory, whole)
_BLOCK = 1 << 20


def read_capped(stream, cap: int) -> bytes | None:
    """``stream``'s bytes (a binary file object) read in blocks to its end, None where they pass ``cap`` bytes (one
    block past it read: no more)."""
    parts, got = [], 0
    while block := stream.read(_BLOCK):
        got += len(block)
        if got > cap:
            return None
        parts.append(block)
    return b"".join(parts)


def _zip_member(path, data: bytes, option: str) -> tuple[str, str]:
    """The member of the zip archive ``data`` that ``option`` reads (:data:`ZIP_MEMBERS`): one declared past
    :data:`ZIP_MEMBER_MAX` refused unread, else inflated in blocks up to the size declared, where a member holding
    more fails its CRC check (a red team's declared 200 bytes and held 2 GiB, which z.read() inflated whole, 14 s
    and 2.1 GB, before 'Bad CRC-32')."""
    import zipfile
    import zlib

    where = f"«{option}|{option.lstrip('-')}» '{shorten(str(path), 80)}'"
    wanted = ZIP_MEMBERS.get(option, ZIP_MEMBERS["--rated"])
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            member = next((n for w in wanted for n in names if n == w), None) or next(
                (n for w in wanted for n in names if n.rsplit("/", 1)[-1] == w), None)
            if member is None:
                listed = ", ".join(names[:8]) + (f" and {len(names) - 8:,} more" if len(names) > 8 else "")
                raise UsageError(f"{where}: a zip archive holding {listed or 'no file'}, none of them "
                                 f"{' or '.join(wanted)}; unzip it and give the file of the new user's "
                                 f"{'ratings' if option == '--rated' else 'movies'}")
            size = z.getinfo(member).file_size
            if size > ZIP_MEMBER_MAX:  # said before anything is inflated
                raise UsageError(f"{where}: its {member} unzips to {size:,} bytes, more than the {ZIP_MEMBER_MAX:,} a "
                                 "new user's file is read up to; give a shorter file")
            parts = []
            with z.open(member) as fh:  # in blocks, which zipfile ends at the size declared (z.read() inflated all
                while block := fh.read(_BLOCK):  # the data before it cut the output there)
                    parts.append(block)
            raw = b"".join(parts)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, zlib.error) as e:  # (a red
        # team: a member's damaged deflate data, zlib.error, was an internal error)
        raise UsageError(f"{where}: a zip archive that cannot be read ({shorten(str(e), 80)}); unzip it and give "
                         f"its {wanted[0]}") from None
    return decoded(raw, f"{path}:{member}"), f"{path}:{member}"


def read_liked(path, option: str = "--liked", lines: list | None = None, names: dict | None = None) -> list[str]:
    """The movies of a liked file, one id or title per line (blank and '#' lines skipped, a line in double quotes
    one CSV field, a first line 'movie_id'/'title' a header), or of a table with a header naming its title (and
    year) column or its id column (Letterboxd's likes/films.csv, watched.csv): 'Title (year)' each. Said in one
    line. ``lines`` (a list): receives each movie's line, in order, for a message naming it. A zip archive
    (Letterboxd's export) is read by its watched.csv, else its ratings.csv (:data:`ZIP_MEMBERS`). ``names``: the
    dataset's own column names, read as a header's too (:func:`_vocab`)."""
    vocab = _vocab(names)
    where = [] if lines is None else lines
    text, path = _text(path, option)
    lines = text.splitlines()
    first = next((n for n, t in enumerate(lines) if t.strip() and not t.lstrip().startswith("#")), None)
    out: list[str] = []
    table = _table(lines, first, path, option, vocab) if first is not None else None
    if table is not None:
        header, rows, sep = table
        movie, year = _columns(header, path, option, rating=False, vocab=vocab)
        for n, row in rows:
            item = _movie_of(row, movie, year)
            if item:
                out.append(item)
                where.append(n)
        how = f"{'movie' if _key(header[movie]) in vocab[1] else 'title'} '{header[movie]}'" + (
            f", year '{header[year]}'" if year is not None else "")
    else:
        for n, t in enumerate(lines, 1):
            t = t.strip()
            if not t or t.startswith("#"):
                continue
            if len(t) > 1 and t[0] == t[-1] == '"':
                t = t[1:-1].replace('""', '"').strip()
            if not out and _key(t) in (*vocab[1], "movie", "title", "name"):
                continue  # a one-column header
            out.append(t)
            where.append(n)
        how = "a movie a line"
    if not out:
        raise UsageError(f"«{option}|liked» '{shorten(str(path), 80)}': the file holds no movies; give one id or "
                         "title per line")
    log.info("read %s liked movie%s from %s (%s)", f"{len(out):,}", "" if len(out) == 1 else "s", path, how)
    return out


def read_rated(path, option: str = "--rated", names: dict | None = None, counts: bool = False) -> RatedFile:
    """The ratings of a rated file: a CSV/TSV with a header (its columns found by name: :data:`TITLE_NAMES` or
    :data:`ID_NAMES`, :data:`YEAR_NAMES`, :data:`RATING_NAMES`), or ``MOVIE=RATING`` a line. A row without a rating
    (Letterboxd's diary) is left out, a movie rated on several lines takes its last line's, an IMDb row of a
    series or an episode is left out: each said in the one line that says what was read. A zip archive (Letterboxd's
    export) is read by its ratings.csv (:data:`ZIP_MEMBERS`). ``names``: the dataset's own column names, read as a
    header's too (:func:`_vocab`). ``counts``: for a counts model, a table without a rating column is a log of
    events, each row counting 1 and a movie's rows summed (:func:`rated_table`)."""
    text, path = _text(path, option)
    lines = text.splitlines()
    first = next((n for n, t in enumerate(lines) if t.strip() and not t.lstrip().startswith("#")), None)
    if first is None:
        raise UsageError(f"«{option}|rated» '{shorten(str(path), 80)}': the file holds no ratings; give a table "
                         "with a header (title,rating) or MOVIE=RATING per line")
    table = _table(lines, first, path, option, _vocab(names))
    out = RatedFile(str(path))
    if table is None:
        return _pairs(lines, path, option, out)
    header, rows, sep = table
    return rated_table(header, rows, str(path), option, decimal_comma=sep == ";", names=names, counts=counts)


_DECIMAL_COMMA = re.compile(r"([+-]?\d+),(\d+)")  # '4,5': a rating written with a decimal comma
# a rating cell that holds none: empty, or a word a DataFrame reads as missing (a review: a file's 'NA' was refused
# where the same table as a DataFrame took it as unrated)
_NO_RATING = NA_WORDS | {"", "None"}


def rated_table(header: list, rows: list, name: str, option: str = "--rated", decimal_comma: bool = False,
                names: dict | None = None, counts: bool = False) -> RatedFile:
    """:func:`read_rated` of a table given as its header and (line, cells) rows: a file's, or a DataFrame's
    (``recommend_new(rated=df)``). ``decimal_comma``: a rating '4,5' is 4.5 (a ';'-separated file: Excel's CSV
    where ',' is the decimal mark; a red team found it refused), said in the line that says what was read;
    elsewhere refused with the rating to write."""
    out = RatedFile(name)
    commas = 0
    vocab = _vocab(names)
    if counts:  # a counts model's file of counts ('history --format csv' of such a run: its count column; a review)
        vocab = (vocab[0], vocab[1], vocab[2] + COUNT_NAMES)
    keys = [_key(str(h)) for h in header]
    rating = next((keys.index(k) for k in vocab[2] if k in keys), None)
    if rating is None and counts:  # a counts model's log of events (item,timestamp): each row 1, a movie's summed
        return _counted_events(header, rows, name, option, vocab)  # (a first-hour review: refused as no rating)
    movie, year = _columns(header, name, option, rating=True, vocab=vocab)
    id_col = next((keys.index(k) for k in vocab[1] if k in keys), None)
    id_col = None if id_col == movie else id_col  # an id column beside the title: RatedFile.ids
    if "letterboxduri" in keys:
        out.scale, out.source = LETTERBOXD, "Letterboxd"
    elif "const" in keys and "yourrating" in keys:  # (IMDb's export: both; a "Your Rating" of one's own may be 1-5)
        out.scale, out.source = IMDB, "IMDb"
    kind = keys.index("titletype") if "titletype" in keys else None
    original = keys.index("originaltitle") if "originaltitle" in keys and keys.index("originaltitle") != movie \
        and year is not None else None  # IMDb's export: 'Original Title' beside 'Title'
    blank = films_not = twice = 0
    for n, row in rows:
        item = _movie_of(row, movie, year)
        if not item:
            continue
        if kind is not None and kind < len(row) and _key(str(row[kind])) in NOT_FILMS:
            films_not += 1
            continue
        value = str(row[rating]).strip() if rating < len(row) and row[rating] is not None else ""
        if value in _NO_RATING:  # watched, not rated (a Letterboxd diary's row; R's NA): not folded in,
            blank += 1                              # but never listed back (a first-hour review: it was)
            out.watched.setdefault(item, n)
            continue
        comma = _DECIMAL_COMMA.fullmatch(value)
        if comma and decimal_comma:
            value, commas = f"{comma[1]}.{comma[2]}", commas + 1
        try:
            r = float(value)
        except ValueError:
            how = f"write it with a point, {comma[1]}.{comma[2]}" if comma else "give a number"
            raise UsageError(f"«{option}|rated» {name}:{n}: rating '{shorten(value, 20)}' of '{shorten(item, 40)}' "
                             f"(column '{header[rating]}') is not a number; {how}") from None
        if item in out.ratings:
            twice += 1
            del out.ratings[item]  # the last line's, in the file's order (a diary lists a film rewatched again)
        out.ratings[item], out.lines[item] = r, n
        own = str(row[id_col]).strip() if id_col is not None and id_col < len(row) and row[id_col] is not None else ""
        if own and own not in ("nan", "None", "<NA>"):
            out.ids[item] = own
        other = _movie_of(row, original, year) if original is not None else ""
        if other and other != item:
            out.others[item] = other
    if not out.ratings:
        raise UsageError(f"«{option}|rated» {name}: no row holds a rating (column '{header[rating]}'"
                         + (f"; {blank:,} empty" if blank else "") + "); give the new user's ratings")
    said = [f"{'title' if _key(str(header[movie])) not in vocab[1] else 'movie'} '{header[movie]}'"]
    if year is not None:
        said.append(f"year '{header[year]}'")
    said.append(f"rating '{header[rating]}'" + (f", {out.source}'s {out.scale[0]:g}-{out.scale[1]:g}"
                                                 if out.source else ""))
    left = [f"{blank:,} row{'s' if blank > 1 else ''} without a rating left out of the fold-in, never listed"] \
        if blank else []
    if commas:
        left.append(f"{commas:,} rating{'s' if commas > 1 else ''} with a decimal comma ('4,5' read as 4.5)")
    if films_not:
        left.append(f"{films_not:,} series or episode{'s' if films_not > 1 else ''} left out")
    if twice:
        left.append(f"{twice:,} rated again further down: the last rating taken")
    log.info("read %s rated movie%s from %s (%s%s)", f"{len(out.ratings):,}", "" if len(out.ratings) == 1 else "s",
             name, ", ".join(said), "; " + "; ".join(left) if left else "")
    return out


def _counted_events(header: list, rows: list, name: str, option: str, vocab) -> RatedFile:
    """A counts model's ``--rated`` table without a rating column: a log of the new user's events, each row counting
    1 and a movie's rows summed (as ``data.repeats: sum`` counts a dataset's), said in the line that says what was
    read."""
    out = RatedFile(name)
    movie, year = _columns(header, name, option, rating=False, vocab=vocab)
    rows_read = 0
    for n, row in rows:
        item = _movie_of(row, movie, year)
        if not item:
            continue
        rows_read += 1
        out.ratings[item] = out.ratings.get(item, 0.0) + 1.0
        out.lines.setdefault(item, n)
    if not out.ratings:
        raise UsageError(f"«{option}|rated» {name}: no row names a movie (column '{header[movie]}'); give the new "
                         "user's events")
    log.info("read %s movie%s from %s (%s '%s'; no rating column: each of its %s rows counts 1, a movie's rows summed)",
             f"{len(out.ratings):,}", "" if len(out.ratings) == 1 else "s", name,
             "title" if _key(str(header[movie])) not in vocab[1] else "movie", header[movie], f"{rows_read:,}")
    return out


def _pairs(lines: list, path, option: str, out: RatedFile) -> RatedFile:
    """A headerless rated file: MOVIE=RATING a line."""
    commas = 0
    for n, t in enumerate(lines, 1):
        t = t.strip()
        if not t or t.startswith("#"):
            continue
        movie, sep, value = t.rpartition("=")
        movie = movie.strip()
        if len(movie) > 1 and movie[0] == movie[-1] == '"':
            movie = movie[1:-1].replace('""', '"').strip()
        if not sep or not movie or movie.endswith("="):  # ('50==5': no movie before the '=', as --rated says)
            raise UsageError(f"«{option}|rated» {path}:{n}: '{shorten(t, 40)}' is no MOVIE=RATING; give a table "
                             "with a header naming its title and rating columns (title,rating; Letterboxd's and "
                             "IMDb's exports as they are) or MOVIE=RATING per line")
        comma = _DECIMAL_COMMA.fullmatch(value.strip())
        try:  # ('Heat (1995)=4,5': one pair a line, so the comma can only be a decimal one)
            r = float(f"{comma[1]}.{comma[2]}" if comma else value)
            commas += bool(comma)
        except ValueError:
            raise UsageError(f"«{option}|rated» {path}:{n}: '{shorten(value.strip(), 20)}' is not a number; give "
                             "MOVIE=RATING, e.g. Heat (1995)=4") from None
        out.ratings.pop(movie, None)
        out.ratings[movie], out.lines[movie] = r, n
    said = f"; {commas:,} rating{'s' if commas > 1 else ''} with a decimal comma ('4,5' read as 4.5)" if commas else ""
    log.info("read %s rated movie%s from %s (MOVIE=RATING a line%s)", f"{len(out.ratings):,}",
             "" if len(out.ratings) == 1 else "s", path, said)  # (the comma said, as a table's line says it)
    return out


def _table(lines: list, first: int, name="", option: str = "--rated", vocab: tuple | None = None) \
        -> tuple[list, list, str] | None:
    """(header, [(line number, cells)], separator) where line ``first`` is a CSV/TSV/';' header naming a movie
    column and another, else None. A '"' that opens a field never closed where it should be is refused naming the
    line it opens on (``name``: the file's, for the message): one whose field grows past csv's field limit (a red
    team: 'internal error (Error: field larger than field limit (131072))'), and one whose field, of a column read
    (``vocab``'s, :func:`_vocab`, or a year) or past the header's, runs over a line break (a red team: the four rows after a stray
    quote were read as one title, and one rated movie said, exit 0). A quoted field of another column (a review's
    text) may hold line breaks."""
    titles, ids, ratings = vocab or _vocab(None)
    head = lines[first]
    for sep in ("\t", ",", ";"):
        if sep not in head:
            continue
        header = next(csv.reader([head], delimiter=sep))
        keys = [_key(h) for h in header]
        if not any(k in titles or k in ids for k in keys):
            continue
        read = [k in (*titles, *ids, *YEAR_NAMES, *ratings) for k in keys]
        body = "\n".join(lines[first + 1:]) + "\n"  # (an open quote on the last line: a field ending in a break)
        rows = []
        reader = csv.reader(io.StringIO(body), delimiter=sep)
        at = first + 2  # the line the next row begins on (1-based, the header at first + 1)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                line = lines[at - 1] if 0 < at <= len(lines) else ""
                if '"' not in line and "field larger" in str(e):  # a long field with no quote: no quote to blame
                    raise UsageError(f"«{option}|{option.lstrip('-')}» {name}:{at}: a field longer than csv's "
                                     f"{csv.field_size_limit():,}-character limit ({len(line):,} characters on that "
                                     f"line, no quote): a line of this table names a movie"
                                     f"{' and its rating' if option == '--rated' else ''}; check that this is the "
                                     "file you meant") from None
                raise UsageError(f"«{option}|{option.lstrip('-')}» {name}:{at}: a '\"' opens a field there that is "
                                 f"not closed ({shorten(str(e), 60)}: it runs on to line {first + 1 + reader.line_num:,}"
                                 "); take the stray quote out, or close it (a quote within a quoted field is "
                                 "written '\"\"')") from None
            end = first + 1 + reader.line_num
            broken = [c for i, c in enumerate(cells) if ("\n" in c or "\r" in c) and (i >= len(read) or read[i])]
            if broken:
                runs = f"runs on to line {end:,} ('{shorten(broken[0].strip(), 40)}'), so the rows between are read " \
                    "as one" if end > at else "is never closed"
                raise UsageError(f"«{option}|{option.lstrip('-')}» {name}:{at}: a '\"' opens a field there that "
                                 f"{runs}; take the stray quote out, or close it")
            if cells and any(c.strip() for c in cells):
                rows.append((at, cells))
            at = end + 1
        return header, rows, sep
    return None


def _columns(header: list, name, option: str, rating: bool, vocab: tuple | None = None) -> tuple[int, int | None]:
    """(the movie column, the year column or None) of ``header``; a rated table with no rating column refused.
    ``vocab``: :func:`_vocab`'s names."""
    titles, ids, ratings = vocab or _vocab(None)
    keys = [_key(str(h)) for h in header]
    movie = next((keys.index(k) for k in ids if k in keys), None)
    titled = next((keys.index(k) for k in titles if k in keys), None)
    if titled is not None:  # a title beats an id column holding another catalogue's ids (IMDb's Const is none;
        movie = titled      # MovieLens' movieId, whose ids are not ML-100K's: a diff review)
    if movie is None:
        raise UsageError(f"«{option}|{option.lstrip('-')}» {name}: no column of the header names the movie "
                         f"({', '.join(repr(str(h)) for h in header)}); name it title or movie_id")
    if rating and not any(k in keys for k in ratings):
        raise UsageError(f"«{option}|rated» {name}: no column of the header holds the rating "
                         f"({', '.join(repr(str(h)) for h in header)}); name it rating, or give a list of "
                         "movies without ratings (Letterboxd's watched.csv) as «--liked @FILE|liked=path»")
    year = next((keys.index(k) for k in YEAR_NAMES if k in keys), None) if movie == titled else None
    return movie, year


def _movie_of(row: list, movie: int, year: int | None) -> str:
    """A row's movie: its title with its year as '(1995)' where the year is a column of its own, or its id."""
    item = str(row[movie]).strip() if movie < len(row) and row[movie] is not None else ""
    if item in ("nan", "None", "<NA>"):
        return ""
    if item and year is not None and year < len(row):
        y = str(row[year]).strip()
        y = y[:-2] if y.endswith(".0") else y  # a DataFrame's year column with a gap is float
        if re.fullmatch(r"\d{4}", y) and not re.search(r"\(\d{4}\)$", item):
            item = f"{item} ({y})"
    return item


def frame_table(df) -> tuple[list, list]:
    """A DataFrame's header and rows for :func:`rated_table` (rows numbered as a file's with a header)."""
    header = [str(c) for c in df.columns]
    return header, [(n, list(r)) for n, r in enumerate(df.itertuples(index=False, name=None), 2)]


# ----------------------------------------------------------------------------------------- a file's scale
COMMON = ((0.5, 5.0, 0.5), (1.0, 10.0, 1.0))  # (low, high, step): Letterboxd's half stars, IMDb's 1-10


def file_scale(rated: RatedFile, scale: tuple | None) -> tuple | None:
    """The scale ``rated``'s values are on where it is not the model's ``scale`` (:func:`rescaled`'s rule: its
    source's, or the first of :data:`COMMON` holding all its values where the model's does not), else None."""
    values = list(rated.ratings.values())
    if scale is None or not values:
        return None
    lo, hi = scale
    src = rated.scale
    if src is None:
        if all(lo <= v <= hi for v in values):
            return None
        return next(((a, b) for a, b, step in COMMON if (a, b) != (lo, hi) and all(
            a <= v <= b and abs((v - a) / step - round((v - a) / step)) < 1e-9 for v in values)), None)
    if tuple(src) == (lo, hi) or not all(src[0] <= v <= src[1] for v in values):
        return None
    return tuple(src)


def rescaled(rated: RatedFile, scale: tuple | None) -> dict:
    """``rated``'s ratings on a model's ``scale``: as given where that scale holds them all and the file's own is
    not known to differ; else mapped linearly from the file's scale (its source's, or the first common scale,
    :data:`COMMON`, holding all its values) onto it, said in a note. Values no such scale holds are returned as
    given (refused as today by the model's check)."""
    src = file_scale(rated, scale)
    if src is None:
        return dict(rated.ratings)
    lo, hi = scale
    a, b = src
    out = {m: lo + (v - a) * (hi - lo) / (b - a) for m, v in rated.ratings.items()}
    mid = (a + b) / 2
    log.info("note: %s's ratings are on %s %g-%g scale: mapped linearly onto this model's %g-%g (%g -> %g, %g -> "
             "%.3g, %g -> %g)", rated.name, f"{rated.source}'s" if rated.source else "a", a, b, lo, hi, a, lo, mid,
             lo + (mid - a) * (hi - lo) / (b - a), b, hi)
    return out
