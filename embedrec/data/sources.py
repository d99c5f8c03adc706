"""Where ratings come from: named MovieLens releases (downloaded and cached), local zips and folders.

Named releases are fetched from GroupLens with a progress bar and checked against the ``.md5`` file GroupLens
publishes beside each zip. When GroupLens cannot be reached, ``ml-100k`` falls back to the copy inside the
``recbole==1.2.1`` wheel on PyPI (fetched with ``pip download --no-deps``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from embedrec.errors import ConfigError, DataError
from embedrec.fsutil.files import atomic_write_text, cache_dir, loads_json, pid_alive  # noqa: F401 (cache_dir: used by ingest)
from embedrec.fsutil.integrity import sha256_file

log = logging.getLogger("embedrec")

GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
# name -> zip file name on GroupLens (ml-10m's zip unpacks to ml-10M100K/)
NAMED = {
    "ml-100k": "ml-100k.zip",
    "ml-1m": "ml-1m.zip",
    "ml-10m": "ml-10m.zip",
    "ml-20m": "ml-20m.zip",
    "ml-25m": "ml-25m.zip",
    "ml-32m": "ml-32m.zip",
    "ml-latest-small": "ml-latest-small.zip",
    "ml-latest": "ml-latest.zip",
}
RECBOLE_WHEEL = "recbole==1.2.1"
LICENCE = ("MovieLens data is provided by GroupLens Research (https://grouplens.org/datasets/movielens/) for "
           "research use under its own licence: do not redistribute it, and cite F. Maxwell Harper and Joseph A. "
           "Konstan. 2015. The MovieLens Datasets: History and Context. ACM TiiS 5, 4, Article 19.")


def show_licence_once(cache: Path) -> Path | None:
    """Log the licence notice unless a fetch into ``cache`` has shown it; return the marker for the caller to write
    once its fetch succeeds (None when already shown), so a first download that fails does not use the notice up."""
    marker = cache / "licence-shown"
    if marker.exists():
        return None
    log.warning(LICENCE)
    return marker


def md5_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def _download(url: str, dest: Path, progress: bool) -> None:
    from tqdm import tqdm

    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=30) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as fh, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                                         disable=not progress, file=sys.stderr) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                fh.write(chunk)
                bar.update(len(chunk))
    os.replace(tmp, dest)


def fetch_named(name: str, cache: Path, progress: bool, origin: str = "data.cache_dir") -> Path:
    """Return a local folder holding the release ``name``, downloading and unpacking it if needed; ``origin``:
    where the path ``cache`` came from (:func:`embedrec.fsutil.files.cache_origin`), named if it is no folder."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{origin} '{cache}' is not a folder; point it at a folder embedrec can write (it keeps "
                          "the downloaded releases there)") from None
    except OSError as e:
        raise ConfigError(f"{origin} '{cache}': cannot create it ({e.strerror or e}); point it at a folder "
                          "embedrec can write (it keeps the downloaded releases there)") from None
    marker = show_licence_once(cache)
    folder = _fetch_named(name, cache, progress)
    if marker is not None:
        atomic_write_text(marker, LICENCE + "\n")
    return folder


def release_folders(name: str, cache: Path) -> list[Path]:
    """Where a release ``name`` is unpacked in ``cache``, in the order it is looked for: its own folder, and for
    ml-100k the offline copy from the recbole wheel (:func:`_fetch_named`; ingestion's reuse check reads them too)."""
    return [cache / name] + ([cache / "ml-100k-recbole"] if name == "ml-100k" else [])


def _fetch_named(name: str, cache: Path, progress: bool) -> Path:
    unpacked, *fallbacks = release_folders(name, cache)
    if _complete(unpacked):
        return unpacked
    for fallback in fallbacks:  # the offline copy, already unpacked: reuse quietly
        if _complete(fallback):
            log.debug("using the cached MovieLens 100K copy in %s", fallback)
            return fallback
    zname = NAMED[name]
    zpath = cache / zname
    try:
        if not zpath.exists():
            log.info("downloading %s%s", GROUPLENS, zname)
            _download(GROUPLENS + zname, zpath, progress)
        try:
            with urllib.request.urlopen(GROUPLENS + zname + ".md5", timeout=15) as resp:
                expected = resp.read().decode("ascii", "replace").split()[0].lower()
        except (urllib.error.URLError, OSError, IndexError):
            expected = None
            log.warning("no published checksum could be fetched for %s; it is not verified", zname)
        if expected:
            actual = md5_of(zpath)
            if actual != expected:
                zpath.unlink(missing_ok=True)
                raise DataError(f"{zpath}: checksum mismatch (md5 {actual}, GroupLens publishes {expected}); "
                                "the partial or corrupt download was removed, run the command again")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        if name == "ml-100k":
            log.warning("GroupLens is unreachable (%s); using the MovieLens 100K copy inside the %s wheel from PyPI",
                        getattr(e, "reason", e), RECBOLE_WHEEL)
            return recbole_ml100k(cache)
        raise DataError(f"cannot download {name} from GroupLens ({getattr(e, 'reason', e)}); download "
                        f"{GROUPLENS}{zname} elsewhere and pass the zip: «embedrec ingest PATH/{zname}|er.ingest('PATH/{zname}')»") from None
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        extract_zip(zpath, Path(tmp) / "x")
        inner = [p for p in (Path(tmp) / "x").iterdir()]
        src = inner[0] if len(inner) == 1 and inner[0].is_dir() else Path(tmp) / "x"
        _mark_complete(src, zname)
        if _complete(unpacked):  # another ingest unpacked it meanwhile; else nothing is there now (a folder of the
            return unpacked  # user's own is refused, a changed copy moved aside)
        os.replace(src, unpacked)
    return unpacked


