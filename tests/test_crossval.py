"""K-fold splits at ingest (split.folds, split.fold) and cross-validation over them (er.cross_validate,
``embedrec cross-validate``): the folds partition the ratings, each fold's run is a normal run whose evaluation is
what is summarised, a rerun goes on where a stop left it, and bad input is one line."""

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec import api
from embedrec.cli import main
from embedrec.config import load_config
from embedrec.crossval import CrossValidation, summarise
from embedrec.data.synth import write_movielens
from embedrec.errors import ConfigError, DataError, Interrupted, OutputRefused, UsageError

from .conftest import write

# a small, quick model: one thread (the same numbers on every run), no dimension search
FAST = {"model.dim": 8, "train.als_dims": [], "train.threads": 1, "train.epochs": 5}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """60 users x 40 movies x 1,500 ratings (MovieLens-latest layout), and a user of one rating and one of two
    appended: fewer ratings than folds."""
    d = tmp_path_factory.mktemp("cv-source")
    write_movielens(d, 60, 40, 1500, rank=4, seed=2, noise=0.3)
    with open(d / "ratings.csv", "a", encoding="utf-8") as fh:
        fh.write("9001,1,4.0,1100000000\n9002,2,3.0,1100000001\n9002,3,5.0,1100000002\n")
    return d


def fast_cfg(tmp_path, **more):
    return load_config(None, {**FAST, "data.cache_dir": str(tmp_path / "cache"), **more})


def test_a_kfold_ingest_partitions_the_ratings(source, tmp_path):
    """Over fold = 0 .. 2 the test splits hold every rating once, but the one rating of user 9001, which goes back
    to train in its fold (as a random split gives such a user a training row); user 9002's two ratings are test in
    two folds; a fold's train and valid never hold its test rows; the summary names the fold."""
    ratings = pd.read_csv(source / "ratings.csv")
    tests = []
    for i in range(3):
        cfg = load_config(None, {"split.folds": 3, "split.fold": i, "data.prepared": str(tmp_path / f"f{i}")})
        summary = api.prepare(cfg.updated({"data.source": str(source)}))
        assert summary["split"]["folds"] == 3 and summary["split"]["fold"] == i
        ds = er.load_dataset(tmp_path / f"f{i}")
        test = ds.split_frame("test")
        others = pd.concat([ds.split_frame("train"), ds.split_frame("valid")])
        assert not set(zip(test.user_id, test.movie_id)) & set(zip(others.user_id, others.movie_id))
        assert len(test) + len(others) == len(ratings)  # every movie has training rows: nothing dropped
        tests.append(test)
    from embedrec.ingestion import format_summary

    assert "split (random, test fold 3 of 3 (split.fold=2)): train " in format_summary({**summary, "output": "x", "seconds": 0})
    held = pd.concat(tests)
    pairs = list(zip(held.user_id, held.movie_id))
    assert len(pairs) == len(set(pairs)) == len(ratings) - 1  # disjoint, and all but user 9001's one rating
    assert (9001, 1) not in set(pairs) and {(9002, 2), (9002, 3)} <= set(pairs)
    # the same seed, the same folds; and a dataset without folds records none (its summary as before)
    again = load_config(None, {"split.folds": 3, "split.fold": 0, "data.prepared": str(tmp_path / "again")})
    api.prepare(again.updated({"data.source": str(source)}))
    a, b = er.load_dataset(tmp_path / "again").split_frame("test"), tests[0]
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    plain = api.prepare(load_config(None, {"data.prepared": str(tmp_path / "plain"), "data.source": str(source)}))
    assert set(plain["split"]) == {"method", "train", "valid", "test"}


def test_cross_validate_summarises_each_folds_evaluation(source, tmp_path, caplog):
    """Each fold is a run er.open serves, its metrics are its evaluate('test') exactly, and the summary is their
    mean, standard deviation (n - 1) and standard error, hand-computed here; the stderr lines give each fold's
    figure and the mean so far."""
    caplog.set_level("INFO", logger="embedrec")
    cv = er.cross_validate(str(source), fast_cfg(tmp_path), folds=3, output=tmp_path / "cv", ks=(10,))
    assert isinstance(cv, CrossValidation) and cv.k == 3 and [f["fold"] for f in cv.folds] == [0, 1, 2]
    values = []
    for f in cv.folds:
        with er.open(f["run"]) as model:
            assert f["metrics"] == model.evaluate("test", (10,))["splits"]["test"]
        assert f["kept"] == "" and f["counts"]["test"] > 0
        values.append(f["metrics"]["model"]["ndcg@10"])
    mean = sum(values) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    s = cv.summary["model"]["ndcg@10"]
    assert s == pytest.approx({"mean": mean, "std": std, "se": std / math.sqrt(3)}, rel=1e-12)
    assert cv.mean("ndcg@10") == pytest.approx((mean, std / math.sqrt(3)))
    assert set(cv.summary) == set(cv.folds[0]["metrics"]) and "most_popular" in cv.summary
    rows = cv.rows()
    assert [r["fold"] for r in rows] == [0, 1, 2, "mean", "std", "se"] and {r["model"] for r in rows} == {"model"}
    assert rows[3]["ndcg@10"] == s["mean"] and "users_evaluated" not in rows[3]
    assert len(cv.rows(models=None)) == 6 * (len(cv.summary) + len(cv.paired)) and list(cv.paired) == ["most_popular"]
    d = cv.paired["most_popular"]["ndcg@10"]  # the model minus the baseline, fold by fold
    assert d["folds"] == pytest.approx([v - f["metrics"]["most_popular"]["ndcg@10"] for v, f in zip(values, cv.folds)])
    assert d["mean"] == pytest.approx(mean - cv.summary["most_popular"]["ndcg@10"]["mean"])
    assert "the model minus each baseline, fold by fold (the folds are the unit: the mean and SE of the 3 folds' " \
        f"differences): most_popular ndcg@10 {d['mean']:+.4f} +- {d['se']:.4f}" in "\n".join(
            r.getMessage() for r in caplog.records)
    said = [r.getMessage() for r in caplog.records]
    assert f"fold 1 of 3: test ndcg@10 {values[0]:.4f} (" in "\n".join(said)
    assert f"fold 2 of 3: test ndcg@10 {values[1]:.4f} (mean so far {np.mean(values[:2]):.4f} +- " in "\n".join(said)
    assert not any("best epoch" in m or "als_reg" in m for m in said)  # each fit's own lines: -v only
    record = json.loads((tmp_path / "cv" / "cross_validation.json").read_text())
    assert record["summary"]["model"]["ndcg@10"]["mean"] == pytest.approx(mean)
    assert [f["fold"] for f in record["folds"]] == [0, 1, 2] and record["config"]["split.folds"] == 3
    with pytest.raises(UsageError, match="no metric 'ndcg@5' of 'model'"):
        cv.mean("ndcg@5")


def test_a_rerun_keeps_the_folds_done_and_resumes_a_stopped_one(source, tmp_path, monkeypatch):
    """A stop in fold 1 (here, in its evaluation) leaves fold 0 done: the rerun keeps fold 0's and fold 1's runs
    (their models not trained again), trains fold 2, and gives what one uninterrupted call gives."""
    from embedrec import crossval

    cfg = fast_cfg(tmp_path)
    whole = er.cross_validate(str(source), cfg, folds=3, output=tmp_path / "whole", ks=(10,))
    real, calls = crossval._evaluate, []

    def stopped(fcfg, ks):
        calls.append(fcfg.split.fold)
        if fcfg.split.fold == 1:
            raise KeyboardInterrupt
        return real(fcfg, ks)

    monkeypatch.setattr(crossval, "_evaluate", stopped)
    with pytest.raises(Interrupted) as e:
        er.cross_validate(str(source), cfg, folds=3, output=tmp_path / "cv", ks=(10,))
    assert str(e.value).startswith("cross-validation interrupted in fold 2 of 3 (fold 1 is done and kept; ")
    assert str(e.value).endswith("rerun cross_validate with the same arguments to go on from there")
    assert e.value.cli_message().endswith("rerun the same command to go on from there")
    monkeypatch.setattr(crossval, "_evaluate", real)
    models = [(tmp_path / "cv" / f"fold-{i}" / "run" / "current").resolve() for i in (0, 1)]
    cv = er.cross_validate(str(source), cfg, folds=3, output=tmp_path / "cv", ks=(10,))
    assert [f["kept"] for f in cv.folds] == ["run", "run", ""]
    assert [(tmp_path / "cv" / f"fold-{i}" / "run" / "current").resolve() for i in (0, 1)] == models
    assert [f["metrics"] for f in cv.folds] == [f["metrics"] for f in whole.folds]
    assert cv.summary == whole.summary


