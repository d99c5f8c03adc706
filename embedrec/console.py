"""The ``embedrec`` console script (and ``python -m embedrec``): ``cli.run`` once the CLI's modules are in.

A Ctrl-C while they are still being imported (click and every command's module: the first ~0.1 s of the
process) leaves with exit 130 and the one line a Ctrl-C later gives, not Python's traceback; nothing has been
read or written by then. Only the interpreter's own start-up, before this module runs, is left to Python.
"""

import sys


def main() -> None:
    try:
        from embedrec.cli import run
    except KeyboardInterrupt:
        try:
            sys.stderr.write("interrupted: nothing half-written was left behind\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        raise SystemExit(130) from None
    run()
