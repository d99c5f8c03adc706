"""Typed errors. The library raises these; the CLI turns them into one line on stderr and an exit code.

A message speaks library terms to a notebook and CLI terms to a shell. Where it names an option, it marks it
``«CLI|LIBRARY»``: ``«--overwrite|overwrite=True»``. Without ``|LIBRARY``, the library form is derived:
``«--set train.lr=0.01»`` -> ``train.lr=0.01``, ``«--rated»`` -> ``rated``, ``«--split valid»`` ->
``split=valid``. ``str(error)`` is the library form; the CLI prints :meth:`EmbedrecError.cli_message`.
Log messages use the same marks (``TermsFilter``).
"""

import logging
import re

_MARK = re.compile(r"«([^«»|]*)(?:\|([^«»]*))?»")


def _library_form(m: re.Match) -> str:
    cli, lib = m.group(1), m.group(2)
    if lib is not None:
        return lib
    s = cli.strip()
    if s.startswith("--set "):  # one or more: '--set a=1 --set b=2' is 'a=1, b=2' (a review: the second kept
        return ", ".join(part.strip() for part in s.split("--set ") if part.strip())  # its --set)
    name, _, value = s.lstrip("-").partition(" ")
    name = name.replace("-", "_")
    return f"{name}={value}" if value else name


def from_here(path, resolve: bool = True):
    """``path`` as a user here would type it: relative to the current folder where it lies below it (its links
    resolved, or with ``resolve=False`` only made absolute: RUN/current stays itself), else as given. For the
    paths messages name."""
    import os
    from pathlib import Path

    try:
        full = Path(path).resolve() if resolve else Path(os.path.abspath(path))
        return full.relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        return Path(path)


def command(cmd: str) -> str:
    """A command for a message, in single quotes unless shlex already quoted a part of it ('...' inside '...'
    would not paste back; a review)."""
    return f"'{cmd}'" if "'" not in cmd else cmd


def marked(cli: str, library: str) -> str:
    """``«cli|library»``, or ``cli`` alone where either holds a character of the mark itself (a path with '|'
    broke the message in two; a review)."""
    if any(c in cli + library for c in "|«»"):
        return cli
    return f"«{cli}|{library}»"


def set_hint(key: str, value: str) -> str:
    """The fix 'set KEY to VALUE' for a message: ``--set KEY=VALUE`` shell-quoted for the CLI (a review: the
    advice ``--set data.genre_separator=;`` ended the command at ';'), ``KEY='VALUE'`` for the library."""
    import shlex

    return marked(f"--set {shlex.quote(f'{key}={value}')}", f"{key}={value!r}")


def library_terms(text: str) -> str:
    return _MARK.sub(_library_form, text)


def cli_terms(text: str) -> str:
    return _MARK.sub(lambda m: m.group(1), text)


class TermsFilter(logging.Filter):
    """Renders the marks of a log record in CLI or library terms (installed on the ``embedrec`` logger)."""

    def __init__(self, cli: bool):
        super().__init__()
        self.render = cli_terms if cli else library_terms

    def filter(self, record: logging.LogRecord) -> bool:
        if "«" in str(record.msg):
            if getattr(record, "marks_only", False):  # the marks are the format's own: its arguments (a title, a
                record.msg = self.render(str(record.msg))  # file name) are shown as they are, never read as marks
            else:
                record.msg, record.args = self.render(record.getMessage()), None
        return True


class _Said:
    """A message written once in both terms («CLI|library»): str() in the library's, cli_message() in the CLI's."""

    exit_code = 1

    def __init__(self, message: object = "", *args):
        self.raw = str(message)
        super().__init__(library_terms(self.raw), *args)

    def cli_message(self) -> str:
        return cli_terms(self.raw)


class EmbedrecError(_Said, Exception):
    """Base class: a problem the user can fix. exit_code is what the CLI exits with. ConfigError, DataError and
    UsageError are also ValueErrors, NotFoundError a LookupError, so a generic ``except ValueError`` or ``except
    LookupError`` catches them as it would the standard library's (an API review)."""


_CONFIG_KEY = re.compile(r"config key '([^'\s]+)'")  # a message's key, as every config refusal names it
# a message that starts at a place in a file: 'ratings.csv:7: ...', or a Parquet file's 'r.parquet: row 7: ...'
_FILE_LINE = re.compile(r"^((?:[^:\n]|:(?! ))+?)(?:: row |:)(\d+): ")


