"""data.repeats=sum (a (user, movie)'s rows summed into one, a click count) and train.als_count_weight (its log
confidence in als)."""

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.data.dataset import load_dataset
from embedrec.data.repeats import dedupe_rows, sum_repeats
from embedrec.ingestion import format_summary, ingest
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
    assert out["_first_time"].tolist() == [5, 3, 4]  # the earliest: read after the split, never written


# a click log (user, movie, time), one line per event. User 1 first clicks 10, 20, 30, 40, 50 at 1, 2, 4, 6, 8 and
# clicks 10 again at 3 and 9 and 40 again at 7: under user_time (test 0.4) its latest-chosen 40 and 50 are held out,
# its cut at 6, and 10's click at 9 comes after it. User 2 first clicks 40, 50, 10, 20, 30 at 1 to 5 and 40 again at
# 4, the time of its cut (20's first click): not after it. (By its latest time, 10 at 9, user 1's 10 was held out.)
CLICKS = [(1, 10, 1), (1, 20, 2), (1, 10, 3), (1, 30, 4), (1, 40, 6), (1, 40, 7), (1, 50, 8), (1, 10, 9),
          (2, 40, 1), (2, 50, 2), (2, 10, 3), (2, 40, 4), (2, 20, 4), (2, 30, 5)]


def _split_pairs(ds) -> dict:
    """{split: {(user, movie): (count, time)}} of a dataset."""
    return {name: {(u, m): (r, t) for u, m, r, t in ds.split_frame(name).itertuples(index=False)}
            for name in ds.splits}


def _ingest_clicks(tmp_path, *sets, rows=CLICKS):
    src = write(tmp_path / "clicks.csv", "user_id,item_id,timestamp\n" + "".join(f"{u},{m},{t}\n" for u, m, t in rows))
    r = invoke("ingest", src, "-o", tmp_path / "ds", *[x for s in sets for x in ("--set", s)])
    assert r.exit_code == 0, r.stderr
    return load_dataset(tmp_path / "ds"), r


def test_held_out_cuts_hand_computed():
    from embedrec.data.repeats import NO_CUT
    from embedrec.data.repeats import pair_cuts as held_out_cuts
    from embedrec.data.split import TEST, TRAIN, VALID

    users = np.array(["a", "a", "a", "b", "b", "c"], dtype=object)
    first = np.array([1, 7, 5, 2, 9, 3])
    assign = np.array([TRAIN, TEST, VALID, TRAIN, TEST, TRAIN], dtype=np.int8)
    # a: its held-out pairs' earliest first time 5 (valid before test); b: 9; c holds nothing out: no cut
    assert held_out_cuts(users, first, assign, "user_time").tolist() == [5, 5, 5, 9, 9, NO_CUT]
    assert held_out_cuts(users, first, assign, "global_time").tolist() == [5] * 6  # the one cut
    assert held_out_cuts(users, first, np.zeros(6, np.int8), "user_time").tolist() == [NO_CUT] * 6


def test_cut_training_pairs_hand_computed():
    from embedrec.data.repeats import cut_training_pairs
    from embedrec.data.split import TEST, TRAIN

    events = []
    # (1, 10) at 4, 1, 9 with ratings 1, 2, 4 (input order, not time order); (1, 20) once; (1, 30) at 2 and 3
    frame = pd.DataFrame({"user_id": [1, 1, 1, 1, 1, 1], "movie_id": [10, 10, 20, 30, 10, 30],
                          "rating": np.array([1, 2, 1, 1, 4, 1], np.float32), "timestamp": [4, 1, 5, 2, 9, 3]})
    out, _, _ = sum_repeats(frame, events=events)
    assert out["_events"].tolist() == [0, -1, 1]  # 20 is one event: never cut, not kept
    ev = events[0]
    assert ev.time.tolist() == [4, 1, 9, 2, 3] and ev.rating.tolist() == [1, 2, 4, 1, 1]
    assert ev.bounds.tolist() == [0, 3, 5]
    assign = np.array([TRAIN, TRAIN, TRAIN], np.int8)
    rows, sums, latest, dropped = cut_training_pairs(out.reset_index(drop=True), assign, ev, np.full(3, 4))
    # 10: its events at 4 and 1 (the cut's own time counts), 9 dropped; 30: all before the cut, so not listed
    assert rows.tolist() == [0] and sums.tolist() == [3.0] and latest.tolist() == [4] and dropped == 1
    rows, *_ = cut_training_pairs(out.reset_index(drop=True), np.array([TEST, TRAIN, TRAIN], np.int8), ev,
                                  np.full(3, 4))
    assert rows.size == 0  # a held-out pair keeps every event
    for chunk in (1, 2, 1 << 22):  # gathered a pair at a time or all at once: the same
        rows, sums, latest, dropped = cut_training_pairs(out.reset_index(drop=True), assign, ev, np.full(3, 2),
                                                         chunk=chunk)
        # 10: its event at 1 alone (rating 2); 30: its event at 2 (3 is after the cut)
        assert rows.tolist() == [0, 2] and sums.tolist() == [2.0, 1.0] and latest.tolist() == [1, 2]
        assert dropped == 3


def test_user_time_places_a_summed_pair_by_its_first_event_and_counts_training_up_to_the_cut(tmp_path):
    """An ops review: 59% of a click log's user_time test pairs had been chosen before the cut, their earlier
    clicks dropped from training with them (0.43 NDCG@10 where a next-day protocol gave 0.14)."""
    ds, r = _ingest_clicks(tmp_path, "split.method=user_time", "split.valid=0", "split.test=0.4")
    got = _split_pairs(ds)
    assert got["test"] == {(1, 40): (2, 7), (1, 50): (1, 8), (2, 20): (1, 4), (2, 30): (1, 5)}  # every event
    assert got["train"] == {(1, 10): (2, 3), (1, 20): (1, 2), (1, 30): (1, 4),  # 10's click at 9 dropped
                            (2, 40): (2, 4), (2, 50): (1, 2), (2, 10): (1, 3)}  # 40's at 4, the cut, kept
    c = ds.manifest["cleaning"]
    assert (c["training_pairs_cut"], c["training_events_after_cut_dropped"]) == (1, 1)
    assert "cut_pairs_below_min_rating" not in c and "held out" not in r.stderr
    assert ("cleaning: rows read 14, repeats summed 7 rows into 3 pairs, 1 training pair counted up to the cut "
            "(1 later event dropped), eval rows dropped unknown 0") in r.stderr
    assert sum(len(v) for v in got.values()) == 10 and ds.manifest["counts"]["ratings"] == 10
    assert {"_first_time", "_events"}.isdisjoint(pd.read_parquet(tmp_path / "ds" / "current" / "train.parquet"))


def test_global_time_places_summed_pairs_by_their_first_event_and_cuts_training_at_the_cut(tmp_path):
    # first clicks in time: 1 (u1 10, u2 40), 2, 3, 4, 5 (u2 30), 6 (u1 40), 8 (u1 50): the latest two test, the one
    # before valid, so the cut is 5, and only user 1's click of 10 at 9 comes after it
    ds, r = _ingest_clicks(tmp_path, "split.method=global_time", "split.valid=0.1", "split.test=0.2")
    got = _split_pairs(ds)
    assert got["test"] == {(1, 40): (2, 7), (1, 50): (1, 8)} and got["valid"] == {(2, 30): (1, 5)}
    assert got["train"][(1, 10)] == (2, 3) and got["train"][(2, 40)] == (2, 4) and len(got["train"]) == 7
    assert "1 training pair counted up to the cut (1 later event dropped)" in r.stderr


