import json
import os
from pathlib import Path

import pytest

from embedrec.config import Config
from embedrec.errors import ConfigError, UsageError
from embedrec.ingestion import ingest
from embedrec.tune import choose, sweep, write_choice

from .conftest import repo_pythonpath


@pytest.fixture(scope="module")
def tune_cfg(tmp_path_factory, synth_dir):
    tmp = tmp_path_factory.mktemp("tune")
    cfg = Config()
    cfg = cfg.updated({"model.objective": 'explicit', "train.refit": False})
    cfg = cfg.updated({"data.source": str(synth_dir[0]), "data.prepared": str(tmp / 'ds'), "run.dir": str(tmp / 'run')})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    cfg = cfg.updated({"train.epochs": 40, "train.lr": 0.01, "train.patience": 3})
    # model.dim 4: the fourth root of 200 movies, always a trial, so the config's own dimension adds none
    cfg = cfg.updated({"train.weight_decay_user": 0.02, "train.weight_decay_movie": 0.02, "model.dim": 4})
    return cfg.updated({"train.optimizer": "hogwild"})  # a trial in 0.3-0.9 s (adam: 3-4 s, test time)


def test_sweep_finds_planted_rank_and_resumes(tune_cfg, tmp_path):
    """Ratings have a planted rank of 4: the validation optimum lands near it, and a rerun keeps trials."""
    res = sweep(tune_cfg, [1, 2, 4, 16, 64], tolerance=0.01)
    assert res["fourth_root"] == 4  # 200 movies
    assert res["chosen"]["dim"] in (4, 8)
    by_dim = {t["dim"]: t for t in res["trials"]}
    assert by_dim[1]["valid_metric"] > by_dim[4]["valid_metric"]  # too few dimensions underfit
    assert by_dim[64]["train_metric"] < by_dim[4]["train_metric"]  # many dimensions fit training data closer
    png = res["plot"]
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    again = sweep(tune_cfg, [1, 2, 4, 8, 16, 64], tolerance=0.01)
    old = {t["key"]: t["seconds"] for t in res["trials"]}
    assert all(t["seconds"] == old[t["key"]] for t in again["trials"] if t["key"] in old)
    saved = json.loads(open(res["results"]).read())
    assert len(saved["trials"]) == 6
    # the config's own model.dim (16) is a trial even when --dims leaves it out (a first-hour review: the advice
    # was a dimension worse than the one the config trained at), marked as the fourth root is
    few = sweep(tune_cfg.updated({"model.dim": 16}), [2], tolerance=0.01)  # 16's trial kept from the first sweep
    assert [t["dim"] for t in few["trials"]] == [2, 4, 16] and few["current"] == 16
    assert [t["dim"] for t in few["trials"] if t["current"]] == [16]
    assert [t["dim"] for t in few["trials"] if t["fourth_root"]] == [4]
    auto = sweep(tune_cfg.updated({"model.dim": "auto"}), [4], tolerance=0.01)  # a review: "auto" < 4, TypeError
    # a red team: a weight decay given twice ran two trials racing on one folder (a file-system error)
    twice = sweep(tune_cfg.updated({"model.dim": 4}), [4], [0.02, 0.02, 2e-2], tolerance=0.01)
    assert [(t["dim"], t["weight_decay"]) for t in twice["trials"]] == [(4, 0.02)]
    assert [t["dim"] for t in auto["trials"]] == [4] and auto["current"] == 4 and auto["trials"][0]["current"]
    # no tolerance given: tune.tolerance auto, as train would choose (an explicit model: the best), recorded with
    # the best beside the choice, in tune.json too
    default = sweep(tune_cfg, [1, 2, 4, 16, 64])  # (every trial kept from the first sweep)
    scores = {t["dim"]: t["valid_metric"] for t in default["trials"]}
    best = min(scores, key=scores.get)  # rmse: lower is better
    assert default["tolerance"] == 0.0 and default["rule"]["source"] == "auto" and default["chosen"]["dim"] == best
    assert default["rule"]["best"] == {"dim": best, "weight_decay": None, "valid_metric": scores[best]}
    saved = json.loads(open(default["results"]).read())
    assert saved["rule"] == default["rule"] and saved["chosen"]["dim"] == default["chosen"]["dim"]
    again = sweep(tune_cfg, [1, 2, 4, 16, 64], tolerance=0.01)
    assert again["rule"]["source"] == "given" and again["rule"]["tolerance"] == 0.01


def test_auto_tolerance_is_train_s_rule_for_the_als_model_and_the_best_for_the_others():
    from embedrec.training.dims import DIM_GAIN
    from embedrec.tune import auto_tolerance

    assert auto_tolerance(Config()) == DIM_GAIN == 0.005  # the default model: als
    assert auto_tolerance(Config().updated({"model.objective": "explicit"})) == 0.0
    assert auto_tolerance(Config().updated({"model.loss": "bpr"})) == 0.0
    assert Config().tune.tolerance == "auto"


def test_choose_with_tolerance():
    trials = [{"dim": d, "valid_metric": v, "weight_decay": None} for d, v in ((8, 0.95), (32, 0.93), (64, 0.925))]
    assert choose(trials, "rmse", 0.0)["dim"] == 64
    assert choose(trials, "rmse", 0.01)["dim"] == 32
    ndcg = [{"dim": d, "valid_metric": v, "weight_decay": None} for d, v in ((8, 0.30), (32, 0.29), (64, 0.20))]
    assert choose(ndcg, "ndcg@10", 0)["dim"] == 8
    assert choose(ndcg[1:], "ndcg@10", 0.5)["dim"] == 32


def test_choose_keeps_the_current_config_within_the_tolerance():
    """A first-hour review: a weight-decay sweep advised als_reg 0.02 at the config's own dimension for +0.0002 on
    valid, inside the 0.5% the rule calls noise: at the chosen dimension the current config is kept where it is
    within the tolerance of the best; a larger gain, or a smaller dimension within it, is still advised."""
    from embedrec.training.dims import DIM_GAIN
    from embedrec.tune import describe_choice

    def trials(mine: float):
        t = [{"dim": 128, "weight_decay": None, "valid_metric": mine},  # the config: als_reg auto
             {"dim": 128, "weight_decay": 0.02, "valid_metric": 0.2182},
             {"dim": 16, "weight_decay": 0.02, "valid_metric": 0.2000}]
        return t, t[0]

    t, mine = trials(0.2180)
    assert choose(t, "ndcg@10", DIM_GAIN, mine) is mine
    assert choose(t, "ndcg@10", DIM_GAIN)["weight_decay"] == 0.02  # without the config: the best, as before
    assert choose(t, "ndcg@10", 0.0, mine)["weight_decay"] == 0.02  # --tolerance 0: the best
    t, mine = trials(0.2150)  # 1.5% below: a gain worth advising
    assert choose(t, "ndcg@10", DIM_GAIN, mine)["weight_decay"] == 0.02
    t, mine = trials(0.2180)
    assert choose(t, "ndcg@10", 0.1, mine)["dim"] == 16  # a smaller dimension within 10% still wins
    # rmse: lower is better
    r = [{"dim": 32, "weight_decay": None, "valid_metric": 0.9020}, {"dim": 32, "weight_decay": 0.1,
                                                                     "valid_metric": 0.9018}]
    assert choose(r, "rmse", DIM_GAIN, r[0]) is r[0] and choose(r, "rmse", 0.0, r[0]) is r[1]
    # said as the current config kept, not 'the best'
    t, mine = trials(0.2180)
    res = {"rule": {"source": "auto", "tolerance": DIM_GAIN, "best": t[1]}, "chosen": mine}
    said = describe_choice(res)
    assert said.startswith("the current config, within 0.5% of the best, weight decay 0.02's 0.2182"), said


