"""Writing a run: its writers' lock (``run_lock``: train, index rebuild, update-users) and ``publish``, which fills
a new model folder (a writer's ``write``: artifacts.save_artifacts, artifacts.rebuild_index, user_update), records
every file's SHA-256 and size in its manifest and seals it (``_record_checksums``), makes it ``current``
atomically and prunes the older ones but the newest KEEP, the one served before and an updated model's trained
one; it warns where the new model knows far fewer users or movies than the one it replaced, or drops its updates,
and where its prune removes the last model folder holding users (or movies) update-users added.
``sha256_array``: the checksum a manifest recorded of an array before session 58. (How a fitted model comes to be published is
publish.py's, a layer above.) Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from embedrec.errors import ArtifactError
from embedrec.fsutil import integrity as _fs  # _fs.VERIFY_ON_OPEN_MAX read at each use (a test lowers it)
from embedrec.fsutil.files import io_error, read_json, write_json
from embedrec.fsutil.generations import current_link, publish_generation
from embedrec.fsutil.integrity import file_entry, seal, stat_key
from embedrec.fsutil.locks import locked_folder
from embedrec.run_checks import check_run_folder, refuse_copied_current
from embedrec.run_layout import (
    ARTIFACTS,
    CONFIG,
    COS_FILE,
    IP_FILE,
    MANIFEST,
    MODEL_FOLDER,
    MOVIE_FACTORS,
    MOVIE_IDS,
    USER_IDS,
)
from embedrec.run_updates import (
    trained_folder,
    trained_movies,
    trained_users,
    update_sources,
    updates_of,
    updates_summary,
    warn_updates_dropped,
)

KEEP = 2  # artifact folders kept besides any a live reader still holds


def sha256_array(a: np.ndarray) -> str:
    """What a run published before session 58 recorded of each array (its manifest's ``files``): the SHA-256 of the
    array's bytes (since, its .npy file's: artifacts.sha256_npy)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@contextlib.contextmanager
def run_lock(run_dir: str | Path, command: str = "embedrec train"):
    """The exclusive writer lock of a run directory (``RUN/.lock``), re-entrant within a process. A run
    directory this call created is removed again when the command fails before writing anything into it (a
    config or data error leaves no empty run behind)."""
    run_dir = Path(run_dir)
    check_run_folder(run_dir, contents=False, command=command)
    with locked_folder(run_dir, command, "use another run.dir", "choose another run.dir"):
        yield


def _record_checksums(folder: Path, progress: bool = False, hashed: dict | None = None) -> dict:
    """Add every file's SHA-256 and size to the folder's manifest (the FAISS files also under index.files);
    returns the manifest written. ``hashed``: {name: (entry, stat key)} of files the writer hashed itself (hard-linked
    from the model served: artifacts.carry_over; written: artifacts.save_hashed): recorded as hashed while their
    stat key and size hold (else hashed again, and refused where they no longer match). ``progress``: a bar over
    the bytes hashed."""
    from embedrec.bars import step

    manifest = read_json(folder / MANIFEST, "run manifest")
    sums = {}
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST]
    sizes = [os.path.getsize(p) for p in files]

    def spared(p: Path, size: int, before) -> bool:  # hashed by the writer, untouched since
        entry, hashed_at = (hashed or {}).get(p.name, (None, None))
        return entry is not None and hashed_at is not None and before == hashed_at and size == entry["bytes"]

    # the bar counts the bytes this step reads (a scale check: the files hashed as written counted too, it showed
    # 434M at 7.62 GB/s where some 70 MB were read)
    to_read = sum(size for p, size in zip(files, sizes) if not (hashed and p.name in hashed and spared(
        p, size, stat_key(p))))
    with step("checksums" if progress else None, to_read, "B", scale=True) as tick:
        for p, size in zip(files, sizes):
            large = size > _fs.VERIFY_ON_OPEN_MAX  # opened without reading it whole: record the stat
            entry, _ = (hashed or {}).get(p.name, (None, None))
            before = stat_key(p) if large or entry else None  # that spares a rehash, if it held still while hashed
            if spared(p, size, before):
                sums[p.name] = dict(entry)
            else:
                sums[p.name] = file_entry(p)
                if entry is not None and sums[p.name] != entry:
                    raise ArtifactError(f"run artifact '{p}' changed after it was written or carried over and "
                                        "checked; nothing was published: run the command again")
                if tick is not None:
                    tick(size)
            if large and stat_key(p) == before:
                sums[p.name]["stat"] = before
    manifest["checksums"] = sums
    # the model folder it is sealed for, and its run: a manifest copied into another folder is named as such
    name = folder.name[1:-len(".tmp")] if folder.name.startswith(".") and folder.name.endswith(".tmp") else folder.name
    manifest["model_folder"] = {"name": name, "run": str(folder.resolve().parent)}
    if isinstance(manifest.get("index"), dict):
        manifest["index"] = {**manifest["index"], "files": {n: sums[n] for n in (IP_FILE, COS_FILE) if n in sums}}
    write_json(folder / MANIFEST, seal(manifest))
    return manifest


