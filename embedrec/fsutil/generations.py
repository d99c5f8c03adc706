"""Generations: ``ROOT/current -> <prefix>-<version>/``. ``publish_generation`` writes one and swaps the link,
``open_current`` resolves the link once and holds that folder (``locks.FolderHold``), and pruning skips held
folders. Runs (run.py) and prepared datasets (data/dataset.py) both live in generations."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import time
from collections.abc import Collection
from pathlib import Path

from embedrec.errors import ArtifactError, sh_quote
from embedrec.fsutil.files import fsync_dir, fsync_tree, pid_alive, probe_json, rmtree
from embedrec.fsutil.integrity import MANIFEST, SEALED_WITH, as_recorded
from embedrec.fsutil.locks import FolderHold, confirm_held, remove_unless_held


def new_version() -> str:
    """A folder version that sorts by time: ``20261130T071500-123456789`` (UTC, then nanoseconds). Not local
    time: a red team's ingests under another TZ (or across a DST change) sorted the newer generation older, and
    pruning removed the one just replaced while an older one stayed."""
    t = time.time_ns()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t // 1_000_000_000)) + f"-{t % 1_000_000_000:09d}"


def current_link(root, link: str = "current", dir_fd: int | None = None) -> str:
    """Where ``root/link`` points (``link`` in the folder open as ``dir_fd``, where given), e.g. ``gen-<version>``;
    '' where it is no link, or there is no such folder (or ``root`` is None)."""
    try:
        return os.readlink(link, dir_fd=dir_fd) if dir_fd is not None else os.readlink(os.path.join(root, link))
    except (OSError, TypeError):
        return ""


# swap_link's temporary name for the new 'current' (or a dataset's link that replaces a file of its flat layout):
# '.<link>.embedrec-tmp-<pid>-<8 hex>', embedrec's own prefix (fsutil.outputs' side files' shape), with a random
# token, where '.<link>.<pid>' was a name a user may give a hidden link ('.x.parquet.123', swept by pruning once
# pid 123 was gone: session 51). A link of that older name a killed writer left stays.
LINK_TMP = re.compile(r"\.(?P<link>current|manifest\.json|[a-z_]+\.parquet)\.embedrec-tmp-(?P<pid>[0-9]+)-[0-9a-f]{8}")


def swap_link(root: Path, name: str, link: str = "current") -> None:
    """Point ``root/link`` at ``name`` atomically (a new symlink renamed over the old one), durably."""
    tmp = root / f".{link}.embedrec-tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.symlink(name, tmp)
    os.replace(tmp, root / link)
    fsync_dir(root)


def publish_generation(root: Path, prefix: str, write, keep: int, also_keep: Collection[str] = ()) -> Path:
    """Call ``write(tmp)`` to fill ``root/.<prefix>-<version>.tmp``, rename it to ``<prefix>-<version>`` and
    point ``root/current`` at it; then prune (``prune_generations``), keeping ``also_keep`` too (the folder
    ``current`` named before: an ops review rolled ``current`` back to an older folder by hand, and the next
    publish pruned it while saying it was kept). ``also_keep`` is read once ``write`` has run, so a writer may
    add to it (run_publish.publish: the trained model an updated one is built on). The caller holds ``root``'s writer
    lock.

    Every file and folder is fsynced before the renames, so after a power cut ``current`` names a complete
    folder: the old one or the new one.
    """
    root = Path(root)
    version = new_version()
    tmp = root / f".{prefix}-{version}.tmp"
    try:
        tmp.mkdir()
        write(tmp)
        fsync_tree(tmp)
        confirm_held()  # the writer lock is still this writer's (a user may have deleted the file)
        final = root / f"{prefix}-{version}"
        os.replace(tmp, final)
        fsync_dir(root)
        swap_link(root, final.name)
    except BaseException:
        rmtree(tmp)
        raise
    prune_generations(root, prefix, {final.name, *also_keep}, keep)
    return final


VERSION = r"[0-9]{8}T[0-9]{6}-[0-9]{9}"  # what new_version() gives


def prune_generations(root: Path, prefix: str, keep_names: set[str], keep: int, warn: bool = True) -> None:
    """Remove older ``<prefix>-<version>`` folders, keeping the newest ``keep``, ``keep_names``, the one
    ``current`` names and any a live reader holds (FolderHold); and every ``.<prefix>-<version>.tmp`` folder
    and swap_link's new link of a writer that is gone (``LINK_TMP``, pointing where swap_link points one:
    :func:`_stale_link`; called under the writer lock, so those are a killed writer's leftovers). Only names exactly as
    publish_generation makes them, real folders, not links: a user's ``gen-...-backup`` copy beside them stays;
    and only folders holding what their manifest lists, or nothing: any other is kept, with a warning of why
    (:func:`not_ours`; ``warn``: False where a later prune says it)."""
    root = Path(root)
    name = re.compile(re.escape(prefix) + "-" + VERSION)
    tmp = re.compile(r"\." + re.escape(prefix) + "-" + VERSION + r"\.tmp")
    try:
        keep_names = keep_names | {os.path.basename(os.readlink(root / "current"))}
    except OSError:
        pass

    def ours(p: Path, pattern) -> bool:
        return pattern.fullmatch(p.name) is not None and p.is_dir() and not p.is_symlink()

    try:
        entries = list(root.iterdir())
    except OSError:
        return
    # newest by when each was written (its manifest, written last before the rename), then by name: names made
    # in local time before they were UTC sort wrongly east of UTC (a review: after the switch the model just
    # replaced was pruned and the older ones kept)
    folders = sorted((p for p in entries if ours(p, name)), key=lambda p: (_written(p), p.name))
    for p in folders[:-keep] if keep > 0 else folders:
        if p.name not in keep_names:
            why = not_ours(p)
            if why:  # a red team: a user's notes put in a generation went with it, without a word
                if warn:
                    logging.getLogger("embedrec").warning("kept the old folder '%s': %s", p, why)
                continue
            remove_unless_held(p)
    for p in entries:
        if ours(p, tmp) and p.name not in keep_names:
            rmtree(p)
        elif _stale_link(p, name):  # swap_link's new link, its writer killed before the rename (the fault
            with contextlib.suppress(OSError):  # suite's kill -9 found one)
                p.unlink()


def _stale_link(p: Path, generation: re.Pattern) -> bool:
    """Whether ``p`` is a new link swap_link made and its writer (another process, gone) left: of its name
    (``LINK_TMP``), pointing where swap_link points one, a generation (``generation``: its names) for 'current',
    ``current/<link>`` for a dataset's link that replaces a file of its flat layout. A user's link of any other
    name or target stays."""
    m = LINK_TMP.fullmatch(p.name)
    if m is None:
        return False
    try:
        target = os.readlink(p)
    except OSError:  # (no link)
        return False
    link, pid = m["link"], int(m["pid"])
    points = generation.fullmatch(target) is not None if link == "current" else target == f"current/{link}"
    return points and pid != os.getpid() and not pid_alive(pid)


def _written(folder: Path) -> int:
    """When ``folder`` (a generation) was written: its manifest's mtime, else its own; 0 when neither reads."""
    for p in (folder / MANIFEST, folder):
        try:
            return p.stat().st_mtime_ns
        except OSError:
            continue
    return 0


