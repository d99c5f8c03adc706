"""Side features as categorical columns, and hashed feature crosses (numpy only).

Columns: ``movie.genre`` (multi-valued, mean-pooled), ``movie.decade`` (release year bucketed by
``features.year_edges``, decades by default), ``user.age`` (bucketed by ``features.age_edges``),
``user.gender``, ``user.occupation``, ``user.zip`` (first digit: the US postal region). Every column has an
"unknown" value (index 0), so a movie or user without the attribute still gets a row.

A cross ``[a, b]`` gets one learned weight per combination of values, hashed into ``features.cross_buckets``
buckets by :func:`cross_hash`, a fixed integer formula (no Python ``hash``), so it is the same in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from embedrec.config_checks import check_feature_names
from embedrec.errors import ConfigError, DataError

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import FeaturesConfig

_P = 2147483647  # 2^31 - 1
DEFAULT_YEAR_EDGES = tuple(range(1900, 2040, 10))  # features.year_edges unset: decades


def cross_hash(a: np.ndarray, b: np.ndarray, cross_id: int, buckets: int):
    """Deterministic bucket of the value pair (a, b) of cross ``cross_id``; works on numpy or torch ints."""
    h1 = (a * 1000003 + b) % _P
    return ((h1 * 2654435761) % _P + cross_id * 97) % buckets


@dataclass
class Column:
    key: str                 # "movie.genre"
    vocab: list[str]         # index 0 is "unknown"
    idx: np.ndarray          # rows x L value indices; L > 1 only for multi-valued columns, padding = -1
    dim: int

    @property
    def side(self) -> str:
        return self.key.split(".")[0]

    @property
    def size(self) -> int:
        return len(self.vocab)


@dataclass
class FeatureSet:
    movie: list[Column] = field(default_factory=list)
    user: list[Column] = field(default_factory=list)
    crosses: list[tuple[str, str]] = field(default_factory=list)
    buckets: int = 1
    embedded: set[str] = field(default_factory=set)  # columns with embeddings (others only feed crosses)

    @property
    def empty(self) -> bool:
        return not (self.movie or self.user or self.crosses)

    def describe(self) -> dict:
        """Plain-JSON description (vocabularies included) saved with a run, so recommend can encode new items."""
        return {"movie": [{"key": c.key, "vocab": c.vocab, "dim": c.dim} for c in self.movie],
                "user": [{"key": c.key, "vocab": c.vocab, "dim": c.dim} for c in self.user],
                "crosses": [list(x) for x in self.crosses], "buckets": self.buckets,
                "embedded": sorted(self.embedded)}


def _dim_for(key: str, vocab_size: int, cfg: FeaturesConfig) -> int:
    for spec in cfg.dims:
        name, _, value = spec.partition("=")
        if name.strip() == key:
            try:
                return max(1, int(value))
            except ValueError:
                raise ConfigError(f"config key 'features.dims': '{spec}' should be column=int, e.g. movie.genre=8") \
                    from None
    return max(2, int(round(vocab_size ** 0.25)))


def _categorical(key: str, values: list, cfg: FeaturesConfig, multi: bool = False) -> Column:
    """Index values (lists when multi) against a sorted vocabulary with 'unknown' first."""
    seen = sorted({str(v) for vs in values for v in (vs if multi else [vs]) if v is not None and str(v) != ""})
    vocab = ["unknown"] + seen
    pos = {v: i for i, v in enumerate(vocab)}
    if multi:
        width = max(1, max((len(v) for v in values), default=1))
        idx = np.full((len(values), width), -1, dtype=np.int64)
        for r, vs in enumerate(values):
            vs = [pos[str(v)] for v in vs if str(v) in pos] or [0]
            idx[r, :len(vs)] = vs
    else:
        idx = np.array([[pos.get(str(v), 0) if v is not None else 0] for v in values], dtype=np.int64)
    return Column(key, vocab, idx, _dim_for(key, len(vocab), cfg))


def bucketize(values: np.ndarray, edges: list[float]) -> tuple[list[str], np.ndarray]:
    """Numeric values to bucket labels by edges: '<e0', 'e0-e1', ..., '>=en'; missing values are unknown."""
    labels = [f"<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:])] + [f">={edges[-1]:g}"]
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        else:
            out.append(labels[int(np.searchsorted(edges, float(v), side="right"))])
    return labels, out


def build(cfg: FeaturesConfig, movies, users) -> FeatureSet:
    """Encode the configured columns of a dataset's movies and users tables (pandas DataFrames)."""
    check_feature_names(cfg)
    fs = FeatureSet(crosses=[tuple(c) for c in cfg.crosses], buckets=cfg.cross_buckets)
    movie_keys = list(dict.fromkeys(list(cfg.movie) + [k.split(".")[1] for c in cfg.crosses for k in c
                                                        if k.startswith("movie.")]))
    user_keys = list(dict.fromkeys(list(cfg.user) + [k.split(".")[1] for c in cfg.crosses for k in c
                                                      if k.startswith("user.")]))
    for name in movie_keys:
        col = "genres" if name == "genre" else "year"
        present = col in movies and (movies[col].map(len).gt(0).any() if name == "genre"
                                     else movies[col].notna().any())
        if not present:
            raise DataError(f"config key 'features.movie' names movie.{name}, but no movie in this dataset has a "
                            f"{'genre' if name == 'genre' else 'year'} (its ratings came without a movies file, or "
                            "one without that column: data.movies); remove it from features, or ingest with "
                            "data.movies")
        if name == "genre":
            fs.movie.append(_categorical("movie.genre", [list(g) for g in movies["genres"]], cfg, multi=True))
        else:
            years = movies["year"].astype("float64").to_numpy() if "year" in movies else np.full(len(movies), np.nan)
            edges = cfg.year_edges or list(DEFAULT_YEAR_EDGES)
            _, labels = bucketize(years, edges)
            fs.movie.append(_categorical("movie.decade", labels, cfg))
    for name in user_keys:
        if name not in users.columns:
            raise DataError(f"config key 'features.user' names user.{name}, but this dataset has no user "
                            f"{name} (only ML-100K and ML-1M ship demographics); remove it from features")
        if name == "age":
            _, labels = bucketize(users["age"].astype("float64").to_numpy(), cfg.age_edges)
            fs.user.append(_categorical("user.age", labels, cfg))
        elif name == "zip":
            fs.user.append(_categorical("user.zip", [str(z)[:1] if z is not None else None for z in users["zip"]], cfg))
        else:
            fs.user.append(_categorical(f"user.{name}", list(users[name]), cfg))
    # only the columns named in features.movie/user get embeddings; cross-only columns just feed crosses
    fs.embedded = {f"movie.{n}" for n in cfg.movie} | {f"user.{n}" for n in cfg.user}
    return fs


def encode_values(description: dict, key: str, value: str | int | float | None, edges: dict) -> int:
    """Index of one raw value of column ``key`` in a saved vocabulary (0 = unknown)."""
    col = next(c for c in description["movie"] + description["user"] if c["key"] == key)
    if value is None:
        return 0
    if key in ("user.age", "movie.decade"):
        e = edges[key]
        labels, out = bucketize(np.array([float(value)]), e)
        value = out[0]
    elif key == "user.zip":
        value = str(value)[:1]
    try:
        return col["vocab"].index(str(value))
    except ValueError:
        return 0
