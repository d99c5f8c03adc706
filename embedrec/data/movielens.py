"""MovieLens layouts: ml-100k (u.data, u.item, u.user), ml-1m / ml-10m ('::'-separated .dat files) and the
CSV releases (ratings.csv, movies.csv)."""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.data.idtext import _refuse_zero_padded
from embedrec.data.movietable import RELEASE_MOVIES_FIX, read_movies_table
from embedrec.data.parsing import (
    ML100K_GENRES,
    RawData,
    _read_lines,
    _refuse_repeated_names,
    movies_frame,
    read_numeric_table,
    refuse_wide_text,
    split_title_year,
)
from embedrec.data.textfiles import RELEASE, warn_utf8_lines
from embedrec.errors import DataError, set_hint, shorten

log = logging.getLogger("embedrec")

ML_IDS_FIX = "MovieLens ids are plain integers: fix that line (every id of a release is written as one)"


def _numeric_encoding(path: Path) -> str:
    """u.data and ratings.dat are ASCII numbers (read as latin-1); a copy saved with a UTF-8 byte-order mark (an
    editor's 'UTF-8 with BOM') is read past it, as generic tables and ratings.csv are."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    refuse_wide_text(path, head)
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "latin-1"


def _no_movies(root: Path, name: str, ratings: str) -> None:
    """A release folder without its movies file: said once, as every title (and genre, and year) is lost."""
    log.warning("%s: no %s beside %s: the movies get no titles, years or genres, so `recommend --movie TITLE` "
                "cannot find them (ids still work); add the release's %s beside %s for them",
                root, name, ratings, name, ratings)

ML1M_OCCUPATIONS = ["other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
                    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
                    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer"]


def read_ml100k(root: Path, tick=None) -> RawData:
    rpath = root / "u.data"
    names = ["user_id", "movie_id", "rating", "timestamp"]
    encoding = _numeric_encoding(rpath)
    _refuse_zero_padded(rpath, "\t", encoding, ["user_id", "movie_id"], str(rpath), names=names, fix=ML_IDS_FIX)
    ratings = read_numeric_table(rpath, sep="\t", names=names,
                                 usecols=None, header=False, encoding=encoding,
                                 numeric={"user_id": "int64", "movie_id": "int64", "rating": "float32",
                                          "timestamp": "int64"}, missing=RELEASE, tick=tick)
    movies = users = None
    files = [rpath]
    ipath = root / "u.item"
    if not ipath.exists():
        _no_movies(root, "u.item", "u.data")
    else:
        ids, titles, genres, years = [], [], [], []
        # Latin-1 as GroupLens wrote it; a copy saved as UTF-8 is read as that (else its titles would be mojibake)
        for n, line in enumerate(_read_lines(ipath, ("utf-8", "latin-1")), 1):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 24:
                raise DataError(f"{ipath}:{n}: expected 24 '|'-separated fields, found {len(parts)}")
            ids.append(_movie_id(parts[0], ipath, n))
            titles.append(parts[1])
            flags = [f.strip() for f in parts[5:24]]
            bad = next((i for i, f in enumerate(flags) if f not in ("0", "1")), None)
            if bad is not None:  # ('x', '2' were read as 0, silently; a red team)
                raise DataError(f"{ipath}:{n}: genre flag {bad + 1} ({ML100K_GENRES[bad]}) is "
                                f"'{shorten(flags[bad], 20)}', not 0 or 1; fix that line")
            genres.append([ML100K_GENRES[i] for i, f in enumerate(flags) if f == "1"])
            m = re.search(r"(\d{4})\s*$", parts[2])
            years.append(int(m.group(1)) if m else None)
        if not ids:
            _no_rows(ipath)
        movies = movies_frame(ids, titles, genres, _prefer_title_year(titles, years))
        warn_utf8_lines(ipath, str(ipath), "latin-1")  # read as latin-1 where it is not UTF-8 throughout
        files.append(ipath)
    upath = root / "u.user"
    if upath.exists():
        rows = []
        for n, line in enumerate(_read_lines(upath, ("latin-1",)), 1):
            if not line.strip():
                continue
            p = line.split("|")
            if len(p) != 5 or not p[0].isdigit() or not p[1].isdigit():
                raise DataError(f"{upath}:{n}: expected 'id|age|gender|occupation|zip'")
            _plain_user_id(p[0], upath, n)
            rows.append((int(p[0]), _age(p[1], upath, n), p[2], p[3], p[4]))
        users = pd.DataFrame(rows, columns=["user_id", "age", "gender", "occupation", "zip"])
        files.append(upath)
    return RawData(ratings, movies, users, "ml-100k", (1.0, 5.0), files, (str(rpath), 1))


def _age(text: str, path: Path, line: int) -> int:
    """A users file's age, 0-150 as --user-features takes them (one beyond int64 was an internal OverflowError at
    the Parquet write, and 9999999999 was stored; a red team)."""
    age = int(text)
    if not 0 <= age <= 150:
        raise DataError(f"{path}:{line}: age '{shorten(text.strip(), 40)}' is not an age (0-150); fix that line")
    return age


def _movie_id(text: str, path: Path, line: int) -> int:
    if not re.fullmatch(r"-?(0|[1-9][0-9]*)", text.strip()):  # '007', '+7', '7.0' would merge with 7
        what = "is not an integer" if not re.fullmatch(r"\s*[+-]?[0-9.]+\s*", text) else \
            "is not written as a plain integer (it would merge with another id: '007' is 7)"
        raise DataError(f"{path}:{line}: movie id '{shorten(text, 60)}' {what}; fix that line")
    return int(text)


def _prefer_title_year(titles: list[str], years: list) -> list:
    """The year in the title is the film's; the release date's year is the fallback."""
    return [split_title_year(t)[1] or y for t, y in zip(titles, years)]


def _read_dat_ratings(path: Path, tick=None) -> pd.DataFrame:
    # '::'-separated numeric fields: read with ':' so pandas' fast C engine can be used (empty columns between).
    # Every column is read (no usecols, which drops a line's extra fields without a word): a line of more fields
    # is pandas' own error, and a field split by a lone ':' ('978:300760') leaves one of the empty columns
    # filled or the line one field long; both are said in the file's '::' terms (_dat_shape). The empty columns
    # are read as categories (a byte a row; a red team: '1::2::3::978:300760' was stored as timestamp 978).
    names = ["user_id", "_a", "movie_id", "_b", "rating", "_c", "timestamp"]
    encoding = _numeric_encoding(path)
    _refuse_zero_padded(path, ":", encoding, ["user_id", "movie_id"], str(path), names=names, fix=ML_IDS_FIX)
    try:
        df = read_numeric_table(path, sep=":", names=names, usecols=None, header=False, encoding=encoding,
                                numeric={"user_id": "int64", "movie_id": "int64", "rating": "float32",
                                         "timestamp": "int64"},
                                extra_dtype={c: "category" for c in _DAT_GAPS}, missing=RELEASE, tick=tick)
    except DataError as e:  # pandas counted ':'-separated fields (7 a line): say it in the file's '::' terms
        raise _dat_shape(path, encoding) or e from None
    index = df.index
    filled = np.zeros(len(df), dtype=bool)
    for c in _DAT_GAPS:
        filled |= df[c].notna().to_numpy()
    if filled.any() or not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        # (a first line of 8 fields makes pandas take its first as the index: the shape of the file again)
        raise _dat_shape(path, encoding) or DataError(
            f"{path}: a line is not UserID::MovieID::Rating::Timestamp; check the file's '::' separators")
    return df[["user_id", "movie_id", "rating", "timestamp"]]


_DAT_GAPS = ("_a", "_b", "_c")  # the empty fields between a ratings.dat line's '::' pairs, read with ':'


def _dat_shape(path: Path, encoding: str) -> DataError | None:
    """The first line of a ratings.dat without its four '::'-separated fields, or with a lone ':' in one
    ('978:300760'), or a file that does not use '::' at all (a tab-separated copy), as one error; None where every
    line has four (the error is another)."""
    first = True
    with open(path, encoding=encoding, errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            parts = text.split("::")
            lone = next((p for p in parts if ":" in p), None)
            if first and lone is None and len(parts) == 1:
                sep = next((f"{name} ({c!r})" for c, name in (("\t", "tabs"), (",", "commas"), (";", "semicolons"),
                                                              ("|", "'|'"), (" ", "spaces")) if c in text), None)
                return DataError(f"{path}:{n}: the file does not use the '::' separator of MovieLens 1M and 10M "
                                 f"ratings.dat{f' (its fields are separated by {sep})' if sep else ''}; save it "
                                 "as UserID::MovieID::Rating::Timestamp lines, or give it by its own path as a "
                                 "ratings table (with «--set data.header=false» if it has no header line)")
            first = False
            if lone is not None:
                return DataError(f"{path}:{n}: a single ':' in the field '{shorten(lone, 40)}' (fields are "
                                 "separated by '::': UserID::MovieID::Rating::Timestamp); fix or remove that line")
            if len(parts) != 4:
                fix = "fill in the missing fields" if len(parts) < 4 else "remove the extra fields"
                return DataError(f"{path}:{n}: expected 4 '::'-separated fields (UserID::MovieID::Rating::"
                                 f"Timestamp), found {len(parts)}; {fix} or remove that line")
    return None


def _read_dat_movies(path: Path) -> pd.DataFrame:
    ids, titles, genres = [], [], []
    for n, line in enumerate(_read_lines(path, ("utf-8", "latin-1")), 1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3:  # (more: the extra fields were read into the title, silently; a red team)
            raise DataError(f"{path}:{n}: expected 3 '::'-separated fields (MovieID::Title::Genres), found "
                            f"{len(parts)}; fix or remove that line")
        ids.append(_movie_id(parts[0], path, n))
        titles.append(parts[1])
        genres.append(parts[-1].split("|"))
    if not ids:
        _no_rows(path)
    warn_utf8_lines(path, str(path), "latin-1")  # read as latin-1 where it is not UTF-8 throughout
    return movies_frame(ids, titles, genres)


def _no_rows(path: Path) -> None:
    """A release's movies file without a movie (empty, or blank lines): every rating would be 'for a movie absent
    from the movies file' (a red team)."""
    raise DataError(f"{path}: the movies file has no rows; {RELEASE_MOVIES_FIX}")