def test_a_failed_cross_validate_of_a_dataframe_leaves_no_cached_frame(source, tmp_path, monkeypatch):
    """Session 49's review: a failed er.cross_validate(df) kept the cache file it wrote of the frame, where a failed
    er.ingest(df) removes its own. It goes too, whether the call failed before any fold or in one (its folds done
    kept, which record it); the call again goes on from them and writes it back under the same name. A file an
    earlier call wrote stays."""
    from embedrec import crossval

    cfg = fast_cfg(tmp_path)
    cache = tmp_path / "cache" / "dataframes"
    df = pd.read_csv(source / "ratings.csv")
    with pytest.raises(UsageError, match="folds"):  # refused after the frame was written
        er.cross_validate(df, cfg, folds=1, output=tmp_path / "cv")
    assert list(cache.glob("*")) == []
    real = crossval._evaluate

    def stopped(fcfg, ks):
        if fcfg.split.fold == 1:
            raise KeyboardInterrupt
        return real(fcfg, ks)

    monkeypatch.setattr(crossval, "_evaluate", stopped)
    with pytest.raises(Interrupted, match="in fold 2 of 3 .fold 1 is done and kept"):  # counted from 1
        er.cross_validate(df, cfg, folds=3, output=tmp_path / "cv", ks=(10,))
    assert list(cache.glob("*")) == []
    monkeypatch.setattr(crossval, "_evaluate", real)
    cv = er.cross_validate(df, cfg, folds=3, output=tmp_path / "cv", ks=(10,))
    assert [f["kept"] for f in cv.folds] == ["run", "run", ""]
    written = list(cache.glob("*"))
    assert len(written) == 1 and er.load_dataset(cv.folds[0]["dataset"]).manifest["source"] == str(written[0])
    with pytest.raises(UsageError, match="folds"):  # this call did not write it: it stays
        er.cross_validate(df, cfg, folds=1, output=tmp_path / "cv2")
    assert list(cache.glob("*")) == written


def test_a_fold_stopped_in_training_resumes_to_the_same_model(source, tmp_path, monkeypatch, caplog):
    """Ctrl-C in fold 1's third ALS epoch: its checkpoints are kept, and the rerun resumes from them to the metrics
    an uninterrupted cross-validation gives."""
    from embedrec import crossval
    from embedrec.training import als

    cfg = fast_cfg(tmp_path)
    whole = er.cross_validate(str(source), cfg, folds=2, output=tmp_path / "whole", ks=(10,))
    real_fold, real_epoch, state = crossval._fold, als.ALS.epoch, {"fold": None, "epochs": 0}

    def fold(fcfg, *rest):
        state["fold"] = fcfg.split.fold
        return real_fold(fcfg, *rest)

    def epoch(self, gen=None):
        if state["fold"] == 1:
            state["epochs"] += 1
            if state["epochs"] == 3:
                raise KeyboardInterrupt
        return real_epoch(self, gen)

    monkeypatch.setattr(crossval, "_fold", fold)
    monkeypatch.setattr(als.ALS, "epoch", epoch)
    with pytest.raises(Interrupted, match="in fold 2 of 2 .fold 1 is done and kept; "):
        er.cross_validate(str(source), cfg, folds=2, output=tmp_path / "cv", ks=(10,))
    from embedrec.run_layout import has_checkpoint

    assert has_checkpoint(tmp_path / "cv" / "fold-1" / "run") and not (tmp_path / "cv" / "fold-1" / "run" /
                                                                        "current").exists()
    monkeypatch.setattr(crossval, "_fold", real_fold)
    monkeypatch.setattr(als.ALS, "epoch", real_epoch)
    caplog.set_level("DEBUG", logger="embedrec")  # -v: each fold's own lines too
    cv = er.cross_validate(str(source), cfg, folds=2, output=tmp_path / "cv", ks=(10,))
    assert [f["kept"] for f in cv.folds] == ["run", "dataset"]
    assert any(r.getMessage().startswith("resuming after epoch 2 ") for r in caplog.records)
    assert [f["metrics"] for f in cv.folds] == [f["metrics"] for f in whole.folds]


