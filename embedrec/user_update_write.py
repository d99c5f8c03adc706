"""update-users' new model folder: the seen pairs merged, the new users' ids, the arrays carried over."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec.run_layout import (
    MANIFEST,
    MOVIE_BIAS,
    MOVIE_FACTORS,
    SOLVE_WEIGHTS,
    SOLVED_AS_NEW,
    STATE_DICT,
    UPDATE_PAIRS,
    UPDATE_PAIRS_DTYPE,
    UPDATED_USERS,
    UPDATES,
    USER_SCALE,
)

if TYPE_CHECKING:  # annotations only: no import at run time

    from embedrec.run import Run
    from embedrec.serve.recommender import Recommender
    from embedrec.user_update import Plan



def merged_seen(ptr: np.ndarray, idx: np.ndarray, weights: np.ndarray, users: np.ndarray,
                movies: list[np.ndarray], new_w: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seen CSR (``ptr``, ``idx``) and its aligned ``weights`` with each of ``users``' (sorted rows) new
    ``movies`` (sorted, none among its seen ones) inserted in order, with weights ``new_w``: each user's movies stay
    sorted (sparse.csr's order, which seen_weights and the readers rely on), the other users' slices as they were;
    dtypes kept."""
    at = []
    for row, m in zip(users, movies):
        a, b = int(ptr[row]), int(ptr[row + 1])
        at.append(a + np.searchsorted(idx[a:b], m))
    at = np.concatenate(at) if at else np.zeros(0, np.int64)
    new_idx = np.insert(idx, at, np.concatenate(movies).astype(idx.dtype) if movies else np.zeros(0, idx.dtype))
    new_weights = np.insert(weights, at, np.concatenate(new_w).astype(weights.dtype) if new_w else
                            np.zeros(0, weights.dtype))
    added = np.zeros(ptr.size - 1, np.int64)
    added[users] = [m.size for m in movies]
    new_ptr = ptr.copy()
    new_ptr[1:] += np.cumsum(added).astype(ptr.dtype)
    return new_ptr, new_idx, new_weights


