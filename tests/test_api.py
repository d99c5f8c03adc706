"""The public Python API (embedrec/api.py): the README's "From Python" code runs, ids in and ids out, one
policy for unknown ids, predict's fallbacks, and save() writing what `embedrec train` writes."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec.cli import main
from embedrec.errors import NotFoundError, UsageError
from embedrec.model.factors import Factors

from .conftest import repo_pythonpath

README = Path(__file__).resolve().parent.parent / "README.md"
SMALL = ["model.dim=8", "train.epochs=3", "model.objective=explicit", "train.optimizer=adam", "train.threads=1"]


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def readme_python() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## From Python"):]
    section = section[:section.index("\n## ", 5)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_from_python_runs(tmp_path, synth_dir, monkeypatch):
    """The README block as written, on the synthetic data: the default model (a first-hour review: the block
    showed the explicit model, whose lists the README calls poor), the release name replaced by the synthetic
    folder; the ids it uses exist there (300 users, 200 movies) or are unknown."""
    monkeypatch.chdir(tmp_path)
    code = readme_python()
    assert 'er.ingest("ml-100k"' in code and "er.load_config()" in code
    ns: dict = {"__name__": "__main__"}  # as in a notebook
    assert 'rec.find_movie("star wars")' in code  # the synthetic movies are titled 'Movie 50, The'
    code = code.replace('"ml-100k"', repr(str(synth_dir[0]))).replace('"star wars"', '"the movie 50"')
    exec(compile(code, "README.md", "exec"), ns)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})  # a notebook runs it again (a first-hour
    # review, session 39: the second run stopped at export's existing folder)
    # the run is named after the dataset (a notebook review: saving to cfg.run.dir, still runs/ml-100k for one's own
    # file, replaced the first dataset's run with the second's)
    assert ns["run_dir"] == f"runs/{Path(synth_dir[0]).name}" and (tmp_path / ns["run_dir"] / "current").exists()
    assert "ndcg@10" in ns["model"].metrics["splits"]["test"]["model"]
    assert ns["top"].user_ids == [196, 186] and len(ns["top"].movie_ids[0]) == 10
    assert ns["rows"][0]["user_id"] == 196 and ns["rows"][0]["rank"] == 1
    assert ns["pred"].fallback[-1] == "movie_unknown"
    assert len(ns["rec"].recommend([196]).movie_ids[0]) == 20  # the block's cfg (recommend.k 20), given to er.open
    # a peer's lists for every test user, scored above nothing (a notebook review: the block built one user's list,
    # which scored 0.0 with a warning)
    peer, truth = ns["peer"], ns["truth"]
    assert set(peer.user_id) == set(truth.user_id) and len(peer) == 10 * truth.user_id.nunique()
    assert ns["rec"].evaluate("test", lists={"popular": peer})["splits"]["test"]["popular"]["ndcg@10"] > 0


def test_readme_from_python_runs_as_a_script(tmp_path, synth_dir):
    """A first-hour review: the block saved as a file and run with `python block.py` failed at er.tune_dims (its
    trial workers import the script, which ingested and trained again in each, then a TrainingError); the block
    guards itself with `if __name__ == "__main__":` and runs as a script too (in a fresh process, the way a user
    runs it; the synthetic data for ml-100k)."""
    import subprocess
    import sys

    code = readme_python().replace('"ml-100k"', repr(str(synth_dir[0]))).replace('"star wars"', '"the movie 50"')
    (tmp_path / "block.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "EMBEDREC_CACHE": str(tmp_path / "cache"), "PYTHONPATH": repo_pythonpath()}
    env.pop("EMBEDREC_CONFIG", None)
    p = subprocess.run([sys.executable, "block.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and (tmp_path / "tuned.yaml").is_file()
    assert (tmp_path / "runs" / Path(synth_dir[0]).name / "current").exists()


def test_a_notebooks_info_logging_gets_no_faiss_loader_lines():
    """A first-hour pass: with logging.basicConfig(level=INFO), the first recommend printed faiss's loader lines
    ('Could not load library with AVX512 support ...') to the notebook; a level set on that logger is kept."""
    import subprocess
    import sys

    code = ("import logging; logging.basicConfig(level=logging.INFO)\n"
            "import embedrec.serve.index\n"
            "print(logging.getLogger('faiss.loader').level)\n")
    env = {**os.environ, "PYTHONPATH": repo_pythonpath()}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "faiss" not in p.stderr and p.stdout.strip() == "0", (p.stdout, p.stderr)
    p = subprocess.run([sys.executable, "-c", code.replace("\nimport embedrec", "\nlogging.getLogger('faiss.loader')"
                                                          ".setLevel(logging.INFO)\nimport embedrec")],
                       env=env, capture_output=True, text=True, timeout=120)  # theirs: as they set it
    assert "INFO:faiss.loader" in p.stderr and p.stdout.strip() == "20", (p.stdout, p.stderr)


# ------------------------------------------------------------------------------------------ one trained model

@pytest.fixture(scope="module")
def trained(trained_run):
    """The session's run (conftest.trained_run: SMALL and train.refit=false, trained with er.train, saved)."""
    assert set(SMALL) <= set(trained_run.sets) and "train.refit=false" in trained_run.sets
    return trained_run.model, trained_run.opened, trained_run.cfg


