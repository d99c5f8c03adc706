"""The loader of embedrec's C kernels (``kernels/mf_sgd.c``): hogwild's per-example SGD step (``mf_sgd``; SVD++'s, ``svdpp_sgd``), the
ALS conjugate-gradient solve (``als_cg``) and the top-k that evaluation uses (``topk_rows``).

:func:`load` compiles the source once per machine with the system C compiler ($CC, cc, gcc or clang) into a
private cache folder ($EMBEDREC_CACHE/kernels, mode 0700; each build keyed by source, compiler, flags and CPU
and checked against its recorded SHA-256 before it is loaded), and returns it as a ctypes library, which
releases the GIL, so Python threads run it in parallel. Each caller types the functions it calls.

Where the kernel cannot be built or loaded, :class:`KernelError` (a ConfigError) says what failed and how to
fix it; a caller words it for its own feature (``train.optimizer: hogwild`` refuses, ALS and evaluation fall
back to torch or numpy).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from embedrec.errors import ArtifactError, ConfigError


class KernelError(ConfigError):
    """The C kernel cannot be built or loaded here. ``str(e)`` says so without naming a feature: what failed,
    then how to fix it. A caller words it for its own: ``e.reason(owner)`` is what failed, naming ``owner`` as
    the kernel's user ("hogwild compiles a small C kernel once, but no C compiler was found ..."), ``e.fix`` how
    to fix it, and ``e.kind`` which failure it was: ``no-compiler``, ``compile-failed``, ``unwritable`` (the
    cache folder) or ``unloadable`` (a built kernel that did not load; it was removed)."""

    def __init__(self, kind: str, template: str, fix: str, fields: dict[str, str] | None = None):
        self.kind, self.template, self.fix, self.fields = kind, template, fix, dict(fields or {})
        super().__init__(f"{self.reason()}; {fix}")

    def reason(self, owner: str = "embedrec") -> str:
        return self.template.format(owner=owner, **self.fields)

    def __reduce__(self):  # picklable despite its arguments (a worker process's error reaches its parent)
        return type(self), (self.kind, self.template, self.fix, self.fields)


SOURCE = Path(__file__).with_name("kernels") / "mf_sgd.c"
_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math", "-fno-signed-zeros",
          "-shared", "-fPIC"]
_lock = threading.Lock()
_lib = None


def _compiler() -> list[str]:
    for cand in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        if cand:
            cmd = shlex.split(cand)
            if cmd and shutil.which(cmd[0]):
                return cmd
    raise KernelError("no-compiler", "{owner} compiles a small C kernel once, but no C compiler was found (tried "
                      "$CC, cc, gcc, clang)", "install one (e.g. apt install gcc, xcode-select --install)")


def _cpu_tag() -> str:
    """Part of the cache key: a kernel built with -march=native must not run on another CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return platform.machine() + platform.processor() + flags


