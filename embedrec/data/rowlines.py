"""The file line where each row of a text table starts, found by one scan of its bytes (:func:`scan_row_lines`),
for a message that names rows by their lines (``textfiles._row_lines``, the error paths' line numbers).

A row is one line but where a quoted field spans lines, and a blank line (or one of spaces and tabs only) is no
row where blank lines are skipped, as pandas skips them. Lines holding no quote are counted with numpy over the
bytes (read a chunk at a time, :class:`_FileBytes`: about 0.1 s for 64 MiB, where Python's csv module took about
1 s); the stretches where quotes lie are read with the csv module, from a line's start, so that a quoted line
break is told as it tells it.
The rows are those ``textfiles._rows`` reads, line for line: the scan is its fast path, and says None where it
cannot read the bytes so (an encoding that is not ASCII's below 0x80 byte for byte, a lone carriage return outside
a quoted field, a separator of several characters), for the csv module to read the whole. A lone carriage return
in a quoted field is the field's, no line break: lines are counted as grep, awk and sed count them.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import os
import stat
from pathlib import Path

import numpy as np

CHUNK = 16 << 20  # bytes counted at a time (numpy's arrays of one chunk)
QUOTED_LEFT = 1 << 16  # the csv module reads on while a quote lies within this many bytes of a row's end
QUOTED_BLOCK = 1 << 16  # the bytes given to the csv module first, four times more each time after, up to CHUNK
FIND_STEP = 1 << 16  # bytes read at a time where a line break is looked for past a chunk's end (doubled each time)


class _Unscannable(Exception):
    """The bytes hold what the scan does not read as the csv module does (a lone carriage return outside quotes:
    the lines of a file whose lines end so)."""


def _ascii_based(encoding: str) -> bool:
    """Whether ``encoding`` writes every character below 0x80 as that one byte and every other with bytes of
    0x80 and up (UTF-8), or is one byte a character with ASCII below 0x80 (latin-1, cp1252): a line break, a
    quote, a space or a tab is then that byte wherever it is."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    if name in ("utf-8", "utf-8-sig", "ascii"):
        return True
    try:
        return len(bytes(range(256)).decode(name, "replace")) == 256 and \
            bytes(range(128)).decode(name) == "".join(map(chr, range(128)))
    except (UnicodeError, LookupError, ValueError):
        return False


class _FileBytes:
    """A regular file's bytes as the scan reads them: its length, slices, and one byte found (``find``, ``rfind``)
    as bytes finds it, read with os.pread, not memory-mapped: a file cut short while it is scanned (another
    process truncating it) is :class:`_Unscannable` (the csv module then reads what is there), where a mapped one's
    pages past its new end killed the process with SIGBUS (session 52's red team: exit 135, no word). The range
    last asked for is held (the scan's chunk, one at a time, in order), and a small range outside it (a line's end
    past a chunk, the bytes ahead of a quoted block) is read apart without replacing it; each byte is read about
    once, so the scan is no slower than over the mapped file (measured in session 52)."""

    def __init__(self, fd: int, size: int):
        self.fd, self.size = fd, size
        self.lo, self.data = 0, b""  # the range held: its first byte's offset, its bytes

    def __len__(self) -> int:
        return self.size

    def _pread(self, start: int, stop: int) -> bytes:
        """The bytes [start, stop) (within the size read at the start), read in full, else _Unscannable."""
        parts, at = [], start
        while at < stop:
            got = os.pread(self.fd, stop - at, at)
            if not got:  # the file is shorter than it was: cut while scanned
                raise _Unscannable
            parts.append(got)
            at += len(got)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def __getitem__(self, where: slice) -> bytes:
        start, stop, _ = where.indices(self.size)
        if start >= stop:
            return b""
        if self.lo <= start and stop <= self.lo + len(self.data):
            return self.data[start - self.lo:stop - self.lo]
        data = self._pread(start, stop)
        if stop - start > FIND_STEP:  # a chunk: held, for the finds and slices within it that follow
            self.lo, self.data = start, data
        return data

    def find(self, byte: bytes, start: int, end: int | None = None) -> int:
        """Where ``byte`` (one byte) first is in [start, end), or -1; without ``end``, up to the file's end, read
        FIND_STEP bytes at a time, then twice as many each time after."""
        if end is not None:
            i = self[start:end].find(byte)
            return i if i < 0 else start + i
        step = FIND_STEP
        while start < self.size:
            piece = self[start:start + step]
            i = piece.find(byte)
            if i >= 0:
                return start + i
            start, step = start + len(piece), step * 2
        return -1

    def rfind(self, byte: bytes, start: int, end: int) -> int:
        i = self[start:end].rfind(byte)
        return i if i < 0 else start + i


