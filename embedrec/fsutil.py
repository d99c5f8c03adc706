"""Atomic writes: everything goes to a temporary path first and is renamed into place.

Durability: a file and the folder holding it are fsynced before the rename that publishes them, and the parent
folder after it, so a power cut leaves the old version or the new one, never an empty or half-written file.
Generations (``ROOT/current -> <prefix>-<version>/``): ``publish_generation`` writes one and swaps the link,
``open_current`` resolves the link once and holds that folder (``FolderHold``), and pruning skips held folders.
Runs (run.py) and prepared datasets (dataset.py) both live in generations.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from embedrec.errors import ArtifactError, shorten


# shutil and tempfile (with bz2, lzma, random) load only when a folder is written or removed: reading a run
# (a fresh `embedrec recommend`) needs neither
def _rmtree(path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _tempfile():
    import tempfile

    return tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    target = Path(target)
    refuse_inside_store(target)  # as given, then where a link leads
    if target.is_symlink() and target.is_dir():
        # a link to a folder (latest -> exports/v3): the folder it names is replaced and the link kept (a red
        # team: the link itself was swapped for a folder, and a temporary link left beside it for ever)
        sweep_stale(target)  # beside the link: the temporary links an earlier embedrec left there
        target = Path(os.path.realpath(target))
    refuse_cwd(target)
    refuse_inside_store(target)
    if target.exists() and not overwrite:
        check_replaceable(target, ours)  # a folder --overwrite would refuse says so now, not after the retry
        raise ArtifactError(f"output directory '{target}' already exists; pass «--overwrite|overwrite=True» to replace it, "
                            "or choose another path")
    refuse_dangling(target)
    if target.exists():
        check_replaceable(target, ours)
        if os.path.ismount(target):  # swapped in by a rename, which a mount point refuses (EBUSY)
            raise ArtifactError(f"'{target}' is a mount point, which embedrec cannot replace (it writes a new "
                                f"folder beside it and renames it over); write into a folder inside it, e.g. "
                                f"'{target / target.name}'")
    _make_parent(target, fix)
    with target_lock(target, command, fix):
        sweep_stale(target)
        if target.exists():  # again, under the lock: another writer may have created it meanwhile
            check_replaceable(target, ours)
        try:
            tmp = Path(_tempfile().mkdtemp(prefix=f".{side_stem(target.name)}.tmp-{os.getpid()}-", dir=target.parent))
        except OSError as e:
            raise (io_error(e, target.parent, fix) or e) from None
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
            fsync_tree(tmp)
            if target.exists():
                if not _exchange(tmp, target):
                    old = target.parent / f".{side_stem(target.name)}.old-{os.getpid()}"
                    os.replace(target, old)
                    os.replace(tmp, target)
                    tmp = old
                fsync_dir(target.parent)
                _rmtree(tmp)  # now the previous contents
            else:
                os.replace(tmp, target)
                fsync_dir(target.parent)
        except BaseException as e:
            _rmtree(tmp)
            err = io_error(e, target, fix) if isinstance(e, OSError) else None
            if err is not None:
                raise err from None
            raise


_GENERATION = re.compile(r"(artifacts|gen)-\d{8}T\d{6}-\d+")  # run.publish's and dataset.publish_dataset's folders


def refuse_inside_store(target: Path, beside_run: bool = False) -> None:
    """Refuse an output inside a run's or a prepared dataset's folder: beside its ``current``, or in one of its
    generations (a review: ``export --topk-all runs/x/current/users.parquet --overwrite`` replaced a run's file,
    and an output beside a dataset's links replaced one of them). ``beside_run``: a folder beside a run's
    ``current`` is allowed (tune-dims' RUN/tune), never one in its model folders or in a dataset."""
    seen = set()  # the folder as written with '..' taken away ('runs/x/../top.csv' is beside runs/x), and resolved
    for start in (Path(os.path.abspath(target.parent)), Path(os.path.realpath(target.parent))):
        for d in (start, *list(start.parents)[:2]):
            if d in seen:
                continue
            seen.add(d)
            kind = _embedrec_kind(d) if (d / "current").is_symlink() else None
            if beside_run and kind is not None and "run" in kind:
                kind = None
            if kind is None and _GENERATION.fullmatch(d.name) and (d / "manifest.json").is_file():
                kind = _embedrec_kind(d) or "embedrec's"
            if kind:
                raise ArtifactError(f"'{target}' is inside '{d}', {kind}: a file written there would replace or "
                                    "sit among the files embedrec keeps in it; write it outside that folder")


def _make_parent(target: Path, fix: str) -> None:
    """The folder a new ``target`` goes in (atomic_dir, atomic_file); a full or read-only disk in one line."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise (io_error(e, target.parent, fix) or e) from None


@contextlib.contextmanager
def atomic_file(target: str | Path, overwrite: bool = False, command: str = "embedrec",
                fix: str = "choose another output file", suffix: str = "") -> Iterator[Path]:
    """Yield the path of a new empty temporary file next to ``target``; on success it is renamed over ``target``.

    The file counterpart of ``atomic_dir``: writers of one target are serialised by the same lock file beside it
    (a second one gets one line naming the first), each writer has a temporary name of its own (no writer can
    rename another's half-written file into place) and the ones a killed writer left are removed by the next.
    ``suffix`` ends the temporary name (for writers that pick a format by extension). On any exception the
    temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    refuse_inside_store(target)  # as given (a dataset's compatibility link names the dataset), then resolved
    if target.is_symlink() and target.is_file():  # a link to a file: the file it names is replaced, the link kept
        target = Path(os.path.realpath(target))
        refuse_inside_store(target)
    if target.is_dir():
        raise ArtifactError(f"'{target}' is a folder, not a file; {fix}")
    if target.exists() and not overwrite:
        raise ArtifactError(f"'{target}' already exists; pass «--overwrite|overwrite=True» to replace it")
    _make_parent(target, fix)
    with target_lock(target, command, fix):
        sweep_stale(target)
        if target.is_dir():  # again, under the lock: another writer may have made it meanwhile
            raise ArtifactError(f"'{target}' is a folder, not a file; {fix}")
        if target.exists() and not overwrite:
            raise ArtifactError(f"'{target}' already exists; pass «--overwrite|overwrite=True» to replace it")
        try:
            fd, name = _tempfile().mkstemp(prefix=f".{side_stem(target.name)}.tmp-{os.getpid()}-", suffix=suffix,
                                           dir=target.parent)
        except OSError as e:
            raise (io_error(e, target.parent, fix) or e) from None
        os.close(fd)
        tmp = Path(name)
        try:
            os.chmod(tmp, 0o666 & ~_umask())
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            err = io_error(e, target, fix) if isinstance(e, OSError) else None
            if err is not None:
                raise err from None
            raise


NAME_MAX = 255  # bytes in one file name (ext4, xfs, btrfs, APFS, tmpfs)
_SIDE_ROOM = 40  # what a side name adds to the target's: ".embedrec." + ".lock", ".tmp-<pid>-<random><suffix>"


def side_stem(name: str) -> str:
    """``name`` as the lock, temporary and old entries beside it spell it: unchanged, or, where those names would
    pass the 255-byte limit of a file name (a target name of about 215 bytes or more), its first bytes and a hash
    of the whole name (the same target always gets the same stem, two targets differing past the cut do not)."""
    raw = os.fsencode(name)
    if len(raw) + _SIDE_ROOM <= NAME_MAX:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    head = raw[:NAME_MAX - _SIDE_ROOM - len(digest) - 1]
    while head and (head[-1] & 0xC0) == 0x80:  # no UTF-8 character cut in two
        head = head[:-1]
    if head and head[-1] >= 0xC0:
        head = head[:-1]
    return f"{os.fsdecode(head)}~{digest}"


def refuse_cwd(target: Path) -> None:
    """An output folder may not be the current folder or one above it (it is replaced as a whole)."""
    here = Path.cwd().resolve()
    absolute = Path(target).resolve()
    if absolute == here or absolute in here.parents:
        raise ArtifactError(f"output directory '{target}' is the current folder or one above it; choose a new "
                            "subfolder instead")


def target_lock(target: str | Path, command: str, fix: str):
    """The writer lock of an output folder or file: a lock file beside it (the target itself is swapped),
    removed when the writer is done. Beside the path with every link resolved: two writers that name one
    folder through different paths (a symlink to it) take the same lock."""
    target = Path(target)  # a folder that is not there yet (or a dangling link): beside it, its parent resolved
    real = Path(os.path.realpath(target)) if target.exists() else Path(os.path.realpath(target.parent)) / target.name
    return exclusive_lock(real.parent / f".embedrec.{side_stem(real.name)}.lock", target, command, fix,
                          remove=True)


def refuse_dangling(target: Path) -> None:
    """An output path that is a symbolic link to nothing: say so (else a temporary folder's error surfaces)."""
    if target.is_symlink() and not target.exists():
        raise ArtifactError(f"'{target}' is a symbolic link to '{os.readlink(target)}', which does not exist; create "
                            "that folder, remove the link, or choose another output path")


def check_replaceable(target: Path, ours=None) -> None:
    """Refuse to replace a folder embedrec did not write (data loss: ``-o ~/project --overwrite``)."""
    if not target.is_dir():
        raise ArtifactError(f"'{target}' exists and is not a folder; choose another output path")
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    if ours is not None and ours(target):
        # a folder written before generations holds its files directly, and replacing it replaces the folder: a
        # user's own files in it would go too (a red team: `ingest --overwrite` deleted keep.txt without a word)
        flat = (target / "manifest.json").is_file() and not (target / "manifest.json").is_symlink() and \
            not os.path.lexists(target / "current")
        theirs = _unlisted(target) if flat else []
        if theirs:
            shown = ", ".join(shorten_name(n) for n in theirs[:5]) + (f" and {len(theirs) - 5} more"
                                                                      if len(theirs) > 5 else "")
            raise ArtifactError(f"'{target}' holds files its manifest does not list ({shown}), which replacing "
                                "the folder would delete; move them out first, or choose another output folder")
        return
    kind = _embedrec_kind(target)
    if kind:  # embedrec's own, of another kind: say which, not 'files embedrec did not write'
        raise ArtifactError(f"'{target}' is {kind}, which this command does not write; «--overwrite|overwrite=True» "
                            "only replaces a folder of its own kind: choose another output folder")
    shown = ", ".join(shorten_name(n) + ("/" if (target / n).is_dir() else "") for n in entries[:5])
    more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
    raise ArtifactError(f"'{target}' exists and holds files embedrec did not write ({shown}{more}); «--overwrite|overwrite=True» "
                        "only replaces a folder embedrec wrote: choose an empty or new folder")


def _embedrec_kind(folder: Path) -> str | None:
    """'an embedrec run (embedrec train wrote it)' or 'a prepared dataset (embedrec ingest wrote it)' for such a
    folder, by its manifest; None otherwise."""
    for manifest in (folder / "current" / "manifest.json", folder / "manifest.json"):
        m = probe_json(manifest)
        if isinstance(m, dict) and "n_users" in m and "embeddings_sha256" in m:
            return "an embedrec run (embedrec train wrote it)"
        if isinstance(m, dict) and "counts" in m and "layout" in m:
            return "a prepared dataset (embedrec ingest wrote it)"
    if (folder / ".embedrec-export.json").is_file():
        return "an export folder (embedrec export wrote it)"
    if any(folder.glob("checkpoint.pt")) or any(folder.glob("*/checkpoint.pt")) or \
            any(folder.glob("checkpoint-dist.json")) or any(folder.glob("*/checkpoint-dist.json")):
        return "an unfinished embedrec run (its checkpoint: continue it with embedrec train --resume)"
    return None


def shorten_name(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."


def sweep_stale(target: Path) -> None:
    """Remove ``.<name>.tmp-<pid>-*`` / ``.<name>.old-<pid>`` folders whose writer is gone (kill -9), and the
    ``.<name>.tmp-<pid>-*`` files of ``atomic_file`` writers that are gone (``<name>``: ``side_stem``)."""
    stem = side_stem(target.name)
    for p in target.parent.glob(f".{glob_escape(stem)}.*"):
        rest = p.name[len(stem) + 2:]
        kind, _, tail = rest.partition("-")
        if kind not in ("tmp", "old"):
            continue
        pid = tail.split("-", 1)[0]
        if p.is_dir() and not p.is_symlink():
            if not pid.isdigit() or int(pid) == os.getpid() or not pid_alive(int(pid)):
                _rmtree(p)
        elif kind == "tmp" and pid.isdigit() and (p.is_symlink() or p.is_file()) and not pid_alive(int(pid)):
            with contextlib.suppress(OSError):  # a link: what an earlier embedrec left of a linked target
                p.unlink()


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


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


def atomic_write_bytes(path: str | Path, data, durable: bool = True) -> None:
    """Write ``data`` to a temporary file and rename it over ``path``. ``data``: bytes, or a function that
    writes to the open binary file (so a large state is not first assembled in memory).

    ``durable=False`` skips the fsync: the rename stays atomic (a killed process never leaves a half-written
    file), only a power cut may lose the last write. Used for per-epoch checkpoints, rewritten every epoch.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _tempfile().mkstemp(prefix=f".{side_stem(path.name)}.", dir=path.parent)
    noted = None
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                noted = _NotingWriter(fh)
                data(noted)
            else:
                fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not isinstance(e, OSError) and noted is not None and noted.error is not None:
            e = noted.error  # torch.save reports a failed write as RuntimeError('... unexpected pos ...')
            if isinstance(e, KeyboardInterrupt):  # Ctrl-C in a write torch.save called: Ctrl-C, not its error
                raise e from None
        err = io_error(e, path) if isinstance(e, OSError) else None
        if err is not None:
            raise err from None
        raise


class _NotingWriter:
    """A binary file that remembers the first OSError of a write: a writer that wraps it in another exception
    (torch.save's zip writer raises RuntimeError on a full disk) still gets the one-line disk-full message. A
    Ctrl-C (or SIGTERM taken as one) that lands in a write is remembered too: torch.save would turn it into a
    RuntimeError."""

    def __init__(self, fh):
        self._fh, self.error = fh, None

    def write(self, b):
        try:
            return self._fh.write(b)
        except (OSError, KeyboardInterrupt) as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name):
        return getattr(self._fh, name)


def fsync_dir(path: str | Path) -> None:
    """Make a folder's entries (a rename, a new file) durable; a no-op where the OS cannot fsync a folder."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def fsync_tree(folder: str | Path) -> None:
    """fsync every file under ``folder``, then each folder bottom-up: what goes before the rename publishing it."""
    for dirpath, _, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj):
    """``obj`` with every NaN or infinite float as None: JSON has no such numbers (Python writes a bare NaN, which
    jq and other strict readers refuse), and None says 'no value' (a best_value with no validation split)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False, default=str) + "\n")


JSON_MAX = 64 << 20  # bytes: a manifest or metrics file beyond this is no file embedrec wrote
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO to read would otherwise wait for a writer


def read_regular(path: str | Path, what: str, fix: str, limit: int | None = None,
                 expect: int | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (a review: a FIFO in place of a manifest hung every
    command, a link to /dev/zero ate memory without end): opened without blocking, checked with fstat, and
    refused unless its size is ``expect`` (a manifest's record) or at most ``limit`` before anything is read.
    FileNotFoundError passes through (each caller says what a missing file means)."""
    return read_fd(os.open(path, os.O_RDONLY | NONBLOCK), path, what, fix, limit, expect)


def read_fd(fd: int, path, what: str, fix: str, limit: int | None = None, expect: int | None = None) -> bytes:
    """:func:`read_regular` of a file already opened (read-only, ``NONBLOCK``) as ``fd``, which it closes;
    ``path`` names it in the messages."""
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or
                    stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a file")
            raise ArtifactError(f"{what} '{path}' is not a regular file ({kind}); {fix}")
        if expect is not None and st.st_size != expect:
            raise ArtifactError(f"{what} '{path}' is damaged ({st.st_size:,} bytes, its manifest says {expect:,}); "
                                f"{fix}")
        if limit is not None and st.st_size > limit:
            raise ArtifactError(f"{what} '{path}' is {st.st_size:,} bytes, more than any embedrec writes "
                                f"({limit:,}); {fix}")
        return fh.read()


def probe_json(path: str | Path):
    """What a JSON file holds, or None where it cannot be read as one (missing, not a regular file, larger than
    JSON_MAX, not JSON): for the checks that ask whether a folder is embedrec's, which never hang on a FIFO."""
    try:
        return json.loads(read_regular(path, "file", "", limit=JSON_MAX).decode("utf-8"))
    except (OSError, ValueError, ArtifactError):
        return None


def read_json(path: str | Path, what: str, fix: str = "rerun the command that wrote it") -> dict:
    path = Path(path)
    try:
        data = json.loads(read_regular(path, what, fix, limit=JSON_MAX).decode("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{what} '{path}' is missing; {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{what} '{path}' is corrupt ({e}); {fix}") from None
    if not isinstance(data, dict):  # valid JSON, but `null` or `[]` is no manifest
        kind = "null" if data is None else "an array" if isinstance(data, list) else "a single value"
        raise ArtifactError(f"{what} '{path}' is corrupt (JSON {kind}, not an object); {fix}")
    return data


# ------------------------------------------------------------------------------------------------ checksums

CHUNK = 1 << 22
VERIFY_ON_OPEN_MAX = 64 << 20  # bytes: larger run files are not read into memory to be checked (check_file)


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (~0.9 GB/s here with the CPU's SHA extensions; blake2b measured 0.38 GB/s)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_hashed(src: str | Path, dest: str | Path) -> str:
    """Copy ``src`` to ``dest`` (its bytes, then its times and mode) and return the SHA-256 of the bytes copied:
    one read of the source, where checking it and then copying it would read it twice. On any failure
    ``dest`` is removed."""
    import shutil

    h = hashlib.sha256()
    try:
        with open(src, "rb") as fh, open(dest, "wb") as out:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
        shutil.copystat(src, dest)
    except BaseException:  # a full disk, a read error, Ctrl-C: no partial copy is left
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise
    return h.hexdigest()


def file_entry(path: str | Path) -> dict:
    """What a manifest records of one file it lists: its SHA-256 and size."""
    return {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}


def stat_key(path: str | Path) -> list[int]:
    """What changes whenever a file is written, copied or replaced: its inode, mtime and ctime (ns). A program
    can set mtime back (``touch -d``, ``os.utime``) but not ctime, which the kernel moves on every write,
    rename onto, chmod and link change; git's index trusts the same fields to skip rehashing."""
    return _key(os.stat(path))


def _key(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def _check_size(size: int, entry: dict, path, what: str, fix: str) -> None:
    if size != entry.get("bytes", size):
        raise ArtifactError(f"{what} '{path}' is damaged ({size:,} bytes, its manifest says {entry['bytes']:,}); "
                            f"{fix}")


def _check_digest(digest: str, entry: dict, path, what: str, fix: str) -> None:
    if digest != entry.get("sha256"):
        raise ArtifactError(f"{what} '{path}' does not match its checksum (damaged or modified); {fix}")


def check_file(path: Path, entry: dict | None, what: str, fix: str) -> None:
    """Check a file too large to read into memory against its manifest entry (None: not recorded): its size
    always; its SHA-256 (streamed) unless the entry's ``stat`` (:func:`stat_key`, recorded when the file was
    hashed) still matches, i.e. the file has not been written, copied or replaced since it was hashed."""
    if not entry:
        return
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the hash below, a device never end it
        raise ArtifactError(f"{what} '{path}' is not a regular file; {fix}")
    _check_size(st.st_size, entry, path, what, fix)
    if entry.get("stat") is not None and entry["stat"] == _key(st):
        return
    _check_digest(sha256_file(path), entry, path, what, fix)


def copy_checked(path: Path, dest: Path, entry: dict, what: str, fix: str) -> None:
    """Copy a listed file too large to read into memory to ``dest``, checked against its manifest entry as it
    is copied (:func:`copy_hashed`: one read, and what was read to copy is what counts); a copy that does not
    match is removed. A missing ``path`` is an ArtifactError saying so."""
    try:
        _check_size(os.path.getsize(path), entry, path, what, fix)
        digest = copy_hashed(path, dest)
    except FileNotFoundError:
        if os.path.exists(path):
            raise
        raise ArtifactError(f"{what} '{path}' is missing; {fix}") from None
    try:
        _check_digest(digest, entry, path, what, fix)
    except ArtifactError:
        Path(dest).unlink(missing_ok=True)
        raise


def read_checked(path: Path, entry: dict | None, what: str, fix: str, max_bytes: int) -> bytes | None:
    """A listed file's bytes checked against its manifest entry (None: not recorded, read unchecked); above
    ``max_bytes`` it is checked where it lies (:func:`check_file`) and None is returned: read it from its path.
    Only a regular file is read (:func:`read_regular`)."""
    if os.path.getsize(path) > max_bytes:
        check_file(path, entry, what, fix)
        return None
    data = read_regular(path, what, fix, expect=entry.get("bytes") if entry else None, limit=max_bytes)
    check_bytes(data, entry, path, what, fix)
    return data


def checksum_folder(folder: str | Path, skip: tuple[str, ...] = ("manifest.json",)) -> dict[str, dict]:
    """{name: {sha256, bytes}} for every plain file directly in ``folder`` (sorted by name)."""
    folder = Path(folder)
    return {p.name: file_entry(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name not in skip}


def fingerprint_of(entries: dict[str, dict]) -> str:
    """One hash over a set of files' checksums: what a run pins its dataset by."""
    body = json.dumps({k: v["sha256"] for k, v in sorted(entries.items())}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def check_bytes(data: bytes, entry: dict | None, path: Path, what: str, fix: str) -> None:
    """Raise ArtifactError naming ``path`` when ``data`` does not match its manifest entry (None: not recorded)."""
    if not entry:
        return
    _check_size(len(data), entry, path, what, fix)
    _check_digest(sha256_bytes(data), entry, path, what, fix)


# ------------------------------------------------------------------------------------------------ locks

_held: dict[str, list] = {}  # lock file -> [fd, depth]: re-entrant within one process


def _lock_holder(fd: int) -> list[str]:
    """[pid, command] from a held lock file. The holder writes them just after it takes the lock, so a writer
    refused in that instant waits for them a little (up to 0.1 s) rather than name no one."""
    import time

    for _ in range(20):
        try:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split(None, 1)
        except OSError:
            return []
        if holder:
            return holder
        time.sleep(0.005)
    return []


@contextlib.contextmanager
def exclusive_lock(lock_file: str | Path, target: str | Path, command: str, fix: str,
                   remove: bool = False) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` while writing ``target``; a second writer gets one line:
    ``another embedrec train is writing 'RUN' (pid N); wait for it to finish, or use another run.dir``.

    The lock goes with the open file, so a killed writer never leaves a stale lock behind. ``remove``: the
    holder unlinks the lock file before it lets go (the locks beside an output), so a finished writer leaves
    nothing behind. That is safe because a writer counts its lock only if the file it locked is still the one
    at ``lock_file`` (same inode) once it holds it: one that opened the file just before the holder unlinked it
    and locked it just after finds it gone and starts again on a new file.
    """
    import fcntl

    key = os.path.abspath(lock_file)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    Path(key).parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, key):
                break
            os.close(fd)  # unlinked (or replaced) by its last holder between our open and our lock: again
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            pid = f" (pid {holder[0]})" if holder and holder[0].isdigit() else ""
            who = holder[1].strip() if len(holder) > 1 else "embedrec command"
            raise ArtifactError(f"another {who} is writing '{target}'{pid}; wait for it to finish, or {fix}") from None
        except BaseException:
            os.close(fd)
            raise
    else:
        raise ArtifactError(f"could not take the writer lock '{key}': it kept being removed; try again")
    try:
        line = f"{os.getpid()} {command}\n".encode()
        os.pwrite(fd, line, 0)  # then cut what an earlier holder left: the file is never empty between holders
        os.ftruncate(fd, len(line))
        _held[key] = [fd, 1]
        yield
    finally:
        _held.pop(key, None)
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(key)  # still ours: every writer holds the lock before it may unlink
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def locked_folder(folder: str | Path, command: str, fix: str, make_fix: str, lock: str = ".lock") -> Iterator[Path]:
    """Make ``folder`` (and its missing parents) and hold its writer lock, ``folder/lock``, for the block. A folder
    this call made is removed again when the block fails before writing anything else into it (a config or data
    error leaves no empty folder behind). ``fix``: the lock's advice to a second writer; ``make_fix``: mkdir's."""
    folder = Path(folder)
    made = [d for d in (folder, *folder.parents) if not d.exists()]  # the folders mkdir will create
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise (io_error(e, folder, make_fix) or e) from None
    with exclusive_lock(folder / lock, folder, command, fix):
        try:
            yield folder
        except BaseException:  # still holding the lock: no other writer can be using the folder
            with contextlib.suppress(OSError):
                if made and [p.name for p in folder.iterdir()] == [lock]:
                    (folder / lock).unlink()
                    for d in made:  # innermost first; rmdir stops at the first folder that is not empty
                        d.rmdir()
            raise


def _same_file(fd: int, path: str) -> bool:
    """Whether the open ``fd`` is still the file at ``path``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class FolderHold:
    """A shared ``flock`` on a folder for as long as this object lives: a pruner skips folders held so.

    ``folder`` is relative to ``dir_fd`` when given. ``fd`` is an open handle of the folder: read its files
    through it (``dir_fd=hold.fd``) and they all come from this one folder. FileNotFoundError when the folder
    was removed while it was being opened (a pruner got there first): resolve the link again.
    """

    def __init__(self, folder: str | Path, dir_fd: int | None = None):
        import fcntl

        self.fd = None  # set before the open: __del__ runs even when the open fails (a file named current)
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            if os.fstat(self.fd).st_nlink == 0:  # removed between our open and our lock
                raise FileNotFoundError(errno.ENOENT, "removed while it was opened", str(folder))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        # the handle is forgotten before it is closed: a signal's exception (SIGTERM as Ctrl-C) between the two
        # left a closed fd here, which __del__ closed again: "Exception ignored in FolderHold.__del__" and a
        # traceback on stderr at exit (a CI run of the tune-dims SIGTERM test)
        fd, self.fd = self.fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def __reduce__(self):  # a copy or a pickle holds nothing: the handle belongs to this object alone
        return (_released_hold, ())

    def __del__(self):
        self.close()


def _released_hold() -> FolderHold:
    hold = FolderHold.__new__(FolderHold)
    hold.fd = None
    return hold


def remove_unless_held(folder: Path) -> bool:
    """rmtree ``folder`` unless a reader holds it (FolderHold); True when removed."""
    import fcntl

    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        _rmtree(folder)
        return True
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ generations

def new_version() -> str:
    """A folder version that sorts by time: ``20261130T071500-123456789`` (local time, then nanoseconds)."""
    t = time.time_ns()
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(t // 1_000_000_000)) + f"-{t % 1_000_000_000:09d}"


LINK_TMP = re.compile(r"\.current\.[0-9]+")  # swap_link's temporary name for the new 'current'


def swap_link(root: Path, name: str, link: str = "current") -> None:
    """Point ``root/link`` at ``name`` atomically (a new symlink renamed over the old one), durably."""
    tmp = root / f".{link}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(name, tmp)
    os.replace(tmp, root / link)
    fsync_dir(root)


def publish_generation(root: Path, prefix: str, write, keep: int) -> Path:
    """Call ``write(tmp)`` to fill ``root/.<prefix>-<version>.tmp``, rename it to ``<prefix>-<version>`` and
    point ``root/current`` at it; then prune (``prune_generations``). The caller holds ``root``'s writer lock.

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
        final = root / f"{prefix}-{version}"
        os.replace(tmp, final)
        fsync_dir(root)
        swap_link(root, final.name)
    except BaseException:
        _rmtree(tmp)
        raise
    prune_generations(root, prefix, {final.name}, keep)
    return final


VERSION = r"[0-9]{8}T[0-9]{6}-[0-9]{9}"  # what new_version() gives


def prune_generations(root: Path, prefix: str, keep_names: set[str], keep: int) -> None:
    """Remove older ``<prefix>-<version>`` folders, keeping the newest ``keep``, ``keep_names``, the one
    ``current`` names and any a live reader holds (FolderHold); and every ``.<prefix>-<version>.tmp`` folder
    and ``.current.<pid>`` link of a writer that is gone (called under the writer lock, so those are a killed
    writer's leftovers). Only names exactly as
    publish_generation makes them, real folders, not links: a user's ``gen-...-backup`` copy beside them stays."""
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
    folders = sorted((p for p in entries if ours(p, name)), key=lambda p: p.name)
    for p in folders[:-keep] if keep > 0 else folders:
        if p.name not in keep_names:
            foreign = _unlisted(p)
            if foreign:  # a red team: a user's notes put in a generation went with it, without a word
                shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                logging.getLogger("embedrec").warning(
                    "kept the old folder '%s': it holds files embedrec did not write (%s); move them out of it, and "
                    "the next write removes it", p, shown)
                continue
            remove_unless_held(p)
    for p in entries:
        if ours(p, tmp) and p.name not in keep_names:
            _rmtree(p)
        elif p.is_symlink() and LINK_TMP.fullmatch(p.name):  # swap_link's new link, its writer killed before
            pid = int(p.name.rsplit(".", 1)[1])              # the rename (the fault suite's kill -9 found one)
            if pid != os.getpid() and not pid_alive(pid):
                with contextlib.suppress(OSError):
                    p.unlink()


def _unlisted(folder: Path) -> list[str]:
    """The entries of a generation folder its manifest does not list (a user's own files put there); none when
    the manifest cannot be read (a damaged generation is embedrec's to remove)."""
    try:
        m = probe_json(folder / "manifest.json") or {}
        # a run lists every file under checksums, a dataset under files; a manifest from before they did lists
        # too little to tell a user's file from embedrec's (a review: such a generation was kept for ever)
        listed = m.get(SEALED_WITH["run" if "n_users" in m else "dataset"])
        if not isinstance(listed, dict) or not listed:
            return []
        return sorted(n for n in os.listdir(folder) if n not in set(listed) | {"manifest.json"})
    except (OSError, ValueError, TypeError, AttributeError):
        return []


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
        path = Path(root) / name
        try:
            return path, FolderHold(name if root_fd is not None else path, dir_fd=root_fd)
        except (FileNotFoundError, BlockingIOError):  # pruned between readlink and open: resolve again
            continue
        except OSError:
            return path, None  # a file system without flock: read unprotected
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------------ I/O errors

_IO_WORDS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
             errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
             errno.EPERM: "operation not permitted", errno.EFBIG: "file too large (a file-size limit, ulimit -f)"}


def io_error(e: OSError, path: str | Path | None, fix: str = "choose another folder") -> ArtifactError | None:
    """An ArtifactError naming the path for a disk-full / read-only / permission OSError, else None.

    ``fix`` says where else to write ("choose another run.dir"); for a full disk "free space, or" goes first.
    """
    code = e.errno
    if code is None and ("No space left on device" in str(e) or " requested and " in str(e)):
        code = errno.ENOSPC  # pyarrow's and FAISS's own errors carry no errno; numpy's short write says so
    words = _IO_WORDS.get(code)
    if words is None:
        return None
    where = e.filename if getattr(e, "filename", None) else path
    if code in (errno.ENOSPC, errno.EDQUOT) and "space" not in fix:
        fix = f"free space, or {fix}"
    verb = "writing" if code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG) else "on"
    return ArtifactError(f"{words} {verb} '{where}'; {fix}" if where else f"{words}; {fix}")


SEAL = "manifest_sha256"


def _canonical(manifest: dict, safe: bool = True) -> bytes:
    body = {k: v for k, v in manifest.items() if k != SEAL}
    # through JSON once, so the hash sees exactly what a reader will load (int keys become strings, NaN null ...);
    # ``safe=False``: as sealed before NaN became null (a run with no validation split had a NaN best_value)
    body = json_safe(body) if safe else body
    return json.dumps(json.loads(json.dumps(body, default=str)), sort_keys=True).encode()


def seal(manifest: dict) -> dict:
    """The manifest with a checksum of its own content (a bit flip in it is caught like one in a data file)."""
    return {**{k: v for k, v in manifest.items() if k != SEAL}, SEAL: hashlib.sha256(_canonical(manifest)).hexdigest()}


# the key of a manifest's file checksums, which each kind has written only beside the seal: a run's "checksums"
# (its "files" came before the seal), a dataset's "files"
SEALED_WITH = {"run": "checksums", "dataset": "files"}


def check_seal(manifest: dict, path: Path, what: str, fix: str, kind: str | None = None) -> None:
    """The manifest's own checksum; an unsealed manifest (an older version's, from before manifests listed their
    files' checksums) passes, but not one whose seal's key was damaged (SEAL with one character changed: a bit
    flip there keeps valid JSON and drops the seal) or removed (``kind`` 'run' or 'dataset': a manifest with that
    kind's checksums key was always sealed)."""
    want = manifest.get(SEAL)
    damaged_key = want is None and any(isinstance(k, str) and len(k) == len(SEAL) and
                                       sum(a != b for a, b in zip(k, SEAL)) == 1 for k in manifest)
    if damaged_key or (want is not None and hashlib.sha256(_canonical(manifest)).hexdigest() != want
                       and hashlib.sha256(_canonical(manifest, safe=False)).hexdigest() != want):
        raise ArtifactError(f"{what} '{path}' does not match its checksum (damaged or edited); {fix}")
    if want is None and kind in SEALED_WITH and manifest.get(SEALED_WITH[kind]):
        raise ArtifactError(f"{what} '{path}' has lost its own checksum ('{SEAL}'; every manifest that lists its "
                            f"files' checksums carries one): it was edited; {fix}")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# what a manifest field may hold: (test, words for the message)
FIELD_KINDS = {
    "dict": (lambda v: isinstance(v, dict), "a mapping"),
    "dict|null": (lambda v: v is None or isinstance(v, dict), "a mapping or null"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "str|null": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
    "size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number >= 1"),
    "number": (_finite, "a finite number"),
    "number|null": (lambda v: v is None or _finite(v), "a finite number or null"),
    "range": (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_finite, v)) and v[0] <= v[1],
              "[low, high], two finite numbers, low <= high"),
    # a manifest's file list: names in its own folder, never a path out of it ('../../etc/passwd', 'a/b')
    "files": (lambda v: isinstance(v, dict) and all(isinstance(n, str) and n not in ("", ".", "..") and "/" not in n
                                                    and "\\" not in n and "\0" not in n for n in v),
              "a mapping of file names in the manifest's own folder"),
}


def check_fields(manifest: dict, fields: dict[str, tuple], path: Path, what: str, fix: str) -> None:
    """Each ``fields`` key ('model.dim': a dotted path) holds what its kind says (a FIELD_KINDS name, or a tuple of
    the values it may take; required or not), so that a manifest edited by hand (resealed, or from before the
    seal, which is taken as it is) is refused in one line naming the key, not met later as an internal error."""
    for key, (kind, required) in fields.items():
        node, parts = manifest, key.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # the parent's own entry says what is wrong with it
        if parts[-1] not in node:
            if required:
                raise ArtifactError(f"{what} '{path}' has no '{key}'; the file was edited or damaged: {fix}")
            continue
        test, words = FIELD_KINDS[kind] if isinstance(kind, str) else \
            (kind.__contains__, "one of " + ", ".join(map(json.dumps, kind)))  # a tuple: the values it may take
        if not test(node[parts[-1]]):
            raise ArtifactError(f"{what} '{path}': '{key}' is {shorten(json.dumps(node[parts[-1]], default=str), 40)}"
                                f", not {words}; the file was edited or damaged: {fix}")


def cache_dir(configured: str | None = None) -> Path:
    """data.cache_dir, else $EMBEDREC_CACHE, else $XDG_CACHE_HOME/embedrec, else ~/.cache/embedrec."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("EMBEDREC_CACHE"):
        return Path(os.environ["EMBEDREC_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "embedrec" if xdg else Path.home() / ".cache" / "embedrec"
