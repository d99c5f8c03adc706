"""update-users adding the users a run does not know (embedrec/user_update.py, er.update_users(new_users=True), the
default; implicit's partial_fit_users grows its user factors alike): a new row at the end of every user table, its
vector the one a new user's fold-in (recommend --liked/--rated) solves from the same ratings, and every reader of a
run's users (recommend, --users, export --topk-all, --explain, --similar-users, history, evaluate, verify) knowing
it; --no-new-users keeps the refusal; a kill -9 at any step leaves the old model or the new one served."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedrec as er
from embedrec.run_updates import updates_said

sys.path.insert(0, str(Path(__file__).parent))
from test_reliability import invoke, one_line  # noqa: E402  (the CLI through CliRunner; a failure's one line)
from test_trend import _as_dataset, _cfg  # noqa: E402  (datasets of rows in memory)
from test_update_users import arrays, copy_run, fresh_movies, saved_runs, train_small_runs, write_ratings  # noqa: E402

NEW = 999_999  # a user id none of these runs knows
LOW = 777_777  # a user whose every rating is below data.min_rating (synth_runs' 'weighted')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """test_update_users' 'taste' and 'hits' runs, never written to (each test copies the one it updates)."""
    return saved_runs(tmp_path_factory.mktemp("update-new-users-runs"))

@pytest.fixture(scope="module")
def synth_runs(tmp_path_factory, synth_dir):
    """On synth_dir (ratings 0.5-5 with times), als runs: 'weighted', the ratings from 3 up (data.min_rating),
    weighed by their value (train.als_rating_weight 2) and their place in time (train.als_recency 2), with a user
    LOW whose every rating (movies 1-4) is below 3, whom the cleaning leaves out (rated_below_unknown); 'counts',
    its pairs as a click log, each row one to three times, counted (data.repeats=sum) and weighed 1 + log(count)."""
    tmp = tmp_path_factory.mktemp("update-new-users")
    shutil.copytree(synth_dir[0], tmp / "src")
    with open(tmp / "src" / "ratings.csv", "a") as fh:
        fh.write("".join(f"{LOW},{i},1.0,{1000 + i}\n" for i in range(1, 5)))
    clicks = pd.read_csv(synth_dir[0] / "ratings.csv")[["userId", "movieId", "timestamp"]]
    clicks = clicks.loc[clicks.index.repeat(np.random.default_rng(0).integers(1, 4, len(clicks)))]
    clicks.to_csv(tmp / "clicks.csv", index=False)
    return train_small_runs(tmp, (
        ("weighted", tmp / "src", ["data.min_rating=3", "train.als_rating_weight=2", "train.als_recency=2"]),
        ("counts", tmp / "clicks.csv", ["data.repeats=sum", "train.als_count_weight=1"])))


def trained_movies(m, n: int, start: int = 0) -> list:
    """``n`` movie ids of the model with training ratings, from the ``start``-th such one."""
    e = m.engine
    return [int(e.movie_ids[r]) for r in np.flatnonzero(~e.untrained)[start:start + n]]


def row_of(m, user) -> int:
    return int(m.engine.users.rows([user])[0][0])


# ------------------------------------------------------------------------------------ the known answer
@pytest.mark.parametrize("name", ["taste", "hits", "weighted", "counts"])
def test_a_new_user_is_the_fold_in_of_its_ratings(runs, synth_runs, tmp_path, name):
    """A user added by update-users gets, to float rounding, the vector a new user's fold-in solves from the same
    ratings (recommend_new(rated=...)), so the same list with the same scores, the new users' popularity prior
    in them where the run's table weighs that many movies (serve.prior); its seen movies are all it rated
    (those below data.min_rating at weight 0, the rest at the fold-in's weights, 1 + g/2 of a rating's, recorded);
    its explanation splits its scores exactly. Over the run's variants: the recency weight ('taste'), recent
    popularity and activity weights (its divisor, 'hits'), rating weights and data.min_rating ('weighted'), counts
    summed from a click log ('counts')."""
    src = {**runs, **synth_runs}[name]
    run = copy_run(src, tmp_path / "run")
    with er.open(run) as m:
        e = m.engine
        movies = trained_movies(m, 6, 3)
        if name == "weighted":  # two below data.min_rating 3: seen, never in the solve
            rated = dict(zip(movies, (5, 4.5, 1, 3, 2.5, 4)))
        elif name == "counts":
            rated = dict(zip(movies, (3, 1, 2, 1, 1, 1)))
        else:
            rated = dict.fromkeys(movies, 1)
        folded, b, told = e.fold_in(rated=rated)
        # the list a new user telling the same ratings gets, the popularity prior with it where the run has one
        # (train.als_newuser_prior, for the number of movies in the solve)
        served = m.recommend_new(rated=rated, k=20)
        ids, scores = e.movie_rows(served.movie_ids[0])[0], served.scores[0]
        weighed = e.prior_weight(len(rated) - (2 if name == "weighted" else 0)) > 0
        if not weighed:  # then the fold-in's own list
            assert list(e.recommend_vector(folded, b, 20, told)[0]) == list(ids)
        solve, n_users = e.training_ratings["solve"], e.P.shape[0]
        P = np.asarray(e.P).copy()
    assert solve["recency"] > 0 or name == "counts"
    if name == "counts":  # a click log: a row per event, summed into the pair's count as ingest sums them
        f = write_ratings(tmp_path / "new.csv", [(NEW, i) for i, c in rated.items() for _ in range(int(c))],
                          header="user_id,movie_id")
    else:
        f = write_ratings(tmp_path / "new.csv", [(NEW, i, r) for i, r in rated.items()])
    record = er.update_users(run, f)
    low = sum(r < 3 for r in rated.values()) if name == "weighted" else 0
    assert (record["users"], record["users_added"], record["n_users"]) == (0, 1, n_users + 1)
    assert (record["pairs"], record["pairs_solved"], record["users_in_all"]) == (6, 6 - low, 1)
    with er.open(run) as m:
        e = m.engine
        row = row_of(m, NEW)
        assert row == n_users and e.P.shape[0] == n_users + 1 == m.n_users
        np.testing.assert_allclose(e.P[row], folded, rtol=1e-5, atol=1e-6 * np.abs(folded).max())
        assert np.asarray(e.P[:n_users]).tobytes() == P.tobytes()  # the run's users keep their bytes
        res = m.recommend(NEW, k=20)
        assert list(res.movie_ids[0]) == list(e.movie_ids[ids])
        np.testing.assert_allclose(res.scores[0], scores, rtol=1e-5)
        seen, w = e.seen(row), e.solve_arrays()[0][e.seen_ptr[row]:e.seen_ptr[row + 1]]
        got = {int(e.movie_ids[r]): float(x) for r, x in zip(seen, w)}
        assert set(got) == set(rated)
        rw, mid = e.training_ratings["rating_weight"], 1 + solve["recency"] / 2
        for i, r in rated.items():
            if name == "weighted":
                want = 0.0 if r < 3 else (1 + rw * (r - 0.5) / 4.5) * mid
            elif name == "counts":
                want = (1 + np.log(r)) * mid
            else:
                want = mid
            assert got[i] == pytest.approx(want, rel=1e-6), (i, r)
        top = int(res.movie_ids[0][0])
        x = m.explain(NEW, top, n=50)
        assert abs(x.remainder) < 1e-5 * max(1.0, abs(x.score)) and set(x.movie_ids) <= set(rated)
        assert x.score == pytest.approx(float(res.scores[0][0]), rel=1e-5)  # the listed score, the prior's part in it
        assert (x.prior != 0) == weighed


