"""``embedrec predict --pairs``' text: lines of 'user,movie[,more...]' (CSV or TSV, an optional header) asked
of a :class:`~embedrec.models.Model` and answered as rows, the input's other columns passed through."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from embedrec.data.ids import is_integer_text
from embedrec.errors import NotFoundError, shorten
from embedrec.serve.recommender import LOGGED_UNKNOWN

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


def predict_lines(model: Model, lines: Iterable[str], name: str = "<input>", strict: bool = False
                  ) -> tuple[list[str], Iterator[dict]]:
    """``embedrec predict --pairs``: 'user,movie[,more...]' lines (comma-separated with CSV quoting as Python's csv
    module reads it, or tab-separated as they are, each line its own; an optional header) as (columns, rows).
    A header names the user and movie columns (user_id/user/uid ..., movie_id/movie/item/mid ...), in any order;
    without one they are the first two.
    Further input columns pass through between movie_id and fallback, named as in the header (col3, col4, ...
    without one). An unknown id is answered from the fallback (strict: NotFoundError), the first few named on
    stderr and the rest counted; a field that cannot be an id of this model (text where ids are numbers, an
    empty one) is a DataError naming its line."""
    import csv

    from embedrec.errors import DataError
    from embedrec.serve.stream import HEADER_MOVIE_WORDS, HEADER_USER_WORDS

    e = model.engine
    pairs, extras, where = [], [], []
    names: list[str] = []
    cols = (0, 1)  # the user's and the movie's field
    width = first = 0  # the fields of the first line (a header or data), which every line must have
    tsv = None  # whether the first line has a tab: then every tab splits (TSV input)
    for n, line in enumerate(lines, 1):
        line = line.strip(" \r\n")  # not tabs: a TSV line's empty last field is a field
        if n == 1:
            line = line.lstrip("\ufeff").strip(" ")  # a UTF-8 byte-order mark (Excel's CSV) is not part of the id
        if not line.strip() or line.startswith("#"):
            continue
        if tsv is None:
            tsv = "\t" in line
        parts = None
        if "\t" not in line or not tsv:  # CSV, with its quoting ("196","242" as pandas and R write it)
            try:
                parts = [p.strip() for p in next(csv.reader([line]))]
            except csv.Error as err:  # a carriage return inside a field, a NUL byte
                raise DataError(f"{name}:{n}: cannot read the line as CSV ({err}); fix that line") from None
            if "\t" in line and len(parts) != width:  # in CSV input, a tab-separated line (each line its own);
                parts = None  # one with the CSV lines' fields keeps a quoted tab in its field
        if parts is None:  # TSV: the fields as they are (TSV seldom quotes)
            parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 2:
            raise DataError(f"{name}:{n}: expected 'user,movie' (comma- or tab-separated); fix that line")
        if not width:
            width, first = len(parts), n
        elif len(parts) != width:  # a ragged line would shift or blank the columns passed through
            raise DataError(f"{name}:{n}: expected {width} fields (as on line {first}), found {len(parts)}; give every "
                            "line the same fields")
        if n == first and pairs == [] and not names:
            low = [p.lower() for p in parts]
            named = (next((i for i, p in enumerate(low) if p in HEADER_USER_WORDS), None),
                     next((i for i, p in enumerate(low) if p in HEADER_MOVIE_WORDS), None))
            (u,), (up,) = e.user_rows([parts[0]])
            (m,), (mp,) = e.movie_rows([parts[1]])
            # not an id at all; an integer beyond the id type (99999999999999999999999) is an unknown id
            u_word, m_word = (p is None and not is_integer_text(t) for p, t in ((up, parts[0]), (mp, parts[1])))
            # a header names its columns: both known column words, or neither of the first two an id (a typo'd
            # id such as '19x' beside a good movie id is a data line, refused or answered below)
            if None not in named or (u < 0 or m < 0) and ((u_word and m_word) or low[0] in HEADER_USER_WORDS):
                if None not in named:
                    cols = named
                rest = [c for i, c in enumerate(parts) if i not in cols]
                names = _unique([c if c not in ("user_id", "movie_id", "score", "fallback") else f"input_{c}"
                                 for c in rest])
                continue  # a header line
        pairs.append((parts[cols[0]], parts[cols[1]]))
        extras.append([_number(c) for i, c in enumerate(parts) if i not in cols])
        where.append(n)
    pred = model.predict(pairs)
    integer = {"user": e.user_ids.dtype.kind in "iu", "movie": e.movie_ids.dtype.kind in "iu"}
    for i, f in enumerate(pred.fallback):  # a field no id of this model can be: the first such line, not a fallback
        sides = (("user", 0),) * (f in ("user_unknown", "both")) + (("movie", 1),) * (f in ("movie_unknown", "both"))
        for kind, side in sides:
            t = pairs[i][side]
            if t == "" or integer[kind] and not is_integer_text(t):
                what = f"the {kind} id is empty" if t == "" else \
                    f"'{shorten(t)}' is not a {kind} id of this model (its ids are integers)"
                raise DataError(f"{name}:{where[i]}: {what}; fix that line" +
                                (", or put a header line of column names first" if i == 0 and t != "" else ""))
    shown = 0
    for n, (u, m), f in zip(where, pairs, pred.fallback):
        if f == "none":
            continue
        what = f"user '{shorten(u)}' and movie '{shorten(m)}' are" if f == "both" else \
            f"user '{shorten(u)}' is" if f == "user_unknown" else f"movie '{shorten(m)}' is"
        if strict:
            raise NotFoundError(f"{name}:{n}: {what} not in the training data; without «--strict|strict=True» "
                                "it is scored from the biases (the fallback column says which)")
        shown += 1
        if shown <= LOGGED_UNKNOWN:
            # a ranking model has no biases: its fallback has no score to give (a review: "scored" over an empty
            # score field)
            done = "scored from the biases" if model.engine.explicit else "no score (a ranking model has no biases)"
            log.warning("%s:%d: %s not in the training data; %s (fallback %s)", name, n, what, done, f)
    if shown > LOGGED_UNKNOWN:
        log.warning("%s pairs with an unknown id in all (the first %d are named above; see the fallback column)",
                    f"{shown:,}", LOGGED_UNKNOWN)
    width = max((len(x) for x in extras), default=0)
    names = (names + [f"col{i + 3}" for i in range(len(names), width)])[:max(width, len(names))]
    rows = ({"user_id": r["user_id"], "movie_id": r["movie_id"], **dict(zip(names, x)), "fallback": r["fallback"],
             "score": r["score"]} for r, x in zip(pred.to_rows(), extras))
    return ["user_id", "movie_id", *names, "fallback", "score"], rows
