"""The prepared-dataset directory: the contract between ``ingest`` and everything after it.

Layout (generations, like a run directory)::

    DATASET/current -> gen-<version>/   swapped atomically by each ingest (publish_dataset)
    DATASET/gen-<version>/
        manifest.json     source, input checksums, counts, split sizes, cleaning report, config, version,
                          SHA-256 and size of every file (files), their fingerprint, a checksum of itself
        train.parquet     user_idx int32, movie_idx int32, rating float32[, timestamp int64]
        valid.parquet     same columns (may be empty)
        test.parquet      same columns (may be empty)
        users.parquet     user_idx, user_id[, age, gender, occupation, zip]
        movies.parquet    movie_idx, movie_id, title, year, genres (list of strings), n_ratings
        rated_below.parquet          user_idx, movie_idx, split (int8: 0 train, 1 valid, 2 test; since the
                                     parts were kept) of the pairs kept apart as rated (Dataset.rated_below)
        rated_below_unknown.parquet  user_id, movie_idx rated by users the cleaning left out
    DATASET/manifest.json, DATASET/<name>.parquet -> current/...   for tools that read the files by path

``load_dataset`` resolves ``current`` once, reads every file through one handle of that generation and holds
it (a shared flock) for as long as the Dataset lives; an ingest prunes older generations but never a held
one, so a long pipeline survives any number of publishes. A dataset in the older flat layout (the files
directly in DATASET) still loads, and ``ingest --overwrite`` turns it into generations in place: its first
generation written inside it, then the flat files it wrote (``FLAT``, by name) replaced by the links, a user's
own files there kept and warned of.

Where a dataset is and whether a folder holds one (``current``, a run's record of it, a move), and what is said
where it is not, are ``data/layout.py``'s rules (pandas-free: serving's ``history`` follows them too).
"""

from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# the layout rules and their messages: data/layout.py, pandas-free (serving's history reads them too)
from embedrec.data.layout import (
    FILES,
    FIX,
    GEN,
    LINKS,
    MANIFEST,
    OPTIONAL,
    SPLITS,
    check_layout,
    dataset_fix,
    is_dataset,
    parse_manifest,
    read_manifest,
    versioned,
)
from embedrec.data.layout import has_manifest as has_manifest  # re-exported: crossval.py takes it from here
from embedrec.errors import ArtifactError, OutputExists, OutputRefused, UsageError, first_line
from embedrec.fsutil.files import (
    JSON_MAX,
    NONBLOCK,
    fsync_dir,
    io_error,
    missing_error,
    probe_json,
    read_denied,
    read_error,
    read_fd,
    read_regular,
    write_json,
    write_parquet,
)
from embedrec.fsutil.generations import (
    LINK_TMP,
    VERSION,
    changed_files,
    current_link,
    listed_names,
    open_current,
    publish_generation,
)


@dataclass
class Interactions:
    user: np.ndarray
    movie: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.user.size)

    @classmethod
    def concat(cls, parts: list[Interactions]) -> Interactions:
        """The rows of ``parts`` one after the other (timestamps kept only when every part has them)."""
        stamps = [p.timestamp for p in parts]
        return cls(np.concatenate([p.user for p in parts]), np.concatenate([p.movie for p in parts]),
                   np.concatenate([p.rating for p in parts]),
                   None if any(t is None for t in stamps) else np.concatenate(stamps))


@dataclass
class Dataset:
    path: Path
    manifest: dict
    users: pd.DataFrame
    movies: pd.DataFrame
    splits: dict[str, Interactions] = field(default_factory=dict)
    fingerprint: str = ""  # a hash over the dataset files' checksums: what a run pins its dataset by
    folder: Path | None = None  # the folder the files were read from: DATASET/gen-<version>, or DATASET (flat)
    hold: object = field(default=None, repr=False, compare=False)  # FolderHold: keeps pruning away from folder
    # (user rows, movie rows) a user rated below data.min_rating (or on a movie the k-core filter dropped and
    # data.keep_unrated_movies kept): dropped from learning, never recommended
    rated_below: tuple[np.ndarray, np.ndarray] | None = None
    # each of those pairs' part, int8 (0 train, 1 valid, 2 test: data.split's codes), split as the ratings are, so
    # that evaluating a split leaves out only those of the parts before it (sparse.seen_csr); None for a dataset
    # ingested before the parts were kept (evaluation then leaves out every one, as serving does)
    rated_below_split: np.ndarray | None = None
    # (user_id, movie_idx) rated by users not in the dataset (every rating of theirs below data.min_rating, or
    # dropped by the k-core filter): what the popular fallback never offers them
    rated_below_unknown: pd.DataFrame | None = None

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

    def split_frame(self, name: str = "test") -> pd.DataFrame:
        """A split's rows with their ids (user_id, movie_id, rating[, timestamp]), where ``splits[name]`` holds
        rows of ``users``/``movies``: the ``truth`` of ``er.score_lists``, or a peer's training data."""
        if name not in self.splits:
            raise UsageError(f"split_frame: no split {name!r} in this dataset; one of {', '.join(map(repr, self.splits))}")
        part = self.splits[name]
        out = pd.DataFrame({"user_id": self.users["user_id"].to_numpy()[part.user],
                            "movie_id": self.movies["movie_id"].to_numpy()[part.movie], "rating": part.rating})
        if part.timestamp is not None:
            out["timestamp"] = part.timestamp
        return out

    def summary(self) -> str:
        """The summary ``embedrec ingest`` printed of this dataset, from its manifest: its counts, split, rating
        values and what the cleaning dropped or kept (``manifest['cleaning']``: repeated rows, repeats summed,
        ratings below data.min_rating ...), the lines the CLI prints (a notebook review: er.ingest logged none of
        them); not its warnings (train repeats those a model needs: the dislikes, two values above 0)."""
        from embedrec.data.summary import format_summary

        return format_summary(self.manifest)

    def __repr__(self) -> str:
        """Named after its folder, the name the caller chose (``output=``, data.prepared; a first-hour review:
        ``er.ingest(df, output="prep/py")`` showed ``<Dataset dataframe-212947ed4959 ...>``, its frame's hash). The
        manifest's ``name`` stays the data's, as ingest's summary line and a run's manifest record it (the frame's
        cache file and default folder are named by it); ``ds.manifest["name"]`` reads it."""
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.splits.items())
        name = self.path.name or self.manifest.get("name") or str(self.path)  # ('.' has no name: the data's)
        return f"<Dataset {name} ({self.n_users:,} users x {self.n_movies:,} movies; {sizes})>"


