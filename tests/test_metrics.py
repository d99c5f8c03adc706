import json

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
    from embedrec.evaluate_paired import behind_baselines

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
    same = {"splits": {"test": {"model": {"ndcg@10": 0.80142}, "most_popular": {"ndcg@10": 0.80139}}}}
    assert behind_baselines(same) == ["on the test split the model's ndcg@10 (0.8014) is the same as most_popular's "
                                      "(0.8014): its lists are no better than the most popular movies here"]
    same["splits"]["test"]["model"]["ndcg@10"] = 0.80152  # 0.8015: better as printed
    assert behind_baselines(same) == []
    rating["splits"]["test"]["model"].update({"rmse": 0.98, "ndcg@10": 0.31})
    assert behind_baselines(rating) == [] and behind_baselines({}) == [] and behind_baselines({"splits": {}}) == []


def test_behind_baselines_says_a_model_just_above_most_popular_ties_it_where_the_paired_difference_is_within_two_se():
    """A first-hour review: train printed 0.0208 against most_popular's 0.0207 without a word, where evaluate said
    +0.0001 +- 0.0016. train's ``vs_popular`` and evaluate's ``paired`` carry the paired difference; within two SE of
    0 the model above most_popular is said to tie it; outside, nothing is said."""
    from embedrec.evaluate_paired import behind_baselines

    near = {"splits": {"test": {"model": {"ndcg@10": 0.0208}, "most_popular": {"ndcg@10": 0.0207}}}}
    assert behind_baselines(near) == []  # no paired figure: the printed figures alone, the model above
    tie = {"difference": 0.0001, "se": 0.0016, "users": 1500, "tie": True}
    said = ["on the test split the model's ndcg@10 (0.0208) is level with (a tie: +0.0001, SE 0.0016, paired over "
            "1,500 users; within two SE) most_popular's (0.0207): its lists are no better than the most popular "
            "movies here"]
    assert behind_baselines({**near, "vs_popular": {"test": {"ndcg@10": tie}}}) == said
    assert behind_baselines({**near, "paired": {"test": {"most_popular": {"ndcg@10": tie}}}}) == said
    win = {**tie, "difference": 0.0040, "se": 0.0010, "tie": False}
    assert behind_baselines({**near, "vs_popular": {"test": {"ndcg@10": win}}}) == []
    assert behind_baselines({**near, "vs_popular": {"valid": {"ndcg@10": tie}}}) == []  # another split's
    tiny = {**tie, "difference": 0.00006, "se": 0.000041}  # a review: 'a tie: +0.0001, SE 0.0000' read as wrong
    assert "(a tie: +0.000060, SE 0.000041, paired over 1,500 users" in behind_baselines(
        {**near, "vs_popular": {"test": {"ndcg@10": tiny}}})[0]


def test_train_keeps_the_paired_difference_with_most_popular_that_evaluate_gives(tmp_path):
    """train's metrics hold ``vs_popular``: the model's first ndcg@K minus most_popular's, user by user, the same
    figures evaluate's paired row gives for the same run and split."""
    import embedrec as er
    from embedrec.data.synth import write_movielens

    write_movielens(tmp_path / "ml", 300, 120, 6000, seed=3, taste=0.0)
    cfg = er.load_config(None, [f"data.source={tmp_path / 'ml'}", f"data.prepared={tmp_path / 'ds'}",
                               "train.epochs=2", "train.als_dims=[64]", "train.refit=false"])
    model = er.train(er.ingest(cfg=cfg), cfg)
    got = model.metrics["vs_popular"]["test"]["ndcg@10"]
    want = model.evaluate("test")["paired"]["test"]["most_popular"]["ndcg@10"]
    assert got["users"] == want["users"] > 100
    assert got["difference"] == pytest.approx(want["difference"], abs=1e-9)
    assert got["se"] == pytest.approx(want["se"], abs=1e-9) and got["tie"] == want["tie"]


