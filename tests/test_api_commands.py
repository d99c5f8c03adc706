"""The rest of the CLI from Python: ``Model.export`` / ``topk_all`` / ``plot_map`` (``embedrec export``),
``er.verify``, ``er.rebuild_index`` and ``er.tune_dims``: each writes what its command writes, raises typed errors,
and prints nothing (the library never prints; the CLI calls these and writes the rows)."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import embedrec as er
from embedrec.cli import main
from embedrec.errors import ArtifactError, OutputExists, UsageError


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file export wrote but its marker (which names the output folder's run)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != ".embedrec-export.json"}


@pytest.fixture
def unsaved(tmp_path):
    """A TrainedModel from er.train that was never saved (10 users x 8 movies: seconds)."""
    d = tmp_path / "src"
    d.mkdir()
    rows = [f"{u},{m},{1 + (u * m) % 5},{880000000 + u * 100 + m}" for u in range(1, 11) for m in range(1, 9)
            if (u + m) % 3]
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    (d / "movies.csv").write_text("movieId,title,genres\n" + "".join(f"{m},Film {m} ({1990 + m}),Drama\n"
                                                                     for m in range(1, 9)))
    cfg = er.load_config(None, {"data.prepared": str(tmp_path / "ds"), "run.dir": str(tmp_path / "run"),
                                "model.dim": 4, "train.epochs": 2, "train.refit": False,
                                "model.objective": "explicit"})
    return er.train(er.ingest(str(d), cfg), cfg)


@pytest.mark.parametrize("fmt", ["parquet", "npy", "csv"])
def test_model_export_writes_what_the_cli_writes(trained_run, tmp_path, capsys, fmt):
    info = trained_run.opened.export(fmt, tmp_path / "lib")
    assert capsys.readouterr().out == ""
    r = invoke("export", "--to", fmt, "-o", tmp_path / "cli", *trained_run.sets)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == [{**info, "output": str(tmp_path / "cli")}]
    lib, cli = files_of(tmp_path / "lib"), files_of(tmp_path / "cli")
    assert lib.keys() == cli.keys() and "model.json" in lib
    for name in lib:
        if name.endswith(".parquet"):  # the same table (a writer may stamp its file)
            assert pq.read_table(tmp_path / "lib" / name).equals(pq.read_table(tmp_path / "cli" / name))
        else:
            assert lib[name] == cli[name], name
    # the saved TrainedModel exports the run it was saved to: the same files
    trained_run.model.export(fmt, tmp_path / "saved")
    assert files_of(tmp_path / "saved").keys() == lib.keys()
    if fmt == "npy":
        np.testing.assert_array_equal(np.load(tmp_path / "lib" / "movie_factors.npy"), trained_run.opened.factors.movie)
        assert list(np.load(tmp_path / "lib" / "user_ids.npy")) == list(trained_run.opened.user_ids)


def test_model_export_projector_faiss_torch(trained_run, tmp_path, capsys):
    m = trained_run.opened
    assert m.export("projector", tmp_path / "p", sample=20, sample_users=10)["to"] == "projector"
    assert len((tmp_path / "p" / "metadata.tsv").read_text(encoding="utf-8").splitlines()) == 21  # a header + 20
    assert len((tmp_path / "p" / "users_metadata.tsv").read_text().splitlines()) == 10
    m.export("faiss", tmp_path / "f")
    assert {"movies_ip.faiss", "movies_cos.faiss", "index.json", "movie_ids.npy"} <= set(files_of(tmp_path / "f"))
    m.export("torch", tmp_path / "t")
    assert json.loads((tmp_path / "t" / "model.json").read_text())["args"]["n_movies"] == m.n_movies
    assert capsys.readouterr().out == ""


def test_topk_all_and_plot_map(trained_run, tmp_path, capsys):
    m = trained_run.opened
    info = m.topk_all(tmp_path / "lib.csv", k=5, batch_size=64)
    assert info == {"topk_all": str(tmp_path / "lib.csv"), "users": m.n_users, "k": 5}
    r = invoke("export", "--topk-all", tmp_path / "cli.csv", "-k", 5, *trained_run.sets)
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "lib.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    first = (tmp_path / "lib.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    top = m.recommend([int(first[0])], k=5)
    assert int(first[2]) == top.movie_ids[0][0]  # the rows recommend gives
    folder = m.topk_all(tmp_path / "parts", k=3)  # no extension: a folder of Parquet parts
    assert pq.read_table(tmp_path / "parts").num_rows == 3 * folder["users"]
    assert m.plot_map(tmp_path / "m.png") == {"plot": str(tmp_path / "m.png"), "method": "pca"}
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == ""


def test_existing_outputs_need_overwrite(trained_run, tmp_path):
    m = trained_run.opened
    m.export("npy", tmp_path / "e")
    m.topk_all(tmp_path / "t.parquet", k=2)
    m.plot_map(tmp_path / "m.svg")
    for call in (lambda o: m.export("npy", tmp_path / "e", overwrite=o),
                 lambda o: m.topk_all(tmp_path / "t.parquet", k=2, overwrite=o),
                 lambda o: m.plot_map(tmp_path / "m.svg", overwrite=o)):
        with pytest.raises(OutputExists, match=r"already exists; pass overwrite=True"):
            call(False)
        call(True)


def test_bad_arguments_are_usage_errors(trained_run, tmp_path):
    m = trained_run.opened
    for call, match in ((lambda: m.export("xlsx", tmp_path / "x"), r"fmt='xlsx': expected one of 'projector'"),
                        (lambda: m.export("npy", tmp_path / "x", sample=5), "apply to fmt='projector' only"),
                        (lambda: m.export("npy", "-"), "not to standard output"),
                        (lambda: m.export("npy", None), "out must be a path"),
                        (lambda: m.topk_all(tmp_path / "t.txt"), "use a .parquet or .csv file name"),
                        (lambda: m.topk_all(tmp_path / "t.csv", k=0), "k=0"),
                        (lambda: m.plot_map(tmp_path / "m.png", method="mds"), "method='mds'"),
                        (lambda: m.plot_map(tmp_path / "m.txt"), "use a file name ending in .png")):
        with pytest.raises(UsageError, match=match):
            call()
    assert not any(tmp_path.iterdir())  # nothing written


def test_an_unsaved_trained_model_is_told_to_save_first(unsaved, tmp_path):
    from embedrec.export import export_dir, plot_map, topk_all

    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    for call, name in ((lambda: unsaved.export("parquet", tmp_path / "e"), "export"),
                       (lambda: unsaved.topk_all(tmp_path / "t.csv"), "topk_all"),
                       (lambda: unsaved.plot_map(tmp_path / "m.png"), "plot_map")):
        with pytest.raises(UsageError, match=rf"^{name}: this model is in memory only .* model.save\(run_dir\)"):
            call()
    # the lower-level functions, given a Model or an in-memory engine: typed, not an AttributeError (a review)
    with pytest.raises(UsageError, match=r"not TrainedModel; .* call model.export\(...\)"):
        export_dir(unsaved, "parquet", tmp_path / "e")
    with pytest.raises(UsageError, match="built in memory .*model.save"):
        topk_all(unsaved.engine, tmp_path / "t.csv", 3)
    with pytest.raises(UsageError, match="built in memory"):
        plot_map(unsaved.engine, tmp_path / "m.png")
    assert not any(tmp_path.iterdir())


def test_the_new_names_are_functions_beside_the_modules_they_call():
    """A submodule imported becomes an attribute of the package: a function named like one (``er.verify`` beside
    embedrec/verify.py) would turn into the module."""
    import embedrec.export  # noqa: F401
    import embedrec.run  # noqa: F401
    import embedrec.tune  # noqa: F401
    import embedrec.verify  # noqa: F401
    from embedrec import api

    for name in ("tune_dims", "verify_files", "rebuild_index"):
        assert getattr(er, name) is getattr(api, name) and name in er.__all__
    from embedrec import errors  # an output refused is catchable as er.OutputRefused, an ArtifactError

    assert er.OutputExists is errors.OutputExists and issubclass(er.OutputExists, er.OutputRefused)
    assert issubclass(er.OutputRefused, er.ArtifactError) and er.OutputRefused.exit_code == 2


def test_verify_as_the_cli(trained_run, tmp_path, capsys):
    info = er.verify_files(trained_run.cfg.run.dir)
    assert info["what"] == "run" and info["files"] > 10
    assert er.verify_files(None, trained_run.cfg) == info  # default: cfg.run.dir
    assert er.verify_files(trained_run.cfg.data.prepared)["what"] == "dataset"
    r = invoke("verify", *trained_run.sets)
    assert r.exit_code == 0 and f"{info['files']} files ({info['bytes']:,} bytes)" in r.stdout
    copy = tmp_path / "run"
    shutil.copytree(trained_run.cfg.run.dir, copy, symlinks=True)
    target = copy / "current" / "popularity.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="popularity.npy' is missing or does not match its checksum"):
        er.verify_files(copy)
    with pytest.raises(UsageError, match="path must be a path"):
        er.verify_files(trained_run.opened)
    assert capsys.readouterr().out == ""


def test_rebuild_index_as_the_cli(trained_run, tmp_path, capsys):
    copy, other = tmp_path / "run", tmp_path / "cli"
    for d in (copy, other):
        shutil.copytree(trained_run.cfg.run.dir, d, symlinks=True)
    cfg = trained_run.cfg.updated({"index.kind": "hnsw", "index.hnsw_m": 8})
    meta = er.rebuild_index(copy, cfg)
    assert meta["kind"] == "hnsw" and capsys.readouterr().out == ""
    r = invoke("index", "rebuild", *trained_run.sets, "--run", other, "--set", "index.kind=hnsw",
               "--set", "index.hnsw_m=8")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "hnsw" and json.loads(r.stdout).keys() == meta.keys()
    assert f"{other} now serves the new index; the one it served before" in r.stderr  # not 'model' (a first-hour pass)
    with er.open(copy, cfg) as m:  # the rebuilt run answers through its new index
        assert len(m.recommend([trained_run.opened.user_ids[0]], k=5).movie_ids[0]) == 5
        served = m.evaluate("test", [10])["served_index"]
    assert served["kind"] == "hnsw" and 0 < served["recall@10"] <= 1
    # a first-hour review: evaluate's model row ranks exactly, what an hnsw index serves can differ: said
    r = invoke("evaluate", *trained_run.sets, "--run", other, "-k", "10")
    assert r.exit_code == 0 and "recommend serves through this run's hnsw index (recall@10 " in r.stderr, r.stderr
    assert "served_index" not in trained_run.opened.evaluate("test", [10])  # a flat index: the lists are the row's
    with pytest.raises(UsageError, match="cfg must be a Config"):
        er.rebuild_index(copy, {"index.kind": "hnsw"})


def test_tune_dims_as_the_cli(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tune = tmp_path / "tune"
    cfg = trained_run.cfg.updated({"tune.dir": str(tune), "model.dim": 4})  # the fourth root: one trial
    mine = tmp_path / "mine.yaml"
    mine.write_text("model:\n  dim: 4\n")
    with pytest.raises(er.ArtifactError, match="tune-dims did not write it"):  # before any trial
        er.tune_dims(cfg, dims=[4], write=mine)
    with pytest.raises(UsageError, match="dims must be a list of numbers"):
        er.tune_dims(cfg, dims="4,8")
    with pytest.raises(UsageError, match="give a list of whole numbers"):
        er.tune_dims(cfg, dims=[4.5])
    assert not tune.exists()
    res = er.tune_dims(cfg, dims=[4], write=tmp_path / "lib.yaml")
    assert [t["dim"] for t in res["trials"]] == [4] and res["chosen"]["dim"] == 4  # 200 movies: the fourth root
    assert Path(res["results"]).is_file() and capsys.readouterr().out == ""
    r = invoke("tune-dims", *trained_run.sets, "--set", f"tune.dir={tune}", "--set", "model.dim=4", "--dims", "4",
               "--format", "json",
               "--write", tmp_path / "cli.yaml")  # the finished trial kept: nothing trains again
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["chosen"] == json.loads(json.dumps(res["chosen"], default=float))
    assert (tmp_path / "lib.yaml").read_text() == (tmp_path / "cli.yaml").read_text()
    assert (tmp_path / "lib.yaml").read_text().startswith("# written by embedrec tune-dims: dim 4")
    # a first-hour review: the README swept model.config to name the dataset er.ingest wrote, which fixed train's
    # choices in every trial; dataset= names it, as er.train(ds, cfg) takes it
    from embedrec.data.dataset import load_dataset

    elsewhere = cfg.updated({"data.prepared": str(tmp_path / "no-dataset-here")})
    ds = load_dataset(cfg.data.prepared)
    for given in (ds, cfg.data.prepared):
        again = er.tune_dims(elsewhere, dataset=given, dims=[4])  # the kept trial of the same dataset and config
        assert again["chosen"] == res["chosen"]
    with pytest.raises(UsageError, match=r"^tune_dims: dataset is an empty path ''"):
        er.tune_dims(cfg, dataset="", dims=[4])


def test_under_torchrun_only_topk_all_is_exported(trained_run, tmp_path, monkeypatch):
    """The rule lives in the library now: the ranks share topk_all; export and plot_map are refused before
    anything is written, and the CLI says it as before."""
    from embedrec.api import export_run

    monkeypatch.setenv("WORLD_SIZE", "2")
    m = trained_run.opened
    for call in (lambda: m.export("npy", tmp_path / "e"), lambda: m.plot_map(tmp_path / "m.png"),
                 lambda: export_run(trained_run.cfg, to="npy", output=tmp_path / "e", topk_all=tmp_path / "t.csv")):
        with pytest.raises(UsageError, match=r"^under torchrun, export runs topk_all only"):
            call()
    r = invoke("export", "--plot", tmp_path / "m.png", *trained_run.sets)
    assert r.exit_code == 2 and r.stderr == ("error: under torchrun, export runs --topk-all only (each rank scores "
                                             "its users); run --to and --plot in one process\n")
    assert not any(tmp_path.iterdir())


def test_empty_and_wrong_paths_and_lists_are_typed_errors(trained_run, tmp_path):
    """A review: er.load_config('') read '.' as a folder, TrainedModel.save('') published into the current folder
    and save(5) raised a bare TypeError, er.tune_dims(dims=[]) swept the default dimensions."""
    from embedrec.errors import ConfigError

    with pytest.raises(ConfigError, match="the path is empty"):
        er.load_config("")
    tm = er.train(None, trained_run.cfg)
    for bad in ("", 5):
        with pytest.raises(UsageError, match="is not a folder path"):
            tm.save(bad)
    with pytest.raises(UsageError, match=r"dims=\[\] names nothing to sweep"):
        er.tune_dims(trained_run.cfg, dims=[])


def test_export_run_refuses_options_for_an_output_not_asked_for(trained_run, tmp_path):
    """An architecture review: export_run(to="parquet", output=d, k=5, plot_method="umap") ignored k and
    plot_method, where `export --to parquet -o d -k 5` is refused. The rule is the library's now
    (api.export_misapplied); the CLI says it as before, as click's own option errors, and nothing is written."""
    from embedrec.api import export_run

    cfg, out = trained_run.cfg, tmp_path / "out"
    cases = [(dict(to="parquet", output=out, k=5), "k applies to topk_all only", "-k applies to --topk-all only"),
             (dict(to="parquet", output=out, plot_method="umap"), "plot_method applies to plot only",
              "--plot-method applies to --plot only"),
             (dict(to="npy", output=out, sample=5), "sample applies to to='projector' only",
              "--sample applies to --to projector only"),
             (dict(to="npy", output=out, base_url="http://x/"), "base_url applies to to='projector' only",
              "--base-url applies to --to projector only"),
             (dict(plot=tmp_path / "m.png", sample_users=3), "sample_users applies to to='projector' only",
              "--sample-users applies to --to projector only"),
             (dict(topk_all=tmp_path / "t.csv", output=out), "output applies to to only",
              "-o/--output applies to --to only")]
    for kwargs, says, cli in cases:
        with pytest.raises(UsageError, match=f"^{re.escape(says)}$") as e:
            export_run(cfg, **kwargs)
        assert e.value.cli_message() == cli
    with pytest.raises(UsageError, match=r"^nothing to export: give to=FORMAT with output=DIR, topk_all=FILE, or "):
        export_run(cfg, k=5)
    with pytest.raises(UsageError, match=r"^to='npy' needs output=DIR$"):
        export_run(cfg, to="npy", plot_method="tsne")
    r = invoke("export", "--to", "parquet", "-o", out, "-k", "5", *trained_run.sets)
    assert r.exit_code == 2 and r.stderr == "error: -k applies to --topk-all only (see 'main export -h')\n"  # (prog_name)
    r = invoke("export", "--to", "parquet", *trained_run.sets)
    assert r.exit_code == 2 and r.stderr == "error: --to parquet needs -o/--output DIR\n"
    assert not any(tmp_path.iterdir())
    assert export_run(cfg, plot=tmp_path / "m.png")[0]["method"] == "pca"  # None: the default projection