KEEP = 1  # generations kept besides any a live reader holds (the current one)


def write_dataset(tmp: Path, frames: dict[str, pd.DataFrame], users: pd.DataFrame, movies: pd.DataFrame,
                  manifest: dict, tick=None) -> None:
    """Write the five Parquet files (with page checksums; rated_below.parquet too where ``frames`` holds it) and
    the manifest listing each file's SHA-256. ``tick(n)``: a bar's update, told of the rows written, a row group at a
    time (:func:`dataset_rows`: all of them)."""
    from embedrec.fsutil.integrity import file_entry, fingerprint_of, seal

    extra = tuple(n for n in OPTIONAL if n in frames)
    for name in (*SPLITS, *extra):
        write_parquet(frames[name], tmp / f"{name}.parquet", page_checksum=True, tick=tick)
    write_parquet(users, tmp / "users.parquet", page_checksum=True, tick=tick)
    write_parquet(movies, tmp / "movies.parquet", page_checksum=True, tick=tick)
    files = {f"{n}.parquet": file_entry(tmp / f"{n}.parquet") for n in (*FILES, *extra)}
    manifest["files"] = files
    manifest["fingerprint"] = fingerprint_of(files)
    write_json(tmp / MANIFEST, seal(manifest))


def dataset_rows(frames: dict[str, pd.DataFrame], users: pd.DataFrame, movies: pd.DataFrame) -> int:
    """The rows :func:`write_dataset` writes of these tables: its bar's total."""
    return sum(len(frames[n]) for n in (*SPLITS, *OPTIONAL) if n in frames) + len(users) + len(movies)


def current_generation(folder) -> str | None:
    """The generation a dataset folder serves (where its ``current`` link points, e.g. ``gen-<version>``), or
    None (no link, no folder, or no path given): compared before and after an ingest, whether it published."""
    return current_link(folder) or None


# the files ingest wrote directly in DATASET before generations: the manifest and the tables (data/layout.py's
# LINKS, which name them now as links into current) and the optional ones
FLAT = (*LINKS, *(f"{n}.parquet" for n in OPTIONAL))


def _flat_layout(root: Path) -> bool:
    """Whether ``root`` holds a dataset of the older flat layout: its manifest directly in it and no ``current``.
    The manifest a file, or a link to one: a folder of links to a dataset's files (`cp -s`, an `ln -s` a file)
    beside a user's own is given generations in place as a flat one is, its links replaced (a red team: it was
    replaced whole, the user's notes and folders with it)."""
    return (root / MANIFEST).is_file() and not os.path.lexists(root / "current")


def refuse_changed_flat(root: Path, *hash_max: int) -> None:
    """Refuse to give a dataset folder of the flat layout generations where a file embedrec wrote there is not
    what its manifest records (a user's edit), as export refuses one: its link into the new generation would
    replace it (a red team: a user's train.parquet beside a copied manifest.json went). ``hash_max`` 0 compares
    sizes alone (ingest's early look, before the source is read); the publish compares checksums too."""
    from embedrec.fsutil.outputs import shorten_name

    # (a link in a listed file's place is not a user's edit: replacing it loses nothing, its file stays where it is)
    # in generations too, a regular file where embedrec keeps its link into current, of other bytes than the
    # manifest records (a red team: a user's users.parquet there went without a word; verify said ok)
    changed = [n for n in changed_files(root, None, *hash_max) if not (root / n).is_symlink()] \
        if _flat_layout(root) else changed_files(root, None, *hash_max, only=lambda n: _regular(root / n)) \
        if versioned(root) else []
    if changed:
        shown = ", ".join(shorten_name(n) for n in changed[:5]) + (f" and {len(changed) - 5} more"
                                                                   if len(changed) > 5 else "")
        one = len(changed) == 1
        raise OutputRefused(f"'{root}' holds {'a file' if one else 'files'} embedrec wrote but someone changed since "
                            f"({shown}: not the bytes its manifest records), which «--overwrite|overwrite=True» "
                            f"would replace by {'its link' if one else 'their links'} into the new generation; move "
                            f"{'it' if one else 'them'} out first, or choose another output folder")


