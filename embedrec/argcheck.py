"""Checks of a public function's arguments that every layer shares (the library's flags: ``overwrite=``,
``progress=``, ``resume=``, ...). Imports nothing heavy: numpy only when a value is not a plain bool."""

from embedrec.errors import UsageError, shorten


def flag(value, name: str, call: str | None = None) -> bool:
    """A True/False argument: anything else (None, 'no', 0) is a UsageError, not read by its truth (a review:
    ``er.ingest(..., overwrite="no")`` replaced a dataset). A numpy bool is taken as the bool it is. ``call``: the
    function named first in the message (``ingest: overwrite must be ...``)."""
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy":  # np.bool_ (a mask's element) without importing numpy for a bool
        import numpy as np

        if isinstance(value, np.bool_):
            return bool(value)
    where = f"{call}: " if call else ""
    raise UsageError(f"{where}{name} must be True or False, not {shorten(repr(value), 40)}")


def path_problem(value) -> str | None:
    """What no file system takes in a path argument, before a call meets it as a bare ValueError or OSError (a red
    team: er.open('a\\x00b'), a 300-character file name): a NUL character, or a name longer than 255 bytes."""
    import os

    text = os.fsdecode(value) if isinstance(value, (str, bytes, os.PathLike)) else None
    if text is None:
        return None
    if "\x00" in text:
        return "holds a NUL character"
    # a red team: '--output=~/z' made a folder named '~' (no shell expands ~ after '='); a folder '~x' that is
    # there already is the user's to name
    first = text.split(os.sep)[0]  # '~' itself never (a leftover of that bug would turn the check off)
    if text.startswith("~") and (first == "~" or not os.path.lexists(first)):
        return (f"starts with '~' ('{text[:40]}'), which the shell did not expand (it does not after '=' or in "
                "quotes) and embedrec does not either: write the path out, e.g. $HOME/...")
    parts = text.split(os.sep) if not os.altsep else text.replace(os.altsep, os.sep).split(os.sep)
    long = next((part for part in parts
                 if len(part.encode("utf-8", "surrogateescape")) > 255), None)
    if long is not None:
        return f"has a name longer than 255 bytes ('{long[:20]}...'), which file systems refuse"
    return None


_CLI_NAMES = {"run_dir": "--run", "output": "-o/--output", "out": "-o/--output", "path": "the output file"}


def path_message(call: str, name: str, why: str) -> str:
    """:func:`path_problem`'s line in both terms: the option on the command line, ``call: name`` in Python (a
    review: the CLI said 'open: run_dir')."""
    from embedrec.errors import marked

    return f"{marked(_CLI_NAMES.get(name, name), f'{call}: {name}')} {why}; give a valid path"