def test_paired_stats_by_hand():
    """The model's per-user values minus another's over the users both have (NaN: none), hand-computed: d = 1, 1,
    2 (the fourth user has no value of the model's), mean 4/3, std (n - 1) sqrt(1/3), SE sqrt(1/3) / sqrt(3) = 1/3;
    4/3 is above two SE, so no tie."""
    from embedrec.evaluate_paired import paired_stats

    got = paired_stats([1.0, 2.0, 3.0, np.nan], [0.0, 1.0, 1.0, 5.0])
    assert got == {"difference": pytest.approx(4 / 3), "se": pytest.approx(1 / 3), "users": 3, "tie": False}
    # d = 0.5, -0.3: mean 0.1, std sqrt(0.32) (n - 1 = 1), SE 0.4: a tie (|0.1| <= 0.8)
    assert paired_stats([0.5, 0.0], [0.0, 0.3]) == {"difference": pytest.approx(0.1), "se": pytest.approx(0.4),
                                                    "users": 2, "tie": True}
    assert paired_stats([1.0, 1.0], [1.0, 1.0]) == {"difference": 0.0, "se": 0.0, "users": 2, "tie": True}  # the same
    one = paired_stats([0.5, np.nan], [0.25, 0.0])  # one user: no SE, so no word of a tie
    assert (one["difference"], one["users"], one["tie"]) == (0.25, 1, None) and np.isnan(one["se"])


def test_paired_differences_and_the_per_user_columns_by_hand():
    """evaluate's per-user frame: the model's metric@K columns, its rating columns, then each other's as
    OTHER:metric@K (a list's name may hold ':'); the paired differences are of every metric@K both have, rmse and
    mae left out where the other has none (its OTHER:rmse: the next tests); --metrics keeps user_id and its
    metrics' columns, ratings with rmse/mae."""
    import pandas as pd

    from embedrec.evaluate_paired import paired_differences, per_user_columns

    frame = pd.DataFrame({"user_id": [1, 2, 3], "ndcg@10": [0.5, 0.2, 0.8], "novelty@10": [2.0, 3.0, 4.0],
                          "rmse": [1.0, 0.5, 0.7], "mae": [0.8, 0.4, 0.6], "ratings": [3, 2, 1],
                          "most_popular:ndcg@10": [0.3, 0.2, 0.4], "most_popular:novelty@10": [1.0, 1.0, 1.0],
                          "a:b.csv:ndcg@10": [0.5, 0.2, np.nan], "a:b.csv:coverage@10": [0.1, 0.1, 0.1]})
    got = paired_differences(frame)
    assert list(got) == ["most_popular", "a:b.csv"] and list(got["most_popular"]) == ["ndcg@10", "novelty@10"]
    # most_popular's ndcg@10: d = 0.2, 0, 0.4: mean 0.2, std 0.2, SE 0.2 / sqrt(3) = 0.11547: 0.2 <= 0.23: a tie
    assert got["most_popular"]["ndcg@10"] == {"difference": pytest.approx(0.2), "se": pytest.approx(0.2 / np.sqrt(3)),
                                              "users": 3, "tie": True}
    # its novelty@10: d = 1, 2, 3: mean 2, SE 1 / sqrt(3) = 0.577: not a tie
    assert got["most_popular"]["novelty@10"]["difference"] == pytest.approx(2.0)
    assert got["most_popular"]["novelty@10"]["tie"] is False
    assert got["a:b.csv"] == {"ndcg@10": {"difference": 0.0, "se": 0.0, "users": 2, "tie": True}}  # the users both have
    assert list(per_user_columns(frame, ("ndcg",)).columns) == ["user_id", "ndcg@10", "most_popular:ndcg@10",
                                                               "a:b.csv:ndcg@10"]
    assert list(per_user_columns(frame, ("rmse", "novelty")).columns) == ["user_id", "novelty@10", "rmse", "ratings",
                                                                         "most_popular:novelty@10"]
    assert per_user_columns(frame, None) is frame


