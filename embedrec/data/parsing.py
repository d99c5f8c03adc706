"""The parsing core the readers share: :class:`RawData`, genre/title normalisation and numeric tables read
with pandas' C engine whose problems become one :class:`DataError` naming the file and line (the file layer
under it, streams, decoding, compression, line numbers: ``textfiles.py``).
"""

from __future__ import annotations

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
from embedrec.config_values import plain_name
from embedrec.data.ids import is_finite_number_text
from embedrec.data.textfiles import (
    HEAD,
    LIKE_IT_SHOWN,
    SNIFFED,
    _bom_encoding,
    _decode_error,
    _label,
    _parser_error,
    _row_line,
    _row_lines,
    _short_row,
    compressed,
    data_line,
    data_lines,
    decompressed,
    drop_advice,
    head_line,
    is_stream,
    likely_separator,
    lines_like_it,
    read_all,
    read_denied,
    refuse_binary_file,
    refuse_binary_head,
    refuse_nul,
    warn_utf8_lines,
)
from embedrec.errors import DataError, first_line, set_hint, shorten

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


class WarnedNote(str):
    """A :attr:`RawData.notes` line said as a warning, not as information, so that -q keeps it: what was read
    leaves out something the file holds (a column of dates read as nothing, its times then none)."""


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
            at = max(i for i, (_, start) in enumerate(self.parts) if start <= row)
            label, start = self.parts[at]
            if self.part_line is not None:
                return f"{label}:{self.part_line(at, row - start)}"
            return f"{label}:{row - start + self.origin[1]}"
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

    def where_lines(self, rows: list[int]) -> tuple[str, list[int]]:
        """(the file, the 1-based lines) of ratings rows ``rows`` (0-based, ascending) as :meth:`where` names one,
        in one read of the file, for a message naming the first and the lines like it (textfiles.lines_like_it);
        where several files are read as one (parts), the rows in the first one's file alone."""
        if self.parts:
            at = max(i for i, (_, start) in enumerate(self.parts) if start <= rows[0])
            label, start = self.parts[at]
            stop = self.parts[at + 1][1] if at + 1 < len(self.parts) else np.inf
            if self.part_line is not None:
                return label, [self.part_line(at, r - start) for r in rows if r < stop]
            return label, [r - start + self.origin[1] for r in rows if r < stop]
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
                       partial: bool = False, tick=None) -> pd.DataFrame:
    """Read a delimited table whose ``numeric`` columns (name -> dtype) must parse as numbers.

    Fast path: pandas' C engine with narrow dtypes. On failure the file is re-read as text to report the
    first offending line (file:line), so good files pay nothing for the diagnostics. A file's first MiB is
    checked for binary data first (:func:`textfiles.refuse_binary_file`) unless the caller ``checked`` it.
    ``missing='drop'`` (data.missing): an empty field (or a row short of it) is left missing, integer columns as
    pandas' nullable Int64, for the caller to drop the row; else it is refused naming its line (advising
    data.missing=drop unless ``missing`` is textfiles.RELEASE: a release's own file, which it does not apply to).
    ``unparsed``: column -> how a value of it that is no number is said (:func:`_diagnose_numeric`).
    ``partial``: ``src`` is a longer table's first lines only, so a value that is no number has its lines like it
    counted as of those (:func:`_diagnose_numeric`); other errors count as if it were whole, for the caller to
    discard (tables' early look at the ids).
    ``tick(n)``: a bar's update, called with the bytes the parse takes in (bars.counting_reader: the file is then
    handed to pandas open, read in one thread as it is counted); each read of the table calls its ``restart()``
    first, where it has one (bars.Restartable), so a table read again is counted from 0 again.
    """
    label = label or _label(src)
    if not checked:  # a layout's file (u.data, ratings.dat, .inter: a review); the generic reader checked its own
        refuse_binary_file(src, label, (sep,), encoding)
    refuse_nul(src, label, encoding)  # pandas 2 would end the field at it, silently (session 36)
    header_lines = 1 if header else 0
    kw = dict(sep=sep, header=0 if header else None, names=names, usecols=usecols, encoding=encoding,
              engine="c", skip_blank_lines=True, decimal=decimal)
    if header and usecols is not None:  # the columns named, where they leave some out (a red team: a header of
        # 120,000 columns, every one read, took 9.3 GB); pandas reads every row's fields alike either way, but
        # with every column named it takes no row's extra leading field for its index: read as if none were named
        # (so a row's extra fields are refused, _checked_table)
        try:
            every = header_names(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src, **kw)
        except Exception:  # noqa: BLE001 - the read below says what is wrong with the file
            every = []
        if set(every) <= set(usecols):
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
            raise DataError(f"{label}: file not found; check data.source") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{label}: the file is empty; point data.source at a ratings file with rows") from None
        except EOFError as e:  # a compressed file cut short
            raise DataError(f"{label}: the input ended early ({first_line(e)}): a truncated compressed file? "
                            "download or copy it again") from None
        except pd.errors.ParserError as e:
            raise _parser_error(label, e, header_lines, opener(), sep, encoding, missing) from None
        except (ValueError, TypeError, OverflowError) as e:
            if "Usecols do not match" in str(e) or "not in list" in str(e):
                raise DataError(f"{label}: missing columns ({e}); set data.columns.* to the file's column "
                                "names") from None
            if trailing():
                return read()
            df = _blank_numbers_missing(opener, kw, numeric, extra_dtype) if missing == "drop" else None
            if df is None:
                raise _diagnose_numeric(opener, kw, numeric, label, header_lines, missing, unparsed,
                                        partial) from None
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
            logging.getLogger("embedrec").info("%s: every row ends with a separator the header line does not have: "
                                               "read without that empty last field", label)
        return bool(found)

    with warnings.catch_warnings():  # index_col=False's loss of the extra fields, found empty (trailing)
        warnings.filterwarnings("ignore", "Length of header or names", pd.errors.ParserWarning)
        return _checked_table(read(), opener, kw, numeric, extra_dtype, label, header, header_lines, sep, encoding,
                              missing, trailing, read)


