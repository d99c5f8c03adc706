import json
import os
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from embedrec.data.dataset import load_dataset
from embedrec.data.readers import normalise_genres, split_title_year
from embedrec.errors import DataError
from embedrec.ingestion import ingest

from .conftest import write


def run(cfg, source, out=None, **kw):
    cfg = cfg.updated({"data.source": str(source)})
    return ingest(cfg.data, cfg.split, output=out or cfg.data.prepared, **kw)


def run_and_load(cfg, source):
    """Ingest, then the summary, the prepared dataset and its movies indexed by external id."""
    s = run(cfg, source)
    ds = load_dataset(cfg.data.prepared)
    return s, ds, ds.movies.set_index("movie_id")


def test_title_year_and_genres():
    assert split_title_year("Toy Story (1995)") == ("Toy Story", 1995)
    assert split_title_year("Babylon 5 (1994–1998)") == ("Babylon 5", 1994)
    assert split_title_year("No Year") == ("No Year", None)
    assert normalise_genres(["Children's", "sci-fi", "(no genres listed)", "Film-Noir", "Comedy"]) == \
        ["Children", "Sci-Fi", "Film-Noir", "Comedy"]


def test_ml100k_layout(ml100k_dir, small_cfg):
    s, ds, m = run_and_load(small_cfg, ml100k_dir)
    assert s["layout"] == "ml-100k" and s["cleaning"]["rows_read"] == sum(1 for u in range(1, 11) for m in range(1, 9) if (u + m) % 3)
    assert m.loc[1, "title"] == "Señor Movie" and m.loc[1, "year"] == 1995
    assert "Drama" in list(m.loc[2, "genres"])
    assert set(ds.users.columns) >= {"age", "gender", "occupation", "zip"}
    assert sum(len(p) for p in ds.splits.values()) == s["counts"]["ratings"]


def test_ml1m_dat_layout_and_zip(tmp_path, small_cfg):
    d = tmp_path / "ml-1m"
    write(d / "ratings.dat", "".join(f"{u}::{m}::{(u * m) % 5 + 1}::{978300000 + m}\n" for u in range(1, 6)
                                     for m in range(1, 7)))
    write(d / "movies.dat", "1::Amélie (2001)::Comedy|Romance\n2::Foo: Bar (1999)::Children's\n"
          + "".join(f"{m}::M{m} (1990)::Drama\n" for m in range(3, 7)), encoding="latin-1")
    write(d / "users.dat", "".join(f"{u}::F::25::12::1234{u}\n" for u in range(1, 6)))
    z = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in d.iterdir():
            zf.write(f, f"ml-1m/{f.name}")
    s, ds, m = run_and_load(small_cfg, z)
    assert s["layout"] == "ml-1m" and s["counts"]["ratings"] <= 30
    assert m.loc[1, "title"] == "Amélie" and m.loc[2, "title"] == "Foo: Bar"
    assert list(m.loc[2, "genres"]) == ["Children"]
    assert ds.users["occupation"].iloc[0] == "programmer"


def test_ml_latest_csv_layout_with_half_stars_and_quotes(tmp_path, small_cfg):
    d = tmp_path / "ml-latest-small"
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\n" +
          "".join(f"{u},{m},{(u + m) % 10 / 2 + 0.5},{1000 + u + m}\n" for u in range(1, 8) for m in range(1, 6)))
    write(d / "movies.csv", 'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama|Romance\n'
          '2,Heat (1995),Action\n3,X (2000),(no genres listed)\n4,Y (2001),IMAX\n5,"Z, ""quoted"" (2002)",Drama\n')
    small_cfg = small_cfg.updated({"split.valid": 0.0, "split.test": 0.0})
    s, ds, m = run_and_load(small_cfg, d)
    assert s["layout"] == "ml-csv" and s["rating_scale"] == [0.5, 5.0]
    assert m.loc[1, "title"] == "American President, The" and list(m.loc[3, "genres"]) == []
    assert m.loc[5, "title"] == 'Z, "quoted"'
    assert 0.5 in set(np.concatenate([p.rating for p in ds.splits.values()]))


def test_recbole_layout(tmp_path, small_cfg):
    d = tmp_path / "rb"
    write(d / "x.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" +
          "".join(f"{u}\t{m}\t{(u + m) % 5 + 1}\t{100 + m}\n" for u in range(1, 6) for m in range(1, 5)))
    write(d / "x.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
          "1\tToy Story\t1995\tAnimation Children's Comedy\n2\tB\t1990\tDrama\n3\tC\t1991\tSci-Fi\n4\tD\t\tWar\n")
    s, ds, m = run_and_load(small_cfg, d)
    assert s["layout"] == "recbole"
    assert list(m.loc[1, "genres"]) == ["Animation", "Children", "Comedy"] and m.loc[1, "year"] == 1995
    assert "repeats" not in ds.manifest  # rated: data.repeats auto keeps each pair's latest
    # an .inter file without a rating field is a log of events: auto sums a pair's rows (a diff review: the
    # latest alone was kept, as for a rated file)
    e = tmp_path / "events"
    write(e / "y.inter", "user_id:token\titem_id:token\ttimestamp:float\n" +
          "".join(f"{u}\t{m}\t{100 + m + k}\n" for u in range(1, 6) for m in range(1, 5) for k in range(1 + u % 2)))
    s, ds, m = run_and_load(small_cfg.updated({"data.prepared": str(tmp_path / "ev")}), e)
    assert ds.manifest["repeats"] == "sum" and s["cleaning"]["repeated_pairs_summed"] == 12  # users 1, 3, 5 x 4


def test_recbole_benchmark_files_tokens_and_ids_written_otherwise(tmp_path, small_cfg):
    """A review: of RecBole's benchmark files (NAME.train/valid/test.inter) only the first in name order was read,
    and NAME.item was looked up as NAME.test.item; :token ids were forced to integers ('007' merged with 7, text
    tokens refused even with data.id_type=str); a .user age of 24.5 was an internal error."""
    from embedrec.errors import DataError

    head = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    rows = [f"{u}\t{m}\t{(u + m) % 5 + 1}\t{100 + u * 10 + m}\n" for u in range(1, 7) for m in range(1, 6)]
    d = tmp_path / "rb"
    for name, part in (("train", rows[:20]), ("valid", rows[20:25]), ("test", rows[25:])):
        write(d / f"ml.{name}.inter", head + "".join(part))
    write(d / "ml.item", "item_id:token\tmovie_title:token_seq\n" + "".join(f"{m}\tMovie {m}\n" for m in range(1, 6)))
    write(d / "ml.user", "user_id:token\tage:float\n" + "".join(f"{u}\t24.5\n" for u in range(1, 7)))
    s, ds, m = run_and_load(small_cfg, d)
    assert s["cleaning"]["rows_read"] == 30 and m.loc[3, "title"] == "Movie 3"
    bad = tmp_path / "rbbad"  # a row's error names its own file and line, not the first file's
    write(bad / "ml.test.inter", head + "".join(rows[:3]))
    write(bad / "ml.train.inter", head + "".join(rows[3:6]) + "1\t1\tinf\t5\n")
    with pytest.raises(DataError, match=r"ml.train.inter:5: rating inf"):
        run_and_load(small_cfg.updated({"data.prepared": str(tmp_path / "ob")}), bad)
    dotted = tmp_path / "rbdot"  # a dataset name with a dot keeps its .item (ml.v2.inter, ml.v2.item)
    write(dotted / "ml.v2.inter", head + "".join(rows))
    write(dotted / "ml.v2.item", "item_id:token\tmovie_title:token_seq\n1\tFirst\n")
    _, _, m2 = run_and_load(small_cfg.updated({"data.prepared": str(tmp_path / "od")}), dotted)
    assert m2.loc[1, "title"] == "First"
    write(d / "other.inter", head + rows[0])
    with pytest.raises(DataError, match="holds the .inter files of 2 RecBole datasets \\(ml, other\\)"):
        run_and_load(small_cfg.updated({"data.prepared": str(tmp_path / "o")}), d)
    t = tmp_path / "tok"
    write(t / "a.inter", head + "7\tB1\t5\t1\n007\tB1\t3\t2\nA1X\tB2\t4\t3\n")
    s, ds, _ = run_and_load(small_cfg.updated({"data.id_type": "str", "split.test": 0, "split.valid": 0,
                                               "data.prepared": str(tmp_path / "t1")}), t)
    assert sorted(ds.users["user_id"]) == ["007", "7", "A1X"]
    s, ds, _ = run_and_load(small_cfg.updated({"split.test": 0, "split.valid": 0, "data.id_type": "auto",
                                               "data.prepared": str(tmp_path / "t3")}), t)  # as written
    assert sorted(ds.users["user_id"]) == ["007", "7", "A1X"]
    with pytest.raises(DataError, match=r"a.inter:3: id '007' in column 'user_id' is not written as a plain integer"):
        run_and_load(small_cfg.updated({"data.prepared": str(tmp_path / "t2"), "data.id_type": "int"}), t)