def test_random_split_and_latest_are_not_cut(tmp_path):
    """The random split holds out pairs with every event, as before; so does data.repeats=latest under a time
    split (each pair its latest row, placed by it)."""
    ds, r = _ingest_clicks(tmp_path, "split.valid=0", "split.test=0.4")
    pairs = {k: v for part in _split_pairs(ds).values() for k, v in part.items()}
    whole = pd.DataFrame(CLICKS, columns=["u", "m", "t"]).groupby(["u", "m"])["t"].agg(["size", "max"])
    assert len(pairs) >= 8 and all(v == tuple(whole.loc[k]) for k, v in pairs.items())  # every event, the latest
    assert "training_pairs_cut" not in ds.manifest["cleaning"] and "counted up to the cut" not in r.stderr
    ds, r = _ingest_clicks(tmp_path / "latest", "split.method=user_time", "split.valid=0", "split.test=0.4",
                           "data.repeats=latest")
    assert set(_split_pairs(ds)["test"]) == {(1, 10), (1, 50), (2, 20), (2, 30)}  # by the latest row, as before
    assert "training_pairs_cut" not in ds.manifest["cleaning"]


def test_a_training_pair_cut_below_min_rating_is_kept_as_rated(tmp_path):
    """data.min_rating=2 on a click log keeps pairs clicked twice: a training pair clicked once before the cut
    and again after it was not yet one, so it is not learnt, and never offered back (rated_below)."""
    # user 1: 1 at 1 and 9, 2 at 2 and 3, 3 at 4 and 5, 4 at 6 and 7 (held out: the cut is 6); user 2's cut 7
    rows = [(1, 1, 1), (1, 1, 9), (1, 2, 2), (1, 2, 3), (1, 3, 4), (1, 3, 5), (1, 4, 6), (1, 4, 7),
            (2, 4, 1), (2, 4, 2), (2, 1, 3), (2, 1, 4), (2, 2, 5), (2, 2, 6), (2, 3, 7), (2, 3, 8)]
    ds, r = _ingest_clicks(tmp_path, "split.method=user_time", "split.valid=0", "split.test=0.25",
                           "data.min_rating=2", rows=rows)
    got = _split_pairs(ds)
    assert set(got["train"]) == {(1, 2), (1, 3), (2, 4), (2, 1), (2, 2)} and set(got["test"]) == {(1, 4), (2, 3)}
    below = {(ds.users["user_id"][u], ds.movies["movie_id"][m]) for u, m in zip(*ds.rated_below)}
    assert below == {(1, 1)}
    c = ds.manifest["cleaning"]
    assert c["cut_pairs_below_min_rating"] == 1 and c["below_min_rating_kept_as_seen"] == 1
    assert c["training_events_after_cut_dropped"] == 1 and c["users_left_out"] == 0


def test_sum_repeats_nothing_repeated_returns_the_frame():
    df = FRAME.iloc[[0, 2, 3]]
    out, rows, pairs = sum_repeats(df)
    assert out is df and (rows, pairs) == (0, 0)


def test_latest_default_unchanged():
    rows, exact, repeated = dedupe_rows(FRAME)  # (1, 10)'s latest row (4) in its first line's place
    assert rows.tolist() == [4, 2, 3] and (exact, repeated) == (1, 1)
    assert dedupe_rows(FRAME.iloc[[0, 2, 3]]) == (None, 0, 0)  # nothing repeated: the frame as read


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
    assert invoke("ingest", src, *sets, "--set", "data.columns.rating=null", "--set",
                  "data.repeats=latest").exit_code == 0  # (auto would sum: a table without ratings)
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


def _taste_clicks(path, shuffle: bool, n_users=300, n_movies=120, seed=0):
    """A click log whose counts carry the signal: each user has a taste cluster; 8 of its movies clicked
    1 + Poisson(3) times, 8 others (by popularity) 1 + Poisson(0.3) times. ``shuffle``: the same pairs with the
    counts permuted among them (noise). 4,800 pairs, ~1.2 s to ingest and train."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(8, size=n_movies)
    pop = (1.0 / np.arange(1, n_movies + 1) ** 0.8)[rng.permutation(n_movies)]
    pairs, counts = [], []
    for u in range(n_users):
        own = np.flatnonzero(cluster == rng.integers(8))
        taste = rng.choice(own, min(8, len(own)), replace=False)
        rest = np.setdiff1d(np.arange(n_movies), taste)
        other = rng.choice(rest, 8, replace=False, p=pop[rest] / pop[rest].sum())
        for m, lam in [(m, 3.0) for m in taste] + [(m, 0.3) for m in other]:
            pairs.append((u, m))
            counts.append(1 + rng.poisson(lam))
    counts = np.array(counts)
    counts = rng.permutation(counts) if shuffle else counts
    lines = [f"{u},{m},{1000 + t}\n" for (u, m), c in zip(pairs, counts) for t in range(c)]
    return write(path, "user_id,movie_id,timestamp\n" + "".join(lines))


def _ingested(tmp_path, shuffle=False, repeats="sum", *more):
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    r = invoke("ingest", _taste_clicks(tmp_path / "clicks.csv", shuffle), *sets, "--set", "data.columns.rating=null",
               "--set", f"data.repeats={repeats}", *more)
    assert r.exit_code == 0, r.stderr
    return sets


SMALL = ("--set", "model.dim=8", "--set", "train.threads=1", "--set", "train.als_dims=[]")


@pytest.mark.parametrize("shuffle, picked", [(False, 1.0), (True, 0.0)])
def test_count_weight_auto_keeps_1_where_counts_follow_tastes_and_0_where_they_are_noise(tmp_path, shuffle, picked):
    """The default, auto: on a summed dataset one more candidate, count weight 1 at the best settings (its own
    folder), kept if valid NDCG@10 prefers it (measured 0.2763 at 0 against 0.2912 at 1 with signal, 0.2646
    shuffled); the choice is logged, recorded in the selection and the run's config, and replayed by the refit."""
    sets = _ingested(tmp_path, shuffle)
    r = invoke("train", "-v", *sets, *SMALL, "--format", "json")  # -v: the refit's replay line below
    assert r.exit_code == 0, r.stderr
    line = next(x for x in r.stderr.splitlines() if "als_count_weight auto:" in x)
    assert re.search(r"als_count_weight auto: valid ndcg@10 [0-9.]+ at 0, [0-9.]+ at 1; chose " + f"{picked:g}$", line)
    assert re.search(r"^chose als_reg 0.01, als_unobserved [^,]+, als_count_weight " + f"{picked:g}: valid ndcg@10 "
                     r"[0-9.]+ as fitted, the best of \d+ fits$", r.stderr, re.M)
    assert "has no effect" not in r.stderr
    m = json.loads(r.stdout)
    assert m["selection"]["als_count_weight"] == picked
    assert "als-reg-0.01-count-1" in [p.name for p in (tmp_path / "run").glob("als-*count*")]
    assert yaml.safe_load((tmp_path / "run" / "current" / "config.yaml").read_text())["train"]["als_count_weight"] == picked
    replay = next(x for x in r.stderr.splitlines() if "replaying the selection" in x)
    assert ("als_count_weight 1 (chosen)" in replay) == (picked == 1.0)


