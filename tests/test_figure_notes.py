"""The notes said beside a run's figures (embedrec/figure_notes.py). An architecture review: the warnings and notes
of `train` and `evaluate` were worded in the CLI alone, so a notebook's er.train and model.evaluate said none of
them. The library words them now and logs them; the CLI logs the same ones between its own lines, its stderr as it
was (the CliRunner tests of each note, in tests/test_against.py, test_als.py, test_beyond.py, test_cli.py,
test_ingest.py, test_train.py and test_first_hour.py, are unchanged)."""

import json
import logging

import pytest
from click.testing import CliRunner

from embedrec.errors import cli_terms
from embedrec.figure_notes import (
    Note,
    baseline_notes,
    epoch_notes,
    evaluate_notes,
    held_out_notes,
    log_notes,
    split_notes,
    train_notes,
)


def cli_line(note: Note) -> str:
    """The line the CLI shows of ``note`` (its marks in CLI terms, its arguments as they are)."""
    msg = cli_terms(note.msg)
    return msg % note.args if note.args else msg


@pytest.fixture
def logged(caplog, monkeypatch):
    """The embedrec logger's lines at INFO and above, as (level, message), in library terms."""
    from embedrec.errors import TermsFilter

    log = logging.getLogger("embedrec")
    monkeypatch.setattr(log, "propagate", True)  # off after any CLI test in this process
    monkeypatch.setattr(log, "filters", [TermsFilter(cli=False)])  # as import embedrec sets it (the CLI's swap)
    caplog.set_level(logging.INFO, logger="embedrec")

    def lines():
        return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "embedrec"]

    lines.clear = caplog.clear
    return lines


# ------------------------------------------------------------------------------------------ the wording

def _evaluated(**extra) -> dict:
    return {"splits": {"test": {"model": {"ndcg@10": 0.3, "users_untrained": 0}, "most_popular": {"ndcg@10": 0.2}}},
            "beyond_accuracy": {"genres": 18}, **extra}


def test_evaluate_notes_say_an_approximate_index_where_there_is_one():
    served = {"served_index": {"kind": "hnsw", "recall@10": 0.95}}
    [note] = evaluate_notes(_evaluated(**served), "test")
    assert note.level == logging.INFO
    assert cli_line(note) == ("note: the model row ranks every movie exactly; recommend serves through this run's "
                              "hnsw index (recall@10 0.9500 of the exact lists when built), so its lists can differ "
                              "a little: score them with export --topk-all FILE then evaluate --lists FILE")
    assert str(note).endswith("score them with model.topk_all(path) then model.evaluate(lists={'served': "
                              "embedrec.list_metrics.read_lists(path)})")
    assert "(recall@10" not in str(evaluate_notes(_evaluated(served_index={"kind": "ivf"}), "test")[0])
    assert evaluate_notes(_evaluated(), "test") == []  # a flat index: nothing to say


def test_evaluate_notes_say_an_against_runs_index_and_its_untrained_users_naming_it():
    metrics = _evaluated(against={"b«x|y»": {"run": "runs/my b", "served_index": {"kind": "hnsw"}}})
    metrics["splits"]["test"]["model"]["users_untrained"] = 1234
    metrics["splits"]["test"]["b«x|y»"] = {"ndcg@10": 0.1, "users_untrained": 10}
    model, index, run = evaluate_notes(metrics, "test")
    assert [n.level for n in (model, index, run)] == [logging.WARNING, logging.INFO, logging.WARNING]
    assert cli_line(model).startswith("1,234 of the users scored on test have no training rating (split.cold_start's")
    assert "so the model has no vector for them" in cli_line(model)
    assert "; recommend answers them with --fallback popular (the most popular movies;" in cli_line(model)
    assert "; Model.recommend answers them with missing='popular' (the most popular" in str(model)
    # the run's name as given, never read as marks; the path quoted for a shell
    assert cli_line(index) == ("note: the row of run 'b«x|y»' (--against) ranks every movie exactly; recommend serves it "
                               "through its hnsw index, so its lists can differ a little: score them with export "
                               "--run 'runs/my b' --topk-all FILE then evaluate --lists FILE")
    assert str(index).startswith("note: the row of run 'b«x|y»' (against=) ranks every movie exactly")
    assert cli_line(run).startswith("10 of the users scored on test") and \
        "so run 'b«x|y»' (--against) has no vector for them" in cli_line(run)
    assert "so run 'b«x|y»' (against=) has no vector" in str(run)


