"""The contract every training path and every index kind keeps (issue 14), on one small data set with a known
answer: users prefer taste clusters of movies (``synth.write_movielens(taste=...)``).

For each training path (implicit ALS with the C kernel and with the torch engine, hogwild mse and bpr, the
minibatch optimisers, full and sampled softmax, a feature model):
- it learns: a ranking model beats most-popular NDCG@10, an explicit one the global-mean RMSE, on valid and test;
- ``fit(..., resume=True)`` after an interrupted run gives bit-identical weights to an uninterrupted run;
- ``train.factors`` (and ``Factors`` over them, in memory and from the saved run) reproduce the torch model's scores;
and through the public API, in memory and from the saved run with each index kind (flat, hnsw, ivf, ivf_sq8):
- top-k equals a numpy brute force over the factors (approximate kinds: recall@10 at least ``RECALL``), with the
  movies the user gave in train and valid masked, and the scores are the model's;
- a seen movie never comes back, and k as large as the catalogue gives every movie the user has not seen;
- similar movies are the brute-force cosine top-k; genre and year filters hold and still give k movies;
- unknown ids follow ``missing=`` ('error', 'skip', 'popular'; predict: 'fallback', 'error', 'skip').

Each path trains three times (once through ``er.train``, once interrupted and resumed, once uninterrupted), single-threaded, dim 8.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import embedrec as er
from embedrec.artifacts import rebuild_index
from embedrec.config import IndexConfig, load_config
from embedrec.data.synth import write_movielens
from embedrec.errors import Interrupted, NotFoundError
from embedrec.model.factors import Factors
from embedrec.training import fit as T
from embedrec.training import select

# 200 users x 150 movies x 6,000 ratings; 80% of a user's ratings come from their taste clusters, so taste, not
# popularity alone, predicts the held-out movies (on this set most-popular NDCG@10 is about 0.30, ALS 0.44)
DATA = dict(n_users=200, n_movies=150, n_ratings=6000, rank=4, seed=1, taste=0.8, clusters=8)
COMMON = ["model.dim=8", "train.als_dims=auto", "train.threads=1", "train.refit=false", "train.patience=100"]
INTERRUPT_AFTER = 2  # epochs
K = 10
RECALL = 0.9  # approximate kinds: mean recall@10 against the brute force (150 movies: both search nearly all)
BPR = ["model.loss=bpr", "train.negatives=4", "train.weight_decay_user=0.001", "train.weight_decay_movie=0.001"]


@dataclass(frozen=True)
class TrainingPath:
    sets: tuple[str, ...]
    runner: str                # the epoch runner fit() must pick: ALS, Hogwild or Minibatch
    engine: str = "auto"       # ALS: 'torch' forces the torch engine (no C kernel)


PATHS = {
    "als-c": TrainingPath(("train.als_reg=0.02", "train.epochs=6"), "ALS"),
    "als-torch": TrainingPath(("train.als_reg=0.02", "train.epochs=6"), "ALS", engine="torch"),
    "hogwild-mse": TrainingPath(("model.objective=explicit", "train.optimizer=hogwild", "train.lr=0.01", "train.epochs=6"),
                        "Hogwild"),
    "hogwild-bpr": TrainingPath((*BPR, "train.optimizer=hogwild", "train.lr=0.1", "train.epochs=10"), "Hogwild"),
    "adam-mse": TrainingPath(("model.objective=explicit", "train.optimizer=adam", "train.lr=0.01", "train.epochs=6"),
                             "Minibatch"),
    "sgd-mse": TrainingPath(("model.objective=explicit", "train.optimizer=sgd", "train.lr=0.05", "train.epochs=6",
                     "train.batch_size=128"), "Minibatch"),
    "adagrad-bpr": TrainingPath((*BPR, "train.optimizer=adagrad", "train.lr=0.1", "train.epochs=8", "train.batch_size=256"),
                        "Minibatch"),
    "sparse_adam-bpr": TrainingPath((*BPR, "train.optimizer=sparse_adam", "train.lr=0.05", "train.epochs=10",
                             "train.batch_size=256"), "Minibatch"),
    "softmax-full": TrainingPath(("model.loss=softmax", "train.lr=0.01", "train.epochs=6", "train.batch_size=256"),
                         "Minibatch"),
    "softmax-sampled": TrainingPath(("model.loss=softmax", "train.softmax_full_max=10", "train.negatives=32", "train.lr=0.01",
                             "train.epochs=6", "train.batch_size=256"), "Minibatch"),
    "features-softmax": TrainingPath(("model.loss=softmax", "features.movie=[genre]", "train.lr=0.01", "train.epochs=6",
                              "train.batch_size=256"), "Minibatch"),
}
SOURCES = ["memory", "flat", "hnsw", "ivf", "ivf_sq8"]  # the TrainedModel in memory, then the saved run with each index kind


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    write_movielens(tmp / "src", **DATA)
    cfg = load_config(None, [f"data.prepared={tmp / 'ds'}"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        ds = er.ingest(str(tmp / "src"), cfg)
    return tmp, ds


@pytest.fixture(scope="module", params=list(PATHS))
def path(request):
    return request.param


def _patched(mp, tmp, spec: TrainingPath, runners: list):
    """Cache in tmp; the torch ALS engine when asked; every runner recorded in ``runners``: fit()'s, and the user
    re-solve's of the selection (select.choose_user_unobserved)."""
    mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
    if spec.engine == "torch":
        import embedrec.training.als

        mp.setattr(embedrec.training.als, "_kernel", lambda: None)
    real = T.make_runner

    def recording(*a, **k):
        runners.append(real(*a, **k))
        return runners[-1]

    mp.setattr(T, "make_runner", recording)
    mp.setattr(select, "make_runner", recording)


