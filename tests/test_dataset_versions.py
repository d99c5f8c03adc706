"""Prepared datasets in generations (issue 17, section 2): DATASET/current -> gen-<version>/, readers resolve it
once and hold their generation, pruning skips held ones, killed writers' temp folders are swept, the old flat
layout still loads, and every rename is preceded by fsyncs."""

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embedrec.data.dataset import load_dataset
from tests.faults_helpers import generation_whole, ingest, mixed_loads, snapshot, write_ratings


@pytest.fixture
def csv(tmp_path):
    return write_ratings(tmp_path / "ratings.csv")


def generations(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("gen-*"))


def reference(csv: Path, tmp_path: Path, seed: int):
    out = tmp_path / f"ref-{seed}"
    if not out.exists():
        ingest(csv, out, seed)
    return load_dataset(out)


def test_reader_holding_a_generation_survives_ten_reingests(csv, tmp_path):
    root = tmp_path / "ds"
    ingest(csv, root, 1)
    held = load_dataset(root)
    a = snapshot(held)
    for i in range(10):
        ingest(csv, root, 2 + i, overwrite=True)
    assert held.folder.exists() and held.folder.parent == root and held.folder.name.startswith("gen-")
    assert generation_whole(held)
    again = load_dataset(held.folder)  # A's rows, read again in full from A's folder
    assert again.fingerprint == held.fingerprint and snapshot(again) == a
    assert len(again.splits["train"]) + len(again.splits["valid"]) + len(again.splits["test"]) == \
        held.manifest["counts"]["ratings"]
    now = load_dataset(root)
    assert now.fingerprint == reference(csv, tmp_path, 11).fingerprint != held.fingerprint


def test_newest_generation_is_served_after_each_publish(csv, tmp_path):
    root = tmp_path / "ds"
    for i, seed in enumerate((1, 2, 3, 2)):
        ingest(csv, root, seed, overwrite=i > 0)
        link = os.readlink(root / "current")
        assert link.startswith("gen-") and (root / link).is_dir()
        ds = load_dataset(root)
        assert ds.folder == root / link and ds.path == root
        assert ds.fingerprint == reference(csv, tmp_path, seed).fingerprint
        assert json.loads((root / "manifest.json").read_text())["fingerprint"] == ds.fingerprint  # convenience link
    assert load_dataset(root / "current").path == root  # DATASET/current means DATASET


def test_pruning_removes_unheld_generations_and_keeps_held_ones(csv, tmp_path):
    root = tmp_path / "ds"
    ingest(csv, root, 1)
    a = load_dataset(root)
    ingest(csv, root, 2, overwrite=True)
    b = load_dataset(root)
    b_folder = b.folder
    del b
    gc.collect()
    ingest(csv, root, 3, overwrite=True)
    ingest(csv, root, 4, overwrite=True)
    current = os.readlink(root / "current")
    assert generations(root) == sorted([a.folder.name, current])  # B (released) pruned, A (held) kept
    assert not b_folder.exists()
    del a
    gc.collect()
    ingest(csv, root, 5, overwrite=True)
    assert generations(root) == [os.readlink(root / "current")]


KILLED_WRITER = r"""
import sys, time
from pathlib import Path
import embedrec.ingestion as ing
real = ing.write_dataset
def stuck(tmp, *a, **k):
    real(tmp, *a, **k)
    Path(sys.argv[3] + ".part").write_text(str(tmp))  # whole before it is seen (a full run at load 14 read '')
    Path(sys.argv[3] + ".part").rename(sys.argv[3])
    time.sleep(600)
ing.write_dataset = stuck
from embedrec.cli import main
main(["ingest", "-q", sys.argv[1], "-o", sys.argv[2], "--overwrite", "--set", "split.seed=9"])
"""


def test_killed_writers_temp_folders_are_swept(csv, tmp_path):
    root = tmp_path / "ds"
    ingest(csv, root, 1)
    before = load_dataset(root).fingerprint
    ready = tmp_path / "ready"
    p = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(csv), str(root), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the writer never reached its write"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    stale = Path(ready.read_text())
    assert stale.parent == root and stale.name.startswith(".gen-") and stale.exists()  # inside, never current
    assert load_dataset(root).fingerprint == before  # the previous generation is still served
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    beside = tmp_path / f".ds.embedrec-tmp-{dead.pid}-abcd1234"  # a killed writer's folder from the flat layout
    beside.mkdir()
    # killed between swap_link's new link and its rename (the fault suite found one left after the rerun)
    link = root / f".current.embedrec-tmp-{dead.pid}-0123abcd"
    os.symlink(stale.name[1:].removesuffix(".tmp"), link)  # (the generation its folder was to become)
    ingest(csv, root, 2, overwrite=True)  # the killed writer's lock died with it
    assert not stale.exists() and not beside.exists() and not os.path.lexists(link)
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert generations(root) == [os.readlink(root / "current")]