def test_a_folder_of_another_config_is_refused_and_fresh_redoes_it(source, tmp_path):
    cfg = fast_cfg(tmp_path)
    er.cross_validate(str(source), cfg, folds=2, output=tmp_path / "cv", ks=(10,))
    other = cfg.updated({"train.epochs": 3})
    with pytest.raises(ConfigError) as e:
        er.cross_validate(str(source), other, folds=2, output=tmp_path / "cv")
    assert str(e.value) == (f"'{tmp_path / 'cv'}' holds a cross-validation of another config (train.epochs 5, now 3): "
                            "rerun with the config it was made with, or with fresh=True to redo its folds there, or "
                            "choose another output")
    with pytest.raises(ConfigError, match=r"\(split.folds 2, now 3\)"):
        er.cross_validate(str(source), cfg, folds=3, output=tmp_path / "cv")
    cv = er.cross_validate(str(source), other, folds=2, output=tmp_path / "cv", ks=(10,), fresh=True)
    assert [f["kept"] for f in cv.folds] == ["", ""]
    import yaml

    saved = yaml.safe_load((tmp_path / "cv" / "fold-1" / "run" / "current" / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 3 and saved["split"]["folds"] == 2 and saved["split"]["fold"] == 1


def test_bad_arguments_are_one_line_each(source, tmp_path):
    cfg = fast_cfg(tmp_path)
    out = tmp_path / "cv"
    cases = [
        (dict(folds=1), UsageError, "folds 1: expected a whole number of folds from 2 to 100 (5 and 10 are usual)"),
        (dict(folds="5"), UsageError, "folds '5': expected a whole number of folds from 2 to 100 (5 and 10 are "
         "usual)"),
        (dict(cfg=cfg.updated({"split.method": "user_time"})), ConfigError, "config key 'split.method' is user_time: "
         "cross-validation deals each user's ratings at random into the folds, and a time split holds out one window "
         "(each user's latest ratings, or every rating after a cut), so it has no folds; cross-validate with "
         "split.method=random, its default"),
        (dict(cfg=cfg.updated({"split.test": 0.3})), ConfigError, "config key 'split.test' (0.3): cross-validation's "
         "test split is each fold in turn, 1/5 of each user's ratings; leave split.test out (folds sets the share)"),
        (dict(cfg=cfg.updated({"split.folds": 4, "split.fold": 2})), ConfigError, "config key 'split.fold' (2): "
         "cross_validate runs every fold, 0 to 3, each the test split in turn, so it takes no split.fold; leave "
         "split.fold out (to train on one fold: ingest with split.folds and split.fold, then train)"),
        (dict(cfg=cfg.updated({"split.folds": 4}), folds=3), ConfigError, "config key 'split.folds' is 4, and folds "
         "3; give one of them"),
        (dict(ks="10"), UsageError, "ks='10': give whole numbers >= 1, e.g. ks=10 or ks=(10, 20), not text"),
        (dict(metrics="ndcg@10"), UsageError, "metrics='ndcg@10': give metric names without @K, e.g. metrics=('ndcg', "
         "'recall'), from rmse, mae, precision, recall, ndcg, map, hitrate, mrr, auc, coverage, arp, novelty, longtail, "
         "ild, gini, entropy"),
    ]
    for kw, kind, message in cases:
        with pytest.raises(kind) as e:
            er.cross_validate(str(source), **{"cfg": cfg, "output": out, **kw})
        assert str(e.value) == message, kw
    assert not out.exists()  # refused before anything was made
    with pytest.raises(UsageError, match="reads its source once a fold, and standard input can be read once"):
        er.cross_validate("-", cfg, output=out)
    with pytest.raises(DataError, match="file not found"):
        er.cross_validate(str(tmp_path / "missing.csv"), cfg, output=out)
    bad = write(tmp_path / "bad.csv", "user_id,movie_id,rating\n1,2,x\n")
    with pytest.raises(DataError, match="bad.csv:2: column 'rating' 'x' is not a number"):  # in fold 0's ingest
        er.cross_validate(str(bad), cfg, output=out)
    assert not out.exists()  # no folder left behind by either
    write(tmp_path / "mine" / "notes.txt", "mine\n")
    with pytest.raises(OutputRefused) as e:
        er.cross_validate(str(source), cfg, output=tmp_path / "mine")
    assert str(e.value) == (f"output '{tmp_path / 'mine'}' holds files cross-validation did not write (notes.txt); it "
                            "writes cross_validation.json and a fold-N folder for each fold there: choose a new or empty "
                            "folder as output")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine\n"
    # a folder of hidden files alone (a home folder) is the user's too (a red team: it was written into); embedrec's
    # own lock and a killed writer's temporaries are not
    home = tmp_path / "home"
    write(home / ".ssh" / "id_rsa", "key\n")
    write(home / ".bashrc", "b\n")
    with pytest.raises(OutputRefused, match=r"holds files cross-validation did not write \(\.bashrc, \.ssh\)"):
        er.cross_validate(str(source), cfg, output=home)
    assert sorted(p.name for p in home.iterdir()) == [".bashrc", ".ssh"]
    # a fold's folder of the user's files is theirs too (a review: a fold was written beside fold-1/notes.txt)
    write(tmp_path / "cvx" / "fold-1" / "notes.txt", "mine\n")
    with pytest.raises(OutputRefused, match=r"fold folder '.*fold-1' holds files cross-validation did not write "
                                            r"\(notes.txt\); a fold writes its data/ and run/ there"):
        er.cross_validate(str(source), cfg, output=tmp_path / "cvx")
    from embedrec.fsutil.outputs import _ours_hidden

    assert [n for n in (".lock", ".cross_validation.json.ab_9x2kq", ".fold-1.embedrec-tmp-123-abcd", ".bashrc",
                        ".ssh", ".profile", ".config", ".embedrec.tune.png.lock", ".embedrec-probe-12-ab3k9x0q")
            if _ours_hidden(n)] == [".lock", ".cross_validation.json.ab_9x2kq", ".fold-1.embedrec-tmp-123-abcd",
                                   ".embedrec.tune.png.lock", ".embedrec-probe-12-ab3k9x0q"]


def test_summarise_by_hand():
    folds = [{"metrics": {"model": {"rmse": 1.0, "users_evaluated": 3}, "biases": {"rmse": 2.0}}},
             {"metrics": {"model": {"rmse": 0.5, "users_evaluated": 4}, "biases": {"rmse": 2.0}}},
             {"metrics": {"model": {"rmse": 0.0, "users_evaluated": 5}}}]
    s = summarise(folds)
    assert list(s) == ["model"]  # a model every fold has; counts are no metric
    assert s["model"]["rmse"] == {"mean": 0.5, "std": 0.5, "se": pytest.approx(0.5 / math.sqrt(3))}
    one = summarise(folds[:1])["model"]["rmse"]
    assert one["mean"] == 1.0 and math.isnan(one["std"]) and math.isnan(one["se"])


def test_paired_folds_by_hand():
    """The model minus each baseline fold by fold, the folds the unit: a first-hour review found cross-validate gave
    the baseline's mean but no paired difference. Hand-computed: ndcg@10 differences 0.2, 0.1, 0.3 (mean 0.2, std
    0.1, SE 0.1 / sqrt(3) = 0.0577, not a tie); rmse against biases -0.1, 0.1, 0 (mean 0, a tie); a baseline a fold
    lacks, and a metric the model lacks, left out."""
    from pathlib import Path

    from embedrec.crossval import paired_folds

    folds = [{"fold": i, "metrics": {"model": {"rmse": r, "ndcg@10": n, "users_evaluated": 5},
                                     "biases": {"rmse": b}, "most_popular": {"ndcg@10": p, "arp@10": 1.0,
                                                                             "users_evaluated": 5}}}
             for i, (r, n, b, p) in enumerate(((0.9, 0.5, 1.0, 0.3), (1.0, 0.4, 0.9, 0.3), (0.8, 0.6, 0.8, 0.3)))]
    folds[2]["metrics"]["global_mean"] = {"rmse": 1.2}  # in one fold only
    got = paired_folds(folds)
    assert list(got) == ["biases", "most_popular"] and list(got["most_popular"]) == ["ndcg@10"]
    assert got["most_popular"]["ndcg@10"] == {"folds": pytest.approx([0.2, 0.1, 0.3]), "mean": pytest.approx(0.2),
                                              "std": pytest.approx(0.1), "se": pytest.approx(0.1 / math.sqrt(3)),
                                              "tie": False}
    assert got["biases"]["rmse"] == {"folds": pytest.approx([-0.1, 0.1, 0.0]), "mean": pytest.approx(0.0, abs=1e-15),
                                     "std": pytest.approx(0.1), "se": pytest.approx(0.1 / math.sqrt(3)), "tie": True}
    one = paired_folds(folds[:1])["most_popular"]["ndcg@10"]
    assert one["folds"] == pytest.approx([0.2]) and math.isnan(one["se"]) and one["tie"] is None
    cv = CrossValidation(3, Path("cv"), folds, summarise(folds), paired=got)
    rows = cv.rows(models=None)
    assert [(r["fold"], r["model"]) for r in rows if r["model"].startswith("model-")] == [
        (0, "model-biases"), (1, "model-biases"), (2, "model-biases"), (0, "model-most_popular"),
        (1, "model-most_popular"), (2, "model-most_popular"), *((s, "model-biases") for s in ("mean", "std", "se")),
        *((s, "model-most_popular") for s in ("mean", "std", "se"))]
    assert next(r for r in rows if r["model"] == "model-most_popular" and r["fold"] == "se")["ndcg@10"] == \
        pytest.approx(0.1 / math.sqrt(3))
    assert {r["model"] for r in cv.rows()} == {"model"} and cv.to_dict()["paired"] is got


def test_a_cross_validations_repr_is_one_short_line():
    """A notebook review: the dataclass's repr of a 5-fold ML-100K cross-validation ran to 17,421 characters;
    every other result's is a short '<...>'."""
    from pathlib import Path

    from embedrec.crossval import CrossValidation

    folds = [{"fold": i, "metrics": {"model": {"ndcg@10": v, "recall@10": v / 2}}, "counts": {"train": list(range(999))}}
             for i, v in enumerate((0.25, 0.5))]
    cv = CrossValidation(2, Path("runs/cv"), folds, summarise(folds), 12.5, {"model.dim": 64})
    assert repr(cv) == "<CrossValidation: 2 folds in 'runs/cv', model ndcg@10 0.3750 (se 0.1250)>"
    assert repr(CrossValidation(3, Path("cv"))) == "<CrossValidation: 0 of 3 folds in 'cv'>"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_fresh_rerun_says_no_fold_runs_publish_line(source, tmp_path):
    """An architecture review: run.py logged its 'now serves the new model' line through the 'embedrec.run'
    logger, which the quiet filter cross-validate puts on 'embedrec' never sees, so a --fresh rerun printed it
    once a fold between the fold lines."""
    sets = [x for k, v in {**FAST, "train.als_dims": "[]"}.items() for x in ("--set", f"{k}={v}")]
    args = ("cross-validate", source, "--folds", "2", "-o", tmp_path / "cv", *sets,
            "--set", f"data.cache_dir={tmp_path / 'cache'}")
    assert invoke(*args).exit_code == 0
    r = invoke(*args, "--fresh")
    assert r.exit_code == 0, r.stderr
    assert "now serves" not in r.stderr and "fold 2 of 2: test ndcg@10 " in r.stderr, r.stderr


def test_the_command_prints_rows_on_stdout_and_progress_on_stderr(source, tmp_path):
    sets = [x for k, v in {**FAST, "train.als_dims": "[]"}.items() for x in ("--set", f"{k}={v}")]
    r = invoke("cross-validate", source, "--folds", "2", "-o", tmp_path / "cv", "-k", "10", "--metrics",
               "ndcg,recall,rmse", *sets, "--set", f"data.cache_dir={tmp_path / 'cache'}")
    assert r.exit_code == 0, r.stderr
    assert "--metrics: rmse left out: the model cross-validate trains is implicit (model.objective: implicit) and " \
           "predicts no rating to score\n" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "fold\tmodel\trecall@10\tndcg@10"
    rows = [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]
    assert [(x["fold"], x["model"]) for x in rows][:2] == [("0", "model"), ("1", "model")]
    assert [x["fold"] for x in rows if x["model"] == "model"] == ["0", "1", "mean", "std", "se"]
    mean = next(float(x["ndcg@10"]) for x in rows if x["fold"] == "mean" and x["model"] == "model")
    assert mean == pytest.approx(np.mean([float(x["ndcg@10"]) for x in rows[:2]]), abs=1e-6)
    by = {(x["fold"], x["model"]): float(x["ndcg@10"]) for x in rows}  # the model minus its baseline, fold by fold
    assert [x["fold"] for x in rows if x["model"] == "model-most_popular"] == ["0", "1", "mean", "std", "se"]
    for fold in ("0", "1", "mean"):
        assert by[fold, "model-most_popular"] == pytest.approx(by[fold, "model"] - by[fold, "most_popular"], abs=2e-6)
    assert "fold 1 of 2: test ndcg@10 " in r.stderr and "2 folds in " in r.stderr
    assert f"results: {tmp_path / 'cv' / 'cross_validation.json'}" in r.stderr
    # json: what cross_validation.json holds, its metrics cut to --metrics' (the counts kept); the stderr lines give
    # --metrics' too (a review: the summary line said recall@10 under --metrics ndcg)
    r = invoke("cross-validate", source, "--folds", "2", "-o", tmp_path / "cv", "-k", "10", "--format", "json",
               "--metrics", "ndcg", *sets, "--set", f"data.cache_dir={tmp_path / 'cache'}")
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert [f["kept"] for f in result["folds"]] == ["run", "run"] and "its run kept from an earlier run" in r.stderr
    assert result["summary"]["model"]["ndcg@10"]["mean"] == pytest.approx(mean, abs=1e-6)
    record = json.loads((tmp_path / "cv" / "cross_validation.json").read_text())
    assert list(result) == list(record) == ["config", "folds_k", "output", "seconds", "folds", "summary", "paired"]
    assert list(result["paired"]["most_popular"]) == ["ndcg@10"] and "recall@10" in record["paired"]["most_popular"]
    assert result["config"] == record["config"] and result["config"]["split.folds"] == 2
    assert set(result["summary"]["model"]) == {"ndcg@10"} and "recall@10" in record["summary"]["model"]
    assert set(result["folds"][0]["metrics"]["model"]) == {"ndcg@10", "users_evaluated", "users_skipped",
                                                           "users_with_rows"}
    s = record["summary"]["model"]["ndcg@10"]
    summary = next(line for line in r.stderr.splitlines() if line.startswith("2 folds in "))
    assert summary.split(": ", 1)[1] == (f"ndcg@10 {s['mean']:.4f} +- {s['se']:.4f} (SE); results: "
                                         f"{tmp_path / 'cv' / 'cross_validation.json'}")
    r = invoke("cross-validate", source, "--folds", "2", "-o", tmp_path / "cv", "-k", "10", "--metrics", "recall",
               *sets, "--set", f"data.cache_dir={tmp_path / 'cache'}")
    f1, s = record["folds"][1]["metrics"]["model"]["recall@10"], record["summary"]["model"]["recall@10"]
    assert f"fold 2 of 2: test recall@10 {f1:.4f} (mean so far {s['mean']:.4f} +- {s['se']:.4f} SE)" in r.stderr
    assert f": recall@10 {s['mean']:.4f} +- {s['se']:.4f} (SE); results: " in r.stderr and "ndcg" not in r.stderr
    assert r.stdout.splitlines()[0] == "fold\tmodel\trecall@10"
    r = invoke("cross-validate", source, "--folds", "2", "-o", tmp_path / "cv", "-k", "10", "--metrics", "recall",
               "--format", "table", *sets, "--set", f"data.cache_dir={tmp_path / 'cache'}")
    assert r.exit_code == 0 and r.stdout.split()[:3] == ["metric", "0", "1"], r.stdout
    assert re.split(r"\s{2,}", r.stdout.splitlines()[0].strip())[-2:] == ["model-most_popular mean",
                                                                          "model-most_popular se"], r.stdout
    d = record["paired"]["most_popular"]["recall@10"]
    assert r.stdout.splitlines()[1].split()[-2:] == [f"{d['mean']:.4f}", f"{d['se']:.4f}"], r.stdout
    assert "columns 0-1: the model's test metrics of each fold, by its split.fold (from 0, as its folder fold-0 to " \
           "fold-1); mean, std and se over the folds (se = std / sqrt(2))" in r.stderr, r.stderr
    r = invoke("cross-validate", source, "-o", tmp_path / "cv3", "--metrics", "rmse,mae")  # nothing would be printed
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", "error: --metrics rmse,mae: rmse and mae score an explicit "
                                                 "model's predicted ratings, and the model cross-validate trains is "
                                                 "implicit (model.objective: implicit), which ranks movies and "
                                                 "predicts no rating; choose ranking metrics (ndcg, recall, ..., or "
                                                 "the groups accuracy, beyond), or train an explicit model (--set "
                                                 "model.objective=explicit)\n")
    assert not (tmp_path / "cv3").exists()
    r = invoke("cross-validate", source, "--folds", "1", "-o", tmp_path / "cv2")
    assert r.exit_code == 2 and r.stdout == "" and r.stderr == (
        "error: --folds 1: expected a whole number of folds from 2 to 100 (5 and 10 are usual)\n")
    r = invoke("cross-validate", source, "-o", tmp_path / "cv2", "--set", "split.method=global_time")
    assert r.exit_code == 2 and r.stderr.startswith("error: config key 'split.method' is global_time: ") and \
        r.stderr.count("\n") == 1
    r = invoke("cross-validate", source, "-o", tmp_path / "cv2", "--set", "split.test=0.25")
    assert r.exit_code == 2 and "leave split.test out (--folds sets the share)" in r.stderr
    assert not (tmp_path / "cv2").exists()


def test_a_k_no_data_can_fill_is_refused_and_the_cost_is_said(source, tmp_path, caplog):
    """K is at most 100 (said with the reason, before anything is read), and at most the median user's ratings
    (said by fold 0's ingest, naming split.folds, before any fold is trained: nothing left behind); a run says how
    many folds it runs before the first, and after fold 0 its time and disk, and the whole's at K times that."""
    from embedrec.crossval import disk_bytes, size_text

    cfg = fast_cfg(tmp_path)
    with pytest.raises(UsageError) as e:
        er.cross_validate(str(source), cfg, folds=101, output=tmp_path / "cv")
    assert str(e.value).startswith("folds 101: expected a whole number of folds from 2 to 100: a fold's test split "
                                   "is 1/K of each user's ratings, so above 100 folds most users have fewer ratings "
                                   "than folds")
    counts = pd.read_csv(source / "ratings.csv")["userId"].value_counts()
    median = float(np.median(counts))
    with pytest.raises(DataError) as e:
        er.cross_validate(str(source), cfg, folds=int(median) + 1, output=tmp_path / "cv")
    assert str(e.value).startswith(f"config key 'split.folds' ({int(median) + 1}) is more folds than the median user "
                                   f"has ratings ({median:g}, of {len(counts)} users): ")
    assert str(e.value).endswith(f"give at most {int(median)} folds, or keep only the users with {int(median) + 1} "
                                 f"ratings or more (data.min_user_ratings={int(median) + 1})")
    assert not (tmp_path / "cv").exists()
    caplog.set_level("INFO", logger="embedrec")
    cv = er.cross_validate(str(source), cfg, folds=2, output=tmp_path / "cv", ks=(10,))
    said = [r.getMessage() for r in caplog.records]
    first = said.index(f"fold 1 of 2: into {tmp_path / 'cv' / 'fold-0'} (split.fold=0)")
    assert said[first - 1] == (f"cross-validation of 2 folds into {tmp_path / 'cv'}: each fold ingested, trained and "
                               "evaluated in a folder of its own (fold-0 to fold-1, named by its split.fold, from 0), a dataset and "
                               "a run")
    cost = next(m for m in said if m.startswith("fold 1 took "))
    size = disk_bytes(tmp_path / "cv" / "fold-0")  # (fold 0's folder is as it was: fold 1 writes its own)
    seconds = cv.folds[0]["seconds"]  # (recorded to 0.01 s: the line's 0.1 s may round the other way, 1.25 from
    # 1.2549: a flake under load)
    m = re.fullmatch(r"fold 1 took ([0-9.]+)s and (.+) on disk: the 2 folds about ([0-9]+)s and (.+)", cost)
    assert m and abs(float(m[1]) - seconds) <= 0.051 and abs(float(m[3]) - 2 * seconds) <= 0.6, cost
    assert (m[2], m[4]) == (size_text(size), size_text(2 * size)), cost
    assert said.index(cost) < said.index(next(m for m in said if m.startswith("fold 2 of 2: into")))


def test_disk_bytes_counts_each_file_once_as_du_does(tmp_path):
    """Allocated blocks (a sparse file takes less than its length), a hard-linked file once, a link to a file
    outside not at all; the sizes in binary units."""
    from embedrec.crossval import disk_bytes, size_text

    d = tmp_path / "fold"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"x" * 100_000)
    import os

    os.link(d / "a.bin", d / "sub" / "a-again.bin")
    (tmp_path / "outside.bin").write_bytes(b"y" * 1_000_000)
    (d / "link").symlink_to(tmp_path / "outside.bin")
    with open(d / "sparse.bin", "wb") as fh:
        fh.truncate(50_000_000)
    blocks = os.stat(d / "a.bin").st_blocks * 512
    assert 100_000 <= blocks < 200_000
    assert disk_bytes(d) == blocks + os.stat(d / "sparse.bin").st_blocks * 512 < 50_000_000
    assert (size_text(31.2 * 2**20), size_text(1.45 * 2**30)) == ("31.2 MB", "1.4 GB")


