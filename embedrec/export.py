"""``embedrec export``: a trained run's embeddings for other tools, every user's top-K, and a 2-D map.

Everything is written into a temporary folder (or file) and renamed into place; an existing target needs
``overwrite``. Reads only the run's plain artifacts (numpy, Parquet, FAISS), like ``recommend``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from embedrec.data.ids import py_id
from embedrec.errors import ArtifactError, UsageError
from embedrec.fsutil import atomic_dir
from embedrec.serve.recommender import Recommender

log = logging.getLogger("embedrec")
TARGETS = ("projector", "parquet", "npy", "csv", "faiss", "torch")


def _clean(v) -> str:
    """A TSV cell for the projector: tabs and newlines replaced by spaces."""
    if v is None:
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):
        v = "|".join(map(str, v))
    return str(v).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _write_tensor_tsv(path: Path, x: np.ndarray) -> None:
    np.savetxt(path, x, delimiter="\t", fmt="%.6g", encoding="utf-8")


def _movie_meta(rec: Recommender) -> list[list]:
    pop = rec.run.array("popularity")
    cat = rec.catalogue
    return [[cat.movie_ids[i].item() if hasattr(cat.movie_ids[i], "item") else cat.movie_ids[i], cat.titles[i],
             cat.years[i], (cat.genres[i] or [""])[0] if cat.genres[i] else "", cat.genres[i] or [], int(pop[i])]
            for i in range(len(cat.titles))]


def _user_demographics(rec: Recommender) -> dict[str, list]:
    """The run's user columns besides the id (age, gender, occupation, ... where the data had them)."""
    import pyarrow.parquet as pq

    path = rec.run.path / "users.parquet"
    try:
        t = pq.ParquetFile(path).read()
    except Exception:
        return {}
    skip = {"user_id", "user_idx"}
    return {c: t.column(c).to_pylist() for c in t.column_names if c not in skip and not c.startswith("__")}


def _sample(n: int, k: int | None, seed: int) -> np.ndarray:
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def projector(rec: Recommender, out: Path, sample: int | None = None, users: int = 0, seed: int = 0,
              base_url: str | None = None) -> dict:
    """TensorBoard Embedding Projector files: tensors.tsv + metadata.tsv (+ users_*), the plugin's
    projector_config.pbtxt, the standalone projector's JSON config, and an empty TensorBoard event file (so
    ``tensorboard --logdir`` over a folder of several exports lists each as a run).

    projector.tensorflow.org fetches the JSON config's paths relative to its own page: with ``base_url`` (the
    URL this folder will be served from) they are absolute, so ``?config=BASE_URL/projector_config.json``
    works; without it, load the files with the projector's Load button."""
    rows = _sample(len(rec.catalogue.titles), sample, seed)
    Q = np.asarray(rec.factors.movie)[rows]
    meta = _movie_meta(rec)
    lines = ["\t".join(_clean(v) for v in meta[i]) + "\tmovie" for i in rows]
    # movie feature embeddings (a genre's vector, ...) in the same space, so genres show among the movies
    feats = rec.run.manifest.get("features") or {}
    d = int(rec.run.manifest["model"]["dim"])
    extra = []
    for col in feats.get("movie", []):
        name = col["key"].replace(".", "_")
        if col["key"] not in feats.get("embedded", []):
            continue
        table = rec.run.array(f"feature_{name}")
        for i, value in enumerate(col["vocab"]):
            if value == "unknown":
                continue
            v = np.zeros(Q.shape[1], dtype=np.float32)
            v[:d] = table[i]
            extra.append(v)
            kind = col["key"].split(".")[1]
            lines.append("\t".join(["", f"{kind}: {_clean(value)}", "", _clean(value) if kind == "genre" else "",
                                    _clean(value), "", kind]))
    if extra:
        Q = np.vstack([Q, np.stack(extra)])
    _write_tensor_tsv(out / "tensors.tsv", Q)
    with open(out / "metadata.tsv", "w", encoding="utf-8", newline="\n") as fh:
        fh.write("movie_id\ttitle\tyear\tfirst_genre\tgenres\tn_ratings\tkind\n")
        fh.write("\n".join(lines) + "\n")
    embeddings = [("movies", "tensors.tsv", "metadata.tsv", Q.shape)]
    if users:
        urows = _sample(rec.factors.user.shape[0], users, seed + 1)
        U = np.asarray(rec.factors.user)[urows]
        _write_tensor_tsv(out / "users_tensors.tsv", U)
        demo = _user_demographics(rec)
        with open(out / "users_metadata.tsv", "w", encoding="utf-8", newline="\n") as fh:
            # a single metadata column has no header row in the projector's format; several have one
            if demo:
                fh.write("\t".join(["user_id", *demo]) + "\n")
            for u in urows:
                uid = py_id(rec.catalogue.user_ids[u])
                fh.write("\t".join([_clean(uid), *(_clean(v[u]) for v in demo.values())]) + "\n")
        embeddings.append(("users", "users_tensors.tsv", "users_metadata.tsv", U.shape))
    pbtxt = "".join(f'embeddings {{\n  tensor_name: "{n}"\n  tensor_path: "{t}"\n  metadata_path: "{m}"\n}}\n'
                    for n, t, m, _ in embeddings)
    (out / "projector_config.pbtxt").write_text(pbtxt, encoding="utf-8")
    prefix = base_url.rstrip("/") + "/" if base_url else ""
    standalone = {"embeddings": [{"tensorName": n, "tensorShape": [int(s[0]), int(s[1])], "tensorPath": prefix + t,
                                  "metadataPath": prefix + m} for n, t, m, s in embeddings]}
    (out / "projector_config.json").write_text(json.dumps(standalone, indent=2) + "\n", encoding="utf-8")
    write_empty_event_file(out)
    return {"movies": int(rows.size), "users": int(users and min(users, rec.factors.user.shape[0]))}