def read_ml_dat(root: Path, tick=None) -> RawData:
    rpath = root / "ratings.dat"
    ratings = _read_dat_ratings(rpath, tick)
    files = [rpath]
    movies = users = None
    if (root / "movies.dat").exists():
        movies = _read_dat_movies(root / "movies.dat")
        files.append(root / "movies.dat")
    else:
        _no_movies(root, "movies.dat", "ratings.dat")
    upath = root / "users.dat"
    layout = "ml-10m"
    scale = (0.5, 5.0)
    if upath.exists():
        layout, scale = "ml-1m", (1.0, 5.0)
        rows = []
        for n, line in enumerate(_read_lines(upath, ("latin-1",)), 1):
            if not line.strip():
                continue
            p = line.split("::")
            # (a sixth field was dropped, silently; a red team)
            fields = "UserID::Gender::Age::Occupation::Zip-code"
            if len(p) != 5:
                raise DataError(f"{upath}:{n}: expected 5 '::'-separated fields ({fields}), found {len(p)}; fix or "
                                "remove that line")
            lone = next((f for f in p if ":" in f), None)
            if lone is not None:
                raise DataError(f"{upath}:{n}: a single ':' in the field '{shorten(lone, 40)}' (fields are separated "
                                f"by '::': {fields}); fix or remove that line")
            if p[0].strip().lstrip("+-").isdigit():  # (anything else: the line's own error below)
                _plain_user_id(p[0], upath, n)
            try:
                occ = int(p[3])
                rows.append((int(p[0]), _age(p[2], upath, n), p[1], ML1M_OCCUPATIONS[occ] if 0 <= occ < 21 else str(occ),
                             p[4]))
            except DataError:  # _age's own line (a ValueError too), not the generic one below
                raise
            except (ValueError, IndexError):
                raise DataError(f"{upath}:{n}: expected 'UserID::Gender::Age::Occupation::Zip-code'") from None
        users = pd.DataFrame(rows, columns=["user_id", "age", "gender", "occupation", "zip"])
        files.append(upath)
    return RawData(ratings, movies, users, layout, scale, files, (str(rpath), 1))