def _checked_table(df, opener, kw, numeric, extra_dtype, label, header, header_lines, sep, encoding, missing,
                   trailing, read) -> pd.DataFrame:
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
        short = _short_row(label, opener(), sep, encoding, row + header_lines, missing)
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
                            f"{'a number' if dtype is not str else 'the id'} or remove {those}{drop_advice(missing)}")
        raise DataError(f"{label}:{lines[0]}: no value in column '{col}'"
                        f"{lines_like_it(n, lines, aside='a field is missing or empty')}; fill it in or remove "
                        f"{those}{drop_advice(missing)}")
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
                            "number; write the values as numbers (e.g. 1 and 0: ingest then keeps the 0s apart as "
                            "dislikes by itself)")


def _blank_numbers_missing(opener, kw: dict, numeric: dict[str, str], extra_dtype: dict | None):
    """data.missing=drop where a numeric field holds spaces alone (an empty field, which pandas will not take as
    one): the table read with those columns as text, each blank field missing and the rest parsed as the column's
    type, every other column as the first read takes it; None where a field is no number (the diagnosis says
    which). (A review: a retry that skipped every field's leading spaces renamed columns ('a, b' headers: an
    internal error) and merged ' "10"' into 10.)"""
    try:
        text = pd.read_csv(opener(), dtype={**{c: str for c in numeric}, **(extra_dtype or {})}, **kw)
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError):
        return None
    decimal = kw.get("decimal", ".")
    for col, dtype in numeric.items():
        if col not in text.columns:
            continue
        values = text[col].astype(object).where(text[col].notna(), None)
        stripped = values.map(lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
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
                      partial: bool = False) -> DataError:
    """The first value of a ``numeric`` column that is no number, named by its file:line (``missing='drop'``: an
    empty field is not one, as the rows holding one are dropped; a review: it was named, with advice to drop).
    ``unparsed``: column -> ``say(shown, what, those)`` for a caller that tells that column's value that is no
    number (or an integer column's beyond 64 bits, its ``what`` saying 'too large') its own way (read_numeric_table's): ``(what, like, fix)``, ``what`` the phrase after the column's name
    (given ``"'abc' is not an integer"``), ``like`` how the lines counted with it are like it (``'like it'``),
    ``fix`` the advice for ``those`` ('that line' or 'those lines'), given the column's every value as text too;
    a spreadsheet's decimal comma is advised over it. ``partial``: the table is a longer one's first lines: the
    lines like it are counted as of those read (textfiles.lines_like_it's ``of``)."""
    try:
        text = pd.read_csv(opener(), dtype=str, **{**kw, "keep_default_na": False, "na_values": None})
    except Exception as e:  # a second failure: report what we can
        return _parser_error(label, e, header_lines, opener(), kw["sep"], kw["encoding"], missing)
    decimal = kw.get("decimal", ".")
    found = []  # (first bad row, column, dtype, its values parsed, its bad rows): the earliest line is named, whatever
    for col, dtype in numeric.items():  # its column (a review: a bad id on line 4 was named before a bad rating on 3)
        if col not in text.columns:
            continue
        values = text[col]
        parsed = pd.to_numeric(values if decimal == "." else values.str.replace(decimal, ".", regex=False),
                               errors="coerce")
        bad = _bad_rows(values, parsed, dtype, missing)
        if bad.any():
            found.append((int(np.flatnonzero(bad)[0]), col, dtype, parsed, bad))
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
    row, col, dtype, parsed, bad = min(found, key=lambda f: f[0])
    dtype = dtype.lower()  # (data.missing=drop's nullable Int64 is an integer column too)
    values = text[col]
    shown = shorten(values.iloc[row], 60)
    blank = str(values.iloc[row]).strip() == ""  # a field of spaces is empty too (a review: 'is not an integer')
    short = _short_row(label, opener(), kw["sep"], kw["encoding"], row + header_lines, missing) if shown == "" \
        else None
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
    elif dtype.startswith("int") and np.isfinite(parsed.iloc[row]) and parsed.iloc[row] % 1 == 0:
        what = f"'{shown}' is an integer too large for 64 bits"
        like, no_number = bad & big & ~empty, False
    else:
        what = f"'{shown}' is not {'an integer' if dtype.startswith('int') else 'a number'}"
        like, no_number = bad & ~empty & ~big, True
    lines, _ = rows_lines(opener(), kw["sep"], kw["encoding"], np.flatnonzero(like)[:LIKE_IT_SHOWN].tolist(),
                          header_lines)
    n = int(like.sum())
    those = "that line" if n < 2 else "those lines"
    fix = f"fix or remove {those}" if shown != "" else f"fill it in or remove {those}{drop_advice(missing)}"
    alike = "like it"
    if decimal == "." and missing != "release" and re.fullmatch(r"[+-]?\d*,\d+", values.iloc[row].strip()) and \
            not dtype.startswith("int") and kw["sep"] != ",":  # 3,5: a spreadsheet's decimal comma
        fix = "if the file writes decimals with a comma (3,5), «--set data.decimal=,|set data.decimal=','»"
    elif (no_number or big[row]) and col in (unparsed or {}):  # a value that is no number (or an integer beyond 64
        what, alike, fix = unparsed[col](shown, what, those, values)  # bits: 'too large' in what), in its words
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




