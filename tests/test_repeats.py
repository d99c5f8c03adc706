"""data.repeats=sum (a (user, movie)'s rows summed into one, a click count) and train.als_count_weight (its log
confidence in als)."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.data.dataset import load_dataset
from embedrec.ingestion import _dedupe_mask, format_summary, ingest, sum_repeats
from embedrec.training.als import confidence

from .conftest import write

# 5 rows: (1, 10) three times (two of them the same line), (2, 10) once, (1, 20) once
FRAME = pd.DataFrame({"user_id": [1, 1, 2, 1, 1], "movie_id": [10, 10, 10, 20, 10],
                      "rating": np.array([1, 1, 1, 1, 2], np.float32), "timestamp": [5, 5, 3, 4, 9]})


def test_sum_repeats_hand_computed():
    out, rows, pairs = sum_repeats(FRAME)
    assert out[["user_id", "movie_id"]].values.tolist() == [[1, 10], [2, 10], [1, 20]]  # in first-line order
    assert out["rating"].tolist() == [4.0, 1.0, 1.0] and out["rating"].dtype == np.float32
    assert out["timestamp"].tolist() == [9, 3, 4]  # the latest of the pair's rows
    assert (rows, pairs) == (3, 1)  # 3 rows of one repeated pair (the exact duplicate line is an event, summed)


def test_sum_repeats_nothing_repeated_returns_the_frame():
    df = FRAME.iloc[[0, 2, 3]]
    out, rows, pairs = sum_repeats(df)
    assert out is df and (rows, pairs) == (0, 0)


def test_latest_default_unchanged():
    keep, exact, repeated = _dedupe_mask(FRAME)
    assert keep.tolist() == [False, False, True, True, True] and (exact, repeated) == (1, 1)


def _clicks(tmp_path, n_users=40, n_movies=25):
    """A click log without a rating column: one line per event, each user's pairs clicked 1-4 times."""
    rng = np.random.default_rng(0)
    lines, counts = [], []
    for u in range(n_users):
        for m in rng.choice(n_movies, 12, replace=False):
            counts.append(int(rng.integers(1, 5)))
            lines += [f"{u},{m},{1000 + t}\n" for t in range(counts[-1])]
    return write(tmp_path / "clicks.csv", "user_id,movie_id,timestamp\n" + "".join(lines)), np.array(counts)


def test_ingest_sum_report_summary_and_manifest(tmp_path, small_cfg):
    src, counts = _clicks(tmp_path)
    n = int(counts.sum())
    cfg = small_cfg.updated({"data.source": str(src), "data.columns.rating": None, "data.repeats": "sum",
                             "split.valid": 0.0, "split.test": 0.0})
    s = ingest(cfg.data, cfg.split, output=cfg.data.prepared, full_config=cfg.to_dict())
    c = s["cleaning"]
    assert s["counts"]["ratings"] == 40 * 12 and "exact_duplicates_dropped" not in c
    assert c["repeated_pairs_summed"] == np.count_nonzero(counts > 1)
    assert c["repeated_rows_summed"] == counts[counts > 1].sum()
    assert f"repeats summed {c['repeated_rows_summed']:,} rows into {c['repeated_pairs_summed']:,} pairs" in \
        format_summary({**s, "output": "x", "seconds": 0.0})
    ds = load_dataset(cfg.data.prepared)
    tr = ds.splits["train"]
    assert tr.rating.sum() == n and sorted(tr.rating.tolist()) == sorted(counts.tolist())
    assert ds.manifest["repeats"] == "sum" and ds.manifest["config"]["data"]["repeats"] == "sum"
    assert ds.manifest["rating_scale"] == [1.0, float(tr.rating.max())]  # the sums' range, not the rows' 1-1
    latest = ingest(dataclasses.replace(cfg.data, repeats="latest"), cfg.split, output=tmp_path / "latest")
    assert "repeats" not in latest and latest["rating_scale"] == [1.0, 1.0]
    assert latest["cleaning"]["repeated_pairs_dropped"] == n - 40 * 12


