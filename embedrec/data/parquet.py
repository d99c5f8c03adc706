"""A generic ratings table in Parquet, as data/tables.py reads it with pandas: why a file could not be read (a
column named twice said so, else pyarrow's error: ``_parquet_refusal``), and its columns' types checked once the
columns are picked (``_check_parquet_types``): integer ids (a text column of plain integers read as such,
``_integer_text``) or text ids as data.id_type says, numeric ratings (a decimal column, or text of numbers read as
numbers: ``_number_text``), integer, float (Unix times with a fraction), datetime, date or ISO-text timestamps (made
Unix seconds as data/times.py makes a CSV's), no missing value; the first offending row named, as a text table's
line is. pandas at module level, as data/tables.py has it; pyarrow
inside the function that reads a schema."""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pandas as pd

from embedrec.data.columns import META, SAMPLE_ROWS, events_recipe
from embedrec.data.ids import is_number_text
from embedrec.data.idtext import plain_integer_id
from embedrec.data.parsing import DROP_MISSING, likes_advice, parquet_named_twice, parquet_twice_said
from embedrec.data.textfiles import LIKE_IT_SHOWN, drop_advice, lines_like_it
from embedrec.data.times import (
    OUTSIDE_DATES,
    OUTSIDE_YEARS,
    _iso_dates,
    _unix_seconds,
    format_advice,
    formatted_dates,
)
from embedrec.errors import DataError, first_line, shorten


def parquet_columns(pf, label: str) -> list[str]:
    """The columns pandas reads as such of a Parquet file (``pf``: pyarrow's ParquetFile), by its schema alone: its
    index columns (pandas' metadata: df.set_index('user_id').to_parquet(...)) left out, as pandas restores them as
    the index. A name given twice, and more than sniff.COLUMNS_MAX columns, refused: the columns read are then
    read alone (a red team: every column of a file of 20,000 was read, 3.5 s and 640 MB, to read three)."""
    import collections

    from embedrec.data.sniff import refuse_wide

    names = list(pf.schema_arrow.names)
    twice = [n for n, c in collections.Counter(names).items() if c > 1]
    if twice:
        raise DataError(f"{label}: {_twice(twice[0])}")
    refuse_wide(len(names), label, "the file names")
    index = {c for c in (pf.schema_arrow.pandas_metadata or {}).get("index_columns", ()) if isinstance(c, str)}
    return [n for n in names if n not in index]


def parquet_head(pf, cols: list[str]) -> pd.DataFrame:
    """The first SAMPLE_ROWS rows of a Parquet file's columns ``cols`` (``pf``: pyarrow's ParquetFile), typed as
    pandas reads them, for a message's look at what they hold; no other column or row is read."""
    batch = next(pf.iter_batches(batch_size=SAMPLE_ROWS, columns=list(cols)), None)
    return pd.DataFrame(columns=list(cols)) if batch is None else batch.to_pandas().reset_index(drop=True)


def _twice(name: str) -> str:
    return parquet_twice_said(name)


def _parquet_refusal(src, e: Exception) -> str:
    """Why pandas could not read a Parquet file: a column name given twice said so (a red team: Arrow's 'Multiple
    matches for FieldRef.Name(user)'), else 'not a readable Parquet file (its error)'."""
    return parquet_named_twice(src) or f"not a readable Parquet file ({first_line(e)})"


