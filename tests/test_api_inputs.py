"""The public API takes what a notebook hands it: one genre as a str, a pandas Series of ratings, a DataFrame of
pairs, one k for evaluate; and what it cannot take (a misplaced Config, a dict for a Config, None for ids, an
unknown format) is a typed error in library terms, never a TypeError from deep inside."""

import io
import os
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import embedrec as er
from embedrec.errors import ConfigError, NotFoundError, OutputExists, OutputRefused, UsageError


def test_one_genre_given_as_a_string(trained_run):
    m = trained_run.model
    genre = sorted({g for gs in m.engine.genres for g in gs})[0]
    for call in (lambda g: m.popular(5, genres=g), lambda g: m.recommend(1, k=5, genres=g),
                 lambda g: m.similar(int(m.movie_ids[0]), k=5, genres=g)):
        one, listed = call(genre), call([genre])  # not the genres 'C', 'o', 'm', ... of 'Comedy'
        np.testing.assert_array_equal(one.movie_ids[0], listed.movie_ids[0])
        np.testing.assert_array_equal(call(None).movie_ids[0], call(()).movie_ids[0])  # None: no filter
        assert all(genre in r["genres"] for r in one.to_rows())


def test_ids_that_are_not_a_list(trained_run):
    m = trained_run.model
    for one in (1.0, np.float64(1)):  # one id, as an int or a str is; a whole float is that integer id (a
        got = m.recommend(one, k=3)       # pandas column that met a NaN holds 196.0 for 196)
        assert got.user_ids == [1] and list(got.movie_ids[0]) == list(m.recommend(1, k=3).movie_ids[0])
    # a float with a fraction, or infinite, is no id of any model (a red team: predict(2.5, 50) answered a fallback
    # row): a UsageError, no longer NotFoundError "'1.5' is not a user id of this model"
    for odd, why in ((1.5, "not a whole number"), (float("inf"), "not finite"), (np.float32(-1.5), "not a whole number")):
        with pytest.raises(UsageError, match=rf"^{re.escape(str(odd))} is not an id \({why}\); ids are integers or "
                                             r"texts, e.g. 196 or 'u196'$"):
            m.recommend(odd, k=3)
    # no id at all: a flag, a missing value, a nested list (a review: NotFoundError "user 'True'", "user '[196]'")
    for odd, said in ((float("nan"), "nan is not an id (a missing value)"), (None, "None is not an id"),
                      (True, "True is not an id (a flag)"), (np.bool_(False), "False is not an id (a flag)"),
                      ([1], "[1] is not an id (a list)"), (1 + 0j, "(1+0j) is not an id (a complex number)")):
        with pytest.raises(UsageError, match=re.escape(said)):
            m.recommend([1, odd], k=3)
    with pytest.raises(UsageError, match=r"not a 2-D array of shape \(2, 1\)"):
        m.recommend(np.array([[1], [2]]), k=3)
    with pytest.raises(UsageError, match=r"predict: pair 2 \(None, 1\): None is not an id"):
        m.predict([(1, 1), (None, 1)])
    with pytest.raises(UsageError, match=r"predict: pair 1 \(1, nan\): nan is not an id"):
        m.predict(pd.DataFrame({"user_id": [1], "movie_id": [float("nan")]}))
    pred = m.predict(pd.DataFrame({"user_id": [1.0], "movie_id": [float(m.movie_ids[0])]}))
    assert pred.fallback == ["none"] and pred.to_frame()["score"].iloc[0] == m.predict([(1, m.movie_ids[0])]).to_frame()["score"].iloc[0]
    with pytest.raises(UsageError, match="expected an id or a list of ids, not NoneType"):
        m.recommend(None, k=3)
    assert m.recommend(pd.Series([2, 1], index=[7, 8]), k=3).user_ids == [2, 1]  # values, not the index


def test_rated_as_a_series(trained_run):
    m = trained_run.model
    a, b = (int(x) for x in m.movie_ids[:2])
    want = m.recommend_new(rated={a: 5, b: 1}, k=5)
    got = m.recommend_new(rated=pd.Series({a: 5, b: 1}), k=5)  # was: "truth value of a Series is ambiguous"
    np.testing.assert_array_equal(got.movie_ids[0], want.movie_ids[0])


def test_evaluate_takes_one_k_and_refuses_bad_ks(trained_run):
    model, opened = trained_run.model, trained_run.opened
    for m in (model, opened):
        assert m.evaluate("test", ks=10)["splits"]["test"]["model"] == \
            pytest.approx(m.evaluate("test", ks=(10,))["splits"]["test"]["model"])
    for ks in (0, [], 10.0, True):  # the model in memory took 0 and [] for "the defaults" (None means them)
        with pytest.raises(UsageError, match="ks="):
            model.evaluate("test", ks=ks)


def test_write_stream_refuses_an_unknown_format(trained_run):
    m, buf = trained_run.opened, io.StringIO()
    with pytest.raises(UsageError, match="fmt='xml'"):
        m.write_stream(m.recommend_stream(["1"], k=2), buf, "xml")
    assert buf.getvalue() == ""  # not a table written instead


def test_predict_takes_a_dataframe(trained_run):
    m = trained_run.model
    pairs = [(1, int(m.movie_ids[0])), (2, int(m.movie_ids[1])), (99999, int(m.movie_ids[0]))]
    df = pd.DataFrame({"movie_id": [p[1] for p in pairs], "rating": [4, 3, 5], "user_id": [p[0] for p in pairs]},
                      index=[10, 20, 30])
    got, want = m.predict(df).to_frame(), m.predict(pairs).to_frame()  # by column name, not position
    pd.testing.assert_frame_equal(got, want)
    # MovieLens' own names and the other aliases ingest and score_lists take (a review: userId was refused)
    for names in ({"user_id": "userId", "movie_id": "movieId"}, {"user_id": "uid", "movie_id": "iid"},
                  {"user_id": "User", "movie_id": "item_id"}):
        pd.testing.assert_frame_equal(m.predict(df.rename(columns=names)).to_frame(), want)
    with pytest.raises(UsageError, match="columns user_id and movie_id"):
        m.predict(df.rename(columns={"user_id": "who"}))  # was: "got ('movie_id',)"


def test_a_dataframe_of_integer_ids_is_looked_up_whole(trained_run, monkeypatch):
    """200,000 pairs took 1.9 s, 1.8 of it each pair checked and parsed in Python: an integer-id model's integer
    columns are looked up as arrays, with the answers of the pairs' path (unknown ids, untrained rows, skip, error)."""
    from embedrec.data import ids as ids_module

    m = trained_run.model
    rng = np.random.default_rng(3)
    known_u, known_m = np.asarray(m.user_ids), np.asarray(m.movie_ids)
    users = np.r_[rng.choice(known_u, 300), [10 ** 9, -1, 2 ** 62]]  # unknown ones too
    movies = np.r_[rng.choice(known_m, 300), [known_m[0], 10 ** 9, known_m[1]]]
    df = pd.DataFrame({"user_id": users, "movie_id": movies.astype(np.uint32)})
    pairs = list(zip(users.tolist(), movies.tolist()))
    for missing in ("fallback", "skip"):
        want = m.predict(pairs, missing=missing).to_frame()
        calls = []
        monkeypatch.setattr(ids_module, "parse_id",
                            lambda *a, _p=ids_module.parse_id, _c=calls: _c.append(1) or _p(*a))
        got = m.predict(df, missing=missing)
        monkeypatch.undo()
        assert not calls  # no id parsed one at a time
        pd.testing.assert_frame_equal(got.to_frame(), want)
        assert type(got.user_ids[0]) is int
    with pytest.raises(NotFoundError) as e:
        m.predict(df, missing="error")
    assert e.value.id == 10 ** 9 and type(e.value.id) is int


def test_workflow_functions_refuse_a_misplaced_config(trained_run, tmp_path):
    cfg = trained_run.cfg
    calls = [(lambda: er.train(cfg), "er.train(None, cfg)"),
             (lambda: er.ingest(cfg), "er.ingest(None, cfg)"),  # was: OSError, file name too long
             (lambda: er.open(cfg), "er.open(None, cfg)"),
             (lambda: er.ingest("ml-100k", {"data.prepared": str(tmp_path / "ds")}), "cfg must be a Config, not dict"),
             (lambda: er.train(cfg.data.prepared, {"model.dim": 4}), "cfg must be a Config, not dict"),
             (lambda: er.open(cfg.run.dir, {"recommend.k": 3}), "cfg must be a Config, not dict"),
             # cross_validate, beside the API, takes its cfg and output through the API's own checks
             (lambda: er.cross_validate("ratings.csv", {"model.dim": 4}), "cross_validate: cfg must be a Config, "
                                                                            "not dict"),
             (lambda: er.cross_validate("ratings.csv", cfg, output=cfg), "cross_validate: got a Config as output; "
                                                                         "pass it as cfg"),
             (lambda: er.open(123), "run_dir must be a path (str or pathlib.Path), not int"),
             # a notebook review: the DataFrame ingest also takes went unsaid
             (lambda: er.ingest({"a": 1}, cfg), "source must be a path (str or pathlib.Path), or a pandas DataFrame "
                                                "of the ratings, not dict"),
             # a review: the Dataset train also takes went unsaid
             (lambda: er.train(123), "ds must be a path (str or pathlib.Path), or the Dataset er.ingest returns, "
                                     "not int")]
    for call, says in calls:
        with pytest.raises(UsageError) as e:
            call()
        assert says in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_config_overrides_as_one_text_and_updated_wants_a_mapping():
    assert er.load_config(None, "model.dim=8").model.dim == 8  # one override, not the overrides 'm', 'o', ...
    with pytest.raises(ConfigError, match="takes a mapping"):
        er.load_config().updated(["model.dim=8"])


def test_library_errors_speak_library_terms(tmp_path):
    from embedrec.evaluate import evaluate_factors

    with pytest.raises(UsageError) as e:
        evaluate_factors({}, True, SimpleNamespace(splits={"test": [0]}), "valid", refit=True)  # a test split
    assert "--" not in str(e.value) and "evaluate('test')" in str(e.value)
    assert "evaluate --split test" in e.value.cli_message()  # the CLI's line as before
    with pytest.raises(ConfigError) as e:
        er.load_config(tmp_path / "none.yaml")
    assert "-c" not in str(e.value) and "with -c" in e.value.cli_message()


def test_predict_given_text_and_load_config_given_a_number_say_what_to_pass(trained_run):
    """A red-team pass: predict("196,242") said 'expected (user id, movie id) pairs, got ('1',)', and
    er.load_config(123) raised a bare TypeError."""
    import embedrec as er

    with pytest.raises(UsageError, match=r"predict: got the text '196,242'; give \(user id, movie id\) pairs"):
        trained_run.opened.predict("196,242")
    with pytest.raises(er.ConfigError, match="load_config: path int '123' is not a file path"):
        er.load_config(123)
    with pytest.raises(er.ConfigError, match=re.escape("or None for the defaults; settings go second, "
                                                       "load_config(None, {'model.dim': 64})")):
        er.load_config({"model.dim": 64})  # (a notebook review: where the settings go was not said)


def test_movie_gives_one_movies_row_by_id(trained_run):
    """The row the lists print for a movie, by its id (int or text)."""
    m = trained_run.opened
    top = next(iter(m.popular(k=1).to_rows()))
    row = m.movie(top["movie_id"])
    assert row == m.movie(str(top["movie_id"])) == {c: top[c] for c in ("movie_id", "title", "year", "genres")}
    with pytest.raises(NotFoundError, match="movie '999999' is not in the training data"):
        m.movie(999999)


def test_open_takes_the_folder_save_returns(trained_run, tmp_path):
    """A review: er.open(model.save(dir)) said 'no trained model in dir/artifacts-...': save returns the model's
    own folder. It opens the run now, while that folder is the run's current model."""
    model = trained_run.model
    saved = model.save(tmp_path / "run")
    opened = er.open(saved)
    assert opened.recommend(model.user_ids[0], k=3).movie_ids[0].tolist() == \
        model.recommend(model.user_ids[0], k=3).movie_ids[0].tolist()
    model.save(tmp_path / "run")  # a newer model: the first folder is no longer the run's current one
    assert saved.exists()  # kept while `opened` holds it
    with pytest.raises(er.ArtifactError, match="is an earlier model of run"):
        er.open(saved)


def test_a_results_fallback_flags_are_python_bools(trained_run):
    import json

    got = trained_run.opened.recommend([trained_run.opened.user_ids[0], "nobody"], k=2, missing="popular")
    assert got.fallback == [False, True] and all(type(f) is bool for f in got.fallback)
    json.dumps(got.fallback)


def test_recommend_answers_an_unknown_user_as_the_config_says(trained_run):
    """A review: er.open(run, cfg) with recommend.fallback=popular raised NotFoundError where `embedrec recommend`
    with that config gave the popular list; missing=None now takes the config's choice, an explicit one wins."""
    import embedrec as er

    popular = er.open(trained_run.cfg.run.dir, er.load_config(None, {"recommend.fallback": "popular"}))
    try:
        got = popular.recommend([trained_run.opened.user_ids[0], "nobody"], k=2)
        assert got.fallback == [False, True] and got.user_ids[1] == "nobody"
        with pytest.raises(er.NotFoundError, match="^'nobody' is not a user id of this model"):
            popular.recommend(["nobody"], missing="error")
    finally:
        popular.close()
    with pytest.raises(er.NotFoundError, match="^'nobody' is not a user id of this model"):
        trained_run.opened.recommend(["nobody"])  # the default config: 'none', so an error


def test_a_model_closes_and_lets_go_of_its_run_folder(trained_run, tmp_path):
    """A notebook review: er.open had no close() or context manager, so an opened model held its artifacts
    folder (kept from pruning) until the process ended."""
    import fcntl
    import os

    model = trained_run.model
    saved = model.save(tmp_path / "run")
    with er.open(tmp_path / "run") as m:
        user = m.user_ids[0]
        got = m.recommend(user, k=3)
        fd = os.open(saved, os.O_RDONLY)
        with pytest.raises(BlockingIOError):  # held (shared): an exclusive lock, what pruning takes, waits
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # let go
    os.close(fd)
    assert repr(m) == "<Model: closed>" and got.movie_ids[0].size == 3  # results keep what they hold
    with pytest.raises(UsageError, match="this model was closed; open the run again"):
        m.recommend(user, k=3)
    m.close()  # twice is fine


def test_wrong_argument_types_are_usage_errors_not_silent_answers(trained_run):
    """A review: predict(['196', '242']) scored the pairs ('1', '9') and ('2', '4'); genres=5 and rated=5 were
    TypeErrors from inside; similar([50, 181]) said movie '[50, 181]' is not in the training data; and
    exclude_seen=None returned movies the user had rated (read by its truth)."""
    m = trained_run.model
    with pytest.raises(UsageError, match="not a flat list of ids"):
        m.predict(["1", "2"])
    with pytest.raises(UsageError, match=r"genres=5: give a genre name or a list of them"):
        m.recommend(1, k=3, genres=5)
    with pytest.raises(UsageError, match=r"rated=5: give \{movie id: rating\}"):
        m.recommend_new(rated=5, k=3)
    one, two = (int(x) for x in m.movie_ids[:2])  # (movie, rating) pairs in order are a dict's equal
    np.testing.assert_array_equal(m.recommend_new(rated=[(one, 5), (two, 4)], k=3).movie_ids[0],
                                  m.recommend_new(rated={one: 5, two: 4}, k=3).movie_ids[0])
    with pytest.raises(UsageError, match="is rated twice"):
        m.recommend_new(rated=[(one, 5), (one, 4)], k=3)
    with pytest.raises(UsageError, match=r"similar: give one movie id, e.g. similar\(50\) or similar\('star wars'\), "
                                         r"not \[1, 2\]"):
        m.similar([[1, 2]], k=3)  # a list of movies is several queries; a list inside it no movie
    for bad in (None, "no", 0):
        with pytest.raises(UsageError, match="exclude_seen must be True or False"):
            m.recommend(1, k=3, exclude_seen=bad)
        with pytest.raises(UsageError, match="exclude_seen must be True or False"):
            m.recommend_new([1], k=3, exclude_seen=bad)
    assert m.recommend(1, k=3, exclude_seen=np.bool_(False)).movie_ids[0].size == 3