# a killed writer's generation being written, inside a dataset (its links being swapped: generations.LINK_TMP)
_OWN_TEMP = re.compile(r"\." + GEN + "-" + VERSION + r"\.tmp")
_OWN_GEN = re.compile(GEN + "-" + VERSION)


def _regular(p: Path) -> bool:
    return p.is_file() and not p.is_symlink()


def replaced_counts(root: Path) -> dict | None:
    """The counts (users, movies, ratings) of the dataset at ``root`` that an ``--overwrite`` is about to replace,
    as its manifest records them; None where there is none or it does not read (a warning's figures alone)."""
    try:
        manifest, _ = read_manifest(root / "current" if (root / "current").exists() else root, root)
        counts = manifest.get("counts") or {}
        return {**{k: int(counts[k]) for k in ("users", "movies", "ratings")}, "config": manifest.get("config")}
    except (ArtifactError, OSError, KeyError, TypeError, ValueError, AttributeError):
        return None


SHRUNK_BELOW = 0.5  # a dataset replaced by one of under this share of its ratings, users or movies is warned of


# the settings that name where the data is, not how it is cleaned: a change of these alone is no reason to shrink
_PLACES = ("source", "prepared", "movies", "test_source", "valid_source", "cache_dir")


def _cleaning(config) -> dict | None:
    """How a dataset manifest's config reads, cleans and splits the data: its data section without the keys that
    only place the data (:data:`_PLACES`), and its split section."""
    if not isinstance(config, dict):
        return None
    data = {k: v for k, v in (config.get("data") or {}).items() if k not in _PLACES}
    split = {k: v for k, v in (config.get("split") or {}).items() if k not in ("seed", "fold")}  # (a draw's seed
    return {"data": data, "split": split}  # moves rows between parts, never out of the dataset: a diff review)


def shrunk_said(root: Path, before: dict | None, after: dict, config: dict | None = None) -> str | None:
    """The warning for a dataset at ``root`` replaced by one holding under half its ratings, users or movies (an
    ops review: a nightly job's source cut to one day's rows, 30,000 ratings to 3,000, replaced the dataset and then
    the served model, exit 0 and no word); None where nothing shrank so, the replaced one's counts are unknown, or
    the cleaning settings changed (``config``, the new manifest's, against the replaced one's: a diff review's
    data.min_user_ratings=20 made 400 users 180 by design)."""
    if not before:
        return None
    if config is not None and before.get("config") is not None and _cleaning(config) != _cleaning(before["config"]):
        return None
    low = [k for k in ("ratings", "users", "movies") if before.get(k) and int(after.get(k, 0)) < SHRUNK_BELOW *
           before[k]]
    if not low:
        return None
    said = ", ".join(f"{int(after.get(k, 0)):,} {k} where it held {before[k]:,}" for k in low)
    return (f"{root}: the dataset now holds {said}: if the source was cut short (a file rotated, or read while it "
            "was still being written), ingest the whole file again before training; a model already trained on "
            "the one replaced serves on until a train replaces it")


def refuse_foreign(root: Path) -> None:
    """Refuse to replace a dataset folder whole (``ingest --overwrite`` where it is neither in generations nor of
    the flat layout: its ``current`` a folder, lost, or led elsewhere) where it holds anything embedrec did not
    write: only ``current`` (a link, or a folder holding what its manifest lists, as copied), the top-level names of
    its files (links, or copies holding the bytes its manifest records), ``gen-*`` folders holding what their
    manifests list, and a killed writer's temporary folders are embedrec's. The others are named, with how to go
    on (a red team: a `cp -rL` copy's notes.txt, a lost current's .git and .env, a user's backup a current led to,
    each removed with exit 0)."""
    from embedrec.fsutil.generations import not_ours
    from embedrec.fsutil.outputs import shorten_name

    if not root.is_dir() or root.is_symlink() or versioned(root) or _flat_layout(root):  # (those are given their
        return  # new generation in place: publish_dataset)

    def whole(folder: Path) -> bool:  # a generation's files, as its manifest lists them, and nothing else (one
        # without its manifest may hold a user's files of names embedrec writes: a second diff review's gen-backup/)
        return not any(folder.iterdir()) or os.path.lexists(folder / MANIFEST) and not_ours(folder) is None

    theirs = []
    entries = sorted(root.iterdir())
    generations = any(_OWN_GEN.fullmatch(p.name) and p.is_dir() and not p.is_symlink() for p in entries)
    for p in entries:
        n = p.name
        if n in LINKS and (p.is_symlink() or p.is_file()) or _OWN_TEMP.fullmatch(n) or LINK_TMP.fullmatch(n):
            continue
        if n == "current" and (p.is_symlink() or p.is_dir() and whole(p)):
            continue
        if n == "current" and generations and p.is_file() and p.stat().st_size <= 256:  # the link flattened to a
            continue  # file beside its generations (a checkout that writes links as text): a damaged link's
        if _OWN_GEN.fullmatch(n) and p.is_dir() and not p.is_symlink() and whole(p):
            continue
        theirs.append(shorten_name(n) + ("/" if p.is_dir() and not p.is_symlink() else ""))
    theirs += [shorten_name(n) + " (other bytes than its manifest records)"
               for n in changed_files(root, only=lambda n: _regular(root / n))]
    if theirs:
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise OutputRefused(f"'{root}' holds a dataset beside what embedrec did not write ({shown}), which "
                            "«--overwrite|overwrite=True» would remove with it (its 'current' is not embedrec's link "
                            "to a generation: a copy made with links followed, or a link lost or moved); move those "
                            "out first, or choose another output folder")


