"""The Netflix Prize files (data/netflix.py): combined_data_N.txt or training_set/mv_*.txt with movie_titles.csv,
as a folder, a zip or one ratings file alone. Known answers (users, movies, stars, days as Unix seconds, titles
holding commas, a NULL year), the same ratings from every layout of them, and each bad line named by file:line."""

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import embedrec as er
import embedrec.data.netflix as netflix
from embedrec.cli import main
from embedrec.config import load_config
from embedrec.data.dataset import load_dataset
from embedrec.data.readers import detect_layout, read_source, source_files
from embedrec.errors import DataError
from tests.test_own_files import invoke, refused  # (one CLI call; its one-line refusal)

# movie 1: two ratings, movie 2: two, movie 3: one (as Kaggle's combined_data files lay them out)
ONE = "1:\n9007,4,2005-09-06\n29007,5,2005-06-08\n2:\n9007,3,2004-01-02\n41,2,2005-03-01\n3:\n41,5,2005-03-02\n"
TWO = "4:\n9007,1,1999-11-11\n5:\n77,3,2005-12-31\n"
TITLES = "1,2003,Dinosaur Planet\n2,NULL,Isle, The\n3,1997,Character, Part \"2\"\n4,2004,Am\u00e9lie\n"
ROWS = [(9007, 1, 4, "2005-09-06"), (29007, 1, 5, "2005-06-08"), (9007, 2, 3, "2004-01-02"),
        (41, 2, 2, "2005-03-01"), (41, 3, 5, "2005-03-02")]
ROWS_TWO = [(9007, 4, 1, "1999-11-11"), (77, 5, 3, "2005-12-31")]


def _day(date: str) -> int:
    return int(pd.Timestamp(date, tz="UTC").timestamp())


def _rows(raw) -> list:
    r = raw.ratings
    return list(zip(r.user_id.tolist(), r.movie_id.tolist(), r.rating.tolist(), r.timestamp.tolist()))


def _expected(rows) -> list:
    return [(u, m, float(s), _day(d)) for u, m, s, d in rows]


def _data(source, **settings):
    return load_config(None, []).updated({"data.source": str(source), **settings}).data


def _kaggle(d: Path, files=(ONE,), titles: str | None = TITLES) -> Path:
    d.mkdir(parents=True)
    for i, text in enumerate(files, 1):
        (d / f"combined_data_{i}.txt").write_text(text)
    if titles is not None:
        (d / "movie_titles.csv").write_bytes(titles.encode("latin-1"))
    return d


def test_a_folder_of_combined_data_reads_each_rating_its_day_and_the_titles(tmp_path):
    """Known answers: the users, movies and stars as written, each date as the Unix seconds of that day (UTC), the
    titles split at the first two commas alone (latin-1), a NULL year as none; the files recorded as read."""
    d = _kaggle(tmp_path / "nf")
    data = _data(d)
    assert detect_layout(d) == ("netflix", d)
    raw = read_source(data)
    assert raw.layout == "netflix" and raw.rating_scale == (1.0, 5.0)
    assert _rows(raw) == _expected(ROWS)
    assert str(raw.ratings.user_id.dtype) == "int32" and str(raw.ratings.rating.dtype) == "float32"
    m = raw.movies.set_index("movie_id")
    assert m.title.to_dict() == {1: "Dinosaur Planet", 2: "Isle, The", 3: 'Character, Part "2"', 4: "Am\u00e9lie"}
    assert [None if pd.isna(y) else int(y) for y in m.year] == [2003, None, 1997, 2004]
    assert source_files(data) == raw.files == [d / "combined_data_1.txt", d / "movie_titles.csv"]


def test_ingest_of_the_folder_says_its_layout_and_stores_the_ratings(tmp_path):
    """The command: 'layout netflix' in its summary, the Prize's probe.txt and qualifying.txt said not read, the
    dataset's rows and titles those of the files."""
    d = _kaggle(tmp_path / "nf")
    (d / "probe.txt").write_text("1:\n30878\n")
    (d / "qualifying.txt").write_text("1:\n1046323,2005-12-19\n")
    r = invoke("ingest", d, "-o", tmp_path / "out", "--set", "split.valid=0", "--set", "split.test=0")
    assert r.exit_code == 0 and r.stdout == "", r.stderr
    assert "layout netflix" in r.stderr and "read 5 rows (netflix layout)" in r.stderr
    assert "probe.txt and qualifying.txt hold the Prize's (movie, customer) pairs to predict, not ratings: not " \
           "read" in r.stderr
    ds = load_dataset(tmp_path / "out")
    rows = ds.split_frame("train").sort_values(["movie_id", "user_id"])
    got = list(zip(rows.user_id, rows.movie_id, rows.rating, rows.timestamp))
    assert got == sorted(_expected(ROWS), key=lambda t: (t[1], t[0]))
    assert dict(zip(ds.movies.movie_id, ds.movies.title))[2] == "Isle, The"