def test_generic_csv_with_mapping_and_parquet(tmp_path, small_cfg):
    p = write(tmp_path / "r.csv", "uid;mid;stars\n" + "".join(f"{u};{m};{(u + m) % 5 + 1}\n"
                                                              for u in range(5) for m in range(4)))
    small_cfg = small_cfg.updated({"data.columns.user": 'uid', "data.columns.movie": 'mid'})
    small_cfg = small_cfg.updated({"data.columns.rating": 'stars', "data.columns.timestamp": None})
    s = run(small_cfg, p)
    assert s["counts"]["users"] == 5 and s["layout"] == "csv"
    df = pd.read_csv(p, sep=";")
    df.to_parquet(tmp_path / "r.parquet")
    s2 = run(small_cfg, tmp_path / "r.parquet", out=tmp_path / "p2")
    assert s2["counts"] == s["counts"]


def test_cleaning_duplicates_latest_kept_threshold_kcore(tmp_path, small_cfg):
    p = write(tmp_path / "r.csv", "user_id,movie_id,rating,timestamp\n1,1,5,10\n1,1,5,10\n1,1,2,5\n1,2,4,1\n"
              "2,1,3,1\n2,2,1,2\n3,3,5,1\n")
    small_cfg = small_cfg.updated({"split.valid": 0.0, "split.test": 0.0})
    small_cfg = small_cfg.updated({"data.min_rating": 3})
    small_cfg = small_cfg.updated({"data.min_user_ratings": 2})
    s = run(small_cfg, p)
    c = s["cleaning"]
    assert c["exact_duplicates_dropped"] == 1 and c["repeated_pairs_dropped"] == 1
    assert c["below_min_rating_dropped"] == 1
    ds = load_dataset(small_cfg.data.prepared)
    tr = ds.splits["train"]
    # user 1 keeps the latest rating (5) of movie 1; users 2 and 3 fall below 2 ratings
    assert len(tr) == 2 and sorted(tr.rating.tolist()) == [4.0, 5.0]


