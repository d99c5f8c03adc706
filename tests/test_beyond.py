"""The beyond-accuracy metrics in evaluate (embedrec.beyond): known answers on the session's trained run, computed
here apart from embedrec's code; the model's, the baselines' and --lists' alike; `evaluate --metrics`."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec.beyond import NAMES
from embedrec.cli import main


def _train_counts(ds, splits):
    """Each movie id's training count and the training users, counted here with pandas."""
    rows = pd.concat([ds.split_frame(s) for s in splits], ignore_index=True)
    counts = rows["movie_id"].value_counts()
    return {m: int(counts.get(m, 0)) for m in ds.movies["movie_id"]}, rows["user_id"].nunique()


def _head(counts: dict) -> set:
    """The short head by its definition, one movie at a time: the most rated movies until they hold 80% of the
    ratings, and every movie tied with the last of them."""
    total, held, last = sum(counts.values()), 0, None
    for c in sorted(counts.values(), reverse=True):
        if held >= 0.8 * total:
            break
        held, last = held + c, c
    return {m for m, c in counts.items() if c >= last}


def test_lists_known_answers_against_the_training_counts(trained_run):
    """Lists made up here, scored by evaluate(lists=...): ARP, novelty, long-tail share, ILD, Gini and entropy
    equal what this test computes from the training rows and the genres, one user and one pair at a time; a user
    of the test split without a list, and a movie the dataset does not have, are left out of the means."""
    m = trained_run.opened
    ds = er.load_dataset(trained_run.cfg.data.prepared)
    counts, n_users = _train_counts(ds, ["train"])  # train.refit=false: the model was fitted on train
    head = _head(counts)
    genres = dict(zip(ds.movies["movie_id"], (set(g) for g in ds.movies["genres"])))
    users = sorted(set(ds.split_frame("test")["user_id"]))
    movies = sorted(counts, key=lambda x: (-counts[x], x))
    picks = [movies[0], movies[1], movies[len(movies) // 2], movies[-1]]  # two popular, a middling, the least rated
    lists = pd.DataFrame([(u, [picks[(j + i) % 4] for j in range(3)][r], r + 1) for i, u in enumerate(users[:-1])
                          for r in range(3)], columns=["user_id", "movie_id", "rank"])
    lists.loc[0, "movie_id"] = 999_999  # no such movie: left out of its user's means
    got = m.evaluate("test", ks=(3,), lists={"mine": lists})["splits"]["test"]["mine"]

    def cosine(a, b):
        return len(genres[a] & genres[b]) / math.sqrt(len(genres[a]) * len(genres[b]))

    want = {"arp@3": [], "novelty@3": [], "longtail@3": [], "ild@3": []}
    exposure = dict.fromkeys(counts, 0)
    for _, rows in lists.groupby("user_id"):
        listed = [x for x in rows.sort_values("rank")["movie_id"] if x in counts]
        want["arp@3"].append(np.mean([counts[x] for x in listed]))
        want["novelty@3"].append(np.mean([-math.log2(max(counts[x], 1) / n_users) for x in listed]))
        want["longtail@3"].append(np.mean([x not in head for x in listed]))
        pairs = [(a, b) for i, a in enumerate(listed) for b in listed[i + 1:] if genres[a] and genres[b]]
        want["ild@3"].append(np.mean([1 - cosine(a, b) for a, b in pairs]))
        for x in listed:
            exposure[x] += 1
    for key, values in want.items():  # the mean over the users with a list (the last test user has none)
        assert got[key] == pytest.approx(np.mean(values), rel=1e-9), key
    c = np.sort(np.array(list(exposure.values()), float))  # Gini over the whole catalogue, zeros included
    n = c.size
    assert got["gini@3"] == pytest.approx(sum((2 * i - n - 1) * x for i, x in enumerate(c, 1)) / (n * c.sum()))
    p = c[c > 0] / c.sum()
    assert got["entropy@3"] == pytest.approx(-(p * np.log(p)).sum())
    assert got["longtail@3"] > 0 and got["users_without_list"] == 1 and got["rows_unknown_movie"] == 1


def test_model_baseline_and_lists_alike_and_per_user_means(trained_run, tmp_path):
    """The model's own lists (export --topk-all) scored by --lists give the model's beyond-accuracy figures; the
    most-popular baseline lists each user the most popular movies left, so its ARP is no lower than the model's and
    its novelty no higher (of a user's candidates, no k movies are more rated); each user's values (per_user) average to the printed figures; a K beyond the catalogue
    is measured at the catalogue, as the accuracy metrics are."""
    m = trained_run.opened
    own = tmp_path / "own.parquet"
    m.topk_all(own, k=10)
    res = m.evaluate("test", ks=(5, 10, 1000), per_user=True, lists={"own": pd.read_parquet(own)})
    rows = res["splits"]["test"]
    model, popular = rows["model"], rows["most_popular"]
    assert [k for k in model if k.endswith("@5")] == ["precision@5", "recall@5", "ndcg@5", "map@5", "hitrate@5",
                                                      "mrr@5", "auc@5", "coverage@5", *(f"{n}@5" for n in NAMES)]
    for name in (*NAMES, "auc"):  # the lists' auc by list_metrics, the model's by evaluate: one definition
        for k in (5, 10):
            assert rows["own"][f"{name}@{k}"] == pytest.approx(model[f"{name}@{k}"], rel=1e-12), (name, k)
        assert np.isfinite(model[f"{name}@1000"]) and np.isfinite(popular[f"{name}@1000"])
    assert "global_mean" in rows and not any(k.split("@")[0] in NAMES for k in rows["global_mean"])
    for k in (5, 10):
        assert popular[f"arp@{k}"] >= model[f"arp@{k}"] and popular[f"novelty@{k}"] <= model[f"novelty@{k}"]
    frame = res["per_user"]
    for key in ("arp@10", "novelty@5", "longtail@10", "ild@10", "own:arp@10", "own:ild@5"):
        assert frame[key].mean() == pytest.approx(model[key.removeprefix("own:")], rel=1e-9), key
    assert "gini@10" not in frame and "own:entropy@10" not in frame  # of all lists together: no per-user value
    described = res["beyond_accuracy"]
    counts, n_users = _train_counts(er.load_dataset(trained_run.cfg.data.prepared), ["train"])
    assert described == {"popularity_counted_on": "train", "training_users": n_users,
                         "head_movies": len(_head(counts)), "tail_movies": len(counts) - len(_head(counts)),
                         "head_share": 0.8, "genres": described["genres"]} and described["genres"] > 1


def _genreless_run(tmp_path) -> list[str]:
    """40 users x 60 movies, no movies file (so no genres), ingested and an implicit model trained: its --set's."""
    rng = np.random.default_rng(0)
    pairs = {(int(u), int(m)) for u, m in zip(rng.integers(1, 41, 1500), rng.integers(1, 61, 1500))}
    (tmp_path / "ratings.csv").write_text("user,movie,rating\n" + "".join(f"{u},{m},4\n" for u, m in sorted(pairs)))
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(tmp_path / "ratings.csv"), *sets]).exit_code == 0
    r = runner.invoke(main, ["train", *sets, "--set", "model.dim=4", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    return sets


def test_no_genres_no_ild(tmp_path):
    """A catalogue without genres has no intra-list diversity: no ild figure (not a made-up one), the others as
    ever; --metrics ild says so."""
    sets = _genreless_run(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["evaluate", *sets, "-k", "5", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    model = out["splits"]["test"]["model"]
    assert "ild@5" not in model and {"arp@5", "novelty@5", "longtail@5", "gini@5", "entropy@5"} <= set(model)
    assert out["beyond_accuracy"]["genres"] == 0
    r = runner.invoke(main, ["evaluate", *sets, "-k", "5", "--metrics", "ild,gini", "--format", "tsv"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "split\tmodel\tgini@5", r.stdout
    assert "ild: the movies of this dataset have no genres, so their lists have no genre diversity" in r.stderr
    r = runner.invoke(main, ["evaluate", *sets, "-k", "5", "--metrics", "ild", "--format", "tsv"])  # nothing left
    assert r.exit_code == 0 and r.stdout == "" and "no split to evaluate" not in r.stderr
    assert "no metrics to report: this run's evaluation has none of the metrics --metrics chose; choose others " \
           "(evaluate -h lists them)\n" in r.stderr


def test_rating_metrics_of_an_implicit_run_are_refused_for_what_they_are(tmp_path, trained_run):
    """--metrics rmse (or mae) alone on an implicit run: one line saying rmse and mae are an explicit model's (a
    review: it said there was no split to evaluate on, though the run had its test split); beside other metrics,
    a warning that they are left out, the others printed; an explicit run prints them."""
    sets = _genreless_run(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["evaluate", *sets, "-k", "10", "--metrics", "rmse"])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", "error: --metrics rmse: rmse and mae score an explicit "
                                                 "model's predicted ratings, and this run's model is implicit "
                                                 "(model.objective: implicit), which ranks movies and predicts no "
                                                 "rating; choose ranking metrics (ndcg, recall, ..., or the groups "
                                                 "accuracy, beyond), or train an explicit model (--set "
                                                 "model.objective=explicit)\n")
    r = runner.invoke(main, ["evaluate", *sets, "-k", "10", "--metrics", "mae,ndcg,rmse", "--format", "tsv"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "split\tmodel\tndcg@10", r.stderr
    assert "--metrics: mae and rmse left out: this run's model is implicit (model.objective: implicit) and predicts " \
           "no rating to score\n" in r.stderr
    r = runner.invoke(main, ["evaluate", *trained_run.sets, "-k", "10", "--metrics", "rmse", "--format", "tsv"])
    # (with the paired rows against the rating baselines: rmse's overall difference, then user_mse's per user)
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "split\tmodel\trmse\tuser_mse" and \
        "left out" not in r.stderr


def test_evaluate_metrics_option(trained_run):
    """--metrics chooses what is printed, in every format, by name or group; the counts stay in the JSON; the
    warning that the model is behind a baseline is said whatever is printed; a name that is no metric (or one with
    @K) is one usage error saying the fix."""
    sets = [*trained_run.sets, "-k", "10"]
    runner = CliRunner()
    tsv = runner.invoke(main, ["evaluate", *sets, "--metrics", "ndcg,novelty", "--metrics", "gini", "--format", "tsv"])
    assert tsv.exit_code == 0, tsv.stderr
    lines = tsv.stdout.splitlines()
    assert lines[0] == "split\tmodel\tndcg@10\tnovelty@10\tgini@10" and [line.split("\t")[1] for line in lines[1:]] \
        == ["model", "most_popular", "model-most_popular", "model-most_popular se"]  # global_mean, biases: none
    assert lines[-1].endswith("\t")  # (gini@10 is no mean over users: no paired difference)
    table = runner.invoke(main, ["evaluate", *sets, "--metrics", "beyond", "--format", "table"])
    assert [line.split()[0] for line in table.stdout.splitlines()] == \
        ["metric", "coverage@10", *(f"{n}@10" for n in NAMES)]
    full = json.loads(runner.invoke(main, ["evaluate", *sets, "--format", "json"]).stdout)["splits"]["test"]
    acc = json.loads(runner.invoke(main, ["evaluate", *sets, "--metrics", "accuracy", "--format", "json"]).stdout)
    assert list(acc["splits"]["test"]) == list(full)  # the rating baselines too
    assert list(acc["splits"]["test"]["model"]) == ["rmse", "mae", "precision@10", "recall@10", "ndcg@10", "map@10",
                                                    "hitrate@10", "mrr@10", "auc@10", "users_evaluated", "users_skipped",
                                                    "users_with_rows"]
    assert acc["splits"]["test"]["model"]["ndcg@10"] == full["model"]["ndcg@10"]
    assert "beyond_accuracy" in acc and "arp@10" in full["model"]
    for fmt in ("csv", "jsonl"):
        r = runner.invoke(main, ["evaluate", *sets, "--metrics", "all", "--format", fmt])
        assert r.exit_code == 0 and "entropy@10" in r.stdout and "precision@10" in r.stdout
    if full["model"]["ndcg@10"] <= full["most_popular"]["ndcg@10"]:  # (this explicit model: behind it)
        r = runner.invoke(main, ["evaluate", *sets, "--metrics", "novelty", "--format", "tsv"])
        assert "is no better than most_popular's" in r.stderr and "ndcg" not in r.stdout
    r = runner.invoke(main, ["evaluate", *sets, "--metrics", "ndcg,nov"])
    assert (r.exit_code, r.stderr) == (2, "error: --metrics 'ndcg,nov': nov is no metric of evaluate; give names "
                                          "from rmse, mae, precision, recall, ndcg, map, hitrate, mrr, auc, coverage, arp, "
                                          "novelty, longtail, ild, gini, entropy, or a group: accuracy, beyond, all\n")
    r = runner.invoke(main, ["evaluate", *sets, "--metrics", "NDCG@10"])
    assert (r.exit_code, r.stderr) == (2, "error: --metrics 'NDCG@10': ndcg@10 is no metric of evaluate; give it "
                                          "without @K (-k sets the cut-offs: --metrics ndcg -k 10)\n")