class ConfigError(EmbedrecError, ValueError):
    """A bad config key, type or value (exit 2, like a usage error). ``key``: the config key it is about
    ('train.lr'), as given or as the message names it first ("config key 'train.lr': ..."); None where it names
    none (a YAML file that cannot be read)."""

    exit_code = 2

    def __init__(self, message: object = "", *args, key: str | None = None):
        super().__init__(message, *args)
        found = _CONFIG_KEY.search(self.raw) if key is None else None
        self.key = key if key is not None else found.group(1) if found else None


class DataError(EmbedrecError, ValueError):
    """Input data that cannot be read or is inconsistent (names the file and line where it can). ``path`` and
    ``line``: the file and its 1-based line (a Parquet file's row) where the message starts at one
    ('ratings.csv:7: ...', as data.parsing.RawData.where writes it) or the raiser gives them; else None."""

    def __init__(self, message: object = "", *args, path: str | None = None, line: int | None = None):
        super().__init__(message, *args)
        found = _FILE_LINE.match(cli_terms(self.raw)) if path is None else None
        self.path = path if path is not None else found.group(1) if found else None
        self.line = line if line is not None else int(found.group(2)) if found else None


class ArtifactError(EmbedrecError):
    """A run or dataset directory that is missing, broken, or does not match."""


class OutputRefused(ArtifactError):
    """An output path that cannot be written as chosen (a folder holding the user's own files, the current folder,
    a file where a folder goes, a mount point, a place inside a run or dataset): fixed by choosing another path on
    the command line, so exit 2 as a usage error; an ArtifactError in the library."""

    exit_code = 2


class OutputExists(OutputRefused, DataError):
    """An output already there where «--overwrite|overwrite=True» was not given: fixed on the command line, so exit 2
    as a usage error (as tune-dims' refused --write); an ArtifactError in the library (and a DataError, as ingest's
    was)."""

    exit_code = 2


class Busy(ArtifactError):
    """Another embedrec command holds the writer lock of the run, dataset or output this one would write: nothing
    is wrong with the input, so the CLI exits 75 (``EX_TEMPFAIL``, "try again later") and a script can tell it
    from bad data (exit 1) and retry: ``until embedrec train; [ $? -ne 75 ]; do sleep 5; done``."""

    exit_code = 75


class UsageError(EmbedrecError, ValueError):
    """A request that cannot be honoured as given (ambiguous title, conflicting options)."""

    exit_code = 2


class WarnedNote(str):
    """An ingest note (``RawData.notes``) said as a warning, not as information, so that -q keeps it: what was read
    leaves out something the file holds (a column of dates read as nothing, its times then none). Here, below
    data.ids and data.parsing, which both make them."""


class SkippedNote(WarnedNote):
    """A WarnedNote of the lines data.bad_lines=skip took out of a table (data.tables): said by every command that
    reads a ratings table so (update-users too, which says no other of ingest's notes)."""


class PositionError(UsageError, IndexError):
    """A position outside a result (``r[5]`` of two queries): a UsageError, and an IndexError as a sequence's is
    (a notebook review: code written for sequences, ``except IndexError``, did not catch it)."""


class NotFoundError(EmbedrecError, LookupError):
    """An unknown user or movie id; ``kind`` ('user' or 'movie'; 'title' for words no movie title holds) and ``id``
    say which, where known; ``ids``: every unknown id of the request (``id`` the first), [] where none is known."""

    def __init__(self, message: str = "", *, kind: str | None = None, id: object = None, ids=None):
        super().__init__(message)
        self.ids = list(ids) if ids is not None else [] if id is None else [id]
        self.kind, self.id = kind, id if id is not None or not self.ids else self.ids[0]


class TrainingError(EmbedrecError):
    """Training diverged or could not proceed."""