def brute_force(model, user_ids, k):
    """Top-k movie ids per user from the numpy factors, movies the user gave in train and valid excluded."""
    f, ds = model.factors, model.dataset
    rows = [int(np.flatnonzero(ds.users["user_id"].to_numpy() == u)[0]) for u in user_ids]
    full = f.user[rows] @ f.movie.T + f.movie_bias + f.user_bias[rows, None] + f.global_mean
    for i, r in enumerate(rows):
        for s in ("train", "valid"):
            part = ds.splits[s]
            full[i, part.movie[part.user == r]] = -np.inf
    top = np.argsort(-full, axis=1, kind="stable")[:, :k]
    movie_ids = ds.movies["movie_id"].to_numpy()
    return [movie_ids[t] for t in top], np.clip(np.take_along_axis(full, top, 1), *f.rating_scale)


def test_known_users_get_the_brute_force_top_k(trained):
    model, rec, _ = trained
    users = [1, 7, 42, 300]
    want_ids, want_scores = brute_force(model, users, 10)
    for m in (model, rec):  # in memory and from the saved run: the same answer
        got = m.recommend(users, k=10)
        assert got.user_ids == users
        for g, w in zip(got.movie_ids, want_ids):
            np.testing.assert_array_equal(g, w)
        np.testing.assert_allclose(np.stack(got.scores), want_scores, rtol=1e-4)
        assert got.unknown == [] and got.fallback == [False] * 4
    assert rec.recommend(7, k=3).user_ids == [7] and rec.recommend("7", k=3).user_ids == [7]  # one id, a str


def test_factors_and_answers_have_short_reprs(trained):
    """A notebook review: ``m.factors`` printed its arrays whole and ``m.answer(Request(...))`` was
    '<embedrec.answers.Answer object at 0x...>': short '<...>' reprs with the shapes, as every other result's."""
    from embedrec.answers import Request

    _, model, _ = trained
    f = model.factors
    assert repr(f).startswith(f"<Factors: {f.n_users:,} users x {f.n_movies:,} movies x dim {f.movie.shape[1]} "
                              f"({f.movie.dtype}), ") and len(repr(f)) < 100
    implicit = Factors(np.zeros((1200, 8), np.float32), np.zeros((5, 8), np.float32), None, None)
    assert repr(implicit) == "<Factors: 1,200 users x 5 movies x dim 8 (float32), implicit>"
    explicit = Factors(np.zeros((3, 2)), np.zeros((4, 2)), np.zeros(3), np.zeros(4), 3.5, True, (1.0, 5.0))
    assert repr(explicit) == "<Factors: 3 users x 4 movies x dim 2 (float64), explicit 1-5, biases>"
    user = model.user_ids[0]
    assert repr(model.answer(Request(similar_users=user, k=2))) == "<Answer: similar_users, <SimilarUsers: 1 query x top-2>>"
    assert repr(model.answer(Request(user=user, k=3))) == "<Answer: user, <Recommendations: 1 query x top-3>>"
    streamed = model.answer(Request(users=[str(user)], k=3))
    assert repr(streamed) == "<Answer: users, a stream, 0 answered so far>"
    list(streamed.stream)
    assert repr(streamed) == "<Answer: users, a stream, 1 answered so far>"


