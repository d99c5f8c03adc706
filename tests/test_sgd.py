"""train.optimizer=hogwild: the C kernel's step is the autograd gradient step, and it trains."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from embedrec.errors import ArtifactError, ConfigError
from embedrec.evaluate import evaluate_model
from embedrec.model.mf import MatrixFactorization
from embedrec.training import kernel, sgd
from embedrec.training.fit import factors, fit
from embedrec.training.minibatch import Batcher


def _cfg(**kw):
    base = dict(lr=0.1, weight_decay_user=0.3, weight_decay_movie=0.2, weight_decay_bias=0.05, negatives=1,
                softmax_full_max=0, threads=1)
    base.update(kw)
    cfg = SimpleNamespace(**base)
    cfg.weight_decays = lambda loss: (cfg.weight_decay_user, cfg.weight_decay_movie)  # as TrainConfig's, numbers set
    return cfg


def _model(n_users, n_movies, explicit):
    torch.manual_seed(0)
    m = MatrixFactorization(n_users, n_movies, 5, user_bias=explicit, movie_bias=True, init_std=0.5,
                            global_mean=3.5 if explicit else 0.0)
    with torch.no_grad():  # non-zero biases so their gradients are exercised
        m.movie_bias.weight.normal_(std=0.5)
        if explicit:
            m.user_bias.weight.normal_(std=0.5)
    return m


def _autograd_step(model, loss, cfg, u, m, r, neg, n_movies):
    ds = SimpleNamespace(n_movies=n_movies, splits={"train": SimpleNamespace(movie=m.numpy())})
    batcher = Batcher(model, loss, cfg, ds)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    lv = batcher.loss_fn(u, m, r, neg)
    opt.zero_grad()
    lv.backward()
    opt.step()
    return lv.item()


def _hogwild_step(model, loss, cfg, u, m, r, n_movies):
    h = sgd.Hogwild(model, loss, cfg, u, m, r, n_movies, threads=1)
    return h.epoch(torch.Generator().manual_seed(0))


def test_mse_step_is_the_autograd_sgd_step():
    cfg = _cfg()
    u, m, r = torch.tensor([1]), torch.tensor([2]), torch.tensor([4.5])
    a, b = _model(3, 4, True), _model(3, 4, True)
    la = _autograd_step(a, "mse", cfg, u, m, r, None, 4)
    lb = _hogwild_step(b, "mse", cfg, u, m, r, 4)
    assert lb == pytest.approx(la, rel=1e-5)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("negatives,wd", [(1, 0.2), (3, 0.0)])
def test_bpr_step_is_the_autograd_sgd_step(negatives, wd):
    # two movies and the user rated movie 0: every (verified) negative is movie 1
    cfg = _cfg(negatives=negatives, weight_decay_movie=wd)
    u, m, r = torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0])
    a, b = _model(2, 2, False), _model(2, 2, False)
    la = _autograd_step(a, "bpr", cfg, u, m, r, torch.ones(1, negatives, dtype=torch.long), 2)
    lb = _hogwild_step(b, "bpr", cfg, u, m, r, 2)
    assert lb == pytest.approx(la, rel=1e-5)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def _svdpp_model(rated: dict) -> MatrixFactorization:
    """An explicit SVD++ model of len(rated) users x 6 movies x 5 dims, N(u) = rated[u], its tables and biases
    drawn from one seed (non-zero biases, so their gradients are exercised)."""
    indptr = np.cumsum([0] + [len(rated[x]) for x in range(len(rated))])
    indices = np.array([j for x in range(len(rated)) for j in rated[x]])
    torch.manual_seed(0)
    mm = MatrixFactorization(len(rated), 6, 5, user_bias=True, movie_bias=True, init_std=0.5, global_mean=3.5,
                             rated=(indptr, indices))
    with torch.no_grad():
        mm.movie_bias.weight.normal_(std=0.5)
        mm.user_bias.weight.normal_(std=0.5)
    return mm


def test_svdpp_epoch_is_the_autograd_sgd_steps_user_by_user():
    """SVD++ on hogwild: each user's examples in a row, every y_j of N(u) moved by each step through a shared
    scale and increment, the implicit sum kept exactly. Its epoch equals autograd SGD at batch size 1 over the
    same users in the same order: each user's examples here are one (movie, rating) repeated, so their order
    within the user does not matter, and user 3 has an empty N(u)."""
    cfg = _cfg(lr=0.05)
    examples = {0: (1, 4.0, 3), 1: (2, 2.0, 1), 2: (3, 5.0, 2), 3: (0, 3.0, 1)}  # user: (movie, rating, times)
    rated = {0: [0, 1, 2], 1: [2, 4], 2: [1, 3, 5], 3: []}
    u = torch.tensor([x for x, (_, _, n) in examples.items() for _ in range(n)])
    m = torch.tensor([mv for mv, _, n in examples.values() for _ in range(n)])
    r = torch.tensor([rt for _, rt, n in examples.values() for _ in range(n)])

    def model():
        return _svdpp_model(rated)

    a, b = model(), model()
    users = torch.randperm(4, generator=torch.Generator().manual_seed(0)).tolist()  # the epoch's first draw
    total = 0.0
    for x in users:
        for k in np.flatnonzero(u.numpy() == x):
            total += _autograd_step(a, "mse", cfg, u[k:k + 1], m[k:k + 1], r[k:k + 1], None, 6)
    got = _hogwild_step(b, "mse", cfg, u, m, r, 6)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.implicit_movie.weight, a.implicit_movie.weight, rtol=1e-5, atol=1e-6)
    assert got == pytest.approx(total / u.shape[0], rel=0.01)  # (the y_j term measured at each user's start)


@pytest.fixture
def synth(synth_dir, small_cfg):
    from embedrec.data.dataset import load_dataset
    from embedrec.ingestion import ingest

    d, _ = synth_dir
    small_cfg = small_cfg.updated({"data.source": str(d)})
    ingest(small_cfg.data, small_cfg.split, output=small_cfg.data.prepared)
    return load_dataset(small_cfg.data.prepared)


def test_hogwild_recovers_planted_structure_and_resumes_exactly(synth, small_cfg, tmp_path):
    c = small_cfg
    c = c.updated({"model.dim": 8, "train.optimizer": 'hogwild', "train.lr": 0.01, "train.epochs": 30, "train.patience": 30})
    c = c.updated({"train.weight_decay_user": 0.01, "train.weight_decay_movie": 0.01})
    c = c.updated({"train.threads": 1})
    full = fit(synth, c.model, c.train, tmp_path / "full")
    rmse = evaluate_model(factors(full.model), synth, "test", True, [10], ranking=False)["rmse"]
    base = float(np.sqrt(np.mean((synth.splits["test"].rating - synth.splits["train"].rating.mean()) ** 2)))
    assert rmse < 0.5 < base  # noise floor about 0.32 (see test_train)
    c = c.updated({"train.epochs": 12})
    fit(synth, c.model, c.train, tmp_path / "part")
    c = c.updated({"train.epochs": 30})
    resumed = fit(synth, c.model, c.train, tmp_path / "part", resume=True)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_hogwild_svdpp_trains_resumes_exactly_and_serves_its_current_implicit_sums(synth, small_cfg, tmp_path):
    """SVD++ on the kernel (train.optimizer auto picks it): better than the mean, a resume equal to the bit to an
    uninterrupted run on one thread, and the served user vectors (p_u plus the implicit sum, model.factors) made
    from the y_j the kernel last wrote: its writes do not move torch's version counter, which keyed a cache."""
    c = small_cfg.updated({"model.dim": 8, "model.implicit_terms": True, "train.optimizer": "auto",
                           "train.lr": 0.01, "train.epochs": 30, "train.patience": 30, "train.threads": 1,
                           "train.weight_decay_user": 0.01, "train.weight_decay_movie": 0.01})
    full = fit(synth, c.model, c.train, tmp_path / "full")
    assert full.model.implicit_movie is not None and full.epochs_run == 30
    rmse = evaluate_model(factors(full.model), synth, "test", True, [10], ranking=False)["rmse"]
    base = float(np.sqrt(np.mean((synth.splits["test"].rating - synth.splits["train"].rating.mean()) ** 2)))
    assert rmse < 0.5 < base  # as the plain model's test above (noise floor about 0.32)
    # each epoch's validation score is of that epoch's sums: the best one's is the final model's
    assert full.best_value == pytest.approx(evaluate_model(factors(full.model), synth, "valid", True, [10],
                                                           ranking=False)[full.metric], rel=1e-5)
    m = full.model
    y = m.implicit_movie.weight.detach().numpy()
    ip, idx = m.rated_indptr.numpy(), m.rated_indices.numpy()
    fresh = np.stack([y[idx[ip[x]:ip[x + 1]]].sum(0) / np.sqrt(max(ip[x + 1] - ip[x], 1)) for x in range(m.n_users)])
    np.testing.assert_allclose(factors(m)["user_factors"], m.user.weight.detach().numpy() + fresh, rtol=1e-4,
                               atol=1e-5)
    fit(synth, c.model, c.updated({"train.epochs": 12}).train, tmp_path / "part")
    resumed = fit(synth, c.model, c.train, tmp_path / "part", resume=True)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_hogwild_bpr_ranks_held_out_positives(synth, small_cfg, tmp_path):
    c = small_cfg
    c = c.updated({"model.objective": 'implicit', "model.loss": 'bpr', "model.dim": 8})
    c = c.updated({"train.optimizer": 'hogwild', "train.lr": 0.05, "train.epochs": 20, "train.threads": 2})
    c = c.updated({"train.weight_decay_user": 0.001, "train.weight_decay_movie": 0.001})
    r = fit(synth, c.model, c.train, tmp_path / "bpr")
    m = evaluate_model(factors(r.model), synth, "test", False, [10])
    from embedrec.evaluate import baselines

    pop = baselines(synth, "test", False, [10])["most_popular"]
    assert m["ndcg@10"] > pop["ndcg@10"]


