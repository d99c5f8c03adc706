"""The public API takes what a notebook hands it: one genre as a str, a pandas Series of ratings, a DataFrame of
pairs, one k for evaluate; and what it cannot take (a misplaced Config, a dict for a Config, None for ids, an
unknown format) is a typed error in library terms, never a TypeError from deep inside."""

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import embedrec as er
from embedrec.errors import ConfigError, NotFoundError, UsageError


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
    for odd in (1.5, float("nan")):
        with pytest.raises(NotFoundError, match=f"user '{odd}'"):
            m.recommend(odd, k=3)
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
    with pytest.raises(UsageError, match="columns user_id and movie_id"):
        m.predict(df.rename(columns={"user_id": "userId"}))  # was: "got ('movie_id',)"


def test_workflow_functions_refuse_a_misplaced_config(trained_run, tmp_path):
    cfg = trained_run.cfg
    calls = [(lambda: er.train(cfg), "er.train(None, cfg)"),
             (lambda: er.ingest(cfg), "er.ingest(None, cfg)"),  # was: OSError, file name too long
             (lambda: er.open(cfg), "er.open(None, cfg)"),
             (lambda: er.ingest("ml-100k", {"data.prepared": str(tmp_path / "ds")}), "cfg must be a Config, not dict"),
             (lambda: er.train(cfg.data.prepared, {"model.dim": 4}), "cfg must be a Config, not dict"),
             (lambda: er.open(cfg.run.dir, {"recommend.k": 3}), "cfg must be a Config, not dict"),
             (lambda: er.open(123), "run_dir must be a path (str or pathlib.Path), not int")]
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
    with pytest.raises(UsageError, match=r"similar: give one movie id, e.g. similar\(50\), not \[1, 2\]"):
        m.similar([1, 2], k=3)
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
