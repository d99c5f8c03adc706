"""Raw ids <-> internal rows: one owner for the mapping and for what an unknown id means.

A user's data names users and movies by its own ids (integers or strings): Surprise calls them raw ids. The
model's tables are indexed by rows 0..n-1 (inner ids). ``IdMap`` holds the raw ids in row order and maps both
ways; lookups are a binary search over the ids in order, checked once to hold each id once (ingest writes them in
order, so a million ids cost one comparison of neighbours; ids in another order cost one sort).
Also the public API's rules for ids given as arguments (``id_list``, ``one_id``, ``one_user``, ``rated_map``),
shared by ``models.Model``, the modules that answer its questions and ``answers.answer``. numpy only: serving
imports this.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable

import numpy as np

from embedrec.errors import ArtifactError, NotFoundError, UsageError, WarnedNote, shorten

MISSING = ("error", "skip", "popular")  # what an unknown id gets (models.Model.recommend's ``missing=``)
ID_SHOWN = 64  # the characters of an id a message shows whole (a UUID's 36, a SHA-256's 64): past it, cut


# the words pandas' read_csv reads as missing by default (its documented na_values): a numeric field's 'NA' or
# 'null' is missing under data.missing=drop where text ids turned them off for the whole table (an id 'NA' is one),
# and a new user's file's rating so written is none (serve.userfile)
NA_WORDS = frozenset(("#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                      "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"))


def is_integer_text(text) -> bool:
    """Whether ``text`` (or a number) is written as an integer: an optional sign and ASCII digits, surrounding
    whitespace aside. Python's int() also reads '1_96' and other scripts' digits, which ingest refuses."""
    s = str(text).strip()
    body = s[1:] if s[:1] in ("+", "-") else s
    return body.isascii() and body.isdigit()


def is_number_text(text) -> bool:
    """Whether ``text`` (or a number) reads as a number, as float() reads it: '5', ' 4.5 ', '1e3', and 'nan' and
    'inf' too (a field that is a number of any kind: data, not a header's name; no id, not a word)."""
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def is_finite_number_text(text) -> bool:
    """Whether ``text`` reads as a finite number (:func:`is_number_text`, but not 'nan', 'inf' nor 'infinity' in
    any case or sign): a count or a rating, where 'inf' is a word."""
    import math

    try:
        return math.isfinite(float(str(text)))
    except ValueError:
        return False


def not_an_id(x) -> str | None:
    """Why ``x``, given from Python, cannot be an id ('a flag', 'a missing value', 'a list', ...), or None when it
    can: one check for every entry that takes ids from Python (api's lists, recommend_stream's items)."""
    if isinstance(x, (bool, np.bool_)):
        return "a flag"
    if x is None or (isinstance(x, (float, np.floating)) and x != x) or type(x).__name__ in ("NAType", "NaTType"):
        return "a missing value"  # pd.NA, pd.NaT too (a review: pd.NA, a string column's gap, was the id '<NA>')
    if isinstance(x, (list, tuple, set, dict, np.ndarray)):
        return f"a {type(x).__name__}"
    if isinstance(x, (complex, np.complexfloating)):  # a red team: refused alone, silently skipped in a list
        return "a complex number"
    # an id is an integer or a text (a float only as the whole number a pandas column that met a NaN holds, 196.0);
    # anything else was looked up by its str() and answered as an unknown id (a red team: predict(object(), 50),
    # predict(2.5, 50) and predict(inf, 50) each a fallback row, where recommend(object()) was a UsageError)
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return "not finite"
        return None if float(x).is_integer() else "not a whole number"
    if not isinstance(x, (str, bytes, bytearray, int, np.integer)):
        return f"a value of type {type(x).__name__}"
    return None


ID_HINT = "ids are integers or texts, e.g. 196 or 'u196'"  # one_id's, for a value that is neither


_WRITTEN_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")  # an integer id as str(int) writes it (idtext._PLAIN_INT)


@functools.lru_cache(maxsize=16)
def _int_range(dtype: np.dtype) -> tuple[int, int]:
    """An integer dtype's (min, max) (np.iinfo made once: a predict of 100,000 pairs made it 200,000 times)."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def parse_id(text, dtype: np.dtype):
    """``text`` (or a number) as an id of an id array of ``dtype``; None when it cannot be one: not an integer
    (``is_integer_text``; a float only where it is a whole number: 196.0 is 196) for integer ids, or beyond the integer type (an id like 99999999999999999999999 is
    simply unknown)."""
    if dtype.kind in "iu":
        low, high = _int_range(dtype)
        if type(text) is int or isinstance(text, np.integer):  # an int as it is (what the text path gives it)
            return int(text) if low <= text <= high else None
        if isinstance(text, (float, np.floating)):  # 196.0, as a pandas merge that met a NaN leaves an id column
            if not (np.isfinite(text) and float(text).is_integer()):
                return None
            text = int(text)
        s = str(text).strip()
        if not _WRITTEN_INT.fullmatch(s):  # ASCII digits as str(int) writes them (so is_integer_text's too):
            return None  # '01', '+1': ingest reads no such id as an integer (it would merge ids), so none is one
        try:
            v = int(s)
        except ValueError:  # more digits than int() reads (4,300): beyond any integer type
            return None
        return v if low <= v <= high else None
    if isinstance(text, (float, np.floating)) and np.isfinite(text) and float(text).is_integer():
        text = int(text)  # 1.0 is the text id '1', as it is the integer id 1 (a notebook review: 'user 1.0')
    elif isinstance(text, np.integer):
        text = int(text)
    return str(text).strip()


def ids_from_arrow(arr) -> np.ndarray:
    """A pyarrow id column as numpy without pyarrow's to_numpy (which imports pandas): integers straight from
    the data buffer, anything else as an object array of Python values."""
    import pyarrow as pa

    if pa.types.is_integer(arr.type) and arr.null_count == 0:
        dtype = np.dtype(arr.type.to_pandas_dtype())
        return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize).copy()
    return np.array(arr.to_pylist(), dtype=object)


def py_id(v):
    """A numpy scalar id as the plain Python value (int or str) that JSON and users expect."""
    return v.item() if hasattr(v, "item") else v


_NUMBER_FORM = re.compile(r"([+-]?)([0-9]+)(?:\.0*)?")  # '0040', '+40', '40.0', '-007': an integer in any form


def id_number(x) -> str | None:
    """The integer an id writes, whatever its form, as plain text: '0040', '+40', '40.0', ' 40 ', 40 and 40.0 are
    all '40' ('-007' is '-7'); None for an id that writes no integer (a word, a fraction, a flag). What ids
    written apart are compared by (:func:`written_apart`); never how ids are read, which keeps '0040' apart from
    40 (data.id_type)."""
    if x is None or isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return str(int(x)) if np.isfinite(x) and float(x).is_integer() else None
    m = _NUMBER_FORM.fullmatch(str(x).strip())
    if m is None:
        return None
    digits = m[2].lstrip("0") or "0"  # by its text: int() refuses 4,300 digits
    return f"-{digits}" if m[1] == "-" and digits != "0" else digits


_SMALL = 10 ** 18  # an integer of at most 18 digits is compared as an int64, a longer one (rare) as its text
_TEXT_MAX = 64  # a longer text id (rare) is read alone: a numpy string array is as wide as its longest text
_DIGITS = "0123456789"
_KINDS = {str: 1, np.str_: 1, int: 2, float: 3,  # how id_number reads a value of each type, vectorised below
          **dict.fromkeys((np.int8, np.int16, np.int32, np.int64, np.longlong, np.uint8, np.uint16, np.uint32,
                           np.uint64, np.ulonglong), 2),
          **dict.fromkeys((np.float16, np.float32, np.float64), 3)}


def _as_key(key: str | None, i: int, small: list, big: dict[int, str]) -> None:
    """File one id_number text (of the id at ``i``): (i, integer) in ``small`` where it has at most 18 digits, else
    its text in ``big``; nothing for None."""
    if key:
        if len(key) - key.startswith("-") <= 18:
            small.append((i, int(key)))
        else:
            big[i] = key


def _file(small: list, parts: list) -> None:
    """The (position, integer) pairs :func:`_as_key` filed one by one, appended to ``parts`` as two arrays."""
    if small:
        parts.append((np.array([i for i, _ in small], dtype=np.int64), np.array([v for _, v in small], np.int64)))


def _text_numbers(texts: np.ndarray, at: np.ndarray, parts: list, big: dict[int, str]) -> None:
    """:func:`id_number` of each of ``texts`` (an object array of str; ``at``: their positions), vectorised:
    (positions, int64 integers) of those of at most 18 digits appended to ``parts``, the longer ones' texts put in
    ``big``. numpy's string functions over the texts that hold ASCII only once stripped; each other text (longer
    than _TEXT_MAX, or ending in NUL, which a numpy string drops) read alone."""
    n = len(texts)
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    short = np.flatnonzero(lens <= _TEXT_MAX)
    alone = [np.flatnonzero(lens > _TEXT_MAX)]
    if len(short):
        s = texts[short].astype(str)
        exact = np.strings.str_len(s) == lens[short]
        alone.append(short[~exact])
        t = np.strings.strip(s)  # str.strip's whitespace
        can = np.flatnonzero(exact & (t != "") & (np.strings.lstrip(t, "+-." + _DIGITS) == ""))  # ASCII only
        short, t = short[can], t[can]
        neg = np.strings.startswith(t, "-")
        body = np.strings.slice(t, (neg | np.strings.startswith(t, "+")).astype(np.int64), None)
        dot = np.strings.find(body, ".")
        end = np.where(dot < 0, np.strings.str_len(body), dot)
        whole = np.strings.slice(body, 0, end)  # digits, then nothing or a dot and zeros: _NUMBER_FORM
        ok = np.strings.isdigit(whole)  # (0-9 only, the text being ASCII)
        dotted = np.flatnonzero(ok & (dot >= 0))
        ok[dotted] = np.strings.lstrip(np.strings.slice(body[dotted], end[dotted] + 1, None), "0") == ""
        whole, neg, where = whole[ok], neg[ok], short[ok]
        fits = np.strings.str_len(whole) <= 18  # read as it is (leading zeros and all); a longer one by its text
        values = whole[fits].astype(np.int64)
        values[neg[fits]] *= -1
        parts.append((at[where[fits]], values))
        small: list = []
        for i, d, minus in zip(where[~fits].tolist(), whole[~fits].tolist(), neg[~fits].tolist()):
            d = d.lstrip("0") or "0"
            _as_key(("-" if minus and d != "0" else "") + d, int(at[i]), small, big)
        _file(small, parts)
    small = []
    for i in np.concatenate(alone).tolist():
        _as_key(id_number(texts[i]), int(at[i]), small, big)
    _file(small, parts)


def _number_keys(values) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """:func:`id_number` of each of ``values`` (an integer array, or a list of any ids), vectorised: (each
    integer as int64, a mask of those held there: at most 18 digits; {position: text} of the longer ones). An id
    that writes no integer is in neither."""
    if isinstance(values, np.ndarray):  # an integer array
        small = values < _SMALL if values.dtype.kind == "u" else (values < _SMALL) & (values > -_SMALL)
        return np.where(small, values, 0).astype(np.int64), small, \
            {int(i): str(int(values[i])) for i in np.flatnonzero(~small)}
    n = len(values)
    obj = np.fromiter(values, dtype=object, count=n)
    kinds = np.fromiter(map(_KINDS.get, map(type, values), itertools.repeat(0)), dtype=np.int8, count=n)
    parts: list = []
    big: dict[int, str] = {}
    at = np.flatnonzero(kinds == 1)
    if len(at):
        _text_numbers(obj[at], at, parts, big)
    at = np.flatnonzero(kinds == 2)
    if len(at):
        try:
            ints = obj[at].astype(np.int64)
            fits = (ints < _SMALL) & (ints > -_SMALL)
            parts.append((at[fits], ints[fits]))
            big.update((int(i), str(int(v))) for i, v in zip(at[~fits], ints[~fits]))
        except OverflowError:  # beyond int64 (Python ints of any size): by their text
            small: list = []
            for i, v in zip(at.tolist(), obj[at].tolist()):
                _as_key(str(int(v)), i, small, big)
            _file(small, parts)
    at = np.flatnonzero(kinds == 3)
    if len(at):
        f = obj[at].astype(np.float64)
        whole = np.isfinite(f)
        whole[whole] = np.mod(f[whole], 1) == 0
        fits = whole & (np.abs(np.where(whole, f, 0)) < _SMALL)
        parts.append((at[fits], f[fits].astype(np.int64)))
        big.update((int(i), str(int(x))) for i, x in zip(at[whole & ~fits], f[whole & ~fits]))
    small = []
    for i in np.flatnonzero(kinds == 0).tolist():
        _as_key(id_number(values[i]), i, small, big)
    _file(small, parts)
    nums, held = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    for where, got in parts:
        nums[where], held[where] = got, True
    return nums, held, big


def written_apart(unknown, known) -> tuple[np.ndarray, tuple | None]:
    """Which of ``unknown`` (ids not found among ``known`` as written) name an id of ``known`` written another way:
    the same integer (:func:`id_number`) with leading zeros, a sign, '.0', or as a number where the other is text
    ('0040' and 40). (a bool mask over ``unknown``, (the first such id, the id of ``known`` it names: the first
    there of that integer), None where none does.) For a warning that says why ids do not join and how to write
    them (a review: a movies file's '0040' against the ratings' 40 left half a shop's ratings untitled, and the
    advice was to drop them); the ids are never joined so. Vectorised (:func:`_number_keys`; a review: one by one,
    a million unknown ids against two million took 6.9 s)."""
    ids = unknown if isinstance(unknown, np.ndarray) and unknown.dtype.kind in "iu" else list(unknown)
    arr = np.asarray(known)
    k_nums, k_held, k_big = _number_keys(arr if arr.dtype.kind in "iu" else arr.tolist())
    u_nums, u_held, u_big = _number_keys(ids)
    hits = np.zeros(len(ids), dtype=bool)
    if k_held.any() and u_held.any():
        values = np.sort(k_nums[k_held])  # (np.unique hashes: 6.5 s for 2M ints where a sort takes 0.25 s)
        at = np.flatnonzero(u_held)
        order = np.argsort(u_nums[at], kind="stable")  # sorted needles: a search that walks the table once
        j = np.searchsorted(values, u_nums[at][order]).clip(max=len(values) - 1)
        hits[at[order]] = values[j] == u_nums[at][order]
    big_known = set(k_big.values())
    for i, key in u_big.items():
        hits[i] = key in big_known
    if not hits.any():
        return hits, None
    i = int(np.argmax(hits))
    if u_held[i]:
        k = int(np.argmax(k_held & (k_nums == u_nums[i])))  # the first id of known that writes that integer
    else:
        k = min(j for j, key in k_big.items() if key == u_big[i])
    return hits, (py_id(ids[i]), py_id(arr[k]))


def check_missing(missing: str) -> None:
    """``missing=``, as argcheck.choice_arg checks a choice (which imports this module): one of MISSING's texts,
    anything else a UsageError, a value that is no text too (a red team: an array's `in` was numpy's ValueError)."""
    if not isinstance(missing, str) or missing not in MISSING:
        raise UsageError(f"missing={shorten(repr(missing), 40)}: expected one of {', '.join(map(repr, MISSING))}")


class IdMap:
    """The raw ids of one kind ('user' or 'movie'), in row order."""

    def __init__(self, ids: np.ndarray, kind: str, source: tuple[str, str] | None = None):
        self.ids, self.kind = ids, kind
        # (what holds the ids, how to repair it): a run's user_ids.npy and its fix, where a duplicate id is damage
        self.source = source
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._folded: tuple[np.ndarray, np.ndarray] | None = None  # same_but_case's: the ids lower-cased, sorted
        self._unzeroed: tuple[np.ndarray, np.ndarray] | None = None  # same_but_zeros': without leading zeros too
        # rows -> a mask of those answered as unknown ids (serve.Recommender: users without training ratings)
        self.untrained: Callable[[np.ndarray], np.ndarray] | None = None
        # () -> whether a text id not found as given is looked up lower-cased (a user map of a dataset ingested with
        # data.id_case=fold: serve.catalogue), asked at the first such miss and kept
        self.fold: Callable[[], bool] | None = None
        self._folds: bool | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __repr__(self) -> str:
        return f"IdMap({self.kind}s: {len(self):,}, {self.ids.dtype})"

    def rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        """(rows with -1 for unknown ids, each id parsed to the map's type or None): a binary search over the ids
        in order (:meth:`check_unique`, made once, which refuses an id held twice whichever ids are asked). A row
        ``untrained`` marks is unknown too."""
        rows, parsed = self._rows(ids)
        if self.untrained is not None and (rows >= 0).any():
            known = np.flatnonzero(rows >= 0)  # each distinct row tested once (predict: many pairs, few users)
            if known.size == 1:  # (one id: nothing to make distinct)
                rows[known[self.untrained(rows[known])]] = -1
            else:
                distinct, back = np.unique(rows[known], return_inverse=True)
                rows[known[self.untrained(distinct)[back]]] = -1
        return rows, parsed

    def _rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        """:meth:`_lookup`, and where this map folds (``fold``), a text id not found as given looked up lower-cased,
        as ingest read the dataset's (a review: `recommend --user U1` was refused where update-users folded U1), its
        parsed id then the one found."""
        rows, parsed = self._lookup(ids)
        if getattr(self, "fold", None) is None or self.ids.dtype.kind in "iu" or not (rows < 0).any():
            return rows, parsed
        missed = [i for i, p in enumerate(parsed) if rows[i] < 0 and isinstance(p, str) and p.lower() != p]
        if missed and self._folding():
            again, low = self._lookup([parsed[i].lower() for i in missed])
            for i, r, q in zip(missed, again.tolist(), low):
                if r >= 0:
                    rows[i], parsed[i] = r, q
        return rows, parsed

    def _folding(self) -> bool:
        if getattr(self, "_folds", None) is None:
            self._folds = bool(self.fold())
        return self._folds

    def folds_case(self) -> bool:
        """Whether this map's text ids are read lower-cased where not found as given (data.id_case=fold's users)."""
        return getattr(self, "fold", None) is not None and self.ids.dtype.kind not in "iu" and self._folding()

    def _lookup(self, ids: Iterable) -> tuple[np.ndarray, list]:
        if isinstance(ids, np.ndarray) and ids.ndim == 1 and ids.dtype.kind in "iu" and self.ids.dtype.kind in "iu":
            return self._int_rows(ids), ids.tolist()  # (a column of integer ids: no id to parse, one search)
        given = list(ids)
        rows, parsed = self._search(given)
        if self.ids.dtype.kind not in "iu" and (rows < 0).any():  # a whole float is '1', else '1.0' as written (a
            again = [i for i, (g, r) in enumerate(zip(given, rows)) if r < 0 and isinstance(g, (float, np.floating))]
            if again:  # review: a text id written '1.0' was no longer found by 1.0)
                more, _ = self._search([str(given[i]) for i in again])
                for i, r in zip(again, more.tolist()):
                    if r >= 0:
                        rows[i], parsed[i] = r, str(given[i])
        return rows, parsed

    def _int_rows(self, ids: np.ndarray) -> np.ndarray:
        """The rows of integer ``ids`` on an integer map, -1 where unknown: :meth:`_search`'s binary search over the
        whole array at once (predict's 200,000 pairs of a DataFrame: each parsed in Python before)."""
        rows = np.full(ids.size, -1, dtype=np.int64)
        order, sorted_ids = self.check_unique()
        if not sorted_ids.size or not ids.size:
            return rows
        fits = (ids >= sorted_ids[0]) & (ids <= sorted_ids[-1])  # (a uint64 id beyond int64: no row of this map)
        vals = ids[fits].astype(sorted_ids.dtype)
        pos = np.minimum(np.searchsorted(sorted_ids, vals), sorted_ids.size - 1)
        ok = sorted_ids[pos] == vals
        at = np.flatnonzero(fits)[ok]
        rows[at] = pos[ok] if order is None else order[pos[ok]]
        return rows

    def _search(self, ids: list) -> tuple[np.ndarray, list]:
        parsed = [parse_id(t, self.ids.dtype) for t in ids]
        rows = np.full(len(parsed), -1, dtype=np.int64)
        valid = [i for i, p in enumerate(parsed) if p is not None]
        if not valid:  # (nothing to look up: no id of this map's kind asked)
            return rows, parsed
        order, sorted_ids = self.check_unique()  # whatever ids are asked (session 51: a scan of a few ids met an
        if sorted_ids.size:                      # id held twice only where it was one of them)
            # texts as they are: a fixed-width text array's own width would cut a longer id ('u1x' found as 'u1')
            vals = np.array([parsed[i] for i in valid], dtype=None if sorted_ids.dtype.kind == "U" else
                            sorted_ids.dtype)
            pos = np.searchsorted(sorted_ids, vals)
            pos_c = np.minimum(pos, sorted_ids.size - 1)
            ok = sorted_ids[pos_c] == vals
            rows[np.array(valid)[ok]] = pos_c[ok] if order is None else order[pos_c[ok]]
        return rows, parsed

    def check_unique(self) -> tuple[np.ndarray | None, np.ndarray]:
        """(the rows in id order, None where the ids are in that order already; the ids so sorted), made once, at a
        map's first lookup; every id held by one row only, else the error of :meth:`_twice` (a red team: a re-sealed
        run's user_ids.npy holding an id twice was served, one of the two users answered for both). Ingest writes
        a run's ids in order, so their check is one comparison of neighbours, no sort: 0.3 ms for 1M int64 ids,
        11 ms for 1M text ids (an object array), about what a scan for one id costs; an updated run's added users
        after them, or ids in any other order, are sorted (2-4 ms for 1M ingest-ordered int64 ids with up to 10,000
        appended; 90 ms shuffled)."""
        if self._sorted is None:
            ids = self.ids
            if ids.size < 2 or bool((ids[1:] > ids[:-1]).all()):  # strictly increasing: each id held once
                self._sorted = (None, ids)
                return self._sorted
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            same = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1]) if sorted_ids.size > 1 else np.zeros(0, int)
            if same.size:
                raise self._twice(int(order[same[0]]), int(order[same[0] + 1]))
            self._sorted = (order, sorted_ids)
        return self._sorted

    def _twice(self, first: int, second: int) -> ArtifactError | UsageError:
        """The error of an id held by rows ``first`` and ``second``: damage of the run's file that holds them
        (``source``), or, for ids given in memory, the caller's."""
        raw = shorten(str(py_id(self.ids[first])), 60)
        if self.source is None:
            return UsageError(f"the {self.kind} ids hold {raw} twice (rows {first} and {second}); give each "
                              f"{self.kind} an id of its own")
        where, fix = self.source
        return ArtifactError(f"{where} holds {self.kind} id {raw} twice (rows {first} and {second}); {fix}")

    def impossible(self, raw) -> bool:
        """Whether ``raw`` can be no id of this map, whatever ids it holds: a word, an empty text or a fraction
        (196.5) where the ids are integers (a number beyond the integer type is only unknown)."""
        if self.ids.dtype.kind not in "iu":
            return False
        if isinstance(raw, (float, np.floating)):
            return not (np.isfinite(raw) and float(raw).is_integer())
        return isinstance(raw, str) and not is_integer_text(raw)

    def malformed(self, raw) -> tuple[str, str] | None:
        """(what is wrong, how to write it instead) where ``raw`` is written as no id of this map can be, whatever
        ids it holds: a word or a fraction where the ids are integers (:meth:`impossible`), or an integer written
        with a '+' or leading zeros, which ingest reads as no integer id; None otherwise (an integer beyond the
        ids' type among them: :meth:`beyond_text`)."""
        if self.impossible(raw):
            return f"'{shorten(raw)}' is not a {self.kind} id of this model (its ids are integers)", "give an integer id"
        if self.ids.dtype.kind in "iu" and isinstance(raw, str) and not _WRITTEN_INT.fullmatch(raw.strip()):
            body = raw.strip().lstrip("+")  # '01', '+1' (an API review: answered for user 1); by its text, not
            sign = "-" if body.startswith("-") else ""  # int(), which refuses 4,300 digits (a review)
            plain = shorten(sign + (body.lstrip("-").lstrip("0") or "0"))
            return (f"'{shorten(raw)}' is not a {self.kind} id of this model: its ids are integers written without "
                    f"a '+' or leading zeros ('{plain}')", "write the id without a '+' or leading zeros")
        return None

    def beyond_text(self, raw) -> tuple[str, str] | None:
        """(what is wrong, how to fix it) where ``raw`` is an integer beyond the integer type of this map's ids (a
        lookup answers it as unknown; no id can be given it, e.g. to a user update-users adds); None otherwise."""
        if self.ids.dtype.kind not in "iu" or self.malformed(raw) is not None or \
                parse_id(raw, self.ids.dtype) is not None:
            return None
        info = np.iinfo(self.ids.dtype)
        return (f"'{shorten(raw)}' can be no {self.kind} id of this model: its ids are {info.bits}-bit integers, from "
                f"{info.min} to {info.max}", "give an id in that range")

    def unknown_text(self, raw) -> str:
        """What is wrong with an unknown id: "user '42' is not in the training data (943 users)", or, for text no
        id of this map can be (a word where the ids are integers), that it is not an id at all."""
        bad = self.malformed(raw)
        if bad is not None:
            return bad[0]
        if self.vectorless(raw):  # in the dataset, with no trained vector (a review: "not in the training data
            # (751 users)", though one of those 751)
            return (f"{self.kind} '{shorten(raw)}' has no trained vector (it rated nothing in the rows this model "
                    "was fitted on: a global time cut's later user on a run trained without a refit, or "
                    "split.cold_start's)")
        if self.ids.dtype.kind in "iu" or not len(self):
            return f"{self.kind} '{shorten(raw)}' is not in the training data ({self._count()})"
        meant = self.meant(raw)
        if meant:  # (a first-hour review: emails written 'User1@Example.com' and 'user1@example.com')
            return f"{self.kind} '{shorten(raw, ID_SHOWN)}' is not in the training data ({self._count()}){meant}"
        # text ids: what one looks like (a first-hour review: `--user 196` where the ids are 'u196'); each whole up
        # to ID_SHOWN characters, so a UUID can be copied (a review: '00482fc3-9[...]0a6bec81d')
        like = ", ".join(f"'{shorten(str(x), ID_SHOWN)}'" for x in self.ids[:3])
        return f"{self.kind} '{shorten(raw)}' is not in the training data ({self._count()}, ids such as {like})"

    def same_but_case(self, raw) -> str | None:
        """The text id of this map that ``raw`` is but for case (spaces around it aside), None where none is (or
        several are: then no one is meant). The ids lower-cased and sorted once, at the first such question."""
        if self.ids.dtype.kind in "iu" or not len(self) or not isinstance(raw, str):
            return None
        if getattr(self, "_folded", None) is None:  # (a map pickled before it had one)
            low = np.char.lower(self.ids.astype(str))
            order = np.argsort(low, kind="stable")
            self._folded = (low[order], order)
        low, order = self._folded
        want = raw.strip().lower()
        lo, hi = np.searchsorted(low, want, side="left"), np.searchsorted(low, want, side="right")
        if hi - lo != 1:
            return None
        found = str(self.ids[order[lo]])
        return found if found != raw else None

    def meant(self, raw) -> str:
        """"; did you mean '036324453X' (the same but for case)?" where ``raw`` is a text id of this map but for case
        (:meth:`same_but_case`) or but for leading zeros dropped or added ('36324453X' for '036324453X', as a
        spreadsheet drops them; :meth:`same_but_zeros`), or but for its Unicode form ('zoe' + a combining diaeresis,
        as macOS writes file names, for 'zoë': a shell review was told of 'zoë' as unknown, with no hint), '' where
        it is none (or several are)."""
        if isinstance(raw, str) and self.ids.dtype.kind not in "iu" and len(self):
            import unicodedata

            for form in ("NFC", "NFD"):
                other = unicodedata.normalize(form, raw.strip())
                if other != raw.strip() and self.own_row(other) >= 0:
                    return (f"; did you mean '{shorten(other, ID_SHOWN)}' (the same text in Unicode's other form, "
                            f"{form}: its accents {'joined to' if form == 'NFC' else 'apart from'} their letters)?")
        found = self.same_but_case(raw)
        if found is not None:
            return f"; did you mean '{shorten(found, ID_SHOWN)}' (the same but for case)?"
        found = self.same_but_zeros(raw)
        if found is None:
            return ""
        how = "leading zeros" if found.lstrip("0") == raw.strip().lstrip("0") else "case and leading zeros"
        return f"; did you mean '{shorten(found, ID_SHOWN)}' (the same but for its {how})?"

    def same_but_zeros(self, raw) -> str | None:
        """The text id of this map that ``raw`` is but for leading zeros (and case), None where none is, or several
        are. The ids without their leading zeros, lower-cased and sorted once, at the first such question."""
        if self.ids.dtype.kind in "iu" or not len(self) or not isinstance(raw, str) or not raw.strip():
            return None
        if getattr(self, "_unzeroed", None) is None:  # (a map pickled before it had one)
            low = np.strings.lstrip(np.char.lower(self.ids.astype(str)), "0")
            order = np.argsort(low, kind="stable")
            self._unzeroed = (low[order], order)
        low, order = self._unzeroed
        want = raw.strip().lower().lstrip("0")
        lo, hi = np.searchsorted(low, want, side="left"), np.searchsorted(low, want, side="right")
        if hi - lo != 1:
            return None
        found = str(self.ids[order[lo]])
        return found if found != raw.strip() else None

    def own_row(self, raw) -> int:
        """The row of ``raw`` in this map, -1 where it has none, whether or not ``untrained`` marks it."""
        return int(self._rows([raw])[0][0])

    def own_rows(self, ids: Iterable) -> tuple[np.ndarray, list]:
        """:meth:`own_row` of many ids in one lookup: (rows, -1 where the map has none, whether or not ``untrained``
        marks them; each id parsed to the map's type, None where it can be no id of it), as :meth:`rows` gives."""
        return self._rows(ids)

    def vectorless(self, raw) -> bool:
        """Whether ``raw`` is an id of this map that ``untrained`` marks (in the dataset, with no trained vector)."""
        return bool(self.vectorless_many([raw])[0])

    def vectorless_many(self, raws: list) -> np.ndarray:
        """``vectorless`` of many ids in one lookup (predict --pairs' unknown users of a batch): no scan per id,
        and ``untrained`` reads only the rows found."""
        out = np.zeros(len(raws), bool)
        if self.untrained is None or not len(self) or not len(raws):
            return out
        rows = self._rows(raws)[0]
        found = np.flatnonzero(rows >= 0)
        out[found] = self.untrained(rows[found])
        return out

    def _count(self) -> str:  # '943 users', '1 user'
        return f"{len(self):,} {self.kind}{'' if len(self) == 1 else 's'}"

    def row(self, raw, fix: str = "") -> int:
        """The row of one id; NotFoundError naming it (and ``fix``, how to go on) when it is unknown."""
        rows, parsed = self.rows([raw])
        if rows[0] < 0:  # said of the id as parsed: 4 on a text map is '4', whose '00004' is named (a review)
            said = parsed[0] if parsed[0] is not None else raw
            raise NotFoundError(then(self.unknown_text(said), fix), kind=self.kind, id=raw)
        return int(rows[0])

    def raw(self, row: int):
        """The raw id of a row, as a plain Python value."""
        return py_id(self.ids[row])

    def resolve(self, ids: Iterable, missing: str, fix: str | Callable[[], str] = "") -> tuple[list, np.ndarray, list]:
        """The one policy for unknown ids: (the ids as given/parsed, rows with -1 for unknown, unknown ids).

        ``missing='error'`` raises NotFoundError naming the first unknown id and how many more there are, and
        ``fix`` (or what ``fix()`` says, made only then); 'skip' and 'popular' return them for the caller to leave
        out or answer with the popular list."""
        check_missing(missing)
        given = list(ids)
        rows, parsed = self.rows(given)
        query = [p if p is not None else g for g, p in zip(given, parsed)]
        unknown = [q for q, r in zip(query, rows) if r < 0]
        if unknown and missing == "error":
            fix = fix() if callable(fix) else fix
            each = list(dict.fromkeys(unknown))  # each once, as the error's ids (a review: '2 more' of one repeated)
            more = "" if len(each) < 2 else " (and 1 more unknown id)" if len(each) == 2 else \
                f" (and {len(each) - 1:,} more unknown ids)"
            raise NotFoundError(then(self.unknown_text(unknown[0]), fix, more), kind=self.kind, ids=each)
        return query, rows, unknown


