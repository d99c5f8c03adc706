"""recommend --diversify: maximal marginal relevance re-ranking (embedrec/serve/diversify.py), its picker against
hand-computed picks, lambda 1 as the model's own list byte for byte, and the keyword through the library, the
stream and the CLI."""

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from embedrec.errors import UsageError
from embedrec.serve.diversify import POOL, lambda_arg, mmr, mmr_rows, unit

# four candidates, best first: a and b point the same way, c at right angles to them, d between (cos 0.6 to a and
# b, 0.8 to c); the scores already span [0, 1], so rescaled they are themselves
SCORES = np.array([1.0, 0.9, 0.5, 0.0])
UNITS = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])


def test_mmr_picks_as_computed_by_hand():
    # lambda 0.9: a first (0.9); then b 0.9*0.9 - 0.1*1 = 0.71 beats c 0.9*0.5 - 0 = 0.45 and d 0 - 0.1*0.6;
    # then c 0.45 beats d -0.06
    assert mmr(SCORES, UNITS, 3, 0.9).tolist() == [0, 1, 2]
    # lambda 0.7: a; then c 0.7*0.5 - 0 = 0.35 beats b 0.63 - 0.3 = 0.33 (b is a again) and d 0 - 0.18; then
    # b 0.33 beats d 0 - 0.3*max(0.6, 0.8) = -0.24
    assert mmr(SCORES, UNITS, 3, 0.7).tolist() == [0, 2, 1]
    # k beyond the candidates: every one of them
    assert sorted(mmr(SCORES, UNITS, 10, 0.5).tolist()) == [0, 1, 2, 3]


def test_mmr_rescales_the_scores_over_the_candidates():
    # the same list with its scores shifted and stretched picks the same: only their place in [min, max] counts
    assert mmr(SCORES * 7 + 100, UNITS, 3, 0.7).tolist() == [0, 2, 1]
    # equal scores: relevance tells none apart, so after the first (the earliest) the least similar comes next
    assert mmr(np.ones(4), UNITS, 2, 0.5).tolist() == [0, 2]


def test_mmr_at_lambda_one_is_the_candidates_order():
    rng = np.random.default_rng(0)
    s = np.sort(rng.normal(size=50))[::-1]
    s[10:13] = s[10]  # ties keep their order: the earlier candidate first
    units = rng.normal(size=(50, 8))
    assert mmr(s, units, 20, 1.0).tolist() == list(range(20))


def test_many_lists_at_once_pick_as_each_alone():
    rng = np.random.default_rng(1)
    S = np.sort(rng.normal(size=(6, 12)), axis=1)[:, ::-1].copy()
    S[2, 7:] = np.nan  # a list of 7 candidates among lists of 12
    S[4, :] = np.nan  # and one of none
    V = rng.normal(size=(6, 12, 5))
    V /= np.linalg.norm(V, axis=2, keepdims=True)
    got = mmr_rows(S, V, 9, 0.6)
    for b in range(6):
        n = int((~np.isnan(S[b])).sum())
        alone = mmr(S[b, :n], V[b, :n], 9, 0.6)
        assert got[b][got[b] >= 0].tolist() == alone.tolist() and alone.size == min(9, n)


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, float("nan"), float("inf"), "0.5", True])
def test_lambda_outside_zero_one_is_refused(bad):
    with pytest.raises(UsageError, match=r"diversify=.*give a number in \(0, 1\]"):
        lambda_arg(bad)
    assert lambda_arg(None) is None and lambda_arg(1) == 1.0 and lambda_arg(0.25) == 0.25


def _frame(res):
    return res.to_frame().to_csv(index=False)


def test_python_keyword(trained_run):
    model = trained_run.opened
    users = [model.user_ids[0], model.user_ids[5], model.user_ids[17]]
    plain = model.recommend(users, k=5)
    assert _frame(model.recommend(users, k=5, diversify=1)) == _frame(plain)  # 1: today's list exactly
    got = model.recommend(users, k=5, diversify=0.3)
    wide = model.recommend(users, k=5 * POOL)
    table = model.engine.factors.movie
    differs = False
    for q in range(len(users)):
        rows = model.engine.movie_rows(list(wide.movie_ids[q]))[0]
        at = mmr(wide.scores[q], unit(table, rows), 5, 0.3)  # one list alone, by the pure picker
        want_rows, want_scores = rows[at], np.asarray(wide.scores[q])[at]
        assert list(got.movie_ids[q]) == list(model.engine.movie_ids[want_rows])  # the top 5 x k, re-ranked
        np.testing.assert_array_equal(got.scores[q], want_scores)  # each movie keeps its own score
        assert got.movie_ids[q][0] == plain.movie_ids[q][0]  # the first pick is the model's best
        differs |= list(got.movie_ids[q]) != list(plain.movie_ids[q])
    assert differs  # (a lambda of 0.3 changes some list on this run)
    # through the filters the list has: an excluded movie never comes back from the candidates
    banned = list(wide.movie_ids[0][:3])
    kept = model.recommend(users[:1], k=5, diversify=0.3, exclude=banned)
    assert not set(kept.movie_ids[0]) & set(banned) and len(kept.movie_ids[0]) == 5
    with pytest.raises(UsageError, match="diversify=0"):
        model.recommend(users, k=5, diversify=0)
    # an unknown user's list of the most popular movies (missing='popular') is re-ranked too
    fell = model.recommend(["nobody"], k=5, missing="popular", diversify=0.3)
    top = model.popular(k=5 * POOL)
    rows = model.engine.movie_rows(list(top.movie_ids[0]))[0]
    assert list(fell.movie_ids[0]) == list(model.engine.movie_ids[rows[mmr(top.scores[0], unit(table, rows), 5,
                                                                                0.3)]])


