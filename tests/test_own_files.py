"""One's own files as a first-hour review (session 57) brought them: a folder laid out as a MovieLens CSV release
(ratings.csv, movies.csv) holding one's own ids and dates, ids written '1.0' by pandas, a text column named close
to 'timestamp', a shop's customer_id/article_id columns, ratings 1-100 and ids beyond 64 bits (the Netflix Prize
files: tests/test_readers_netflix.py). Each is read, or refused in one line that names how to read it. The CLI
through CliRunner (stdout and stderr apart), the library where it applies."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec.cli import main
from embedrec.config import load_config
from embedrec.data.dataset import load_dataset
from embedrec.data.readers import read_source, source_files
from embedrec.errors import DataError


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(r, phrase: str) -> str:
    """One error line holding ``phrase``, exit 1, nothing on stdout."""
    lines = r.stderr.splitlines()
    assert r.exit_code == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("error: ") and phrase in lines[0], lines[0]
    assert r.stdout == ""
    return lines[0]


def ingested(r) -> None:
    assert r.exit_code == 0 and r.stdout == "" and "error" not in r.stderr, r.stderr


def _ids(out: Path, col: str = "user_id") -> set:
    ds = load_dataset(out)
    return set(pd.concat([ds.split_frame(s) for s in ds.splits])[col].tolist())


# ------------------------------------------------------------------------------ 1. a MovieLens-like folder of one's own

def _shop_folder(d: Path, iso: bool = False) -> Path:
    """ratings.csv and movies.csv as ml-latest lays them out, holding a shop's text ids (or ISO dates)."""
    d.mkdir(parents=True)
    rows = [(u, m, 1 + (u + m) % 5, 1_700_000_000 + 3600 * (u * 7 + m)) for u in range(8) for m in range(6)]
    if iso:
        text = "".join(f"{u + 1},{m + 1},{r},{pd.Timestamp(t, unit='s').isoformat()}Z\n" for u, m, r, t in rows)
        movies = "".join(f"{m + 1},Film {m} (199{m}),Drama\n" for m in range(6))
    else:
        text = "".join(f"cust_{u:05d},SKU-{m:04d}X,{r},{t}\n" for u, m, r, t in rows)
        movies = "".join(f"SKU-{m:04d}X,Product {m},Books\n" for m in range(6))
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + text)
    (d / "movies.csv").write_text("movieId,title,genres\n" + movies)
    return d


def test_a_folder_of_ones_own_text_ids_reads_data_id_type_and_its_refusal_says_so(tmp_path):
    """The folder's text ids were refused as a release's ('fix or remove those lines') and --set
    data.id_type=auto, the fix, was ignored there. The refusal names the setting, which then reads the folder's
    ratings.csv as a table with its movies.csv, said in one info line; the dataset holds the text ids and titles."""
    folder = _shop_folder(tmp_path / "shop")
    r = invoke("ingest", folder, "-o", tmp_path / "a")
    line = refused(r, f"{folder / 'ratings.csv'}:2: column 'userId' 'cust_00000' is not an integer")
    assert line.endswith("; the folder is read as a MovieLens CSV release (ratings.csv beside movies.csv), whose ids "
                         "are integers; for your own table's text ids set data.id_type=auto, which reads its "
                         "ratings.csv as a ratings table, or fix those lines"), line
    r = invoke("ingest", folder, "-o", tmp_path / "b", "--set", "data.id_type=auto")
    ingested(r)
    assert f"{folder}: read as a ratings table (ratings.csv, with movies.csv), not as a MovieLens CSV release, for " \
           "the settings given (data.id_type)\n" in r.stderr and "no effect" not in r.stderr, r.stderr
    assert "cust_00003" in _ids(tmp_path / "b") and "SKU-0002X" in _ids(tmp_path / "b", "movie_id")
    assert set(load_dataset(tmp_path / "b").movies["title"]) == {f"Product {m}" for m in range(6)}
    # the library alike: the setting honoured, the inputs recorded are the files read
    cfg = load_config(None, []).updated({"data.id_type": "auto"})
    ds = er.ingest(folder, cfg, output=tmp_path / "c")
    assert "cust_00000" in set(ds.users["user_id"])
    data = cfg.updated({"data.source": str(folder)}).data
    assert source_files(data) == read_source(data).files == [folder / "ratings.csv", folder / "movies.csv"]
    with pytest.raises(DataError, match="for your own table's text ids set data.id_type=auto"):
        er.ingest(folder, output=tmp_path / "d")


