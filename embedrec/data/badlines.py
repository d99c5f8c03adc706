"""A ratings table's lines with more fields than its header (or first line) holds: all of them found in one pass of
pandas' C parser (:func:`too_many_fields`), for the error that names the first (how many, and the first few
lines: a first-hour review was told of line 4 alone, and fixed one line a run), and for data.bad_lines=skip,
which leaves them out (:func:`blanked`): each such row's text is taken out of the table's bytes and its line
ends kept, so every other row keeps its line number, and every message that names a line by reading the text
again (``textfiles.data_line``) names the right one. A line with too few fields is data.missing's (an empty
field)."""

from __future__ import annotations

import codecs
import io
import re
import warnings

import numpy as np

from embedrec.data.rowlines import _ascii_based

_SKIPPED = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
CHUNK_ROWS = 1 << 20  # rows parsed at a time (as text: the memory of one chunk's strings, not the table's)


def too_many_fields(src, sep: str, encoding: str, header: bool) -> list[tuple[int, int, int]] | None:
    """(tokenizer row, 1-based as pandas counts it: a blank line and the header count, a quoted field's lines are
    one; the fields expected; the fields found) of each row of ``src`` (a path or bytes) with more fields than
    expected, as pandas' C parser reads the table (``header``: its first line names the columns). None where the
    table cannot be parsed so (another error, which the read reports)."""
    import pandas as pd

    found: list[tuple[int, int, int]] = []
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            fh = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
            for _ in pd.read_csv(fh, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
                                 encoding=encoding, engine="c", skip_blank_lines=True, on_bad_lines="warn",
                                 chunksize=CHUNK_ROWS, usecols=None):
                pass
    except Exception:  # noqa: BLE001 - the table's own read says what else is wrong with it
        return None
    for w in said:
        found.extend((int(a), int(b), int(c)) for a, b, c in _SKIPPED.findall(str(w.message)))
    return sorted(found)


def blanked(src, rows: list[int], starts: dict[int, int]) -> bytes | None:
    """The bytes of ``src`` (a path or bytes) with the text of each of tokenizer ``rows`` (0-based) taken out, its
    line ends kept (a row of a quoted field over two lines keeps both), so that pandas skips it as a blank line
    and every other line keeps its number. ``starts``: {row: the 1-based line where it starts} for each of
    ``rows`` and the row after it (``textfiles._row_lines``; a row with none after it runs to the end). None
    where a row's line cannot be told."""
    data = bytes(src) if isinstance(src, (bytes, bytearray)) else open(src, "rb").read()  # noqa: SIM115
    b = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(b == ord("\n"))
    line_at = np.concatenate([[0], ends + 1])  # the byte where each line (1-based: index - 1) starts
    drop = np.zeros(b.size, dtype=bool)
    for row in rows:
        first = starts.get(row)
        if first is None or first > line_at.size:
            return None
        after = starts.get(row + 1)
        lo = int(line_at[first - 1])
        hi = int(line_at[after - 1]) if after is not None and after <= line_at.size else b.size
        drop[lo:hi] = True
    keep = (b == ord("\n"))
    keep[:-1] |= (b[:-1] == ord("\r")) & keep[1:]  # a CRLF line's end stays whole
    drop &= ~keep
    return data if not drop.any() else b[~drop].tobytes()


def can_blank(sep: str, encoding: str) -> bool:
    """Whether :func:`blanked` can cut the rows out by their bytes: a one-character separator of an encoding whose
    line ends are ASCII's bytes (not UTF-16 or UTF-32)."""
    return isinstance(sep, str) and len(sep) == 1 and _ascii_based(encoding)