def test_pruning_sweeps_only_the_links_swap_link_made(csv, tmp_path):
    """Session 51: pruning swept any link named '.current.<n>', '.manifest.json.<n>' or '.<name>.parquet.<n>'
    whose number was no live process, a user's hidden link '.x.parquet.123' among them. swap_link's new link is
    '.<link>.embedrec-tmp-<pid>-<8 hex>' now, and one is swept only where it points where swap_link points one (a
    generation for current, current/<name> for a dataset's link) and its writer is gone: a user's links of the
    older shape, of embedrec's shape pointing elsewhere, and a live writer's, stay."""
    root = tmp_path / "ds"
    ingest(csv, root, 1)
    mine = tmp_path / "mine.parquet"
    mine.write_bytes(b"the user's")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    gen = os.readlink(root / "current")
    try:
        kept = {f".x.parquet.{dead.pid}": mine, f".train.parquet.{dead.pid}": mine,  # the older shape's names
                f".current.{dead.pid}": gen, f".manifest.json.{dead.pid}": "current/manifest.json",
                f".train.parquet.embedrec-tmp-{dead.pid}-0123abcd": mine,  # embedrec's shape, pointing elsewhere
                f".current.embedrec-tmp-{dead.pid}-0123abcd": "mine",
                f".current.embedrec-tmp-{live.pid}-0123abcd": gen}  # a live writer's
        swept = {f".current.embedrec-tmp-{dead.pid}-4567cdef": gen,
                 f".train.parquet.embedrec-tmp-{dead.pid}-4567cdef": "current/train.parquet",
                 f".manifest.json.embedrec-tmp-{dead.pid}-4567cdef": "current/manifest.json"}
        for name, target in {**kept, **swept}.items():
            os.symlink(target, root / name)
        ingest(csv, root, 2, overwrite=True)
        assert {p.name: os.readlink(p) for p in root.iterdir() if p.name.startswith(".")} == \
            {name: str(target) for name, target in kept.items()}
        assert (root / f".x.parquet.{dead.pid}").read_bytes() == b"the user's"
    finally:
        live.kill()
        live.wait()


def _flat_copy(root: Path, flat: Path) -> Path:
    """The layout datasets had before generations: the same files, directly in the folder."""
    flat.mkdir()
    gen = root / os.readlink(root / "current")
    for p in gen.iterdir():
        shutil.copyfile(p, flat / p.name)
    return flat


def test_old_flat_layout_loads_and_is_replaced_by_generations(csv, tmp_path):
    from embedrec.run import Run
    from embedrec.run_inputs import run_dataset

    ingest(csv, tmp_path / "v", 1)
    flat = _flat_copy(tmp_path / "v", tmp_path / "flat")
    old = load_dataset(flat)
    assert old.folder == flat and old.path == flat and old.fingerprint == load_dataset(tmp_path / "v").fingerprint
    # a run trained on the flat dataset pins its absolute path and content fingerprint
    run = Run(tmp_path / "run", {"dataset": {"path": str(flat.resolve()), "files_fingerprint": old.fingerprint}})
    ingest(csv, flat, 1, overwrite=True)  # the same content again: now in generations
    assert os.readlink(flat / "current").startswith("gen-") and generations(flat)
    assert not (flat / "train.parquet").resolve().parent == flat
    assert run_dataset(run).fingerprint == old.fingerprint  # still the run's dataset
    for recorded in (flat / "current", flat / "gen-20000101T000000-000000000"):  # current; a pruned generation
        moved = Run(run.path, {"dataset": {"path": str(recorded), "files_fingerprint": old.fingerprint}})
        assert run_dataset(moved).path == flat
    ingest(csv, flat, 5, overwrite=True)  # other content: the run refuses it
    from embedrec.errors import ArtifactError

    with pytest.raises(ArtifactError, match="is not the one run"):
        run_dataset(run)