def test_results_are_read_only(trained):
    """A review: top.user_ids.append(186) made len(top) 2 while its rows held one query (top[1] a bare IndexError),
    and p.fallback[0] = 'bogus' reached to_frame(). The lists refuse a change; copies change freely."""
    import copy
    import pickle

    model, _, _ = trained
    top = model.recommend([196, 7], k=3, missing="popular")
    pred = model.predict([(1, 1), (1, 999999)])
    for lst in (top.user_ids, top.query_ids, top.movie_ids, top.scores, top.fallback, top.unknown, pred.user_ids,
                pred.movie_ids, pred.fallback):
        for change in (lambda x: x.append(1), lambda x: x.__setitem__(0, 1), lambda x: x.extend([1]),
                       lambda x: x.pop(), lambda x: x.clear(), lambda x: x.sort(), lambda x: x.__delitem__(0)):
            with pytest.raises(TypeError, match="read-only; copy one"):
                change(lst)
        mine = list(lst)
        mine.append(1)  # a copy is the caller's
        for again in (pickle.loads(pickle.dumps(lst)), copy.copy(lst), copy.deepcopy(lst)):
            assert type(again) is type(lst) and [np.asarray(x).tolist() for x in again] == \
                [np.asarray(x).tolist() for x in lst]
    for arr in (top.scores[0], top.movie_ids[1], pred.scores):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
    assert len(top) == 2 and top.user_ids == [196, 7] and pred.fallback == ["none", "movie_unknown"]
    assert top[:1].user_ids == [196] and pickle.loads(pickle.dumps(top)).user_ids == [196, 7]
    for again in (pickle.loads(pickle.dumps(top)), copy.deepcopy(top)):  # read-only after a copy too (a review)
        assert not again.scores[0].flags.writeable and not again.movie_ids[1].flags.writeable
    assert not pickle.loads(pickle.dumps(pred)).scores.flags.writeable and not copy.deepcopy(pred).scores.flags.writeable
    assert list(top.to_frame()["user_id"].unique()) == [196, 7] and (top.scores[0] + 1).flags.writeable


@pytest.mark.parametrize("which", ["memory", "run"])
def test_unknown_users_under_each_policy(trained, which):
    model, rec, _ = trained
    m = model if which == "memory" else rec
    with pytest.raises(NotFoundError, match=r"^'nobody' is not a user id of this model \(its ids are integers\); ") as e:
        m.recommend([1, "nobody"], k=5)
    assert e.value.kind == "user" and e.value.id == "nobody"
    with pytest.raises(NotFoundError):  # the README bug: include seen movies, unknown user -> the last user's list
        m.recommend(["nobody"], k=5, exclude_seen=False)
    skip = m.recommend([1, "nobody", 2], k=5, missing="skip")
    assert skip.user_ids == [1, 2] and skip.unknown == ["nobody"]
    pop = m.recommend([1, "nobody"], k=5, missing="popular")
    assert pop.user_ids == [1, "nobody"] and pop.fallback == [False, True]
    np.testing.assert_array_equal(pop.movie_ids[1], m.popular(5).movie_ids[0])
    huge = m.recommend([99999999999999999999999], k=5, missing="skip")  # beyond int64: unknown, no OverflowError
    assert len(huge) == 0 and huge.unknown == [99999999999999999999999]
    with pytest.raises(UsageError, match="missing='nope'"):
        m.recommend([1], missing="nope")


def test_row_level_search_refuses_the_unknown_marker(trained):
    _, rec, _ = trained
    rows, _ = rec.engine.user_rows(["nobody"])
    with pytest.raises(UsageError, match="got -1"):
        rec.engine.recommend_rows(rows, 5, include_seen=True)


def test_rows_and_frame(trained):
    _, rec, _ = trained
    top = rec.recommend([1, 2], k=3)
    rows = list(top.to_rows())
    assert [r["user_id"] for r in rows] == [1, 1, 1, 2, 2, 2] and [r["rank"] for r in rows[:3]] == [1, 2, 3]
    assert list(top.to_frame().columns) == ["user_id", "rank", "movie_id", "title", "year", "genres", "score",
                                            "fallback"]
    sim = rec.similar(5, k=4)
    assert sim.query_ids == [5] and 5 not in sim.movie_ids[0] and len(sim.movie_ids[0]) == 4
    assert list(sim.to_rows())[0]["movie_id_query"] == 5
    new = rec.recommend_new(liked=[5, 6], rated={7: 5}, k=4)
    assert not np.isin(new.movie_ids[0], [5, 6, 7]).any()
    with pytest.raises(NotFoundError):
        rec.recommend_new(liked=[123456])


