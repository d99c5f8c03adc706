"""``recommend(users, exclude={user: movies})``: each user's own movies left out of that user's list alone
(implicit's per-user ``user_items`` filter), on the lean path and the batch search alike; a mapping refused where
one list applies (a peer-parity review: its keys, user ids, were read as movie ids and 196 of 200 movies stayed)."""

import logging

import numpy as np
import pytest

from embedrec.errors import UsageError
from embedrec.serve.recommender import LEAN_MAX
from tests.test_recommend_lean import _bytes, _model


def _own(m, k=3, seed=1):
    rng = np.random.default_rng(seed)
    users = [int(u) for u in m.user_ids]
    first = m.recommend(users, k=10)
    # each user's own: some of its current top 10 (so the list must change) and a random other movie
    return users, first, {u: [int(x) for x in first.movie_ids[i][rng.choice(10, k, replace=False)]] +
                          [int(rng.choice(m.movie_ids))] for i, u in enumerate(users)}


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_each_users_own_left_out_as_a_one_list_call_leaves_them(explicit, exclude_seen):
    m = _model(explicit)
    users, first, own = _own(m)
    assert len(users) > LEAN_MAX  # the batch's search, and (below) the lean path of one user
    got = m.recommend(users, k=10, exclude=own, exclude_seen=exclude_seen)
    for i, u in enumerate(users):
        listed = [int(x) for x in got.movie_ids[i]]
        assert not set(listed) & set(own[u])
        alone = m.recommend(u, k=10, exclude=own[u], exclude_seen=exclude_seen)
        assert _bytes(alone)[0] == _bytes(got)[i]  # the same movies and score bytes as one list's exclude
    few = [x for s in range(0, len(users), 5) for x in _bytes(m.recommend(users[s:s + 5], k=10, exclude=own,
                                                                             exclude_seen=exclude_seen))]
    assert few == _bytes(got)


def test_users_not_in_the_mapping_keep_their_lists_and_other_keys_are_ignored():
    m = _model(False)
    users = [int(u) for u in m.user_ids][:8]
    base = m.recommend(users, k=10)
    mine = {users[0]: [int(base.movie_ids[0][0])], 10 ** 9: [int(m.movie_ids[0])]}  # an unknown user: unused here
    got = m.recommend(users, k=10, exclude=mine)
    assert _bytes(got)[1:] == _bytes(base)[1:]
    assert int(base.movie_ids[0][0]) not in got.movie_ids[0]
    assert list(got.movie_ids[0][:9]) == list(base.movie_ids[0][1:])


def test_an_unknown_users_popular_list_leaves_out_its_own(caplog):
    m = _model(False)
    pop = m.recommend(123456, k=5, missing="popular")
    drop = [int(x) for x in pop.movie_ids[0][:2]]
    got = m.recommend([123456, "123456"], k=5, missing="popular", exclude={"123456": drop})
    for ids in got.movie_ids:
        assert list(ids[:3]) == list(pop.movie_ids[0][2:])


def test_unknown_movies_warned_in_one_line_and_one_id_taken_as_a_list(caplog):
    m = _model(False)
    u = int(m.user_ids[0])
    top = int(m.recommend(u, k=1).movie_ids[0][0])
    with caplog.at_level(logging.WARNING, "embedrec"):
        got = m.recommend([u, int(m.user_ids[1])], k=5, exclude={u: top, int(m.user_ids[1]): [999999, 888888]})
    assert top not in got.movie_ids[0]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("2 of the 3 movies ") and \
        "names for its users are not a movie of this model" in said[0]


@pytest.mark.parametrize("call", ["similar", "popular", "recommend_features", "candidates"])
def test_a_mapping_refused_where_one_list_applies(call):
    m = _model(False)
    u = int(m.user_ids[0])
    asks = {"similar": lambda: m.similar(int(m.movie_ids[0]), exclude={u: [10]}),
            "popular": lambda: m.popular(exclude={u: [10]}),
            "recommend_features": lambda: m.recommend_new(liked=[10], exclude={u: [10]}),
            "candidates": lambda: m.recommend(u, candidates={u: [10, 20]})}
    with pytest.raises(UsageError) as e:
        asks[call]()
    name = "candidates" if call == "candidates" else "exclude"
    assert str(e.value).startswith(f"{name}= takes one list of movie ids for every list, not a mapping")
    assert ("leaves out each user's own" in str(e.value)) == (name == "exclude")


def test_a_bad_key_or_value_refused():
    m = _model(False)
    u = int(m.user_ids[0])
    with pytest.raises(UsageError, match="exclude="):
        m.recommend([u], exclude={None: [10]})
    with pytest.raises(UsageError, match=r"exclude\[70\]"):
        m.recommend([u, 70], exclude={70: [float("nan")]})
    m.recommend([u], exclude={70: [float("nan")], u: [10]})  # a key not asked is not read (a diff review)


def test_a_mapping_naming_no_user_of_the_model_is_warned(caplog):
    """A diff review: exclude={275: 5, 14: 4}, a {movie: rating} dict (recommend_new's rated= shape), left 196's
    list as it was without a word; so does a file whose user ids are written otherwise ('0196'). Said where no key
    is a user of the model; a map of other real users (a day's file, this user idle that day) is no news (a
    second review: warned on every such request)."""
    m = _model(False)
    u, other = int(m.user_ids[0]), int(m.user_ids[1])
    base = m.recommend(u, k=5)
    with caplog.at_level(logging.WARNING, "embedrec"):
        got = m.recommend(u, k=5, exclude={other: [int(base.movie_ids[0][0])]})
        assert _bytes(got) == _bytes(base) and caplog.text == ""
        got = m.recommend(u, k=5, exclude={int(base.movie_ids[0][0]): 5, int(base.movie_ids[0][1]): 4})
    assert _bytes(got) == _bytes(base)
    assert "names 2 users, none of them a user of this model (the first: " in caplog.text


