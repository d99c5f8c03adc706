"""Ids refused on any row where a number would change them (data.id_type=int, the default) or kept as written
(data.id_type=auto), and rows with a missing value dropped on request (data.missing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.data.dataset import load_dataset
from embedrec.data.idtext import ids_may_change

AUTO = ("--set", "data.id_type=auto")


def ingest(tmp_path, source, *args):
    out = tmp_path / "ds"
    r = CliRunner().invoke(main, ["ingest", str(source), "-o", str(out), "--set", "split.valid=0",
                                  "--set", "split.test=0", *args])
    return r, out


def test_ids_a_number_would_change_keep_their_text_past_the_first_rows(tmp_path):
    """'0196' was read as 196 (refused only within the first 100,000 rows, merged with 196 after them); '1e3',
    '+5', '007' likewise. Now such a column is text as written, and the movies file's ids join it."""
    rows = "".join(f"{u},{m},4\n" for u in range(1, 1001) for m in (242, 302)) * 60  # 120,000 rows
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating\n" + rows + "0196,242,3\n196,007,4\n+5,1e3,5\n")
    movies = tmp_path / "m.csv"
    movies.write_text("movie_id,title\n242,Kolya (1996)\n007,Bond (1962)\n1e3,Thousand (2000)\n302,LA (1997)\n")
    r, out = ingest(tmp_path, p, "--set", f"data.movies={movies}", *AUTO)
    assert r.exit_code == 0, r.stderr
    ds = load_dataset(out)
    users = list(ds.users["user_id"])
    assert "0196" in users and "196" in users and "+5" in users and len(users) == 1002
    m = ds.movies.set_index("movie_id")
    assert m.loc["007", "title"] == "Bond" and m.loc["1e3", "title"] == "Thousand" and m.loc["242", "title"] == "Kolya"


