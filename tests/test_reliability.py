"""Red-team findings (reviews/reliability.md): each test reproduces one row and checks the fix."""

import contextlib
import errno
import fcntl
import gzip
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.errors import ArtifactError, first_line, shorten
from tests.conftest import hangup_default, write  # (imported by name too: test_update_users.py)


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def one_line(r) -> str:
    """The stderr of a failed command: exactly one line, no traceback."""
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def write_csv(path: Path, n_users=30, n_movies=20, seed=0, extra: str = "") -> Path:
    rng = np.random.default_rng(seed)
    rows = ["user_id,movie_id,rating,timestamp"]
    for u in range(1, n_users + 1):
        for m in rng.choice(np.arange(1, n_movies + 1), size=12, replace=False):
            rows.append(f"{u},{m},{rng.integers(1, 6)},{1000 + u * 50 + int(m)}")
    path.write_text("\n".join(rows) + "\n" + extra)
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny dataset and an explicit model trained on it (adam, 2 epochs): (dataset dir, run dir)."""
    tmp = tmp_path_factory.mktemp("rel")
    csv = write_csv(tmp / "ratings.csv")
    ds, run = tmp / "ds", tmp / "run"
    r = invoke("ingest", "-q", csv, "-o", ds)
    assert r.exit_code == 0, r.stderr
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--set", f"run.dir={run}", "--set", "model.dim=4",
               "--set", "train.epochs=2", "--set", "model.objective=explicit", "--set", "train.optimizer=adam",
               "--format", "json")
    assert r.exit_code == 0, r.stderr
    return ds, run


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True)
    return dest


def current(run: Path) -> Path:
    return Path(os.path.realpath(run / "current"))


def retrain(run: Path) -> str:
    """run_fixes.run_fix's advice for a damaged run: train it again, naming its folder (a first-hour review: a bare
    "rerun 'embedrec train'" retrained runs/ml-100k over a damaged runs/c1)."""
    return f"rerun 'embedrec train --run {run}' with the -c/--set it was trained with"


def reingest(ds: Path, source: Path) -> str:
    """data.dataset.dataset_fix's advice for a damaged dataset: ingest its source into its folder again."""
    return f"rerun 'embedrec ingest {source} -o {ds} --overwrite' with the --set it was ingested with"


def flip(path: Path, offset: int | None = None, mask: int = 0x40) -> None:
    b = bytearray(path.read_bytes())
    b[len(b) // 2 if offset is None else offset] ^= mask
    path.write_bytes(bytes(b))


# ------------------------------------------------------------------------------------------ integrity (5, 6, 14)

def test_a_removed_seal_is_caught(base, tmp_path):
    """A red-team pass: a manifest edited and its "manifest_sha256" deleted was taken for an older unsealed one,
    so recommend served the edit and verify said ok. A manifest that lists its files' checksums (run: checksums,
    dataset: files) always carried a seal, so one without it is refused."""
    run = copy_run(base[1], tmp_path / "unsealed")
    p = current(run) / "manifest.json"
    m = json.loads(p.read_text())
    del m["manifest_sha256"]
    m["global_mean"] = 99.0
    p.write_text(json.dumps(m))
    for args in (["recommend", "--user", "1", "-k", "3", "--run", run], ["verify", run]):
        r = invoke(*args)
        assert r.exit_code == 1 and r.stdout == "", r.stderr
        assert "has lost its own checksum ('manifest_sha256'" in one_line(r) and "it was edited" in r.stderr
    ds = Path(os.path.realpath(shutil.copytree(base[0], tmp_path / "ds", symlinks=True) / "current"))
    m = json.loads((ds / "manifest.json").read_text())
    del m["manifest_sha256"]
    (ds / "manifest.json").write_text(json.dumps(m))
    assert "has lost its own checksum" in one_line(invoke("verify", tmp_path / "ds"))
    # a run from before the seal listed its checksums under "files" (a dataset's name for them): still an older
    # unsealed run, not an edited one (a review found such runs refused)
    from embedrec.errors import ArtifactError
    from embedrec.fsutil.integrity import check_seal

    check_seal({"files": {"a": {}}, "n_users": 3}, tmp_path / "m.json", "run manifest", "fix", "run")
    with pytest.raises(ArtifactError, match="has lost its own checksum"):
        check_seal({"files": {"a": {}}}, tmp_path / "m.json", "dataset manifest", "fix", "dataset")


def test_json_nested_too_deeply_is_a_corrupt_file_not_an_internal_error(base, tmp_path):
    """A red team: a manifest of 200,000 '[' then as many ']' (a run's, a dataset's, an export record, tune.json)
    was 'internal error (RecursionError ...)'; it is the one line of a corrupt file."""
    deep = "[" * 200_000 + "]" * 200_000
    run = copy_run(base[1], tmp_path / "run")
    (current(run) / "manifest.json").write_text(deep)
    ds = Path(os.path.realpath(shutil.copytree(base[0], tmp_path / "ds", symlinks=True) / "current"))
    (ds / "manifest.json").write_text(deep)
    for args in (["recommend", "--user", "1", "-k", "3", "--run", run], ["verify", run], ["verify", tmp_path / "ds"],
                 ["evaluate", "--run", run, "--set", f"data.prepared={tmp_path / 'ds'}"]):
        r = invoke(*args)
        assert r.exit_code == 1 and r.stdout == "", r.stderr
        assert "manifest '" in one_line(r) and "is corrupt (nested too deeply to read)" in one_line(r), r.stderr
        assert "internal error" not in r.stderr
    nested: object = 1  # 600 deep: decoded, then a recursive check of the seal failed (a review)
    for _ in range(600):
        nested = [nested]
    m = json.loads((current(base[1]) / "manifest.json").read_text())
    (current(run) / "manifest.json").write_text(json.dumps({**m, "extra": nested}))
    r = invoke("recommend", "--user", "1", "-k", "3", "--run", run)
    assert r.exit_code == 1 and "is corrupt (nested too deeply to read)" in one_line(r), r.stderr
    out = tmp_path / "emb"
    assert invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", out).exit_code == 0
    (out / ".embedrec-export.json").write_text(deep)
    r = invoke("verify", out)
    assert r.exit_code == 1 and "cannot be read (nested too deeply to read)" in one_line(r), r.stderr
    kept = sorted(p.name for p in out.iterdir())
    r = invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", out, "--overwrite")  # a record it cannot read:
    assert r.exit_code == 2 and "is damaged (not JSON), so --overwrite cannot tell its files from yours" in \
        one_line(r), r.stderr  # nothing deleted
    assert sorted(p.name for p in out.iterdir()) == kept


def test_a_flip_in_the_seal_key_is_caught(base, tmp_path):
    """A bit flip in the manifest's "manifest_sha256" key leaves valid JSON without a seal: every such flip that
    still parses is refused by recommend and by verify, as one in the seal's value is (found by the random sweep
    of test_faults)."""
    run = copy_run(base[1], tmp_path / "seal")
    p = current(run) / "manifest.json"
    good = p.read_bytes()
    start = good.index(b'"manifest_sha256"') + 1
    tried = sealed = 0
    for offset in range(start, start + len("manifest_sha256")):
        for bit in range(7):  # bit 7 makes invalid UTF-8: refused as unreadable JSON
            b = bytearray(good)
            b[offset] ^= 1 << bit
            if bytes(b[offset:offset + 1]) in (b'"', b"\\"):
                continue
            p.write_bytes(bytes(b))
            for args in (["recommend", "--user", "1", "-k", "3", "--run", run], ["verify", run]):
                r = invoke(*args)
                line = one_line(r)  # a control character instead: refused as unreadable JSON
                assert r.exit_code == 1 and "manifest.json" in line, (offset, bit, r.stderr)
                assert "does not match its checksum" in line or "is corrupt" in line, (offset, bit, args, r.stderr)
                sealed += "does not match its checksum" in line
            tried += 1
    p.write_bytes(good)
    assert tried >= 90 and sealed >= 100 and invoke("verify", run).exit_code == 0


def test_bit_flip_in_factors_is_refused_not_served(base, tmp_path):  # row 5
    run = copy_run(base[1], tmp_path / "flip")
    p = current(run) / "user_factors.npy"
    flip(p, offset=p.stat().st_size - 5)
    r = invoke("recommend", "--run", run, "--user", "1", "-k", "3")
    assert r.exit_code == 1
    assert one_line(r) == (f"error: run artifact '{p}' does not match its checksum (damaged or modified); "
                           f"{retrain(run)}")


def test_empty_npy_names_the_file(base, tmp_path):  # row 6
    run = copy_run(base[1], tmp_path / "empty")
    p = current(run) / "movie_factors.npy"
    size = p.stat().st_size
    p.write_bytes(b"")
    r = invoke("recommend", "--run", run, "--user", "1")
    assert r.exit_code == 1
    assert one_line(r) == (f"error: run artifact '{p}' is damaged (0 bytes, its manifest says {size:,}); "
                           f"{retrain(run)}")


def test_bit_flip_in_faiss_index_is_refused(base, tmp_path):  # row 5
    from embedrec.run import load_run
    from embedrec.serve import index as ix

    run = copy_run(base[1], tmp_path / "faiss")
    flip(current(run) / ix.COS_FILE)
    rn = load_run(run)
    d = rn.manifest["model"]["dim"]
    with pytest.raises(ArtifactError, match=r"index '.*movies_cos\.faiss' does not match its checksum .*rebuild_index"):
        ix.load_index(rn.path / ix.COS_FILE, rn.manifest["index"], "cos", rn.manifest["n_movies"], d)


def test_an_index_file_alone_missing_or_damaged_is_built_again_not_trained(base, tmp_path):
    """A first-hour review: with movies_ip.faiss deleted, verify and recommend said to train again, where `index
    rebuild --run RUN` makes it from the run's embeddings in 0.01 s. Where the index files alone are missing or
    damaged, both say that rebuild, naming the run and the index settings it had (another kind, HNSW's M), and it
    works as said; damage beyond them is still a retrain."""
    import embedrec as er

    run = copy_run(base[1], tmp_path / "run")
    (current(run) / "movies_ip.faiss").unlink()
    r = invoke("verify", run)
    want = f"'embedrec index rebuild --run {run} --set index.kind=flat'"
    assert r.exit_code == 1 and one_line(r) == (
        f"error: run file '{current(run) / 'movies_ip.faiss'}' is missing or does not match its checksum; build it "
        f"again from the run's embeddings: {want}"), r.stderr
    r = invoke(*shlex.split(want.strip("'"))[1:])
    assert r.exit_code == 0, r.stderr
    assert invoke("verify", run).exit_code == 0
    # an HNSW index of its own settings, its cosine file damaged: recommend --movie says the same rebuild
    r = invoke("index", "rebuild", "--run", run, "--set", "index.kind=hnsw", "--set", "index.hnsw_m=8")
    assert r.exit_code == 0, r.stderr
    flip(current(run) / "movies_cos.faiss")
    want = f"'embedrec index rebuild --run {run} --set index.kind=hnsw --set index.hnsw_m=8'"
    r = invoke("recommend", "--run", run, "--movie", "1", "-k", "2")
    assert r.exit_code == 1 and one_line(r) == (
        f"error: index '{current(run) / 'movies_cos.faiss'}' does not match its checksum (damaged or modified); build "
        f"it again from the run's embeddings: {want}"), r.stderr
    with pytest.raises(er.ArtifactError, match=re.escape(
            f"build it again from the run's embeddings: er.rebuild_index('{run}', cfg.updated({{'index.kind': 'hnsw', "
            "'index.hnsw_m': 8}))")):
        er.open(run).similar(1, 2)
    r = invoke("verify", run)
    assert r.exit_code == 1 and one_line(r).endswith(f"build it again from the run's embeddings: {want}"), r.stderr
    r = invoke(*shlex.split(want.strip("'"))[1:])
    assert r.exit_code == 0 and json.loads(r.stdout)["params"]["M"] == 8, r.stderr
    assert invoke("recommend", "--run", run, "--movie", "1", "-k", "2").exit_code == 0
    # another file damaged too: the run is trained again
    (current(run) / "movies_ip.faiss").unlink()
    flip(current(run) / "user_factors.npy")
    r = invoke("verify", run)
    assert r.exit_code == 1 and one_line(r).endswith(f"(and 1 more: user_factors.npy); {retrain(run)}"), r.stderr


def test_a_model_folder_copied_out_of_its_run_serves_read_only(base, tmp_path, monkeypatch):
    """A first-hour review: a model folder copied out (`cp -rL runs/mine/current model1`) passed `verify model1`,
    but `recommend --run model1` said "no trained model in 'model1'; run 'embedrec train --run model1' first".
    It serves wherever it is and whatever its name, checked as any run's model folder; nothing is written into it
    (train, index rebuild, outputs inside it are refused saying what to do instead), and its damage is mended by
    copying it again from its run."""
    import embedrec as er

    monkeypatch.chdir(tmp_path)
    run = copy_run(base[1], tmp_path / "run")
    want = invoke("recommend", "--run", run, "--user", "1", "-k", "3", "--format", "csv").stdout
    for name in ("model1", "current", "renamed.again"):
        shutil.copytree(current(run), tmp_path / name)  # links followed, as cp -rL
        assert invoke("verify", name).exit_code == 0
        r = invoke("recommend", "--run", name, "--user", "1", "-k", "3", "--format", "csv")
        assert r.exit_code == 0 and r.stdout == want, r.stderr
    assert len(er.open("model1").recommend(1, 3)) == 1
    files = sorted(os.listdir("model1"))
    r = invoke("train", "--run", "model1", "--set", f"data.prepared={base[0]}")
    assert r.exit_code == 2 and one_line(r) == (
        "error: run.dir 'model1' is a model folder copied out of a run (its manifest.json and files, no 'current'): it "
        "serves as it is (--run it with recommend, predict, evaluate or export; embedrec verify it), but nothing is "
        "written into it; train into a new or empty run.dir (e.g. runs/NAME), or into the run it was copied from"), \
        r.stderr
    r = invoke("index", "rebuild", "--run", "model1")
    name = current(run).name
    assert r.exit_code == 2 and one_line(r).endswith(
        "but nothing is written into it; rebuild the index of the run it was copied from and copy the model out "
        f"again, or make it a run first: mkdir model1-run && cp -a model1 model1-run/{name} && ln -s {name} "
        "model1-run/current, then embedrec index rebuild --run model1-run"), r.stderr
    r = invoke("export", "--run", "model1", "--to", "parquet", "-o", "model1/out")
    assert r.exit_code == 2 and "is inside" in one_line(r) and "a model folder of an embedrec run: a file written " \
        "there would replace" in r.stderr, r.stderr
    from embedrec.run_checks import check_run_folder

    with pytest.raises(er.OutputRefused, match="save to a new or empty folder, or to the run it was copied from"):
        check_run_folder("model1")  # what TrainedModel.save asks first
    assert sorted(os.listdir("model1")) == files
    # the way it says works: a run of it, whose index is then rebuilt
    os.mkdir("model1-run")
    shutil.copytree("model1", f"model1-run/{name}")
    os.symlink(name, "model1-run/current")
    assert invoke("index", "rebuild", "--run", "model1-run").exit_code == 0
    assert invoke("verify", "model1-run").exit_code == 0
    # damage: copy it again from the run it came from, which its manifest names (not train it)
    home = base[1].resolve()  # the run its manifest was sealed in (copy_run keeps it)
    again = f"copy it again from the run it came from (cp -rL {home}/current model1, once that run is whole: " \
            f"embedrec verify {home}), or train that run again"
    (tmp_path / "model1" / "movies_ip.faiss").unlink()
    r = invoke("verify", "model1")
    assert r.exit_code == 1 and one_line(r).endswith(f"does not match its checksum; {again}"), r.stderr
    flip(tmp_path / "model1" / "user_factors.npy")
    r = invoke("recommend", "--run", "model1", "--user", "1")
    assert r.exit_code == 1 and one_line(r).endswith(f"does not match its checksum (damaged or modified); {again}"), \
        r.stderr
    (tmp_path / "renamed.again" / "notes.txt").write_text("mine")  # a file put there: named, as in a run's folder
    r = invoke("verify", "renamed.again")
    assert r.exit_code == 1 and "holds 'notes.txt', which its manifest does not list" in one_line(r), r.stderr


def test_edited_run_manifest_is_refused(base, tmp_path):
    run = copy_run(base[1], tmp_path / "man")
    p = current(run) / "manifest.json"
    m = json.loads(p.read_text())
    m["global_mean"] = 4.9
    p.write_text(json.dumps(m))
    r = invoke("recommend", "--run", run, "--user", "1")
    assert r.exit_code == 1
    assert one_line(r) == f"error: run manifest '{p}' does not match its checksum (damaged or edited); {retrain(run)}"


def test_damaged_dataset_file_is_named(base, tmp_path):  # row 14
    from embedrec.data.dataset import load_dataset

    ds = tmp_path / "ds"
    shutil.copytree(base[0], ds)
    p = ds / "train.parquet"
    flip(p, offset=p.stat().st_size // 4, mask=0x01)
    with pytest.raises(ArtifactError) as e:
        load_dataset(ds)
    assert e.value.cli_message() == (f"prepared dataset file '{p}' does not match its checksum (damaged or "
                                     f"modified); {reingest(ds, base[0].parent / 'ratings.csv')}")
    assert str(e.value).endswith("; ingest it again with er.ingest(..., overwrite=True)")


def test_dataset_parquet_has_page_checksums(base):
    import pyarrow.parquet as pq

    md = pq.ParquetFile(base[0] / "train.parquet").metadata
    assert md.num_rows > 0
    m = json.loads((base[0] / "manifest.json").read_text())
    assert set(m["files"]) == {"users.parquet", "movies.parquet", "train.parquet", "valid.parquet", "test.parquet"}
    assert m["fingerprint"] and m["manifest_sha256"]


def test_the_solve_and_popularity_checks_by_hand():
    """verify._outside (the solve weights' and user divisors' check, a block at a time) and check_popularity's
    counts, against values chosen by hand: a NaN in the last block, a value just under the bound, a bound met where
    it must be exceeded (session 52's red team: a negative solve weight and an inf or negative popularity)."""
    from embedrec.errors import ArtifactError
    from embedrec.verify import FINITE_BLOCK, _outside, check_popularity

    step = FINITE_BLOCK * 16
    a = np.zeros(step + 3, np.float32)
    assert not _outside(a, 0.0) and _outside(a, 0.0, strict=True)  # 0 is a weight, never a divisor
    a[step + 2] = np.nan  # in the second block
    assert _outside(a, 0.0)
    assert _outside(np.array([1.0, -1e-9]), 0.0) and not _outside(np.array([1.0, 2.0]), 1.0)
    assert _outside(np.array([np.inf]), 0.0) and not _outside(np.zeros(0), 0.0)
    for ok in (np.array([0, 3], np.int64), np.array([0.0, 2.0])):  # (whole counts in a float table read the same)
        assert check_popularity(None, ok, 2) is ok
    with pytest.raises(ArtifactError, match=r"^the model: popularity.npy holds 2.5 for movie row 1, where each "
                                            r"movie's count is a whole number; train again$"):
        check_popularity(None, np.array([0.0, 2.5]), 2)  # (a red team's 1e300: test_recommend.py, by the dataset's)
    for bad, held in ((np.array([0.0, np.inf]), "inf for movie row 1"), (np.array([4, -2, -1]), "-2 for movie row 1"),
                      (np.array([np.nan, 1.0]), "nan for movie row 0")):
        with pytest.raises(ArtifactError) as e:
            check_popularity(None, bad, len(bad))
        assert str(e.value) == (f"the model: popularity.npy holds {held}, where each movie's count is a finite number "
                                ">= 0; train again")


def test_verify_command(base, tmp_path):
    r = invoke("verify", base[1])
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: run '{current(base[1])}': ")
    assert invoke("verify", "--run", base[1]).stdout == r.stdout  # --run, as every other command spells it
    r2 = invoke("verify", base[0], "--run", base[1])
    assert r2.exit_code == 2 and one_line(r2).startswith("error: give PATH or --run, not both")
    r = invoke("verify", base[0])
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: dataset '{base[0]}': 5 files")
    run = copy_run(base[1], tmp_path / "v")
    flip(current(run) / "state_dict.pt")  # a file no command reads on start: only verify sees it
    r = invoke("verify", run)
    assert r.exit_code == 1
    assert one_line(r) == (f"error: run file '{current(run) / 'state_dict.pt'}' is missing or does not match its "
                           f"checksum; {retrain(run)}")
    r = invoke("verify", tmp_path)
    assert r.exit_code == 1 and "is neither a run" in one_line(r)


def test_a_manifest_copied_from_another_run_is_named_as_such(base, tmp_path):
    """A review: another run's manifest.json copied into a model folder was met as damage of its first file
    (user_factors.npy); it is now named as another run's, with both folders where the manifest records its own
    (written since), and from most files' sizes for an older manifest."""
    import json

    from embedrec.fsutil.integrity import SEAL, seal

    ds = tmp_path / "ds2"
    assert invoke("ingest", "-q", write_csv(tmp_path / "r.csv", n_users=50, n_movies=30, seed=1), "-o", ds).exit_code == 0
    other = tmp_path / "other"
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--set", f"run.dir={other}", "--set", "model.dim=8",
               "--set", "train.epochs=2", "--set", "model.objective=explicit", "--set", "train.optimizer=adam")
    assert r.exit_code == 0, r.stderr
    theirs = json.loads((current(other) / "manifest.json").read_text())
    assert theirs["model_folder"] == {"name": current(other).name, "run": str(other.resolve())}
    run = copy_run(base[1], tmp_path / "a")
    mine = current(run) / "manifest.json"
    shutil.copyfile(current(other) / "manifest.json", mine)
    for args in (["verify", run], ["recommend", "--user", "1", "--run", run]):
        r = invoke(*args)
        assert r.exit_code == 1 and one_line(r) == (
            f"error: '{mine}' is the manifest of another model, '{current(other).resolve()}', copied here: put back "
            f"this folder's own manifest.json (from a copy of the run), or {retrain(run)}"), r.stderr
    theirs.pop("model_folder")
    theirs.pop(SEAL)
    mine.write_text(json.dumps(seal(theirs)))  # as an older embedrec wrote it
    for args in (["verify", run], ["recommend", "--user", "1", "--run", run]):
        r = invoke(*args)
        n = len(theirs["checksums"])  # (most differ in size; one may match by chance: a text file of the run)
        assert r.exit_code == 1 and re.fullmatch(
            rf"error: (\d+) of the {n} files of '{re.escape(str(current(run)))}' are not of the sizes its "
            r"manifest.json records: the manifest is likely another run's, copied here; put back this folder's own "
            rf"manifest.json \(from a copy of the run\), or {re.escape(retrain(run))}", one_line(r)), r.stderr
    # a model folder renamed (its own manifest, every file whole) still serves (a diff review: refused as another's)
    renamed = copy_run(base[1], tmp_path / "rn")
    new = renamed / "artifacts-20261205T000000-000000001"
    current(renamed).rename(new)
    (renamed / "current").unlink()
    (renamed / "current").symlink_to(new.name)
    r = invoke("recommend", "--user", "1", "--run", renamed, "-k", "1")
    assert r.exit_code == 0 and r.stdout.count("\n") == 2, r.stderr


def test_a_listed_run_file_that_is_missing_is_refused(base, tmp_path):
    """A file the run's manifest lists is missing, not an older run's layout: movies.json (else served from the
    Parquet files) and a bias table (else scored without it) are refused in one line."""
    run = copy_run(base[1], tmp_path / "m")
    (current(run) / "movies.json").unlink()
    r = invoke("recommend", "--user", "1", "-k", "3", "--run", run)
    assert r.exit_code == 1 and one_line(r) == (f"error: run artifact '{current(run) / 'movies.json'}' is missing; "
                                                f"{retrain(run)}")
    for name in ("movie_bias.npy", "user_bias.npy"):
        run = copy_run(base[1], tmp_path / name)
        (current(run) / name).unlink()  # an explicit model: both bias tables are listed
        r = invoke("recommend", "--user", "1", "-k", "3", "--run", run)
        assert r.exit_code == 1 and f"'{current(run) / name}' is missing" in one_line(r), r.stderr


def test_a_dataset_manifest_copied_from_another_ingest_is_named_as_such(base, tmp_path):
    """A red team: another ingest's manifest.json (the same file, another split seed) copied into a dataset's
    generation blamed its movies.parquet as damaged; most files of other sizes name the manifest now."""
    csv = base[0].parent / "ratings.csv"
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke("ingest", "-q", csv, "-o", a).exit_code == 0
    assert invoke("ingest", "-q", csv, "-o", b, "--set", "split.seed=89").exit_code == 0
    shutil.copyfile(b / "current" / "manifest.json", a / "current" / "manifest.json")
    r = invoke("train", "-q", "--set", f"data.prepared={a}", "--set", f"run.dir={tmp_path / 'run'}")
    line = one_line(r)
    assert r.exit_code != 0 and "files of prepared dataset" in line and "its manifest.json " \
        "records: the manifest is likely another dataset's, copied here; put back this folder's own manifest.json, " \
        "or" in line and "movies.parquet' is damaged" not in line, line
    flat = tmp_path / "flat"  # a folder of links to a dataset's files (a diff review: refused as another's)
    flat.mkdir()
    shutil.copyfile(b / "current" / "manifest.json", flat / "manifest.json")
    for f in (b / "current").resolve().glob("*.parquet"):
        os.symlink(f, flat / f.name)
    assert invoke("train", "-q", "--set", f"data.prepared={flat}", "--set", f"run.dir={tmp_path / 'run2'}",
                  "--set", "model.dim=4", "--set", "train.epochs=1", "--set", "train.als_dims=[]").exit_code == 0


def test_a_missing_run_manifest_says_how_to_fix_it(base, tmp_path):
    """A run whose manifest.json is gone said only that it is missing; it says what to do, as a missing artifact
    does."""
    run = copy_run(base[1], tmp_path / "nm")
    p = run / os.readlink(run / "current") / "manifest.json"
    p.unlink()
    for args in (["recommend", "--user", "1", "--run", run], ["verify", run], ["index", "rebuild", "--run", run]):
        r = invoke(*args)
        assert r.exit_code == 1 and one_line(r) == f"error: run manifest '{p}' is missing; {retrain(run)}", args


# ---------------------------------------------------------------------------------- dataset pinning (22, 23)

def test_run_pins_its_dataset(base, tmp_path):  # rows 22, 23
    from embedrec.run import load_run
    from embedrec.run_inputs import run_dataset

    run = load_run(base[1])
    rec = run.manifest["dataset"]
    assert Path(rec["path"]).is_absolute() and rec["files_fingerprint"]
    assert run_dataset(run).n_users == run.manifest["n_users"]
    other = tmp_path / "reingested"  # same ratings, same counts, another split seed
    r = invoke("ingest", "-q", base[0].parent / "ratings.csv", "-o", other, "--set", "split.seed=89")
    assert r.exit_code == 0, r.stderr
    with pytest.raises(ArtifactError, match=r"^dataset '.*reingested' is not the one run '.*' was trained on"):
        run_dataset(run, other)


# ------------------------------------------------------------------------------- dataset read during swap (24)

def test_loading_while_the_dataset_is_replaced_never_mixes(base, tmp_path):  # row 24
    from embedrec.data.dataset import load_dataset
    from embedrec.fsutil.outputs import _exchange

    a, b = tmp_path / "mix", tmp_path / "other"
    shutil.copytree(base[0], a)
    r = invoke("ingest", "-q", base[0].parent / "ratings.csv", "-o", b, "--set", "split.seed=7")
    assert r.exit_code == 0
    ref = {load_dataset(p).manifest["fingerprint"]: load_dataset(p) for p in (a, b)}
    if not _exchange(a, b):
        pytest.skip("no renameat2 here")
    stop = threading.Event()

    def swapper():
        while not stop.is_set():
            _exchange(a, b)
            time.sleep(0.0005)

    t = threading.Thread(target=swapper, daemon=True)
    t.start()
    try:
        for _ in range(60):
            ds = load_dataset(a)
            want = ref[ds.manifest["fingerprint"]]
            for s in ("train", "test"):
                np.testing.assert_array_equal(ds.splits[s].movie, want.splits[s].movie)
            assert ds.movies["movie_id"].tolist() == want.movies["movie_id"].tolist()
    finally:
        stop.set()
        t.join()


# ---------------------------------------------------------------------------------- native memory (3, 4, 26)

def _rewrite_manifest(ds: Path) -> None:
    from embedrec.fsutil.integrity import file_entry, fingerprint_of, seal

    m = json.loads((ds / "manifest.json").read_text())
    m["files"] = {n: file_entry(ds / n) for n in m["files"]}
    m["fingerprint"] = fingerprint_of(m["files"])
    (ds / "manifest.json").write_text(json.dumps(seal(m)))


@pytest.mark.parametrize("col,value", [("movie_idx", None), ("user_idx", -7)])
def test_out_of_range_indices_are_refused_before_training(base, tmp_path, col, value):  # rows 3, 4
    ds = tmp_path / "oob"
    shutil.copytree(base[0], ds)
    p = ds / "train.parquet"
    df = pd.read_parquet(p)
    n = json.loads((ds / "manifest.json").read_text())["counts"]["movies"]
    df.loc[5, col] = n if value is None else value
    df.to_parquet(p, index=False)
    _rewrite_manifest(ds)  # a crafted dataset: checksums consistent, indices not
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--set", f"run.dir={tmp_path / 'r'}",
               "--set", "train.epochs=1", "--set", "model.dim=2")
    assert r.exit_code == 1
    bad, limit = (n, n) if value is None else (value, json.loads((ds / "manifest.json").read_text())["counts"]["users"])
    said = (f"error: prepared dataset file '{p}' is damaged: {col} {bad} outside [0, {limit}); "
            f"{reingest(ds, base[0].parent / 'ratings.csv')}")
    assert one_line(r) == said
    # verify checks a dataset's rows as train reads them (session 52's red team: it said ok of movie_idx 2e9)
    r = invoke("verify", ds)
    assert (r.exit_code, r.stdout, one_line(r)) == (1, "", said)


def test_kernel_cache_is_private_and_checked(tmp_path, monkeypatch):  # row 26
    from embedrec.training import kernel

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(kernel, "_lib", None)
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "c"))
    kdir = tmp_path / "c" / "kernels"
    kdir.mkdir(parents=True)
    os.chmod(kdir, 0o777)
    kernel.load()
    assert (kdir.stat().st_mode & 0o777) == 0o700
    (so,) = kdir.glob("mf_sgd-*.so")
    good = so.read_bytes()
    assert (kdir / (so.name + ".sha256")).read_text().strip() == __import__("hashlib").sha256(good).hexdigest()
    so.unlink()  # (a new file: this process has the old one mapped)
    so.write_bytes(good[:5000])  # truncated: loading it would be a Bus error
    monkeypatch.setattr(kernel, "_lib", None)
    kernel.load()
    assert so.read_bytes() == good
    so.unlink()
    so.write_bytes(good + b"planted")  # altered: not loaded, rebuilt
    monkeypatch.setattr(kernel, "_lib", None)
    kernel.load()
    assert so.read_bytes() == good
    checksum = kdir / (so.name + ".sha256")  # a red team: a FIFO in its place hung train: rebuilt instead
    checksum.unlink()
    os.mkfifo(checksum)
    monkeypatch.setattr(kernel, "_lib", None)
    kernel.load()
    assert checksum.is_file() and so.read_bytes() == good
    monkeypatch.setattr(kernel, "_lib", None)


def test_a_library_planted_in_an_open_kernel_cache_is_never_loaded(tmp_path):
    """A red team: a library with its own .sha256, planted in a cache folder others could write to (0777), was
    loaded (its constructor ran) before the folder was closed; one lacking a kernel function was an internal
    error. Now an open folder is emptied as it is closed, and a library lacking a function is rebuilt."""
    import hashlib

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    marker = tmp_path / "PWNED"
    (tmp_path / "pwn.c").write_text('#include <stdlib.h>\n__attribute__((constructor)) static void pwn(void) '
                                    f'{{ system("touch {marker}"); }}\ndouble mf_sgd(void) {{ return 0.0; }}\n')
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "pwn.so"), str(tmp_path / "pwn.c")], check=True)
    planted = (tmp_path / "pwn.so").read_bytes()
    kdir = tmp_path / "c" / "kernels"
    env = {**os.environ, "EMBEDREC_CACHE": str(tmp_path / "c")}

    def load():  # a fresh process each time: this one's loader keeps a library once loaded under its path
        code = "from embedrec.training import kernel; print(hasattr(kernel.load(), 'als_cg'))"
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr

    load()  # the real one, to learn its name
    (so,) = kdir.glob("mf_sgd-*.so")
    good = so.read_bytes()

    def plant():
        so.unlink()
        so.write_bytes(planted)
        (kdir / (so.name + ".sha256")).write_text(hashlib.sha256(planted).hexdigest() + "\n")

    plant()
    os.chmod(kdir, 0o777)
    load()
    assert not marker.exists() and so.read_bytes() == good and (kdir.stat().st_mode & 0o777) == 0o700
    plant()  # in the closed folder (only its owner could): loaded, found to lack the kernel's functions, rebuilt
    load()
    assert so.read_bytes() == good


