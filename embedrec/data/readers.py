"""Parsers for every MovieLens layout, RecBole atomic files and generic ratings tables.

Each reader returns a :class:`RawData` with external ids as given by the source:
``ratings`` (user_id, movie_id, rating float32, timestamp int64), optional ``movies`` (movie_id, title, year,
genres as a list of normalised names) and optional ``users`` (user_id plus demographics). Problems raise
:class:`DataError` naming the file and line.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedrec.errors import DataError, first_line, shorten

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig

# ------------------------------------------------------------------------------------------ value helpers

ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western"]
_CANON = {re.sub(r"[^a-z0-9]", "", g.lower()): g for g in ML100K_GENRES[1:] + ["IMAX"]}
_CANON.update({"childrens": "Children", "scifi": "Sci-Fi", "sciencefiction": "Sci-Fi", "filmnoir": "Film-Noir"})
_NO_GENRE = {"", "unknown", "nogenreslisted", "none"}

ML1M_OCCUPATIONS = ["other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
                    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
                    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer"]

_YEAR_RE = re.compile(r"^(.*?)\s*\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


def normalise_genre(name: str) -> str | None:
    key = re.sub(r"[^a-z0-9]", "", name.strip().lower())
    if key in _NO_GENRE:
        return None
    return _CANON.get(key, name.strip())


def normalise_genres(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        g = normalise_genre(n)
        if g is not None and g not in out:
            out.append(g)
    return out


def split_title_year(title: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); a title without a year keeps year None."""
    t = str(title).strip()
    m = _YEAR_RE.match(t)
    if m and m.group(1):
        return m.group(1).strip(), int(m.group(2))
    return t, None


def movies_frame(ids: list, titles: list[str], genres: list[list[str]], years: list | None = None) -> pd.DataFrame:
    out_titles, out_years = [], []
    for i, t in enumerate(titles):
        clean, y = split_title_year(t)
        if years is not None and years[i] is not None and not pd.isna(years[i]):
            y = int(years[i])
        out_titles.append(clean)
        out_years.append(y)
    return pd.DataFrame({
        "movie_id": ids,
        "title": out_titles,
        "year": pd.array(out_years, dtype="Int32"),
        "genres": [normalise_genres(g) for g in genres],
    })


@dataclass
class RawData:
    ratings: pd.DataFrame
    movies: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    layout: str = "csv"
    rating_scale: tuple[float, float] | None = None
    files: list[Path] = field(default_factory=list)
    # where each ratings row came from, for error messages: (label, first data line number)
    origin: tuple[str, int] = ("<input>", 1)


# ------------------------------------------------------------------------------------------ table reading

def _label(src) -> str:
    return "<stdin>" if src is sys.stdin or src == "-" else str(src)


def _decode_error(label: str, e: UnicodeDecodeError, encoding: str) -> DataError:
    if e.object[:2] == b"\x1f\x8b":
        return DataError(f"{label}: the file is gzip-compressed; name it with a .gz extension (e.g. ratings.csv.gz) "
                         "or decompress it")
    hint = "latin-1" if encoding.lower().replace("-", "") in ("utf8",) else "utf-8"
    return DataError(f"{label}: cannot decode byte 0x{e.object[e.start]:02x} at offset {e.start} as {encoding}; "
                     f"set data.encoding (e.g. «--set data.encoding={hint}») to the file's encoding")


def _parser_error(label: str, e: Exception, header_lines: int) -> DataError:
    msg = str(e)
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if m:
        return DataError(f"{label}:{m.group(2)}: expected {m.group(1)} fields, found {m.group(3)}; "
                         "check the separator (data.separator) and quoting on that line")
    if "No columns to parse" in msg or isinstance(e, pd.errors.EmptyDataError):
        return DataError(f"{label}: the file is empty; point data.source at a ratings file with rows")
    return DataError(f"{label}: cannot parse ({msg.splitlines()[0] if msg else type(e).__name__})")