@pytest.fixture(scope="module")
def trained(path, data, tmp_path_factory):
    """The path trained once through er.train, saved, and opened with each index kind."""
    spec, (_, ds) = PATHS[path], data
    tmp = tmp_path_factory.mktemp(path)
    cfg = load_config(None, [*COMMON, *spec.sets])
    runners: list = []
    with pytest.MonkeyPatch.context() as mp:
        _patched(mp, tmp, spec, runners)
        model = er.train(ds, cfg)
    model.save(tmp / "run")
    return SimpleNamespace(name=path, spec=spec, cfg=cfg, ds=ds, model=model, runners=runners, tmp=tmp,
                           explicit=cfg.model.objective == "explicit", opened={})


def _source(t, source: str):
    """The model to ask: in memory, or the saved run (its index rebuilt as ``source`` in a copy), opened once."""
    if source == "memory":
        return t.model
    if source not in t.opened:
        run = t.tmp / "run"
        if source != "flat":
            run = t.tmp / f"run-{source}"
            shutil.copytree(t.tmp / "run", run, symlinks=True)
            rebuild_index(run, IndexConfig(kind=source, recall_sample=200))
        t.opened[source] = er.open(run)
        assert t.opened[source].engine.run.manifest["index"]["kind"] == source
    return t.opened[source]


@pytest.fixture(scope="module")
def resumed(trained):
    """The same path interrupted after INTERRUPT_AFTER epochs (Ctrl-C in on_epoch), then resumed; and the same fit
    uninterrupted."""
    t, calls = trained, []

    def stop(row):
        calls.append(row)
        if len(calls) == INTERRUPT_AFTER:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        _patched(mp, t.tmp, t.spec, [])
        with pytest.raises(Interrupted, match=f"checkpoint of epoch {INTERRUPT_AFTER}"):
            T.fit(t.ds, t.cfg.model, t.cfg.train, t.tmp / "cut", on_epoch=stop, features_cfg=t.cfg.features)
        cut = T.fit(t.ds, t.cfg.model, t.cfg.train, t.tmp / "cut", resume=True, features_cfg=t.cfg.features)
        # against the same fit uninterrupted (er.train's differs for als: its selection then re-solves the users)
        whole = T.fit(t.ds, t.cfg.model, t.cfg.train, t.tmp / "whole", features_cfg=t.cfg.features)
        return cut, whole


# ------------------------------------------------------------------------------------------------ helpers
def _seen(ds) -> list[np.ndarray]:
    """Per user row: the movie rows they gave in train and valid (what recommendations exclude)."""
    parts = [ds.splits[s] for s in ("train", "valid")]
    u = np.concatenate([p.user for p in parts])
    m = np.concatenate([p.movie for p in parts])
    return [np.unique(m[u == row]) for row in range(ds.n_users)]