def test_new_user_and_stream(trained_run):
    model = trained_run.opened
    liked = list(model.movie_ids[:4])
    plain = model.recommend_new(liked=liked, k=6)
    assert _frame(model.recommend_new(liked=liked, k=6, diversify=1.0)) == _frame(plain)
    div = model.recommend_new(liked=liked, k=6, diversify=0.3)
    wide = model.recommend_new(liked=liked, k=6 * POOL)
    rows = model.engine.movie_rows(list(wide.movie_ids[0]))[0]
    want = rows[mmr(wide.scores[0], unit(model.engine.factors.movie, rows), 6, 0.3)]
    assert list(div.movie_ids[0]) == list(model.engine.movie_ids[want])
    # a stream's lists are the ones recommend gives the same users
    users = [str(u) for u in model.user_ids[:4]]
    streamed = list(model.recommend_stream(users, k=5, diversify=0.3))
    one = model.recommend(users, k=5, diversify=0.3)
    assert [list(a[1]) for a in streamed] == [list(m) for m in one.movie_ids]
    with pytest.raises(UsageError, match="diversify=2"):
        model.recommend_stream(users, k=5, diversify=2)


def _cli(trained_run, *args):
    from embedrec.cli import main

    return CliRunner().invoke(main, ["recommend", *trained_run.sets, *args], catch_exceptions=False)


def test_cli(trained_run):
    user = str(trained_run.opened.user_ids[3])
    plain = _cli(trained_run, "--user", user, "-k", "5", "--format", "json")
    same = _cli(trained_run, "--user", user, "-k", "5", "--format", "json", "--diversify", "1")
    assert plain.exit_code == same.exit_code == 0 and same.stdout == plain.stdout
    div = _cli(trained_run, "--user", user, "-k", "5", "--format", "json", "--diversify", "0.3")
    assert div.exit_code == 0
    rows = json.loads(div.stdout)  # stdout: the rows alone
    want = trained_run.opened.recommend([user], k=5, diversify=0.3)
    assert [r["movie_id"] for r in rows] == list(want.movie_ids[0]) and [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    streamed = CliRunner().invoke(__import__("embedrec.cli", fromlist=["main"]).main,
                                  ["recommend", *trained_run.sets, "--users", "-", "-k", "5", "--format", "jsonl",
                                   "--diversify", "0.3"], input=f"{user}\n", catch_exceptions=False)
    assert streamed.exit_code == 0
    assert [r["movie_id"] for r in map(json.loads, io.StringIO(streamed.stdout))] == list(want.movie_ids[0])
    liked = ",".join(str(m) for m in trained_run.opened.movie_ids[:4])
    new = _cli(trained_run, "--liked", liked, "-k", "6", "--format", "json", "--diversify", "0.3")
    want = trained_run.opened.recommend_new(liked=liked.split(","), k=6, diversify=0.3)
    assert new.exit_code == 0 and [r["movie_id"] for r in json.loads(new.stdout)] == list(want.movie_ids[0])
    for args, line in ((("--user", user, "--diversify", "0"), "--diversify 0.0: give a number in (0, 1]"),
                       (("--user", user, "--diversify", "1.5"), "--diversify 1.5: give a number in (0, 1]"),
                       (("--movie", str(trained_run.opened.movie_ids[0]), "--diversify", "0.5"),
                        "--diversify does not apply to --movie")):
        bad = _cli(trained_run, *args)
        assert bad.exit_code == 2 and bad.stdout == ""
        assert line in bad.stderr and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_export_topk_all(trained_run, tmp_path):
    from embedrec.cli import main

    def export(name, *more):
        out = tmp_path / name
        r = CliRunner().invoke(main, ["export", *trained_run.sets, "--topk-all", str(out), "-k", "4", *more],
                               catch_exceptions=False)
        return r, out

    plain, a = export("plain.csv")
    same, b = export("one.csv", "--diversify", "1")
    assert plain.exit_code == same.exit_code == 0 and a.read_bytes() == b.read_bytes()
    div, c = export("div.csv", "--diversify", "0.3")
    assert div.exit_code == 0 and json.loads(div.stdout)[0]["diversify"] == 0.3
    import pandas as pd

    got = pd.read_csv(c, dtype={"user_id": str, "movie_id": str})
    model = trained_run.opened
    want = model.recommend(list(model.user_ids), k=4, diversify=0.3).to_frame()
    assert got["movie_id"].tolist() == want["movie_id"].astype(str).tolist()
    bad, _ = export("bad.csv", "--diversify", "0")
    assert bad.exit_code == 2 and "--diversify 0.0: give a number in (0, 1]" in bad.stderr
    alone = CliRunner().invoke(main, ["export", *trained_run.sets, "--plot", str(tmp_path / "m.png"), "--diversify",
                                      "0.5"])
    assert alone.exit_code == 2 and "--diversify applies to --topk-all only" in alone.stderr
