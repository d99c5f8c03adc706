import numpy as np
import pytest
import torch

from embedrec.data.dataset import load_dataset
from embedrec.errors import ArtifactError, TrainingError
from embedrec.evaluate import evaluate_model
from embedrec.ingestion import ingest
from embedrec.model import losses
from embedrec.model.mf import auto_dim
from embedrec.training.checkpoints import load_checkpoint
from embedrec.training.fit import factors, fit


def test_losses_hand_computed():
    assert losses.mse(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])).item() == pytest.approx(2.5)
    # -log sigmoid(2 - 0) = log(1 + e^-2)
    assert losses.bpr(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(np.log1p(np.exp(-2)))
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    expected = -(1.0 - np.log(np.exp(1) + np.exp(2) + np.exp(3)))
    assert losses.softmax_full(logits, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)
    # sampled softmax with uniform q reduces to a softmax over [pos, negs]
    v = losses.softmax_sampled(torch.tensor([1.0]), torch.tensor([[2.0, 3.0]]), torch.tensor([0.0]),
                               torch.tensor([0.0, 0.0]))
    assert v.item() == pytest.approx(expected, rel=1e-6)
    assert losses.l2(torch.tensor([[3.0, 4.0]]), weights=(0.5,)).item() == pytest.approx(12.5)
    assert auto_dim(1682) == 6


@pytest.fixture
def synth_ds(synth_dir, small_cfg):
    d, truth = synth_dir
    small_cfg = small_cfg.updated({"data.source": str(d)})
    ingest(small_cfg.data, small_cfg.split, output=small_cfg.data.prepared)
    return load_dataset(small_cfg.data.prepared), truth


def test_explicit_recovers_planted_structure(synth_ds, small_cfg):
    ds, truth = synth_ds
    small_cfg = small_cfg.updated({"model.dim": 8})
    small_cfg = small_cfg.updated({"train.epochs": 40})
    small_cfg = small_cfg.updated({"train.lr": 0.01})
    small_cfg = small_cfg.updated({"train.weight_decay_user": 0.01, "train.weight_decay_movie": 0.01})
    r = fit(ds, small_cfg.model, small_cfg.train, small_cfg.run.dir)
    m = evaluate_model(factors(r.model), ds, "test", True, [10], ranking=False)
    # ratings are the planted score + N(0, 0.3) noise rounded to half stars (about 0.32 irreducible RMSE);
    # global-mean prediction is far worse
    base = float(np.sqrt(np.mean((ds.splits["test"].rating - ds.splits["train"].rating.mean()) ** 2)))
    assert m["rmse"] < 0.5 < base


def test_implicit_known_best_movie_ranks_first(tmp_path, small_cfg):
    """Checkerboard: two groups of users each like one half of the movies; a held-out movie of the user's
    own half must outrank every movie of the other half."""
    from embedrec.config import Config

    cfg = Config()
    cfg = cfg.updated({"model.objective": 'explicit', "train.refit": False})
    rows = ["user_id,movie_id,rating,timestamp"]
    for u in range(40):
        for m in range(20):
            if (u % 2) == (m % 2) and not (m == (u % 2) and u < 10):
                rows.append(f"{u},{m},5,{u * 100 + m}")
    p = tmp_path / "cb.csv"
    p.write_text("\n".join(rows) + "\n")
    cfg = cfg.updated({"data.source": str(p), "data.prepared": str(tmp_path / 'cb')})
    cfg = cfg.updated({"split.valid": 0.0, "split.test": 0.0})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    ds = load_dataset(cfg.data.prepared)
    cfg = cfg.updated({"model.objective": 'implicit', "model.dim": 4})
    for loss in ("bpr", "softmax"):
        cfg = cfg.updated({"model.loss": loss})
        cfg = cfg.updated({"train.epochs": 30, "train.lr": 0.05, "train.batch_size": 64})
        r = fit(ds, cfg.model, cfg.train, tmp_path / f"run-{loss}")
        f = factors(r.model)
        for u in range(10):  # users who did not rate movie u % 2
            s = f["user_factors"][u] @ f["movie_factors"].T + (f["movie_bias"] if f["movie_bias"] is not None else 0)
            own = s[(u % 2)]
            other = s[[m for m in range(20) if m % 2 != u % 2]]
            assert own > other.max(), loss


def test_resume_matches_uninterrupted_run(synth_ds, small_cfg, tmp_path):
    ds, _ = synth_ds
    small_cfg = small_cfg.updated({"train.epochs": 4})
    small_cfg = small_cfg.updated({"train.patience": 10})
    full = fit(ds, small_cfg.model, small_cfg.train, tmp_path / "full")
    small_cfg = small_cfg.updated({"train.epochs": 2})
    fit(ds, small_cfg.model, small_cfg.train, tmp_path / "part")
    small_cfg = small_cfg.updated({"train.epochs": 4})
    resumed = fit(ds, small_cfg.model, small_cfg.train, tmp_path / "part", resume=True)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(v, resumed.model.state_dict()[k], rtol=0, atol=0)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    ck = load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    assert ck["epoch"] == 3
    # the seconds go on from the first part's: elapsed grows over all four rows, the total covers both parts
    elapsed = [h["elapsed"] for h in resumed.history]
    assert elapsed == sorted(elapsed) and resumed.seconds >= elapsed[-1] > elapsed[1] > 0


def test_resume_refuses_other_config(synth_ds, small_cfg, tmp_path):
    ds, _ = synth_ds
    fit(ds, small_cfg.model, small_cfg.train, tmp_path / "r")
    small_cfg = small_cfg.updated({"train.lr": 0.5})
    with pytest.raises(ArtifactError, match=r"another train.lr \(0.01, now 0.5\)"):
        fit(ds, small_cfg.model, small_cfg.train, tmp_path / "r", resume=True)
    with pytest.raises(ArtifactError, match="nothing to resume"):
        fit(ds, small_cfg.model, small_cfg.train, tmp_path / "none", resume=True)


def test_resume_without_the_config_names_the_checkpoint_it_finds(synth_ds, small_cfg, tmp_path):
    """A run of another trainer keeps its checkpoint where the default model (a folder per train.als_reg candidate)
    does not look: `train --resume` without the run's -c FILE said "nothing to resume: no checkpoint at
    'RUN/als-reg-0.01/checkpoint.pt'" and made that folder. It names the checkpoint it finds and what differs, as
    a mismatched model.dim is named, and writes nothing; the other way round too."""
    import os

    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.training.select import fit_selecting

    ds, _ = synth_ds
    run = tmp_path / "explicit"
    fit(ds, small_cfg.model, small_cfg.train, run)  # RUN/checkpoint.pt
    before = sorted(os.listdir(run))
    # without -q: the refusal is the only line (a review: "als_recency auto: 0 (...)" came first)
    r = CliRunner().invoke(main, ["train", "--set", f"data.prepared={small_cfg.data.prepared}", "--set",
                                  "model.dim=8", "--run", str(run), "--resume"])
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.splitlines() == [
        f"error: checkpoint '{run / 'checkpoint.pt'}' was made with another model.objective ('explicit', now "
        "'implicit'); resume with the config it was trained with (-c FILE and the same --set options), or train "
        "again without --resume"], r.stderr
    assert sorted(set(os.listdir(run)) - {".lock"}) == before  # the run's writer lock, which a train run has anyway
    als = small_cfg.updated({"model.objective": "implicit"})
    fit_selecting(ds, als, tmp_path / "als")  # RUN/als-reg-0.01/checkpoint.pt, RUN/als-reg-0.02/checkpoint.pt
    with pytest.raises(ArtifactError) as e:
        fit_selecting(ds, small_cfg, tmp_path / "als", resume=True)
    assert str(e.value) == (f"checkpoint '{tmp_path / 'als' / 'als-reg-0.01' / 'checkpoint.pt'}' was made with another "
                            "model.objective ('implicit', now 'explicit'); resume with the config it was trained with "
                            "(the same cfg), or train again without resume=True")
    assert not (tmp_path / "als" / "checkpoint.pt").exists()
    one = als.updated({"train.als_reg": 0.01})  # the first candidate's values, but no selection: the run folder
    with pytest.raises(ArtifactError, match=r"als-reg-0.01/checkpoint.pt' was made with another train.als_reg or "
                                            r"train.als_recency \(auto, or one value\)"):
        fit_selecting(ds, one, tmp_path / "als", resume=True)


def test_resume_after_the_same_ingest_again(synth_ds, synth_dir, small_cfg, tmp_path, monkeypatch):
    """Ingesting the same data again (a new generation, the same files, another 'created' time) keeps a run
    resumable: the checkpoint pins the dataset by its content fingerprint, as evaluate does; another split is
    still refused, and a checkpoint that recorded the old whole-manifest fingerprint still resumes."""
    import functools
    import time

    from embedrec.training import fit as F

    ds, _ = synth_ds
    cfg = small_cfg.updated({"data.source": str(synth_dir[0]), "train.epochs": 4, "train.patience": 10})
    full = fit(ds, cfg.model, cfg.train, tmp_path / "full")
    part = cfg.updated({"train.epochs": 2})
    fit(ds, part.model, part.train, tmp_path / "part")
    with monkeypatch.context() as mp:  # a checkpoint from before: the whole manifest in its fingerprint
        mp.setattr(F, "fingerprint", functools.partial(F.fingerprint, legacy=True))
        fit(ds, part.model, part.train, tmp_path / "legacy")
    stamp = time.strftime  # ingest's 'created' is to the second: make sure the manifests differ
    with monkeypatch.context() as mp:
        mp.setattr(time, "strftime", lambda fmt, *a: "2001-02-03T04:05:06Z" if "%SZ" in fmt else stamp(fmt, *a))
        ingest(cfg.data, cfg.split, output=cfg.data.prepared, overwrite=True)
    again = load_dataset(cfg.data.prepared)
    assert again.folder != ds.folder and again.manifest != ds.manifest and again.fingerprint == ds.fingerprint
    resumed = fit(again, cfg.model, cfg.train, tmp_path / "part", resume=True)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(v, resumed.model.state_dict()[k], rtol=0, atol=0)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    old = fit(ds, cfg.model, cfg.train, tmp_path / "legacy", resume=True)  # the manifest it recorded: resumes
    assert [h["loss"] for h in full.history] == [h["loss"] for h in old.history]
    other = cfg.updated({"split.seed": 7})
    ingest(other.data, other.split, output=other.data.prepared, overwrite=True)
    moved = load_dataset(cfg.data.prepared)
    assert moved.fingerprint != ds.fingerprint
    for run in ("part", "legacy"):
        # a review: this said to resume 'with the config it was trained with', which cannot bring a dataset back
        with pytest.raises(ArtifactError, match=r"was made on another dataset \(its manifest differs\): the dataset "
                                                r"was ingested again since .*; train again without resume=True"):
            fit(moved, part.model, part.train, tmp_path / run, resume=True)


def test_a_fresh_run_of_another_trainer_leaves_nothing_to_resume_of_the_earlier_one(synth_ds, small_cfg, tmp_path):
    """A review: a default (als) run, then a fresh bpr run in the same folder, then `--resume` without the bpr
    options: the als candidates' checkpoints were still there, the earlier als selection was resumed, and its model
    published over the bpr one (exit 0). A fresh run now clears every earlier run's checkpoints at the top of the
    run folder, whatever its trainer, so that resume names the checkpoint that is the run's; the other way round
    too (a bpr checkpoint outlived an als run). The published models and the user's files stay."""
    import os

    from click.testing import CliRunner

    from embedrec.cli import main

    ds, _ = synth_ds
    run = tmp_path / "runs" / "r"
    base = ["train", "-q", "--set", f"data.prepared={small_cfg.data.prepared}", "--set", "model.dim=8", "--run", str(run),
            "--set", "train.epochs=2"]
    bpr = ["--set", "model.loss=bpr", "--set", "train.optimizer=adam"]

    def train(*args):
        r = CliRunner().invoke(main, [*base, *args])
        return r.exit_code, r.stdout, r.stderr

    assert train()[0] == 0
    assert (run / "als-reg-0.01" / "checkpoint.pt").is_file()
    (run / "als-reg-0.01" / "notes.txt").write_text("mine")  # a user's file in a candidate's folder stays
    (run / "als-backup").mkdir()  # a folder of the user's own, named like no candidate: kept whole (a review)
    (run / "als-backup" / "checkpoint.pt").write_bytes((run / "als-reg-0.01" / "checkpoint.pt").read_bytes())
    assert train(*bpr)[0] == 0
    assert sorted(os.listdir(run / "als-backup")) == ["checkpoint.pt"]
    assert (run / "checkpoint.pt").is_file() and not (run / "als-reg-0.02").exists()
    assert sorted(os.listdir(run / "als-reg-0.01")) == ["notes.txt"]
    published = os.readlink(run / "current")
    code, out, err = train("--resume")  # the bpr options forgotten
    assert (code, out) == (1, "") and err.splitlines() == [
        f"error: checkpoint '{run / 'checkpoint.pt'}' was made with another model.loss ('bpr', now 'auto'); resume "
        "with the config it was trained with (-c FILE and the same --set options), or train again without --resume"]
    assert os.readlink(run / "current") == published
    assert train()[0] == 0  # als again: the bpr checkpoint goes with its log
    assert not (run / "checkpoint.pt").exists() and not (run / "metrics.jsonl").exists()
    code, out, err = train(*bpr, "--resume")
    assert (code, out) == (1, "") and "als-reg-0.01/checkpoint.pt' was made with another model.loss ('auto', now " \
        "'bpr')" in err, err


def test_keep_checkpoints_false_leaves_only_the_published_model(synth_ds, small_cfg, tmp_path):
    """train.keep_checkpoints: false clears training's folders once the model is published (a finished run kept
    31 MB of checkpoints beside a 3.4 MB model on ML-100K); the model serves, a user's file there stays."""
    import os

    from click.testing import CliRunner

    from embedrec.cli import main

    run = tmp_path / "r"
    args = ["train", "-q", "--set", f"data.prepared={small_cfg.data.prepared}", "--set", "model.dim=8", "--run", str(run),
            "--set", "train.epochs=2"]
    assert CliRunner().invoke(main, args).exit_code == 0
    kept = sorted(os.listdir(run))
    assert "checkpoint.pt" in kept or any(n.startswith("als-") for n in kept), kept  # the default keeps them
    # not part of what a checkpoint was made with (a review: every older checkpoint's resume was refused)
    r = CliRunner().invoke(main, [*args, "--resume", "--set", "train.keep_checkpoints=false"])
    assert r.exit_code == 0, r.stderr
    (run / "refit").mkdir(exist_ok=True)
    (run / "refit" / "notes.txt").write_text("mine")
    r = CliRunner().invoke(main, [*args, "--set", "train.keep_checkpoints=false"])
    assert r.exit_code == 0, r.stderr
    left = sorted(n for n in os.listdir(run) if not n.startswith("artifacts-"))
    assert left == [".lock", "current", "refit"], left
    assert os.listdir(run / "refit") == ["notes.txt"]
    r = CliRunner().invoke(main, ["recommend", "--run", str(run), "--user", "1", "-k", "3", "--format", "csv"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4, r.stderr
    # its resume finds it finished, as a run that kept them (a cross-validate fold's rerun kept it so): the config
    # and dataset the same, no checkpoint left (before: trained again, its checkpoints part of the record)
    from embedrec.config import load_config
    from embedrec.publish import finished_run

    cfg = load_config(None, [f"data.prepared={small_cfg.data.prepared}", "model.dim=8", f"run.dir={run}",
                             "train.epochs=2", "train.keep_checkpoints=false"])
    assert finished_run(cfg) is not None
    assert finished_run(cfg.updated({"model.dim": 6})) is None
    r = CliRunner().invoke(main, [*[a for a in args if a != "-q"], "--set", "train.keep_checkpoints=false",
                                  "--resume"])
    assert r.exit_code == 0 and "no checkpoint in" not in r.stderr and f"nothing to resume: {run} is finished" in \
        r.stderr and "its checkpoints were cleared once it was published" in r.stderr and "train.epochs" not in \
        r.stderr, r.stderr  # (no epoch to go on from: a second review)


def test_resume_on_another_dataset_folder_names_both(synth_ds, synth_dir, small_cfg, tmp_path):
    """A review: Ctrl-C in a run trained on data/prepared/ml-100k-time, then `train --resume` without its -c FILE
    (so on data/prepared/ml-100k) said the dataset 'was ingested again since', which nothing had, and to train
    again (the checkpoint thrown away). It names the folder the checkpoint was made on and this run's."""
    import shutil

    ds, _ = synth_ds
    fit(ds, small_cfg.model, small_cfg.train, tmp_path / "r")
    other = tmp_path / "other"
    shutil.copytree(small_cfg.data.prepared, other, symlinks=True)
    from embedrec.ingestion import ingest as again

    moved = small_cfg.updated({"split.seed": 7, "data.prepared": str(other), "data.source": str(synth_dir[0])})
    # (the synthetic source: the config's default, ml-100k, is a download; a machine without the registry failed)
    again(moved.data, moved.split, output=str(other), overwrite=True)
    with pytest.raises(ArtifactError) as e:
        fit(load_dataset(other), small_cfg.model, small_cfg.train, tmp_path / "r", resume=True)
    assert str(e.value) == (f"checkpoint '{tmp_path / 'r' / 'checkpoint.pt'}' was made on dataset "
                            f"'{small_cfg.data.prepared}', not on '{other}' (data.prepared): resume with the config it "
                            "was trained with (the same cfg), or train again without resume=True")


def test_explicit_refuses_a_dataset_without_ratings(tmp_path):
    """A dataset ingested with data.columns.rating=null stores every row as rating 1: an explicit model fitted the
    constant and reported RMSE 0.0 (exit 0). It is a config error, exit 2, before the run folder is made."""
    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.config import Config
    from embedrec.errors import ConfigError

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user_id,movie_id\n" + "".join(f"{u},{m}\n" for u in range(20) for m in range(u % 3, 15, 2)))
    ds, run = tmp_path / "pairs", tmp_path / "runs" / "p"
    r = CliRunner().invoke(main, ["ingest", "-q", str(pairs), "-o", str(ds), "--set", "data.columns.rating=null",
                                  "--set", "data.columns.timestamp=null"])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(main, ["train", "--set", f"data.prepared={ds}", "--run", str(run), "--set",
                                  "model.objective=explicit"])
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.splitlines() == [
        f"error: config key 'model.objective': explicit needs ratings, and dataset '{ds}' has none (ingested with "
        "data.columns.rating=null); use the default model.objective=implicit"], r.stderr
    assert not run.parent.exists()
    cfg = Config().updated({"model.objective": "explicit"})
    with pytest.raises(ConfigError, match="explicit needs ratings"):
        fit(load_dataset(ds), cfg.model, cfg.train)


def test_explicit_refuses_training_ratings_that_are_all_one_value(tmp_path):
    """A RecBole .inter file without a rating field (or any file whose ratings are all equal) stored every row as
    rating 1 and its manifest did not say so: the explicit model fitted the constant. Now refused, exit 2."""
    from click.testing import CliRunner

    from embedrec.cli import main

    d = tmp_path / "clicks"
    d.mkdir()
    (d / "clicks.inter").write_text("user_id:token\titem_id:token\n" +
                                    "".join(f"{u}\t{m}\n" for u in range(20) for m in range(u % 3, 15, 2)))
    ds, run = tmp_path / "ds", tmp_path / "runs" / "c"
    r = CliRunner().invoke(main, ["ingest", "-q", str(d), "-o", str(ds)])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(main, ["train", "--set", f"data.prepared={ds}", "--run", str(run), "--set",
                                  "model.objective=explicit"])
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.splitlines() == [
        f"error: config key 'model.objective': explicit fits ratings, and every training rating of dataset '{ds}' "
        "is 1 (a file without a rating field?); use the default model.objective=implicit"], r.stderr
    assert not run.parent.exists()
    r = CliRunner().invoke(main, ["train", "-q", "--set", f"data.prepared={ds}", "--run", str(run),
                                  "--set", "train.epochs=1"])
    assert r.exit_code == 0, r.stderr  # the default (implicit) model trains on it


def test_divergence_names_learning_rate(synth_ds, small_cfg, tmp_path):
    ds, _ = synth_ds
    small_cfg = small_cfg.updated({"train.optimizer": 'sgd', "train.lr": 1000000.0})
    with pytest.raises(TrainingError, match=r"train\.lr=1e\+06\) is probably too high"):
        fit(ds, small_cfg.model, small_cfg.train, tmp_path / "nan")


def test_sparse_optimizers_and_sampled_softmax_train(synth_ds, small_cfg, tmp_path):
    """Each epoch lowers the loss and improves the validation metric; the sparse optimisers beat the global mean
    in two epochs. (tests/test_contract.py holds every training path to its known answer.)"""
    from embedrec.evaluate import baselines

    ds, _ = synth_ds
    small_cfg = small_cfg.updated({"train.epochs": 2})
    global_mean = baselines(ds, "valid", True, [10])["global_mean"]["rmse"]
    for opt, lr in (("sgd", 0.5), ("adagrad", 0.05), ("sparse_adam", 0.01)):
        small_cfg = small_cfg.updated({"train.optimizer": opt, "train.lr": lr})
        h = fit(ds, small_cfg.model, small_cfg.train, tmp_path / opt).history
        assert h[1]["loss"] < h[0]["loss"] and h[1]["valid_rmse"] < h[0]["valid_rmse"] < global_mean, (opt, h)
    small_cfg = small_cfg.updated({"model.objective": 'implicit', "model.loss": 'softmax'})
    small_cfg = small_cfg.updated({"train.softmax_full_max": 10, "train.negatives": 32})
    small_cfg = small_cfg.updated({"train.optimizer": 'adam'})
    h = fit(ds, small_cfg.model, small_cfg.train, tmp_path / "sampled").history
    assert h[1]["loss"] < h[0]["loss"] and h[1]["valid_ndcg@10"] > h[0]["valid_ndcg@10"], h


def test_tensorboard_scalars_when_installed(synth_ds, small_cfg, tmp_path):
    pytest.importorskip("tensorboard")
    ds, _ = synth_ds
    small_cfg = small_cfg.updated({"train.epochs": 2})
    fit(ds, small_cfg.model, small_cfg.train, tmp_path / "tb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))
    assert files
    acc = EventAccumulator(str(files[0]))
    acc.Reload()
    assert {"loss", "valid/rmse"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss")] == [1, 2]


def test_compiled_explicit_loss_matches_eager(synth_ds, small_cfg, tmp_path):
    ds, _ = synth_ds
    small_cfg = small_cfg.updated({"train.epochs": 2, "train.batch_size": 4096, "train.optimizer": "adam"})
    eager = fit(ds, small_cfg.model, small_cfg.train, tmp_path / "eager")
    small_cfg = small_cfg.updated({"train.compile": True})
    comp = fit(ds, small_cfg.model, small_cfg.train, tmp_path / "compiled")
    small_cfg = small_cfg.updated({"train.compile": False})
    np.testing.assert_allclose([h["loss"] for h in comp.history], [h["loss"] for h in eager.history], rtol=1e-3)


def _written_again(checkpoint) -> None:
    """``checkpoint`` written again with other bytes, as a train started since writes one (the same state, its keys
    in another order): a finished run's key (trained.finished_key) no longer matches it."""
    from embedrec.training import loop

    held = loop.load(checkpoint)
    loop.save(checkpoint, dict(reversed(list(held.items()))))


def test_a_run_keyed_by_its_checkpoints_times_still_resumes_as_finished(synth_ds, small_cfg, tmp_path, monkeypatch):
    """Runs trained before session 73 recorded their checkpoints' modification times in the finished key (now what
    the files hold): such a run's resume is still found finished, not trained again."""
    import os

    import embedrec.trained
    from embedrec.config import load_config
    from embedrec.train_workflow import train_run

    cfg = load_config(None, [f"data.prepared={small_cfg.data.prepared}", "model.dim=8", "train.epochs=2",
                             f"run.dir={tmp_path / 'run'}"])
    with monkeypatch.context() as mp:
        mp.setattr(embedrec.trained, "_held", lambda path, st: st.st_mtime_ns)  # the key as recorded before
        train_run(cfg)
    folder = os.readlink(tmp_path / "run" / "current")
    monkeypatch.setattr(embedrec.train_workflow, "train_model", None)  # (trained again: a TypeError)
    train_run(cfg, resume=True)
    assert os.readlink(tmp_path / "run" / "current") == folder


def test_resume_of_a_finished_run_publishes_nothing_new(synth_ds, small_cfg, tmp_path):
    """`train --resume` on a run that finished recomputed the same model and published it again (a new artifacts
    folder, `current` moved). It says there is nothing to resume and leaves the run as it was; with more epochs
    it continues and publishes."""
    import json
    import os

    from click.testing import CliRunner

    from embedrec.cli import main

    run = tmp_path / "run"
    sets = ["--set", f"data.prepared={small_cfg.data.prepared}", "--set", "model.dim=8", "--set", "train.epochs=3",
            "--set", "train.patience=100", "--run", str(run)]

    def invoke(*args):
        return CliRunner().invoke(main, ["train", "--format", "json", *sets, *args])

    first = invoke()
    assert first.exit_code == 0
    before = sorted(os.listdir(run)), os.readlink(run / "current")
    import embedrec.train_workflow

    real = embedrec.train_workflow.train_model
    embedrec.train_workflow.train_model = None  # a known gap: the resume replayed every fit (and said the choices again)
    try:
        r = invoke("--resume")
    finally:
        embedrec.train_workflow.train_model = real
    assert r.exit_code == 0, r.stderr
    # one line, nothing replayed
    assert r.stderr.splitlines() == [f"nothing to resume: {run} is finished (its model {before[1]} was trained with "
                                     "this config and these checkpoints); train without --resume to train again, or "
                                     "raise train.epochs to continue"], r.stderr
    # it reports the published model's metrics as recorded (a first-hour review: each such resume reported a
    # longer fit, the replay's seconds added to the recorded ones)
    assert json.loads(r.stdout) == json.loads(first.stdout) == json.loads((run / "current" / "metrics.json").read_text())
    assert (sorted(os.listdir(run)), os.readlink(run / "current")) == before
    checkpoint = next(run.rglob("checkpoint*"))
    # its time alone changed (`touch`, a copy without its times): still finished (a red team: an updated run's
    # resume trained again and replaced the update)
    os.utime(checkpoint, ns=(checkpoint.stat().st_atime_ns, checkpoint.stat().st_mtime_ns + 10**9))
    r = invoke("--resume")
    assert r.exit_code == 0 and r.stderr.startswith(f"nothing to resume: {run} is finished (its model"), r.stderr
    _written_again(checkpoint)  # a checkpoint written since the publish (other bytes): replayed, as before
    r = invoke("--resume")
    assert r.exit_code == 0 and f"the checkpoints were complete and {run} already holds this model" in r.stderr
    assert json.loads(r.stdout) == json.loads(first.stdout) and os.readlink(run / "current") == before[1]
    r = invoke("--resume", "--set", "train.epochs=5")  # more epochs: it trains on and publishes
    assert r.exit_code == 0 and "nothing to resume" not in r.stderr, r.stderr
    assert os.readlink(run / "current") != before[1]


def test_train_hashes_each_array_it_writes_once_as_it_writes_it(synth_ds, small_cfg, tmp_path, monkeypatch):
    """A scale review (session 58): train hashed each array in memory for the manifest's ``files``, then read its
    file back and hashed it again for the checksums (1 GB hashed for a 512 MB user table). Each .npy file is now
    hashed once, as it is written, and that one SHA-256 is both its ``files`` entry and its checksum: no array's
    bytes are hashed apart from its file, no file read back. verify still hashes every file, and a resume of a
    finished run still knows it, a run published before (its ``files`` of the arrays' bytes) too."""
    import hashlib
    import json
    import os
    import types

    from click.testing import CliRunner

    import embedrec.artifacts as artifacts
    import embedrec.fsutil.integrity as integrity
    import embedrec.run_publish as run_publish
    from embedrec.cli import main
    from embedrec.fsutil.integrity import SEAL, seal

    run = tmp_path / "run"
    sets = ["--set", f"data.prepared={small_cfg.data.prepared}", "--set", "model.dim=8", "--set", "train.epochs=3",
            "--run", str(run)]
    read_back, in_artifacts = [], []

    class Counted:  # artifacts.py's hashes, the bytes each one took
        def __init__(self, data=b""):
            self.h, self.n = hashlib.sha256(), 0
            in_artifacts.append(self)
            self.update(data)

        def update(self, b):
            self.n += memoryview(b).nbytes
            self.h.update(b)

        def hexdigest(self):
            return self.h.hexdigest()

    real = integrity.sha256_file
    with monkeypatch.context() as mp:
        mp.setattr(integrity, "sha256_file", lambda p: read_back.append(os.path.basename(p)) or real(p))
        mp.setattr(artifacts, "hashlib", types.SimpleNamespace(sha256=Counted))
        mp.setattr(run_publish, "sha256_array", lambda a: pytest.fail("an array hashed apart from its file"))
        r = CliRunner().invoke(main, ["train", "-q", *sets])
    assert r.exit_code == 0, r.stderr
    folder = run / os.readlink(run / "current")
    m = json.loads((folder / "manifest.json").read_text())
    arrays = sorted(p.name for p in folder.glob("*.npy") if p.name in m["files"])
    assert len(arrays) >= 6 and sorted(m["files"]) == arrays and not set(arrays) & set(read_back), read_back
    assert all(m["files"][n] == m["checksums"][n]["sha256"] == real(folder / n) for n in arrays)
    hashed = sum(h.n for h in in_artifacts)  # each file's bytes once, and the embeddings' two digests
    assert sum((folder / n).stat().st_size for n in arrays) <= hashed < sum((folder / n).stat().st_size
                                                                            for n in arrays) + 1000, hashed
    assert CliRunner().invoke(main, ["verify", str(run)]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--resume", *sets])
    assert r.exit_code == 0 and "nothing to resume" in r.stderr, r.stderr

    checkpoint = next(run.rglob("checkpoint*"))  # one written since the publish: replayed, the model compared
    _written_again(checkpoint)
    for old in (False, True):  # as a run published before session 58 recorded its arrays: of their bytes
        if old:
            m.pop(SEAL)
            m["files"] = {n: run_publish.sha256_array(np.load(folder / n)) for n in arrays}
            (folder / "manifest.json").write_text(json.dumps(seal(m)))
        r = CliRunner().invoke(main, ["train", "--resume", *sets])
        assert r.exit_code == 0 and f"{run} already holds this model" in r.stderr, (old, r.stderr)
        assert run / os.readlink(run / "current") == folder


def test_a_finished_runs_resume_does_not_hide_a_dataset_file_rewritten_since(synth_ds, small_cfg, tmp_path):
    """A review (session 45): the finished-run answer came before any read of the dataset, so a train.parquet
    rewritten under its manifest since the run finished was not said (the resume before it named the damage). A
    file whose size is not the manifest's sends the resume the old way, which names it."""
    import shutil

    from click.testing import CliRunner

    from embedrec.cli import main

    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(small_cfg.data.prepared, data, symlinks=True)
    sets = ["--set", f"data.prepared={data}", "--set", "model.dim=8", "--set", "train.epochs=2", "--run", str(run)]
    assert CliRunner().invoke(main, ["train", "-q", *sets]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--resume", *sets])
    assert r.exit_code == 0 and "nothing to resume" in r.stderr, r.stderr
    train = next(f for f in data.rglob("train.parquet"))
    train.write_bytes(train.read_bytes() + b"\0" * 16)
    r = CliRunner().invoke(main, ["train", "--resume", *sets])
    assert r.exit_code != 0 and "nothing to resume" not in r.stderr and "damaged" in r.stderr, r.stderr


def test_resume_of_a_finished_run_by_another_spelling_of_its_folder_publishes_nothing_new(synth_ds, small_cfg,
                                                                                         tmp_path, monkeypatch):
    """A run trained as /abs/run and resumed as `--run run` from its parent (or the reverse) is the same run: the
    config's run.dir was compared as spelt, so each such resume published the same model again (a check)."""
    import os

    from click.testing import CliRunner

    from embedrec.cli import main

    monkeypatch.chdir(tmp_path)
    sets = ["--set", f"data.prepared={small_cfg.data.prepared}", "--set", "model.dim=8", "--set", "train.epochs=3",
            "--format", "json"]
    first = CliRunner().invoke(main, ["train", *sets, "--run", str(tmp_path / "run")])
    assert first.exit_code == 0, first.stderr
    before = os.readlink(tmp_path / "run" / "current")
    for spelt in ("run", "./run/"):
        r = CliRunner().invoke(main, ["train", *sets, "--run", spelt, "--resume"])
        assert r.exit_code == 0, r.stderr
        assert "nothing to resume: " in r.stderr and " is finished (its model" in r.stderr, r.stderr
        assert os.readlink(tmp_path / "run" / "current") == before
    # trained as a relative run.dir, resumed by its absolute path from another folder (a diff review)
    rel = CliRunner().invoke(main, ["train", *sets, "--run", "rel"])
    assert rel.exit_code == 0, rel.stderr
    before = os.readlink(tmp_path / "rel" / "current")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = CliRunner().invoke(main, ["train", *sets, "--run", str(tmp_path / "rel"), "--resume"])
    assert r.exit_code == 0 and " is finished (its model" in r.stderr, r.stderr
    assert os.readlink(tmp_path / "rel" / "current") == before


def test_training_leaves_torchs_threads_rng_and_warning_filters_as_it_found_them(tmp_path):
    """A notebook review: er.train with a torch trainer left torch at its train.threads (2 -> 1) and its global
    RNG reseeded, and the torch ALS engine added a process-wide warnings filter."""
    import warnings

    import torch

    import embedrec as er
    from embedrec.config import load_config
    from embedrec.data.synth import write_movielens

    src = tmp_path / "src"
    write_movielens(src, 60, 40, 1200, rank=3, seed=0)
    cfg = load_config(None, [f"data.prepared={tmp_path / 'ds'}", f"run.dir={tmp_path / 'run'}", "train.threads=1",
                             "model.objective=explicit", "train.optimizer=adam", "train.epochs=2", "model.dim=4"])
    ds = er.ingest(str(src), cfg)
    torch.set_num_threads(2)
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    er.train(ds, cfg)
    assert torch.get_num_threads() == 2 and torch.equal(torch.get_rng_state(), state)
    from embedrec.errors import ArtifactError
    from embedrec.training.fit import fit

    with pytest.raises(ArtifactError, match="resume"):  # a fit that fails after setting them up puts them back too
        fit(ds, cfg.model, cfg.train, tmp_path / "empty", resume=True)
    assert torch.get_num_threads() == 2 and torch.equal(torch.get_rng_state(), state)
    from embedrec.training.als import _torch_csr  # the torch ALS engine's CSR (cuda, or no C compiler)

    _torch_csr(np.array([0, 1]), np.array([0]), None, 1, 1)
    assert not any(f[1] is not None and "Sparse CSR" in f[1].pattern for f in warnings.filters)


@pytest.mark.parametrize("edit, phrase", [
    (lambda ck: ck.pop("epoch"), "it lacks 'epoch'"),
    (lambda ck: ck.update(epoch=-3), "names epoch -3"),
    (lambda ck: ck["model"].update({k: v[:, :2] for k, v in ck["model"].items() if v.ndim == 2 and "user" in k}),
     "holds 'user.weight' as"),
    (lambda ck: ck["model"].update({k: v.astype(np.int8) for k, v in ck["model"].items() if "movie" in k}),
     "int8 where the model has"),
    (lambda ck: ck.update(best_state={k: v[:, :2] if v.ndim == 2 else v for k, v in ck["model"].items()}),
     "holds best_state 'user.weight' as"),
])
def test_a_hand_edited_checkpoint_is_refused_on_resume(synth_ds, small_cfg, tmp_path, edit, phrase):
    """A review: a checkpoint edited with its zip CRCs intact (no 'epoch', a negative one, a narrower table, int8
    tables) gave an internal error, an endless loop or a different model; it is now refused in one line."""
    from embedrec.errors import ArtifactError
    from embedrec.training.loop import load, save

    ds, _ = synth_ds
    cfg = small_cfg.updated({"model.objective": "implicit", "model.loss": "als", "train.epochs": 2})
    fit(ds, cfg.model, cfg.train, tmp_path / "run")
    path = tmp_path / "run" / "checkpoint.pt"
    ck = load(path)
    edit(ck)
    save(path, ck)
    with pytest.raises(ArtifactError, match=phrase):
        fit(ds, cfg.model, cfg.updated({"train.epochs": 3}).train, tmp_path / "run", resume=True)


def test_the_best_epoch_line_says_when_its_score_is_after_the_users_re_solve(caplog):
    """A first-hour review: 'best epoch 5 of 6 (valid ndcg@10 0.2122)' where epoch 5 scored 0.1924 and 0.2122 came
    from the users' re-solve at als_user_unobserved 0.5."""
    from embedrec.cli.train import _report
    from embedrec.config import Config

    def said(unobserved, seconds=None, refit=False, loss=None, resumed=False, **more):
        metrics = {"selection": {"best_epoch": 5, "epochs_run": 6, "valid": 0.2122, "metric": "ndcg@10",
                                 "seconds": 1.0, "als_user_unobserved": unobserved, **more},
                   "epochs_run": 7, "train_seconds": 1.0, "refit": refit, "splits": {}, "dim": 256, "loss": loss}
        caplog.clear()
        with caplog.at_level("INFO", logger="embedrec"):
            _report(metrics, Config(), "json", seconds, resumed=resumed)
        return caplog.records[0].getMessage()

    # the command's whole time beside the fits' (a first-hour pass: they were half of it, the rest in no figure)
    assert said(1.0, 12.34).endswith("; run in runs/ml-100k (this command 12.3s in all: loading, the fits, "
                                     "evaluation, the index)")

    assert said(0.5).startswith("best epoch 5 of 6 (valid ndcg@10 0.2122 with the users re-solved at "
                                "als_user_unobserved 0.5); fit 1.0s")
    assert said(1.0).startswith("best epoch 5 of 6 (valid ndcg@10 0.2122); fit 1.0s")
    # the refit's count: an als refit replays the selection's sweeps (a first-hour review read 'for 7 epochs' after
    # 'best epoch 5 of 6' as a mistake); another loss's refit trains that many epochs
    assert "; refit on train+valid replaying the selection's path (7 sweeps), 1.0s" in said(1.0, refit=True, loss="als")
    assert "; refit on train+valid for 7 epochs, 1.0s" in said(1.0, refit=True, loss="softmax")
    # a review: with train.als_dims the epochs are the chosen fit's, the seconds every fit's of the selection
    assert said(1.0, als_reg=0.01, als_dims={"128": 0.2, "256": 0.2122}).startswith(
        "best epoch 5 of 6 (valid ndcg@10 0.2122 at model.dim 256); selection 1.0s")
    # a resume: the fit figures go on from the checkpoints' seconds, the command's do not (a review)
    assert said(1.0, 12.34, resumed=True).endswith("; run in runs/ml-100k (resumed: the fit's seconds include the "
                                                   "time of its epochs checkpointed before this command; this "
                                                   "command 12.3s in all: loading, the fits, evaluation, the index)")


def test_a_resumes_best_epoch_line_says_its_fit_seconds_include_the_interrupted_commands(synth_ds, small_cfg,
                                                                                         tmp_path, monkeypatch):
    """A review: after a kill, `train --resume` said 'selection 38.4s ... (this command 36.5s in all)', a part
    above its whole: a fit's seconds go on from its checkpoint's, the command's start with it. A resume's line now
    says which figures count the time before it; a fresh run's says nothing of it."""
    import re
    import time

    from click.testing import CliRunner

    import embedrec.training.loop as loop
    import embedrec.training.select as select
    from embedrec.cli import main

    run = tmp_path / "run"
    args = ["train", "--set", f"data.prepared={small_cfg.data.prepared}", "--set", "model.dim=4", "--set",
            "train.threads=1", "--set", "train.epochs=2", "--run", str(run)]
    real_fit, real_run, calls = select.fit, loop.run, []

    def fit(*a, **k):  # the first candidate fits, a Ctrl-C comes before the second
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*a, **k)

    def slow(*a, **k):  # the interrupted command's fit takes 2 s more, counted in its epochs' elapsed seconds
        time.sleep(2)
        return real_run(*a, **k)

    monkeypatch.setattr(select, "fit", fit)
    monkeypatch.setattr(loop, "run", slow)
    assert CliRunner().invoke(main, args).exit_code == 130
    monkeypatch.setattr(select, "fit", real_fit)
    monkeypatch.setattr(loop, "run", real_run)

    def line(*more):
        r = CliRunner().invoke(main, [*args, *more])
        assert r.exit_code == 0, r.stderr
        return next(x for x in r.stderr.splitlines() if x.startswith("best epoch "))

    said = line("--resume")
    assert float(re.search(r"; selection ([0-9.]+)s;", said)[1]) >= 2, said  # the first candidate's 2 s, before
    assert re.search(rf"; run in {re.escape(str(run))} \(resumed: the selection's and the refit's seconds include "
                     r"the time of their epochs checkpointed before this command; this command [0-9.]+s in all: "
                     r"loading, the fits, evaluation, the index\)$", said), said
    assert "resumed" not in line()  # a fresh run: every figure is this command's


def test_train_says_valid_and_test_hold_out_unlike_numbers_of_movies_a_user(caplog):
    """A first-hour review read 'valid ndcg@10 0.2180' then test 0.4510 as a contradiction: ML-100K's default split
    holds out about 11 movies a user in valid, 21 in test, and NDCG@10 grows with them. train says so in one line
    where both figures of a ranking metric are said and the two splits' movies a user differ by a quarter or more;
    held_out (metrics.json) gives the counts."""
    from embedrec.figure_notes import held_out_notes, log_notes

    def said(held, metric="ndcg@10", test=0.451043):
        metrics = {"selection": {"metric": metric, "valid": 0.2179514}, "held_out": held,
                   "splits": {"test": {"model": {metric: test}}}}
        caplog.clear()
        with caplog.at_level("INFO", logger="embedrec"):
            log_notes(held_out_notes(metrics))  # (cli/train.py's _held_out_note before it moved to the library)
        return [r.getMessage() for r in caplog.records]

    ml100k = {"valid": {"ratings": 10000, "users": 943}, "test": {"ratings": 19964, "users": 942}}
    assert said(ml100k) == ["note: valid and test hold out about 11 and 21 movies a user, and ndcg@10 grows with "
                            "them: compare valid's 0.2180 with valid figures and test's 0.4510 with test figures "
                            "(docs/quality.md)"]
    assert said({"valid": {"ratings": 900, "users": 100}, "test": {"ratings": 400, "users": 100}})[0].startswith(
        "note: valid and test hold out about 9.0 and 4.0 movies a user")
    assert said({"valid": {"ratings": 1000, "users": 100}, "test": {"ratings": 1200, "users": 100}}) == []  # alike
    assert said(ml100k, metric="rmse") == []  # a rating metric: no such growth
    assert "and recall@10 falls with them" in said(ml100k, metric="recall@10")[0]
    assert said(ml100k, test=None) == [] and said({"test": ml100k["test"]}) == []  # one figure alone


def test_train_model_records_each_split_s_held_out_ratings_and_users(trained_run):
    from embedrec.data.dataset import load_dataset
    from embedrec.train_workflow import held_out

    ds = load_dataset(trained_run.cfg.data.prepared)
    recorded = trained_run.opened.metrics["held_out"]  # what train wrote to metrics.json, of the dataset it read
    assert recorded == {s: {"ratings": len(ds.splits[s]), "users": len(set(ds.splits[s].user.tolist()))}
                        for s in ("valid", "test")}

    class Part:
        def __init__(self, users):
            self.user = np.asarray(users)

        def __len__(self):
            return self.user.size

    class Ds:
        splits = {"train": Part([0, 1, 2]), "valid": Part([0, 0, 1]), "test": Part([])}

    assert held_out(Ds()) == {"valid": {"ratings": 3, "users": 2}}


def test_the_progress_bar_shows_a_cap_not_a_time_left_when_early_stopping_may_end_the_fit(capsys):
    """A first-hour review: 'train:   5%| | 5/100 [00:00<00:12, ...]', an ETA for train.epochs=100, and then a stop
    at epoch 6: with early stopping the epoch count is a cap."""
    from types import SimpleNamespace

    from embedrec.training.loop import LoopState, Progress

    for may_stop in (True, False):
        state = LoopState(SimpleNamespace(), None, 100, 0.0, epoch=0, value=0.25)
        bar = Progress("train", "ndcg@10", True, may_stop=may_stop)
        bar.start(state)
        bar.record(state, {"loss": 0.5})
        bar.close(state)
        err = capsys.readouterr().err
        if may_stop:
            assert "train: epoch 1 of at most 100 [" in err and "<" not in err and "%" not in err, err
        else:
            assert "1/100 [" in err and "%" in err, err


def test_a_fit_without_a_bar_says_an_epoch_line_every_so_often(monkeypatch, caplog):
    """A first-hour review: with stderr not a terminal (a log file), a fit of 16-19 s epochs wrote nothing for
    minutes. Without a bar, an epoch's line comes once LINE_EVERY seconds have passed; never with a bar, nor on
    a rank that does not speak (lines=False)."""
    import logging
    from types import SimpleNamespace

    from embedrec.training import loop

    clock = iter(range(0, 1000, 10))  # 10 s an epoch
    monkeypatch.setattr(loop.time, "monotonic", lambda: float(next(clock)))
    state = SimpleNamespace(epoch=0, epochs=5, value=0.5)
    with caplog.at_level(logging.INFO, logger="embedrec"):
        for lines in (True, False):
            p = loop.Progress("train", "rmse", enabled=False, may_stop=True, lines=lines)
            p.bar = SimpleNamespace(update=lambda n: None, set_postfix=lambda d: None)
            for e in range(5):
                state.epoch = e
                p.record(state, {"loss": 1.0 / (e + 1)})
    said = [r.getMessage() for r in caplog.records]
    assert said == ["train: epoch 2 of at most 5, loss 0.5000, valid rmse 0.5000",
                    "train: epoch 4 of at most 5, loss 0.2500, valid rmse 0.5000"], said


def test_the_early_stop_line_follows_the_last_epochs_line(monkeypatch, caplog):
    """A first-hour review: without a bar, 'early stop after epoch 14 ...' came before 'train: epoch 14 of at
    most 100 ...' (KeepBest logged in its record, before Progress's). The stop is said when the loop ends."""
    import logging
    from types import SimpleNamespace

    from embedrec.training import loop

    clock = iter(range(0, 1000, 20))  # 20 s an epoch: every epoch has its line
    monkeypatch.setattr(loop.time, "monotonic", lambda: float(next(clock)))
    state = loop.LoopState(SimpleNamespace(state_dict=lambda: {}), None, 10, 0.0)
    keep = loop.KeepBest("ndcg@10", True, 1, True)
    progress = loop.Progress("train", "ndcg@10", enabled=False, may_stop=True)
    progress.bar = SimpleNamespace(update=lambda n: None, set_postfix=lambda d: None, close=lambda: None)
    with caplog.at_level(logging.INFO, logger="embedrec"):
        for epoch, value in enumerate((0.2, 0.3, 0.25)):  # as loop.run calls them
            state.epoch, state.value = epoch, value
            keep.measure(state, {})
            for cb in (keep, progress):
                cb.record(state, {"loss": 1.0})
            if state.stop:
                break
        loop._close(state, [keep, progress])
    assert [r.getMessage() for r in caplog.records] == [
        "train: epoch 1 of at most 10, loss 1.0000, valid ndcg@10 0.2000",
        "train: epoch 2 of at most 10, loss 1.0000, valid ndcg@10 0.3000",
        "train: epoch 3 of at most 10, loss 1.0000, valid ndcg@10 0.2500",
        "early stop after epoch 3: ndcg@10 has not improved for 1 epoch (best 0.3000 at epoch 2)"]


def test_a_resume_that_only_raises_the_epochs_of_a_stopped_fit_is_the_same_model(small_cfg):
    """A review: `train --resume --set train.epochs=50` on a run that stopped early (patience) refit and published
    an identical model again, in silence, each time. Configs that differ in train.epochs or train.patience only
    are the same published model where the factors are the same bit for bit; any other key is not."""
    from embedrec.publish import _same_but_stopping

    base = small_cfg.to_yaml()
    assert _same_but_stopping(base.encode(), small_cfg.updated({"train.epochs": 50, "train.patience": 9}).to_yaml())
    assert not _same_but_stopping(base.encode(), small_cfg.updated({"train.epochs": 50, "model.dim": 9}).to_yaml())
    assert not _same_but_stopping(base.encode(), small_cfg.updated({"index.kind": "hnsw"}).to_yaml())
    assert not _same_but_stopping(b"\xff: [", base)


def test_a_best_epoch_that_is_the_last_says_the_fit_may_not_have_converged(small_cfg, caplog, capsys, monkeypatch):
    """A first-hour review: `train.lr=0.001` ended at 'best epoch 100 of 100' with no hint that more epochs would
    help. Where the best epoch is the last the cap allowed (and a validation split chose it), one note says so,
    with the command that goes on; an early stop, or no validation split, says nothing."""
    import logging

    from embedrec.cli.state import _State
    from embedrec.cli.train import _report

    monkeypatch.setattr(_State, "config_path", None)  # as given on no command line (another test's may linger)
    monkeypatch.setattr(_State, "overrides", ())
    cfg = small_cfg.updated({"train.epochs": 4})

    def said(best, run, valid=0.25):
        caplog.clear()
        metrics = {"epochs_run": run, "selection": {"best_epoch": best, "epochs_run": run, "valid": valid,
                                                    "metric": "ndcg@10", "seconds": 1.0}, "splits": {}}
        with caplog.at_level(logging.INFO, logger="embedrec"):
            _report(metrics, cfg, "json")
        return [r.getMessage() for r in caplog.records if "may not have converged" in r.getMessage()]

    # the whole command, its run folder included (a first-hour pass: run as given, it resumed the default run)
    assert said(4, 4) == ["note: the best epoch was the last of train.epochs (4): the fit may not have converged; "
                          "more epochs may score better: go on with embedrec train --set train.epochs=8 --run "
                          f"{cfg.run.dir} --resume"]
    assert said(3, 4) == [] and said(2, 2) == [] and said(4, 4, float("nan")) == []


def test_an_interrupt_during_a_checkpoint_write_lands_after_it():
    """A first-hour review: Ctrl-C between a checkpoint's rename and the count of epochs it holds made the
    interrupted run name the epoch before the one on disk. Signals inside the write wait for it to end."""
    import os
    import signal

    from embedrec.training.loop import signals_deferred

    done = []
    # (Python's Ctrl-C handler, as an interactive start has it: a suite started in the background of a shell
    # without job control inherits SIGINT ignored, and Python then installs none)
    was = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("the write finished")  # not interrupted here
        assert done == ["the write finished"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, was)


def test_a_loss_torch_cannot_compile_runs_eagerly_with_one_warning(synth_ds, small_cfg, tmp_path, monkeypatch,
                                                                    caplog):
    """torch 2.11 on Python 3.12 (an H200 machine, session 38) raised InternalTorchDynamoError at the compiled
    explicit loss's first call, and train.compile=true failed the run. torch.compile's own failure now runs the
    batches eagerly, said once; any other error of the step still stops the run."""
    import logging

    import torch

    from embedrec.errors import TrainingError

    ds, _ = synth_ds
    cfg = small_cfg.updated({"train.epochs": 2, "train.batch_size": 4096, "train.optimizer": "adam"})
    eager = fit(ds, cfg.model, cfg.train, tmp_path / "eager")
    calls = []

    def broken(fn, **kw):
        def call(*a):
            calls.append(1)
            raise torch._dynamo.exc.InternalTorchDynamoError("IndexError: list index out of range")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    cfg = cfg.updated({"train.compile": True})
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        comp = fit(ds, cfg.model, cfg.train, tmp_path / "compiled")
    said = [r.getMessage() for r in caplog.records if "train.compile" in r.getMessage()]
    assert len(said) == 1 and "could not compile the loss (InternalTorchDynamoError: IndexError" in said[0], said
    assert len(calls) == 1
    assert [h["loss"] for h in comp.history] == [h["loss"] for h in eager.history]

    def other(fn, **kw):
        def call(*a):
            raise RuntimeError("CUDA out of memory")
        return call

    monkeypatch.setattr(torch, "compile", other)
    with pytest.raises((RuntimeError, TrainingError), match="out of memory"):
        fit(ds, cfg.model, cfg.train, tmp_path / "other")


def test_keep_checkpoints_auto_keeps_small_training_folders_and_clears_large_ones(synth_ds, small_cfg, tmp_path,
                                                                                   monkeypatch, caplog):
    """A scale review: the default kept 7.0 GB of checkpoints beside a 501 MB model and filled a shared disk.
    auto keeps them up to publish.KEEP_AUTO_MAX (for --resume) and clears them above it, saying so."""
    import logging
    import os

    from embedrec import publish
    from embedrec.api import train_run
    from embedrec.config import load_config
    from embedrec.training.folders import training_bytes

    sets = [f"data.prepared={small_cfg.data.prepared}", "model.dim=8", "train.epochs=2"]
    small = tmp_path / "small"
    train_run(load_config(None, [*sets, f"run.dir={small}"]))
    size = training_bytes(small)
    assert size > 0 and any(n.startswith("als-") or n == "checkpoint.pt" for n in os.listdir(small))
    assert size == sum(f.stat().st_size for p in small.iterdir() if not p.is_symlink() and p.is_dir()
                       and not p.name.startswith("artifacts-") for f in p.rglob("*") if f.is_file()) + \
        sum(p.stat().st_size for p in small.iterdir() if p.is_file() and p.name in ("checkpoint.pt", "metrics.jsonl"))
    monkeypatch.setattr(publish, "KEEP_AUTO_MAX", size // 2)  # the same run is now above the limit
    big = tmp_path / "big"
    with caplog.at_level(logging.INFO, logger="embedrec"):
        train_run(load_config(None, [*sets, f"run.dir={big}"]))
    assert training_bytes(big) == 0 and "cleared the training checkpoints" in caplog.text
    assert "train.keep_checkpoints=True» keeps them" not in caplog.text  # marks rendered
    kept = tmp_path / "kept"
    train_run(load_config(None, [*sets, f"run.dir={kept}", "train.keep_checkpoints=true"]))
    assert training_bytes(kept) > size // 2  # kept (its logs' timings may differ by a digit)
    # a user's own file in a training folder is not counted: it is never cleared (a review: a 2 GB file of the
    # user's made auto clear the checkpoints and report its size)
    dim = next(p for p in kept.iterdir() if p.is_dir() and p.name.startswith("als-"))
    (dim / "my-backup.npy").write_bytes(b"x" * size)
    assert training_bytes(kept) < size + size // 2  # counted, it would be twice (the logs' timings vary by bytes)
    # a resume of a run whose checkpoints were cleared: finished with this config, said so (session 67); with another
    # (more epochs), why there is nothing to continue (it said only 'no checkpoint')
    from embedrec.errors import ArtifactError

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        train_run(load_config(None, [*sets, f"run.dir={big}"]), resume=True)
    assert f"nothing to resume: {big} is finished" in caplog.text, caplog.text
    with pytest.raises(ArtifactError, match="cleared once its model is published where train.keep_checkpoints"):
        train_run(load_config(None, [*sets, f"run.dir={big}", "train.epochs=3"]), resume=True)


def test_a_fits_progress_names_its_candidate_or_dimension():
    """A scale review: without a bar every candidate's lines read 'train:', their losses jumping between fits."""
    from embedrec.training.fit import _fit_label

    assert _fit_label(None, False) == "train" and _fit_label("runs/mine", True) == "refit"
    assert _fit_label("runs/mine/als-reg-0.02", False) == "train als-reg-0.02"
    assert _fit_label("runs/mine/als-dim-256/als-reg-0.01-a0-0.1", False) == "train als-dim-256/als-reg-0.01-a0-0.1"
    assert _fit_label("runs/als-old/refit", True) == "refit"  # a user's run folder named als-...: not a candidate
    assert _fit_label("runs/als-dim-4/myrun", False) == "train"  # nor a folder of the user's above a run


def test_a_run_published_before_later_config_keys_is_still_finished(synth_ds, small_cfg, tmp_path, monkeypatch):
    """A review (session 58's range): data.id_case, data.timestamp_format and data.duplicates, new keys at their
    defaults, changed the config a resume compares with the one a run recorded, so every run published before
    them fitted its whole selection again on `train --resume` and published an identical model anew. A run whose
    config.yaml and finished key lack them is still finished, and still holds its model once a checkpoint is
    replayed."""
    import os

    from click.testing import CliRunner

    from embedrec.cli import main
    from embedrec.config import Config
    from embedrec.trained import LATER_DEFAULTS

    run = tmp_path / "run"
    sets = ["--set", f"data.prepared={small_cfg.data.prepared}", "--set", "model.dim=8", "--set", "train.epochs=2",
            "--run", str(run)]
    real = Config.to_dict
    added = [(s, k) for s, k in LATER_DEFAULTS if s == "data"]

    def before_the_keys(self):  # the config as a run published before them recorded it
        out = real(self)
        for section, key in added:
            out[section] = {k: v for k, v in out[section].items() if k != key}
        return out

    with monkeypatch.context() as mp:
        mp.setattr(Config, "to_dict", before_the_keys)
        assert CliRunner().invoke(main, ["train", "-q", *sets]).exit_code == 0
    before = os.readlink(run / "current")
    assert not any(f"{k}:" in (run / before / "config.yaml").read_text() for _, k in added)
    r = CliRunner().invoke(main, ["train", "--resume", *sets])
    assert r.exit_code == 0 and f"{run} is finished" in r.stderr, r.stderr
    checkpoint = next(run.rglob("checkpoint*"))  # one written since the publish: replayed, the model compared
    _written_again(checkpoint)
    r = CliRunner().invoke(main, ["train", "--resume", *sets])
    assert r.exit_code == 0 and f"{run} already holds this model" in r.stderr, r.stderr
    assert os.readlink(run / "current") == before