def test_evaluate_notes_warn_of_ild_only_where_it_is_named_and_there_are_no_genres():
    none = _evaluated(beyond_accuracy={"genres": 0})
    said = "ild: the movies of this dataset have no genres, so their lists have no genre diversity to measure"
    assert [(n.level, str(n)) for n in evaluate_notes(none, "test", named=["ndcg", " ILD "])] == \
        [(logging.WARNING, said)]
    assert evaluate_notes(none, "test", named=["beyond"]) == []  # a group naming it is no ask
    assert evaluate_notes(none, "test") == []
    assert evaluate_notes(_evaluated(), "test", named=["ild"]) == []  # genres: ild is measured


def test_evaluate_notes_say_what_the_paired_rows_are_and_which_are_ties():
    def pair(diff, users, tie):
        return {"difference": diff, "se": 0.01, "users": users, "tie": tie}

    paired = {"test": {"most_popular": {"ndcg@10": pair(0.1, 900, False), "recall@10": pair(0.0, 900, True)},
                       "runs b": {"ndcg@10": pair(0.0, 1200, True), "recall@10": pair(0.0, 1200, True)}}}
    [note] = evaluate_notes(_evaluated(paired=paired), "test")
    assert note.level == logging.INFO
    assert cli_line(note) == (
        "model-OTHER: the model's metric minus OTHER's, paired user by user over the users both score (1,200 at "
        "most), then its standard error (model-OTHER se; after +- in a table); a difference within two SE of 0 is a "
        "tie: most_popular on recall@10; runs b on every metric")
    assert str(note).startswith("paired['test'][OTHER]: the model's metric minus OTHER's, paired user by user")
    assert "then its standard error (se); a difference" in str(note)
    rated = {"valid": {"biases": {"rmse": {"difference": -0.1, "se": None, "users": 50, "tie": None},
                                  "user_mse": pair(-0.2, 50, False)}}}
    [note] = evaluate_notes(_evaluated(paired=rated), "valid")
    assert cli_line(note).endswith("(50), then its standard error (model-OTHER se; after +- in a table); for rmse "
                                   "the difference of the figures over all the ratings (no SE), and user_mse the "
                                   "paired one: each user's mean squared error minus OTHER's, averaged over users; "
                                   "a difference within two SE of 0 is a tie: none here is")
    assert evaluate_notes(_evaluated(paired={"test": {}}), "test") == []
    # of the figures as shown (evaluate --metrics' choice), where given
    assert evaluate_notes(_evaluated(paired=paired), "test", shown={"paired": {"test": {}}}) == []


def test_baseline_notes_are_behind_baselines_warnings():
    behind = {"splits": {"test": {"model": {"ndcg@10": 0.1}, "most_popular": {"ndcg@10": 0.2}}}}
    [note] = baseline_notes(behind)
    assert note.level == logging.WARNING and str(note) == cli_line(note) == (
        "on the test split the model's ndcg@10 (0.1000) is no better than most_popular's (0.2000): its lists are no "
        "better than the most popular movies here")
    assert baseline_notes(_evaluated()) == []


def _trained(best=3, run=3, valid=0.25, evaluated=(20, 20), test=True) -> dict:
    splits = {"valid": {"model": {"ndcg@10": 0.2, "users_evaluated": 20, "users_with_rows": 20}}}
    if test:
        splits["test"] = {"model": {"ndcg@10": 0.3, "users_evaluated": evaluated[0], "users_with_rows": evaluated[1]},
                          "most_popular": {"ndcg@10": 0.1}}
    return {"selection": {"best_epoch": best, "epochs_run": run, "valid": valid, "metric": "ndcg@10"},
            "splits": splits}