# ---------------------------------------------------------------------------------------------- data loss (27)

def test_overwrite_refuses_a_folder_embedrec_did_not_write(base, tmp_path, monkeypatch):  # row 27
    foreign = tmp_path / "thesis"
    (foreign / "ch").mkdir(parents=True)
    (foreign / "notes.txt").write_text("precious")
    csv = base[0].parent / "ratings.csv"
    r = invoke("ingest", "-q", csv, "-o", foreign, "--overwrite")
    assert r.exit_code == 2  # the output chosen is refused: a usage error, as an output that exists (a review)
    assert one_line(r) == (f"error: '{foreign}' exists and holds files embedrec did not write (ch/, notes.txt); "
                           "--overwrite only replaces a folder embedrec wrote: choose an empty or new folder")
    r = invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", foreign, "--overwrite")
    assert r.exit_code == 2 and "holds files embedrec did not write" in one_line(r)
    for command in (["ingest", "-q", csv], ["export", "-q", "--run", base[1], "--to", "npy"]):  # a review: without
        r = invoke(*command, "-o", foreign)  # --overwrite this said 'pass --overwrite', which then refused it
        assert r.exit_code == 2 and "holds files embedrec did not write" in one_line(r), r.stderr
    assert (foreign / "notes.txt").read_text() == "precious"
    # what embedrec wrote is replaced as before
    assert invoke("ingest", "-q", csv, "-o", tmp_path / "d").exit_code == 0
    assert invoke("ingest", "-q", csv, "-o", tmp_path / "d", "--overwrite").exit_code == 0
    assert invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", tmp_path / "e").exit_code == 0
    # a run or a dataset given to the other command is named as such (was: 'holds files embedrec did not write
    # (.lock, als-reg-0.01/, ...)', files embedrec did write)
    r = invoke("ingest", "-q", csv, "-o", base[1], "--overwrite")
    assert one_line(r) == (f"error: '{base[1]}' is an embedrec run (embedrec train wrote it), which this command does "
                           "not write; --overwrite only replaces a folder of its own kind: choose another output "
                           "folder")
    r = invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", tmp_path / "d", "--overwrite")
    assert "is a prepared dataset (embedrec ingest wrote it), which this command does not write" in one_line(r)
    r = invoke("ingest", "-q", csv, "-o", tmp_path / "e", "--overwrite")
    assert "is an export folder (embedrec export wrote it), which this command does not write" in one_line(r)
    (tmp_path / "half" / "als-reg-0.01").mkdir(parents=True)
    (tmp_path / "half" / "als-reg-0.01" / "checkpoint.pt").write_bytes(b"x")
    r = invoke("ingest", "-q", csv, "-o", tmp_path / "half", "--overwrite")
    assert "is an unfinished embedrec run (its checkpoint: continue it with embedrec train --resume)" in one_line(r)
    assert invoke("export", "-q", "--run", base[1], "--to", "csv", "-o", tmp_path / "e", "--overwrite").exit_code == 0
    assert (tmp_path / "e" / "movies.csv").exists() and not (tmp_path / "e" / "movie_factors.npy").exists()
    # a review: an output inside a run or a dataset (beside its current, or in a generation) replaced their files
    run = copy_run(base[1], tmp_path / "inside")
    gen = Path(os.path.realpath(tmp_path / "d" / "current"))
    for args, where, kind in (
            (["--topk-all", run / "current" / "users.parquet", "-k", "2"], run, "an embedrec run"),
            (["--topk-all", tmp_path / "d" / "train.parquet"], tmp_path / "d", "a prepared dataset"),
            (["--topk-all", gen / "users.parquet"], gen, "a prepared dataset"),
            (["--to", "npy", "-o", run / "more"], run, "an embedrec run"),
            # a red team: three folders down (a candidate's tensorboard/) was not looked up to the run
            (["--topk-all", run / "als-dim-8" / "als-reg-0.01" / "tensorboard" / "x.csv"], run, "an embedrec run")):
        target = args[-1] if args[0] == "--to" else args[1]
        r = invoke("export", "-q", "--run", base[1], *args, "--overwrite")
        assert r.exit_code == 2 and one_line(r).startswith(f"error: '{target}' is inside '{where}', {kind}"), r.stderr
    assert invoke("verify", run).exit_code == 0 and invoke("verify", tmp_path / "d").exit_code == 0
    beside = run / ".." / "beside.csv"  # beside the run, written with '..': not inside it
    assert invoke("export", "-q", "--run", base[1], "--topk-all", beside, "-k", "2").exit_code == 0
    r = invoke("tune-dims", "-q", "--run", run, "--write", run / "current" / "config.yaml", "--overwrite")
    assert r.exit_code == 2 and f"is inside '{run}', an embedrec run" in one_line(r), r.stderr
    monkeypatch.chdir(tmp_path / "d")
    r = invoke("ingest", "-q", csv, "-o", ".", "--overwrite")
    assert r.exit_code == 2
    assert one_line(r) == ("error: output directory '.' is the current folder or one above it; choose a new "
                           "subfolder instead")


# ------------------------------------------------------------------------------ hostile input (1, 15-18, 25)

def test_yaml_alias_bomb_is_a_short_error(tmp_path):  # row 1
    lines = ["train:", "  lr:", '    - &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"    - &{cur} [{','.join(['*' + prev] * 9)}]")
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    r = invoke("config", "-c", p)
    assert time.perf_counter() - t0 < 10
    assert r.exit_code == 2
    line = one_line(r)
    assert line.startswith(f"error: config key 'train.lr' in {p}:2: expected a number or 'auto', got list [") and len(line) < 300


def test_scientific_notation_and_non_finite_floats(tmp_path):  # rows 18, 20
    r = invoke("config", "--set", "train.lr=1e-3", "--set", "model.init_std=5e-2")
    assert r.exit_code == 0 and "lr: 0.001" in r.stdout and "init_std: 0.05" in r.stdout
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 1e-4\n")
    r = invoke("config", "-c", p)
    assert r.exit_code == 0 and "lr: 0.0001" in r.stdout
    r = invoke("config", "--set", "train.lr=.inf")
    assert r.exit_code == 2
    assert one_line(r) == "error: config key 'train.lr' (from --set): expected a finite number, got inf"


def test_threads_and_eval_k_are_bounded():  # rows 19, 29 (config part)
    r = invoke("config", "--set", "train.threads=100000")
    assert r.exit_code == 2 and one_line(r) == ("error: config key 'train.threads' (from --set): 100000 is above the "
                                                "maximum 256")
    r = invoke("config", "--set", "train.eval_k=[1000000000]")
    assert r.exit_code == 2
    assert one_line(r) == "error: config key 'train.eval_k' (from --set): 1000000000 is above the maximum 10000"


def test_zip_bomb_is_refused_and_leaves_nothing(tmp_path):  # row 15
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("ml-latest-small/ratings.csv", b"userId,movieId,rating,timestamp\n" + b"\0" * (8 << 20))
        zf.writestr("ml-latest-small/movies.csv", "movieId,title,genres\n1,A (1990),Drama\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = Path(tempfile.gettempdir()) / f"embedrec-zip-{dead.pid}-leftover"
    stale.mkdir(exist_ok=True)
    before = set(Path(tempfile.gettempdir()).glob(f"embedrec-zip-{os.getpid()}-*"))
    r = invoke("ingest", "-q", z, "-o", tmp_path / "out")
    assert r.exit_code == 1
    line = one_line(r)
    assert line.startswith(f"error: {z}: member 'ml-latest-small/ratings.csv' would expand to 8.0 MiB from ")
    assert "(more than 200x)" in line
    assert not stale.exists()  # a killed ingest's leftover (dead pid) is swept
    assert set(Path(tempfile.gettempdir()).glob(f"embedrec-zip-{os.getpid()}-*")) == before
    assert not (tmp_path / "out").exists()


def test_a_zip_of_many_members_each_under_the_members_check_is_refused_as_a_whole(tmp_path):
    """A red team: 3,000 members of 1 MiB of zeros each (the members' own ratio check starts above 1 MiB) expanded
    a 3.5 MB zip to 2.9 GB in the temp folder, and ingest went on; the archive's own ratio refuses it first."""
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,1\n")
        zf.writestr("ml-latest-small/movies.csv", "movieId,title,genres\n1,A (1990),Drama\n")
        for k in range(70):  # 70 MiB from about 70 KiB
            zf.writestr(f"junk/{k}", b"\0" * (1 << 20))
    before = set(Path(tempfile.gettempdir()).glob(f"embedrec-zip-{os.getpid()}-*"))
    r = invoke("ingest", "-q", z, "-o", tmp_path / "out")
    assert r.exit_code == 1
    assert re.fullmatch(rf"error: {re.escape(str(z))}: would expand to 70\.0 MiB from 0\.\d MiB \(more than 200x\): a "
                        r"zip bomb or not a ratings archive; refusing it \(set EMBEDREC_MAX_ZIP_RATIO to allow it\)",
                        one_line(r)), one_line(r)
    assert set(Path(tempfile.gettempdir()).glob(f"embedrec-zip-{os.getpid()}-*")) == before
    assert not (tmp_path / "out").exists()


def test_infinite_and_huge_ratings_are_refused(tmp_path):  # row 16
    p = write_csv(tmp_path / "inf.csv", extra="3,4,inf,1\n")
    r = invoke("ingest", "-q", p, "-o", tmp_path / "o")
    assert r.exit_code == 1
    n = len(p.read_text().splitlines())
    assert one_line(r) == (f"error: {p}:{n}: rating inf is not a finite number (a value beyond 3.4e+38 reads as "
                           "inf); fix or remove that line")
    p = write_csv(tmp_path / "f32.csv", extra="3,4,1e39,1\n")  # float32 overflows: the line says why it reads inf
    r = invoke("ingest", "-q", p, "-o", tmp_path / "o")
    assert r.exit_code == 1 and one_line(r).startswith(f"error: {p}:{n}: rating inf is not a finite number (a value")
    p = write_csv(tmp_path / "big.csv", extra="3,4,1e30,1\n")
    r = invoke("ingest", "-q", p, "-o", tmp_path / "o")
    assert r.exit_code == 1 and one_line(r) == f"error: {p}:{n}: rating 1e+30 is beyond 1e+09; fix or remove that line"


def test_hostile_values_give_short_lines(tmp_path):  # row 17
    p = write_csv(tmp_path / "long.csv", extra="3," + "9" * 100_000 + "x,4,1\n")
    r = invoke("ingest", "-q", p, "-o", tmp_path / "o")
    assert r.exit_code == 1 and len(one_line(r)) < 360 and f"{p}:" in one_line(r)  # (the skip advice: 306)
    g = tmp_path / "gz.csv"
    g.write_bytes(gzip.compress(write_csv(tmp_path / "plain.csv").read_bytes()))
    r = invoke("ingest", "-q", g, "-o", tmp_path / "o")
    assert r.exit_code == 1
    assert one_line(r) == (f"error: {g}: the file is gzip-compressed, not CSV/TSV text; name it with a .gz extension (e.g. "
                           "ratings.csv.gz) or decompress it")
    p = write_csv(tmp_path / "hugeid.csv", extra="99999999999999999999999,4,3,1\n")
    r = invoke("ingest", "-q", p, "-o", tmp_path / "o")
    n = len(p.read_text().splitlines())
    assert r.exit_code == 1 and one_line(r).startswith(f"error: {p}:{n}: column 'user_id' '99999999999999999999999'")
    assert shorten("x" * 1000, 20) == "xxxxxxxx[...]xxxxxxx" and first_line(IndexError()) == "IndexError"


def test_undecodable_bytes_in_pairs_and_users_files(base, tmp_path):  # row 25
    p = tmp_path / "p_bin.csv"
    p.write_bytes(b"1,2\n" + bytes(range(128, 256)) + b"\n")
    r = invoke("predict", "--run", base[1], "--pairs", p)
    assert r.exit_code == 1
    assert one_line(r) == f"error: {p}:2: cannot decode byte 0x80 as UTF-8; save the file as UTF-8 text (one entry per line)"
    r = invoke("recommend", "--run", base[1], "--users", "-", input=b"1\n\xff\xfe\n")
    assert r.exit_code == 1
    assert r.stderr.strip().endswith("error: <stdin>:2: cannot decode byte 0xff as UTF-8; save the file as UTF-8 "
                                     "text (one entry per line)")


# --------------------------------------------------------------------------------------- concurrency (11, 12, 21)

def _hold_lock(path: Path, text: str):
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
    return fd


def test_second_writer_of_a_run_is_refused(base, tmp_path):  # row 12
    run = copy_run(base[1], tmp_path / "busy")
    fd = _hold_lock(run / ".lock", "4242 embedrec train\n")
    try:
        r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={run}",
                   "--set", "train.epochs=1")
        assert r.exit_code == 75
        assert one_line(r) == (f"error: another embedrec train is writing '{run}' (pid 4242); wait for it to finish, "
                               "or use another run.dir")
        r = invoke("index", "rebuild", "--run", run)
        assert r.exit_code == 75 and one_line(r).startswith(f"error: another embedrec train is writing '{run}'")
    finally:
        os.close(fd)
    assert invoke("index", "rebuild", "-q", "--run", run).exit_code == 0  # the lock died with its holder


def test_a_failed_train_leaves_no_empty_run_folder(tmp_path):
    """A data or config error found under the lock removes the folders train created for the run (only a
    '.lock' was left in them), and never one that was there before or holds anything else."""
    from embedrec.run_publish import run_lock

    r = invoke("train", "--set", f"data.prepared={tmp_path / 'none'}", "--set", f"run.dir={tmp_path / 'a' / 'b'}")
    assert r.exit_code == 1 and "no prepared dataset" in one_line(r)
    assert not (tmp_path / "a").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), run_lock(tmp_path / "kept"):
        raise RuntimeError("boom")
    # it was there before: kept, and the lock this call made in it removed (nothing else was written: a review found
    # such a lock in a user's folder taken for a run's mark by the next train)
    assert (tmp_path / "kept").is_dir() and not any((tmp_path / "kept").iterdir())
    with pytest.raises(RuntimeError), run_lock(tmp_path / "new"):
        (tmp_path / "new" / "metrics.jsonl").write_text("{}\n")
        raise RuntimeError("boom")
    assert (tmp_path / "new" / "metrics.jsonl").exists()  # something was written: the folder stays


@pytest.mark.parametrize("extra", [[], ["--set", "model.objective=explicit"]])
def test_a_failed_resume_leaves_no_run_folder(base, tmp_path, extra):
    """train --resume where no run is: the default model (a folder per train.als_reg candidate) left RUN/.lock and
    an empty RUN/als-reg-0.01/ behind; it now leaves nothing, as the explicit model did."""
    run = tmp_path / "runs" / "nothere"
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", "model.dim=4", "--run", run, "--resume",
               *extra)
    assert r.exit_code == 1 and one_line(r) == f"error: nothing to resume: no checkpoint in '{run}'; train without --resume"
    assert not (tmp_path / "runs").exists()
    # the one line even without -q (a review: the selection's 'als_recency auto' line came before it)
    r = invoke("train", "--set", f"data.prepared={base[0]}", "--set", "model.dim=4", "--run", run, "--resume", *extra)
    assert r.exit_code == 1 and one_line(r).startswith("error: nothing to resume: no checkpoint in")
    # no dataset either (a fresh clone): both said at once (a first-hour pass: the fix then failed on it)
    gone = tmp_path / "no-dataset"
    r = invoke("train", "-q", "--set", f"data.prepared={gone}", "--run", run, "--resume", *extra)
    assert r.exit_code == 1 and one_line(r) == (
        f"error: nothing to resume: no checkpoint in '{run}', and no prepared dataset at '{gone}': run 'embedrec "
        "ingest' (with the same -c/--set options), then 'embedrec train' without --resume")
    # the library says the same before it loads the dataset (a review: the checks were the CLI's alone, so a
    # notebook's train_run(resume=True) loaded the data first, and never heard of the busy writer)
    from embedrec.api import train_run
    from embedrec.config import load_config
    from embedrec.errors import ArtifactError

    cfg = load_config(None, [f"data.prepared={gone}", f"run.dir={run}", *extra[1:]])
    with pytest.raises(ArtifactError, match=r"run er\.ingest\(source, cfg\), then train_run without resume=True$"):
        train_run(cfg, resume=True)
    cfg = load_config(None, [f"data.prepared={base[0]}", f"run.dir={run}", *extra[1:]])
    with pytest.raises(ArtifactError, match=r"; train without resume=True$"):
        train_run(cfg, resume=True)
    assert not (tmp_path / "runs").exists()


def test_runs_and_datasets_are_not_mistaken_for_each_other(base, tmp_path):
    """A run written into a prepared dataset folder broke the dataset (its 'current' swapped to artifacts-*);
    --run at a dataset was an internal error (KeyError 'dataset'); data.prepared at a run advised an ingest
    --overwrite that is then refused."""
    ds, run = base
    before = os.readlink(ds / "current")
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--set", f"run.dir={ds}", "--set", "train.epochs=1")
    assert r.exit_code == 2 and r.stdout == ""
    assert one_line(r) == (f"error: run.dir '{ds}' is a prepared dataset (what embedrec ingest writes), not a run; "
                           "choose another run.dir (e.g. runs/NAME)")
    assert os.readlink(ds / "current") == before
    want = (f"error: '{ds}' is a prepared dataset (what embedrec ingest writes), not a run; pass the run directory "
            "train wrote (run.dir, e.g. runs/ml-100k)")
    for args in (["recommend", "--user", "1"], ["evaluate"], ["export", "--to", "npy", "-o", tmp_path / "x"]):
        r = invoke(*args, "--run", ds)
        assert r.exit_code == 1 and one_line(r) == want, args
    r = invoke("index", "rebuild", "--run", ds)
    assert r.exit_code == 1 and "is a prepared dataset" in one_line(r)
    r = invoke("train", "-q", "--set", f"data.prepared={run}", "--set", f"run.dir={tmp_path / 'new'}")
    assert r.exit_code == 1 and one_line(r) == (f"error: '{run}' is a run (what embedrec train writes), not a "
                                                "prepared dataset; point data.prepared at the ingest output "
                                                "(e.g. data/prepared/ml-100k)")
    assert not (tmp_path / "new").exists()


def test_a_dataset_copied_with_links_followed_is_still_a_dataset(base, tmp_path):
    """cp -rL turns a dataset's links into copies ('current' a folder): verify took it for a run that records no
    checksums, recommend --run failed with an internal error (KeyError), and train --run wrote a run into it. A run
    copied the same way is still a run."""
    ds, run = tmp_path / "ds", tmp_path / "run"
    shutil.copytree(base[0], ds, symlinks=False)  # what cp -rL makes
    shutil.copytree(base[1], run, symlinks=False)
    assert (ds / "current").is_dir() and not (ds / "current").is_symlink()
    r = invoke("verify", ds)
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: dataset '{ds}': 5 files"), r.stderr
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--run", ds, "--set", "train.epochs=1")
    assert r.exit_code == 2 and one_line(r) == (f"error: run.dir '{ds}' is a prepared dataset (what embedrec ingest "
                                                "writes), not a run; choose another run.dir (e.g. runs/NAME)")
    r = invoke("recommend", "--user", "1", "--run", ds)
    assert r.exit_code == 1 and one_line(r).startswith(f"error: '{ds}' is a prepared dataset")
    assert sorted(os.listdir(ds)) == sorted(os.listdir(base[0]))  # nothing written into it
    r = invoke("verify", run)
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: run '{run / 'current'}': "), r.stderr


def test_train_never_writes_into_a_folder_of_the_users_files(base, tmp_path):
    """train replaced a metrics.jsonl it did not write; a folder is new, empty or an embedrec run."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.jsonl").write_text("my notes\n")
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--run", mine, "--set", "train.epochs=1")
    assert r.exit_code == 2 and one_line(r).startswith(f"error: run.dir '{mine}' is not empty and holds no embedrec "
                                                       "run (metrics.jsonl); ")
    assert (mine / "metrics.jsonl").read_text() == "my notes\n" and sorted(os.listdir(mine)) == ["metrics.jsonl"]
    (tmp_path / "empty").mkdir()
    for d in ("empty", "empty"):  # an empty folder, then the run it now holds
        r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--run", tmp_path / d, "--set", "model.dim=4",
                   "--set", "train.epochs=1", "--set", "model.objective=explicit", "--set", "train.optimizer=adam")
        assert r.exit_code == 0, r.stderr


def test_a_dangling_current_is_named(base, tmp_path):
    """A `current` that names no folder: said, and (an ops review: a rollback's mistyped folder name was told to
    train again) where the run holds model folders, the newest named to link again."""
    run = copy_run(base[1], tmp_path / "run")
    kept = os.readlink(run / "current")
    shutil.copytree(current(run), run / "artifacts-20200101T000000-000000000")
    shutil.rmtree(current(run))
    for folders in ("one", "none"):
        want = f"is missing (removed by hand, or a name mistyped?); {retrain(run)}" if folders == "none" else (
            f"is missing (removed by hand, or a name mistyped?); the run holds 1 model folder: link the newest again "
            f"(ln -sfn artifacts-20200101T000000-000000000 {run / 'current'}), or the one you meant, then check it "
            f"with embedrec verify {run}; or {retrain(run)}")
        for args in (["recommend", "--run", run, "--user", "1"], ["verify", run]):
            r = invoke(*args)
            assert r.exit_code == 1 and one_line(r).startswith("error: the model folder '") and \
                one_line(r).endswith(want), one_line(r)
        if folders == "one":
            shutil.rmtree(run / "artifacts-20200101T000000-000000000")
    assert kept != "artifacts-20200101T000000-000000000"


def test_a_writer_refused_as_the_holder_starts_still_names_it(tmp_path):
    """The holder writes its pid just after taking the lock; a writer refused in between waits for the line
    (found by `make faults`: train and index rebuild started 0.19 s apart named no one)."""
    import threading

    from embedrec.errors import ArtifactError
    from embedrec.fsutil.locks import exclusive_lock

    lock = tmp_path / ".lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, nothing written yet
    later = threading.Timer(0.03, lambda: os.pwrite(fd, b"4242 embedrec index rebuild\n", 0))
    later.start()
    try:
        with pytest.raises(ArtifactError) as e:
            with exclusive_lock(lock, tmp_path, "embedrec train", "use another run.dir"):
                pass
        assert e.value.cli_message() == (f"another embedrec index rebuild is writing '{tmp_path}' (pid 4242); wait "
                                         "for it to finish, or use another run.dir")
    finally:
        later.join()
        os.close(fd)
    with exclusive_lock(lock, tmp_path, "embedrec train", "use another run.dir"):  # free again: the line is ours
        assert lock.read_text() == f"{os.getpid()} embedrec train\n"


def test_the_lock_beside_an_output_is_removed_when_its_writer_is_done(base, tmp_path):
    """ingest/export leave no `.embedrec.<name>.lock` behind, done or failed (before: one per output, forever);
    a lock an older embedrec or a killed writer left is taken and removed by the next writer."""
    from embedrec.fsutil.locks import target_lock

    csv = base[0].parent / "ratings.csv"
    assert invoke("ingest", "-q", csv, "-o", tmp_path / "ds").exit_code == 0
    (tmp_path / ".embedrec.ds2.lock").write_text("4242 embedrec ingest\n")  # left, not held
    assert invoke("ingest", "-q", csv, "-o", tmp_path / "ds2").exit_code == 0
    with pytest.raises(RuntimeError), target_lock(tmp_path / "out", "embedrec export", "x"):
        with target_lock(tmp_path / "out", "embedrec export", "x"):  # re-entrant: the inner one keeps it
            assert (tmp_path / ".embedrec.out.lock").exists()
        assert (tmp_path / ".embedrec.out.lock").exists()
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds2"]


def test_a_lock_file_that_cannot_be_made_is_said_of_the_outputs_folder(tmp_path, monkeypatch):
    """A first-hour pass: from Python, export/topk_all/ingest into a folder this user cannot write raised a plain
    PermissionError naming '.embedrec.emb.lock'; it is embedrec's error naming the folder."""
    import errno
    import os as os_

    from embedrec.errors import ArtifactError
    from embedrec.fsutil import locks

    real = os_.open

    def denied(path, *a, **k):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(os_, "open", denied)  # root here: a mode bit does not bind it
    with pytest.raises(ArtifactError) as e, locks.target_lock(tmp_path / "emb", "embedrec export", "x"):
        pass
    assert str(e.value) == f"permission denied on '{tmp_path}'; choose another folder, or one this user can write"
    (tmp_path / "f").write_text("")
    with pytest.raises(ArtifactError, match="is a file, where a folder of the output path goes"), \
            locks.target_lock(tmp_path / "f" / "emb", "embedrec export", "x"):  # its folder made under a file
        pass


def test_a_lock_file_removed_between_open_and_lock_is_not_taken(tmp_path, monkeypatch):
    """A writer that opened the lock file just before its holder unlinked it, and locks it just after, holds a
    lock on a file no one else will open: it must start again on the file now at that name, which a third
    writer may hold (without the inode check both went on writing)."""
    from embedrec.fsutil.locks import target_lock

    lock = tmp_path / ".embedrec.ds.lock"
    lock.write_text("")
    real, other = fcntl.flock, []

    def flock(fd, op):
        if not other:  # between our open and our lock: the holder removes its file, a third writer makes a new one
            os.unlink(lock)
            other.append(os.open(lock, os.O_RDWR | os.O_CREAT))
            real(other[0], fcntl.LOCK_EX)
            os.pwrite(other[0], b"4242 embedrec ingest\n", 0)
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    try:
        with pytest.raises(ArtifactError, match=r"another embedrec ingest is writing '.*ds' \(pid 4242\)"):
            with target_lock(tmp_path / "ds", "embedrec ingest", "x"):
                pass
        assert lock.exists()  # the third writer's file: not ours to remove
    finally:
        os.close(other[0])


def test_publish_keeps_a_folder_a_reader_holds(base, tmp_path):  # row 11
    from embedrec.artifacts import rebuild_index
    from embedrec.config import Config
    from embedrec.serve.recommender import Recommender

    run = copy_run(base[1], tmp_path / "held")
    rec = Recommender.open(run)
    held = rec.run.path
    for _ in range(3):
        rebuild_index(run, Config().index)
    assert held.exists() and current(run) != held
    assert len(rec.similar(0, 3)[0]) == 3  # the long-lived reader still answers from its folder
    folders = sorted(p.name for p in run.glob("artifacts-*"))
    del rec
    import gc

    gc.collect()
    rebuild_index(run, Config().index)
    assert not held.exists() and len(list(run.glob("artifacts-*"))) == 2, folders


def test_ingest_sweeps_killed_writers_temp_folders_and_locks(base, tmp_path):  # row 21
    csv = base[0].parent / "ratings.csv"
    out = tmp_path / "ds"
    assert invoke("ingest", "-q", csv, "-o", out).exit_code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f".ds.embedrec-tmp-{dead.pid}-abcd1234", f".ds.embedrec-old-{dead.pid}-0f1e2d3c"):
        (tmp_path / name).mkdir()
    (tmp_path / f".ds.embedrec-tmp-{dead.pid}-abcd1234" / "part.npy").write_text("x")  # half-written: goes whole
    # red teams and a review: the user's were removed (not embedrec's names, or not an embedrec output; the
    # shape of embedrec's names before they were prefixed, '.ds.tmp-<pid>-<8>', is the user's now)
    users = [".ds.old-mine", ".ds.tmp-notes", f".ds.old-{dead.pid}-x", ".ds.tmp-research", ".ds.old-2023",
             f".ds.embedrec-old-{dead.pid}-0a1b2c3d",  # embedrec's name, but not an output of embedrec's
             f".ds.tmp-{dead.pid}-snapshot", f".ds.old-{dead.pid}-0f1e2d3c", f".ds.embedrec-tmp-{os.getppid()}-abcd1234"]
    for name in users:  # (the last: a live writer's)
        (tmp_path / name).mkdir()
        (tmp_path / name / "precious.txt").write_text("keep")
    assert invoke("ingest", "-q", csv, "-o", out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".ds")) == sorted(users)
    fd = _hold_lock(tmp_path / ".embedrec.ds.lock", "4243 embedrec ingest\n")
    try:
        r = invoke("ingest", "-q", csv, "-o", out, "--overwrite")
        assert r.exit_code == 75
        assert one_line(r) == (f"error: another embedrec ingest is writing '{out}' (pid 4243); wait for it to finish, "
                               "or choose another output folder (-o / data.prepared)")
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- faults (7, 13)

def test_disk_full_is_one_line_naming_the_path(base, tmp_path, monkeypatch):  # row 7
    import embedrec.export as ex

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ex, "tables", full)
    out = tmp_path / "exp"
    r = invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", out)
    assert r.exit_code == 1
    assert one_line(r) == f"error: no space left on device writing '{out}'; free space, or choose another -o folder"
    assert not out.exists() and not list(tmp_path.glob(".exp.*"))
    monkeypatch.setattr(ex, "tables", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file "
                                                                                      "system", str(out / "x"))))
    r = invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", out)
    assert r.exit_code == 1
    assert one_line(r) == f"error: read-only file system writing '{out / 'x'}'; choose another -o folder"
    monkeypatch.setattr(ex, "tables", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EFBIG, "File too large")))
    r = invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", out)  # a review: 'internal error', no path
    assert r.exit_code == 1
    assert one_line(r) == (f"error: file too large (a file-size limit, ulimit -f) writing '{out}'; raise the limit "
                           "(ulimit -f unlimited) and run the command again; another folder has the same limit")


def test_disk_full_while_faiss_writes_the_index_names_the_file(base, monkeypatch):  # row 7
    """A red team (a 26 MB tmpfs): FAISS's write error carries no errno and no path, and `train` said 'cannot
    write the output: the disk is full...', as if stdout were full. The index file is named now; a quota and a
    file-size limit alike."""
    import faiss

    def full(index, path):
        raise RuntimeError(f"Error in faiss::FileIOWriter: write error in {path}: 0 != 1 (No space left on device)")

    monkeypatch.setattr(faiss, "write_index", full)
    r = invoke("index", "rebuild", "--run", base[1])
    assert r.exit_code == 1
    assert re.fullmatch(r"error: no space left on device writing '.*movies_ip\.faiss'; free space, or choose "
                        r"another run\.dir", one_line(r)), r.stderr
    monkeypatch.setattr(faiss, "write_index", lambda index, path: (_ for _ in ()).throw(RuntimeError(
        f"Error in faiss::FileIOWriter: could not open {path} for writing: Disk quota exceeded")))
    r = invoke("index", "rebuild", "--run", base[1])
    assert r.exit_code == 1 and re.fullmatch(r"error: disk quota exceeded writing '.*movies_ip\.faiss'; free space, "
                                             r"or choose another run\.dir", one_line(r)), r.stderr
    # a file-size limit (ulimit -f): FAISS's text of EFBIG, said as the other writes say it (a red team: 'internal
    # error (RuntimeError: Error in void faiss::write_HNSW ... (File too large))')
    monkeypatch.setattr(faiss, "write_index", lambda index, path: (_ for _ in ()).throw(RuntimeError(
        "Error in void faiss::write_HNSW(const HNSW*, IOWriter*) at /project/faiss/impl/index_write.cpp:362: Error: "
        f"'ret == (size)' failed: write error in {path}: 863 != 2560 (File too large)")))
    r = invoke("index", "rebuild", "--run", base[1])
    assert r.exit_code == 1 and re.fullmatch(r"error: file too large \(a file-size limit, ulimit -f\) writing "
                                             r"'.*movies_ip\.faiss'; raise the limit \(ulimit -f unlimited\) and run "
                                             r"the command again; another folder has the same limit", one_line(r)), \
        r.stderr


def test_disk_full_in_a_torch_checkpoint_is_the_same_one_line(tmp_path, monkeypatch):  # row 7
    """torch.save's zip writer turns a failed write into RuntimeError('... unexpected pos ...'); the checkpoint
    writer still reports the disk (found on a 3 MB tmpfs: 'internal error' for the adam and hogwild trainers)."""
    import io

    import torch

    import embedrec.fsutil.files as fs
    from embedrec.training.loop import save

    class Full(io.BufferedWriter):
        def write(self, b):
            if len(b) > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(b)

    real = os.fdopen
    monkeypatch.setattr(fs.os, "fdopen", lambda fd, mode="r", *a, **k: Full(real(fd, "wb", buffering=0))
                        if mode == "wb" else real(fd, mode, *a, **k))
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(ArtifactError) as e:
        save(path, {"model": {"w": torch.zeros(1000)}, "epoch": 1})
    assert str(e.value) == f"no space left on device writing '{path}'; free space, or choose another folder"
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone


