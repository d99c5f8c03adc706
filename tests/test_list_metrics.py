"""er.score_lists: any recommender's top-K lists scored against any held-out rows, by evaluate's metrics (an API
review, session 39: no way to score implicit's lists or one's own split from Python, as LensKit and Surprise do)."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest

import embedrec as er
from embedrec.errors import UsageError

LISTS = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 3], "movie_id": [10, 11, 12, 10, 13, 10], "rank": [1, 2, 3, 1, 2, 1]})
TRUTH = pd.DataFrame({"user_id": [1, 1, 2, 4, 4], "movie_id": [11, 14, 99, 10, 10]})  # a repeated row counts once


def _evaluate_lists(trained_run, path):
    """`evaluate -k 5 --format json --lists PATH` on the trained run: (the list's row of test, stderr)."""
    import json

    from click.testing import CliRunner

    from embedrec.cli import main

    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "5", "--format", "json", "--lists", str(path)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["splits"]["test"][path.name], r.stderr


def test_hand_computed_values():
    got = er.score_lists(LISTS, TRUTH, ks=(1, 2, 3), catalogue=20)
    # users 1 (relevant 11, 14: a hit at rank 2), 2 (99: none), 4 (10: no list); user 3 has nothing relevant
    assert (got["users_evaluated"], got["users_without_list"], got["users_not_in_truth"]) == (3, 1, 1)
    d = 1 / math.log2(3)
    assert got["precision@2"] == pytest.approx((1 / 2) / 3) and got["precision@3"] == pytest.approx((1 / 3) / 3)
    assert got["recall@2"] == pytest.approx((1 / 2) / 3) and got["ndcg@1"] == 0.0
    assert got["ndcg@2"] == pytest.approx(d / (1 + d) / 3) and got["ndcg@3"] == got["ndcg@2"]
    assert got["map@2"] == pytest.approx((1 / 2) / 2 / 3) and got["mrr@3"] == pytest.approx((1 / 2) / 3)
    assert got["hitrate@2"] == pytest.approx(1 / 3)
    assert (got["coverage@1"], got["coverage@2"], got["coverage@3"]) == (1 / 20, 3 / 20, 4 / 20)  # scored users'
    per = er.score_lists(LISTS, TRUTH, ks=2, per_user=True)
    assert per["user_id"].tolist() == [1, 2, 4] and per["n_relevant"].tolist() == [2, 1, 1]
    assert per["ndcg@2"].tolist() == pytest.approx([d / (1 + d), 0, 0])


def test_the_order_comes_from_rank_else_score_else_the_rows():
    by_rank = er.score_lists(LISTS.sample(frac=1, random_state=3), TRUTH, ks=2)
    by_score = er.score_lists(LISTS.assign(score=-LISTS["rank"]).drop(columns="rank").sample(frac=1, random_state=4),
                              TRUTH, ks=2)
    by_rows = er.score_lists(LISTS.drop(columns="rank"), TRUTH, ks=2)
    assert by_rank == by_score == by_rows


def test_it_gives_what_evaluate_gives_on_a_trained_run(trained_run):
    """The run's own test split, its lists from recommend (seen movies excluded): evaluate's figures exactly."""
    from embedrec.data.dataset import load_dataset

    ds = load_dataset(trained_run.cfg.data.prepared)
    t = ds.splits["test"]
    uid, mid = ds.users["user_id"].to_numpy(), ds.movies["movie_id"].to_numpy()
    truth = ds.split_frame("test")  # the split's rows with their ids
    assert truth["user_id"].tolist() == uid[t.user].tolist() and truth["movie_id"].tolist() == mid[t.movie].tolist()
    assert truth["rating"].tolist() == t.rating.tolist() and list(truth.columns)[:3] == ["user_id", "movie_id", "rating"]
    with pytest.raises(UsageError, match=r"^split_frame: no split 'tests' in this dataset; one of 'train'"):
        ds.split_frame("tests")
    m = trained_run.opened
    got = er.score_lists(m.recommend(sorted(set(truth.user_id)), k=10).to_frame(), truth, ks=10)
    want = m.evaluate("test", ks=10)["splits"]["test"]["model"]
    assert got["users_evaluated"] == want["users_evaluated"] and got["users_without_list"] == 0
    for name in ("precision@10", "recall@10", "ndcg@10", "map@10", "hitrate@10", "mrr@10"):
        assert got[name] == pytest.approx(want[name], abs=1e-12), name


@pytest.mark.parametrize("lists,truth,kw,match", [
    (LISTS.rename(columns={"user_id": "customer"}), TRUTH, {}, r"^score_lists: lists has no column 'user_id' \(its "
     r"columns: customer, movie_id, rank\); rename them, e\.g\. df\.rename\(columns=\{'customer': 'user_id'\}\)$"),
    (LISTS, TRUTH.assign(user_id=[1, None, 2, 4, 4]), {}, r"^score_lists: truth has missing ids"),
    (pd.concat([LISTS, LISTS.iloc[:1]]), TRUTH, {}, r"^score_lists: user 1's list holds movie 10 twice"),
    # a list asked for twice, with a float score: ids as given (a review: 'user 196.0's list holds movie 275.0')
    (pd.concat([LISTS, LISTS]).drop(columns="rank").assign(score=0.5), TRUTH, {},
     r"^score_lists: user 1's list holds movie 10 twice \(row 7\); a list names each movie once \(a user asked for "
     r"twice gives two lists"),
    (LISTS.assign(rank=[0, 1, 2, 1, 2, 1]), TRUTH, {}, r"'rank' column holds a value that is not 1, 2"),
    (LISTS.assign(rank=[1, 1, 2, 1, 2, 1]), TRUTH, {}, r"or one rank twice for a user"),
    (LISTS.drop(columns="rank").assign(score=["a", 1, 2, 3, 4, 5]), TRUTH, {}, r"'score' column holds 'a', not a"),
    (LISTS.set_axis(["user_id", "movie_id", "user_id"], axis=1), TRUTH, {}, r"needs one column of each name"),
    (LISTS, TRUTH, {"ks": "10"}, r"^ks='10': give whole numbers"),
    (LISTS, TRUTH, {"catalogue": 2, "ks": 3}, r"^score_lists: catalogue=2, but the lists' top 3 name 4 distinct"),
    (LISTS, TRUTH, {"catalogue": True}, r"^score_lists: catalogue=True: give the number of movies"),
    ([(1, 10)], TRUTH, {}, r"^score_lists: lists must be a pandas DataFrame"),
    (LISTS.astype({"user_id": str}), TRUTH, {}, r"^score_lists: none of the lists' 3 users is a user of truth \(ids "
     r"are matched as given\); the lists' user ids are texts \('1'\), truth's integers \(1\): make them one kind, "
     r"e.g. lists.astype\(\{'user_id': int\}\)$"),
    (LISTS.astype({"user_id": str}).rename(columns={"user_id": "user", "movie_id": "item"}), TRUTH, {},
     r"e.g. lists.astype\(\{'user': int\}\)$"),  # the caller's column (a notebook review: 'user_id' of a frame
    # whose column is LensKit's 'user' was a KeyError)
    (LISTS, TRUTH.astype({"movie_id": str}), {}, r"^score_lists: no movie of the lists is a movie of truth; the lists' "
     r"movie ids are integers \(10\), truth's texts \('11'\): .*lists.astype\(\{'movie_id': str\}\)$"),
    (LISTS.assign(user_id=LISTS["user_id"] + 100), TRUTH, {}, r"^score_lists: none of the lists' 3 users is a user "
     r"of truth \(ids are matched as given\)$"),
    (LISTS, TRUTH.assign(movie_id=[{"a": 1}, 12, 13, 14, 15]), {}, r"^score_lists: truth's ids must be numbers or "),
])
def test_what_cannot_be_scored_is_one_usage_error(lists, truth, kw, match):
    with pytest.raises(UsageError, match=match):
        er.score_lists(lists, truth, **kw)


def test_the_column_names_evaluate_lists_takes_are_taken_here_too():
    """A first-hour review: ``evaluate --lists`` scored a LensKit file of user,item,rank, while score_lists refused
    the same frame ('no column user_id, movie_id ... e.g. df.rename(columns={'userId': ...})'): one mapping for
    both (list_metrics._named_columns), and where it still refuses, the example names the columns found."""
    want = er.score_lists(LISTS, TRUTH, ks=(1, 2, 3))
    lenskit = LISTS.rename(columns={"user_id": "user", "movie_id": "item"})
    assert er.score_lists(lenskit, TRUTH, ks=(1, 2, 3)) == want
    assert er.score_lists(lenskit, TRUTH.rename(columns={"user_id": "userId", "movie_id": "item"}), ks=(1, 2, 3)) == want
    assert list(lenskit.columns) == ["user", "item", "rank"]  # the caller's frame is left as it was
    with pytest.raises(UsageError, match=r"\(its columns: u, i, rank\); rename them, e\.g\. df\.rename\(columns="
                                         r"\{'u': 'user_id', 'i': 'movie_id'\}\)$"):
        er.score_lists(LISTS.set_axis(["u", "i", "rank"], axis=1), TRUTH)
    # two columns spelt as the movie's other names: neither guessed, the first offered
    with pytest.raises(UsageError, match=r"no column 'movie_id' \(its columns: user, item, movie, rank\); rename "
                                         r"them, e\.g\. df\.rename\(columns=\{'item': 'movie_id'\}\)$"):
        er.score_lists(lenskit.assign(movie=lenskit["item"])[["user", "item", "movie", "rank"]], TRUTH)
    with pytest.raises(UsageError, match=r"^score_lists: truth has no column 'movie_id' \(its columns: user_id, "
                                         r"title\); rename them, e\.g\. df\.rename\(columns=\{'title': 'movie_id'\}\)$"):
        er.score_lists(LISTS, pd.DataFrame({"user_id": [1], "title": ["x"]}))


def test_text_scores_are_numbers_and_mixed_ids_are_kept_apart():
    """A review: a text score sorted '2' before '10'; ids of mixed kinds (1 and 'u1') are other users."""
    lists = pd.DataFrame({"user_id": [1, 1, "u1", "u1"], "movie_id": [5, 6, 5, 6], "score": ["2", "10", 1.0, 3.0]})
    truth = pd.DataFrame({"user_id": [1, "u1"], "movie_id": [6, 6]})
    assert er.score_lists(lists, truth, ks=1)["hitrate@1"] == 1.0
    assert er.score_lists(lists.assign(score=[np.nan, 1, np.nan, 1]), truth, ks=1)["hitrate@1"] == 1.0  # NaN last
    many = pd.DataFrame({"user_id": range(20000), "movie_id": 7})  # 20,000 users of truth, one with a 5,000-long
    long_list = pd.DataFrame({"user_id": 0, "movie_id": range(5000)})  # list: rows for listed users alone
    assert er.score_lists(long_list, many, ks=(10, 5000))["recall@5000"] == pytest.approx(1 / 20000)
    wide = er.score_lists(lists.drop(columns="score"), truth, ks=(1, 2000))  # as wide as the longest list
    assert wide["recall@2000"] == 1.0 and wide["precision@2000"] == pytest.approx(1 / 2000)


def test_text_ids_and_an_empty_truth():
    lists = pd.DataFrame({"user_id": ["u1", "u1"], "movie_id": ["m1", "m2"]})
    got = er.score_lists(lists, pd.DataFrame({"user_id": ["u1"], "movie_id": ["m2"]}), ks=2)
    assert got["recall@2"] == 1.0 and got["mrr@2"] == 0.5
    empty = er.score_lists(lists, pd.DataFrame({"user_id": [], "movie_id": []}), ks=2)
    assert empty["users_evaluated"] == 0 and np.isnan(empty["ndcg@2"]) and empty["users_not_in_truth"] == 1


def test_recommendations_are_taken_as_their_frame_and_short_lists_are_said(trained_run, caplog):
    """A review: er.score_lists(m.recommend(users), truth) was refused (to_frame() unsaid), and 10-long lists
    scored at k=20 were scored down in silence."""
    m = trained_run.opened
    truth = m.recommend(m.user_ids[:5], k=3).to_frame()  # each user's own list is all of truth: every metric 1
    with caplog.at_level("WARNING", logger="embedrec"):
        got = er.score_lists(m.recommend(m.user_ids[:5], k=3), truth, ks=(3, 5))
    assert got["users_evaluated"] == 5 and got["ndcg@3"] == pytest.approx(1.0) and got["recall@5"] == 1.0
    assert got["precision@5"] == pytest.approx(3 / 5)
    assert [r.getMessage() for r in caplog.records] == [
        "score_lists: the longest list holds 3 movies; at k=5 a list counts as that long, its missing places as "
        "misses (score at k <= 3, or give longer lists)"]
    assert list(got)[3:7] == ["precision@3", "precision@5", "recall@3", "recall@5"]  # evaluate's order


def test_evaluate_scores_other_lists_beside_the_model(trained_run, tmp_path):
    """`evaluate --lists FILE` (and Model.evaluate(lists=...)): a peer's top-K file scored on the same split and
    users; the model's own export --topk-all file gives the model's figures; a list naming movies the user rated
    in training is warned; a missing file is one line."""
    from click.testing import CliRunner

    from embedrec.cli import main

    m = trained_run.opened
    ds = er.load_dataset(trained_run.cfg.data.prepared)
    own = tmp_path / "own.parquet"
    m.topk_all(own, k=10)
    train = ds.split_frame("train")
    seen = train.groupby("user_id").head(10).assign(rank=lambda d: d.groupby("user_id").cumcount() + 1)
    seen[["user_id", "movie_id", "rank"]].to_csv(tmp_path / "seen.csv", index=False)
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "10", "--format", "json", "--lists", str(own),
                                  "--lists", str(tmp_path / "seen.csv")])
    assert r.exit_code == 0, r.output
    got = __import__("json").loads(r.stdout)["splits"]["test"]
    for name in ("precision@10", "recall@10", "ndcg@10", "map@10", "mrr@10", "coverage@10"):
        assert got["own.parquet"][name] == pytest.approx(got["model"][name], abs=1e-12), name
    assert got["seen.csv"]["ndcg@10"] == 0.0  # the training movies are none of the test ones
    assert f"seen.csv: {len(seen):,} of its rows name a movie the user rated in train and valid, which the " \
        "model's lists leave out" in r.stderr, r.stderr
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "--lists", str(tmp_path / "none.csv")])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "none.csv" in r.stderr, r.stderr
    with pytest.raises(UsageError, match="lists: the name 'model' is the model's or a baseline's"):
        m.evaluate("test", lists={"model": pd.read_parquet(own)})