def appended_seen(ptr: np.ndarray, idx: np.ndarray, weights: np.ndarray, movies: list[np.ndarray],
                  new_w: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seen CSR (``ptr``, ``idx``) and its aligned ``weights`` with a user appended for each of ``movies`` (its
    seen movie rows, sorted) with its weights ``new_w``: the rows of the users an update adds, after the run's;
    dtypes kept."""
    counts = np.fromiter((m.size for m in movies), np.int64, len(movies))
    new_ptr = np.concatenate([ptr, (int(ptr[-1]) + np.cumsum(counts)).astype(ptr.dtype)])
    new_idx = np.concatenate([idx, *(m.astype(idx.dtype) for m in movies)])
    return new_ptr, new_idx, np.concatenate([weights, *(w.astype(weights.dtype) for w in new_w)])


def _write(tmp: Path, run: Run, engine: Recommender, plan: Plan, record: dict, before: np.ndarray | None,
           given_before: np.ndarray | None, progress: bool = False, movies=None) -> dict:
    """The new model folder: the changed arrays written (and the users' ids where the update adds users), every
    other listed file carried over checked (hard-linked where it can be), the manifest with the arrays' new hashes,
    n_users and the ``updates`` record (run_publish.publish seals it). ``given_before``: the earlier updates' pairs as
    their files gave them (:func:`_given_before`), which this update's follow. ``progress``: bars over the files
    carried over and the arrays written. ``movies``: the movies the update adds (movie_update.AddedMovies), whose
    rows grow the movie arrays and catalogue, and over which the indexes are built again (n_movies and the
    embeddings' hash in the manifest with them). Returns the files it hashed itself, those artifacts.carry_over
    linked and the arrays hashed as they were written (publish's ``hashed``)."""
    from embedrec.artifacts import PatchedRows, carry_over, save_arrays
    from embedrec.fsutil.files import write_json

    weights, scale = engine.solve_arrays()
    n_users = int(engine.P.shape[0])
    # the users not re-solved keep their bytes: the table written a block at a time from the one served (as the
    # engine opened it: checked, and memory-mapped where large), its re-solved rows replaced and the added users'
    # after it (never a copy of it in memory)
    P = engine.P
    ptr, idx, w = merged_seen(run.array("seen_indptr"), run.array("seen_indices"), np.asarray(weights), plan.users,
                              plan.new_movies, plan.new_weights)
    added = plan.added
    if added:
        ptr, idx, w = appended_seen(ptr, idx, w, [a.movies for a in added], [a.weights for a in added])
    P = PatchedRows(P, plan.vectors, np.stack([a.vector for a in added]).astype(P.dtype) if added else None)
    arrays = {"user_factors": P, "seen_indptr": ptr, "seen_indices": idx, SOLVE_WEIGHTS: w}
    if scale is not None:
        scale = np.array(scale)
        for row, s in plan.divisors.items():
            scale[row] = s
        arrays[USER_SCALE] = np.concatenate([scale, np.array([a.divisor for a in added], scale.dtype)])
    bias = run.array("user_bias") if added else None  # (an als run has none: a model with one, 0 for a new user)
    if bias is not None:
        arrays["user_bias"] = np.concatenate([bias, np.zeros(len(added), bias.dtype)])
    if before is not None:
        arrays[UPDATED_USERS] = np.union1d(before, plan.updated_rows(n_users)).astype(np.int64)
    if plan.as_new:  # the earlier updates' too (a file carried over where this update solves none)
        arrays[SOLVED_AS_NEW] = np.union1d(engine.solved_as_new(), plan.as_new).astype(np.int64)
    # the earlier updates' pairs as their files gave them, then this one's (history shows them)
    arrays[UPDATE_PAIRS] = given_pairs(plan) if given_before is None else \
        np.concatenate([given_before, given_pairs(plan)])
    n_movies = int(run.manifest["n_movies"])
    changed = movies is not None and movies.changed  # (movies added, or an earlier update's solved again)
    if changed:
        from embedrec.movie_update import movie_arrays

        arrays.update(movie_arrays(engine, run, movies))
    written = {f"{k}.npy" for k in arrays}
    if added:
        written |= _write_user_ids(tmp, run, [a.id for a in added], n_users)
    if movies is not None and len(movies):
        from embedrec.movie_update import write_movie_ids

        written |= write_movie_ids(tmp, run, movies, n_movies)
    # state_dict.pt (an als run trained on a GPU, torch's engine) holds the users' trained vectors, which no
    # reader serves from (export --to torch builds its module from the arrays): left out, not kept stale
    hashed = carry_over(run, tmp, "its users cannot be updated", written=written, left_out=(STATE_DICT,),
                        rebuilt=(".faiss",) if changed else (), progress=progress, link=_links(run))
    files = {**(run.manifest.get("files") or {}),
             **save_arrays(tmp, arrays, "writing the update" if progress else None, hashed)}
    history = run.manifest.get(UPDATES)
    manifest = {k: v for k, v in run.manifest.items() if k not in ("checksums", "model_folder")}
    if changed:  # the indexes over every movie, built again (the embeddings' hash as train makes it)
        import hashlib

        from embedrec.movie_update import index_of

        emb = hashlib.sha256((files[MOVIE_FACTORS] + files.get(MOVIE_BIAS, "")).encode()).hexdigest()
        manifest.update(n_movies=n_movies + len(movies), embeddings_sha256=emb,
                        index=index_of(tmp, run, arrays, emb, progress))
    write_json(tmp / MANIFEST, {**manifest, "files": files, "n_users": n_users + len(added),
                                UPDATES: [*(history if isinstance(history, list) else []), record]})
    return hashed


def _links(run: Run) -> bool:
    """Whether an update hard-links the files it carries from ``run``'s model folder: where that model is an update
    itself. The trained model an update is built on keeps its own bytes (the first update copies them), the way back
    run_updates.updates_fix names for a damaged updated model: a file damaged in place is damaged in every folder
    linked to it."""
    from embedrec.run_updates import updates_of

    return bool(updates_of(run.manifest))


def given_pairs(plan: Plan) -> np.ndarray:
    """The pairs ``plan`` adds to its users' seen movies as the file gave them (run_layout.UPDATE_PAIRS: user row,
    movie row, rating, time; by user, then movie), each rating NaN where the file gave none (Plan.given)."""
    got = plan.given_pairs
    out = np.zeros(int(sum(m.size for _, m, _, _ in got)), UPDATE_PAIRS_DTYPE)
    if got:
        out["user_idx"] = np.concatenate([np.full(m.size, row, np.int64) for row, m, _, _ in got])
        out["movie_idx"] = np.concatenate([m for _, m, _, _ in got])
        out["rating"] = np.concatenate([v for _, _, v, _ in got]) if plan.given else np.nan
        out["timestamp"] = np.concatenate([t for _, _, _, t in got])
    return out


def _write_user_ids(tmp: Path, run: Run, ids: list, n_users: int) -> set[str]:
    """The ids of the users an update adds, after the run's: users.parquet gains a row each (its row, its id; the
    other columns, a dataset's demographics, empty), and user_ids.npy (where the run has it) the ids
    (artifacts.grow_id_table). Returns the names of the files written."""
    from embedrec.artifacts import grow_id_table

    return grow_id_table(tmp, run, "user", {"user_id": ids}, n_users)[1]
