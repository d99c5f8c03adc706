"""A stream of user ids answered and written as it comes (``recommend --users``): ``recommend_stream``, which
checks its arguments at the call and answers the ids a batch at a time (``serve.stream.recommend_many``) for as
long as the model is open, and ``write_stream``, which writes those answers, or a ``Recommendations``, to a text
file in each of the formats ``output.FORMATS`` names. ``Model``'s methods of the same names call these. numpy
only: serving imports this.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator

import numpy as np

from embedrec.argcheck import choice_arg, count_arg, flag
from embedrec.data.ids import MISSING, refuse_frame
from embedrec.errors import UsageError, shorten
from embedrec.models_lookup import allowed_rows, k_arg, per_user_exclude
from embedrec.results import History, Predictions, Recommendations, SimilarUsers, StreamAnswer, stream_rows
from embedrec.serve.recommender import COLUMNS


def recommend_stream(model, lines: Iterable[str], k: int | None, *, missing: str, exclude_seen: bool,
                     genres: Iterable[str], year_min: int | None, year_max: int | None, batch_size: int,
                     on_batch, name: str, exclude: Iterable, candidates: Iterable | None,
                     explain: int | None, prior="auto", diversify: float | None = None) -> Iterator[tuple]:
    """``Model.recommend_stream``: the arguments checked at the call, then (user id, movie ids, scores) per user
    as ``serve.stream.recommend_many`` answers each batch of the lines, as a :class:`StreamAnswer` (with its
    ``explanations`` where ``explain`` asks), refused once the model is closed."""
    from embedrec.serve.diversify import lambda_arg
    from embedrec.serve.stream import recommend_many

    if isinstance(lines, (str, bytes)):  # iterating '196\n186' gives its characters, each read as an id
        raise UsageError(f"recommend_stream: got the text '{shorten(lines)}'; give the lines or ids one by one, "
                         "e.g. io.StringIO(text) (its '#' lines stay comments), open(path) or [196, 186]")
    refuse_frame(lines, "recommend_stream: expected the lines or ids one by one")
    # a file's lines (open(path), sys.stdin, the CLI's --users) may hold '#' comments; a list's items are ids
    file = hasattr(lines, "readline") or bool(getattr(lines, "lines_of_a_file", False))
    ready = getattr(lines, "ready", None)  # the CLI's input: a batch ends where a pipe or a terminal pauses
    ready = ready if callable(ready) else None
    try:  # checked at the call, not at the first next() (a review: a TypeError from inside the generator)
        lines = iter(lines)
    except TypeError:
        raise UsageError(f"recommend_stream: lines={shorten(repr(lines), 40)}: give user ids one by one, e.g. "
                         "open(path), sys.stdin or [196, 186]") from None
    if on_batch is not None and not callable(on_batch):
        raise UsageError(f"recommend_stream: on_batch={shorten(repr(on_batch), 40)}: give a function of no "
                         "arguments (e.g. sys.stdout.flush) or None")
    choice_arg(missing, MISSING, "missing")
    diversify = lambda_arg(diversify)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UsageError(f"recommend_stream: batch_size={batch_size!r}: give a whole number >= 1")
    e = model.engine
    e.check_stream_prior(prior)  # a weight given: refused before any answer where no user update-users added is
    if explain is not None:  # refused before any answer: another model, or a run without its users' solve
        explain = count_arg(explain, "explain", 1)
        e.explainable()
        e.known_solve_arrays()
    own = per_user_exclude(model, exclude)  # {user: movies}: each user's own, beside the seen ones (every key read)
    answers = recommend_many(e, lines, k_arg(model, k), include_seen=not flag(exclude_seen, "exclude_seen"),
                             allowed=allowed_rows(model, genres, year_min, year_max, () if own else exclude,
                                                  candidates), own=own,
                             strict=missing == "error",
                             fallback="popular" if missing == "popular" else "none", batch=batch_size,
                             on_batch=on_batch, name=name, file=file, ready=ready, prior=prior,
                             diversify=diversify)

    def answered() -> Iterator[tuple]:  # a red team: a stream kept answering after close(), its hold let go
        while True:
            try:
                q, rows, scores, f = next(answers)
            except StopIteration as end:  # its value, the ids skipped as unknown, passed on (answers.Answer)
                return end.value
            if model._engine is None:
                raise UsageError("recommend_stream: this model was closed while its answers were still being "
                                 "read; read them before close() (or the end of the with block)")
            why = None
            if explain is not None and not f:  # the user's solve, split over the listed movies
                from embedrec.results import explained

                row = int(e.users.rows([q])[0][0])  # a weight given: an added user's (a trained user's has none)
                why = explained(e, e.known_solve(row, prior if e.added_rows([row]).size else "auto"), q, rows,
                                explain)
            yield StreamAnswer.of(q, rows, scores, e.movie_ids, f, why)

    return answered()


def write_stream(model, triples: Iterable[tuple], out, fmt: str, header: bool, *, query_column: str | None,
                 fallback_column: bool, because_column: bool) -> None:
    """``Model.write_stream``: the answers (or a Recommendations) written to the text file ``out`` as ``fmt``, by
    serve/stream.py's fast writers (csv, tsv, jsonl, json) or output.write_rows (a table)."""
    from embedrec.output import FORMATS, write_rows
    from embedrec.serve import stream

    choice_arg(fmt, FORMATS, "fmt")
    header, fallback_column = flag(header, "header"), flag(fallback_column, "fallback_column")
    because_column = flag(because_column, "because_column")
    if not callable(getattr(out, "write", None)):
        said = f"the path {shorten(repr(str(out)), 40)}" if isinstance(out, (str, os.PathLike)) else \
            shorten(repr(out), 40)
        raise UsageError(f"write_stream: out must be a text file (sys.stdout, or open(path, 'w') for a file), not "
                         f"{said}")
    if isinstance(out, (io.RawIOBase, io.BufferedIOBase)) or "b" in str(getattr(out, "mode", "")):
        raise UsageError("write_stream: out is a binary file; open it with 'w' (open(path, 'w')), or give "
                         "sys.stdout")
    if isinstance(triples, Predictions):  # iterable, but of (user, movie, fallback, score) pairs
        raise UsageError("write_stream writes recommendation lists, not a Predictions; write predictions with "
                         "pred.to_frame().to_csv(out) (or iterate pred: (user id, movie id, fallback, score))")
    if isinstance(triples, (SimilarUsers, History)):  # iterable too, of users or of rated movies: not lists of
        kind = type(triples).__name__  # movies to write as such
        raise UsageError(f"write_stream writes recommendation lists, not a {kind}; write it with "
                         f"result.to_frame().to_csv(out, index=False) (or result.to_rows())")  # (a review: a
        # SimilarUsers' user ids were written as movie ids, with those movies' titles)
    if isinstance(triples, Recommendations):
        query_column = query_column or triples.query_column
        triples = triples.triples()
    query_column = query_column or "user_id"
    choice_arg(query_column, ("user_id", "movie_id_query"), "query_column")
    if isinstance(triples, (str, bytes)) or not isinstance(triples, Iterable):
        raise UsageError(f"write_stream: triples={shorten(repr(triples), 40)}: give recommend_stream's answers, a "
                         "Recommendations, or (query id, movie ids, scores) tuples")
    triples = stream_rows(model.engine, triples, because_column)
    extra = {"query_column": query_column, "fallback_column": bool(fallback_column),
             "because_column": because_column}
    if fmt in ("csv", "tsv"):
        stream.write_delimited(model.engine, triples, fmt, out, header=header, **extra)
    elif fmt == "jsonl":
        stream.write_jsonl(model.engine, triples, out, **extra)
    elif fmt == "json":
        stream.write_json(model.engine, triples, out, **extra)
    else:
        rows = stream.as_rows(model.engine, triples, **extra, because_as_text=True)  # as --user --explain's
        write_rows(rows, [query_column, *COLUMNS[1:], *(["fallback"] if fallback_column else []),
                          *(["because"] if because_column else [])], fmt, out, header=header)