@contextlib.contextmanager
def _opened(src):
    """``src`` (bytes, a BytesIO, or a regular file's path: the caller leaves a pipe's and a compressed file's to
    the csv module) as something to slice and find in (bytes, or the file read as :class:`_FileBytes`); None where
    it cannot be (a file that cannot be opened, or no regular file)."""
    if isinstance(src, io.BytesIO):
        src = src.getvalue()
    if isinstance(src, (bytes, bytearray)):
        yield bytes(src)
        return
    if not isinstance(src, (str, Path)):
        yield None
        return
    try:
        fh = open(src, "rb")  # noqa: SIM115 - closed below
    except OSError:
        yield None
        return
    with fh:
        try:
            st = os.fstat(fh.fileno())
        except OSError:
            st = None
        yield _FileBytes(fh.fileno(), st.st_size) if st is not None and stat.S_ISREG(st.st_mode) else None


def scan_row_lines(src, sep: str, encoding: str, rows, skip_blank: bool = False,
                   quoted_after_first: bool = True) -> dict[int, int] | None:
    """{row: the 1-based line where it starts} for tokenizer rows ``rows`` (0-based; blank lines are rows unless
    ``skip_blank``) of ``src`` (a path or bytes), in one pass that stops at the last of them; a row past the
    file's end is left out. None where the bytes cannot be scanned so (the module's docstring): the caller reads
    them with the csv module. ``quoted_after_first`` False: once the first of ``rows`` is found, the scan stops
    at the next stretch of quoted lines (read slowly) and leaves the rows past it out."""
    wanted = sorted(set(rows))
    if not wanted:
        return {}
    if not isinstance(sep, str) or len(sep) != 1 or sep in '"\r\n' or not _ascii_based(encoding):
        return None
    with _opened(src) as buf:
        if buf is None or buf[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff") or buf[:2] in (b"\xff\xfe",
                                                                                             b"\xfe\xff"):
            return None  # (a UTF-16 or UTF-32 byte-order mark: its text is not ASCII's bytes)
        out: dict[int, int] = {}
        try:
            _scan(buf, sep, encoding, wanted, skip_blank, quoted_after_first, out)
        except _Unscannable:
            return None
        except csv.Error:  # (a field past the csv module's limit): the rows before it, as textfiles._rows reads
            pass
        return out


def _scan(buf, sep: str, encoding: str, wanted: list[int], skip_blank: bool, quoted_after_first: bool,
          out: dict[int, int]) -> None:
    """:func:`scan_row_lines`' pass over ``buf``, filling ``out``."""
    size = len(buf)
    # the bytes of a blank line, its line break aside: spaces and tabs, but the separator (a line of tabs in a
    # TSV file is a row of empty fields, as the csv module reads it)
    blank = bytes(c for c in b" \t" if chr(c) != sep)
    pos, line, row, at = 0, 1, 0, 0  # a line's start, its number, the next row's number, the next row wanted
    while at < len(wanted) and pos < size:
        end = min(size, pos + CHUNK)
        if end < size:
            nl = buf.find(b"\n", end)
            end = size if nl < 0 else nl + 1
        quote = buf.find(b'"', pos, end)
        plain = end if quote < 0 else buf.rfind(b"\n", pos, quote) + 1 or pos  # the quote's line's start
        if plain > pos:
            starts, lines = _row_starts(bytes(buf[pos:plain]), blank, skip_blank)
            while at < len(wanted) and wanted[at] - row < len(starts):
                out[wanted[at]] = line + int(starts[wanted[at] - row])
                at += 1
            row += len(starts)
            line += lines
            pos = plain
        if quote >= 0 and at < len(wanted):
            if not quoted_after_first and out:
                return
            pos, line, row, at = _quoted(buf, sep, encoding, (pos, line, row), wanted, at, out, skip_blank,
                                         quoted_after_first)


def _row_starts(piece: bytes, blank: bytes, skip_blank: bool) -> tuple[np.ndarray, int]:
    """The 0-based numbers, within ``piece`` (whole lines holding no quote), of the lines that are rows (every one,
    or with ``skip_blank`` those that hold something besides ``blank``'s bytes and the line break), and how many
    lines it holds."""
    b = np.frombuffer(piece, np.uint8)
    breaks = np.flatnonzero(b == 10)
    cr = piece.find(b"\r")
    if cr >= 0:  # '\r\n' ends a line as '\n' does; a lone '\r' ends one for the csv module too: not read here
        at = np.flatnonzero(b == 13)
        if at[-1] == len(b) - 1 or (b[at + 1] != 10).any():
            raise _Unscannable
    n = len(breaks) + (1 if len(b) and b[-1] != 10 else 0)
    if not skip_blank:
        return np.arange(n), n
    starts = np.concatenate(([0], breaks[:n - 1] + 1)).astype(np.int64)
    ends = np.concatenate((breaks, [len(b)]))[:n]  # each line's break (or the end of the bytes)
    # a blank line starts with a blank byte or ends at once: only those are looked at, byte by byte
    first = np.frombuffer(blank + b"\r\n", np.uint8)
    maybe = np.flatnonzero(np.isin(b[np.minimum(starts, len(b) - 1)], first) | (starts >= ends))
    keep = np.ones(n, dtype=bool)
    for i in maybe.tolist():
        text = piece[starts[i]:ends[i]].rstrip(b"\r")
        if not text.translate(None, blank):
            keep[i] = False
    return np.flatnonzero(keep), n