def test_recommend_new_takes_titles_as_similar_does(trained):
    """A first-hour review: recommend_new(liked=['star wars', 172]) left the title out as an unknown id and listed
    Star Wars at rank 4; titles are resolved as similar() and `--liked` resolve them."""
    _, rec, _ = trained
    title = rec.movie(7)["title"]
    by_title = rec.recommend_new(liked=[title, 6], k=5)
    assert list(by_title.movie_ids[0]) == list(rec.recommend_new(liked=[7, 6], k=5).movie_ids[0])
    assert 7 not in by_title.movie_ids[0] and by_title.unknown == []
    rated = rec.recommend_new(rated={title: 5, 6: 4}, k=5)
    assert list(rated.movie_ids[0]) == list(rec.recommend_new(rated={7: 5, 6: 4}, k=5).movie_ids[0])
    with pytest.raises(UsageError, match=r"^rated: movie 7 is rated twice \(as '.*' and 7\); give each movie one"):
        rec.recommend_new(rated={title: 5, 7: 4})
    with pytest.raises(NotFoundError, match="no movie title matches 'zzqq xxkk'"):
        rec.recommend_new(liked=["zzqq xxkk", 6])


def test_movie_ids_joined_by_commas_are_told_that_one_text_names_one_movie(trained):
    """A first-hour review: `recommend --movie 50,181` said only "no movie title matches '50,181' ...; try fewer
    words or the movie id". Where every part is a movie id, the message adds that one --movie takes one movie
    (similar() a list); a text whose parts are not all ids is said as before."""
    _, rec, _ = trained
    with pytest.raises(NotFoundError) as e:
        rec.similar("5, 6")
    assert str(e.value).endswith("try fewer words or the movie id; a text names one movie: give several as a list, "
                                 "['5', '6']"), str(e.value)
    assert e.value.cli_message().endswith("; one --movie takes one movie (in Python, similar() takes a list of "
                                          "them)"), e.value.cli_message()
    assert len(rec.similar(["5", "6"], k=3).movie_ids) == 2  # the list the message offers: two answers
    with pytest.raises(NotFoundError) as e:
        rec.similar("5,999999")
    assert str(e.value).endswith("try fewer words or the movie id"), str(e.value)


def test_similar_in_memory_equals_the_index(trained):
    model, rec, _ = trained
    a, b = model.similar(5, k=10), rec.similar(5, k=10)
    np.testing.assert_array_equal(a.movie_ids[0], b.movie_ids[0])
    np.testing.assert_allclose(a.scores[0], b.scores[0], rtol=1e-4, atol=1e-6)


def test_predict_answers_unknown_ids_from_the_biases(trained):
    model, rec, _ = trained
    f = rec.factors
    u, m = 0, 4  # rows of user 1 and movie 5
    pred = rec.predict([(1, 5), (99999, 5), (1, 99999), ("x", "y")])
    assert pred.fallback == ["none", "user_unknown", "movie_unknown", "both"]
    assert pred.user_ids == [1, 99999, 1, "x"] and pred.movie_ids == [5, 5, 99999, "y"]
    lo, hi = f.rating_scale
    want = [f.predict([u], [m])[0], np.clip(f.global_mean + f.movie_bias[m], lo, hi),
            np.clip(f.global_mean + f.user_bias[u], lo, hi), np.clip(f.global_mean, lo, hi)]
    np.testing.assert_allclose(pred.scores, want, rtol=1e-6)
    np.testing.assert_allclose(model.predict([(1, 5)]).scores, pred.scores[:1], rtol=1e-6)
    assert len(rec.predict([(1, 5), (99999, 5)], missing="skip")) == 1
    with pytest.raises(NotFoundError, match="user '99999'"):
        rec.predict([(99999, 5)], missing="error")


def test_predict_takes_recommends_word_popular_for_its_fallback(trained):
    """An architecture review: recommend's missing='popular' was a UsageError on predict. It is 'fallback' there,
    the same scores and fallback column; another word names both."""
    _, rec, _ = trained
    pairs = [(1, 5), (99999, 5), (1, 99999)]
    want, got = rec.predict(pairs), rec.predict(pairs, missing="popular")
    assert got.fallback == want.fallback == ["none", "user_unknown", "movie_unknown"]
    np.testing.assert_array_equal(got.scores, want.scores)
    assert rec.predict(99999, 5, missing="popular").fallback == ["user_unknown"]
    with pytest.raises(UsageError, match="missing='guess': expected one of 'fallback', 'error', 'skip', 'popular'"):
        rec.predict(pairs, missing="guess")


def test_implicit_fallbacks():
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    plain = Factors(P, Q, None, None)
    s, codes = plain.predict_fallback(np.array([0, -1, 0, -1]), np.array([1, 1, -1, -1]))
    assert codes.tolist() == [0, 1, 2, 3] and np.isfinite(s[0]) and np.isnan(s[1:]).all()
    biased = Factors(P, Q, None, np.arange(4, dtype=np.float32))
    s, _ = biased.predict_fallback(np.array([-1, 0]), np.array([2, -1]))
    assert s[0] == 2.0 and np.isnan(s[1])


