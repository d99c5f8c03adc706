"""train.als_lowpass (training/lowpass.py in the default als model): GF-CF's ideal low-pass block served as k more
columns of the user and movie tables, its a (movies x k) in lowpass_a.npy and its columns and weight in the
manifest's training_ratings.solve.lowpass. Known answers on saved runs: the record and the file as trained, a known
user's re-solve and a new user's fold-in give the served block (w x the sum of a's rows of the movies trained on),
explanations add up with it, auto chooses on valid (and is off without a valid split), a damaged run is refused,
a run without the block opens as before, and update-users keeps the block."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec import run_checks
from embedrec.cli import main
from embedrec.config import load_config
from embedrec.errors import ArtifactError
from embedrec.fsutil.integrity import file_entry, seal
from embedrec.serve import foldin
from embedrec.serve.update import als_resolve, new_user_weights, trained_pairs
from embedrec.training import lowpass

sys.path.insert(0, str(Path(__file__).parent))
from test_trend import _cfg  # noqa: E402  (an als config of dim 8, six epochs, one thread)
from test_update import _tastes_dataset  # noqa: E402  (six planted tastes, in memory)

BASE = ("model.dim=8", "train.epochs=3", "train.threads=1", "train.als_dims=[]")
EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.float64))


def _synth_run(tmp: Path, synth: Path, name: str, *sets: str):
    """synth_dir ingested (its own prepared folder: data.* and split.* are ingest's) and trained, saved, opened."""
    cfg = load_config(None, [f"data.prepared={tmp / name / 'ds'}", f"run.dir={tmp / name / 'run'}", *BASE, *sets])
    model = er.train(er.ingest(str(synth), cfg), cfg)
    model.save()
    return model, er.open(cfg.run.dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_dir):
    """On synth_dir (300 users x 200 movies, planted rank 4): 'block', the block set at 1 (its default 128 columns,
    no recent popularity); 'trend', the block at 1 with 16 columns, recent popularity at 2 and data.min_rating 3;
    'default', train.als_lowpass left auto (chosen on valid: 0 here); 'novalid', auto without a validation split;
    'novalid_set', the block set at 0.5 without one.
    Each (the trained model in memory, the saved run opened)."""
    tmp = tmp_path_factory.mktemp("lowpass-model")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        for name, sets in (("block", ("train.als_lowpass=1", "train.als_trend=0")),
                           ("trend", ("train.als_lowpass=1", "train.als_lowpass_k=16", "train.als_trend=2",
                                      "data.min_rating=3")),
                           ("default", ()),
                           ("novalid", ("split.valid=0",)),
                           ("novalid_set", ("split.valid=0", "train.als_lowpass=0.5", "train.als_lowpass_k=16"))):
            out[name] = _synth_run(tmp, synth_dir[0], name, *sets)
    return out


def _rec(engine) -> dict:
    return engine.training_ratings["solve"]["lowpass"]


def _rel(a, b) -> float:
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def _manifest(run: Path) -> tuple[Path, dict]:
    real = Path(os.path.realpath(run / "current" / "manifest.json"))
    return real, json.loads(real.read_text())


def _reseal(real: Path, m: dict) -> None:
    """The manifest written back sealed again (a red team's edit: its own checksum made to match)."""
    os.chmod(real, 0o644)
    real.write_text(json.dumps(seal(m)))


def _copy(run, dest: Path) -> Path:
    shutil.copytree(Path(run.engine.run.path).parent, dest, symlinks=True)
    return dest


# ------------------------------------------------------------------------------------ what train saves
def test_a_set_weight_saves_the_block_its_record_and_a(runs):
    """train.als_lowpass=1: the tables are [U, w x] and [V, y], d + k columns (d the model's 8, k the default
    als_lowpass_k 128, at most min(users, movies)); lowpass_a.npy is listed and (n_movies, k); the record's weight
    is c x spread; metrics.json's selection says 1."""
    model, opened = runs["block"]
    e = opened.engine
    rec = _rec(e)
    assert rec["d"] == 8 and rec["k"] == lowpass.DEFAULT_K and rec["c"] == 1.0
    assert rec["weight"] == pytest.approx(rec["c"] * rec["spread"]) and rec["weight"] > 0
    assert rec["d"] + rec["k"] == e.factors.movie.shape[1] == e.factors.user.shape[1]
    folder = Path(e.run.path)
    _, m = _manifest(folder.parent)
    assert "lowpass_a.npy" in m["files"] and "lowpass_a.npy" in m["checksums"]
    a = np.load(folder / "lowpass_a.npy")
    assert a.shape == (e.factors.movie.shape[0], rec["k"]) == (m["n_movies"], rec["k"]) and a.dtype == np.float32
    np.testing.assert_array_equal(e.factors.lowpass_a, a)
    assert np.abs(a).sum() > 0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["selection"]["als_lowpass"] == 1.0 and "lowpass_valid" not in metrics["selection"]
    # the trained model in memory serves what was saved
    np.testing.assert_array_equal(model.engine.factors.lowpass_a, a)
    assert _rec(model.engine) == rec
    # the block's columns are what with_block gives: the movies' last k columns are y, a's rows times D_I
    # (y = D_I^1/2 W, a = D_I^-1/2 W): y_i = deg_i a_i
    tr = model.dataset.splits["train"]
    deg = np.bincount(tr.movie, minlength=a.shape[0]).astype(np.float64)
    np.testing.assert_allclose(e.factors.movie[:, 8:], a * deg[:, None], rtol=1e-4, atol=1e-5)


def test_the_k_recorded_is_the_one_set(runs):
    rec = _rec(runs["trend"][1].engine)
    e = runs["trend"][1].engine
    assert rec["k"] == 16 and rec["d"] == 8 and e.factors.movie.shape[1] == 24 and e.factors.lowpass_a.shape == (
        e.factors.movie.shape[0], 16)


# ------------------------------------------------------------------------------------ a known user's re-solve
@pytest.mark.parametrize("name", ["block", "trend"])
def test_a_known_users_re_solve_gives_its_served_vector_block_included(runs, name):
    """als_resolve of a user's own training pairs (no new rating) is the served vector: its first d columns (the
    solve) and its last k (the block, w x the sum of a's rows of the movies trained on, divided by recent
    popularity's divisor where the run adds it), each to 1e-4; the block part computed here from lowpass_a
    directly. 'trend' adds recent popularity (the vector on its std's scale) and leaves the movies rated below 3
    out of the solve and the block."""
    e = runs[name][1].engine
    rec = _rec(e)
    d = rec["d"]
    assert (e.training_ratings["solve"]["trend"] > 0) == (name == "trend")
    P = np.asarray(e.P, np.float64)
    users = [r for r in range(0, P.shape[0], 11) if P[r].any()]
    assert len(users) > 20
    below = 0
    for r in users:
        detail: dict = {}
        p = als_resolve(e, r, *EMPTY, detail=detail)
        assert _rel(p[:d], P[r, :d]) < 1e-4, (r, _rel(p[:d], P[r, :d]))
        assert _rel(p[d:], P[r, d:]) < 1e-4, (r, _rel(p[d:], P[r, d:]))
        rows, _ = trained_pairs(e, r)
        below += e.seen(r).size - rows.size
        want = rec["weight"] * e.factors.lowpass_a[rows].astype(np.float64).sum(0) / detail["divisor"]
        np.testing.assert_allclose(P[r, d:], want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
        assert np.abs(P[r, d:]).max() > 1e-3 * np.abs(P[r]).max()  # the block is a part of the vector
    assert (below > 0) == (name == "trend")  # min_rating 3: seen movies outside the solve and the block
    # told two movies since training (recommend_new(user=...)): the block adds their a rows
    opened = runs[name][1]
    r = users[3]
    seen = set(e.seen(r).tolist())
    fresh = [int(e.movie_ids[m]) for m in range(e.Q.shape[0]) if m not in seen][:2]
    detail = {}
    p = e.fold_in_parts(liked=fresh, user=r, detail=detail)[0]
    rows = np.union1d(trained_pairs(e, r)[0], e.movie_rows(fresh)[0])
    want = rec["weight"] * e.factors.lowpass_a[rows].astype(np.float64).sum(0) / detail["divisor"]
    np.testing.assert_allclose(p[d:], want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    res = opened.recommend_new(liked=fresh, user=opened.user_ids[r], k=5)
    top = e.movie_rows(res.movie_ids[0])[0]
    bias = 0.0 if e.bm is None else np.asarray(e.bm, np.float64)[top]
    np.testing.assert_allclose(res.scores[0], np.asarray(e.Q[top], np.float64) @ p + bias, rtol=1e-5)
    x = opened.explain(opened.user_ids[r], res.movie_ids[0][0], n=1000, liked=fresh)
    assert abs(x.remainder) < 1e-4 * abs(x.score) and set(fresh) <= set(x.movie_ids)


# ------------------------------------------------------------------------------------ a new user's fold-in
def test_a_new_users_block_is_the_weighted_sum_of_as_rows_of_its_movies(runs):
    """recommend_new(liked=...): the vector's last k columns are w x the sum of a's rows of the liked movies (no
    solve), its first d the als solve over the first d columns of the movie table; its list's scores p . q_m over
    all d + k columns. A training user's own movies told as a new user's give that user's served block exactly."""
    model, opened = runs["block"]
    e = opened.engine
    rec = _rec(e)
    d, w = rec["d"], rec["weight"]
    liked = [int(i) for i in e.movie_ids[[1, 5, 9, 20, 33]]]
    detail: dict = {}
    p, _, rows, _ = e.fold_in_parts(liked=liked, detail=detail)
    assert detail["divisor"] == 1.0 and p.shape == (d + rec["k"],)
    np.testing.assert_allclose(p[d:], w * e.factors.lowpass_a[rows].astype(np.float64).sum(0), rtol=1e-5,
                               atol=1e-7)
    weights = new_user_weights(e, {int(r): 1.0 for r in rows})
    want = foldin.als_vector(e.factors, e.training_ratings["solve"], *e.movie_gram(), rows,
                             np.array([weights[int(r)] for r in rows]))
    np.testing.assert_allclose(p, want, rtol=1e-6)
    # the solve's part: the same solve as a run without the block's columns (the movie table's first d)
    from embedrec.model.factors import Factors

    alone = Factors(np.asarray(e.factors.user)[:, :d], np.ascontiguousarray(np.asarray(e.factors.movie)[:, :d]),
                    e.factors.user_bias, e.factors.movie_bias, e.factors.global_mean, e.factors.explicit)
    solve = {k: v for k, v in e.training_ratings["solve"].items() if k != "lowpass"}
    Qd = np.asarray(alone.movie, np.float64)
    np.testing.assert_allclose(p[:d], foldin.als_vector(alone, solve, Qd.T @ Qd, Qd.mean(0), rows,
                                                        np.array([weights[int(r)] for r in rows])), rtol=1e-5)
    res = opened.recommend_new(liked=liked, k=10, exclude_seen=False, prior=0)
    top = e.movie_rows(res.movie_ids[0])[0]
    np.testing.assert_allclose(res.scores[0], np.asarray(e.Q[top], np.float64) @ p, rtol=1e-5)
    # a training user's own movies: its block (a new user's weights differ only in the solve's part)
    for row in (3, 50, 120):
        movies, _ = trained_pairs(e, row)
        q, _, _ = e.fold_in(liked=[int(i) for i in e.movie_ids[movies]])
        np.testing.assert_allclose(q[d:], np.asarray(e.P[row])[d:], rtol=1e-4, atol=1e-6)


def test_a_rating_below_min_rating_stays_out_of_a_new_users_block(runs):
    """data.min_rating 3 (the 'trend' run): a movie rated 1 is left out of the solve and of the block, so the vector
    is the one folded in without it; the block (here divided by recent popularity's divisor) is w x the sum of
    a's rows of the other two alone."""
    e = runs["trend"][1].engine
    rec = _rec(e)
    d = rec["d"]
    m1, m2, low = (int(i) for i in e.movie_ids[[2, 7, 11]])
    detail: dict = {}
    p, _, rows, left_out = e.fold_in_parts(rated={m1: 5, m2: 4, low: 1}, detail=detail)
    assert left_out == {e.movie_row(low): 1.0}
    kept = e.movie_rows([m1, m2])[0]
    want = rec["weight"] * e.factors.lowpass_a[kept].astype(np.float64).sum(0) / detail["divisor"]
    np.testing.assert_allclose(p[d:], want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p, e.fold_in(rated={m1: 5, m2: 4})[0], rtol=1e-6)
    with_low = rec["weight"] * e.factors.lowpass_a[e.movie_rows([m1, m2, low])[0]].astype(np.float64).sum(0)
    assert _rel(p[d:] * detail["divisor"], with_low) > 1e-2  # (the low movie's a row is not 0: it would show)


# ------------------------------------------------------------------------------------ explanations
@pytest.mark.parametrize("name", ["block", "trend"])
def test_explanations_add_up_with_the_block(runs, name):
    """Model.explain(user, movie) of a known user, and of a new user told by liked=: the rated movies' parts (the
    solve's and each movie's w a_j . y_m of the block), the others, the bias, the prior and the remainder add up to
    the score, the remainder under 1e-4 of it, where the block's part of the score is far more than that."""
    model, opened = runs[name]
    e = opened.engine
    d = _rec(e)["d"]
    for user, movie in ((opened.user_ids[4], e.movie_ids[7]), (opened.user_ids[40], e.movie_ids[100]),
                        (opened.user_ids[200], e.movie_ids[3])):
        x = opened.explain(user, movie, n=5)
        row, mrow = e.user_row(user), e.movie_row(movie)
        block = float(np.asarray(e.P[row])[d:] @ np.asarray(e.Q[mrow])[d:])
        assert abs(block) > 1e-2 * abs(x.score), (block, x.score)  # leaving the block out would show
        assert abs(x.remainder) < 1e-4 * abs(x.score), (x.remainder, x.score)
        assert sum(x.contributions) + x.others + x.bias + x.prior + x.remainder == pytest.approx(x.score, rel=1e-6)
    liked = [int(i) for i in e.movie_ids[[1, 5, 9, 20, 33]]]
    for movie in (e.movie_ids[60], e.movie_ids[150]):
        x = opened.explain(None, movie, liked=liked, prior=0)
        p = e.fold_in(liked=liked)[0]
        block = float(p[d:] @ np.asarray(e.Q[e.movie_row(movie)])[d:])
        assert abs(block) > 1e-2 * abs(x.score) and abs(x.remainder) < 1e-4 * abs(x.score), (block, x.remainder,
                                                                                             x.score)
        assert sorted(x.movie_ids) == sorted(liked)


# ------------------------------------------------------------------------------------ auto
def test_auto_chooses_the_block_where_it_wins_on_valid():
    """Six planted tastes and a model of 2 dimensions, which cannot tell them apart; the block of 8 columns can:
    auto scores every c of lowpass.CS on valid (NDCG@10 0.17 alone, about 0.4 with the block here) and keeps the
    best, past the 1% margin and the paired test; the served model records it."""
    m = er.train(_tastes_dataset(), _cfg("model.dim=2", "train.als_lowpass_k=8", "train.als_trend=0"))
    sel = m.metrics["selection"]
    c = sel["als_lowpass"]
    detail = sel["lowpass_valid"]
    assert set(detail["valid"]) == {f"{x:g}" for x in lowpass.CS} and np.isfinite(detail["alone"])
    assert c in lowpass.CS and c > 0, sel
    assert detail["c"] == c and detail["valid"][f"{c:g}"] == max(detail["valid"].values())
    assert detail["valid"][f"{c:g}"] > 1.2 * detail["alone"]
    assert detail["paired"]["mean"] > lowpass.Z * detail["paired"]["se"]
    assert m.config.train.als_lowpass == c
    rec = _rec(m.engine)
    assert rec["c"] == c and rec["k"] == 8 and rec["d"] == 2 and m.engine.factors.movie.shape[1] == 10
    assert rec["spread"] > 0 and rec["weight"] == pytest.approx(c * rec["spread"])


def _choose(scores: dict, paired=None):
    """lowpass.choose on a small block, valid's score of each weight c given by ``scores`` ({c: score}; 0: the
    model alone)."""
    rng = np.random.default_rng(0)
    u, m = rng.integers(0, 30, 300), rng.integers(0, 20, 300)
    lp = lowpass.lowpass(u, m, 30, 20, 4, seed=0)
    f = {"user_factors": rng.normal(size=(30, 3)).astype(np.float32),
         "movie_factors": rng.normal(size=(20, 3)).astype(np.float32), "movie_bias": None}
    seen = []

    def on_valid(g):
        c = (g.get("lowpass") or {}).get("c", 0.0)
        assert g["user_factors"].shape[1] == (7 if c else 3)
        seen.append(c)
        return {"ndcg@10": scores[c]}

    got = lowpass.choose(f, lp, on_valid, "ndcg@10", True, "auto", 0, paired=paired)
    assert sorted(seen) == sorted([0.0, *lowpass.CS])  # the model alone and every weight, once each
    return got


def test_choose_keeps_the_model_alone_inside_the_margin_or_the_paired_test():
    """The best weight is kept where it beats the model alone by 0.5% and by 2 paired standard errors; else 0."""
    assert lowpass.MARGIN == 0.005
    base = {0.0: 0.2, **{c: 0.19 for c in lowpass.CS}}
    assert _choose({**base, 1.0: 0.2009})[0] == 0.0  # +0.45%: inside the margin
    assert _choose({**base, 1.0: 0.2011})[0] == 1.0  # +0.55% (ML-1M's gains of 0.7-1% pass)
    c, s, detail = _choose({**base, 1.0: 0.21})
    assert c == 1.0 and detail["c"] == 1.0 and detail["valid"]["1"] == 0.21 and detail["alone"] == 0.2 and s > 0
    assert _choose({**base, 1.0: 0.21}, paired=lambda fa, fb: (0.01, 0.006))[0] == 0.0  # 1.7 SE
    c, _, detail = _choose({**base, 0.5: 0.25}, paired=lambda fa, fb: (0.05, 0.01))
    assert c == 0.5 and detail["paired"] == {"mean": 0.05, "se": 0.01}
    assert _choose({**base, 2.0: float("nan")})[0] == 0.0  # every other weight below the model alone
    # a number given: that weight, nothing scored
    rng = np.random.default_rng(0)
    lp = lowpass.lowpass(rng.integers(0, 30, 300), rng.integers(0, 20, 300), 30, 20, 4, seed=0)
    f = {"user_factors": np.ones((30, 3), np.float32), "movie_factors": np.ones((20, 3), np.float32)}
    assert lowpass.choose(f, lp, lambda g: pytest.fail("scored"), "ndcg@10", True, 0.5, 0)[0] == 0.5


def test_auto_resolves_to_a_number_with_every_weight_scored_and_to_0_without_valid(runs):
    """The default (auto) on synth_dir: a number in metrics.json's selection, every c of lowpass.CS and the model
    alone scored on valid; chosen 0 here, so no block is served (7). Without a validation split (split.valid=0)
    auto is off: 0, nothing scored, no lowpass_a.npy, no record."""
    _, opened = runs["default"]
    folder = Path(opened.engine.run.path)
    sel = json.loads((folder / "metrics.json").read_text())["selection"]
    assert isinstance(sel["als_lowpass"], float) and sel["als_lowpass"] in (0.0, *lowpass.CS)
    detail = sel["lowpass_valid"]
    assert set(detail["valid"]) == {f"{x:g}" for x in lowpass.CS} and "alone" in detail
    assert all(np.isfinite(v) for v in detail["valid"].values()) and np.isfinite(detail["alone"])
    assert detail["c"] == sel["als_lowpass"] and detail["k"] == lowpass.DEFAULT_K
    assert sel["als_lowpass_k"] == lowpass.DEFAULT_K  # auto resolved to a number (the narrowest where off)
    _, none = runs["novalid"]
    folder = Path(none.engine.run.path)
    sel = json.loads((folder / "metrics.json").read_text())["selection"]
    assert sel["als_lowpass"] == 0.0 and "lowpass_valid" not in sel
    assert not (folder / "lowpass_a.npy").exists() and "lowpass" not in none.engine.training_ratings["solve"]
    assert none.engine.factors.lowpass_a is None and none.engine.factors.movie.shape[1] == 8
    # a number set needs no valid split: served as set
    _, given = runs["novalid_set"]
    sel = json.loads((Path(given.engine.run.path) / "metrics.json").read_text())["selection"]
    assert sel["als_lowpass"] == 0.5 and "lowpass_valid" not in sel
    rec = _rec(given.engine)
    assert rec["c"] == 0.5 and rec["k"] == 16 and given.engine.factors.lowpass_a.shape == (200, 16)
    r = next(r for r in range(10) if np.asarray(given.engine.P[r]).any())
    assert _rel(als_resolve(given.engine, r, *EMPTY), np.asarray(given.engine.P[r], np.float64)) < 1e-4


def test_a_pickled_model_folds_in_with_the_block_after_its_folder_is_gone(runs, tmp_path):
    """A pickle carries what the model answers from: lowpass_a too (a new user's block)."""
    import pickle

    run = _copy(runs["block"][1], tmp_path / "run")
    m = er.open(run)
    liked = [1, 5, 9, 20]
    want = m.recommend_new(liked=liked, k=10)
    copy = pickle.loads(pickle.dumps(m))
    shutil.rmtree(run)
    got = copy.recommend_new(liked=liked, k=10)
    assert list(got.movie_ids[0]) == list(want.movie_ids[0])
    np.testing.assert_allclose(got.scores[0], want.scores[0], rtol=1e-6)
    assert copy.engine.factors.lowpass_a is not None


# ------------------------------------------------------------------------------------ a run without the block
def test_a_run_without_the_block_opens_and_folds_in_as_before(runs):
    """The default run (auto chose 0): no lowpass key in the solve, no lowpass_a.npy, Factors.lowpass_a None, the
    tables d wide; a known user's re-solve and a new user's fold-in are the solve over every column."""
    _, opened = runs["default"]
    e = opened.engine
    assert json.loads((Path(e.run.path) / "metrics.json").read_text())["selection"]["als_lowpass"] == 0.0
    assert "lowpass" not in e.training_ratings["solve"] and e.factors.lowpass_a is None
    assert not (Path(e.run.path) / "lowpass_a.npy").exists() and e.factors.movie.shape[1] == 8
    assert foldin.als_columns(e.training_ratings["solve"], 8) == 8
    assert foldin.lowpass_block(e.factors, e.training_ratings["solve"], np.array([1, 2])) is None
    P = np.asarray(e.P, np.float64)
    for r in (0, 30, 77):
        assert _rel(als_resolve(e, r, *EMPTY), P[r]) < 1e-4
    liked = [int(i) for i in e.movie_ids[[1, 5, 9]]]
    p, _, rows = e.fold_in(liked=liked)
    weights = new_user_weights(e, {int(r): 1.0 for r in rows})
    np.testing.assert_allclose(p, foldin.als_vector(e.factors, e.training_ratings["solve"], *e.movie_gram(), rows,
                                                    np.array([weights[int(r)] for r in rows])), rtol=1e-6)
    x = opened.explain(None, e.movie_ids[60], liked=liked, prior=0)
    assert abs(x.remainder) < 1e-4 * abs(x.score)


# ------------------------------------------------------------------------------------ damage
def test_a_missing_or_misshapen_a_is_refused_as_the_run_opens(runs, tmp_path):
    """lowpass_a.npy deleted (listed, or its listing removed and the manifest sealed again), another shape
    (its checksums made to match), or the file without the manifest's record: ArtifactError as the run opens,
    naming lowpass_a.npy; never numpy's error at a fold-in."""
    src = runs["block"][1]

    def refused(run: Path, said: str):
        with pytest.raises(ArtifactError, match=said):
            er.open(run).recommend_new(liked=[1, 2, 3], k=3)

    run = _copy(src, tmp_path / "gone")
    (run / "current" / "lowpass_a.npy").unlink()
    refused(run, r"lowpass_a\.npy' is missing")

    run = _copy(src, tmp_path / "unlisted")
    (run / "current" / "lowpass_a.npy").unlink()
    real, m = _manifest(run)
    del m["files"]["lowpass_a.npy"], m["checksums"]["lowpass_a.npy"]
    _reseal(real, m)
    refused(run, r"the manifest records a low-pass block \(training_ratings\.solve\.lowpass\) but lowpass_a\.npy "
                 r"is missing")

    run = _copy(src, tmp_path / "shape")
    path = run / "current" / "lowpass_a.npy"
    a = np.load(path)
    os.chmod(path, 0o644)
    np.save(path, a[:, :-1])
    real, m = _manifest(run)
    m["files"]["lowpass_a.npy"], m["checksums"]["lowpass_a.npy"] = file_entry(path)["sha256"], file_entry(path)
    _reseal(real, m)
    refused(run, r"lowpass_a\.npy holds a float32 table of shape \(200, 127\), where the low-pass block the "
                 r"manifest records \(training_ratings\.solve\.lowpass\) is 200 movies x 128 columns")

    run = _copy(src, tmp_path / "norecord")
    real, m = _manifest(run)
    del m["training_ratings"]["solve"]["lowpass"]
    _reseal(real, m)
    refused(run, r"lowpass_a\.npy is there but the manifest records no low-pass block")


@pytest.mark.parametrize("key, value, said", [
    ("k", "x", "training_ratings.solve.lowpass.k is 'x', not a finite number"),
    ("d", 0, "training_ratings.solve.lowpass.d is 0, below 1"),
    ("d", 2.5, "training_ratings.solve.lowpass.d is 2.5, not a whole number"),
    ("k", 0, "training_ratings.solve.lowpass.k is 0, below 1"),
    ("weight", -1.0, "training_ratings.solve.lowpass.weight is -1.0, below 0"),
    ("c", None, "training_ratings.solve.lowpass.c is None, not a finite number"),
    (None, "x", "training_ratings.solve.lowpass is 'x', not a mapping")])
def test_run_checks_refuses_a_bad_lowpass_record_naming_its_key(runs, key, value, said):
    solve = dict(runs["block"][1].engine.training_ratings["solve"])
    rec = dict(solve["lowpass"])
    if key is None:
        solve["lowpass"] = value
    else:
        rec[key] = value
        solve["lowpass"] = rec
    good = run_checks.checked_training_ratings({"min_rating": None, "rating_weight": 0.0,
                                                "solve": {**solve, "lowpass": runs["block"][1].engine.training_ratings[
                                                    "solve"]["lowpass"]}}, "m.json")
    assert good["solve"]["lowpass"]["k"] == lowpass.DEFAULT_K
    with pytest.raises(ArtifactError, match="run manifest 'm.json': " + said.replace(".", r"\.").replace("(", r"\(")):
        run_checks.checked_training_ratings({"min_rating": None, "rating_weight": 0.0, "solve": solve}, "m.json")


def test_a_d_record_of_0_is_refused_as_the_run_opens_and_by_verify(runs, tmp_path):
    run = _copy(runs["block"][1], tmp_path / "d0")
    real, m = _manifest(run)
    m["training_ratings"]["solve"]["lowpass"]["d"] = 0
    _reseal(real, m)
    with pytest.raises(ArtifactError, match=r"training_ratings\.solve\.lowpass\.d is 0, below 1"):
        er.open(run).recommend_new(liked=[1, 2, 3], k=3)
    r = CliRunner().invoke(main, ["verify", "--run", str(run)])
    assert r.exit_code != 0 and "training_ratings.solve.lowpass.d" in r.stderr + r.stdout, r.stderr


@pytest.mark.parametrize("where, value", [("k", "x"), (None, "x")])
def test_a_bad_record_is_refused_as_the_run_opens_naming_its_key(runs, tmp_path, where, value):
    run = _copy(runs["block"][1], tmp_path / "bad")
    real, m = _manifest(run)
    if where is None:
        m["training_ratings"]["solve"]["lowpass"] = value
    else:
        m["training_ratings"]["solve"]["lowpass"][where] = value
    _reseal(real, m)
    with pytest.raises(ArtifactError, match=r"training_ratings\.solve\.lowpass"):
        er.open(run).recommend_new(liked=[1, 2, 3], k=3)


def test_a_record_whose_columns_are_not_the_tables_is_refused(runs, tmp_path):
    run = _copy(runs["block"][1], tmp_path / "d4")
    real, m = _manifest(run)
    m["training_ratings"]["solve"]["lowpass"]["d"] = 4
    _reseal(real, m)
    r = CliRunner().invoke(main, ["verify", "--run", str(run)])
    refused_by_verify = r.exit_code != 0 and "solve.lowpass" in r.stderr + r.stdout
    said = CliRunner().invoke(main, ["recommend", "--run", str(run), "--liked", "1,2,3", "-k", "3"])
    assert said.exit_code == 1 and "internal error" not in said.stderr and "solve.lowpass" in said.stderr, said.stderr
    with pytest.raises(ArtifactError, match=r"solve\.lowpass"):
        er.open(run).recommend_new(liked=[1, 2, 3], k=3)
    assert refused_by_verify, r.stdout + r.stderr


# ------------------------------------------------------------------------------------ update-users
def test_update_users_keeps_the_block_for_a_known_and_a_new_user(runs, tmp_path):
    """update-users on the 'trend' run (block, recent popularity, min_rating 3): a known user's new ratings and a
    new user's (one of them below 3). After it `embedrec verify` passes; the record and lowpass_a.npy are kept;
    the known user's row is als_resolve of its pairs (the new ones among them), its block w x the sum of a's rows
    of every movie it is now solved on; the new user's row is its fold-in from the same ratings, whose block
    leaves the low one out."""
    src = runs["trend"][1]
    run = _copy(src, tmp_path / "run")
    e0 = src.engine
    rec = _rec(e0)
    d = rec["d"]
    user = int(src.user_ids[5])
    row = e0.user_row(user)
    seen = set(e0.seen(row).tolist())
    fresh = [int(e0.movie_ids[r]) for r in range(e0.Q.shape[0]) if r not in seen][:3]
    new_rated = {int(e0.movie_ids[10]): 5, int(e0.movie_ids[20]): 4, int(e0.movie_ids[30]): 1}
    csv = tmp_path / "since.csv"
    csv.write_text("user_id,movie_id,rating\n" + "".join(f"{user},{i},5\n" for i in fresh)
                   + "".join(f"999999,{i},{r}\n" for i, r in new_rated.items()))
    er.update_users(run, csv)
    r = CliRunner().invoke(main, ["verify", "--run", str(run)])
    assert r.exit_code == 0, r.stdout + r.stderr
    m = er.open(run)
    e = m.engine
    assert _rec(e) == rec and (Path(e.run.path) / "lowpass_a.npy").exists()
    np.testing.assert_array_equal(e.factors.lowpass_a, e0.factors.lowpass_a)
    rows, _ = trained_pairs(e, row)
    assert set(e.movie_rows(fresh)[0].tolist()) <= set(rows.tolist())
    detail: dict = {}
    p = als_resolve(e, row, *EMPTY, detail=detail)
    P = np.asarray(e.P[row], np.float64)
    assert _rel(p[:d], P[:d]) < 1e-4 and _rel(p[d:], P[d:]) < 1e-4
    want = rec["weight"] * e.factors.lowpass_a[rows].astype(np.float64).sum(0) / detail["divisor"]
    np.testing.assert_allclose(P[d:], want, rtol=1e-4, atol=1e-7)
    assert _rel(P, np.asarray(e0.P[row], np.float64)) > 1e-3  # the update moved it
    new_row = e.user_row(999999)
    got = np.asarray(e.P[new_row], np.float64)
    detail = {}
    q, _, _, left_out = e0.fold_in_parts(rated=new_rated, detail=detail)
    assert list(left_out.values()) == [1.0]
    np.testing.assert_allclose(got, q, rtol=1e-4, atol=1e-7)
    kept = e.movie_rows(list(new_rated)[:2])[0]
    np.testing.assert_allclose(got[d:], rec["weight"] * e.factors.lowpass_a[kept].astype(np.float64).sum(0)
                               / detail["divisor"], rtol=1e-4, atol=1e-7)
    x = m.explain(user, fresh[0])
    assert abs(x.remainder) < 1e-4 * abs(x.score)


# ------------------------------------------------------------------------------------ on ranks
def test_a_set_weight_on_ranks_serves_one_processs_block(runs, tmp_path):
    """A weight set (1, 128 columns) on torchrun's ranks (here one rank, in this process; two:
    test_distributed.test_two_ranks_choose_and_serve_the_low_pass_block_one_process_does): the run 'block' trained
    in one process, block, a and record alike (it was refused on ranks before session 62)."""
    from embedrec.shard_als import train_distributed

    model, run = runs["block"]
    cfg = load_config(None, [f"data.prepared={model.config.data.prepared}", f"run.dir={tmp_path / 'ranks'}",
                             *BASE, "train.device=cpu", "train.als_lowpass=1", "train.als_trend=0"])
    import torch

    threads = torch.get_num_threads()  # (the ranks' fit sets torch's threads: put back for the tests after)
    try:
        m = train_distributed(cfg)
    finally:
        torch.set_num_threads(threads)
    assert m["ranks"] == 1 and m["selection"]["als_lowpass"] == 1.0
    assert m["splits"]["test"]["model"] == pytest.approx(model.metrics["splits"]["test"]["model"], abs=1e-6)
    ranks = er.open(tmp_path / "ranks")
    for name in ("user", "movie", "lowpass_a"):
        np.testing.assert_allclose(getattr(ranks.engine.factors, name), getattr(run.engine.factors, name),
                                   atol=1e-4, rtol=0, err_msg=name)
    mine, theirs = _rec(ranks.engine), _rec(run.engine)
    assert mine["k"] == theirs["k"] == 128 and mine["weight"] == pytest.approx(theirs["weight"], rel=1e-5)


# ------------------------------------------------------------------------------------ similar movies
def test_similar_movies_rank_by_the_als_columns_alone_exact_and_from_the_index(runs, tmp_path):
    """The block's y grows with a movie's popularity, so similar movies' cosine reads the first d columns alone
    (Factors.als_columns): the exact ranking equals a cosine over those columns computed here (and differs from one
    over every column), and an approximate index (rebuilt hnsw) lists the same movies; the model without the
    block reads all of its columns."""
    import dataclasses

    from embedrec.artifacts import rebuild_index

    src = runs["block"][1]
    e = src.engine
    d = _rec(e)["d"]
    assert e.factors.als_columns == d and e.factors.cos_movie.shape[1] == d
    Q = np.asarray(e.Q, np.float64)

    def cosine_top(cols, row, k=5):
        X = Q[:, cols] / np.maximum(np.linalg.norm(Q[:, cols], axis=1, keepdims=True), 1e-12)
        s = X @ X[row]
        s[row] = -np.inf
        return np.argsort(-s, kind="stable")[:k]

    rows = [r for r in range(Q.shape[0]) if not e.untrained[r]][:20]
    differs = 0
    for row in rows:
        got, _ = e.factors.similar(row, 5)
        np.testing.assert_array_equal(got, cosine_top(slice(0, d), row))
        differs += not np.array_equal(got, cosine_top(slice(None), row))
    assert differs > 0  # (the block's columns would change the lists)
    run = _copy(src, tmp_path / "hnsw")
    rebuild_index(run, dataclasses.replace(runs["block"][0].config.index, kind="hnsw"))
    h = er.open(run)
    assert h.engine.run.manifest["index"]["kind"] == "hnsw"
    for row in rows[:5]:
        mid = int(e.movie_ids[row])
        assert list(h.similar(mid, k=5).to_frame().movie_id) == [int(e.movie_ids[r]) for r in cosine_top(slice(0, d), row)]
    plain = runs["default"][1].engine.factors
    assert plain.als_columns is None and plain.cos_movie is plain.movie


def test_exports_carry_the_block_layout_and_a(runs, tmp_path):
    """export --to npy/parquet/csv of a block model: model.json says which columns are the block and its weight,
    and a (lowpass_a) goes with the movies, so a reader can fold a new user in as embedrec does; a model without
    the block writes neither."""
    import pandas as pd

    e = runs["block"][1].engine
    rec = _rec(e)
    run = Path(e.run.path).parent
    for fmt in ("npy", "parquet", "csv"):
        r = CliRunner().invoke(main, ["export", "--run", str(run), "--to", fmt, "-o", str(tmp_path / fmt)])
        assert r.exit_code == 0, r.stderr
        terms = json.loads((tmp_path / fmt / "model.json").read_text())["lowpass"]
        assert (terms["als_columns"], terms["columns"], terms["weight"]) == (rec["d"], rec["k"], rec["weight"])
    np.testing.assert_array_equal(np.load(tmp_path / "npy" / "lowpass_a.npy"), e.factors.lowpass_a)
    movies = pd.read_parquet(tmp_path / "parquet" / "movies.parquet")
    np.testing.assert_array_equal(np.stack(movies.lowpass_a.to_numpy()), e.factors.lowpass_a)
    csv = pd.read_csv(tmp_path / "csv" / "movies.csv")
    np.testing.assert_allclose(csv[[f"a{i}" for i in range(rec["k"])]].to_numpy(), e.factors.lowpass_a, rtol=1e-6)
    plain = Path(runs["default"][1].engine.run.path).parent
    r = CliRunner().invoke(main, ["export", "--run", str(plain), "--to", "npy", "-o", str(tmp_path / "plain")])
    assert r.exit_code == 0 and not (tmp_path / "plain" / "lowpass_a.npy").exists()
    assert "lowpass" not in json.loads((tmp_path / "plain" / "model.json").read_text())


def test_the_refit_serves_the_selections_basis_with_one_svd(tmp_path, synth_dir, monkeypatch):
    """A set weight with a refit on train+valid: one SVD (the selection's rows), the served block made over its W
    with the final rows' degrees (lowpass.from_basis): y = W sqrt(d) of train+valid, so y / a is each movie's
    degree in the final fit's rows."""
    calls = []
    real = lowpass.of_rows
    monkeypatch.setattr(lowpass, "of_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    model, opened = _synth_run(tmp_path, synth_dir[0], "one", "train.als_lowpass=1", "train.als_lowpass_k=16",
                               "train.als_trend=0")
    assert model.metrics["refit"] and len(calls) == 1
    e = opened.engine
    d = _rec(e)["d"]
    tr = model.dataset.splits["train"]  # train+valid, the refit's
    deg = np.bincount(tr.movie, minlength=e.Q.shape[0]).astype(np.float64)
    a, y = e.factors.lowpass_a.astype(np.float64), np.asarray(e.Q, np.float64)[:, d:]
    live = np.abs(a).sum(1) > 1e-6
    np.testing.assert_allclose((y[live] / np.where(np.abs(a[live]) > 1e-8, a[live], np.nan)),
                               np.broadcast_to(deg[live][:, None], y[live].shape), rtol=1e-3, equal_nan=True)


# ------------------------------------------------------------------------------------ the block's width
def test_widths_follow_the_dimension_als_dims_chose():
    """train.als_lowpass_k auto: DEFAULT_K alone where als_dims kept model.dim; doubled up to twice the chosen
    dimension where it chose more, within min(users, movies) and the SVD's bytes; a number: that alone (capped)."""
    t = load_config(None, []).train
    assert t.als_lowpass_k == "auto"
    assert lowpass.widths(t, 10_000, 5_000, 128, 128) == (128,)
    assert lowpass.widths(t, 10_000, 5_000, 256, 128) == (128, 256, 512)
    assert lowpass.widths(t, 20_000, 5_000, 512, 128) == (128, 256, 512, 1024)
    assert lowpass.widths(t, 20_000, 600, 512, 128) == (128, 256, 512)  # the rank: 600
    assert lowpass.widths(t, 50, 5_000, 512, 128) == (50,)
    # the bytes: 50,000 movies' Krylov blocks at 512 columns pass lowpass.MAX_BYTES, at 256 not
    assert lowpass.working_bytes(20_000, 50_000, 512) > lowpass.MAX_BYTES >= lowpass.working_bytes(20_000, 50_000, 256)
    assert lowpass.widths(t, 20_000, 50_000, 512, 128) == (128, 256)
    given = load_config(None, ["train.als_lowpass_k=300"]).train
    assert lowpass.widths(given, 10_000, 5_000, 512, 128) == (300,) and lowpass.widths(given, 100, 5_000, 8, 8) == (100,)
    assert lowpass.block_k(t, 10_000, 5_000) == lowpass.DEFAULT_K and lowpass.block_k(given, 10_000, 5_000) == 300


def test_a_wider_decomposition_holds_every_narrower_one():
    """prefix(lp, k) of a decomposition 2k wide is the decomposition k wide (the dense method: exactly)."""
    rng = np.random.default_rng(3)
    u, m = rng.integers(0, 60, 900), rng.integers(0, 40, 900)
    wide, narrow = lowpass.lowpass(u, m, 60, 40, 16, method="dense"), lowpass.lowpass(u, m, 60, 40, 8, method="dense")
    got = lowpass.prefix(wide, 8)
    for name in ("x", "y", "a", "s", "w"):
        np.testing.assert_allclose(getattr(got, name), getattr(narrow, name), rtol=1e-5, atol=1e-6, err_msg=name)
    assert got.y.shape == (40, 8) and got.x.shape == (60, 8)


def test_choose_picks_the_width_and_weight_valid_scores_best():
    """Every c at every width scored once; the best (width, c) kept past the margin, its width in detail's k and
    its scores in detail's valid; every width's in widths. Off: c 0 (and the best width's scores shown)."""
    rng = np.random.default_rng(0)
    u, m = rng.integers(0, 30, 300), rng.integers(0, 20, 300)
    lp = lowpass.lowpass(u, m, 30, 20, 8, seed=0)
    f = {"user_factors": rng.normal(size=(30, 3)).astype(np.float32),
         "movie_factors": rng.normal(size=(20, 3)).astype(np.float32), "movie_bias": None}

    def run(best_at):
        seen = []

        def on_valid(g):
            rec = g.get("lowpass") or {}
            k, c = rec.get("k", 0), rec.get("c", 0.0)
            assert g["user_factors"].shape[1] == 3 + k and g["movie_factors"].shape[1] == 3 + k
            seen.append((k, c))
            return {"ndcg@10": 0.3 if (k, c) == best_at else 0.2 if k == 0 else 0.19}

        got = lowpass.choose(f, lp, on_valid, "ndcg@10", True, "auto", 0, ks=(4, 8))
        assert sorted(seen) == sorted([(0, 0.0), *((k, c) for k in (4, 8) for c in lowpass.CS)])
        return got

    c, s, detail = run((8, 0.5))
    assert (c, detail["k"], detail["valid"]["0.5"]) == (0.5, 8, 0.3) and set(detail["widths"]) == {"4", "8"}
    assert s == pytest.approx(lowpass.spread(f, lowpass.prefix(lp, 8), 0))
    c, _, detail = run((4, 2.0))
    assert (c, detail["k"]) == (2.0, 4) and detail["widths"]["8"]["2"] == 0.19
    c, _, detail = run((9, 9.0))  # nothing beats the model alone
    assert c == 0.0 and detail["c"] == 0.0


def test_auto_serves_the_width_it_chose(monkeypatch):
    """Where lowpass.widths gives several widths, the selection makes one SVD at the widest and serves the width
    and weight valid chose: the record's k, lowpass_a's columns, config.yaml's als_lowpass_k (a number, so that
    `train -c` of it trains the same) and metrics.json's widths agree; widths is asked with the chosen dimension
    and model.dim's."""
    asked = []

    def widths(tcfg, n_users, n_movies, dim, base_dim):
        asked.append((dim, base_dim))
        return (4, 8)

    monkeypatch.setattr(lowpass, "widths", widths)
    m = er.train(_tastes_dataset(), _cfg("model.dim=2", "train.als_trend=0"))
    assert asked == [(2, 2)]
    sel = m.metrics["selection"]
    detail = sel["lowpass_valid"]
    assert set(detail["widths"]) == {"4", "8"} and sel["als_lowpass"] > 0, sel
    k = detail["k"]
    assert k in (4, 8) and detail["valid"] == detail["widths"][str(k)]
    assert max(max(v.values()) for v in detail["widths"].values()) == detail["valid"][f"{sel['als_lowpass']:g}"]
    assert m.config.train.als_lowpass_k == k and sel["als_lowpass_k"] == k
    rec = _rec(m.engine)
    assert rec["k"] == k and rec["d"] == 2 and m.engine.factors.movie.shape[1] == 2 + k
    assert m.engine.factors.lowpass_a.shape[1] == k


def test_the_off_line_says_the_paired_test_that_refused_a_gain_past_the_margin():
    """A first-hour review: 'with the block ... 0.3477 at 0.2, where a gain must pass 0.5%' (+0.84%) and the block
    off, the paired test that decided it unsaid; the line names it, and its figures where it ran."""
    from embedrec.training.select import lowpass_off_line

    ran = {"alone": 0.3448, "best": 0.2, "paired": {"mean": 0.0028, "se": 0.0023}}
    assert lowpass_off_line("ndcg@10", ran, "", "0.3465 at 0.05, 0.3477 at 0.2", 0.31) == (
        "als_lowpass auto: off (0), the model alone (valid ndcg@10 0.3448; with the block 0.3465 at 0.05, 0.3477 at "
        "0.2, where a gain must pass 0.5% and 2 paired SE (the best, c 0.2: +0.0028 a user, SE 0.0023); its SVD 0.3s)")
    assert lowpass_off_line("ndcg@10", {"alone": 0.2180, "best": 0.05}, "", "0.2180 at 0.05", 0.3).endswith(
        "where a gain must pass 0.5% and 2 paired SE; its SVD 0.3s)")
