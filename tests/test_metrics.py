import numpy as np
import pytest

from embedrec import metrics as M


def test_literal_hit_matrix():
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
    n_rel = np.array([2, 3, 1])
    np.testing.assert_allclose(M.precision_at_k(hits, n_rel, 4), [0.5, 0.25, 0.0])
    np.testing.assert_allclose(M.recall_at_k(hits, n_rel, 4), [1.0, 1 / 3, 0.0])
    np.testing.assert_allclose(M.hitrate_at_k(hits, n_rel, 4), [1, 1, 0])
    np.testing.assert_allclose(M.mrr_at_k(hits, n_rel, 4), [1.0, 0.25, 0.0])
    # user 0: DCG = 1 + 1/log2(4) = 1.5; IDCG over min(2,4)=2 hits = 1 + 1/log2(3)
    # user 1: DCG = 1/log2(5); IDCG over 3 hits = 1 + 1/log2(3) + 1/2
    np.testing.assert_allclose(M.ndcg_at_k(hits, n_rel, 4),
                               [1.5 / (1 + 1 / np.log2(3)), (1 / np.log2(5)) / (1.5 + 1 / np.log2(3)), 0.0])
    # MAP@4 user 0: (1/1 + 2/3) / 2 ; user 1: (1/4) / 3
    np.testing.assert_allclose(M.map_at_k(hits, n_rel, 4), [(1 + 2 / 3) / 2, 0.25 / 3, 0.0])
    np.testing.assert_allclose(M.precision_at_k(hits, n_rel, 2), [0.5, 0.0, 0.0])


def test_rating_metrics_and_coverage():
    assert M.rmse(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(np.sqrt(2.5))
    assert M.mae(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(1.5)
    top = np.array([[0, 1, 2], [1, 2, -1]])
    assert M.coverage_at_k(top, 10, 2) == pytest.approx(0.3)
    assert M.coverage_at_k(top, 10, 1) == pytest.approx(0.2)
    shown = np.zeros(10, dtype=bool)  # users in batches, as evaluate marks them: the same share
    for batch in (top[:1], top[1:]):
        M.mark_shown(shown, batch, 2)
    assert M.coverage(shown) == pytest.approx(0.3) and M.coverage(np.zeros(0, dtype=bool)) == 0.0


def test_hit_matrix_from_csr():
    top = np.array([[3, 1, 2], [0, 5, -1]])
    indptr, indices = np.array([0, 2, 3]), np.array([1, 2, 5])
    np.testing.assert_array_equal(M.hit_matrix(top, indptr, indices), [[0, 1, 1], [0, 1, 0]])


def test_parse_metric():
    assert M.parse_metric("NDCG@10") == ("ndcg", 10)
    assert M.parse_metric("rmse") == ("rmse", None)
    for bad in ("ndcg", "rmse@3", "foo@1"):
        with pytest.raises(ValueError):
            M.parse_metric(bad)


def test_behind_baselines_names_the_split_the_metric_and_the_better_baseline():
    from embedrec.evaluate import behind_baselines

    ranking = {"splits": {"test": {"model": {"ndcg@20": 0.5, "ndcg@10": 0.1}, "most_popular": {"ndcg@10": 0.12}},
                          "valid": {"model": {"ndcg@10": 0.2}, "most_popular": {"ndcg@10": 0.12}}}}
    assert behind_baselines(ranking) == ["on the test split the model's ndcg@10 (0.1000) is no better than "
                                         "most_popular's (0.1200): its lists are no better than the most popular "
                                         "movies here"]
    rating = {"splits": {"test": {"model": {"rmse": 1.0, "ndcg@10": 0.01}, "global_mean": {"rmse": 0.99},
                                  "biases": {"rmse": 1.2}, "most_popular": {"ndcg@10": 0.3}}}}
    assert behind_baselines(rating) == ["on the test split the model's RMSE (1.0000) is no better than "
                                        "the global mean's (0.9900): its predictions are no better than that average "
                                        "here",
                                        "on the test split the model's ndcg@10 (0.0100) is no better than "
                                        "most_popular's (0.3000): its lists are no better than the most popular movies "
                                        "here; this rating model (model.objective: explicit) is fit to predict "
                                        "ratings: for top-K lists train the default ranking model"]
    rating["splits"]["test"]["model"].update({"rmse": 0.98, "ndcg@10": 0.31})
    assert behind_baselines(rating) == [] and behind_baselines({}) == [] and behind_baselines({"splits": {}}) == []