def test_paired_errors_by_hand():
    """Two explicit models' errors paired user by user (--against, the rating baselines): three users with 2, 1
    and 1 ratings. Model errors (+1, -1), (0), (+2); the other's (+2, +1), (+1), (+1). Per-user MSE: model 1, 0, 4;
    other 2.5, 1, 1 (the RMSE columns their roots). The per-user MSE differences -1.5, -1, 3: mean 1/6, std (n - 1)
    sqrt(219) / 6, SE sqrt(73) / 6 = 1.424: a tie. The overall RMSEs over the 4 ratings: sqrt(6 / 4) against
    sqrt(7 / 4) (not the mean of the per-user differences, nor its root: each user weighs alike there, each rating
    here). MAE: model 1, 0, 2, other 1.5, 1, 1: differences -0.5, -1, 1, mean -1/6, SE sqrt(13) / 6; overall
    4 / 4 = 1 against 5 / 4 = 1.25."""
    from embedrec.evaluate_paired import paired_errors

    ratings = [2, 1, 1]
    overall, per_user = paired_errors([1.0, 0.0, 2.0], [np.sqrt(2.5), 1.0, 1.0], ratings, squared=True)
    assert overall == {"difference": pytest.approx(np.sqrt(1.5) - np.sqrt(1.75)), "se": None, "users": 3,
                       "tie": None}
    assert per_user == {"difference": pytest.approx(1 / 6), "se": pytest.approx(np.sqrt(73) / 6), "users": 3,
                        "tie": True}
    overall, per_user = paired_errors([1.0, 0.0, 2.0], [1.5, 1.0, 1.0], ratings, squared=False)
    assert overall == {"difference": pytest.approx(-0.25), "se": None, "users": 3, "tie": None}
    assert per_user == {"difference": pytest.approx(-1 / 6), "se": pytest.approx(np.sqrt(13) / 6), "users": 3,
                        "tie": True}
    # a user the other has no value for is left out of both (NaN): users 1 and 3, MSE differences -1.5 and 3: mean
    # 0.75, std sqrt(2 * 2.25^2), SE 2.25; overall model (2 * 1 + 4) / 3 against (2 * 2.5 + 1) / 3, the same
    overall, per_user = paired_errors([1.0, 0.0, 2.0], [np.sqrt(2.5), np.nan, 1.0], ratings, squared=True)
    assert overall == {"difference": pytest.approx(0.0, abs=1e-12), "se": None, "users": 2, "tie": None}
    assert per_user == {"difference": pytest.approx(0.75), "se": pytest.approx(2.25), "users": 2, "tie": True}
    # a clear difference: model errors 0 everywhere against the other's 1: -1 for each user, SE 0: not a tie
    assert paired_errors([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], ratings, squared=True)[1] == {
        "difference": -1.0, "se": 0.0, "users": 3, "tie": False}


