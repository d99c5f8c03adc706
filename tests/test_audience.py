"""A movie's audience (``Model.audience``, ``recommend --audience``): the users whose own lists score a movie highest,
by hand on a table of two-dimensional vectors (ties in user row order, zero vectors never listed, raters and a
twin's raters left out), each listed score equal to ``predict``'s and the ranking equal to a brute-force sort of
every user's on trained als and explicit runs (with users update-users added), the user filters, the queries'
``missing``, and the CLI mode.
"""

from __future__ import annotations

import csv
import io
import logging
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from embedrec.answers import Request
from embedrec.cli import main
from embedrec.errors import NotFoundError, UsageError
from embedrec.model.factors import Factors
from embedrec.models import Model
from embedrec.results import Audience
from embedrec.serve.recommender import Recommender

# Eight rows in two dimensions; user row u saw movie row u only. Movie row 0's vector is (1, 0), so each user's
# score for it is its x: rows 0 1, 1 2, 2 0, 3 1, 4 -1, 5 a zero vector (never listed), 6 3, 7 1
TABLE = np.array([[1, 0], [2, 0], [0, 1], [1, 1], [-1, 0], [0, 0], [3, 0], [1, -1]], np.float32)


def _model(titles=None, untrained: int | None = None) -> Model:
    """Users and movies with the same vectors: user ids 10, 20, ..., movie ids 1, 2, ...; user u saw movie u.
    ``untrained``: a movie row no training rating named (a plain model's zero vector and bias -1000)."""
    n = TABLE.shape[0]
    movies, bias = TABLE.copy(), None
    if untrained is not None:
        movies[untrained] = 0
        bias = np.zeros(n, np.float32)
        bias[untrained] = -1000
    factors = Factors(TABLE.copy(), movies, None, bias)
    seen = (np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int32))
    rec = Recommender.from_parts(factors, np.arange(1, n + 1) * 10,
                                 {"movie_id": np.arange(1, n + 1), "title": titles or [f"m{i}" for i in range(n)],
                                  "year": [1999] * n, "genres": [["A"]] * n}, seen, np.ones(n))
    return Model(rec)


def test_known_answer_ties_in_row_order_raters_and_zero_vectors_left_out():
    m = _model()
    a = m.audience(1, k=4)
    assert isinstance(a, Audience) and a.query_ids == [1]
    assert a.user_ids[0].tolist() == [70, 20, 40, 80]  # 3, 2, then 1 and 1 in row order; 10 rated movie 1
    assert a.scores[0].tolist() == [3.0, 2.0, 1.0, 1.0] and a.scores[0].dtype == np.float32
    assert m.audience(1, k=4, exclude_seen=False).user_ids[0].tolist() == [70, 20, 10, 40]
    every = m.audience(1, k=50)
    assert every.user_ids[0].tolist() == [70, 20, 40, 80, 30, 50]  # all but the rater and the zero vector
    assert [r["rank"] for r in every.to_rows()] == [1, 2, 3, 4, 5, 6]
    assert list(every.to_rows())[0] == {"movie_id": 1, "rank": 1, "user_id": 70, "score": 3.0}
    frame = every.to_frame()
    assert list(frame.columns) == ["movie_id", "rank", "user_id", "score"] and frame["score"].dtype == np.float32


def test_a_twins_raters_are_left_out_too():
    """Movies 1 and 2 one film under two ids: user 20, who rated movie 2, is as much a rater of movie 1."""
    m = _model(["Same", "Same", *[f"m{i}" for i in range(2, 8)]])
    assert m.audience(1, k=3).user_ids[0].tolist() == [70, 40, 80]
    assert m.audience(1, k=3, exclude_seen=False).user_ids[0].tolist() == [70, 20, 10]


