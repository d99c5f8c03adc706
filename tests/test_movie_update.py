"""Movies added without retraining (embedrec/movie_update.py, update-users --new-movies, er.update_users(...,
new_movies=True)): a movie the run does not know solved as training's movie half solves one, against the users it
knows that rated it, before the users are re-solved (implicit's partial_fit_items)."""

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import embedrec as er
from embedrec.errors import NotFoundError, UsageError
from embedrec.run_updates import trained_movies

sys.path.insert(0, str(Path(__file__).parent))
from test_reliability import invoke, one_line  # noqa: E402  (the CLI through CliRunner; a failure's one line)
from test_trend import _cfg  # noqa: E402
from test_update import _tastes_dataset  # noqa: E402
from test_update_users import copy_run, write_ratings  # noqa: E402

TASTES = 6  # _tastes_dataset's: user id u likes the movies of taste (u - 1) mod 6, movie id m is of (m - 1) mod 6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """'taste': an als run of six planted tastes (test_update._tastes_dataset's rows, ingested from a CSV: a dataset
    on disk, which evaluate and history read); 'block': the same with the low-pass block (train.als_lowpass=1);
    'hnsw': the same served through an HNSW index. Never written to: each test copies the one it updates."""
    tmp = tmp_path_factory.mktemp("movie-update")
    f = _tastes_csv(tmp / "tastes.csv")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        ds = er.ingest(str(f), _cfg(f"data.prepared={tmp / 'ds'}"))
        for name, sets in (("taste", ()), ("block", ("train.als_lowpass=1",)),
                           ("hnsw", ("index.kind=hnsw", "index.recall_sample=50"))):
            er.train(ds, _cfg("model.dim=16", "train.als_trend=0", *sets, f"run.dir={tmp / name / 'run'}")).save()
            out[name] = tmp / name / "run"
    return out


def _tastes_csv(f: Path) -> Path:
    """test_update._tastes_dataset's rows (every part) as a ratings CSV, ids from 1."""
    rows = _tastes_dataset()
    with f.open("w") as fh:
        fh.write("user_id,movie_id,rating,timestamp\n")
        for part in ("train", "valid", "test"):
            p = rows.splits[part]
            fh.writelines(f"{u + 1},{m + 1},1,{t}\n" for u, m, t in zip(p.user, p.movie, p.timestamp))
    return f


def _plain_then_new(run: Path, f: Path, tmp_path: Path, caplog) -> tuple[str, dict]:
    """(what a plain update of a copy of ``run`` with file ``f`` logged, the record of ``run`` updated with it and
    new_movies=True); caplog then holds the second update's lines."""
    plain = copy_run(run, tmp_path / "plain")
    with caplog.at_level(logging.INFO, "embedrec"):
        er.update_users(plain, f)
    said = caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, "embedrec"):
        return said, er.update_users(run, f, new_movies=True)


def _taste_raters(m, taste: int, n: int, skip: int = 0) -> list:
    """``n`` user ids of planted ``taste``, after the first ``skip`` of them."""
    users = [int(u) for u in m.user_ids if (int(u) - 1) % TASTES == taste]
    return users[skip:skip + n]


