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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from embedrec.errors import ArtifactError
from embedrec.fsutil import read_json

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


def write_dataset(tmp: Path, frames: dict[str, pd.DataFrame], users: pd.DataFrame, movies: pd.DataFrame,
                  manifest: dict) -> None:
    from embedrec.fsutil import write_json

    for name in SPLITS:
        frames[name].to_parquet(tmp / f"{name}.parquet", index=False)
    users.to_parquet(tmp / "users.parquet", index=False)
    movies.to_parquet(tmp / "movies.parquet", index=False)
    write_json(tmp / "manifest.json", manifest)


def load_dataset(path: str | Path, splits: tuple[str, ...] = SPLITS) -> Dataset:
    """Load a prepared dataset; raises ArtifactError with what to do when it is missing or broken."""
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise ArtifactError(f"no prepared dataset at '{path}' (manifest.json missing); run 'embedrec ingest' first, "
                            "or point data.prepared at the ingest output")
    manifest = read_json(path / "manifest.json", "dataset manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"'{path}' was written by an incompatible embedrec (format "
                            f"{manifest.get('format_version')}); rerun 'embedrec ingest --overwrite'")
    try:
        users = pd.read_parquet(path / "users.parquet")
        movies = pd.read_parquet(path / "movies.parquet")
        parts = {}
        for name in splits:
            df = pd.read_parquet(path / f"{name}.parquet")
            parts[name] = Interactions(
                df["user_idx"].to_numpy(np.int32), df["movie_idx"].to_numpy(np.int32),
                df["rating"].to_numpy(np.float32),
                df["timestamp"].to_numpy(np.int64) if "timestamp" in df else None)
    except (OSError, KeyError, ValueError) as e:
        raise ArtifactError(f"prepared dataset '{path}' is damaged ({str(e).splitlines()[0]}); "
                            "rerun 'embedrec ingest --overwrite'") from None
    counts = manifest.get("counts", {})
    if counts.get("users") != len(users) or counts.get("movies") != len(movies):
        raise ArtifactError(f"prepared dataset '{path}' does not match its manifest (users/movies counts differ); "
                            "rerun 'embedrec ingest --overwrite'")
    return Dataset(path, manifest, users, movies, parts)
