"""IdMap: raw ids <-> rows, and the one policy for unknown ids, against hand-computed answers."""

import numpy as np
import pytest

from embedrec.data.ids import IdMap, parse_id
from embedrec.errors import NotFoundError, UsageError


def test_rows_by_binary_search_with_unknowns():
    m = IdMap(np.array([30, 10, 20], np.int64), "user")
    rows, parsed = m.rows(["20", 10, " 30 ", "7", "x", str(2**70)])
    assert rows.tolist() == [2, 1, 0, -1, -1, -1]
    assert parsed == [20, 10, 30, 7, None, None]  # not an integer, or past int64: unknown, never an error
    assert m.row(30) == 0 and m.raw(2) == 20 and isinstance(m.raw(2), int)


def test_string_ids_keep_their_spelling():
    m = IdMap(np.array(["u1", "00196", "b"], dtype=object), "user")
    assert m.rows(["00196", "196", "b"])[0].tolist() == [1, -1, 2]
    assert m.raw(1) == "00196"


def test_one_missing_policy():
    m = IdMap(np.array([1, 2, 3], np.int64), "movie")
    with pytest.raises(NotFoundError) as e:
        m.resolve([1, 9, 8], "error", "pass missing='skip'")
    assert str(e.value) == ("movie '9' is not in the training data (3 movies) (and 1 more unknown ids); "
                            "pass missing='skip'")
    assert e.value.kind == "movie" and e.value.id == 9
    query, rows, unknown = m.resolve(["1", "9"], "skip")
    assert query == [1, 9] and rows.tolist() == [0, -1] and unknown == [9]
    assert m.resolve(["zz"], "popular")[0] == ["zz"]  # unparsable ids are echoed as given
    with pytest.raises(UsageError, match="missing='drop': expected one of 'error', 'skip', 'popular'"):
        m.resolve([1], "drop")


def test_parse_id_bounds():
    assert parse_id("-5", np.dtype(np.int32)) == -5
    assert parse_id(str(2**31), np.dtype(np.int32)) is None
    assert parse_id(" a ", np.dtype(object)) == "a"
    # as str(int) writes it, in ASCII digits: int() also reads '+7', '1_96' (as 196) and other scripts' digits
    assert [parse_id(t, np.dtype(np.int64)) for t in (" +7 ", "-0", "1_96", "\u0661\u0662", "1e3", "", "-")] == \
        [None, 0, None, None, None, None, None]


def test_scan_and_search_agree():
    rng = np.random.default_rng(0)
    ids = rng.permutation(1000)[:500].astype(np.int64)
    queries = [int(x) for x in rng.integers(0, 1000, 40)]
    scan = [int(IdMap(ids, "user").rows([q])[0][0]) for q in queries]  # one id: a scan, nothing sorted
    m = IdMap(ids, "user")
    assert m.rows(queries)[0].tolist() == scan and m._sorted is not None
    assert scan == [int(np.flatnonzero(ids == q)[0]) if (ids == q).any() else -1 for q in queries]


def test_a_word_where_the_ids_are_integers_is_said_to_be_no_id():
    # a first-hour review: `recommend --user abc` said "user 'abc' is not in the training data"
    m = IdMap(np.array([1, 2, 3], np.int64), "user")
    with pytest.raises(NotFoundError) as e:
        m.resolve(["abc"], "error", "pass missing='skip'")
    assert str(e.value) == "'abc' is not a user id of this model (its ids are integers); pass missing='skip'"
    with pytest.raises(NotFoundError, match=r"^user '9' is not in the training data \(3 users\)$"):
        m.row("9")
    # text ids: a word can be one; and what one looks like (a first-hour review: `--user 196` where ids are 'u196')
    with pytest.raises(NotFoundError, match=r"^user 'abc' is not in the training data \(1 user, ids such as 'u1'\)$"):
        IdMap(np.array(["u1"], dtype=object), "user").row("abc")
    with pytest.raises(NotFoundError, match=r"\(4 users, ids such as 'u1', 'u10', 'u2'\)$"):
        IdMap(np.array(["u1", "u10", "u2", "u3"], dtype=object), "user").row("196")