def test_a_reader_of_the_flat_layout_reads_again_once_an_ingest_made_it_generations(csv, tmp_path):
    """ingest --overwrite turns a flat dataset into generations in place (its flat files replaced by links into
    the new generation one by one): a load that opened the flat folder before sees it, and reads the dataset
    again through current, never a mix of the two."""
    from embedrec.data.dataset import _open_folder

    ingest(csv, tmp_path / "v", 1)
    flat = _flat_copy(tmp_path / "v", tmp_path / "flat")
    folder, hold, fd, gone = _open_folder(flat)
    try:
        assert folder == flat and not gone()
        ingest(csv, flat, 2, overwrite=True)
        assert gone()
    finally:
        if hold is not None:
            hold.close()
        else:
            os.close(fd)
    assert load_dataset(flat).fingerprint == reference(csv, tmp_path, 2).fingerprint


def test_verify_checks_the_current_generation(csv, tmp_path):
    from click.testing import CliRunner

    from embedrec.cli import main

    root = tmp_path / "ds"
    ingest(csv, root, 1)
    ingest(csv, root, 2, overwrite=True)
    r = CliRunner().invoke(main, ["verify", str(root)])
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: dataset '{root}': 5 files"), r.stderr
    gen = root / os.readlink(root / "current")
    with open(gen / "test.parquet", "r+b") as fh:
        fh.seek(8)
        b = fh.read(1)
        fh.seek(8)
        fh.write(bytes([b[0] ^ 1]))
    r = CliRunner().invoke(main, ["verify", str(root)])
    assert r.exit_code == 1 and f"dataset file '{gen / 'test.parquet'}'" in r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_files_and_folders_are_fsynced_around_each_rename(csv, tmp_path, monkeypatch):
    from embedrec.fsutil.files import atomic_write_bytes
    from embedrec.run_publish import publish

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(a, b, **kw):
        events.append(("rename", os.path.abspath(a), os.path.abspath(b)))
        return real_replace(a, b, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    def check(published: Path, root: Path):
        """Each file and the folder fsynced before the rename that publishes the folder; the root after it
        and after the swap of 'current'."""
        i = next(i for i, e in enumerate(events) if e[0] == "rename" and e[2] == str(published))
        tmp = events[i][1]
        synced = {e[1] for e in events[:i] if e[0] == "fsync"}
        assert {str(published / p.name).replace(str(published), tmp) for p in published.iterdir()} <= synced
        assert tmp in synced
        j = next(j for j, e in enumerate(events) if e[0] == "rename" and e[2] == str(root / "current"))
        assert j > i and ("fsync", str(root)) in events[i + 1:j] and ("fsync", str(root)) in events[j + 1:]

    root = (tmp_path / "ds").resolve()
    ingest(csv, root, 1)  # a new dataset: built beside, swapped in whole
    ingest(csv, root, 2, overwrite=True)  # a new generation inside
    check(root / os.readlink(root / "current"), root)

    def write(tmp: Path) -> None:
        (tmp / "a.npy").write_bytes(b"x" * 100)
        (tmp / "manifest.json").write_text("{}")

    run = (tmp_path / "run").resolve()
    check(publish(run, write), run)  # run directories take the same path

    events.clear()
    f = (tmp_path / "f.json").resolve()
    atomic_write_bytes(f, b"{}")
    i = next(i for i, e in enumerate(events) if e[0] == "rename" and e[2] == str(f))
    assert ("fsync", events[i][1]) in events[:i] and ("fsync", str(tmp_path.resolve())) in events[i + 1:]


def test_loads_never_mix_while_ingest_overwrites(tmp_path):
    """The fast variant of the fault suite's loop (benchmarks/faults.py runs mixed_loads(1000) or more)."""
    res = mixed_loads(200, tmp_path, min_publishes=3)
    assert res["writer_error"] == "" and res["errors"] == 0, res
    assert res["mixed"] == 0 and res["lost"] == 0 and res["loads"] == 200, res
    assert res["generations"] >= 2, res


def test_ranks_read_users_and_movies_checked_against_the_manifest(csv, tmp_path):
    """An architecture review: the torchrun trainers read users.parquet and movies.parquet with a bare Parquet
    read (replica's model, the ranks' publish), unchecked, and replica from DATASET/current rather than the
    generation the ranks trained on. They read them through read_tables: the bytes checked against the
    manifest, the row counts against its counts."""
    from embedrec.data.dataset import read_tables
    from embedrec.errors import ArtifactError

    root = tmp_path / "ds"
    ingest(csv, root, 1)
    ds = load_dataset(root)
    folder, manifest = ds.folder, ds.manifest
    users, movies = read_tables(folder, manifest)
    assert users.equals(ds.users) and movies.equals(ds.movies)
    with pytest.raises(ArtifactError, match=r"users/movies counts differ"):
        read_tables(folder, {**manifest, "counts": {**manifest["counts"], "movies": len(movies) + 1}})
    with pytest.raises(ArtifactError, match=r"lists no movies.parquet"):
        read_tables(folder, {**manifest, "files": {k: v for k, v in manifest["files"].items()
                                                   if k != "movies.parquet"}})
    target = folder / "movies.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    os.chmod(target, 0o644)
    target.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"^prepared dataset file '.*movies.parquet' does not match its checksum"):
        read_tables(folder, manifest)


