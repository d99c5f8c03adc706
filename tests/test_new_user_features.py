"""A new user told by demographics and by liked/rated movies at once (`recommend --user-features ... --liked ...`,
`recommend_new(user_features=...)`): the fold-in solved on top of the features' vector (serve.foldin.fold_in's
``offset``). By hand for each solve; then on feature runs trained on data whose users' ages and movies point
opposite ways; then through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec.answers import Request
from embedrec.cli import main
from embedrec.errors import UsageError
from embedrec.model.factors import Factors
from embedrec.serve import foldin

GENRE_FLAG = {0: 1, 1: 5, 2: 8, 3: 11}  # Action, Comedy, Drama, Horror in ML-100K's u.item flags
N_MOVIES = 40
GENRE = np.arange(N_MOVIES) % 4  # movie id m + 1 is of genre GENRE[m]
YOUNG_LIKES, OLD_LIKES = (0, 3), (1, 2)  # young users (under 35) like Action and Horror, older ones Comedy and Drama
DRAMA = [m + 1 for m in range(N_MOVIES) if GENRE[m] == 2]  # movie ids
ACTION = [m + 1 for m in range(N_MOVIES) if GENRE[m] == 0]


def write_tastes(d, n_users=300, per_user=8, seed=0):
    """ML-100K's layout (u.data, u.item, u.user) of users whose age says their taste: each picks 3 of every 4 of its
    movies from the two genres of its age (rated 4-5), the rest from the other two (rated 1-2). A young user's
    features and a few Drama movies it liked then point opposite ways."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    ages = rng.choice([20, 30, 40, 60], size=n_users)
    rows = []
    for u in range(n_users):
        likes = np.isin(GENRE, YOUNG_LIKES if ages[u] < 35 else OLD_LIKES)
        n_liked = per_user * 3 // 4
        picks = [(m, rng.integers(4, 6)) for m in rng.choice(np.flatnonzero(likes), n_liked, replace=False)]
        picks += [(m, rng.integers(1, 3)) for m in rng.choice(np.flatnonzero(~likes), per_user - n_liked, replace=False)]
        rows += [f"{u + 1}\t{m + 1}\t{r}\t{880000000 + rng.integers(0, 10**6)}" for m, r in picks]
    (d / "u.data").write_text("\n".join(rows) + "\n")
    items = []
    for m in range(N_MOVIES):
        flags = ["0"] * 19
        flags[GENRE_FLAG[GENRE[m]]] = "1"
        items.append(f"{m + 1}|Movie {m + 1} ({1950 + m})|01-Jan-{1950 + m}||x|" + "|".join(flags))
    (d / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    (d / "u.user").write_text("\n".join(f"{u + 1}|{ages[u]}|{'MF'[u % 2]}|writer|{u % 9}0000"
                                        for u in range(n_users)) + "\n")
    return d


FEATURES = ("model.dim=8", "train.epochs=20", "train.patience=100", "train.refit=false", "train.threads=1",
            "features.movie=[genre]", "features.user=[age, gender]")
RUNS = {"softmax": ("train.lr=0.02",),  # the implicit loss with features (model.loss auto)
        "explicit": ("model.objective=explicit", "train.lr=0.02"),
        "bpr": ("model.loss=bpr", "train.lr=0.02")}  # the fixed implicit-ALS fold-in


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: (opened model, CLI --set options)} of three feature runs on write_tastes' data, and 'plain': a run of
    the same data without features (the default als)."""
    from embedrec.config import load_config

    tmp = tmp_path_factory.mktemp("told-both")
    src = write_tastes(tmp / "ml")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        ds = None
        for name, extra in {**RUNS, "plain": ()}.items():
            sets = (f"data.prepared={tmp / 'ds'}", f"run.dir={tmp / name}", "train.threads=1",
                    *(() if name == "plain" else (*FEATURES, *extra)))
            cfg = load_config(None, sets)
            ds = ds or er.ingest(str(src), cfg)
            er.train(ds, cfg).save()
            out[name] = (er.open(cfg.run.dir, cfg), tuple(x for s in sets for x in ("--set", s)))
    return out


# ------------------------------------------------------------------------------------------ by hand
def _factors(Q, bias=None, explicit=False, mu=0.0):
    Q = np.asarray(Q, np.float32)
    return Factors(np.zeros((1, Q.shape[1]), np.float32), Q, None if not explicit else np.zeros(1, np.float32),
                   None if bias is None else np.asarray(bias, np.float32), mu, explicit, (1.0, 5.0) if explicit
                   else None)


def test_the_fixed_solve_pulls_towards_the_features_vector_by_hand():
    """Movies q = 1, 2, -1 (one dimension), the first liked (w 1), alpha 10, L2 0.5, the features' f = 0.3: the
    solve minimises 11 (1 - p)^2 + (2p)^2 + (-p)^2 + 0.5 (p - f)^2, whose derivative
    -22 (1 - p) + 8p + 2p + (p - 0.3) is 0 at 33 p = 22.3."""
    f = _factors([[1.0], [2.0], [-1.0]])
    p, b, rows = foldin.fold_in(f, {0: 1.0}, reg=0.5, alpha=10.0, offset=(np.array([0.3], np.float32), 0.0))
    assert p[0] == pytest.approx(22.3 / 33, rel=1e-6) and b == 0.0 and rows.tolist() == [0]
    alone = foldin.fold_in(f, {0: 1.0}, reg=0.5, alpha=10.0)[0]
    assert alone[0] == pytest.approx(22 / 33, rel=1e-6)  # without the pull towards f: 33 p = 22


def test_the_explicit_solve_regresses_what_the_features_do_not_predict_by_hand():
    """Movies q = 1 and 2, mu 3, b_m 0 and 0.5, rated 5 and 4, L2 0.1 x 2 ratings, features f = 0.4, b_f = 0.2:
    the residuals y = r - mu - b_m - (q f + b_f) = 1.4 and -0.5, X = [[1, 1], [2, 1]],
    A = X^T X + 0.2 I = [[5.2, 3], [3, 2.2]], X^T y = [0.4, 0.9]: (r, b_r) = A^-1 X^T y = (-1.82, 3.48) / 2.44,
    the user (f + r, b_f + b_r)."""
    f = _factors([[1.0], [2.0]], bias=[0.0, 0.5], explicit=True, mu=3.0)
    p, b, _ = foldin.fold_in(f, {0: 5.0, 1: 4.0}, reg=0.1, offset=(np.array([0.4], np.float32), 0.2))
    assert p[0] == pytest.approx(np.float32(0.4) - 1.82 / 2.44, rel=1e-6)
    assert b == pytest.approx(0.2 + 3.48 / 2.44, rel=1e-6)


def test_the_softmax_solve_raises_each_logit_by_the_features_score_by_hand():
    """Movies q = +1 and -1, no bias, the first liked, L2 0.25, f = 0.5: the solve's r minimises
    log(e^(f+r) + e^-(f+r)) - (f + r) + 0.25 r^2, so tanh(0.5 + r) - 1 + 0.5 r = 0 (by bisection), and p = f + r;
    the L2 on r, not on p, so p lies beyond the fold-in alone's 0.7408 (f pulls it up)."""
    lo, hi = -2.0, 2.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.tanh(0.5 + mid) - 1 + 0.5 * mid < 0 else (lo, mid)
    f = _factors([[1.0], [-1.0]], bias=[0.0, 0.0])
    p = foldin.fold_in(f, {0: 1.0}, solve={"loss": "softmax", "l2": 0.25}, offset=(np.array([0.5], np.float32), 0.0))[0]
    assert p[0] == pytest.approx(0.5 + lo, abs=1e-6)
    alone = foldin.fold_in(f, {0: 1.0}, solve={"loss": "softmax", "l2": 0.25})[0]
    assert alone[0] == pytest.approx(0.7408, abs=1e-4) and p[0] > alone[0]