def test_save_refuses_a_folder_of_the_users_own_files(trained_run, tmp_path):
    """A review: TrainedModel.save into a folder holding the user's own file named 'current' replaced it with a
    link (the file was lost), and into one of unrelated files it went ahead, where `train` refuses both."""
    from embedrec.errors import ArtifactError

    m = trained_run.model
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "current").write_text("my notes")
    with pytest.raises(ArtifactError, match="holds a file 'current' that embedrec did not write"):
        m.save(mine)
    assert (mine / "current").read_text() == "my notes" and sorted(p.name for p in mine.iterdir()) == ["current"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(ArtifactError, match="is not empty and holds no embedrec run"):
        m.save(other)
    m.save(tmp_path / "new")  # a new folder, and then the same run again: saved
    m.save(tmp_path / "new")
    # a red team: a user's own '.lock' or 'tune' made any folder pass as a run, and train replaced its
    # metrics.jsonl and checkpoint.pt; embedrec's own lock line, an empty lock, and tune-dims' folder still do
    from embedrec.run_checks import check_run_folder

    # and (a later red team) an empty '.lock' beside the user's files, or their own 'current' link (releases/v3):
    # an empty lock marks a run only alone (a writer killed before its line), a 'current' only to a model folder
    for name, make in ((".lock", lambda p: p.write_text("mine")), ("tune", lambda p: (p.mkdir(), (p / "n").touch())),
                       (".lock", lambda p: p.touch()), ("current", lambda p: p.symlink_to("releases/v3")),
                       ("current", lambda p: p.symlink_to(tmp_path))):
        f = tmp_path / "own"
        shutil.rmtree(f, ignore_errors=True)
        f.mkdir()
        (f / "metrics.jsonl").write_text("my log")
        make(f / name)
        with pytest.raises(ArtifactError, match="is not empty and holds no embedrec run"):
            m.save(f)
        assert (f / "metrics.jsonl").read_text() == "my log"
    for name, make in ((".lock", lambda p: p.write_text("4242 embedrec train\n")),
                       ("current", lambda p: p.symlink_to("artifacts-20261204T144619-675392843")),  # dangling too
                       ("tune", lambda p: (p.mkdir(), (p / "tune.json").write_text("{}"))),
                       ("tune", lambda p: (p.mkdir(), (p / ".lock").write_text("7 embedrec tune-dims\n"))),
                       ("tune", lambda p: p.mkdir())):
        f = tmp_path / "ours"
        shutil.rmtree(f, ignore_errors=True)
        f.mkdir()
        (f / "checkpoint.pt").write_bytes(b"")
        make(f / name)
        check_run_folder(f)
    alone = tmp_path / "alone"  # an empty lock alone: a writer killed before its line
    alone.mkdir()
    (alone / ".lock").touch()
    check_run_folder(alone)


def test_notebook_results_index_iterate_pickle_and_show(trained_run, tmp_path, monkeypatch):
    """A notebook review: r[0] raised TypeError, list(predictions) TypeError, pickle.dumps(er.open(run)) failed on
    a local lambda, neither result had an HTML view, to_frame() could not tell the popular fallback's rows (their
    score a rating count) from the model's, and an empty to_frame() had every column as object."""
    import pickle

    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    top = m.recommend([1, 2], k=3)
    assert top[1][0] == 2 and list(top[1][1]) == list(top.movie_ids[1]) and top[-1][0] == 2
    again = pickle.loads(pickle.dumps(top))
    assert again.to_frame().equals(top.to_frame())
    opened = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(opened.recommend(1, k=3).movie_ids[0], top.movie_ids[0])
    assert "<table" in top._repr_html_() and "<table" in m.predict([(1, 1)])._repr_html_()
    sim = m.similar(int(m.movie_ids[0]), k=2)._repr_html_()
    assert "movie_id_query" in sim and "user_id" not in sim  # a review: similar()'s view said user_id

    mixed = m.recommend([1, "nobody"], k=3, missing="popular").to_frame()
    assert mixed["fallback"].tolist() == [False] * 3 + [True] * 3 and mixed["fallback"].dtype == bool
    # a red team: the known id 1 came back as the text '1' beside a text id; ids of mixed kinds stay as given
    assert mixed["user_id"].tolist() == [1] * 3 + ["nobody"] * 3 and mixed["user_id"].dtype == object
    assert list(mixed.columns) == list(m.recommend([1], k=3).to_frame().columns)
    m2 = er.open(trained_run.cfg.run.dir)
    m2.close()
    with pytest.raises(UsageError, match="this model was closed"):  # at `with`, not at its first question
        with m2:
            pass
    empty = m.recommend(["nobody"], k=3, missing="skip").to_frame()
    assert len(empty) == 0 and empty["rank"].dtype == "int32" and empty["score"].dtype == "float32"

    pred = m.predict([(1, 1), (1, "nope")])
    assert list(pred) == [tuple(r.values()) for r in pred.to_rows()] and list(pred)[1][2] == "movie_unknown"
    assert m.predict([(1, "nope")], missing="skip").to_frame()["score"].dtype == "float64"


def test_to_frame_has_the_dtypes_of_the_topk_all_file(trained_run, tmp_path):
    """A notebook review: to_frame() gave rank, year and score as int64/int64/float64 where the --topk-all
    Parquet file of the same lists reads as int32/int32/float32, so a frame and the file did not compare equal."""
    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    out = tmp_path / "top.parquet"
    m.topk_all(out, k=3)
    file = pd.read_parquet(out)
    users = file["user_id"].unique()[:4].tolist()
    frame = m.recommend(users, k=3).to_frame()
    assert frame.drop(columns="fallback").dtypes.equals(file.dtypes)
    want = file[file["user_id"].isin(users)].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame.drop(columns="fallback"), want)
    for empty in (m.recommend(["nobody"], k=3, missing="skip").to_frame(),
                  m.recommend([int(users[0])], k=3, year_min=9999).to_frame()):
        assert empty.drop(columns="fallback").dtypes.equals(file.dtypes) and len(empty) == 0
    assert m.recommend_new(liked=[int(m.movie_ids[0])], k=2).to_frame()["user_id"].tolist() == [None, None]
    sim = m.similar(int(m.movie_ids[0]), k=2).to_frame()
    assert sim["movie_id_query"].dtype == file["movie_id"].dtype and sim["rank"].dtype == "int32"
    # predict's frame: the dtypes of one with rows when none is left (a red team: all object)
    full = m.predict([(users[0], int(m.movie_ids[0]))]).to_frame()
    none = m.predict([("nobody", int(m.movie_ids[0]))], missing="skip").to_frame()
    assert len(none) == 0 and none.dtypes.equals(full.dtypes), (none.dtypes, full.dtypes)