def test_paired_differences_pair_rating_columns_as_the_per_user_errors():
    """A per-user frame with an explicit model's rmse, mae and ratings, and another's (a rating baseline, a run)
    as OTHER:rmse, OTHER:mae: the pairs are rmse (the overall difference), user_mse, mae, user_mae, then its
    metric@K, as paired_errors gives them (the values of test_paired_errors_by_hand); a ranking peer (no rating
    columns) pairs its metric@K alone, and --metrics rmse keeps rmse and user_mse (evaluate.paired_metric)."""
    import pandas as pd

    from embedrec.evaluate import select_metrics
    from embedrec.evaluate_paired import paired_differences, paired_errors, paired_metric, per_user_columns

    frame = pd.DataFrame({"user_id": [1, 2, 3], "ndcg@10": [0.5, 0.2, 0.8], "rmse": [1.0, 0.0, 2.0],
                          "mae": [1.0, 0.0, 2.0], "ratings": [2, 1, 1], "biases:rmse": [np.sqrt(2.5), 1.0, 1.0],
                          "biases:mae": [1.5, 1.0, 1.0], "run:ndcg@10": [0.4, 0.2, 0.8],
                          "run:rmse": [np.sqrt(2.5), 1.0, 1.0], "run:mae": [1.5, 1.0, 1.0],
                          "most_popular:ndcg@10": [0.1, 0.1, 0.1]})
    got = paired_differences(frame)
    assert list(got) == ["biases", "run", "most_popular"]
    assert list(got["biases"]) == ["rmse", "user_mse", "mae", "user_mae"]
    assert list(got["run"]) == ["ndcg@10", "rmse", "user_mse", "mae", "user_mae"]
    assert list(got["most_popular"]) == ["ndcg@10"]
    mse = paired_errors([1.0, 0.0, 2.0], [np.sqrt(2.5), 1.0, 1.0], [2, 1, 1], squared=True)
    mae = paired_errors([1.0, 0.0, 2.0], [1.5, 1.0, 1.0], [2, 1, 1], squared=False)
    for other in ("biases", "run"):
        assert (got[other]["rmse"], got[other]["user_mse"]) == mse
        assert (got[other]["mae"], got[other]["user_mae"]) == mae
    assert got["run"]["user_mse"]["difference"] == pytest.approx(1 / 6)  # hand-computed in the test above
    assert got["run"]["mae"]["difference"] == pytest.approx(-0.25)
    # without the model's ratings column there is no weight for the overall figures: no rating pair
    assert "rmse" not in paired_differences(frame.drop(columns="ratings"))["run"]
    assert [paired_metric(k) for k in ("rmse", "user_mse", "mae", "user_mae", "ndcg@10")] == [
        "rmse", "rmse", "mae", "mae", "ndcg"]
    cut = select_metrics({"splits": {"test": {"model": {"rmse": 1.2, "ndcg@10": 0.5}}}, "paired": {"test": got}},
                         ("rmse",))
    assert cut["paired"] == {"test": {other: {"rmse": got[other]["rmse"], "user_mse": got[other]["user_mse"]}
                                      for other in ("biases", "run")}}
    assert list(per_user_columns(frame, ("rmse",)).columns) == ["user_id", "rmse", "ratings", "biases:rmse",
                                                                "run:rmse"]


