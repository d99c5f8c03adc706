"""Similar movies and similar users, one cosine top-k (model/factors.py: cosine_topk over a UnitRows, the unit table
made once per Factors): by hand on tables whose nearest rows are known (ties, zero rows, filters, NaN), the unit
tables made once (counted), and similar users as a request mode (answers.Request(similar_users=), recommend
--similar-users) in every format, through the library and the CLI (stdout and stderr apart)."""

import csv
import io
import json
import logging
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

import embedrec.model.factors as factors_module
from embedrec.answers import Request
from embedrec.cli import main
from embedrec.config import RecommendConfig
from embedrec.errors import NotFoundError, UsageError
from embedrec.model.factors import Factors, UnitRows, cosine_topk
from embedrec.models import Model
from embedrec.results import SimilarUsers
from embedrec.serve.recommender import Recommender

# Eight rows in two dimensions: 0 (1, 0); 1 (2, 0) and 6 (3, 0), cosine 1 with 0; 2 (0, 1), 0; 3 (1, 1), 1/sqrt(2);
# 4 (-1, 0), -1; 5 a zero vector; 7 (1, -1), 1/sqrt(2) with 0 as 3 is, and 0 with 3
TABLE = np.array([[1, 0], [2, 0], [0, 1], [1, 1], [-1, 0], [0, 0], [3, 0], [1, -1]], np.float32)
R = 2 ** -0.5


def _model(table: np.ndarray = TABLE, rec_cfg: RecommendConfig | None = None) -> Model:
    """Users and movies with the same vectors (``table``): user ids 10, 20, ..., movie ids 1, 2, ...; user u saw
    movie u only."""
    n = table.shape[0]
    factors = Factors(table.copy(), table.copy(), None, None)
    seen = (np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int32))
    rec = Recommender.from_parts(factors, np.arange(1, n + 1) * 10,
                                 {"movie_id": np.arange(1, n + 1), "title": [f"m{i}" for i in range(n)],
                                  "year": [None] * n, "genres": [["A"] if i % 2 else ["B"] for i in range(n)]},
                                 seen, np.ones(n), rec_cfg)
    return Model(rec)


# ------------------------------------------------------------------------------------ cosine_topk, by hand
def test_cosine_topk_known_answer_ties_in_row_order_zero_and_own_rows_never_listed():
    t = UnitRows(TABLE)
    assert t.zero_rows.tolist() == [5]
    np.testing.assert_array_equal(t.unit[1], [1, 0])
    rows, scores = cosine_topk(t, t.unit[0], 10, own=0)
    assert rows.tolist() == [1, 6, 3, 7, 2, 4]  # 1 and 6 tie at 1, 3 and 7 at 1/sqrt(2): row order
    np.testing.assert_allclose(scores, [1, 1, R, R, 0, -1], atol=1e-7)
    assert scores.dtype == np.float32
    rows, _ = cosine_topk(t, t.unit[0], 3, own=0)  # ties straddling the cut keep the first rows
    assert rows.tolist() == [1, 6, 3]
    rows, _ = cosine_topk(t, t.unit[0], 10)  # without own= the query's row is listed (a vector, not a row, asked)
    assert rows.tolist()[:3] == [0, 1, 6]
    outside = np.zeros(8, bool)
    outside[[1, 3]] = True
    rows, _ = cosine_topk(t, t.unit[0], 10, own=0, outside=outside)
    assert rows.tolist() == [6, 7, 2, 4]
    rows, scores = cosine_topk(t, t.unit[5], 10, own=5)  # a zero query: every cosine 0, in row order
    assert rows.tolist() == [0, 1, 2, 3, 4, 6, 7] and not scores.any()


def test_cosine_topk_ranks_a_nan_row_last():
    table = TABLE.copy()
    table[2] = np.nan
    rows, scores = cosine_topk(UnitRows(table), UnitRows(table).unit[0], 10, own=0)
    assert rows.tolist()[-1] == 2 and np.isnan(scores[-1]) and np.isfinite(scores[:-1]).all()


def test_similar_movies_and_similar_users_are_one_ranking():
    """A table served as both users and movies: the same rows and the same scores, bit for bit, zero rows left out of
    both (a movie's zero vector was listed at cosine 0 before the two shared one function)."""
    f = Factors(TABLE.copy(), TABLE.copy(), None, None)
    for row in range(8):
        if row == 5:
            continue
        for k in (1, 3, 10):
            users, movies = f.similar_users(row, k), f.similar(row, k)
            assert users[0].tolist() == movies[0].tolist() and 5 not in users[0]
            assert users[1].tobytes() == movies[1].tobytes()
    # a narrow filter (under half the movies) scores its rows alone: the same scores as the whole table's
    rows, scores = f.similar(0, 10, allowed=np.array([7, 3, 5]))
    whole = dict(zip(*f.similar(0, 10)))
    assert rows.tolist() == [3, 7] and [whole[r] for r in rows.tolist()] == scores.tolist()