def test_to_frame_types_a_column_with_no_value_as_the_file_does(tmp_path):
    """A red team: on a dataset without a movies file (no title, no year), to_frame() gave title and year as
    untyped object columns where the --topk-all Parquet file reads them as string and float64."""
    from click.testing import CliRunner

    from embedrec.cli import main

    rows = "".join(f"u{u},m{m},{1 + (u * m) % 5},{1000 + u * 50 + m}\n" for u in range(30) for m in range(20)
                   if (u + m) % 3)
    (tmp_path / "r.csv").write_text("user_id,movie_id,rating,timestamp\n" + rows)
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}", "--set",
            "data.id_type=auto"]
    assert CliRunner().invoke(main, ["ingest", "-q", str(tmp_path / "r.csv"), *sets]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "-q", *sets, "--set", "model.dim=4", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    with er.open(tmp_path / "run") as m:
        m.topk_all(tmp_path / "top.parquet", k=3)
        file = pd.read_parquet(tmp_path / "top.parquet")
        frame = m.recommend(file["user_id"].unique()[:3].tolist(), k=3).to_frame()
    assert frame["title"].isna().all() and frame.drop(columns="fallback").dtypes.equals(file.dtypes), \
        (frame.dtypes, file.dtypes)


def test_year_is_a_nullable_int32_in_every_frame_and_in_the_topk_all_file(tmp_path):
    """A first-hour review: `recommend(1, k=3).to_frame()`'s year was int32, a list of many users' float64 where one
    movie had no year, and the --topk-all Parquet file read as float64 (1961.0), where a History's is Int32 and
    docs/python.md says a frame's dtypes are the file's. Year is pandas' Int32 in each, a missing one <NA>."""
    from click.testing import CliRunner

    from embedrec.cli import main

    rows = "".join(f"u{u},m{m},{1 + (u * m) % 5}\n" for u in range(30) for m in range(20) if (u + m) % 3)
    (tmp_path / "r.csv").write_text("user_id,movie_id,rating\n" + rows)
    (tmp_path / "movies.csv").write_text("movie_id,title,genres\n" + "".join(
        f"m{m},Film {m}{'' if m % 4 == 0 else f' ({1950 + m})'},Drama\n" for m in range(20)))  # every 4th: no year
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}", "--set",
            "data.id_type=auto", "--set", f"data.movies={tmp_path / 'movies.csv'}"]
    r = CliRunner().invoke(main, ["ingest", "-q", str(tmp_path / "r.csv"), *sets])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(main, ["train", "-q", *sets, "--set", "model.dim=4", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(main, ["export", "--topk-all", str(tmp_path / "top.parquet"), "-k", "10", "-q",
                                  "--run", str(tmp_path / "run")])
    assert r.exit_code == 0, r.stderr
    file = pd.read_parquet(tmp_path / "top.parquet")
    assert file["year"].dtype == "Int32" and file["year"].isna().any() and (file["year"] == 1951).any()
    with er.open(tmp_path / "run") as m:
        users = file["user_id"].unique().tolist()
        many = m.recommend(users, k=10).to_frame().drop(columns="fallback")
        pd.testing.assert_frame_equal(many, file)  # the year's <NA> too
        dated = [u for u in users if file.loc[file["user_id"] == u, "year"].notna().head(2).all()][0]
        for frame in (m.recommend(dated, k=2).to_frame(), m.recommend(["nobody"], k=2, missing="skip").to_frame(),
                      m.popular(k=5).to_frame(), m.similar("m1", k=5).to_frame(),
                      m.recommend_new(liked=["m1"], k=5).to_frame(), m.history(dated).to_frame()):
            assert frame["year"].dtype == "Int32", frame.dtypes
        # export --to parquet's movies table reads so too
        r = CliRunner().invoke(main, ["export", "--to", "parquet", "-o", str(tmp_path / "emb"), "-q", "--run",
                                      str(tmp_path / "run")])
        assert r.exit_code == 0, r.stderr
        movies = pd.read_parquet(tmp_path / "emb" / "movies.parquet")
        assert movies["year"].dtype == "Int32" and movies["year"].isna().sum() == 5, movies["year"]


def test_streams_refuse_text_and_label_similar_lists_as_movies(trained_run):
    """A review: recommend_stream("196\\n186\\n") answered users 1, 9, 6, 1, 8, 6 (one per character); a float
    196.0 from a pandas column was dropped; write_stream(m.similar(50)) headed its rows user_id; ks='10' was
    read as ks=['1', '0']; batch_size 0 or None was taken."""
    m = trained_run.model
    with pytest.raises(UsageError, match=r"recommend_stream: got the text '1\\n2\\n'; give the lines or ids one"):
        list(m.recommend_stream("1\n2\n", k=3))
    for bad in (0, -1, 2.5, None, True):
        with pytest.raises(UsageError, match="batch_size="):
            list(m.recommend_stream(["1"], k=3, batch_size=bad))
    floats = [q for q, _, _ in m.recommend_stream(pd.Series([1.0, 2.0]), k=3)]
    assert floats == [1, 2]
    for gap, why in ((None, "a missing value"), (float("nan"), "a missing value"), (True, "a flag"),
                     ([2, 3], "a list")):  # a review: dropped without a word under the default missing='skip'
        with pytest.raises(UsageError, match=rf"recommend_stream: item 2 is .*, not an id \({why}\)"):
            list(m.recommend_stream([1, gap], k=3))
    with pytest.raises(UsageError, match=re.escape("ks='10': give whole numbers >= 1, e.g. ks=10 or ks=(10, 20)")):
        m.evaluate("test", ks="10")
    with pytest.raises(UsageError, match=re.escape("ks=[10, 50000]: 50000 is above the maximum 10000")):
        m.evaluate("test", ks=(10, 50000))  # a review: the CLI refused -k 50000, the library scored it
    from embedrec.evaluate_runs import evaluate_run

    for bad in (["10"], [0], ()):  # one check for both (a review: a bare TypeError here)
        with pytest.raises(UsageError, match="give whole numbers >= 1"):
            evaluate_run(trained_run.cfg.run.dir, ks=bad)

    movie = int(m.movie_ids[0])
    sim = m.similar(movie, k=2)
    for fmt, first in (("csv", "movie_id_query,rank,"), ("tsv", "movie_id_query\trank\t"),
                       ("jsonl", '{"movie_id_query": '), ("json", '[\n  {\n    "movie_id_query": ')):
        out = io.StringIO()
        m.write_stream(sim, out, fmt)
        assert out.getvalue().startswith(first), (fmt, out.getvalue()[:80])
    out = io.StringIO()
    m.write_stream(sim.triples(), out, "csv", query_column="movie_id_query")
    assert out.getvalue().startswith("movie_id_query,") and f"\n{movie},1," in out.getvalue()
    out = io.StringIO()
    m.write_stream(m.recommend_stream(["1"], k=2), out, "csv")
    assert out.getvalue().startswith("user_id,rank,")


def test_open_reads_the_config_the_cli_reads_and_train_records_its_dataset(trained_run, tmp_path, monkeypatch):
    """A review: er.open(run) ignored ./embedrec.yaml (k, foldin settings), so it answered otherwise than
    `embedrec recommend` on the same run; er.train(ds, cfg) with ds ingested elsewhere (output=) recorded the
    config's dataset, and save() with no folder replaced the config's run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "embedrec.yaml").write_text("recommend:\n  k: 3\n")
    assert len(er.open(trained_run.cfg.run.dir).recommend(1).movie_ids[0]) == 3
    assert len(er.open(trained_run.cfg.run.dir, er.load_config(None)).recommend(1).movie_ids[0]) == 3
    (tmp_path / "embedrec.yaml").unlink()

    import shutil

    other = tmp_path / "elsewhere"
    shutil.copytree(trained_run.cfg.data.prepared, other, symlinks=True)
    from embedrec.data.dataset import load_dataset

    cfg = trained_run.cfg.updated({"train.epochs": 1, "run.dir": str(tmp_path / "explicit-run")})
    model = er.train(load_dataset(other), cfg)
    assert model.config.data.prepared == str(other) and model.config.run.dir == str(tmp_path / "explicit-run")
    plain = er.load_config(None, {"data.prepared": str(trained_run.cfg.data.prepared), "train.epochs": 1,
                                  "model.dim": 4})
    derived = er.train(load_dataset(other), plain)
    assert derived.config.data.prepared == str(other) and derived.config.run.dir.endswith("runs/elsewhere")
    by_path = er.train(str(other), plain)  # a review: the path given as text kept the config's dataset
    assert by_path.config.data.prepared == str(other)


def test_help_on_train_and_ingest_shows_the_functions():
    """A review: help(er.train) showed the package embedrec.training ('Kept empty ...') and its signature was
    (*args, **kwargs), so a notebook's Shift-Tab showed nothing of use."""
    import inspect

    from embedrec import api

    assert inspect.getdoc(er.train) == inspect.getdoc(api.train)
    assert inspect.signature(er.ingest) == inspect.signature(api.ingest)
    assert str(inspect.signature(er.train)).startswith("(ds: 'Dataset | None' = None, cfg:")
    import pydoc

    import embedrec.training.fit  # noqa: F401  (the trainers' package no longer shares er.train's name)

    assert er.train is api.train  # help() showed the package (a review): now the function itself
    assert pydoc.render_doc(er.train, renderer=pydoc.plaintext).splitlines()[2].startswith("train(ds: 'Dataset")
    assert pydoc.render_doc(er.ingest, renderer=pydoc.plaintext).splitlines()[2].startswith("ingest(source")


def test_ctrl_c_anywhere_in_er_train_is_interrupted(trained_run, monkeypatch):
    """A review: Ctrl-C during the final evaluation (or loading) came out of er.train as a bare KeyboardInterrupt,
    and in a checkpoint write as torch's RuntimeError('unexpected pos'), which a sweep's `except Exception`
    swallows; both are er.Interrupted."""
    from embedrec import train_workflow
    from embedrec.fsutil.files import atomic_write_bytes

    def stop(*a, **k):
        raise KeyboardInterrupt

    from embedrec.training import loop

    real = loop.KeepBest.record

    def second(self, state, row):  # Ctrl-C in an epoch: the loop's own words (its fields), not its text cut up
        if state.epoch + 1 == 2:
            raise KeyboardInterrupt
        real(self, state, row)

    with monkeypatch.context() as m:
        m.setattr(loop.KeepBest, "record", second)
        with pytest.raises(er.Interrupted) as got:
            er.train(None, trained_run.cfg.updated({"train.patience": 5}))
    assert str(got.value).startswith("training interrupted after epoch 2: er.train keeps nothing"), str(got.value)
    assert not got.value.saved and got.value.where == "training interrupted after epoch 2"
    monkeypatch.setattr(train_workflow, "train_model", stop)
    with pytest.raises(er.Interrupted, match="training interrupted: er.train keeps nothing"):
        er.train(None, trained_run.cfg)

    import os

    import torch

    real_fdopen = os.fdopen

    def fdopen(fd, mode):  # the checkpoint file: Ctrl-C lands in its third write, inside torch.save's zip writer
        fh, calls = real_fdopen(fd, mode), [0]
        real_write = fh.write

        def write(b):
            calls[0] += 1
            if calls[0] == 3:
                raise KeyboardInterrupt
            return real_write(b)

        fh.write = write
        return fh

    monkeypatch.setattr("embedrec.fsutil.files.os.fdopen", fdopen)
    target = Path(trained_run.cfg.run.dir + "-ckpt.pt")
    with pytest.raises(KeyboardInterrupt) as got:  # torch.save alone raises RuntimeError('... unexpected pos ...')
        atomic_write_bytes(target, lambda fh: torch.save({"w": torch.zeros(100_000)}, fh), durable=False)
    assert type(got.value) is KeyboardInterrupt and not target.exists()


def test_flag_arguments_of_the_workflow_are_true_or_false_never_read_by_their_truth(trained_run, tmp_path,
                                                                                     synth_dir):
    """An architecture review: er.ingest(..., overwrite="no") replaced an existing dataset, er.train(progress="no")
    drew bars, while Model.export(overwrite="no") was refused. Every flag of a workflow function is now checked
    as Model's are (argcheck.flag), before anything is read or written."""
    from embedrec.api import export_run, train_run

    cfg = trained_run.cfg.updated({"data.prepared": str(tmp_path / "ds"), "run.dir": str(tmp_path / "run"),
                                   "tune.dir": str(tmp_path / "tune")})
    src = str(synth_dir[0])
    calls = {"ingest: overwrite": lambda v: er.ingest(src, cfg, overwrite=v),
             "ingest: progress": lambda v: er.ingest(src, cfg, progress=v),
             "train: progress": lambda v: er.train(trained_run.cfg.data.prepared, cfg, progress=v),
             "train_run: resume": lambda v: train_run(cfg, resume=v),
             "train_run: progress": lambda v: train_run(cfg, progress=v),
             "tune_dims: fresh": lambda v: er.tune_dims(cfg, dims=[4], fresh=v),
             "tune_dims: overwrite": lambda v: er.tune_dims(cfg, dims=[4], overwrite=v),
             "tune_dims: progress": lambda v: er.tune_dims(cfg, dims=[4], progress=v),
             "export_run: overwrite": lambda v: export_run(trained_run.cfg, to="npy", output=tmp_path / "e", overwrite=v),
             "export_run: progress": lambda v: export_run(trained_run.cfg, to="npy", output=tmp_path / "e", progress=v)}
    for says, call in calls.items():
        for bad, shown in (("no", "'no'"), (None, "None"), (0, "0"), (1, "1")):
            with pytest.raises(UsageError, match=f"^{says} must be True or False, not {shown}$"):
                call(bad)
    assert list(tmp_path.iterdir()) == []
    assert er.ingest(src, cfg, overwrite=np.bool_(False)).path is not None  # a numpy bool is a bool


def test_load_config_refuses_overrides_that_are_neither_texts_nor_a_mapping():
    """An architecture review: er.load_config(None, 5) and load_config(None, [5]) raised bare TypeErrors, while
    [("model.dim", 3)] got a ConfigError. Overrides are a mapping or 'section.key=value' texts (None: none);
    anything else is a ConfigError naming the argument."""
    from embedrec.config import load_config

    for load in (er.load_config, load_config):
        for bad, kind in ((5, "int"), (b"model.dim=3", "bytes"), (3.5, "float")):
            with pytest.raises(ConfigError, match=rf"^load_config: overrides must be a mapping .* not {kind}$"):
                load(None, bad)
        for bad, shown, kind in (([5], "5", "int"), ([("model.dim", 3)], r"\('model.dim', 3\)", "tuple"),
                                 (["model.dim=3", None], "None", "NoneType")):
            with pytest.raises(ConfigError, match=rf"^override {shown}: expected a 'section.key=value' text, .* "
                                                  rf"not {kind}$") as e:
                load(None, bad)
            assert e.value.cli_message().startswith(f"--set {shown.replace(chr(92), '')}:")
        assert load(None, None).model.dim == load().model.dim  # None: no overrides, as ()
        assert load(None, iter(["model.dim=9"])).model.dim == 9


def test_ingest_and_train_config_errors_speak_library_terms(tmp_path, synth_dir):
    """An architecture review: er.ingest with split.last_k=2 said 'add --set split.method=user_time', and an als
    model with features 'use --set model.loss=bpr' (library errors in CLI words); the CLI's lines are as before."""
    from embedrec.training.fit import resolve_loss

    cfg = er.load_config(None, {"data.prepared": str(tmp_path / "ds"), "split.last_k": 2})
    with pytest.raises(ConfigError) as e:
        er.ingest(str(synth_dir[0]), cfg)
    assert "--" not in str(e.value) and "add split.method=user_time, or" in str(e.value)
    assert "add --set split.method=user_time, or" in e.value.cli_message()
    cfg = er.load_config(None, {"model.loss": "als", "features.movie": ["genre"]})
    with pytest.raises(ConfigError) as e:
        resolve_loss(cfg.model, cfg.features.active)
    assert "--" not in str(e.value) and "use model.loss=bpr or softmax" in str(e.value)
    assert "use --set model.loss=bpr or softmax" in e.value.cli_message()
    assert not (tmp_path / "ds").exists()


def test_bad_arguments_to_streams_and_features_are_usage_errors_at_the_call(trained_run, tmp_path):
    """A review: recommend_features(5) and ([1, 2]) were TypeErrors; recommend_stream(5) raised one at the first
    next(), and on_batch=5 after the batch was answered; write_stream to a path was an AttributeError, of 5 a
    TypeError, and a 1-tuple an IndexError. Each is a UsageError naming the argument, raised at the call."""
    m = trained_run.opened
    for bad in (5, [1, 2], "age=25"):
        with pytest.raises(UsageError, match=r"recommend_features: values=.*: give \{column: value\}"):
            m.recommend_features(bad, k=3)
    with pytest.raises(UsageError, match=r"recommend_stream: lines=5: give user ids one by one"):
        m.recommend_stream(5, k=3)  # not list(...): at the call
    with pytest.raises(UsageError, match=r"recommend_stream: on_batch=5: give a function of no arguments"):
        m.recommend_stream(["1"], k=3, on_batch=5)
    out = tmp_path / "out.tsv"
    for target in (str(out), out):
        with pytest.raises(UsageError, match=r"write_stream: out must be a text file \(sys.stdout, or open\(path, "
                                             r"'w'\) for a file\), not the path '.*out.tsv'"):
            m.write_stream(m.recommend_stream(["1"], k=2), target)
    assert not out.exists()
    with pytest.raises(UsageError, match=r"write_stream: triples=5: give recommend_stream's answers"):
        m.write_stream(5, io.StringIO())
    for bad, shown in (((1,), r"\(1,\)"), (7, "7"), ("abc", "'abc'")):
        with pytest.raises(UsageError, match=rf"write_stream: item 1 is {shown}; give \(query id, movie ids, scores\)"):
            m.write_stream([bad], io.StringIO())


def test_movie_find_movie_and_rated_keys_refuse_what_is_no_id(trained_run):
    """A review: movie(True), movie(None), movie([1]) and movie(nan) said "movie 'True' is not in the training
    data", find_movie(None) looked for the title 'None', and rated={True: 5} or {(1, 2): 5} was NotFoundError,
    where README says None, NaN, True or a nested list is a UsageError (as similar(True) is)."""
    m = trained_run.model
    for bad, why in ((True, "a flag"), (None, "a missing value"), ([1], "a list"), (float("nan"), "a missing value")):
        with pytest.raises(UsageError, match=re.escape(f"({why})")):
            m.movie(bad)
        with pytest.raises(UsageError, match=re.escape(f"({why})")):
            m.find_movie(bad)
    with pytest.raises(UsageError, match=r"rated: True is not an id \(a flag\)"):
        m.recommend_new(rated={True: 5}, k=3)
    with pytest.raises(UsageError, match=r"rated: \(1, 2\) is not an id \(a tuple\)"):
        m.recommend_new(rated={(1, 2): 5}, k=3)
    movie = int(m.movie_ids[0])
    assert m.movie(movie)["movie_id"] == m.movie(float(movie))["movie_id"] == m.find_movie(movie) == movie


def test_an_unknown_user_answered_with_the_popular_list_is_said_once_in_one_wording(trained_run, caplog,
                                                                                    monkeypatch):
    """A review: recommend(missing='popular') said nothing, recommend_stream warned, and the CLI's --user wrote its
    own warning. Now the library says it, in one wording (a stream's with its name:line), and the CLI relies on it."""
    import logging

    from embedrec.errors import TermsFilter

    monkeypatch.setattr(logging.getLogger("embedrec"), "filters", [TermsFilter(cli=False)])  # as from Python
    m = trained_run.opened
    said = "user '999999' is not in the training data (300 users): most popular movies instead"
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        assert m.recommend([999999, 1], k=3, missing="popular").fallback == [True, False]
    assert [r.getMessage() for r in caplog.records] == [said]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        list(m.recommend_stream(["1", "999999"], k=3, missing="popular"))
    assert [r.getMessage() for r in caplog.records] == [f"<input>:2: {said}"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        m.recommend(list(range(1000, 1007)), k=3, missing="popular")
    assert len(caplog.records) == 6 and caplog.records[-1].getMessage() == (
        "7 unknown users answered with the most popular movies in all (the first 5 are named above)")
    trained_on = Path(trained_run.cfg.data.prepared).resolve()  # a first-hour review: which data the run knows
    with pytest.raises(NotFoundError, match=re.escape(f"user '999999' is not in the training data (300 users); the "
                                                      f"run was trained on '{trained_on}'; pass missing='skip' or "
                                                      "missing='popular', or use recommend_new")):
        m.recommend([999999], k=3)


def test_a_saved_models_repr_names_its_run_folder(trained_run):
    """A review: after save(), repr(model) still said '(in memory)'."""
    model = trained_run.model  # saved by the fixture (er.train, then save())
    assert repr(model).endswith(f" saved to '{model._saved}'>") and "in memory" not in repr(model), repr(model)
    assert repr(trained_run.opened).endswith(f" from '{trained_run.opened.engine.run.path}'>")


def test_resolve_movies_takes_titles_as_the_cli_does(trained_run):
    """A review: a notebook could not ask for 'the movies I liked' by title: the CLI alone read --liked titles. Now
    Model.resolve_movies does, and the CLI calls it."""
    m = trained_run.opened
    ids, by_title = m.resolve_movies(["the movie 50", 7, "9", np.int64(11)])
    assert ids == [50, 7, 9, 11] and by_title == {"the movie 50": 50}  # "9": the id 9, found as one
    np.testing.assert_array_equal(m.recommend_new(liked=ids, k=5).movie_ids[0],
                                  m.recommend_new(liked=[50, 7, 9, 11], k=5).movie_ids[0])
    for bad, said in (("the movie 50", "got the text"), (5, "expected a list, not int"), ([None], "a missing value")):
        with pytest.raises(UsageError, match=re.escape(said)):
            m.resolve_movies(bad)
    with pytest.raises(NotFoundError):
        m.resolve_movies(["no such title at all"])
    with pytest.raises(UsageError, match=r"rated: movie 50 is rated twice"):  # a title and its id: one movie
        m.recommend_new(rated=list(zip(m.resolve_movies(["the movie 50", 50])[0], [5, 1])), k=3)


def test_write_stream_and_predict_lines_flags_are_true_or_false(trained_run):
    """A review of the flag fix: write_stream(header=, fallback_column=) and predict_lines(strict=) still read
    'no' as True."""
    import io

    from embedrec.predict_input import predict_lines

    m = trained_run.opened
    for kw in ({"header": "no"}, {"fallback_column": "no"}):
        with pytest.raises(UsageError, match=f"^{next(iter(kw))} must be True or False, not 'no'$"):
            m.write_stream(m.recommend_stream(["1\n"], k=2), io.StringIO(), "tsv", **kw)
    with pytest.raises(UsageError, match="^predict_lines: strict must be True or False, not 'no'$"):
        predict_lines(m, ["1,2\n"], strict="no")


def test_pandas_missing_values_are_no_ids(trained_run):
    """A notebook review: pd.NA, the gap of pandas' string and Int64 columns, was the id '<NA>' (NotFoundError, or
    dropped silently with missing='skip', NaN from predict), where NaN and None are a UsageError."""
    import pandas as pd

    m = trained_run.opened
    for ids in ([pd.NA], pd.Series(["1", None], dtype="string"), pd.array([1, None], dtype="Int64"), [pd.NaT]):
        for call in (lambda v: m.recommend(v, k=2), lambda v: m.recommend(v, k=2, missing="skip")):
            with pytest.raises(UsageError, match="is not an id \\(a missing value\\)"):
                call(ids)
    with pytest.raises(UsageError, match="is not an id \\(a missing value\\)"):
        m.predict([(pd.NA, 1)])


def test_a_dataframe_is_a_source(tmp_path, monkeypatch, caplog):
    """Notebook reviews: er.ingest(df, cfg) was refused (Surprise's load_from_df and LensKit's
    from_interactions_df take one). Its columns are matched as a file's; the frame is written once to the cache,
    named by its content, which the dataset records; a frame that cannot be ratings is one UsageError."""
    import logging

    import numpy as np
    import pandas as pd

    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"userId": rng.integers(1, 40, 800), "movieId": rng.integers(1, 60, 800),
                       "rating": rng.integers(1, 6, 800).astype(float)}).drop_duplicates(["userId", "movieId"])
    with caplog.at_level(logging.INFO, logger="embedrec"):
        ds = er.ingest(df, er.load_config(None, {}))
    # read as the frame it is, not its cache file's layout (a first-hour pass: 'parquet layout')
    assert any(r.getMessage().startswith(f"read {len(df)} rows (a pandas DataFrame) in ") for r in caplog.records)
    cached = sorted((tmp_path / "cache" / "dataframes").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith("dataframe-") and cached[0].suffix == ".parquet"
    assert ds.manifest["source"] == str(cached[0]) and ds.manifest["counts"]["ratings"] == len(df)
    assert ds.path.resolve() == (tmp_path / "data" / "prepared" / cached[0].stem).resolve()
    assert set(ds.users["user_id"]) == set(df.userId) and set(ds.movies["movie_id"]) == set(df.movieId)
    again = er.ingest(df.copy(), output=tmp_path / "ds2")  # the same frame: the same cached file
    assert sorted((tmp_path / "cache" / "dataframes").iterdir()) == cached and again.manifest["source"] == str(cached[0])
    # a first-hour review: the Dataset given output= was shown as <Dataset dataframe-212947ed4959 ...>, its frame's
    # hash; it is named after the folder chosen, the data's name kept in its manifest (the summary's, a run's)
    assert repr(again).startswith(f"<Dataset ds2 ({again.n_users:,} users x ") and \
        again.manifest["name"] == cached[0].stem, repr(again)
    assert repr(ds).startswith(f"<Dataset {cached[0].stem} (")  # the default folder: named after the frame's data
    assert ds.summary().splitlines()[0].endswith("from a pandas DataFrame"), ds.summary()  # not 'layout parquet'
    # a cached copy damaged or swapped for a link since is written again, never read (a red team: a flipped bit
    # gave 199 users of 200, and a link another file's rows)
    data = bytearray(cached[0].read_bytes())
    data[len(data) // 3] ^= 0xFF
    cached[0].write_bytes(bytes(data))
    assert er.ingest(df, output=tmp_path / "ds3").manifest["counts"] == ds.manifest["counts"]
    other = tmp_path / "other.parquet"
    df.iloc[:10].to_parquet(other, index=False)
    cached[0].unlink()
    cached[0].symlink_to(other)
    assert er.ingest(df, output=tmp_path / "ds4").manifest["counts"] == ds.manifest["counts"]
    assert not cached[0].is_symlink() and len(pd.read_parquet(other)) == 10  # the link replaced, its target kept
    bad = {"empty": (df.iloc[:0], r"^ingest: the DataFrame has no rows"),
           "lists": (df.assign(rating=[[1]] * len(df)), r"^ingest: the DataFrame's values cannot be ratings"),
           # a bad cell's row and column named, as a file's line is (a review: 'Could not convert' without them)
           "mixed": (df.assign(userId=[1, "a"] * (len(df) // 2) + [1] * (len(df) % 2)),
                     r"^ingest: the DataFrame: row 2 \(df\.iloc\[1\]\): column 'userId' holds 'a' \(a str\) where "
                     r"row 1 holds 1 \(an int\); give each column cells of one type \(df\['userId'\]\.astype\(str\)")}
    for name, (frame, match) in bad.items():
        with pytest.raises(UsageError, match=match):
            er.ingest(frame, output=tmp_path / name)
    assert sorted((tmp_path / "cache" / "dataframes").iterdir()) == cached  # nothing half-written left
    with pytest.raises(UsageError, match=r"^ingest: the DataFrame's index \(userId\) is not read, only its columns; "
                                         r"df\.reset_index\(\) first"):
        er.ingest(df.set_index("userId"), output=tmp_path / "indexed")
    with pytest.raises(UsageError, match=r"^ingest: the DataFrame has no columns"):
        er.ingest(pd.DataFrame(index=range(5)), output=tmp_path / "nocols")
    with pytest.raises(UsageError, match=r"^ingest: the DataFrame: row 1 \(df\.iloc\[0\]\): column 'userId' holds "
                                         r"1180591620717411303424 \(an int\), which Parquet cannot hold \(.*\); give "
                                         r"it as text \(df\['userId'\]\.astype\(str\) for ids beyond 64 bits\)$"):
        er.ingest(df.assign(userId=[2 ** 70] * len(df)).astype({"userId": object}), output=tmp_path / "huge")
    with pytest.raises(UsageError, match=r"^ingest: the DataFrame: row 3 \(df\.iloc\[2\]\): column 'movieId' holds "
                                         r"'x' \(a str\) where row 2 holds 7 \(an int\)"):  # a null is no other type
        er.ingest(df.assign(movieId=[None, 7, "x"] + [7] * (len(df) - 3)), output=tmp_path / "nulls")
    with pytest.raises(UsageError, match=r"^ingest: the DataFrame has two columns named '1'"):
        er.ingest(pd.DataFrame([[1, 2, 1]], columns=["userId", 1, "1"]), output=tmp_path / "dup")
    # a review: a rating column's 'x' in row 1 blamed the 4.0 of row 2, with advice to make the ratings texts
    with pytest.raises(UsageError, match=r"^ingest: the DataFrame: row 1 \(df\.iloc\[0\]\): column 'rating' holds "
                                         r"'x' \(a str\) where row 2 holds 4\.0 \(a float\); give each column cells of "
                                         r"one type: a 'rating' column holds numbers \(pd\.to_numeric\(df\['rating'\], "
                                         r"errors='coerce'\), then drop the rows that are not\)$"):
        er.ingest(df.assign(rating=["x"] + [4.0] * (len(df) - 1)), output=tmp_path / "oddfirst")
    # the same frame from threads at once: one file (a review: a temporary named by the process was shared)
    import threading

    from embedrec.data.frames import frame_source

    other, got = df.assign(rating=df.rating + 0.5), []
    for _ in range(10):  # (CI: a writer listed another's temporary, renamed before it looked at it)
        threads = [threading.Thread(target=lambda: got.append(frame_source(other))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(got) == 40 and len(set(got)) == 1 and not [p for p in (tmp_path / "cache" / "dataframes").iterdir()
                                                          if p.name.startswith(".")]
    # another writer's temporary, listed, then renamed before it is looked at: no error (CI, once)
    from pathlib import Path

    real_glob, ghost = Path.glob, tmp_path / "cache" / "dataframes" / ".dataframe-x.parquet.gone"
    with monkeypatch.context() as m:
        m.setattr(Path, "glob", lambda self, pat: [ghost] if pat.startswith(".dataframe-") else real_glob(self, pat))
        fresh = frame_source(df.assign(rating=9.0))  # a frame not cached yet: written
    assert Path(fresh).is_file() and fresh != str(cached[0])
    # 1 and '1' are other frames; data.cache_dir is the cache
    assert frame_source(pd.DataFrame({"u": [1], "m": [2]}).astype(object)) != \
        frame_source(pd.DataFrame({"u": ["1"], "m": ["2"]}))
    assert frame_source(df, str(tmp_path / "mine")).startswith(str(tmp_path / "mine" / "dataframes"))
    # a cache that cannot be written (read-only, shared; root writes anyway, so the write is made to fail): the copy
    # there where it reads back as this frame, else one line naming the setting (a review: a hidden temporary's name)
    from embedrec.errors import ArtifactError
    from embedrec.fsutil import files

    def read_only(path, data, durable=True):
        raise ArtifactError(f"read-only file system writing '{path.parent / ('.' + path.name + '.x1')}'; choose "
                            "another folder")

    monkeypatch.setattr(files, "atomic_write_bytes", read_only)
    assert frame_source(df) == str(cached[0])
    with pytest.raises(UsageError, match=r"^ingest: cannot write the DataFrame to '.*dataframes' \(read-only file "
                                         r"system\); point data.cache_dir \(or \$EMBEDREC_CACHE\) at a writable"):
        frame_source(df.assign(rating=0.0))
    cached[0].write_bytes(cached[0].read_bytes()[:100])  # a damaged copy is not served
    with pytest.raises(UsageError, match=r"^ingest: cannot write the DataFrame"):
        frame_source(df)
    from embedrec.api import ingest_config

    with pytest.raises(UsageError, match=r"^ingest: source is a path here, not a DataFrame: er\.ingest\(df"):
        ingest_config(df)


def test_ingest_run_again_on_the_same_data_and_settings_returns_the_dataset_it_made(tmp_path, monkeypatch, caplog):
    """A first-hour review: a notebook's er.ingest(df, cfg) run twice raised OutputExists, the dataset being named
    by the frame's content. Where the dataset there was ingested from the same data (the SHA-256 its manifest
    records of each input, as the files are now) with the same data.* and split.* settings, it is returned, said in
    one line, nothing written; other settings, changed data or a lost manifest are refused as before."""
    import logging

    import numpy as np
    import pandas as pd

    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"user_id": rng.integers(1, 40, 800), "movie_id": rng.integers(1, 60, 800),
                       "rating": rng.integers(1, 6, 800).astype(float)})
    cfg = er.load_config(None)
    ds = er.ingest(df, cfg)
    folder = Path(ds.path)
    generation = os.readlink(folder / "current")
    with caplog.at_level(logging.INFO, logger="embedrec"):
        caplog.clear()
        again = er.ingest(df.copy(), cfg)
    assert again.fingerprint == ds.fingerprint and Path(again.path) == folder
    assert os.readlink(folder / "current") == generation  # nothing written
    said = [r.getMessage() for r in caplog.records]
    assert f"reused dataset '{Path('data/prepared') / folder.name}': ingested from the same data with the same " \
        "settings (overwrite=True ingests it again)" in said, said
    assert not any(m.startswith("wrote ") for m in said)
    with pytest.raises(OutputExists, match="overwrite=True"):  # another split: refused as before
        er.ingest(df, cfg.updated({"split.test": 0.3}))
    assert er.ingest(df, cfg, overwrite=True).fingerprint == ds.fingerprint  # (written again on request)
    assert os.readlink(folder / "current") != generation
    # a file: the same file again reused; the file changed since, refused
    df.to_csv(tmp_path / "r.csv", index=False)
    first = er.ingest(tmp_path / "r.csv", cfg, output=tmp_path / "r")
    assert er.ingest(tmp_path / "r.csv", cfg, output=tmp_path / "r").fingerprint == first.fingerprint
    df.iloc[:-1].to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(OutputExists):
        er.ingest(tmp_path / "r.csv", cfg, output=tmp_path / "r")
    # a dataset whose manifest cannot be read is never taken for the same
    from embedrec.ingestion import ingested_alike

    df.to_csv(tmp_path / "r.csv", index=False)
    assert ingested_alike(tmp_path / "r", cfg.updated({"data.source": str(tmp_path / "r.csv")}))
    (tmp_path / "r" / "current").unlink()
    assert not ingested_alike(tmp_path / "r", cfg.updated({"data.source": str(tmp_path / "r.csv")}))
    # a release folder that gained a movies.csv since is other data (a code review: it was reused, no titles)
    rel = tmp_path / "rel"
    rel.mkdir()
    df.rename(columns={"user_id": "userId", "movie_id": "movieId"}).assign(timestamp=1).to_csv(
        rel / "ratings.csv", index=False)
    first = er.ingest(rel, cfg, output=tmp_path / "relds")
    assert er.ingest(rel, cfg, output=tmp_path / "relds").fingerprint == first.fingerprint
    pd.DataFrame({"movieId": range(1, 60), "title": [f"M {i} (1999)" for i in range(1, 60)],
                  "genres": "Drama"}).to_csv(rel / "movies.csv", index=False)
    with pytest.raises(OutputExists):
        er.ingest(rel, cfg, output=tmp_path / "relds")


def test_same_settings_reads_a_key_added_since_a_record_was_written_as_its_default():
    """A code review: a manifest written before data.movies_separator existed never matched a config that has it
    (None), so every older dataset counted as other settings (cross-validate re-ingested every fold)."""
    from embedrec.ingestion import same_settings

    cfg = er.load_config(None)
    record = cfg.to_dict()
    older = {s: dict(v) for s, v in record.items() if isinstance(v, dict)}
    del older["data"]["movies_separator"]
    assert same_settings({"config": older}, cfg)
    assert not same_settings({"config": older}, cfg.updated({"data.movies_separator": ";"}))
    assert not same_settings({"config": older}, cfg.updated({"split.seed": 7}))


def test_a_failed_ingest_leaves_no_cached_frame_and_old_ones_are_pruned(tmp_path, monkeypatch):
    """A notebook review: er.ingest(df) wrote CACHE/dataframes/dataframe-<hash>.parquet at every call, failed ones
    too, and the cache only grew. A failed call removes the file it wrote (not one an earlier call wrote, which a
    dataset may record); a file no call has written for KEEP_DAYS days is removed by the next call."""
    import numpy as np
    import pandas as pd

    from embedrec.data.frames import KEEP_DAYS
    from embedrec.errors import DataError

    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "dataframes"
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"userId": rng.integers(1, 40, 800), "movieId": rng.integers(1, 60, 800),
                       "rating": rng.integers(1, 6, 800).astype(float)}).drop_duplicates(["userId", "movieId"])
    with pytest.raises(DataError, match="the DataFrame"):  # no user column: read, then refused
        er.ingest(df.rename(columns={"userId": "who"}), output=tmp_path / "bad")
    assert not cache.exists() or list(cache.iterdir()) == []
    movies = pd.DataFrame({"movieId": [1], "genres": ["A"]})  # no title: the ratings' and the movies' files both
    with pytest.raises(DataError):
        er.ingest(df, movies=movies, output=tmp_path / "bad2")
    assert list(cache.iterdir()) == []
    ds = er.ingest(df, output=tmp_path / "ds")
    kept = Path(ds.manifest["source"])
    assert list(cache.iterdir()) == [kept]
    with pytest.raises(OutputExists):  # the same frame again with other settings, refused: the file an earlier
        er.ingest(df, er.load_config(None, ["split.seed=7"]), output=tmp_path / "ds")  # call wrote stays
    assert list(cache.iterdir()) == [kept]
    old = time.time() - (KEEP_DAYS + 1) * 86400
    os.utime(kept, (old, old))
    er.ingest(df.assign(rating=df.rating + 1), output=tmp_path / "ds2")  # another frame: the old one pruned
    assert kept not in list(cache.iterdir()) and len(list(cache.iterdir())) == 1
    os.utime(next(cache.iterdir()), (old, old))
    er.ingest(df.assign(rating=df.rating + 1), output=tmp_path / "ds2", overwrite=True)  # written again: kept
    assert len(list(cache.iterdir())) == 1


@pytest.mark.parametrize("published", [True, False], ids=["after-publish", "before-publish"])
def test_ctrl_c_after_er_ingest_published_keeps_the_frame_its_dataset_records(tmp_path, monkeypatch, published):
    """A review: a Ctrl-C just after publish_dataset made the new dataset current (while older generations were
    pruned) came out of er.ingest(df) as a failure, which removed the cache file that dataset records as its
    source. A failure removes only what no published dataset names: once this call's generation is current, its
    files stay; before that (a new folder, or over an older dataset of other frames), they go."""
    import embedrec.ingestion as ingestion
    from embedrec.data.dataset import current_generation

    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "dataframes"
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"user_id": rng.integers(1, 40, 800), "movie_id": rng.integers(1, 60, 800), "rating": 4.0})
    movies = pd.DataFrame({"movie_id": range(1, 60), "title": [f"Film {i}" for i in range(1, 60)]})
    real = ingestion.publish_dataset

    def ctrl_c(*a, **k):
        if published:
            real(*a, **k)
        raise KeyboardInterrupt

    for out, frame in ((tmp_path / "new", df), (tmp_path / "over", df.assign(rating=3.0))):
        if out.name == "over":  # over a dataset of another frame (its files recorded: never removed)
            er.ingest(df.assign(rating=5.0), movies=movies, output=out)
        cached, before = set(cache.glob("*")), current_generation(out)
        monkeypatch.setattr(ingestion, "publish_dataset", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            er.ingest(frame, movies=movies, output=out, overwrite=True)
        monkeypatch.setattr(ingestion, "publish_dataset", real)
        if not published:
            assert current_generation(out) == before and set(cache.glob("*")) == cached
            continue
        ds = er.load_dataset(out)
        recorded = [Path(ds.manifest["source"]), Path(ds.manifest["config"]["data"]["movies"])]
        assert current_generation(out) != before and all(p.parent == cache and p.is_file() for p in recorded)
        assert str(recorded[0]) not in map(str, cached)  # this call's own file, kept


def test_a_read_of_a_cached_frame_keeps_it_and_one_pruned_is_said_of_its_frame(tmp_path, monkeypatch):
    """A review: the cache pruned a DataFrame's file 30 days after er.ingest(df) wrote it, though datasets, runs'
    and tune-dims' configs name it as their data.source and `ingest --set data.source=F` (ingest -c,
    cross-validate -c) read it since; the next such ingest then said "data.source '.../dataframe-<hash>.parquet':
    file not found; check the path", nothing of a DataFrame. An ingest's read sets its time (mark_read), and one
    gone is said as the frame's, with the call that writes it back under its name."""
    from click.testing import CliRunner

    from embedrec.cli.app import main
    from embedrec.data.frames import KEEP_DAYS, gone, mark_read
    from embedrec.errors import DataError

    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache" / "dataframes"
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"userId": rng.integers(1, 40, 800), "movieId": rng.integers(1, 60, 800),
                       "rating": rng.integers(1, 6, 800).astype(float)}).drop_duplicates(["userId", "movieId"])
    movies = pd.DataFrame({"movieId": range(1, 60), "title": [f"Film {i}" for i in range(1, 60)]})
    ds = er.ingest(df, movies=movies, output="ds")
    source, movies_file = Path(ds.manifest["source"]), Path(ds.manifest["config"]["data"]["movies"])
    assert source.parent == cache and movies_file.parent == cache
    old = time.time() - (KEEP_DAYS + 1) * 86400
    mine = tmp_path / "mine.csv"  # a file of the user's own is never touched
    mine.write_text("x\n")
    for p in (source, movies_file, mine):
        os.utime(p, (old, old))
    mark_read(None, str(mine))
    assert mine.stat().st_mtime == pytest.approx(old)
    # read again (as ingest -c reads what a run's config names): both files' times are now's
    r = CliRunner().invoke(main, ["ingest", "-q", "--set", f"data.source={source}", "--set",
                                  f"data.movies={movies_file}", "-o", "again"])
    assert r.exit_code == 0, r.stderr
    for p in (source, movies_file):
        assert time.time() - p.stat().st_mtime < 3600
    er.ingest(df.assign(rating=df.rating.rsub(6)), output="other")  # another frame's call prunes: these are kept
    assert source.is_file() and movies_file.is_file()
    # gone (30 days unread, a cleared cache): said of the frame, one line, and how to write it back
    source.unlink()
    r = CliRunner().invoke(main, ["ingest", "--set", f"data.source={source}", "-o", "again", "--overwrite"])
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (f"error: data.source '{source}' is the cache's copy of a DataFrame given to er.ingest, "
                        f"removed since (the cache removes one no ingest has written or read for {KEEP_DAYS} days); "
                        "give that DataFrame again: er.ingest(df, ...) writes it back under this name\n")
    er.ingest(df, movies=movies, output="ds", overwrite=True)  # ... which it does, under the same name
    assert source.is_file()
    movies_file.unlink()
    with pytest.raises(DataError) as got:
        er.ingest(str(source), er.load_config(None, {"data.movies": str(movies_file)}), output="again",
                  overwrite=True)
    assert str(got.value) == gone(str(movies_file), "data.movies")
    assert str(got.value).startswith(f"data.movies '{movies_file}' is the cache's copy of a movies DataFrame given "
                                     "to er.ingest, removed since") and \
        str(got.value).endswith("give that movies DataFrame again: er.ingest(df, movies=movies, ...) writes it back "
                                "under this name")