def _raw_scores(f: Factors) -> np.ndarray:
    """Every (user, movie) ranking score, float64: p.q + b_m (+ mu + b_u for explicit models, unclipped)."""
    s = f.user.astype(np.float64) @ f.movie.astype(np.float64).T
    if f.movie_bias is not None:
        s += f.movie_bias[None, :]
    if f.explicit:
        s += f.global_mean + (f.user_bias[:, None] if f.user_bias is not None else 0.0)
    return s


def _rows(model, ids) -> np.ndarray:
    rows, _ = model.engine.movie_rows(list(ids))
    assert (rows >= 0).all()
    return rows


# ------------------------------------------------------------------------------------------------ the contract
def test_the_path_trains_with_the_runner_it_names(trained):
    t = trained
    # ALS: a second and third runner fit train.als_unobserved: auto's half and twice its weight, a fourth re-solves
    # the selected model's users for train.als_user_unobserved: auto; train.als_dims: auto runs those four again at
    # model.dim x 2
    assert len(t.runners) == 1 + 7 * (t.spec.runner == "ALS")
    assert all(type(r).__name__ == t.spec.runner for r in t.runners)
    runner, result = t.runners[0], t.model.result
    if t.spec.runner == "ALS":
        assert runner.solver.torch_engine == (t.spec.engine == "torch") and result.loss == "als"
    elif t.name.startswith("softmax") or t.name.startswith("features"):
        assert result.loss == "softmax" and runner.batcher.full == (t.name != "softmax-sampled")
    assert (type(result.model).__name__ == "FeatureMF") == t.name.startswith("features")
    assert result.epochs_run == t.cfg.train.epochs


def test_the_model_in_memory_says_its_loss_as_its_saved_run_does(trained):
    """A notebook review: a bpr model from er.train said 'this model (its loss unknown)' in its messages, where the
    same model saved and opened said 'this model (bpr)'."""
    saved = _source(trained, "flat").engine.loss
    assert saved is not None and trained.model.engine.loss == saved


@pytest.mark.parametrize("split", ["valid", "test"])
def test_learns_the_planted_tastes(trained, split):
    m = trained.model.metrics["splits"][split]
    if trained.explicit:
        assert m["model"]["rmse"] < m["global_mean"]["rmse"], (m["model"]["rmse"], m["global_mean"]["rmse"])
    else:
        got, pop = m["model"]["ndcg@10"], m["most_popular"]["ndcg@10"]
        assert got > pop, (got, pop)


def test_resume_after_an_interrupt_is_bit_exact(trained, resumed):
    resumed, whole = resumed
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    assert resumed.best_epoch == whole.best_epoch
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert [key for key, value in a.items() if not torch.equal(torch.as_tensor(b[key]), torch.as_tensor(value))] == []


