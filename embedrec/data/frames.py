"""The pandas DataFrames ``er.ingest`` takes in place of files: a ratings frame (its ``source``) or a movies
frame (its ``movies``), written to the cache as the Parquet file ingest then reads (``frame_source``: named by a
hash of its columns, dtypes and values, ``CACHE/dataframes/dataframe-<hash>.parquet``, written atomically at
every call; a cache that cannot be written serves a copy there that reads back as the frame; a failed ingest's
own removed: ``forget``; those no call has written or read for KEEP_DAYS days removed: ``prune``, an ingest's read
counted by ``mark_read``, and one removed said of its frame by ``gone``), with the frame's
own refusals (no columns or rows, ids in its index, two columns of one name, a cell Parquet cannot hold named by
its row: ``_unwritable_cell``); a movies frame's genre lists and mixed years made text first
(``as_movies_file``); ``about_the_frame``: a DataError about that cache file said of the frame ('the DataFrame:
row 1 (df.iloc[0]): ...'); ``cached_frame``: whether a dataset's recorded source is such a file. ``FrameKind``
(``RATINGS_FRAME``, ``MOVIES_FRAME``): what a frame holds, as its messages name it. Imported by ``api.ingest``
and ``crossval``; pandas and pyarrow are imported inside the functions that use them."""

from __future__ import annotations

import collections
import dataclasses
import numbers
from pathlib import Path

from embedrec.errors import ArtifactError, UsageError, first_line, shorten


def cached_frame(path: str) -> bool:
    """Whether ``path``, a dataset's recorded source or movies file, is a DataFrame's cache file (frame_source)."""
    return "/dataframes/dataframe-" in path.replace("\\", "/")


@dataclasses.dataclass(frozen=True)
class FrameKind:
    """What a DataFrame given to ingest holds: its ``name`` in messages, the ``variable`` a row is shown in
    (df.iloc[0]), ``what`` it holds and in which ``columns`` (``content``: what to give it), and the ``file`` its
    messages name as a file's."""

    name: str
    variable: str
    what: str
    content: str
    columns: str
    file: str | None = None


RATINGS_FRAME = FrameKind("the DataFrame", "df", "ratings", "the ratings (user_id, movie_id[, rating][, timestamp])",
                           "ids, numbers and dates")
# split.method=given's held-out rows given as frames (er.ingest(df, test=..., valid=...)): read as the ratings are
TEST_FRAME = FrameKind("the test DataFrame", "test", "ratings", RATINGS_FRAME.content, RATINGS_FRAME.columns)
VALID_FRAME = FrameKind("the valid DataFrame", "valid", "ratings", RATINGS_FRAME.content, RATINGS_FRAME.columns)
MOVIES_FRAME = FrameKind("the movies DataFrame", "movies", "movies", "the movies (movie_id, title[, genres][, year])",
                          "ids, titles, genres (text, or lists) and years", "the movies file")


def about_the_frame(e, path: str, kind: FrameKind = RATINGS_FRAME):
    """A DataError about the cache file a DataFrame was written to, said of the frame (a review: 'CACHE/dataframes/
    dataframe-1b69.parquet: row 1: ...' for a file the user never gave): 'the DataFrame: row 1 (df.iloc[0]): ...'
    (a movies DataFrame's: 'the movies DataFrame: row 1 (movies.iloc[0]): ...', and its 'movies file' named as the
    frame it is)."""
    import re

    text = re.sub(rf"(?:{re.escape(str(path))}|{re.escape(kind.name)})(?:: row |:)(\d+):",
                  lambda m: f"{kind.name}: row {m.group(1)} ({kind.variable}.iloc[{int(m.group(1)) - 1}]):", e.raw)
    if kind.file and (str(path) in text or text.startswith(kind.name)):  # "the movies file '...'" said of the frame
        text = text.replace(f"{kind.file} '{path}'", kind.name).replace(kind.file, kind.name)
    out = type(e)(text.replace(f"'{path}'", kind.name).replace(str(path), kind.name))
    out.__dict__.update({k: v for k, v in vars(e).items() if k != "raw"})
    return out


KEEP_DAYS = 30  # a cached frame not written or read for this long is removed by the next frame_source (prune)


