"""Manifests edited by hand and sealed again (a red team's edit.py: a key set, then integrity.seal): each value a
reader takes is checked on opening, by every command alike, and refused in one line naming the key, its value and
the fix, never met later as an internal error."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from embedrec.cli import main
from embedrec.errors import ArtifactError
from embedrec.fsutil.integrity import check_fields, seal

SHA = "0" * 64


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(r) -> str:
    """The stderr of a failed command: exactly one line, no traceback, no internal error."""
    assert r.exit_code == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def edited(folder: Path, key: str, value, sealed: bool = True) -> Path:
    """``folder``'s current manifest with ``key`` ('files/train.parquet': a path of keys) set to ``value``, sealed
    again (the red team's edit.py); the manifest's own path."""
    real = Path(os.path.realpath(folder / "current" / "manifest.json"))
    m = json.loads(real.read_text())
    node, parts = m, key.split("/")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    os.chmod(real, 0o644)
    real.write_text(json.dumps(seal(m) if sealed else m))
    return real


@pytest.fixture
def copies(trained_run, tmp_path):
    """The session's run and dataset, copied (links kept) to be edited: (dataset, run)."""
    ds, run = tmp_path / "ds", tmp_path / "run"
    shutil.copytree(trained_run.cfg.data.prepared, ds, symlinks=True)
    shutil.copytree(trained_run.cfg.run.dir, run, symlinks=True)
    return ds, run


# ------------------------------------------------------------------------------- a manifest's file entries


def test_each_listed_files_entry_is_a_mapping_of_its_sha256_and_size(tmp_path):
    """integrity.file_entries: a file list's entries are checked as its names are (a red team: 'x', -1, null or [1]
    was an AttributeError in verify and train; null, and {}, read the file unchecked)."""
    from embedrec.fsutil.integrity import file_entries

    fields = file_entries("files")
    where = tmp_path / "manifest.json"
    good = {"sha256": SHA, "bytes": 10}
    check_fields({"files": {"a.parquet": good, "b.parquet": {**good, "stat": [1, 2, 3]}}}, fields, where, "m", "fix")
    check_fields({}, fields, where, "m", "fix")  # a manifest from before checksums lists none
    for entry, said in (("x", "'files.b.parquet' is \"x\", not a mapping"),
                        (-1, "'files.b.parquet' is -1, not a mapping"),
                        (None, "'files.b.parquet' is null, not a mapping"),
                        ([1], "'files.b.parquet' is [1], not a mapping"),
                        ({"bytes": 10}, "has no 'files.b.parquet.sha256'"),
                        ({"sha256": SHA}, "has no 'files.b.parquet.bytes'"),
                        ({"sha256": 5, "bytes": 10}, "'files.b.parquet.sha256' is 5, not a SHA-256 (64 hex digits)"),
                        ({"sha256": "ab", "bytes": 10}, "'files.b.parquet.sha256' is \"ab\", not a SHA-256"),
                        ({"sha256": SHA, "bytes": "x"}, "'files.b.parquet.bytes' is \"x\", not a whole number >= 0"),
                        ({"sha256": SHA, "bytes": -1}, "'files.b.parquet.bytes' is -1, not a whole number >= 0"),
                        ({"sha256": SHA, "bytes": True}, "'files.b.parquet.bytes' is true, not a whole number >= 0")):
        with pytest.raises(ArtifactError) as e:
            check_fields({"files": {"a.parquet": good, "b.parquet": entry}}, fields, where, "m", "fix")
        assert said in str(e.value) and str(e.value).startswith(f"m '{where}'") and \
            str(e.value).endswith("the file was edited or damaged: fix"), str(e.value)


def test_an_integer_past_a_floats_range_is_no_finite_number(tmp_path):
    """A number field of 10**400 (valid JSON) was math.isfinite's OverflowError, an internal error."""
    for value in (10 ** 400, -(10 ** 400)):
        with pytest.raises(ArtifactError, match=r"'global_mean' is 1000.*, not a finite number|'global_mean' is -1000"):
            check_fields({"global_mean": value}, {"global_mean": ("number", True)}, tmp_path, "m", "fix")
    check_fields({"global_mean": 10 ** 300}, {"global_mean": ("number", True)}, tmp_path, "m", "fix")


@pytest.mark.parametrize("value", ["x", -1, None, [1]])
def test_a_datasets_file_entry_that_is_no_mapping_is_one_line_for_verify_and_train(copies, tmp_path, value):
    """The red team's finding: `verify ds` and `train` printed 'internal error (AttributeError: 'str' object has no
    attribute 'get')' (null: verify's, train went on unchecked)."""
    ds, _ = copies
    edited(ds, "files/train.parquet", value)
    for args in (("verify", ds), ("train", "-q", "--set", f"data.prepared={ds}", "--set",
                                  f"run.dir={tmp_path / 'r2'}", "--set", "train.epochs=1")):
        line = one_line(invoke(*args))
        assert line.startswith("error: dataset manifest '") and \
            f"/manifest.json': 'files.train.parquet' is {json.dumps(value)}, not a mapping; the file was edited or " \
            "damaged: rerun 'embedrec ingest " in line and \
            line.endswith(f" -o {ds} --overwrite' with the --set it was ingested with"), (args, line)
    assert not (tmp_path / "r2").exists()


@pytest.mark.parametrize("key,value,said", [
    ("checksums/config.yaml", "x", "'checksums.config.yaml' is \"x\", not a mapping"),
    ("checksums/user_factors.npy", {"sha256": SHA}, "has no 'checksums.user_factors.npy.bytes'"),
    ("index/files/movies_ip.faiss", None, "'index.files.movies_ip.faiss' is null, not a mapping"),
    ("files/user_factors.npy", 5, "'files.user_factors.npy' is 5, not a SHA-256 (64 hex digits)"),
])
def test_a_runs_file_entry_of_another_kind_is_one_line_for_verify_and_recommend(copies, key, value, said):
    """A run's file lists alike: its checksums and its index's files ({sha256, bytes} each), its arrays' hashes
    ('files': a SHA-256 each)."""
    _, run = copies
    edited(run, key, value)
    for args in (("verify", run), ("recommend", "-q", "--run", run, "--user", "1")):
        line = one_line(invoke(*args))
        assert line.startswith("error: run manifest '") and said in line and \
            line.endswith(f"the file was edited or damaged: rerun 'embedrec train --run {run}' with the -c/--set it "
                          "was trained with"), (args, line)


# ------------------------------------------------------------------------------- a manifest's format


@pytest.mark.parametrize("value", ["x", -1, None, [1], True, 2])
def test_verify_refuses_a_format_every_reader_refuses(copies, tmp_path, value):
    """A red team: `verify` said ok for a dataset whose manifest's format_version was "x" (-1, null, [1]), which every
    command refused ('written by an incompatible embedrec (format x)'), and for a run's model folder given itself
    (RUN/current). verify checks the format as the readers do, with their line (a flag is no format, though
    True == 1)."""
    ds, run = copies
    edited(ds, "format_version", value)
    edited(run, "format_version", value)
    shown = "None" if value is None else str(value)
    gen = Path(os.path.realpath(ds / "current")).name
    for args in (("verify", ds), ("train", "-q", "--set", f"data.prepared={ds}", "--set",
                                  f"run.dir={tmp_path / 'r2'}", "--set", "train.epochs=1")):
        assert one_line(invoke(*args)) == (
            f"error: '{ds / gen}' was written by an incompatible embedrec (format {shown}); rerun 'embedrec ingest "
            f"SOURCE -o {ds} --overwrite' with the --set it was ingested with"), args
    folder = Path(os.path.realpath(run / "current")).name
    for args, where in ((("verify", run), run / folder), (("verify", run / "current"), run / "current"),
                        (("recommend", "-q", "--run", run, "--user", "1"), run / folder)):
        assert one_line(invoke(*args)) == (
            f"error: run '{where}' was written by an incompatible embedrec (format {shown}); rerun 'embedrec train "
            f"--run {run}' with the -c/--set it was trained with"), args


def test_verify_of_a_datasets_current_or_generation_advises_ingesting_into_the_dataset(copies):
    """A review: `verify DATASET/current` advised 'embedrec ingest ... -o DATASET/gen-<version> --overwrite', an
    ingest into the generation, where train and verify DATASET name the dataset's folder."""
    ds, _ = copies
    real = edited(ds, "files/train.parquet/bytes", 5)
    for given in (ds, ds / "current", real.parent):
        line = one_line(invoke("verify", given))
        assert "does not match its checksum; rerun 'embedrec ingest " in line and \
            line.endswith(f" -o {ds} --overwrite' with the --set it was ingested with"), (given, line)


# ------------------------------------------------------------------------------- an index of another model


@pytest.mark.parametrize("kind, which", [("hnsw", "cos"), ("ivf", "cos"), ("ivf_sq8", "cos"), ("hnsw", "ip"),
                                         ("ivf_sq8", "ip")])
def test_an_index_of_other_vectors_resealed_is_refused_by_verify_and_by_the_lists(copies, kind, which):
    """A red team (session 65): another model's FAISS index put in a run, its checksums and the manifest's seal
    made again by hand, was served and passed verify: nothing compared the index's vectors with the run's tables.
    serve.index.check_stored now does, on a sample of rows as an index is opened (16) and every row as verify checks it:
    the run's own index of each kind passes (an SQ8 index's decoded rows are near, not equal), a swapped one is
    refused in one line naming the file and the rebuild."""
    from embedrec.config import IndexConfig
    from embedrec.run_publish import _record_checksums
    from embedrec.serve import index as ix

    _, run = copies
    r = invoke("index", "rebuild", "--run", run, "--set", f"index.kind={kind}", "--set", "index.nlist=4")
    assert r.exit_code == 0, r.stderr
    assert invoke("verify", run).exit_code == 0
    assert invoke("recommend", "--run", run, "--movie", "1", "-k", "3").exit_code == 0, r.stderr
    folder = Path(os.path.realpath(run / "current"))
    movie = np.load(folder / "movie_factors.npy")
    other = movie[::-1].copy()  # another model: the same movies' vectors in another order
    name, cfg = f"movies_{which}.faiss", IndexConfig(kind=kind, nlist=4)
    swapped = ix._build(ix.normalise(other), kind, cfg, unit=True) if which == "cos" else \
        ix._build(ix.augment_movies(other, np.load(folder / "movie_bias.npy")[::-1].copy()), kind, cfg)
    os.chmod(folder / name, 0o644)
    ix.write_index(swapped.index, folder / name)
    os.chmod(folder / "manifest.json", 0o644)
    _record_checksums(folder)  # sealed again, as by hand
    said = one_line(invoke("verify", run))
    assert said.startswith(f"error: index '{folder / name}' does not hold the run's embeddings: movie row "), said
    assert "index rebuild" in said, said
    asked = ("--movie", "1") if which == "cos" else ("--user", "1")
    r = invoke("recommend", "--run", run, *asked, "-k", "3")
    assert r.exit_code == 1 and r.stdout == "" and "does not hold the run's embeddings" in one_line(r), r.stderr


def test_verify_compares_every_row_of_an_index(copies):
    """A red team (session 67): one row of a re-sealed HNSW index scaled, outside the 256 rows verify compared,
    passed verify and dropped that movie from lists. verify compares every row (a block at a time); opening an
    index for a list still compares a sample (16 rows)."""
    from embedrec.run_publish import _record_checksums
    from embedrec.serve import index as ix

    _, run = copies
    assert invoke("index", "rebuild", "--run", run, "--set", "index.kind=hnsw").exit_code == 0
    folder = Path(os.path.realpath(run / "current"))
    name = "movies_ip.faiss"
    index = ix.faiss.read_index(str(folder / name))
    n = index.ntotal
    sampled = set(np.linspace(0, n - 1, min(16, n)).round().astype(int).tolist())
    row = next(r for r in range(1, n) if r not in sampled)
    stored = ix.faiss.downcast_index(index).storage
    vectors = ix.faiss.rev_swig_ptr(ix.faiss.downcast_index(stored).get_xb(), n * index.d).reshape(n, index.d)
    vectors[row] *= -1.0  # one movie's row flipped: its scores negated
    os.chmod(folder / name, 0o644)
    ix.faiss.write_index(index, str(folder / name))
    os.chmod(folder / "manifest.json", 0o644)
    _record_checksums(folder)  # sealed again, as by hand
    said = one_line(invoke("verify", run))
    assert said.startswith(f"error: index '{folder / name}' does not hold the run's embeddings: movie row {row:,} "), \
        said
    # past the 256 rows a sample held: 3,000 rows, one edited between the sampled ones, found a block at a time
    from embedrec.config import IndexConfig

    rng = np.random.default_rng(0)
    cos = ix.normalise(rng.normal(size=(3000, 4)).astype(np.float32))
    built = ix._raw("hnsw", 4, 3000, IndexConfig(kind="hnsw"), ix.faiss.METRIC_L2, say=False)
    built.add(cos)
    edited = cos.copy()
    sampled = set(np.linspace(0, 2999, 256).round().astype(int).tolist())
    row = next(r for r in range(1, 3000) if r not in sampled)
    edited[row] = -edited[row]
    vi = ix.VectorIndex(built, "l2-unit")
    ix.check_stored(vi, lambda rows: (edited[rows], None), 3000, folder / name, "rebuild it", 256)  # (missed)
    with pytest.raises(ArtifactError, match=rf"movie row {row:,} "):
        ix.check_stored(vi, lambda rows: (edited[rows], None), 3000, folder / name, "rebuild it",
                        ix.SAMPLE_ROWS["verify"])


def test_the_index_check_leaves_out_the_rows_no_list_serves_which_older_builds_placed_otherwise(tmp_path):
    """A diff review: an index an earlier embedrec built (a zero vector stored as zeros in the similar-movies index;
    a movie without training ratings, bias -1000, through the plain MIPS transform) was refused as another model's.
    check_stored compares the rows lists serve: the older placement passes, a served row changed is still refused."""
    from embedrec.config import IndexConfig
    from embedrec.serve import index as ix

    rng = np.random.default_rng(0)
    cos = ix.normalise(rng.normal(size=(40, 4)).astype(np.float32))
    cos[[3, 17]] = 0.0  # movies without training ratings
    older = ix._raw("hnsw", 4, 40, IndexConfig(kind="hnsw"), ix.faiss.METRIC_L2, say=False)
    older.add(cos)  # stored as they are (before the far placement)
    vi = ix.VectorIndex(older, "l2-unit")
    far = np.zeros(40, bool)
    far[[3, 17]] = True

    def expected(rows):
        return cos[rows], far[rows]

    ix.check_stored(vi, expected, 40, tmp_path / "movies_cos.faiss", "rebuild it", 40)  # no error
    changed = cos.copy()
    changed[5] = -changed[5]
    with pytest.raises(ArtifactError, match=r"does not hold the run's embeddings: movie row 5 "):
        ix.check_stored(vi, lambda rows: (changed[rows], far[rows]), 40, tmp_path / "movies_cos.faiss",
                        "rebuild it", 40)