def publish(run_dir: str | Path, write, command: str = "embedrec train", progress: bool = False,
            hashed: dict | None = None, links: bool = False) -> Path:
    """Call ``write(tmp_folder)`` to fill a new artifacts folder, then make it ``current`` atomically (files
    and folders fsynced first); older folders are pruned, keeping the newest KEEP, the one ``current`` named
    before, the trained model an updated one is built on (:func:`trained_folder`: a red team's second update
    pruned it, and the first record's ``before`` named a deleted folder) and any a reader holds. ``progress``: a
    bar over the bytes the manifest's checksums hash (the writer's own steps are its own). ``hashed``: a dict the
    writer fills with the files it hashed itself (:func:`_record_checksums`). ``links``: the writer hard-links files
    of the model served (artifacts.carry_over), so the folders this publish prunes are pruned first
    (:func:`_prune_first`)."""
    run_dir = Path(run_dir)
    refuse_copied_current(run_dir)
    kept: set[str] = set()

    def fill(tmp: Path) -> None:
        write(tmp)
        base = trained_folder(_record_checksums(tmp, progress, hashed))
        if base:
            kept.add(base)

    with run_lock(run_dir, command):
        try:
            before = current_link(run_dir) if os.path.islink(run_dir / "current") else ""
            if before:
                kept.add(before)
            added = _added_held(run_dir)  # (read before the prune, which may remove the last of them)
            if links:  # (the folders holding added users or movies kept for the prune after, which says it)
                _prune_first(run_dir, before, _not_served(run_dir, before, added))
            out = publish_generation(run_dir, ARTIFACTS, fill, KEEP, kept)
            _warn_added_pruned(run_dir, added, out)
            if before.startswith(ARTIFACTS):  # a review: a notebook's save() replaced the CLI's run without a word
                base = next((n for n in kept if n != before and (run_dir / n).is_dir()), None)
                logging.getLogger("embedrec").info(
                    "%s now serves the new %s; the one it served before (%s) is kept beside it until a later publish "
                    "prunes it%s", run_dir, "index" if "index" in command else "model", before,
                    f", and the trained model its updates are built on ({base}) while a model updated from it is "
                    "served" if base else "")
                _warn_shrunk(run_dir, before, out)
                if command == "embedrec train":
                    _note_width(run_dir, before, out)
                warn_updates_dropped(run_dir, before, out)
            return out
        except OSError as e:
            if io_error(e, run_dir, "choose another run.dir") is not None:
                raise io_error(e, run_dir, "choose another run.dir") from None
            raise


def _not_served(run_dir: Path, before: str, added: dict) -> set[str]:
    """The model folders (of :func:`_added_held`'s ``added``) holding users or movies update-users added that the
    model served (``before``) does not hold, or whose ids do not read: after a roll-back to the trained model, the
    first update's folder (a linear run's updates each carry the earlier ones' on, so none)."""
    out = set()
    for kind, held in added.items():
        served = _ids(run_dir / before, kind) if before else None
        for name, (_, ids, _) in held.items():
            if ids is None or served is None or not np.isin(ids, served).all():
                out.add(name)
    return out


def _prune_first(run_dir: Path, before: str, spared: set[str] = frozenset()) -> None:
    """Prune, before a writer links files of the model served into a new folder, the folders its publish would
    prune after (the newest KEEP - 1 kept, with the one served and the trained model it is built on): removing a
    link moves the ctime of the file every other folder shares, so a prune after the new folder recorded its stat
    keys would leave them stale, and every reader of a large file would hash it again on open. Said by the prune
    after the publish, which runs as before (a folder kept for a reason is warned of there). ``spared``: folders
    holding users or movies update-users added, left to that prune, which says what it removes of them; pruned
    here, a writer that then failed (a file-size limit, SIGTERM, kill -9) had removed the last folder holding them
    without a word (a red team)."""
    from embedrec.fsutil.generations import prune_generations

    keep = {before} if before else set()
    try:
        base = trained_folder(read_json(run_dir / before / MANIFEST, "run manifest")) if before else None
    except (ArtifactError, OSError):
        base = None
    if base:
        keep.add(base)
    prune_generations(run_dir, ARTIFACTS, keep | set(spared), KEEP - 1, warn=False)