def test_two_combined_files_read_in_order_and_a_movie_without_a_title_is_kept(tmp_path):
    """combined_data_1.txt then _2.txt (by their number, not as text: _10 after _2); movie 5, not in
    movie_titles.csv, keeps its rating, untitled, counted."""
    d = _kaggle(tmp_path / "nf", files=(ONE, TWO))
    (d / "combined_data_10.txt").write_text("6:\n5,2,2001-01-01\n")
    raw = read_source(_data(d))
    assert _rows(raw) == _expected(ROWS + ROWS_TWO + [(5, 6, 2, "2001-01-01")])
    assert raw.files == [d / "combined_data_1.txt", d / "combined_data_2.txt", d / "combined_data_10.txt",
                         d / "movie_titles.csv"]
    out = er.ingest(d, output=tmp_path / "out")
    assert out.manifest["cleaning"]["ratings_for_unknown_movies"] == 2
    assert "ratings for unknown movies 2" in out.summary()


def test_the_training_set_folder_reads_the_same_ratings(tmp_path):
    """The original layout: training_set/mv_0000001.txt, one movie a file (one without a last line break), beside
    movie_titles.csv; the training_set/ folder given itself reads too."""
    d = tmp_path / "nf"
    (d / "training_set").mkdir(parents=True)
    blocks = ONE.split("2:\n")
    texts = [blocks[0], "2:\n" + blocks[1].split("3:\n")[0], "3:\n" + blocks[1].split("3:\n")[1].rstrip("\n")]
    for i, text in enumerate(texts, 1):
        (d / "training_set" / f"mv_{i:07d}.txt").write_text(text)
    (d / "movie_titles.csv").write_bytes(TITLES.encode("latin-1"))
    data = _data(d)
    raw = read_source(data)
    assert _rows(raw) == _expected(ROWS)
    assert source_files(data) == raw.files == [*(d / "training_set" / f"mv_{i:07d}.txt" for i in (1, 2, 3)),
                                               d / "movie_titles.csv"]
    assert raw.movies is not None
    alone = read_source(_data(d / "training_set"))
    assert _rows(alone) == _expected(ROWS) and alone.movies is None


def test_a_zip_of_the_folder_and_a_zip_of_one_file(tmp_path):
    """A zip of the Kaggle folder reads as the folder; a zip of one combined_data file as that file; their
    errors name the zip's member."""
    d = _kaggle(tmp_path / "nf", files=(ONE, TWO))
    z = tmp_path / "netflix-prize-data.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(d.iterdir()):
            zf.write(p, p.name)
    raw = read_source(_data(z))
    assert _rows(raw) == _expected(ROWS + ROWS_TWO) and raw.files == [z]
    assert raw.movies is not None and len(raw.movies) == 4
    one = tmp_path / "one.zip"
    with zipfile.ZipFile(one, "w") as zf:
        zf.writestr("combined_data_2.txt", TWO)
    assert _rows(read_source(_data(one))) == _expected(ROWS_TWO)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("combined_data_1.txt", ONE + "4:\n1,3\n")
    with pytest.raises(DataError, match=rf"^{bad}!combined_data_1.txt:10: expected a 'MovieID:' line or a "
                                        r"'CustomerID,Rating,YYYY-MM-DD' line, found '1,3' \(2 comma-separated"):
        read_source(_data(bad))


def test_one_combined_file_alone_reads_without_titles_said_in_a_note(tmp_path, caplog):
    d = _kaggle(tmp_path / "nf", files=(ONE, TWO))
    data = _data(d / "combined_data_2.txt")
    with caplog.at_level("INFO", logger="embedrec"):
        raw = read_source(data)
    assert _rows(raw) == _expected(ROWS_TWO) and raw.movies is None
    assert source_files(data) == raw.files == [d / "combined_data_2.txt"]
    assert f"give the folder {d}/ to read them from its movie_titles.csv" in caplog.text
    other = tmp_path / "ratings-of-mine.txt"  # named otherwise: known by its first lines
    other.write_text(ONE)
    assert _rows(read_source(_data(other))) == _expected(ROWS)
    r = invoke("ingest", d / "combined_data_1.txt", "-o", tmp_path / "out")
    assert r.exit_code == 0 and "layout netflix" in r.stderr and "its movies get no titles" in r.stderr, r.stderr