def test_exported_factors_reproduce_the_model_scores(trained):
    t, result = trained, trained.model.result
    f = Factors.from_dict(T.factors(result.model, result.unrated), t.explicit)  # no rating scale: unclipped
    u, m = np.meshgrid(np.arange(t.ds.n_users), np.arange(t.ds.n_movies), indexing="ij")
    u, m = u.ravel(), m.ravel()
    if result.unrated is not None:  # movies without training ratings are masked by design: compare the others
        keep = ~result.unrated[m]
        u, m = u[keep], m[keep]
    if isinstance(result.model, torch.nn.Module):
        with torch.no_grad():
            want = result.model(torch.from_numpy(u), torch.from_numpy(m)).double().numpy()
    else:  # als.Tables (numpy, no torch): the model's score is <p_u, q_m> of its own tables
        want = np.einsum("ij,ij->i", result.model.user_table[u].astype(np.float64),
                         result.model.movie_table[m].astype(np.float64))
    np.testing.assert_allclose(f.predict(u, m), want, rtol=1e-5, atol=1e-5)
    # what the model in memory serves with, and what the saved run holds, are those factors
    opened = _source(t, "flat")
    for served in (t.model.factors, opened.factors):
        np.testing.assert_array_equal(served.user, f.user)
        np.testing.assert_array_equal(served.movie, f.movie)
        for a, b in ((served.user_bias, f.user_bias), (served.movie_bias, f.movie_bias)):
            assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))
    pairs = [(t.model.user_ids[i], t.model.movie_ids[j]) for i, j in zip(u[:500:7], m[:500:7])]
    pred = opened.predict(pairs)
    assert pred.fallback == ["none"] * len(pairs)
    np.testing.assert_allclose(pred.scores, opened.factors.clip(want[:500:7]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("source", SOURCES)
def test_top_k_equals_brute_force(trained, source):
    t = trained
    model = _source(t, source)
    raw, seen = _raw_scores(model.factors), _seen(t.ds)
    users = list(model.user_ids)
    got = model.recommend(users, k=K)
    assert got.user_ids == users and got.unknown == [] and got.fallback == [False] * len(users)
    rows = np.stack([_rows(model, ids) for ids in got.movie_ids])  # users x K, or a short list fails here
    assert rows.shape == (len(users), K) and all(np.unique(r).size == K for r in rows)
    assert not any(np.isin(r, seen[u]).any() for u, r in enumerate(rows))
    # the scores served are the model's scores of those movies (explicit: predicted ratings, clipped)
    mine = np.take_along_axis(raw, rows, 1)
    np.testing.assert_allclose(np.stack(got.scores), model.factors.clip(mine), rtol=1e-5, atol=1e-4)
    masked = raw.copy()
    for u, s in enumerate(seen):
        masked[u, s] = -np.inf
    best = np.argsort(-masked, axis=1, kind="stable")[:, :K]
    if source in ("memory", "flat"):  # exact: the k best scores, best first (ties may swap movies)
        np.testing.assert_allclose(mine, np.take_along_axis(masked, best, 1), rtol=0, atol=1e-5)
    recall = np.mean([np.intersect1d(r, b).size / K for r, b in zip(rows, best)])
    assert recall >= (1.0 if source in ("memory", "flat") else RECALL) - 1e-9, recall


@pytest.mark.parametrize("source", SOURCES)
def test_never_returns_a_seen_movie(trained, source):
    t = trained
    model = _source(t, source)
    seen, n = _seen(t.ds), t.ds.n_movies
    users = list(model.user_ids[:: 7])
    for k in (1, n):  # the best movie, and every movie there is
        got = model.recommend(users, k=k)
        for uid, ids in zip(got.user_ids, got.movie_ids):
            row = int(np.flatnonzero(model.user_ids == uid)[0])
            rows = _rows(model, ids)
            assert not np.isin(rows, seen[row]).any()
            if k == n:  # every movie the user has not seen (an approximate index is asked for all it has)
                assert sorted(rows.tolist()) == sorted(set(range(n)) - set(seen[row].tolist()))
    assert any(np.isin(_rows(model, ids), seen[0]).any()
               for ids in model.recommend(users[:1], k=n, exclude_seen=False).movie_ids)


@pytest.mark.parametrize("source", SOURCES)
def test_unknown_ids_follow_the_policy(trained, source):
    t = trained
    model = _source(t, source)
    known = [model.user_ids[0].item(), model.user_ids[1].item()]
    for unknown in ("nobody", 10 ** 9):
        said = "'nobody' is not a user id of this model (its ids are integers)" if unknown == "nobody" and \
            model.user_ids.dtype.kind in "iu" else f"user '{unknown}' is not in the training data"
        with pytest.raises(NotFoundError, match=re.escape(said)) as e:
            model.recommend([known[0], unknown], k=K)
        assert (e.value.kind, e.value.id) == ("user", unknown)
        skip = model.recommend([known[0], unknown, known[1]], k=K, missing="skip")
        assert skip.user_ids == known and skip.unknown == [unknown] and skip.fallback == [False, False]
        alone = model.recommend([known[0]], k=K)
        np.testing.assert_array_equal(skip.movie_ids[0], alone.movie_ids[0])
        pop = model.recommend([unknown, known[0]], k=K, missing="popular")
        assert pop.user_ids == [unknown, known[0]] and pop.fallback == [True, False]
        # the most popular movies (ratings in train and valid), scored by that count
        counts = np.bincount(np.concatenate([t.ds.splits[s].movie for s in ("train", "valid")]),
                             minlength=t.ds.n_movies)
        np.testing.assert_array_equal(pop.scores[0], np.sort(counts)[::-1][:K])
        np.testing.assert_array_equal(counts[_rows(model, pop.movie_ids[0])], pop.scores[0])
        np.testing.assert_array_equal(pop.movie_ids[1], alone.movie_ids[0])
    movie = model.movie_ids[0].item()
    pairs = [(known[0], movie), ("nobody", movie), (known[0], "no-movie")]
    with pytest.raises(NotFoundError, match=re.escape("'nobody' is not a user id of this model (its ids are integers)"
                                                      "; pass missing='fallback'")):
        model.predict(pairs, missing="error")
    skip = model.predict(pairs, missing="skip")
    assert (skip.user_ids, skip.movie_ids, skip.fallback) == ([known[0]], [movie], ["none"])
    fb = model.predict(pairs)
    assert fb.fallback == ["none", "user_unknown", "movie_unknown"]
    f = model.factors
    if t.explicit:  # Surprise's answer: the terms of the side that is known
        lo, hi = f.rating_scale
        np.testing.assert_allclose(fb.scores[1:], [np.clip(f.global_mean + f.movie_bias[0], lo, hi),
                                                   np.clip(f.global_mean + f.user_bias[0], lo, hi)], rtol=1e-6)
    else:  # implicit models: the movie bias for an unknown user where there is one; nothing for an unknown movie
        if f.movie_bias is None:
            assert np.isnan(fb.scores[1])
        else:
            assert fb.scores[1] == pytest.approx(f.movie_bias[0])
        assert np.isnan(fb.scores[2])


@pytest.mark.parametrize("source", SOURCES)
def test_similar_movies_equal_brute_force_cosine(trained, source):
    model = _source(trained, source)
    Q = model.factors.movie.astype(np.float64)
    unit = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)  # a movie is not similar to itself
    recall = []
    for row in range(0, trained.ds.n_movies, 5):
        got = model.similar(model.movie_ids[row].item(), k=K)
        rows = _rows(model, got.movie_ids[0])
        assert rows.size == K and row not in rows and np.unique(rows).size == K
        np.testing.assert_allclose(got.scores[0], cos[row, rows], rtol=0, atol=1e-4)
        best = np.argsort(-cos[row], kind="stable")[:K]
        if source in ("memory", "flat"):
            np.testing.assert_allclose(cos[row, rows], cos[row, best], rtol=0, atol=1e-5)
        recall.append(np.intersect1d(rows, best).size / K)
    assert np.mean(recall) >= (1.0 if source in ("memory", "flat") else RECALL) - 1e-9, np.mean(recall)


@pytest.mark.parametrize("source", SOURCES)
def test_filters_hold_and_still_give_k(trained, source):
    """A genre and a year filter: only movies passing both, still k of them, the best of those by the model:
    exactly on every index kind, since a filter leaving at most FILTER_EXACT_MAX movies is scored exactly (a
    review: HNSW's walk under a narrow filter found 0.92-0.94 of the exact top 10 on ML-100K)."""
    from embedrec.serve.recommender import FILTER_EXACT_MAX

    t = trained
    model = _source(t, source)
    movies = t.ds.movies
    genre = movies["genres"].explode().value_counts().index[0]
    ok = np.array([genre in g for g in movies["genres"]]) & (movies["year"].to_numpy() >= 1950)
    raw, seen = _raw_scores(model.factors), _seen(t.ds)
    users = list(model.user_ids[::5])
    got = model.recommend(users, k=K, genres=[genre.lower()], year_min=1950)
    recall = []
    for uid, ids in zip(got.user_ids, got.movie_ids):
        row = int(np.flatnonzero(model.user_ids == uid)[0])
        rows = _rows(model, ids)
        allowed = np.setdiff1d(np.flatnonzero(ok), seen[row])
        assert rows.size == min(K, allowed.size) and np.isin(rows, allowed).all()
        best = allowed[np.argsort(-raw[row, allowed], kind="stable")[:K]]
        np.testing.assert_allclose(raw[row, rows], raw[row, best], rtol=0, atol=1e-5)
        recall.append(np.intersect1d(rows, best).size / max(best.size, 1))
    assert ok.sum() <= FILTER_EXACT_MAX and np.mean(recall) == 1.0, np.mean(recall)


# the mean top-10 overlap of a training user's own list with the list of the same movies folded in as a new user:
# the fold-in repeats each objective's user half (als, softmax) where the manifest records it; bpr and the
# explicit models keep their fixed solves. Measured here (refit=false, so the valid rows folded in are new to the
# model): als 0.87, softmax 0.83-0.85; with the fixed Hu et al. solve of before, als 0.79, softmax 0.58-0.66
FOLD_IN_OVERLAP = {"als-c": 0.84, "als-torch": 0.84, "softmax-full": 0.78, "softmax-sampled": 0.78,
                   "features-softmax": 0.78}


def test_a_training_users_movies_folded_in_give_that_users_list(trained):
    """What `recommend --liked` gives someone who likes exactly what a training user rated is that user's own
    list (the objectives whose user half the fold-in repeats), for the model in memory and the saved run."""
    if trained.explicit or trained.name not in FOLD_IN_OVERLAP:
        pytest.skip("explicit and bpr models fold in with a fixed solve, not their training's")
    for source in ("memory", "flat"):
        engine = _source(trained, source).engine
        seen = _seen(trained.ds)
        overlaps = []
        for row in range(0, engine.factors.n_users, 4):
            p, b, liked = engine.fold_in(list(engine.movie_ids[seen[row]]))
            ids, _ = engine.recommend_vector(p, b, 10, liked)
            mine, _ = engine.recommend_rows(np.array([row]), 10)
            overlaps.append(np.intersect1d(ids, mine[0]).size / 10)
        assert np.mean(overlaps) >= FOLD_IN_OVERLAP[trained.name], (source, np.mean(overlaps))


def test_a_flat_run_answers_as_its_faiss_index_would(trained):
    """A flat run is served with numpy (no FAISS in the process, tests/test_cold_start.py): the same movies, in
    the same order, with the same scores (to float32 rounding) as searching the run's own FAISS files the way
    an approximate index is searched (k + seen candidates, seen movies dropped), for users, new users and
    similar movies."""
    from embedrec.serve import index as ix
    from embedrec.serve import recommender as R

    engine = _source(trained, "flat").engine
    seen = _seen(trained.ds)
    rows = np.arange(engine.factors.n_users)
    for k in (1, K, engine.factors.n_movies):
        ids, scores = engine.recommend_rows(rows, k)
        q = R.augment_users(np.asarray(engine.factors.user))
        excl = (np.repeat(rows, [s.size for s in seen]), np.concatenate(seen).astype(np.int64))
        ref_ids, ref_scores, short = ix.search_excluding(engine.ip_index, q, excl, k, None, engine.factors.n_movies)
        assert short.size == 0  # an exact index reaches every movie
        for u in rows:
            np.testing.assert_array_equal(ids[u], ref_ids[u])
            want = engine.factors.clip(ref_scores[u] + engine.factors.user_offset([u])[0])
            np.testing.assert_allclose(scores[u], want, rtol=1e-6, atol=1e-6)
    p, b, liked = engine.fold_in(list(engine.movie_ids[:3]))
    ids, _ = engine.recommend_vector(p, b, K, liked)
    ref, _, _ = ix.search_excluding(engine.ip_index, R.augment_users(p[None, :]),
                             (np.zeros(liked.size, np.int64), liked), K, None, engine.factors.n_movies)
    np.testing.assert_array_equal(ids, ref[0])
    for row in range(0, engine.factors.n_movies, 7):
        ids, scores = engine.similar(row, K)
        D, I = engine.cos_index.search(R.normalise(np.asarray(engine.factors.movie[row:row + 1])), K + 1)
        keep = I[0] != row
        np.testing.assert_array_equal(ids, I[0][keep][:K])
        np.testing.assert_allclose(scores, D[0][keep][:K], rtol=1e-6, atol=1e-6)


def test_equal_scores_come_in_row_order():
    """Exact search breaks ties by movie row (the smaller first), also across the k-th place, whatever the batch,
    and FAISS's IndexFlatIP finds the same scores (which of several equal movies it keeps is its heap's choice)."""
    import faiss

    from embedrec.model.factors import exact_topk

    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, (40, 3)).astype(np.float32)  # many movies score alike
    Qs = rng.integers(0, 3, (25, 3)).astype(np.float32)
    excl = (np.array([0, 0, 3]), np.array([5, 9, 1]))
    for k in (1, 4, 11, 40):
        for batch in (Qs, Qs[:1]):
            mine = excl[0] < len(batch)
            ids, scores = exact_topk(batch, X, (excl[0][mine], excl[1][mine]), k)
            for j, (i, s) in enumerate(zip(ids, scores)):
                raw = X @ batch[j]
                raw[excl[1][excl[0] == j]] = -np.inf
                want = np.lexsort((np.arange(40), -raw))[:k]
                want = want[raw[want] > -np.inf]
                np.testing.assert_array_equal(i, want)
                np.testing.assert_array_equal(s, raw[want])
            for allowed in (np.array([30, 2, 5, 9, 17, 1, 2]), np.arange(0, 40, 3), np.arange(25)):  # narrow, wide
                ids, scores = exact_topk(batch, X, (excl[0][mine], excl[1][mine]), k, allowed)  # (scored alone)
                for j, (i, s) in enumerate(zip(ids, scores)):
                    raw = X @ batch[j]
                    raw[excl[1][excl[0] == j]] = -np.inf
                    raw[np.setdiff1d(np.arange(40), allowed)] = -np.inf
                    want = np.lexsort((np.arange(40), -raw))[:k]
                    np.testing.assert_array_equal(i, want[raw[want] > -np.inf])
                    np.testing.assert_array_equal(s, raw[i])
        index = faiss.IndexFlatIP(3)
        index.add(X)
        D, _ = index.search(Qs[1:], k)  # rows without exclusions
        np.testing.assert_array_equal(np.stack(exact_topk(Qs[1:], X, (np.zeros(0, int),) * 2, k)[1]), D)