def prune(folder: Path, keep: Path | None = None, days: float = KEEP_DAYS) -> list[Path]:
    """Remove the cached frames of ``folder`` (``dataframe-*.parquet``) that no call has written or read for
    ``days`` days (every er.ingest(df) of a frame writes its file again, and every ingest that reads one as its
    data.source or data.movies sets its time: :func:`mark_read`), but ``keep``: the cache holds what a dataset's, a
    run's or a written config's data.source names so that ``ingest -c`` can make it again, and does not grow for
    ever (a notebook review). Returns the files removed."""
    import time

    gone = []
    for old in folder.glob("dataframe-*.parquet"):
        try:
            if old != keep and old.is_file() and time.time() - old.lstat().st_mtime > days * 86400:
                old.unlink()
                gone.append(old)
        except OSError:  # another writer's, renamed or removed since the listing; a read-only cache
            continue
    return gone


def mark_read(*paths) -> None:
    """An ingest's read of a DataFrame's cache file (its data.source or data.movies, ``cached_frame``) counted as
    a use: the file's time set to now, as a write sets it, so that :func:`prune` keeps a file that datasets, runs'
    and tune-dims' written configs name while ``ingest -c``, ``ingest --set data.source=...`` or
    ``cross-validate -c`` still read it (a review: pruned 30 days after er.ingest(df) wrote it, however often read
    since). Any other path (None, a file of the user's own) is left as it is, and so is a cache file that cannot be
    touched (gone, a read-only cache); a link in the cache is not followed (prune goes by its own time)."""
    import contextlib
    import os

    for p in paths:
        if p is not None and cached_frame(str(p)):
            with contextlib.suppress(OSError, NotImplementedError):
                os.utime(p, follow_symlinks=False)


def gone(path: str, key: str = "data.source") -> str:
    """What a dataset's or a config's ``key`` (data.source, data.movies) naming a DataFrame's cache file that is
    no longer there says (a review: 'file not found; check the path', of a file the user never wrote): what it was,
    and that the DataFrame given again writes it back under that name (its name is hashed from its content)."""
    kind = MOVIES_FRAME if key == "data.movies" else RATINGS_FRAME
    that = kind.name.replace("the ", "that ", 1)
    call = "er.ingest(df, movies=movies, ...)" if kind is MOVIES_FRAME else "er.ingest(df, ...)"
    return (f"{key} '{path}' is the cache's copy of a {kind.name[4:]} given to er.ingest, removed since (the "
            f"cache removes one no ingest has written or read for {KEEP_DAYS} days); give {that} again: {call} "
            "writes it back under this name")


def forget(paths: list[str]) -> None:
    """Remove the cached frames a failed ingest wrote (``frame_source``'s ``made``): no dataset records them (a
    notebook review: every failed call left one)."""
    for p in paths:
        Path(p).unlink(missing_ok=True)