def read_numeric_table(src, *, sep: str, names: list[str] | None, usecols, numeric: dict[str, str],
                       header: bool, encoding: str, label: str | None = None,
                       extra_dtype: dict | None = None) -> pd.DataFrame:
    """Read a delimited table whose ``numeric`` columns (name -> dtype) must parse as numbers.

    Fast path: pandas' C engine with narrow dtypes. On failure the file is re-read as text to report the
    first offending line (file:line), so good files pay nothing for the diagnostics.
    """
    label = label or _label(src)
    header_lines = 1 if header else 0
    kw = dict(sep=sep, header=0 if header else None, names=names, usecols=usecols, encoding=encoding,
              engine="c", skip_blank_lines=True)
    if isinstance(src, (bytes, bytearray)):
        def opener():
            return io.BytesIO(src)
    else:
        def opener():
            return src
    try:
        df = pd.read_csv(opener(), dtype={**numeric, **(extra_dtype or {})}, **kw)
    except UnicodeDecodeError as e:
        raise _decode_error(label, e, encoding) from None
    except FileNotFoundError:
        raise DataError(f"{label}: file not found; check data.source") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: the file is empty; point data.source at a ratings file with rows") from None
    except pd.errors.ParserError as e:
        raise _parser_error(label, e, header_lines) from None
    except (ValueError, TypeError, OverflowError) as e:
        if "Usecols do not match" in str(e) or "not in list" in str(e):
            raise DataError(f"{label}: missing columns ({e}); set data.columns.* to the file's column names") from None
        raise _diagnose_numeric(opener, kw, numeric, label, header_lines) from None
    if header and not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        # every row has more fields than the header names: pandas would take the extra leading field as the
        # index and shift every column by one
        n = len(df.columns)
        raise DataError(f"{label}:{1 + header_lines}: expected {n} fields (as in the header), found "
                        f"{n + df.index.nlevels}; name every column in the header line, or remove the extra fields")
    if len(df) == 0:
        raise DataError(f"{label}: the file has no data rows; point data.source at a ratings file with rows")
    return df


def _diagnose_numeric(opener, kw: dict, numeric: dict[str, str], label: str, header_lines: int) -> DataError:
    try:
        text = pd.read_csv(opener(), dtype=str, keep_default_na=False, **kw)
    except Exception as e:  # a second failure: report what we can
        return DataError(f"{label}: cannot parse ({first_line(e)})")
    for col, dtype in numeric.items():
        if col not in text.columns:
            continue
        values = text[col]
        parsed = pd.to_numeric(values, errors="coerce")
        bad = np.array(parsed.isna().to_numpy(), dtype=bool)
        if dtype.startswith("int"):
            with np.errstate(invalid="ignore"):
                bad |= ~np.isfinite(parsed.to_numpy(dtype=float)) | (parsed.to_numpy(dtype=float) % 1 != 0)
                bad |= np.abs(parsed.to_numpy(dtype=float)) >= 2.0 ** 63  # beyond int64
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            shown = shorten(values.iloc[row], 60)
            what = "is empty" if shown == "" else f"'{shown}' is not {'an integer' if dtype.startswith('int') else 'a number'}"
            return DataError(f"{label}:{row + 1 + header_lines}: column '{col}' {what}; fix or remove that line")
    return DataError(f"{label}: a numeric column could not be parsed; check data.separator and data.columns")


def check_scale(df: pd.DataFrame, scale: tuple[float, float], origin: tuple[str, int]) -> None:
    r = df["rating"].to_numpy()
    bad = ~((r >= scale[0]) & (r <= scale[1]))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{origin[0]}:{row + origin[1]}: rating {r[row]:g} is outside the scale "
                        f"{scale[0]:g}-{scale[1]:g}; fix that row, or set data.rating_scale to the real scale")


# ------------------------------------------------------------------------------------------ MovieLens layouts