def then(text: str, rest: str | None, more: str = "") -> str:
    """An unknown id's ``text`` (:meth:`IdMap.unknown_text`), ``more`` (how many others, said before its 'did you
    mean ...?') and ``rest`` (what to do) in one message: '; ' before ``rest``, or a space after a question ('did
    you mean 'X'? the run was trained on ...': a review found '?;' read oddly)."""
    if more:
        head, meant, tail = text.partition("; did you mean")
        text = f"{head}{more}{meant}{tail}"
    if not rest:
        return text
    return f"{text}{' ' if text.endswith('?') else '; '}{rest}"


# ----------------------------------------------------------------------------------------- ids as arguments
# (the public API's rules, shared by models.Model and answers.answer)


def id_list(ids) -> list:
    """One id or many: a str or number (numpy scalars too) is one id; a list, array or pandas Series many. A
    flag, a missing value (None, NaN) or a nested list is no id: UsageError."""
    if isinstance(ids, (str, bytes, int, float, np.generic)):
        ids = [ids]
    elif isinstance(ids, np.ndarray) and ids.ndim != 1:
        raise UsageError(f"expected an id or a 1-D list of ids, not a {ids.ndim}-D array of shape {ids.shape}; "
                         "flatten it (arr.ravel())")
    elif isinstance(ids, np.ndarray) and ids.dtype.kind in "iuU":  # no flag, gap or list can be in it: no
        return ids.tolist()                                          # check per id (a million ids, one call)
    refuse_frame(ids, "expected an id or a list of ids")
    try:
        ids = list(ids)
    except TypeError:
        raise UsageError(f"expected an id or a list of ids, not {type(ids).__name__}") from None
    for x in ids:
        one_id(x)
    return ids