def score_terms(rec: Recommender) -> dict:
    """What is needed besides the vectors and biases to recompute the model's score: the global mean and how
    the terms add up (written as model.json beside every table export)."""
    explicit = rec.factors.explicit
    return {
        "objective": "explicit" if explicit else "implicit",
        "global_mean": float(rec.factors.global_mean) if explicit else 0.0,
        "rating_scale": list(rec.factors.rating_scale) if rec.factors.rating_scale else None,
        "score": ("global_mean + user.bias + movie.bias + dot(user.embedding, movie.embedding), clipped to "
                  "rating_scale: the predicted rating" if explicit else
                  "movie.bias + dot(user.embedding, movie.embedding): a ranking score (user.bias is 0)"),
    }


def write_empty_event_file(out: Path) -> Path:
    """A TensorBoard event file holding only the version record (Event{wall_time, file_version}), written
    without TensorFlow: TensorBoard discovers runs below --logdir through such files."""
    from embedrec.train.tfevents import new_event_file

    return new_event_file(out)


def feature_rows(rec: Recommender) -> list[dict]:
    """One row per feature value of a feature model (column, value, bias, embedding in the model's space)."""
    feats = rec.run.manifest.get("features") or {}
    rows = []
    for col in feats.get("movie", []) + feats.get("user", []):
        if col["key"] not in feats.get("embedded", []):
            continue
        name = col["key"].replace(".", "_")
        table = rec.run.array(f"feature_{name}")
        bias_path = rec.run.path / f"feature_bias_{name}.npy"
        bias = rec.run.array(f"feature_bias_{name}") if bias_path.exists() else None
        for i, value in enumerate(col["vocab"]):
            rows.append({"column": col["key"], "value": value, "bias": float(bias[i]) if bias is not None else 0.0,
                         "embedding": table[i].astype(np.float32)})
    return rows