def _read_lines(path: Path, encodings: tuple[str, ...]) -> list[str]:
    data = path.read_bytes()
    for enc in encodings:
        try:
            return data.decode(enc).splitlines()
        except UnicodeDecodeError as e:
            last = e
    raise _decode_error(str(path), last, encodings[-1])


def read_ml100k(root: Path) -> RawData:
    rpath = root / "u.data"
    ratings = read_numeric_table(rpath, sep="\t", names=["user_id", "movie_id", "rating", "timestamp"],
                                 usecols=None, header=False, encoding="latin-1",
                                 numeric={"user_id": "int64", "movie_id": "int64", "rating": "float32",
                                          "timestamp": "int64"})
    movies = users = None
    files = [rpath]
    ipath = root / "u.item"
    if ipath.exists():
        ids, titles, genres, years = [], [], [], []
        for n, line in enumerate(_read_lines(ipath, ("latin-1",)), 1):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 24:
                raise DataError(f"{ipath}:{n}: expected 24 '|'-separated fields, found {len(parts)}")
            try:
                ids.append(int(parts[0]))
            except ValueError:
                raise DataError(f"{ipath}:{n}: movie id '{shorten(parts[0], 60)}' is not an integer") from None
            titles.append(parts[1])
            flags = parts[5:24]
            genres.append([ML100K_GENRES[i] for i, f in enumerate(flags) if f.strip() == "1"])
            m = re.search(r"(\d{4})\s*$", parts[2])
            years.append(int(m.group(1)) if m else None)
        movies = movies_frame(ids, titles, genres, _prefer_title_year(titles, years))
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
            rows.append((int(p[0]), int(p[1]), p[2], p[3], p[4]))
        users = pd.DataFrame(rows, columns=["user_id", "age", "gender", "occupation", "zip"])
        files.append(upath)
    return RawData(ratings, movies, users, "ml-100k", (1.0, 5.0), files, (str(rpath), 1))


def _prefer_title_year(titles: list[str], years: list) -> list:
    """The year in the title is the film's; the release date's year is the fallback."""
    return [split_title_year(t)[1] or y for t, y in zip(titles, years)]


def _read_dat_ratings(path: Path) -> pd.DataFrame:
    # '::'-separated numeric fields: read with ':' so pandas' fast C engine can be used (empty columns between).
    df = read_numeric_table(path, sep=":", names=["user_id", "_a", "movie_id", "_b", "rating", "_c", "timestamp"],
                            usecols=["user_id", "movie_id", "rating", "timestamp"], header=False,
                            encoding="latin-1",
                            numeric={"user_id": "int64", "movie_id": "int64", "rating": "float32",
                                     "timestamp": "int64"})
    return df[["user_id", "movie_id", "rating", "timestamp"]]


def _read_dat_movies(path: Path) -> pd.DataFrame:
    ids, titles, genres = [], [], []
    for n, line in enumerate(_read_lines(path, ("utf-8", "latin-1")), 1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) < 3:
            raise DataError(f"{path}:{n}: expected 'MovieID::Title::Genres'")
        try:
            ids.append(int(parts[0]))
        except ValueError:
            raise DataError(f"{path}:{n}: movie id '{shorten(parts[0], 60)}' is not an integer") from None
        titles.append("::".join(parts[1:-1]))
        genres.append(parts[-1].split("|"))
    return movies_frame(ids, titles, genres)


def read_ml_dat(root: Path) -> RawData:
    rpath = root / "ratings.dat"
    ratings = _read_dat_ratings(rpath)
    files = [rpath]
    movies = users = None
    if (root / "movies.dat").exists():
        movies = _read_dat_movies(root / "movies.dat")
        files.append(root / "movies.dat")
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
            try:
                occ = int(p[3])
                rows.append((int(p[0]), int(p[2]), p[1], ML1M_OCCUPATIONS[occ] if 0 <= occ < 21 else str(occ), p[4]))
            except (ValueError, IndexError):
                raise DataError(f"{upath}:{n}: expected 'UserID::Gender::Age::Occupation::Zip-code'") from None
        users = pd.DataFrame(rows, columns=["user_id", "age", "gender", "occupation", "zip"])
        files.append(upath)
    return RawData(ratings, movies, users, layout, scale, files, (str(rpath), 1))