def test_evaluate_lists_takes_a_folder_of_parts(trained_run, tmp_path):
    """A review: `export --topk-all DIR` writes a folder of parts, which `--lists` refused ('is a directory'); a
    folder is read as one table of its files in name order ('.' and '_' names left out: the export's record,
    Spark's _SUCCESS), and scored as the same lists in one file are."""
    from click.testing import CliRunner

    from embedrec.cli import main

    m = trained_run.opened
    folder, one, parts = tmp_path / "own", tmp_path / "own.parquet", tmp_path / "parts"
    m.topk_all(folder, k=10)
    m.topk_all(one, k=10)
    frame = pd.read_parquet(one)
    parts.mkdir()
    frame.iloc[:len(frame) // 2].to_parquet(parts / "part-00000.parquet")  # a user's list cut across two parts
    frame.iloc[len(frame) // 2:].to_parquet(parts / "part-00001.parquet")
    (parts / "_SUCCESS").write_text("")
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "10", "--format", "json", "--lists", str(one),
                                  "--lists", str(folder), "--lists", str(parts)])
    assert r.exit_code == 0, r.output
    got = __import__("json").loads(r.stdout)["splits"]["test"]
    assert got["own"] == got["own.parquet"] == got["parts"], got
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "--lists", str(tmp_path / "empty")])
    assert r.exit_code == 1 and r.stderr == (f"error: {tmp_path / 'empty'}: a folder with no files of lists in it "
                                             "(export --topk-all DIR writes part-*.parquet there)\n"), r.stderr
    # a part that is not lists is named (a diff review: a README.md was read as an empty table; another export's
    # Parquet met as lists with missing ids, no file named); parts naming their columns otherwise are taken
    frame.iloc[len(frame) // 2:].rename(columns={"user_id": "userId"}).to_parquet(parts / "part-00001.parquet")
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "10", "--format", "json", "--lists",
                                  str(parts)])
    assert r.exit_code == 0 and __import__("json").loads(r.stdout)["splits"]["test"]["parts"] == got["parts"]
    (parts / "README.md").write_text("lists of the run\n")
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "--lists", str(parts)])
    assert r.exit_code == 1 and r.stderr == (f"error: {parts / 'README.md'}: not a file of lists (no user_id or "
                                             "movie_id column; its columns: lists of the run); a folder of lists "
                                             "holds only the lists' parts: move that file out of it\n"), r.stderr