def tables(rec: Recommender, out: Path, fmt: str) -> dict:
    """Embeddings, biases, ids and titles as Parquet, .npy or CSV (and feature embeddings, for feature models)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    Q, P = np.asarray(rec.factors.movie), np.asarray(rec.factors.user)
    bm = rec.factors.movie_bias if rec.factors.movie_bias is not None else np.zeros(Q.shape[0], np.float32)
    bu = rec.factors.user_bias if rec.factors.user_bias is not None else np.zeros(P.shape[0], np.float32)
    (out / "model.json").write_text(json.dumps(score_terms(rec), indent=2) + "\n", encoding="utf-8")
    if fmt == "npy":
        for name, a in (("movie_factors", Q), ("movie_bias", bm), ("movie_ids", rec.catalogue.movie_ids),
                        ("user_factors", P), ("user_bias", bu), ("user_ids", rec.catalogue.user_ids),
                        ("movie_titles", np.array(rec.catalogue.titles, dtype=str))):
            np.save(out / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)
        frows = feature_rows(rec)
        if frows:
            np.save(out / "feature_embeddings.npy", np.stack([r["embedding"] for r in frows]), allow_pickle=False)
            np.save(out / "feature_names.npy", np.array([f"{r['column']}={r['value']}" for r in frows], dtype=str),
                    allow_pickle=False)
        return {"movies": int(Q.shape[0]), "users": int(P.shape[0]), "features": len(frows)}
    movies = {"movie_id": rec.catalogue.movie_ids, "title": rec.catalogue.titles, "year": rec.catalogue.years,
              "genres": [g or [] for g in rec.catalogue.genres], "bias": bm}
    users = {"user_id": rec.catalogue.user_ids, "bias": bu}
    if fmt == "parquet":
        def emb(x):
            return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel().astype(np.float32)), x.shape[1])

        pq.write_table(pa.table({**movies, "embedding": emb(Q)}), out / "movies.parquet")
        pq.write_table(pa.table({**users, "embedding": emb(P)}), out / "users.parquet")
        frows = feature_rows(rec)
        if frows:
            pq.write_table(pa.table({"column": [r["column"] for r in frows], "value": [r["value"] for r in frows],
                                     "bias": [r["bias"] for r in frows],
                                     "embedding": emb(np.stack([r["embedding"] for r in frows]))}),
                           out / "features.parquet")
    else:
        import pandas as pd

        m = pd.DataFrame({**movies, "genres": ["|".join(g) for g in movies["genres"]]})
        pd.concat([m, pd.DataFrame(Q, columns=[f"e{i}" for i in range(Q.shape[1])])], axis=1) \
            .to_csv(out / "movies.csv", index=False, float_format="%.6g")
        pd.concat([pd.DataFrame(users), pd.DataFrame(P, columns=[f"e{i}" for i in range(P.shape[1])])], axis=1) \
            .to_csv(out / "users.csv", index=False, float_format="%.6g")
        frows = feature_rows(rec)
        if frows:
            E = np.stack([r["embedding"] for r in frows])
            pd.concat([pd.DataFrame({k: [r[k] for r in frows] for k in ("column", "value", "bias")}),
                       pd.DataFrame(E, columns=[f"e{i}" for i in range(E.shape[1])])], axis=1) \
                .to_csv(out / "features.csv", index=False, float_format="%.6g")
    return {"movies": int(Q.shape[0]), "users": int(P.shape[0])}


def faiss_files(rec: Recommender, out: Path) -> dict:
    """The run's index files with their id maps and metadata."""
    from embedrec.serve.index import COS_FILE, IP_FILE

    for name in (IP_FILE, COS_FILE):
        src = rec.run.path / name
        if not src.exists():
            raise ArtifactError(f"index '{src}' is missing; run 'embedrec index rebuild'")
        shutil.copyfile(src, out / name)
    np.save(out / "movie_ids.npy", rec.catalogue.movie_ids, allow_pickle=False)
    meta = {**rec.run.manifest["index"], **score_terms(rec), "ip_index": IP_FILE, "cosine_index": COS_FILE,
            "row_to_movie_id": "movie_ids.npy",
            "query": "user -> movie: query [p_u, 1] (a user_factors.npy row plus a 1). With ip_transform 'ip' the "
                     "index is inner product; with 'l2-mips' append a 0 to the query, search L2, and the inner "
                     "product is (|q|^2 + ip_max_norm^2 - distance) / 2. movie -> movie: query the L2-normalised "
                     "movie vector; 'l2-unit' distances d give cosine 1 - d/2"}
    (out / "index.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    np.save(out / "user_factors.npy", np.asarray(rec.factors.user), allow_pickle=False)
    np.save(out / "user_ids.npy", rec.catalogue.user_ids, allow_pickle=False)
    return {"movies": int(rec.factors.movie.shape[0])}


def torch_state(rec: Recommender, out: Path) -> dict:
    """state_dict.pt of ``MatrixFactorization.from_factors`` (load with ``torch.load(..., weights_only=True)``),
    model.json with its constructor's arguments, and the ids of its rows."""
    import torch

    from embedrec.fsutil import write_json
    from embedrec.model.mf import MatrixFactorization

    f = rec.factors
    torch.save(MatrixFactorization.from_factors(f).state_dict(), out / "state_dict.pt")
    args = {"n_users": f.n_users, "n_movies": f.n_movies, "dim": int(f.user.shape[1]),
            "user_bias": f.user_bias is not None, "movie_bias": f.movie_bias is not None,
            "global_mean": float(f.global_mean)}
    write_json(out / "model.json", {"class": "embedrec.model.mf.MatrixFactorization", "args": args,
                                    "explicit": f.explicit, "rating_scale": f.rating_scale,
                                    "rows": "user_ids.npy and movie_ids.npy give the raw id of each row"})
    np.save(out / "user_ids.npy", rec.catalogue.user_ids, allow_pickle=False)
    np.save(out / "movie_ids.npy", rec.catalogue.movie_ids, allow_pickle=False)
    return {"users": f.n_users, "movies": f.n_movies}


def export_dir(rec: Recommender, target: str, out: str | Path, overwrite: bool = False, sample: int | None = None,
               users: int = 0, base_url: str | None = None) -> dict:
    if target not in TARGETS:
        raise UsageError(f"--to '{target}': expected one of {', '.join(TARGETS)}")
    with atomic_dir(out, overwrite=overwrite, ours=is_export, command="embedrec export",
                    fix="choose another -o folder") as tmp:
        if target == "projector":
            info = projector(rec, tmp, sample, users, base_url=base_url)
        elif target == "faiss":
            info = faiss_files(rec, tmp)
        elif target == "torch":
            info = torch_state(rec, tmp)
        else:
            info = tables(rec, tmp, target)
        from embedrec.fsutil import checksum_folder, write_json

        write_json(tmp / MARKER, {"kind": "embedrec-export", "to": target, "run": str(rec.run.path),
                                  "files": checksum_folder(tmp, skip=(MARKER,))})
    return {"to": target, "output": str(out), **info}


MARKER = ".embedrec-export.json"  # what export writes beside the files; --overwrite replaces only such a folder


def is_export(folder: Path) -> bool:
    """Whether ``folder`` is an earlier export, so --overwrite may replace it."""
    return (folder / MARKER).is_file()


def topk_all(rec: Recommender, path: str | Path, k: int, overwrite: bool = False, batch: int = 4096,
             progress: Callable[[int], None] | None = None, device: str | None = None) -> dict:
    """Top-K for every user, streamed in batches to Parquet or CSV (by extension); the rows
    ``recommend --users`` prints. A path without either extension becomes a folder of Parquet files
    (``part-00000.parquet``, one per rank), a dataset that pyarrow/Spark/DuckDB read as one table.

    Under torchrun (WORLD_SIZE > 1) each rank scores its own contiguous range of users, in whole batches (so
    every batch is scored as one process scores it), from the same run and index; a file is then merged by
    rank 0 from the ranks' parts in order, equal to one process's output. ``device`` (train.device) cuda scores
    exactly on the GPU with torch, whatever the run's index."""
    from embedrec import distributed as D

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ""):
        raise UsageError(f"--topk-all {path}: use a .parquet or .csv file name, or a folder name (no extension) "
                         "for a Parquet dataset")
    if path.exists() and not overwrite:
        raise ArtifactError(f"'{path}' already exists; pass --overwrite to replace it")
    rank, world, _ = D.env_rank_world()
    g = D.group(device or "auto") if world > 1 else None
    dev = str(g.device) if g is not None else D.device_name(device or "cpu")
    lo, hi = D.shard_range(rec.factors.user.shape[0], rank, world, align=batch)
    if suffix == "":
        return _topk_folder(rec, path, k, overwrite, batch, progress, dev, g, (lo, hi))
    path.parent.mkdir(parents=True, exist_ok=True)
    if g is None:
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            _topk_part(rec, tmp, suffix, lo, hi, k, batch, progress, dev)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return {"topk_all": str(path), "users": int(hi - lo), "k": k}
    import tempfile

    parts = Path(g.share(tempfile.mkdtemp(prefix=f".{path.name}.parts-", dir=path.parent) if g.leader else None))
    try:
        err = None
        try:
            _topk_part(rec, parts / f"part-{rank:05d}{suffix}", suffix, lo, hi, k, batch, progress, dev)
        except Exception as e:  # noqa: BLE001 (raised on every rank by agree)
            err = e
        g.agree(err)
        if g.leader:
            _merge_parts(sorted(parts.glob(f"part-*{suffix}")), path, suffix)
        g.barrier()
    finally:
        if g.leader:
            shutil.rmtree(parts, ignore_errors=True)
    return {"topk_all": str(path), "users": int(rec.factors.user.shape[0]), "k": k, "ranks": world}