def test_embedrec_ingest_goes_through_the_library(tmp_path, synth_dir, monkeypatch):
    """An architecture review: `embedrec ingest` copied er.ingest's glue and called the ingestion module itself,
    so the two could drift (er.ingest refused a spawned worker's call and empty paths; the command did not). The
    command now calls api.ingest_config and api.prepare, the two halves of er.ingest."""
    from click.testing import CliRunner

    from embedrec import api
    from embedrec.cli import main

    calls = []
    real = api.prepare
    monkeypatch.setattr(api, "prepare", lambda cfg, **kw: calls.append(cfg.data.prepared) or real(cfg, **kw))
    out = tmp_path / "ds"
    r = CliRunner().invoke(main, ["ingest", "-q", str(synth_dir[0]), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    assert calls == [str(out)] and (out / "current" / "manifest.json").is_file()


def test_an_export_refuses_outputs_that_clash_and_a_tilde_no_shell_expanded(trained_run, tmp_path, monkeypatch):
    """A red team: '--to npy -o c7 --topk-all c7 --overwrite' replaced the npy files with the top-K and reported
    both written (without --overwrite, the npy files were left and the command failed); '--output=~/z' (no shell
    expands ~ after '=') made a folder named '~', and '--to csv -o ~/x' was an internal error. Both are refused
    before anything is written."""
    monkeypatch.chdir(tmp_path)
    run = trained_run.cfg.run.dir
    for args in (["--to", "npy", "-o", "c7", "--topk-all", "c7", "--overwrite"],
                 ["--to", "npy", "-o", "c8", "--topk-all", "c8/top.csv"],
                 ["--topk-all", "t.parquet", "--plot", "t.parquet"]):
        r = invoke("export", "--run", run, *args)
        assert r.exit_code == 2 and r.stdout == "", r.stderr
        assert "are the same path, or one holds the other; give each output a path of its own" in r.stderr, r.stderr
    for args in (["--output=~/z", "--to", "npy"], ["--to", "csv", "-o", "~/x"], ["--topk-all", "~/t.csv"]):
        r = invoke("export", "--run", run, *args)
        assert r.exit_code == 2 and "starts with '~' (" in r.stderr and "write the path out" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match=r"^output and topk_all are the same path"):
        er.api.export_run(trained_run.cfg, to="npy", output=tmp_path / "p7", topk_all=tmp_path / "p7")
    with pytest.raises(UsageError, match=r"^open: run_dir starts with '~'"):
        er.open("~/runs/ml-100k")
    # every path option (a review: evaluate --per-user '~/pu.csv' made a folder named '~'); a folder named '~x'
    # that is there is the user's own
    for cmd in (["evaluate", "--run", run, "--per-user", "~/pu.csv"], ["recommend", "--run", "~/r", "--user", "1"]):
        r = invoke(*cmd)
        assert r.exit_code == 2 and "starts with '~' (" in r.stderr and "write the path out" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "~").mkdir()  # a folder named '~' (what the old bug made) does not turn the check off (a review)
    r = invoke("evaluate", "--run", run, "--per-user", "~/pu.csv")
    assert r.exit_code == 2 and "starts with '~' (" in r.stderr and not (tmp_path / "~" / "pu.csv").exists()
    (tmp_path / "~x").mkdir()
    r = invoke("evaluate", "--run", run, "--per-user", "~x/pu.csv", "-q")
    assert r.exit_code == 0 and (tmp_path / "~x" / "pu.csv").is_file(), r.stderr
