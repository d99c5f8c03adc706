"""pandas' parser errors on a user's CSV/TSV become one DataError line naming file:line (explicit examples of
what tests/test_properties.py finds by search; the first is the Hypothesis failure: a last field that is a lone
'"')."""

import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.config import Config
from embedrec.data.readers import read_generic
from embedrec.errors import DataError

HEAD = b"user_id,movie_id,rating,timestamp\n"
QUOTE = "a quoted field opens here"

# (name, file bytes, the line named, a phrase of the message)
CASES = [
    ("last field a lone quote, one row", HEAD + b'1,2,3,"\n', 2, QUOTE),
    ("last field a lone quote, no newline", HEAD + b'1,2,3,4\n1,2,3,"', 3, QUOTE),
    ("a lone quote as the only data", HEAD + b'"', 2, QUOTE),
    ("a lone quote as the whole file", b'"', 1, QUOTE),
    ("an unterminated quote in the header", b'user_id,movie_id,rating,"timestamp\n1,2,3,4\n', 1, QUOTE),
    ("an unterminated quote mid-file", HEAD + b'1,2,3,4\n1,"2,3,4\n5,6,7,8\n', 3, QUOTE),
    ("after blank lines", HEAD + b'1,2,3,4\n\n\n1,2,3,"\n', 5, QUOTE),
    ("after a quoted field spanning lines", HEAD + b'1,2,3,"4\n5"\n1,2,3,"\n', 4, QUOTE),
    ("CRLF line ends", HEAD.replace(b"\n", b"\r\n") + b'1,2,3,4\r\n1,3,3,"\r\n', 3, QUOTE),
    ("a BOM and a lone quote", b"\xef\xbb\xbf" + HEAD + b'1,2,3,4\n1,3,3,"\n', 3, QUOTE),
    ("too many fields", HEAD + b"1,2,3,4\n1,2,3,4,5\n", 3, "expected 4 fields, found 5"),
    ("too many fields after a quoted newline", HEAD + b'1,2,3,"4\n5"\n1,2,3,4,5\n', 4,
     "expected 4 fields, found 5"),
    ("too few fields", HEAD + b"1,2,3,4\n1,2,3\n", 3, "expected 4 fields, found 3; fill in the missing fields"),
    ("two of four fields", HEAD + b"1,2,3,4\n1,2\n", 3, "expected 4 fields, found 2"),
    ("too few fields after blank lines", HEAD + b"1,2,3,4\n\n\n1,2\n", 5, "expected 4 fields, found 2"),
    ("an empty field", HEAD + b"1,2,3,4\n1,2,3,\n", 3, "column 'timestamp' is empty"),
    ("not a number after blank lines", HEAD + b"1,2,3,4\n\n\n1,x,3,4\n", 5, "column 'movie_id' 'x' is not an integer"),
    ("not a number after a quoted newline", HEAD + b'1,2,3,"4"\n"1\n",x,3,4\n', 3, "column 'movie_id' 'x'"),
    ("a NUL byte in a field", HEAD + b"1,2,3,4\n1,2\x00,3,4\n", 3, "a NUL byte (\\x00) in a text table"),
    ("a newline in a header name", b'"user\n_id",movie_id,rating,timestamp\n1,2,3,4\n', None, "did you mean"),
    ("a NUL byte in the header", b"user_id\x00,movie_id,rating,timestamp\n1,2,3,4\n", 1, "NUL bytes"),
]


@pytest.mark.parametrize("name,data,line,phrase", CASES, ids=[c[0] for c in CASES])
def test_parser_errors_are_one_data_error_line_naming_file_and_line(tmp_path, name, data, line, phrase):
    p = tmp_path / "ratings.csv"
    p.write_bytes(data)
    with pytest.raises(DataError) as e:
        read_generic(str(p), Config().data)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}: " if line else f"{p}: "), msg
    assert phrase in msg and "\n" not in msg


@pytest.mark.parametrize("data", [HEAD + b"1,2,3,4\n", b"\xef\xbb\xbf" + HEAD + b"1,2,3,4\n",
                                  HEAD.replace(b"\n", b"\r\n") + b"1,2,3,4\r\n", HEAD.replace(b"\n", b"\r") + b"1,2,3,4\r"],
                         ids=["plain", "BOM", "CRLF", "CR"])
def test_bom_and_line_ends_read_as_plain_csv(tmp_path, data):
    p = tmp_path / "ratings.csv"
    p.write_bytes(data)
    df = read_generic(str(p), Config().data).ratings
    assert df[["user_id", "movie_id", "rating", "timestamp"]].values.tolist() == [[1, 2, 3, 4]]