def test_count_weight_a_number_is_not_tried(tmp_path):
    """An explicit weight trains as before: no extra candidate, no auto line."""
    sets = _ingested(tmp_path)
    r = invoke("train", *sets, *SMALL, "--set", "train.als_count_weight=1", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert "als_count_weight auto" not in r.stderr and not list((tmp_path / "run").glob("als-*count*"))
    assert json.loads(r.stdout)["selection"]["als_count_weight"] == 1.0


def test_count_weight_auto_on_a_latest_dataset_trains_what_0_trains(tmp_path, monkeypatch):
    """Not counts (data.repeats=latest): auto is 0, with no extra candidate and no warning; the same fits, the same
    selection and the same test scores as an explicit 0."""
    import embedrec.training.select as S

    sets = _ingested(tmp_path, repeats="latest")
    real, fits = S.fit, []
    monkeypatch.setattr(S, "fit", lambda *a, **k: fits.append((Path(a[3]).name, a[2])) or real(*a, **k))
    out = {}
    for weight in ("auto", "0"):
        fits.clear()
        r = invoke("train", *sets, *SMALL, "--set", f"run.dir={tmp_path / weight}", "--set",
                   f"train.als_count_weight={weight}", "--format", "json")
        assert r.exit_code == 0, r.stderr
        assert "count_weight auto" not in r.stderr and "has no effect" not in r.stderr
        m = json.loads(r.stdout)
        out[weight] = ([(name, dataclasses.replace(t, als_count_weight=0.0)) for name, t in fits],
                       {k: v for k, v in m["selection"].items() if "seconds" not in k}, m["splits"]["test"]["model"])
        assert all(t.als_count_weight == 0.0 for _, t in fits)
    assert out["auto"] == out["0"] and len(out["auto"][0]) == 4  # reg 0.01, 0.02, a0 half and twice: no count one
    assert out["auto"][1]["als_count_weight"] == 0.0


def test_count_weight_auto_resumes_its_candidate_and_the_refit_replays_the_choice(tmp_path, monkeypatch):
    """A run killed in the count weight's candidate resumes it from its checkpoint to the model an uninterrupted
    run selects (the same choice, 1); the refit on train+valid replays 0's sweeps, then 1's, then the half a0's
    at 1 (tried after the count weight, at its choice)."""
    import embedrec.training.refit as R
    import embedrec.training.select as S
    from embedrec.config import load_config
    from embedrec.errors import Interrupted

    _ingested(tmp_path)
    ds = load_dataset(tmp_path / "ds")
    cfg = load_config(None, ["model.dim=8", "train.threads=1", "train.als_dims=[]"])
    real, real_refit, stages = S.fit, R.fit, []
    monkeypatch.setattr(R, "fit", lambda *a, **k: stages.append(a[2].als_count_weight) or real_refit(*a, **k))
    _, _, whole, chosen = S.fit_and_refit(ds, cfg, tmp_path / "a")
    assert chosen.train.als_count_weight == 1.0 and stages == [0.0, 1.0, 1.0]

    def stop(row):
        raise KeyboardInterrupt

    monkeypatch.setattr(S, "fit", lambda *a, **k: real(*a, **({**k, "on_epoch": stop}
                                                              if a[2].als_count_weight == 1.0 else k)))
    with pytest.raises(Interrupted, match="checkpoint of epoch 1"):
        S.fit_and_refit(ds, cfg, tmp_path / "b")
    how = []
    monkeypatch.setattr(S, "fit", lambda *a, **k: how.append((Path(a[3]).name, k["resume"])) or real(*a, **k))
    stages.clear()
    _, _, resumed, again = S.fit_and_refit(ds, cfg, tmp_path / "b", resume=True)
    assert ("als-reg-0.01-count-1", True) in how and again.train == chosen.train and stages == [0.0, 1.0, 1.0]
    assert resumed.best_value == whole.best_value
    for key, value in whole.model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(resumed.model.state_dict()[key]), np.asarray(value))


def test_a_new_users_counts_weigh_as_training_weighed_them(tmp_path):
    """A first-hour review: on a count-weighted model `--rated 194=29,8=1` and `--rated 194=1,8=29` gave the same
    list, a note said the values made no difference, and a count above the training maximum was refused as
    outside the rating scale. The fold-in weighs a new user's counts 1 + b log(count), as als.confidence; a liked
    movie counts 1; any count above 0 is taken; the manifest records the weight."""
    import embedrec as er

    sets = _ingested(tmp_path)
    r = invoke("train", *sets, *SMALL, "--set", "train.als_count_weight=1", "-q")
    assert r.exit_code == 0, r.stderr
    m = er.open(tmp_path / "run")
    assert m.engine.training_ratings["count_weight"] == 1.0
    a, b = (int(x) for x in m.movie_ids[:2])
    one = m.recommend_new(rated={a: 29, b: 1}, k=10).movie_ids[0].tolist()
    two = m.recommend_new(rated={a: 1, b: 29}, k=10).movie_ids[0].tolist()
    assert one != two
    assert m.recommend_new(rated={a: 1, b: 1}, k=10).movie_ids[0].tolist() == \
        m.recommend_new(liked=[a, b], k=10).movie_ids[0].tolist()
    assert m.recommend_new(rated={a: 1000, b: 1}, k=3).movie_ids[0].size == 3  # above any training count
    with pytest.raises(er.UsageError, match=r"trained on counts \(data.repeats=sum\).*give one above 0"):
        m.recommend_new(rated={a: 0, b: 1}, k=3)
    with pytest.raises(er.UsageError, match=r"True is a flag, not a rating"):
        m.recommend_new(rated={a: True, b: 1}, k=3)
    r = invoke("recommend", "--run", tmp_path / "run", "--rated", f"{a}=29,{b}=1", "-k", "3")
    assert r.exit_code == 0 and "make no difference" not in r.stderr, r.stderr
    # off (0): the counts weigh nothing, as in training, and the note says so
    r = invoke("train", *sets, *SMALL, "--set", "train.als_count_weight=0", "--set", f"run.dir={tmp_path / 'r0'}",
               "-q")
    assert r.exit_code == 0, r.stderr
    m0 = er.open(tmp_path / "r0")
    assert m0.engine.training_ratings["count_weight"] == 0.0
    r = invoke("recommend", "--run", tmp_path / "r0", "--rated", f"{a}=29,{b}=1", "-k", "3")
    assert r.exit_code == 0 and "was trained on every pair as a positive interaction, its count unweighted " \
        "(train.als_count_weight 0), so the --rated values make no difference" in r.stderr, r.stderr
    assert m0.recommend_new(rated={a: 29, b: 1}, k=10).movie_ids[0].tolist() == \
        m0.recommend_new(rated={a: 1, b: 29}, k=10).movie_ids[0].tolist()


def test_a_refused_count_quotes_the_words_given_not_the_id_they_found(tmp_path):
    """A first-hour review (session 53): on a click log `--rated 'star wars=0'` was refused as 'm-0050=0', the id
    the title found. A request's values are checked before its titles become ids, so the refusal quotes what was
    typed, in Python too, and is the only line (no 'movie 5, Star Wars' said before it)."""
    import embedrec as er

    movies = write(tmp_path / "movies.csv", "movie_id,title\n" + "".join(
        f"{m},{'Star Wars' if m == 5 else f'Film {m}'}\n" for m in range(120)))
    sets = _ingested(tmp_path, False, "sum", "--set", f"data.movies={movies}")
    assert invoke("train", *sets, *SMALL, "-q").exit_code == 0
    r = invoke("recommend", *sets, "--rated", "star wars=0")
    assert r.exit_code == 2 and r.stdout == "" and r.stderr == (
        "error: --rated 'star wars=0': this model was trained on counts (data.repeats=sum), so a value is how many "
        "times the user chose the movie: give one above 0\n"), r.stderr
    r = invoke("recommend", *sets, "--liked", "film 7", "--rated", "star wars=nan")
    assert r.exit_code == 2 and r.stderr == "error: --rated 'star wars=nan': the rating must be a finite number, " \
        "e.g. --rated 'star wars=1'\n", r.stderr  # an example the shell reads as one argument
    with er.open(tmp_path / "run") as m:
        with pytest.raises(er.UsageError, match=r"^rated 'star wars=0': this model was trained on counts"):
            m.recommend_new(rated={"star wars": 0})
        with pytest.raises(er.UsageError, match=r"^rated '5=0': "):
            m.recommend_new(rated={5: 0})
    assert invoke("recommend", *sets, "--rated", "star wars=2", "-k", "2").exit_code == 0


