"""Outputs a user names (``--out DIR``, ``export --topk-all FILE``): written under a temporary name beside the
target and renamed into place, behind the target's writer lock; ``--overwrite`` replaces only what embedrec
wrote (a folder holding anything else is refused)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from embedrec.errors import Busy, EmbedrecError, OutputExists, OutputRefused
from embedrec.fsutil.files import (
    fsync_dir,
    fsync_tree,
    glob_escape,
    io_error,
    note_made,
    pid_alive,
    probe_json,
    real_dir,
    rmtree,
    side_stem,
    tempfile_module,
    umask,
)
from embedrec.fsutil.integrity import MANIFEST
from embedrec.fsutil.locks import confirm_held, drop_stale_lock, is_target_lock, target_lock

log = logging.getLogger("embedrec")


@contextlib.contextmanager
def atomic_dir(target: str | Path, overwrite: bool = False, ours=None, command: str = "embedrec",
               fix: str = "choose another output folder") -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; on success it replaces ``target``.

    On any exception (Ctrl-C included) the temporary directory is removed and ``target`` is untouched.
    ``overwrite`` replaces only a folder embedrec wrote: ``ours(folder)`` says whether it is one (an empty
    folder always is). Writers of one target are serialised by a lock file next to it, and the temporary
    folders a killed writer left behind are removed by the next one. The swap is one atomic exchange
    (renameat2 RENAME_EXCHANGE where the OS has it), so ``target`` always exists for readers.
    """
    target = through_missing(Path(target))
    refuse_link_loop(target, fix)
    refuse_inside_store(target)  # as given, then where a link leads
    link = None
    if target.is_symlink() and target.is_dir():
        # a link to a folder (latest -> exports/v3): the folder it names is replaced and the link kept (a red
        # team: the link itself was swapped for a folder, and a temporary link left beside it for ever)
        sweep_stale(target)  # beside the link: the temporary links an earlier embedrec left there
        link, target = target, Path(os.path.realpath(target))
    refuse_cwd(target)
    refuse_inside_store(target, link=link)
    drop_stale_lock(target, command)
    if target.exists() and not overwrite:
        check_replaceable(target, ours)  # a folder --overwrite would refuse says so now, not after the retry
        raise OutputExists(f"output directory '{target}' already exists; pass «--overwrite|overwrite=True» to replace it, "
                            "or choose another path")
    refuse_dangling(target)
    if target.exists():
        check_replaceable(target, ours)
        if os.path.ismount(target):  # swapped in by a rename, which a mount point refuses (EBUSY)
            raise OutputRefused(f"'{target}' is a mount point, which embedrec cannot replace (it writes a new "
                                f"folder beside it and renames it over); write into a folder inside it, e.g. "
                                f"'{target / target.name}'")
    made = _make_parent(target, fix)
    with _undone_on_failure(made), target_lock(target, command, fix):
        sweep_stale(target)
        before: set[str] | None = set()  # what target holds under the lock (None: it cannot be listed)
        if target.exists():  # again, under the lock: another writer may have created it meanwhile
            check_replaceable(target, ours)
            before = _listing(target)
        try:
            tmp = Path(tempfile_module().mkdtemp(prefix=f".{side_stem(target.name)}.{TMP}-{os.getpid()}-",
                                                 dir=real_dir(target.parent)))
        except OSError as e:
            raise (io_error(e, target.parent, fix) or e) from None
        os.chmod(tmp, 0o777 & ~umask())
        try:
            yield tmp
            fsync_tree(tmp)
            confirm_held()
            if target.exists():
                _refuse_arrivals(target, before)  # what another process wrote into it meanwhile is not replaced
                if not _exchange(tmp, target):
                    # the pid and 8 random characters, as mkdtemp's: a user's '.ds.old-2023' is not one (a review)
                    old = target.parent / f".{side_stem(target.name)}.{OLD}-{os.getpid()}-{secrets.token_hex(4)}"
                    os.replace(target, old)
                    os.replace(tmp, target)
                    tmp = old
                fsync_dir(target.parent)
                new = _arrived(tmp, before)
                if new:  # in the instant between the check and the swap: kept under a name no sweep removes, said
                    kept = target.parent / f"{target.name}.replaced-{secrets.token_hex(4)}"
                    os.replace(tmp, kept)
                    tmp = None
                    log.warning("kept the folder '%s' replaced, as '%s': %s appeared in it while it was replaced; "
                                "move what is yours out of it, then remove it", target, kept, new)
                else:
                    rmtree(tmp)  # now the previous contents
            else:
                os.replace(tmp, target)
                fsync_dir(target.parent)
        except BaseException as e:
            if tmp is not None:
                rmtree(tmp)
            err = io_error(e, target, fix) if isinstance(e, OSError) else None
            if err is not None:
                raise err from None
            raise


