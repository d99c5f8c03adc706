"""Where a prepared dataset is, and whether a folder holds one: the layout rules every reader of a dataset shares,
with their messages, so a broken dataset is said alike by ``train`` (``dataset.load_dataset``), ``evaluate``
(``run_inputs.run_dataset``) and ``history`` (``serve/history.py``, which reads the Parquet files through pyarrow: this
module imports no pandas, no numpy, only the standard library and embedrec's errors and fsutil).

The rules: a dataset folder ``DATASET`` holds ``current -> gen-<version>/`` (or, in the older flat layout or copied
with links followed, ``manifest.json`` itself); a run's manifest records the folder it was trained on, read by
:func:`recorded_folder`; :func:`not_a_dataset` says what a folder is where it holds no dataset; :func:`moved_to`
where to read a run's dataset given a config's data.prepared (only where the recorded folder has moved);
:func:`find` the folder to read, or the one error for a dataset gone, a file, a folder without a dataset;
:func:`check_layout` what is wrong with a dataset folder before its files are read (its ``current`` link lost, no
manifest); :func:`parse_manifest` its manifest checked; :func:`check_same` that it is the dataset a run was
trained on (its fingerprint, its counts).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from embedrec.errors import ArtifactError, command, first_line, from_here, marked, sh_quote
from embedrec.fsutil.files import JSON_MAX, loads_json, loop_error, missing_error, probe_json, read_regular
from embedrec.fsutil.generations import check_current, current_link
from embedrec.fsutil.integrity import MANIFEST, check_fields, check_format, check_seal, file_entries

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
FILES = ("users", "movies", *SPLITS)
OPTIONAL = ("rated_below", "rated_below_unknown")  # written when there is something to hold (Dataset.rated_below...)
GEN = "gen"  # generation folders: DATASET/gen-<version>


def table_file(table: str) -> str:
    """A dataset table's file in its folder, e.g. 'train.parquet' (FILES' and OPTIONAL's tables). The dataset's
    names are this module's and data/dataset.py's (which writes them); its manifest's, MANIFEST, fsutil's."""
    return f"{table}.parquet"


LINKS = (MANIFEST, *(table_file(n) for n in FILES))  # DATASET/<name> -> current/<name>
RUN_PREFIX = "artifacts-"  # run_layout.ARTIFACTS' model folders: a folder whose current names one is a run, not a dataset
# what the readers of a dataset manifest take from it without a second look (integrity.check_fields: kind, required)
FIELDS = {
    "counts": ("dict", True), "counts.users": ("count", True), "counts.movies": ("count", True),
    "rating_scale": ("range", True), "min_rating": ("number|null", False), **file_entries("files"),
    "fingerprint": ("str", False), "split": ("dict", False), "has_timestamps": ("bool", False),
    "has_user_features": ("bool", False), "has_movie_metadata": ("bool", False), "inputs": ("dict", False),
    "config": ("dict|null", False), "cleaning": ("dict", False), "name": ("str", False),
}
# not "rerun 'embedrec ingest --overwrite'": with no source and -o that rewrites the default dataset (ml-100k), not
# the damaged one (a first-hour review); dataset_fix names them where they are known
FIX = "«rerun the 'embedrec ingest' that wrote it, with --overwrite|ingest it again with er.ingest(..., overwrite=True)»"

log = logging.getLogger("embedrec")


def versioned(root) -> bool:
    """Whether ``root`` is a dataset in generations: its ``current`` links to a ``gen-<version>`` folder."""
    return current_link(root).startswith(f"{GEN}-")


def has_manifest(path) -> bool:
    """Whether a prepared dataset's manifest is at ``path`` (flat) or under its ``current``: what
    :func:`check_layout` looks for first (and ``train --resume`` before saying what is missing). One behind a folder
    it may not enter counts as there: the read that follows says it cannot read it (a red team: Path.exists'
    PermissionError was said with a writer's advice, 'write to a folder you may write to')."""
    return _there(Path(path) / MANIFEST) or _there(Path(path) / "current" / MANIFEST)


def _there(p: Path) -> bool:
    try:
        os.stat(p)
    except PermissionError:
        return True  # there or not, its folder's permissions refuse to say: the reader says it may not read it
    except OSError:
        return False
    return True


def is_run(path) -> bool:
    """Whether ``path`` is a run (what ``embedrec train`` writes: its ``current`` names an ``artifacts-`` folder)."""
    return current_link(path).startswith(RUN_PREFIX)


def is_dataset(folder: Path) -> bool:
    """Whether ``folder`` is a prepared dataset embedrec wrote (its manifest, directly or under ``current``),
    so --overwrite may replace it."""
    folder = Path(folder)
    for manifest in (folder / MANIFEST, folder / "current" / MANIFEST):
        m = probe_json(manifest)
        if isinstance(m, dict) and "format_version" in m and "embedrec_version" in m and "counts" in m:
            return True
    # a damaged or deleted manifest: still embedrec's by its layout (current -> gen-<time>, the links beside it and
    # nothing else), so the --overwrite that the error about it advises can replace it (a review)
    if versioned(folder) or _lost_current(folder):
        own = {"current", *LINKS}
        return all(p.name in own or p.name.startswith(".") or (p.name.startswith(f"{GEN}-") and p.is_dir())
                   for p in folder.iterdir())
    return False


def _lost_current(root: Path) -> tuple[str, str] | None:
    """(the newest generation folder holding a dataset's manifest, the source it was ingested from) where
    ``root/current`` is gone or is no link (a red team: 'rm DATASET/current' was "no prepared dataset", and the
    ingest --overwrite that advised refused the folder as not its kind), or is a link that leads nowhere (to a
    folder gone, or a loop of links: a red team's 'ln -s current current' was "no prepared dataset" and ingest
    --overwrite refused the folder); None otherwise."""
    root = Path(root)
    cur = root / "current"
    if cur.is_dir() and os.path.lexists(cur / MANIFEST):  # (is_dir: False for a loop of links)
        return None  # (an empty folder in its place is lost too: a red team; a link to a generation without its
        # manifest too: a review found it "no prepared dataset")
    with contextlib.suppress(OSError):
        gens = sorted((p for p in root.iterdir() if p.name.startswith(f"{GEN}-") and p.is_dir()), reverse=True)
        for gen in gens:
            m = probe_json(gen / MANIFEST)
            if isinstance(m, dict) and "counts" in m and "layout" in m:
                return gen.name, str(m.get("source") or "SOURCE")
        # current naming a generation whose manifest is gone, and none other to go back to (a red team: verify said
        # "neither a run, a dataset nor an export folder", train "no prepared dataset ... ingest first")
        if cur.is_symlink() and cur.is_dir() and os.readlink(cur).startswith(f"{GEN}-") and \
                any(f.name.endswith(".parquet") for f in cur.iterdir()):
            return os.readlink(cur), "SOURCE"
    return None


def lost_current_error(path: Path) -> ArtifactError | None:
    """The error for a prepared dataset whose ``current`` link is gone or damaged (what load_dataset, verify and
    history say: a red team found verify giving a run's advice for it), or None."""
    path = Path(path)
    if has_manifest(path) or not (lost := _lost_current(path)):
        return None
    cur = path / "current"
    if cur.is_dir() and os.path.islink(cur) and os.readlink(cur) == lost[0]:
        return ArtifactError(f"prepared dataset '{path}': its generation '{lost[0]}' (the one 'current' names) has no "
                             f"{MANIFEST} (deleted?), so its files cannot be checked; ingest it again: «embedrec ingest "
                             f"{sh_quote(lost[1])} -o {sh_quote(str(path))} --overwrite|er.ingest(source, cfg, "
                             "overwrite=True)» with the options it was ingested with")
    what = ("leads nowhere (a loop of links, or a folder gone)" if os.path.islink(cur) else
            "is not the link embedrec makes" if os.path.lexists(cur) else "is gone")
    return ArtifactError(f"prepared dataset '{path}': its 'current' link {what} (it names the generation in "
                         f"use; {lost[0]} is there); ingest it again: «embedrec ingest {sh_quote(lost[1])} -o "
                         f"{sh_quote(str(path))} --overwrite|er.ingest(source, cfg, overwrite=True)» with the "
                         "options it was ingested with")


def holds_dataset(folder) -> bool:
    """Whether ``folder`` holds a prepared dataset to read, whole or damaged (its manifest, directly or under
    ``current``, or its generations with their ``current`` link lost): where reading it says what is wrong with
    it (:func:`check_layout`, the manifest's and files' checks), not that it is no dataset. A run is none."""
    return Path(folder).is_dir() and not is_run(folder) and (has_manifest(folder) or _lost_current(folder) is not None)


def not_a_dataset(folder) -> str | None:
    """What ``folder`` is where it holds no prepared dataset, as the end of a sentence naming it ('does not
    exist', 'is a file', 'is a run ...', 'holds no prepared dataset'); None where it holds one
    (:func:`holds_dataset`)."""
    p = Path(folder)
    if holds_dataset(p):
        return None
    if not p.exists():
        return "does not exist"
    if not p.is_dir():
        return "is a file" if p.is_file() else "is not a folder"
    if is_run(p):
        return "is a run (what embedrec train writes), not a prepared dataset"
    return "holds no prepared dataset"


def recorded_folder(path) -> Path | None:
    """The dataset folder a run manifest's ``dataset.path`` means: DATASET for DATASET/current or a pruned
    DATASET/gen-<version> (the run's fingerprint then checks the content), else the path itself (a generation
    still there is that generation); None where the run records none."""
    if not path:
        return None
    p = Path(path)
    if (p.name == "current" or p.name.startswith(f"{GEN}-") and not (p / MANIFEST).exists()) \
            and versioned(p.parent):
        return p.parent
    return p


def moved_to(recorded, moved: str | Path, fingerprint: str | None = None) -> Path | None:
    """Where to read a run's dataset from (``recorded``: the path its manifest records), given a config's
    data.prepared ``moved`` (``evaluate``'s and ``history``'s): there, where the recorded folder holds no dataset
    now (moved; :func:`holds_dataset`), or holds another one where ``moved`` holds the run's (``fingerprint``: an
    ops review kept a copy of the dataset beside a model it rolled back to, the folder re-ingested since, and was
    told the copy was not read); else None, the recorded one, said in a warning where ``moved`` names another
    folder (a config file's data.prepared is a default, not a request)."""
    rec = recorded_folder(recorded)
    if rec is None or not holds_dataset(rec):
        return Path(moved)
    # data.prepared naming another folder than the recorded one (or its current generation): said, not ignored
    if os.path.realpath(moved) not in (os.path.realpath(rec), os.path.realpath(rec / "current")):
        if fingerprint and _fingerprint(rec) != fingerprint and _fingerprint(Path(moved)) == fingerprint:
            log.info("reading the dataset in '%s': '%s', where the run was trained, holds another one now "
                     "(re-ingested since)", moved, rec)
            return Path(moved)
        log.warning("«data.prepared|moved_to» '%s' is not read: the run was trained on '%s', which holds a dataset "
                    "(«data.prepared|moved_to» is read only where that folder has moved, or holds another dataset "
                    "while this one holds the run's)", moved, rec)
    return None


def _fingerprint(folder: Path) -> str | None:
    """The fingerprint a dataset folder's manifest records, None where it does not read."""
    try:
        manifest, _ = read_manifest(folder / "current" if (folder / "current").exists() else folder, folder)
        return manifest.get("fingerprint")
    except (ArtifactError, OSError, ValueError, TypeError, AttributeError):
        return None


def find(recorded, dataset_dir, run_name: str, call: str, given: str = "dataset_dir") -> Path:
    """The dataset folder to read for a run named ``run_name`` (as messages name it) that recorded ``recorded``:
    ``dataset_dir`` where given, else the recorded one; one ArtifactError where that folder is gone (moved or
    deleted), a file, or holds no dataset, saying how to name its new folder (``call``: the library's way to, e.g.
    'history(user, dataset_dir=FOLDER)'). A folder that holds one, damaged, is returned: reading it says how.
    ``given``: the library's argument that named ``dataset_dir`` ('dataset_dir', or 'moved_to' where the folder is
    :func:`moved_to`'s answer), which a refusal of it names (the CLI's is --set data.prepared either way)."""
    rec = recorded_folder(recorded)
    if dataset_dir is not None:
        what = not_a_dataset(dataset_dir)
        if what is not None:  # (a review: the advice named data.prepared to a notebook that gave dataset_dir=)
            raise ArtifactError(f"«--set data.prepared|{given}=» '{dataset_dir}' {what}; give the folder of the "
                                f"dataset run '{run_name}' was trained on (recorded as '{rec}')")
        return Path(dataset_dir)
    again = marked(f"--set data.prepared=FOLDER --run {sh_quote(run_name)}", call)
    if rec is None:
        raise ArtifactError(f"run '{run_name}' does not record the dataset it was trained on; give its folder: {again}")
    what = not_a_dataset(rec)
    if what is None:
        return rec
    said = {"does not exist": f"is gone (moved or deleted); give its new folder with {again}",
            "holds no prepared dataset": "holds no prepared dataset now (its manifest.json is gone); give the folder "
                                         f"it moved to with {again}"}
    raise ArtifactError(f"the dataset run '{run_name}' was trained on, '{rec}', "
                        f"{said.get(what, f'{what} now; give the folder it moved to with {again}')}, or ingest it "
                        "again")


def datasets_beside(path: Path, split_method: str | None = None) -> list[str]:
    """The names of the prepared datasets in ``path``'s parent folder (data/prepared/...), newest first; with
    ``split_method``, only those split that way (a first-hour review: `train -c configs/ml100k-implicit.yaml`,
    whose config splits by time, was pointed at the random split of data/prepared/ml-100k)."""
    try:
        found = [d for d in path.parent.iterdir() if d.is_dir() and (d / "current" / MANIFEST).is_file()
                 and not is_run(d)]  # a run has one too (a red team: a run suggested)
    except OSError:
        return []
    found = [d for d in found if (m := _split_method(d)) is not None and split_method in (None, m)]  # a split: a
    # dataset's manifest (a run copied with its current re-pointed was suggested)
    return [d.name for d in sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)]