def test_a_series_of_lists_one_user_under_two_keys_and_an_unknown_users_twins():
    """pandas' groupby(...).apply(list) is a mapping; 196 and '196' one user, their lists joined, for an unknown
    user answered with the most popular movies too (a diff review: the last key won there)."""
    import pandas as pd

    m = _model(False)
    u = int(m.user_ids[0])
    base = [int(x) for x in m.recommend(u, k=5).movie_ids[0]]
    since = pd.DataFrame({"user_id": [u, u], "movie_id": base[:2]})
    got = m.recommend([u], k=5, exclude=since.groupby("user_id")["movie_id"].apply(list))
    assert [int(x) for x in got.movie_ids[0][:3]] == base[2:]
    pop = [int(x) for x in m.recommend(123456, k=5, missing="popular").movie_ids[0]]
    got = m.recommend([123456], k=5, missing="popular", exclude={123456: [pop[0]], "123456": [pop[1]]})
    assert [int(x) for x in got.movie_ids[0][:3]] == pop[2:]


def test_a_stream_leaves_out_each_users_own_as_recommend_does():
    m = _model(False)
    users, _, own = _own(m)
    want = [(list(i), list(s)) for i, s in zip(*(lambda r: (r.movie_ids, r.scores))(m.recommend(users, k=10,
                                                                                                   exclude=own)))]
    got = list(m.recommend_stream([str(u) for u in users], k=10, exclude=own, batch_size=7))
    assert [(list(i), list(s)) for _, i, s in got] == want
    pop = [int(x) for x in m.recommend(123456, k=10, missing="popular").movie_ids[0]]
    mine = list(m.recommend_stream(["123456"], k=10, missing="popular", exclude={123456: pop[:1]}))
    assert [int(x) for x in mine[0][1][:9]] == pop[1:]


# ------------------------------------------------------------------------------ the CLI: --exclude @PAIRS
def _cli(run, *args, input=None):
    from click.testing import CliRunner

    from embedrec.cli import main

    r = CliRunner().invoke(main, ["recommend", *run.sets, "--format", "csv", *args], input=input)
    return r.exit_code, r.stdout, r.stderr


def _listed(out: str) -> dict:
    rows = [line.split(",") for line in out.strip().splitlines()[1:]]
    got: dict = {}
    for row in rows:
        got.setdefault(row[0], []).append(row[2])
    return got


def test_a_file_of_pairs_leaves_each_users_own_out_of_its_list(trained_run, tmp_path):
    code, out, _ = _cli(trained_run, "--users", "-", "-k", "5", input="1\n2\n3\n")
    assert code == 0
    before = _listed(out)
    pairs = tmp_path / "since.csv"  # a rating and a time beside them; user 3 not named; an unknown user's row
    pairs.write_text("user_id,movie_id,rating,timestamp\n" + f"1,{before['1'][0]},5,9\n1,{before['1'][2]},1,9\n"
                     + f"2,{before['2'][0]},4,9\n999999,1,5,9\n")
    code, out, err = _cli(trained_run, "--users", "-", "-k", "5", "--exclude", f"@{pairs}", input="1\n2\n3\n")
    assert code == 0, err
    got = _listed(out)
    assert got["1"][:3] == [before["1"][1], *before["1"][3:]] and before["1"][0] not in got["1"]
    assert got["2"][:4] == before["2"][1:] and got["3"] == before["3"]
    code, out, err = _cli(trained_run, "--user", "1", "-k", "5", "--exclude", f"@{pairs}")
    assert code == 0 and _listed(out)["1"] == got["1"]


def test_a_file_of_pairs_refused_where_it_cannot_apply(trained_run, tmp_path):
    pairs = tmp_path / "since.tsv"
    pairs.write_text("movie_id\tuser_id\n1\t1\n2\n")
    code, _, err = _cli(trained_run, "--user", "1", "--exclude", f"@{pairs}")
    assert code == 2 and err.startswith("error: --exclude @") and \
        f"{pairs}:3: '2' has no user and movie in fields 2 and 1, as the header names them" in err
    pairs.write_text("movie_id\tuser_id\n1\t1\n")
    code, _, err = _cli(trained_run, "--movie", "1", "--exclude", f"@{pairs}")
    assert code == 2 and "error: --exclude @FILE of (user, movie) pairs leaves each user's own movies out" in err
    assert "Traceback" not in err


def test_a_list_emptied_by_a_users_own_says_so(trained_run, tmp_path):
    """A diff review: a list emptied by the pairs file was blamed on the movies the user rated, with advice
    (--include-seen) that changed nothing."""
    code, out, _ = _cli(trained_run, "--user", "1", "-k", "2")
    top = _listed(out)["1"]
    pairs = tmp_path / "p.csv"
    pairs.write_text("user,item\n" + "".join(f"1,{m}\n" for m in top))
    code, out, err = _cli(trained_run, "--user", "1", "--candidates", ",".join(top), "--exclude", f"@{pairs}",
                          "--include-seen")
    assert code == 0 and "one --exclude @FILE leaves out for the user, so the list is empty" in err
    assert "--include-seen" not in err.split("so the list is empty")[1]
    code, out, err = _cli(trained_run, "--users", "-", "--candidates", ",".join(top), "--exclude", f"@{pairs}",
                          input="1\n")
    assert "(this user rated or had left out by --exclude @FILE every movie the filters let through)" in err