def test_a_new_movie_is_solved_as_training_solves_a_movie_by_hand(runs):
    """serve.update.als_new_movies against the iALS movie half written out (a0 P^T P over every user, the raters'
    P_S^T W P_S, the frequency-scaled L2), and a trained movie folded in from its own raters and recorded weights
    against its trained row (the users were solved last, after the movies: near, not equal)."""
    from embedrec.serve.update import als_new_movies, calibrated_unobserved

    e = er.open(runs["taste"]).engine
    solve = e.training_ratings["solve"]
    P = np.asarray(e.P, np.float64)
    m = calibrated_unobserved(e, P.T @ P, P.shape[1])
    assert solve["user_unobserved"] != 1 and 1 <= m <= solve["user_unobserved"]  # (valid chose 4 here)
    users, w = np.array([3, 9, 15, 21]), np.array([1.0, 2.0, 1.0, 3.0])
    lam = solve["reg"] * (4 + solve["a0"] * P.shape[0]) ** solve["reg_exponent"]
    A = solve["a0"] * m * P.T @ P + (P[users] * w[:, None]).T @ P[users] + lam * np.eye(P.shape[1])
    want = np.linalg.solve(A, P[users].T @ w)
    got, a = als_new_movies(e, [(users, w)])
    assert a is None and got.shape == (1, P.shape[1])
    np.testing.assert_allclose(got[0], want, rtol=2e-5, atol=1e-6)
    weights = np.asarray(e.solve_arrays()[0])
    ptr, idx = np.asarray(e.seen_ptr), np.asarray(e.seen_idx)
    owner = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    for movie in (0, 7, 50):
        on = (idx == movie) & (weights > 0)
        row, _ = als_new_movies(e, [(owner[on], weights[on].astype(np.float64))])
        q = np.asarray(e.Q[movie], np.float64)
        # (0.978-0.989 here, where valid chose 4x a0 for the users' last solve; 0.996-0.999 on ML-100K)
        assert row[0] @ q / (np.linalg.norm(row[0]) * np.linalg.norm(q)) > 0.95


def test_the_block_of_a_new_movie_is_the_svds_fold_in(runs):
    """Where the run adds the low-pass block, a trained movie folded in from its own raters gets back its block
    columns and its row of a (up to the randomized SVD's error), and a new user told the new movie reads its a."""
    from embedrec.serve.update import als_new_movies

    e = er.open(runs["block"]).engine
    rec = e.training_ratings["solve"]["lowpass"]
    d = int(rec["d"])
    weights = np.asarray(e.solve_arrays()[0])
    ptr, idx = np.asarray(e.seen_ptr), np.asarray(e.seen_idx)
    owner = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    cos = []
    for movie in (0, 7, 50):
        on = (idx == movie) & (weights > 0)
        row, a = als_new_movies(e, [(owner[on], weights[on].astype(np.float64))])
        y, a_true = np.asarray(e.Q[movie, d:], np.float64), np.asarray(e.factors.lowpass_a[movie], np.float64)
        cos.append(row[0, d:] @ y / (np.linalg.norm(row[0, d:]) * np.linalg.norm(y)))
        np.testing.assert_allclose(a[0], row[0, d:] / on.sum(), rtol=1e-5)
        assert np.linalg.norm(a[0]) == pytest.approx(np.linalg.norm(a_true), rel=0.15)
    assert min(cos) > 0.9, cos