def test_a_resume_without_the_checkpoints_count_weight_names_it():
    """A red team: a run trained with train.als_count_weight=1, resumed without it (auto, resolved 0 there, or 0),
    was said to be 'made on another dataset ... train again', since the off value is left out of the checkpoint's
    config; the difference names the key, as any other setting's does."""
    from embedrec.training.checkpoints import difference

    old = {"train": {"als_reg": 0.01, "als_count_weight": 1.0}, "model": {"dim": 8}}
    new = {"train": {"als_reg": 0.01}, "model": {"dim": 8}}
    assert difference(old, new) == "train.als_count_weight (1.0, now 0)"
    assert difference(new, old) == "train.als_count_weight (0, now 1.0)"
    assert difference({"train": {"als_reg": 0.01, "gone_key": 3}, "model": {"dim": 8}}, new) == \
        "dataset (its manifest differs)"  # a key an older embedrec recorded is no difference to name


def test_min_rating_and_a_given_scale_under_sum_are_the_sums(tmp_path):
    """A red team: `data.min_rating=2` on a click log (every row 1) was refused before the rows were summed,
    where the docs say it thresholds the sums; a `data.rating_scale` given beside `sum` was kept while the sums
    went past it (an explicit model's predictions clipped to it). The minimum is a minimum count; a scale the
    sums pass is widened to them, said in a warning; a minimum no sum reaches is one line."""
    src, counts = _clicks(tmp_path)
    base = ["--set", "data.repeats=sum", "--set", "split.valid=0", "--set", "split.test=0"]
    r = invoke("ingest", src, "-o", tmp_path / "m2", *base, "--set", "data.min_rating=2")
    assert r.exit_code == 0, r.stderr
    tr = load_dataset(tmp_path / "m2").splits["train"]
    assert len(tr) == np.count_nonzero(counts >= 2) and tr.rating.min() >= 2
    r = invoke("ingest", src, "-o", tmp_path / "m9", *base, "--set", "data.min_rating=9")
    assert r.exit_code == 2 and r.stderr == (
        f"error: config key 'data.min_rating': 9 is above every summed rating (the highest sum of a pair's rows is "
        f"{counts.max()}), so no pair would be kept; lower data.min_rating or leave it out\n"), r.stderr
    r = invoke("ingest", src, "-o", tmp_path / "sc", *base, "--set", "data.rating_scale=[1, 3]")
    assert r.exit_code == 0, r.stderr
    assert f"data.rating_scale [1, 3] is the rows' scale; data.repeats=sum sums them up to {counts.max()}, so the " \
        f"dataset's scale is [1, {counts.max()}]" in r.stderr
    assert load_dataset(tmp_path / "sc").manifest["rating_scale"] == [1.0, float(counts.max())]


