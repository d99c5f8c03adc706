"""Own data's ids, duplicate events and dates (a first-hour review): user ids that differ only by case and ids
with spaces around them said at ingest, data.id_case=fold, serving's 'did you mean' and ids shown whole;
a log's exact duplicate rows counted under data.repeats=sum, data.duplicates=drop; data.timestamp_format and the
message that names it with the format that reads the dates."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.data.dataset import load_dataset
from embedrec.data.ids import IdMap


def _ingest(tmp_path, path, out, *sets, ok=True):
    r = CliRunner().invoke(main, ["ingest", str(path), "-o", str(tmp_path / out), *sets])
    assert (r.exit_code == 0) == ok, r.stderr
    return r


def _stored(tmp_path, out) -> pd.DataFrame:
    ds = load_dataset(tmp_path / out)
    return pd.concat([ds.split_frame(s) for s in ds.splits])


def _written(frame: pd.DataFrame, path):
    """``frame`` written as ``path``'s suffix says (CSV or Parquet)."""
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
    return path


def _emails(tmp_path, fmt: str):
    """6 users written as emails, 'User1@Example.com' beside 'user1@example.com' for three, one with a leading
    space; each rates every movie once, at its own time."""
    rows = []
    for u in range(6):
        for m in range(5):
            uid = f"user{u}@example.com"
            if u < 3 and m % 2:
                uid = uid.capitalize().replace("example", "Example")
            if u == 5 and m == 0:
                uid = " " + uid
            rows.append((uid, f"m{m}", 1_600_000_000 + 100 * u + m))
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "timestamp"])
    return _written(frame, tmp_path / f"emails.{fmt}")


def test_ids_that_spaces_alone_told_apart_are_said_in_a_warning(tmp_path):
    """A notebook review: user ids ' a' and 'a' (four users, 'a', ' a', 'b', 'c') were read as three, 30 of 120 rows
    then dropped as repeats, with only an info note that spaces went. Where an id read without its spaces matches
    one written without them in other rows, a warning (which -q keeps) counts them and names one."""
    from embedrec.data.ids import spaced_ids

    raw = pd.Series(["a", " a", "b", "c ", "c", " d"])
    assert spaced_ids(raw, raw.str.strip()) == (3, " a", 2, " a")
    assert spaced_ids(pd.Series(["a", " d"]), pd.Series(["a", "d"])) == (1, " d", 0, "")
    raw = pd.Series([" a", "a ", "b"])  # two spaced forms of one id (a diff review: merged with a note alone)
    assert spaced_ids(raw, raw.str.strip()) == (2, " a", 1, " a")
    p = tmp_path / "r.csv"
    p.write_text("user_id,movie_id,rating\n" + "".join(f'"{u}",{m},4\n' for u in ("a", " a", "b") for m in range(5)))
    r = CliRunner().invoke(main, ["ingest", str(p), "-o", str(tmp_path / "ds"), "-q", "--set", "data.id_type=auto"])
    assert r.exit_code == 0 and r.stderr.startswith(
        f"{p}: 5 rows with a user id written with spaces around it, read without them; 1 such id (e.g. ' a') then "
        "matches another row's id written otherwise (with other spaces or none), read as the same user; if they are "
        "other users, write their ids apart\n"), r.stderr


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_ids_differing_by_case_and_spaced_ids_are_said_and_data_id_case_fold_merges_users(tmp_path, fmt):
    path = _emails(tmp_path, fmt)
    r = _ingest(tmp_path, path, "keep", "--set", "data.id_type=auto")
    assert ("3 user ids differ from another only by case" not in r.stderr and
            "6 user ids differ from another only by case (e.g. 'user0@example.com' and 'User0@Example.com'; 3 users "
            "if case is ignored), kept as 6 users; if they are the same users (emails, names), --set "
            "data.id_case=fold reads user ids lower-cased" in r.stderr), r.stderr
    assert "1 row with a user id written with spaces around it, read without them; 1 such id (e.g. " \
        "' user5@example.com') then matches another row's id written otherwise (with other spaces or none)" in r.stderr, r.stderr
    assert _stored(tmp_path, "keep")["user_id"].nunique() == 9
    r = _ingest(tmp_path, path, "fold", "--set", "data.id_type=auto", "--set", "data.id_case=fold")
    assert "3 user ids lower-cased (data.id_case=fold, which merged 3 of them with another): 6 users" in r.stderr, \
        r.stderr
    assert "differ from another only by case" not in r.stderr
    users = _stored(tmp_path, "fold")["user_id"]
    assert sorted(users.unique()) == [f"user{u}@example.com" for u in range(6)]