def _overwrite(csv: Path, out: Path):
    from click.testing import CliRunner

    from embedrec.cli import main

    return CliRunner().invoke(main, ["ingest", "-q", str(csv), "-o", str(out), "--overwrite"])


def test_overwrite_never_removes_a_users_files_beside_a_dataset_whose_current_is_not_embedrecs_link(csv, tmp_path):
    """A red team: where a dataset folder's 'current' was not embedrec's link to a generation (a copy made with
    links followed, a lost current, a user's backup it was led to), `ingest --overwrite` replaced the folder whole,
    the user's notes, .git, .env and backup with it, exit 0. Such a folder is refused naming them; one holding
    embedrec's files alone is still replaced."""
    ds = tmp_path / "ds"
    ingest(csv, ds, 1)
    cases = {}
    copy = tmp_path / "copy"  # cp -rL: current a folder
    shutil.copytree(ds, copy, symlinks=False)
    (copy / "notes.txt").write_text("mine")
    (copy / "mine").mkdir()
    cases[copy] = ("mine/", "notes.txt")
    lost = tmp_path / "lost"  # current gone (train's own error advises ingest --overwrite)
    shutil.copytree(ds, lost, symlinks=True)
    gen = os.readlink(lost / "current")
    (lost / gen / "notes.txt").write_text("mine")
    (lost / ".env").write_text("secret")
    (lost / ".git").mkdir()
    (lost / "current").unlink()
    cases[lost] = (".env", ".git/", f"{gen}/")
    backup = tmp_path / "backup"  # current led to the user's own copy of a generation
    shutil.copytree(ds, backup, symlinks=True)
    shutil.copytree(backup / os.readlink(backup / "current"), backup / "mybackup")
    (backup / "current").unlink()
    (backup / "current").symlink_to("mybackup")
    cases[backup] = ("mybackup/",)
    for folder, named in cases.items():
        before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
        r = _overwrite(csv, folder)
        assert r.exit_code == 2 and "holds a dataset beside what embedrec did not write" in r.stderr, r.stderr
        assert all(n in r.stderr for n in named), r.stderr
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == before  # nothing removed
    clean = tmp_path / "clean"  # embedrec's own files alone: replaced, as before
    shutil.copytree(ds, clean, symlinks=False)
    r = _overwrite(csv, clean)
    assert r.exit_code == 0 and (clean / "current").is_symlink(), r.stderr
    load_dataset(clean)