def has_too_many_fields(src, sep: str, encoding: str, names: list[str], spans: list | None = None) -> bool:
    """Whether a line of ``src`` (a path, compressed or not, or bytes; its first line the header, ``names`` its
    columns) may hold more fields than ``names``: a table read with some of its columns (pandas' ``usecols``) drops
    a line's extra fields without a word, and the line's values shift (a review: 'loved it, really' in an unread
    note column made user 'really' rate movie 8 998). True sends the caller to :func:`too_many_fields`, which
    tells which rows (as does any table this cannot count). Counted by bytes, 16 MiB at a time: each row's
    separators outside quotes (a quoted field may hold a separator or a line end, a doubled quote in it), where
    the separator is one byte and the encoding's line ends ASCII's; a quote that opens other than at a field's
    start (pandas' C parser takes it as text: '5" screen') is True, the count then being no longer sure.
    ``spans``: given, the first quoted field that holds a line end is appended to it as (the line it opens on, the
    lines its row spans): legal CSV, but a stray quote in an unread column swallows the rows after it (a review:
    40 ratings as one cell, without a word); one that opens in a chunk (16 MiB) and closes in the next is not."""
    from pandas.io.common import get_handle

    code = sep.encode(encoding) if isinstance(sep, str) and _ascii_based(encoding) else b""
    if len(code) != 1 or code in (b'"', b"\n", b"\r"):
        return True
    starts = np.frombuffer(code + b'\n\r"', dtype=np.uint8)  # what may come before a quote that opens a field
    most = carry = 0
    odd = 0  # the quotes so far, mod 2: 1 inside a quoted field
    last = -1  # the byte before the chunk's first (-1: the file's start)
    lines = 0  # the line ends before the chunk
    try:
        with get_handle(src if not isinstance(src, (bytes, bytearray)) else io.BytesIO(src), "rb",
                        compression="infer", is_text=False) as h:
            while chunk := h.handle.read(1 << 24):
                b = np.frombuffer(chunk, dtype=np.uint8)
                if last == -1 and chunk.startswith(codecs.BOM_UTF8):  # (a quote opens the header after it)
                    b = b[len(codecs.BOM_UTF8):]
                if not b.size:
                    continue
                quoted = b == ord('"')
                quotes = np.flatnonzero(quoted)
                if quotes.size:
                    opens = quotes[(np.arange(quotes.size) + odd) % 2 == 0]
                    before = b[np.maximum(opens - 1, 0)]
                    if opens.size and opens[0] == 0:
                        before[0] = ord("\n") if last == -1 else last
                    if not np.isin(before, starts).all():
                        return True
                    outside = (np.cumsum(quoted, dtype=np.uint8) & 1) == odd  # (a uint8's wrap keeps the parity)
                    nl = b == ord("\n")
                    ends = np.flatnonzero(nl & outside)
                    if spans is not None and not spans:
                        held = np.flatnonzero(nl & ~outside)
                        at = np.searchsorted(opens, held[0]) - 1 if held.size else -1
                        if at >= 0:
                            o = int(opens[at])
                            after = np.searchsorted(ends, held[0])
                            upto = int(ends[after]) if after < ends.size else b.size
                            spans.append((lines + int(np.count_nonzero(nl[:o])) + 1,
                                          int(np.count_nonzero(nl[o:upto])) + 1))
                    lines += int(np.count_nonzero(nl))
                    seps = np.flatnonzero((b == code[0]) & outside)
                    odd = (odd + quotes.size) % 2
                else:
                    ends = np.flatnonzero(b == ord("\n"))
                    seps = np.flatnonzero(b == code[0])
                    lines += ends.size
                counts = np.diff(np.concatenate([[0], np.searchsorted(seps, ends), [seps.size]]))  # each line's
                counts[0] += carry
                if ends.size:
                    most = max(most, int(counts[:-1].max()))
                carry = int(counts[-1])
                last = int(b[-1])
    except Exception:  # noqa: BLE001 - counted the slow way (the table's own read says what is wrong with it)
        return True
    return max(most, carry) + 1 > len(names)


# the kinds of value data.bad_lines=skip leaves a line out for where it cannot be read (:func:`unreadable_rows`)
NUMBER, INTEGER, DATE = "number", "integer", "date"
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
SHOWN = 5  # the values of a column kept to be said


def unreadable_rows(src, sep: str, encoding: str, header: bool, names: list[str] | None, kinds: dict[str, str],
                    decimal: str = ".", bad_dates=None) -> dict[str, tuple[np.ndarray, list[str], int]]:
    """{column: (the 0-based data rows whose value cannot be read as its kind, the first few such values as
    written, the values given in all)} of each of ``kinds``' columns (name -> :data:`NUMBER`, a rating or a Unix
    time; :data:`INTEGER`, an id of data.id_type=int; :data:`DATE`, a time column of dates, judged by
    ``bad_dates(texts)``: a bool mask of those that are no date, as the caller reads them) in ``src`` (a path or
    bytes, read as pandas' C parser reads the table: ``header``, or ``names`` by position; a blank line is no row),
    its columns with no such value left out. An empty value, and pandas' missing markers ('NA', 'null'), are
    missing, not unreadable: data.missing's. The numbers are parsed as numbers first (the common case: none to
    find, 0.4 s a 1M rows of four columns here), then, only where that parse fails or a date is no date, every
    column as text in chunks of :data:`CHUNK_ROWS` rows (1.8 s)."""
    import pandas as pd

    def opened():
        return io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src

    kw = dict(sep=sep, header=0 if header else None, names=names, usecols=list(kinds), encoding=encoding, engine="c",
              skip_blank_lines=True)
    dates = [c for c, k in kinds.items() if k == DATE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            df = pd.read_csv(opened(), dtype={c: "int64" if k == INTEGER else str if k == DATE else "float64"
                                              for c, k in kinds.items()}, decimal=decimal, **kw)
            if not any(bad_dates(df[c].dropna()).any() for c in dates):
                return {}
        except Exception:  # noqa: BLE001 - an empty or unreadable value, or another error: looked at as text
            pass
    found: dict[str, list] = {c: [] for c in kinds}
    first: dict[str, list[str]] = {c: [] for c in kinds}
    given = dict.fromkeys(kinds, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for chunk in pd.read_csv(opened(), dtype=str, chunksize=CHUNK_ROWS, **kw):
            for col, kind in kinds.items():
                text = chunk[col].dropna().str.strip()
                text = text[text != ""]
                given[col] += len(text)
                if kind == INTEGER:
                    bad = ~text.str.match(_INTEGER).to_numpy(bool)
                elif kind == DATE:
                    bad = bad_dates(text)
                else:
                    num = text.str.replace(decimal, ".", regex=False) if decimal != "." else text
                    bad = pd.to_numeric(num, errors="coerce").isna().to_numpy()
                if bad.any():
                    found[col].append(text.index.to_numpy()[bad])
                    first[col] += text[bad].head(SHOWN - len(first[col])).tolist()
    return {c: (np.concatenate(rows).astype(np.int64), first[c], given[c]) for c, rows in found.items() if rows}