def test_select_metrics_and_metric_rows_take_the_paired_differences():
    """--metrics cuts the paired differences as it cuts the rows (a comparison with none of them left out); the
    rows of a table give each comparison as 'model-OTHER' (the differences) and 'model-OTHER se', after its
    split's models; the JSON's keys are added to, none renamed."""
    from embedrec.evaluate import select_metrics
    from embedrec.output import metric_columns, metric_rows, transpose_metrics

    pair = {"difference": 0.2, "se": 0.01, "users": 9, "tie": False}
    result = {"splits": {"test": {"model": {"ndcg@10": 0.5, "arp@10": 9.0, "users_evaluated": 9},
                                  "most_popular": {"ndcg@10": 0.3, "arp@10": 12.0}}},
              "paired": {"test": {"most_popular": {"ndcg@10": pair, "arp@10": {**pair, "difference": -3.0}},
                                  "peer": {"arp@10": pair}}}}
    cut = select_metrics(result, ("ndcg",))
    assert cut["paired"] == {"test": {"most_popular": {"ndcg@10": pair}}} and "arp@10" in result["paired"]["test"]["peer"]
    assert list(metric_rows(cut)) == [
        {"split": "test", "model": "model", "ndcg@10": 0.5, "users_evaluated": 9},
        {"split": "test", "model": "most_popular", "ndcg@10": 0.3},
        {"split": "test", "model": "model-most_popular", "ndcg@10": 0.2},
        {"split": "test", "model": "model-most_popular se", "ndcg@10": 0.01}]
    assert [r["model"] for r in metric_rows({"splits": result["splits"]})] == ["model", "most_popular"]  # train's
    # a terminal's table: a column a comparison, its cells the difference +- its SE (so it fits 80 columns)
    rows = list(metric_rows(result))
    assert transpose_metrics(rows, metric_columns(rows)) == (
        [{"metric": "ndcg@10", "model": 0.5, "most_popular": 0.3, "model-most_popular": "+0.2000 +- 0.0100",
          "model-peer": None},
         {"metric": "arp@10", "model": 9.0, "most_popular": 12.0, "model-most_popular": "-3.0000 +- 0.0100",
          "model-peer": "+0.2000 +- 0.0100"}],
        ["metric", "model", "most_popular", "model-most_popular", "model-peer"])
    # the paired rating rows: the overall difference alone (no SE), the per-user one with its SE, each after the
    # metric it is of (not after the ranking metrics, where a key first seen in a later row would go)
    overall = {"difference": -0.02, "se": None, "users": 9, "tie": None}
    rated = {"splits": {"test": {"model": {"rmse": 0.9, "mae": 0.7, "ndcg@10": 0.5},
                                 "biases": {"rmse": 0.92, "mae": 0.71}}},
             "paired": {"test": {"biases": {"rmse": overall, "user_mse": {**pair, "difference": -0.03},
                                            "mae": {**overall, "difference": -0.01}, "user_mae": pair}}}}
    rows = list(metric_rows(rated))
    assert metric_columns(rows) == ["split", "model", "rmse", "user_mse", "mae", "user_mae", "ndcg@10"]
    assert transpose_metrics(rows, metric_columns(rows))[0][:2] == [
        {"metric": "rmse", "model": 0.9, "biases": 0.92, "model-biases": "-0.0200"},
        {"metric": "user_mse", "model": None, "biases": None, "model-biases": "-0.0300 +- 0.0100"}]


def test_table_parts_put_paired_rating_rows_in_a_table_of_their_own():
    """A terminal's table of evaluate's paired differences holding rating rows and ranking rows is two tables,
    each with the columns that have a value in it; one table otherwise (train's, without paired differences; a
    ranking model's)."""
    from embedrec.output import table_parts

    cols = ["metric", "model", "biases", "most_popular", "model-biases", "model-most_popular"]
    rows = [{"metric": "rmse", "model": 0.9, "biases": 0.92, "most_popular": None, "model-biases": "-0.0200",
             "model-most_popular": None},
            {"metric": "user_mse", "model": None, "biases": None, "most_popular": None,
             "model-biases": "-0.0300 +- 0.0100", "model-most_popular": None},
            {"metric": "ndcg@10", "model": 0.1, "biases": None, "most_popular": 0.2, "model-biases": None,
             "model-most_popular": "-0.1000 +- 0.0100"}]
    assert table_parts(rows, cols, True) == [
        ([{"metric": "rmse", "model": 0.9, "biases": 0.92, "model-biases": "-0.0200"},
          {"metric": "user_mse", "model": None, "biases": None, "model-biases": "-0.0300 +- 0.0100"}],
         ["metric", "model", "biases", "model-biases"]),
        ([{"metric": "ndcg@10", "model": 0.1, "most_popular": 0.2, "model-most_popular": "-0.1000 +- 0.0100"}],
         ["metric", "model", "most_popular", "model-most_popular"])]
    assert table_parts(rows, cols, False) == [(rows, cols)]  # train's table: no paired differences
    assert table_parts(rows[2:], cols, True) == [(rows[2:], cols)]  # ranking rows alone


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


