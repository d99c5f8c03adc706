"""Formatting rows for stdout: table, json, jsonl, csv, tsv. Rows are streamed where the format allows."""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator

FORMATS = ("table", "json", "jsonl", "csv", "tsv")


def resolve_format(fmt: str, stream=None) -> str:
    stream = stream or sys.stdout
    if fmt == "auto":
        return "table" if stream.isatty() else "tsv"
    return fmt


def _decimals(values: list) -> int:
    """How many decimals a table column's floats need: the fewest (0-4) that show every one of them exactly as it
    is, else 4 (so seconds rounded to 0.01 print as 0.42, not 0.4200, and metrics keep 4)."""
    floats = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    for d in range(5):
        if all(round(v, d) == v for v in floats):
            return d
    return 4


def _cell(v, decimals: int = 4) -> str:
    """A table cell: one line, no tab (a title holding either would break the row or its alignment)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{decimals}f}"
    if isinstance(v, (list, tuple)):
        return "|".join(map(str, v)).translate(_TABLE_BREAKS)
    return str(v).translate(_TABLE_BREAKS)


# tabs and line breaks would split a row; the other control characters (ESC, BEL, C1: a title of a user's
# movies file) would reach a terminal as commands (a red team: '\x1b[31m' printed red): each is a space in
# table and TSV cells (CSV quotes its cells and JSON escapes them, so they keep the data as it is)
# control characters, and the line and paragraph separators Python's splitlines() splits at (a review)
_TSV_BREAKS = str.maketrans({c: " " for c in [*map(chr, range(0x20)), "\x7f", *map(chr, range(0x80, 0xa0)),
                                              "\u2028", "\u2029"]})
# a table cell also drops the bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069): a title's
# right-to-left override turned the rest of its row (year, genres, score) around on a terminal (a review)
_TABLE_BREAKS = {**_TSV_BREAKS, **{c: None for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}}
# a CSV cell keeps its tab and line breaks (quoted) but not the other control characters: an escape sequence in a
# title (ESC [31m) went out raw and a terminal obeyed it, where TSV and tables wrote a space (a first-hour review)
_CSV_CONTROLS = {c: r for c, r in _TSV_BREAKS.items() if chr(c) not in "\t\n\r"}


def tsv_cell(v) -> str:
    """A TSV cell: the value as ``_plain`` writes it (an array as a list), tabs and line breaks made spaces and
    nothing quoted, so every line splits at its tabs into the same fields (TSV has no quoting: ``cut`` and
    ``awk -F'\\t'`` read it so)."""
    if getattr(v, "ndim", 0):
        v = v.tolist()
    return _plain(v).translate(_TSV_BREAKS)


def tsv_cells(values) -> str:
    """One TSV line's cells, without the line end."""
    return "\t".join(map(tsv_cell, values))


_QUOTED_END = "\t\r\n"  # CsvLines' row end: the characters a cell is quoted for besides ',' and '"'


class CsvLines:
    """CSV rows ending in '\n' whose cells are quoted wherever they hold a comma, a quote, a tab, '\n' or '\r' (a
    red team: a title holding a lone carriage return went out unquoted and split its row in every CSV reader; a
    shell review: a tab went out unquoted, where the docs say it is quoted, and a reader that sniffs tabs split
    there. The csv module quotes a character only when it is part of the writer's lineterminator, so rows are
    written with '\t\r\n' and end in '\n'). The other control characters of a text cell (ESC, DEL, C1,
    U+2028/9) are written as spaces, as TSV writes them."""

    def __init__(self, out=None):
        self.out, self._buf = out, io.StringIO()
        self._w = csv.writer(self._buf, delimiter=",", lineterminator=_QUOTED_END, quoting=csv.QUOTE_MINIMAL)

    def line(self, cells) -> str:
        """One row's cells as CSV text, without the line end."""
        self._buf.seek(0)
        self._buf.truncate()
        self._w.writerow([c.translate(_CSV_CONTROLS) if isinstance(c, str) else c for c in cells])
        return self._buf.getvalue()[:-len(_QUOTED_END)]

    def writerow(self, cells) -> None:
        self.out.write(self.line(cells) + "\n")


