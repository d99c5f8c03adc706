"""IdMap: raw ids <-> rows, and the one policy for unknown ids, against hand-computed answers."""

import numpy as np
import pytest

from embedrec.data.ids import IdMap, is_finite_number_text, is_number_text, parse_id
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
    assert str(e.value) == ("movie '9' is not in the training data (3 movies) (and 1 more unknown id); "
                            "pass missing='skip'")
    assert e.value.kind == "movie" and e.value.id == 9
    with pytest.raises(NotFoundError) as e:  # a review: an id asked twice was counted twice ('2 more')
        m.resolve([9, 8, 9, 7, 8], "error")
    assert "(and 2 more unknown ids)" in str(e.value) and e.value.ids == [9, 8, 7], str(e.value)
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


@pytest.mark.parametrize("layout", ["in order", "in order, users added after", "shuffled"])
def test_lookups_agree_with_a_search_of_every_id(layout):
    """One id or many, the rows are those a comparison with every id finds: over ids in order (as ingest writes a
    run's: checked by one comparison of neighbours, nothing sorted), in order with ids appended after them (an
    updated run's added users) and shuffled (both sorted once)."""
    rng = np.random.default_rng(0)
    ids = {"in order": np.sort(rng.permutation(1000)[:500]),
           "in order, users added after": np.concatenate([np.sort(rng.permutation(1000)[:500]), [5000, 3000, 4000]]),
           "shuffled": rng.permutation(1000)[:500]}[layout].astype(np.int64)
    ids = ids if layout == "shuffled" else np.unique(ids) if layout == "in order" else ids
    queries = [int(x) for x in rng.integers(0, 1000, 40)] + [3000, 4000, 5000, 6000]
    want = [int(np.flatnonzero(ids == q)[0]) if (ids == q).any() else -1 for q in queries]
    one = [int(IdMap(ids, "user").rows([q])[0][0]) for q in queries]  # a fresh map per id: one user's query
    m = IdMap(ids, "user")
    assert m.rows(queries)[0].tolist() == one == want
    assert (m._sorted[0] is None) == (layout == "in order")  # in order: no sort, no copy


def test_a_longer_text_is_not_cut_to_a_fixed_width_maps_ids():
    """A map of fixed-width texts (numpy's '<U2' of ['u1', 'u2']): 'u1x' was cut to 'u1' by the map's own width
    in a lookup of several ids, and answered as user u1; it is unknown, as one id alone was."""
    m = IdMap(np.array(["u1", "u2", "u3"]), "user")
    assert m.rows(["u1x", "u2", "u3", "u1", "u2"])[0].tolist() == [-1, 1, 2, 0, 1]
    assert IdMap(np.array(["u1", "u2", "u3"]), "user").rows(["u1x"])[0].tolist() == [-1]


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
    # the first id of known that writes the integer; integers past int64 and past 18 digits, compared by text
    big = 10**30
    hits, first = written_apart([f"+{big}", "-0", "7"], np.array(["x", f"00{big}", str(big), "-0.0", "0"], dtype=object))
    assert hits.tolist() == [True, True, False] and first == (f"+{big}", f"00{big}")
    hits, first = written_apart(np.array([10**18, -5], np.int64), np.array([float(10**18), "-005"], dtype=object))
    assert hits.tolist() == [True, True] and first == (10**18, 1e18) and isinstance(first[1], float)
    assert written_apart([2**64 - 1], np.array([2**64 - 1], np.uint64))[1] == (2**64 - 1, 2**64 - 1)


def _written_apart_one_by_one(unknown, known):
    """written_apart as it was before it was vectorised (session 49): each id's id_number looked up in a dict."""
    from embedrec.data.ids import id_number, py_id

    unknown, arr = list(unknown), np.asarray(known)
    keys = arr.astype(str).tolist() if arr.dtype.kind in "iu" else [id_number(k) for k in arr.tolist()]
    index: dict = {}
    for key, k in zip(keys, arr.tolist()):
        if key is not None:
            index.setdefault(key, k)
    hits, first = np.zeros(len(unknown), dtype=bool), None
    for i, u in enumerate(unknown):
        k = index.get(id_number(u))
        if k is not None:
            hits[i] = True
            first = first or (py_id(u), py_id(k))
    return hits, first