def test_hogwild_refuses_what_it_cannot_train(synth, small_cfg, tmp_path, monkeypatch):
    c = small_cfg
    c = c.updated({"train.optimizer": 'hogwild'})
    c = c.updated({"model.objective": 'implicit', "model.loss": 'softmax'})
    with pytest.raises(ConfigError, match="hogwild trains the mse and bpr losses"):
        fit(synth, c.model, c.train, tmp_path / "a")
    c = c.updated({"model.objective": "explicit", "model.loss": "auto", "features.movie": ["genre"]})
    with pytest.raises(ConfigError, match="plain model only"):
        fit(synth, c.model, c.train, tmp_path / "b", features_cfg=c.features)
    # a review: softmax with features was told 'use model.loss=bpr', which then failed on the features
    c = c.updated({"model.objective": "implicit", "model.loss": "softmax"})
    with pytest.raises(ConfigError, match="plain model only"):
        fit(synth, c.model, c.train, tmp_path / "c", features_cfg=c.features)


def test_kernel_is_built_once_into_the_cache_and_needs_a_compiler(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "_lib", None)
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "c"))
    kernel.load()
    built = list((tmp_path / "c" / "kernels").glob("mf_sgd-*.so"))
    assert len(built) == 1 and not list((tmp_path / "c" / "kernels").glob(".*"))  # no temporary left behind
    mtime = built[0].stat().st_mtime_ns
    monkeypatch.setattr(kernel, "_lib", None)
    kernel.load()
    assert built[0].stat().st_mtime_ns == mtime
    monkeypatch.setattr(kernel, "_lib", None)
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setattr(kernel.shutil, "which", lambda name: None)
    with pytest.raises(kernel.KernelError, match="no C compiler was found.*install one") as e:
        kernel.load()
    # neutral: ALS and evaluation load it too, and word it for themselves
    assert "hogwild" not in str(e.value) and "train.optimizer" not in str(e.value)
    assert e.value.kind == "no-compiler" and e.value.reason("ALS").startswith("ALS compiles a small C kernel once")
    monkeypatch.setattr(kernel, "_lib", None)


