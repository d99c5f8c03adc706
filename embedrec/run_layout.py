"""The run directory's layout: the one place that names what ``train`` leaves in a run folder and later commands
read, and answers what a run folder holds now (the files training leaves for ``--resume``, a model published
since a given time, a writer at work). Opening a model folder is run.py's; writing one, run_publish.py's (its
files are written by artifacts.py, under the names given here).

Each file and folder name below is a constant here, which the modules above import (tests/test_layers.py fails on
one written out whole anywhere else), but the model folder's other arrays, named by their stem as ``Run.array``
reads them (``seen_indptr`` for seen_indptr.npy), and ``current``, every generation folder's link
(fsutil/generations.py). A name a lower layer reads first is defined there and imported here: the manifest's
(fsutil/integrity.py, every sealed folder's), the checkpoints' and the refit folder's (fsutil/outputs.py, which
tells an unfinished run by them).

Layout::

    RUN/checkpoint.pt          training state for --resume (torch, loaded with weights_only=True)
    RUN/metrics.jsonl          one JSON line per epoch (the training log)
    RUN/current -> artifacts-<version>/   swapped atomically when a new model is ready
    RUN/artifacts-<version>/
        manifest.json          versions, dataset fingerprint, model args, file checksums, index metadata
        config.yaml            the resolved config of the run (an auto a rerun re-chooses kept, with a comment of its value here)
        state_dict.pt          the torch model's state_dict (absent for als on the CPU: the factors are all of it)
        user_factors.npy movie_factors.npy user_bias.npy movie_bias.npy
        users.parquet movies.parquet    id maps (external id <-> index) with titles, years, genres (for people,
                                        pandas and export)
        user_ids.npy movie_ids.npy movies.json   the same ids, titles, years and genres in the form serving
                                        reads cheaply (no pyarrow): integer ids as integers, string ids as
                                        fixed-width unicode; runs written before these files read the Parquet
        seen_indptr.npy seen_indices.npy  each user's train+valid movies (CSR), excluded from recommendations
        movies_ip.faiss movies_cos.faiss  the indexes (see serve/index.py)
        metrics.json metrics.jsonl
    RUN/checkpoint-dist.json RUN/checkpoint-dist-e<epoch>/   torchrun's sharded checkpoint (shard_checkpoint)
    RUN/als-*/ RUN/als-dim-<d>/ RUN/refit/ RUN/refit/path-<i>/   the folders training makes (training.folders)

numpy and fsutil only: serving imports this. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import numpy as np

from embedrec.fsutil.integrity import MANIFEST  # noqa: F401 (every sealed folder's; a run's model folder's here)
from embedrec.fsutil.outputs import CHECKPOINT, DIST_POINTER, REFIT  # noqa: F401 (fsutil's look for an unfinished run)

RUN_FORMAT = 1
# a model folder's files (artifacts.py writes them; its arrays are named ``<name>.npy`` by run.Run.array's names)
CONFIG = "config.yaml"  # the run's resolved config
METRICS = "metrics.json"  # what training measured (its ``selection``, ``held_out``, each split's metrics)
STATE_DICT = "state_dict.pt"  # the torch model's state_dict
USERS_TABLE, MOVIES_TABLE = "users.parquet", "movies.parquet"  # the id maps with titles, years, genres
USER_IDS, MOVIE_IDS = "user_ids.npy", "movie_ids.npy"  # the same ids in the form serving reads (no pyarrow)
# Factors' scoring arrays: the vectors and the biases (the biases where the model has them)
FACTOR_FILES = USER_FACTORS, MOVIE_FACTORS, USER_BIAS, MOVIE_BIAS = (
    "user_factors.npy", "movie_factors.npy", "user_bias.npy", "movie_bias.npy")
IP_FILE, COS_FILE = "movies_ip.faiss", "movies_cos.faiss"  # the indexes (serve.index writes and reads them)
# Dataset.rated_below_unknown (movies rated by users the dataset's cleaning left out) as arrays:
# those users' ids (sorted), a CSR indptr over them, the movie rows; read by serving without pandas
UNKNOWN_RATED = ("unknown_user_ids", "unknown_indptr", "unknown_movies")
# an als run's users' final solve, which explanations split a known user's score by (serve.explain): each seen
# pair's confidence weight in that solve (float32, aligned with seen_indices.npy; 0 where the pair was seen but
# not trained on), and each user's divisor of its solved vector (float32; training.trend's scale, written where
# the run adds recent popularity). Written by train, in one process or on ranks (each rank its users' weights:
# shard_als.solve_weights); runs trained before them explain new users only
SOLVE_WEIGHTS, USER_SCALE = "solve_weights", "user_scale"
# an als run with the low-pass block (training.lowpass; training_ratings.solve.lowpass records its columns and
# weight): a = D_I^-1/2 W (movies x k, float32), whose rows over the movies a user rated sum to its block
LOWPASS_A = "lowpass_a"
# the manifest's records of `embedrec update-users` (user_update.py), oldest first: each the ratings file (its path,
# SHA-256 and rows), the run's users re-solved (``users``) and the users it added (``users_added``, new rows at the
# end of every user table: n_users grows by them), the pairs added to their seen movies and those in their solve,
# the distinct users every update so far re-solved or added (``users_in_all``, from UPDATED_USERS; null where an
# update before it kept no such file), its time and the model folder it replaced. A model folder published by
# train has none.
UPDATES = "updates"
# the rows of the users an update re-solved or added, every update so far (int64, sorted): what makes an updates
# record's ``users_in_all`` a count of distinct users, not of re-solves (a user updated twice is one user)
UPDATED_USERS = "updated_users"
# the rows of the dataset's users without a training rating (split.cold_start's, or a user whose training ratings
# all lie in valid or test) that an update solved, every update so far (int64, sorted): solved as a new user is
# (the fold-in's weights) and served as one, the new users' prior in their lists, as the users an update adds are
# (Recommender.added_rows); each record's ``users_as_new`` counts its own. An updated model's only, and only where
# an update solved such a user
SOLVED_AS_NEW = "solved_as_new"
# the pairs every update so far added to its users' seen movies, oldest update first, each as its file gave it (a
# user coming from implicit's partial_fit_users expects history to show what it gave): the user's row, the movie's,
# the rating (NaN where the file had no rating column, on a counts model the pair's count, or the pair of a row
# data.missing=drop dropped) and the time in Unix seconds (NaN where the file had no timestamp column). A plain
# structured array, read with allow_pickle=False; each pair among the user's seen ones (verify.check_update_pairs).
# An updated model's only, and only of the updates since it was kept (an earlier update's rows are not known)
UPDATE_PAIRS = "update_pairs"
UPDATE_PAIRS_DTYPE = np.dtype([("user_idx", "<i8"), ("movie_idx", "<i8"), ("rating", "<f8"), ("timestamp", "<f8")])

ARTIFACTS = "artifacts"  # folders artifacts-<generations.new_version()>, pruned by generations.prune_generations
MODEL_FOLDER = re.compile(rf"{ARTIFACTS}-[0-9]{{8}}T[0-9]{{6}}-[0-9]+")  # generations.new_version()'s names
TUNE_DIR = "tune"  # tune-dims' default folder inside a run (tune.py writes it; its names are the run's layout)
TUNE_RESULTS = "tune.json"
WRITER_LOCK = ".lock"  # a folder's writer lock (locks.exclusive_lock): a run's, a tune folder's
CATALOGUE = "movies.json"  # titles, years, genres per movie row (with user_ids.npy, movie_ids.npy): what serving reads
# what training keeps beside the published models (written by the training layer: loop, select, shard_checkpoint;
# cleared by training.folders), named here with the rest of the run's layout: CHECKPOINT, DIST_POINTER (torchrun:
# names the newest complete sharded checkpoint, shard_als) and REFIT (the refit's folder) are fsutil.outputs', which
# looks for an unfinished run by them below this layer, imported above
LOG = "metrics.jsonl"  # the training log; a model folder keeps a copy under the same name
# torchrun's sharded checkpoints beside DIST_POINTER (shard_checkpoint writes them): a folder DIST_CHECKPOINT plus the
# epoch in five digits (checkpoint-dist-e00003; '.<that>.tmp' while written), each holding these .npy tables
DIST_CHECKPOINT = "checkpoint-dist-e"
DIST_FOLDER = re.compile(rf"{DIST_CHECKPOINT}[0-9]{{5}}|\.{DIST_CHECKPOINT}[0-9]{{5}}\.tmp")
DIST_TABLES = ("user.npy", "movie.npy", "best_user.npy", "best_movie.npy")
TENSORBOARD = "tensorboard"  # a fit's TensorBoard event folder, beside its log
WARM = "warm-start.json"  # in a later candidate's folder: which model it started from (select.warm_key)
# the folders training makes in a run: a selection's candidates (select.Selection.folder), another dimension's
# selection (training.dims) and the refit's; a user's own als-backup/ or refit-old/ is none of them
CANDIDATE_NAME = re.compile(r"als-(?:reg|recency|a0|count)-[0-9.e+-]+?(?:-(?:recency|a0|count)-[0-9.e+-]+?)*")
DIM_NAME = re.compile(r"als-dim-[0-9]+")
# train.als_dims' side folder while other dimensions fit, ``.als-dims.embedrec-tmp-<pid>-<8 random>`` (fsutil.outputs'
# side name of this stem): the tables of each dimension fitted before, as .npy files, read back for the one chosen
# and removed as the choice ends (training.dims.Parked); one a killed train left is removed by the next one's
PARKED = "als-dims"
STAGE = "path-"  # a refit's stages before its last, each in its own folder in REFIT's: refit/path-<i> (training.refit)
STAGE_NAME = re.compile(rf"{STAGE}[0-9]+")


def run_of(p: Path) -> Path:
    """The run folder of ``p`` (a run, or a model folder in one), as the messages name it (errors.from_here); a
    run named artifacts-v2 is a run."""
    from embedrec.errors import from_here

    return from_here(p.parent if MODEL_FOLDER.fullmatch(p.name) else p)


def training_files(run_dir, name: str) -> list[Path]:
    """The files called ``name`` that training leaves in a run folder: in it, in a candidate or refit folder
    (als-reg-0.01/, refit/) and in a dimension's folder and its candidates' (als-dim-256/,
    als-dim-256/als-reg-0.01/): the checkpoints and pointers ``train --resume`` looks for, in one place. Only the
    folders training makes count (a user's backup/checkpoint.pt is not a checkpoint of this run). (The refit's
    earlier stages, refit/path-0/, are not resumed: a refit starts again from the selection.)"""
    d = Path(run_dir)

    def made(folder: Path, dims: bool) -> bool:
        return folder.name == REFIT or CANDIDATE_NAME.fullmatch(folder.name) is not None or \
            dims and DIM_NAME.fullmatch(folder.name) is not None

    found = [d / name] if (d / name).exists() or (d / name).is_symlink() else []
    with contextlib.suppress(OSError):
        for sub in sorted(d.iterdir()):
            if not made(sub, dims=True) or not sub.is_dir():
                continue
            if (sub / name).exists() or (sub / name).is_symlink():
                found.append(sub / name)
            if DIM_NAME.fullmatch(sub.name):
                found += [c / name for c in sorted(sub.iterdir()) if made(c, dims=False) and c.is_dir()
                          and ((c / name).exists() or (c / name).is_symlink())]
    return found


def has_checkpoint(run_dir, since: float = 0.0) -> bool:
    """Whether the run folder, or a candidate folder in it (:func:`training_files`), holds a checkpoint
    (one-process or sharded) that ``train --resume`` continues, written at ``since`` (a time.time()) or later: a
    finished run's earlier checkpoint in the same folder is not this command's."""
    def recent(p: Path) -> bool:
        try:
            return p.is_file() and p.stat().st_mtime >= since
        except OSError:
            return False

    return any(recent(p) for name in (CHECKPOINT, DIST_POINTER) for p in training_files(run_dir, name))


def published_since(run_dir, since: float) -> bool:
    """Whether ``run_dir/current`` was swapped to a new model at ``since`` (a time.time()) or later (the link's
    own mtime: a new link is renamed over the old one); False where there is no ``current``."""
    try:
        return os.lstat(os.path.join(run_dir, "current")).st_mtime >= since
    except OSError:
        return False


def serves_another(model_folder) -> bool:
    """Whether the run that ``model_folder`` (an ``artifacts-*`` folder) belongs to serves another model now (its
    ``current`` swapped since a reader opened that one: update-users added users, train published): what a
    long-lived reader's unknown id may be (a review). False where it cannot tell."""
    folder = Path(model_folder)
    try:
        if not os.path.lexists(folder.parent / "current"):  # a model folder copied out of its run (cp -rL): no
            return False  # run beside it to serve another (a review: every unknown id was said so)
        return os.path.realpath(folder.parent / "current") != os.path.realpath(folder)
    except OSError:
        return False


def writer_note(run_dir) -> str | None:
    """'training is in progress in 'RUN' (embedrec train, pid N)' while a writer holds the run's lock (another
    writer's own words otherwise), else None: said before "no trained model" or "nothing to resume", whose advice
    (train --resume) the lock would then refuse (a red team)."""
    from embedrec.errors import from_here
    from embedrec.fsutil.locks import writer_of

    holder = writer_of(Path(run_dir) / WRITER_LOCK)
    if holder is None:
        return None
    pid, who = holder
    shown = f"{who}, pid {pid}" if pid != "?" else who
    what = "training is in progress" if who == "embedrec train" else f"{who} is writing"
    return f"{what} in '{from_here(run_dir, resolve=False)}' ({shown})"


def unknown_arrays(table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids sorted, CSR indptr, movie rows) of a rated_below_unknown table (user_id, movie_idx); text ids as
    unicode, which .npy holds without pickle."""
    from embedrec.sparse import csr

    users, rows = np.unique(table["user_id"].to_numpy(), return_inverse=True)
    indptr, indices = csr(rows, table["movie_idx"].to_numpy(np.int64), users.size)
    return users.astype(str) if users.dtype == object else users, indptr, indices