def _check_parquet_types(df: pd.DataFrame, source: dict, label: str, id_type: str, kept: np.ndarray | None = None,
                         untimed: np.ndarray | None = None, timestamp_format: str | None = None) -> None:
    """A Parquet file's columns have types, which must fit: integer ids (or text with data.id_type=str), numeric
    ratings, integer or datetime timestamps; no missing values. ``source``: our name -> the file's column name.
    The first offending row is named (row 1 = the first row), as the CSV path names a line: its row in the file
    where data.missing=drop dropped some (``kept``: each row's there; a red team: 'row 1' quoted row 151's
    value). ``untimed``: the rows kept whose time alone was null (tables._drop_missing), which hold another row's
    time for now: not the time column's first value, nor named for one. ``timestamp_format``
    (data.timestamp_format): a text time column's dates are read by it."""
    from pandas.api import types as pt

    def refuse(col: str, row: int, what: str, fix: str, like=None, aside: str = "", text_ids: bool = False):
        """``like``: every row of the column with this problem (a mask), counted and the first few named, ``fix``
        then said of those rows (its '{those}': 'that row' or 'those rows'; a first-hour review: a broken file was
        fixed one run at a time); ``aside``: a parenthesis after ``what``, which the rows like it join: '(ISO
        8601, ...; 7 rows like it: 5, 77, ...)'."""
        v = df[col].iloc[row]
        v = v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v.tolist() if hasattr(v, "tolist") else v
        n = 1 if like is None else int(np.count_nonzero(like))
        rows = lines_like_it(n, [in_file(r) for r in np.flatnonzero(like)[:LIKE_IT_SHOWN]] if n > 1 else [], "row",
                             aside=aside)
        err = DataError(f"{label}: row {in_file(row)}: column '{source[col]}' holds {shorten(repr(v), 60)}, {what}"
                        f"{rows}; {fix.format(those='those rows' if n > 1 else 'that row')}")
        err.text_ids = text_ids  # text ids refused by data.id_type=int (er.ingest of a DataFrame reads them as text)
        raise err

    def in_file(row: int) -> int:  # a row's number in the file, from 1
        return int(row if kept is None else kept[row]) + 1

    timed = np.ones(len(df), dtype=bool) if untimed is None else ~untimed

    for col in df.columns:
        if col in META:  # the movies' titles and genres: text, an empty or null cell none (_movies_from_ratings)
            continue
        s = df[col]
        if s.isna().any():
            row = int(np.flatnonzero(s.isna().to_numpy())[0])
            raise DataError(f"{label}: row {in_file(row)}: column '{source[col]}' is empty (a missing value); fill or "
                            f"remove that row" + (drop_advice("drop", timed=True) if col == "timestamp" else
                                                  f", or drop such rows with {DROP_MISSING}"))
        if col in ("user_id", "movie_id") and id_type == "int" and (pt.is_string_dtype(s) or pt.is_object_dtype(s)):
            s = df[col] = _integer_text(s, lambda row, what, col=col: refuse(
                col, row, what, "store integer ids, or set data.id_type=auto for text ids", text_ids=True))
        if col in ("user_id", "movie_id") and (id_type == "int" or id_type == "auto" and pt.is_float_dtype(s)):
            if pt.is_bool_dtype(s) or not (pt.is_integer_dtype(s) or pt.is_float_dtype(s)):
                refuse(col, 0, f"not an integer id (the column is {s.dtype})",
                       "store integer ids, or set data.id_type=auto for text ids", text_ids=not pt.is_bool_dtype(s))
            v = s.to_numpy()
            with np.errstate(invalid="ignore"):  # a float id of 2**63 or more cast to -2**63: two users merged
                bad = ((v % 1 != 0) | ~(np.abs(v) < 2.0 ** 63)) if pt.is_float_dtype(s) else \
                    (v > np.iinfo(np.int64).max) if pt.is_unsigned_integer_dtype(s) else np.zeros(v.size, bool)
            if bad.any():
                refuse(col, int(np.flatnonzero(bad)[0]), "not an integer id that fits in 64 bits",
                       "to keep such ids as text set data.id_type=auto (or str)" if pt.is_unsigned_integer_dtype(s)
                       else "store integer ids, or set data.id_type=str", bad)
        elif col in ("user_id", "movie_id"):
            if pt.is_unsigned_integer_dtype(s) and len(s) and int(s.max()) > np.iinfo(np.int64).max:
                # beyond int64 (a uint64 id of 2**63 or more): kept as text, as a CSV's such ids are under auto (an
                # own-data review: they wrapped to -2**63, the ids out not those in)
                s = df[col] = s.astype(str).astype(object)
            if not (pt.is_integer_dtype(s) or pt.is_string_dtype(s) or pt.is_object_dtype(s)):
                refuse(col, 0, f"not a text or integer id (the column is {s.dtype})", "store the ids as text")
            if pt.is_object_dtype(s):
                odd = np.array([not isinstance(x, (str, int, np.integer)) for x in s], dtype=bool)
                if odd.any():
                    refuse(col, int(np.flatnonzero(odd)[0]), "not a text id", "store the ids as text")
        elif col == "rating":
            if pt.is_object_dtype(s) and len(s) and all(isinstance(x, decimal.Decimal) for x in s):
                s = df[col] = s.astype("float64")  # a decimal column (Spark's, a database's): numbers (a red team)
            if _is_text(s):  # numbers as text ('2.5', '4'), as a CSV holds them: read as numbers
                s = df[col] = _number_text(s, lambda row, what, like, fix, col=col: refuse(col, row, what, fix, like))
            if pt.is_bool_dtype(s) or not pt.is_numeric_dtype(s):  # (a bool column: read as its words, as a CSV's)
                refuse(col, 0, f"not a number (the column is {s.dtype})", "store ratings as numbers" +
                       (likes_advice("True").replace("{", "{{").replace("}", "}}") if pt.is_bool_dtype(s) else ""))
        elif col == "timestamp":
            if pt.is_object_dtype(s) and all(type(x) is datetime.date for x in s):  # a date32 column (days)
                s = pd.to_datetime(s)
            if pt.is_datetime64_any_dtype(s):
                ts = s.dt.tz_convert(None) if getattr(s.dt, "tz", None) is not None else s
                # seconds since 1970, as MovieLens; through numpy in whole seconds, so that any unit's range holds
                # (a red team: a timestamp[us] column's 9999-12-31 overflowed pandas' nanoseconds)
                df[col] = ts.to_numpy().astype("datetime64[s]").astype(np.int64)
            elif timestamp_format is not None and _is_text(s):  # data.timestamp_format's dates
                t = formatted_dates(s, timestamp_format)
                if t.isna().any():
                    nat = t.isna().to_numpy() & timed
                    refuse(col, int(np.flatnonzero(nat)[0]), f"not a date in data.timestamp_format {timestamp_format!r}",
                           "fix or drop {those}, or set the format its dates are written in", nat)
                df[col] = _unix_seconds(t)
            elif text_times(s, untimed):  # Unix times as text ('1600000000'), as a CSV holds them: numbers
                s = df[col] = _time_numbers(s, lambda row, like, col=col: refuse(
                    col, row, "not a number like the column's first (Unix times as text)",
                    "fix or drop {those}, or store Unix times as numbers", like), timed)
            elif (pt.is_string_dtype(s) or pt.is_object_dtype(s)) and isinstance(s[timed].iloc[0], str):
                t, outside = _iso_dates(s)  # ISO 8601 dates as text, as a CSV may hold
                if outside is not None:
                    outside &= timed
                    refuse(col, int(np.flatnonzero(outside)[0]), OUTSIDE_DATES,
                           "fix or drop {those}", outside, OUTSIDE_YEARS)
                if t.isna().any():
                    nat = t.isna().to_numpy() & timed
                    if not t[timed].notna().any():  # no value is ISO 8601 (a first-hour review: '09.02.1998 02:49')
                        refuse(col, int(np.flatnonzero(nat)[0]), "not a date embedrec can read (neither a Unix time "
                               "nor ISO 8601)", f"{format_advice(s[timed])}, or fix {{those}}", nat)
                    refuse(col, int(np.flatnonzero(nat)[0]), "not a date like the column's first",
                           "fix or drop {those}, or store Unix seconds", nat, "ISO 8601, e.g. 2020-01-31 12:00:00")
                df[col] = _unix_seconds(t)
            elif pt.is_float_dtype(s):  # Unix times with a fraction (time.time()'s): whole seconds, rounded down
                continue  # by data/times.epoch_seconds, which refuses a value that is no finite time
            elif pt.is_bool_dtype(s) or not pt.is_integer_dtype(s):
                refuse(col, 0, f"not a Unix time or a date (the column is {s.dtype})",
                       "store Unix times (numbers, in data.timestamp_unit's unit), a datetime column or ISO 8601 "
                       "dates")
            elif pt.is_unsigned_integer_dtype(s) and (s.to_numpy() > np.iinfo(np.int64).max).any():
                refuse(col, int(np.flatnonzero(s.to_numpy() > np.iinfo(np.int64).max)[0]),  # was stored as -1
                       "a timestamp too large for 64-bit seconds", "store Unix seconds")


