"""Property-based tests (hypothesis) of the parsers of user input: ids, --pairs, --users, --rated (and --liked,
--user-features) and CSV rows. Whatever the text, a parser answers or raises one of the library's typed errors
(embedrec/errors.py) with a message short enough for one terminal line; what can round-trip does."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from embedrec.cli.options import parse_liked, parse_pairs, parse_rated
from embedrec.data.ids import IdMap, parse_id
from embedrec.errors import DataError, EmbedrecError, NotFoundError, UsageError

SCALE = settings.default.max_examples / 100  # 1 as `make test` runs; 20 under `make fuzz` (tests/conftest.py)
FAST = settings(max_examples=int(100 * SCALE), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=int(30 * SCALE), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
BOUND = 300  # characters of an error message: one terminal line, whatever the input held

INT64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
# text as users type it and as files hold it: any code point, plus the separators the parsers split on
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.text(",=\t\n \r#-+.0123456789eEnaif",
                                                                                     max_size=40)
LONG = st.integers(300, 5000).map(lambda n: "9" * n)  # echoed values must be cut (row 17)
NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=",="),
               min_size=1, max_size=12).filter(lambda s: s.strip() == s and s)


def short(e: BaseException, path=None) -> None:
    """The message fits a terminal line, not counting the file's path (the user's; a pytest-xdist worker's
    temporary folder is 40 characters longer than one process's)."""
    n = len(str(e)) - (str(e).count(str(path)) * len(str(path)) if path is not None else 0)
    assert n < BOUND, f"{type(e).__name__}: a {n:,}-character message"



# ------------------------------------------------------------------------------------------ ids

@FAST
@given(INT64, st.sampled_from(["", " ", "\t", "  "]), st.sampled_from(["", " ", "\n", "\r\n"]))
def test_integer_ids_round_trip(v, pre, post):
    assert parse_id(f"{pre}{v}{post}", np.dtype(np.int64)) == v
    assert parse_id(v, np.dtype(np.int64)) == v


@FAST
@given(TEXT | LONG | st.integers().map(str))
def test_any_text_is_an_id_or_none(text):
    v = parse_id(text, np.dtype(np.int64))
    assert v is None or (isinstance(v, int) and -(2 ** 63) <= v < 2 ** 63)
    v32 = parse_id(text, np.dtype(np.int32))
    assert v32 is None or -(2 ** 31) <= v32 < 2 ** 31
    assert parse_id(text, np.dtype(object)) == str(text).strip()


@FAST
@given(st.lists(TEXT | LONG | INT64.map(str), max_size=8), st.sampled_from(["error", "skip", "popular"]))
def test_id_lookup_answers_or_names_the_id(ids, missing):
    m = IdMap(np.array([1, 5, 196, 2 ** 62], dtype=np.int64), "user")
    rows, parsed = m.rows(ids)
    assert rows.shape == (len(ids),) and len(parsed) == len(ids)
    for r, p in zip(rows, parsed):
        assert (r >= 0) == (p in (1, 5, 196, 2 ** 62))
        if r >= 0:
            assert m.ids[r] == p
    try:
        m.resolve(ids, missing)
    except NotFoundError as e:
        assert missing == "error"
        short(e)


# ------------------------------------------------------------------------------------------ option text

@FAST
@given(st.dictionaries(NAME, st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=6))
def test_rated_round_trips(d):
    d = {k: v for k, v in d.items() if not k.startswith('"')}  # a leading quote opens a quoted item (below)
    text = ",".join(f"{k}={v!r}" for k, v in d.items())
    assert parse_rated(text) == d


@FAST
@given(TEXT)
def test_rated_answers_or_refuses(text):
    try:
        out = parse_rated(text)
    except UsageError:
        return
    assert all(isinstance(v, float) for v in out.values())


@SLOW
@given(LONG)
def test_rated_and_pairs_messages_are_bounded(value):
    for call in (lambda: parse_rated(f"50={value}x"), lambda: parse_pairs(value, "--user-features", "age=25")):
        with pytest.raises(UsageError) as e:
            call()
        short(e.value)