def test_user_filters_a_list_of_movies_and_missing(caplog):
    m = _model()
    assert m.audience(1, k=3, candidates=[20, 30, 50, 999]).user_ids[0].tolist() == [20, 30, 50]
    assert "1 of the 4 user ids " in caplog.text and "names is not a user of this model" in caplog.text
    assert m.audience(1, k=3, exclude=[70, 20]).user_ids[0].tolist() == [40, 80, 30]
    with pytest.raises(UsageError, match="candidates: no user of this model among them"):
        m.audience(1, candidates=[999])
    many = m.audience([1, 3, 1], k=2)  # movie 3 (0, 1): 1 for user 40, then 0 for 10, 20, 50 and 70 (30 rated it)
    assert many.query_ids == [1, 3, 1] and [u.tolist() for u in many.user_ids] == [[70, 20], [40, 10], [70, 20]]
    assert many.user_ids[1].tolist() == m.audience(3, k=2).user_ids[0].tolist()
    with pytest.raises(NotFoundError, match="999"):
        m.audience([1, 999])
    skipped = m.audience([999, 1], k=2, missing="skip")
    assert skipped.query_ids == [1] and skipped.unknown == [999]
    with pytest.raises(UsageError, match="missing='popular'"):
        m.audience(1, missing="popular")
    with pytest.raises(UsageError, match="k"):
        m.audience(1, k=0)
    back = pickle.loads(pickle.dumps(many))
    assert [u.tolist() for u in back.user_ids] == [u.tolist() for u in many.user_ids]
    with pytest.raises(ValueError):
        back.user_ids[0][0] = 1  # read-only, as every result's arrays


def test_a_movie_without_training_ratings_is_refused():
    m = _model(untrained=2)
    assert m.audience(1, k=2).user_ids[0].tolist() == [70, 20]
    with pytest.raises(UsageError, match=r"no training rating names this movie \(3\), so it tells this model nothing "
                                         "about who would like it"):
        m.audience(3)


def _brute(model: Model, movie, k: int, raters: set) -> tuple[list, np.ndarray]:
    """The top k of every user but ``raters`` by ``predict``'s score of (user, movie), equal scores in user row
    order, users without a vector left out."""
    e = model.engine
    users = [u for u, r in zip(model.user_ids.tolist(), range(e.P.shape[0])) if u not in raters
             and np.asarray(e.P[r]).any()]
    scores = np.asarray(model.predict([(u, movie) for u in users]).to_frame()["score"])
    ranked = scores
    if e.explicit:  # (ties at the scale's top ordered by the prediction before the clip, as a user's list's movies)
        from embedrec.serve.audience import _unclipped

        ranked = _unclipped(e.factors, e.users.rows(users)[0], e.movie_row(movie))
    order = np.lexsort((np.arange(len(users)), -ranked))[:k]
    return [users[i] for i in order], scores[order]


def _raters(model: Model, movie) -> set:
    from embedrec.serve.audience import raters

    e = model.engine
    rows = np.r_[e.movie_row(movie), e.catalogue.twins([e.movie_row(movie)])].astype(np.int64)
    return set(np.asarray(model.user_ids)[raters(e, rows)].tolist())