def _split_method(folder: Path) -> str | None:
    try:
        split = loads_json((folder / "current" / MANIFEST).read_text(encoding="utf-8")).get("split")
    except (OSError, ValueError, AttributeError):
        return None
    return split.get("method") if isinstance(split, dict) else None


def check_layout(path, split_method: str | None = None) -> Path:
    """The dataset folder ``path`` means (DATASET for DATASET/current), checked before its files are read: a run
    is no dataset; a ``current`` leading out of it, or lost, is said (:func:`lost_current_error`); a folder with no
    manifest is no dataset (naming the datasets beside it split by ``split_method``, the config's split.method,
    where given). What ``load_dataset`` and ``history`` check first."""
    path = Path(path)
    if path.name == "current" and path.is_symlink():  # DATASET/current: the dataset is DATASET
        path = path.parent
    if is_run(path):  # a run directory (run_layout.ARTIFACTS): say so, not "file missing"
        raise ArtifactError(f"'{path}' is a run (what embedrec train writes), not a prepared dataset; point "
                            "data.prepared at the ingest output (e.g. data/prepared/ml-100k)")
    check_current(path)  # a current that leads into another dataset (a review: train took that one's split)
    lost = lost_current_error(path)
    if lost is not None:
        raise lost
    if not has_manifest(path):
        for manifest in (path / "current" / MANIFEST, path / MANIFEST):  # a loop of links in its
            loop = loop_error(manifest, "prepared dataset file", dataset_fix(path))     # place: said as one (a review)
            if loop is not None:
                raise loop
        near = datasets_beside(path, split_method)  # a review: 'ingest mine.csv' then 'train' looked for ml-100k
        near = (f"; {path.parent} holds {', '.join(near[:3])}{' and more' if len(near) > 3 else ''}: e.g. "
                + marked(f"--set data.prepared={sh_quote(str(path.parent / near[0]))}",
                         f"load_dataset({str(path.parent / near[0])!r})")) if near else ""
        # a relative path is the current folder's (a first-hour review: from another folder than the config's,
        # only recommend's message said so)
        rel = "" if path.is_absolute() else f" (relative to the current folder {Path.cwd()})"
        raise ArtifactError(f"no prepared dataset at '{path}'{rel} (manifest.json missing); «run 'embedrec ingest' with "
                            "the same -c/--set options first|ingest it first with er.ingest(source, cfg)» (it writes "
                            f"data.prepared), or point data.prepared at the ingest output{near}")
    return path


