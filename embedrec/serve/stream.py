"""Many users at once, as a stream: ids read line by line (``--users -``), answered in batches through the
Recommender, and written fast as CSV/TSV/JSONL (each movie's cells encoded once and reused). numpy only."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator

import numpy as np

from embedrec.data.ids import not_an_id, py_id, then
from embedrec.errors import DataError, NotFoundError, UsageError, shorten
from embedrec.serve.diversify import lists as diversify_lists
from embedrec.serve.diversify import one as diversify_one
from embedrec.serve.recommender import (
    COLUMNS,
    FALLBACK_VALUES,
    LOGGED_UNKNOWN,
    Recommender,
    popular_instead,
    unknown_summary,
)
from embedrec.sparse import unique

log = logging.getLogger("embedrec")
HEADER_USER_WORDS = ("user_id", "user", "userid", "user id", "uid")  # a header's user column (predict, --users)
HEADER_MOVIE_WORDS = ("movie_id", "movie", "movieid", "movie id", "item_id", "item", "itemid", "iid", "mid")
_SEPARATORS = {",": ("a comma", "cut -d, -f1"), "\t": ("a tab", "cut -f1"), ";": ("a semicolon", "cut -d';' -f1")}


def _newer_model(rec, raw=None) -> str:
    """'; the run serves a newer model since this stream opened its own, which knows this user ...' where it does
    and (``raw``: the id as given) that model knows the id (update-users may have added the user: an
    incremental-use review found a long-lived stream's line silent on it; an ops review, the hint given of ids the
    newer model does not know either), else ''."""
    from embedrec.run_layout import serves_another

    path = getattr(getattr(rec, "run", None), "path", None)
    if path is None or not serves_another(path):
        return ""
    if raw is not None:  # as this run's lookups read an id (data.id_case=fold's users lower-cased: a review)
        users = rec.catalogue.users
        parsed = users.own_rows([raw])[1][0]
        folds = isinstance(parsed, str) and users.folds_case()
        if parsed is None or not (_known_in_current(path, parsed) or folds and _known_in_current(path, parsed.lower())):
            return ""
    return ("; the run serves a newer model since this stream opened its own, which knows this user (update-users, "
            "train): a new stream reads it")


def _known_in_current(model_folder, parsed) -> bool:
    """Whether the model the run serves now (its ``current``, beside ``model_folder``) lists user id ``parsed`` (as
    the run's lookups read it; its user_ids.npy memory-mapped: read for an unknown id's line alone); True where
    that cannot be read (the hint then stays, as before)."""
    import numpy as np

    from embedrec.run_layout import USER_IDS

    try:
        ids = np.load(model_folder.parent / "current" / USER_IDS, mmap_mode="r", allow_pickle=False)
        if ids.dtype.kind in "iu":
            return isinstance(parsed, (int, np.integer)) and bool((np.asarray(ids) == int(parsed)).any())
        return bool((np.asarray(ids) == str(parsed)).any())
    except (OSError, ValueError, OverflowError, TypeError):
        return True


def batches(items: Iterable, size: int, ready=None) -> Iterator[list]:
    """``items`` in lists of up to ``size``; a list ends early where ``ready()`` says no next item is there yet (a
    pipe or a terminal that paused: what came is answered now, not when ``size`` items or the end have come)."""
    buf: list = []
    it = iter(items)
    while True:
        try:
            item = next(it)
        except StopIteration:
            break
        except Exception:  # a bad item (not an id, a bad byte): the ones before it are answered first, as they
            if buf:        # are where a pause had ended their batch before it (the same rows however it arrived)
                yield buf
            raise
        buf.append(item)
        if len(buf) >= size or (ready is not None and not ready()):
            yield buf
            buf = []
    if buf:
        yield buf


def unknown_left_out(rec: Recommender, t: str, include_seen: bool, mine: np.ndarray | None) -> np.ndarray | None:
    """What an unknown user's popular list leaves out: the movies the run holds as theirs unless ``include_seen``,
    and ``mine`` (their own of ``exclude={user: movies}``)."""
    rated = None if include_seen else rec.rated_by_unknown(t)
    if mine is None:
        return rated
    if mine.size:  # the same film under another id too, as a known user's own (a diff review)
        mine = unique(rec.catalogue.with_twins(np.zeros(mine.size, np.int64), mine)[1])
    return mine if rated is None else np.union1d(rated, mine)


def recommend_many(rec: Recommender, lines: Iterable[str], k: int, *, include_seen=False, allowed=None,
                   strict=False, fallback="none", batch=4096, on_batch=None, name: str = "<input>",
                   file: bool = False, ready=None, prior="auto", diversify: float | None = None,
                   own: tuple[dict, dict] | None = None) -> Iterator[tuple]:
    """Stream (user_id, movie rows, scores, fallback) for many user ids (one per line), batched through the
    index; ``fallback`` is True for an unknown user answered with the most popular movies.

    A header line first ('user_id' or 'user') is skipped, as ``predict`` skips one. A line of a file (``file``:
    every item is one; else the text items that end with a line break) that starts with '#' is answered when the
    model knows it as an id (text ids may start with '#'), else skipped as a comment (never an unknown id, under
    ``strict`` too); a Python list's '#hash' is an id like any other. ``strict`` reads the whole
    input and checks every id before the first answer (an unknown one raises NotFoundError naming name:line).
    Its return value (``StopIteration.value``) is the number of ids skipped as unknown. ``on_batch`` is called
    after each batch's results were taken (the CLI flushes stdout there, so a reader
    on the other end of a pipe gets each batch's answers while the next ids are still coming); ``ready()``, where
    given, says whether a next line is there without waiting: a batch ends where the input pauses. ``prior``: the
    weight of the new users' prior in the lists of the users update-users added (a weight given: those users'
    lists alone, ``Recommender.check_stream_prior`` having checked the run). ``diversify``: each list re-ranked by
    maximal marginal relevance at that lambda (serve.diversify; checked by the caller). ``own``: each user's own
    movies to leave out (``models_lookup.per_user_exclude``'s ({user row: movie rows}, {unknown id: movie rows}))."""
    answers = _Answers(rec, k, include_seen, allowed, fallback, name, prior, diversify, own)
    items = _input_items(rec, lines, name, file, strict)
    try:
        for buf in batches(items, batch, ready):  # ``ready``: whether the input has a next line without waiting
            yield from answers.flush(buf)
            if on_batch is not None:
                on_batch()
    except DataError:  # a line refused mid-input: the count of the unknown ids named above (more than were named)
        unknown_summary(answers.unknown, fallback == "popular")  # said before its error (a red team: lost)
        raise
    unknown_summary(answers.unknown, fallback == "popular")
    answers.say_short_and_empty()
    return answers.unknown  # the generator's value: the ids no row answered (header and comment lines are no ids)


def _input_items(rec: Recommender, lines: Iterable[str], name: str, file: bool, strict: bool):
    """The input's (line number, text, whether a '#' line) items, a first line of the user's own column name left
    out; under ``strict`` read whole, and an unknown id (not a '#' line) refused before any answer."""
    items = _numbered(lines, file)
    # a first line of the user's own column name ('customer'), guessed only where a word is not this model's kind
    # of id, and said as a warning with its remedy (a review: 'alice', a new user, was taken for a header, and only
    # an info line, which -q hides, said so)
    if file and not words_are_ids(rec.user_ids):
        items = _own_header(rec, items, name)
    if strict:  # the whole input is read and checked first, so an unknown id fails before anything is printed
        items = list(items)
        rows, _ = rec.user_rows([t for _, t, _ in items])
        bad = (rows < 0) & ~np.array([hashed for _, _, hashed in items], bool)  # not an unknown '#' line: a comment
        if bad.any():
            n, t, _ = items[int(np.flatnonzero(bad)[0])]
            _one_id(name, n, t)
            raise NotFoundError(then(f"{name}:{n}: {rec.catalogue.users.unknown_text(t)}",
                                     "«without --strict|with missing='skip'» unknown users are skipped (or answered "
                                     "with «--fallback popular|missing='popular'»)"), kind="user", id=t)
    return items


class _Answers:
    """The lists of :func:`recommend_many`'s stream, a batch at a time (``flush``), and what is said of them: the
    unknown ids (counted, the first few named), the users whose list is shorter than k or empty (said at the end)."""

    def __init__(self, rec: Recommender, k: int, include_seen, allowed, fallback, name: str, prior,
                 diversify: float | None, own: tuple[dict, dict] | None):
        self.rec, self.k, self.include_seen, self.allowed, self.fallback = rec, k, include_seen, allowed, fallback
        self.name, self.prior, self.diversify = name, prior, diversify
        self.own_known, self.own_unknown = own or ({}, {})
        self.unknown = 0  # ids no row answers: skipped, or answered with the most popular movies
        self.empty: list = []  # users with no movie left to recommend (they rated every movie the filters let through)
        self.short = 0  # users whose list is shorter than k but not empty: said once at the end, as --user says it

    def flush(self, numbered: list[tuple[int, str, bool]]):
        """One batch's (user_id, movie rows, scores, fallback): a known user's list, an unknown one's popular list
        (``fallback`` popular) or nothing (said); a '#' line no user has skipped as a comment."""
        rec, name, k = self.rec, self.name, self.k
        rows, parsed = rec.user_rows([t for _, t, _ in numbered])
        for i, ((n, t, hashed), r) in enumerate(zip(numbered, rows)):  # a line of a table (user,rating): the
            if r < 0 and not hashed:  # lines before it are answered first, however the input arrived (a review:
                try:                  # with no pause before it, its batch's earlier rows were never written)
                    _one_id(name, n, t)
                except DataError:
                    if i:
                        yield from self.flush(numbered[:i])
                    raise
        keep = [i for i, (_, _, hashed) in enumerate(numbered) if not hashed or rows[i] >= 0]  # '#' unknown: a comment
        if len(keep) < len(numbered):
            numbered, rows, parsed = [numbered[i] for i in keep], rows[keep], [parsed[i] for i in keep]
        numbered = [(n, t) for n, t, _ in numbered]
        buf = [t for _, t in numbered]
        known = rows >= 0
        for (n, t), r, p in zip(numbered, rows, parsed):
            if r < 0:  # never under strict: its ids were all checked before the first batch
                self._unknown_user(n, t, p)
        results = self._known_lists(rows, known)
        for t, p, r in zip(buf, parsed, rows):
            if r >= 0:
                if not len(results[int(r)][0]):  # nothing left for them: said at the end, not a silent gap
                    self.empty.append(p)
                elif len(results[int(r)][0]) < k:
                    self.short += 1
                yield (p, *results[int(r)], False)
            elif self.fallback == "popular":
                got = diversify_one(rec.factors.movie, self.diversify, k, lambda n, t=t, p=p: rec.popular(
                    n, self.allowed, unknown_left_out(rec, t, self.include_seen,
                                                      self.own_unknown.get(str(t if p is None else p)))))
                if len(got[0]) < k:  # counted as a known user's short list is (a review: said of those alone)
                    self.short += 1
                yield (p if p is not None else t, *got, True)

    def _unknown_user(self, n: int, t: str, p) -> None:
        """An id no row answers, on line ``n``: counted, and (the first few) said: answered with the popular list,
        or skipped as not an id, as a user without a trained vector, or as unknown."""
        rec, name = self.rec, self.name
        _one_id(name, n, t)
        self.unknown += 1
        if self.fallback == "popular":  # a first-hour review: those rows looked like the model's, said nowhere
            popular_instead(rec.catalogue.users, t, self.unknown, f"{name}:{n}",
                            _newer_model(rec, t) if self.unknown <= LOGGED_UNKNOWN else "")
        else:
            if self.unknown <= LOGGED_UNKNOWN:
                if p is None and rec.user_ids.dtype.kind in "iu":  # '196.0', '001' where ids are integers:
                    log.warning("%s:%d: %s; skipped", name, n,     # not an id (how its ids are written)
                                rec.catalogue.users.unknown_text(t.strip()))
                elif rec.catalogue.users.vectorless(t):  # in the dataset, no vector (a review: "unknown")
                    log.warning("%s:%d: user '%s' has no trained vector; skipped", name, n, shorten(t))
                else:
                    log.warning("%s:%d: unknown user '%s' skipped%s%s", name, n, shorten(t),  # a wrong case
                                rec.catalogue.users.meant(t.strip()),  # said (a red team: it was not)
                                _newer_model(rec, t))

    def _known_lists(self, rows: np.ndarray, known: np.ndarray) -> dict:
        """The known users' lists, by user row: (movie rows, scores)."""
        rec = self.rec
        results = {}
        if known.any():
            ids, scores = diversify_lists(rec.factors.movie, self.diversify, self.k, lambda n: rec.recommend_rows(
                rows[known], n, self.include_seen, self.allowed, prior=self.prior, prior_any=True,
                own=self.own_known))
            for r, i, s in zip(rows[known], ids, scores):
                results[int(r)] = (i, s)
        return results

    def say_short_and_empty(self) -> None:
        """Said once the stream is answered: the lists shorter than k (a note), and the users with no movie left to
        recommend (a warning, the first few named); neither where no movie passes the filters."""
        k, include_seen, allowed, own_known = self.k, self.include_seen, self.allowed, self.own_known
        short, empty = self.short, self.empty
        if allowed is not None and not len(allowed):  # no movie passes the filters: said once, as they were read
            short, empty = 0, []
        if short:  # a review: `--users` never said what `--user` says of a list shorter than -k
            own = ("" if not own_known else " nor «--exclude @FILE|exclude» leaves out for it" if not include_seen else
                   " «--exclude @FILE|exclude» does not leave out for it")  # (marks in the format:
            log.info("note: %s list%s fewer than the %s movies asked for: each holds every movie%s" + own + "%s (movies "
                     "without training ratings are never recommended)", f"{short:,}",  # its arguments are not read)
                     " has" if short == 1 else "s have", f"{k:,}", "" if include_seen else " its user has not rated",
                     " that the filters let through" if allowed is not None else "")
        if empty:  # a review: such a user's lines were simply missing from the output
            log.warning("%s user%s no movie left to recommend (%s " + (("rated" if not include_seen else "")
                        + (" or " if own_known and not include_seen else "")
                        + ("had left out by «--exclude @FILE|exclude»" if own_known else "")
                        or "rated") + " every movie%s), so no rows: %s%s",
                        f"{len(empty):,}", " has" if len(empty) == 1 else "s have", "this user" if len(empty) == 1
                        else "they", " the filters let through" if allowed is not None else "",
                        ", ".join(shorten(str(u)) for u in empty[:LOGGED_UNKNOWN]),
                        " ..." if len(empty) > LOGGED_UNKNOWN else "")


def column_name_like(text: str) -> bool:
    """Whether ``text`` reads as a column's name rather than an id: letters (spaces, '_', '.', '-' between), no
    digit (ids have them). A first line of such names that the model has no id for is a header (--users,
    predict --pairs)."""
    return re.fullmatch(r"[A-Za-z][A-Za-z _.-]*", text) is not None


def words_are_ids(ids) -> bool:
    """Whether a model's ids on one side include words of letters only (users named 'alice'): then a first line
    that is a word may be an id, never guessed to be a column's name (:func:`column_name_like`)."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return False
    step = max(1, ids.size // 2000)  # a spread of at most ~2,000 of them
    return any(isinstance(i, str) and column_name_like(i) for i in ids[::step].tolist())


def _own_header(rec: Recommender, items: Iterator[tuple[int, str, bool]], name: str):
    """``items`` without a first line that is a column name of the user's own ('customer', a review with a user's
    own data: a model with text ids answered it as an unknown user, or with the popular list): line 1 of a file,
    letters only, that no user of this model has, is a header, and said so, where another line follows (a file of
    that line alone is that id, unknown: nothing answered)."""
    first = next(items, None)
    if first is not None:
        n, t, hashed = first
        if n == 1 and not hashed and column_name_like(t) and rec.user_rows([t])[0][0] < 0:
            second = next(items, None)
            if second is None:  # a file whose only line is a word: an id no user has, not a header over nothing (a
                yield first  # review: 'echo nobody | recommend --users -' exited 0; now nothing answered, exit 1)
                return
            log.warning("%s:%d: '%s' is taken for a header: no user of this model has that id (if it is a user, "
                        "put a header line 'user_id' first)", name, n, shorten(t))
            yield second
        else:
            yield first
    yield from items


def _one_id(name: str, n: int, text: str) -> None:
    """An unknown id that holds a field separator is a line of a table (user,rating), not one id: a DataError
    naming name:line, where it would otherwise be skipped as an unknown user."""
    for sep, (what, cut) in _SEPARATORS.items():
        if sep in text:
            raise DataError(f"{name}:{n}: '{shorten(text)}' is not a user id: give one id per line (this line has "
                            f"{what}; for a table's first column: {cut})")


def _numbered(lines: Iterable[str], file: bool = False) -> Iterator[tuple[int, str, bool]]:
    """(line number, id, whether it may be a comment) of each id line: blank lines skipped, and a header line first
    ('user_id' or 'user'), after a UTF-8 byte-order mark (Excel's CSV) if there is one; an id in CSV quotes ("196")
    without them. A line of a file (``file``, or text that ends with a line break) that starts with '#' may be a
    comment: the caller answers it when its id is known and skips it otherwise; an item of a Python list ('#hash',
    no line break) is an id, never a comment."""
    first = True
    for n, line in enumerate(lines, 1):
        why = not_an_id(line)
        if why:
            raise UsageError(f"recommend_stream: item {n} is {shorten(repr(line))}, not an id ({why}); drop such "
                             "items first" + (", e.g. series.dropna()" if why == "a missing value" else ""))
        if isinstance(line, (float, np.floating)) and float(line).is_integer():
            line = int(line)  # 196.0, as a pandas column that met a NaN holds user 196 (as recommend() reads it)
        if isinstance(line, (bytes, bytearray)):  # a file opened 'rb', sys.stdin.buffer, a socket (a red team: each
            try:                                  # line read as "b'196\n'" and skipped, an empty answer)
                line = bytes(line).decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"recommend_stream: line {n} is not UTF-8 text; open the file in text mode with its "
                                 "encoding, e.g. open(path, encoding='latin-1')") from None
        hashed = isinstance(line, str) and (file or line.endswith(("\n", "\r"))) and \
            line.lstrip(" \t\ufeff").startswith("#")  # a byte-order mark before a first comment (a review)
        t = str(line).strip()  # ids given from Python may be ints
        if not t:
            continue
        if first and not hashed:
            first = False
            t = unquoted(t.lstrip("\ufeff").strip())
            if t.lower() in HEADER_USER_WORDS:
                continue  # a header line
        yield n, unquoted(t), hashed


def unquoted(t: str) -> str:
    """One CSV field without its quotes ('"196"', as R's write.csv and pandas' QUOTE_ALL write it)."""
    return t[1:-1].replace('""', '"').strip() if len(t) > 1 and t[0] == t[-1] == '"' else t


def as_rows(rec: Recommender, triples: Iterable[tuple], query_column: str = "user_id",
            fallback_column: bool = False, because_column: bool = False,
            because_as_text: bool = False) -> Iterator[dict]:
    """Rows of COLUMNS (and ``fallback`` with ``fallback_column``, then ``because`` with ``because_column``: the
    listed movie's explanation items, None for a fallback's list; ``because_as_text``: a table's cell of them,
    serve.explain.because_text) from (query id, movie rows, scores[, fallback[, because]])
    (results.stream_rows)."""
    from embedrec.serve.explain import because_text

    for t in triples:
        because = t[4] if because_column and len(t) > 4 else None
        for j, r in enumerate(rec.rows_for(*t[:3])):
            r = r if query_column == "user_id" else {query_column: r.pop("user_id"), **r}
            if fallback_column:
                r["fallback"] = FALLBACK_VALUES[bool(t[3]) if len(t) > 3 else 0]
            if because_column:
                items = None if because is None else because[j]
                r["because"] = because_text(items) if because_as_text else items
            yield r


def write_delimited(rec: Recommender, triples: Iterable[tuple], fmt: str, out, header: bool = True,
                    query_column: str = "user_id", fallback_column: bool = False,
                    because_column: bool = False) -> None:
    """CSV/TSV rows of COLUMNS (the first named ``query_column``; then ``fallback`` with ``fallback_column``, and
    ``because`` with ``because_column``: serve.explain.because_text's cell, empty for a fallback's list), fast: each
    movie's cells are quoted once and reused. ``triples``: (query id, movie rows, scores[, fallback[, because]])."""
    from embedrec.output import CsvLines, _plain, float_text, tsv_cells
    from embedrec.serve.explain import because_text

    delim = "," if fmt == "csv" else "\t"
    names = delim.join([query_column, *COLUMNS[1:], *(["fallback"] if fallback_column else []),
                        *(["because"] if because_column else [])])
    w = CsvLines() if fmt == "csv" else None  # a title with a line break stays one quoted cell
    cache: dict[int, str] = {}

    def cells(values) -> str:
        if w is None:  # TSV: no quoting (output.tsv_cells)
            return tsv_cells(values)
        return w.line([_plain(v) for v in values])

    rank_texts: list[str] = []

    def ranked(n: int) -> list[str]:  # '\t1\t', '\t2\t', ...: made once per rank
        while len(rank_texts) < n:
            rank_texts.append(f"{delim}{len(rank_texts) + 1}{delim}")
        return rank_texts

    # the header goes out with the first row, so an error before it (--strict) leaves stdout empty
    for t in triples:
        user_id, ids, scores = t[:3]
        if header:
            out.write(names + "\n")
            header = False
        # a new user's id (None) is an empty field, as write_rows writes it (csv alone quotes a row of one empty cell)
        u = "" if user_id is None or user_id == "" else cells([user_id])
        end = f"{delim}{FALLBACK_VALUES[bool(t[3]) if len(t) > 3 else 0]}" if fallback_column else ""
        because = t[4] if because_column and len(t) > 4 else None
        parts = []
        ranks = ranked(len(ids))
        for j, (rank, m, sc) in enumerate(zip(ranks, ids.tolist(), np.asarray(scores).tolist())):
            mc = cache.get(m)
            if mc is None:  # the movie's cells, and the delimiter after them
                mc = cache[m] = cells([py_id(rec.movie_ids[m]), rec.titles[m], rec.years[m],
                                       rec.genres[m] or []]) + delim
            why = "" if not because_column else delim + _cell(cells, because_text(because[j]) if because else None)
            parts.append(f"{u}{rank}{mc}{float_text(sc)}{end}{why}\n")
        out.write("".join(parts))
    if header:
        out.write(names + "\n")


def _cell(cells, text: str | None) -> str:
    """One cell of text as ``cells`` writes it, empty for none or '' (csv quotes a lone empty cell: '""')."""
    return cells([text]) if text else ""


def _movie_fields(rec: Recommender, m: int) -> dict:
    """A listed movie's fields as the JSON writers print them (write_json, write_jsonl)."""
    return {"movie_id": py_id(rec.movie_ids[m]), "title": rec.titles[m] or None, "year": rec.years[m],
            "genres": rec.genres[m] or []}


def write_json(rec: Recommender, triples: Iterable[tuple], out, query_column: str = "user_id",
               fallback_column: bool = False, because_column: bool = False) -> None:
    """One JSON array of COLUMNS (and ``fallback``, then ``because``: a list of objects, null for a fallback's list),
    written row by row as the answers come, byte for byte what
    ``write_rows(as_rows(...), COLUMNS, "json")`` prints (indented objects), fast like write_jsonl: each movie's
    fields are encoded once and reused (a list of 1,000 a user took 15x write_jsonl's time through json.dumps
    per row). Stopped or failed after some rows, the array is closed over them, as write_rows closes it."""
    import contextlib
    import json
    import math

    from embedrec.output import _jsonable, utf8

    ascii_only = not utf8(out)
    cache: dict[int, str] = {}
    sep = "[\n  "
    try:
        for t in triples:
            user_id, ids, scores = t[:3]
            u = "{\n    " + json.dumps(query_column) + ": " + json.dumps(user_id, ensure_ascii=ascii_only) + \
                ',\n    "rank": '
            end = (f',\n    "fallback": "{FALLBACK_VALUES[bool(t[3]) if len(t) > 3 else 0]}"' if fallback_column
                   else "")
            because = t[4] if because_column and len(t) > 4 else None
            parts = []
            for j, (rank, m, sc) in enumerate(zip(range(1, len(ids) + 1), ids.tolist(), np.asarray(scores).tolist())):
                mc = cache.get(m)
                if mc is None:  # the movie's fields as json.dumps(indent=2) writes them, inside the array's indent
                    mc = cache[m] = json.dumps(_movie_fields(rec, m), indent=2,
                                               ensure_ascii=ascii_only)[2:-2].replace("\n", "\n  ")
                why = "" if not because_column else ',\n    "because": ' + json.dumps(
                    None if because is None else _jsonable(because[j]), indent=2,
                    ensure_ascii=ascii_only).replace("\n", "\n    ")  # (a list inside the object's indent)
                parts.append(f'{sep}{u}{rank},\n  {mc},\n    "score": {repr(sc) if math.isfinite(sc) else "null"}'
                             f'{end}{why}\n  }}')
                sep = ",\n  "
            out.write("".join(parts))
    except BaseException as e:
        if sep != "[\n  " or isinstance(e, KeyboardInterrupt):  # rows written: the array closed over them; a stop
            with contextlib.suppress(OSError, ValueError):      # (Ctrl-C, SIGTERM) before any: the empty array
                out.write("\n]\n" if sep != "[\n  " else "[]\n")
        raise
    out.write("[]\n" if sep == "[\n  " else "\n]\n")


def write_jsonl(rec: Recommender, triples: Iterable[tuple], out, query_column: str = "user_id",
                fallback_column: bool = False, because_column: bool = False) -> None:
    """JSON Lines of COLUMNS (and ``fallback``, then ``because``: a list of objects, null for a fallback's list), fast like write_delimited: each movie's JSON fields are encoded
    once and reused (the same objects ``write_rows(as_rows(...), COLUMNS, "jsonl")`` prints)."""
    import json
    import math

    from embedrec.output import _jsonable, utf8

    ascii_only = not utf8(out)  # an output that is not UTF-8: escaped, not a failure at the first accent
    cache: dict[int, str] = {}
    for t in triples:
        user_id, ids, scores = t[:3]
        u = '{' + json.dumps(query_column) + ': ' + json.dumps(user_id, ensure_ascii=ascii_only) + ', "rank": '
        end = (f', "fallback": "{FALLBACK_VALUES[bool(t[3]) if len(t) > 3 else 0]}"' if fallback_column
               else "")
        because = t[4] if because_column and len(t) > 4 else None
        parts = []
        for rank, (m, sc) in enumerate(zip(ids.tolist(), np.asarray(scores).tolist()), 1):
            mc = cache.get(m)
            if mc is None:
                mc = cache[m] = json.dumps(_movie_fields(rec, m), ensure_ascii=ascii_only)[1:-1]
            why = "" if not because_column else ', "because": ' + json.dumps(
                None if because is None else _jsonable(because[rank - 1]), ensure_ascii=ascii_only)
            parts.append(f'{u}{rank}, {mc}, "score": {repr(sc) if math.isfinite(sc) else "null"}{end}{why}}}\n')
        out.write("".join(parts))