def _topk_folder(rec, path: Path, k, overwrite, batch, progress, dev, g, rows) -> dict:
    """``--topk-all FOLDER``: one Parquet file per rank in a folder swapped into place atomically by rank 0."""
    import contextlib

    world, rank = (1, 0) if g is None else (g.world, g.rank)
    stack = contextlib.ExitStack()
    err, tmp = None, None
    if rank == 0:
        try:
            tmp = stack.enter_context(atomic_dir(path, overwrite=overwrite, ours=is_export,
                                                 command="embedrec export --topk-all", fix="choose another folder"))
        except Exception as e:  # noqa: BLE001 (raised on every rank by agree)
            err = e
    if g is not None:
        g.agree(err)
        tmp = Path(g.share(str(tmp) if tmp is not None else None))
    elif err is not None:
        raise err
    with stack:
        err = None
        try:
            _topk_part(rec, tmp / f"part-{rank:05d}.parquet", ".parquet", rows[0], rows[1], k, batch, progress, dev)
        except Exception as e:  # noqa: BLE001
            err = e
        if g is not None:
            g.agree(err)
        elif err is not None:
            raise err
        if rank == 0:
            from embedrec.fsutil import checksum_folder, write_json

            write_json(tmp / MARKER, {"kind": "embedrec-topk", "k": k, "ranks": world, "run": str(rec.run.path)
                                      if rec.run is not None else None, "files": checksum_folder(tmp, skip=(MARKER,))})
    if g is not None:
        g.barrier()
    return {"topk_all": str(path), "users": int(rec.factors.user.shape[0]), "k": k, "ranks": world}


