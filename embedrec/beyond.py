"""Beyond-accuracy metrics of top-K lists (numpy only): what the lists expose of the catalogue, measured against
the training data (``embedrec.metrics`` holds the definitions, as pure functions).

:class:`Catalogue` is what they are measured against, built once per evaluation: each movie's training count, the
long tail, the genre vectors where the dataset has genres. :class:`Exposure` adds up a run of lists in batches
(the model's, a baseline's, another recommender's) and gives their means: ``evaluate`` reports them beside the
accuracy metrics, for every row it prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedrec import metrics as M

PER_USER = ("arp", "novelty", "longtail", "ild")  # a mean over the users whose list has a value
OVERALL = ("gini", "entropy")  # of all the lists together
NAMES = (*PER_USER, *OVERALL)


@dataclass(frozen=True)
class Catalogue:
    """What lists are measured against: ``pop`` (each movie's interactions in the training splits ``counted_on``),
    ``n_users`` (the users with one), ``tail`` (:func:`metrics.long_tail`'s flags), ``genres`` (unit genre
    vectors, one row per movie; None where no movie has a genre: no ILD then) and ``n_genres``."""

    pop: np.ndarray
    n_users: int
    tail: np.ndarray
    genres: np.ndarray | None
    n_genres: int
    counted_on: tuple[str, ...]

    @property
    def n_movies(self) -> int:
        return int(self.pop.size)

    def names(self) -> tuple[str, ...]:
        """The metrics measured here, in the order they are reported."""
        return tuple(n for n in NAMES if n != "ild" or self.genres is not None)

    def describe(self) -> dict:
        """What the figures rest on (evaluate's JSON ``beyond_accuracy``)."""
        head = int(np.count_nonzero(~self.tail))
        return {"popularity_counted_on": "+".join(self.counted_on), "training_users": int(self.n_users),
                "head_movies": head, "tail_movies": int(self.tail.size - head), "head_share": M.HEAD_SHARE,
                "genres": int(self.n_genres)}


def catalogue(ds, fit_on: tuple[str, ...]) -> Catalogue:
    """The Catalogue of dataset ``ds``: popularity counted on its splits ``fit_on`` (those the model was fitted on,
    which the most-popular baseline ranks by), genres from its movies table."""
    movies = [np.asarray(ds.splits[s].movie) for s in fit_on]
    users = [np.asarray(ds.splits[s].user) for s in fit_on]
    pop = np.bincount(np.concatenate(movies) if movies else np.zeros(0, np.int64), minlength=ds.n_movies)
    n_users = np.count_nonzero(np.bincount(np.concatenate(users), minlength=ds.n_users)) if users else 0  # (no sort)
    genres, n_genres = genre_units(ds.movies["genres"] if "genres" in ds.movies.columns else None, ds.n_movies)
    return Catalogue(pop.astype(np.int64), int(n_users), M.long_tail(pop), genres, n_genres, tuple(fit_on))


def genre_units(genres, n_movies: int) -> tuple[np.ndarray | None, int]:
    """Unit 0/1 genre vectors (a row per movie, a column per genre) from a pandas Series of genre lists, one per
    movie row; (None, 0) where no movie has a genre."""
    if genres is None:
        return None, 0
    flat = genres.reset_index(drop=True).explode()  # a row per (movie, genre); an empty list gives one missing
    flat = flat[flat.notna()]
    if flat.empty:
        return None, 0
    codes, names = flat.astype(str).factorize()
    flags = np.zeros((n_movies, len(names)), dtype=np.float64)
    flags[flat.index.to_numpy(), codes] = 1.0
    return M.unit_rows(flags), len(names)


class Exposure:
    """The beyond-accuracy metrics of lists added in batches (:meth:`add`) at each K, then :meth:`result`."""

    def __init__(self, cat: Catalogue, ks):
        self.cat, self.ks = cat, list(ks)
        self.per_user = [n for n in cat.names() if n in PER_USER]
        self.sums = {f"{n}@{k}": 0.0 for n in self.per_user for k in self.ks}
        self.counts = dict.fromkeys(self.sums, 0)
        self.exposure = {k: np.zeros(cat.n_movies, np.int64) for k in self.ks}
        self._self_info = M.self_information(cat.pop, cat.n_users)

    def values(self, top: np.ndarray) -> dict:
        """Each user's ARP, novelty, long-tail share (and ILD) at each K of lists ``top`` (users x K movie rows, -1:
        none), NaN for an empty list; added to the means, and their exposure counted."""
        out = {}
        for k in self.ks:
            got = {"arp": M.arp_at_k(top, self.cat.pop, k),
                   "novelty": M.mean_listed(self._self_info, top, k),
                   "longtail": M.longtail_at_k(top, self.cat.tail, k)}
            if "ild" in self.per_user:
                got["ild"] = M.ild_at_k(top, self.cat.genres, k)
            for name, v in got.items():
                key = f"{name}@{k}"
                defined = ~np.isnan(v)
                self.sums[key] += float(v[defined].sum())
                self.counts[key] += int(np.count_nonzero(defined))
                out[key] = v
            M.add_exposure(self.exposure[k], top, k)
        return {f"{n}@{k}": out[f"{n}@{k}"] for n in self.per_user for k in self.ks}

    def result(self, labels: dict | None = None) -> dict:
        """The means (NaN where no user had a value) and the exposure's Gini index and entropy at each K, in the
        order :meth:`Catalogue.names` gives; ``labels``: {K as named: K as measured} (a K beyond the catalogue)."""
        labels = labels or {k: k for k in self.ks}
        out = {}
        for name in self.cat.names():
            for k, e in labels.items():
                if name in PER_USER:
                    key = f"{name}@{e}"
                    out[f"{name}@{k}"] = self.sums[key] / self.counts[key] if self.counts[key] else float("nan")
                else:
                    out[f"{name}@{k}"] = (M.gini if name == "gini" else M.entropy)(self.exposure[e])
        return out