BAD = [
    ("user_id,movie_id,rating,timestamp\n1,2,4,5\n1,x,4,5\n", r"r\.csv:3: column 'movie_id' 'x' is not an integer"),
    ("user_id,movie_id,rating,timestamp\n1,2,4,5\n1,3,abc,5\n", r"r\.csv:3: column 'rating' 'abc' is not a number"),
    ("user_id,movie_id,rating,timestamp\n1,2,4,5\n1,3,4,5,9\n", r"r\.csv:3: expected 4 fields, found 5"),
    ("", r"r\.csv: the file is empty"),
    ("user_id,movie_id,rating,timestamp\n", r"r\.csv: the file has no data rows"),
    ("users,movie_id,rating,timestamp\n1,2,3,4\n", r"no column 'user_id'.*did you mean data.columns.user=users"),
    ("user_id,movie_id,rating,time\n1,2,3,05/01/2023 20:03\n", r"no column 'timestamp'.*; did you mean "
     r"data.columns.timestamp=time, "
     r"or \{'data.columns.timestamp': None\} if the file has no timestamps\?$"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_generic_input(tmp_path, small_cfg, text, message):
    p = write(tmp_path / "r.csv", text)
    with pytest.raises(DataError, match=message):
        run(small_cfg, p)
    assert not (tmp_path / "prepared").exists()


def test_rating_outside_scale_names_line(ml100k_dir, small_cfg):
    with open(ml100k_dir / "u.data", "a") as fh:
        fh.write("1\t1\t7\t1\n")
    line = sum(1 for u in range(1, 11) for m in range(1, 9) if (u + m) % 3) + 1
    with pytest.raises(DataError, match=rf"u\.data:{line}: rating 7 is outside the scale 1-5"):
        run(small_cfg, ml100k_dir)


def test_encoding_error_suggests_fix(tmp_path, small_cfg):
    p = tmp_path / "r.csv"
    p.write_bytes(b"user_id,movie_id,rating,timestamp\n1,2,4,5\n" + b"\xff\xfe,1,1,1\n")
    with pytest.raises(DataError, match="cannot decode byte 0xff.*data.encoding=latin-1"):
        run(small_cfg, p)


def test_a_utf8_movies_file_read_with_another_encoding_is_said(tmp_path, small_cfg, caplog):
    """A first-hour pass: a latin-1 ratings file (data.encoding=latin-1) beside a UTF-8 movies file stored 'CafÃ©'
    without a word; a latin-1 movies file, or a UTF-8 one read as UTF-8, says nothing."""
    (tmp_path / "r.csv").write_bytes(b"user_id,movie_id,rating\n1,1,4\n2,1,3\n2,2,5\n3,2,4\n")
    text = "movie_id,title,genres\n1,Caf\u00e9 (2001),Drama\n2,Plain (1999),Drama\n"
    cfg = small_cfg.updated({"data.encoding": "latin-1", "split.test": 0.0, "split.valid": 0.0})
    for n, (data, warned) in enumerate(((text.encode("utf-8"), True), (text.encode("latin-1"), False))):
        (tmp_path / "m.csv").write_bytes(data)
        caplog.clear()
        with caplog.at_level("WARNING", logger="embedrec"):
            run(cfg.updated({"data.movies": str(tmp_path / "m.csv")}), tmp_path / "r.csv", tmp_path / f"o{n}")
        assert ("read as latin-1 (data.encoding), but its text is UTF-8" in caplog.text) == warned, caplog.text
    caplog.clear()
    (tmp_path / "m.csv").write_bytes(text.encode("utf-8"))
    with caplog.at_level("WARNING", logger="embedrec"):
        run(cfg.updated({"data.movies": str(tmp_path / "m.csv"), "data.encoding": "utf-8"}), tmp_path / "r.csv",
            tmp_path / "o2")
    assert "UTF-8" not in caplog.text


@pytest.mark.parametrize("codec,bom,byte", [("utf-16-le", b"\xff\xfe", "0xff"), ("utf-16-be", b"\xfe\xff", "0xfe"),
                                            ("utf-32-le", b"\xff\xfe\x00\x00", "0xff")])
def test_a_byte_order_mark_names_the_encoding(tmp_path, small_cfg, codec, bom, byte, caplog):
    """A UTF-16 (or UTF-32) file was told to try latin-1, which reads its mark and every NUL byte as text; then
    (a first-hour pass) told to set data.encoding, which the mark already says. It is read as what the mark
    says, and said so; a file whose mark says one thing and whose bytes another is one line."""
    import logging

    p = tmp_path / "r.csv"
    p.write_bytes(bom + "user_id,movie_id,rating,timestamp\n1,2,4,5\n".encode(codec))
    enc = codec[:6]
    with caplog.at_level(logging.INFO, logger="embedrec"):
        assert run(small_cfg, p)["counts"]["ratings"] == 1
    assert f"{p}: {enc.upper()} text (its byte-order mark says so), read as such" in caplog.messages
    assert run(small_cfg.updated({"data.encoding": enc}), p, tmp_path / "ok")["counts"]["ratings"] == 1
    p.write_bytes(bom + "user_id,movie_id,rating,timestamp\n1,2,4,5\n".encode(codec)[:-1])  # cut mid-character
    with pytest.raises(DataError, match=f"it starts with a {enc.upper()} byte-order mark but byte offset"):
        run(small_cfg, p, tmp_path / "bad")


def test_encoding_error_names_the_line_and_file_offset(tmp_path, small_cfg):
    """Deep in the file, the message gives its line and the byte's offset in the file (the decoder's own offset
    is within the block pandas handed it)."""
    head = b"user_id,movie_id,rating,timestamp\n" + b"".join(b"%d,%d,4,5\n" % (u, u % 7 + 1) for u in range(1, 101))
    p = tmp_path / "r.csv"
    p.write_bytes(head + b"7,8,4,5\n" + b"9,M\xe9lies,4,5\n")
    with pytest.raises(DataError) as e:
        run(small_cfg, p)
    offset = len(head) + len(b"7,8,4,5\n") + 3
    assert str(e.value).startswith(f"{p}:103: cannot decode byte 0xe9 at byte offset {offset:,} as utf-8;"), str(e.value)


def test_zip_problems(tmp_path, small_cfg, ml100k_dir):
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not a valid zip or truncated"):
        run(small_cfg, bad)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape/u.data", "1\t1\t1\t1\n")
    with pytest.raises(DataError, match="outside the target directory"):
        run(small_cfg, evil)
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        for f in ml100k_dir.iterdir():
            zf.write(f, f"ml-100k/{f.name}")
    data = good.read_bytes()
    (tmp_path / "trunc.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="zip"):
        run(small_cfg, tmp_path / "trunc.zip")


def test_unknown_source_and_missing_file(small_cfg, tmp_path):
    with pytest.raises(DataError, match="did you mean the release 'ml-100k'"):
        run(small_cfg, "ml100k")
    with pytest.raises(DataError, match="neither an existing file nor a known release"):
        run(small_cfg, "nope")
    with pytest.raises(DataError) as e:  # written as a path: which part is missing
        run(small_cfg, tmp_path / "no" / "such" / "ratings.csv")
    assert str(e.value) == (f"data.source '{tmp_path}/no/such/ratings.csv': file not found ('{tmp_path}' exists, "
                            "'no/such/ratings.csv' in it does not); check the path")
    d = tmp_path / "empty"
    d.mkdir()
    with pytest.raises(DataError, match="unrecognised layout"):
        run(small_cfg, d)


def test_a_closed_stdin_source_is_a_data_error(small_cfg, tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "stdin", None)  # what Python leaves for a shell's <&-
    with pytest.raises(DataError, match="^data.source '-': standard input is closed; pipe the ratings in"):
        run(small_cfg, "-", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_movies_policy(tmp_path, small_cfg):
    d = tmp_path / "ml"
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\n" + "".join(f"{u},{m},3,1\n" for u in range(1, 4)
                                                                        for m in (1, 2, 99)))
    write(d / "movies.csv", "movieId,title,genres\n1,A (2000),Drama\n2,B (2001),Comedy\n")
    small_cfg = small_cfg.updated({"split.valid": 0.0, "split.test": 0.0})
    s = run(small_cfg, d)
    assert s["cleaning"]["ratings_for_unknown_movies"] == 3 and s["counts"]["movies"] == 3
    small_cfg = small_cfg.updated({"data.unknown_movies": 'drop'})
    s = run(small_cfg, d, out=tmp_path / "p2")
    assert s["counts"]["movies"] == 2


def test_existing_output_refused_and_kept(ml100k_dir, small_cfg):
    run(small_cfg, ml100k_dir)
    before = json.loads((ml100k_dir.parent / "prepared" / "manifest.json").read_text())
    with pytest.raises(DataError, match="already exists; pass overwrite=True"):
        run(small_cfg, ml100k_dir)
    # a failing overwrite leaves the earlier dataset intact
    with open(ml100k_dir / "u.data", "a") as fh:
        fh.write("oops\n")
    with pytest.raises(DataError):
        run(small_cfg, ml100k_dir, overwrite=True)
    after = json.loads((ml100k_dir.parent / "prepared" / "manifest.json").read_text())
    assert before == after
    assert [p.name for p in ml100k_dir.parent.iterdir() if p.name.startswith(".prepared")] == []


def test_splits_have_no_leakage_and_are_deterministic(synth_dir, small_cfg, tmp_path):
    d, _ = synth_dir
    a = run(small_cfg, d, out=tmp_path / "a")
    b = run(small_cfg, d, out=tmp_path / "b")
    da, db = load_dataset(tmp_path / "a"), load_dataset(tmp_path / "b")
    assert a["split"] == b["split"]
    for name in ("train", "valid", "test"):
        np.testing.assert_array_equal(da.splits[name].user, db.splits[name].user)
    tr = da.splits["train"]
    for name in ("valid", "test"):
        part = da.splits[name]
        assert np.isin(part.user, tr.user).all() and np.isin(part.movie, tr.movie).all()
        pairs = set(zip(part.user.tolist(), part.movie.tolist()))
        assert not pairs & set(zip(tr.user.tolist(), tr.movie.tolist()))


def test_cold_movies_split_keeps_held_out_movies_in_test(synth_dir, small_cfg, tmp_path):
    small_cfg = small_cfg.updated({"split.cold_movies": 0.1})
    s = run(small_cfg, synth_dir[0], out=tmp_path / "cold")
    ds = load_dataset(tmp_path / "cold")
    cold = set(s["cold_movies"])
    assert len(cold) == 20
    mid = ds.movies["movie_id"].to_numpy()
    assert not cold & set(mid[ds.splits["train"].movie].tolist())
    assert cold <= set(mid[ds.splits["test"].movie].tolist())


@pytest.mark.parametrize("users, movies", [
    ([1, 2, 1, 3, 2], [10, 10, 11, 10, 10]),                       # small non-negative ints: user * width + movie
    (["a", "b", "a", "c", "b"], ["x", "x", "y", "x", "x"]),       # strings: factorize codes
    ([-1, 2, -1, 3, 2], [10, 10, 11, 10, 10]),                     # a negative id: factorize codes
    ([2 ** 61, 2, 2 ** 61, 3, 2], [10, 10, 11, 10, 10]),           # user * width would overflow: factorize codes
])
def test_pair_key_is_equal_exactly_for_equal_pairs(users, movies):
    from embedrec.data.repeats import _pair_key, dedupe_rows

    df = pd.DataFrame({"user_id": users, "movie_id": movies, "rating": [1.0, 2.0, 3.0, 4.0, 5.0],
                       "timestamp": [1, 2, 3, 4, 5]})
    key = _pair_key(df)
    pairs = list(zip(users, movies))
    for i in range(len(pairs)):
        for j in range(len(pairs)):
            assert (key[i] == key[j]) == (pairs[i] == pairs[j])
    rows, exact, repeated = dedupe_rows(df)  # rows 1 and 4 are the same pair: the later (row 4) is kept, in row 1's
    # place
    assert rows.tolist() == [0, 4, 2, 3] and (exact, repeated) == (0, 1)


def test_manifest_counts_histogram_and_splits_hand_computed(tmp_path, small_cfg):
    """The manifest's summary, computed from the three split frames: 20 ratings whose values are (u + m) % 5 + 1
    (4 of each value 1-5), every row in some split, a repeated pair kept once; string ids."""
    rows = [f"u{u},m{m},{(u + m) % 5 + 1},{100 * u + m}\n" for u in range(5) for m in range(4)]
    p = write(tmp_path / "r.csv", "user,movie,rating,ts\n" + "".join(rows) + "u0,m0,1,0\n")  # an exact duplicate
    cfg = small_cfg.updated({"data.columns.user": "user", "data.columns.movie": "movie",
                             "data.columns.timestamp": "ts", "data.id_type": "str"})
    s = run(cfg, p)
    assert s["counts"] == {"users": 5, "movies": 4, "ratings": 20}
    assert s["rating_histogram"] == {"1": 4, "2": 4, "3": 4, "4": 4, "5": 4}
    assert sum(s["split"][k] for k in ("train", "valid", "test")) == 20 and s["has_timestamps"] is True
    assert s["cleaning"]["exact_duplicates_dropped"] == 1
    ds = load_dataset(cfg.data.prepared)
    assert sorted(np.concatenate([ds.splits[k].rating for k in ("train", "valid", "test")]).tolist()) == \
        sorted([float((u + m) % 5 + 1) for u in range(5) for m in range(4)])


@pytest.mark.parametrize("column, values, message", [
    ("user_id", [1.5, 2.0, 3.0], "row 1: column 'user_id' holds 1.5, not an integer id"),
    ("user_id", ["a", "b", "c"], "row 1: column 'user_id' holds 'a', not an integer id"),
    ("user_id", [1, None, 3], "row 2: column 'user_id' is empty"),
    ("user_id", [[1], [2], [3]], "holds [1], not an integer id"),
    ("rating", ["x", "3", "5"], "row 1: column 'rating' holds 'x', not a number"),
    ("rating", [True, False, True], "column 'rating' holds True, not a number"),
    ("timestamp", [True, False, True], "column 'timestamp' holds True, not a Unix time or a date"),
    ("timestamp", [1.5, float("inf"), 3.0], "row 2: timestamp inf is no Unix time"),
])
def test_parquet_columns_of_the_wrong_type_are_refused_by_row(tmp_path, small_cfg, column, values, message):
    cols = {"user_id": [1, 2, 3], "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0], "timestamp": [1, 2, 3]}
    pd.DataFrame({**cols, column: values}).to_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataError, match=re.escape(message)):
        run(small_cfg, tmp_path / "r.parquet")
    assert not (tmp_path / "prepared").exists()


def test_unix_times_with_a_fraction_are_read_as_whole_seconds(tmp_path, small_cfg, caplog):
    """A notebook review: time.time()'s 1700000000.5 (and a JavaScript ms / 1000) was refused as 'not an integer'
    in a CSV and a float Parquet column. Now read as numbers and stored as whole seconds, rounded down (in the unit
    data.timestamp_unit reads: 1700000000123.9 ms is 1700000000 s), said in one note; a word is still refused by
    its line, and a value that is no finite time too. By hand: 1700000000.5 -> 1700000000, 1700000001.99 ->
    1700000001, -0.5 -> -1 (before 1970: rounded down, as numpy's floor)."""
    import logging

    rows = [(u, m, 1 + (u + m) % 5) for u in range(1, 6) for m in range(1, 5)]
    fracs = [1700000000.5, 1700000001.99, 1700000002, 1700000003.25]
    text = "".join(f"{u},{m},{r},{fracs[(u * m) % 4]}\n" for u, m, r in rows)
    (tmp_path / "f.csv").write_text("user_id,movie_id,rating,timestamp\n" + text)
    with caplog.at_level(logging.INFO, "embedrec"):
        run(small_cfg, tmp_path / "f.csv")
    ds = load_dataset(small_cfg.data.prepared)
    stamps = sorted(set(np.concatenate([x.timestamp for x in ds.splits.values()]).tolist()))
    assert set(stamps) <= {1700000000, 1700000001, 1700000002, 1700000003} and len(stamps) >= 3, stamps
    n = sum(fracs[(u * m) % 4] % 1 != 0 for u, m, _ in rows)
    assert f"f.csv: {n} timestamps with a fraction of a second (e.g. 1700000001.99), stored as whole seconds, " \
           "rounded down" in caplog.text, caplog.text
    pd.DataFrame({"user_id": [1, 2, 3], "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0],
                  "timestamp": [1700000000123.9, 1700000001000.0, -0.5]}).to_parquet(tmp_path / "f.parquet")
    run(small_cfg.updated({"data.timestamp_unit": "ms"}), tmp_path / "f.parquet", overwrite=True)
    ds = load_dataset(small_cfg.data.prepared)
    assert sorted(np.concatenate([x.timestamp for x in ds.splits.values()]).tolist()) == [-1, 1700000000, 1700000001]
    # with data.missing=drop and with a decimal comma too (a review: "a numeric column could not be parsed", and
    # '1700000000,5' refused as no integer); a float column's value no 64-bit time holds is refused under drop
    # too, not cast to -2**63 (a review)
    (tmp_path / "d.csv").write_text("user_id,movie_id,rating,timestamp\n" + text + "9,9,4,\n")
    run(small_cfg.updated({"data.missing": "drop"}), tmp_path / "d.csv", overwrite=True)
    (tmp_path / "c.csv").write_text("user_id;movie_id;rating;timestamp\n" + text.replace(",", ";").replace(".", ","))
    run(small_cfg.updated({"data.decimal": ","}), tmp_path / "c.csv", overwrite=True)
    got = sorted(set(np.concatenate([x.timestamp for x in load_dataset(small_cfg.data.prepared).splits.values()])))
    assert set(got) <= {1700000000, 1700000001, 1700000002, 1700000003} and len(got) >= 3, got
    pd.DataFrame({"user_id": [1, 2, 3], "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0],
                  "timestamp": [1e30, 1.7e9, None]}).to_parquet(tmp_path / "h.parquet")
    with pytest.raises(DataError, match=r"h\.parquet: row 1: timestamp 1e\+30 is no Unix time"):
        run(small_cfg.updated({"data.missing": "drop"}), tmp_path / "h.parquet", overwrite=True)
    for bad, said in (("abc", "'abc' is not a number; timestamps are Unix seconds or ISO 8601 dates"),
                      ("1e999", "timestamp inf is no Unix time (not a finite number within 64 bits)")):
        (tmp_path / "b.csv").write_text("user_id,movie_id,rating,timestamp\n1,1,5,1700000000.5\n1,2,3," + bad + "\n")
        with pytest.raises(DataError, match=re.escape("b.csv:3: ")) as e:
            run(small_cfg, tmp_path / "b.csv", overwrite=True)
        assert said in str(e.value), str(e.value)


def test_parquet_uint64_beyond_int64_and_datetime_timestamps(tmp_path, small_cfg):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user_id": pa.array([2 ** 64 - 1, 2, 3], pa.uint64()), "movie_id": [1, 2, 3],
                             "rating": [4.0, 3.0, 5.0], "timestamp": [1, 2, 3]}), tmp_path / "u.parquet")
    with pytest.raises(DataError, match=r"fits in 64 bits; to keep such ids as text set data.id_type=auto"):
        run(small_cfg, tmp_path / "u.parquet")
    # an own-data review: under auto they wrapped to -2**63 (the ids out not those in); kept as text now, as a
    # CSV's are
    run(small_cfg.updated({"data.id_type": "auto", "data.prepared": str(tmp_path / "u")}), tmp_path / "u.parquet")
    assert sorted(load_dataset(tmp_path / "u").users["user_id"]) == ["18446744073709551615", "2", "3"]
    when = pd.to_datetime(["2000-01-01", "2000-01-02", "2000-01-03"]).as_unit("ns")
    pd.DataFrame({"user_id": [1, 2, 3], "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0],
                  "timestamp": when}).to_parquet(tmp_path / "t.parquet")
    run(small_cfg, tmp_path / "t.parquet")
    ds = load_dataset(small_cfg.data.prepared)
    stamps = np.concatenate([x.timestamp for x in ds.splits.values()])
    assert stamps.size >= 2 and set(stamps.tolist()) <= {946684800, 946771200, 946857600}  # Unix seconds
    # a first-hour pass: dates without a time (date32), and integer ids stored as text, as a CSV holds them
    pd.DataFrame({"user_id": ["1", "2", "3"], "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0],
                  "timestamp": when.date}).to_parquet(tmp_path / "d.parquet")
    run(small_cfg, tmp_path / "d.parquet", tmp_path / "d")
    ds = load_dataset(tmp_path / "d")
    assert set(np.concatenate([x.timestamp for x in ds.splits.values()]).tolist()) <= {946684800, 946771200, 946857600}
    assert ds.users["user_id"].dtype == "int64" and sorted(ds.users["user_id"]) == [1, 2, 3]
    for ids, row in ((["1", "02", "3"], 2), (["1", "+2", "3"], 2), (["1", "2", "3.0"], 3),
                     (["1", "2", "\u0667"], 3)):  # as a CSV's: refused ('٧', an Arabic-Indic 7, is no 7: a review)
        pd.DataFrame({"user_id": ids, "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0]}).to_parquet(tmp_path / "x.parquet")
        with pytest.raises(DataError, match=rf"row {row}: column 'user_id' holds '{re.escape(ids[row - 1])}', not an "
                                            r"integer id \(the column is text"):
            run(small_cfg.updated({"data.prepared": str(tmp_path / "x")}), tmp_path / "x.parquet")
    for ids in (["1", "2", "-99999999999999999999"], ["1", "2", "99999999999999999999"]):  # a review: OverflowError
        pd.DataFrame({"user_id": ids, "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0]}).to_parquet(tmp_path / "x.parquet")
        with pytest.raises(DataError, match=r"row 3: column 'user_id' holds .*, not an integer id that fits in 64 bits"):
            run(small_cfg.updated({"data.prepared": str(tmp_path / "x")}), tmp_path / "x.parquet")
    pd.DataFrame({"user_id": ["1", "-2", " 3"], "movie_id": [1, 2, 3], "rating": [4.0, 3.0, 5.0]}) \
        .to_parquet(tmp_path / "y.parquet")  # spaces around and a minus sign: as a CSV reads them
    run(small_cfg, tmp_path / "y.parquet", tmp_path / "y")
    assert sorted(load_dataset(tmp_path / "y").users["user_id"]) == [-2, 1, 3]


def test_a_header_naming_a_column_twice_is_refused(tmp_path, small_cfg):
    p = write(tmp_path / "d.csv", "user_id,user_id,movie_id,rating,timestamp\n1,7,10,4,1\n2,8,11,3,2\n")
    with pytest.raises(DataError, match=r"d.csv:1: the header names column 'user_id' twice"):
        run(small_cfg, p)


def test_a_cached_release_cut_short_is_unpacked_again(tmp_path):
    from embedrec.data.sources import COMPLETE, _complete, _mark_complete

    rel = tmp_path / "ml-x"
    rel.mkdir()
    (rel / "ratings.dat").write_text("1::2::3::4\n" * 100)
    _mark_complete(rel, "ml-x.zip")
    assert _complete(rel)
    (rel / "ratings.dat").write_text("1::2::3::4\n" * 10)  # truncated after it was unpacked (or edited)
    assert not _complete(rel) and not rel.exists()  # moved aside, never deleted: the caller unpacks it again
    [aside] = tmp_path.glob("ml-x.changed-*")
    assert (aside / "ratings.dat").read_text() == "1::2::3::4\n" * 10
    rel.mkdir()
    (rel / "ratings.dat").write_text("1::2::3::4\n")
    (rel / COMPLETE).write_text("ok\n")  # an older embedrec's marker lists nothing to check
    assert not _complete(rel) and not rel.exists()  # embedrec's own older copy: unpacked again, not kept
    assert len(list(tmp_path.glob("ml-x.changed-*"))) == 1


def test_a_folder_of_the_users_own_at_a_releases_name_in_the_cache_is_kept(tmp_path, small_cfg):
    """A red team: `ingest ml-latest-small` with data.cache_dir holding the user's own ml-latest-small/ (no
    marker: not unpacked by embedrec) and ml-latest-small.zip deleted the folder, the user's notes in it, and
    unpacked the zip there (exit 0). It is refused before anything is read, the folder kept whole."""
    import zipfile

    cache = tmp_path / "cache"
    mine = cache / "ml-latest-small"
    mine.mkdir(parents=True)
    (mine / "MY_NOTES.txt").write_text("mine")
    with zipfile.ZipFile(cache / "ml-latest-small.zip", "w") as zf:
        zf.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.0,4\n")
    cfg = small_cfg.updated({"data.cache_dir": str(cache)})
    with pytest.raises(DataError) as e:
        run(cfg, "ml-latest-small")
    assert str(e.value) == (f"'{mine}' is in the way of the release embedrec unpacks there, and embedrec did not "
                            f"unpack it (no .complete file in it); to ingest it as it is: embedrec ingest '{mine}'; "
                            "else move it away, or set data.cache_dir to another folder")
    assert sorted(p.name for p in mine.iterdir()) == ["MY_NOTES.txt"]


def test_a_failed_first_download_does_not_use_the_licence_notice_up(tmp_path, ml100k_dir, monkeypatch, caplog):
    """The marker was written before the fetch: when the first download failed, the first one that succeeded
    showed no notice. No network: the download and the offline fallback are replaced."""
    import logging
    import urllib.error

    from embedrec.data import sources

    cache = tmp_path / "cache"
    monkeypatch.setattr(logging.getLogger("embedrec"), "propagate", True)  # off after any CLI test in this process

    def unreachable(*a, **k):
        raise urllib.error.URLError("unreachable")

    def no_wheel(cache):
        raise DataError("cannot fetch MovieLens 100K: 'pip download' failed")

    monkeypatch.setattr(sources.urllib.request, "urlopen", unreachable)  # and no published checksum
    monkeypatch.setattr(sources, "_download", unreachable)
    monkeypatch.setattr(sources, "recbole_ml100k", no_wheel)
    with caplog.at_level(logging.WARNING, logger="embedrec"):
        with pytest.raises(DataError, match="cannot fetch MovieLens 100K"):
            sources.fetch_named("ml-100k", cache, progress=False)
        assert sources.LICENCE in caplog.text and not (cache / "licence-shown").exists()

        def download(url, dest, progress):
            with zipfile.ZipFile(dest, "w") as zf:
                for f in ml100k_dir.iterdir():
                    zf.write(f, f"ml-100k/{f.name}")

        monkeypatch.setattr(sources, "_download", download)
        caplog.clear()
        assert (sources.fetch_named("ml-100k", cache, progress=False) / "u.data").is_file()
        assert sources.LICENCE in caplog.text and (cache / "licence-shown").exists()
        caplog.clear()
        sources.fetch_named("ml-100k", cache, progress=False)
        assert sources.LICENCE not in caplog.text  # shown once


def test_the_repeated_name_check_takes_a_separator_of_two_characters(tmp_path):
    from embedrec.data.parsing import _refuse_repeated_names

    _refuse_repeated_names(b"user_id::movie_id::rating\n1::2::3\n", "::", "utf-8", "r.txt")  # no error, no crash
    with pytest.raises(DataError, match="names column 'user_id' twice"):
        _refuse_repeated_names(b"user_id::user_id::rating\n1::2::3\n", "::", "utf-8", "d.txt")


def test_an_empty_valid_or_test_split_is_said_at_ingest(tmp_path):
    """One rating a user leaves nothing to hold out: the valid and test rows were all dropped (their users have
    no training rating) and ingest said nothing; train then reported 'valid ndcg@10 nan'."""
    from click.testing import CliRunner

    from embedrec.cli import main

    src = tmp_path / "one_each.csv"
    src.write_text("user_id,movie_id,rating,timestamp\n" +
                   "".join(f"{u},{u % 7 + 1},{u % 5 + 1},{1000 + u}\n" for u in range(1, 50)))
    r = CliRunner().invoke(main, ["ingest", str(src), "-o", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.stderr
    # each user's one rating stays in train (a user of the file is never missing from the model)
    assert ("the valid and test splits are empty (15 users' only held-out rating went back to train, so each user "
            "has one), so train cannot stop early and evaluate has nothing to score") in r.stderr
    r = CliRunner().invoke(main, ["ingest", str(src), "-o", str(tmp_path / "all"), "--set", "split.valid=0",
                                  "--set", "split.test=0"])
    assert r.exit_code == 0 and "split is empty" not in r.stderr and "splits are empty" not in r.stderr  # none asked


def test_explicit_rmse_on_cold_movies_is_what_predict_serves(synth_dir, small_cfg, tmp_path):
    """A review: on a split.cold_movies split, train and evaluate scored the test movies without training ratings
    from the export's placeholder bias (-1000, clipped to the scale's bottom: RMSE 1.83 against the biases'
    0.98) where predict answers them mu + b_u (movie_unknown). The metric is now of what is served."""
    import embedrec as er
    from embedrec.evaluate import rating_metrics

    cfg = small_cfg.updated({"split.cold_movies": 0.1, "data.prepared": str(tmp_path / "cold")})
    ds = er.ingest(str(synth_dir[0]), cfg)
    model = er.train(ds, cfg)
    model.save()
    test = ds.splits["test"]
    uid, mid = ds.users["user_id"].to_numpy(), ds.movies["movie_id"].to_numpy()
    pairs = list(zip(uid[test.user].tolist(), mid[test.movie].tolist()))
    served = er.open(cfg.run.dir).predict(pairs)
    assert "movie_unknown" in served.fallback
    want = rating_metrics(np.asarray(served.scores, dtype=np.float64), test.rating)["rmse"]
    opened = er.open(cfg.run.dir)
    got = opened.evaluate("test")["splits"]["test"]["model"]["rmse"]
    assert got == pytest.approx(want, rel=1e-5)
    assert model.evaluate("test")["splits"]["test"]["model"]["rmse"] == pytest.approx(want, rel=1e-5)


def test_millisecond_timestamps_are_read_as_such_and_other_units_among_them_said(tmp_path, caplog):
    """A notebook review: epoch milliseconds were read as seconds without a word (dates near the year 55,000); a
    first-hour review: then warned of, and stored as seconds all the same (history printed the year 56376).
    data.timestamp_unit: auto reads them as milliseconds, by their size, said in a note; a file of seconds is said
    nothing of; some rows of another unit than most are warned of with the first one's line, either way."""
    import embedrec as er
    from embedrec.config import load_config

    rows = "".join(f"{u},{m},4,{1_600_000_000_000 + 1000 * (u * 7 + m)}\n" for u in range(1, 30) for m in range(1, 12))
    (tmp_path / "r.csv").write_text("user_id,movie_id,rating,timestamp\n" + rows)
    cfg = load_config(None, {"data.prepared": str(tmp_path / "ds")})
    with caplog.at_level("INFO", logger="embedrec"):
        er.ingest(str(tmp_path / "r.csv"), cfg)
    said = [r.getMessage() for r in caplog.records if "milliseconds" in r.getMessage()]
    middle = int(np.median([1_600_000_000_000 + 1000 * (u * 7 + m) for u in range(1, 30) for m in range(1, 12)]))
    assert len(said) == 1, caplog.text
    assert said[0].startswith(f"{tmp_path / 'r.csv'}: the timestamps are Unix milliseconds by their size (median "
                              f"{middle}, 2020-09-13 as milliseconds), stored as seconds (data.timestamp_unit: auto; ")
    # (the setting in library or CLI terms, as the logger's filter renders it: a CLI test before installs the CLI's)
    assert said[0].endswith(("data.timestamp_unit='s' reads them as seconds)",
                             "--set data.timestamp_unit=s reads them as seconds)")), said
    times = np.concatenate([f.timestamp for f in load_dataset(tmp_path / "ds").splits.values()])
    assert times.min() == 1_600_000_000 + 8 and times.max() == 1_600_000_000 + 29 * 7 + 11
    caplog.clear()
    (tmp_path / "s.csv").write_text("user_id,movie_id,rating,timestamp\n" + rows.replace(",16000", ",16"))
    with caplog.at_level("INFO", logger="embedrec"):
        er.ingest(str(tmp_path / "s.csv"), cfg.updated({"data.prepared": str(tmp_path / "ds2")}))
    assert not any("milliseconds" in r.getMessage() for r in caplog.records), caplog.text
    # a third of the rows in milliseconds among seconds (a red team: no word, and a time split held them all out)
    lines = [f"{u},{m},4,{(1_600_000_000 + u * 7 + m) * (1000 if (u + m) % 3 == 0 else 1)}\n"
             for u in range(1, 30) for m in range(1, 12)]
    (tmp_path / "t.csv").write_text("user_id,movie_id,rating,timestamp\n" + "".join(lines))
    caplog.clear()
    with caplog.at_level("WARNING", logger="embedrec"):
        er.ingest(str(tmp_path / "t.csv"), cfg.updated({"data.prepared": str(tmp_path / "ds3")}))
    first = next(i for i, x in enumerate(lines) if int(x.rsplit(",", 1)[1]) > 1e11)
    said = [r.getMessage() for r in caplog.records if "past the year 5000" in r.getMessage()]
    assert said == [f"{tmp_path / 't.csv'}:{first + 2}: timestamp {lines[first].rsplit(',', 1)[1].strip()} is past "
                    f"the year 5000 as Unix seconds (milliseconds?), as {sum(int(x.rsplit(',', 1)[1]) > 1e11 for x in lines)} "
                    f"of {len(lines)} rows' are while most are seconds: a time-based split would hold those rows out "
                    "first; give every row seconds"], caplog.text
    # a negative one as large is as far before 1970, not past 5000 (a red team), and goes first, not last
    neg = lines[:first] + [lines[first].rsplit(",", 1)[0] + ",-99999999999999\n"] + \
        [x for x in lines[first + 1:] if int(x.rsplit(",", 1)[1]) < 1e11]
    (tmp_path / "n.csv").write_text("user_id,movie_id,rating,timestamp\n" + "".join(neg))
    caplog.clear()
    with caplog.at_level("WARNING", logger="embedrec"):
        er.ingest(str(tmp_path / "n.csv"), cfg.updated({"data.prepared": str(tmp_path / "ds-neg")}))
    assert f"{tmp_path / 'n.csv'}:{first + 2}: timestamp -99999999999999 is thousands of years before 1970 as Unix " \
           "seconds (milliseconds?), as 1 of" in caplog.text and "would put those rows before every other" in \
           caplog.text, caplog.text
    # and seconds among milliseconds: put before every other row (the unit is the median's)
    lines = [f"{u},{m},4,{(1_600_000_000 + u * 7 + m) * (1 if (u + m) % 5 == 0 else 1000)}\n"
             for u in range(1, 30) for m in range(1, 12)]
    (tmp_path / "v.csv").write_text("user_id,movie_id,rating,timestamp\n" + "".join(lines))
    caplog.clear()
    with caplog.at_level("WARNING", logger="embedrec"):
        er.ingest(str(tmp_path / "v.csv"), cfg.updated({"data.prepared": str(tmp_path / "ds4")}))
    first = next(i for i, x in enumerate(lines) if int(x.rsplit(",", 1)[1]) < 1e11)
    said = [r.getMessage() for r in caplog.records if "1973" in r.getMessage()]
    assert said == [f"{tmp_path / 'v.csv'}:{first + 2}: timestamp {lines[first].rsplit(',', 1)[1].strip()} is before "
                    f"1973 as Unix milliseconds (seconds?), as {sum(int(x.rsplit(',', 1)[1]) < 1e11 for x in lines)} "
                    f"of {len(lines)} rows' are while most are milliseconds: a time-based split would put those rows "
                    "before every other; give every row milliseconds"], caplog.text


def test_unit_by_size_by_hand():
    from embedrec.data.times import unit_by_size

    assert [unit_by_size(v) for v in (0, 1_700_000_000, -1e10, 99_999_999_999)] == ["s"] * 4
    assert [unit_by_size(v) for v in (1e11, 1.7e12, 1.7e15, 1.7e18, 9e18)] == ["ms", "ms", "us", "ns", "ns"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_unix_times_of_any_unit_are_stored_as_the_same_seconds(tmp_path, fmt):
    """data.timestamp_unit: a file of Unix seconds, milliseconds, microseconds or nanoseconds (each a few ticks
    past its second, rounded down) makes the same dataset, seconds stored; auto says the unit it read in one note,
    an explicit unit is honoured, a wrong one too (with a warning), and dates are read as dates whatever it is."""
    from click.testing import CliRunner

    from embedrec.cli import main

    seconds = [1_600_000_000 + 86_400 * (u * 7 + m) + (u * m) % 60 for u in range(1, 21) for m in range(1, 11)]
    pairs = [(u, m) for u in range(1, 21) for m in range(1, 11)]

    def write_file(name: str, times) -> str:
        frame = pd.DataFrame({"user_id": [u for u, _ in pairs], "movie_id": [m for _, m in pairs],
                              "rating": 4.0, "timestamp": times})
        path = tmp_path / f"{name}.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
        return str(path)

    def ingest_cli(path, out, *sets):
        r = CliRunner().invoke(main, ["ingest", path, "-o", str(tmp_path / out), *sets])
        assert r.exit_code == 0, r.stderr
        ds = load_dataset(tmp_path / out)
        stored = pd.concat([ds.split_frame(s) for s in ds.splits]).sort_values(["user_id", "movie_id"])
        return r.stderr, stored["timestamp"].tolist()

    for unit, ticks in (("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)):
        path = write_file(unit, [t * ticks + (ticks - 1) for t in seconds])
        err, stored = ingest_cli(path, f"d-{unit}")
        assert stored == seconds, unit
        name = {"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}.get(unit)
        assert (f"the timestamps are Unix {name} by their size" in err) == (unit != "s"), err
        err, stored = ingest_cli(path, f"e-{unit}", "--set", f"data.timestamp_unit={unit}")  # set: no note
        assert stored == seconds and "by their size" not in err and "by its size" not in err, err
    err, stored = ingest_cli(write_file("s", seconds), "wrong", "--set", "data.timestamp_unit=ms")  # honoured
    assert stored == [t // 1000 for t in seconds]
    assert ("data.timestamp_unit=ms reads the timestamps as Unix milliseconds, but their median, " in err
            and "is of Unix seconds by its size (data.timestamp_unit: auto would read them so): read as "
            "milliseconds, as set" in err), err
    dates = pd.to_datetime(pd.Series(seconds), unit="s", utc=True)
    err, stored = ingest_cli(write_file("dates", dates if fmt == "parquet" else dates.dt.strftime("%Y-%m-%dT%H:%M:%SZ")),
                             "dates", "--set", "data.timestamp_unit=ms")
    assert stored == seconds and "data.timestamp_unit=ms applies to Unix times written as numbers, and the " \
        "timestamps are dates: read as dates" in err, err


def test_a_date_in_another_format_says_which_timestamps_are_read(tmp_path):
    """A notebook review: day-first dates ('05/01/2023 20:03') were only 'not an integer'."""
    import embedrec as er
    from embedrec.config import load_config

    (tmp_path / "r.csv").write_text("user_id,movie_id,rating,timestamp\n1,2,3,05/01/2023 20:03\n")
    # (a first-hour review: then told 'not an integer'; now what it is not and the setting that reads it, both
    # readings named where no day is above 12)
    with pytest.raises(DataError, match=r"r.csv:2: column 'timestamp' '05/01/2023 20:03' is not a date embedrec can "
                                        r"read \(neither a Unix time nor ISO 8601\); their first values read as "
                                        r"day-first and as US month-first dates alike \(no day above 12\): "
                                        r"data.timestamp_format='%d/%m/%Y %H:%M' \(day-first\) or "
                                        r"data.timestamp_format='%m/%d/%Y %H:%M' \(US month-first\)"):
        er.ingest(str(tmp_path / "r.csv"), load_config(None, {"data.prepared": str(tmp_path / "ds")}))
    # an ISO date below Unix seconds: a mix of the two kinds, said as such (a first-hour pass)
    (tmp_path / "m.csv").write_text("user_id,movie_id,rating,timestamp\n1,2,3,881250949\n2,2,3,1998-02-01 10:00\n")
    with pytest.raises(DataError, match=r"m.csv:3: column 'timestamp' '1998-02-01 10:00' is an ISO 8601 date where "
                                        r"the column's first rows are Unix seconds; give every row one kind"):
        er.ingest(str(tmp_path / "m.csv"), load_config(None, {"data.prepared": str(tmp_path / "ds")}))


def test_a_cache_folder_that_is_a_file_names_where_its_path_came_from(tmp_path, small_cfg, monkeypatch):
    """A red team: EMBEDREC_CACHE=/dev/null said "cannot use '/dev/null': File exists" and not that the path was
    $EMBEDREC_CACHE."""
    from embedrec.errors import EmbedrecError

    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("EMBEDREC_CACHE", str(afile))
    with pytest.raises(EmbedrecError) as e:
        run(small_cfg.updated({"data.cache_dir": None}), "ml-100k")
    assert str(e.value).startswith(f"$EMBEDREC_CACHE '{afile}' is not a folder"), str(e.value)
    with pytest.raises(EmbedrecError) as e:
        run(small_cfg.updated({"data.cache_dir": str(afile / "sub")}), "ml-100k")
    assert str(e.value).startswith(f"data.cache_dir '{afile / 'sub'}' is not a folder"), str(e.value)


def test_a_release_that_cannot_be_downloaded_names_the_ingest_of_a_local_zip(tmp_path, monkeypatch):
    """A first-hour review: `embedrec ingest ml-1m` offline said '... pass the zip as data.source', a config key,
    where a command-line user gives the zip as the source."""
    import urllib.error

    from click.testing import CliRunner

    import embedrec as er
    from embedrec.cli import main
    from embedrec.data import sources

    def unreachable(*a, **k):
        raise urllib.error.URLError("unreachable")

    monkeypatch.setattr(sources.urllib.request, "urlopen", unreachable)
    monkeypatch.setattr(sources, "_download", unreachable)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["ingest", "ml-1m"])
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.endswith("elsewhere and pass the zip: embedrec ingest PATH/ml-1m.zip\n"), r.stderr
    with pytest.raises(DataError, match=r"pass the zip: er.ingest\('PATH/ml-1m.zip'\)$"):
        er.ingest("ml-1m")


def test_a_click_log_without_a_rating_column_is_counted_under_repeats_sum(tmp_path, small_cfg, caplog):
    """A first-hour review: `ingest clicks.csv --set data.repeats=sum` (user,item,timestamp) was refused, offering
    'timestamp' as the rating column. Under data.repeats=sum a file without the default 'rating' column (and none
    close to it) is a log of events: each row counts 1, a pair's rows summed, as data.columns.rating=null reads it,
    said once. Without repeats=sum it is refused as before; a column named in the config is still required."""
    import logging

    from embedrec.data.dataset import load_dataset
    from embedrec.errors import DataError
    from embedrec.ingestion import ingest

    rows = "".join(f"{u},{m},{1000 + t}\n" for u in range(12) for m in range(6) for t in range(1 + (u + m) % 3))
    src = tmp_path / "clicks.csv"
    src.write_text("user_id,movie_id,timestamp\n" + rows)
    base = small_cfg.updated({"data.source": str(src), "data.repeats": "sum", "split.valid": 0.0,
                              "split.test": 0.0})
    with caplog.at_level(logging.INFO, logger="embedrec"):
        ingest(base.data, base.split, output=tmp_path / "a")
    said = [r.getMessage() for r in caplog.records]
    assert any("no 'rating' column: each row counts 1, and data.repeats=sum sums a pair's rows into its count" in s
               for s in said), said
    ingest(base.updated({"data.columns.rating": None}).data, base.split, output=tmp_path / "b")
    a, b = (load_dataset(tmp_path / x).splits["train"] for x in "ab")
    assert sorted(a.rating.tolist()) == sorted(b.rating.tolist()) and a.rating.max() == 3
    # without repeats=sum, a file of user, movie and time alone is one of interactions, each pair once, rating 1 (a
    # review: the docs called the rating column optional, and it was required)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="embedrec"):
        ingest(base.updated({"data.repeats": "latest"}).data, base.split, output=tmp_path / "c")
    assert any(m.startswith(f"{src}: no 'rating' column: each row is an interaction, rating 1 (for the default ranking "
                            "model; ") for m in [r.getMessage() for r in caplog.records]), caplog.text
    c = load_dataset(tmp_path / "c")
    assert set(c.splits["train"].rating.tolist()) == {1.0} and len(c.splits["train"]) == 72
    other = tmp_path / "other.csv"  # a column left over that may hold the ratings: required, as before
    other.write_text("user_id,movie_id,points\n1,2,3\n")
    with pytest.raises(DataError, match=r"no column 'rating' for the rating \(data\.columns\.rating\)"):
        ingest(base.updated({"data.repeats": "latest", "data.source": str(other)}).data, base.split,
               output=tmp_path / "e")
    with pytest.raises(DataError, match=r"no column 'stars'"):
        ingest(base.updated({"data.columns.rating": "stars"}).data, base.split, output=tmp_path / "d")


def test_a_global_time_cut_counts_every_user_it_leaves_out_and_says_when_it_shrinks_the_held_out_rows(
        tmp_path, small_cfg, caplog):
    """A review: ML-100K's global_time split left 269 users out where users_left_out said 77 (those whose every
    rating came after the cut were not counted), and kept 2,286 test rows of the 20,000 asked for without a word."""
    rows = [(u, m, 4, 1000 + u * 10 + m) for u in range(1, 21) for m in range(1, 9)]  # early users
    rows += [(u, m, 4, 800_000 + u * 10 + m) for u in range(1, 21) for m in range(9, 11)]  # ... and later
    rows += [(u, m, 4, 900_000 + u * 10 + m) for u in range(21, 31) for m in range(1, 9)]  # only after the cut
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in rows))
    cfg = small_cfg.updated({"split.method": "global_time", "split.test": 0.3, "split.valid": 0.1})
    with caplog.at_level("WARNING", logger="embedrec"):
        s = run(cfg, p)
    ds = load_dataset(cfg.data.prepared)
    assert s["cleaning"]["users_left_out"] == 30 - ds.n_users == 10  # users 21-30: every rating after the cut
    assert "the global_time split dropped 80 of its 112 valid and test rows" in caplog.text, caplog.text
    assert "10 users had no train or valid rating, left out" in caplog.text
    assert "split.cold_start=true" in caplog.text and "split.method=user_time" in caplog.text


def test_evaluate_says_how_many_scored_users_have_no_trained_vector(tmp_path, small_cfg):
    """A review: on a split.cold_start dataset, users with no training rating (no vector: their lists the
    catalogue's order) were averaged into the model's figures without a word."""
    from click.testing import CliRunner

    import embedrec as er
    from embedrec.cli import main

    rows = [(u, m, 4, 1000 + u * 10 + m) for u in range(1, 21) for m in range(1, 9)]
    rows += [(u, m, 4, 800_000 + u * 10 + m) for u in range(1, 21) for m in range(9, 11)]
    rows += [(u, m, 4, 900_000 + u * 10 + m) for u in range(21, 31) for m in range(1, 9)]
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in rows))
    cfg = small_cfg.updated({"split.method": "global_time", "split.test": 0.3, "split.valid": 0.1,
                             "split.cold_start": True, "model.objective": "implicit", "model.dim": 4,
                             "train.threads": 1})
    run(cfg, p)
    er.train(load_dataset(cfg.data.prepared), cfg).save()
    r = CliRunner().invoke(main, ["evaluate", "--run", cfg.run.dir, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)["splits"]["test"]["model"]
    assert got["users_untrained"] == 10  # users 21-30: every rating in test, after the cut
    assert "10 of the users scored on test have no training rating (split.cold_start's" in r.stderr, r.stderr
    # without a refit the model was fitted on train only: a user with valid rows only has no vector either
    from embedrec.evaluate import _untrained_ranked

    ds = load_dataset(cfg.data.prepared)
    valid_only = np.array(sorted(set(ds.splits["valid"].user.tolist()) - set(ds.splits["train"].user.tolist())))
    users = np.concatenate([ds.splits["test"].user, valid_only]).astype(np.int64)  # as if ranked on valid too
    assert _untrained_ranked(users, ds, ("train",)) == 10 + valid_only.size  # (a review: counted as trained)
    assert _untrained_ranked(users, ds, ("train", "valid")) == 10


def test_exact_copies_appended_leave_the_random_split_as_it_was(tmp_path):
    """A review: 100 exact duplicate lines appended to a file changed the random split though the cleaned rows
    were the same (the copy kept was the later line); the first line of a pair's copies is kept now."""
    import pandas as pd

    import embedrec as er

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"user_id": rng.integers(0, 60, 3000), "movie_id": rng.integers(0, 80, 3000),
                       "rating": rng.integers(1, 6, 3000).astype(float), "timestamp": rng.integers(0, 10**6, 3000)})
    df = df.drop_duplicates(["user_id", "movie_id"]).reset_index(drop=True)
    cfg = er.load_config(None, {"data.cache_dir": str(tmp_path / "cache")})
    a = er.ingest(df, cfg, output=tmp_path / "a")
    b = er.ingest(pd.concat([df, df.head(100)]), cfg, output=tmp_path / "b")
    assert b.manifest["cleaning"]["exact_duplicates_dropped"] == 100
    for split in ("train", "valid", "test"):
        assert a.split_frame(split).equals(b.split_frame(split)), split


@pytest.mark.parametrize("folds", [None, 5])
def test_re_ratings_appended_leave_the_split_as_it_was(tmp_path, folds):
    """A first-hour review: one re-rating (the same user and movie, another rating, a later time) appended to a
    ratings file and re-ingested kept 53.96% of ML-100K's pairs in their random split: the latest row was kept
    where it was read, so every row after the pair's first line moved up one place, a new draw. Each pair's latest
    row is now put where its first line was: every pair keeps its split, the re-rated ones with their new rating
    and time (an older rating appended leaves the pair as it was); the K-fold split, also drawn by row order, too."""
    import pandas as pd

    import embedrec as er

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"user_id": [f"u{u:03d}" for u in rng.integers(0, 60, 3000)],
                       "movie_id": [f"m{m:03d}" for m in rng.integers(0, 80, 3000)],
                       "rating": rng.integers(1, 6, 3000).astype(float), "timestamp": rng.integers(0, 10**6, 3000)})
    df = df.drop_duplicates(["user_id", "movie_id"]).reset_index(drop=True)
    cfg = er.load_config(None, {"data.cache_dir": str(tmp_path / "cache"), "data.id_type": "auto",
                                "split.folds": folds})
    a = er.ingest(df, cfg, output=tmp_path / "a")
    later = df.iloc[[6, 400, 1200]].assign(rating=lambda f: f["rating"] % 5 + 1, timestamp=2 * 10**6)
    older = df.iloc[[7]].assign(rating=lambda f: f["rating"] % 5 + 1, timestamp=-1)
    b = er.ingest(pd.concat([df, later, older]), cfg, output=tmp_path / "b")
    assert b.manifest["cleaning"]["repeated_pairs_dropped"] == 4

    def parts(ds):
        return pd.concat([ds.split_frame(s).assign(split=s) for s in ("train", "valid", "test")]).set_index(
            ["user_id", "movie_id"]).sort_index()

    pa, pb = parts(a), parts(b)
    assert pa.index.equals(pb.index) and (pa["split"] == pb["split"]).all()
    changed = pd.MultiIndex.from_frame(later[["user_id", "movie_id"]])
    assert (pb.loc[changed, "rating"].to_numpy() == later["rating"].to_numpy()).all()
    assert (pb.loc[changed, "timestamp"].to_numpy() == 2 * 10**6).all()
    rest = ~pa.index.isin(changed)
    assert pa[rest].equals(pb[rest])


def _replacing_reader(monkeypatch, path, change):
    """ingestion.read_source made to read the source, then ``change`` a file of it: a file replaced or written to
    while ingest reads it (its rows read, its checksum not yet taken)."""
    import embedrec.ingestion as ingestion

    real = ingestion.read_source

    def reading(cfg, progress=False):
        raw = real(cfg, progress)
        change(path)
        return raw

    monkeypatch.setattr(ingestion, "read_source", reading)


def _replace(path):
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(path.read_text().replace(",5,", ",1,"))
    os.replace(tmp, path)


def _append(path):
    with open(path, "a") as fh:
        fh.write("9,1,3,1999\n")


@pytest.mark.parametrize("change, how", [(_replace, "replaced by another file"), (_append, "written to: ")])
def test_a_source_changed_while_ingest_reads_it_is_refused_and_nothing_is_written(tmp_path, small_cfg, monkeypatch,
                                                                                   change, how):
    """A known gap: the source's SHA-256 was taken by reading the file again once its rows were read, so a file
    replaced meanwhile was recorded by the new file's checksum beside the old file's rows. Each file is stamped
    (device, inode, size, mtime) before it is read and compared once hashed: a change is refused in one line."""
    p = write(tmp_path / "r.csv", "user_id,movie_id,rating,timestamp\n" + "".join(
        f"{u},{m},{(u * m) % 5 + 1},{1000 + u * 10 + m}\n" for u in range(1, 7) for m in range(1, 6)))
    _replacing_reader(monkeypatch, p, change)
    out = tmp_path / "ds"
    with pytest.raises(DataError, match=re.escape(f"'{p}' changed while it was read ({how}")) as e:
        run(small_cfg, p, out=out)
    assert "nothing was written: run the ingest again" in str(e.value)
    assert not out.exists() and list(tmp_path.glob(".ds*")) == []
    monkeypatch.undo()  # read once, unchanged: its checksum is the file's
    run(small_cfg, p, out=out)
    import hashlib

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"] == {"r.csv": hashlib.sha256(p.read_bytes()).hexdigest()}


def test_a_release_folders_movies_file_replaced_while_read_is_refused(ml100k_dir, small_cfg, monkeypatch):
    """Every file a release's folder is read from is stamped (readers.source_files), u.item as u.data."""
    item = ml100k_dir / "u.item"

    def replace(path):
        tmp = path.with_name("u.item.new")
        tmp.write_bytes(path.read_bytes())
        os.replace(tmp, path)  # the same bytes, another file: the rows read are not of the file hashed

    _replacing_reader(monkeypatch, item, replace)
    with pytest.raises(DataError, match=re.escape(f"'{item}' changed while it was read (replaced by another")):
        run(small_cfg, ml100k_dir)
    assert not (ml100k_dir.parent / "prepared").exists()


@pytest.mark.parametrize("kind", ["narrow ints", "wide ints", "text", "negative ints"])
def test_index_of_answers_what_searchsorted_does(kind):
    """ingestion.index_of (each row's user or movie index, without a binary search per row) gives what
    np.searchsorted gave for every kind of id: integers within a narrow range (a table over it), spread wide
    (pandas' factorize), text, and negative ones."""
    from embedrec.ingestion import index_of

    rng = np.random.default_rng(4)
    values = {"narrow ints": rng.integers(5, 900, 5000), "wide ints": rng.integers(0, 1 << 60, 500).repeat(9),
              "text": np.array([f"u{x}" for x in rng.integers(0, 300, 4000)], dtype=object),
              "negative ints": rng.integers(-400, 40, 3000)}[kind]
    ids = np.sort(pd.unique(values))
    rng.shuffle(values)
    got = index_of(ids, values)
    assert got.dtype == np.int32 and (got == np.searchsorted(ids, values)).all()
    assert (ids[got] == values).all()


def test_a_parquet_table_read_in_batches_is_what_pandas_reads(tmp_path):
    """data.tables._read_parquet_rows (the rows read in batches for ingest's bar, pyarrow's to_pandas once) gives the
    DataFrame pd.read_parquet gives, for every column type a ratings table holds: text with a missing value, ints,
    floats, dates, zoned times, and the index pandas wrote with it, bar or none."""
    import pyarrow.parquet as pq

    from embedrec.data.tables import _read_parquet_rows

    df = pd.DataFrame({"u": ["a", "b", None], "m": [1, 2, 3], "r": [1.5, None, 2.0],
                       "t": pd.to_datetime(["2020-01-01", "2021-01-01", None]).tz_localize("Europe/Paris"),
                       "d": [pd.Timestamp("2020-01-01").date(), None, pd.Timestamp("2020-01-03").date()]},
                      index=pd.Index([10, 11, 12], name="row"))
    df.to_parquet(tmp_path / "m.parquet", row_group_size=2)
    for cols in (["u", "m", "r", "t", "d"], ["u", "t"]):
        want = pd.read_parquet(tmp_path / "m.parquet", columns=cols)
        for progress in (False, True):
            got = _read_parquet_rows(pq.ParquetFile(tmp_path / "m.parquet"), cols, progress, "m.parquet")
            pd.testing.assert_frame_equal(got, want)


def _fake_wheel(path, body: bytes = b"1\t2\t3\t4\n" * 2000):
    """A wheel holding RecBole's three ml-100k files, as recbole_ml100k reads them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in ("ml-100k.inter", "ml-100k.item", "ml-100k.user"):
            zf.writestr("recbole/dataset_example/ml-100k/" + member, body)
    return path


def test_a_damaged_or_unwritable_recbole_unpack_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch):
    """A red team: a wheel damaged inside a member's deflate data gave 'internal error (zlib ...)', was kept, and
    left a temporary folder in the cache on each try; a full cache said 'cannot write the output' and left one too.
    The wheel is named and removed (a rerun fetches it), the full cache named with $EMBEDREC_CACHE, and no
    temporary is left."""
    import shutil as sh

    from embedrec.data import sources

    cache = tmp_path / "cache"
    cache.mkdir()
    wheel = _fake_wheel(cache / "recbole-1.2.1-py3-none-any.whl")
    data = bytearray(wheel.read_bytes())
    start = data.index(b"ml-100k.inter") + len(b"ml-100k.inter") + 4  # inside the first member's deflate data
    for i in range(start, start + 16):
        data[i] ^= 0x5A
    wheel.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"not a usable recbole wheel \(.*\); it was removed, run again"):
        sources.recbole_ml100k(cache)
    assert not wheel.exists() and [p.name for p in cache.iterdir()] == []
    _fake_wheel(wheel)

    def full(src, dst, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sh, "copyfileobj", full)
    with pytest.raises(DataError, match=rf"cannot unpack MovieLens 100K into the cache '{re.escape(str(cache))}' "
                                        r"\(No space left on device\); free space there, or point \$EMBEDREC_CACHE"):
        sources.recbole_ml100k(cache)
    assert [p.name for p in cache.iterdir()] == [wheel.name]
    monkeypatch.undo()
    assert (sources.recbole_ml100k(cache) / "ml-100k.inter").is_file()