def _flat_files(root: Path) -> list[str]:
    """The files of the older flat layout directly in ``root`` that embedrec wrote, by their names (``FLAT``): those
    its manifest lists, with the manifest itself (where it lists none, an earlier embedrec's or one made by hand:
    the manifest and the tables every dataset has, ``LINKS``), each a regular file, or, where ``root`` has no
    ``current`` yet, a link to one (a folder of links to a dataset's files). A file of such a name that the manifest
    does not list is a user's (a red team: a rated_below.parquet of the user's, which its manifest did not list,
    was removed by name). Read before the new generation is published, while the manifest is the flat one's (a
    conversion stopped beside ``current`` leaves it so: :func:`_retire_flat` swaps it last)."""
    listed = listed_names(probe_json(root / MANIFEST))
    ours = set(LINKS) if listed is None else listed
    links = not os.path.lexists(root / "current")
    out = []
    for name in FLAT:
        p = root / name
        if name in ours and (p.is_file() and not p.is_symlink() or links and p.is_symlink() and p.is_file()):
            out.append(name)
    return out


def _retire_flat(root: Path, names: list[str]) -> list[str]:
    """Once ``root/current`` names the new generation: the files of the older flat layout directly in ``root``
    that embedrec wrote (``names``: :func:`_flat_files`, read before the publish), each of ``LINKS`` swapped for its
    link into current in one rename (a reader still reading the flat folder finds the old file or the new one, and
    loads again: :func:`_open_folder`'s ``gone``), the others removed; the manifest last, so that a conversion
    killed before it ended leaves the flat manifest's list beside ``current`` for the next one. Returns the names
    replaced."""
    from embedrec.fsutil.generations import swap_link

    retired = []
    for name in sorted(names, key=lambda n: n == MANIFEST):  # (a stable sort: FLAT's order, the manifest last)
        p = root / name
        if not os.path.lexists(p) or p.is_dir() and not p.is_symlink():
            continue
        if name in LINKS:
            swap_link(root, f"current/{name}", name)
        else:
            p.unlink()
        retired.append(name)
    if retired:
        fsync_dir(root)
    return retired


def _warn_kept(root: Path, generation: str) -> None:
    """Say the files a dataset folder of the flat layout held beside embedrec's, kept as they were once it is in
    generations (as pruning says a folder it keeps for a name embedrec does not write)."""
    import logging
    import re

    own = re.compile(re.escape(GEN) + "-" + VERSION)
    theirs = sorted(n for n in os.listdir(root) if not n.startswith(".") and n != "current" and not own.fullmatch(n)
                    and not (n in LINKS and current_link(root, n) == f"current/{n}"))
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
        logging.getLogger("embedrec").warning(
            "'%s' held a dataset of the older flat layout, now in generations (current -> %s): the files embedrec "
            "wrote there are replaced, and those it did not write are kept (%s)", root, generation, shown)


def _link_files(root: Path) -> None:
    """DATASET/manifest.json, DATASET/<name>.parquet -> current/<name>, where nothing of that name is."""
    for name in LINKS:
        if not os.path.lexists(root / name):
            os.symlink(f"current/{name}", root / name)