# what update-users adds to a model folder, by kind: (its records' count key, the id table, the trained rows' count,
# how to add them again): a prune that removes the last folder holding some says so (_warn_added_pruned)
_ADDED = {"user": ("users_added", USER_IDS, trained_users, "update-users"),
          "movie": ("movies_added", MOVIE_IDS, trained_movies,
                    "«update-users --new-movies|update_users(..., new_movies=True)»")}


def _added_held(run_dir: Path) -> dict[str, dict[str, tuple[int, np.ndarray | None, list[str]]]]:
    """{kind ("user", "movie"): {model folder: (how many update-users added to it, their ids, its update files)}}
    of the run's model folders that hold users (movies: ``--new-movies``) an update added: what
    :func:`_warn_added_pruned` names once the last folder holding some of them is pruned. A folder whose manifest
    does not read as update-users writes it is left out; ids None where its id table does not read them (a small
    read each: the manifests, and the ids' tail memory-mapped)."""
    out: dict = {kind: {} for kind in _ADDED}
    for p in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if not MODEL_FOLDER.fullmatch(p.name) or p.is_symlink():
            continue
        for kind in _ADDED:
            got = _added_of(p, kind)
            if got is not None:
                n, m, sources = got
                out[kind][p.name] = (n, _added_ids(p, m, kind), sources)
    return out