def test_evaluate_lists_of_a_text_id_run_json_lines_aliases_and_per_user(tmp_path):
    """A diff review: a text-id run's own export --topk-all CSV could not be scored (its ids read as integers);
    --per-user left the lists out; .jsonl (recommend --users' format) and userId/movieId columns were refused; a
    list named as a baseline was refused only after the model was scored."""
    from click.testing import CliRunner

    from embedrec.cli import main

    rows = "".join(f"{u:03d},m{m:02d},{1 + (u * m) % 5}\n" for u in range(40) for m in range(25) if (u + m) % 3)
    (tmp_path / "r.csv").write_text("user_id,movie_id,rating\n" + rows)
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}", "--set",
            "data.id_type=auto", "--set", "model.dim=4", "--set", "train.als_dims=[]"]
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", "-q", str(tmp_path / "r.csv"), *sets]).exit_code == 0
    assert runner.invoke(main, ["train", "-q", *sets]).exit_code == 0
    own = tmp_path / "own.csv"
    assert runner.invoke(main, ["export", "-q", *sets, "--topk-all", str(own), "-k", "5"]).exit_code == 0
    frame = pd.read_csv(own, dtype=str)
    frame.rename(columns={"user_id": "userId", "movie_id": "itemId"}).to_json(tmp_path / "own.jsonl",
                                                                             orient="records", lines=True)
    r = runner.invoke(main, ["evaluate", *sets, "-k", "5", "--format", "json", "--lists", str(own), "--lists",
                             str(tmp_path / "own.jsonl"), "--per-user", str(tmp_path / "pu.csv")])
    assert r.exit_code == 0, r.output
    got = __import__("json").loads(r.stdout)["splits"]["test"]
    for name in ("own.csv", "own.jsonl"):
        assert got[name]["ndcg@5"] == pytest.approx(got["model"]["ndcg@5"], abs=1e-12), name
    pu = pd.read_csv(tmp_path / "pu.csv", dtype={"user_id": str})
    assert pu["own.csv:ndcg@5"].to_numpy() == pytest.approx(pu["ndcg@5"].to_numpy(), abs=1e-12)
    r = runner.invoke(main, ["evaluate", *sets, "-k", "5", "--format", "json", "--lists", "-"],
                      input=own.read_text())  # stdin (a shell review: '-' was no file)
    assert r.exit_code == 0 and __import__("json").loads(r.stdout)["splits"]["test"]["stdin"]["ndcg@5"] == \
        pytest.approx(got["model"]["ndcg@5"], abs=1e-12), r.output
    (tmp_path / "most_popular").write_text("user_id,movie_id\n")
    r = runner.invoke(main, ["evaluate", *sets, "--lists", str(tmp_path / "most_popular")])
    assert r.exit_code == 2 and r.stderr == ("error: lists: the name 'most_popular' is the model's or a baseline's; "
                                             "give the lists another\n"), r.stderr


