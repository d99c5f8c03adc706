"""``embedrec export --to parquet|npy|csv|faiss|torch``: the run's factors as tables, the FAISS files and
the PyTorch state dict, each with ``model.json`` (how the terms add up); and the marker every export folder
holds, listing the files export wrote (``--overwrite`` replaces only a folder that has it and nothing else)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from embedrec.errors import ArtifactError, OutputRefused, UsageError
from embedrec.fsutil.files import loads_json
from embedrec.run_layout import (  # export's files take the run's names where they hold what the run's do
    COS_FILE,
    IP_FILE,
    MOVIE_IDS,
    MOVIES_TABLE,
    STATE_DICT,
    USER_IDS,
    USERS_TABLE,
)
from embedrec.serve.recommender import Recommender
from embedrec.verify import EXPORT_MARKER as MARKER  # beside export's files: --overwrite and verify read it


def is_export(folder: Path, fix: str = "choose another «-o folder|out»") -> bool:
    """Whether ``folder`` is an earlier export that --overwrite may replace: it holds the marker and nothing
    the marker does not list (``files``: what export wrote). False without a marker; ArtifactError naming the
    other entries when there are any (a notes file or an analysis folder the user added would be deleted)."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        record = loads_json(marker.read_text(encoding="utf-8"))
    except OSError as e:  # a red team: said as files export did not write, which sent the user the wrong way
        raise OutputRefused(f"'{marker}', export's record of what it wrote in '{folder}', cannot be read "
                            f"({(e.strerror or 'error').lower()}), so «--overwrite|overwrite=True» cannot tell its "
                            "files from yours; "
                            f"check its permissions, or {fix}") from None
    except ValueError:
        record, damaged = None, "not JSON"
    else:
        damaged = _record_damage(record, marker)
    if damaged:  # (a red team: a flipped bit in it was said as files export did not write, or changed since)
        raise OutputRefused(f"'{marker}', export's record of what it wrote in '{folder}', is damaged ({damaged}), so "
                            "«--overwrite|overwrite=True» cannot tell its files from yours; check the folder and "
                            f"remove it («rm -r|shutil.rmtree» it), or {fix}")
    listed = record.get("files")
    listed = listed if isinstance(listed, dict) else {}
    other = sorted(p.name for p in folder.iterdir()
                   if p.name != MARKER and (p.name not in listed or p.is_dir() or p.is_symlink()))
    if not other:
        changed = [name for name in sorted(listed) if not _as_written(folder / name, listed[name])]
        if not changed:
            return True
        from embedrec.fsutil.outputs import shorten_name

        shown = ", ".join(shorten_name(n) for n in changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5
                                                                   else "")
        # (a red team: edits to a listed file, model.json, were lost to --overwrite, which checked names alone)
        raise OutputRefused(f"'{folder}' holds {'a file' if len(changed) == 1 else 'files'} export wrote but someone "
                            f"changed since ({shown}: not the bytes it recorded), which «--overwrite|overwrite=True» "
                            f"would delete; move "
                            f"{'it' if len(changed) == 1 else 'them'} out of it, or {fix}")
    from embedrec.fsutil.outputs import shorten_name

    shown = ", ".join(shorten_name(n) + ("/" if (folder / n).is_dir() else "") for n in other[:5])
    more = f" and {len(other) - 5} more" if len(other) > 5 else ""
    raise OutputRefused(f"'{folder}' holds entries embedrec export did not write ({shown}{more}), which "
                        f"«--overwrite|overwrite=True» would delete; move them out of it, or {fix}")


def _record_damage(record, marker: Path) -> str:
    """Why export's ``record`` (read from ``marker``) is damaged ('it does not match its checksum'), or '' (an
    unsealed one, an older export's, passes, as fsutil.integrity.check_seal takes it)."""
    from embedrec.fsutil.integrity import check_seal

    if not isinstance(record, dict):
        return "not a record"
    try:
        check_seal(record, marker, "export record", "")
    except ArtifactError:
        return "it does not match its checksum"
    return ""


