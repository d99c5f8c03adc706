"""``embedrec predict --pairs``' text: lines of 'user,movie[,more...]' (CSV, TSV or ';'-separated, an optional
header) asked of a :class:`~embedrec.models.Model` and answered as rows, the input's other columns passed
through."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from embedrec.data.ids import is_integer_text, is_number_text, parse_id
from embedrec.data.rowlines import separator
from embedrec.errors import DataError, NotFoundError, shorten
from embedrec.serve.recommender import LOGGED_UNKNOWN
from embedrec.serve.stream import (
    HEADER_MOVIE_WORDS,
    HEADER_USER_WORDS,
    batches,
    column_name_like,
    words_are_ids,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.models import Model

log = logging.getLogger("embedrec")


def _unique(names: list[str]) -> list[str]:
    """Column names made unique in order: a repeated name gets _2, _3, ... (a dict row would keep only one)."""
    seen: dict[str, int] = {}
    out = []
    for c in names:
        seen[c] = seen.get(c, 0) + 1
        out.append(c if seen[c] == 1 else f"{c}_{seen[c]}")
    return out


def _number(text: str):
    """A passed-through field as a number where it is written as Python writes that number ('3', '-2', '3.5'),
    so JSON carries 3 and not "3"; anything else ('007', '3.50', '1e3', 'NaN', '') stays the text it was, so
    CSV and TSV rows are unchanged."""
    try:
        v = int(text) if is_integer_text(text) else float(text)
    except ValueError:
        return text
    return v if repr(v) == text and (not isinstance(v, float) or v == v and abs(v) != float("inf")) else text


BATCH = 4096  # pairs answered at a time: rows come out as the input is read (recommend --users' batch)


def predict_lines(model: Model, lines: Iterable[str], name: str = "<input>", strict: bool = False,
                  batch: int = BATCH, on_batch=None) -> tuple[list[str], Iterator[dict]]:
    """``embedrec predict --pairs``: 'user,movie[,more...]' lines (comma-separated with CSV quoting as Python's csv
    module reads it, tab-separated as they are, each line its own, or semicolon-separated, as the first line is:
    :func:`separator`; an optional header) as (columns, rows).
    A header names the user and movie columns (user_id/user/uid ..., movie_id/movie/item/mid ...), in any order;
    without one they are the first two.
    Further input columns pass through between movie_id and fallback, named as in the header (col3, col4, ...
    without one). An unknown id is answered from the fallback (strict: NotFoundError), the first few named on
    stderr and the rest counted; a field that cannot be an id of this model (text where ids are numbers, an
    empty one) is a DataError naming its line. The rows come in batches of ``batch`` pairs as the lines are
    read (a stream's answers while it goes on), ``on_batch()`` called once a batch's rows were taken (the CLI
    flushes stdout there); ``strict`` reads and checks every line before the first row."""
    from embedrec.argcheck import flag

    strict = flag(strict, "strict", "predict_lines")
    e = model.engine
    cols, names = (0, 1), []
    at = [cols]  # the user and movie fields, once a header has named them: a '#' line's user is looked up there

    def known(parts: list[str]) -> bool:
        """A '#' line is a pair, not a comment, where its first field (the one the '#' begins) is a user or movie
        id the model knows, in that column (a review: '#302,196' under a movie_id,user_id header was a pair)."""
        user, movie = at[0]
        if 0 not in (user, movie):  # a passed-through column comes first: '#...' is no id
            return False
        rows = e.user_rows if user == 0 else e.movie_rows
        return bool((rows([parts[0]])[0] >= 0).all())

    parsed = _parsed(lines, name, known)
    head = next(parsed, None)
    if head is not None and (header := _header(e, head[1], f"{name}:{head[0]}")) is not None:
        cols, names = header
        at[0] = cols
        head = None
    width = len(head[1]) if head is not None else len(names) + 2  # every line has the first line's fields
    names = (names + [f"col{i + 3}" for i in range(len(names), width - 2)])[:max(width - 2, len(names))]
    columns = ["user_id", "movie_id", *names, "fallback", "score"]
    items = itertools.chain([] if head is None else [head], parsed)
    shown = [0]
    ready = getattr(lines, "ready", None)  # the CLI's input: a batch ends where a pipe or a terminal pauses
    answers = (answer for i, chunk in enumerate(batches(items, batch, ready if callable(ready) else None))
               for answer in _answer(model, chunk, cols, name, strict, shown, i == 0))
    if strict:  # every line read and checked before the first row (an unknown id fails with nothing printed)
        answers = iter(list(answers))
    return columns, _rows(answers, names, shown, on_batch)


def _parsed(lines: Iterable[str], name: str, known=None) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each line that holds a pair (or a header): CSV with its quoting, TSV where the
    first line has a tab, or semicolon-separated with CSV's quoting where it has more semicolons than commas
    (:func:`separator`); blank lines skipped, and '#' lines as comments unless ``known(fields)`` (a text user id
    may start with '#': a red team); every line as wide as the first. The fields as read, spaces kept: the ids are
    stripped where they are read, and the other columns pass through as they are (a review: stripped too)."""
    import csv

    width = first = 0  # the fields of the first line (a header or data), which every line must have
    sep = None  # the first line's separator (separator()): a tab splits every line at each tab (TSV input)
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")  # not tabs nor spaces: a TSV line's empty last field is a field
        if n == 1:
            line = line.lstrip("\ufeff")  # a UTF-8 byte-order mark (Excel's CSV) is not part of the id
        if not line.strip():
            continue
        if line.lstrip(" ").startswith("#"):  # a comment, unless it is a pair of a user id that starts with '#'
            try:
                parts = _fields(line, separator(line) if sep is None else sep, width)
            except csv.Error:
                continue
            if known is None or len(parts) < 2 or width and len(parts) != width or not known(parts):
                continue
        if sep is None:
            sep = separator(line)
        parts = None
        if "\t" not in line or sep != "\t":  # CSV, with its quoting ("196","242" as pandas and R write it)
            if '"' not in line and "\0" not in line and "\r" not in line and "\n" not in line:  # no quoting: split,
                parts = line.split(sep if sep == ";" else ",")  # as csv.reader would (most of a pair file's lines)
            else:
                try:
                    parts = next(csv.reader([line], delimiter=sep if sep == ";" else ","))
                except csv.Error as err:  # a carriage return inside a field, a NUL byte
                    raise DataError(f"{name}:{n}: cannot read the line as CSV ({err}); fix that line") from None
            if "\t" in line and len(parts) != width:  # in CSV input, a tab-separated line (each line its own);
                parts = None  # one with the CSV lines' fields keeps a quoted tab in its field
        if parts is None:  # TSV: the fields as they are (TSV seldom quotes)
            parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(f"{name}:{n}: expected 'user,movie' (comma-, tab- or semicolon-separated, as the first "
                            "line is); fix that line")
        if not width:
            width, first = len(parts), n
        elif len(parts) != width:  # a ragged line would shift or blank the columns passed through
            raise DataError(f"{name}:{n}: expected {width} fields (as on line {first}), found {len(parts)}; give every "
                            "line the same fields")
        yield n, parts


def _fields(line: str, sep: str, width: int) -> list[str]:
    """A line's fields as _parsed splits them under the input's separator ``sep`` (csv.Error where CSV cannot
    read it)."""
    import csv

    if "\t" not in line or sep != "\t":
        parts = next(csv.reader([line], delimiter=sep if sep == ";" else ","))
        if "\t" not in line or len(parts) == width:
            return parts
    return line.split("\t")


OUTPUT_WORDS = frozenset(("rank", "score", "title", "year", "genres", "fallback", "because", "both_rated", "rated"))
# columns of embedrec's own output that are no id: never taken for the side a header does not name


def _header(e, parts: list[str], where: str = "line 1") -> tuple[tuple[int, int], list[str]] | None:
    """((user field, movie field), the other columns' names) when the first line is a header, else None: it names
    its columns (both known column words), or neither of its first two fields is an id (a typo'd id such as '19x'
    beside a good movie id is a data line, refused or answered later). A header naming one side alone is a
    DataError (``where``: its file:line) where the other side's usual field is taken or no id column."""
    parts = [p.strip() for p in parts]  # names, and the ids of a first line that is a pair
    low = [p.lower() for p in parts]
    named = (next((i for i, p in enumerate(low) if p in HEADER_USER_WORDS), None),
             next((i for i, p in enumerate(low) if p in HEADER_MOVIE_WORDS), None))
    (u,), (up,) = e.user_rows([parts[0]])
    (m,), (mp,) = e.movie_rows([parts[1]])
    # not an id at all; an integer beyond the id type (99999999999999999999999) is an unknown id
    # (nor is a number: '196.0,242.0' alone was taken for a header and answered nothing; a red team)
    u_word, m_word = (p is None and not is_integer_text(t) and not is_number_text(t) for p, t in ((up, parts[0]),
                                                                                            (mp, parts[1])))
    # a model with text ids: any word may be an id, so a first line neither of whose ids it knows, each a name of
    # letters ('customer,item,stars': a user's own column names, a review) or, on a side whose ids are numbers, not
    # an id at all (text users, integer movies: a review), is a header too, and said so
    # A side tells it is a header where its field is a name on a model whose ids there are not such words, or no
    # id at all; where the model's own ids are words, a name says nothing on its own ('newbie,zzzzz' is a pair
    # to answer; 'customer,item' on word users and integer movies is a header, 'item' being no movie id: reviews)
    named_like = [row < 0 and parsed is not None and column_name_like(t) for row, parsed, t in ((u, up, parts[0]),
                                                                                                (m, mp, parts[1]))]
    worded = [w and not words_are_ids(ids) for w, ids in zip(named_like, (e.user_ids, e.movie_ids))]
    no_id = (u_word, m_word)
    texts = any(named_like) and all(n or x for n, x in zip(named_like, no_id)) and \
        any(w or x for w, x in zip(worded, no_id))
    if not (None not in named or (u < 0 or m < 0) and ((u_word and m_word) or low[0] in HEADER_USER_WORDS)
            or texts):
        return None
    if texts and None in named:
        log.warning("line 1 ('%s') is taken for a header: neither '%s' nor '%s' is an id of this model (if it is "
                    "a pair, put a header line 'user_id,movie_id' first)",
                    shorten(",".join(parts)), shorten(parts[0], 40), shorten(parts[1], 40))
    if None in named and named != (None, None):  # one side named: the other is taken from its usual field only
        # where that is no column of embedrec's own output (a review: recommend --movie's 'movie_id_query,rank,
        # movie_id,...' piped in was scored as user 50 and movie 1, its rank, with no word)
        side, other = (0, 1) if named[0] is not None else (1, 0)
        default = parts[other] if other < len(parts) else ""
        if named[side] != side or default.lower() in OUTPUT_WORDS or default.lower().endswith("_query"):
            have, lack = (("user", "movie"), ("movie", "user"))[side]
            words = HEADER_USER_WORDS if lack == "user" else HEADER_MOVIE_WORDS
            raise DataError(f"{where}: the header names the {have} column ('{shorten(parts[named[side]], 40)}', field "
                            f"{named[side] + 1}) but no {lack} column; name that column '{words[0]}', or give "
                            "lines that start with a user and a movie (each line is scored as one user and one movie)")
    cols = named if None not in named else (0, 1)
    rest = [c for i, c in enumerate(parts) if i not in cols]
    return cols, _unique([c if c not in ("user_id", "movie_id", "score", "fallback") else f"input_{c}" for c in rest])


def _rows(answers: Iterator[tuple], names: list[str], shown: list, on_batch=None) -> Iterator[dict]:
    """The rows of each batch's (Predictions, passed-through fields) as they are answered; after the last, how
    many pairs had an unknown id (``shown``, counted by _answer over every batch)."""
    for pred, extras in answers:
        for r, x in zip(pred.to_rows(), extras):
            yield {"user_id": r["user_id"], "movie_id": r["movie_id"], **dict(zip(names, x)),
                   "fallback": r["fallback"], "score": r["score"]}
        if on_batch is not None:  # the batch's rows were taken (written): before the next lines are waited for
            on_batch()
    if shown[0] > LOGGED_UNKNOWN:
        log.warning("%s pairs with an unknown id in all (the first %d are named above; see the fallback column)",
                    f"{shown[0]:,}", LOGGED_UNKNOWN)


def _answer(model: Model, chunk: list, cols, name: str, strict: bool, shown: list, first: bool):
    """Yields (Predictions, passed-through fields) of one batch of (line number, fields); a field no id of this
    model can be is a DataError naming its line (on the input's first pair, a header may be what is missing:
    ``first``, the batch that holds it), raised after the lines before it are yielded (a red team: the whole
    batch's rows were lost, so the rows written depended on where a pipe paused); an unknown id is named (the
    first LOGGED_UNKNOWN, ``shown`` counting them over batches), or with ``strict`` a NotFoundError."""
    e = model.engine
    where = [n for n, _ in chunk]
    pairs = [(parts[cols[0]].strip(), parts[cols[1]].strip()) for _, parts in chunk]  # the other fields as read
    extras = [[_number(c) for i, c in enumerate(parts) if i not in cols] for _, parts in chunk]
    from embedrec.models_scores import ONE_PAIR, predict

    pred = predict(model, pairs, ONE_PAIR, missing="fallback", uid=ONE_PAIR, iid=ONE_PAIR, r_ui=None, words=False)
    # (a line's id in words is refused below, by its line)
    integer = {"user": e.user_ids.dtype.kind in "iu", "movie": e.movie_ids.dtype.kind in "iu"}
    for i, f in enumerate(pred.fallback):  # a field no id of this model can be: the first such line, not a fallback
        sides = (("user", 0),) * (f in ("user_unknown", "both")) + (("movie", 1),) * (f in ("movie_unknown", "both"))
        for kind, side in sides:
            t = pairs[i][side]
            if t == "" or integer[kind] and not is_integer_text(t):
                what = f"the {kind} id is empty" if t == "" else \
                    f"'{shorten(t)}' is not a {kind} id of this model (its ids are integers)"
                if i:
                    yield from _answer(model, chunk[:i], cols, name, strict, shown, first)
                raise DataError(f"{name}:{where[i]}: {what}; fix that line" +
                                (", or put a header line of column names first" if first and i == 0 and t != ""
                                 else ""))
    def written(kind: str, t: str) -> bool:  # '01' where ids are integers: no id of this model (said so)
        return not integer[kind] or parse_id(t, np.dtype(np.int64)) is not None or not is_integer_text(t)

    # users of the dataset without a trained vector, said as recommend says them (a review: "not in the training
    # data"): the batch's unknown users looked up at once
    no_user = [i for i, f in enumerate(pred.fallback) if f in ("user_unknown", "both")]
    vectorless = set(np.asarray(no_user)[e.catalogue.users.vectorless_many([pairs[i][0] for i in no_user])].tolist())
    for i, (n, (u, m), f) in enumerate(zip(where, pairs, pred.fallback)):
        if f == "none":
            continue
        sides = [(k, t) for k, t, hit in (("user", u, f in ("user_unknown", "both")),
                                          ("movie", m, f in ("movie_unknown", "both"))) if hit]
        if i not in vectorless and all(written(k, t) for k, t in sides):
            what = (f"user '{shorten(u, 60)}' and movie '{shorten(m, 60)}' are" if f == "both" else
                    f"user '{shorten(u)}' is" if f == "user_unknown" else f"movie '{shorten(m)}' is") + \
                " not in the training data"
            if strict or shown[0] < LOGGED_UNKNOWN:  # an id but for case or leading zeros (a red team: not said)
                what += "".join((e.catalogue.users if k == "user" else e.catalogue.movies).meant(t.strip())
                                for k, t in sides)
        else:  # '07' where ids are integers: no id of this model, said with how its ids are written (a review)
            what = " and ".join((e.catalogue.users if k == "user" else e.catalogue.movies).unknown_text(t.strip())
                                if not written(k, t) or k == "user" and i in vectorless
                                else f"{k} '{shorten(t)}' is not in the training data" for k, t in sides)
        if strict:
            said = e.factors.fallback_said(f)  # what it gets: a ranking model's may be no score (a review)
            said = f"it gets {said}" if said.startswith("no score") else f"it is {said}"
            raise NotFoundError(f"{name}:{n}: {what}; without «--strict|strict=True» {said} (the fallback column "
                                "says which)")
        shown[0] += 1
        if shown[0] <= LOGGED_UNKNOWN:
            # worded from what the fallback gives (a review: "no score" over a bpr run's movie-bias score)
            log.warning("%s:%d: %s; %s (fallback %s)", name, n, what, e.factors.fallback_said(f), f)
    yield pred, extras