def test_evaluate_says_unknown_movies_and_users_without_a_list_and_takes_sigterm(trained_run, tmp_path,
                                                                                 monkeypatch):
    """A shell review: lists of ids the dataset does not have (an id mapping's slip) scored 0 in silence and were
    counted in coverage; users without a list were said only in the JSON; a SIGTERM during evaluate left its
    --per-user file's lock and temporary, with no line."""
    import json
    import os
    import signal

    from click.testing import CliRunner

    from embedrec import list_metrics
    from embedrec.cli import main

    m = trained_run.opened
    lists = m.recommend(m.user_ids[:10], k=5).to_frame()[["user_id", "movie_id", "rank"]]
    lists.assign(movie_id=lists["movie_id"] + 10**6).to_csv(tmp_path / "unk.csv", index=False)
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "5", "--format", "json", "--lists",
                                  str(tmp_path / "unk.csv")])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["splits"]["test"]["unk.csv"]
    assert (got["rows_unknown_movie"], got["coverage@5"], got["ndcg@5"]) == (50, 0.0, 0.0)
    assert "unk.csv: 50 of its rows name a movie id this dataset does not have (e.g. " in r.stderr
    assert f"unk.csv: {got['users_without_list']:,} of the {got['users_evaluated']:,} users of test have no list" \
        in r.stderr and got["users_without_list"] > 0
    real = list_metrics.score_outside_lists

    def killed(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)
    monkeypatch.setattr(list_metrics, "score_outside_lists", killed)
    before = signal.signal(signal.SIGTERM, lambda *a: None)  # were evaluate not to take it: not pytest's death
    try:
        r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "--lists", str(tmp_path / "unk.csv"),
                                      "--per-user", str(tmp_path / "pu.csv")])
    finally:
        signal.signal(signal.SIGTERM, before)
    assert r.exit_code == 143 and r.stderr.splitlines()[-1] == (
        "terminated (SIGTERM): nothing half-written was left behind"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unk.csv"]


def test_evaluate_says_list_rows_of_users_the_dataset_does_not_have(trained_run, tmp_path):
    """A first-hour review: lists with rows for users the dataset does not have were scored without a word (their
    rows left out of every figure), where unknown movies, seen movies and users without a list were said. They are
    counted (rows_unknown_user) and said, the first few named; the figures are those of the lists without them."""



    m = trained_run.opened
    lists = m.recommend(m.user_ids[:10], k=5).to_frame()[["user_id", "movie_id", "rank"]]
    lists.to_csv(tmp_path / "good.csv", index=False)
    strangers = pd.DataFrame({"user_id": np.repeat(10**6 + np.arange(7), 2),
                              "movie_id": np.tile(lists["movie_id"].iloc[:2], 7), "rank": np.tile([1, 2], 7)})
    pd.concat([lists, strangers]).to_csv(tmp_path / "bad.csv", index=False)

    def evaluate(name):
        return _evaluate_lists(trained_run, tmp_path / name)

    good, err = evaluate("good.csv")
    assert good["rows_unknown_user"] == 0 and "does not have" not in err
    bad, err = evaluate("bad.csv")
    assert bad["rows_unknown_user"] == 14 and bad["ndcg@5"] == good["ndcg@5"]
    assert "bad.csv: 14 of its rows, the lists of 7 users, name a user this dataset does not have (1000000, 1000001, " \
        "1000002, 1000003, 1000004, ...): they are left out of every figure, as the lists of users with no test " \
        "rating are; where they are the dataset's users under other ids, map the lists' ids back to the dataset's " \
        "(ids are matched as written)\n" in err, err
    pd.concat([lists, strangers.head(1)]).to_csv(tmp_path / "one.csv", index=False)
    _, err = evaluate("one.csv")
    assert "one.csv: 1 of its rows, the lists of 1 user, name a user this dataset does not have (1000000): " in err


def test_evaluate_pairs_the_model_with_each_list_user_by_user(trained_run):
    """The paired differences reach the lists (Model.evaluate(lists=...)): the model against its own lists is a
    difference of 0 with an SE of 0 on every user (a tie); against a list of one movie each, the known answer is
    the mean of the per-user columns' differences, over the users both score (the beyond-accuracy metrics of a user
    without a list: none). A TrainedModel's evaluate gives the same figures as the run it saved."""
    m = trained_run.opened
    own = m.recommend(m.user_ids, k=5).to_frame()[["user_id", "movie_id", "rank"]]
    half = own[own["rank"] == 1].iloc[::2]  # half the users, one movie each
    res = m.evaluate("test", ks=5, lists={"own": own, "half": half}, per_user=True)
    paired, frame = res["paired"]["test"], res["per_user"]
    assert list(paired) == ["global_mean", "biases", "most_popular", "own", "half"]  # (an explicit run's)
    assert {v["difference"] for v in paired["own"].values()} == {0.0} and {v["se"] for v in paired["own"].values()} \
        == {0.0} and all(v["tie"] for v in paired["own"].values())
    for metric in ("ndcg@5", "novelty@5"):
        d = (frame[metric] - frame[f"half:{metric}"]).dropna()
        want = {"difference": d.mean(), "se": d.std(ddof=1) / math.sqrt(len(d)), "users": len(d)}
        assert {k: paired["half"][metric][k] for k in want} == pytest.approx(want, rel=1e-9)
    assert paired["half"]["ndcg@5"]["users"] == len(frame) > paired["half"]["novelty@5"]["users"]
    assert paired["half"]["ndcg@5"]["difference"] == pytest.approx(
        res["splits"]["test"]["model"]["ndcg@5"] - res["splits"]["test"]["half"]["ndcg@5"], abs=1e-12)
    assert "per_user" not in m.evaluate("test", ks=5)  # asked for only
    mem = trained_run.model.evaluate("test", ks=5, lists={"own": own, "half": half})
    assert json_ready(mem["paired"]["test"]) == pytest.approx(json_ready(paired), abs=1e-9, nan_ok=True)  # (a one-
    # movie list has no ild: no user to pair)
    with pytest.raises(UsageError, match=r"evaluate: metrics= chooses the per-user table's columns; give "
                                         r"per_user=True or a file"):
        m.evaluate("test", ks=5, metrics=("ndcg",))
    with pytest.raises(UsageError, match=r"metrics='nope': give metric names without @K"):
        m.evaluate("test", ks=5, per_user=True, metrics="nope")


def json_ready(nested: dict) -> dict:
    """{'most_popular/ndcg@5/difference': value, ...}: a nested dict of numbers flat, for pytest.approx."""
    out = {}
    for other, rows in nested.items():
        for metric, v in rows.items():
            out.update({f"{other}/{metric}/{k}": x for k, x in v.items()})
    return out


def test_evaluate_says_list_ids_that_are_the_dataset_s_written_another_way(tmp_path):
    """A review: a peer's lists whose movie ids had lost their leading zeros ('40' for the dataset's '0040') were
    said as 'N of its rows name a movie id this dataset does not have (e.g. '40')' and scored at half their NDCG.
    The warning now says they are the dataset's ids written another way, with a pair and how to write them (and so
    for users without a list whose ids are written otherwise); the ids are still matched as written."""
    import json

    from click.testing import CliRunner

    from embedrec.cli import main

    rng = np.random.default_rng(0)
    (tmp_path / "r.csv").write_text("user_id,movie_id\n" + "".join(
        f"{u:04d},{m:04d}\n" for u in range(60) for m in rng.choice(30, 10, replace=False)))
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = CliRunner().invoke(main, ["ingest", "-q", str(tmp_path / "r.csv"), *sets, "--set", "data.id_type=auto",
                                  "--set", "data.columns.rating=null"])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(main, ["train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=2"])
    assert r.exit_code == 0, r.stderr
    lists = pd.DataFrame({"user_id": np.repeat([f"{u:04d}" for u in range(60)], 3),
                          "movie_id": np.tile(["0001", "2", "3"], 60), "rank": np.tile([1, 2, 3], 60)})
    lists.to_csv(tmp_path / "peer.csv", index=False)

    def evaluate(path):
        r = CliRunner().invoke(main, ["evaluate", *sets, "-k", "3", "--format", "json", "--lists", str(path)])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["splits"]["test"][path.name], r.stderr

    got, err = evaluate(tmp_path / "peer.csv")
    assert got["rows_unknown_movie"] == 120
    assert "peer.csv: 120 of its rows name a movie id this dataset does not have (e.g. '2'), each a miss and left " \
        "out of coverage and the beyond-accuracy metrics; in all those rows the lists name 2 of the dataset's movies " \
        "with their ids written another way ('2' in the lists is '0002' in the dataset): write the lists' ids as the " \
        "dataset writes them ('0002' for '2') and evaluate again (ids are matched as written)" in err, err
    lists.assign(movie_id=lists["movie_id"].str.zfill(4)).to_csv(tmp_path / "fixed.csv", index=False)
    fixed, err = evaluate(tmp_path / "fixed.csv")  # written as the dataset writes them: every movie known
    assert fixed["rows_unknown_movie"] == 0 and "does not have" not in err and "written another way" not in err
    # users of the lists written otherwise: said of the users the dataset does not have (a first-hour review: those
    # were not said at all), the users without a list said apart; a movie no dataset id writes otherwise: the
    # advice as before
    lists.assign(user_id=[str(int(u)) if u < "0030" else u for u in lists["user_id"]],
                 movie_id=np.tile(["0001", "m2", "0003"], 60)).to_csv(tmp_path / "users.csv", index=False)
    got, err = evaluate(tmp_path / "users.csv")
    assert got["users_without_list"] > 0 and got["rows_unknown_user"] == 90
    assert "users.csv: 90 of its rows, the lists of 30 users, name a user this dataset does not have ('0', '1', '2', " \
        "'3', '4', ...): they are left out of every figure, as the lists of users with no test rating are; the lists " \
        "name 30 of the dataset's users with their ids written another way ('0' in the lists is '0000' in the " \
        "dataset): write the lists' ids as the dataset writes them ('0000' for '0') and evaluate again (ids are " \
        "matched as written)\n" in err, err
    assert f"users.csv: {got['users_without_list']:,} of the {got['users_evaluated']:,} users of test have no list, " \
        "each scored 0 (AUC an empty list's)\n" in err, err
    assert "name a movie id this dataset does not have (e.g. 'm2'), each a miss and left out of coverage and the " \
        "beyond-accuracy metrics; map the lists' ids back to the dataset's" in err, err


def test_evaluate_says_a_short_list_once_naming_itself_and_k(trained_run, caplog):
    """A notebook review: evaluate(lists=..., per_user=True) warned of 10-long lists at the run's k=20 twice, as
    score_lists, a function the caller never called."""
    m = trained_run.opened
    peer = m.recommend(m.user_ids[:20], k=10).to_frame()
    with caplog.at_level("WARNING", logger="embedrec"):
        m.evaluate("test", ks=(10, 20), lists={"peer": peer}, per_user=True)
    said = [r.getMessage() for r in caplog.records if "the longest list holds" in r.getMessage()]
    # (the library's words; a CliRunner test before it in this process leaves the CLI's: 'evaluate --lists', '-k')
    assert len(said) == 1 and said[0].endswith(
        "list 'peer' (k from ks=): the longest list holds 10 movies; at k=20 a list counts as that long, its missing "
        "places as misses (score at k <= 10, or give longer lists)".replace("ks=", "ks=" if "(lists=" in said[0]
                                                                             else "-k")), said
    assert said[0].startswith(("evaluate(lists=...): ", "evaluate --lists: "))


def test_a_text_file_of_lists_is_read_by_its_first_lines_separator_and_its_columns_named(tmp_path):
    """A first-hour review: `recommend --users ... > mylists.csv` (TSV to a pipe) was 'not a readable table'
    under its .csv name, a ';' file likewise, and a file without the id columns answered with a pandas rename for
    Python. The separator is read off the first line (tab, ';' in a line without ',', else ','), gzip too, and a
    file without the columns is refused naming it and the names taken."""
    import gzip

    from embedrec.errors import DataError
    from embedrec.list_metrics import read_lists

    want = pd.DataFrame({"user_id": ["196", "196"], "movie_id": ["50", "181"], "rank": ["1", "2"]})
    for name, text in (("tabs.csv", "user_id\tmovie_id\trank\n196\t50\t1\n196\t181\t2\n"),
                       ("semi.csv", "user_id;movie_id;rank\n196;50;1\n196;181;2\n"),
                       ("commas.tsv", "user_id,movie_id,rank\n196,50,1\n196,181,2\n"),
                       ("aliases.txt", "userId\titemId\trank\n196\t50\t1\n196\t181\t2\n")):
        (tmp_path / name).write_text(text)
        pd.testing.assert_frame_equal(read_lists(tmp_path / name), want, obj=name)
    (tmp_path / "g.csv.gz").write_bytes(gzip.compress(b"user_id\tmovie_id\trank\n196\t50\t1\n196\t181\t2\n"))
    pd.testing.assert_frame_equal(read_lists(tmp_path / "g.csv.gz"), want)
    import bz2
    import lzma

    for name, squeeze in (("b.tsv.bz2", bz2.compress), ("x.tsv.xz", lzma.compress)):  # (a review: split at ',')
        (tmp_path / name).write_bytes(squeeze(b"user_id\tmovie_id\trank\n196\t50\t1\n196\t181\t2\n"))
        pd.testing.assert_frame_equal(read_lists(tmp_path / name), want, obj=name)
    (tmp_path / "bad.csv").write_text("u\tm\n196\t50\n")
    with pytest.raises(DataError, match=r"bad.csv: not a file of lists \(no user_id or movie_id column; its columns: "
                                        r"u, m\); name its columns user_id \(or userid, user, uid\); movie_id"):
        read_lists(tmp_path / "bad.csv")


def test_a_file_of_lists_not_in_utf8_is_read_as_windows_1252_said_and_utf16_by_its_mark(tmp_path, caplog):
    """A review: a --lists file in latin-1 (a title column beside the ids) was refused as 'not a readable table'
    with the decoder's offset, over a column no score reads. It is read as Windows-1252 (Latin-1's letters), said
    in one warning naming its first such line; a UTF-16 file (Excel's 'Unicode text') by its byte-order mark; a
    UTF-8 one with its mark as it is."""
    import bz2
    import gzip
    import lzma

    from embedrec.list_metrics import read_lists

    text = "user_id,movie_id,rank,title\nmarie,50,1,Star Wars\nzo\u00e9,181,1,Am\u00e9lie\n"
    want = pd.DataFrame({"user_id": ["marie", "zo\u00e9"], "movie_id": ["50", "181"], "rank": ["1", "1"],
                         "title": ["Star Wars", "Am\u00e9lie"]})
    for name, data in (("latin1.csv", text.encode("latin-1")), ("utf16.csv", text.encode("utf-16")),
                       ("sig.csv", text.encode("utf-8-sig")), ("l.csv.gz", gzip.compress(text.encode("latin-1"))),
                       ("l.csv.bz2", bz2.compress(text.encode("latin-1"))),
                       ("l.csv.xz", lzma.compress(text.encode("latin-1")))):
        caplog.clear()
        (tmp_path / name).write_bytes(data)
        with caplog.at_level(logging.WARNING, "embedrec"):
            pd.testing.assert_frame_equal(read_lists(tmp_path / name), want, obj=name)
        said = [r.getMessage() for r in caplog.records]
        if "latin1" in name or name.startswith("l.csv."):
            assert said == [f"{tmp_path / name}:3 is not UTF-8 (byte 0xe9): read as Windows-1252, Excel's Western "
                            "encoding, where it is '\u00e9'; save the file as UTF-8 if it is in another"], name
        else:
            assert said == [], name


def test_a_pipe_of_lists_is_read_once(tmp_path):
    """A review: `evaluate --lists <(cmd)` (a pipe named as a path) lost its first lines to the separator's read
    and was then read without them; it is read once, as standard input is, a Parquet stream too."""
    import os
    import threading

    from embedrec.list_metrics import read_lists

    want = pd.DataFrame({"user_id": ["196", "196"], "movie_id": ["50", "181"], "rank": ["1", "2"]})
    for data in (b"user_id\tmovie_id\trank\n196\t50\t1\n196\t181\t2\n", None):
        if data is None:
            want.to_parquet(tmp_path / "l.parquet")
            data = (tmp_path / "l.parquet").read_bytes()
        fifo = tmp_path / "fifo"
        if fifo.exists():
            fifo.unlink()
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(data,))
        writer.start()
        got = read_lists(fifo)
        writer.join(10)
        pd.testing.assert_frame_equal(got.astype(str), want)