def test_the_runs_list_six_told_movies_with_the_prior_and_without_it(runs, synth_runs):
    """The test above checks an added user's list against a new user's on both sides only while these runs'
    tables, chosen on their valid users, weigh its movies (4 solved for 'weighted', else 6) at 0 in one run and
    above 0 in another (in session 54: 'weighted' above, the others at 0): said here apart from the feature."""
    weights = {}
    for name, run in {**runs, **synth_runs}.items():
        with er.open(run) as m:
            weights[name] = m.engine.prior_weight(4 if name == "weighted" else 6)
    assert min(weights.values()) == 0 < max(weights.values()), weights


def test_an_added_user_re_solved_by_a_second_update(runs, tmp_path):
    """A user the first update added is a known user to the second: re-solved, by hand, over the weights the
    first recorded (1 + g/2, a new user's) and each new rating at the latest place (1 + g), as the run's solve
    does -- A = a0 s Q^T Q + Q_S^T W Q_S + reg (n + a0 N)^nu I, p = A^-1 Q_S^T w; the second update adds a user of
    its own after it; the distinct users in all are counted once each."""
    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        movies = trained_movies(m, 7)
        fresh = fresh_movies(m, 2, 2)
        n = m.n_users
    first = er.update_users(run, write_ratings(tmp_path / "a.csv", [(NEW, i, 1) for i in movies[:4]] +
                                               [(2, fresh[0], 1)]))
    assert (first["users"], first["users_added"], first["users_in_all"], first["n_users"]) == (1, 1, 2, n + 1)
    before = arrays(run)
    second = er.update_users(run, write_ratings(tmp_path / "b.csv", [(NEW, i, 1) for i in movies[4:7]] +
                                                [(NEW + 1, movies[0], 1), (2, fresh[1], 1)]))
    assert (second["users"], second["users_added"], second["users_in_all"], second["n_users"]) == (2, 1, 3, n + 2)
    with er.open(run) as m:
        e = m.engine
        solve = e.training_ratings["solve"]
        assert (row_of(m, NEW), row_of(m, NEW + 1)) == (n, n + 1)
        a, b = int(before["seen_indptr"][n]), int(before["seen_indptr"][n + 1])
        old_w = before["solve_weights"][a:b].astype(np.float64)
        assert np.allclose(old_w, 1 + solve["recency"] / 2)
        rows = np.concatenate([before["seen_indices"][a:b], e.movie_rows(movies[4:7])[0]]).astype(np.int64)
        w = np.concatenate([old_w, np.full(3, 1.0 + solve["recency"])])
        Q = np.asarray(e.Q, np.float64)
        a0 = solve["a0"] * solve["user_unobserved"]
        lam = solve["reg"] * (rows.size + solve["a0"] * Q.shape[0]) ** solve["reg_exponent"]
        A = a0 * Q.T @ Q + (Q[rows] * w[:, None]).T @ Q[rows] + lam * np.eye(Q.shape[1])
        np.testing.assert_allclose(e.P[n], np.linalg.solve(A, Q[rows].T @ w), rtol=1e-5, atol=1e-7)
        assert sorted(e.movie_ids[r] for r in e.seen(n)) == sorted(movies[:7])
        assert np.load(run / "current" / "updated_users.npy").tolist() == [row_of(m, 2), n, n + 1]
    manifest = json.loads((run / "current" / "manifest.json").read_text())
    assert updates_said(manifest) == ("update-users updated the run with ratings made since training 2 times, 3 "
                                      "users in all (2 of them added), with 10 ratings, the last at "
                                      f"{second['at']}")


def test_two_updates_adding_users_compose(runs, tmp_path):
    """Two updates, each adding users, give what one update with both files gives (the users' rows in the order
    the files first name them, their seen movies, weights, divisors and vectors), on a run with recent popularity
    and activity weights; the users' ids and n_users agree in every file that holds them (users.parquet,
    user_ids.npy, the manifest, each user table)."""
    one, two = (copy_run(runs["hits"], tmp_path / n) for n in ("one", "two"))
    with er.open(one) as m:
        movies = trained_movies(m, 12)
        n = m.n_users
    first = [(NEW + 5, i, 1) for i in movies[:4]] + [(NEW, i, 1) for i in movies[4:6]]
    second = [(NEW + 7, i, 1) for i in movies[6:9]] + [(3, i, 1) for i in movies[9:]]
    er.update_users(one, write_ratings(tmp_path / "a.csv", first))
    er.update_users(one, write_ratings(tmp_path / "b.csv", second))
    er.update_users(two, write_ratings(tmp_path / "ab.csv", first + second))
    a, b = arrays(one), arrays(two)
    for name in ("seen_indptr", "seen_indices", "solve_weights"):
        assert np.array_equal(a[name], b[name]), name
    np.testing.assert_allclose(a["user_factors"], b["user_factors"], rtol=1e-5, atol=1e-7)
    scales = [np.load(r / "current" / "user_scale.npy") for r in (one, two)]
    np.testing.assert_allclose(*scales, rtol=1e-5)
    assert scales[0].shape == (n + 3,)
    for run in (one, two):
        users = pd.read_parquet(run / "current" / "users.parquet")
        assert users["user_id"].tolist()[n:] == [NEW + 5, NEW, NEW + 7]
        assert users["user_idx"].tolist() == list(range(n + 3))
        assert np.load(run / "current" / "user_ids.npy").tolist() == users["user_id"].tolist()
        assert json.loads((run / "current" / "manifest.json").read_text())["n_users"] == n + 3
        assert a["user_factors"].shape[0] == a["seen_indptr"].size - 1 == n + 3
        assert invoke("verify", run).exit_code == 0


# ------------------------------------------------------------------------------------ what it reads and leaves out
def test_users_with_no_known_movie_are_said_and_counted_as_named(runs, tmp_path):
    """A first-hour review: a file naming a new user whose only row is of a movie the run does not know left that
    user out without a word, and the summary said 're-solved 1 of the 1 user named' (JSON users_named 1) of a file
    naming two. Such users, new or known, are said in one warning (counted, the first named, what becomes of them,
    what to do), and users_named counts every user the file names."""
    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        n = m.n_users
        fresh = fresh_movies(m, 2, 1)
    f = write_ratings(tmp_path / "s2.csv", [(2, 99999, 1), (NEW, 99998, 1), (2, fresh[0], 1), (3, 99998, 1)])
    r = invoke("update-users", "--ratings", f, "--run", run)
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert (record["users_named"], record["users"], record["users_added"], record["n_users"]) == (3, 1, 0, n)
    assert f"left 2 users named in {f} out ('{NEW}' (new), '3'): every rating of each is of a movie the model does " \
        "not know (above), so nothing is solved for them: 1 new user not added (it stays unknown to the run) and 1 " \
        "known user keeps its vector as trained; to update them, give ratings of movies the run was trained on, by " \
        "the ids of its dataset\n" in r.stderr
    assert f"re-solved 1 of the 3 users named in '{f}' with 1 new rating (" in r.stderr
    with er.open(run) as m:
        assert m.engine.users.own_row(NEW) == -1 and m.n_users == n
    # one such user alone beside a user with nothing new: said so, nothing published
    f = write_ratings(tmp_path / "again.csv", [(NEW, 99998, 1), (2, fresh[0], 1)])
    folder = os.readlink(run / "current")
    r = invoke("update-users", "--ratings", f, "--run", run)
    assert r.exit_code == 0 and json.loads(r.stdout)["users_named"] == 2, r.stderr
    assert f"left 1 user named in {f} out ('{NEW}' (new)): its every rating is of a movie the model does not know " \
        "(above), so nothing is solved for it: 1 new user not added (it stays unknown to the run); to update it" \
        in r.stderr
    assert f"nothing to update: the run already holds every rating in '{f}' of its 1 user" in r.stderr
    assert os.readlink(run / "current") == folder


