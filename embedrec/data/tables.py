"""Generic ratings tables: a CSV/TSV/Parquet file or stdin, with the column mapping of ``data.columns``, read by
:func:`read_generic` into a RawData. This module holds the flow (``_read_generic``: a stream read once, a Parquet
file or a text table, the ids, the times, the movies file) and what it does with the rows once read: the text
table's dtypes (``_read_text_table``), data.id_type (a blank text id refused: ``_blank_ids``) and data.missing=drop
(``_drop_missing``), a rating column of event types weighed by data.event_weights (``_weigh_events``), the movies
of the file's own title and genres columns where no data.movies is given (``_movies_from_ratings``), and the
warning of title and genres columns named but read from nowhere (``_warn_movie_columns``).

Each other concern is a module of its own below this one, which calls it and which none of them imports:
``data/sniff.py`` (what a table's first bytes and first line say: binary data refused, a compressed stream, a
byte-order mark, the separator, the header line), ``data/columns.py`` (which columns are read as what:
data.columns matched with close-match hints, the optional timestamp and rating, the title and genres),
``data/times.py`` (ISO dates and Unix times made seconds, data.timestamp_unit) and ``data/parquet.py`` (a Parquet
file's refusal and its columns' types)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedrec.data.columns import (
    META,
    SAMPLE_ROWS,
    _guess_ids,
    _match_columns,
    _movie_columns,
    _optional_rating,
    _optional_timestamp,
    _or_default,
    _require_columns,
    _sample_columns,
    dated_timestamp,
    events_recipe,
    left_out,
    passed_over,
    weights_mapping,
    with_unit,
)
from embedrec.data.ids import is_number_text, said_ids, spaced_ids
from embedrec.data.idtext import (
    _refuse_zero_padded,
    auto_ids,
    float_written_ids,
    ids_like,
    ids_may_change,
    odd_float_ids,
    refuse_odd_float_ids,
    same_id_type,
)
from embedrec.data.movietable import _genre_list, read_movies_table
from embedrec.data.parquet import (
    _check_parquet_types,
    _parquet_refusal,
    parquet_columns,
    parquet_head,
    text_times,
)
from embedrec.data.parsing import (
    DROP_MISSING,
    LINE_SCAN_MAX,
    RawData,
    movies_frame,
    read_numeric_table,
    rows_lines,
)
from embedrec.data.sniff import (
    MOSTLY_DATES,
    _from_bom,
    _head,
    _header,
    _headerless_fields,
    _one_column,
    _packed,
    _ratings_third,
    _refuse_binary,
    _sniff_separator,
    _unpacked_stream,
)
from embedrec.data.textfiles import (
    COMPRESSED,
    HEAD,
    LIKE_IT_SHOWN,
    NAMED,
    TARS,
    _label,
    _parser_error,
    _row_line,
    _row_lines,
    data_line,
    data_lines,
    decompressed,
    head_line,
    is_stream,
    lines_like_it,
    read_all,
    read_denied,
    read_stream,
    reading,
    uncompressed_name,
)
from embedrec.data.times import NO_TIME, _dated, _iso_dates, _seconds, epoch_seconds, format_advice
from embedrec.errors import ConfigError, DataError, SkippedNote, sh_quote, shorten

log = logging.getLogger("embedrec")

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig


def read_generic(source: str, cfg: DataConfig, unrated: str | None = None, or_default=(),
                 header_is_data=None, progress: bool = False, guess: bool = True, shown=str,
                 held_unit: str | None = None) -> RawData:
    """A ratings CSV/TSV/Parquet (or '-' for stdin) with the column mapping in ``cfg`` (a DataConfig). A file that
    cannot be read for its permissions is a DataError saying so (textfiles.read_denied). ``unrated``: what a row
    counts as where the file has no rating column, for a missing one's advice where the reader is not ingest's
    (update-users: 'a like, rating 5, the scale's top'); None: ingest's (rating 1, or a play or click log's event).
    ``or_default``: the data.columns keys ('user', 'movie', ...) whose column the file may name by its default name
    instead (columns._or_default); ``header_is_data(names)``: whether a header line's names are data, for a missing
    column's advice (columns._require_columns): both update-users'. ``progress``: a bar on stderr over the bytes of a
    text table as its rows are parsed (:func:`_parse_bar`), or a Parquet table's rows read, named by
    ``shown(source)`` (a zip's member as ``m.zip!member``, not by the folder it was unzipped to). ``guess``: a missing user or movie column may be
    guessed (columns._guess_ids); False where the caller knows data.columns.user and .movie were given as they
    are. ``held_unit``: data.timestamp_unit is the one another table was read in, which this one's Unix times must
    be of (times.epoch_seconds' ``held``: update-users', naming the run's dataset). The unit its Unix times were read
    in is RawData.timestamp_unit."""
    with reading():
        raw = _read_generic(source, cfg, unrated, or_default, header_is_data, progress, guess, shown, held_unit)
    _warn_movie_columns(cfg, raw)  # after the file is read: an error stays the one line
    return raw


def _warn_movie_columns(cfg: DataConfig, raw: RawData) -> None:
    """data.columns.title/genres set with no movies file to read them from, and no such column in the ratings file
    (which gives the titles and genres where there is no movies file): they do nothing; said (a first-hour review:
    a re-ingest without data.movies kept them and lost every title and genre without a word)."""
    from embedrec.config import ColumnsConfig

    read = set(raw.movies.attrs.get("from_ratings", ())) if raw.movies is not None else set()
    unused = [f"data.columns.{k}={getattr(cfg.columns, k)}" for k in ("title", "genres")
              if getattr(cfg.columns, k) != getattr(ColumnsConfig, k) and k not in read]
    if unused and not cfg.movies:
        one = len(unused) == 1
        log.warning("%s name%s of a movies file (data.movies) or of the ratings file, and neither is there (no "
                    "movies file is given, and the ratings file has no such column), so %s no effect: the movies get "
                    "no %s; give the movies file with «--set data.movies=FILE|data.movies=FILE», or leave %s out",
                    " and ".join(unused), "s a column" if one else " columns", "it has" if one else "they have",
                    " or ".join(k.split("=")[0].rsplit(".", 1)[1] + ("s" if k.startswith("data.columns.title") else "")
                                for k in unused), "it" if one else "them")


@dataclasses.dataclass
class _Rows:
    """A ratings table's rows as read (a Parquet file's or a text table's), before the ratings, times and ids are
    typed: the frame by role and what the later steps of the flow need to know of its read."""

    df: pd.DataFrame
    wanted: dict  # the file's column -> its role ('user_id', 'movie_id', 'rating', 'timestamp', META's)
    notes: list
    epoch: bool  # the timestamp column holds Unix times (else dates, made seconds)
    first: int  # the line of the first data row
    both: dict = dataclasses.field(default_factory=dict)  # the columns read while the file names their default too
    counted: bool = False  # data.repeats=sum read a file without its rating column as events (_optional_rating)
    kept: tuple | None = None  # data.missing=drop: the rows read that were kept, where some were dropped
    untimed: object = None  # data.missing=drop: the rows kept whose time alone is empty, given NO_TIME
    seen: pd.DataFrame | None = None  # data.missing=drop: the ids of the rows dropped that name a user and a movie
    floated: list = dataclasses.field(default_factory=list)  # the roles of the id columns written '1.0'
    line_of: object = None  # a data row's line (textfiles.data_line), where the text can be read again
    lines_of: object = None
    skipped: list = dataclasses.field(default_factory=list)  # data.bad_lines=skip: the lines of too many fields
    unread: list = dataclasses.field(default_factory=list)  # ... and those of an unreadable value


def _read_generic(source: str, cfg: DataConfig, unrated: str | None = None, or_default=(),
                  header_is_data=None, progress: bool = False, guess: bool = True, shown=str,
                  held_unit: str | None = None) -> RawData:
    """The flow of :func:`read_generic`: the format, a stream read once, the rows of a Parquet file or of a text
    table, then the ratings, times and ids typed, and the movies."""
    label = _label(source)
    named = shown(label)  # (its bars' name)
    fmt = _table_format(source, cfg)
    packed = source.lower().endswith((*COMPRESSED, *TARS))
    # stdin, and a path that is a pipe (<(cat r.csv), /dev/stdin, a FIFO), is read once, whole: every step below
    # reads its text from memory (a compressed one: decompressed reads the pipe once)
    stream = source != "-" and not packed and is_stream(source)
    whole = None
    if source == "-" or stream:
        whole, fmt = _read_once(source, cfg, fmt, label)
    wanted = _wanted_columns(cfg.columns)
    if fmt == "parquet":
        rows = _parquet_rows(source, cfg, whole, packed, label, wanted, unrated, or_default, progress, guess, named)
    else:
        rows = _text_rows(source, cfg, fmt, whole, packed, label, wanted, unrated, or_default, header_is_data,
                          progress, guess, named)
    no_ratings = _float_ratings(rows.df)
    times_read: dict = {}  # the unit its Unix times were read in (times.epoch_seconds' ``read``)
    if "timestamp" in rows.df:
        _times_as_seconds(rows, cfg, label, times_read, held_unit)
    _type_ids(rows, cfg, label)
    movies = _movies_of_ratings(rows, cfg, label)
    files = [] if source == "-" or stream or packed and is_stream(source) else [Path(source)]  # a pipe: no checksum
    if cfg.movies:
        movies = _movies_file(rows, cfg, files)
    return _raw_data(rows, movies, cfg, fmt, files, label, no_ratings, times_read)


def _table_format(source: str, cfg: DataConfig) -> str:
    """data.format, or under 'auto' the one the file's name says (csv where it says none)."""
    fmt = cfg.format
    if fmt == "auto":
        low = uncompressed_name(source).lower()
        fmt = "parquet" if low.endswith(".parquet") else "tsv" if low.endswith((".tsv", ".tab")) else "csv"
    return fmt


def _wanted_columns(cols) -> dict:
    """data.columns' names of the columns to read -> their roles."""
    wanted = {cols.user: "user_id", cols.movie: "movie_id"}
    if cols.rating:
        wanted[cols.rating] = "rating"
    if cols.timestamp:
        wanted[cols.timestamp] = "timestamp"
    return wanted


def _read_once(source: str, cfg: DataConfig, fmt: str, label: str) -> tuple[bytes, str]:
    """stdin or a pipe read whole, decompressed where its first bytes say so, and the format its first bytes say
    (Parquet's, under data.format auto); a text table's first MiB refused where it is binary, before the rest is
    read."""
    # a text table's first MiB is looked at before the rest is read: /dev/zero is refused, not read for ever
    check = None if fmt == "parquet" else (lambda head: _refuse_binary(head, label, True, (cfg.separator,), cfg.encoding))
    # a pipe has no name to say what it holds: its first bytes say it (a red team:
    # `cat r.csv.gz | embedrec ingest -` was told to name it .gz), a compressed stream read decompressed and
    # a Parquet one as Parquet where data.format is auto

    def check_text(head: bytes) -> None:
        if check is not None and _packed(head[:16]) is None and not (cfg.format == "auto" and
                                                                       head.startswith(b"PAR1")):
            check(head)
    read = read_stream(sys.stdin.buffer, check_text) if source == "-" else read_all(source, label, check_text)
    whole = _unpacked_stream(read, label)
    if cfg.format == "auto" and whole.startswith(b"PAR1"):
        fmt = "parquet"
    elif check is not None and whole is not read:  # decompressed: its text's head (plain text's was checked)
        check(whole[:HEAD])
    return whole, fmt


def _parquet_rows(source: str, cfg: DataConfig, whole: bytes | None, packed: bool, label: str, wanted: dict,
                  unrated: str | None, or_default, progress: bool, guess: bool, named: str) -> _Rows:
    """A Parquet table's rows: its columns matched, the columns wanted read alone, data.missing=drop's rows left
    out, event words weighed, and the columns' types checked."""
    # stdin (and a compressed file) is read whole first: a pipe cannot seek to the footer
    src = io.BytesIO(whole) if whole is not None else io.BytesIO(decompressed(source, label)) if packed \
        else source
    with contextlib.ExitStack() as stack:
        fh, pf = _parquet_file(src, stack, label)
        wanted, notes, both, counted = _parquet_columns(pf, source, cfg, label, wanted, unrated, or_default, guess)
        try:
            df = _read_parquet_rows(pf, list(wanted), progress, named)
        except Exception as e:
            raise DataError(f"{label}: {_parquet_refusal(fh, e)}") from None
        del pf
    rows = _Rows(_blank_as_missing(df[list(wanted)].rename(columns=wanted)), wanted, notes, False, 1, both, counted)
    if cfg.missing == "drop":
        rows.df, rows.kept, rows.seen, rows.untimed = _drop_missing(rows.df, label, skip=META,
                                                                    ids=("user_id", "movie_id"), time="timestamp")
    df, kept, untimed = rows.df, rows.kept, rows.untimed
    # a datetime, date or ISO text column is dates, made seconds below; integers (floats: with a fraction) are
    # Unix times of any unit
    rows.epoch = "timestamp" in df and (pd.api.types.is_integer_dtype(df["timestamp"]) or
                                        pd.api.types.is_float_dtype(df["timestamp"]) or
                                        cfg.timestamp_format is None and text_times(df["timestamp"], untimed)) and \
        not pd.api.types.is_bool_dtype(df["timestamp"])
    if cfg.event_weights is not None and "rating" in df:
        col = next(c for c, v in wanted.items() if v == "rating")
        df["rating"] = _weigh_events(df["rating"], cfg.event_weights, str(col), label, notes,
                                     lambda row: f"{label}: row {row + 1 if kept is None else kept[1][row] + 1}",
                                     cfg.repeats)
    _check_parquet_types(df, {v: c for c, v in wanted.items()}, label, cfg.id_type,
                         None if kept is None else kept[1], untimed, cfg.timestamp_format)
    return rows


def _parquet_file(src, stack: contextlib.ExitStack, label: str):
    """The file handle (opened on ``stack`` where ``src`` is a path) and pyarrow's ParquetFile of it: its schema and
    row count; a file not found, unreadable or not Parquet refused."""
    import pyarrow.parquet as pq

    fh = src
    try:  # Python's open: pyarrow's refuses a path that is not UTF-8
        fh = stack.enter_context(open(src, "rb")) if isinstance(src, (str, Path)) else src
        pf = pq.ParquetFile(fh)  # its schema and row count: the columns read are read alone, below
    except FileNotFoundError:
        raise DataError(f"{label}: file not found; check data.source", path=str(label)) from None
    except PermissionError as e:  # pyarrow's names no file
        raise read_denied(e, label) from None
    except Exception as e:
        raise DataError(f"{label}: {_parquet_refusal(fh, e)}") from None
    return fh, pf


def _parquet_columns(pf, source: str, cfg: DataConfig, label: str, wanted: dict, unrated: str | None, or_default,
                     guess: bool) -> tuple[dict, list, dict, bool]:
    """A Parquet table's columns matched to data.columns: the columns to read -> their roles, the notes, the
    columns read while the file names their default too, and whether it is read as events without ratings."""
    found = parquet_columns(pf, label)
    if pf.metadata.num_rows == 0:
        raise DataError(f"{label}: the file has no data rows; point data.source at a ratings file with rows")
    both = passed_over(found, wanted, or_default)
    wanted, matched = _match_columns(found, _or_default(found, wanted, or_default))
    meta_notes = _movie_columns(found, wanted, cfg, label)
    # (a DataFrame's, er.ingest(df): a Parquet file's column of dates is named in a warning instead, with the
    # setting that reads it, as a text file's is: columns._require_columns)
    timed = _datetime_column(pf, found, wanted, cfg, label, or_default) \
        if guess and NAMED.get(str(source)) == _ratings_frame_name() else []
    dated_timestamp(found, wanted, cfg, functools.partial(parquet_head, pf), or_default, matched)
    guessed = (_guess_ids(found, wanted, cfg, label) if guess else []) + timed
    no_times = _optional_timestamp(found, wanted, cfg, functools.partial(parquet_head, pf), or_default,
                                   matched)
    counted = _optional_rating(found, wanted, cfg, functools.partial(parquet_head, pf))
    notes = guessed + _require_columns(found, wanted, label, no_times, matched, counted,
                                       functools.partial(parquet_head, pf), unrated, id_type=cfg.id_type)
    notes += meta_notes
    return wanted, notes, both, counted


def _text_rows(source: str, cfg: DataConfig, fmt: str, whole: bytes | None, packed: bool, label: str, wanted: dict,
               unrated: str | None, or_default, header_is_data, progress: bool, guess: bool, named: str) -> _Rows:
    """A text table's rows: its text and separator, its columns matched (by its header or by position), data.bad_lines=skip's
    lines taken out, what its first lines show refused early, then the rows read, data.missing=drop's rows left out,
    the times and event words read, and how a row's line is found again."""
    src, sep = _text_source(source, cfg, fmt, whole, packed, label)
    wanted, notes, both, counted, guessed = _text_columns(src, sep, cfg, fmt, label, wanted, unrated, or_default,
                                                          header_is_data, guess)
    skipped: list[int] = []  # data.bad_lines=skip: the lines with too many fields, taken out of the text
    if cfg.bad_lines == "skip":
        src, skipped = _skip_bad_lines(src, sep, cfg.encoding, label, cfg.header, notes)
    ids = [c for c, v in wanted.items() if v in ("user_id", "movie_id")]
    dated = next((c for c, v in wanted.items() if v == "timestamp"
                  and _dated(src, sep, cfg.encoding, c, None if cfg.header else list(wanted),
                             cfg.timestamp_format)), None)
    names = None if cfg.header else list(wanted)
    # data.id_type=auto: ids are read as integers (pandas infers them: '7.0', '1e3', words are then no int64
    # column) unless a byte scan finds a field an integer would change ('0196', '+5'); then, or where the
    # inferred column is no int64, as text, and each column is integers only where every id round-trips
    # text ids under data.id_type=int, and event words without data.event_weights, first from the first lines
    # (before the byte scan: 1.7 s of 6M rows)
    # an id column written '1.0' (pandas' float column) by its first rows: read as text, then integers where
    # every id of it is written so (idtext.float_written_ids), else read as ever
    floated = _float_written(src, sep, cfg, ids, names)
    plain = [c for c in ids if c not in floated]
    unread: list[int] = []  # ... and those whose rating, Unix time or integer id cannot be read
    if cfg.bad_lines == "skip":
        src, unread = _skip_bad_values(src, sep, cfg, label, wanted, plain, dated, names, notes)
    _refuse_early(src, sep, cfg, label, wanted, plain, dated, names)
    text_ids = cfg.id_type == "str" or cfg.id_type == "auto" and ids_may_change(src, sep, cfg.encoding)
    if cfg.id_type == "int":
        _refuse_changed_ids(src, sep, cfg, label, plain, names)
    df, texted, floated = _read_text_rows(src, sep, cfg, label, wanted, ids, dated, text_ids, floated, names,
                                          progress, named)
    if floated:
        notes.append(f"{label}: {'columns' if len(floated) > 1 else 'column'} "
                     f"{' and '.join(repr(c) for c in floated)} read as integer ids, every one written as a "
                     "whole number with '.0' ('1.0', as pandas writes an integer column that met a missing value)")
    if guessed:
        _refuse_counts(df, wanted, guessed, label)
    rows = _Rows(df[list(wanted)], wanted, notes, texted is None, 2 if cfg.header else 1, both, counted,
                 floated=[wanted[c] for c in floated], skipped=skipped, unread=unread)
    _text_frame(rows, src, sep, cfg, label, ids, texted)
    # a file read again for a message's line; text held in memory (stdin, a compressed file) only where it is
    # small enough that keeping it for that costs little (else a line is counted from the rows)
    # (a table whose bad lines were taken out is in memory whatever its size: its lines are its own)
    if isinstance(src, (str, Path)) or isinstance(src, bytes) and (len(src) <= LINE_SCAN_MAX or skipped or unread):
        rows.line_of = functools.partial(data_line, src, sep, cfg.encoding, 1 if cfg.header else 0, rows.first)
        rows.lines_of = functools.partial(data_lines, src, sep, cfg.encoding, 1 if cfg.header else 0, rows.first)
    return rows


def _text_source(source: str, cfg: DataConfig, fmt: str, whole: bytes | None, packed: bool, label: str):
    """A text table's text (a path, or bytes in memory) without its byte-order mark, and its separator (sniffed
    where data.separator is none); binary data refused, and a comma separator under data.decimal ','."""
    sep = cfg.separator or ("\t" if fmt == "tsv" else None)
    src = whole if whole is not None else decompressed(source, label) if packed else source
    # the first MiB before anything reads the whole (a review: a BOM then 6 GB of zeros, read by _from_bom);
    # stdin and a pipe were checked as they were read
    if whole is None:
        _refuse_binary(src, label, isinstance(src, bytes), (sep,), cfg.encoding)
    src = _from_bom(src, label, cfg.encoding)
    if sep is None:
        sep = _sniff_separator(src, cfg.encoding)
        if sep == "," and cfg.decimal == "," and b'"' not in _head(src, 1 << 16):  # quoted "3,5" reads (a
            # review: pandas' to_csv(decimal=',') writes so); (the config's own check sees an explicit ',' only; pandas' error
            # was 'a numeric column could not be parsed', a red team)
            raise DataError(f"{label}: data.decimal is ',', but the file's fields are separated by commas (its "
                            "first line), so a decimal comma cannot be told from a separator; a file with "
                            "decimal commas separates its fields with another character: set data.separator "
                            "to it (e.g. ';'), or leave data.decimal at '.'")
    return src, sep


def _text_columns(src, sep: str, cfg: DataConfig, fmt: str, label: str, wanted: dict, unrated: str | None,
                  or_default, header_is_data, guess: bool) -> tuple[dict, list, dict, bool, int]:
    """A text table's columns matched to data.columns by its header line, or by position: the columns to read ->
    their roles, the notes, the columns read while the file names their default too, whether it is read as events
    without ratings, and the fields a line where a headerless third field was taken for the rating (else 0)."""
    notes: list[str] = []
    both: dict = {}
    counted = False
    header_names, guessed = None, 0
    if cfg.header:
        header_names = _header(src, sep, cfg.encoding, label, cfg.id_type)
        if len(header_names) == 1 and len(wanted) > 1:
            raise _one_column(header_names[0], sep, label, head_line(src, cfg.encoding),
                              by=None if fmt != "tsv" else "name" if cfg.format == "auto" else "format",
                              set_by_user=cfg.separator is not None)
        both = passed_over(header_names, wanted, or_default)
        wanted, matched = _match_columns(header_names, _or_default(header_names, wanted, or_default))
        meta_notes = _movie_columns(header_names, wanted, cfg, label)
        dated_timestamp(header_names, wanted, cfg, lambda cols: _sample_columns(src, sep, cfg.encoding, cols),
                        or_default, matched)
        guessed_ids = _guess_ids(header_names, wanted, cfg, label) if guess else []
        no_times = _optional_timestamp(header_names, wanted, cfg,
                                       lambda cols: _sample_columns(src, sep, cfg.encoding, cols), or_default,
                                       matched)
        counted = _optional_rating(header_names, wanted, cfg,
                                   lambda cols: _sample_columns(src, sep, cfg.encoding, cols))
        notes = guessed_ids + _require_columns(header_names, wanted, label, no_times, matched, counted,
                                               lambda cols: _sample_columns(src, sep, cfg.encoding, cols),
                                               unrated, header_is_data, id_type=cfg.id_type)
        notes += meta_notes
    else:  # by position: more fields would shift them (to_csv's index column became pandas' index)
        n = _headerless_fields(src, sep, cfg.encoding, label, list(wanted))
        if n == len(wanted) - 1 and list(wanted.values())[-1] == "timestamp" and \
                _ratings_third(src, sep, cfg.encoding, cfg.decimal):  # user, movie, rating: no times
            # (as Surprise's Reader reads such a file; a first-hour pass was told to set
            # data.columns.timestamp=null for it); every row's third field checked once read (guessed)
            wanted = dict(list(wanted.items())[:-1])
            guessed = n
            log.info("%s: %d fields a line, read as %s (no times)", label, n, ", ".join(wanted.values()))
    return wanted, notes, both, counted, guessed


def _read_text_rows(src, sep: str, cfg: DataConfig, label: str, wanted: dict, ids: list[str], dated: str | None,
                    text_ids: bool, floated: list[str], names: list[str] | None, progress: bool,
                    named: str) -> tuple[pd.DataFrame, str | None, list[str]]:
    """A text table's rows read, each parse on its own bar: again with its ids as written where an id column
    first read as '1.0' turns out otherwise, and again with its ids as text where data.id_type=auto's integers
    turn out to be text. The frame, the time column read as text (else None) and the id columns read as '1.0'."""
    with _parse_bar(progress, f"reading {named}", src) as tick:
        df, texted = _read_text_times(src, sep, cfg, label, wanted, ids, dated, text_ids, floated=floated, tick=tick)
    if floated and any(float_written_ids(df[c].dropna()) is None for c in floated):  # '7' beside '7.0': as ever
        if cfg.id_type == "int":  # an id written otherwise past the first rows: named (a red team: '7.5' on line
            for c in floated:     # 902 was refused as the '0.0' of line 2)
                odd = odd_float_ids(df[c])
                if odd is not None and len(odd):
                    refuse_odd_float_ids(df[c], odd, c, src, sep, cfg.encoding, label, names)
        floated = []
        if cfg.id_type == "int":
            _refuse_changed_ids(src, sep, cfg, label, ids, names)
        with _parse_bar(progress, f"reading {named} again, its ids as written", src) as tick:
            df, texted = _read_text_times(src, sep, cfg, label, wanted, ids, texted, text_ids, tick=tick, again=True)
    if cfg.id_type == "auto" and not text_ids and any(df[c].dtype != np.int64 for c in ids if c not in floated):
        with _parse_bar(progress, f"reading {named} again, its ids as text", src) as tick:
            df, texted = _read_text_times(src, sep, cfg, label, wanted, ids, texted, True, tick=tick, again=True)
    return df, texted, floated


def _read_text_times(src, sep: str, cfg: DataConfig, label: str, wanted: dict, ids: list[str], texted: str | None,
                     text_ids: bool, floated=(), tick=None, again: bool = False) -> tuple[pd.DataFrame, str | None]:
    """One read of a text table's rows (_read_text_table), and the time column read as text (``texted``, or the
    timestamp column where data.missing=drop's read of it as numbers was refused)."""
    times = next((c for c, v in wanted.items() if v == "timestamp"), None)
    try:
        return _read_text_table(src, sep, cfg, label, wanted, ids, texted, text_ids, floated=floated,
                                tick=tick, again=again), texted
    except DataError as e:  # data.missing=drop: a time that is no Unix time in a row the drop may leave
        # out (a red team: an empty rating's row dated 2020-01-01 among Unix seconds refused the file);
        # the times read as text, their kind judged by the rows kept (_kept_times)
        if cfg.missing != "drop" or texted is not None or times is None or f"column '{times}' " not in str(e):
            raise
    texted = times
    return _read_text_table(src, sep, cfg, label, wanted, ids, texted, text_ids, floated=floated, tick=tick,
                            again=True), texted


def _refuse_counts(df: pd.DataFrame, wanted: dict, guessed: int, label: str) -> None:
    """A headerless table's third field, taken for the rating, refused where a row's holds no rating (counts or
    times)."""
    # a third field past the lines looked at that is no rating: counts or times (a review)
    third = pd.to_numeric(df[list(wanted)[-1]], errors="coerce").to_numpy(dtype=np.float64)
    # (an empty one: data.missing's to refuse or drop, below)
    bad = np.flatnonzero(~np.isnan(third) & ~(np.abs(third) <= 10))
    if bad.size:
        raise DataError(f"{label}: {guessed} fields a line without a header, and its third field holds "
                        f"{third[bad[0]]:g} (data row {bad[0] + 1:,}): counts or times, not ratings; for user, movie, "
                        "timestamp (a click log) «--set data.columns.rating=null|{'data.columns.rating': "
                        "None}», for user, movie, count «--set data.repeats=sum|{'data.repeats': 'sum'}» "
                        "with «--set data.columns.timestamp=null|{'data.columns.timestamp': None}»")


def _text_frame(rows: _Rows, src, sep: str, cfg: DataConfig, label: str, ids: list[str], texted: str | None) -> None:
    """A text table's rows read made the frame by role: data.missing=drop's rows left out, a time column read as
    text made Unix times or seconds by the rows kept, and event words weighed (a row named by its line)."""
    wanted = rows.wanted
    if cfg.missing == "drop":
        times = next((c for c, v in wanted.items() if v == "timestamp"), None)
        rows.df, rows.kept, rows.seen, rows.untimed = _drop_missing(
            rows.df, label, skip=[c for c, v in wanted.items() if v in META], ids=ids, time=times)
        if rows.seen is not None:
            rows.seen = rows.seen.rename(columns=wanted)
    kept = rows.kept
    # rows.epoch: a timestamp column of numbers (else text: ISO dates, made seconds here)
    if texted is not None:
        rows.epoch = _kept_times(rows.df, texted, src, sep, cfg, label, None if kept is None else kept[1])
    rows.df = rows.df.rename(columns=wanted)
    if cfg.event_weights is not None and "rating" in rows.df:
        header_lines = 1 if cfg.header else 0

        def where(row: int) -> str:  # its line (rows dropped before it, data.missing, counted)
            row = row if kept is None else int(kept[1][row])
            line = _row_line(src, sep, cfg.encoding, row + header_lines, skip_blank=True)
            return f"{label}:{line}" if line else f"{label}: data row {row + 1}"

        col = next(c for c, v in wanted.items() if v == "rating")
        rows.df["rating"] = _weigh_events(rows.df["rating"], cfg.event_weights, str(col), label, rows.notes, where,
                                          cfg.repeats)


def _float_ratings(df: pd.DataFrame) -> bool:
    """The rating column made float32 (1.0 each where the table has none); whether it had none."""
    no_ratings = "rating" not in df
    if no_ratings:
        df["rating"] = np.float32(1.0)
    with np.errstate(over="ignore"):  # a rating beyond float32 (a Parquet float64's 1e300) reads as inf, refused by
        df["rating"] = df["rating"].astype("float32")  # its row (ratings.check_ratings), numpy's warning not a line
    return no_ratings


def _times_as_seconds(rows: _Rows, cfg: DataConfig, label: str, times_read: dict, held_unit: str | None) -> None:
    """The timestamp column made Unix seconds (times.epoch_seconds), the rows kept without a time given NO_TIME."""
    df = rows.df
    ts = df["timestamp"]  # numbers with a fraction (a float column) made whole seconds by epoch_seconds
    df["timestamp"] = epoch_seconds(ts if ts.dtype.kind == "f" else ts.astype("int64"), cfg.timestamp_unit, rows.epoch,
                                    label, rows.notes, rows.line_of, rows.kept, lines_of=rows.lines_of,
                                    read=times_read, held=held_unit)
    if rows.untimed is not None:  # read as the value _drop_missing held their place with: none given
        df.loc[rows.untimed, "timestamp"] = NO_TIME


def _type_ids(rows: _Rows, cfg: DataConfig, label: str) -> None:
    """The user and movie ids made data.id_type's type (the dropped rows' alike, so that they join): text ids
    without the spaces around them, a blank one refused or dropped, those that lost spaces or differ only by case
    said, data.id_case=fold's user ids lower-cased."""
    df, seen, kept = rows.df, rows.seen, rows.kept

    def typed(ids: pd.Series) -> pd.Series:  # text ids without the spaces around them ('u1, m5' as 'u1,m5' reads)
        return ids.astype(str).str.strip() if cfg.id_type == "str" else auto_ids(ids) \
            if cfg.id_type == "auto" else ids.astype("int64")

    for c in ("user_id", "movie_id"):
        if c in rows.floated:  # ids written '1.0' (read as text): the integers they write, the dropped rows' alike
            df[c] = float_written_ids(df[c])
            if seen is not None:
                seen[c] = float_written_ids(seen[c])
        spaced = spaced_ids(df[c], typed_ids := typed(df[c]))  # (the ids that lost spaces around them: said below)
        df[c] = typed_ids
        if seen is not None:  # the kept rows' ids typed alone, the dropped rows' made their type, so that they join
            # them (a review: typed together, one dropped row's 'N/A-user' turned data.id_type=auto's every user id
            # to text); one that is no id of that type names no one of the dataset: dropped, counted, no pair
            seen[c], named = ids_like(seen[c], df[c])
            seen = seen[named].reset_index(drop=True)
        if not pd.api.types.is_integer_dtype(df[c]):  # text (object, or pandas 3's str)
            df, kept = _blank_ids(df, c, label, rows.line_of, kept, cfg.missing == "drop",
                                  next((str(k) for k, v in rows.wanted.items() if v == c), c))
            if seen is not None:  # (a blank id names no one: no pair)
                seen = seen[(seen[c] != "").to_numpy(dtype=bool)].reset_index(drop=True)
            # ids that lost spaces, or differ from another only by case, said; data.id_case=fold's users lower-cased
            df[c] = said_ids(df[c], spaced, c[:-3], label, cfg.id_case, rows.notes)
            if seen is not None and cfg.id_case == "fold" and c == "user_id":
                seen[c] = seen[c].str.lower()
    rows.df, rows.seen, rows.kept = df, seen, kept


def _movies_of_ratings(rows: _Rows, cfg: DataConfig, label: str) -> pd.DataFrame | None:
    """The movies of the ratings file's own title and genres columns (taken out of its frame), or None where it has
    none."""
    movies = None
    meta = [c for c in META if c in rows.df]
    if meta:  # no movies file: the ratings file's own title and genres columns give them (_movie_columns)
        movies = _movies_from_ratings(rows.df, meta, cfg.genre_separator, label, rows.notes,
                                      {c: next((str(k) for k, v in rows.wanted.items() if v == c), c) for c in meta})
        rows.df = rows.df.drop(columns=meta)
    return movies


def _movies_file(rows: _Rows, cfg: DataConfig, files: list) -> pd.DataFrame:
    """data.movies read (added to ``files`` where it is a file), its ids and the ratings' of one type."""
    df, cols = rows.df, cfg.columns
    # data.movies_separator, else a .tsv's tab, else data.separator, else sniffed from its header line as the
    # ratings file's is (None; a review: a ';' file was read at ',')
    msep = cfg.movies_separator or ("\t" if cfg.movies.lower().endswith((".tsv", ".tab")) else cfg.separator)
    movies = read_movies_table(cfg.movies, sep=msep, id_col=cols.movie, title_col=cols.title,
                               genres_col=cols.genres, genre_sep=cfg.genre_separator, encoding=cfg.encoding,
                               id_type=cfg.id_type, notes=rows.notes,
                               ratings_movie=next((c for c, v in rows.wanted.items() if v == "movie_id"), None))
    if not is_stream(cfg.movies):
        files.append(Path(cfg.movies))
    if cfg.id_type == "auto":  # '007' in either file: both text, so that they still join
        df["movie_id"], movies["movie_id"] = same_id_type(df["movie_id"], movies["movie_id"])
        if rows.seen is not None and not pd.api.types.is_integer_dtype(df["movie_id"]):
            rows.seen["movie_id"] = rows.seen["movie_id"].astype(str)
    return movies


def _raw_data(rows: _Rows, movies, cfg: DataConfig, fmt: str, files: list, label: str, no_ratings: bool,
              times_read: dict) -> RawData:
    """The RawData of the rows read, with what the read says of itself: the columns read, the unit of its Unix
    times, the rows dropped and skipped, the dropped rows' pairs."""
    cols = cfg.columns
    raw = RawData(rows.df, movies, None, fmt, None, files, (label, rows.first), rows.line_of, rows.notes,
                  no_ratings=no_ratings, weighted=cfg.event_weights is not None and not no_ratings,
                  lines_of=rows.lines_of)
    short = {"user_id": "user", "movie_id": "movie", "rating": "rating", "timestamp": "timestamp"}
    raw.columns_read = {short[role]: str(col) for col, role in rows.wanted.items()
                        if role in short and str(col) != str(getattr(cols, short[role]))}
    raw.columns_passed_over, raw.timestamp_unit = rows.both, times_read.get("unit")
    if rows.counted:  # no rating column read: as data.columns.rating=null (an explicit model refuses it: a review)
        raw.columns_read["rating"] = None
    if rows.kept is not None:
        raw.kept, raw.missing_dropped = rows.kept[1], rows.kept[0]
    if fmt != "parquet":
        raw.bad_lines_skipped, raw.bad_values_skipped = len(rows.skipped), len(rows.unread)
    if rows.seen is not None and len(rows.seen):
        raw.seen["missing_values"] = rows.seen[["user_id", "movie_id"]]
    return raw


def _ratings_frame_name() -> str:
    """How a ratings DataFrame's cache file is named (textfiles.NAMED): 'the DataFrame'."""
    from embedrec.data.frames import RATINGS_FRAME

    return RATINGS_FRAME.name


def _datetime_column(pf, found, wanted: dict, cfg: DataConfig, label: str, or_default=()) -> list[str]:
    """A ratings DataFrame's one column of dates or times (read from its Parquet cache file), taken as the timestamp where the default
    'timestamp' column is missing and none is named otherwise (a first-hour review: a notebook's datetime64
    'when' column was left unread, the ratings read without times); the note saying so, none where nothing was
    taken (no such column, or two)."""
    import pyarrow as pa

    from embedrec.config import ColumnsConfig

    col = cfg.columns.timestamp
    names = [str(c) for c in found]
    if col != ColumnsConfig.timestamp or "timestamp" in or_default or col not in wanted or col in names:
        return []
    schema = pf.schema_arrow
    dated = [str(n) for n in schema.names if str(n) in names and str(n) not in wanted
             and (pa.types.is_timestamp(schema.field(n).type) or pa.types.is_date(schema.field(n).type))]
    if len(dated) != 1:
        return []
    del wanted[col]
    wanted[dated[0]] = "timestamp"
    return [f"{label}: reading column {dated[0]!r} as 'timestamp', its one column of dates and times "
            "(«--set data.columns.timestamp=NAME|data.columns.timestamp=NAME» names another, "
            "«--set data.columns.timestamp=null|data.columns.timestamp=None» reads none)"]


def _skip_bad_lines(src, sep: str, encoding: str, label: str, header: bool, notes: list) -> tuple[object, list[int]]:
    """data.bad_lines=skip: ``src`` (a path or bytes) as bytes without its rows of more fields than the header's
    (badlines.blanked: their text taken out, their line ends kept, so every other line keeps its number), and the
    lines they started on; ``src`` itself and [] where it has none. Said in ``notes`` as a warning, with how many
    and the first few lines (a first-hour review: a table with such lines was refused at the first alone)."""
    from embedrec.data.badlines import blanked, can_blank, too_many_fields

    if not can_blank(sep, encoding):
        raise ConfigError(f"config key 'data.bad_lines': skip takes a table's lines out by their bytes, which "
                          f"{label}'s {'separator ' + repr(sep) if len(sep) != 1 else 'encoding ' + encoding} does "
                          "not allow (a one-character separator and an encoding whose line ends are ASCII's: not "
                          "UTF-16 or UTF-32); fix those lines, or leave data.bad_lines at error")
    rows = too_many_fields(src, sep, encoding, header)
    if rows is None:  # no parse even with those lines skipped: its own error said (a first-hour review: a stray '"'
        _unskippable(src, sep, encoding, label, header)  # further down was met as the long line above it, again)
    if not rows:
        return src, []
    tok = [r - 1 for r, _, _ in rows]
    starts = _row_lines(src, sep, encoding, sorted({*tok, *(t + 1 for t in tok)}))
    out = blanked(src, tok, starts)
    if out is None:
        raise DataError(f"{label}: data.bad_lines=skip could not tell where its row {tok[0] + 1:,} with too many "
                        "fields lies (a quote left open?); fix that line, or leave data.bad_lines at error")
    lines = [starts[t] for t in tok]
    want = rows[0][1]
    notes.append(SkippedNote(f"{label}: skipped {len(lines):,} line{'' if len(lines) == 1 else 's'} with more than "
                            f"the {want} fields {'its header names' if header else 'its first line holds'} "
                            f"(data.bad_lines=skip): line{'' if len(lines) == 1 else 's'} "
                            f"{', '.join(str(n) for n in lines[:LIKE_IT_SHOWN])}"
                            f"{', ...' if len(lines) > LIKE_IT_SHOWN else ''}"))
    return out, lines


def _skip_bad_values(src, sep: str, cfg: DataConfig, label: str, wanted: dict, ids: list[str], dated: str | None,
                     names: list[str] | None, notes: list) -> tuple[object, list[int]]:
    """data.bad_lines=skip: ``src`` (a path or bytes) as bytes without its rows whose rating (a number: not event
    words, data.event_weights'), Unix time (not a column of dates, ``dated``) or integer id (data.id_type=int's
    ``ids``) cannot be read (badlines.unreadable_rows), their line ends kept as :func:`_skip_bad_lines` keeps
    them, and the lines they start on; ``src`` itself and [] where it has none. An empty value is data.missing's.
    Where most of a column's values cannot be read the column is of another kind than it is read as (words for
    ids, event types for ratings, dates): nothing is skipped, and the read refuses the table naming the setting
    that reads it. Said in ``notes`` as a warning: how many lines, the first few, and the values."""
    from embedrec.data.badlines import DATE, INTEGER, NUMBER, blanked, can_blank, unreadable_rows

    kinds = {c: NUMBER for c, v in wanted.items() if v == "rating" and cfg.event_weights is None
             or v == "timestamp" and c != dated}
    kinds.update({c: INTEGER for c in ids if cfg.id_type == "int"})
    if dated is not None:
        kinds[dated] = DATE
    if not kinds or not can_blank(sep, cfg.encoding):  # (_skip_bad_lines refused such a separator already)
        return src, []
    try:
        found = unreadable_rows(src, sep, cfg.encoding, cfg.header, names, kinds, cfg.decimal,
                                lambda text: _no_dates(text, cfg.timestamp_format))
    except Exception:  # noqa: BLE001 - the table's own read says what is wrong with it
        return src, []
    if not found or any(rows.size * 2 > given for rows, _, given in found.values()):
        return src, []
    header_lines = 1 if cfg.header else 0
    data_rows = np.unique(np.concatenate([rows for rows, _, _ in found.values()]))
    tok = [int(r) + header_lines for r in data_rows]
    starts = _row_lines(src, sep, cfg.encoding, sorted({*tok, *(t + 1 for t in tok)}), skip_blank=True)
    out = blanked(src, tok, starts)
    if out is None:
        raise DataError(f"{label}: data.bad_lines=skip could not tell where its row {tok[0] + 1:,} with a value it "
                        "cannot read lies (a quote left open?); fix that line, or leave data.bad_lines at error")
    lines = [starts[t] for t in tok]
    what = "; ".join(
        f"column '{c}' {SAID[kinds[c]]} on "
        f"{_n_lines(rows.size)} ({', '.join(repr(shorten(v, 20)) for v in values[:3])}"
        f"{', ...' if rows.size > 3 else ''})" for c, (rows, values, _) in found.items())
    notes.append(SkippedNote(f"{label}: skipped {_n_lines(len(lines))} whose values cannot be read (data.bad_lines="
                            f"skip): line{'' if len(lines) == 1 else 's'} "
                            f"{', '.join(str(n) for n in lines[:LIKE_IT_SHOWN])}"
                            f"{', ...' if len(lines) > LIKE_IT_SHOWN else ''}; {what}"))
    return out, lines


SAID = {"number": "is no number", "integer": "is no integer id", "date": "is no date"}  # (badlines' kinds)


def _no_dates(text: pd.Series, fmt: str | None) -> np.ndarray:
    """Which of ``text`` are no date as the time column reads them (times._iso_dates: ISO 8601, or
    data.timestamp_format's ``fmt``; a year pandas cannot hold among them)."""
    t, outside = _iso_dates(text, fmt)
    return outside if outside is not None else t.isna().to_numpy()


def _n_lines(n: int) -> str:
    return f"{n:,} line{'' if n == 1 else 's'}"


def _unskippable(src, sep: str, encoding: str, label: str, header: bool) -> None:
    """The error of a table pandas cannot parse even with its lines of too many fields skipped (a quote left open:
    'a quoted field opens here and never closes', by its line), raised; nothing where it parses (the read says
    what else is wrong)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fh = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
            for _ in pd.read_csv(fh, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
                                 encoding=encoding, engine="c", skip_blank_lines=True, on_bad_lines="skip",
                                 chunksize=1 << 20):
                pass
    except pd.errors.ParserError as e:  # (a quote left open: its line; not a decode error of a column ingest does
        if "EOF inside string" in str(e):  # not read, which the read itself never meets: a review)
            raise _parser_error(label, e, 1 if header else 0, src, sep, encoding) from None
    except (ValueError, UnicodeDecodeError):
        return


def _kept_times(df: pd.DataFrame, col: str, src, sep: str, cfg: DataConfig, label: str,
                kept: np.ndarray | None) -> bool:
    """A text table's time column ``col``, read as text, made numbers or seconds in ``df`` by the kind of its first
    value in the rows kept (``kept``: data.missing=drop's, each one's row in the file): Unix times (True: their
    unit is epoch_seconds'), as a column of numbers is read, else ISO 8601 dates made Unix seconds (False;
    times._seconds). A dropped row's time says nothing of the kind (a red team: the first line's 2020-01-01, its
    rating empty, refused the 600 Unix seconds after it). A value of the other kind is refused by its line, in the
    words of a column read as numbers or as dates."""
    header_lines = 1 if cfg.header else 0
    text = df[col].astype(str).str.strip()
    head = [v for v in text.head(1000) if v] if len(text) else []
    first = head[0] if head else None
    # nearly all of them no number (dates), whatever the first (a diff review: three Unix times first read the
    # column as Unix seconds, its 397 dates each refused) : as data.times._dated takes a column for dates
    texts = sum(not is_number_text(v) for v in head)
    mostly = texts >= 3 and texts >= MOSTLY_DATES * len(head)
    if cfg.timestamp_format is not None or first is None or not is_number_text(first) or mostly:
        df[col] = _seconds(df[col], src, sep, cfg.encoding, col, label, header_lines, kept, cfg.timestamp_format,
                           cfg.bad_lines)
        return False
    values = pd.to_numeric(text if cfg.decimal == "." else text.str.replace(cfg.decimal, ".", regex=False),
                           errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        ats = np.flatnonzero(bad)[:LIKE_IT_SHOWN].tolist()
        rows = [at if kept is None else int(kept[at]) for at in ats]
        lines, told = rows_lines(src, sep, cfg.encoding, rows, header_lines)
        shown = shorten(text.iloc[ats[0]], 60)
        n = int(bad.sum())
        what, alike, fix = _not_a_unix_time(shown, f"'{shown}' is not a number", "that line" if n < 2 else
                                            "those lines")
        where = f"{label}:{lines[0]}" if told else f"{label}: data row {rows[0] + 1}"
        raise DataError(f"{where}: column '{col}' {what}{lines_like_it(n, lines, like=alike)}; {fix}")
    df[col] = values if values.dtype.kind in "if" and values.dtype != np.uint64 else values.astype("float64")
    return True


def _blank_ids(df: pd.DataFrame, col: str, label: str, line_of, kept, drop: bool, name: str):
    """(df, kept) with no empty text id in ``col``: a field of spaces alone, or an empty string in a DataFrame,
    is no id (an ops review: it became a user or movie named '', served like any other, where a CSV's empty field
    was refused). Refused with its line (or row), or under data.missing=drop left out with the rows missing a
    value (``kept``: see :func:`_drop_missing`)."""
    blank = (df[col] == "").to_numpy(dtype=bool)
    if not blank.any():
        return df, kept
    at = int(np.flatnonzero(blank)[0])
    if not drop:
        row = at if kept is None else int(kept[1][at])
        where = f"{label}:{line_of(row)}" if line_of is not None else f"{label}: row {row + 1}"
        raise DataError(f"{where}: column '{name}' has an empty id (blank, or spaces only); give the id or remove "
                        f"that row, or drop such rows with {DROP_MISSING}")
    if blank.all():
        raise DataError(f"{label}: every row's '{name}' is empty, so data.missing=drop leaves none; check "
                        "data.columns")
    rows = np.flatnonzero(~blank) if kept is None else kept[1][~blank]
    dropped = int(blank.sum()) + (0 if kept is None else kept[0])
    return df[~blank].reset_index(drop=True), (dropped, rows)


def _drop_missing(df: pd.DataFrame, label: str, skip=(), ids=(), time: str | None = None) -> tuple[
        pd.DataFrame, tuple[int, np.ndarray] | None, pd.DataFrame | None, np.ndarray | None]:
    """data.missing=drop: the rows without an empty user, movie, rating or timestamp (or a row short of one),
    integer columns read as nullable Int64 back to int64; (how many were dropped, the rows kept), or None where
    none was; the columns ``ids`` (the user's and the movie's) of the rows dropped that hold both, or None; and
    which rows kept (a mask) have an empty ``time`` alone, or None where none has. Such a row is kept: its rating
    is there, and whether its time is needed is the split's to say (ingestion._untimed_rows; update-users orders
    its ratings by no time). Its time holds the column's first value given (the reading's conversions take it as
    they take that one) until the reader marks it NO_TIME. ``skip``: columns whose empty cells are no missing value
    (a title or genres column: none).

    Those rows' pairs are what ingest keeps as seen (RawData.seen: never recommended back, not trained on, as
    data.min_rating's): a row naming a user and a movie says the user met the movie, its rating or time missing
    or not (a first-hour review: `u1,tt0000423,,881250949`, dropped whole, came back first in u1's list)."""
    missing = df[[c for c in df.columns if c not in skip]].isna()
    na = missing.to_numpy().any(axis=1)
    kept = seen = untimed = None
    if time is not None and time in missing:
        alone = missing[time].to_numpy() & ~missing.drop(columns=[time]).to_numpy().any(axis=1)
        if alone.any():
            na &= ~alone
            untimed = alone
            df = df.copy()
            df[time] = _time_placeholder(df[time], alone, na)
    if na.any():
        if na.all():
            raise DataError(f"{label}: every row has a missing value (an empty user, movie, rating or timestamp), so "
                            "data.missing=drop leaves none; check data.columns and data.separator")
        kept = (int(na.sum()), np.flatnonzero(~na))
        named = na & ~df[list(ids)].isna().to_numpy().any(axis=1) if ids else np.zeros(len(df), dtype=bool)
        if named.any():
            seen = df.loc[named, list(ids)].reset_index(drop=True)
            for c in seen.columns:
                if str(seen[c].dtype) == "Int64":
                    seen[c] = seen[c].astype("int64")
        df = df[~na].reset_index(drop=True)
        if untimed is not None:
            untimed = untimed[~na]
    for c in df.columns:
        if str(df[c].dtype) == "Int64":
            df[c] = df[c].astype("int64")
        elif df[c].dtype.kind == "f" and c in ("timestamp",):  # a Parquet integer column with nulls, as pandas
            v = df[c].to_numpy()  # reads it; a fraction, or a value no 64-bit time holds, stays a float for
            with np.errstate(invalid="ignore"):  # times.epoch_seconds to round or refuse (a review: 1e30 was cast
                whole = bool(((v % 1 == 0) & (np.abs(v) < 2.0 ** 63)).all())  # to -2**63 and stored)
            if whole:
                df[c] = df[c].astype("int64")
    return df, kept, seen, untimed


def _time_placeholder(col: pd.Series, empty: np.ndarray, dropped: np.ndarray) -> pd.Series:
    """``col`` (a time column) with its ``empty`` cells holding its first value given in a row kept (not
    ``dropped``: a dropped row's time says nothing of the kind the kept ones are read as; then any row's, 0, or
    1970-01-01 in a date column, where none is), which the reading converts as it converts that one: a row's place
    kept, marked NO_TIME once read (:func:`_drop_missing`)."""
    given = col[~empty & col.notna().to_numpy() & ~dropped]
    if not len(given):
        given = col[~empty & col.notna().to_numpy()]
    if len(given):
        fill = given.iloc[0]
    elif pd.api.types.is_datetime64_any_dtype(col):
        fill = pd.Timestamp(0, tz=getattr(col.dtype, "tz", None))
    else:
        fill = 0
    out = col.copy()
    out[empty] = fill
    return out


@contextlib.contextmanager
def _parse_bar(progress: bool, desc: str, src):
    """A bar over the bytes of ``src`` (a path, or the text in memory: stdin, a decompressed file) as its rows are
    parsed, cleared once they are (the 'read N rows' line follows); its update, or None where ``progress`` is off
    (a first-hour review: 9 s of a 1M-row CSV without a word)."""
    from embedrec.bars import INGEST_DELAY_S, Restartable, step

    size = len(src) if isinstance(src, (bytes, bytearray)) else os.path.getsize(src)
    with step(desc if progress else None, size, "B", scale=True, delay=INGEST_DELAY_S) as update:
        yield None if update is None else Restartable(update)


PARQUET_BATCH = 1 << 16  # rows a Parquet table's bar counts at a time (its row groups read in batches of them)


def _read_parquet_rows(pf, columns: list, progress: bool, label: str) -> pd.DataFrame:
    """The ``columns`` of the Parquet file ``pf`` (a pyarrow ParquetFile) as pandas reads them (pd.read_parquet:
    pyarrow's table, its pandas metadata's index too, made a DataFrame by pyarrow's own to_pandas, as pandas 3
    converts it), with a bar over the rows read where ``progress`` is on (a first-hour review: none): the file read a
    batch of PARQUET_BATCH rows at a time, the batches joined without a copy before the one conversion."""
    import pyarrow as pa

    from embedrec.bars import INGEST_DELAY_S, step

    with step(f"reading {label}" if progress else None, pf.metadata.num_rows, "row", scale=True,
              delay=INGEST_DELAY_S) as tick:
        if tick is None:
            table = pf.read(columns=columns, use_pandas_metadata=True)
        else:
            batches = []
            for batch in pf.iter_batches(batch_size=PARQUET_BATCH, columns=columns, use_pandas_metadata=True):
                batches.append(batch)
                tick(batch.num_rows)
            table = pa.Table.from_batches(batches, schema=pf.schema_arrow if not batches else batches[0].schema)
    return table.to_pandas()


def _float_written(src, sep: str, cfg: DataConfig, ids: list[str], names: list[str] | None) -> list[str]:
    """Of the id columns ``ids``, those whose first SAMPLE_ROWS rows write every id given as pandas writes a whole
    float ('1.0'), to read as text and then as the integers they write (idtext.float_written_ids); none under
    data.id_type=str, which keeps every id as written. ``names``: a headerless table's columns."""
    if cfg.id_type == "str" or not ids:
        return []
    try:
        buf = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
        head = pd.read_csv(buf, sep=sep, usecols=ids, dtype=str, nrows=SAMPLE_ROWS, encoding=cfg.encoding,
                           engine="c" if len(sep) == 1 else "python",
                           **({} if names is None else {"header": None, "names": names}))
    except Exception:  # noqa: BLE001 - the whole read says what is wrong with the table
        return []
    return [c for c in ids if float_written_ids(head[c].dropna()) is not None]


def _read_text_table(src, sep: str, cfg: DataConfig, label: str, wanted: dict, ids: list[str], dated: str | None,
                     text_ids: bool, fraction_times: bool = False, early: list | None = None,
                     floated: list[str] = (), tick=None, again: bool = False) -> pd.DataFrame:
    """The CSV/TSV rows: ratings as float32, timestamps as int64 (ISO dates as text; ``fraction_times``: as
    float64, where a Unix time has a fraction: 1700000000.5, as time.time() writes it), ids as int64
    (data.id_type=int), as text (``text_ids``, and the columns ``floated``: _float_written's) or as pandas infers
    them (auto's integer reading). ``early``:
    ``src`` is the table's first lines only (:func:`_refuse_early`): counts are said as of them, and where the
    error raised is of an id that is no integer, 'id' is appended to the list, of a rating column's event words
    (columns.events_recipe), 'events'. ``tick``: a bar's update over the bytes parsed (_parse_bar)."""
    numeric, extra = {}, {}
    for c, v in wanted.items():
        if v == "rating" and cfg.event_weights is not None:  # event types, weighed once read (_weigh_events)
            extra[c] = str
        elif v == "rating":
            numeric[c] = "float32"
        elif v in META:  # the movies' titles and genres, as written ('007' stays itself); an empty cell is none
            extra[c] = "object"
        elif v == "timestamp" and c != dated:
            numeric[c] = "float64" if fraction_times else "int64"
        elif c in ids and cfg.id_type == "int" and c not in floated:
            numeric[c] = "int64"
    extra.update({c: str for c in ids if text_ids or c in floated})
    if dated is not None:  # ISO dates ('2020-01-31 12:00:00'): read as text, made Unix seconds below
        extra[dated] = str
    times = [c for c, v in wanted.items() if v == "timestamp"]
    # a value that is no number, said in the column's terms (parsing._diagnose_numeric builds the line once)
    def said_id(shown: str, *args) -> tuple[str, str, str]:  # called for the error raised alone
        if early is not None:
            early.append("id")
        return _not_an_integer_id(shown, *args)

    def said_rating(shown: str, what: str, those: str, values: pd.Series) -> tuple[str, str, str]:
        if early is not None and events_recipe(values) is not None:  # event words: the weights to paste
            early.append("events")
        return _not_a_rating(shown, what, those, values)

    unparsed = {**{c: said_id for c in ids if cfg.id_type == "int"}, **{c: _not_a_unix_time for c in times},
                **{c: said_rating for c, v in numeric.items() if wanted.get(c) == "rating"}}
    try:
        return read_numeric_table(src, sep=sep, names=None if cfg.header else list(wanted),
                                  usecols=list(wanted),  # (a header's other columns are not read)
                                  numeric=numeric, header=cfg.header, encoding=cfg.encoding, label=label,
                                  extra_dtype=extra, decimal=cfg.decimal, checked=True, missing=cfg.missing,
                                  unparsed=unparsed, partial=early is not None, tick=tick,
                                  bad_lines=cfg.bad_lines, again=again, times=tuple(times))
    except DataError as e:
        if not fraction_times and any(_fraction_of(str(e), c, cfg.decimal) for c in times):  # a Unix time with a
            # fraction of a second (time.time(), a JavaScript ms / 1000: a notebook review): read as numbers, made
            # whole seconds
            return _read_text_table(src, sep, cfg, label, wanted, ids, dated, text_ids, fraction_times=True,
                                    early=early, floated=floated, tick=tick, again=True)
        raise


def _blank_as_missing(df: pd.DataFrame) -> pd.DataFrame:
    """A Parquet file's (or a DataFrame's) text cells that are empty or blank ('', '  ') in its rating and time
    columns as missing values, as a CSV's empty fields read (a code review: a Parquet '' rating was refused as 'not
    a number' where data.missing=drop drops a CSV's). A blank id has its own refusal ('has an empty id')."""
    for col in ("rating", "timestamp"):
        s = df[col] if col in df else None
        if s is not None and (pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)):
            try:
                blank = s.str.strip().eq("").to_numpy(bool, na_value=False)  # (not a text cell: NaN, never blank)
            except AttributeError:  # an object column holding no text at all
                continue
            if blank.any():
                df[col] = s.mask(blank)
    return df


EARLY_HEAD = 1 << 20  # bytes of a text table whose whole lines are read for the early look (_refuse_early)


def _refuse_early(src, sep: str, cfg: DataConfig, label: str, wanted: dict, ids: list[str], dated: str | None,
                  names: list[str] | None) -> None:
    """Two refusals made from the table's first EARLY_HEAD bytes of whole lines, read as the whole table is read,
    where one is the first problem that read finds; the message is the whole read's, its lines like it counted as
    of the rows read. A scale review: a 6,000,000-row log was read whole, 31 s and 1.8 GB, to say that its first
    row held an id that no integer can be ('acct-123') under data.id_type=int (the default, for MovieLens-style
    integer ids), and 26 s to say that its rating column (data.columns.rating) holds event words (view, click)
    with no data.event_weights, naming the weights to paste (_not_a_rating; they are built from the words of
    the rows read: a word past them is refused once weighed, _weigh_events naming the weights with it).

    An id integers would change is named first, as the whole read's caller names it (``names``: a headerless
    table's columns): before a text id, a zero-padded one on an earlier line (idtext._refuse_zero_padded over the
    whole table names no later one); before event words, one where _refuse_changed_ids finds it. Any other
    problem, and none, is left to the whole read, which names and counts it as ever; a table no longer than that
    is read whole at once."""
    import codecs

    events = cfg.event_weights is None and "rating" in wanted.values()
    if cfg.id_type != "int" and not events:
        return
    try:
        name = codecs.lookup(cfg.encoding).name
    except LookupError:
        return
    if "16" in name or "32" in name:  # a cut at a b'\n' byte is no line's end there
        return
    head = _head(src, EARLY_HEAD + 1)
    cut = head.rfind(b"\n", 0, EARLY_HEAD)
    if len(head) <= EARLY_HEAD or cut < 0:
        return
    found: list = []
    try:
        # ids as the whole read's first try reads them (data.id_type=auto: as pandas infers them; its text ids,
        # where the byte scan finds a zero, change how an empty or 'NA' field reads, but no word of a rating
        # column, which parsing._diagnose_numeric reads as text either way)
        _read_text_table(head[:cut + 1], sep, cfg, label, wanted, ids, dated, cfg.id_type == "str", early=found)
    except DataError:
        if found == ["id"]:
            # ('00196' on line 3, 'u1' on line 9: '00196' is refused first, over the whole table or its first lines)
            _refuse_zero_padded(head[:cut + 1], sep, cfg.encoding, ids, label, names=names, rows=None,
                                gaps_fail=cfg.missing == "error", float_ids=True)
            raise
        if found == ["events"]:
            if cfg.id_type == "int":  # checked before the whole read, wherever its rows lie
                _refuse_changed_ids(src, sep, cfg, label, ids, names)
            raise
        return
    except Exception:  # noqa: BLE001 - the whole read says what is wrong with the table
        return


def _refuse_changed_ids(src, sep: str, cfg: DataConfig, label: str, ids: list[str], names: list[str] | None) -> None:
    """data.id_type=int: an id integers would change ('0196', '+5') refused (idtext._refuse_zero_padded), over
    every row where the byte scan (idtext.ids_may_change) finds such a field, else over the first 100,000."""
    _refuse_zero_padded(src, sep, cfg.encoding, ids, label, names=names,
                        rows=None if ids_may_change(src, sep, cfg.encoding) else 100_000,
                        gaps_fail=cfg.missing == "error", float_ids=True)


def _not_a_rating(shown: str, what: str, those: str, values: pd.Series) -> tuple[str, str, str]:
    """A rating column's value that is no number (parsing._diagnose_numeric's ``unparsed``): where the column holds
    a few words (columns.events_recipe: 'like' and 'dislike'), they are event types, and the advice is the
    data.event_weights (and data.repeats) that reads them on the first try (a review: 'is not a number', then the
    weights' -1 refused as a summed log's, the third try read it)."""
    recipe = events_recipe(values)
    if recipe is None and with_unit(pd.Series([shown])).all():  # '5 stars', '80%' (an own-data review)
        given = values.dropna().astype(str).str.strip()
        given = given[with_unit(given)]
        units = sorted(set(given.str.replace(r"^[+-]?[\d.,]+\s*", "", regex=True)) or {"?"}, key=len, reverse=True)
        # every unit the column writes ('1 star' beside '2 stars'; a review), at the value's end alone (' 2 stars':
        # its leading space kept the rating in the pattern)
        pattern = "|".join(re.sub(r"([/.|()*+?\[\]^$\\])", r"\\\1", u) for u in units[:8])
        edge = "\\b" if all(re.fullmatch(r"\w+", u) for u in units) else ""  # (after a number: a title's word kept)
        sed = f"sed -E 's/([0-9]) *({pattern}){edge}/\\1/g'"
        return (f"'{shown.strip()}' is a number written with a unit", "like it",
                f"write the ratings as numbers alone ({sed} takes {', '.join(repr(u) for u in units[:8])} off), or "
                f"fix or remove {those}")
    if recipe is None:
        return what, "like it", f"fix or remove {those}"
    return what, "like it", f"it holds {recipe}; or fix or remove {those}"


def _not_an_integer_id(shown: str, what: str, those: str, values=None) -> tuple[str, str, str]:
    """A data.id_type=int id column's value that is no integer (parsing._diagnose_numeric's ``unparsed``): the
    advice names the text ids' setting; for an integer beyond 64 bits (a uint64 id), the setting that keeps it as
    text (a first-hour review: 'fix or remove those lines', where the Parquet reader named data.id_type=str)."""
    if "too large" in what:
        return what, "like it", f"to keep such ids as text, set data.id_type=str (or auto), or fix {those}"
    return what, "like it", f"for text ids set data.id_type=auto (or str), or fix {those}"


def _not_a_unix_time(shown: str, what: str, those: str, values=None) -> tuple[str, str, str]:
    """A timestamp column's value that is no Unix time (parsing._diagnose_numeric's ``unparsed``; a notebook
    review: day-first dates were 'not an integer'): an ISO date among Unix seconds is said as a mix (a first-hour
    pass: 'not an integer' where the column's first rows decided the kind), with the lines not Unix seconds."""
    if "too large" in what:  # an integer beyond 64 bits: no Unix time
        return what, "like it", f"fix or remove {those}"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+)?", shown):
        return (f"'{shown}' is an ISO 8601 date where the column's first rows are Unix seconds", "not Unix seconds",
                f"give every row one kind (pandas' to_datetime), or fix {those}")
    first = next((v.strip() for v in values.head(1000) if isinstance(v, str) and v.strip()), "") \
        if values is not None else ""
    if re.search(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|[A-Za-z]{3}", shown) and re.search(r"\d", shown) \
            and not is_number_text(first):  # a column of dates of
        # another format ('09.02.1998 02:49': a first-hour review was told it is 'not an integer', not one among Unix
        # times): data.timestamp_format, with the format that reads it
        return (f"'{shown}' is not a date embedrec can read (neither a Unix time nor ISO 8601)", "like it",
                f"{format_advice(values)}, or fix {those}")
    other = "" if not first or is_number_text(first) else \
        "give their strftime format in data.timestamp_format, or "  # a column of text (an own-data review: '2024-W01')
    return what, "like it", f"timestamps are Unix seconds or ISO 8601 dates: {other}convert the column (pandas' " \
        f"to_datetime) or fix {those}"


def _fraction_of(msg: str, col: str, decimal: str = ".") -> bool:
    """Whether the parse error ``msg`` is of column ``col``'s value that is a number with a fraction (a Unix time
    such as 1700000000.5, or 1700000000,5 with data.decimal=','), not a word or a date."""
    m = re.search(rf"column '{re.escape(col)}' '([^']*)' is not an integer", msg)
    d = re.escape(decimal)
    return bool(m and re.fullmatch(rf"\s*[+-]?(?:\d+{d}\d*|{d}\d+)(?:[eE][+-]?\d+)?\s*", m.group(1)))


def _weigh_events(text: pd.Series, weights: dict, col: str, label: str, notes: list, where,
                  repeats: str = "auto") -> pd.Series:
    """A rating column of event types as their data.event_weights (float32); a value the mapping lacks is refused
    naming the first row that holds it (``where(row)``: its file:line) and how many do, with the setting that adds
    it. Says in ``notes`` how many rows each weight took (a first-hour review: a shop log's event column was
    offered as the ratings, then refused as not a number)."""
    gap = text.isna().to_numpy()  # a Parquet column's null (a review: an internal error, its 'nan' not a text)
    if gap.any():
        raise DataError(f"{where(int(np.flatnonzero(gap)[0]))}: no value in column '{col}' (a missing event); fill it "
                        f"in or remove that row, or drop such rows with {DROP_MISSING}")
    values = text.astype(str).str.strip()
    key = _event_keys(values, weights)
    w = key.map(weights)
    bad = w.isna().to_numpy()
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        value = values.iloc[at]
        others = pd.unique(values[bad])
        n = int((values[bad] == value).sum())
        more = f"; {len(others) - 1:,} other value{'s' if len(others) > 2 else ''} it lacks too" if len(others) > 1 else ""
        # the weights given and every value it lacks (up to 10), each a W to fill in (a review: the advice added the
        # first alone, and following it met the next); quoted for a shell as a whole (a review: an event "wish'd"
        # ended the single-quoted advice at its apostrophe); each word whole, those too long to fit left out and
        # counted, and no command where a weight given would be (session 52: a cut '[...]' could not be pasted)
        given = [(str(k), f"{v:g}") for k, v in weights.items()]
        mapping, kept, left = weights_mapping([*given, *((str(v), "W") for v in others[:10])])
        their = "its weight" if len(others) == 1 else f"their weights ({len(others):,} values)"
        cased = [str(k) for k in weights if str(k).casefold() == str(value).casefold()]  # (two: matched as written)
        why = f", its keys {' and '.join(map(repr, cased))} differing by case alone" if len(cased) > 1 else ""
        said = (f"{where(at)}: column '{col}' holds {shorten(repr(value), 40)}, which data.event_weights does not "
                f"weigh ({n:,} row{'s' if n != 1 else ''} hold{'' if n != 1 else 's'} it{more}{why}); add {their}")
        if any(k not in kept for k, _ in given) or str(value) not in kept:  # no whole command to give
            raise DataError(f"{said} to data.event_weights (too long to write here whole), or remove those rows")
        arg = sh_quote(f"data.event_weights={{{mapping}}}")
        raise DataError(f"{said}, «--set {arg}|data.event_weights={{..., {value!r}: W}}»"
                        f"{left_out(left, min(len(others), 10))}, or remove those rows")
    counts = key.value_counts()
    cased = values != key
    if cased.any():  # matched whatever their case: said, each spelling with the weight's key and its rows
        pairs = pd.DataFrame({"v": values[cased], "k": key[cased]}).value_counts(sort=False)
        shown = ", ".join(f"{v!r} as {k!r} ({_rows(int(n))})" for (v, k), n in list(pairs.items())[:5])
        notes.append(f"{label}: column '{col}': read {shown}{', ...' if len(pairs) > 5 else ''}: data.event_weights' "
                     "event types are matched whatever their case where no two of them differ by case alone")
    summed = ("; a pair's weights summed (data.repeats: auto; «--set data.repeats=latest|data.repeats='latest'» "
              "keeps each pair's latest event's)" if repeats == "auto" else "")
    notes.append(f"{label}: column '{col}' read as events weighed by data.event_weights ("
                 + ", ".join(f"{k} {weights[k]:g}: {_rows(int(counts.get(k, 0)))}" for k in weights) + f"){summed}")
    return pd.Series(w.to_numpy(np.float32), index=text.index)


def _event_keys(values: pd.Series, weights: dict) -> pd.Series:
    """Each value's key of data.event_weights: itself where the mapping has it, else the one key it matches whatever
    the case ('Purchase' for a mapping's 'purchase': a first-hour review's export mixed the two), where no other key
    differs from that one by case alone; NaN where none."""
    key = values.where(values.isin(list(weights))).astype(object)
    miss = key.isna().to_numpy()
    if miss.any():
        folded: dict[str, list] = {}
        for k in weights:
            folded.setdefault(str(k).casefold(), []).append(k)
        alone = {f: ks[0] for f, ks in folded.items() if len(ks) == 1}
        key = key.copy()
        key[miss] = values[miss].str.casefold().map(alone).astype(object)
    return key


def _rows(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def _movies_from_ratings(df: pd.DataFrame, meta: list[str], genre_sep: str, label: str, notes: list,
                         named: dict | None = None) -> pd.DataFrame:
    """The movies of a ratings file with a title (and genres) column of its own, no movies file given: each movie
    once, in the order it first comes, with the first title (and genres cell) given for it on any of its rows
    (an empty cell gives none); a year in a title's '(1995)' read as a movies file's is; how many movies a later
    row gives another title is said, naming the columns as the file does (``named``: role -> the file's name; a
    first-hour review read "from its 'title' column" of a file whose titles were in 'product_name')."""
    named = named or {}
    def first(col: str) -> pd.Series:
        cells = df[col]
        given = cells.notna().to_numpy() & (cells.astype(str).str.strip() != "").to_numpy()
        return df.loc[given, ["movie_id", col]].drop_duplicates("movie_id").set_index("movie_id")[col]

    ids = pd.unique(df["movie_id"])
    titles = first("title").reindex(ids) if "title" in meta else pd.Series(index=ids, dtype=object)
    genres = first("genres").reindex(ids) if "genres" in meta else pd.Series(index=ids, dtype=object)
    movies = movies_frame(list(ids), ["" if pd.isna(t) else str(t).strip() for t in titles],
                          [_genre_list(g, genre_sep) for g in genres])
    movies.attrs["from_ratings"] = tuple(meta)
    title, genre = named.get("title", "title"), named.get("genres", "genres")
    said = f"{label}: the movies' titles read from its '{title}' column" if "title" in meta else \
        f"{label}: the movies' genres read from its '{genre}' column"
    if meta == ["title", "genres"]:
        said += f" and genres from '{genre}'"
    untitled = int((movies["title"] == "").sum()) if "title" in meta else 0
    said += f" (the first given for each of its {len(movies):,} movies"
    if "title" in meta:
        cells = df["title"].astype(str).str.strip()
        named = df.loc[df["title"].notna().to_numpy() & (cells != "").to_numpy(), ["movie_id"]].assign(t=cells)
        pairs = named.drop_duplicates()
        renamed = int(pairs.loc[pairs["movie_id"].duplicated().to_numpy(), "movie_id"].nunique())
        if renamed:
            said += f"; {renamed:,} of them given another title on a later row"
        if untitled:
            said += f"; {untitled:,} without one"
    notes.append(said + ")")
    return movies
