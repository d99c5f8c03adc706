"""docs/python.md is true: each signature block matches the function or method it names, every public function and
``Model`` method has one, and the page's examples run in order against a small trained run.

- A signature block is a ```` ```python ```` block whose every statement reads ``RECEIVER.NAME(parameters)``,
  optionally ``-> RETURNS`` (each one parses as a ``def``): ``er.`` names an ``embedrec`` function, ``m.`` a
  ``Model`` method, ``model.`` a ``TrainedModel`` method, ``cfg.`` a ``Config`` method. Its parameters (names,
  positional or keyword-only, defaults) must be those of ``inspect.signature``, and its ``-> RETURNS`` the
  annotation where it gives one; ``...`` as a default stands for a sentinel (a default that is no value to give).
- Every other ``python`` block is an example: run in the page's order in one namespace, ``m`` the opened run before
  each block, on synthetic MovieLens-like data whose ids and titles are the page's (users 196 and 186, movie 50
  'Star Wars (1977)', 181 'Return of the Jedi (1983)', 242, 302), trained small (als, dim 16, its settings fixed:
  no selection). The free names the page's examples use (``df``, ``movies_df``, ``cfg``, ``history``, ``frame``,
  ``users``, ``n_movies``, ``sys``) are given, as a notebook would hold them.
- ``<!-- needs: KIND -->`` on the line before a block: ``explicit`` runs it with ``m`` an explicit run (and
  ``runs/a``, ``runs/b`` two explicit runs of the same dataset); the kinds in ``SKIPPED`` are not run here (the
  reason beside each; their own test files train such runs); any other kind fails.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path

import pytest

import embedrec as er

DOC = Path(__file__).resolve().parent.parent / "docs" / "python.md"
FENCE = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.S | re.M)
NEEDS = re.compile(r"<!--\s*needs:\s*([\w-]+)\s*-->")
SKIPPED = {
    "features": "a run trained with features.user (tests/test_new_user_features.py trains one)",
    "sweep": "tune_dims and cross_validate train a model per trial or fold (tests/test_tune.py, test_crossval.py)",
}
SENTINEL = object()  # a doc default of `...`


def receivers() -> dict:
    from embedrec.config import Config
    from embedrec.trained import TrainedModel

    return {"er": er, "m": er.Model, "model": TrainedModel, "cfg": Config}


# ------------------------------------------------------------------------------------------ reading the page
def page_blocks(text: str | None = None) -> list[tuple[int, str, str | None]]:
    """(line of the block's first code line, its code, its ``needs:`` kind or None) of each python block."""
    text = DOC.read_text(encoding="utf-8") if text is None else text
    out = []
    for found in FENCE.finditer(text):
        before = text[:found.start()].rstrip("\n").rpartition("\n")[2]
        need = NEEDS.search(before)
        out.append((text.count("\n", 0, found.start()) + 2, found.group(1), need.group(1) if need else None))
    return out


def statements(code: str) -> list[str]:
    """The block's statements: a line at column 0 starts one, an indented line continues it."""
    out: list[str] = []
    for line in code.splitlines():
        if not line.strip():
            continue
        if line[0].isspace() and out:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


SIGNATURE = re.compile(r"(\w+)\.(\w+)(\(.*)", re.S)


def as_signatures(code: str) -> list[tuple[str, str, ast.FunctionDef]] | None:
    """(receiver, name, the statement parsed as a def) of each statement of a signature block; None for an example
    (a statement that is no ``RECEIVER.NAME(parameters)``)."""
    out = []
    for stmt in statements(code):
        m = SIGNATURE.fullmatch(stmt.strip())
        if m is None:
            return None
        rest = re.sub(r"\s+#[^'\"\n]*$", "", m.group(3))  # a comment after the signature
        try:
            tree = ast.parse(f"def {m.group(2)}{rest}: ...")
        except SyntaxError:
            return None
        out.append((m.group(1), m.group(2), tree.body[0]))
    return out or None


def documented(fn: ast.FunctionDef) -> list[tuple[str, str, object]]:
    """(name, kind, default or inspect's empty) of each parameter of a documented signature."""
    a = fn.args

    def value(node):
        v = ast.literal_eval(node)
        return SENTINEL if v is Ellipsis else v

    positional = a.posonlyargs + a.args
    firsts = [inspect.Parameter.empty] * (len(positional) - len(a.defaults)) + [value(d) for d in a.defaults]
    out = [(p.arg, "positional" if p in a.args else "positional-only", d) for p, d in zip(positional, firsts)]
    if a.vararg:
        out.append((a.vararg.arg, "*args", inspect.Parameter.empty))
    out += [(p.arg, "keyword-only", inspect.Parameter.empty if d is None else value(d))
            for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        out.append((a.kwarg.arg, "**kwargs", inspect.Parameter.empty))
    return out


KINDS = {inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional", inspect.Parameter.POSITIONAL_ONLY: "positional-only",
         inspect.Parameter.KEYWORD_ONLY: "keyword-only", inspect.Parameter.VAR_POSITIONAL: "*args",
         inspect.Parameter.VAR_KEYWORD: "**kwargs"}


def target(receiver: str, name: str):
    """The function a signature names, and whether it is a method (its ``self`` not documented)."""
    known = receivers()
    if receiver not in known:
        raise AssertionError(f"receiver '{receiver}.' names nothing this test knows ({', '.join(known)}); add it to "
                             "receivers()")
    obj = getattr(known[receiver], name, None)
    if obj is None or not callable(obj):
        raise AssertionError(f"{receiver}.{name}: no such function")
    return obj, inspect.isclass(known[receiver])


def mismatches(receiver: str, name: str, fn: ast.FunctionDef) -> list[str]:
    """What the documented signature ``fn`` of ``receiver.name`` says otherwise than the code; empty where it is
    true."""
    obj, method = target(receiver, name)
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())[1 if method else 0:]
    actual = [(p.name, KINDS[p.kind], p.default) for p in params]
    doc = documented(fn)
    out = []
    if [(n, k) for n, k, _ in doc] != [(n, k) for n, k, _ in actual]:
        out.append(f"parameters {[f'{n} ({k})' for n, k, _ in doc]} where the code has "
                   f"{[f'{n} ({k})' for n, k, _ in actual]}")
        return out
    for (n, _, d), (_, _, a) in zip(doc, actual):
        if d is SENTINEL:
            literal = a is None or isinstance(a, (bool, int, float, str, bytes, tuple, list, dict))
            if a is inspect.Parameter.empty or literal:
                out.append(f"{n}=...: the code's default is {a!r}, a value to write out (... is for a sentinel)")
        elif d is inspect.Parameter.empty or a is inspect.Parameter.empty:
            if d is not a:
                out.append(f"{n}: documented {'without a default' if d is inspect.Parameter.empty else f'={d!r}'}, "
                           f"the code's {'has none' if a is inspect.Parameter.empty else f'is {a!r}'}")
        elif type(d) is not type(a) or d != a:
            out.append(f"{n}={d!r} where the code's default is {a!r}")
    if fn.returns is not None:
        want = ast.unparse(fn.returns)
        got = sig.return_annotation
        got = getattr(got, "__name__", got) if not isinstance(got, str) else got
        if want != got:
            out.append(f"-> {want} where the code's annotation is {got!r}")
    return out


BLOCKS = page_blocks()
SIGNATURE_BLOCKS = [(line, sigs) for line, code, _ in BLOCKS if (sigs := as_signatures(code))]
EXAMPLES = [(line, code, need) for line, code, need in BLOCKS if not as_signatures(code)]


# ------------------------------------------------------------------------------------------ the signatures
@pytest.mark.parametrize("line, sigs", SIGNATURE_BLOCKS, ids=[f"line{line}" for line, _ in SIGNATURE_BLOCKS])
def test_each_signature_block_is_the_codes_signature(line, sigs):
    wrong = [f"{r}.{n}: {w}" for r, n, fn in sigs for w in mismatches(r, n, fn)]
    assert not wrong, f"docs/python.md:{line}: the signature block drifted from the code:\n" + "\n".join(wrong)


def test_every_public_function_and_model_method_has_a_signature_block():
    """The page's promise, 'each function and Model method has a section': er's functions (the workflow and
    cross_validate), each public method of Model, and TrainedModel.save."""
    from embedrec.trained import TrainedModel

    shown = {(r, n) for _, sigs in SIGNATURE_BLOCKS for r, n, _ in sigs}
    want = {("er", n) for n in (*er._API, *er._WORKFLOWS) if inspect.isfunction(getattr(er, n))}
    want |= {("m", n) for n, v in vars(er.Model).items() if not n.startswith("_") and inspect.isfunction(v)}
    want |= {("model", n) for n, v in vars(TrainedModel).items() if not n.startswith("_") and inspect.isfunction(v)
             and not hasattr(er.Model, n)}
    missing = sorted(f"{r}.{n}" for r, n in want - shown)
    assert not missing, f"docs/python.md has no signature block for {', '.join(missing)}"
    assert len(SIGNATURE_BLOCKS) >= 20 and len(EXAMPLES) >= 25  # the page read as intended (its fences found)


def test_a_drifted_signature_or_an_unknown_marker_is_caught():
    """The checks can fail: a parameter left out, a default changed, a keyword made positional, a return said
    otherwise, a sentinel written as a value; and the needs: markers are the known kinds."""
    def wrong(text: str) -> list[str]:
        (r, n, fn), = as_signatures(text)
        return mismatches(r, n, fn)

    tail = ", candidates=None, exclude=())"
    assert wrong('m.similar_users(user, k=None, *, missing="error"' + tail) == []
    assert "prior" in wrong("m.explain(user=None, movie=None, n=10, *, liked=(), rated=None, ordered=False, "
                            "strict=False)")[0]
    assert wrong('m.similar_users(user, k=5, *, missing="error"' + tail) == ["k=5 where the code's default is None"]
    assert "missing (positional)" in wrong('m.similar_users(user, k=None, missing="error"' + tail)[0]
    assert wrong('m.similar_users(user, k=None, *, missing=...' + tail)[0].startswith("missing=...: the code's "
                                                                                     "default")
    assert wrong('er.open(run_dir=None, cfg=None) -> dict') == ["-> dict where the code's annotation is 'Model'"]
    assert wrong('m.predict(pairs=..., movie=..., *, missing="fallback", uid=..., iid=..., r_ui=None) -> '
                 'Predictions') == []
    assert as_signatures('m.topk_all("out/top10.parquet", k=10)') is None  # an example, not a signature
    assert page_blocks("<!-- needs: explicit -->\n```python\nx = 1\n```\n")[0][1:] == ("x = 1\n", "explicit")
    kinds = {need for _, _, need in BLOCKS if need}
    assert kinds <= {"explicit", *SKIPPED}, f"unknown needs: kinds {kinds - {'explicit', *SKIPPED}}"


# ------------------------------------------------------------------------------------------ the examples
SMALL = {"model.dim": 16, "train.als_reg": 0.05, "train.als_unobserved": 1.0, "train.als_newuser_prior": 0.0,
         "train.als_trend": 0.0, "train.als_recency": 0.0, "train.epochs": 5}
EXPLICIT = {"model.objective": "explicit", "model.dim": 8, "train.epochs": 3, "train.refit": False,
            "train.optimizer": "adam", "train.threads": 1}


def _page_data(folder: Path):
    """Synthetic ratings (300 users x 400 movies) and movies, titled where the page names them."""
    import pandas as pd

    from embedrec.data.synth import write_movielens

    write_movielens(folder, 300, 400, 20000, rank=4, seed=1, noise=0.3)
    df, movies = pd.read_csv(folder / "ratings.csv"), pd.read_csv(folder / "movies.csv")
    for mid, title in ((50, "Star Wars (1977)"), (181, "Return of the Jedi (1983)")):
        movies.loc[movies.movieId == mid, "title"] = title
    rated = set(df.movieId)
    assert {50, 181, 242, 302, 100} <= rated and {196, 186} <= set(df.userId)  # the page's ids have ratings
    return df, movies


def test_the_examples_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMBEDREC_CONFIG", raising=False)  # er.open(run) without cfg reads the defaults
    df, movies_df = _page_data(tmp_path / "synth")
    where = {"data.prepared": "data/prepared/ml-100k", "run.dir": "runs/ml-100k"}
    cfg = er.load_config(None, {**where, **SMALL})
    ds = er.ingest(df, cfg, movies=movies_df, output="data/prepared/ml-100k")
    er.train(ds, cfg).save("runs/ml-100k")
    opened = er.open("runs/ml-100k", cfg)
    (tmp_path / "since.csv").write_text("user_id,movie_id,rating\n196,100,5\n196,181,4\n", encoding="utf-8")
    test = ds.split_frame("test")
    users = sorted(set(test.user_id))
    ns: dict = {"__name__": "docs_python", "er": er, "sys": sys, "cfg": cfg, "df": df, "movies_df": movies_df,
                "history": [181, 100, 50], "users": users, "n_movies": opened.n_movies,
                "frame": opened.recommend(users, k=10).to_frame()[["user_id", "movie_id", "rank"]]}
    explicit = None
    ran, checked, skipped = 0, 0, []
    for line, code, need in EXAMPLES:
        if need in SKIPPED:
            skipped.append(need)
            continue
        if need == "explicit":
            if explicit is None:  # two explicit runs of the page's dataset (against= needs the same one)
                model = er.train(er.load_dataset("data/prepared/ml-100k"), er.load_config(None, {**where, **EXPLICIT}))
                model.save("runs/a")
                model.save("runs/b")
                explicit = er.open("runs/a")
            ns["m"] = explicit
        else:
            assert need is None, f"docs/python.md:{line}: unknown <!-- needs: {need} -->"
            ns["m"] = opened
        checked += run_example(line, code, ns)
        ran += 1
    assert ran >= 20 and sorted(set(skipped)) == sorted(SKIPPED)
    assert checked >= 5  # the lines whose comment says what they give, each checked


def said(code: str) -> dict[int, object]:
    """{line of the block: the value its comment says it gives} for each comment that is a Python literal
    (``m.find_movie("star wars")  # 50``); other comments are prose."""
    import io
    import tokenize

    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            try:
                out[tok.start[0]] = ast.literal_eval(tok.string[1:].strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
    return out


def run_example(line: int, code: str, ns: dict) -> int:
    """Run one example block in ``ns``, a statement at a time; a statement whose comment is a literal must give it
    (an expression's value, an assignment's targets). Any failure names the page's line. Returns the lines
    checked against their comment."""
    want = said(code)
    checked = 0
    for stmt in ast.parse(code).body:
        where, last = f"docs/python.md:{line + stmt.lineno - 1}", stmt.end_lineno
        body = ast.Module([stmt], [])
        ast.increment_lineno(body, line - 1)  # (in place: a traceback names the page's lines)
        try:
            if isinstance(stmt, ast.Expr):
                got = eval(compile(ast.Expression(stmt.value), where, "eval"), ns)
            else:
                exec(compile(body, where, "exec"), ns)
                got = eval(ast.unparse(stmt.targets[0]), ns) if isinstance(stmt, ast.Assign) else None
        except Exception as e:  # noqa: BLE001 (any failure is the page's: said with its line and code)
            pytest.fail(f"{where}: the example raised {type(e).__name__}: {e}\n{ast.unparse(stmt)}")
        if last in want and isinstance(stmt, (ast.Expr, ast.Assign)):
            assert got == want[last], f"{where}: {ast.unparse(stmt)} gives {got!r}, the page says {want[last]!r}"
            checked += 1
    return checked