def test_a_folder_of_ones_own_dates_or_columns_is_told_to_give_its_ratings_file(tmp_path):
    """ISO dates in such a folder's timestamp column, or a ratings.csv of other columns: the one line says the
    folder was read as a MovieLens CSV release and names the ratings file and data.movies to read it as a table;
    that advice, followed, reads it."""
    folder = _shop_folder(tmp_path / "iso", iso=True)
    r = invoke("ingest", folder, "-o", tmp_path / "a")
    line = refused(r, f"{folder / 'ratings.csv'}:2: column 'timestamp' '")
    assert line.endswith("the folder is read as a MovieLens CSV release (ratings.csv beside movies.csv); to read it "
                         "as a ratings table of your own (its dates, its own column names), give its ratings.csv as "
                         f"the source, with --set data.movies={folder / 'movies.csv'}, or fix those lines"), line
    r = invoke("ingest", folder / "ratings.csv", "-o", tmp_path / "b", "--set", f"data.movies={folder / 'movies.csv'}")
    ingested(r)
    assert load_dataset(tmp_path / "b").manifest["has_timestamps"]
    (folder / "ratings.csv").write_text("user_id,item_id,rating\n1,2,4\n")
    r = invoke("ingest", folder, "-o", tmp_path / "c")
    refused(r, f"{folder / 'ratings.csv'}:1: header lacks movieId, timestamp, userId; expected userId,movieId,rating,"
               "timestamp; the folder is read as a MovieLens CSV release (ratings.csv beside movies.csv); to read it as "
               "a ratings table of your own")
    with pytest.raises(DataError, match=r"give its ratings.csv as the source, with data.movies='.*/movies.csv'"):
        er.ingest(folder, output=tmp_path / "d")


@pytest.mark.parametrize("setting", ["data.id_type=auto", "data.missing=drop"])
def test_a_release_downloaded_by_hand_stays_a_release_whatever_table_settings_a_config_carries(tmp_path, setting):
    """A review: ml-latest-small/ (userId,movieId,rating,timestamp of integers) given with a reused config's table
    setting was read as a table: layout 'csv', its scale 1-5 from a sample without 0.5, so update-users refused 0.5.
    It is read as released (scale 0.5-5), the setting warned of as before; a folder of one's own whose text ids start
    further down (the first row a release's) falls back to a table, as the shop's and ISO-dated folders read."""
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    rows = [f"{u},{m},{1 + (u + m) % 5}.0,{964982703 + u * 60 + m}" for u in range(1, 9) for m in range(1, 7)]
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    (d / "movies.csv").write_text("movieId,title,genres\n" + "".join(f"{m},Film {m} (199{m}),Drama\n"
                                                                      for m in range(1, 7)))
    key, value = setting.split("=")
    data = load_config(None, []).updated({key: value, "data.source": str(d)}).data
    raw = read_source(data)
    assert (raw.layout, raw.rating_scale) == ("ml-csv", (0.5, 5.0))
    assert source_files(data) == raw.files == [d / "ratings.csv", d / "movies.csv"]
    r = invoke("ingest", d, "-o", tmp_path / "a", "--set", setting)
    ingested(r)
    assert "no effect" in r.stderr and "read as a ratings table" not in r.stderr, r.stderr
    assert load_dataset(tmp_path / "a").rating_scale == (0.5, 5.0)
    # the first row a release's, a text id further down: one's own table after all, with the setting given
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\ncust_9,1,4,964990000\n")
    r = invoke("ingest", d, "-o", tmp_path / "b", "--set", "data.id_type=auto")
    ingested(r)
    assert "read as a ratings table (ratings.csv, with movies.csv)" in r.stderr and "no effect" not in r.stderr
    assert "cust_9" in _ids(tmp_path / "b")
    raw = read_source(load_config(None, []).updated({"data.id_type": "auto", "data.source": str(d)}).data)
    assert raw.layout != "ml-csv" and "cust_9" in set(raw.ratings["user_id"])


# ------------------------------------------------------------------------------ 2. ids written '1.0' by pandas