def test_folds_and_the_split_keys_take_one_check_whichever_gives_k(source, tmp_path):
    """--folds K and split.folds=K go through one check: split.valid with the test fold's 1/K (a review: --folds
    10 with split.valid 0.85 was refused naming split.test, split.folds=10 took it), never split.test; split.fold
    is refused whenever given, even at 0 (a review: 0 was taken silently, 7 refused as an ingest's key)."""
    from embedrec.crossval import command_config

    cfg = command_config(None, ["split.valid=0.85"], 10)
    assert (cfg.split.folds, cfg.split.valid) == (10, 0.85)
    assert load_config(None, ["split.folds=10", "split.valid=0.85"]).split.folds == 10
    assert command_config(None, ["split.folds=10", "split.valid=0.85"], None).split.folds == 10
    mine = write(tmp_path / "mine" / "notes.txt", "mine\n").parent  # a folder refused only after the config is taken
    r = invoke("cross-validate", source, "--folds", "10", "--set", "split.valid=0.85", "-o", mine)
    assert r.exit_code == 2 and "holds files cross-validation did not write (notes.txt)" in r.stderr
    cases = [
        (["--folds", "2", "--set", "split.valid=0.6"], "config keys 'split.valid' + the test fold (1/--folds, 1/2) "
         "must leave data for training (they add up to 1.1); lower split.valid or raise --folds"),
        (["--set", "split.valid=0.85"], "config keys 'split.valid' + the test fold (1/--folds, 1/5) must leave data "
         "for training (they add up to 1.05); lower split.valid or raise --folds"),
        (["--set", "split.folds=2", "--set", "split.valid=0.6"], "config keys 'split.valid' + the test fold "
         "(1/split.folds, 1/2) must leave data for training (they add up to 1.1); lower split.valid or raise "
         "split.folds"),
        (["--set", "split.fold=7"], "config key 'split.fold' (7): cross-validate runs every fold, 0 to 4, each the "
         "test split in turn, so it takes no split.fold; leave split.fold out (to train on one fold: ingest with "
         "split.folds and split.fold, then train)"),
        (["--set", "split.folds=5", "--set", "split.fold=0"], "config key 'split.fold' (0): cross-validate runs every "
         "fold, 0 to 4, each the test split in turn, so it takes no split.fold; leave split.fold out (to train on "
         "one fold: ingest with split.folds and split.fold, then train)"),
        (["--folds", "3", "--set", "split.fold=5"], "config key 'split.fold' (5): cross-validate runs every fold, 0 "
         "to 2, each the test split in turn, so it takes no split.fold; leave split.fold out (to train on one fold: "
         "ingest with split.folds and split.fold, then train)"),
        (["--folds", "100000"], "--folds 100000: expected a whole number of folds from 2 to 100: a fold's test split "
         "is 1/K of each user's ratings, so above 100 folds most users have fewer ratings than folds (ML-100K's "
         "median user has 65), and each fold of a cross-validation is a whole dataset and run on disk; 5 or 10 are "
         "usual"),
        (["--set", "split.folds=101"], "config key 'split.folds': 101 is above the maximum 100: a fold's test split "
         "is 1/K of each user's ratings, so above 100 folds most users have fewer ratings than folds (ML-100K's "
         "median user has 65), and each fold of a cross-validation is a whole dataset and run on disk; 5 or 10 are "
         "usual"),
    ]
    for args, message in cases:
        r = invoke("cross-validate", source, "-o", tmp_path / "cv", *args)
        assert (r.exit_code, r.stdout, r.stderr) == (2, "", f"error: {message}\n"), args
    assert not (tmp_path / "cv").exists()
    with pytest.raises(ConfigError) as e:  # the library alike, in its terms
        er.cross_validate(str(source), load_config(None, {"split.valid": 0.6}), folds=2, output=tmp_path / "cv")
    assert str(e.value) == ("config keys 'split.valid' + the test fold (1/folds, 1/2) must leave data for training "
                            "(they add up to 1.1); lower split.valid or raise folds")
    with pytest.raises(ConfigError, match=r"^config key 'split.fold' \(0\): cross_validate runs every fold"):
        er.cross_validate(str(source), load_config(None, {"split.folds": 4, "split.fold": 0}), output=tmp_path / "cv")
    # a whole config file, as `embedrec config` writes one, holds split.fold at 0 and split.test at 0.2: no choice
    (tmp_path / "whole.yaml").write_text(load_config().to_yaml())
    assert command_config(tmp_path / "whole.yaml", [], 3).split.folds == 3