def text_times(s: pd.Series, untimed: np.ndarray | None = None) -> bool:
    """Whether a timestamp column is text whose first value (of the rows not ``untimed``: tables._drop_missing's)
    is a number ('1600000000', as a CSV holds it): Unix times, read as numbers (_time_numbers), as a CSV's are
    (a red team: such a column was refused as "holds '1600000000', not a Unix time")."""
    if not _is_text(s) or not len(s):
        return False
    given = s if untimed is None or not (~untimed).any() else s[~untimed]
    return isinstance(given.iloc[0], str) and is_number_text(given.iloc[0].strip())


def _time_numbers(s: pd.Series, refuse, timed: np.ndarray) -> pd.Series:
    """A text timestamp column of Unix times (:func:`text_times`) as int64, or float64 where one has a fraction or
    is beyond 64 bits (times.epoch_seconds rounds or refuses it, as a CSV's); ``refuse(row, like)`` names the first
    row of ``timed`` whose value is no number, with the rows like it."""
    parsed = pd.to_numeric(s.str.strip(), errors="coerce")
    none = parsed.isna().to_numpy() & timed
    if none.any():
        refuse(int(np.flatnonzero(none)[0]), none)
    return parsed if parsed.dtype.kind in "if" and parsed.dtype != np.uint64 else parsed.astype("float64")


