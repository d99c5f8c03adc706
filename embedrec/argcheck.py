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