def test_a_new_movie_of_a_taste_goes_to_that_tastes_users(runs, tmp_path, caplog):
    """The known answer: a new movie rated by 20 users of one planted taste is added, listed to the other users of
    that taste (its audience), similar to that taste's movies, never listed to its raters, its title and year the
    file's own; every other movie's row is kept bit for bit, verify passes and evaluate ranks the dataset's movies
    as before; the record counts it and run_updates.trained_movies tells it apart."""
    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    raters = _taste_raters(m, 2, 20)
    f = tmp_path / "new.csv"
    f.write_text("user_id,movie_id,rating,title\n" + "".join(f"{u},9001,1,Brand New (2026)\n" for u in raters))
    before = er.open(run)
    Q0 = np.asarray(before.engine.Q).copy()
    ev0 = before.evaluate("test", ks=(10,), notes=False)["splits"]["test"]["model"]["ndcg@10"]
    with caplog.at_level(logging.INFO, "embedrec"):
        record = er.update_users(run, f, new_movies=True)
    assert record["movies_added"] == 1 and record["n_movies"] == 121 and record["users"] == 20
    assert f"added 1 movie new in '{f}' to the run (121 movies now)" in caplog.text
    m = er.open(run)
    assert trained_movies(m.engine.run.manifest) == 120 and m.n_movies == 121
    np.testing.assert_array_equal(np.asarray(m.engine.Q)[:120], Q0)
    frame = m.similar(9001, k=10).to_frame()
    assert ((frame["movie_id"].astype(int) - 1) % TASTES == 2).mean() >= 0.8, frame
    assert frame.loc[0, "movie_id"] != 9001
    aud = m.audience(9001, k=20).to_frame()
    assert not set(aud["user_id"].astype(int)) & set(raters)
    assert ((aud["user_id"].astype(int) - 1) % TASTES == 2).mean() >= 0.8, aud
    for u in raters[:5]:  # rated: never listed back
        assert 9001 not in set(m.recommend(u, k=20).to_frame()["movie_id"].astype(int))
    other = _taste_raters(m, 2, 10, skip=20)
    listed = sum(9001 in set(m.recommend(u, k=10).to_frame()["movie_id"].astype(int)) for u in other)
    assert listed >= 5, listed
    cat = json.loads((run / "current" / "movies.json").read_text())  # its title and year: the file's own column
    assert (cat["title"][120], cat["year"][120], cat["genres"][120]) == ("Brand New", 2026, [])
    r = invoke("verify", "--run", run)
    assert r.exit_code == 0, r.stderr
    ev1 = m.evaluate("test", ks=(10,), notes=False)["splits"]["test"]["model"]["ndcg@10"]
    assert abs(ev1 - ev0) < 0.02


def test_movies_added_compose_and_the_plain_update_says_the_option(runs, tmp_path, caplog):
    """A second update adds another movie after the first one's (trained_movies counts both out), and rates the
    first as a known movie; without new_movies a new movie's ratings are left out, the warning naming the option;
    a new movie rated only by users the file adds has nothing to be solved from: left out, said."""
    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    a, b = _taste_raters(m, 1, 10), _taste_raters(m, 4, 10)
    f = write_ratings(tmp_path / "one.csv", [(u, 9001, 1) for u in a] + [(90001, 9003, 1), (90001, 5, 1)])
    said, record = _plain_then_new(run, f, tmp_path, caplog)
    assert any(f"{add} adds such movies" in said for add in ("new_movies=True", "--new-movies"))
    assert record["movies_added"] == 1 and record["users_added"] == 1
    assert "'9003' has no rating by a user the run knows" in caplog.text
    f2 = write_ratings(tmp_path / "two.csv", [(u, 9002, 1) for u in b] + [(u, 9001, 1) for u in b[:3]])
    record = er.update_users(run, f2, new_movies=True)
    assert record["movies_added"] == 1 and record["n_movies"] == 122
    m = er.open(run)
    assert trained_movies(m.engine.run.manifest) == 120
    assert [int(x) for x in m.engine.movies.ids[120:]] == [9001, 9002]
    assert invoke("verify", "--run", run).exit_code == 0
    assert m.evaluate("test", ks=(10,), notes=False)["splits"]["test"]["model"]["ndcg@10"] > 0


def test_new_movies_refused_where_no_fold_in_holds_and_ids_written_apart(runs, tmp_path):
    """A run that adds recent popularity without the record of its window is refused, naming the way on; a movie
    id that is the run's own written another way ('0007' for 7) is refused by its line, saying how the run writes
    it, as a user's is; an id that can be no id of the run's (a word where its ids are integers) is refused.
    Nothing is written."""
    from types import SimpleNamespace

    from embedrec.serve.update import check_movies_addable

    old = SimpleNamespace(training_ratings={"solve": {"loss": "als", "trend": 4.0}})  # (no trend_window: before)
    with pytest.raises(UsageError, match="adds recent popularity to its lists .* and does not record that window"):
        check_movies_addable(old)
    check_movies_addable(SimpleNamespace(training_ratings={"solve": {"loss": "als", "trend": 4.0, "trend_window": {
        "cut": None, "mean": 1.0, "sd": 0.5}}}))
    run = copy_run(runs["taste"], tmp_path / "run")
    folder = os.readlink(run / "current")
    f = write_ratings(tmp_path / "b.csv", [(3, 9001, 1), (4, "0007", 1)])
    with pytest.raises(NotFoundError, match=rf"^{f}:3: '0007' is not a movie id of this model: its ids are integers "
                                            r"written without a '\+' or leading zeros \('7'\)"):
        er.update_users(run, f, new_movies=True)
    f = write_ratings(tmp_path / "c.csv", [(3, 9001, 1), (4, "x9", 1)])
    with pytest.raises(NotFoundError, match=rf"^{f}:3: "):
        er.update_users(run, f, new_movies=True)
    assert os.readlink(run / "current") == folder


