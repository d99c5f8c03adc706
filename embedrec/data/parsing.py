"""The parsing core the readers share: :class:`RawData`, genre/title normalisation and numeric tables read
with pandas' C engine whose problems become one :class:`DataError` naming the file and line (the file layer
under it, streams, decoding, compression, line numbers: ``textfiles.py``). Built on it: how a table's ids are
written (``idtext.py``) and a movies table (``movietable.py``).
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.argcheck import genre_key
from embedrec.bars import counting_reader
from embedrec.data.ids import NA_WORDS
from embedrec.data.textfiles import (
    LIKE_IT_SHOWN,
    _bom_encoding,
    _decode_error,
    _label,
    _parser_error,
    _row_line,
    _row_lines,
    _short_row,
    compressed,
    drop_advice,
    is_stream,
    lines_like_it,
    refuse_binary_file,
    refuse_nul,
)
from embedrec.errors import DataError, WarnedNote, first_line, marked, sh_quote, shorten  # noqa: F401 (WarnedNote re-exported)

# ------------------------------------------------------------------------------------------ value helpers


ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western"]
_CANON = {genre_key(g): g for g in ML100K_GENRES[1:] + ["IMAX"]}
_CANON.update({"childrens": "Children", "scifi": "Sci-Fi", "sciencefiction": "Sci-Fi", "filmnoir": "Film-Noir"})
_NO_GENRE = {"", "unknown", "nogenreslisted", "none"}


_YEAR_RE = re.compile(r"^(.*?)\s*\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$",
                      re.DOTALL)  # a quoted title may span lines ("Two\nLines (1999)")


def normalise_genre(name: str) -> str | None:
    key = genre_key(name)
    if key in _NO_GENRE:
        return None
    return _CANON.get(key, name.strip())


def normalise_genres(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        g = normalise_genre(n)
        if g is not None and g not in out:
            out.append(g)
    return out


def split_title_year(title: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); a title without a year keeps year None."""
    t = str(title).strip()
    m = _YEAR_RE.match(t)
    if m and m.group(1):
        return m.group(1).strip(), int(m.group(2))
    return t, None


def movies_frame(ids: list, titles: list[str], genres: list[list[str]], years: list | None = None) -> pd.DataFrame:
    out_titles, out_years = [], []
    for i, t in enumerate(titles):
        clean, y = split_title_year(t)
        if years is not None and years[i] is not None and not pd.isna(years[i]):
            y = int(years[i])
        out_titles.append(clean)
        out_years.append(y)
    return pd.DataFrame({
        "movie_id": ids,
        "title": out_titles,
        "year": pd.array(out_years, dtype="Int32"),
        "genres": [normalise_genres(g) for g in genres],
    })


@dataclass
class RawData:
    ratings: pd.DataFrame
    movies: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    layout: str = "csv"
    rating_scale: tuple[float, float] | None = None
    files: list[Path] = field(default_factory=list)
    # where each ratings row came from, for error messages: (label, first data line number)
    origin: tuple[str, int] = ("<input>", 1)
    # the file line of a ratings row where blank lines or quoted newlines may lie between (a CSV/TSV file), read
    # again on an error path only; None: row + origin[1]; ``lines_of``: the lines of several rows in one read
    line_of: Callable[[int], int] | None = None
    # info lines about how the files were read ('reading column ...'), said once the rows are checked (ingest):
    # before an error about those rows they would be a second line; a WarnedNote among them is said as a warning
    notes: list[str] = field(default_factory=list)
    # several files read as one table (RecBole's NAME.train/valid/test.inter): (label, its first row) of each
    parts: list[tuple[str, int]] = field(default_factory=list)
    # data.missing=drop: how many rows of the table were dropped for a missing value, and the rows read that were
    # kept (the row number each later row had in the file, for a message's line); None: none dropped
    missing_dropped: int = 0
    kept: np.ndarray | None = None
    # the (user_id, movie_id) of rows dropped that name a user and a movie, by why (the report's key: 'missing_values'
    # for data.missing=drop, 'out_of_scale' for data.out_of_scale=drop): ingest keeps them as seen (rated_below)
    seen: dict = field(default_factory=dict)
    # data.out_of_scale=drop: how many rows were dropped for a rating outside the scale (ratings.check_ratings)
    scale_dropped: int = 0
    # data.bad_lines=skip: how many lines with too many fields were taken out of a text table (tables._skip_bad_lines)
    bad_lines_skipped: int = 0
    # ... and how many lines whose rating, Unix time or integer id could not be read (tables._skip_bad_values)
    bad_values_skipped: int = 0
    # {'rating': 'score'}: the file's columns read under another name than data.columns gives (a spelling or an
    # alias of a default name), recorded in the manifest so a config naming them is not said to differ
    columns_read: dict = field(default_factory=dict)
    # {'user': ('customer_id', 'user_id')}: a column read under the name asked for while the file also has one of
    # its default name, which was passed over (update-users says which it read: columns.passed_over)
    columns_passed_over: dict = field(default_factory=dict)
    # the unit a generic table's Unix times were read in ('s', 'ms', 'us', 'ns'; data.timestamp_unit, auto's
    # resolved), None for dates or no times: a dataset's manifest records it (timestamp_unit_read), update-users
    # reads a file of new ratings in it
    timestamp_unit: str | None = None
    # a table without ratings (no rating column read: each row an event), which data.repeats auto sums by pair
    no_ratings: bool = False
    # a rating column of event types weighed by data.event_weights (a log of events too: summed by pair under auto)
    weighted: bool = False
    lines_of: Callable[[list[int]], list[int]] | None = None
    # the 1-based line of a part's row (its index in ``parts``, the row within it) where rows are not lines (the
    # Netflix Prize files: 'MovieID:' lines between a movie's ratings); None: the row + origin[1]
    part_line: Callable[[int, int], int] | None = None

    def where(self, row: int, cheap: bool = False) -> str:
        """'file:line' of ratings row ``row`` (0-based), for a message (``cheap``: see :meth:`line`); 'file: row N'
        of a Parquet file, which has rows, not lines (a red team: 'r.parquet:7'), as its own checks name them."""
        if self.parts:
            at, line = self._in_part(row)
            return f"{self.parts[at][0]}:{line}"
        if self.layout == "parquet":
            return f"{self.origin[0]}: row {self.line(row, cheap)}"
        return f"{self.origin[0]}:{self.line(row, cheap)}"

    @property
    def that(self) -> str:
        """'that line', or 'that row' of a Parquet file: what a message about one of :meth:`where`'s asks to fix."""
        return "that row" if self.layout == "parquet" else "that line"

    def line(self, row: int, cheap: bool = False) -> int:
        """The 1-based line of ratings row ``row`` (0-based), for a message. ``cheap`` (a warning in a run that
        goes on): a file above LINE_SCAN_MAX is not read again, and the line is counted as if no blank line
        came before."""
        if self.kept is not None:  # rows dropped before it (data.missing=drop): its row as read
            row = int(self.kept[row])
        if self.line_of is None or cheap and _size(self.files[0] if self.files else None) > LINE_SCAN_MAX:
            return row + self.origin[1]
        return self.line_of(row)

    def _in_part(self, row: int) -> tuple[int, int]:
        """(the part holding ratings row ``row``, the row's 1-based line in that part's file), where several files
        are read as one (parts)."""
        at = bisect.bisect_right([start for _, start in self.parts], row) - 1
        start = self.parts[at][1]
        return at, self.part_line(at, row - start) if self.part_line is not None else row - start + self.origin[1]

    def where_lines(self, rows: list[int]) -> tuple[str, list[int | str]]:
        """(the file, the 1-based lines) of ratings rows ``rows`` (0-based, ascending) as :meth:`where` names one,
        in one read of the file, for a message naming the first and the lines like it (textfiles.lines_like_it);
        where several files are read as one (parts), the file is the first row's, and a row in another file is
        named 'file:line' (a review: '2 lines like it: 4, ...' said a second line of another file as none)."""
        if self.parts:
            found = [self._in_part(r) for r in rows]
            first = found[0][0]
            return self.parts[first][0], [line if at == first else f"{self.parts[at][0]}:{line}" for at, line in found]
        read = [int(self.kept[r]) for r in rows] if self.kept is not None else list(rows)
        if self.lines_of is not None:
            return self.origin[0], self.lines_of(read)
        if self.line_of is not None:
            return self.origin[0], [self.line_of(r) for r in read]
        return self.origin[0], [r + self.origin[1] for r in read]