def _listing(folder: Path) -> set[str] | None:
    """The relative paths under ``folder`` (None where it cannot be listed): what a replace is checked against."""
    try:
        return {str(p.relative_to(folder)) for p in folder.rglob("*")}
    except OSError:
        return None


def _arrived(folder: Path, before: set[str] | None) -> str:
    """The first few of what is under ``folder`` now and was not in ``before`` ('notes.txt, top.csv'), '' where
    nothing (or ``before`` is unknown)."""
    if before is None:
        return ""
    now = _listing(folder)
    new = sorted((now or set()) - before)
    shown = ", ".join(f"'{shorten_name(n)}'" for n in new[:3])
    return shown + (f" and {len(new) - 3} more" if len(new) > 3 else "")


def _refuse_arrivals(target: Path, before: set[str] | None) -> None:
    """Busy where files appeared in ``target`` while its replacement was written (a red team: another command's
    output, or a user's own file, written into an export folder that `--overwrite` replaced, was deleted with the
    old contents, both commands exiting 0): nothing is replaced, and a rerun is the way on."""
    new = _arrived(target, before)
    if new:
        raise Busy(f"'{target}': {new} appeared in it while this command wrote its replacement (another command, or "
                   "you, writing there); nothing was replaced: move what is yours out of it, then run this again")


def refuse_link_loop(target: Path, fix: str) -> None:
    """A symbolic link that leads back to itself (a -> b -> a) names no file or folder: refused, naming it (a
    review: a folder output's was an internal error, a file output's was called a link to nothing)."""
    if not target.is_symlink():
        return
    try:
        os.stat(target)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OutputRefused(f"'{target}' is a loop of symbolic links ('{target}' -> '{os.readlink(target)}' -> "
                                f"...); remove the links, or {fix}") from None


_GENERATION = re.compile(r"(artifacts|gen)-\d{8}T\d{6}-\d+")  # run_publish.publish's and dataset.publish_dataset's folders


def refuse_inside_store(target: Path, beside_run: bool = False, fix: str = "write it outside that folder",
                        link: Path | None = None) -> None:
    """Refuse an output inside a run's or a prepared dataset's folder: beside its ``current``, or in one of its
    generations (a review: ``export --topk-all runs/x/current/users.parquet --overwrite`` replaced a run's file,
    and an output beside a dataset's links replaced one of them). ``beside_run``: a folder beside a run's
    ``current`` is allowed (tune-dims' RUN/tune), never one in its model folders or in a dataset. ``fix``: the
    message's advice. ``link``: the link the output was named by, where ``target`` is where it leads (said as
    "'LINK' (a link to 'TARGET') is inside ...")."""
    said = f"'{link}' (a link to '{target}')" if link is not None else f"'{target}'"
    if target.name in ("", ".."):  # '.' or '..' (Path('..').parent is '.'): the folder as the file system finds
        target = Path(os.path.realpath(target))  # it (a red team: `--run .` inside a run was called inside itself)
    seen = set()  # the folder as written with '..' taken away ('runs/x/../top.csv' is beside runs/x), and resolved
    for start in (Path(os.path.abspath(target.parent)), Path(os.path.realpath(target.parent))):
        for d in (start, *start.parents):  # every folder above (a red team: 3 levels down was written)
            if d in seen:
                continue
            seen.add(d)
            kind = _embedrec_kind(d) if (d / "current").is_symlink() else None
            if beside_run and kind is not None and "run" in kind:
                kind = None
            if kind is None and _GENERATION.fullmatch(d.name) and (d / MANIFEST).is_file():
                kind = _embedrec_kind(d) or "embedrec's"
            if kind is None and not d.is_symlink() and (d / MANIFEST).is_file() and \
                    not os.path.lexists(d / "current") and _run_manifest(probe_json(d / MANIFEST)):
                kind = "a model folder of an embedrec run"  # copied out of it (cp -rL runs/x/current m1): read-only
            if kind:
                raise OutputRefused(f"{said} is inside '{d}', {kind}: a file written there would replace or "
                                    f"sit among the files embedrec keeps in it; {fix}")


