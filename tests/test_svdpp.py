"""SVD++ implicit terms (model.implicit_terms): the sum, the exported factors, training and resume."""

from pathlib import Path

import numpy as np
import pytest
import torch

from embedrec.config import Config
from embedrec.data.dataset import load_dataset
from embedrec.errors import ConfigError
from embedrec.evaluate import evaluate_model
from embedrec.ingestion import ingest
from embedrec.model.factors import Factors
from embedrec.model.mf import SVDpp
from embedrec.sparse import csr
from embedrec.training.fit import build_model, factors, fit
from embedrec.training.minibatch import Batcher


def tiny_model(users, movies, n_users=3, n_movies=4, dim=2):
    m = SVDpp(n_users, n_movies, dim, rated=csr(np.asarray(users), np.asarray(movies), n_users), global_mean=3.0)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p))
    return m


def test_implicit_sum_equals_hand_computation():
    # user 0 rated movies 0 and 2; user 1 rated 1, 2 and 3; user 2 rated nothing
    m = tiny_model([0, 0, 1, 1, 1], [2, 0, 3, 1, 2])
    y = m.implicit_movie.weight.detach()
    want = torch.stack([(y[0] + y[2]) / np.sqrt(2), (y[1] + y[2] + y[3]) / np.sqrt(3), torch.zeros(2)])
    torch.testing.assert_close(m.implicit_of(torch.tensor([0, 1, 2, 1])), want[[0, 1, 2, 1]])
    # the score: mu + b_u + b_i + q_i . (p_u + implicit)
    u, i = torch.tensor([1]), torch.tensor([3])
    p, q = m.user.weight.detach()[1], m.movie.weight.detach()[3]
    hand = 3.0 + m.user_bias.weight[1, 0] + m.movie_bias.weight[3, 0] + q @ (p + want[1])
    torch.testing.assert_close(m(u, i), hand.reshape(1))
    # its L2 term: mean over the examples of |N(u)|^-1/2 sum ||y_j||^2
    sq = y.pow(2).sum(-1)
    pen = ((sq[0] + sq[2]) / np.sqrt(2) + 2 * (sq[1] + sq[2] + sq[3]) / np.sqrt(3)) / 4
    torch.testing.assert_close(m.implicit_penalty(torch.tensor([0, 1, 2, 1])), pen)


def test_gradient_of_the_implicit_sum_matches_autograd_of_a_dense_product():
    m = tiny_model([0, 0, 1, 1, 1, 2], [2, 0, 3, 1, 2, 1])
    u = torch.tensor([0, 1, 1, 2])
    w = torch.randn(4, 2)
    (m.implicit_of(u) * w).sum().backward()
    got = m.implicit_movie.weight.grad.clone()
    n = torch.zeros(3, 4)
    for uu, mm in [(0, 2), (0, 0), (1, 3), (1, 1), (1, 2), (2, 1)]:
        n[uu, mm] = 1.0
    n = n / n.sum(1, keepdim=True).sqrt()
    y = m.implicit_movie.weight.detach().clone().requires_grad_()
    ((n @ y)[u] * w).sum().backward()
    torch.testing.assert_close(got, y.grad)


def test_exported_factors_reproduce_the_model():
    pairs = np.random.default_rng(0).choice(600, 300, replace=False)  # distinct (user, movie) pairs
    users, movies = pairs // 20, pairs % 20
    m = tiny_model(users, movies, n_users=30, n_movies=20, dim=5)
    unrated = torch.zeros(20, dtype=torch.bool)
    f = factors(m, unrated.numpy())
    fx = Factors.from_dict(f, explicit=True)  # what `predict` and `recommend` score with (no clipping here)
    u, i = torch.as_tensor(users), torch.as_tensor(movies)
    with torch.no_grad():
        want = m(u, i).numpy()
    np.testing.assert_allclose(fx.predict(users, movies), want, atol=1e-5)
    # a movie without training ratings: never trained, so a zero vector and the -1000 bias like the plain model
    unrated[7] = True
    f = factors(m, unrated.numpy())
    assert f["movie_bias"][7] == -1000.0 and not f["movie_factors"][7].any()