def test_a_movies_dataframe_is_read_as_its_movies_file(tmp_path, monkeypatch, caplog):
    """A known gap: er.ingest took a ratings DataFrame but its titles and genres only as a file. movies= takes a
    DataFrame of them, cached as a ratings frame is and read as that file: the same movies (genres as text or as
    lists), the same checks and messages, said of 'the movies DataFrame' (its cache file never named)."""
    import logging

    import numpy as np
    import pandas as pd

    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"userId": rng.integers(1, 40, 800), "movieId": rng.integers(1, 30, 800),
                       "rating": rng.integers(1, 6, 800).astype(float)}).drop_duplicates(["userId", "movieId"])
    movies = pd.DataFrame({"movieId": range(1, 30), "title": [f"Film {i} ({1960 + i})" for i in range(1, 30)],
                           "genres": ["Drama|Comedy" if i % 2 else "Action" for i in range(1, 30)]})
    movies.to_csv(tmp_path / "movies.csv", index=False)
    by_file = er.ingest(df, movies=tmp_path / "movies.csv", output=tmp_path / "file")  # a path, as data.movies
    with caplog.at_level(logging.INFO, logger="embedrec"):
        by_frame = er.ingest(df, movies=movies, output=tmp_path / "frame")
    cached = str(by_frame.manifest["movies_path"])
    assert "/dataframes/dataframe-" in cached and by_frame.manifest["has_movie_metadata"]
    assert not any(cached in r.getMessage() for r in caplog.records)
    assert "the movies DataFrame: reading column 'movieId' as 'movie_id'" in caplog.messages
    pd.testing.assert_frame_equal(by_frame.movies, by_file.movies)
    assert by_frame.movies.loc[0, ["title", "year"]].tolist() == ["Film 1", 1961]
    assert list(by_frame.movies.loc[0, "genres"]) == ["Drama", "Comedy"]
    listed = er.ingest(df, movies=movies.assign(genres=movies.genres.str.split("|")), output=tmp_path / "listed")
    pd.testing.assert_frame_equal(listed.movies, by_file.movies)  # lists, as a dataset's own movies hold them
    # a bad movies frame: the file's message, said of the frame
    for n, bad in enumerate([movies.drop(columns="title"), movies.rename(columns={"movieId": "mid"}),
                             movies.assign(year=["x"] + ["1990"] * 28)]):
        bad.to_csv(tmp_path / f"bad{n}.csv", index=False)
        with pytest.raises(er.DataError) as as_file:
            er.ingest(df, movies=tmp_path / f"bad{n}.csv", output=tmp_path / f"badf{n}")
        with pytest.raises(er.DataError) as as_frame:
            er.ingest(df, movies=bad, output=tmp_path / f"bad{n}")
        want = str(as_file.value).replace(str(tmp_path / f"bad{n}.csv"), "the movies DataFrame")
        if n == 2:  # a file's line 2 is the frame's first row
            want = want.replace("the movies DataFrame:2:", "the movies DataFrame: row 1 (movies.iloc[0]):")
        assert str(as_frame.value) == want.replace("the movies file", "the movies DataFrame")
        assert cached.rsplit("/", 1)[0] not in str(as_frame.value)
    assert str(as_frame.value).startswith("the movies DataFrame: row 1 (movies.iloc[0]): column 'year' holds 'x'")
    # a year column mixing numbers and texts is read as text, so its bad year is named as a file's is (a review:
    # 'cannot be written as Parquet (... Could not convert 'nineteen' ...)' with a hint about ids, no row)
    mixed = movies.assign(year=[1990, 1991.0, None, "nineteen", "1995"] + [1990] * 24)
    with pytest.raises(er.DataError, match=r"^the movies DataFrame: row 4 \(movies\.iloc\[3\]\): column 'year' holds "
                                           r"'nineteen', not a year; write it as a whole number such as 1995"):
        er.ingest(df, movies=mixed, output=tmp_path / "bad")
    years = er.ingest(df, movies=mixed.assign(year=[1990, 1991.0, None, "1994", "1995"] + [1990] * 24),
                      output=tmp_path / "years").movies
    assert years.set_index("movie_id").loc[[1, 2, 3, 4, 5], "year"].tolist() == [1990, 1991, 1963, 1994, 1995]
    # a genres cell of another type: its row and column named, not pyarrow's "Expected bytes, got a 'int' object"
    with pytest.raises(UsageError, match=r"^ingest: the movies DataFrame: row 4 \(movies\.iloc\[3\]\): column 'genres' "
                                         r"holds 5 \(an int\) where row 1 holds 'Drama\|Comedy' \(a str\); give each "
                                         r"column cells of one type \(movies\['genres'\]\.astype\(str\)"):
        er.ingest(df, movies=movies.assign(genres=movies.genres.astype(object).where(movies.index != 3, 5)),
                  output=tmp_path / "bad")
    # its warnings name it as it is: the movies DataFrame (a review: 'the movies file repeats movie ids')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        er.ingest(df, movies=pd.concat([movies.iloc[2:], movies.iloc[2:4]]), output=tmp_path / "repeats")
    assert caplog.messages == ["the movies DataFrame repeats movie ids: 2 later rows dropped, the first row of each "
                               "id kept", f"{int(df.movieId.isin([1, 2]).sum()):,} ratings are for movies absent from "
                               "the movies DataFrame; kept (untitled). Set data.unknown_movies=drop to drop them"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        er.ingest(df, movies=movies.iloc[2:], output=tmp_path / "drop", cfg=er.load_config(
            None, {"data.unknown_movies": "drop"}))
    assert caplog.messages == [f"dropped {int(df.movieId.isin([1, 2]).sum()):,} ratings for movies absent from the "
                               "movies DataFrame"]
    with pytest.raises(er.DataError, match=r"^the movies DataFrame: missing column title \(found: movieId, "
                                           r"genres\); set data.columns.title to the titles' column$"):
        er.ingest(df, movies=movies.drop(columns="title"), output=tmp_path / "bad")
    for frame, match in ((movies.iloc[:0], r"^ingest: the movies DataFrame has no rows; give it the movies \(movie_id"),
                         (movies.set_index("movieId"), r"^ingest: the movies DataFrame's index \(movieId\) is not "
                                                       r"read, only its columns; movies\.reset_index\(\) first"),
                         (movies.assign(genres=[{"a": 1}] * 29), r"^ingest: the movies DataFrame's values cannot be "
                                                                 r"movies"),
                         ([1, 2], r"^ingest: movies must be a path \(str or pathlib\.Path\), or a pandas DataFrame "
                                  r"of the movies, not list")):
        with pytest.raises(UsageError, match=match):
            er.ingest(df, movies=frame, output=tmp_path / "bad")
    # ingested again without its source: both frames named as what to give again
    with pytest.raises(UsageError, match=r"give that DataFrame again: er\.ingest\(df, .* \(its movies DataFrame too, "
                                         r"as movies=\)$"):
        er.ingest(output=tmp_path / "frame", overwrite=True)


def test_evaluate_on_a_missing_gpu_names_the_argument(trained_run):
    """A review: er.open(run).evaluate(device='cuda') without a GPU said "config key 'train.device'", a key the
    caller never set; it names the argument."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(UsageError, match=r"^evaluate\(device='cuda'\): cuda was asked for but .*use device='cpu'"):
        trained_run.opened.evaluate(device="cuda")


def test_exclude_leaves_movies_out_of_every_list(trained_run):
    """A first-hour review: no way to keep movies out of a list (implicit's filter_items, LensKit's candidate
    selectors): bought, watched elsewhere, out of stock."""
    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    user = int(m.user_ids[0])
    top = m.recommend(user, k=5).movie_ids[0].tolist()
    out = m.recommend(user, k=5, exclude=top[:2] + [999999]).movie_ids[0].tolist()  # an unknown id: ignored
    assert out[:3] == top[2:] and not set(top[:2]) & set(out) and len(out) == 5
    stream = list(m.recommend_stream([str(user)], k=5, exclude=top[:2]))
    assert stream[0][1].tolist() == out
    movie = int(m.movie_ids[0])
    sim = m.similar(movie, k=3).movie_ids[0].tolist()
    assert sim[0] not in m.similar(movie, k=3, exclude=[sim[0]]).movie_ids[0].tolist()
    new = m.recommend_new(liked=[movie], k=3).movie_ids[0].tolist()
    assert new[0] not in m.recommend_new(liked=[movie], k=3, exclude=[new[0]]).movie_ids[0].tolist()
    pop = m.popular(k=3).movie_ids[0].tolist()
    assert m.popular(k=3, exclude=pop[:1]).movie_ids[0].tolist()[:2] == pop[1:]
    for bad in ("50", 50):
        with pytest.raises(UsageError, match=r"exclude=.*: give a list of movie ids, e\.g\. exclude=\[50, 181\]"):
            m.recommend(user, k=3, exclude=bad)


def test_candidates_are_the_only_movies_any_list_may_hold(trained_run, caplog):
    """implicit's ``items``, LensKit's candidate selector: what is in stock. Every method that lists movies keeps
    to them, beside the other filters; the list is each method's own ranking of them (the brute force's order);
    an id the model does not know is counted in one warning; an empty list is refused."""
    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    user = int(m.user_ids[0])
    full = m.recommend(user, k=len(m.movie_ids))
    ranked = full.movie_ids[0].tolist()
    pool = ranked[3:40:3]  # 13 movies, none of the user's top 3
    got = m.recommend(user, k=5, candidates=pool).movie_ids[0].tolist()
    assert got == [x for x in ranked if x in set(pool)][:5]  # the user's ranking restricted to the pool
    scores = dict(zip(ranked, full.scores[0].tolist()))
    assert m.recommend(user, k=5, candidates=pool).scores[0].tolist() == [scores[x] for x in got]
    assert m.recommend(user, k=50, candidates=pool).movie_ids[0].tolist() == [x for x in ranked if x in set(pool)]
    # beside exclude: the candidates less the excluded
    assert m.recommend(user, k=5, candidates=pool, exclude=got[:1]).movie_ids[0].tolist() == \
        [x for x in ranked if x in set(pool) - {got[0]}][:5]
    stream = list(m.recommend_stream([str(user)], k=5, candidates=pool))
    assert stream[0][1].tolist() == got
    movie = int(m.movie_ids[0])
    assert set(m.similar(movie, k=5, candidates=pool).movie_ids[0].tolist()) <= set(pool)
    assert set(m.recommend_new(liked=[movie], k=5, candidates=pool).movie_ids[0].tolist()) <= set(pool)
    pop = m.popular(k=len(m.movie_ids)).movie_ids[0].tolist()
    assert m.popular(k=3, candidates=pool).movie_ids[0].tolist() == [x for x in pop if x in set(pool)][:3]
    with caplog.at_level("WARNING", logger="embedrec"):
        caplog.clear()
        assert m.recommend(user, k=5, candidates=[*pool, 999999, 999998]).movie_ids[0].tolist() == got
    said = [r.getMessage() for r in caplog.records]  # named as the library or the CLI names it (the log's filter)
    assert len(said) == 1 and re.fullmatch(r"2 of the 15 (--)?candidates are not a movie of this model \(not in "
                                           r"its training data\): no list holds them", said[0]), said
    with pytest.raises(UsageError, match=r"^candidates is empty: no list could hold a movie"):
        m.recommend(user, k=3, candidates=[])
    with pytest.raises(UsageError, match=r"candidates=.*: give a list of movie ids, e\.g\. candidates=\[50, 181\]"):
        m.recommend(user, k=3, candidates="50")
    assert m.recommend(user, k=5, candidates=None).movie_ids[0].tolist() == ranked[:5]  # None: every movie


def test_answer_checks_its_request_as_the_methods_check_their_arguments(trained_run, tmp_path):
    """A red team: Request(liked="12") recommended for movies 1 and 2 (the text split into characters),
    include_seen="no" meant True, fallback="pop" answered nothing, rated=[50] was a TypeError, and
    recommend_stream(open(path, "rb")) skipped every line ("b'196\\n'") and answered nothing."""
    from embedrec.answers import Request

    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    movie = str(m.movie_ids[0])
    assert m.answer(Request(liked=movie, k=3)).result.movie_ids[0].tolist() == \
        m.recommend_new([movie], k=3).movie_ids[0].tolist()
    user = int(m.user_ids[0])
    for kw, what in (({"include_seen": "no"}, "include_seen must be True or False"),
                     ({"strict": "no", "users": [user], "user": None}, "strict must be True or False"),
                     ({"fallback": "pop"}, "fallback 'pop': give 'none' or 'popular'")):
        with pytest.raises(UsageError, match=re.escape(what)):
            m.answer(Request(**{"user": user, "k": 3, **kw}))
    for rated in ([50], "50=5"):
        with pytest.raises(UsageError, match=r"give \{movie id: rating\} or \(movie id, rating\) pairs"):
            m.answer(Request(rated=rated, k=3))
    p = tmp_path / "u.txt"
    p.write_text(f"{user}\n{int(m.user_ids[1])}\n")
    with open(p, "rb") as fh:
        assert [a[0] for a in m.recommend_stream(fh, 1)] == [user, int(m.user_ids[1])]
    with pytest.raises(UsageError, match="line 1 is not UTF-8 text"):
        list(m.recommend_stream([b"\xff\xfe1"], 1))


def test_topk_all_names_its_device_argument_and_find_movie_refuses_empty_text(trained_run, tmp_path):
    """A red team: topk_all(device='tpu') named the config key train.device, which the call never used;
    find_movie('') listed every movie as matching."""
    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    with pytest.raises(UsageError, match=r"device='tpu': give 'auto', 'cpu' or 'cuda'"):
        m.topk_all(tmp_path / "t.csv", k=2, device="tpu")
    assert not (tmp_path / "t.csv").exists()
    for text in ("", "   "):
        with pytest.raises(UsageError, match=r"find_movie: give a movie id or title words.*\(empty\)"):
            m.find_movie(text)


def test_opening_a_folder_training_works_in_names_the_run(tmp_path):
    """A red team: er.open('run/refit') said the training was interrupted and to resume it, in the wrong folder."""
    from embedrec.errors import ArtifactError

    run = tmp_path / "run"
    (run / "current").mkdir(parents=True)  # a run that serves a model
    for name in ("refit", "als-dim-256", "als-reg-0.01", "als-dim-256/als-reg-0.01", "refit/path-0"):
        (run / name).mkdir(exist_ok=True)
        (run / name / "checkpoint.pt").write_bytes(b"")
        with pytest.raises(ArtifactError, match=re.escape(f"'{run / name}' is a folder training works in, inside the "
                                                          f"run '{run}'; open the run: er.open('{run}')")):
            er.open(run / name)


def test_paths_no_file_system_takes_are_usage_errors(trained_run, tmp_path):
    """A red team: er.open('a\\x00b') was a bare ValueError, a 300-character name an OSError, and
    export(base_url=5) an AttributeError."""
    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    for call in (lambda p: er.open(p), lambda p: m.export("npy", p)):
        with pytest.raises(UsageError, match="holds a NUL character; give a valid path"):
            call(str(tmp_path / "a\x00b"))
        with pytest.raises(UsageError, match="has a name longer than 255 bytes"):
            call(str(tmp_path / ("a" * 300)))
    with pytest.raises(UsageError, match=r"base_url=5: give the URL as text"):
        m.export("projector", tmp_path / "pj", base_url=5)
    # a red team: 'notaurl', a query and a space were written into the projector's paths as they were
    for bad in ("notaurl", "http://h/p?x=1", "http://h/a b", "ftp://h/p", "https://h/p#top", "http://[::1/p", "http://h:x/p"):
        with pytest.raises(UsageError, match=r"^export: base_url '.*' is not an http\(s\) URL of a folder"):
            m.export("projector", tmp_path / "pj", base_url=bad)
    assert not (tmp_path / "pj").exists()
    m.export("projector", tmp_path / "ok", base_url="https://example.org/p/")
    assert '"https://example.org/p/tensors.tsv"' in (tmp_path / "ok" / "projector_config.json").read_text()


def test_a_dataframe_where_ids_go_is_refused_naming_its_columns(trained_run):
    """A red team: m.recommend(df) took the column names for user ids (NotFoundError 'user_id'; with
    missing='skip' nothing, no error), recommend_stream(df) answered [] and exclude=df refused 'user_id' as a
    movie."""
    import pandas as pd

    df = pd.DataFrame({"user_id": [1, 2]})
    with er.open(trained_run.cfg.run.dir) as m:
        for call in (lambda: m.recommend(df), lambda: m.recommend(df, missing="skip"),
                     lambda: list(m.recommend_stream(df)), lambda: m.recommend(1, exclude=df)):
            with pytest.raises(UsageError, match=r"not a DataFrame \(its columns: user_id\); give one column, "
                                                 r"e.g. df\['user_id'\]"):
                call()
        assert len(m.recommend(df["user_id"], k=2)) == 2


def test_results_index_by_position_and_the_small_argument_rules(trained_run):
    """A red team: r[196] (an id) was a bare IndexError, r['196'] a TypeError, r[0:2] a tuple of lists, Predictions
    not indexable; to_rows(fallback_column='no') read by its truth; er.Model('runs/x') failed at first use with an
    AttributeError; year_min=1990.0 (a year column with a gap is float) refused; tune_dims(tolerance=-0.5) a
    ConfigError where the other bad arguments are UsageErrors."""
    with er.open(trained_run.cfg.run.dir) as m:
        users = [int(u) for u in m.user_ids[:3]]
        r = m.recommend(users, k=2)
        assert r[0][0] == users[0] and r[-1][0] == users[-1]
        part = r[1:]
        assert isinstance(part, er.Recommendations) and part.query_ids == users[1:] and len(part.to_frame()) == 4
        for bad in (max(users) + 10, str(users[0]), 1.0):
            with pytest.raises(UsageError, match=r"(indexed by position|is outside this result)"):
                r[bad]
        with pytest.raises(UsageError, match="indexed by position"):
            r[True]  # a flag is no position (a review: r[True] was r[1])
        for result in (r, m.predict([(users[0], int(m.movie_ids[0]))])):  # a notebook review: sequence code's
            with pytest.raises(IndexError, match="is outside th") as e:  # except IndexError did not catch it
                result[len(result)]
            assert isinstance(e.value, UsageError)
        mixed = m.recommend([users[0], "nobody", users[1]], k=1, missing="popular")
        assert mixed[0:1].unknown == [] and mixed[1:2].unknown == ["nobody"]  # a slice's own unknown ids
        skipped = m.recommend([users[0], "nobody"], k=1, missing="skip")
        assert skipped[:].unknown == skipped.unknown == ["nobody"]  # r[:] keeps the skipped ones (a review)
        with pytest.raises(UsageError, match="to_rows: fallback_column must be True or False, not 'no'"):
            list(r.to_rows(fallback_column="no"))
        p = m.predict([(users[0], int(m.movie_ids[0])), (users[1], int(m.movie_ids[1]))])
        assert p[1][:2] == (users[1], int(m.movie_ids[1])) and len(p[:1]) == 1
        with pytest.raises(UsageError, match="indexed by position"):
            p["x"]
        years = m.recommend(users[0], k=5, year_min=1990.0).to_frame()["year"]
        assert (years.dropna() >= 1990).all()
        with pytest.raises(UsageError, match=r"year_min 1990\.5: expected a whole year"):
            m.recommend(users[0], year_min=1990.5)
    with pytest.raises(UsageError, match=r"^Model\(\) takes a loaded Recommender, not 'runs/x'; open a run with er.open"):
        er.Model("runs/x")
    with pytest.raises(UsageError, match=r"tolerance -0.5: expected a share"):
        er.tune_dims(trained_run.cfg, dims=[2], tolerance=-0.5)


def test_a_models_arrays_are_given_out_read_only(trained_run):
    """A red team: m.user_ids, m.movie_ids and m.factors gave out the model's own arrays, so a notebook's
    rng.shuffle(m.user_ids) made recommend(u) answer another user's list under u. They are read-only views."""
    with er.open(trained_run.cfg.run.dir) as m:
        u = int(m.user_ids[0])
        want = m.recommend(u, k=3).movie_ids[0].tolist()
        f = m.factors
        for a in (m.user_ids, m.movie_ids, f.user, f.movie, *(b for b in (f.user_bias, f.movie_bias) if b is not None)):
            with pytest.raises(ValueError, match="read-only"):
                np.random.default_rng(0).shuffle(a)
        mine = m.user_ids.copy()  # a copy is the user's to change
        mine[0] = -1
        assert int(m.user_ids[0]) == u and m.recommend(u, k=3).movie_ids[0].tolist() == want
        assert m.torch_module() is not None  # torch takes the model's own arrays