def _text_columns(frame) -> list:
    """The columns of ``frame`` that may hold text: object, string and categorical ones."""
    import pandas as pd
    from pandas.api.types import is_object_dtype, is_string_dtype

    return [c for c in frame.columns if is_object_dtype(frame[c]) or is_string_dtype(frame[c])
            or isinstance(frame[c].dtype, pd.CategoricalDtype)]


def frame_to_tsv(frame, path, float_format: str) -> None:
    """``frame`` as a TSV file whose cells are what ``--format tsv`` writes (tsv_cell: tabs, line breaks and
    control characters as spaces, nothing quoted), floats in ``float_format``: pandas' ``to_csv(sep='\t')`` would
    quote a cell holding '"' or a line break (a review: user 'q"u' came out as '"q""u"'), which ``cut -f1`` and a
    join against recommend's TSV read as another id."""
    text = _text_columns(frame)
    if text:
        frame = frame.assign(**{c: frame[c].map(lambda v: v.translate(_TSV_BREAKS) if isinstance(v, str) else v)
                                for c in text})
    # no quoting: NUL, the quote character here, is a control character, which no cell holds now
    frame.to_csv(path, index=False, sep="\t", float_format=float_format, quoting=csv.QUOTE_NONE, quotechar="\x00")


def frame_to_csv(frame, path, float_format: str) -> None:
    """``frame`` as a CSV file, floats in ``float_format``: pandas' ``to_csv``, unless a text cell holds a carriage
    return or a tab, which pandas (through the csv module) leaves bare, or another control character, which CSV output
    writes as a space: then row by row through CsvLines, with the same cells (a review: QUOTE_NONNUMERIC would
    have quoted every float too)."""
    import pandas as pd

    def has_cr(col) -> bool:
        return bool(col.astype(object).map(lambda v: isinstance(v, str) and ("\r" in v or "\t" in v or
                                                                             v.translate(_CSV_CONTROLS) != v)).any())

    if not any(has_cr(frame[c]) for c in _text_columns(frame)):
        frame.to_csv(path, index=False, float_format=float_format)
        return
    import numpy as np

    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if v != v else float_format % v
        if v is None or v is pd.NA or v is pd.NaT:  # missing, as pandas writes it: an empty cell
            return ""
        return str(v)

    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = CsvLines(fh)
        w.writerow([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            w.writerow([cell(v) for v in row])


def float_text(v: float) -> str:
    """A float in CSV/TSV: rounded to 6 decimals, as repr writes it but never in exponent form (4.3e-05 is
    0.000043), so ``sort -n`` orders a column of scores."""
    # "{:.6f}" without its trailing zeros is repr(round(v, 6)) where the float's spacing is far below 1e-6 (both
    # round correctly, and no shorter text names the value) and no exponent form comes: twice as fast, the most
    # of what a list of 1,000 movies a user costs to write
    if 1e-4 <= v < 1e9 or -1e9 < v <= -1e-4:
        t = f"{v:.6f}"
        t = t.rstrip("0")
        return t + "0" if t[-1] == "." else t
    r = repr(round(v, 6))
    return r if "e" not in r or not math.isfinite(v) or abs(v) >= 1e16 else f"{round(v, 6):.6f}"


def _plain(v) -> str:
    """A CSV/TSV cell: floats to 6 decimals, lists joined by '|', None and NaN empty."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is float:
        return "" if v != v else float_text(v)
    if v is None:
        return ""
    if t is list or t is tuple:
        return "|".join(map(str, v))
    if hasattr(v, "item"):
        return _plain(v.item())
    return str(v)


def _jsonable(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def utf8(out) -> bool:
    """Whether the text file ``out`` writes UTF-8 (else JSON escapes what it cannot hold: a review found every
    format failing at the first accented title under LC_ALL=C with Python's UTF-8 mode off)."""
    enc = (getattr(out, "encoding", None) or "utf-8").lower().replace("-", "").replace("_", "")
    return enc in ("utf8", "utf8sig")


def write_rows(rows: Iterable[dict], columns: list[str], fmt: str, out=None, header: bool = True) -> int:
    """Write rows in ``fmt`` to ``out`` (stdout); returns how many were written.

    CSV/TSV: the header line (unless ``header`` is False) is written once the first row is ready, so an error
    while producing the rows leaves stdout empty rather than holding a lone header."""
    out = out or sys.stdout
    n = 0
    ascii_only = not utf8(out)
    if fmt == "jsonl":
        for r in rows:
            out.write(json.dumps({c: _jsonable(r.get(c)) for c in columns}, ensure_ascii=ascii_only) + "\n")
            n += 1
        return n
    if fmt == "json":  # one array, written row by row as the rows come (a review: 50K users' top-100 built whole
        try:           # in memory took 8.4 GB, and nothing reached a reader until the input ended)
            for r in rows:
                item = json.dumps({c: _jsonable(r.get(c)) for c in columns}, indent=2, ensure_ascii=ascii_only)
                out.write(("[\n  " if n == 0 else ",\n  ") + item.replace("\n", "\n  "))
                n += 1
        except BaseException as e:  # stopped or failed after some rows: the array closed over them, so what was
            # written is JSON; an error before any row leaves stdout empty, as before, but a stop (Ctrl-C, SIGTERM)
            # before the first row writes the empty array a run with no answers writes (a review: 0 bytes)
            if n or isinstance(e, KeyboardInterrupt):
                with contextlib.suppress(OSError, ValueError):  # a closed or broken stdout: nothing more to write
                    out.write("\n]\n" if n else "[]\n")
            raise
        out.write("\n]\n" if n else "[]\n")
        return n
    if fmt == "tsv":  # the header with the first row (as csv below): an error before it leaves stdout empty
        for r in rows:
            line = tsv_cells([r.get(c) for c in columns]) + "\n"
            out.write(tsv_cells(columns) + "\n" + line if n == 0 and header else line)
            n += 1
        if n == 0 and header:
            out.write(tsv_cells(columns) + "\n")
        return n
    if fmt == "csv":
        w = CsvLines(out)
        for r in rows:
            if n == 0 and header:
                w.writerow(columns)
            w.writerow([_plain(r.get(c)) for c in columns])
            n += 1
        if n == 0 and header:
            w.writerow(columns)
        return n
    # table: the rows' widths; on a terminal written in parts, each part when batch_done() says a batch of a
    # stream was answered (the CLI's on_batch), else whole at the end
    table = TableStream(columns, out, header)
    live = _isatty(out)
    if live:
        _LIVE.append(table)
    try:
        for r in rows:
            table.add(r)
        return table.flush(last=True)
    finally:
        if live:
            _LIVE.remove(table)


_LIVE: list = []  # the terminal tables being written (write_rows), which batch_done() writes the rows of


def stdout_offset(fd: int = 1) -> int | None:
    """Where a command's rows begin in the regular file ``fd`` (stdout) is: its offset now, or its end where it is
    appended to (``>>``); None for a pipe, a terminal or anything else (one fstat, before any row is written)."""
    import fcntl
    import os
    import stat

    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return st.st_size if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND else os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None


def whole_writes(stream):
    """``stream`` (sys.stdout) as a text stream whose every write reaches the file whole or raises, where its bytes go
    straight to the descriptor (``PYTHONUNBUFFERED=1``, ``python -u``): there Python's text layer writes to the raw
    file and drops the count a short write returns, so the rest of the text was lost in silence (a red team:
    ``evaluate --format json`` under ``ulimit -f 4`` exited 0 with 4096 of its 6126 bytes, as on a nearly full
    disk; a buffered stdout writes the rest itself and then raises, as this does). ``stream`` itself where it is
    buffered, or has no such raw file (CliRunner's)."""
    raw = getattr(stream, "buffer", None)
    if not isinstance(raw, io.FileIO):
        return stream
    try:
        whole = _WholeFileIO(raw.fileno(), "wb", closefd=False)
    except (OSError, ValueError):
        return stream
    return io.TextIOWrapper(whole, encoding=stream.encoding, errors=stream.errors, newline="\n",
                            line_buffering=stream.line_buffering, write_through=True)


class _WholeFileIO(io.FileIO):
    """A raw file whose ``write`` goes on after a short write until every byte is written or a write fails (its
    OSError: a file-size limit's EFBIG, a full disk's ENOSPC); a descriptor set non-blocking waits until it takes
    more."""

    def write(self, b) -> int:
        import select

        view = memoryview(b).cast("B")
        done = 0
        while done < len(view):
            n = super().write(view[done:])
            if n is None:  # EAGAIN on a non-blocking descriptor: wait until it takes more
                select.select([], [self.fileno()], [])
                continue
            if n == 0:
                raise OSError(errno.EIO, "the output took no bytes")
            done += n
        return done


_JSON_ITEM_END = b"\n  }"  # the last line of each row write_rows' json writes (a nested object's is indented more)


def whole_rows(fd: int, start: int, one_object: bool = False) -> bool:
    """After a write to ``fd`` (stdout, a regular file its rows began in at ``start``: :func:`stdout_offset`) failed
    part-way (a full disk, a file-size limit), the file cut back to the whole rows written: to the end of its last
    line, or for write_rows' JSON array to its last whole row, the array closed in the bytes that frees (as a
    SIGTERM leaves it). True where a cut row was removed; False where none was cut or the file cannot be read back
    (through /proc/self/fd, as stdout is opened write-only). Called once the write failed: nothing on the way of a
    write that succeeds (a red team: `recommend --users > out.tsv` under `ulimit -f` ended in '19\t2\t300\tAir Forc').
    ``one_object``: what was written is one object (a JSON report), which a cut leaves no whole part of: all of it is
    removed."""
    import os
    import stat

    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size <= start:
            return False
        size = st.st_size
        if one_object:
            os.ftruncate(fd, start)
            os.lseek(fd, start, os.SEEK_SET)
            return True
        with open(f"/proc/self/fd/{fd}", "rb") as fh:
            fh.seek(start)
            head = fh.read(4096)
            array = head[:5] == b"[\n  {"
            # a JSON array's close must fit where the cut row was: its last whole row ending 3 bytes short of size
            end = _last_end(fh, start, size - 3 if array else size, _JSON_ITEM_END if array else b"\n")
            if end is not None and _csv(head) and b'"' in head + _read(fh, start, end):
                end = _last_csv_end(fh, start, end)  # a quoted cell's line break is no row's end (a review)
        tail = b"" if not array else b"\n]\n" if end is not None else b"[]\n" if start + 3 <= size else b""
        pos = start if end is None else end
        if pos == size:
            return False
        os.ftruncate(fd, pos)
        if tail:
            os.pwrite(fd, tail, pos)
        os.lseek(fd, pos + len(tail), os.SEEK_SET)  # (a shell writing to the same file next goes on from there)
        return True
    except OSError:
        return False


def _last_end(fh, start: int, limit: int, mark: bytes) -> int | None:
    """The offset just after the last ``mark`` in ``fh`` between ``start`` and ``limit``, read back a MiB at a time;
    None where there is none."""
    hi = limit
    while hi > start:
        lo = max(start, hi - (1 << 20))
        fh.seek(lo)
        buf = fh.read(min(hi + len(mark) - 1, limit) - lo)
        i = buf.rfind(mark)
        if i >= 0:
            return lo + i + len(mark)
        hi = lo
    return None


def _csv(head: bytes) -> bool:
    """Whether rows beginning with ``head`` are CSV (CsvLines': a quoted cell may hold a line break): their first
    line has a comma and no tab, and is no JSON. TSV's lines have tabs and no quoting, the table's header has no
    comma (its columns are names), JSON lines begin with '{' or '['."""
    first = head.split(b"\n", 1)[0]
    return b"," in first and b"\t" not in first and not first.lstrip().startswith((b"{", b"["))


def _read(fh, start: int, end: int) -> bytes:
    """The bytes of ``fh`` from ``start`` to ``end``, where they are at most a MiB (else b'"', for the caller to
    look further)."""
    if end - start > 1 << 20:
        return b'"'
    fh.seek(start)
    return fh.read(end - start)


def _last_csv_end(fh, start: int, end: int) -> int | None:
    """The offset just after the last line break between ``start`` and ``end`` that ends a CSV row: one outside a
    quoted cell, where the quotes before it are even in number (a doubled quote counts two). Read forward a MiB
    at a time; None where no row ends there."""
    import numpy as np

    last, odd, pos = None, 0, start
    fh.seek(start)
    while pos < end:
        buf = np.frombuffer(fh.read(min(1 << 20, end - pos)), np.uint8)
        if not buf.size:
            break
        quotes = (np.cumsum(buf == ord('"')) + odd) & 1
        breaks = np.flatnonzero((buf == ord("\n")) & (quotes == 0))
        if breaks.size:
            last = pos + int(breaks[-1]) + 1
        odd, pos = int(quotes[-1]), pos + buf.size
    return last


def batch_done(out=None) -> None:
    """A stream's batch was answered (``recommend_stream``'s and ``predict_lines``' on_batch, in the CLI): the
    rows a terminal's table holds so far are written, then ``out`` (stdout) flushed, so each batch reaches the
    reader while the input goes on."""
    for table in list(_LIVE):
        table.flush()
    (out or sys.stdout).flush()


class TableStream:
    """A table written in parts: :meth:`flush` writes the rows added since the last one. The first part sets the
    columns' widths (and, on a terminal, cuts them to its width); a later part's cells are padded to them, and on
    a terminal cut to them, so the rows stay aligned (a review: on a terminal, `recommend --users -` showed
    nothing until its input ended, the table waiting for every row to size its columns). Written whole (one
    flush) it is the table write_rows writes."""

    def __init__(self, columns: list[str], out=None, header: bool = True):
        self.columns, self.out, self.header = columns, out or sys.stdout, header
        self.raw: list[list] = []
        self.widths: list[int] | None = None
        self.decimals: list[int] | None = None
        self.written = 0

    def add(self, row: dict) -> None:
        self.raw.append([row.get(c) for c in self.columns])

    def flush(self, last: bool = False) -> int:
        """Write the rows added since the last flush (``last``: the header of a table with no row too); returns
        how many rows the table holds so far."""
        raw, out, columns = self.raw, self.out, self.columns
        if self.widths is None and (raw or last):
            self.decimals = [_decimals([d[i] for d in raw]) for i in range(len(columns))]
            data = [[_cell(v, p) for v, p in zip(d, self.decimals)] for d in raw]
            # the header by terminal columns too: predict passes a user's own column names through ('評価値')
            self.widths = [max([_width(c)] + [_width(d[i]) for d in data]) for i, c in enumerate(columns)]
            if _isatty(out):  # a terminal: long titles and genres cut to its width, not every row wrapped (a
                _fit(data, columns, self.widths, raw, out)  # first-hour review: 150-188 columns in 80)
                if not last:  # a first part of several: the text columns take the room left for the later
                    _widen(columns, self.widths, raw)  # parts' longer cells, which are cut to these widths
                    for i in range(len(columns)):  # and a float column room for a larger number (a popular
                        if any(isinstance(d[i], float) for d in raw):  # list's count, 467.0000, beside scores
                            self.widths[i] = max(self.widths[i], 10)   # of 0.3543: a review)
            if self.header:  # --no-header with --format auto on a terminal: the table's rows alone
                out.write("  ".join(_pad(c, w) for c, w in zip(columns, self.widths)).rstrip() + "\n")
        elif raw:
            data = [[_cell(v, p) for v, p in zip(d, self.decimals)] for d in raw]
            if _isatty(out):  # titles and genres cut to the first part's widths, as _fit cut that part's; a
                # longer cell of another column (a fallback, a passed-through field) is written whole (a review)
                mark, text = _mark(out), {i for i in _cuttable(columns, raw) if columns[i] in ("title", "genres")}
                data = [[_cut(v, w, mark) if i in text and _width(v) > w else v
                         for i, (v, w) in enumerate(zip(d, self.widths))] for d in data]
        else:
            return self.written
        for d in data:
            out.write("  ".join(_pad(v, w) for v, w in zip(d, self.widths)).rstrip() + "\n")
        self.written += len(data)
        self.raw = []
        return self.written


@functools.lru_cache(maxsize=65536)  # a table repeats its titles: each measured once (a review: 2.4x slower)
def _width(text: str) -> int:
    """The columns ``text`` takes on a terminal: 2 for a wide character (CJK, most emoji), 0 for a combining or
    zero-width one (a red team: a Japanese title's row was 87 columns in an 80-column table, and the cells after
    a zero-width joiner were shifted); an emoji sequence joined by U+200D, or made an emoji by U+FE0F, as one
    2-column character (a review)."""
    if text.isascii():
        return len(text)
    return sum(w for _, w in _clusters(text))


def _clusters(text: str):
    """(characters, columns) of each character of ``text`` as a terminal draws it: one with the combining and
    zero-width characters after it, a ZWJ sequence (👨‍👩‍👧) as one, U+FE0F widening the character before it to 2."""
    import unicodedata

    out: list[list] = []
    join = False
    for c in text:
        emoji = unicodedata.category(c) == "So"
        if c == "\u200d" and out:  # a zero-width joiner: an emoji after it joins this cluster
            out[-1][0] += c
            join = True
            continue
        base = unicodedata.category(out[-1][0][0]) == "So" if out else False  # the cluster so far is an emoji
        if join and emoji or base and "\U0001f3fb" <= c <= "\U0001f3ff":  # a joined emoji; a skin tone (after
            out[-1][0] += c  # an emoji only: after a letter it is drawn as a character of its own, a review)
            join = False
            continue
        join = False
        if "\U0001f1e6" <= c <= "\U0001f1ff" and out and len(out[-1][0]) == 1 \
                and "\U0001f1e6" <= out[-1][0] <= "\U0001f1ff":  # a flag: two regional indicators
            out[-1][0] += c
            out[-1][1] = 2
            continue
        if c == "\ufe0f" and out:  # emoji presentation: two columns for a symbol ('a' + U+FE0F stays 'a')
            out[-1][0] += c
            out[-1][1] = 1 if out[-1][0][0].isascii() and out[-1][0][0].isalpha() else 2  # keycaps (1️⃣),
            # '‼️' and '↔️' are drawn as emoji; a letter is not (a review)
            continue
        if "\u1160" <= c <= "\u11ff" and out and "\u1100" <= out[-1][0][0] <= "\u115f":  # conjoining Hangul jamo:
            out[-1][0] += c  # a leading consonant's vowel and final consonant make one 2-column syllable (a review)
            continue
        if out and (unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf")):
            out[-1][0] += c
            continue
        w = 0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else 2 if unicodedata.east_asian_width(c) in "WF" \
            else 1
        out.append([c, w])
    return [(c, w) for c, w in out]


def _pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (str.ljust counts characters)."""
    return text + " " * (width - _width(text))


def _cut(text: str, width: int, mark: str) -> str:
    """``text`` cut to ``width`` terminal columns, its last one the ellipsis ``mark``; whole clusters only (no
    dangling joiner or half a sequence)."""
    out, used = [], 0
    for chars, w in _clusters(text):
        used += w
        if used > width - 1:
            break
        out.append(chars)
    return "".join(out) + mark


def metric_rows(metrics: dict) -> Iterator[dict]:
    """Flatten {'splits': {split: {model: {metric: v}}}} to rows of split, model, metrics; then, after a split's
    rows, evaluate's paired differences ({'paired': {split: {other: {metric: {'difference', 'se', ...}}}}}) as two
    rows an other: 'model-OTHER' (the model minus it) and 'model-OTHER se' (the standard error)."""
    paired = metrics.get("paired") or {}
    for split, models in metrics.get("splits", {}).items():
        for model, vals in models.items():
            yield {"split": split, "model": model, **vals}
        for other, row in (paired.get(split) or {}).items():
            yield {"split": split, "model": f"model-{other}", **{m: v["difference"] for m, v in row.items()}}
            yield {"split": split, "model": f"model-{other} se", **{m: v["se"] for m, v in row.items()}}


def metric_columns(rows: list[dict]) -> list[str]:
    """The columns of ``rows``: split, model, then each metric where it first appears: right after the metric before
    it in its row (a paired row's user_mse after rmse, not after the last of the ranking metrics), or last where it
    is its row's first; the counts (users_*, rows_*) left out."""
    cols = ["split", "model"]
    for r in rows:
        before = None
        for k in r:
            if k.startswith(("users_", "rows_")):  # counts: in the JSON, not the table
                continue
            if k not in cols:
                cols.insert(cols.index(before) + 1 if before not in (None, "split", "model") else len(cols), k)
            before = k
    return cols


def transpose_metrics(rows: list[dict], columns: list[str]) -> tuple[list[dict], list[str]]:
    """Rows of (split, model, metrics...) -> one row per metric with a column per model (per split/model when
    there are several splits): the terminal layout, narrow enough for 80 columns. A paired difference's two rows
    (:func:`metric_rows`' 'model-OTHER', then 'model-OTHER se') are one column, each cell '+0.2259 +- 0.0072'."""
    rows = _paired_cells(rows)
    splits = {r["split"] for r in rows}
    names = [r["model"] if len(splits) == 1 else f"{r['split']}/{r['model']}" for r in rows]
    out = []
    for c in columns:
        if c in ("split", "model"):
            continue
        if all(r.get(c) is None for r in rows):
            continue
        out.append({"metric": c, **{n: r.get(c) for n, r in zip(names, rows)}})
    return out, ["metric", *names]


RATING_ROWS = ("rmse", "user_mse", "mae", "user_mae")  # a rating model's rows, and their paired ones (evaluate's)


def table_parts(rows: list[dict], columns: list[str], paired: bool) -> list[tuple[list[dict], list[str]]]:
    """:func:`transpose_metrics`' rows and columns as the tables a terminal gets: one, or, where they hold
    ``paired`` differences (evaluate's model-OTHER columns) and both rating rows (:data:`RATING_ROWS`) and ranking
    rows, two: the rating rows, then the others, each with only the columns holding a value in it (an explicit
    model's evaluate: the rating baselines' comparisons beside most_popular's made one table 110 columns wide; as
    two, 75 and 72)."""
    rated = [r for r in rows if r.get("metric") in RATING_ROWS]
    others = [r for r in rows if r.get("metric") not in RATING_ROWS]
    if not (paired and rated and others):
        return [(rows, columns)]
    out = []
    for part in (rated, others):
        cols = [c for c in columns if c == "metric" or any(r.get(c) is not None for r in part)]
        out.append(([{c: r.get(c) for c in cols} for r in part], cols))
    return out


def _paired_cells(rows: list[dict]) -> list[dict]:
    """``rows`` with each 'model-OTHER' row and the 'model-OTHER se' row after it made one, its cells 'difference
    +- se' (4 decimals, as a table's numbers; the difference alone where there is no SE)."""
    out: list[dict] = []
    for r in rows:
        last = out[-1] if out else None
        if last is not None and r["model"] == f"{last['model']} se" and last["model"].startswith("model-") \
                and r["split"] == last["split"]:
            for key, v in last.items():
                se = r.get(key)
                if key not in ("split", "model") and isinstance(v, float) and not math.isnan(v):
                    last[key] = f"{v:+.4f}" + (f" +- {se:.4f}" if isinstance(se, float) and not math.isnan(se) else "")
            continue
        out.append(dict(r))
    return out


def _mark(out) -> str:
    """What ends a cut cell: an ellipsis where the output writes UTF-8, else '~'."""
    return "\u2026" if (getattr(out, "encoding", None) or "").lower().replace("-", "") == "utf8" else "~"


def _isatty(out) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _widen(columns: list[str], widths: list[int], raw: list[list], most: int = 40) -> None:
    """Widen a terminal table's text columns into the room its terminal leaves, each to at most ``most``
    columns, in the reverse of the order _fit cuts them (the title to ``TITLE_READABLE``, the genres to 10, then
    the title, then the genres); in place."""
    import shutil

    text = [i for i in _cuttable(columns, raw) if columns[i] in ("title", "genres")]  # the long ones (a review:
    room = shutil.get_terminal_size((80, 24)).columns - (sum(widths) + 2 * (len(widths) - 1))  # 'none' padded)
    title = [i for i in text if columns[i] == "title"]
    others = [i for i in text if columns[i] != "title"]
    for cols, upto in ((title, TITLE_READABLE), (others, 10), (title, most), (others, most)):  # _fit's order back
        for i in cols:
            grow = min(room, max(upto - widths[i], 0))
            widths[i] += grow
            room -= grow


def _cuttable(columns: list[str], raw: list[list]) -> list[int]:
    """The columns a terminal's table may cut: text (titles, genres), never a number or an id (a review: two
    string ids cut to one 'urn:movie:imdb:tt00...')."""
    return [i for i in range(len(columns)) if any(isinstance(d[i], (str, list, tuple)) for d in raw)
            and not columns[i].endswith("_id") and not columns[i].startswith("movie_id")]


TITLE_READABLE = 20  # the columns a cut title keeps before the less useful columns go to their headers' width


def _fit(data: list[list[str]], columns: list[str], widths: list[int], raw: list[list], out) -> None:
    """Narrow a table's text columns (never its numbers) until a row fits the terminal, cutting their longest
    cells with an ellipsis; in place. The title is what a reader needs of a movie's row, so it is cut last (a
    first-hour review: at 80 columns titles were cut before genres): the other text columns first, widest first,
    to their header's width or 10 characters; then the title to ``TITLE_READABLE``; then the others to their
    header's width; then the title to its header's width or 10 characters."""
    import shutil

    room = shutil.get_terminal_size((80, 24)).columns
    text = _cuttable(columns, raw)
    title = [i for i in text if columns[i] == "title"]
    others = [i for i in text if columns[i] != "title"]
    over = sum(widths) + 2 * (len(widths) - 1) - room
    header = {i: _width(columns[i]) for i in text}
    floor = {i: max(header[i], 10) for i in text}
    for cols, least in ((others, floor), (title, {i: max(floor[i], TITLE_READABLE) for i in title}),
                        (others, header), (title, floor)):
        while over > 0:
            i = max(cols, key=lambda j: widths[j] - least[j], default=None)
            if i is None or widths[i] <= least[i]:
                break
            widths[i] -= 1
            over -= 1
    mark = _mark(out)
    for d in data:
        for i in text:
            if _width(d[i]) > widths[i]:
                d[i] = _cut(d[i], widths[i], mark)