def refuse_frame(value, what: str) -> None:
    """A pandas DataFrame where ids go: a UsageError naming its columns (a red team: iterating one gives its column
    names, which recommend took for user ids, recommend_stream answered nothing for, and exclude= refused as
    movies)."""
    if type(value).__name__ == "DataFrame" and hasattr(value, "columns"):
        cols = [str(c) for c in value.columns]
        raise UsageError(f"{what}, not a DataFrame (its columns: {shorten(', '.join(cols), 60)}); give one column, "
                         f"e.g. df[{cols[0] if cols else 'col'!r}]")


def one_id(x) -> None:
    if type(x) is str:  # text is always an id to look up (a file's fields: predict's 200,000 a 100,000 pairs)
        return
    if isinstance(x, (bytes, bytearray, np.bytes_)):  # a review: b'196' was looked up as the text "b'196'"
        raise UsageError(f"{shorten(repr(x))} is not an id (bytes); decode it first, e.g. b'196'.decode()")
    why = not_an_id(x)
    if why == "a flag":
        raise UsageError(f"{bool(x)} is not an id (a flag); give user or movie ids, e.g. [196, 186]")
    if why == "a missing value":
        shown = x if x is None or type(x).__name__ in ("NAType", "NaTType") else float(x)
        raise UsageError(f"{shown} is not an id (a missing value); drop the gaps first, e.g. series.dropna()")
    if why:
        hint = "give a flat list of ids, e.g. [196, 186]" if isinstance(x, (list, tuple, set, dict, np.ndarray)) \
            else ID_HINT
        raise UsageError(f"{shorten(x)!s} is not an id ({why}); {hint}")