def opened_run(rec, method: str) -> Recommender:
    """``rec`` as the export functions take it: a Recommender over a run's files. A Model (``er.open``,
    ``er.train``) is refused with the method that exports it, a Recommender built in memory with how to save it (a
    review: both were AttributeErrors)."""
    if not isinstance(rec, Recommender):
        raise UsageError(f"{method}: expected a serve.recommender.Recommender, not {type(rec).__name__}; for a model "
                         f"from er.open or er.train, call model.{method}(...)")
    if rec.run is None:
        raise UsageError(f"{method}: this Recommender is built in memory and has no run files to export; save the "
                         f"model first (model.save(run_dir)), then er.open(run_dir).{method}(...)")
    return rec


PRIOR_TERM = (" + user.prior x movie.popularity_z (the new users' popularity prior: user.prior is 0 but for the "
              "users update-users added or solved as new ones)")


def untrained_note(rec: Recommender) -> dict:
    """{"untrained_movies": {count, movie_bias, rule}} where the model has movies without training ratings (their
    bias model.factors.UNTRAINED_BIAS), else {}: what model.json says of them, the tables' and the torch export's
    alike (a review: the formula gave 1.0 where predict printed 3.37 from the user's baseline)."""
    from embedrec.model.factors import UNTRAINED_BIAS

    untrained = int(np.count_nonzero(rec.untrained))  # (serving's own rule: a feature model marks none)
    if not untrained:
        return {}
    return {"untrained_movies": {
        "count": untrained, "movie_bias": UNTRAINED_BIAS,
        "rule": "a movie whose movie.bias is " + f"{UNTRAINED_BIAS:g}" + " had no training ratings: no list holds it, "
                + ("and predict scores it as global_mean + user.bias (its fallback column says movie_unknown), not "
                   "by the score formula" if rec.factors.explicit else "so the score formula ranks it last")
                + "; an approximate FAISS index places it far from every query (its distance gives no score)"}}


def score_terms(rec: Recommender, priors: np.ndarray | None = None) -> dict:
    """What is needed besides the vectors and biases to recompute the model's score: the global mean and how
    the terms add up (written as model.json beside every table export); ``priors`` (:meth:`Recommender.user_priors`)
    where some user's score has the new users' prior."""
    explicit = rec.factors.explicit
    lp = ((rec.training_ratings or {}).get("solve") or {}).get("lowpass")
    block = {} if not lp else {"lowpass": {  # the block's columns (training.lowpass), so a reader can fold in as embedrec does
        "als_columns": int(lp["d"]), "columns": int(lp["k"]), "weight": float(lp["weight"]),
        "layout": "embedding = [als part (als_columns), low-pass block (columns)]: a new user's block is weight x the "
                  "sum of lowpass_a's rows over the movies it rated (lowpass_a.npy, or the movies table's lowpass_a "
                  "column); similar movies rank by cosine over the als part alone"}}
    return {
        **block,
        **untrained_note(rec),
        "objective": "explicit" if explicit else "implicit",
        "global_mean": float(rec.factors.global_mean) if explicit else 0.0,
        "rating_scale": list(rec.factors.rating_scale) if rec.factors.rating_scale else None,
        "score": ("global_mean + user.bias + movie.bias + dot(user.embedding, movie.embedding), clipped to "
                  "rating_scale: the predicted rating" if explicit else
                  "movie.bias + dot(user.embedding, movie.embedding)" + (PRIOR_TERM if priors is not None else "")
                  + ": a ranking score (user.bias is 0)"),
    }


def feature_rows(rec: Recommender) -> list[dict]:
    """One row per feature value of a feature model (column, value, bias, embedding in the model's space)."""
    feats = rec.run.manifest.get("features") or {}
    rows = []
    for col in feats.get("movie", []) + feats.get("user", []):
        if col["key"] not in feats.get("embedded", []):
            continue
        name = col["key"].replace(".", "_")
        table = rec.run.array(f"feature_{name}")
        bias = rec.run.array(f"feature_bias_{name}", optional=True)
        for i, value in enumerate(col["vocab"]):
            rows.append({"column": col["key"], "value": value, "bias": float(bias[i]) if bias is not None else 0.0,
                         "embedding": table[i].astype(np.float32)})
    return rows