@pytest.mark.parametrize("text, line, said", [
    ("1:\n9007,4,2005-09-06\n9007,4,2005/09/06\n", 3, "found '9007,4,2005/09/06' (a date not written YYYY-MM-DD)"),
    ("1:\n9007,4\n", 2, "found '9007,4' (2 comma-separated fields, not 3)"),
    ("1:\n9007,4,2005-09-06,x\n", 2, "(4 comma-separated fields, not 3)"),
    ("1:\n\n9007,4.5,2005-09-06\n", 3, "(a rating that is not a whole number of stars)"),
    ("1:\nabc,4,2005-09-06\n", 2, "(a customer id that is not a whole number)"),
    ("1:\n9007,4,2005-09-06\nx:\n", 3, "(a movie id that is not a whole number)"),
    ("1:\n9007,4,2005-09-06:\n", 2, "found '9007,4,2005-09-06:'"),
    ("1:\n9007,4,2005-02-30\n", 2, "the date '2005-02-30' is not a day of the calendar"),
    ("1,\n9007,4,2005-09-06\n", 1, "found '1,'"),
    ("1:\n9007,4,2005-09-06\n2:x\n41,2,2005-03-01\n", 3, "found '2:x'"),
])
def test_a_bad_line_is_named_by_its_file_and_line(tmp_path, text, line, said):
    d = _kaggle(tmp_path / "nf", files=(ONE, text))
    with pytest.raises(DataError, match="^" + str(d / "combined_data_2.txt").replace(".", r"\.") + f":{line}: ") as e:
        read_source(_data(d))
    assert said in str(e.value)


def test_a_rating_before_any_movie_line_is_refused(tmp_path):
    d = _kaggle(tmp_path / "nf", files=("\n9007,4,2005-09-06\n1:\n41,2,2005-03-01\n",))
    r = invoke("ingest", d, "-o", tmp_path / "out")
    refused(r, f"{d / 'combined_data_1.txt'}:2: the rating line '9007,4,2005-09-06' comes before any 'MovieID:' "
               "line, so its movie is unknown")


def test_lines_are_counted_across_blocks_and_a_rating_off_the_scale_is_named_by_its_line(tmp_path, monkeypatch):
    """Blocks of a few bytes (the movie carried from one block to the next), blank lines and 'MovieID:' lines
    between the ratings: a bad line is named by its line, and a rating of 7 stars, refused by ingest's check of
    the scale after the read, by its own line, not its row."""
    monkeypatch.setattr(netflix, "BLOCK", 16)
    text = ONE.replace("2:\n", "\n2:\n\n") + "4:\n41,7,2005-03-02\n"
    d = _kaggle(tmp_path / "nf", files=(TWO, text))
    raw = read_source(_data(d))
    assert _rows(raw)[2:7] == _expected(ROWS)
    r = invoke("ingest", d, "-o", tmp_path / "out")
    refused(r, f"{d / 'combined_data_2.txt'}:12: rating 7 is outside the scale 1-5")
    (d / "combined_data_2.txt").write_text(text + "\n\n5:\n41,3,2005-3-02\n")
    with pytest.raises(DataError, match=r"combined_data_2\.txt:16: .*a date not written YYYY-MM-DD"):
        read_source(_data(d))


def test_bad_titles_lines_are_named(tmp_path):
    d = _kaggle(tmp_path / "nf", titles="1,2003,Dinosaur Planet\n2,19x7,Isle, The\n")
    with pytest.raises(DataError, match=r"movie_titles\.csv:2: year '19x7' is not a year nor NULL"):
        read_source(_data(d))
    (d / "movie_titles.csv").write_text("1,2003\n")
    with pytest.raises(DataError, match=r"movie_titles\.csv:1: expected MovieID,YearOfRelease,Title, found "
                                        r"'1,2003' \(2 fields\)"):
        read_source(_data(d))


def test_a_netflix_file_on_standard_input_or_read_as_a_table_is_named(tmp_path):
    """Standard input, and data.format=csv, read tables: the layout is named there, with how ingest reads it."""
    d = _kaggle(tmp_path / "nf")
    r = CliRunner().invoke(main, ["ingest", "-", "-o", str(tmp_path / "out")], input=ONE)
    refused(r, "the Netflix Prize files' layout ('MovieID:' lines, each followed by that movie's CustomerID,Rating,"
               "Date lines), not a table; ingest reads it from the file, its folder (with movie_titles.csv) or a zip "
               "of either, given by its path with data.format auto")
    r = invoke("ingest", d / "combined_data_1.txt", "-o", tmp_path / "out", "--set", "data.format=csv")
    refused(r, "'1:' heads a block of ratings: the Netflix Prize files' layout")


