"""A generic ratings table's timestamps made Unix seconds (int64), as data/tables.py reads them: a column of ISO
8601 dates told by its first value (``_dated``), read as UTC (``_iso_dates``, through numpy in whole seconds:
``_unix_seconds``), a value that is no date, or of a year pandas cannot hold (OUTSIDE), refused by its file:line
(``_seconds``; a Parquet file's rows by ``data/parquet.py``); and a column of Unix times divided by their unit's
ticks (``epoch_seconds``): data.timestamp_unit's s, ms, us or ns as set, or auto's unit read from the median's size
(``unit_by_size`` over FINER_FROM), said in a note; a unit set that the size disagrees with, or rows of another
unit than most (two sources merged: ``_warn_mixed_units``), warned of."""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd

from embedrec.data.ids import is_number_text
from embedrec.data.parsing import rows_lines
from embedrec.data.sniff import MOSTLY_DATES
from embedrec.data.textfiles import LIKE_IT_SHOWN, lines_like_it
from embedrec.errors import DataError, set_hint, shorten

DATED_SAMPLE = 100  # the first values given that _dated reads (data.sniff.MOSTLY_DATES of them dates: a date column)

log = logging.getLogger("embedrec")
# the time of a row that gave none (data.missing=drop keeps a row whose time alone is empty: data/tables.py), and of
# a pair kept as seen whose time is not read: before every time, so a pair's timed row is its latest
# (data.repeats), until ingest places the row (ingestion._untimed_rows) or update-users records none (NaN)
NO_TIME = np.iinfo(np.int64).min


def _dated(src, sep: str, encoding: str, col: str, names: list[str] | None, fmt: str | None = None) -> bool:
    """Whether the timestamp column's first value is a date ('2020-01-31', '2020-01-31T12:00:00Z'), not a
    number: such a column is read as ISO 8601 dates. ``names``: the columns of a file without a header. ``fmt``
    (data.timestamp_format): always dates, read by it."""
    if fmt is not None:
        return True
    # the first value given, however many rows before it leave their time empty (data.missing=drop keeps such a
    # row: it says nothing of the kind; a code review: a column of dates whose first 100 were empty, read as the
    # first 100 rows, was taken for Unix seconds)
    seen: list = []  # the first DATED_SAMPLE values given
    try:
        buf = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
        with pd.read_csv(buf, sep=sep, header=0 if names is None else None, names=names, usecols=[col], dtype=str,
                         chunksize=100, encoding=encoding, engine="c" if len(sep) == 1 else "python") as chunks:
            for chunk in chunks:
                given = chunk[col].str.strip()
                seen += given[given.notna() & (given != "")].tolist()[:DATED_SAMPLE - len(seen)]
                if len(seen) >= DATED_SAMPLE:
                    break
    except Exception:  # noqa: BLE001 - the main reader reports what is wrong with the file
        return False
    if not seen:
        return False
    text = pd.Series(seen, dtype=object)
    iso = ~text.map(is_number_text).to_numpy() & \
        pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601").notna().to_numpy()
    # the first a date, or (as ingest's guess takes the column: data.columns.times_kind) nearly all of them, the
    # others then refused by their lines as not dates like the column's (a diff review: a first 'unknown' read the
    # column as Unix times, and every line was said to be no integer)
    return bool(iso[0]) or int(iso.sum()) >= 3 and float(iso.mean()) >= MOSTLY_DATES


# the formats a column of dates that is neither Unix times nor ISO 8601 is tried against, for the message to name
# data.timestamp_format with the one that reads it (a first-hour review: '09.02.1998 02:49' was 'not an integer')
_DAYS = [("%d.%m.%Y", "day-first"), ("%d/%m/%Y", "day-first"), ("%d-%m-%Y", "day-first"),
         ("%m/%d/%Y", "US month-first"), ("%m-%d-%Y", "US month-first"), ("%Y/%m/%d", "year-first"),
         ("%d.%m.%y", "day-first"), ("%d/%m/%y", "day-first"), ("%m/%d/%y", "US month-first"),
         # a month's name (an own-data review: Last.fm's '18 Jan 2024, 10:24' and 'Jan 18 2024 10:24' were told to
         # convert the column, where data.timestamp_format reads them)
         ("%d %b %Y", "month-name"), ("%d %b %Y,", "month-name"), ("%b %d %Y", "month-name"),
         ("%b %d, %Y", "month-name"), ("%d %B %Y", "month-name"), ("%B %d %Y", "month-name"),
         ("%B %d, %Y", "month-name")]