def listed_names(m) -> set[str] | None:
    """The names a generation's manifest (its content, ``m``) lists as its own, manifest.json with them; None where
    it lists none: not JSON, not an object, or from before manifests listed their files (a run's under checksums,
    a dataset's under files; an older run's ``files`` named only some of them)."""
    if not isinstance(m, dict):
        return None
    listed = m.get(SEALED_WITH["run" if "n_users" in m else "dataset"])
    if not isinstance(listed, dict) or not listed:
        return None
    return {str(n) for n in listed} | {MANIFEST}


# the names of the files embedrec writes in a run's or a dataset's generation (its arrays, indexes, tables, state
# dict, metrics, catalogue, config and manifest): a folder holding these alone is embedrec's, listed or not
_WRITTEN = re.compile(r"[A-Za-z0-9_.-]+\.(?:npy|faiss|parquet|pt)|metrics\.jsonl?|movies\.json|config\.yaml|"
                      r"manifest\.json")


def not_files(folder: Path, names: list[str]) -> dict[str, str]:
    """{name: 'name/' or 'name (a link)', ...} for the entries of ``folder`` that are not regular files (a folder,
    a link, a FIFO): embedrec writes none in a generation, so such an entry is a user's, whatever its name (a red
    team: Spark's results.parquet/ folder went with a generation whose manifest was lost)."""
    import stat

    odd = {}
    for n in names:
        try:
            mode = os.lstat(folder / n).st_mode
        except FileNotFoundError:
            continue
        except OSError:
            mode = 0  # (not to be read: not known to be ours)
        if not stat.S_ISREG(mode):
            odd[n] = n + "/" if stat.S_ISDIR(mode) else f"{n} (a link)" if stat.S_ISLNK(mode) else \
                f"{n} ({'a FIFO' if stat.S_ISFIFO(mode) else 'not a file'})"
    return odd


def changed_files(folder: Path, m=None, *hash_max: int, only=None) -> list[str]:
    """The files of a generation (or a flat dataset) its manifest lists, with their size and SHA-256, that no
    longer hold those bytes (:func:`integrity.as_recorded`): a user's edit in place, which removing the folder would
    lose (a red team: ingest --overwrite deleted a train.parquet the user had overwritten, where export --overwrite
    refuses the same). ``m``: the manifest's content, where read already; ``hash_max``: integrity.as_recorded's
    (0: sizes alone); ``only``: a test of a name, the files it passes alone compared (a regular file where a
    dataset keeps a link: no link followed and hashed). None where it lists none."""
    m = probe_json(folder / MANIFEST) if m is None else m
    if listed_names(m) is None:
        return []
    entries = m[SEALED_WITH["run" if "n_users" in m else "dataset"]]
    return [n for n, entry in sorted(entries.items())
            if (only is None or only(n)) and not as_recorded(folder / n, entry, *hash_max)]


