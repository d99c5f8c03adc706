"""The file layer under the parsers: where input comes from and how its problems are named.

Labels ('<stdin>' or the path), streams read once (a pipe, a FIFO), permission errors on a read, text
decoding (a byte-order mark, the first undecodable byte's line), the file line of a parsed row (blank lines and
quoted newlines between), compressed tables (pandas' by name; zip and tar members decompressed within
:func:`limits`), and pandas' parser errors turned into one :class:`DataError` naming file:line.
``parsing.py`` builds the tables on it.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
import stat
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from embedrec.data.rowlines import scan_row_lines
from embedrec.errors import DataError, first_line, sh_quote, shorten

log = logging.getLogger("embedrec")

MAX_UNZIPPED = 64 << 30  # bytes; the largest MovieLens release (ml-latest) unpacks to about 1.3 GB
MAX_RATIO = 200          # uncompressed / compressed per member; CSV ratings compress about 3-8x, bombs 1000x


def limits() -> tuple[int, int]:
    """The decompression limits (zips, and a compressed table: decompressed); $EMBEDREC_MAX_UNZIP_BYTES /
    $EMBEDREC_MAX_ZIP_RATIO raise them for unusual archives."""
    def env(name, default):
        try:
            return int(os.environ.get(name, "") or default)
        except ValueError:
            return default
    return env("EMBEDREC_MAX_UNZIP_BYTES", MAX_UNZIPPED), env("EMBEDREC_MAX_ZIP_RATIO", MAX_RATIO)


# sources that messages name otherwise than by their path: a DataFrame given to er.ingest, written to the cache
# as Parquet, is 'the DataFrame' (a review: its cache file's path was named, a file the user never gave)
NAMED: dict[str, str] = {}


def _label(src) -> str:
    return "<stdin>" if src is sys.stdin or src == "-" else NAMED.get(str(src), str(src))


def is_stream(path) -> bool:
    """Whether ``path`` names something that can be read once only: a FIFO, a pipe's /dev/fd/N or /dev/stdin, a
    character device (not a regular file, nor a folder). Such input is read whole into memory once, as '-' is:
    each later step (the byte-order mark, the separator, the header, the read) would else find it drained."""
    if path is None or path == "-" or isinstance(path, (bytes, bytearray, io.IOBase)):
        return False
    try:
        mode = os.stat(path).st_mode
    except (OSError, TypeError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def read_denied(e: OSError, path=None) -> DataError | None:
    """A DataError for input that cannot be read for its permissions (EACCES/EPERM on a read), else None."""
    if not isinstance(e, PermissionError):
        return None
    where = e.filename if getattr(e, "filename", None) else path
    return DataError(f"cannot read '{where}' (permission denied); check its permissions (or run as a user who can "
                     "read it)")


@contextmanager
def reading(path=None):
    """Input read inside this block: a PermissionError becomes :func:`read_denied`'s DataError (the CLI's own
    handler would take it for a write and advise another output folder)."""
    try:
        yield
    except PermissionError as e:
        raise read_denied(e, path) from None


HEAD = 1 << 20  # bytes of a text input looked at before the rest is read (refuse_binary_head)
SNIFFED = (",", "\t", ";", "|")  # the separators a table's first line is sniffed for (likely_separator)


def likely_separator(line: str) -> str | None:
    """The separator a table's first line (its header) holds most of, of SNIFFED (a tie to the first of them),
    None where it holds none: how data.separator null reads the ratings table and the movies file alike."""
    counts = {s: line.count(s) for s in SNIFFED}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def head_line(src, encoding: str) -> str:
    """The first line of ``src`` (bytes, or a path), decoded leniently, without a byte-order mark; '' where it
    cannot be read (the reader then says why)."""
    try:
        if isinstance(src, (bytes, bytearray)):
            head = bytes(src[:1 << 16])
        else:
            with open(src, "rb") as fh:
                head = fh.read(1 << 16)
    except OSError:
        return ""
    try:
        text = head.decode(encoding, errors="replace")
    except LookupError:
        text = head.decode("utf-8", errors="replace")
    lines = text.lstrip("\ufeff").splitlines()
    return lines[0] if lines else ""


def read_all(path, label: str | None = None, check=None) -> bytes:
    """The bytes of ``path`` read once (a pipe, a FIFO: see :func:`is_stream`); ``check(head)``: see
    :func:`read_stream`."""
    try:
        with open(path, "rb") as fh:
            return read_stream(fh, check)
    except PermissionError as e:
        raise read_denied(e, path) from None
    except OSError as e:
        raise DataError(f"{label or path}: cannot read it ({e.strerror or e}); check the file") from None


def read_stream(fh, check=None) -> bytes:
    """The bytes of an open binary stream, read whole; ``check(head)`` is called on its first HEAD bytes (all of
    them if fewer) before the rest is read, so that a stream that is no text table (/dev/zero, /dev/urandom,
    a binary file piped in) is refused at once, not read until the memory runs out (a red team: `ingest
    /dev/zero` grew to 24 GB and was killed, nothing said)."""
    chunks, head = [], b""
    while chunk := fh.read(1 << 20):
        chunks.append(chunk)
        if check is not None:
            head += chunk[:HEAD - len(head)]
            if len(head) >= HEAD:
                check(head)
                check = None
    if check is not None:
        check(head)
    return b"".join(chunks)


# characters no text table holds: the C0 controls but tab, line feed, vertical tab (FileMaker's line break in a
# field), form feed, carriage return and ^Z (DOS's end); NUL is counted apart (a run of them)
_CONTROLS = "".join(chr(c) for c in range(32) if c not in (0, 9, 10, 11, 12, 13, 26))
_FIX = "give CSV/TSV text, or a Parquet file named .parquet"


def refuse_binary_head(head: bytes, label: str, seps=(), encoding: str = "utf-8") -> None:
    """Refuse input whose first bytes (``head``, up to HEAD) are no text table: a run of NUL characters, many
    control characters (random or binary data), or no line break in HEAD bytes (a first line longer than any
    table's). ``seps``: control characters the config separates fields or genres with (Hive's \\x01 and \\x02),
    which are text there. UTF-16 and UTF-32 (a byte-order mark, or ``encoding`` naming one) are checked in their
    code units, so Cyrillic's 0x04 bytes are letters, and bytes that do not decode are said not to be that
    encoding; UTF-16 without a mark where ``encoding`` is a byte encoding (most bytes of every other position
    below 0x20 and not of the others, and a line feed where it says) is refused with the encoding to name, which
    the reader would need anyway (a review: 'A\\0' x 2048 then /dev/zero was read until the memory ran out)."""
    if not head:
        return
    named = encoding.lower().replace("_", "-")
    bom = _bom_encoding(head, head)
    enc = bom or (named if named.startswith(("utf-16", "utf-32")) else None)
    if enc is None:
        low = [sum(b < 0x20 for b in head[i:4096:2]) / max(len(head[i:4096:2]), 1) for i in (0, 1)]
        if max(low) >= 0.9 and min(low) < 0.5:  # the high byte of each code unit is the mostly-low one
            guess = "utf-16-le" if low[1] > low[0] else "utf-16-be"
            if "\n" in head[:4096 - 4096 % 2].decode(guess, "replace"):  # (a review: 'a\\tB\\t3\\n' is not one)
                raise DataError(f"{label}: {guess.upper()} text without a byte-order mark, it seems (every other "
                                f"byte is below 0x20); set «--set data.encoding={guess}» if it is one")
    if enc is None:
        text, unit = head.decode("latin-1"), "byte"
    else:
        size = 4 if "32" in enc else 2
        cut = head[:len(head) - len(head) % size]
        wrong = "" if bom else ("; set data.encoding to the file's encoding (for UTF-16 without a byte-order mark: "
                                "utf-16-le or utf-16-be)")
        try:
            text = cut.decode(enc)
        except UnicodeDecodeError as e:
            if e.start < len(cut) - 4 or len(head) < HEAD:  # not a character cut short by the head's end
                raise DataError(f"{label}: binary data, or not {enc.upper()} text (byte offset {e.start:,} does not "
                                f"decode as it){wrong or '; ' + _FIX}") from None
            text = cut[:e.start].decode(enc)
        unit = "character"
    if "\0\0\0\0" in text:
        at = text.index("\0\0\0\0")
        raise DataError(f"{label}: binary data, not a text table (NUL {unit}s from {unit} offset {at:,}); {_FIX}")
    allowed = {ord(c) for c in (seps or ()) if c and len(c) == 1}
    controls = len(text) - len(text.translate({ord(c): None for c in _CONTROLS if ord(c) not in allowed}))
    if controls > max(8, len(text) // 100):
        raise DataError(f"{label}: binary data, not a text table ({controls:,} control {unit}s in its first "
                        f"{len(text):,}); {_FIX}")
    if enc is not None and not bom and len(text) > 256 and "\n" not in text[:4096] and "\r" not in text[:4096]:
        raise DataError(f"{label}: does not read as {encoding} text (data.encoding): no line break in its first "
                        f"{min(len(text), 4096):,} characters{wrong}")
    if len(head) >= HEAD and "\n" not in text and "\r" not in text:
        _refuse_long_header(text, label, seps)
        raise DataError(f"{label}: no line break in its first {HEAD >> 20} MiB, so not a table of one row per "
                        f"line; {_FIX}")
    if enc is None:
        _warn_utf8_read_otherwise(head, label, named)


LONG_HEADER_FIELDS = 1000  # the fields a first line of no line break in HEAD must hold to be said as a header


def _refuse_long_header(text: str, label: str, seps=()) -> None:
    """A first line longer than HEAD that is a header of many columns (LONG_HEADER_FIELDS fields or more, split by
    ',', a tab, ';', '|' or a separator of ``seps``, whichever splits it most) refused as such, with a `cut` that
    keeps the first columns (a red team: a header of 200,000 names of 7 characters, within the 200,000 columns a
    table may have, was called 'not a table of one row per line')."""

    cands = list(dict.fromkeys([",", "\t", ";", "|", *[c for c in seps or () if c and len(c) == 1]]))
    sep = max(cands, key=text.count)
    fields = text.count(sep) + 1
    if fields < LONG_HEADER_FIELDS:
        return
    opt = "" if sep == "\t" else f"-d{sh_quote(sep)} "
    cut = f"cut {opt}-f1-4" + ("" if label.startswith("<") else f" {sh_quote(label)} > NEW")
    shown = "a tab" if sep == "\t" else f"'{sep}'"
    raise DataError(f"{label}:1: the first line is longer than the {HEAD >> 20} MiB a table's first line is read "
                    f"within ({fields:,} fields separated by {shown} in that MiB, and more: a header of as many "
                    "columns); write "
                    "the file again with the columns ingest reads (user, movie, rating and time, and title and genres "
                    f"where it has them), e.g. `{cut}` where they are the first four")


def _warn_utf8_read_otherwise(head: bytes, label: str, named: str) -> None:
    """Warn where a one-byte encoding (data.encoding: latin-1, cp1252, ...) reads a file whose first bytes are UTF-8
    with letters beyond ASCII: every such letter becomes two ('José' read 'JosÃ©'), ids included, without an error
    (a first-hour review: data.encoding=latin-1, set for a Latin-1 movies file as the error advised, turned the
    UTF-8 ratings file's users into other ids)."""
    try:
        one_byte = (len(bytes(range(256)).decode(named, "replace")) == 256
                    and not codecs.lookup(named).name.startswith("utf"))  # (utf-8-sig: a review's false warning)
    except LookupError:
        return
    if not one_byte or head.isascii():  # (the encoding first: the default, UTF-8, reads no byte here)
        return
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3 or len(head) < HEAD:  # not UTF-8 (not a character cut short by the head)
            return
        text = head[:e.start].decode("utf-8")
    at = next((i for i, c in enumerate(text) if ord(c) > 0x7F), None)
    if at is None:  # its first non-ASCII character cut short by the head's end (a review: StopIteration)
        return
    word = re.findall(r"\w+", text[max(0, at - 20):at + 20])
    word = next((w for w in word if any(ord(c) > 0x7F for c in w)), text[at])
    log.warning("%s: read as %s (data.encoding), but its text is UTF-8: '%s' reads as '%s'; data.encoding applies to "
                "every file of the source, so convert the others to UTF-8 (iconv -f %s -t utf-8 FILE > NEW) and "
                "leave it unset", label, named, word, word.encode("utf-8").decode(named, "replace"), named)


def refuse_binary_file(path, label: str, seps=(), encoding: str = "utf-8") -> None:
    """:func:`refuse_binary_head` on a regular, uncompressed file's first HEAD bytes (a path; anything else, or a
    file that cannot be opened, is left to the reader, which says why)."""
    if not isinstance(path, (str, Path)) or compressed(path) or is_stream(path):
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD)
    except OSError:
        return
    refuse_binary_head(head, label, seps, encoding)