def _hogwild_refusal() -> str:
    one = torch.zeros(1, dtype=torch.int64)
    with pytest.raises(ConfigError) as e:
        sgd.Hogwild(MatrixFactorization(2, 2, 2), "mse", _cfg(), one, one, one.float(), 2, threads=1)
    assert not isinstance(e.value, kernel.KernelError)
    return e.value.cli_message()


def test_hogwild_words_the_loaders_failures_for_its_option(tmp_path, monkeypatch):
    """The loader moved out of sgd.py with neutral messages; hogwild's refusals read as they did."""
    monkeypatch.setattr(kernel, "_lib", None)
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setattr(kernel.shutil, "which", lambda name: None)
    assert _hogwild_refusal() == (
        "config key 'train.optimizer': hogwild compiles a small C kernel once, but no C compiler was found (tried "
        "$CC, cc, gcc, clang); install one (e.g. apt install gcc, xcode-select --install), or train with --set "
        "train.optimizer=adam --set train.lr=0.003")
    monkeypatch.undo()
    monkeypatch.setattr(kernel, "_lib", None)
    monkeypatch.setenv("CC", "false")  # found, and fails every build
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "c"))
    assert _hogwild_refusal() == (
        "config key 'train.optimizer': compiling the hogwild kernel with false failed (exit 1); fix the compiler "
        "(or set CC), or train with --set train.optimizer=adam --set train.lr=0.003")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "file"))
    assert _hogwild_refusal() == (
        f"config key 'train.optimizer': the hogwild kernel cannot be written to '{tmp_path / 'file' / 'kernels'}' "
        "(Not a directory); point $EMBEDREC_CACHE at a writable folder")
    monkeypatch.setattr(kernel, "_lib", None)