def test_the_epoch_note_is_said_where_the_best_epoch_was_the_cap():
    [note] = epoch_notes(_trained(), 3, lambda n: f"embedrec train --set train.epochs={n} --resume")
    assert note.level == logging.INFO and cli_line(note) == (
        "note: the best epoch was the last of train.epochs (3): the fit may not have converged; more epochs may score "
        "better: go on with embedrec train --set train.epochs=6 --resume")
    assert str(epoch_notes(_trained(), 3)[0]).endswith("go on with cfg.updated({'train.epochs': 6})")
    assert epoch_notes(_trained(best=2), 3) == [] and epoch_notes(_trained(), 4) == []
    assert epoch_notes(_trained(best=1, run=1), 1) == []  # one epoch: no cap to reach
    assert epoch_notes(_trained(valid=float("nan")), 3) == [] and epoch_notes(_trained(valid=None), 3) == []


def test_split_notes_say_a_sample_and_a_test_split_held_out():
    sampled, held = split_notes(_trained(evaluated=(10, 1234)), lambda: "embedrec ingest x --set split.test=0")
    assert cli_line(sampled) == ("the test ranking metrics are over a seeded sample of 10 of its 1,234 users "
                                 "(train.eval_users); 'embedrec evaluate' ranks them all")
    assert str(sampled).endswith("(train.eval_users); model.evaluate() ranks them all")
    assert cli_line(held) == ("the test split is held out of this model to measure it, so recommend can list a movie a "
                              "user rated there; to serve on every rating, ingest it again with no test split "
                              "(embedrec ingest x --set split.test=0) and train again")
    assert "(er.ingest(source, cfg.updated({'split.test': 0}), overwrite=True))" in str(split_notes(_trained())[0])
    asked = []
    assert split_notes(_trained(test=False), lambda: asked.append(1)) == [] and not asked  # the hint is not made
    assert held_out_notes(_trained()) == []  # (test_train.py words it)


def test_train_notes_come_in_the_commands_order():
    metrics = _trained(evaluated=(10, 20))
    metrics["splits"]["test"]["model"]["ndcg@10"] = 0.05
    metrics["held_out"] = {"valid": {"ratings": 100, "users": 10}, "test": {"ratings": 300, "users": 10}}
    said = [str(n) for n in train_notes(metrics, 3)]
    assert [s.split(" ")[:3] for s in said] == [["note:", "the", "best"], ["on", "the", "test"],
                                                ["note:", "valid", "and"], ["the", "test", "ranking"],
                                                ["the", "test", "split"]]


def test_log_notes_logs_each_at_its_level_its_arguments_as_they_are(logged):
    notes = [Note(logging.INFO, "note: «--against|against=» %s at 100%%", ("a«b|c»",)), Note(logging.WARNING, "plain")]
    log_notes(notes)
    assert logged() == [(logging.INFO, "note: against= a«b|c» at 100%"), (logging.WARNING, "plain")]
    assert [str(n) for n in notes] == ["note: against= a«b|c» at 100%", "plain"]


# ------------------------------------------------------------------------------------------ the library logs them

def _small(tmp_path, *more):
    """A small implicit dataset (60 users x 30 movies) ingested, and its config (als, 2 epochs, one thread)."""
    import numpy as np

    import embedrec as er

    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = "".join(f"{u},{m},4\n" for u in range(1, 61) for m in range(1, 31) if rng.random() < 0.5)
    (tmp_path / "r.csv").write_text("user_id,movie_id,rating\n" + rows)
    cfg = er.load_config(None, [f"data.prepared={tmp_path / 'ds'}", f"run.dir={tmp_path / 'run'}", "model.dim=4",
                                "train.epochs=2", "train.threads=1", "train.als_reg=0.01",
                                "train.als_user_unobserved=1", *more])
    er.ingest(str(tmp_path / "r.csv"), cfg)
    return cfg


def _notes_of(lines) -> list[str]:
    """The lines of train's notes among a fit's log lines."""
    starts = ("note: the best epoch", "on the ", "note: valid and test", "the test ranking", "the valid ranking",
              "the test split is held out")
    return [m for _, m in lines if m.startswith(starts)]


