"""The layering rules that keep `embedrec recommend` fast and the package readable:

- no import cycle between embedrec modules, counting imports inside functions (how the heavy layers are reached
  lazily): a cycle through a function's import was missed when only module-level imports counted (an
  architecture review found run <-> serve.index and api <-> shard_als <-> replica);
- every import points down the LAYERS table below, or stays in its layer;
- `import embedrec`, `er.open(...)` and the `recommend` / `predict` / `history` commands never import torch or pandas.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "embedrec"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree: ast.Module):
    """Import nodes executed when the module is imported: at top level, or inside a top-level if/try/with."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _type_checking(node):
            continue  # annotations only: never imported at run time
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for t in targets:
                while t and t not in files:  # embedrec.x.y (an attribute) -> embedrec.x
                    t = t.rpartition(".")[0]
                if t and t != name and t != "embedrec":  # every module imports the package: not an edge
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_graph_is_read():
    g = import_graph()
    assert "embedrec.serve.recommender" in g and "embedrec.model.factors" in g["embedrec.serve.recommender"]
    assert "embedrec.run" in g["embedrec.serve.recommender"]


def test_no_import_cycle_between_modules():
    for graph in (import_graph(), all_imports()):  # module level, then every import wherever it is written
        cycle = find_cycle(graph)
        assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# ------------------------------------------------------------------------------------------ start-up weight

def _exe(name: str) -> Path:
    exe = Path(sys.executable).with_name(name)
    if not exe.exists():
        pytest.skip(f"the {name} console script is not installed next to this Python")
    return exe