def test_a_list_of_users_answers_each_as_alone():
    """Each query one matrix-vector product: a user's list is the same bits asked alone or beside others."""
    rng = np.random.default_rng(3)
    m = _model(rng.normal(size=(60, 16)).astype(np.float32))
    ids = [10, 200, 470, 600]
    many = m.similar_users(ids, k=7)
    for i, u in enumerate(ids):
        one = m.similar_users(u, k=7)
        assert one.user_ids[0].tolist() == many.user_ids[i].tolist()
        assert one.scores[0].tobytes() == many.scores[i].tobytes()


# ------------------------------------------------------------------------------------ the unit tables, made once
def test_the_unit_tables_are_made_once_per_factors(monkeypatch):
    calls = []
    real = factors_module.normalise

    def counted(x):
        calls.append(x.shape)
        return real(x)

    monkeypatch.setattr(factors_module, "normalise", counted)
    m = _model()
    first = m.similar_users(10, k=3)
    assert calls == [(8, 2)]  # the user table, once
    again = m.similar_users([20, 40], k=3)
    assert calls == [(8, 2)]  # not again
    assert first.user_ids[0].tolist() == [20, 70, 40]
    assert again.user_ids[0].tolist() == [10, 70, 40]
    m.similar(1, k=3)
    m.similar(2, k=3)
    assert calls == [(8, 2)] * 2  # the movie table, once
    e = m.engine
    assert e.factors.unit_users is e.factors.unit_users
    e.scale = (1.0, 5.0)  # the factors replaced: their tables made again where asked
    assert m.similar_users(10, k=3).user_ids[0].tolist() == [20, 70, 40]
    assert len(calls) == 3