def test_rows_without_the_chosen_metrics_are_left_out_as_evaluate_leaves_them(source, tmp_path):
    """A docs review and a shell review: `cross-validate --set model.objective=explicit --metrics rmse,mae` printed
    empty most_popular and model-most_popular rows (20 in TSV; an empty 'most_popular mean' column in the table)
    and its JSON kept them, where evaluate leaves a row with none of the metrics chosen out."""
    sets = [x for k, v in {**FAST, "train.als_dims": "[]", "model.objective": "explicit"}.items()
            for x in ("--set", f"{k}={v}")]
    base = ["cross-validate", source, "--folds", "2", "-o", tmp_path / "cv", "-k", "10", "--metrics", "rmse,mae",
            *sets, "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    r = invoke(*base)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "fold\tmodel\trmse\tmae"
    models = {line.split("\t")[1] for line in lines[1:]}
    assert "model" in models and "global_mean" in models and not any("most_popular" in m for m in models), models
    assert all(all(cell != "" for cell in line.split("\t")) for line in lines[1:] if "se" not in line), r.stdout
    r = invoke(*base, "--format", "table")
    assert r.exit_code == 0 and "most_popular" not in r.stdout, r.stdout
    r = invoke(*base, "--format", "json")
    result = json.loads(r.stdout)
    assert "most_popular" not in result["summary"] and "most_popular" not in result["paired"]
    assert all("most_popular" not in f["metrics"] for f in result["folds"])
    record = json.loads((tmp_path / "cv" / "cross_validation.json").read_text())
    assert "most_popular" in record["summary"]  # the record keeps what the folds measured


def test_metrics_the_folds_did_not_measure_print_nothing_and_say_so(tmp_path):
    """--metrics ild on movies without genres: no fold measures it, so no table of headers alone: a warning says
    so (exit 0, the record holding what the folds have)."""
    rng = np.random.default_rng(0)
    pairs = {(int(u), int(m)) for u, m in zip(rng.integers(1, 41, 1500), rng.integers(1, 61, 1500))}
    ratings = write(tmp_path / "ratings.csv", "user,movie,rating\n" + "".join(f"{u},{m},4\n" for u, m in sorted(pairs)))
    sets = [x for k, v in {**FAST, "train.als_dims": "[]"}.items() for x in ("--set", f"{k}={v}")]
    r = invoke("cross-validate", ratings, "--folds", "2", "-o", tmp_path / "cv", "-k", "5", "--metrics", "ild",
               "--format", "csv", *sets)
    assert r.exit_code == 0 and r.stdout == "", r.stderr
    assert "no metrics to report: the folds' evaluations have none of the metrics --metrics chose; " \
           "cross_validation.json holds those they have\n" in r.stderr
    record = json.loads((tmp_path / "cv" / "cross_validation.json").read_text())
    assert "ild@5" not in record["summary"]["model"] and "ndcg@5" in record["summary"]["model"]
    assert ": none of the metrics chosen measured; results: " in r.stderr


def test_ingest_and_cross_validate_refuse_the_same_split_keys_by_one_rule():
    """An architecture review: crossval._check_split spelled config_checks._check_folds' rule again. Both now
    ask config_checks.kfold_conflict which split key a K-fold split cannot take, and each says it in its terms:
    every key it can name is refused by split.folds' check and by cross-validate's alike (a key either caller has
    no words for would fail here), and a split both take is taken by both."""
    from embedrec.config import SplitConfig
    from embedrec.config_checks import KFOLD_CONFLICTS, kfold_conflict
    from embedrec.crossval import command_config

    settings = {"split.method": "split.method=user_time", "split.test": "split.test=0.3",
                "split.cold_movies": "split.cold_movies=0.1"}
    assert set(settings) == set(KFOLD_CONFLICTS)  # a new conflict needs its case here
    for key, setting in settings.items():
        cfg = load_config(None, [setting])
        assert kfold_conflict(cfg.split, cfg.set_keys) == key
        with pytest.raises(ConfigError) as ingest:
            load_config(None, ["split.folds=4", setting])
        with pytest.raises(ConfigError) as cv:
            command_config(None, [setting], 4)
        assert key in str(ingest.value) and str(cv.value).startswith(f"config key '{key}'"), key
    # a config file's default test share is no choice; given by an override, it is one
    assert kfold_conflict(SplitConfig(), ()) is None and kfold_conflict(SplitConfig(), ("split.test",)) == "split.test"
    assert kfold_conflict(SplitConfig(test=0.25), ()) == "split.test"
    ok = ["split.valid=0.2", "split.seed=3"]
    assert load_config(None, ["split.folds=4", *ok]).split.folds == command_config(None, ok, 4).split.folds == 4


def test_tune_and_cross_validate_leave_out_the_same_metric_neutral_keys():
    """An architecture review: a cross-validation's recorded config and tune-dims' trial hash each listed the keys
    that change no metric. Both leave out config_keys.METRIC_NEUTRAL: a change to any of them reuses trials and folds
    alike, and a change to a key that counts (train.epochs) reuses neither. Each leaves out its own key besides:
    split.fold (each fold sets it) the cross-validation, train.als_dims (a trial trains its own dimension) the
    trial."""
    from embedrec.config import Config
    from embedrec.config_keys import METRIC_NEUTRAL
    from embedrec.crossval import compared_config
    from embedrec.tune import trial_config_hash

    changes = {"run": {"run.dir": "runs/other"}, "tune": {"tune.workers": 3}, "index": {"index.kind": "hnsw"},
               "recommend": {"recommend.k": 7}, "data.prepared": {"data.prepared": "data/other"},
               "data.cache_dir": {"data.cache_dir": "cache/other"}, "train.threads": {"train.threads": 3},
               "train.keep_checkpoints": {"train.keep_checkpoints": True}}
    assert set(changes) == set(METRIC_NEUTRAL)  # a new neutral key needs its case here
    base = Config().updated({"split.folds": 5})
    manifest = {"inputs": {"a": "1"}}

    def trial(cfg):
        return trial_config_hash(cfg.to_dict(), 8, None, manifest)

    for key, change in [*changes.items(), ("train.epochs", {"train.epochs": 3}), ("split.fold", {"split.fold": 2}),
                        ("train.als_dims", {"train.als_dims": []})]:
        other = base.updated(change)
        assert other.to_dict() != base.to_dict(), key
        same = (trial(other) == trial(base), compared_config(other) == compared_config(base))
        want = {"train.epochs": (False, False), "split.fold": (False, True), "train.als_dims": (True, False)}
        assert same == want.get(key, (True, True)), key


def test_cross_validate_and_tune_dims_refuse_the_same_folders_the_same_way(tmp_path):
    """An architecture review: crossval._check_folder and tune.check_tune_folder each spelled the rule of a folder
    a writer of many files fills. Both are fsutil.outputs.refuse_foreign_files now: new, empty or holding only
    their own files and hidden ones (locks, a killed writer's temporaries) is taken; anything else is refused
    naming the first three strangers, and a file where the folder goes is said so."""
    import os
    import re

    from embedrec.crossval import _check_folder
    from embedrec.tune import check_tune_folder

    def refusals(folder):
        said = []
        for check in (_check_folder, check_tune_folder):
            try:
                check(folder)
                said.append(None)
            except (OutputRefused, ConfigError) as e:
                found = re.search(r"did not write \((.*?)\); ", str(e))
                said.append(found.group(1) if found else "not a folder" if "is not a folder; " in str(e) else str(e))
        return said

    assert refusals(tmp_path / "new") == [None, None]
    hidden = tmp_path / "hidden"
    write(hidden / ".lock", "")
    write(hidden / ".tune.json.x1y2ab9z", "{")  # (mkstemp's 8 random characters)
    write(hidden / ".bashrc", "b\n")
    assert refusals(hidden) == [".bashrc", ".bashrc"]  # a user's hidden file (a red team: written beside)
    os.unlink(hidden / ".bashrc")
    assert refusals(hidden) == [None, None]
    mine = tmp_path / "mine"
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt"):
        write(mine / name, "mine\n")
    assert refusals(mine) == ["a.txt, b.txt, c.txt and 2 more"] * 2
    assert refusals(write(tmp_path / "file", "x")) == ["not a folder"] * 2
    cv = tmp_path / "cv"  # each writer's own files are the other's strangers
    write(cv / "cross_validation.json", "{}")
    os.mkdir(cv / "fold-0")
    assert refusals(cv) == [None, "cross_validation.json, fold-0"]
    tune = tmp_path / "tune"
    write(tune / "tune.json", '{"trials": []}')
    os.mkdir(tune / "d16")
    assert refusals(tune) == ["d16, tune.json", None]
    write(tune / "tune.json", '{"not": "a sweep"}')  # tune-dims' own look at its record, kept
    assert refusals(tune) == ["d16, tune.json", "tune.json"]


def test_a_lost_record_of_another_config_is_refused_naming_fresh(source, tmp_path):
    """A red team: with cross_validation.json lost, a rerun with another model.dim resumed the folds' checkpoints and
    was told to 'train again without --resume', an option cross-validate has not. The resume is cross-validate's
    choice, so its refusal is the record's, with --fresh; and --fresh redoes the folds."""
    from embedrec.crossval import RESULTS

    cfg, out = fast_cfg(tmp_path), tmp_path / "cv"
    er.cross_validate(str(source), cfg, folds=2, output=out, ks=(10,))
    (out / RESULTS).unlink()
    other = cfg.updated({"model.dim": 6})
    with pytest.raises(ConfigError) as e:
        er.cross_validate(str(source), other, folds=2, output=out, ks=(10,))
    said = re.fullmatch(f"'{re.escape(str(out))}' holds a cross-validation of another config \\(fold 1's checkpoint "
                        f"'{re.escape(str(out / 'fold-0' / 'run'))}/(.+)' was made with another model.dim \\(8, now 6\\)\\): "
                        "rerun with the config it was made with, or with (.+) to redo its folds there, or choose "
                        "another (.+)", e.value.cli_message())
    assert said and said[1].endswith("checkpoint.pt") and said.group(2, 3) == ("--fresh", "--output"), str(e.value)
    assert "resume" not in str(e.value)
    cv = er.cross_validate(str(source), other, folds=2, output=out, ks=(10,), fresh=True)
    assert [f["kept"] for f in cv.folds] == ["", ""]


def test_a_second_writer_is_told_once_to_choose_another_output(source, tmp_path):
    """A red team: the second writer's line said 'wait for it to finish, or wait for it, or choose another --output'."""
    import fcntl
    import os

    from embedrec.errors import Busy

    out = tmp_path / "cv"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)  # another writer (its own open file: flock says taken)
    os.write(fd, b"4242 embedrec cross-validate\n")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(Busy) as e:
            er.cross_validate(str(source), fast_cfg(tmp_path), folds=2, output=out)
    finally:
        os.close(fd)
    assert e.value.cli_message() == (f"another embedrec cross-validate is writing '{out}' (pid 4242); wait for it to "
                                     "finish, or choose another --output")