def test_choose_is_train_s_rule_and_never_reads_the_test_metric():
    """A review: tune-dims chose dim 256 at valid 0.2385 over 64 at 0.2383 (0.08% for 4x the parameters), where
    train's train.als_dims keeps the smallest dimension within 0.5% of the best (training.dims.pick_dim): tune.choose
    is that function, tune.tolerance auto its DIM_GAIN; the test column is never read."""
    from embedrec.training.dims import DIM_GAIN, pick_dim

    class NoTest(dict):
        def __getitem__(self, key):
            assert key != "test_metric", "the choice read the test metric"
            return super().__getitem__(key)

        def get(self, key, default=None):
            assert key != "test_metric", "the choice read the test metric"
            return super().get(key, default)

    review = [NoTest(dim=d, valid_metric=v, weight_decay=None, test_metric=t)
              for d, v, t in ((16, 0.2301, 0.30), (64, 0.2383, 0.10), (256, 0.2385, 0.20))]
    assert choose(review, "ndcg@10", DIM_GAIN)["dim"] == 64 == pick_dim({16: 0.2301, 64: 0.2383, 256: 0.2385},
                                                                         "ndcg@10")
    assert choose(review, "ndcg@10", 0.0)["dim"] == 256  # --tolerance 0: the best
    assert choose(review, "ndcg@10", 0.05)["dim"] == 16  # 0.2301 is within 5% of 0.2385
    # nor depends on it by any other read (a review: dict(t), .items() or {**t} would pass the checks above): the
    # same choice with the test column's values turned around, and with no test column at all
    import itertools

    for tol in (DIM_GAIN, 0.0, 0.05):
        want = choose(review, "ndcg@10", tol)["dim"]
        for tests in itertools.permutations((0.30, 0.10, 0.20, float("nan")), 3):
            moved = [dict(t, test_metric=x) for t, x in zip(review, tests)]
            assert choose(moved, "ndcg@10", tol)["dim"] == want, (tol, tests)
        bare = [{k: v for k, v in t.items() if k != "test_metric"} for t in review]
        assert choose(bare, "ndcg@10", tol)["dim"] == want
    # weight decays: each dimension by its best trial, then the rule
    wd = [NoTest(dim=d, valid_metric=v, weight_decay=w, test_metric=0.0)
          for d, v, w in ((32, 0.200, 0.1), (32, 0.2395, 0.01), (64, 0.2400, 0.1), (64, 0.150, 0.01))]
    got = choose(wd, "ndcg@10", DIM_GAIN)
    assert (got["dim"], got["weight_decay"]) == (32, 0.01)
    # lower is better (rmse), and a negative score's margin is of its size, not turned around
    rmse = [{"dim": d, "valid_metric": v, "weight_decay": None} for d, v in ((8, 0.9047), (32, 0.9039), (128, 0.9018))]
    assert choose(rmse, "rmse", DIM_GAIN)["dim"] == 8 and choose(rmse, "rmse", 0.0)["dim"] == 128
    assert pick_dim({4: -1.004, 8: -1.0}, "ndcg@10", 0.005) == 4 and pick_dim({4: -1.006, 8: -1.0}, "ndcg@10") == 8


def test_describe_choice_says_the_rule_and_the_best_beside_the_choice():
    from embedrec.tune import describe_choice

    best = {"dim": 256, "weight_decay": None, "valid_metric": 0.23851}
    res = {"chosen": {"dim": 64, "valid_metric": 0.2383}, "rule": {"source": "auto", "tolerance": 0.005, "best": best}}
    assert describe_choice(res) == (
        "the smallest dimension within 0.5% of the best, dim 256's 0.2385 (tune.tolerance auto: train.als_dims' "
        "rule, a larger dimension kept only when it beats the smaller ones by more than 0.5%)")
    res["chosen"] = {"dim": 256, "valid_metric": 0.23851}
    assert describe_choice(res).startswith("the best (no smaller dimension within 0.5% of it; tune.tolerance auto")
    res["rule"] = {"source": "given", "tolerance": 0.0, "best": best}
    assert describe_choice(res) == "the best (the tolerance given, 0%)"
    res["rule"] = {"source": "auto", "tolerance": 0.0, "best": best}  # auto on a model other than als
    assert describe_choice(res) == ("the best (tune.tolerance auto: train chooses no dimension for this model, so the "
                                    "best; a tolerance such as 0.01 prefers a smaller one within 1% of it)")


def test_sweep_values_are_checked_before_any_trial_naming_the_option(tmp_path):
    """A dimension or weight decay the config refuses names the option (before: a trial's error named the key
    «from updated()», and for als the user weight decay, which als never reads)."""
    cfg = Config().updated({"data.prepared": str(tmp_path / "none"), "tune.dir": str(tmp_path / "tune")})
    with pytest.raises(UsageError) as e:
        sweep(cfg, [16, 0])
    assert str(e.value) == "dims 0: 0 is below the minimum 1 (it sets model.dim)"
    with pytest.raises(UsageError) as e:
        sweep(cfg.updated({"tune.weight_decays": [-0.5]}))
    assert str(e.value) == "tune.weight_decays -0.5: -0.5 is below the minimum 0.0 (it sets train.als_reg)"
    with pytest.raises(UsageError) as e:  # the default model is als: the weight decay is its als_reg
        sweep(cfg, [16], [0.1, 2000])
    assert str(e.value) == "weight_decays 2000: 2000.0 is above the maximum 1000.0 (it sets train.als_reg)"
    with pytest.raises(UsageError) as e:
        sweep(cfg.updated({"model.objective": "explicit"}), [16], [-1])
    assert str(e.value) == "weight_decays -1: -1.0 is below the minimum 0.0 (it sets train.weight_decay_user)"
    assert not (tmp_path / "tune").exists()


def test_a_dataset_without_validation_rows_or_an_unwritable_write_folder_is_refused_before_the_trials(
        tune_cfg, tmp_path, monkeypatch):
    """A first-hour pass: a dataset ingested with split.valid=0 ran every trial ('valid ndcg@10 nan') before 'is
    the valid split empty?'; a --write folder this user cannot write in was found only after the sweep."""
    import errno

    from embedrec.errors import OutputRefused

    cfg = tune_cfg.updated({"split.valid": 0.0, "data.prepared": str(tmp_path / "nv"), "run.dir": str(tmp_path / "r")})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    with pytest.raises(ConfigError, match=r"chooses the dimension on the validation split, and '.*nv' has none "
                                          r"\(ingested with split.valid=0\); ingest again with a validation share"):
        sweep(cfg, [2])
    assert not (tmp_path / "r").exists()
    # a valid split of users without a training rating alone (a global time cut's later users) is said as train
    # says it (a review: every trial ran, then "is the valid split empty?")
    import pandas as pd

    rows = [(u, m, 1 + (u * m) % 5, 1000 + u * 20 + m) for u in range(1, 36) for m in range(1, 21) if (u + m) % 2]
    rows += [(u, m, 4, 10 ** 6 + u * 20 + m) for u in range(100, 110) for m in range(1, 16)]  # the latest 150
    pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"]).to_csv(tmp_path / "t.csv", index=False)
    late = cfg.updated({"data.source": str(tmp_path / "t.csv"), "data.prepared": str(tmp_path / "late"),
                        "split.method": "global_time", "split.valid": 0.1, "split.test": 0.2})
    ingest(late.data, late.split, output=late.data.prepared)
    with pytest.raises(ConfigError, match=r"chooses the dimension on the validation split, and in '.*late' none of "
                                          r"the 50 validation ratings is of a user with a training rating \(users "
                                          r"first seen after the training window.*; ingest again with a split"):
        sweep(late, [2])
    assert not (tmp_path / "r").exists()

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))
    import embedrec.fsutil.outputs as outputs

    # root here: a mode bit does not bind it; the folder's probe (an unnamed file, O_TMPFILE, else a named one) denied
    monkeypatch.setattr(outputs, "_probe", denied)
    with pytest.raises(OutputRefused, match=rf"write {tmp_path / 't.yaml'}: permission denied on '{tmp_path}'; "
                                            "choose another folder"):
        write_choice(tune_cfg, {"dim": 4, "weight_decay": None}, tmp_path / "t.yaml", None)


def test_write_inside_the_sweep_s_own_folder_is_refused_before_the_trials(tmp_path):
    """A red team: `tune-dims --run runs/t --write runs/t/tune/tuned.yaml` wrote the config, and the next sweep
    refused runs/t/tune as holding a file tune-dims did not write. Such a --write (RUN/tune, or tune.dir) is refused
    before any trial, in one line; beside it is fine."""
    import embedrec as er

    cfg = Config().updated({"run.dir": str(tmp_path / "runs" / "t"), "data.prepared": str(tmp_path / "nope")})
    for write, c in ((tmp_path / "runs" / "t" / "tune" / "tuned.yaml", cfg),
                     (tmp_path / "td" / "x.yaml", cfg.updated({"tune.dir": str(tmp_path / "td")}))):
        with pytest.raises(UsageError, match=r"^write .*: inside the folder the sweep keeps its trials in "):
            er.tune_dims(c, dims=[4], write=write)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "td").exists()


