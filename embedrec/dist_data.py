"""Each rank's share of a prepared dataset under torchrun (``Shard``, ``load_shard``): the manifest checked as ``load_dataset`` checks it (rank 0
also hashes the split files), every world-th row group of a split's Parquet file (no rank reads a whole file), and
each rating sent on to the rank that owns its user."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedrec.data.layout import MANIFEST
from embedrec.data.layout import read_manifest as read_checked_manifest
from embedrec.distributed import Group, all_ranks, bounds, owners, send_to_owners
from embedrec.errors import ArtifactError, first_line
from embedrec.fsutil.files import missing_error, read_error

FIX = "«rerun the 'embedrec ingest' that wrote it, with --overwrite|ingest it again: er.ingest(source, cfg, overwrite=True)»"  # read_manifest names the folder and source


def read_manifest(path: str | Path, g: Group | None = None, splits=()) -> dict:
    """The prepared dataset's manifest, checked as load_dataset checks it; with ``g``, rank 0 also checks the
    files of ``splits``, users and movies against the SHA-256 it lists (no rank reads them whole otherwise: a
    review found a train and test file swapped trained on without a word) and every rank raises its answer."""
    from embedrec.fsutil.integrity import check_file

    path = Path(path)
    if not (path / MANIFEST).exists():
        raise ArtifactError(f"no prepared dataset at '{path}' (manifest.json missing); run «'embedrec ingest' with the "
                            "same -c/--set options|er.ingest(source, cfg) with the same config» first (it writes "
                            "data.prepared)")
    manifest, fix = read_checked_manifest(path, path)  # as load_dataset checks it: JSON, format, seal, fields
    if g is not None:
        problem = None
        if g.leader:
            recorded = manifest.get("files") or {}
            for name in (*splits, "users", "movies"):
                where = path / f"{name}.parquet"
                try:
                    check_file(where, recorded.get(where.name), "prepared dataset file", fix)
                except ArtifactError as e:
                    problem = e.raw
                    break
                except FileNotFoundError:
                    problem = missing_error(where, "prepared dataset file", fix).raw
                    break
        problem = g.share(problem)
        if problem is not None:
            raise all_ranks(ArtifactError(problem))
    return manifest


def read_row_groups(path: str | Path, split: str, rank: int, world: int, n_users: int, n_movies: int):
    """This rank's share of ``split`` of a prepared dataset: row groups rank, rank + world, ... of its Parquet
    file (page checksums verified), as (Interactions, each row's position in the file). Every row group is
    read by exactly one rank, so no rank reads the whole file; ``route_to_users`` then gives each rank the
    rows of its users."""
    import pyarrow.parquet as pq

    from embedrec.data.dataset import Interactions, _check_ranges

    where = Path(path) / f"{split}.parquet"
    try:
        fh = open(where, "rb")  # Python's open: pyarrow's refuses a path that is not UTF-8
    except OSError as e:  # a permission, a folder in its place: as the other readers say it (a review)
        raise (read_error(e, where, "prepared dataset file", FIX, missing=True)
               or ArtifactError(f"prepared dataset file '{where}' cannot be read ({e.strerror}); {FIX}")) from None
    try:
        pf = pq.ParquetFile(fh, page_checksum_verification=True)
        names = pf.schema_arrow.names
        cols = [c for c in ("user_idx", "movie_idx", "rating", "timestamp") if c in names]
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        parts = []
        for i in range(rank, pf.num_row_groups, world):
            t = pf.read_row_group(i, columns=cols)
            parts.append({**{c: t.column(c).to_numpy() for c in cols},
                          "row": np.arange(starts[i], starts[i + 1], dtype=np.int64)})
    except (OSError, ValueError, KeyError) as e:
        raise ArtifactError(f"prepared dataset file '{where}' is damaged ({first_line(e)}); {FIX}") from None
    finally:
        fh.close()
    if "user_idx" not in cols or "movie_idx" not in cols or "rating" not in cols:
        raise ArtifactError(f"prepared dataset file '{where}' is damaged (a column is missing); {FIX}")

    def col(name, dtype):
        return np.concatenate([p[name] for p in parts]).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    part = Interactions(col("user_idx", np.int32), col("movie_idx", np.int32), col("rating", np.float32),
                        col("timestamp", np.int64) if "timestamp" in cols else None)
    _check_ranges(part, n_users, n_movies, where)
    return part, col("row", np.int64)


def route_to_users(g: Group, part, rows: np.ndarray, cuts: np.ndarray, with_rows: bool = False):
    """Send each rating read by ``read_row_groups`` to the owner of its user (one all_to_all); returns this
    rank's users' ratings in file order (so duplicates and ties resolve as in one process), and with
    ``with_rows`` also each one's position in the file."""
    from embedrec.data.dataset import Interactions

    cols = [part.user, part.movie, part.rating, rows] + ([part.timestamp] if part.timestamp is not None else [])
    got = send_to_owners(g, cols, owners(part.user, cuts))
    order = np.argsort(got[3], kind="stable")
    out = Interactions(got[0][order], got[1][order], got[2][order],
                       got[4][order] if part.timestamp is not None else None)
    return (out, got[3][order]) if with_rows else out


@dataclass
class Shard:
    """One rank's part of a prepared dataset: user rows [u_lo, u_hi), movie rows [m_lo, m_hi), its users' splits."""

    n_users: int
    n_movies: int
    u_cuts: np.ndarray
    m_cuts: np.ndarray
    splits: dict  # name -> Interactions of this rank's users (global indices)
    manifest: dict
    folder: Path | None = None  # the dataset generation every rank read (not DATASET/current, which may move)
    # (user rows, movie rows) this rank's users rated below data.min_rating, and each pair's part (None for a
    # dataset ingested before the parts were kept): those of the parts before the split ranked are left out of
    # its ranking here, as one process leaves them out (sparse.seen_csr)
    below: tuple | None = None
    below_split: np.ndarray | None = None

    def u_range(self, rank: int) -> tuple[int, int]:
        return int(self.u_cuts[rank]), int(self.u_cuts[rank + 1])

    def m_range(self, rank: int) -> tuple[int, int]:
        return int(self.m_cuts[rank]), int(self.m_cuts[rank + 1])


def load_shard(g: Group, path, splits=("train", "valid", "test")) -> Shard:
    # one generation for every rank, even if 'ingest --overwrite' swaps the folder meanwhile
    path = Path(g.share(str((Path(path) / MANIFEST).resolve().parent)))
    manifest = read_manifest(path, g, splits)
    counts = manifest.get("counts", {})
    nu, nm = int(counts["users"]), int(counts["movies"])
    u_cuts, m_cuts = bounds(nu, g.world), bounds(nm, g.world)
    parts = {s: route_to_users(g, *read_row_groups(path, s, g.rank, g.world, nu, nm), u_cuts) for s in splits}
    return Shard(nu, nm, u_cuts, m_cuts, parts, manifest, path, *rank_below(g, path, manifest, nu, nm, u_cuts))


def rank_below(g: Group, path: Path, manifest: dict, n_users: int, n_movies: int, u_cuts: np.ndarray) -> tuple:
    """(the dataset's rated_below pairs of this rank's users, their parts): Shard.below and Shard.below_split,
    (None, None) where it has none, the parts None where it does not record them."""
    from embedrec.data.dataset import read_rated_below_parts

    below, parts = read_rated_below_parts(path, manifest, n_users, n_movies)
    if below is None:
        return None, None
    mine = (below[0] >= u_cuts[g.rank]) & (below[0] < u_cuts[g.rank + 1])
    return (below[0][mine], below[1][mine]), None if parts is None else parts[mine]
