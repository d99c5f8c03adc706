"""Checksums and manifests: SHA-256 of every file a manifest lists, checked as the file is read (or where it lies,
above ``VERIFY_ON_OPEN_MAX``); a manifest's own seal; the shape of each field a reader takes from it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
from pathlib import Path

from embedrec.errors import ArtifactError, DataError, shorten
from embedrec.fsutil.files import json_safe, not_regular_error, read_error, read_regular

CHUNK = 1 << 22
# the file a sealed folder's checksums and seal are in: a run's model folder's, a prepared dataset's generation's
# (named here, the lowest module that reads it; run_layout and data/layout.py name it for their folders)
MANIFEST = "manifest.json"


VERIFY_ON_OPEN_MAX = 64 << 20  # bytes: larger run files are not read into memory to be checked (check_file)


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (~0.9 GB/s here with the CPU's SHA extensions; blake2b measured 0.38 GB/s)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


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


def read_stamp(path: str | Path) -> tuple[int, int, int, int, int]:
    """What moves when a file is replaced or written in place: its device, inode, size, mtime and ctime (ns; the
    ctime as :func:`stat_key`'s, which a program setting the mtime back cannot move back); taken before a reader
    opens it and again once its rows are read and hashed, equal where the rows and the checksum are of one file."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def sha256_as_read(path: str | Path, was: tuple | None, rerun: str, times: bool = True) -> str:
    """The SHA-256 of ``path``, a file read after :func:`read_stamp` stamped it ``was`` (None: not stamped, hashed
    alone), refused where it is not that file once hashed (replaced, written to or removed while it was read), so
    that rows and the checksum recorded beside them are of one file: a DataError naming the file, how it changed and
    that nothing was written, ``rerun`` (what to run again: 'the ingest') once it is written whole. ``times``:
    False compares its device, inode and size alone (a file another call marks read by setting its times)."""
    try:
        digest = sha256_file(path)
        now = read_stamp(path) if was is not None else None
    except FileNotFoundError:
        if was is None:
            raise
        digest, now = "", None
    if was is None or now == was or (not times and now is not None and now[:3] == was[:3]):
        return digest
    how = ("removed" if now is None else "replaced by another file" if now[:2] != was[:2] else
           f"written to: {was[2]:,} bytes, now {now[2]:,}" if now[2] != was[2] else
           "written to: its modification time moved" if now[3] != was[3] else
           "its inode changed: written to with its time set back, or its mode or links changed")
    raise DataError(f"'{path}' changed while it was read ({how}), so its rows and its checksum may be of different "
                    f"files; nothing was written: run {rerun} again once the file is written whole")


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
    try:
        st = os.stat(path)
    except OSError as e:
        raise (read_error(e, path, what, fix) or e) from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the hash below, a device never end it
        raise not_regular_error(path, st.st_mode, what, fix)
    _check_size(st.st_size, entry, path, what, fix)
    if entry.get("stat") is not None and entry["stat"] == _key(st):
        return
    _check_digest(sha256_file(path), entry, path, what, fix)


def as_recorded(path: Path, entry, hash_max: int = VERIFY_ON_OPEN_MAX) -> bool:
    """Whether the listed file ``path`` still holds what its manifest ``entry`` records, as far as is cheap to
    tell: its size; its SHA-256 too where it is at most ``hash_max`` bytes (about 1 ms a MB; a larger file by its
    size alone: hashing 1 GB would cost a second or two at each publish). True where it is gone (nothing in it to
    lose) or the entry records no size (a hand-made list: nothing to compare); False where something other than a
    regular file is there. What pruning and a dataset's --overwrite ask before removing a generation or a dataset,
    as export --overwrite asks of its files."""
    if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int):
        return True
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry["bytes"]:
        return False
    if st.st_size > hash_max or not isinstance(entry.get("sha256"), str):
        return True
    try:
        return sha256_file(path) == entry["sha256"]
    except OSError:
        return False


def copy_checked(path: Path, dest: Path, entry: dict, what: str, fix: str) -> None:
    """Copy a listed file too large to read into memory to ``dest``, checked against its manifest entry as it
    is copied (:func:`copy_hashed`: one read, and what was read to copy is what counts); a copy that does not
    match is removed. A missing ``path`` is an ArtifactError saying so."""
    try:
        _check_size(os.path.getsize(path), entry, path, what, fix)
        digest = copy_hashed(path, dest)
    except OSError as e:
        if os.path.exists(path):  # the copy's own error (its folder, a full disk): not the listed file's
            raise
        raise (read_error(e, path, what, fix, missing=True) or e) from None
    try:
        _check_digest(digest, entry, path, what, fix)
    except ArtifactError:
        Path(dest).unlink(missing_ok=True)
        raise


