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


# ------------------------------------------------------------------ beyond accuracy, against hand-computed values
POP = np.array([6, 3, 1, 0, 0])  # training counts of 5 items (10 interactions), by 8 training users
TOP = np.array([[0, 2, -1], [1, 3, 4], [-1, -1, -1]])  # user 2's list is empty


def test_long_tail_is_outside_the_items_holding_80_percent_with_ties_kept_together():
    # 6 + 3 = 9 >= 8 of 10: the head is items 0 and 1
    np.testing.assert_array_equal(M.long_tail(POP), [False, False, True, True, True])
    np.testing.assert_array_equal(M.long_tail(np.array([4, 4, 1, 1])), [False, False, True, True])
    # 4 + 3 = 7 < 8: the head takes a 3, and the other 3 tied with it
    np.testing.assert_array_equal(M.long_tail(np.array([3, 0, 4, 3])), [False, True, False, False])
    np.testing.assert_array_equal(M.long_tail(np.array([5, 5, 5, 5])), [False] * 4)  # all tied: all head
    np.testing.assert_array_equal(M.long_tail(np.array([7])), [False])  # one item: the head
    np.testing.assert_array_equal(M.long_tail(np.array([0, 0])), [True, True])  # no interaction: all tail
    assert M.long_tail(np.zeros(0)).size == 0


def test_arp_novelty_and_long_tail_share_per_user():
    np.testing.assert_allclose(M.arp_at_k(TOP, POP, 3), [3.5, 1.0, np.nan])
    np.testing.assert_allclose(M.arp_at_k(TOP, POP, 1), [6.0, 3.0, np.nan])
    # self-information log2(8 / pop): 0.415, 1.415, 3, and 3 for the two items no one had (counted as one)
    np.testing.assert_allclose(M.self_information(POP, 8), [np.log2(8 / 6), np.log2(8 / 3), 3, 3, 3])
    np.testing.assert_allclose(M.novelty_at_k(TOP, POP, 8, 3),
                               [(np.log2(8 / 6) + 3) / 2, (np.log2(8 / 3) + 6) / 3, np.nan])
    np.testing.assert_allclose(M.longtail_at_k(TOP, M.long_tail(POP), 3), [0.5, 2 / 3, np.nan])
    np.testing.assert_allclose(M.longtail_at_k(TOP, M.long_tail(POP), 1), [0.0, 0.0, np.nan])
    # no users, or no items at all
    assert M.arp_at_k(np.zeros((0, 3), np.int64), POP, 3).size == 0
    np.testing.assert_allclose(M.arp_at_k(np.full((2, 2), -1), np.zeros(0), 2), [np.nan, np.nan])


def test_intra_list_diversity_over_the_pairs_with_genres():
    # genres: 0 {A}, 1 {A, B}, 2 {B}, 3 none, 4 {C}
    units = M.unit_rows(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]]))
    np.testing.assert_allclose(units[1], [2 ** -0.5, 2 ** -0.5, 0])
    np.testing.assert_array_equal(units[3], 0)
    top = np.array([[0, 1, 2], [1, 3, 4], [0, 3, -1], [0, 1, -1], [-1, -1, -1]])
    # [0, 1, 2]: 1 - cos over the pairs (0,1), (0,2), (1,2) = 1 - 1/sqrt2, 1, 1 - 1/sqrt2
    # [1, 3, 4]: item 3 has no genre; (1, 4) share none: 1.  [0, 3]: one item with genres: none
    want = [(3 - 2 ** 0.5) / 3, 1.0, np.nan, 1 - 2 ** -0.5, np.nan]
    np.testing.assert_allclose(M.ild_at_k(top, units, 3), want)
    np.testing.assert_allclose(M.ild_at_k(top, units, 3, chunk=1), want)  # a user at a time: the same
    np.testing.assert_allclose(M.ild_at_k(top, units, 2), [1 - 2 ** -0.5, np.nan, np.nan, 1 - 2 ** -0.5, np.nan])
    same = M.unit_rows(np.array([[1, 1], [2, 2]]))  # two items of the same genres: no diversity
    np.testing.assert_allclose(M.ild_at_k(np.array([[0, 1]]), same, 2), [0.0], atol=1e-12)
    assert np.isnan(M.ild_at_k(np.array([[0]]), same, 1)).all()  # one item: no pair


def test_gini_and_entropy_of_the_exposure():
    exposure = np.zeros(5, np.int64)
    for batch in (TOP[:1], TOP[1:]):  # users in batches, as evaluate adds them
        M.add_exposure(exposure, batch, 3)
    np.testing.assert_array_equal(exposure, [1, 1, 1, 1, 1])
    assert M.gini(exposure) == pytest.approx(0.0) and M.entropy(exposure) == pytest.approx(np.log(5))
    top1 = np.zeros(5, np.int64)
    M.add_exposure(top1, TOP, 1)  # items 0 and 1 once each: sorted 0,0,0,1,1 -> (2*1 + 4*1) / (5 * 2)
    assert M.gini(top1) == pytest.approx(0.6) and M.entropy(top1) == pytest.approx(np.log(2))
    same = np.zeros(5, np.int64)
    M.add_exposure(same, np.array([[0, 1], [0, 1], [0, 1]]), 2)  # every list identical: as two items once
    assert M.gini(same) == pytest.approx(0.6) and M.entropy(same) == pytest.approx(np.log(2))
    assert M.gini(np.array([0, 0, 0, 0, 3])) == pytest.approx(4 / 5)  # one item takes every place: (n - 1) / n
    assert M.entropy(np.array([0, 0, 0, 0, 3])) == 0.0
    assert M.gini(np.array([7])) == 0.0 and M.entropy(np.array([7])) == 0.0  # a catalogue of one item
    for empty in (np.zeros(4), np.zeros(0)):  # nothing listed: no figure
        assert np.isnan(M.gini(empty)) and np.isnan(M.entropy(empty))