def test_disk_full_in_export_to_torch_is_one_line(tmp_path, monkeypatch, trained_run):
    """A red team: `export --to torch` on a full tmpfs was `internal error (RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos ...)`, and a bare RuntimeError from Python; --to npy said the disk.
    torch.save behaves here as on a full disk: a write to its file fails, and it raises its RuntimeError."""
    import torch

    import embedrec as er

    def full_save(obj, f, *a, **k):
        if isinstance(f, (str, os.PathLike)):  # its own C++ writer: only the RuntimeError comes out
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 484032 vs 483920")
        try:
            f.write(b"x" * 4096)  # the file system says ENOSPC (below)
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 0 vs 4096") from None

    monkeypatch.setattr(torch, "save", full_save)
    import embedrec.fsutil.files as fs

    real_write = fs._NotingWriter.write

    def write(self, b):
        if len(b) >= 4096:
            self.error = self.error or OSError(errno.ENOSPC, "No space left on device")
            raise self.error
        return real_write(self, b)

    monkeypatch.setattr(fs._NotingWriter, "write", write)
    with er.open(trained_run.cfg.run.dir) as m, pytest.raises(ArtifactError, match="^no space left on device writing"):
        m.export("torch", tmp_path / "pt")
    assert not (tmp_path / "pt").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_the_groups_own_help_and_version_to_a_full_device_are_one_line():
    """A red team: `embedrec --help >/dev/full` and `embedrec -V >/dev/full` printed a 38-line traceback (the
    group's options are parsed before any command's handler), where `embedrec recommend -h >/dev/full` said one
    line. And `embedrec -h | head -1` leaves quietly."""
    for args in (["--help"], ["-V"], ["recommend", "-h"]):
        with open("/dev/full", "w") as full:
            p = subprocess.run([sys.executable, "-m", "embedrec", *args], stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=60)
        assert p.returncode == 1 and p.stderr == ("error: cannot write the output (No space left on device); free "
                                                  "space or write it elsewhere\n"), (args, p.stderr)
    p = subprocess.run(f"{shlex.quote(sys.executable)} -m embedrec -h | head -c 10", shell=True, capture_output=True,
                       text=True, timeout=60)
    assert p.stdout == "Usage: pyt" and p.stderr == "", p.stderr  # (python -m embedrec)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_report_that_cannot_be_printed_after_the_export_was_published_says_so(base, tmp_path):
    """A red team: `export --to npy -o xx > /dev/full` published xx, then said only 'cannot write the output',
    and the scheduler's rerun was refused as 'already exists'. The line says the output is there in full."""
    out = tmp_path / "xx"
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "embedrec", "export", "-q", "--run", str(base[1]), "--to", "npy",
                            "-o", str(out)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 1 and p.stderr == (f"error: '{out}' was written in full; only the report on standard "
                                              "output failed (No space left on device): no need to run it "
                                              "again\n"), p.stderr
    assert (out / ".embedrec-export.json").is_file()
    ds = tmp_path / "ds"  # ingest --format json too (a review)
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "embedrec", "ingest", "-q", str(base[0] / "current" / "train.parquet"),
                            "-o", str(ds), "--format", "json", "--set", "data.columns.user=user_idx", "--set",
                            "data.columns.movie=movie_idx", "--set", "data.columns.timestamp=null"], stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=120)
    assert p.returncode == 1 and p.stderr.startswith(f"error: '{ds}' was written in full; "), p.stderr


def test_ctrl_c_in_a_streaming_command_says_its_rows_are_whole(base, monkeypatch):
    """A first-hour review: Ctrl-C in `recommend --users FILE > out.tsv` said 'nothing half-written was left
    behind' after 70,000 lines had gone to stdout; a streaming command says its rows are whole."""
    import embedrec.models as models

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(models.Model, "recommend_stream", stop)
    r = invoke("recommend", "--run", base[1], "--users", "-", input="1\n2\n")
    assert r.exit_code == 130 and one_line(r) == "interrupted: the rows written so far are whole (each query's list " \
        "complete)", r.stderr


def test_output_device_full_and_empty_messages(base, monkeypatch):  # rows 7, 13
    import embedrec.output as output

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "write_rows", full)
    r = invoke("evaluate", "-q", "--run", base[1], "--format", "tsv")
    assert r.exit_code == 1
    assert one_line(r) == "error: cannot write the output (No space left on device); free space or write it elsewhere"

    def empty(*a, **k):
        raise IndexError()

    monkeypatch.setattr(output, "write_rows", empty)
    r = invoke("evaluate", "-q", "--run", base[1], "--format", "tsv")
    assert r.exit_code == 1
    assert one_line(r) == "error: internal error (IndexError: ); rerun with --traceback and report it"
    r = invoke("evaluate", "-q", "--traceback", "--run", base[1], "--format", "tsv")  # it was shown: not "rerun"
    assert "Traceback" in r.stderr and r.stderr.splitlines()[-1] == ("error: internal error (IndexError: ); report "
                                                                     "it with the traceback above"), r.stderr


# ------------------------------------------------------------------------------------- fixB: damage is refused

BASE_TRAIN = ("--set", "model.dim=4", "--set", "train.epochs=2", "--set", "model.objective=explicit",
              "--set", "train.optimizer=adam")


def test_a_bit_flip_in_a_torch_checkpoint_is_refused_on_resume(base, tmp_path):
    """torch.load does not check the zip members' CRC-32s: a flipped bit in a tensor of checkpoint.pt was resumed
    and published (a user factor of -9.6e35); now the resume is refused in one line and nothing is published."""
    run = copy_run(base[1], tmp_path / "ck")
    p = run / "checkpoint.pt"
    with zipfile.ZipFile(p) as z:
        member = max(z.infolist(), key=lambda i: i.file_size)  # a tensor's data, stored uncompressed
    with open(p, "rb") as fh:
        fh.seek(member.header_offset + 26)
        name_len, extra_len = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
    flip(p, offset=member.header_offset + 30 + name_len + extra_len + 3)
    before = os.readlink(run / "current")
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={run}", *BASE_TRAIN,
               "--set", "train.epochs=3", "--resume")
    assert r.exit_code == 1
    assert one_line(r) == (f"error: checkpoint '{p}' is damaged (its member '{member.filename}' fails its CRC-32 "
                           "check); train again without resuming")
    assert os.readlink(run / "current") == before


def test_a_whole_archive_that_is_no_checkpoint_or_holds_nan_is_refused_on_resume(base, tmp_path):
    """A red team: a valid torch archive of a text made `--resume` an internal error (AttributeError), one of {}
    was blamed on a re-ingest ('made on another dataset'), and NaN weights on the learning rate ('training
    diverged ... try --set train.lr=0.001'). Each is one line naming the checkpoint; nothing is published."""
    import torch

    run = copy_run(base[1], tmp_path / "ck")
    p = run / "checkpoint.pt"
    real = torch.load(p, map_location="cpu", weights_only=True)
    nan = dict(real, model={k: v.float().fill_(float("nan")) if v.is_floating_point() else v
                            for k, v in real["model"].items()})
    before = os.readlink(run / "current")
    for saved, said in (("hello", "it holds str"), ({}, "it lacks 'fingerprint', 'model', 'epoch'"),
                        (nan, "holds non-finite values in its model '")):
        torch.save(saved, p)
        r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={run}", *BASE_TRAIN,
                   "--set", "train.epochs=3", "--resume")
        line = one_line(r)
        assert r.exit_code == 1 and line.startswith(f"error: checkpoint '{p}' ") and said in line, line
        assert line.endswith("; train again without resuming"), line
        assert os.readlink(run / "current") == before


def test_index_rebuild_refuses_a_damaged_file_instead_of_resealing_it(base, tmp_path):
    """`index rebuild` copied every non-FAISS file unchecked and sealed fresh checksums over them: a damaged
    seen_indices.npy then passed verify and recommend served rated movies. Now each file is checked against the
    old manifest first; the rebuild is refused naming the file, and nothing is published."""
    run = copy_run(base[1], tmp_path / "launder")
    p = current(run) / "seen_indices.npy"
    b = bytearray(p.read_bytes())
    b[128:] = bytes(len(b) - 128)
    p.write_bytes(bytes(b))
    before = os.readlink(run / "current")
    r = invoke("index", "rebuild", "-q", "--run", run)
    assert r.exit_code == 1
    assert one_line(r) == (f"error: run artifact '{p}' does not match its checksum (damaged or modified); "
                           f"{retrain(run)}")
    assert os.readlink(run / "current") == before and sorted(run.glob("artifacts-*")) == [current(run)]
    assert invoke("verify", run).exit_code == 1
    p.write_bytes((current(base[1]) / p.name).read_bytes())  # mended: a file the manifest does not list is refused
    extra = current(run) / "notes.txt"
    extra.write_text("mine\n")
    r = invoke("index", "rebuild", "-q", "--run", run)
    assert r.exit_code == 1 and one_line(r).startswith(f"error: run artifact '{extra}' is not listed in its manifest")
    extra.unlink()
    gone = current(run) / "popularity.npy"  # a review: a listed file deleted was re-sealed away, verify then ok
    kept = gone.read_bytes()
    gone.unlink()
    r = invoke("index", "rebuild", "-q", "--run", run)
    assert r.exit_code == 1 and one_line(r).startswith(f"error: run artifact '{gone}' is missing; "), r.stderr
    gone.write_bytes(kept)
    assert invoke("index", "rebuild", "-q", "--run", run).exit_code == 0
    assert invoke("verify", run).exit_code == 0 and current(run) != current(base[1])


def test_index_rebuild_checks_large_files_in_full(base, tmp_path, monkeypatch):
    """Files above VERIFY_ON_OPEN_MAX are checked by size when opened; what rebuild carries over is hashed in full."""
    from embedrec.artifacts import rebuild_index
    from embedrec.config import Config

    run = copy_run(base[1], tmp_path / "large")
    p = current(run) / "seen_indices.npy"
    flip(p, offset=p.stat().st_size - 3)  # same size: only the hash tells
    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 0)
    with pytest.raises(ArtifactError, match=r"run artifact '.*seen_indices\.npy' does not match its checksum"):
        rebuild_index(run, Config().index)
    assert sorted(run.glob("artifacts-*")) == [current(run)] and not list(run.glob(".artifacts-*"))


def test_index_rebuild_links_the_files_it_leaves_as_they_are(base, tmp_path, monkeypatch):
    """A scale review: index rebuild rewrote and hashed every file of the model to write two index files (712 MB at
    1M users). It now hard-links the others, each hashed once as it is linked. The folders its publish prunes go
    first: removing a link moves the ctime of the file every folder shares, which would leave the new manifest's
    stats stale, and every open hashing the large files again. Without hard links, it copies."""
    import errno

    import embedrec as er
    import embedrec.fsutil.integrity as fsutil
    from embedrec.artifacts import rebuild_index
    from embedrec.config import Config

    run = copy_run(base[1], tmp_path / "links")
    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 0)  # every file counts as large
    for _ in range(3):  # the third publish prunes a folder sharing every file but the indexes with the new one
        before = current(run)
        rebuild_index(run, Config().index)
        for p in current(run).iterdir():
            if p.name != "manifest.json":
                assert os.path.samefile(p, before / p.name) != p.name.endswith(".faiss"), p.name
    assert len(list(run.glob("artifacts-*"))) == 2 and invoke("verify", run).exit_code == 0
    hashed = []
    real = fsutil.sha256_file
    monkeypatch.setattr(fsutil, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    m = er.open(run)
    assert len(list(m.recommend([m.user_ids[0]], k=3).to_rows())) == 3 and hashed == []  # the stats still true

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    before = current(run)
    with monkeypatch.context() as mp:
        mp.setattr(os, "link", no_links)
        rebuild_index(run, Config().index)
    assert not any(os.path.samefile(p, before / p.name) for p in current(run).iterdir())
    assert invoke("verify", run).exit_code == 0


def test_a_large_file_is_hashed_once_as_it_is_copied(base, tmp_path, monkeypatch):
    """copy_verified checked a large file where it lay (a full hash unless untouched) and then hashed the copy:
    two reads. Now the bytes are hashed as they are copied; a copy that does not match is removed."""
    import embedrec.fsutil.integrity as fsutil
    import embedrec.run as run_mod

    run = copy_run(base[1], tmp_path / "large")  # a copy: its files' stats no longer match the manifest
    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 0)
    hashed = []
    monkeypatch.setattr(fsutil, "sha256_file", lambda p: hashed.append(p) or pytest.fail("hashed apart"))
    r = run_mod.Run(current(run), json.loads((current(run) / "manifest.json").read_text()))
    p = current(run) / "user_factors.npy"
    r.copy_verified(p, tmp_path / "copy.npy")
    assert (tmp_path / "copy.npy").read_bytes() == p.read_bytes() and hashed == []
    flip(p, offset=p.stat().st_size - 3)
    with pytest.raises(ArtifactError, match=r"run artifact '.*user_factors\.npy' does not match its checksum"):
        r.copy_verified(p, tmp_path / "bad.npy")
    assert not (tmp_path / "bad.npy").exists()

    def cut_short(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(shutil, "copystat", cut_short)  # fails after the bytes were written
    with pytest.raises(OSError, match="No space left"):
        fsutil.copy_hashed(current(run) / "movie_factors.npy", tmp_path / "partial.npy")
    assert not (tmp_path / "partial.npy").exists()


def test_large_files_are_hashed_on_open_unless_untouched_since_hashed(base, tmp_path, monkeypatch):
    """Files above VERIFY_ON_OPEN_MAX were checked by size only when opened, so a same-size flip was served. The
    manifest now records each one's inode, mtime and ctime when it is hashed: untouched, it is opened without
    rehashing; written (even with its mtime set back) or copied, it is hashed in full before it is served."""
    import embedrec as er
    import embedrec.fsutil.integrity as fsutil
    from embedrec.artifacts import rebuild_index
    from embedrec.config import Config

    run = copy_run(base[1], tmp_path / "large")
    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 0)  # every file counts as large
    rebuild_index(run, Config().index)  # a new folder whose manifest records the stats
    hashed = []
    real = fsutil.sha256_file
    monkeypatch.setattr(fsutil, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))

    def serve(where):
        m = er.open(where)
        return list(m.recommend([m.user_ids[0]], k=3).to_rows())

    expected = serve(run)
    assert hashed == []  # untouched since hashed: opened without reading the factors twice

    moved = copy_run(run, tmp_path / "moved")  # a copy: new inodes and times, so everything is rehashed once
    assert serve(moved) == expected and "user_factors.npy" in hashed

    p = current(run) / "user_factors.npy"
    st = p.stat()
    flip(p, offset=st.st_size - 3)  # same size, and the mtime set back: only ctime and the hash tell
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ArtifactError, match=r"run artifact '.*user_factors\.npy' does not match its checksum"):
        serve(run)


def test_a_trained_run_is_opened_without_rehashing_its_large_files(base, tmp_path, monkeypatch):
    """What train publishes keeps the stats its manifest recorded (nothing touches the files after they are
    hashed: fsync, the folder's rename), so the first open after train rehashes nothing."""
    import embedrec as er
    import embedrec.fsutil.integrity as fsutil

    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 0)  # every file counts as large
    run = tmp_path / "run"
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", "model.dim=4", "--set",
               "train.threads=1", "--run", run)
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((current(run) / "manifest.json").read_text())
    assert all("stat" in e for e in manifest["checksums"].values())
    hashed = []
    real = fsutil.sha256_file
    monkeypatch.setattr(fsutil, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    m = er.open(run)
    assert len(list(m.recommend([m.user_ids[0]], k=3).to_rows())) == 3 and hashed == []


def test_serving_maps_the_large_tables_it_checked(base, tmp_path, monkeypatch):
    """A scale review: every serving call read the whole user table (512 MB at 1M users x 128 dims), so
    `recommend --movie` and `--liked`, which read no user, peaked at 700 MB, and `--user` took 0.64-1.0 s. A file
    above VERIFY_ON_OPEN_MAX is now memory-mapped once checked where it lies, so a request reads the rows it asks
    for; the answers are those of the tables read whole, and a flipped byte is refused as the run is opened, by
    `--movie` and `--liked` too, which read no user row."""
    import embedrec as er
    from embedrec.artifacts import rebuild_index
    from embedrec.config import Config

    run = copy_run(base[1], tmp_path / "mapped")
    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 0)  # every file counts as large
    rebuild_index(run, Config().index)  # (stats recorded: opened without rehashing)
    asks = [["--user", "1"], ["--movie", "1"], ["--liked", "1,2"]]

    def answers():
        return [invoke("recommend", "--run", run, *a, "-k", "3", "--format", "tsv").stdout for a in asks]

    mapped = er.open(run).engine
    assert all(isinstance(a, np.memmap) for a in (mapped.P, mapped.Q, mapped.seen_ptr, mapped.seen_idx))
    got = answers()
    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 64 << 20)  # read whole, as before
    assert not isinstance(er.open(run).engine.P, np.memmap) and answers() == got and all(got)
    monkeypatch.setattr("embedrec.fsutil.integrity.VERIFY_ON_OPEN_MAX", 0)
    p = current(run) / "user_factors.npy"
    st = p.stat()
    flip(p, offset=st.st_size - 3)  # same size, the mtime set back: the ctime and the hash tell
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    for a in asks:
        r = invoke("recommend", "--run", run, *a, "-k", "3")
        assert r.exit_code == 1 and re.search(r"run artifact '.*user_factors\.npy' does not match its checksum",
                                              one_line(r)), (a, r.stderr)


def test_pruning_removes_only_the_folders_embedrec_named(base, tmp_path):
    """Publishing pruned every artifacts-* folder beyond the newest two, a user's backup copy beside the versions
    too (artifacts-<version>-good sorts among them); now only names exactly as embedrec writes them go, and never
    the folder current names."""
    from embedrec.artifacts import rebuild_index
    from embedrec.config import Config
    from embedrec.fsutil.generations import VERSION, prune_generations

    def is_version_folder(p):
        return re.fullmatch("artifacts-" + VERSION, p.name) is not None and p.is_dir() and not p.is_symlink()

    run = copy_run(base[1], tmp_path / "prune")
    first = current(run)
    backups = [run / f"{first.name}-good", run / "artifacts-old", run / f"{first.name}0", run / "my-artifacts"]
    for b in backups:
        shutil.copytree(first, b)
    link = run / (first.name[:-1] + ("8" if first.name.endswith("9") else "9"))
    link.symlink_to(first)  # a link with a version name: a user's, not a folder of ours
    assert not any(is_version_folder(b) for b in backups) and is_version_folder(first)
    for _ in range(3):
        rebuild_index(run, Config().index)
    assert all(b.is_dir() and (b / "manifest.json").is_file() for b in backups)
    assert link.is_symlink() and not first.exists()
    versions = sorted(p for p in run.iterdir() if is_version_folder(p))
    assert len(versions) == 2 and current(run) == versions[-1]
    os.unlink(run / "current")
    os.symlink(versions[0].name, run / "current")  # rolled back by hand: the folder current names stays
    newer = run / "artifacts-29991231T235959-999999999"
    shutil.copytree(versions[1], run / "artifacts-29991231T235959-999999998")
    shutil.copytree(versions[1], newer)
    prune_generations(run, "artifacts", {newer.name}, 2)
    assert versions[0].is_dir() and newer.is_dir() and not versions[1].exists()


def test_dataset_pruning_spares_a_users_gen_copy(tmp_path):
    from embedrec.fsutil.generations import new_version, prune_generations

    names = [f"gen-{new_version()}" for _ in range(4)]
    for n in names:
        (tmp_path / n).mkdir()
    (tmp_path / f"{names[0]}-backup").mkdir()
    (tmp_path / f".gen-{new_version()}.tmp").mkdir()  # a killed writer's leftover
    (tmp_path / ".gen-mine.tmp").mkdir()
    os.symlink(names[0], tmp_path / "current")
    prune_generations(tmp_path, "gen", {names[-1]}, 2)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([".gen-mine.tmp", "current", names[0], f"{names[0]}-backup", names[2], names[3]])


def test_pruning_keeps_a_generation_holding_a_users_files(tmp_path, caplog):
    """A red team: notes.txt put in a dataset's generation folder went with it at the next `ingest --overwrite`,
    without a word. A generation holding files its manifest does not list is kept, and said so once; so is one
    whose manifest is missing, unreadable or lists no files, holding a name embedrec never writes (session 49's
    review: one without its manifest was
    removed with notes.txt in it), each with how to remove it by hand. An empty one, and one holding only what
    its manifest lists, are removed."""
    import json as _json

    from embedrec.fsutil.generations import new_version, prune_generations

    names = [f"gen-{new_version()}" for _ in range(7)]
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "train.parquet").write_bytes(b"x")
        (tmp_path / n / "manifest.json").write_text(_json.dumps({"files": {"train.parquet": {}}}))
    (tmp_path / names[0] / "notes.txt").write_text("mine")
    (tmp_path / names[1] / "manifest.json").write_text("{damaged")  # embedrec's own, damaged: nothing to tell by
    (tmp_path / names[2] / "manifest.json").write_text(_json.dumps({"counts": {}}))  # from before file lists
    (tmp_path / names[2] / "notes.md").write_text("mine as well")
    (tmp_path / names[3] / "manifest.json").unlink()  # gone: its notes.txt must not go with it
    (tmp_path / names[3] / "notes.txt").write_text("mine too")
    shutil.rmtree(tmp_path / names[4])  # an empty one: nothing in it to lose
    (tmp_path / names[4]).mkdir()
    # names[5]: embedrec's files alone, removed; names[6]: current
    for i, n in enumerate(names):  # written in this order (pruning goes by when each was written)
        for p in (tmp_path / n / "manifest.json", tmp_path / n):
            if p.exists():
                os.utime(p, ns=(10**18 + i * 10**9,) * 2)
    os.symlink(names[6], tmp_path / "current")
    with caplog.at_level("WARNING", logger="embedrec"):
        prune_generations(tmp_path, "gen", set(), 1)
    # names[1]: no list to tell by, but only names embedrec writes (train.parquet, manifest.json): removed (a
    # review: an earlier embedrec's generations were kept, warned of at every publish)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["current", names[0], *names[2:4], names[6]])
    assert (tmp_path / names[0] / "notes.txt").read_text() == "mine"
    assert (tmp_path / names[3] / "notes.txt").read_text() == "mine too"

    def by_hand(n):
        return f"look in it, and remove it (rm -r {tmp_path / n}) if nothing there is yours"

    told = "so which of its files embedrec wrote cannot be told"
    assert [r.getMessage() for r in caplog.records] == [
        f"kept the old folder '{tmp_path / names[0]}': it holds files embedrec did not write (notes.txt); move them "
        "out of it, and the next write removes it",
        f"kept the old folder '{tmp_path / names[2]}': it has a manifest.json from an earlier embedrec, which does "
        f"not list its files, {told}; {by_hand(names[2])}",
        f"kept the old folder '{tmp_path / names[3]}': it has no manifest.json, {told}; {by_hand(names[3])}"]


def test_ingest_overwrite_keeps_an_old_generation_without_its_manifest_and_says_so(tmp_path):
    """Session 49's review: a dataset generation whose manifest was gone was pruned at the next ingest --overwrite
    with the notes.txt a user had put in it. It is kept, and the warning names it with how to remove it."""
    csv = write_csv(tmp_path / "r.csv")
    ds = tmp_path / "ds"
    assert invoke("ingest", "-q", csv, "-o", ds).exit_code == 0
    old = current(ds)
    (old / "manifest.json").unlink()
    (old / "notes.txt").write_text("mine")
    r = invoke("ingest", "-q", csv, "-o", ds, "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert current(ds) != old and (old / "notes.txt").read_text() == "mine"
    assert r.stderr == (f"kept the old folder '{old}': it has no manifest.json, so which of its files embedrec "
                        f"wrote cannot be told; look in it, and remove it (rm -r {old}) if nothing there is yours\n")
    shutil.rmtree(old)  # as it says: the next write has nothing to say
    r = invoke("ingest", "-q", csv, "-o", ds, "--overwrite")
    assert r.exit_code == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("prefix", ["gen", "artifacts"])
def test_pruning_keeps_a_generation_holding_a_folder_a_link_or_a_fifo_whatever_its_name(tmp_path, caplog, prefix):
    """A red team: a generation whose manifest was lost, holding a user's results.parquet/ folder (Spark writes
    one so), was pruned with the user's part files in it: the names embedrec writes were matched against every
    entry, folders too. embedrec writes only regular files in a generation, so a folder, a link or a FIFO there
    keeps it (a run's artifacts-* and a dataset's gen-* alike), with the warning a user's file gets; a generation
    of embedrec's files alone still goes."""
    from embedrec.fsutil.generations import new_version, prune_generations
    from embedrec.fsutil.integrity import file_entry

    names = [f"{prefix}-{new_version()}" for _ in range(6)]
    for n in names:
        write(tmp_path / n / "movie_factors.npy", "x")
    lost = [names[0], names[1], names[2]]  # no manifest: a folder, a link, a FIFO of names embedrec writes
    write(tmp_path / names[0] / "results.parquet" / "part-00000.txt", "my work")
    os.symlink("movie_factors.npy", tmp_path / names[1] / "user_factors.npy")
    os.mkfifo(tmp_path / names[2] / "metrics.jsonl")
    key = "checksums" if prefix == "artifacts" else "files"
    for n in names[3:]:
        listed = {"movie_factors.npy": file_entry(tmp_path / n / "movie_factors.npy")}
        write(tmp_path / n / "manifest.json", json.dumps({key: listed, **({"n_users": 1} if key == "checksums"
                                                                          else {})}))
    (tmp_path / names[3] / "movie_factors.npy").unlink()
    (tmp_path / names[3] / "movie_factors.npy").mkdir()  # a listed name, a folder now
    # names[4]: its manifest and the file it lists, removed; names[5]: current
    for i, n in enumerate(names):
        for p in (tmp_path / n / "manifest.json", tmp_path / n):
            if p.exists():
                os.utime(p, ns=(10**18 + i * 10**9,) * 2)
    os.symlink(names[5], tmp_path / "current")
    with caplog.at_level("WARNING", logger="embedrec"):
        prune_generations(tmp_path, prefix, set(), 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["current", *names[:4], names[5]])
    assert (tmp_path / names[0] / "results.parquet" / "part-00000.txt").read_text() == "my work"
    told = ("it has no manifest.json, so which of its files embedrec wrote cannot be told; look in it, and remove it "
            "(rm -r {}) if nothing there is yours")
    assert [r.getMessage() for r in caplog.records] == [
        *(f"kept the old folder '{tmp_path / n}': " + told.format(tmp_path / n) for n in lost),
        f"kept the old folder '{tmp_path / names[3]}': it holds files embedrec did not write (movie_factors.npy/); "
        "move them out of it, and the next write removes it"]
    caplog.clear()
    os.unlink(tmp_path / names[1] / "user_factors.npy")  # what was the user's taken out: the next prune removes it
    os.utime(tmp_path / names[1], ns=(10**18 + 10**9,) * 2)
    prune_generations(tmp_path, prefix, set(), 1)
    assert not (tmp_path / names[1]).exists() and (tmp_path / names[0]).is_dir()


def test_pruning_keeps_a_generation_whose_listed_file_someone_changed(tmp_path, caplog):
    """A red team: a generation's train.parquet overwritten by a user went at the next ingest --overwrite (names
    were compared, not bytes), where export --overwrite refuses the same. A file its manifest lists is compared
    with the size and SHA-256 it records first: other bytes of the same size, or another size, keep the
    generation, warned; the same bytes, or the file gone, let it go."""
    from embedrec.fsutil.generations import new_version, prune_generations
    from embedrec.fsutil.integrity import file_entry

    names = [f"gen-{new_version()}" for _ in range(5)]
    for n in names:
        write(tmp_path / n / "train.parquet", "embedrec's")
        write(tmp_path / n / "test.parquet", "embedrec's too")
        files = {f: file_entry(tmp_path / n / f) for f in ("train.parquet", "test.parquet")}
        write(tmp_path / n / "manifest.json", json.dumps({"files": files}))
    write(tmp_path / names[0] / "train.parquet", "mine!!!!!!")  # the same size, other bytes
    write(tmp_path / names[1] / "train.parquet", "mine, longer")
    write(tmp_path / names[1] / "test.parquet", "mine")
    (tmp_path / names[2] / "train.parquet").unlink()  # gone: nothing in it to lose
    for i, n in enumerate(names):
        for p in (tmp_path / n / "manifest.json", tmp_path / n):
            os.utime(p, ns=(10**18 + i * 10**9,) * 2)
    os.symlink(names[4], tmp_path / "current")
    with caplog.at_level("WARNING", logger="embedrec"):
        prune_generations(tmp_path, "gen", set(), 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["current", names[0], names[1], names[4]])
    assert (tmp_path / names[0] / "train.parquet").read_text() == "mine!!!!!!"
    assert [r.getMessage() for r in caplog.records] == [
        f"kept the old folder '{tmp_path / names[0]}': it holds a file embedrec wrote but someone changed since "
        "(train.parquet: not the bytes its manifest records); move it out of it, and the next write removes it",
        f"kept the old folder '{tmp_path / names[1]}': it holds files embedrec wrote but someone changed since "
        "(test.parquet, train.parquet: not the bytes its manifest records); move them out of it, and the next write "
        "removes it"]


def test_a_listed_file_is_compared_by_size_alone_above_the_hashing_limit(tmp_path):
    """What pruning and --overwrite compare: the size always, the SHA-256 up to hash_max (64 MiB: a larger file's
    bytes are not read at each publish); a folder or a link in its place is not as recorded; a file gone is."""
    from embedrec.fsutil.integrity import as_recorded, file_entry

    p = write(tmp_path / "a.npy", "0123456789")
    entry = file_entry(p)
    write(p, "9876543210")
    assert not as_recorded(p, entry) and as_recorded(p, entry, hash_max=9)
    assert not as_recorded(p, {**entry, "bytes": 11}, hash_max=9)
    assert as_recorded(p, {"sha256": entry["sha256"]}) and as_recorded(p, {}) and as_recorded(p, None)
    assert as_recorded(tmp_path / "gone.npy", entry)
    os.symlink(p, tmp_path / "link.npy")
    (tmp_path / "dir.npy").mkdir()
    assert not as_recorded(tmp_path / "link.npy", file_entry(p)) and not as_recorded(tmp_path / "dir.npy", entry)


def test_ingest_overwrite_keeps_a_generation_or_refuses_a_flat_dataset_holding_a_file_the_user_changed(base,
                                                                                                      tmp_path):
    """A red team: ingest --overwrite deleted a generation's train.parquet the user had overwritten, and a flat
    folder's train.parquet of the user's beside a copied manifest.json, where export --overwrite refuses to. The
    generation is kept, warned of as pruning warns; the flat folder, whose file --overwrite would replace by its
    link into the new generation, is refused as export refuses, naming the file, and nothing is deleted."""
    ds, _ = base
    csv = ds.parent / "ratings.csv"
    gens = tmp_path / "ds"
    assert invoke("ingest", "-q", csv, "-o", gens).exit_code == 0
    old = current(gens)
    (old / "train.parquet").write_text("my filtered version")
    r = invoke("ingest", "-q", csv, "-o", gens, "--overwrite")
    assert r.exit_code == 0 and current(gens) != old, r.stderr
    assert r.stderr == (f"kept the old folder '{old}': it holds a file embedrec wrote but someone changed since "
                        "(train.parquet: not the bytes its manifest records); move it out of it, and the next write "
                        "removes it\n")
    assert (old / "train.parquet").read_text() == "my filtered version"
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(current(ds) / "manifest.json", flat / "manifest.json")
    (flat / "train.parquet").write_text("my own")
    r = invoke("ingest", "-q", csv, "-o", flat, "--overwrite")
    assert r.exit_code == 2 and one_line(r) == (f"error: '{flat}' holds a file embedrec wrote but someone changed "
                                                "since (train.parquet: not the bytes its manifest records), which "
                                                "--overwrite would replace by its link into the new generation; "
                                                "move it out first, or choose another output folder")
    assert sorted(p.name for p in flat.iterdir()) == ["manifest.json", "train.parquet"]
    assert (flat / "train.parquet").read_text() == "my own"
    same = bytearray((current(ds) / "train.parquet").read_bytes())  # a change of the same size: the publish's
    same[-9] ^= 0xFF  # checksum finds it, once the source is read, and nothing is written
    (flat / "train.parquet").write_bytes(bytes(same))
    r = invoke("ingest", "-q", csv, "-o", flat, "--overwrite")
    assert r.exit_code == 2 and "holds a file embedrec wrote but someone changed since (train.parquet" in r.stderr
    assert sorted(p.name for p in flat.iterdir()) == ["manifest.json", "train.parquet"]
    assert (flat / "train.parquet").read_bytes() == bytes(same)


@pytest.mark.parametrize("text", ["null", "[]", "3"])
def test_a_manifest_that_is_json_but_no_object_is_corrupt(tmp_path, text):
    from embedrec.errors import ArtifactError
    from embedrec.fsutil.files import read_json

    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ArtifactError, match="is corrupt \\(JSON .*, not an object\\)"):
        read_json(tmp_path / "manifest.json", "run manifest")


