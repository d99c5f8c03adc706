"""`evaluate --against RUN` (Model.evaluate(against=...)): other runs scored beside the model on the same dataset
and split, paired with it user by user (an explicit model's RMSE and MAE too, and against its rating baselines);
runs trained on another dataset, another split of it, or another ingest of its folder refused in one line."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.errors import UsageError

SMALL = ("model.dim=8", "train.epochs=3", "train.refit=false", "train.optimizer=adam", "train.threads=1")


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_dir):
    """Runs on the synthetic data: 'exp' (explicit, dim 8) and 'exp4' (explicit, dim 4) and 'rank' (the default
    ranking model) on one dataset; 'copy' (explicit) on a copy of that dataset's folder (the same files); 'split7'
    (explicit) on another split of the same source (split.seed=7); 'refit' (explicit, refit on train+valid) on
    the first dataset; 'before' and 'after' on two ingests of one folder (another split.seed between them)."""
    import embedrec as er
    from embedrec.config import load_config

    tmp = tmp_path_factory.mktemp("against")
    src = str(synth_dir[0])
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test cache of _isolate is not set yet
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))

        def run(name, ds_dir, *extra, ingest=False, overwrite=False):
            cfg = load_config(None, (f"data.prepared={tmp / ds_dir}", f"run.dir={tmp / name}", *SMALL, *extra))
            ds = er.ingest(src, cfg, overwrite=overwrite) if ingest else str(tmp / ds_dir)
            er.train(ds, cfg).save(cfg.run.dir)

        run("exp", "ds", "model.objective=explicit", ingest=True)
        run("exp4", "ds", "model.objective=explicit", "model.dim=4")
        run("rank", "ds")
        run("refit", "ds", "model.objective=explicit", "train.refit=true")
        shutil.copytree(tmp / "ds", tmp / "ds_copy", symlinks=True)
        run("copy", "ds_copy", "model.objective=explicit")
        run("split7", "ds7", "model.objective=explicit", "split.seed=7", ingest=True)
        run("before", "again", "model.objective=explicit", ingest=True)
        run("after", "again", "model.objective=explicit", "split.seed=7", ingest=True, overwrite=True)
    return tmp


def test_against_runs_are_rows_and_paired_with_the_model_user_by_user(runs, tmp_path):
    """An explicit run against another explicit run and a ranking run: each is a row under its folder's name with
    the figures its own evaluate gives (known answer), its per-user columns NAME:... in --per-user's file; the
    paired differences (model-NAME) are the means of the per-user columns' differences with their SE, ranking
    metrics for both, RMSE and MAE for the explicit pair only: rmse the difference of the printed figures, user_mse
    each user's MSE (rmse squared) difference averaged over users; the rating baselines paired the same way."""
    import pandas as pd

    out = tmp_path / "users.csv"
    r = invoke("evaluate", "--run", runs / "exp", "--against", runs / "exp4", "--against", runs / "rank", "-k", "10",
               "--format", "json", "--per-user", out)
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    rows, paired = got["splits"]["test"], got["paired"]["test"]
    assert list(rows) == ["model", "global_mean", "biases", "most_popular", "exp4", "rank"]
    assert list(paired) == ["global_mean", "biases", "most_popular", "exp4", "rank"]
    assert got["against"] == {"exp4": {"run": str(runs / "exp4")}, "rank": {"run": str(runs / "rank")}}
    for name in ("exp4", "rank"):  # the row is what evaluate of that run gives as its model row
        alone = json.loads(invoke("evaluate", "--run", runs / name, "-k", "10", "--format", "json").stdout)
        assert rows[name] == pytest.approx(alone["splits"]["test"]["model"], rel=1e-12), name
    frame = pd.read_csv(out)
    assert {"exp4:ndcg@10", "exp4:rmse", "exp4:mae", "rank:ndcg@10", "global_mean:rmse", "biases:mae"} <= \
        set(frame.columns)
    assert not {"rank:rmse", "exp4:ratings", "exp4:users_evaluated"} & set(frame.columns)
    assert frame["exp4:ndcg@10"].mean() == pytest.approx(rows["exp4"]["ndcg@10"], abs=1e-6)
    n = frame["ratings"]
    for name in ("exp4", "global_mean", "biases"):  # the printed RMSE: the root of the ratings-weighted mean MSE
        assert np.sqrt((frame[f"{name}:rmse"] ** 2 * n).sum() / n.sum()) == pytest.approx(rows[name]["rmse"],
                                                                                          rel=1e-6), name
    assert list(paired["rank"]) == [k for k in paired["exp4"] if "@" in k]  # ranking metrics only
    rated = list(paired["exp4"]).index("rmse")
    assert list(paired["exp4"])[rated:rated + 4] == ["rmse", "user_mse", "mae", "user_mae"]
    assert list(paired["biases"]) == ["rmse", "user_mse", "mae", "user_mae"]
    for name in ("exp4", "rank"):
        for metric in ("ndcg@10", "novelty@10"):
            d = frame[metric] - frame[f"{name}:{metric}"]
            v = paired[name][metric]
            assert v["difference"] == pytest.approx(d.mean(), abs=1e-6) and v["users"] == len(d)
            assert v["difference"] == pytest.approx(rows["model"][metric] - rows[name][metric], abs=1e-9)
            assert v["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)), rel=1e-4)
            assert v["tie"] == (abs(v["difference"]) <= 2 * v["se"])
    for name in ("exp4", "global_mean", "biases"):
        mse = frame["rmse"] ** 2 - frame[f"{name}:rmse"] ** 2
        v = paired[name]["user_mse"]
        assert v["difference"] == pytest.approx(mse.mean(), abs=1e-6)
        assert v["se"] == pytest.approx(mse.std(ddof=1) / np.sqrt(len(mse)), rel=1e-4)
        assert v["tie"] == (abs(v["difference"]) <= 2 * v["se"]) and v["users"] == len(mse)
        mae = frame["mae"] - frame[f"{name}:mae"]
        assert paired[name]["user_mae"]["difference"] == pytest.approx(mae.mean(), abs=1e-6)
        for m in ("rmse", "mae"):  # the headline: the difference of the printed figures, no SE
            assert paired[name][m]["difference"] == pytest.approx(rows["model"][m] - rows[name][m], abs=1e-9)
            assert paired[name][m]["se"] is None and paired[name][m]["tie"] is None
    assert "user_mse and user_mae the paired one: each user's mean squared (or absolute) error minus OTHER's, " \
        "averaged over users" in r.stderr, r.stderr
    assert invoke("evaluate", "--run", runs / "exp", "--against", runs / "exp4", "-q", "--per-user", out,
                  "--overwrite").exit_code == 0  # still a file evaluate wrote, with its NAME:rmse columns
    # a terminal's table: a column a comparison; rmse's cell the difference alone, user_mse's with its SE; the
    # rating rows a table of their own, the ranking rows another, each with the columns holding a value there
    r = invoke("evaluate", "--run", runs / "exp", "--against", runs / "exp4", "-k", "10", "--metrics", "rmse,ndcg",
               "--format", "table")
    lines = r.stdout.splitlines()
    assert r.exit_code == 0 and lines[0].split() == ["metric", "model", "global_mean", "biases", "exp4",
                                                     "model-global_mean", "model-biases", "model-exp4"], r.stdout
    assert [line.split()[0] if line else "" for line in lines[1:]] == ["rmse", "user_mse", "", "metric", "ndcg@10"]
    assert lines[4].split() == ["metric", "model", "most_popular", "exp4", "model-most_popular", "model-exp4"]
    assert lines[1].split()[-1] == f"{paired['exp4']['rmse']['difference']:+.4f}"
    assert lines[2].split()[-3:] == [f"{paired['exp4']['user_mse']['difference']:+.4f}", "+-",
                                     f"{paired['exp4']['user_mse']['se']:.4f}"]


def test_a_run_against_itself_and_its_copy_is_a_tie_of_zero(runs):
    """The run against itself (given twice, so each under the path as given: the folder's name is the same) differs
    by 0 with an SE of 0 on every paired metric, ties; a run trained on a copy of the dataset's folder (the same
    files) is paired, not refused."""
    import embedrec as er

    names = [str(runs / "exp"), f"{runs / 'exp'}/"]
    with er.open(runs / "exp") as m:
        res = m.evaluate("test", ks=10, against=[runs / "exp", names[1]])
    paired = res["paired"]["test"]
    assert list(paired)[-2:] == names
    for name in names:
        assert {(v["difference"], v["se"] if v["se"] is not None else 0.0) for v in paired[name].values()} == \
            {(0.0, 0.0)}
        assert all(v["tie"] for k, v in paired[name].items() if k not in ("rmse", "mae"))
    r = invoke("evaluate", "--run", runs / "exp", "--against", runs / "copy", "-k", "10", "--format", "json")
    assert r.exit_code == 0 and "copy" in json.loads(r.stdout)["paired"]["test"], r.stderr


def test_runs_of_another_dataset_split_or_ingest_are_refused_in_one_line(runs):
    """Pairing needs the same users and held-out rows: a run on another split of the same source (its own folder),
    one trained on an earlier ingest of the model's dataset folder, a refit run on valid and a dataset folder given
    as a run are each refused in one line before anything is scored (nothing on stdout)."""
    r = invoke("evaluate", "--run", runs / "exp", "--against", runs / "split7")
    assert (r.exit_code, r.stdout) == (2, "") and r.stderr == (
        f"error: run '{runs / 'exp'}' was trained on '{runs / 'ds'}' and run '{runs / 'split7'}' on "
        f"'{runs / 'ds7'}', whose files differ (the same source files, split or read otherwise), so they do not "
        "score the same users on the same held-out rows: a paired difference needs both; give --against a run "
        f"trained on the model's dataset as it is, or train run '{runs / 'split7'}' again on it\n"), r.stderr
    r = invoke("evaluate", "--run", runs / "after", "--against", runs / "before")
    assert (r.exit_code, r.stdout) == (2, "") and r.stderr.startswith(
        f"error: run '{runs / 'after'}' and run '{runs / 'before'}' were trained on two ingests of the dataset "
        f"'{runs / 'again'}' (its files changed between their trainings: another split, or other ratings), so they "
        "do not score") and r.stderr.count("\n") == 1, r.stderr
    r = invoke("evaluate", "--run", runs / "exp", "--split", "valid", "--against", runs / "refit")
    assert (r.exit_code, r.stdout) == (2, "") and r.stderr == (
        f"error: run '{runs / 'refit'}' (--against) was refit on train+valid, so its valid split is training data; "
        "evaluate --split test, or leave it out of --against\n"), r.stderr
    r = invoke("evaluate", "--run", runs / "exp", "--against", runs / "ds")
    assert (r.exit_code, r.stdout) == (1, "") and "is a prepared dataset" in r.stderr and \
        r.stderr.count("\n") == 1, r.stderr
    assert invoke("evaluate", "--run", runs / "exp", "--against", runs / "refit", "-q", "--format",
                  "json").exit_code == 0  # on test the refit run is paired (the figures of a refit, as its own)


def test_a_run_whose_user_ids_hold_an_id_twice_is_refused_as_model_and_as_against(runs, tmp_path):
    """Session 51's red team: evaluate, which looks no id up, scored a re-sealed run whose user_ids.npy held an id
    twice, where recommend, export and verify refuse it. It is refused now, in their line, as the model's run and
    as an --against run, before anything is scored."""
    import os
    from pathlib import Path

    from embedrec.errors import cli_terms
    from embedrec.run_fixes import run_fix
    from embedrec.run_publish import _record_checksums

    bad = tmp_path / "twice"
    shutil.copytree(runs / "exp4", bad, symlinks=True)
    folder = Path(os.path.realpath(bad / "current"))
    ids = np.load(folder / "user_ids.npy")
    ids[3] = ids[2]
    np.save(folder / "user_ids.npy", ids)
    _record_checksums(folder)
    line = (f"error: run '{folder}': user_ids.npy holds user id {ids[2]} twice (rows 2 and 3); "
            f"{cli_terms(run_fix(folder))}\n")
    for args in (("--run", bad), ("--run", runs / "exp", "--against", bad)):
        r = invoke("evaluate", *args, "-k", "10")
        assert (r.exit_code, r.stdout, r.stderr) == (1, "", line), (args, r.stderr)
    assert invoke("evaluate", "--run", runs / "exp", "--against", runs / "exp4", "-k", "10").exit_code == 0


def test_the_library_takes_folders_opened_models_and_names(runs):
    """Model.evaluate(against=): a folder, an opened model (er.open), a list, or a dict {name: run}; names of
    evaluate's own rows and --lists' refused, as a run given twice under one name; an er.train model in memory
    refused with how to save it; TrainedModel.evaluate pairs a saved run trained on its dataset."""
    import pandas as pd

    import embedrec as er

    lists = pd.DataFrame({"user_id": [1], "movie_id": [1], "rank": [1]})  # a peer's, for the names (never scored)
    with er.open(runs / "exp") as m, er.open(runs / "exp4") as other:
        by_dict = m.evaluate("test", ks=10, against={"small": runs / "exp4"})
        by_model = m.evaluate("test", ks=10, against=other)
        assert list(by_dict["paired"]["test"]["small"]) == list(by_model["paired"]["test"]["exp4"])
        assert by_dict["paired"]["test"]["small"]["user_mse"] == by_model["paired"]["test"]["exp4"]["user_mse"]
        for against, line in (({"biases": runs / "exp4"}, "a run given twice, or named as another row is"),
                              ({"peer": runs / "exp4"}, "a run given twice, or named as another row is"),
                              (42, "against=int: give a run folder, an opened model (er.open), or a list"),
                              ([], "against= names no run"), ("", "against= holds an empty path")):
            with pytest.raises(UsageError, match=line.replace("(", r"\(").replace(")", r"\)")):
                m.evaluate("test", ks=10, against=against, lists={"peer": lists})
        res = m.evaluate("test", ks=10, against=runs / "exp4", per_user=True, metrics=("rmse",))
        assert list(res["per_user"].columns) == ["user_id", "rmse", "ratings", "global_mean:rmse", "biases:rmse",
                                                 "exp4:rmse"]
    import copy

    from embedrec.config import load_config

    cfg = load_config(None, (f"data.prepared={runs / 'ds'}", f"run.dir={runs / 'unsaved'}", *SMALL,
                             "model.objective=explicit", "model.dim=4"))
    trained = er.train(str(runs / "ds"), copy.deepcopy(cfg))
    res = trained.evaluate("test", ks=10, against=runs / "exp")
    assert res["paired"]["test"]["exp"]["user_mse"]["users"] == res["splits"]["test"]["model"]["users_evaluated"]
    with er.open(runs / "exp") as m, pytest.raises(UsageError, match=r"this model is in memory only \(er.train\)"):
        m.evaluate("test", ks=10, against=trained)
    with pytest.raises(UsageError, match="whose files differ"):
        trained.evaluate("test", ks=10, against=runs / "split7")


def test_cli_help_names_against():
    r = invoke("evaluate", "-h")
    assert r.exit_code == 0 and "--against RUN" in r.stdout and "embedrec evaluate --run runs/a --against runs/b" \
        in r.stdout


def test_an_against_runs_index_and_untrained_users_are_said_as_the_models(tmp_path):
    """Session 52 left the lines evaluate says of the model's run alone unsaid of an --against run: the note of an
    approximate index it serves through (its row ranks exactly) and the warning of users with no trained vector
    (its users_untrained, in the JSON only). Each is said now, naming the run; a flat run and one with every user
    trained say neither."""
    import embedrec as er
    from embedrec.config import load_config

    rows = [(u, m, 4, 1000 + u * 10 + m) for u in range(1, 21) for m in range(1, 9)]
    rows += [(u, m, 4, 800_000 + u * 10 + m) for u in range(1, 21) for m in range(9, 11)]
    rows += [(u, m, 4, 900_000 + u * 10 + m) for u in range(21, 31) for m in range(1, 9)]  # test only: no vector
    src = tmp_path / "r.csv"
    src.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in rows))
    sets = (f"data.prepared={tmp_path / 'ds'}", "split.method=global_time", "split.test=0.3", "split.valid=0.1",
            "split.cold_start=true", "model.objective=implicit", "model.dim=4", "train.threads=1",
            "train.refit=false", f"data.cache_dir={tmp_path / 'cache'}")
    er.ingest(str(src), load_config(None, sets))
    for name in ("a", "b"):
        cfg = load_config(None, (*sets, f"run.dir={tmp_path / name}", f"train.seed={ord(name)}"))
        er.train(str(tmp_path / "ds"), cfg).save(cfg.run.dir)
    r = invoke("index", "rebuild", "--run", tmp_path / "b", "--set", "index.kind=hnsw", "--set", "index.hnsw_m=8")
    assert r.exit_code == 0, r.stderr
    recall = json.loads(r.stdout)["recall@10"]
    r = invoke("evaluate", "--run", tmp_path / "a", "--against", tmp_path / "b", "-k", "5", "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["splits"]["test"]["b"]["users_untrained"] == 10 == got["splits"]["test"]["model"]["users_untrained"]
    assert got["against"]["b"]["served_index"] == {"kind": "hnsw", "recall@10": recall}
    assert "served_index" not in got  # the model's own index is flat: no note of it
    lines = r.stderr.splitlines()
    assert [line for line in lines if line.startswith("note: ")] == [
        f"note: the row of run 'b' (--against) ranks every movie exactly; recommend serves it through its hnsw index "
        f"(recall@10 {recall:.4f} of the exact lists when built), so its lists can differ a little: score them with "
        f"export --run {tmp_path / 'b'} --topk-all FILE then evaluate --lists FILE"], r.stderr
    untrained = [line for line in lines if "of the users scored on test have no training rating" in line]
    assert len(untrained) == 2 and "so the model has no vector for them" in untrained[0], r.stderr
    assert untrained[1].startswith("10 of the users scored on test") and \
        "so run 'b' (--against) has no vector for them" in untrained[1], r.stderr
    r = invoke("evaluate", "--run", tmp_path / "b", "--against", tmp_path / "a", "-k", "5")  # the other way round
    assert r.exit_code == 0 and "recommend serves through this run's hnsw index" in r.stderr and \
        "the row of run 'a' (--against)" not in r.stderr and "so run 'a' (--against) has no vector" in r.stderr, r.stderr