def test_write_refuses_input_config(tmp_path):
    cfg = Config()
    cfg = cfg.updated({"model.objective": 'explicit', "train.refit": False})
    p = tmp_path / "in.yaml"
    p.write_text("model:\n  dim: 8\n")
    chosen = {"dim": 16, "weight_decay": 0.1, "metric": "rmse", "valid_metric": 0.9}
    with pytest.raises(UsageError, match="refusing to overwrite the input config"):
        write_choice(cfg, chosen, p, str(p))
    out = write_choice(cfg, chosen, tmp_path / "new.yaml", str(p))
    from embedrec.config import load_config

    new = load_config(out)
    assert new.model.dim == 16 and new.train.weight_decay_movie == 0.1
    # an existing file is replaced only with overwrite=True, and only one tune-dims wrote (or an empty one): a
    # first-hour review: `--write mydata.csv --overwrite` replaced the user's file with YAML
    mine = tmp_path / "mine.yaml"
    mine.write_text("my precious config\n")
    from embedrec.errors import OutputExists, OutputRefused

    for overwrite in (False, True):
        with pytest.raises(OutputRefused) as e:
            write_choice(cfg, chosen, mine, str(p), overwrite=overwrite)
        assert str(e.value) == (f"write {mine}: the file exists and tune-dims did not write it (its first line is not "
                                "'# written by embedrec tune-dims'); overwrite=True only replaces embedrec's own: "
                                "choose a new file name, or move that file away first")
    assert mine.read_text() == "my precious config\n"
    with pytest.raises(OutputExists, match=r"the file exists \(tune-dims wrote it\); pass overwrite=True"):
        write_choice(cfg, {**chosen, "dim": 32}, out, str(p))  # as every output that exists
    assert load_config(out).model.dim == 16
    assert write_choice(cfg, {**chosen, "dim": 32}, out, str(p), overwrite=True) == out
    assert load_config(out).model.dim == 32
    mine.write_text("")  # an empty file: nothing to lose
    write_choice(cfg, chosen, mine, str(p), overwrite=True)
    assert load_config(mine).model.dim == 16
    with pytest.raises(UsageError, match=r"write .*z\.csv: a config is YAML; give a file name ending in \.yaml"):
        write_choice(cfg, chosen, tmp_path / "z.csv", str(p), overwrite=True)
    # a red team: a link to nothing counted as no file (replaced without overwrite), a link to an empty file was
    # swapped for a file, and a first line merely starting with the mark counted as tune-dims'
    import os

    for target in ("nowhere.yaml", str(mine)):
        link = tmp_path / "link.yaml"
        link.unlink(missing_ok=True)
        os.symlink(target, link)
        for overwrite in (False, True):
            with pytest.raises(OutputRefused, match=r"link\.yaml: a symbolic link \(to '.*'\); give the file's own path"):
                write_choice(cfg, chosen, link, str(p), overwrite=overwrite)
        assert link.is_symlink()
    lookalike = tmp_path / "lookalike.yaml"
    lookalike.write_text("# written by embedrec tune-dimsXYZ\nmy settings\n")
    with pytest.raises(OutputRefused, match="tune-dims did not write it"):
        write_choice(cfg, chosen, lookalike, str(p), overwrite=True)


def test_sweep_of_the_default_model_runs_trains_selection(synth_dir, tmp_path):
    """The default (als) model: each trial is what `train` fits, its als_reg and als_recency candidates chosen on
    valid (a per-user time split: recency 0 and 2 are both tried), and the trial says what was chosen."""
    from embedrec.data.dataset import load_dataset
    from embedrec.training.select import fit_selecting

    cfg = Config().updated({"data.source": str(synth_dir[0]), "data.prepared": str(tmp_path / "ds"),
                            "run.dir": str(tmp_path / "run"), "split.method": "user_time", "train.epochs": 4,
                            "train.threads": 1, "tune.workers": 1})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    res = sweep(cfg, [4])
    (trial,) = [t for t in res["trials"] if t["dim"] == 4]
    assert trial["als_reg"] in (0.01, 0.02) and trial["als_recency"] in (0.0, 2.0)
    assert (tmp_path / "run" / "tune" / "d4" / "als-reg-0.01-recency-2").is_dir()
    best, chosen = fit_selecting(load_dataset(cfg.data.prepared), cfg.updated({"model.dim": 4}), tmp_path / "again")
    assert trial["valid_metric"] == best.best_value
    assert (trial["als_reg"], trial["als_recency"]) == (chosen.train.als_reg, chosen.train.als_recency)
    # the unobserved weight as a number, auto's or the half candidate's (a first-hour pass: it read 'auto')
    from embedrec.training.als import auto_unobserved

    ds = load_dataset(cfg.data.prepared)
    a0 = chosen.train.als_unobserved
    want = auto_unobserved(len(ds.splits["train"]), ds.n_users, ds.n_movies) if a0 == "auto" else a0
    assert isinstance(trial["als_unobserved"], float) and trial["als_unobserved"] == pytest.approx(want, abs=1e-6)


def test_trials_of_an_earlier_procedure_are_not_reused(monkeypatch):
    """A trial's hash names how trials are run: trials saved by an earlier procedure (the als model's trial was
    one fit before it became train's selection) hash differently and are redone."""
    import embedrec.tune as T

    cfg = Config().to_dict()
    now = T.trial_config_hash(cfg, 8, None, {"inputs": {"a": "1"}})
    monkeypatch.setattr(T, "TRIAL_PROCEDURE", T.TRIAL_PROCEDURE - 1)
    assert T.trial_config_hash(cfg, 8, None, {"inputs": {"a": "1"}}) != now


def test_a_second_sweep_into_the_same_folder_is_refused(tune_cfg, tmp_path):
    """tune-dims took no writer lock: two sweeps into one tune.dir both ran and the second's tune.json lost the
    first's finished trials. The second is refused in one line naming the holder."""
    import fcntl
    import os

    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.errors import ArtifactError
    from embedrec.tune import LOCK

    out = tmp_path / "tune"
    out.mkdir()
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, b"4244 embedrec tune-dims\n", 0)
    try:
        with pytest.raises(ArtifactError, match="another embedrec tune-dims is writing"):
            sweep(tune_cfg.updated({"tune.dir": str(out)}), [4])
        r = CliRunner().invoke(main, ["tune-dims", "-q", "--dims", "4", "--set", f"data.prepared={tune_cfg.data.prepared}",
                                      "--set", "model.objective=explicit", "--set", f"tune.dir={out}"])
        assert r.exit_code == 75 and "Traceback" not in r.stderr
        assert r.stderr.splitlines() == [f"error: another embedrec tune-dims is writing '{out}' (pid 4244); wait for it "
                                         "to finish, or use another tune.dir"]
    finally:
        os.close(fd)
    assert not (out / "tune.json").exists()


def test_an_edited_tune_record_is_refused_not_reused(tune_cfg, tmp_path):
    """tune.json had no checksum: a hand-edited valid_metric was reused as a finished trial (and could be chosen).
    It is sealed like a manifest; a record that fails the seal is refused, and --fresh redoes its trials."""
    from embedrec.errors import ArtifactError

    cfg = tune_cfg.updated({"tune.dir": str(tmp_path / "tune"), "train.epochs": 3, "tune.workers": 1})
    res = sweep(cfg, [4])
    p = tmp_path / "tune" / "tune.json"
    saved = json.loads(p.read_text())
    assert saved.get("manifest_sha256")
    assert sweep(cfg, [4])["chosen"]["seconds"] == res["chosen"]["seconds"]  # sealed and intact: reused
    saved["trials"][0]["valid_metric"] = 0.01
    p.write_text(json.dumps(saved))
    with pytest.raises(ArtifactError) as e:
        sweep(cfg, [4])
    assert e.value.cli_message() == (f"tune results '{p}' does not match its checksum (damaged or edited); rerun "
                                     "with --fresh to redo its trials")
    saved.pop("manifest_sha256")  # a review: with the seal removed as well, the edit was reused (and chosen)
    p.write_text(json.dumps(saved))
    with pytest.raises(ArtifactError, match="have lost their own checksum"):
        sweep(cfg, [4])
    from embedrec.fsutil.integrity import seal

    p.write_text(json.dumps(seal({**saved, "trials": [{"key": "d4"}]})))  # sealed, but not tune-dims' trials
    with pytest.raises(ArtifactError, match="hold trials that are not what tune-dims writes"):
        sweep(cfg, [4])
    again = sweep(cfg, [4], fresh=True)
    assert again["chosen"]["valid_metric"] != 0.01 and json.loads(p.read_text())["manifest_sha256"]


@pytest.mark.parametrize("tolerance", [float("nan"), -0.05, 1.0, 0.995])
def test_sweep_refuses_a_tolerance_outside_0_to_1(tolerance, tmp_path):
    """Outside 0 to 0.99, the config key's range (a review: 0.995 passed the argument, refused by the key)."""
    from embedrec.config import load_config
    from embedrec.errors import UsageError
    from embedrec.tune import sweep

    cfg = load_config(None, [f"data.prepared={tmp_path / 'none'}"])
    with pytest.raises(UsageError, match=r"expected a share from 0 to 0\.99 \(99%\)"):  # the argument's fault (a red team)
        sweep(cfg, tolerance=tolerance)


def test_a_trial_does_not_start_once_the_sweep_stops(monkeypatch, tmp_path):
    """A worker that takes a queued trial after the sweep stopped (its StopPipe set) returns at once, before
    loading anything or writing into the tune folder: with one trial per process, a replacement worker would
    otherwise start the next trial after a stopped one."""
    import multiprocessing as mp
    import time

    import embedrec.tune as T
    import embedrec.worker_pool as W
    from embedrec.errors import Interrupted

    stop = W.StopPipe(mp.get_context("spawn"))
    monkeypatch.setattr(W, "_stop", stop.reader)
    try:
        cfg = Config().updated({"data.prepared": str(tmp_path / "no-such-dataset")}).to_dict()
        assert not W.ended(stop.reader)
        stop.set()
        t0 = time.perf_counter()
        with pytest.raises(Interrupted, match="trial d8 was not started"):
            T.run_trial(cfg, 8, None, str(tmp_path / "tune"), 1)
        assert time.perf_counter() - t0 < 1
        assert not (tmp_path / "tune").exists() and W._in_job is False
    finally:
        stop.close()