LINE_SCAN_MAX = 64 << 20  # bytes of a ratings file read again to name a warning's line (about 1.5 s here), and
# of one whose quoted lines past an error's first line are read with the csv module (rows_lines)


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except (OSError, TypeError):
        return 0


def rows_lines(src, sep: str, encoding: str, rows: list[int], header_lines: int) -> tuple[list[int], bool]:
    """The 1-based lines of data rows ``rows`` (0-based, ascending) of a text table, for an error naming the first
    of them and the lines like it (textfiles.lines_like_it), in one scan up to the last of them (its bytes by
    numpy, about 0.1 s a 64 MiB: textfiles._row_lines). Quoted lines, which Python's csv module reads (about 1 s a
    64 MiB), are read past the first row only in a file up to LINE_SCAN_MAX: in a larger one the rows past them
    are counted from the last one told (exact unless a blank line or a quoted line break comes between). A row
    whose line cannot be told (stdin) is counted from the rows; the second value says whether the first one's
    was told."""
    if not rows:
        return [], False
    size = len(src) if isinstance(src, (bytes, bytearray)) else _size(src)
    found = _row_lines(src, sep, encoding, [r + header_lines for r in rows], skip_blank=True,
                       quoted_after_first=size <= LINE_SCAN_MAX)
    told = rows[0] + header_lines in found
    lines, last = [], (rows[0], rows[0] + 1 + header_lines)  # (row, line) of the last row told
    for r in rows:
        line = found.get(r + header_lines)
        if line is None:
            line = last[1] + (r - last[0])
        lines.append(line)
        last = (r, line)
    return lines, told


# ------------------------------------------------------------------------------------------ table reading


def header_names(src, **kw) -> list[str]:
    """A delimited table's column names as pandas reads its header line (``kw``: read_csv's; a repeated name as
    'a.1', an empty one as 'Unnamed: 2'), read without a frame of its columns: pandas' frame of a header's 120,000
    empty columns took 10 s and 480 MB (a red team). Each name is told to a ``usecols`` callable that keeps none."""
    names: dict[str, bool] = {}
    pd.read_csv(src, **{**kw, "usecols": lambda c: names.setdefault(c, False), "nrows": 0})
    return list(names)