def refuse_inside_store_through(target: Path, fix: str = "write it outside that folder") -> None:
    """:func:`refuse_inside_store` of ``target`` as given and, where it is a symbolic link, of the folder or file it
    leads to, as :func:`atomic_dir` resolves a link (``export -o LINK``): for a writer that fills the folder a link
    names in place (a dataset's generations; a red team: `ingest -o LINK --overwrite`, LINK -> DATASET/gen-X, built
    a dataset inside that generation and swapped its files for links, and DATASET served the new data)."""
    refuse_inside_store(target, fix=fix)
    if target.is_symlink():
        refuse_inside_store(Path(os.path.realpath(target)), fix=fix, link=target)


def refuse_foreign_files(folder: Path, ours: Callable[[str], bool], *, named: str, writer: str, writes: str,
                         fix: str, where: str, error: type[EmbedrecError] = OutputRefused,
                         vet: Callable[[list[str]], list[str]] | None = None) -> None:
    """The folder a writer of many files fills (a cross-validation's, tune-dims'), refused unless it is new, empty
    or holds only that writer's files: the names ``ours(name)`` takes, and its hidden ones (its lock, the
    temporaries a writer killed while saving leaves and the next one replaces: :func:`_ours_hidden`; a user's
    .bashrc is foreign). ``vet(names)``, where every name is the writer's: those of them to refuse still (tune-dims: a tune.json
    that is not a sweep's record). Said as '``named`` '``folder``' holds files ``writer`` did not write (the first
    three); ``writes``: choose a new or empty folder ``where``', an ``error``; a path that is not a folder as
    '... is not a folder; ``fix``', an unreadable folder by :func:`io_error` with ``fix``."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise error(f"{named} '{folder}' is not a folder; {fix}")
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise (io_error(e, folder, fix) or e) from None
    foreign = [n for n in names if not ours(n) and not (n.startswith(".") and _ours_hidden(n))]
    if not foreign and vet is not None:
        foreign = vet(names)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise error(f"{named} '{folder}' holds files {writer} did not write ({shown}); {writes}: choose a new or "
                    f"empty folder {where}")


# a writer's own hidden names in a folder of its outputs: its lock, and the temporaries a killed writer leaves
# ('.<name>.embedrec-tmp-<pid>-...', '.<name>.embedrec-old-...', mkstemp's '.<name>.XXXXXXXX')
_HIDDEN_OURS = re.compile(r"\.lock|\..+\.(embedrec-tmp|embedrec-old)-.+|\..+\.[a-z0-9_]{8}")


def _ours_hidden(name: str) -> bool:
    """Whether hidden ``name`` is one a writer of embedrec's leaves in its folder (:data:`_HIDDEN_OURS`, a file's
    writer lock ``.embedrec.<name>.lock``, a killed probe's ``.embedrec-probe-*``): any other (a home folder's
    .bashrc and .ssh/) is the user's (a red team: cross-validate and tune-dims wrote into a folder holding only such
    files, which every other writer refuses; a review: a stale tune.png lock then refused the sweep's own folder)."""
    return bool(_HIDDEN_OURS.fullmatch(name)) or is_target_lock(name) or name.startswith(PROBE)