def test_evaluate_per_user_means_are_the_metrics(trained_run):
    """evaluate(per_user=True): each ranked user's metrics, whose means are the model's (known answer: the mean of
    the rows is the printed figure); a paired difference between two models is a join on user_id."""
    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    res = m.evaluate("test", [10], per_user=True)
    frame, model = res["per_user"], res["splits"]["test"]["model"]
    assert len(frame) == model["users_evaluated"] and frame["user_id"].is_unique
    assert frame["ndcg@10"].mean() == pytest.approx(model["ndcg@10"], abs=1e-9)
    assert "per_user" not in m.evaluate("test", [10])
    with pytest.raises(UsageError, match="per_user must be True or False"):
        m.evaluate("test", [10], per_user=1)


def test_evaluate_per_user_gives_an_explicit_models_rating_errors(trained_run, tmp_path):
    """A first-hour review: the per-user table of an explicit model held ranking metrics only, so a paired RMSE
    comparison with Surprise was not possible. It adds each user's rmse, mae and ratings (known answer: the
    printed RMSE is the root of the ratings-weighted mean of rmse squared, the MAE the weighted mean of mae)."""
    import pandas as pd

    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    res = m.evaluate("test", [10], per_user=True)
    frame, model = res["per_user"], res["splits"]["test"]["model"]
    own = [c for c in frame.columns if ":" not in c]  # the model's columns (most_popular:ndcg@10, ... after them)
    assert own[-3:] == ["rmse", "mae", "ratings"] and (frame["ratings"] > 0).all()
    w = frame["ratings"] / frame["ratings"].sum()
    assert np.sqrt((w * frame["rmse"] ** 2).sum()) == pytest.approx(model["rmse"], abs=1e-9)
    assert (w * frame["mae"]).sum() == pytest.approx(model["mae"], abs=1e-9)
    out = tmp_path / "users.csv"
    m.evaluate("test", [10], per_user=out)
    assert [c for c in pd.read_csv(out).columns if ":" not in c][-3:] == ["rmse", "mae", "ratings"]
    m.evaluate("test", [10], per_user=out, overwrite=True)  # still a file evaluate wrote
    mine = tmp_path / "counts.csv"  # a user's own file of those names alone is not one evaluate wrote (a review)
    mine.write_text("user_id,ratings\n1,5\n")
    with pytest.raises(OutputRefused, match="not a file embedrec wrote"):
        m.evaluate("test", [10], per_user=mine, overwrite=True)
    assert mine.read_text() == "user_id,ratings\n1,5\n"
    for text in ("user_id,ndcg@10\n196,0.91\n", "user_id,rmse,mae,ratings\n1,0.9,0.7,5\n"):  # a peer's own
        mine.write_text(text)  # per-user scores, kept to join on user_id as the docs advise (a red team: replaced)
        with pytest.raises(OutputRefused, match="not a file embedrec wrote"):
            m.evaluate("test", [10], per_user=mine, overwrite=True)
        assert mine.read_text() == text


