"""One's own files as a first-hour review (session 57) brought them: a folder laid out as a MovieLens CSV release
(ratings.csv, movies.csv) holding one's own ids and dates, ids written '1.0' by pandas, a text column named close
to 'timestamp', a shop's customer_id/article_id columns, ratings 1-100, ids beyond 64 bits and the Netflix Prize
files. Each is read, or refused in one line that names how to read it. The CLI through CliRunner (stdout and
stderr apart), the library where it applies."""

from pathlib import Path

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