def _ids(ids: np.ndarray) -> np.ndarray:
    """Ids as .npy stores them without pickle: integers as they are, text ids (an object array) as unicode."""
    return ids.astype(str) if ids.dtype == object else ids


def tables(rec: Recommender, out: Path, fmt: str) -> dict:
    """Embeddings, biases, ids and titles as Parquet, .npy or CSV (and feature embeddings, for feature models)."""
    import pyarrow as pa

    Q, P = np.asarray(rec.factors.movie), np.asarray(rec.factors.user)
    bm = rec.factors.movie_bias if rec.factors.movie_bias is not None else np.zeros(Q.shape[0], np.float32)
    bu = rec.factors.user_bias if rec.factors.user_bias is not None else np.zeros(P.shape[0], np.float32)
    c = rec.user_priors()
    z = None if c is None else rec.prior_z.astype(np.float32)
    (out / "model.json").write_text(json.dumps(score_terms(rec, c), indent=2) + "\n", encoding="utf-8")
    if fmt == "npy":
        for name, a in (("movie_factors", Q), ("movie_bias", bm), ("movie_ids", _ids(rec.catalogue.movie_ids)),
                        ("user_factors", P), ("user_bias", bu), ("user_ids", _ids(rec.catalogue.user_ids)),
                        ("movie_titles", np.array(rec.catalogue.titles, dtype=str)),
                        *((("lowpass_a", rec.factors.lowpass_a),) if rec.factors.lowpass_a is not None else ()),
                        *((("user_prior", c), ("movie_popularity_z", z)) if c is not None else ())):
            np.save(out / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)
        frows = feature_rows(rec)
        if frows:
            np.save(out / "feature_embeddings.npy", np.stack([r["embedding"] for r in frows]), allow_pickle=False)
            np.save(out / "feature_names.npy", np.array([f"{r['column']}={r['value']}" for r in frows], dtype=str),
                    allow_pickle=False)
        return {"movies": int(Q.shape[0]), "users": int(P.shape[0]), "features": len(frows)}
    movies = {"movie_id": rec.catalogue.movie_ids, "title": rec.catalogue.titles, "year": rec.catalogue.years,
              "genres": [g or [] for g in rec.catalogue.genres], "bias": bm,
              **({"popularity_z": z} if c is not None else {})}
    A = None if rec.factors.lowpass_a is None else np.asarray(rec.factors.lowpass_a, np.float32)
    users = {"user_id": rec.catalogue.user_ids, "bias": bu, **({"prior": c} if c is not None else {})}
    if fmt == "parquet":
        def emb(x):
            return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel().astype(np.float32)), x.shape[1])

        from embedrec.fsutil.files import pandas_nullable, write_parquet

        # year as int32, as --topk-all's Parquet writes it (a review: int64 here, so a join of the two files
        # compared int64 with int32), read by pandas as Int32 as that file's is (a missing year <NA>, not float64)
        write_parquet(pandas_nullable(pa.table({**movies, "year": pa.array(movies["year"], type=pa.int32()),
                                                "embedding": emb(Q),
                                                **({"lowpass_a": emb(A)} if A is not None else {})})),
                      out / MOVIES_TABLE, page_checksum=True)
        write_parquet(pa.table({**users, "embedding": emb(P)}), out / USERS_TABLE, page_checksum=True)
        frows = feature_rows(rec)
        if frows:
            write_parquet(pa.table({"column": [r["column"] for r in frows], "value": [r["value"] for r in frows],
                                    "bias": [r["bias"] for r in frows],
                                    "embedding": emb(np.stack([r["embedding"] for r in frows]))}),
                          out / "features.parquet", page_checksum=True)
    else:
        import pandas as pd

        from embedrec.output import frame_to_csv

        def to_csv(frame, name: str) -> None:
            frame_to_csv(frame, out / name, "%.9g")

        m = pd.DataFrame({**movies, "genres": ["|".join(g) for g in movies["genres"]]})
        to_csv(pd.concat([m, pd.DataFrame(Q, columns=[f"e{i}" for i in range(Q.shape[1])]),
                          *((pd.DataFrame(A, columns=[f"a{i}" for i in range(A.shape[1])]),) if A is not None else ())],
                         axis=1), "movies.csv")
        to_csv(pd.concat([pd.DataFrame(users), pd.DataFrame(P, columns=[f"e{i}" for i in range(P.shape[1])])], axis=1),
               "users.csv")
        frows = feature_rows(rec)
        if frows:
            E = np.stack([r["embedding"] for r in frows])
            to_csv(pd.concat([pd.DataFrame({k: [r[k] for r in frows] for k in ("column", "value", "bias")}),
                              pd.DataFrame(E, columns=[f"e{i}" for i in range(E.shape[1])])], axis=1), "features.csv")
    return {"movies": int(Q.shape[0]), "users": int(P.shape[0])}