def test_a_block_run_and_an_hnsw_run_take_new_movies(runs, tmp_path):
    """The low-pass block's run grows lowpass_a.npy by a row a movie, which a new user told the new movie reads;
    an HNSW run's indexes are built again over every movie, the new one found through them; verify passes."""
    for name in ("block", "hnsw"):
        run = copy_run(runs[name], tmp_path / name)
        m = er.open(run)
        f = write_ratings(tmp_path / f"{name}.csv", [(u, 9001, 1) for u in _taste_raters(m, 3, 20)])
        er.update_users(run, f, new_movies=True)
        m = er.open(run)
        assert m.n_movies == 121
        if name == "block":
            a = np.load(run / "current" / "lowpass_a.npy")
            assert a.shape[0] == 121 and np.abs(a[120]).sum() > 0
            got = m.recommend_new(liked=[9001], k=10, prior=0).to_frame()
            assert ((got["movie_id"].astype(int) - 1) % TASTES == 3).mean() >= 0.6, got
        else:
            assert json.loads((run / "current" / "manifest.json").read_text())["index"]["n"] == 121
            frame = m.similar(9001, k=10).to_frame()
            assert ((frame["movie_id"].astype(int) - 1) % TASTES == 3).mean() >= 0.6, frame
        assert invoke("verify", "--run", run).exit_code == 0


def test_the_command(runs, tmp_path):
    """update-users --new-movies: the record on stdout counts the movies added, stderr says them; recommend
    --movie serves the new one; a refusal is one line."""
    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    f = write_ratings(tmp_path / "new.csv", [(u, 9001, 1) for u in _taste_raters(m, 0, 15)])
    r = invoke("update-users", "--ratings", f, "--run", run, "--new-movies", "--set", "data.header=true")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["movies_added"] == 1
    assert f"added 1 movie new in '{f}' to the run (121 movies now)" in r.stderr
    r = invoke("recommend", "--run", run, "--movie", 9001, "-k", 3, "--format", "tsv")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("movie_id_query"), r.stderr
    f = write_ratings(tmp_path / "bad.csv", [(3, "0007", 1)])
    r = invoke("update-users", "--ratings", f, "--run", run, "--new-movies", "--set", "data.header=true")
    assert r.exit_code == 1 and "'0007' is not a movie id of this model" in one_line(r)