def test_a_dataset_with_a_damaged_manifest_is_replaced_by_the_overwrite_its_error_advises(base, tmp_path):
    """A review: a dataset whose manifest was cut short said 'rerun embedrec ingest --overwrite', which then
    refused the folder as 'holding files embedrec did not write' (its own current, gen-..., links)."""
    import shutil

    ds = tmp_path / "d"
    shutil.copytree(base[0], ds, symlinks=True)
    m = Path(os.path.realpath(ds / "current")) / "manifest.json"
    m.write_bytes(m.read_bytes()[:500])
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--set", f"run.dir={tmp_path / 'r'}")
    # its source unread (the manifest is what is cut), the advice names the folder to ingest into again
    assert r.exit_code == 1 and f"rerun 'embedrec ingest SOURCE -o {ds} --overwrite' with the --set" in one_line(r)
    csv = base[0].parent / "ratings.csv"
    r = invoke("ingest", "-q", csv, "-o", ds, "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert invoke("verify", ds).exit_code == 0
    (ds / "notes.txt").write_text("mine")  # a user's file beside it: still refused, named
    m = Path(os.path.realpath(ds / "current")) / "manifest.json"
    m.write_bytes(m.read_bytes()[:500])
    r = invoke("ingest", "-q", csv, "-o", ds, "--overwrite")
    assert r.exit_code == 2 and "holds files embedrec did not write" in one_line(r)


def test_a_run_copied_with_links_followed_is_refused_before_the_fit(base, tmp_path):
    """A review: a run copied with cp -rL (its current a folder) served, but train fitted it all and then failed
    at publishing ('Is a directory'), leaving an artifacts folder behind; index rebuild likewise."""
    import shutil

    run = tmp_path / "copied"
    shutil.copytree(base[1], run, symlinks=False)
    assert (run / "current").is_dir() and not (run / "current").is_symlink()
    before = sorted(run.glob("artifacts-*"))  # the copied ones
    assert invoke("recommend", "-q", "--run", run, "--user", "1", "-k", "2").exit_code == 0
    for args in (["train", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={run}"],
                 ["index", "rebuild", "--run", run]):
        r = invoke(*args, "-q")
        assert r.exit_code == 1 and one_line(r).startswith(f"error: '{run / 'current'}' is a folder, not the link"), \
            r.stderr
    assert sorted(run.glob("artifacts-*")) == before  # nothing fitted or built, nothing left behind


# ------------------------------------------------------------------------------------------ SIGTERM during train

# `embedrec train ARGS` in a process that sends itself SIGTERM at a chosen moment: "epoch" once epoch AT's
# checkpoint is written (the selection fit, not the refit), "publish" with the artifacts in the temporary folder
SIGTERM_AT = r"""
import os
import shlex
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

where, at, *args = sys.argv[1:]


def term():
    os.kill(os.getpid(), getattr(signal, os.environ.get("EMBEDREC_TEST_SIGNAL", "SIGTERM")))


if where == "epoch":
    from embedrec.training import loop

    record = loop.Checkpoint.record

    def record_then_term(self, state, row):
        record(self, state, row)
        if state.epoch + 1 == int(at) and Path(self.path).parent.name != "refit":
            term()

    loop.Checkpoint.record = record_then_term
else:
    from embedrec import artifacts as R

    save = R.save_artifacts

    def save_then_term(*a, **k):
        out = save(*a, **k)
        term()
        return out

    R.save_artifacts = save_then_term
sys.argv = ["embedrec", *args]
from embedrec.cli import run

run()
"""


def _process(*args, env=None, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env=None if env is None else {**os.environ, **env}, preexec_fn=preexec_fn)


def _published(run: Path) -> tuple[dict, list]:
    """The published model's arrays and epoch log (without the timings)."""
    cur = current(run)
    arrays = {n: np.load(cur / f"{n}.npy").tobytes() for n in ("user_factors", "movie_factors", "user_bias",
                                                                 "movie_bias")}
    log = [{k: v for k, v in json.loads(x).items() if k not in ("seconds", "elapsed")}
           for x in (cur / "metrics.jsonl").read_text().splitlines()]
    return arrays, log


def test_sigterm_during_train_leaves_like_ctrl_c_and_resumes_to_the_same_model(base, tmp_path):
    """kill -TERM (a scheduler's stop) takes Ctrl-C's way out of `train`: one line saying it was terminated with
    the exact resume command, exit 143 (128 + 15), the checkpoint kept, no temporary artifacts folder left; the
    resume publishes what an uninterrupted run publishes. Before, the process died silently (143, no hint).
    SIGHUP (an SSH session that drops) the same way, said as hung up, exit 129 (before: silent, temporaries
    left)."""
    import shlex

    sets = ["--set", f"data.prepared={base[0]}", "--set", "model.dim=4", "--set", "model.objective=explicit",
            "--set", "train.optimizer=adam", "--set", "train.epochs=5", "--set", "train.patience=10",
            "--set", "train.threads=1"]
    whole = _process("-m", "embedrec", "train", "-q", *sets, "--run", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    for where, sig, said in (("epoch", "SIGTERM", "after epoch 2; the checkpoint of epoch 2 is in "),
                             ("publish", "SIGTERM", "outside an epoch: nothing half-written was left behind; "),
                             ("epoch", "SIGHUP", "after epoch 2; the checkpoint of epoch 2 is in ")):
        run = tmp_path / f"{where}-{sig}"
        r = _process("-c", SIGTERM_AT, where, 2, "train", "-q", *sets, "--run", run, env={"EMBEDREC_TEST_SIGNAL": sig},
                     preexec_fn=hangup_default)  # not nohup's ignore, where the suite runs under it
        assert r.returncode == {"SIGTERM": 143, "SIGHUP": 129}[sig], (where, r.returncode, r.stderr)
        line = one_line(SimpleNamespace(stderr=r.stderr))
        how = {"SIGTERM": "terminated (SIGTERM)", "SIGHUP": "hung up (SIGHUP)"}[sig]
        assert line.startswith(f"error: training {how} ") and said in line, line
        command = shlex.split(line.split("continue with ", 1)[1])
        assert command == ["embedrec", "train", *sets, "--run", str(run), "--resume"]
        assert (run / "checkpoint.pt").exists() and not (run / "current").exists()
        assert not [p.name for p in run.iterdir() if p.name.startswith(".artifacts-")]
        resumed = _process("-m", "embedrec", *command[1:], "-q")
        assert resumed.returncode == 0, resumed.stderr
        assert _published(run) == _published(tmp_path / "whole"), where


def test_sighup_under_nohup_is_ignored_as_nohup_promises(base, tmp_path):
    """A review: the SIGHUP handler replaced nohup's 'ignore SIGHUP', so `nohup embedrec train &` died when the SSH
    session dropped. Where SIGHUP is ignored when train starts, it stays ignored: the run finishes, exit 0."""
    import signal

    sets = ["--set", f"data.prepared={base[0]}", "--set", "model.dim=4", "--set", "model.objective=explicit",
            "--set", "train.optimizer=adam", "--set", "train.epochs=3", "--set", "train.threads=1"]
    r = subprocess.run([sys.executable, "-c", SIGTERM_AT, "epoch", "2", "train", "-q", *sets, "--run",
                        str(tmp_path / "run")], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "EMBEDREC_TEST_SIGNAL": "SIGHUP"},
                       preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert r.returncode == 0 and (tmp_path / "run" / "current").exists(), (r.returncode, r.stderr)


def test_ctrl_c_between_an_epochs_row_and_its_checkpoint_says_which_epoch_resumes(base, tmp_path, monkeypatch):
    """A review: Ctrl-C said "interrupted after epoch 100; the checkpoint of epoch 99" while the bar showed 99:
    the epoch's row was logged, its checkpoint not yet written. The line now says so, and which epoch a resume
    runs again."""
    from embedrec.training import loop

    real = loop.Checkpoint.record

    def record(self, state, row):
        if state.epoch + 1 == 3:
            raise KeyboardInterrupt
        real(self, state, row)

    monkeypatch.setattr(loop.Checkpoint, "record", record)
    run = tmp_path / "run"
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", "model.dim=4", "--set",
               "model.objective=explicit", "--set", "train.optimizer=adam", "--set", "train.epochs=5", "--set",
               "train.patience=10", "--set", "train.threads=1", "--run", run)
    assert r.exit_code == 130, r.stderr
    assert one_line(r).startswith(f"error: training interrupted after epoch 3, before its checkpoint was written; "
                                  f"the checkpoint of epoch 2 is in {run / 'checkpoint.pt'} (resuming runs epoch 3 "
                                  "again): continue with "), r.stderr


@pytest.mark.parametrize("how", ["between candidates", "in the second candidate"])
def test_ctrl_c_after_a_finished_candidate_says_resume(base, tmp_path, monkeypatch, how):
    """The default model fits one candidate per als_reg; Ctrl-C after the first one's checkpoint said "nothing
    was saved; rerun the same command" (which fits it again), or, between candidates, a bare "interrupted"
    without the resume command. Both now give the exact --resume command, which then finishes the run."""
    import embedrec.training.select as fitmod  # the fit that the selection (and the refit) calls
    from embedrec.errors import Interrupted

    real, calls = fitmod.fit, []

    def fit(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            if how == "between candidates":
                raise KeyboardInterrupt
            raise Interrupted("training interrupted in epoch 1, before any epoch finished: nothing was saved; "
                              "rerun the same command to start again", saved=False)
        return real(*a, **k)

    monkeypatch.setattr(fitmod, "fit", fit)
    run = tmp_path / "run"
    sets = ["--set", f"data.prepared={base[0]}", "--set", "model.dim=4", "--set", "train.threads=1"]
    r = invoke("train", "-q", *sets, "--run", run)
    assert r.exit_code == 130, r.stderr
    line = one_line(r)
    assert line.startswith("error: training interrupted ") and line.endswith(
        f"continue with embedrec train --set data.prepared={base[0]} --set model.dim=4 --set train.threads=1 "
        f"--run {run} --resume"), line
    monkeypatch.setattr(fitmod, "fit", real)
    r = invoke("train", "-q", *sets, "--run", run, "--resume")
    assert r.exit_code == 0, r.stderr
    # a finished run's old checkpoint in the folder is not this command's: a Ctrl-C before any epoch says so
    for p in [*run.glob("checkpoint*"), *run.glob("*/checkpoint*")]:
        os.utime(p, (p.stat().st_atime - 60, p.stat().st_mtime - 60))  # that run finished a minute ago
    monkeypatch.setattr(fitmod, "fit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    r = invoke("train", "-q", *sets, "--run", run)
    assert one_line(r) == ("error: training interrupted before any epoch finished: nothing was saved; rerun the "
                           "same command to start again") and r.exit_code == 130


def test_train_puts_back_the_sigterm_handler(base, tmp_path):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={tmp_path / 'run'}",
               "--set", "model.dim=4", "--set", "model.objective=explicit", "--set", "train.epochs=1")
    assert r.exit_code == 0, r.stderr
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_after_the_run_is_published_waits_for_the_report_and_exits_0(base, tmp_path, monkeypatch):
    """A first-hour pass: a SIGTERM once the run was published (while the metrics printed) killed train with
    exit 143 and no word, so a scheduler recorded a finished run as failed; now the report finishes, one
    warning says the run holds the finished model, and the exit is 0."""
    import signal

    from embedrec.cli import train as cli_train

    printed = cli_train.metrics_out

    def killed_while_printing(metrics, fmt):
        os.kill(os.getpid(), signal.SIGTERM)
        printed(metrics, fmt)
    monkeypatch.setattr(cli_train, "metrics_out", killed_while_printing)
    before = signal.signal(signal.SIGTERM, lambda *a: None)  # were train to let it through: not pytest's death
    try:
        r = invoke("train", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={tmp_path / 'run'}",
                   "--set", "model.dim=4", "--set", "model.objective=explicit", "--set", "train.epochs=1",
                   "--format", "json")
    finally:
        signal.signal(signal.SIGTERM, before)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["splits"] and r.stderr.splitlines()[-1] == (
        f"SIGTERM came after the run was published: {tmp_path / 'run'} holds the finished model")
    assert invoke("verify", tmp_path / "run").exit_code == 0


def test_ctrl_c_while_the_report_prints_exits_0_and_the_process_ignores_signals_after_it(base, tmp_path,
                                                                                         monkeypatch):
    """A review: a SIGINT while the report printed, or a SIGTERM in the second after it (the handler put back,
    the process still leaving), exited 130 or 143 though the run was published and reported. Now the report
    finishes with a warning and exit 0, and the process's own command (cli.run) keeps noting SIGTERM until it
    leaves; Ctrl-C gets its handler back (a torchrun rank's wait at exit is cut short by it)."""
    import signal

    from embedrec.cli import app
    from embedrec.cli import train as cli_train

    printed = cli_train.metrics_out

    def interrupted_while_printing(metrics, fmt):
        os.kill(os.getpid(), signal.SIGINT)
        printed(metrics, fmt)
    monkeypatch.setattr(cli_train, "metrics_out", interrupted_while_printing)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    r = invoke("train", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={tmp_path / 'run'}",
               "--set", "model.dim=4", "--set", "model.objective=explicit", "--set", "train.epochs=1",
               "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["splits"] and r.stderr.splitlines()[-1] == (
        f"SIGINT came after the run was published: {tmp_path / 'run'} holds the finished model")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # CliRunner: put back
    monkeypatch.setattr(app._State, "process", True)
    try:
        with app.sigterm_as_interrupt() as sig:
            sig.defer()
        os.kill(os.getpid(), signal.SIGTERM)  # after the block, as the process leaves: noted, not a kill
        assert sig.came == "SIGTERM"
        assert signal.getsignal(signal.SIGINT) == before[0]  # Ctrl-C cuts a torchrun rank's wait at exit short
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_sigterm_while_old_generations_are_pruned_reports_the_published_run(base, tmp_path, monkeypatch):
    """A review: a SIGTERM after the swap to the new model, while older generations were pruned, said 'training
    terminated outside an epoch ... --resume' with exit 143, though the run was published and served."""
    import signal

    from embedrec.fsutil import generations as fsutil

    pruned = fsutil.prune_generations

    def killed_while_pruning(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        return pruned(*a, **k)
    monkeypatch.setattr(fsutil, "prune_generations", killed_while_pruning)
    before = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        r = invoke("train", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={tmp_path / 'run'}",
                   "--set", "model.dim=4", "--set", "model.objective=explicit", "--set", "train.epochs=1")
    finally:
        signal.signal(signal.SIGTERM, before)
    assert r.exit_code == 0, r.stderr
    assert r.stderr.splitlines()[-1] == (f"SIGTERM came after the run was published: {tmp_path / 'run'} holds the "
                                         "finished model (its metrics: embedrec evaluate)"), r.stderr
    assert invoke("recommend", "--run", tmp_path / "run", "--user", "1", "-k", "2").exit_code == 0


# ------------------------------------------------------------------------------------------ SIGTERM during tune-dims

def _files(folder: Path) -> list:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*"))


def _tune_sweep(tmp_path: Path) -> tuple[Path, list[str]]:
    """A small dataset and the `tune-dims` command over it: 3 trials (2, 3: the fourth root of 100 movies, 8: also
    the config's model.dim),
    2 at a time, each a few seconds of one thread. Returns (tune.dir, the command)."""
    from embedrec.config import Config
    from embedrec.data.synth import write_movielens
    from embedrec.ingestion import ingest

    write_movielens(tmp_path / "src", 200, 100, 8000, rank=4, seed=1)
    cfg = Config().updated({"data.source": str(tmp_path / "src"), "data.prepared": str(tmp_path / "ds")})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    tune = tmp_path / "tune"
    return tune, [sys.executable, "-m", "embedrec", "tune-dims", "-q", "--dims", "2,8", "--format", "tsv",
                  *[x for kv in (f"data.prepared={tmp_path / 'ds'}", f"tune.dir={tune}", "model.objective=explicit",
                                 "train.optimizer=adam", "train.epochs=4", "train.patience=4", "tune.workers=2",
                                 "model.dim=8",
                                 "tune.threads=1") for x in ("--set", kv)]]


@pytest.mark.parametrize("group", [False, True], ids=["SIGTERM", "SIGHUP-to-the-group"])
def test_sigterm_during_tune_dims_stops_its_workers_and_keeps_finished_trials(tmp_path, group):
    """kill -TERM of `tune-dims` while its workers train: before, the parent died at once (-15) and its pool
    workers went on training and writing into tune.dir without the lock. Now it takes Ctrl-C's way out: the
    workers are stopped and waited for, one line, exit 143, nothing in tune.dir changes afterwards, and the same
    command continues, keeping the trials that finished. A terminal hanging up signals the whole process group
    with SIGHUP (a review: multiprocessing's resource tracker died of it and its successor wrote 7 tracebacks):
    the same way out, exit 129."""
    tune, command = _tune_sweep(tmp_path)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen(command, stdout=o, stderr=e, start_new_session=group, preexec_fn=hangup_default)
    try:
        deadline = time.monotonic() + 180
        while not (tune / "tune.json").exists():  # the first trial finished: others run or wait
            assert p.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "no trial finished in 180 s"
            time.sleep(0.05)
        if group:
            os.killpg(p.pid, signal.SIGHUP)
        else:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)  # the workers stop within worker_pool.STOP_WAIT (30 s), or are killed
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    before = _files(tune)
    time.sleep(3)  # no worker left writing
    assert _files(tune) == before
    saved = json.loads((tune / "tune.json").read_text())
    n = len(saved["trials"])
    assert rc == (129 if group else 143), (rc, err.read_text())
    how = "hung up (SIGHUP)" if group else "terminated (SIGTERM)"
    assert err.read_text().splitlines() == [
        f"error: tune-dims {how}; {n} finished trial{'s are' if n != 1 else ' is'} kept in "
        f"{tune / 'tune.json'}: rerun the "
        "same command to continue"]
    assert out.read_text() == ""
    assert not [name for name, *_ in before if "/" not in name and name.startswith(".") and name != ".lock"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = [line.split("\t") for line in again.stdout.splitlines()]
    assert sorted(int(r[0]) for r in rows[1:]) == [2, 3, 8]
    redone = {t["key"]: t for t in json.loads((tune / "tune.json").read_text())["trials"]}
    assert all(redone[t["key"]]["seconds"] == t["seconds"] for t in saved["trials"])  # kept, not trained again


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _descendants(pid: int) -> list[int]:
    """pid's children and theirs: a sweep's workers are its forkserver's children (spawned ones, its own)."""
    out = _children(pid)
    for c in list(out):
        out += _children(c)
    return out


def _live_workers(pid: int) -> list[int]:
    """The sweep's worker processes: spawned (their command line runs spawn_main) or forked by its forkserver
    (whose own command line they keep; the server is the sweep's child, its workers the server's)."""
    out = []
    for c in _children(pid):
        with contextlib.suppress(OSError):
            line = Path(f"/proc/{c}/cmdline").read_bytes()
            if b"spawn_main" in line:
                out.append(c)
            elif b"forkserver" in line:
                out += _children(c)
    return out


def _trials(tune: Path) -> list:
    try:
        return json.loads((tune / "tune.json").read_text())["trials"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists processes through /proc")
def test_kill_9_of_tune_dims_leaves_no_worker_behind(tmp_path):
    """kill -9 of `tune-dims`: a worker between trials waited for its next trial for ever (it holds both ends of
    the pool's queue itself, and ignores SIGTERM between trials), and one in a trial went on to wait after it.
    Each worker now sees its sweep's process gone and exits (a running trial gets worker_pool.STOP_WAIT to stop)."""
    tune, command = _tune_sweep(tmp_path)  # when two trials have finished, the worker that replaced the
    # second waits for a trial that never comes
    p = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while len(_trials(tune)) < 2 or len(_live_workers(p.pid)) < 2:  # one on the last trial, one idle
            assert p.poll() is None and time.monotonic() < deadline
            workers.update(_descendants(p.pid))
            time.sleep(0.05)
        time.sleep(1)  # the idle one's start-up done
        workers.update(_descendants(p.pid))
        assert p.poll() is None, "the sweep ended before it was killed: nothing was tested"
        p.kill()
        p.wait()
        alive = lambda: [w for w in workers if Path(f"/proc/{w}").exists()  # noqa: E731
                         and Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        deadline = time.monotonic() + 60  # worker_pool.STOP_WAIT (30 s) for a running trial, and start-up slack
        while alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers and not alive()
    finally:
        for w in workers:
            with contextlib.suppress(OSError):
                os.kill(w, signal.SIGKILL)


def test_a_current_that_is_a_file_or_a_dataset_generation_is_one_line(base, tmp_path):
    """A red-team pass: a run folder whose 'current' is a file printed an 'Exception ignored in FolderHold.__del__'
    traceback block before the error (the handle was never set); one whose 'current' links to a dataset's
    generation was 'internal error (KeyError: 'dataset')'; and 'no trained model' listed datasets as runs."""
    ds, run = base
    lk = tmp_path / "lk"
    lk.mkdir()
    (lk / "current").write_text("junk\n")
    p = subprocess.run([sys.executable, "-m", "embedrec", "recommend", "--run", str(lk), "--user", "1"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "Exception ignored" not in p.stderr, p.stderr
    lk2 = tmp_path / "lk2"
    lk2.mkdir()
    (lk2 / "current").symlink_to(os.path.realpath(ds / "current"))
    line = one_line(invoke("recommend", "--run", lk2, "--user", "1"))
    assert "internal error" not in line and str(lk2) in line, line
    beside = tmp_path / "beside"
    shutil.copytree(ds, beside / "a-dataset", symlinks=True)
    copy_run(run, beside / "b-run")
    line = one_line(invoke("recommend", "--run", beside / "none", "--user", "1"))
    assert line.endswith(f"(trained runs beside it: --run {beside / 'b-run'})"), line


def test_the_runs_named_beside_a_missing_one_are_a_close_name_then_the_latest(base, tmp_path):
    """A first-hour review: with a typo in run.dir, 'trained runs beside it' listed three runs by name and hid
    runs/ml-100k, the one meant, among '8 more'. A name close to the one asked for comes first, then the latest
    published."""
    _, run = base
    beside = tmp_path / "runs"
    names = ["ml-100k", "a-old", "b-new", "c-mid", "d-older"]
    for age, name in zip((5, 4, 1, 2, 3), names):  # hours since each was published
        copy_run(run, beside / name)
        t = time.time() - age * 3600
        os.utime(beside / name / "current", (t, t), follow_symlinks=False)
    line = one_line(invoke("recommend", "--run", beside / "ml-10k", "--user", "1"))
    assert line.endswith(f"(trained runs beside it: --run {beside / 'ml-100k'}, --run {beside / 'b-new'}, "
                         f"--run {beside / 'c-mid'} and 2 more)"), line
    line = one_line(invoke("recommend", "--run", beside / "zzz", "--user", "1"))
    assert line.endswith(f"(trained runs beside it: --run {beside / 'b-new'}, --run {beside / 'c-mid'}, "
                         f"--run {beside / 'd-older'} and 2 more)"), line


def test_a_writer_through_a_symlink_takes_the_same_lock(base, tmp_path):
    """A red-team pass: 'ingest -o dsL' and 'ingest -o alias' (alias -> dsL) both ran, each holding a lock named
    after the path it was given; one died with an internal error when the other swept its temporary folder."""
    ds = shutil.copytree(base[0], tmp_path / "dsL", symlinks=True)
    (tmp_path / "alias").symlink_to(ds)
    code = ("import sys, time\nfrom embedrec.fsutil.locks import target_lock\n"
            "with target_lock(sys.argv[1], 'embedrec ingest', 'x'):\n    print('held', flush=True)\n"
            "    time.sleep(120)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "alias")], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        line = one_line(invoke("ingest", "-q", base[0].parent / "ratings.csv", "-o", ds, "--overwrite"))
        assert line.startswith(f"error: another embedrec ingest is writing '{ds}' (pid {p.pid})"), line
    finally:
        p.kill()
        p.wait()


def test_an_empty_output_folder_is_filled_in_place_and_a_mount_point_is_named(base, tmp_path, monkeypatch):
    """A red-team pass: '-o mnt --overwrite' on an empty mount point (a container's output volume) was 'internal
    error (OSError: [Errno 16] Device or resource busy)': the folder was built beside it and renamed over it.
    ingest now writes its first generation inside an empty folder (the folder itself stays); an export, which
    replaces its folder whole, says the folder is a mount point and what to write instead."""
    out = tmp_path / "vol"
    out.mkdir()
    inode = out.stat().st_ino
    r = invoke("ingest", "-q", base[0].parent / "ratings.csv", "-o", out, "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert out.stat().st_ino == inode and os.readlink(out / "current").startswith("gen-")
    assert invoke("verify", out).exit_code == 0
    vol = tmp_path / "vol2"
    vol.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == vol or real(p))
    line = one_line(invoke("export", "--run", base[1], "--to", "npy", "-o", vol, "--overwrite"))
    assert line == (f"error: '{vol}' is a mount point, which embedrec cannot replace (it writes a new folder beside "
                    f"it and renames it over); write into a folder inside it, e.g. '{vol / 'vol2'}'")


def test_evaluate_after_the_dataset_moved_takes_data_prepared(base, tmp_path, caplog):
    """A red-team pass: after 'mv m1 m2' evaluate said to point data.prepared at the dataset, then ignored
    --set data.prepared=m2. It is used now (where set), and the run's fingerprint still refuses other data."""
    ds, run = base
    moved = tmp_path / "moved"
    shutil.copytree(ds, tmp_path / "m1", symlinks=True)
    sets = ["--set", f"data.prepared={tmp_path / 'm1'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = invoke("train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=1", "--format", "json")
    assert r.exit_code == 0, r.stderr
    (tmp_path / "m1").rename(moved)
    # a review: the hint to set data.prepared then moved the run's folder too (runs/<new name>); --run goes with it
    assert one_line(invoke("evaluate", "-q", "--run", tmp_path / "run")) == (
        f"error: the dataset run '{tmp_path / 'run'}' was trained on, '{tmp_path / 'm1'}', is gone (moved or "
        f"deleted); give its new folder with --set data.prepared=FOLDER --run {tmp_path / 'run'}, or ingest it again")
    shutil.copytree(tmp_path / "run", tmp_path / "r -x", symlinks=True)  # a red team: the command split in two
    assert f"--run '{tmp_path / 'r -x'}', or ingest" in one_line(invoke("evaluate", "-q", "--run", tmp_path / "r -x"))
    r = invoke("evaluate", "-q", "--run", tmp_path / "run", "--set", f"data.prepared={moved}", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["splits"]["test"]["model"]["ndcg@10"] >= 0, r.stderr
    # from Python, the same call the CLI makes (a review: Model.evaluate had no dataset_dir, and the error named
    # evaluate_run, which is not in er.)
    import embedrec as er

    with er.open(tmp_path / "run") as m:
        with pytest.raises(er.ArtifactError, match=re.escape("give its new folder with "
                                                             "er.open(run_dir).evaluate(dataset_dir=FOLDER)")):
            m.evaluate()
        got = m.evaluate("test", dataset_dir=moved, device="cpu")
        assert got["splits"]["test"] == json.loads(r.stdout)["splits"]["test"]
        # moved_to= is the command's --set data.prepared (an architecture review: the CLI reached into
        # model.engine.run for it): read there where the recorded folder has gone
        assert m.evaluate("test", moved_to=moved, device="cpu")["splits"]["test"] == got["splits"]["test"]
        with pytest.raises(er.UsageError, match=re.escape("evaluate: give dataset_dir= (read there) or moved_to= "
                                                          "(read there where the recorded folder has moved), not both")):
            m.evaluate(dataset_dir=moved, moved_to=moved)
        with pytest.raises(er.UsageError, match="moved_to must be a path"):
            m.evaluate(moved_to=5)
        with pytest.raises(er.UsageError, match="device=5"):
            m.evaluate(dataset_dir=moved, device=5)
    other = tmp_path / "other"
    assert invoke("ingest", "-q", ds.parent / "ratings.csv", "-o", other, "--set", "split.seed=7").exit_code == 0
    line = one_line(invoke("evaluate", "-q", "--run", tmp_path / "run", "--set", f"data.prepared={other}"))
    assert f"dataset '{other}' is not the one run" in line and f"it was trained on '{tmp_path / 'm1'}'" in line
    # from Python, dataset_dir is read where given, the recorded dataset there or not (a review: another split's
    # folder, or none at all, was passed over with a log line a notebook does not show, and the run's own scored)
    with er.open(base[1]) as m:
        with pytest.raises(er.ArtifactError, match=re.escape(f"dataset '{other}' is not the one run")):
            m.evaluate(dataset_dir=other)
        with pytest.raises(er.ArtifactError, match=re.escape(f"dataset_dir= '{tmp_path / 'nope'}' does not exist; "
                                                              "give the folder of the dataset run")):
            m.evaluate(dataset_dir=tmp_path / "nope")
        with pytest.raises(er.ArtifactError, match=re.escape(f"dataset_dir= '{tmp_path}' holds no prepared dataset")):
            m.evaluate(dataset_dir=tmp_path)
        assert m.evaluate(dataset_dir=base[0])["splits"] == m.evaluate()["splits"]
        import logging

        logger = logging.getLogger("embedrec")  # (the CLI's runs above stopped it propagating to caplog's)
        logger.addHandler(caplog.handler)
        try:  # moved_to where the recorded dataset is there: the recorded one, and said
            assert m.evaluate(moved_to=other)["splits"] == m.evaluate()["splits"]
        finally:
            logger.removeHandler(caplog.handler)
        assert f"data.prepared '{other}' is not read: the run was trained on '" in caplog.text
    # where the recorded dataset is there, it is used, whatever data.prepared a config file names (a review
    # found a copy of configs/default.yaml as ./embedrec.yaml then refused every run trained on other data)
    (tmp_path / "c.yaml").write_text(f"data:\n  prepared: {other}\n")
    r = invoke("evaluate", "-q", "--run", base[1], "-c", tmp_path / "c.yaml", "--format", "json")
    assert r.exit_code == 0, r.stderr
    # ... and says so (a review: an explicit --set data.prepared was ignored without a word)
    r = invoke("evaluate", "--run", base[1], "--set", f"data.prepared={other}", "--format", "json")
    assert r.exit_code == 0 and f"data.prepared '{other}' is not read: the run was trained on '" in r.stderr, r.stderr
    for same in (base[0], base[0] / "current"):  # the recorded dataset itself: nothing to say
        r = invoke("evaluate", "--run", base[1], "--set", f"data.prepared={same}", "--format", "json")
        assert r.exit_code == 0 and "is not read" not in r.stderr, r.stderr


def test_a_full_disk_without_an_errno_is_named_by_its_path():
    """A red-team pass: pyarrow's and FAISS's disk-full errors carry no errno, so train, ingest and export said
    'cannot write the output (No space left on device)' without the path the README promises."""
    from embedrec.fsutil.files import io_error

    e = OSError("IOError: No space left on device. Detail: [errno 28] No space left on device")
    assert str(io_error(e, "runs/x", "choose another run.dir")) == ("no space left on device writing 'runs/x'; free "
                                                                    "space, or choose another run.dir")
    e = OSError("100 requested and 12 written")  # numpy's short write
    assert str(io_error(e, "out/e", "x")).startswith("no space left on device writing 'out/e'")
    assert io_error(OSError("something else"), "p") is None


def test_an_index_past_int32_in_a_dataset_without_checksums_is_refused_not_wrapped(base, tmp_path):
    """A red-team pass: in a dataset from before checksums, movie_idx 2^32 + 5 (int64) was cast to int32 (5)
    before the range check, and train went on with it."""
    ds = Path(os.path.realpath(shutil.copytree(base[0], tmp_path / "ds", symlinks=True) / "current"))
    m = json.loads((ds / "manifest.json").read_text())
    for key in ("files", "manifest_sha256", "fingerprint"):
        m.pop(key, None)
    (ds / "manifest.json").write_text(json.dumps(m))
    df = pd.read_parquet(ds / "train.parquet")
    df["movie_idx"] = df["movie_idx"].astype("int64")
    for bad in (2 ** 32 + 5, -(2 ** 32) + 5):  # both wrap to 5
        df.loc[0, "movie_idx"] = bad
        df.to_parquet(ds / "train.parquet")
        line = one_line(invoke("train", "--set", f"data.prepared={tmp_path / 'ds'}", "--set",
                               f"run.dir={tmp_path / 'r'}"))
        assert f"train.parquet' is damaged: movie_idx {bad} outside [0, " in line, line


def test_an_output_that_is_a_dangling_link_is_named_and_nothing_is_made_beside_its_target(base, tmp_path):
    """A review: with the lock keyed by the real path, '-o dangl' (dangl -> nowhere/deep/ds) made nowhere/deep for
    its lock file; and the error named a temporary folder. One line now, nothing made."""
    (tmp_path / "dangl").symlink_to(tmp_path / "nowhere" / "deep" / "ds")
    for args in (["ingest", base[0].parent / "ratings.csv"], ["export", "--run", base[1], "--to", "npy"]):
        line = one_line(invoke(*args, "-o", tmp_path / "dangl"))
        assert line == (f"error: '{tmp_path / 'dangl'}' is a symbolic link to '{tmp_path / 'nowhere' / 'deep' / 'ds'}',"
                        " which does not exist; create that folder, remove the link, or choose another output path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangl"]


def test_an_output_file_that_is_a_dangling_link_is_refused_and_kept(base, tmp_path):
    """A red team: `export --topk-all dl.csv` and `evaluate --per-user dl.csv`, dl.csv a link to nothing, counted it as
    no file and replaced the user's link with the output, without --overwrite. One line now, the link kept."""
    link = tmp_path / "dl.csv"
    link.symlink_to(tmp_path / "nowhere.csv")
    for args in (["export", "--run", base[1], "--topk-all", link], ["evaluate", "--run", base[1], "--per-user", link]):
        for more in ([], ["--overwrite"]):
            r = invoke(*args, *more)
            assert r.exit_code == 2 and one_line(r).startswith(
                f"error: '{link}' is a symbolic link to '{tmp_path / 'nowhere.csv'}', which does not exist; remove the "
                "link, or "), r.stderr
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["dl.csv"]


def test_an_output_that_is_a_loop_of_links_is_refused_naming_it(base, tmp_path):
    """A review: a folder output that was a loop of links (loop1 -> loop2 -> loop1) was an internal error, a file
    output's loop was called a link to nothing. Both are one line, exit 2, the links kept."""
    for a, b in (("loop1", "loop2"), ("loopa.csv", "loopb.csv")):
        (tmp_path / b).symlink_to(a)
        (tmp_path / a).symlink_to(b)
    for args, name in ((["export", "--run", base[1], "--topk-all"], "loop1"), (["export", "--run", base[1], "--topk-all"],
                       "loopa.csv"), (["export", "--run", base[1], "--to", "npy", "-o"], "loop1"),
                       (["evaluate", "--run", base[1], "--per-user"], "loopa.csv")):
        r = invoke(*args, tmp_path / name)
        assert r.exit_code == 2 and one_line(r).startswith(
            f"error: '{tmp_path / name}' is a loop of symbolic links ("), (args, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop1", "loop2", "loopa.csv", "loopb.csv"]


def test_link_loop_names_the_link_that_leads_back_to_itself(tmp_path):
    """files.link_loop: the first part of a path that is a loop of links (itself, a cycle, or a folder on the way);
    none for a file, a path not there or a link to nothing. loop_error names it, where it leads and to remove it."""
    from embedrec.fsutil.files import link_loop, loop_error, missing_error

    (tmp_path / "self").symlink_to("self")
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    (tmp_path / "dir").symlink_to("dir")
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to("nowhere")
    assert link_loop(tmp_path / "self") == tmp_path / "self"
    assert link_loop(tmp_path / "a") == tmp_path / "a" and link_loop(tmp_path / "b") == tmp_path / "b"
    assert link_loop(tmp_path / "dir" / "manifest.json") == tmp_path / "dir"
    assert [link_loop(tmp_path / n) for n in ("file", "nowhere", "dangling")] == [None, None, None]
    assert loop_error(tmp_path / "file", "run artifact", "train again") is None
    assert str(loop_error(tmp_path / "a", "run artifact", "train again")) == (
        f"run artifact '{tmp_path / 'a'}' is a loop of symbolic links ('a' -> 'b' -> ..., back to itself); remove "
        f"the link (rm {tmp_path / 'a'}), then train again")
    assert str(missing_error(tmp_path / "dir" / "manifest.json", "run manifest", "train again")) == (
        f"run manifest '{tmp_path / 'dir' / 'manifest.json'}' leads through '{tmp_path / 'dir'}', which is a loop of "
        f"symbolic links ('dir' -> 'dir' -> ..., back to itself); remove the link (rm {tmp_path / 'dir'}), then train "
        "again")
    assert str(missing_error(tmp_path / "dangling", "run artifact", "train again")) == (
        f"run artifact '{tmp_path / 'dangling'}' is missing; train again")


@pytest.mark.parametrize("name", ["manifest.json", "user_factors.npy", "movies.json", "users.parquet",
                                  "seen_indptr.npy"])
@pytest.mark.parametrize("cycle", [False, True], ids=["itself", "a-cycle"])
def test_a_loop_of_links_in_place_of_a_run_file_is_said_as_one(base, tmp_path, name, cycle):
    """Session 49's review: a loop of links in place of a run file was said as "missing" (recommend's model
    files), or as 'cannot use ...: Too many levels of symbolic links; check that path' (verify, the manifest):
    each reader says the file is a loop of links, where it leads, and to remove the link before training again."""
    import embedrec as er

    run = copy_run(base[1], tmp_path / "run")
    p = current(run) / name
    p.unlink()
    if cycle:
        (p.parent / "other").symlink_to(name)
    p.symlink_to("other" if cycle else name)
    said = f"is a loop of symbolic links ('{name}' -> '{'other' if cycle else name}' -> ..., back to itself); " \
           f"remove the link (rm {p}), then {retrain(run)}"
    what = "run manifest" if name == "manifest.json" else "run artifact"
    r = invoke("recommend", "--run", run, "--user", "1", "-k", "2")
    assert r.exit_code == 1 and one_line(r) == f"error: {what} '{p}' {said}", r.stderr
    for args in (["verify", run], ["index", "rebuild", "--run", run],
                 ["export", "--run", run, "--topk-all", tmp_path / "top.csv"]):
        r = invoke(*args)
        assert r.exit_code == 1 and one_line(r).endswith(f"'{p}' {said}"), (args, r.stderr)
    with pytest.raises(ArtifactError, match="is a loop of symbolic links") as e:
        er.open(run).recommend(1, k=2)
    assert "missing" not in str(e.value)


@pytest.mark.parametrize("name", ["manifest.json", "train.parquet"])
def test_a_loop_of_links_in_place_of_a_dataset_file_is_said_as_one(base, tmp_path, name):
    """As for a run's files: train and verify said a dataset's manifest that was a loop 'no prepared dataset
    (manifest.json missing)' and 'cannot use ...'; each says the loop, naming it, and to ingest again after."""
    ds = copy_run(base[0], tmp_path / "ds")
    p = current(ds) / name
    p.unlink()
    p.symlink_to(name)
    for args in (["train", "-q", "--set", f"data.prepared={ds}", "--set", f"run.dir={tmp_path / 'r'}"],
                 ["verify", ds]):
        r = invoke(*args)
        line = one_line(r)
        assert r.exit_code == 1 and f"is a loop of symbolic links ('{name}' -> '{name}' -> ..., back to itself); " \
            "remove the link (rm " in line and "missing" not in line, (args, r.stderr)
        source = "SOURCE" if name == "manifest.json" else base[0].parent / "ratings.csv"  # (the manifest records it)
        assert line.endswith(f"), then {reingest(ds, source)}"), line


def test_verify_says_a_dataset_manifest_that_does_not_read_as_train_does(base, tmp_path):
    """A red team: verify of a dataset whose manifest is corrupt said "rerun the command that wrote it", where train
    and history give that dataset's ingest; verify gives train's line, of the dataset, its current or its
    generation, and of a flat dataset (its tables beside its manifest)."""
    ds = copy_run(base[0], tmp_path / "ds")
    p = current(ds) / "manifest.json"
    p.unlink()
    p.write_text('{"broken')
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--set", f"run.dir={tmp_path / 'r'}")
    line = one_line(r)
    assert r.exit_code == 1 and line.endswith(reingest(ds, "SOURCE")), line
    for shown in (ds, ds / "current", current(ds)):
        r = invoke("verify", shown)
        assert r.exit_code == 1 and one_line(r) == line.replace(f"'{p}'", f"'{shown / 'manifest.json'}'"
                                                                if shown != ds else f"'{p}'"), (shown, r.stderr)
    flat = tmp_path / "flat"
    shutil.copytree(current(ds), flat)
    r = invoke("verify", flat)
    assert r.exit_code == 1 and one_line(r).endswith(reingest(flat, "SOURCE")), r.stderr


INPUT_LOOPS = {  # how each input path is given, the name it takes, what it is called and what to do after rm
    "--ratings": (lambda run, p, out: ["update-users", "--run", run, "--ratings", p], "since.csv", 1,
                  "--ratings file", "give the file's own path, or - to read standard input"),
    "--users": (lambda run, p, out: ["recommend", "--run", run, "--users", p], "users.txt", 1, "--users file",
                "give the file's own path, or - to read standard input"),
    "--pairs": (lambda run, p, out: ["predict", "--run", run, "--pairs", p], "pairs.csv", 1, "--pairs file",
                "give the file's own path, or - to read standard input"),
    "-c": (lambda run, p, out: ["train", "-c", p, "--set", f"run.dir={out}"], "cfg.yaml", 2, "config file",
           "pass an existing YAML file with -c, or leave -c out to use the defaults"),
    "data.source": (lambda run, p, out: ["ingest", "-q", p, "-o", out], "ratings.csv", 1, "data.source",
                    "give the file's own path"),
    "data.movies": (lambda run, p, out: ["ingest", "-q", run.parent / "ratings.csv", "--set", f"data.movies={p}",
                                         "-o", out], "movies.csv", 1, "data.movies", "give the file's own path"),
    "cross_validation.json": (lambda run, p, out: ["cross-validate", "-q", "--set",
                                                   f"data.source={run.parent / 'ratings.csv'}", "-o", p.parent],
                              "cross_validation.json", 1, "cross-validation record",
                              "rerun with --fresh to redo its folds"),
}


@pytest.mark.parametrize("kind", sorted(INPUT_LOOPS))
@pytest.mark.parametrize("cycle", [False, True], ids=["itself", "a-cycle"])
def test_a_loop_of_links_given_as_an_input_path_is_said_as_one(base, tmp_path, kind, cycle):
    """A red team: a loop of links given as an input path was said as a file not found (--ratings, --users,
    --pairs), a config file that 'does not exist', a 'broken symbolic link (to ...)' (ingest), or, in place of
    cross-validate's record, quietly replaced by a new one: each is the loop, said as a run's files say one
    (fsutil.files.loop_error), with the exit code of that input's 'not found', and the link is left as it was."""
    args, name, code, what, fix = INPUT_LOOPS[kind]
    folder = tmp_path / "in"
    folder.mkdir()
    p, to = folder / name, "../other" if cycle else name  # (the other link outside: cross-validate's folder)
    if cycle:
        (tmp_path / "other").symlink_to(f"in/{name}")
    p.symlink_to(to)
    r = invoke(*args(base[1], p, tmp_path / "out"))
    assert r.exit_code == code and one_line(r) == (
        f"error: {what} '{p}' is a loop of symbolic links ('{name}' -> '{to}' -> ..., back to itself); remove the "
        f"link (rm {p}), then {fix}"), r.stderr
    assert os.readlink(p) == to and not (tmp_path / "out").exists() and not list(folder.glob("fold-*"))


def test_a_manifest_sealed_with_a_nan_before_nan_became_null_still_opens(tmp_path):
    """Manifests now hold null where a NaN was (a run with no validation split): one sealed before, with its bare
    NaN, still matches its seal; an edit of it still does not."""
    import hashlib

    from embedrec.errors import ArtifactError
    from embedrec.fsutil.integrity import SEAL, _canonical, check_seal, seal

    old = {"best_value": float("nan"), "checksums": {"a": "b"}}
    old[SEAL] = hashlib.sha256(_canonical(old, safe=False)).hexdigest()  # what the earlier code wrote
    loaded = json.loads(json.dumps(old))  # the bare NaN read back
    check_seal(loaded, tmp_path / "m.json", "run manifest", "fix")
    check_seal(json.loads(json.dumps(seal({"best_value": float("nan"), "checksums": {"a": "b"}}))), tmp_path, "r", "f")
    with pytest.raises(ArtifactError, match="does not match its checksum"):
        check_seal({**loaded, "best_value": 0.5}, tmp_path / "m.json", "run manifest", "fix")


# ------------------------------------------------------------------------- manifests edited by hand (a review)

EDITS = [("run", "model", None), ("run", "dataset", "del"), ("run", "global_mean", "x"), ("run", "dataset.path", 5),
         ("run", "model.objective", "bogus"), ("run", "n_users", "943"), ("run", "model.dim", 0),
         ("dataset", "rating_scale", "1-5"), ("dataset", "min_rating", "4"), ("dataset", "files", "x"),
         ("dataset", "counts", "del")]


# a dataset manifest from before the seal has no files key to edit: that one sealed only
@pytest.mark.parametrize("kind,key,value,sealed", [(*e, sealed) for sealed in (True, False) for e in EDITS
                                                   if sealed or e[:2] != ("dataset", "files")])
def test_a_manifest_edited_by_hand_is_one_line_naming_the_key(trained_run, tmp_path, kind, key, value, sealed):
    """A review: a run manifest from before the seal (taken as it is) with "model": null, or without "dataset",
    and resealed ones with global_mean "x" or dataset.path 5 (a dataset's with rating_scale "1-5", min_rating "4"
    or files "x") gave 'internal error (TypeError ...)' from recommend, evaluate, predict or train. Each is now
    refused on opening, in one line naming the manifest and the key."""
    from embedrec.fsutil.integrity import SEAL, seal

    run, ds = tmp_path / "run", tmp_path / "ds"
    shutil.copytree(trained_run.cfg.run.dir, run, symlinks=True)
    shutil.copytree(trained_run.cfg.data.prepared, ds, symlinks=True)
    target = (run if kind == "run" else ds) / "current" / "manifest.json"
    real = Path(os.path.realpath(target))
    m = json.loads(real.read_text())
    node, parts = m, key.split(".")
    for part in parts[:-1]:
        node = node[part]
    if value == "del":
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    if sealed:
        m = seal(m)
    else:  # as a manifest from before the seal: no seal, no checksums key that would need one
        m.pop(SEAL, None)
        m.pop("checksums" if kind == "run" else "files", None)
    os.chmod(real, 0o644)
    real.write_text(json.dumps(m))
    cmds = [["recommend", "--run", str(run), "--user", "1"], ["evaluate", "--run", str(run)]] if kind == "run" else \
        [["train", "--set", f"data.prepared={ds}", "--set", f"run.dir={tmp_path / 'r2'}", "--set", "train.epochs=1"]]
    for cmd in cmds:
        r = invoke(*cmd, "-q")
        assert r.exit_code == 1 and "internal error" not in r.stderr, (cmd, r.stderr)
        line = one_line(r)
        want = f"'{key}'" if value != "del" else f"no '{key}'"
        assert f"{kind} manifest '" in line and want in line, (cmd, line)


@pytest.mark.parametrize("command", ["export", "ingest"])
def test_sigterm_in_a_writer_is_taken_like_ctrl_c(base, tmp_path, monkeypatch, command):
    """A red team: SIGTERM during `export --topk-all` (or `ingest`, `index rebuild`) exited 143 without a word
    and left its temporary file (83 MB) and lock beside the output. It is taken like Ctrl-C: the temporaries
    and the lock go, one line says so, exit 143."""
    ds, run = base

    def killed(*args, **kwargs):  # SIGTERM arrives while the output is half-written
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM was not taken")

    if command == "export":
        monkeypatch.setattr("embedrec.serve.stream.write_delimited", killed)
        r = invoke("export", "-q", "--run", run, "--topk-all", tmp_path / "t.csv", "-k", "3")
    else:
        monkeypatch.setattr("embedrec.ingestion._tables", killed)
        r = invoke("ingest", "-q", write_csv(tmp_path / "r.csv"), "-o", tmp_path / "ds2")
    assert r.exit_code == 143 and one_line(r) == "terminated (SIGTERM): nothing half-written was left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == (["r.csv"] if command == "ingest" else [])
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)  # the handler is gone again
    if command == "export":  # a rank of a torchrun job: its SIGTERM most likely the launcher's, a peer having failed
        monkeypatch.setattr("embedrec.cli.app._distributed", lambda: True)
        r = invoke("export", "-q", "--run", run, "--topk-all", tmp_path / "t.csv", "-k", "3")
        assert r.exit_code == 143 and one_line(r) == (
            "terminated (SIGTERM): nothing half-written was left behind; under torchrun a rank that fails has the "
            "launcher stop the others with SIGTERM: its report names the rank that failed"), r.stderr


def test_a_resealed_manifest_cannot_hide_a_file_or_name_one_outside_its_folder(base, tmp_path):
    """A red team (manifests edited and resealed with integrity.seal): with user_factors.npy's entry taken out,
    `verify` said ok and `recommend` served a corrupted file unchecked (scores of 1e38); an entry
    '../../secret.txt' made `verify` hash a file outside the run."""
    from embedrec.fsutil.integrity import seal

    _, run0 = base
    run = tmp_path / "run"
    shutil.copytree(run0, run, symlinks=True)
    folder = run / os.readlink(run / "current")
    m = json.loads((folder / "manifest.json").read_text())
    edited = dict(m, checksums={k: v for k, v in m["checksums"].items() if k != "user_factors.npy"})
    (folder / "manifest.json").write_text(json.dumps(seal(edited)))
    r = invoke("verify", run)
    assert r.exit_code == 1 and one_line(r) == (
        f"error: run folder '{folder.resolve()}' holds 'user_factors.npy', which its manifest does not list (edited, "
        f"or a file put there by hand): move it out, or {retrain(run)}")
    r = invoke("recommend", "-q", "--run", run, "--user", "1")
    assert r.exit_code == 1 and "user_factors.npy' is not listed in its manifest's checksums" in one_line(r)
    # n_users edited and the manifest sealed again: verify says the shapes differ, as recommend refuses them (a red
    # team, session 49: verify said ok)
    (folder / "manifest.json").write_text(json.dumps(seal(dict(m, n_users=m["n_users"] - 1))))
    r = invoke("verify", run)
    d = np.load(folder / "user_factors.npy", mmap_mode="r").shape[1]
    assert r.exit_code == 1 and one_line(r) == (
        f"error: run '{folder.resolve()}': its embedding tables' shapes ({m['n_users']} x {d} users, {m['n_movies']} x "
        f"{d} movies) do not match its manifest ({m['n_users'] - 1:,} users x {m['n_movies']} movies); "
        f"{retrain(run)}"), r.stderr
    outside = dict(m, checksums={**m["checksums"], "../../secret.txt": m["checksums"]["config.yaml"]})
    (folder / "manifest.json").write_text(json.dumps(seal(outside)))
    for args in (("verify", run), ("recommend", "-q", "--run", run, "--user", "1")):
        r = invoke(*args)
        assert r.exit_code == 1 and "'checksums' is {" in one_line(r) and \
            "not a mapping of file names in the manifest's own folder" in one_line(r), r.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("where,name", [("run", "manifest.json"), ("run", "user_factors.npy"),
                                        ("run", "movies.json"), ("dataset", "manifest.json"),
                                        ("dataset", "train.parquet")])
def test_a_fifo_or_a_device_in_place_of_a_file_is_refused_at_once(base, tmp_path, kind, where, name):
    """A red team: a FIFO in place of a run's or a dataset's file hung `recommend`, `verify` and `train` for
    ever; a link to /dev/zero grew their memory by ~350 MB/s until the OOM killer came. Every read of a listed
    file now opens it without blocking and refuses what is not a regular file, in one line."""
    ds, run = base
    folder = copy_run(run if where == "run" else ds, tmp_path / where)
    target = current(folder) / name
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        os.symlink("/dev/zero", target)
    commands = [["verify", folder]]
    if where == "run":
        commands.append(["recommend", "--run", folder, "--user", "1", "-k", "2"])
    else:
        commands.append(["train", "-q", "--set", f"data.prepared={folder}", "--run", tmp_path / "r", "--set",
                         "train.epochs=1", "--set", "model.dim=4"])
    for args in commands:
        r = subprocess.run([sys.executable, "-m", "embedrec", *map(str, args)], capture_output=True, text=True,
                           timeout=120)
        line = one_line(SimpleNamespace(stderr=r.stderr))
        assert r.returncode == 1 and (f"'{target}' is not a regular file" in line or
                                      # verify's size check of a listed file names it too
                                      f"'{target}' is missing or does not match its checksum" in line), (args, line)


def test_overwrite_of_a_dataset_written_before_generations_keeps_a_users_files(base, tmp_path):
    """A red team: a dataset folder with its files directly in it (written before generations) was replaced
    whole by `ingest --overwrite`, and a user's keep.txt in it went with it, without a word; then it was refused,
    naming keep.txt, but one whose manifest lists no files (an earlier embedrec's) was still replaced whole, keep.txt
    with it. Now it takes generations in place (a review of session 50): its first generation written inside it,
    the flat files embedrec wrote (by their names) replaced by the links into current, and keep.txt kept, said in
    a warning; again, as generations, nothing is said. A conversion stopped after its publish leaves flat files
    beside current, which the next ingest replaces. A rated_below.parquet its manifest does not list (here, or where
    the manifest lists no files: embedrec wrote one only with a manifest listing it) is the user's, kept and named
    (a red team: it was removed by its name)."""
    from embedrec.data.layout import LINKS

    ds, _ = base
    csv = ds.parent / "ratings.csv"
    for listed in (True, False):
        flat = tmp_path / f"flat-{listed}"
        flat.mkdir()
        for p in current(ds).iterdir():
            shutil.copy(p, flat / p.name)
        if not listed:  # an earlier embedrec's manifest, which lists no files
            m = json.loads((flat / "manifest.json").read_text())
            del m["files"]
            (flat / "manifest.json").write_text(json.dumps(m))
        assert not (flat / "rated_below.parquet").exists()  # a name of the flat layout's, not listed: the user's
        (flat / "rated_below.parquet").write_text("my precious")
        (flat / "keep.txt").write_text("mine")
        r = invoke("ingest", "-q", csv, "-o", flat, "--overwrite")
        assert r.exit_code == 0, r.stderr
        gen = os.readlink(flat / "current")
        assert r.stderr == (f"'{flat}' held a dataset of the older flat layout, now in generations (current -> "
                            f"{gen}): the files embedrec wrote there are replaced, and those it did not write are "
                            "kept (keep.txt, rated_below.parquet)\n"), r.stderr
        assert (flat / "rated_below.parquet").read_text() == "my precious"
        (flat / "rated_below.parquet").unlink()
        assert sorted(os.listdir(flat)) == sorted(["current", gen, "keep.txt", *LINKS])
        assert all(os.readlink(flat / n) == f"current/{n}" for n in LINKS)
        assert (flat / "keep.txt").read_text() == "mine" and invoke("verify", flat).exit_code == 0
        r = invoke("ingest", "-q", csv, "-o", flat, "--overwrite")  # and again, as generations
        assert r.exit_code == 0 and r.stderr == "" and (flat / "keep.txt").read_text() == "mine", r.stderr
    (flat / "train.parquet").unlink()  # stopped after the publish: a flat file beside current still
    shutil.copy(current(flat) / "train.parquet", flat / "train.parquet")
    assert invoke("ingest", "-q", csv, "-o", flat, "--overwrite").exit_code == 0
    assert os.readlink(flat / "train.parquet") == "current/train.parquet" and (flat / "keep.txt").is_file()


def test_overwrite_of_a_flat_dataset_removes_the_optional_tables_its_manifest_lists(base, tmp_path, monkeypatch):
    """The other side of a user's rated_below.parquet kept: one the flat manifest lists is embedrec's, removed once
    the folder is in generations, without a word (nothing of the user's is there). Its manifest is swapped for its
    link last, so a conversion stopped on the way leaves that list for the next ingest, which ends it alike."""
    from embedrec.data.layout import LINKS
    from embedrec.fsutil import generations

    csv = base[0].parent / "ratings.csv"
    ds = tmp_path / "ds"
    assert invoke("ingest", "-q", csv, "-o", ds, "--set", "data.min_rating=3").exit_code == 0
    assert "rated_below.parquet" in json.loads((ds / "manifest.json").read_text())["files"]
    real = generations.swap_link
    for stopped in (False, True):
        flat = tmp_path / f"flat-{stopped}"
        flat.mkdir()
        for p in current(ds).iterdir():
            shutil.copy(p, flat / p.name)
        again = ["--set", "data.min_rating=3"]
        if stopped:  # Ctrl-C after current and the first link: the manifest and the rest still flat files
            calls: list[str] = []

            def swap_twice(root, name, link="current", calls=calls):
                real(root, name, link)
                calls.append(link)
                if len(calls) == 2:
                    raise KeyboardInterrupt

            monkeypatch.setattr(generations, "swap_link", swap_twice)
            r = invoke("ingest", "-q", csv, "-o", flat, "--overwrite", "--set", "data.min_rating=3")
            monkeypatch.setattr(generations, "swap_link", real)
            assert calls == ["current", "users.parquet"], (calls, r.stderr)
            assert not os.path.islink(flat / "manifest.json") and (flat / "rated_below.parquet").is_file()
            again = []  # the next generation has no rated_below: the flat manifest's list still says it is ours
        r = invoke("ingest", "-q", csv, "-o", flat, "--overwrite", *again)
        assert r.exit_code == 0 and r.stderr == "", r.stderr
        assert sorted(os.listdir(flat)) == sorted(["current", os.readlink(flat / "current"), *LINKS])
        assert invoke("verify", flat).exit_code == 0


def test_overwrite_of_a_folder_of_links_to_a_datasets_files_keeps_the_users_files(base, tmp_path):
    """A red team: a folder whose dataset files are links to another folder's (ln -s a file at a time), beside a
    user's notes.txt and thesis/, was replaced whole by `ingest --overwrite` (its manifest a link, so not taken for
    the flat layout, and a dataset by its manifest, so its own to replace), the user's files with it, exit 0 and no
    word. It is given generations in place as a flat dataset is: its links replaced by links into current, the
    user's files kept and named, the files the links led to untouched."""
    from embedrec.data.layout import LINKS

    ds, _ = base
    csv = ds.parent / "ratings.csv"
    shared, flatl = tmp_path / "shared", tmp_path / "flatl"
    shared.mkdir()
    flatl.mkdir()
    for p in current(ds).iterdir():
        shutil.copy(p, shared / p.name)
        os.symlink(f"../shared/{p.name}", flatl / p.name)
    (flatl / "notes.txt").write_text("mine")
    (flatl / "thesis").mkdir()
    (flatl / "thesis" / "ch1.tex").write_text("ch1")
    before = {p.name: p.read_bytes() for p in shared.iterdir()}
    r = invoke("ingest", "-q", csv, "-o", flatl, "--overwrite", "--set", "split.seed=3")
    assert r.exit_code == 0, r.stderr
    gen = os.readlink(flatl / "current")
    assert r.stderr == (f"'{flatl}' held a dataset of the older flat layout, now in generations (current -> {gen}): "
                        "the files embedrec wrote there are replaced, and those it did not write are kept (notes.txt, "
                        "thesis)\n"), r.stderr
    assert sorted(os.listdir(flatl)) == sorted(["current", gen, "notes.txt", "thesis", *LINKS])
    assert all(os.readlink(flatl / n) == f"current/{n}" for n in LINKS)
    assert (flatl / "notes.txt").read_text() == "mine" and (flatl / "thesis" / "ch1.tex").read_text() == "ch1"
    assert {p.name: p.read_bytes() for p in shared.iterdir()} == before
    assert json.loads((flatl / "manifest.json").read_text())["config"]["split"]["seed"] == 3
    assert invoke("verify", flatl).exit_code == 0 and invoke("verify", shared).exit_code == 0


def test_ingest_overwrite_through_a_link_into_another_dataset_is_refused(base, tmp_path):
    """A red team: `ingest -o LINK --overwrite`, LINK -> DATASET/gen-X (or a link to DATASET/current, as `cp -rs
    DATASET/current stage` makes), took the generation for a flat dataset and gave it generations in place, its
    files swapped for links: DATASET then served the new data and `verify` failed on it. Refused, as `export -o
    LINK` and `ingest -o DATASET/gen-X` are, naming the link and where it leads; so is an empty folder inside a
    dataset (filled in place as a mount point is), before the source is read. DATASET is left as it was."""
    csv = base[0].parent / "ratings.csv"
    ds = tmp_path / "dA"
    assert invoke("ingest", "-q", csv, "-o", ds).exit_code == 0
    gen = current(ds)
    before = sorted(os.listdir(gen)), (gen / "manifest.json").read_bytes()
    home = Path(os.path.realpath(ds))
    (tmp_path / "lA").symlink_to(gen)
    (tmp_path / "stage").symlink_to(ds / "current")
    for link in (tmp_path / "lA", tmp_path / "stage"):
        r = invoke("ingest", "-q", csv, "-o", link, "--overwrite", "--set", "split.seed=5")
        assert r.exit_code == 2 and one_line(r) == (
            f"error: '{link}' (a link to '{gen}') is inside '{home}', a prepared dataset (embedrec ingest wrote it): a "
            "file written there would replace or sit among the files embedrec keeps in it; write it outside that "
            "folder"), r.stderr
    (gen / "e").mkdir()
    (ds / "sub").mkdir()
    for empty, where in ((gen / "e", gen), (ds / "sub", home)):
        r = invoke("ingest", "-q", csv, "-o", empty, "--overwrite")
        assert r.exit_code == 2 and one_line(r).startswith(f"error: '{empty}' is inside '{where}', a prepared "
                                                           "dataset"), r.stderr
        assert not any(empty.iterdir())
        empty.rmdir()
    assert (sorted(os.listdir(gen)), (gen / "manifest.json").read_bytes()) == before and current(ds) == gen
    assert invoke("verify", ds).exit_code == 0


def test_overwrite_through_a_link_to_a_folder_replaces_the_folder_and_keeps_the_link(base, tmp_path):
    """A red team: `export -o latest --overwrite` with latest -> exports/v3 swapped the link itself for a new
    folder (v3 kept the old export) and left a temporary link `.latest.embedrec-tmp-<pid>-*` for ever."""
    _, run = base
    v3 = tmp_path / "exports" / "v3"
    assert invoke("export", "-q", "--run", run, "--to", "npy", "-o", v3).exit_code == 0
    before = (v3 / "user_factors.npy").stat().st_mtime_ns
    latest = tmp_path / "latest"
    latest.symlink_to(v3)
    stale = tmp_path / ".latest.embedrec-tmp-999999999-abcd1234"  # a link a killed writer left, long gone
    stale.symlink_to(v3)
    time.sleep(0.01)
    r = invoke("export", "-q", "--run", run, "--to", "npy", "-o", latest, "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert latest.is_symlink() and os.readlink(latest) == str(v3)
    assert (v3 / "user_factors.npy").stat().st_mtime_ns != before  # the folder the link names was replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "latest"]
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["v3"]
    # a single output file through a link: the file it names is replaced, the link kept
    top = tmp_path / "exports" / "top.csv"
    assert invoke("export", "-q", "--run", run, "--topk-all", top, "-k", "1").exit_code == 0
    one = len(top.read_text().splitlines()) - 1  # a row per user
    link = tmp_path / "top-latest.csv"
    link.symlink_to(top)
    r = invoke("export", "-q", "--run", run, "--topk-all", link, "-k", "2", "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert link.is_symlink() and len(top.read_text().splitlines()) - 1 == 2 * one  # two per user now


def test_parquet_is_written_under_a_folder_whose_name_is_not_utf8(base, tmp_path):
    """A red team: every Parquet write under a non-UTF-8 path (ingest -o, train's publish after a whole fit,
    export --to parquet, --topk-all x.parquet) was 'internal error (UnicodeEncodeError ...)': pyarrow opens only
    UTF-8 paths. They are written through Python's own file now."""
    odd = tmp_path / os.fsdecode(b"nu\xff\xfe")
    try:
        odd.mkdir()
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses a name that is not UTF-8")
    r = invoke("ingest", "-q", base[0].parent / "ratings.csv", "-o", odd / "ds")
    assert r.exit_code == 0, r.stderr
    r = invoke("train", "-q", "--set", f"data.prepared={odd / 'ds'}", "--set", f"run.dir={odd / 'run'}",
               "--set", "model.dim=4", "--set", "train.epochs=2")
    assert r.exit_code == 0, r.stderr
    for args in (["export", "--to", "parquet", "-o", odd / "pq"], ["export", "--topk-all", odd / "top.parquet"]):
        r = invoke(*args, "-q", "--run", odd / "run")
        assert r.exit_code == 0, (args, r.stderr)
    with open(odd / "top.parquet", "rb") as fh:
        assert pd.read_parquet(fh).shape[0] > 0 and (odd / "pq" / "movies.parquet").stat().st_size
    r = invoke("recommend", "--run", odd / "run", "--user", "1", "-k", "2", "--format", "csv")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3, r.stderr
    assert invoke("verify", odd / "run").exit_code == 0 and invoke("verify", odd / "ds").exit_code == 0


def test_numpys_short_write_under_a_file_size_limit_is_said_to_be_that_limit(monkeypatch, tmp_path):
    """A red team: under `ulimit -f`, `export --to npy` said 'no space left on device' (numpy's short write carries
    no errno) where train and ingest named the file-size limit."""
    import resource

    from embedrec.fsutil import files

    short = OSError("129 requested and 0 written")
    out = tmp_path / "not-yet" / "out"  # the target does not exist yet: a temporary beside it was being written
    monkeypatch.setattr(resource, "getrlimit", lambda which: (300 * 1024, resource.RLIM_INFINITY))
    assert str(files.io_error(short, out)) == (f"file too large (a file-size limit, ulimit -f) writing '{out}'; "
                                               "raise the limit (ulimit -f unlimited) and run the command again; "
                                               "another folder has the same limit")  # (a red team: not another folder)
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_bavail=10, f_frsize=4096))  # a full disk
    assert str(files.io_error(short, out)).startswith(f"no space left on device writing '{out}'")
    monkeypatch.undo()
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert str(files.io_error(short, out)).startswith(f"no space left on device writing '{out}'")


def test_rows_cut_by_a_failed_stdout_write_are_taken_back_to_whole_rows(tmp_path):
    """output.whole_rows, once a write to stdout (a regular file) failed part-way: the file cut back to the end of
    its last whole line after where the rows began (a file appended to keeps what was there), or for write_rows'
    JSON array to its last whole row, the array closed in the bytes freed; a file ending on a whole row is left."""
    from embedrec.output import whole_rows

    def cut(text: bytes, start: int = 0) -> tuple[bool, bytes]:
        p = tmp_path / "out"
        p.write_bytes(text)
        fd = os.open(p, os.O_WRONLY)
        try:
            return whole_rows(fd, start), p.read_bytes()
        finally:
            os.close(fd)

    assert cut(b"a\tb\n1\t2\n3\t4 cut") == (True, b"a\tb\n1\t2\n")
    assert cut(b"a\tb\n1\t2\n") == (False, b"a\tb\n1\t2\n")
    assert cut(b"mine, no newline" + b"a\tb\n1\t", start=16) == (True, b"mine, no newline" + b"a\tb\n")
    assert cut(b"mine" + b"a\tb", start=4) == (True, b"mine")
    rows = b'[\n  {\n    "a": 1,\n    "b": {\n      "c": 2\n    }\n  },\n  {\n    "a": 3,\n    "b": {\n      "c"'
    ok, got = cut(rows)
    assert ok and json.loads(got) == [{"a": 1, "b": {"c": 2}}], got
    ok, got = cut(b'[\n  {\n    "a": 1,\n    "b": {\n      "c": 2\n    }')
    assert ok and json.loads(got) == [], got
    # CSV: a quoted cell's line break ends no row (a review: part of the row was left); TSV quotes nothing
    csv_rows = b'user_id,title\n1,"Up, ""the""\nsequel"\n2,"Cut\nhere'
    assert cut(csv_rows) == (True, b'user_id,title\n1,"Up, ""the""\nsequel"\n')
    assert cut(b'user_id,title\n2,"Cut\nhere') == (True, b"user_id,title\n")
    assert cut(b'1,"a\nb"\n2,"c\n', start=0) == (True, b'1,"a\nb"\n')
    assert cut(b'user_id\ttitle\n1\t12" single\n2\tcut') == (True, b'user_id\ttitle\n1\t12" single\n')
    big = b"user_id,title\n" + b'1,"x\ny"\n' * 200_000 + b'2,"half\n'  # read in more than one block
    assert cut(big) == (True, big[:-len(b'2,"half\n')])


def test_recommend_under_a_file_size_limit_leaves_whole_rows_and_names_the_limit(base, tmp_path):
    """A red team: `recommend --users all.txt > out.tsv` under `ulimit -f 10` exited 1 with one line, but out.tsv
    ended in a cut row ('19\t2\t300\tAir Forc'), and the line (every write error under the limit's too) said to
    choose another folder, which has the same limit. The file holds whole rows, the line says so and to raise the
    limit; the other formats alike (a JSON array closed over its whole rows)."""
    import resource

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (700, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    users = "".join(f"{u}\n" for u in range(1, 31))
    for fmt in ("tsv", "csv", "jsonl", "json"):
        out = tmp_path / f"out.{fmt}"
        with open(out, "w") as fh:
            p = subprocess.run([sys.executable, "-m", "embedrec", "recommend", "--users", "-", "--run", str(base[1]),
                                "--format", fmt], input=users, stdout=fh, stderr=subprocess.PIPE, text=True,
                               timeout=120, preexec_fn=limited)
        assert p.returncode == 1 and p.stderr == (
            "error: cannot write the output: a file-size limit (ulimit -f); its last row, cut short, was removed: "
            "the rows before it are whole; raise the limit (ulimit -f unlimited) and run the command again; another "
            "folder has the same limit\n"), (fmt, p.stderr)
        text = out.read_text()
        assert 0 < len(text) <= 700 and text.endswith("\n"), (fmt, text)
        if fmt == "json":
            assert len(json.loads(text)) > 1
        elif fmt == "jsonl":
            assert all(json.loads(line) for line in text.splitlines())
        else:
            sep = "\t" if fmt == "tsv" else ","
            assert len({line.count(sep) for line in text.splitlines()}) == 1, text


@pytest.mark.parametrize("unbuffered", [True, False])
def test_a_report_cut_by_a_file_size_limit_is_removed_and_said(base, tmp_path, unbuffered):
    """A red team: `evaluate --format json > ev.json` under `ulimit -f 4` exited 0, nothing said, with 4096 of its
    6126 bytes (no JSON). With PYTHONUNBUFFERED=1 (as here, and python -u) Python's text layer wrote straight to
    the raw file and dropped a short write's count, so the rest was lost in silence; a buffered stdout raised,
    but the cut was left at the last line break, half a report. Each command's one-object report (evaluate's and
    train's JSON, index rebuild's, ingest's, config's YAML) is removed whole, one line says so, exit 1; where
    the command had published, the line says that too. Stdout is appended to a file just short of the limit, so
    the command's own files fit under it."""
    import resource

    limit = 256 * 1024

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    run = copy_run(base[1], tmp_path / "run")
    ds = tmp_path / "ds"
    fix = ("raise the limit (ulimit -f unlimited) and run the command again; another folder has the same limit")
    said = f"error: cannot write the output: a file-size limit (ulimit -f); the report, cut short, was removed; {fix}\n"
    published = ("error: '{}' was written in full; only the report on standard output failed (File too large); "
                 "the report, cut short, was removed: no need to run it again\n")
    for args, want in ((["evaluate", "--run", run, "--format", "json"], said),
                       (["config"], said),
                       (["index", "rebuild", "--run", run], published.format(run)),
                       (["ingest", base[0].parent / "ratings.csv", "-o", ds, "--format", "json"], published.format(ds))):
        out = tmp_path / "out"
        before = b"x" * (limit - 40) + b"\n"  # what was there: kept, and nothing after it
        out.write_bytes(before)
        with open(out, "a") as fh:
            p = subprocess.run([sys.executable, "-m", "embedrec", "-q", *map(str, args)], stdout=fh,
                               stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=limited, env=env)
        assert (p.returncode, p.stderr) == (1, want), (args, p.stderr)
        assert out.read_bytes() == before, args
    # a report cut from its first byte: the file left empty (the red team's `ulimit -f 4`, here 50 bytes)
    for args in (["evaluate", "--run", run, "--format", "json"], ["config"]):
        out = tmp_path / "out.json"
        with open(out, "w") as fh:
            p = subprocess.run([sys.executable, "-m", "embedrec", "-q", *map(str, args)], stdout=fh,
                               stderr=subprocess.PIPE, text=True, timeout=120, env=env, preexec_fn=lambda: (
                                   signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
                                   resource.setrlimit(resource.RLIMIT_FSIZE, (50, resource.RLIM_INFINITY))))
        assert (p.returncode, p.stderr, out.read_bytes()) == (1, said, b""), (args, p.stderr)


def test_the_repair_advice_names_the_run_and_the_datasets_source_from_here(tmp_path, monkeypatch):
    """A review of run_fix/dataset_fix: RUN/current named the model folder as the run, a run named artifacts-v2
    was taken for a model folder, a path with '|' broke the message's «CLI|library» mark, and a relative source
    was shown as the ingest that wrote it had it (from another folder)."""
    from embedrec.data.dataset import dataset_fix
    from embedrec.errors import cli_terms, library_terms
    from embedrec.run_fixes import run_fix

    monkeypatch.chdir(tmp_path)
    model = tmp_path / "runs" / "b" / "artifacts-20261202T184937-206712811"
    model.mkdir(parents=True)
    (tmp_path / "runs" / "b" / "current").symlink_to(model.name)
    want = "rerun 'embedrec train --run runs/b' with the -c/--set it was trained with"
    for given in ("runs/b", "runs/b/current", model):
        assert cli_terms(run_fix(given)) == want, given
    assert library_terms(run_fix("runs/b")) == "train again and save (er.train(ds, cfg).save(run_dir))"
    assert cli_terms(run_fix("runs/artifacts-v2")) == ("rerun 'embedrec train --run runs/artifacts-v2' with the "
                                                       "-c/--set it was trained with")
    odd = run_fix("runs/p|q")
    assert cli_terms(odd) == library_terms(odd) == ("rerun embedrec train --run 'runs/p|q' with the -c/--set it was "
                                                    "trained with")
    (tmp_path / "r.csv").write_text("")
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    manifest = {"source": "./r.csv", "source_path": str(tmp_path / "r.csv")}
    assert cli_terms(dataset_fix("../data/my ds", manifest)) == (
        f"rerun embedrec ingest {tmp_path / 'r.csv'} -o '../data/my ds' --overwrite with the --set it was ingested "
        "with")
    assert "embedrec ingest ml-100k -o" in cli_terms(dataset_fix("d", {"source": "ml-100k"}))
    assert "embedrec ingest SOURCE -o" in cli_terms(dataset_fix("d", {"source": "./r.csv"}))  # not from here


def test_a_run_opened_through_its_current_link(base):
    """A second review: `recommend --run runs/x/current` (and er.open) said 'no trained model' on a healthy run."""
    r = invoke("recommend", "--run", base[1] / "current", "--user", "1", "-k", "2", "--format", "csv")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3, r.stderr


def test_verify_names_the_model_folder_from_here(base, tmp_path, monkeypatch):
    """A review: `verify runs/x` named the model folder by its absolute path, `verify runs/x/current` relative."""
    monkeypatch.chdir(tmp_path)
    copy_run(base[1], tmp_path / "runs" / "x")
    r = invoke("verify", "runs/x")
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: run 'runs/x/{os.readlink('runs/x/current')}': "), r.stdout


def test_a_signal_after_a_command_finished_is_ignored_as_it_leaves():
    """A red team: a SIGTERM (or Ctrl-C) once `train` had published and printed its report made it exit 143 (130)
    with nothing said: the interpreter's teardown ran with the default handlers back. A finished command ignores
    both and leaves at once, exit 0, its output whole (the signal sent here from an exit handler, as late as it
    can come)."""
    code = ("import atexit, os, signal, sys\n"
            "import embedrec.cli as c\n"
            "def fake():\n"
            "    print('rows')\n"
            "    atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))\n"
            "    atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
            "    sys.exit(0)\n"
            "c.main = fake\n"
            "c.run()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "rows\n", "")


def test_an_interrupted_first_trains_folder_takes_a_fresh_train(tmp_path):
    """A review: with the run's '.lock' removed on release (tried, and taken back), a first train stopped before
    it published left checkpoint.pt, metrics.jsonl and tensorboard/ alone, and a fresh train there was refused
    as 'a folder of the user's own'. The writer lock stays in a run: it is what says embedrec made the folder."""
    from embedrec.run_checks import check_run_folder
    from embedrec.run_publish import run_lock

    run = tmp_path / "run"
    with run_lock(run):
        (run / "checkpoint.pt").write_bytes(b"")
        (run / "metrics.jsonl").write_text("{}\n")
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoint.pt", "metrics.jsonl"]
    check_run_folder(run)  # an embedrec run: train may write there


@pytest.mark.parametrize("published", [True, False])
def test_a_signal_after_ingest_published_is_no_failure(base, tmp_path, monkeypatch, published):
    """A red team: a SIGTERM as `ingest --overwrite` returned, its new generation already current, exited 143
    with 'nothing half-written was left behind', and a scheduler's rerun would be refused ('already exists').
    After the publication it is a warning and exit 0; before it, still the interruption (exit 143)."""
    from embedrec import ingestion
    from embedrec.errors import Terminated

    csv = base[0].parent / "ratings.csv"
    out = tmp_path / "ds"
    assert invoke("ingest", "-q", csv, "-o", out).exit_code == 0
    first = os.readlink(out / "current")
    real = ingestion.ingest

    def stopped(*args, **kw):
        if published:
            real(*args, **kw)
        raise Terminated()

    monkeypatch.setattr(ingestion, "ingest", stopped)
    r = invoke("ingest", "-q", csv, "-o", out, "--overwrite", "--format", "json")
    if published:
        assert (r.exit_code, r.stdout) == (0, "") and os.readlink(out / "current") != first
        assert one_line(r) == f"SIGTERM came after the dataset was published: {out} holds the new one"
    else:
        assert r.exit_code == 143 and os.readlink(out / "current") == first
        assert "terminated (SIGTERM): nothing half-written was left behind" in one_line(r)


def test_a_deleted_lock_means_nothing_is_published(tmp_path):
    """A red team: deleting RUN/.lock while `train` ran let a second writer in, and both published. Before it
    publishes, a writer checks that its lock file is still the one at that name; where it is not (gone, or another
    writer's), the other writer may have written the target meanwhile, finished even (a review: taking the lock
    again then published over a finished second writer): nothing is published, the other writer named."""
    from embedrec.fsutil.generations import publish_generation
    from embedrec.fsutil.locks import locked_folder

    run = tmp_path / "run"

    def write(folder):
        (folder / "manifest.json").write_text("{}")

    with locked_folder(run, "embedrec train", "use another run.dir", "choose another run.dir"):
        first = publish_generation(run, "artifacts", write, keep=2)
    with locked_folder(run, "embedrec train", "use another run.dir", "choose another run.dir"):
        (run / ".lock").unlink()  # the user's rm, no other writer
        with pytest.raises(ArtifactError) as e:
            publish_generation(run, "artifacts", write, keep=2)
        assert e.value.cli_message() == (
            f"the writer lock '{run / '.lock'}' was removed while this command ran, so another writer may have "
            "written the same output meanwhile: nothing was published; run this command again (a train with "
            "--resume continues from its checkpoints), and leave lock files in place")
        # made again and held until this writer leaves: the folder stays a run's, no rerun starts meanwhile
        assert (run / ".lock").read_text() == f"{os.getpid()} embedrec train\n"
        with pytest.raises(BlockingIOError):
            _hold_lock(run / ".lock", "4242 embedrec train\n")
    with locked_folder(run, "embedrec train", "use another run.dir", "choose another run.dir"):
        (run / ".lock").unlink()
        os.close(_hold_lock(run / ".lock", "4242 embedrec index rebuild\n"))  # a second writer came and went
        with pytest.raises(ArtifactError) as e:
            publish_generation(run, "artifacts", write, keep=2)
        assert "ran (another embedrec index rebuild, pid 4242, has written it since), so another writer" in \
            e.value.cli_message()
    with locked_folder(run, "embedrec train", "use another run.dir", "choose another run.dir"):
        (run / ".lock").unlink()
        (run / ".lock").write_bytes(b"2024 notes\nsecond line\n")  # not a writer's line: no one named (a review)
        with pytest.raises(ArtifactError) as e:
            publish_generation(run, "artifacts", write, keep=2)
        assert "this command ran, so another writer" in e.value.cli_message() and "\n" not in e.value.cli_message()
    assert os.readlink(run / "current") == first.name  # nothing swapped, no temporary left
    assert sorted(p.name for p in run.iterdir()) == [".lock", first.name, "current"]
    # a red team (session 67): the second writer removed the candidate folder the first was writing, which then
    # failed on a missing file ('cannot use RUN/als-reg-0.02/metrics.jsonl'): said as the lock's loss instead
    (run / ".lock").unlink()  # (the notes above)
    with pytest.raises(ArtifactError) as e:
        with locked_folder(run, "embedrec train", "use another run.dir", "choose another run.dir"):
            (run / ".lock").unlink()
            os.close(_hold_lock(run / ".lock", "4242 embedrec train\n"))
            (run / "gone" / "metrics.jsonl").open("a")  # its folder removed by the other writer
    assert "was removed while this command ran (another embedrec train, pid 4242, has written it since)" in \
        e.value.cli_message(), e.value.cli_message()
    with pytest.raises(ValueError):  # any other failure, the lock still held: as it was
        with locked_folder(run, "embedrec train", "use another run.dir", "choose another run.dir"):
            raise ValueError("x")


def test_a_writer_whose_side_lock_was_replaced_leaves_the_new_one(tmp_path):
    """The lock beside an output is removed by its writer when done, but only while it is still that writer's:
    one a second writer made after a user deleted the first's stays with its holder, and the first publishes
    nothing, whether the second is still writing or done."""
    from embedrec.fsutil.outputs import atomic_dir

    out = tmp_path / "out"
    lock = tmp_path / ".embedrec.out.lock"
    with pytest.raises(ArtifactError, match="was removed while this command ran .another embedrec export, pid 4242"):
        with atomic_dir(out, command="embedrec export") as tmp:
            (tmp / "a.txt").write_text("a")
            lock.unlink()
            fd = _hold_lock(lock, "4242 embedrec export\n")
    try:
        assert lock.read_text() == "4242 embedrec export\n" and not out.exists()
        assert [p.name for p in tmp_path.iterdir()] == [lock.name]
    finally:
        os.close(fd)
    lock.unlink()
    with pytest.raises(ArtifactError, match="nothing was published"):  # the second writer done: its lock gone too
        with atomic_dir(out, command="embedrec export") as tmp:
            (tmp / "a.txt").write_text("a")
            lock.unlink()
    assert not out.exists() and not lock.exists() and list(tmp_path.iterdir()) == []


def test_files_written_into_a_folder_while_overwrite_replaces_it_are_never_deleted(tmp_path, monkeypatch, caplog):
    """A red team: `export -o OUT --overwrite` checked OUT for files embedrec did not write once, under its lock,
    then deleted the old folder after the swap: a user's file, or another command's output (an `export
    --topk-all OUT/top.csv` that exited 0), written into OUT meanwhile was deleted. What appears before the swap
    stops it (Busy, exit 75, nothing replaced); what appears in the instant after the check keeps the old folder
    under a name no later sweep removes, said."""
    from embedrec.errors import Busy
    from embedrec.fsutil import outputs
    from embedrec.fsutil.outputs import atomic_dir

    out = tmp_path / "out"
    with atomic_dir(out, command="embedrec export") as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(Busy, match=r"'notes.txt' appeared in it while this command wrote its replacement .* "
                                   r"nothing was replaced") as e:
        with atomic_dir(out, overwrite=True, ours=lambda p: True, command="embedrec export") as tmp:
            (tmp / "a.txt").write_text("new")
            (out / "notes.txt").write_text("mine")
    assert e.value.exit_code == 75
    assert (out / "notes.txt").read_text() == "mine" and (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left
    (out / "notes.txt").unlink()
    monkeypatch.setattr(outputs, "_refuse_arrivals", lambda target, before: None)  # the instant after the check
    with atomic_dir(out, overwrite=True, ours=lambda p: True, command="embedrec export") as tmp:
        (tmp / "a.txt").write_text("new")
        (out / "notes.txt").write_text("mine")
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.replaced-")]
    assert (out / "a.txt").read_text() == "new" and len(kept) == 1
    assert (kept[0] / "notes.txt").read_text() == "mine" and (kept[0] / "a.txt").read_text() == "old"
    assert f"kept the folder '{out}' replaced, as '{kept[0]}': 'notes.txt' appeared in it" in caplog.text
    with atomic_dir(out, overwrite=True, ours=lambda p: True, command="embedrec export") as tmp:  # a later writer leaves it be
        (tmp / "a.txt").write_text("newer")
    assert kept[0].exists() and (out / "a.txt").read_text() == "newer"


def test_a_lock_file_that_is_a_link_is_refused_never_written_through(base, tmp_path):
    """A red team: RUN/.lock linked to a user's file had the holder's pid line written over that file (train, index
    rebuild, tune-dims), and `.embedrec.NAME.lock` beside an output too, then the link removed. A lock is opened
    without following a link and must be a plain file of one name."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious user data\n")
    run = copy_run(base[1], tmp_path / "lk")
    (run / ".lock").unlink()
    (run / ".lock").symlink_to(victim)
    r = invoke("index", "rebuild", "-q", "--run", run)
    assert r.exit_code == 1 and one_line(r) == (
        f"error: the writer lock '{run / '.lock'}' is a symbolic link, which embedrec does not write through; remove "
        "the link (embedrec makes the file itself)")
    (run / ".lock").unlink()
    os.link(victim, run / ".lock")  # a hard link: the same file under two names
    r = invoke("index", "rebuild", "-q", "--run", run)
    assert r.exit_code == 1 and "has another name too (a hard link)" in one_line(r)
    (run / ".lock").unlink()
    assert invoke("index", "rebuild", "-q", "--run", run).exit_code == 0  # embedrec's own file again
    (tmp_path / "empty").write_text("")
    (run / ".lock").unlink()
    os.link(tmp_path / "empty", run / ".lock")  # an empty file of the user's: not written either (a review)
    assert "has another name too (a hard link)" in one_line(invoke("index", "rebuild", "-q", "--run", run))
    assert (tmp_path / "empty").read_text() == ""
    (run / ".lock").unlink()
    (run / ".lock").mkdir()  # a folder there: named as a FIFO is, not 'Is a directory; check that path' (a red team)
    assert one_line(invoke("index", "rebuild", "-q", "--run", run)) == (
        f"error: the writer lock '{run / '.lock'}' is a folder, which embedrec does not write into; remove it "
        "(embedrec makes the file itself)")
    (run / ".lock").rmdir()
    assert invoke("index", "rebuild", "-q", "--run", run).exit_code == 0
    os.link(run / ".lock", tmp_path / "backup.lock")  # a hard-link copy (cp -al): only a lock line in it
    line = (run / ".lock").read_text()
    fd = _hold_lock(tmp_path / "backup.lock", line)  # held through the copy's name: said so, not "RUN is written"
    try:
        assert one_line(invoke("index", "rebuild", "-q", "--run", run)).endswith(
            "(its lock file has other names too, a hard-link copy such as cp -al makes: the writer may be one of the "
            "copy's); wait for it to finish, or use another run.dir")
    finally:
        os.close(fd)
    assert invoke("index", "rebuild", "-q", "--run", run).exit_code == 0  # free: this name gets a file of its own
    assert (run / ".lock").stat().st_nlink == 1 and (tmp_path / "backup.lock").read_text() == line
    side = tmp_path / "out"
    side.mkdir()
    (side / ".embedrec.d.lock").symlink_to(victim)
    r = invoke("ingest", "-q", base[0].parent / "ratings.csv", "-o", side / "d")
    assert r.exit_code == 1 and "is a symbolic link" in one_line(r)
    assert victim.read_text() == "precious user data\n" and (side / ".embedrec.d.lock").is_symlink()
    assert not (side / "d").exists()


def test_a_lock_file_of_text_embedrec_did_not_write_is_refused_never_written_over(base, tmp_path):
    """A review: a run's .lock holding a user's own text (a file of theirs named .lock, or garbage) was silently
    written over by the next writer. Only an empty file or a holder's line is taken for embedrec's lock."""
    run = copy_run(base[1], tmp_path / "own")
    for text, shown in ((b"my own notes, keep me\nline two\n", "my own notes, keep me"),
                        (b"\x00\xff\x13garbage", "\\x00\ufffd\\x13garbage")):
        (run / ".lock").write_bytes(text)
        r = invoke("index", "rebuild", "-q", "--run", run)
        assert r.exit_code == 1 and one_line(r) == (
            f"error: the writer lock '{run / '.lock'}' holds text embedrec did not write ('{shown}'), which embedrec "
            "does not write over; move that file elsewhere (embedrec makes its lock file itself)"), r.stderr
        assert (run / ".lock").read_bytes() == text
    (run / ".lock").write_text("")  # empty (made, then killed before its line): taken
    assert invoke("index", "rebuild", "-q", "--run", run).exit_code == 0
    assert (run / ".lock").read_text().endswith(" embedrec index rebuild\n")
    side = tmp_path / "out"
    side.mkdir()
    (side / ".embedrec.d.lock").write_text("mine\n")  # the lock beside an output, likewise
    r = invoke("ingest", "-q", base[0].parent / "ratings.csv", "-o", side / "d")
    assert r.exit_code == 1 and "holds text embedrec did not write ('mine')" in one_line(r), r.stderr
    assert (side / ".embedrec.d.lock").read_text() == "mine\n" and not (side / "d").exists()


def test_a_folder_in_place_of_a_listed_file_is_named(base, tmp_path):
    """A red team: a folder where a run's movies.json (or a dataset's movies.parquet) goes gave "cannot use '4': Is
    a directory" (a file descriptor's number), naming no file."""
    run = copy_run(base[1], tmp_path / "cx")
    art = run / os.readlink(run / "current")
    (art / "movies.json").unlink()
    (art / "movies.json").mkdir()
    r = invoke("recommend", "--run", run, "--user", "1")
    assert r.exit_code == 1 and f"'{art / 'movies.json'}' is not a regular file (a folder); " in one_line(r), r.stderr


def test_a_threads_publish_checks_only_its_own_locks(tmp_path):
    """A review: the table of held locks was the process's, so one thread's publish checked (and refused on, or
    met closed descriptors of) the locks another thread of a library user held."""
    from embedrec.fsutil.generations import publish_generation
    from embedrec.fsutil.locks import locked_folder

    held, done = threading.Event(), threading.Event()

    def other():
        with locked_folder(tmp_path / "x", "embedrec train", "use another run.dir", "choose another run.dir"):
            (tmp_path / "x" / ".lock").unlink()  # this thread's own check would refuse
            held.set()
            done.wait(10)

    t = threading.Thread(target=other)
    t.start()
    try:
        assert held.wait(10)
        with locked_folder(tmp_path / "y", "embedrec train", "use another run.dir", "choose another run.dir"):
            publish_generation(tmp_path / "y", "artifacts", lambda f: (f / "manifest.json").write_text("{}"), keep=2)
        assert (tmp_path / "y" / "current").is_symlink()
    finally:
        done.set()
        t.join()


def test_lock_cleanup_never_takes_another_writers_lock_or_leaks(tmp_path):
    """A third review: a writer failing early removed the folder it made with the lock file in it, even when that
    file was another writer's (its own deleted by a user); a lock whose folder was replaced by a file was never
    closed (held for the process's life); a cut line in a lock file named a writer across two lines."""
    import fcntl

    from embedrec.fsutil.locks import exclusive_lock, locked_folder

    run = tmp_path / "new" / "run"
    with pytest.raises(RuntimeError), locked_folder(run, "embedrec train", "use another run.dir", "x"):
        (run / ".lock").unlink()
        fd = _hold_lock(run / ".lock", "4242 embedrec train\n")  # a second writer's, now
        raise RuntimeError("the first fails early")
    try:
        assert (run / ".lock").read_text() == "4242 embedrec train\n"  # kept, with its folder
    finally:
        os.close(fd)
    out = tmp_path / "o"
    out.mkdir()
    with pytest.raises(OSError):
        with exclusive_lock(out / ".l", out, "embedrec export", "x", remove=True):
            shutil.rmtree(out)
            out.write_text("a file where the folder was")
            raise OSError("the writer's own error")
    out.unlink()
    out.mkdir()
    with exclusive_lock(out / ".l", out, "embedrec export", "x"):  # the earlier lock was released
        pass
    fd = os.open(out / ".l", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, b"7 embedrec train\nindex rebuild\n", 0)  # killed between its write and its cut
    try:
        with pytest.raises(ArtifactError) as e:
            with exclusive_lock(out / ".l", out, "embedrec export", "wait"):
                pass
        assert e.value.cli_message() == f"another embedrec train is writing '{out}' (pid 7); wait for it to finish, or wait"
        os.pwrite(fd, b"junk\n", 0)
        with pytest.raises(ArtifactError) as e:
            with exclusive_lock(out / ".l", out, "embedrec export", "wait"):
                pass
        assert e.value.cli_message() == f"another embedrec command is writing '{out}'; wait for it to finish, or wait"
    finally:
        os.close(fd)


def test_a_refused_publish_stays_refused_for_the_whole_hold(tmp_path):
    """A final review: after a refusal the writer holds the lock file it made again, so a second check in the same
    hold passed and tune-dims' stop wrote tune.json (exit 1, 'nothing was published')."""
    from embedrec.fsutil.locks import confirm_held, locked_folder

    run = tmp_path / "run"
    with locked_folder(run, "embedrec tune-dims", "use another tune.dir", "x"):
        (run / ".lock").unlink()
        for _ in range(2):
            with pytest.raises(ArtifactError, match="nothing was published"):
                confirm_held()
    with locked_folder(run, "embedrec tune-dims", "use another tune.dir", "x"):  # a new hold: a new start
        confirm_held()


def test_topk_all_into_a_users_folder_says_what_overwrite_would_say(base, tmp_path):
    """A final review: `--topk-all userdir` said 'pass --overwrite' (exit 2) where --overwrite then refused the
    folder of the user's files (exit 1)."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    for extra in ([], ["--overwrite"]):
        r = invoke("export", "-q", "--run", base[1], "--topk-all", tmp_path / "mine", *extra)
        assert r.exit_code == 2 and "holds files embedrec did not write" in one_line(r), r.stderr


# ------------------------------------------------------------------------------------ a red team's N3-N6, N9

def test_a_single_candidates_run_folder_is_not_said_to_hold_the_users_files(base, tmp_path):
    """N9: a selection of one reg with the unobserved weight tried fits its first candidate in the run folder itself,
    whose clearing said "kept 'RUN': it holds files train did not write (.lock)" on every fresh train (torchrun
    and one process alike), and listed the run's own models on the next. A file of the user's there is still said."""
    run = tmp_path / "single"
    args = ("train", "-q", "--set", f"data.prepared={base[0]}", "--run", run, "--set", "model.dim=4",
            "--set", "train.epochs=2", "--set", "train.als_dims=[]", "--set", "train.als_reg=0.01",
            "--set", "train.als_unobserved=auto")
    for _ in range(2):  # a new folder, then the run it holds
        r = invoke(*args)
        assert r.exit_code == 0 and "kept" not in r.stderr, r.stderr
    (run / "mine.txt").write_text("x")
    r = invoke(*args)
    assert r.exit_code == 0 and f"kept '{run}': it holds files train did not write (mine.txt)" in r.stderr, r.stderr


def test_train_refuses_a_run_dir_inside_a_run_or_a_dataset(base, tmp_path):
    """N3: train wrote a run into runs/x/current/sub (a model folder, which verify then refused) or into a dataset's
    generation, where ingest and export refuse to write: refused alike (exit 2), fresh or resumed, and by the
    library too; nothing is written there."""
    from embedrec.api import train_run
    from embedrec.config import load_config
    from embedrec.errors import OutputRefused

    run = copy_run(base[1], tmp_path / "host")
    ds = copy_run(base[0], tmp_path / "dshost")
    cases = [(run / "current" / "sub", run, "an embedrec run"), (run / "sub", run, "an embedrec run"),
             (ds / "current" / "myrun", ds, "a prepared dataset"), (ds / "myrun", ds, "a prepared dataset")]
    for target, host, kind in cases:
        for extra in ([], ["--resume"]):
            r = invoke("train", "-q", *extra, "--set", f"data.prepared={base[0]}", "--run", target,
                       "--set", "train.epochs=1")
            assert r.exit_code == 2, r.stderr
            assert one_line(r) == (f"error: run.dir '{target}' is inside '{host}', {kind} (embedrec "
                                   f"{'train' if 'run' in kind else 'ingest'} wrote it): a file written there would "
                                   "replace or sit among the files embedrec keeps in it; choose a run.dir outside "
                                   "that folder")
            assert not os.path.lexists(target)
    with pytest.raises(OutputRefused, match="is inside"):
        train_run(load_config(None, [f"data.prepared={base[0]}", f"run.dir={run / 'current' / 'sub'}"]))
    assert invoke("verify", run).exit_code == 0


def test_dot_and_dot_dot_name_the_run_itself(base, tmp_path, monkeypatch):
    """A red team: inside a run folder, `--run .` (and `--run ..` inside its `current`) was refused by every writer,
    update-users, index rebuild and train --resume, as "run.dir '.' is inside '.../run', an embedrec run", where the
    same folder by its absolute path was written: Path('.').parent and Path('..').parent are both '.'. The folder
    is now checked as the file system finds it, so '.' and '..' are the run, and a folder inside a run still is
    not."""
    run = copy_run(base[1], tmp_path / "run")
    (tmp_path / "new.csv").write_text("user_id,movie_id,rating\n9001,1,5\n9001,2,4\n")
    monkeypatch.chdir(run)
    trained = [f"--set={k}" for k in (f"data.prepared={base[0]}", "model.dim=4", "train.epochs=2",
                                       "model.objective=explicit", "train.optimizer=adam")]
    for args in (["index", "rebuild", "--run", "."], ["train", "-q", "--resume", *trained, "--run", "."]):
        r = invoke(*args)
        assert r.exit_code == 0 and "is inside" not in r.stderr, (args, r.stderr)
    r = invoke("update-users", "--ratings", tmp_path / "new.csv", "--run", ".")  # refused for its model alone
    assert "is inside" not in r.stderr and "an als run" in one_line(r), r.stderr
    monkeypatch.chdir(run / "current")
    r = invoke("index", "rebuild", "--run", "..")
    assert r.exit_code == 0 and "is inside" not in r.stderr, r.stderr
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--run", ".")  # the model folder itself: refused
    assert r.exit_code == 2 and one_line(r).startswith(f"error: run.dir '.' is inside '{run}', an embedrec run"), r.stderr
    assert invoke("verify", run).exit_code == 0


def test_dot_inside_an_earlier_model_folder_is_that_model_refused(base, tmp_path, monkeypatch):
    """A red team: after `index rebuild`, `cd RUN/OLD; recommend --run .` served the old model (rc 0), where
    `--run ../OLD` was refused as an earlier model of run '..': load_run read '.' by its name, which is ''. It is
    read as the file system finds it: '.' there is refused the same, named from here; history too; verify checks
    that folder's files as it does by its path; '.' in the current model folder serves the run, and in RUN/refit
    is a folder training works in."""
    run = copy_run(base[1], tmp_path / "run")
    old = os.readlink(run / "current")
    assert invoke("index", "rebuild", "--run", run).exit_code == 0 and os.readlink(run / "current") != old
    monkeypatch.chdir(run / old)
    said = "error: '{}' is an earlier model of run '{}', which now serves another; open the run folder '{}' for its current model"
    for given, parent in ((".", ".."), (f"../{old}", "..")):
        for args in (["recommend", "--run", given, "--user", "1", "-k", "2"], ["history", "--run", given, "--user", "1"]):
            r = invoke(*args)
            assert r.exit_code == 1 and one_line(r) == said.format(given, parent, parent) and r.stdout == "", \
                (args, r.stderr)
    r, by_path = invoke("verify", "."), invoke("verify", run / old)
    assert r.exit_code == 0 and by_path.exit_code == 0 and r.stdout.startswith("ok: run '.': "), r.stdout
    monkeypatch.chdir(run / os.readlink(run / "current"))
    r = invoke("recommend", "--run", ".", "--user", "1", "-k", "2", "--format", "csv")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3, r.stderr
    (run / "refit").mkdir(exist_ok=True)
    monkeypatch.chdir(run / "refit")
    r = invoke("recommend", "--run", ".", "--user", "1")
    assert r.exit_code == 1 and one_line(r).startswith(f"error: '.' is a folder training works in, inside the run "
                                                       f"'{run}'"), r.stderr


def test_a_current_folder_removed_under_the_shell_is_one_line(base, tmp_path, monkeypatch):
    """A red team: `--run .` (or any relative path) from a folder removed after the shell went into it was
    "internal error (FileNotFoundError: [Errno 2] No such file or directory)". One line says the current folder
    is gone; an absolute path still works from there."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    said = ("error: the current folder no longer exists (it was removed after this shell went into it), so no "
            "relative path can be read or written; cd to a folder that exists and run the command again")
    for args in (["recommend", "--run", ".", "--user", "1"], ["verify", "--run", "."],
                 ["ingest", base[0] / "current" / "train.parquet", "-o", "ds"]):
        r = invoke(*args)
        assert r.exit_code == 1 and r.stderr == said + "\n" and r.stdout == "", (args, r.stderr)
    r = invoke("recommend", "--run", base[1], "--user", "1", "-k", "2", "-q")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3, r.stderr
    r = invoke("export", "--run", base[1], "--to", "npy", "-o", tmp_path / "npy", "-q")  # (the check of the current
    assert r.exit_code == 0 and (tmp_path / "npy").is_dir(), r.stderr  # folder as an output's was an internal error)


def test_a_run_being_trained_is_said_so_not_interrupted(base, tmp_path):
    """N5: while a first train ran (nothing published yet), recommend said "no trained model ... (training was
    interrupted: 'embedrec train --resume ...')", whose resume the lock then refused, and a train --resume before
    its first checkpoint said "nothing to resume: no checkpoint". The run's lock is looked at first; the line a
    finished writer left in it names no one."""
    run = tmp_path / "fresh"
    run.mkdir()
    busy = f"training is in progress in '{run}' (embedrec train, pid {os.getpid()})"
    fd = _hold_lock(run / ".lock", f"{os.getpid()} embedrec train\n")
    try:
        for checkpoint in (False, True):
            if checkpoint:
                (run / "checkpoint.pt").write_bytes(b"x")
            for cmd in (["recommend", "--user", "1"], ["evaluate"]):
                r = invoke(*cmd, "--run", run)
                assert r.exit_code == 75 and one_line(r) == (f"error: {busy}: no model is published there yet; wait "
                                                            "for it to finish, then run this command again")
        r = invoke("verify", run)  # a red team: "neither a run (no 'current'), a prepared dataset ... nor"
        assert r.exit_code == 75 and one_line(r) == (f"error: {busy}: no model is published there yet to verify; "
                                                    "wait for it to finish, then run this command again")
        (run / "checkpoint.pt").unlink()
        r = invoke("train", "-q", "--resume", "--set", f"data.prepared={base[0]}", "--run", run)
        assert r.exit_code == 75 and one_line(r) == (f"error: {busy}, with no checkpoint saved yet: nothing to resume; "
                                                    "wait for it to finish (a second train there would be refused)")
    finally:
        os.close(fd)
    r = invoke("recommend", "--user", "1", "--run", run)  # the holder's line is still there, its lock gone
    assert r.exit_code == 1 and one_line(r).startswith(f"error: no trained model in '{run}'; ")
    r = invoke("train", "-q", "--resume", "--set", f"data.prepared={base[0]}", "--run", run)
    assert r.exit_code == 1 and one_line(r).startswith(f"error: nothing to resume: no checkpoint in '{run}'")


def test_a_folder_where_train_keeps_a_file_is_named(base, tmp_path):
    """N6: a folder named metrics.jsonl made a resume say "cannot use '.../.metrics.jsonl.znxoouat': Is a directory"
    (a temporary's name), one named checkpoint.pt "nothing to resume: no checkpoint"; a fresh train failed alike.
    Each is named, with how to fix it, before any fit; in a candidate's folder too, and from the library."""
    from embedrec.api import train_run
    from embedrec.config import load_config

    for name, what in (("metrics.jsonl", "epoch log"), ("checkpoint.pt", "checkpoint"),
                       ("als-reg-0.01/checkpoint.pt", "checkpoint")):
        run = copy_run(base[1], tmp_path / name.replace("/", "-"))
        (run / name).unlink(missing_ok=True)
        (run / name).mkdir(parents=True)
        for extra in (["--resume"], []):
            r = invoke("train", "-q", *extra, "--set", f"data.prepared={base[0]}", "--run", run, "--set", "model.dim=4",
                       "--set", "train.epochs=2", "--set", "model.objective=explicit", "--set", "train.optimizer=adam")
            assert r.exit_code == 1 and one_line(r) == (
                f"error: '{run / name}' is a folder where train keeps its {what} (a file); remove it (rm -r "
                f"{run / name}) or move it away, or use another run.dir"), r.stderr
        with pytest.raises(ArtifactError, match="is a folder where train keeps its"):
            train_run(load_config(None, [f"data.prepared={base[0]}", f"run.dir={run}"]), resume=True)
        assert (run / name).is_dir() and invoke("verify", run).exit_code == 0


def test_an_empty_path_is_a_usage_error_naming_the_option(base, tmp_path, monkeypatch):
    """N4: an empty path was taken as not given: `recommend --run "$RUN"` with RUN unset served the default run,
    `train --run ""` trained into it, `ingest -o ""` wrote data/prepared/ml-100k. Every path option and argument,
    the path config keys (--set and a file) and the library's path arguments refuse it (exit 2), naming it;
    nothing is written."""
    import embedrec as er
    from embedrec.config import load_config
    from embedrec.errors import ConfigError, UsageError

    monkeypatch.chdir(tmp_path)
    cases = {("recommend", "--user", "1", "--run"): "--run", ("predict", "--pairs", "-", "--run"): "--run",
             ("evaluate", "--run"): "--run", ("train", "--run"): "--run", ("train", "--resume", "--run"): "--run",
             ("tune-dims", "--run"): "--run", ("verify", "--run"): "--run", ("index", "rebuild", "--run"): "--run",
             ("export", "--to", "csv", "--run"): "--run", ("export", "--to", "csv", "-o"): "-o/--output",
             ("export", "--topk-all"): "--topk-all", ("export", "--plot"): "--plot", ("ingest", "-o"): "-o/--output",
             ("tune-dims", "--write"): "--write", ("recommend", "--users"): "--users", ("predict", "--pairs"): "--pairs",
             ("config", "-c"): "-c/--config", ("verify",): "argument PATH", ("ingest",): "argument SOURCE"}
    for args, name in cases.items():
        r = invoke(*args, "")
        assert r.exit_code == 2 and one_line(r).startswith(f"error: {name} '': the path is empty (an unset "
                                                           "variable?); give a "), (args, r.stderr)
    for key in ("run.dir", "data.prepared", "tune.dir", "data.source", "data.movies"):
        for value in ("", "''"):
            r = invoke("train", "--set", f"{key}={value}")
            assert r.exit_code == 2 and one_line(r).startswith(f"error: config key '{key}' (from --set): the path is "
                                                               "empty (an unset variable?); give a path"), r.stderr
    (tmp_path / "e.yaml").write_text("run:\n  dir: ''\n")
    r = invoke("recommend", "--user", "1", "-c", tmp_path / "e.yaml")
    assert r.exit_code == 2 and one_line(r) == (f"error: config key 'run.dir' in {tmp_path / 'e.yaml'}: the path is "
                                                "empty (an unset variable?); give a path")
    with pytest.raises(ConfigError, match="config key 'tune.dir': the path is empty .* or null for the default"):
        load_config(None, [f"data.prepared={base[0]}"]).updated({"tune.dir": ""})
    for call in (lambda: er.open(""), lambda: er.ingest(output=""), lambda: er.verify_files("")):
        with pytest.raises(UsageError, match="is an empty path ''; give a path, or None"):
            call()
    assert sorted(os.listdir(tmp_path)) == ["e.yaml"]  # no default run, dataset or folder written


def test_index_rebuild_of_run_current_rebuilds_the_run(base, tmp_path):
    """`index rebuild --run RUN/current` put the run's lock and a temporary in the model folder (verify then refused
    the run); with a run.dir inside a run refused (N3) it was refused as one. RUN/current is the run, as every
    reader takes it."""
    run = copy_run(base[1], tmp_path / "run")
    r = invoke("index", "rebuild", "-q", "--run", run / "current")
    assert r.exit_code == 0, r.stderr
    assert invoke("verify", run).exit_code == 0 and not os.path.lexists(current(run) / ".lock")
    served = current(run)  # the model folder current names is the run too (a review: it was refused as inside it)
    r = invoke("index", "rebuild", "-q", "--run", served)
    assert r.exit_code == 0, r.stderr
    assert invoke("verify", run).exit_code == 0 and current(run) != served and not os.path.lexists(served / ".lock")


def test_a_file_where_a_folder_of_the_output_path_goes_is_one_usage_line(base, tmp_path):
    """A review: `export -o FILE/sub` (and --topk-all, --plot, train --run, ingest -o) said "cannot use 'FILE':
    File exists", exit 1, and the library raised a bare FileExistsError."""
    import embedrec as er

    blocker = tmp_path / "pf"
    blocker.write_text("x")
    for args in (["export", "-q", "--run", base[1], "--to", "csv", "-o", blocker / "sub"],
                 ["export", "-q", "--run", base[1], "--topk-all", blocker / "t.csv"],
                 ["train", "-q", "--set", f"data.prepared={base[0]}", "--run", blocker / "run" / "x"]):
        r = invoke(*args)
        assert r.exit_code == 2 and one_line(r).startswith(f"error: '{blocker}' is a file, where a folder of the "
                                                          "output path goes"), (args, r.stderr)
    with pytest.raises(er.OutputRefused, match="is a file, where a folder of the output path goes"):
        er.open(base[1]).export("npy", blocker / "sub")
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("damage", ["removed", "a file", "an empty folder", "a loop of links", "a link to a gone "
                                                                                   "folder", "a link to an empty one"])
def test_a_dataset_whose_current_link_is_lost_is_said_so_and_ingest_overwrite_mends_it(base, tmp_path, damage):
    """A red team: after 'rm DATASET/current' (or a file in its place) train said "no prepared dataset ... run
    'embedrec ingest'", and the ingest --overwrite that mends it refused the folder as "a folder of embedrec runs or
    datasets": only deleting it by hand helped. A later one: an empty folder in its place named another dataset
    beside it, and verify gave a run's advice for all three; and (session 49) a loop of links in its place
    ('ln -s current current') was "no prepared dataset", ingest --overwrite refused it, verify gave a run's
    advice."""
    ds = tmp_path / "ds"
    shutil.copytree(base[0], ds, symlinks=True)
    (ds / "current").unlink()
    if damage == "a file":
        (ds / "current").write_text("x")
    elif damage == "an empty folder":
        (ds / "current").mkdir()
    elif damage == "a loop of links":
        (ds / "current").symlink_to("current")
    elif damage == "a link to a gone folder":
        (ds / "current").symlink_to("gen-19990101T000000-000000000")
    elif damage == "a link to an empty one":
        (ds / "gen-19990101T000000-000000000").mkdir()
        (ds / "current").symlink_to("gen-19990101T000000-000000000")
    source = base[0].parent / "ratings.csv"
    for args in (["train", "-q", "--set", f"data.prepared={ds}", "--run", tmp_path / "run"], ["verify", ds]):
        r = invoke(*args)
        assert r.exit_code == 1 and one_line(r).startswith(f"error: prepared dataset '{ds}': its 'current' link "), \
            (args, r.stderr)
        assert f"ingest it again: embedrec ingest {source} -o {ds} --overwrite with the options" in r.stderr, r.stderr
    r = invoke("ingest", "-q", source, "-o", ds, "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert (ds / "current").is_symlink() and invoke("verify", ds).exit_code == 0


def test_a_run_whose_current_is_a_file_and_a_file_for_a_run_are_one_line_each(base, tmp_path):
    """A red team: a run whose 'current' is a plain file: er.open raised a bare NotADirectoryError (and for
    er.open('/etc/passwd')), the CLI "cannot use .../current/manifest.json: Not a directory", and 'train --resume'
    ran its whole fit, then failed to publish."""
    import embedrec as er

    run = copy_run(base[1], tmp_path / "run")
    model = os.readlink(run / "current")
    (run / "current").unlink()
    (run / "current").write_text("x")
    with pytest.raises(er.ArtifactError, match=rf"'{re.escape(str(run / 'current'))}' is a file, where a run has the "
                                               rf"link to its model folder .*ln -sfn {model} "):
        er.open(run)
    r = invoke("recommend", "--run", run, "--user", "1")
    assert r.exit_code == 1 and one_line(r).startswith(f"error: '{run / 'current'}' is a file, where a run"), r.stderr
    r = invoke("train", "-q", "--resume", "--set", f"data.prepared={base[0]}", "--run", run)
    assert r.exit_code == 2 and f"run.dir '{run}' holds a file 'current' that embedrec did not write" in r.stderr, \
        r.stderr
    assert "epoch" not in r.stderr  # refused before any training
    (run / "current").unlink()
    (run / "current").symlink_to(model)  # the advice mends it
    assert invoke("recommend", "--run", run, "--user", "1", "-q").exit_code == 0
    with pytest.raises(er.ArtifactError, match=r"is a file, not a run folder; pass the run directory train wrote"):
        er.open(base[0].parent / "ratings.csv")
    # a 'current' that leads back to itself is said as a loop, not a missing model folder (a red team)
    (run / "current").unlink()
    (run / "current").symlink_to("current")
    r = invoke("recommend", "--run", run, "--user", "1")
    assert r.exit_code == 1 and one_line(r).startswith(f"error: '{run / 'current'}' is a loop of links (it leads "
                                                       "back to itself: -> current); rerun 'embedrec train"), r.stderr
    (run / "current").unlink()
    (run / "current").symlink_to(model)
    odd = tmp_path / "new\nline"  # verify's ok line stays one line (a red team: the name's line break split it)
    shutil.copytree(run, odd / "run", symlinks=True)
    r = invoke("verify", odd / "run")
    assert r.exit_code == 0 and r.stdout.count("\n") == 1 and r.stdout.startswith(f"ok: run '{tmp_path}/new\\nline/run/")
    # --run FILE and --set run.dir=FILE: one line, one exit code (a first-hour review: click's "Directory 'afile'
    # is a file", exit 2, against this line and exit 1)
    afile = base[0].parent / "ratings.csv"
    for args in (["--run", afile], ["--set", f"run.dir={afile}"]):
        r = invoke("recommend", *args, "--user", "1")
        assert r.exit_code == 1 and one_line(r).startswith(f"error: '{afile}' is a file, not a run folder; "), r.stderr


def test_tune_dims_never_writes_in_a_runs_training_folders(base, tmp_path):
    """A red team: 'tune-dims --run RUN/refit' and 'tune.dir=RUN/als-reg-0.01/t' wrote tune's checkpoints into the
    folders a run trains in (train refuses them), and every later train warned it kept folders it did not make."""
    run = copy_run(base[1], tmp_path / "run")
    model = os.readlink(run / "current")
    for name in ("refit", "als-reg-0.01"):
        (run / name).mkdir(exist_ok=True)
    for args in (["--run", run / "refit"], ["--set", f"tune.dir={run / 'als-reg-0.01' / 't'}"]):
        r = invoke("tune-dims", "-q", "--dims", "4", "--set", f"data.prepared={base[0]}", *args)
        assert r.exit_code == 2 and "a folder the run" in r.stderr and f"give the run itself (--run {run}" in \
            r.stderr, r.stderr
    r = invoke("tune-dims", "-q", "--dims", "4", "--set", f"data.prepared={base[0]}", "--set",
               f"tune.dir={run / model / 't'}")  # a model folder: refused as before
    assert r.exit_code == 2 and f"is inside '{run / model}', an embedrec run" in r.stderr, r.stderr
    assert not list(run.rglob("tune*"))


def test_evaluate_of_a_model_whose_folder_moved_says_so(base, tmp_path):
    """A red team: an open Model whose run folder was renamed answered recommend from memory, but evaluate read
    its config.yaml only then and said it "is missing; train again and save" where the fix is to open it again."""
    import embedrec as er

    run = copy_run(base[1], tmp_path / "run")
    m = er.open(run, er.load_config(None, [f"data.prepared={base[0]}"]))
    os.rename(run, tmp_path / "moved")
    with pytest.raises(er.ArtifactError, match=r"this model reads 'config.yaml' from is gone .*open the run again"):
        m.evaluate("test")


def test_every_output_makes_the_folders_it_goes_in(base, tmp_path):
    """A notebook review: export('npy', 'nodir2/sub/emb') made its folders where topk_all('nodir/sub/top.parquet')
    and plot_map('nodir3/sub/m.png') refused ('mkdir -p'). One rule for every output, file or folder: the folders
    it goes in are made (said in a note), as ingest's, train's and export's always were."""
    gone = tmp_path / "no" / "such"
    for args in (["evaluate", "--run", base[1], "--per-user", gone / "u.csv"],
                 ["export", "--run", base[1], "--topk-all", gone / "t.csv"],
                 ["export", "--run", base[1], "--plot", gone / "m.png"],
                 ["export", "--run", base[1], "--topk-all", gone / "parts"],
                 ["export", "--run", base[1], "--to", "npy", "-o", gone / "npy"]):
        r = invoke(*args)
        assert r.exit_code == 0 and (args[-1].is_file() or args[-1].is_dir()), (args, r.stderr)
        assert f"note: made the folder '{gone}' for '{args[-1]}'" in r.stderr, r.stderr
        shutil.rmtree(tmp_path / "no")
    # a file where a folder of the path goes: one line, before any work, nothing made
    (tmp_path / "f").write_text("x")
    r = invoke("export", "-q", "--run", base[1], "--to", "npy", "-o", tmp_path / "npy0", "--topk-all",
               tmp_path / "f" / "a" / "t.csv")
    assert r.exit_code == 2 and one_line(r) == (f"error: '{tmp_path / 'f'}' is a file, where a folder of the output "
                                                f"path goes (for '{tmp_path / 'f' / 'a' / 't.csv'}'); choose another "
                                                "file"), r.stderr
    assert not (tmp_path / "npy0").exists()


def test_train_and_ingest_say_the_folders_they_make_and_remove_them_when_they_fail(base, tmp_path):
    """Session 49's review: train's run.dir and ingest's -o in a folder not there made it without the note every
    other output gives. Both say it, and a command that fails before it writes anything there leaves none of them,
    and says only its error (a damaged dataset for train, a column not there for ingest)."""
    csv = base[0].parent / "ratings.csv"
    gone = tmp_path / "no" / "such"
    r = invoke("ingest", "-q", csv, "-o", gone / "ds")
    assert r.exit_code == 0 and r.stderr == "", r.stderr  # (-q: notes are info)
    r = invoke("ingest", csv, "-o", tmp_path / "a" / "b" / "ds")
    assert r.exit_code == 0 and \
        f"note: made the folder '{tmp_path / 'a' / 'b'}' for '{tmp_path / 'a' / 'b' / 'ds'}'\n" in r.stderr, r.stderr
    run = tmp_path / "c" / "d" / "run"
    r = invoke("train", "--set", f"data.prepared={gone / 'ds'}", "--set", f"run.dir={run}", "--set", "model.dim=4",
               "--set", "train.epochs=1", "--set", "model.objective=explicit", "--set", "train.optimizer=adam")
    assert r.exit_code == 0 and (run / "current").is_dir(), r.stderr
    assert f"note: made the folder '{run.parent}' for '{run}'\n" in r.stderr, r.stderr
    flip(current(gone / "ds") / "train.parquet")
    r = invoke("train", "--set", f"data.prepared={gone / 'ds'}", "--set", f"run.dir={tmp_path / 'e' / 'f' / 'run'}")
    assert r.exit_code == 1 and "does not match its checksum" in one_line(r)
    r = invoke("ingest", csv, "-o", tmp_path / "g" / "h" / "ds", "--set", "data.columns.user=nope")
    assert r.exit_code == 1 and "no column 'nope'" in one_line(r)
    assert sorted(os.listdir(tmp_path)) == ["a", "c", "no"]


def test_a_failed_output_removes_the_folders_made_for_it(tmp_path):
    """The folders made for an output are removed where its write fails (a typo'd path leaves no chain of them);
    those that were there stay."""
    from embedrec.fsutil.outputs import atomic_dir, atomic_file

    for writer in (atomic_file, atomic_dir):
        with pytest.raises(RuntimeError, match="boom"), writer(tmp_path / "a" / "b" / "out.csv"):
            assert (tmp_path / "a" / "b").is_dir()
            raise RuntimeError("boom")
        assert os.listdir(tmp_path) == []
    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "a" / "b" / "out.csv"):
        raise RuntimeError
    assert os.listdir(tmp_path) == ["a"] and os.listdir(tmp_path / "a") == []


def test_train_and_ingest_take_a_dotdot_after_a_folder_not_there_out_with_it(base, tmp_path, monkeypatch):
    """A review of session 50: `train --set run.dir=a/../runs/x` and `ingest -o a/../data/x` made 'a' (mkdir -p)
    and left it. A '..' after a folder not there goes with it, as every output's (fsutil.outputs.through_missing):
    the dataset and the run are written, noted and named where they are, and no 'a' is made; er.ingest,
    api.train_run and TrainedModel.save alike, and cross-validate's --output and tune-dims' run.dir (its RUN/tune).
    A '..' after a folder or a link that is there is the file system's (after a link: its target's parent)."""
    import embedrec as er

    monkeypatch.chdir(tmp_path)
    csv = base[0].parent / "ratings.csv"
    r = invoke("ingest", csv, "-o", "a/../data/ds")
    assert r.exit_code == 0 and "note: made the folder 'data' for 'data/ds'\n" in r.stderr, r.stderr
    assert "--set data.prepared=data/ds" in r.stderr, r.stderr  # train's advice names where it is
    sets = ["model.dim=4", "train.epochs=1", "model.objective=explicit", "train.optimizer=adam"]
    r = invoke("train", "--set", "data.prepared=data/ds", "--set", "run.dir=b/../runs/x",
               *[a for s in sets for a in ("--set", s)])
    assert r.exit_code == 0 and "note: made the folder 'runs' for 'runs/x'\n" in r.stderr, r.stderr
    assert "run in runs/x " in r.stderr and Path("runs/x/current/manifest.json").is_file(), r.stderr
    assert sorted(os.listdir(tmp_path)) == ["data", "runs"]
    ds = er.ingest(csv, output="c/../data/ds2")
    assert ds.path == Path("data/ds2") and (tmp_path / "data" / "ds2" / "current").is_dir()
    cfg = er.load_config(None, [*sets, "data.prepared=data/ds2", "run.dir=d/../runs/y"])
    from embedrec.api import train_run

    train_run(cfg)
    model = er.train(ds, cfg)
    assert model.save("e/../runs/z").parent == Path("runs/z")
    assert sorted(os.listdir(tmp_path)) == ["data", "runs"] and sorted(os.listdir("runs")) == ["x", "y", "z"]
    quick = [a for s in [*sets, "train.epochs=1"] for a in ("--set", s)]
    r = invoke("cross-validate", "-q", csv, "--folds", "2", "-o", "f/../runs/cv", *quick)
    assert r.exit_code == 0 and Path("runs/cv/cross_validation.json").is_file(), r.stderr
    r = invoke("tune-dims", "-q", "--dims", "2,4", "--run", "g/../runs/x", "--set", "data.prepared=data/ds", *quick)
    assert r.exit_code == 0 and Path("runs/x/tune/tune.json").is_file(), r.stderr
    assert sorted(os.listdir(tmp_path)) == ["data", "runs"]


def test_a_dotdot_after_a_link_is_where_the_file_system_finds_it(base, tmp_path, monkeypatch):
    """Found with the test above: with ln -> far/in, 'ln/..' is far (the file system follows the link), where
    os.path.abspath and normpath say '.'. `ingest -o ln/../ds` failed (tempfile made its files by abspath, in
    './ds...', and their rename found no folder), `train --set data.prepared=ln/../ds` refused the dataset's
    current as leading out of it (generations.inside_name), and `train --set run.dir=ln/../run` made and locked
    './run/.lock' (locks.lock_key), so two writers naming one run apart did not exclude each other. Each now goes
    where the file system finds it: far/ds, far/run, and nothing made here."""
    from embedrec.fsutil.locks import lock_key

    monkeypatch.chdir(tmp_path)
    csv = base[0].parent / "ratings.csv"
    (tmp_path / "far" / "in").mkdir(parents=True)
    os.symlink("far/in", "ln")
    assert lock_key("ln/../run/.lock") == str(tmp_path / "far" / "run" / ".lock")
    assert lock_key("runs/x/.lock") == str(tmp_path / "runs" / "x" / ".lock")  # no '..': its absolute path
    r = invoke("ingest", "-q", csv, "-o", "ln/../ds")
    assert r.exit_code == 0 and (tmp_path / "far" / "ds" / "current").is_dir(), r.stderr
    r = invoke("train", "-q", "--set", "data.prepared=ln/../ds", "--set", "run.dir=ln/../run", "--set", "model.dim=4",
               "--set", "train.epochs=1", "--set", "model.objective=explicit", "--set", "train.optimizer=adam")
    assert r.exit_code == 0 and (tmp_path / "far" / "run" / "current").is_dir(), r.stderr
    assert invoke("recommend", "-q", "--run", "ln/../run", "--user", "1", "-k", "2").exit_code == 0
    assert invoke("ingest", "-q", csv, "-o", "ln/../ds", "--overwrite").exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["far", "ln"] and sorted(os.listdir("far")) == ["ds", "in", "run"]


def test_through_missing_takes_out_a_dotdot_after_a_folder_not_there(tmp_path, monkeypatch):
    """A review: --topk-all a/../b/top.parquet with no 'a' made 'a' (mkdir -p), named only 'a/../b' in its note,
    and left 'a' where the write failed. A '..' after a folder not there goes with it; one after a folder or a link
    that is there stays for the file system (after a link it leads to the link's target's parent)."""
    from embedrec.fsutil.outputs import through_missing

    monkeypatch.chdir(tmp_path)
    t = tmp_path
    assert through_missing(t / "a" / ".." / "b" / "top.parquet") == t / "b" / "top.parquet"
    assert through_missing(t / "a" / "x" / ".." / ".." / "c" / "d") == t / "c" / "d"
    assert through_missing(Path("a/../../b/f")) == Path("../b/f")  # the cwd's parent: no 'a' here
    plain = t / "b" / "top.parquet"
    assert through_missing(plain) is plain
    (t / "a").mkdir()
    assert through_missing(t / "a" / ".." / "b" / "f") == t / "a" / ".." / "b" / "f"
    assert through_missing(t / "a" / "x" / ".." / "f") == t / "a" / "f"
    (t / "far" / "in").mkdir(parents=True)
    os.symlink(t / "far" / "in", t / "ln")  # ln/.. is far, not t: kept for the file system
    assert through_missing(t / "ln" / ".." / "b" / "f") == t / "ln" / ".." / "b" / "f"
    os.symlink(t / "nothing", t / "dl")  # a link to nothing is there too (output_parent refuses it)
    assert through_missing(t / "dl" / ".." / "f") == t / "dl" / ".." / "f"


def test_an_output_through_a_missing_folder_and_dotdot_makes_and_removes_only_its_own(base, tmp_path, monkeypatch):
    """The folders an output makes are those its note names and a failure removes: 'a/../b/top.parquet' with no
    'a' makes 'b' alone (a review: 'a' too, never removed); and a link to nothing where a folder of the path goes
    is said to be that, where it leads (a review: "'dl' is a file")."""
    from embedrec.fsutil.outputs import atomic_dir, atomic_file

    monkeypatch.chdir(tmp_path)
    for writer in (atomic_file, atomic_dir):
        with pytest.raises(RuntimeError, match="boom"), writer("a/../b/out.csv"):
            assert os.listdir(tmp_path) == ["b"]
            raise RuntimeError("boom")
        assert os.listdir(tmp_path) == []
    r = invoke("export", "--run", base[1], "--topk-all", "a/../b/top.parquet")
    assert r.exit_code == 0, r.stderr
    assert "note: made the folder 'b' for 'b/top.parquet'" in r.stderr, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["b"] and (tmp_path / "b" / "top.parquet").is_file()
    assert json.loads(r.stdout)[0]["topk_all"] == "b/top.parquet", r.stdout  # where it is (a/../b is no path now)
    os.symlink("/nonexistent/zz", "dl")
    r = invoke("export", "--run", base[1], "--topk-all", "dl/x/top.parquet")
    assert r.exit_code == 2 and r.stdout == ""
    assert one_line(r) == ("error: 'dl' is a symbolic link to '/nonexistent/zz', which does not exist, where a "
                           "folder of the output path goes (for 'dl/x/top.parquet'); create that folder, remove the "
                           "link, or choose another file")
    (tmp_path / "f").write_text("x")
    os.symlink("f", "fl")
    r = invoke("export", "--run", base[1], "--topk-all", "fl/top.parquet")
    assert r.exit_code == 2 and one_line(r) == ("error: 'fl' is a symbolic link to the file 'f', where a folder of "
                                                "the output path goes; choose another file")
    assert sorted(os.listdir(tmp_path)) == ["b", "dl", "f", "fl"]


def test_tune_dims_write_checks_where_its_config_goes_without_making_it(tmp_path):
    """tune-dims --write's folder is made as every output's (when the config is written, after the sweep); before
    the sweep it is only checked: a file in the way is refused then, and nothing is made."""
    from embedrec.errors import OutputRefused
    from embedrec.tune import check_write_target

    assert check_write_target(tmp_path / "no" / "such" / "t.yaml", None) == tmp_path / "no" / "such" / "t.yaml"
    assert os.listdir(tmp_path) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputRefused, match=r"write=? .*'.*/f' is a file, where a folder of the output path goes"):
        check_write_target(tmp_path / "f" / "a" / "t.yaml", None)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_where_no_file_can_be_made_is_one_typed_line(base, tmp_path):
    """A notebook review: topk_all('/proc/x.parquet') raised a bare FileNotFoundError naming the internal
    '/proc/.embedrec.x.parquet.lock', and plot_map computed ~2 s before refusing; --topk-all /dev/stdout was
    "exists and is not a folder"."""
    import embedrec as er
    from embedrec.errors import OutputRefused, UsageError

    with er.open(base[1]) as m:
        for call in (lambda: m.topk_all("/proc/x.parquet", k=3), lambda: m.plot_map("/proc/m.png")):
            with pytest.raises(OutputRefused, match=r"^'/proc/.*': files cannot be made in '/proc' \(No such file or "
                                                    r"directory\); choose another file$"):
                call()
        with pytest.raises(UsageError, match=r"'/dev/stdout': this writes a file or a folder, not standard output"):
            m.topk_all("/dev/stdout", k=3)
    r = invoke("export", "-q", "--run", base[1], "--topk-all", "/dev/stdout")
    assert r.exit_code == 2 and r.stdout == "" and one_line(r).startswith(
        "error: --topk-all '/dev/stdout': this writes a file or a folder, not standard output or a device; "), r.stderr
    assert "embedrec recommend --users -" in r.stderr


def test_generation_names_sort_by_utc_whatever_the_time_zone(monkeypatch):
    """A red team: ingests under TZ=Etc/GMT-12, then TZ=Etc/GMT+12, named the newer generations 24 hours older
    (local time), and pruning removed the one just replaced. Versions are UTC now: the same at any TZ."""
    import time as _time

    from embedrec.fsutil.generations import new_version

    names = []
    for tz in ("Etc/GMT-12", "Etc/GMT+12", "UTC"):
        monkeypatch.setenv("TZ", tz)
        _time.tzset()
        names.append(new_version())
    monkeypatch.delenv("TZ")
    _time.tzset()
    assert names == sorted(names) and len({n[:11] for n in names}) == 1, names  # one date and hour


def test_a_current_link_leading_out_of_its_run_is_refused(tmp_path, trained_run):
    """A red team: a copy of a run whose current was re-pointed at another run's model served that model, and
    verify passed it. `current` names a folder beside it, or the run is refused, by every reader."""
    import shutil

    from embedrec.cli import main

    src, run = Path(trained_run.cfg.run.dir), tmp_path / "copy"
    shutil.copytree(src, run, symlinks=True)
    (run / "current").unlink()
    os.symlink(os.path.realpath(src / "current"), run / "current")  # absolute, into the other run
    for args in (["recommend", "--run", run, "--user", "1"], ["verify", run], ["evaluate", "--run", run]):
        r = CliRunner().invoke(main, [str(a) for a in args])
        assert r.exit_code == 1 and r.stdout == "", (args, r.stderr)
        assert r.stderr.startswith(f"error: '{run / 'current'}' points to '") and "outside" in r.stderr, r.stderr
    (run / "current").unlink()
    os.symlink(src, tmp_path / "other")
    os.symlink("../other/current", run / "current")  # relative, through the parent
    r = CliRunner().invoke(main, ["recommend", "--run", str(run), "--user", "1"])
    assert r.exit_code == 1 and "outside" in r.stderr, r.stderr
    # the folder beside it, however the link spells it (a review: 'artifacts-X/', as tab completion writes it,
    # was refused): served
    name = os.path.basename(os.path.realpath(src / "current"))
    for spelt in (f"{name}/", f"./{name}", str(run / name)):
        (run / "current").unlink()
        os.symlink(spelt, run / "current")
        r = CliRunner().invoke(main, ["recommend", "--run", str(run), "--user", "1", "--format", "tsv"])
        assert r.exit_code == 0 and r.stdout.count("\n") == 11, (spelt, r.stderr)


def test_a_datasets_current_leading_into_another_dataset_is_refused(tmp_path, trained_run):
    """A review: a dataset's current re-pointed at another dataset's generation (absolute or ../) was verified as
    this one's and trained on, with the other's split. Refused by verify, train and every reader."""
    import shutil

    src, ds = Path(trained_run.cfg.data.prepared), tmp_path / "copy"
    shutil.copytree(src, ds, symlinks=True)
    os.symlink(src, tmp_path / "other")
    name = os.readlink(ds / "current")
    assert invoke("verify", ds).exit_code == 0
    for spelt in (os.path.realpath(src / "current"), f"../other/{name}"):
        (ds / "current").unlink()
        os.symlink(spelt, ds / "current")
        for args in (["verify", ds], ["train", "-q", "--set", f"data.prepared={ds}", "--set",
                                      f"run.dir={tmp_path / 'r'}", "--set", "model.dim=4"]):
            r = invoke(*args)
            assert r.exit_code == 1 and f"'{ds / 'current'}' points to" in one_line(r), (args, r.stderr)
        assert not (tmp_path / "r").exists()


def test_pruning_keeps_the_newest_written_whatever_their_names_say(tmp_path):
    """A review of the UTC names: east of UTC, the folders written before the switch (local time) sort after the
    ones written since, so by name the model just replaced was pruned and older ones kept. Pruning goes by when
    each was written (its manifest), then by name."""
    from embedrec.fsutil.generations import prune_generations

    names = ["gen-20261203T200000-000000001", "gen-20261203T210000-000000002",  # local time (UTC+10), older
             "gen-20261203T110000-000000003", "gen-20261203T120000-000000004"]  # UTC, written since
    for i, n in enumerate(names):
        (tmp_path / n).mkdir()
        (tmp_path / n / "manifest.json").write_text('{"files": {"manifest.json": {}}}')  # all it holds, listed
        os.utime(tmp_path / n / "manifest.json", ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    os.symlink(names[3], tmp_path / "current")
    prune_generations(tmp_path, "gen", {names[3]}, 2)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gen-")) == sorted(names[2:])


def test_a_failed_command_leaves_no_leaked_semaphore_warning_behind():
    """A review: Ctrl-C early in `tune-dims` printed multiprocessing's resource tracker's "There appear to be 5
    leaked semaphore objects" after the one line: a failed command leaves without the interpreter's teardown
    (cli._leave), so the named semaphores it held (the pool's queues, tqdm's lock) were never unregistered.
    They are freed on the way out now, as multiprocessing's own exit handler would."""
    script = ("import multiprocessing as mp\n"
              "from multiprocessing import resource_tracker\n"
              "resource_tracker.ensure_running()\n"
              "lock = mp.get_context('spawn').Lock()\n"
              "from embedrec.cli import _leave\n"
              "_leave(1)\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr == "", p.stderr


def test_a_file_it_may_not_read_is_said_so_never_corrupt(base, tmp_path):
    """A red team (as a user without root's file-permission bypass): an unreadable user_factors.npy was 'corrupt;
    train again', an unreadable test.parquet 'permission denied on 'test.parquet'; write to another folder (-o)',
    and an unreadable checkpoint 'damaged ... train again without resuming', which loses the work. Each is now
    'cannot read ... (permission denied)' with the whole path."""
    import subprocess
    import sys

    drop = []
    if os.geteuid() == 0:  # root reads anything: drop that right for the commands run here
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
        if not shutil.which("setpriv") or subprocess.run([*drop, "true"]).returncode != 0:
            pytest.skip("runs as root, and setpriv cannot drop its file-permission bypass here")
    run = copy_run(base[1], tmp_path / "run")
    sets = ["--set", f"data.prepared={base[0]}", "--set", f"run.dir={run}", "--set", "model.dim=4", "--set",
            "train.epochs=2", "--set", "model.objective=explicit", "--set", "train.optimizer=adam"]
    data = Path(os.path.realpath(base[0] / "current"))
    for path, args, what in ((current(run) / "user_factors.npy", ["recommend", "--user", "1"], "run artifact"),
                             (current(run) / "manifest.json", ["recommend", "--user", "1"], "run manifest"),
                             (data / "test.parquet", ["evaluate"], "prepared dataset file"),
                             # (another patience: a finished run's resume with its own config reads no checkpoint)
                             (run / "checkpoint.pt", ["train", "--resume", "--set", "train.patience=7"], "checkpoint")):
        assert path.is_file()
        mode = path.stat().st_mode
        path.chmod(0)
        try:
            p = subprocess.run([*drop, sys.executable, "-m", "embedrec", *args, *sets], capture_output=True, text=True,
                               cwd=tmp_path, timeout=120)
        finally:
            path.chmod(mode)
        assert p.returncode == 1 and p.stderr.splitlines()[-1] == (
            f"error: cannot read {what} '{path}' (permission denied); check its permissions and its folders' (ls -l), "
            "or run as a user who may read them"), p.stderr


def test_a_folder_it_may_not_enter_is_said_as_a_read_by_verify_and_train(base, tmp_path):
    """A red team (as a user without root's bypass): `verify` of a run whose model folder was chmod 000 said
    'permission denied on 'RUN/current/manifest.json'; check its permissions, or write to a folder you may write
    to (run.dir, or -o ...)', a writer's advice for a read (layout.has_manifest's Path.exists raised); verify and
    train of a dataset whose generation was so said it too. Each says what it cannot read, as the other commands
    do."""
    import subprocess
    import sys

    drop = []
    if os.geteuid() == 0:  # root reads anything: drop that right for the commands run here
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
        if not shutil.which("setpriv") or subprocess.run([*drop, "true"]).returncode != 0:
            pytest.skip("runs as root, and setpriv cannot drop its file-permission bypass here")
    run, ds = copy_run(base[1], tmp_path / "run"), copy_run(base[0], tmp_path / "ds")
    advice = "(permission denied); check its permissions and its folders' (ls -l), or run as a user who may read them"
    model, gen = current(run), current(ds)
    for folder, args, said in (
            (model, ["verify", run], f"cannot read run manifest '{model / 'manifest.json'}' {advice}"),
            (model, ["verify", run / "current"], f"cannot read folder '{run / 'current'}' {advice}"),  # (not click's
            # usage error, exit 2: "Directory ... is not readable")
            (model, ["evaluate", "--run", run], f"cannot read run manifest '{model / 'manifest.json'}' {advice}"),
            (gen, ["verify", ds], f"cannot read prepared dataset folder '{gen}' {advice}"),
            (gen, ["train", "--set", f"data.prepared={ds}", "--set", f"run.dir={tmp_path / 'r2'}"],
             f"cannot read prepared dataset folder '{gen}' {advice}")):
        folder.chmod(0)
        try:
            p = subprocess.run([*drop, sys.executable, "-m", "embedrec", *map(str, args)], capture_output=True,
                               text=True, cwd=tmp_path, timeout=120)
        finally:
            folder.chmod(0o755)
        assert p.returncode == 1 and p.stderr.splitlines()[-1] == f"error: {said}", (args, p.stderr)


def test_the_model_served_before_a_publish_is_kept_even_after_a_rollback_by_hand(tmp_path, caplog):
    """An ops review: with `current` rolled back by hand to an older folder, the next publish pruned that folder
    (only the newest two were kept) while it said 'the one it served before (...) is kept beside it'."""
    import logging

    from embedrec.fsutil.generations import current_link, swap_link
    from embedrec.run_publish import publish

    def write(tmp):
        (tmp / "manifest.json").write_text("{}")

    run = tmp_path / "run"
    run.mkdir()
    first = publish(run, write).name
    publish(run, write)
    swap_link(run, first)  # the rollback, as docs/reliability.md says to make it
    with caplog.at_level(logging.INFO, logger="embedrec"):
        newest = publish(run, write).name
    assert current_link(run) == newest and (run / first).is_dir()
    assert f"the one it served before ({first}) is kept beside it" in caplog.text
    publish(run, write)  # and the publish after that prunes it as any older folder
    assert not (run / first).exists()


def test_a_publish_of_a_much_smaller_model_is_warned_of(tmp_path, caplog):
    """An ops review: a day's file of 300 new users, ingested as the whole data, replaced a 20,000-user model with
    exit 0 and no word; now a warning says so and how to serve the old one again."""
    import logging

    from embedrec.run_publish import publish

    def model(users, movies):
        def write(tmp):
            (tmp / "manifest.json").write_text(json.dumps({"n_users": users, "n_movies": movies}))
        return write

    run = tmp_path / "run"
    run.mkdir()
    old = publish(run, model(20000, 5000)).name
    with caplog.at_level(logging.INFO, logger="embedrec"):
        publish(run, model(15000, 4800))  # a normal day: no warning
        assert "now serves a model of" not in caplog.text
        publish(run, model(300, 4800))
    assert "now serves a model of 300 users x 4,800 movies, where the one it replaced (" in caplog.text
    assert "had 15,000 x 4,800: if the data was cut short, serve that one again (docs/reliability.md, 'Rolling back " \
        "a model')" in caplog.text and old not in caplog.text.split("now serves a model of")[1]


def test_a_removed_current_link_beside_published_models_says_to_link_one_again(base, tmp_path):
    """A red team: with `current` removed by hand, recommend said the training was interrupted and to resume it,
    while the run's published model folder was whole."""
    _, run = base
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    newest = os.readlink(copy / "current")
    (copy / "current").unlink()
    r = invoke("recommend", "--run", copy, "--user", "1", "-k", "3")
    assert r.exit_code == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert f"'{copy / 'current'}', the link to the model folder the run serves, is missing (removed by hand?), while " \
        f"the run holds 1 published model folder: link the newest again (ln -s {newest} {copy / 'current'}), then " \
        f"check it with embedrec verify {copy}" in r.stderr, r.stderr
    os.symlink(newest, copy / "current")
    assert invoke("recommend", "--run", copy, "--user", "1", "-k", "3").exit_code == 0


def test_a_run_without_current_is_said_alike_by_verify_and_the_readers(base, tmp_path):
    """A red team: a train killed between its publish rename and its `current` link (or killed mid-training) left a
    folder that verify called "neither a run (no 'current'), a prepared dataset ... nor an export folder", while the
    readers said to link the model again (or to resume), and train --resume, which recovers it, was named by none.
    run.unpublished_error is the one line of all: a published model folder with the training's checkpoints names
    both ways on, checkpoints alone the resume, a model folder alone the link."""
    from embedrec.run_layout import CHECKPOINT, training_files

    def link(run, n):
        return (f"error: '{run / 'current'}', the link to the model folder the run serves, is missing (removed by "
                f"hand?), while the run holds {n} published model folder{'s' if n > 1 else ''}: link the newest again "
                f"(ln -s {os.readlink(run / 'current')} {run / 'current'}), then check it with embedrec verify {run}")

    def resume(run):
        return f"'embedrec train --resume --run {run}' and the -c/--set it was started with"

    trained = [f"--set={k}" for k in (f"data.prepared={base[0]}", "model.dim=4", "train.epochs=2",
                                      "model.objective=explicit", "train.optimizer=adam")]
    run = copy_run(base[1], tmp_path / "run")
    said = f"{link(run, 1)}; or, where a train was stopped as it published (its checkpoints are there), finish it " \
           f"with {resume(run)}"
    newest = os.readlink(run / "current")
    (run / "current").unlink()  # as a kill before the link leaves it
    assert training_files(run, CHECKPOINT)
    f = tmp_path / "new.csv"
    f.write_text("user_id,movie_id,rating\n9001,1,5\n")
    for args in (["verify", run], ["recommend", "--user", 1, "--run", run], ["index", "rebuild", "--run", run],
                 ["update-users", "--ratings", f, "--run", run]):
        r = invoke(*args)
        assert (r.exit_code, r.stdout) == (1, "") and one_line(r) == said, (args, r.stderr)
    stopped = copy_run(run, tmp_path / "stopped")  # killed mid-training: checkpoints, no model folder
    shutil.rmtree(stopped / newest)
    for args in (["verify", stopped], ["recommend", "--user", 1, "--run", stopped]):
        r = invoke(*args)
        assert r.exit_code == 1 and one_line(r) == (f"error: no trained model in '{stopped}': its training was "
                                                    f"interrupted; finish it with {resume(stopped)}"), r.stderr
    r = invoke("train", "-q", "--resume", *trained, "--run", run)  # the resume named publishes the model again
    assert r.exit_code == 0 and invoke("verify", run).exit_code == 0, r.stderr
    said = link(run, 2)
    (run / "current").unlink()
    for p in training_files(run, CHECKPOINT):
        p.unlink()
    r = invoke("verify", run)  # no checkpoints: the link alone, as recommend says it
    assert r.exit_code == 1 and one_line(r) == said, r.stderr


def test_index_rebuild_says_a_damaged_array_by_its_checksum_before_the_array_checks(base, tmp_path):
    """index rebuild hashes each file it carries over as it copies it, then runs the readers' checks of the arrays
    memory-mapped (verify.check_run_arrays, which read each in full before: a review): a seen movie row damaged out
    of range, not sealed again, is said by its checksum, as before, not as the row the unhashed check would meet
    first; nothing is published."""
    run = copy_run(base[1], tmp_path / "flip")
    was = os.readlink(run / "current")
    p = current(run) / "seen_indices.npy"
    b = bytearray(p.read_bytes())
    b[-1] ^= 0x40  # the last movie row's high byte: 2**30 more
    p.write_bytes(bytes(b))
    r = invoke("index", "rebuild", "--run", run)
    assert r.exit_code == 1 and one_line(r) == (
        f"error: run artifact '{p}' does not match its checksum (damaged or modified); {retrain(run)}"), r.stderr
    assert os.readlink(run / "current") == was


def test_a_resume_removes_the_temporaries_a_killed_checkpoint_write_left(base, tmp_path):
    """A red team: a train killed while it wrote a checkpoint (or the epoch log, or a warm-start key) left
    `.checkpoint.pt.XXXXXXXX` beside the complete one, and `train --resume` left it for good (a whole checkpoint's
    size). A publish, a resume's (or a resume that finds the run finished) too, removes such temporaries, in the run
    folder and the candidates' folders; the checkpoints, a user's files and links stay."""
    run = copy_run(base[1], tmp_path / "run")
    cand = run / "als-reg-0.01"
    cand.mkdir()
    temps = [run / ".checkpoint.pt.ri8vkmsw", run / ".metrics.jsonl.a1b2c3d4", cand / ".warm-start.json.zz_99x0a"]
    kept = [run / ".checkpoint.pt.notes", cand / "my-notes.txt"]
    for p in temps + kept:
        p.write_bytes(b"x" * 10)
    (run / ".checkpoint.pt.linkedxx").symlink_to(kept[1])
    r = invoke("train", "-q", "--set", f"data.prepared={base[0]}", "--set", f"run.dir={run}", *BASE_TRAIN, "--resume")
    assert r.exit_code == 0, r.stderr
    assert not any(p.exists() for p in temps) and all(p.exists() for p in kept)
    assert (run / "checkpoint.pt").exists() and (run / ".checkpoint.pt.linkedxx").is_symlink()


def test_a_damaged_export_record_is_named_and_overwrite_says_the_way_on(base, tmp_path):
    """A red team: a flipped bit in an export's .embedrec-export.json was said by verify as a damaged (healthy)
    movie_ids.npy, and `--overwrite` then refused the folder as holding files changed since, or (the record emptied)
    files export did not write. The record is sealed: verify names it, and --overwrite says to remove the folder
    by hand, as it cannot tell export's files from the user's."""
    out = tmp_path / "ex"
    assert invoke("export", "--run", base[1], "--to", "npy", "-o", out, "-q").exit_code == 0
    record = out / ".embedrec-export.json"
    assert json.loads(record.read_text())["manifest_sha256"]
    text = record.read_text()
    record.write_text(text.replace('"to": "npy"', '"to": "npz"'))  # valid JSON, its seal now wrong
    r = invoke("verify", out)
    assert r.exit_code != 0 and f"export record '{record}' does not match its checksum" in one_line(r)
    assert "rm -r" in r.stderr
    for damaged in (text.replace('"to": "npy"', '"to": "npz"'), ""):
        record.write_text(damaged)
        r = invoke("export", "--run", base[1], "--to", "npy", "-o", out, "--overwrite", "-q")
        line = one_line(r)
        assert r.exit_code == 2 and f"'{record}', export's record of what it wrote in '{out}', is damaged (" in line
        assert "cannot tell its files from yours; check the folder and remove it (rm -r it)" in line
        assert (out / "movie_ids.npy").exists()  # nothing deleted
    record.write_text(text)  # as written: verified and replaced as before
    assert invoke("verify", out).exit_code == 0
    assert invoke("export", "--run", base[1], "--to", "npy", "-o", out, "--overwrite", "-q").exit_code == 0


def test_a_resealed_manifest_without_its_index_record_is_refused_in_one_line(base, tmp_path):
    """A red team: a run manifest resealed without its 'index' record passed verify, then recommend --user failed as
    an internal error (KeyError: 'index'). Every run writes it: its absence is named, by verify and by the reader."""
    from embedrec.fsutil.integrity import seal

    run = copy_run(base[1], tmp_path / "run")
    path = current(run) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.pop("index")
    path.write_text(json.dumps(seal(manifest)))
    for args in (("verify", run), ("recommend", "--run", run, "--user", "1", "-k", "1")):
        r = invoke(*args)
        assert r.exit_code == 1 and "has no 'index'; the file was edited or damaged" in one_line(r), r.stderr


def test_a_finished_runs_resume_on_a_dataset_with_a_floor_trains_nothing(tmp_path):
    """A review: on a dataset ingested with data.min_rating (its rated_below.parquet in the generation, not linked at
    the folder's top) a finished run's resume found its dataset's sizes 'changed' and replayed every fit, and a
    cross-validation rerun trained each fold again. It finds the run finished."""
    csv = write_csv(tmp_path / "r.csv")
    ds, run = tmp_path / "ds", tmp_path / "run"
    assert invoke("ingest", "-q", csv, "-o", ds, "--set", "data.min_rating=3").exit_code == 0
    assert (Path(os.path.realpath(ds / "manifest.json")).parent / "rated_below.parquet").exists()
    sets = ("--set", f"data.prepared={ds}", "--set", f"run.dir={run}", "--set", "data.min_rating=3", "--set",
            "train.als_dims=[]")
    assert invoke("train", "-q", *sets).exit_code == 0
    r = invoke("train", *sets, "--resume")
    assert r.exit_code == 0 and f"nothing to resume: {run} is finished" in r.stderr, r.stderr


def test_no_model_and_no_dataset_names_calls_the_library_has(tmp_path, monkeypatch):
    """A review: er.open of an empty run with no dataset advised er.train_run(...), which embedrec does not export."""
    import embedrec as er
    from embedrec.errors import ArtifactError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArtifactError) as e:
        er.open("runs/mine")
    assert "ds = er.ingest(source, cfg), then er.train(ds, cfg).save('runs/mine')" in str(e.value)
    assert "train_run" not in str(e.value) and hasattr(er, "train") and hasattr(er, "ingest")


def test_a_stop_raised_in_a_finalizer_is_sent_again_not_lost(capfd):
    """A red team: a SIGTERM whose Terminated came inside matplotlib's weakref callback (a finalizer, where Python
    cannot raise) printed 'Exception ignored ... Terminated' with a traceback, and the export went on to exit 0.
    While a command takes signals (cli.app.sigterm_as_interrupt), such a stop is sent again, so the work stops at
    its next step; other unraisable errors are Python's to print as before."""
    from embedrec.cli.signals import sigterm_as_interrupt
    from embedrec.errors import Terminated

    class Dies:
        def __del__(self):
            raise Terminated(signal.SIGTERM)

    steps = [0]
    with pytest.raises(Terminated):
        with sigterm_as_interrupt():
            Dies()  # collected at once: its __del__'s Terminated is unraisable
            while steps[0] < 200:
                steps[0] += 1
                time.sleep(0.005)
    assert steps[0] < 200 and "Exception ignored" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler) or \
        callable(signal.getsignal(signal.SIGTERM))


@pytest.mark.parametrize("stop", ["error", "sigterm"])
def test_an_export_of_several_outputs_stopped_part_way_names_what_it_wrote(base, tmp_path, monkeypatch, stop):
    """A red team: `export --to parquet -o M/emb --topk-all M/top.csv --plot M/map.png` stopped by SIGTERM (or a
    full disk) at the plot said 'nothing half-written was left behind' (or named the plot alone) with M/emb and
    M/top.csv published and stdout empty, and the rerun was refused as 'already exists'. The line names what was
    written in full before it, and how to go on."""
    from embedrec.errors import DataError, Terminated
    from embedrec.models import Model

    def fails(*a, **k):
        if stop == "sigterm":
            raise Terminated(signal.SIGTERM)
        raise DataError(f"no space left on device writing '{tmp_path / 'map.png'}'")
    monkeypatch.setattr(Model, "plot_map", fails)
    r = invoke("export", "--run", base[1], "--to", "parquet", "-o", tmp_path / "emb", "--topk-all",
               tmp_path / "top.csv", "-k", "3", "--plot", tmp_path / "map.png")
    assert r.exit_code == (143 if stop == "sigterm" else 1) and r.stdout == "", r.stderr
    said = (f"; written in full before it: {tmp_path / 'emb'}, {tmp_path / 'top.csv'} (the outputs after it were "
            "not: rerun for those alone, or with --overwrite)")
    first = "terminated (SIGTERM): nothing half-written was left behind" if stop == "sigterm" else \
        "error: no space left on device writing"
    last = r.stderr.splitlines()[-1]
    assert last.startswith(first) and last.endswith(said), r.stderr
    assert (tmp_path / "emb").is_dir() and (tmp_path / "top.csv").is_file() and not (tmp_path / "map.png").exists()


def test_a_finished_run_whose_served_file_is_damaged_is_published_again_by_resume(base, tmp_path):
    """A red team: `train --resume` of a finished run whose user_factors.npy had one bit flipped (or user_ids.npy
    deleted) said 'nothing to resume: ... is finished', exit 0, and the run stayed unservable. The resume checks
    the files the published model lists and publishes it again from the complete checkpoints."""
    ds, run = base
    for damage in ("flip", "delete"):
        r2 = copy_run(run, tmp_path / damage)
        target = current(r2) / ("user_factors.npy" if damage == "flip" else "user_ids.npy")
        flip(target) if damage == "flip" else target.unlink()
        sets = ["--set", f"data.prepared={ds}", "--set", f"run.dir={r2}", "--set", "model.dim=4", "--set",
                "train.epochs=2", "--set", "model.objective=explicit", "--set", "train.optimizer=adam"]
        r = invoke("train", "--resume", "-q", *sets)
        assert r.exit_code == 0 and "is finished" not in r.stderr, r.stderr
        r = invoke("recommend", "--run", r2, "--user", "1", "-k", "2", "-q")
        assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3, r.stderr
        assert invoke("verify", r2).exit_code == 0
        r = invoke("train", "--resume", *sets)  # now whole: finished, as before
        assert r.exit_code == 0 and f"nothing to resume: {r2} is finished" in r.stderr, r.stderr
    # its index alone damaged: the model is whole, so index rebuild is the way on, not a new publish (a review:
    # the resume's publish dropped the users update-users had added)
    r3 = copy_run(run, tmp_path / "index")
    flip(next(p for p in current(r3).iterdir() if p.name.endswith(".faiss")))
    sets = ["--set", f"data.prepared={ds}", "--set", f"run.dir={r3}", "--set", "model.dim=4", "--set",
            "train.epochs=2", "--set", "model.objective=explicit", "--set", "train.optimizer=adam"]
    before = current(r3).name
    r = invoke("train", "--resume", *sets)
    assert r.exit_code == 1 and f"nothing to resume: {r3} is finished, but its index file '" in r.stderr, r.stderr
    assert "embedrec index rebuild" in r.stderr and current(r3).name == before
    assert invoke("index", "rebuild", "-q", "--run", r3).exit_code == 0
    r = invoke("train", "--resume", *sets)
    assert r.exit_code == 0 and f"nothing to resume: {r3} is finished" in r.stderr, r.stderr


def test_a_writer_that_exited_unreaped_is_not_alive_and_its_temporaries_are_swept(tmp_path):
    """A red team: a writer killed with `timeout -s KILL` stays a zombie where nothing reaps orphans (PID 1 of a
    container), and os.kill(pid, 0) says a zombie is there, so its `.c.embedrec-tmp-PID-*` was never removed, where
    reliability.md says the next writer removes it. A zombie is no live writer (/proc's state)."""
    from embedrec.fsutil.files import pid_alive
    from embedrec.fsutil.outputs import atomic_dir

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.time() + 10
        while time.time() < deadline:  # exited, not reaped: a zombie
            with open(f"/proc/{child.pid}/stat", "rb") as fh:
                if fh.read().rpartition(b")")[2].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        os.kill(child.pid, 0)  # (what the check was: it says the zombie is there)
        assert not pid_alive(child.pid) and pid_alive(os.getpid())
        left = tmp_path / f".c.embedrec-tmp-{child.pid}-abcdefgh"
        left.mkdir()
        (left / "a.csv").write_text("half")
        with atomic_dir(tmp_path / "c", command="embedrec export") as tmp:
            (tmp / "a.csv").write_text("whole")
        assert not left.exists() and (tmp_path / "c" / "a.csv").read_text() == "whole"
    finally:
        child.wait()


def test_an_overwrite_by_a_dataset_of_under_half_the_ratings_is_warned(tmp_path, caplog):
    """An ops review: a nightly job's source cut to one day's rows (30,000 ratings to 3,000) replaced the dataset,
    exit 0 and no word. The ingest that replaces a dataset with under half its ratings, users or movies says so,
    naming the figures; a grown or like-sized one says nothing."""
    import embedrec as er

    rng = np.random.default_rng(0)
    big = pd.DataFrame({"user_id": rng.integers(0, 200, 3000), "movie_id": rng.integers(0, 100, 3000),
                        "rating": rng.integers(1, 6, 3000)})
    out = tmp_path / "ds"
    caplog.set_level(logging.WARNING, "embedrec")
    er.ingest(big, output=out)
    er.ingest(big.head(2800), output=out, overwrite=True)
    assert "the dataset now holds" not in caplog.text
    er.ingest(big.head(300), output=out, overwrite=True)
    said = [r.getMessage() for r in caplog.records if "the dataset now holds" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"{out}: the dataset now holds 297 ratings where it held 2,")
    assert "ingest the whole file again before training" in said[0]


def test_a_copy_of_the_dataset_is_read_where_its_folder_was_re_ingested(tmp_path, caplog):
    """An ops review: a nightly job kept a copy of the dataset beside a model it rolled back to; the folder was
    re-ingested since, and `history --set data.prepared=COPY` was told the copy was not read (the recorded folder
    'is still there'). The copy is read where the recorded folder holds another dataset and the copy the run's;
    a copy of another dataset still is not."""
    import embedrec as er
    from embedrec.data.layout import moved_to

    rng = np.random.default_rng(1)
    rows = pd.DataFrame({"user_id": rng.integers(0, 50, 600), "movie_id": rng.integers(0, 40, 600),
                         "rating": rng.integers(1, 6, 600)})
    out, copy = tmp_path / "ds", tmp_path / "ds-copy"
    first = er.ingest(rows, output=out).manifest["fingerprint"]
    shutil.copytree(out, copy, symlinks=False)
    second = er.ingest(rows.head(500), output=out, overwrite=True).manifest["fingerprint"]
    assert first != second
    caplog.set_level(logging.INFO, "embedrec")
    assert moved_to(str(out), str(copy), first) == copy
    assert "reading the dataset in" in caplog.text
    assert moved_to(str(out), str(copy), second) is None  # the copy is not the run's: the recorded one, warned
    assert "is not read: the run was trained on" in caplog.text