def test_cli_predict_shows_the_fallback_column(trained):
    _, _, cfg = trained
    r = invoke("predict", "--run", cfg.run.dir, "--pairs", "-", "--format", "csv", input="1,5\n99999,5\n")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "user_id,movie_id,fallback,score"
    assert lines[1].startswith("1,5,none,") and lines[2].startswith("99999,5,user_unknown,")
    assert "99999" in r.stderr and "fallback user_unknown" in r.stderr


def test_cli_huge_ids_and_many_unknown_users(trained):
    _, _, cfg = trained
    r = invoke("recommend", "--run", cfg.run.dir, "--user", "99999999999999999999999")
    assert r.exit_code == 1 and r.stderr.startswith("error: user '99999999999999999999999' is not in the training")
    r = invoke("recommend", "--run", cfg.run.dir, "--user", "99999999999999999999999", "--fallback", "popular",
               "-k", "2", "--format", "csv")
    assert r.exit_code == 0 and r.stdout.splitlines()[1].startswith("99999999999999999999999,1,")
    ids = "".join(f"{10 ** 22 + i}\n" for i in range(200)) + "1\n"
    r = invoke("recommend", "--run", cfg.run.dir, "--users", "-", "-k", "2", "--format", "csv", input=ids)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    warn = [x for x in r.stderr.splitlines() if not x.startswith("note: this run predicts ratings")]  # explicit
    assert len(warn) == 6 and warn[-1].startswith("200 unknown users skipped in all"), warn


def test_evaluate_matches_the_command(trained):
    model, rec, cfg = trained
    r = invoke("evaluate", "--run", cfg.run.dir, "-k", "10", "-k", "20", "--format", "json")
    assert r.exit_code == 0, r.stderr
    cli = json.loads(r.stdout)["splits"]["test"]["model"]
    assert rec.evaluate("test")["splits"]["test"]["model"] == pytest.approx(cli)
    assert model.evaluate("test", ks=(10, 20))["splits"]["test"]["model"] == pytest.approx(cli)


def test_evaluate_defaults_to_the_runs_own_cutoffs(tmp_path, ml100k_dir):
    """An opened run's evaluate() uses the train.eval_k the run was trained with, as er.train's model does."""
    cfg = er.load_config(None, [f"run.dir={tmp_path / 'run'}", "train.epochs=2", "train.eval_k=[3, 5]"])
    trained_model = er.train(er.ingest(str(ml100k_dir), cfg, output=tmp_path / "ds"), cfg)
    run = trained_model.save()
    want = sorted(trained_model.evaluate("test")["splits"]["test"]["model"])
    assert any(k.endswith("@3") for k in want) and not any(k.endswith("@10") for k in want)
    with er.open(run) as opened:
        assert sorted(opened.evaluate("test")["splits"]["test"]["model"]) == want
        assert any(k.endswith("@10") for k in opened.evaluate("test", ks=10)["splits"]["test"]["model"])


def test_save_writes_what_the_train_command_writes(trained, tmp_path):
    """er.train(...).save(dir) and `embedrec train` on the same data and config: the same files, manifest keys,
    arrays and metrics (single-threaded adam is deterministic)."""
    model, _, cfg = trained
    r = invoke("train", "-q", "--run", tmp_path / "cli", "--set", f"data.prepared={cfg.data.prepared}",
               "--set", "train.refit=false", *[x for s in SMALL for x in ("--set", s)])
    assert r.exit_code == 0, r.stderr
    api_dir = Path(cfg.run.dir) / "current"
    cli_dir = tmp_path / "cli" / "current"
    names = sorted(p.name for p in api_dir.iterdir())
    assert names == sorted(p.name for p in cli_dir.iterdir())
    a = json.loads((api_dir / "manifest.json").read_text())
    b = json.loads((cli_dir / "manifest.json").read_text())
    assert sorted(a) == sorted(b)
    for key in ("model", "n_users", "n_movies", "files", "embeddings_sha256", "best_epoch", "refit"):
        assert a[key] == b[key], key
    untimed = [{k: v for k, v in m["index"].items() if "seconds" not in k} for m in (a, b)]
    assert untimed[0] == untimed[1]
    for name in names:
        if name.endswith(".npy"):
            np.testing.assert_array_equal(np.load(api_dir / name), np.load(cli_dir / name))
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (api_dir, cli_dir))
    for m in (ma, mb):
        m.pop("train_seconds"), m["selection"].pop("seconds"), m["selection"].pop("seconds_to_best_epoch")
    assert ma == mb
    assert len((api_dir / "metrics.jsonl").read_text().splitlines()) == \
        len((cli_dir / "metrics.jsonl").read_text().splitlines())
    assert "dir: " + str(Path(cfg.run.dir)) in (api_dir / "config.yaml").read_text()


