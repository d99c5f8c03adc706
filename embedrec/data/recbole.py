"""RecBole atomic files: NAME.inter (user_id:token, item_id:token, rating:float, timestamp:float), with the
optional NAME.item and NAME.user beside it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.data.idtext import _ids, auto_ids, same_id_type
from embedrec.data.parsing import RawData, movies_frame, read_numeric_table
from embedrec.data.textfiles import RELEASE, _decode_error, _parser_error
from embedrec.errors import DataError

log = logging.getLogger("embedrec")


def _atomic_header(path: Path, encoding: str = "utf-8") -> list[tuple[str, str]]:
    with open(path, encoding=encoding, errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
    cols = []
    for h in first.split("\t"):
        name, _, kind = h.partition(":")
        cols.append((name, kind))
    return cols


def _read_atomic(path: Path, names: list[str], encoding: str = "utf-8", **kw) -> pd.DataFrame:
    """An atomic file's rows as text; pandas' parser errors become one DataError naming path:line."""
    try:
        return pd.read_csv(path, sep="\t", header=0, names=names, dtype=str, keep_default_na=False,
                           encoding=encoding, **kw)
    except UnicodeDecodeError as e:  # the file given, so the line and offset are the file's (a review)
        raise _decode_error(str(path), e, encoding, path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise _parser_error(str(path), e, 1, path, "\t", encoding, RELEASE) from None


def _refuse_long_lines(path: Path, cols: list[str], chunk: int = 1 << 24) -> None:
    """A line with more tab-separated fields than the header names: read_csv with usecols drops them without a
    word (a red team: '7 11 4 junk more' under a 3-column header was a rating of 4). Atomic files are not quoted,
    so the tabs are counted: in all first (a file whose lines hold as many tabs as the header's pays two counts),
    then per line only where the total differs, in chunks with numpy. Bytes are counted, as in UTF-8 or latin-1."""
    want = len(cols) - 1  # tabs a line may hold
    tabs_in_all = lines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while buf := fh.read(chunk):
            tabs_in_all += buf.count(b"\t")
            lines += buf.count(b"\n")
            last = buf[-1:]
    lines += last != b"\n"  # a last line without its line end
    if tabs_in_all == want * lines:  # every line as wide as the header (a longer one would need a shorter one)
        return
    _longer_line(path, want, chunk)


def _longer_line(path: Path, want: int, chunk: int) -> None:
    """The first line with more than ``want`` tabs, as a DataError (none: shorter lines, which the reader says)."""
    line, carry = 1, 0  # the 1-based line of the chunk's first byte; tabs of the line the chunk begins inside
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(chunk)
            if not buf:
                break
            b = np.frombuffer(buf, np.uint8)
            ends, tabs = np.flatnonzero(b == 10), np.flatnonzero(b == 9)
            before = np.searchsorted(tabs, ends)  # the chunk's tabs before each line end
            per_line = np.diff(before, prepend=0)
            per_line[:1] += carry  # the line this chunk began inside
            if per_line.size and per_line.max() > want:
                bad = int(np.argmax(per_line > want))
                raise DataError(f"{path}:{line + bad}: expected {want + 1} fields (as in the header), found "
                                f"{int(per_line[bad]) + 1}; remove the extra fields or that line")
            carry = tabs.size - (int(before[-1]) if ends.size else 0) + (carry if not ends.size else 0)
            line += ends.size
    if carry > want:  # the last line, without a line end
        raise DataError(f"{path}:{line}: expected {want + 1} fields (as in the header), found {carry + 1}; remove "
                        "the extra fields or that line")


def _dataset_name(inter: Path) -> str:
    """'ml.v2' of ml.v2.inter and of RecBole's benchmark files ml.v2.train.inter, ml.v2.valid.inter, ..."""
    stem = inter.name[:-len(".inter")]
    for part in (".train", ".valid", ".test"):
        if stem.endswith(part) and len(stem) > len(part):
            return stem[:-len(part)]
    return stem


def recbole_files(root: Path) -> list[Path]:
    """The files :func:`read_recbole` reads in ``root``, in its order: every .inter file, then NAME.item and
    NAME.user where they are there (of .inter files of several NAMEs, which it refuses, those alone)."""
    inters = sorted(root.glob("*.inter"))
    stems = {_dataset_name(p) for p in inters}
    if len(stems) != 1:
        return inters
    stem = stems.pop()
    return [*inters, *(p for p in (root / f"{stem}.item", root / f"{stem}.user") if p.exists())]


def read_recbole(root: Path, id_type: str = "int", encoding: str = "utf-8", tick=None) -> RawData:
    """A RecBole dataset folder: every NAME.*.inter of one NAME (the benchmark's NAME.train/valid/test.inter
    read together: split.method=given keeps their split, another splits them by split.*), with NAME.item and NAME.user if there. ``tick``: a bar's update
    over the bytes of the .inter files as they are parsed, one after the other."""
    from embedrec.bars import Restartable

    inters = sorted(root.glob("*.inter"))
    stems = sorted({_dataset_name(p) for p in inters})
    if len(stems) > 1:
        raise DataError(f"{root}: holds the .inter files of {len(stems)} RecBole datasets ({', '.join(stems)}); "
                        "point data.source at a folder with one dataset's files")
    stem = stems[0]
    parts = []
    names: list[str] = []
    for ipath in inters:
        cols = [c for c, _ in _atomic_header(ipath, encoding)]
        need = {"user_id", "item_id"}
        if not need <= set(cols):
            raise DataError(f"{ipath}:1: RecBole header lacks {', '.join(sorted(need - set(cols)))} "
                            f"(found: {', '.join(cols)})")
        if names and set(cols) != set(names):
            raise DataError(f"{ipath}:1: its columns ({', '.join(cols)}) differ from {inters[0].name}'s "
                            f"({', '.join(names)}); give the dataset's .inter files the same columns")
        names = names or cols
        numeric = {c: t for c, t in (("rating", "float32"), ("timestamp", "float64")) if c in cols}
        _refuse_long_lines(ipath, cols)
        part = read_numeric_table(ipath, sep="\t", names=cols, usecols=["user_id", "item_id", *numeric],
                                  header=True, encoding=encoding, numeric=numeric, label=str(ipath),
                                  extra_dtype={"user_id": str, "item_id": str}, missing=RELEASE,
                                  tick=None if tick is None else Restartable(tick))  # (a read again: this file's)
        for c in ("user_id", "item_id"):
            part[c] = _ids(part[c].astype(str), "str" if id_type == "auto" else id_type, str(ipath), c, 2)
        parts.append(part)
    if len(inters) > 1:
        log.info("read %d .inter files of RecBole dataset '%s' together (%s); split.method=given holds out their "
                 "valid and test rows as they are, another split.method splits them all by split.*",
                 len(inters), stem, ", ".join(p.name for p in inters))
    ipath = inters[0]
    ratings = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    ratings = ratings.rename(columns={"item_id": "movie_id"})
    if id_type == "auto":  # decided over every .inter file at once: one file's '007' makes the column text
        for c in ("user_id", "movie_id"):
            ratings[c] = auto_ids(ratings[c])
    no_ratings = "rating" not in ratings  # a log of events: data.repeats auto sums a pair's rows (a review)
    if no_ratings:
        ratings["rating"] = np.float32(1.0)
    if "timestamp" in ratings:
        ratings["timestamp"] = ratings["timestamp"].astype("int64")
    files = list(inters)
    movies = users = None
    item = root / f"{stem}.item"
    if item.exists():
        icols = [c for c, _ in _atomic_header(item, encoding)]
        df = _read_atomic(item, icols, encoding, quoting=3)
        title_col = next((c for c in ("movie_title", "title") if c in df.columns), None)
        genre_col = next((c for c in ("class", "genre", "genres") if c in df.columns), None)
        year_col = next((c for c in ("release_year", "year") if c in df.columns), None)
        ids = _ids(df["item_id"], id_type, str(item), "item_id", 2)
        titles = list(df[title_col]) if title_col else [str(i) for i in ids]
        genres = [g.split() for g in df[genre_col]] if genre_col else [[] for _ in ids]
        years = [int(y) if y.isdigit() else None for y in df[year_col]] if year_col else None
        movies = movies_frame(list(ids), titles, genres, years)
        if id_type == "auto":  # '007' in either file: both text, so that they still join
            ratings["movie_id"], movies["movie_id"] = same_id_type(ratings["movie_id"], movies["movie_id"])
        files.append(item)
    user = root / f"{stem}.user"
    if user.exists():
        ucols = [c for c, _ in _atomic_header(user, encoding)]
        df = _read_atomic(user, ucols, encoding)
        users = pd.DataFrame({"user_id": _ids(df["user_id"], id_type, str(user), "user_id", 2)})
        for src, dst in (("age", "age"), ("gender", "gender"), ("occupation", "occupation"), ("zip_code", "zip")):
            if src in df.columns:
                users[dst] = pd.to_numeric(df[src], errors="coerce").round().astype("Int32") if dst == "age" else df[src]
        if id_type == "auto":
            ratings["user_id"], users["user_id"] = same_id_type(ratings["user_id"], users["user_id"])
        files.append(user)
    starts = np.concatenate([[0], np.cumsum([len(x) for x in parts])[:-1]]).tolist()
    return RawData(ratings, movies, users, "recbole", None, files, (str(ipath), 2),
                   parts=[(str(p), int(st)) for p, st in zip(inters, starts)] if len(inters) > 1 else [],
                   no_ratings=no_ratings)