def test_batch_loss_adds_the_implicit_penalty(synth_ds):
    ds, cfg = synth_ds
    tr = ds.splits["train"]
    model = build_model(ds.n_users, ds.n_movies, cfg.model, cfg.train, float(tr.rating.mean()),
                        rated=(tr.user, tr.movie))
    b = Batcher(model, "mse", cfg.train, ds)
    u, m, r = (torch.tensor(x[:64]) for x in (tr.user.astype(np.int64), tr.movie.astype(np.int64), tr.rating))
    with_pen = b.loss_fn(u, m, r, None)
    cfg = cfg.updated({"train.weight_decay_movie": 0.0})
    without = Batcher(model, "mse", cfg.train, ds).loss_fn(u, m, r, None)
    qm = model.movie(m)
    expected = 0.1 * (qm.pow(2).sum(-1).mean() + model.implicit_penalty(u))
    torch.testing.assert_close(with_pen - without, expected)


@pytest.fixture
def synth_ds(synth_dir, small_cfg):
    d, _ = synth_dir
    small_cfg = small_cfg.updated({"data.source": str(d)})
    ingest(small_cfg.data, small_cfg.split, output=small_cfg.data.prepared)
    small_cfg = small_cfg.updated({"model.implicit_terms": True})
    small_cfg = small_cfg.updated({"train.weight_decay_user": 0.1, "train.weight_decay_movie": 0.1})
    return load_dataset(small_cfg.data.prepared), small_cfg


def test_svdpp_learns_planted_data_and_serves_what_it_learned(synth_ds):
    ds, cfg = synth_ds
    # the autograd path (adam; train.optimizer auto trains SVD++ on hogwild: tests/test_sgd.py)
    cfg = cfg.updated({"train.epochs": 8, "train.lr": 0.01, "train.batch_size": 512, "train.optimizer": "adam"})
    r = fit(ds, cfg.model, cfg.train)
    assert isinstance(r.model, SVDpp)
    f = factors(r.model, r.unrated)
    valid = evaluate_model(f, ds, "valid", True, [10], ranking=False)["rmse"]
    tr, va = ds.splits["train"], ds.splits["valid"]
    base = float(np.sqrt(np.mean((va.rating - tr.rating.mean()) ** 2)))
    assert valid < 0.8 * base
    assert r.best_value == pytest.approx(valid)
    with torch.no_grad():
        want = r.model(torch.as_tensor(va.user.astype(np.int64)), torch.as_tensor(va.movie.astype(np.int64)))
    lo, hi = ds.rating_scale
    got = Factors.from_dict(f, True, (lo, hi)).predict(va.user, va.movie)
    np.testing.assert_allclose(got, np.clip(want.numpy(), lo, hi), atol=1e-5)


def test_resume_matches_uninterrupted_run(synth_ds, tmp_path):
    ds, cfg = synth_ds
    cfg = cfg.updated({"train.epochs": 3, "train.patience": 10, "train.batch_size": 1024, "train.optimizer": "adam"})
    full = fit(ds, cfg.model, cfg.train, tmp_path / "full")
    cfg = cfg.updated({"train.epochs": 1})
    fit(ds, cfg.model, cfg.train, tmp_path / "part")
    cfg = cfg.updated({"train.epochs": 3})
    resumed = fit(ds, cfg.model, cfg.train, tmp_path / "part", resume=True)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(v, resumed.model.state_dict()[k], rtol=0, atol=0)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]


def test_refuses_what_it_cannot_train():
    cfg = Config()
    cfg = cfg.updated({"model.implicit_terms": True})
    with pytest.raises(ConfigError, match="model.objective=explicit"):
        build_model(3, 4, cfg.model, cfg.train, 0.0, rated=([0], [1]))
    cfg = cfg.updated({"model.objective": 'explicit', "train.optimizer": 'sparse_adam'})
    with pytest.raises(ConfigError, match="sparse_adam cannot train model.implicit_terms"):
        build_model(3, 4, cfg.model, cfg.train, 0.0, rated=([0], [1]))
    hogwild = cfg.updated({"train.optimizer": "hogwild", "train.compile": True})  # compile: autograd's, not read
    assert isinstance(build_model(3, 4, hogwild.model, hogwild.train, 0.0, rated=([0], [1])), SVDpp)


def test_the_als_model_refuses_svdpp_terms_and_side_features():
    """A review: the default als fit with model.implicit_terms=true, or with model.loss=als and features.movie,
    trained the plain model without a word (and `recommend --user-features` then said to add the features it
    had been given). Both are one config error before anything is written."""
    from embedrec.training.fit import resolve_loss

    cfg = Config().updated({"model.implicit_terms": True})
    with pytest.raises(ConfigError, match=r"'model.implicit_terms': SVD\+\+ terms apply to model.objective=explicit"):
        resolve_loss(cfg.model)
    als = Config().updated({"model.loss": "als"})
    with pytest.raises(ConfigError, match="'model.loss': als trains the plain model only"):
        resolve_loss(als.model, features=True)
    assert resolve_loss(Config().model, features=True) == "softmax" and resolve_loss(als.model) == "als"