def link_checked(path: Path, dest: Path, entry: dict, what: str, fix: str) -> tuple[dict, list[int] | None] | None:
    """Hard-link a listed file to ``dest`` (a new model folder's: published files are never written again, so two
    folders may share one) and check it against its manifest ``entry`` by a full hash of the link, so what the new
    folder seals is what was hashed (the old folder's stat key cannot vouch for it: a link moves the file's ctime).
    Returns (its entry, {sha256, bytes}; the :func:`stat_key` it was hashed under, None where it moved meanwhile), or
    None where no link was made: not a regular file, another file system, one without hard links, the link limit,
    a read error (copy it instead: :func:`copy_checked` says what is wrong). A link that does not match is removed
    and an ArtifactError names ``path``."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        os.link(path, dest, follow_symlinks=False)
    except OSError:  # EXDEV, EPERM, EMLINK, ENOTSUP ...: the copy's way
        return None
    try:
        before = os.stat(dest)
        _check_size(before.st_size, entry, path, what, fix)
        digest = sha256_file(dest)
        _check_digest(digest, entry, path, what, fix)
        key = _key(before) if _key(os.stat(dest)) == _key(before) else None
    except BaseException as e:  # no link to a damaged file is left, nor one half checked
        with contextlib.suppress(OSError):
            os.unlink(dest)
        if isinstance(e, OSError):
            return None
        raise
    return {"sha256": digest, "bytes": before.st_size}, key


def read_checked(path: Path, entry: dict | None, what: str, fix: str, max_bytes: int) -> bytes | None:
    """A listed file's bytes checked against its manifest entry (None: not recorded, read unchecked); above
    ``max_bytes`` it is checked where it lies (:func:`check_file`) and None is returned: read it from its path.
    Only a regular file is read (:func:`read_regular`); a path that is a loop of links is said as one
    (FileNotFoundError passes through, each caller says what a missing file means)."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise (read_error(e, path, what, fix) or e) from None
    if size > max_bytes:
        check_file(path, entry, what, fix)
        return None
    data = read_regular(path, what, fix, expect=entry.get("bytes") if entry else None, limit=max_bytes)
    check_bytes(data, entry, path, what, fix)
    return data


def checksum_folder(folder: str | Path, skip: tuple[str, ...] = (MANIFEST,)) -> dict[str, dict]:
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


def check_format(manifest, version: int, what: str, fix: str) -> None:
    """Refuse a manifest (any JSON value) whose ``format_version`` is not ``version`` (the format this embedrec
    writes; a flag is none, though True == 1): ArtifactError, '``what`` was written by an incompatible embedrec
    (format x)'. What every reader of a dataset or a run checks first, and ``verify`` with them (a red team: it said
    ok for a format "x" that every command refused)."""
    got = manifest.get("format_version") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or isinstance(got, bool) or got != version:
        raise ArtifactError(f"{what} was written by an incompatible embedrec (format {shorten(got, 40)}); {fix}")


def finite(v) -> bool:
    """A JSON number a float holds: not a flag, NaN or infinity, nor an integer past float's range (10**400:
    math.isfinite's OverflowError, a red team)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) <= _FLOAT_MAX if isinstance(v, int) else math.isfinite(v)


_FLOAT_MAX = 1.7976931348623157e308  # sys.float_info.max: past it an integer is no float


# what a manifest field may hold: (test, words for the message)
FIELD_KINDS = {
    "dict": (lambda v: isinstance(v, dict), "a mapping"),
    "dict|null": (lambda v: v is None or isinstance(v, dict), "a mapping or null"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "str|null": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
    "size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number >= 1"),
    "number": (finite, "a finite number"),
    "number|null": (lambda v: v is None or finite(v), "a finite number or null"),
    "list": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v), "a list of mappings"),
    "range": (lambda v: isinstance(v, list) and len(v) == 2 and all(map(finite, v)) and v[0] <= v[1],
              "[low, high], two finite numbers, low <= high"),
    # a manifest's file list: names in its own folder, never a path out of it ('../../etc/passwd', 'a/b'); each
    # name's entry is checked by keys of its own, 'files.*' (file_entries: a mapping, its sha256 and bytes)
    "files": (lambda v: isinstance(v, dict) and all(isinstance(n, str) and n not in ("", ".", "..") and "/" not in n
                                                    and "\\" not in n and "\0" not in n for n in v),
              "a mapping of file names in the manifest's own folder"),
    "sha256": (lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
               "a SHA-256 (64 hex digits)"),
}


def file_entries(key: str) -> dict[str, tuple]:
    """The fields (as :func:`check_fields` takes them) of a file list at ``key`` ('files', 'index.files'): the list
    itself, a mapping of names, and each name's entry, :func:`file_entry`'s {sha256, bytes} (a red team: an entry
    "x", -1, null or [1], resealed, was an internal AttributeError in verify and train; null read the file
    unchecked)."""
    return {key: ("files", False), f"{key}.*": ("dict", True), f"{key}.*.sha256": ("sha256", True),
            f"{key}.*.bytes": ("count", True)}


def check_fields(manifest: dict, fields: dict[str, tuple], path: Path, what: str, fix: str) -> None:
    """Each ``fields`` key ('model.dim': a dotted path; '*' stands for each key of the mapping there, 'files.*.bytes'
    every listed file's size) holds what its kind says (a FIELD_KINDS name, or a tuple of the values it may take;
    required or not), so that a manifest edited by hand (resealed, or from before the seal, which is taken as it is)
    is refused in one line naming the key ('files.train.parquet.bytes'), not met later as an internal error."""
    for key, (kind, required) in fields.items():
        for shown, node, last in _targets(manifest, key.split(".")):
            if last not in node:
                if required:
                    raise ArtifactError(f"{what} '{path}' has no '{shown}'; the file was edited or damaged: {fix}")
                continue
            test, words = FIELD_KINDS[kind] if isinstance(kind, str) else \
                (kind.__contains__, "one of " + ", ".join(map(json.dumps, kind)))  # a tuple: the values it may take
            value = node[last]
            if not test(value):
                raise ArtifactError(f"{what} '{path}': '{shown}' is {shorten(json.dumps(value, default=str), 40)}, "
                                    f"not {words}; the file was edited or damaged: {fix}")


def _targets(node, parts: list[str], shown: tuple = ()):
    """(the key as said, its parent mapping, its last part) for each value a dotted key names in ``node``: '*' names
    each key of the mapping there. A parent that is not a mapping names nothing (its own entry says what is wrong
    with it)."""
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    for name in (list(node) if head == "*" else [head]):
        if not rest:
            yield ".".join((*shown, str(name))), node, name
        elif name in node:
            yield from _targets(node[name], rest, (*shown, str(name)))