def publish_dataset(root: str | Path, write, overwrite: bool = False, command: str = "embedrec ingest",
                    fix: str = "choose another output folder (-o / data.prepared)") -> Path:
    """Call ``write(tmp)`` to fill a new generation of the dataset at ``root`` and make it ``current``
    atomically; returns the generation folder. Older generations are pruned unless a reader holds them.

    A new ``root`` is built whole beside it and swapped in (outputs.atomic_dir), so a killed ingest leaves no
    half-made dataset; an empty folder (a volume's mount point, which cannot be renamed) gets its first generation
    written inside it, as later ones are, and so does one in the older flat layout, whose flat files embedrec wrote
    are then replaced by the links (:func:`_retire_flat`) and a user's own files there kept, and said (a review:
    it was replaced whole, and a user's file in it went where its manifest listed no files). Writers are
    serialised by the lock beside ``root``; the temporary folders of killed writers are swept under it.
    """
    from embedrec.fsutil.locks import target_lock
    from embedrec.fsutil.outputs import (
        atomic_dir,
        check_replaceable,
        refuse_cwd,
        refuse_inside_store_through,
        sweep_stale,
    )

    root = Path(root)
    with target_lock(root, command, fix):
        sweep_stale(root)  # .<name>.tmp-<pid>-* beside it, from killed writers of the flat layout
        empty = root.is_dir() and not root.is_symlink() and not any(root.iterdir())
        flat = _flat_layout(root)
        # an empty folder (a mount point) is filled in place, and so is one of the flat layout
        if versioned(root) or (empty and overwrite) or flat:
            refuse_cwd(root)
            # as atomic_dir refuses them, the folder a link leads to too (a generation given itself, DATASET/gen-X,
            # is flat; a red team: LINK -> DATASET/gen-X was filled in place, and DATASET served the new data)
            refuse_inside_store_through(root)
            if not overwrite:
                raise OutputExists(f"output directory '{root}' already exists; pass «--overwrite|overwrite=True» to replace it, "
                                    "or choose another path")
            check_replaceable(root, is_dataset)
            refuse_changed_flat(root)
            try:
                names = _flat_files(root)
                final = publish_generation(root, GEN, write, KEEP)
                retired = _retire_flat(root, names)
                _link_files(root)
            except OSError as e:
                if io_error(e, root, fix) is not None:
                    raise io_error(e, root, fix) from None
                raise
            if retired:
                _warn_kept(root, final.name)
            return final
        if overwrite:  # replaced whole: refused where it holds anything of a user's (a red team: a `cp -rL` copy's
            refuse_foreign(root)  # notes, a lost current's .git, a current led to a user's backup, all removed)
        with atomic_dir(root, overwrite=overwrite, ours=is_dataset, command=command, fix=fix) as tmp:
            final = publish_generation(tmp, GEN, write, KEEP)
            _link_files(tmp)
        return root / final.name


def open_generation(path: str | Path):
    """(generation folder, hold) of the dataset at ``path`` when it is in generations: ``current`` resolved
    once and held against pruning (hold None where flock is unsupported); None for anything else."""
    path = Path(path)
    if not versioned(path):
        return None
    return open_current(path)


class _Swapped(Exception):
    """The dataset folder was replaced (ingest --overwrite) while it was being read: read it again."""


def load_dataset(path: str | Path, splits: tuple[str, ...] = SPLITS, *, split_method: str | None = None) -> Dataset:
    """Load a prepared dataset; raises ArtifactError with what to do when it is missing or broken (naming the
    datasets beside it that are split by ``split_method``, the config's ``split.method``, where given).

    ``current`` is resolved once and every file is read through one open handle of that generation, held
    against pruning while the Dataset lives, so a concurrent ``ingest --overwrite`` can never mix two
    generations (a flat-layout folder is read through one handle of itself); each file is checked against
    the SHA-256 its manifest records, and the indices against the table sizes (out-of-range indices would
    reach the native training kernel).
    """
    path = check_layout(path, split_method)  # a run, a lost current, no manifest: said before anything is read
    for _ in range(5):
        try:
            return _load_once(path, splits)
        except _Swapped:
            continue
    raise ArtifactError(f"prepared dataset '{path}' kept being replaced while it was read (another «'embedrec "
                        "ingest --overwrite'|ingest with overwrite=True»?); wait for it to finish and run the command again")


def _read_at(dfd: int, folder: Path, name: str, gone, expect: int | None = None, limit: int | None = None,
             fix: str = FIX) -> bytes:
    """A file of the dataset folder open as ``dfd``: a regular file only, of the ``expect``ed size (its
    manifest's record) or at most ``limit`` bytes, checked before it is read (``files.read_fd``; a review: a FIFO
    in its place hung `train`, a link to /dev/zero filled memory until the OOM killer came)."""
    try:
        fd = os.open(name, os.O_RDONLY | NONBLOCK, dir_fd=dfd)
    except FileNotFoundError:
        if gone():
            raise _Swapped from None
        raise missing_error(folder / name, "prepared dataset file", fix) from None
    except PermissionError as e:  # a red team: "permission denied on 'test.parquet'; write to another folder"
        raise read_denied(e, folder / name, "prepared dataset file") from None
    except OSError as e:  # a loop of links in its place, said as one (not an OSError's line)
        raise (read_error(e, folder / name, "prepared dataset file", fix) or e) from None
    try:
        return read_fd(fd, folder / name, "prepared dataset file", fix, limit, expect)
    except ArtifactError:
        if gone():  # replaced by another ingest while read: read the new one
            raise _Swapped from None
        raise