def test_a_file_in_place_of_a_top_level_link_is_said_by_verify_and_kept_by_overwrite(csv, tmp_path):
    """A red team: a regular file in place of one of a dataset's top-level links (DATASET/users.parquet ->
    current/users.parquet) passed verify, and ingest --overwrite replaced it by the link without a word. verify
    names it; --overwrite refuses, as it refuses the flat layout's changed files; a copy of the same bytes is
    fine. A generation whose manifest was deleted is said as such, not as no dataset."""
    from click.testing import CliRunner

    from embedrec.cli import main

    ds = tmp_path / "ds"
    ingest(csv, ds, 1)
    (ds / "movies.parquet").unlink()  # a copy of the same bytes in the link's place: embedrec's still
    shutil.copyfile(ds / "current" / "movies.parquet", ds / "movies.parquet")
    assert CliRunner().invoke(main, ["verify", str(ds)]).exit_code == 0
    (ds / "users.parquet").unlink()
    (ds / "users.parquet").write_text("my precious notes")
    r = CliRunner().invoke(main, ["verify", str(ds)])
    assert r.exit_code == 1 and f"'{ds / 'users.parquet'}' is a file of other bytes than the dataset's users.parquet" \
        in r.stderr, r.stderr
    r = _overwrite(csv, ds)
    assert r.exit_code == 2 and "users.parquet" in r.stderr and "someone changed since" in r.stderr, r.stderr
    assert (ds / "users.parquet").read_text() == "my precious notes"
    (ds / "users.parquet").unlink()
    (ds / "users.parquet").symlink_to("../elsewhere.parquet")
    r = CliRunner().invoke(main, ["verify", str(ds)])
    assert r.exit_code == 1 and "is a link to '../elsewhere.parquet', where embedrec keeps its link" in r.stderr
    (ds / "users.parquet").unlink()  # a red team: a link deleted, or a folder in its place, passed verify
    r = CliRunner().invoke(main, ["verify", str(ds)])
    assert r.exit_code == 1 and r.stderr == (
        f"error: '{ds / 'users.parquet'}' is missing, where embedrec keeps its link to current/users.parquet for tools "
        f"that read the dataset's files by path: put the link back (ln -sfn current/users.parquet "
        f"'{ds / 'users.parquet'}')\n"), r.stderr
    (ds / "users.parquet").mkdir()
    r = CliRunner().invoke(main, ["verify", str(ds)])
    assert r.exit_code == 1 and f"'{ds / 'users.parquet'}' is a folder, where embedrec keeps its link to " \
        "current/users.parquet for tools that read the dataset's files by path: move it out and put the link back" \
        in r.stderr, r.stderr
    (ds / "users.parquet").rmdir()
    (ds / "users.parquet").symlink_to("current/users.parquet")
    gen = os.readlink(ds / "current")
    (ds / gen / "manifest.json").unlink()
    for args in (["verify", str(ds)], ["train", "--set", f"data.prepared={ds}", "--run", str(tmp_path / "r")]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code != 0 and f"its generation '{gen}' (the one 'current' names) has no manifest.json" in \
            r.stderr, r.stderr
    assert _overwrite(csv, ds).exit_code == 0
    assert CliRunner().invoke(main, ["verify", str(ds)]).exit_code == 0


def test_a_generation_moved_out_and_linked_back_is_said_as_such(csv, tmp_path):
    """A red team: a generation moved to another disk and linked back was refused as "'ds/current' points to
    'gen-...', outside 'ds'", though gen-... is in ds: it is that link that leads out."""
    from click.testing import CliRunner

    from embedrec.cli import main

    ds, away = tmp_path / "ds", tmp_path / "away"
    ingest(csv, ds, 1)
    gen = os.readlink(ds / "current")
    away.mkdir()
    shutil.move(str(ds / gen), str(away / gen))
    (ds / gen).symlink_to(away / gen)
    r = CliRunner().invoke(main, ["verify", str(ds)])
    assert r.exit_code == 1 and f"'{ds / gen}' is a link to '{away / gen}': the current of a run or dataset names " \
        "a folder in it, not a link leading out of it" in r.stderr, r.stderr


def test_overwrite_keeps_a_users_gen_named_folder_and_takes_its_own_temporaries(csv, tmp_path):
    """A second diff review: a user's gen-backup/ folder of parquet files beside a copied dataset went with the
    --overwrite (any gen-* folder of names embedrec writes passed), and the refusal came after the whole source was
    read; a killed swap's own temporary link was named as a user's file."""
    from click.testing import CliRunner

    from embedrec.cli import main

    ds = tmp_path / "ds"
    ingest(csv, ds, 1)
    copy = tmp_path / "copy"
    shutil.copytree(ds, copy, symlinks=False)
    (copy / "gen-backup").mkdir()
    shutil.copyfile(ds / "current" / "train.parquet", copy / "gen-backup" / "mine.parquet")
    r = CliRunner().invoke(main, ["ingest", str(csv), "-o", str(copy), "--overwrite"])
    assert r.exit_code == 2 and "gen-backup/" in r.stderr and "read " not in r.stderr, r.stderr  # before reading
    assert (copy / "gen-backup" / "mine.parquet").exists()
    lost = tmp_path / "lost"
    shutil.copytree(ds, lost, symlinks=True)
    (lost / ".train.parquet.embedrec-tmp-999-abcdef12").symlink_to("current/train.parquet")
    (lost / "current").unlink()
    r = CliRunner().invoke(main, ["ingest", "-q", str(csv), "-o", str(lost), "--overwrite"])
    assert r.exit_code == 0, r.stderr