@pytest.mark.parametrize("kind", ["explicit", "softmax", "fixed"])
def test_a_zero_features_vector_is_the_fold_in_alone_and_no_movie_the_features_alone(kind):
    """What is exactly equal: with f = 0 and b_f = 0 each solve is the fold-in alone to the bit (the same
    arithmetic, plus zeros); with no movie the vector is the features' own, (f, b_f) as given."""
    rng = np.random.default_rng(3)
    f = _factors(rng.normal(size=(30, 5)), rng.normal(size=30), explicit=kind == "explicit", mu=3.0)
    solve = {"loss": "softmax", "l2": 0.05} if kind == "softmax" else None
    items = {2: 5.0, 9: 4.0, 17: 1.0} if kind == "explicit" else {2: 1.0, 9: 1.0, 17: 1.0}
    zero = (np.zeros(5, np.float32), 0.0)
    with_zero, alone = foldin.fold_in(f, items, solve=solve, offset=zero), foldin.fold_in(f, items, solve=solve)
    np.testing.assert_array_equal(with_zero[0], alone[0])
    assert with_zero[1] == alone[1]
    vec = rng.normal(size=5).astype(np.float32)
    p, b, rows = foldin.fold_in(f, {}, solve=solve, offset=(vec, 0.7))
    np.testing.assert_array_equal(p, vec)
    assert b == 0.7 and rows.size == 0
    moved = foldin.fold_in(f, items, solve=solve, offset=(vec, 0.7))[0]
    assert not np.allclose(moved, alone[0]) and not np.allclose(moved, vec)  # both matter