def test_multi_thread_epoch_trains(synth, small_cfg):
    # more than one thread only above PER_THREAD examples; force it to exercise the threaded path
    m = MatrixFactorization(synth.n_users, synth.n_movies, 8, global_mean=3.5)
    tr = synth.splits["train"]
    u, mv = torch.from_numpy(tr.user.astype(np.int64)), torch.from_numpy(tr.movie.astype(np.int64))
    r = torch.from_numpy(tr.rating.astype(np.float32))
    h = sgd.Hogwild(m, "mse", _cfg(lr=0.01, weight_decay_user=0.01, weight_decay_movie=0.01), u, mv, r,
                    synth.n_movies, threads=2)
    h.threads = 2
    before = copy.deepcopy(m.state_dict())
    losses = [h.epoch(torch.Generator().manual_seed(e)) for e in range(5)]
    assert losses[-1] < losses[0] and not torch.equal(before["user.weight"], m.user.weight)
    # SVD++ (svdpp_sgd): the threads take runs of users holding about equal shares of the examples
    from embedrec.sparse import csr

    s = MatrixFactorization(synth.n_users, synth.n_movies, 8, global_mean=3.5,
                            rated=csr(tr.user, tr.movie, synth.n_users))
    h = sgd.Hogwild(s, "mse", _cfg(lr=0.01, weight_decay_user=0.01, weight_decay_movie=0.01), u, mv, r,
                    synth.n_movies, threads=2)
    h.threads = 3
    y0 = s.implicit_movie.weight.detach().clone()
    losses = [h.epoch(torch.Generator().manual_seed(e)) for e in range(5)]
    assert losses[-1] < losses[0] and not torch.equal(y0, s.implicit_movie.weight)


def test_hogwild_divergence_names_learning_rate(synth, small_cfg, tmp_path):
    from embedrec.errors import TrainingError

    small_cfg = small_cfg.updated({"train.optimizer": 'hogwild', "train.lr": 10.0})
    with pytest.raises(TrainingError, match=r"train\.lr=10\) is probably too high, try train\.lr=1") as e:
        fit(synth, small_cfg.model, small_cfg.train, tmp_path / "nan")
    assert "try --set train.lr=1" in e.value.cli_message()


