"""embedrec verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, main
from embedrec.cli.options import RUN, PathParam, report

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
# not readable=True: a folder it may not read is said by verify as every command says a read refused, not as a usage
# error (exit 2, 'Directory ... is not readable')
@click.argument("path", required=False, type=PathParam(file_okay=False, readable=False))
@RUN
@common
def verify(cfg: Config, path, run_dir):
    """Check every file of a run, a prepared dataset or an export folder against the SHA-256 recorded for it.

    Commands check the files they open as they open them; files above 64 MiB are rehashed only when they
    were written, copied or replaced since they were hashed (their inode, mtime or ctime moved); verify
    reads everything. PATH is a run directory (default: run.dir), one of its artifacts-* folders, a
    dataset directory, or a folder embedrec export wrote (the files its .embedrec-export.json lists).

    \b
    Examples:
      embedrec verify
      embedrec verify runs/ml-25m                  # or: embedrec verify --run runs/ml-25m
      embedrec verify data/prepared/ml-100k
    """
    from embedrec import api
    from embedrec.errors import UsageError

    if path and run_dir:
        raise UsageError(f"give PATH or --run, not both ('{path}', '{run_dir}')")
    info = api.verify_files(path or run_dir or None, cfg)
    # one line whatever the path holds (a red team: a line break in a folder's name split it)
    shown = str(info["path"]).translate(_CONTROLS)
    report(f"ok: {info['what']} '{shown}': {info['files']} files ({info['bytes']:,} bytes) match their checksums")


# '\n', '\t', '\x1b', '\x9b', '\u2028': as Python writes them (C0, DEL, C1 and the Unicode line breaks)
_CONTROLS = {c: repr(chr(c))[1:-1] for c in (*range(32), *range(127, 160), 0x2028, 0x2029)}
