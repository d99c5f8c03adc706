"""A known user's vector re-solved with ratings since training (serve/update.py, Model.recommend_new(user=...),
Model.explain(user, movie, liked=...), recommend --user U --liked/--rated): the als solve training's users got,
over the run's recorded weights plus the new ratings."""

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec.answers import Request
from embedrec.cli import main
from embedrec.config import load_config
from embedrec.errors import ArtifactError, NotFoundError, UsageError
from embedrec.model.factors import Factors
from embedrec.models import Model
from embedrec.serve import foldin
from embedrec.serve.recommender import Recommender
from embedrec.serve.update import known_fold_in, trained_pairs

sys.path.insert(0, str(Path(__file__).parent))
from test_trend import _as_dataset, _cfg, _hits_dataset  # noqa: E402  (datasets of rows in memory)

# ------------------------------------------------------------------------------------ by hand
# three movies in two dimensions, q = (1, 0), (0, 1), (1, 1): Q^T Q = [[2, 1], [1, 2]]; the solve a0 = 0.5, an L2 of
# 1 whatever the counts (exponent 0)
Q = np.array([[1, 0], [0, 1], [1, 1]], np.float32)


def _solve(recency=0.0) -> dict:
    return {"loss": "als", "a0": 0.5, "user_unobserved": 1.0, "reg": 1.0, "reg_exponent": 0.0, "recency": recency,
            "trend": 0.0, "trend_activity": 0.0, "trend_n0": 1.0}


def _tiny(recency=0.0) -> Model:
    """User 7 rated movies 10 and 20 (weights 1), its served vector the exact solve: A = 0.5 [[2, 1], [1, 2]] +
    q10 q10^T + q20 q20^T + I = [[3, .5], [.5, 3]], p = A^-1 (q10 + q20) = (1, 1) / 3.5."""
    f = Factors(np.full((1, 2), 2 / 7, np.float32), Q, None, None)
    rec = Recommender.from_parts(f, np.array([7]), {"movie_id": np.array([10, 20, 30]), "title": ["a", "b", "c"],
                                                    "year": [2000] * 3, "genres": [[]] * 3},
                                 (np.array([0, 2]), np.array([0, 1], np.int32)), np.array([1, 1, 0]),
                                 training_ratings={"solve": _solve(recency)},
                                 solve_arrays=(np.ones(2, np.float32), None))
    return Model(rec)


