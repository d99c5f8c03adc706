"""Checks of a public function's arguments that every layer shares (the library's flags: ``overwrite=``,
``progress=``, ``resume=``, ...; paths), and those the models of the public API (``models.Model``,
``trained.TrainedModel``) check alike: a list, a genre or genres, one movie id, one of a few choices, a whole
number, a path to write, a device. Each refusal is a ``UsageError`` naming the argument and how to give it;
``read_only`` is how a model hands out its own arrays. Imports nothing heavy at import: numpy and the id rules
where a check needs them."""

import contextlib
import re
import unicodedata

from embedrec.errors import ConfigError, UsageError, marked, shorten


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
    return f"{marked(_CLI_NAMES.get(name, name), f'{call}: {name}')} {why}; give a valid path"


# ----------------------------------------------------------------------------- the models' arguments
def list_arg(values, call: str) -> list:
    """A list of ``values`` (any iterable), or UsageError naming ``call``."""
    try:
        return list(values)
    except TypeError:
        raise UsageError(f"{call}: expected a list, not {type(values).__name__}") from None


def texts_arg(value) -> tuple[str, ...] | None:
    """``value`` as a tuple of texts: one text ('Comedy') as one, an iterable of texts (['Comedy', 'Drama']) as
    given; None where it is neither (not iterable, or an item that is no text: a 2-D array's rows, which met ``in``
    as numpy's ambiguous truth value), for the caller's own message (``genres=``, ``splits=``)."""
    if isinstance(value, str):
        return (value,)
    try:
        out = tuple(value)
    except TypeError:
        return None
    return out if all(isinstance(v, str) for v in out) else None


def genres_arg(genres) -> tuple:
    """``genres=``: one genre name ('Comedy') or many (['Comedy', 'Drama'])."""
    if genres is None:
        return ()
    out = texts_arg(genres)
    if out is None:
        raise UsageError(f"genres={shorten(repr(genres), 40)}: give a genre name or a list of them, e.g. "
                         "genres='Comedy' or genres=['Comedy', 'Drama']")
    return out


def genre_key(name) -> str:
    """A genre's name as genres are matched, in a movies file and in a filter: lower case, the letters and digits
    of any script only ('Sci-Fi' -> 'scifi', 'Драма' -> 'драма'; an ASCII-only key dropped every genre written in
    another script at ingest, and matched each such filter to one of them: a test found it)."""
    # NFKC first: a movies file written in decomposed form (macOS: 'e' and a combining accent) keys as a filter
    # typed composed does (a code review)
    return re.sub(r"[\W_]", "", unicodedata.normalize("NFKC", str(name)).strip().lower())


def movie_arg(value, what: str, example: str = "50"):
    """One id (a number or a text), not a list of them, a flag or a missing value (None, NaN)."""
    import numpy as np

    from embedrec.data.ids import not_an_id

    why = not_an_id(value)
    if why is None and not isinstance(value, (str, bytes, int, np.integer, float, np.floating)):
        why = f"a {type(value).__name__}"
    if why is None and isinstance(value, str) and not value.strip():  # a red team: '' matched all 1,632 movies
        why = "empty"
    if why:
        thing = "a movie id or title words" if what == "find_movie" else "one movie id"  # a red team: find_movie('')
        raise UsageError(f"{what}: give {thing}, e.g. {what}({example}), not {shorten(repr(value), 40)} ({why})")
    return value


def choice_arg(value: str, allowed: tuple, name: str) -> None:
    """One of the texts ``allowed``; anything else a UsageError naming ``name``, a value that is no text too (a red
    team: a numpy array's ``in`` was numpy's 'truth value of an array ... is ambiguous' ValueError)."""
    if not isinstance(value, str) or value not in allowed:
        raise UsageError(f"{name}={shorten(repr(value), 40)}: expected one of {', '.join(map(repr, allowed))}")


def count_arg(value, name: str, least: int) -> int:
    """A whole-number argument of at least ``least`` (a flag or a float is refused, not read as a number)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise UsageError(f"{name}={shorten(repr(value), 40)}: give a whole number >= {least}")
    return int(value)


def read_only(a):
    """A read-only view of the array ``a`` (None stays None): what a Model gives out of its own arrays."""
    import numpy as np

    if a is None or not isinstance(a, np.ndarray):
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def path_arg(value, call: str, name: str) -> None:
    """A file or folder to write: a str or os.PathLike."""
    import os

    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise UsageError(f"{call}: {name} must be a path (str or pathlib.Path), not {shorten(repr(value), 40)}")
    why = path_problem(value)
    if why:
        raise UsageError(path_message(call, name, why))


def device_arg(device) -> None:
    """``device=``: None, a train.device value ('auto', 'cpu', 'cuda', 'cuda:1') or a torch.device."""
    text = str(device) if type(device).__name__ == "device" else device
    if device is not None and not (isinstance(text, str) and (text in ("auto", "cpu", "cuda")
                                                              or text.startswith("cuda:"))):
        raise UsageError(f"device={shorten(repr(device), 40)}: give 'auto', 'cpu' or 'cuda' (as train.device), or None")


@contextlib.contextmanager
def device_named(device, call: str):
    """The device asked for in ``call(device=...)`` named as such, not as the config key train.device (a review:
    evaluate's, then a red team: topk_all's 'cuda' on a machine without one named train.device)."""
    try:
        yield
    except ConfigError as e:
        if device is None or "train.device" not in str(e):
            raise
        from embedrec.errors import marked

        library = (str(e).replace("config key 'train.device': ", f"{call}(device={device!r}): ")
                   .replace("use train.device='cpu' or auto", "use device='cpu' or None"))
        raise UsageError(marked(e.cli_message(), library)) from None  # the CLI's own words (a review)

