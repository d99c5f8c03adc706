"""What a ratings table's first bytes and first line say, before its rows are read (data/tables.py calls each in
turn): a Parquet file, a zip, JSON or an HTML page refused as CSV/TSV text, then textfiles.refuse_binary_head on
its first MiB (``_refuse_binary``); a stream compressed as gzip, bzip2, xz or zstd known by its signature and read
decompressed under the limits a compressed file has (``_packed``, ``_unpacked_stream``); a UTF-16/UTF-32 byte-order
mark (``_from_bom``); the separator (``_sniff_separator``); the header line, a line of data or one column said as
such (``_header``, ``_one_column``); and, without a header, the first line's fields and whether a third one holds
ratings (``_headerless_fields``, ``_ratings_third``). pandas is imported at module level, as data/tables.py
imports it; no caller on the serving path reaches this module."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pandas as pd

from embedrec.config_values import plain_name as _plain
from embedrec.data.ids import is_number_text
from embedrec.data.parsing import _refuse_repeated_names, header_names
from embedrec.data.textfiles import (
    HEAD,
    STREAM_COMPRESSED,
    TARS,
    _bom_encoding,
    _decode_error,
    _parser_error,
    decompress_command,
    likely_separator,
    limits,
    read_bounded,
    refuse_binary_head,
    uncompressed_name,
)
from embedrec.errors import DataError, first_line, shorten

log = logging.getLogger("embedrec")

# the share of a column's first values that are ISO 8601 dates for it to be read as dates (at least 3 of them; or
# every one): ingest's guess of a column of times (data.columns.times_kind) and data.times' reading of the one
# named alike, the others then refused by their lines as no date like the column's
MOSTLY_DATES = 0.75


def _from_bom(src, label: str, encoding: str):
    """A UTF-16/UTF-32 file (its byte-order mark says so) read as that, where data.encoding is the default UTF-8:
    its text as UTF-8 bytes, so every later step reads it as any other file. Else ``src`` unchanged."""
    if encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "utf8sig"):
        return src  # the user named an encoding: theirs
    bom = _bom_encoding(src, b"")
    if bom is None:
        return src
    data = src if isinstance(src, (bytes, bytearray)) else Path(src).read_bytes()
    try:
        text = data.decode(bom)
    except UnicodeDecodeError as e:
        raise DataError(f"{label}: it starts with a {bom.upper()} byte-order mark but byte offset {e.start:,} does "
                        f"not decode as {bom}; save the file as UTF-8 text") from None
    log.info("%s: %s text (its byte-order mark says so), read as such", label, bom.upper())
    return text.encode("utf-8")


def _sniff_separator(src, encoding: str) -> str:
    try:
        if isinstance(src, (bytes, bytearray)):
            first = src[:4096].decode(encoding, errors="replace").splitlines()[:1]
        else:
            with open(src, encoding=encoding, errors="replace") as fh:
                first = [fh.readline()]
    except FileNotFoundError:
        raise DataError(f"{src}: file not found; check data.source", path=str(src)) from None
    except IsADirectoryError:
        raise DataError(f"{src}: is a folder, not a ratings table; give the table's path (e.g. {src}/ratings.csv), "
                        "or the folder without data.format if it holds a MovieLens or RecBole release") from None
    return likely_separator(first[0] if first else "") or ","


def _header(src, sep: str, encoding: str, label: str, id_type: str = "int") -> list[str]:
    try:
        buf = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
        names = header_names(buf, sep=sep, encoding=encoding)  # (no frame of its columns: a wide header's cost)
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: the file is empty; point data.source at a ratings file with rows") from None
    except UnicodeDecodeError as e:
        raise _decode_error(label, e, encoding) from None
    except (pd.errors.ParserError, ValueError) as e:  # a header that pandas cannot tokenize (a lone '"')
        raise _parser_error(label, e, 1, src, sep, encoding) from None
    refuse_wide(len(names), f"{label}:1", "the header line names")
    numbers = sum(bool(is_number_text(n)) for n in names)
    # all numbers (pandas renames a repeated '1' to '1.1'), or text ids before two numbers ('u8,m20,1,1600000000':
    # an own-data review was offered its values as column names)
    if len(names) > 1 and (numbers == len(names) or numbers and len(names) >= 3 and len(names) - numbers <= 2):
        line = _head(src, 4096).decode(encoding, errors="replace").lstrip("\ufeff").splitlines()[:1] or [""]
        text = "" if numbers == len(names) or id_type != "int" else ", with «--set data.id_type=auto» for its text ids"
        raise DataError(f"{label}:1: the first line ({shorten(line[0], 60)}) is data, not a header "
                        "naming the columns; add a header line (user_id, movie_id, rating, timestamp), or read the "
                        f"file without one: «--set data.header=false» (columns in that order){text}")
    if names and re.fullmatch(r"sep=.?", str(names[0]).strip()) and len(names) <= 2:  # Excel's 'sep=,' line
        line = _head(src, 4096).decode(encoding, errors="replace").lstrip("\ufeff").splitlines()[:1] or [""]
        raise DataError(f"{label}:1: the first line ('{shorten(line[0].strip(), 20)}') is Excel's separator line, "
                        "not the header: remove it (tail -n +2 FILE > NEW), then ingest NEW")
    _refuse_repeated_names(src, sep, encoding, label)
    raw = b"" if encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")) else \
        _head(src, 1 << 16).split(b"\n", 1)[0]  # pandas 2 ends a name at a NUL byte: the bytes tell (session 36)
    if any("\x00" in str(n) for n in names) or b"\0" in raw:
        be = str(names[0]).startswith("\x00") or raw.startswith(b"\0")  # big-endian: each character's NUL first
        raise DataError(f"{label}:1: the header line holds NUL bytes (\\x00), as a UTF-16 file without a byte-order "
                        f"mark would; set «--set data.encoding=utf-16-{'be' if be else 'le'}» if it is one, or "
                        "remove them")
    return names


COLUMNS_MAX = 200_000  # the columns a ratings table may have: each costs its name's checks, whatever is read


def refuse_wide(n: int, where: str, what: str) -> None:
    """A table of more than COLUMNS_MAX columns (``n``, which ``what`` at ``where`` names: 'the header line
    names') refused: ingest reads
    a few of them, but looks at each name (a red team's header of 120,000 columns took 4 s once only the columns
    read were read; one of a million, which a header line within its 1 MiB can name, would take half a minute)."""
    if n > COLUMNS_MAX:
        raise DataError(f"{where}: {what} {n:,} columns, more than the {COLUMNS_MAX:,} a ratings table is read "
                        "with; write the file again with the columns ingest reads (user, movie, rating and time, and "
                        "title and genres where it has them)")


def _ratings_third(src, sep: str, encoding: str, decimal: str = ".", rows: int = 1000) -> bool:
    """Whether a headerless file's third field reads as ratings in its first ``rows`` lines (numbers within
    -10 to 10: stars, 0/1, a 1-10 scale), not as times or counts (a click log's user, movie, timestamp is told
    the setting that reads it: a red team)."""
    try:
        buf = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
        third = pd.read_csv(buf, sep=sep, nrows=rows, header=None, usecols=[2], encoding=encoding, decimal=decimal,
                            engine="c" if len(sep) == 1 else "python").iloc[:, 0]
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError):
        return False
    finally:
        if not isinstance(src, (bytes, bytearray)) and hasattr(src, "seek"):
            src.seek(0)
    values = pd.to_numeric(third, errors="coerce").dropna()  # (an empty one: data.missing's to refuse or drop)
    return bool(len(values)) and bool((values.abs() <= 10).all())


def _headerless_fields(src, sep: str, encoding: str, label: str, names: list[str]) -> int | None:
    """With data.header=false the columns are read by position: the first line must not have more fields, nor be
    a header line (its fields column names: a red team's 'user,item' became user 'user' and movie 'item' under
    data.id_type=auto; with integer ids it was 'not an integer; for text ids set data.id_type=auto')."""
    def buf():
        return io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src

    kw = dict(sep=sep, header=None, encoding=encoding, engine="c" if len(sep) == 1 else "python")
    try:  # the fields counted first, without a frame of them (a red team: 120,000 fields a line, 6.5 s and 345 MB)
        n = len(header_names(buf(), **kw))
        first = pd.read_csv(buf(), nrows=1, dtype=str, keep_default_na=False, **kw) if n <= len(names) else None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError):
        return None  # the main reader says what is wrong with the file
    if first is None:  # fewer: the reader's own message says which columns to drop from the config
        refuse_wide(n, f"{label}:1", "the first line holds")
        raise _more_fields(label, n, names)
    if n == 1 and len(first) and NETFLIX_BLOCK.fullmatch(str(first.iloc[0, 0])):
        raise netflix_prize(label, f"'{shorten(str(first.iloc[0, 0]).strip(), 60)}' heads a block of ratings")
    fields = [str(v).strip().lstrip("\ufeff") for v in (first.iloc[0].tolist() if len(first) else [])]
    known = {_plain(c) for c in names} | HEADER_WORDS
    named = [f for f in fields if f and _plain(f) in known]
    if len(named) >= 2:
        raise DataError(f"{label}:1: the first line ({shorten(sep.join(fields), 60)}) names columns "
                        f"({', '.join(repr(f) for f in named[:4])}), not a rating, yet data.header=false reads it as "
                        "one (user " + repr(fields[0]) + (f", movie {fields[1]!r}" if n > 1 else "") + "); leave "
                        "data.header at true (the default) to read it as the header, or remove that line")
    return n


def _more_fields(label: str, n: int, names: list[str]) -> DataError:
    return DataError(f"{label}:1: {n} columns per line, but without a header the config reads {len(names)} "
                     f"({', '.join(names)} in that order) and would shift them; give the file a header line "
                     "naming its columns, or remove the others (such as the index column pandas' to_csv writes)")


# what a header line's fields are called (plain_name: 'userId' is 'userid'), beside the config's data.columns
HEADER_WORDS = {"user", "userid", "uid", "movie", "movieid", "item", "itemid", "iid", "rating", "score", "stars",
                "rate", "timestamp", "ts", "time", "datetime", "date", "eventtime", "ratedat", "createdat"}


_MAGIC = ((b"PAR1", "a Parquet file", "name it with a .parquet extension, or set «--set data.format=parquet»"),
          (b"\x1f\x8b", "gzip-compressed", "name it with a .gz extension (e.g. ratings.csv.gz) or decompress it"),
          (b"PK\x03\x04", "a zip archive (an Excel .xlsx file is one too)",
           "name a zip of MovieLens or RecBole files with a .zip extension, or save a spreadsheet as CSV"))


# gzip (deflate), bzip2 (a block's magic after its level), xz: what a stream may hold compressed, by whole
# signatures (a review: a text stream whose first id was 'BZhana' was refused as broken bzip2)
_PACKED = ((re.compile(rb"\x1f\x8b\x08"), "gzip"), (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2"),
           (re.compile(rb"\xfd7zXZ\x00"), "xz"), (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd"))


def _packed(head: bytes) -> str | None:
    return next((name for rx, name in _PACKED if rx.match(head)), None)


def _unpacked_stream(data: bytes, label: str) -> bytes:
    """A stream's bytes decompressed where they start as gzip, bzip2 or xz data do (as they are otherwise), under
    the limits a compressed file given by its path has (a review: a 437 KB gzip piped in took 3.8 GB)."""
    import bz2
    import gzip
    import lzma

    name = _packed(data[:16])
    if name is None:
        return data
    most, ratio = limits()
    cap = min(most, ratio * len(data) + (64 << 20))
    if name == "zstd":  # as a .zst file: with the zstandard package (a review: 'binary data' said of it)
        try:
            import zstandard
        except ImportError:
            raise DataError(f"{label}: the stream is zstd-compressed; reading it needs the zstandard package (pip "
                            "install zstandard), or decompress it first (zstd -dc)") from None
        opened = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
    else:
        opened = {"gzip": gzip, "bzip2": bz2, "xz": lzma}[name].open(io.BytesIO(data), "rb")
    try:
        with opened as fh:
            return read_bounded(fh, cap, label, ratio)
    except DataError:  # the bomb's (a ValueError too)
        raise
    except Exception as e:  # noqa: BLE001 - gzip's OSError and EOFError, lzma's and zstandard's own errors
        raise DataError(f"{label}: the {name} data is damaged or cut short ({first_line(e)}); send the whole file "
                        "again") from None


def _head(src, n: int) -> bytes:
    """The first ``n`` bytes of ``src`` (bytes, or a path; empty where it cannot be read: the reader says why)."""
    if isinstance(src, (bytes, bytearray)):
        return bytes(src[:n])
    try:
        with open(src, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def _refuse_binary(src, label: str, stdin: bool, seps=(), encoding: str = "utf-8") -> None:
    """A Parquet file, a zip, JSON or an HTML page read as CSV text (a wrong extension, stdin, a failed download)
    is named for what it is; a Parquet file's NUL bytes would otherwise be taken for a UTF-16 header. Then
    :func:`refuse_binary_head` on its first MiB: binary data, or no line break (a red team: a 20 GB file of NUL
    bytes was read whole into memory, and the machine ran out of it)."""
    head = _head(src, HEAD)
    for magic, what, fix in _MAGIC:
        if head.startswith(magic):
            if stdin and magic == b"PAR1":
                fix = "read it with «--set data.format=parquet»"
            raise DataError(f"{label}: the file is {what}, not CSV/TSV text; {fix}")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml")):
        raise DataError(f"{label}: the file is an HTML/XML page (a download that failed?), not CSV/TSV text; fetch "
                        "the ratings file again")
    if text[:1] == b"{" or text.startswith((b"[{", b"[ {", b"[\n", b"[\r")):
        raise DataError(f"{label}: the file is JSON, not CSV/TSV text; convert it to CSV (user_id, movie_id, "
                        "rating, timestamp columns)")
    refuse_binary_head(head, label, seps, encoding)


NETFLIX_BLOCK = re.compile(r"\s*\d+:\s*")  # a Netflix Prize file's 'MovieID:' line, heading that movie's ratings


def netflix_prize(label: str, found: str) -> DataError:
    """The Netflix Prize layout (combined_data_N.txt, training_set/mv_*.txt: a 'MovieID:' line, then that movie's
    CustomerID,Rating,Date lines) met, on line 1 of ``label``, where a table is read: standard input, data.format
    set to a table's (a first-hour review: 'remove any lines above the header'), or a compressed file (.gz: read
    as a table, decompressed; ``data/netflix.py`` reads the plain files alone). ``readers.read_source`` reads it,
    by its path, where data.format is auto."""
    layout = ("the Netflix Prize files' layout ('MovieID:' lines, each followed by that movie's CustomerID,Rating,"
              "Date lines), not a table")
    plain = uncompressed_name(label)
    # given by its path compressed, as the Prize's files are handed on (a first-hour review): read as a table, then
    # refused with 'give it by its path', which is what the user did
    if label.lower().endswith(STREAM_COMPRESSED) and not label.lower().endswith(TARS):
        return DataError(f"{label}:1: {found}: {layout}, and compressed, which ingest does not read in that layout; "
                         f"decompress it first ({decompress_command(label)}), then give {plain} or its folder")
    return DataError(f"{label}:1: {found}: {layout}; ingest reads it from the file, its folder (with "
                     "movie_titles.csv) or a zip of either, given by its path with data.format auto")


def _one_column(name: str, sep: str, label: str, line: str | None = None, by: str | None = None,
                set_by_user: bool = True) -> DataError:
    """The header line read as one column: the fields are separated by something else (spaces, or another of
    SNIFFED that ``line``, the first line as written, holds: named with the setting that reads it, a first-hour
    review's ';' file read at a given ','), or the first line is not a header (a comment, an HTML error page saved
    as the file). ``line`` is echoed as written (the parser took its opening quote off ``name``). ``by``: what
    reads the file as a TSV ('name': a .tsv's; 'format': data.format=tsv), where leaving data.separator out reads
    it at tabs still; ``set_by_user``: data.separator was set (an own-data review: 'leave data.separator out' was
    told to a user who had)."""
    shown = shorten(line or name, 60)
    other = likely_separator(line) if line else None
    if other is not None and other != sep:
        said = {"\t": "tabs"}.get(other, repr(other))
        from embedrec.errors import set_hint

        fix = set_hint('data.separator', {chr(9): 'tab'}.get(other, other))
        if by is not None and not set_by_user:
            why = "a .tsv file's separator, by its name" if by == "name" else "data.format=tsv's separator"
            return DataError(f"{label}:1: the first line '{shown}' is one column when split at tabs ({why}), and "
                             f"holds {said}: its fields are separated by {said}; read it with {fix}")
        leave = "" if by is not None else \
            ", or leave data.separator out (the separator is then found from the first line)"
        return DataError(f"{label}:1: the first line '{shown}' is one column when split at {sep!r} (data.separator), "
                         f"and holds {said}: its fields are separated by {said}; read it with {fix}{leave}")
    if NETFLIX_BLOCK.fullmatch(name):  # '1:' heading CustomerID,Rating,Date lines
        return netflix_prize(label, f"'{shown}' heads a block of ratings")
    if "::" in name:  # ml-1m's and ml-10m's ratings.dat ('1::1193::5::978300760'), given as a file
        return DataError(f"{label}:1: fields separated by '::', as MovieLens 1M and 10M write their .dat files; give "
                         "the release's folder or zip (e.g. ml-1m/), which embedrec reads as that layout")
    words = name.split()
    if len(words) > 1 and all(re.fullmatch(r"[\w.:-]+", w) for w in words):
        return DataError(f"{label}:1: the header '{shown}' is one column when split at {sep!r}: its fields are "
                         "separated by spaces; set «--set data.separator=space» (one space between fields), or use "
                         "commas or tabs")
    return DataError(f"{label}:1: the first line '{shown}' is one column when split at {sep!r}, not a header naming "
                     "user, movie and rating columns; remove any lines above the header, or set data.separator "
                     "to the file's separator")