def faiss_files(rec: Recommender, out: Path) -> dict:
    """The run's index files (each checked against the run manifest first) with their id maps and metadata."""
    from embedrec.run_fixes import index_fix

    fix = index_fix(rec.run.path, rec.run.manifest.get("index"))  # that run's rebuild, with the settings it had
    recorded = (rec.run.manifest.get("index") or {}).get("files") or {}
    for name in (IP_FILE, COS_FILE):
        # checked in full: a flat-index run never loads these files, so nothing else would notice damage
        rec.run.copy_verified(rec.run.path / name, out / name, recorded.get(name), "index", fix)
    np.save(out / MOVIE_IDS, _ids(rec.catalogue.movie_ids), allow_pickle=False)
    c = rec.user_priors()
    meta = {**rec.run.manifest["index"], **score_terms(rec, c), "ip_index": IP_FILE, "cosine_index": COS_FILE,
            "row_to_movie_id": MOVIE_IDS, "row_to_user_id": USER_IDS,
            "query": "user -> movie: query [p_u, 1] (a user_factors.npy row plus a 1). With ip_transform 'ip' the "
                     "index is inner product; with 'l2-mips' append a 0 to the query, search L2, and the inner "
                     "product is (|q|^2 + ip_max_norm^2 - distance) / 2. That inner product is p_u . q_m + "
                     "movie bias (but for 'untrained_movies', placed far: their distance gives no score); the "
                     "score adds the rest as 'score' says (an explicit model: global_mean + user bias, clipped to "
                     "rating_scale" + ("; a user whose user_prior is not 0: its list is every movie scored so, not "
                                       "the index's top k" if c is not None else "") + "). movie -> movie: "
                     "query the L2-normalised movie vector; 'l2-unit' distances d give cosine 1 - d/2"}
    # everything the score terms name, so the export alone reproduces `predict` and `recommend --movie` (a
    # review: an explicit model's user biases and the movie vectors a similar-movie query starts from were not
    # in it)
    f = rec.factors
    arrays = {"user_factors": f.user, "movie_factors": f.movie, "user_bias": f.user_bias, "movie_bias": f.movie_bias,
              "user_prior": c, "movie_popularity_z": None if c is None else rec.prior_z.astype(np.float32)}
    meta["files"] = {k: f"{k}.npy" for k, a in arrays.items() if a is not None}
    (out / "index.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    for k, a in arrays.items():
        if a is not None:
            np.save(out / f"{k}.npy", np.asarray(a), allow_pickle=False)
    np.save(out / USER_IDS, _ids(rec.catalogue.user_ids), allow_pickle=False)
    return {"movies": int(rec.factors.movie.shape[0]), "users": int(rec.factors.user.shape[0])}  # (its user files too)


def torch_state(rec: Recommender, out: Path) -> dict:
    """state_dict.pt of ``MatrixFactorization.from_factors`` (load with ``torch.load(..., weights_only=True)``),
    model.json with its constructor's arguments, and the ids of its rows."""
    import torch

    from embedrec.fsutil.files import atomic_write_bytes, write_json
    from embedrec.model.mf import MatrixFactorization

    f = rec.factors
    state = MatrixFactorization.from_factors(f).state_dict()  # through atomic_write_bytes: a full disk is one line
    atomic_write_bytes(out / STATE_DICT, lambda fh: torch.save(state, fh))  # (a red team: torch.save's own
    # RuntimeError 'unexpected pos' was an internal error)
    args = {"n_users": f.n_users, "n_movies": f.n_movies, "dim": int(f.user.shape[1]),
            "user_bias": f.user_bias is not None, "movie_bias": f.movie_bias is not None,
            "global_mean": float(f.global_mean)}
    prior_note = {} if rec.user_priors() is None else {"prior": (
        "the users update-users added or solved as new ones are served with the new users' popularity prior, which "
        "this model does not hold: their scores add user.prior x movie.popularity_z (export --to npy writes both)")}
    write_json(out / "model.json", {"class": "embedrec.model.mf.MatrixFactorization", "args": args,
                                    "explicit": f.explicit, "rating_scale": f.rating_scale,
                                    "rows": "user_ids.npy and movie_ids.npy give the raw id of each row", **prior_note,
                                    **untrained_note(rec)})
    np.save(out / USER_IDS, _ids(rec.catalogue.user_ids), allow_pickle=False)
    np.save(out / MOVIE_IDS, _ids(rec.catalogue.movie_ids), allow_pickle=False)
    return {"users": f.n_users, "movies": f.n_movies}


def _as_written(path: Path, entry) -> bool:
    """Whether the listed file ``path`` still holds what export recorded of it (size, then SHA-256), or is gone
    (nothing of the user's to lose)."""
    from embedrec.fsutil.integrity import sha256_file

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not isinstance(entry, dict) or entry.get("bytes") != size:
        return False
    return entry.get("sha256") == sha256_file(path)


# ------------------------------------------------------------------------------ evaluate's per-user table
PER_USER_EXTS = (".csv", ".tsv", ".parquet")


def write_per_user(path, overwrite: bool, evaluate) -> dict:
    """``evaluate(per_user=True)``'s metrics, the users' rows (its ``per_user`` frame) written to the new file
    ``path`` (whole or not at all; .csv, .tsv or .parquet by its extension; an existing file only with
    ``overwrite``, and only one this wrote: :func:`is_per_user_file`) and left out of the metrics returned.
    ``evaluate``: the call that scores, made once the file is known to be writable."""
    from embedrec.fsutil.outputs import atomic_file
    from embedrec.output import frame_to_csv, frame_to_tsv

    ext = Path(path).suffix.lower()
    if ext not in PER_USER_EXTS:
        raise UsageError(f"«--per-user|per_user=» {path}: give a .csv, .tsv or .parquet file name")
    with atomic_file(path, overwrite, command="embedrec evaluate --per-user", fix="choose a new «--per-user|per_user» file",
                     suffix=ext, ours=is_per_user_file) as tmp:
        metrics = evaluate()
        frame = metrics.pop("per_user")
        if ext == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:  # as --format tsv/csv writes a cell: a tab or a line break in an id is a space
            (frame_to_tsv if ext == ".tsv" else frame_to_csv)(frame, tmp, "%.6g")
    return metrics


def is_per_user_file(path) -> bool:
    """Whether ``path`` is a file :func:`write_per_user` wrote (user_id, then metric@K columns): what
    ``overwrite`` may replace, never a user's other file."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        else:
            with open(path, encoding="utf-8") as fh:
                names = fh.readline(4096).rstrip("\r\n").split("\t" if path.suffix.lower() == ".tsv" else ",")
    except Exception:  # noqa: BLE001 (unreadable, not Parquet: not ours)
        return False
    from embedrec.evaluate import RATING_COLUMNS

    # its ranking columns (metric@K), an explicit model's rating columns beside them or alone (--metrics rmse: rmse
    # and its ratings, then the rating baselines' and other runs' as global_mean:rmse; a review: a user's own
    # 'user_id,ratings' file was taken for one)
    # and a baseline's columns, which evaluate always writes beside the model's (a red team: a peer's own
    # 'user_id,ndcg@10' file, kept to join as the docs advise, was replaced by --overwrite)
    return len(names) > 1 and names[0] == "user_id" and (
        any("@" in n for n in names[1:]) or "ratings" in names and bool({"rmse", "mae"} & set(names))) and \
        all("@" in n or n in RATING_COLUMNS or ":" in n and n.rpartition(":")[2] in RATING_COLUMNS[:2]
            for n in names[1:]) and \
        any(n.partition(":")[0] in ("most_popular", "global_mean", "biases") for n in names[1:] if ":" in n)