@pytest.fixture(scope="module")
def als_run(tmp_path_factory, synth_dir):
    """An als run of synth_dir, and a copy of it with users re-solved and one added by update-users."""
    import shutil

    import embedrec as er
    from embedrec.config import load_config

    tmp = tmp_path_factory.mktemp("audience")
    cfg = load_config(None, [f"data.prepared={tmp / 'ds'}", f"run.dir={tmp / 'run'}", "model.dim=8",
                             "train.epochs=2", "train.threads=1"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        er.train(er.ingest(str(synth_dir[0]), cfg), cfg).save()
    updated = tmp / "updated"
    shutil.copytree(cfg.run.dir, updated, symlinks=True)
    since = tmp / "since.csv"
    since.write_text("user_id,movie_id,rating\n1,3,5\n1,4,4\n9001,1,5\n9001,2,5\n9001,5,4\n")
    er.update_users(updated, since)
    return cfg.run.dir, updated


@pytest.mark.parametrize("which", ["als", "updated", "explicit"])
def test_each_score_is_predicts_and_the_ranking_a_brute_force_sorts(als_run, trained_run, which):
    import embedrec as er

    run = {"als": als_run[0], "updated": als_run[1], "explicit": trained_run.cfg.run.dir}[which]
    with er.open(run) as m:
        if which == "updated":
            assert 9001 in m.user_ids.tolist()
        for movie in m.movie_ids[[0, 1, 4, 17, 60]].tolist():
            raters = _raters(m, movie)
            assert raters  # (the test would hold without one)
            a = m.audience(movie, k=15)
            users, scores = _brute(m, movie, 15, raters)
            assert a.user_ids[0].tolist() == users, movie
            assert np.array_equal(a.scores[0].astype(np.float64), scores.astype(a.scores[0].dtype).astype(np.float64))
            assert not raters & set(a.user_ids[0].tolist())
            every = m.audience(movie, k=10_000, exclude_seen=False)
            assert len(every.user_ids[0]) == sum(bool(np.asarray(m.engine.P[r]).any()) for r in range(m.n_users))
            if which == "explicit":  # predicted ratings, clipped to the scale, as predict gives them
                assert a.scores[0].dtype == np.float64 and a.scores[0].max() <= m.engine.factors.clip(np.array([9.0]))[0]


def test_a_request_mode_and_the_cli(trained_run, caplog):
    m = trained_run.opened
    movie = int(m.movie_ids[0])
    answer = m.answer(Request(audience=movie, k=3))
    assert list(answer.rows()) == list(m.audience(movie, k=3).to_rows())
    assert answer.columns == ["movie_id", "rank", "user_id", "score"]
    with caplog.at_level(logging.INFO, logger="embedrec"):
        answer = m.answer(Request(audience=movie, k=10_000))
        list(answer.rows())
        answer.log_notes()
    assert "fewer than the 10,000 asked for: that is every user with a vector who has not rated it (its raters are " \
           "left out; " in caplog.text  # (then the CLI's or the library's words for the switch)
    for request, said in ((Request(audience=movie, genres=("Drama",)), "genres does not apply to audience"),
                          (Request(audience=movie, user=1), "user and audience were given"),
                          (Request(audience=movie, diversify=0.5), "diversify")):
        with pytest.raises(UsageError, match=said):
            m.answer(request)
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--audience", str(movie), "-k", "4",
                                  "--format", "csv"])
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [int(x["user_id"]) for x in rows] == m.audience(movie, k=4).user_ids[0].tolist()
    assert [x["movie_id"] for x in rows] == [str(movie)] * 4 and r.stderr == ""
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--audience", str(movie), "--genre", "Drama"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("error: --genre does not apply to --audience, which lists users, not movies (see ")
    assert len(r.stderr.splitlines()) == 1
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--audience", "99999"])
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.startswith("error: movie '99999' is not in the training")


def test_the_users_prior_multipliers_are_made_once_per_opened_model(als_run, monkeypatch):
    """Recommender.user_priors (c_u of the users update-users added), which each audience reads and an export three
    times, is made once per opened model and read-only."""
    import embedrec as er
    from embedrec.serve.recommender_prior import PriorServing

    made = []
    real = PriorServing._made_user_priors
    monkeypatch.setattr(PriorServing, "_made_user_priors", lambda self: made.append(1) or real(self))
    with er.open(als_run[1]) as m:
        first = m.audience(m.movie_ids[0], k=3)
        again = m.audience(m.movie_ids[0], k=3)
        c = m.engine.user_priors()
        assert made == [1] and first.user_ids[0].tolist() == again.user_ids[0].tolist()
        if c is not None:
            assert not c.flags.writeable
        copy = pickle.loads(pickle.dumps(m.engine))
        assert copy.user_priors() is None if c is None else np.array_equal(copy.user_priors(), c)
        assert made == [1]


def test_audiences_of_a_list_of_movies_or_a_file_of_them(trained_run, tmp_path):
    """`--audience @FILE` (a movie a line, @- stdin) and Request(audience=[...]): each movie's audience in the order
    given, one the model does not know left out and said (refused with --strict), as --movies leaves such lines."""
    m = trained_run.opened
    a, b = (int(x) for x in m.movie_ids[:2])
    answer = m.answer(Request(audience=[a, 99999, b], k=3))
    assert answer.result.query_ids == [a, b]
    assert list(answer.rows()) == list(m.audience([a, b], k=3).to_rows())
    with pytest.raises(NotFoundError, match="audience: movie '99999' is not in the training data"):
        m.answer(Request(audience=[a, 99999], k=3, strict=True))
    with pytest.raises(NotFoundError, match="none of its movies is a movie of this model"):
        m.answer(Request(audience=[99998, 99999], k=3))
    f = tmp_path / "movies.txt"
    f.write_text(f"movie_id\n{a}\n99999\n{b}\n")
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--audience", f"@{f}", "-k", "3", "--format", "csv"])
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(int(x["movie_id"]), int(x["user_id"])) for x in rows] == \
        [(q, int(u)) for q, users, _ in m.audience([a, b], k=3) for u in users]
    assert "--audience: 1 of its 3 movies left out (movie '99999' is not in the training data" in r.stderr
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--audience", f"@{f}", "--strict"])
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.startswith("error: --audience: movie '99999'")
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--audience", "@-", "-k", "2", "--format", "tsv"],
                           input=f"{a}\n")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3, r.stderr