def read_ml_csv(root: Path) -> RawData:
    rpath = root / "ratings.csv"
    ratings = read_numeric_table(rpath, sep=",", names=None, usecols=None,
                                 header=True, encoding="utf-8",
                                 numeric={"userId": "int64", "movieId": "int64", "rating": "float32",
                                          "timestamp": "int64"})
    missing = {"userId", "movieId", "rating", "timestamp"} - set(ratings.columns)
    if missing:
        raise DataError(f"{rpath}:1: header lacks {', '.join(sorted(missing))}; expected userId,movieId,rating,timestamp")
    ratings = ratings[["userId", "movieId", "rating", "timestamp"]].rename(columns={"userId": "user_id",
                                                                                    "movieId": "movie_id"})
    files = [rpath]
    movies = None
    mpath = root / "movies.csv"
    if mpath.exists():
        movies = read_movies_table(mpath, sep=",", id_col="movieId", title_col="title", genres_col="genres",
                                   genre_sep="|", encoding="utf-8", id_type="int")
        files.append(mpath)
    return RawData(ratings, movies, None, "ml-csv", (0.5, 5.0), files, (str(rpath), 2))


def read_movies_table(path, *, sep: str, id_col: str, title_col: str, genres_col: str | None, genre_sep: str,
                      encoding: str, id_type: str) -> pd.DataFrame:
    label = str(path)
    try:
        if str(path).endswith(".parquet"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding)
    except UnicodeDecodeError as e:
        raise _decode_error(label, e, encoding) from None
    except FileNotFoundError:
        raise DataError(f"{label}: movies file not found; check data.movies") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as e:
        raise _parser_error(label, e, 1) from None
    missing = [c for c in (id_col, title_col) if c not in df.columns]
    if missing:
        raise DataError(f"{label}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, df.columns))}); "
                        "set data.columns.movie / data.columns.title")
    ids = _ids(df[id_col].astype(str) if id_type == "int" else df[id_col], id_type, label, id_col, 2)
    genres = ([str(g).split(genre_sep) if g else [] for g in df[genres_col]]
              if genres_col and genres_col in df.columns else [[] for _ in range(len(df))])
    return movies_frame(list(ids), [str(t) for t in df[title_col]], genres)


def _refuse_zero_padded(src, sep: str, encoding: str, cols: list[str], label: str, rows: int = 100_000) -> None:
    """Integer ids lose leading zeros ('00196' would become 196 and could merge with '196'): refuse them, checking
    the first ``rows`` rows (zero padding is a property of a whole file)."""
    import io
    import re

    try:
        head = pd.read_csv(io.BytesIO(src) if isinstance(src, bytes) else src, sep=sep, usecols=cols, dtype=str,
                           nrows=rows, encoding=encoding, engine="c" if len(sep) == 1 else "python")
    except Exception:
        return  # the main reader reports what is wrong with the file
    padded = re.compile(r"^\s*[+-]?0\d")
    for c in cols:
        hit = head[c].astype(str).str.match(padded)
        if hit.any():
            row = int(hit.to_numpy().argmax())
            raise DataError(f"{label}:{row + 2}: column '{c}' id {head[c].iloc[row]!r:.30} has a leading zero, which "
                            "integer ids would drop (merging it with another id); set data.id_type=str to keep ids "
                            "as text")


def _ids(values: pd.Series, id_type: str, label: str, col: str, first_line: int) -> pd.Series:
    if id_type == "str":
        return values.astype(str)
    parsed = pd.to_numeric(values, errors="coerce")
    with np.errstate(invalid="ignore"):
        bad = np.array(parsed.isna().to_numpy(), dtype=bool) | (parsed.to_numpy(dtype=float) % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{label}:{row + first_line}: id '{shorten(values.iloc[row], 60)}' in column '{col}' is not an integer; "
                        "fix that row, or set data.id_type=str for text ids")
    return parsed.astype("int64")