def test_popular_lists_by_hand():
    """The most-popular lists (sparse.PopularLists): one order, counts highest first and equal counts lowest movie
    first, each user's seen movies skipped (a seen pair given twice counts once), a movie without a training rating
    (count 0) never listed, -1 where fewer are left."""
    from embedrec.sparse import PopularLists, csr

    counts = np.array([3, 5, 5, 0, 1, 3])  # order: 1, 2, 0, 5, 4, 3
    seen = csr(np.array([0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2]), np.array([1, 0, 1, 3, 0, 1, 2, 3, 4, 5, 5]), 4)
    got = PopularLists(counts).top(seen, np.array([0, 1, 2, 3]), 3)
    assert got.dtype == np.int64
    assert got.tolist() == [[2, 5, 4], [1, 2, 0], [-1, -1, -1], [1, 2, 0]]
    assert PopularLists(counts).top(seen, np.array([3, 0]), 9).tolist() == [[1, 2, 0, 5, 4, -1], [2, 5, 4, -1, -1, -1]]
    assert PopularLists(counts).top(None, np.array([2]), 2).tolist() == [[1, 2]]
    assert PopularLists(counts).top(seen, np.array([1]), 0).shape == (1, 0)


def test_popular_lists_are_a_dense_top_k_of_the_counts():
    """On random cases (many equal counts, users who saw nearly everything): the lists, the same as the dense top-k
    of the counts with the seen movies and those without a training rating at -inf, numpy's and the C kernel's."""
    from embedrec.sparse import PopularLists, csr, gather_csr, topk_fast, topk_from_scores

    rng = np.random.default_rng(0)
    for _ in range(200):
        n, n_users, k = int(rng.integers(1, 40)), int(rng.integers(1, 30)), int(rng.integers(1, 50))
        counts = rng.integers(0, 4, n)
        pairs = int(rng.integers(0, n_users * n + 1))
        seen = csr(rng.integers(0, n_users, pairs), rng.integers(0, n, pairs), n_users)
        rows = np.sort(rng.choice(n_users, int(rng.integers(1, n_users + 1)), replace=False))
        scores = np.zeros((rows.size, n), np.float32) + np.where(counts > 0, counts, -np.inf).astype(np.float32)
        r, c, _ = gather_csr(*seen, rows)
        scores[r, c] = -np.inf
        want = topk_from_scores(scores.copy(), k)[0]
        assert np.array_equal(PopularLists(counts).top(seen, rows, k), want)
        fast = topk_fast(scores, k, 2)
        assert fast is None or np.array_equal(fast[0], want)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_most_popular_baseline_is_the_dense_ranking_of_the_counts(tmp_path, synth_dir, split):
    """evaluate's most_popular row and per-user values (through PopularLists) equal, bit for bit, the same lists
    ranked through the dense users x movies scores of the counts (those of no training rating at -inf), beyond-accuracy
    metrics and a K beyond the catalogue included."""
    from embedrec.beyond import catalogue
    from embedrec.config import Config
    from embedrec.data.dataset import load_dataset
    from embedrec.evaluate import baselines, ranking_metrics, relevant, seen_csr, seen_splits
    from embedrec.ingestion import ingest

    cfg = Config().updated({"data.source": str(synth_dir[0])})
    ingest(cfg.data, cfg.split, output=tmp_path / "ds")
    ds = load_dataset(tmp_path / "ds")
    cat = catalogue(ds, ("train",))
    ks = (1, 10, 20, 500)
    got_users: list = []
    got = baselines(ds, split, False, ks, catalogue=cat, per_user=got_users)["most_popular"]
    pop = np.bincount(ds.splits["train"].movie, minlength=ds.n_movies).astype(np.float32)
    tu, ti = relevant(ds.splits[split], None)
    want_users: list = []
    unrated = np.where(pop > 0, pop, -np.inf).astype(np.float32)  # (a movie without a training rating: never listed)
    want = ranking_metrics(np.zeros((ds.n_users, 1), np.float32), np.zeros((ds.n_movies, 1), np.float32), unrated,
                           seen_csr(ds, seen_splits(split)), tu, ti, ds.n_users, ds.n_movies, ks, catalogue=cat,
                           per_user=want_users)
    assert json.dumps(got) == json.dumps(want) and got["users_evaluated"] > 200  # (the keys in order, NaN too)
    assert len(got_users) == len(want_users)
    for (rows, values), (rows_w, values_w) in zip(got_users, want_users):
        assert np.array_equal(rows, rows_w) and values.keys() == values_w.keys()
        assert all(np.array_equal(values[key], values_w[key], equal_nan=True) for key in values)