def _is_text(s: pd.Series) -> bool:
    """A column of text: a string column, or an object one whose every value is a str."""
    from pandas.api import types as pt

    if pt.is_bool_dtype(s) or pt.is_numeric_dtype(s):
        return False
    return pt.is_string_dtype(s) and (not pt.is_object_dtype(s) or all(isinstance(x, str) for x in s))


def _number_text(s: pd.Series, refuse) -> pd.Series:
    """A text rating column ('2.5', '4', ' 3 ', as a CSV holds them) as float64, where every value is a number
    (a first-hour review: Parquet's '2.5' was refused where a CSV's was read); ``refuse(row, what, like, fix)``
    names the first value that is none: in a column of a few words ('like', 'dislike'), with the event weights
    that read it (columns.events_recipe, as a CSV's), else with the rows like it, to fix (a review: one
    'four' among numbers named row 1's '2.5')."""
    parsed = pd.to_numeric(s.str.strip(), errors="coerce")
    none = parsed.isna().to_numpy()
    if not none.any():
        return parsed.astype("float64")
    recipe = events_recipe(s)
    fix = ("fix or remove {those}, or store ratings as numbers" if recipe is None else
           "it holds " + recipe.replace("{", "{{").replace("}", "}}") + "; or store ratings as numbers")
    refuse(int(np.flatnonzero(none)[0]), f"not a number (the column is text, {s.dtype})",
           none if recipe is None else None, fix)
    return s  # (refuse raises)


def _integer_text(s: pd.Series, refuse) -> pd.Series:
    """A text column of integer ids ('25', as a CSV holds them) as int64, where every value is one written
    plainly, as a CSV's must be (idtext.plain_integer_id: no leading zero or '+', so '025' and '25' are not
    taken for one id); ``refuse(row, what)`` names the first that is not (a first-hour pass: Parquet's '25' was
    refused where a CSV's was read)."""
    text = s.astype(str).to_numpy()
    plain = np.array([plain_integer_id(x) for x in text], dtype=bool)
    if not plain.all():
        refuse(int(np.flatnonzero(~plain)[0]), f"not an integer id (the column is text, {s.dtype})")
    if text.size and max(map(len, text)) > 18:  # beyond int64's 19 digits' sure range: checked one by one
        info = np.iinfo(np.int64)
        big = np.array([not info.min <= int(x) <= info.max for x in text], dtype=bool)
        if big.any():
            refuse(int(np.flatnonzero(big)[0]), "not an integer id that fits in 64 bits")
    return pd.Series(np.array([int(x) for x in text], dtype=np.int64), index=s.index)