@FAST
@given(st.lists(st.tuples(NAME, NAME), max_size=6, unique_by=lambda p: p[0]))
def test_pairs_round_trip(pairs):
    text = ",".join(f"{k}={v}" for k, v in pairs)
    assert parse_pairs(text, "--user-features", "age=25") == pairs
    if pairs:  # a name given twice is refused, not the later value kept
        with pytest.raises(UsageError, match="is given twice"):
            parse_pairs(f"{text},{pairs[0][0]}=x", "--user-features", "age=25")


@FAST
@given(TEXT)
def test_pairs_and_liked_answer_or_refuse(text):
    try:
        parse_pairs(text, "--user-features", "age=25")
    except UsageError:
        pass
    try:
        liked = parse_liked(text)
    except UsageError as e:  # an empty item (or nothing at all) is named, not skipped; a quote left open too
        if "double quote is left open" in str(e):
            assert text.count('"') % 2
            return
        assert "is empty" in str(e) or "no movie ids" in str(e)
        return
    assert liked and all(x == x.strip() and x for x in liked)
    assert '"' in text or all("," not in x for x in liked)  # an item holds a comma only when quoted


@FAST
@given(st.lists(NAME, min_size=1, max_size=8))
def test_liked_round_trips(ids):
    ids = [i for i in ids if not i.startswith('"')] or ["50"]  # a leading quote opens a quoted item (below)
    assert parse_liked(",".join(ids)) == ids


@FAST
@given(st.lists(st.text(st.characters(blacklist_characters="\r\n\x00"), min_size=1).map(str.strip)
                .filter(bool), min_size=1, max_size=6))
def test_liked_quoted_as_csv_round_trips(ids):
    """A red team: an id holding a comma ('a,b', a text id) could not be given to --liked, --rated or --exclude;
    an item in double quotes, as a CSV line quotes it, is one item."""
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="", quoting=csv.QUOTE_ALL).writerow(ids)
    assert parse_liked(buf.getvalue()) == ids
    once = [i for i in dict.fromkeys(ids) if "=" not in i]
    assert parse_rated(",".join('"' + i.replace('"', '""') + '"=5' for i in once)) == {i: 5.0 for i in once}


