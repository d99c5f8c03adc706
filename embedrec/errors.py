"""Typed errors. The library raises these; the CLI turns them into one line on stderr and an exit code."""


class EmbedrecError(Exception):
    """Base class: a problem the user can fix. exit_code is what the CLI exits with."""

    exit_code = 1


class ConfigError(EmbedrecError):
    """A bad config key, type or value (exit 2, like a usage error)."""

    exit_code = 2


class DataError(EmbedrecError):
    """Input data that cannot be read or is inconsistent (names the file and line where it can)."""


class ArtifactError(EmbedrecError):
    """A run or dataset directory that is missing, broken, or does not match."""


class UsageError(EmbedrecError):
    """A request that cannot be honoured as given (ambiguous title, conflicting options)."""

    exit_code = 2


class NotFoundError(EmbedrecError):
    """An unknown user or movie id; ``kind`` ('user' or 'movie') and ``id`` say which, where known."""

    def __init__(self, message: str = "", *, kind: str | None = None, id: object = None):
        super().__init__(message)
        self.kind, self.id = kind, id


class TrainingError(EmbedrecError):
    """Training diverged or could not proceed."""


class Interrupted(EmbedrecError):
    """Ctrl-C: work was saved where possible."""

    exit_code = 130


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name when empty), at most ``limit`` chars.

    Some libraries raise exceptions with an empty message (torch on a 0-byte file): ``str(e).splitlines()[0]``
    would itself raise IndexError inside an error handler.
    """
    lines = [x for x in str(e).splitlines() if x.strip()]
    text = lines[0].strip() if lines else type(e).__name__
    return shorten(text, limit)


def shorten(text: object, limit: int = 80) -> str:
    """``text`` as a string of at most ``limit`` characters (the middle elided), for echoing user values."""
    s = str(text)
    if len(s) <= limit:
        return s
    keep = max(limit - 5, 2)
    return f"{s[:keep // 2 + keep % 2]}[...]{s[-(keep // 2):]}" if keep // 2 else s[:limit]