def test_tsv_unterminated_quote_names_the_line(tmp_path):
    p = tmp_path / "ratings.tsv"
    p.write_bytes(b"user_id\tmovie_id\trating\ttimestamp\n1\t2\t3\t4\n1\t2\t3\t\"\n")
    with pytest.raises(DataError, match=rf"^{p}:3: {QUOTE}"):
        read_generic(str(p), Config().data)


def test_movies_file_unterminated_quote_names_the_line(tmp_path):
    r, m = tmp_path / "ratings.csv", tmp_path / "movies.csv"
    r.write_bytes(HEAD + b"1,2,3,4\n")
    m.write_bytes(b"movie_id,title,genres\n2,Toy Story (1995),Comedy\n3,\"Heat (1995),Action\n")
    cfg = Config().updated({"data.movies": str(m), "data.columns.title": "title", "data.columns.genres": "genres"})
    with pytest.raises(DataError, match=rf"^{m}:3: {QUOTE}"):
        read_generic(str(r), cfg.data)


def test_recbole_item_file_with_wrong_field_count_names_the_line(tmp_path):
    from embedrec.data.readers import read_recbole

    (tmp_path / "x.inter").write_text("user_id:token\titem_id:token\trating:float\n1\t2\t3\n")
    (tmp_path / "x.item").write_text("item_id:token\tmovie_title:token_seq\n2\tHeat\n3\tA\tB\n")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'x.item'}:3: expected 2 fields, found 3"):
        read_recbole(tmp_path)


@pytest.mark.parametrize("chunk", [3, 7, 1 << 24])
def test_recbole_inter_line_with_extra_fields_is_refused_naming_it(tmp_path, chunk):
    """A red team: read_csv with usecols dropped a .inter line's extra fields, so '7 11 4 junk more' under a
    3-column header was a rating of 4. Counted per line in chunks (small ones here: a line across chunks)."""
    from embedrec.data.recbole import _refuse_long_lines

    p = tmp_path / "x.inter"
    head = "user_id:token\titem_id:token\trating:float\n"
    rows = "".join(f"{u}\t{m}\t{(u * m) % 5 + 1}\n" for u in range(1, 5) for m in range(1, 4))
    p.write_text(head + rows + "7\t11\t4\tjunk\tmore\n" + rows)
    cols = ["user_id", "item_id", "rating"]
    with pytest.raises(DataError, match=rf"^{p}:14: expected 3 fields \(as in the header\), found 5; remove"):
        _refuse_long_lines(p, cols, chunk)
    p.write_text(head + rows + "7\t11\t4")  # no extra field, no final line end: fine
    _refuse_long_lines(p, cols, chunk)
    p.write_text(head + rows + "7\t11\t4\tjunk")  # the last line, without its line end
    with pytest.raises(DataError, match=rf"^{p}:14: expected 3 fields"):
        _refuse_long_lines(p, cols, chunk)


def test_recbole_inter_with_extra_fields_is_refused_by_ingest(tmp_path):
    from embedrec.data.readers import read_recbole

    (tmp_path / "x.inter").write_text("user_id:token\titem_id:token\trating:float\n1\t2\t3\n7\t11\t4\tjunk\n")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'x.inter'}:3: expected 3 fields \(as in the header\), found 4"):
        read_recbole(tmp_path)


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_cli_prints_one_line_and_fails_on_a_lone_quote(tmp_path, stdin):
    data = HEAD + b'1,2,3,4\n1,3,3,"\n'
    p = tmp_path / "ratings.csv"
    p.write_bytes(data)
    args = ["ingest", "-q", "-" if stdin else str(p), "-o", str(tmp_path / "ds")]
    r = CliRunner().invoke(main, args, input=data if stdin else None)
    assert r.exit_code != 0 and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {'<stdin>' if stdin else p}:3: {QUOTE}"), r.stderr
    assert r.stdout == "" and not (tmp_path / "ds").exists()