def test_er_train_logs_trains_notes_as_the_library_words_them(tmp_path, logged):
    import embedrec as er

    cfg = _small(tmp_path, "train.eval_users=10")
    logged.clear()
    model = er.train(None, cfg)
    expected = [str(n) for n in train_notes(model.metrics, cfg.train.epochs, lambda n: (
        f"er.train(ds, cfg.updated({{'train.epochs': {n}}})), which starts again (embedrec.api.train_run(cfg, "
        "resume=True) goes on from a run's checkpoint)"))]
    said = _notes_of(logged())
    assert said == expected
    assert "the test ranking metrics are over a seeded sample of 10 of its " in "\n".join(said)
    assert any(s.startswith("the test split is held out of this model") and "(er.ingest(source, cfg.updated("
               "{'split.test': 0}), overwrite=True))" in s for s in said)
    # every user ranked, no test split: neither is said
    cfg = _small(tmp_path / "b", "split.test=0")
    logged.clear()
    er.train(None, cfg)
    said = "\n".join(m for _, m in logged())
    assert "seeded sample" not in said and "the test split is held out" not in said


def test_train_run_logs_them_once_it_published_a_model(tmp_path, logged):
    from embedrec.api import train_run

    cfg = _small(tmp_path)
    logged.clear()
    metrics = train_run(cfg)
    said = _notes_of(logged())
    assert said == [str(n) for n in train_notes(metrics, cfg.train.epochs, lambda n: (
        f"train_run(cfg.updated({{'train.epochs': {n}}}), resume=True)"))] and said
    logged.clear()
    train_run(cfg, resume=True)  # a finished run: nothing trained, nothing said of it
    assert any(m.startswith("nothing to resume") for _, m in logged()) and _notes_of(logged()) == []
    logged.clear()
    train_run(cfg.updated({"run.dir": str(tmp_path / "quiet")}), notes=False)  # the CLI's, which says them itself
    assert _notes_of(logged()) == []


def test_model_evaluate_logs_evaluates_notes(trained_run, logged):
    res = trained_run.opened.evaluate("test", ks=[5])
    expected = [(n.level, str(n)) for n in (*evaluate_notes(res, "test"), *baseline_notes(res))]
    assert logged() == expected
    paired = [m for _, m in logged() if m.startswith("paired['test'][OTHER]: the model's metric minus OTHER's")]
    assert len(paired) == 1 and "global_mean" in json.dumps(res["paired"])
    logged.clear()
    trained_run.opened.evaluate("test", ks=[5], notes=False)
    assert logged() == []
    # a TrainedModel's (er.train's) alike
    res = trained_run.model.evaluate("test", ks=[5])
    assert logged() == [(n.level, str(n)) for n in (*evaluate_notes(res, "test"), *baseline_notes(res))]


def test_model_evaluate_writing_per_user_logs_them_once(trained_run, tmp_path, logged):
    res = trained_run.opened.evaluate("test", ks=[5], per_user=str(tmp_path / "u.csv"))
    assert (tmp_path / "u.csv").is_file()
    assert logged() == [(n.level, str(n)) for n in (*evaluate_notes(res, "test"), *baseline_notes(res))]


# ------------------------------------------------------------------------------------------ the CLI says them once

def test_the_cli_says_each_note_once_in_its_own_terms(trained_run):
    from embedrec.cli import main

    r = CliRunner().invoke(main, ["evaluate", "--run", trained_run.cfg.run.dir, *trained_run.sets, "-k", "5",
                                  "--format", "json"])
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    lines = r.stderr.splitlines()
    notes = [cli_line(n) for n in (*evaluate_notes(res, "test"), *baseline_notes(res))]
    assert notes and all(lines.count(line) == 1 for line in notes), r.stderr  # not once more by the library
    assert lines[-len(notes):] == notes  # after the line of what was ranked, the baselines' warnings last
    assert not any(line.startswith("paired[") for line in lines)  # CLI terms
    r = CliRunner().invoke(main, ["-q", "evaluate", "--run", trained_run.cfg.run.dir, *trained_run.sets, "-k", "5",
                                  "--format", "json"])
    assert r.stderr.splitlines() == [cli_line(n) for n in (*evaluate_notes(res, "test"), *baseline_notes(res))
                                     if n.level >= logging.WARNING]  # -q: the warnings alone, as ever
