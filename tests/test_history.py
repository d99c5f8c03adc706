"""A user's history with titles (serve/history.py, Model.history, embedrec history) and the users most like a user
(serve/similar_users.py, Model.similar_users, recommend --similar-users): by hand, on tiny runs whose every
rating and time the test wrote, and through the CLI (stdout and stderr apart)."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec.cli import main
from embedrec.errors import ArtifactError, NotFoundError, UsageError
from embedrec.model.factors import Factors
from embedrec.models import Model
from embedrec.results import History, _utc
from embedrec.serve import history as hist
from embedrec.serve.recommender import Recommender

N_USERS, N_MOVIES = 30, 24
T0 = 1_000_000_000


def _ratings() -> pd.DataFrame:
    """User u rates the movies m with (u + m) % 3 != 0, rating 1 + (u * 7 + m) % 5 at T0 + u * 10_000 + ((m * 7) %
    N_MOVIES) * 60: each user's times in another order than their movie ids, none equal."""
    rows = [(u, m, float(1 + (u * 7 + m) % 5), T0 + u * 10_000 + ((m * 7) % N_MOVIES) * 60)
            for u in range(1, N_USERS + 1) for m in range(1, N_MOVIES + 1) if (u + m) % 3]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def _movies(folder: Path) -> Path:
    """Titles 'Film 01' ... with years and genres; movie 5 has no title."""
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "movies.csv"
    lines = ["movie_id,title,genres"] + [f"{m},{'' if m == 5 else f'Film {m:02d} ({1990 + m})'},"
                                         f"{'Comedy' if m % 2 else 'Drama|War'}" for m in range(1, N_MOVIES + 1)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _train(tmp: Path, frame: pd.DataFrame, *sets: str):
    cfg = er.load_config(None, [f"data.prepared={tmp / 'ds'}", f"run.dir={tmp / 'run'}", f"data.movies={_movies(tmp)}",
                                "model.dim=4", "train.epochs=2", "train.threads=1", "train.als_dims=[]", *sets])
    ds = er.ingest(frame, cfg)
    model = er.train(ds, cfg)
    model.save()
    return cfg, ds, model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A default (als) run of _ratings() with titles, trained and saved; (cfg, ds, the model in memory, opened)."""
    tmp = tmp_path_factory.mktemp("history")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        cfg, ds, model = _train(tmp, _ratings())
    return cfg, ds, model, er.open(cfg.run.dir, cfg)


def _split_of(ds) -> dict:
    """{(user id, movie id): split} from the dataset's own split_frame: the join history saves a user writing."""
    out = {}
    for s in ("train", "valid", "test"):
        f = ds.split_frame(s)
        out.update({(u, m): s for u, m in zip(f.user_id.tolist(), f.movie_id.tolist())})
    return out


# ------------------------------------------------------------------------------------ by hand
def _rated(movies, ratings, times, parts) -> hist.Rated:
    return hist.Rated(np.asarray(movies, np.int64), np.asarray(ratings, np.float64),
                      None if times is None else np.asarray(times, np.float64), np.asarray(parts, np.int8), False,
                      Path("."))


def test_the_orders_by_hand():
    """Five rows: times 30, 10, 20, 20 and none (a rated_below row: no rating either)."""
    r = _rated([3, 1, 2, 0, 4], [2, 5, 4, 5, np.nan], [30, 10, 20, 20, np.nan], [0, 1, 2, 0, 3])
    titles = ["b", "Ä", "", "c", "a"]  # movie rows 0..4; row 2 untitled
    # newest first; the two at 20 by split (train before test), the row without a time last
    assert r.movies[hist.order(r, "time", titles)].tolist() == [3, 0, 2, 1, 4]
    # highest first; the two 5s newest first; no rating last
    assert r.movies[hist.order(r, "rating", titles)].tolist() == [0, 1, 2, 3, 4]
    # A to Z without case or accents ('Ä' as 'a', before 'a' by movie row), the untitled movie last
    assert r.movies[hist.order(r, "title", titles)].tolist() == [1, 4, 0, 3, 2]
    assert hist.order(_rated([], [], None, []), "rating", titles).size == 0
    # an update's rows (part 4: no rating, no time) come first newest first, made after every row of the dataset,
    # and after the rows with a rating by rating
    u = _rated([3, 1, 5, 4], [2, 5, np.nan, np.nan], [30, 10, np.nan, np.nan], [0, 1, 4, 3])
    assert u.movies[hist.order(u, "time", titles + ["z"])].tolist() == [5, 3, 1, 4]
    assert u.movies[hist.order(u, "rating", titles + ["z"])].tolist() == [1, 3, 4, 5]
    # an update's row with its file's time and rating (run_layout.UPDATE_PAIRS) is placed by them among the others
    u = _rated([3, 1, 5, 4, 6], [2, 5, np.nan, np.nan, 3], [30, 10, np.nan, np.nan, 20], [0, 1, 4, 3, 4])
    assert u.movies[hist.order(u, "time", titles + ["z", "y"])].tolist() == [5, 3, 6, 1, 4]
    assert u.movies[hist.order(u, "rating", titles + ["z", "y"])].tolist() == [1, 6, 3, 4, 5]


def test_with_updates_by_hand():
    """Seen movies 0-4 in the run; the dataset holds 0 (train), 1 (valid), 2 (rated_below) and 3 and 6 (test):
    3 and 4 are the update's (3 also a test row), listed with no rating or time; asked parts only."""
    r = _rated([0, 1, 2, 3, 6], [4, 3, np.nan, 5, 2], [10, 20, np.nan, 30, 40], [0, 1, 3, 2, 2])
    got = hist.with_updates(r, np.array([0, 1, 2, 3, 4]), hist.PARTS)
    assert got.movies.tolist() == [0, 1, 2, 3, 6, 3, 4] and got.parts.tolist() == [0, 1, 3, 2, 2, 4, 4]
    assert np.isnan(got.ratings[-2:]).all() and np.isnan(got.times[-2:]).all()
    only = hist.with_updates(r, np.array([0, 1, 2, 3, 4]), ("test", "update"))
    assert only.movies.tolist() == [3, 6, 3, 4] and only.ratings[:2].tolist() == [5, 2]
    assert hist.with_updates(r, np.array([0, 1, 2]), hist.PARTS).movies.tolist() == [0, 1, 2, 3, 6]
    # solved (the seen movies in the user's solve): a rated_below movie among them, which training never solves on,
    # is an update's rating too (an added user's); a train movie among them is not
    got = hist.with_updates(r, np.array([0, 1, 2, 3, 4]), hist.PARTS, solved=np.array([0, 2, 4]))
    assert got.movies.tolist() == [0, 1, 2, 3, 6, 2, 3, 4] and got.parts.tolist() == [0, 1, 3, 2, 2, 4, 4, 4]
    assert hist.with_updates(r, np.array([0, 1, 2]), ("update",), solved=np.array([0, 1])).movies.tolist() == []
    # given (the user's update pairs as the files gave them): each update row's rating and time, NaN where none was
    # given or the movie is not among them (an update before they were kept)
    given = (np.array([9, 4, 2]), np.array([2.0, 1.0, np.nan]), np.array([np.nan, 15.0, 25.0]))
    got = hist.with_updates(r, np.array([0, 1, 2, 3, 4]), hist.PARTS, solved=np.array([2]), given=given)
    assert got.movies[-3:].tolist() == [2, 3, 4] and got.parts[-3:].tolist() == [4, 4, 4]
    np.testing.assert_array_equal(got.ratings[-3:], [np.nan, np.nan, 1.0])
    np.testing.assert_array_equal(got.times[-3:], [25.0, np.nan, 15.0])
    assert got.ratings[:5].tolist()[:2] == [4, 3]  # the dataset's rows as they were


def test_parts():
    assert hist.check_parts(None) == hist.PARTS
    assert hist.check_parts(["test", "train", "test"]) == ("train", "test")
    assert hist.check_parts("valid") == ("valid",)
    for bad in (["tst"], [], 5):
        with pytest.raises(UsageError):
            hist.check_parts(bad)


def test_times_are_iso_8601_in_utc():
    assert _utc(0) == "1970-01-01T00:00:00Z" and _utc(881250949) == "1997-12-04T15:55:49Z"
    assert _utc(float("nan")) is None and _utc(1e20) == str(int(1e20))


# ------------------------------------------------------------------------------------ known answers on a run
def test_a_users_history_is_every_rating_the_test_wrote_newest_first(tiny):
    cfg, ds, model, m = tiny
    frame, split = _ratings(), _split_of(ds)
    mine = frame[frame.user_id == 1]
    h = m.history(1)
    assert isinstance(h, History) and h.user_id == 1 and len(h) == len(mine) == 16
    want = mine.sort_values("timestamp", ascending=False)
    assert list(h.movie_ids) == want.movie_id.tolist()
    assert h.ratings.tolist() == want.rating.tolist() and h.timestamps.tolist() == want.timestamp.tolist()
    assert list(h.splits) == [split[(1, mv)] for mv in want.movie_id]
    assert set(h.splits) == {"train", "valid", "test"}
    rows = list(h.to_rows())
    assert h.columns == ["user_id", "movie_id", "title", "year", "genres", "rating", "time", "split"]
    first = want.iloc[0]
    assert rows[0] == {"user_id": 1, "movie_id": int(first.movie_id), **{k: v for k, v in m.movie(
        int(first.movie_id)).items() if k != "movie_id"}, "rating": first.rating, "time": _utc(first.timestamp),
        "split": split[(1, int(first.movie_id))]}
    # every user: the join of split_frame's rows with movie() a user would write, as a set
    for u in range(1, N_USERS + 1):
        got = {(r["movie_id"], r["rating"], r["time"], r["split"], r["title"]) for r in m.history(u).to_rows()}
        sub = frame[frame.user_id == u]
        assert got == {(mv, r, _utc(t), split[(u, mv)], m.movie(mv)["title"])
                       for mv, r, t in zip(sub.movie_id, sub.rating, sub.timestamp)}
    # the model in memory (refit: its splits merged there) reads the same rows from the dataset's folder
    assert list(model.history(1).splits) == list(h.splits) and list(model.history(1).movie_ids) == list(h.movie_ids)


def test_sort_k_and_splits(tiny):
    _, ds, _, m = tiny
    mine = _ratings().query("user_id == 2")
    by_rating = m.history(2, sort="rating")
    want = mine.assign(neg=-mine.timestamp).sort_values(["rating", "neg"], ascending=[False, True])
    assert list(by_rating.movie_ids) == want.movie_id.tolist()
    top3 = m.history(2, sort="rating", k=3)
    assert list(top3.movie_ids) == want.movie_id.tolist()[:3]
    test = m.history(2, splits=["test"])
    split = _split_of(ds)
    assert list(test.movie_ids) == [mv for mv in m.history(2).movie_ids if split[(2, mv)] == "test"] and test.splits
    titled = m.history(2, sort="title")
    names = [r["title"] for r in titled.to_rows()]
    assert names == sorted(n for n in names if n) + [None] * names.count(None)  # movie 5's no title: last
    with pytest.raises(UsageError, match="sort="):
        m.history(2, sort="newest")
    with pytest.raises(UsageError, match="k="):
        m.history(2, k=0)


def test_the_summary_counts_what_k_left_out(tiny):
    """A first-hour review: `m.history('cust_00003', k=3)` said '3 movies (3 train)' of a user with 51 ratings. The
    summary says '3 of N movies' with the parts' counts of all N, in the repr, `summary` and the CLI's stderr (-q
    drops it; stdout holds the rows alone); without k, or a k past the rows, as before."""
    cfg, ds, _, m = tiny
    whole = m.history(2)
    n = len(whole)
    by = {s: list(whole.splits).count(s) for s in dict.fromkeys(whole.splits)}
    parts = ", ".join(f"{c} {s}" for s, c in by.items())
    assert n > 3 and len(by) > 1 and whole.total == n
    assert whole.summary == f"user 2, {n} movies ({parts})" and repr(whole).splitlines()[0] == f"<History: user 2, " \
        f"{n} movies ({parts})>"
    top3 = m.history(2, k=3)
    assert (len(top3), top3.total) == (3, n)
    assert repr(top3).splitlines()[0] == f"<History: user 2, 3 of {n} movies ({parts})>"
    assert f"<p>user 2, 3 of {n} movies ({parts})</p>" in top3._repr_html_()
    assert m.history(2, k=n + 5).summary == whole.summary  # nothing left out: as without k
    asked = m.history(2, splits=["train", "test"])
    train, test = list(asked.splits).count("train"), list(asked.splits).count("test")
    one = m.history(2, splits=["train", "test"], k=1)  # the parts asked, all counted
    assert test and one.summary == f"user 2, 1 of {train + test} movies (" + ", ".join(
        f"{c} {s}" for s, c in {s: list(asked.splits).count(s) for s in dict.fromkeys(asked.splits)}.items()) + ")"
    import pickle

    old = pickle.loads(pickle.dumps(top3))  # one pickled before History kept them: its rows alone
    del old.total, old._whole
    assert old.summary == "user 2, 3 movies (" + ", ".join(
        f"{list(top3.splits).count(s)} {s}" for s in dict.fromkeys(top3.splits)) + ")"
    run = ["--run", cfg.run.dir, "--user", "2", "--format", "csv"]
    r = _cli("history", *run, "-k", "3")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4, r.stderr
    assert r.stderr == f"user 2, 3 of {n} movies ({parts}); -k 3 lists the first 3\n", r.stderr
    r = _cli("history", *run, "-k", "3", "-q")
    assert r.exit_code == 0 and r.stderr == "" and len(r.stdout.splitlines()) == 4, r.stderr
    r = _cli("history", *run, "-k", str(n))
    assert r.exit_code == 0 and r.stderr == "", r.stderr


def test_unknown_users_another_dataset_and_a_moved_one(tiny, tmp_path):
    cfg, ds, _, m = tiny
    with pytest.raises(NotFoundError, match="user '999' is not in the training data") as e:
        m.history(999)
    assert e.value.kind == "user"
    with pytest.raises(UsageError):
        m.history(None)
    # a copy elsewhere, given as dataset_dir: the same files, read
    copy = tmp_path / "copy"
    shutil.copytree(ds.path, copy, symlinks=True)
    assert list(m.history(3, dataset_dir=copy).movie_ids) == list(m.history(3).movie_ids)
    # moved_to= (the command's data.prepared) while the recorded folder is there: the recorded one read, said
    with pytest.MonkeyPatch.context() as mp:
        said = []
        mp.setattr(logging.getLogger("embedrec"), "warning", lambda msg, *a: said.append(msg % a))
        assert list(m.history(3, moved_to=tmp_path / "nowhere").movie_ids) == list(m.history(3).movie_ids)
    assert len(said) == 1 and "is not read: the run was trained on" in said[0]
    with pytest.raises(UsageError, match="not both"):
        m.history(3, dataset_dir=copy, moved_to=copy)
    with pytest.raises(UsageError, match="moved_to must be a path"):
        m.history(3, moved_to=5)
    # another dataset (the same ratings split with another seed) is refused, naming the run's
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
        er.ingest(_ratings(), cfg.updated({"data.prepared": str(tmp_path / "other"), "split.seed": 7}))
    with pytest.raises(ArtifactError, match="is not the one run .* was trained on"):
        m.history(3, dataset_dir=tmp_path / "other")
    with pytest.raises(ArtifactError, match="does not exist"):
        m.history(3, dataset_dir=tmp_path / "nowhere")


def test_a_refused_moved_to_folder_is_named_moved_to(tmp_path, monkeypatch):
    """A review: evaluate(moved_to=...) and history(moved_to=...), where the run's dataset has moved, refused a
    wrong folder naming dataset_dir=, an argument the call did not give; each names the argument given now, and the
    command names its --set data.prepared either way."""
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    cfg, _, _ = _train(tmp_path, _ratings())
    moved = tmp_path / "moved"
    (tmp_path / "ds").rename(moved)
    er.ingest(_ratings(), cfg.updated({"data.prepared": str(tmp_path / "other"), "split.seed": 7}))
    (tmp_path / "file").write_text("x")
    with er.open(cfg.run.dir) as m:
        for call in (m.evaluate, lambda **kw: m.history(3, **kw)):
            for given, what in (("nowhere", "does not exist"), ("file", "is a file"),
                                ("run", "is a run (what embedrec train writes), not a prepared dataset")):
                for arg in ("moved_to", "dataset_dir"):
                    with pytest.raises(ArtifactError) as e:
                        call(**{arg: tmp_path / given})
                    assert str(e.value).startswith(f"{arg}= '{tmp_path / given}' {what}; give the folder of the "
                                                   f"dataset run '{cfg.run.dir}' was trained on"), str(e.value)
                    assert e.value.cli_message().startswith(f"--set data.prepared '{tmp_path / given}' {what}; ")
            for arg in ("moved_to", "dataset_dir"):  # another dataset: its fix names the argument given
                with pytest.raises(ArtifactError) as e:
                    call(**{arg: tmp_path / "other"})
                assert str(e.value).endswith(f"(it was trained on '{tmp_path / 'ds'}'); give the dataset it was "
                                             f"trained on with {arg}=FOLDER, or train it again"), str(e.value)
                assert e.value.cli_message().endswith("give the dataset it was trained on with --set "
                                                      "data.prepared=FOLDER, or train the run again")
        assert list(m.history(3, moved_to=moved).movie_ids) == list(m.history(3, dataset_dir=moved).movie_ids)
        assert m.evaluate(moved_to=moved)["splits"] == m.evaluate(dataset_dir=moved)["splits"]
    for command in (["evaluate"], ["history", "--user", "3"]):
        r = _cli(*command, "--run", cfg.run.dir, "--set", f"data.prepared={tmp_path / 'nowhere'}")
        assert r.exit_code == 1 and r.stdout == "" and r.stderr == (
            f"error: --set data.prepared '{tmp_path / 'nowhere'}' does not exist; give the folder of the dataset run "
            f"'{cfg.run.dir}' was trained on (recorded as '{tmp_path / 'ds'}')\n"), r.stderr


def test_a_dataset_gone_or_damaged_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    cfg, ds, _ = _train(tmp_path / "a", _ratings())
    m = er.open(cfg.run.dir)
    want = list(m.history(1).to_rows())
    moved = tmp_path / "moved"
    Path(ds.path).rename(moved)
    with pytest.raises(ArtifactError, match="is gone .*dataset_dir=FOLDER"):
        m.history(1)
    r = _cli("history", "--run", cfg.run.dir, "--user", "1")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "is gone (moved or deleted)" in r.stderr and "data.prepared=FOLDER" in r.stderr
    # where it moved, data.prepared reads it (and nothing else: the recorded folder, while there, wins)
    r = _cli("history", "--run", cfg.run.dir, "--user", "1", "--set", f"data.prepared={moved}", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout) == want, r.stderr
    assert list(m.history(1, moved_to=moved).to_rows()) == want  # the library's own way to it
    # a split file changed since the ingest: refused by its checksum
    gen = moved / "current"
    (gen / "test.parquet").write_bytes((gen / "test.parquet").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ArtifactError, match="test.parquet"):
        m.history(1, dataset_dir=moved)


def test_a_config_files_dataset_moved_away_is_said_as_the_runs_record_not_a_set(tmp_path, monkeypatch):
    """A first-hour review: with embedrec.yaml's `data.prepared: ./ds` (the folder the run was trained on) moved
    away, history and evaluate said "--set data.prepared 'ds' does not exist", though no --set was given, and
    offered no --run. A config file's data.prepared that holds no dataset is its default, not a request: the run's
    record is named, with how to give the new folder; one given with --set is said as --set, as before."""
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    _train(tmp_path, _ratings(), f"run.dir={tmp_path / 'runs' / 'ds'}")  # runs/<the dataset's name>: as derived
    (tmp_path / "embedrec.yaml").write_text("data:\n  prepared: ./ds\nrun:\n  dir: ./runs/ds\n")
    want = _cli("history", "--user", "1", "--format", "json")
    assert want.exit_code == 0, want.stderr
    (tmp_path / "ds").rename(tmp_path / "ds_moved")
    for command in (["history", "--user", "1"], ["evaluate"]):
        r = _cli(*command)
        assert r.exit_code == 1 and r.stdout == "" and r.stderr == (
            f"error: the dataset run 'runs/ds' was trained on, '{tmp_path / 'ds'}', is gone (moved or deleted); give "
            "its new folder with --set data.prepared=FOLDER --run runs/ds, or ingest it again (settings from embedrec.yaml, "
            "found in the current folder)\n"), r.stderr
        r = _cli(*command, "--set", "data.prepared=nowhere")
        assert r.exit_code == 1 and r.stderr.startswith("error: --set data.prepared 'nowhere' does not exist; "), \
            r.stderr
    # the advice taken, with or without --run: the file's run.dir is kept (it was named runs/ds_moved after the new
    # folder, "no trained model in 'runs/ds_moved'"), and the moved dataset is read
    for run in ([], ["--run", "runs/ds"]):
        r = _cli("history", "--user", "1", "--format", "json", "--set", "data.prepared=ds_moved", *run)
        assert r.exit_code == 0 and r.stdout == want.stdout, r.stderr


def test_history_and_evaluate_say_each_broken_dataset_alike(tmp_path, monkeypatch):
    """Each way the dataset a run was trained on can be gone, damaged or another one: `history` and `evaluate` give
    the same line on stderr and exit 1 (data/layout.py holds the rules and their words for both; a review found
    them apart: an emptied folder was "no prepared dataset ... run 'embedrec ingest' first" to evaluate, a lost
    current link "holds no prepared dataset" to history, and a run given as data.prepared an internal error)."""
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    cfg, ds, _ = _train(tmp_path / "a", _ratings())
    run, path = Path(cfg.run.dir), Path(ds.path)
    other = tmp_path / "other"
    er.ingest(_ratings(), cfg.updated({"data.prepared": str(other), "split.seed": 7}))
    kept = tmp_path / "kept"
    shutil.copytree(path, kept, symlinks=True)
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()

    def put_back():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
        shutil.copytree(kept, path, symlinks=True)

    def gen() -> Path:
        return path / os.readlink(path / "current")

    def emptied():
        shutil.rmtree(path)
        path.mkdir()

    def moved(where):
        return lambda: shutil.rmtree(path), ["--set", f"data.prepared={where}"]

    layouts = {  # name: (what breaks it, the --set given, words the line holds)
        "gone": (lambda: shutil.rmtree(path), [], "is gone (moved or deleted); give its new folder with --set "
                                                  "data.prepared=FOLDER --run"),
        "a file": (lambda: (shutil.rmtree(path), path.write_text("x")), [], f"'{path}', is a file now; give the "
                                                                            "folder it moved to"),
        "an empty folder": (emptied, [], f"'{path}', holds no prepared dataset now (its manifest.json is gone)"),
        "no manifest": (lambda: (gen() / "manifest.json").unlink(), [],  # (a red team: said as no dataset)
                        "(the one 'current' names) has no manifest.json (deleted?)"),
        "no current link": (lambda: (path / "current").unlink(), [], "its 'current' link is gone"),
        "a current to nothing": (lambda: shutil.rmtree(gen()), [], "holds no prepared dataset now"),
        "a corrupt manifest": (lambda: (gen() / "manifest.json").write_text("{bad"), [],
                               f"is corrupt (Expecting property name enclosed in double quotes: line 1 column 2 (char "
                               f"1)); rerun 'embedrec ingest SOURCE -o {path} --overwrite'"),
        "a damaged manifest": (lambda: (gen() / "manifest.json").write_text('{"format_version": 1}'), [],
                               "has no 'counts'"),
        "re-ingested": (lambda: (shutil.rmtree(path), shutil.copytree(other, path, symlinks=True)), [],
                        "(its files changed since, e.g. re-ingested on "),
        "moved nowhere": (*moved(tmp_path / "nowhere"), "--set data.prepared '{}' does not exist; give the folder"),
        "moved to a file": (*moved(tmp_path / "file"), "' is a file; give the folder of the dataset run"),
        "moved to an empty folder": (*moved(tmp_path / "empty"), "' holds no prepared dataset; give the folder"),
        "moved to a run": (*moved(run), "' is a run (what embedrec train writes), not a prepared dataset; give"),
        "moved to another dataset": (*moved(other), f"(it was trained on '{path}'); give the dataset it was trained "
                                                    "on with --set data.prepared=FOLDER, or train the run again"),
    }
    for name, (breaking, sets, words) in layouts.items():
        put_back()
        breaking()
        h = _cli("history", "--run", run, "--user", "1", *sets)
        e = _cli("evaluate", "--run", run, *sets)
        assert (h.exit_code, e.exit_code, h.stdout, e.stdout) == (1, 1, "", ""), (name, h.stderr, e.stderr)
        assert h.stderr == e.stderr, name
        assert h.stderr.startswith("error: ") and h.stderr.count("\n") == 1, (name, h.stderr)
        assert words.format(tmp_path / "nowhere") in h.stderr, (name, h.stderr)
    put_back()
    assert _cli("history", "--run", run, "--user", "1").exit_code == 0


def test_a_rating_ingest_dropped_is_in_no_history(tmp_path, monkeypatch):
    """User 3's latest rating, the only one of movie 25, is its test row (user_time, last 1); no training rating
    names movie 25, so ingest drops the row (the manifest counts it) and the history, which reads the split files,
    does not list it (docs/commands.md's history: what it does not list)."""
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    frame = pd.concat([_ratings(), pd.DataFrame({"user_id": [3], "movie_id": [25], "rating": [4.0],
                                                 "timestamp": [T0 + 10**8]})])
    cfg, ds, _ = _train(tmp_path, frame, "split.method=user_time", "split.last_k=1", "split.valid=0")
    assert ds.manifest["cleaning"]["eval_rows_dropped_unknown"] == 1
    h = er.open(cfg.run.dir).history(3)
    assert 25 not in h.movie_ids.tolist() and len(h) == len(frame.query("user_id == 3")) - 1
    assert "test" not in h.splits and "test" in er.open(cfg.run.dir).history(4).splits


def test_rated_below_rows_and_a_click_logs_counts(tmp_path, monkeypatch):
    """min_rating 3: the ratings 1 and 2 are kept as rated_below, without a rating or time, listed last by time."""
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    cfg, ds, _ = _train(tmp_path / "a", _ratings(), "data.min_rating=3")
    m = er.open(cfg.run.dir)
    frame = _ratings().query("user_id == 4")
    h = m.history(4)
    assert len(h) == len(frame)
    low = frame[frame.rating < 3]
    assert list(h.splits)[-len(low):] == ["rated_below"] * len(low)
    assert set(h.movie_ids[-len(low):].tolist()) == set(low.movie_id)
    assert np.isnan(h.ratings[-len(low):]).all() and np.isnan(h.timestamps[-len(low):]).all()
    rows = list(h.to_rows())
    assert rows[-1]["rating"] is None and rows[-1]["time"] is None
    assert len(m.history(4, splits=["rated_below"])) == len(low)
    # a click log (no rating column: each pair's rows counted): a column 'count' of ints
    log = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 3, 3, 3, 3] * 4, "movie_id": [1, 1, 2, 2, 3, 1, 2, 3, 4] * 4,
                        "timestamp": np.arange(36) + T0})
    log["user_id"] += np.repeat([0, 3, 6, 9], 9)
    cfg, _, _ = _train(tmp_path / "b", log)
    h = er.open(cfg.run.dir).history(1)
    assert h.counts and "count" in h.columns and "rating" not in h.columns
    assert {r["movie_id"]: r["count"] for r in h.to_rows()} == {1: 2, 2: 1}
    assert all(type(r["count"]) is int for r in h.to_rows())