class Interrupted(_Said, KeyboardInterrupt):
    """Ctrl-C (exit 130), or SIGTERM or SIGHUP where a command takes it the same way (``terminated`` True,
    ``signum`` the signal's number, exit 128 + it: 143, 129; given as ``terminated=`` True for SIGTERM, or the
    number): work was saved where possible. A KeyboardInterrupt, not an Exception: a notebook's ``except Exception`` around
    a sweep of ``er.train`` calls does not swallow the user's Ctrl-C."""

    exit_code = 130

    def __init__(self, message: object = "", *args, terminated: bool = False, saved: bool = True, where: str = "",
                 kept: str = ""):
        super().__init__(message, *args)
        self.signum = 15 if terminated is True else int(terminated or 0)  # the signal's number, 0 for Ctrl-C
        self.terminated = bool(self.signum)
        self.saved = saved  # False: the interrupted fit had written no checkpoint (an earlier one may have)
        self.where = where  # what was under way ("training interrupted in epoch 3"), where the raiser says it
        self.kept = kept  # what was kept ("; the checkpoint of epoch 2 is in RUN/checkpoint.pt"), "" when nothing
        if self.signum:
            self.exit_code = 128 + self.signum


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP: ``signum``), raised where Ctrl-C raises KeyboardInterrupt by the handler ``embedrec train`` and ``tune-dims``
    install while they work (``cli.signals.sigterm_as_interrupt``), and in tune-dims' workers: the same way out (the
    last checkpoint kept, ``Interrupted``), said as terminated. The library installs no handler; a notebook may
    raise it from its own. SIGHUP (a terminal or SSH session that hangs up) is taken the same way."""

    def __init__(self, signum: int = 15):
        super().__init__()
        self.signum = int(signum)


def stop_signal(e: BaseException) -> int:
    """The number of the signal that stopped work as ``e`` says it: 0 for Ctrl-C (a plain KeyboardInterrupt), 15
    for SIGTERM, 1 for SIGHUP (``Terminated``, or an ``Interrupted`` that was terminated)."""
    if isinstance(e, (Terminated, Interrupted)):
        return e.signum
    return 0


def how_stopped(signum: int) -> str:
    """'interrupted' (Ctrl-C, 0), 'terminated (SIGTERM)', 'hung up (SIGHUP)': the words of a stop's message."""
    return "interrupted" if not signum else "hung up (SIGHUP)" if signum == 1 else "terminated (SIGTERM)"


def signal_name(signum: int) -> str:
    """'SIGINT' (0 or 2: Ctrl-C), 'SIGTERM', 'SIGHUP'."""
    return {0: "SIGINT", 1: "SIGHUP", 2: "SIGINT"}.get(signum, "SIGTERM")


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name when empty), at most ``limit`` chars.

    Some libraries raise exceptions with an empty message (torch on a 0-byte file): ``str(e).splitlines()[0]``
    would itself raise IndexError inside an error handler.
    """
    lines = [x for x in str(e).splitlines() if x.strip()]
    text = lines[0].strip() if lines else type(e).__name__
    return shorten(text, limit)


# what an echoed value never sends raw to a terminal: control characters (C0, DEL, C1) and the bidirectional
# controls that reorder what follows them on the line (U+202E shows 'evil' as 'live'; session 52's red team)
UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def sh_join(args: list) -> str:
    """``shlex.join`` of ``args``, each holding one of UNSAFE_CHARS written in ANSI-C quotes (``$'runs/a\\nb'``,
    bash's and zsh's) with its escapes, so the command pastes back as the path it names (a red team: a run folder
    named with a line break was shown 'runs/a\\nb' in single quotes, another path)."""
    return " ".join(sh_quote(str(a)) for a in args)


def sh_quote(a: str) -> str:
    """``shlex.quote``, or ANSI-C quotes for an argument holding one of UNSAFE_CHARS (:func:`sh_join`'s word)."""
    import shlex

    if not UNSAFE_CHARS.search(a):
        return shlex.quote(a)
    body = a.replace("\\", "\\\\").replace("'", "\\'")
    # each character as its UTF-8 bytes, \\xHH each: bash reads \\x85 as the byte 0x85, and \\u0085 only in a
    # UTF-8 locale (a review: C's printed it as written)
    return "$'" + UNSAFE_CHARS.sub(lambda m: "".join(f"\\x{b:02x}" for b in m.group().encode("utf-8")),
                                   body) + "'"


def shorten(text: object, limit: int = 80) -> str:
    """``text`` as a string of at most ``limit`` characters (the middle elided), for echoing user values; each of
    UNSAFE_CHARS written as Python escapes it ('\\x1b', '\\u202e')."""
    s = str(text)
    if UNSAFE_CHARS.search(s):  # a NUL, an escape byte or a bidi control from a file: shown, never emitted raw
        s = UNSAFE_CHARS.sub(lambda m: repr(m.group())[1:-1], s)
    if len(s) <= limit:
        return s
    keep = max(limit - 5, 2)
    return f"{s[:keep // 2 + keep % 2]}[...]{s[-(keep // 2):]}" if keep // 2 else s[:limit]