def read_numeric_table(src, *, sep: str, names: list[str] | None, usecols, numeric: dict[str, str],
                       header: bool, encoding: str, label: str | None = None,
                       extra_dtype: dict | None = None, decimal: str = ".", checked: bool = False,
                       missing: str | None = "error", unparsed: dict | None = None,
                       partial: bool = False, tick=None, bad_lines: str | None = None,
                       again: bool = False, times: tuple = ()) -> pd.DataFrame:
    """Read a delimited table whose ``numeric`` columns (name -> dtype) must parse as numbers.

    Fast path: pandas' C engine with narrow dtypes. On failure the file is re-read as text to report the
    first offending line (file:line), so good files pay nothing for the diagnostics. A file's first MiB is
    checked for binary data first (:func:`textfiles.refuse_binary_file`) unless the caller ``checked`` it.
    ``missing='drop'`` (data.missing): an empty field (or a row short of it) is left missing, integer columns as
    pandas' nullable Int64, for the caller to drop the row; else it is refused naming its line (advising
    data.missing=drop unless ``missing`` is textfiles.RELEASE: a release's own file, which it does not apply to).
    ``unparsed``: column -> how a value of it that is no number is said (:func:`_diagnose_numeric`).
    ``again``: the table read a second time (its ids as text): what the first read said is not said again.
    ``partial``: ``src`` is a longer table's first lines only, so a value that is no number has its lines like it
    counted as of those (:func:`_diagnose_numeric`); other errors count as if it were whole, for the caller to
    discard (tables' early look at the ids).
    ``tick(n)``: a bar's update, called with the bytes the parse takes in (bars.counting_reader: the file is then
    handed to pandas open, read in one thread as it is counted); each read of the table calls its ``restart()``
    first, where it has one (bars.Restartable), so a table read again is counted from 0 again.
    ``bad_lines``: data.bad_lines where it applies to the table (a ratings table's): its error of a line with too
    many fields names the setting that skips them.
    """
    label = label or _label(src)
    if not checked:  # a layout's file (u.data, ratings.dat, .inter: a review); the generic reader checked its own
        refuse_binary_file(src, label, (sep,), encoding)
    refuse_nul(src, label, encoding)  # pandas 2 would end the field at it, silently (session 36)
    header_lines = 1 if header else 0
    kw = dict(sep=sep, header=0 if header else None, names=names, usecols=usecols, encoding=encoding,
              engine="c", skip_blank_lines=True, decimal=decimal)
    every: list[str] = []  # the header's columns, where only some are read (a line's extra fields checked apart)
    if header and usecols is not None:  # the columns named, where they leave some out (a red team: a header of
        # 120,000 columns, every one read, took 9.3 GB); pandas reads every row's fields alike either way, but
        # with every column named it takes no row's extra leading field for its index: read as if none were named
        # (so a row's extra fields are refused, _checked_table)
        try:
            every = header_names(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src, **kw)
        except Exception:  # noqa: BLE001 - the read below says what is wrong with the file
            every = []
        if set(every) <= set(usecols):
            every = []  # (every column read: pandas refuses a line with more fields itself)
            kw["usecols"] = None
    if any(t is str for t in (extra_dtype or {}).values()):  # text ids: 'NA', 'None', 'null' are ids, not missing
        kw.update(keep_default_na=False, na_values=[""])      # values (a review); an empty field still is
    if missing == "drop":  # an empty integer field: <NA>, not a parse error
        numeric = {c: "Int64" if t == "int64" else t for c, t in numeric.items()}
    if isinstance(src, (bytes, bytearray)):
        def opener():
            return io.BytesIO(src)
    else:
        def opener():
            return src
    def source():  # the parse's input: counted as it is taken in, where a bar asks (a read again starts it over)
        if tick is None:
            return contextlib.nullcontext(opener())
        getattr(tick, "restart", lambda: None)()
        fh = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else open(src, "rb")
        return contextlib.closing(counting_reader(fh, tick))

    def read() -> pd.DataFrame:
        try:
            with warnings.catch_warnings(), source() as fh:  # a value beyond float32 ('1e39') is refused below as
                warnings.simplefilter("ignore", RuntimeWarning)  # not finite, by line; numpy's overflow warning: a
                return pd.read_csv(fh, dtype={**numeric, **(extra_dtype or {})}, **kw)  # second line
        except UnicodeDecodeError as e:
            raise _decode_error(label, e, encoding, opener()) from None
        except FileNotFoundError:
            raise DataError(f"{label}: file not found; check data.source", path=str(label)) from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{label}: the file is empty; point data.source at a ratings file with rows") from None
        except EOFError as e:  # a compressed file cut short
            raise DataError(f"{label}: the input ended early ({first_line(e)}): a truncated compressed file? "
                            "download or copy it again") from None
        except pd.errors.ParserError as e:
            raise _parser_error(label, e, header_lines, opener(), sep, encoding, missing,
                                bad_lines=bad_lines, timed=bool(times)) from None
        except (ValueError, TypeError, OverflowError) as e:
            if "Usecols do not match" in str(e) or "not in list" in str(e):
                raise DataError(f"{label}: missing columns ({e}); set data.columns.* to the file's column "
                                "names") from None
            if trailing():
                return read()
            df = _blank_numbers_missing(opener, kw, numeric, extra_dtype) if missing == "drop" else None
            if df is None:
                raise _diagnose_numeric(opener, kw, numeric, label, header_lines, missing, unparsed,
                                        partial, times, bad_lines) from None
            return df

    def trailing() -> bool:
        """Whether the rows end with a separator that the header's line does not (each row a field more than
        the header names, that field empty everywhere): then read again without it, as pandas' index_col=False
        reads it, where pandas took each row's first field as its index and every column shifted one along (a
        review: 'column 'timestamp' is empty' on every line of a file whose rows each ended with a ',')."""
        if not header or "index_col" in kw:
            return False
        found = _trailing_separator(opener, kw)
        if found is False:  # (a value in each row's extra field: the first read's error would name a column)
            n = len(header_names(opener(), **kw))
            first = pd.read_csv(opener(), nrows=1, **{**kw, "dtype": str, "keep_default_na": False,
                                                      "na_values": None})  # its extra fields, pandas' index
            raise DataError(f"{label}:{1 + header_lines}: expected {n} fields (as in the header), found "
                            f"{n + first.index.nlevels}; name every column in the header line, or "
                            "remove the extra fields")
        if found:
            kw["index_col"] = False
            if not partial and not again:  # said by the first whole read (the early look and a read again, its ids
                # as text, read it too: an own-data review saw the line twice)
                logging.getLogger("embedrec").info("%s: every row ends with a separator the header line does not "
                                                   "have: read without that empty last field", label)
        return bool(found)

    with warnings.catch_warnings():  # index_col=False's loss of the extra fields, found empty (trailing)
        warnings.filterwarnings("ignore", "Length of header or names", pd.errors.ParserWarning)
        try:
            df = _checked_table(read(), opener, kw, numeric, extra_dtype, label, header, header_lines, sep,
                                encoding, missing, trailing, read, times)
        except DataError:  # a value of a line whose fields shifted: the line's extra fields said first, as pandas
            if every and "index_col" not in kw and not is_stream(src):  # says them of a table read whole
                _refuse_long_lines(src, sep, encoding, every, label, header_lines, missing, bad_lines,
                                   timed=bool(times))
            raise
    if every and "index_col" not in kw and not is_stream(src):
        _refuse_long_lines(src, sep, encoding, every, label, header_lines, missing, bad_lines, warn=True,
                           timed=bool(times))
    _refuse_ids_over_lines(df, extra_dtype, src, sep, encoding, label, header_lines)
    return df