def test_a_dataset_without_times_sorts_by_rating(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    cfg, _, _ = _train(tmp_path, _ratings().drop(columns="timestamp"))
    m = er.open(cfg.run.dir)
    h = m.history(5)
    assert h.timestamps is None and "time" not in h.columns and "time" not in next(h.to_rows())
    assert h.ratings.tolist() == sorted(h.ratings.tolist(), reverse=True)
    with pytest.raises(UsageError, match="has no times"):
        m.history(5, sort="time")


# ------------------------------------------------------------------------------------ similar users, by hand
def _users_model() -> Model:
    """Seven users in two dimensions: 10 (1, 0); 20 (2, 0) and 70 (3, 0), cosine 1 with 10; 30 (0, 1), 0; 40
    (1, 1), 1/sqrt(2); 50 (-1, 0), -1; 60 a zero vector (no training rating). Movies a..d; 10 rated a, b, c."""
    P = np.array([[1, 0], [2, 0], [0, 1], [1, 1], [-1, 0], [0, 0], [3, 0]], np.float32)
    Q = np.eye(4, 2, dtype=np.float32)
    seen = {0: [0, 1, 2], 1: [0, 1], 2: [3], 3: [1, 2, 3], 4: [], 5: [], 6: [0, 3]}
    indptr = np.cumsum([0] + [len(seen[u]) for u in range(7)])
    indices = np.array([m for u in range(7) for m in seen[u]], np.int32)
    rec = Recommender.from_parts(Factors(P, Q, None, None), np.array([10, 20, 30, 40, 50, 60, 70]),
                                 {"movie_id": np.array([1, 2, 3, 4]), "title": list("abcd"), "year": [None] * 4,
                                  "genres": [[]] * 4}, (indptr, indices), np.ones(4))
    return Model(rec)


def test_similar_users_by_hand():
    m = _users_model()
    s = m.similar_users(10, k=10)
    assert s.query_ids == [10]
    assert s.user_ids[0].tolist() == [20, 70, 40, 30, 50]  # itself and the zero vector left out; equal ones by row
    np.testing.assert_allclose(s.scores[0], [1, 1, 2 ** -0.5, 0, -1], atol=1e-6)
    assert s.rated[0].tolist() == [2, 2, 3, 1, 0] and s.both_rated[0].tolist() == [2, 1, 2, 0, 0]
    assert list(s.to_rows())[0] == {"user_id_query": 10, "rank": 1, "user_id": 20, "score": pytest.approx(1.0),
                                    "both_rated": 2, "rated": 2}
    two = m.similar_users([40, "30"], k=1)
    assert two.query_ids == [40, 30] and [u.tolist() for u in two.user_ids] == [[10], [40]]
    frame = two.to_frame()
    assert frame.columns.tolist() == two.columns and len(frame) == 2
    for bad, match in ((999, "not in the training data"), (60, "has no trained vector")):
        with pytest.raises(NotFoundError, match=match):
            m.similar_users(bad)
    with pytest.raises(UsageError):
        m.similar_users(10, k=0)


def test_similar_users_of_a_run_are_its_vectors_cosines(tiny):
    _, _, _, m = tiny
    P = np.asarray(m.factors.user, np.float64)
    unit = P / np.linalg.norm(P, axis=1, keepdims=True)
    row = int(np.flatnonzero(m.user_ids == 7)[0])
    cos = unit @ unit[row]
    cos[row] = -np.inf
    s = m.similar_users(7, k=5)
    assert s.user_ids[0].tolist() == m.user_ids[np.argsort(-cos, kind="stable")[:5]].tolist()
    np.testing.assert_allclose(s.scores[0], np.sort(cos)[::-1][:5], rtol=1e-5)
    # both_rated: the movies both rated in train and valid, as the dataset says
    frame = pd.concat([m_.split_frame(s_) for m_, s_ in ((tiny[1], "train"), (tiny[1], "valid"))])
    mine = set(frame[frame.user_id == 7].movie_id)
    for u, b, n in zip(s.user_ids[0].tolist(), s.both_rated[0].tolist(), s.rated[0].tolist()):
        theirs = set(frame[frame.user_id == u].movie_id)
        assert (b, n) == (len(mine & theirs), len(theirs))


def test_an_updated_runs_history_lists_the_updates_movies(tiny, tmp_path):
    """After update-users gave user 1 two movies it never rated and one of its test split, its history lists the
    three as 'update' rows with the ratings and times the file gave (run_layout.UPDATE_PAIRS: a user coming from
    implicit's partial_fit_users expects what it gave; they were blank), placed by their times among the dataset's
    rows, the test movie also as its test row; its rows but the test ones are what similar-users' 'rated' counts
    (a red team: history read the dataset alone, and no longer matched it); user 2's history is unchanged. A second
    update, a file of likes without ratings or times, gives user 2 update rows without either (first, newest), and
    keeps user 1's."""
    from embedrec.serve.similar_users import co_rated

    cfg, ds, _, m = tiny
    run = tmp_path / "run"
    shutil.copytree(cfg.run.dir, run, symlinks=True)
    split = _split_of(ds)
    rated = set(_ratings().query("user_id == 1").movie_id)
    new = [mv for mv in range(1, N_MOVIES + 1) if mv not in rated][:2]
    test = next(mv for (u, mv), s in split.items() if u == 1 and s == "test")
    # newest of all, between the user's rows at +60 and +120, older than every row of the dataset
    given = {new[0]: (5.0, T0 + 10**6), new[1]: (2.0, T0 + 10_090), test: (4.0, T0)}
    since = tmp_path / "since.csv"
    since.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"1,{mv},{r:g},{t}\n"
                                                                     for mv, (r, t) in given.items()))
    before = {u: list(er.open(run).history(u).to_rows()) for u in (1, 2)}
    assert er.update_users(run, since)["pairs"] == 3
    with er.open(run) as up:
        h = up.history(1)
        ups = [i for i, s in enumerate(h.splits) if s == "update"]
        assert sorted(h.movie_ids[ups].tolist()) == sorted(given)
        assert {int(mv): (r, t) for mv, r, t in zip(h.movie_ids[ups], h.ratings[ups], h.timestamps[ups])} == given
        assert ups[0] == 0 and ups[-1] == len(h) - 1 and 0 < ups[1] < len(h) - 1  # by time, among the others
        assert h.timestamps[ups[1] - 1] > T0 + 10_090 > h.timestamps[ups[1] + 1]
        assert [r for r in h.to_rows() if r["split"] != "update"] == before[1]
        assert list(up.history(2).to_rows()) == before[2]
        assert list(up.history(1, splits=["update"]).movie_ids) == [new[0], new[1], test]
        for frame in (up.history(1, splits=["update"]).to_frame(), h.to_frame()):
            assert frame.rating.dtype == np.float64 and frame.rating.isna().sum() == 0, frame.rating
        held = up.history(1, splits=["train", "valid", "rated_below", "update"])
        e = up.engine
        row = int(e.users.rows([1])[0][0])
        assert co_rated(e, int(e.users.rows([2])[0][0]), np.array([row]))[0].tolist() == [len(held)]
        assert len(held) == len(h) - list(h.splits).count("test")
    r = _cli("history", "--run", run, "--user", 1, "--split", "update", "--format", "csv", "--no-header")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].endswith(f",5,{_utc(T0 + 10**6)},update"), r.stdout
    likes = [mv for mv in range(1, N_MOVIES + 1) if mv not in set(_ratings().query("user_id == 2").movie_id)][:2]
    (tmp_path / "likes.csv").write_text("user_id,movie_id\n" + "".join(f"2,{mv}\n" for mv in likes))
    assert er.update_users(run, tmp_path / "likes.csv")["pairs"] == 2
    with er.open(run) as up:
        h = up.history(2)
        assert list(h.splits[:2]) == ["update"] * 2 and sorted(h.movie_ids[:2].tolist()) == likes
        assert np.isnan(h.ratings[:2]).all() and np.isnan(h.timestamps[:2]).all()
        assert [r for r in h.to_rows() if r["split"] != "update"] == before[2]
        h1 = up.history(1, splits=["update"])
        assert h1.ratings.tolist() == [5.0, 2.0, 4.0] and h1.timestamps.tolist() == [T0 + 10**6, T0 + 10_090, T0]
    # a re-sealed edit of the file is refused as verify refuses it (verify.check_update_pairs)
    from embedrec.run_publish import _record_checksums

    folder = Path(os.path.realpath(run / "current"))
    pairs = np.load(folder / "update_pairs.npy")
    pairs["movie_idx"][0] = 10**6
    np.save(folder / "update_pairs.npy", pairs)
    _record_checksums(folder)
    with er.open(run) as up, pytest.raises(ArtifactError, match=r"update_pairs.npy holds user or movie rows outside"):
        up.history(1)
    assert len(m.history(1, splits=["update"])) == 0  # the run not updated: none