def test_plain_integer_ids_stay_integers_and_each_column_is_decided_alone(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating\n1,10,4\n2,10,3\n2,11,5\n")
    r, out = ingest(tmp_path, p, *AUTO)
    assert r.exit_code == 0, r.stderr
    ds = load_dataset(out)
    assert ds.users["user_id"].dtype == "int64" and ds.movies["movie_id"].dtype == "int64"
    p.write_text("user_id,movie_id,rating\nu1,10,4\nu2,10,3\nu2,11,5\n")
    r, out = ingest(tmp_path / "b", p, *AUTO)
    ds = load_dataset(out)
    assert list(ds.users["user_id"]) == ["u1", "u2"] and ds.movies["movie_id"].dtype == "int64"


def test_a_parquet_text_id_column_is_integers_only_where_every_id_round_trips(tmp_path):
    p = tmp_path / "r.parquet"
    pd.DataFrame({"user_id": ["0196", "196", "7"], "movie_id": ["1", "2", "2"], "rating": [3.0, 4.0, 5.0]}) \
        .to_parquet(p)
    r, out = ingest(tmp_path, p, *AUTO)
    assert r.exit_code == 0, r.stderr
    ds = load_dataset(out)
    assert sorted(ds.users["user_id"]) == ["0196", "196", "7"] and ds.movies["movie_id"].dtype == "int64"


def test_data_id_type_int_refuses_a_leading_zero_past_the_first_rows(tmp_path):
    rows = "".join(f"{u},{m},4\n" for u in range(1, 1001) for m in (242, 302)) * 60
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating\n" + rows + "0196,242,3\n")
    r, out = ingest(tmp_path, p)  # the default, data.id_type=int
    assert r.exit_code == 1 and not out.exists()
    assert r.stderr.startswith("error: ") and "r.csv:120002: column 'user_id' id '0196' has a leading zero" in r.stderr


def test_a_missing_value_is_refused_naming_the_option(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n1,10,4,100\n2,10,,200\n2,11,5,300\n")
    r, out = ingest(tmp_path, p)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "r.csv:3: no value in column 'rating'" in r.stderr and "--set data.missing=drop" in r.stderr
    p.write_text("user_id,movie_id,rating,timestamp\n1,10,4,100\n2,10,3,\n2,11,5,300\n")
    r, out = ingest(tmp_path, p)
    assert r.exit_code == 1 and "r.csv:3: column 'timestamp' is empty" in r.stderr, r.stderr
    assert "--set data.missing=drop" in r.stderr


def test_data_missing_drop_drops_and_counts_the_rows(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n1,10,4,100\n2,10,,200\n,11,5,300\n2,,5,300\n3,11,4,\n"
                 "2,11,5,400\n3,12\n3,10,9,500\n")
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop", "--format", "json", "--set", "data.rating_scale=[1,5]")
    # the lines are those of the file, rows dropped before them counted: the 9 is on line 9
    assert r.exit_code == 1 and "r.csv:9: rating 9 is outside the scale" in r.stderr, r.stderr
    p.write_text(p.read_text().replace("3,10,9,500", "3,10,2,500"))
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop", "--format", "json")
    assert r.exit_code == 0, r.stderr
    # (3,11,4,: its time alone empty, kept under the random split: test_a_row_without_a_time_alone_...)
    assert f"{p}: dropped 4 rows with a missing value" in r.stderr
    assert "read 8 rows (csv layout; 4 dropped)" in r.stderr  # as the manifest counts them (a review: 3 and 8)
    ds = load_dataset(out)
    assert ds.manifest["cleaning"]["missing_values_dropped"] == 4 and ds.manifest["cleaning"]["rows_read"] == 8
    assert ds.manifest["cleaning"]["missing_times_kept"] == 1
    train = ds.splits["train"]
    assert len(train) == 4 and train.timestamp.dtype == "int64"


def test_data_missing_drop_in_a_parquet_file(tmp_path):
    p = tmp_path / "r.parquet"
    pd.DataFrame({"user_id": [1, 2, None, 3], "movie_id": [10, 10, 11, 11], "rating": [4.0, None, 3.0, 5.0],
                  "timestamp": pd.array([1, 2, 3, None], dtype="Int64")}).to_parquet(p)
    r, out = ingest(tmp_path, p)
    assert r.exit_code == 1 and "--set data.missing=drop" in r.stderr, r.stderr
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop")
    assert r.exit_code == 0 and "dropped 2 rows with a missing value" in r.stderr, r.stderr
    assert f"{p}: 1 row with a user, a movie and a rating but no time (the first at {p}: row 4): kept" in r.stderr
    ds = load_dataset(out)  # (user 3's row, its time alone null: kept, at the only time there is, user 1's)
    assert ds.users["user_id"].tolist() == [1, 3]
    got = pd.concat([ds.split_frame(s) for s in ("train", "valid", "test")])
    assert got.set_index("user_id")["timestamp"].to_dict() == {1: 1, 3: 1}


@pytest.mark.parametrize("text, sep, want", [
    ("user_id,movie_id\n1,2\n 0196,3\n", ",", True), ("user_id\tmovie_id\n1\t+2\n", "\t", True),
    ('user_id,movie_id\n1,"-05"\n', ",", True), ("0196,3\n", ",", True), ("1,2\n3,07", ",", True),
    ("1|2\n3|+7\n", "|", True), ("1,\t07\n", ",", True), ("1,2\n3, +7", ",", True),
    # inside a field (a date, a zone, a decimal) or a lone zero: not an id a number would change
    ("user_id,movie_id,date\n1,5,2020-01-05 09:00:00+01:00\n", ",", False), ("1,2\n3,0\n", ",", False),
    ("1,2\n3,0", ",", False), ("1,2.05\n", ",", False), ("1, 2\n", ",", False)])
def test_the_byte_scan_finds_every_field_a_number_would_change(text, sep, want):
    """A first version counted every '-0' and '+' in the file, so a table with ISO dates re-read every id as text."""
    assert ids_may_change(text.encode(), sep, "utf-8") is want


def test_the_byte_scan_finds_a_field_cut_by_its_chunk(tmp_path, monkeypatch):
    import embedrec.data.idtext as idtext

    monkeypatch.setattr(idtext, "_SCAN_CHUNK", 16)
    p = tmp_path / "r.csv"
    p.write_bytes(b"1,2,3\n" * 10 + b"1,2,30\n1,0196,3\n" + b"1,2,3\n" * 10)
    assert idtext.ids_may_change(str(p), ",", "utf-8")
    p.write_bytes(b"1,2,3\n" * 30)
    assert not idtext.ids_may_change(str(p), ",", "utf-8")


def test_data_missing_drop_names_the_right_row_and_value_after_a_dropped_one(tmp_path):
    """A review: with rows dropped before it, a bad date quoted another row's value (or was an IndexError), and a
    bad rating after an empty field was reported as the empty field, with advice to set data.missing=drop."""
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n1,10,4,2020-01-01\n2,,3,2020-01-02\n3,30,5,notadate\n"
                 "4,40,4,2020-01-04\n")
    r, _ = ingest(tmp_path, p, "--set", "data.missing=drop")
    assert r.exit_code == 1 and "r.csv:4: column 'timestamp' 'notadate' is not a date" in r.stderr, r.stderr
    p.write_text("user_id,movie_id,rating,timestamp\n1,10,4,2020-01-01\n2,,3,2020-01-01\n\n3,30,5,notadate\n")
    r, _ = ingest(tmp_path / "b", p, "--set", "data.missing=drop")
    assert r.exit_code == 1 and "r.csv:5: column 'timestamp' 'notadate' is not a date" in r.stderr, r.stderr
    p.write_text("user_id,movie_id,rating\n1,10,4\n2,,3\n3,30,5\n4,40,x\n")
    r, _ = ingest(tmp_path / "c", p, "--set", "data.missing=drop")
    assert r.exit_code == 1 and r.stderr.endswith("r.csv:5: column 'rating' 'x' is not a number; fix or remove that "
                                                  "line, or skip such lines with --set data.bad_lines=skip\n"), r.stderr


def _seen_pairs(ds) -> set:
    """The dataset's rated_below pairs by their ids."""
    u, m = ds.rated_below
    return set(zip(ds.users["user_id"].to_numpy()[u].tolist(), ds.movies["movie_id"].to_numpy()[m].tolist()))


def test_data_missing_drop_keeps_the_pair_of_a_row_without_a_rating_as_seen(tmp_path):
    """A first-hour review: `u1,tt0000423,,881250949` (no rating) and `u1,tt0000318,,` (no rating, no time), dropped
    whole by data.missing=drop, came back at ranks 1 and 2 of u1's list, though each row says u1 met the movie.
    Their pairs are kept as seen (rated_below, as data.min_rating's): never recommended, not trained on, said in
    the warning and the summary, counted in the manifest; a pair a kept rating holds, or a row naming no movie,
    adds nothing; a user with no rating left is a user left out, its movie kept by its id."""
    rows = "".join(f"u{u},tt{m:07d},{(u * m) % 5 + 1},{881250000 + u * 10 + m}\n" for u in range(1, 9)
                   for m in range(1, 9) if (u, m) not in ((1, 3), (1, 7)))
    p = tmp_path / "miss.csv"
    p.write_text("user,item,rating,timestamp\n" + rows + "u1,tt0000003,,881250949\nu1,tt0000007,,\n"
                 "u2,tt0000001,,\nu2,,,5\nu9,tt0000005,,\n")
    r, out = ingest(tmp_path, p, *AUTO, "--set", "data.missing=drop")
    assert r.exit_code == 0, r.stderr
    assert (f"{p}: dropped 5 rows with a missing value (an empty user, movie, rating or timestamp: data.missing=drop)"
            "; the (user, movie) pairs of the 4 naming both kept as seen (never recommended back), not trained on"
            ) in r.stderr.splitlines(), r.stderr
    assert ("5 rows with a missing value dropped (2 (user, movie) pairs kept as seen, never recommended back, not "
            "trained on; the other 3 lack a user or a movie, repeat a pair already there, or are of users left out "
            "or of movies not in the dataset)") in r.stderr, r.stderr
    ds = load_dataset(out)
    assert _seen_pairs(ds) == {("u1", "tt0000003"), ("u1", "tt0000007")}
    cleaning = ds.manifest["cleaning"]
    assert cleaning["missing_values_kept_as_seen"] == 2 and cleaning["users_left_out"] == 1
    assert ds.rated_below_unknown["user_id"].tolist() == ["u9"]
    # served: u1 is never offered them (a model that ranks every movie it has not seen)
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "-q", "--set", f"data.prepared={out}", "--run", str(run),
                                  "--set", "train.epochs=2", "--set", "model.dim=4"])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(main, ["recommend", "--run", str(run), "--user", "u1", "-k", "8", "--format", "json"])
    assert r.exit_code == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)
    r = CliRunner().invoke(main, ["history", "--run", str(run), "--user", "u1", "--split", "rated_below"])
    assert r.exit_code == 0 and sorted(line.split("\t")[1] for line in r.stdout.splitlines()[1:]) == \
        ["tt0000003", "tt0000007"], r.stdout