def _any_line_end(values, block: int = 1 << 20) -> bool:
    """Whether any text of ``values`` (a column of texts, missing ones aside) holds a line end: blocks of a million
    joined and searched at once."""
    texts = values.dropna() if values.hasnans else values
    for a in range(0, len(texts), block):  # (a block's list at a time: 100M ids listed whole would be 800 MB)
        part = texts.iloc[a:a + block].tolist()
        try:
            if "\n" in "\x00".join(part):
                return True
        except TypeError:  # (a value that is no text: each one as text)
            if any("\n" in str(t) for t in part):
                return True
    return False


def _refuse_ids_over_lines(df, extra_dtype, src, sep: str, encoding: str, label: str, header_lines: int) -> None:
    """A text id holding a line end and the separator: a stray '"' opened its field, which swallowed the rows after it
    up to the next quote (legal CSV, so pandas reads it as one row): refused naming the line it opens on, not read
    (a review: two stray quotes read 23 rows of 48 into a dataset, exit 0, without a word). An id quoted over two
    lines without the separator in it is read as it is."""
    for col, kind in (extra_dtype or {}).items():
        if kind is not str or col not in df.columns:
            continue
        values = df[col]
        if not (isinstance(sep, str) and sep and len(values)) or not _any_line_end(values):  # (the common case:
            continue  # a pass over joined blocks, 0.2 s a 5M rows, not a test of each id)
        held = (values.str.contains("\n", regex=False, na=False) & values.str.contains(sep, regex=False, na=False)
                ).to_numpy()
        if not held.any():
            continue
        row = int(np.flatnonzero(held)[0])
        from embedrec.data.textfiles import _row_line

        line = (_row_line(src, sep, encoding, row + header_lines, skip_blank=True)
                if not is_stream(src) else None) or row + 1 + header_lines
        raise DataError(f"{label}:{line}: a quoted field opens here ('\"') and runs over a line break into column "
                        f"'{col}' ('{shorten(str(values.iloc[row]), 30)}'): the lines after it up to the next quote "
                        "are read as one row; remove the stray '\"' on that line")


def _refuse_long_lines(src, sep: str, encoding: str, every: list[str], label: str, header_lines: int,
                       missing: str | None, bad_lines: str | None, warn: bool = False, timed: bool = True) -> None:
    """A table read with some of its header's columns (``every``) refused where a line holds more fields than
    the header names, as a table read whole is (pandas' usecols drops a line's extra fields without a word, and
    its values shift: a review's 'loved it, really' made user 'really' rate movie 8 998): counted cheaply first
    (badlines.has_too_many_fields), then, only where one may, found and said as pandas' own error is
    (_parser_error: the first line, how many and the first few; data.bad_lines=skip took them out before).
    ``warn``: a quoted field that holds a line end is warned of, by the line it opens on (legal CSV, but a stray
    quote in a column not read swallows the rows after it into one cell, without a word: a review)."""
    from embedrec.data.badlines import has_too_many_fields, too_many_fields

    spans: list = []
    if not has_too_many_fields(src, sep, encoding, every, spans):
        if warn and spans:
            line, n = spans[0]
            logging.getLogger("embedrec").warning(
                "%s:%d: a quoted field opens here ('\"') and holds line ends: its row spans %d lines (to line %d), "
                "read as one row; if that quote is stray, remove it (or quote the field whole)",
                label, line, n, line + n - 1)
        return
    rows = too_many_fields(src, sep, encoding, True)
    if rows:
        row, want, got = rows[0]
        e = pd.errors.ParserError(f"Error tokenizing data. C error: Expected {want} fields in line {row}, saw {got}")
        raise _parser_error(label, e, header_lines, io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src,
                            sep, encoding, missing, bad_lines=bad_lines, timed=timed)


def _checked_table(df, opener, kw, numeric, extra_dtype, label, header, header_lines, sep, encoding, missing,
                   trailing, read, times: tuple = ()) -> pd.DataFrame:
    """read_numeric_table's table once read: refused where its rows shift under the header, are none, or miss a
    value."""
    if header and not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1) \
            and trailing():
        df = read()
    if header and not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        # every row has more fields than the header names: pandas would take the extra leading field as the
        # index and shift every column by one
        n = len(df.columns) if kw.get("usecols") is None else len(header_names(opener(), **kw))
        raise DataError(f"{label}:{1 + header_lines}: expected {n} fields (as in the header), found "
                        f"{n + df.index.nlevels}; name every column in the header line, or remove the extra fields")
    if len(df) == 0:
        raise DataError(f"{label}: the file has no data rows; point data.source at a ratings file with rows")
    _refuse_booleans(df, opener, kw, numeric, label, header_lines)
    # a float or text column takes a row's missing field as NaN, silently (a text id would become 'nan')
    gaps = [] if missing == "drop" else [  # (first row missing it, column): the earliest line is named, whatever
        (int(np.flatnonzero(df[col].isna().to_numpy())[0]), col)  # its column (a review: line 60001's empty user
        for col, dtype in {**numeric, **(extra_dtype or {})}.items()  # was named before line 1001's empty item)
        if (dtype is str or dtype.startswith("float")) and col in df.columns and df[col].isna().any()]
    if gaps:
        row, col = min(gaps)
        dtype = {**numeric, **(extra_dtype or {})}[col]
        short = _short_row(label, opener(), sep, encoding, row + header_lines, missing, bool(times))
        if short:
            raise short  # its message names data.missing=drop already (a review: said twice)
        text = _field_text(opener, kw, col, row)
        # the rows like it (a missing field or an empty one; a word read as missing), counted and the first five
        # named (a review of session 50: one at a time, as a value that is no number was)
        like = _missing_like(opener, kw, col, np.flatnonzero(df[col].isna().to_numpy()), bool(text))
        lines, _ = rows_lines(opener(), sep, encoding, like[:LIKE_IT_SHOWN].tolist(), header_lines)
        n = len(like)
        those = "that line" if n < 2 else "those lines"
        if text:  # 'nan', 'NA', 'null': words pandas reads as missing (a first-hour review said 'empty')
            raise DataError(f"{label}:{lines[0]}: column '{col}' holds '{shorten(text, 20)}', which reads as a "
                            f"missing value, not {'a number' if dtype is not str else 'an id'}"
                            f"{lines_like_it(n, lines)}; give "
                            f"{'a number' if dtype is not str else 'the id'} or remove {those}"
                            f"{drop_advice(missing, timed=col in times)}")
        raise DataError(f"{label}:{lines[0]}: no value in column '{col}'"
                        f"{lines_like_it(n, lines, aside='a field is missing or empty')}; fill it in or remove "
                        f"{those}{drop_advice(missing, timed=col in times)}")
    return df