def test_tune_dims_says_the_count_weight_each_trial_chose(tmp_path):
    """A red team: on a data.repeats=sum dataset each tune-dims trial runs train's selection with the count
    weight's candidate, but neither the table nor tune.json said which weight it chose."""
    sets = _ingested(tmp_path)
    r = invoke("tune-dims", *sets, "--set", "train.threads=1", "--set", "tune.workers=1", "--set", "tune.threads=1",
               "--set", f"tune.dir={tmp_path / 'tune'}", "--dims", "8", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows and rows[0]["als_count_weight"] in ("0", "1", "0.0", "1.0"), rows
    saved = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert saved["trials"][0]["als_count_weight"] in (0.0, 1.0)


def test_an_explicit_model_refuses_a_click_log_read_without_its_rating_column_either_way(tmp_path):
    """A review: the same click log was refused for model.objective=explicit when ingested with
    data.columns.rating=null, and trained on its counts when data.repeats=sum alone read it without the column.
    Both are refused alike, the manifest recording the column as not read."""
    src, _ = _clicks(tmp_path)
    for name, extra in (("a", []), ("b", ["--set", "data.columns.rating=null"])):
        r = invoke("ingest", src, "-o", tmp_path / name, "--set", "data.repeats=sum", *extra)
        assert r.exit_code == 0, r.stderr
        r = invoke("train", "--set", f"data.prepared={tmp_path / name}", "--set", f"run.dir={tmp_path / ('r' + name)}",
                   "--set", "model.objective=explicit")
        assert r.exit_code == 2 and r.stderr.startswith("error: config key 'model.objective': explicit needs "
                                                        "ratings"), r.stderr
    assert json.loads((tmp_path / "a" / "current" / "manifest.json").read_text())["columns_read"] == {"rating": None}


def test_train_says_ratings_of_zero_are_trained_as_positives_and_how_to_leave_them_out(tmp_path):
    """A first-hour pass: a 0/1 like/dislike file trained its 0s as positives of the ranking model, without a word.
    By default (data.min_rating: auto) ingest keeps the 0s apart (never recommended back, not learnt) and says so;
    set to null, train says what the 0s become and how to leave them out; a floor the user set is theirs."""
    from embedrec.data.dataset import load_dataset

    rng = np.random.default_rng(0)
    rows = [(u, m, int(rng.integers(0, 2))) for u in range(1, 31) for m in rng.choice(np.arange(1, 21), 8, False)]
    (tmp_path / "z.csv").write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{r}\n" for u, m, r in rows))
    zeros = sum(r == 0 for *_, r in rows)
    for name, extra in (("auto", []), ("all", ["--set", "data.min_rating=null"]),
                        ("liked", ["--set", "data.min_rating=1"]), ("zero", ["--set", "data.min_rating=0"])):
        sets = ["--set", f"data.prepared={tmp_path / name}", "--set", f"run.dir={tmp_path / ('run-' + name)}"]
        r = invoke("ingest", tmp_path / "z.csv", *sets, *extra)
        assert r.exit_code == 0, r.stderr
        noted = "note: the ratings are likes and dislikes (0 and 1), so the dislikes (below 1) are kept apart"
        assert (noted in r.stderr) == (name == "auto"), r.stderr
        ds = load_dataset(tmp_path / name)
        assert ds.manifest["min_rating"] == {"auto": 1, "all": None, "liked": 1, "zero": 0}[name]
        assert (ds.rated_below is not None and len(ds.rated_below[0]) == zeros) == (name in ("auto", "liked"))
        r = invoke("train", *sets, "--set", "model.dim=4", "--set", "train.epochs=1", "--set", "train.threads=1",
                   "--set", "train.als_dims=[]")
        assert r.exit_code == 0, r.stderr
        said = f"{zeros:,} of the ratings of dataset '{tmp_path / name}' are 0 or below (dislikes, on its like/dislike scale)"
        assert (said in r.stderr) == (name == "all"), r.stderr  # a floor the user set, 0 too, is theirs (a review)
        # the whole command: its source and folder, with the settings it was ingested with (a review: the flags
        # alone ingested ML-100K)
        assert (f"ingest it again: embedrec ingest {tmp_path / 'z.csv'} --set data.prepared={tmp_path / name} --set "
                "data.min_rating=auto --overwrite, the default" in r.stderr) or name != "all", r.stderr
        if name == "auto":  # an explicit model on the likes alone: refused, saying why and how
            r = invoke("train", *sets, "--set", "model.objective=explicit", "--set", "model.dim=4")
            assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
            assert r.stderr.startswith(f"error: config key 'model.objective': explicit fits ratings, and dataset "
                                       f"'{tmp_path / name}' kept only its likes (ratings from 1): ingest set its "
                                       "dislikes apart "
                                       "(data.min_rating: auto, on a like/dislike scale); to predict likes and "
                                       "dislikes, ingest it again with --set data.min_rating=null --overwrite"), r.stderr


def test_like_floor_is_the_lowest_like_of_a_like_dislike_scale_and_none_on_any_other():
    """data.min_rating: auto's rule, by hand: at most three values, some 0 or below and some above."""
    from embedrec.data.ratings import like_floor

    a = np.array
    assert like_floor(a([0.0, 1, 1, 0])) == 1 and like_floor(a([-1.0, 1])) == 1 and like_floor(a([-1.0, 0, 1])) == 1
    assert like_floor(a([0.0, 2, 1])) == 1 and like_floor(a([-2.0, -1, 3])) == 3
    assert like_floor(a([0.0, 1, 2, 3])) is None  # a star scale from 0: its 0 is a rating
    assert like_floor(a([0.0, 0.25, 0.5, 0.75, 1])) is None
    assert like_floor(a([1.0, 2, 3])) is None and like_floor(a([1.0, 1])) is None  # nothing at or below 0
    assert like_floor(a([0.0, 0])) is None and like_floor(a([-1.0, 0])) is None  # nothing above 0
    assert like_floor(a([], np.float64)) is None


def test_two_positive_values_are_the_pair_auto_cannot_tell_apart():
    """Exactly two distinct values, both above 0 (a 1/2 thumbs file, a view 1 and a purchase 2, 4 and 5 stars):
    by hand; any other set is None (like_floor's, a scale, one value, a count of 0 or below)."""
    from embedrec.data.ratings import two_positive_values, two_values_warning

    a = np.array
    assert two_positive_values(a([2.0, 1, 1, 2, 1])) == (1.0, 2.0) and two_positive_values(a([5.0, 4])) == (4, 5)
    assert two_positive_values(a([0.5, 1.0])) == (0.5, 1.0)
    assert two_positive_values(a([1.0, 2, 3])) is None and two_positive_values(a([2.0, 2])) is None
    assert two_positive_values(a([0.0, 1])) is None and two_positive_values(a([-1.0, 1])) is None
    assert two_positive_values(a([], np.float64)) is None
    fmt, *args = two_values_warning(a([2.0, 1, 1, 2, 1]), 1.0, 2.0)
    assert (fmt % tuple(args)).startswith("the ratings hold two values, 1 (3 rows) and 2 (2), both above 0, so ")


def test_a_thumbs_file_coded_1_and_2_is_said_with_the_setting_for_either_reading(tmp_path):
    """A review: a thumbs file coded 1 (down) and 2 (up) was learnt as all likes without a word (test NDCG@10 0.116
    against 0.306 with --set data.min_rating=2). data.min_rating: auto does not guess (a survey codes yes 1 and no
    2, a shop a view 1 and a purchase 2): ingest warns, -q too, naming the two values, their rows and the setting
    for each reading; either setting given is the user's choice and silences it, and data.min_rating=2 keeps the
    1s apart as rated; a scale given (a release's, data.rating_scale) says they are ratings on it."""
    rows = [(u, m, 1 + (u + m) % 2) for u in range(1, 21) for m in range(1, 11)]
    (tmp_path / "t.csv").write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{r}\n" for u, m, r in rows))
    ones = sum(r == 1 for *_, r in rows)
    r = invoke("ingest", tmp_path / "t.csv", "-o", tmp_path / "a", "-q")
    assert r.exit_code == 0 and r.stdout == "", r.stderr
    assert r.stderr == (f"the ratings hold two values, 1 ({ones:,} rows) and 2 ({len(rows) - ones:,}), both above 0, "
                        "so data.min_rating: auto learns both as likes; if 1 is a dislike (thumbs down 1, up 2), ingest "
                        "with --set data.min_rating=2 (the 1s then kept apart as rated, never recommended back); if "
                        "both are likes (a view 1, a purchase 2), --set data.min_rating=null keeps both without this "
                        "warning\n")
    assert load_dataset(tmp_path / "a").manifest["min_rating"] is None
    for name, setting in (("b", "data.min_rating=2"), ("c", "data.min_rating=null"),
                          ("e", "data.rating_scale=[1,5]")):  # a scale given: 1 and 2 stars, its ratings
        r = invoke("ingest", tmp_path / "t.csv", "-o", tmp_path / name, "--set", setting)
        assert r.exit_code == 0 and "two values" not in r.stderr, r.stderr
    ds = load_dataset(tmp_path / "b")
    assert ds.manifest["min_rating"] == 2 and len(ds.rated_below[0]) == ones
    assert set(ds.manifest["rating_histogram"]) == {"2"}
    (tmp_path / "s.csv").write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{1 + (u + m) % 3}\n"
                                                                         for u, m, _ in rows))
    r = invoke("ingest", tmp_path / "s.csv", "-o", tmp_path / "d")  # three values: a scale, said nothing of
    assert r.exit_code == 0 and "two values" not in r.stderr, r.stderr


def test_train_and_tune_dims_say_the_two_values_ingest_learnt_as_likes(tmp_path):
    """A review: only ingest said a 1/2 thumbs file was learnt as all likes; train (the ranking model) and
    tune-dims say it again from the manifest, with each value's ratings and the setting for either reading, and
    nothing once a setting was given (data.min_rating=2 or null) or for the explicit model. By hand: of 200 rows,
    (u + m) odd is a 2."""
    from embedrec.config_ingest import two_values_train_warning

    assert two_values_train_warning({"rating_histogram": {"1": 3, "2": 5}}, "d") is None  # no pair recorded
    assert two_values_train_warning({"two_positive_values": [1, 2], "min_rating": 2.0}, "d") is None
    said = two_values_train_warning({"two_positive_values": [1.0, 2.0], "min_rating": None,
                                     "rating_histogram": {"1": 1000, "2": 5}}, "d")
    assert said == ("the ratings of dataset 'd' hold two values, 1 (1,000) and 2 (5), both above 0, and the ranking "
                    "model learns both as likes (data.min_rating: auto cannot tell them apart); if 1 is a dislike, "
                    "ingest it again: «embedrec ingest --set data.prepared=d --set data.min_rating=2 --overwrite|with "
                    "data.min_rating=2 and overwrite=True»; if both are likes, «embedrec ingest --set data.prepared=d "
                    "--set data.min_rating=null --overwrite|data.min_rating=None and overwrite=True» keeps both "
                    "without this warning"), said
    rows = [(u, m, 1 + (u + m) % 2) for u in range(1, 21) for m in range(1, 11)]
    (tmp_path / "t.csv").write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{r}\n" for u, m, r in rows))
    for name, extra in (("a", ()), ("b", ("--set", "data.min_rating=null"))):
        r = invoke("ingest", tmp_path / "t.csv", "-o", tmp_path / name, "-q", *extra)
        assert r.exit_code == 0, r.stderr
    assert load_dataset(tmp_path / "a").manifest["two_positive_values"] == [1.0, 2.0]
    assert "two_positive_values" not in load_dataset(tmp_path / "b").manifest
    line = ("the ratings of dataset '%s' hold two values, 1 (100) and 2 (100), both above 0, and the ranking model "
            "learns both as likes" % (tmp_path / "a"))
    small = ("--set", "model.dim=4", "--set", "train.epochs=1", "--set", "train.als_dims=[4]")
    r = invoke("train", "--set", f"data.prepared={tmp_path / 'a'}", "--set", f"run.dir={tmp_path / 'r'}", *small)
    assert r.exit_code == 0 and line in r.stderr and f"if 1 is a dislike, ingest it again: embedrec ingest " \
        f"{tmp_path / 't.csv'} --set data.prepared={tmp_path / 'a'} --set data.min_rating=2 --overwrite;" in r.stderr, \
        r.stderr  # (its source and folder: a review ran the flags alone, which ingested ML-100K)
    r = invoke("tune-dims", "--set", f"data.prepared={tmp_path / 'a'}", "--set", f"tune.dir={tmp_path / 't'}",
               "--dims", "4", *small[2:])
    assert r.exit_code == 0 and line in r.stderr, r.stderr
    r = invoke("train", "--set", f"data.prepared={tmp_path / 'b'}", "--set", f"run.dir={tmp_path / 'r2'}", *small)
    assert r.exit_code == 0 and "two values" not in r.stderr, r.stderr
    r = invoke("train", "--set", f"data.prepared={tmp_path / 'a'}", "--set", f"run.dir={tmp_path / 'r3'}",
               "--set", "model.objective=explicit", "--set", "train.epochs=1", "--set", "model.dim=4")
    assert r.exit_code == 0 and "two values" not in r.stderr, r.stderr


