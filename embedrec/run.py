"""A run opened: the model a run folder's ``current`` names, resolved once and held (``load_run``, which says what is
wrong with a folder that is no run, or a run with no model yet, and what to do), its manifest checked (``_opened``),
as a ``Run`` whose every read is checked against that manifest (``Run.array``, ``Run.parquet``, ``Run.catalogue``,
``Run.read_verified``, ``Run.copy_verified``, ``Run.link_verified``). The run directory is owned by this module and
its siblings, each importing only those before it: run_layout.py (the layout and its names), run_updates.py
(update-users' records in the manifest), run_checks.py (what a folder is; ``check_run_folder``), run_fixes.py (a damaged
run's advice), run_publish.py (``run_lock``, ``publish``), run.py, then run_inputs.py (the dataset and config a run
was trained on and with). The files of a new model folder are written by artifacts.py.

A reader resolves ``current`` once and reads everything from that one folder, so a ``recommend`` running while
``train`` rewrites the run sees the old artifacts or the new ones, never a mix; it holds a shared lock on that
folder for as long as it lives, and pruning skips folders so held. Writers (train, index rebuild) hold
``RUN/.lock``. The manifest records the SHA-256 and size of every file (``checksums``; the FAISS files also
under ``index.files``) and a checksum of itself; readers check each file when they open it (files above
integrity.VERIFY_ON_OPEN_MAX by size and, when they have been written, copied or replaced since they were hashed
(``integrity.check_file``), by a streamed SHA-256; ``embedrec verify`` hashes everything). Nothing here imports
torch.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedrec.data.layout import datasets_beside, has_manifest
from embedrec.errors import ArtifactError, command, first_line, sh_quote, shorten
from embedrec.fsutil import integrity as _fs  # _fs.VERIFY_ON_OPEN_MAX read at each use (a test lowers it)
from embedrec.fsutil.files import (
    link_loop,
    loads_json,
    missing_error,
    probe_json,
    read_denied,
    read_error,
    read_json,
    read_parquet_table,
)
from embedrec.fsutil.generations import current_link, open_current
from embedrec.fsutil.integrity import (
    check_fields,
    check_format,
    check_seal,
    copy_checked,
    link_checked,
    read_checked,
)
from embedrec.run_checks import (
    RUN_FIELDS,
    bare_model_folder,
    is_dataset_folder,
    is_run_entry,
    other_manifest,
    trained_beside,
)
from embedrec.run_fixes import run_fix
from embedrec.run_layout import (
    ARTIFACTS,
    CANDIDATE_NAME,
    CATALOGUE,
    DIM_NAME,
    DIST_FOLDER,
    MANIFEST,
    MODEL_FOLDER,
    MOVIES_TABLE,
    REFIT,
    RUN_FORMAT,
    USERS_TABLE,
    WRITER_LOCK,
    has_checkpoint,
    run_of,
    writer_note,
)
from embedrec.run_updates import check_updates, updates_of


@dataclass
class Run:
    """A trained run, loaded from plain files (numpy, parquet, JSON, FAISS)."""

    path: Path
    manifest: dict
    hold: object = field(default=None, repr=False, compare=False)  # FolderHold: keeps pruning away
    # arrays read into memory by keep(), which array() answers from (a pickled model carries them)
    held: dict = field(default_factory=dict, repr=False, compare=False)

    def keep(self, names) -> None:
        """Read the arrays ``names`` (each optional) into memory now, so that this Run answers them after its
        folder is gone (a pickled model: a review found a model with user features failing once it was)."""
        for name in names:
            if name not in self.held:
                a = self.array(name, optional=True)
                if a is not None:
                    self.held[name] = a

    def checksum(self, name: str) -> dict | None:
        return (self.manifest.get("checksums") or {}).get(name)

    def read_verified(self, p: Path, entry: dict | None = None, what: str = "run artifact",
                      fix: str | None = None) -> bytes | None:
        """The bytes of a run file checked against the manifest (``entry``, default its ``checksums`` entry);
        None for a file above integrity.VERIFY_ON_OPEN_MAX, checked where it lies (``integrity.check_file``): read it from
        its path."""
        entry, fix = entry or self.checksum(p.name), fix or run_fix(self.path)
        if entry is None and self.manifest.get("checksums"):  # a run with checksums lists every file it has
            raise ArtifactError(f"{what} '{p}' is not listed in its manifest's checksums (the manifest was edited); "
                                f"{fix}")
        try:
            return read_checked(p, entry, what, fix, _fs.VERIFY_ON_OPEN_MAX)
        except FileNotFoundError:
            if p.parent == self.path:  # the model's folder gone (moved, pruned): said so, not "train again" (a
                self.check_here(p.name)  # red team: evaluate of a moved run read its config.yaml only then)
            raise missing_error(p, what, fix) from None

    def copy_verified(self, p: Path, dest: Path, entry: dict | None = None, what: str = "run artifact",
                      fix: str | None = None) -> None:
        """Copy one run file to ``dest``, checked against the manifest first: a copy made unchecked would be
        resealed with fresh checksums (index rebuild) or handed on (export) and pass every later check. Up to
        integrity.VERIFY_ON_OPEN_MAX the checked bytes are written; above it the bytes are hashed as they are copied (one
        read: what was read to copy is what counts) and a copy that does not match is removed. A file with no
        recorded checksum (a run from before checksums) is streamed as it is."""
        import shutil

        entry, fix = entry or self.checksum(p.name), fix or run_fix(self.path)
        if not entry:
            if not p.exists():
                raise missing_error(p, what, fix)
            shutil.copy2(p, dest)
            return
        try:
            size = p.stat().st_size
        except OSError as e:
            raise (read_error(e, p, what, fix, missing=True) or e) from None
        data = self.read_verified(p, entry, what, fix) if size <= _fs.VERIFY_ON_OPEN_MAX else None
        if data is not None:
            dest.write_bytes(data)
            shutil.copystat(p, dest)
            return

        copy_checked(p, dest, entry, what, fix)

    def link_verified(self, p: Path, dest: Path, entry: dict | None = None, what: str = "run artifact",
                      fix: str | None = None) -> tuple[dict, list[int] | None] | None:
        """Hard-link one run file to ``dest`` (a new model folder's), the link checked against the manifest by a
        full hash (``integrity.link_checked``): the new folder shares the file instead of a copy of its bytes.
        Returns the checked entry and the stat it was hashed under, for the new manifest; None where no link was made
        (another file system, one without hard links, a file with no recorded checksum, ...): copy it
        (:meth:`copy_verified`), which says what is wrong with it."""
        entry = entry or self.checksum(p.name)
        return link_checked(p, dest, entry, what, fix or run_fix(self.path)) if entry else None

    def check_here(self, name: str) -> None:
        """ArtifactError where this model's folder is gone (a model kept past it: a pickled copy holds no lock on
        it, a later train pruned it, or it was removed), before ``name`` is said to be missing from it."""
        if not self.path.is_dir():
            from embedrec.errors import command, marked

            run_dir = run_of(self.path)
            if not Path(run_dir).is_dir():  # the run itself moved or removed: its old path said, and where to look
                raise ArtifactError(f"the model folder '{self.path}' this model reads '{name}' from is gone (its run "
                                    f"folder '{run_dir}' too: moved or removed); open the run again: "
                                    + marked("embedrec recommend --run NEW/PATH", "er.open('NEW/PATH')") +
                                    " where it is now, or train it again if it was removed")
            again = marked(command(f"embedrec recommend --run {sh_quote(str(run_dir))}"),
                           f"er.open({str(run_dir)!r})")
            raise ArtifactError(f"the model folder '{self.path}' this model reads '{name}' from is gone (a later "
                                f"train replaced it, or it was moved or removed); open the run again: {again}, or "
                                "train it again if the run is gone too")

    def array(self, name: str, mmap: bool = False, optional: bool = False, mapped: bool = False) -> np.ndarray | None:
        """``name``.npy, checked against the manifest. ``optional``: a file a run may not have (a model without
        biases, a feature without its bias): None when it is absent and its manifest does not list it; a listed
        file that is gone is an ArtifactError, as for any other. ``mmap``: memory-mapped unchecked (a file its
        caller has checked already). ``mapped``: checked as ever, and, above integrity.VERIFY_ON_OPEN_MAX (checked
        where it lies: ``integrity.check_file``), memory-mapped read-only instead of read whole, so a reader of a
        few rows (serving's user table) reads those rows alone."""
        if name in self.held and not mmap:
            return self.held[name]
        p = self.path / f"{name}.npy"
        if not p.exists():
            if (optional or name in ("user_bias", "movie_bias")) and not self.checksum(p.name) and \
                    link_loop(p) is None:
                return None
            self.check_here(p.name)
            raise missing_error(p, "run artifact", run_fix(self.path))
        try:
            data = None if mmap else self.read_verified(p)
            if data is None:
                return np.load(p, allow_pickle=False, mmap_mode="r" if mmap or mapped else None)
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            if isinstance(e, OSError) and (denied := read_denied(e, p, "run artifact")) is not None:
                raise denied from None  # its permissions, not its bytes: no retrain (a red team)
            raise ArtifactError(f"run artifact '{p}' is corrupt ({first_line(e)}); {run_fix(self.path)}") from None

    def catalogue(self) -> tuple[np.ndarray, np.ndarray, dict] | None:
        """(user ids, movie ids, {"title", "year", "genres"} lists per movie row) from user_ids.npy,
        movie_ids.npy and movies.json, each checked against the manifest; None for a run written before
        these files (read its Parquet files instead). String ids come back as object arrays of str."""
        p = self.path / CATALOGUE
        if not p.exists():
            if self.checksum(CATALOGUE) or link_loop(p) is not None:  # the manifest lists it: not an older run
                raise missing_error(p, "run artifact", run_fix(self.path))
            return None
        data = self.read_verified(p)
        try:
            movies = loads_json(data if data is not None else p.read_bytes(), shallow=False)  # checked below
        except (ValueError, UnicodeDecodeError) as e:
            raise ArtifactError(f"run artifact '{p}' is corrupt ({first_line(e)}); {run_fix(self.path)}") from None
        n_users, n_movies = self.manifest.get("n_users"), self.manifest.get("n_movies")
        check_catalogue(self.path, movies, n_movies)
        ids = []
        for name, n in (("user_ids", n_users), ("movie_ids", n_movies)):
            a = check_id_table(self.path, name, self.array(name), n)
            ids.append(a.astype(object) if a.dtype.kind == "U" else a)
        return ids[0], ids[1], movies

    @property
    def explicit(self) -> bool:
        return self.manifest["model"]["objective"] == "explicit"

    def parquet(self, name: str, columns: list[str] | None = None, optional: bool = False):
        """``name``.parquet as a pyarrow Table (``columns`` only), checked against the manifest first (a damaged
        file is an ArtifactError, never read as if whole). ``optional``: None when the file is absent and its
        manifest does not list it (a run from before the file)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = self.path / f"{name}.parquet"
        if optional and not p.exists() and not self.checksum(p.name) and link_loop(p) is None:
            return None
        data = self.read_verified(p)
        try:
            # ParquetFile reads the file directly; pq.read_table goes through pyarrow.dataset, which imports pandas
            if data is None:
                return check_columns_once(read_parquet_table(p, columns), p, run_fix(self.path))
            return check_columns_once(pq.ParquetFile(pa.BufferReader(data)).read(columns=columns), p,
                                      run_fix(self.path))
        except FileNotFoundError:
            raise missing_error(p, "run artifact", run_fix(self.path)) from None
        except (OSError, ValueError, KeyError, pa.ArrowException) as e:
            raise ArtifactError(f"run artifact '{p}' cannot be read ({first_line(e)}); {run_fix(self.path)}") from None


def check_columns_once(table, path: Path, fix: str):
    """``table``, a run's Parquet file at ``path`` as read (pyarrow), each of its columns held once; else an
    ArtifactError naming the file and the column (a red team: a re-sealed movies.parquet holding movie_id twice was
    "internal error (KeyError: 'Field \"movie_id\" exists 2 times in schema')" in verify and update-users)."""
    names = table.schema.names
    twice = next((c for c in names if names.count(c) > 1), None)
    if twice is not None:
        raise ArtifactError(f"run artifact '{path}' holds the column '{twice}' {names.count(twice)} times, where a "
                            f"run's table holds each column once; {fix}")
    return table


def read_catalogue(folder: Path):
    """A model ``folder``'s movies.json parsed (its hash checked by the caller: verify's, carry_over's copy), or None
    where it has none; unparsable, an ArtifactError naming it. For verify.check_run_arrays."""
    p = folder / CATALOGUE
    if not p.exists():
        return None
    try:
        return loads_json(p.read_bytes(), shallow=False)
    except (ValueError, UnicodeDecodeError) as e:
        raise ArtifactError(f"run artifact '{p}' is corrupt ({first_line(e)}); {run_fix(folder)}") from None


def twin_groups(titles: list, years: list) -> list[list[int]]:
    """The rows of each film a catalogue lists under several ids, by title and year as written (ML-100K's 17
    titles, e.g. rows 245 and 267, 'Chasing Amy (1997)'); a title without a year is no film's twin (two 'Hamlet's
    may be two films). Each group ascending, the groups by their first row. Pure Python (serving starts without
    pandas; 0.7 s at 500,000 titles, so a run's movies.json holds them, under 'twins': artifacts.write_catalogue, :func:`check_catalogue`)."""
    films: dict = {}
    for r, film in enumerate(zip(titles, years)):
        if film[0] and film[1] is not None:
            films.setdefault(film, []).append(r)
    return sorted(v for v in films.values() if len(v) > 1)


YEARS = (-(2 ** 31), 2 ** 31 - 1)  # a movie's year in movies.json: null or a whole number movies.parquet's int32 holds


def check_catalogue(folder: Path, movies, n_movies) -> dict:
    """movies.json parsed (``movies``) of the model ``folder``: a title, year and genres list of one entry for each
    of the manifest's ``n_movies`` movies (in movie_ids.npy's rows), else an ArtifactError naming it. What
    Run.catalogue checks as serving reads it, and verify.check_run_arrays for verify and the writers that carry it
    into a new model folder (a re-sealed movies.json with a row added passed verify and index rebuild). Each year
    null or a whole number the dataset's movies.parquet holds (int32: ``YEARS``; a red team: a re-sealed NaN and a
    400-digit year passed verify and were served, and the year filter was an internal OverflowError); the row of
    the first bad one looked for only where there is one."""
    if not isinstance(movies, dict) or any(not isinstance(movies.get(c), list) or len(movies[c]) != n_movies
                                           for c in ("title", "year", "genres")):
        raise ArtifactError(f"run artifact '{folder / CATALOGUE}' does not list the run's {n_movies} movies; "
                            f"{run_fix(folder)}")
    years = movies["year"]  # (about 0.1 s a million movies: their types, then each year once)
    if set(map(type, years)) - {int, type(None)} or any(not YEARS[0] <= y <= YEARS[1] for y in set(years) - {None}):
        i, y = next((i, y) for i, y in enumerate(years) if y is not None and
                    (type(y) is not int or not YEARS[0] <= y <= YEARS[1]))
        shown = shorten(str(y) if type(y) is int else repr(y), 24)  # (a text as '1995', quoted)
        raise ArtifactError(f"run artifact '{folder / CATALOGUE}' holds the year {shown} for movie row {i:,}, "
                            "where a movie's year is a whole number (of 32 bits, as the dataset holds it) or null; "
                            f"{run_fix(folder)}")
    _check_twins(folder, movies, n_movies)
    return movies


def _check_twins(folder: Path, movies: dict, n_movies: int) -> None:
    """movies.json's ``twins`` (where it has them; a run from before session 67 has none): lists of two or more
    distinct rows of one title and year, no row in two, else an ArtifactError (a list leaves a user's rated movie's
    twins out: a re-sealed group of two films would hide one from everyone who rated the other)."""
    groups = movies.get("twins")
    if groups is None:
        return
    seen: set = set()
    for g in groups if isinstance(groups, list) else [None]:
        ok = isinstance(g, list) and len(g) > 1 and all(type(r) is int and 0 <= r < n_movies for r in g)
        if ok:
            films = {(movies["title"][r], movies["year"][r]) for r in g}
            ok = len(films) == 1 and None not in next(iter(films)) and not seen & set(g) and len(set(g)) == len(g)
            seen.update(g)
        if not ok:
            raise ArtifactError(f"run artifact '{folder / CATALOGUE}' lists as one film's ids "
                                f"{shorten(json.dumps(g), 60)}, which are not rows of one title and year; "
                                f"{run_fix(folder)}")


def check_id_table(folder: Path, name: str, ids: np.ndarray, n: int) -> np.ndarray:
    """``ids``, a run's user_ids.npy or movie_ids.npy (``name`` without .npy) of the model ``folder``: one id for
    each of the manifest's ``n`` users or movies, else an ArtifactError naming the file and what it holds. What
    Run.catalogue checks as it reads them, and verify.check_run_arrays for verify and the writers that carry the
    files into a new model folder (session 52's red team: a short movie_ids.npy, re-sealed, passed verify and was
    sealed again by index rebuild, which recommend then refused)."""
    if ids.ndim != 1 or ids.shape[0] != n:
        held = f"{ids.shape[0]:,}" if ids.ndim == 1 else f"an array of shape {ids.shape}"
        raise ArtifactError(f"run artifact '{folder / name}.npy' does not hold the run's {n:,} ids (it holds {held}); "
                            f"{run_fix(folder)}")
    return ids


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def unpublished_error(run_dir: Path) -> ArtifactError | None:
    """The one line for a run folder without its ``current`` link that holds what a train leaves (every reader's,
    and verify's): published model folders (the link removed by hand, or a train killed between its publish and
    the link, whose ``train --resume`` publishes the model again: then both ways on are named), or a training's
    checkpoints alone (an interrupted training: its resume). None where it holds neither."""
    link = run_dir / "current"
    models = model_folders(run_dir) if run_dir.is_dir() else []
    resume = command(f"embedrec train --resume --run {sh_quote(str(run_dir))}")
    finish = f"«{resume} and the -c/--set it was started with|embedrec.api.train_run(cfg, resume=True)»"
    # (a training's checkpoints: an interrupted training where the folder shows a run, its writer lock a train
    # makes first; a user's own refit/checkpoint.pt beside their files was said to be one, a red team)
    checkpoints = has_checkpoint(run_dir)
    lock = run_dir / WRITER_LOCK  # (a holder's line: an empty one beside other files may be the user's own, as
    marked = bool(models) or is_run_entry(lock) and _size(lock) > 0 or any(  # run_checks.check_run_folder says)
        CANDIDATE_NAME.fullmatch(n) or DIM_NAME.fullmatch(n) or DIST_FOLDER.fullmatch(n) for n in _names(run_dir))
    if checkpoints and not marked:  # a copy without its lock, or a user's own checkpoint: both ways said
        return ArtifactError(f"no trained model in '{run_dir}': it holds a training checkpoint but no other mark of "
                             f"an embedrec run (its writer lock, a candidate or model folder); if it is a training "
                             f"of embedrec's that was interrupted (a copy leaves its lock out), finish it with "
                             f"{finish}; else point run.dir at the run train wrote")
    if models:  # a red team: a removed link was said to be an interrupted training, to be resumed
        updated = updated_folder(run_dir, models[-1])
        return ArtifactError(f"'{link}', the link to the model folder the run serves, is missing (removed by hand?), "
                             f"while the run holds {len(models)} published model folder"
                             f"{'s' if len(models) > 1 else ''}: link the newest again (ln -s {models[-1]} "
                             f"{sh_quote(str(link))}), then check it with «embedrec verify "
                             f"{sh_quote(str(run_dir))}|er.verify_files({str(run_dir)!r})»" +
                             # (not where the newest holds update-users' updates: a train's publish is not the last
                             # thing done there, and a resume would serve the trained model without them: a red team)
                             (f"; or, where a train was stopped as it published (its checkpoints are there), finish "
                              f"it with {finish}" if checkpoints and not updated else ""))
    if checkpoints:  # one way on, not two (a review: resume, or train afresh, both offered)
        return ArtifactError(f"no trained model in '{run_dir}': its training was interrupted; finish it with {finish}")
    return None


def model_folders(run_dir: Path) -> list[str]:
    """The names of ``run_dir``'s published model folders (real folders, not links), oldest first."""
    return sorted(p.name for p in run_dir.glob(f"{ARTIFACTS}-*")
                  if MODEL_FOLDER.fullmatch(p.name) and p.is_dir() and not p.is_symlink())


def updated_folder(run_dir: Path, name: str) -> bool:
    """Whether the model folder ``name`` of ``run_dir`` is one update-users published (its manifest records updates);
    False where its manifest cannot be read (its readers say why)."""
    manifest = probe_json(run_dir / name / MANIFEST)
    return isinstance(manifest, dict) and bool(updates_of(manifest))


def unlinked_update(run_dir: Path) -> ArtifactError | None:
    """The refusal of ``train --resume`` in a run whose ``current`` link is missing while its newest model folder
    holds update-users' updates: the run is finished and updated since, and a resume would publish the model
    trained again from its checkpoints, without them, the next publish pruning the folder that holds them (a red
    team). None otherwise."""
    if os.path.lexists(run_dir / "current") or not run_dir.is_dir():
        return None
    models = model_folders(run_dir)
    if not models or not updated_folder(run_dir, models[-1]):
        return None
    link = run_dir / "current"
    return ArtifactError(f"cannot resume: '{link}', the link to the model folder the run serves, is missing "
                         f"(removed by hand?), and its newest model folder {models[-1]} holds the updates "
                         f"update-users made after the training finished; link it again (ln -s {models[-1]} "
                         f"{sh_quote(str(link))}), then check it with «embedrec verify "
                         f"{sh_quote(str(run_dir))}|er.verify_files({str(run_dir)!r})» (a resume would serve the "
                         "model trained without them)")


def _as_found(folder: Path) -> Path:
    """``folder`` as given, or, where it is '.' or ends in '..', as the file system finds it (os.path.realpath): its
    name and parent are then the folder's own, where Path('.').name is '' and Path('..').parent is '.' (a red team:
    `--run .` inside an earlier model folder served that model, which its path refused; session 56's writers
    check such a folder the same way, fsutil.outputs.refuse_inside_store)."""
    return Path(os.path.realpath(folder)) if folder.name in ("", os.pardir) else folder


def load_run(run_dir: str | Path, dataset: str | Path | None = None) -> Run:
    """The run's current model. ``dataset``: the config's data.prepared, for the error of a folder with neither a
    run nor a dataset, which says to ingest first, then train (a first-hour review: 'run train' failed next with
    'run ingest')."""
    run_dir = Path(run_dir)
    if run_dir.name == "current" and run_dir.is_symlink() and not (run_dir / "current").exists():
        run_dir = run_dir.parent  # RUN/current: the run it is the model of (a review: "no trained model" there)
    elif run_dir.name == "current" and run_dir.is_dir() and not os.path.lexists(run_dir / "current") and \
            (run_dir / MANIFEST).is_file() and bare_model_folder(run_dir) is None:
        run_dir = run_dir.parent  # RUN/current of a run copied with links followed (cp -rL): that run's model
    found = _as_found(run_dir)
    if found.name.startswith(f"{ARTIFACTS}-") and not (found / "current").exists() and \
            (found.parent / "current").exists():  # a model's own folder (what TrainedModel.save returns)
        parent = run_dir.parent if found is run_dir else Path(run_dir, os.pardir)  # '.': '..', '..': '../..'
        if os.path.realpath(found.parent / "current") != os.path.realpath(found):
            raise ArtifactError(f"'{run_dir}' is an earlier model of run '{parent}', which now serves "
                                f"another; open the run folder '{parent}' for its current model")
        run_dir = parent
        found = _as_found(run_dir)
    owner = found
    while owner.name == REFIT or DIM_NAME.fullmatch(owner.name) or CANDIDATE_NAME.fullmatch(owner.name) or \
            re.fullmatch(r"path-[0-9]+", owner.name):  # RUN/refit/path-0, RUN/als-dim-256/als-reg-0.01 (a review)
        owner = owner.parent
    if owner != found and not (run_dir / "current").exists() and (owner / "current").exists():
        # a folder training works in, inside a finished run (a red team: "its training was interrupted; finish
        # it with --resume" sent a resume into the wrong folder)
        raise ArtifactError(f"'{run_dir}' is a folder training works in, inside the run '{owner}'; open "
                            f"the run: «--run {sh_quote(str(owner))}|er.open({str(owner)!r})»")
    link = run_dir / "current"
    if run_dir.exists() and not run_dir.is_dir():  # a red team: er.open('/etc/passwd') was a NotADirectoryError
        raise ArtifactError(f"'{run_dir}' is a file, not a run folder; pass the run directory train wrote (run.dir, "
                            "e.g. runs/ml-100k)")
    if link.exists() and not link.is_symlink() and not link.is_dir():
        models = sorted(p.name for p in run_dir.glob(f"{ARTIFACTS}-*") if p.is_dir())
        again = (f"link its newest model again (ln -sfn {models[-1]} {sh_quote(str(link))}) or "
                 if models else "")
        raise ArtifactError(f"'{link}' is a file, where a run has the link to its model folder (replaced by hand?); "
                            f"move it away, then {again}{run_fix(run_dir)}")
    if is_dataset_folder(run_dir):
        raise ArtifactError(f"'{run_dir}' is a prepared dataset (what embedrec ingest writes), not a run; pass the "
                            "run directory train wrote (run.dir, e.g. runs/ml-100k)")
    if link.is_symlink() and not link.exists():
        try:
            os.stat(link)
        except OSError as e:
            if e.errno == errno.ELOOP:  # a red team: 'current -> current' was said to point at a missing folder
                raise ArtifactError(f"'{link}' is a loop of links (it leads back to itself: -> "
                                    f"{current_link(run_dir)}); {run_fix(run_dir)}") from None
        models = model_folders(run_dir)
        # (an ops review: a rollback's mistyped folder name was told to train again, its good folders beside it)
        again = (f"the run holds {len(models)} model folder{'s' if len(models) > 1 else ''}: link the newest "
                 f"again (ln -sfn {models[-1]} {sh_quote(str(link))}), or the one you meant, then check it with "
                 f"«embedrec verify {sh_quote(str(run_dir))}|er.verify_files({str(run_dir)!r})»; or "
                 if models else "")
        raise ArtifactError(f"the model folder '{run_dir / current_link(run_dir)}' that '{link}' points to is missing "
                            f"(removed by hand, or a name mistyped?); {again}{run_fix(run_dir)}")
    if not os.path.lexists(link) and bare_model_folder(run_dir) is not None:
        # a model folder copied out of its run (cp -rL runs/x/current model1), whatever its name: served as it is,
        # its manifest and files checked as any run's (a first-hour review: verify passed it, recommend said "no
        # trained model in 'model1'; run 'embedrec train --run model1' first")
        from embedrec.fsutil.locks import FolderHold

        try:
            hold = FolderHold(run_dir)
        except OSError:
            hold = None
        return _opened(run_dir, hold, run_dir, bare=True)
    if not link.exists():
        from embedrec.errors import Busy, command

        busy = writer_note(run_dir)
        if busy is not None:  # a first train before it publishes: not "interrupted", not "train first"
            raise Busy(f"{busy}: no model is published there yet; wait for it to finish, then run this "
                                "command again")
        unpublished = unpublished_error(run_dir)
        if unpublished is not None:
            raise unpublished
        where = "" if run_dir.is_absolute() or run_dir.exists() else f" (relative to the current folder {Path.cwd()})"
        others = trained_beside(run_dir)
        empty = not run_dir.exists() or not any(run_dir.iterdir())  # (a review: an empty folder said 'train')
        if dataset is not None and not others and empty and not has_manifest(dataset):
            ingest = command("embedrec ingest")
            train = command(f"embedrec train --run {sh_quote(str(run_dir))}")
            near = datasets_beside(Path(dataset))
            if near:  # an own file ingested beside it (an own-data review: 'ingest clicks.csv' then 'recommend' was
                # told to ingest ml-100k): train that one
                mine = Path(dataset).parent / near[0]
                runs = Path(run_dir).parent / near[0]
                train = command(f"embedrec train --set data.prepared={sh_quote(str(mine))} --run "
                                f"{sh_quote(str(runs))}")
                raise ArtifactError(
                    f"no trained model in '{run_dir}'{where}; {Path(dataset).parent} holds the dataset "
                    f"{', '.join(near[:3])}{' ...' if len(near) > 3 else ''}: «train on it with {train}, then give "
                    f"this command --run {sh_quote(str(runs))}|ds = er.load_dataset({str(mine)!r}); "
                    f"er.train(ds).save({str(runs)!r}), then er.open({str(runs)!r})»")
            raise ArtifactError(
                f"no trained model in '{run_dir}'{where}, and no prepared dataset at '{dataset}' to train one on; "
                f"«ingest, then train: {ingest}, then {train}, each with this command's -c/--set options|ingest, "
                f"then train: ds = er.ingest(source, cfg), then er.train(ds, cfg).save({str(run_dir)!r})»")  # (a review:
                # it named er.train_run, which embedrec does not export)
        # a relative run.dir is read from the current folder: said (a review: a config used from another
        # folder said "no trained model in 'runs/x'" with the config's own folder in mind)
        train = command(f"embedrec train --run {sh_quote(str(run_dir))}")  # (a review: the bare 'embedrec train'
        # it said trained the default run, not this one)
        raise ArtifactError(f"no trained model in '{run_dir}'{where}; «run {train} first (with this "
                            f"command's -c/--set options)|train and save a model there first: er.train(ds, "
                            f"cfg).save({str(run_dir)!r})», or point run.dir at the run train wrote{others}")
    got = open_current(run_dir)  # resolved once and held: pruning skips it while this Run lives
    if got is None:
        raise ArtifactError(f"the model in '{run_dir}' kept being replaced while it was opened; run the command again")
    path, hold = got
    return _opened(path, hold, run_dir)


def _opened(path: Path, hold, run_dir: Path, bare: bool = False) -> Run:
    """The Run of the model folder ``path`` (held by ``hold``), its manifest checked: sealed, its fields, its own
    (not another model's copied in), and the Parquet files recommend reads by path. ``bare``: a model folder on its
    own (bare_model_folder), ``run_dir`` itself."""
    link = run_dir / "current"
    fix = run_fix(run_dir)
    manifest = read_json(path / MANIFEST, "run manifest", fix)
    check_format(manifest, RUN_FORMAT, f"run '{path}'", fix)
    if "n_users" not in manifest and "counts" in manifest and "layout" in manifest:  # what ingest writes
        raise ArtifactError(f"'{link}' leads to '{path}', a prepared dataset (what embedrec ingest writes), not a "
                            f"trained model; {fix}")
    check_seal(manifest, path / MANIFEST, "run manifest", fix, "run")
    check_fields(manifest, RUN_FIELDS, path / MANIFEST, "run manifest", fix)
    check_updates(manifest, path / MANIFEST, fix)  # (which users were added: trained_users)
    other_manifest(path, manifest, fix, bare)
    run = Run(path.resolve(), manifest, hold)
    for name in (USERS_TABLE, MOVIES_TABLE):  # read by recommend straight from the path
        if run.checksum(name):
            run.read_verified(run.path / name)
    return run