def test_evaluate_per_user_file_from_the_library(trained_run, tmp_path):
    """evaluate(per_user=FILE): the table written whole to a new file and left out of the result, as `evaluate
    --per-user FILE` writes it (a review: the writing and its --overwrite rule were the CLI's alone)."""
    import pandas as pd

    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    out = tmp_path / "users.parquet"
    res = m.evaluate("test", [10], per_user=out)
    assert "per_user" not in res and len(pd.read_parquet(out)) == res["splits"]["test"]["model"]["users_evaluated"]
    assert pd.read_parquet(out)["ndcg@10"].mean() == pytest.approx(res["splits"]["test"]["model"]["ndcg@10"])
    with pytest.raises(OutputExists, match="overwrite=True"):
        m.evaluate("test", [10], per_user=str(out))
    m.evaluate("test", [10], per_user=str(out), overwrite=True)
    mine = tmp_path / "mine.csv"
    mine.write_text("user_id,movie_id\n1,2\n")
    with pytest.raises(OutputRefused, match="not a file embedrec wrote"):
        m.evaluate("test", [10], per_user=mine, overwrite=True)
    assert mine.read_text() == "user_id,movie_id\n1,2\n"
    for kwargs, said in (({"per_user": "yes"}, r"per_user= yes: give a \.csv, \.tsv or \.parquet file name"),
                         ({"overwrite": True}, r"overwrite=True applies to per_user=FILE only")):
        with pytest.raises(UsageError, match=said):
            m.evaluate("test", [10], **kwargs)


def test_one_user_request_and_a_whole_float_movie_id(trained_run):
    """A red team: Request(user=[196, 186]) said 'give a flat list of ids, e.g. [196, 186]' (the value it refused);
    find_movie(50.0) searched the titles for '50.0' where similar(50.0) took movie 50."""
    from embedrec.answers import Request

    m = er.open(trained_run.cfg.run.dir, trained_run.cfg)
    users = [int(u) for u in m.user_ids[:2]]
    with pytest.raises(UsageError, match=r"user= takes one id; for many give users=\[\.\.\.\]"):
        m.answer(Request(user=users))
    movie = int(m.movie_ids[0])
    # recommend_new's and history's user= say so too (a review: 'give a flat list of ids, e.g. [196, 186]')
    with pytest.raises(UsageError, match=rf"^user={re.escape(repr(users))}: user= takes one id, the known user whose "
                                         r"ratings since training liked=/rated= hold, e\.g\. user=196$"):
        m.recommend_new(liked=[movie], user=users)
    with pytest.raises(UsageError, match=rf"^user={re.escape(repr(tuple(users)))}: user= takes one id, e\.g\. "
                                         r"history\(196\) \(a call for each user\)$"):
        m.history(tuple(users))
    assert m.find_movie(float(movie)) == movie


def test_write_stream_refuses_movie_ids_and_scores_of_different_lengths(trained_run):
    """A red team (r1 #2): write_stream([(196, [275, 14], [0.1])]) wrote one row and dropped movie 14 without a
    word. Movie ids and scores of different lengths are a UsageError naming the query."""
    m = trained_run.opened
    a, b = (int(x) for x in m.engine.movie_ids[:2])
    for scores, said in (([0.1], "2 movie ids but 1 score"), ([0.1, 0.2, 0.3], "2 movie ids but 3 scores")):
        buf = io.StringIO()
        with pytest.raises(UsageError, match=rf"write_stream: query 1: {said}"):
            m.write_stream([(1, [a, b], scores)], buf, "csv")
        assert buf.getvalue() == ""
    buf = io.StringIO()
    m.write_stream([(1, [a, b], [0.2, 0.1])], buf, "csv")
    assert len(buf.getvalue().splitlines()) == 3