def _imported(stderr: str) -> set[str]:
    """Module names from a PYTHONPROFILEIMPORTTIME=1 profile (as tests/test_first_hour.py reads it)."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def _heavy(mods: set[str]) -> set[str]:
    return {m for m in mods if m.split(".")[0] in ("torch", "pandas")}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, synth_dir):
    import embedrec as er

    tmp = tmp_path_factory.mktemp("layers")
    cfg = er.load_config(None, [f"data.prepared={tmp / 'ds'}", f"run.dir={tmp / 'run'}", "model.dim=4",
                                "train.epochs=2", "model.objective=explicit", "train.refit=false",
                                "train.optimizer=adam", "train.threads=1"])
    er.train(er.ingest(str(synth_dir[0]), cfg), cfg).save(cfg.run.dir)
    return Path(cfg.run.dir)


@pytest.mark.parametrize("args,stdin", [
    (["recommend", "--user", "7", "-k", "2"], None),
    (["recommend", "--users", "-", "-k", "2", "--format", "jsonl"], "7\n8\nnobody\n"),
    (["recommend", "--movie", "5", "-k", "2"], None),
    (["recommend", "--liked", "5,6", "-k", "2"], None),
    (["predict", "--pairs", "-"], "7,5\n99999,5\n"),
    (["history", "--user", "7", "-k", "3"], None),
    (["recommend", "--similar-users", "7", "-k", "2"], None),
])
def test_commands_import_neither_torch_nor_pandas(small_run, args, stdin):
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    p = subprocess.run([str(_exe("embedrec")), *args, "--run", str(small_run)], input=stdin, capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    mods = _imported(p.stderr)
    assert "numpy" in mods  # the profile was really taken
    assert not _heavy(mods)
    if args[0] != "history":  # (ARCHITECTURE.md: serving never imports pyarrow; history reads Parquet through it)
        assert not {m for m in mods if m.split(".")[0] == "pyarrow"}, args


def test_the_lazy_names_are_typed_for_static_checkers():
    """A notebook review: no py.typed, and er.open, er.train were Any to static checkers and IDEs. Every public
    name is imported under TYPE_CHECKING (never run: no import cost), and py.typed ships as package data."""
    import tomllib

    import embedrec

    tree = ast.parse((PKG / "__init__.py").read_text(encoding="utf-8"))
    guards = [n for n in tree.body if isinstance(n, ast.If) and _type_checking(n)]
    typed = {a.asname or a.name for g in guards for node in ast.walk(g) if isinstance(node, ast.ImportFrom)
             for a in node.names}
    assert set(embedrec.__all__) - {"__version__"} == typed
    assert (PKG / "py.typed").is_file()
    project = tomllib.loads((PKG.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["embedrec"]
    p = subprocess.run([sys.executable, "-c", "import sys, embedrec; assert 'typing' not in sys.modules; "
                        "assert 'TYPE_CHECKING' not in dir(embedrec)"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]


def test_import_embedrec_and_open_stay_light(small_run):
    code = ("import sys, embedrec as er\n"
            "assert 'numpy' not in sys.modules, 'import embedrec loads numpy'\n"
            f"rec = er.open({str(small_run)!r})\n"
            "top = rec.recommend([7, 'nobody'], k=3, missing='popular')\n"
            "assert len(top) == 2 and top.fallback == [False, True]\n"
            "rec.similar(5, k=2); rec.recommend_new(liked=[5], k=2); rec.predict([(7, 5), (7, 123456)])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pandas'))\n"
            "assert not heavy, heavy\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]


# ------------------------------------------------------------------------------------------ layers
# ARCHITECTURE.md's table, lowest first. Every import between embedrec modules, at module level or inside a
# function, points to the same layer or a lower one.
CLI_MODULES = ("app", "state", "command", "logs", "signals", "options", "config", "ingest", "train", "evaluate", "index", "verify", "recommend", "predict",
               "tune", "export", "crossval", "history", "update")
LAYERS = [
    ("base", {"errors", "argcheck", "bars", "device", "metrics", "threads", "worker_pool", "output", "model.losses", "data.synth", "data.ids", "data.levels", "training.tfevents"}),
    ("utilities", {"fsutil", "fsutil.files", "fsutil.integrity", "fsutil.locks", "fsutil.generations", "fsutil.outputs",
                   "config_values", "config_sections", "config_keys", "config_checks", "config", "config_ingest",
                   "sparse", "training.kernel", "beyond"}),
    ("data and model", {"data", "data.readers", "data.textfiles", "data.rowlines", "data.badlines", "data.parsing", "data.idtext", "data.movietable", "data.sniff", "data.columns", "data.times", "data.parquet", "data.movielens", "data.netflix", "data.recbole", "data.tables",
                        "data.sources", "data.split", "data.given", "data.repeats", "data.ratings", "data.assign", "data.summary", "data.layout", "data.dataset", "data.frames", "model",
                        "model.features", "model.mf", "model.factors"}),
    ("artifacts", {"serve.index", "run_layout", "run_updates", "run_checks", "run_fixes", "run_publish", "run", "run_inputs", "artifacts", "verify"}),
    ("processes", {"distributed", "dist_data", "dist_sync"}),
    ("trainers, evaluation, serving", {"evaluate", "evaluate_paired", "figure_notes", "dist_eval", "training", "training.als", "training.trend", "training.newuser_prior", "training.lowpass", "training.als_ranks", "training.sgd", "training.loop",
                                       "training.minibatch", "serve", "serve.recommender", "serve.recommender_prior", "serve.recommender_foldin",
                                       "serve.catalogue", "serve.foldin", "serve.userfile", "serve.prior", "serve.stream", "serve.explain", "serve.update",
                                       "serve.history", "serve.similar_users", "serve.audience", "serve.diversify"}),
    ("workflows", {"training.fit", "training.checkpoints", "shard_checkpoint", "training.folders", "training.dims", "training.refit", "training.select", "ingestion", "export", "export_projector", "export_tables", "export_topk", "export_plot",
                   "tune", "user_update", "user_update_settings", "user_update_file", "user_update_write", "movie_update"}),
    ("models and results", {"results", "models", "models_lookup", "models_offline", "models_recommend", "models_scores", "models_stream", "trained", "publish", "predict_input", "answers", "list_metrics", "evaluate_against", "evaluate_runs"}),  # what the API answers with; the torchrun trainers build them too
    ("public API", {"api", "train_workflow", "crossval", "shard_als", "replica"}),  # shard_als, replica: the torchrun counterparts of api.train
    ("adapters", {"cli", *(f"cli.{m}" for m in CLI_MODULES), "console", "__main__", ""}),
]


def layer_of(module: str) -> int:
    short = module.removeprefix("embedrec").lstrip(".")
    for i, (_, names) in enumerate(LAYERS):
        if short in names:
            return i
    raise AssertionError(f"module '{module}' is in no layer of tests/test_layers.py LAYERS (and ARCHITECTURE.md)")


def all_imports() -> dict[str, set[str]]:
    """Every embedrec import of every module, wherever it is written (functions included)."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guards = [n for n in ast.walk(tree) if isinstance(n, ast.If) and _type_checking(n)]
        typing_only = {id(inner) for g in guards for inner in ast.walk(g)}  # imports for annotations never run
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("embedrec"):
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                         for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("embedrec")}
        out[name] = {d for d in deps if d != name and d in files and d != "embedrec"}
    return out