def one_user(user, fix: str) -> None:
    """``user=`` of a call that takes one user id (recommend_new's and explain's known user, history's): a list
    (any iterable but text) said to be one, with ``fix``, what to give (a review: recommend_new(user=[196, 1]) said
    'give a flat list of ids, e.g. [196, 186]', a list again; as answers.Request's user= says it)."""
    if user is not None and not isinstance(user, (str, bytes)) and hasattr(user, "__iter__"):
        raise UsageError(f"user={shorten(repr(user), 40)}: user= takes one id, {fix}")
    one_id(user)


def rated_map(rated) -> dict:
    """``rated=``: {movie id: rating} (a dict, a pandas Series) or (movie id, rating) pairs in order, each movie
    once."""
    if rated is None:
        return {}
    if hasattr(rated, "items"):
        _rated_keys([m for m, _ in rated.items()])
        return dict(rated.items())
    how = f"rated={shorten(repr(rated), 40)}: give {{movie id: rating}} or (movie id, rating) pairs, e.g. " \
          "rated={50: 5, 181: 4}"
    if isinstance(rated, (str, bytes)):
        raise UsageError(how)
    try:
        pairs = [tuple(p) for p in rated]
    except TypeError:
        raise UsageError(how) from None
    if any(len(p) != 2 or isinstance(p, (str, bytes)) for p in pairs):
        raise UsageError(how)
    _rated_keys([m for m, _ in pairs])
    out = dict(pairs)
    if len(out) < len(pairs):
        twice = next(m for i, (m, _) in enumerate(pairs) if m in [q for q, _ in pairs[:i]])
        raise UsageError(f"«--rated|rated»: movie {shorten(repr(twice), 40)} is rated twice; give each movie one "
                         "rating")
    return out


