"""Cold start of `embedrec recommend` (issue 15): serving reads .npy ids and a JSON catalogue, never pyarrow
(nor FAISS for an exact index, nor yaml without a config file); runs written before those files still serve."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.errors import ArtifactError
from embedrec.fsutil.integrity import seal
from embedrec.run import load_run
from embedrec.run_layout import CATALOGUE
from embedrec.serve.recommender import Recommender

CATALOGUE_FILES = ("user_ids.npy", "movie_ids.npy", CATALOGUE)


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def _csv(path: Path, user_prefix: str = "", movie_prefix: str = "") -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    rows = ["user_id,movie_id,rating,timestamp"]
    for u in range(1, 31):
        for m in rng.choice(np.arange(1, 21), size=10, replace=False):
            rows.append(f"{user_prefix}{u},{movie_prefix}{m},{rng.integers(1, 6)},{1000 + u * 40 + int(m)}")
    path.write_text("\n".join(rows) + "\n")
    movies = path.with_name(path.stem + "-movies.csv")
    movies.write_text("movie_id,title,genres\n" + "\n".join(
        f'{movie_prefix}{m},"Film {m}, The ({1980 + m})",{"Comedy|Drama" if m % 2 else "Action"}'
        for m in range(1, 21)) + "\n")
    return path, movies


def _train(tmp: Path, name: str, *extra: str) -> Path:
    csv, movies = _csv(tmp / f"{name}.csv", *extra)
    ds, run = tmp / f"{name}-ds", tmp / f"{name}-run"
    sets = ["--set", f"data.movies={movies}"] + (["--set", "data.id_type=str"] if extra else [])
    r = invoke("ingest", "-q", csv, "-o", ds, *sets)
    assert r.exit_code == 0, r.stderr
    r = invoke("train", "-q", "--set", f"data.prepared={ds}", "--run", run, "--set", "model.dim=4",
               "--set", "train.epochs=2", "--set", "train.threads=1", "--format", "json")
    assert r.exit_code == 0, r.stderr
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cold")
    return {"int": _train(tmp, "int"), "str": _train(tmp, "str", "u-", "tt")}


def _current(run: Path) -> Path:
    return Path(os.path.realpath(run / "current"))


def _as_written_before(run: Path, dest: Path) -> Path:
    """A copy of ``run`` as embedrec wrote runs before the catalogue files: without them or their checksums."""
    shutil.copytree(run, dest, symlinks=True)
    folder = _current(dest)
    for name in CATALOGUE_FILES:
        (folder / name).unlink()
    m = json.loads((folder / "manifest.json").read_text())
    m["checksums"] = {k: v for k, v in m["checksums"].items() if k not in CATALOGUE_FILES}
    (folder / "manifest.json").write_text(json.dumps(seal(m)))
    return dest


@pytest.mark.parametrize("kind", ["int", "str"])
def test_catalogue_holds_what_the_parquet_files_hold(runs, kind, tmp_path):
    new = Recommender.open(runs[kind])
    old = Recommender.open(_as_written_before(runs[kind], tmp_path / "old"))
    assert set(CATALOGUE_FILES) <= set(load_run(runs[kind]).manifest["checksums"])  # verified like every file
    for attr in ("user_ids", "movie_ids"):
        a, b = getattr(new, attr), getattr(old, attr)
        assert a.dtype == b.dtype and a.tolist() == b.tolist()
        assert all(type(x) is type(y) for x, y in zip(a.tolist(), b.tolist()))
    assert (new.titles, new.years, new.genres) == (old.titles, old.years, old.genres)
    assert new.titles[0] == "Film 1, The" and new.years[0] == 1981 and new.genres[0] == ["Comedy", "Drama"]
    if kind == "str":
        assert new.user_ids.dtype == object and new.user_rows(["u-7", "u-77", "u-"])[0].tolist()[1:] == [-1, -1]


@pytest.mark.parametrize("kind,user", [("int", "7"), ("str", "u-7")])
def test_a_run_written_before_the_catalogue_serves_the_same_rows(runs, kind, user, tmp_path):
    old = _as_written_before(runs[kind], tmp_path / "old")
    for args in (["--user", user], ["--movie", "Film 3, The (1983)"], ["--liked", "tt3" if kind == "str" else "3"]):
        a = invoke("recommend", "--run", runs[kind], "-k", "4", "--format", "jsonl", *args)
        b = invoke("recommend", "--run", old, "-k", "4", "--format", "jsonl", *args)
        assert a.exit_code == 0 and b.exit_code == 0, (a.stderr, b.stderr)
        assert a.stdout == b.stdout and len(a.stdout.splitlines()) == 4


def test_a_damaged_catalogue_is_refused_in_one_line(runs, tmp_path):
    run = tmp_path / "bad"
    shutil.copytree(runs["int"], run, symlinks=True)
    p = _current(run) / CATALOGUE
    p.write_text(p.read_text().replace("Film 2,", "Film 9,"))
    r = invoke("recommend", "--run", run, "--user", "7")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (f"error: run artifact '{p}' does not match its checksum (damaged or modified); "
                                f"rerun 'embedrec train --run {run}' with the -c/--set it was trained with")


def test_a_run_written_before_the_catalogue_refuses_a_damaged_parquet_file(runs, tmp_path):
    """Such a run's ids and titles come from users/movies.parquet: read checked, as every run file (they were
    read straight from the path, a damaged copy served as it was; an architecture review)."""
    old = _as_written_before(runs["int"], tmp_path / "old")
    p = _current(old) / "movies.parquet"
    t = pq.read_table(p)
    pq.write_table(t.set_column(t.column_names.index("title"), "title", pa.array(["x"] * len(t))), p)
    r = invoke("recommend", "--run", old, "--user", "7")
    assert r.exit_code == 1 and r.stderr.startswith(f"error: run artifact '{p}' is damaged ")
    assert r.stderr.strip().endswith(f"rerun 'embedrec train --run {old}' with the -c/--set it was trained with")
    assert len(r.stderr.splitlines()) == 1


def test_a_catalogue_that_does_not_fit_the_run_is_refused(runs, tmp_path):
    run = tmp_path / "short"
    shutil.copytree(runs["int"], run, symlinks=True)
    folder = _current(run)
    np.save(folder / "user_ids.npy", np.arange(3))
    m = json.loads((folder / "manifest.json").read_text())
    from embedrec.fsutil.integrity import file_entry

    # its checksum recorded again (a forged manifest): only the shape check stands between it and serving
    m["checksums"]["user_ids.npy"] = file_entry(folder / "user_ids.npy")
    (folder / "manifest.json").write_text(json.dumps(seal(m)))
    with pytest.raises(ArtifactError, match=r"user_ids\.npy' does not hold the run's 30 ids"):
        Recommender.open(run)


@pytest.mark.parametrize("mode", [["--user", "7"], ["--users", "-"], ["--movie", "Film 3, The (1983)"],
                                  ["--liked", "3,5"], ["--rated", "3=5,5=1"], ["--similar-users", "7"]])
def test_recommend_process_imports_only_numpy_and_click(runs, mode):
    """A fresh `recommend` on an exact index, in every mode (a user, users from stdin, similar movies, a new
    user): scored with numpy, so no FAISS, pyarrow, yaml, torch or pandas in the process."""
    exe = Path(sys.executable).with_name("embedrec")
    if not exe.exists():
        pytest.skip("the embedrec console script is not installed next to this Python")
    assert json.loads((_current(runs["int"]) / "manifest.json").read_text())["index"]["kind"] == "flat"
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    p = subprocess.run([str(exe), "recommend", "--run", str(runs["int"]), *mode, "-k", "2"], input="7\n8\n",
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(p.stdout.splitlines()) == (5 if mode[0] == "--users" else 3)
    imported = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "numpy" in imported and "click" in imported  # the profile was really taken
    heavy = {m for m in imported if m.split(".")[0] in ("pyarrow", "faiss", "yaml", "torch", "pandas")}
    assert not heavy, sorted(heavy)


def test_history_and_similar_users_take_text_ids(runs):
    """A run of text ids ('u-7', 'tt3'): history lists the user's ten movies under their ids, newest first;
    similar users are other users' text ids."""
    r = invoke("history", "--run", runs["str"], "--user", "u-7", "--format", "jsonl")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.exit_code == 0 and len(rows) == 10, r.stderr
    assert {x["user_id"] for x in rows} == {"u-7"} and all(x["movie_id"].startswith("tt") for x in rows)
    assert [x["time"] for x in rows] == sorted((x["time"] for x in rows), reverse=True)
    assert all(x["title"] == f"Film {x['movie_id'][2:]}, The" for x in rows)
    r = invoke("recommend", "--run", runs["str"], "--similar-users", "u-7", "-k", "3", "--format", "jsonl")
    users = [json.loads(line)["user_id"] for line in r.stdout.splitlines()]
    assert r.exit_code == 0 and len(users) == 3 and all(u.startswith("u-") and u != "u-7" for u in users)


def test_predict_on_a_ranking_model_says_an_unknown_id_gets_no_score(runs):
    """A review: predict on an implicit run said "scored without it (fallback user_unknown)" over an empty score,
    and a pair unknown on both sides named only the user. A ranking model has no biases to fall back on."""
    r = invoke("predict", "--run", runs["int"], "--pairs", "-", "--format", "csv", input="7,3\n99999,3\n99999,88888\n")
    assert r.exit_code == 0, r.stderr
    assert [line.split(",")[2:] for line in r.stdout.splitlines()[2:]] == [["user_unknown", ""], ["both", ""]]
    assert "<stdin>:2: user '99999' is not in the training data; no score (this ranking model has no biases)" in r.stderr
    assert "<stdin>:3: user '99999' and movie '88888' are not in the training data; no score" in r.stderr
    # a passed-through field written as a plain number is a number in JSON; '007' and '3.50' stay text
    r = invoke("predict", "--run", runs["int"], "--pairs", "-", "--format", "jsonl",
               input="user_id,movie_id,rating,code,x\n7,3,3,007,3.50\n7,4,3.5,-2,\n")
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["rating"], x["code"], x["x"]) for x in rows] == [(3, "007", "3.50"), (3.5, -2, "")]