def test_what_the_update_leaves_out_is_said_refused_under_strict_and_kept_as_seen(runs, tmp_path, caplog):
    """A review of the day's diff: a file whose every rating was of new movies rated only by users it adds said
    'nothing to update: the run already holds every rating' with exit 0; such a user in a mixed file was left out
    without a word; --strict left an unsolvable new movie out instead of refusing it; a data.missing=drop row of a
    new movie was not kept as seen, so the movie was listed back to its user."""
    run = copy_run(runs["taste"], tmp_path / "run")
    folder = os.readlink(run / "current")
    m = er.open(run)
    known = _taste_raters(m, 5, 12)
    f = write_ratings(tmp_path / "a.csv", [(80001, 9001, 1), (80002, 9002, 1)])
    with pytest.raises(NotFoundError, match=rf"^{f}: every rating is of a new movie that no user the run knows rated"):
        er.update_users(run, f, new_movies=True)
    f = write_ratings(tmp_path / "b.csv", [(known[0], 9003, 1), (80003, 9004, 1)])
    with pytest.raises(NotFoundError, match=rf"^{f}: new movie '9004' has no rating by a user the run knows"):
        er.update_users(run, f, new_movies=True, strict=True)
    assert os.readlink(run / "current") == folder
    with caplog.at_level(logging.WARNING, "embedrec"):
        record = er.update_users(run, f, new_movies=True)
    assert record["movies_added"] == 1 and record["users_added"] == 0 and record["users_named"] == 2
    assert f"left 1 user named in {f} out ('80003' (new))" in caplog.text, caplog.text
    f = tmp_path / "c.csv"  # a row without a rating, of a new movie others rate: seen by its user, never listed back
    f.write_text("user_id,movie_id,rating\n" + "".join(f"{u},9005,1\n" for u in known[:10]) + f"{known[11]},9005,\n")
    er.update_users(run, f, new_movies=True, cfg=_cfg("data.missing=drop"))
    m = er.open(run)
    assert 9005 not in set(m.recommend(known[11], k=m.n_movies).to_frame()["movie_id"].astype(int))
    f = tmp_path / "a.csv"  # the refusal is one line (its movies' warning left out)
    r = invoke("update-users", "--ratings", f, "--run", run, "--new-movies", "--set", "data.header=true")
    assert r.exit_code == 1 and one_line(r).startswith(f"error: {f}: every rating is of a new movie")


def test_the_index_kept_is_the_one_the_run_serves(runs, tmp_path):
    """A review of the day's diff: the indexes were built again from the training config.yaml, so an index rebuilt
    flat since (`index rebuild --set index.kind=flat`) went back to hnsw with the movies added. The kind and
    parameters of the index the run serves are kept."""
    run = copy_run(runs["hnsw"], tmp_path / "run")
    assert json.loads((run / "current" / "manifest.json").read_text())["index"]["kind"] == "hnsw"
    r = invoke("index", "rebuild", "--run", run, "--set", "index.kind=flat")
    assert r.exit_code == 0, r.stderr
    m = er.open(run)
    er.update_users(run, write_ratings(tmp_path / "a.csv", [(u, 9001, 1) for u in _taste_raters(m, 1, 10)]),
                    new_movies=True)
    index = json.loads((run / "current" / "manifest.json").read_text())["index"]
    assert (index["kind"], index["n"]) == ("flat", 121)