@pytest.mark.parametrize("ids", ["int", "text"])
def test_a_user_the_cleaning_left_out_lists_its_rated_below_rows_before_and_after_update_users(tmp_path, monkeypatch,
                                                                                               ids):
    """A review: user LOW rated movies 2, 4, 6, 8 below data.min_rating 3 alone, so the dataset left it out of its
    users (rated_below_unknown): history said 'not in the training data' though the dataset holds those ratings,
    and once update-users added it, listed all four as 'update'. They are its rated_below rows (no rating or time,
    as every rated_below row), before and after; the file's movies are its update rows: 10, and 4, rated 5 now, a
    rating the model learns from (in its solve), so both; 6, rated below again, is rated_below alone. Integer and
    text ids alike; the other users' histories unchanged."""
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    low_rows = pd.DataFrame([(999, mv, float(1 + mv % 2), T0 + 10**7 + mv) for mv in (2, 4, 6, 8)],
                            columns=["user_id", "movie_id", "rating", "timestamp"])
    frame = pd.concat([_ratings(), low_rows], ignore_index=True)
    low, known = (999, 3) if ids == "int" else ("u999", "u3")
    if ids == "text":
        frame["user_id"] = "u" + frame["user_id"].astype(str)
    cfg, ds, _ = _train(tmp_path, frame, "data.min_rating=3", *(["data.id_type=auto"] if ids == "text" else []))
    assert sorted(ds.rated_below_unknown.movie_idx.map(lambda r: ds.movies.movie_id[r]).tolist()) == [2, 4, 6, 8]
    run = Path(cfg.run.dir)
    with er.open(run) as m:
        before = list(m.history(known).to_rows())
        h = m.history(low)
        assert h.user_id == low and type(h.user_id) is type(low)
        assert sorted(h.movie_ids.tolist()) == [2, 4, 6, 8] and list(h.splits) == ["rated_below"] * 4
        assert np.isnan(h.ratings).all() and np.isnan(h.timestamps).all()
        assert len(m.history(low, splits=["train", "valid", "test", "update"])) == 0
        assert len(m.history(low, splits=["rated_below"])) == 4
        with pytest.raises(NotFoundError, match="is not in the training data"):
            m.history(998 if ids == "int" else "u998")
    since = tmp_path / "since.csv"
    since.write_text("user_id,movie_id,rating\n" + "".join(f"{low},{mv},{r}\n" for mv, r in ((10, 5), (4, 5), (6, 1))))
    assert er.update_users(run, since)["users_added"] == 1
    with er.open(run) as up:
        h = up.history(low)
        assert sorted(zip(h.movie_ids.tolist(), h.splits)) == [(2, "rated_below"), (4, "rated_below"), (4, "update"),
                                                               (6, "rated_below"), (8, "rated_below"), (10, "update")]
        assert list(h.splits[:2]) == ["update"] * 2  # newest first: an update's rows first
        assert sorted(up.history(low, splits=["rated_below"]).movie_ids.tolist()) == [2, 4, 6, 8]
        assert sorted(up.history(low, splits=["update"]).movie_ids.tolist()) == [4, 10]
        assert list(up.history(known).to_rows()) == before
    r = _cli("history", "--run", run, "--user", low, "--format", "tsv", "--sort", "title")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert rows[0][-1] == "split" and sorted((int(x[1]), x[-1]) for x in rows[1:]) == sorted(zip(h.movie_ids.tolist(),
                                                                                               h.splits))
    r = _cli("history", "--run", run, "--user", low, "--split", "rated_below", "--format", "csv", "--no-header")
    assert r.exit_code == 0 and r.stderr == "" and sorted(int(x.split(",")[1]) for x in r.stdout.splitlines()) == \
        [2, 4, 6, 8], r.stderr


