"""Fault loops shared by the tests and the fault suite (benchmarks/faults.py imports ``tests.faults_helpers``).

``mixed_loads(n)``: load a prepared dataset ``n`` times while another process runs ``embedrec ingest
--overwrite`` on it in a loop, alternating two split seeds (same ratings, different splits: a load that mixed
two generations would pair one seed's movies table with the other's splits). Every load must equal exactly
one reference dataset, and a Dataset kept alive must still find its generation whole on disk.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEEDS = (11, 12)

# runs `embedrec ingest --overwrite` in one process, again and again, until the stop file appears
WRITER = r"""
import os
import sys
from pathlib import Path
from embedrec.cli import main
csv, out, stop, count, *seeds = sys.argv[1:]
n = 0
while not Path(stop).exists():
    rc = main(["ingest", "-q", csv, "-o", out, "--overwrite", "--set", f"split.seed={seeds[n % len(seeds)]}"],
              standalone_mode=False)
    if rc not in (None, 0):
        sys.exit(f"ingest exited {rc}")
    n += 1
    Path(count + ".tmp").write_text(str(n))
    os.replace(count + ".tmp", count)  # whole: a reader never sees the file truncated mid-write (it read 0)
"""


def write_ratings(path: Path, n_users: int = 30, n_movies: int = 20, per_user: int = 12, seed: int = 0) -> Path:
    """A small ratings CSV (user_id, movie_id, rating, timestamp)."""
    rng = np.random.default_rng(seed)
    rows = ["user_id,movie_id,rating,timestamp"]
    for u in range(1, n_users + 1):
        for m in rng.choice(np.arange(1, n_movies + 1), size=per_user, replace=False):
            rows.append(f"{u},{m},{rng.integers(1, 6)},{1000 + u * 50 + int(m)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def ingest(csv: Path, out: Path, seed: int, overwrite: bool = False) -> None:
    """``embedrec ingest -q CSV -o OUT --set split.seed=SEED [--overwrite]`` in this process."""
    from click.testing import CliRunner

    from embedrec.cli import main

    args = ["ingest", "-q", str(csv), "-o", str(out), "--set", f"split.seed={seed}"]
    r = CliRunner().invoke(main, args + (["--overwrite"] if overwrite else []))
    if r.exit_code != 0:
        raise RuntimeError(f"ingest failed ({r.exit_code}): {r.stderr or r.output}")


def snapshot(ds) -> tuple:
    """Everything a load returns, as bytes: two loads are the same dataset when their snapshots are equal."""
    parts = [ds.users["user_id"].to_numpy().tobytes(), ds.movies["movie_id"].to_numpy().tobytes()]
    for name in sorted(ds.splits):
        s = ds.splits[name]
        parts += [name, s.user.tobytes(), s.movie.tobytes(), s.rating.tobytes()]
    return tuple(parts)


def generation_whole(ds) -> bool:
    """Whether the folder a Dataset was read from still holds every file its manifest lists, unchanged."""
    from embedrec.fsutil.integrity import file_entry

    try:
        return all(file_entry(ds.folder / name) == entry for name, entry in ds.manifest["files"].items())
    except OSError:
        return False


def mixed_loads(n_loads: int = 1000, workdir: str | Path | None = None, window: int = 8,
                min_publishes: int = 1, timeout: float = 60.0) -> dict:
    """Load a dataset ``n_loads`` times while another process re-ingests it with ``--overwrite`` in a loop.

    Returns counts: ``loads`` (that returned), ``mixed`` (equal to neither reference dataset), ``errors``
    (loads that raised; ``first_error`` says what), ``lost`` (a Dataset kept alive for ``window`` more loads
    whose generation folder no longer held its files unchanged), ``publishes`` (ingests finished during the loop),
    ``generations`` (distinct generation folders served), ``seconds``, ``writer_error``.
    """
    from embedrec.data.dataset import load_dataset

    tmp = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="embedrec-mixed-"))
    tmp.mkdir(parents=True, exist_ok=True)
    csv = write_ratings(tmp / "ratings.csv")
    refs = {}
    for seed in SEEDS:
        ingest(csv, tmp / f"ref-{seed}", seed)
        ref = load_dataset(tmp / f"ref-{seed}")
        refs[ref.fingerprint] = snapshot(ref)
    if len(refs) != len(SEEDS):
        raise RuntimeError("the two split seeds gave the same dataset; the loop could not see a mix")
    target, stop, count = tmp / "ds", tmp / "stop", tmp / "count"
    ingest(csv, target, SEEDS[0])
    stop.unlink(missing_ok=True)
    count.unlink(missing_ok=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(csv), str(target), str(stop), str(count),
                               *map(str, SEEDS)], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def published() -> int:
        try:
            return int(count.read_text() or 0)
        except (OSError, ValueError):
            return 0

    out = {"loads": 0, "mixed": 0, "errors": 0, "lost": 0, "publishes": 0, "generations": 0, "seconds": 0.0,
           "first_error": "", "writer_error": ""}
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + timeout
        while published() < 1 and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # start once the writer is publishing
        start, t0 = published(), time.perf_counter()
        live: collections.deque = collections.deque()
        for _ in range(n_loads):
            try:
                ds = load_dataset(target)
            except Exception as e:  # noqa: BLE001 - every failure is counted, the first one reported
                out["errors"] += 1
                out["first_error"] = out["first_error"] or f"{type(e).__name__}: {e}"
                continue
            out["loads"] += 1
            if refs.get(ds.fingerprint) != snapshot(ds):
                out["mixed"] += 1
            seen.add(ds.folder.name)
            live.append(ds)
            if len(live) > window:
                old = live.popleft()
                out["lost"] += not generation_whole(old)
        out["seconds"] = round(time.perf_counter() - t0, 2)
        out["publishes"] = published() - start
    finally:
        stop.write_text("")
        try:
            _, err = writer.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            writer.kill()
            _, err = writer.communicate()
    if writer.returncode != 0:
        out["writer_error"] = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"rc {writer.returncode}"]
        out["writer_error"] = out["writer_error"][0]
    out["generations"] = len(seen)
    if out["publishes"] < min_publishes and not out["writer_error"]:
        out["writer_error"] = f"only {out['publishes']} publishes during the loop (wanted {min_publishes})"
    return out


if __name__ == "__main__":  # python -m tests.faults_helpers [N]
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    res = mixed_loads(n)
    print(" ".join(f"{k}={v}" for k, v in res.items()))
    sys.exit(0 if res["mixed"] == res["errors"] == res["lost"] == 0 and not res["writer_error"] else 1)