def test_a_pickle_carries_the_factors_not_their_unit_tables():
    m = _model()
    before = m.similar_users(10, k=5)
    assert "unit_users" in m.engine.factors.__dict__
    copy = pickle.loads(pickle.dumps(m.engine.factors))
    assert "unit_users" not in copy.__dict__ and "unit_users" not in pickle.loads(pickle.dumps(m)).engine.factors.__dict__
    assert copy.similar_users(0, 5)[0].tolist() == [int(u) // 10 - 1 for u in before.user_ids[0]]


# ------------------------------------------------------------------------------------ a request mode
def test_similar_users_is_a_request_mode(caplog):
    m = _model()
    caplog.set_level(logging.INFO, logger="embedrec")
    answer = m.answer(Request(similar_users=10, k=3))
    assert isinstance(answer.result, SimilarUsers) and answer.stream is None
    assert answer.columns == SimilarUsers.columns
    assert list(answer.rows()) == list(m.similar_users(10, k=3).to_rows())
    assert list(answer.rows(because_as_text=True)) == list(answer.rows())
    answer.log_notes()
    assert caplog.records == []  # three listed, three asked: nothing to say
    answer = m.answer(Request(similar_users="10", k=50))
    assert [r["user_id"] for r in answer.rows()] == [20, 70, 40, 80, 30, 50]
    answer.log_notes()
    assert [r.getMessage() for r in caplog.records] == [
        "note: 6 users, fewer than the 50 asked for: that is every other user (users without training ratings have "
        "no vector and are never listed)"]
    stream = m.answer(Request(users=[10, 20]))
    for asked in (lambda: stream.columns, stream.rows):  # a stream's rows are write_stream's
        with pytest.raises(UsageError, match="this answer is a stream"):
            asked()
    # k: recommend.k where the request gives none
    assert len(list(_model(rec_cfg=RecommendConfig(k=2)).answer(Request(similar_users=10)).rows())) == 2


@pytest.mark.parametrize("request_, error, said", [
    (Request(similar_users=10, user=10), UsageError, "give exactly one of user, users, movie, movies, similar_users, "
                                                     "audience, liked/rated (with user: that user's ratings since training), or "
                                                     "user_features (with liked/rated: a new user told both); "
                                                     "user and similar_users were given"),
    (Request(similar_users=10, genres=("A",)), UsageError, "genres does not apply to similar_users, which lists "
                                                           "users, not movies"),
    (Request(similar_users=10, year_max=1990), UsageError, "year_min/year_max does not apply to similar_users"),
    (Request(similar_users=[10, 20]), UsageError, "similar_users=[10, 20]: similar_users= takes one id; for many "
                                                  "give them to Model.similar_users([...])"),
    (Request(similar_users=10, explain=2), UsageError, "explain does not apply to similar_users; it is for user, "
                                                       "users, liked and rated"),
    (Request(similar_users=10, k=0), UsageError, "k"),
    (Request(similar_users=999), NotFoundError, "user '999' is not in the training data"),
    (Request(similar_users=60), NotFoundError, "has no trained vector"),
])
def test_a_similar_users_request_refuses_what_does_not_apply(request_, error, said):
    with pytest.raises(error) as got:
        _model().answer(request_)
    assert said in str(got.value)



# ------------------------------------------------------------------------------------ missing=, as recommend's
def test_similar_and_similar_users_take_missing_as_recommend_does():
    """An architecture review: m.similar([1, 999999]) failed the whole batch, with no policy to ask for. Both take
    missing=: 'error' (the default, as before) raises NotFoundError naming the id; 'skip' leaves the unknown
    queries out and lists them in the result's unknown, as recommend's missing='skip' does."""
    m = _model()
    with pytest.raises(NotFoundError, match="999999"):
        m.similar([1, 999999], k=2)
    with pytest.raises(NotFoundError, match="no movie title matches"):  # words no title holds: unknown too
        m.similar(["m1", "no such title"], k=2)
    both = m.similar([1, 999999, "no such title", 2], k=2, missing="skip")
    assert both.query_ids == [1, 2] and both.unknown == [999999, "no such title"]
    assert [a.tolist() for a in both.movie_ids] == [[2, 7], [1, 7]]
    assert [a.tolist() for a in both.movie_ids] == [a.tolist() for a in m.similar([1, 2], k=2).movie_ids]
    assert repr(both).startswith("<Recommendations: 2 queries x top-2, 2 unknown>")
    none = m.similar(999999, missing="skip")
    assert len(none) == 0 and none.unknown == [999999] and list(none.to_rows()) == []
    with pytest.raises(NotFoundError, match="999"):
        m.similar_users([10, 999], k=2)
    with pytest.raises(NotFoundError, match="no trained vector"):  # user 60: a zero vector
        m.similar_users(60, k=2)
    s = m.similar_users([999, 10, 60, 20], k=2, missing="skip")
    assert s.query_ids == [10, 20] and s.unknown == [999, 60]
    assert [u.tolist() for u in s.user_ids] == [[20, 70], [10, 70]]
    assert repr(s).startswith("<SimilarUsers: 2 queries x top-2, 2 unknown>")
    assert pickle.loads(pickle.dumps(s)).unknown == [999, 60] and m.similar_users(10, k=2).unknown == []
    with pytest.raises(TypeError):
        s.unknown.append(1)  # read-only, as every result's lists


@pytest.mark.parametrize("call", ["similar", "similar_users"])
def test_similar_refuses_missing_popular_and_other_values(call):
    m = _model()
    ask = getattr(m, call)
    with pytest.raises(UsageError, match=f"{call}: missing='popular' gives an unknown user the most popular movies "
                                         "\\(recommend\\); an unknown query"):
        ask(10 if call == "similar_users" else 1, missing="popular")
    for bad in ("fallback", None, True, ["skip"]):
        with pytest.raises(UsageError, match="missing=.*expected one of 'error', 'skip'"):
            ask(10 if call == "similar_users" else 1, missing=bad)


def test_query_ids_are_the_queries_and_user_ids_only_users():
    """An architecture review: similar(1).user_ids was [1], a movie id. query_ids are the queries whatever they are;
    user_ids is theirs where they are users, and a UsageError (an AttributeError too) for movie queries."""
    m = _model()
    top = m.recommend([10, 20], k=2)
    assert top.query_ids == top.user_ids == [10, 20]
    assert m.recommend_new(liked=[1], k=2).user_ids == [None] and m.popular(k=2).user_ids == [None]
    sim = m.similar([1, 2], k=2)
    assert sim.query_ids == [1, 2]
    with pytest.raises(UsageError, match=r"user_ids: this result's queries are movies \(movie_id_query: "
                                         r"similar\(\)'s\), not users; read query_ids"):
        _ = sim.user_ids
    assert not hasattr(sim, "user_ids") and getattr(sim[:1], "user_ids", None) is None


def test_the_cli_similar_users_error_names_no_library_keyword():
    """The NotFoundError says missing='skip' to a notebook, nothing of it to the command line (--similar-users takes
    one id)."""
    with pytest.raises(NotFoundError) as got:
        _model().similar_users(999)
    assert "missing='skip'" in str(got.value) and "missing" not in got.value.cli_message()


# ------------------------------------------------------------------------------------ the CLI
def _cli(*args):
    return CliRunner().invoke(main, ["recommend", *map(str, args)], prog_name="embedrec")


def test_recommend_similar_users_every_format(trained_run):
    run = ["--run", trained_run.cfg.run.dir]
    want = list(trained_run.opened.similar_users(7, k=4).to_rows())
    assert len(want) == 4
    for fmt in ("json", "jsonl", "csv", "tsv", "table"):
        r = _cli(*run, "--similar-users", "7", "-k", "4", "--format", fmt)
        assert r.exit_code == 0 and r.stderr == "", (fmt, r.stderr)
        if fmt == "json":
            assert json.loads(r.stdout) == want
        elif fmt == "jsonl":
            assert [json.loads(line) for line in r.stdout.splitlines()] == want
        elif fmt in ("csv", "tsv"):
            got = list(csv.reader(io.StringIO(r.stdout), delimiter="," if fmt == "csv" else "\t"))
            assert got[0] == SimilarUsers.columns and len(got) == 5
            assert [[int(x[0]), int(x[1]), int(x[2]), int(x[4]), int(x[5])] for x in got[1:]] == \
                [[w["user_id_query"], w["rank"], w["user_id"], w["both_rated"], w["rated"]] for w in want]
            np.testing.assert_allclose([float(x[3]) for x in got[1:]], [w["score"] for w in want], atol=5e-7)
        else:
            lines = r.stdout.splitlines()
            assert lines[0].split() == SimilarUsers.columns and len(lines) == 5
            assert [int(line.split()[2]) for line in lines[1:]] == [w["user_id"] for w in want]
    r = _cli(*run, "--similar-users", "7", "-k", "2", "--format", "csv", "--no-header")
    assert r.exit_code == 0 and r.stdout.startswith("7,1,") and len(r.stdout.splitlines()) == 2
    r = _cli(*run, "--similar-users", "7")  # -k from recommend.k
    assert len(r.stdout.splitlines()) == 1 + trained_run.cfg.recommend.k


def test_recommend_similar_users_says_a_short_list_after_it(trained_run):
    r = _cli("--run", trained_run.cfg.run.dir, "--similar-users", "7", "-k", "5000", "--format", "jsonl")
    n = len(r.stdout.splitlines())
    assert r.exit_code == 0 and 0 < n < 5000
    assert r.stderr == f"note: {n} users, fewer than the 5,000 asked for: that is every other user (users without " \
        "training ratings have no vector and are never listed)\n"


@pytest.mark.parametrize("args,code,said", [
    (["--similar-users", "999999"], 1, "user '999999' is not in the training data"),
    (["--similar-users", "7", "--genre", "Comedy"], 2,
     "--genre does not apply to --similar-users, which lists users, not movies (see 'embedrec recommend -h')"),
    (["--similar-users", "7", "--year-min", "1990"], 2, "--year-min/--year-max does not apply to --similar-users"),
    (["--similar-users", "7", "--include-seen"], 2, "--include-seen does not apply to --similar-users"),
    (["--similar-users", "7", "--explain"], 2, "--explain does not apply to --similar-users"),
    (["--similar-users", "7", "--strict"], 2, "--strict does not apply to --similar-users"),
    (["--similar-users", "7", "--fallback", "popular"], 2, "--fallback does not apply to --similar-users"),
    (["--similar-users", "7", "--movie", "7"], 2, "give exactly one of"),
    (["--similar-users", " "], 2, "--similar-users is empty; give a value, e.g. --similar-users 196"),
    (["--similar-users", "7", "-k", "0"], 2, "0 is not in the range x>=1"),
    (["--similar-users", "7", "--format", "json", "--no-header"], 2, "--no-header applies to --format csv and tsv"),
])
def test_recommend_similar_users_errors_are_one_line(trained_run, args, code, said):
    r = _cli("--run", trained_run.cfg.run.dir, *args)
    assert r.exit_code == code and r.stdout == "" and said in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_movie_filters_with_similar_users_are_refused_before_the_run_is_read(tmp_path):
    r = _cli("--run", tmp_path / "no-run", "--similar-users", "7", "--genre", "Comedy")
    assert r.exit_code == 2 and "--genre does not apply to --similar-users" in r.stderr


# ------------------------------------------------------------------------- one film under two ids, few ratings
def _twins_model(popularity, loss: str = "als", year: int | None = 1999) -> Model:
    """TABLE's eight rows, rows 1 and 6 one film ('Twin (1999)', movie ids 2 and 7: cosine 1 to each other); an
    als model unless ``loss`` says another."""
    n = TABLE.shape[0]
    titles = [f"m{i}" for i in range(n)]
    titles[1] = titles[6] = "Twin"
    years = [None] * n
    years[1] = years[6] = year
    seen = (np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int32))
    rec = Recommender.from_parts(Factors(TABLE.copy(), TABLE.copy(), None, None), np.arange(1, n + 1) * 10,
                                 {"movie_id": np.arange(1, n + 1), "title": titles, "year": years,
                                  "genres": [["A"]] * n}, seen, np.asarray(popularity, np.float64), loss=loss)
    return Model(rec)