def test_similar_under_a_narrow_filter_scores_those_movies_alone_with_the_same_answer():
    """Factors.similar with a filter leaving under half the movies scores them alone (a review: it normalised
    and scored the whole catalogue per query, 1.7 s at 1M movies for a 5,000-movie filter): the same movies, in
    the same order (ties by row), as masking the whole catalogue."""
    from embedrec.model.factors import Factors, normalise

    rng = np.random.default_rng(5)
    M = rng.integers(-2, 3, (60, 4)).astype(np.float32)  # many equal cosines
    f = Factors(np.zeros((1, 4), np.float32), M, None, np.zeros(60, np.float32))
    Qn = normalise(M)
    for row, allowed in ((3, np.array([40, 3, 7, 7, 12, 59, 1])), (0, np.arange(1, 29)), (9, np.array([9])),
                         (5, np.arange(0, 60, 2))):
        for k in (1, 3, 50):
            ids, scores = f.similar(row, k, allowed)
            s = (Qn @ Qn[row]).astype(np.float32)
            s[row] = -np.inf
            s[np.setdiff1d(np.arange(60), allowed)] = -np.inf
            want = np.lexsort((np.arange(60), -s))[:k]
            want = want[np.isfinite(s[want])]
            np.testing.assert_array_equal(ids, want)
            np.testing.assert_allclose(scores, s[want], rtol=0, atol=1e-6)


