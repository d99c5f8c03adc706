"""How a table's ids are written in its text, and what reading them as integers would change: data.id_type=auto
(:func:`auto_ids`), ids written as pandas writes a whole float ('1.0': :func:`float_written_ids`), and the
zero-padded, '+7' and '7.0' ids that integer ids would merge, refused by their lines (:func:`_refuse_zero_padded`).
The tables that hold them are read by ``parsing.py`` and ``tables.py``; the ids' rows by ``ids.py``.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pandas as pd

from embedrec.data.ids import is_finite_number_text
from embedrec.data.textfiles import LIKE_IT_SHOWN, data_line, data_lines, lines_like_it
from embedrec.errors import DataError, set_hint, shorten

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


# how an integer id is written in text, in a CSV and a Parquet text column alike: plainly (spaces around it
# allowed), not with a leading zero ('00196' would become 196 and could merge with '196') or as '+7', '7.0', '7e0'
_SP = r"[ \t\n\r\f\v]"  # ASCII space and digits written out, not re.ASCII: pandas 3.0's str.match refuses a compiled
PADDED_ID = re.compile(rf"^{_SP}*[+-]?0[0-9]")  # pattern with flags other than its own (an H200 run, session 38);
OTHER_ID = re.compile(rf"^{_SP}*\+|^{_SP}*[+-]?[0-9]*\.[0-9]*(?:[eE][+-]?[0-9]+)?{_SP}*$"  # '٧' is no 7 (a review);
                      rf"|^{_SP}*[+-]?[0-9]+[eE]")  # '1.0e3' is 1000 written otherwise, as '1e3' is (a review)
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