def _float_ids(p: Path) -> Path:
    """Ids as pandas writes an integer column that met a missing value: '1.0', one movie id empty (line 3)."""
    rows = [f"{u}.0,{m}.0,{1 + (u * m) % 5},{1_700_000_000 + 60 * (u * 9 + m)}" for u in range(1, 9) for m in range(1, 8)]
    rows[1] = rows[1].replace(",2.0,", ",,")
    p.write_text("user_id,movie_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    return p


@pytest.mark.parametrize("id_type", ["int", "auto"])
def test_ids_written_as_whole_floats_read_as_the_integers_they_are(tmp_path, id_type):
    """A CSV whose ids pandas wrote '1.0' was refused under data.id_type=int ('not written as a plain integer')
    and data.id_type=auto, its advice, stored '1.0' as text, so `recommend --user 1` found no user; er.ingest of
    such a DataFrame reads 1.0 as 1. The CLI reads them as integers too, said in one line, and serves user 1."""
    src = _float_ids(tmp_path / "r.csv")
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", f"data.id_type={id_type}")
    refused(r, f"{src}:3: no value in column 'movie_id' (a field is missing or empty); fill it in or remove that "
               "line, or drop such rows with --set data.missing=drop")
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", f"data.id_type={id_type}", "--set", "data.missing=drop")
    ingested(r)
    assert f"{src}: columns 'user_id' and 'movie_id' read as integer ids, every one written as a whole number with " \
           "'.0' ('1.0', as pandas writes an integer column that met a missing value)\n" in r.stderr, r.stderr
    ds = load_dataset(tmp_path / "a")
    assert ds.users["user_id"].dtype == "int64" and set(ds.users["user_id"]) == set(range(1, 9))
    assert ds.movies["movie_id"].dtype == "int64" and set(ds.movies["movie_id"]) == set(range(1, 8))
    assert ds.manifest["cleaning"]["missing_values_dropped"] == 1
    if id_type == "int":
        r = invoke("train", "--set", f"data.prepared={tmp_path / 'a'}", "--run", tmp_path / "run", "-q",
                   "--set", "model.dim=4", "--set", "train.epochs=2")
        assert r.exit_code == 0, r.stderr
        r = invoke("recommend", "--run", tmp_path / "run", "--user", "1", "-k", "1", "--format", "csv", "-q")
        assert r.exit_code == 0 and r.stderr == "", r.stderr  # user 1's one movie unrated: its dropped row's
        assert r.stdout.splitlines()[1].startswith("1,1,2,"), r.stdout


def test_whole_float_ids_in_the_library_and_a_movies_file_and_a_mix_still_refused(tmp_path):
    """er.ingest reads the CSV as the CLI does, and its DataFrame (float ids) as it did; a movies file whose ids
    pandas wrote '1.0' joins them. A column mixing '7' and '7.0' (which would merge) is still refused."""
    src = _float_ids(tmp_path / "r.csv")
    cfg = load_config(None, []).updated({"data.missing": "drop"})
    ds = er.ingest(src, cfg, output=tmp_path / "a")
    assert ds.users["user_id"].dtype == "int64" and 1 in set(ds.users["user_id"])
    frame = pd.read_csv(src)  # float64 ids, a NaN among the movies'
    ds = er.ingest(frame.dropna(), output=tmp_path / "b")
    assert set(ds.users["user_id"]) == set(range(1, 9))
    (tmp_path / "m.csv").write_text("movie_id,title\n" + "".join(f"{m}.0,Film {m}\n" for m in range(1, 8)))
    for id_type in ("int", "auto"):
        ds = er.ingest(src, cfg.updated({"data.id_type": id_type}), output=tmp_path / f"c{id_type}",
                       movies=tmp_path / "m.csv")
        assert ds.movies["movie_id"].dtype == "int64" and "Film 3" in set(ds.movies["title"])
        assert ds.manifest["cleaning"]["ratings_for_unknown_movies"] == 0
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(src.read_text().replace("\n1.0,1.0,", "\n1,1.0,", 1))
    r = invoke("ingest", mixed, "-o", tmp_path / "d", "--set", "data.missing=drop")
    refused(r, f"{mixed}:2: column 'user_id' id '1' is written without '.0', where the column's other ids are whole "
               "numbers written with '.0' (e.g. '1.0'), which are read as integers where every id is so written; fix "
               "that line, or --set data.id_type=str to read every id as text")
    # a plain '7' after the first rows' '1.0's (a code review: read again as floats under auto, '7' became '7.0',
    # merged with the movie written '7.0'): both kept as written, as at 0c58b55
    late = tmp_path / "late.csv"
    late.write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m}.0,4\n" for u in range(1, 5) for m in range(1, 301))
                    + "9,7,5\n")
    r = invoke("ingest", late, "-o", tmp_path / "e", "--set", "data.id_type=auto", "-q")
    assert r.exit_code == 0, r.stderr
    ids = set(load_dataset(tmp_path / "e").movies["movie_id"])
    assert len(ids) == 301 and {"7", "7.0"} <= ids, sorted(ids)[:5]


@pytest.mark.parametrize("at", [3, 901, 1500])
def test_an_id_that_keeps_whole_float_ids_from_being_integers_is_the_one_named(tmp_path, at):
    """A red team: ids written '0.0'..'59.0' with one '7.5' on line 902 were refused as "half.csv:2: ... id '0.0' is
    not written as a plain integer ... set data.id_type=auto", early or late alike ('1e3', 'nan', 'inf' or 31
    digits too). The id written otherwise is named by its line and value, and so are the others like it; the
    advice is to fix them (the rest are read as integers) or read every id as text. Where it lies within the
    first rows looked at and past them (the whole read) alike."""
    rows = [f"{k % 60}.0,{k % 40 + 1},{k % 5 + 1},{1_000_000_000 + k}" for k in range(1600)]
    big = "1234567890123456789012345678901.0"
    for odd, why in [("7.5", "is not a whole number"), ("1e3", "is a whole number written otherwise"),
                     ("nan", "is not a whole number"), ("inf", "is not a whole number"),
                     (big, "is beyond 64-bit integers"), ("7", "is written without '.0'")]:
        bad = list(rows)
        bad[at - 2] = f"{odd},3,4,1000099999"
        src = tmp_path / "r.csv"
        src.write_text("user_id,movie_id,rating,timestamp\n" + "\n".join(bad) + "\n")
        r = invoke("ingest", src, "-o", tmp_path / "a")
        assert refused(r, "") == (
            f"error: {src}:{at}: column 'user_id' id '{odd}' {why}, where the column's other ids are whole numbers "
            "written with '.0' (e.g. '0.0'), which are read as integers where every id is so written; fix that line, "
            "or --set data.id_type=str to read every id as text"), odd
    bad[at + 8] = "7.25,3,4,1000099999"  # two: both named, counted
    src.write_text("user_id,movie_id,rating,timestamp\n" + "\n".join(bad) + "\n")
    r = invoke("ingest", src, "-o", tmp_path / "a")
    refused(r, f"{src}:{at}: column 'user_id' id '7' is written without '.0', where")
    assert f"(2 lines like it: {at}, {at + 10}); fix those lines" in r.stderr, r.stderr
    r = invoke("ingest", src, "-o", tmp_path / "s", "--set", "data.id_type=str")
    ingested(r)