def test_a_missing_field_in_a_float_column_is_named_by_line(tmp_path):
    from embedrec.config import load_config
    from embedrec.errors import DataError
    from embedrec.ingestion import ingest

    rb = tmp_path / "rb"
    rb.mkdir()
    (rb / "rb.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                 "1\t2\t5\t100\n1\t3\t4\t\n2\t2\t3\t102\n")
    cfg = load_config(None, [f"data.source={rb}"])
    with pytest.raises(DataError, match=r"rb.inter:3: no value in column 'timestamp'"):
        ingest(cfg.data, cfg.split, output=tmp_path / "out")
    (rb / "rb.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                 "1\t2\t5\t100\n1\t3\t4\n2\t2\t3\t102\n")  # a field short, not empty
    with pytest.raises(DataError, match=r"rb.inter:3: expected 4 fields, found 3; fill in the missing fields"):
        ingest(cfg.data, cfg.split, output=tmp_path / "out")


def test_an_empty_or_missing_text_id_is_named_by_line(tmp_path):
    """With data.id_type=str an empty id (or a row short of it) was read as the id 'nan'."""
    cfg = Config().updated({"data.id_type": "str"}).data
    p = tmp_path / "ratings.csv"
    p.write_bytes(HEAD + b"1,2,3,4\n,2,3,4\n")
    with pytest.raises(DataError, match=rf"^{p}:3: no value in column 'user_id'"):
        read_generic(str(p), cfg)
    p.write_bytes(b"rating,timestamp,user_id,movie_id\n3,4,1,2\n3,4,1\n")
    with pytest.raises(DataError, match=rf"^{p}:3: expected 4 fields, found 3"):
        read_generic(str(p), cfg)


def test_a_movies_row_short_of_fields_names_the_line(tmp_path):
    r, m = tmp_path / "ratings.csv", tmp_path / "movies.csv"
    r.write_bytes(HEAD + b"1,2,3,4\n")
    m.write_bytes(b"movie_id,title,genres\n1,\"Heat, The (1995)\",Action\n2,Broken\n3,Up (2009),\n")
    cfg = Config().updated({"data.movies": str(m)})
    with pytest.raises(DataError, match=rf"^{m}:3: expected 3 fields, found 2; fill in the missing fields or remove"):
        read_generic(str(r), cfg.data)
    m.write_bytes(b"movie_id,title,genres\n1,\"Heat, The (1995)\",Action\n2,Broken,\n3,Up (2009),\n")
    assert read_generic(str(r), cfg.data).movies["genres"].tolist() == [["Action"], [], []]


def test_a_rating_beyond_float32_is_one_line(tmp_path):
    (tmp_path / "big.csv").write_text("user_id,movie_id,rating\n1,2,3\n2,3,1e39\n")
    r = CliRunner().invoke(main, ["ingest", str(tmp_path / "big.csv"), "-o", str(tmp_path / "o"),
                                  "--set", "data.columns.timestamp=null"])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "big.csv:3:" in r.stderr


def test_the_id_patterns_carry_no_flags_of_their_own():
    """pandas 3.0's str.match refused a compiled pattern whose flags differ from its own (re.ASCII): every ingest
    was an internal error there (an H200 machine's pandas 3.0.6, session 38). ASCII digits and spaces are written
    out instead, and '٧' or a no-break space still make no id."""
    import re

    import pandas as pd

    from embedrec.data.idtext import OTHER_ID, PADDED_ID, PLAIN_ID, plain_integer_id

    for pattern in (PADDED_ID, OTHER_ID, PLAIN_ID):
        assert pattern.flags == re.compile("").flags
    text = pd.Series(["007", "7", " +7", "7.0", "7e0", "\u0667", " 12 ", "\u00a012"], dtype="str")
    assert text.str.match(PADDED_ID).tolist() == [True] + [False] * 7
    assert text.str.match(OTHER_ID).tolist() == [False, False, True, True, True, False, False, False]
    assert [plain_integer_id(t) for t in text] == [False, True, False, False, False, False, True, False]


# ------------------------------------------------------------------------------------------ a wide header

WIDE = 50_000  # columns beside the user, movie and rating: pandas' frame of them all took 4 s here, 9.3 GB at 120,000


def _frame_widths(monkeypatch) -> list[int]:
    """The widths of every frame pandas.read_csv builds while the test runs, and how many columns each sample reads."""
    import pandas as pd

    widths = []
    real = pd.read_csv

    def read_csv(*args, **kw):
        out = real(*args, **kw)
        widths.append(getattr(out, "shape", (0, 0))[1])
        return out

    monkeypatch.setattr(pd, "read_csv", read_csv)
    return widths


def test_a_wide_header_reads_only_the_columns_read_and_samples_a_few(tmp_path, monkeypatch):
    from embedrec.data import columns

    names = [f"c{i}" for i in range(WIDE)]
    names[WIDE - 10] = "watched_at"  # a time column's name, far along: looked at first, and named
    rows = [f"{u},{m},{r}" + "," * (WIDE - 9) + f"2020-01-0{d}" + "," * 9
            for u, m, r, d in [(1, 1, 4, 1), (1, 2, 3, 2), (2, 1, 5, 3)]]
    p = tmp_path / "wide.csv"
    p.write_text("user_id,movie_id,rating," + ",".join(names) + "\n" + "\n".join(rows) + "\n")
    widths = _frame_widths(monkeypatch)
    looked = []
    real_kind = columns.times_kind
    monkeypatch.setattr(columns, "times_kind", lambda values: looked.append(values.name) or real_kind(values))
    raw = read_generic(str(p), Config().data)
    assert raw.ratings["rating"].tolist() == [4, 3, 5]
    assert any("reading column 'watched_at' as 'timestamp' (its first rows are dates)" in str(n)
               for n in raw.notes), raw.notes
    assert max(widths) <= columns.SAMPLED_COLUMNS_MAX, max(widths)  # no frame of every column
    assert "watched_at" in looked and len(looked) <= columns.SAMPLED_COLUMNS_MAX


def test_a_wide_parquet_file_reads_only_the_columns_read(tmp_path, monkeypatch):
    import pandas as pd

    df = pd.DataFrame({"user_id": [1, 1, 2], "movie_id": [1, 2, 1], "rating": [4.0, 3.0, 5.0]})
    extra = pd.DataFrame(0, index=df.index, columns=[f"c{i}" for i in range(2_000)], dtype="int8")
    p = tmp_path / "wide.parquet"
    pd.concat([df, extra], axis=1).to_parquet(p)
    import pyarrow.parquet as pq

    asked = []
    for name in ("read", "iter_batches"):  # (without a bar, and with one: data.tables._read_parquet_rows)
        real = getattr(pq.ParquetFile, name)
        monkeypatch.setattr(pq.ParquetFile, name, lambda self, *a, _real=real, **kw: asked.append(kw.get("columns"))
                            or _real(self, *a, **kw))
    for progress in (False, True):
        raw = read_generic(str(p), Config().data, progress=progress)
        assert raw.ratings["rating"].tolist() == [4, 3, 5]
    assert asked.count(["user_id", "movie_id", "rating"]) == 2, asked[-2:]  # (the rows: read once, those alone)


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_header_line_longer_than_a_mib_is_said_to_be_one_with_the_cut_that_shortens_it(tmp_path, sep):
    """A red team: a header of 190,000 names like 'c123456' (within the 200,000 columns a table may have) was
    refused as 'no line break in its first 1 MiB, so not a table of one row per line'. It is said to be a first line
    longer than that MiB, of how many fields there, with a `cut` of the first columns, which then reads; a MiB of
    one word with no line break is still no table."""
    names = ["user_id", "movie_id", "rating", "timestamp"] + [f"c{100000 + i}" for i in range(190_000)]
    p = tmp_path / "wide.csv"
    p.write_text(sep.join(names) + "\n" + sep.join(["1", "2", "4", "1000"] + [""] * 190_000) + "\n")
    r = CliRunner().invoke(main, ["ingest", str(p), "-o", str(tmp_path / "a")])
    cut = "cut -f1-4" if sep == "\t" else "cut -d, -f1-4"
    shown = "a tab" if sep == "\t" else "','"
    assert r.exit_code == 1 and r.stderr == (
        f"error: {p}:1: the first line is longer than the 1 MiB a table's first line is read within (131,072 fields "
        f"separated by {shown} in that MiB, and more: a header of as many columns); write the file again with the "
        "columns ingest reads (user, movie, rating and time, and title and genres where it has them), e.g. "
        f"`{cut} {p} > NEW` where they are the first four\n"), r.stderr
    import subprocess

    new = tmp_path / "new.csv"
    new.write_bytes(subprocess.run(cut.split() + [str(p)], capture_output=True, check=True).stdout)
    raw = read_generic(str(new), Config().updated({"data.separator": sep}).data)
    assert raw.ratings["rating"].tolist() == [4]
    p.write_text("a" * (1 << 20) + "\n")
    with pytest.raises(DataError, match="no line break in its first 1 MiB, so not a table of one row per line"):
        read_generic(str(p), Config().data)


@pytest.mark.parametrize("header", [True, False])
def test_a_line_of_more_columns_than_any_table_has_is_refused_in_one_line(tmp_path, header):
    from embedrec.data.sniff import COLUMNS_MAX

    p = tmp_path / "wide.csv"
    p.write_text("user_id,movie_id,rating" + "," * COLUMNS_MAX + "\n" + "1,2,3" + "," * COLUMNS_MAX + "\n")
    cfg = Config().updated({"data.header": header})
    with pytest.raises(DataError) as e:
        read_generic(str(p), cfg.data)
    assert str(e.value) == (f"{p}:1: the {'header line names' if header else 'first line holds'} "
                            f"{COLUMNS_MAX + 3:,} columns, more than the {COLUMNS_MAX:,} a ratings table is read "
                            "with; write the file again with the columns ingest reads (user, movie, rating and "
                            "time, and title and genres where it has them)")