def test_a_run_with_recent_popularity_gives_a_new_movie_its_window_bias(tmp_path):
    """A run that adds recent popularity (train.als_trend) records its window (cut, mean, sd of log(1 + count) over
    every movie: its movies' biases over beta are standardised by them); a new movie gets beta z of its ratings in
    that window, its vector solved against the users as fitted (the served ones times their divisors), and the
    run verifies."""
    from test_update_users import saved_runs

    from embedrec.training.trend import z_of_count

    hits = saved_runs(tmp_path / "saved")["hits"]
    m = er.open(hits)
    solve = m.engine.training_ratings["solve"]
    window, beta = solve["trend_window"], solve["trend"]
    assert beta > 0 and window["sd"] > 0
    z = np.asarray(m.engine.factors.movie_bias, np.float64) / beta
    assert abs(z.mean()) < 1e-4 and z.std() == pytest.approx(1.0, rel=1e-4)
    users = [int(u) for u in m.user_ids[:12]]
    late = (window["cut"] or 0) + 10
    f = tmp_path / "new.csv"
    f.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},9001,1,{late}\n" for u in users[:9])
                 + "".join(f"{u},9001,1,{max((window['cut'] or 10) - 10, 0)}\n" for u in users[9:]))
    record = er.update_users(hits, f, new_movies=True)
    assert record["movies_added"] == 1
    m = er.open(hits)
    want = beta * z_of_count(9 if window["cut"] is not None else 12, window)
    assert float(m.engine.factors.movie_bias[-1]) == pytest.approx(float(want), rel=1e-5)
    assert invoke("verify", "--run", hits).exit_code == 0
    got = m.audience(9001, k=5).to_frame()
    assert len(got) == 5 and not set(got["user_id"].astype(int)) & set(users)
    if window["cut"] is not None:  # a later update's ratings of it in the window: its bias recounted over all
        more = [int(u) for u in m.user_ids[20:25]]
        g = tmp_path / "more.csv"
        g.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},9001,1,{late}\n" for u in more))
        assert er.update_users(hits, g, new_movies=True)["movies_resolved"] == 1
        got = float(er.open(hits).engine.factors.movie_bias[-1])
        assert got == pytest.approx(float(beta * z_of_count(14, window)), rel=1e-5)
        # a review: a file without a rating column recorded no rating, and the next update counted none of its
        # pairs; users the file adds rate it too (counted, though not solved on)
        h = tmp_path / "likes.csv"
        h.write_text("user_id,movie_id,timestamp\n" + "".join(f"{u},9001,{late}\n" for u in m.user_ids[30:33])
                     + "".join(f"{70000 + j},9001,{late}\n{70000 + j},{int(m.movie_ids[0])},{late}\n"
                               for j in range(4)))
        assert er.update_users(hits, h, new_movies=True)["movies_resolved"] == 1
        got = float(er.open(hits).engine.factors.movie_bias[-1])
        assert got == pytest.approx(float(beta * z_of_count(21, window)), rel=1e-5)
        k = tmp_path / "one.csv"
        k.write_text(f"user_id,movie_id,rating,timestamp\n{int(m.user_ids[40])},9001,1,{late}\n")
        er.update_users(hits, k, new_movies=True)
        got = float(er.open(hits).engine.factors.movie_bias[-1])
        assert got == pytest.approx(float(beta * z_of_count(22, window)), rel=1e-5)


def test_a_movie_an_earlier_update_added_is_solved_again_by_a_later_one(runs, tmp_path, caplog):
    """A review of a daily click log: a movie added on one day kept that day's vector for good (its later ratings
    seen, never solved on), its recall falling day by day where a retrain's held. A later update with --new-movies
    solves it again over every rating the run holds of it and the file's new ones: here 10 raters of one taste
    added it, 20 of another rate it next, and its neighbours move to theirs; the dataset's own movies keep their
    rows bit for bit; the record counts it."""
    run = copy_run(runs["taste"], tmp_path / "run")
    m = er.open(run)
    first, then = _taste_raters(m, 1, 10), _taste_raters(m, 4, 20)
    er.update_users(run, write_ratings(tmp_path / "a.csv", [(u, 9001, 1) for u in first]), new_movies=True)
    m = er.open(run)
    before, q0 = np.asarray(m.engine.Q).copy(), np.asarray(m.engine.Q[120]).copy()
    with caplog.at_level(logging.INFO, "embedrec"):
        record = er.update_users(run, write_ratings(tmp_path / "b.csv", [(u, 9001, 1) for u in then]),
                                 new_movies=True)
    assert record["movies_resolved"] == 1 and record["movies_added"] == 0 and record["n_movies"] == 121
    assert "solved 1 movie an earlier update added again, with its ratings in" in caplog.text
    m = er.open(run)
    np.testing.assert_array_equal(np.asarray(m.engine.Q)[:120], before[:120])
    assert not np.allclose(np.asarray(m.engine.Q[120]), q0)
    frame = m.similar(9001, k=10).to_frame()
    assert ((frame["movie_id"].astype(int) - 1) % TASTES == 4).mean() >= 0.5, frame
    assert invoke("verify", "--run", run).exit_code == 0
    # without --new-movies a later update leaves it as it is (its ratings taken by the users alone)
    q1 = np.asarray(m.engine.Q[120]).copy()
    er.update_users(run, write_ratings(tmp_path / "c.csv", [(u, 9001, 1) for u in _taste_raters(m, 4, 5, 20)]))
    np.testing.assert_array_equal(np.asarray(er.open(run).engine.Q[120]), q1)