def test_ivf_sq8_is_faiss_own_factory_index_with_the_configured_lists(tmp_path):
    """index.kind=ivf_sq8 builds FAISS's "IVF{nlist},SQ8" (8-bit codes) with index.nlist and index.nprobe, and
    the build raises nprobe until recall@10 reaches index.target_recall, as for ivf."""
    import faiss

    from embedrec.serve import index as ix

    rng = np.random.default_rng(0)
    f = {"movie_factors": rng.normal(size=(3000, 16)).astype(np.float32),
         "movie_bias": rng.normal(size=3000).astype(np.float32),
         "user_factors": rng.normal(size=(300, 16)).astype(np.float32)}
    meta = ix.build_indexes(tmp_path, f, IndexConfig(kind="ivf_sq8", nlist=40, nprobe=2, recall_sample=300,
                                                     target_recall=0.0), "x")
    assert meta["kind"] == "ivf_sq8" and meta["params"] == {"nlist": 40, "nprobe": 2, "nprobe_similar": 2}
    raw = faiss.read_index(str(tmp_path / ix.IP_FILE))
    assert isinstance(faiss.downcast_index(raw), faiss.IndexIVFScalarQuantizer)
    assert faiss.extract_index_ivf(raw).code_size == 16 + 2  # a byte per coordinate ([q_m, b_m] and the MIPS one)
    meta = ix.build_indexes(tmp_path, f, IndexConfig(kind="ivf_sq8", nlist=40, nprobe=2, recall_sample=300), "x")
    assert meta["params"]["nprobe"] > 2 and meta["recall@10"] >= 0.95
    loaded = ix.load_index(tmp_path / ix.IP_FILE, meta, "ip", 3000, 17)
    assert loaded.breadth() == meta["params"]["nprobe"]