def frame_source(df, cache: str | None = None, kind: FrameKind = RATINGS_FRAME, made: list[str] | None = None,
                 call: str = "ingest") -> str:
    """A DataFrame given as ingest's source (or its ``movies``: ``kind`` MOVIES_FRAME, which its messages name), as
    the Parquet file ingest reads: written to the cache (``cache``:
    data.cache_dir, else $EMBEDREC_CACHE, ...) under a name hashed from its columns, their dtypes and inferred
    kinds and its values (the same frame: the same file), atomically and with page checksums, at every call: a
    cached copy damaged, cut short or swapped for a link since is never what ingest reads (a red team). Where the
    cache cannot be written (read-only, shared), a copy there that reads back as this frame is used. ``made``: the
    path is appended where this call wrote a file that was not there (which a failed ingest then removes:
    :func:`forget`); frames no call has written for KEEP_DAYS days are removed (:func:`prune`). ``call``: the
    function its refusals name (update_users takes a frame too: a review found its empty frame said of ingest)."""
    import contextlib
    import os
    import time

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from embedrec.fsutil.files import atomic_write_bytes, cache_dir

    name, var = kind.name, kind.variable
    if len(df.columns) == 0:
        raise UsageError(f"{call}: {name} has no columns; give it {kind.content}")
    if len(df) == 0:
        raise UsageError(f"{call}: {name} has no rows; give it {kind.content}")
    named = [str(n) for n in df.index.names if n is not None]
    if named:  # a review: ids in the index were dropped, then the error named the cached file
        raise UsageError(f"{call}: {name}'s index ({', '.join(named)}) is not read, only its columns; "
                         f"{var}.reset_index() first")
    df = df.rename(columns=str)  # Parquet names columns by text (a frame built from a list has 0, 1, 2)
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise UsageError(f"{call}: {name} has two columns named {dup!r}; give each column its own name")
    try:
        values = pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (TypeError, ValueError, OverflowError, pa.ArrowException) as e:
        cell = _unwritable_cell(df, kind)  # a column mixing ints and texts, 2**70: its first such row named (a
        if cell is not None:  # review: 'Could not convert ...' without a row, and a hint about ids for a year)
            raise UsageError(f"{call}: {cell}") from None
        if isinstance(e, TypeError):  # a column of dicts
            raise UsageError(f"{call}: {name}'s values cannot be {kind.what} ({first_line(e)}); give columns of "
                             f"{kind.columns}") from None
        raise UsageError(f"{call}: {name} cannot be written as Parquet ({first_line(e)}); give each "
                         f"column one type ({var}[col].astype(str) for ids that mix numbers and texts)") from None
    key = _frame_key(df, values)
    folder = Path(cache_dir(cache)) / "dataframes"
    path = folder / f"dataframe-{key}.parquet"
    try:
        for old in folder.glob(".dataframe-*.parquet.*"):  # a temporary a killed writer left, a day ago or more
            with contextlib.suppress(FileNotFoundError):  # another writer's, renamed since the listing (CI: 1 in 4
                if time.time() - old.lstat().st_mtime > 86400:  # threads failed on it)
                    old.unlink(missing_ok=True)
        new = not os.path.lexists(path)
        atomic_write_bytes(path, lambda fh: pq.write_table(table, fh, write_page_checksum=True))
        if new and made is not None:
            made.append(str(path))
        prune(folder, keep=path)
    except (OSError, ArtifactError) as e:  # a read-only cache (a review): the copy there, where it is this frame
        if _holds_frame(path, key):
            return str(path)
        why = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e).split(" writing ")[0]
        raise UsageError(f"{call}: cannot write {name} to '{folder}' ({why}); point data.cache_dir (or "
                         "$EMBEDREC_CACHE) at a writable folder") from None
    return str(path)


# words of a column's name that say it holds numbers (a rating, a time, a count) or ids: what a cell of another
# type than the column's others is to become (_unwritable_cell)
_NUMBER_COLUMNS = ("rating", "score", "time", "date", "count", "weight", "year", "clicks", "plays")
_ID_COLUMNS = ("id", "user", "movie", "item", "sku", "title", "genre")


def _unwritable_cell(df, kind: FrameKind) -> str | None:
    """Where a frame that Parquet cannot take (frame_source) fails: 'the DataFrame: row 2 (df.iloc[1]): column
    'userId' holds 'a' (a str) where row 1 holds 1 (an int); ...', its first column that pyarrow refuses alone and
    the first row whose cells up to it it refuses, as a bad cell a file holds is named by its line; None where no
    one column fails alone. That row is the first cell of another type than the column's first where the rows
    before it pass (two conversions), else a binary search over the rows (2**70 among integers)."""
    import pyarrow as pa

    def fails(col) -> Exception | None:
        try:
            pa.array(col, from_pandas=True)
        except (TypeError, ValueError, OverflowError, pa.ArrowException) as e:
            return e
        return None

    def shown(v) -> str:
        kind_of = type(v).__name__
        return f"{shorten(repr(v), 40)} ({'an' if kind_of[:1] in 'aeiou' else 'a'} {kind_of})"

    for c in df.columns:
        col = df[c]
        why = fails(col)
        if why is None:
            continue
        values, cells = col.tolist(), (~col.isna()).tolist()  # a null is of no type here
        first = next((type(v) for v, ok in zip(values, cells) if ok), None)
        lo = next((i for i, (v, ok) in enumerate(zip(values, cells)) if ok and type(v) is not first), -1)
        at_lo = None if lo < 0 else fails(col.iloc[:lo + 1])
        if at_lo is None or fails(col.iloc[:lo]) is not None:
            lo, hi = 0, len(col) - 1  # the first row i such that rows 0..i fail: rows 0..lo-1 pass, 0..hi fail
            while lo < hi:
                mid = (lo + hi) // 2
                if fails(col.iloc[:mid + 1]) is None:
                    lo = mid + 1
                else:
                    hi = mid
            at_lo = fails(col.iloc[:lo + 1])
        why = at_lo or why
        value = values[lo]
        j = next((j for j in range(lo) if cells[j] and type(values[j]) is not type(value)), None)
        if j is None:  # an earlier cell of another type: none (2**70 among integers)
            at = f"{kind.name}: row {lo + 1} ({kind.variable}.iloc[{lo}]): column {c!r} holds {shown(value)}"
            return (f"{at}, which Parquet cannot hold ({first_line(why)}); give it as text "
                    f"({kind.variable}[{c!r}].astype(str) for ids beyond 64 bits)")
        counts = collections.Counter(type(v) for v, ok in zip(values, cells) if ok)
        if counts[type(values[j])] < counts[type(value)]:  # the earlier cell is the odd one (a review: a rating
            lo, j = j, lo                                    # column's 'x' in row 1 blamed its 4.0 in row 2)
            value = values[lo]
        at = f"{kind.name}: row {lo + 1} ({kind.variable}.iloc[{lo}]): column {c!r} holds {shown(value)}"
        numeric = isinstance(values[j], numbers.Number) and not isinstance(values[j], bool)
        name = str(c).lower()
        as_numbers = (f"numbers (pd.to_numeric({kind.variable}[{c!r}], errors='coerce'), then drop the rows that "
                      "are not)")
        texts = f"{kind.variable}[{c!r}].astype(str)"
        if numeric and isinstance(value, str) and any(w in name for w in _NUMBER_COLUMNS):
            fix = f": a {c!r} column holds {as_numbers}"
        elif numeric and isinstance(value, str) and not any(w in name for w in _ID_COLUMNS):
            fix = f": {as_numbers} where it holds ratings or times, texts where it holds ids ({texts})"
        else:
            fix = f" ({texts}, say, where numbers and texts mix)"
        return f"{at} where row {j + 1} holds {shown(values[j])}; give each column cells of one type{fix}"
    return None