def test_auc_by_hand():
    """implicit's AUC_at_k, computed by hand over a catalogue of 10 movies at K=4."""
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
    n_rel = np.array([2, 3, 1])
    # user 0: 2 relevant, 8 others. The miss at rank 2 has 1 hit above it, the one at rank 4 has 2; the 6 others
    # past the list have both hits above, (2 + 2) / 2 each: 1 + 2 + 12 = 15 of 2 x 8 pairs
    # user 1: 3 relevant, 7 others; no hit above its misses; past the list (1 + 3) / 2 x (7 - 3) = 8 of 21
    # user 2: 1 relevant, 9 others; (0 + 1) / 2 x (9 - 4) = 2.5 of 9
    np.testing.assert_allclose(M.auc_at_k(hits, n_rel, 4, 10), [15 / 16, 8 / 21, 2.5 / 9])
    # a list two places long at k=4: its missing places are misses below its hit, as [1, 0, 0, 0]: 1 + 1 + 1 +
    # (1 + 2) / 2 x (8 - 3) = 10.5 of 16
    np.testing.assert_allclose(M.auc_at_k(hits[:1, :2], n_rel[:1], 4, 10), [10.5 / 16])
    np.testing.assert_allclose(M.auc_at_k(hits[:1, :2], n_rel[:1], 4, 10), M.auc_at_k(np.array([[1.0, 0, 0, 0]]),
                                                                                       n_rel[:1], 4, 10))
    assert M.parse_metric("auc@10") == ("auc", 10) and M.higher_is_better("auc@10")


def test_auc_equals_implicits_on_its_own_lists():
    implicit = pytest.importorskip("implicit")
    import scipy.sparse as sp
    from implicit.evaluation import ranking_metrics_at_k

    rng = np.random.default_rng(0)
    dense = (rng.random((60, 40)) < 0.25).astype(np.float32)
    held = rng.random((60, 40)) < 0.3
    train, test = sp.csr_matrix(dense * ~held), sp.csr_matrix(dense * held)
    model = implicit.als.AlternatingLeastSquares(factors=4, iterations=3, random_state=0, use_gpu=False)
    model.fit(train, show_progress=False)
    want = ranking_metrics_at_k(model, train, test, K=7, show_progress=False)["auc"]
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    ids, _ = model.recommend(users, train[users], N=7)
    n_rel = np.diff(test.indptr)[users]
    hits = M.hit_matrix(ids, np.concatenate([[0], np.cumsum(n_rel)]),
                        np.concatenate([test.indices[test.indptr[u]:test.indptr[u + 1]] for u in users]))
    assert M.auc_at_k(hits, n_rel, 7, 40).mean() == pytest.approx(want, rel=1e-12)