def test_a_known_users_re_solve_by_hand():
    """No new rating: the served (2/7, 2/7). Liked 30 as well: A + q30 q30^T = [[4, 1.5], [1.5, 4]] against
    (2, 2): (4/11, 4/11). With the run's recency weight g = 1 the new rating is the user's latest and weighs
    1 + g = 2: A + 2 q30 q30^T = [[5, 2.5], [2.5, 5]] against (3, 3): (0.4, 0.4)."""
    m = _tiny()
    np.testing.assert_allclose(known_fold_in(m.engine, 0, {})[0], [2 / 7, 2 / 7], rtol=1e-6)
    detail: dict = {}
    p, left_out = known_fold_in(m.engine, 0, {2: 1.0}, detail)
    np.testing.assert_allclose(p, [4 / 11, 4 / 11], rtol=1e-6)
    assert left_out == {} and detail["rows"].tolist() == [0, 1, 2] and detail["weights"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(known_fold_in(_tiny(recency=1.0).engine, 0, {2: 1.0})[0], [0.4, 0.4], rtol=1e-6)
    # through the library: the list is the user's (its id), and every rated movie, old or new, is left out
    res = m.recommend_new(liked=[30], user=7, k=3)
    assert res.query_ids == [7] and list(res.movie_ids[0]) == [] and res.unknown == []
    res = m.recommend_new(liked=[30], user=7, k=3, exclude_seen=False)
    np.testing.assert_allclose(res.scores[0][0], 2 * 4 / 11, rtol=1e-6)  # p . q30
    x = m.explain(7, 30, liked=[30])  # split over the three rated movies, the new one too
    assert sorted(x.movie_ids) == [10, 20, 30] and x.user_id == 7 and abs(x.remainder) < 1e-6


# ------------------------------------------------------------------------------------ trained runs
def _tastes_dataset(seed=0, n_users=300, n_movies=120, tastes=6):
    """Each user (index u) likes one of six tastes, u mod 6, as each movie (index m) is of taste m mod 6: 12 movies
    of its taste and 3 of any, at random times; 80% train, 10% valid, 10% test at random."""
    rng = np.random.default_rng(seed)
    u, m = [], []
    for user in range(n_users):
        own = rng.choice(np.arange(user % tastes, n_movies, tastes), 12, replace=False)
        other = rng.choice(np.setdiff1d(np.arange(n_movies), own), 3, replace=False)
        for movie in (*own, *other):
            u.append(user), m.append(int(movie))
    u, m = np.array(u), np.array(m)
    part = rng.choice(np.array(["train", "valid", "test"]), u.size, p=[0.8, 0.1, 0.1])
    return _as_dataset("tastes", n_users, n_movies, u, m, part, rng.integers(0, 1_000_000, u.size))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_dir):
    """Saved and opened: 'hits', an als run of six planted tastes fitted with the recency weight, recent
    popularity and users' activity weights (what the solve records, all of it); 'taste', the same data without
    recent popularity; on synth_dir, als with rating weights ('weighted'), on the ratings from 3 up ('min3'), and a
    bpr model ('bpr')."""
    tmp = tmp_path_factory.mktemp("update")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        for name, sets in (("hits", ("train.als_recency=2", "train.als_trend=4", "train.als_trend_activity=1")),
                           ("taste", ())):
            ds = _hits_dataset() if name == "hits" else _tastes_dataset()
            ds.path = tmp / name / "ds"  # (an in-memory dataset: a run records where its dataset is)
            er.train(ds, _cfg(*sets, f"run.dir={tmp / name / 'run'}")).save()
            out[name] = er.open(tmp / name / "run")
        for name, sets in (("weighted", ["train.als_rating_weight=2"]), ("min3", ["data.min_rating=3"]),
                           ("bpr", ["model.loss=bpr", "train.epochs=2"])):
            cfg = load_config(None, [f"data.prepared={tmp / name / 'ds'}", f"run.dir={tmp / name / 'run'}",
                                     "model.dim=8", "train.epochs=3", "train.threads=1", *sets])
            er.train(er.ingest(str(synth_dir[0]), cfg), cfg).save()
            out[name] = er.open(cfg.run.dir, cfg)
    return out


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("name", ["hits", "weighted", "min3"])
def test_no_new_rating_gives_the_served_vector(runs, name):
    """The known answer: each user re-solved from the run's recorded weights alone is the vector the run serves,
    up to what training's few conjugate-gradient steps leave of the exact solve (about 1e-5 relative; 2e-4 at
    most on ML-100K) -- with the recency weight, recent popularity's divisor and activity ('hits'), rating
    weights ('weighted') and movies seen but not trained on ('min3'). The same solve with every weight 1 is far
    off, so the weights are what makes it match."""
    e = runs[name].engine
    P = np.asarray(e.P, np.float64)
    users = [r for r in range(0, P.shape[0], 7) if P[r].any()]
    errors = [_rel(known_fold_in(e, r, {})[0], P[r]) for r in users]
    assert max(errors) < 1e-3, max(errors)
    rows, w = trained_pairs(e, users[1])
    assert (w > 0).all() and rows.size <= e.seen(users[1]).size
    if name != "min3":  # (min3's weights are all 1: what it shows is the movies left out)
        flat = foldin.als_vector(e.factors, e.training_ratings["solve"], *e.movie_gram(), rows, np.ones_like(w))
        assert _rel(flat, P[users[1]]) > 1e-2
    else:
        assert rows.size < e.seen(users[1]).size or any(trained_pairs(e, r)[0].size < e.seen(r).size
                                                          for r in users)


def test_new_ratings_of_one_taste_move_the_list_toward_it(runs):
    """Told that a user liked eight movies of another taste since training (beside the ten or so of its own it was
    trained on), its list of its own taste (70-100%, the other 0-10%) takes 30-50% of the other; it leaves the
    new movies and its seen ones out, and explains its scores over its old and new movies."""
    m = runs["taste"]
    e = m.engine
    for user in (1, 2, 9, 40):  # ids 1.. are indexes 0..: taste (id - 1) mod 6
        row = e.users.rows([user])[0][0]
        own, other = (user - 1) % 6, ((user - 1) % 6 + 3) % 6
        seen = {int(e.movie_ids[r]) for r in e.seen(row)}
        new = [i + 1 for i in range(other, 120, 6) if i + 1 not in seen][:8]
        before = m.recommend(user, k=10).movie_ids[0]
        res = m.recommend_new(liked=new, user=user, k=10)
        after = res.movie_ids[0]
        share = [np.mean([(i - 1) % 6 == t for i in ids]) for ids in (before, after) for t in (own, other)]
        assert share[0] >= 0.7 and share[1] <= 0.1 and share[3] >= 0.3 and share[2] < share[0], (user, share)
        assert res.query_ids == [user] and not set(after) & (set(new) | seen)
        xs = res.explain(n=20)[0]
        assert {i for x in xs for i in x.movie_ids} & set(new)  # the new movies are parts of the scores
        for x, printed in zip(xs, res.scores[0]):
            assert x.user_id == user and x.score == pytest.approx(printed, rel=1e-5) and abs(x.remainder) < 1e-5