def test_the_package_docstrings_example_is_a_script_that_runs_as_written():
    """A notebook review: embedrec/__init__.py's example called er.tune_dims at top level (a script gets a
    TrainingError and its workers' tracebacks: they import the script) and opened the run twice, never closed.
    Its workflow calls sit under `if __name__ == "__main__":`, and every er.open is a with block's."""
    import ast
    import textwrap

    doc = er.__doc__
    code = textwrap.dedent(doc.split("\n", 1)[1].split("\nThe names are exported")[0])  # the indented block
    tree = ast.parse(code)
    guard = [n for n in tree.body if isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)]
    assert len(guard) == 1 and "__main__" in ast.unparse(guard[0].test)
    top = [ast.unparse(n) for n in tree.body if n is not guard[0]]
    assert top == ["import embedrec as er"], top  # nothing else runs when a worker imports the script
    calls = {ast.unparse(n.func) for n in ast.walk(guard[0]) if isinstance(n, ast.Call)}
    assert {"er.tune_dims", "er.train", "er.ingest"} <= calls
    opens = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "er.open"]
    in_with = [item.context_expr for n in ast.walk(tree) if isinstance(n, ast.With) for item in n.items]
    assert opens and all(o in in_with for o in opens)


def test_top_level_names():
    import embedrec.training.fit  # noqa: F401  (importing the trainers' package leaves er.train the function)
    from embedrec import api

    assert er.train is api.train and er.ingest is api.ingest
    assert er.NotFoundError is NotFoundError and "open" in dir(er)
    assert not {"logging", "sys", "types"} & set(dir(er))  # a review: the module's own imports were listed
    with pytest.raises(AttributeError):
        er.no_such_name  # noqa: B018


def test_recommend_stream_equals_recommend_and_writes_every_format(trained):
    """A notebook streams ids through the same code as `recommend --users -`: answers equal `recommend`'s, the
    policy for unknown ids holds, on_batch runs once per batch, and the writers agree on the values."""
    import io
    import json

    _, opened, _ = trained
    users = [int(u) for u in opened.user_ids[:7]]
    lines = ["user_id\n", *[f"{u}\n" for u in users[:3]], "nobody\n", *[f"{u}\n" for u in users[3:]]]
    batches = []
    triples = list(opened.recommend_stream(lines, 4, batch_size=3, on_batch=lambda: batches.append(1)))
    want = opened.recommend(users, 4)
    assert [t[0] for t in triples] == users  # the header skipped, the unknown id skipped
    assert [t[1].tolist() for t in triples] == [list(m) for m in want.movie_ids]  # ids, not rows (a review)
    import copy
    import pickle

    for again in (pickle.loads(pickle.dumps(triples[0])), copy.copy(triples[0])):  # multiprocessing, joblib
        assert again[0] == triples[0][0] and again[1].tolist() == triples[0][1].tolist()
        assert again.rows.tolist() == triples[0].rows.tolist()
    assert len(batches) == 3  # 8 ids in batches of 3
    with pytest.raises(NotFoundError, match=r"<input>:5: 'nobody' is not a user id of this model"):
        list(opened.recommend_stream(lines, 4, missing="error"))
    popular = list(opened.recommend_stream(["nobody\n"], 4, missing="popular"))
    assert popular[0][0] == "nobody" and len(popular[0][1]) == 4
    outs = {}
    for fmt in ("tsv", "jsonl", "json"):
        buf = io.StringIO()
        opened.write_stream(opened.recommend_stream(lines, 4), buf, fmt)
        outs[fmt] = buf.getvalue()
    buf = io.StringIO()  # answers a caller rebuilt as plain tuples of ids: written the same
    opened.write_stream([(u, list(ids), sc) for u, ids, sc in opened.recommend_stream(lines, 4)], buf, "tsv")
    assert buf.getvalue() == outs["tsv"]
    assert [t[1].tolist() for t in want.triples()] == [list(m) for m in want.movie_ids]
    tsv = [line.split("\t") for line in outs["tsv"].splitlines()[1:]]
    jsonl = [json.loads(line) for line in outs["jsonl"].splitlines()]
    assert len(tsv) == len(jsonl) == len(json.loads(outs["json"])) == 4 * len(users)
    assert [r[2] for r in tsv] == [str(r["movie_id"]) for r in jsonl]
    with pytest.raises(UsageError, match="missing"):
        opened.recommend_stream(lines, 4, missing="sometimes")