def test_a_trend_window_no_training_writes_is_refused(tmp_path):
    """A review: a re-sealed window whose cut had 400 digits was an internal error in update-users, one whose sd was
    1e-300 published an infinite bias. Every reader of the run refuses them, naming the key."""
    from embedrec.errors import ArtifactError
    from embedrec.run_checks import checked_training_ratings

    base = {"min_rating": None, "rating_weight": 0.0, "solve": {"loss": "als", "a0": 0.1, "user_unobserved": 1.0,
                                                                  "reg": 0.01, "reg_exponent": 1.0, "recency": 0.0,
                                                                  "trend": 4.0}}
    ok = checked_training_ratings({**base, "solve": {**base["solve"], "trend_window": {"cut": 5, "mean": 1.0,
                                                                                        "sd": 0.5}}}, "m.json")
    assert ok["solve"]["trend_window"] == {"cut": 5, "mean": 1.0, "sd": 0.5}
    for window, key in (({"cut": 10 ** 400, "mean": 1, "sd": 1}, "cut"), ({"cut": None, "mean": 1, "sd": 1e-300}, "sd"),
                        ({"cut": None, "mean": 1e9, "sd": 1}, "mean")):
        with pytest.raises(ArtifactError, match=f"solve.trend_window.{key}"):
            checked_training_ratings({**base, "solve": {**base["solve"], "trend_window": window}}, "m.json")


def test_a_prune_of_the_last_model_holding_added_movies_says_so(runs, tmp_path, caplog):
    """A review: a prune that removed the last model folder holding movies update-users --new-movies added spoke of
    the users it added alone (here none), not of its movies, and its advice named no --new-movies. The publish that
    prunes it says so of the movies, naming the option and the update file."""
    from embedrec.run_publish import publish

    run = copy_run(runs["taste"], tmp_path / "run")
    users = _taste_raters(er.open(run), 2, 8)
    f = write_ratings(tmp_path / "day.csv", [(u, 9001, 1) for u in users])
    assert er.update_users(run, f, new_movies=True)["movies_added"] == 1
    updated = (run / "current").resolve()

    def train(tmp):
        (tmp / "manifest.json").write_text(json.dumps({"n_users": 3, "n_movies": 2}))

    caplog.set_level(logging.WARNING, "embedrec")
    publish(run, train)
    assert updated.is_dir() and "pruned" not in caplog.text  # (kept: the one served before)
    # the train's warning of the updates it drops names --new-movies for the file that added movies (a diff review)
    assert any(f"or run update-users again with {f} ({opt} for {f})" in caplog.text
               for opt in ("--new-movies", "new_movies=True"))
    publish(run, train)
    assert not updated.exists()
    said = [r.getMessage() for r in caplog.records if "pruned" in r.getMessage()]
    assert len(said) == 1 and "users update-users" not in said[0]
    assert any(said[0] == f"{run}: pruned {updated.name}, the last model folder holding the 1 movie update-users "
                          f"added ('9001'), so the run no longer holds it; to add it again, run {how} again with {f}"
               for how in ("update-users --new-movies", "update_users(..., new_movies=True)"))