def refuse_nul(src, label: str, encoding: str = "utf-8") -> None:
    """Refuse a NUL byte anywhere in a text table of a byte encoding (``src``: its bytes, or a regular uncompressed
    file's path; anything else is left alone), naming its line. No text table holds one, and pandas reads one
    differently by version: 2.x ends the field there (user '5\\0' read as user 5, the file ingested without a
    word), 3.x keeps it (text ids: a user '5\\0' beside user '5'). UTF-16 and UTF-32 (named, or marked), whose
    ASCII characters hold NULs, are not looked at. One pass at memchr speed over the mapped file; the line is counted only when found."""
    if encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        return
    if isinstance(src, (bytes, bytearray)):
        if _bom_encoding(bytes(src[:4]), b"") is None and (at := src.find(b"\0")) >= 0:
            raise _nul_error(label, src.count(b"\n", 0, at) + 1)
        return
    if not isinstance(src, (str, Path)) or compressed(src) or is_stream(src):
        return
    import mmap

    try:
        with open(src, "rb") as fh:
            if _bom_encoding(fh.read(4), b"") is not None or os.fstat(fh.fileno()).st_size == 0:
                return
            # mapped, not read: 0.045 s for a 250 MB ratings file, against pandas' 0.5-0.85 s to read it (session 36)
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                at = m.find(b"\0")
                if at >= 0:  # its line, counted a piece at a time (a review: m[:at] copied the file up to it)
                    step = _NUL_PIECE
                    raise _nul_error(label, 1 + sum(m[i:min(i + step, at)].count(b"\n") for i in range(0, at, step)))
    except DataError:  # the NUL's own error (a ValueError too): not the mapping's failure below
        raise
    except (OSError, ValueError):
        return  # the reader opens it next and says why it cannot