def test_every_import_points_down_a_layer_or_stays():
    up = sorted(f"{m} ({LAYERS[layer_of(m)][0]}) -> {d} ({LAYERS[layer_of(d)][0]})"
                for m, deps in all_imports().items() for d in deps if layer_of(d) > layer_of(m))
    assert not up, "imports pointing up a layer:\n" + "\n".join(up)


FSUTIL_ORDER = ["files", "integrity", "locks", "generations", "outputs"]  # embedrec/fsutil/__init__.py's order


def test_fsutil_modules_import_down_their_order_only():
    """fsutil's modules import only those before them (integrity and locks side by side; the layers above check
    the rest), and the package itself holds no names (every caller names the module it uses)."""
    deps = all_imports()
    rank = {f"embedrec.fsutil.{m}": i for i, m in enumerate(FSUTIL_ORDER)}
    rank["embedrec.fsutil.locks"] = rank["embedrec.fsutil.integrity"]
    assert set(rank) == {m for m in deps if m.startswith("embedrec.fsutil.")}
    bad = sorted(f"{m} -> {d}" for m in rank for d in deps[m] if d in rank and rank[d] >= rank[m])
    assert not bad, bad
    assert not deps["embedrec.fsutil"]
    tree = ast.parse((PKG / "fsutil" / "__init__.py").read_text(encoding="utf-8"))
    assert [type(n) for n in tree.body] == [ast.Expr], "fsutil/__init__.py: a docstring only"


RUN_ORDER = ["run_layout", "run_updates", "run_checks", "run_fixes", "run_publish", "run", "run_inputs"]  # run.py's


def test_run_modules_import_down_their_order_only():
    """The run directory's modules (run.py's docstring lists them) import only those before them, wherever the
    import is written, and the serving path reaches none above run.py: run_inputs opens a run, run.py never
    reaches back for it, nor for publish."""
    deps = all_imports()
    rank = {f"embedrec.{m}": i for i, m in enumerate(RUN_ORDER)}
    assert set(rank) == {m for m in deps if m == "embedrec.run" or m.startswith("embedrec.run_")}
    bad = sorted(f"{m} -> {d}" for m in rank for d in deps[m] if d in rank and rank[d] >= rank[m])
    assert not bad, bad
    assert "embedrec.run_publish" not in deps["embedrec.run"] and "embedrec.run" in deps["embedrec.run_inputs"]


TABLE_ORDER = ["sniff", "columns", "times", "parquet", "tables"]  # data/tables.py's docstring's order


