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
    """An unknown user or movie id."""


class TrainingError(EmbedrecError):
    """Training diverged or could not proceed."""


class Interrupted(EmbedrecError):
    """Ctrl-C: work was saved where possible."""

    exit_code = 130