_NUL_PIECE = 1 << 26  # bytes of the mapped file copied at a time to count the lines before a NUL


def _nul_error(label: str, line: int) -> DataError:
    return DataError(f"{label}:{line}: a NUL byte (\\x00) in a text table, which holds none: the file is damaged "
                     "or not text; fix or remove that line")


def _decode_error(label: str, e: UnicodeDecodeError, encoding: str, src=None) -> DataError:
    """One line for a byte that does not decode: ``label:line`` and the byte's offset in the file, found by
    reading ``src`` (a path or bytes) again; the decoder's own offset is within the piece it was given."""
    if e.object[:2] == b"\x1f\x8b":
        return DataError(f"{label}: the file is gzip-compressed; name it with a .gz extension (e.g. ratings.csv.gz) "
                         "or decompress it")
    found = _first_undecodable(e.object if src is None else src, encoding)
    where, byte, offset = (f"{label}:{found[0]}", found[1], found[2]) if found else (label, e.object[e.start], None)
    # 0x80-0x9f are control characters in latin-1 but letters and quotes in Windows' cp1252 (a review: ’ as \x92)
    hint = ("cp1252" if 0x80 <= byte <= 0x9F and byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else "latin-1") \
        if encoding.lower().replace("-", "") in ("utf8",) else "utf-8"  # (those five cp1252 leaves undefined)
    at = f" at byte offset {offset:,}" if offset is not None else ""
    # a byte-order mark names the encoding outright; latin-1 would read it, and every NUL byte, as text
    bom = _bom_encoding(src, e.object) if (offset if offset is not None else e.start) < 4 else None
    if bom and bom != encoding.lower():
        return DataError(f"{where}: cannot decode byte 0x{byte:02x}{at} as {encoding}; the file starts with a "
                         f"{bom.upper()} byte-order mark: read it with «--set data.encoding={bom}» (which applies to "
                         f"every file of the source), or convert it to UTF-8 (iconv -f {bom.upper()} -t UTF-8)")
    mixed = _line_encodings(e.object if src is None else src) if found and hint != "utf-8" else None
    if mixed and mixed.utf8:  # the rest is UTF-8: the advice to read it all as latin-1 would garble that (a red team)
        bad_line = mixed.first_bad_text.decode(hint, "replace")
        more = mixed.bad - 1
        others = f"; {more:,} more line{'s do' if more > 1 else ' does'} not decode either" if more else ""
        return DataError(
            f"{where}: cannot decode byte 0x{byte:02x}{at} as {encoding}, though the rest of the file is UTF-8 "
            f"({mixed.utf8:,} line{'s' if mixed.utf8 > 1 else ''} of UTF-8 text beyond ASCII, such as line "
            f"{mixed.first_utf8}'s '{_word(mixed.first_utf8_text.decode('utf-8'))}'){others}: that line is in "
            f"another encoding (as {hint}: '{_word(bad_line)}'); write it as UTF-8 (convert that line alone: sed -n "
            f"{found[0]}p FILE | iconv -f {hint} -t utf-8), not data.encoding={hint}, which would garble the file's "
            "UTF-8 text")
    return DataError(f"{where}: cannot decode byte 0x{byte:02x}{at} as {encoding}; "
                     f"set data.encoding (e.g. «--set data.encoding={hint}») to the file's encoding")