def own_table_fix(root: Path, own: str, col: str | None, those: str | None) -> str:
    """The advice of a user's own folder read as a MovieLens CSV release (ratings.csv, movies.csv) whose ratings.csv
    is not the release's: for a column of ids, data.id_type=auto (which reads the folder as a table,
    readers._own_table); else its ratings.csv given as a table, with its movies.csv as data.movies. ``own``:
    'folder', or 'zip' (unzipped first); ``those``: 'that line' or 'those lines', or None (a header's)."""
    kind = "folder" if own == "folder" else "zip"
    read = f"{'the' if own == 'folder' else 'this'} {kind} is read as a MovieLens CSV release (ratings.csv beside " \
        "movies.csv)"
    fix = f", or fix {those}" if those else ""
    if col in ("userId", "movieId"):
        return (f"{read}, whose ids are integers; for your own table's text ids set data.id_type=auto, which "
                f"reads its ratings.csv as a ratings table{fix}")
    table = f"give its ratings.csv as the source, with {set_hint('data.movies', str(root / 'movies.csv'))}" \
        if own == "folder" else "unzip it and give its ratings.csv as the source, with data.movies set to its movies.csv"
    return f"{read}; to read it as a ratings table of your own (its dates, its own column names), {table}{fix}"


def _plain_user_id(text: str, path: Path, n: int) -> None:
    """A users file's id written as the ratings' are checked to be ('007', '+7' would merge with user 7; a review)."""
    if text != str(int(text)):
        raise DataError(f"{path}:{n}: user id {text!r:.30} is not written as a plain integer, which integer ids "
                        f"would read as {int(text)} (merging it with another id); {ML_IDS_FIX}")


