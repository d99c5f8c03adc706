"""A trained model's artifacts written into a run: what ``train`` (``publish.publish_trained``,
``TrainedModel.save``) and ``embedrec index rebuild`` put in a new ``artifacts-<version>/`` folder before
``run_publish.publish`` makes it ``current``.

The run directory's layout and names stay in :mod:`embedrec.run_layout`, its lock and publishing in
:mod:`embedrec.run_publish`, its opening in :mod:`embedrec.run`; this module writes the files that layout names
(the scoring arrays, the seen CSR and popularity, the catalogue, the indexes, the manifest with every file's
checksum). Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec import __version__
from embedrec.errors import ArtifactError
from embedrec.fsutil.files import in_place_error, read_parquet_table, write_json, write_parquet
from embedrec.fsutil.integrity import file_entry, fingerprint_of, stat_key
from embedrec.run import Run, load_run, twin_groups
from embedrec.run_checks import is_dataset_folder
from embedrec.run_fixes import files_fix, run_fix
from embedrec.run_layout import (
    ARTIFACTS,
    CATALOGUE,
    CONFIG,
    LOG,
    LOWPASS_A,
    MANIFEST,
    METRICS,
    MODEL_FOLDER,
    MOVIE_BIAS,
    MOVIE_FACTORS,
    MOVIE_IDS,
    MOVIES_TABLE,
    RUN_FORMAT,
    SOLVE_WEIGHTS,
    STATE_DICT,
    UNKNOWN_RATED,
    USER_IDS,
    USER_SCALE,
    USERS_TABLE,
    unknown_arrays,
)
from embedrec.run_publish import publish, run_lock

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import IndexConfig
    from embedrec.data.dataset import Dataset


def serving_arrays(ds: Dataset) -> dict[str, np.ndarray]:
    """seen_indptr/seen_indices (the movies excluded per user) and popularity (training ratings per movie)."""
    from embedrec.sparse import seen_csr

    # every movie the user gave embedrec for training (train and valid) is excluded from recommendations, and
    # every one rated below data.min_rating, whatever its part (dropped from learning, but rated all the same;
    # evaluation leaves out only those of the parts before the split it ranks: seen_csr)
    indptr, indices = seen_csr(ds, ("train", "valid"), serving=True)
    given = [ds.splits[s].movie for s in ("train", "valid") if s in ds.splits]
    return {"seen_indptr": indptr, "seen_indices": indices,
            "popularity": np.bincount(np.concatenate(given), minlength=ds.n_movies).astype(np.int64)}


def save_artifacts(tmp: Path, f: dict, ds: Dataset, state_dict_bytes: bytes | None, manifest_extra: dict, config_yaml: str,
                   metrics: dict, index_cfg: IndexConfig, history: str | None, progress: bool = False,
                   hashed: dict | None = None) -> dict:
    """Write every artifact of a trained model into ``tmp`` and return the manifest. ``history``: the epoch log
    (metrics.jsonl's text), if any. ``progress``: a bar over the bytes of the arrays written (and hashed), then the
    index build's (serve.index.build_indexes). ``hashed``: given, each array is hashed as it is written
    (:func:`save_arrays`) and its checksum goes there for ``run_publish.publish``'s, which then does not read it
    back (a scale review: train hashed each array in memory, then its file again for the manifest)."""
    from embedrec.serve.index import build_indexes

    arrays = {
        "user_factors": f["user_factors"].astype(np.float32),
        "movie_factors": f["movie_factors"].astype(np.float32),
        "user_bias": f["user_bias"],
        "movie_bias": f["movie_bias"],
        **serving_arrays(ds),
    }
    arrays.update(f.get("feature_tables") or {})
    for name in (SOLVE_WEIGHTS, USER_SCALE, LOWPASS_A):  # an als run's users' solve, which explanations read
        # (serve.explain), and its low-pass block's a, which a new user's fold-in reads (serve.foldin)
        if f.get(name) is not None:
            arrays[name] = np.asarray(f[name], np.float32)
    unknown = getattr(ds, "rated_below_unknown", None)
    if unknown is not None and len(unknown):  # never offered to those users by the popular fallback
        arrays.update(zip(UNKNOWN_RATED, unknown_arrays(unknown)))
    checksums = save_arrays(tmp, arrays, "writing the model" if progress else None, hashed)
    if state_dict_bytes is not None:  # None: a numpy-only model (als.Tables), all in the factor arrays
        (tmp / STATE_DICT).write_bytes(state_dict_bytes)
    write_parquet(ds.users, tmp / USERS_TABLE)
    write_parquet(ds.movies, tmp / MOVIES_TABLE)
    write_catalogue(tmp)
    (tmp / CONFIG).write_text(config_yaml, encoding="utf-8")
    write_json(tmp / METRICS, metrics)
    if history:
        (tmp / LOG).write_text(history, encoding="utf-8")
    emb_hash = hashlib.sha256((checksums[MOVIE_FACTORS] + checksums.get(MOVIE_BIAS, "")).encode()).hexdigest()
    index_meta = build_indexes(tmp, f, index_cfg, emb_hash, seen=(arrays["seen_indptr"], arrays["seen_indices"]),
                               progress=progress)
    manifest = {
        "format_version": RUN_FORMAT,
        "embedrec_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),  # RFC 3339 (jq fromdate: a review)
        "dataset": {"path": str(Path(ds.path).resolve()), "name": ds.manifest.get("name"),
                    "files_fingerprint": getattr(ds, "fingerprint", "") or ds.manifest.get("fingerprint")
                    or _fingerprint_on_disk(Path(ds.path)),
                    "fingerprint": inputs_fingerprint(ds.manifest),
                    "rating_scale": ds.manifest.get("rating_scale"), "counts": ds.manifest.get("counts"),
                    # a release's (ml-100k, ...) is read as released: update-users applies none of the reading
                    # settings its config.yaml may record, with the dataset gone too (user_update._recorded_data)
                    "layout": ds.manifest.get("layout"),
                    # the unit its Unix times were read in: update-users reads a file in it, the dataset gone too
                    **({"timestamp_unit_read": ds.manifest["timestamp_unit_read"]}
                       if ds.manifest.get("timestamp_unit_read") else {})},
        **manifest_extra,
        "global_mean": f["global_mean"],
        "n_users": ds.n_users,
        "n_movies": ds.n_movies,
        "files": checksums,
        "embeddings_sha256": emb_hash,
        "index": index_meta,
    }
    write_json(tmp / MANIFEST, manifest)
    return manifest


def save_arrays(folder: Path, arrays: dict[str, np.ndarray | None], bar: str | None = None,
                hashed: dict | None = None) -> dict[str, str]:
    """Each array as ``folder/<name>.npy`` (None: none written), hashed as it is written (:func:`save_hashed`);
    returns {file name: its SHA-256}, what a manifest's ``files`` records. ``bar``: a bar of that name over the
    bytes written and hashed. ``hashed``: given, each file's entry and stat go there, for the manifest's checksums
    (run_publish.publish's ``hashed``: the file is not read back to be hashed again)."""
    from embedrec.bars import step

    checksums = {}
    with step(bar, sum(a.nbytes for a in arrays.values() if a is not None), "B", scale=True) as tick:
        for name, a in arrays.items():
            if a is None:
                continue
            path = folder / f"{name}.npy"
            checksums[path.name], entry = save_hashed(path, a if isinstance(a, PatchedRows) else np.ascontiguousarray(a))
            if hashed is not None:
                hashed[path.name] = entry
            if tick is not None:
                tick(a.nbytes)
    return checksums


class PatchedRows:
    """A table written as ``base`` (a .npy table, memory-mapped) with the rows ``rows`` ({row: vector}) replaced and
    ``tail`` (rows, or None) after it, made a block at a time as :func:`save_hashed` writes it: never whole in memory
    (a scale review: update-users copied its 512 MB user table to change 3,000 rows)."""

    BLOCK = 1 << 25  # bytes a block, about

    def __init__(self, base: np.ndarray, rows: dict, tail: np.ndarray | None = None):
        self.base, self.rows, self.tail = base, rows, tail
        self.shape = (base.shape[0] + (0 if tail is None else tail.shape[0]), *base.shape[1:])
        self.dtype = base.dtype
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize

    def blocks(self):
        """The table's rows in order, as C-contiguous blocks."""
        n = self.base.shape[0]
        step = max(1, self.BLOCK // max(1, self.nbytes // max(1, self.shape[0])))
        rows = np.array(sorted(self.rows), np.int64)
        for lo in range(0, n, step):
            block = np.array(self.base[lo:lo + step])
            for r in rows[np.searchsorted(rows, lo):np.searchsorted(rows, lo + step)].tolist():
                block[r - lo] = self.rows[r]
            yield block
        if self.tail is not None and len(self.tail):
            yield np.ascontiguousarray(self.tail, self.dtype)


class _Hashed:
    """The file :func:`save_hashed` has numpy write an array through (not a real file, so numpy writes it in chunks,
    each through here): every byte into the file's SHA-256, the first write's length (the header) kept. ``fh``
    None: hashed alone, nothing written (:func:`sha256_npy`)."""

    def __init__(self, fh):
        self.fh, self.file, self.header = fh, hashlib.sha256(), None

    def write(self, b) -> int:
        if self.fh is not None:
            self.fh.write(b)
        self.file.update(b)
        if self.header is None:
            self.header = len(b)
        return len(b)


def _write_npy(out: _Hashed, a: np.ndarray | PatchedRows) -> None:
    """np.save's bytes of ``a`` through ``out``: numpy's own writer, or :class:`PatchedRows`' header (format 1.0,
    else 2.0 as np.save falls back) and its blocks."""
    from numpy.lib import format as npy

    if not isinstance(a, PatchedRows):
        npy.write_array(out, a, allow_pickle=False)
        return
    header = {"descr": npy.dtype_to_descr(a.dtype), "fortran_order": False, "shape": a.shape}
    try:
        npy.write_array_header_1_0(out, header)
    except ValueError:  # (a header too long for format 1.0, as np.save falls back)
        out.header = None
        if out.fh is not None:
            out.fh.seek(0)
            out.fh.truncate()
        out.file = hashlib.sha256()
        npy.write_array_header_2_0(out, header)
    for block in a.blocks():
        out.write(block.tobytes())


def save_hashed(path: Path, a: np.ndarray | PatchedRows) -> tuple[str, tuple[dict, list[int]]]:
    """``a`` (C-contiguous, or :class:`PatchedRows` made as it is written) written as the .npy file ``path`` (np.save's
    bytes), hashed as it is written: (its SHA-256, (the file's manifest entry {sha256, bytes}, its stat key)). One
    pass and one hash over the bytes, where np.save, a hash of the array and the manifest's hash of the file read
    them three times and hashed them twice (scale reviews: update-users, then train, wrote a 512 MB user table and
    hashed it twice)."""
    with open(path, "wb") as fh:
        out = _Hashed(fh)
        _write_npy(out, a)
    size = os.path.getsize(path)
    if out.header != size - a.nbytes and isinstance(a, PatchedRows):
        raise ArtifactError(f"'{path}' was written short ({size:,} bytes for {a.nbytes:,} of rows)")
    digest = out.file.hexdigest()
    return digest, ({"sha256": digest, "bytes": size}, stat_key(path))


def sha256_npy(a: np.ndarray) -> str:
    """The SHA-256 of the .npy file :func:`save_hashed` (np.save) writes of ``a`` (made C-contiguous), from the
    array in memory: nothing written. What a run's manifest records of each array (``files``) since session 58;
    before, ``run_publish.sha256_array``, of the array's bytes alone."""
    out = _Hashed(None)
    _write_npy(out, np.ascontiguousarray(a))
    return out.file.hexdigest()


def inputs_fingerprint(manifest: dict) -> str:
    """What a run records as its dataset's ``fingerprint``: a SHA-256 over the source files the dataset's
    ``manifest`` says it read (``inputs``) and its ``counts``."""
    return hashlib.sha256(repr(sorted(manifest.get("inputs", {}).items())).encode()
                          + str(manifest.get("counts")).encode()).hexdigest()


def write_catalogue(folder: Path) -> None:
    """user_ids.npy, movie_ids.npy and movies.json from the folder's users/movies.parquet: the ids, titles,
    years and genres exactly as the Parquet path reads them, in files a fresh ``recommend`` opens without
    pyarrow, and the films listed under several ids (``twins``: run.twin_groups). Ids that are neither integers nor
    strings are left to the Parquet files (nothing written)."""
    users = read_parquet_table(folder / USERS_TABLE, ["user_id"])
    movies = read_parquet_table(folder / MOVIES_TABLE, ["movie_id", "title", "year", "genres"])
    ids = {}
    for name, col in (("user_ids", users.column("user_id")), ("movie_ids", movies.column("movie_id"))):
        a = catalogue_ids(col.combine_chunks())
        if a is None:
            return
        ids[name] = a
    for name, a in ids.items():
        np.save(folder / f"{name}.npy", a, allow_pickle=False)
    table = {c: movies.column(c).combine_chunks().to_pylist() for c in ("title", "year", "genres")}
    table["twins"] = twin_groups(table["title"], table["year"])  # each film listed under several ids: found once
    (folder / CATALOGUE).write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def grow_id_table(tmp: Path, run: Run, kind: str, columns: dict, n: int):
    """``run``'s users.parquet or movies.parquet (``kind`` 'user' or 'movie') grown by rows after its ``n``, into
    ``tmp``: update-users' added users or movies. ``columns``: {column: the new rows' values} (the id column among
    them), the ``{kind}_idx`` column their rows, every other column null (a dataset's demographics); and
    ``{kind}_ids.npy`` (where the run has it) from the grown table, as :func:`write_catalogue` writes it. The ids
    grown from are checked to be the ones served first (a red team: another run's users.parquet, re-sealed, was
    grown). Returns (the grown pyarrow table, the names of the files written)."""
    import pyarrow as pa

    from embedrec.verify import check_id_table_file

    table_file, ids_file = (USERS_TABLE, USER_IDS) if kind == "user" else (MOVIES_TABLE, MOVIE_IDS)
    table = run.parquet(f"{kind}s")
    check_id_table_file(run, kind, table, run.array(f"{kind}_ids", mmap=True, optional=True), n)
    ids = list(columns[f"{kind}_id"])
    values = {**columns, f"{kind}_idx": np.arange(n, n + len(ids))}
    new = {}
    for f in table.schema:
        got = values.get(f.name)
        new[f.name] = pa.nulls(len(ids), type=f.type) if got is None else pa.array(
            got.tolist() if isinstance(got, np.ndarray) else list(got), type=f.type)
    grown = pa.concat_tables([table, pa.table(new, schema=table.schema)])
    write_parquet(grown, tmp / table_file)
    out = {table_file}
    if run.checksum(ids_file):  # a run written before the file reads the Parquet file alone
        got = catalogue_ids(grown.column(f"{kind}_id").combine_chunks())
        if got is None:
            from embedrec.errors import shorten

            raise ArtifactError(f"the new {kind} ids ({shorten(', '.join(map(str, ids[:3])), 60)}) are not of the "
                                "run's id type; give ids as the run's are written")
        np.save(tmp / ids_file, got, allow_pickle=False)
        out.add(ids_file)
    return grown, out


def catalogue_ids(column) -> np.ndarray | None:
    """A pyarrow id column as user_ids.npy / movie_ids.npy hold it: integers as integers, texts as fixed-width
    unicode; None where the ids are neither (the Parquet file alone then holds them). write_catalogue's, and
    update-users' for the users it adds."""
    from embedrec.data.ids import ids_from_arrow

    a = ids_from_arrow(column)
    if a.dtype == object:
        if not all(isinstance(v, str) for v in a):
            return None
        a = np.array(a.tolist(), dtype=str) if a.size else np.zeros(0, dtype="U1")
    return a


def _fingerprint_on_disk(path: Path) -> str:
    from embedrec.data.dataset import FILES

    try:
        return fingerprint_of({f"{n}.parquet": file_entry(path / f"{n}.parquet") for n in FILES})
    except OSError:
        return ""


def writer_run(run_dir: Path) -> Path:
    """The run folder a command that writes a run's new model folder (index rebuild, update-users) locks and
    publishes in, for a ``run_dir`` given as the run, its ``current`` link or the model folder it serves ('.' in it
    too; as load_run takes them: its lock and publish are the run's; a red team's N3 check: the lock and a temporary went into the
    model folder, which verify then refused). A prepared dataset is refused, as recommend's --run refuses it (exit
    1: a run to read first, not an output path)."""
    run_dir = Path(run_dir)
    if run_dir.name in ("", ".."):  # '.' or '..' (a red team: `cd RUN/current && index rebuild --run .` was refused
        run_dir = Path(os.path.abspath(run_dir))  # as inside the run, which readers take '.' there as): its name
    served = run_dir.name.startswith(f"{ARTIFACTS}-") and (run_dir.parent / "current").exists() and \
        os.path.realpath(run_dir.parent / "current") == os.path.realpath(run_dir)  # the model RUN serves (a review)
    if served or run_dir.name == "current" and run_dir.is_symlink() and not (run_dir / "current").exists():
        run_dir = run_dir.parent
    if is_dataset_folder(run_dir):
        raise ArtifactError(f"'{run_dir}' is a prepared dataset (what embedrec ingest writes), not a run; pass the "
                            "run directory train wrote (run.dir, e.g. runs/ml-100k)")
    if not _shows_a_model(run_dir):  # refused as a reader refuses it, before its lock is made there (a red team: a
        load_run(run_dir)             # mistyped --run left RUN/.lock in a user's folder, which train then took for a
    return run_dir                    # run and wrote over their files)


def _shows_a_model(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a model a writer could build on: its ``current`` (a link, even one left dangling)
    or a model folder."""
    try:
        return (run_dir / "current").is_symlink() or (run_dir / "current").exists() or any(
            MODEL_FOLDER.fullmatch(n) for n in os.listdir(run_dir))
    except OSError:
        return False


def rebuild_index(run_dir: str | Path, index_cfg: IndexConfig, progress: bool = False) -> dict:
    """Build the indexes again from a run's embeddings (e.g. with other index settings). ``progress``: bars over
    the files carried over, the movies indexed and the bytes hashed."""
    run_dir = writer_run(Path(run_dir))
    with run_lock(run_dir, "embedrec index rebuild"):
        return _rebuild_index(run_dir, index_cfg, progress)


def _rebuild_index(run_dir: str | Path, index_cfg: IndexConfig, progress: bool = False) -> dict:
    run = load_run(run_dir)
    f = {"movie_factors": run.array("movie_factors"), "movie_bias": run.array("movie_bias"),
         "user_factors": run.array("user_factors", mapped=True),  # (the recall check reads a sample of its rows)
         "lowpass": ((run.manifest.get("training_ratings") or {}).get("solve") or {}).get("lowpass")}

    hashed: dict = {}

    def write(tmp: Path) -> None:
        hashed.update(carry_over(run, tmp, "the index cannot be rebuilt over a damaged run", rebuilt=(".faiss",),
                                 progress=progress))
        from embedrec.serve.index import build_indexes

        meta = build_indexes(tmp, f, index_cfg, run.manifest["embeddings_sha256"],
                             seen=(run.array("seen_indptr", mmap=True), run.array("seen_indices", mmap=True)),
                             progress=progress)
        write_json(tmp / MANIFEST, {**run.manifest, "index": meta})

    publish(run_dir, write, "embedrec index rebuild", progress, hashed, links=True)
    return load_run(run_dir).manifest["index"]


def check_listed(run: Run, why: str, rebuilt: tuple[str, ...] = ()) -> None:
    """ArtifactError where a file the run's manifest lists is missing (``rebuilt``: the suffixes of files the new
    folder makes again, not carried), before a new model folder is filled from it (a review: the index rebuild
    re-sealed the run without it, and verify then said ok); ``why``: what cannot be done, said with the run's fix."""
    listed = run.manifest.get("checksums") or {}
    gone = sorted(n for n in listed if not (rebuilt and n.endswith(rebuilt)) and not (run.path / n).is_file())
    index = run.manifest.get("index")
    for n in gone:  # a loop of links, a FIFO or a folder in a file's place is said as recommend and export say it
        if (err := in_place_error(run.path / n, "run artifact", files_fix(run.path, [n], index))) is not None:
            raise err  # (reviews: each said as 'missing')
    if gone:  # index files alone: rebuilt, as verify says (a red team: update-users said to train again)
        raise ArtifactError(f"run artifact '{run.path / gone[0]}' is missing"
                            f"{f' (and {len(gone) - 1} more listed files)' if len(gone) > 1 else ''}; {why}: "
                            f"{files_fix(run.path, gone, index)}")


def carry_over(run: Run, tmp: Path, why: str, written: Collection[str] = (), rebuilt: tuple[str, ...] = (),
               left_out: Collection[str] = (), progress: bool = False, link: bool = True) -> dict[str, tuple]:
    """Fill the new model folder ``tmp`` with every file of ``run``'s model folder that the new one keeps as it is:
    all but the manifest (the writer writes its own), the files it writes anew (``written``: names; ``rebuilt``:
    suffixes, the FAISS files of an index rebuild) and those it leaves out (``left_out``: names), each checked
    against the sealed manifest as it is linked or copied (:func:`carry_file`), after a listed file that is missing
    is refused (:func:`check_listed`; ``why``: what cannot be done then), then the arrays checked as the readers
    check them (verify.check_run_arrays). The one loop of ``index rebuild`` and ``update-users``, the writers that
    build a model folder from the one served. Returns {name: (entry, stat key)} of the files hard-linked and hashed,
    which the new manifest records without hashing them again (``run_publish.publish``'s ``hashed``). ``link``:
    False copies every file (the trained model an update is built on keeps its own bytes: a file damaged in place
    in one folder is damaged in every folder linked to it). ``progress``: a bar over the bytes carried."""
    from embedrec.bars import step
    from embedrec.verify import check_run_arrays

    check_listed(run, why, rebuilt)
    skip = {MANIFEST, *written, *left_out}
    carried = [p for p in sorted(run.path.iterdir()) if p.name not in skip and not (rebuilt and p.name.endswith(rebuilt))]
    sizes = [p.stat().st_size if p.is_file() else 0 for p in carried] if progress else []
    linked = {}
    with step("carrying the model over" if progress else None, sum(sizes), "B", scale=True) as tick:
        for i, p in enumerate(carried):
            got = carry_file(run, p, tmp / p.name, link)
            if got is not None:
                linked[p.name] = got
            if tick is not None:
                tick(sizes[i])
    # the arrays as the readers and verify check them, all rows: a run re-sealed after an edit is not sealed again.
    # After the copies, which hashed each file carried, the arrays not in memory already are read memory-mapped,
    # once (a review: index rebuild read each in full for the check, then hashed it again as it copied it)
    check_run_arrays(run, lambda name: run.held[name] if name in run.held else
                     run.array(name, mmap=True, optional=True),
                     tables=lambda kind: run.parquet(f"{kind}s", [f"{kind}_id"], optional=True), catalogue=True)
    return linked


def carry_file(run: Run, p: Path, dest: Path, link: bool = True) -> tuple[dict, list[int] | None] | None:
    """Carry one file of ``run`` into a new artifacts folder, checked against the run's sealed manifest (a damaged
    FAISS index file with the advice to rebuild it, as verify gives: run_fixes.files_fix): a hard link, hashed in full
    (``Run.link_verified``; returns its entry and stat key), where ``link`` and the file system makes one; else a
    copy, checked as it is made (``Run.copy_verified``; returns None)."""
    if run.manifest.get("checksums") and not run.checksum(p.name):
        raise ArtifactError(f"run artifact '{p}' is not listed in its manifest (added or renamed since the run was "
                            f"written); move it out of '{run.path}', or {run_fix(run.path)}")
    fix = files_fix(run.path, [p.name], run.manifest.get("index"))
    got = run.link_verified(p, dest, fix=fix) if link else None
    if got is None:
        run.copy_verified(p, dest, fix=fix)
    return got