# ------------------------------------------------------------------------------------ the CLI
def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_rating_is_written_alike_in_every_format():
    """A first-hour review: history printed a rating as 1 in the table but 1.0 in csv, tsv and json. A whole
    rating is written as predict writes a file's ratings it passes through, 4 (an int in JSON), a half star as
    3.5, in every format; a row without one empty (null)."""
    import io
    from types import SimpleNamespace

    from embedrec.output import write_rows
    from embedrec.results import History

    engine = SimpleNamespace(movie_ids=np.array([10, 11, 12]), titles=["A", "B", ""], years=[1990, None, 2001],
                             genres=[["Drama"], [], None])
    rated = _rated([0, 1, 2], [4.0, 3.5, np.nan], [30, 20, np.nan], [0, 2, 3])
    h = History(engine, 7, rated, np.arange(3))
    rows = list(h.to_rows())
    assert [r["rating"] for r in rows] == [4, 3.5, None] and type(rows[0]["rating"]) is int
    said = {}
    for fmt in ("table", "csv", "tsv", "json", "jsonl"):
        out = io.StringIO()
        write_rows(h.to_rows(), h.columns, fmt, out=out)
        said[fmt] = out.getvalue()
    assert json.loads(said["json"]) == [json.loads(line) for line in said["jsonl"].splitlines()] == rows
    assert '"rating": 4,' in said["json"] and '"rating": 3.5,' in said["json"]
    csv_rows = [line.split(",") for line in said["csv"].splitlines()[1:]]
    tsv_rows = [line.split("\t") for line in said["tsv"].splitlines()[1:]]
    assert [r[5] for r in csv_rows] == [r[5] for r in tsv_rows] == ["4", "3.5", ""]
    assert _table_column(said["table"], "rating") == ["4", "3.5", ""]
    # whole ratings alone (the review's case): 1 and 5 in every format
    h = History(engine, 7, _rated([0, 1], [1.0, 5.0], [30, 20], [0, 1]), np.arange(2))
    for fmt in ("table", "csv", "json"):
        out = io.StringIO()
        write_rows(h.to_rows(), h.columns, fmt, out=out)
        said[fmt] = out.getvalue()
    assert _table_column(said["table"], "rating") == [line.split(",")[5] for line in said["csv"].splitlines()[1:]] \
        == [str(r["rating"]) for r in json.loads(said["json"])] == ["1", "5"]