# UTF-32 first: its little-endian mark begins with UTF-16's
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _bom_encoding(src, piece: bytes) -> str | None:
    """The encoding a UTF-16 or UTF-32 byte-order mark at the start of ``src`` (a path or bytes) names, or None;
    where ``src`` cannot be read again (stdin, None) the decoder's ``piece`` is looked at instead."""
    try:
        with _reopen(src) as raw:
            head = raw.read(4)
    except (OSError, TypeError):
        head = bytes(piece[:4])
    return next((enc for mark, enc in _BOMS if head.startswith(mark)), None)


def _reopen(src):
    """``src`` (a path, bytes or a BytesIO) opened again in binary from its start, for the error path's second
    read; raises OSError/TypeError where it cannot be (stdin)."""
    if isinstance(src, io.BytesIO):
        src = src.getvalue()
    return io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else open(src, "rb")  # noqa: SIM115


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")


def _word(text: str) -> str:
    """The first word of ``text`` holding a letter beyond ASCII (else its first such character), for a message."""
    at = next((i for i, c in enumerate(text) if ord(c) > 0x7F), None)
    if at is None:
        return shorten(text.strip(), 40)
    words = re.findall(r"\w+", text[max(0, at - 20):at + 20])
    return shorten(next((w for w in words if any(ord(c) > 0x7F for c in w)), text[at]), 40)


class _Mix:
    """What :func:`_line_encodings` found: lines that do not decode as UTF-8 (how many, the first's number and
    bytes) and lines of UTF-8 text beyond ASCII (likewise)."""

    def __init__(self):
        self.bad = self.utf8 = 0
        self.first_bad = self.first_utf8 = None
        self.first_bad_text = self.first_utf8_text = b""