def _rated_keys(movies: list) -> None:
    """``rated=``'s movies are ids as everywhere (a flag, a gap or a tuple is none: a review found NotFoundError)."""
    for m in movies:
        try:
            one_id(m)
        except UsageError as err:
            raise UsageError(f"rated: {err}") from None


def spaced_ids(raw, ids) -> tuple[int, str, int, str]:
    """How many of an id column's text values (``raw``, a pandas Series as read) lost spaces around them as
    ``ids`` (the same rows typed: text stripped), the first such value as read, how many distinct ids so became
    one written without spaces in other rows (' a' and 'a': one id now), and the first of those as read; (0, '', 0,
    '') where none did or the ids are integers. A value of spaces alone is a blank id, refused or dropped on its own."""
    if ids.dtype.kind in "iu" or raw.dtype.kind in "iuf":
        return 0, "", 0, ""
    before = raw if raw.dtype == ids.dtype else raw.astype(ids.dtype)  # (compared as pandas' strings: 25x numpy's
    changed = ((before != ids) & (ids != "")).to_numpy(dtype=bool)      # objects on 2M ids)
    n = int(np.count_nonzero(changed))
    if not n:
        return 0, "", 0, ""
    import pandas as pd  # (ingest's: serving never reads a table)

    stripped = ids[changed]
    # an id written two ways, one of them spaced (' a' and 'a', or ' a' and 'a '): a notebook review's four users
    # read as three with only an info note that spaces went; a diff review's two spaced forms
    forms = pd.DataFrame({"id": stripped.to_numpy(), "raw": before[changed].to_numpy()}).drop_duplicates()
    two = set(forms["id"][forms["id"].duplicated(keep=False)]) | set(stripped[stripped.isin(ids[~changed].unique())])
    hit = stripped.isin(two).to_numpy()
    return n, str(before.iloc[int(np.flatnonzero(changed)[0])]), len(two), \
        (str(before[changed][hit].iloc[0]) if hit.any() else "")