def test_a_movie_without_a_training_rating_fills_no_list_of_the_model_or_most_popular():
    """A plain model's movies without a training rating (zero vector, bias -1000: training.fit's mask) are in no list
    evaluate ranks, as in no served one: a user with fewer than K other movies gets a shorter list, and coverage@K
    counts only movies some list holds (a red team: they filled such users' lists; coverage 1.0 against the served
    lists' 0.96). A bias of -1000 on a movie with a vector (a learned one) stays ranked."""
    from embedrec.evaluate import ranking_metrics, unservable_out
    from embedrec.sparse import PopularLists, csr

    Q = np.array([[1.0], [0.5], [0.0], [0.0], [0.2]], np.float32)  # movies 2 and 3: no vector
    b = np.array([0.0, 0.0, -1000.0, 0.0, -1000.0], np.float32)  # 2: untrained; 3: a zero vector, bias 0; 4: learned
    assert unservable_out(Q, b).tolist() == [0.0, 0.0, -np.inf, 0.0, -1000.0]
    P = np.ones((2, 1), np.float32)
    seen = csr(np.array([0, 0]), np.array([0, 1]), 2)  # user 0 saw 0 and 1: three movies left, one unservable
    test_u, test_i = np.array([0, 0, 1]), np.array([2, 3, 0])  # user 0's test movies: 2 (unservable) and 3
    got = ranking_metrics(P, Q, b, seen, test_u, test_i, 2, 5, ks=(3,))
    assert got["coverage@3"] == pytest.approx(4 / 5)  # user 0: 3, 4; user 1: 0, 1, 3 (never 2)
    assert got["recall@3"] == pytest.approx((1 / 2 + 1) / 2)  # movie 2 is no hit
    assert PopularLists(np.array([3, 2, 0, 1, 5])).top(seen, np.array([0]), 4).tolist() == [[4, 3, -1, -1]]


def test_sparse_unique_isin_and_setdiff_equal_numpy_s():
    """numpy 2.3+'s hash-based np.unique (numpy#31969) took 7.8 s for 2.45M distinct keys where a sort takes 0.04 s,
    and np.isin, np.setdiff1d and np.union1d call it (a speed review: 11 s of a synthetic-bench train): the sorting
    helpers give numpy's answers, dtype and shape for every integer input (a bool too); other dtypes go to numpy."""
    from embedrec.sparse import isin, setdiff, unique

    rng = np.random.default_rng(0)
    for _ in range(300):
        a = rng.integers(-6, 6, rng.integers(0, 40))
        b = rng.integers(-6, 6, rng.integers(0, 40))
        for x, y in ((a, b), (a.astype(np.int32), b.astype(np.int64)), (a.reshape(-1, 1) if a.size else a, b)):
            assert unique(x).tolist() == np.unique(x).tolist() and unique(x).dtype == np.unique(x).dtype
            assert isin(x, y).tolist() == np.isin(x, y).tolist() and isin(x, y).shape == np.isin(x, y).shape
            assert setdiff(x, y).tolist() == np.setdiff1d(x, y).tolist()
        for x, y in ((np.abs(a).astype(np.uint32), np.abs(b).astype(np.uint64)), (a, np.abs(b).astype(np.uint64))):
            assert isin(x, y).tolist() == np.isin(x, y).tolist()  # unsigned, and signed with unsigned
    assert unique(np.array([True, False, True])).tolist() == [False, True]
    floats = np.array([2.0, np.nan, 1.0, np.nan])  # numpy's (one NaN)
    assert np.array_equal(unique(floats), np.unique(floats), equal_nan=True)
    assert unique([3, 1, 3]).tolist() == [1, 3] and isin([1, 2], []).tolist() == [False, False]
    big = np.array([2**53 + 1], np.int64)  # a review: searchsorted compared int64 with uint64 as floats
    assert isin(big, np.array([2**53, 2**53 + 1], np.uint64)).tolist() == [True]
    keys = rng.integers(0, 2 * 10**9, 300_000)
    assert np.array_equal(unique(keys), np.unique(keys, return_counts=True)[0])  # (its sort path: fast)


def test_hits_are_the_listed_movies_in_each_row_s_relevant_ones():
    """metrics' hits: the binary search in the sorted keys (numpy's np.isin calls its slow unique) marks each listed
    movie among its row's relevant movies, a padded -1 never."""
    from embedrec.metrics import hit_matrix

    topk = np.array([[3, 1, -1], [0, 2, 1], [4, 4, 0]])
    indptr, indices = np.array([0, 2, 2, 4]), np.array([1, 3, 0, 4])
    assert hit_matrix(topk, indptr, indices).tolist() == [[1, 1, 0], [0, 0, 0], [1, 1, 1]]