def test_new_users_below_min_rating_and_text_ids(synth_runs, tmp_path, caplog):
    """A new user whose every rating is below data.min_rating (or of a movie without training ratings) has nothing
    to solve on, as recommend --rated refuses such a user: left out with one warning, the others updated; a file
    of such users alone updates nothing. A run whose ids are text gains the new ids as texts (user_ids.npy wider
    where an id is longer)."""
    run = copy_run(synth_runs["weighted"], tmp_path / "run")
    with er.open(run) as m:
        movies = trained_movies(m, 3)
        n = m.n_users
    f = write_ratings(tmp_path / "low.csv", [(NEW, movies[0], 1), (NEW, movies[1], 2.5), (NEW + 1, movies[2], 4)])
    record = er.update_users(run, f)
    assert (record["users_added"], record["users_named"], record["n_users"]) == (1, 2, n + 1)
    assert f"left 1 new user named in '{f}' out ('{NEW}'): each of its ratings is below data.min_rating 3 or of a " \
           "movie without training ratings, which the model does not learn from, so no vector can be solved for it" \
           in caplog.text
    with er.open(run) as m:
        assert row_of(m, NEW + 1) == n and m.engine.users.own_row(NEW) == -1
    f = write_ratings(tmp_path / "only.csv", [(NEW + 2, movies[0], 1)])
    record = er.update_users(run, f)
    assert record["model_folder"] is None and record["users_added"] == 0
    assert f"nothing to update: every user named in '{f}' is left out (above); {run} still serves" \
        in caplog.text
    # a user the cleaning left out: the movies it rated below data.min_rating stay out of its list once added
    with er.open(run) as m:
        assert m.engine.users.own_row(LOW) == -1
        assert sorted(m.engine.movie_ids[m.engine.rated_by_unknown(LOW)].tolist()) == [1, 2, 3, 4]
    record = er.update_users(run, write_ratings(tmp_path / "back.csv", [(LOW, 10, 5)]))
    assert (record["users_added"], record["pairs"], record["pairs_solved"]) == (1, 1, 1)
    with er.open(run) as m:
        e = m.engine
        row = row_of(m, LOW)
        assert sorted(e.movie_ids[e.seen(row)].tolist()) == [1, 2, 3, 4, 10]
        w = e.solve_arrays()[0][e.seen_ptr[row]:e.seen_ptr[row + 1]]
        assert (w > 0).tolist() == [False] * 4 + [True]
        assert not {1, 2, 3, 4, 10} & set(m.recommend(LOW, k=len(e.movie_ids) - 5).movie_ids[0].tolist())

    ds = _as_dataset("texts", 40, 30, np.repeat(np.arange(40), 6), np.arange(240) % 30,
                     np.random.default_rng(0).choice(np.array(["train", "valid"]), 240, p=[0.8, 0.2]), None)
    ds.users["user_id"] = [f"u{i}" for i in range(40)]
    ds.path = tmp_path / "texts" / "ds"
    er.train(ds, _cfg(f"run.dir={tmp_path / 'texts' / 'run'}")).save()
    text = tmp_path / "texts" / "run"
    r = invoke("update-users", "--ratings", write_ratings(tmp_path / "t.csv", [("a-much-longer-id", 3, 1),
                                                                             ("u1", 4, 1)]), "--run", text)
    assert r.exit_code == 0, r.stderr
    ids = np.load(text / "current" / "user_ids.npy")
    assert ids.dtype.kind == "U" and ids.tolist()[-1] == "a-much-longer-id" and ids.size == 41
    r = invoke("recommend", "--user", "a-much-longer-id", "-k", 2, "--run", text, "--format", "tsv")
    assert r.exit_code == 0 and r.stdout.splitlines()[1].startswith("a-much-longer-id\t1\t"), r.stderr


def test_a_cold_start_user_is_re_solved(tmp_path):
    """A user of the run's dataset without a trained vector (its ratings all in test, split.cold_start's kind) is
    no new user: update-users re-solves it in its own row (it was refused before), and recommend serves it."""
    rng = np.random.default_rng(3)
    u = np.repeat(np.arange(60), 8)
    m = np.concatenate([rng.choice(30, 8, replace=False) for _ in range(60)])
    part = np.where(u == 0, "test", np.where(rng.random(u.size) < 0.9, "train", "valid"))
    ds = _as_dataset("cold", 60, 30, u, m, part, None)
    ds.path = tmp_path / "ds"
    er.train(ds, _cfg(f"run.dir={tmp_path / 'run'}")).save()
    run = tmp_path / "run"
    with er.open(run) as opened:
        assert opened.engine.users.vectorless(1) and opened.engine.users.own_row(1) == 0
        movies = trained_movies(opened, 3)
    record = er.update_users(run, write_ratings(tmp_path / "r.csv", [(1, i, 1) for i in movies]))
    assert (record["users"], record["users_added"], record["n_users"]) == (1, 0, 60)
    with er.open(run) as opened:
        res = opened.recommend(1, k=3)
        assert res.movie_ids[0].size == 3 and not set(res.movie_ids[0]) & set(movies)