def test_data_missing_drop_puts_a_seen_pair_in_train_under_a_time_split(tmp_path):
    """A pair kept as seen from a row without a rating has no time read (it may be the value missing): a time
    split puts it in train, before every cut, so that evaluation leaves the movie out of every held-out list."""
    rows = "".join(f"{u},{m},{(u * m) % 5 + 1},{1000 + u * 10 + m}\n" for u in range(1, 7) for m in range(1, 7)
                   if (u, m) != (2, 4))
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n" + rows + "2,4,,9999\n")
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop", "--set", "split.method=user_time",
                    "--set", "split.test=0.2")
    assert r.exit_code == 0, r.stderr
    ds = load_dataset(out)
    assert _seen_pairs(ds) == {(2, 4)} and ds.rated_below_split.tolist() == [0]


def test_data_missing_drop_types_the_ids_by_the_kept_rows_alone(tmp_path):
    """data.id_type=auto types a column's ids by the rows kept: a dropped row's 'N/A-user' (a review) turned every
    user id to text, ordered '1', '10', '100'. A dropped row's id the kept rows' type cannot hold (a word, '0196'
    beside integers, '7.0', one beyond 64 bits) names no one of the dataset: the row is dropped and counted, its
    pair not kept as seen; the others' pairs are."""
    rows = "".join(f"{u},{m},{(u * m) % 5 + 1},{1000 + u * 10 + m}\n" for u in range(1, 12) for m in range(1, 7)
                   if (u, m) != (2, 4))
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n" + rows + "N/A-user,5,,881250949\n0196,3,,\n2,7.0,,\n"
                 "3,99999999999999999999,,\n2,4,,9999\n")
    r, out = ingest(tmp_path, p, *AUTO, "--set", "data.missing=drop")
    assert r.exit_code == 0, r.stderr
    ds = load_dataset(out)
    for col in (ds.users["user_id"], ds.movies["movie_id"]):
        assert col.dtype == "int64", col.dtype
    assert ds.users["user_id"].tolist() == list(range(1, 12))
    assert _seen_pairs(ds) == {(2, 4)}
    cleaning = ds.manifest["cleaning"]
    assert (cleaning["missing_values_dropped"], cleaning["missing_values_kept_as_seen"]) == (5, 1), cleaning