# ------------------------------------------------------------------------------------------------ optimizer auto
def _resolved(loss="mse", features=False, device="cpu", **sets):
    from embedrec.config import Config
    from embedrec.training.fit import resolve_optimizer

    cfg = Config().updated({"model.objective": "explicit" if loss == "mse" else "implicit", **sets})
    t = resolve_optimizer(loss, cfg.model, cfg.train, features, device=device)
    return t.optimizer, t.lr


def test_optimizer_auto_is_hogwild_for_the_plain_mse_and_bpr_models_on_the_cpu_and_adam_otherwise():
    assert _resolved("mse") == ("hogwild", 0.01)  # configs/ml100k-explicit.yaml's settings
    assert _resolved("bpr") == ("hogwild", 0.05)
    assert _resolved("softmax") == ("adam", 0.003)
    assert _resolved("als") == ("adam", 0.003)  # read by no als step: the values a run had before auto
    assert _resolved("mse", features=True) == ("adam", 0.003)
    assert _resolved("mse", **{"model.implicit_terms": True}) == ("hogwild", 0.01)  # SVD++: svdpp_sgd
    assert _resolved("bpr", **{"model.implicit_terms": True}) == ("adam", 0.003)
    assert _resolved("mse", **{"train.compile": True}) == ("adam", 0.003)
    assert _resolved("mse", device="cuda") == ("adam", 0.003)
    assert _resolved("bpr", **{"train.negatives": 65}) == ("adam", 0.003)  # the kernel's limit
    # a value the config sets is kept, each on its own
    assert _resolved("mse", **{"train.optimizer": "adam"}) == ("adam", 0.003)
    assert _resolved("mse", **{"train.lr": 0.2}) == ("hogwild", 0.2)
    assert _resolved("bpr", **{"train.optimizer": "sgd", "train.lr": 5.0}) == ("sgd", 5.0)
    assert _resolved("mse", **{"train.optimizer": "hogwild"}) == ("hogwild", 0.01)


def test_device_auto_on_a_gpu_box_trains_the_plain_model_with_the_kernel_on_the_cpu(monkeypatch, caplog):
    """Measured on an H200 with 16 cores (BENCHMARKS.md, session 36): device auto took the GPU and adam there, 5.5x
    (explicit) and 2.4x (bpr) the wall time of hogwild on its CPU, to worse test figures. auto now keeps the plain
    model on the CPU and says so; a GPU named, als, softmax and side features still go to the GPU."""
    import logging

    from embedrec import device as DV
    from embedrec.config import Config
    from embedrec.training.fit import resolve_optimizer

    real = DV.device_name
    monkeypatch.setattr(DV, "device_name", lambda name="auto", local_rank=None: "cuda:0" if name in ("auto", "cuda")
                        else real(name, local_rank))

    def resolved(loss, **sets):
        cfg = Config().updated({"model.objective": "explicit" if loss == "mse" else "implicit", **sets})
        t = resolve_optimizer(loss, cfg.model, cfg.train)
        return t.optimizer, t.device

    with caplog.at_level(logging.INFO, logger="embedrec"):
        assert resolved("mse") == ("hogwild", "cpu")
    assert "on the CPU (train.device auto" in caplog.text
    assert resolved("bpr") == ("hogwild", "cpu")
    assert resolved("mse", **{"train.device": "cuda"}) == ("adam", "cuda")  # named: the user's choice stands
    assert resolved("softmax") == ("adam", "auto")
    assert resolved("als") == ("adam", "auto")  # als on the GPU: the same model, faster at 3.5M ratings
    assert resolved("mse", **{"model.implicit_terms": True}) == ("hogwild", "cpu")  # SVD++ on the kernel too
    assert resolved("mse", **{"train.optimizer": "adam"}) == ("adam", "auto")
    caplog.clear()
    monkeypatch.setattr(DV, "device_name", real)  # no GPU: the same choice, nothing more said
    with caplog.at_level(logging.INFO, logger="embedrec"):
        assert resolved("mse") == ("hogwild", "cpu")
    assert "on the CPU" not in caplog.text