def dataset_fix(path, source=None) -> str:
    """How to repair the prepared dataset at ``path`` (the folder -o named): ingest its source into it again with
    --overwrite. ``source``: the manifest (its ``source_path``, else its ``source``, where it could be read), or
    the source itself; a path is shown from the current folder (a review: './r.csv' as given to an ingest run
    elsewhere named no file from here)."""
    if isinstance(source, dict):
        given = source.get("source")
        # a dataset ingested before source_path: its source where it reads from here, or a release name
        source = source.get("source_path") or (given if isinstance(given, str) and (
            os.path.exists(given) or os.sep not in given and "." not in given) else None)
    folder = from_here(path)
    if isinstance(source, str) and os.path.isabs(source):
        source = str(from_here(source))
    src = sh_quote(source) if isinstance(source, str) and source else "SOURCE"
    cmd = command(f"embedrec ingest {src} -o {sh_quote(str(folder))} --overwrite")
    return marked(f"rerun {cmd} with the --set it was ingested with", "ingest it again with er.ingest(..., "
                  "overwrite=True)")


def parse_manifest(raw: bytes, folder: Path, path: Path) -> tuple[dict, str]:
    """(the manifest, the fix its dataset's errors advise) from the bytes of ``folder``'s manifest.json (the
    generation read of the dataset at ``path``), checked: JSON, embedrec's format, its seal, the fields its readers
    take (FIELDS). Every reader of a dataset's manifest goes through it, so a damaged one reads alike."""
    where = Path(folder) / MANIFEST
    fix = dataset_fix(path)
    try:
        manifest = loads_json(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"dataset manifest '{where}' is corrupt ({first_line(e)}); {fix}") from None
    check_format(manifest, FORMAT_VERSION, f"'{folder}'", fix)
    fix = dataset_fix(path, manifest)
    check_seal(manifest, where, "dataset manifest", fix, "dataset")
    check_fields(manifest, FIELDS, where, "dataset manifest", fix)
    return manifest, fix