# ------------------------------------------------------------------------------------ the commands
def test_the_command_adds_users_and_every_reader_knows_them(runs, tmp_path):
    """Through the CLI: the summary line (stderr) says the users re-solved and added and the run's users now, stdout
    the record alone; then recommend --user NEW and --users, --explain, --similar-users, export --topk-all, verify and
    history (its update rows) know the new user; --no-new-users refuses a file naming one, in one line, nothing
    written."""
    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        movies = trained_movies(m, 8)
        n = m.n_users
        fresh = fresh_movies(m, 2, 1)
    f = write_ratings(tmp_path / "since.csv", [(NEW, i, 1) for i in movies[:5]] + [(NEW + 1, movies[5], 1),
                                                                                   (2, fresh[0], 1)])
    folder = os.readlink(run / "current")
    r = invoke("update-users", "--ratings", f, "--run", run, "--no-new-users")
    assert (r.exit_code, r.stdout) == (1, "") and os.readlink(run / "current") == folder
    assert one_line(r) == (f"error: {f}:2: user '{NEW}' is not in the training data (300 users) (and 1 more of its "
                           "3 users); --no-new-users refuses a user the run does not know: leave it out to add such "
                           "users (their vectors solved from the file's ratings, as recommend --liked/--rated folds "
                           "one in), or remove their rows to update the others")
    r = invoke("update-users", "--ratings", f, "--run", run)
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert (record["users"], record["users_added"], record["users_named"], record["n_users"]) == (1, 2, 3, n + 2)
    assert record["model_folder"] == os.readlink(run / "current")
    assert r.stderr.splitlines()[-1].startswith(
        f"re-solved 1 and added 2 of the 3 users named in '{f}' with 7 new ratings; the run has {n + 2:,} users now (")
    r = invoke("recommend", "--user", NEW, "-k", 3, "--run", run, "--format", "tsv")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4, r.stderr
    listed = [line.split("\t")[2] for line in r.stdout.splitlines()[1:]]
    assert not set(map(int, listed)) & set(movies[:5])
    r = invoke("recommend", "--users", "-", "-k", 3, "--run", run, "--format", "tsv", input=f"{NEW}\n{NEW + 1}\n2\n")
    assert r.exit_code == 0 and [line.split("\t")[0] for line in r.stdout.splitlines()[1:]] == \
        [str(NEW)] * 3 + [str(NEW + 1)] * 3 + ["2"] * 3
    assert [line.split("\t")[2] for line in r.stdout.splitlines()[1:4]] == listed
    r = invoke("recommend", "--user", NEW, "-k", 1, "--explain", 2, "--run", run, "--format", "tsv")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].endswith("because"), r.stderr
    r = invoke("recommend", "--similar-users", NEW, "-k", 2, "--run", run, "--format", "tsv")
    assert r.exit_code == 0 and r.stdout.splitlines()[1].startswith(f"{NEW}\t1\t"), r.stderr
    top = tmp_path / "top.csv"
    assert invoke("export", "--run", run, "--topk-all", top, "-k", 3, "-q").exit_code == 0
    rows = top.read_text().splitlines()[1:]
    assert len(rows) == 3 * (n + 2) and [x.split(",")[2] for x in rows if x.split(",")[0] == str(NEW)] == listed
    r = invoke("verify", run)
    assert r.exit_code == 0 and r.stdout.startswith("ok: run"), r.stderr
    r = invoke("predict", "--pairs", "-", "--run", run, input=f"{NEW},{listed[0]}\n")
    assert r.exit_code == 0 and r.stdout.splitlines()[1].split("\t")[2] == "none", r.stdout


def _updated_twice(runs, tmp_path) -> tuple[Path, Path, int]:
    """A copy of 'taste' two updates added a user each to (user 2 re-solved by the first): the run, its model
    folder, and its users before them."""
    run = copy_run(runs["taste"], tmp_path / "run")
    with er.open(run) as m:
        movies = trained_movies(m, 6)
        n = m.n_users
        fresh = fresh_movies(m, 2, 1)
    er.update_users(run, write_ratings(tmp_path / "a.csv", [(NEW, i, 1) for i in movies[:3]] + [(2, fresh[0], 1)]))
    er.update_users(run, write_ratings(tmp_path / "b.csv", [(NEW + 1, i, 1) for i in movies[3:]]))
    return run, Path(os.path.realpath(run / "current")), n


def _resealed(folder: Path, edit) -> None:
    """The model folder's manifest edited by ``edit(manifest)``, then sealed again (as by hand: the checksums pass)."""
    from embedrec.fsutil.integrity import seal

    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(seal(manifest)))


@pytest.mark.parametrize("edit, said", [
    (lambda u: u[:-1], "updated_users.npy does not hold the rows of the 2 users update-users added ({n}..{n1})"),
    (lambda u: np.append(u[:-1], 99_999), "updated_users.npy does not hold sorted rows of its {n2} users"),
    (lambda u: u[1:], "updated_users.npy holds 2 rows, where the last update counts 3 users updated (users_in_all)"),
])
def test_a_resealed_updated_users_table_is_refused_by_verify_index_rebuild_and_update_users(runs, tmp_path, edit,
                                                                                            said):
    """A red team: a re-sealed updated_users.npy that update-users refused passed verify, and index rebuild carried
    it into new model folders, sealed again. verify.check_updated_users, which all three run (index rebuild through
    artifacts.carry_over), now refuses it in one line: its rows sorted rows of the run, every added user's among
    them, as many as the last record's users_in_all. Nothing is published."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    run, folder, n = _updated_twice(runs, tmp_path)
    assert np.load(folder / "updated_users.npy").tolist() == [row_of(er.open(run), 2), n, n + 1]
    np.save(folder / "updated_users.npy", edit(np.load(folder / "updated_users.npy")))
    _record_checksums(folder)
    line = f"error: run '{folder}': {said.format(n=n, n1=n + 1, n2=n + 2)}; {cli_terms(run_fix(folder))}"
    f = write_ratings(tmp_path / "c.csv", [(NEW + 2, 1, 1)])
    _refused_by_each(run, folder, line, ["update-users", "--ratings", f, "--run", run])


@pytest.mark.parametrize("edit, said", [
    (lambda m: m.update(updates=[]), "'updates' records no update, though it lists updated_users.npy, which "
                                     "update-users writes"),
    (lambda m: m["updates"][0].update(users_added="x"), "'updates[0].users_added' is \"x\", not a whole number >= 0"),
    (lambda m: m["updates"][1].update(users_in_all=-1), "'updates[1].users_in_all' is -1, not a whole number >= 0"),
    (lambda m: m["updates"][0].update(users_added=2000), "'updates[*].users_added' add up to 2,001 users, more than "
                                                         "the run's {n2} (n_users)"),  # (a dataset in memory: no counts)
    (lambda m: m["updates"][1].update(n_users=5), "'updates[1].n_users' is 5, where the users before it and its "
                                                  "users_added make {n2}"),
])
def test_resealed_updates_records_are_refused_naming_the_key(runs, tmp_path, edit, said):
    """A red team: re-sealed updates records (none, users_added 'x' or 2000) passed verify and changed which users
    the readers took for added (run_updates.trained_users: their prior lost, --prior refused as for a trained user).
    run_updates.check_updates, which load_run and verify run, refuses a count that is not a whole number >= 0 and
    records that do not add up to the run's users, naming the key."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix

    run, folder, n = _updated_twice(runs, tmp_path)
    _resealed(folder, edit)
    line = (f"error: run manifest '{folder / 'manifest.json'}': {said.format(n=n, n2=n + 2)}; the file was edited "
            f"or damaged: {cli_terms(run_fix(folder))}")  # (then how to keep the updates: updates_fix)
    for args in (["verify", run], ["verify", folder], ["recommend", "--user", NEW + 1, "--run", run],
                 ["index", "rebuild", "--run", run]):
        r = invoke(*args)
        assert (r.exit_code, r.stdout) == (1, "") and one_line(r).startswith(line), (args, r.stderr)
    assert os.path.realpath(run / "current") == str(folder)  # nothing published