DROP_MISSING = "«--set data.missing=drop»"  # the way on from a missing value, in each message about one


def missing_dropped_said(where: str, n: int) -> str:
    """What ingest and update-users say of the ``n`` rows of ``where`` (a file) data.missing=drop dropped, before
    what each says of their pairs kept as seen."""
    return (f"{where}: dropped {n:,} row{'' if n == 1 else 's'} with a missing value (an empty user, movie, rating "
            "or timestamp: data.missing=drop)")


def _missing_like(opener, kw: dict, col: str, rows: np.ndarray, word: bool) -> np.ndarray:
    """Of ``rows``, the rows of column ``col`` that pandas read as missing, those missing as the first is: a word
    read as missing ('NA', 'null': ``word``), or no value (an empty field, or none); the column read again as
    written, on an error path only and only where more than one is missing (all of them where it cannot be)."""
    if len(rows) < 2:
        return rows
    try:
        text = pd.read_csv(opener(), **{**kw, "usecols": [col], "dtype": str, "keep_default_na": False,
                                        "na_values": None})[col]
        values = text.to_numpy(dtype=object)[rows]
    except Exception:  # noqa: BLE001 - a count's aid: every missing value is then counted
        return rows
    empty = np.array([v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip() for v in values],
                     dtype=bool)
    same = ~empty if word else empty
    same[0] = True  # the first, whose text was read apart
    return rows[same]


def _field_text(opener, kw: dict, col: str, row: int) -> str:
    """The text of data row ``row``'s field ``col`` as written (no missing-value words applied), "" when it
    cannot be read again; read on an error path only."""
    try:
        text = pd.read_csv(opener(), **{**kw, "dtype": str, "keep_default_na": False, "na_values": None,
                                        "nrows": row + 1})
        return str(text[col].iloc[row]).strip() if col in text.columns and len(text) > row else ""
    except Exception:
        return ""


def _refuse_booleans(df: pd.DataFrame, opener, kw: dict, numeric: dict[str, str], label: str,
                     header_lines: int) -> None:
    """pandas reads a column of nothing but true/false as booleans and casts them to 1 and 0, silently (a
    'liked: false' row would count as a rating). Such a column's first value is 0 or 1 and its first field a
    true/false word: only then is the first data row read again, as text."""
    cols = [c for c in numeric if c in df.columns and not pd.isna(df[c].iloc[0]) and df[c].iloc[0] in (0, 1)]
    if not cols:
        return
    try:
        first = pd.read_csv(opener(), **{**kw, "dtype": str, "keep_default_na": False, "nrows": 1})
    except Exception:
        return
    for col in cols:
        text = str(first[col].iloc[0]).strip() if col in first.columns and len(first) else ""
        if text.lower() in ("true", "false"):
            src = opener()
            packed = compressed(src)
            line = (None if packed else _row_line(src, kw["sep"], kw["encoding"], header_lines, skip_blank=True)) \
                or 1 + header_lines
            raise DataError(f"{label}:{line}: column '{col}' holds '{shorten(text, 20)}', a true/false value, not a "
                            f"number; write the values as numbers{INGEST_ZEROS}"
                            + (likes_advice(text) if numeric[col] == "float32" else ""))


# how ingest reads a rating column of true/false words: said after 'write the values as numbers', and the settings
# that read the words as they are (likes_advice); update-users, whose file is read into a trained scale, says its own
INGEST_ZEROS = " (e.g. 1 and 0: ingest then keeps the 0s apart as dislikes by itself)"
LIKES_AS_THEY_ARE = ", or read them as likes and dislikes as they are: "


def likes_advice(text: str) -> str:
    """A rating column of true/false words (``text``: its first, as written): the settings that read them as a like
    and a dislike as they stand (a first-hour review: refused without them, which data.event_weights reads)."""
    up = {"true": "false", "false": "true"}[text.lower()]
    other = up.upper() if text.isupper() else up.capitalize() if text[:1].isupper() else up
    like, dislike = (text, other) if text.lower() == "true" else (other, text)
    weights = "data.event_weights={" + f'"{like}": 1, "{dislike}": -1' + "}"
    cli = f"--set {sh_quote(weights)} --set data.repeats=latest"
    library = f"data.event_weights={{{like!r}: 1, {dislike!r}: -1}}, data.repeats='latest'"
    return f"{LIKES_AS_THEY_ARE}{marked(cli, library)}"