def test_evaluate_lists_from_a_json_array_a_pipe_s_name_stdin_twice_and_a_missing_file(trained_run, tmp_path):
    """A shell review: `recommend --format json | evaluate --lists -` was a tokenizing error; `--lists - --lists -`
    read nothing the second time ('No columns to parse'); `--lists <(cmd)` was the row '63'; a missing file exited
    2 (click's), where a missing input is 1. Now: read, refused in one line, 'lists1', and 1."""
    import json
    import os
    import threading

    from click.testing import CliRunner

    from embedrec.cli import main

    m = trained_run.opened
    users = [str(u) for u in m.user_ids[:20]]
    base = ["evaluate", *trained_run.sets, "-k", "5", "--metrics", "ndcg", "--format", "json", "-q"]
    array = CliRunner().invoke(main, ["recommend", "--users", "-", "-k", "5", "--format", "json", "-q",
                                      *trained_run.sets], input="\n".join(users) + "\n").stdout
    tsv = CliRunner().invoke(main, ["recommend", "--users", "-", "-k", "5", "-q", *trained_run.sets],
                             input="\n".join(users) + "\n").stdout
    a = CliRunner().invoke(main, [*base, "--lists", "-"], input=array)
    b = CliRunner().invoke(main, [*base, "--lists", "-"], input=tsv)
    assert a.exit_code == 0 and b.exit_code == 0, a.stderr + b.stderr
    got, want = (json.loads(r.stdout)["splits"]["test"]["stdin"] for r in (a, b))
    assert got["ndcg@5"] == want["ndcg@5"] and got["users_without_list"] == want["users_without_list"]
    r = CliRunner().invoke(main, [*base, "--lists", "-", "--lists", "-"], input=tsv)
    assert r.exit_code == 2 and "--lists - is given twice: standard input is read once" in r.stderr, r.stderr
    r = CliRunner().invoke(main, [*base, "--lists", str(tmp_path / "nope.csv")])
    assert r.exit_code == 1 and r.stderr.startswith(f"error: {tmp_path / 'nope.csv'}: no such file"), r.stderr
    rd, wr = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(wr, tsv.encode()), os.close(wr)))
    writer.start()
    try:
        (tmp_path / "other.tsv").write_text(tsv)
        r = CliRunner().invoke(main, [*base, "--lists", str(tmp_path / "other.tsv"), "--lists", f"/dev/fd/{rd}"])
    finally:
        writer.join(10)
        os.close(rd)
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)["splits"]["test"]
    assert "lists2" in rows and "other.tsv" in rows and rows["lists2"]["ndcg@5"] == want["ndcg@5"]


def test_a_k_beyond_the_catalogue_ranks_the_whole_catalogue_as_the_model_row_does():
    """A review: lists at k 2000 of a 1,650-movie catalogue scored auc@2000 1.16 and another precision than
    evaluate's model row, which ranks the whole catalogue at such a k (evaluate.norm_ks) and keeps its name."""
    lists = pd.DataFrame({"user_id": [1] * 5 + [2] * 5, "movie_id": [10, 11, 12, 13, 14] * 2,
                          "rank": [1, 2, 3, 4, 5] * 2})
    truth = pd.DataFrame({"user_id": [1, 2, 2], "movie_id": [12, 10, 14]})
    got = er.score_lists(lists, truth, ks=(5, 20), catalogue=5)
    for name in ("precision", "recall", "ndcg", "map", "hitrate", "mrr", "auc"):
        assert got[f"{name}@20"] == got[f"{name}@5"], name
    assert got["auc@20"] <= 1.0 and got["precision@20"] == pytest.approx((1 / 5 + 2 / 5) / 2)


def test_evaluate_takes_a_frame_of_lists_under_the_ids_other_names(trained_run):
    """A review: m.evaluate(lists={'x': frame}) with userId/movieId columns (which score_lists and the CLI take)
    raised a bare KeyError; it scores them as under user_id/movie_id."""
    m = trained_run.opened
    frame = m.recommend([int(u) for u in m.user_ids[:40]], k=10).to_frame()[["user_id", "movie_id", "rank"]]
    plain = m.evaluate("test", ks=10, lists={"x": frame})["splits"]["test"]["x"]
    other = m.evaluate("test", ks=10, lists={"x": frame.rename(columns={"user_id": "userId", "movie_id": "movieId"})})
    assert other["splits"]["test"]["x"] == plain


def test_evaluate_lists_scores_a_file_with_a_few_ids_no_integer_as_misses(trained_run, tmp_path):
    """A review (session 63, left then): on an integer-id dataset one movie id in a lists file that is no integer
    (a word, an empty field, '1.0') refused the whole file in score_lists' words (lists.astype(...)), where the docs
    count an id the dataset does not have as a miss. The other rows are scored; those rows are misses, counted and
    said; '1.0' is the dataset's 1 (a whole float, as --truth reads it; session 68); a wholly textual file is still
    refused."""

    from click.testing import CliRunner

    from embedrec.cli import main

    m = trained_run.opened
    lists = m.recommend(m.user_ids[:20], k=5).to_frame()[["user_id", "movie_id", "rank"]]
    lists.to_csv(tmp_path / "good.csv", index=False)
    bad = lists.astype({"movie_id": object})
    first = lists["movie_id"].iloc[0]
    bad.iloc[0, 1], bad.iloc[1, 1], bad.iloc[2, 1] = "oops", "", f"{first}.0"
    bad.to_csv(tmp_path / "bad.csv", index=False)

    def run(name):
        return _evaluate_lists(trained_run, tmp_path / name)

    good, _ = run("good.csv")
    got, err = run("bad.csv")
    assert got["rows_unknown_movie"] == 2 and good["rows_unknown_movie"] == 0  # ('X.0': the integer X, as --truth)
    assert got["users_evaluated"] == good["users_evaluated"]
    assert got["ndcg@5"] <= good["ndcg@5"] and got["recall@5"] <= good["recall@5"]
    assert "bad.csv: 2 of its rows name a movie id this dataset does not have (e.g. 'oops')" in err, err
    assert "astype" not in err
    # the same rows scored from Python, with the three rows' movies as ids no truth holds: the same figures
    from embedrec.data.dataset import load_dataset

    ds = load_dataset(trained_run.cfg.data.prepared)
    third = lists["movie_id"].to_numpy().copy()
    third[2] = first  # ('X.0' on the third row: movie X, the first row's)
    mine = er.score_lists(lists.assign(movie_id=np.where(np.arange(len(lists)) < 2, -7 - np.arange(len(lists)), third)),
                          ds.split_frame("test"), ks=(5,), catalogue=ds.n_movies)
    assert math.isclose(got["ndcg@5"], mine["ndcg@5"]) and math.isclose(got["recall@5"], mine["recall@5"])
    lists.assign(movie_id="m" + lists["movie_id"].astype(str)).to_csv(tmp_path / "words.csv", index=False)
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "5", "--lists", str(tmp_path / "words.csv")])
    assert r.exit_code != 0 and "ids are texts" in r.stderr, r.output