# ------------------------------------------------------------------------------ 3. a column of words named close to 'timestamp'

@pytest.mark.parametrize("name", ["meta", "team", "timeslot", "tstamp"])
def test_a_column_of_words_named_close_to_timestamp_is_read_as_no_times(tmp_path, name):
    """'did you mean --set data.columns.timestamp=meta' refused a table whose 'meta' column holds words, where the
    docs say a table with no timestamp column (and none with a close name) is read without times. A close name
    holding words is passed over, said in the info line of a table read without times; one holding dates or
    numbers keeps the hint."""
    src = tmp_path / "r.csv"
    src.write_text(f"user_id,movie_id,rating,{name}\n1,2,4,a\n1,3,4,b\n2,2,3,c\n2,3,5,\n3,2,1,d e\n")
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", "split.test=0", "--set", "split.valid=0")
    ingested(r)
    assert f"{src}: no 'timestamp' column (its column '{name}', named close to it, holds words, not times): ratings " \
           "without times (a time-based split and the recency weight need them; --set data.columns.timestamp=NAME " \
           "names another column)\n" in r.stderr, r.stderr
    assert not load_dataset(tmp_path / "a").manifest["has_timestamps"]
    src.write_text(f"user_id,movie_id,rating,{name}\n1,2,4,2023-01-05\n1,3,4,x\n")
    r = invoke("ingest", src, "-o", tmp_path / "b")
    refused(r, f"{src}: no column 'timestamp' for the timestamp (data.columns.timestamp); did you mean --set "
               f"data.columns.timestamp={name}, or --set data.columns.timestamp=null if the file has no timestamps?")


def test_a_parquet_column_of_words_named_close_to_timestamp_is_read_as_no_times(tmp_path, caplog):
    """The library and a Parquet file alike: its 'meta' column of words passed over, said; its 'tstamp' of numbers
    still the hint."""
    src = tmp_path / "r.parquet"
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2], "movie_id": [2, 3, 2, 3], "rating": [4.0, 4.0, 3.0, 5.0]})
    frame.assign(meta=["a", "b", None, "c"]).to_parquet(src)
    cfg = load_config(None, []).updated({"split.test": 0.0, "split.valid": 0.0})
    with caplog.at_level("INFO", logger="embedrec"):
        ds = er.ingest(src, cfg, output=tmp_path / "a")
    assert not ds.manifest["has_timestamps"]
    assert any("its column 'meta', named close to it, holds words, not times" in m for m in caplog.messages)
    frame.assign(tstamp=[1, 2, 3, 4]).to_parquet(src)
    with pytest.raises(DataError, match=r"did you mean data.columns.timestamp=tstamp, or"):
        er.ingest(src, cfg, output=tmp_path / "b")


# ------------------------------------------------------------------------------ 4. a shop's id columns

@pytest.mark.parametrize("head, said", [
    ("customer_id,article_id,rating", "guessed columns 'customer_id' as the user and 'article_id' as the movie, the one "
                                      "column left that can be each (--set data.columns.user=NAME --set "
                                      "data.columns.movie=NAME names another)"),
    ("user_id,product_id,rating", "guessed column 'product_id' as the movie, the one column left that can be it (--set "
                                  "data.columns.movie=NAME names another)"),
    ("user_id,order_ref_id,rating", "guessed column 'order_ref_id' as the movie, the one column left that can be it "
                                    "(--set data.columns.movie=NAME names another)")])
def test_the_one_column_that_can_be_the_user_or_the_movie_is_taken_and_text_ids_take_one_try(tmp_path, head, said):
    """A shop's customer_id,article_id,rating (and user_id,product_id,rating) was refused for its columns, the one
    that could be each only offered, then for its text ids. The column whose name says user or movie (or the one
    id column left) is taken, said in one info line naming the key that names another; the first error is then
    the text ids', which names data.id_type=auto, and that one setting reads the file."""
    src = tmp_path / "shop.csv"
    src.write_text(head + "\n" + "".join(f"c{u},a{m},{1 + (u + m) % 5}\n" for u in range(6) for m in range(5)))
    r = invoke("ingest", src, "-o", tmp_path / "a")
    refused(r, f"{src}:2: column '{head.split(',')[0]}' 'c0' is not an integer (30 lines like it: 2, 3, 4, 5, 6, "
               "...); for text ids set data.id_type=auto (or str), or fix those lines")
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", "data.id_type=auto")
    ingested(r)
    assert f"{src}: {said}\n" in r.stderr, r.stderr
    assert _ids(tmp_path / "a") == {f"c{u}" for u in range(6)} and "a3" in _ids(tmp_path / "a", "movie_id")
    assert load_dataset(tmp_path / "a").manifest["columns_read"]["movie"] == head.split(",")[1]
    ds = er.ingest(src, load_config(None, []).updated({"data.id_type": "auto"}), output=tmp_path / "b")
    assert len(ds.movies) == 5