def test_generic_table_modules_import_down_their_order_only():
    """data/tables.py's concerns (its docstring names them) import only those before them, wherever the import is
    written: sniff first, columns and times side by side (neither imports the other), parquet over both, and
    tables, the flow, over all four; nothing but data/readers.py (which re-exports read_generic) imports tables."""
    deps = all_imports()
    rank = {f"embedrec.data.{m}": i for i, m in enumerate(TABLE_ORDER)}
    rank["embedrec.data.times"] = rank["embedrec.data.columns"]
    bad = sorted(f"{m} -> {d}" for m in rank for d in deps[m] if d in rank and rank[d] >= rank[m])
    assert not bad, bad
    assert set(rank) - {"embedrec.data.tables"} <= deps["embedrec.data.tables"]
    assert sorted(m for m, d in deps.items() if "embedrec.data.tables" in d) == ["embedrec.data.readers"]


CONFIG_ORDER = ["config_values", "config_sections", "config_keys", "config_checks", "config", "config_ingest"]  # config.py's


def test_config_modules_import_down_their_order_only():
    """The config's modules (config.py's docstring lists them) import only those before them, wherever the import
    is written (an annotation's aside), and the sections and the dotted keys import no other embedrec module: any
    layer may read them."""
    deps = all_imports()
    rank = {f"embedrec.{m}": i for i, m in enumerate(CONFIG_ORDER)}
    assert set(rank) == {m for m in deps if m == "embedrec.config" or m.startswith("embedrec.config_")}
    bad = sorted(f"{m} -> {d}" for m in rank for d in deps[m] if d in rank and rank[d] >= rank[m])
    assert not bad, bad
    assert not deps["embedrec.config_sections"] and not deps["embedrec.config_keys"]


def test_layer_check_catches_an_upward_import():
    assert layer_of("embedrec.api") > layer_of("embedrec.training.fit") > layer_of("embedrec.run")
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("embedrec.nowhere")


def test_one_fit_never_imports_the_selection_around_it():
    """training/select.py (the selection and refit around many fits) builds on training/fit.py (one fit), one layer,
    and the import points one way only."""
    deps = all_imports()
    assert "embedrec.training.fit" in deps["embedrec.training.select"]
    assert "embedrec.training.select" not in deps["embedrec.training.fit"]
    # the dimensions and the refit sit between them: select imports both, neither imports select
    for part in ("embedrec.training.dims", "embedrec.training.refit", "embedrec.training.folders"):
        assert part in deps["embedrec.training.select"] and "embedrec.training.select" not in deps[part]
        assert part not in deps["embedrec.training.fit"]
    for part in ("embedrec.training.dims", "embedrec.training.refit"):
        assert "embedrec.training.fit" in deps[part]
    # the folders need only the checkpoint file names: checkpoints.py, not the fit
    assert "embedrec.training.checkpoints" in deps["embedrec.training.folders"]
    assert "embedrec.training.fit" not in deps["embedrec.training.folders"]
    # a checkpoint's identity is below one fit: fit imports it, it imports neither fit nor select
    assert "embedrec.training.checkpoints" in deps["embedrec.training.fit"]
    assert not {"embedrec.training.fit", "embedrec.training.select"} & deps["embedrec.training.checkpoints"]
    # the evaluation is a layer below: fit imports it, never the reverse
    assert "embedrec.evaluate" in deps["embedrec.training.fit"]
    assert "embedrec.training.fit" not in deps["embedrec.evaluate"]


def test_package_inits_import_nothing():
    """`embedrec.model.factors` must not drag torch in through `model/__init__.py` (nor pandas through `data/`):
    a subpackage's __init__ is a docstring at most (cli/ excepted: it registers the commands)."""
    for init in PKG.glob("*/__init__.py"):
        if init.parent.name == "cli":
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        code = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert not code, f"{init.relative_to(PKG.parent)} has code; keep package __init__ files empty"


def _doc_module(name: str) -> str:
    """A module as ARCHITECTURE.md's entry headings name it ('data/layout.py', 'fsutil/', 'cli/__init__.py',
    '__init__.py') in LAYERS' terms ('data.layout', 'fsutil', 'cli', '')."""
    if name == "__init__.py":
        return ""
    return name.removesuffix(".py").removesuffix("/__init__").rstrip("/").replace("/", ".")