def _null(v) -> bool:
    """A null cell (None, NaN, pandas' NA or NaT) of a frame's object column; a list or any other value is not."""
    import pandas as pd

    try:
        null = pd.isna(v)
    except (TypeError, ValueError):
        return False
    return null is True or type(null).__name__ == "bool_" and bool(null)


def as_movies_file(df, sep: str):
    """A movies DataFrame's cells as a movies file holds them: a genres list (as a dataset's ``movies`` holds
    them) as text, its items joined by ``sep`` (data.genre_separator, where ingest splits them again: a frame's
    cache name hashes its values, which lists are not), and a year column (movietable.YEAR_COLUMNS) whose cells mix
    types that Parquet cannot hold in one column (1995 and 'nineteen') as text, each cell not null written as
    itself, so that the movies file's reader checks each year and names a bad one's row (a review: 'Could not
    convert 'nineteen'', without a row)."""
    import numpy as np
    import pyarrow as pa

    from embedrec.data.movietable import YEAR_COLUMNS

    def listed(v) -> bool:
        return isinstance(v, (list, tuple, np.ndarray))

    if not len(df.columns) or not len(df):
        return df
    out = None
    for c in df.columns:
        col = df[c]
        if col.dtype != object:
            continue
        if col.map(listed).any():
            out = df.copy() if out is None else out
            out[c] = col.map(lambda v: sep.join(str(x) for x in v) if listed(v) else v)
        elif str(c).strip().lower() in YEAR_COLUMNS:
            try:
                pa.array(col, from_pandas=True)
            except (TypeError, ValueError, OverflowError, pa.ArrowException):
                out = df.copy() if out is None else out
                out[c] = col.map(lambda v: v if _null(v) else str(v))
    return df if out is None else out


def _frame_key(df, values: bytes | None = None) -> str:
    """The cache name's hash of a frame (columns already text): its values, and each column's dtype and inferred
    kind (an object column of 1 and one of '1' hash alike by value)."""
    import hashlib

    import pandas as pd

    if values is None:
        values = pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()
    kinds = [(c, str(t), pd.api.types.infer_dtype(df[c], skipna=True)) for c, t in df.dtypes.items()]
    return hashlib.sha256(values + repr(kinds).encode()).hexdigest()[:12]


def _holds_frame(path: Path, key: str) -> bool:
    """Whether ``path``, a regular file (not a link), reads back (page checksums checked) as the frame ``key``
    names: what a cache that cannot be written may still serve."""
    import stat

    import pyarrow.parquet as pq

    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return False
        with path.open("rb") as fh:
            back = pq.read_table(fh, page_checksum_verification=True).to_pandas()
        return _frame_key(back) == key
    except Exception:  # damaged, cut short, unreadable: not this frame
        return False