@pytest.mark.parametrize("head", ["user_id,is_paid,rating", "user_id,valid,rating", "user_id,session_id,rating",
                                  "user_id,review_id,rating", "user_id,id,rating"])
def test_a_column_only_ending_in_id_or_a_rows_id_is_not_guessed(tmp_path, head):
    """A code review: the last guess took any column whose name ends in 'id' ('is_paid', 'valid') and the ids of
    a row or an event ('session_id', 'review_id') as the movie. None is guessed: the missing-columns error."""
    src = tmp_path / "r.csv"
    src.write_text(head + "\n" + "".join(f"{u},{m},{1 + (u + m) % 5}\n" for u in range(6) for m in range(5)))
    r = invoke("ingest", src, "-o", tmp_path / "a")
    refused(r, f"{src}: no column 'movie_id' for the movie (data.columns.movie)")
    assert "guessed" not in r.stderr


def test_no_guess_between_two_and_a_missing_columns_error_names_text_ids_setting(tmp_path):
    """Two columns that could each be the movie: none taken, the error as before; where the columns it offers
    hold text ids, that same first error names data.id_type=auto too (not for numbers or dates)."""
    src = tmp_path / "r.csv"
    src.write_text("user_id,product_id,article_id,rating\nu1,p1,o1,4\nu2,p2,o2,5\n")
    r = invoke("ingest", src, "-o", tmp_path / "a")
    refused(r, f"{src}: no column 'movie_id' for the movie (data.columns.movie); set data.columns.movie to one of: "
               "product_id, article_id; where the ids are text (column 'user_id' holds 'u1'), add --set "
               "data.id_type=auto too")
    assert "guessed" not in r.stderr
    src.write_text("visitor,sku,qty\nv1,s1,1\nv2,s2,2\n")
    r = invoke("ingest", src, "-o", tmp_path / "a")
    refused(r, "set data.columns.rating to one of: qty, or --set data.columns.rating=null if the file has no ratings "
               "(every row then counts as rating 1; for a play or click log, --set data.repeats=sum alone counts each "
               "pair's rows); where the ids are text (column 'visitor' holds 'v1'), add --set data.id_type=auto too")
    src.write_text("who,what,rating,when\n1,10,5,2020-01-01\n")
    r = invoke("ingest", src, "-o", tmp_path / "a")
    assert refused(r, "each NAME one of: who, what, rating, when").endswith("when")
    with pytest.raises(DataError, match=r"where the ids are text \(column 'who' holds 'u'\), add "
                                        r"data.id_type='auto' too$"):
        src.write_text("who,what,rating\nu,m,5\n")
        er.ingest(src, output=tmp_path / "b")


# ------------------------------------------------------------------------------ 5. scores out of 100

def test_scores_out_of_100_with_each_pair_once_are_a_scale_not_counts(tmp_path):
    """A 1-100 file, each pair rated once, was told its values were counts and advised data.repeats=sum. Now its
    note says the scale it is read as and the data.rating_scale that widens it (counts still an option named); a
    file that repeats pairs, or counts above 100, is still told data.repeats=sum."""
    rows = [(u, m, 1 + (u * 37 + m * 11) % 100) for u in range(40) for m in range(30)]
    rows[0] = (0, 0, 100)
    src = tmp_path / "pct.csv"
    src.write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{r}\n" for u, m, r in rows))
    r = invoke("ingest", src, "-o", tmp_path / "a")
    ingested(r)
    assert "counts, such as plays or clicks, rather than ratings" not in r.stderr, r.stderr
    assert f"{src}: rating scale 1-100, the lowest and highest ratings it holds (update-users and --rated refuse a " \
           "rating outside it; a predicted one is clipped to it); if the scale is wider, ingest with --set " \
           "data.rating_scale=[0,100]; if they are counts, such as plays, --set data.repeats=sum weighs each pair by " \
           "its count\n" in r.stderr, r.stderr
    assert load_dataset(tmp_path / "a").rating_scale == (1.0, 100.0)
    src.write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{r}\n" for u, m, r in rows + rows[:5]))
    r = invoke("ingest", src, "-o", tmp_path / "b")
    assert r.exit_code == 0 and "ingest with --set data.repeats=sum" in r.stderr and \
        "counts, such as plays or clicks" in r.stderr, r.stderr
    # play counts within 100, each pair once but heaped at 1 (Pareto, as plays are): the counts warning, not the
    # scale's note (a review: the note alone was said for them)
    rng = np.random.default_rng(7)
    plays = np.minimum(np.floor(rng.pareto(1.2, len(rows)) + 1), 100).astype(int)
    plays[0] = 100
    assert np.median(plays) == 1 and np.bincount(plays).argmax() == 1  # most 1, and still 30+ distinct values
    src.write_text("user_id,movie_id,rating\n" + "".join(f"{u},{m},{p}\n" for (u, m, _), p in zip(rows, plays)))
    r = invoke("ingest", src, "-o", tmp_path / "c")
    assert r.exit_code == 0 and "ingest with --set data.repeats=sum" in r.stderr and \
        "counts, such as plays or clicks" in r.stderr and "rating scale 1-100" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------ 6. ids beyond 64 bits