def _line_encodings(src) -> _Mix | None:
    """The lines of ``src`` (a path or bytes) that are not UTF-8 and those of UTF-8 beyond ASCII, read line by line
    (an error or a one-byte read's path only: the ASCII lines cost a test each); None where it cannot be read
    again (stdin)."""
    try:
        raw = _reopen(src)
    except (OSError, TypeError):
        return None
    mix = _Mix()
    with raw:
        for n, line in enumerate(raw, 1):
            if n == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[3:]
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                mix.bad += 1
                if mix.first_bad is None:
                    mix.first_bad, mix.first_bad_text = n, line
                continue
            mix.utf8 += 1
            if mix.first_utf8 is None:
                mix.first_utf8, mix.first_utf8_text = n, line
    return mix


def warn_utf8_lines(src, label: str, encoding: str) -> None:
    """Warn where a file read with a one-byte encoding (u.item and movies.dat as released, latin-1; data.encoding)
    holds both lines that are not UTF-8 and lines of UTF-8 text, which that encoding garbles ('Cité' stored as
    'CitÃ©'; a red team: a u.item with two UTF-8 lines). A file of UTF-8 throughout is another's warning
    (:func:`_warn_utf8_read_otherwise`), or read as UTF-8."""
    if _is_utf8(encoding) or encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        return
    mix = _line_encodings(src)
    if mix is None or not mix.utf8 or not mix.bad:
        return
    word = _word(mix.first_utf8_text.decode("utf-8"))
    stored = word.encode("utf-8").decode(encoding, "replace")
    # a control character shown escaped, not sent to the terminal ('Æon' stored as 'Ã\x86on': a review)
    stored = "".join(f"\\x{ord(c):02x}" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in stored)
    log.warning("%s: read as %s, but %s of its lines %s UTF-8 text, which it garbles (the first, line %d: '%s' is "
                "stored as '%s'), while others (line %d) are not UTF-8; save the file in one encoding: convert those "
                "lines alone (the whole file does not convert, its other lines being %s), e.g. sed -n %dp FILE | "
                "iconv -f utf-8 -t %s", label, encoding, f"{mix.utf8:,}", "is" if mix.utf8 == 1 else "are",
                mix.first_utf8, word, stored, mix.first_bad, encoding, mix.first_utf8, encoding)