def architecture_sections(text: str) -> dict[str, set[str]]:
    """Each '## ' section of ARCHITECTURE.md: the modules its '### ' entry headings name."""
    import re

    out = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = section.partition("\n")
        out[title.strip().lower()] = {_doc_module(n) for h in re.findall(r"^### (.+)$", body, re.M)
                                      for n in re.findall(r"`([^`]+)`", h)}
    return out


def test_architecture_md_has_an_entry_for_each_module_in_its_layer():
    """ARCHITECTURE.md keeps a section per layer of LAYERS, with an entry for each of its modules and no other:
    a module added, moved or removed is found here until the document says so."""
    sections = architecture_sections((PKG.parent / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    for layer, names in LAYERS:
        assert layer.lower() in sections, f"ARCHITECTURE.md has no '## {layer}' section"
        got = sections[layer.lower()]
        assert got == names, (f"ARCHITECTURE.md's '{layer}' section: no entry for {sorted(names - got)}; "
                              f"entries for modules of another layer or none: {sorted(got - names)}")


def test_architecture_sections_are_read_as_written():
    text = "## Base\n\n### `errors.py`\n\nx\n\n### `data/ids.py`\n\n## Adapters\n\n### `cli/__init__.py`\n### `__init__.py`\n"
    assert architecture_sections(text) == {"base": {"errors", "data.ids"}, "adapters": {"cli", ""}}


# ------------------------------------------------------------------------------------------ one owner of the names
# ARCHITECTURE.md's "one owner for the run folder": run_layout.py names the run folder's files, data/layout.py (with
# data/dataset.py, which writes them) the prepared dataset's; a name a lower layer reads first is that module's,
# imported upward (fsutil/integrity.py: the manifest's; fsutil/outputs.py: the checkpoints' and the refit's folder)
NAME_OWNERS = {"embedrec.run_layout", "embedrec.data.layout", "embedrec.data.dataset", "embedrec.fsutil.integrity",
               "embedrec.fsutil.outputs"}
FILE_NAME = r"[A-Za-z_][A-Za-z0-9_-]*\.(?:npy|json|jsonl|yaml|pt|parquet|faiss)"


def folder_file_names() -> set[str]:
    """The file names run_layout.py and data/layout.py give: each string of theirs (or in a tuple of theirs) that
    is a file's name, and each dataset table's file."""
    import re

    from embedrec import run_layout
    from embedrec.data import layout

    names = {v for module in (run_layout, layout) for value in vars(module).values()
             for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, str) and re.fullmatch(FILE_NAME, v)}
    return names | {layout.table_file(t) for t in (*layout.FILES, *layout.OPTIONAL)}


def named_files(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) for each string in ``source`` that is one of ``names`` whole (a path's part, a set's member, an
    f-string's piece): a docstring or a message that mentions a name is none."""
    return sorted((node.lineno, node.value) for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names)


def test_only_the_layout_modules_write_a_run_or_dataset_file_name():
    names = folder_file_names()
    assert {"manifest.json", "config.yaml", "metrics.json", "user_ids.npy", "users.parquet", "state_dict.pt",
            "movies_ip.faiss", "checkpoint.pt", "checkpoint-dist.json", "train.parquet", "rated_below.parquet"} <= names
    found = [f"{path.relative_to(PKG.parent)}:{line}: {name!r}" for path in sorted(PKG.rglob("*.py"))
             if _module_name(path) not in NAME_OWNERS
             for line, name in named_files(path.read_text(encoding="utf-8"), names)]
    assert not found, ("a run folder's or a dataset's file named outside run_layout.py and data/layout.py (import "
                       "its constant):\n" + "\n".join(found))


def test_a_file_name_written_out_is_found():
    names = {"config.yaml", "manifest.json"}
    code = ('"""Reads config.yaml."""\n'
            'p = run / "config.yaml"\n'
            'q = f"{run / \'manifest.json\'} is damaged (its config.yaml)"\n')
    assert named_files(code, names) == [(2, "config.yaml"), (3, "manifest.json")]