def _table_column(text: str, name: str) -> list[str]:
    """A table's column ``name``, each cell by the header's place of it (a cell may be empty)."""
    lines = text.splitlines()
    start = lines[0].index(name)
    end = start + len(lines[0][start:]) - len(lines[0][start:].split(None, 1)[1]) if " " in lines[0][start:] else None
    return [line[start:end].strip() for line in lines[1:]]


def test_history_cli_formats(tiny):
    cfg, _, _, m = tiny
    run = ["--run", cfg.run.dir]
    want = list(m.history(6).to_rows())
    r = _cli("history", *run, "--user", "6", "--format", "json")
    assert r.exit_code == 0 and r.stderr == "" and json.loads(r.stdout) == want
    r = _cli("history", *run, "--user", "6", "--format", "jsonl", "-k", "2")
    assert [json.loads(line) for line in r.stdout.splitlines()] == want[:2]
    r = _cli("history", *run, "--user", "6", "--format", "csv")
    lines = r.stdout.splitlines()
    assert lines[0] == "user_id,movie_id,title,year,genres,rating,time,split" and len(lines) == 1 + len(want)
    assert lines[1].startswith(f"6,{want[0]['movie_id']},") and lines[1].endswith(f",{want[0]['time']},"
                                                                                  f"{want[0]['split']}")
    r = _cli("history", *run, "--user", "6", "--format", "tsv", "--no-header", "--split", "valid,test",
             "--sort", "rating")
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert rows and {x[-1] for x in rows} <= {"valid", "test"}
    assert [float(x[5]) for x in rows] == sorted((float(x[5]) for x in rows), reverse=True)
    r = _cli("history", *run, "--user", "6", "--format", "table")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1 + len(want)
    assert r.stdout.splitlines()[0].split() == ["user_id", "movie_id", "title", "year", "genres", "rating", "time",
                                                "split"]