# A movies file's id column under the field's other names, whatever data.columns.movie says; then the ratings
# file's bare names for its movie column (columns.DEFAULT_ALIASES' second tier: LensKit's and Surprise's 'item'), tried
# after them and only beside a title column, as without one a 'movie' column may hold the titles
MOVIE_ID_NAMES = ("movie_id", "itemId", "iid")
MOVIE_ID_BARE = ("movie", "item")


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
                   *MOVIE_ID_NAMES), MOVIE_ID_BARE):
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
    bare = f"; {' and '.join(tiers[2])} beside a title column" if tiers[2] else ""
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
            tries = [{plain_name(n) for n in tier} for tier in tiers[:2 + titled]]
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
        raise DataError(f"{label}: movies file not found; check data.movies") from None
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
    if missing:  # every configured column the file lacks, genres too (a first-hour review: it came up a run later)
        no_genres = bool(genres_col) and genres_col not in df.columns
        keys = [k for k, gone in (("data.columns.title", title_col in missing), ("data.columns.genres", no_genres))
                if gone]
        keys_fix = "set " + " and ".join(keys) + (" (a file without genres may leave data.columns.genres as it is: "
                                                  "its movies then have none)" if no_genres else "") if keys else ""
        fix = keys_fix if id_col not in missing else (
            f"its id column must be named {_id_names_said(id_col, ratings_movie)}; data.columns.movie names the "
            "ratings' column too): rename it in the movies file" + (f", and {keys_fix}" if keys else ""))
        other = None if parquet else _other_separator(df.columns, sep)
        if other is not None:  # the columns are there, run together by another separator (a review: 'rename it')
            said = {"\t": "tabs", " ": "spaces"}.get(other, repr(other))
            fix = f"its header holds {said}: if they separate its fields, {_separator_fix(other, sep_key)}"
        raise DataError(f"{label}: missing column(s) {', '.join(missing + [genres_col] * no_genres)} (found: "
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


YEAR_COLUMNS = ("year", "release_year", "releaseyear")  # a movies table's year column, any case


def _year_column(df: pd.DataFrame, label: str, where, notes: list | None, taken) -> list | None:
    """The years of a movies table's 'year' column (YEAR_COLUMNS), None where it has none: a first-hour review
    found it dropped, every movie without a year, while --year-min then said the file gave none. A year the column
    gives wins over the title's '(1995)'; an empty cell or a null marker (YEAR_NULLS: R's NA, IMDb's \\N) gives
    none, and the title's year then stands. A cell is a whole number from 1 to 9999 in ASCII digits ('1995',
    '1995.0' as pandas writes a float column), a date that starts with one ('1995-07-14'), or a date of a Parquet
    date column; anything else ('1e3', '+1995', '1995-1998') is refused with its line (``where(row)``)."""
    col = next((c for c in df.columns if c not in taken and str(c).strip().lower() in YEAR_COLUMNS), None)
    if col is None:
        return None
    years: list = []
    for i, v in enumerate(df[col].tolist()):
        if hasattr(v, "year") and not isinstance(v, str) and not _missing(v):  # a Parquet date or timestamp
            years.append(int(v.year))
            continue
        text = "" if _missing(v) else str(v).strip()
        if not text or text.lower() in YEAR_NULLS:
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
_YEAR_DATE = re.compile(r"([0-9]{4})-(?:0?[1-9]|1[0-2])(?:-(?:0?[1-9]|[12][0-9]|3[01]))?(?:[ T][0-9:.+Z-]*)?")


def _warn_genre_separator(cells: pd.Series, sep: str, label: str) -> None:
    """One warning where no genres cell holds data.genre_separator but many hold another separator: each cell is
    then one genre ('Drama, Comedy'), which a first-hour review found stored so in silence."""
    text = [g for g in cells.tolist() if isinstance(g, str) and g.strip()]
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
    return str(g).split(sep) if str(g) else []


_PLAIN_INT = r"-?(?:0|[1-9][0-9]*)"  # an integer written as str(int) writes it: the only text read as one


def auto_ids(values: pd.Series) -> pd.Series:
    """data.id_type=auto: an id column as int64 where every id, spaces aside, is an integer written as
    ``str(int(s)) == s`` writes it and fits 64 bits; else the ids as text, exactly as written ('0196', '007', '+5',
    '1e3' and '7.0' stay themselves and never merge with 196, 7, 5, 1000). Integer columns pass unchanged."""
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("int64")
    if pd.api.types.is_float_dtype(values):  # a Parquet column of whole numbers (pandas writes int + NaN as float)
        v = values.to_numpy()
        if len(v) and np.isfinite(v).all() and (v % 1 == 0).all() and np.abs(v).max() < 2.0 ** 63:
            return values.astype("int64")
    text = values.astype(str).str.strip()
    if len(text) and text.str.fullmatch(_PLAIN_INT).all():
        try:
            return text.astype("int64")
        except (OverflowError, ValueError):  # beyond 64 bits: text
            pass
    return text


def ids_like(values: pd.Series, like: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """``values`` (the ids of rows data.missing=drop dropped) as ``like`` (the kept rows' ids of that column, typed
    as the column is) holds ids, and which of them are one: text, spaces around it stripped, where ``like`` is
    text; where it is integers, each value :func:`auto_ids` reads as one (an integer, a whole float within 64 bits,
    a plain integer's text), the others (a word, '007', '7.0') False: no id of an integer column."""
    if not pd.api.types.is_integer_dtype(like):
        return values.astype(str).str.strip(), np.ones(len(values), dtype=bool)
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("int64"), np.ones(len(values), dtype=bool)
    if pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(v) & (v % 1 == 0) & (np.abs(v) < 2.0 ** 63)
        return pd.Series(np.where(ok, v, 0).astype(np.int64), index=values.index), ok
    text = values.astype(str).str.strip()
    ok = text.str.fullmatch(_PLAIN_INT).to_numpy(dtype=bool, copy=True)
    ints = [int(t) if k else 0 for t, k in zip(text.tolist(), ok.tolist())]
    ok &= np.array([-2 ** 63 <= i < 2 ** 63 for i in ints], dtype=bool)  # (beyond 64 bits: no int64 id)
    return pd.Series(np.array([i if k else 0 for i, k in zip(ints, ok.tolist())], dtype=np.int64),
                     index=values.index), ok


def same_id_type(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Two id columns that must join (the ratings' movies and a movies file's ids) under data.id_type=auto: both
    integers, or both text where either is (an integer column's text is then exactly as written: plain)."""
    ints = [pd.api.types.is_integer_dtype(x) for x in (a, b)]
    if ints[0] == ints[1]:
        return a, b
    return (a.astype(str) if ints[0] else a), (b.astype(str) if ints[1] else b)


_SCAN_CHUNK = 4 << 20  # bytes a time: a chunk of separators alone needs about 20 times it (16 MiB: 300 MB)


def ids_may_change(src, sep: str, encoding: str) -> bool:
    """Whether a text table may hold an id that reading it as an integer would change: a field starting (spaces
    aside) with a zero then a digit ('0196'), '+' or '-0'. A byte scan (about 130 MB/s on a 2-core machine, half
    of what reading the table costs) that never says no where such a field is; a yes only costs the exact reading
    of the ids as text. '7.0', '1e3', words and missing values are left to the integer reading itself, which does
    not read them as int64."""
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return True
    if len(sep) != 1 or "16" in name or "32" in name or not sep.isascii():  # not ASCII-compatible: no byte scan
        return True
    # a field's start (a line's, after the separator, a quote or a CR), spaces, then '0' and a digit, '+' or '-0'
    # (a date's '2020-01-05' or a zone's '+01:00' inside a field does not count): numpy over each chunk, the
    # regular expression only for a chunk where a field starts with a space
    starts = b"\n\r\"" + (b"" if sep.encode() in b"\n\r\"" else sep.encode())
    field = re.compile(rb"[" + re.escape(starts) + rb"][ \t]*(?:0[0-9]|\+|-0)")
    codes = np.frombuffer(starts, np.uint8)
    prev = b"\n"  # a file without a header: its first field starts the first line
    with (contextlib.nullcontext(io.BytesIO(src)) if isinstance(src, (bytes, bytearray)) else open(src, "rb")) as fh:
        while True:
            chunk = fh.read(_SCAN_CHUNK)
            if not chunk:
                return False
            chunk, prev = prev + chunk + b"\n", chunk[-64:]  # a field cut by the chunk's end: its start again
            b = np.frombuffer(chunk, np.uint8)
            at = b[:-2] == codes[0]
            for c in codes[1:]:
                at |= b[:-2] == c
            at = np.flatnonzero(at)
            one, two = b[at + 1], b[at + 2]
            if ((one == 43) | (one == 45) & (two == 48) | (one == 48) & (two >= 48) & (two <= 57)).any():
                return True
            if ((one == 32) | (one == 9)).any() and field.search(chunk):
                return True


def _ids(values: pd.Series, id_type: str, label: str, col: str, first_line: int,
         floats: bool = False) -> pd.Series:
    """An id column of a movies file or RecBole's atomic files: text without the spaces around it
    (data.id_type=str), integers where every id is written as one and else text (auto: :func:`auto_ids`), or
    integers written plainly ('007', '+7' or '7.0' refused: they would merge with 7). ``floats``: a column whose
    every id is written '1.0' is those integers (:func:`float_written_ids`), as a ratings table's is (a movies
    file's; RecBole's atomic files keep theirs as they were, their .inter ids read alike)."""
    if id_type == "str":
        return values.astype(str).str.strip()
    whole = float_written_ids(values) if floats else None  # every id written '1.0', as pandas writes them
    if whole is not None:
        return whole
    if id_type == "auto":
        return auto_ids(values)
    parsed = pd.to_numeric(values, errors="coerce")
    text = values.astype(str).str.strip()  # '007' or '+7' would be 7, as the ratings reader refuses them
    with np.errstate(invalid="ignore"):
        bad = np.array(parsed.isna().to_numpy(), dtype=bool) | (parsed.to_numpy(dtype=float) % 1 != 0)
    if not pd.api.types.is_numeric_dtype(values):
        bad |= ~text.str.fullmatch(r"-?(0|[1-9][0-9]*)").to_numpy(dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{label}:{row + first_line}: id '{shorten(values.iloc[row], 60)}' in column '{col}' is not "
                        "written as a plain integer (integer ids would misread or merge it: '007' is 7); fix that "
                        "row, or set data.id_type=auto for text ids")
    return parsed.astype("int64")


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


# how an integer id is written in text, in a CSV and a Parquet text column alike: plainly (spaces around it
# allowed), not with a leading zero ('00196' would become 196 and could merge with '196') or as '+7', '7.0', '7e0'
_SP = r"[ \t\n\r\f\v]"  # ASCII space and digits written out, not re.ASCII: pandas 3.0's str.match refuses a compiled
PADDED_ID = re.compile(rf"^{_SP}*[+-]?0[0-9]")  # pattern with flags other than its own (an H200 run, session 38);
OTHER_ID = re.compile(rf"^{_SP}*\+|^{_SP}*[+-]?[0-9]*\.[0-9]*{_SP}*$|^{_SP}*[+-]?[0-9]+[eE]")  # '٧' is no 7 (a review)
PLAIN_ID = re.compile(rf"^{_SP}*-?[0-9]+{_SP}*$")


# an integer id as pandas writes a float column ('1.0': an integer column that met a missing value, written by to_csv)
FLOAT_ID = rf"{_SP}*-?(?:0|[1-9][0-9]*)\.0{_SP}*"


def float_written_ids(text: pd.Series) -> pd.Series | None:
    """An id column read as text (missing values aside) as int64, where every id given in it is an integer written
    as pandas writes a whole float ('1.0', '-3.0') and fits 64 bits, as a Parquet float column's whole ids are read
    (a first-hour review: such a CSV's ids were refused as 'not written as a plain integer', and data.id_type=auto,
    the advice, kept '1.0' as text, so `recommend --user 1` found no user). Read by its text, exactly (no float's
    rounding past 2**53). None where any id is written otherwise ('7' beside '7.0' would merge; '7.5'), or none is
    given: the column is then read as ever."""
    given = text.dropna().astype(str)
    if not len(given) or not given.str.fullmatch(FLOAT_ID).all():
        return None
    try:
        return text.astype(str).str.strip().str[:-2].astype("int64")
    except (OverflowError, ValueError):  # beyond 64 bits (or a missing value, for the caller to drop first)
        return None


def odd_float_ids(text: pd.Series) -> np.ndarray | None:
    """Of an id column read as text (``text``; missing values, NaN, and empty ones aside), where most ids given are
    written as pandas writes a whole float ('1.0'), the positions of those given that are not such an id within 64
    bits ('7.5', '1e3', 'nan', 'inf', a plain '7', an id of 31 digits): what keeps the column from reading as
    integers (:func:`float_written_ids`), for a message to name instead of the first '0.0' (a red team); None where
    most are not so written."""
    given = (text.notna() & text.astype(str).str.strip().ne("")).to_numpy(dtype=bool)
    shown = text.astype(str)
    floaty = shown.str.fullmatch(FLOAT_ID).to_numpy(dtype=bool) & given
    if 2 * int(np.count_nonzero(floaty)) <= int(np.count_nonzero(given)):
        return None
    long = np.flatnonzero(floaty & (shown.str.strip().str.len() > 20).to_numpy(dtype=bool))  # '-' and 18 digits '.0'
    info = np.iinfo(np.int64)
    for at in long.tolist():  # (rare: each read alone)
        body = shown.iloc[at].strip()[:-2]
        if len(body.lstrip("-")) > 19 or not info.min <= int(body) <= info.max:
            floaty[at] = False
    return np.flatnonzero(given & ~floaty)


def odd_float_id_said(value: str) -> str:
    """What is wrong with an id :func:`odd_float_ids` found, after "id 'X' "."""
    v = value.strip()
    if re.fullmatch(FLOAT_ID, v):
        return "is beyond 64-bit integers"
    if PLAIN_ID.match(v):
        return "is written without '.0'"
    return "is a whole number written otherwise" if is_finite_number_text(v) and float(v).is_integer() else \
        "is not a whole number"


def refuse_odd_float_ids(text: pd.Series, odd: np.ndarray, col: str, src, sep: str, encoding: str, label: str,
                         names: list[str] | None, of: int | None = None) -> None:
    """Refuse the ids ``odd`` (:func:`odd_float_ids` of ``text``, column ``col``) that keep a column of ids written
    '1.0' from reading as integers: the first named by its line, its value and what is wrong with it, up to
    LIKE_IT_SHOWN of them counted and named (``of``: the table's first rows alone were read), and the ways on:
    fix them (the others are then read as integers) or read every id as text. ``names``: a headerless table's
    columns."""
    ats = odd[:LIKE_IT_SHOWN].tolist()
    header = 1 if names is None else 0
    lines = data_lines(src, sep, encoding, header, header + 1, ats)
    n = len(odd)
    value = str(text.iloc[ats[0]])
    example = str(text.iloc[int(text.astype(str).str.fullmatch(FLOAT_ID).to_numpy(dtype=bool).argmax())]).strip()
    like = lines_like_it(n, lines, of=of)
    those = "that line" if n == 1 else "those lines"
    raise DataError(f"{label}:{lines[0]}: column '{col}' id {shorten(repr(value), 40)} {odd_float_id_said(value)}, "
                    f"where the column's other ids are whole numbers written with '.0' (e.g. '{shorten(example, 24)}'), "
                    f"which are read as integers where every id is so written{like}; fix {those}, or "
                    f"{set_hint('data.id_type', 'str')} to read every id as text")


def plain_integer_id(text: str) -> bool:
    """Whether ``text`` is an integer id written plainly (PLAIN_ID, not PADDED_ID)."""
    return bool(PLAIN_ID.match(text)) and not PADDED_ID.match(text)


def _refuse_zero_padded(src, sep: str, encoding: str, cols: list[str], label: str, rows: int = 100_000,
                        names: list[str] | None = None,
                        fix: str = "set data.id_type=auto to keep such ids as written", gaps_fail: bool = True,
                        float_ids: bool = False) -> None:
    """Integer ids lose leading zeros ('00196' would become 196 and could merge with '196'), and '+7' or '7.0'
    would read as 7: refuse them, checking the first ``rows`` rows (how ids are written is a property of a whole
    file; reading every id as text would double the parse). ``names``: the columns of a file without a header;
    ``fix``: the advice (MovieLens layouts read integer ids only); ``gaps_fail``: whether the main reader refuses
    an empty id (data.missing: error), so that an earlier one is left to it to name. ``float_ids``: a column whose
    ids are most of them written '1.0' is read as integers where every one is (a ratings table's: tables.py), so
    there the first id written otherwise is named (:func:`odd_float_ids`, :func:`refuse_odd_float_ids`), not the
    first '0.0'; such a column with none in the rows read is left to the whole read."""

    try:
        head = pd.read_csv(io.BytesIO(src) if isinstance(src, bytes) else src, sep=sep, usecols=cols, dtype=str,
                           nrows=rows, encoding=encoding, engine="c" if len(sep) == 1 else "python",
                           **({} if names is None else {"header": None, "names": names}))
    except Exception:
        return  # the main reader reports what is wrong with the file
    padded, other, plain = PADDED_ID, OTHER_ID, PLAIN_ID
    first = None  # (data row, column, what) of the first id refused here, over every column and pattern
    odd = {}  # the columns of ids most of them written '1.0' (float_ids): the rows of those written otherwise
    for c in cols:
        found = odd_float_ids(head[c]) if float_ids else None
        if found is not None:
            odd[c] = found
            if len(found) and (first is None or int(found[0]) < first[0]):
                first = (int(found[0]), c, None)
            continue
        text = head[c].astype(str)
        for pattern, what in ((padded, "has a leading zero, which integer ids would drop"),
                              (other, "is not written as a plain integer, which integer ids would read as one")):
            hit = text.str.match(pattern).to_numpy()
            if hit.any() and (first is None or int(hit.argmax()) < first[0]):
                first = (int(hit.argmax()), c, what)
    if first is None:
        return
    row, c, what = first
    for col in cols:  # an id no integer can be ('u1') on an earlier line, or an empty one where that fails: the
        before = head[col].iloc[:row]  # main reader names that line (a red team; a review: an empty id)
        text = before.astype(str)
        gap = before.isna() | text.str.strip().eq("")
        if (~gap & ~text.str.match(plain) & ~text.str.match(padded) & ~text.str.match(other)).any() or \
                gaps_fail and gap.any():
            return
    if c in odd:
        refuse_odd_float_ids(head[c], odd[c], c, src, sep, encoding, label, names,
                             of=rows if rows is not None and len(head) >= rows else None)
    line = data_line(src, sep, encoding, 1 if names is None else 0, 2 if names is None else 1, row)  # blank lines
    raise DataError(f"{label}:{line}: column '{c}' id {head[c].iloc[row]!r:.30} {what} (merging it "  # counted
                    f"with another id); {fix}")