def load():
    """The compiled kernel (built on first use, then cached per source, compiler and CPU)."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        cc = _compiler()
        src = SOURCE.read_bytes()
        key = hashlib.sha256(src + repr((cc, _FLAGS, sys.platform, _cpu_tag())).encode()).hexdigest()[:16]
        from embedrec.fsutil.files import cache_dir  # $EMBEDREC_CACHE, else ~/.cache/embedrec

        out = _private_dir(cache_dir() / "kernels") / f"mf_sgd-{key}.so"
        if not _intact(out):
            _build(cc, out)
        try:
            lib = _checked(ctypes.CDLL(str(out)))
        except (OSError, AttributeError) as e:  # damaged in a way the checksum did not catch: rebuild once
            _discard(out)
            _build(cc, out)
            try:
                lib = _checked(_load_fresh(out))
            except (OSError, AttributeError):
                _discard(out)
                raise KernelError("unloadable", "the {owner} kernel '{out}' cannot be loaded ({e})",
                                  "it was removed: run again", {"out": str(out), "e": str(e)}) from None
        f = lib.mf_sgd
        p, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
        f.argtypes = [ctypes.c_int, p, p, p, p, ctypes.c_int, p, p, p, p, i64, i64, f32, f32, f32, f32, f32,
                      ctypes.c_int, i64, p, p, ctypes.c_uint64]
        f.restype = ctypes.c_double
        f = lib.svdpp_sgd
        f.argtypes = [p, p, p, p, p, ctypes.c_int, p, p, p, p, p, p, i64, i64, f32, f32, f32, f32, f32,
                      ctypes.c_uint64]
        f.restype = ctypes.c_double
        _lib = lib
        return lib


def _load_fresh(out: Path):
    """``out`` loaded from a copy under another name: the process's loader answers a path it has loaded (the
    damaged library, still mapped) with that library again."""
    d = Path(tempfile.mkdtemp(prefix="embedrec-kernel-"))  # 0700 by mkdtemp
    try:
        copy = d / out.name
        shutil.copyfile(out, copy)
        return ctypes.CDLL(str(copy))  # mapped: the file can go
    finally:
        shutil.rmtree(d, ignore_errors=True)


SYMBOLS = ("mf_sgd", "svdpp_sgd", "als_cg", "topk_rows")  # what the callers look up: all there, or rebuilt


def _checked(lib):
    """``lib``, where it has every function of :data:`SYMBOLS` (AttributeError naming the first it lacks)."""
    for name in SYMBOLS:
        getattr(lib, name)
    return lib


def _private_dir(d: Path) -> Path:
    """The kernel cache folder, owned by this user and closed to others (0700): ctypes runs a loaded library's
    code, so a folder others can write to would let them plant one. A folder owned by someone else is not
    used: the kernel is then built into a fresh private temporary folder."""
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(d)
        import stat

        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            if st.st_mode & 0o077:
                os.chmod(d, 0o700)
                # what others could write while it was open is not ours, whatever its checksum file says (a red
                # team planted a library and its .sha256 in a 0777 cache: it was loaded, and its code ran)
                for f in d.iterdir():
                    if f.is_symlink() or f.is_file():
                        f.unlink()
            return d
    except OSError as e:
        raise KernelError("unwritable", "the {owner} kernel cannot be written to '{d}' ({why})",
                          "point $EMBEDREC_CACHE at a writable folder",
                          {"d": str(d), "why": str(e.strerror)}) from None
    global _private_tmp
    if _private_tmp is None:
        _private_tmp = Path(tempfile.mkdtemp(prefix="embedrec-kernels-"))  # 0700 by mkdtemp
    return _private_tmp


_private_tmp: Path | None = None


def _sum_path(out: Path) -> Path:
    return out.with_name(out.name + ".sha256")


def _intact(out: Path) -> bool:
    """The cached kernel exists, is ours, and matches the SHA-256 recorded when it was built (a truncated or
    altered file would crash the process, or run foreign code, when loaded)."""
    try:
        st = os.lstat(out)
        import stat

        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            _discard(out)
            return False
        from embedrec.fsutil.files import read_regular

        # (a red team: a FIFO in place of the checksum hung train; read_regular refuses what is no file)
        want = read_regular(_sum_path(out), "kernel checksum", "", limit=4096).decode("ascii").strip()
        h = hashlib.sha256(out.read_bytes()).hexdigest()
    except (OSError, UnicodeDecodeError, ArtifactError):
        _discard(out)
        return False
    if h != want:
        _discard(out)
        return False
    return True


def _discard(out: Path) -> None:
    for p in (out, _sum_path(out)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass


def _build(cc: list[str], out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as e:
        raise KernelError("unwritable", "the {owner} kernel cannot be written to '{d}' ({why})",
                          "point $EMBEDREC_CACHE at a writable folder",
                          {"d": str(out.parent), "why": str(e.strerror)}) from None
    os.close(fd)
    errors = []
    try:
        for extra in (["-march=native"], []):  # some compilers (or CPUs) do not take -march=native
            cmd = [*cc, *_FLAGS, *extra, "-o", tmp, str(SOURCE), "-lm"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode == 0:
                os.chmod(tmp, 0o700)
                data = Path(tmp).read_bytes()
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                from embedrec.fsutil.files import atomic_write_text

                atomic_write_text(_sum_path(out), hashlib.sha256(data).hexdigest() + "\n")
                os.replace(tmp, out)
                return
            errors.append(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    raise KernelError("compile-failed", "compiling the {owner} kernel with {cc} failed ({error})",
                      "fix the compiler (or set CC)", {"cc": " ".join(cc), "error": errors[-1]})