def _blank_numbers_missing(opener, kw: dict, numeric: dict[str, str], extra_dtype: dict | None):
    """data.missing=drop where a numeric field holds spaces alone (an empty field, which pandas will not take as
    one), or, in a table of text ids (whose read takes no word as missing), one of pandas' missing words
    (data.ids.NA_WORDS: a first-hour review's 'NA' rating was refused under the drop its message advised): the table
    read with those columns as text, each such field missing and the rest parsed as the column's type, every other
    column as the first read takes it; None where a field is no number (the diagnosis says which). (A review: a
    retry that skipped every field's leading spaces renamed columns ('a, b' headers: an internal error) and merged
    ' "10"' into 10.)"""
    try:
        text = pd.read_csv(opener(), dtype={**{c: str for c in numeric}, **(extra_dtype or {})}, **kw)
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError):
        return None
    decimal = kw.get("decimal", ".")
    words = NA_WORDS  # (pandas' own missing words: a text-id table turned them off, and a column read again as
    # text here has them as text: a review found a lone "-" blamed on the NA lines beside it)
    for col, dtype in numeric.items():
        if col not in text.columns:
            continue
        values = text[col].astype(object).where(text[col].notna(), None)
        stripped = values.map(lambda v: None if v is None or str(v).strip() in ("", *words) else str(v).strip())
        parsed = pd.to_numeric(stripped if decimal == "." else stripped.str.replace(decimal, ".", regex=False),
                               errors="coerce")
        if (parsed.isna() & stripped.notna()).any():
            return None
        if dtype.lower().startswith("int"):
            whole = parsed.dropna()
            if ((whole % 1) != 0).any() or (whole.abs() >= 2.0 ** 63).any():
                return None
            text[col] = parsed.astype("Int64")
        else:
            text[col] = parsed.astype(dtype)
    return text


def _trailing_separator(opener, kw: dict) -> bool | None:
    """Whether each row of a table with a header line has a field more than the header names, the last, and it
    is empty (or the row one short of it): a separator that ends every row ('1,2,3,'), which pandas reads by taking
    each row's first field as its index. Read as text once more: only where the first read failed or shifted.
    False where the rows have more fields than the header and those hold values; None where they do not."""
    args = {**kw, "dtype": str, "keep_default_na": False, "na_values": None}
    try:  # the first row first: a bad value's file of millions of rows is read once more only where it is shifted
        if kw.get("usecols") is not None:  # the columns read and the header's last, whose field is the extra one
            every = header_names(opener(), **kw)  # (all of them: none named, as read_numeric_table reads them)
            read = [*kw["usecols"], *([every[-1]] if every[-1] not in kw["usecols"] else [])]
            args["usecols"] = None if set(every) <= set(read) else read
        if isinstance(pd.read_csv(opener(), nrows=1, **args).index, pd.RangeIndex):
            return None
        text = pd.read_csv(opener(), **args)
    except Exception:  # noqa: BLE001 - the file's own reading says what is wrong with it
        return None
    if isinstance(text.index, pd.RangeIndex) or not len(text.columns):
        return None
    if text.index.nlevels != 1 or not text.iloc[:, -1].fillna("").astype(str).str.strip().eq("").all():
        return False  # more fields than the header, holding values: said as such, not as a column shifted
    return True