def _other_manifest(dfd: int, folder: Path, recorded: dict, fix: str, hashed: bool = False) -> None:
    """Refuse a manifest.json most of whose recorded files are not of the sizes it records (another dataset's or
    generation's, copied here: a red team found the first file blamed as damaged, the manifest not named), as a
    run's ``run_checks.other_manifest`` does; ``hashed``: of the checksums it records (one file found unlike its
    record: the others are hashed, on that error's path alone)."""
    from embedrec.fsutil.integrity import sha256_bytes

    entries = {n: e for n, e in recorded.items() if isinstance(e, dict) and _recorded_size(e) is not None}
    if len(entries) <= 2:
        return
    differ = 0
    for n, e in entries.items():
        try:
            if not hashed:
                differ += os.stat(n, dir_fd=dfd).st_size != e["bytes"]  # (a link's file, as the read follows)
                continue
            fd = os.open(n, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), dir_fd=dfd)
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    differ += 1
                    continue
                differ += sha256_bytes(fh.read()) != e.get("sha256")
        except OSError:
            differ += 1
    if differ > len(entries) / 2:
        said = "of the checksums" if hashed else "of the sizes"
        raise ArtifactError(f"{differ} of the {len(entries)} files of prepared dataset '{folder}' are not {said} "
                            "its manifest.json records: the manifest is likely another dataset's, copied here; put "
                            f"back this folder's own manifest.json, or {fix}")


def _recorded_size(entry) -> int | None:
    """The size a manifest entry records, if it records one."""
    return entry.get("bytes") if isinstance(entry, dict) and isinstance(entry.get("bytes"), int) else None