def test_new_movies_solves_the_catalogues_movies_without_a_training_rating(tmp_path, caplog):
    """A review: a run ingested with data.keep_unrated_movies holds the catalogue's unrated movies as rows without a
    vector; an update with new_movies=True that rated them solved none (movies_added 0), the ratings seen and
    solved on by no one, the movie never served, without a warning. They are solved as a movie the update adds is
    (movies_fitted), go to their taste's users, and are solved again by a later update; a plain update names the
    option."""
    f = _tastes_csv(tmp_path / "tastes.csv")
    (tmp_path / "movies.csv").write_text("movie_id,title\n" + "".join(f"{i},Movie {i}\n" for i in range(1, 127)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
        ds = er.ingest(str(f), _cfg(f"data.prepared={tmp_path / 'ds'}", "data.keep_unrated_movies=true"),
                       movies=str(tmp_path / "movies.csv"))
        run = tmp_path / "run"
        er.train(ds, _cfg("model.dim=16", "train.als_trend=0", f"run.dir={run}")).save()
    m = er.open(run)
    assert m.engine.untrained[m.engine.movies.own_rows(["122"])[0]].all()
    with pytest.raises(UsageError, match="no training rating names this movie"):
        m.similar(122)
    # movie 122 is of taste (122 - 1) mod 6 = 1: rated by 12 users of that taste
    raters = _taste_raters(m, 1, 12)
    day = write_ratings(tmp_path / "day.csv", [(u, 122, 1) for u in raters])
    said, record = _plain_then_new(run, day, tmp_path, caplog)
    assert any(f"{opt} solves them" in said for opt in ("--new-movies", "new_movies=True"))
    assert (record["movies_added"], record["movies_fitted"], record["movies_resolved"]) == (0, 1, 0)
    assert "solved 1 movie of the dataset without a training rating from its ratings in" in caplog.text
    m = er.open(run)
    row = int(m.engine.movies.own_rows(["122"])[0][0])
    assert not m.engine.untrained[row] and float(m.engine.factors.movie_bias[row]) == 0.0
    near = m.similar(122, k=5).to_frame()["movie_id"].astype(int).tolist()
    assert sum((x - 1) % TASTES == 1 for x in near) >= 4, near
    others = [u for u in _taste_raters(m, 1, 40) if u not in raters][:10]
    assert sum(122 in set(m.recommend(u, k=10).to_frame()["movie_id"].astype(int)) for u in others) >= 5
    assert invoke("verify", "--run", run).exit_code == 0
    # a movie without a training rating that only a user the file adds rated (a diff review: a zero row, said as
    # solved): left as it is, said
    later = write_ratings(tmp_path / "later.csv", [(u, 122, 1) for u in others[:3]] + [(90001, 123, 1),
                                                                                      (90001, 5, 1)])
    said: list = []  # (caplog comes back empty after a CliRunner invoke in the same test: a handler of its own)
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: said.append(r.getMessage())
    logging.getLogger("embedrec").addHandler(handler)
    try:
        assert er.update_users(run, later, new_movies=True)["movies_fitted"] == 1
    finally:
        logging.getLogger("embedrec").removeHandler(handler)
    assert any("left 1 movie of the dataset without a training rating as it is ('123')" in x for x in said), said
    m = er.open(run)
    assert m.engine.untrained[int(m.engine.movies.own_rows(["123"])[0][0])]
    assert invoke("verify", "--run", run).exit_code == 0


def test_a_prune_warning_names_the_files_that_added_its_kind(tmp_path):
    """A diff review: the prune warning of added movies named every update file of the folder, one that added users
    alone among them, as one to add the movies again with (and the users' likewise)."""
    from embedrec.run_publish import _added_of

    folder = tmp_path / "artifacts-20200101T000000-000000001"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"n_users": 5, "n_movies": 4, "updates": [
        {"users_added": 2, "n_users": 5, "ratings": {"source": "/d/a.csv"}},
        {"users_added": 0, "movies_added": 1, "n_movies": 4, "ratings": {"source": "/d/b.csv"}}]}))
    assert _added_of(folder, "user")[2] == ["/d/a.csv"]
    assert _added_of(folder, "movie")[2] == ["/d/b.csv"]