def _topk_part(rec: Recommender, out: Path, suffix: str, lo: int, hi: int, k: int, batch: int, progress,
               device: str) -> None:
    """Users ``lo`` .. ``hi - 1``'s top-k into one file (the CSV header only where ``lo`` is 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    X = None
    if device != "cpu":
        from embedrec.evaluate import on_device

        X = on_device(rec.factors.augmented_movies(), device)
    writer = None
    fh = open(out, "w", encoding="utf-8", newline="") if suffix == ".csv" else None
    try:
        for s in range(lo, hi, batch):
            rows = np.arange(s, min(s + batch, hi))
            ids, scores = rec.recommend_rows(rows, k) if X is None else _recommend_rows_torch(rec, rows, k, X, device)
            if fh is not None:
                from embedrec.data.ids import py_id
                from embedrec.serve.stream import write_delimited

                triples = ((py_id(rec.catalogue.user_ids[r]), i, sc) for r, i, sc in zip(rows, ids, scores))
                write_delimited(rec, triples, "csv", fh, header=s == 0)
            else:
                table = _topk_table(rec, rows, ids, scores, pa)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            if progress is not None:
                progress(rows.size)
    finally:
        if writer is not None:
            writer.close()
        if fh is not None:
            fh.close()


def _topk_table(rec: Recommender, rows, ids, scores, pa):
    lens = np.array([i.size for i in ids])
    flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    return pa.table({
        "user_id": np.repeat(rec.catalogue.user_ids[rows], lens),
        "rank": np.concatenate([np.arange(1, n + 1) for n in lens]).astype(np.int32),
        "movie_id": rec.catalogue.movie_ids[flat],
        "title": [rec.catalogue.titles[m] for m in flat],
        "year": pa.array([rec.catalogue.years[m] for m in flat], type=pa.int32()),
        "genres": [rec.catalogue.genres[m] or [] for m in flat],
        "score": np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32),
    })


def _recommend_rows_torch(rec: Recommender, rows: np.ndarray, k: int, X, device: str):
    """Recommender.recommend_rows scored exactly on a GPU: [p_u, 1] . [q_m, b_m], seen movies excluded."""
    from embedrec.evaluate import torch_topk
    from embedrec.model.factors import augment_users
    from embedrec.sparse import gather_csr

    r, c, _ = gather_csr(rec.seen_ptr, rec.seen_idx, rows)
    top, vals = torch_topk(augment_users(np.asarray(rec.factors.user[rows])), X, None, (r, c), k, device)
    keep = top >= 0
    ids, scores = [t[m] for t, m in zip(top, keep)], [v[m] for v, m in zip(vals, keep)]
    if rec.factors.explicit:
        extra = rec.factors.user_offset(rows)
        scores = [rec.factors.clip(s + e) for s, e in zip(scores, extra)]
    return ids, scores


def _merge_parts(parts: list[Path], path: Path, suffix: str) -> None:
    """Rank 0: the ranks' parts, in rank order, into ``path`` (through a temporary file and a rename)."""
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if suffix == ".csv":
            with open(tmp, "wb") as out:
                for p in parts:
                    with open(p, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
        else:
            writer = None
            for p in parts:
                pf = pq.ParquetFile(p)
                for i in range(pf.num_row_groups):
                    t = pf.read_row_group(i)
                    writer = writer or pq.ParquetWriter(tmp, t.schema)
                    writer.write_table(t)
            if writer is not None:
                writer.close()
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _place_labels(fig, ax, xy: np.ndarray, titles: list[str], order, max_chars: int = 40) -> int:
    """Label the points in ``order`` (most important first) where the label overlaps no earlier one: each
    label tries four positions around its point and is left out when all four collide. Returns how many."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = ((4, 4, "left", "bottom"), (-4, 4, "right", "bottom"), (4, -4, "left", "top"), (-4, -4, "right", "top"))
    for i in order:
        t = titles[i]
        t = t if len(t) <= max_chars else t[:max_chars - 1] + "\u2026"
        for dx, dy, ha, va in offsets:
            a = ax.annotate(t, xy[i], fontsize=7, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            arrowprops=None)
            box = a.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            a.remove()
    return len(placed)


def plot_map(rec: Recommender, path: str | Path, method: str = "pca", labels: int = 25, seed: int = 0,
             overwrite: bool = False) -> dict:
    """A 2-D map of the movie embeddings coloured by first genre, labelled with the most-rated titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactError(f"'{path}' already exists; pass --overwrite to replace it")
    Q = np.asarray(rec.factors.movie, dtype=np.float64)
    pop = rec.run.array("popularity")
    if method == "pca":
        X = Q - Q.mean(axis=0)
        _, _, vt = np.linalg.svd(X, full_matrices=False)
        xy = X @ vt[:2].T
    elif method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise UsageError("--plot-method tsne needs scikit-learn (pip install scikit-learn); "
                             "or use --plot-method pca") from None
        xy = TSNE(n_components=2, random_state=seed, init="pca").fit_transform(Q)
    else:
        try:
            import umap
        except ImportError:
            raise UsageError("--plot-method umap needs umap-learn (pip install umap-learn); "
                             "or use --plot-method pca") from None
        xy = umap.UMAP(random_state=seed).fit_transform(Q)
    # colour: each movie's most specific genre (its rarest one), the 9 commonest of those, the rest grey;
    # "first genre" would be the alphabetically first flag (Star Wars: Action)
    counts: dict[str, int] = {}
    for gs in rec.catalogue.genres:
        for g in gs or []:
            counts[g] = counts.get(g, 0) + 1
    main = [min(gs, key=lambda g: (counts[g], g)) if gs else "(none)" for gs in rec.catalogue.genres]
    ranked = sorted(set(main), key=lambda g: -main.count(g))
    shown = [g for g in ranked if g != "(none)"][:9]
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(11, 8), dpi=110)
    size = 4 + 40 * np.sqrt(pop / max(pop.max(), 1))
    other = np.array([g not in shown for g in main])
    if other.any():
        ax.scatter(xy[other, 0], xy[other, 1], s=size[other], color="0.75", alpha=0.5, label="other", linewidths=0)
    for i, g in enumerate(shown):
        sel = np.array([f == g for f in main])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=size[sel], color=cmap((0, 1, 2, 3, 4, 5, 6, 8, 9)[i]), alpha=0.7,
                   label=g, linewidths=0)  # tab10 without its grey, which marks "other"
    cat = rec.catalogue
    _place_labels(fig, ax, xy, [cat.titles[i] or str(cat.movie_ids[i]) for i in range(len(cat.titles))],
                  np.argsort(-pop)[:labels])
    ax.set_title(f"Movie embeddings ({method.upper()}, {Q.shape[1]} dims -> 2), coloured by most specific genre; "
                 f"point size = ratings", fontsize=10)
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2, frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return {"plot": str(path), "method": method}