def test_evaluate_truth_scores_the_run_and_other_lists_on_a_split_made_elsewhere(trained_run, tmp_path):
    """Own-data reviews: a split made elsewhere could be scored from Python alone (er.score_lists); evaluate --lists
    needed a dataset whose test split held the rows. evaluate --truth FILE scores the run's served lists for the
    file's users and each --lists file on its pairs, paired user by user. Known answer: the run's own test split
    given as the file scores what evaluate scores on it (the same lists: train and valid left out), and the run's
    own export given as --lists is a paired difference of 0 (a catalogue without twins: --truth scores the served
    lists, which leave out a rated film's other ids, evaluate the peers' way); a pair the run was trained on is said."""
    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.data.dataset import load_dataset

    ds = load_dataset(trained_run.cfg.data.prepared)
    test = ds.split_frame("test")[["user_id", "movie_id"]]
    f = tmp_path / "held_out.csv"
    test.to_csv(f, index=False)
    runner = CliRunner()
    own = runner.invoke(main, ["evaluate", *trained_run.sets, "-k", "10", "--format", "json"])
    assert own.exit_code == 0, own.stderr
    want = json.loads(own.stdout)["splits"]["test"]["model"]
    top = tmp_path / "top.parquet"
    assert runner.invoke(main, ["export", "-q", *trained_run.sets, "--topk-all", str(top), "-k", "10"]).exit_code == 0
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "--lists", str(top), "-k", "10",
                             "--format", "json"])
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    for m in ("ndcg@10", "recall@10", "precision@10"):
        assert got["splits"]["truth"]["model"][m] == pytest.approx(want[m], abs=1e-9), m
        assert got["splits"]["truth"]["top.parquet"][m] == pytest.approx(want[m], abs=1e-9), m
        assert got["paired"]["truth"]["top.parquet"][m]["difference"] == pytest.approx(0.0, abs=1e-12)
    assert f"scored on {f}: {len(test):,} pairs of {test.user_id.nunique():,} users" in r.stderr, r.stderr
    train = ds.split_frame("train")[["user_id", "movie_id"]].head(3)  # pairs the run was trained on: said
    pd.concat([test, train]).to_csv(f, index=False)
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "-k", "10"])
    assert r.exit_code == 0 and f"{f}: 3 of its {len(test) + 3:,} pairs are movies the user rated in the data the " \
        "run was trained on" in r.stderr, r.stderr
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "--against", str(tmp_path)])
    assert r.exit_code == 2 and "--against does not apply to --truth" in r.stderr, r.stderr
    # ids written as whole floats (pandas' for a column that held a NaN) are the integers they are; a file of none
    # of the run's users is refused, not scored 0 (a diff review: every figure 0, exit 0)
    test.astype(float).to_csv(f, index=False)
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "-k", "10", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["splits"]["truth"]["model"]["ndcg@10"] == \
        pytest.approx(want["ndcg@10"], abs=1e-9), r.stderr
    f.write_text("user_id,movie_id\nnobody,1\n")
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f)])
    assert r.exit_code == 2 and "none of its 1 users is a user of this run" in r.stderr, r.stderr
    # a second review: no movie of the run (another catalogue's ids) refused too; a row without an id named; ids
    # half written as whole floats read alike; a missing file said of the pairs
    test.assign(movie_id=test.movie_id + 10**6).to_csv(f, index=False)
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f)])
    assert r.exit_code == 2 and "none of its movies is a movie of this run" in r.stderr, r.stderr
    f.write_text("user_id,movie_id\n" + "".join(f"{u}.0,{m}\n" if i % 2 else f"{u},{m}.0\n"
                                               for i, (u, m) in enumerate(zip(test.user_id, test.movie_id))) + "1,\n")
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f)])
    assert r.exit_code == 2 and f"row {len(test) + 1} has no movie_id; drop the rows with a missing id" in r.stderr
    f.write_text("\n".join(f.read_text().splitlines()[:-1]) + "\n")
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "-k", "10", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["splits"]["truth"]["model"]["ndcg@10"] == \
        pytest.approx(want["ndcg@10"], abs=1e-9), r.stderr
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(tmp_path / "gone.csv")])
    assert r.exit_code == 1 and "gone.csv: no such file; give the held-out pairs' file" in r.stderr, r.stderr


def test_evaluate_truth_shows_most_popular_and_names_a_bad_file(trained_run, tmp_path):
    """A first-hour review: `evaluate --truth` printed no most_popular, the sanity check evaluate prints beside
    every model; a bad --lists file was refused as 'score_lists: ...' naming no file of several, with a pandas
    fix; whole-float ids ('1.0') read by --truth were refused by --lists; a bad --truth file was 'not a file of
    lists'. RecBole's own test file (user_id:token, item_id:token) is read as held-out pairs."""
    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.data.dataset import load_dataset

    ds = load_dataset(trained_run.cfg.data.prepared)
    test = ds.split_frame("test")[["user_id", "movie_id"]]
    f = tmp_path / "held_out.csv"
    test.to_csv(f, index=False)
    runner = CliRunner()
    own = json.loads(runner.invoke(main, ["evaluate", *trained_run.sets, "-k", "10", "--format", "json"]).stdout)
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "-k", "10", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    # known answer: the movies most rated in train and valid (what the run serves as popular), each user's own
    # train and valid movies left out, scored on the file's pairs
    seen = pd.concat([ds.split_frame(s)[["user_id", "movie_id"]] for s in ("train", "valid")])
    order = seen["movie_id"].value_counts(sort=False)
    order = order.reindex(ds.movies["movie_id"]).fillna(0)
    ranked = order.index.to_numpy()[np.argsort(-order.to_numpy(), kind="stable")]
    rated = seen.groupby("user_id")["movie_id"].agg(set)
    rows = [(u, m, r + 1) for u in test["user_id"].unique()
            for r, m in enumerate([m for m in ranked if m not in rated.get(u, set())][:10])]
    want = er.score_lists(pd.DataFrame(rows, columns=["user_id", "movie_id", "rank"]), test, ks=(10,))
    for m in ("ndcg@10", "recall@10"):
        assert got["splits"]["truth"]["most_popular"][m] == pytest.approx(want[m], abs=1e-9), m
    assert "most_popular" in got["paired"]["truth"] and own["splits"]["test"]["most_popular"]
    top = tmp_path / "top.csv"
    assert runner.invoke(main, ["export", "-q", *trained_run.sets, "--topk-all", str(top), "-k", "10"]).exit_code == 0
    lists = pd.read_csv(top)[["user_id", "movie_id", "rank"]]
    lists.assign(user_id=lists.user_id.astype(float)).to_csv(tmp_path / "float.csv", index=False)
    lists.assign(rank=lists["rank"] - 1).to_csv(tmp_path / "rank0.csv", index=False)
    pd.concat([lists, lists.head(1).assign(rank=11)]).to_csv(tmp_path / "dup.csv", index=False)
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "-k", "10", "--lists", str(top), "--lists",
                             str(tmp_path / "float.csv"), "--format", "json"])
    assert r.exit_code == 0, r.stderr  # whole floats: the integers they are, as --truth reads them
    row = json.loads(r.stdout)["splits"]["test"]
    assert row["float.csv"]["ndcg@10"] == row["top.csv"]["ndcg@10"] and row["float.csv"]["rows_unknown_user"] == 0
    for name, said in (("rank0.csv", "rank0.csv: lists' 'rank' column holds a value that is not 1, 2, ... or one "
                                     "rank twice for a user (row 1: '0')"),
                       ("dup.csv", f"dup.csv: user {lists.user_id[0]}'s list holds movie {lists.movie_id[0]} twice "
                                   f"(row {len(lists) + 1})")):
        for truth in ([], ["--truth", str(f)]):
            r = runner.invoke(main, ["evaluate", *trained_run.sets, *truth, "-k", "10", "--lists", str(top),
                                     "--lists", str(tmp_path / name)])
            assert r.exit_code == 2 and f"error: {said}" in r.stderr and "score_lists" not in r.stderr, r.stderr
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(tmp_path / "bad.csv")])
    assert r.exit_code != 0 and "bad.csv: not a file of held-out pairs (no user_id or movie_id column" in r.stderr
    assert "rank or score" not in r.stderr
    test.rename(columns={"user_id": "user_id:token", "movie_id": "item_id:token"}).to_csv(
        tmp_path / "ml.test.inter", sep="\t", index=False)
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "--truth", str(tmp_path / "ml.test.inter"), "-k", "10",
                             "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["splits"]["truth"]["model"] == got["splits"]["truth"]["model"]