def read_manifest(folder: Path, path: Path) -> tuple[dict, str]:
    """:func:`parse_manifest` of ``folder``'s manifest.json read from its path (a regular file of at most
    JSON_MAX bytes), for a reader that opens the files one by one."""
    where = Path(folder) / MANIFEST
    try:
        raw = read_regular(where, "prepared dataset file", dataset_fix(path), limit=JSON_MAX)
    except FileNotFoundError:
        raise missing_error(where, "prepared dataset file", dataset_fix(path)) from None
    return parse_manifest(raw, folder, path)


def check_same(path, manifest: dict, fingerprint: str | None, recorded, want: str | None, run_name: str,
               n_users: int | None, n_movies: int | None, given: str = "dataset_dir") -> None:
    """Refuse the dataset at ``path`` (its ``manifest``; ``fingerprint``: of its files, '' or None where unknown)
    where it is not the one the run ``run_name`` was trained on: its files' fingerprint other than the run's
    record ``want`` (None: not checked), with why (re-ingested since at the recorded folder, or another folder
    than ``recorded``); or its users and movies other than the run's ``n_users`` x ``n_movies`` (None: not
    checked). ``given``: the library's argument that named ``path`` (as :func:`find`'s), which the fix for another
    folder names (the recorded one re-ingested is read only without one, so its fix names dataset_dir=)."""
    if want and fingerprint and fingerprint != want:
        rec = recorded_folder(recorded)
        same = rec is not None and os.path.realpath(path) == os.path.realpath(rec)
        if same:  # data.prepared is read while the recorded folder holds another dataset (session 69): a copy
            why = f"its files changed since, e.g. re-ingested on {manifest.get('created', '?')}"
            fix = marked(f"give a copy of the dataset it was trained on with --set data.prepared=COPY --run "
                         f"{sh_quote(run_name)}, put it back in '{rec}', or train the run again",
                         "give the dataset it was trained on with dataset_dir=FOLDER, or train it again")
        else:
            why = f"it was trained on '{rec}'"
            arg = marked("--set data.prepared=FOLDER", f"{given}=FOLDER")  # moved_to= too: the recorded one is gone
            fix = (f"give the dataset it was trained on with {arg}"
                   ", or «train the run again|train it again»")
        raise ArtifactError(f"dataset '{path}' is not the one run '{run_name}' was trained on ({why}); {fix}")
    counts = manifest.get("counts") or {}
    if n_users is not None and (counts.get("users"), counts.get("movies")) != (n_users, n_movies):
        raise ArtifactError(f"dataset '{path}' ({counts.get('users')} users x {counts.get('movies')} movies) is not "
                            f"the one run '{run_name}' was trained on ({n_users} x {n_movies})")