def test_the_summary_says_what_the_counts_below_min_rating_count(tmp_path):
    """A review: '-1/1: below min rating dropped 28,707 ... below min rating kept as seen 28,104' said neither what
    was dropped from what nor what 'kept as seen' is. By hand: of 4 dislikes, one (user 1's movie 3) is of a user
    and a movie in the dataset, kept as seen; user 3 rated nothing above it (left out) and movie 4 nobody liked
    (not in the dataset)."""
    (tmp_path / "d.csv").write_text("user_id,movie_id,rating\n1,1,1\n1,2,1\n1,3,-1\n2,1,1\n2,3,1\n2,4,-1\n3,1,-1\n"
                                    "3,2,-1\n")
    r = invoke("ingest", tmp_path / "d.csv", "-o", tmp_path / "a", "--set", "split.valid=0", "--set", "split.test=0")
    assert r.exit_code == 0, r.stderr
    assert (", 4 ratings below data.min_rating 1 dropped from training (1 of them kept as seen, never recommended back; "
            "the other 3 are of users left out or of movies not in the dataset), ") in r.stderr, r.stderr
    cleaning = load_dataset(tmp_path / "a").manifest["cleaning"]  # the manifest's keys as they were
    assert (cleaning["below_min_rating_dropped"], cleaning["below_min_rating_kept_as_seen"]) == (4, 1)
    base = {"name": "x", "counts": {"users": 2, "movies": 3, "ratings": 4}, "density": 0.5, "layout": "csv",
            "rating_histogram": {"1": 4}, "split": {"method": "user_time", "train": 4, "valid": 0, "test": 0},
            "output": "x", "seconds": 0.1, "min_rating": 2.0, "repeats": "sum"}
    line = format_summary({**base, "cleaning": {"below_min_rating_dropped": 1, "cut_pairs_below_min_rating": 2,
                                                "below_min_rating_kept_as_seen": 3}}).splitlines()[3]
    assert line == ("cleaning: 1 pair below data.min_rating 2 dropped from training (3 with the cut pairs below it "
                    "kept as seen, never recommended back), cut pairs below min rating 2"), line
    line = format_summary({**base, "cleaning": {"below_min_rating_dropped": 0}}).splitlines()[3]
    assert line == "cleaning: 0 pairs below data.min_rating 2 dropped from training", line


def test_a_datasets_summary_is_what_ingest_printed(tmp_path):
    """A notebook review: er.ingest logged none of the summary lines the CLI prints (the cleaning's counts were
    only in the manifest). Dataset.summary() gives them from the manifest: the lines `embedrec ingest` printed,
    all but the last (where it wrote the dataset and in how long), for a dataset read back later too."""
    (tmp_path / "d.csv").write_text("user_id,movie_id,rating\n" + "".join(
        f"{u},{m},{1 + (u * m) % 5}\n" for u in range(1, 31) for m in range(1, 13)) + "1,1,1\n2,2,4\n2,2,4\n")
    r = invoke("ingest", tmp_path / "d.csv", "-o", tmp_path / "a")
    assert r.exit_code == 0, r.stderr
    said = load_dataset(tmp_path / "a").summary()
    lines = said.splitlines()
    assert lines[0].startswith("d: 30 users x 12 movies") and "repeated rows (same user, movie and rating as read) dropped 1" in said, said
    assert said in r.stderr and r.stderr.split(said)[1].startswith(f"\nwrote {tmp_path / 'a'} in "), r.stderr


def test_rows_the_same_in_the_columns_read_are_said_as_such_not_as_exact_duplicates(tmp_path):
    """A first-hour review: a play log `user,movie_id,plays,watched_at` read without its time column
    (data.columns.rating=plays; watched_at not read) said 'exact duplicates dropped 188' where no two lines of
    the file are the same: its rows match only on the columns read. The summary says what was compared; with a
    time column read, the time too."""
    lines = ["user,movie_id,plays,watched_at"] + [f"{u},{m},{1 + (u + m) % 3},2024-03-01T20:{m:02d}:00Z"
                                                 for u in range(1, 21) for m in range(1, 11)]
    lines += [f"{u},1,{1 + (u + 1) % 3},2024-03-02T21:00:{u:02d}Z" for u in range(1, 4)]  # same pair, later time
    (tmp_path / "plays.csv").write_text("\n".join(lines) + "\n")
    assert len(set(lines)) == len(lines)  # no identical lines
    sets = ("--set", "data.columns.user=user", "--set", "data.columns.rating=plays", "--set", "data.min_rating=null")
    r = invoke("ingest", tmp_path / "plays.csv", "-o", tmp_path / "a", *sets,
               "--set", "data.columns.timestamp=null")  # (its one column of dates, else read as the times)
    assert r.exit_code == 0, r.stderr
    cleaning = next(line for line in r.stderr.splitlines() if line.startswith("cleaning: "))
    assert "repeated rows (same user, movie and rating as read) dropped 3, " in cleaning, cleaning
    assert "exact duplicates" not in r.stderr
    r = invoke("ingest", tmp_path / "plays.csv", "-o", tmp_path / "b", *sets,
               "--set", "data.columns.timestamp=watched_at")
    assert r.exit_code == 0, r.stderr
    cleaning = next(line for line in r.stderr.splitlines() if line.startswith("cleaning: "))
    assert "repeated rows (same user, movie, rating and time as read) dropped 0, repeated pairs dropped 3" in \
        cleaning, cleaning


def test_min_rating_auto_leaves_counts_and_star_scales_alone(tmp_path):
    """A click log (data.repeats=sum: counts) and a 0-5 star file keep every row as a positive under auto."""
    from embedrec.data.dataset import load_dataset

    (tmp_path / "stars.csv").write_text("user_id,movie_id,rating\n" + "".join(
        f"{u},{m},{(u + m) % 6}\n" for u in range(1, 21) for m in range(1, 11)))
    (tmp_path / "log.csv").write_text("user_id,movie_id\n" + "".join(
        f"{u},{m}\n" for u in range(1, 21) for m in range(1, 11) for _ in range(1 + (u + m) % 2)))
    for name in ("stars", "log"):
        r = invoke("ingest", tmp_path / f"{name}.csv", "-o", tmp_path / name)
        assert r.exit_code == 0 and "likes and dislikes" not in r.stderr, r.stderr
        assert load_dataset(tmp_path / name).manifest["min_rating"] is None