def test_exclude_and_candidates_are_user_ids_where_the_list_holds_users(trained_run, tmp_path):
    """A usability review: a campaign's opt-out list and its segment were refused on the command line ('--exclude
    does not apply to --audience'); with --audience and --similar-users, --exclude and --candidates take user ids
    (typed, or @FILE of one a line with a 'user_id' header), as the library's candidates=/exclude= do."""
    m = trained_run.opened
    movie = int(m.movie_ids[0])
    top = m.audience(movie, k=4).user_ids[0].tolist()
    opt_out = tmp_path / "opt-out.txt"
    opt_out.write_text("user_id\n" + "".join(f"{u}\n" for u in top[:2]))

    def users(*args):
        r = CliRunner().invoke(main, ["recommend", *trained_run.sets, *args, "-k", "2", "--format", "csv"])
        assert r.exit_code == 0, r.stderr
        return [int(x["user_id"]) for x in csv.DictReader(io.StringIO(r.stdout))]

    assert users("--audience", str(movie), "--exclude", f"@{opt_out}") == top[2:4]
    assert users("--audience", str(movie), "--exclude", f"{top[0]},{top[1]}") == top[2:4]
    assert users("--audience", str(movie), "--candidates", f"{top[3]},{top[1]}") == [top[1], top[3]]
    query = int(m.user_ids[0])
    near = m.similar_users(query, k=3).user_ids[0].tolist()
    assert users("--similar-users", str(query), "--exclude", str(near[0])) == near[1:3]
    assert m.answer(Request(audience=movie, k=2, exclude=top[:2])).result.user_ids[0].tolist() == top[2:4]
    table = tmp_path / "t.csv"
    table.write_text("user_id,email\n1,a@b\n")
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--audience", str(movie), "--exclude", f"@{table}"])
    assert r.exit_code == 2 and f"{table}:1: 'user_id,email' is a table's line, not one user id" in r.stderr, r.stderr


def test_an_explicit_models_users_tied_at_the_top_of_its_scale_are_ordered_as_a_list_orders_movies():
    """A usability review: on an explicit run 86 users tied at 5.0 for a movie, and -k 50 took the first 50 by row;
    they are ordered by the prediction before the clip, as a user's list orders its movies tied at the top
    (serve.recommender.exact_scores), the scores shown still predict's (clipped)."""
    users = np.array([[2.0], [3.0], [1.0], [0.5]], np.float32)  # rows 0-3: 1 + x*1 -> 3, 4, 2, 1.5 before the clip
    movies = np.array([[1.0], [0.0]], np.float32)
    f = Factors(users, movies, np.zeros(4, np.float32), np.zeros(2, np.float32), global_mean=1.0, explicit=True,
                rating_scale=(1.0, 2.5))
    seen = (np.zeros(5, np.int64), np.zeros(0, np.int32))
    m = Model(Recommender.from_parts(f, np.array([10, 20, 30, 40]), {"movie_id": np.array([1, 2]), "title": ["a", "b"],
                                                                     "year": [None, None], "genres": [[], []]},
                                     seen, np.ones(2)))
    a = m.audience(1, k=3)
    assert a.user_ids[0].tolist() == [20, 10, 30]  # 4 and 3 before the clip (2.5 after it), then 2: not row order
    assert a.scores[0].tolist() == [2.5, 2.5, 2.0]
    assert list(m.predict([(u, 1) for u in (20, 10, 30)]).to_frame()["score"]) == a.scores[0].tolist()


def test_many_movies_raters_come_from_one_pass_and_equal_each_ones(als_run):
    """Several movies' audiences (``--audience @FILE``) find their raters in one pass over the seen pairs
    (raters_each), each the same as its own pass (raters) finds, and each movie's audience the same as asked alone."""
    import embedrec as er
    from embedrec.serve.audience import raters, raters_each

    with er.open(als_run[1]) as m:
        e = m.engine
        queries = [np.array([r]) for r in range(0, 40, 3)] + [np.array([5, 7]), np.zeros(0, np.int64)]
        for q, got in zip(queries, raters_each(e, queries)):
            assert got.tolist() == (raters(e, q).tolist() if q.size else []), q
        movies = m.movie_ids[:8].tolist()
        together = m.audience(movies, k=5)
        for movie, users, scores in together:
            alone = m.audience(movie, k=5)
            assert users.tolist() == alone.user_ids[0].tolist() and scores.tolist() == alone.scores[0].tolist()