def _blocked_signals() -> list[int]:  # runs in a tune worker process (spawned: importable by name)
    import signal

    return sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))


@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="POSIX signal masks")
def test_workers_hold_ctrl_c_and_sigterm_until_their_handlers_are_in():
    """Ctrl-C reaching a worker while its interpreter started killed it there (a page of worker tracebacks,
    "Fatal Python error: init_import_site") instead of the one line. Workers now start with SIGINT and SIGTERM
    blocked (inherited from the pool's start) and worker_pool.init_worker unblocks them once its handlers are in."""
    import concurrent.futures as cf
    import multiprocessing as mp
    import signal

    import embedrec.worker_pool as W

    ctx = mp.get_context("spawn")
    held = {int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGHUP)}
    with W.stop_signals_held():
        with cf.ProcessPoolExecutor(1, mp_context=ctx) as pool:  # no initializer: nothing unblocks them
            assert held <= set(pool.submit(_blocked_signals).result(timeout=60))
    assert not held & set(_blocked_signals())  # the parent's mask is back
    stop = W.StopPipe(ctx)
    try:
        with W.stop_signals_held():
            with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=W.init_worker,
                                        initargs=(stop.reader, os.getpid())) as pool:
                assert not held & set(pool.submit(_blocked_signals).result(timeout=60))
    finally:
        stop.close()


def _env_value(name: str) -> str | None:  # runs in a pool worker (importable by name)
    import embedrec.worker_pool as W

    with W.job("stopping"):
        return os.environ.get(name)


def test_workers_see_the_environment_as_it_is_at_each_pool_not_as_the_forkserver_started(monkeypatch):
    """Workers fork from a forkserver (torch imported once, not 3-7 s in each worker), which keeps the environment
    of its start; a job runs in the caller's environment as it is when the pool starts (EMBEDREC_CACHE, CC...)."""
    import embedrec.worker_pool as W

    got: list = []
    monkeypatch.delenv("EMBEDREC_TEST_VAR", raising=False)
    W.run_jobs(_env_value, [(("EMBEDREC_TEST_VAR",), ())], 1, lambda r: got.append(r))
    monkeypatch.setenv("EMBEDREC_TEST_VAR", "second")
    W.run_jobs(_env_value, [(("EMBEDREC_TEST_VAR",), ())], 1, lambda r: got.append(r))
    assert got == [None, "second"]
    assert W.start_method() in ("forkserver", "spawn")


def _has_module(name: str) -> bool:  # runs in a pool worker (importable by name)
    import sys

    import embedrec.worker_pool as W

    with W.job("stopping"):
        return name in sys.modules


def _fails() -> None:  # runs in a pool worker
    import embedrec.worker_pool as W

    with W.job("stopping"):
        raise ValueError("a failed trial")


@pytest.mark.skipif(__import__("embedrec.worker_pool").worker_pool.start_method() != "forkserver",
                    reason="a platform with a forkserver")
def test_a_pool_that_needs_another_module_gets_a_forkserver_that_imported_it_and_a_failed_pool_ends_it():
    """A review: the first pool's preload stayed (after an als sweep, every worker of a torch sweep imported
    torch again), and the forkserver of a stopped pool lived on after it (still importing, at full CPU)."""
    import multiprocessing.forkserver as F

    import embedrec.worker_pool as W

    W._end_forkserver()  # one of earlier tests' (torch in it: each start below would import it again)
    W._preloaded = frozenset()
    got: list = []
    W.run_jobs(_has_module, [(("colorsys",), ())], 1, got.append, preload=("json",))
    W.run_jobs(_has_module, [(("colorsys",), ())], 1, got.append, preload=("colorsys",))
    assert got == [False, True]
    assert F._forkserver._forkserver_pid is not None  # kept for the next pool
    with pytest.raises(ValueError, match="a failed trial"):
        W.run_jobs(_fails, [((), ())], 1, got.append, preload=("json",))
    assert F._forkserver._forkserver_pid is None  # ended with its pool
    W.run_jobs(_has_module, [(("colorsys",), ())], 1, got.append, preload=("json",))
    assert got[-1] is True  # a new one, with what the earlier ones imported


def test_the_advice_and_the_written_config_name_the_key_the_model_reads(tmp_path):
    """For the default als model the swept weight decay is train.als_reg; the printed advice gave the user and
    movie weight decays instead (which als ignores), so following it trained another model than the chosen one."""
    from embedrec.config import load_config
    from embedrec.errors import sh_quote
    from embedrec.tune import choice_overrides

    def choice_sets(chosen: dict) -> list[str]:  # the --set options, quoted for a shell, as the Use: line
        return [f"--set {sh_quote(o)}" for o in choice_overrides(chosen)]

    als = {"dim": 32, "weight_decay": 0.01, "als_reg": 0.01, "als_recency": 0.0, "metric": "ndcg@10",
           "valid_metric": 0.2}
    # and train.als_dims [] (a review: train then tried 2x and 4x the dimension tune-dims chose)
    assert choice_sets(als) == ["--set model.dim=32", "--set train.als_reg=0.01", "--set 'train.als_dims=[]'"]
    other = {"dim": 16, "weight_decay": 0.1, "metric": "rmse", "valid_metric": 0.9}
    assert choice_sets(other) == ["--set model.dim=16", "--set train.weight_decay_user=0.1",
                                  "--set train.weight_decay_movie=0.1"]
    assert choice_sets({"dim": 8, "weight_decay": None}) == ["--set model.dim=8"]
    import shlex

    cfg = load_config(None, [shlex.split(s)[1] for s in choice_sets(als)])
    written = load_config(write_choice(Config(), als, tmp_path / "t.yaml", None))
    assert (written.model.dim, written.train.als_reg, written.train.als_dims) == (
        cfg.model.dim, cfg.train.als_reg, cfg.train.als_dims) == (32, 0.01, [])


def test_a_sweep_that_fails_before_its_first_trial_leaves_no_folder(tune_cfg, tmp_path, monkeypatch):
    """tune.dir made by a sweep that then fails (here: a config error a trial would raise) is removed again, as
    `train` removes a run folder it made (before: an empty folder holding only its .lock)."""
    import embedrec.tune as T

    def fail(*a, **k):
        raise ConfigError("config key 'model.objective': explicit needs ratings")

    monkeypatch.setattr(T, "_sweep", fail)
    out = tmp_path / "a" / "tune"
    with pytest.raises(ConfigError):
        sweep(tune_cfg.updated({"tune.dir": str(out)}), [4])
    assert not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    with pytest.raises(ConfigError):
        sweep(tune_cfg.updated({"tune.dir": str(tmp_path / "b")}), [4])
    assert (tmp_path / "b").is_dir()  # not made by it: kept


def test_a_folder_of_the_users_own_files_is_refused_as_tune_dir(tune_cfg, tmp_path):
    """A review: `tune-dims --set tune.dir=f` into a folder holding the user's tune.png and tune.json replaced
    both (exit 0, one warning 'starting afresh'). A tune.dir must be new, empty, or a sweep's own folder."""
    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.tune import check_tune_folder

    f = tmp_path / "f"
    f.mkdir()
    (f / "tune.png").write_text("USERDATA")
    (f / "tune.json").write_text('{"mine": 1}')
    (f / "notes.txt").write_text("x")
    r = CliRunner().invoke(main, ["tune-dims", "-q", "--dims", "4", "--set", f"data.prepared={tune_cfg.data.prepared}",
                                  "--set", "model.objective=explicit", "--set", f"tune.dir={f}"])
    assert r.exit_code == 2 and r.stderr.splitlines() == [
        f"error: tune.dir '{f}' holds files tune-dims did not write (notes.txt); it writes tune.json and tune.png "
        "there and would replace files of those names: choose a new or empty folder for tune.dir"], r.stderr
    assert sorted(p.name for p in f.iterdir()) == ["notes.txt", "tune.json", "tune.png"]
    assert (f / "tune.png").read_text() == "USERDATA"
    (f / "notes.txt").unlink()  # only a tune.json that is not a sweep's: refused as well
    with pytest.raises(ConfigError, match=r"did not write \(tune.json\)"):
        check_tune_folder(f)
    (f / "tune.json").unlink()
    os.mkfifo(f / "tune.json")  # a red team: a FIFO there hung the sweep; it is no sweep's record
    with pytest.raises(ConfigError, match=r"did not write \(tune.json\)"):
        check_tune_folder(f)
    (f / "tune.json").unlink()
    (f / "d8").mkdir()  # what an interrupted sweep leaves (a trial's folder, the lock, a plot): accepted
    (f / ".lock").write_text("")
    check_tune_folder(f)
    (f / "x.file").write_text("")
    with pytest.raises(ConfigError, match=r"did not write \(x.file\)"):
        check_tune_folder(f)
    (f / "x.file").unlink()
    (f / ".tune.json.x8k2ab0q").write_text("")  # a temporary of a sweep killed while saving: the next one goes on
    check_tune_folder(f)
    (f / ".lock").unlink()
    (f / ".tune.json.x8k2ab0q").unlink()
    (f / "tune.png").unlink()
    (f / "d8").rmdir()
    assert sweep(tune_cfg.updated({"tune.dir": str(f)}), [4])["trials"]  # an empty folder: a sweep runs there
    check_tune_folder(f)  # and what it wrote is a sweep's