def test_a_star_scales_lowest_star_of_0_is_not_called_a_dislike(tmp_path):
    """A review: a 0-5 star file's few 0s were called dislikes 'on a like/dislike scale', and a 0-1 scale in
    quarters was told data.min_rating=1, which drops its 0.25-0.75 too: only a scale of at most three values is."""
    from embedrec.config_ingest import dislikes_warning

    stars = {"rating_histogram": {"0": 6, "1": 10, "2": 10, "3": 20, "4": 30, "5": 20}, "min_rating": None}
    quarters = {"rating_histogram": {"0": 5, "0.25": 5, "0.5": 5, "0.75": 5, "1": 5}, "min_rating": None}
    ternary = {"rating_histogram": {"-1": 3, "0": 4, "1": 9}, "min_rating": None}
    assert dislikes_warning(stars, "d") is None and dislikes_warning(quarters, "d") is None
    assert dislikes_warning(ternary, "d").startswith("7 of the ratings of dataset 'd' are 0 or below")
    assert dislikes_warning({**ternary, "min_rating": 0}, "d") is None
    assert dislikes_warning({"rating_histogram": {"1": 5}, "min_rating": None}, "d") is None


def test_repeats_auto_sums_a_table_without_ratings_and_keeps_the_latest_of_one_with_them(tmp_path):
    """The default, data.repeats: auto (a first-hour review: a click log of user, item, time lost 21% of its rows as
    repeated pairs unless data.repeats=sum was known): a table without a rating column is a log of events, its
    pairs' rows summed into counts, as data.repeats=sum does; one with ratings keeps each pair's latest, as before."""
    from embedrec.data.dataset import load_dataset

    src = tmp_path / "log.csv"
    src.write_text("user_id,movie_id,timestamp\n" + "".join(f"{u},{m},{1000 + u * 10 + m + k}\n" for u in range(8)
                                                           for m in range(5) for k in range(1 + (u + m) % 3)))
    base = ["--set", "split.valid=0", "--set", "split.test=0"]
    r = invoke("ingest", src, "-o", tmp_path / "auto", *base)
    assert r.exit_code == 0 and "a log of events, each row counting 1 and a pair's rows summed into its count" \
        in r.stderr, r.stderr
    auto = load_dataset(tmp_path / "auto")
    assert auto.manifest["repeats"] == "sum" and sorted(set(auto.splits["train"].rating.tolist())) == [1.0, 2.0, 3.0]
    assert invoke("ingest", src, "-o", tmp_path / "sum", *base, "--set", "data.repeats=sum").exit_code == 0
    assert load_dataset(tmp_path / "sum").fingerprint == auto.fingerprint
    assert invoke("ingest", src, "-o", tmp_path / "latest", *base, "--set", "data.repeats=latest").exit_code == 0
    latest = load_dataset(tmp_path / "latest")
    assert "repeats" not in latest.manifest and set(latest.splits["train"].rating.tolist()) == {1.0}
    rated = tmp_path / "rated.csv"
    rated.write_text("user_id,movie_id,rating,timestamp\n1,2,3,10\n1,2,5,20\n2,2,4,5\n")
    assert invoke("ingest", rated, "-o", tmp_path / "rated", *base).exit_code == 0
    kept = load_dataset(tmp_path / "rated")
    assert "repeats" not in kept.manifest and sorted(kept.splits["train"].rating.tolist()) == [4.0, 5.0]


def test_repeats_auto_is_not_warned_as_another_ingest_setting(tmp_path):
    """A diff review: train --set data.repeats=latest on a rated dataset ingested with auto (which is latest there),
    or --set data.repeats=auto on one ingested with latest, was warned as another ingest setting; a real
    difference still is."""
    rated = tmp_path / "rated.csv"
    rated.write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{1 + (u + m) % 5}\n" for u in range(30)
                                                         for m in range(12) if (u * m) % 4))
    sets = ["--set", f"data.prepared={tmp_path / 'ds'}", "--set", f"run.dir={tmp_path / 'run'}"]
    assert invoke("ingest", "-q", rated, *sets).exit_code == 0
    small = ["--set", "model.dim=4", "--set", "train.epochs=1", "--set", "train.als_dims=[]"]
    for value, warned in (("latest", False), ("auto", False), ("sum", True)):
        r = invoke("train", *sets, *small, "--set", f"data.repeats={value}")
        assert r.exit_code == 0, r.stderr
        assert ("is an ingest setting, but dataset" in r.stderr) == warned, (value, r.stderr)
    assert "prepared with data.repeats=latest" in r.stderr


def test_count_weight_auto_is_not_tried_where_every_count_is_1():
    """An independent check: a click log without repeats (summed, every count 1) fitted weight 1's candidate,
    which is the same model (1 + c log 1 = 1): nothing more is fitted there."""
    from embedrec.config import load_config
    from embedrec.training.select import count_candidates

    tcfg = load_config(None, []).train
    assert count_candidates(tcfg, True, {"repeats": "sum", "rating_scale": [1.0, 7.0]}) == (1.0,)
    assert count_candidates(tcfg, True, {"repeats": "sum", "rating_scale": [1.0, 1.0]}) == ()
    assert count_candidates(tcfg, True, {"repeats": "latest", "rating_scale": [1.0, 7.0]}) == ()


