"""Parsers for every MovieLens layout, RecBole atomic files and generic ratings tables.

Each reader returns a :class:`RawData` with external ids as given by the source:
``ratings`` (user_id, movie_id, rating float32, timestamp int64), optional ``movies`` (movie_id, title, year,
genres as a list of normalised names) and optional ``users`` (user_id plus demographics). Problems raise
:class:`DataError` naming the file and line.

The parsers live in ``data/parsing.py`` (the shared core: RawData, numeric tables; the file layer under it,
diagnostics included, in ``data/textfiles.py``),
``data/movielens.py``, ``data/recbole.py`` and ``data/tables.py`` (generic CSV/TSV/Parquet/stdin); this module
finds the layout of a folder, names the reader for it, and re-exports what ingest and the tests use.
"""

from __future__ import annotations

from pathlib import Path

from embedrec.data.movielens import read_ml100k, read_ml_csv, read_ml_dat
from embedrec.data.parsing import (
    RawData,
    check_scale,
    movies_frame,
    normalise_genre,
    normalise_genres,
    read_numeric_table,
    split_title_year,
)
from embedrec.data.recbole import read_recbole
from embedrec.data.tables import read_generic
from embedrec.errors import DataError, shorten

__all__ = ["READERS", "RawData", "check_scale", "detect_layout", "movies_frame", "normalise_genre",
           "normalise_genres", "read_generic", "read_ml100k", "read_ml_csv", "read_ml_dat", "read_numeric_table",
           "read_recbole", "split_title_year"]


# ------------------------------------------------------------------------------------------ layout detection


def detect_layout(root: Path) -> tuple[str, Path]:
    """Find a known layout in ``root`` or one folder below it; returns (layout, folder)."""
    here = _layout_in(root)
    if here:
        return here, root
    found = [(layout, d) for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("__"))
             if (layout := _layout_in(d))]
    if len(found) > 1:  # two releases (ml-100k/ and ml-1m/): which one is meant is the user's to say
        kind = {"ml-100k": "MovieLens 100K", "ml-dat": "MovieLens 1M/10M", "ml-csv": "MovieLens CSV",
                "recbole": "RecBole"}
        shown = ", ".join(f"{d.name}/ ({kind[layout]})" for layout, d in found)
        raise DataError(f"{root}: holds {len(found)} releases ({shorten(shown, 160)}), not one; give the folder of "
                        f"the one to read (such as {found[0][1].name}/ in it; unzip an archive first), or an archive "
                        "holding that one alone")
    if found:
        return found[0]
    from embedrec.fsutil.locks import is_target_lock

    # not the lock this ingest holds beside its output (a first-hour review: listed as if the user's file)
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not is_target_lock(p.name))
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "") if found else "nothing"
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
    return None


READERS = {"ml-100k": read_ml100k, "ml-dat": read_ml_dat, "ml-csv": read_ml_csv, "recbole": read_recbole}