def test_a_folder_of_the_prize_files_without_ratings_says_what_is_missing(tmp_path):
    d = tmp_path / "nf"
    d.mkdir()
    (d / "movie_titles.csv").write_text(TITLES)
    (d / "probe.txt").write_text("1:\n30878\n")
    with pytest.raises(DataError, match="the Netflix Prize's files without their ratings"):
        read_source(_data(d))


def test_ingest_shows_a_bar_over_the_bytes_of_the_ratings_files(tmp_path, monkeypatch):
    """The parse's bar (ingest's, on a terminal) counts the ratings files' bytes as they are read, to their size:
    a folder's files together (named by the folder and how many), one file given alone by its name."""
    from embedrec import bars
    from embedrec.cli import ingest as command

    from .test_progress_bars import _Bars, bars_on

    monkeypatch.setattr(bars, "INGEST_DELAY_S", 0.0)
    monkeypatch.setattr(netflix, "BLOCK", 32)  # (several blocks a file)
    d = _kaggle(tmp_path / "nf", files=(ONE, TWO))
    size = sum((d / f"combined_data_{i}.txt").stat().st_size for i in (1, 2))
    kept = _Bars(monkeypatch)
    bars_on(monkeypatch, command)
    for name, src in (("folder", d), ("alone", d / "combined_data_2.txt")):
        r = invoke("ingest", src, "-o", tmp_path / name, "--set", "split.valid=0", "--set", "split.test=0")
        assert r.exit_code == 0, r.stderr
    reading = [b for b in kept.closed if b[0].startswith("reading")]
    alone = (d / "combined_data_2.txt").stat().st_size
    assert reading == [(f"reading {d} (2 ratings files)", size, size),
                       (f"reading {d / 'combined_data_2.txt'}", alone, alone)], reading


def _training_set(d: Path, texts: list[str]) -> Path:
    (d / "training_set").mkdir(parents=True)
    for i, text in enumerate(texts, 1):
        (d / "training_set" / f"mv_{i:07d}.txt").write_text(text)
    return d


def test_ratings_off_the_scale_in_other_files_are_named_with_their_file(tmp_path):
    """A review: a 7 in mv_0000002.txt and a 0 in mv_0000003.txt were said '(2 lines like it: 2, ...)', the second
    file's line left out as if cut for length; the first file's lines like it are numbers, as the message's own
    FILE:LINE names them, and another file's line is named with its file, refused and dropped alike."""
    texts = ["1:\n9007,4,2005-09-06\n", "2:\n9007,7,2004-01-02\n41,3,2005-03-01\n77,9,2005-03-01\n",
             "3:\n41,5,2005-03-02\n77,0,2005-03-02\n"]
    d = _training_set(tmp_path / "nf", texts)
    (d / "movie_titles.csv").write_text(TITLES)
    two, three = d / "training_set" / "mv_0000002.txt", d / "training_set" / "mv_0000003.txt"
    r = invoke("ingest", d, "-o", tmp_path / "out")
    refused(r, f"{two}:2: rating 7 is outside the scale 1-5 (3 lines like it: 2, 4, {three}:3); fix those rows")
    r = invoke("ingest", d, "-o", tmp_path / "out", "--set", "data.out_of_scale=drop")
    assert r.exit_code == 0, r.stderr
    assert f"{two}:2: rating 7 is outside the scale 1-5 (3 lines like it: 2, 4, {three}:3); dropped the 3" in r.stderr