@pytest.mark.parametrize("args,code,said", [
    (["--user", "999"], 1, "user '999' is not in the training data"),
    (["--user", " "], 2, "--user is empty"),
    (["--user", "6", "--split", "tst"], 2, "--split 'tst': no such split"),
    (["--user", "6", "--sort", "newest"], 2, "invalid value for '--sort'"),
    (["--user", "6", "--no-header", "--format", "json"], 2, "--no-header applies to --format csv and tsv"),
])
def test_history_cli_errors_are_one_line(tiny, args, code, said):
    r = _cli("history", "--run", tiny[0].run.dir, *args)
    assert r.exit_code == code and r.stdout == "" and said in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_recommend_similar_users_cli(tiny):
    cfg, _, _, m = tiny
    run = ["--run", cfg.run.dir]
    r = _cli("recommend", *run, "--similar-users", "7", "-k", "3", "--format", "jsonl")
    assert r.exit_code == 0 and r.stderr == ""
    assert [json.loads(line) for line in r.stdout.splitlines()] == list(m.similar_users(7, k=3).to_rows())
    r = _cli("recommend", *run, "--similar-users", "7", "-k", "2", "--format", "csv", "--no-header")
    assert len(r.stdout.splitlines()) == 2 and r.stdout.startswith("7,1,")
    r = _cli("recommend", *run, "--similar-users", "7", "--format", "tsv")
    assert r.stdout.splitlines()[0] == "user_id_query\trank\tuser_id\tscore\tboth_rated\trated"
    assert len(r.stdout.splitlines()) == 1 + cfg.recommend.k
    for args, code, said in ((["--similar-users", "999"], 1, "user '999' is not in the training data"),
                             (["--similar-users", "7", "--genre", "Comedy"], 2, "--genre does not apply to --similar-users"),
                             (["--similar-users", "7", "--year-min", "1990"], 2, "--year-min/--year-max does not "
                                                                                 "apply"),
                             (["--similar-users", "7", "--include-seen"], 2, "--include-seen does not apply"),
                             (["--similar-users", "7", "--user", "7"], 2, "give exactly one of"),
                             (["--similar-users", ""], 2, "--similar-users is empty")):
        r = _cli("recommend", *run, *args)
        assert r.exit_code == code and r.stdout == "" and said in r.stderr and r.stderr.count("\n") == 1, \
            (args, r.stderr)