def test_weights_and_exclusions_of_the_new_ratings(runs):
    """A new rating weighs as training weighs one (train.als_rating_weight 2: 1 + 2 (r - lo) / (hi - lo)); one
    below data.min_rating is left out of the solve, said in left_out, and still never listed; a movie the user
    rated before keeps its training weight (so giving it again changes nothing)."""
    m = runs["weighted"]
    e = m.engine
    lo, hi = e.scale
    row = 3
    user = e.users.raw(row)
    seen = e.seen(row)
    fresh = [int(e.movie_ids[r]) for r in range(e.Q.shape[0]) if r not in set(seen.tolist())][:2]
    x = m.explain(user, fresh[0], rated={fresh[0]: 4, fresh[1]: 2}, n=50)
    got = dict(zip(x.movie_ids, x.weights))
    latest = 1 + e.training_ratings["solve"]["recency"]  # the latest of the user's ratings
    assert got[fresh[0]] == pytest.approx((1 + 2 * (4 - lo) / (hi - lo)) * latest)
    assert got[fresh[1]] == pytest.approx((1 + 2 * (2 - lo) / (hi - lo)) * latest)
    before = int(e.movie_ids[seen[0]])
    again = m.recommend_new(rated={before: 1}, user=user, k=20, exclude_seen=False)
    np.testing.assert_allclose(again.scores[0], m.recommend_new(liked=[before], user=user, k=20,
                                                                exclude_seen=False).scores[0], rtol=1e-6)
    p = known_fold_in(e, row, {})[0]
    top = again._rows[0][0]
    bias = 0.0 if e.bm is None else float(np.asarray(e.bm).reshape(-1)[top])  # (recent popularity, where chosen)
    np.testing.assert_allclose(again.scores[0][0], float(p @ e.Q[top]) + bias, rtol=1e-5)
    m3 = runs["min3"]
    e3 = m3.engine
    seen3 = set(e3.seen(row).tolist())
    low, high = [int(e3.movie_ids[r]) for r in range(e3.Q.shape[0]) if r not in seen3][:2]
    res = m3.recommend_new(rated={low: 1, high: 5}, user=user, k=200)
    assert res.left_out == {low: 1.0} and low not in res.movie_ids[0] and high not in res.movie_ids[0]
    np.testing.assert_allclose(res.scores[0], m3.recommend_new(rated={high: 5}, user=user, k=200,
                                                               exclude=[low]).scores[0])


def test_other_models_and_refusals(runs, trained_run, tmp_path):
    """bpr folds the user in as it folds in a new user, over the movies it rated and the new ones; an explicit run
    keeps no ratings, so it is refused; an unknown user is told its ratings are a new user's; unknown movies are
    left out (refused with strict); ordered does not apply; a run without the recorded weights says so."""
    bpr = runs["bpr"]
    e = bpr.engine
    seen = [int(e.movie_ids[r]) for r in e.seen(0)]
    fresh = next(int(i) for i in e.movie_ids if int(i) not in seen)
    res = bpr.recommend_new(liked=[seen[0], fresh], user=e.users.raw(0), k=10)
    folded = bpr.recommend_new(liked=[*seen, fresh], k=10)  # the same history as a new user's
    assert list(res.movie_ids[0]) == list(folded.movie_ids[0])
    with pytest.raises(UsageError, match="model.objective: explicit.*keeps which movies each user rated but not the "
                                         "ratings"):
        trained_run.opened.recommend_new(liked=[1], user=trained_run.opened.user_ids[0])
    m = runs["weighted"]
    with pytest.raises(NotFoundError, match=r"user '99999' is not in the training data .*without user=, "
                                            r"liked=/rated= are a new user's: leave user= out"):
        m.recommend_new(liked=[1], user=99999)
    with pytest.raises(UsageError, match="ordered=True orders a new user's history"):
        m.recommend_new(liked=[1, 2], user=1, ordered=True)
    res = m.recommend_new(liked=[1, 99999], user=1, k=5)
    assert res.unknown == [99999] and len(res.movie_ids[0]) == 5
    with pytest.raises(NotFoundError, match="movie '99999' is not in the training data"):
        m.recommend_new(liked=[1, 99999], user=1, strict=True)
    with pytest.raises(NotFoundError, match="movie '99999'"):
        m.recommend_new(liked=[99999], user=1)  # none known: as a new user's
    assert m.answer(Request(user=1, liked=[2], k=3)).result.query_ids == [1]
    assert Request(user=1, liked=[2], rated={3: 4}).mode() == "liked" and Request(user=1, rated={3: 4}).mode() == "rated"
    # min_rating on a model other than als: the run cannot tell the trained ratings from the seen ones
    e.training_ratings = {**e.training_ratings, "min_rating": 3.0}
    try:
        with pytest.raises(UsageError, match=r"seen movies mix the ratings it trained on with those below 3"):
            bpr.recommend_new(liked=[fresh], user=e.users.raw(0))
    finally:
        e.training_ratings = {**e.training_ratings, "min_rating": None}
    trained = er.train(_hits_dataset(), _cfg("train.als_trend=0"))
    older = er.TrainedModel(trained.config, trained.dataset, {k: v for k, v in trained._f.items()
                                                              if k != "solve_weights"},
                            trained.metrics, trained._extra, None, [], weights_known=False)
    with pytest.raises(ArtifactError, match="this run does not record how its users' solve weighed their ratings"):
        older.recommend_new(liked=[1], user=1)