def test_optimizer_auto_without_a_kernel_trains_with_adam_and_says_so_once(monkeypatch, caplog):
    from embedrec.training import fit as F

    def no_kernel():
        raise kernel.KernelError("no-compiler", "{owner} compiles a small C kernel once, but no C compiler was found",
                                 "install one")

    monkeypatch.setattr(kernel, "load", no_kernel)
    monkeypatch.setattr(F, "_said_no_kernel", False)
    with caplog.at_level("WARNING", logger="embedrec"):
        assert _resolved("mse") == ("adam", 0.003)
        assert _resolved("bpr") == ("adam", 0.003)
    said = [r.getMessage() for r in caplog.records]
    assert said == ["train.optimizer auto trains with adam, several times slower: hogwild compiles a small C kernel "
                    "once, but no C compiler was found; install one"]


def test_als_without_a_kernel_says_so_once_a_process(monkeypatch, caplog):
    """Session 39: with CC=false, `train` printed 'als: compiling the ALS kernel ... using the slower torch engine'
    four times (once a fit: the selection's, the refit's)."""
    from embedrec.training import als

    def no_kernel():
        raise kernel.KernelError("no-compiler", "{owner} compiles a small C kernel once, but no C compiler was found",
                                 "install one")

    monkeypatch.setattr(kernel, "load", no_kernel)
    monkeypatch.setattr(als, "_said", set())
    with caplog.at_level("WARNING", logger="embedrec"):
        assert als._kernel() is None and als._kernel() is None and als.Solver(1, 3).torch_engine
    assert [r.getMessage() for r in caplog.records] == [
        "als: ALS compiles a small C kernel once, but no C compiler was found; using the slower torch engine"]


def test_an_als_checkpoint_fingerprint_is_the_one_it_had_before_optimizer_auto():
    """als reads neither key: its fingerprint takes auto as adam at 0.003 (the old defaults), so a run trained
    before auto existed resumes, and the selection's unresolved config matches the fit's resolved one."""
    from embedrec.config import Config
    from embedrec.training.checkpoints import fp_config

    auto = Config()
    old = auto.updated({"train.optimizer": "adam", "train.lr": 0.003})
    assert fp_config(auto.model, auto.train, auto.features) == fp_config(old.model, old.train, old.features)
    assert fp_config(auto.model, auto.train, auto.features)["train"]["optimizer"] == "adam"


def test_the_explicit_objective_alone_trains_on_hogwild(synth, small_cfg):
    cfg = small_cfg.updated({"model.objective": "explicit", "model.dim": 8, "train.epochs": 2, "train.threads": 1})
    runners = []
    real = sgd.Hogwild.__init__

    def spy(self, *a, **kw):
        runners.append(self)
        real(self, *a, **kw)

    sgd.Hogwild.__init__ = spy
    try:
        res = fit(synth, cfg.model, cfg.train)
    finally:
        sgd.Hogwild.__init__ = real
    assert len(runners) == 1 and runners[0].cfg.lr == 0.01 and res.epochs_run == 2