def test_an_integer_id_is_written_as_ingest_reads_one():
    """An API review (session 39): recommend('01') answered for user 1, where ingest refuses '01' as an integer id
    (it would merge ids): '01' and '+1' are no id of an integer map, and the error says how its ids are written."""
    assert [parse_id(t, np.dtype(np.int64)) for t in ("1", " 1\n", "-3", "0", 7, np.int32(7), 196.0)] == \
        [1, 1, -3, 0, 7, 7, 196]
    assert [parse_id(t, np.dtype(np.int64)) for t in ("01", "+1", "-01", "00")] == [None] * 4
    assert parse_id("01", np.dtype(object)) == "01"  # text ids keep their spelling
    m = IdMap(np.array([1, 2, 196]), "user")
    assert m.rows(["1", "01", "+196"])[0].tolist() == [0, -1, -1]
    with pytest.raises(NotFoundError) as e:
        m.row("01")
    assert str(e.value) == ("'01' is not a user id of this model: its ids are integers written without a '+' or "
                            "leading zeros ('1')")
    with pytest.raises(NotFoundError, match=r"'\+196' is not a user id .*\('196'\)"):
        m.row("+196")
    with pytest.raises(NotFoundError, match=r"is not a user id of this model"):  # past int()'s 4,300 digits
        m.row("0" + "1" * 5000)


def test_malformed_and_beyond_the_type_by_hand():
    """What update-users says of an id no user it adds can have (a review: an id beyond int64 was 'not in the
    training data; fix the id'): a word or fraction, an integer written with '+' or leading zeros, one beyond the
    ids' integer type; a lookup still answers the last as an unknown id, and text ids take any of them."""
    m = IdMap(np.array([1, 2, 196]), "user")
    assert m.malformed("abc") == ("'abc' is not a user id of this model (its ids are integers)", "give an integer id")
    assert m.malformed(196.5)[1] == "give an integer id" and m.malformed("-01")[1] == ("write the id without a '+' "
                                                                                       "or leading zeros")
    assert [m.malformed(x) for x in ("196", 196, 196.0, str(2**63), 2**63)] == [None] * 5
    said = "can be no user id of this model: its ids are 64-bit integers, from -9223372036854775808 to " \
           "9223372036854775807"
    for x in (2**63, str(2**63), str(-2**63 - 1), float(2**64), "9" * 5000):
        got = m.beyond_text(x)
        assert got[0].endswith(said) and got[1] == "give an id in that range", x
    assert [m.beyond_text(x) for x in (2**63 - 1, str(-2**63), "abc", "01", 196.5)] == [None] * 5
    assert IdMap(np.array([1, 2], np.int32), "movie").beyond_text(2**31) == (
        "'2147483648' can be no movie id of this model: its ids are 32-bit integers, from -2147483648 to 2147483647",
        "give an id in that range")
    text = IdMap(np.array(["u1"], dtype=object), "user")
    assert [(text.malformed(x), text.beyond_text(x)) for x in ("abc", "01", str(2**63))] == [(None, None)] * 3
    assert m.unknown_text(str(2**63)) == "user '9223372036854775808' is not in the training data (3 users)"


def test_id_number_is_the_integer_an_id_writes_in_any_form():
    from embedrec.data.ids import id_number

    assert [id_number(x) for x in ("0040", "+40", "40.0", " 40 ", 40, np.int64(40), 40.0, "40.")] == ["40"] * 8
    assert [id_number(x) for x in ("-007", "-0", "000", "0", -3)] == ["-7", "0", "0", "0", "-3"]
    # no integer: a word, a fraction, an exponent, another script's digits, a flag, a gap
    assert [id_number(x) for x in ("m40", "40.5", 40.5, "4e1", "\u0664\u0660", True, None, float("nan"), "")] == \
        [None] * 9
    assert id_number("0" * 5000 + "7") == "7"  # by its text: int() refuses 4,300 digits


def test_written_apart_names_the_known_id_each_unknown_one_writes_otherwise():
    from embedrec.data.ids import written_apart

    hits, first = written_apart([818, 5, 40, 7], np.array(["0040", "0818", "1007", "0007"], dtype=object))
    assert hits.tolist() == [True, False, True, True] and first == (818, "0818")  # the first in the given order
    hits, first = written_apart(["0040", "m1", "40.0"], np.array([40, 1007], np.int64))
    assert hits.tolist() == [True, False, True] and first == ("0040", 40)
    assert isinstance(first[1], int)  # a plain Python value, as py_id gives
    hits, first = written_apart(["x", "12"], np.array(["a", "b"], dtype=object))  # nothing alike: no pair
    assert hits.tolist() == [False, False] and first is None
    assert written_apart([], np.array([1, 2]))[1] is None