def test_top_k_puts_a_nan_score_last():
    from embedrec.sparse import topk_from_scores

    top, vals = topk_from_scores(np.array([[1, np.nan, 3, 2, np.nan]], np.float32), 3)
    assert top.tolist() == [[2, 3, 0]] and vals.tolist() == [[3.0, 2.0, 1.0]]


def test_the_torch_top_k_orders_ties_as_the_cpu_top_k_does():
    """On a GPU the scores' top k is torch's, whose order of equal scores is the device's: the most-popular
    baseline's equal counts gave train and evaluate other lists and metrics there than the CPU (an H200, session
    36). topk_lower_first puts equal scores lowest column first, as topk_from_scores; checked on torch's CPU."""
    import torch

    from embedrec.sparse import topk_from_scores, topk_lower_first

    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(64, 40)).astype(np.float32)  # few values: ties everywhere, straddling the cut
    s[rng.random(s.shape) < 0.3] = -np.inf                     # excluded pairs
    s[5, :] = -np.inf                                          # a row with nothing to list
    s[6, 3:] = -np.inf                                         # a row with fewer than k to list
    for k in (1, 5, 10, 40, 50):
        top, vals = topk_lower_first(torch.from_numpy(s), k)
        want_top, want_vals = topk_from_scores(s, k)
        assert top.tolist() == want_top.tolist(), k
        assert vals.tolist() == want_vals.tolist(), k
    assert topk_lower_first(torch.tensor([[2.0, 5.0, 5.0, 1.0, 5.0]]), 2)[0].tolist() == [[1, 2]]