def through_missing(target: Path) -> Path:
    """``target`` with each '..' that follows a folder not there taken out with that folder ('a/../b/top.parquet'
    with no 'a': 'b/top.parquet'), as os.path.normpath would, so that the folders an output makes are those its
    note names and a failure removes (a review: 'a' was made, then stayed, and the note named only 'a/../b'). A
    '..' after a folder or link that is there is left to the file system, which follows the link (normpath would
    not; the shell's mkdir -p neither takes 'a/..' out nor finds 'a/..' without 'a')."""
    if ".." not in target.parts:
        return target
    kept: list[str] = []
    for part in target.parts:
        if part == ".." and kept and kept[-1] != ".." and not os.path.lexists(os.path.join(*kept)):
            kept.pop()  # a folder not there: no link, so its '..' is where it would be made
        else:
            kept.append(part)
    return Path(*kept) if kept else Path(".")


def through_missing_key(cfg, key: str):
    """``cfg`` (a Config) with its folder at ``key`` ('run.dir', 'data.prepared') named as it is made: a '..' after
    a folder not there taken out with it (:func:`through_missing`), so that the folder a command makes, locks and
    names is the one every later use of the key finds; ``cfg`` itself where nothing changes (a review: `train --set
    run.dir=a/../x` and `ingest -o a/../x` made 'a' with mkdir -p and left it)."""
    import dataclasses

    section, name = key.split(".")
    part = getattr(cfg, section)
    value = getattr(part, name)
    if not isinstance(value, str) or ".." not in Path(value).parts:
        return cfg
    made = through_missing(Path(value))
    if made == Path(value):
        return cfg
    return dataclasses.replace(cfg, **{section: dataclasses.replace(part, **{name: str(made)})})


def _make_parent(target: Path, fix: str) -> list[Path]:
    """The folders a new ``target`` goes in, made where missing (:func:`output_parent`'s rule), each said in a note;
    a full or read-only disk in one line. Returns the folders made, deepest first, which a failed write removes
    (:func:`remove_made`)."""
    output_parent(target, fix)
    made = [p for p in (target.parent, *target.parent.parents) if not os.path.lexists(p)]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        remove_made(made)
        raise (io_error(e, target.parent, fix) or e) from None
    if made:
        note_made(target)
    return made


def remove_made(made: list[Path]) -> None:
    """Remove the folders made for an output (deepest first: :func:`_make_parent`'s, ingest's) where its write
    failed and they are still empty: a refused or failed output leaves no folder behind (a typo'd path no chain of
    them)."""
    for p in made:
        try:
            p.rmdir()
        except OSError:
            break


@contextlib.contextmanager
def _undone_on_failure(made: list[Path]) -> Iterator[None]:
    """The folders ``made`` for an output, removed (:func:`remove_made`) where its write fails."""
    try:
        yield
    except BaseException:
        remove_made(made)
        raise


def output_parent(target: Path, fix: str) -> None:
    """Whether ``target`` (a file or a folder) can be written where it is named, checked before a writer computes
    anything. One rule for every output of the library and the CLI: the folders it goes in are made where missing
    (as ``mkdir -p``; ingest's, train's and export's folders always were, and a notebook's
    ``topk_all('out/top.parquet')`` works as ``export('npy', 'out/emb')`` does), and said in a note. Refused in one
    line: a file where a folder of the path goes, and a place this user cannot write in (tried with a temporary
    file in the nearest folder that is there: '/proc/x.parquet', a read-only disk)."""
    target = through_missing(Path(target))
    there = target.parent
    while not os.path.lexists(there) and there != there.parent:
        there = there.parent
    if not there.is_dir():
        inside = "" if there == target.parent else f" (for '{target}')"
        if there.is_symlink():  # a review: a link to nothing was said to be 'a file'
            to = os.readlink(there)
            if not there.exists():
                raise OutputRefused(f"'{there}' is a symbolic link to '{to}', which does not exist, where a folder "
                                    f"of the output path goes{inside}; create that folder, remove the link, or {fix}")
            raise OutputRefused(f"'{there}' is a symbolic link to the file '{to}', where a folder of the output "
                                f"path goes{inside}; {fix}")
        raise OutputRefused(f"'{there}' is a file, where a folder of the output path goes{inside}; {fix}")
    try:
        _probe(real_dir(there))
    except OSError as e:
        err = io_error(OSError(e.errno, e.strerror), there, fix)
        if err is not None:
            raise err from None
        raise OutputRefused(f"'{target}': files cannot be made in '{there}' ({e.strerror}); {fix}") from None


