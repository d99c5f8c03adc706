"""data/layout.py: where a prepared dataset is and what is said where it is not, each rule on a folder the test
lays out by hand (a current link, a generation, a dataset moved, gone, a file, an empty folder, another dataset);
the commands that share the rules (`history`, `evaluate`) are held to one message each in tests/test_history.py."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from embedrec.data import layout
from embedrec.errors import ArtifactError, cli_terms
from embedrec.fsutil.integrity import seal

GEN = "gen-20260101T000000-000000001"


def _manifest(**extra) -> dict:
    """A sealed dataset manifest of 3 users x 4 movies, ingested from ratings.csv."""
    return seal({"format_version": 1, "embedrec_version": "0", "counts": {"users": 3, "movies": 4},
                 "rating_scale": [1, 5], "layout": "csv", "source": "ml-100k", "created": "2026-01-01", **extra})


def _dataset(root: Path, gen: str = GEN, manifest: dict | None = None) -> Path:
    """A dataset in generations: root/current -> gen, gen/manifest.json, and the link beside them."""
    (root / gen).mkdir(parents=True)
    (root / gen / "manifest.json").write_text(json.dumps(manifest or _manifest()), encoding="utf-8")
    (root / "current").symlink_to(gen)
    (root / "manifest.json").symlink_to("current/manifest.json")
    return root


def _run(root: Path) -> Path:
    """A run folder: current -> artifacts-..., with a run manifest."""
    (root / "artifacts-20260101T000000-1").mkdir(parents=True)
    (root / "artifacts-20260101T000000-1" / "manifest.json").write_text('{"n_users": 3}', encoding="utf-8")
    (root / "current").symlink_to("artifacts-20260101T000000-1")
    return root


def test_a_current_link_and_a_generation_mean_the_dataset_folder(tmp_path):
    ds = _dataset(tmp_path / "ds")
    assert layout.recorded_folder(ds / "current") == ds  # DATASET/current: the dataset is its folder
    assert layout.recorded_folder(ds / "gen-20250101T000000-9") == ds  # a pruned generation
    assert layout.recorded_folder(str(ds)) == ds and layout.recorded_folder(None) is None
    assert layout.recorded_folder("") is None
    # a generation still there, its manifest in it, is itself; so is a 'current' in a folder without generations
    assert layout.recorded_folder(ds / GEN) == ds / GEN
    (tmp_path / "x" / "current").mkdir(parents=True)
    assert layout.recorded_folder(tmp_path / "x" / "current") == tmp_path / "x" / "current"
    assert layout.versioned(ds) and not layout.versioned(tmp_path / "x") and not layout.versioned(tmp_path / "nope")
    assert layout.check_layout(ds / "current") == ds and layout.check_layout(ds) == ds


def test_what_holds_a_dataset_and_what_a_folder_is_otherwise(tmp_path):
    ds = _dataset(tmp_path / "ds")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "manifest.json").write_text(json.dumps(_manifest()), encoding="utf-8")
    for held in (ds, flat, str(ds)):
        assert layout.holds_dataset(held) and layout.not_a_dataset(held) is None
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    said = {name: layout.not_a_dataset(tmp_path / name) for name in ("nope", "file", "empty")}
    assert said == {"nope": "does not exist", "file": "is a file", "empty": "holds no prepared dataset"}
    run = _run(tmp_path / "run")
    assert layout.is_run(run) and not layout.is_run(ds) and not layout.holds_dataset(run)  # its current has a manifest
    assert layout.not_a_dataset(run) == "is a run (what embedrec train writes), not a prepared dataset"
    # a generation whose manifest is gone: no dataset to read (what is there is said of the folder, not its files)
    gone = _dataset(tmp_path / "no-manifest")
    (gone / GEN / "manifest.json").unlink()
    assert layout.not_a_dataset(gone) == "holds no prepared dataset"
    # its current link removed, its generation there: held (a damaged dataset), and reading it says what is lost
    lost = _dataset(tmp_path / "lost")
    (lost / "current").unlink()
    assert layout.holds_dataset(lost) and layout.is_dataset(lost)
    with pytest.raises(ArtifactError) as e:
        layout.check_layout(lost)
    assert e.value.cli_message() == (f"prepared dataset '{lost}': its 'current' link is gone (it names the generation "
                                     f"in use; {GEN} is there); ingest it again: embedrec ingest ml-100k -o {lost} "
                                     "--overwrite with the options it was ingested with")
    with pytest.raises(ArtifactError, match=r"is a run \(what embedrec train writes\), not a prepared dataset"):
        layout.check_layout(run)
    with pytest.raises(ArtifactError, match=r"no prepared dataset at '.*empty' \(manifest.json missing\)"):
        layout.check_layout(tmp_path / "empty")


def test_a_moved_dataset_is_read_from_data_prepared_only_where_the_recorded_folder_holds_none(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(logging.getLogger("embedrec"), "warning", lambda msg, *a: said.append(msg % a))
    ds = _dataset(tmp_path / "ds")
    moved = tmp_path / "moved"
    # the recorded folder holds its dataset: read it; data.prepared naming it (or its current) is no other folder
    assert layout.moved_to(str(ds), ds) is None and layout.moved_to(str(ds / "current"), ds / "current") is None
    assert said == []
    assert layout.moved_to(str(ds), moved) is None
    assert said == [f"«data.prepared|moved_to» '{moved}' is not read: the run was trained on '{ds}', which holds a "
                    "dataset («data.prepared|moved_to» is read only where that folder has moved, or holds another "
                    "dataset while this one holds the run's)"]
    # gone, emptied, never recorded: data.prepared is where it moved
    (tmp_path / "empty").mkdir()
    for recorded in (tmp_path / "nope", tmp_path / "empty", None):
        assert layout.moved_to(recorded, str(moved)) == moved
    assert len(said) == 1


def test_find_says_gone_a_file_no_dataset_and_no_record_in_one_line_each(tmp_path):
    ds = _dataset(tmp_path / "ds")
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    call = "history(user, dataset_dir=FOLDER)"
    assert layout.find(str(ds / "current"), None, "runs/a", call) == ds
    assert layout.find(str(tmp_path / "nope"), ds, "runs/a", call) == ds  # dataset_dir, read where given
    again = "give {} with --set data.prepared=FOLDER --run runs/a, or ingest it again"
    for recorded, what in (("nope", "is gone (moved or deleted); " + again.format("its new folder")),
                           ("file", "is a file now; " + again.format("the folder it moved to")),
                           ("empty", "holds no prepared dataset now (its manifest.json is gone); "
                                     + again.format("the folder it moved to"))):
        with pytest.raises(ArtifactError) as e:
            layout.find(str(tmp_path / recorded), None, "runs/a", call)
        assert e.value.cli_message() == f"the dataset run 'runs/a' was trained on, '{tmp_path / recorded}', {what}"
        assert f"give {'its new folder' if recorded == 'nope' else 'the folder it moved to'} with {call}" in str(e.value)
    with pytest.raises(ArtifactError) as e:
        layout.find(None, None, "runs/a", call)
    assert e.value.cli_message() == ("run 'runs/a' does not record the dataset it was trained on; give its folder: "
                                     "--set data.prepared=FOLDER --run runs/a")
    run = _run(tmp_path / "run")
    for given, what in (("nope", "does not exist"), ("file", "is a file"), ("empty", "holds no prepared dataset"),
                        ("run", "is a run (what embedrec train writes), not a prepared dataset")):
        with pytest.raises(ArtifactError) as e:
            layout.find(str(ds), tmp_path / given, "runs/a", call)
        assert e.value.cli_message() == (f"--set data.prepared '{tmp_path / given}' {what}; give the folder of the "
                                         f"dataset run 'runs/a' was trained on (recorded as '{ds}')")
        assert str(e.value).startswith(f"dataset_dir= '{tmp_path / given}' {what}")
    assert run.exists()
    with pytest.raises(ArtifactError) as e:  # a name with a space: quoted, to paste
        layout.find(None, None, "a b", call)
    assert e.value.cli_message().endswith("--run 'a b'")


def test_another_dataset_is_refused_by_its_fingerprint_and_its_counts(tmp_path):
    ds = _dataset(tmp_path / "ds")
    m = _manifest()
    layout.check_same(ds, m, "abc", str(ds), "abc", "runs/a", 3, 4)  # the run's: nothing said
    layout.check_same(ds, m, "abc", str(ds), None, "runs/a", 3, 4)  # a run that pinned none: not checked
    layout.check_same(ds, m, "", str(ds), "abc", "runs/a", 3, 4)  # a dataset from before fingerprints
    layout.check_same(ds, m, "abc", str(ds), "abc", "runs/a", None, None)  # counts not recorded: not checked
    with pytest.raises(ArtifactError) as e:  # re-ingested where the run recorded it
        layout.check_same(ds, m, "def", str(ds / "current"), "abc", "runs/a", 3, 4)
    assert e.value.cli_message() == (f"dataset '{ds}' is not the one run 'runs/a' was trained on (its files changed "
                                     "since, e.g. re-ingested on 2026-01-01); give a copy of the dataset it was "
                                     "trained on with --set data.prepared=COPY --run runs/a, put it back in "
                                     f"'{ds}', or train the run again")
    assert str(e.value).endswith("; give the dataset it was trained on with dataset_dir=FOLDER, or train it again")
    other = tmp_path / "other"
    with pytest.raises(ArtifactError) as e:  # another folder
        layout.check_same(other, m, "def", str(ds), "abc", "runs/a", 3, 4)
    assert e.value.cli_message() == (f"dataset '{other}' is not the one run 'runs/a' was trained on (it was trained "
                                     f"on '{ds}'); give the dataset it was trained on with --set data.prepared=FOLDER, "
                                     "or train the run again")
    with pytest.raises(ArtifactError) as e:
        layout.check_same(other, m, "abc", str(ds), "abc", "runs/a", 3, 5)
    assert e.value.cli_message() == (f"dataset '{other}' (3 users x 4 movies) is not the one run 'runs/a' was "
                                     "trained on (3 x 5)")


def test_a_manifest_is_checked_once_for_every_reader(tmp_path):
    ds = _dataset(tmp_path / "ds")
    gen = ds / GEN
    manifest, fix = layout.read_manifest(gen, ds)
    assert manifest["counts"] == {"users": 3, "movies": 4}
    assert fix == layout.dataset_fix(ds, manifest) and f"'embedrec ingest ml-100k -o {ds} --overwrite'" in cli_terms(fix)
    where = gen / "manifest.json"
    for raw, said in ((b"{bad", f"dataset manifest '{where}' is corrupt (Expecting property name"),
                      (b"[]", f"'{gen}' was written by an incompatible embedrec (format None)"),
                      (json.dumps({**_manifest(), "counts": {"users": 9, "movies": 4}}).encode(),
                       f"dataset manifest '{where}' does not match its checksum (damaged or edited)"),
                      (json.dumps(seal({"format_version": 1})).encode(), f"dataset manifest '{where}' has no 'counts'")):
        with pytest.raises(ArtifactError) as e:
            layout.parse_manifest(raw, gen, ds)
        assert e.value.cli_message().startswith(said), e.value.cli_message()
    where.unlink()
    with pytest.raises(ArtifactError, match=rf"^prepared dataset file '{where}' is missing; "):
        layout.read_manifest(gen, ds)


def test_the_layout_module_imports_neither_pandas_nor_numpy():
    """history reads it while serving: the standard library and embedrec's errors and fsutil only."""
    code = ("import sys, embedrec.data.layout\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy', 'pyarrow', 'torch'))\n"
            "assert not heavy, heavy\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]


def test_a_run_that_records_no_dataset_is_one_line_for_evaluate_as_for_history(tmp_path):
    """run_inputs.run_dataset (evaluate's) and Model.history share layout.find: a run manifest's dataset.path may be null
    (RUN_FIELDS), which evaluate read as load_dataset(None), a TypeError."""
    from embedrec.run import Run
    from embedrec.run_inputs import run_dataset

    run = Run(tmp_path / "runs" / "a" / "artifacts-20260101T000000-1", {"dataset": {"path": None}})
    with pytest.raises(ArtifactError) as e:
        run_dataset(run)
    assert e.value.cli_message() == (f"run '{tmp_path / 'runs' / 'a'}' does not record the dataset it was trained on; "
                                     f"give its folder: --set data.prepared=FOLDER --run {tmp_path / 'runs' / 'a'}")
    assert str(e.value).endswith("give its folder: er.open(run_dir).evaluate(dataset_dir=FOLDER)")