def test_a_film_under_two_ids_is_never_like_itself_nor_listed_to_one_who_liked_it(caplog):
    """A review (ML-100K's 17 films under two ids): --movie 246 listed 268, the same 'Chasing Amy (1997)', first, and
    --liked 246 listed it too. Catalogue.twins: the other rows of a film by title and year; similar leaves them out
    (said in a note), and a new user's list, as it leaves out the movies told."""
    m = _twins_model(np.full(8, 50))
    assert m.engine.catalogue.twins([1]).tolist() == [6] and m.engine.catalogue.twins([0, 3]).tolist() == []
    assert m.engine.catalogue.twins([1, 6]).tolist() == []  # both given: neither is another's
    # a few movies scan the titles (a fresh --movie on 500,000 titles: 0.03 s, not 0.4 s to group them all); more
    # group every film once: the same answers
    from embedrec.serve.catalogue import TWIN_SCAN_MAX

    assert m.engine.catalogue._twin_rows is None  # (not grouped yet: the scan answered)
    assert m.engine.catalogue.twins(list(range(TWIN_SCAN_MAX + 1))).tolist() == [6]  # 1 among them, grouped
    assert m.engine.catalogue._twin_rows is not None and m.engine.catalogue.twins([6]).tolist() == [1]
    from embedrec.serve.catalogue import (
        TWIN_SCANS,  # a model kept open: past a few scans, grouped once (a review:
    )
    # every similar() of a server's model scanned 500,000 titles, 13-29 ms)

    kept = _twins_model(np.full(8, 50)).engine.catalogue
    for _ in range(TWIN_SCANS):
        assert kept.twins([1]).tolist() == [6] and kept._twin_rows is None
    assert kept.twins([1]).tolist() == [6] and kept._twin_rows is not None
    with caplog.at_level(logging.INFO, logger="embedrec"):
        got = m.similar(2, 3).movie_ids[0]
    assert list(got) == [1, 4, 8]  # row 0 (cosine 1), then rows 3 and 7 (1/sqrt(2)); not movie 7
    assert "note: 7 left out of the movies like 2: the same film ('Twin (1999)') under another id" in caplog.text
    assert list(m.similar(1, 2).movie_ids[0]) == [2, 7]  # a film once: both ids listed, each its own movie
    assert 7 not in list(m.recommend_new([2], k=8).movie_ids[0])
    assert 7 in list(m.recommend_new([2], k=8, exclude_seen=False).movie_ids[0])
    # a title without a year is no film's twin: two 'Hamlet's of a user's own file may be two films (a diff review)
    assert _twins_model(np.full(8, 50), year=None).engine.catalogue.twins([1]).tolist() == []