def test_ids_beyond_64_bits_are_told_the_setting_that_keeps_them(tmp_path):
    """uint64 ids above int64's range were told 'fix or remove those lines', though data.id_type=str (or auto)
    reads them (the Parquet path named it): the CSV's line names it too, and it reads them as text. A timestamp
    beyond 64 bits keeps its own advice."""
    big = 18446744073709550001
    src = tmp_path / "bigu.csv"
    src.write_text("user_id,movie_id,rating\n" + "".join(f"{big + u},{m},{1 + (u + m) % 5}\n"
                                                        for u in range(4) for m in range(3)))
    r = invoke("ingest", src, "-o", tmp_path / "a")
    refused(r, f"{src}:2: column 'user_id' '{big}' is an integer too large for 64 bits (12 lines like it: 2, 3, 4, "
               "5, 6, ...); to keep such ids as text, set data.id_type=str (or auto), or fix those lines")
    for id_type in ("str", "auto"):
        r = invoke("ingest", src, "-o", tmp_path / id_type, "--set", f"data.id_type={id_type}")
        ingested(r)
        assert str(big + 3) in _ids(tmp_path / id_type)
    src.write_text("user_id,movie_id,rating,timestamp\n1,1,4,99999999999999999999\n")
    r = invoke("ingest", src, "-o", tmp_path / "b")
    refused(r, "column 'timestamp' '99999999999999999999' is an integer too large for 64 bits; fix or remove that line")


# ------------------------------------------------------------------------------ a first-hour review's own files

def _bx(tmp_path) -> Path:
    """A Book-Crossing-like ratings file: ';'-separated, every field quoted, CRLF, latin-1, ISBN-like text ids."""
    rows = ['"User-ID";"ISBN";"Book-Rating"'] + [f'"{u}";"0{m:08d}X";"{(u + m) % 11}"' for u in range(1, 9)
                                                 for m in range(1, 7)]
    p = tmp_path / "BX-Book-Ratings.csv"
    p.write_bytes(("\r\n".join(rows) + "\r\n").encode("latin-1"))
    return p


def test_a_separator_given_wrong_is_told_the_one_the_line_holds_quoted_as_written(tmp_path):
    """A first-hour review: --set data.separator=, on a ';' file echoed 'User-ID;"ISBN";...' (its opening quote
    lost) and said to set data.separator without naming ';'."""
    p = _bx(tmp_path)
    r = invoke("ingest", p, "-o", tmp_path / "a", "--set", "data.separator=,", "--set", "data.id_type=auto")
    assert refused(r, "") == (
        f"error: {p}:1: the first line '\"User-ID\";\"ISBN\";\"Book-Rating\"' is one column when split at ',' "
        "(data.separator), and holds ';': its fields are separated by ';'; read it with --set 'data.separator=;', "
        "or leave data.separator out (the separator is then found from the first line)")


@pytest.mark.parametrize("name", ["comma.tsv", "comma.tsv.gz"])
def test_a_tsv_file_of_commas_is_told_the_setting_alone(tmp_path, name):
    """An own-data review: a .tsv file holding commas was told to 'leave data.separator out', which it was (the
    tab is the name's): the message says the tab came from the name, and the setting that reads it, which does."""
    import gzip

    text = "user_id,movie_id,rating\n" + "".join(f"{u},{m},{(u + m) % 5 + 1}\n" for u in range(1, 6) for m in range(1, 5))
    p = tmp_path / name
    p.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    r = invoke("ingest", p, "-o", tmp_path / "a")
    assert refused(r, "") == (
        f"error: {p}:1: the first line 'user_id,movie_id,rating' is one column when split at tabs (a .tsv file's "
        "separator, by its name), and holds ',': its fields are separated by ','; read it with --set "
        "data.separator=,")
    assert invoke("ingest", p, "-o", tmp_path / "a", "--set", "data.separator=,", "--set", "split.test=0").exit_code == 0
    # the tab set by hand on a .tsv: leaving it out reads at tabs still, so that is not advised (a diff review)
    line = refused(invoke("ingest", p, "-o", tmp_path / "b", "--set", "data.separator=tab"), "")
    assert line.endswith("read it with --set data.separator=,"), line
    plain = tmp_path / "plain.csv"  # data.format=tsv is named as what split at tabs, not the name
    plain.write_text(text)
    line = refused(invoke("ingest", plain, "-o", tmp_path / "c", "--set", "data.format=tsv"), "")
    assert "one column when split at tabs (data.format=tsv's separator)" in line, line