COMPLETE = ".complete"
HASH_MAX = 64 << 20  # bytes: unpacked files up to this size are hashed in the marker, larger ones by size only


def _mark_complete(folder: Path, source: str) -> None:
    """The marker of a fully unpacked release: each file's size (and SHA-256 up to HASH_MAX), so a cached copy
    that was cut short or edited later is unpacked again instead of being ingested as if complete."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != COMPLETE:
            size = p.stat().st_size
            files[p.relative_to(folder).as_posix()] = [size, sha256_file(p) if size <= HASH_MAX else None]
    (folder / COMPLETE).write_text(json.dumps({"from": source, "files": files}, indent=1) + "\n")


def _complete(folder: Path) -> bool:
    """True when ``folder`` holds every file its marker lists, unchanged. A copy that changed since it was
    unpacked (cut short by a crash, or edited; or marked by an older embedrec, without the list) is moved aside,
    never deleted, so the caller unpacks it again from the cached download; a folder without the marker is not
    embedrec's and is refused (a red team: a folder of the user's own at the release's name in data.cache_dir
    was deleted with the user's files in it)."""
    marker = folder / COMPLETE
    if not marker.is_file():
        if os.path.lexists(folder):
            raise DataError(f"'{folder}' is in the way of the release embedrec unpacks there, and embedrec did not "
                            f"unpack it (no {COMPLETE} file in it); to ingest it as it is: embedrec ingest "
                            f"'{folder}'; else move it away, or set data.cache_dir to another folder")
        return False
    try:
        files = loads_json(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError, OSError):  # an older embedrec's marker (no list): its own copy
        log.warning("the cached copy in %s was unpacked by an older embedrec; unpacking it again", folder)
        shutil.rmtree(folder, ignore_errors=True)
        return False
    try:
        ok = all((folder / name).is_file() and (folder / name).stat().st_size == size and
                 (digest is None or sha256_file(folder / name) == digest) for name, (size, digest) in files.items())
    except (ValueError, TypeError, OSError):
        ok = False
    if not ok:
        aside = Path(tempfile.mkdtemp(prefix=f"{folder.name}.changed-{time.strftime('%Y%m%dT%H%M%S')}-",
                                      dir=folder.parent))
        try:
            os.replace(folder, aside)  # onto the empty folder just made: a name no other copy has
        except FileNotFoundError:  # another ingest moved it aside first (a review)
            aside.rmdir()
            return False
        log.warning("the cached copy in %s changed since embedrec unpacked it (cut short, or edited); it was moved to "
                    "%s (delete it once nothing there is needed) and is unpacked again", folder, aside)
    return ok