def test_movie_ids_differing_by_case_are_said_and_never_folded(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"user_id": ["a", "b", "c", "d"], "movie_id": ["dQw4w9WgXcQ", "dqw4w9wgxcq", "x", "x"],
                  "timestamp": [1, 2, 3, 4]}).to_csv(path, index=False)
    r = _ingest(tmp_path, path, "m", "--set", "data.id_type=auto", "--set", "data.id_case=fold",
                "--set", "split.test=0", "--set", "split.valid=0")
    assert "2 movie ids differ from another only by case (e.g. 'dQw4w9WgXcQ' and 'dqw4w9wgxcq'; 1 movie if case " \
           "is ignored), kept as 2 movies; if they are the same movies, write their ids in one case" in r.stderr, \
        r.stderr
    assert sorted(_stored(tmp_path, "m")["movie_id"].unique()) == ["dQw4w9WgXcQ", "dqw4w9wgxcq", "x"]


def test_an_unknown_id_names_the_one_it_is_but_for_case_and_long_ids_are_shown_whole():
    ids = IdMap(np.array(["user1@example.com", "user2@example.com"]), "user")
    assert ids.unknown_text("User1@Example.com") == (
        "user 'User1@Example.com' is not in the training data (2 users); did you mean 'user1@example.com' (the same "
        "but for case)?")
    assert "did you mean" not in ids.unknown_text("user3@example.com")
    uuids = IdMap(np.array(["00482fc3-9e1b-4c1e-9a55-0a6f0a6bec81d", "1b2c3d4e-0000-4000-8000-000000000001"]),
                  "user")
    text = uuids.unknown_text("nobody")
    assert "'00482fc3-9e1b-4c1e-9a55-0a6f0a6bec81d'" in text and "[...]" not in text, text


def _log(tmp_path, fmt: str, times: bool = True):
    """A click log: 4 users x 3 movies, each pair clicked twice at two times, and 3 rows fired twice (the same
    user, movie and time)."""
    rows = [(u, m, 1_600_000_000 + 10 * u + m + k) for u in range(4) for m in range(3) for k in (0, 5)]
    rows += [rows[0], rows[7], rows[13]]
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "timestamp"])
    if not times:
        frame = frame.drop(columns="timestamp")
    return _written(frame, tmp_path / f"log.{fmt}")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_exact_duplicate_events_are_counted_when_summed_and_dropped_first_with_data_duplicates_drop(tmp_path, fmt):
    path = _log(tmp_path, fmt)
    r = _ingest(tmp_path, path, "keep", "--format", "json")
    assert "repeats summed 27 rows into 12 pairs (3 of them repeated rows (same user, movie, rating and time as " \
           "read), summed as events; data.duplicates=drop drops them first)" not in r.stderr  # json: on stdout
    import json

    report = json.loads(r.stdout)
    assert report["cleaning"]["exact_duplicates_summed"] == 3, report["cleaning"]
    r = _ingest(tmp_path, path, "keep2")
    assert "repeats summed 27 rows into 12 pairs (3 of them repeated rows (same user, movie, rating and time as " \
           "read), summed as events; data.duplicates=drop drops them first)" in r.stderr, r.stderr
    assert _stored(tmp_path, "keep2")["rating"].sum() == 27
    r = _ingest(tmp_path, path, "drop", "--set", "data.duplicates=drop")
    assert "repeated rows (same user, movie, rating and time as read) dropped 3, repeats summed 24 rows into 12 " \
           "pairs" in r.stderr, r.stderr
    assert _stored(tmp_path, "drop")["rating"].sum() == 24