def test_a_column_of_counts_read_as_ratings_is_said(tmp_path):
    """An independent check: a Last.fm-like play-count column (1 to 3,130, 350 values) was read as ratings that
    the ranking model never uses, without a word; data.repeats=sum weighs them (+0.0068 test NDCG@10)."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"user": rng.integers(1, 40, n), "artist": rng.integers(1, 60, n),
                          "weight": rng.integers(1, 5000, n)}).drop_duplicates(["user", "artist"])
    src = tmp_path / "plays.csv"
    frame.to_csv(src, index=False)
    cols = ["--set", "data.columns.user=user", "--set", "data.columns.movie=artist", "--set", "data.columns.rating=weight"]
    r = invoke("ingest", src, "-o", tmp_path / "a", *cols)
    assert r.exit_code == 0 and r.stdout == "", r.stderr
    line = next(x for x in r.stderr.splitlines() if "whole numbers" in x)
    assert line.startswith("the ratings are whole numbers from ") and "ingest with --set data.repeats=sum" in line
    r = invoke("ingest", src, "-o", tmp_path / "b", *cols, "--set", "data.repeats=sum")
    assert r.exit_code == 0 and "whole numbers" not in r.stderr, r.stderr
    stars = frame.assign(weight=rng.integers(1, 6, len(frame)))  # a star scale: nothing said
    stars.to_csv(src, index=False)
    r = invoke("ingest", src, "-o", tmp_path / "c", *cols)
    assert r.exit_code == 0 and "whole numbers" not in r.stderr, r.stderr


def test_many_repeated_pairs_kept_latest_are_warned_of_with_data_repeats_sum(tmp_path):
    """A first-hour pass: 42% of a log's rows were dropped as repeated pairs (each pair's latest kept), said only
    as a count in the summary; above a tenth of the rows it is a warning naming data.repeats=sum; a few are not."""
    from click.testing import CliRunner

    from embedrec.cli import main

    rows = [f"{u},{m},{1 + (u * m) % 5}\n" for u in range(1, 21) for m in range(1, 11)]
    (tmp_path / "few.csv").write_text("user_id,movie_id,rating\n" + "".join(rows) + rows[0].replace(",1\n", ",2\n"))
    (tmp_path / "many.csv").write_text("user_id,movie_id,rating\n" + "".join(rows) + "".join(
        r[:-2] + f"{1 + int(r[-2]) % 5}\n" for r in rows[:60]))
    said = "repeat a (user, movie) pair already rated: each pair keeps its latest row (data.repeats=latest); if " \
           "they are plays or clicks to count, ingest with --set data.repeats=sum"
    r = CliRunner().invoke(main, ["ingest", str(tmp_path / "many.csv"), "-o", str(tmp_path / "a"), "--set",
                                  "split.test=0"])
    assert r.exit_code == 0 and f"60 of the 260 rows (23%) {said}" in r.stderr, r.stderr
    r = CliRunner().invoke(main, ["ingest", str(tmp_path / "few.csv"), "-o", str(tmp_path / "b"), "--set",
                                  "split.test=0"])
    assert r.exit_code == 0 and said not in r.stderr, r.stderr
    # rows repeated whole count too (a review: a play log of identical rows, 44% dropped, was not warned of)
    (tmp_path / "same.csv").write_text("user_id,movie_id,rating\n" + "".join(rows) + "".join(rows[:60]))
    r = CliRunner().invoke(main, ["ingest", str(tmp_path / "same.csv"), "-o", str(tmp_path / "c"), "--set",
                                  "split.test=0"])
    assert r.exit_code == 0 and f"60 of the 260 rows (23%) {said}" in r.stderr, r.stderr


def test_a_counted_logs_summary_says_pairs_and_counts_not_ratings(tmp_path):
    """A first-hour pass: a click log's summary called its counted pairs '99,928 ratings' and its counts 'rating
    values'; a rated file's says ratings."""
    from embedrec.api import ingest_config, prepare
    from embedrec.config import load_config
    from embedrec.ingestion import format_summary

    (tmp_path / "clk.csv").write_text("user_id,movie_id\n1,2\n1,2\n1,3\n2,2\n2,4\n3,3\n3,3\n3,3\n")
    cfg = load_config(None, [f"data.prepared={tmp_path / 'ds'}", "split.valid=0", "split.test=0"])
    said = format_summary(prepare(ingest_config(str(tmp_path / "clk.csv"), cfg))).splitlines()
    assert ", 5 pairs (density " in said[0] and said[1] == "counts: 1:3  2:1  3:1", said
    (tmp_path / "r.csv").write_text("user_id,movie_id,rating\n1,2,4\n1,3,5\n2,2,3\n")
    said = format_summary(prepare(ingest_config(str(tmp_path / "r.csv"), cfg), overwrite=True)).splitlines()
    assert ", 3 ratings (density " in said[0] and said[1].startswith("rating values: "), said


def test_an_explicit_model_on_likes_auto_set_apart_is_refused_whatever_the_likes_scale(tmp_path):
    """A review: a 0/1/2 file (auto's floor 1) trained an explicit model on its 1s and 2s without a word, where
    the 0/1 file was refused; and a floor the user set is named, not 'a file without a rating field?'."""
    rows = "".join(f"{u},{m},{(u * m) % 3}\n" for u in range(1, 21) for m in range(1, 11))
    (tmp_path / "z012.csv").write_text("user_id,movie_id,rating\n" + rows)
    (tmp_path / "z01.csv").write_text("user_id,movie_id,rating\n" + rows.replace(",2\n", ",1\n"))
    sets = ["--set", "model.objective=explicit", "--set", "model.dim=4", "--set", "train.epochs=1"]
    assert invoke("ingest", tmp_path / "z012.csv", "-o", tmp_path / "a").exit_code == 0
    r = invoke("train", "--set", f"data.prepared={tmp_path / 'a'}", "--run", tmp_path / "ra", *sets)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "kept only its likes (ratings from 1): ingest set its dislikes apart (data.min_rating: auto" in r.stderr
    assert invoke("ingest", tmp_path / "z01.csv", "-o", tmp_path / "b", "--set", "data.min_rating=1").exit_code == 0
    r = invoke("train", "--set", f"data.prepared={tmp_path / 'b'}", "--run", tmp_path / "rb", *sets)
    assert r.exit_code == 2 and "is 1 (ingested with data.min_rating=1, which kept no other)" in r.stderr, r.stderr


def test_min_rating_auto_is_compared_and_hashed_as_what_it_resolved_to(tmp_path):
    """A review: after auto became the default, a null or 1 in a config was warned of as another ingest setting
    against a dataset auto had made the same, tune-dims redid every trial and cross-validate refused its folder.
    Auto is compared as the value the dataset's manifest holds."""
    from embedrec.config import Config
    from embedrec.crossval import _floor_resolved_alike
    from embedrec.tune import trial_config_hash

    for resolved, old in ((None, None), (1.0, 1.0)):
        manifest = {"min_rating": resolved, "counts": {"users": 2}}
        now, was = Config().to_dict(), Config().to_dict()
        was["data"]["min_rating"] = old
        assert now["data"]["min_rating"] == "auto"
        assert trial_config_hash(now, 8, None, manifest) == trial_config_hash(was, 8, None, manifest)
        was["data"]["min_rating"] = 4.0
        assert trial_config_hash(now, 8, None, manifest) != trial_config_hash(was, 8, None, manifest)
    out = tmp_path / "cv"
    (out / "fold-0" / "data").mkdir(parents=True)
    (out / "fold-0" / "data" / "manifest.json").write_text(json.dumps({"min_rating": None}))
    now = {"data.min_rating": "auto", "model.dim": 8}
    assert _floor_resolved_alike({"data.min_rating": None, "model.dim": 8}, now, out)
    assert not _floor_resolved_alike({"data.min_rating": 1, "model.dim": 8}, now, out)
    assert not _floor_resolved_alike({"data.min_rating": None, "model.dim": 16}, now, out)
    assert not _floor_resolved_alike({"data.min_rating": None, "model.dim": 8}, now, tmp_path / "none")
    rows = "".join(f"{u},{m},{(u * m) % 2}\n" for u in range(1, 21) for m in range(1, 11))
    (tmp_path / "z.csv").write_text("user_id,movie_id,rating\n" + rows)
    assert invoke("ingest", tmp_path / "z.csv", "-o", tmp_path / "d").exit_code == 0
    train = ["train", "--set", f"data.prepared={tmp_path / 'd'}", "--run", tmp_path / "r", "--set", "model.dim=4",
             "--set", "train.epochs=1", "--set", "train.als_dims=[]"]
    r = invoke(*train, "--set", "data.min_rating=1")
    assert r.exit_code == 0 and "is an ingest setting" not in r.stderr, r.stderr
    r = invoke(*train, "--set", "data.min_rating=null")
    assert "data.min_rating=null is an ingest setting, but dataset" in r.stderr and \
        "was prepared with data.min_rating=1" in r.stderr, r.stderr


def test_the_dislikes_advice_under_summed_counts_names_the_floor(tmp_path):
    """A review: a 0/1 file ingested with data.repeats=sum is left alone by auto (counts), and the advice to
    ingest again with data.min_rating=auto made the same dataset; it names the floor there."""
    rows = "".join(f"{u},{m},{(u * m) % 2}\n" for u in range(1, 21) for m in range(1, 11))
    (tmp_path / "z.csv").write_text("user_id,movie_id,rating\n" + rows)
    assert invoke("ingest", tmp_path / "z.csv", "-o", tmp_path / "d", "--set", "data.repeats=sum").exit_code == 0
    r = invoke("train", "--set", f"data.prepared={tmp_path / 'd'}", "--run", tmp_path / "r", "--set", "model.dim=4",
               "--set", "train.epochs=1", "--set", "train.als_dims=[]")
    assert r.exit_code == 0 and (f"ingest it again: embedrec ingest {tmp_path / 'z.csv'} --set data.prepared="
                                 f"{tmp_path / 'd'} --set data.repeats=sum --set data.min_rating=1 --overwrite (the "
                                 "dislikes") in r.stderr, r.stderr
