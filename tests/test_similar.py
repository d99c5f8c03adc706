"""Similar movies and similar users, one cosine top-k (model/factors.py: cosine_topk over a UnitRows, the unit table
made once per Factors): by hand on tables whose nearest rows are known (ties, zero rows, filters, NaN), and the unit
tables made once (counted)."""

import pickle

import numpy as np

import embedrec.model.factors as factors_module
from embedrec.config import RecommendConfig
from embedrec.model.factors import Factors, UnitRows, cosine_topk
from embedrec.models import Model
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