def test_count_weight_hand_computed():
    cfg = SimpleNamespace(als_rating_weight=0.0, als_recency=0.0, als_count_weight=2.0)
    u, r = np.array([0, 0, 1]), np.array([1.0, 3.0, 10.0], np.float32)
    np.testing.assert_allclose(confidence(u, r, None, (1, 10), cfg, summed=True),
                               [1.0, 1 + 2 * np.log(3), 1 + 2 * np.log(10)], rtol=1e-6)
    assert confidence(u, r, None, (1, 10), cfg) is None  # not counts (data.repeats=latest): no count weight
    both = SimpleNamespace(als_rating_weight=1.0, als_recency=0.0, als_count_weight=1.0)
    np.testing.assert_allclose(confidence(u, r, None, (1, 10), both, summed=True),
                               [1.0, (1 + 2 / 9) * (1 + np.log(3)), 2 * (1 + np.log(10))], rtol=1e-6)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("weight", [0.0, 1.5])
def test_train_on_summed_clicks_end_to_end_and_the_weight_reaches_als(tmp_path, monkeypatch, weight):
    from embedrec.training import als

    src, _ = _clicks(tmp_path)
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = invoke("ingest", src, *sets, "--set", "data.columns.rating=null", "--set", "data.repeats=sum")
    assert r.exit_code == 0, r.stderr
    assert "repeats summed" in r.stderr
    seen = []

    class Spy(als.ALS):
        def __init__(self, model, cfg, users, movies, threads, weights=None, **kw):
            seen.append((users.copy(), movies.copy(), None if weights is None else weights.copy()))
            super().__init__(model, cfg, users, movies, threads, weights=weights, **kw)

    monkeypatch.setattr(als, "ALS", Spy)
    r = invoke("train", *sets, "--set", "model.dim=4", "--set", "train.epochs=2", "--set", "train.threads=1",
               "--set", "train.als_dims=[4]", "--set", f"train.als_count_weight={weight}", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert "ndcg@10" in json.dumps(json.loads(r.stdout)["splits"]["test"]["model"])
    ds = load_dataset(tmp_path / "ds")
    tr = ds.splits["train"]
    users, movies, w = seen[0]  # the first fit: the train split's rows
    assert len(users) == len(tr)
    if weight == 0:
        assert w is None
    else:  # w = 1 + b * log(count) on the training counts, row for row
        np.testing.assert_allclose(w, 1 + weight * np.log(tr.rating.astype(np.float64)), rtol=1e-6)
        assert w.min() == 1.0 and w.max() > 1.0


def test_train_says_a_repeats_setting_the_dataset_was_not_ingested_with(tmp_path):
    src, _ = _clicks(tmp_path)
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    assert invoke("ingest", src, *sets, "--set", "data.columns.rating=null").exit_code == 0  # latest
    r = invoke("train", *sets, "--set", "model.dim=4", "--set", "train.epochs=1", "--set", "train.threads=1",
               "--set", "train.als_dims=[4]", "--set", "train.als_count_weight=1", "--set", "data.repeats=sum")
    assert r.exit_code == 0, r.stderr
    assert "data.repeats=sum is an ingest setting, but dataset" in r.stderr and "prepared with data.repeats=latest" \
        in r.stderr
    assert "train.als_count_weight has no effect: dataset" in r.stderr


def test_count_weight_off_leaves_the_checkpoint_fingerprint_as_before():
    """A checkpoint of a run before train.als_count_weight resumes: off (0), the key is not in the fingerprint."""
    from embedrec.config import Config
    from embedrec.training.checkpoints import fp_config

    cfg = Config()
    assert "als_count_weight" not in fp_config(cfg.model, cfg.train, cfg.features)["train"]
    on = cfg.updated({"train.als_count_weight": 1.0})
    assert fp_config(on.model, on.train, on.features)["train"]["als_count_weight"] == 1.0