def _diagnose_numeric(opener, kw: dict, numeric: dict[str, str], label: str, header_lines: int,
                      missing: str | None = "error", unparsed: dict | None = None,
                      partial: bool = False, times: tuple = (), bad_lines: str | None = None) -> DataError:
    """The first value of a ``numeric`` column that is no number, named by its file:line (``missing='drop'``: an
    empty field is not one, as the rows holding one are dropped; a review: it was named, with advice to drop).
    ``unparsed``: column -> ``say(shown, what, those)`` for a caller that tells that column's value that is no
    number (or an integer column's beyond 64 bits, its ``what`` saying 'too large') its own way (read_numeric_table's): ``(what, like, fix)``, ``what`` the phrase after the column's name
    (given ``"'abc' is not an integer"``), ``like`` how the lines counted with it are like it (``'like it'``),
    ``fix`` the advice for ``those`` ('that line' or 'those lines'), given the column's every value as text too;
    a spreadsheet's decimal comma is advised over it. ``partial``: the table is a longer one's first lines: the
    lines like it are counted as of those read (textfiles.lines_like_it's ``of``). ``bad_lines`` 'error' (a
    ratings table's data.bad_lines): a value that is no number on fewer than half the column's lines names the
    setting that skips such lines."""
    try:
        text = pd.read_csv(opener(), dtype=str, **{**kw, "keep_default_na": False, "na_values": None})
    except Exception as e:  # a second failure: report what we can
        return _parser_error(label, e, header_lines, opener(), kw["sep"], kw["encoding"], missing,
                             timed=bool(times))
    decimal = kw.get("decimal", ".")
    # (first bad row, column, dtype, its values parsed, its bad rows, its missing words): the earliest line is named,
    found = []  # whatever its column (a review: a bad id on line 4 was named before a bad rating on 3)
    for col, dtype in numeric.items():
        if col not in text.columns:
            continue
        values = text[col]
        parsed = pd.to_numeric(values if decimal == "." else values.str.replace(decimal, ".", regex=False),
                               errors="coerce")
        bad = _bad_rows(values, parsed, dtype, missing)
        words = values.fillna("").str.strip().isin(NA_WORDS).to_numpy(dtype=bool)  # pandas' missing words: under
        bad &= ~words if missing == "drop" else np.ones(bad.size, bool)  # drop, rows dropped; else said after a
        if (bad & ~words).any():  # value that is no number at all (a review: a lone '-' was blamed on the NA lines)
            bad &= ~words
        if bad.any():
            found.append((int(np.flatnonzero(bad)[0]), col, dtype, parsed, bad, words))
    if not found and decimal != ".":  # '3.5' read with data.decimal=',' (pandas refuses it; parsed above, it passed)
        for col, dtype in numeric.items():
            dotted = text[col].str.contains(".", regex=False).to_numpy(dtype=bool) if col in text.columns and \
                not dtype.startswith("int") else None
            if dotted is not None and dotted.any():
                row = int(np.flatnonzero(dotted)[0])
                line = _row_line(opener(), kw["sep"], kw["encoding"], row + header_lines, skip_blank=True)
                return DataError(f"{label}:{line or row + 1 + header_lines}: column '{col}' "
                                 f"'{shorten(text[col].iloc[row], 60)}' has a '.' decimal point, but data.decimal is "
                                 f"'{decimal}'; leave data.decimal at '.' if the file writes 3.5, or fix that line")
    if not found:
        return DataError(f"{label}: a numeric column could not be parsed; "
                         + ("check the file's lines" if missing == "release" else "check data.separator and data.columns"))
    row, col, dtype, parsed, bad, words = min(found, key=lambda f: f[0])
    dtype = dtype.lower()  # (data.missing=drop's nullable Int64 is an integer column too)
    values = text[col]
    shown = shorten(values.iloc[row], 60)
    blank = str(values.iloc[row]).strip() == ""  # a field of spaces is empty too (a review: 'is not an integer')
    short = _short_row(label, opener(), kw["sep"], kw["encoding"], row + header_lines, missing, bool(times)) \
        if shown == "" else None
    if short:
        return short
    # the rows of the column with the same problem as this one, from the parse above (no other read of the file):
    # counted, and the first few named by their lines (a first-hour review: fixed one run at a time)
    empty = (values.fillna("").str.strip() == "").to_numpy(dtype=bool)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(parsed.to_numpy(dtype=float)) & (parsed.to_numpy(dtype=float) % 1 == 0)
    big = whole & dtype.startswith("int")
    if blank:
        shown = ""
        what = "is empty" if values.iloc[row] == "" else "is empty (spaces only)"
        like, no_number = bad & empty, False
    elif words[row]:  # 'NA', 'null' in an integer column (a timestamp, an id): a missing value, as a rating's is
        # said (a review: a 'NA' time was 'not an integer', to be converted with pandas' to_datetime)
        like = bad & words
        lines, _ = rows_lines(opener(), kw["sep"], kw["encoding"], np.flatnonzero(like)[:LIKE_IT_SHOWN].tolist(),
                              header_lines)
        n = int(like.sum())
        kind = "an integer" if dtype.startswith("int") else "a number"
        return DataError(f"{label}:{lines[0] if lines else row + 1 + header_lines}: column '{col}' holds "
                         f"'{shown}', which reads as a missing value, not {kind}"
                         f"{lines_like_it(n, lines, of=len(text) if partial else None)}; give {kind} or remove "
                         f"{'that line' if n < 2 else 'those lines'}{drop_advice(missing)}")
    elif dtype.startswith("int") and np.isfinite(parsed.iloc[row]) and parsed.iloc[row] % 1 == 0:
        what = f"'{shown}' is an integer too large for 64 bits"
        like, no_number = bad & big & ~empty, False
    elif str(values.iloc[row]).strip() == str(col) and header_lines:  # the header line again, mid-table (an ops
        # review: files joined with `cat`, each with its header, said "column 'rating' 'rating' is not a number")
        like = bad & (values.fillna("").str.strip() == str(col)).to_numpy(dtype=bool)
        lines, _ = rows_lines(opener(), kw["sep"], kw["encoding"], np.flatnonzero(like)[:LIKE_IT_SHOWN].tolist(),
                              header_lines)
        n = int(like.sum())
        skip = ", or skip such lines with «--set data.bad_lines=skip|data.bad_lines='skip'»" \
            if bad_lines == "error" else ""
        return DataError(f"{label}:{lines[0] if lines else row + 1 + header_lines}: the header line again (column "
                         f"'{col}' holds its own name){lines_like_it(n, lines, of=len(text) if partial else None)}: "
                         f"tables joined with their headers? keep the first file's header alone (tail -n +2 of "
                         f"each other file before joining){skip}")
    else:
        what = f"'{shown}' is not {'an integer' if dtype.startswith('int') else 'a number'}"
        like, no_number = bad & ~empty & ~big, True
    lines, _ = rows_lines(opener(), kw["sep"], kw["encoding"], np.flatnonzero(like)[:LIKE_IT_SHOWN].tolist(),
                          header_lines)
    n = int(like.sum())
    those = "that line" if n < 2 else "those lines"
    fix = f"fix or remove {those}" if shown != "" else \
        f"fill it in or remove {those}{drop_advice(missing, timed=col in times)}"
    alike = "like it"
    if decimal == "." and missing != "release" and re.fullmatch(r"[+-]?\d*,\d+", values.iloc[row].strip()) and \
            not dtype.startswith("int") and kw["sep"] != ",":  # 3,5: a spreadsheet's decimal comma
        fix = "if the file writes decimals with a comma (3,5), «--set data.decimal=,|set data.decimal=','»"
    elif (no_number or big[row]) and col in (unparsed or {}):  # a value that is no number (or an integer beyond 64
        what, alike, fix = unparsed[col](shown, what, those, values)  # bits: 'too large' in what), in its words
    if no_number and bad_lines == "error" and not partial and n * 2 <= int((~empty).sum()):  # a few: skipped if asked
        fix += ", or skip such lines with «--set data.bad_lines=skip|data.bad_lines='skip'»"  # (tables._skip_bad_values)
    return DataError(f"{label}:{lines[0] if lines else row + 1 + header_lines}: column '{col}' {what}"
                     f"{lines_like_it(n, lines, like=alike, of=len(text) if partial else None)}; {fix}")


def _bad_rows(values: pd.Series, parsed: pd.Series, dtype: str, missing: str | None) -> np.ndarray:
    """The rows of a numeric column's text ``values`` (``parsed``: them as numbers, NaN where none) that are no
    value of its ``dtype``: no number, an integer column's fraction or value beyond 64 bits, an empty field
    (unless ``missing`` is 'drop', whose rows are dropped)."""
    bad = np.array(parsed.isna().to_numpy(), dtype=bool)
    if dtype.lower().startswith("int"):  # (Int64 too: data.missing=drop's nullable integers; a review found
        with np.errstate(invalid="ignore"):  # '1.5' there said as "a numeric column could not be parsed")
            bad |= ~np.isfinite(parsed.to_numpy(dtype=float)) | (parsed.to_numpy(dtype=float) % 1 != 0)
            bad |= np.abs(parsed.to_numpy(dtype=float)) >= 2.0 ** 63  # beyond int64
    if missing == "drop":
        bad &= ~(values.isna() | (values.fillna("").str.strip() == "")).to_numpy(dtype=bool)
    return bad