# ------------------------------------------------------------------------------------------ RecBole atomic files

def _atomic_header(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
    cols = []
    for h in first.split("\t"):
        name, _, kind = h.partition(":")
        cols.append((name, kind))
    return cols


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
        df = pd.read_csv(item, sep="\t", header=0, names=icols, dtype=str, keep_default_na=False,
                         encoding="utf-8", quoting=3)
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
        df = pd.read_csv(user, sep="\t", header=0, names=ucols, dtype=str, keep_default_na=False, encoding="utf-8")
        users = pd.DataFrame({"user_id": _ids(df["user_id"], "int", str(user), "user_id", 2)})
        for src, dst in (("age", "age"), ("gender", "gender"), ("occupation", "occupation"), ("zip_code", "zip")):
            if src in df.columns:
                users[dst] = pd.to_numeric(df[src], errors="coerce").astype("Int32") if dst == "age" else df[src]
        files.append(user)
    return RawData(ratings, movies, users, "recbole", None, files, (str(ipath), 2))


# ------------------------------------------------------------------------------------------ generic tables

def read_generic(source: str, cfg: DataConfig) -> RawData:
    """A ratings CSV/TSV/Parquet (or '-' for stdin) with the column mapping in ``cfg`` (a DataConfig)."""
    cols = cfg.columns
    fmt = cfg.format
    label = _label(source)
    if fmt == "auto":
        low = source.lower()
        fmt = "parquet" if low.endswith(".parquet") else "tsv" if low.endswith((".tsv", ".tab")) else "csv"
    wanted = {cols.user: "user_id", cols.movie: "movie_id"}
    if cols.rating:
        wanted[cols.rating] = "rating"
    if cols.timestamp:
        wanted[cols.timestamp] = "timestamp"
    id_dtype = "int64" if cfg.id_type == "int" else "str"
    if fmt == "parquet":
        try:
            df = pd.read_parquet(sys.stdin.buffer if source == "-" else source)
        except FileNotFoundError:
            raise DataError(f"{label}: file not found; check data.source") from None
        except Exception as e:
            raise DataError(f"{label}: not a readable Parquet file ({first_line(e)})") from None
        _require_columns(df.columns, wanted, label, cfg)
        df = df[list(wanted)].rename(columns=wanted)
        first = 1
    else:
        sep = cfg.separator or ("\t" if fmt == "tsv" else None)
        src = sys.stdin.buffer.read() if source == "-" else source
        if sep is None:
            sep = _sniff_separator(src, cfg.encoding)
        header_names = None
        if cfg.header:
            header_names = _header(src, sep, cfg.encoding, label)
            _require_columns(header_names, wanted, label, cfg)
        numeric = {}
        for c, v in wanted.items():
            if v == "rating":
                numeric[c] = "float32"
            elif v == "timestamp":
                numeric[c] = "int64"
            elif id_dtype == "int64":
                numeric[c] = "int64"
        extra = {c: str for c, v in wanted.items() if v in ("user_id", "movie_id") and id_dtype == "str"}
        if id_dtype == "int64" and cfg.header:
            _refuse_zero_padded(src, sep, cfg.encoding, [c for c, v in wanted.items() if v in ("user_id", "movie_id")],
                                label)
        try:
            df = read_numeric_table(src, sep=sep, names=None if cfg.header else list(wanted),
                                    usecols=None if cfg.header else list(wanted),
                                    numeric=numeric, header=cfg.header, encoding=cfg.encoding, label=label,
                                    extra_dtype=extra)
        except DataError as e:
            ids = [c for c, v in wanted.items() if v in ("user_id", "movie_id")]
            msg = str(e)
            if id_dtype == "int64" and "is not an integer" in msg and any(f"column '{c}'" in msg for c in ids):
                raise DataError(msg.replace("; fix or remove that line",
                                            "; for text ids set data.id_type=str, or fix that line")) from None
            raise
        df = df[list(wanted)].rename(columns=wanted)
        first = 2 if cfg.header else 1
    if "rating" not in df:
        df["rating"] = np.float32(1.0)
    df["rating"] = df["rating"].astype("float32")
    if "timestamp" in df:
        df["timestamp"] = df["timestamp"].astype("int64")
    for c in ("user_id", "movie_id"):
        df[c] = df[c].astype(str) if cfg.id_type == "str" else df[c].astype("int64")
    movies = None
    files = [] if source == "-" else [Path(source)]
    if cfg.movies:
        msep = "\t" if cfg.movies.lower().endswith((".tsv", ".tab")) else (cfg.separator or ",")
        movies = read_movies_table(cfg.movies, sep=msep, id_col=cols.movie, title_col=cols.title,
                                   genres_col=cols.genres, genre_sep=cfg.genre_separator, encoding=cfg.encoding,
                                   id_type=cfg.id_type)
        files.append(Path(cfg.movies))
    return RawData(df, movies, None, fmt, None, files, (label, first))


def _sniff_separator(src, encoding: str) -> str:
    try:
        if isinstance(src, (bytes, bytearray)):
            first = src[:4096].decode(encoding, errors="replace").splitlines()[:1]
        else:
            with open(src, encoding=encoding, errors="replace") as fh:
                first = [fh.readline()]
    except FileNotFoundError:
        raise DataError(f"{src}: file not found; check data.source") from None
    except IsADirectoryError:
        raise DataError(f"{src}: is a directory without a recognised MovieLens or RecBole layout") from None
    line = first[0] if first else ""
    counts = {s: line.count(s) for s in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _header(src, sep: str, encoding: str, label: str) -> list[str]:
    try:
        buf = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
        return list(pd.read_csv(buf, sep=sep, nrows=0, encoding=encoding).columns)
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: the file is empty; point data.source at a ratings file with rows") from None
    except UnicodeDecodeError as e:
        raise _decode_error(label, e, encoding) from None


def _require_columns(found, wanted: dict, label: str, cfg: DataConfig) -> None:
    found = [str(c) for c in found]
    keys = {"user_id": "user", "movie_id": "movie", "rating": "rating", "timestamp": "timestamp"}
    for col, role in wanted.items():
        if col not in found:
            import difflib

            close = difflib.get_close_matches(col, found, n=1, cutoff=0.4)
            hint = f"; did you mean «--set data.columns.{keys[role]}={close[0]}»?" if close else \
                f"; set data.columns.{keys[role]} to one of: {shorten(', '.join(map(str, found)), 200)}"
            if role in ("timestamp", "rating") and not close:
                hint += (f", or «--set data.columns.{role}=null» if the file has no {role}s"
                         + (" (every row then counts as rating 1)" if role == "rating" else ""))
            raise DataError(f"{label}: no column '{col}' for the {role.replace('_id', '')} "
                            f"(data.columns.{keys[role]}){hint}")


# ------------------------------------------------------------------------------------------ layout detection

def detect_layout(root: Path) -> tuple[str, Path]:
    """Find a known layout in ``root`` or one folder below it; returns (layout, folder)."""
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("__"))
    for d in candidates:
        if (d / "u.data").exists():
            return "ml-100k", d
        if (d / "ratings.dat").exists():
            return "ml-dat", d
        if (d / "ratings.csv").exists():
            return "ml-csv", d
        if any(d.glob("*.inter")):
            return "recbole", d
    raise DataError(f"{root}: unrecognised layout; expected MovieLens files (u.data, ratings.dat or ratings.csv) "
                    "or RecBole atomic files (*.inter) here or one folder below")


READERS = {"ml-100k": read_ml100k, "ml-dat": read_ml_dat, "ml-csv": read_ml_csv, "recbole": read_recbole}