def _identity(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_generations(dir_fd: int) -> bool:
    """Whether the folder open as ``dir_fd`` holds generations (a ``current`` link to ``gen-*``), as layout.versioned."""
    return current_link(None, dir_fd=dir_fd).startswith(f"{GEN}-")


def _open_folder(path: Path) -> tuple[Path, object, int, object]:
    """(folder, hold, fd, gone) for one load: the generation ``path/current`` names, resolved once through one
    handle of ``path`` and held (or ``path`` itself in the flat layout). ``fd`` reads the folder's files;
    ``gone()`` says whether the folder was swapped away or pruned since (then: load again)."""
    from embedrec.fsutil.locks import FolderHold

    try:
        root_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise _Swapped from None
    except PermissionError as e:
        raise read_denied(e, path, "prepared dataset folder") from None
    try:
        st = os.fstat(root_fd)
        ident = (st.st_dev, st.st_ino)
        if _is_generations(root_fd):
            got = open_current(path, root_fd=root_fd)
            if got is None:
                raise _Swapped
            folder, hold = got
            try:  # (a generation of mode 000: said as a read, not with a writer's advice, a red team)
                fd = hold.fd if hold is not None else os.open(folder.name, os.O_RDONLY | os.O_DIRECTORY,
                                                              dir_fd=root_fd)
            except PermissionError as e:
                raise read_denied(e, folder, "prepared dataset folder") from None
        else:  # the flat layout: the files directly in path
            folder = path
            try:
                hold = FolderHold(".", dir_fd=root_fd)
            except OSError:
                hold = None
            fd = hold.fd if hold is not None else os.dup(root_fd)
    finally:
        os.close(root_fd)

    def gone() -> bool:  # (the flat layout: also once an ingest made it generations, in place)
        try:
            return os.fstat(fd).st_nlink == 0 or (folder == path and (_identity(path) != ident or
                                                                      _is_generations(fd)))
        except OSError:
            return True

    return folder, hold, fd, gone


def _load_once(path: Path, splits: tuple[str, ...]) -> Dataset:
    from embedrec.fsutil.integrity import check_bytes, fingerprint_of, sha256_bytes

    folder, hold, dfd, gone = _open_folder(path)
    try:
        raw = _read_at(dfd, folder, MANIFEST, gone, limit=JSON_MAX, fix=dataset_fix(path))
        manifest, fix = parse_manifest(raw, folder, path)
        recorded = manifest.get("files") or {}
        names = ["users", "movies", *splits, *(n for n in OPTIONAL if f"{n}.parquet" in recorded)] if recorded \
            else list(FILES)
        _other_manifest(dfd, folder, recorded, fix)
        frames, hashes = {}, {}
        for name in names:
            fname = f"{name}.parquet"
            data = _read_at(dfd, folder, fname, gone, expect=_recorded_size(recorded.get(fname)), fix=fix)
            try:
                check_bytes(data, recorded.get(fname), folder / fname, "prepared dataset file", fix)
            except ArtifactError:
                if gone():
                    raise _Swapped from None
                _other_manifest(dfd, folder, recorded, fix, hashed=True)  # most files unlike it: the manifest
                raise
            if not recorded:  # a dataset from before checksums: pin it by its bytes
                hashes[fname] = {"sha256": sha256_bytes(data)}
            if name in ("users", "movies", *splits, *OPTIONAL):
                try:
                    frames[name] = pd.read_parquet(io.BytesIO(data), page_checksum_verification=True)
                except Exception as e:  # pyarrow raises OSError, ArrowInvalid (ValueError), ... on damage
                    raise ArtifactError(f"prepared dataset file '{folder / fname}' is damaged ({first_line(e)}); "
                                        f"{fix}") from None
    except BaseException:
        if hold is None:
            os.close(dfd)
        else:
            hold.close()
        raise
    if hold is None:
        os.close(dfd)
    users, movies = frames["users"], frames["movies"]
    parts, below, below_split, unknown = _checked_rows(frames, splits, manifest, folder, fix)
    fp = manifest.get("fingerprint") if recorded else fingerprint_of(hashes)
    return Dataset(path, manifest, users, movies, parts, fingerprint=fp or "", folder=folder, hold=hold,
                   rated_below=below, rated_below_split=below_split, rated_below_unknown=unknown)


def _checked_rows(frames: dict[str, pd.DataFrame], splits, manifest: dict, folder: Path, fix: str) -> tuple:
    """(the splits' Interactions by name, rated_below's pairs, their parts, rated_below_unknown) of a generation's
    tables as read (``frames``: users, movies, each of ``splits`` and the OPTIONAL tables it holds), each checked as
    every reader of a dataset checks it: the users' and movies' counts against the ``manifest``, each split's
    columns and index ranges (an index outside the tables would be an out-of-bounds write in the native kernel)
    and finite ratings, rated_below's and rated_below_unknown's columns and ranges. ArtifactError names the first
    file that fails, with ``fix``. What load_dataset checks, and ``verify`` (:func:`check_rows`)."""
    users, movies = frames["users"], frames["movies"]
    counts = manifest.get("counts", {})
    if counts.get("users") != len(users) or counts.get("movies") != len(movies):
        raise ArtifactError(f"prepared dataset '{folder}' does not match its manifest (users/movies counts differ); "
                            f"{fix}")
    parts = {}
    for name in splits:
        df = frames[name]
        try:
            for col, n in (("user_idx", len(users)), ("movie_idx", len(movies))):  # before the int32 cast wraps it
                if len(df) and df[col].dtype != np.int32:
                    lo, hi = int(df[col].min()), int(df[col].max())
                    if lo < 0 or hi >= n:
                        raise ArtifactError(f"prepared dataset file '{folder / (name + '.parquet')}' is damaged: "
                                            f"{col} {lo if lo < 0 else hi} outside [0, {n}); {fix}")
            parts[name] = Interactions(
                df["user_idx"].to_numpy(np.int32), df["movie_idx"].to_numpy(np.int32),
                df["rating"].to_numpy(np.float32),
                df["timestamp"].to_numpy(np.int64) if "timestamp" in df else None)
        except (KeyError, ValueError, TypeError) as e:
            raise ArtifactError(f"prepared dataset file '{folder / (name + '.parquet')}' is damaged (column "
                                f"{first_line(e)}); {fix}") from None
        _check_ranges(parts[name], len(users), len(movies), folder / f"{name}.parquet", fix)
    below, below_split = _rated_below(frames["rated_below"], len(users), len(movies), folder / "rated_below.parquet") \
        if "rated_below" in frames else (None, None)
    unknown = _rated_below_unknown(frames["rated_below_unknown"], len(movies), folder / "rated_below_unknown.parquet") \
        if "rated_below_unknown" in frames else None
    return parts, below, below_split, unknown


def check_rows(folder: Path, manifest: dict, fix: str) -> None:
    """``verify``'s check of a dataset generation's rows (its files hashed against ``manifest`` already): each
    table it lists read and checked as load_dataset checks it (:func:`_checked_rows`), so a dataset re-sealed after
    an edit that train would refuse is not said ok (session 52's red team: a train.parquet with movie_idx
    2000000000 passed verify, and train then refused it). Reads every table once more (Parquet decoded)."""
    recorded = manifest.get("files") or {}
    frames = {}
    for name in ("users", "movies", *SPLITS, *OPTIONAL):
        if f"{name}.parquet" not in recorded and name not in ("users", "movies"):
            continue  # (a split or optional table the manifest does not list: none of this dataset's)
        where = folder / f"{name}.parquet"
        try:  # (through Python's own file: pyarrow opens UTF-8 paths only)
            with open(where, "rb") as fh:
                frames[name] = pd.read_parquet(fh, page_checksum_verification=True)
        except Exception as e:  # as _load_once: pyarrow's errors on damage
            raise ArtifactError(f"prepared dataset file '{where}' is damaged ({first_line(e)}); {fix}") from None
    _checked_rows(frames, [n for n in SPLITS if n in frames], manifest, folder, fix)


def read_rated_below(folder: Path, manifest: dict, n_users: int, n_movies: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Dataset.rated_below for a reader that opens the files one by one (the torchrun writers), from the
    generation ``folder`` it read: rated_below.parquet checked as load_dataset checks it, or None where the
    manifest lists none."""
    return read_rated_below_parts(folder, manifest, n_users, n_movies)[0]


def read_rated_below_parts(folder: Path, manifest: dict, n_users: int, n_movies: int) -> tuple:
    """(Dataset.rated_below, Dataset.rated_below_split) as :func:`read_rated_below` reads the first: (None, None)
    where the manifest lists no rated_below.parquet, the second None where the file holds no ``split`` column."""
    df = _read_optional(folder, manifest, "rated_below")
    return (None, None) if df is None else _rated_below(df, n_users, n_movies, Path(folder) / "rated_below.parquet")


def read_rated_below_unknown(folder: Path, manifest: dict, n_movies: int) -> pd.DataFrame | None:
    """Dataset.rated_below_unknown as read_rated_below reads Dataset.rated_below."""
    df = _read_optional(folder, manifest, "rated_below_unknown")
    return None if df is None else _rated_below_unknown(df, n_movies, Path(folder) / "rated_below_unknown.parquet")


def read_tables(folder: Path, manifest: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(users, movies) of the generation ``folder`` for a reader that opens the files one by one (the torchrun
    ranks), checked as load_dataset checks them: their bytes against ``manifest`` and their row counts."""
    users, movies = (_read_table(folder, manifest, name, required=True) for name in ("users", "movies"))
    counts = manifest.get("counts", {})
    if counts.get("users") != len(users) or counts.get("movies") != len(movies):
        raise ArtifactError(f"prepared dataset '{folder}' does not match its manifest (users/movies counts differ); "
                            f"{FIX}")
    return users, movies


def _read_optional(folder: Path, manifest: dict, name: str) -> pd.DataFrame | None:
    """One OPTIONAL table of the generation ``folder``, its bytes checked against the manifest; None where the
    manifest lists none."""
    return _read_table(folder, manifest, name, required=False)


def _read_table(folder: Path, manifest: dict, name: str, required: bool) -> pd.DataFrame | None:
    """The table ``name`` of the generation ``folder``, its bytes checked against the manifest's entry (a dataset
    from before checksums has none: read as it is); where the manifest lists no such file, None unless
    ``required``."""
    from embedrec.fsutil.integrity import check_bytes

    files = manifest.get("files") or {}
    entry = files.get(f"{name}.parquet")
    if entry is None:
        if not required:
            return None
        if files:
            raise ArtifactError(f"prepared dataset '{folder}' lists no {name}.parquet in its manifest; {FIX}")
    where = Path(folder) / f"{name}.parquet"
    try:
        data = read_regular(where, "prepared dataset file", FIX, expect=_recorded_size(entry))
    except OSError as e:
        raise ArtifactError(f"prepared dataset file '{where}' cannot be read ({e.strerror}); {FIX}") from None
    check_bytes(data, entry, where, "prepared dataset file", FIX)
    try:
        df = pd.read_parquet(io.BytesIO(data), page_checksum_verification=True)
    except Exception as e:  # as _load_once: pyarrow's errors on damage
        raise ArtifactError(f"prepared dataset file '{where}' is damaged ({first_line(e)}); {FIX}") from None
    return df


def _rated_below_unknown(df: pd.DataFrame, n_movies: int, where: Path) -> pd.DataFrame:
    """A rated_below_unknown table, its columns and movie rows checked."""
    if list(df.columns) != ["user_id", "movie_idx"] or not np.issubdtype(df["movie_idx"].dtype, np.integer) or \
            len(df) and not 0 <= int(df["movie_idx"].min()) <= int(df["movie_idx"].max()) < n_movies:
        raise ArtifactError(f"prepared dataset file '{where}' is damaged (expected columns user_id and movie_idx, "
                            f"movie_idx in [0, {n_movies})); {FIX}")
    return df


def _rated_below(df: pd.DataFrame, n_users: int, n_movies: int, where: Path) -> tuple:
    """((user rows, movie rows), each pair's part or None) of a rated_below table, its columns and index ranges
    checked, and its ``split`` column where it has one (an earlier ingest's has none): int8 codes 0, 1 or 2."""
    try:
        for col, n in (("user_idx", n_users), ("movie_idx", n_movies)):  # before the int32 cast wraps it
            if len(df) and df[col].dtype != np.int32 and not 0 <= int(df[col].min()) <= int(df[col].max()) < n:
                raise ArtifactError(f"prepared dataset file '{where}' is damaged: {col} outside [0, {n}); {FIX}")
        part = Interactions(df["user_idx"].to_numpy(np.int32), df["movie_idx"].to_numpy(np.int32),
                            np.ones(len(df), np.float32))
    except (KeyError, ValueError, TypeError) as e:
        raise ArtifactError(f"prepared dataset file '{where}' is damaged (column {first_line(e)}); {FIX}") from None
    _check_ranges(part, n_users, n_movies, where)
    if "split" not in df:
        return (part.user, part.movie), None
    codes = df["split"].to_numpy()
    if not np.issubdtype(codes.dtype, np.integer) or codes.size and not 0 <= int(codes.min()) <= int(codes.max()) <= 2:
        raise ArtifactError(f"prepared dataset file '{where}' is damaged: its split column holds other values than "
                            f"0, 1 and 2 (train, valid, test); {FIX}")
    return (part.user, part.movie), codes.astype(np.int8)


def _check_ranges(part: Interactions, n_users: int, n_movies: int, where: Path, fix: str = FIX) -> None:
    """Indices outside the tables would be out-of-bounds writes in the native kernel: refuse them here."""
    if len(part) == 0:
        return
    for col, arr, n in (("user_idx", part.user, n_users), ("movie_idx", part.movie, n_movies)):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise ArtifactError(f"prepared dataset file '{where}' is damaged: {col} {bad} outside [0, {n}); {fix}")
    if not np.isfinite(part.rating).all():
        raise ArtifactError(f"prepared dataset file '{where}' is damaged: a rating is not a finite number; {fix}")