def test_a_known_users_lists_leave_out_the_other_ids_of_the_films_it_rated():
    """A known user's list listed another id of a film the user rated (ML-100K: 9 of the 9,430 top-10 slots, e.g.
    268 'Chasing Amy (1997)' to users who rated 246). User 20 (row 1) rated movie 2, whose twin is 7: no list of
    theirs holds 7, one user or a batch (the batch search's path, past LEAN_MAX users), unless include_seen; a user
    without a twin's film is offered it; the docs say it (docs/commands.md)."""
    from embedrec.serve.recommender import LEAN_MAX

    m = _twins_model(np.full(8, 50))
    assert 7 not in list(m.recommend(20, k=7).movie_ids[0])  # (7 of the 8 movies: every other one listed)
    assert 7 in list(m.recommend(20, k=7, exclude_seen=False).movie_ids[0])
    assert 7 in list(m.recommend(10, k=7).movie_ids[0])  # user 10 rated movie 1, no twin's
    assert 2 not in list(m.recommend(70, k=7).movie_ids[0])  # user 70 rated 7: its twin 2 not listed either
    rows = np.tile(np.arange(8), LEAN_MAX // 8 + 1)  # a batch: exclusions gathered as pairs, twins' pairs added
    ids, _ = m.engine.recommend_rows(rows, 7)
    for r, got in zip(rows.tolist(), ids):
        own = {1: 6, 6: 1}.get(r)
        assert r not in got.tolist() and (own is None or own not in got.tolist()), (r, got)
    ids, _ = m.engine.recommend_rows(rows, 8, include_seen=True)
    assert all(len(got) == 8 for got in ids)
    assert m.engine.excluded(1).tolist() == [1, 6] and m.engine.excluded(0).tolist() == [0]


def test_a_runs_catalogue_holds_its_films_under_several_ids_and_a_false_group_is_refused(tmp_path):
    """run.twin_groups, by hand: rows of one title and year, a title without a year no film's twin. movies.json
    holds them ('twins', written by artifacts.write_catalogue: a fresh recommend on 500,000 titles need not group
    them, 0.7 s); check_catalogue refuses a group that is not one film (it would hide a film from everyone who rated
    the other), a row out of range, a row in two groups; a run from before (no 'twins') is read as before."""
    from embedrec.errors import ArtifactError
    from embedrec.run import check_catalogue, twin_groups
    from embedrec.serve.catalogue import Catalogue

    titles = ["A", "B", "A", "C", "B", "A", "C"]
    years = [1990, 1991, 1990, None, 1991, 1990, None]
    assert twin_groups(titles, years) == [[0, 2, 5], [1, 4]]
    movies = {"title": titles, "year": years, "genres": [[]] * 7, "twins": [[0, 2, 5], [1, 4]]}
    assert check_catalogue(tmp_path, movies, 7) is movies
    for bad in ([[0, 1]], [[3, 6]], [[0, 9]], [[0]], [[0, 2], [2, 5]], [[0, 0]], [["0", 2]], {"0": 2}):
        with pytest.raises(ArtifactError, match="which are not rows of one title and year"):
            check_catalogue(tmp_path, {**movies, "twins": bad}, 7)
    c = Catalogue(np.arange(2), np.arange(7), titles, years, [[]] * 7, movies["twins"])
    assert c.twins([0]).tolist() == [2, 5] and c._twin_rows is not None  # (given: nothing scanned or grouped)
    users, got = c.with_twins(np.array([0, 1, 1]), np.array([2, 3, 4]))
    assert sorted(zip(users.tolist(), got.tolist())) == [(0, 0), (0, 2), (0, 5), (1, 1), (1, 3), (1, 4)]
    # grouped by user as given: an approximate index's search slices each user's exclusions by their counts (a diff
    # review: the twins' pairs appended last gave every later user another's, 7,131 of ML-100K's 9,430 slots rated)
    assert users.tolist() == [0, 0, 0, 1, 1, 1]
    in_memory = Catalogue(np.arange(2), np.arange(7), titles, years, [[]] * 7)  # from_parts': found on first use
    assert in_memory.with_twins(np.array([0]), np.array([5]))[1].tolist() == [5, 0, 2]
    in_memory.twins_known = False  # a run trained before movies.json held them: listed as then (a diff review: each
    assert in_memory.with_twins(np.array([0]), np.array([5]))[1].tolist() == [5]  # fresh recommend grouped them)


def test_a_rated_files_id_beside_its_title_picks_that_movie_where_the_run_gives_it_that_title():
    """An own-data review: a file of 'movie_id,title,count' naming one of two SKUs of one title was taken as the
    more rated; a diff review: MovieLens' 'movieId' beside its title was read as the run's ids (the wrong films). The
    title is read; the row's id picks the run's movie of that id where that movie has this title, else the title
    alone decides (models_lookup._own_id_row)."""
    import pandas as pd

    from embedrec.models_lookup import _own_id_row

    m = _twins_model(np.full(8, 50))
    e = m.engine
    assert _own_id_row(e, "Twin (1999)", 7) == 6 and _own_id_row(e, "twin", 2) == 1  # ids 2 and 7: rows 1 and 6
    assert _own_id_row(e, "Twin (1999)", 5) == -1  # id 5 is m4: the title decides
    assert _own_id_row(e, "Twin (1999)", 99) == -1 and _own_id_row(e, "Twin (1999)", None) == -1
    from embedrec.models_lookup import resolve_detail

    assert resolve_detail(m, ["Twin (1999)"])[0] == [2]  # the title alone: the first of the two (equal ratings)
    assert resolve_detail(m, ["Twin (1999)"], row_ids={"Twin (1999)": 7})[0] == [7]
    assert resolve_detail(m, ["Twin (1999)"], row_ids={"Twin (1999)": 5})[0] == [2]  # another's id: the title
    got = m.recommend_new(rated=pd.DataFrame({"movie_id": [7], "title": ["Twin"], "year": [1999], "rating": [5]}),
                          k=8)  # (through a file's columns: read, then resolved so)
    assert 7 not in list(got.movie_ids[0]) and 2 not in list(got.movie_ids[0]) and list(got.unknown) == []


def test_a_movie_asked_again_is_answered_from_its_first_list():
    """A red team: 100,000 lines of one movie took 18 s, each searched again. A movie asked again in one call gets
    the same list, searched once (10.6 s to 4.3 s for those lines on ML-100K)."""
    m = _twins_model(np.full(8, 50))
    calls = []
    real = m.engine.similar
    m.engine.similar = lambda row, k, allowed=None: calls.append(row) or real(row, k, allowed)
    got = m.similar([1, 3, 1, "1"], 3)
    assert calls == [0, 2]  # rows of movies 1 and 3, once each
    first, third = list(got.movie_ids[0]), list(got.movie_ids[1])
    assert [list(x) for x in got.movie_ids] == [first, third, first, first]
    assert list(got.scores[2]) == list(got.scores[3]) == list(got.scores[0])


def test_similar_movies_of_a_movie_of_one_or_two_training_ratings_say_so(caplog):
    """A review: Homage (1 training rating) listed six movies each at cosine 1.0000, the other movies of its one
    rater, without a word. A note says so for a movie of at most FEW_RATINGS training ratings."""
    from embedrec.serve.recommender import FEW_RATINGS

    pop = np.full(8, 50)
    pop[[0, 3]] = [1, FEW_RATINGS]
    m = _twins_model(pop)
    for movie, said in ((1, "has 1 training rating: its vector is its one rater's solve, so the movies most like it "
                            "are those that user also rated"),
                        (4, f"has {FEW_RATINGS} training ratings: its vector is its raters' solve, so the movies most "
                            "like it are those they also rated"),
                        (3, None)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="embedrec"):
            m.similar(movie, 2)
        assert (said in caplog.text) if said else "training rating" not in caplog.text, (movie, caplog.text)
    for loss in ("bpr", "softmax"):  # an als model's vector of a movie is its raters' solve; not these (a review)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="embedrec"):
            _twins_model(pop, loss=loss).similar(1, 2)
        assert "training rating" not in caplog.text, (loss, caplog.text)
    pop[0] = 0  # no training rating: no such note (a features model's vector comes from its features)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        _twins_model(pop).similar(1, 2)
    assert "training rating" not in caplog.text, caplog.text


def test_recommend_movies_answers_many_movies_as_movie_answers_each(trained_run, tmp_path):
    """A pipeline review: a similar-movies table for every movie was one process a movie (--movie takes one).
    --movies FILE|- answers each line's movie (an id or title words) as --movie does, in one process: the same rows;
    a header, blank lines and '#' comments skipped; an unknown movie left out with a warning, refused under
    --strict; Model.answer(Request(movies=[...])) the same."""
    from embedrec.answers import Request

    ids = [str(m) for m in trained_run.opened.movie_ids[:3]]
    each = "".join(CliRunner().invoke(main, ["recommend", "--movie", m, "-k", "3", "--format", "csv", "--no-header",
                                             *trained_run.sets]).stdout for m in ids)
    f = tmp_path / "m.txt"
    f.write_text("movie_id\n" + "\n".join([ids[0], "# a comment", "", ids[1], "nosuchmovie99", ids[2]]) + "\n")
    r = CliRunner().invoke(main, ["recommend", "--movies", str(f), "-k", "3", "--format", "csv", "--no-header",
                                  *trained_run.sets])
    assert r.exit_code == 0 and r.stdout == each, r.stderr
    assert f"{f}: 1 of its 4 movies left out ({f}:6: " in r.stderr, r.stderr  # its line named
    assert "«" not in r.stderr and "predicts ratings" not in r.stderr, r.stderr  # (cosine lists: not that note)
    # none answered: exit 1, as --users; a table's line refused naming it; an ambiguous or unknown line under
    # --strict names its line (a first-hour review: exit 0 with a header, a table's header read as a title)
    none = CliRunner().invoke(main, ["recommend", "--movies", "-", *trained_run.sets], input="nosuch1\nnosuch2\n")
    assert none.exit_code == 1 and none.stdout == "" and "no movie answered" in none.stderr, none.stderr
    table = CliRunner().invoke(main, ["recommend", "--movies", "-", *trained_run.sets], input="movie_id,title\n1,x\n")
    assert table.exit_code == 2 and "<stdin>:1: 'movie_id,title' is a table's line" in table.stderr, table.stderr
    for given, said in (("1,5\n2\n", "<stdin>:1: '1,5' is a table's line"),  # a review: an (id, rating) row
                        ("1\r2\r", "<stdin>:1: the line holds a carriage return")):  # read as '8 1/2''s words
        bad = CliRunner().invoke(main, ["recommend", "--movies", "-", *trained_run.sets], input=given)
        assert bad.exit_code == 2 and said in bad.stderr and bad.stdout == "", bad.stderr
    piped = CliRunner().invoke(main, ["recommend", "--movies", "-", "-k", "3", "--format", "csv", "--no-header",
                                      *trained_run.sets], input="\n".join(ids) + "\n")
    assert piped.exit_code == 0 and piped.stdout == each, piped.stderr
    strict = CliRunner().invoke(main, ["recommend", "--movies", str(f), "--strict", *trained_run.sets])
    assert strict.exit_code == 1 and strict.stdout == "" and f"error: {f}:6: " in strict.stderr, strict.stderr
    want = [[int(x.split(",")[2]) for x in each.splitlines()[3 * i:3 * i + 3]] for i in range(3)]
    for given in (ids, f):  # a list, a pathlib.Path
        got = trained_run.opened.answer(Request(movies=given, k=3)).result
        assert [list(m) for m in got.movie_ids] == want
    with pytest.raises(UsageError, match="movies=50: give a list of movie ids or titles"):
        trained_run.opened.answer(Request(movies=50))
    import pandas as pd

    with pytest.raises(UsageError, match="not a DataFrame"):  # (its iteration gives its column names: a review)
        trained_run.opened.answer(Request(movies=pd.DataFrame({"movie_id": [1, 2]})))
    with pytest.raises(UsageError, match="cannot be read as UTF-8 text"):
        trained_run.opened.answer(Request(movies=tmp_path / "missing.txt"))


def test_recommend_movies_answers_each_batch_as_its_lines_come(trained_run, tmp_path):
    """A red team: `recommend --movies` held every answer until its input ended (1M lines: 1.07 GB). It answers a
    batch at a time (recommend.batch_size, a batch ending where the input pauses, as --users): a line's rows come
    while the next lines are still to be written, the rows are those of the whole input at once, and what it says
    of the lines (left out, the notes) is said once, after them."""
    import os
    import select
    import subprocess
    import sys

    from .conftest import repo_pythonpath

    ids = [str(m) for m in trained_run.opened.movie_ids[:7]]
    whole = CliRunner().invoke(main, ["recommend", "--movies", "-", "-k", "2", "--format", "csv", *trained_run.sets],
                               input="\n".join([*ids, "nosuch99", *ids[:2]]) + "\n")
    small = CliRunner().invoke(main, ["recommend", "--movies", "-", "-k", "2", "--format", "csv", *trained_run.sets,
                                      "--set", "recommend.batch_size=2"],
                               input="\n".join([*ids, "nosuch99", *ids[:2]]) + "\n")
    assert small.exit_code == whole.exit_code == 0 and small.stdout == whole.stdout, small.stderr
    assert small.stdout.count("movie_id_query") == 1 and len(small.stdout.splitlines()) == 1 + 9 * 2
    assert small.stderr.count("1 of its 10 movies left out") == 1, small.stderr
    for extra, note in ((["--candidates", ids[0]], "is the movie asked about, so the list is empty"),
                        (["-k", "100000"], "fewer than the 100,000 asked for")):  # (a diff review: lost in a stream)
        r = CliRunner().invoke(main, ["recommend", "--movies", "-", *extra, *trained_run.sets], input=ids[0] + "\n")
        assert r.exit_code == 0 and note in r.stderr, r.stderr
    env = {**os.environ, "PYTHONPATH": repo_pythonpath()}
    p = subprocess.Popen([sys.executable, "-m", "embedrec", "recommend", "--movies", "-", "-k", "2", "--format",
                          "csv", "--no-header", *trained_run.sets], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        p.stdin.write(ids[0] + "\n")
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 120)
        assert ready, "no row before the input ended"
        assert p.stdout.readline().startswith(f"{ids[0]},1,")  # its list, the input still open
        p.stdin.write(ids[1] + "\n")
        p.stdin.close()
        rest = p.stdout.read()
        assert p.wait(60) == 0 and rest.splitlines()[1].startswith(f"{ids[1]},1,"), p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()


def test_a_batch_of_movies_says_each_kind_of_note_once(caplog):
    """A first-hour review: `seq 1 1682 | recommend --movies -` printed 252 note lines (one a movie of few ratings,
    one a twin): a batch counts them (serve.recommender.SIMILAR_NOTES, a context's own) and says each kind once."""
    from embedrec.answers import Request

    pop = np.full(8, 50)
    pop[[0, 3]] = 1
    m = _twins_model(pop)
    with caplog.at_level(logging.INFO, logger="embedrec"):
        m.answer(Request(movies=[2, 7, 1, 4, 3], k=2))
    text = caplog.text
    assert "note: 2 of the movies asked (2, 7) are films the catalogue lists under another id too" in text, text
    assert "note: 2 of the movies asked (1, 4) have at most 2 training ratings" in text, text
    assert "left out of the movies like" not in text and "has 1 training rating" not in text, text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        m.similar(2, 2)  # one movie, outside a batch: its own note, as before
    assert "note: 7 left out of the movies like 2" in caplog.text


# ------------------------------------------------------------------------------------ similar users' filters
def test_similar_users_candidates_and_exclude_by_hand(caplog):
    """implicit's users= and filter_users=: user 10 (row 0, (1, 0)) is most like 20 and 70 (cosine 1), then 40
    and 80 (1/sqrt 2), 30 (0), 50 (-1); 60's zero vector never listed."""
    m = _model()
    assert m.similar_users(10, k=10).user_ids[0].tolist() == [20, 70, 40, 80, 30, 50]
    assert m.similar_users(10, k=3, exclude=[20, 40]).user_ids[0].tolist() == [70, 80, 30]
    got = m.similar_users(10, k=3, candidates=[80, 50, 30, 60])  # a narrow filter: its rows scored alone
    assert got.user_ids[0].tolist() == [80, 30, 50]
    assert got.scores[0].tolist() == pytest.approx([R, 0.0, -1.0])
    assert m.similar_users(10, k=5, candidates=[80, 50, 30, 20, 70], exclude=[70]).user_ids[0].tolist() == \
        [20, 80, 30, 50]
    with caplog.at_level(logging.WARNING, "embedrec"):
        assert m.similar_users(10, k=2, exclude=[20, 999]).user_ids[0].tolist() == [70, 40]
    assert "1 of the 2 user ids " in caplog.text and "names is not a user of this model" in caplog.text


def test_similar_users_filters_refused_where_they_cannot_apply():
    m = _model()
    with pytest.raises(UsageError, match="candidates: no user of this model among them"):
        m.similar_users(10, candidates=[999])
    with pytest.raises(UsageError, match=r"exclude=\{20: 30\}: give a list of user ids"):
        m.similar_users(10, exclude={20: 30})
    with pytest.raises(UsageError, match="candidates: "):
        m.similar_users(10, candidates=[None])