# ------------------------------------------------------------------------------------------ --pairs, --users

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny implicit model in memory (users 1..30, movies 1..20)."""
    import embedrec as er
    from embedrec.config import load_config

    tmp = tmp_path_factory.mktemp("prop")
    rng = np.random.default_rng(0)
    rows = ["user_id,movie_id,rating,timestamp"]
    for u in range(1, 31):
        for m in rng.choice(np.arange(1, 21), size=12, replace=False):
            rows.append(f"{u},{m},{rng.integers(1, 6)},{1000 + u * 50 + int(m)}")
    (tmp / "r.csv").write_text("\n".join(rows) + "\n")
    cfg = load_config(None, ["model.dim=4", "train.epochs=2", "train.threads=1", "train.als_reg=0.01",
                             "train.refit=false", f"data.prepared={tmp / 'ds'}", f"run.dir={tmp / 'run'}"])
    ds = er.ingest(str(tmp / "r.csv"), cfg, output=tmp / "ds")
    return er.train(ds, cfg)


def _lines_of(data: bytes, name: str = "in.txt"):
    from embedrec.cli.options import _Lines

    return _Lines(io.BytesIO(data), name)


LINE = TEXT | LONG | st.integers(-5, 40).map(str) | INT64.map(str)


@SLOW
@given(pairs=st.lists(st.tuples(LINE, LINE), max_size=6), strict=st.booleans())
@example(pairs=[("0", "0"), ("", "\n,")], strict=False)  # a newline inside a field: 2 pairs, 3 lines
def test_pairs_file_answers_or_refuses_in_one_line(model, pairs, strict):
    from embedrec.api import predict_lines

    text = "".join(f"{u},{m}\n" for u, m in pairs)
    try:
        cols, rows = predict_lines(model, list(_lines_of(text.encode())), "p.csv", strict)
        rows = list(rows)
    except (DataError, NotFoundError) as e:
        short(e)
        assert str(e).startswith("p.csv:")
        return
    # at most a row per line (a generated field may hold a newline, so a pair can be two lines)
    assert cols[:2] == ["user_id", "movie_id"] and len(rows) <= text.count("\n")


@SLOW
@given(pairs=st.lists(st.tuples(st.integers(1, 30), st.integers(1, 20)), min_size=1, max_size=8))
def test_pairs_file_round_trips(model, pairs):
    from embedrec.api import predict_lines

    _, rows = predict_lines(model, [f"{u}\t{m}\n" for u, m in pairs], "p.tsv")
    rows = list(rows)
    want = model.predict(pairs)
    assert [(r["user_id"], r["movie_id"]) for r in rows] == [tuple(p) for p in pairs]
    np.testing.assert_array_equal([r["score"] for r in rows], np.asarray(want.scores, dtype=float))


@SLOW
@given(st.binary(max_size=200) | st.binary(max_size=60).map(lambda b: b"\x1f\x8b" + b))
@example(b"\x1f\x8b")  # gzip's magic alone: a cut-short gzip stream, not an undecodable byte
@example(gzip.compress(b"7\n\xff\n"))  # gzip whose second line is not UTF-8
def test_undecodable_lines_name_file_and_line(data):
    """Bytes that start with gzip's magic are read as gzip (ids.txt.gz, or gzip -c ... | --users -): a damaged
    stream is named as such; anything else that is not UTF-8 names its byte. Either way file:line."""
    try:
        lines = list(_lines_of(data))
    except DataError as e:
        short(e)
        assert str(e).startswith("in.txt:")
        if data[:2] == b"\x1f\x8b":
            assert "gzip stream is damaged" in str(e) or "cannot decode byte" in str(e)
        else:
            assert "cannot decode byte" in str(e)
        return
    text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    assert "".join(lines).replace("\n", "") == text.decode("utf-8").replace("\r\n", "\n").replace("\n", "")


@SLOW
@given(lines=st.lists(LINE, max_size=8))
def test_users_file_answers_known_ids_and_skips_the_rest(model, lines):
    """... and a line with a field separator (a table's row, not one id) is a DataError naming its line."""
    from embedrec.serve.stream import recommend_many

    known, table_row = [], None
    first = True
    for n, x in enumerate(lines, 1):
        t = x.strip()
        if not t or t.startswith("#"):
            continue
        if first:
            first = False
            if t.lower() in ("user_id", "user", "userid", "user id"):
                continue
        v = parse_id(t, np.dtype(np.int64))
        if v is not None and 1 <= v <= 30:
            known.append(v)
        elif table_row is None and any(s in t for s in ",\t;"):
            table_row = n
    answers = recommend_many(model.engine, [x + "\n" for x in lines], 3, name="in.txt")
    if table_row is not None:
        with pytest.raises(DataError) as e:
            list(answers)
        short(e.value)
        assert str(e.value).startswith(f"in.txt:{table_row}: ")
        return
    assert [u for u, _, _, _ in answers] == known


@SLOW
@given(value=LONG)
def test_users_file_strict_message_is_bounded(model, value):
    from embedrec.serve.stream import recommend_many

    with pytest.raises(NotFoundError) as e:
        list(recommend_many(model.engine, ["1\n", value + "\n"], 3, strict=True))
    short(e.value)


# ------------------------------------------------------------------------------------------ CSV rows

RATING = st.integers(1, 10).map(lambda x: x / 2)


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("csv")


def _read(path, **data):
    import dataclasses

    from embedrec.config import Config
    from embedrec.data.readers import read_generic

    return read_generic(str(path), dataclasses.replace(Config().data, **data))


@SLOW
@given(rows=st.lists(st.tuples(INT64.filter(lambda v: v != 0), INT64.filter(lambda v: v != 0), RATING,
                          st.integers(0, 2 ** 40)), min_size=1, max_size=20), sep=st.sampled_from([",", "\t", ";"]))
def test_csv_rows_round_trip(csv_dir, rows, sep):
    p = csv_dir / "rt.csv"
    p.write_text(sep.join(["user_id", "movie_id", "rating", "timestamp"]) + "\n"
                 + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    df = _read(p, timestamp_unit="s").ratings  # (auto would read times from 1e11 as milliseconds: test_ingest)
    assert df["user_id"].tolist() == [r[0] for r in rows]
    assert df["movie_id"].tolist() == [r[1] for r in rows]
    assert df["rating"].tolist() == [r[2] for r in rows]
    assert df["timestamp"].tolist() == [r[3] for r in rows]


FIELD = TEXT | LONG | INT64.map(str) | st.floats().map(repr) | st.sampled_from(["", "nan", "inf", "-inf", "1e400",
                                                                               "0x10", "1_000", " 7 ", '"3"'])


@SLOW
@given(rows=st.lists(st.tuples(FIELD, FIELD, FIELD, FIELD), min_size=1, max_size=6))
def test_csv_rows_parse_or_fail_in_one_line(csv_dir, rows):
    p = csv_dir / "any.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n" + "".join(",".join(r) + "\n" for r in rows))
    try:
        raw = _read(p)
    except DataError as e:
        short(e, p)
        assert str(e).startswith(str(p))
        return
    df = raw.ratings  # parsed: the id columns are integers (ratings are checked by ingest: scale, finite)
    assert len(df) >= 1 and df["user_id"].dtype == np.int64 and df["movie_id"].dtype == np.int64


@SLOW
@given(data=st.binary(min_size=1, max_size=300))
def test_csv_bytes_parse_or_fail_in_one_line(csv_dir, data):
    p = csv_dir / "bytes.csv"
    p.write_bytes(b"user_id,movie_id,rating,timestamp\n" + data)
    try:
        _read(p)
    except DataError as e:
        short(e, p)
        assert "\n" not in str(e)


@SLOW
@given(rows=st.lists(st.sampled_from(["1,2,3,4", "5,6,7", "1,2,3,4,5", "", "a,b,c,d", "1,2,3,4,,"]), min_size=1,
                max_size=6))
def test_field_count_mismatches_are_refused_by_line(csv_dir, rows):
    p = csv_dir / "fields.csv"
    p.write_text("user_id,movie_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    try:
        _read(p)
    except DataError as e:
        short(e)
        assert str(e).startswith(str(p))
    except EmbedrecError as e:  # pragma: no cover - the message says which
        raise AssertionError(f"{type(e).__name__} instead of DataError: {e}") from None


# ------------------------------------------------------------------------------------------ sparse.lex_order

@FAST
@given(st.lists(st.tuples(st.integers(-5, 40), st.integers(-(2 ** 61), 2 ** 61)), max_size=60),
       st.sampled_from([7, 2 ** 40, 2 ** 55, 2 ** 62]))
def test_lex_order_is_lexsort(pairs, width):
    """The packed-key sort gives np.lexsort's order exactly (ties in input order) on each of its paths: one
    packed sort (narrow keys), two (2^55: the pair does not fit 63 bits, each key does), lexsort (2^62)."""
    from embedrec.sparse import lex_order

    major = np.array([p[0] for p in pairs], np.int64)
    minor = np.array([p[1] % width for p in pairs], np.int64)
    assert np.array_equal(lex_order(major, minor), np.lexsort((minor, major)))


def test_lex_order_known_answer():
    from embedrec.sparse import lex_order

    major = np.array([2, 0, 2, 1, 0, 2])
    minor = np.array([5, 9, 5, 0, 1, 3])
    assert lex_order(major, minor).tolist() == [4, 1, 3, 5, 0, 2]


def _float_text_reference(v: float) -> str:
    """float_text as first written: repr of the value rounded to 6 decimals, exponent forms written out."""
    import math

    r = repr(round(v, 6))
    return r if "e" not in r or not math.isfinite(v) or abs(v) >= 1e16 else f"{round(v, 6):.6f}"


@given(st.floats(allow_nan=True, allow_infinity=True) | st.floats(-1e3, 1e3) | st.floats(-1e-3, 1e-3) |
       st.floats(-1, 1).map(lambda x: round(x, 6)) | st.floats(-1, 1).map(lambda x: float(np.float32(x))))
@example(1e-4)
@example(-1e-4)
@example(0.0001000005)
@example(9.9999999e-5)
@example(1e15)
@example(-1e15)
@example(999999999999999.9)
@example(999999999.9999995)
@example(1e9)
@example(-999999999.1234567)
@example(0.0)
@example(-0.0)
@example(0.5)
@example(2.5e-6)
@example(1.0000005)
@example(123456789.1234565)
@example(-0.0000004)
@settings(max_examples=3000, deadline=None)
def test_float_text_is_repr_rounded_to_six_places(v):
    """The faster float_text (the text writer of a list of 1,000 a user spends most of its time on scores)
    writes every float byte for byte as before."""
    from embedrec.output import float_text

    assert float_text(v) == _float_text_reference(v)