def test_an_als_solve_takes_no_features_vector():
    f = _factors(np.eye(3))
    als = {"loss": "als", "a0": 0.2, "user_unobserved": 1.0, "reg": 0.02, "reg_exponent": 1.0}
    with pytest.raises(UsageError, match="an als model is trained without user features"):
        foldin.fold_in(f, {0: 1.0}, solve=als, offset=(np.zeros(3, np.float32), 0.0))


# ------------------------------------------------------------------------------------------ trained runs
def _drama_gap(model, p, b=0.0) -> float:
    """The mean score of the Comedy and Drama movies less that of the Action and Horror ones, for vector p."""
    e = model.engine
    rows = e.movie_rows(list(range(1, N_MOVIES + 1)))[0]
    s = np.asarray(e.Q, np.float64)[rows] @ np.asarray(p, np.float64) + np.asarray(e.bm, np.float64)[rows] + b
    return float(s[np.isin(GENRE, OLD_LIKES)].mean() - s[np.isin(GENRE, YOUNG_LIKES)].mean())


@pytest.mark.parametrize("name", list(RUNS))
def test_a_young_user_who_liked_dramas_lands_between_its_features_and_its_movies(runs, name):
    """The data: young users like Action and Horror. A young user told by its age alone is listed Action/Horror
    above Comedy/Drama; told three Drama movies alone, the reverse; told both, its vector's lean lies strictly
    between the two: the age pulls the movies' answer back towards its own."""
    model = runs[name][0]
    e, young = model.engine, {"age": 22}
    liked = DRAMA[:3]
    by_features = _drama_gap(model, *e.user_from_features(young))
    by_movies = _drama_gap(model, *e.fold_in(liked=liked)[:2])
    both = _drama_gap(model, *e.fold_in(liked=liked, features=young)[:2])
    assert by_features < 0 < by_movies, (by_features, by_movies)
    assert by_features < both < by_movies, (by_features, both, by_movies)
    told = model.recommend_new(liked=liked, user_features=young, k=10)
    assert not set(told.movie_ids[0]) & set(liked)  # the movies told are seen: never listed
    assert told.query_ids == [None]
    assert not np.array_equal(told.scores[0], model.recommend_new(liked=liked, k=10).scores[0])


@pytest.mark.parametrize("name", list(RUNS))
def test_no_movie_told_is_the_features_list_exactly(runs, name):
    """recommend_new(liked=[], user_features=...) is recommend_features' list, movies and scores to the bit."""
    model = runs[name][0]
    values = {"age": 40, "gender": "F"}
    want = model.recommend_features(values, k=12)
    for got in (model.recommend_new(liked=[], user_features=values, k=12),
                model.answer(Request(liked=[], user_features=values, k=12)).result):
        np.testing.assert_array_equal(got.movie_ids[0], want.movie_ids[0])
        np.testing.assert_array_equal(got.scores[0], want.scores[0])