def test_the_documented_weight_decay_sweep_includes_the_default_als_regs():
    """The README's 'tune-dims --weight-decay 0.01,0.05,0.1' sets train.als_reg on the default als model: it never
    tried 0.02 (what als_reg: auto picks on ML-100K), and its tuned config scored below the untuned default (test
    NDCG@10 0.432 vs 0.451). Every documented sweep (README, docs, tune-dims -h) holds the auto candidates."""
    import re
    from pathlib import Path

    from embedrec.cli.tune import tune_dims
    from embedrec.training.als import AUTO_REGS

    root = Path(__file__).resolve().parents[1]
    texts = [p.read_text(encoding="utf-8") for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))]]
    sweeps = re.findall(r"tune-dims .*--weight-decay[ =]([\d.,e-]+)", "\n".join([*texts, tune_dims.help or ""]))
    assert sweeps
    for values in sweeps:
        assert set(AUTO_REGS) <= {float(v) for v in values.split(",")}, values


def test_tune_dims_takes_run_and_says_each_trial_without_a_bar(tune_cfg, tmp_path):
    """Without a terminal (a log, nohup, CI) a sweep printed nothing until the end (4 min in a first-hour pass);
    and --run, which every other command that uses a run takes, was 'no such option'. A line per trial now, and
    --run puts the sweep in RUN/tune."""
    from click.testing import CliRunner

    from embedrec.cli import main

    run = tmp_path / "myrun"
    r = CliRunner().invoke(main, ["tune-dims", "--run", str(run), "--dims", "2,4", "--format", "csv",
                                  "--set", f"data.prepared={tune_cfg.data.prepared}", "--set", "model.objective=explicit",
                                  "--set", "train.epochs=2", "--set", "train.refit=false",
                                  "--set", "train.als_dims=[8]"])
    assert r.exit_code == 0, r.stderr
    assert "train.als_dims has no effect in tune-dims: each trial trains its own dimension" in r.stderr
    trials = [line for line in r.stderr.splitlines() if line.startswith("trial ")]
    rows = r.stdout.splitlines()[1:]
    n = len(rows)
    assert n >= 2 and [line.split(":")[0] for line in trials] == [f"trial {i} of {n}" for i in range(1, n + 1)]
    assert sorted(int(line.split(": dim ")[1].split(":")[0]) for line in trials) == sorted(int(x.split(",")[0])
                                                                                          for x in rows)
    assert all("valid rmse" in line for line in trials) and (run / "tune" / "tune.json").exists()
    head = r.stdout.splitlines()[0].split(",")  # the rows name their metric (a shell review: never said in csv)
    assert head[head.index("metric") + 1:head.index("metric") + 3] == ["train_metric", "valid_metric"]
    assert {x.split(",")[head.index("metric")] for x in rows} == {"rmse"}


def test_tune_dims_after_train_writes_its_plot_beside_the_run(tune_cfg, tmp_path):
    """A first-hour pass: after `train`, `tune-dims` on the same run failed at its very end ('tune.png is inside
    ... an embedrec run'), every trial done, no table, no --write: the plot was refused where tune.json is
    allowed (RUN/tune, beside the run's current). Both are written there now; the run's files are untouched."""
    from click.testing import CliRunner

    from embedrec.cli import main

    run = tmp_path / "run"
    sets = ["--set", f"data.prepared={tune_cfg.data.prepared}", "--set", "model.objective=explicit",
            "--set", "train.epochs=2", "--set", "train.refit=false"]
    r = CliRunner().invoke(main, ["train", "--run", str(run), *sets])
    assert r.exit_code == 0, r.stderr
    before = sorted(p.name for p in (run / "current").iterdir())
    r = CliRunner().invoke(main, ["tune-dims", "--run", str(run), "--dims", "2,4", "--format", "csv", *sets,
                                  "--write", str(tmp_path / "tuned.yaml")])
    assert r.exit_code == 0, r.stderr
    assert (run / "tune" / "tune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "tune" / "tune.json").is_file() and (tmp_path / "tuned.yaml").is_file()
    assert sorted(p.name for p in (run / "current").iterdir()) == before


def test_every_trial_reads_the_generation_the_sweep_opened(synth_dir, tmp_path):
    """A review: each worker loaded data.prepared again, so an `ingest --overwrite` during a sweep gave the later
    trials another dataset, compared with the earlier ones as if alike. A trial now reads the generation the
    sweep holds, checked by its fingerprint."""
    from embedrec.data.dataset import load_dataset
    from embedrec.errors import ArtifactError
    from embedrec.tune import run_trial

    cfg = Config().updated({"data.source": str(synth_dir[0]), "data.prepared": str(tmp_path / "ds"),
                            "run.dir": str(tmp_path / "run"), "train.epochs": 1})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    held = load_dataset(cfg.data.prepared)
    data = (str(held.folder), held.fingerprint)
    ingest(cfg.data, cfg.updated({"split.seed": 7}).split, output=cfg.data.prepared, overwrite=True)
    assert load_dataset(cfg.data.prepared).fingerprint != held.fingerprint  # a new generation is current
    res = run_trial(cfg.to_dict(), 4, None, str(tmp_path / "t"), 1, data)
    assert res["valid_metric"] > 0
    with pytest.raises(ArtifactError, match="changed during the sweep"):
        run_trial(cfg.to_dict(), 4, None, str(tmp_path / "t2"), 1, (data[0], "0" * 64))


def test_tune_dir_in_a_model_folder_or_a_dataset_is_refused_and_a_damaged_record_is_redone(tune_cfg, tmp_path):
    """A red team: `tune-dims --set tune.dir=RUN/current/tt` wrote into a sealed model folder (its files later
    pruned with it, and `index rebuild` then refused the run), `--run DATASET` wrote DATASET/tune; and a
    truncated or empty tune.json was refused as a stranger's file, so --fresh could not recover."""
    from click.testing import CliRunner

    from embedrec.cli import main

    sets = ["--set", f"data.prepared={tune_cfg.data.prepared}", "--set", "model.objective=explicit",
            "--set", "train.optimizer=hogwild", "--set", "train.epochs=20"]  # a trial in 0.3 s
    r = CliRunner().invoke(main, ["tune-dims", "-q", "--dims", "4", *sets, "--run", str(tune_cfg.data.prepared)])
    assert r.exit_code == 2 and "a prepared dataset (embedrec ingest wrote it)" in r.stderr, r.stderr  # a setting:
    assert r.stderr.startswith("error: run.dir (tune-dims writes RUN_DIR/tune")  # exit 2, as the README says
    assert not (Path(tune_cfg.data.prepared) / "tune").exists()

    f = tmp_path / "sweep"
    assert sweep(tune_cfg.updated({"tune.dir": str(f)}), [4])["trials"]
    for damage in (b"", b'{"trials": [{"key": "d4", "di'):
        (f / "tune.json").write_bytes(damage)
        r = CliRunner().invoke(main, ["tune-dims", "-q", "--dims", "4", *sets, "--set", f"tune.dir={f}"])
        assert r.exit_code == 1 and r.stderr.startswith(f"error: tune results '{f / 'tune.json'}' is corrupt"), r.stderr
        assert "rerun with --fresh to redo its trials" in r.stderr
        r = CliRunner().invoke(main, ["tune-dims", "-q", "--dims", "4", *sets, "--set", f"tune.dir={f}", "--fresh"])
        assert r.exit_code == 0, r.stderr


def test_a_sweep_stopped_before_any_trial_finished_names_no_results_file(tune_cfg, tmp_path, monkeypatch):
    """A red team: SIGTERM before the first trial finished said '0 finished trials are kept in RUN/tune/tune.json',
    a file that was never written (and the folder made for it was removed)."""
    import embedrec.tune as T
    from embedrec.errors import Interrupted, Terminated

    def stop(*a, **k):
        raise Terminated()

    monkeypatch.setattr(T.worker_pool, "run_jobs", stop)
    f = tmp_path / "new" / "tune"
    with pytest.raises(Interrupted, match="tune-dims terminated \\(SIGTERM\\) before any trial finished; nothing new "
                                          f"was kept in {f}: rerun the same command to start again") as got:
        sweep(tune_cfg.updated({"tune.dir": str(f)}), [4])
    assert got.value.terminated and not got.value.saved and not f.exists()
    # a review: --fresh over an earlier sweep, stopped at once, said '0 finished trials are kept in tune.json',
    # which still held the earlier 5 (and a rerun without --fresh reused them)
    monkeypatch.undo()
    assert sweep(tune_cfg.updated({"tune.dir": str(f)}), [4])["trials"]
    monkeypatch.setattr(T.worker_pool, "run_jobs", stop)
    with pytest.raises(Interrupted, match="the earlier sweep's results in it are as they were"):
        sweep(tune_cfg.updated({"tune.dir": str(f)}), [4, 8], fresh=True)


def test_an_als_trial_imports_no_torch(tmp_path, synth_dir):
    """A first-hour review: each tune-dims worker imported torch (7.6 s on a busy box) for the default model,
    which fits numpy tables; its trials took 0.4 s. The trial runs in a fresh process here, as in the pool."""
    import subprocess
    import sys

    from embedrec.config import load_config
    from embedrec.ingestion import ingest

    cfg = load_config(None, [f"data.prepared={tmp_path / 'ds'}", "train.epochs=2"])
    ingest(cfg.data.__class__(**{**cfg.data.__dict__, "source": str(synth_dir[0])}), cfg.split,
           output=cfg.data.prepared)
    code = ("import json, sys\nfrom embedrec.config import load_config\nimport embedrec.tune as T\n"
            f"cfg = load_config(None, ['data.prepared={tmp_path / 'ds'}', 'train.epochs=2'])\n"
            f"r = T._trial(cfg.to_dict(), 4, None, {str(tmp_path / 't')!r}, 1)\n"
            "print(json.dumps([r['dim'], 'torch' in sys.modules]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [4, False]


def test_a_written_config_in_another_folder_keeps_its_paths(tmp_path, monkeypatch):
    """A review: `tune-dims -c cfgs/my.yaml --write deep/er/out.yaml` (my.yaml: data.prepared
    ../data/prepared/ml-100k, run.dir ../runs/rel) wrote run.dir 'runs/rel' and left data.prepared out (equal to the
    default once resolved), so `train -c ../deep/er/out.yaml` from cfgs/ found no dataset. Paths are written
    relative to the new file."""
    from embedrec.config import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "cfgs" / "my.yaml").write_text("data:\n  prepared: ../data/prepared/ml-100k\nrun:\n  dir: ../runs/rel\n")
    cfg = load_config("cfgs/my.yaml")
    chosen = {"dim": 16, "weight_decay": None, "metric": "ndcg@10", "valid_metric": 0.2}
    out = write_choice(cfg, chosen, "deep/er/out.yaml", "cfgs/my.yaml")
    for cwd in (tmp_path, tmp_path / "cfgs", tmp_path / "deep"):
        monkeypatch.chdir(cwd)
        again = load_config(os.path.relpath(tmp_path / out, cwd))
        assert Path(again.data.prepared).resolve() == tmp_path / "data" / "prepared" / "ml-100k"
        assert Path(again.run.dir).resolve() == tmp_path / "runs" / "rel-d16" and again.model.dim == 16
    assert again.data.source == "ml-100k"  # a release name, not a path
    monkeypatch.chdir(tmp_path / "cfgs")  # written outside the working folder: the paths absolute
    far = write_choice(load_config("my.yaml"), chosen, tmp_path / "deep" / "far.yaml", "my.yaml")
    assert f"prepared: {tmp_path / 'data' / 'prepared' / 'ml-100k'}\n" in far.read_text()


def test_a_sweep_of_another_metric_is_refused_not_replaced(tune_cfg, tmp_path):
    """A first-hour review: `tune-dims --run RUN` of an explicit run (its rmse sweep in RUN/tune) swept the default
    ranking model and replaced that sweep, with one warning. Results for another metric or dataset are refused
    (exit 2, nothing touched); --fresh replaces them."""
    from click.testing import CliRunner

    from embedrec.cli import main

    cfg = tune_cfg.updated({"tune.dir": str(tmp_path / "t"), "train.epochs": 2})
    sweep(cfg, [4])
    before = (tmp_path / "t" / "tune.json").read_bytes()
    args = ["tune-dims", "-q", "--dims", "4", "--set", f"data.prepared={cfg.data.prepared}",
            "--set", f"tune.dir={tmp_path / 't'}", "--set", "train.epochs=2"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and r.stderr.splitlines() == [
        f"error: the tune results in '{tmp_path / 't'}' are for the metric rmse, where this sweep's is ndcg@10: pass "
        "the config they were made with (-c FILE), or --fresh to replace them, or choose another tune.dir"], r.stderr
    assert (tmp_path / "t" / "tune.json").read_bytes() == before
    r = CliRunner().invoke(main, [*args, "--fresh"])
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "t" / "tune.json").read_text())["metric"] == "ndcg@10"