def _quoted(buf, sep: str, encoding: str, where: tuple[int, int, int], wanted: list[int], at: int,
            out: dict[int, int], skip_blank: bool, quoted_after_first: bool) -> tuple[int, int, int, int]:
    """The rows from ``where`` (a line's start: its byte, its line number, the row it starts) read with the csv
    module until a row ends with no quote within QUOTED_LEFT bytes after it, or the rows wanted are found (without
    ``quoted_after_first``, the first of them): (byte, line, row, the next row wanted) past them. The reader is
    given blocks of whole lines, decoded, a block's lines as io.StringIO splits them (in C, not a Python loop a
    line); numpy finds each block's line ends and the lines after which no quote comes soon (``leave``), so that
    a row costs the loop no more than textfiles._rows' did."""
    pos, line, row = where
    size = len(buf)
    ended: list[bool] = []  # [True] once the reader has asked for a line past the last
    given: list[tuple[int, np.ndarray]] = []  # each block's lines before it and the file offset after each line
    leave: set[int] = set()  # the lines (the first given 1) after which no quote comes within QUOTED_LEFT
    lone_cr: list[bool] = []  # [True] once a block given holds a '\r' with no '\n' after it

    def blocks():
        start, step = pos, QUOTED_BLOCK
        while start < size:
            stop = min(size, start + step)
            if stop < size:
                nl = buf.find(b"\n", stop)
                stop = size if nl < 0 else nl + 1
            piece = bytes(buf[start:stop])
            b = np.frombuffer(piece, np.uint8)
            if not lone_cr and piece.find(b"\r") >= 0:  # (a CR before a line break ends a line as '\r\n')
                cr = np.flatnonzero(b == 13)
                if cr[-1] == len(b) - 1 or (b[cr + 1] != 10).any():
                    lone_cr.append(True)
            at_end = start + np.flatnonzero(b == 10) + 1
            if piece[-1:] != b"\n":
                at_end = np.append(at_end, stop)
            ahead = np.frombuffer(bytes(buf[stop:min(size, stop + QUOTED_LEFT)]), np.uint8)
            quotes = np.concatenate((start + np.flatnonzero(b == 34), stop + np.flatnonzero(ahead == 34)))
            before = given[-1][0] + len(given[-1][1]) if given else 0
            # a line is left after only where a gap between quotes (or after the last) is that long: most blocks
            # of a quoted file have none
            if not len(quotes) or np.diff(quotes, prepend=start, append=size).max() >= QUOTED_LEFT:
                following = np.searchsorted(quotes, at_end)  # the first quote at or after each line's end
                far = np.ones(len(at_end), dtype=bool)
                near = following < len(quotes)
                far[near] = quotes[following[near]] - at_end[near] >= QUOTED_LEFT
                leave.update((before + 1 + np.flatnonzero(far)).tolist())
            given.append((before, at_end))
            # lines end at '\n' alone (with a '\r' before it kept): a lone '\r' in a quoted field is the field's,
            # as grep, awk and sed count lines (session 52's red team: '"a\rb"' put every later line one on)
            yield io.StringIO(piece.decode(encoding, "replace"), newline="\n")
            start, step = stop, min(step * 4, CHUNK)
        ended.append(True)  # the reader asked past the end: a quote left open holds the last line break too

    reader = csv.reader(itertools.chain.from_iterable(blocks()), delimiter=sep)
    target = wanted[at]
    try:
        for fields in reader:  # (the loop kept lean: a quoted file's rows pass through it one by one)
            if not skip_blank or len(fields) > 1 or fields and fields[0].strip(" \t"):
                if row == target:  # its first line: the reader's count less the line breaks in its fields
                    out[row] = line + reader.line_num - 1 - sum(f.count("\n") for f in fields) + \
                        (1 if ended and buf[size - 1:size] == b"\n" else 0)
                    at += 1
                    if at == len(wanted) or not quoted_after_first:
                        row += 1
                        break
                    target = wanted[at]
                row += 1
            if leave and reader.line_num in leave:
                break
    except csv.Error:
        # a lone '\r' outside quotes, which the csv module refuses within a line given it ('new-line character seen
        # in unquoted field'): a line break to it (a file whose lines end so), so it reads the file (textfiles._rows)
        if lone_cr:
            raise _Unscannable from None
        raise
    read = reader.line_num
    if not read:
        return pos, line, row, at
    before, at_end = next((b, e) for b, e in reversed(given) if b < read)
    return int(at_end[read - 1 - before]), line + read, row, at


def separator(line: str) -> str:
    """The separator of a small text table (``predict --pairs``' input, ``evaluate --lists``' file) by its first line,
    as ingest's sniffing reads a table's (data/sniff.py's _sniff_separator, which imports pandas: not on the serving
    path): a tab where the line has one (TSV, each tab a field), else a semicolon where it has more of them than
    commas ('196;242', as a spreadsheet writes CSV where the comma is the decimal mark), else a comma."""
    if "\t" in line:
        return "\t"
    return ";" if line.count(";") > line.count(",") else ","