def test_a_features_vector_of_zeros_gives_the_fold_in_alone_exactly(runs, monkeypatch):
    """Where the features' vector is 0 (and its bias), the list told both is the fold-in's alone, movies and scores
    to the bit: nothing else of the request changes (the movies excluded, the filters)."""
    model = runs["explicit"][0]
    want = model.recommend_new(rated={DRAMA[0]: 5, ACTION[0]: 1}, k=8, genres=("Drama", "Action"))
    d = model.engine.Q.shape[1]
    monkeypatch.setattr(foldin, "user_from_features", lambda run, dim, values, told=False: (np.zeros(d, np.float32), 0.0))
    got = model.recommend_new(rated={DRAMA[0]: 5, ACTION[0]: 1}, k=8, genres=("Drama", "Action"),
                              user_features={"age": 22})
    np.testing.assert_array_equal(got.movie_ids[0], want.movie_ids[0])
    np.testing.assert_array_equal(got.scores[0], want.scores[0])


def test_a_pickled_model_tells_a_new_user_both_after_its_folder_is_gone(runs, tmp_path):
    """A pickle carries the feature tables (Recommender.__getstate__), so a copy answers a new user told both after
    its run folder is removed, with the list the open model gives."""
    import pickle
    import shutil

    shutil.copytree(runs["softmax"][0].engine.run.path.parent, tmp_path / "copy", symlinks=True)
    ask = dict(liked=DRAMA[:2], user_features={"age": 22, "gender": "M"}, k=5)
    with er.open(tmp_path / "copy") as m:
        want = m.recommend_new(**ask)
        blob = pickle.dumps(m)
    shutil.rmtree(tmp_path / "copy")
    got = pickle.loads(blob).recommend_new(**ask)
    np.testing.assert_array_equal(got.movie_ids[0], want.movie_ids[0])
    np.testing.assert_array_equal(got.scores[0], want.scores[0])


def test_told_both_through_a_request_and_its_refusals(runs):
    model = runs["softmax"][0]
    young = {"age": 22}
    res = model.answer(Request(liked=[DRAMA[0]], rated={DRAMA[1]: 5}, user_features=young, k=5)).result
    want = model.recommend_new(liked=[DRAMA[0]], rated={DRAMA[1]: 5}, user_features=young, k=5)
    np.testing.assert_array_equal(res.movie_ids[0], want.movie_ids[0])
    assert Request(liked=[1], user_features=young).mode() == "liked"
    assert Request(rated={1: 5}, user_features=young).mode() == "rated"
    for request, said in (
            (Request(user=1, liked=[1], user_features=young), "user with liked and user_features were given"),
            (Request(movie=1, user_features=young), "movie and user_features were given"),
            (Request(liked=[1], user_features=young, explain=2),
             "explain splits a score over the user's rated movies; a new user told by user_features too")):
        with pytest.raises(UsageError, match=said):
            model.answer(request)
    with pytest.raises(UsageError, match="user_features= tell a new user, user= names a known one"):
        model.recommend_new(liked=[1], user=1, user_features=young)
    with pytest.raises(UsageError, match=r"recommend_new: user_features='age=22': give \{column: value\}"):
        model.recommend_new(liked=[1], user_features="age=22")
    with pytest.raises(UsageError, match="unknown column 'shoe'"):
        model.recommend_new(liked=[1], user_features={"shoe": 9})
    plain = runs["plain"][0]
    with pytest.raises(UsageError, match=r"this model has no user features; train with e.g. features.user=\[age, "
                                         r"gender\] on a dataset with demographics \(ML-100K, ML-1M\), or drop "
                                         r"user_features to fold in liked/rated alone"):
        plain.recommend_new(liked=[1], user_features=young)