@pytest.mark.parametrize("blank", ["", "\n"])
def test_training_set_files_read_together_are_each_named_by_their_own_lines(tmp_path, blank):
    """The small files parsed as one block: a rating off the scale is named by its own file and line (read together,
    or file by file where a blank line lies among them), a bad line by its file's line, a file that does not begin
    with its 'MovieID:' line refused (it would have taken the file before's movie)."""
    texts = ["1:\n9007,4,2005-09-06\n", f"2:\n{blank}9007,3,2004-01-02\n41,7,2005-03-01\n", "3:\n41,5,2005-03-02\n"]
    d = _training_set(tmp_path / "nf", texts)
    raw = read_source(_data(d))
    assert _rows(raw) == _expected([(9007, 1, 4, "2005-09-06"), (9007, 2, 3, "2004-01-02"), (41, 2, 7, "2005-03-01"),
                                    (41, 3, 5, "2005-03-02")])
    assert raw.where(2) == f"{d / 'training_set' / 'mv_0000002.txt'}:{3 + len(blank)}"
    assert raw.where(3) == f"{d / 'training_set' / 'mv_0000003.txt'}:2"
    (d / "training_set" / "mv_0000002.txt").write_text(f"2:\n{blank}9007,3,2004-01-02\n41,2,2005-3-01\n")
    with pytest.raises(DataError, match=rf"mv_0000002\.txt:{3 + len(blank)}: .*a date not written YYYY-MM-DD"):
        read_source(_data(d))
    (d / "training_set" / "mv_0000002.txt").write_text(f"{blank}9007,3,2004-01-02\n")
    with pytest.raises(DataError, match=rf"mv_0000002\.txt:{1 + len(blank)}: the rating line '9007,3,2004-01-02' "
                                        "comes before any 'MovieID:' line"):
        read_source(_data(d))


def test_a_compressed_combined_file_in_the_folder_is_refused_naming_it_not_left_out(tmp_path):
    """A first-hour review: a folder of combined_data_1.txt.gz, combined_data_2.txt and movie_titles.csv was read
    (exit 0) with the .gz file's ratings left out without a word. Refused in one line naming it and the command
    that decompresses it; a .gz kept beside its decompressed copy is not in the way."""
    import gzip

    d = _kaggle(tmp_path / "nf", files=(ONE, TWO))
    packed = d / "combined_data_1.txt.gz"
    packed.write_bytes(gzip.compress(ONE.encode()))
    (d / "combined_data_1.txt").unlink()
    r = invoke("ingest", d, "-o", tmp_path / "out", "--set", "split.valid=0", "--set", "split.test=0")
    line = refused(r, f"{packed}: a compressed ratings file of the Netflix Prize")
    assert f"decompress it first (gunzip {packed}), then give {d} again" in line
    with pytest.raises(DataError, match="a compressed ratings file"):
        source_files(_data(d))
    (d / "combined_data_2.txt").unlink()  # the compressed one alone: the Prize's all the same, not 'unrecognised'
    refused(invoke("ingest", d, "-o", tmp_path / "out"), f"{packed}: a compressed ratings file")
    (d / "combined_data_1.txt").write_text(ONE)  # gunzip -k: the plain copy is read
    assert _rows(read_source(_data(d))) == _expected(ROWS)


def test_a_compressed_combined_file_alone_is_asked_to_be_decompressed(tmp_path):
    """A first-hour review: a combined_data_1.txt.gz given by its path was refused with 'ingest reads it from the
    file, its folder ... given by its path with data.format auto', which is what the user did."""
    import bz2
    import gzip

    d = _kaggle(tmp_path / "nf")
    packed = d / "combined_data_1.txt.gz"
    packed.write_bytes(gzip.compress(ONE.encode()))
    line = refused(invoke("ingest", packed, "-o", tmp_path / "out"), f"{packed}:1: '1:' heads a block of ratings")
    assert line.endswith(f"decompress it first (gunzip {packed}), then give {d / 'combined_data_1.txt'} or its "
                         "folder") and "given by its path" not in line
    other = tmp_path / "mine.txt.bz2"
    other.write_bytes(bz2.compress(ONE.encode()))
    assert refused(invoke("ingest", other, "-o", tmp_path / "out2"), "(bunzip2 ").endswith(
        f"then give {tmp_path / 'mine.txt'} or its folder")


def test_a_missing_combined_file_between_two_is_named_in_a_note(tmp_path, caplog):
    """A first-hour review: combined_data_1.txt and _3.txt (no _2) were read without a word."""
    d = _kaggle(tmp_path / "nf", files=(ONE, TWO))
    (d / "combined_data_2.txt").rename(d / "combined_data_4.txt")
    with caplog.at_level("WARNING", logger="embedrec"):
        raw = read_source(_data(d))
    assert _rows(raw) == _expected(ROWS + ROWS_TWO)
    assert (f"{d}: no combined_data_2.txt, combined_data_3.txt between combined_data_1.txt and combined_data_4.txt: "
            "their ratings are not read") in caplog.text
    caplog.clear()
    (d / "combined_data_4.txt").rename(d / "combined_data_2.txt")  # no gap: no note
    with caplog.at_level("WARNING", logger="embedrec"):
        read_source(_data(d))
    assert "between" not in caplog.text