def test_a_resume_with_optimizer_auto_continues_as_the_checkpoint_was_trained(synth, small_cfg, tmp_path, caplog):
    """A review: a run trained with adam (the default before auto, or where the kernel could not be built) was
    refused on `--resume` with the same command ('another train.optimizer (adam, now hogwild)'). auto takes the
    checkpoint's optimizer and lr; the refit then trains with the selection's; metrics.json's selection says
    which."""
    from embedrec.training.fit import selection_of
    from embedrec.training.refit import afresh_config

    c = small_cfg.updated({"train.threads": 1, "train.patience": 10})
    old = c.updated({"train.optimizer": "adam", "train.lr": 0.003, "train.epochs": 2})
    fit(synth, old.model, old.train, tmp_path / "a")
    resumed = fit(synth, c.model, c.updated({"train.epochs": 3}).train, tmp_path / "a", resume=True)
    assert resumed.optimizer == ("adam", 0.003) and resumed.epochs_run == 3
    assert afresh_config(resumed, c.train, 10).optimizer == "adam"  # the refit: the selection's trainer
    assert selection_of(resumed, c.train)["optimizer"] == "adam" and selection_of(resumed, c.train)["lr"] == 0.003
    # a hogwild run at the old default lr (0.003, not auto's 0.01) resumes at it
    hog = c.updated({"train.optimizer": "hogwild", "train.lr": 0.003, "train.epochs": 2})
    fit(synth, hog.model, hog.train, tmp_path / "h")
    again = fit(synth, c.model, c.updated({"train.optimizer": "hogwild", "train.epochs": 3}).train, tmp_path / "h",
                resume=True)
    assert again.optimizer == ("hogwild", 0.003)
    # and train's one line says the lr it goes on with (a review: it said auto's 0.01)
    import logging

    from embedrec.training.checkpoints import CHECKPOINT
    from embedrec.training.fit import resolve_loss, resolve_optimizer

    loss = resolve_loss(c.model)
    with caplog.at_level(logging.INFO, logger="embedrec"):
        caplog.clear()
        resolve_optimizer(loss, c.model, c.train, resumed=tmp_path / "h" / CHECKPOINT)
        resolve_optimizer(loss, c.model, c.train)
        resolve_optimizer(loss, c.model, c.train, resumed=tmp_path / "a" / CHECKPOINT)  # adam's checkpoint
    said = [r.getMessage() for r in caplog.records]
    assert said == ["train.optimizer auto: hogwild, lr 0.003 per example, the checkpoint's",
                    "train.optimizer auto: hogwild, lr 0.01 per example",
                    "train.optimizer auto: adam, lr 0.003, as the checkpoint resumed was trained"], said
    fresh = fit(synth, c.model, c.updated({"train.epochs": 1}).train, tmp_path / "f")
    assert fresh.optimizer == ("hogwild", 0.01)


def test_keys_a_trainer_does_not_read_do_not_change_the_optimizer_auto_picks():
    """A review: train.compile (read by the explicit loss only) switched bpr to adam, and train.negatives (read by
    bpr only) switched the explicit model to adam, each while train warned it had no effect."""
    assert _resolved("bpr", **{"train.compile": True}) == ("hogwild", 0.05)
    assert _resolved("mse", **{"train.negatives": 100}) == ("hogwild", 0.01)
    assert _resolved("bpr", **{"train.negatives": 100}) == ("adam", 0.003)


def test_implicit_terms_auto_is_svdpp_for_the_explicit_model_on_hogwild_and_a_resume_keeps_its_checkpoints(
        synth, small_cfg, tmp_path, caplog):
    """model.implicit_terms auto (session 36): SVD++'s terms where hogwild trains the plain explicit model (5
    ML-100K seeds: test RMSE 0.8965 against 0.9044 without, in about the same time), off for the implicit models
    and the autograd optimizers; said once. A run trained before auto existed (the plain MF, recorded false)
    resumes as it was trained, not refused as 'another model.implicit_terms'."""
    import logging

    from embedrec.config import Config
    from embedrec.training.fit import resolve_implicit_terms, resolve_optimizer

    def resolved(loss, **sets):
        cfg = Config().updated({"model.objective": "explicit" if loss == "mse" else "implicit", **sets})
        t = resolve_optimizer(loss, cfg.model, cfg.train, device="cpu", say=False)
        return resolve_implicit_terms(cfg.model, t, loss, say=False).implicit_terms

    assert resolved("mse") is True
    assert resolved("mse", **{"train.optimizer": "adam"}) is False
    assert resolved("mse", **{"model.implicit_terms": True, "train.optimizer": "adam"}) is True
    assert resolved("mse", **{"model.implicit_terms": False}) is False
    assert resolved("als") is False and resolved("bpr") is False
    c = small_cfg.updated({"model.dim": 8, "train.epochs": 3, "train.patience": 30, "train.threads": 1,
                           "model.implicit_terms": False})
    fit(synth, c.model, c.train, tmp_path / "old")  # the plain MF, as before auto
    c = c.updated({"model.implicit_terms": "auto", "train.epochs": 5})
    with caplog.at_level(logging.INFO, logger="embedrec"):
        resumed = fit(synth, c.model, c.train, tmp_path / "old", resume=True)
    assert resumed.epochs_run == 5 and getattr(resumed.model, "implicit_movie", None) is None
    assert "SVD++'s terms on" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        fresh = fit(synth, c.model, c.train, tmp_path / "new")
    assert fresh.model.implicit_movie is not None
    assert caplog.text.count("model.implicit_terms auto: SVD++'s terms on") == 1
    caplog.clear()  # a resume with another optimizer is refused, and nothing said first as if it went on (a review)
    with caplog.at_level(logging.INFO, logger="embedrec"), pytest.raises(ArtifactError, match="another train.optim"):
        fit(synth, c.model, c.updated({"train.optimizer": "adam"}).train, tmp_path / "new", resume=True)
    assert "SVD++" not in caplog.text, caplog.text