SCRIPT = """
import sys
import embedrec as er
from embedrec.data.synth import write_movielens
out = sys.argv[1]
write_movielens(out + "/src", 60, 40, 1200, rank=3, seed=0)
cfg = er.load_config(None, [f"data.prepared={out}/ds", f"run.dir={out}/run", "tune.workers=2", "model.dim=4",
                            "train.epochs=2", "train.threads=1", "tune.threads=1"])
er.ingest(out + "/src", cfg, overwrite=True)
er.tune_dims(cfg, dims=[4])
"""


def test_a_script_without_the_main_guard_gets_one_clear_error_not_its_work_done_again(tmp_path):
    """A review: a script calling er.tune_dims without `if __name__ == "__main__":` ran its top level again in each
    spawned worker (ingesting and training again, two dataset generations), then failed on the locks with an
    untyped BrokenProcessPool. The workers refuse embedrec's writers while importing the script, and the call
    raises a TrainingError saying what to do."""
    import os
    import subprocess
    import sys

    script = tmp_path / "sweep.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": repo_pythonpath()}
    p = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("embedrec.errors.TrainingError: a worker process ended before its trial finished (from a "
                           "Python script, put its code under `if __name__ == \"__main__\":`"), last
    assert "er.ingest was called while a worker process imported the script" in p.stderr
    assert len(list((tmp_path / "ds").glob("gen-*"))) == 1  # ingested once, by the script itself
    head, body = SCRIPT.split("out = sys.argv[1]")
    body = "out = sys.argv[1]" + body
    guarded = head + "def main():\n" + "".join(f"    {line}\n" for line in body.splitlines()) + \
        "\nif __name__ == '__main__':\n    main()\n"
    script.write_text(guarded)
    p = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    # the same guarded script piped to `python -` (its __main__ file '<stdin>', which each worker ran as a path: a
    # first-hour review, session 39): the sweep runs; its trials are new (another tune folder)
    p = subprocess.run([sys.executable, "-", str(tmp_path / "stdin")], input=guarded, capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]


def test_a_written_configs_run_is_the_choices_own():
    """A review: two choices of one dimension (other weight decays) shared a run, a config written from a written
    config chained its suffix (runs/x-d32-d64), and run.dir '.' became the hidden folder '.-d32'."""
    from embedrec.tune import tuned_run_dir

    def at(run_dir: str, **chosen) -> str:
        return tuned_run_dir(Config().updated({"run.dir": run_dir}), chosen)

    assert at("runs/ml-100k", dim=32) == "runs/ml-100k-d32"
    assert at("runs/ml-100k", dim=32, weight_decay=0.01) != at("runs/ml-100k", dim=32, weight_decay=0.1)
    assert at("runs/ml-100k/", dim=32, weight_decay=0.01) == "runs/ml-100k-d32-wd0.01"
    # the same choice again keeps its run; a name of the user's own keeps all of it (a review: runs/exp-d2)
    assert at("runs/x-d32", dim=32) == "runs/x-d32" and at("runs/x-d32-wd0.1", dim=32, weight_decay=0.1) == \
        "runs/x-d32-wd0.1"
    assert at("runs/exp-d2", dim=64) == "runs/exp-d2-d64"
    assert at(".", dim=32) == "tuned-d32" and at("..", dim=8) == str(Path("..") / "tuned-d8")
    # the choice is the current config (a first-hour review: a new run trained the same model again): its own run
    assert tuned_run_dir(Config().updated({"run.dir": "runs/ml-100k"}), {"dim": 128}, True) == "runs/ml-100k"