def test_bad_arguments_raise_usage_errors(trained_run):
    from embedrec.errors import UsageError

    m = trained_run.model
    movie = next(iter(m.popular(1).to_rows()))["movie_id"]
    for call in (lambda: m.recommend_new(rated={movie: "five"}),
                 lambda: m.recommend_new(rated={movie: None}),
                 lambda: m.popular(2.5),
                 lambda: m.popular("5"),
                 lambda: m.popular(2, year_min="abc"),
                 lambda: m.popular(2, year_min=2000, year_max=1990),
                 lambda: m.predict([1, 2]),
                 lambda: m.evaluate("test", ks=[0])):
        with pytest.raises(UsageError):
            call()
    for name in ("dataset_dir", "moved_to"):  # a model in memory evaluates on its Dataset: no folder to read
        with pytest.raises(UsageError, match=f"not {name}; give {name} to er.open"):
            m.evaluate("test", **{name: "elsewhere"})


def test_recommend_stream_takes_ids_as_ints(trained_run):
    m = trained_run.model
    got = [u for u, _, _ in m.recommend_stream([1, 2], k=2)]
    assert [str(u) for u in got] == ["1", "2"]


def test_a_streams_popular_answers_are_flagged_and_written_so(trained_run):
    """Answers of the most popular movies (missing='popular') carry fallback=True, and write_stream's
    fallback_column says so on each row, as the CLI's --fallback popular does; a Recommendations keeps its flags
    through write_stream."""
    import io

    m = trained_run.model
    answers = list(m.recommend_stream([1, 99999], k=2, missing="popular"))
    assert [a.fallback for a in answers] == [False, True] and len(answers[1]) == 3  # still a 3-tuple
    out = io.StringIO()
    m.write_stream(answers, out, "csv", fallback_column=True)
    lines = out.getvalue().splitlines()
    assert lines[0] == "user_id,rank,movie_id,title,year,genres,score,fallback"
    assert [x.rsplit(",", 1)[1] for x in lines[1:]] == ["none", "none", "popular", "popular"]
    out = io.StringIO()
    m.write_stream(m.recommend([1, 99999], k=2, missing="popular"), out, "jsonl", fallback_column=True)
    assert [json.loads(x)["fallback"] for x in out.getvalue().splitlines()] == ["none"] * 2 + ["popular"] * 2


def test_predict_lines_answers_each_batch_before_reading_on(trained_run):
    """An architecture review: predict --pairs held every line before the first answer (recommend --users
    streams). Rows now come a batch at a time: the first batch is answered while the input is still open, and
    on_batch runs between batches; strict still reads everything first. Unknown ids are counted over batches."""
    from embedrec.api import predict_lines

    m = trained_run.model
    users, movies = m.engine.user_ids, m.engine.movie_ids

    def lines():
        yield "user_id,movie_id,true\n"
        for i in range(3):
            yield f"{users[i]},{movies[i]},{i}\n"
        raise RuntimeError("the input is still open")

    flushed = []
    cols, rows = predict_lines(m, lines(), "p.csv", batch=2, on_batch=lambda: flushed.append(True))
    assert cols == ["user_id", "movie_id", "true", "fallback", "score"]
    got = [next(rows), next(rows)]
    assert [r["true"] for r in got] == [0, 1] and not flushed
    assert next(rows)["true"] == 2  # the line read before the input failed is answered first (session 39) ...
    assert flushed == [True]  # ... after the first batch's rows were flushed
    with pytest.raises(RuntimeError, match="still open"):  # then the failure
        next(rows)
    with pytest.raises(RuntimeError, match="still open"):  # strict: nothing before every line is read
        predict_lines(m, lines(), "p.csv", strict=True, batch=2)
    pairs = [f"{users[0]},{movies[0]}\n", f"99999,{movies[1]}\n", f"{users[1]},{movies[1]}\n", f"99998,{movies[0]}\n"]
    _, rows = predict_lines(m, pairs, "p.csv", batch=1)
    assert [r["fallback"] for r in rows] == ["none", "user_unknown", "none", "user_unknown"]


