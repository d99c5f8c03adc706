"""The prepared-dataset directory: the contract between ``ingest`` and everything after it.

Layout::

    manifest.json     source, input checksums, counts, split sizes, cleaning report, config, version
    train.parquet     user_idx int32, movie_idx int32, rating float32[, timestamp int64]
    valid.parquet     same columns (may be empty)
    test.parquet      same columns (may be empty)
    users.parquet     user_idx, user_id[, age, gender, occupation, zip]
    movies.parquet    movie_idx, movie_id, title, year, genres (list of strings), n_ratings
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.errors import ArtifactError

SPLITS = ("train", "valid", "test")
FORMAT_VERSION = 1


@dataclass
class Interactions:
    user: np.ndarray
    movie: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.user.size)


@dataclass
class Dataset:
    path: Path
    manifest: dict
    users: pd.DataFrame
    movies: pd.DataFrame
    splits: dict[str, Interactions] = field(default_factory=dict)
    fingerprint: str = ""  # a hash over the dataset files' checksums: what a run pins its dataset by

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_movies(self) -> int:
        return len(self.movies)

    @property
    def rating_scale(self) -> tuple[float, float]:
        lo, hi = self.manifest["rating_scale"]
        return float(lo), float(hi)

    @property
    def implicit_threshold(self) -> float | None:
        return self.manifest.get("min_rating")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.splits.items())
        return f"<Dataset {self.manifest.get('name', self.path.name)} ({self.n_users:,} users x " \
               f"{self.n_movies:,} movies; {sizes})>"


FILES = ("users", "movies", *SPLITS)
FIX = "rerun 'embedrec ingest --overwrite'"


def write_dataset(tmp: Path, frames: dict[str, pd.DataFrame], users: pd.DataFrame, movies: pd.DataFrame,
                  manifest: dict) -> None:
    """Write the five Parquet files (with page checksums) and the manifest listing each file's SHA-256."""
    from embedrec.fsutil import file_entry, fingerprint_of, seal, write_json

    for name in SPLITS:
        frames[name].to_parquet(tmp / f"{name}.parquet", index=False, write_page_checksum=True)
    users.to_parquet(tmp / "users.parquet", index=False, write_page_checksum=True)
    movies.to_parquet(tmp / "movies.parquet", index=False, write_page_checksum=True)
    files = {f"{n}.parquet": file_entry(tmp / f"{n}.parquet") for n in FILES}
    manifest["files"] = files
    manifest["fingerprint"] = fingerprint_of(files)
    write_json(tmp / "manifest.json", seal(manifest))


class _Swapped(Exception):
    """The dataset folder was replaced (ingest --overwrite) while it was being read: read it again."""


def load_dataset(path: str | Path, splits: tuple[str, ...] = SPLITS) -> Dataset:
    """Load a prepared dataset; raises ArtifactError with what to do when it is missing or broken.

    Every file is read through one open handle of the folder, so a concurrent ``ingest --overwrite`` (which
    swaps the whole folder) can never mix two generations; each file is checked against the SHA-256 its
    manifest records, and the indices against the table sizes (out-of-range indices would reach the native
    training kernel).
    """
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise ArtifactError(f"no prepared dataset at '{path}' (manifest.json missing); run 'embedrec ingest' with the "
                            "same -c/--set options first (it writes data.prepared), or point data.prepared at the "
                            "ingest output")
    for _ in range(5):
        try:
            return _load_once(path, splits)
        except _Swapped:
            continue
    raise ArtifactError(f"prepared dataset '{path}' kept being replaced while it was read (another 'embedrec "
                        "ingest --overwrite'?); wait for it to finish and run the command again")


def _read_at(dfd: int, path: Path, name: str, ident) -> bytes:
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=dfd)
    except FileNotFoundError:
        if _identity(path) != ident:
            raise _Swapped from None
        raise ArtifactError(f"prepared dataset file '{path / name}' is missing; {FIX}") from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def _identity(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _load_once(path: Path, splits: tuple[str, ...]) -> Dataset:
    from embedrec.errors import first_line
    from embedrec.fsutil import check_bytes, check_seal, fingerprint_of, sha256_bytes

    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise _Swapped from None
    try:
        st = os.fstat(dfd)
        ident = (st.st_dev, st.st_ino)
        raw = _read_at(dfd, path, "manifest.json", ident)
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtifactError(f"dataset manifest '{path / 'manifest.json'}' is corrupt ({first_line(e)}); "
                                f"{FIX}") from None
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
            version = manifest.get("format_version") if isinstance(manifest, dict) else None
            raise ArtifactError(f"'{path}' was written by an incompatible embedrec (format {version}); {FIX}")
        check_seal(manifest, path / "manifest.json", "dataset manifest", FIX)
        recorded = manifest.get("files") or {}
        names = ["users", "movies", *splits] if recorded else list(FILES)
        frames, hashes = {}, {}
        for name in names:
            fname = f"{name}.parquet"
            data = _read_at(dfd, path, fname, ident)
            try:
                check_bytes(data, recorded.get(fname), path / fname, "prepared dataset file", FIX)
            except ArtifactError:
                if _identity(path) != ident:
                    raise _Swapped from None
                raise
            if not recorded:  # a dataset from before checksums: pin it by its bytes
                hashes[fname] = {"sha256": sha256_bytes(data)}
            if name in ("users", "movies", *splits):
                try:
                    frames[name] = pd.read_parquet(io.BytesIO(data), page_checksum_verification=True)
                except Exception as e:  # pyarrow raises OSError, ArrowInvalid (ValueError), ... on damage
                    raise ArtifactError(f"prepared dataset file '{path / fname}' is damaged ({first_line(e)}); "
                                        f"{FIX}") from None
    finally:
        os.close(dfd)
    users, movies = frames["users"], frames["movies"]
    counts = manifest.get("counts", {})
    if counts.get("users") != len(users) or counts.get("movies") != len(movies):
        raise ArtifactError(f"prepared dataset '{path}' does not match its manifest (users/movies counts differ); "
                            f"{FIX}")
    parts = {}
    for name in splits:
        df = frames[name]
        try:
            parts[name] = Interactions(
                df["user_idx"].to_numpy(np.int32), df["movie_idx"].to_numpy(np.int32),
                df["rating"].to_numpy(np.float32),
                df["timestamp"].to_numpy(np.int64) if "timestamp" in df else None)
        except (KeyError, ValueError, TypeError) as e:
            raise ArtifactError(f"prepared dataset file '{path / (name + '.parquet')}' is damaged (column "
                                f"{first_line(e)}); {FIX}") from None
        _check_ranges(parts[name], len(users), len(movies), path / f"{name}.parquet")
    fp = manifest.get("fingerprint") if recorded else fingerprint_of(hashes)
    return Dataset(path, manifest, users, movies, parts, fingerprint=fp or "")


def _check_ranges(part: Interactions, n_users: int, n_movies: int, where: Path) -> None:
    """Indices outside the tables would be out-of-bounds writes in the native kernel: refuse them here."""
    if len(part) == 0:
        return
    for col, arr, n in (("user_idx", part.user, n_users), ("movie_idx", part.movie, n_movies)):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise ArtifactError(f"prepared dataset file '{where}' is damaged: {col} {bad} outside [0, {n}); {FIX}")
    if not np.isfinite(part.rating).all():
        raise ArtifactError(f"prepared dataset file '{where}' is damaged: a rating is not a finite number; {FIX}")