# ------------------------------------------------------------------------------------ the command
def _run(run, *args):
    return CliRunner().invoke(main, ["recommend", "--run", str(run.engine.run.path.parent), *args])


def _movies(tsv: str) -> list:
    return [line.split("\t")[2] for line in tsv.splitlines()[1:]]


def _scores(tsv: str) -> list:
    return [float(line.split("\t")[6]) for line in tsv.splitlines()[1:]]


def test_recommend_user_with_liked_or_rated(runs):
    m = runs["taste"]
    e = m.engine
    plain = _run(m, "--user", "2", "-k", "5", "--format", "tsv")
    assert plain.exit_code == 0, plain.stderr
    seen = int(e.movie_ids[e.seen(1)[0]])  # a movie user 2 rated in training: nothing new, the same list
    same = _run(m, "--user", "2", "--liked", str(seen), "-k", "5", "--format", "tsv")
    assert same.exit_code == 0 and _movies(same.stdout) == _movies(plain.stdout), same.stderr
    np.testing.assert_allclose(_scores(same.stdout), _scores(plain.stdout), rtol=1e-3)  # the exact solve: not
    # training's few conjugate-gradient steps
    assert f"note: user 2 rated a given movie before ({seen}): kept as the run weighs it" in same.stderr
    r = _run(m, "--user", "2", "--liked", "50,51", "-k", "5", "--format", "tsv", "--explain", "2")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[0] == "user_id" and lines[0].endswith("because") and len(lines) == 6
    assert all(line.split("\t")[0] == "2" for line in lines[1:]) and r.stdout != plain.stdout
    assert [line.split("\t")[2] for line in lines[1:]] == \
        [str(i) for i in m.recommend_new(liked=[50, 51], user=2, k=5).movie_ids[0]]
    rated = _run(m, "--user", "2", "--rated", "50=1,51=1", "-k", "5", "--format", "tsv", "-q")
    assert rated.exit_code == 0 and rated.stdout == _run(m, "--user", "2", "--liked", "50,51", "-k", "5", "--format",
                                                         "tsv").stdout
    # errors: one line each, nothing on stdout
    for args, code, message in (
            (("--user", "99999", "--liked", "5"), 1, "error: user '99999' is not in the training data (300 users); "),
            (("--user", "2", "--liked", "5,99999", "--strict"), 1, "error: movie '99999' is not in the training data"),
            (("--user", "2", "--liked", "5", "--fallback", "popular"), 2,
             "error: --fallback answers an unknown --user with the most popular movies; with --liked/--rated, --user "
             "is a user the model knows (a new user's ratings: drop --user)"),
            (("--user", "2", "--liked", "5,6", "--ordered"), 2, "error: --ordered orders a new user's history"),
            (("--user", "2", "--liked", "5", "--movie", "5"), 2, "error: give exactly one of --user, --users, --movie, "
             "--movies, --similar-users, --audience, --liked/--rated (with --user: that user's ratings since training), or --user-features (with "
             "--liked/--rated: a new user told both); this command "
             "gave --movie and --user with --liked")):
        r = _run(m, *args)
        assert (r.exit_code, r.stdout) == (code, ""), (args, r.stderr)
        assert r.stderr.startswith(message) and r.stderr.count("\n") == 1, (args, r.stderr)
    r = _run(m, "--user", "99999", "--liked", "5")
    assert "without --user, --liked/--rated are a new user's: drop --user" in r.stderr
    r = _run(m, "--user", "2", "--liked", "5,99999", "-k", "3")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4
    assert "left 1 of the 2 new movies of user 2 out of the fold-in: '99999' is not in the training data" in r.stderr


def test_recommend_user_with_liked_on_an_explicit_run_is_one_line(trained_run, monkeypatch):
    from embedrec.cli.state import _State

    monkeypatch.setattr(_State, "config_path", None)
    monkeypatch.setattr(_State, "overrides", ())
    user = str(trained_run.opened.user_ids[0])
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--user", user, "--liked", "1"])
    assert (r.exit_code, r.stdout) == (2, "") and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: this model predicts ratings (model.objective: explicit), and its run keeps which "
                               "movies each user rated but not the ratings"), r.stderr
    assert "--rated without --user" in r.stderr