def test_write_stream_says_what_to_pass_for_predictions_a_binary_file_and_no_scores(trained_run, tmp_path):
    """A red team (r1 #3): a Predictions, a file opened 'wb' and scores None were bare TypeErrors from deep
    inside the writer. Each is a UsageError that says what to pass."""
    import sys

    m = trained_run.opened
    a = int(m.engine.movie_ids[0])
    with pytest.raises(UsageError, match=r"write_stream writes recommendation lists, not a Predictions; write "
                                         r"predictions with pred.to_frame\(\).to_csv\(out\)"):
        m.write_stream(m.predict([(1, a)]), io.StringIO(), "csv")
    for out in (open(tmp_path / "out.tsv", "wb"), io.BytesIO(), sys.stdout.buffer):
        with pytest.raises(UsageError, match=r"write_stream: out is a binary file; open it with 'w' "
                                             r"\(open\(path, 'w'\)\), or give sys.stdout"):
            m.write_stream(m.recommend([1], k=1), out, "tsv")
    for scores in (None, 0.5, "0.5"):
        with pytest.raises(UsageError, match=r"write_stream: query 1: scores is .*; give one score per movie id"):
            m.write_stream([(1, [a], scores)], io.StringIO(), "csv")
    with pytest.raises(UsageError, match=r"write_stream: query 1: movie ids is 5; give a list of movie ids"):
        m.write_stream([(1, 5, [0.5])], io.StringIO(), "csv")


def test_write_stream_writes_a_new_users_empty_id_as_the_cli_does(trained_run):
    """A red team (r1 #5): a new user's id (None) was written '""' by write_stream's CSV but empty by
    ``recommend --liked``; both write it empty, byte for byte."""
    from embedrec.answers import Request

    m = trained_run.opened
    liked = [int(m.engine.movie_ids[0])]
    ours = io.StringIO()
    m.write_stream(m.recommend_new(liked=liked, k=2), ours, "csv")
    cli = io.StringIO()
    ans = m.answer(Request(liked=liked, k=2))
    from embedrec.output import write_rows
    write_rows(ans.result.to_rows(), ans.result.columns, "csv", cli)
    assert ours.getvalue() == cli.getvalue()
    assert ours.getvalue().splitlines()[1].startswith(",1,")


def test_exclude_refuses_a_title_or_a_gap_where_ids_are_integers(trained_run):
    """A red team (r1 #4): recommend(u, exclude=['Sense and Sensibility', nan]) ignored both without a word, so the
    movie came back. NaN is a UsageError, as recommend(nan) is; text that no integer id can be is a UsageError
    naming it and pointing to resolve_movies; an unknown but well-typed id stays ignored (documented)."""
    from embedrec.answers import Request

    m = trained_run.opened
    title = m.movie(int(m.engine.movie_ids[0]))["title"]
    calls = (lambda ex: m.recommend(1, k=3, exclude=ex), lambda ex: m.recommend_new(liked=[1], k=3, exclude=ex),
             lambda ex: m.similar(1, k=3, exclude=ex), lambda ex: list(m.recommend_stream(["1"], k=3, exclude=ex)))
    for call in calls:
        with pytest.raises(UsageError, match=r"exclude: nan is not an id \(a missing value\)"):
            call([float("nan")])
        with pytest.raises(UsageError, match=r"exclude: None is not an id"):
            call([None])
        with pytest.raises(UsageError, match=rf"exclude: {re.escape(repr(title))} is not a movie id of this model "
                                             r"\(its ids are integers\); for a title, give its id: "
                                             r"resolve_movies\(\[title\]\) or find_movie\(title\)"):
            call([title])
        with pytest.raises(UsageError, match=r"exclude: 2.5 is not an id \(not a whole number\)"):
            call([2.5])  # no id of any model, as recommend(2.5) says
        call([10**30, -5, "99999", np.int64(1)])  # unknown ids of the right type: ignored, as documented
    with pytest.raises(UsageError, match=r"exclude: nan is not an id"):
        m.answer(Request(user=1, k=3, exclude=[float("nan")]))
    for empty in ("", [" "]):  # a plain message, not resolve_movies' own
        with pytest.raises(UsageError, match=r"^exclude has an empty entry; give movie ids or titles, e.g. "
                                             r"exclude=\[50, 'fargo'\]$"):
            m.answer(Request(user=1, k=3, exclude=empty))


def test_a_user_id_that_starts_with_a_hash_is_answered_not_taken_for_a_comment(tmp_path):
    """A red team (r1 #1): '#hash', a text id, was dropped as a comment by --users, recommend_stream and predict
    --pairs, even under --strict. A '#' line whose id the model knows is answered; other '#' lines of a file are
    comments (not unknown ids, under --strict too); a Python list's items are ids, never comments."""
    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.config import load_config

    rng = np.random.default_rng(1)
    users = ["#hash"] + [f"u{i}" for i in range(30)]
    rows = [(u, f"m{m}", int(rng.integers(1, 6))) for u in users for m in rng.choice(20, 8, replace=False)]
    pd.DataFrame(rows, columns=["user", "item", "rating"]).to_csv(tmp_path / "odd.csv", index=False)
    sets = [f"data.prepared={tmp_path / 'ds'}", f"run.dir={tmp_path / 'run'}", "data.id_type=auto",
            "split.test=0", "model.dim=4", "train.epochs=1", "train.threads=1"]
    cfg = load_config(None, sets)
    er.train(er.ingest(str(tmp_path / "odd.csv"), cfg), cfg).save()
    m = er.open(cfg.run.dir, cfg)
    assert [a[0] for a in m.recommend_stream(["#hash", "u1"], k=1)] == ["#hash", "u1"]
    assert [a[0] for a in m.recommend_stream(io.StringIO("#hash\n# a comment\nu1\n"), k=1, missing="error")] == \
        ["#hash", "u1"]
    with pytest.raises(NotFoundError, match="<input>:1: "):  # a list's '#nope' is an unknown id, not a comment
        list(m.recommend_stream(["#nope"], k=1, missing="error"))
    opts = [x for s in sets for x in ("--set", s)]
    r = CliRunner().invoke(main, ["recommend", "--users", "-", "-k", "1", "--strict", "--format", "csv", *opts],
                           input="#hash\n# a comment\nu1\n")
    assert r.exit_code == 0, r.stderr
    assert [line.split(",")[0] for line in r.stdout.splitlines()] == ["user_id", "#hash", "u1"]
    r = CliRunner().invoke(main, ["predict", "--pairs", "-", "--strict", "--format", "csv", *opts],
                           input="user,item\n#hash,m1\n# a comment, not a pair\nu1,m1\n")
    assert r.exit_code == 0, r.stderr
    assert [line.split(",")[0] for line in r.stdout.splitlines()] == ["user_id", "#hash", "u1"]
def test_request_of_two_modes_names_them():
    # a first-hour review: which modes were given was not said
    from embedrec.answers import Request

    with pytest.raises(UsageError, match="; user and movie were given$"):
        Request(user="196", movie="50").mode()


def test_a_comment_is_a_comment_in_any_column_order_after_a_byte_order_mark_and_from_a_string(trained_run):
    """A review: '#302,196' under a movie_id,user_id header was read as a pair (its user known) and failed the
    command on '#302'; a byte-order mark before a first '#' line made it an unknown id (--strict failed); and
    recommend_stream's advice for a string, text.splitlines(), drops the line breaks that make '#' lines comments."""
    from click.testing import CliRunner

    from embedrec.cli import main

    m = trained_run.model
    user, movie = m.user_ids[0], m.movie_ids[0]
    r = CliRunner().invoke(main, ["predict", "--pairs", "-", "--strict", "--format", "csv", "-q", *trained_run.sets],
                           input=f"movie_id,user_id\n{movie},{user}\n#{movie},{user}\n")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[1:] and [x.split(",")[:2] for x in r.stdout.splitlines()[1:]] == [[str(user), str(movie)]]
    r = CliRunner().invoke(main, ["recommend", "--users", "-", "--strict", "-k", "1", "--format", "csv", "-q",
                                  *trained_run.sets], input=f"\ufeff# my users\n{user}\n")
    assert r.exit_code == 0, r.stderr
    assert [x.split(",")[0] for x in r.stdout.splitlines()] == ["user_id", str(user)]
    with pytest.raises(UsageError, match=r"io\.StringIO\(text\)"):
        list(m.recommend_stream(f"# my users\n{user}\n", k=1))
    assert [u for u, *_ in m.recommend_stream(io.StringIO(f"# my users\n{user}\n"), k=1)] == [user]


def test_results_rows_and_streams_do_not_reach_into_the_model(trained_run):
    """A library red team: a row's genres list was the model's own (row['genres'].append('Horror') changed
    movie(), the genre filter and the exports); a recommend_stream kept answering after close(); predict took
    (user, movie, rating) triples and dropped the third item."""
    import embedrec as er

    m = er.open(trained_run.cfg.run.dir)
    row = next(m.recommend(1, k=1).to_rows())
    before = m.movie(row["movie_id"])["genres"]
    row["genres"].append("Horror")
    row["genres"].clear()
    assert m.movie(row["movie_id"])["genres"] == before and next(m.recommend(1, k=1).to_rows())["genres"] == before
    stream = m.recommend_stream(["1", "2"], k=2)
    m.close()
    with pytest.raises(UsageError, match=r"^recommend_stream: this model was closed while its answers were still "
                                         r"being read"):
        list(stream)
    m = er.open(trained_run.cfg.run.dir)
    for bad in ([(1, 6, 3)], np.array([[1, 6, 5]])):
        with pytest.raises(UsageError, match=r"^predict: expected \(user id, movie id\) pairs, got "):
            m.predict(bad)
    assert repr(m.predict([(1, 6)])).splitlines()[0] == "<Predictions: 1 pair>"


def test_a_results_repr_shows_its_first_rows_and_one_pair_has_a_score(trained_run):
    """A first-hour review: ``rec.predict(196, 242)`` printed '<Predictions: 1 pair>' and no score, and a
    Recommendations' repr no movie. Each repr is its summary line, then its first rows as a table prints them (at
    most 10, the rest counted, titles cut: short, where a review found 17K-character reprs); a one-pair Predictions
    has a float ``score``, a result of several pairs says to read ``scores`` (a UsageError, and an AttributeError
    for hasattr)."""
    import embedrec as er
    from embedrec.results import REPR_ROWS, REPR_TITLE

    m = er.open(trained_run.cfg.run.dir)
    one = m.predict(1, 6)
    assert isinstance(one.score, float) and one.score == float(one.scores[0])
    assert one.est == one.score and m.predict(uid=1, iid=6).est == one.score  # Surprise's name for it
    lines = repr(one).splitlines()
    assert lines[0] == "<Predictions: 1 pair>" and lines[1].split() == ["user_id", "movie_id", "fallback", "score"]
    assert lines[2].split() == ["1", "6", "none", f"{one.score:.4f}"] and len(lines) == 3
    many = m.predict([(1, 6), (1, 7), (424242, 6)])
    for p, held in ((many, "3 pairs"), (many[:0], "no pair")):
        with pytest.raises(UsageError, match=rf"^score is the score of a one-pair result, and these predictions hold "
                                             rf"{held}: read scores \(an array"):
            _ = p.score
        with pytest.raises(AttributeError):
            _ = p.score
        assert not hasattr(p, "score")
        assert not hasattr(p, "est")
    lines = repr(many).splitlines()
    assert lines[0] == "<Predictions: 3 pairs, 1 with a fallback>" and len(lines) == 5
    assert lines[4].split()[:3] == ["424242", "6", "user_unknown"]
    users = list(range(1, 30))
    top = m.recommend(users, k=5)
    text = repr(top)
    lines = text.splitlines()
    # several users: the first 3 rows of each of the first 3 (a review: the first 10 rows were mostly one user's)
    assert lines[0] == "<Recommendations: 29 queries x top-5>" and len(lines) == 2 + 3 * 3 + 1
    assert lines[1].split() == ["user_id", "rank", "movie_id", "title", "score"]
    rows = [r for r in top.to_rows() if r["user_id"] in (1, 2, 3) and r["rank"] <= 3]
    assert len(rows) == 9
    for line, row in zip(lines[2:-1], rows, strict=True):
        assert line.split()[:3] == [str(row["user_id"]), str(row["rank"]), str(row["movie_id"])]
        assert line.endswith(f"{row['score']:.4f}") and row["title"][:REPR_TITLE - 3] in line
    assert lines[-1] == f"... {29 * 5 - 9} more rows, 26 more users (to_frame() has them all)"
    assert len(text) < 1500 and max(map(len, lines)) < 120
    lines = repr(m.recommend([1, 2], k=5)).splitlines()  # 10 rows: all shown, as before
    assert [ln.split()[:2] for ln in lines[2:]] == [[str(u), str(r)] for u in (1, 2) for r in range(1, 6)]
    lines = repr(m.recommend([1, 2, 3], k=4)).splitlines()  # 12 rows of 3 users: 3 of each, none left out
    assert [ln.split()[:2] for ln in lines[2:-1]] == [[str(u), str(r)] for u in (1, 2, 3) for r in range(1, 4)]
    assert lines[-1] == "... 3 more rows (to_frame() has them all)"
    one = m.recommend(1, k=12)  # one user: its first 10 rows, as before
    lines = repr(one).splitlines()
    assert len(lines) == 2 + REPR_ROWS + 1 and [ln.split()[1] for ln in lines[2:-1]] == [str(r) for r in range(1, 11)]
    assert lines[-1] == "... 2 more rows (to_frame() has them all)"
    lines = repr(m.similar([6, 7, 8, 9], k=4)).splitlines()  # several movies' similar movies: 'movies'
    assert [ln.split()[0] for ln in lines[2:-1]] == ["6"] * 3 + ["7"] * 3 + ["8"] * 3
    assert lines[-1] == "... 7 more rows, 1 more movie (to_frame() has them all)"
    assert repr(m.similar(6, k=2)).splitlines()[1].split()[0] == "movie_id_query"
    assert repr(m.recommend([], k=3)) == "<Recommendations: 0 queries x top-0>"  # no rows: the summary alone
    # (an answer's repr keeps the summary line alone)
    from embedrec.answers import Request

    assert repr(m.answer(Request(user=1, k=3))) == "<Answer: user, <Recommendations: 1 query x top-3>>"


def test_a_history_and_similar_users_print_their_rows_as_the_other_results(trained_run):
    """A first-hour review: print() of a History or a SimilarUsers showed the summary line alone, where a
    Recommendations and a Predictions print their rows: each repr (which print() shows) is the summary line, then
    its first rows as a table prints them, the rest counted; several queries' similar users as several users'
    lists (the first 3 rows of the first 3). An Answer's repr keeps the summary line alone."""
    import embedrec as er
    from embedrec.answers import Request
    from embedrec.results import REPR_ROWS

    m = er.open(trained_run.cfg.run.dir)
    try:
        user = next(int(u) for u in m.user_ids if len(m.history(int(u))) > REPR_ROWS)
        h = m.history(user)
        lines = str(h).splitlines()
        assert str(h) == repr(h) and lines[0].startswith(f"<History: user {user!r}, {len(h):,} movies (")
        assert lines[1].split() == ["movie_id", "title", "year", "rating", "time", "split"]
        rows = list(h.to_rows())
        assert len(lines) == 2 + REPR_ROWS + 1 and lines[-1] == f"... {len(h) - REPR_ROWS} more rows (to_frame() has " \
            "them all)"
        for line, row in zip(lines[2:-1], rows, strict=False):
            assert line.split()[0] == str(row["movie_id"]) and line.endswith(row["split"]) and row["time"] in line
        s = m.similar_users(user, k=3)
        lines = str(s).splitlines()
        assert lines[0] == "<SimilarUsers: 1 query x top-3>" and len(lines) == 2 + 3
        assert lines[1].split() == ["user_id_query", "rank", "user_id", "score", "both_rated", "rated"]
        for line, row in zip(lines[2:], s.to_rows(), strict=True):
            assert line.split() == [str(user), str(row["rank"]), str(row["user_id"]), f"{row['score']:.4f}",
                                    str(row["both_rated"]), str(row["rated"])]
        users = [int(u) for u in m.user_ids[:5]]
        s = m.similar_users(users, k=4)
        lines = str(s).splitlines()
        assert lines[0] == "<SimilarUsers: 5 queries x top-4>" and len(lines) == 2 + 3 * 3 + 1
        assert [ln.split()[:2] for ln in lines[2:-1]] == [[str(u), str(r)] for u in users[:3] for r in (1, 2, 3)]
        assert lines[-1] == "... 11 more rows, 2 more users (to_frame() has them all)"
        assert repr(m.answer(Request(similar_users=user, k=2))) == "<Answer: similar_users, <SimilarUsers: 1 query x " \
            "top-2>>"
    finally:
        m.close()