def test_a_log_of_weighed_events_shows_each_pairs_weight_not_a_count(tmp_path):
    """A first-hour review: `history` of a log ingested with data.event_weights called a pair's summed weight its
    'count' (3 for one 'cart' event); a weight of 0.5 could not be a count at all."""
    import json

    from click.testing import CliRunner

    import embedrec as er
    from embedrec.cli import main

    rows = "user_id,movie_id,event\n1,1,view\n1,2,cart\n1,2,view\n2,1,view\n2,3,purchase\n3,1,view\n3,2,view\n" \
           "3,3,cart\n4,1,view\n4,2,cart\n4,3,view\n"
    (tmp_path / "ev.csv").write_text(rows)
    prep, run = tmp_path / "p", tmp_path / "r"
    sets = ["--set", "data.columns.rating=event", "--set", "data.event_weights={view: 1, cart: 3, purchase: 0.5}",
            "--set", "split.test=0", "--set", "split.valid=0"]
    assert CliRunner().invoke(main, ["ingest", str(tmp_path / "ev.csv"), "-o", str(prep), "-q", *sets]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--set", f"data.prepared={prep}", "--run", str(run), "-q", "--set",
                                  "model.dim=4", "--set", "train.als_dims=[]"])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(main, ["history", "--run", str(run), "--user", "2", "--format", "json"])
    got = {row["movie_id"]: row for row in json.loads(r.stdout)}
    assert got[3]["weight"] == 0.5 and got[1]["weight"] == 1 and "count" not in got[1], r.stdout
    with er.open(run) as m:
        frame = m.history(1).to_frame()
    assert list(frame.columns).count("weight") == 1 and frame.set_index("movie_id")["weight"][2] == 4.0