@pytest.mark.parametrize("key, meant", [("data.sep", "data.separator"), ("data.delimiter", "data.separator"),
                                        ("data.delim", "data.separator"), ("data.charset", "data.encoding"),
                                        ("data.movie", "data.columns.movie"), ("data.columns.item", "data.columns.movie"),
                                        ("data.user", "data.columns.user")])
def test_the_names_other_tools_give_a_key_are_answered_with_it(key, meant):
    """A first-hour review: --set data.sep=, listed every data key (the fuzzy match misses 'sep'), and data.movie is
    nearer data.movies (the movies file) than the column it means."""
    with pytest.raises(Exception) as e:
        load_config(None, [f"{key}=x"])
    assert str(e.value) == f"unknown config key '{key}' (from an override); did you mean '{meant}'?", str(e.value)


def test_a_books_file_is_told_its_title_column_and_read_with_its_year(tmp_path):
    """A first-hour review: a movies file without a 'title' column was told 'missing column(s) title, genres',
    genres being optional, and no word of its 'Book-Title' column; given it, Year-Of-Publication was left unread
    (its titles hold no year). Only the title is named missing, the column like titles offered; the year column
    is read, a 0 (Book-Crossing's unknown) as none."""
    p = _bx(tmp_path)
    books = tmp_path / "BX-Books.csv"
    rows = ['"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher"'] + [
        f'"0{m:08d}X";"Caf\xe9 Book {m}";"Author {m}";"{1990 + m if m != 3 else 0}";"Pub; Inc."' for m in range(1, 7)]
    books.write_bytes(("\r\n".join(rows) + "\r\n").encode("latin-1"))
    sets = ["--set", "data.id_type=auto", "--set", "data.columns.rating=Book-Rating", "--set", f"data.movies={books}",
            "--set", "data.encoding=latin-1"]
    r = invoke("ingest", p, "-o", tmp_path / "a", *sets)
    assert refused(r, "") == (
        f"error: {books}: missing column title (found: ISBN, Book-Title, Book-Author, Year-Of-Publication, Publisher); "
        "set data.columns.title to the titles' column ('Book-Title' looks like one: --set "
        "data.columns.title=Book-Title); no genres column 'genres' either, which is optional (its movies then have "
        "none; data.columns.genres names one)")
    r = invoke("ingest", p, "-o", tmp_path / "a", *sets, "--set", "data.columns.title=Book-Title")
    ingested(r)
    assert f"{books}: reading column 'Year-Of-Publication' as the movies' years" in r.stderr, r.stderr
    movies = pd.read_parquet(tmp_path / "a" / "movies.parquet").set_index("movie_id")
    assert movies.loc["000000001X", "title"] == "Caf\xe9 Book 1" and movies.loc["000000001X", "year"] == 1991
    assert pd.isna(movies.loc["000000003X", "year"])


def test_the_guess_of_an_id_column_names_every_column_left(tmp_path):
    """A first-hour review: 'guessed column artist as the movie, the one column left that can be it' said nothing
    of the other columns left unread, one of which may have been meant."""
    src = tmp_path / "plays.csv"
    src.write_text("user_id,artist,plays,country\n" + "".join(f"u{u},a{m},{u + m},x\n" for u in range(6)
                                                              for m in range(5)))
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", "data.id_type=auto", "--set", "data.columns.rating=null")
    ingested(r)
    assert f"{src}: guessed column 'artist' as the movie, the one column left that can be it (the columns left " \
           "unread: 'plays', 'country'; --set data.columns.movie=NAME names another)\n" in r.stderr, r.stderr


def test_the_summary_of_many_counts_gives_their_spread(tmp_path):
    """A first-hour review: a play log's summary said 'counts: 2,410 distinct' alone; it gives the lowest, median
    and highest count."""
    src = tmp_path / "plays.csv"
    plays = [1] * 30 + [2] * 10 + list(range(3, 23)) + [5000]
    src.write_text("user_id,movie_id,plays\n" + "".join(f"u{i},m{i % 7},{n}\n" for i, n in enumerate(plays)))
    r = invoke("ingest", src, "-o", tmp_path / "a", "--set", "data.id_type=auto", "--set", "data.columns.rating=plays",
               "--set", "data.repeats=sum", "--set", "split.test=0", "--set", "split.valid=0")
    ingested(r)
    assert "\ncounts: 23 distinct, from 1 to 5,000 (median 2)\n" in r.stderr, r.stderr


def test_a_dataframes_one_datetime_column_is_its_timestamp(tmp_path, caplog):
    """A first-hour review: a notebook's ratings with a datetime64 'when' column were read without times, the
    column unread; the one column of dates and times is the timestamp, said in a note. Two: neither."""
    import logging

    when = pd.to_datetime(["2020-01-01 10:00", "2020-02-01 00:00", "2020-03-01 00:00", "2020-04-01 00:00"] * 3)
    df = pd.DataFrame({"customer": ["u1", "u2", "u3"] * 4, "film": [f"m{i % 5}" for i in range(12)],
                       "stars": [3, 4, 5] * 4, "when": when})
    cfg = load_config(None, {"data.id_type": "auto", "split.test": 0, "split.valid": 0})
    with caplog.at_level(logging.INFO, logger="embedrec"):
        ds = er.ingest(df, cfg, output=tmp_path / "a")
    assert "the DataFrame: reading column 'when' as 'timestamp', its one column of dates and times" in caplog.text
    assert ds.manifest["has_timestamps"]
    got = ds.split_frame("train").sort_values(["user_id", "movie_id"])
    want = df.assign(ts=(df["when"] - pd.Timestamp("1970-01-01")).dt.total_seconds().astype(int))
    want = want.sort_values(["customer", "film"])
    assert got["timestamp"].tolist() == want["ts"].tolist()
    ds = er.ingest(df.assign(signed_up=when), cfg, output=tmp_path / "b")
    assert not ds.manifest["has_timestamps"]