_HOURS = ["", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p"]
DATE_FORMATS = [(d + h, kind) for d, kind in _DAYS for h in _HOURS]
GUESS_SAMPLE = 1000  # values a guess reads: the column's first ones given


def guess_formats(values: pd.Series) -> list[tuple[str, str]]:
    """The formats of DATE_FORMATS ((format, kind)) that read every one of ``values``' first GUESS_SAMPLE values
    given (text, spaces around it aside) as a date; none where the column holds no text. A day-first and a
    month-first format both fit where no day is above 12: the caller says it cannot tell them apart."""
    text = values.dropna().astype(str).str.strip()
    text = text[text != ""].head(GUESS_SAMPLE)
    if text.empty:
        return []
    fits = []
    for fmt, kind in DATE_FORMATS:
        try:
            t = pd.to_datetime(text, format=fmt, errors="coerce")
        except (ValueError, OverflowError):
            continue
        if not t.isna().any():
            fits.append((fmt, kind))
    return fits


def format_advice(values: pd.Series) -> str:
    """How to read a column of dates written otherwise than ISO 8601: data.timestamp_format with the format that
    reads its first values (:func:`guess_formats`), both where day-first and month-first fit alike, or the setting
    alone where none of DATE_FORMATS does."""
    fits = guess_formats(values)
    kinds = list(dict.fromkeys(kind for _, kind in fits))
    if len(kinds) == 1:
        fmt = fits[0][0]
        return f"they read as {kinds[0]} dates ('{fmt}'): {set_hint('data.timestamp_format', fmt)}"
    if len(kinds) > 1:
        shown = " or ".join(f"{set_hint('data.timestamp_format', next(f for f, k in fits if k == kind))} ({kind})"
                            for kind in kinds)
        return f"their first values read as {' and as '.join(kinds)} dates alike (no day above 12): {shown}"
    return ("give their strftime format in data.timestamp_format (e.g. "
            f"{set_hint('data.timestamp_format', '%d.%m.%Y %H:%M')})")


def formatted_dates(text: pd.Series, fmt: str) -> pd.Series:
    """data.timestamp_format's dates: each value (spaces around it aside) read by ``fmt`` as UTC (a zone in the
    format, %z, converted to it), NaT where one does not fit."""
    if pd.api.types.is_object_dtype(text) or pd.api.types.is_string_dtype(text):
        text = text.str.strip()
    try:
        return pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
    except ValueError as e:  # a format pandas refuses outright ('%Q')
        raise DataError(f"data.timestamp_format {fmt!r}: {e}; give a strftime format, e.g. '%d.%m.%Y %H:%M'") from None


OUTSIDE_YEARS = "the years 1678 to 2261"  # (pandas' nanoseconds; a Parquet row's message joins its rows like it)
OUTSIDE_DATES = "is outside the dates embedrec reads"
OUTSIDE = f"{OUTSIDE_DATES} ({OUTSIDE_YEARS})"


def _iso_dates(text: pd.Series, fmt: str | None = None) -> tuple[pd.Series | None, np.ndarray | None]:
    """ISO 8601 text as UTC datetimes (NaT where a value is no date), or (None, the rows whose year pandas cannot
    hold: a red team's '9999-12-31', a common 'no end' mark, was an internal error)."""
    def years(known: bool = False) -> np.ndarray:  # ``known``: only a value that starts with a year ('YYYY-')
        y = pd.to_numeric(text.astype(str).str.extract(r"^\s*(\d{4,})-" if known else r"^\s*(\d+)")[0],
                          errors="coerce")
        out = ~y.between(1678, 2261).to_numpy(dtype=bool)
        return out & y.notna().to_numpy() if known else out

    if fmt is not None:  # data.timestamp_format: its dates, NaT where one does not fit
        return formatted_dates(text, fmt), None
    if pd.api.types.is_object_dtype(text) or pd.api.types.is_string_dtype(text):
        text = text.str.strip()  # ' 2020-01-01 ': the spaces around a field go, as an id's do (a red team)
    try:
        t = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        outside = years()
        return None, outside if outside.any() else np.ones(len(text), dtype=bool)
    nat = t.isna().to_numpy()
    if nat.any():  # pandas 2 makes a year it cannot hold NaT, where pandas 3 reads it: said as such, not "no date"
        outside = years(known=True)
        if outside[np.flatnonzero(nat)[0]]:
            return None, outside & nat
    return t, None


def _unix_seconds(t: pd.Series) -> pd.Series:
    """UTC datetimes as Unix seconds, through numpy in whole seconds: any year pandas parsed holds (a red team:
    '9999-12-31' in a column pandas read in seconds overflowed a subtraction in nanoseconds)."""
    return pd.Series(t.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64), index=t.index)