def test_a_source_changed_in_place_is_refused_as_another_config_is(source, tmp_path, monkeypatch):
    """A red team: ratings.csv replaced (the same path), the same command's rerun kept every fold's run and gave
    the old data's metrics, exit 0. Each fold's dataset records its source files' SHA-256 (inputs), now compared
    with the files as they are: a change is refused as another config is, with --fresh; --fresh (or, the record
    lost, the rerun itself) ingests and trains the folds again, to what a new output gives. An unchanged source is
    hashed once a call, whatever K."""
    import shutil

    from embedrec import crossval
    from embedrec.crossval import RESULTS
    from embedrec.fsutil import integrity

    src = tmp_path / "src"
    shutil.copytree(source, src)
    cfg, out = fast_cfg(tmp_path), tmp_path / "cv"
    er.cross_validate(str(src / "ratings.csv"), cfg, folds=3, output=out, ks=(10,))
    real, hashed = integrity.sha256_file, []
    monkeypatch.setattr(integrity, "sha256_file", lambda p: hashed.append(str(p)) or real(p))
    crossval._sha256_of.cache_clear()
    cv = er.cross_validate(str(src / "ratings.csv"), cfg, folds=3, output=out, ks=(10,))
    assert [f["kept"] for f in cv.folds] == ["run"] * 3  # (each fold's checkpoints hashed too: its finished key)
    assert [h for h in hashed if not h.endswith("checkpoint.pt")] == [str(src / "ratings.csv")], hashed
    first = (src / "ratings.csv").read_bytes()
    ratings = pd.read_csv(src / "ratings.csv")
    ratings[ratings.index % 5 != 0].to_csv(src / "ratings.csv", index=False)  # other data
    with pytest.raises(ConfigError) as e:
        er.cross_validate(str(src / "ratings.csv"), cfg, folds=3, output=out, ks=(10,))
    said = re.fullmatch(f"'{re.escape(str(out))}' holds a cross-validation of other data \\('{re.escape(str(src))}/"
                        "ratings.csv' changed since its folds were ingested: SHA-256 [0-9a-f]{12}\\.\\.\\., now "
                        "[0-9a-f]{12}\\.\\.\\.\\): rerun with (.+) to redo its folds on the data as it is now, or "
                        "choose another (.+)", e.value.cli_message())
    assert said and said.group(1, 2) == ("--fresh", "--output"), e.value.cli_message()
    truth = er.cross_validate(str(src / "ratings.csv"), cfg, folds=3, output=tmp_path / "new", ks=(10,))
    cv = er.cross_validate(str(src / "ratings.csv"), cfg, folds=3, output=out, ks=(10,), fresh=True)
    assert [f["kept"] for f in cv.folds] == [""] * 3 and cv.summary == truth.summary
    (src / "ratings.csv").write_bytes(first)  # back to the first data, the record lost: each fold done again
    (out / RESULTS).unlink()
    was = er.cross_validate(str(src / "ratings.csv"), cfg, folds=3, output=tmp_path / "first", ks=(10,))
    cv = er.cross_validate(str(src / "ratings.csv"), cfg, folds=3, output=out, ks=(10,))
    assert [f["kept"] for f in cv.folds] == [""] * 3 and cv.summary == was.summary != truth.summary