# ------------------------------------------------------------------------------------------ the CLI
@pytest.fixture
def cli(monkeypatch):
    from embedrec.cli.state import _State

    monkeypatch.setattr(_State, "config_path", None)
    monkeypatch.setattr(_State, "overrides", ())
    return lambda sets, *args: CliRunner().invoke(main, ["recommend", *sets, *args])


def test_recommend_told_both_on_the_command_line(runs, cli):
    model, sets = runs["softmax"]
    liked = ",".join(map(str, DRAMA[:2]))
    r = cli(sets, "--user-features", "age=22,gender=F", "--liked", liked, "-k", "6", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "user_id,rank,movie_id,title,year,genres,score" and len(lines) == 7
    got = [int(line.split(",")[2]) for line in lines[1:]]
    want = model.recommend_new(liked=DRAMA[:2], user_features={"age": "22", "gender": "F"}, k=6)
    assert got == [int(x) for x in want.movie_ids[0]] and not set(got) & set(DRAMA[:2])
    assert all(line.startswith(",") for line in lines[1:])  # a new user: no user_id
    r = cli(sets, "--user-features", "age=22", "--rated", f"{DRAMA[0]}=5", "--liked", str(DRAMA[1]),
            "--include-seen", "--strict", "-k", "40", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    assert {DRAMA[0], DRAMA[1]} <= {int(line.split(",")[2]) for line in r.stdout.splitlines()[1:]}
    r = cli(sets, "--user-features", "age=22", "--liked", liked, "--ordered", "-k", "3")
    assert r.exit_code == 0 and "--ordered changed nothing" in r.stderr, r.stderr
    # an implicit model takes every rating alike: the note's --liked, with the same --user-features, is the same list
    rated = cli(sets, "--user-features", "age=22", "--rated", f"{DRAMA[0]}=5,{DRAMA[1]}=1", "-k", "5", "--format", "csv")
    assert rated.exit_code == 0, rated.stderr
    assert (f"the --rated values make no difference: --liked {DRAMA[0]},{DRAMA[1]} with the same --user-features "
            "gives the same list") in rated.stderr, rated.stderr
    r = cli(sets, "--user-features", "age=22", "--liked", liked, "-k", "5", "--format", "csv")
    assert r.stdout == rated.stdout


@pytest.mark.parametrize("args, said", [
    (("--user", "1", "--user-features", "age=22", "--liked", "5"),
     "give exactly one of --user, --users, --movie, --movies, --similar-users, --audience, --liked/--rated (with --user: that user's "
     "ratings since training), or --user-features (with --liked/--rated: a new user told both); this command gave "
     "--user with --liked and --user-features"),
    (("--movie", "5", "--user-features", "age=22"),
     "give exactly one of --user, --users, --movie, --movies, --similar-users, --audience, --liked/--rated (with --user: that user's "
     "ratings since training), or --user-features (with --liked/--rated: a new user told both); this command gave "
     "--movie and --user-features"),
    (("--user-features", "age=22", "--liked", "5", "--fallback", "popular"),
     "--fallback does not apply to --liked; it is for --user and --users"),
    (("--user-features", "age=22", "--liked", "5", "--explain"),
     "--explain splits a score over the user's rated movies; a new user told by --user-features too owes part of "
     "each score to them, which no rated movie explains: drop one of --explain and --user-features"),
    (("--user-features", "shoe=9", "--liked", "5"), "--user-features: unknown column 'shoe'"),
])
def test_what_told_both_still_refuses_is_one_line(runs, cli, args, said):
    r = cli(runs["softmax"][1], *args)
    assert (r.exit_code, r.stdout) == (2, ""), r.stderr
    assert r.stderr.startswith("error: " + said) and r.stderr.count("\n") == 1, r.stderr


def test_told_both_on_a_run_without_user_features_says_so(runs, cli):
    r = cli(runs["plain"][1], "--user-features", "age=25", "--liked", "5")
    assert (r.exit_code, r.stdout) == (2, ""), r.stderr
    assert r.stderr == ("error: this model has no user features; train with e.g. --set 'features.user=[age, gender]' "
                        "on a dataset with demographics (ML-100K, ML-1M), or drop --user-features to fold in "
                        "--liked/--rated alone\n"), r.stderr