def _first_undecodable(src, encoding: str) -> tuple[int, int, int] | None:
    """(line, byte, file offset) of the first byte of ``src`` (a path or bytes) that does not decode, reading
    it line by line; None where it cannot be read again (stdin) or every line decodes."""
    try:
        raw = _reopen(src)
    except (OSError, TypeError):
        return None
    with raw:
        offset = 0
        for n, line in enumerate(raw, 1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as e:
                return n, line[e.start], offset + e.start
            except LookupError:
                return None
            offset += len(line)
    return None


# the ``missing`` of a file that data.missing does not apply to: a release's own (MovieLens, RecBole), read as
# released, which data.separator does not apply to either (a red team: u.data's errors advised both); None: a
# movies table (data.separator applies, data.missing not)
RELEASE = "release"
_DROP = "«--set data.missing=drop|data.missing: drop»"


def drop_advice(missing: str | None, timed: bool = False, short: bool = False) -> str:
    """', or drop such rows with --set data.missing=drop' where data.missing applies to the file (``missing``
    'error' or 'drop', a ratings table's), else nothing. ``timed``: the empty value is the time, whose row that
    setting keeps under a random split; ``short``: a line with fewer fields than the header in a file with a time
    column, whose missing one may be the time."""
    if missing in (None, RELEASE):
        return ""
    if timed:
        return (f", or read them with {_DROP} (a row whose time alone is empty is then kept, at its user's middle "
                "time, under a random split, and dropped under a time split)")
    if short:
        return f", or read such rows with {_DROP} (one missing only its time is then kept under a random split)"
    return f", or drop such rows with {_DROP}"


def _parser_error(label: str, e: Exception, header_lines: int, src=None, sep: str = ",",
                  encoding: str = "utf-8", missing: str | None = "error",
                  sep_key: str | None = "data.separator", bad_lines: str | None = None,
                  timed: bool = True) -> DataError:
    """pandas' parser error as one line naming ``label:line`` where the message gives a row. pandas counts
    tokenizer rows (a quoted field may span lines); with ``src`` given they are mapped to physical lines.
    ``missing='drop'`` (data.missing): a row short of fields is dropped, not the error, so a line with too many
    is named alone (a review: the short row was named, with advice to set what was set); RELEASE or None: a file
    data.missing does not apply to, whose messages do not advise it. ``sep_key``: the key that sets the file's
    separator (a movies file's is data.movies_separator; None: a release's file, read as released). A line with
    too many fields is said with how many such lines the table holds and the first few (badlines.too_many_fields;
    a first-hour review fixed one line a run); ``bad_lines`` 'error' (data.bad_lines, a ratings table's) adds the
    setting that skips them. ``timed``: the table has a time column (a short line's advice then says what
    data.missing=drop does with a row missing only its time)."""
    if isinstance(e, UnicodeDecodeError):  # a second read's (a red team: 'cannot parse' with no line, no fix)
        return _decode_error(label, e, encoding, src.getvalue() if isinstance(src, io.BytesIO) else src)
    msg = str(e)

    def line(row: int) -> int:
        return (_row_line(src, sep, encoding, row) if src is not None else None) or row + 1

    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if m:
        at = line(int(m.group(2)) - 1)
        long = f"{label}:{at}: expected {m.group(1)} fields, found {m.group(3)}"
        # pandas names the first line with too many fields: one with too few before it is the file's first bad
        # line (a review), unless such rows are dropped
        if src is not None and missing != "drop" and not compressed(src):
            width = None
            for n, fields in _rows(src, sep, encoding, skip_blank=True):
                if n >= at:
                    break
                if width is None:
                    width = len(fields)
                elif len(fields) < width:
                    skip = "" if missing == RELEASE or sep_key is None else \
                        ", which «--set data.bad_lines=skip|data.bad_lines='skip'» skips"
                    return DataError(f"{label}:{n}: expected {width} fields, found {len(fields)}; fill in the "
                                     f"missing fields or remove that line{drop_advice(missing, short=timed)}; line "
                                     f"{at} has {m.group(3)}{skip}")
        long += _more_like_it(src, sep, encoding, header_lines, at, line)
        if missing == RELEASE or sep_key is None:
            return DataError(f"{long}; fix or remove that line")
        skip = ", or skip such lines with «--set data.bad_lines=skip|data.bad_lines='skip'»" \
            if bad_lines == "error" else ""
        return DataError(f"{long}; check the separator ({sep_key}) and quoting on that line{skip}")
    m = re.search(r"EOF inside string starting at row (\d+)", msg)
    if m:
        return DataError(f"{label}:{line(int(m.group(1)))}: a quoted field opens here ('\"') and never closes; "
                         "close the quote or remove the stray '\"' on that line")
    if "No columns to parse" in msg or isinstance(e, pd.errors.EmptyDataError):
        return DataError(f"{label}: the file is empty; point data.source at a ratings file with rows")
    m = re.search(r"Too many columns specified: expected (\d+) and found (\d+)", msg)
    if m and header_lines == 0:  # data.header=false: the config names more columns than the file holds
        want, found = int(m.group(1)), int(m.group(2))
        return DataError(f"{label}: {found} column{'s' if found != 1 else ''} per line, but without a header the "
                         f"config reads {want} (user, movie, rating, timestamp in that order); for a file without "
                         "times add «--set data.columns.timestamp=null|{'data.columns.timestamp': None}», without "
                         "ratings also «--set data.columns.rating=null|{'data.columns.rating': None}»; for user, "
                         "movie, timestamp (a click log) «--set data.columns.rating=null|{'data.columns.rating': "
                         "None}» alone")
    return DataError(f"{label}: cannot parse ({first_line(e)})")


def _more_like_it(src, sep: str, encoding: str, header_lines: int, at: int, line) -> str:
    """' (3 lines with too many fields: 4, 502, 9,120)': every line of ``src`` with more fields than its header's,
    counted in one parse (badlines.too_many_fields), the first LIKE_IT_SHOWN named (``line``: a tokenizer row's
    line); '' where ``at`` is the only one, or the table cannot be parsed again (a stream)."""
    from embedrec.data.badlines import too_many_fields

    if src is None or is_stream(src) or src is sys.stdin:
        return ""
    if isinstance(src, io.BytesIO):
        src = src.getvalue()
    rows = too_many_fields(src, sep, encoding, header_lines > 0)
    if not rows or len(rows) < 2:
        return ""
    shown = [row for row, _, _ in rows[:LIKE_IT_SHOWN]]
    found = _row_lines(src, sep, encoding, [r - 1 for r in shown]) if not compressed(src) else {}
    lines = [found.get(r - 1) or r for r in shown]
    if lines[0] != at:  # (not the rows the error named: said without them)
        return ""
    return lines_like_it(len(rows), lines, like="with too many fields")


def _rows(src, sep: str, encoding: str, skip_blank: bool = False):
    """(the 1-based line where it starts, its fields) for each tokenizer row of ``src`` (blank lines count unless
    ``skip_blank``, as in pandas' data rows; a quoted field may span lines), read again with Python's csv module
    (only on an error path, or a small file); stops early where it cannot read (stdin, a multi-character sep)."""
    import csv

    if not isinstance(sep, str) or len(sep) != 1:
        return
    try:
        raw = _reopen(src)
        with io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=sep)
            start = 1
            for fields in reader:
                # pandas skips a blank line, and one of spaces or tabs only (a single field: no separator)
                if not skip_blank or len(fields) > 1 or fields and fields[0].strip(" \t"):
                    yield start, fields
                start = reader.line_num + 1
    except (OSError, csv.Error, LookupError, TypeError):
        return


def _row_line(src, sep: str, encoding: str, row: int, skip_blank: bool = False) -> int | None:
    """The 1-based line where tokenizer row ``row`` (0-based) starts; None when it cannot tell."""
    return _row_lines(src, sep, encoding, [row], skip_blank).get(row)