def test_ingest_help_names_the_keys_ones_own_file_needs_and_its_example_runs(tmp_path):
    """A first-hour review: `embedrec ingest -h` named no key a file of one's own needs. It names them, with an
    example of a Book-Crossing-like file that ingests as written."""
    import shlex

    text = invoke("ingest", "-h").stdout
    for key in ("data.id_type", "data.columns.user", "data.separator", "data.encoding", "data.repeats",
                "data.min_rating", "split.test"):
        assert f"\n    {key}=" in text, (key, text)
    example = " ".join(text.split("e.g. ")[1].split("\n\n")[0].split())
    args = shlex.split(example)
    assert args[:2] == ["embedrec", "ingest"]
    args[2] = str(_bx(tmp_path))
    args[args.index("-o") + 1] = str(tmp_path / "books")
    r = invoke(*args[1:])
    ingested(r)
    assert load_dataset(tmp_path / "books").manifest["counts"]["ratings"] == 48


def test_an_id_holding_a_tab_is_warned_of_and_one_case_twin_is_one_user(tmp_path):
    """An own-data review: an id 'u<TAB>3' was read as written and piped out by TSV as 'u 3' without a word (now
    a warning, kept by -q, naming the formats that keep it); 'u2' and 'U2' were said as '1 users if case is
    ignored'."""
    p = tmp_path / "tab.csv"
    p.write_text('user_id,movie_id,rating\n"u\t3",m1,3\nu1,m2,4\nu1,m1,5\n"u\t3",m2,2\nu2,m1,1\nU2,m2,3\n')
    sets = ("--set", "data.id_type=auto", "--set", "split.test=0", "--set", "split.valid=0")
    r = invoke("ingest", "-q", p, "-o", tmp_path / "a", *sets)
    assert r.exit_code == 0 and r.stderr == (
        f"{p}: 1 user id holds a tab or a line break (e.g. 'u\\t3'), kept as written: TSV output (recommend's and "
        "export's when piped) writes each such character as a space, so such an id is written otherwise there; "
        "--format csv, json or jsonl write it as it is\n"), r.stderr
    r = invoke("ingest", p, "-o", tmp_path / "b", *sets)
    assert "(e.g. 'u2' and 'U2'; 1 user if case is ignored), kept as 2 users" in r.stderr, r.stderr


def test_a_headerless_file_of_text_ids_and_excel_s_sep_line_are_named(tmp_path):
    """An own-data review: a headerless 'u8,m20,1,1600000000' was offered its values as column names, and Excel's
    'sep=,' first line 'sep=, Unnamed: 1'. The first is said to be data (the settings that read it, which do), the
    second Excel's line to remove."""
    p = tmp_path / "nh.csv"
    p.write_text("".join(f"u{u},m{m},{(u + m) % 5 + 1},{1600000000 + u * 10 + m}\n" for u in range(1, 5)
                         for m in range(1, 4)))
    r = invoke("ingest", p, "-o", tmp_path / "a")
    assert refused(r, "") == (
        f"error: {p}:1: the first line (u1,m1,3,1600000011) is data, not a header naming the columns; add a header "
        "line (user_id, movie_id, rating, timestamp), or read the file without one: --set data.header=false "
        "(columns in that order), with --set data.id_type=auto for its text ids")
    assert invoke("ingest", p, "-o", tmp_path / "a", "--set", "data.header=false", "--set", "data.id_type=auto",
                  "--set", "split.test=0").exit_code == 0
    line = refused(invoke("ingest", p, "-o", tmp_path / "z", "--set", "data.id_type=auto"), "")  # (given: not
    assert line.endswith("--set data.header=false (columns in that order)"), line  # advised again; a review)
    three = tmp_path / "three.csv"  # three columns, one a number (a review: 'no columns for the user ...')
    three.write_text("u8,m20,5\nu9,m21,3\n")
    assert "the first line (u8,m20,5) is data, not a header" in refused(invoke("ingest", three, "-o", tmp_path / "t"),
                                                                          "")
    x = tmp_path / "x.csv"
    x.write_text("sep=,\nuser_id,movie_id,rating\n1,2,3\n2,3,4\n")
    assert refused(invoke("ingest", x, "-o", tmp_path / "b"), "") == (
        f"error: {x}:1: the first line ('sep=,') is Excel's separator line, not the header: remove it (tail -n +2 "
        "FILE > NEW), then ingest NEW")
