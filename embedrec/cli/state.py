"""The command's state: its global options as given and what it has written."""

from __future__ import annotations


class _State:
    traceback = False
    quiet = False
    g_quiet = g_verbose = g_traceback = False  # -q/-v/--traceback given before the subcommand
    config_path = None  # -c and --set as given, to repeat them in hints (e.g. the exact resume command)
    overrides: tuple = ()
    process = False  # run() as the process's own command (not CliRunner, not a notebook): it leaves after it
    written: list = []  # what the command has published before it reports on stdout (wrote())
    unwritten: list = []  # what the command left as it was, with nothing to write (wrote_nothing())
    stdout_start: int | None = None  # where the rows begin in stdout, a regular file (run(): output.stdout_offset)