def test_data_duplicates_drop_without_times_is_refused_and_keep_counts_nothing(tmp_path):
    path = _log(tmp_path, "csv", times=False)
    r = _ingest(tmp_path, path, "k")
    assert "summed as events" not in r.stderr and _stored(tmp_path, "k")["rating"].sum() == 27
    r = _ingest(tmp_path, path, "d", "--set", "data.duplicates=drop", ok=False)
    assert "data.duplicates=drop drops rows the same in user, movie, rating and time, and the ratings have no " \
           "time column" in r.stderr, r.stderr


def _dates(tmp_path, fmt: str, written: list[str]):
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2], "movie_id": [1, 2, 1, 2], "rating": [4, 5, 3, 4],
                          "Datum": written})
    path = tmp_path / f"d.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    return path


DAY_FIRST = ["09.02.1998 02:49", "13.11.2020 19:02", "01.01.2000 00:00", "31.12.1999 23:59"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_dates_of_another_format_are_refused_naming_the_setting_with_the_format_that_reads_them(tmp_path, fmt):
    path = _dates(tmp_path, fmt, DAY_FIRST)
    r = _ingest(tmp_path, path, "x", "--set", "data.columns.timestamp=Datum", ok=False)
    where = "d.csv:2: column 'Datum' '09.02.1998 02:49'" if fmt == "csv" else \
        "d.parquet: row 1: column 'Datum' holds '09.02.1998 02:49',"
    assert r.stderr.startswith("error: ") and f"{where}" in r.stderr.splitlines()[0], r.stderr
    assert "not an integer" not in r.stderr, r.stderr
    assert "not a date embedrec can read (neither a Unix time nor ISO 8601)" in r.stderr, r.stderr
    assert "they read as day-first dates ('%d.%m.%Y %H:%M'): --set 'data.timestamp_format=%d.%m.%Y %H:%M'" \
        in r.stderr, r.stderr
    _ingest(tmp_path, path, "ok", "--set", "data.columns.timestamp=Datum", "--set",
            "data.timestamp_format=%d.%m.%Y %H:%M")
    want = pd.to_datetime(pd.Series(DAY_FIRST), format="%d.%m.%Y %H:%M").astype("datetime64[s]").astype("int64")
    got = _stored(tmp_path, "ok").sort_values(["user_id", "movie_id"])["timestamp"].tolist()
    assert got == want.tolist()


def test_us_dates_are_named_when_unambiguous_and_both_readings_when_not(tmp_path):
    r = _ingest(tmp_path, _dates(tmp_path, "csv", ["02/09/1998", "12/31/1998", "03/10/1998", "01/01/2000"]), "u",
                "--set", "data.columns.timestamp=Datum", ok=False)
    assert "they read as US month-first dates ('%m/%d/%Y'): --set data.timestamp_format=%m/%d/%Y," in r.stderr, \
        r.stderr
    r = _ingest(tmp_path, _dates(tmp_path, "csv", ["02/09/1998", "12/11/1998", "03/10/1998", "01/01/2000"]), "a",
                "--set", "data.columns.timestamp=Datum", ok=False)
    assert "read as day-first and as US month-first dates alike (no day above 12): --set " \
           "data.timestamp_format=%d/%m/%Y (day-first) or --set data.timestamp_format=%m/%d/%Y (US " \
           "month-first)" in r.stderr, r.stderr


@pytest.mark.parametrize("written,fmt", [(["Jan 18 2024 10:24", "Feb 02 2024 09:00", "Mar 30 2023 23:59",
                                              "Dec 01 2022 00:00"], "%b %d %Y %H:%M"),
                                            (["18 Jan 2024, 10:24", "02 Feb 2024, 09:00", "30 Mar 2023, 23:59",
                                              "01 Dec 2022, 00:00"], "%d %b %Y, %H:%M")])
def test_dates_with_a_month_s_name_are_refused_naming_the_format_that_reads_them(tmp_path, written, fmt):
    """An own-data review: Last.fm's '18 Jan 2024, 10:24' was told to convert the column (pandas' to_datetime),
    where data.timestamp_format reads it: the message names the format, which then reads every date."""
    path = _dates(tmp_path, "csv", written)
    r = _ingest(tmp_path, path, "x", "--set", "data.columns.timestamp=Datum", ok=False)
    assert f"they read as month-name dates ('{fmt}'): --set 'data.timestamp_format={fmt}'" in r.stderr, r.stderr
    _ingest(tmp_path, path, "ok", "--set", "data.columns.timestamp=Datum", "--set", f"data.timestamp_format={fmt}")
    want = pd.to_datetime(pd.Series(written), format=fmt).astype("datetime64[s]").astype("int64")
    got = _stored(tmp_path, "ok").sort_values(["user_id", "movie_id"])["timestamp"].tolist()
    assert got == want.tolist()


def test_a_text_date_no_format_reads_names_data_timestamp_format_too(tmp_path):
    """An own-data review: an ISO week ('2024-W01') was told only to convert the column."""
    r = _ingest(tmp_path, _dates(tmp_path, "csv", ["2024-W01", "2024-W02", "2024-W03", "2024-W04"]), "w",
                "--set", "data.columns.timestamp=Datum", ok=False)
    assert "give their strftime format in data.timestamp_format, or convert the column" in r.stderr, r.stderr


def test_a_date_the_format_set_does_not_read_is_refused_by_its_line_and_a_format_without_a_directive(tmp_path):
    path = _dates(tmp_path, "csv", ["09.02.1998 02:49", "13.11.2020 19:02", "2020-01-01", "31.12.1999 23:59"])
    r = _ingest(tmp_path, path, "x", "--set", "data.columns.timestamp=Datum", "--set",
                "data.timestamp_format=%d.%m.%Y %H:%M", ok=False)
    assert ("d.csv:4: column 'Datum' '2020-01-01' is not a date in data.timestamp_format "
            "'%d.%m.%Y %H:%M'") in r.stderr, r.stderr
    r = _ingest(tmp_path, path, "y", "--set", "data.timestamp_format=dd.mm.yyyy", ok=False)
    assert "config key 'data.timestamp_format' (from --set): 'dd.mm.yyyy' holds no % directive" in r.stderr, r.stderr


@pytest.mark.parametrize("weights", [False, True])
def test_exact_duplicates_are_the_rows_pandas_finds_duplicated_in_the_columns_read(weights):
    from embedrec.data.repeats import duplicate_rows, sum_repeats

    rng = np.random.default_rng(3)
    n = 5000
    frame = pd.DataFrame({"user_id": rng.integers(0, 40, n), "movie_id": rng.integers(0, 30, n),
                          "rating": (rng.integers(1, 4, n) if weights else np.ones(n)).astype(np.float32),
                          "timestamp": rng.integers(0, 40, n)})
    want = frame.duplicated().to_numpy()
    assert want.sum() > 50
    assert (duplicate_rows(frame) == want).all()
    exact: list[int] = []
    sum_repeats(frame, True, [], exact)
    assert exact == [int(want.sum())]


def test_update_users_reads_user_ids_folded_as_the_dataset_was_ingested(tmp_path, monkeypatch):
    """A dataset ingested with data.id_case=fold: update-users' file names its user 'User1@Example.com', the user
    the run knows as 'user1@example.com' (read with the dataset's setting, said), not a new user."""
    import json

    from embedrec.cli import app

    monkeypatch.setattr(app._State, "config_path", None)
    monkeypatch.setattr(app._State, "overrides", ())
    _ingest(tmp_path, _emails(tmp_path, "csv"), "a", "--set", "data.id_type=auto", "--set", "data.id_case=fold",
            "--set", "split.test=0", "--set", "split.valid=0")
    r = CliRunner().invoke(main, ["train", "--set", f"data.prepared={tmp_path / 'a'}", "--run", str(tmp_path / "r"),
                                  "--set", "model.dim=2", "--set", "train.epochs=1", "--set", "train.als_dims=[]",
                                  "--set", "train.threads=1"])
    assert r.exit_code == 0, r.stderr
    upd = tmp_path / "since.csv"
    upd.write_text("user_id,movie_id,timestamp\nUser1@Example.com,m4,1700000900\n")
    r = CliRunner().invoke(main, ["update-users", "--ratings", str(upd), "--run", str(tmp_path / "r")])
    assert r.exit_code == 0, r.stderr
    assert "data.id_case=fold" in r.stderr, r.stderr
    assert json.loads(r.stdout)["users_added"] == 0, r.stdout
