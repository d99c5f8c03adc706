"""The click layer: one module per command (parse options, call one library function, write rows).

``app.py`` holds the group, logging and the single place where errors become one stderr line and an exit code;
``options.py`` the options and input types commands share. Importing this package registers every command on
``main``; each command imports the library lazily, so ``embedrec recommend`` loads no torch or pandas.
"""

from embedrec.cli import config, evaluate, export, index, ingest, predict, recommend, train, tune, verify  # noqa: F401
from embedrec.cli.app import main, progress_enabled

__all__ = ["main", "progress_enabled"]
