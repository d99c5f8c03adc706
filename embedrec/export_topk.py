"""``embedrec export --topk-all``: every user's top-K streamed in batches to Parquet, CSV or a folder of
Parquet parts (one per torchrun rank), optionally scored on a GPU."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from embedrec.errors import OutputExists, OutputRefused, UsageError
from embedrec.export_tables import MARKER, is_export, opened_run
from embedrec.fsutil.files import pandas_nullable, real_dir, side_stem
from embedrec.fsutil.locks import drop_stale_lock
from embedrec.fsutil.outputs import (
    TMP,
    atomic_dir,
    atomic_file,
    check_file_replaceable,
    check_replaceable,
    output_parent,
    refuse_inside_store,
    through_missing,
)
from embedrec.serve.diversify import lambda_arg, on
from embedrec.serve.diversify import lists as diversify_lists
from embedrec.serve.recommender import COLUMNS, Recommender

COMMAND = "embedrec export"  # what a refused second writer is told holds the lock
FILE_FIX = "choose another file"
FOLDER_FIX = "choose another folder"


def topk_all(rec: Recommender, path: str | Path, k: int, overwrite: bool = False, batch: int = 4096,
             progress: Callable[[int], None] | None = None, device: str | None = None,
             diversify: float | None = None) -> dict:
    """Top-K for every user, streamed in batches to Parquet or CSV (by extension); the rows
    ``recommend --users`` prints. A path without either extension becomes a folder of Parquet files
    (``part-00000.parquet``, one per rank), a dataset that pyarrow/Spark/DuckDB read as one table.

    Under torchrun (WORLD_SIZE > 1) each rank scores its own contiguous range of users (:func:`user_share`: in
    whole batches, or split evenly where there are fewer batches than ranks; a user's list is scored pair by
    pair, as one process scores it), from the same run and index; a file is then merged by
    rank 0 from the ranks' parts in order, equal to one process's output. ``device`` (train.device) cuda scores
    exactly on the GPU with torch, whatever the run's index. ``diversify``: each list re-ranked by maximal marginal
    relevance at that lambda (serve.diversify), recorded in the result (and a folder's marker) where it re-ranks."""
    from embedrec import device as DV
    from embedrec import distributed as D

    rec = opened_run(rec, "topk_all")
    lam = lambda_arg(diversify)
    said = {"diversify": lam} if on(lam) else {}  # what the result says of how its lists were made
    rec.catalogue.users.check_unique()  # each list under a user id of its own (a red team: a re-sealed id twice)
    path = topk_target(path, overwrite)
    suffix = path.suffix.lower()
    rank, world, _ = DV.env_rank_world()
    g = D.group(device or "auto") if world > 1 else None
    if g is not None:
        g.same({"--topk-all": str(path), "-k": k, "recommend.batch_size": batch, "--overwrite": overwrite,
                "run": str(rec.run.path), "--diversify": lam}, "give every rank the same command")
    dev = str(g.device) if g is not None else DV.device_name(device or "cpu")
    lo, hi = topk_range(rec, batch)
    if suffix == "":
        return _topk_folder(rec, path, k, overwrite, batch, progress, dev, g, (lo, hi), lam)
    # one writer of the file at a time (the lock beside it, held by rank 0 while every rank scores), each with a
    # temporary file of its own renamed into place
    stack = contextlib.ExitStack()
    err, tmp = None, None
    if g is None or g.leader:
        try:
            tmp = stack.enter_context(atomic_file(path, overwrite, COMMAND, FILE_FIX, suffix=suffix, ours=is_topk_file))
        except Exception as e:  # noqa: BLE001 (raised on every rank by agree)
            err = e
    if g is not None:
        g.agree(err)
    elif err is not None:
        raise err
    with stack:
        if g is None:
            listed = _topk_part(rec, tmp, suffix, lo, hi, k, batch, progress, dev, lam)
            return {"topk_all": str(path), "users": listed, "k": k, **said}
        import tempfile

        parts = Path(g.share(tempfile.mkdtemp(prefix=f".{side_stem(path.name)}.{TMP}-{os.getpid()}-parts-",
                                              dir=real_dir(path.parent)) if g.leader else None))
        try:
            err = None
            listed = 0
            try:
                listed = _topk_part(rec, parts / f"part-{rank:05d}{suffix}", suffix, lo, hi, k, batch, progress, dev,
                                    lam)
            except Exception as e:  # noqa: BLE001 (raised on every rank by agree)
                err = e
            g.agree(err)
            listed = int(g.total(listed))
            if g.leader:
                _merge_parts(sorted(parts.glob(f"part-*{suffix}")), tmp, suffix)
            g.barrier()
        finally:
            if g.leader:
                shutil.rmtree(parts, ignore_errors=True)
    return {"topk_all": str(path), "users": listed, "k": k, **said, "ranks": world}


def topk_range(rec: Recommender, batch: int = 4096) -> tuple[int, int]:
    """The users (rows ``lo`` .. ``hi - 1``) that :func:`topk_all` scores on this process: all of them, or under
    torchrun (WORLD_SIZE > 1) this rank's contiguous share (:func:`user_share`); ``hi - lo`` is the total a
    progress bar counts to."""
    from embedrec.device import rank_world

    return user_share(rec.factors.n_users, *rank_world(), batch)


def user_share(n: int, rank: int, world: int, batch: int) -> tuple[int, int]:
    """Rank ``rank``'s users of ``n`` (rows ``lo`` .. ``hi - 1``), contiguous and in rank order: in whole
    ``batch``-user blocks where there are users for ``world`` of them, else ``n`` split evenly (the first ranks
    one more), each share then one batch: a known gap (session 44's reviews): on ML-100K (943 users, blocks of
    1,024) the second of 2 ranks scored nobody. With fewer users than ranks the last ranks get none."""
    from embedrec import distributed as D

    if n >= batch * world:
        return D.shard_range(n, rank, world, align=batch)
    lo, rest = divmod(n, world)
    start = rank * lo + min(rank, rest)
    return start, start + lo + (rank < rest)


def _topk_folder(rec, path: Path, k, overwrite, batch, progress, dev, g, rows, lam=None) -> dict:
    """``--topk-all FOLDER``: one Parquet file per rank in a folder swapped into place atomically by rank 0."""
    world, rank = (1, 0) if g is None else (g.world, g.rank)
    stack = contextlib.ExitStack()
    err, tmp = None, None
    if rank == 0:
        try:
            tmp = stack.enter_context(atomic_dir(path, overwrite=overwrite, command=COMMAND, fix=FOLDER_FIX,
                                                 ours=lambda folder: is_export(folder, FOLDER_FIX)))
        except Exception as e:  # noqa: BLE001 (raised on every rank by agree)
            err = e
    if g is not None:
        g.agree(err)
        tmp = Path(g.share(str(tmp) if tmp is not None else None))
    elif err is not None:
        raise err
    with stack:
        err, listed = None, 0
        try:
            listed = _topk_part(rec, tmp / f"part-{rank:05d}.parquet", ".parquet", rows[0], rows[1], k, batch,
                                progress, dev, lam)
        except Exception as e:  # noqa: BLE001
            err = e
        if g is not None:
            g.agree(err)
            listed = int(g.total(listed))
        elif err is not None:
            raise err
        if rank == 0:
            from embedrec.fsutil.files import write_json
            from embedrec.fsutil.integrity import checksum_folder, seal

            said = {"diversify": lam} if on(lam) else {}
            # sealed as export's other records are (a red team: one character of a part's SHA-256 changed in it was
            # said as a damaged part, and its k or run edited passed verify)
            write_json(tmp / MARKER, seal({"kind": "embedrec-topk", "k": k, **said, "ranks": world,
                                           "run": str(rec.run.path) if rec.run is not None else None,
                                           "files": checksum_folder(tmp, skip=(MARKER,))}))
    if g is not None:
        g.barrier()
    said = {"diversify": lam} if on(lam) else {}
    return {"topk_all": str(path), "users": listed, "k": k, **said, "ranks": world}


def _topk_part(rec: Recommender, out: Path, suffix: str, lo: int, hi: int, k: int, batch: int, progress,
               device: str, lam: float | None = None) -> int:
    """Users ``lo`` .. ``hi - 1``'s top-k into one file (the CSV header only where ``lo`` is 0); returns how many
    users got rows (not one without a trained vector, nor one with no movie left)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    X = None
    if device != "cpu":
        from embedrec.sparse import on_device

        X = on_device(rec.factors.augmented_movies(), device)
    writer = None
    # Parquet through a Python file too: pyarrow's own open refuses a path that is not UTF-8 (a red team)
    fh = open(out, "w", encoding="utf-8", newline="") if suffix == ".csv" else open(out, "wb")
    try:
        untrained = rec.catalogue.users.untrained  # users without training ratings: unknown ids to recommend too
        listed = 0
        for s in range(lo, hi, batch):
            rows = np.arange(s, min(s + batch, hi))
            if untrained is not None:
                rows = rows[~untrained(rows)]
            search = None if X is None else _exact_search(X, device)
            ids, scores = diversify_lists(rec.factors.movie, lam, k,
                                          lambda n, rows=rows, search=search: rec.recommend_rows(rows, n, search=search))
            listed += sum(1 for i in ids if len(i))
            if suffix == ".csv":
                from embedrec.data.ids import py_id
                from embedrec.serve.stream import write_delimited

                triples = ((py_id(rec.catalogue.user_ids[r]), i, sc) for r, i, sc in zip(rows, ids, scores))
                write_delimited(rec, triples, "csv", fh, header=s == 0)
            else:
                table = _topk_table(rec, rows, ids, scores, pa)
                if writer is None:
                    writer = pq.ParquetWriter(fh, table.schema, write_page_checksum=True)
                writer.write_table(table)
            if progress is not None:
                progress(rows.size)
        if suffix != ".csv" and writer is None:  # no user here (a rank past the last block): a readable empty part
            table = _topk_table(rec, np.zeros(0, np.int64), [], [], pa)
            writer = pq.ParquetWriter(fh, table.schema, write_page_checksum=True)
            writer.write_table(table)
    finally:
        try:
            if writer is not None:
                writer.close()
        finally:
            fh.close()
    return listed


def is_topk_file(path: Path) -> bool:
    """Whether ``path`` holds top-K lists as topk_all writes them (a CSV headed by its columns, a Parquet file
    whose columns are those): what ``--overwrite`` may replace (a red team: it replaced a ratings CSV)."""
    want = list(COLUMNS)
    try:
        if path.suffix.lower() == ".csv":
            with open(path, "rb") as fh:
                return fh.readline(4096).rstrip(b"\r\n") == ",".join(want).encode()
        import pyarrow.parquet as pq

        return pq.read_schema(path).names == want
    except Exception:  # noqa: BLE001 (unreadable, not Parquet: not ours)
        return False


def topk_target(path, overwrite: bool) -> Path:
    """``path`` as topk_all may write it, checked before anything is written (export_run checks it first, so a
    refused one leaves the --to folder unwritten too: a review): a .parquet or .csv file, or a folder; not one
    that exists without ``overwrite``, nor a folder of other files."""
    if str(path) == "-" or _stream(path):  # not a folder named '-'; /dev/stdout is no folder either (a review:
        # "exists and is not a folder")
        raise UsageError(f"«--topk-all|path» '{path}': this writes a file or a folder, not standard output or a "
                         "device; give a .parquet or .csv file name (or a folder name for a Parquet dataset), or for "
                         "the lists on standard output pipe the user ids to 'embedrec recommend --users -'")
    path = through_missing(Path(path))  # where it is written, said so (a '..' after a folder not there: out with it)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ""):
        raise UsageError(f"«--topk-all|path» {path}: use a .parquet or .csv file name, or a folder name (no "
                         "extension) for a Parquet dataset")
    if suffix and path.is_dir():  # before "already exists": --overwrite would not help
        raise OutputRefused(f"'{path}' is a folder, not a {suffix} file; {FILE_FIX}")
    drop_stale_lock(path, "embedrec export")  # a killed writer's, even where this one is refused below
    if path.exists() and not overwrite:
        if not suffix:  # a folder: what --overwrite would refuse too is said as that, not "pass --overwrite" (a review)
            check_replaceable(path, lambda folder: is_export(folder, FOLDER_FIX))
        raise OutputExists(f"'{path}' already exists; pass «--overwrite|overwrite=True» to replace it")
    if suffix and not path.is_symlink():  # a user's file: refused before any scoring (a link: atomic_file's rule),
        refuse_inside_store(path)  # after what atomic_file says first: a path inside a run or a dataset
        check_file_replaceable(path, overwrite, is_topk_file, FILE_FIX)
    output_parent(path, FILE_FIX if suffix else FOLDER_FIX)  # its folder made, or refused now: before any scoring
    return path


def _stream(path) -> bool:
    """Whether ``path`` names a standard stream (/dev/stdout, /dev/fd/1, ...) or a device, pipe or socket: what a
    file output cannot be renamed over."""
    import stat

    text = os.path.normpath(str(path))
    if text in ("/dev/stdin", "/dev/stdout", "/dev/stderr") or text.startswith(("/dev/fd/", "/proc/self/fd/")):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _topk_table(rec: Recommender, rows, ids, scores, pa):
    """One batch's rows as a table; with no user, an empty one of the same schema (a rank given no user: a
    review found its 0-byte part file made the merge of a 2-rank export fail)."""
    lens = np.array([i.size for i in ids], np.int64)
    flat = np.concatenate(ids).astype(np.int64, copy=False) if ids else np.zeros(0, np.int64)

    def id_column(ids_of, picked):  # text ids typed string even where none is picked (pyarrow: null otherwise)
        return pa.array(picked, type=pa.string() if ids_of.dtype.kind in "OUS" else pa.from_numpy_dtype(ids_of.dtype))

    return pandas_nullable(pa.table({  # the year read by pandas as Int32, a missing one <NA>: as to_frame() gives it
        "user_id": id_column(rec.catalogue.user_ids,
                             np.repeat(rec.catalogue.user_ids[np.asarray(rows, np.int64)], lens)),
        "rank": (np.concatenate([np.arange(1, n + 1) for n in lens]) if lens.size else np.zeros(0)).astype(np.int32),
        "movie_id": id_column(rec.catalogue.movie_ids, rec.catalogue.movie_ids[flat]),
        "title": pa.array([rec.catalogue.titles[m] or None for m in flat], type=pa.string()),  # none: null, as
        # recommend's rows and to_frame() give it (a first-hour pass: '' here, NaN there, null in JSON)
        "year": pa.array([rec.catalogue.years[m] for m in flat], type=pa.int32()),
        "genres": pa.array([list(rec.catalogue.genres[m] or []) for m in flat], type=pa.list_(pa.string())),
        "score": np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32),
    }))


def _exact_search(X, device: str):
    """Recommender.recommend_rows' search scored exactly with torch on ``device`` (a GPU): [p_u, 1] . [q_m, b_m]
    against ``X``, the augmented movies already there, exclusions at -inf."""
    from embedrec.sparse import torch_topk

    def search(queries: np.ndarray, excl: tuple, k: int) -> tuple[list, list]:
        top, vals = torch_topk(queries, X, None, excl, k, device)
        keep = top >= 0
        return [t[m] for t, m in zip(top, keep)], [v[m] for v, m in zip(vals, keep)]

    return search


def _merge_parts(parts: list[Path], out: Path, suffix: str) -> None:
    """Rank 0: the ranks' parts, in rank order, into ``out`` (the temporary file ``atomic_file`` renames)."""
    import pyarrow.parquet as pq

    if suffix == ".csv":
        with open(out, "wb") as fh_out:
            for p in parts:
                with open(p, "rb") as fh:
                    shutil.copyfileobj(fh, fh_out, 1 << 20)
        return
    writer = None
    with open(out, "wb") as fh_out:  # Python's open: pyarrow's refuses a path that is not UTF-8
        for p in parts:
            with open(p, "rb") as fh:
                pf = pq.ParquetFile(fh, page_checksum_verification=True)
                for i in range(pf.num_row_groups):
                    t = pf.read_row_group(i)
                    writer = writer or pq.ParquetWriter(fh_out, t.schema, write_page_checksum=True)
                    writer.write_table(t)
        if writer is not None:
            writer.close()
