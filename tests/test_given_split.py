"""split.method=given: the split a user's files give (data.test_source, data.valid_source, RecBole's
NAME.train/valid/test.inter), held out as it is (data/given.py)."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.config import Config
from embedrec.data.dataset import load_dataset
from embedrec.errors import ConfigError, DataError
from embedrec.ingestion import ingest, ingested_alike

from .conftest import write


def _ratings(seed=0, n=1500, users=60, movies=80):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"user_id": rng.integers(1, users + 1, n), "movie_id": rng.integers(1, movies + 1, n),
                       "rating": rng.integers(1, 6, n), "timestamp": rng.integers(10 ** 9, 10 ** 9 + 10 ** 6, n)})
    return df.drop_duplicates(["user_id", "movie_id"]).reset_index(drop=True)


@pytest.fixture
def files(tmp_path):
    """train.csv and test.csv: a fifth of the pairs held out by hand; the frames too."""
    df = _ratings()
    test = df.sample(frac=0.2, random_state=1)
    train = df.drop(test.index)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    return tmp_path, train, test


def _cfg(tmp_path, **sets):
    return Config().updated({"data.source": str(tmp_path / "train.csv"), "split.method": "given",
                             "data.test_source": str(tmp_path / "test.csv"),
                             "data.prepared": str(tmp_path / "prep"), **sets})


def _run(cfg):
    return ingest(cfg.data, cfg.split, output=cfg.data.prepared, full_config=cfg.to_dict())


def _pairs(frame_or_split, ds=None):
    if ds is not None:
        f = ds.split_frame(frame_or_split)
        return set(zip(f["user_id"], f["movie_id"]))
    return set(zip(frame_or_split["user_id"], frame_or_split["movie_id"]))


def test_the_test_files_rows_are_the_test_split_and_valid_is_drawn_from_the_training_rows(files):
    tmp_path, train, test = files
    s = _run(_cfg(tmp_path))
    ds = load_dataset(tmp_path / "prep")
    known_u, known_m = set(train["user_id"]), set(train["movie_id"])
    kept = {(u, m) for u, m in _pairs(test) if u in known_u and m in known_m}
    assert _pairs("test", ds) == kept  # exactly the file's pairs, less those training cannot know
    assert s["cleaning"]["eval_rows_dropped_unknown"] == len(test) - len(kept)
    assert _pairs("train", ds) | _pairs("valid", ds) == _pairs(train)  # every training row, none of the test file's
    assert not _pairs("train", ds) & _pairs("valid", ds)
    n_valid = len(ds.split_frame("valid"))
    assert s["cleaning"]["given_valid_drawn"] == n_valid and s["cleaning"]["given_valid_by"] == "random"
    assert abs(n_valid - round(0.1 * len(train))) <= s["cleaning"].get("users_given_a_train_row", 0)
    assert s["split"]["method"] == "given" and s["cleaning"]["given_rows"] == {
        "train": len(train), "valid": 0, "test": len(test)}
    assert ingested_alike(tmp_path / "prep", _cfg(tmp_path))
    manifest = json.loads((tmp_path / "prep" / "current" / "manifest.json").read_text())
    assert set(manifest["inputs"]) == {"train.csv", "test.csv"}  # both files' checksums
    test.head(3).to_csv(tmp_path / "test.csv", index=False)  # another test file: another dataset
    assert not ingested_alike(tmp_path / "prep", _cfg(tmp_path))


def test_valid_is_each_users_latest_training_rows_where_the_test_rows_follow_them(tmp_path, caplog):
    """ML-100K's per-user time split given as train and test files: a valid drawn at random from the training
    rows tuned the model for a random holdout (test NDCG@10 0.1942 against 0.2268 with the users' own next 10%).
    Where the test rows come after their users' training rows, valid is each user's latest training rows."""
    df = _ratings(n=4000).sort_values(["user_id", "timestamp"])
    latest = df.groupby("user_id").cumcount(ascending=False) < 3
    df[~latest].to_csv(tmp_path / "train.csv", index=False)
    df[latest].to_csv(tmp_path / "test.csv", index=False)
    with caplog.at_level(logging.INFO, logger="embedrec"):
        s = _run(_cfg(tmp_path))
    assert s["cleaning"]["given_valid_by"] == "user_time"
    after, of = s["cleaning"]["given_test_after_training"]
    assert after == of > 0
    assert "valid is each user's latest 0.1 of the training rows" in caplog.text
    ds = load_dataset(tmp_path / "prep")
    tr, va = ds.split_frame("train"), ds.split_frame("valid")
    last_train = tr.groupby("user_id")["timestamp"].max()
    assert (va["timestamp"].to_numpy() >= va["user_id"].map(last_train).to_numpy()).all()
    assert set(tr["user_id"]) == set(df[~latest]["user_id"])  # every user keeps a training row


def test_a_validation_file_is_the_valid_split(files):
    tmp_path, train, test = files
    valid = train.sample(frac=0.15, random_state=2)
    train.drop(valid.index).to_csv(tmp_path / "train.csv", index=False)
    valid.to_csv(tmp_path / "valid.csv", index=False)
    s = _run(_cfg(tmp_path, **{"data.valid_source": str(tmp_path / "valid.csv"), "split.valid": 0.3}))
    ds = load_dataset(tmp_path / "prep")
    trained = set(train.drop(valid.index)["user_id"])
    assert _pairs("valid", ds) == {(u, m) for u, m in _pairs(valid) if u in trained}  # split.valid not drawn
    assert "given_valid_drawn" not in s["cleaning"]
    assert _pairs("train", ds) == _pairs(train.drop(valid.index))


def test_a_held_out_pair_the_training_rows_hold_is_left_out_and_said(files, caplog):
    tmp_path, train, test = files
    pd.concat([test, train.head(4)]).to_csv(tmp_path / "test.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        s = _run(_cfg(tmp_path))
    assert s["cleaning"]["given_pairs_held_out_twice"] == {"test": 4}
    assert "4 test pairs also in an earlier part" in caplog.text
    ds = load_dataset(tmp_path / "prep")
    assert not _pairs("test", ds) & (_pairs("train", ds) | _pairs("valid", ds))


def test_repeats_are_merged_within_each_part(tmp_path):
    """A click log: a pair's clicks in the test file are summed there, not into its training clicks."""
    write(tmp_path / "train.csv", "user_id,movie_id\n" + "".join(f"{u},{m}\n" for u in range(1, 6)
                                                                   for m in range(1, 8)) + "1,1\n1,1\n")
    write(tmp_path / "test.csv", "user_id,movie_id\n2,9\n2,9\n2,9\n1,1\n3,8\n")
    write(tmp_path / "more.csv", "user_id,movie_id\n" + "".join(f"{u},10\n" for u in range(1, 6)) + "4,8\n5,9\n")
    s = _run(_cfg(tmp_path, **{"data.columns.rating": None, "split.valid": 0}))
    ds = load_dataset(tmp_path / "prep")
    test = ds.split_frame("test")
    assert len(test) == 0 or set(test["movie_id"]) <= {8, 9}
    assert s["cleaning"]["given_pairs_held_out_twice"] == {"test": 1}  # (1, 1): clicked in train
    assert s["cleaning"]["repeated_rows_summed"] == 3 + 3  # 1,1 x3 in train; 2,9 x3 in test
    train = ds.split_frame("train").set_index(["user_id", "movie_id"])["rating"]
    assert train.loc[(1, 1)] == 3  # its training clicks alone
    # movies 8 and 9 are unknown to training here: their test rows are dropped, as any split drops them
    assert s["cleaning"]["eval_rows_dropped_unknown"] == 2
    both = _cfg(tmp_path, **{"data.columns.rating": None, "split.valid": 0, "data.valid_source":
                             str(tmp_path / "more.csv"), "data.prepared": str(tmp_path / "p2")})
    s = _run(both)  # known from valid (the refit learns it): kept, the three clicks summed as one pair
    test = load_dataset(tmp_path / "p2").split_frame("test").set_index(["user_id", "movie_id"])["rating"]
    assert test.loc[(2, 9)] == 3 and (3, 8) in test.index
    assert s["cleaning"]["given_pairs_held_out_twice"] == {"test": 1}


def test_pairs_below_min_rating_keep_their_files_part(files):
    tmp_path, train, test = files
    s = _run(_cfg(tmp_path, **{"data.min_rating": 3}))
    ds = load_dataset(tmp_path / "prep")
    assert s["cleaning"]["below_min_rating_dropped"] == int((train["rating"] < 3).sum() + (test["rating"] < 3).sum())
    users, movies = ds.rated_below
    parts = ds.rated_below_split
    uid, mid = ds.users["user_id"].to_numpy()[users], ds.movies["movie_id"].to_numpy()[movies]
    low_test = _pairs(test[test["rating"] < 3])
    for u, m, p in zip(uid, mid, parts):
        assert (p == 2) == ((u, m) in low_test)


def test_recbole_benchmark_files_are_the_split(tmp_path):
    head = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    rows = {u: [f"{u}\t{(m + u) % 8 + 1}\t{(u + m) % 5 + 1}\t{100 + u * 10 + m}\n" for m in range(8)]
            for u in range(1, 9)}
    d = tmp_path / "rb"  # every user and movie in train: each part's rows kept as they are
    parts = {"train": sum((rows[u][:5] for u in rows), []), "valid": sum((rows[u][5:6] for u in rows), []),
             "test": sum((rows[u][6:] for u in rows), [])}
    for name, part in parts.items():
        write(d / f"ml.{name}.inter", head + "".join(part))
    cfg = Config().updated({"data.source": str(d), "split.method": "given", "data.prepared": str(tmp_path / "p")})
    s = _run(cfg)
    ds = load_dataset(tmp_path / "p")
    for name, part in parts.items():
        assert _pairs(name, ds) == {(int(r.split()[0]), int(r.split()[1])) for r in part}
    assert s["cleaning"]["given_rows"] == {k: len(v) for k, v in parts.items()}
    random = _run(cfg.updated({"split.method": "random", "data.prepared": str(tmp_path / "r")}))
    assert random["split"]["test"] != len(parts["test"])  # read together and split again, as before
    with pytest.raises(ConfigError, match="data.test_source.*RecBole's benchmark files"):
        _run(cfg.updated({"data.test_source": str(d / "ml.test.inter"), "data.prepared": str(tmp_path / "x")}))
    (d / "ml.test.inter").unlink()
    with pytest.raises(DataError, match="found no NAME.test.inter"):
        _run(cfg.updated({"data.prepared": str(tmp_path / "y")}))


@pytest.mark.parametrize("sets, error, match", [
    ({"split.method": "random"}, ConfigError, r"config key 'data.test_source'.*draws its own split.*"
                                              r"split.method='given'"),
    ({"data.test_source": None}, ConfigError, r"config key 'split.method': given .* none is given"),
    ({"split.test": 0.1}, ConfigError, r"config key 'split.test': split.method=given holds out the rows"),
    ({"split.cold_movies": 0.1}, ConfigError, r"split.cold_movies"),
    ({"split.folds": 5}, ConfigError, r"the data gives its test rows, so it has no folds"),
    ({"data.test_source": "nowhere.csv"}, DataError, r"config key 'data.test_source': 'nowhere.csv': file not found"),
    ({"data.test_source": "-"}, ConfigError, r"'-' \(standard input\) is read once"),
])
def test_what_a_given_split_refuses(files, sets, error, match):
    tmp_path, _, _ = files
    with pytest.raises(error, match=match):
        _run(_cfg(tmp_path, **sets))


def test_a_held_out_file_of_other_columns_is_refused(files):
    tmp_path, _, test = files
    test.drop(columns="timestamp").to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match=r"data.test_source \('.*test.csv'\): its rows have a user, a movie, a "
                                        r"rating, where the rows of data.source \('.*train.csv'\) have a user, a "
                                        r"movie, a rating, a time"):
        _run(_cfg(tmp_path))