def said_ids(ids, spaced: tuple[int, str], kind: str, label: str, id_case: str, notes: list):
    """A ratings table's text id column ``ids`` (a pandas Series; ``kind`` 'user' or 'movie') with notes appended
    to ``notes``: the ids ``spaced`` counts (:func:`spaced_ids`) read without the spaces around them, and ids that
    differ from another only by case, counted with one pair and the setting that folds them, or under
    data.id_case=fold (``id_case``) a user column lower-cased, said with how many users that merged (a first-hour
    review: 400 users whose ids are emails, some written 'User1@Example.com', ingested as 783 without a word).
    Movie ids are never folded: catalogue ids may be case-sensitive (YouTube's 'dQw4w9WgXcQ'). Integer ids pass
    unchanged. The cost: one pass over the distinct ids."""
    if ids.dtype.kind in "iu":
        return ids
    n, first, merged, one = spaced
    if merged:  # a warning: ids the file wrote apart are one now
        notes.append(WarnedNote(
            f"{label}: {n:,} row{'' if n == 1 else 's'} with a {kind} id written with spaces around it, read without "
            f"them; {merged:,} such id{'' if merged == 1 else 's'} (e.g. {shorten(repr(one), ID_SHOWN + 2)}) "
            f"then match{'es' if merged == 1 else ''} another row's id written otherwise (with other spaces or none), "
            f"read as the same {kind}; if they are other {kind}s, write their ids apart"))
    elif n:
        notes.append(f"{label}: {n:,} row{'' if n == 1 else 's'} with a {kind} id written with spaces around it "
                     f"(e.g. {shorten(repr(first), ID_SHOWN + 2)}), read without them")
    distinct = type(ids)(ids.unique())  # (0.2 s of CPU for 2M rows of 200K ids; drop_duplicates took 0.4)
    broken = distinct[distinct.str.contains(r"[\t\n\r]", regex=True).to_numpy(dtype=bool)]
    if len(broken):  # (an own-data review: 'u\t3' read as written, piped out as 'u 3' without a word)
        one = len(broken) == 1
        notes.append(WarnedNote(
            f"{label}: {len(broken):,} {kind} id{'' if one else 's'} hold{'s' if one else ''} a tab or a line break "
            f"(e.g. {shorten(repr(broken.iloc[0]), ID_SHOWN + 2)}), kept as written: TSV output (recommend's and "
            "export's when piped) writes each such character as a space, so such an id is written otherwise there; "
            "«--format csv|fmt='csv'», json or jsonl write it as it is"))
    low = distinct.str.lower()
    twins = low.duplicated(keep=False).to_numpy()
    if id_case == "fold" and kind == "user":
        changed = int(np.count_nonzero(distinct.to_numpy() != low.to_numpy()))
        if changed:
            merged = int(twins.sum()) - int(low[twins].nunique())
            notes.append(f"{label}: {changed:,} user id{'' if changed == 1 else 's'} lower-cased (data.id_case=fold"
                         f"{f', which merged {merged:,} of them with another' if merged else ''}): "
                         f"{len(distinct) - merged:,} users")
        return ids.str.lower()
    if not twins.any():
        return ids
    n_twins, n_folded = int(twins.sum()), int(low[twins].nunique())
    one = low[twins].iloc[0]
    pair = distinct[(low == one).to_numpy()].iloc[:2].tolist()
    shown = " and ".join(repr(shorten(p, ID_SHOWN)) for p in pair)
    if kind == "user":
        fix = ("if they are the same users (emails, names), «--set data.id_case=fold|data.id_case='fold'» reads "
               "user ids lower-cased")
    else:
        fix = ("if they are the same movies, write their ids in one case (data.id_case folds user ids alone: "
               "catalogue ids may differ by case)")
    notes.append(f"{label}: {n_twins:,} {kind} ids differ from another only by case (e.g. {shown}; "
                 f"{n_folded:,} {kind}{'' if n_folded == 1 else 's'} if case is ignored), kept as {n_twins:,} "
                 f"{kind}s; {fix}")
    return ids
