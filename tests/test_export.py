import json
import os

import numpy as np
import pandas as pd
import pytest

from embedrec.errors import ArtifactError, UsageError
from embedrec.export import export_dir, plot_map, topk_all
from embedrec.serve.recommender import Recommender
from embedrec.serve.stream import as_rows, recommend_many


@pytest.fixture(scope="module")
def rec(tmp_path_factory, synth_dir):
    from embedrec.api import train_run
    from embedrec.config import Config
    from embedrec.ingestion import ingest

    tmp = tmp_path_factory.mktemp("export")
    d = tmp / "data"
    d.mkdir()
    # titles with a tab and non-ASCII characters
    (d / "ratings.csv").write_text((synth_dir[0] / "ratings.csv").read_text())
    movies = (synth_dir[0] / "movies.csv").read_text().splitlines()
    movies[1] = '1,"Amélie\twith\ttabs 東京 (2001)",Comedy|Romance'
    (d / "movies.csv").write_text("\n".join(movies) + "\n")
    cfg = Config()
    cfg = cfg.updated({"model.objective": 'explicit', "train.refit": False})
    cfg = cfg.updated({"data.source": str(d), "data.prepared": str(tmp / 'ds'), "run.dir": str(tmp / 'run')})
    cfg = cfg.updated({"model.dim": 8, "train.epochs": 3})
    ingest(cfg.data, cfg.split, output=cfg.data.prepared)
    train_run(cfg)
    return Recommender.open(cfg.run.dir)