def _row_lines(src, sep: str, encoding: str, rows, skip_blank: bool = False,
               quoted_after_first: bool = True) -> dict[int, int]:
    """{row: the 1-based line where it starts} for tokenizer rows ``rows`` (0-based), in one read that stops at the
    last of them; a row it cannot tell is left out. The bytes are scanned (rowlines.scan_row_lines: numpy, the
    csv module only where quotes lie) where they can be, else read with the csv module (:func:`_rows`).
    ``quoted_after_first`` False: quoted lines past the first row are not read (see scan_row_lines), and where
    the bytes cannot be scanned the first row alone is read."""
    wanted, out = set(rows), {}
    if not wanted:
        return out
    if not compressed(src) and not is_stream(src) and src is not sys.stdin and src != "-":
        found = scan_row_lines(src, sep, encoding, wanted, skip_blank, quoted_after_first)
        if found is not None:
            return found
    if not quoted_after_first:
        wanted = {min(wanted)}
    last = max(wanted)
    for i, (line, _) in enumerate(_rows(src, sep, encoding, skip_blank)):
        if i in wanted:
            out[i] = line
        if i >= last:
            break
    return out


LIKE_IT_SHOWN = 5  # the lines of one problem a message names, the first of them its own (lines_like_it)


def lines_like_it(count: int, lines: list, noun: str = "line", like: str = "like it", aside: str = "",
                  of: int | None = None) -> str:
    """' (3 lines like it: 14, 29, 301)': the lines where a column holds the same problem as the one a message
    names, counted from the vectorised parse that found it (``count``, its own line among them) and the first of
    them named (``lines``, up to LIKE_IT_SHOWN); '' for one alone (a first-hour review: a broken file was fixed
    one run at a time, each stopping at the next line). ``noun``: 'row' for a Parquet file's rows; ``like``: how
    they are like it ('not Unix seconds'); ``aside``: a parenthesis of the message's own, which they join:
    ' (ISO 8601, e.g. ...; 3 rows like it: 5, 7, 9)', ' (ISO 8601, e.g. ...)' for one alone. ``of``: the rows
    counted where they were a table's first only, its rest not read (an early refusal): the count is said as of
    them, not as the file's (' (the first 40,000 rows read are all like it: lines 2, 3, 4, 5, 6, ...)',
    ' (12 of the first 40,000 rows read are like it: lines 2, 9, ...)', ' (the only one in the first 40,000 rows
    read)')."""
    if count < 2 and of is None:
        return f" ({aside})" if aside else ""
    more = ", ..." if count > len(lines) else ""
    # the lines as the message's own FILE:LINE writes its line, without separators (a review: '11, 1,999,991' read
    # as more lines than there were)
    shown = f"{', '.join(str(n) for n in lines)}{more}"
    if of is not None:  # a scale review: '6,000,000 lines like it' was a total counted only by reading them all
        said = f"the only one in the first {of:,} rows read" if count < 2 else \
            f"the first {of:,} rows read are all {like}: lines {shown}" if count == of else \
            f"{count:,} of the first {of:,} rows read are {like}: lines {shown}"
        return f" ({aside + '; ' if aside else ''}{said})"
    return f" ({aside + '; ' if aside else ''}{count:,} {noun}s {like}: {shown})"


def data_line(src, sep: str, encoding: str, header_rows: int, first: int, row: int) -> int:
    """The 1-based line of data row ``row`` (0-based) of a table with ``header_rows`` header rows, blank lines
    skipped as pandas skips them; ``row + first`` where the file cannot be read again."""
    return _row_line(src, sep, encoding, row + header_rows, skip_blank=True) or row + first


def data_lines(src, sep: str, encoding: str, header_rows: int, first: int, rows: list[int]) -> list[int]:
    """:func:`data_line` of each of data rows ``rows`` (0-based), in one read up to the last of them."""
    found = _row_lines(src, sep, encoding, [r + header_rows for r in rows], skip_blank=True)
    return [found.get(r + header_rows) or r + first for r in rows]


COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")  # what pandas decompresses by the file name
STREAM_COMPRESSED = COMPRESSED[:4]  # one file compressed (not an archive): decompress_command's


def compressed(src) -> bool:
    """Whether ``src`` is a path pandas reads through a decompressor: its raw bytes are not the text, so an error
    path names a data row instead of reading lines again."""
    return isinstance(src, (str, Path)) and str(src).lower().endswith(COMPRESSED)