def read_ml_csv(root: Path, encoding: str = "utf-8", own: str | None = None, tick=None) -> RawData:
    """ratings.csv (and movies.csv) of ml-20m, ml-25m, ml-32m, ml-latest(-small): UTF-8 as GroupLens writes them,
    or data.encoding for a copy saved otherwise. ``own``: the folder is the user's ('folder', or 'zip' for one
    unzipped to read), not a release fetched by its name: where its ratings.csv is not the release's (text ids, ISO
    dates, other columns), the one line says it was read as a MovieLens CSV release and how to read it as one's own
    table (:func:`own_table_fix`). ``tick``: a bar's update over the bytes of ratings.csv as they are parsed (as
    every release reader's here: parsing.read_numeric_table's)."""
    rpath = root / "ratings.csv"
    _refuse_repeated_names(rpath, ",", encoding, str(rpath))  # pandas would read the first, silently
    _refuse_zero_padded(rpath, ",", encoding, ["userId", "movieId"], str(rpath), fix=ML_IDS_FIX)
    unparsed = None
    if own is not None:  # a first-hour review: a shop's own folder of ratings.csv (ids 'cust_00000') and movies.csv
        # was told to 'fix or remove those lines', and data.id_type=auto was ignored there
        def said(col: str):
            return lambda shown, what, those, values=None: (what, "like it", own_table_fix(root, own, col, those))
        unparsed = {c: said(c) for c in ("userId", "movieId", "rating", "timestamp")}
    ratings = read_numeric_table(rpath, sep=",", names=None, usecols=None,
                                 header=True, encoding=encoding,
                                 numeric={"userId": "int64", "movieId": "int64", "rating": "float32",
                                          "timestamp": "int64"}, missing=RELEASE, unparsed=unparsed, tick=tick)
    missing = {"userId", "movieId", "rating", "timestamp"} - set(ratings.columns)
    if missing:
        fix = f"; {own_table_fix(root, own, None, None)}" if own is not None else ""
        raise DataError(f"{rpath}:1: header lacks {', '.join(sorted(missing))}; expected userId,movieId,rating,"
                        f"timestamp{fix}")
    ratings = ratings[["userId", "movieId", "rating", "timestamp"]].rename(columns={"userId": "user_id",
                                                                                    "movieId": "movie_id"})
    files = [rpath]
    movies = None
    mpath = root / "movies.csv"
    if mpath.exists():
        movies = read_movies_table(mpath, sep=",", id_col="movieId", title_col="title", genres_col="genres",
                                   genre_sep="|", encoding=encoding, id_type="int", empty_fix=RELEASE_MOVIES_FIX,
                                   sep_key=None)
        files.append(mpath)
    else:
        _no_movies(root, "movies.csv", "ratings.csv")
    return RawData(ratings, movies, None, "ml-csv", (0.5, 5.0), files, (str(rpath), 2))