def _untimed_file(p, iso: bool = False):
    """Six users' ratings of six movies at distinct times, then (lines 36-39) rows with an empty time: user 2's
    movie 4 (a pair with no other row), user 3's movie 1 (its timed row repeats the pair), user 5's movie
    2 (its rating alone), and user 7, a user with no timed row. ``iso``: the times as ISO dates, the first data row's
    time empty too (line 2: user 1's movie 1, whose timed row is gone)."""
    def when(t: int) -> str:
        return str(pd.Timestamp(t, unit="s").isoformat()) if iso else str(t)

    rows = [f"{u},{m},{(u * m) % 5 + 1},{when(1_000_000 + u * 100 + m)}" for u in range(1, 7) for m in range(1, 7)
            if (u, m) not in ((2, 4), (5, 2))]
    if iso:
        rows[0] = "1,1,2,"
    rows += ["2,4,5,", "3,1,1,", "5,2,4,", "7,3,5,"]
    p.write_text("user_id,movie_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    return p


@pytest.mark.parametrize("iso", [False, True])
def test_a_row_without_a_time_alone_is_trained_on_under_a_random_split(tmp_path, iso):
    """A known gap (session 42 on): under data.missing=drop a row whose time alone was empty was dropped, its rating
    never trained on, even under a random split, which reads no time. It is kept now, as pandas' dropna(subset=[user,
    item, rating]) and LensKit's random splits keep it: said with its count and first line, counted in the manifest
    and the summary, at its user's middle time (the median of the user's timed rows, of every timed row for a user
    with none, rounded down), which recency and history read; a pair's timed row is its latest over an untimed one.
    A file of ISO dates whose first row has no time is read as dates (its first value given says so)."""
    p = _untimed_file(tmp_path / "r.csv", iso)
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop")
    assert r.exit_code == 0, r.stderr
    n, first = (5, 2) if iso else (4, 36)
    assert (f"{p}: {n} rows with a user, a movie and a rating but no time (the first at {p}:{first}): kept, their "
            "ratings trained on (split.method=random holds no rating out by its time), at each one's user's middle "
            "time") in r.stderr, r.stderr
    assert f"{n} rows without a time kept and trained on (at their users' middle times)" in r.stderr
    ds = load_dataset(out)
    assert ds.manifest["cleaning"]["missing_times_kept"] == n and ds.manifest["cleaning"]["missing_values_dropped"] == 0
    got = ds.split_frame("train").set_index(["user_id", "movie_id"])
    times = {u: [1_000_000 + u * 100 + m for m in range(1, 7) if (u, m) not in ((2, 4), (5, 2), (1, 1) if iso else
                                                                               (0, 0))] for u in range(1, 7)}
    middle = {u: int(np.floor(np.median(t))) for u, t in times.items()}
    assert got.loc[(2, 4), "rating"] == 5 and got.loc[(2, 4), "timestamp"] == middle[2]
    assert got.loc[(5, 2), "rating"] == 4 and got.loc[(5, 2), "timestamp"] == middle[5]
    assert got.loc[(3, 1), "rating"] == 4 and got.loc[(3, 1), "timestamp"] == 1_000_301  # the timed row is the pair's
    everyone = [t for u in range(1, 7) for t in times[u]]
    assert got.loc[(7, 3), "timestamp"] == int(np.floor(np.median(everyone)))  # no timed row of its own
    if iso:
        assert got.loc[(1, 1), "timestamp"] == middle[1]
    assert len(ds.split_frame("train")) == 37  # (34 timed rows, 33 with ISO dates; (3, 1)'s untimed row a repeat)


def test_a_date_column_whose_first_hundreds_of_times_are_empty_is_read_as_dates(tmp_path):
    """A code review: the kind of a time column was judged from its first 100 rows, so ISO dates after 150 rows
    without a time were taken for Unix seconds and refused as such under data.missing=drop."""
    p = tmp_path / "late.csv"
    rows = [f"{u},{m},{(u * m) % 5 + 1}," for u in range(1, 31) for m in range(1, 6)]  # 150 rows without a time
    rows += [f"{u},{m},{(u * m) % 5 + 1},2001-0{m}-{u:02d}T10:00:00Z" for u in range(1, 9) for m in range(6, 9)]
    p.write_text("user_id,movie_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop")
    assert r.exit_code == 0, r.stderr
    assert "150 rows with a user, a movie and a rating but no time" in r.stderr, r.stderr
    times = pd.concat(load_dataset(out).split_frame(s) for s in ("train", "valid", "test"))["timestamp"]
    assert times.min() >= pd.Timestamp("2001-06-01", tz="UTC").timestamp()  # dates as seconds, each row's or a middle


def test_a_row_without_a_time_alone_is_dropped_and_said_under_a_time_split(tmp_path):
    """A time split cannot place a rating without a time: the row is dropped with those missing a value (its pair
    kept as seen, in train), said in its own line with the count and the first line, and counted apart in the
    summary and manifest; a file where no row has a time is refused under it, and read without times under a random
    split."""
    p = _untimed_file(tmp_path / "r.csv")
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop", "--set", "split.method=user_time",
                    "--set", "split.test=0.2")
    assert r.exit_code == 0, r.stderr
    assert (f"{p}: 4 rows with a user, a movie and a rating but no time (the first at {p}:36): dropped with the rows "
            "missing a value, as split.method=user_time holds ratings out by their time; fill their times in, or "
            "split at random (--set split.method=random) to train on them") in r.stderr, r.stderr
    assert f"{p}: dropped 4 rows with a missing value" in r.stderr
    assert "4 of them without a time alone (the split holds ratings out by their time)" in r.stderr
    ds = load_dataset(out)
    cleaning = ds.manifest["cleaning"]
    assert (cleaning["missing_values_dropped"], cleaning["missing_times_dropped"]) == (4, 4), cleaning
    assert {(2, 4), (5, 2)} <= _seen_pairs(ds) and (3, 1) not in _seen_pairs(ds)  # (3, 1): its timed row is there
    assert set(ds.rated_below_split.tolist()) == {0}
    q = tmp_path / "none.csv"
    q.write_text("user_id,movie_id,rating,timestamp\n1,1,4,\n1,2,5,\n2,1,3,\n2,2,4,\n")
    r, _ = ingest(tmp_path / "a", q, "--set", "data.missing=drop", "--set", "split.method=user_time",
                  "--set", "split.test=0.5")
    assert r.exit_code == 1 and (
        f"error: {q}: no row has a time (each has a user, a movie and a rating; the first at {q}:2), and "
        "split.method=user_time holds ratings out by their time; fill the times in, or split at random (--set "
        "split.method=random)\n") == r.stderr, r.stderr
    r, out = ingest(tmp_path / "b", q, "--set", "data.missing=drop")
    assert r.exit_code == 0 and f"{q}: no row has a time (the first at {q}:2): read without times" in r.stderr
    assert load_dataset(out).splits["train"].timestamp is None