def not_ours(folder: Path) -> str | None:
    """Why pruning must keep an old generation folder (the rest of the warning that names it), or None where all
    it holds is embedrec's: files its manifest lists, as it recorded them, its manifest alone, nothing at all,
    or, where its manifest is missing, unreadable or lists no files, only files of names embedrec writes
    (``_WRITTEN``). One holding other files, or a folder, a link or a FIFO (embedrec writes none there), may hold
    a user's (a review: a generation whose manifest was gone was removed with notes.txt in it), and so may one
    holding a listed file of other bytes than its manifest records (a user's edit); the words say how to remove
    it by hand."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None  # gone already, or not ours to read: remove_unless_held does nothing to what it cannot open
    odd = not_files(folder, names)
    if not names or names == [MANIFEST] and not odd:  # nothing, or a manifest alone: nothing of a user's
        return None
    manifest = folder / MANIFEST
    m = probe_json(manifest)
    listed = listed_names(m)
    if listed is not None:
        foreign = [odd.get(n, n) for n in names if n not in listed or n in odd]
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            return (f"it holds files embedrec did not write ({shown}); move them out of it, and the next write "
                    "removes it")
        changed = changed_files(folder, m)
        if not changed:
            return None
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        one = len(changed) == 1
        return (f"it holds {'a file' if one else 'files'} embedrec wrote but someone changed since ({shown}: not the "
                f"bytes its manifest records); move {'it' if one else 'them'} out of it, and the next write removes "
                "it")
    if not odd and all(_WRITTEN.fullmatch(n) for n in names):  # no list to check, but every entry is a file of a
        # name embedrec writes (an earlier embedrec's generation, or one whose manifest was lost): nothing of a
        # user's to lose (a review: such generations were kept, warned of at every publish)
        return None
    if not os.path.lexists(manifest):
        state = "has no manifest.json"
    elif not isinstance(m, dict):
        state = "has a manifest.json that cannot be read (damaged, or not a file)"
    else:
        state = "has a manifest.json from an earlier embedrec, which does not list its files"
    return (f"it {state}, so which of its files embedrec wrote cannot be told; look in it, and remove it "
            f"(rm -r {sh_quote(str(folder))}) if nothing there is yours")


def inside_name(root, link: str, name: str) -> str:
    """The folder beside it that ``root/link`` names (its text ``name``: 'artifacts-X', 'artifacts-X/',
    './gen-X', or an absolute path to it); an ArtifactError for a link that leads anywhere else (a red team: a
    run's current re-pointed into another run served that model, and verify passed it)."""
    # normpath only of the link's own text ('gen-X/', './gen-X'): a root of 'ln/../ds', ln a link, is where ln's
    # target's parent is, which normpath would take for '.' (found with `train --set data.prepared=ln/../ds`)
    target = os.path.join(root, os.path.normpath(name))
    here = os.path.realpath(root)
    if os.path.dirname(os.path.realpath(target)) != here or os.path.basename(target) in ("", os.curdir, os.pardir):
        if os.path.islink(target) and os.path.dirname(os.path.abspath(target)) == os.path.abspath(root):
            # the folder it names is beside it, itself a link leading out (a red team: said as 'outside' of a name
            # that is inside; a generation moved to another disk and linked back)
            raise ArtifactError(f"'{target}' is a link to '{os.readlink(target)}': the {link} of a run or dataset "
                                f"names a folder in it, not a link leading out of it (a generation moved elsewhere: "
                                f"move it back into '{root}'), or train (ingest) it again")
        raise ArtifactError(f"'{Path(root) / link}' points to '{name}', outside '{root}': a run's or dataset's "
                            f"{link} link names one of the folders beside it (ln -sfn NAME {link}, with a folder "
                            "there), or train (ingest) it again")
    return os.path.basename(target)


def check_current(root) -> None:
    """Refuse ``root/current`` when it is a link that leads out of ``root`` (:func:`inside_name`); nothing when
    it is no link (a folder copied with links followed, or none)."""
    try:
        name = os.readlink(Path(root) / "current")
    except OSError:
        return
    inside_name(root, "current", name)


def open_current(root: Path, link: str = "current", tries: int = 5,
                 root_fd: int | None = None) -> tuple[Path, FolderHold | None] | None:
    """(folder, hold) for the folder ``root/link`` names, resolved once and held against pruning; ``link``
    may also be a plain folder. ``root_fd`` (an open handle of ``root``) resolves relative to it. None when
    the link kept being replaced or pruned under us (``tries`` times); hold None where flock is unsupported."""
    for _ in range(tries):
        try:
            name = os.readlink(link, dir_fd=root_fd) if root_fd is not None else os.readlink(Path(root) / link)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: a plain folder, not a link
                raise
            name = link
        if name != link:
            name = inside_name(root, link, name)
        path = Path(root) / name
        try:
            return path, FolderHold(name if root_fd is not None else path, dir_fd=root_fd)
        except (FileNotFoundError, BlockingIOError):  # pruned between readlink and open: resolve again
            continue
        except OSError:
            return path, None  # a file system without flock: read unprotected
    return None
