"""The bars of a publish's long steps (embedrec/bars.py): train's publish, index rebuild and update-users showed no
bar at all (a scale review, 200K users x 30K movies: 43 s of an HNSW build and 3 s of writing and hashing without a
word, 17 s of als_trend's valid rankings before its first line). Where bars are on (cli.app.progress_enabled: a
terminal with a width, no -q) each step has one on stderr, cleared when it ends; stdout is the same with or without
them, and -q draws none."""


def test_a_count_bar_without_a_total_says_its_count(capsys):
    from embedrec.bars import counting, step, ticking

    with step("x check", None, "searches") as tick:
        f = counting(lambda a: a + 1, tick)
        assert [f(1), f(2)] == [2, 3]
        assert list(ticking("ab", tick)) == ["a", "b"]
    err = capsys.readouterr().err
    assert "x check (searches): 0 [" in err and "\r" in err
    with step(None, None, "searches") as tick:  # no bar: nothing drawn, the function itself
        assert tick is None and counting(len, tick) is len and list(ticking("ab", tick)) == ["a", "b"]
    assert capsys.readouterr().err == ""