@pytest.mark.parametrize("dropped, kept", [("2020-01-01", "{t}"), ("1600000000", "2020-01-{d:02d}"),
                                           ("notatime", "{t}")], ids=["date among seconds", "seconds among dates",
                                                                      "a word among seconds"])
def test_data_missing_drop_judges_the_time_column_by_the_rows_kept(tmp_path, dropped, kept):
    """A red team: line 2's empty rating dated 2020-01-01 decided the column was dates, and the 600 Unix seconds
    after it were refused ('1600001550' is not a date like the column's first) where data.missing=drop drops that
    very row; a dropped row's time, first or later, says nothing of the kind now, nor fills a kept row's empty
    time."""
    rows = [f"{u},{m},{(u + m) % 5 + 1}," + kept.format(t=1_600_000_000 + 60 * (u * 10 + m), d=u + m)
            for u in range(1, 6) for m in range(1, 5)]
    rows.insert(3, f"9,9,,{dropped}")  # (its rating empty: dropped)
    rows.insert(0, f"8,8,,{dropped}")
    rows.append("5,9,4,")  # a time alone empty: kept, given the kept rows' kind
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    r, out = ingest(tmp_path, p, "--set", "data.missing=drop")
    assert r.exit_code == 0, r.stderr
    assert "dropped 2 rows with a missing value" in r.stderr, r.stderr
    got = pd.concat(load_dataset(out).split_frame(s) for s in ("train", "valid", "test"))
    times = got.set_index(["user_id", "movie_id"])["timestamp"]
    want = 1_600_000_000 + 60 * 12 if "{t}" in kept else pd.Timestamp("2020-01-03", tz="UTC").timestamp()
    assert times.loc[(1, 2)] == want


def test_data_missing_drop_refuses_a_kept_time_of_the_other_kind_by_its_line(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n1,1,,2020-01-01\n1,2,4,1600000000\n2,1,3,2020-01-02\n"
                 "2,2,5,1600000100\n")
    r, _ = ingest(tmp_path, p, "--set", "data.missing=drop")
    assert r.exit_code == 1 and r.stderr == (
        f"error: {p}:4: column 'timestamp' '2020-01-02' is an ISO 8601 date where the column's first rows are Unix "
        "seconds; give every row one kind (pandas' to_datetime), or fix that line\n"), r.stderr