def _seconds(text: pd.Series, src, sep: str, encoding: str, col: str, label: str, header_lines: int,
             kept: np.ndarray | None = None, fmt: str | None = None, bad_lines: str | None = None) -> pd.Series:
    """ISO 8601 dates (or data.timestamp_format's, ``fmt``) as Unix seconds (a date without a zone is taken as
    UTC); the first value that is not one is named by its file:line (a compressed file is read decompressed:
    textfiles.decompressed)."""
    t, outside = _iso_dates(text, fmt)
    bad = outside if outside is not None else t.isna().to_numpy()
    if bad.any():
        # the rows of the same problem, from the parse above (a first-hour review: fixed one run at a time): counted,
        # and the first few named by their lines; each row in the file counts the rows dropped before it
        # (data.missing; a review: the value quoted was another row's)
        ats = np.flatnonzero(bad)[:LIKE_IT_SHOWN].tolist()
        rows = [at if kept is None else int(kept[at]) for at in ats]
        lines, told = rows_lines(src, sep, encoding, rows, header_lines)
        at = ats[0]
        where = f"{label}:{lines[0]}" if told else f"{label}: data row {rows[0] + 1}"
        n = int(bad.sum())
        like = lines_like_it(n, lines)
        those = "that line" if n < 2 else "those lines"
        # a few lines (data.bad_lines=error, a ratings table's): the setting that skips them (a review: a bad rating's
        # line named it, a bad date's did not)
        skip = ", or skip such lines with «--set data.bad_lines=skip|data.bad_lines='skip'»" \
            if bad_lines == "error" and n * 2 <= int(text.notna().sum()) and outside is None else ""
        if outside is not None:
            raise DataError(f"{where}: column '{col}' {shorten(repr(text.iloc[at]), 40)} {OUTSIDE}{like}; fix or "
                            f"remove {those}")
        also = '; ' + like[2:-1] if like else ''
        if fmt is not None:
            raise DataError(f"{where}: column '{col}' {shorten(repr(text.iloc[at]), 40)} is not a date in "
                            f"data.timestamp_format {fmt!r}{' (' + also[2:] + ')' if also else ''}; fix or remove "
                            f"{those}, or set the format its dates are written in{skip}")
        if not t.notna().any():  # no value is ISO 8601 (a first-hour review: '09.02.1998 02:49')
            raise DataError(f"{where}: column '{col}' {shorten(repr(text.iloc[at]), 40)} is not a date embedrec can "
                            f"read (neither a Unix time nor ISO 8601{also}); {format_advice(text)}, or fix {those}")
        raise DataError(f"{where}: column '{col}' {shorten(repr(text.iloc[at]), 40)} is not a date like the "
                        f"column's {'first' if at else 'others'} (ISO 8601, e.g. 2020-01-31 12:00:00{also}); fix "
                        f"or remove {those}, or give every row Unix seconds{skip}")
    return _unix_seconds(t)


UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}  # data.timestamp_unit: a Unix time's ticks a second
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
# the size from which a Unix time is read as the next finer unit (data.timestamp_unit: auto): 1e11 seconds is the
# year 5138, 1e11 milliseconds 1973, so each unit holds the dates of 1973 to 5138 (pandas' to_datetime and pyarrow
# take the unit as given: unit='ms', timestamp('ms'); a Parquet timestamp column carries its own, read as dates)
FINER_FROM = {"s": 1e11, "ms": 1e14, "us": 1e17}


def unit_by_size(value: float) -> str:
    """The unit ('s', 'ms', 'us', 'ns') of a Unix time of ``value`` ticks by its size (the thresholds of
    FINER_FROM, on its absolute value)."""
    size = abs(value)
    return next((u for u, top in FINER_FROM.items() if size < top), "ns")


def epoch_seconds(ts: pd.Series, unit: str, numbers: bool, label: str, notes: list, line_of=None,
                  kept=None, lines_of=None, read: dict | None = None, held: str | None = None) -> pd.Series:
    """A timestamp column as Unix seconds (int64): integer Unix times (``numbers``) divided by their unit's ticks
    (data.timestamp_unit: s, ms, us or ns as set; auto: by the median's size, said in a note appended to
    ``notes``, as a notebook review and a first-hour review read milliseconds as seconds: the year 56376), rounded
    down to the second; dates (``numbers`` False: ISO text, a datetime or date column, made seconds already) as
    they are, an explicit unit warned of as unused. A unit set that the median's size disagrees with is honoured and
    warned of; some rows of another unit than most (two sources merged) are warned of with the first one's
    line (``line_of``, ``kept``: data.missing=drop's rows kept), as a time split would hold them out first or
    never. Integer dates written YYYYMMDD (auto) are read as dates, said in a note; where nearly every value is one
    (YMD_MOST), the others are refused by their lines (``lines_of``: several rows' lines in one read). ``read``:
    given, its 'unit' is set to the unit the Unix times were read in (none for dates, YYYYMMDD days too), which a
    dataset's manifest records. ``held``: the unit is not this file's to choose but another's (update-users reads a
    file in the unit its run's dataset was read in; ``held`` names that, e.g. "dataset 'shop'"): a value of another
    unit's size is refused by its line, not read as a time decades away, and dates are read without a word."""
    if not numbers:
        if unit != "auto" and held is None:
            log.warning("%s: data.timestamp_unit=%s applies to Unix times written as numbers, and the timestamps "
                        "are dates: read as dates (leave data.timestamp_unit out)", label, unit)
        return ts
    if not len(ts):
        return ts.astype("int64")
    v = ts.to_numpy()
    days, odd = _yyyymmdd(v) if unit == "auto" else (None, None)
    if odd is not None:
        _refuse_odd_days(v, odd, label, line_of, kept, lines_of)
    if days is not None:  # 20200913: as Unix seconds, a day of August 1970 (a red team); a unit set reads them so
        notes.append(f"{label}: the timestamps are dates written YYYYMMDD by their values (e.g. {int(v[0])} as "
                     f"{str(np.datetime64(int(days[0]), 's'))[:10]}; as Unix seconds each would fall in 1970), stored "
                     "as seconds at midnight UTC («--set data.timestamp_unit=s|data.timestamp_unit='s'» reads them as "
                     "Unix seconds)")
        return pd.Series(days, index=ts.index)
    fractions = 0
    if v.dtype.kind == "f":  # Unix times with a fraction (1700000000.5): whole seconds, rounded down, said
        bad = ~np.isfinite(v) | (np.abs(v) >= 2.0 ** 63)
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            row = at if kept is None else int(kept[1][at]) if isinstance(kept, tuple) else int(kept[at])
            where = f"{label}:{line_of(row)}" if line_of is not None else f"{label}: row {row + 1}"
            raise DataError(f"{where}: timestamp {float(v[at])!r} is no Unix time (not a finite number within 64 bits); "
                            "fix or remove that line")
        fractions = int(np.count_nonzero(v % 1))
    if held is not None and unit != "auto":
        _refuse_off_unit(ts, unit, label, held, line_of, kept)
    middle = float(np.median(v[:: max(1, len(v) // 10_000)]))  # a sample: no copy of 100M rows
    sized = unit_by_size(middle)
    chosen = sized if unit == "auto" else unit
    factor = UNITS[chosen]
    if unit == "auto" and sized != "s":
        day = str(np.datetime64(int(middle) // factor, "s"))[:10]
        notes.append(f"{label}: the timestamps are Unix {UNIT_NAMES[sized]} by their size (median {int(middle)}, "
                     f"{day} as {UNIT_NAMES[sized]}), stored as seconds (data.timestamp_unit: auto; "
                     f"«--set data.timestamp_unit=s|data.timestamp_unit='s'» reads them as seconds)")
    if read is not None:
        read["unit"] = chosen
    mixed = False
    if chosen != sized:
        log.warning("%s: data.timestamp_unit=%s reads the timestamps as Unix %s, but their median, %d, is of Unix %s "
                    "by its size (data.timestamp_unit: auto would read them so): read as %s, as set", label, unit,
                    UNIT_NAMES[unit], int(middle), UNIT_NAMES[sized], UNIT_NAMES[unit])
    else:  # most rows are of the unit read: any others are said
        mixed = _warn_mixed_units(ts, chosen, label, line_of, kept)
    if v.dtype.kind == "f":
        if fractions:
            notes.append(f"{label}: {fractions:,} timestamp{'s' if fractions > 1 else ''} with a fraction of a "
                         f"{UNIT_NAMES[chosen][:-1]} (e.g. {float(v[np.flatnonzero(v % 1)[0]])!r}), stored as whole seconds, "
                         "rounded down")
        out = pd.Series(np.floor(v / factor).astype(np.int64), index=ts.index)
    else:
        out = ts if factor == 1 else pd.Series(np.floor_divide(v, factor), index=ts.index)
    if chosen == sized and not mixed:  # (rows of another unit are said as such)
        _warn_far_times(out, label, line_of, kept)
    return out


EARLY = 100_000_000  # Unix seconds of 1973-03-03: a time before it, among later ones, is a 0 or a typo
FUTURE_DAYS = 366  # a time more than a year after today, among earlier ones, is a typo (99999999999: the year 5138)


def _warn_far_times(sec: pd.Series, label: str, line_of=None, kept=None) -> None:
    """Rows whose time (Unix seconds) is before 1973 or more than a year ahead of today, where most rows' are not
    (an own-data review: a 0, a -5 and 99999999999 among 2020's times were read without a word, and a global time
    cut put the last in test): said once, with the first one's line, as a time split would hold them out first or
    put them before every other. Data of times counted from 0 (most rows before 1973) is left alone."""
    import time

    a = sec.to_numpy()
    if not a.size:
        return
    middle = float(np.median(a[:: max(1, a.size // 10_000)]))
    ahead = time.time() + FUTURE_DAYS * 86400
    if not EARLY <= middle <= ahead:
        return
    early, late = a < EARLY, a > ahead
    off = early | late
    if not off.any():
        return
    at, where = _first_off(sec, off, label, line_of, kept)
    n = int((early if early[at] else late).sum())  # the first one's kind (a review: the two were counted as one)
    other = int((late if early[at] else early).sum())
    when = (f"{str(np.datetime64(int(a[at]), 's'))[:10]}" if -2**40 < a[at] < 2**40 else "beyond any date")
    said = "before 1973" if early[at] else "more than a year from now"
    split = "put those rows before every other" if early[at] else "hold those rows out first"
    kind = "more than a year from now" if early[at] else "before 1973"
    also = "" if not other else f" (and {other:,} row{'' if other == 1 else 's'} {kind}, which it would " \
        f"{'hold out first' if early[at] else 'put before every other'})"
    log.warning("%s: timestamp %d (%s) is %s, as %s of %s rows' are while most are from %s to %s: a time-based "
                "split would %s%s; fix or remove %s", where, int(a[at]), when, said,
                f"{n:,}", f"{a.size:,}", str(np.datetime64(int(np.min(a[~off])), "s"))[:10],
                str(np.datetime64(int(np.max(a[~off])), "s"))[:10], split, also,
                "that line" if n + other == 1 else "those lines")


YYYYMMDD = (19000101, 21001231)  # integer dates written YYYYMMDD: the years 1900 to 2100
# the share of a column's rows that, written YYYYMMDD, make the column one of such dates whose other rows are refused
# (a red team: one '20231301' among 900 dates read every row as Unix seconds of 1970 without a word). Unix times of
# data since 1990 are far above those values, and integers counted up (row numbers) are dates for 4% of them at most:
# 365 of each year's 10,000
YMD_MOST = 0.9


def _yyyymmdd(v: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(Unix seconds (midnight UTC) of integer times that are each a date written YYYYMMDD (20200913) of the years
    1900 to 2100, a day the calendar has, None); (None, a mask of the rows that are no such date) where at least
    YMD_MOST of the rows are one and the others not; (None, None) where fewer are, or they are not integers. Unix
    seconds of those sizes are days of 1970 (a red team's F.csv, 20200913, was read as 1970-08-23 without a word);
    Unix times of data since 1990 are far above them, so the two do not meet. A column of other times costs a
    look at a sample of 10,000 values."""
    if v.dtype.kind not in "iu" or not v.size:
        return None, None
    lo, hi = YYYYMMDD
    sample = v[:: max(1, len(v) // 10_000)]
    if 2 * np.count_nonzero((sample >= lo) & (sample <= hi)) < len(sample):  # fewer than half: no copy of 100M rows
        return None, None
    inside = (v >= lo) & (v <= hi)
    days, at = np.unique(v[inside], return_inverse=True)  # (a few distinct days: each read once)
    t = pd.to_datetime(pd.Series(days.astype(str)), format="%Y%m%d", errors="coerce")
    seconds = t.to_numpy().astype("datetime64[s]").astype(np.int64)
    valid = np.zeros(len(v), dtype=bool)
    valid[inside] = t.notna().to_numpy()[at.reshape(-1)]
    if valid.all():
        return seconds[at.reshape(-1)], None
    if np.count_nonzero(valid) >= YMD_MOST * len(v):
        return None, ~valid
    return None, None


def _refuse_odd_days(v: np.ndarray, odd: np.ndarray, label: str, line_of, kept, lines_of) -> None:
    """The rows ``odd`` of a column of dates written YYYYMMDD (``v``) that are none, refused: the first named with
    its line, up to LIKE_IT_SHOWN of them counted and named (``lines_of``; else the first alone, by ``line_of``),
    with the ways on: fix them, empty their time (data.missing=drop keeps such a row), or read every value as Unix
    seconds."""
    ats = np.flatnonzero(odd)[:LIKE_IT_SHOWN]
    rows = [int(a) if kept is None else int(kept[1][a]) if isinstance(kept, tuple) else int(kept[a]) for a in ats]
    n = int(np.count_nonzero(odd))
    if lines_of is not None:
        lines = lines_of(rows)
    elif line_of is not None:
        lines = [line_of(rows[0])]
    else:
        lines = []
    noun = "line" if lines else "row"  # (a Parquet file's rows, counted from 1)
    where = f"{label}:{lines[0]}" if lines else f"{label}: row {rows[0] + 1}"
    lines = lines or [r + 1 for r in rows]
    first = int(v[ats[0]])
    good = int(v[int(np.argmin(odd))])
    day = pd.Timestamp(str(good)).strftime("%Y-%m-%d")
    what = "is no day of the calendar" if YYYYMMDD[0] <= first <= YYYYMMDD[1] else "is not a date written YYYYMMDD"
    like = lines_like_it(n, lines, noun=noun, aside=f"e.g. {good} as {day}")
    those = f"that {noun}" if n == 1 else f"those {noun}s"
    raise DataError(f"{where}: timestamp {first} {what}, where {len(v) - n:,} of the column's {len(v):,} are dates "
                    f"written YYYYMMDD{like}; fix {those}, or empty {'its' if n == 1 else 'their'}"
                    f" time and «--set data.missing=drop|data.missing='drop'» (a row whose time alone is empty is kept, "
                    f"untimed), or «--set data.timestamp_unit=s|data.timestamp_unit='s'» to read every timestamp as "
                    "Unix seconds (the dates then fall in 1970)")


def _off_unit(ts: pd.Series, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """(far, near): the rows whose Unix time is above, or below, the sizes of ``unit`` (FINER_FROM: from its
    coarser unit's top to its own; 1973 to 5138 in each unit)."""
    a = np.abs(ts.to_numpy())
    coarser = {finer: coarse for coarse, finer in zip(UNITS, list(UNITS)[1:])}.get(unit)  # ms -> s
    low = FINER_FROM[coarser] if coarser else 0.0  # the sizes of the unit read: from its coarser unit's top
    high = FINER_FROM.get(unit, np.inf)
    return a >= high, a < low


def _first_off(ts: pd.Series, off: np.ndarray, label: str, line_of=None, kept=None) -> tuple[int, str]:
    """(the first ``off`` row, its file:line)."""
    at = int(np.flatnonzero(off)[0])
    row = at if kept is None else int(kept[1][at]) if isinstance(kept, tuple) else int(kept[at])
    return at, f"{label}:{line_of(row)}" if line_of is not None else f"{label}: row {row + 1}"


def _refuse_off_unit(ts: pd.Series, unit: str, label: str, held: str, line_of=None, kept=None) -> None:
    """A Unix time of another unit's size than ``unit``, the one ``held`` was read in, refused by its line (a red
    team: update-users read a file's 900000000 as microseconds, 1970, beside a row in nanoseconds)."""
    far, near = _off_unit(ts, unit)
    off = far | near
    if not off.any():
        return
    at, where = _first_off(ts, off, label, line_of, kept)
    size = unit_by_size(float(abs(ts.iloc[at])))
    # (a negative one as far from 0 is as far before 1970: a red team's -99999999999999 was said past 5000)
    when = ("thousands of years before 1970" if ts.iloc[at] < 0 else "past the year 5000") if far[at] else "before 1973"
    n = int(off.sum())
    others = f" (and {n - 1:,} more row{'s' if n > 2 else ''} of another unit)" if n > 1 else ""
    raise DataError(f"{where}: timestamp {int(ts.iloc[at])} is {when} as Unix {UNIT_NAMES[unit]} ({UNIT_NAMES[size]}?), "
                    f"the unit {held} was read in{others}; fix or remove {'that line' if n == 1 else 'those lines'} "
                    f"(every row in {UNIT_NAMES[unit]}), or read the file in another unit with "
                    f"{set_hint('data.timestamp_unit', size)}")


def _warn_mixed_units(ts: pd.Series, unit: str, label: str, line_of=None, kept=None) -> bool:
    """Rows whose Unix time is of another unit by its size than ``unit``, most rows' (two sources merged: seconds
    among milliseconds): said once, with the first one's line (a red team: a third of the rows in milliseconds
    among seconds, which a time split held out first)."""
    far, near = _off_unit(ts, unit)
    off = far | near
    if not off.any():
        return False
    at, where = _first_off(ts, off, label, line_of, kept)
    a = np.abs(ts.to_numpy())
    name = UNIT_NAMES[unit]
    if far[at]:
        what = (f"{'thousands of years before 1970' if ts.iloc[at] < 0 else 'past the year 5000'} as Unix {name} "
                f"({UNIT_NAMES[unit_by_size(float(a[at]))]}?)",
                "put those rows before every other" if ts.iloc[at] < 0 else "hold those rows out first")
    else:
        what = (f"before 1973 as Unix {name} ({UNIT_NAMES[unit_by_size(float(a[at]))]}?)",
                "put those rows before every other")
    log.warning("%s: timestamp %d is %s, as %s of %s rows' are while most are %s: a time-based split would %s; "
                "give every row %s", where, int(ts.iloc[at]), what[0], f"{int((far if far[at] else near).sum()):,}",
                f"{len(ts):,}", name, what[1], name)
    return True