def test_the_refit_trains_the_implicit_terms_the_selection_trained(synth, small_cfg, tmp_path):
    """A review: a run trained before model.implicit_terms auto (the plain MF), resumed, was refit on train+valid
    with SVD++'s terms its selection never had, and published so; the refit takes the selection's choice."""
    import json

    from embedrec.api import train_run

    base = {"model.dim": 8, "train.patience": 100, "train.threads": 1, "train.refit": True,
            "run.dir": str(tmp_path / "run")}
    old = small_cfg.updated({**base, "model.implicit_terms": False, "train.epochs": 2})
    fit(synth, old.model, old.train, tmp_path / "run", features_cfg=old.features)  # stopped before its refit
    new = small_cfg.updated({**base, "model.implicit_terms": "auto", "train.epochs": 3})
    train_run(new, resume=True)
    manifest = json.loads((tmp_path / "run" / "current" / "manifest.json").read_text())
    assert '"implicit_terms": false' in json.dumps(manifest) and '"implicit_terms": true' not in json.dumps(manifest)
    fresh = small_cfg.updated({**base, "run.dir": str(tmp_path / "fresh"), "train.epochs": 3})
    train_run(fresh)
    manifest = json.loads((tmp_path / "fresh" / "current" / "manifest.json").read_text())
    assert '"implicit_terms": true' in json.dumps(manifest)


def test_svdpp_epoch_with_distinct_movies_is_autograd_sgd_in_one_of_the_users_orders():
    """The kernel's own order of a user's examples is drawn in C; with distinct movies (each step moves the
    implicit sum the next one reads) its epoch must equal autograd SGD at batch size 1 in one of the orders
    (found by trying them all: 3! x 2!), users in the epoch's drawn order. A review's check, kept."""
    import itertools

    cfg = _cfg(lr=0.05)
    ex = [(0, 1, 4.0), (0, 2, 1.0), (0, 4, 5.0), (1, 3, 2.0), (1, 0, 4.5)]
    rated = {0: [1, 2, 4, 5], 1: [0, 3, 5]}

    def model():
        return _svdpp_model(rated)

    u, m, r = (torch.tensor([e[i] for e in ex]) for i in range(3))
    b = model()
    _hogwild_step(b, "mse", cfg, u, m, r.float(), 6)
    users = torch.randperm(2, generator=torch.Generator().manual_seed(0)).tolist()
    rows = {x: [k for k in range(len(ex)) if ex[k][0] == x] for x in range(2)}
    best = np.inf
    for p0, p1 in itertools.product(itertools.permutations(rows[0]), itertools.permutations(rows[1])):
        a, order = model(), {0: p0, 1: p1}
        for x in users:
            for k in order[x]:
                _autograd_step(a, "mse", cfg, u[k:k + 1], m[k:k + 1], r[k:k + 1].float(), None, 6)
        best = min(best, max((a.state_dict()[k] - b.state_dict()[k]).abs().max().item() for k in a.state_dict()))
    assert best < 1e-5
