"""Parsers for every MovieLens layout, RecBole atomic files and generic ratings tables.

Each reader returns a :class:`RawData` with external ids as given by the source:
``ratings`` (user_id, movie_id, rating float32, timestamp int64), optional ``movies`` (movie_id, title, year,
genres as a list of normalised names) and optional ``users`` (user_id plus demographics). Problems raise
:class:`DataError` naming the file and line.

The parsers live in ``data/parsing.py`` (the shared core: RawData, numeric tables; the file layer under it,
diagnostics included, in ``data/textfiles.py``; a table's ids in ``data/idtext.py``; a movies table in
``data/movietable.py``),
``data/movielens.py``, ``data/recbole.py`` and ``data/tables.py`` (generic CSV/TSV/Parquet/stdin, over the modules
of its concerns: ``data/sniff.py``, ``data/columns.py``, ``data/times.py``, ``data/parquet.py``); this module finds
the layout of a folder, names the reader for it, and re-exports what ingest and the tests use.

It also reads ingest's ``data.source`` with the reader it needs (:func:`read_source`): a release name (fetched by
``data/sources.py``), a zip (its members named ``m.zip!member`` in every message, not by the temporary folder), a
folder, a table or '-'; :func:`check_source` says a missing source or movies file first, and
:func:`unapplied_settings` the data.* settings a release's layout does not read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from embedrec.data.given import part_config
from embedrec.data.movielens import read_ml100k, read_ml_csv, read_ml_dat
from embedrec.data.netflix import (
    NOT_RATINGS,
    TITLES,
    holds_netflix,
    is_netflix_file,
    netflix_files,
    ratings_files,
    read_netflix,
    read_netflix_file,
)
from embedrec.data.parsing import (
    RawData,
    check_scale,
    movies_frame,
    normalise_genre,
    normalise_genres,
    read_numeric_table,
    split_title_year,
)
from embedrec.data.recbole import read_recbole, recbole_files
from embedrec.data.sources import NAMED, cache_dir, extract_zip, fetch_named, sweep_zip_temps
from embedrec.data.tables import read_generic
from embedrec.data.textfiles import is_stream, reading
from embedrec.errors import DataError, shorten
from embedrec.fsutil.files import cache_origin, loop_error

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig

__all__ = ["LAYOUT_NAMES", "READERS", "TABLES", "RawData", "check_scale", "check_source", "detect_layout",
           "movies_frame", "normalise_genre", "normalise_genres", "read_generic", "read_ml100k", "read_ml_csv",
           "read_ml_dat", "read_numeric_table", "read_recbole", "read_source", "split_title_year",
           "unapplied_settings"]

log = logging.getLogger("embedrec")


# ------------------------------------------------------------------------------------------ layout detection


def detect_layout(root: Path) -> tuple[str, Path]:
    """Find a known layout in ``root`` or one folder below it; returns (layout, folder)."""
    here = _layout_in(root)
    if here:
        return here, root
    found = [(layout, d) for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("__"))
             if (layout := _layout_in(d))]
    if len(found) > 1:  # two releases (ml-100k/ and ml-1m/): which one is meant is the user's to say
        shown = ", ".join(f"{d.name}/ ({LAYOUT_NAMES[layout]})" for layout, d in found)
        raise DataError(f"{root}: holds {len(found)} releases ({shorten(shown, 160)}), not one; give the folder of "
                        f"the one to read (such as {found[0][1].name}/ in it; unzip an archive first), or an archive "
                        "holding that one alone")
    if found:
        return found[0]
    from embedrec.fsutil.locks import is_target_lock

    # not the lock this ingest holds beside its output (a first-hour review: listed as if the user's file)
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not is_target_lock(p.name))
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "") if found else "nothing"
    if any(n in (TITLES, *NOT_RATINGS, "training_set/") for n in found):  # the Netflix Prize's, less its ratings
        raise DataError(f"{root}: holds {shorten(shown, 120)}, the Netflix Prize's files without their ratings "
                        "(combined_data_1.txt .. combined_data_4.txt, or training_set/ of mv_*.txt files); put them "
                        "beside movie_titles.csv, or give them by their own path")
    raise DataError(f"{root}: unrecognised layout (it holds {shorten(shown, 120)}); expected MovieLens files (u.data, "
                    "ratings.dat or ratings.csv) or RecBole atomic files (*.inter) here or one folder below; give a "
                    "ratings table by its own path")


def _layout_in(d: Path) -> str | None:
    """The layout whose files lie directly in ``d``, or None."""
    if (d / "u.data").exists():
        return "ml-100k"
    if (d / "ratings.dat").exists():
        return "ml-dat"
    if (d / "ratings.csv").exists():
        return "ml-csv"
    if any(d.glob("*.inter")):
        return "recbole"
    if holds_netflix(d):
        return "netflix"
    return None


READERS = {"ml-100k": read_ml100k, "ml-dat": read_ml_dat, "ml-csv": read_ml_csv, "recbole": read_recbole,
           "netflix": read_netflix}
# the files each MovieLens layout's reader reads in its folder: its ratings file, then those it reads where they are
# there (the movies, the users), as RawData.files lists them
RELEASE_FILES = {"ml-100k": ("u.data", "u.item", "u.user"), "ml-dat": ("ratings.dat", "movies.dat", "users.dat"),
                 "ml-csv": ("ratings.csv", "movies.csv")}


def release_files(layout: str, folder: Path) -> list[Path]:
    """The files ``READERS[layout]`` reads in ``folder`` (as ``RawData.files`` lists them), found as it finds them
    but none read."""
    if layout == "recbole":
        return recbole_files(folder)
    if layout == "netflix":
        return netflix_files(folder)
    first, *others = RELEASE_FILES[layout]
    return [folder / first, *(folder / n for n in others if (folder / n).exists())]


def source_files(cfg: DataConfig) -> list[Path] | None:
    """:func:`_source_files` of data.source, and of the held-out files split.method=given reads (data.test_source,
    data.valid_source: each read as data.source is)."""
    files = _source_files(cfg)
    extra = [cfg.test_source, cfg.valid_source]
    if not files or not any(extra):  # (a stream read once stays one: [] is never the same data again; a diff
        return files                 # review: stdin's new rows reused the dataset of the held-out file's checksum)
    for path in extra:
        if path is not None:
            files += _source_files(part_config(cfg, path)) or []
    return files


def _source_files(cfg: DataConfig) -> list[Path] | None:
    """The files ingest would read ``cfg.source`` from now (and data.movies, where a table's reader reads it), found
    as :func:`read_source` finds them but none read: what a dataset's manifest records, by name, as its ``inputs``
    (``RawData.files``), so that cross-validate can tell a file added to a release's folder or gone from it since
    its folds were ingested (a red team: a movies.csv put beside ratings.csv was never looked at). None for a
    release by its name (its cached copy, checked as it is read); [] for standard input or a pipe (read once, so
    not recorded). A folder whose layout is not found raises detect_layout's DataError."""
    src = cfg.source
    if src in NAMED and not os.path.lexists(src):
        return None
    if src == "-":
        return []
    path = Path(src).expanduser()
    if path.is_dir() and cfg.format in ("auto", "movielens", "recbole"):
        layout, folder = detect_layout(path)
        table = _own_table(layout, folder, cfg)
        if table is not None:  # read as a table: its ratings.csv and the movies file it reads
            return [Path(table.source)] + ([Path(table.movies)] if table.movies and not is_stream(table.movies)
                                           else [])
        return release_files(layout, folder)
    if cfg.format == "auto" and path.is_file() and is_netflix_file(path):  # one of the Prize's files, alone
        return [path]
    files = [] if is_stream(path) else [path]
    zipped = path.suffix.lower() == ".zip" and not path.is_dir()  # (a zip: itself alone, whatever it holds)
    if cfg.movies and not zipped and not is_stream(cfg.movies):
        files.append(Path(cfg.movies))
    return files


# ------------------------------------------------------------------------------------------ reading a source


def _nearest(text: str, names: list[str]) -> list[str]:
    """The closest of ``names`` to a mistyped ``text``, and a second one as close (a first-hour review: 'ml-100m'
    was only 'ml-10m'?, where 'ml-100k' is one letter away too)."""
    import difflib

    scored = sorted(((difflib.SequenceMatcher(None, text, n).ratio(), n) for n in names), reverse=True)
    return [n for r, n in scored[:2] if r >= 0.75 and r >= scored[0][0] - 0.07]


def read_source(cfg: DataConfig, progress: bool = False) -> RawData:
    """Resolve ``cfg.source`` (a DataConfig) to raw data: a release name, a zip, a folder, a table or '-'.
    ``progress``: bars on stderr over a release's download, a zip's extraction, and a table's or a release's
    ratings as they are parsed (the bytes of a text table, a zip's member, or '-'; a Parquet table's rows)."""
    try:
        return _read_source(cfg, progress)
    except UnicodeError as e:  # not a byte that fails to decode (each reader names its line): the codec itself
        if isinstance(e, UnicodeDecodeError):  # e.g. UTF-16 without a byte-order mark
            raise
        raise DataError(f"data.source '{cfg.source}': cannot read it as {cfg.encoding} ({e}); set data.encoding to "
                        "the file's encoding (utf-16-le or utf-16-be for UTF-16 without a byte-order mark)") from None


def _read_source(cfg: DataConfig, progress: bool) -> RawData:
    src = cfg.source
    # a file or folder of a release's name here (./ml-1m, the unzipped release) is read, not passed over for a
    # download of the release (a review)
    if src in NAMED and os.path.lexists(src):
        log.info("'%s' is a file or folder here: reading it, not the %s release (give ./%s to say so, or run from "
                 "another folder for the release)", src, src, src)
    if src in NAMED and not os.path.lexists(src):
        root = fetch_named(src, cache_dir(cfg.cache_dir), progress, cache_origin(cfg.cache_dir))
        return _read_folder(root, cfg, own=None, progress=progress)
    if src == "-":
        if sys.stdin is None:  # <&-
            raise DataError("data.source '-': standard input is closed; pipe the ratings in or give a file "
                            "instead of -")
        return read_generic("-", cfg, progress=progress)
    path = Path(src).expanduser()  # it exists: ingest checked it first (check_source)
    if path.is_dir():
        return _read_folder(path, cfg, progress=progress) if cfg.format in ("auto", "movielens", "recbole") else \
            read_generic(str(path), cfg, progress=progress)
    if path.suffix.lower() == ".zip":
        sweep_zip_temps()
        with tempfile.TemporaryDirectory(prefix=f"embedrec-zip-{os.getpid()}-") as tmp, _zip_named_logs(tmp, path), \
                _zip_named_os_errors(tmp, path):
            extract_zip(path, Path(tmp), progress)

            def shown(p) -> str:  # a member as m.zip!member, not by the temporary folder
                return str(p).replace(f"{tmp}/", f"{path}!")
            # macOS's zip adds __MACOSX/._NAME copies of each file's metadata: not data (a review)
            files = [p for p in Path(tmp).rglob("*") if p.is_file() and "__MACOSX" not in p.parts
                     and not p.name.startswith("._")]
            if len(files) == 1 and cfg.format == "auto" and is_netflix_file(files[0]):  # one of the Prize's files
                try:
                    raw = _read_netflix_file(files[0], cfg, progress, shown)
                except DataError as e:  # named as zip!member, not by the temporary folder
                    raise type(e)(e.raw.replace(f"{tmp}/", f"{path}!").replace(tmp, str(path))) from None
                return _zip_named(raw, path, Path(tmp))
            if len(files) == 1 and files[0].suffix.lower() in TABLES and cfg.format not in ("movielens", "recbole"):
                try:  # a release's layout (a lone ratings.csv of userId,movieId,...) unless the format says a table
                    if cfg.format in ("csv", "tsv", "parquet"):
                        raise DataError("a table")
                    detect_layout(Path(tmp))
                    return _zip_named(_read_folder(Path(tmp), cfg, own="zip", progress=progress, shown=shown), path,
                                      Path(tmp))
                except DataError:  # a zip of one ratings table of the user's own columns, read as that table
                    try:
                        raw = read_generic(str(files[0]), cfg, progress=progress, shown=shown)
                    except DataError as e:  # named as zip!member, not by the temporary folder
                        raise type(e)(e.raw.replace(f"{tmp}/", f"{path}!").replace(tmp, str(path))) from None
                    raw.files = [] if is_stream(path) else [path]  # a pipe: read once, so no checksum
                    raw.origin = (f"{path}!{files[0].relative_to(tmp)}", raw.origin[1])
                    raw.notes = _zip_named_notes(raw.notes, tmp, path)
                    return raw
            try:
                raw = _read_folder(Path(tmp), cfg, own="zip", progress=progress, shown=shown)
            except DataError as e:  # name the zip and its member, not the temporary folder (gone when it is read)
                raise type(e)(e.raw.replace(f"{tmp}/", f"{path}!").replace(tmp, str(path))) from None
            return _zip_named(raw, path, Path(tmp))
    if cfg.format == "auto" and not is_stream(path) and is_netflix_file(path):
        return _read_netflix_file(path, cfg, progress, str)
    return read_generic(str(path), cfg, progress=progress)


def _read_netflix_file(path: Path, cfg: DataConfig, progress: bool, shown) -> RawData:
    """One of the Netflix Prize's ratings files given alone (combined_data_N.txt, mv_N.txt, or a file whose first
    lines are the layout's), read as that layout, with a bar over its bytes."""
    from embedrec.bars import INGEST_DELAY_S, step

    with reading(), step(f"reading {shown(path)}" if progress else None, path.stat().st_size, "B", scale=True,
                         delay=INGEST_DELAY_S) as tick:
        raw = read_netflix_file(path, tick=tick)
    _warn_unapplied("netflix", cfg)
    return raw


@contextlib.contextmanager
def _zip_named_logs(tmp: str, zpath: Path):
    """While a zip's extracted folder is read, log lines name the zip and its member (``m.zip!u.data``), not the
    temporary folder (gone when they are read; a first-hour review: 'no u.item beside u.data' named it)."""
    class Renamed(logging.Filter):
        def filter(self, record):
            text = record.getMessage()
            if tmp in text:
                record.msg, record.args = text.replace(f"{tmp}/", f"{zpath}!").replace(tmp, str(zpath)), None
            return True

    renamed, logger = Renamed(), logging.getLogger("embedrec")
    logger.addFilter(renamed)
    try:
        yield
    finally:
        logger.removeFilter(renamed)


@contextlib.contextmanager
def _zip_named_os_errors(tmp: str, zpath: Path):
    """An extracted member that cannot be read (a directory entry named ratings.csv) named as ``m.zip!member``,
    not by the temporary folder (a red team)."""
    try:
        yield
    except OSError as e:
        name = str(e.filename or "")
        if not name.startswith(f"{tmp}/"):
            raise
        member = name[len(tmp) + 1:]
        what = "a folder in the zip, not a file" if isinstance(e, IsADirectoryError) else (e.strerror or str(e))
        raise DataError(f"{zpath}!{member}: {what}; fix the zip (each table a file member)") from None


def _zip_named_notes(notes: list[str], tmp: str, zpath: Path) -> list[str]:
    """The notes of a zip's one table (RawData.notes, said once ingest has checked the rows, after the extracted
    folder is gone) naming the zip and its member, as its log lines do (_zip_named_logs), each of its kind (a
    WarnedNote stays one); they named the temporary folder. (A release's readers leave none: they log theirs.)"""
    return [type(n)(n.replace(f"{tmp}/", f"{zpath}!").replace(tmp, str(zpath))) for n in notes]


def _zip_named(raw: RawData, zpath: Path, tmp: Path) -> RawData:
    """Data read from a zip's extracted folder, named by the zip (its files, where its rows came from)."""
    raw.files = [] if is_stream(zpath) else [zpath]  # a pipe: read once, so no checksum
    raw.origin = (f"{zpath}!{Path(raw.origin[0]).relative_to(tmp)}", raw.origin[1])
    raw.parts = [(f"{zpath}!{Path(label).relative_to(tmp)}", start) for label, start in raw.parts]
    raw.notes = _zip_named_notes(raw.notes, str(tmp), zpath)  # (an own folder's ratings.csv read as a table's)
    return raw


TABLES = (".csv", ".tsv", ".tab", ".txt", ".parquet")  # a lone member of a zip read as a table


def check_source(cfg: DataConfig) -> None:
    """Refuse a ``data.source`` that is neither '-', a release name nor an existing path, and a ``data.movies``
    that does not exist: checked before the output folder, as a missing input is the first thing to say."""
    from embedrec.data.frames import cached_frame, gone

    src = cfg.source
    path = Path(src).expanduser()
    if src != "-" and (src not in NAMED or os.path.lexists(src)) and not path.exists():
        loop = loop_error(src, "data.source", "give the file's own path", DataError)  # (a red team: 'a broken link')
        if loop is not None:
            raise loop
        if path.is_symlink():
            raise DataError(f"data.source '{src}' is a broken symbolic link (to '{os.readlink(path)}'); "
                            "point it at an existing file, or give that file's path", path=str(src))
        if cached_frame(src):  # a DataFrame's file the cache removed since: said of that frame (a review)
            raise DataError(gone(src))
        if "/" in src or "\\" in src or path.suffix:  # written as a path: say which part is missing
            parent = next((p for p in path.parents if p.exists()), None)
            where = f" ('{parent}' exists, '{path.relative_to(parent)}' in it does not)" if parent not in (None, Path(".")) else ""
            raise DataError(f"data.source '{src}': file not found{where}; check the path", path=str(src))

        close = [n for n in NAMED if n.replace("-", "") in src.lower().replace("-", "")] or \
            _nearest(src.lower(), list(NAMED))  # a typo: ml-100, ml-lates; ml-100m: ml-10m or ml-100k
        hint = f"; did you mean the release {' or '.join(repr(c) for c in close)}?" if close else \
            f"; give a path, or one of the releases: {', '.join(NAMED)}"
        raise DataError(f"data.source '{src}' is neither an existing file nor a known release{hint}")
    if cfg.movies and not Path(cfg.movies).exists():
        loop = loop_error(cfg.movies, "data.movies", "give the file's own path", DataError)
        if loop is not None:
            raise loop
        if cached_frame(str(cfg.movies)):
            raise DataError(gone(str(cfg.movies), "data.movies"))
        raise DataError(f"{cfg.movies}: movies file not found; check data.movies", path=str(cfg.movies))
    if cfg.movies and Path(cfg.movies).is_dir():
        raise DataError(f"data.movies '{cfg.movies}' is a folder; give the movies file in it (e.g. "
                        f"'{Path(cfg.movies) / 'movies.csv'}')")


def _read_folder(root: Path, cfg: DataConfig, own: str | None = "folder", progress: bool = False,
                 shown=str) -> RawData:
    """The layout found in ``root`` read with its reader. ``own``: the user's folder ('folder', or 'zip' for one
    unzipped to read), not a release fetched by its name (None): laid out as a MovieLens CSV release, it is read as
    a ratings table where a table's settings are given (:func:`_own_table`). ``progress``: a bar over the bytes of
    its ratings file(s) as they are parsed, named by ``shown(path)`` (a zip's member: ``m.zip!ratings.dat``)."""
    with reading():  # a file (or the folder) that cannot be read for its permissions: a DataError saying so
        layout, folder = detect_layout(root)
    table = _own_table(layout, folder, cfg) if own is not None else None
    as_table = _own_table(layout, folder, cfg, headed=False) if own is not None and table is None else None
    if as_table is not None:  # headed and written as a release's: read as one first (a review: a hand-downloaded
        # ml-latest-small given a reused config's data.missing was read as a table, its scale 1-5 where 0.5 was absent)
        try:
            with reading(), _release_bar(layout, folder, progress, shown) as tick:
                raw = read_ml_csv(folder, cfg.encoding, own, tick=tick)
        except DataError as e:  # its contents are not a release's (text ids, dates further down): one's own table
            log.debug("%s: not read as a MovieLens CSV release: %s", folder, e)
            table = as_table
        else:
            _warn_unapplied(layout, cfg)
            return raw
    if table is not None:
        log.info("%s: read as a ratings table (ratings.csv%s), not as a MovieLens CSV release, for the settings "
                 "given (%s)", folder, ", with movies.csv" if table.movies == str(folder / "movies.csv") else "",
                 ", ".join(unapplied_settings(layout, cfg)))
        return read_generic(table.source, table, progress=progress, shown=shown)
    with reading(), _release_bar(layout, folder, progress, shown) as tick:
        if layout == "recbole":  # its :token ids are text or integers as data.id_type says (MovieLens: integers)
            raw = READERS[layout](folder, cfg.id_type, cfg.encoding, tick=tick)
        elif layout == "ml-csv":  # UTF-8 as released; data.encoding for a copy saved otherwise (its error says so)
            raw = READERS[layout](folder, cfg.encoding, own, tick=tick)
        else:
            raw = READERS[layout](folder, tick=tick)
    _warn_unapplied(layout, cfg)  # after the files are read: an error stays the one line
    return raw


@contextlib.contextmanager
def _release_bar(layout: str, folder: Path, progress: bool, shown):
    """A bar over the bytes of a release's ratings file (a RecBole folder's .inter files, together) as its reader
    parses them; its update, or None where ``progress`` is off (a first-hour review: ml-1m.zip's ratings.dat and a
    release's ratings.csv were parsed without one)."""
    from embedrec.bars import INGEST_DELAY_S, Restartable, step

    files = sorted(folder.glob("*.inter")) if layout == "recbole" else ratings_files(folder) \
        if layout == "netflix" else [folder / RELEASE_FILES[layout][0]]
    try:
        size = sum(p.stat().st_size for p in files)
    except OSError:  # (the reader's own error says what is wrong with it)
        size = None
    name = shown(files[0]) if len(files) == 1 else shown(folder)
    if layout == "netflix" and len(files) > 1:  # (a dot: 17,770 training_set/ files, four combined_data files)
        name = f"{shown(folder)} ({len(files):,} ratings files)"
    with step(f"reading {name}" if progress and files else None, size, "B", scale=True, delay=INGEST_DELAY_S) as tick:
        yield None if tick is None else tick if layout == "recbole" else Restartable(tick)


def _own_table(layout: str, folder: Path, cfg: DataConfig, headed: bool = True) -> DataConfig | None:
    """For a user's folder laid out as a MovieLens CSV release (ratings.csv, and movies.csv beside it) given with
    a ratings table's settings (data.id_type, data.columns.*, data.missing, data.movies, ...; unapplied_settings),
    the config that reads its ratings.csv as a ratings table with those settings and its movies.csv (or
    data.movies) as the movies file; None where it is read as released (a first-hour review: a folder of one's own
    text ids was refused as a release's, and the data.id_type=auto given for it ignored). ``data.format=movielens``
    keeps a folder a release. ``headed``: None too where ratings.csv begins as a release's does
    (:func:`_release_head`), which _read_folder reads as a release first, as a table only where that fails."""
    if layout != "ml-csv" or cfg.format != "auto" or not unapplied_settings(layout, cfg):
        return None
    if headed and _release_head(folder / "ratings.csv", cfg.encoding):
        return None
    beside = folder / "movies.csv"
    movies = cfg.movies if cfg.movies is not None else str(beside) if beside.exists() else None
    return dataclasses.replace(cfg, source=str(folder / "ratings.csv"), movies=movies)


RELEASE_HEAD = re.compile(r"\ufeff?userId,movieId,rating,timestamp\r?\n\d+,\d+,[^,\n]*,\d+\r?(\n|$)")


def _release_head(path: Path, encoding: str | None) -> bool:
    """ratings.csv's header is exactly a MovieLens CSV release's and its first row's ids and time are integers (or
    it holds no row): a release downloaded by hand, read as released whatever table settings a reused config
    carries; not a table of one's own laid out like it (text ids, ISO dates, other columns)."""
    try:
        with open(path, encoding=encoding or "utf-8", errors="replace", newline="") as f:
            head = f.readline(4096) + f.readline(4096)
    except OSError:
        return True  # (the release's reader says why it cannot be read)
    return bool(RELEASE_HEAD.match(head)) or head.rstrip("\r\n").lstrip("\ufeff") == "userId,movieId,rating,timestamp"


LAYOUT_NAMES = {"ml-100k": "MovieLens 100K", "ml-dat": "MovieLens 1M/10M", "ml-csv": "MovieLens CSV",
                "recbole": "RecBole", "netflix": "Netflix Prize"}


def unapplied_settings(layout: str, cfg: DataConfig) -> list[str]:
    """The data.* settings, set away from their defaults, that a release's layout does not read (its files are
    read as released): 'data.movies', 'data.columns.user', 'data.format=csv', ... in config order."""
    from embedrec.config import DataConfig

    base = DataConfig()
    out = ["data.movies"] if cfg.movies is not None else []
    out += [f"data.columns.{f.name}" for f in dataclasses.fields(cfg.columns)
            if getattr(cfg.columns, f.name) != getattr(base.columns, f.name)]
    if cfg.format not in ("auto", "recbole" if layout == "recbole" else "movielens"):
        out.append(f"data.format={cfg.format}")
    out += [f"data.{key}" for key in ("separator", "movies_separator", "header", "encoding", "decimal",
                                      "genre_separator", "id_type",
                                      "timestamp_unit", "event_weights", "missing", "bad_lines")
            if getattr(cfg, key) != getattr(base, key) and not (key == "id_type" and layout == "recbole")
            and not (key == "encoding" and layout in ("recbole", "ml-csv"))]
    return out


def _warn_unapplied(layout: str, cfg: DataConfig) -> None:
    """Settings of a ratings table given for a release are ignored there: said once, naming them (a red team:
    data.movies, data.columns.*, data.format=csv, data.header, data.separator, data.id_type on an ml-1m zip,
    without a word). A warning only: a config written for a plain file may be reused for a release."""
    keys = unapplied_settings(layout, cfg)
    if keys:
        one = len(keys) == 1
        log.warning("%s: a %s release is read as released, so %s %s no effect (only a ratings table given by its "
                    "path reads %s); leave %s out for it", cfg.source, LAYOUT_NAMES[layout], ", ".join(keys),
                    "has" if one else "have", "it" if one else "them", "it" if one else "them")