def test_a_trials_hash_is_the_same_without_the_keys_added_since_where_they_change_nothing():
    """A review: after the upgrade that added data.repeats and train.als_count_weight, every kept trial of an
    unchanged sweep was redone ('used another config'). On a dataset of ratings neither key is in the hash; on a
    summed one the dataset's repeats and the count weight are."""
    from embedrec.config import Config
    from embedrec.tune import trial_config_hash

    now = Config().to_dict()
    before = {**now, "data": {k: v for k, v in now["data"].items() if k != "repeats"},
              "train": {k: v for k, v in now["train"].items() if k != "als_count_weight"}}
    ratings = {"inputs": {"a": "1"}}
    assert trial_config_hash(now, 8, None, ratings) == trial_config_hash(before, 8, None, ratings)
    summed = {**ratings, "repeats": "sum"}
    assert trial_config_hash(now, 8, None, summed) != trial_config_hash(now, 8, None, ratings)
    one = {**now, "train": {**now["train"], "als_count_weight": 1.0}}
    assert trial_config_hash(one, 8, None, summed) != trial_config_hash(now, 8, None, summed)
    assert trial_config_hash(one, 8, None, ratings) == trial_config_hash(now, 8, None, ratings)


def test_trials_redone_for_a_dataset_ingested_again_say_so(tune_cfg, tmp_path, caplog):
    """A red team: after the dataset was ingested again with another split.seed, the earlier trials were rightly
    redone but blamed on 'another config (e.g. train.lr or epochs)'."""
    import logging

    cfg = tune_cfg.updated({"data.prepared": str(tmp_path / "ds"), "run.dir": str(tmp_path / "run"),
                            "train.epochs": 2, "tune.workers": 1})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    sweep(cfg, [4])
    again = cfg.updated({"split.seed": 9})
    ingest(again.data, again.split, output=again.data.prepared, overwrite=True)
    with caplog.at_level(logging.INFO, logger="embedrec"):
        sweep(cfg, [4])
    assert "earlier trials in" in caplog.text and "were for the dataset as it was ingested before" in caplog.text
    assert "train.lr or epochs" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        sweep(cfg.updated({"train.lr": 0.02}), [4])
    assert "used another config (e.g. train.lr or epochs)" in caplog.text


def test_tune_dims_table_of_the_default_model_says_it_scores_the_model_alone(tune_cfg, tmp_path):
    """A first-hour pass: the table's valid score for the dimension train chose (the model alone) read 0.057 where
    train had printed 0.093 (with the recent popularity valid chose): the table says which it scores; the
    explicit model's says nothing of it."""
    from click.testing import CliRunner

    from embedrec.cli import main

    base = ["tune-dims", "--dims", "4", "--format", "table", "--set", f"data.prepared={tune_cfg.data.prepared}",
            "--set", "train.epochs=2", "--set", "train.refit=false"]  # each its own --run (given twice: refused)
    r = CliRunner().invoke(main, [*base, "--run", str(tmp_path / "run")])
    assert r.exit_code == 0, r.stderr
    assert "valid_metric scores the model alone, before the low-pass block and the recent popularity train adds " \
           "where valid chooses them or train.als_lowpass / train.als_trend set them, so train can print another " \
           "one" in r.stderr
    r = CliRunner().invoke(main, [*base, "--set", "model.objective=explicit", "--run", str(tmp_path / "run2")])
    assert r.exit_code == 0 and "metric: rmse" in r.stderr and "scores the model alone" not in r.stderr, r.stderr
    r = CliRunner().invoke(main, [*base, "--set", "train.als_trend=0", "--run", str(tmp_path / "run3")])
    assert r.exit_code == 0 and "before the low-pass block train adds where valid chooses it or " \
        "train.als_lowpass sets it" in r.stderr, r.stderr
    r = CliRunner().invoke(main, [*base, "--set", "train.als_trend=0", "--set", "train.als_lowpass=0",
                                  "--run", str(tmp_path / "run4")])
    assert r.exit_code == 0 and "metric: ndcg@10" in r.stderr and "scores the model alone" not in r.stderr, r.stderr


def test_the_fold_keys_unset_leave_trial_hashes_and_the_finished_key_as_before_them(monkeypatch, tmp_path):
    """split.folds and split.fold came with K-fold splits: unset, a sweep's trials hash as they did before them (so
    an upgrade redoes none) and a finished run's resume still finds it finished; set, they count."""
    import copy

    from embedrec.trained import finished_key
    from embedrec.tune import trial_config_hash

    now = Config().to_dict()
    before = copy.deepcopy(now)
    del before["split"]["folds"], before["split"]["fold"]
    assert trial_config_hash(now, 8, None, {}) == trial_config_hash(before, 8, None, {})
    folded = Config().updated({"split.folds": 5}).to_dict()
    assert trial_config_hash(folded, 8, None, {}) != trial_config_hash(now, 8, None, {})
    cfg = Config().updated({"data.prepared": str(tmp_path / "none"), "run.dir": str(tmp_path / "run")})
    key = finished_key(cfg, tmp_path / "run")
    old = cfg.to_dict()
    del old["split"]["folds"], old["split"]["fold"]
    monkeypatch.setattr(Config, "to_dict", lambda self: copy.deepcopy(old))  # a config as it was before the keys
    assert finished_key(cfg, tmp_path / "run") == key


def _res(chosen: tuple, current: tuple, metric: str = "ndcg@10", others: tuple = ()) -> dict:
    """A sweep's result as current_note reads it: (dim, weight_decay, valid) for the choice and the current config."""
    trials = [{"dim": d, "weight_decay": w, "valid_metric": v} for d, w, v in (chosen, *others)]
    if current != chosen:
        trials.append({"dim": current[0], "weight_decay": current[1], "valid_metric": current[2]})
    return {"metric": metric, "tolerance": 0.01, "chosen": trials[0], "trials": trials,
            "current_config": {"dim": current[0], "weight_decay": current[1], "valid_metric": current[2],
                               "config": f"dim {current[0]}, als_reg auto"}}


def test_current_note_says_the_current_configs_figure_beside_the_choice():
    """A first-hour review: the 'chosen:' line advised a setting (0.2117) below the config trained with now (0.2180)
    and never said the latter. The note always gives the current config's figure; where it is the choice: keep it;
    where the choice validates below it (within the tolerance, for a smaller dimension): by how much."""
    from embedrec.tune import current_note

    said, keep = current_note(_res((128, None, 0.2180), (128, None, 0.2180), others=((64, 0.01, 0.2124),
                                                                                      (16, 0.01, 0.2117))))
    assert keep and said == ("the current config (dim 128, als_reg auto) is the choice: keep it, nothing to change; "
                             "the best other trial, dim 64 at weight decay 0.01, validates 0.2124")
    said, keep = current_note(_res((64, None, 0.2170), (128, None, 0.2180)))  # 0.001 / 0.2180 = 0.46%
    assert not keep and said.startswith("the current config (dim 128, als_reg auto) validates higher: 0.2180, 0.46% "
                                        "better than the choice, which the tolerance (1%) gives up for a smaller "
                                        "dimension")
    said, keep = current_note(_res((64, None, 0.9050), (128, None, 0.9000), metric="rmse"))  # 0.005 / 0.9 = 0.56%
    assert not keep and said.startswith("the current config (dim 128, als_reg auto) validates lower: 0.9000, 0.56% "
                                        "better than the choice")
    said, keep = current_note(_res((64, 0.01, 0.2200), (128, None, 0.2180)))
    assert not keep and said == "the current config (dim 128, als_reg auto) validates 0.2180"
    said, keep = current_note(_res((64, 0.01, 0.2200), (128, 0.01, 0.2180)))  # another weight decay: not it
    assert not keep and said.endswith("validates 0.2180")


def test_the_current_config_is_a_trial_of_a_weight_decay_sweep_and_the_only_one_marked(tune_cfg, tmp_path):
    """A first-hour review: `tune-dims --weight-decay 0.01,0.05` chose and advised dim 16 at 0.01 (valid 0.2117)
    where the config trained with (dim 128, als_reg auto) validated 0.2180, a trial of an earlier sweep; 'current'
    was on each weight decay's trial at 128, none of them the config. The config is now a trial at its own weight
    decay, in the choice, the one marked current (in tune.json too, whose kept trials lose an earlier mark)."""
    from embedrec.tune import current_note

    cfg = tune_cfg.updated({"tune.dir": str(tmp_path / "t")})  # weight decays 0.02, dim 4
    res = sweep(cfg, [2], [3.0, 6.0], tolerance=0.01)  # each far too strong: the config's own 0.02 validates best
    keys = sorted(t["key"] for t in res["trials"])
    assert keys == ["d2-wd3", "d2-wd6", "d4", "d4-wd3", "d4-wd6"]
    mine = next(t for t in res["trials"] if t["key"] == "d4")
    assert [t["key"] for t in res["trials"] if t["current"]] == ["d4"]
    assert all(mine["valid_metric"] < t["valid_metric"] for t in res["trials"] if t is not mine)  # rmse
    assert res["chosen"] is mine and current_note(res)[1]
    assert res["current_config"] == {"dim": 4, "weight_decay": None, "valid_metric": mine["valid_metric"],
                                     "config": "dim 4, weight decay 0.02"}
    saved = json.loads(open(res["results"]).read())
    assert saved["current"] == res["current_config"] and saved["chosen"]["dim"] == 4
    # a swept value that is the config's own weight decay: that trial is the config, no other is added
    again = sweep(cfg, [2], [0.02, 3.0], tolerance=0.01)
    assert sorted(t["key"] for t in again["trials"]) == ["d2-wd0.02", "d2-wd3", "d4-wd0.02", "d4-wd3"]
    assert [t["key"] for t in again["trials"] if t["current"]] == ["d4-wd0.02"]
    saved = json.loads(open(again["results"]).read())
    assert [t["key"] for t in saved["trials"] if t["current"]] == ["d4-wd0.02"]  # d4 kept, its mark gone
    assert saved["current"]["weight_decay"] == 0.02


