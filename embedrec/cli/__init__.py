"""The click layer: one module per command (parse options, call one library function, write rows).

``app.py`` holds the group, logging and the single place where errors become one stderr line and an exit code;
``options.py`` the options and input types commands share. Importing this package registers every command on
``main``; each command imports the library lazily, so ``embedrec recommend`` loads no torch or pandas.
"""

from embedrec.cli import config, evaluate, export, index, ingest, predict, recommend, train, tune, verify  # noqa: F401
from embedrec.cli.app import main, progress_enabled

__all__ = ["main", "progress_enabled", "run"]


def run() -> None:
    """The `embedrec` command (console script and ``python -m embedrec``): ``main`` as a process.

    A failed command has already said what is wrong in one line; it then leaves at once (``os._exit``) instead
    of through the interpreter's shutdown, where a native library's thread pool torn down with the process can
    abort it ("terminate called without an active exception", exit code -6 instead of 1: seen once in 216
    damaged-dataset `evaluate` runs). CliRunner and notebooks call ``main`` and are not affected."""
    import os
    import sys

    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code == 0:
            raise
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