def _refused_by_each(run, folder, line: str, last: list) -> None:
    """verify, index rebuild and ``last`` (a command line) each exit 1 with ``line`` as their last stderr line and
    nothing on stdout; ``run``'s current is still ``folder`` (nothing published)."""
    for args in (["verify", run], ["index", "rebuild", "--run", run], last):
        r = invoke(*args)
        assert (r.exit_code, r.stdout, r.stderr.splitlines()[-1:]) == (1, "", [line]), (args, r.stderr)
    assert os.path.realpath(run / "current") == str(folder)  # nothing published


def _ids_edited(t, edit, kind="user", new=NEW + 5):
    """users.parquet's (``kind`` "user") or movies.parquet's ("movie") table ``t`` edited: 'another run's' (the
    last row's id ``new``, as the file of another run holds it), 'a row added' (of id ``new``) or 'a column twice'
    (the id column added again)."""
    import pyarrow as pa

    col, idx = f"{kind}_id", f"{kind}_idx"
    if edit == "a column twice":
        return t.append_column(col, t.column(col))
    if edit == "another run's":
        ids = t.column(col).to_pylist()
        return t.set_column(t.column_names.index(col), col, pa.array(ids[:-1] + [new], type=t.schema.field(col).type))
    row = {c: pa.nulls(1, type=t.schema.field(c).type) for c in t.column_names}
    row[col] = pa.array([new], type=t.schema.field(col).type)
    if idx in t.column_names:
        row[idx] = pa.array([t.num_rows], type=t.schema.field(idx).type)
    return pa.concat_tables([t, pa.table(row, schema=t.schema)])


@pytest.mark.parametrize("edit, said", [
    ("another run's", "does not hold the ids of user_ids.npy, in its order (row {n1:,}: '{new}', where user_ids.npy "
                      "holds '{old}')"),
    ("a row added", "does not hold the run's {n2:,} users (it holds {n3:,} rows)"),
])
def test_a_resealed_users_parquet_is_refused_by_verify_index_rebuild_and_update_users(runs, tmp_path, edit, said):
    """A red team: users.parquet was never checked against user_ids.npy. Another updated run's users.parquet copied
    in and the manifest re-sealed passed verify, and update-users then wrote its ids into the ones served (user
    5000's vector served as 6001's); a row added passed verify and index rebuild, which sealed it into a new folder,
    and update-users alone refused it. verify.check_id_table_file (its rows the run's users, its ids user_ids.npy's in
    order), which all three run, refuses it in one line naming the file; nothing is published."""
    import pyarrow.parquet as pq

    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    run, folder, n = _updated_twice(runs, tmp_path)
    p = folder / "users.parquet"
    table = _ids_edited(pq.read_table(p), edit)
    p.unlink()
    pq.write_table(table, p)
    _record_checksums(folder)
    line = (f"error: run artifact '{p}' {said.format(n1=n + 1, n2=n + 2, n3=n + 3, new=NEW + 5, old=NEW + 1)}; "
            f"{cli_terms(run_fix(folder))}")
    f = write_ratings(tmp_path / "c.csv", [(NEW + 2, 1, 1)])
    _refused_by_each(run, folder, line, ["update-users", "--ratings", f, "--run", run])


@pytest.mark.parametrize("edit, said", [
    ("another run's", "does not hold the ids of movie_ids.npy, in its order (row {n1:,}: '{new}', where movie_ids.npy "
                      "holds '{old}')"),
    ("a row added", "does not hold the run's {n:,} movies (it holds {n2:,} rows)"),
    ("a column twice", "holds the column 'movie_id' 2 times, where a run's table holds each column once"),
])
def test_a_resealed_movies_parquet_is_refused_by_verify_index_rebuild_and_update_users(runs, tmp_path, edit, said):
    """movies.parquet, as users.parquet was, was never checked against movie_ids.npy: another run's copied in (or a
    row added) and the manifest re-sealed passed verify, and index rebuild and update-users sealed it into a new
    model folder. verify.check_id_table_file (a row per movie, movie_ids.npy's ids in order), which all three run,
    refuses it in one line naming the file; nothing is published. Its movie_id column twice (a red team) was
    "internal error (KeyError: 'Field "movie_id" exists 2 times in schema')": run.check_columns_once."""
    import pyarrow.parquet as pq

    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    run = copy_run(runs["taste"], tmp_path / "run")
    folder = Path(os.path.realpath(run / "current"))
    with er.open(run) as m:
        n, fresh = m.n_movies, fresh_movies(m, 2, 1)
    old = np.load(folder / "movie_ids.npy")[-1]
    new = int(np.load(folder / "movie_ids.npy").max()) + 1000  # an id of another run's catalogue
    p = folder / "movies.parquet"
    table = _ids_edited(pq.read_table(p), edit, "movie", new)
    p.unlink()
    pq.write_table(table, p)
    _record_checksums(folder)
    line = (f"error: run artifact '{p}' {said.format(n=n, n1=n - 1, n2=n + 1, new=new, old=old)}; "
            f"{cli_terms(run_fix(folder))}")
    f = write_ratings(tmp_path / "c.csv", [(2, fresh[0], 1)])
    _refused_by_each(run, folder, line, ["update-users", "--ratings", f, "--run", run])