def test_evaluate_says_the_served_lists_leave_out_a_films_other_ids(tmp_path):
    """A first-hour review: evaluate's model row (0.451043 on ML-100K) was not what the served lists score
    (0.450775: they leave out a rated film's other id too), and only the --truth section of the docs said so: where
    the run's catalogue lists a film under several ids, evaluate says it beside what it excluded."""
    from click.testing import CliRunner

    from embedrec.cli import main

    rows = [(u, m, 4, 1000 + u * 10 + m) for u in range(1, 41) for m in range(1, 16) if (u + m) % 3]
    pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"]).to_csv(tmp_path / "r.csv", index=False)
    titles = [f"Film {m} (1999)" if m != 9 else "Film 8 (1999)" for m in range(1, 16)]  # 8 and 9: one film
    pd.DataFrame({"movie_id": range(1, 16), "title": titles, "genres": "Drama"}).to_csv(tmp_path / "m.csv", index=False)
    prep, run = tmp_path / "p", tmp_path / "run"
    assert CliRunner().invoke(main, ["ingest", str(tmp_path / "r.csv"), "--set", f"data.movies={tmp_path / 'm.csv'}",
                                     "-o", str(prep), "-q"]).exit_code == 0
    assert CliRunner().invoke(main, ["train", "--set", f"data.prepared={prep}", "--run", str(run), "-q", "--set",
                                     "model.dim=4", "--set", "train.als_dims=[]"]).exit_code == 0
    r = CliRunner().invoke(main, ["evaluate", "--run", str(run), "-k", "5"])
    assert r.exit_code == 0 and "leave out the other ids of a film the user rated (1 film here is listed under " \
        "several ids)" in r.stderr, r.stderr


def test_a_user_without_a_list_gets_an_empty_lists_auc():
    """An evaluation review: a user of truth with no list scored AUC 0, where the documented definition (its K
    places misses) gives (N - K) / 2N; every other metric 0."""
    from embedrec.list_metrics import score_lists

    truth = pd.DataFrame({"user_id": [1, 1, 2], "movie_id": [10, 11, 12]})
    lists = pd.DataFrame({"user_id": [1], "movie_id": [10], "rank": [1]})
    empty = pd.DataFrame({"user_id": [2, 2], "movie_id": [98, 99], "rank": [1, 2]})  # two misses: user 2's as empty
    per = score_lists(lists, truth, ks=(2,), per_user=True, catalogue=20).set_index("user_id")
    alone = score_lists(pd.concat([lists, empty]), truth, ks=(2,), per_user=True, catalogue=20).set_index("user_id")
    n, k = 20 - 1, 2  # user 2: one relevant movie, N the other 19
    assert per.loc[2, "auc@2"] == pytest.approx((n - k) / (2 * n)) == pytest.approx(alone.loc[2, "auc@2"])
    assert per.loc[2, "ndcg@2"] == 0 and per.loc[2, "recall@2"] == 0


def test_an_unknown_movie_is_left_out_of_coverage_not_refused():
    """An evaluation review: lists covering the whole catalogue plus one id the dataset does not have were refused
    ('catalogue=1,650, but the lists' top 20 name 1,651 distinct movies'), where the docs say such an id is a miss
    and not in coverage."""
    from embedrec.list_metrics import _score

    truth = pd.DataFrame({"user_id": [1, 2], "movie_id": [1, 2]})
    lists = pd.DataFrame({"user_id": [1, 1, 2, 2], "movie_id": [1, 2, 3, 999], "rank": [1, 2, 1, 2]})
    got = _score(lists, truth, (2,), per_user=False, catalogue=3, known=[1, 2, 3])
    assert got["coverage@2"] == 1.0 and got["recall@2"] == pytest.approx(0.5)
    with pytest.raises(UsageError, match="name 4 distinct movies"):
        _score(lists, truth, (2,), per_user=False, catalogue=3)  # score_lists' own check of a wrong catalogue


def test_truth_pairs_of_movies_the_run_lacks_are_counted_and_said(trained_run, caplog):
    """An evaluation review: --truth pairs naming a movie the dataset lacks were scored as misses with no word and
    no count."""
    import logging

    from embedrec.list_metrics import score_on_truth

    m = trained_run.opened
    users = [int(u) for u in m.user_ids[:3]]
    truth = pd.DataFrame({"user_id": users + users[:1], "movie_id": [int(m.movie_ids[0])] * 3 + [10 ** 9]})
    with caplog.at_level(logging.WARNING, "embedrec"):
        got = score_on_truth(m, truth, ks=(10,))
    assert got["truth"]["pairs_unknown_movie"] == 1
    assert "1 of its 4 pairs name a movie this run does not have (e.g. 1000000000)" in caplog.text


def test_users_without_a_list_cost_no_users_x_k_matrix():
    """A diff review: the empty lists' AUC made a users x K matrix again (20,000 users without a list beside one
    5,000-long list: 2.46 GB peak, where the red team's fix had kept it to 0.12 GB)."""
    import tracemalloc

    from embedrec.list_metrics import score_lists

    truth = pd.DataFrame({"user_id": np.arange(20000), "movie_id": np.arange(20000) % 6000})
    lists = pd.DataFrame({"user_id": 0, "movie_id": np.arange(5000), "rank": np.arange(1, 5001)})
    tracemalloc.start()
    got = score_lists(lists, truth, ks=(5000,), catalogue=6000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200e6, f"{peak / 1e6:.0f} MB"
    n = 6000 - 1  # every user but 0: one relevant movie, no list
    assert got["auc@5000"] == pytest.approx(((n - 5000) / (2 * n) * 19999 + 1.0) / 20000, rel=1e-6)


def test_an_unknown_movie_at_rank_1_leaves_coverage_at_1_empty(trained_run):
    """A diff review: evaluate's lists whose rank 1 was an id the dataset lacks had their known rows ranked again,
    the movie at rank 2 counted in coverage@1."""
    m = trained_run.opened
    users = [int(u) for u in m.user_ids[:50]]
    frame = pd.DataFrame({"user_id": np.repeat(users, 2), "movie_id": [10 ** 9, int(m.movie_ids[0])] * len(users),
                          "rank": [1, 2] * len(users)})
    got = m.evaluate("test", ks=(1, 2), lists={"peer": frame}, notes=False)["splits"]["test"]["peer"]
    assert got["coverage@1"] == 0.0 and got["coverage@2"] == pytest.approx(1 / m.n_movies)


def test_an_export_part_carries_page_checksums_and_a_damaged_copy_of_it_is_refused(trained_run, tmp_path):
    """A part of export --topk-all copied out of its folder had nothing to check it by (the folder's sealed record
    stays behind): its pages carry checksums (as the dataset's Parquet files do), and evaluate --lists refuses a
    copy whose page bytes changed, saying it is damaged, where one byte of a score had been read as it was."""
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from embedrec.cli import main

    m = trained_run.opened
    top = tmp_path / "top"
    m.topk_all(top, k=5)
    part = next(top.glob("part-*"))
    copy = tmp_path / "copy.parquet"
    data = bytearray(part.read_bytes())
    meta = pq.ParquetFile(part).metadata.row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "score")
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    data[start + chunk.total_compressed_size - 3] ^= 0x10  # (its last page's values: a page header leads a page)
    copy.write_bytes(bytes(data))
    r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "5", "--lists", str(copy)])
    assert r.exit_code == 1 and r.stderr == (f"error: {copy}: a damaged Parquet file (a page's checksum does not "
                                             "match its bytes); write it again (embedrec export --topk-all), or copy "
                                             "it again from where it was written\n"), r.stderr


def test_evaluate_refuses_a_damaged_export_nul_text_long_ids_and_an_empty_truth_and_writes_json_null(trained_run,
                                                                                                     tmp_path):
    """A red team (session 70): a part of an export folder changed after its record was sealed was scored, exit 0
    (verify refused it); a file of NUL bytes took 100x its size in memory (/dev/zero until killed); an id of 5,000
    digits was an internal error; a header-only --truth scored nothing, exit 0; and --format json wrote a bare NaN
    where a figure has no value (one scored user: no standard error)."""
    import math

    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.data.dataset import load_dataset

    def run(*args):
        return CliRunner().invoke(main, ["evaluate", *trained_run.sets, "-k", "5", *args])

    m = trained_run.opened
    top = tmp_path / "top"
    m.topk_all(top, k=5)
    assert run("--lists", str(top), "--metrics", "ndcg").exit_code == 0
    part = next(top.glob("part-*"))
    frame = pd.read_parquet(part)
    frame[frame["rank"] <= 2].to_parquet(part, index=False)
    r = run("--lists", str(top), "--metrics", "ndcg")
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.startswith(f"error: export file '{part}' is missing or "
                                                                       "does not match its checksum"), r.stderr
    zeros = tmp_path / "z.csv"
    zeros.write_bytes(b"\0" * (3 << 20))
    for option in ("--lists", "--truth"):
        r = run(option, str(zeros))
        assert r.exit_code == 1 and r.stderr == (f"error: {zeros}: binary data, not a text table (NUL bytes from byte "
                                                 "offset 0); give CSV/TSV text, or a Parquet file named .parquet\n")
    user = str(int(m.user_ids[0]))
    long = tmp_path / "long.csv"
    long.write_text("user_id,movie_id,rank\n" + "7" * 5000 + f",1,1\n{user},1,1\n9999999999999999999,1,1\n")
    r = run("--lists", str(long), "--metrics", "ndcg")
    assert r.exit_code == 0 and "name a user this dataset does not have ('7777" in r.stderr and "[...]" in r.stderr
    assert "'9999999999999999999'" in r.stderr  # (beyond int64: no id of the dataset's, never wrapped round)
    r = run("--truth", str(long))
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {long}: row 1: user_id '7777") and \
        "is an integer beyond 64 bits, which no id of this run's is" in r.stderr, r.stderr
    header = tmp_path / "header.csv"
    header.write_text("user_id,movie_id\n")
    r = run("--truth", str(header))
    assert r.exit_code == 2 and r.stderr == f"error: {header}: holds no pairs (a header alone, or no rows); give the " \
                                            "held-out (user_id, movie_id) pairs to score the lists on\n"
    one = tmp_path / "one.csv"
    ds = load_dataset(trained_run.cfg.data.prepared)
    pair = ds.split_frame("test")[["user_id", "movie_id"]].iloc[:1]
    pair.to_csv(one, index=False)
    r = run("--truth", str(one), "--metrics", "ndcg", "--format", "json")
    assert r.exit_code == 0, r.stderr

    def no_nan(text):
        raise AssertionError(f"not JSON: {text}")

    got = json.loads(r.stdout, parse_constant=no_nan)
    assert got["paired"]["truth"]["most_popular"]["ndcg@5"]["se"] is None
    assert not math.isnan(got["splits"]["truth"]["model"]["ndcg@5"])


