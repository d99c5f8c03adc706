"""RecBole atomic files: NAME.inter (user_id:token, item_id:token, rating:float, timestamp:float), with the
optional NAME.item and NAME.user beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.data.parsing import (
    RawData,
    _decode_error,
    _ids,
    _parser_error,
    movies_frame,
    read_numeric_table,
)
from embedrec.errors import DataError


def _atomic_header(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
    cols = []
    for h in first.split("\t"):
        name, _, kind = h.partition(":")
        cols.append((name, kind))
    return cols


def _read_atomic(path: Path, names: list[str], **kw) -> pd.DataFrame:
    """An atomic file's rows as text; pandas' parser errors become one DataError naming path:line."""
    try:
        return pd.read_csv(path, sep="\t", header=0, names=names, dtype=str, keep_default_na=False,
                           encoding="utf-8", **kw)
    except UnicodeDecodeError as e:
        raise _decode_error(str(path), e, "utf-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise _parser_error(str(path), e, 1, path, "\t", "utf-8") from None


def read_recbole(root: Path) -> RawData:
    inters = sorted(root.glob("*.inter"))
    ipath = inters[0]
    stem = ipath.stem
    cols = _atomic_header(ipath)
    names = [c for c, _ in cols]
    need = {"user_id", "item_id"}
    if not need <= set(names):
        raise DataError(f"{ipath}:1: RecBole header lacks {', '.join(sorted(need - set(names)))} "
                        f"(found: {', '.join(names)})")
    numeric = {"user_id": "int64", "item_id": "int64"}
    if "rating" in names:
        numeric["rating"] = "float32"
    if "timestamp" in names:
        numeric["timestamp"] = "float64"
    ratings = read_numeric_table(ipath, sep="\t", names=names, usecols=list(numeric), header=True,
                                 encoding="utf-8", numeric=numeric, label=str(ipath))
    ratings = ratings.rename(columns={"item_id": "movie_id"})
    if "rating" not in ratings:
        ratings["rating"] = np.float32(1.0)
    if "timestamp" in ratings:
        ratings["timestamp"] = ratings["timestamp"].astype("int64")
    files = [ipath]
    movies = users = None
    item = root / f"{stem}.item"
    if item.exists():
        icols = [c for c, _ in _atomic_header(item)]
        df = _read_atomic(item, icols, quoting=3)
        title_col = next((c for c in ("movie_title", "title") if c in df.columns), None)
        genre_col = next((c for c in ("class", "genre", "genres") if c in df.columns), None)
        year_col = next((c for c in ("release_year", "year") if c in df.columns), None)
        ids = _ids(df["item_id"], "int", str(item), "item_id", 2)
        titles = list(df[title_col]) if title_col else [str(i) for i in ids]
        genres = [g.split() for g in df[genre_col]] if genre_col else [[] for _ in ids]
        years = [int(y) if y.isdigit() else None for y in df[year_col]] if year_col else None
        movies = movies_frame(list(ids), titles, genres, years)
        files.append(item)
    user = root / f"{stem}.user"
    if user.exists():
        ucols = [c for c, _ in _atomic_header(user)]
        df = _read_atomic(user, ucols)
        users = pd.DataFrame({"user_id": _ids(df["user_id"], "int", str(user), "user_id", 2)})
        for src, dst in (("age", "age"), ("gender", "gender"), ("occupation", "occupation"), ("zip_code", "zip")):
            if src in df.columns:
                users[dst] = pd.to_numeric(df[src], errors="coerce").astype("Int32") if dst == "age" else df[src]
        files.append(user)
    return RawData(ratings, movies, users, "recbole", None, files, (str(ipath), 2))