def test_a_release_folders_file_changed_or_gone_is_noticed(tmp_path, ml100k_dir):
    """A source folder (a release's layout) is compared file by file as its dataset recorded them: u.data edited,
    or u.user removed, is other data."""
    from embedrec.crossval import _source_changed

    cfg = fast_cfg(tmp_path, **{"data.source": str(ml100k_dir)})
    api.prepare(cfg.updated({"data.prepared": str(tmp_path / "ds")}))
    manifest = er.load_dataset(tmp_path / "ds").manifest
    assert sorted(manifest["inputs"]) == ["u.data", "u.item", "u.user"]
    assert _source_changed(manifest, cfg.data) is None
    (ml100k_dir / "u.user").unlink()
    assert _source_changed(manifest, cfg.data) == f"'{ml100k_dir / 'u.user'}' is gone since its folds were ingested"
    with open(ml100k_dir / "u.data", "a", encoding="utf-8") as fh:
        fh.write("1\t2\t3\t881250950\n")
    assert _source_changed(manifest, cfg.data).startswith(f"'{ml100k_dir / 'u.data'}' changed since its folds were "
                                                          "ingested: SHA-256 ")
    assert _source_changed(manifest, cfg.data.__class__(**{**cfg.data.__dict__, "source": "ml-100k"})) is None


def test_a_dataframe_source_is_kept_while_it_is_the_same_frame(source, tmp_path):
    """er.cross_validate(df) reads the frame from a cache file named by its content: the same frame again keeps
    the folds (its file written again, of the same bytes); another frame is another data.source, refused."""
    cfg, out = fast_cfg(tmp_path), tmp_path / "cv"
    df = pd.read_csv(source / "ratings.csv")
    er.cross_validate(df, cfg, folds=2, output=out, ks=(10,))
    cv = er.cross_validate(df.copy(), cfg, folds=2, output=out, ks=(10,))
    assert [f["kept"] for f in cv.folds] == ["run", "run"]
    other = df[df.index % 5 != 0]
    with pytest.raises(ConfigError, match=r"holds a cross-validation of another config \(data.source .*dataframe-"):
        er.cross_validate(other, cfg, folds=2, output=out, ks=(10,))


def _release(kind: str, d: Path) -> Path:
    """A tiny release folder of ``kind`` (some without their optional files), for the file list below."""
    from tests.test_ingest_layouts import ml1m, ml100k, mlcsv

    if kind.startswith("ml-100k"):
        ml100k(d, item=kind != "ml-100k-bare")
        if kind == "ml-100k":
            write(d / "u.user", "".join(f"{u}|{20 + u}|M|writer|0{u}000\n" for u in range(1, 8)))
    elif kind in ("ml-1m", "ml-10m"):
        ml1m(d)
        if kind == "ml-10m":
            (d / "users.dat").unlink()
    elif kind.startswith("ml-csv"):
        mlcsv(d / "below" if kind == "ml-csv-below" else d, movies=kind != "ml-csv-bare")
    else:
        head = "user_id:token\titem_id:token\trating:float\n"
        for part in ("train", "test"):
            write(d / f"x.{part}.inter", head + "".join(f"{u}\t{m}\t{(u + m) % 5 + 1}\n" for u in range(1, 6)
                                                        for m in range(1, 5)))
        write(d / "x.item", "item_id:token\ttitle:token_seq\n" + "".join(f"{m}\tFilm {m}\n" for m in range(1, 5)))
    return d


@pytest.mark.parametrize("kind", ["ml-100k", "ml-100k-bare", "ml-1m", "ml-10m", "ml-csv", "ml-csv-bare", "ml-csv-below",
                                  "recbole", "table", "table-movies"])
def test_the_files_a_source_would_be_read_from_are_those_its_reader_reads(tmp_path, kind):
    """readers.source_files, what cross-validate compares a fold's recorded inputs with, finds the files of each
    layout as its reader reads them (RawData.files, what ingest records), the optional ones only where there."""
    from embedrec.config import ColumnsConfig, DataConfig
    from embedrec.data.readers import read_source, source_files

    if kind.startswith("table"):
        src = _release("ml-csv", tmp_path / "t")
        cfg = DataConfig(source=str(src / "ratings.csv"), columns=ColumnsConfig(user="userId", movie="movieId"),
                         movies=str(src / "movies.csv") if kind == "table-movies" else None)
    else:
        cfg = DataConfig(source=str(_release(kind, tmp_path / "r")))
    found = source_files(cfg)
    assert found == read_source(cfg).files and found
    want = {"ml-100k": 3, "ml-100k-bare": 1, "ml-1m": 3, "ml-10m": 2, "ml-csv": 2, "ml-csv-bare": 1,
            "ml-csv-below": 2, "recbole": 3, "table": 1, "table-movies": 2}[kind]
    assert len(found) == want, found


def test_a_file_added_to_a_release_folder_since_its_folds_is_other_data(source, tmp_path):
    """A red team: a release folder of ratings.csv alone was cross-validated, then its movies.csv put beside it: the
    rerun kept every fold (only the files recorded then were compared) and gave the figures of the folds read
    without it, exit 0. A file the source would be read from now and was not then is other data, refused as an
    edited file is, with --fresh; gone again, the folds are kept."""
    import shutil

    src = tmp_path / "rel2"
    src.mkdir()
    shutil.copy(source / "ratings.csv", src / "ratings.csv")
    cfg, out = fast_cfg(tmp_path), tmp_path / "cv"
    er.cross_validate(str(src), cfg, folds=2, output=out, ks=(10,))
    shutil.copy(source / "movies.csv", src / "movies.csv")
    with pytest.raises(ConfigError) as e:
        er.cross_validate(str(src), cfg, folds=2, output=out, ks=(10,))
    assert e.value.cli_message() == (f"'{out}' holds a cross-validation of other data ('{src / 'movies.csv'}' is new "
                                     "since its folds were ingested, which read the source without it): rerun with "
                                     "--fresh to redo its folds on the data as it is now, or choose another --output")
    (src / "movies.csv").unlink()
    cv = er.cross_validate(str(src), cfg, folds=2, output=out, ks=(10,))
    assert [f["kept"] for f in cv.folds] == ["run", "run"]