def uncompressed_name(name: str) -> str:
    """``name`` without its compression suffixes ('r.tsv.gz' -> 'r.tsv', 'r.csv.tar.gz' -> 'r.csv'): what tells
    the format."""
    for ext in (*COMPRESSED, ".tgz", ".tar"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    return name


TARS = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")  # tarfile opens each, compressed or not


def decompress_command(path) -> str:
    """The shell command that decompresses ``path`` (.gz, .bz2, .xz, .zst) beside itself, for a message that asks
    for the plain file ('gunzip data/combined_data_1.txt.gz')."""
    low = str(path).lower()
    tool = next((t for ext, t in ((".bz2", "bunzip2"), (".xz", "unxz"), (".zst", "unzstd")) if low.endswith(ext)),
                "gunzip")
    return f"{tool} {path}"


def read_bounded(fh, cap: int, label: str, ratio: int) -> bytes:
    """A decompressing reader's bytes, read in chunks, refusing a decompression bomb (more than ``cap`` bytes)
    before it fills the memory: a compressed file's (:func:`decompressed`) and a compressed stream's."""
    out, size = [], 0
    while chunk := fh.read(1 << 24):
        size += len(chunk)
        if size > cap:
            raise DataError(f"{label}: it decompresses to more than {ratio} times its size (a decompression bomb, or "
                            "data far more repetitive than ratings); decompress it yourself and give the plain file, "
                            "or raise $EMBEDREC_MAX_ZIP_RATIO")
        out.append(chunk)
    return b"".join(out)


def decompressed(path, label: str) -> bytes:
    """The text bytes of a compressed ratings file (.gz/.bz2/.xz/.zst, a .zip or .tar of one file), read whole
    as stdin is, so the separator sniffing, the header checks and every file:line see the text, not the
    compressed bytes."""
    import bz2
    import gzip
    import lzma
    import tarfile
    import zipfile
    import zlib


    low = str(path).lower()
    most, ratio = limits()  # as for a zip's members
    src = io.BytesIO(read_all(path, label)) if is_stream(path) else path  # a pipe: read once (is_stream)
    size = len(src.getvalue()) if isinstance(src, io.BytesIO) else os.path.getsize(path) if os.path.exists(path) \
        else None
    cap = min(most, ratio * size + (64 << 20)) if size is not None else 0

    def bounded(fh) -> bytes:
        return read_bounded(fh, cap, label, ratio)

    try:
        if low.endswith(TARS):
            with (tarfile.open(fileobj=src) if isinstance(src, io.BytesIO) else tarfile.open(src)) as t:
                members = [m for m in t.getmembers() if m.isfile()]
                if len(members) == 1:
                    return bounded(t.extractfile(members[0]))
            names = [m.name for m in members]
            raise DataError(f"{label}: the archive holds {len(names)} files ({shorten(', '.join(names), 80)}), not "
                            "one ratings file; extract the ratings file and give its path")
        if low.endswith((".gz", ".bz2", ".xz")):
            opener = gzip.open if low.endswith(".gz") else bz2.open if low.endswith(".bz2") else lzma.open
            with opener(src, "rb") as fh:
                return bounded(fh)
        if low.endswith(".zst"):
            try:
                import zstandard
            except ImportError:
                raise DataError(f"{label}: reading .zst needs the zstandard package (pip install zstandard), or "
                                "decompress the file first") from None
            with (src if isinstance(src, io.BytesIO) else open(src, "rb")) as fh:
                return bounded(zstandard.ZstdDecompressor().stream_reader(fh))
        if low.endswith(".zip"):
            with zipfile.ZipFile(src) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if len(names) == 1:
                    with z.open(names[0]) as fh:
                        return bounded(fh)
            raise DataError(f"{label}: the archive holds {len(names)} files ({shorten(', '.join(names), 80)}), not "
                            "one ratings file; extract the ratings file and give its path")
    except FileNotFoundError:
        raise DataError(f"{label}: file not found; check data.source", path=str(label)) from None
    except PermissionError as e:
        raise read_denied(e, path) from None
    except OSError as e:
        if e.errno is not None:  # permission denied, a folder, an I/O error: not the archive's damage
            raise DataError(f"{label}: cannot read it ({e.strerror}); check the file") from None
        raise DataError(f"{label}: cannot decompress it ({first_line(e) or type(e).__name__}); the file is damaged "
                        "or cut short: fetch it again") from None
    except (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError) as e:
        raise DataError(f"{label}: cannot decompress it ({first_line(e) or type(e).__name__}); the file is damaged "
                        "or cut short: fetch it again") from None
    except MemoryError:
        raise DataError(f"{label}: too large to decompress in memory; decompress it first and give the plain "
                        "file") from None
    raise AssertionError(low)  # unreachable: COMPRESSED and the branches above match


def _short_row(label: str, src, sep: str, encoding: str, row: int | None = None,
               missing: str | None = "error", timed: bool = True) -> DataError | None:
    """Row ``row`` of ``src`` (0-based, the header included, blank lines skipped), or without ``row`` the first row,
    that has fewer fields than the first row (the header), as one error: pandas fills the missing fields in as
    empty. None where there is none or where it cannot tell (a compressed file is not read again). ``missing``:
    and ``timed`` as :func:`_parser_error`'s (whether data.missing is advised, and how)."""
    if compressed(src):
        return None
    width = None
    for i, (line, fields) in enumerate(_rows(src, sep, encoding, skip_blank=True)):
        if width is None:
            width = len(fields)
        elif (row is None or i == row) and len(fields) < width:
            return DataError(f"{label}:{line}: expected {width} fields, found {len(fields)}; fill in the missing "
                             f"fields or remove that line{drop_advice(missing, short=timed)}")
        if i == row:
            break
    return None
