"""The bars of a publish's long steps (embedrec/bars.py): train's publish, index rebuild and update-users showed no
bar at all (a scale review, 200K users x 30K movies: 43 s of an HNSW build and 3 s of writing and hashing without a
word, 17 s of als_trend's valid rankings before its first line). Where bars are on (cli.app.progress_enabled: a
terminal with a width, no -q) each step has one on stderr, cleared when it ends; stdout is the same with or without
them, and -q draws none."""

import numpy as np

from embedrec.serve import index as I


def test_an_hnsw_graph_counted_as_it_is_added_is_the_graph_one_call_adds(monkeypatch):
    """The bar's count (serve.index._add_counted) reads the vectors FAISS has linked so far while it adds them on a
    thread of its own: true (never past the total, never back), ending at the total, and the graph is the one
    FAISS builds in one call without a bar (an HNSW graph added in blocks is another graph)."""
    faiss = I.faiss
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # (FAISS's own build is then the same graph each time)
    try:
        x = np.random.default_rng(0).standard_normal((4000, 16)).astype(np.float32)

        def fresh():
            idx = faiss.IndexHNSWFlat(16, 16)
            idx.hnsw.efConstruction = 64
            return idx

        alone = fresh()
        alone.add(x)
        monkeypatch.setattr(I, "POLL_S", 0.002)
        ticks = []
        counted = fresh()
        I._add(counted, x, ticks.append)
        assert sum(ticks) == 4000 and all(t > 0 for t in ticks) and len(ticks) > 2, ticks  # counted as it went
        assert bytes(faiss.serialize_index(counted)) == bytes(faiss.serialize_index(alone))
        assert I._linked(counted.hnsw, 0, 4000) == 4000 and I._linked(counted.hnsw, 0, 10) == 0  # (not its layout)
    finally:
        faiss.omp_set_num_threads(threads)


def test_an_ivf_index_added_in_blocks_is_the_index_one_call_adds(monkeypatch):
    from embedrec.config import load_config

    x = np.random.default_rng(1).standard_normal((3000, 8)).astype(np.float32)
    cfg = load_config(None, ["index.kind=ivf", "index.nlist=16"]).index
    alone = I._raw("ivf", 8, 3000, cfg, I.faiss.METRIC_L2)
    alone.train(x)
    blocks = I.faiss.clone_index(alone)
    alone.add(x)
    monkeypatch.setattr(I, "ADD_BLOCK", 700)
    ticks = []
    I._add(blocks, x, ticks.append)
    assert ticks == [700, 700, 700, 700, 200]
    assert bytes(I.faiss.serialize_index(blocks)) == bytes(I.faiss.serialize_index(alone))


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
