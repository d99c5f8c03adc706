"""Beyond one process: 2 local ranks (torchrun, gloo) train and score what one process does; the device key.

The torchrun launches run the real CLI (`python -m torch.distributed.run --standalone --nproc-per-node 2 -m
embedrec ...`) on a planted synthetic set; the one-process side runs in this process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from embedrec import device as DV
from embedrec import dist_data as DD
from embedrec import distributed as D
from embedrec.config import load_config
from embedrec.errors import ConfigError

from .conftest import bar_ends, bars_drawn, repo_pythonpath

CUDA = torch.cuda.is_available()


def _launch_env(tmp: Path) -> dict:
    """The environment of a torchrun launch: one thread a rank, this checkout's embedrec, no rank variables of an
    outer launch, and TMPDIR in the test's folder (torchrun leaves a torchelastic_* folder in it per launch)."""
    (tmp / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": repo_pythonpath(),
           "TMPDIR": str(tmp / "tmp")}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _torchrun(args: list[str], cwd: Path, ranks: int = 2, script: str | None = None,
              ok: bool = True) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc-per-node 2 -m embedrec ARGS`` (or a script); ``ok``:
    whether it is to succeed."""
    env = _launch_env(cwd)
    target = [script] if script else ["-m", "embedrec"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *target, *args]
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert (p.returncode == 0) == ok, p.stderr[-3000:]
    return p


# two CLI commands in one launch (each launch imports torch in three processes: the slow part here)
TWO_COMMANDS = """
import json, sys
from embedrec.cli import main
for args in json.loads(sys.argv[1]):
    try:
        main(args, standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise
"""


@pytest.fixture(scope="module")
def prepared(synth_dir, tmp_path_factory):
    """The planted 300 x 200 x 20,000 set, ingested (random 70/10/20 split)."""
    import embedrec as er

    out = tmp_path_factory.mktemp("dist") / "prepared"
    cfg = load_config(None, [f"data.prepared={out}"])
    er.ingest(str(synth_dir[0]), cfg)
    return out


def _overrides(prepared: Path, run: Path, epochs: int) -> list[str]:
    return [f"data.prepared={prepared}", f"run.dir={run}", "model.dim=8", f"train.epochs={epochs}",
            "train.patience=100", "train.eval_users=120", "train.eval_k=[10]", "train.threads=1",
            "train.device=cpu"]


# the non-ALS trainers on ranks (replica.py): dense adam (explicit), sparse sgd (bpr), sampled softmax with
# sparse_adam, and the hogwild kernel
MSE = ("model.objective=explicit", "train.optimizer=adam", "train.batch_size=512")
BPR = ("model.loss=bpr", "train.optimizer=sgd", "train.lr=0.05", "train.negatives=2", "train.batch_size=512",
       "train.refit=false")
SOFTMAX = ("model.loss=softmax", "train.softmax_full_max=0", "train.optimizer=sparse_adam", "train.negatives=20",
           "train.batch_size=512", "train.refit=false")
HOGWILD = ("model.objective=explicit", "train.optimizer=hogwild", "train.lr=0.01", "train.refit=false",
           "model.implicit_terms=false")  # the plain model (auto: SVD++'s terms on hogwild)
SVDPP = (*HOGWILD[:-1], "model.implicit_terms=auto")  # hogwild's svdpp_sgd: y_j merged with the other tables


def _sets(overrides: list[str]) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


def _plain(prepared: Path, run: Path, epochs: int, resume: bool = False, extra: list[str] = ()) -> dict:
    from embedrec.api import train_run

    return train_run(load_config(None, _overrides(prepared, run, epochs) + list(extra)), resume=resume)


def _solve(run: Path) -> dict:
    """The users' solve a run's manifest records for a new user's fold-in (training_ratings.solve), but its new
    users' popularity prior (:func:`_prior`)."""
    solve = json.loads((run / "current" / "manifest.json").read_text())["training_ratings"]["solve"]
    window = solve.pop("trend_window", None) or {}  # (recent popularity's window: its figures flat, for approx)
    return {**{k: v for k, v in solve.items() if k != "newuser_prior"},
            **{f"trend_window.{k}": v for k, v in window.items()}}


def _prior(run: Path):
    """train.als_newuser_prior as the run serves it: chosen on valid, by one process on every validation user, by
    torchrun's rank 0 on its own."""
    return json.loads((run / "current" / "manifest.json").read_text())["training_ratings"]["solve"]["newuser_prior"]


def _arrays(run: Path) -> dict:
    names = ("user_factors", "movie_factors", "seen_indptr", "seen_indices", "popularity")
    return {n: np.load(run / "current" / f"{n}.npy") for n in names}


# ------------------------------------------------------------------------------------------------ units
def test_shards_are_contiguous_whole_batches_and_cover_every_row():
    for n, world, align in ((10, 3, 1), (1000, 2, 64), (5, 4, 1), (0, 2, 1), (130, 3, 64)):
        b = D.bounds(n, world, align)
        assert b[0] == 0 and b[-1] == n and (np.diff(b) >= 0).all()
        assert all(x % align == 0 for x in b[:-1])
        ids = np.arange(n)
        assert np.array_equal(np.bincount(D.owners(ids, b), minlength=world), np.diff(b))


def test_each_rank_reads_its_own_row_groups_and_together_every_row(tmp_path):
    """Every row group is read by exactly one rank (none reads the whole file), each row with its position."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    n = 100
    table = pa.table({"user_idx": rng.integers(0, 30, n).astype(np.int32),
                      "movie_idx": rng.integers(0, 20, n).astype(np.int32),
                      "rating": rng.random(n).astype(np.float32), "timestamp": np.arange(n, dtype=np.int64)})
    pq.write_table(table, tmp_path / "train.parquet", row_group_size=7, write_page_checksum=True)
    seen = []
    for rank in range(3):
        part, rows = DD.read_row_groups(tmp_path, "train", rank, 3, 30, 20)
        assert 0 < rows.size < n and np.array_equal(part.timestamp, rows)  # timestamp = position here
        assert np.array_equal(part.user, table["user_idx"].to_numpy()[rows])
        assert np.array_equal(part.movie, table["movie_idx"].to_numpy()[rows])
        seen.append(rows)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(n))
    part, rows = DD.read_row_groups(tmp_path, "train", 0, 1, 30, 20)  # one rank: the file in order
    routed = DD.route_to_users(D.Group(0, 1, torch.device("cpu")), part, rows, D.bounds(30, 1))
    assert np.array_equal(routed.user, table["user_idx"].to_numpy())
    from embedrec.errors import ArtifactError

    with pytest.raises(ArtifactError, match="user_idx [0-9]+ outside"):  # indices outside the tables never reach the kernel
        DD.read_row_groups(tmp_path, "train", 0, 1, 2, 20)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_each_rank_starts_from_its_rows_of_the_one_process_tables(world):
    from embedrec.dist_data import Shard
    from embedrec.model.mf import MatrixFactorization
    from embedrec.training.als_ranks import init_tables

    n_users, n_movies, dim = 1234, 517, 12
    torch.manual_seed(7)
    whole = MatrixFactorization(n_users, n_movies, dim, user_bias=False, movie_bias=False, init_std=0.05)
    shard = Shard(n_users, n_movies, D.bounds(n_users, world), D.bounds(n_movies, world), {}, {})
    for rank in range(world):
        t = init_tables(shard, rank, dim, 0.05, 7)
        (ulo, uhi), (mlo, mhi) = shard.u_range(rank), shard.m_range(rank)
        assert torch.equal(t.user.weight.data, whole.user.weight.data[ulo:uhi])
        assert torch.equal(t.movie.weight.data, whole.movie.weight.data[mlo:mhi])


def test_each_rank_takes_its_examples_of_the_one_process_batches():
    """Minibatch on ranks: the ratings of every rank, placed by _plan, are exactly the one-process batches."""
    from embedrec.training.minibatch import Minibatch

    n, bs, gen = 103, 10, torch.Generator().manual_seed(3)
    perm = torch.randperm(n, generator=gen)
    steps = -(-n // bs)
    owner = np.random.default_rng(0).integers(0, 3, n)
    got = [[] for _ in range(steps)]
    for rank in range(3):
        mb = Minibatch.__new__(Minibatch)
        mb.pos, mb.bs, mb.device = torch.from_numpy(np.flatnonzero(owner == rank)), bs, torch.device("cpu")
        order, offsets, within = mb._plan(perm, steps)
        for t in range(steps):
            local = order[offsets[t]:offsets[t + 1]]
            got[t] += list(zip(within[offsets[t]:offsets[t + 1]].tolist(), mb.pos[local].tolist()))
    for t in range(steps):
        assert sorted(got[t]) == list(enumerate(perm[t * bs:(t + 1) * bs].tolist()))


def test_a_nan_loss_names_its_step_on_every_device():
    from embedrec.training.loop import Diverged
    from embedrec.training.minibatch import _check_finite

    losses = torch.tensor([1.0, 2.0, float("nan"), float("inf")])
    _check_finite(losses, 0, 2)
    with pytest.raises(Diverged) as e:
        _check_finite(losses, 1, 4)
    assert e.value.step == 3 and np.isnan(e.value.value)


# ------------------------------------------------------------------------------------------------ 2 ranks
def test_two_ranks_re_solve_the_served_users_as_one_process_behind_an_approximate_index(prepared, tmp_path):
    """Behind an approximate index (no als_user_unobserved choice) and without a refit, the model served is the
    selection's, its users re-solved against its final movies: on the ranks as in one process (session 37)."""
    extra = ["index.exact_max=10", "train.refit=false", "train.als_dims=[]"]
    two = tmp_path / "two"
    p = _torchrun(["train", *_sets(_overrides(prepared, two, 3) + extra), "--format", "json", "-q"], tmp_path)
    m2 = json.loads(p.stdout)
    from embedrec.api import train_run

    m1 = train_run(load_config(None, _overrides(prepared, tmp_path / "one", 3) + extra))
    assert m2["selection"]["als_user_unobserved"] == m1["selection"]["als_user_unobserved"] == 1.0
    a1, a2 = _arrays(tmp_path / "one"), _arrays(two)
    for name in ("user_factors", "movie_factors"):
        np.testing.assert_allclose(a2[name], a1[name], atol=1e-4, rtol=0, err_msg=name)


def test_two_ranks_train_what_one_process_trains_and_resume_on_one(prepared, tmp_path):
    """torchrun with 2 ranks: the same metrics and (to 1e-4) the same factors as one process, selection by
    als_reg auto and refit included; its checkpoints then resume in one process for 2 more epochs, equal to
    an uninterrupted 5-epoch run (train.fetch_rows and the number of ranks change how, not what, it computes)."""
    two = tmp_path / "two"
    # fetch_rows: the rows each half-sweep fetches come in blocks of at most 2,000 ratings (4 per rank here)
    dims = ["train.als_dims=auto"]  # given beside model.dim: the search from it, on the ranks as in one process
    p = _torchrun(["train", *_sets(_overrides(prepared, two, 3) + ["train.fetch_rows=2000", *dims]), "--format",
                   "json", "-q"], tmp_path)
    m2 = json.loads(p.stdout)  # rank 0 alone printed
    m1 = _plain(prepared, tmp_path / "one", 3, extra=dims)
    assert m2["ranks"] == 2 and m2["selection"]["als_reg"] == m1["selection"]["als_reg"]
    assert m2["held_out"] == m1["held_out"] and m1["held_out"]["test"]["users"] > 0  # (a docs review: none on ranks)
    # the paired difference with most_popular that train's tie warning reads (a review: none on ranks)
    for split, paired in m1["vs_popular"].items():
        for key, v in paired.items():
            got = m2["vs_popular"][split][key]
            assert got["users"] == v["users"] and got["tie"] == v["tie"], (split, key)
            assert got["difference"] == pytest.approx(v["difference"], abs=1e-5)
            assert got["se"] == pytest.approx(v["se"], abs=1e-5)
    assert m2["selection"]["als_user_unobserved"] == m1["selection"]["als_user_unobserved"] == 0.5  # not 1 here
    assert m2["selection"]["als_recency"] == m1["selection"]["als_recency"] == 0.0  # a random split: 0 only
    # train.als_dims: auto ran the selection again at 16 on the ranks too, and made the same choice
    assert list(m2["selection"]["als_dims"]) == list(m1["selection"]["als_dims"])[:len(m2["selection"]["als_dims"])]
    assert "16" in m2["selection"]["als_dims"] and m2["dim"] == m1["dim"]
    for d, v in m1["selection"]["als_dims"].items():
        assert m2["selection"]["als_dims"][d] == pytest.approx(v, abs=1e-6), d
    for split in ("test",):
        for who in ("model", "most_popular"):
            for key, value in m1["splits"][split][who].items():
                assert m2["splits"][split][who][key] == pytest.approx(value, abs=1e-6), (split, who, key)
    a1, a2 = _arrays(tmp_path / "one"), _arrays(two)
    for name, value in a1.items():
        np.testing.assert_allclose(a2[name], value, atol=1e-4, rtol=0, err_msg=name)
    assert (two / "als-reg-0.01" / "checkpoint-dist.json").exists() and not (two / "checkpoint.pt").exists()
    # the new users' prior: chosen by rank 0 on its own validation users, a part of one process's, and served
    mine, theirs = m2["selection"]["newuser_prior_valid"], m1["selection"]["newuser_prior_valid"]
    assert 0 < max(mine["users"]) < max(theirs["users"]) and "alone" in mine and "alone" in theirs  # (each side
    # of the margin noise may put either run: newuser_prior.MARGIN)
    assert _prior(two) == m2["selection"]["als_newuser_prior"]
    assert not (two / "current" / "state_dict.pt").exists()  # as one process's als: the factors are all of it

    # --resume of the finished run on the ranks: its complete checkpoints rebuild the model `current` holds, which
    # is not published again (as one process)
    published = sorted(p.name for p in two.glob("artifacts-*"))
    p = _torchrun(["train", "--resume", *_sets(_overrides(prepared, two, 3) + ["train.fetch_rows=2000", *dims]),
                   "--format", "json"], tmp_path)
    assert sorted(p.name for p in two.glob("artifacts-*")) == published
    # stopped before the fits, as one process stops (a review: the ranks loaded the data and said every selection
    # line again first)
    assert f"nothing to resume: {two} is finished (its model {os.readlink(two / 'current')} was trained with this " \
           "config and these checkpoints)" in p.stderr and "chose als_reg" not in p.stderr, p.stderr[-2000:]
    assert json.loads(p.stdout) == json.loads((two / "current" / "metrics.json").read_text())  # as recorded

    resumed = _plain(prepared, two, 5, resume=True, extra=dims)  # one process continues the 2-rank checkpoints
    whole = _plain(prepared, tmp_path / "whole", 5, extra=dims)
    assert resumed["selection"]["epochs_run"] == 5 and resumed["ranks"] == 1
    assert resumed["splits"]["test"]["model"]["ndcg@10"] == pytest.approx(
        whole["splits"]["test"]["model"]["ndcg@10"], abs=1e-6)
    a5, w5 = _arrays(two), _arrays(tmp_path / "whole")
    for name in ("user_factors", "movie_factors"):
        np.testing.assert_allclose(a5[name], w5[name], atol=1e-4, rtol=0, err_msg=name)


def test_a_one_process_checkpoint_resumes_on_ranks(prepared, tmp_path):
    """The other direction: checkpoint.pt of a one-process fit, continued by the sharded trainer (here on one
    rank, which reads its rows of the tables as any rank count would), equals an uninterrupted run."""
    from embedrec.api import train_run
    from embedrec.data.dataset import load_dataset
    from embedrec.shard_als import train_distributed
    from embedrec.training.select import fit_selecting

    fixed = ["train.als_reg=0.01", "train.refit=false"]
    run = tmp_path / "run"
    fit_selecting(load_dataset(prepared), load_config(None, _overrides(prepared, run, 3) + fixed), run)
    assert (run / "checkpoint.pt").exists() and not (run / "checkpoint-dist.json").exists()
    m = train_distributed(load_config(None, _overrides(prepared, run, 5) + fixed), resume=True)
    whole = train_run(load_config(None, _overrides(prepared, tmp_path / "whole", 5) + fixed))
    assert m["epochs_run"] == 5 and m["ranks"] == 1
    assert m["splits"]["test"]["model"]["ndcg@10"] == pytest.approx(whole["splits"]["test"]["model"]["ndcg@10"],
                                                                     abs=1e-6)
    a, w = _arrays(run), _arrays(tmp_path / "whole")
    for name in ("user_factors", "movie_factors"):
        np.testing.assert_allclose(a[name], w[name], atol=1e-4, rtol=0, err_msg=name)
    # without a refit the fit saw train only: the sharded publish records that a0, not train+valid's
    assert _solve(run) == pytest.approx(_solve(tmp_path / "whole"), abs=1e-12)
    # the new users' prior: rank 0 chooses it on its users' valid rows (here, one rank: every user's), as one
    # process does, to the same table and record (both off here: the best table is within newuser_prior.MARGIN)
    assert _prior(run) == _prior(tmp_path / "whole")
    mine, theirs = m["selection"]["newuser_prior_valid"], whole["selection"]["newuser_prior_valid"]
    assert mine["users"] == theirs["users"] and mine.keys() == theirs.keys()
    np.testing.assert_allclose([v or 0 for v in mine["alone"]], [v or 0 for v in theirs["alone"]], atol=1e-3)


def test_a_sharded_resume_whose_first_checkpoint_is_lost_is_refused_in_one_line(prepared, tmp_path):
    """A review: the ranks check no checkpoint's config before their fits, so a resume with a lost first
    candidate's checkpoint (a kill while a fresh train cleared the old ones) is refused, not refitted (with
    another train.seed it refitted the first candidate and cleared the others); the message says why."""
    from embedrec.errors import ArtifactError
    from embedrec.shard_als import train_distributed

    run = tmp_path / "run"
    cfg = load_config(None, _overrides(prepared, run, 2) + ["train.refit=false", "train.als_dims=[]"])
    train_distributed(cfg)
    first = run / "als-reg-0.01"
    assert (first / "checkpoint-dist.json").exists() and (run / "als-reg-0.02" / "checkpoint-dist.json").exists()
    (first / "checkpoint-dist.json").unlink()
    with pytest.raises(ArtifactError, match="first candidate's checkpoint is missing from .*als-reg-0.01'"):
        train_distributed(cfg, resume=True)
    assert (run / "als-reg-0.02" / "checkpoint-dist.json").exists()  # nothing cleared


def test_two_ranks_write_the_one_process_topk_file(prepared, tmp_path):
    from embedrec.api import train_run

    run = tmp_path / "run"
    train_run(load_config(None, _overrides(prepared, run, 2) + ["train.als_reg=0.01", "train.refit=false"]))
    from embedrec.export import topk_all
    from embedrec.serve.recommender import Recommender

    rec = Recommender.open(run)
    topk_all(rec, tmp_path / "one.parquet", 10, batch=64)
    sets = _sets(_overrides(prepared, run, 2) + ["recommend.batch_size=64"])
    script = tmp_path / "two_commands.py"
    script.write_text(TWO_COMMANDS)
    whole = _sets(_overrides(prepared, run, 2))  # blocks of 4,096 users, fewer than 2: the users split evenly
    commands = [["export", *sets, "--topk-all", str(tmp_path / "two.parquet"), "-k", "10", "-q"],
                ["export", *sets, "--topk-all", str(tmp_path / "parts"), "-k", "10", "-q"],
                ["export", *whole, "--topk-all", str(tmp_path / "idle.parquet"), "-k", "10", "-q"],
                ["export", *whole, "--topk-all", str(tmp_path / "idle_parts"), "-k", "10", "-q"]]
    _torchrun([json.dumps(commands)], tmp_path, script=str(script))
    one = pq.read_table(tmp_path / "one.parquet")
    assert one.num_rows == 10 * rec.P.shape[0] and rec.P.shape[0] < 4096
    assert pq.read_table(tmp_path / "two.parquet").equals(one)
    # a known gap: with fewer batches than ranks the second rank scored nobody; now half the users each
    assert pq.read_table(tmp_path / "idle.parquet").equals(one)
    halves = [pq.read_table(tmp_path / "idle_parts" / f"part-0000{r}.parquet").num_rows for r in (0, 1)]
    assert halves == [10 * -(-rec.P.shape[0] // 2), 10 * (rec.P.shape[0] // 2)], halves
    files = sorted(p.name for p in (tmp_path / "parts").glob("*.parquet"))
    assert files == ["part-00000.parquet", "part-00001.parquet"]
    import pyarrow.dataset as pads

    assert pads.dataset(tmp_path / "parts", format="parquet").to_table().equals(one)
    assert not list(tmp_path.glob(".two.parquet*")) and not list(tmp_path.glob(".parts*"))


def _run_metrics(run: Path) -> dict:
    return json.loads((run / "current" / "metrics.json").read_text())


def _with(prepared: Path, run: Path, epochs: int, extra, resume: bool = False) -> dict:
    from embedrec.api import train_run

    return train_run(load_config(None, _overrides(prepared, run, epochs) + list(extra)), resume=resume)


def test_minibatch_and_hogwild_on_two_ranks_match_one_process_and_resume_across_rank_counts(prepared, tmp_path):
    """replica.py under torchrun (2 ranks, gloo), each non-ALS trainer beside one process:
    - mse/adam (with the refit), bpr/sgd (sparse gradients) and sampled softmax/sparse_adam replay the
      one-process batches: the same metrics (1e-5) and factors (1e-5, float sums in another order);
    - hogwild (kernel per rank, tables merged each epoch; SVD++'s y_j too) is not the one-process model: test
      RMSE within 0.02;
    - checkpoints move between rank counts: a 1-process bpr run continued on 2 ranks, and a 2-rank one continued
      in 1 process, both equal the uninterrupted 5-epoch run (1e-5); a 2-rank hogwild run continues in 1 process."""
    trainers = {"mse": MSE, "bpr": BPR, "softmax": SOFTMAX, "hogwild": HOGWILD, "svdpp": SVDPP}
    one = {name: _with(prepared, tmp_path / f"{name}-one", 3, extra) for name, extra in trainers.items()}
    _with(prepared, tmp_path / "bpr-to-two", 3, BPR)
    commands = [["train", *_sets(_overrides(prepared, tmp_path / f"{name}-two", 3) + list(extra)), "-q"]
                for name, extra in trainers.items()]
    commands.append(["train", *_sets(_overrides(prepared, tmp_path / "bpr-to-two", 5) + list(BPR)), "--resume", "-q"])
    script = tmp_path / "commands.py"
    script.write_text(TWO_COMMANDS)
    _torchrun([json.dumps(commands)], tmp_path, script=str(script))
    for name in ("mse", "bpr", "softmax"):
        m1, m2 = one[name], _run_metrics(tmp_path / f"{name}-two")
        assert m2["ranks"] == 2 and m2["loss"] == m1["loss"] and m2["epochs_run"] == m1["epochs_run"]
        assert m2["held_out"] == m1["held_out"], name
        assert set(m2["vs_popular"]) == set(m1["vs_popular"]) and all(  # (a review: none on ranks)
            m2["vs_popular"][s][k]["difference"] == pytest.approx(v["difference"], abs=1e-4)
            for s, p in m1["vs_popular"].items() for k, v in p.items()), name
        for key, value in m1["splits"]["test"]["model"].items():
            assert m2["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-5), (name, key)
        a1, a2 = _arrays(tmp_path / f"{name}-one"), _arrays(tmp_path / f"{name}-two")
        for key, value in a1.items():
            np.testing.assert_allclose(a2[key], value, atol=1e-5, rtol=0, err_msg=f"{name} {key}")
    for name in ("hogwild", "svdpp"):
        h1, h2 = one[name]["splits"]["test"], _run_metrics(tmp_path / f"{name}-two")["splits"]["test"]
        assert h2["model"]["rmse"] == pytest.approx(h1["model"]["rmse"], abs=0.02), name
        assert h2["model"]["rmse"] < h2["global_mean"]["rmse"], name  # it learned
    h1 = one["hogwild"]["splits"]["test"]

    whole = _with(prepared, tmp_path / "bpr-whole", 5, BPR)
    back = _with(prepared, tmp_path / "bpr-two", 5, BPR, resume=True)  # 2-rank checkpoint, 1 process
    to_two = _run_metrics(tmp_path / "bpr-to-two")
    for m, run in ((back, "bpr-two"), (to_two, "bpr-to-two")):
        assert m["epochs_run"] == 5, run
        assert m["splits"]["test"]["model"]["ndcg@10"] == pytest.approx(whole["splits"]["test"]["model"]["ndcg@10"],
                                                                         abs=1e-5), run
        np.testing.assert_allclose(_arrays(tmp_path / run)["movie_factors"],
                                   _arrays(tmp_path / "bpr-whole")["movie_factors"], atol=1e-5, rtol=0, err_msg=run)
    assert to_two["ranks"] == 2 and len(to_two["splits"]) == 2
    h = _with(prepared, tmp_path / "hogwild-two", 4, HOGWILD, resume=True)
    assert h["epochs_run"] == 4 and h["splits"]["test"]["model"]["rmse"] == pytest.approx(h1["model"]["rmse"], abs=0.03)


def test_ranks_say_what_one_process_says_of_the_config(prepared, tmp_path):
    """A review: under torchrun, train said neither what train.optimizer auto chose nor that a train.lr beside it
    is hogwild's per-example step, nor warned of keys the trainer does not read; rank 0 says each once."""
    p = _torchrun(["train", *_sets(_overrides(prepared, tmp_path / "run", 2) + ["model.objective=explicit", "train.lr=0.001", "train.als_reg=0.5",
                                      "train.refit=false"])], tmp_path)
    err = p.stderr
    assert err.count("train.optimizer auto: hogwild, lr 0.001 per example") == 1, err[-3000:]
    assert err.count("train.lr=0.001 is hogwild's per-example step here") == 1, err[-3000:]
    assert err.count("train.als_reg is not used by the mse trainer") == 1, err[-3000:]


# train's commands on each rank with bars on, as on a terminal (cli.app.progress_enabled), -q apart
BARS_ON = TWO_COMMANDS.replace("from embedrec.cli import main\n", "from embedrec.cli import app, main, train\n"
                                "train.progress_enabled = lambda: not app._State.quiet\n")


def test_the_ranks_publish_shows_one_process_bars_on_rank_0_alone(prepared, tmp_path, monkeypatch):
    """A review: the torchrun publish took no progress=, so rank 0 wrote and hashed a large model's files without a
    bar where one process shows them. Both trainers on ranks (als sharded, adam replicated) now draw the publish's
    bars, each to its total, on rank 0 alone (every rank is given bars here): once per train."""
    script = tmp_path / "bars.py"
    script.write_text(BARS_ON)
    monkeypatch.setenv("TQDM_MININTERVAL", "0")  # every update drawn: the last frame is the count at the end
    monkeypatch.setenv("TQDM_MINITERS", "1")
    runs = [["train", *_sets(_overrides(prepared, tmp_path / "als", 1) + ["train.als_dims=[]"])],
            ["train", *_sets(_overrides(prepared, tmp_path / "adam", 1) + list(MSE) + ["train.refit=false"])]]
    err = _torchrun([json.dumps(runs)], tmp_path, script=str(script)).stderr
    drawn = bars_drawn(err)
    for desc in ("writing the model", "checksums"):
        ends = bar_ends(drawn.get(desc, []))
        assert len(ends) == 2 and all(n == total for n, total in ends), (desc, drawn.get(desc))


def test_explicit_on_ranks_refuses_a_dataset_without_ratings(tmp_path):
    """replica.py, like one process (test_train), refuses an explicit model on a dataset ingested without ratings
    (every row stored as rating 1) instead of fitting the constant and reporting RMSE 0.0."""
    import embedrec as er

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user_id,movie_id\n" + "".join(f"{u},{m}\n" for u in range(20) for m in range(u % 3, 15, 2)))
    ds, run = tmp_path / "pairs", tmp_path / "run"
    er.ingest(str(pairs), load_config(None, [f"data.prepared={ds}", "data.columns.rating=null",
                                             "data.columns.timestamp=null"]))
    p = _torchrun(["train", *_sets([f"data.prepared={ds}", f"run.dir={run}", "model.objective=explicit",
                                    "train.device=cpu"])], tmp_path, ok=False)
    assert f"error: config key 'model.objective': explicit needs ratings, and dataset '{ds}' has none" in p.stderr
    assert not run.exists()


# ------------------------------------------------------------------------------------------------ device
def test_torchrun_ranks_beyond_the_gpus_or_on_one_named_gpu_are_one_clear_error(monkeypatch):
    """Two ranks on one GPU were nccl's 'Duplicate GPU detected' as an internal error (an H200, session 38)."""
    import torch

    monkeypatch.setattr(DV, "_cuda_possible", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    for rank in (1, 0):  # rank 0 has a GPU, and refuses too (a review: it went on to join the group, and hung)
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        for name in ("auto", "cuda"):
            with pytest.raises(ConfigError, match=r"torchrun runs 2 ranks on this machine, where torch sees 1 GPU, "
                                                  r".*--nproc-per-node 1 or fewer.*train.device='?cpu") as e:
                DV.device_name(name)
            assert e.value.every_rank  # rank 0 alone says it (below)
    with pytest.raises(ConfigError, match="cuda:0 names one GPU for all 2 torchrun ranks"):
        DV.device_name("cuda:0")
    assert DV.device_name("cpu") == "cpu"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # one rank a machine: each takes its GPU
    assert DV.device_name("cuda") == "cuda:0"
    monkeypatch.delenv("LOCAL_WORLD_SIZE")  # another launcher: the rank beyond the GPUs alone knows, and says it
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match="torchrun runs 2 ranks on this machine") as e:
        DV.device_name("cuda")
    assert not getattr(e.value, "every_rank", False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert DV.device_name("cuda:0") == "cuda:0"


def test_an_error_that_every_rank_finds_is_said_by_rank_0_alone(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import embedrec as er
    from embedrec.cli import main

    def refuse(*a, **k):
        e = ConfigError("config key 'train.device': torchrun runs 2 ranks on this machine, where torch sees 1 GPU")
        e.every_rank = True
        raise e

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user_id,movie_id\n" + "".join(f"{u},{m}\n" for u in range(20) for m in range(u % 3, 15, 2)))
    er.ingest(str(pairs), load_config(None, [f"data.prepared={tmp_path / 'ds'}", "data.columns.rating=null",
                                             "data.columns.timestamp=null"]))
    monkeypatch.setattr(DV, "device_name", refuse)
    said = {}
    for second in (True, False):  # a node's ranks past its first say nothing; its first says it
        monkeypatch.setenv("LOCAL_RANK", "1" if second else "0")
        r = CliRunner().invoke(main, ["train", "--set", f"run.dir={tmp_path / 'run'}", "--set",
                                         f"data.prepared={tmp_path / 'ds'}", "--set", "train.device=cuda"])
        said[second] = (r.exit_code, r.stderr)
    assert said[True] == (2, ""), said
    assert said[False][0] == 2 and said[False][1].count("\n") == 1 and "where torch sees 1 GPU" in said[False][1], said


@pytest.mark.gpu
def test_device_cpu_is_explicit_and_cuda_without_a_gpu_is_one_clear_error(monkeypatch):
    assert DV.device_name("cpu") == "cpu"
    assert DV.device_name("auto") == ("cuda:0" if CUDA else "cpu")
    if not CUDA:
        with pytest.raises(ConfigError, match="train.device.*no GPU"):
            DV.device_name("cuda")
    with pytest.raises(ConfigError, match="train.device"):
        load_config(None, ["train.device=tpu"])


@pytest.mark.gpu
def test_als_on_cpu_explicitly_equals_auto_on_a_machine_without_a_gpu():
    from embedrec.model.mf import MatrixFactorization
    from embedrec.training.als import ALS

    rng = np.random.default_rng(0)
    key = np.unique(rng.integers(0, 50 * 40, 500))
    out = []
    for device in ("cpu", "auto"):
        cfg = load_config(None, ["train.als_reg=0.05", f"train.device={device}"]).train
        torch.manual_seed(0)
        m = MatrixFactorization(50, 40, 6, user_bias=False, movie_bias=False, init_std=0.3)
        als = ALS(m, cfg, key // 40, key % 40, threads=1, engine="torch")
        assert als.device.type == ("cuda" if CUDA and device == "auto" else "cpu")
        als.epoch()
        out.append(m.user.weight.detach().clone())
    torch.testing.assert_close(out[0], out[1], atol=1e-4, rtol=1e-4)


def test_hogwild_refuses_cuda_in_one_line_and_auto_runs_it_on_the_cpu(prepared):
    from embedrec.data.dataset import load_dataset
    from embedrec.training.fit import fit

    cfg = load_config(None, ["model.objective=explicit", "train.optimizer=hogwild", "train.device=cuda",
                             "train.epochs=1", "model.dim=4"])
    # with a GPU: hogwild has no GPU path, sgd has; without one that is said first (a review: the sgd advice then
    # failed as well)
    said = "hogwild is a C kernel for CPU threads.*train.optimizer=sgd" if CUDA else "cuda was asked for but torch"
    with pytest.raises(ConfigError, match=said) as e:
        fit(load_dataset(prepared), cfg.model, cfg.train)
    assert "\n" not in str(e.value)
    auto = load_config(None, ["model.objective=explicit", "train.optimizer=hogwild", "train.device=auto",
                              "train.epochs=1", "model.dim=4", "train.threads=1"])
    assert fit(load_dataset(prepared), auto.model, auto.train).epochs_run == 1


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (none on this machine)")
def test_cuda_trains_evaluates_and_scores_like_the_cpu(prepared, tmp_path):
    from embedrec.api import train_run
    from embedrec.evaluate_runs import evaluate_run
    from embedrec.export import topk_all
    from embedrec.serve.recommender import Recommender

    runs = {}
    for dev in ("cpu", "cuda"):
        cfg = load_config(None, _overrides(prepared, tmp_path / dev, 3)[:-1] + [f"train.device={dev}"])
        runs[dev] = train_run(cfg)
    for key, value in runs["cpu"]["splits"]["test"]["model"].items():
        assert runs["cuda"]["splits"]["test"]["model"][key] == pytest.approx(value, abs=0.01), key
    a, b = _arrays(tmp_path / "cpu"), _arrays(tmp_path / "cuda")
    np.testing.assert_allclose(b["movie_factors"], a["movie_factors"], atol=1e-3)
    e_cpu = evaluate_run(tmp_path / "cpu", None, "test", (10,), "cpu")
    e_gpu = evaluate_run(tmp_path / "cpu", None, "test", (10,), "cuda")
    assert e_gpu["splits"]["test"]["model"]["ndcg@10"] == pytest.approx(
        e_cpu["splits"]["test"]["model"]["ndcg@10"], abs=1e-4)
    rec = Recommender.open(tmp_path / "cpu")
    topk_all(rec, tmp_path / "cpu.parquet", 10, device="cpu")
    topk_all(rec, tmp_path / "gpu.parquet", 10, device="cuda")
    x, y = pq.read_table(tmp_path / "cpu.parquet"), pq.read_table(tmp_path / "gpu.parquet")
    same = np.mean(np.asarray(x["movie_id"]) == np.asarray(y["movie_id"]))
    assert same > 0.99  # ties among equal scores may order differently
    np.testing.assert_allclose(np.asarray(y["score"]), np.asarray(x["score"]), atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (none on this machine)")
@pytest.mark.parametrize("extra", [MSE, BPR, SOFTMAX], ids=["mse-adam", "bpr-sgd", "softmax-sparse_adam"])
def test_cuda_trains_the_minibatch_trainers_like_the_cpu(prepared, tmp_path, extra):
    """The same batches and negatives (drawn on the CPU) on both devices: the factors agree to 1e-3 and the test
    metrics to 1e-3 after 3 epochs (the GPU sums embedding gradients in another order)."""
    runs = {dev: _with(prepared, tmp_path / dev, 3, [*extra, f"train.device={dev}"]) for dev in ("cpu", "cuda")}
    for key, value in runs["cpu"]["splits"]["test"]["model"].items():
        assert runs["cuda"]["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-3), key
    a, b = _arrays(tmp_path / "cpu"), _arrays(tmp_path / "cuda")
    np.testing.assert_allclose(b["movie_factors"], a["movie_factors"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(b["user_factors"], a["user_factors"], atol=1e-3, rtol=0)


def test_two_ranks_choose_the_recency_one_process_chooses(synth_dir, tmp_path):
    """A per-user time split: als_recency auto's candidates (0, then 2 warm-started) and als_reg's, walked by the
    ranks' selection as by one process's: the same choice, folders, refit path and test metrics."""
    import embedrec as er

    prepared = tmp_path / "prepared"
    er.ingest(str(synth_dir[0]), load_config(None, [f"data.prepared={prepared}", "split.method=user_time"]))
    two = tmp_path / "two"
    p = _torchrun(["train", *_sets(_overrides(prepared, two, 3)), "--format", "json", "-q"], tmp_path)
    m2 = json.loads(p.stdout)
    m1 = _plain(prepared, tmp_path / "one", 3)
    assert m2["ranks"] == 2
    for key in ("als_reg", "als_recency", "als_user_unobserved", "valid"):
        assert m2["selection"][key] == pytest.approx(m1["selection"][key], abs=1e-6), key
    assert (two / "als-reg-0.01-recency-2" / "checkpoint-dist.json").exists()
    assert (tmp_path / "one" / "als-reg-0.01-recency-2" / "checkpoint.pt").exists()
    # the chosen candidate was warm-started: both refits replayed the selection's path (training.refit.refit_path)
    assert (two / "refit" / "path-0" / "metrics.jsonl").exists() and (tmp_path / "one" / "refit" / "path-0").is_dir()
    for key, value in m1["splits"]["test"]["model"].items():
        assert m2["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-6), key
    one_solve = _solve(tmp_path / "one")
    assert _solve(two) == pytest.approx(one_solve, abs=1e-12) and one_solve["recency"] == m1["selection"]["als_recency"]


@pytest.mark.parametrize("refit", ["true", "false"])  # without a refit, valid's pairs are seen but weigh 0
def test_two_ranks_record_the_users_solve_one_process_records(synth_dir, tmp_path, refit):
    """The ranks' run records its users' solve weights (solve_weights.npy: each rank's users', gathered by rank 0)
    equal to one process's, rating, recency and below-min_rating weights alike, so that a known user's explanation,
    its re-solve per request and update-users take it as they take one process's (each refused it before, saying
    to train again in one process)."""
    import embedrec as er

    prepared = tmp_path / "prepared"
    er.ingest(str(synth_dir[0]), load_config(None, [f"data.prepared={prepared}", "split.method=user_time",
                                                    "data.min_rating=2"]))
    extra = ["train.als_recency=2", "train.als_rating_weight=1", "train.als_reg=0.05",  # no selection: one fit
             f"train.refit={refit}"]
    one, two = tmp_path / "one", tmp_path / "two"
    _torchrun(["train", *_sets(_overrides(prepared, two, 2) + extra), "-q"], tmp_path)
    _plain(prepared, one, 2, extra=extra)
    w1, w2 = (np.load(r / "current" / "solve_weights.npy") for r in (one, two))
    assert (w1 == 0).any() and len(np.unique(w1)) > 100  # pairs rated below 2, and weights that differ
    np.testing.assert_array_equal(w2, w1)
    with er.open(one) as m1, er.open(two) as m2:
        e = m1.engine
        user = e.users.raw(5)
        new = [e.movies.raw(r) for r in np.setdiff1d(np.arange(e.Q.shape[0]), e.seen(5))[:3]]
        x1, x2 = m1.explain(user, new[0]), m2.explain(user, new[0])
        assert x2.score == pytest.approx(x1.score, abs=1e-4) and x2.n_rated == x1.n_rated > 0
        assert x2.contributions.sum() + x2.others + x2.bias + x2.prior + x2.remainder == pytest.approx(x2.score)
        r1, r2 = m1.recommend_new(liked=new[:2], user=user, k=5), m2.recommend_new(liked=new[:2], user=user, k=5)
        assert list(r2.movie_ids[0]) == list(r1.movie_ids[0])
    since = tmp_path / "since.csv"
    since.write_text("user_id,movie_id,rating\n" + "".join(f"{user},{mv},5\n" for mv in new))
    for run in (one, two):
        er.update_users(run, since)
    f1, f2 = (np.load(r / "current" / "user_factors.npy") for r in (one, two))
    np.testing.assert_allclose(f2, f1, atol=1e-4, rtol=0)


def test_a_rank_that_ended_normally_waits_then_leaves_the_group(monkeypatch):
    """A rank that exited still in the process group could abort in teardown under load ("terminate called
    without an active exception", SIGABRT; 2 of 20 two-rank script runs). At exit, a rank whose program ended
    normally now waits for the others (a counter in torchrun's store, FINISH_WAIT_S at most) and then leaves
    the group, ignoring SIGTERM from then on; without them it exits as before; after an uncaught exception it
    does nothing, unless every rank raised it together."""
    import signal

    import torch.distributed as dist

    counts, calls = {}, []

    class Store:  # torchrun's key-value store, shared by the ranks: ``others`` of them have arrived already
        others = 1

        def __init__(self, host, port, is_master, timeout):
            calls.append(("store", host, port, is_master, timeout.total_seconds()))

        def add(self, key, n):
            counts[key] = counts.get(key, Store.others) + n
            return counts[key]

    monkeypatch.setattr(dist, "TCPStore", Store)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 0)  # rank 0: it waits for the others to see the count too
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(signal, "signal", lambda sig, how: calls.append(("signal", sig, how)))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.delattr(sys, "last_value", raising=False)
    D._finish()
    met = [("store", "127.0.0.1", 29500, False, D.FINISH_WAIT_S), ("signal", signal.SIGTERM, signal.SIG_IGN),
           "destroy"]
    assert calls == met

    calls.clear(), counts.clear()
    Store.others = 0  # the other rank never comes (it left with sys.exit(1), or is still working)
    monkeypatch.setattr(D, "FINISH_WAIT_S", 0.2)
    D._finish()
    assert calls == [("store", "127.0.0.1", 29500, False, 0.2)]  # waited, then left without destroying

    calls.clear()
    monkeypatch.setattr(sys, "last_value", RuntimeError("a rank failed"), raising=False)
    D._finish()
    assert calls == []

    # an uncaught error every rank raised together (agree's; a Python train_run refused on every rank): the ranks
    # still meet and leave (the suite under load: left in the group, one aborted in teardown or was stopped by
    # torchrun before it said its error), the error itself, or one raised from it or while handling it
    monkeypatch.setattr(D, "FINISH_WAIT_S", 30)
    Store.others = 1
    marked = D.all_ranks(ConfigError("rank 0 was refused"))
    cause, context = RuntimeError("raised from it"), RuntimeError("raised while handling it (from None)")
    cause.__cause__, context.__context__, context.__suppress_context__ = marked, marked, True
    for last in (marked, cause, context):
        calls.clear(), counts.clear()
        monkeypatch.setattr(sys, "last_value", last, raising=False)
        D._finish()
        assert calls == met, last
    monkeypatch.delattr(sys, "last_value", raising=False)
    monkeypatch.setattr(dist, "TCPStore", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("store gone")))
    D._finish()  # best effort: no store is not an error at exit


def test_an_error_that_the_ranks_agree_on_is_marked_as_raised_on_all_of_them(monkeypatch):
    """Group.agree's errors, the failing rank's own and the others' relay of it, are marked all_ranks (so _finish
    meets the others after one left uncaught; read_manifest's shared answer too, below), and not every_rank (the
    command line's "said once a node": the rank that failed says its own line)."""
    import torch.distributed as dist

    from embedrec.errors import ArtifactError

    g = D.Group(0, 1, torch.device("cpu"))
    g.agree(None)  # nobody failed: nothing raised
    with pytest.raises(ConfigError, match="here") as own:
        g.agree(ConfigError("here"))
    # rank 1 of 2, rank 0 failed: the lowest failing rank is found in the one reduce, and its line is broadcast
    other = D.Group(1, 2, torch.device("cpu"))
    monkeypatch.setattr(D.Group, "max_", lambda self, t: torch.zeros_like(t))
    sent = []

    def broadcast(box, src):
        sent.append(src)
        box[0] = D._relayed(ConfigError("config key «'train.x'|train.x» is wrong"))

    monkeypatch.setattr(dist, "broadcast_object_list", broadcast)
    with pytest.raises(ArtifactError) as relayed:
        other.agree(None)
    assert sent == [0] and relayed.value.exit_code == 2  # rank 0's own exit code (a config error's)
    assert str(relayed.value) == "rank 0 failed: config key train.x is wrong"  # each side's own terms
    assert relayed.value.cli_message() == "rank 0 failed: config key 'train.x' is wrong"
    for e in (own, relayed):
        assert D._raised_on_all_ranks(e.value) and not getattr(e.value, "every_rank", False)
    assert not D._raised_on_all_ranks(ConfigError("this rank alone")) and not D._raised_on_all_ranks(None)
    assert D._relayed(KeyError("a bug"))[0].startswith("KeyError: 'a bug'; its traceback is on rank ")  # its type named
    assert len(D._relayed(ValueError("x" * 5000))[0]) <= 1000

    class Odd(Exception):
        exit_code = "two"

        def __str__(self):
            raise RuntimeError("no words")

    assert D._relayed(Odd()) == ("Odd", 1)  # never raises: the others wait in the broadcast for it


def test_ctrl_c_while_a_finished_rank_waits_at_exit_exits_130(tmp_path):
    """Ctrl-C during a finished rank's wait at exit (distributed._finish, run by the command line's exit,
    cli._leave): one line and exit 130, not "Exception ignored in atexit callback" with a traceback and exit 0.
    The library only logs and sets a flag; the command line exits. Run in a child process (it leaves with
    os._exit)."""
    code = """
import atexit, logging, os
import torch.distributed as dist
import embedrec.distributed as D
from embedrec.cli import _leave

class Store:
    def __init__(self, *a, **k):
        pass
    def add(self, key, n):
        raise KeyboardInterrupt

logging.getLogger("embedrec").addHandler(logging.StreamHandler())  # as the command line's (the library has none)
dist.TCPStore, dist.is_initialized, dist.get_world_size = Store, lambda: True, lambda: 2
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29500")
atexit.register(D._finish)
print("rows")
_leave(0, exit_handlers=True)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 130, p.stderr
    assert p.stdout == "rows\n" and "Traceback" not in p.stderr and "Exception ignored" not in p.stderr
    assert p.stderr.strip().splitlines() == ["interrupted while this rank waited for the others to finish; its "
                                             "work is saved"]


RANK_SETS = """
import os, sys
from embedrec.cli import main
args = sys.argv[1:] + (["--set", "train.als_reg=0.05"] if os.environ["RANK"] == "1" else [])
main(args)
"""


def test_ranks_given_different_configs_are_refused_in_one_line(prepared, tmp_path):
    """A review: rank 1 started with train.als_reg=0.05 (another ./embedrec.yaml on its node) hung in a collective
    until the 30-minute timeout; with another model.dim gloo crashed ('internal error'). The ranks now compare
    their resolved configs first: the rank that differs names the key, and nothing is written."""
    script = tmp_path / "rank_sets.py"
    script.write_text(RANK_SETS)
    run = tmp_path / "run"
    p = _torchrun(["train", *_sets(_overrides(prepared, run, 2)), "-q"], tmp_path, script=str(script), ok=False)
    assert ("error: rank 1 was given another config than rank 0: train.als_reg 0.05 on rank 1, 'auto' on rank 0; give "
            "every rank the same -c and --set") in p.stderr, p.stderr[-2000:]
    assert "internal error" not in p.stderr and not any(run.glob("*/checkpoint*"))


TRAIN_RUN = """
import sys
from embedrec.api import train_run
from embedrec.config import load_config
train_run(load_config(None, sys.argv[1:]))
"""


def test_a_python_train_run_on_ranks_is_refused_while_another_writer_holds_the_run(prepared, tmp_path):
    """An architecture review: api.train_run under torchrun took no writer lock (only the CLI did): it trained
    into a run another train held, rank 0 was refused only at its publish and rank 1 died of a gloo error. The
    lock is train_run's own now: rank 0 finds it taken, every rank is refused with a typed error, nothing is
    written; and every rank exits 1 (they meet at exit and leave the group: distributed._finish)."""
    import fcntl
    import re

    script = tmp_path / "train_run.py"
    script.write_text(TRAIN_RUN)
    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)  # another writer, alive
    os.write(fd, b"4242 embedrec train\n")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        p = _torchrun(_overrides(prepared, run, 2), tmp_path, script=str(script), ok=False)
    finally:
        os.close(fd)
    assert f"Busy: another embedrec train is writing '{run}' (pid 4242)" in p.stderr, p.stderr[-3000:]
    assert "ArtifactError: rank 0 failed: another embedrec train is writing" in p.stderr, p.stderr[-3000:]
    assert "gloo" not in p.stderr, p.stderr[-3000:]
    assert [q.name for q in run.iterdir()] == [".lock"]
    # and each rank exited 1, none by a signal (the suite under load, and 14 of 25 runs alone: the ranks left the
    # uncaught error still in the group, one aborted in teardown, "terminate called without an active exception",
    # or torchrun stopped it with SIGTERM, before it had said its line too, once the other exited)
    assert "terminate called" not in p.stderr, p.stderr[-3000:]
    codes = re.findall(r"^\s+exitcode\s+:\s+(-?\d+)", p.stderr, re.M)  # torchrun's report, a rank a line
    assert sorted(codes) == ["1", "1"], p.stderr[-3000:]


CHOICE_FAILS = """
import sys
from embedrec.api import train_run
from embedrec.config import load_config
from embedrec.training import newuser_prior

def fail(*a, **k):
    raise ValueError("the choice failed here")

newuser_prior.choose = fail  # only rank 0 calls it
train_run(load_config(None, sys.argv[1:]))
"""


def test_rank_0_failing_in_the_new_users_prior_choice_ends_every_rank(prepared, tmp_path):
    """A code review: rank 0 alone chooses train.als_newuser_prior (shard_als.choose_newuser_prior_shard); had it
    raised there, the other ranks would have waited in the table's sum until torchrun's timeout. Its error is now
    shared (Group.agree): rank 0 says its own, the other ranks relay it ("rank 0 failed: ..."), each exits 1."""
    import re

    script = tmp_path / "choice_fails.py"
    script.write_text(CHOICE_FAILS)
    p = _torchrun(_overrides(prepared, tmp_path / "run", 2), tmp_path, script=str(script), ok=False)
    assert "rank 0 failed: ValueError: the choice failed here" in p.stderr, p.stderr[-3000:]
    assert sorted(re.findall(r"^\s+exitcode\s+:\s+(-?\d+)", p.stderr, re.M)) == ["1", "1"], p.stderr[-3000:]


def test_ranks_keep_the_movies_rated_below_min_rating_out_of_the_lists(synth_dir, tmp_path):
    """The movies a user rated below data.min_rating are seen (the dataset's rated_below.parquet): the run that
    2 ranks write (shard_als, then the bpr replica) excludes them as one process's does."""
    import embedrec as er

    ds = tmp_path / "ds"
    er.ingest(str(synth_dir[0]), load_config(None, [f"data.prepared={ds}", "data.min_rating=3"]))
    assert (ds / "current" / "rated_below.parquet").exists()
    script = tmp_path / "commands.py"
    script.write_text(TWO_COMMANDS)  # both trainers in one launch (test time)
    _torchrun([json.dumps([["train", *_sets(_overrides(ds, tmp_path / f"two{len(extra)}", 1) + list(extra)), "-q"]
                           for extra in ((), BPR)])], tmp_path, script=str(script))
    for extra in ((), BPR):
        two, one = tmp_path / f"two{len(extra)}", tmp_path / f"one{len(extra)}"
        er_cfg = load_config(None, _overrides(ds, one, 1) + list(extra))
        from embedrec.api import train_run

        train_run(er_cfg)
        a1, a2 = _arrays(one), _arrays(two)
        for name in ("seen_indptr", "seen_indices"):
            np.testing.assert_array_equal(a2[name], a1[name], err_msg=name)
        below = pd.read_parquet(ds / "current" / "rated_below.parquet")
        ptr, idx = a2["seen_indptr"], a2["seen_indices"]
        assert all(m in idx[ptr[u]:ptr[u + 1]] for u, m in zip(below["user_idx"][:200], below["movie_idx"][:200]))
        # and the ranks score what one process scores (a review: the ranks' validation and test metrics still
        # ranked those movies, so their numbers and chosen epoch differed from one process's and evaluate's), each
        # split leaving out only those rated in the parts before it (a later review: every one, the held-out
        # period's too, told evaluation which movies the user would rate low there)
        m1, m2 = _run_metrics(one)["splits"], _run_metrics(two)["splits"]
        for split in m1:
            for k, v in m1[split]["model"].items():
                assert m2[split]["model"][k] == pytest.approx(v, abs=2e-4), (extra, split, k)


def test_the_ranks_refuse_dataset_files_that_do_not_match_the_manifest(prepared, tmp_path):
    """A review: no rank reads a split whole, so no checksum was checked; a dataset with its train and test
    files swapped trained on the test split under torchrun, and published. Rank 0 now checks each file the ranks
    read against the manifest, and every rank raises its answer."""
    import shutil
    from types import SimpleNamespace

    from embedrec.errors import ArtifactError

    gen = Path(os.path.realpath(Path(prepared) / "current"))
    bad = tmp_path / gen.name
    shutil.copytree(gen, bad)
    (bad / "train.parquet").rename(bad / "t")
    (bad / "test.parquet").rename(bad / "train.parquet")
    (bad / "t").rename(bad / "test.parquet")
    lead = SimpleNamespace(leader=True, share=lambda x: x)
    assert DD.read_manifest(gen, lead, ("train", "valid", "test"))["counts"]
    with pytest.raises(ArtifactError, match=r"train.parquet. is damaged \(.* bytes, its manifest says"):
        DD.read_manifest(bad, lead, ("train", "valid", "test"))
    DD.read_manifest(bad)  # without a group: the manifest's own checks only, as before
    other = SimpleNamespace(leader=False, share=lambda x: "rank 0 says no")  # a rank that is told
    with pytest.raises(ArtifactError, match="rank 0 says no") as told:
        DD.read_manifest(gen, other, ("train",))
    assert told.value.all_ranks  # raised on every rank together: met at exit if a script leaves it uncaught


def test_ranks_report_and_serve_users_without_training_ratings_as_one_process(tmp_path):
    """A review: on a split.cold_start split, 2 ranks reported test metrics of factors other than the ones they
    published (the untrained users zeroed only after), and with train.refit=false served users whose ratings
    are all in valid from their untrained vectors, where one process answers them as unknown."""
    import embedrec as er

    rng = np.random.default_rng(6)
    rows = [(u, m, int(rng.integers(1, 6)), int(rng.integers(1000, 2000))) for u in range(1, 41)
            for m in range(1, 31) if rng.random() < 0.5]
    rows += [(u, m, 4, 10 ** 6 + m) for u in (50, 51) for m in (1, 2, 3)]  # after the time cut: test only
    pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"]).to_csv(tmp_path / "r.csv", index=False)
    ds = tmp_path / "cold"
    cfg = load_config(None, [f"data.prepared={ds}", "split.cold_start=true", "split.method=global_time"])
    er.ingest(str(tmp_path / "r.csv"), cfg)
    over = _overrides(ds, tmp_path / "two", 2) + ["train.refit=false", "train.eval_users=0"]
    m2 = json.loads(_torchrun(["train", *_sets(over), "--format", "json", "-q"], tmp_path).stdout)
    from embedrec.api import train_run

    m1 = train_run(load_config(None, [o.replace(str(tmp_path / "two"), str(tmp_path / "one")) for o in over]))
    for key, value in m1["splits"]["test"]["model"].items():
        assert m2["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-5), key
    again = er.open(tmp_path / "two").evaluate("test", ks=[10])["splits"]["test"]["model"]
    assert again["ndcg@10"] == pytest.approx(m2["splits"]["test"]["model"]["ndcg@10"], abs=1e-6)
    data = er.open(tmp_path / "one")
    valid_only = set(data.user_ids.tolist()) - set(
        np.asarray(data.user_ids)[pd.read_parquet(Path(os.path.realpath(ds / "current")) / "train.parquet")
                                  ["user_idx"].unique()].tolist())
    assert valid_only  # the split leaves users without a training rating (else this tests nothing)
    for run in ("one", "two"):
        m = er.open(tmp_path / run)
        got = m.recommend(sorted(valid_only), k=2, missing="skip")
        assert len(got.user_ids) == 0  # answered as unknown ids on both paths


def test_a_fixed_user_unobserved_is_scored_after_the_re_solve_on_ranks(prepared, tmp_path):
    """A review: with train.als_user_unobserved fixed (2), one process scores valid after the users' re-solve and
    the ranks reported the score from before it (then printed as the re-solved one, and able to choose another
    candidate). The ranks' trainer (here on one rank) now reports what one process reports."""
    from embedrec.api import train_run
    from embedrec.shard_als import train_distributed

    fixed = ["train.als_user_unobserved=2", "train.refit=false"]
    ranks = train_distributed(load_config(None, _overrides(prepared, tmp_path / "ranks", 3) + fixed))
    one = train_run(load_config(None, _overrides(prepared, tmp_path / "one", 3) + fixed))
    for key in ("valid", "als_reg", "als_unobserved", "best_epoch"):
        assert ranks["selection"][key] == pytest.approx(one["selection"][key], abs=1e-6), key


def _tastes_csv(path: Path) -> Path:
    """Six planted tastes (test_update's): 300 users, each 12 movies of its taste (user mod 6, of movie mod 6) and 3
    of any, over 120 movies: a model of 2 dimensions cannot tell them apart, the low-pass block can."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(300):
        own = rng.choice(np.arange(user % 6, 120, 6), 12, replace=False)
        other = rng.choice(np.setdiff1d(np.arange(120), own), 3, replace=False)
        rows += [(user + 1, int(m) + 1, 5, int(rng.integers(0, 10**6))) for m in (*own, *other)]
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(path, index=False)
    return path


def test_two_ranks_choose_and_serve_the_low_pass_block_one_process_does(tmp_path):
    """The low-pass block on torchrun's ranks (training.lowpass with a Part: each rank its users' rows, the SVD's
    sums over every rank): auto chooses the weight one process chooses with the same valid scores, and a weight set
    (with recent popularity after it, no refit) is served alike; the published factors (block included), its a and
    its record equal one process's, and so do the test metrics. (A block of 8 columns over a model of 2
    dimensions: valid chooses it on these planted tastes.)"""
    import embedrec as er

    ds = tmp_path / "ds"
    base = [f"data.prepared={ds}", "model.dim=2", "train.als_lowpass_k=8", "train.epochs=4", "train.threads=1",
            "train.als_dims=[]", "train.device=cpu", "train.eval_k=[10]"]
    er.ingest(str(_tastes_csv(tmp_path / "r.csv")), load_config(None, base + ["split.valid=0.1", "split.test=0.1"]))
    runs = {"auto": ["train.als_trend=0"],
            "set": ["train.als_lowpass=0.5", "train.als_trend=2", "train.refit=false"]}
    script = tmp_path / "two.py"
    script.write_text(TWO_COMMANDS)
    _torchrun([json.dumps([["train", *_sets(_overrides(ds, tmp_path / f"two-{name}", 4) + base[1:] + extra), "-q"]
                           for name, extra in runs.items()])], tmp_path, script=str(script))
    for name, extra in runs.items():
        one = _plain(ds, tmp_path / f"one-{name}", 4, extra=base[1:] + extra)  # (_overrides' then these)
        two = _run_metrics(tmp_path / f"two-{name}")
        assert two["ranks"] == 2 and one["selection"]["als_lowpass"] == two["selection"]["als_lowpass"] > 0
        if name == "auto":
            mine, theirs = two["selection"]["lowpass_valid"], one["selection"]["lowpass_valid"]
            assert mine["k"] == theirs["k"] == 8 and mine["c"] == theirs["c"] > 0
            for c, v in theirs["valid"].items():
                assert mine["valid"][c] == pytest.approx(v, abs=1e-6), c
            assert mine["spread"] == pytest.approx(theirs["spread"], rel=1e-5)
        for key, value in one["splits"]["test"]["model"].items():
            assert two["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-5), (name, key)
        for n in ("user_factors", "movie_factors", "lowpass_a"):
            a, b = (np.load(tmp_path / f"{w}-{name}" / "current" / f"{n}.npy") for w in ("one", "two"))
            np.testing.assert_allclose(b, a, atol=1e-4, rtol=0, err_msg=f"{name} {n}")
        rec1, rec2 = (_solve(tmp_path / f"{w}-{name}")["lowpass"] for w in ("one", "two"))
        assert rec1["k"] == rec2["k"] == 8 and rec1["d"] == rec2["d"] == 2 and rec1["c"] == rec2["c"]
        assert rec2["weight"] == pytest.approx(rec1["weight"], rel=1e-5)


def test_one_rank_chooses_and_says_what_one_process_does(prepared, tmp_path, caplog):
    """als_user_unobserved, als_lowpass and als_trend are chosen by one algorithm each (select.choose_user_unobserved_on,
    choose_lowpass_on, choose_trend_on), which each path gives its own operations (select.OneProcess, shard_als.OnRanks): the ranks'
    trainer (here on one rank, in this process: seconds, not a torchrun launch) makes one process's choices with
    its lines, word for word, the users' re-solve on a copy before the trend's choice (a refit follows) and the
    activity's paired test included. Two ranks: test_two_ranks_train_what_one_process_trains_and_resume_on_one,
    test_ranks_add_the_recent_popularity_one_process_adds."""
    import re

    from embedrec.api import train_run
    from embedrec.shard_als import train_distributed

    keys = ("als_user_unobserved", "als_trend", "als_trend_window", "als_trend_activity", "als_lowpass", "valid")
    said = {}
    for who, train in (("ranks", train_distributed), ("one", train_run)):
        caplog.clear()
        with caplog.at_level("INFO", logger="embedrec"):
            m = train(load_config(None, _overrides(prepared, tmp_path / who, 3) + ["train.als_dims=[]"]))
        lines = [re.sub(r"its SVD [0-9.]+s", "its SVD -", r.getMessage()) for r in caplog.records  # (its seconds)
                 if r.getMessage().startswith(("als_user_unobserved auto", "als_trend auto", "als_lowpass auto"))]
        said[who] = lines, {k: m["selection"][k] for k in keys}
    lines, chosen = said["one"]
    assert chosen["als_user_unobserved"] == 0.5 and chosen["als_trend"] > 0, chosen  # each a choice here
    assert any(s.startswith("als_user_unobserved auto") for s in lines) and any("activity" in s for s in lines)
    assert sum(s.startswith("als_lowpass auto") for s in lines) == 2  # (the block's SVD, then its choice: made on
    # the ranks too since session 62, where it said 'not built on torchrun's ranks yet')
    assert said["ranks"] == said["one"]


def test_the_sharded_als_workflow_refuses_another_loss_with_a_typed_error():
    """An architecture review: a plain ValueError; the library raises its own kinds (the CLI's one line)."""
    from embedrec.config import load_config
    from embedrec.errors import ConfigError
    from embedrec.shard_als import train_distributed

    with pytest.raises(ConfigError, match="fits model.loss als, not bpr"):
        train_distributed(load_config(None, ["model.loss=bpr", "model.objective=implicit"]))


ORPHAN = """
import os, sys, time
from embedrec import distributed as D
g = D.group()
with open(os.path.join(sys.argv[1], f"rank{g.rank}.pid"), "w") as fh:
    fh.write(str(os.getpid()))
time.sleep(120)
"""


def test_ranks_end_when_their_launcher_is_killed(tmp_path):
    """A red team: after kill -9 of torchrun, both ranks lived on as orphans (parent pid 1) blocked in a
    collective for its 30-minute timeout. A rank asks Linux for SIGTERM when its launcher dies."""
    import signal
    import time

    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    env = _launch_env(tmp_path)
    launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                                 str(script), str(tmp_path)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    pids_at = [tmp_path / "rank0.pid", tmp_path / "rank1.pid"]
    deadline = time.time() + 120
    while not all(p.exists() and p.read_text() for p in pids_at) and time.time() < deadline:
        time.sleep(0.2)
    pids = [int(p.read_text()) for p in pids_at]
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.time() + 30
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    left = [p for p in pids if alive(p)]
    for p in left:  # never leave them behind, whatever the outcome
        os.kill(p, signal.SIGKILL)
    assert not left, f"ranks {left} outlived their launcher"


def test_a_rank_whose_launcher_is_pid_1_keeps_running():
    """A review: 'parent pid 1' was taken for 'the launcher died', so under a torchrun that is itself pid 1 (a
    container's entrypoint, a Kubeflow PyTorchJob) every rank sent itself SIGTERM at start. Only a parent that
    changed across the request means that."""
    code = ("import os\nos.getppid = lambda: 1\nfrom embedrec import distributed as D\n"
            "print(D.die_with_launcher())\n")
    env = {**os.environ, "TORCHELASTIC_RUN_ID": "t", "PYTHONPATH": repo_pythonpath()}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == ("True" if sys.platform.startswith("linux") else "False"), \
        (p.returncode, p.stderr)
    env.pop("TORCHELASTIC_RUN_ID")  # not under torchrun: nothing asked
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "False"


def test_a_rank_whose_launcher_is_already_gone_is_interrupted_not_killed_by_itself():
    """An architecture review: die_with_launcher sent its own process SIGTERM when the launcher was gone by the time
    it asked (a library call ending its process). It raises Interrupted (terminated) now, which the CLI says in
    one line with exit 143 and a Python caller can catch."""
    code = ("import itertools, os\nparents = itertools.count(4000)\nos.getppid = lambda: next(parents)\n"
            "from embedrec import distributed as D\nfrom embedrec.errors import Interrupted\ntry:\n"
            "    D.die_with_launcher()\nexcept Interrupted as e:\n    print(e.terminated, e)\n")
    env = {**os.environ, "TORCHELASTIC_RUN_ID": "t", "PYTHONPATH": repo_pythonpath()}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if not sys.platform.startswith("linux"):
        return
    assert p.returncode == 0 and p.stdout.startswith("True the torchrun launcher that started this rank is gone"), \
        (p.returncode, p.stderr)


def test_ranks_add_the_recent_popularity_one_process_adds(prepared, tmp_path):
    """train.als_trend (training/trend.py) on ranks: the windows' z from counts and a time cut summed over the
    ranks, the choice on the same validation users; the same weight, window, metrics and served arrays as one
    process (on this popularity-drawn data valid chooses it)."""
    p = _torchrun(["train", *_sets(_overrides(prepared, tmp_path / "two", 3)), "--format", "json", "-q"], tmp_path)
    m2 = json.loads(p.stdout)
    m1 = _plain(prepared, tmp_path / "one", 3)
    assert m1["selection"]["als_trend"] > 0, m1["selection"]
    for key in ("als_trend", "als_trend_window", "als_user_unobserved", "als_reg"):
        assert m2["selection"][key] == m1["selection"][key], key
    assert _solve(tmp_path / "two")["trend"] == _solve(tmp_path / "one")["trend"] == m1["selection"]["als_trend"]
    for key, value in m1["splits"]["test"]["model"].items():
        assert m2["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-5), key
    a1, a2 = _arrays(tmp_path / "one"), _arrays(tmp_path / "two")
    for name, value in a1.items():
        np.testing.assert_allclose(a2[name], value, atol=2e-4, rtol=0, err_msg=name)


def test_ranks_weigh_popularity_by_each_users_activity_as_one_process(prepared, tmp_path):
    """train.als_trend_activity on ranks: each rank's users' counts over n0 of every rank's rows, in the choice,
    the metrics and the published arrays; the solve's n0 for a new user's fold-in, as one process's."""
    extra = ["train.als_trend=2", "train.als_trend_activity=1"]
    p = _torchrun(["train", *_sets(_overrides(prepared, tmp_path / "two", 3) + extra), "--format", "json", "-q"],
                  tmp_path)
    m2 = json.loads(p.stdout)
    m1 = _plain(prepared, tmp_path / "one", 3, extra=extra)
    for key in ("als_trend", "als_trend_window", "als_trend_activity"):
        assert m2["selection"][key] == m1["selection"][key], key
    s1, s2 = _solve(tmp_path / "one"), _solve(tmp_path / "two")
    assert s1["trend_activity"] == s2["trend_activity"] == 1 and s2["trend_n0"] == pytest.approx(s1["trend_n0"])
    for key, value in m1["splits"]["test"]["model"].items():
        assert m2["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-5), key
    a1, a2 = _arrays(tmp_path / "one"), _arrays(tmp_path / "two")
    for name, value in a1.items():
        np.testing.assert_allclose(a2[name], value, atol=2e-4, rtol=0, err_msg=name)


def test_ranks_choose_activity_by_the_paired_test_one_process_runs(tmp_path):
    """train.als_trend_activity auto on ranks: the per-user valid differences summed over the ranks give one
    process's mean and standard error, so the same gamma is kept (users with few ratings who pick hits)."""
    import embedrec as er

    from .test_trend import _light_dataset

    ds = _light_dataset(0)
    frames = [pd.DataFrame({"user_id": ds.splits[n].user + 1, "item_id": ds.splits[n].movie + 1})
              for n in ("train", "valid", "test")]
    src = tmp_path / "light.csv"
    pd.concat(frames).sample(frac=1, random_state=0).to_csv(src, index=False)
    prepared = tmp_path / "prepared"
    er.ingest(str(src), load_config(None, [f"data.prepared={prepared}"]))
    sets = [f"data.prepared={prepared}", "train.threads=1", "train.device=cpu", "model.dim=8", "train.als_dims=[]"]
    p = _torchrun(["train", *_sets(sets + [f"run.dir={tmp_path / 'two'}"]), "--format", "json", "-q"], tmp_path)
    m2 = json.loads(p.stdout)
    from embedrec.api import train_run

    m1 = train_run(load_config(None, sets + [f"run.dir={tmp_path / 'one'}"]))
    assert m1["selection"]["als_trend_activity"] > 0, m1["selection"]
    for key in ("als_trend", "als_trend_window", "als_trend_activity"):
        assert m2["selection"][key] == m1["selection"][key], key
    assert m2["splits"]["test"]["model"]["ndcg@10"] == pytest.approx(m1["splits"]["test"]["model"]["ndcg@10"], abs=1e-5)


def test_a_rank_without_training_rows_is_refused_in_one_line(tmp_path):
    """A review: where the users given to one rank rated only after a global time cut (split.cold_start keeps
    them), the other rank's first fit waited for it until an outside timeout killed the run."""
    from click.testing import CliRunner

    from embedrec.cli import main

    rows = ["user_id,movie_id,rating,timestamp"]
    for u in range(1, 41):  # users 21-40 (the second rank's) rate only after everyone else
        for m in range(1, 16):
            rows.append(f"{u},{m},{1 + (u * m) % 5},{(1000 if u <= 20 else 10**8) + u * 100 + m}")
    csv = tmp_path / "late.csv"
    csv.write_text("\n".join(rows) + "\n")
    r = CliRunner().invoke(main, ["ingest", "-q", str(csv), "-o", str(tmp_path / "ds"), "--set",
                                  "split.method=global_time", "--set", "split.test=0.3", "--set", "split.valid=0.3",
                                  "--set", "split.cold_start=true"])
    assert r.exit_code == 0, r.stderr
    p = _torchrun(["train", *_sets(_overrides(tmp_path / "ds", tmp_path / "run", 2)), "-q"], tmp_path, ok=False)
    said = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert said == ["error: 1 of the 2 ranks hold no training rating (the users given to them rated only in the "
                    "valid and test splits, as a global time cut leaves the users first seen after its training window), "
                    "which the ranks' fit cannot take; train in one process, or with fewer ranks"], p.stderr[-2000:]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_waiting_to_join_stop_with_the_line_of_one_that_failed_before_joining(monkeypatch):
    """Before the group's join each rank counts itself in torchrun's store; one that fails first (its config
    refused) leaves its line there, and the waiting ranks stop with it at once (a review: rank 0 on the other
    node waited 30 minutes in silence, then said to launch with torchrun); all started: the join goes on; too few
    within the wait: one line saying so."""
    import time
    from datetime import timedelta

    import torch.distributed as dist

    port = _free_port()
    server = dist.TCPStore("127.0.0.1", port, is_master=True, timeout=timedelta(seconds=10))
    env = {"TORCHELASTIC_USE_AGENT_STORE": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "TORCHELASTIC_RUN_ID": "t1", "TORCHELASTIC_RESTART_COUNT": "0", "RANK": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(D, "JOIN_WAIT_S", 0.5)
    monkeypatch.setattr(D, "_GROUP", None)  # not joined (another test of this process may have left a group)
    t = time.monotonic()
    with pytest.raises(ConfigError, match=r"only 1 of the 2 ranks of this torchrun job reached the join within "
                                          r"0\.5 s: the others are still busy before it, or failed"):
        D.wait_for_ranks(2)
    assert time.monotonic() - t < 5
    assert D.wait_for_ranks(2) is True  # a second rank counted: both started
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # a restart counts afresh
    D.post_failure("config key 'model.dim' in bad.yaml:1: -5 is below the minimum 1")
    monkeypatch.setenv("RANK", "0")
    D.post_failure("another rank of this torchrun job stopped ...")  # an echo: the first line is kept
    with pytest.raises(ConfigError, match=r"another rank of this torchrun job stopped before it joined the others: "
                                          r"rank 1: config key 'model.dim' in bad.yaml:1"):
        D.wait_for_ranks(3)
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")  # rank 0 hosts the store as it joins: no wait here
    assert D.wait_for_ranks(2) is False
    del server
    # the variables read as they are used, each said in one line (a review: 'abc' failed every command at import)
    monkeypatch.setattr(D, "JOIN_WAIT_S", None)
    for name, value in (("EMBEDREC_DIST_JOIN_WAIT_S", "abc"), ("EMBEDREC_DIST_TIMEOUT_MIN", "-5"),
                        ("EMBEDREC_DIST_JOIN_WAIT_S", "nan")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=f"environment variable {name}='{value}': a number of "):
            D.env_number(name, 1, "seconds")
        monkeypatch.delenv(name)
    assert D.env_number("EMBEDREC_DIST_JOIN_WAIT_S", 1800, "seconds") == 1800


def test_a_node_whose_config_is_refused_stops_the_other_nodes_ranks_with_its_line(prepared, tmp_path):
    """Two torchrun launches as two nodes (c10d rendezvous on this machine): the second's config does not parse;
    the first's rank stops within seconds, saying which rank failed and why (before: 30 minutes of silence)."""
    import time

    (tmp_path / "bad.yaml").write_text("model: {dim: -5}\n")
    env = _launch_env(tmp_path)
    port = _free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=bad-node", "-m", "embedrec", "train", "--set",
           f"data.prepared={prepared}", "--set", f"run.dir={tmp_path / 'run'}", "-q"]
    t = time.monotonic()
    node0 = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        node1 = subprocess.run(cmd, cwd=tmp_path, env={**env, "EMBEDREC_CONFIG": str(tmp_path / "bad.yaml")},
                               capture_output=True, text=True, timeout=300)
        out, err = node0.communicate(timeout=300)
    finally:
        if node0.poll() is None:
            node0.kill()
    assert node0.returncode != 0 and node1.returncode != 0
    assert "error: config key 'model.dim'" in node1.stderr
    assert "error: another rank of this torchrun job stopped before it joined the others: rank 1: config key " \
           "'model.dim'" in err, err[-3000:]
    assert time.monotonic() - t < 120 and out == ""


DAMAGED_ON_RANK_1 = """
import sys
from embedrec import dist_data
from embedrec.errors import ArtifactError

read = dist_data.read_row_groups

def damaged(path, split, rank, *a, **k):  # rank 1 finds the file damaged after rank 0 checked it: mid-job
    if rank == 1:
        raise ArtifactError(f"prepared dataset file '{path}/{split}.parquet' is damaged (Parquet magic bytes not "
                            "found in footer); rerun the 'embedrec ingest' that wrote it, with --overwrite")
    return read(path, split, rank, *a, **k)

dist_data.read_row_groups = damaged
sys.argv[0] = "embedrec"
from embedrec.console import main
main()
"""


def test_a_rank_that_fails_after_the_join_leaves_its_line_for_the_node_that_loses_it(prepared, tmp_path):
    """A review: a rank that failed after the ranks joined (its dataset file damaged mid-job) left the rank on the
    other node saying only 'another rank of this torchrun job stopped (its connection closed)'; its cause sat in
    the failing node's log alone. Two launches as two nodes: the failing rank leaves its line in the job's store,
    and the other node's rank says it after its own."""
    script = tmp_path / "damaged.py"
    script.write_text(DAMAGED_ON_RANK_1)
    import socket
    import time

    env, port = _launch_env(tmp_path), _free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=damaged", str(script), "train", "--set",
           f"data.prepared={prepared}", "--set", f"run.dir={tmp_path / 'run'}", "--set", "train.device=cpu", "-q"]
    node0 = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # the first node hosts the rendezvous store, as a job's head node does (the
        while time.monotonic() < deadline:  # store gone with the failing node, torchrun stops the other's rank)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        node1 = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        _, err0 = node0.communicate(timeout=300)
    finally:
        if node0.poll() is None:
            node0.kill()
    said = {e: [x for x in e.splitlines() if x.startswith("error: ")] for e in (err0, node1.stderr)}
    failed = (said[err0] or [""])[0].startswith("error: prepared dataset file '")
    own, other = (err0, node1.stderr) if failed else (node1.stderr, err0)  # the rendezvous picks who is rank 1
    assert said[own][0].startswith("error: prepared dataset file '"), own[-3000:]
    assert said[other] == ["error: another rank of this torchrun job stopped (its connection closed); what was "
                           "saved is kept: fix what it says and run the same torchrun command again (train: with "
                           "--resume where it had saved a checkpoint, else as it was); rank 1: "
                           + said[own][0].removeprefix("error: ")], other[-3000:]


def test_a_rank_that_loses_a_peer_reads_its_line_from_the_store_within_a_bounded_wait(monkeypatch, capfd):
    """After the join the failing rank's line goes to the group's store (its first failure only), and a rank that
    finds its connection closed reads it, waiting at most PEER_LINE_WAIT_S; none left, or no store to reach:
    the line said before, without hanging."""
    import time
    from datetime import timedelta

    import torch.distributed as dist

    from embedrec.cli.app import _known_error

    port = _free_port()
    server = dist.TCPStore("127.0.0.1", port, is_master=True, timeout=timedelta(seconds=10))
    for k, v in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "TORCHELASTIC_RUN_ID": "t2",
                 "TORCHELASTIC_RESTART_COUNT": "0", "RANK": "1", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(D, "_GROUP", D.Group(1, 2, torch.device("cpu")))  # joined
    closed = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer [::1]:1")
    t = time.monotonic()
    assert D.lost_peers(0.3)[0] is None and time.monotonic() - t < 6  # nobody failed: the wait is bounded
    D.post_failure("prepared dataset file 'x/train.parquet' is damaged (Parquet magic bytes not found in footer)")
    monkeypatch.setenv("RANK", "0")
    D.post_failure("another rank of this torchrun job stopped ...")  # an echo: the first line is kept
    assert D.lost_peers()[0] == ("rank 1: prepared dataset file 'x/train.parquet' is damaged (Parquet magic "
                                    "bytes not found in footer)")
    assert _known_error(closed).endswith("; rank 1: prepared dataset file 'x/train.parquet' is damaged (Parquet "
                                         "magic bytes not found in footer)")
    del server
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))  # no store there: the line said before, at once, and
    capfd.readouterr()  # nothing else (torch's client took 4 s and wrote its C++ frames to stderr)
    t = time.monotonic()
    assert _known_error(closed).endswith("run the same torchrun command again (train: with --resume where it had "
                                         "saved a checkpoint, else as it was)")
    D.post_failure("another line")
    assert time.monotonic() - t < 6 and capfd.readouterr().err == ""


def test_a_rank_that_stopped_beating_without_leaving_is_named_as_killed(monkeypatch):
    """distributed.lost_peers: a rank whose beats in the job's store stopped, and which did not leave with a word
    (distributed.leaving), is one killed outright; one that beats on, or left, or never beat, is not. The wait is
    bounded, ends early once every other rank beats again or left (settled=True), and goes on through a SIGTERM
    (torchrun's, for the rank that died), not through Ctrl-C."""
    import signal
    import threading
    import time
    from datetime import timedelta

    import torch.distributed as dist

    from embedrec.errors import Terminated

    port = _free_port()
    server = dist.TCPStore("127.0.0.1", port, is_master=True, timeout=timedelta(seconds=10))
    for k, v in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "TORCHELASTIC_RUN_ID": "beats",
                 "TORCHELASTIC_RESTART_COUNT": "0", "RANK": "0", "WORLD_SIZE": "4"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(D, "_GROUP", D.Group(0, 4, torch.device("cpu")))  # joined; ranks 1-3 are the others
    server.add(D._beat_key(1), 7)  # beat, then stopped: killed outright
    server.add(D._beat_key(2), 3 + D.LEFT)  # beat, then left with its line
    stop = threading.Event()

    def beating():  # rank 3 beats on
        while not stop.is_set():
            server.add(D._beat_key(3), 1)
            time.sleep(0.05)

    threading.Thread(target=beating, daemon=True).start()
    try:
        t = time.monotonic()
        assert D.lost_peers(0.6) == (None, [1]) and 0.6 <= time.monotonic() - t < 5
        signal.setitimer(signal.ITIMER_REAL, 0.2)  # a SIGTERM in the wait: it goes on to its end
        previous = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(Terminated(15)))
        try:
            t = time.monotonic()
            assert D.lost_peers(0.6) == (None, [1]) and time.monotonic() - t >= 0.6
            server.add(D._beat_key(1), D.LEFT)  # rank 1 left after all: every other rank settled, the wait ends
            t = time.monotonic()
            assert D.lost_peers(5, settled=True) == (None, []) and time.monotonic() - t < 4
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))  # Ctrl-C: cut short
            server.set(D._beat_key(1), "9")
            t = time.monotonic()
            assert D.lost_peers(5) == (None, []) and time.monotonic() - t < 4
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        D.post_failure("its own line")  # a line left: said at once, whatever the beats
        assert D.lost_peers(5) == ("rank 0: its own line", [])
    finally:
        stop.set()


def test_a_ranks_beats_go_on_one_client_made_again_only_after_a_failure(monkeypatch):
    """distributed._start_beating: every beat on one client of the job's store (a review: a new client per beat
    averaged 167 ms with stalls of seconds, under lost_peers' window), a new one only after a beat failed; and
    lost_peers judges a rank silent over longer than one beat can block in that reconnect."""
    import time
    from datetime import timedelta

    import torch.distributed as dist

    assert D.SILENT_S > 2 * D.BEAT_TIMEOUT_S + D.BEAT_S
    port = _free_port()
    server = dist.TCPStore("127.0.0.1", port, is_master=True, timeout=timedelta(seconds=10))
    for k, v in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "TORCHELASTIC_RUN_ID": "one-client",
                 "TORCHELASTIC_RESTART_COUNT": "0", "RANK": "1", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(D, "_GROUP", D.Group(1, 2, torch.device("cpu")))
    monkeypatch.setattr(D, "BEAT_S", 0.05)
    made, job_store = [], D._job_store

    class Failing:  # the second client made fails its first add (a store that stopped answering a while)
        def __init__(self, store, fail):
            self.store, self.fail = store, fail

        def add(self, key, n):
            if self.fail:
                self.fail = False
                raise RuntimeError("timed out")
            return self.store.add(key, n)

    def counted(timeout_s):
        made.append(timeout_s)
        return Failing(job_store(timeout_s), fail=len(made) == 2)

    monkeypatch.setattr(D, "_job_store", counted)
    D._start_beating(1)
    try:
        key = D._beat_key(1)
        deadline = time.monotonic() + 10
        while server.add(key, 0) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.add(key, 0) >= 10 and made == [D.BEAT_TIMEOUT_S], made  # 10 beats, one client
        D._beating[0].set()  # stopped a moment: the next client fails once, the one after beats on
        time.sleep(0.2)
        monkeypatch.setattr(D, "_beating", None)
        D._start_beating(1)
        before = server.add(key, 0)
        while server.add(key, 0) < before + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.add(key, 0) >= before + 5 and len(made) == 3, made
    finally:
        D.leaving()
    assert server.add(key, 0) >= D.LEFT


# a 2-rank train whose rank 1 is killed outright (SIGKILL) once its first checkpoint is written, rank 0 meanwhile
# in that checkpoint's collective or (RANK_0_BUSY) busy on its own, where torchrun's SIGTERM reaches it first
KILLED_RANK_1 = """
import os, signal, sys, time
from embedrec import shard_checkpoint

record = shard_checkpoint.ShardCheckpoint.record

def record_or_die(self, state, row):
    if state.epoch == 1:
        if self.g.rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("RANK_0_BUSY"):
            time.sleep(300)
    return record(self, state, row)

shard_checkpoint.ShardCheckpoint.record = record_or_die
sys.argv[0] = "embedrec"
from embedrec.console import main
main()
"""


@pytest.mark.parametrize("rank_0", ["in a collective", "busy"])
def test_a_rank_killed_outright_is_named_by_the_other_which_says_to_resume(prepared, tmp_path, monkeypatch, rank_0):
    """A review: a rank killed outright (kill -9, the OOM killer) left the other saying only that 'another rank'
    stopped, or, where torchrun's SIGTERM reached it first, that it was terminated, the launcher's report being the
    only word of which rank died. The other rank now names it in its one line, says to resume (its checkpoint
    intact), and exits non-zero within seconds (not the collectives' 30-minute timeout, nor rank 0's 300 s of work);
    the --resume then finishes with an uninterrupted run's figures."""
    import re
    import time

    script = tmp_path / "killed.py"
    script.write_text(KILLED_RANK_1)
    if rank_0 == "busy":
        monkeypatch.setenv("RANK_0_BUSY", "1")
    run, extra = tmp_path / "run", ["train.als_reg=0.02", "train.als_dims=[]"]
    sets = _sets(_overrides(prepared, run, 3) + extra)
    t = time.monotonic()
    p = _torchrun(["train", *sets, "-q"], tmp_path, script=str(script), ok=False)
    assert time.monotonic() - t < 240
    said = [x for x in p.stderr.splitlines() if x.startswith("error: ")]
    assert len(said) == 1 and said[0].startswith(
        "error: rank 1 of this torchrun job stopped without a message (killed? by kill -9 or the out-of-memory "
        "killer: dmesg on its node says)"), p.stderr[-3000:]
    assert ": continue with the same torchrun command plus --resume (or in one process: embedrec train --set " \
           f"data.prepared={prepared} --set run.dir={run} --set " in said[0] and said[0].endswith(" --resume)")
    code = re.search(r"rank +: 0 \(local_rank: 0\)\n +exitcode +: (-?\d+)", p.stderr)
    if rank_0 == "busy":  # stopped by torchrun's SIGTERM in its own work: exit 143, as any SIGTERM
        assert ", and torchrun stopped this rank: training terminated (SIGTERM) after epoch 2: " in said[0]
        assert code is not None and code.group(1) == "143", p.stderr[-3000:]
        return
    assert "); the last checkpoint is intact: continue with" in said[0]
    assert code is not None and code.group(1) == "1", p.stderr[-3000:]
    resumed = json.loads(_torchrun(["train", "--resume", *sets, "--format", "json", "-q"], tmp_path).stdout)
    whole = _plain(prepared, tmp_path / "whole", 3, extra=extra)  # one process, uninterrupted: the 2-rank model
    assert resumed["selection"]["epochs_run"] == whole["selection"]["epochs_run"] == 3
    for key, value in whole["splits"]["test"]["model"].items():
        assert resumed["splits"]["test"]["model"][key] == pytest.approx(value, abs=1e-6), key


def test_the_command_line_leaves_a_ranks_own_error_in_the_store_not_one_every_rank_raised(monkeypatch, tmp_path):
    """Only a rank's own failure is left for the others: not one raised on every rank together (Group.agree's
    relay of another's failure would name this rank as the cause), nor Ctrl-C."""
    from click.testing import CliRunner

    from embedrec import api
    from embedrec.cli import main
    from embedrec.errors import Interrupted

    left = []
    monkeypatch.setattr(D, "post_failure", left.append)
    for k, v in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(k, v)
    closed = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer [::1]:1")
    monkeypatch.setattr(D, "lost_peers", lambda *a, **k: (None, []))  # (no store here)
    for error in (ConfigError("its own"), D.all_ranks(ConfigError("every rank's")), Interrupted("stopped"),
                  MemoryError(), closed, KeyError("a bug")):
        def refuse(*a, error=error, **k):
            raise error

        monkeypatch.setattr(api, "train_run", refuse)
        r = CliRunner().invoke(main, ["train", "--set", f"run.dir={tmp_path / 'run'}"])
        assert r.exit_code in (1, 2, 130), r.output
    # a node's own failure that is no embedrec error (memory, a full disk, a bug) is left too (a review: only
    # EmbedrecError was); a lost peer's echo is not
    assert len(left) == 3 and left[0] == "its own" and left[1].startswith("out of memory (MemoryError)") \
        and left[2].startswith("internal error (KeyError: 'a bug')"), left


def test_the_resume_advice_under_torchrun_names_the_torchrun_command_first(monkeypatch):
    """A review: Ctrl-C of a 2-rank train said 'continue with embedrec train ... --resume', a one-process command
    (which works too), where the job was a torchrun one."""
    from embedrec.cli.state import _State
    from embedrec.cli.train import resume_command

    monkeypatch.setattr(_State, "config_path", None)  # as given on no command line (another test's may linger)
    monkeypatch.setattr(_State, "overrides", ())
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert resume_command("runs/x") == "embedrec train --run runs/x --resume"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert resume_command("runs/x") == ("the same torchrun command plus --resume (or in one process: embedrec train "
                                        "--run runs/x --resume)")


def test_a_rank_that_cannot_see_rank_0s_checkpoint_folder_names_the_shared_filesystem(tmp_path):
    """A review: ranks on two nodes whose run.dir was each one's own disk: rank 1 said "cannot use '...user.npy':
    No such file or directory; check that path". It says run.dir must be on a filesystem every node mounts."""
    from types import SimpleNamespace

    from embedrec.errors import ArtifactError
    from embedrec.shard_checkpoint import ShardCheckpoint

    g = SimpleNamespace(rank=1, world=2, leader=False, barrier=lambda: None)
    shard = SimpleNamespace(n_users=4, n_movies=3, u_range=lambda r: (2, 4), m_range=lambda r: (1, 3))
    model = torch.nn.Module()
    model.user, model.movie, model.dim = torch.nn.Embedding(4, 2), torch.nn.Embedding(3, 2), 2
    state = SimpleNamespace(epoch=0, model=model, best_state=None)
    with pytest.raises(ArtifactError, match=r"which rank 0 has just made, is not there for rank 1: with ranks on "
                                            r"several machines, run.dir \(here .*\) must be on a filesystem every "
                                            r"node mounts"):
        ShardCheckpoint(g, tmp_path, shard, "fp", {}).record(state, {})


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_started_without_torchrun_join_say_a_missing_rank_and_leave_quietly(prepared, tmp_path):
    """A beyond-one-machine review: ranks started by hand (RANK, WORLD_SIZE, MASTER_ADDR/PORT, as a scheduler's
    launcher sets them) waited for a missing rank in the group's C++ join, deaf to SIGTERM and to
    EMBEDREC_DIST_JOIN_WAIT_S, for 30 minutes; two such ranks trained, and rank 1 printed a C++ 'recvValue failed'
    with its frames at exit (rank 0, which hosts the store, had gone). Now the join waits in Python, at most the
    wait set, and says which ranks came; rank 0 leaves once every rank has seen the others at exit."""
    import time

    args = [sys.executable, "-m", "embedrec", "train", "-q", "--format", "json",
            *_sets(_overrides(prepared, tmp_path / "run", 2))]

    def env(rank: int, port: int, **more) -> dict:
        return {**_launch_env(tmp_path), "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), **more}

    start = time.monotonic()
    p = subprocess.run(args, cwd=tmp_path, env=env(0, _free_port(), EMBEDREC_DIST_JOIN_WAIT_S="3"),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == (
        "error: only 1 of the 2 ranks (WORLD_SIZE) reached the join within 3 s: the others are still busy before it, "
        "failed (their errors are on their own stderr) or were never started; start every rank, and run the "
        "command again (EMBEDREC_DIST_JOIN_WAIT_S sets this wait)"), p.stderr
    assert time.monotonic() - start < 60
    port = _free_port()
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env(r, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for r in (0, 1)]
    outs = [q.communicate(timeout=600) for q in procs]
    assert [q.returncode for q in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert outs[1][1] == "" and "frame #" not in outs[0][1] and "recvValue" not in outs[0][1], \
        [o[1][-2000:] for o in outs]
    assert json.loads(outs[0][0])["ranks"] == 2


def test_a_sharded_resume_with_another_config_names_the_key(prepared, tmp_path):
    """A beyond-one-machine review: a resume of a ranks' checkpoint with another setting said 'another dataset or
    model/train config', naming no key (and twice on one node): it names the key as one process's resume does,
    once a node."""
    from embedrec.errors import ArtifactError
    from embedrec.shard_als import train_distributed

    run = tmp_path / "run"
    train_distributed(load_config(None, _overrides(prepared, run, 2) + ["train.als_reg=0.01", "train.refit=false"]))
    with pytest.raises(ArtifactError, match=r"was made with another train\.als_reg \(0\.01, now 0\.02\)") as e:
        train_distributed(load_config(None, _overrides(prepared, run, 3) + ["train.als_reg=0.02",
                                                                         "train.refit=false"]), resume=True)
    assert getattr(e.value, "every_rank", False)