def _added_ids(folder: Path, m: dict, kind: str) -> np.ndarray | None:
    """The ids of the users (``kind`` "user") or movies update-users added to a model folder (its id table's rows
    after the trained ones), or None where they do not read."""
    _, table, trained, _ = _ADDED[kind]
    if not isinstance(m.get(f"n_{kind}s"), int) or isinstance(m.get(f"n_{kind}s"), bool):
        return None
    try:
        return np.array(np.load(folder / table, mmap_mode="r", allow_pickle=False)[trained(m):])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _ids(folder: Path, kind: str) -> np.ndarray | None:
    """Every user (``kind`` "user") or movie id a model folder serves (the trained ones and those update-users
    added), or None where they do not read."""
    try:
        return np.array(np.load(folder / _ADDED[kind][1], mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _added_of(folder: Path, kind: str) -> tuple[int, dict, list[str]] | None:
    """(how many users (``kind`` "user") or movies update-users added, the manifest, its update files each once) of
    a model folder whose manifest records some; None where it records none or does not read as update-users writes
    it (its files: run_updates.update_sources). Read for a warning alone, so what does not read is left out, never
    an error (a review: a record's ``"ratings": "x"`` made every publish on the run, train, update-users and index
    rebuild alike, an internal error)."""
    try:
        m = read_json(folder / MANIFEST, "run manifest")
    except (ArtifactError, OSError):
        return None
    key = _ADDED[kind][0]
    n, sources = (updates_summary(m) or {}).get(key, 0), update_sources(m)
    if not n or sources is None:
        return None
    # the files of the updates that added that kind (a diff review: a file that added users alone was named as one
    # to add the movies again with)
    return n, m, list(dict.fromkeys(src for rec, src in zip(updates_of(m), sources) if rec.get(key)))


def _holds_added(folder: Path, kind: str) -> bool:
    """Whether a model folder's manifest records users (``kind`` "user") or movies update-users added, whatever its
    update files' records read as (a review: a new folder whose record's source did not read counted as holding
    none, a false warning)."""
    try:
        return bool((updates_summary(read_json(folder / MANIFEST, "run manifest")) or {}).get(_ADDED[kind][0]))
    except (ArtifactError, OSError, AttributeError, TypeError, ValueError):
        return False


def _lost(added: dict, gone: list[str], new: Path, kind: str) -> list[tuple[str, int, list[str]]] | None:
    """(pruned folder, how many of its added users (``kind`` "user") or movies no model folder left holds, the
    first few of their ids) for each pruned folder holding such, newest last: ``added`` (of that kind) less the ids
    every folder left holds, the new one's among them. None where that cannot be told (a folder left that holds
    added ones whose ids do not read), so nothing is said. A pruned folder whose own ids do not read counts where
    no folder left holds any."""
    left = [added[n][1] for n in added if n not in gone]
    known = _ids(new, kind)  # every user the new model serves: a night's train on the grown data holds the users an
    if known is not None:    # update added that day as its own (an ops review: their loss was said every day)
        left.append(known)
    else:
        got = _added_of(new, kind)
        if got is not None:
            left.append(_added_ids(new, got[1], kind))
        elif _holds_added(new, kind):
            return None
    if any(ids is None for ids in left):
        return None
    held = np.concatenate(left) if left else None
    out = []
    for name in gone:
        n, ids, _ = added[name]
        if ids is None:
            if not left:
                out.append((name, n, []))
            continue
        lost = ids if held is None else ids[~np.isin(ids, held)]
        if len(lost):
            out.append((name, len(lost), [str(i) for i in lost[:5]]))
            held = lost if held is None else np.concatenate([held, lost])  # said once, by the first folder
    return out


def _warn_added_pruned(run_dir: Path, added: dict, new: Path) -> None:
    """A warning, of each kind, where the prune of a publish removed the last model folder holding users (movies:
    ``--new-movies``) update-users added (``added``: :func:`_added_held` before it) that no folder left holds, the
    new one included: those users' vectors (movies' rows) are gone from the run (a red team: a second train pruned
    it without a word, where the first said it was kept until a later publish prunes it; and after a roll-back to
    the trained model, a second update pruned the first update's folder, its users in no other, without a word; a
    review: a prune of added movies spoke of their users alone)."""
    for kind, held in added.items():
        gone = sorted(n for n in held if not (run_dir / n).exists())
        lost = _lost(held, gone, new, kind) if gone else None
        if not lost:
            continue
        n = sum(k for _, k, _ in lost)
        ids = [i for _, _, got in lost for i in got][:5]
        folders = [f for f, _, _ in lost]
        sources = list(dict.fromkeys(s for f in folders for s in held[f][2]))
        shown = ", ".join(f"'{i}'" for i in ids) + (f" and {n - len(ids):,} more" if n > len(ids) else "")
        logging.getLogger("embedrec").warning(
            "%s: pruned %s, the last model folder%s holding the %s %s%s update-users added (%s), so the run no "
            f"longer holds %s; to add %s again, run {_ADDED[kind][3]} again with %s", run_dir,
            " and ".join(folders) if len(folders) < 3 else ", ".join(folders[:-1]) + " and " + folders[-1],
            "s" if len(folders) > 1 else "", f"{n:,}", kind, "" if n == 1 else "s", shown or "their ids unread",
            "it" if n == 1 else "them", "it" if n == 1 else "them",
            ", ".join(sources[:3]) + (" ..." if len(sources) > 3 else ""), extra={"marks_only": True})


def _note_width(run_dir: Path, before: str, new: Path) -> None:
    """A note where a train published embeddings of another width than the model it replaced (an ops review: a
    nightly job's `auto` settings chose 256, 128, 768 ... dimensions night by night on each night's valid split,
    which broke a consumer of `export --to parquet` without a word): the widths, and how to keep one."""
    try:
        old_w, new_w = (np.load(f / MOVIE_FACTORS, mmap_mode="r", allow_pickle=False).shape[1]
                        for f in (run_dir / before, new))
    except (OSError, ValueError, IndexError):
        return
    if old_w != new_w:
        logging.getLogger("embedrec").info(
            "note: %s's embeddings are %d wide now, where the model it replaced (%s) had %d, which a reader of its "
            "exported embeddings sees; where the `auto` settings (train.als_dims, train.als_lowpass) chose the width "
            "on this data's valid split, keep one from run to run by training with a copy of the config a model "
            "recorded: this one's (cp %s pinned.yaml) or, for the earlier width, the replaced one's (cp %s "
            "pinned.yaml, kept until the next publish), then «train -c pinned.yaml|er.load_config('pinned.yaml')»",
            run_dir, new_w, before, old_w, run_dir / "current" / CONFIG, run_dir / before / CONFIG)


def _warn_shrunk(run_dir: Path, before: str, new: Path) -> None:
    """A warning where the model just published knows under half the users or movies of the one it replaced (an
    ops review: a day's file of new users alone, ingested as the whole data, replaced a 20,000-user model with a
    300-user one, exit 0 and no word); the users update-users added to the one replaced are not counted against the
    new one (a train drops them by design, which :func:`warn_updates_dropped` says). Nothing where either manifest
    does not read."""
    try:
        old_m, new_m = (read_json(f / MANIFEST, "run manifest") for f in (run_dir / before, new))
        counts = [(int(old_m[k]), int(new_m[k])) for k in ("n_users", "n_movies")]
        trained = trained_users(old_m)  # the users update-users added are not a dataset's: their loss is said apart
    except (ArtifactError, OSError, KeyError, TypeError, ValueError):
        return
    if counts[1][1] < 0.5 * counts[1][0] or counts[0][1] < 0.5 * trained:
        (ou, nu), (om, nm) = counts
        logging.getLogger("embedrec").warning(
            "%s now serves a model of %s users x %s movies, where the one it replaced (%s) had %s x %s: if the data "
            "was cut short, serve that one again (docs/reliability.md, 'Rolling back a model')", run_dir, f"{nu:,}",
            f"{nm:,}", before, f"{ou:,}", f"{om:,}")