def test_a_dataset_reopens_and_an_opened_model_says_its_config_and_metrics(trained_run):
    """A review: a prepared dataset could be reopened only by ingest(overwrite=True) or an internal import, and an
    opened run's chosen settings and train metrics were out of reach (AttributeError)."""
    import embedrec as er

    ds = er.load_dataset(trained_run.cfg.data.prepared)
    assert ds.fingerprint == er.load_dataset(None, trained_run.cfg).fingerprint
    assert len(ds.split_frame("test")) == len(ds.splits["test"])
    with pytest.raises(er.UsageError, match="^load_dataset: path must be a path"):
        er.load_dataset(3)
    m = er.open(trained_run.cfg.run.dir)
    try:
        assert m.config.model.dim == m.factors.movie.shape[1] and m.config.model.objective == "explicit"
        assert m.metrics["splits"]["test"]["model"]["ndcg@10"] == pytest.approx(m.evaluate("test")["splits"]["test"]
                                                                                ["model"]["ndcg@10"])
    finally:
        m.close()


def test_a_dataframes_text_ids_are_read_as_text_unless_data_id_type_is_set(tmp_path, caplog):
    """A notebook review: a DataFrame of string user ids ('u1') was refused by the default data.id_type (int),
    with the fix in the config's words; Surprise, LensKit and implicit take any ids. Where data.id_type is not set, a
    frame whose ids the default refuses as text is read as data.id_type=auto reads it (a note says so); the ids come
    back as written; the cell run again reuses that dataset; data.id_type=int set still refuses them, naming the row."""
    import logging

    import numpy as np
    import pandas as pd

    import embedrec as er

    cfg = er.load_config(None, {"data.cache_dir": str(tmp_path / "cache")})
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": [f"u{i:03d}" for i in rng.integers(0, 60, 1500)], "item": rng.integers(1, 40, 1500),
                       "rating": rng.integers(1, 6, 1500)}).drop_duplicates(["user", "item"])
    with caplog.at_level(logging.INFO, logger="embedrec"):
        ds = er.ingest(df, cfg, output=tmp_path / "ds")
    assert "note: the DataFrame's ids are text: read as text ids, kept as written" in caplog.text
    assert set(ds.users["user_id"]) == set(df.user) and set(ds.movies["movie_id"]) == set(df.item)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        again = er.ingest(df, cfg, output=tmp_path / "ds")  # a notebook's cell run again: the same dataset
    assert "reused dataset" in caplog.text and again.manifest == ds.manifest
    with pytest.raises(er.DataError, match=r"^the DataFrame: row 1 \(df.iloc\[0\]\): column 'user' holds 'u"):
        er.ingest(df, cfg.updated({"data.id_type": "int"}), output=tmp_path / "ds2")
    ints = df.assign(user=df.user.str[1:].astype(int))  # integer ids: no note, read as before
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        er.ingest(ints, cfg, output=tmp_path / "ds3")
    assert "ids are text" not in caplog.text


def test_an_error_in_a_dataframe_is_said_of_the_frame_not_the_cache_file(tmp_path):
    """A review: a bad value in a DataFrame given to ingest was named by its cache file's path and a 'row' of it."""
    import pandas as pd

    import embedrec as er

    cfg = er.load_config(None, {"data.cache_dir": str(tmp_path / "cache")})
    df = pd.DataFrame({"userId": [1, 2, 3], "movieId": [1, 2, 3], "rating": [3.0, 4.0, None]})
    with pytest.raises(er.DataError) as e:
        er.ingest(df, cfg, output=tmp_path / "ds")
    assert str(e.value) == ("the DataFrame: row 3 (df.iloc[2]): column 'rating' is empty (a missing value); fill or "
                            "remove that row, or drop such rows with data.missing=drop")
    with pytest.raises(er.DataError, match=r"^the DataFrame: row 2 \(df.iloc\[1\]\): rating inf is not a finite"):
        er.ingest(df.fillna(4.0).assign(rating=[3.0, float("inf"), 4.0]), cfg, output=tmp_path / "ds")
    import logging  # a review: the notes and warnings named the cache file too

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("embedrec").addHandler(handler)
    try:
        er.ingest(df.drop(columns="rating").assign(timestamp=[1, 10**13, 2]), cfg.updated({"split.valid": 0.0,
                                                                                          "split.test": 0.0}),
                  output=tmp_path / "ds2")
    finally:
        logging.getLogger("embedrec").removeHandler(handler)
    said = [r.getMessage() for r in records]
    assert not [m for m in said if "dataframe-" in m and "wrote" not in m], said
    assert any(m.startswith("the DataFrame: row 2: timestamp 10000000000000 is past the year 5000") for m in said)


def test_similar_takes_title_words_and_a_list_as_recommend_movie_does(trained_run):
    """A review: similar() took one id only, where `recommend --movie` takes title words."""
    m = trained_run.opened
    first, second = m.movie_ids[0], m.movie_ids[1]
    title = m.movie(first)["title"]
    by_id = m.similar(first, k=3)
    if title:  # the synthetic catalogue's titles
        assert m.similar(title, k=3).to_frame().equals(by_id.to_frame())
    both = m.similar([first, second], k=2).to_frame()
    assert both["movie_id_query"].tolist() == [first, first, second, second]
    assert both.iloc[:2].reset_index(drop=True).equals(m.similar(first, k=2).to_frame())
    import embedrec as er

    with pytest.raises(er.NotFoundError, match="is not in the training data"):
        m.similar(10**9)
    with pytest.raises(er.UsageError, match=r"^similar: give one movie id, e.g. similar\(50\) or similar\('star wars'\)"):
        m.similar([None])


def test_predict_takes_one_pair_as_surprise_does(trained_run):
    """A first-hour pass: Surprise's predict(uid, iid) raised a raw TypeError ('takes 2 positional arguments')."""
    m = trained_run.opened
    user, movie = m.user_ids[0], m.movie_ids[0]
    one = m.predict(user, movie)
    assert one.to_frame().equals(m.predict([(user, movie)]).to_frame()) and len(one.to_frame()) == 1
    other = m.movie_ids[1]  # one user's movies (a review: 'give a flat list of ids' for predict(196, [242, 302]))
    assert m.predict(user, [movie, other]).to_frame().equals(m.predict([(user, movie), (user, other)]).to_frame())
    with pytest.raises(UsageError, match=r"predict\(.*\) needs a movie too: predict\(.*, 242\), or \(user, movie\) "
                                         r"pairs"):
        m.predict(user)
    # a review: a DataFrame of movies scored its column name as a movie; a 0-d array was a raw TypeError
    with pytest.raises(UsageError, match=r"predict\(user, movies\): expected a movie id or a list of movie ids, not a "
                                         r"DataFrame \(its columns: movie_id\); give one column"):
        m.predict(user, pd.DataFrame({"movie_id": [movie, other]}))
    assert m.predict(user, np.array(movie)).to_frame().equals(one.to_frame())


def test_predict_takes_surprises_keywords(trained_run):
    """A known gap: Surprise's predict(uid=, iid=, r_ui=None) keywords were a TypeError. They name the one user and
    its movie (or movies), r_ui None alone (a Predictions keeps no true rating); each named once."""
    m = trained_run.opened
    user, movie, other = m.user_ids[0], m.movie_ids[0], m.movie_ids[1]
    want = m.predict([(user, movie)]).to_frame()
    for got in (m.predict(uid=user, iid=movie), m.predict(uid=user, iid=movie, r_ui=None), m.predict(user, iid=movie),
                m.predict(uid=user, iid=movie, missing="error")):
        assert got.to_frame().equals(want)
    assert m.predict(uid=user, iid=[movie, other]).to_frame().equals(m.predict([(user, movie), (user, other)]).to_frame())
    assert list(m.predict(uid=10**9, iid=movie).fallback) == ["user_unknown"]  # the same fallbacks
    for kw, said in ((dict(uid=user, iid=movie, r_ui=4.0), "r_ui=4.0: a true rating is not kept"),
                     (dict(uid=user), "needs a movie too"), (dict(iid=movie), "iid= needs its user"),
                     ({}, "give (user id, movie id) pairs")):
        with pytest.raises(UsageError, match=re.escape(said)):
            m.predict(**kw)
    with pytest.raises(UsageError, match="the user given twice"):
        m.predict(user, movie, uid=user)
    with pytest.raises(UsageError, match="the movie given twice"):
        m.predict(user, movie, iid=movie)


def test_bytes_ids_are_refused_with_how_to_decode_them(trained_run):
    """A review: recommend([b'196']) was looked up as the text "b'196'" ('user 'b'196'' not found); bytes are
    refused, saying to decode them (recommend_stream still decodes a binary file's lines)."""
    m = trained_run.opened
    for ids in ([b"196"], b"196", np.array([b"196"])):
        with pytest.raises(UsageError, match=r"is not an id \(bytes\); decode it first, e\.g\. b'196'\.decode\(\)"):
            m.recommend(ids)
    user = str(m.user_ids[0]).encode() + b"\n"
    assert len(list(m.recommend_stream([user], k=3))) == 1


def test_an_array_where_a_choice_or_names_go_is_a_usage_error_naming_the_parameter(trained_run):
    """A red team: a 2-D numpy array as evaluate's split=, recommend's or predict's missing=, history's sort= or
    splits= was numpy's 'truth value of an array with more than one element is ambiguous' ValueError (the shared
    checks' `in`: argcheck.choice_arg, data.ids.check_missing, serve.history.check_parts), explain's liked= its
    broadcast error. Each is the UsageError naming the parameter that other wrong types get."""
    m, trained = trained_run.opened, trained_run.model
    user, movie = m.user_ids[0], m.movie_ids[0]
    a = np.zeros((2, 2))
    for call, name in ((lambda: m.evaluate(split=a), "split="), (lambda: trained.evaluate(split=a), "split="),
                       (lambda: m.recommend(user, missing=a), "missing="),
                       (lambda: m.recommend_stream([str(user)], missing=a), "missing="),
                       (lambda: m.predict(user, movie, missing=a), "missing="),
                       (lambda: m.history(user, sort=a), "sort="), (lambda: m.history(user, splits=a), "splits=")):
        with pytest.raises(UsageError) as e:
            call()
        assert str(e.value).startswith(f"{name}array([[0., 0.],"), str(e.value)
        assert "expected one of" in str(e.value) or "give split names" in str(e.value), str(e.value)
    with pytest.raises(UsageError, match=r"^missing=\['skip'\]: expected one of 'error', 'skip', 'popular'$"):
        m.recommend(user, missing=["skip"])  # a list is no choice either (unhashable: no TypeError)
    with pytest.raises(UsageError, match=r"^splits=\[1, 2\]: give split names"):
        m.history(user, splits=[1, 2])
    with pytest.raises(UsageError, match=r"^expected an id or a 1-D list of ids, not a 2-D array of shape \(2, 2\)"):
        m.explain(movie=movie, liked=a)  # as recommend_new(liked=a) says it, not `liked in ((), None)`'s error


def test_predict_refuses_what_is_no_id_as_recommend_does(trained_run):
    """A red team: predict(object(), 50), predict(2.5, 50) and predict(inf, 50) each answered an unknown user's
    fallback row, where recommend(object()) was a UsageError. An id is an integer or a text (a float only as the
    whole number a pandas column that met a NaN holds): anything else is the UsageError every call gives, a
    movie's place and missing='skip' alike. '' is a text, an unknown id as recommend takes it."""
    from decimal import Decimal

    m = trained_run.opened
    user, movie = m.user_ids[0], m.movie_ids[0]
    for odd, why in ((object(), "a value of type object"), (2.5, "not a whole number"), (float("-inf"), "not finite"),
                     (np.float64(np.inf), "not finite"), (Decimal(1), "a value of type Decimal")):
        for args, kw in (((odd, movie), {}), ((user, odd), {}), (([(user, movie), (odd, movie)],), {"missing": "skip"})):
            with pytest.raises(UsageError, match=rf"^predict: pair \d \(.*\): .* is not an id \({why}\); ids are "
                                                 r"integers or texts, e.g. 196 or 'u196'$"):
                m.predict(*args, **kw)
        with pytest.raises(UsageError, match=rf"is not an id \({why}\)|not {type(odd).__name__}"):
            m.recommend(odd, k=2)
    with pytest.raises(NotFoundError) as said:
        m.recommend("", k=2)
    with pytest.raises(NotFoundError) as again:
        m.predict("", movie, missing="error")
    assert str(said.value).split(";")[0] == str(again.value).split(";")[0] == \
        "'' is not a user id of this model (its ids are integers)"
    assert m.predict("", movie).fallback == ["user_unknown"] and \
        m.recommend("", k=2, missing="popular").fallback == [True]
    assert m.predict(float(user), float(movie)).fallback == ["none"]  # 196.0: the integer id


def test_a_missing_file_is_a_data_error_naming_its_path(tmp_path):
    """DataError.path names the file not found (it was None for every 'file not found' whose message does not
    start 'file:line:'), so a caller can say which of its inputs is missing without parsing the message."""
    from embedrec.errors import DataError

    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match="file not found") as e:
        er.ingest(str(missing))
    assert e.value.path == str(missing) and e.value.line is None
    ratings = tmp_path / "r.csv"
    ratings.write_text("user,movie,rating\n1,1,5\n2,1,4\n")
    cfg = er.load_config(None, [f"data.movies={tmp_path / 'movies.csv'}", f"data.prepared={tmp_path / 'ds'}"])
    with pytest.raises(DataError, match="movies file not found") as e:
        er.ingest(str(ratings), cfg)
    assert e.value.path == str(tmp_path / "movies.csv")


def test_a_saved_model_s_exports_after_the_run_moved_on_say_to_save_it_again(trained_run, tmp_path):
    """A notebook review: after an index rebuild of the run a TrainedModel was saved to, its topk_all said 'open
    the run folder' (which serves another model); it says to save this model again, or to open the run's."""
    from embedrec.api import rebuild_index

    model = trained_run.model
    saved = model.save(tmp_path / "run")
    rebuild_index(tmp_path / "run", er.load_config(overrides={"index.kind": "flat"}))
    with pytest.raises(er.ArtifactError) as e:
        model.topk_all(tmp_path / "t.parquet", k=2)
    assert f"topk_all: the run this model was saved to, '{saved.parent}', serves another model since" in \
        str(e.value) and "save this model to another run folder (model.save('OTHER'))" in str(e.value), str(e.value)
    model.save(tmp_path / "other")
    model.topk_all(tmp_path / "t.parquet", k=2)
    assert (tmp_path / "t.parquet").is_file()


def test_a_model_in_memory_writes_its_per_user_table_as_an_opened_one_does(trained_run, tmp_path):
    """A notebook review: TrainedModel.evaluate(per_user='pu.parquet') was refused and overwrite= a TypeError,
    where the docs say a TrainedModel answers every Model method."""
    import pandas as pd

    model = trained_run.model
    out = tmp_path / "pu.parquet"
    got = model.evaluate("test", ks=(10,), per_user=out)
    assert "per_user" not in got and out.is_file()
    want = model.evaluate("test", ks=(10,), per_user=True)["per_user"]
    pd.testing.assert_frame_equal(pd.read_parquet(out), want.reset_index(drop=True), check_dtype=False)
    with pytest.raises(er.OutputExists):
        model.evaluate("test", ks=(10,), per_user=out)
    model.evaluate("test", ks=(10,), per_user=out, overwrite=True)
    with pytest.raises(UsageError, match="overwrite=True applies to per_user=FILE only"):
        model.evaluate("test", ks=(10,), overwrite=True)
