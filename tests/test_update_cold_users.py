"""update-users re-solving a user of the run's dataset without a training rating (split.cold_start's kind: its rows
all in test, a zero vector): such a user is as new, so it is solved and served as the same ratings under a new id
are (user_update._plan's new-user weights, run_layout.SOLVED_AS_NEW, Recommender.added_rows): the same vector, list
and scores, the new users' popularity prior in them, a request's --prior, --explain, predict, --users and export
--topk-all alike; a second update composes as an added user's does; the trained users' lists do not change, and a
trained user re-solved keeps no prior. A re-sealed solved_as_new.npy is refused as verify refuses the other tables."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedrec as er
from embedrec.errors import UsageError

sys.path.insert(0, str(Path(__file__).parent))
from test_newuser_prior import _cfg, _taste_and_popularity  # noqa: E402  (users whose next movies are popular)
from test_reliability import invoke, one_line  # noqa: E402  (the CLI through CliRunner; a failure's one line)
from test_trend import _as_dataset  # noqa: E402  (a dataset of rows in memory)
from test_update_users import copy_run, write_ratings  # noqa: E402

COLD = (1, 2)  # user ids whose every row is in test: no training rating, no vector
NEW = 9_999  # an id the run does not know
TRAINED = (3, 4, 5)


def _cold_dataset():
    """_taste_and_popularity's rows at random times (so a rating's place weighs: train.als_recency), users COLD's
    every row held in test (split.cold_start's kind)."""
    ds = _taste_and_popularity()
    u = np.concatenate([p.user for p in ds.splits.values()]).astype(np.int64)
    m = np.concatenate([p.movie for p in ds.splits.values()]).astype(np.int64)
    rng = np.random.default_rng(1)
    part = rng.choice(np.array(["train", "valid", "test"]), u.size, p=[0.8, 0.1, 0.1])
    part[np.isin(u, np.array(COLD) - 1)] = "test"
    return _as_dataset("cold", 500, 150, u, m, part, rng.integers(0, 1_000_000, u.size))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The saved run (recency weight 2), the movies to tell (three niche ones with training ratings) and the
    trained users' lists before any update."""
    tmp = tmp_path_factory.mktemp("cold-users")
    ds = _cold_dataset()
    ds.path = tmp / "ds"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        er.train(ds, _cfg("train.als_recency=2", f"run.dir={tmp / 'run'}")).save()
    with er.open(tmp / "run") as m:
        e = m.engine
        assert all(e.users.vectorless(u) for u in COLD) and e.training_ratings["solve"]["recency"] > 0
        assert e.prior_weight(3) > 0 and e.prior_weight(4) > 0, e.training_ratings["solve"].get("newuser_prior")
        trained = np.flatnonzero(~e.untrained)
        niche = [int(e.movie_ids[r]) for r in trained[np.argsort(e.popularity[trained], kind="stable")][:4]]
        before = [list(x) for x in m.recommend(list(TRAINED), k=10).movie_ids]
    return tmp / "run", niche, before


def _pair(base, tmp_path, *more):
    """Two copies of the run, the niche movies told by cold user 1 in one and by NEW in the other (one update each,
    then one for each of ``more``: lists of further movies)."""
    run, niche, _ = base
    cold, new = copy_run(run, tmp_path / "cold"), copy_run(run, tmp_path / "new")
    records = []
    for i, movies in enumerate([niche[:3], *more]):
        records.append(er.update_users(cold, write_ratings(tmp_path / f"c{i}.csv", [(COLD[0], x, 1) for x in movies])))
        er.update_users(new, write_ratings(tmp_path / f"n{i}.csv", [(NEW, x, 1) for x in movies]))
    return cold, new, records


def _same(a, b):
    assert [list(x) for x in a.movie_ids] == [list(x) for x in b.movie_ids]
    for x, y in zip(a.scores, b.scores):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_a_cold_user_re_solved_is_served_as_the_same_ratings_added_as_a_new_user(base, tmp_path):
    """Its vector is the added user's (the fold-in's weights, at the middle of a history: not the latest place a
    trained user's new ratings take); its list, scores and the prior in them are the added user's, at the run's
    weight, a request's own ('off', 3), in explain and predict; a request re-solving it with one more movie keeps
    the prior; the trained users' lists are those before the update."""
    _, niche, before = base
    cold, new, (record,) = _pair(base, tmp_path)
    assert (record["users"], record["users_added"], record["users_as_new"], record["pairs_solved"]) == (1, 0, 1, 3)
    with er.open(cold) as c, er.open(new) as n:
        ec, en = c.engine, n.engine
        rc, rn = int(ec.users.rows([COLD[0]])[0][0]), int(en.users.rows([NEW])[0][0])
        assert ec.solved_as_new().tolist() == [rc] and en.solved_as_new().size == 0
        assert ec.added_rows([rc]).tolist() == [rc] and ec.added_rows(ec.users.rows(list(TRAINED))[0]).size == 0
        np.testing.assert_allclose(ec.P[rc], en.P[rn], rtol=1e-5, atol=1e-6)
        w = ec.solve_arrays()[0][ec.seen_ptr[rc]:ec.seen_ptr[rc + 1]]
        assert w.tolist() == en.solve_arrays()[0][en.seen_ptr[rn]:en.seen_ptr[rn + 1]].tolist()
        told = n.recommend_new(liked=niche[:3], k=10)
        _same(c.recommend(COLD[0], k=10), told)
        _same(c.recommend(COLD[0], k=10), n.recommend(NEW, k=10))
        for given in ("off", 3):
            _same(c.recommend(COLD[0], k=10, prior=given), n.recommend(NEW, k=10, prior=given))
        assert list(c.recommend(COLD[0], k=10, prior="off").movie_ids[0]) != list(told.movie_ids[0])
        top = int(told.movie_ids[0][0])
        x, y = c.explain(COLD[0], top), n.explain(NEW, top)
        assert x.prior != 0 and x.prior == pytest.approx(y.prior, rel=1e-5) and x.score == pytest.approx(y.score,
                                                                                                         rel=1e-5)
        assert c.explain(COLD[0], top, prior="off").prior == 0
        pairs = [int(b) for b in told.movie_ids[0][:3]]
        np.testing.assert_allclose(c.predict([(COLD[0], b) for b in pairs]).scores,
                                   n.predict([(NEW, b) for b in pairs]).scores, rtol=1e-5, atol=1e-6)
        again = c.recommend_new(user=COLD[0], liked=[niche[3]], k=10)
        _same(again, n.recommend_new(user=NEW, liked=[niche[3]], k=10))
        assert again.explain(n=1)[0][0].prior != 0
        # the trained users: their lists as before, no prior to weigh
        assert [list(x) for x in c.recommend(list(TRAINED), k=10).movie_ids] == before
        with pytest.raises(UsageError, match="no such prior"):
            c.recommend(TRAINED[0], k=10, prior="off")
        # a stream of ids and export --topk-all alike
        got = list(c.recommend_stream([TRAINED[0], COLD[0]], 10, prior="off"))
        assert list(got[1][1]) == list(n.recommend(NEW, k=10, prior="off").movie_ids[0])
        assert list(got[0][1]) == before[0]
        c.topk_all(tmp_path / "top.parquet", k=10)
        top_all = pd.read_parquet(tmp_path / "top.parquet")
        assert top_all.loc[top_all.user_id == COLD[0], "movie_id"].tolist() == list(told.movie_ids[0])
        assert top_all.loc[top_all.user_id == TRAINED[0], "movie_id"].tolist() == before[0]


def test_the_command_says_it_and_a_stream_takes_prior_where_no_user_was_added(base, tmp_path):
    """Through the CLI: the summary line says the user was solved as a new one; recommend --users --prior takes the
    run (no user was added to it: the cold user's list is the one weighed) and --user lists it as NEW's."""
    run, niche, before = base
    cold = copy_run(run, tmp_path / "cold")
    f = write_ratings(tmp_path / "c.csv", [(COLD[0], x, 1) for x in niche[:3]])
    r = invoke("update-users", "--ratings", f, "--run", cold)
    assert r.exit_code == 0, r.stderr
    assert ("re-solved 1 (1 of them without a training rating, solved and served as new users are) of the 1 user "
            "named") in r.stderr
    assert json.loads(r.stdout)["users_as_new"] == 1
    with er.open(cold) as c:
        off = [int(x) for x in c.recommend(COLD[0], k=5, prior="off").movie_ids[0]]
    s = invoke("recommend", "--run", cold, "--users", "-", "-k", 5, "--format", "csv", "--prior", "off",
               input=f"{TRAINED[0]}\n{COLD[0]}\n")
    assert s.exit_code == 0, s.stderr
    lists: dict = {}
    for line in s.stdout.splitlines()[1:]:
        lists.setdefault(int(line.split(",")[0]), []).append(int(line.split(",")[2]))
    assert lists[COLD[0]] == off and lists[TRAINED[0]] == before[0][:5]
    assert invoke("verify", cold).exit_code == 0


def test_a_second_update_composes_as_an_added_users_does(base, tmp_path):
    """A second update giving the cold user one more movie re-solves it as a second update re-solves an added user
    (its first ratings at the weights recorded, the new one at the latest place): the same list as NEW's, the prior
    for four movies; the file keeps its row once."""
    _, niche, _ = base
    cold, new, records = _pair(base, tmp_path, [niche[3]])
    assert [r["users_as_new"] for r in records] == [1, 0]
    with er.open(cold) as c, er.open(new) as n:
        _same(c.recommend(COLD[0], k=10), n.recommend(NEW, k=10))
        assert c.engine.solved_as_new().size == 1
    assert np.load(cold / "current" / "solved_as_new.npy").tolist() == [0]


def test_a_trained_user_re_solved_stays_a_trained_users_list(base, tmp_path):
    """A trained user's re-solve weighs its new rating at the latest place and keeps no prior (a request's --prior
    refused); cold user 2, solved in the same update, is the one marked."""
    run, niche, _ = base
    cold = copy_run(run, tmp_path / "cold")
    record = er.update_users(cold, write_ratings(tmp_path / "c.csv", [(TRAINED[0], niche[0], 1), (COLD[1], niche[1], 1)]))
    assert (record["users"], record["users_as_new"]) == (2, 1)
    with er.open(cold) as c:
        e = c.engine
        assert e.solved_as_new().tolist() == [int(e.users.rows([COLD[1]])[0][0])]
        with pytest.raises(UsageError, match="no such prior"):
            c.recommend(TRAINED[0], k=10, prior="off")
        c.recommend(COLD[1], k=10, prior="off")  # taken


@pytest.mark.parametrize("edit, said", [
    (lambda u: np.array([], np.int64), "solved_as_new.npy holds 0 rows, where the updates count 1 users without a "
                                       "training rating solved as new ones (users_as_new)"),
    (lambda u: np.array([400], np.int64), "solved_as_new.npy holds a row that updated_users.npy does not (a user no "
                                          "update solved)"),
    (lambda u: np.array([600], np.int64), "solved_as_new.npy does not hold sorted rows of its dataset's 500 users"),
])
def test_a_resealed_solved_as_new_table_is_refused(base, tmp_path, edit, said):
    """A re-sealed solved_as_new.npy (a row gone, another user's, one past the dataset's users) would serve a cold
    user as a trained one or a trained one with the prior: verify, recommend and update-users refuse it in one line
    (verify.check_solved_as_new)."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    run, niche, _ = base
    cold = copy_run(run, tmp_path / "cold")
    er.update_users(cold, write_ratings(tmp_path / "c.csv", [(COLD[0], x, 1) for x in niche[:3]]))
    folder = Path(os.path.realpath(cold / "current"))
    np.save(folder / "solved_as_new.npy", edit(np.load(folder / "solved_as_new.npy")))
    _record_checksums(folder)
    line = f"error: run '{folder}': {said}; {cli_terms(run_fix(folder))}"
    f = write_ratings(tmp_path / "d.csv", [(NEW, niche[0], 1)])
    for args in (["verify", cold], ["recommend", "--user", COLD[0], "--run", cold],
                 ["update-users", "--ratings", f, "--run", cold]):
        r = invoke(*args)
        assert (r.exit_code, r.stdout) == (1, "") and one_line(r).startswith(line), (args, r.stderr)
    assert os.path.realpath(cold / "current") == str(folder)  # nothing published


def test_a_trained_user_resealed_in_as_new_is_refused(base, tmp_path):
    """A red team: solved_as_new.npy re-sealed to name a trained user the same update re-solved (in
    updated_users.npy, as the cold user it replaced) passed verify, and that user's lists took the new users'
    prior. Each row there must have no training rating: every movie its solve weighs is one an update added
    (update_pairs.npy); verify, recommend, update-users and index rebuild refuse it in one line naming the file."""
    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    run, niche, _ = base
    cold = copy_run(run, tmp_path / "cold")
    er.update_users(cold, write_ratings(tmp_path / "c.csv", [(TRAINED[0], niche[0], 1), (COLD[1], niche[1], 1)]))
    folder = Path(os.path.realpath(cold / "current"))
    with er.open(cold) as c:
        row = int(c.engine.users.rows([TRAINED[0]])[0][0])
        assert c.engine.solved_as_new().tolist() != [row]
    np.save(folder / "solved_as_new.npy", np.array([row], np.int64))
    _record_checksums(folder)
    line = (f"error: run '{folder}': solved_as_new.npy holds user row {row}, which has training ratings (its solve "
            "weighs movies no update added, update_pairs.npy): only a user without one is solved and served as a new "
            f"user; {cli_terms(run_fix(folder))}")
    f = write_ratings(tmp_path / "d.csv", [(NEW, niche[0], 1)])
    for args in (["verify", cold], ["recommend", "--user", TRAINED[0], "--run", cold],
                 ["update-users", "--ratings", f, "--run", cold], ["index", "rebuild", "--run", cold]):
        r = invoke(*args)
        assert (r.exit_code, r.stdout) == (1, "") and one_line(r).startswith(line), (args, r.stderr)
    assert os.path.realpath(cold / "current") == str(folder)  # nothing published


def test_evaluate_counts_no_cold_user_update_users_solved_as_without_a_vector(base, tmp_path):
    """A review: after update-users solved cold users, evaluate still counted them among the users with no trained
    vector (192 where 190 had none on ML-100K's global cut): the count is serving's now, a zero row."""
    from embedrec.evaluate import evaluate_factors
    from embedrec.evaluate_runs import run_factors
    from embedrec.run import load_run

    run, niche, _ = base
    run = copy_run(run, tmp_path / "run")
    ds = _cold_dataset()

    def untrained():
        f = run_factors(load_run(run))
        return evaluate_factors(f, False, ds, "test", ks=(10,), refit=True)["splits"]["test"]["model"].get("users_untrained", 0)

    assert untrained() == len(COLD)
    er.update_users(run, write_ratings(tmp_path / "c.csv", [(COLD[0], x, 1) for x in niche[:3]]))
    assert untrained() == len(COLD) - 1
