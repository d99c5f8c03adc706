"""One file at a time: durable writes (temporary name, fsync, rename, fsync the folder), bounded reads of regular
files only, JSON in and out, and the one-line message for a full, read-only or forbidden disk.

A power cut leaves the old version of a file or the new one, never an empty or half-written file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import stat
from pathlib import Path

from embedrec.errors import ArtifactError, EmbedrecError, OutputRefused, sh_quote


def note_made(target: str | Path) -> None:
    """Say on the log (stderr) that the folder ``target`` goes in was made for it: 'note: made the folder ... for
    ...', in the words of every output, lock, ingest and tune config that makes one (a review: -o a/b/c made a/b
    without a word). The caller says it once its folders are made and left."""
    logging.getLogger("embedrec").info("note: made the folder '%s' for '%s'", Path(target).parent, target)


# shutil and tempfile (with bz2, lzma, random) load only when a folder is written or removed: reading a run
# (a fresh `embedrec recommend`) needs neither
def rmtree(path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def tempfile_module():
    import tempfile

    return tempfile


def real_dir(folder: str | Path) -> str:
    """``folder`` as given, or, where it holds a '..', as the file system finds it (os.path.realpath): for what
    names a place by os.path.abspath, which takes a '..' after a link for the link's own folder's ('ln' -> far/in:
    'ln/..' is far, abspath says '.'). tempfile's ``dir=`` (mkstemp made the file in another folder than the
    target's, and its rename failed: found with `ingest -o ln/../ds`) and a writer lock's name (a run named
    'ln/../run' was locked, and its .lock made, in './run')."""
    return os.path.realpath(folder) if os.pardir in Path(folder).parts else str(folder)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


NAME_MAX = 255  # bytes in one file name (ext4, xfs, btrfs, APFS, tmpfs)


_SIDE_ROOM = 56  # what a side name adds to the target's: ".embedrec." + ".lock", ".embedrec-tmp-<pid>-parts-<8><suffix>"


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


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def atomic_write_bytes(path: str | Path, data, durable: bool = True) -> None:
    """Write ``data`` to a temporary file and rename it over ``path``. ``data``: bytes, or a function that
    writes to the open binary file (so a large state is not first assembled in memory).

    ``durable=False`` skips the fsync: the rename stays atomic (a killed process never leaves a half-written
    file), only a power cut may lose the last write. Used for per-epoch checkpoints, rewritten every epoch.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile_module().mkstemp(prefix=f".{side_stem(path.name)}.", dir=real_dir(path.parent))
    noted = None
    try:
        os.chmod(tmp, 0o666 & ~umask())
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
    jq and other strict readers refuse), and None says 'no value' (a best_value with no validation split). A numpy
    float scalar (np.float32, which json.dumps' default=float turned into a bare NaN after this) counts as a float."""
    if getattr(obj, "ndim", None) == 0 and getattr(getattr(obj, "dtype", None), "kind", None) == "f":
        obj = float(obj)
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


def read_denied(e: OSError, path, what: str = "file") -> ArtifactError | None:
    """A read refused by the file's permissions, said as one (a red team: 'is corrupt; train again', and 'write to
    another folder (-o)' for a file recommend reads), with the whole path; None for another error."""
    if e.errno not in (errno.EACCES, errno.EPERM):
        return None
    return ArtifactError(f"cannot read {what} '{os.path.abspath(path)}' (permission denied); check its permissions "
                         "and its folders' (ls -l), or run as a user who may read them")


def link_loop(path: str | Path) -> Path | None:
    """The part of ``path`` that is a loop of symbolic links (``ln -s x x``, or a -> b -> a), the first from the
    root, or None where there is none (os.stat's ELOOP, which open and exists() meet as 'missing' or an OSError)."""
    try:
        os.stat(path)
        return None
    except OSError as e:
        if e.errno != errno.ELOOP:
            return None
    p = Path(path)
    for part in [*reversed(p.parents), p]:
        try:
            os.stat(part)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return part
    return p


def loop_error(path: str | Path, what: str, fix: str, error: type[EmbedrecError] = ArtifactError) -> \
        EmbedrecError | None:
    """The error of a file a run or dataset needs whose path is a loop of symbolic links (:func:`link_loop`):
    which link, where it leads, and to remove it before ``fix`` (a review: said as 'missing'); None where there is
    no loop. An input path given (``--users``, ``--ratings``, ``-c``, ``data.source``) is said so too, as the
    ``error`` its 'not found' is (a red team: each said a loop as a file not found)."""
    at = link_loop(path)
    if at is None:
        return None
    try:
        to = os.readlink(at)
    except OSError:
        to = "?"

    where = "is" if at == Path(path) else f"leads through '{at}', which is"
    return error(f"{what} '{path}' {where} a loop of symbolic links ('{at.name}' -> '{to}' -> ..., back to "
                 f"itself); remove the link (rm {sh_quote(str(at))}), then {fix}")


def missing_error(path: str | Path, what: str, fix: str) -> ArtifactError:
    """The error of a file a run or dataset needs that is not there: :func:`loop_error`'s where its path is a loop
    of links, else '... is missing'."""
    return loop_error(path, what, fix) or ArtifactError(f"{what} '{path}' is missing; {fix}")


def read_error(e: OSError, path: str | Path, what: str, fix: str, missing: bool = False) -> ArtifactError | None:
    """The error of a read of a file a run or dataset needs that met ``e``: a loop of links in its place (ELOOP),
    and with ``missing`` a file not there (ENOENT), said as :func:`missing_error` says them (a review: a loop was
    an OSError's line); None for another error, which the caller raises or says (``raise read_error(...) or e``)."""
    if e.errno == errno.ELOOP or missing and e.errno == errno.ENOENT:
        return missing_error(path, what, fix)
    return None


def not_regular_error(path: str | Path, mode: int, what: str, fix: str) -> ArtifactError:
    """The error of a file a run or dataset needs where something else is (``mode``: its stat's st_mode): '... is
    not a regular file (a FIFO)', a folder, a device or a socket said as such, in every command alike."""
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
    return ArtifactError(f"{what} '{path}' is not a regular file ({kind}); {fix}")


def in_place_error(path: str | Path, what: str, fix: str) -> ArtifactError | None:
    """The error of what is in the place of a file a run or dataset needs that is not that file: a loop of links
    (:func:`loop_error`), a FIFO, a folder, a device (:func:`not_regular_error`), as every reader says it; None where
    a regular file is there, or nothing (the caller says it is missing, as it may say more)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return loop_error(path, what, fix)
    return None if stat.S_ISREG(mode) else not_regular_error(path, mode, what, fix)


def read_regular(path: str | Path, what: str, fix: str, limit: int | None = None,
                 expect: int | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (a review: a FIFO in place of a manifest hung every
    command, a link to /dev/zero ate memory without end): opened without blocking, checked with fstat, and
    refused unless its size is ``expect`` (a manifest's record) or at most ``limit`` before anything is read.
    FileNotFoundError passes through (each caller says what a missing file means)."""
    try:
        fd = os.open(path, os.O_RDONLY | NONBLOCK)
    except PermissionError as e:
        raise read_denied(e, path, what) from None
    except OSError as e:
        raise (read_error(e, path, what, fix) or e) from None
    return read_fd(fd, path, what, fix, limit, expect)


def read_fd(fd: int, path, what: str, fix: str, limit: int | None = None, expect: int | None = None) -> bytes:
    """:func:`read_regular` of a file already opened (read-only, ``NONBLOCK``) as ``fd``, which it closes;
    ``path`` names it in the messages."""
    st = os.fstat(fd)  # before fdopen, which refuses a folder as "[Errno 21] Is a directory: 4" (a red team)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise not_regular_error(path, st.st_mode, what, fix)
    with os.fdopen(fd, "rb") as fh:
        if expect is not None and st.st_size != expect:
            raise ArtifactError(f"{what} '{path}' is damaged ({st.st_size:,} bytes, its manifest says {expect:,}); "
                                f"{fix}")
        if limit is not None and st.st_size > limit:
            raise ArtifactError(f"{what} '{path}' is {st.st_size:,} bytes, more than any embedrec writes "
                                f"({limit:,}); {fix}")
        return fh.read()


class _TooDeep(json.JSONDecodeError):
    def __str__(self) -> str:
        return self.msg


JSON_DEPTH = 64  # deeper than anything embedrec writes (a manifest: 5 levels), shallow enough for every reader


def loads_json(data, shallow: bool = True):
    """json.loads, with a document nested deeper than JSON_DEPTH said as the corrupt JSON it is (a
    json.JSONDecodeError, a ValueError): a red team's manifest of 200,000 '[' was an internal RecursionError, and
    one 600 deep, which decodes, was one later, in the seal's check (a review). ``shallow=False``: only what
    cannot be decoded at all (a large table read without recursion, whose every value a walk would visit)."""
    try:
        got = json.loads(data)
    except RecursionError:
        raise _TooDeep("nested too deeply to read", "", 0) from None
    stack = [(got, 1)] if shallow else []  # the depth, counted without recursion
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > JSON_DEPTH:
                raise _TooDeep("nested too deeply to read", "", 0)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return got


def probe_json(path: str | Path):
    """What a JSON file holds, or None where it cannot be read as one (missing, not a regular file, larger than
    JSON_MAX, not JSON): for the checks that ask whether a folder is embedrec's, which never hang on a FIFO."""
    try:
        return loads_json(read_regular(path, "file", "", limit=JSON_MAX).decode("utf-8"))
    except (OSError, ValueError, ArtifactError):
        return None


def read_json(path: str | Path, what: str, fix: str = "rerun the command that wrote it") -> dict:
    path = Path(path)
    try:
        data = loads_json(read_regular(path, what, fix, limit=JSON_MAX).decode("utf-8"))
    except FileNotFoundError:
        raise missing_error(path, what, fix) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{what} '{path}' is corrupt ({e}); {fix}") from None
    if not isinstance(data, dict):  # valid JSON, but `null` or `[]` is no manifest
        kind = "null" if data is None else "an array" if isinstance(data, list) else "a single value"
        raise ArtifactError(f"{what} '{path}' is corrupt (JSON {kind}, not an object); {fix}")
    return data


def pid_alive(pid: int) -> bool:
    """Whether a process of that number runs: one that has exited but is not yet reaped (a zombie, as a writer
    killed with `timeout -s KILL` stays where no init reaps orphans: a red team found its temporaries never swept)
    is not; read from /proc where there is one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether /proc says the process has exited and waits to be reaped (state Z, or X); False where it cannot
    tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    state = stat.rpartition(b")")[2].split()[:1]  # (the command name, in parentheses, may hold spaces)
    return state in ([b"Z"], [b"X"])


_IO_WORDS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
             errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
             errno.EPERM: "operation not permitted", errno.EFBIG: "file too large (a file-size limit, ulimit -f)"}


FSIZE_FIX = "raise the limit (ulimit -f unlimited) and run the command again; another folder has the same limit"


def io_error(e: OSError, path: str | Path | None, fix: str = "choose another folder") -> ArtifactError | None:
    """An ArtifactError naming the path for a disk-full / read-only / permission OSError, else None.

    ``fix`` says where else to write ("choose another run.dir"); for a full disk "free space, or" goes first; a
    file-size limit (ulimit -f) is the process's wherever it writes: FSIZE_FIX, to raise it.
    """
    code = e.errno
    if code in (errno.EEXIST, errno.ENOTDIR) and path is not None:  # a file where a folder of the path goes
        blocker = next((p for p in [Path(path), *Path(path).parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:  # a review: "cannot use 'x': File exists", exit 1, FileExistsError from Python
            inside = "" if blocker == Path(path) else f" (for '{path}')"
            return OutputRefused(f"'{blocker}' is a file, where a folder of the output path goes{inside}; {fix}")
    if code is None and ("No space left on device" in str(e) or " requested and " in str(e)):
        code = errno.ENOSPC  # pyarrow's and FAISS's own errors carry no errno; numpy's short write says so
        if " requested and " in str(e) and _at_size_limit(path):  # a short write under ulimit -f is that limit
            code = errno.EFBIG  # (a red team: export --to npy said 'no space left' where train said the limit)
    words = _IO_WORDS.get(code)
    if words is None:
        return None
    where = e.filename if getattr(e, "filename", None) else path
    if code in (errno.ENOSPC, errno.EDQUOT) and "space" not in fix:
        fix = f"free space, or {fix}"
    if code == errno.EFBIG:  # the process's limit, not the folder's (a red team: 'choose another run.dir')
        fix = FSIZE_FIX
    verb = "writing" if code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG) else "on"
    return ArtifactError(f"{words} {verb} '{where}'; {fix}" if where else f"{words}; {fix}")


def _at_size_limit(path) -> bool:
    """Whether a short write at ``path`` is this process's file-size limit (ulimit -f, RLIMIT_FSIZE): one is set
    and the disk there still has room beyond it, so the disk is not what is full (a review: any limit at all was
    said to be the cause, a full disk under a large limit too)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return False
    if soft == resource.RLIM_INFINITY or path is None:
        return False
    try:  # the disk there has room (the file written may be a temporary beside ``path``): then it is the limit
        p = Path(os.path.abspath(path))
        while not p.exists() and p != p.parent:
            p = p.parent
        st = os.statvfs(p)
        return st.f_bavail * st.f_frsize > max(soft, 1 << 26)
    except OSError:
        return False


def cache_dir(configured: str | None = None) -> Path:
    """data.cache_dir, else $EMBEDREC_CACHE, else $XDG_CACHE_HOME/embedrec, else ~/.cache/embedrec."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("EMBEDREC_CACHE"):
        return Path(os.environ["EMBEDREC_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "embedrec" if xdg else Path.home() / ".cache" / "embedrec"


def cache_origin(configured: str | None = None) -> str:
    """Where :func:`cache_dir`'s path came from, for an error about it (a red team: EMBEDREC_CACHE=/dev/null said
    only "cannot use '/dev/null'")."""
    if configured:
        return "data.cache_dir"
    if os.environ.get("EMBEDREC_CACHE"):
        return "$EMBEDREC_CACHE"
    return "$XDG_CACHE_HOME/embedrec" if os.environ.get("XDG_CACHE_HOME") else "the cache folder ~/.cache/embedrec"


ROW_GROUP = 1 << 20  # rows in a Parquet row group: pq.write_table's own default (1024 x 1024), by which write_parquet
# writes a table a row group at a time where its rows are counted


def write_parquet(data, path, page_checksum: bool = False, tick=None) -> None:
    """A pandas DataFrame (without its index) or a pyarrow Table written as Parquet through Python's own file:
    pyarrow opens a path only when it is UTF-8 (a red team: every Parquet write under a folder whose name is not
    was an internal error, after a whole fit for train). ``tick(n)``: a bar's update, told of the rows of each row
    group as it is written (the table handed to the writer ROW_GROUP rows at a time: the row groups, and so the
    file's bytes, those of one write_table call)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if hasattr(data, "to_parquet"):  # as to_parquet(index=False) makes it; pandas 2's to_parquet reopened the
        data = pa.Table.from_pandas(data, preserve_index=False)  # handle by its name, through pyarrow (session 36)
    with open(path, "wb") as fh:
        if tick is None:
            pq.write_table(data, fh, write_page_checksum=page_checksum)
            return
        with pq.ParquetWriter(fh, data.schema, write_page_checksum=page_checksum) as writer:
            for start in range(0, max(data.num_rows, 1), ROW_GROUP):  # (an empty table: its one empty row group)
                part = data.slice(start, ROW_GROUP)
                writer.write_table(part, row_group_size=ROW_GROUP)
                tick(part.num_rows)


def pandas_nullable(table, names=("year",)):
    """``table`` (a pyarrow Table built without pandas) with pandas' metadata marking each integer column of ``names``
    as pandas' nullable dtype of its width (int32: Int32), so that ``pd.read_parquet`` of the file written reads a
    column with a null as whole numbers beside <NA> (a first-hour review: the top-k file's years read as float64,
    1961.0, once a movie had none), as a dataset's movies.parquet, a History's and a result's to_frame() give it.
    Other readers (pyarrow, polars, DuckDB) read the same int32 column as before."""
    import pyarrow as pa

    columns = [{"name": n, "field_name": n, "pandas_type": str(table.schema.field(n).type),
                "numpy_type": str(table.schema.field(n).type).capitalize(), "metadata": None}
               for n in names if n in table.column_names and pa.types.is_integer(table.schema.field(n).type)]
    if not columns:
        return table
    meta = {"index_columns": [], "column_indexes": [], "columns": columns, "creator": {"library": "embedrec"}}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"pandas": json.dumps(meta).encode()})


def read_parquet_table(path, columns=None):
    """A Parquet file read whole as a pyarrow Table (``columns`` only) through Python's own file (see
    :func:`write_parquet`: pyarrow opens a path only when it is UTF-8)."""
    import pyarrow.parquet as pq

    with open(path, "rb") as fh:
        return pq.ParquetFile(fh).read(columns=columns)