def test_tune_dims_says_keep_it_and_no_use_line_where_the_current_config_is_the_choice(tune_cfg, tmp_path):
    """The review's case through the CLI: every swept weight decay validates below the config's own, so the line
    says the current config is the choice, and prints no 'Use:' command; a sweep whose choice is another setting
    prints the current config's figure beside it and the command."""
    from click.testing import CliRunner

    from embedrec.cli import main

    sets = [a for kv in (f"data.prepared={tune_cfg.data.prepared}", f"tune.dir={tmp_path / 't'}",
                         "model.objective=explicit", "train.refit=false", "train.epochs=40", "train.lr=0.01",
                         "train.patience=3", "train.weight_decay_user=0.02", "train.weight_decay_movie=0.02",
                         "model.dim=4", "train.optimizer=hogwild") for a in ("--set", kv)]
    r = CliRunner().invoke(main, ["tune-dims", "--dims", "2", "--weight-decay", "3,6", "--tolerance", "1%",
                                  "--format", "tsv", *sets])
    assert r.exit_code == 0, r.stderr
    line = next(x for x in r.stderr.splitlines() if x.startswith("chosen: "))
    assert line.startswith("chosen: dim 4 (validation rmse ") and "Use:" not in line, line
    assert "; the current config (dim 4, weight decay 0.02) is the choice: keep it, nothing to change; the best " \
           "other trial, dim " in line
    assert [row.split("\t")[-1] for row in r.stdout.splitlines()[1:] if row.startswith("4\t\t")] == \
        ["fourth-root, current, chosen"]
    r = CliRunner().invoke(main, ["tune-dims", "--dims", "2", "--weight-decay", "0", "--tolerance", "99%",
                                  "--format", "csv", *sets])  # 99%: the smallest dimension, 2, is chosen
    assert r.exit_code == 0, r.stderr
    line = next(x for x in r.stderr.splitlines() if x.startswith("chosen: "))
    assert line.startswith("chosen: dim 2 ") and "; the current config (dim 4, weight decay 0.02) validates " in line
    assert "; the fourth-root rule gives 4. Use: embedrec train " in line and "--set model.dim=2" in line, line
    # with --write, the Use: line is the written config's train, into the run it names (a first-hour review: the
    # --set line trained into the run the config kept, replacing it, where the written one trained into its own)
    r = CliRunner().invoke(main, ["tune-dims", "--dims", "2", "--weight-decay", "0", "--tolerance", "99%",
                                  "--format", "csv", *sets, "--write", str(tmp_path / "tuned.yaml")])
    assert r.exit_code == 0, r.stderr
    line = next(x for x in r.stderr.splitlines() if x.startswith("chosen: "))
    assert line.endswith(f"; the fourth-root rule gives 4. Use: embedrec train -c {tmp_path / 'tuned.yaml'}"), line
    assert f"trains into its own run runs{os.sep}ds-d2-wd0 (the run in runs{os.sep}ds is kept)" in r.stderr, r.stderr


def test_tune_png_draws_training_and_validation_on_one_axis_with_the_gap(tmp_path, monkeypatch):
    """A first-hour review: tune.png drew training and validation on two axes each scaled to fit its curve, so no
    gap could be read where the docs said a widening gap shows overfitting. The lower panel holds both curves on
    one axis, the gap (training minus validation for a score, the other way for an error) written at each
    dimension; the upper one the validation curve the choice is made on, with the current config marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from embedrec.tune import plot

    drawn = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (drawn.append(self), save(self, *a, **k))[1])
    trials = [{"dim": d, "weight_decay": None, "valid_metric": v, "train_metric": t}
              for d, v, t in ((4, 0.20, 0.30), (16, 0.22, 0.50), (64, 0.21, 0.80))]
    plot(trials, "ndcg@10", 4, trials[1], tmp_path / "t.png", 0.01, trials[2])
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = drawn
    top, low = fig.axes  # two panels, no twin axis
    ys = sorted(tuple(line.get_ydata()) for line in low.get_lines())
    assert ys == [(0.2, 0.22, 0.21), (0.3, 0.5, 0.8)]  # both on the one axis
    assert [t.get_text() for t in low.texts] == ["+0.100", "+0.280", "+0.590"]
    assert any(tuple(line.get_ydata()) == (0.21,) for line in top.get_lines())  # the current config's star
    drawn.clear()
    rmse = [{**t, "valid_metric": 1 - t["valid_metric"], "train_metric": 1 - t["train_metric"]} for t in trials]
    plot(rmse, "rmse", 4, rmse[1], tmp_path / "r.png")
    assert [t.get_text() for t in drawn[0].axes[1].texts] == ["+0.100", "+0.280", "+0.590"]  # validation - training


def test_a_written_config_in_the_working_folder_works_from_any_folder(tmp_path, monkeypatch):
    """A first-hour review: `tune-dims --write tuned.yaml` beside an embedrec.yaml holding data.prepared ./ml wrote
    'prepared: ml' and 'dir: runs/ml-d128' (the working folder's), so `train -c DIR/tuned.yaml` from another folder
    found no dataset. Its paths are written relative to the file, as a config file's are read."""
    from embedrec.config import load_config

    work = tmp_path / "w"
    (work / "elsewhere").mkdir(parents=True)
    (work / "embedrec.yaml").write_text("data:\n  prepared: ./ml\nrun:\n  dir: ./runs/ml\n")
    monkeypatch.chdir(work)
    chosen = {"dim": 16, "weight_decay": 0.01, "metric": "ndcg@10", "valid_metric": 0.2, "als_reg": 0.01}
    out = write_choice(load_config("embedrec.yaml"), chosen, "tuned.yaml", "embedrec.yaml")
    text = out.read_text()
    assert "  prepared: ./ml\n" in text and "  dir: ./runs/ml-d16-wd0.01\n" in text, text
    for cwd in (work, work / "elsewhere", tmp_path):
        monkeypatch.chdir(cwd)
        again = load_config(str(work / "tuned.yaml"))
        assert Path(again.data.prepared).resolve() == work / "ml"
        assert Path(again.run.dir).resolve() == work / "runs" / "ml-d16-wd0.01" and again.model.dim == 16


def test_a_config_written_through_a_link_is_read_where_it_was_written(tmp_path, monkeypatch):
    """Session 52's red team: `tune-dims --write ln/t.yaml`, ln a link to deep/sub, wrote 'prepared: ../../ds'
    (right from deep/sub, where the file is), and `evaluate -c ln/t.yaml` read it as ../ds: a config file's paths
    were joined to its folder as text ('ln/../../ds'), where the file system takes the '..' after ln for deep/sub's
    parent. The reader now joins them where the file system finds them (config_keys._joined), as the writer
    writes them; a path with no link in the way stays relative, as before."""
    from embedrec.config import load_config
    from embedrec.config_keys import _joined

    work = tmp_path / "w"
    (work / "deep" / "sub").mkdir(parents=True)
    (work / "ln").symlink_to("deep/sub")
    (work / "ds").mkdir()
    monkeypatch.chdir(work)
    chosen = {"dim": 16, "weight_decay": 0.01, "metric": "ndcg@10", "valid_metric": 0.2, "als_reg": 0.01}
    out = write_choice(load_config(None, ["data.prepared=ds", "run.dir=runs/td"]), chosen, "ln/t.yaml", None)
    assert "  prepared: ../../ds\n" in out.read_text()
    for cwd, path in ((work, "ln/t.yaml"), (work / "deep", str(work / "ln" / "t.yaml")), (tmp_path, "w/ln/t.yaml")):
        monkeypatch.chdir(cwd)
        again = load_config(path)
        assert Path(again.data.prepared).resolve() == work / "ds", (cwd, again.data.prepared)
        assert Path(again.run.dir).resolve() == work / "runs" / "td-d16-wd0.01"
    monkeypatch.chdir(work)
    assert (_joined(Path("ln"), "../../ds"), _joined(Path("ln"), "./x"), _joined(Path("deep/sub"), "../../ds"),
            _joined(Path("deep"), "../ds")) == (str(work / "ds"), "ln/x", "ds", "ds")
    assert _joined(Path("ln/.."), "./ds") == str(work / "deep" / "ds")  # the file's own folder named through a link
