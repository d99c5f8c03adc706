import json

import pytest

from embedrec.config import Config
from embedrec.errors import ConfigError
from embedrec.ingest import ingest
from embedrec.tune import choose, sweep, write_choice


@pytest.fixture(scope="module")
def tune_cfg(tmp_path_factory, synth_dir):
    tmp = tmp_path_factory.mktemp("tune")
    cfg = Config()
    cfg = cfg.updated({"model.objective": 'explicit', "train.refit": False})
    cfg = cfg.updated({"data.source": str(synth_dir[0]), "data.prepared": str(tmp / 'ds'), "run.dir": str(tmp / 'run')})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    cfg = cfg.updated({"train.epochs": 40, "train.lr": 0.01, "train.patience": 3})
    cfg = cfg.updated({"train.weight_decay_user": 0.02, "train.weight_decay_movie": 0.02})
    return cfg


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


def test_choose_with_tolerance():
    trials = [{"dim": d, "valid_metric": v, "weight_decay": None} for d, v in ((8, 0.95), (32, 0.93), (64, 0.925))]
    assert choose(trials, "rmse", 0.0)["dim"] == 64
    assert choose(trials, "rmse", 0.01)["dim"] == 32
    ndcg = [{"dim": d, "valid_metric": v, "weight_decay": None} for d, v in ((8, 0.30), (32, 0.29), (64, 0.20))]
    assert choose(ndcg, "ndcg@10", 0)["dim"] == 8
    assert choose(ndcg[1:], "ndcg@10", 0.5)["dim"] == 32


def test_write_refuses_input_config(tmp_path):
    cfg = Config()
    cfg = cfg.updated({"model.objective": 'explicit', "train.refit": False})
    p = tmp_path / "in.yaml"
    p.write_text("model:\n  dim: 8\n")
    chosen = {"dim": 16, "weight_decay": 0.1, "metric": "rmse", "valid_metric": 0.9}
    with pytest.raises(ConfigError, match="refusing to overwrite the input config"):
        write_choice(cfg, chosen, p, str(p))
    out = write_choice(cfg, chosen, tmp_path / "new.yaml", str(p))
    from embedrec.config import load_config

    new = load_config(out)
    assert new.model.dim == 16 and new.train.weight_decay_movie == 0.1


def test_sweep_of_the_default_model_runs_trains_selection(synth_dir, tmp_path):
    """The default (als) model: each trial is what `train` fits, its als_reg and als_recency candidates chosen on
    valid (a per-user time split: recency 0 and 2 are both tried), and the trial says what was chosen."""
    from embedrec.data.dataset import load_dataset
    from embedrec.train.fit import fit_selecting

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


def test_trials_of_an_earlier_procedure_are_not_reused(monkeypatch):
    """A trial's hash names how trials are run: trials saved by an earlier procedure (the als model's trial was
    one fit before it became train's selection) hash differently and are redone."""
    import embedrec.tune as T

    cfg = Config().to_dict()
    now = T.trial_config_hash(cfg, 8, None, {"inputs": {"a": "1"}})
    monkeypatch.setattr(T, "TRIAL_PROCEDURE", T.TRIAL_PROCEDURE - 1)
    assert T.trial_config_hash(cfg, 8, None, {"inputs": {"a": "1"}}) != now