def test_the_torch_top_k_never_lists_a_nan_score_first():
    """A review: torch.topk ranks NaN first, and the tie pass then dropped the real candidates after it."""
    import torch

    from embedrec.sparse import topk_lower_first

    top, vals = topk_lower_first(torch.tensor([[float("nan"), 5.0, 4.0, 3.0, 2.0]]), 3)
    assert top.tolist() == [[1, 2, 3]] and vals.tolist() == [[5.0, 4.0, 3.0]]


def test_many_queries_rank_with_the_c_top_k_as_argpartition_ranks_them(monkeypatch):
    """exact_topk ranks 64 or more queries with the compiled one-pass top-k on every core (a scale review: all
    users' lists 3x slower than a dense top-k): the same movies, order and scores as numpy's argpartition, ties
    to the lower movie, excluded pairs and a filter kept out, short lists short."""
    import embedrec.model.factors as F
    from embedrec.sparse import topk_kernel

    if topk_kernel() is None:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(3)
    X = rng.integers(-3, 4, (500, 4)).astype(np.float32)  # few distinct scores: ties everywhere
    Q = rng.integers(-2, 3, (300, 4)).astype(np.float32)
    excl = (np.concatenate([np.repeat(np.arange(300), 40), np.zeros(495, np.int64)]),
            np.concatenate([rng.integers(0, 500, 300 * 40), np.arange(495)]))  # query 0: 5 movies left
    allowed = np.sort(rng.choice(500, 400, replace=False))
    for k, a in ((10, None), (50, None), (10, allowed)):
        fast = F.exact_topk(Q, X, excl, k, a)
        monkeypatch.setattr(F, "FAST_TOPK_MIN", 10 ** 9)
        slow = F.exact_topk(Q, X, excl, k, a)
        monkeypatch.setattr(F, "FAST_TOPK_MIN", 64)
        for (fi, fd), (si, sd) in zip(zip(*fast), zip(*slow)):
            np.testing.assert_array_equal(fi, si)
            np.testing.assert_array_equal(fd, sd)
