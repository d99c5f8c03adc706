"""``embedrec verify``: hash every file a run (its current model) or a prepared dataset lists, and refuse a file
its manifest does not list; what the commands that open them check on the way (``run.Run``,
``data.dataset.load_dataset``), done for all of them at once. Also what serving and evaluate check of a run's
arrays once read (:func:`check_served_arrays`, :func:`check_seen_rows`): that they fit together."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from embedrec.errors import ArtifactError, first_line, from_here, shorten
from embedrec.fsutil.files import loads_json, read_denied, read_error, read_json, read_parquet_table
from embedrec.fsutil.integrity import check_fields, check_format, check_seal
from embedrec.run import (
    check_catalogue,
    check_columns_once,
    check_id_table,
    load_run,
    read_catalogue,
    unpublished_error,
)
from embedrec.run_checks import RUN_FIELDS, bare_model_folder, checked_training_ratings, is_dataset_folder
from embedrec.run_fixes import files_fix, index_fix, run_fix
from embedrec.run_layout import (
    ARTIFACTS,
    COS_FILE,
    FACTOR_FILES,
    IP_FILE,
    LOWPASS_A,
    MANIFEST,
    MOVIE_BIAS,
    MOVIE_FACTORS,
    MOVIES_TABLE,
    RUN_FORMAT,
    SOLVE_WEIGHTS,
    SOLVED_AS_NEW,
    UPDATE_PAIRS,
    UPDATE_PAIRS_DTYPE,
    UPDATED_USERS,
    USER_FACTORS,
    USER_SCALE,
    USERS_TABLE,
)
from embedrec.run_updates import check_updates, trained_users, updates_of, users_as_new
from embedrec.sparse import gather_csr, isin, unique

ID_TABLES = {"user": USERS_TABLE, "movie": MOVIES_TABLE}  # a run's tables of its users' and movies' ids
EXPORT_MARKER = ".embedrec-export.json"  # what `embedrec export` writes beside its files: their sizes and SHA-256


def verify_path(path: str | Path) -> dict:
    """``embedrec verify``: hash every file a run (its current artifacts), a prepared dataset or an export folder
    (its marker's record) lists."""
    from embedrec.data.dataset import open_generation
    from embedrec.data.layout import (
        FIELDS,
        FORMAT_VERSION,
        dataset_fix,
        lost_current_error,
        table_file,
        versioned,
    )
    from embedrec.fsutil.generations import check_current

    p = shown = Path(path)
    check_current(p)  # a current leading into another run or dataset: never verified as this one's (a review)
    lost = lost_current_error(p)  # a dataset whose current is gone or damaged: its own advice, not a run's
    if lost is not None:
        raise lost
    held = open_generation(p)  # a prepared dataset in generations: check the one 'current' names, held
    if held is not None:
        p = held[0]
    _enterable(p, "prepared dataset folder" if held is not None else "folder")
    # a run (load_run names a dangling link's target); a dataset copied with links followed (cp -rL: its current
    # a folder) is checked below, from its own manifest.json, as load_dataset reads it
    if ((p / "current").exists() or (p / "current").is_symlink()) and not is_dataset_folder(p):
        run = load_run(p)
        folder, manifest, what, fix = run.path, run.manifest, "run", run_fix(run.path)
        entries = manifest.get("checksums")
    elif (p / MANIFEST).is_file() or os.path.lexists(p / MANIFEST):  # read_json says what it is
        # the fix ingests into the dataset's folder, not into DATASET/current's generation (a review: verify
        # DATASET/current advised 'ingest ... -o DATASET/gen-<version> --overwrite')
        root = shown.parent if (shown.name == "current" or shown.name.startswith("gen-")) and \
            versioned(shown.parent) else shown
        # a dataset's manifest that does not read: its ingest, as train and history say (a red team: "rerun the
        # command that wrote it"), where the folder is one by its layout (a generation, or a flat one's tables)
        as_dataset = held is not None or root != shown or os.path.lexists(p / table_file("train"))
        manifest = read_json(p / MANIFEST, *(("dataset manifest", dataset_fix(root)) if as_dataset else
                                                    ("manifest",)))
        folder = p
        # the format first, as each reader checks it (a red team: verify said ok for a format "x" every command
        # refused); a run's manifest holds its users' count, a dataset's its counts
        if "checksums" in manifest or "n_users" in manifest and "counts" not in manifest:
            what, fix, entries = "run", run_fix(p), manifest.get("checksums")
            check_format(manifest, RUN_FORMAT, f"run '{p}'", fix)
        else:
            check_format(manifest, FORMAT_VERSION, f"'{p}'", dataset_fix(root))
            what, fix, entries = "dataset", dataset_fix(root, manifest), manifest.get("files")
    elif (p / EXPORT_MARKER).is_file():  # an export folder (a review: its checksums were written, never read)
        return _verify_export(p)
    elif not p.exists():
        raise ArtifactError(f"'{p}' does not exist; give a run directory, a prepared dataset directory or an "
                            "export folder")
    else:
        from embedrec.errors import Busy
        from embedrec.run_layout import writer_note

        busy = writer_note(p)
        if busy is not None:  # a first train before it publishes (a red team: "neither a run ... nor")
            raise Busy(f"{busy}: no model is published there yet to verify; wait for it to finish, then run this "
                       "command again")
        unpublished = unpublished_error(p)  # a train stopped before its current link: the readers' line
        if unpublished is not None:
            raise unpublished
        raise ArtifactError(f"'{p}' is neither a run (no 'current'), a prepared dataset (no manifest.json) nor an "
                            f"export folder (no {EXPORT_MARKER}); give a run directory, a dataset directory or an "
                            "export folder")
    check_seal(manifest, folder / MANIFEST, f"{what} manifest", fix, what)
    check_fields(manifest, RUN_FIELDS if what == "run" else FIELDS, folder / MANIFEST, f"{what} manifest", fix)
    if what == "run":  # the records the readers take on trust (load_run checks them too)
        check_updates(manifest, folder / MANIFEST, fix)
        checked_training_ratings(manifest.get("training_ratings"), str(folder / MANIFEST))
    if not entries:
        raise ArtifactError(f"{what} '{folder}' records no checksums (written by an older embedrec); {fix} to add them")
    total = _check_listed(folder, entries, what, fix, index=manifest.get("index") if what == "run" else None)
    # every file there is listed (a red team: a file's entry taken out of a resealed manifest passed as ok, and the
    # file was then served unchecked); a file of the user's put there is named too
    own = folder.name.startswith((f"{ARTIFACTS}-", "gen-")) or \
        what == "run" and bare_model_folder(folder) is not None  # (a cp -rL copy's top holds more)
    unlisted = sorted(set(os.listdir(folder)) - set(entries) - {MANIFEST}) if own else []
    if unlisted:
        raise ArtifactError(f"{what} folder '{folder}' holds '{unlisted[0]}'"
                            f"{f' and {len(unlisted) - 1} more' if len(unlisted) > 1 else ''}, which its manifest "
                            f"does not list (edited, or a file put there by hand): move it out, or {fix}")
    if what == "dataset":  # its rows as load_dataset checks them (a re-sealed index out of range: train refused it)
        from embedrec.data.dataset import check_rows

        check_rows(folder, manifest, fix)
        if held is not None:
            _check_top_links(shown, entries, fix)
    if what == "run":  # the model folder checked, from here (a review: absolute for runs/x, relative for .../current)
        _check_finite_tables(folder, entries, fix, manifest)  # (the tables' shapes, said with the shapes)
        check_run_arrays(_Folder(folder, manifest), lambda name: _load(folder, entries, name, fix), shapes=False,
                         finite=False, tables=lambda kind: _id_table(folder, entries, kind, fix), catalogue=True)
        _check_indexes(folder, entries, manifest, fix)
        folder = from_here(folder, resolve=False)
    return {"what": what, "path": str(shown if what == "dataset" else folder), "files": len(entries), "bytes": total}


def _check_top_links(root: Path, entries: dict, fix: str) -> None:
    """A dataset in generations keeps a link to current/<name> beside ``current`` for each of its files
    (data.layout.LINKS), which a reader of ``DATASET/<name>`` reads: refuse one that is a file of other bytes than
    the generation's (``entries``: its manifest's records), or a link led elsewhere, as what a reader by that path
    gets is not this dataset's (a red team: a user's own users.parquet there, and verify said ok)."""
    from embedrec.data.layout import LINKS
    from embedrec.fsutil.generations import changed_files, current_link
    from embedrec.fsutil.integrity import as_recorded

    top = root / MANIFEST
    if top.is_file() and not top.is_symlink():  # the flat layout's manifest beside current: a conversion to
        # generations that stopped before its end (the next ingest --overwrite ends it), its files checked by that
        # manifest (a second diff review: said as a user's edit)
        changed = changed_files(root, only=lambda n: (root / n).is_file() and not (root / n).is_symlink())
        if changed:
            raise ArtifactError(f"'{root / changed[0]}' holds other bytes than the manifest beside it records (an "
                                f"edit, or another tool's write){f' and {len(changed) - 1} more' if len(changed) > 1 else ''}"
                                f": a reader of it reads other data; move it out, or {fix}")
        return
    linked = any((root / name).is_symlink() for name in LINKS)  # (a dataset written before the links has none)
    for name in LINKS:
        p = root / name
        if linked and not os.path.lexists(p) or p.exists() and not p.is_symlink() and not p.is_file():
            # (a red team: one deleted, or a folder in its place, and verify said ok)
            said = "is missing" if not os.path.lexists(p) else "is a folder" if p.is_dir() else "is not a file"
            raise ArtifactError(f"'{p}' {said}, where embedrec keeps its link to current/{name} for tools that "
                                f"read the dataset's files by path: {'' if said == 'is missing' else 'move it out and '}"
                                f"put the link back (ln -sfn current/{name} '{p}')")
        if p.is_symlink():
            if current_link(root, name) != f"current/{name}" and os.path.realpath(p) != \
                    os.path.realpath(root / "current" / name):
                raise ArtifactError(f"'{p}' is a link to '{os.readlink(p)}', where embedrec keeps its link to "
                                    f"current/{name}: a reader of '{p}' reads other data; put the link back (ln -sfn "
                                    f"current/{name} '{p}'), or {fix}")
        elif p.is_file() and (name == MANIFEST and p.read_bytes() != (root / "current" / name).read_bytes()
                              or name != MANIFEST and name in entries and not as_recorded(p, entries[name])):
            raise ArtifactError(f"'{p}' is a file of other bytes than the dataset's {name}, where embedrec keeps its "
                                f"link to current/{name} (an edit, or another tool's write): a reader of '{p}' reads "
                                f"other data; move it out and put the link back (ln -sfn current/{name} '{p}')")


def _enterable(folder: Path, what: str) -> None:
    """Refuse a folder verify may not read, as a read (a red team: a dataset generation of mode 000 was 'permission
    denied on ...; write to a folder you may write to', a writer's advice, from the probes below); a folder not
    there is said by them."""
    try:
        os.listdir(folder)
    except PermissionError as e:
        raise read_denied(e, folder, what) from None
    except OSError:
        pass


FINITE_BLOCK = 65_536  # rows checked at a time: no boolean copy of a 10M-row table (a review)


def nonfinite_rows(*tables) -> tuple[int, int | None]:
    """(how many rows, the first) where any of ``tables`` (row-aligned: a factor table and its bias) holds a NaN or
    inf, checked FINITE_BLOCK rows at a time: what ``verify`` reports of a run's tables and a Recommender refuses as
    it opens one."""
    tables = [t for t in tables if t is not None]
    n, count, first = len(tables[0]) if tables else 0, 0, None
    for lo in range(0, n, FINITE_BLOCK):
        bad = np.zeros(min(FINITE_BLOCK, n - lo), dtype=bool)
        for t in tables:
            bad |= ~np.isfinite(np.asarray(t[lo:lo + FINITE_BLOCK])).reshape(len(bad), -1).all(axis=1)
        if bad.any():
            count += int(bad.sum())
            first = lo + int(np.flatnonzero(bad)[0]) if first is None else first
    return count, first


def _check_finite_tables(folder: Path, entries: dict, fix: str, manifest: dict | None = None) -> None:
    """A run's factor tables hold finite numbers only: a NaN or inf row passes its checksum where the manifest was
    sealed again after it was written (a red team: an exact search left such a movie out of every list without
    a word). ArtifactError naming the first such table and how many of its rows. And the embedding tables' shapes
    are the ``manifest``'s users and movies, as serving checks them (:func:`check_served_arrays`; a red team: a
    manifest's n_users edited and sealed again passed verify, which recommend then refused)."""
    shapes = {}
    for name in FACTOR_FILES:
        a = _load(folder, entries, name.removesuffix(".npy"), fix)
        if a is None:
            continue
        shapes[name] = a.shape
        if a.dtype.kind != "f" or not a.size or not a.ndim:
            continue
        check_finite_rows(folder, name, a, fix)
    u, m = shapes.get(USER_FACTORS), shapes.get(MOVIE_FACTORS)
    if manifest is None or u is None or m is None or not isinstance(manifest.get("n_users"), int):
        return
    if len(u) != 2 or len(m) != 2 or u[0] != manifest["n_users"] or m[0] != manifest.get("n_movies") or u[1] != m[1]:
        raise ArtifactError(f"run '{folder}': its embedding tables' shapes ({' x '.join(map(str, u))} users, "
                            f"{' x '.join(map(str, m))} movies) do not match its manifest ({manifest['n_users']:,} "
                            f"users x {manifest.get('n_movies'):,} movies); {fix}")


def check_finite_rows(folder: Path, name: str, table: np.ndarray, fix: str) -> None:
    """ArtifactError where the table ``name`` of the model ``folder`` (a factor or bias table, memory-mapped or
    held) has a row holding a NaN or inf (:func:`nonfinite_rows`): how many, said as verify says it, with ``fix``.
    Read once, FINITE_BLOCK rows at a time."""
    bad, _ = nonfinite_rows(table)
    if bad:
        raise ArtifactError(f"run file '{folder / name}' holds {bad:,} row{'s' if bad > 1 else ''} that "
                            f"{'are' if bad > 1 else 'is'} not finite (NaN or inf), though its checksum matches; "
                            f"{fix}, or restore the run from a copy")


class _Folder:
    """A run's model folder as :func:`check_run_arrays` names it: its path and manifest (verify reads a model folder
    it may not open as a Run: an earlier one, given itself)."""

    def __init__(self, path: Path, manifest: dict):
        self.path, self.manifest = path, manifest


def _check_indexes(folder: Path, entries: dict, manifest: dict, fix: str) -> None:
    """A model folder's FAISS indexes (hashed already) hold its movies' vectors: serve.index.check_stored on every
    row of each (serve.index.SAMPLE_ROWS["verify"]; a red team: another model's index, its checksums and the seal
    made again by hand, passed; then one row of a re-sealed HNSW index edited outside the 256 rows compared)."""
    meta = manifest.get("index") or {}
    movie = _load(folder, entries, MOVIE_FACTORS.removesuffix(".npy"), fix)
    if not meta or movie is None or movie.ndim != 2:
        return
    from embedrec.model.factors import Factors
    from embedrec.serve import index as ix

    lowpass = ((manifest.get("training_ratings") or {}).get("solve") or {}).get("lowpass") or {}
    f = Factors(movie[:0], movie, None, _load(folder, entries, MOVIE_BIAS.removesuffix(".npy"), fix),
                als_columns=lowpass.get("d"))
    own = index_fix(folder, meta)
    for which, name, dim in (("ip", IP_FILE, movie.shape[1] + 1), ("cos", COS_FILE, f.cos_movie.shape[1])):
        if name in entries:  # (hashed above: not again)
            ix.load_index(folder / name, {**meta, "files": {}}, which, movie.shape[0], dim, own,
                          ix.expected_rows(f, which), ix.SAMPLE_ROWS["verify"])


def _load(folder: Path, entries: dict, name: str, fix: str) -> np.ndarray | None:
    """``name``.npy of a model folder verify has hashed (memory-mapped), or None where its manifest lists none."""
    if f"{name}.npy" not in entries:
        return None
    try:
        return np.load(folder / f"{name}.npy", allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:
        raise ArtifactError(f"run file '{folder / name}.npy' cannot be read ({first_line(e)}); {fix}") from None


def _id_table(folder: Path, entries: dict, kind: str, fix: str):
    """users.parquet's user_id column (``kind`` "user") or movies.parquet's movie_id column ("movie") of a model
    folder verify has hashed, or None where its manifest lists none."""
    import pyarrow as pa

    name = ID_TABLES[kind]
    if name not in entries:
        return None
    try:
        return check_columns_once(read_parquet_table(folder / name, [f"{kind}_id"]), folder / name, fix)
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise ArtifactError(f"run file '{folder / name}' cannot be read ({first_line(e)}); {fix}") from None


def _verify_export(folder: Path) -> dict:
    """Every file an export folder's marker lists, hashed against its record (files the user added are theirs)."""
    # a listed file changed: --overwrite refuses to delete it (the user's edit?), so the way on is by hand (a red
    # team: 'export it again (... --overwrite)' was refused by the command it named)
    fix = (f"check '{folder}' and remove it («rm -r|shutil.rmtree» it), then export again, or export into a new "
           "folder")
    # the record itself damaged: --overwrite cannot tell export's files from the user's, so the way on is by hand
    lost = (f"export it again into a new folder, or check '{folder}' and remove it («rm -r|shutil.rmtree» "
            "it), then export again")
    try:
        record = loads_json((folder / EXPORT_MARKER).read_text(encoding="utf-8"))
        entries = record.get("files")
    except (OSError, ValueError, AttributeError) as e:
        raise ArtifactError(f"export record '{folder / EXPORT_MARKER}' cannot be read ({first_line(e)}); "
                            f"{lost}") from None
    check_seal(record, folder / EXPORT_MARKER, "export record", lost)
    if not isinstance(entries, dict) or not entries:
        raise ArtifactError(f"export record '{folder / EXPORT_MARKER}' lists no files; {fix}")
    total = _check_listed(folder, entries, "export", fix, plain=True)
    return {"what": "export", "path": str(folder), "files": len(entries), "bytes": total}


def _check_listed(folder: Path, entries: dict, what: str, fix: str, plain: bool = False,
                  index: dict | None = None) -> int:
    """Hash each file ``entries`` lists ({name: {sha256, bytes}}) in ``folder`` against its record; the bytes read.
    ``plain`` (an export's record, which no seal guards): each name a plain file of the folder itself, its size
    recorded. ArtifactError names the first file missing or not matching, and how many more, with ``fix``, or
    for a run (``index``: its manifest's entry, a dict or None) where only FAISS index files are, the rebuild of
    run_fixes.files_fix (a first-hour review: told to train again, where `index rebuild` makes them in 0.01 s)."""
    from embedrec.fsutil.integrity import sha256_file

    bad, total = [], 0
    for name, entry in sorted(entries.items()):
        f = folder / name
        if plain and not (isinstance(entry, dict) and os.path.basename(name) == name and f.is_file()
                          and not f.is_symlink()):
            bad.append(name)
            continue
        try:
            size = f.stat().st_size
            ok = size == (entry.get("bytes") if plain else entry.get("bytes", size)) and \
                sha256_file(f) == entry.get("sha256")
        except OSError as e:
            if e.errno != errno.ENOENT:  # a loop of links in its place: said as one, not 'missing' (a review)
                raise (read_error(e, f, f"{what} file", fix) or e) from None
            ok, size = False, 0
        total += size
        if not ok:
            bad.append(name)
    if bad:
        more = f" (and {len(bad) - 1} more: {', '.join(bad[1:4])}{', ...' if len(bad) > 4 else ''})" if len(bad) > 1 else ""
        if what == "run" and not plain:
            fix = files_fix(folder, bad, index)
        raise ArtifactError(f"{what} file '{folder / bad[0]}' is missing or does not match its checksum{more}; {fix}")
    return total


def damaged(run, what: str) -> ArtifactError:
    """The one line for a run whose arrays are damaged: the run (or, in memory, the model), what is wrong, and how
    to train it again."""
    where, fix = (f"run '{run.path}'", run_fix(run.path)) if run is not None else ("the model", "train again")
    return ArtifactError(f"{where}: {what}; {fix}")


def check_finite(run, table: np.ndarray, what) -> None:
    """Refuse rows of a table (what serving or evaluate read) that are not finite: ``what(i)`` names the first
    such row i (a red team: a NaN user row answered nothing, and said the user had rated every movie)."""
    bad = ~np.isfinite(table)
    if bad.any():
        raise damaged(run, f"{what(int(np.flatnonzero(bad.reshape(len(table), -1).any(axis=1))[0]))} not finite "
                           "(NaN or inf)")


def check_served_arrays(run, user: np.ndarray, movie: np.ndarray, seen: tuple | None = None,
                        biases: tuple = (None, None)) -> None:
    """Refuse a run whose arrays do not fit together (a run re-sealed after an edit, which the checksums pass: a
    red team found evaluate's IndexError and matmul errors, and recommend's, for tables cut short or a CSR of
    seen movies out of order): the tables' shapes against the manifest and each other, the bias tables
    (``biases``: user_bias, movie_bias, each None where the run has none; :func:`check_bias_tables`), and the seen
    movies' CSR (its row pointers; the movie rows themselves are checked where a user's are read, so a large run's
    start-up stays cheap)."""
    m = run.manifest  # (not model.dim: a feature model's served tables are wider)
    if user.ndim != 2 or movie.ndim != 2 or user.shape[0] != m["n_users"] or movie.shape[0] != m["n_movies"] or \
            user.shape[1] != movie.shape[1]:
        raise damaged(run, "embedding shapes do not match the manifest")
    check_float_tables(run, user, movie)
    check_bias_tables(run, *biases, m["n_users"], m["n_movies"])
    if seen is not None:
        check_seen(run, *seen, m["n_users"])


def check_float_tables(run, user: np.ndarray, movie: np.ndarray) -> None:
    """The embedding tables hold floats (a red team: int32 users were all 'no trained vector', and evaluate scored
    them): :func:`check_served_arrays`' dtype check, alone where their shapes were checked already."""
    if user.dtype.kind != "f" or movie.dtype.kind != "f":
        raise damaged(run, f"its embedding tables are not floats (user_factors.npy {user.dtype}, "
                           f"movie_factors.npy {movie.dtype})")


def check_bias_tables(run, user_bias: np.ndarray | None, movie_bias: np.ndarray | None, n_users: int,
                      n_movies: int) -> None:
    """The bias tables a run has (user_bias.npy, movie_bias.npy; None where it has none): one float for each user
    and each movie, as the factor tables are floats of the manifest's rows (session 51's red team: int64 user
    biases, re-sealed, were served and scored; a table cut to 3 rows was an internal IndexError). Their rows'
    finiteness is checked apart (verify, a Recommender's movies, evaluate)."""
    for name, table, n, kind in (("user_bias", user_bias, n_users, "user"),
                                 ("movie_bias", movie_bias, n_movies, "movie")):
        if table is not None and (table.ndim != 1 or table.shape[0] != n or table.dtype.kind != "f"):
            raise damaged(run, f"{name}.npy holds {table.dtype} of shape {table.shape}, not one float for each of "
                               f"the {n:,} {kind}s")


def check_seen(run, ptr: np.ndarray, idx: np.ndarray, n_users: int, n_movies: int | None = None) -> None:
    """The seen movies' CSR (seen_indptr.npy, seen_indices.npy): integer arrays, one row pointer per user and
    one more, in order, from 0 to the movie rows' count; with ``n_movies``, every movie row a movie of the run too
    (:func:`check_seen_rows` over all of them: O(rows), so serving checks only the rows it reads)."""
    ok = ptr.ndim == 1 and idx.ndim == 1 and ptr.dtype.kind in "iu" and idx.dtype.kind in "iu" and \
        ptr.shape[0] == n_users + 1 and int(ptr[0]) == 0 and int(ptr[-1]) == idx.shape[0] and \
        bool((np.diff(ptr) >= 0).all())
    if not ok:
        raise damaged(run, f"its seen movies (seen_indptr.npy, seen_indices.npy) do not fit {n_users:,} users")
    if n_movies is not None:
        check_seen_rows(run, idx, n_movies)


def check_popularity(run, popularity: np.ndarray, n_movies: int) -> np.ndarray:
    """popularity.npy as the popular fallback reads it: one count per movie (a red team: a re-sealed table of 3
    entries listed 3 movies, without a word)."""
    if popularity.ndim != 1 or popularity.shape[0] != n_movies or popularity.dtype.kind not in "iuf":
        raise damaged(run, f"popularity.npy holds {popularity.dtype} of shape {popularity.shape}, not one count for "
                           f"each of the {n_movies:,} movies")
    # a count that is no finite number >= 0 (session 52's red team: an inf was listed first with the score inf, a
    # negated table listed no movie and said that was every movie the user had not rated): O(movies)
    bad = ~np.isfinite(popularity) | (popularity < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise damaged(run, f"popularity.npy holds {popularity[i]} for movie row {i}, where each movie's count is a "
                           "finite number >= 0")
    # counts of the training ratings (artifacts.serving_arrays writes int64 counts; a float table of whole numbers
    # reads the same): a count that is no whole number, or more than the dataset's ratings (a red team: a re-sealed
    # 1e300 topped every added user's list, its prior's popularity), is no count of them
    counts = ((run.manifest.get("dataset") or {}).get("counts") or {}) if run is not None else {}
    total = counts.get("ratings") if isinstance(counts, dict) else None
    total = total if isinstance(total, int) and not isinstance(total, bool) else None
    bad = (popularity != np.floor(popularity)) if popularity.dtype.kind == "f" else np.zeros(popularity.shape, bool)
    if total is not None:
        bad |= popularity > total
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        most = f" of at most the dataset's {total:,} ratings" if total is not None else ""
        raise damaged(run, f"popularity.npy holds {popularity[i]} for movie row {i}, where each movie's count is a "
                           f"whole number{most}")
    if total is not None and float(np.sum(popularity, dtype=np.float64)) > total:
        raise damaged(run, f"popularity.npy counts {float(np.sum(popularity, dtype=np.float64)):,.0f} training "
                           f"ratings in all, more than the dataset's {total:,}")
    return popularity


def check_updated_users(run, rows: np.ndarray) -> np.ndarray:
    """The rows of the users every update so far re-solved or added (run_layout.UPDATED_USERS) as update-users reads
    them to count its ``users_in_all``: sorted rows of the run's users, every added user's among them (rows from
    run_updates.trained_users on), as many as the last ``updates`` record counts; else refused as damaged (a red
    team: a re-sealed edit update-users refused passed verify, and index rebuild sealed it into new model folders)."""
    m = run.manifest
    n = int(m["n_users"])
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or (rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n
                                                                        or bool((np.diff(rows) <= 0).any()))):
        raise damaged(run, f"{UPDATED_USERS}.npy does not hold sorted rows of its {n:,} users")
    trained = trained_users(m)
    if int(np.count_nonzero(rows >= trained)) != n - trained:  # (sorted and distinct: each added row, once)
        raise damaged(run, f"{UPDATED_USERS}.npy does not hold the rows of the {n - trained:,} users update-users "
                           f"added ({trained:,}..{n - 1:,})")
    got = updates_of(m)
    in_all = got[-1].get("users_in_all") if got else None
    if isinstance(in_all, int) and rows.size != in_all:
        raise damaged(run, f"{UPDATED_USERS}.npy holds {rows.size:,} rows, where the last update counts {in_all:,} "
                           "users updated (users_in_all)")
    return rows.astype(np.int64)


def check_solved_as_new(run, rows: np.ndarray, updated: np.ndarray | None = None,
                        solve: tuple | None = None) -> np.ndarray:
    """The rows of the dataset's users without a training rating that the run's updates solved as new users
    (run_layout.SOLVED_AS_NEW), as serving reads them to give their lists the new users' prior: sorted rows of the
    dataset's users (before run_updates.trained_users), as many as the records' ``users_as_new`` count, each among
    ``updated`` (run_layout.UPDATED_USERS, where the run keeps it), and, with ``solve`` (seen_indptr, seen_indices,
    the solve's weights, the update's pairs; either of the last two None where the run has none), each without a
    training rating (:func:`check_untrained`); else refused as damaged, never served as a trained user's list or
    one of them as a new user's (a re-sealed edit the checksums pass)."""
    m = run.manifest
    trained = trained_users(m)
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or (rows.size and (int(rows.min()) < 0 or int(rows.max()) >=
                                                                        trained or bool((np.diff(rows) <= 0).any()))):
        raise damaged(run, f"{SOLVED_AS_NEW}.npy does not hold sorted rows of its dataset's {trained:,} users")
    counted = users_as_new(m)
    if rows.size != counted:
        raise damaged(run, f"{SOLVED_AS_NEW}.npy holds {rows.size:,} rows, where the updates count {counted:,} users "
                           "without a training rating solved as new ones (users_as_new)")
    if updated is not None and not np.isin(rows, updated).all():
        raise damaged(run, f"{SOLVED_AS_NEW}.npy holds a row that {UPDATED_USERS}.npy does not (a user no update "
                           "solved)")
    if solve is not None:
        check_untrained(run, rows, *solve)
    return rows.astype(np.int64)


def check_untrained(run, rows: np.ndarray, ptr: np.ndarray, idx: np.ndarray, weights: np.ndarray | None,
                    pairs: np.ndarray | None) -> None:
    """Each of ``rows`` (run_layout.SOLVED_AS_NEW's, sorted) a user without a training rating: every movie its solve
    weighs (its seen movies of a weight above 0 in run_layout.SOLVE_WEIGHTS) one an update added for it
    (run_layout.UPDATE_PAIRS, checked by :func:`check_update_pairs`); else refused as damaged (a red team: a trained
    user's row re-sealed in for a cold one passed verify, and its lists took the new users' prior). Nothing to
    check where the run keeps no weights or pairs. Reads the seen movies and pairs of those users alone."""
    if not rows.size or weights is None or pairs is None:
        return
    rows = np.asarray(rows, np.int64)
    ptr = np.asarray(ptr, np.int64)
    local, movies, _ = gather_csr(ptr, idx, rows)
    _, w, _ = gather_csr(ptr, weights, rows)
    solved = np.asarray(w) > 0
    n_movies = np.int64(max(int(run.manifest["n_movies"]) if run is not None else 0, 1))
    key = rows[local[solved]] * n_movies + np.asarray(movies, np.int64)[solved]
    users = np.asarray(pairs["user_idx"], np.int64)
    mine = np.isin(users, rows)
    added = users[mine] * n_movies + np.asarray(pairs["movie_idx"], np.int64)[mine]
    trained = ~np.isin(key, added)
    if trained.any():
        row = int(key[trained][0] // n_movies)
        raise damaged(run, f"{SOLVED_AS_NEW}.npy holds user row {row}, which has training ratings (its solve weighs "
                           f"movies no update added, {UPDATE_PAIRS}.npy): only a user without one is solved and served "
                           "as a new user")


def check_run_arrays(run, load, shapes: bool = True, finite: bool = True, tables=None,
                     catalogue: bool = False) -> None:
    """What the readers check of a run's arrays as they read them, over all of them at once: the embedding tables'
    shapes and dtypes (:func:`check_served_arrays`), the bias tables' (:func:`check_bias_tables`), the factor and
    bias tables' rows finite, the seen movies (:func:`check_seen`, every row), an als run's solve
    (:func:`check_solve_arrays`), the popularity (:func:`check_popularity`), an updated run's users
    (:func:`check_updated_users`, :func:`check_solved_as_new`) and the ids (``run.check_id_table``: one
    for each user or movie; ``IdMap.check_unique``: no id twice). Run by ``verify`` and
    by the writers that carry a run's files into a new model folder (artifacts.carry_over: update-users, index
    rebuild), so a run re-sealed after an edit is neither said ok nor carried on sealed again (a red team: verify
    said ok of seen movie rows recommend refused, and update-users carried them into the model it published).
    ``run``: what :func:`damaged` names (a Run, or anything with its ``path`` and ``manifest``); ``load(name)``:
    the array name.npy, or None where the run has none (memory-mapped where it is read for this alone: the checks
    read each array once, in order, and a 100M-rating run's seen movies are ~400 MB). ``shapes``: False where the
    embedding tables' shapes were checked already (verify's :func:`_check_finite_tables`, which names them): their
    dtypes alone then. ``finite``: the factor and bias tables' rows checked finite (:func:`check_finite_rows`;
    False where verify's :func:`_check_finite_tables` checked them), memory-mapped, FINITE_BLOCK rows at a time
    (session 52's red team: update-users and index rebuild sealed a NaN user row into a new model folder).
    ``tables(kind)``: users.parquet (``kind`` "user") or movies.parquet ("movie") as a pyarrow Table (its id column
    at least), or None where the run has none: checked against user_ids.npy or movie_ids.npy
    (:func:`check_id_table_file`). ``catalogue``: the folder's movies.json, where it has one, read and checked as
    Run.catalogue reads it (``run.check_catalogue``: a title, year and genres for each movie)."""
    from embedrec.data.ids import IdMap

    m = run.manifest
    n_users, n_movies = m.get("n_users"), m.get("n_movies")
    if not isinstance(n_users, int) or not isinstance(n_movies, int):
        return  # (said by the manifest's own checks)
    user, movie = load("user_factors"), load("movie_factors")
    if user is not None and movie is not None:
        (check_served_arrays if shapes else check_float_tables)(run, user, movie)
    biases = load("user_bias"), load("movie_bias")
    check_bias_tables(run, *biases, n_users, n_movies)
    if finite:
        for name, table in zip(FACTOR_FILES, (user, movie, *biases)):
            if table is not None and table.dtype.kind == "f" and table.ndim:
                check_finite_rows(run.path, name, table, run_fix(run.path))
    ptr, idx = load("seen_indptr"), load("seen_indices")
    weights = None
    if ptr is not None and idx is not None:
        check_seen(run, ptr, idx, n_users, n_movies)
        weights = load(SOLVE_WEIGHTS)  # an als run's users' solve, as explanations and update-users read it
        if weights is not None:
            check_solve_arrays(run, weights, load(USER_SCALE), idx.shape[0], n_users)
    check_lowpass(run, load(LOWPASS_A), None if movie is None else movie.shape[1])
    pairs = load(UPDATE_PAIRS)  # the pairs update-users added, as the file gave them (history reads them)
    if pairs is not None:
        check_update_pairs(run, pairs, n_users, n_movies, None if ptr is None or idx is None else (ptr, idx))
    popularity = load("popularity")
    if popularity is not None:
        check_popularity(run, popularity, n_movies)
    updated = load(UPDATED_USERS)
    if updated is not None:
        check_updated_users(run, updated)
    as_new = load(SOLVED_AS_NEW)  # (none where the records count some: refused, their lists' prior lost)
    if as_new is not None or users_as_new(m):
        check_solved_as_new(run, np.zeros(0, np.int64) if as_new is None else as_new, updated,
                            None if ptr is None or idx is None else (ptr, idx, weights, pairs))
    ids = {}
    for kind, n in (("user", n_users), ("movie", n_movies)):
        ids[kind] = load(f"{kind}_ids")
        if ids[kind] is not None:  # as many as the manifest says, one row each (as Run.catalogue reads them), unique
            check_id_table(run.path, f"{kind}_ids", ids[kind], n)
            IdMap(ids[kind], kind, (f"run '{run.path}': {kind}_ids.npy", run_fix(run.path))).check_unique()
    for kind, n in (("user", n_users), ("movie", n_movies)):
        table = tables(kind) if tables is not None else None
        if table is not None:
            check_id_table_file(run, kind, table, ids[kind], n)
    movies = read_catalogue(run.path) if catalogue else None
    if movies is not None:
        check_catalogue(run.path, movies, n_movies)


def check_id_table_file(run, kind: str, table, ids: np.ndarray | None, n: int) -> None:
    """users.parquet (``kind`` "user") or movies.parquet ("movie"), ``table``: a pyarrow Table with its id column,
    as user_ids.npy or movie_ids.npy (``ids``; None for a run written before it) holds the run's users or movies: a
    row for each of the manifest's ``n``, the same ids in the same order; else an ArtifactError naming the file.
    users.parquet is what update-users grows the ids it writes from, so a re-sealed users.parquet of another run put
    in its place (a red team: verify said ok, and update-users wrote its ids into the ones served, user 5000's vector
    served as 6001's) or a row added to it is refused by verify, by index rebuild and update-users as they carry it,
    never sealed again; movies.parquet likewise (the movies of a run written before movie_ids.npy, and of every
    run's readers in pandas), by verify and as index rebuild and update-users carry it."""
    from embedrec.data.ids import ids_from_arrow

    p, fix, col, npy = run.path / ID_TABLES[kind], run_fix(run.path), f"{kind}_id", f"{kind}_ids.npy"
    if col not in table.column_names or table.num_rows != n:
        held = f"{table.num_rows:,} rows" if col in table.column_names else f"no {col} column"
        raise ArtifactError(f"run artifact '{p}' does not hold the run's {n:,} {kind}s (it holds {held}); {fix}")
    if ids is None:
        return
    got = ids_from_arrow(table.column(col).combine_chunks())
    if got.dtype.kind in "iu" and ids.dtype.kind in "iu":
        apart = np.flatnonzero(got != ids)
    else:  # text ids (user_ids.npy's fixed-width unicode), or one of the two not integers: compared as values
        apart = [i for i, (a, b) in enumerate(zip(got.tolist(), ids.tolist())) if a != b or type(a) is not type(b)]
    if len(apart):
        i = int(apart[0])
        raise ArtifactError(f"run artifact '{p}' does not hold the ids of {npy}, in its order (row {i:,}: "
                            f"'{shorten(str(got[i]), 60)}', where {npy} holds '{shorten(str(ids[i]), 60)}'"
                            f"{f', and {len(apart) - 1:,} more rows' if len(apart) > 1 else ''}); {fix}")


def check_implicit_movie(run, table: np.ndarray, movie: np.ndarray) -> np.ndarray:
    """An SVD++ run's y_j (implicit_movie.npy) as a new user's fold-in reads them: one finite float row per movie,
    as wide as the movie factors (a red team: a re-sealed table cut short or widened was an internal IndexError or
    matmul error, an integer one served as it was)."""
    from embedrec.model.factors import IMPLICIT_MOVIE

    if table.ndim != 2 or table.shape != movie.shape or table.dtype.kind != "f":
        raise damaged(run, f"{IMPLICIT_MOVIE}.npy holds a {table.dtype} table of shape {table.shape}, where the movie "
                           f"factors are float of shape {movie.shape}")
    check_finite(run, table, lambda i: f"{IMPLICIT_MOVIE}.npy row {i} is")
    return table


def check_lowpass(run, a: np.ndarray | None, width: int | None = None, finite: bool = True) -> np.ndarray | None:
    """An als run's low-pass block's a (run_layout.LOWPASS_A) against its manifest's record
    (``training_ratings.solve.lowpass``: k, d): both or neither, a float table of n_movies x k rows (finite, with
    ``finite``: verify's; a run opening leaves it to the fold-in's vector check), and d + k the tables' ``width``
    (where given); else refused as damaged, naming the file. Returns ``a``."""
    rec = (checked_training_ratings(run.manifest.get("training_ratings"), str(Path(run.path) / MANIFEST))
           .get("solve") or {}).get("lowpass")  # (an edited record refused naming its key, before it is read)
    if rec is None and a is None:
        return None
    if rec is None:
        raise damaged(run, f"{LOWPASS_A}.npy is there but the manifest records no low-pass block "
                           "(training_ratings.solve.lowpass)")
    if a is None:
        raise damaged(run, f"the manifest records a low-pass block (training_ratings.solve.lowpass) but "
                           f"{LOWPASS_A}.npy is missing")
    n, k, d = run.manifest.get("n_movies"), int(rec["k"]), int(rec["d"])
    if a.ndim != 2 or a.shape != (n, k) or a.dtype.kind != "f" or (width is not None and width != d + k):
        raise damaged(run, f"{LOWPASS_A}.npy holds a {a.dtype} table of shape {a.shape}, where the low-pass block "
                           f"the manifest records (training_ratings.solve.lowpass) is {n:,} movies x {k} columns "
                           f"after the tables' first {d}"
                           + (f" (they hold {width})" if width is not None and width != d + k else ""))
    if finite:
        check_finite(run, a, lambda i: f"{LOWPASS_A}.npy row {i} is")
    return a


def check_solve_arrays(run, weights: np.ndarray, scale: np.ndarray | None, n_seen: int, n_users: int) -> None:
    """An als run's users' solve as explanations read it (run_layout.SOLVE_WEIGHTS, run_layout.USER_SCALE): one finite weight >= 0
    per seen pair, one finite divisor > 0 per user; else refused as damaged, naming the file."""
    if weights.ndim != 1 or weights.shape[0] != n_seen or weights.dtype.kind != "f" or _outside(weights, 0.0):
        raise damaged(run, f"{SOLVE_WEIGHTS}.npy does not hold one finite weight >= 0 for each of the "
                           f"{n_seen:,} seen pairs")
    if scale is not None and (scale.ndim != 1 or scale.shape[0] != n_users or scale.dtype.kind != "f"
                              or _outside(scale, 0.0, strict=True)):
        raise damaged(run, f"{USER_SCALE}.npy does not hold one finite divisor > 0 for each of the {n_users:,} users")


def check_update_pairs(run, pairs: np.ndarray, n_users: int, n_movies: int, seen: tuple | None = None) -> np.ndarray:
    """The pairs update-users added as its files gave them (run_layout.UPDATE_PAIRS), as history reads them: one
    record a pair of UPDATE_PAIRS_DTYPE, a user row and a movie row of the run's, a rating and a time each a finite
    number or NaN (none given), each pair once and, with ``seen`` (seen_indptr, seen_indices), among that user's
    seen movies (an update adds each pair it records to them); else refused as damaged, naming the file. Reads the
    seen movies of the users it names alone."""
    name = f"{UPDATE_PAIRS}.npy"
    if pairs.dtype != UPDATE_PAIRS_DTYPE or pairs.ndim != 1:
        raise damaged(run, f"{name} holds {pairs.dtype} of shape {pairs.shape}, not one record of (user_idx, "
                           "movie_idx, rating, timestamp) for each pair an update added")
    if not pairs.size:
        return pairs
    u, m = np.asarray(pairs["user_idx"]), np.asarray(pairs["movie_idx"])
    if int(u.min()) < 0 or int(u.max()) >= n_users or int(m.min()) < 0 or int(m.max()) >= n_movies:
        raise damaged(run, f"{name} holds user or movie rows outside the run's {n_users:,} users and "
                           f"{n_movies:,} movies")
    for col in ("rating", "timestamp"):
        if np.isinf(np.asarray(pairs[col])).any():
            raise damaged(run, f"{name} holds a {col} that is no finite number")
    key = u * np.int64(n_movies) + m
    if unique(key).size != key.size:
        raise damaged(run, f"{name} holds a pair twice")
    if seen is not None:
        ptr, idx = seen
        users = unique(u)
        local, movies, _ = gather_csr(np.asarray(ptr, np.int64), np.asarray(idx), users)
        held = users[local] * np.int64(n_movies) + np.asarray(movies, np.int64)
        if not isin(key, held).all():
            raise damaged(run, f"{name} holds a pair that is not among its user's seen movies (seen_indices.npy)")
    return pairs


def _outside(values: np.ndarray, low: float, strict: bool = False) -> bool:
    """Whether the 1-D ``values`` (memory-mapped or held) hold a NaN, an inf or a number below ``low`` (at or below
    it where ``strict``), read FINITE_BLOCK * 16 at a time: no boolean copy of a 100M-pair table."""
    step = FINITE_BLOCK * 16
    for lo in range(0, values.shape[0], step):
        block = np.asarray(values[lo:lo + step])
        if not np.isfinite(block).all() or bool((block <= low).any() if strict else (block < low).any()):
            return True
    return False


def check_seen_rows(run, movies: np.ndarray, n_movies: int) -> None:
    """The seen movie rows read for some users: every one a movie of the run (a forged run's 1e9 was an
    IndexError, a negative row wrapped round to another movie)."""
    if movies.size and (int(movies.min()) < 0 or int(movies.max()) >= n_movies):
        raise damaged(run, f"seen_indices.npy holds movie rows outside 0..{n_movies - 1}")
