"""Locks between writers (``flock`` on a side file: a killed writer leaves no stale lock) and the hold a reader
keeps on a published folder (``FolderHold``) so that pruning skips it."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from embedrec.errors import ArtifactError, Busy, EmbedrecError, OutputRefused, shorten
from embedrec.fsutil.files import io_error, note_made, pid_alive, real_dir, rmtree, side_stem, umask


def target_lock(target: str | Path, command: str, fix: str):
    """The writer lock of an output folder or file: a lock file beside it (the target itself is swapped),
    removed when the writer is done. Beside the path with every link resolved: two writers that name one
    folder through different paths (a symlink to it) take the same lock."""
    target = Path(target)  # a folder that is not there yet (or a dangling link): beside it, its parent resolved
    real = Path(os.path.realpath(target)) if target.exists() else Path(os.path.realpath(target.parent)) / target.name
    return exclusive_lock(real.parent / f".embedrec.{side_stem(real.name)}.lock", target, command, fix,
                          remove=True)


def drop_stale_lock(target: str | Path, command: str) -> None:
    """Remove the writer lock file beside ``target`` that no writer holds: a writer killed (kill -9) after its final
    rename leaves it, and a rerun refused for the output being there (no --overwrite) took no lock, so it stayed (a
    red team: '.embedrec.top.parquet.lock' in the user's folder). Taken and let go as a writer does (its holder
    unlinks it under the lock: :func:`exclusive_lock`'s ``remove``), so a writer that holds it keeps it, and one
    that opened it meanwhile finds it gone and starts again; nothing is said, whatever stops it."""
    target = Path(target)
    real = Path(os.path.realpath(target)) if target.exists() else Path(os.path.realpath(target.parent)) / target.name
    if not os.path.lexists(real.parent / f".embedrec.{side_stem(real.name)}.lock"):
        return
    with contextlib.suppress(ArtifactError, Busy, OutputRefused, OSError), target_lock(target, command, ""):
        pass


def is_target_lock(name: str) -> bool:
    """Whether a file name is a :func:`target_lock`'s (``.embedrec.<name>.lock``): embedrec's, not a user's."""
    return name.startswith(".embedrec.") and name.endswith(".lock")


_local = threading.local()  # .held: lock file -> [fd, depth], this thread's (re-entrant within one thread; a
# review: threads of a library user shared one table, and one thread's check closed or refused another's locks)
_HOLDER = re.compile(rb"(\d+) embedrec ([a-z -]+)\n?")  # a holder's line: pid and command
LOCK_LINE = re.compile(rb"(?:" + _HOLDER.pattern + rb")?")  # what a lock file holds: a holder's line, or nothing yet


@dataclass
class _Hold:
    """One lock this thread holds: its open file, how deep it is re-entered, whether the file goes when its writer
    is done (the lock beside an output), the command its line names, and the refusal ``confirm_held`` said."""

    fd: int
    remove: bool
    command: str
    depth: int = 1
    refusal: str | None = None


def _holder_of(head: bytes) -> tuple[str, str] | None:
    """(pid, 'embedrec <command>') from a lock file's first bytes when its first line is a holder's, else None
    (a killed writer's cut line, a user's text: no one named)."""
    m = _HOLDER.fullmatch(head.split(b"\n", 1)[0] + b"\n")
    return (m.group(1).decode(), f"embedrec {m.group(2).decode()}") if m else None


def _held() -> dict[str, _Hold]:
    held = getattr(_local, "held", None)
    if held is None:
        held = _local.held = {}
    return held


def _lock_holder(fd: int) -> tuple[str, str] | None:
    """(pid, command) of a held lock file (:func:`_holder_of`). The holder writes its line just after it takes the
    lock, so a writer refused in that instant waits for it a little (up to 0.1 s) rather than name no one."""
    for _ in range(20):
        try:
            head = os.pread(fd, 200, 0)
        except OSError:
            return None
        if head:
            return _holder_of(head)
        time.sleep(0.005)
    return None


def writer_of(lock_file: str | Path) -> tuple[str, str] | None:
    """(pid, 'embedrec <command>') of the writer that holds ``lock_file`` now; None where no one does (or the file is
    not there, or this thread holds it). A look only: the file is never made or written, and the holder is
    counted only when its flock is held (the line a finished writer left stays in a run's ``.lock``): a shared
    flock is tried and let go at once (where the holder's pid is alive: a writer taking the lock in that instant
    would be refused, so a dead one's line is not probed)."""
    import fcntl

    key = lock_key(lock_file)
    if key in _held():
        return None
    try:
        fd = os.open(key, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        holder = _holder_of(os.pread(fd, 200, 0))
        if holder is not None and not pid_alive(int(holder[0])):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _lock_holder(fd) or ("?", "embedrec command")
        except OSError:
            return None
        return None  # closing the file lets the shared flock go
    finally:
        os.close(fd)


def lock_key(lock_file: str | Path) -> str:
    """The name a writer lock is held and made under: its absolute path, its folder as the file system finds it
    where the path holds a '..' (:func:`files.real_dir`: 'ln/../run/.lock' is in the folder beside ln's target)."""
    return os.path.abspath(os.path.join(real_dir(os.path.dirname(lock_file) or "."), os.path.basename(lock_file)))


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

    key = lock_key(lock_file)
    held = _held()
    if key in held:
        held[key].depth += 1
        try:
            yield
        finally:
            held[key].depth -= 1
        return
    try:
        Path(key).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(e, Path(key).parent) from None
    linked_waits = 0
    for _ in range(100):
        try:
            fd, linked = _open_lock(key)
        except OSError as e:
            raise _unwritable(e, Path(key).parent) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if linked and linked_waits < 20:  # its holder may be about to give this name a file of its own
                    linked_waits += 1
                    time.sleep(0.005)  # (before the close: an interrupt here closes it once, below)
                    os.close(fd)
                    continue
                holder = _lock_holder(fd)
                pid = f" (pid {holder[0]})" if holder else ""
                who = holder[1] if holder else "embedrec command"
                also = (" (its lock file has other names too, a hard-link copy such as cp -al makes: the writer may "
                        "be one of the copy's)") if linked else ""
                raise Busy(f"another {who} is writing '{target}'{pid}{also}; wait for it to finish, or "
                                    f"{fix}") from None
            if _same_file(fd, key):
                if not linked:
                    break
                # a lock file of other names too (a hard-link copy of the run, cp -al): this name gets a file of
                # its own, so the copy and the run never share one lock; safe, as this writer holds that lock
                os.unlink(key)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # unlinked (or replaced) by its last holder between our open and our lock, or linked: again
    else:
        raise Busy(f"could not take the writer lock '{key}': it kept being removed; try again")
    try:
        head = os.pread(fd, 200, 0)
    except BaseException:
        os.close(fd)
        raise
    if head and _holder_of(head) is None:  # no writer holds it, and a user's own file of that name (or garbage) is
        os.close(fd)                        # there: let go, never written over (a review: it was)
        first = shorten(head.decode("utf-8", "replace").split("\n", 1)[0], 40)
        raise ArtifactError(f"the writer lock '{key}' holds text embedrec did not write ('{first}'), which embedrec "
                            "does not write over; move that file elsewhere (embedrec makes its lock file itself)")
    try:
        line = f"{os.getpid()} {command}\n".encode()
        os.pwrite(fd, line, 0)  # then cut what an earlier holder left: the file is never empty between holders
        os.ftruncate(fd, len(line))
        held[key] = _Hold(fd, remove, command)
        yield
    finally:
        hold = held.pop(key, None)
        if hold is not None:
            fd = hold.fd  # confirm_held may have made the lock file again and hold that one now
        try:
            if remove and _same_file(fd, key):
                with contextlib.suppress(OSError):
                    os.unlink(key)  # still ours: every writer holds the lock before it may unlink
        finally:
            os.close(fd)  # releases the lock


@contextlib.contextmanager
def locked_folder(folder: str | Path, command: str, fix: str, make_fix: str, lock: str = ".lock") -> Iterator[Path]:
    """Make ``folder`` (and its missing parents) and hold its writer lock, ``folder/lock``, for the block. A folder
    this call made is removed again when the block fails before writing anything else into it (a config or data
    error leaves no empty folder behind, and one line); the folders above it it made and leaves are said as the
    block ends, in the note every output's gives (train's run.dir, cross-validate's and tune-dims' folders; a review:
    run.dir in a folder not there was made without a word). ``fix``: the lock's advice to a second writer;
    ``make_fix``: mkdir's."""
    folder = Path(folder)
    made = [d for d in (folder, *folder.parents) if not d.exists()]  # the folders mkdir will create
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise (io_error(e, folder, make_fix) or e) from None
    try:  # what the folder held before this call's lock (a lock there already: another's, or this process's own)
        before = None if made else set(os.listdir(folder))
    except OSError:
        before = None
    try:
        with exclusive_lock(folder / lock, folder, command, fix):
            try:
                yield folder
            except BaseException as e:  # still holding the lock: no other writer can be using the folder (while
                # the lock file is still the held one: a review found another writer's lock and folder removed after
                # a user deleted this writer's lock file)
                hold = _held().get(lock_key(folder / lock))
                if isinstance(e, (OSError, EmbedrecError)) and hold is not None and \
                        not _same_file(hold.fd, str(folder / lock)):
                    # the lock removed meanwhile: another writer may have removed what this one was writing (a red
                    # team: 'cannot use RUN/als-reg-0.02/metrics.jsonl: No such file'), said as the lock's loss
                    confirm_held()
                with contextlib.suppress(OSError):
                    if made and hold is not None and _same_file(hold.fd, str(folder / lock)) and \
                            [p.name for p in folder.iterdir()] == [lock]:
                        (folder / lock).unlink()
                        for d in made:  # innermost first; rmdir stops at the first folder that is not empty
                            d.rmdir()
                    elif before is not None and lock not in before and hold is not None and \
                            _same_file(hold.fd, str(folder / lock)) and set(os.listdir(folder)) == before | {lock}:
                        # a folder of the user's that the block failed in before writing a name into it: the lock
                        # this call made goes too (a review: a failed 'train --resume' left one in a user's folder,
                        # which the next train took for a run's mark, and wrote over their refit/checkpoint.pt)
                        (folder / lock).unlink()
                raise
    finally:
        if len(made) > 1 and folder.parent.is_dir():  # folders above it made, and not removed again
            note_made(folder)


def confirm_held() -> None:
    """Before a writer publishes: check that every writer lock this thread holds is still the file at its name.

    A user who deletes ``RUN/.lock`` while ``train`` runs lets a second writer create the file again and take it
    (a red team). Where the name is gone or holds another file, another writer may have written the same target
    meanwhile, and may even have finished (a review: the first then published over it unseen): this writer
    publishes nothing and raises ArtifactError, naming the other writer where the file holds a writer's line. A
    name left empty gets the lock file again, held by this writer until it leaves.
    """
    import fcntl

    for key, hold in list(_held().items()):
        if hold.refusal is not None:  # refused once in this hold: again, though it holds the file it made since
            raise ArtifactError(hold.refusal)
        if _same_file(hold.fd, key):
            continue
        who = ""
        try:
            other = os.open(key, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            # the name gone: this writer makes the file again and holds it until it leaves, so the folder stays
            # marked as embedrec's and no rerun starts while this one still stops its work (a review: the rerun
            # asked for was refused as a folder holding no run, then could overlap a tune-dims' stopping workers);
            # O_EXCL: never a file another writer made meanwhile
            with contextlib.suppress(OSError):
                new = os.open(key, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666 & ~umask())
                try:
                    fcntl.flock(new, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    line = f"{os.getpid()} {hold.command}\n".encode()
                    os.pwrite(new, line, 0)
                except BaseException:
                    os.close(new)
                    raise
                old, hold.fd = hold.fd, new  # (before the close: a signal between them closes nothing twice)
                os.close(old)
        except OSError:
            pass
        else:
            try:
                holder = _holder_of(os.pread(other, 200, 0))
            except OSError:
                holder = None
            finally:
                os.close(other)
            if holder is not None:
                who = f" (another {holder[1]}, pid {holder[0]}, has written it since)"
        hold.refusal = (f"the writer lock '{key}' was removed while this command ran{who}, so another writer "
                        "may have written the same output meanwhile: nothing was published; run this command "
                        "again (a train with «--resume|resume=True» continues from its checkpoints), and leave "
                        "lock files in place")
        raise ArtifactError(hold.refusal)


def _unwritable(e: OSError, folder: Path) -> Exception:
    """A lock file that cannot be made (permissions, a read-only or full disk) said of the folder the output goes in,
    as embedrec's own error (a first-hour pass: from Python a plain PermissionError naming '.embedrec.emb.lock'),
    any other OSError (a folder that takes no new file) as an OutputRefused naming the folder."""
    fix = "choose another folder, or one this user can write"
    err = io_error(OSError(e.errno, e.strerror), folder, fix)
    if err is None:  # '/proc': 'No such file or directory', naming '/proc/.embedrec.x.parquet.lock' (a review)
        err = OutputRefused(f"files cannot be made in '{folder}' ({e.strerror or e}); {fix}")
    return err


def _open_lock(key: str) -> tuple[int, bool]:
    """Open (or create) the lock file ``key`` without following a link, and refuse anything but a plain file: a
    red team linked RUN/.lock to a user's file, and the holder's pid line was written over it (then, for the lock
    beside an output, the link removed). (fd, linked): ``linked`` when the file has other names too, which is
    taken only when it holds a writer's line (a hard-link copy of a run: the caller gives this name a file of its
    own); a user's file there, or an empty one, is refused and never written."""
    import stat

    try:
        fd = os.open(key, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0),
                     0o666 & ~umask())
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ArtifactError(f"the writer lock '{key}' is a symbolic link, which embedrec does not write through; "
                                "remove the link (embedrec makes the file itself)") from None
        if e.errno == errno.EISDIR:  # as a FIFO or a device there is (a red team)
            raise ArtifactError(f"the writer lock '{key}' is a folder, which embedrec does not write into; remove "
                                "it (embedrec makes the file itself)") from None
        raise
    st = os.fstat(fd)
    linked = stat.S_ISREG(st.st_mode) and st.st_nlink > 1
    if not stat.S_ISREG(st.st_mode) or linked and _HOLDER.fullmatch(os.pread(fd, 201, 0)) is None:
        os.close(fd)
        what = "has another name too (a hard link) and holds no writer's lock line" if linked \
            else "is not a plain file"
        raise ArtifactError(f"the writer lock '{key}' {what}, which embedrec does not write into; remove it "
                            "(embedrec makes the file itself)")
    return fd, linked


def _same_file(fd: int, path: str) -> bool:
    """Whether the open ``fd`` is still the file at ``path``."""
    try:
        st = os.stat(path)
    except OSError:  # gone, or its folder replaced by a file (ENOTDIR): not the held file
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
        try:
            self.close()
        except BaseException:  # noqa: S110 - a signal's exception (SIGTERM as Terminated) raised while a collected
            pass  # hold closes: Python drops it from __del__ anyway, printing a traceback at exit (a CI run's stderr)


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
        rmtree(folder)
        return True
    finally:
        os.close(fd)