def test_a_new_users_fold_in_adds_their_implicit_sum_as_training_did():
    """An SVD++ model's trained users hold p_u + |N(u)|^-1/2 sum of y_j; a new user told ratings was folded in
    by a ridge solve on the movie vectors alone. With the run's y_j the fold-in regresses (r - mu - b_m - q.z) and
    returns p + z (on held-in ML-100K users: test RMSE 0.8953 against 0.8990 without z; session 36)."""
    from embedrec.serve.foldin import fold_in

    rng = np.random.default_rng(0)
    Q, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    f = Factors(rng.normal(size=(2, 3)), Q, np.zeros(2), rng.normal(size=6), 3.5, explicit=True)
    items = {1: 4.0, 3: 2.0, 4: 5.0}
    rows = np.array(list(items))
    z = Y[rows].sum(0) / np.sqrt(3)
    X = np.hstack([Q[rows], np.ones((3, 1))])
    target = np.array(list(items.values())) - 3.5 - f.movie_bias[rows] - Q[rows] @ z
    sol = np.linalg.solve(X.T @ X + 0.1 * 3 * np.eye(4), X.T @ target)
    p, b, got_rows = fold_in(f, items, reg=0.1, implicit=Y)
    np.testing.assert_allclose(p, sol[:3] + z, rtol=1e-5, atol=1e-6)
    assert b == pytest.approx(sol[3]) and got_rows.tolist() == rows.tolist()
    plain, _, _ = fold_in(f, items, reg=0.1)  # a plain model (or a run saved before y_j were): no z
    assert not np.allclose(plain, p)


def test_an_svdpp_runs_new_user_is_the_same_in_memory_and_from_the_saved_run(synth_ds, tmp_path):
    """The y_j travel with the run (implicit_movie.npy, checksummed like the factors): the model in memory and
    the run opened from disk fold a new user in alike, with the implicit sum (a plain model has none)."""
    import embedrec as er
    from embedrec.model.factors import IMPLICIT_MOVIE

    ds, cfg = synth_ds
    cfg = cfg.updated({"train.epochs": 3, "train.optimizer": "hogwild", "train.lr": 0.01,
                       "run.dir": str(tmp_path / "run")})
    model = er.train(ds, cfg)
    model.save()
    opened = er.open(tmp_path / "run", cfg)
    assert next((tmp_path / "run").glob("artifacts-*/" + IMPLICIT_MOVIE + ".npy")).exists()
    mem, run = model.engine, opened.engine
    np.testing.assert_array_equal(mem.implicit_movie(), run.implicit_movie())
    rated = {int(m): 4.0 for m in ds.movies.movie_id[:5]}
    p1, b1, _, _ = mem.fold_in_parts(rated=rated)
    p2, b2, _, _ = run.fold_in_parts(rated=rated)
    np.testing.assert_allclose(p1, p2, rtol=1e-6)
    assert b1 == pytest.approx(b2)
    plain = er.train(ds, cfg.updated({"model.implicit_terms": False}))
    assert plain.engine.implicit_movie() is None
    # a re-sealed table that does not fit the model (a red team: cut short, an internal IndexError; an integer
    # table served as it was): refused at the first new user, naming the file
    import json
    import shutil

    from embedrec.errors import ArtifactError
    from embedrec.fsutil.integrity import file_entry, seal

    y = run.implicit_movie()
    for name, bad in (("short", y[:3]), ("int", y.astype(np.int64)), ("nan", np.where(y == y[2, 0], np.nan, y))):
        copy = Path(shutil.copytree(tmp_path / "run", tmp_path / name, symlinks=True))
        cur = copy / "current"
        np.save(cur / f"{IMPLICIT_MOVIE}.npy", bad)
        m = json.loads((cur / "manifest.json").read_text())
        m["checksums"][f"{IMPLICIT_MOVIE}.npy"] = file_entry(cur / f"{IMPLICIT_MOVIE}.npy")
        (cur / "manifest.json").write_text(json.dumps(seal(m)))
        with pytest.raises(ArtifactError, match=r"implicit_movie.npy (holds a|row 2 is not finite)"):
            er.open(copy, cfg).engine.fold_in_parts(rated=rated)