PROBE = ".embedrec-probe-"  # the name of a probe where the file system makes no unnamed file (O_TMPFILE)


def _probe(folder: str) -> None:
    """Make a file in ``folder`` and remove it (an OSError where none can be made): an unnamed one (O_TMPFILE), which
    a kill cannot leave behind (a red team: kill -9 at export's probe left '.embedrec-probe-XXXX' in the user's
    folder); where the file system makes none, a named one, ``PROBE<pid>-...``, which a later probe removes once
    its process is gone."""
    import tempfile

    for p in Path(folder).glob(f"{PROBE}*-*"):  # those of a killed probe (its pid gone)
        pid = p.name[len(PROBE):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)) and p.is_file() and \
                not p.is_symlink():
            with contextlib.suppress(OSError):
                p.unlink()
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            os.close(os.open(folder, flag | os.O_WRONLY, 0o600))
            return
        except OSError as e:  # a file system (or kernel) without unnamed files: a named probe below
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP):
                raise
    with tempfile.NamedTemporaryFile(dir=folder, prefix=f"{PROBE}{os.getpid()}-"):
        pass


@contextlib.contextmanager
def atomic_file(target: str | Path, overwrite: bool = False, command: str = "embedrec",
                fix: str = "choose another output file", suffix: str = "", beside_run: bool = False,
                ours: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield the path of a new empty temporary file next to ``target``; on success it is renamed over ``target``.

    The file counterpart of ``atomic_dir``: writers of one target are serialised by the same lock file beside it
    (a second one gets one line naming the first), each writer has a temporary name of its own (no writer can
    rename another's half-written file into place) and the ones a killed writer left are removed by the next.
    ``suffix`` ends the temporary name (for writers that pick a format by extension). ``beside_run``: see
    :func:`refuse_inside_store`. ``ours(target)``: whether an existing target is what this writer writes, which
    ``overwrite`` may replace; anything else is refused (a red team: `export --topk-all mydata.csv --overwrite`
    replaced the user's ratings file). On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = through_missing(Path(target))
    refuse_link_loop(target, fix)
    refuse_inside_store(target, beside_run)  # as given (a dataset's compatibility link names the dataset), then
    if target.is_symlink() and not target.exists():  # a red team: a link to nothing counted as no file, and the
        # link was replaced by the output (as a folder output's dangling link is refused)
        raise OutputRefused(f"'{target}' is a symbolic link to '{os.readlink(target)}', which does not exist; remove "
                            f"the link, or {fix}")
    if target.is_symlink() and target.is_file():  # resolved: a link to a file: the file it names is replaced, the
        target = Path(os.path.realpath(target))  # link kept
        refuse_inside_store(target, beside_run)
    if target.is_dir():
        raise OutputRefused(f"'{target}' is a folder, not a file; {fix}")
    drop_stale_lock(target, command)
    check_file_replaceable(target, overwrite, ours, fix)
    made = _make_parent(target, fix)
    with _undone_on_failure(made), target_lock(target, command, fix):
        sweep_stale(target)
        if target.is_dir():  # again, under the lock: another writer may have made it meanwhile
            raise OutputRefused(f"'{target}' is a folder, not a file; {fix}")
        check_file_replaceable(target, overwrite, ours, fix)
        try:
            fd, name = tempfile_module().mkstemp(prefix=f".{side_stem(target.name)}.{TMP}-{os.getpid()}-", suffix=suffix,
                                                 dir=real_dir(target.parent))
        except OSError as e:
            raise (io_error(e, target.parent, fix) or e) from None
        os.close(fd)
        tmp = Path(name)
        try:
            os.chmod(tmp, 0o666 & ~umask())
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            confirm_held()
            os.replace(tmp, target)
            fsync_dir(target.parent)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            err = io_error(e, target, fix) if isinstance(e, OSError) else None
            if err is not None:
                raise err from None
            raise


def check_file_replaceable(target: Path, overwrite: bool, ours: Callable[[Path], bool] | None, fix: str) -> None:
    """An existing output file needs ``overwrite``, and, where the writer can tell its own files (``ours``), to
    be one: a file of the user's is never replaced (an empty one is nothing to lose)."""
    if not target.exists():
        return
    if not overwrite:
        raise OutputExists(f"'{target}' already exists; pass «--overwrite|overwrite=True» to replace it")
    try:
        empty = target.stat().st_size == 0
    except OSError:
        empty = False
    if ours is not None and not empty and not ours(target):
        raise OutputRefused(f"'{target}' exists and is not a file embedrec wrote (it does not look like this "
                            f"output); «--overwrite|overwrite=True» only replaces embedrec's own: {fix}, or move "
                            "that file away first")


def refuse_cwd(target: Path) -> None:
    """An output folder may not be the current folder or one above it (it is replaced as a whole)."""
    try:
        here = Path.cwd().resolve()
    except FileNotFoundError:  # the current folder removed: no folder to replace (an absolute target is written)
        return
    absolute = Path(target).resolve()
    if absolute == here or absolute in here.parents:
        raise OutputRefused(f"output directory '{target}' is the current folder or one above it; choose a new "
                            "subfolder instead")


def refuse_dangling(target: Path) -> None:
    """An output path that is a symbolic link to nothing: say so (else a temporary folder's error surfaces)."""
    if target.is_symlink() and not target.exists():
        raise OutputRefused(f"'{target}' is a symbolic link to '{os.readlink(target)}', which does not exist; create "
                            "that folder, remove the link, or choose another output path")


def check_replaceable(target: Path, ours=None) -> None:
    """Refuse to replace a folder embedrec did not write (data loss: ``-o ~/project --overwrite``)."""
    if not target.is_dir():
        raise OutputRefused(f"'{target}' exists and is not a folder; choose another output path")
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    if ours is not None and ours(target):  # (a dataset of the flat layout, written before generations, is not
        return                              # replaced whole: data.dataset.publish_dataset keeps a user's files)
    kind = _embedrec_kind(target)
    if kind:  # embedrec's own, of another kind: say which, not 'files embedrec did not write'
        raise OutputRefused(f"'{target}' is {kind}, which this command does not write; «--overwrite|overwrite=True» "
                            "only replaces a folder of its own kind: choose another output folder")
    shown = ", ".join(shorten_name(n) + ("/" if (target / n).is_dir() else "") for n in entries[:5])
    more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
    raise OutputRefused(f"'{target}' exists and holds files embedrec did not write ({shown}{more}); «--overwrite|overwrite=True» "
                        "only replaces a folder embedrec wrote: choose an empty or new folder")


def _run_manifest(m) -> bool:
    """Whether ``m`` (a manifest.json's content) is a trained model's (run_publish.publish writes it)."""
    return isinstance(m, dict) and "n_users" in m and "embeddings_sha256" in m


def _embedrec_kind(folder: Path) -> str | None:
    """'an embedrec run (embedrec train wrote it)' or 'a prepared dataset (embedrec ingest wrote it)' for such a
    folder, by its manifest; None otherwise."""
    for manifest in (folder / "current" / MANIFEST, folder / MANIFEST):
        m = probe_json(manifest)
        if _run_manifest(m):
            return "an embedrec run (embedrec train wrote it)"
        if isinstance(m, dict) and "counts" in m and "layout" in m:
            return "a prepared dataset (embedrec ingest wrote it)"
    if (folder / ".embedrec-export.json").is_file():
        return "an export folder (embedrec export wrote it)"
    # a run's checkpoints lie in it or in its candidates' folders (als-reg-0.01/, refit/); a folder whose
    # children are runs is a folder of runs, not one (a red team: 'runs' was "an unfinished run ... --resume")
    if _has_checkpoint(folder):
        return "an unfinished embedrec run (its checkpoint: continue it with embedrec train --resume)"
    with contextlib.suppress(OSError):
        if any(child.is_dir() and _embedrec_kind_shallow(child) for child in folder.iterdir()):
            return "a folder of embedrec runs or datasets"
    return None


def _embedrec_kind_shallow(folder: Path) -> bool:
    """Whether ``folder`` is a run or a prepared dataset, by its manifest or a checkpoint (as _embedrec_kind)."""
    return any(isinstance(m := probe_json(p), dict) and ("n_users" in m or "counts" in m)
               for p in (folder / "current" / MANIFEST, folder / MANIFEST)) or _has_checkpoint(folder)


# a run's checkpoint, torchrun's sharded checkpoint's index and the refit's folder: named here, below the run's layout
# (run_layout imports them with the rest of its names), for the look below for an unfinished run
CHECKPOINT, DIST_POINTER, REFIT = "checkpoint.pt", "checkpoint-dist.json", "refit"
# where an unfinished run keeps its checkpoints: its top, its candidates' folders (als-reg-0.01/), the refit's, and
# torchrun's sharded checkpoint's index (the training layer and shard_checkpoint.py write them)
CHECKPOINTS = tuple(f"{folder}{name}" for name in (CHECKPOINT, DIST_POINTER) for folder in ("", "als-*/", f"{REFIT}/"))


def _has_checkpoint(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in CHECKPOINTS)


def shorten_name(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."


# The names of a writer's side files beside its target: ``.<name>.embedrec-tmp-<pid>-<8 random>[.suffix]``
# (mkdtemp/mkstemp; torchrun's --topk-all parts: ``embedrec-tmp-<pid>-parts-<8 random>``) and the output it moved
# aside, ``.<name>.embedrec-old-<pid>-<8 hex>`` (removed only when it holds an embedrec output or nothing).
# embedrec's own prefix: a red team's '.ds.tmp-2024-snapshot', a user's folder of the shape embedrec's names had
# before, was removed by the sweep. A leftover of those older names stays.
TMP, OLD = "embedrec-tmp", "embedrec-old"
_SIDE_NAME = re.compile(rf"{TMP}-(?P<pid>[0-9]+)-(?P<rand>(?:parts-)?[a-z0-9_]{{8}})(?:\.[A-Za-z0-9.]+)?"
                        rf"|{OLD}-(?P<opid>[0-9]+)-(?P<hex>[0-9a-f]{{8}})")


def sweep_stale(target: Path) -> None:
    """Remove the ``.<name>.embedrec-tmp-<pid>-*`` / ``.<name>.embedrec-old-<pid>-*`` folders and files whose writer is
    gone (kill -9) (``<name>``: ``side_stem``)."""
    stem = side_stem(target.name)
    for p in target.parent.glob(f".{glob_escape(stem)}.embedrec-*"):
        m = _SIDE_NAME.fullmatch(p.name[len(stem) + 2:])
        if m is None:
            continue
        kind = "tmp" if m.group("pid") else "old"
        pid = int(m.group("pid") or m.group("opid"))
        if pid != os.getpid() and pid_alive(pid):  # a live writer's (this one's own, under its lock: a leftover)
            continue
        if p.is_dir() and not p.is_symlink():
            # an old-<pid>-<hex> folder is the output a writer moved aside: one of embedrec's kinds (a review: a
            # user's '.ds.old-2023' was removed), or emptied
            if kind == "tmp" or _embedrec_kind(p) is not None or not any(p.iterdir()):
                rmtree(p)
        elif kind == "tmp" and (p.is_symlink() or p.is_file()):
            with contextlib.suppress(OSError):  # a link: what an earlier embedrec left of a linked target
                p.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