def test_a_pairs_exclude_file_names_the_line_of_a_movie_it_refuses(trained_run, tmp_path):
    """A red team: a pairs --exclude @FILE's movie that is no id of the model was refused without FILE:LINE."""
    from click.testing import CliRunner

    from embedrec.cli import main

    m = trained_run.opened
    user, movie = int(m.user_ids[0]), int(m.movie_ids[0])
    f = tmp_path / "since.csv"
    f.write_text(f"user_id,movie_id\n{user},{movie}\n{user},319.5\n")
    for mode in (["--user", str(user)], ["--users", "-"]):
        r = CliRunner().invoke(main, ["recommend", *trained_run.sets, *mode, "--exclude", f"@{f}"], input=f"{user}\n")
        assert r.exit_code == 2 and r.stderr.startswith(f"error: --exclude {f}:3, user {user}'s movies: '319.5' is "
                                                        "not a movie id of this model"), r.stderr


def test_a_users_stream_refused_mid_input_still_counts_the_unknown_ids_it_skipped(trained_run):
    """A red team: past the first five unknown ids named, the count of all of them is said at the end; a line
    refused later ended the command without it, so two skipped users went unsaid."""
    from click.testing import CliRunner

    from embedrec.cli import main

    user = str(int(trained_run.opened.user_ids[0]))
    r = CliRunner().invoke(main, ["recommend", *trained_run.sets, "--users", "-", "-k", "1"],
                           input=user + "\n" + "".join(f"-{i}\n" for i in range(1, 8)) + "7,\n")
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert lines[-2] == "7 unknown users skipped in all (the first 5 are named above)", r.stderr
    assert lines[-1].startswith("error: <stdin>:9: '7,' is not a user id")


def test_evaluate_truth_refuses_metrics_it_does_not_score_and_says_the_paired_rows(trained_run, tmp_path):
    """A first-hour review: `--truth --metrics novelty,gini` printed nothing, exit 0; `--metrics rmse` on an
    explicit run said it is implicit; and the line on what model-OTHER is, and which are ties, was not said."""
    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.data.dataset import load_dataset

    f = tmp_path / "test.csv"
    load_dataset(trained_run.cfg.data.prepared).split_frame("test")[["user_id", "movie_id"]].to_csv(f, index=False)

    def run(*args):
        return CliRunner().invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "-k", "5", *args])

    for chosen in ("novelty,gini", "rmse", "mae,arp"):
        r = run("--metrics", chosen)
        assert r.exit_code == 2 and r.stdout == "" and "--truth scores the lists on the file's pairs by the ranking " \
            "metrics" in r.stderr and "implicit" not in r.stderr, r.stderr
    r = run("--metrics", "ndcg,novelty")
    assert r.exit_code == 0 and "ndcg@5" in r.stdout and "novelty" not in r.stdout
    assert "--metrics: novelty left out: --truth scores" in r.stderr
    assert "model-OTHER: the model's metric minus OTHER's, paired user by user" in r.stderr


def test_a_truth_file_with_a_few_ids_no_integer_leaves_their_pairs_out_and_says_so(trained_run, tmp_path):
    """A diff review: one user id 'abc' (or a movie id 'abc', '0050') among integers on a run of integer ids failed
    the whole --truth evaluation, blaming most_popular; those pairs are left out now, said in a warning."""
    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.data.dataset import load_dataset

    test = load_dataset(trained_run.cfg.data.prepared).split_frame("test")[["user_id", "movie_id"]]
    f = tmp_path / "t.csv"
    test.to_csv(f, index=False)
    plain = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f), "-k", "5", "--format", "json"])
    assert plain.exit_code == 0, plain.stderr
    for extra, side in (("abc,1\n", "user"), (f"{int(test.user_id.iloc[0])},abc\n", "movie"),
                        (f"{int(test.user_id.iloc[0])},0050\n", "movie")):
        f2 = tmp_path / "t2.csv"
        f2.write_text(f.read_text() + extra)
        r = CliRunner().invoke(main, ["evaluate", *trained_run.sets, "--truth", str(f2), "-k", "5", "--format", "json"])
        assert r.exit_code == 0, r.stderr
        assert f"1 of its {len(test) + 1:,} pairs name a {side} id that is no integer as this run's are" in r.stderr
        assert json.loads(r.stdout)["splits"] == json.loads(plain.stdout)["splits"]


def test_truth_and_lists_files_are_read_under_the_id_columns_the_runs_dataset_was_ingested_with(tmp_path):
    """A first-hour review: a run ingested from customer_id,product_id (ingest and train reading them) refused
    `evaluate --truth test.csv` of those same columns ('no user_id or movie_id column'), --set data.columns.*
    ignored, where update-users and recommend --exclude @test.csv read the file. Both files are now read under the
    dataset's names as well as the documented ones, and score alike; a file under neither is refused naming them."""
    from click.testing import CliRunner

    from embedrec.cli import main

    rng = np.random.default_rng(3)
    rows = [(f"c{u}", f"p{m}") for u in range(60) for m in rng.choice(30, 8, replace=False) + 15 * (u % 2)]
    held = rows[::5]
    train = [r for i, r in enumerate(rows) if i % 5]
    (tmp_path / "shop.csv").write_text("customer_id,product_id\n" + "".join(f"{u},{m}\n" for u, m in train))
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    runner = CliRunner()
    r = runner.invoke(main, ["ingest", "-q", str(tmp_path / "shop.csv"), *sets, "--set", "data.columns.user=customer_id",
                             "--set", "data.columns.movie=product_id", "--set", "data.id_type=str", "--set",
                             "data.columns.rating=null", "--set", "data.columns.timestamp=null", "--set", "split.test=0"])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(main, ["train", "-q", *sets, "--set", "model.dim=4", "--set", "train.epochs=2"])
    assert r.exit_code == 0, r.stderr
    figures = {}
    for names in ("customer_id,product_id", "user_id,movie_id"):
        truth = tmp_path / f"{names[:4]}-truth.csv"
        truth.write_text(f"{names}\n" + "".join(f"{u},{m}\n" for u, m in held))
        lists = tmp_path / f"{names[:4]}-lists.csv"
        lists.write_text(f"{names},rank\n" + "".join(f"c{u},p{m},{m + 1}\n" for u in range(60) for m in range(10)))
        r = runner.invoke(main, ["evaluate", *sets, "--truth", str(truth), "--lists", str(lists), "-k", "10",
                                 "--format", "json"])
        assert r.exit_code == 0, r.stderr
        got = json.loads(r.stdout)["splits"]["truth"]
        figures[names] = (got["model"]["ndcg@10"], got[lists.name]["ndcg@10"])
    assert figures["customer_id,product_id"] == figures["user_id,movie_id"]
    assert figures["user_id,movie_id"][1] > 0
    truth.write_text("buyer,product_id\n" + "".join(f"{u},{m}\n" for u, m in held))
    r = runner.invoke(main, ["evaluate", *sets, "--truth", str(truth)])
    assert r.exit_code == 1 and r.stderr.startswith(
        f"error: {truth}: not a file of held-out pairs (no user_id column; its columns: buyer, product_id); name its "
        "columns user_id (or customer_id, userid, user, uid)"), r.stderr
