"""The pairs ingest keeps apart as rated (rated_below.parquet: below data.min_rating, a like/dislike file's dislikes)
are split as the kept ratings are, so that evaluation on a split leaves out only those of the parts before it (a
review: evaluate left out every one, so it knew which movies each user would dislike in the held-out period;
ML-100K as 0/1 likes, global_time: NDCG@10 0.2738 against 0.2688), while serving leaves out every one."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.config import Config
from embedrec.data.dataset import Dataset, Interactions, load_dataset
from embedrec.data.split import (
    NO_CUT,
    TEST,
    TRAIN,
    VALID,
    below_seed,
    below_split,
    held_out_cuts,
    make_split,
    time_parts,
)
from embedrec.errors import ArtifactError
from embedrec.sparse import PART_CODES, below_in, seen_csr


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# 8 likes of 3 users and 4 movies at times 10-80, and 4 dislikes (rating 0): a like/dislike file, whose dislikes
# data.min_rating: auto keeps apart. With split.valid and split.test 0.25: the global cut puts 50 and 60 in valid
# and 70 and 80 in test; per user (user_time), user 1's 40 is valid and 70 test, user 2's 50 and 80, user 3 (two
# likes, rint(0.5) = 0 held out) keeps both in train.
LIKES = [(1, 1, 10), (2, 2, 20), (3, 3, 30), (1, 4, 40), (2, 1, 50), (3, 2, 60), (1, 3, 70), (2, 4, 80)]
DISLIKES = [(3, 4, 5), (1, 2, 50), (3, 1, 69), (2, 3, 70)]
# each dislike's part: by the global cut (50 is valid's first time, 70 test's: a pair at the very time is in the
# part), and by each user's own cuts (user 3 has none: train)
GLOBAL = [TRAIN, VALID, VALID, TEST]
PER_USER = [TRAIN, VALID, TRAIN, VALID]


def _likes_csv(path: Path) -> Path:
    rows = [(u, m, 1, t) for u, m, t in LIKES] + [(u, m, 0, t) for u, m, t in DISLIKES]
    path.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in rows))
    return path


def _ingest(tmp_path: Path, name: str, *sets: str) -> Path:
    out = tmp_path / name
    r = invoke("ingest", _likes_csv(tmp_path / "likes.csv"), "-o", out, "--set", "split.valid=0.25", "--set",
               "split.test=0.25", *[a for s in sets for a in ("--set", s)])
    assert r.exit_code == 0, r.stderr
    return out


def _pairs(indptr: np.ndarray, indices: np.ndarray) -> set:
    """{(user row, movie row)} of a CSR."""
    return {(u, int(m)) for u in range(indptr.size - 1) for m in indices[indptr[u]:indptr[u + 1]]}


def _dislikes(which) -> set:
    """{(user row, movie row)} of the DISLIKES whose part is in ``which`` (ids 1.. are rows 0..)."""
    return {(u - 1, m - 1) for (u, m, _), part in which}


# ------------------------------------------------------------------------------------------ pure functions
def test_the_part_codes_are_the_splits_codes():
    assert PART_CODES == {"train": TRAIN, "valid": VALID, "test": TEST}


def test_global_cuts_and_parts_by_hand():
    ts = np.array([10, 20, 30, 40, 50, 60, 70, 80])
    assign = np.array([TRAIN] * 4 + [VALID] * 2 + [TEST] * 2, np.int8)
    cuts = held_out_cuts(assign, ts)
    assert cuts.users is None and cuts.valid.tolist() == [50] and cuts.test.tolist() == [70]
    got = time_parts(cuts, np.array([1, 1, 1, 1, 1]), np.array([49, 50, 69, 70, 99]))
    assert got.tolist() == [TRAIN, VALID, VALID, TEST, TEST] and got.dtype == np.int8
    # a split without valid rows: its pairs before the test cut are train
    none = held_out_cuts(np.array([TRAIN, TEST], np.int8), np.array([1, 2]))
    assert none.valid.tolist() == [NO_CUT]
    assert time_parts(none, np.array([7, 7]), np.array([1, 2])).tolist() == [TRAIN, TEST]


def test_per_user_cuts_and_parts_by_hand():
    users = np.array(["a", "a", "a", "b", "b", "c"], dtype=object)  # text ids too
    ts = np.array([1, 5, 9, 2, 8, 3])
    assign = np.array([TRAIN, VALID, TEST, TRAIN, TEST, TRAIN], np.int8)
    cuts = held_out_cuts(assign, ts, users)
    assert cuts.users.tolist() == ["a", "b"]  # c has no held-out rating: no cut
    assert cuts.valid.tolist() == [5, NO_CUT] and cuts.test.tolist() == [9, 8]
    got = time_parts(cuts, np.array(["a", "a", "a", "b", "b", "c", "d"], dtype=object),
                     np.array([4, 5, 9, 7, 100, 100, 100]))
    assert got.tolist() == [TRAIN, VALID, TEST, TRAIN, TEST, TRAIN, TRAIN]  # c and d (no cut): train


def test_the_random_draw_of_the_pairs_kept_apart_has_the_splits_shares_and_its_own_seed():
    cfg = Config().updated({"split.valid": 0.1, "split.test": 0.2}).split
    users = np.repeat(np.arange(100), 10)
    parts = below_split(cfg, users, None, None)
    assert (parts == TEST).sum() == 200 and (parts == VALID).sum() == 100 and (parts == TRAIN).sum() == 700
    np.testing.assert_array_equal(parts, below_split(cfg, users, None, None))  # seeded
    other = below_split(Config().updated({"split.seed": 7}).split, users, None, None)
    assert not np.array_equal(parts, other)  # from split.seed
    # not the kept ratings' draw replayed: its own seed, derived from split.seed
    assert below_seed(cfg.seed) != cfg.seed and below_seed(cfg.seed) == below_seed(cfg.seed)
    assert not np.array_equal(parts, make_split(cfg, users, None))


def test_the_k_fold_parts_of_the_pairs_kept_apart_partition_them():
    users = np.repeat(np.arange(60), 7)
    tests = []
    for fold in range(3):
        cfg = Config().updated({"split.folds": 3, "split.fold": fold}).split
        parts = below_split(cfg, users, None, None)
        assert (parts == VALID).sum() == round(users.size * cfg.valid)
        tests.append(parts == TEST)
    np.testing.assert_array_equal(np.sum(tests, axis=0), np.ones(users.size))  # each pair in one test fold
    for t in tests:  # and each user's pairs dealt evenly (7 over 3 folds: 2 or 3 in each)
        assert set(np.bincount(users[t], minlength=60).tolist()) <= {2, 3}


def test_a_time_split_without_cuts_is_refused():
    from embedrec.errors import DataError

    with pytest.raises(DataError, match="no times"):
        below_split(Config().updated({"split.method": "global_time"}).split, np.array([1]), None, None)


def _dataset(parts) -> Dataset:
    """Two users, four movies: user 0's train movie 0 and valid movie 1; the rated_below pairs (0, 2) in train,
    (0, 3) in valid and (1, 2) in test (``parts`` None: a dataset ingested before the parts were kept)."""
    def rows(user: int, movie: int) -> Interactions:
        return Interactions(np.array([user], np.int32), np.array([movie], np.int32), np.ones(1, np.float32))

    frame = pd.DataFrame({"user_id": [1, 2]})
    movies = pd.DataFrame({"movie_id": [1, 2, 3, 4]})
    splits = {"train": rows(0, 0), "valid": rows(0, 1), "test": rows(1, 1)}
    below = (np.array([0, 0, 1], np.int32), np.array([2, 3, 2], np.int32))
    return Dataset(Path("x"), {}, frame, movies, splits, rated_below=below,
                   rated_below_split=None if parts is None else np.array(parts, np.int8))


def test_seen_csr_leaves_out_the_pairs_kept_apart_of_the_parts_before_the_split_and_serving_every_one():
    ds = _dataset([TRAIN, VALID, TEST])
    assert _pairs(*seen_csr(ds, ("train",))) == {(0, 0), (0, 2)}  # validation: train's
    assert _pairs(*seen_csr(ds, ("train", "valid"))) == {(0, 0), (0, 1), (0, 2), (0, 3)}  # test: and valid's
    assert _pairs(*seen_csr(ds, ("train", "valid"), serving=True)) == {(0, 0), (0, 1), (0, 2), (0, 3), (1, 2)}
    old = _dataset(None)  # without the parts: every one, as before
    assert _pairs(*seen_csr(old, ("train",))) == {(0, 0), (0, 2), (0, 3), (1, 2)}
    assert below_in(None, None, ("train",)) is None
    assert below_in(old.rated_below, np.array([TEST, TEST, TEST], np.int8), ("train", "valid")) is None


# ------------------------------------------------------------------------------------ ingest, known answers
@pytest.mark.parametrize("method, want", [("global_time", GLOBAL), ("user_time", PER_USER)])
def test_a_time_split_puts_each_dislike_in_the_part_of_its_time(tmp_path, method, want):
    ds = load_dataset(_ingest(tmp_path, method, f"split.method={method}"))
    below = pd.read_parquet(Path(os.path.realpath(ds.path / "current")) / "rated_below.parquet")
    assert list(below.columns) == ["user_idx", "movie_idx", "split"] and below["split"].dtype == np.int8
    got = {(u, m): p for u, m, p in zip(ds.rated_below[0].tolist(), ds.rated_below[1].tolist(),
                                        ds.rated_below_split.tolist())}
    assert got == {(u - 1, m - 1): p for (u, m, _), p in zip(DISLIKES, want)}
    counts = ds.manifest["cleaning"]["rated_below_split"]
    assert counts == {name: want.count(code) for name, code in (("train", TRAIN), ("valid", VALID), ("test", TEST))}
    # the kept ratings are split as before: the same rows as a file of the likes alone
    plain = tmp_path / "plain.csv"
    plain.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},{m},1,{t}\n" for u, m, t in LIKES))
    r = invoke("ingest", plain, "-o", tmp_path / "plain", "--set", "split.valid=0.25", "--set", "split.test=0.25",
               "--set", f"split.method={method}")
    assert r.exit_code == 0, r.stderr
    for s in ("train", "valid", "test"):
        a, b = ds.split_frame(s), load_dataset(tmp_path / "plain").split_frame(s)
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("method, want", [("global_time", GLOBAL), ("user_time", PER_USER)])
def test_each_ranking_leaves_out_the_dislikes_of_the_parts_before_it_and_serving_every_one(tmp_path, method, want):
    """Validation leaves out the dislikes of train, evaluate on test those of train and valid, as each leaves out
    those parts' ratings; serving (the run's seen movies) every one."""
    ds = load_dataset(_ingest(tmp_path, method, f"split.method={method}"))
    rated = {s: set(zip(ds.splits[s].user.tolist(), ds.splits[s].movie.tolist())) for s in ("train", "valid")}
    pairs = list(zip(DISLIKES, want))
    assert _pairs(*seen_csr(ds, ("train",))) == rated["train"] | _dislikes(p for p in pairs if p[1] == TRAIN)
    assert _pairs(*seen_csr(ds, ("train", "valid"))) == rated["train"] | rated["valid"] | _dislikes(
        p for p in pairs if p[1] != TEST)
    assert _pairs(*seen_csr(ds, ("train", "valid"), serving=True)) == rated["train"] | rated["valid"] | _dislikes(
        pairs)


def _likes_file(tmp_path: Path, n_users: int = 120, seed: int = 0) -> tuple[Path, int]:
    """A 0/1 file: each user rates 12 of 40 movies, about a third of them 0; (its path, how many 0s)."""
    rng = np.random.default_rng(seed)
    rows = [(u, m, int(rng.random() > 0.35), 1000 + i) for u in range(1, n_users + 1)
            for i, m in enumerate(rng.choice(np.arange(1, 41), 12, False))]
    path = tmp_path / "random.csv"
    path.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in rows))
    return path, sum(r == 0 for _, _, r, _ in rows)


def test_a_random_split_draws_the_dislikes_with_its_shares_and_leaves_the_ratings_split_as_before(tmp_path):
    path, zeros = _likes_file(tmp_path)
    r = invoke("ingest", path, "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.stderr
    ds = load_dataset(tmp_path / "ds")
    n = ds.rated_below[0].size
    assert n == zeros  # every user and movie is in the dataset
    parts = ds.rated_below_split
    assert (parts == TEST).sum() == round(n * 0.2) and (parts == VALID).sum() == round(n * 0.1)
    # the kept ratings' split: as ingest splits the likes alone (the 0s drawn on their own)
    likes = pd.read_csv(path)
    likes[likes["rating"] == 1].to_csv(tmp_path / "likes.csv", index=False)
    assert invoke("ingest", tmp_path / "likes.csv", "-o", tmp_path / "likes").exit_code == 0
    for s in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(ds.split_frame(s), load_dataset(tmp_path / "likes").split_frame(s))
    # another split.seed, another draw
    assert invoke("ingest", path, "-o", tmp_path / "seed7", "--set", "split.seed=7").exit_code == 0
    assert not np.array_equal(load_dataset(tmp_path / "seed7").rated_below_split, parts)


def test_the_dislikes_of_a_held_out_cold_movie_are_test(tmp_path):
    path, _ = _likes_file(tmp_path)
    assert invoke("ingest", path, "-o", tmp_path / "ds", "--set", "split.cold_movies=0.2").exit_code == 0
    ds = load_dataset(tmp_path / "ds")
    cold = np.unique(ds.splits["test"].movie[~np.isin(ds.splits["test"].movie, ds.splits["train"].movie)])
    assert cold.size >= 4
    on_cold = np.isin(ds.rated_below[1], cold)
    assert on_cold.any() and (ds.rated_below_split[on_cold] == TEST).all()


def test_the_k_fold_splits_put_each_dislike_in_one_test_fold(tmp_path):
    path, zeros = _likes_file(tmp_path)
    tests = []
    for fold in range(3):
        out = tmp_path / f"f{fold}"
        assert invoke("ingest", path, "-o", out, "--set", "split.folds=3", "--set", f"split.fold={fold}").exit_code == 0
        ds = load_dataset(out)
        ids = zip(ds.users["user_id"].to_numpy()[ds.rated_below[0]].tolist(),
                  ds.movies["movie_id"].to_numpy()[ds.rated_below[1]].tolist(), ds.rated_below_split.tolist())
        tests.append({(u, m) for u, m, p in ids if p == TEST})
    assert sum(len(t) for t in tests) == zeros and len(set.union(*tests)) == zeros


# ----------------------------------------------------------------------------------- evaluate and old datasets
def _train(tmp_path: Path, ds: Path, name: str = "run") -> Path:
    run = tmp_path / name
    r = invoke("train", "--set", f"data.prepared={ds}", "--run", run, "--set", "model.dim=2", "--set",
               "train.epochs=1", "--set", "train.refit=false", "--set", "train.als_dims=[]", "--set", "train.threads=1",
               "-q")
    assert r.exit_code == 0, r.stderr
    return run


def test_evaluate_says_which_dislikes_it_left_out_on_each_split(tmp_path):
    ds = _ingest(tmp_path, "ds", "split.method=global_time")
    run = _train(tmp_path, ds)
    r = invoke("evaluate", "--run", run, "--split", "test", "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["excluded"] == "train+valid" and (got["excluded_rated_below"], got["rated_below_held_out"]) == (3, 1)
    assert ("all movies minus those the user rated in train and valid, and the 3 rated below data.min_rating in "
            "train and valid (recommend leaves out all of them; the 1 in test stay candidates, as the held-out "
            "ratings do);") in r.stderr, r.stderr
    r = invoke("evaluate", "--run", run, "--split", "valid", "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["excluded_rated_below"], got["rated_below_held_out"]) == (1, 3)
    assert "the 1 rated below data.min_rating in train (recommend leaves out all of them; the 3 in valid and " \
        "test stay candidates" in r.stderr, r.stderr
    # serving: every dislike, whatever its part
    import embedrec as er

    with er.open(run) as model:
        for (u, m, _) in DISLIKES:
            assert m not in model.recommend([u], 4).movie_ids[0]


def test_evaluate_lists_counts_the_dislikes_of_the_parts_before_the_split(tmp_path):
    """evaluate --lists warns of rows naming a movie the model's lists leave out: a dislike of train or valid
    on test, not one of the held-out period."""
    ds = _ingest(tmp_path, "ds", "split.method=global_time")
    run = _train(tmp_path, ds)
    lists = tmp_path / "lists.csv"
    lists.write_text("user_id,movie_id,rank\n1,2,1\n2,3,1\n")  # user 1's valid dislike, user 2's test one
    r = invoke("evaluate", "--run", run, "--split", "test", "--lists", lists, "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["splits"]["test"]["lists.csv"]["rows_rated_in_training"] == 1
    assert "lists.csv: 1 of its rows name a movie the user rated in train and valid (or rated below " \
        "data.min_rating there)" in r.stderr, r.stderr


def _without_parts(ds: Path) -> None:
    """rated_below.parquet as an earlier embedrec wrote it (user_idx, movie_idx), the manifest sealed again."""
    from embedrec.fsutil.files import write_parquet
    from embedrec.fsutil.integrity import SEAL, file_entry, fingerprint_of, seal

    gen = Path(os.path.realpath(ds / "current"))
    below = pd.read_parquet(gen / "rated_below.parquet").drop(columns="split")
    (gen / "rated_below.parquet").unlink()
    write_parquet(below, gen / "rated_below.parquet", page_checksum=True)
    m = json.loads((gen / "manifest.json").read_text())
    m.pop(SEAL)
    m["files"]["rated_below.parquet"] = file_entry(gen / "rated_below.parquet")
    m["fingerprint"] = fingerprint_of(m["files"])
    m["cleaning"].pop("rated_below_split")
    (gen / "manifest.json").write_text(json.dumps(seal(m)))


def test_a_dataset_ingested_before_the_parts_were_kept_loads_without_them(tmp_path):
    from embedrec.data.dataset import read_rated_below, read_rated_below_parts

    ds = _ingest(tmp_path, "ds", "split.method=global_time")
    gen = Path(os.path.realpath(ds / "current"))
    manifest = json.loads((gen / "manifest.json").read_text())
    below, parts = read_rated_below_parts(gen, manifest, 3, 4)  # the torchrun ranks' reader
    assert parts.tolist() == GLOBAL and read_rated_below(gen, manifest, 3, 4)[0].tolist() == below[0].tolist()
    _without_parts(ds)
    loaded = load_dataset(ds)
    assert loaded.rated_below[0].size == 4 and loaded.rated_below_split is None
    manifest = json.loads((gen / "manifest.json").read_text())
    assert read_rated_below_parts(gen, manifest, 3, 4)[1] is None


def test_a_dataset_ingested_before_the_parts_were_kept_leaves_out_every_dislike_and_says_so(tmp_path):
    ds = _ingest(tmp_path, "ds", "split.method=global_time")
    _without_parts(ds)
    loaded = load_dataset(ds)
    assert _pairs(*seen_csr(loaded, ("train",))) >= _dislikes(zip(DISLIKES, GLOBAL))  # every one, as before
    r = invoke("train", "--set", f"data.prepared={ds}", "--run", tmp_path / "run", "--set", "model.dim=2", "--set",
               "train.epochs=1", "--set", "train.refit=false", "--set", "train.als_dims=[]")
    assert r.exit_code == 0, r.stderr
    assert f"note: dataset '{ds}' was ingested before embedrec split the 4 pairs it keeps apart as rated" in r.stderr
    assert "ingest it again (embedrec ingest --overwrite) to leave out only those rated before" in r.stderr
    r = invoke("evaluate", "--run", tmp_path / "run", "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["excluded_rated_below"], got["rated_below_held_out"]) == (4, None)
    assert "and the 4 rated below data.min_rating, whatever their time" in r.stderr, r.stderr


def test_a_split_column_of_other_codes_is_damage(tmp_path):
    from embedrec.fsutil.files import write_parquet
    from embedrec.fsutil.integrity import SEAL, file_entry, fingerprint_of, seal

    ds = _ingest(tmp_path, "ds", "split.method=global_time")
    gen = Path(os.path.realpath(ds / "current"))
    below = pd.read_parquet(gen / "rated_below.parquet")
    below["split"] = np.int8(3)
    (gen / "rated_below.parquet").unlink()
    write_parquet(below, gen / "rated_below.parquet", page_checksum=True)
    m = json.loads((gen / "manifest.json").read_text())
    m.pop(SEAL)
    m["files"]["rated_below.parquet"] = file_entry(gen / "rated_below.parquet")
    m["fingerprint"] = fingerprint_of(m["files"])
    (gen / "manifest.json").write_text(json.dumps(seal(m)))
    with pytest.raises(ArtifactError, match="rated_below.parquet' is damaged: its split column holds other values"):
        load_dataset(ds)


def test_the_refit_takes_the_dislikes_of_valid_as_train_ones(tmp_path):
    """A refit trains on train+valid as its train split: the pairs kept apart of valid are train's too, so a
    ranking on test leaves out the same pairs from the merged dataset as from the dataset."""
    from embedrec.training.refit import train_valid_dataset

    ds = load_dataset(_ingest(tmp_path, "ds", "split.method=global_time"))
    merged = train_valid_dataset(ds)
    assert len(merged.splits["valid"]) == 0
    assert merged.rated_below_split.tolist() == [TRAIN if p == VALID else p for p in GLOBAL]
    for a, b in zip(seen_csr(merged, ("train", "valid")), seen_csr(ds, ("train", "valid"))):
        np.testing.assert_array_equal(a, b)