def recbole_ml100k(cache: Path) -> Path:
    """MovieLens 100K as RecBole atomic files, from the recbole wheel on PyPI (no import of recbole)."""
    out = cache / "ml-100k-recbole"
    if _complete(out):
        return out
    wheels = sorted(cache.glob("recbole-1.2.1-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), RECBOLE_WHEEL]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(cache.glob("recbole-1.2.1-*.whl"))
        if proc.returncode != 0 or not wheels:
            err = (proc.stderr or proc.stdout).strip().splitlines()
            raise DataError(f"cannot fetch MovieLens 100K: GroupLens is unreachable and 'pip download {RECBOLE_WHEEL}' "
                            f"failed ({err[-1] if err else 'no output'}); place ml-100k.zip locally and pass it: "
                            "«embedrec ingest PATH/ml-100k.zip|er.ingest('PATH/ml-100k.zip')»")
    prefix = "recbole/dataset_example/ml-100k/"
    tmp = Path(tempfile.mkdtemp(prefix=".ml-100k-recbole.", dir=cache))
    try:
        with zipfile.ZipFile(wheels[0]) as zf:
            for member in ("ml-100k.inter", "ml-100k.item", "ml-100k.user"):
                with zf.open(prefix + member) as src, open(tmp / member, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        _mark_complete(tmp, wheels[0].name)
        if _complete(out):  # as in _fetch_named: never a folder of the user's own removed
            shutil.rmtree(tmp, ignore_errors=True)
            return out
        os.replace(tmp, out)
    except (zipfile.BadZipFile, KeyError, zlib.error, EOFError) as e:  # (a red team: zlib's error was internal)
        wheels[0].unlink(missing_ok=True)
        raise DataError(f"{wheels[0]}: not a usable recbole wheel ({e}); it was removed, run again") from None
    except OSError as e:  # a full or read-only cache (a red team: 'cannot write the output', naming no folder)
        raise DataError(f"cannot unpack MovieLens 100K into the cache '{cache}' ({e.strerror or e}); free space "
                        "there, or point $EMBEDREC_CACHE at another folder") from None
    finally:  # the unpacked temporary goes whatever ended the unpack (a red team: one left on each failed try)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def sweep_zip_temps() -> None:
    """Remove ``embedrec-zip-<pid>-*`` folders in the temp dir left by a killed ingest (pid no longer alive)."""
    for p in Path(tempfile.gettempdir()).glob("embedrec-zip-*"):
        pid = p.name[len("embedrec-zip-"):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def extract_zip(zpath: Path, dest: Path, progress: bool = False) -> None:
    """Extract a zip, refusing members whose paths escape ``dest``, zip bombs (a total size or a compression
    ratio beyond the limits, or more than the free disk space) and reporting corrupt archives. ``progress``: a bar
    over the members' uncompressed bytes as they are written."""
    from embedrec.bars import INGEST_DELAY_S, step
    from embedrec.data.textfiles import is_stream, limits, read_all, read_denied

    max_total, max_ratio = limits()
    try:
        try:  # a pipe (<(cat r.zip)) is read once: a zip is read from its end
            archive = io.BytesIO(read_all(zpath)) if is_stream(zpath) else open(zpath, "rb")  # noqa: SIM115
        except PermissionError as e:  # the zip itself cannot be read: not a write to fix elsewhere
            raise read_denied(e, zpath) from None
        with archive, zipfile.ZipFile(archive) as zf:
            root = dest.resolve()
            total = 0
            seen: set[Path] = set()
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if info.filename.startswith(("/", "\\")) or (target != root and root not in target.parents):
                    raise DataError(f"{zpath}: member '{info.filename}' would be written outside the target "
                                    "directory; refusing this archive")
                if target in seen:  # the last one was read without a word (a red team: 1 row of 841)
                    raise DataError(f"{zpath}: two members are named '{info.filename.rstrip('/')}'; refusing this "
                                    "archive (which one is meant?): zip the files again, each name once")
                seen.add(target)
                total += info.file_size
                if info.file_size > (1 << 20) and info.file_size > max_ratio * max(info.compress_size, 1):
                    raise DataError(f"{zpath}: member '{info.filename}' would expand to {_gib(info.file_size)} from "
                                    f"{_gib(info.compress_size)} (more than {max_ratio}x): a zip bomb or not a ratings "
                                    "archive; refusing it (set EMBEDREC_MAX_ZIP_RATIO to allow it)")
            if total > max_total:
                raise DataError(f"{zpath}: would expand to {_gib(total)}, above the limit of {_gib(max_total)}; "
                                "refusing it (set EMBEDREC_MAX_UNZIP_BYTES to allow it)")
            size = archive.seek(0, io.SEEK_END)  # the whole archive's ratio too: a red team's 3,000 members of
            # 1 MiB of zeros each (under the members' own check) expanded a 3.5 MB zip to 2.9 GB; members that
            # share their compressed bytes (an overlapping bomb) are caught by it as well
            if total > (1 << 26) and total > max_ratio * max(size, 1):
                raise DataError(f"{zpath}: would expand to {_gib(total)} from {_gib(size)} (more than {max_ratio}x): "
                                "a zip bomb or not a ratings archive; refusing it (set EMBEDREC_MAX_ZIP_RATIO to "
                                "allow it)")
            dest.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(dest).free
            if total > free:
                raise DataError(f"{zpath}: would expand to {_gib(total)} but only {_gib(free)} is free in "
                                f"'{dest.parent}'; free space (or set TMPDIR to a larger disk)")
            with step(f"unzipping {zpath}" if progress else None, total, "B", scale=True,
                      delay=INGEST_DELAY_S) as tick:
                for info in zf.infolist():
                    # ZipExtFile stops at the declared size and checks the CRC at the end of each member
                    out = dest / info.filename
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        while block := src.read(1 << 20):
                            dst.write(block)
                            if tick is not None:
                                tick(len(block))
    except zipfile.BadZipFile as e:
        msg = str(e)
        if "CRC" in msg or "Bad CRC" in msg:
            raise DataError(f"{zpath}: a member is corrupt ({msg}); download the zip again") from None
        raise DataError(f"{zpath}: not a valid zip or truncated ({msg}); download it again") from None
    except (EOFError, zipfile.LargeZipFile, OSError, zlib.error) as e:
        if isinstance(e, FileNotFoundError) and e.filename in (str(zpath), zpath):
            raise DataError(f"{zpath}: file not found; check data.source", path=str(zpath)) from None
        if isinstance(e, OSError):
            from embedrec.fsutil.files import io_error

            err = io_error(e, dest, "free space (or set TMPDIR to a larger disk)")
            if err is not None:
                raise err from None
        raise DataError(f"{zpath}: cannot read the zip ({e}); download it again") from None