def test_projector_files_read_by_tensorboard(rec, tmp_path):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2
    from tensorboard.plugins.projector.projector_plugin import _read_tensor_tsv_file

    out = tmp_path / "proj"
    export_dir(rec, "projector", out, users=50)
    config = text_format.Parse((out / "projector_config.pbtxt").read_text(), projector_config_pb2.ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == ["movies", "users"]
    for e in config.embeddings:
        tensor = _read_tensor_tsv_file(str(out / e.tensor_path))
        meta = (out / e.metadata_path).read_text(encoding="utf-8").splitlines()
        header = 1 if "\t" in meta[0] else 0  # several columns: a header row; one column: none
        assert tensor.shape[0] == len(meta) - header
    np.testing.assert_allclose(_read_tensor_tsv_file(str(out / "tensors.tsv")), np.asarray(rec.Q), rtol=1e-5)
    meta = (out / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert meta[0].split("\t") == ["movie_id", "title", "year", "first_genre", "genres", "n_ratings", "kind"]
    assert all(len(line.split("\t")) == 7 for line in meta)
    assert "Amélie with tabs 東京" in meta[1]
    users_meta = (out / "users_metadata.tsv").read_text().splitlines()
    assert len(users_meta) == 50 and "\t" not in users_meta[0] and users_meta[0] != "user_id"
    standalone = json.loads((out / "projector_config.json").read_text())
    assert standalone["embeddings"][0]["tensorShape"] == list(rec.Q.shape)


def test_sampled_projector(rec, tmp_path):
    export_dir(rec, "projector", tmp_path / "p", sample=20)
    assert len((tmp_path / "p" / "tensors.tsv").read_text().splitlines()) == 20


def test_tables_round_trip(rec, tmp_path):
    export_dir(rec, "parquet", tmp_path / "pq")
    m = pd.read_parquet(tmp_path / "pq" / "movies.parquet")
    np.testing.assert_array_equal(np.stack(m["embedding"].to_numpy()), np.asarray(rec.Q))
    np.testing.assert_array_equal(m["bias"].to_numpy(), rec.bm)
    import pyarrow.parquet as pq

    # year is int32 in both Parquet exports (a review: int64 here, int32 in --topk-all's), nulls kept
    assert pq.read_schema(tmp_path / "pq" / "movies.parquet").field("year").type == "int32"
    years = pq.read_table(tmp_path / "pq" / "movies.parquet").column("year").to_pylist()
    assert years == [None if y is None else int(y) for y in rec.catalogue.years]
    topk_all(rec, tmp_path / "t.parquet", 2, batch=64)
    assert pq.read_schema(tmp_path / "t.parquet").field("year").type == "int32"
    export_dir(rec, "npy", tmp_path / "npy")
    np.testing.assert_array_equal(np.load(tmp_path / "npy" / "user_factors.npy"), np.asarray(rec.P))
    np.testing.assert_array_equal(np.load(tmp_path / "npy" / "movie_ids.npy"), rec.movie_ids)
    export_dir(rec, "csv", tmp_path / "csv")
    c = pd.read_csv(tmp_path / "csv" / "movies.csv")
    # 9 significant digits: each float32 comes back exactly (a review: 6 moved scores by up to 5e-6)
    np.testing.assert_array_equal(c[[f"e{i}" for i in range(rec.Q.shape[1])]].to_numpy().astype(np.float32),
                                  np.asarray(rec.Q, np.float32))
    said = export_dir(rec, "faiss", tmp_path / "fa")
    assert (said["movies"], said["users"]) == (rec.Q.shape[0], rec.P.shape[0])  # (a review: no users count)
    import faiss

    assert faiss.read_index(str(tmp_path / "fa" / "movies_ip.faiss")).ntotal == rec.Q.shape[0]
    # the export alone holds every term index.json's score names (a review: no user biases, no movie vectors)
    meta = json.loads((tmp_path / "fa" / "index.json").read_text())
    for key, ids in (("row_to_movie_id", rec.catalogue.movie_ids), ("row_to_user_id", rec.catalogue.user_ids)):
        np.testing.assert_array_equal(np.load(tmp_path / "fa" / meta[key]), ids)  # each id map named (a review)
    f = rec.factors
    for name, want in (("user_factors", f.user), ("movie_factors", f.movie), ("user_bias", f.user_bias),
                       ("movie_bias", f.movie_bias)):
        if want is None:
            assert name not in meta["files"]
        else:
            np.testing.assert_array_equal(np.load(tmp_path / "fa" / meta["files"][name]), np.asarray(want))
    assert "movie_factors" in meta["files"]
    with pytest.raises(ArtifactError, match="already exists"):
        export_dir(rec, "npy", tmp_path / "npy")
    export_dir(rec, "npy", tmp_path / "npy", overwrite=True)


def test_topk_all_equals_recommend_users(rec, tmp_path):
    topk_all(rec, tmp_path / "t.parquet", 5, batch=64)
    got = pd.read_parquet(tmp_path / "t.parquet")
    ids = [str(u) for u in rec.user_ids.tolist()]
    want = pd.DataFrame(list(as_rows(rec, recommend_many(rec, ids, 5))))
    assert len(got) == len(want) == 5 * len(ids)
    np.testing.assert_array_equal(got["movie_id"].to_numpy(), want["movie_id"].to_numpy())
    np.testing.assert_array_equal(got["user_id"].to_numpy(), want["user_id"].to_numpy())
    topk_all(rec, tmp_path / "t.csv", 5, batch=64)
    c = pd.read_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(c["movie_id"].to_numpy(), want["movie_id"].to_numpy())
    assert not list(tmp_path.glob(".*tmp"))


def test_topk_all_shares_the_users_so_every_rank_has_work_where_it_can():
    """A known gap (session 44's reviews): under torchrun the users were split in whole batches, so on ML-100K
    (943 users, batches of 1,024) the second of 2 ranks scored nobody. With fewer batches than ranks the users are
    split evenly (the first ranks one more); with enough, in whole batches as before. Hand-computed shares."""
    from embedrec.export_topk import user_share

    def shares(n, world, batch):
        return [user_share(n, r, world, batch) for r in range(world)]

    assert shares(943, 2, 1024) == [(0, 472), (472, 943)]  # ML-100K on 2 ranks
    assert shares(943, 1, 1024) == [(0, 943)]
    assert shares(1, 2, 1024) == [(0, 1), (1, 1)]  # one user: the second rank has none to take
    assert shares(3, 4, 1024) == [(0, 1), (1, 2), (2, 3), (3, 3)]  # fewer users than ranks
    assert shares(10, 3, 8) == [(0, 4), (4, 7), (7, 10)]  # uneven: the first rank one more
    assert shares(0, 2, 8) == [(0, 0), (0, 0)]
    assert shares(4097, 2, 4096) == [(0, 2049), (2049, 4097)]  # 2 batches, the second of one user: evened
    assert shares(20, 2, 8) == [(0, 16), (16, 20)]  # 3 batches for 2 ranks: whole batches, as before
    assert shares(16, 2, 8) == [(0, 8), (8, 16)]
    for n, world, batch in ((943, 2, 1024), (10, 3, 8), (20, 2, 8), (5, 8, 2), (100, 7, 3)):
        got = shares(n, world, batch)  # contiguous, in rank order, every user once
        assert got[0][0] == 0 and got[-1][1] == n and all(a[1] == b[0] for a, b in zip(got, got[1:]))
        assert all(hi - lo > 0 for lo, hi in got[:min(n, world)]), got  # every rank that can have work has some


def test_a_rank_without_users_writes_a_readable_empty_part(rec, tmp_path):
    """A review: a rank given no user wrote a 0-byte part and the merge failed (ArrowInvalid); one user on 2 ranks
    still leaves the second none (user_share), so its part is an empty table with the columns."""
    import pyarrow.parquet as pq

    from embedrec.export_topk import _topk_part

    n = rec.P.shape[0]
    assert _topk_part(rec, tmp_path / "e.parquet", ".parquet", n, n, 5, 64, None, "cpu") == 0
    empty = pq.read_table(tmp_path / "e.parquet")
    topk_all(rec, tmp_path / "t.parquet", 5, batch=64)
    assert empty.num_rows == 0 and empty.schema.names == pq.read_table(tmp_path / "t.parquet").schema.names


def test_topk_all_parquet_reads_as_to_frame_for_movies_without_titles(rec, tmp_path, monkeypatch):
    """A first-hour pass: a movie without a title was '' in the --topk-all Parquet file, NaN in to_frame() and
    null in JSON; the file reads as to_frame() gives the same rows (docs/python.md says so)."""

    titles = list(rec.catalogue.titles)
    titles[:] = [t if i % 2 else "" for i, t in enumerate(titles)]  # every other movie without a title
    monkeypatch.setattr(rec.catalogue, "titles", titles)
    topk_all(rec, tmp_path / "t.parquet", 5, batch=64)
    got = pd.read_parquet(tmp_path / "t.parquet")
    assert got["title"].isna().any() and not (got["title"] == "").any()
    from embedrec.api import Model

    frame = Model(rec).recommend(rec.user_ids.tolist(), k=5).to_frame().drop(columns="fallback")
    pd.testing.assert_frame_equal(got, frame)


def test_plot_png(rec, tmp_path):
    plot_map(rec, tmp_path / "m.png")
    data = (tmp_path / "m.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_map_of_one_dimension_is_refused_before_anything_is_written(rec, tmp_path, monkeypatch):
    """A red team: export --plot of a model.dim=1 run was an internal error (IndexError with pca)."""
    from dataclasses import replace

    monkeypatch.setattr(rec, "factors", replace(rec.factors, user=rec.factors.user[:, :1].copy(),
                                                movie=rec.factors.movie[:, :1].copy()))
    with pytest.raises(UsageError, match=r"a map needs movie embeddings of 2 or more dimensions; this model has 1"):
        plot_map(rec, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


def test_export_cli_errors(tmp_path):
    from click.testing import CliRunner

    from embedrec.cli import main

    r = CliRunner().invoke(main, ["export", "--set", f"run.dir={tmp_path}/none", "--to", "npy", "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "no trained model" in r.stderr
    r = CliRunner().invoke(main, ["export"])
    assert r.exit_code == 2 and "nothing to export" in r.stderr


@pytest.mark.parametrize("objective", ["explicit", "implicit"])
def test_torch_export_is_the_served_model(tmp_path, synth_dir, objective):
    """`export --to torch` and `Model.torch_module()` give the PyTorch module that scores as the run serves, for
    the explicit model (biases, mean) and the default implicit one (ALS fitted on numpy tables, no state_dict.pt
    in the run); the file loads with weights_only=True."""
    import torch

    import embedrec as er
    from embedrec.model.mf import MatrixFactorization

    sets = [f"data.prepared={tmp_path / 'ds'}", f"run.dir={tmp_path / 'run'}", "model.dim=8", "train.epochs=3",
            f"model.objective={objective}", "train.refit=false", "train.threads=1"]
    cfg = er.load_config(None, sets)
    er.train(er.ingest(str(synth_dir[0]), cfg), cfg).save(cfg.run.dir)
    model = er.open(cfg.run.dir)
    rec = Recommender.open(cfg.run.dir)
    info = export_dir(rec, "torch", tmp_path / "t")
    assert info["users"] == model.n_users and info["movies"] == model.n_movies
    meta = json.loads((tmp_path / "t" / "model.json").read_text())
    module = MatrixFactorization(**meta["args"])
    module.load_state_dict(torch.load(tmp_path / "t" / "state_dict.pt", weights_only=True))
    u = torch.arange(model.n_users).repeat_interleave(3)
    m = torch.randint(0, model.n_movies, u.shape, generator=torch.Generator().manual_seed(0))
    f = model.factors
    want = np.einsum("ij,ij->i", f.user[u.numpy()], f.movie[m.numpy()]) + f.global_mean
    want += (f.movie_bias[m.numpy()] if f.movie_bias is not None else 0) + (
        f.user_bias[u.numpy()] if f.user_bias is not None else 0)
    with torch.no_grad():
        np.testing.assert_allclose(module(u, m).numpy(), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.torch_module()(u, m).numpy(), want, rtol=1e-5, atol=1e-5)
    assert np.array_equal(np.load(tmp_path / "t" / "user_ids.npy"), model.user_ids)
    top = model.recommend([model.user_ids[0]], k=3, exclude_seen=False)
    with torch.no_grad():
        all_scores = module(torch.zeros(model.n_movies, dtype=torch.long), torch.arange(model.n_movies)).numpy()
    if objective == "implicit":  # the served top-3 is the module's top-3
        assert list(model.movie_ids[np.argsort(-all_scores, kind="stable")[:3]]) == list(top.movie_ids[0])


# ------------------------------------------------------------------------------------------ writers and overwrite

def _invoke(*args):
    from click.testing import CliRunner

    from embedrec.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line(r) -> str:
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def lock_holder():
    """Another process holding an output's writer lock (as a running `embedrec export` does): yields its pid."""
    import subprocess
    import sys

    procs = []

    def hold(target):
        code = ("import sys, time\nfrom embedrec.fsutil.locks import target_lock\n"
                "with target_lock(sys.argv[1], 'embedrec export', 'x'):\n    print('held', flush=True)\n"
                "    time.sleep(120)\n")
        p = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p.pid

    yield hold
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("name", ["top.csv", "top.parquet"])
def test_topk_file_second_writer_refused(rec, tmp_path, lock_holder, name):
    """--topk-all FILE takes the writer lock the folder exports take: a second writer gets one line and leaves the
    first one's output alone (before: no lock, and a fixed temporary name both writers wrote into)."""
    out = tmp_path / name
    pid = lock_holder(out)
    r = _invoke("export", "-q", "--run", rec.run.path.parent, "--topk-all", out, "-k", "3")
    assert r.exit_code == 75
    assert _one_line(r) == (f"error: another embedrec export is writing '{out}' (pid {pid}); wait for it to finish, "
                            "or choose another file")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [f".embedrec.{name}.lock"]


def test_plot_labels_write_a_titles_control_characters_as_spaces(rec, tmp_path, monkeypatch):
    """A review: a title holding a tab reached matplotlib, which warned of a missing glyph (with its source path,
    under -q) and drew a box; the labels write such characters as spaces, as a table does."""
    import warnings

    titles = list(rec.catalogue.titles)
    titles[:30] = [f"Tab\there \x1b[31m{i}" for i in range(30)]  # the most-rated are labelled: every title here
    monkeypatch.setattr(rec.catalogue, "titles", titles)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        plot_map(rec, tmp_path / "m.png", labels=len(titles))
    assert not [w for w in seen if "Glyph" in str(w.message)], [str(w.message) for w in seen]


def test_a_map_of_movies_without_genres_says_so_and_has_no_legend(rec, tmp_path, monkeypatch):
    """A first-hour review: `export --plot` of a dataset without genres was titled "coloured by most specific genre"
    with a legend of "other" alone. Without genres the title says so and there is no legend; with them, as before."""
    import matplotlib.pyplot as plt

    drawn = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (drawn.append(fig), close(fig)))
    plot_map(rec, tmp_path / "genres.png")
    monkeypatch.setattr(rec.catalogue, "genres", [[] for _ in rec.catalogue.genres])
    plot_map(rec, tmp_path / "none.png")
    (with_genres,), (without,) = drawn[0].axes, drawn[1].axes
    assert "coloured by most specific genre; point size = ratings" in with_genres.get_title()
    assert len(with_genres.get_legend().get_texts()) > 1  # the genres' colours, beside 'other'
    assert without.get_title().endswith("dims -> 2), no genres to colour by; point size = ratings")
    assert without.get_legend() is None and (tmp_path / "none.png").stat().st_size > 10_000


def test_plot_second_writer_refused(rec, tmp_path, lock_holder):
    out = tmp_path / "m.png"
    pid = lock_holder(out)
    with pytest.raises(ArtifactError, match=f"another embedrec export is writing '{out}' \\(pid {pid}\\)"):
        plot_map(rec, out)
    assert not out.exists()


def test_topk_file_temporary_is_its_own(rec, tmp_path):
    """A writer never writes into, renames or removes another live writer's temporary file (before: every writer
    used `.NAME.tmp`); a dead writer's temporary file is removed by the next one."""
    import subprocess
    import sys

    other = tmp_path / ".top.csv.tmp"  # the name the old code gave every writer
    other.write_text("another writer's half-written rows")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".top.csv.embedrec-tmp-{int(dead.stdout)}-abcd1234.csv"
    stale.write_text("left by a killed writer")
    topk_all(rec, tmp_path / "top.csv", 3, batch=64)
    assert other.read_text() == "another writer's half-written rows"
    assert not stale.exists()
    assert pd.read_csv(tmp_path / "top.csv").shape[0] == 3 * len(rec.user_ids)
    plot_map(rec, tmp_path / "m.png")
    plot_map(rec, tmp_path / "m.png", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".top.csv.tmp", "m.png", "top.csv"]


def test_faiss_export_refuses_a_damaged_index(rec, tmp_path):
    """export --to faiss checks each index file against the run manifest before copying it (a flat-index run
    never loads them, so nothing else notices)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(rec.run.path.parent, run, symlinks=True)
    ip = run / "current" / "movies_ip.faiss"
    data = bytearray(ip.read_bytes())
    data[len(data) // 2] ^= 0x01
    ip.write_bytes(bytes(data))
    copy = Recommender.open(run)  # the flat index: opening does not read the file
    with pytest.raises(ArtifactError, match="movies_ip.faiss' does not match its checksum"):
        export_dir(copy, "faiss", tmp_path / "fa")
    assert not (tmp_path / "fa").exists()
    cos = run / "current" / "movies_cos.faiss"
    ip.write_bytes(rec.run.path.joinpath("movies_ip.faiss").read_bytes())
    cos.write_bytes(cos.read_bytes()[:-7])
    r = _invoke("export", "-q", "--run", run, "--to", "faiss", "-o", tmp_path / "fa")
    assert r.exit_code == 1 and "movies_cos.faiss' is damaged" in _one_line(r) and "index rebuild" in r.stderr
    # that run's rebuild, with the kind it had (run_fixes.index_fix; a first-hour review: a bare 'index rebuild' rebuilt
    # the config's run.dir)
    assert r.stderr.endswith(f"build it again from the run's embeddings: 'embedrec index rebuild --run {run} --set "
                             f"index.kind={rec.run.manifest['index']['kind']}'\n"), r.stderr
    assert not (tmp_path / "fa").exists()


def test_overwrite_keeps_what_the_user_added(rec, tmp_path):
    """--overwrite replaces only what the marker lists: a folder holding the user's own files or folders is
    refused in one line naming them, and they are kept (before: any folder with the marker was deleted whole)."""
    out = tmp_path / "emb"
    export_dir(rec, "npy", out)
    (out / "notes.txt").write_text("mine")
    (out / "analysis").mkdir()
    r = _invoke("export", "-q", "--run", rec.run.path.parent, "--to", "npy", "-o", out, "--overwrite")
    assert r.exit_code == 2  # an output path refused (a review: export said 1 where ingest said 2)
    assert _one_line(r) == (f"error: '{out}' holds entries embedrec export did not write (analysis/, notes.txt), "
                            "which --overwrite would delete; move them out of it, or choose another -o folder")
    assert (out / "notes.txt").read_text() == "mine" and (out / "analysis").is_dir()
    (out / "notes.txt").unlink()
    (out / "analysis").rmdir()
    export_dir(rec, "csv", out, overwrite=True)  # only its own files: replaced as before
    assert (out / "movies.csv").exists() and not (out / "notes.txt").exists()
    top = tmp_path / "top"
    topk_all(rec, top, 3, batch=64)
    (top / "README").write_text("mine")
    with pytest.raises(ArtifactError, match=r"did not write \(README\).*or choose another folder"):
        topk_all(rec, top, 3, batch=64, overwrite=True)
    assert (top / "README").exists()


def test_overwrite_keeps_a_listed_file_the_user_changed(rec, tmp_path):
    """A red team: notes appended to an export's model.json (a file the marker lists) were deleted by --overwrite,
    which checked names alone; the marker records each file's size and SHA-256, now checked. An unreadable marker
    is said as one, not as files export did not write."""
    out = tmp_path / "emb"
    export_dir(rec, "npy", out)
    export_dir(rec, "npy", out, overwrite=True)  # as written: replaced
    with open(out / "model.json", "a", encoding="utf-8") as fh:
        fh.write("my notes\n")
    r = _invoke("export", "-q", "--run", rec.run.path.parent, "--to", "npy", "-o", out, "--overwrite")
    assert r.exit_code == 2 and _one_line(r) == (
        f"error: '{out}' holds a file export wrote but someone changed since (model.json: not the bytes it recorded), "
        "which --overwrite would delete; move it out of it, or choose another -o folder")
    assert (out / "model.json").read_text(encoding="utf-8").endswith("my notes\n")
    data = (out / "user_factors.npy").read_bytes()  # the same size, other bytes
    (out / "user_factors.npy").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    (out / "model.json").unlink()  # a listed file the user removed: nothing of theirs to lose
    with pytest.raises(ArtifactError, match=r"changed since \(user_factors\.npy: not the bytes"):
        export_dir(rec, "npy", out, overwrite=True)
    (out / "user_factors.npy").write_bytes(data)
    export_dir(rec, "npy", out, overwrite=True)
    assert (out / "model.json").is_file()
    marker = out / ".embedrec-export.json"
    marker.chmod(0)
    try:
        if not os.access(marker, os.R_OK):  # (root reads a file of mode 000: then nothing to check)
            with pytest.raises(ArtifactError, match=r"cannot be read \(permission denied\), so overwrite=True cannot"):
                export_dir(rec, "npy", out, overwrite=True)
    finally:
        marker.chmod(0o644)


def test_verify_checks_an_export_folder_against_its_record(rec, tmp_path):
    """A review: every export records each file's size and SHA-256, and no command read them (`verify ex/npy`:
    "neither a run nor a prepared dataset"). verify checks an export folder as it checks a run."""
    out = tmp_path / "emb"
    export_dir(rec, "npy", out)
    r = _invoke("verify", out)
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: export '{out}': ") and "match their checksums" in r.stdout
    (out / "notes.txt").write_text("mine")  # a file the user added is theirs: not an error
    assert _invoke("verify", out).exit_code == 0
    data = (out / "movie_factors.npy").read_bytes()
    (out / "movie_factors.npy").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    r = _invoke("verify", out)
    # the way on that works: --overwrite refuses a folder whose listed file changed (a red team: the advice was it)
    assert r.exit_code == 1 and _one_line(r) == (f"error: export file '{out / 'movie_factors.npy'}' is missing or does "
                                                 f"not match its checksum; check '{out}' and remove it (rm -r it), "
                                                 "then export again, or export into a new folder")
    assert _invoke("export", "-q", "--run", rec.run.path.parent, "--to", "npy", "-o", out, "--overwrite").exit_code == 2
    top = tmp_path / "top"
    topk_all(rec, top, 3, batch=64)
    assert _invoke("verify", top).exit_code == 0
    # a top-K folder's record is sealed as the others are (a red team: its k edited passed verify, and a part's
    # SHA-256 changed in it was said as a damaged part)
    marker = top / ".embedrec-export.json"
    record = json.loads(marker.read_text())
    assert "manifest_sha256" in record
    marker.write_text(json.dumps({**record, "k": 30}))
    r = _invoke("verify", top)
    assert r.exit_code == 1 and f"export record '{marker}' does not match its checksum" in r.stderr, r.stderr


def test_topk_folder_overwrite_from_the_cli(rec, tmp_path):
    """`export --topk-all FOLDER --overwrite` replaces the folder export wrote (before: click refused any folder);
    a .csv/.parquet name that is a folder is one line."""
    run = rec.run.path.parent
    top = tmp_path / "top10"
    assert _invoke("export", "-q", "--run", run, "--topk-all", top, "-k", "3").exit_code == 0
    r = _invoke("export", "-q", "--run", run, "--topk-all", top, "-k", "4", "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert pd.read_parquet(top).shape[0] == 4 * len(rec.user_ids)
    (tmp_path / "dir.csv").mkdir()
    r = _invoke("export", "-q", "--run", run, "--topk-all", tmp_path / "dir.csv", "--overwrite")
    assert r.exit_code == 2
    assert _one_line(r) == f"error: '{tmp_path / 'dir.csv'}' is a folder, not a .csv file; choose another file"
    r = _invoke("export", "-q", "--run", run, "--plot", tmp_path / "dir.csv")
    assert r.exit_code == 2 and "is a folder" in _one_line(r)


def test_long_output_names(rec, tmp_path, lock_holder):
    """Names up to the 255-byte limit work: the lock, temporary and old names beside them stay within it (before:
    OSError File name too long)."""
    long_csv = tmp_path / ("t" * 246 + ".csv")
    topk_all(rec, long_csv, 3, batch=64)
    topk_all(rec, long_csv, 3, batch=64, overwrite=True)
    assert pd.read_csv(long_csv).shape[0] == 3 * len(rec.user_ids)
    folder = tmp_path / ("é" * 127)  # 254 bytes
    export_dir(rec, "npy", folder)
    export_dir(rec, "npy", folder, overwrite=True)
    plot_map(rec, tmp_path / ("m" * 251 + ".png"))
    assert all(len(p.name.encode()) <= 255 for p in tmp_path.iterdir())
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name or ".old" in p.name]
    from embedrec.fsutil.files import side_stem

    assert side_stem("a" * 250) == side_stem("a" * 250) != side_stem("a" * 249 + "b")
    assert side_stem("top.csv") == "top.csv"
    pid = lock_holder(long_csv)
    r = _invoke("export", "-q", "--run", rec.run.path.parent, "--topk-all", long_csv, "--overwrite")
    assert r.exit_code == 75 and f"(pid {pid})" in _one_line(r)


def test_plot_format_follows_the_extension(rec, tmp_path):
    """Before: PNG bytes under any name (m.jpg held a PNG). matplotlib's formats by extension; others refused
    before anything is written, --to's folder included."""
    run = rec.run.path.parent
    for name, magic in (("m.jpg", b"\xff\xd8\xff"), ("m.SVG", b"<?xml"), ("m.pdf", b"%PDF")):
        r = _invoke("export", "-q", "--run", run, "--plot", tmp_path / name)
        assert r.exit_code == 0 and r.stderr == "", r.stderr
        assert (tmp_path / name).read_bytes().startswith(magic), name
    for name in ("m.bmp", "map"):
        r = _invoke("export", "-q", "--run", run, "--to", "npy", "-o", tmp_path / "out", "--plot", tmp_path / name)
        assert r.exit_code == 2 and r.stdout == ""
        assert _one_line(r).startswith(f"error: --plot {tmp_path / name}: use a file name ending in .png, ")
        assert _one_line(r).endswith(" (the extension picks the image format)") and ".svg" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.SVG", "m.jpg", "m.pdf"]


def test_odd_output_folders_are_named_for_what_they_are(rec, tmp_path, monkeypatch):
    """A red team: `export --to csv -o -` made a folder named '-'; `-o runs --overwrite` (a folder of runs) was
    'an unfinished embedrec run (its checkpoint: continue it with embedrec train --resume)'."""
    import os
    import shutil

    monkeypatch.chdir(tmp_path)
    run = rec.run.path.parent
    r = _invoke("export", "-q", "--run", run, "--to", "csv", "-o", "-")
    assert r.exit_code == 2 and not os.path.lexists(tmp_path / "-")
    assert "-o -: --to csv writes a folder of files, not to standard output; give a folder, e.g. -o out/csv" \
        in _one_line(r)
    runs = tmp_path / "runs"
    shutil.copytree(run, runs / "a", symlinks=True)
    (runs / "a" / "checkpoint.pt").write_bytes(b"")  # as a run in training has
    r = _invoke("export", "-q", "--run", runs / "a", "--to", "npy", "-o", runs, "--overwrite")
    assert r.exit_code == 2 and _one_line(r) == (
        f"error: '{runs}' is a folder of embedrec runs or datasets, which this command does not write; --overwrite "
        "only replaces a folder of its own kind: choose another output folder")


def test_topk_all_exact_torch_search_goes_through_the_same_checks_and_tail(rec, monkeypatch):
    """An architecture review: the GPU path of --topk-all re-implemented recommend_rows' tail and skipped its
    checks (non-finite vectors, the seen arrays) and the filter of movies without training ratings. It is now a
    search handed to recommend_rows: run on the CPU here, it gives what the index gives (explicit: clipped)."""
    import torch

    import embedrec.sparse
    from embedrec.export_topk import _exact_search

    monkeypatch.setattr(embedrec.sparse, "_is_gpu", lambda device: True)  # the GPU path, on torch's CPU device
    rows = np.arange(min(40, rec.factors.n_users))
    want_i, want_s = rec.recommend_rows(rows, 7)
    got_i, got_s = rec.recommend_rows(rows, 7, search=_exact_search(torch.from_numpy(rec.factors.augmented_movies()),
                                                                    "cpu"))
    assert rec.explicit and all(np.array_equal(a, b) for a, b in zip(want_i, got_i))
    for a, b in zip(want_s, got_s):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(UsageError, match="takes no allowed movies"):
        rec.recommend_rows(rows, 7, allowed=np.array([1, 2]), search=lambda q, e, k: ([], []))


def test_a_refused_topk_all_leaves_the_to_folder_unwritten(rec, tmp_path):
    """A review: `export --to csv -o OUT --topk-all D.csv` (D.csv a folder, or an existing file without
    --overwrite) wrote OUT first, so the rerun with a good --topk-all was refused as 'OUT already exists'."""
    run = rec.run.path.parent
    (tmp_path / "D.csv").mkdir()
    (tmp_path / "E.csv").write_text("mine\n")
    for target in ("D.csv", "E.csv"):
        r = _invoke("export", "-q", "--run", run, "--to", "csv", "-o", tmp_path / "out", "--topk-all", tmp_path / target)
        assert r.exit_code == 2 and not (tmp_path / "out").exists(), r.stderr
    assert (tmp_path / "E.csv").read_text() == "mine\n"


@pytest.mark.parametrize("name, theirs", [("mine.csv", b"user_id,movie_id,rating\n1,2,3\n"),
                                          ("mine.parquet", b"user_id,movie_id,rating\n1,2,3\n"),
                                          ("art.svg", b"<svg>my drawing</svg>"), ("art.png", b"\x89PNG not ours"),
                                          ("notes.jpg", b"a text named .jpg")])
def test_overwrite_never_replaces_a_file_embedrec_did_not_write(tmp_path, trained_run, name, theirs):
    """A red team: `export --topk-all mydata.csv --overwrite` replaced the user's ratings file with the lists, and
    `--plot art.svg --overwrite` their drawing, where README says --overwrite replaces only what embedrec wrote.
    A file output is replaced only when it is this output (a top-K CSV or Parquet; a map whose metadata names
    embedrec, or an image of a format without such metadata); one embedrec wrote is replaced as before."""
    import embedrec as er
    from embedrec.errors import OutputRefused

    target = tmp_path / name
    target.write_bytes(theirs)
    plot = not name.endswith((".csv", ".parquet"))
    with er.open(trained_run.cfg.run.dir) as m:
        write = (lambda: m.plot_map(target, overwrite=True)) if plot else (lambda: m.topk_all(target, k=2, overwrite=True))
        with pytest.raises(OutputRefused, match="is not a file embedrec wrote"):
            write()
        assert target.read_bytes() == theirs
        target.unlink()
        write()  # new
        first = target.read_bytes()
        assert first != theirs
        write()  # its own: replaced
        assert target.exists() and (plot or target.read_bytes() == first)


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_overwrite_replaces_a_map_an_earlier_embedrec_wrote(tmp_path, trained_run, fmt):
    """A review: maps written before embedrec named itself in their metadata (matplotlib's mark only) were refused
    by --overwrite after the upgrade, breaking a scheduled re-export."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import embedrec as er

    old = tmp_path / f"map.{fmt}"
    fig = plt.figure()
    fig.savefig(old, format=fmt)  # matplotlib's default metadata, as embedrec's maps had
    plt.close(fig)
    with er.open(trained_run.cfg.run.dir) as m:
        m.plot_map(old, overwrite=True)
    assert b"embedrec export --plot" in old.read_bytes() or fmt == "pdf"


def test_a_map_of_a_small_catalogue(tmp_path):
    """A red team: a run of one movie failed `export --plot` (IndexError), and t-SNE's default perplexity (30)
    refused a catalogue of 30 movies or fewer; now one movie maps (pca), t-SNE takes a perplexity below the count,
    and under 4 movies t-SNE is one usage error."""
    import embedrec as er

    rng = np.random.default_rng(0)
    cfg = er.load_config(None, {"split.valid": 0.0, "split.test": 0.0, "model.dim": 4, "train.als_dims": [],
                                "data.cache_dir": str(tmp_path / "cache")})

    def model(n_movies):
        pairs = {(u, int(m)) for u in range(40) for m in rng.choice(n_movies, min(3, n_movies), replace=False)}
        df = pd.DataFrame(sorted(pairs), columns=["user_id", "movie_id"]).assign(rating=4.0)
        m = er.train(er.ingest(df, cfg, output=tmp_path / f"ds{n_movies}"), cfg)
        m.save(tmp_path / f"run{n_movies}")
        return m

    one = model(1)
    assert one.plot_map(tmp_path / "one.png")["method"] == "pca" and (tmp_path / "one.png").stat().st_size > 1000
    with pytest.raises(UsageError, match=r"^method='tsne' needs at least 4 movies; this run has 1: use method='pca'"):
        one.plot_map(tmp_path / "one-t.png", method="tsne")
    pytest.importorskip("sklearn")
    assert model(12).plot_map(tmp_path / "t.png", method="tsne")["method"] == "tsne"


def test_an_empty_topk_batch_has_the_schema_of_a_full_one():
    """A review: a batch (or a torchrun rank) of users without a vector made a table of pyarrow's null type where
    the ids are text, and the Parquet writer then refused the next batch (or the merge, the ranks' parts)."""
    from types import SimpleNamespace

    import pyarrow as pa

    from embedrec.export_topk import _topk_table

    for users, movies in ((np.array(["u1", "u2"], dtype=object), np.array(["m1", "m2", "m3"], dtype=object)),
                          (np.array([1, 2], np.int64), np.array([10, 20, 30], np.int64))):
        cat = SimpleNamespace(user_ids=users, movie_ids=movies, titles=["A", "", "C"], years=[1999, None, 2001],
                              genres=[["Drama"], [], None])
        rec = SimpleNamespace(catalogue=cat)
        full = _topk_table(rec, np.array([0, 1]), [np.array([2, 0]), np.array([1])],
                           [np.array([0.5, 0.25], np.float32), np.array([0.1], np.float32)], pa)
        empty = _topk_table(rec, np.zeros(0, np.int64), [], [], pa)
        assert empty.num_rows == 0 and empty.schema == full.schema, (empty.schema, full.schema)
        assert full.column("user_id").to_pylist() == [users[0], users[0], users[1]]
        assert full.column("rank").to_pylist() == [1, 2, 1] and full.column("genres").to_pylist()[2] == []


def test_model_json_says_the_rule_of_movies_without_training_ratings(tmp_path, synth_dir):
    """A review: for a movie without training ratings (its bias -1000) model.json's formula gave 1.0 after the clip
    where predict printed 3.37 from the global mean and the user's bias, and no export said so. model.json names
    them (their count, their bias) and the rule predict uses."""
    import embedrec as er
    from embedrec.model.factors import UNTRAINED_BIAS

    sets = [f"data.prepared={tmp_path / 'ds'}", f"run.dir={tmp_path / 'run'}", "model.dim=8", "train.epochs=3",
            "model.objective=explicit", "train.refit=false", "train.threads=1", "split.cold_movies=0.05"]
    cfg = er.load_config(None, sets)
    er.train(er.ingest(str(synth_dir[0]), cfg), cfg).save(cfg.run.dir)
    rec = Recommender.open(cfg.run.dir)
    export_dir(rec, "npy", tmp_path / "t")
    meta = json.loads((tmp_path / "t" / "model.json").read_text())
    cold = np.flatnonzero(np.load(tmp_path / "t" / "movie_bias.npy") <= UNTRAINED_BIAS)
    assert cold.size and meta["untrained_movies"]["count"] == cold.size
    assert meta["untrained_movies"]["movie_bias"] == UNTRAINED_BIAS
    assert "predict scores it as global_mean + user.bias" in meta["untrained_movies"]["rule"]
    export_dir(rec, "torch", tmp_path / "torch")  # the torch export's model.json says the same (a diff review)
    assert json.loads((tmp_path / "torch" / "model.json").read_text())["untrained_movies"] == meta["untrained_movies"]
    model = er.open(cfg.run.dir)
    got = model.predict(model.user_ids[0].item(), np.load(tmp_path / "t" / "movie_ids.npy")[cold[0]].item())
    f = model.factors
    row = got.to_frame().iloc[0]
    assert row["fallback"] == "movie_unknown"
    assert abs(row["score"] - min(max(f.global_mean + f.user_bias[0], 1.0), 5.0)) < 1e-5


def test_projector_and_map_show_the_als_columns_where_a_low_pass_block_is_served(tmp_path, synth_dir):
    """A review: with the low-pass block on, the projector's tensors and the map held its columns too (256 for
    model.dim 128), and the projector's neighbours were not the similar movies served (cosine over the als part
    alone). Both now show the als part, as the similar-movies index does."""
    import embedrec as er
    from embedrec.export_plot import plot_map

    sets = [f"data.prepared={tmp_path / 'ds'}", f"run.dir={tmp_path / 'run'}", "model.dim=8", "train.epochs=3",
            "train.threads=1", "train.als_lowpass=0.5", "train.als_dims=[]", "train.refit=false"]
    cfg = er.load_config(None, sets)
    er.train(er.ingest(str(synth_dir[0]), cfg), cfg).save(cfg.run.dir)
    rec = Recommender.open(cfg.run.dir)
    d = rec.factors.als_columns
    assert d == 8 and rec.factors.movie.shape[1] > d
    export_dir(rec, "projector", tmp_path / "p", users=5)
    first = (tmp_path / "p" / "tensors.tsv").read_text().splitlines()[0].split("\t")
    assert len(first) == d
    assert len((tmp_path / "p" / "users_tensors.tsv").read_text().splitlines()[0].split("\t")) == d
    got = np.loadtxt(tmp_path / "p" / "tensors.tsv", delimiter="\t", max_rows=3)
    np.testing.assert_allclose(got, np.asarray(rec.factors.movie)[:3, :d], atol=1e-5)
    plot_map(rec, tmp_path / "map.svg")
    assert f"({'PCA'}, {d} dims -&gt; 2)" in (tmp_path / "map.svg").read_text() or \
        f"PCA, {d} dims -> 2" in (tmp_path / "map.svg").read_text()
    # model.dim 1 beside the block: the map's one column is refused in one line, as without a block (a diff review:
    # t-SNE's internal error)
    cfg1 = er.load_config(None, [s for s in sets if not s.startswith(("model.dim", "run.dir"))]
                          + ["model.dim=1", f"run.dir={tmp_path / 'run1'}"])
    er.train(er.load_dataset(tmp_path / "ds"), cfg1).save(cfg1.run.dir)
    one = Recommender.open(cfg1.run.dir)
    assert one.factors.movie.shape[1] > 1 and one.factors.als_columns == 1
    with pytest.raises(er.UsageError, match="a map needs movie embeddings of 2 or more dimensions; this model has 1"):
        plot_map(one, tmp_path / "one.png", "tsne")