@pytest.mark.parametrize("branch", ["one process", "the ranks' trainers"])
def test_train_run_is_refused_while_another_writer_holds_the_run(trained_run, tmp_path, monkeypatch, branch):
    """An architecture review: under torchrun, api.train_run took no writer lock (only the CLI did), so a Python
    train_run on ranks trained into a run another train held (and a fresh one cleared that writer's checkpoints).
    train_run now holds the lock around both branches: refused with a typed error, and nothing written."""
    import fcntl
    import os

    from embedrec import device
    from embedrec.api import train_run
    from embedrec.errors import ArtifactError

    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)  # another writer (its own open file: flock says taken)
    os.write(fd, b"4242 embedrec train\n")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if branch != "one process":  # the torchrun branch, taken here by a world of one
        monkeypatch.setattr(device, "active", lambda: True)
    try:
        with pytest.raises(ArtifactError, match=r"^another embedrec train is writing '.*run' \(pid 4242\); wait"):
            train_run(trained_run.cfg.updated({"run.dir": str(run), "train.epochs": 1}))
    finally:
        os.close(fd)
    assert [p.name for p in run.iterdir()] == [".lock"]


def test_the_api_module_holds_the_workflow_and_the_public_types_only():
    """An architecture review: api re-exported internals nobody used through it (fold_in_solve, publish_trained,
    Recommender, PREDICT_MISSING, MISSING). It keeps the workflow, the public types (and StreamAnswer, which
    pickles made when it was defined in api find there) and predict_lines, the CLI's predict --pairs. The bodies
    split out of it are found in their own modules, not through api: train_run is train_workflow's (documented as
    embedrec.api.train_run), the DataFrame sources and train_model are not re-exported."""
    from embedrec import api, models, train_workflow, trained

    for gone in ("fold_in_solve", "publish_trained", "Recommender", "PREDICT_MISSING", "MISSING",
                 "frame_source", "train_model", "RATINGS_FRAME"):
        assert not hasattr(api, gone), gone
    assert api.train_run is train_workflow.train_run
    for name in ("Model", "Recommendations", "Predictions", "StreamAnswer"):
        assert getattr(api, name) is getattr(models, name)
    assert api.TrainedModel is trained.TrainedModel
    for name in er.__all__:
        assert getattr(er, name) is not None


@pytest.mark.parametrize("asked, cli, said", [
    ({"user": 1, "strict": True, "fallback": "popular"}, ("--user", "1", "--strict", "--fallback", "popular"),
     "«--strict|strict» does not apply to «--user|user»; it is for «--users, --movies, --liked, --rated and "
     "--audience|users, movies, liked, rated and audience»"),
    ({"users": ["1"], "strict": True, "fallback": "popular"}, None,
     "«--strict and --fallback popular|strict=True and fallback='popular'» conflict"),
    ({"movie": 1, "include_seen": True}, ("--movie", "1", "--include-seen"),
     "«--include-seen|include_seen» does not apply to «--movie|movie»; it is for «--user, --users, --liked, "
     "--rated and --audience|user, users, liked, rated and audience»"),
    ({"movie": 1, "fallback": "popular"}, ("--movie", "1", "--fallback", "popular"),
     "«--fallback|fallback» does not apply to «--movie|movie»"),
    ({"similar_users": 1, "ordered": True}, ("--similar-users", "1", "--ordered"),
     "«--ordered|ordered» does not apply to «--similar-users|similar_users»"),
    ({"user": 1, "liked": [50], "fallback": "popular"}, ("--user", "1", "--liked", "50", "--fallback", "popular"),
     "«--fallback|fallback» answers an unknown «--user|user» with the most popular movies"),
])
def test_answer_refuses_what_recommend_refuses(trained_run, asked, cli, said):
    """An architecture review: the options' rules lived in the CLI alone, so Model.answer answered --movie with
    include_seen, --similar-users with ordered and strict with fallback 'popular', which `recommend` refused.
    Request.checked_mode is the one rule: the library's UsageError and the CLI's exit 2 say the same."""
    from embedrec.answers import Request
    from embedrec.errors import UsageError, cli_terms, library_terms

    with pytest.raises(UsageError) as got:
        trained_run.opened.answer(Request(k=2, **asked))
    assert library_terms(said) in str(got.value), str(got.value)
    if cli is not None:
        r = CliRunner().invoke(main, ["recommend", *cli, "-k", "2", *trained_run.sets])
        assert r.exit_code == 2 and r.stdout == "" and cli_terms(said) in r.stderr, r.stderr