def test_a_source_changed_between_folds_is_refused_before_that_fold_is_trained(source, tmp_path, monkeypatch):
    """A red team: r.csv replaced while cross-validate ran (after fold 2 of 3 was ingested), so fold 3 read other
    data than folds 1-2, and the mean of the three was reported, exit 0. Each fold's recorded source files must be
    fold 1's: else one line saying the source changed during the run, exit 1, before that fold is trained or
    scored, and the rerun is refused as other data until --fresh redoes every fold."""
    import shutil

    from embedrec import crossval
    from embedrec.crossval import RESULTS

    src = tmp_path / "src"
    shutil.copytree(source, src)
    ratings = src / "ratings.csv"
    real = crossval._evaluate

    def evaluate(fcfg, ks):  # fold 1 scored, then the source replaced (write and rename) before fold 2's ingest
        got = real(fcfg, ks)
        if fcfg.split.fold == 0:
            frame = pd.read_csv(ratings)
            frame[frame.index % 5 != 0].to_csv(src / "new.csv", index=False)
            (src / "new.csv").replace(ratings)
        return got

    monkeypatch.setattr(crossval, "_evaluate", evaluate)
    out = tmp_path / "cv"
    sets = [x for k, v in {**FAST, "train.als_dims": "[]"}.items() for x in ("--set", f"{k}={v}")]
    args = ["cross-validate", ratings, "--folds", "3", "-o", out, "-k", "10", "--metrics", "ndcg", "--format",
            "tsv", *sets, "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    r = invoke(*args)
    assert r.exit_code == 1 and r.stdout == "", r.stderr
    line = r.stderr.splitlines()[-1]
    said = re.fullmatch(f"error: the source '{re.escape(str(ratings))}' changed while the cross-validation in "
                        f"'{re.escape(str(out))}' ran \\('ratings.csv': fold 2 read it with SHA-256 ([0-9a-f]{{12}})"
                        "\\.\\.\\., fold 1 read it with SHA-256 ([0-9a-f]{12})\\.\\.\\.\\), so its 3 folds would mix two "
                        "versions of the data, and fold 2 is not trained; once the source is no longer written to, "
                        "rerun with --fresh to redo every fold on it as it is then", line)
    assert said and said.group(1) != said.group(2), r.stderr
    assert "Traceback" not in r.stderr
    assert [f["fold"] for f in json.loads((out / RESULTS).read_text())["folds"]] == [0]
    assert not (out / "fold-1" / "run").exists()
    monkeypatch.setattr(crossval, "_evaluate", real)
    r = invoke(*args)  # the source as it is now is not fold 1's: other data
    assert r.exit_code == 2 and "holds a cross-validation of other data ('" in r.stderr and "--fresh" in r.stderr
    r = invoke(*args, "--fresh")
    fresh = invoke(*args[:5], tmp_path / "new", *args[6:])
    assert r.exit_code == 0 and fresh.exit_code == 0 and r.stdout == fresh.stdout, (r.stderr, fresh.stderr)


def test_a_kept_fold_changed_by_update_users_or_with_a_damaged_checkpoint_is_said_with_cross_validate_s_way_on(
        source, tmp_path):
    """A red team: update-users re-solved a fold's users with its own test rows, and the rerun kept that fold and
    scored it (ndcg@10 0.06 to 0.73, exit 0); a finished fold's leftover checkpoint damaged stopped the rerun with
    'train again without resuming', an option cross-validate has not. The first is refused, the second says
    --fresh or the fold's folder to remove, and removing the folder redoes that fold alone."""
    from embedrec.data.dataset import load_dataset

    sets = [x for k, v in {**FAST, "train.als_dims": "[]"}.items() for x in ("--set", f"{k}={v}")]
    out = tmp_path / "cv"
    base = ["cross-validate", source, "--folds", "2", "-o", out, "-k", "10", "--metrics", "ndcg", *sets, "--set",
            f"data.cache_dir={tmp_path / 'cache'}"]
    first = invoke(*base)
    assert first.exit_code == 0, first.stderr
    test = load_dataset(out / "fold-0" / "data").split_frame("test")
    rows = test[test.user_id.isin(test.user_id.unique()[:5])][["user_id", "movie_id", "rating"]]
    rows.to_csv(tmp_path / "leak.csv", index=False)
    r = invoke("update-users", "--run", out / "fold-0" / "run", "--ratings", tmp_path / "leak.csv", "-q")
    assert r.exit_code == 0, r.stderr
    r = invoke(*base)
    assert r.exit_code == 1 and r.stdout == "", r.stderr
    assert f"error: fold 1's run '{out / 'fold-0' / 'run'}' was changed since cross-validate trained it (update-users " \
           f"re-solved 5 of its users" in r.stderr and f"or remove '{out / 'fold-0'}' to redo that fold alone" in r.stderr
    shutil.rmtree(out / "fold-0")
    ckpt = sorted((out / "fold-1" / "run").glob("als-*/checkpoint.pt"))[0]
    b = bytearray(ckpt.read_bytes())
    b[len(b) // 2] ^= 1
    ckpt.write_bytes(bytes(b))
    r = invoke(*base)
    assert r.exit_code == 1 and "train again without resuming" not in r.stderr, r.stderr
    assert f"rerun with --fresh to redo the folds, or remove '{out / 'fold-1'}' to redo that fold alone" in r.stderr
    shutil.rmtree(out / "fold-1")
    r = invoke(*base)
    assert r.exit_code == 0 and r.stdout == first.stdout, r.stderr  # the folds redone: the same figures


def test_the_same_source_file_named_another_way_is_the_same_cross_validation(source, tmp_path, monkeypatch):
    """A red team: `cross-validate r.csv -o cv` then `cross-validate ./r.csv -o cv` (or its absolute path) was
    refused as 'another config (data.source r.csv, now ./r.csv)', only --fresh (every fold redone) going on. The
    same file, named another way, is the same cross-validation; its datasets kept; the figures the same."""
    sets = [x for k, v in {**FAST, "train.als_dims": "[]"}.items() for x in ("--set", f"{k}={v}")]
    monkeypatch.chdir(source.parent)
    rest = ["--folds", "2", "-o", tmp_path / "cv", "-k", "10", "--metrics", "ndcg", *sets, "--set",
            f"data.cache_dir={tmp_path / 'cache'}"]
    first = invoke("cross-validate", source.name, *rest)
    assert first.exit_code == 0, first.stderr
    for named in (f"./{source.name}", str(source), f"{source.name}/"):
        r = invoke("cross-validate", named, *rest)
        assert r.exit_code == 0 and r.stdout == first.stdout, r.stderr
        assert r.stderr.count("kept from an earlier run") == 2, r.stderr


def test_a_kept_fold_whose_index_alone_is_damaged_is_trained_again(source, tmp_path):
    """A diff review: after train --resume learnt to name index rebuild for a finished run whose FAISS index alone
    is damaged, a cross-validate rerun stopped on such a fold with 'nothing to resume' (an option it has not),
    where it had trained the fold again. It trains it again: no update-users change can be lost there (such a fold
    is refused)."""
    sets = [x for k, v in {**FAST, "train.als_dims": "[]", "index.kind": "hnsw"}.items() for x in ("--set", f"{k}={v}")]
    out = tmp_path / "cv"
    base = ["cross-validate", source, "--folds", "2", "-o", out, "-k", "10", "--metrics", "ndcg", *sets, "--set",
            f"data.cache_dir={tmp_path / 'cache'}"]
    first = invoke(*base)
    assert first.exit_code == 0, first.stderr
    index = next(p for p in (out / "fold-0" / "run" / "current").iterdir() if p.name.endswith(".faiss"))
    b = bytearray(index.read_bytes())
    b[len(b) // 2] ^= 1
    index.write_bytes(bytes(b))
    r = invoke(*base)
    assert r.exit_code == 0 and r.stdout == first.stdout, r.stderr
    assert invoke("verify", out / "fold-0" / "run").exit_code == 0


def test_a_warning_of_the_sources_reading_is_said_once_not_once_a_fold(tmp_path):
    """A first-hour review: each fold ingests the source, and its reading's warnings ('skipped 1 line ...') came
    once a fold; said once now, the others as they were."""
    rng = np.random.default_rng(1)
    lines = [f"{u},{m},{1 + (u + m) % 5}" for u in range(60) for m in rng.choice(80, 12, replace=False)]
    src = write(tmp_path / "cv.csv", "user_id,movie_id,rating\n" + "\n".join(lines) + "\n1,2,3,4\n")
    r = CliRunner().invoke(main, ["cross-validate", str(src), "--folds", "3", "--output", str(tmp_path / "cv"),
                                  "--set", "data.bad_lines=skip", "--set", "model.dim=8", "--set", "train.threads=1"])
    assert r.exit_code == 0, r.stderr
    assert r.stderr.count("skipped 1 line with more than the 3 fields its header names") == 1, r.stderr
    assert r.stderr.count("fold 2 of 3: into") == 1 and r.stderr.count("fold 3 of 3: into") == 1
    import logging

    assert not [f for f in logging.getLogger("embedrec").filters if type(f).__name__ == "_OnceFilter"]