def test_text_ids_in_one_file_make_both_text(files):
    tmp_path, train, test = files
    write(tmp_path / "test.csv", "user_id,movie_id,rating,timestamp\n007,1,4,5\n" +
          "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in test.itertuples(index=False)))
    _run(_cfg(tmp_path, **{"data.id_type": "auto"}))
    ds = load_dataset(tmp_path / "prep")
    assert not pd.api.types.is_integer_dtype(ds.users["user_id"]) and "1" in set(ds.users["user_id"])
    assert set(ds.split_frame("test")["user_id"]) <= set(ds.split_frame("train")["user_id"]) | \
        set(ds.split_frame("valid")["user_id"])  # '007' has no training row: dropped, not merged with 7


def test_cli_given_split_to_lists_that_leave_out_the_training_rows(files):
    tmp_path, train, test = files
    prep, run = tmp_path / "prep", tmp_path / "run"
    sets = ["--set", "split.method=given", "--set", f"data.test_source={tmp_path / 'test.csv'}"]
    r = CliRunner().invoke(main, ["ingest", str(tmp_path / "train.csv"), *sets, "-o", str(prep), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["split"]["method"] == "given"
    assert "split (given)" not in r.stdout
    assert "data.test_source" not in r.stderr.split("train on it with:")[-1]  # train reads the dataset, not the file
    r = CliRunner().invoke(main, ["train", "--set", f"data.prepared={prep}", "--run", str(run), "--set", "model.dim=8",
                                  "--set", "train.als_dims=[]", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    # its valid drawn at random: the way to a recency weight is the user's own validation rows, not a time split
    assert "give validation rows that follow each user's training ones (data.valid_source)" in r.stderr, r.stderr
    assert "split.method=user_time" not in r.stderr
    r = CliRunner().invoke(main, ["export", "--run", str(run), "--topk-all", str(tmp_path / "top.csv"), "-k", "10"])
    assert r.exit_code == 0, r.stderr
    top = pd.read_csv(tmp_path / "top.csv")
    rated = _pairs(train)
    assert not {(u, m) for u, m in zip(top["user_id"], top["movie_id"])} & rated


def test_cli_says_a_key_set_with_its_cli_fix(files):
    """A config refusal of a --set key gave its fix in the library's terms (split.method='given')."""
    tmp_path, _, _ = files
    r = CliRunner().invoke(main, ["ingest", str(tmp_path / "train.csv"), "--set",
                                  f"data.test_source={tmp_path / 'test.csv'}"])
    assert r.exit_code == 2
    assert "(from --set)" in r.stderr and "add --set split.method=given to hold" in r.stderr
    assert "'given'" not in r.stderr


def test_python_ingest_takes_the_held_out_rows_as_frames(files, monkeypatch):
    import embedrec as er

    tmp_path, train, test = files
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    train, test = (f.assign(user_id="u" + f["user_id"].astype(str)) for f in (train, test))
    ds = er.ingest(train, test=test, output=tmp_path / "p")
    assert ds.manifest["split"]["method"] == "given"  # set by test=, the config setting no method
    got = ds.split_frame("test")
    assert set(zip(got["user_id"], got["movie_id"])) <= _pairs(test)
    assert len(got) == ds.manifest["split"]["test"] > 0.9 * len(test)
    assert er.ingest(train, test=test, output=tmp_path / "p").fingerprint == ds.fingerprint  # reused
    with pytest.raises(DataError, match=r"data.test_source \(the test DataFrame\): its rows have"):
        er.ingest(train, test=test.drop(columns="timestamp"), output=tmp_path / "p2")
    with pytest.raises(ConfigError, match="split.method=random draws its own split"):
        er.ingest(train, er.load_config(overrides=["split.method=random"]), test=test, output=tmp_path / "p3")


def test_a_diff_reviews_findings(files, tmp_path, caplog):
    """A review of the day's diff: stdin's rows with a test file reused a dataset of other rows (the test file's
    checksum alone compared); a test pair rated below data.min_rating in training stayed in test, where no list
    shows it; an empty test split was told to set split.test, which given refuses; split.test in a config file
    was taken in silence; a held-out file's read error advised a fix that broke data.source; two inputs of one
    name kept one checksum; a file's split column advised split.method=given, given."""
    import io
    import sys

    tmp_path, train, test = files
    cfg = _cfg(tmp_path, **{"data.source": "-"})
    for rows in (train, train.head(200)):  # stdin: never the same data again
        buf = io.StringIO()
        rows.to_csv(buf, index=False)
        old = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(buf.getvalue().encode()))
        try:
            s = ingest(cfg.data, cfg.split, output=tmp_path / "stdin", overwrite=True, full_config=cfg.to_dict())
        finally:
            sys.stdin = old
        assert s["cleaning"]["given_rows"]["train"] == len(rows)
        assert not ingested_alike(tmp_path / "stdin", cfg)
    low = train[train["rating"] <= 2].head(5)
    pd.concat([test, low.assign(rating=5)]).to_csv(tmp_path / "test2.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        s = _run(_cfg(tmp_path, **{"data.min_rating": 3, "data.test_source": str(tmp_path / "test2.csv")}))
    assert s["cleaning"]["given_pairs_held_out_twice"] == {"test": 5}
    ds = load_dataset(tmp_path / "prep")
    assert not _pairs("test", ds) & _pairs(low)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        _run(_cfg(tmp_path, **{"data.test_source": str(tmp_path / "train.csv"), "data.prepared": str(tmp_path / "e")}))
    assert "the test split is empty: none of the held-out file's" in caplog.text and "split.test" not in caplog.text
    (tmp_path / "c.yaml").write_text(f"data: {{source: {tmp_path / 'train.csv'}, test_source: {tmp_path / 'test.csv'}}}"
                                     "\nsplit: {method: given, test: 0.3}\n")
    with pytest.raises(ConfigError, match="config key 'split.test'"):
        er_load(tmp_path / "c.yaml")
    test.to_csv(tmp_path / "nohdr.csv", index=False, header=False)
    with pytest.raises(DataError, match=r"\(data.test_source is read with data.source's settings: give it "
                                        r"data.source's layout"):
        _run(_cfg(tmp_path, **{"data.test_source": str(tmp_path / "nohdr.csv"), "data.prepared": str(tmp_path / "h")}))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    train.to_csv(tmp_path / "a" / "r.csv", index=False)
    test.to_csv(tmp_path / "b" / "r.csv", index=False)
    s = _run(_cfg(tmp_path, **{"data.source": str(tmp_path / "a" / "r.csv"), "data.test_source":
                               str(tmp_path / "b" / "r.csv"), "data.prepared": str(tmp_path / "ab")}))
    manifest = json.loads((tmp_path / "ab" / "current" / "manifest.json").read_text())
    assert len(manifest["inputs"]) == 2  # both checksums
    train.assign(split="train").to_csv(tmp_path / "train.csv", index=False)
    test.assign(split="test").to_csv(tmp_path / "test.csv", index=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        _run(_cfg(tmp_path, **{"data.prepared": str(tmp_path / "sc")}))
    assert "holds a split made elsewhere" not in caplog.text


def er_load(path):
    from embedrec.config import load_config

    return load_config(path)


def test_an_empty_held_out_file_is_said_as_such(files):
    tmp_path, _, _ = files
    (tmp_path / "empty.csv").write_text("user_id,movie_id,rating,timestamp\n")
    with pytest.raises(DataError, match=r"data.test_source '.*empty.csv': the file has no data rows; give the "
                                        r"held-out rows' file"):
        _run(_cfg(tmp_path, **{"data.test_source": str(tmp_path / "empty.csv")}))