def test_written_apart_says_what_comparing_each_id_alone_says():
    """Vectorised (a review: one by one, a million unknown ids against two million took 6.9 s), it says what the
    one-by-one comparison said, on random ids of every form: texts with signs, leading zeros, '.0', whitespace
    (Unicode's too), other scripts' digits, NULs, 70 digits; integers past int64; floats whole, fractional, huge and
    not finite; numpy scalars, flags and gaps; known as an object, an integer, a float or a text array."""
    import random

    from embedrec.data.ids import written_apart

    rnd = random.Random(7)
    spaces = ["", "", " ", "\t", "\xa0", "\u3000", "\x1c", "\x85", "\u200b", "\ufeff"]

    def text():
        if rnd.random() < 0.1:
            return rnd.choice(["x", "m1", "", " ", "\u0664\u0660", "4_0", "1e3", ".0", "40.", "+-4", "- 4", "4\x000",
                               "40\x00", "40.0.0", "40.05", "\u00bd", "\u00b2", "0x10"])
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.choice([1, 1, 2, 18, 19, 70])))
        return (rnd.choice(spaces) + rnd.choice(["", "", "+", "-"]) + rnd.choice(["", "0", "00"]) + digits
                + rnd.choice(["", "", ".", ".0", ".00", ".5"]) + rnd.choice(spaces))

    def value():
        r = rnd.random()
        if r < 0.6:
            return text()
        if r < 0.75:
            return rnd.choice([rnd.randint(-50, 50), rnd.randint(-2**70, 2**70), 10**18, -(10**18) + 1])
        if r < 0.85:
            return rnd.choice([float(rnd.randint(-50, 50)), 0.5, float("nan"), float("inf"), -0.0, 1e18, 1e20, 1e300])
        return rnd.choice([None, True, np.bool_(False), np.int64(rnd.randint(-50, 50)), np.str_(text()),
                           np.float32(3.0), np.uint8(7), np.uint64(2**64 - 1)])

    def ints(n, dtype=np.int64):
        return np.array([rnd.choice([rnd.randint(-60, 60), 10**18 - 1, -(10**18)]) for _ in range(n)], dtype)

    def known_ids(n):
        kind = rnd.randrange(5)
        if kind == 0:
            return np.array([value() for _ in range(n)] + [None], dtype=object)[:n]
        if kind == 1:
            return ints(n)
        if kind == 2:
            return np.array([text() for _ in range(n)], dtype=str)
        if kind == 3:
            return np.array([rnd.choice([40.0, 0.5, float("nan"), 1e20, -3.0]) for _ in range(n)])
        return np.array([rnd.randint(0, 60) for _ in range(n)], dtype=np.uint8)

    def unknown_ids(m):
        kind = rnd.randrange(3)
        if kind == 0:
            return [value() for _ in range(m)]
        return ints(m) if kind == 1 else np.array([text() for _ in range(m)] + [None], dtype=object)[:m]

    for _ in range(1500):
        known, unknown = known_ids(rnd.randint(0, 30)), unknown_ids(rnd.randint(0, 30))
        want, got = _written_apart_one_by_one(unknown, known), written_apart(unknown, known)
        assert got[0].tolist() == want[0].tolist() and got[1] == want[1], (unknown, known)
        assert [type(x) for x in got[1] or ()] == [type(x) for x in want[1] or ()]


@pytest.mark.parametrize("ids", [[30, 10, 20, 10, 40], ["u3", "u1", "u2", "u1", "u4"], [10, 20, 30, 30, 40]])
def test_an_id_held_twice_is_refused_by_any_lookup(ids):
    """A red team: a re-sealed run's user_ids.npy holding an id twice was served, the first of its rows answered
    for both. Session 51 left a lookup of a few ids (a scan) refusing it only where it was one of them; every lookup
    now checks the whole map once (check_unique) and refuses it whichever ids are asked, naming both rows: damage
    of the run's file where the map has a source, the caller's ids (UsageError) otherwise; in order too (a sorted
    table whose neighbours are equal)."""
    from embedrec.errors import ArtifactError

    a = np.array(ids, dtype=object if isinstance(ids[0], str) else np.int64)
    twice, other = ids[3], ids[4]
    first, second = ids.index(twice), 3
    for asked in ([twice], [other], [ids[0], ids[2], ids[4], ids[0], ids[2]]):
        with pytest.raises(UsageError, match=rf"^the user ids hold {twice} twice \(rows {first} and {second}\); give "
                                             "each user an id of its own$"):
            IdMap(a, "user").rows(asked)
        m = IdMap(a, "user", ("run 'r': user_ids.npy", "train again"))
        with pytest.raises(ArtifactError, match=rf"^run 'r': user_ids.npy holds user id {twice} twice \(rows {first} "
                                                rf"and {second}\); train again$"):
            m.rows(asked)
    if a.dtype.kind == "i":  # a word where the ids are integers: no id of the map asked, nothing looked up
        assert IdMap(a, "user").rows(["abc"])[0].tolist() == [-1]
    unique = IdMap(np.array(ids[:3], dtype=a.dtype), "user")
    order = unique.check_unique()[0]
    assert order is None if ids[:3] == sorted(ids[:3]) else \
        order.tolist() == np.argsort(unique.ids, kind="stable").tolist()


@pytest.mark.parametrize("text,number,finite", [
    ("5", True, True), (" 4.5 ", True, True), ("1e3", True, True), ("-3", True, True), (7, True, True),
    ("nan", True, False), ("NaN", True, False), ("inf", True, False), ("-Infinity", True, False),
    ("x", False, False), ("", False, False), (" ", False, False), ("sku-0111", False, False),
])
def test_number_texts(text, number, finite):
    """One pair of helpers for "is this field a number": any float() reads (a header's field that is data,
    predict's first line), and a finite one (a --liked line's count: 'inf' there is a word)."""
    assert is_number_text(text) is number and is_finite_number_text(text) is finite


def test_a_whole_float_is_a_text_id_s_integer_as_it_is_an_integer_id():
    """A notebook review: on a text-id model the int 1 found user '1' and 1.0 did not ('user 1.0'), where the
    docs say a whole-number float is that integer id."""
    m = IdMap(np.array(["1", "007", "u2"], dtype=object), "user")
    assert m.rows([1.0, np.float32(1.0), np.int64(1), 1, "1", 7.0, 1.5])[0].tolist() == [0, 0, 0, 0, 0, -1, -1]
    written = IdMap(np.array(["1.0", "2.0", "u"], dtype=object), "user")  # ids written '1.0' (a diff review)
    assert written.rows([1.0, 2.0, "1.0", 1])[0].tolist() == [0, 1, 0, -1]


def test_an_int_asked_of_a_text_map_is_told_its_zero_padded_id():
    """An own-data review: rec.similar(4) on a text-id run named no '00004', where similar('4') and the CLI did."""
    m = IdMap(np.array(["00004", "u2"], dtype=object), "movie")
    for asked in (4, "4"):
        with pytest.raises(NotFoundError, match=r"did you mean '00004' \(the same but for its leading zeros\)"):
            m.row(asked)