@pytest.mark.parametrize("edit, said", [
    ("a row added", "does not list the run's {n} movies"),
    ("a year NaN", "holds the year nan for movie row 0, where a movie's year is a whole number (of 32 bits, as the "
                   "dataset holds it) or null"),
    ("a year of 400 digits", "holds the year 1000000000[...]000000000 for movie row 0, where a movie's year is a "
                             "whole number (of 32 bits, as the dataset holds it) or null"),
])
def test_a_resealed_movies_json_with_a_row_added_is_refused_by_verify_and_index_rebuild(runs, tmp_path, edit, said):
    """movies.json (the titles serving reads by movie row) with a row added, re-sealed, passed verify and index
    rebuild, which sealed it into a new folder that recommend refused; both now read it as Run.catalogue does
    (run.check_catalogue) and refuse it in recommend's line. A red team: a year NaN or of 400 digits passed all
    three (the year filter then an internal OverflowError); each year is null or an int32, as the dataset's."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    run = copy_run(runs["taste"], tmp_path / "run")
    folder = Path(os.path.realpath(run / "current"))
    p = folder / "movies.json"
    movies = json.loads(p.read_text())
    n = len(movies["title"])
    if edit == "a row added":
        movies = {c: v + v[-1:] for c, v in movies.items()}
    else:
        movies["year"][0] = float("nan") if edit == "a year NaN" else 10 ** 400
    p.write_text(json.dumps(movies))
    _record_checksums(folder)
    line = f"error: run artifact '{p}' {said.format(n=n)}; {cli_terms(run_fix(folder))}"
    _refused_by_each(run, folder, line, ["recommend", "--user", 2, "--run", run])


def test_verify_refuses_the_training_ratings_a_reader_refuses(runs, tmp_path):
    """A re-sealed training_ratings.solve.newuser_prior 'x' was refused by recommend and said ok by verify; verify
    now reads it as the readers do (run_checks.checked_training_ratings)."""
    run = copy_run(runs["taste"], tmp_path / "run")
    folder = Path(os.path.realpath(run / "current"))
    _resealed(folder, lambda m: m["training_ratings"]["solve"].update(newuser_prior="x"))
    said = f"error: run manifest '{folder / 'manifest.json'}': training_ratings.solve.newuser_prior is 'x', not a "
    for args in (["verify", run], ["recommend", "--user", 2, "--run", run]):
        r = invoke(*args)
        assert r.exit_code == 1 and one_line(r).startswith(said), (args, r.stderr)


def test_history_and_evaluate_of_a_run_with_added_users(tmp_path, synth_dir):
    """A run with users added: history lists a new user's movies as its update rows (no dataset row is its), and a
    trained user's as before; evaluate reads the dataset, whose users are the run's trained ones, and scores them as
    the trained model scores them (the same figures: no split holds an added user), saying the users added; a train
    again drops them, saying so."""
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", "model.dim=8", "--set", "train.epochs=2",
            "--set", "train.threads=1", "--set", "train.als_dims=[]"]
    assert invoke("ingest", synth_dir[0], "-o", tmp_path / "ds", "-q").exit_code == 0
    run = tmp_path / "run"
    assert invoke("train", "-q", *sets, "--run", run).exit_code == 0
    trained = json.loads(invoke("evaluate", "--run", run, "--format", "json").stdout)
    with er.open(run) as m:
        movies = trained_movies(m, 3)
    er.update_users(run, write_ratings(tmp_path / "new.csv", [(NEW, i, 5) for i in movies]))
    r = invoke("history", "--user", NEW, "--run", run, "--format", "tsv")
    assert r.exit_code == 0, r.stderr
    got = [line.split("\t") for line in r.stdout.splitlines()[1:]]
    assert sorted(int(x[1]) for x in got) == sorted(movies) and {x[-1] for x in got} == {"update"}
    r = invoke("history", "--user", 1, "--run", run, "--format", "tsv")
    assert r.exit_code == 0 and "update" not in {line.split("\t")[-1] for line in r.stdout.splitlines()[1:]}
    r = invoke("evaluate", "--run", run, "--format", "json")
    assert r.exit_code == 0, r.stderr
    now = json.loads(r.stdout)
    assert now.pop("updates") == {"updates": 1, "users": 0, "users_added": 1, "ratings": 3, "rows_seen": 0}
    assert now == trained
    r = invoke("train", *sets, "--run", run, "--format", "json")
    assert r.exit_code == 0 and "update-users added 1 new user with 3 ratings made since training" in r.stderr


def test_a_train_after_added_users_is_not_said_to_have_shrunk(tmp_path, caplog):
    """run_publish._warn_shrunk (a model of under half the users or movies of the one it replaced) counts the replaced
    model's trained users, not those update-users added, which a train drops by design: 300 trained users and 400
    added, replaced by a model of 300, is no shrink; one of 140 is."""
    from embedrec.run_publish import _warn_shrunk

    old = {"n_users": 700, "n_movies": 50, "updates": [{"users_added": 400}]}
    for name, m in (("artifacts-1", old), ("artifacts-2", {"n_users": 300, "n_movies": 50}),
                    ("artifacts-3", {"n_users": 140, "n_movies": 50})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps(m))
    _warn_shrunk(tmp_path, "artifacts-1", tmp_path / "artifacts-2")
    assert "now serves a model of" not in caplog.text
    _warn_shrunk(tmp_path, "artifacts-1", tmp_path / "artifacts-3")
    assert "now serves a model of 140 users x 50 movies, where the one it replaced (artifacts-1) had 700 x 50" \
        in caplog.text


def _updated_run(tmp_path):
    """A run of two model folders, the trained one (3 users) and the one update-users made of it, serving, which
    added users 70 and 71 from /d/new1.csv: (the run, the updated folder)."""
    run = tmp_path / "run"
    trained, updated = (run / f"artifacts-20200101T00000{i}-000000001" for i in (0, 1))
    for folder, m in ((trained, {"n_users": 3, "n_movies": 2}),
                      (updated, {"n_users": 5, "n_movies": 2, "updates": [
                          {"users_added": 2, "n_users": 5, "ratings": {"source": "/d/new1.csv"}}]})):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps(m))
    np.save(updated / "user_ids.npy", np.array([1, 2, 3, 70, 71]))
    os.symlink(updated.name, run / "current")
    return run, updated


def test_a_prune_of_the_last_model_holding_added_users_says_so(tmp_path, caplog):
    """A red team: a second train on an updated run pruned the last model folder holding the users update-users
    added without a word, where the first train said it was kept until a later publish prunes it. The publish that
    prunes it says so in one warning, naming the folder, the users and the update files; one that keeps it says
    nothing of it."""
    from embedrec.run_publish import publish

    run, updated = _updated_run(tmp_path)

    def train(tmp):
        (tmp / "manifest.json").write_text(json.dumps({"n_users": 3, "n_movies": 2}))

    caplog.set_level(logging.WARNING, "embedrec")
    publish(run, train)
    assert updated.is_dir() and "pruned" not in caplog.text  # (kept: the one served before)
    publish(run, train)
    assert not updated.exists()
    assert f"{run}: pruned {updated.name}, the last model folder holding the 2 users update-users added ('70', " \
           "'71'), so the run no longer holds them; to add them again, run update-users again with /d/new1.csv" \
        in caplog.text


@pytest.mark.parametrize("trained_ids, said", [([1, 2, 3, 70], "the 1 user update-users added ('71')"),
                                                ([1, 2, 3, 70, 71, 9], None)])
def test_a_prune_says_no_user_lost_that_the_new_model_trained_on(tmp_path, caplog, trained_ids, said):
    """An ops review: a nightly train on the grown data (the day's rows appended) holds the users update-users added
    that day as its own; the next day's update pruned the folder that had added them, and was said to have lost
    them, every day. Users the new model serves are not lost."""
    from embedrec.run_publish import publish

    run, updated = _updated_run(tmp_path)

    def train(tmp):
        (tmp / "manifest.json").write_text(json.dumps({"n_users": len(trained_ids), "n_movies": 2}))
        np.save(tmp / "user_ids.npy", np.array(trained_ids))

    caplog.set_level(logging.WARNING, "embedrec")
    publish(run, train)
    publish(run, train)
    assert not updated.exists()
    if said is None:
        assert "pruned" not in caplog.text
    else:
        assert said in caplog.text and "'70'" not in caplog.text


def test_a_prune_after_a_roll_back_of_the_folder_holding_added_users_says_so(tmp_path, caplog):
    """A red team: after the documented roll-back to the trained model (current -> updates[0].before), the next two
    publishes (two update-users, or an update-users and an index rebuild) pruned the folder holding the user the
    first update added without a word, as another folder still held added users (others). The warning is of users
    no folder left holds, whichever folders hold added users: it names the pruned folder, the users lost and its
    update files; a later prune of a folder whose users the new one holds says nothing."""
    from embedrec.run_publish import publish

    run = tmp_path / "run"
    trained, first = (run / f"artifacts-20200101T00000{i}-000000001" for i in (0, 1))

    def updated(ids, *sources):
        def write(tmp):
            np.save(tmp / "user_ids.npy", np.array([1, 2, 3, *ids]))
            records = [{"users_added": 1, "n_users": 4 + i, "before": trained.name, "ratings": {"source": s}}
                       for i, s in enumerate(sources)]
            (tmp / "manifest.json").write_text(json.dumps({"n_users": 3 + len(ids), "n_movies": 2,
                                                           "updates": records}))
        return write

    caplog.set_level(logging.WARNING, "embedrec")
    for last in ("update-users", "index rebuild"):
        shutil.rmtree(run, ignore_errors=True)
        for folder in (trained, first):
            folder.mkdir(parents=True)
        (trained / "manifest.json").write_text(json.dumps({"n_users": 3, "n_movies": 2}))
        updated([70], "/d/a.csv")(first)
        os.symlink(trained.name, run / "current")  # rolled back
        second = publish(run, updated([80], "/d/b.csv"), "embedrec update-users")
        assert first.is_dir()
        # then an update (or an index rebuild) of the folder served prunes the first update's, 70 in no other
        publish(run, updated([80, 90], "/d/b.csv", "/d/c.csv") if last == "update-users" else updated([80], "/d/b.csv"),
                f"embedrec {last}")
        assert not first.exists() and trained.is_dir()
        assert caplog.text.count("pruned") == 1 and (
            f"{run}: pruned {first.name}, the last model folder holding the 1 user update-users added ('70'), so the "
            "run no longer holds it; to add it again, run update-users again with /d/a.csv") in caplog.text, last
        caplog.clear()
        publish(run, updated([80, 90, 95], "/d/b.csv", "/d/c.csv", "/d/d.csv"), "embedrec update-users")
        assert not second.exists() and "pruned" not in caplog.text  # its users are in the new folder


def test_a_model_folder_whose_update_records_do_not_read_is_left_out_of_the_prune_warning(tmp_path, caplog):
    """The prune warning reads every model folder's manifest: a record's ``"ratings": "x"`` (a review) or a source
    that is no text made every publish on the run an internal error (AttributeError). Such a folder is left out of a
    warning that is best effort, and of the advice run_updates.updates_fix adds to a damaged model's error; the
    publish goes on, and a folder that reads is still said."""
    from embedrec.run_publish import _added_held, publish
    from embedrec.run_updates import updates_fix

    run = tmp_path / "run"
    folders = [run / f"artifacts-20200101T00000{i}-000000001" for i in range(4)]
    records = [None, [{"users_added": 2, "n_users": 5, "ratings": "x"}],
               [{"users_added": 2, "n_users": 5, "ratings": {"source": 7}}],
               [{"users_added": 2, "n_users": 5, "ratings": {"source": "/d/new1.csv"}}]]
    for folder, updates in zip(folders, records):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"n_users": 5, "n_movies": 2,
                                                          **({"updates": updates} if updates else {})}))
    np.save(folders[3] / "user_ids.npy", np.array([1, 2, 3, 70, 71]))
    os.symlink(folders[1].name, run / "current")
    got = _added_held(run)
    assert got["movie"] == {}  # (no folder records movies added)
    held = got["user"]
    assert list(held) == [folders[3].name]
    n, ids, sources = held[folders[3].name]
    assert (n, ids.tolist(), sources) == (2, [70, 71], ["/d/new1.csv"])
    assert updates_fix(folders[1]) == "" and "/d/new1.csv" in updates_fix(folders[3])  # (a damaged model's advice)

    def train(tmp):
        (tmp / "manifest.json").write_text(json.dumps({"n_users": 3, "n_movies": 2}))

    caplog.set_level(logging.WARNING, "embedrec")
    publish(run, train)
    publish(run, train)
    assert not any(f.exists() for f in folders)
    assert f"pruned {folders[3].name}, the last model folder holding the 2 users update-users added ('70', '71')" \
        in caplog.text


# ------------------------------------------------------------------------------------ kill -9
# where the update is killed: (module, function, when: 'before' it runs or 'after', which call)
KILLS = [("embedrec.user_update_write", "_write_user_ids", "after", 1),   # the new ids written, the arrays not yet
         ("embedrec.artifacts", "carry_file", "before", 4),        # halfway through the files carried over
         ("embedrec.fsutil.generations", "fsync_tree", "after", 1),  # the new folder whole, still a temporary
         ("embedrec.fsutil.generations", "swap_link", "before", 1),  # renamed into place, current not yet swapped
         ("os", "replace", "before", -1),                           # current's new link made, not renamed over it
         ("embedrec.fsutil.generations", "prune_generations", "before", 1)]  # served, the old ones not pruned yet

KILLER = """
import importlib, os, signal, sys
import embedrec as er
mod = importlib.import_module({module!r})
real, calls = getattr(mod, {func!r}), [0]

def killed(*a, **k):
    if {func!r} == "replace" and not str(a[1]).endswith("/current"):
        return real(*a, **k)
    calls[0] += 1
    if calls[0] == abs({call}) and {when!r} == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    out = real(*a, **k)
    if calls[0] == abs({call}):
        os.kill(os.getpid(), signal.SIGKILL)
    return out

setattr(mod, {func!r}, killed)
er.update_users({run!r}, {ratings!r})
sys.exit(3)  # never reached: the kill comes first
"""


def test_a_kill_at_any_step_of_an_update_adding_users(runs, tmp_path):
    """kill -9 at each step of an update that adds users (its ids written, its files carried halfway, its folder
    whole but a temporary, renamed but not served, current's link made but not swapped, served but the old folders
    not pruned): the run verifies and serves the old model (the new user unknown, user 2's list as before) or the
    new one (every array the uninterrupted update's, byte for byte), never a mix; the update run again then serves
    the new model and leaves nothing behind."""
    ref = copy_run(runs["taste"], tmp_path / "ref")
    with er.open(ref) as m:
        movies = trained_movies(m, 6)
        fresh = fresh_movies(m, 2, 2)
    rows = [(NEW, i, 1) for i in movies[:5]] + [(NEW + 1, movies[5], 1)] + [(2, i, 1) for i in fresh]
    f = write_ratings(tmp_path / "since.csv", rows)
    old = arrays(ref)
    before = invoke("recommend", "--user", 2, "-k", 5, "--run", ref, "--format", "tsv").stdout
    er.update_users(ref, f)
    new = arrays(ref)
    after = invoke("recommend", "--user", 2, "-k", 5, "--run", ref, "--format", "tsv").stdout
    assert before != after and new["user_factors"].shape[0] == old["user_factors"].shape[0] + 2
    for module, func, when, call in KILLS:
        run = copy_run(runs["taste"], tmp_path / f"run-{func}")
        code = textwrap.dedent(KILLER.format(module=module, func=func, when=when, call=call, run=str(run),
                                             ratings=str(f)))
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert p.returncode == -signal.SIGKILL, (func, p.returncode, p.stderr[-2000:])
        r = invoke("verify", run)
        assert r.exit_code == 0, (func, r.stderr)
        got = arrays(run)
        served = "new" if all(np.array_equal(got[k], new[k]) for k in new) else \
            "old" if all(np.array_equal(got[k], old[k]) for k in old) else "a mix"
        assert served == ("new" if func == "prune_generations" else "old"), func
        answer = invoke("recommend", "--user", 2, "-k", 5, "--run", run, "--format", "tsv").stdout
        assert answer == (after if served == "new" else before), func
        known = invoke("recommend", "--user", NEW, "-k", 2, "--run", run)
        assert known.exit_code == (0 if served == "new" else 1), func
        r = invoke("update-users", "--ratings", f, "--run", run)
        assert r.exit_code == 0, (func, r.stderr)
        assert (json.loads(r.stdout)["model_folder"] is None) == (served == "new"), func
        got = arrays(run)
        assert all(np.array_equal(got[k], new[k]) for k in new), func
        left = [p.name for p in run.iterdir() if p.name.startswith(".") and p.name != ".lock"]
        assert not left, (func, left)
        assert invoke("verify", run).exit_code == 0, func
    shutil.rmtree(tmp_path / "ref")


def test_a_train_of_another_width_than_the_model_it_replaced_says_so(tmp_path, caplog):
    """An ops review: a nightly job's `auto` settings chose 256, 128, 768 ... dimensions night by night, which a
    consumer of `export --to parquet` met without a word. A train's publish says the two widths and how to keep
    one; one of the same width, or another command's publish, says nothing."""
    from embedrec.run_publish import publish

    run = tmp_path / "run"

    def train(width):
        def fill(tmp):
            (tmp / "manifest.json").write_text(json.dumps({"n_users": 3, "n_movies": 2}))
            np.save(tmp / "movie_factors.npy", np.zeros((2, width), np.float32))
        return fill

    caplog.set_level(logging.INFO, "embedrec")
    publish(run, train(8))
    publish(run, train(8))
    assert "wide now" not in caplog.text
    publish(run, train(16), command="embedrec update-users")
    assert "wide now" not in caplog.text
    publish(run, train(24))
    said = [r.getMessage() for r in caplog.records if "wide now" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"note: {run}'s embeddings are 24 wide now, where the model it "
                                                 "replaced (artifacts-")
    assert "had 16, which a reader of its exported embeddings sees" in said[0]


def test_a_train_on_a_dataset_that_holds_the_updates_is_not_told_it_dropped_them(tmp_path, caplog):
    """An ops review: the nightly train on the grown file (the day's rows appended, which update-users had added by
    day) was told every night that it was 'trained without the updates' and to run update-users again. Where the
    new model's seen pairs hold every pair the updates gave, nothing is said; where they do not, it is."""
    import pandas as pd

    import embedrec as er
    from embedrec.config import load_config

    rng = np.random.default_rng(5)
    rows = pd.DataFrame({"user_id": rng.integers(0, 60, 1500), "movie_id": rng.integers(0, 50, 1500),
                         "rating": 1.0}).drop_duplicates(["user_id", "movie_id"])
    day, later = rows.iloc[:200], rows.iloc[200:]
    run, out = tmp_path / "run", tmp_path / "ds"
    cfg = load_config(None, {"model.dim": 8, "train.epochs": 2, "train.als_dims": [], "train.als_lowpass": 0,
                             "train.als_trend": 0, "split.test": 0, "run.dir": str(run)})
    er.train(er.ingest(later, cfg, output=out), cfg).save(run)
    er.update_users(run, day, cfg)
    caplog.set_level(logging.WARNING, "embedrec")
    er.train(er.ingest(rows, cfg, output=out, overwrite=True), cfg).save(run)  # the day's rows in the dataset
    assert "trained without the updates" not in caplog.text
    er.update_users(run, day.assign(movie_id=(day["movie_id"] + 1) % 50), cfg)
    er.train(er.ingest(rows, cfg, output=out, overwrite=True), cfg).save(run)  # these pairs not all in it
    assert "trained without the updates of the one it replaced" in caplog.text


def test_a_train_whose_test_split_holds_the_added_users_out_says_how_many(tmp_path, caplog):
    """An ops review: the nightly train on the grown file under a time split held the day's ratings out as test,
    so the 902 users update-users had added were left out of the new model (unknown ids from then on), and the
    warning said to ingest the ratings with the rest, which had been done. It says how many pairs the new model
    holds and how many added users it lacks, and the setting that serves on every rating."""
    import pandas as pd

    import embedrec as er
    from embedrec.config import load_config

    rng = np.random.default_rng(7)
    old = pd.DataFrame({"user_id": rng.integers(0, 60, 1500), "movie_id": rng.integers(0, 50, 1500),
                        "rating": 1.0, "timestamp": np.arange(1500) + 1_000_000})
    old = old.drop_duplicates(["user_id", "movie_id"])
    day = pd.DataFrame({"user_id": np.repeat(np.arange(100, 105), 4), "movie_id": np.tile([1, 2, 3, 4], 5),
                        "rating": 1.0, "timestamp": 2_000_000 + np.arange(20)})
    run, out = tmp_path / "run", tmp_path / "ds"
    cfg = load_config(None, {"model.dim": 8, "train.epochs": 2, "train.als_dims": [], "train.als_lowpass": 0,
                             "train.als_trend": 0, "split.method": "global_time", "run.dir": str(run)})
    er.train(er.ingest(old, cfg, output=out), cfg).save(run)
    assert er.update_users(run, day, cfg)["users_added"] == 5
    caplog.set_level(logging.WARNING, "embedrec")
    er.train(er.ingest(pd.concat([old, day]), cfg, output=out, overwrite=True), cfg).save(run)
    assert "it holds 0 of the 20 pairs they gave, and 5 of the 5 users they added are not in it" in caplog.text, \
        caplog.text
    assert "its dataset does not hold them, or holds them out as test, as a time split holds the latest ratings " \
        "out); ingest them with the rest (with --set split.test=0 to train on every rating) and train again" in \
        caplog.text


def test_a_stream_s_newer_model_hint_reads_a_folded_id_as_the_run_does(tmp_path):
    """A review: under data.id_case=fold a stream opened before update-users added 'NewGuy' (kept as 'newguy') said
    nothing of the newer model for the line 'NEWGUY', where it did for 'newguy'."""
    import pandas as pd

    import embedrec as er
    from embedrec.config import load_config
    from embedrec.serve.stream import _newer_model

    rng = np.random.default_rng(3)
    rows = pd.DataFrame({"user_id": [f"U{u}" for u in rng.integers(0, 40, 800)],
                         "movie_id": [f"m{m}" for m in rng.integers(0, 30, 800)], "rating": 1.0})
    rows = rows.drop_duplicates(["user_id", "movie_id"])
    run = tmp_path / "run"
    cfg = load_config(None, {"model.dim": 8, "train.epochs": 2, "train.als_dims": [], "train.als_lowpass": 0,
                             "train.als_trend": 0, "split.test": 0, "run.dir": str(run), "data.id_type": "auto",
                             "data.id_case": "fold"})
    er.train(er.ingest(rows, cfg, output=tmp_path / "ds"), cfg).save(run)
    old = er.open(run).engine
    er.update_users(run, pd.DataFrame({"user_id": ["NewGuy", "NewGuy"], "movie_id": ["m1", "m2"], "rating": 1.0}),
                    cfg)
    for line in ("newguy", "NEWGUY"):
        assert "which knows this user" in _newer_model(old, line), line
    assert _newer_model(old, "nobody") == ""