def scale_span(low: float, high: float) -> str:
    """'1-5', or '-3 to 5' where the scale starts below 0 (a first-hour review: 'the rating scale is taken as
    -3-5')."""
    return f"{low:g}-{high:g}" if low >= 0 else f"{low:g} to {high:g}"


def check_scale(raw: RawData, scale: tuple[float, float], drop: bool = False) -> str | None:
    """Refuse ratings outside ``scale``: the first named by its file:line, the others counted and the first five
    named (textfiles.lines_like_it; a review of session 50: one at a time, as a column's bad values were).

    ``drop`` (data.out_of_scale=drop): those rows are dropped from ``raw.ratings`` instead (counted in
    ``raw.scale_dropped``, their pairs kept as seen: ``raw.seen['out_of_scale']``), and the message that would
    have refused them is returned for a warning (None where none is outside); every row outside is still refused.
    A first-hour review: one 7 among 1-5 ratings widened the scale to 1-7, and data.rating_scale=[1,5], the only
    fix offered, refused the file."""
    r = raw.ratings["rating"].to_numpy()
    bad = ~((r >= scale[0]) & (r <= scale[1]))
    if not bad.any():
        return None
    rows = np.flatnonzero(bad)
    row, n = int(rows[0]), len(rows)
    label, lines = raw.where_lines(rows[:LIKE_IT_SHOWN].tolist())
    like = lines_like_it(n, lines, "row" if raw.layout == "parquet" else "line")
    where = f"{label}: row {lines[0]}" if raw.layout == "parquet" and not raw.parts else f"{label}:{lines[0]}"
    said = f"{where}: rating {r[row]:g} is outside the scale {scale_span(*scale)}{like}"
    those = "that row" if n == 1 else "those rows"
    if drop and bad.all():
        raise DataError(f"{said}; every rating is outside it, so data.out_of_scale=drop leaves none; set "
                        "data.rating_scale to the real scale")
    if not drop:
        raise DataError(f"{said}; fix {those}, drop {'it' if n == 1 else 'them'} with "
                        "«--set data.out_of_scale=drop|data.out_of_scale='drop'», or set data.rating_scale to the "
                        "real scale")
    raw.seen["out_of_scale"] = raw.ratings.loc[bad, ["user_id", "movie_id"]].reset_index(drop=True)
    # the rows read that are kept, for a later message's line (RawData.line), as data.missing=drop keeps them
    raw.kept = (np.arange(r.size) if raw.kept is None else raw.kept)[~bad]
    raw.ratings = raw.ratings[~bad].reset_index(drop=True)
    raw.scale_dropped = n
    return (f"{said}; dropped {'it' if n == 1 else f'the {n:,} of them'} (data.out_of_scale=drop): "
            f"{'its (user, movie) pair' if n == 1 else 'their (user, movie) pairs'} kept as seen, never recommended "
            "back, not trained on")


def _read_lines(path: Path, encodings: tuple[str, ...]) -> list[str]:
    """A MovieLens text file's lines in the first of ``encodings`` that decodes it, past a UTF-8 byte-order mark
    (a red team: u.item's first id read '\ufeff1'); UTF-16 or UTF-32 is refused (refuse_wide_text)."""
    data = path.read_bytes()
    refuse_wide_text(path, data[:4])
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for enc in encodings:
        try:
            return data.decode(enc).splitlines()
        except UnicodeDecodeError as e:
            last = e
    raise _decode_error(str(path), last, encodings[-1], data)


def refuse_wide_text(path, head: bytes) -> None:
    """A MovieLens release's file (latin-1 or UTF-8 text) that starts with a UTF-16 or UTF-32 byte-order mark
    (``head``: its first 4 bytes), refused as such: read byte by byte its NULs made 'movie id 'ÿþ1\x00' is not an
    integer' (a red team)."""
    wide = _bom_encoding(head, head)
    if wide:
        raise DataError(f"{path}: {wide.upper()} text (its byte-order mark says so), where MovieLens files are latin-1 "
                        f"or UTF-8 text; convert it to UTF-8 (iconv -f {wide.upper()} -t UTF-8 {path.name} > "
                        f"{path.name}.new, then put that in its place)")


# ------------------------------------------------------------------------------------------ header checks


def parquet_twice_said(name: str) -> str:
    """What a message says of a Parquet file naming column ``name`` twice, after its name."""
    return (f"the file names column {name!r} twice; rename one of them (pandas: df.columns = [...]) and write the "
            "file again")


def parquet_named_twice(src) -> str | None:
    """:func:`parquet_twice_said` of a Parquet file (a path or a file) whose schema names a column twice, which
    pyarrow refuses to read as "Multiple matches for FieldRef.Name(title) in ..." (a red team: a ratings file's and
    a movies file's alike); None where none is, or the schema cannot be read."""
    import collections

    try:
        import pyarrow.parquet as pq

        if hasattr(src, "seek"):
            src.seek(0)
        names = pq.read_schema(src).names
    except Exception:  # noqa: BLE001 - the caller's own message says what is wrong with the file
        return None
    twice = next((n for n, c in collections.Counter(names).items() if c > 1), None)
    return None if twice is None else parquet_twice_said(twice)


def _refuse_repeated_names(src, sep: str, encoding: str, label: str) -> None:
    """A header naming one column twice (pandas would rename the second 'user_id.1' and read the first)."""
    import csv

    try:
        if isinstance(src, (bytes, bytearray)):
            line = src[:1 << 16].decode(encoding, errors="replace").splitlines()[:1]
        else:
            with open(src, encoding=encoding, errors="replace", newline="") as fh:
                line = [fh.readline()]
    except OSError:
        return
    if not line:
        return
    names = next(csv.reader(line, delimiter=sep), []) if len(sep) == 1 else line[0].rstrip("\r\n").split(sep)
    names = [n.strip().lstrip("\ufeff") for n in names]
    seen = set()
    for n in names:
        if n and n in seen:
            raise DataError(f"{label}:1: the header names column '{shorten(n, 60)}' twice; rename or remove one of "
                            "them")
        seen.add(n)
