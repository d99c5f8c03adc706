"""The fit loop: batches, loss, optimiser, per-epoch validation, early stopping, checkpoints, resume.

Every random draw of epoch e comes from a generator seeded with (seed, e), so a run resumed from the
checkpoint of epoch e continues exactly as the uninterrupted run would have.

This module is one fit. The selection and the refit around many fits (``fit_selecting``, ``fit_and_refit``)
are ``select.py``'s (with ``dims.py`` and ``refit.py``), which import this module and never the reverse.
A checkpoint's identity (its fingerprint, loading, resuming, the run folder's file names) is
``checkpoints.py``'s, and the metrics of factors on a split (``evaluate_model``, ``evaluator``) are
``embedrec/evaluate.py``'s; this module imports both, neither imports it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec import evaluate as E
from embedrec import sparse as S
from embedrec.errors import ArtifactError, ConfigError, TrainingError
from embedrec.metrics import higher_is_better, parse_metric
from embedrec.model.factors import UNTRAINED_BIAS, auto_dim
from embedrec.sparse import setdiff, unique
from embedrec.threads import blas_threads, choose_threads
from embedrec.training import loop
from embedrec.training.checkpoints import (
    CHECKPOINT,
    LOG,
    TENSORBOARD,
    dataset_folder,
    fingerprint,
    fp_config,
    implicit_terms_auto,
    load_checkpoint,
    resumable,
    resume_checkpoint,
)

if TYPE_CHECKING:  # annotations only: torch is imported where a torch model is built
    from embedrec.model.mf import MatrixFactorization

log = logging.getLogger("embedrec")


@dataclass
class FitResult:
    model: MatrixFactorization
    loss: str
    metric: str
    best_epoch: int
    best_value: float
    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0
    unrated: np.ndarray | None = None  # movies without training ratings (scored from features, if any)
    # an als selection's candidate (refit.refit_path): (train config, best epoch) of each candidate from the
    # first to this one, each warm-started from the one before, and the first one's selected state
    path: tuple = ()
    path_start: dict | None = None
    dims: dict | None = None  # train.als_dims: {dimension: valid score} of each tried (dims.choose_dim)
    dims_seconds: dict | None = None  # and {dimension: seconds of its selection}
    optimizer: tuple | None = None  # (train.optimizer, train.lr) the fit ran with (resolve_optimizer), not als
    # an als fit that ended with its users re-solved: the kept epoch's valid score before that, the floor a
    # candidate warm-started from it compares its own first epoch with (scored as epochs are, unsolved); else None
    floor_value: float | None = None
    # train.als_newuser_prior auto's choice (training.newuser_prior): {"users", "valid", "alone"} per told count
    newuser_prior: dict | None = None
    # train.als_lowpass auto's choice (select.choose_lowpass_on): the valid scores by weight, the spread, the SVD's
    # seconds
    lowpass: dict | None = None
    lowpass_block: object = None  # its block (training.lowpass.LowPass), for the choices after it
    lowpass_basis: object = None  # then its W alone (movies x k), which the served block is made over
    # the users re-solved at the chosen train.als_user_unobserved where a refit follows (select.choose_user_unobserved_on):
    # (its train config, the train rows, the user table), which select.choose_trend_on takes instead of solving again
    users_resolved: tuple | None = None


def selection_of(result: FitResult, train_cfg) -> dict:
    """metrics.json's ``selection``: what early stopping on valid chose (and, for als, the chosen settings),
    the same for one process and for the torchrun trainers."""
    return {"best_epoch": result.best_epoch, "metric": result.metric, "valid": result.best_value,
            **({"als_reg": train_cfg.als_reg, "als_recency": train_cfg.als_recency,
                "als_count_weight": train_cfg.als_count_weight,
                "als_user_unobserved": train_cfg.als_user_unobserved,
                "als_unobserved": train_cfg.als_unobserved, "als_trend": train_cfg.als_trend,
                "als_trend_window": train_cfg.als_trend_window,
                "als_trend_activity": train_cfg.als_trend_activity,
                "als_newuser_prior": train_cfg.als_newuser_prior,
                "als_lowpass": train_cfg.als_lowpass, "als_lowpass_k": train_cfg.als_lowpass_k,
                **({"lowpass_valid": {k: v for k, v in result.lowpass.items() if k != "svd_seconds"},
                    "lowpass_seconds": result.lowpass.get("svd_seconds")} if result.lowpass else {}),
                **({"newuser_prior_valid": result.newuser_prior} if result.newuser_prior else {})}
               if result.loss == "als" else {}),
            **({"als_dims": {str(d): v for d, v in result.dims.items()},
                "als_dims_seconds": {str(d): round(v, 3) for d, v in (result.dims_seconds or {}).items()}}
               if result.dims else {}),
            **({"optimizer": result.optimizer[0], "lr": result.optimizer[1]} if result.optimizer else {}),
            "epochs_run": result.epochs_run, "seconds": round(result.seconds, 3),
            "seconds_to_best_epoch": result.history[result.best_epoch - 1].get("elapsed")
            if 0 < result.best_epoch <= len(result.history) else None}


def metrics_head(cfg, result: FitResult, selection: dict, refit: bool, ranks: int | None = None) -> dict:
    """metrics.json without its ``splits`` (filled by the caller's evaluation): one process and torchrun alike."""
    return {"objective": cfg.model.objective, "loss": result.loss, "dim": result.model.dim,
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "metric": result.metric,
            "train_seconds": round(result.seconds, 2), "selection": selection, "refit": bool(refit), "splits": {},
            **({"ranks": ranks} if ranks is not None else {})}


def model_record(cfg, result: FitResult, refit: bool, ranks: int | None = None) -> dict:
    """What a run's manifest records of its model (TrainedModel's ``extra``): its features, shape, best epoch and
    seen lists; ``ranks``: the torchrun trainers' number of ranks. One process and torchrun alike (the ranks' als
    tables, as als.Tables, have no biases and no features)."""
    model = result.model
    feats = None
    if hasattr(model, "fs_desc"):
        from embedrec.model.features import DEFAULT_YEAR_EDGES

        feats = {**model.fs_desc, "year_edges": cfg.features.year_edges or list(DEFAULT_YEAR_EDGES),
                 "age_edges": cfg.features.age_edges}
    return {"features": feats,
            "model": {"objective": cfg.model.objective, "loss": result.loss, "dim": model.dim,
                      "user_bias": getattr(model, "user_bias", None) is not None,
                      "movie_bias": getattr(model, "movie_bias", None) is not None,
                      # what model.implicit_terms (auto) resolved to: SVD++'s terms trained, folded in the users
                      "implicit_terms": getattr(model, "implicit_movie", None) is not None},
            "best_epoch": result.best_epoch, "metric": result.metric, "best_value": result.best_value,
            "refit": bool(refit), "seen": "train+valid", **({"ranks": ranks} if ranks is not None else {})}


def state_bytes(model) -> bytes | None:
    """The torch model's state_dict as torch.save bytes (state_dict.pt); None for als.Tables, whose numbers are
    all in the factor arrays (user_factors.npy, movie_factors.npy), so that train never imports torch."""
    if not hasattr(model, "parameters"):
        return None
    import io

    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def resolve_loss(model_cfg, features: bool = False) -> str:
    """auto: mse for explicit ratings; als for implicit, or the full/sampled softmax when side features are on
    (als fits the plain model only)."""
    if model_cfg.objective == "explicit":
        return "mse"
    loss = ("softmax" if features else "als") if model_cfg.loss == "auto" else model_cfg.loss
    if loss == "als" and features:  # a review: the fit dropped them without a word (and --user-features failed)
        raise ConfigError("config key 'model.loss': als trains the plain model only (no side features); with "
                          "features.user or features.movie use «--set model.loss=bpr» or softmax (or the default auto)")
    if loss == "als" and model_cfg.implicit_terms is True:
        raise ConfigError("config key 'model.implicit_terms': SVD++ terms apply to model.objective=explicit; set "
                          "model.implicit_terms=false for implicit training")
    return loss


def resolve_optimizer(loss: str, model_cfg, train_cfg, features: bool = False, device=None, *,
                      resumed: Path | None = None, agree=None, say: bool = True):
    """``train_cfg`` with train.optimizer and train.lr concrete. ``auto``: hogwild's per-example C kernel for the
    plain model's mse and bpr losses on the CPU (ML-100K explicit: 2.1 s to test RMSE 0.9030 against adam's 13.9 s
    to 0.9041; BENCHMARKS.md, session 34) and SVD++'s terms with mse, else adam: side features, the softmax loss, a GPU
    (``device``: where the fit runs, else train.device; train.device auto on a GPU box trains the plain model's
    hogwild on the CPU, the returned config's device then 'cpu'), train.compile (mse), more than 64 negatives (bpr), or a
    kernel that cannot be built here (warned once, where ``say``); als reads neither and gets adam. train.lr auto:
    :meth:`TrainConfig.learning_rate`. ``resumed``: the checkpoint a resume continues, whose optimizer and lr an
    ``auto`` takes where this machine can run them (a run trained with adam before auto existed, or where the
    kernel could not be built, continues as it was trained). ``agree``: ranks' consent, ``agree(ok) -> bool``
    true where every rank can run hogwild (torchrun: one trainer for all)."""
    import dataclasses

    opt, given, adopted = train_cfg.optimizer, train_cfg, ""
    # the checkpoint's train section, read once (a review: a resume loaded the whole checkpoint five times)
    was = _checkpointed(resumed) if resumed is not None and loss in ("mse", "bpr") else {}
    if opt == "auto":
        ok = _hogwild_fits(loss, model_cfg, train_cfg, features, device, say)
        ok = agree(ok) if agree is not None else ok
        opt = "hogwild" if ok else "adam"
        if was.get("optimizer") in ("adam", "hogwild") and was["optimizer"] != opt and (was["optimizer"] == "adam"
                                                                                        or ok):
            opt, adopted = was["optimizer"], ", as the checkpoint resumed was trained"
    if train_cfg.lr == "auto" and isinstance(was.get("lr"), (int, float)) and was.get("optimizer") == opt:
        if float(was["lr"]) != train_cfg.learning_rate(opt, loss):  # a hogwild run of the old default lr (0.003)
            adopted = adopted or ", the checkpoint's"                # resumes at it
        train_cfg = dataclasses.replace(train_cfg, lr=float(was["lr"]))
    lr = train_cfg.learning_rate(opt, loss)
    on_cpu = ""
    if opt == "hogwild" and device is None and train_cfg.device == "auto":
        # a GPU box: the kernel on its CPU cores beat adam on the GPU (ML-100K, H200 + 16 cores: explicit 3.7 s
        # against 20.1 s wall, bpr 4.3 s against 10.3 s, each to a better test figure; BENCHMARKS.md, session 36)
        from embedrec.device import device_name

        if device_name("auto") != "cpu":
            on_cpu = ", on the CPU (train.device auto: the kernel there trains the plain model faster than the GPU)"
        train_cfg = dataclasses.replace(train_cfg, device="cpu")
    if say and given.optimizer == "auto" and loss in ("mse", "bpr"):  # one line, where the fit resolves it
        log.info("train.optimizer auto: %s, lr %g%s%s%s", opt, lr, " per example" if opt == "hogwild" else "", adopted,
                 on_cpu)
        if opt == "hogwild" and given.lr != "auto":  # a review: an adam step trained at hogwild's pace in silence
            from embedrec.config_sections import HOGWILD_LRS

            log.warning("train.lr=%g is hogwild's per-example step here (train.optimizer auto chose hogwild for the "
                        "%s model; its own lr is %g); for an adam step set train.optimizer=adam too", lr,
                        loss, HOGWILD_LRS[loss])
    if (opt, lr) == (train_cfg.optimizer, train_cfg.lr):
        return train_cfg
    return dataclasses.replace(train_cfg, optimizer=opt, lr=lr)


def resolve_implicit_terms(model_cfg, train_cfg, loss: str, features: bool = False, resumed: Path | None = None,
                           say: bool = True):
    """``model_cfg`` with model.implicit_terms concrete, once ``train_cfg``'s optimizer is. ``auto``: SVD++'s terms
    for the plain explicit model where hogwild trains it (its svdpp_sgd costs about the plain steps' time and
    gained 0.0079 test RMSE over 5 ML-100K seeds, beating a tuned Surprise SVD by 0.0109; BENCHMARKS.md, session
    36); off for implicit models, side features and the autograd optimizers (one sparse product over all the
    ratings per step there: small data only), where ``true`` still asks for them. ``resumed``: the checkpoint a
    resume continues, whose choice auto keeps (an explicit run trained before auto existed has none)."""
    if model_cfg.implicit_terms != "auto":
        return model_cfg
    import dataclasses

    on = implicit_terms_auto(model_cfg, train_cfg.optimizer, features)
    was = _checkpointed(resumed, "model").get("implicit_terms") if resumed is not None and loss == "mse" else None
    on = was if isinstance(was, bool) else on
    if resumed is not None and _checkpointed(resumed).get("optimizer") not in (None, train_cfg.optimizer):
        say = False  # the resume is refused next, the checkpoint's optimizer named (a first-hour pass: this line
        # came first, as if the run went on)
    if on and say and _kernel_loads():  # one line, beside the optimizer's (a kernel that cannot load: its error)
        log.info("model.implicit_terms auto: SVD++'s terms on (the plain explicit model on hogwild)%s; "
                 "«--set model.implicit_terms=false|model.implicit_terms=False» for the plain MF",
                 ", as the checkpoint resumed was trained" if isinstance(was, bool) else "")
    return dataclasses.replace(model_cfg, implicit_terms=on)


def _kernel_loads() -> bool:
    from embedrec.training.kernel import KernelError, load

    try:
        load()
    except KernelError:
        return False
    return True


def _checkpointed(path: Path, section: str = "train") -> dict:
    """The ``section`` of the config a checkpoint recorded ({} where there is none to read: resume_checkpoint says
    so). The config of the last checkpoint read is kept, keyed by its path, size and time, so that the optimizer's
    and the implicit terms' resolutions of one resume load it once."""
    global _last_checkpointed
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if _last_checkpointed[0] != key:
        try:
            _last_checkpointed = (key, load_checkpoint(path).get("config") or {})
        except ArtifactError:
            return {}
    return _last_checkpointed[1].get(section) or {}


_last_checkpointed: tuple = (None, {})


def _hogwild_fits(loss: str, model_cfg, train_cfg, features: bool, device, say: bool = True) -> bool:
    if loss not in ("mse", "bpr") or features or (model_cfg.implicit_terms is True and loss != "mse"):
        return False  # SVD++'s terms: hogwild's svdpp_sgd, 10x mini-batch sgd on ML-100K (BENCHMARKS.md, session 36)
    if loss == "mse" and train_cfg.compile:  # torch.compile of the explicit loss: adam's autograd (bpr's ignores it)
        return False
    if loss == "bpr" and train_cfg.negatives > 64:  # the kernel's limit (training.sgd.Hogwild)
        if say:
            log.info("train.optimizer auto trains bpr with adam: hogwild takes at most 64 train.negatives (%d set)",
                     train_cfg.negatives)
        return False
    from embedrec.device import device_name

    # device auto: the CPU's kernel (resolve_optimizer then trains there); a GPU named, or the ranks' group's, not
    if device is None and train_cfg.device == "auto":
        device = "cpu"
    if str(device if device is not None else device_name(train_cfg.device)) != "cpu":
        return False
    from embedrec.training.kernel import KernelError, load

    try:
        load()
    except KernelError as e:
        global _said_no_kernel
        if say and not _said_no_kernel:
            _said_no_kernel = True
            log.warning("train.optimizer auto trains with adam, several times slower: %s; %s", e.reason("hogwild"),
                        e.fix)
        return False
    return True


_said_no_kernel = False


def check_ratings(manifest: dict, path, model_cfg, bounds=None) -> None:
    """An explicit model fits ratings: refuse a dataset ingested without them (data.columns.rating=null, every row
    stored as rating 1), on which it would fit the constant and report a perfect RMSE; likewise any dataset whose
    training ratings are all one value, e.g. a RecBole ``.inter`` file or a CSV of clicks with no rating field.
    ``bounds``: a function giving their lowest and highest, called for an explicit model only (a pass over the
    ratings, and on ranks a collective)."""
    if model_cfg.objective != "explicit":
        return
    columns = ((manifest.get("config") or {}).get("data") or {}).get("columns") or {}
    read = manifest.get("columns_read") or {}  # data.repeats=sum read a file without its rating column alike
    if "rating" in columns and columns["rating"] is None or "rating" in read and read["rating"] is None:
        how = "data.columns.rating=null" if columns.get("rating", "") is None else \
            "a file without a rating column, its rows summed by data.repeats: its values are counts" \
            if manifest.get("repeats") == "sum" else "a file without a rating column: each row an interaction"
        raise ConfigError(f"config key 'model.objective': explicit needs ratings, and dataset '{path}' has none "
                          f"(ingested with {how}); use the default model.objective=implicit")
    floor = manifest.get("min_rating")
    if floor is not None and ((manifest.get("config") or {}).get("data") or {}).get("min_rating") == "auto":
        # a like/dislike scale whose dislikes ingest set apart: an explicit model would learn the likes alone (a
        # review: a 0/1/2 file trained on its 1s and 2s without a word)
        raise ConfigError(f"config key 'model.objective': explicit fits ratings, and dataset '{path}' kept only "
                          f"its likes (ratings from {floor:g}): ingest set its dislikes apart (data.min_rating: auto, "
                          "on a like/dislike scale); to predict likes and dislikes, ingest it again with "
                          "«--set data.min_rating=null --overwrite|data.min_rating=None and overwrite=True», or rank "
                          "with the default model.objective=implicit")
    lo, hi = bounds() if bounds is not None else (None, None)
    if lo is not None and lo == hi:
        why = f"ingested with data.min_rating={floor:g}, which kept no other" if floor is not None else \
            "a file without a rating field?"
        raise ConfigError(f"config key 'model.objective': explicit fits ratings, and every training rating of "
                          f"dataset '{path}' is {lo:g} ({why}); use the default model.objective=implicit")


def resolve_metric(model_cfg, train_cfg) -> str:
    if train_cfg.metric != "auto":
        return train_cfg.metric.lower()
    return "rmse" if model_cfg.objective == "explicit" else f"ndcg@{min(train_cfg.eval_k)}"


# train.patience: auto: an als sweep is deterministic and its valid curve rises, then flattens within +-0.001, so
# one epoch without a gain ends it (measured in BENCHMARKS.md: the same epochs chosen as with 3, fewer run); the
# stochastic trainers' curves are noisier and wait 3
ALS_PATIENCE, PATIENCE = 1, 3


def resolve_patience(loss: str, train_cfg) -> int:
    if train_cfg.patience != "auto":
        return int(train_cfg.patience)
    return ALS_PATIENCE if loss == "als" else PATIENCE


def resolve_dim(model_cfg, n_movies: int) -> int:
    return auto_dim(n_movies) if model_cfg.dim == "auto" else int(model_cfg.dim)


def refuse_empty_train(n_train: int) -> None:
    """A fit refuses an empty training split (on ranks: ``n_train`` summed over them, so every rank refuses)."""
    if n_train == 0:
        raise TrainingError("the training split is empty; check the split settings and rerun ingest")


def validation_ks(train_cfg, metric: str) -> list[int]:
    """The cut-offs a fit's per-epoch validation scores: train.eval_k and the metric's own k."""
    k = parse_metric(metric)[1]
    return sorted(set(train_cfg.eval_k) | ({k} if k else set()))


def fit_callbacks(score, metric: str, patience: int, has_valid: bool, floor: float | None, *, logs: Path | None,
                  resume: bool, checkpoint, label: str, progress: bool, lines: bool = True) -> list:
    """A fit's callbacks in the loop's order, one process and the torchrun trainers alike: the validation
    (``score()``: the valid metrics; None without a valid split), the best epoch and early stopping (``floor``: see
    loop.KeepBest), the epoch log and TensorBoard in the folder ``logs`` (None: not written; on ranks, rank 0's),
    the ``checkpoint`` callback (or None) and the progress bar (``lines``: its INFO lines without a bar)."""
    callbacks: list = [] if score is None else [loop.Validation(score, metric)]
    callbacks.append(loop.KeepBest(metric, higher_is_better(metric), patience, has_valid, floor))
    if logs is not None:
        callbacks += [loop.JsonlLog(logs / LOG, resume), loop.TensorBoardLog(logs / TENSORBOARD)]
    if checkpoint is not None:
        callbacks.append(checkpoint)
    callbacks.append(loop.Progress(label, metric if has_valid else None, progress,
                                   may_stop=has_valid and (patience > 0 or floor is not None), lines=lines))
    return callbacks


def refit_users_at_end(state: loop.LoopState, loss: str, train_cfg, has_valid: bool, score, metric: str) -> float | None:
    """How an als fit ends (one process and ranks): with a number for train.als_user_unobserved (the chosen or the
    given one, 1 too), its users re-solved with that weight against the kept epoch's movies (``state.runner``'s
    ``refit_users``), and the kept model's valid score (``score()``) taken again, not the epoch's before it. An
    epoch solves the users, then the movies: without this the served users lag the movies by that half-sweep (a
    review: 0.996 cosine to their own re-solve, and test NDCG@10 0.4497 where the re-solved users give 0.4512).
    Returns the kept epoch's valid score before the re-solve where there was one (FitResult.floor_value), else
    None."""
    if loss != "als":
        return None
    scale = train_cfg.als_user_unobserved
    before = state.best  # what a warm-started candidate's first epoch, scored as it is, is compared with
    if scale != "auto":
        state.runner.refit_users(float(scale))
        if has_valid and state.best is not None:
            state.best = float(score().get(metric, float("nan")))
        return before
    return None


def fit_result(state: loop.LoopState, loss: str, metric: str, unrated: np.ndarray | None,
               t0: float | None = None) -> FitResult:
    """The FitResult of a finished loop (one process and ranks): its model, best epoch and value (NaN where none
    was scored), history and seconds since ``t0`` (default the loop's start, resumed fits' earlier seconds
    included)."""
    best = state.best if state.best is not None else float("nan")
    return FitResult(state.model, loss, metric, state.best_epoch + 1, float(best), state.history, len(state.history),
                     time.perf_counter() - (state.t0 if t0 is None else t0), unrated)


def seeded_model(n_users: int, n_movies: int, model_cfg, train_cfg, features_cfg, tables, mean: float,
                 rated) -> MatrixFactorization:
    """The torch model of a fit (one process and replica's ranks alike): under ``torch.manual_seed(train.seed)``,
    the features (from ``tables()``: the movies and users DataFrames, asked only when features are on) built
    first, then :func:`build_model` with the training ratings' ``mean`` and ``rated`` (users, movies)."""
    import torch

    torch.manual_seed(train_cfg.seed)  # before the features, which draw too
    fs = None
    if features_cfg is not None and features_cfg.active:
        from embedrec.model.features import build

        fs = build(features_cfg, *tables())
    return build_model(n_users, n_movies, model_cfg, train_cfg, mean, fs, rated=rated)


def build_model(n_users: int, n_movies: int, model_cfg, train_cfg, global_mean: float,
                fs=None, rated=None) -> MatrixFactorization:
    """The plain model, or FeatureMF when a FeatureSet with columns or crosses is given. ``rated``: the training
    (users, movies) arrays, needed by ``model.implicit_terms`` (SVD++: which movies each user rated)."""
    loss = resolve_loss(model_cfg, fs is not None and not fs.empty)
    full_softmax = loss == "softmax" and n_movies <= train_cfg.softmax_full_max
    if full_softmax and train_cfg.optimizer == "sparse_adam":
        raise ConfigError("config key 'train.optimizer': sparse_adam cannot train a full softmax (dense gradients); "
                          "use adam, sgd or adagrad, or lower train.softmax_full_max for sampled softmax")
    from embedrec.model.mf import MatrixFactorization

    sparse = train_cfg.optimizer in ("sgd", "adagrad", "sparse_adam") and not full_softmax
    explicit = model_cfg.objective == "explicit"
    kw = dict(user_bias=explicit and model_cfg.biases, movie_bias=model_cfg.biases and loss != "als", sparse=sparse,
              init_std=model_cfg.init_std, global_mean=global_mean if explicit else 0.0)
    dim = resolve_dim(model_cfg, n_movies)
    if model_cfg.implicit_terms is True:
        kw["rated"] = _rated_lists(model_cfg, train_cfg, rated, n_users, n_movies)
    if fs is not None and not fs.empty:
        if train_cfg.optimizer == "sparse_adam":
            raise ConfigError("config key 'train.optimizer': sparse_adam cannot train feature embeddings "
                              "(dense gradients); use adam, sgd or adagrad with features")
        from embedrec.model.mf import FeatureMF

        return FeatureMF(n_users, n_movies, dim, fs, explicit=explicit, **kw)
    if model_cfg.implicit_terms is True:
        from embedrec.model.mf import SVDpp

        return SVDpp(n_users, n_movies, dim, **kw)
    return MatrixFactorization(n_users, n_movies, dim, **kw)


def _rated_lists(model_cfg, train_cfg, rated, n_users: int, n_movies: int):
    """SVD++'s N(u) as CSR (indptr, indices) from the training (users, movies) the model is given (a set:
    a pair rated twice counts once)."""
    if model_cfg.objective != "explicit":
        raise ConfigError("config key 'model.implicit_terms': SVD++ terms apply to model.objective=explicit; "
                          "set model.implicit_terms=false for implicit training")
    if train_cfg.optimizer == "sparse_adam":
        raise ConfigError("config key 'train.optimizer': sparse_adam cannot train model.implicit_terms (dense "
                          "implicit vectors); use hogwild, adam, adagrad or sgd")
    if train_cfg.compile and train_cfg.optimizer != "hogwild":  # (hogwild compiles nothing: said as unread)
        raise ConfigError("config key 'train.compile': the SVD++ terms (model.implicit_terms) run eagerly; set "
                          "train.compile=false")
    if rated is None:
        raise ConfigError("config key 'model.implicit_terms': the model needs the training ratings (rated=)")
    pairs = unique(np.asarray(rated[0], np.int64) * n_movies + np.asarray(rated[1], np.int64))
    return S.csr(pairs // n_movies, pairs % n_movies, n_users)


def factors(model: MatrixFactorization, unrated: np.ndarray | None = None) -> dict[str, np.ndarray | float]:
    """Plain numpy copies of what the model scores with.

    ``unrated`` marks movies without training ratings (kept by data.keep_unrated_movies). A feature model
    scores them from their features alone; a plain model cannot score them, so their vector is zero and
    their bias -1000: they never rank above a movie it learned.
    """
    if hasattr(model, "factors"):  # als.Tables: numpy already
        f = model.factors()
        return f if unrated is None or not unrated.any() else _mask_unrated(f, unrated)
    import torch

    if hasattr(model, "export"):
        return model.export(None if unrated is None else torch.from_numpy(unrated))
    with torch.no_grad():
        f = {
            "user_factors": model.user.weight.detach().cpu().numpy().copy(),
            "movie_factors": model.movie.weight.detach().cpu().numpy().copy(),
            "user_bias": (model.user_bias.weight.detach().cpu().numpy()[:, 0].copy()
                          if model.user_bias is not None else None),
            "movie_bias": (model.movie_bias.weight.detach().cpu().numpy()[:, 0].copy()
                           if model.movie_bias is not None else None),
            "global_mean": float(model.global_mean),
        }
    return f if unrated is None or not unrated.any() else _mask_unrated(f, unrated)


def trained_users(users: np.ndarray, n_users: int) -> np.ndarray:
    """Per user row: whether ``users`` (the rows a model was fitted on) hold a rating of theirs."""
    return np.bincount(np.asarray(users, dtype=np.int64), minlength=n_users) > 0


def zero_untrained_users(f: dict, trained: np.ndarray, user_features: bool) -> dict:
    """The factors with a zero vector (and bias) for every user not ``trained`` (:func:`trained_users`): what
    serving reads as 'no trained vector' (serve.Recommender; split.cold_start's test-only users had their random
    or barely solved start served as a list), and what train's own metrics are of. A model with user features
    scores such users from their features, and is left as it is."""
    if user_features:
        return f
    idle = ~trained
    if idle.any():
        f["user_factors"] = np.array(f["user_factors"], copy=True)
        f["user_factors"][idle] = 0.0
        if f.get("user_bias") is not None:
            f["user_bias"] = np.array(f["user_bias"], copy=True)
            f["user_bias"][idle] = 0.0
    return f


def _mask_unrated(f: dict, unrated: np.ndarray) -> dict:
    f["movie_factors"][unrated] = 0.0
    if f["movie_bias"] is None:
        f["movie_bias"] = np.zeros(f["movie_factors"].shape[0], np.float32)
    f["movie_bias"][unrated] = UNTRAINED_BIAS
    return f



def recency_candidates(ds, train_cfg, total=int, level: int = logging.INFO) -> tuple[float, ...]:
    """``train.als_recency``'s candidates on ``ds``: a number is its own single candidate (without timestamps it
    weighs nothing); ``auto`` gives als.recency_auto's, logged at ``level``, or 0 without timestamps. ``total``
    sums a count over the ranks of a distributed fit (each holds whole users)."""
    tr, va = ds.splits["train"], ds.splits.get("valid")
    if train_cfg.als_recency != "auto":
        if float(train_cfg.als_recency) > 0 and tr.timestamp is None and level >= logging.INFO:
            log.warning("train.als_recency %g weighs nothing here: dataset '%s' has no timestamps (the recency "
                        "weight needs each rating's time)", float(train_cfg.als_recency), ds.path)
        return (float(train_cfg.als_recency),)
    from embedrec.training.als import later_share, recency_auto

    if tr.timestamp is None:
        return (0.0,)
    later, n = (0, 0) if va is None or va.timestamp is None else later_share(tr.user, tr.timestamp, va.user,
                                                                             va.timestamp, ds.n_users)
    later, n = int(total(later)), int(total(n))
    values = recency_auto(later, n)
    shown = " or ".join(f"{v:g}" for v in values)
    if n == 0:
        log.log(level, "als_recency auto: %s (no validation ratings to tell whether they come after training's)",
                shown)
    else:
        # a random holdout: the way to a recency weight said (an off-protocol check: one's own file whose test is
        # each user's latest lost to ALS with it, and won with a time valid; BENCHMARKS.md, session 64)
        given = (ds.manifest.get("split") or {}).get("method") == "given"  # (its valid drawn, or the user's own)
        log.log(level, "als_recency auto: %s (%s of %s validation ratings come at or after their user's training "
                "ratings" + ("; the better on valid is kept)" if len(values) > 1 else ": a random holdout, where "
                             "recent ratings lead no better; to serve what users do next, " +
                             ("give validation rows that follow each user's training ones (data.valid_source)"
                              if given else "ingest with «--set split.method=user_time|split.method='user_time'»")
                             + ")"), shown, f"{later:,}", f"{n:,}")
    return values


def make_runner(model: MatrixFactorization, loss: str, train_cfg, ds, threads: int, reuse: dict | None = None,
                bar: str | None = None):
    """The epoch runner for this loss and optimiser: implicit ALS, the hogwild C kernel, or autograd batches
    (which move ``model`` to train.device). ``reuse``: see :func:`fit`; ``bar``: the fit's bar's name, beside which
    an als epoch counts its rows solved (None: no bar)."""
    tr = ds.splits["train"]
    if loss == "als":
        from embedrec.training.als import ALS, confidence, count_weight

        key = ("confidence", train_cfg.als_rating_weight, count_weight(train_cfg), train_cfg.als_recency)
        reuse = {} if reuse is None else reuse
        for old in [k for k in reuse if k[0] in ("confidence", "csr") and k[-3:] != key[-3:]]:
            del reuse[old]  # another recency's weights and CSRs: at most one set is held (2 GB at 100M ratings)
        if key not in reuse:
            reuse[key] = confidence(tr.user, tr.rating, tr.timestamp, ds.manifest.get("rating_scale"), train_cfg,
                                    summed=ds.manifest.get("repeats") == "sum")
        runner = ALS(model, train_cfg, tr.user, tr.movie, threads, weights=reuse[key], csrs=reuse.get(("csr", *key)),
                     bar=bar)
        reuse[("csr", *key)] = runner.csrs  # the same weights: the same CSRs for the next candidate
        return runner
    if train_cfg.optimizer == "hogwild":
        from embedrec.training.sgd import Hogwild, refuse_cuda

        refuse_cuda(train_cfg.device)  # auto: the kernel runs on the CPU (train.compile: said once by api.train)
        import torch

        return Hogwild(model, loss, train_cfg, torch.from_numpy(tr.user.astype(np.int64)),
                       torch.from_numpy(tr.movie.astype(np.int64)), torch.from_numpy(tr.rating.astype(np.float32)),
                       ds.n_movies, threads)
    from embedrec.device import resolve_device
    from embedrec.training.minibatch import Minibatch

    device = resolve_device(train_cfg.device)
    return Minibatch(model.to(device), loss, train_cfg, ds, tr.user, tr.movie, tr.rating, device=device)


def fit(ds, model_cfg, train_cfg, run_dir: str | Path | None = None, *, resume: bool = False,
        progress: bool = False, on_epoch=None, features_cfg=None, init_state: dict | None = None,
        reuse: dict | None = None, floor: float | None = None) -> FitResult:
    """Train on ``ds.splits['train']``, validate on ``valid`` each epoch, keep the best epoch.

    With ``run_dir``, each epoch is logged (metrics.jsonl, TensorBoard) and checkpointed there, and ``resume``
    continues from the checkpoint; without it, nothing is written. ``init_state``: a state_dict the model starts
    from instead of its seeded draw (a warm start). ``reuse``: a dict that fits on the same ``ds`` share (the
    als candidates): what does not depend on the candidate is built once and kept there (the validation lists
    and score buffer; the als weights and CSRs, per recency, the latest one only). ``floor``: see
    loop.KeepBest (a warm-started candidate). ``train.als_recency: auto`` outside a selection is its first
    candidate (:func:`recency_candidates`), and so is ``train.als_count_weight: auto`` (0)."""
    kept: list = []  # torch's thread count and global RNG state, put back however the fit ends (a library call)
    try:
        return _fit(kept, ds, model_cfg, train_cfg, run_dir, resume=resume, progress=progress, on_epoch=on_epoch,
                    features_cfg=features_cfg, init_state=init_state, reuse=reuse, floor=floor)
    finally:
        if kept:
            import torch

            torch.set_num_threads(kept[0][0])
            torch.set_rng_state(kept[0][1])


def _fit(kept: list, ds, model_cfg, train_cfg, run_dir, *, resume, progress, on_epoch, features_cfg, init_state,
         reuse, floor) -> FitResult:
    t0 = time.perf_counter()  # everything counts: model, optimiser and kernel set-up included
    if resume and run_dir is None:
        raise ArtifactError("nothing to resume: resuming needs the run directory that holds the checkpoint")
    tr = ds.splits["train"]
    refuse_empty_train(len(tr))
    check_ratings(ds.manifest, ds.path, model_cfg, lambda: (float(tr.rating.min()), float(tr.rating.max())))
    dim = resolve_dim(model_cfg, ds.n_movies)
    loss_name = resolve_loss(model_cfg, features_cfg is not None and features_cfg.active)
    train_cfg = resolve_optimizer(loss_name, model_cfg, train_cfg, features_cfg is not None and features_cfg.active,
                                  resumed=Path(run_dir) / CHECKPOINT if resume and run_dir is not None else None)
    model_cfg = resolve_implicit_terms(model_cfg, train_cfg, loss_name, features_cfg is not None and
                                       features_cfg.active,
                                       resumed=Path(run_dir) / CHECKPOINT if resume and run_dir is not None else None)
    if loss_name == "als" and train_cfg.als_recency == "auto":  # a number before the checkpoint's fingerprint
        import dataclasses

        first = recency_candidates(ds, train_cfg, level=logging.DEBUG)[0]
        train_cfg = dataclasses.replace(train_cfg, als_recency=first)
    if loss_name == "als" and train_cfg.als_count_weight == "auto":  # as recency: its first candidate, 0
        import dataclasses

        from embedrec.training.als import count_weight

        train_cfg = dataclasses.replace(train_cfg, als_count_weight=count_weight(train_cfg))
    metric = resolve_metric(model_cfg, train_cfg)
    user_features = bool(features_cfg is not None and features_cfg.active and features_cfg.user)
    given = ds.manifest.get("valid_given", len(ds.splits.get("valid", ())))  # (before a caller's with_vectors)
    if not user_features:
        ds = with_vectors(ds)  # the valid rows a fit can score: its users' (valid, not train, changes)
    has_valid = len(ds.splits.get("valid", ())) > 0
    label = _fit_label(run_dir, bool(ds.manifest.get("refit")))
    on_numpy = numpy_als(loss_name, train_cfg, ds.n_users, ds.n_movies, dim)
    # train.threads, else 1 for small problems or a busy machine (torch's default oversubscribes a shared box);
    # the ALS C kernel's threads block rather than spin: it takes two cores where one is free (embedrec.threads)
    threads = choose_threads(len(tr), dim, train_cfg.threads, als=on_numpy)
    log.debug("training with %d thread(s)", threads)
    if on_numpy:
        from embedrec.bars import step
        from embedrec.training.als import Tables

        draw = init_state is None  # (a scale review: 13.6 s before a fit's first bar at 1M users, most of it this)
        with step(f"{label}: drawing its starting tables" if progress and draw else None,
                  Tables.draws(ds.n_users, ds.n_movies, dim), " random numbers", scale=True) as tick:  # (its rate:
            # '38.3M random numbers/s', not '38.3Mnumber/s': a review)
            model = Tables(ds.n_users, ds.n_movies, dim, model_cfg.init_std, train_cfg.seed, draw=draw, tick=tick)
    else:
        import torch

        kept.append((torch.get_num_threads(), torch.get_rng_state()))  # before _torch_model sets them
        model = _torch_model(ds, model_cfg, train_cfg, features_cfg, threads)
    if init_state is not None:
        model.load_state_dict(init_state)
    if not has_valid and not ds.manifest.get("refit"):  # after the model: a feature it cannot build is the one line
        log.warning("%s: no early stopping, the last epoch is kept", no_valid_reason(given))
    unrated = np.bincount(tr.movie, minlength=ds.n_movies) == 0
    unrated = unrated if unrated.any() else None
    state = loop.LoopState(model, make_runner(model, loss_name, train_cfg, ds, threads, reuse,
                                              bar=label if progress else None), train_cfg.epochs, t0)
    on_valid = None
    if has_valid:
        reuse = {} if reuse is None else reuse
        on_valid = _valid_evaluator(ds, model_cfg, train_cfg, metric, threads, reuse)

    def score():
        return on_valid(factors(model, unrated))

    patience = resolve_patience(loss_name, train_cfg)
    checkpoint = None
    if run_dir is not None:
        run_dir = Path(run_dir)
        fp, fp_cfg = fingerprint(ds, model_cfg, train_cfg, features_cfg), fp_config(model_cfg, train_cfg, features_cfg)
        if resume:
            resume_checkpoint(state, run_dir / CHECKPOINT, lambda got: resumable(got, ds, model_cfg, train_cfg,
                                                                                 features_cfg), fp_cfg, metric, ds.path)
        run_dir.mkdir(parents=True, exist_ok=True)  # after a resume's checks: a refused one creates nothing
        checkpoint = loop.Checkpoint(run_dir / CHECKPOINT, fp, fp_cfg, dataset_folder(ds.path))
    callbacks = fit_callbacks(score if has_valid else None, metric, patience, has_valid, floor, logs=run_dir,
                              resume=resume, checkpoint=checkpoint, label=label, progress=progress)
    if on_epoch is not None:
        callbacks.append(loop.EachEpoch(on_epoch))
    with blas_threads(threads):
        loop.run(state, train_cfg.seed, train_cfg.lr, callbacks)
        unsolved = refit_users_at_end(state, loss_name, train_cfg, has_valid, score, metric)
    if hasattr(model, "cpu"):
        model.cpu()  # trained on train.device; what follows (factors, state_dict, publish) is plain CPU data
    result = fit_result(state, loss_name, metric, unrated)
    result.floor_value = unsolved
    result.optimizer = None if loss_name == "als" else (train_cfg.optimizer, train_cfg.lr)
    return result


def _fit_label(run_dir, refit: bool) -> str:
    """The progress bar's and its lines' name: refit or train, and the candidate's or dimension's folder (a scale
    review: a log's lines were all 'train:', its losses jumping from one candidate's fit to the next)."""
    from embedrec.run_layout import CANDIDATE_NAME, DIM_NAME

    label = "refit" if refit else "train"
    if run_dir is None:
        return label
    p = Path(run_dir)
    names = [p.name] if CANDIDATE_NAME.fullmatch(p.name) or DIM_NAME.fullmatch(p.name) else []
    if names and CANDIDATE_NAME.fullmatch(p.name) and DIM_NAME.fullmatch(p.parent.name):  # a dimension's candidate
        names.insert(0, p.parent.name)
    return f"{label} {'/'.join(names)}" if names else label


def _valid_evaluator(ds, model_cfg, train_cfg, metric: str, threads: int, reuse: dict):
    """The validation evaluator of :func:`embedrec.evaluate.evaluator`, built once per ``reuse`` (fits on the same
    ``ds``: the callers' :func:`with_vectors` view, where the model has no user features)."""
    explicit = model_cfg.objective == "explicit"
    key = ("valid", explicit, tuple(train_cfg.eval_k), metric, train_cfg.eval_users, train_cfg.device)
    if key not in reuse:
        reuse[key] = E.evaluator(ds, "valid", explicit, train_cfg.eval_k, metric, ranking=not explicit,
                                 max_users=train_cfg.eval_users, fast=threads, device=train_cfg.device)
    return reuse[key]


def valid_with_vectors(train, valid, n_users: int, lo: int = 0):
    """``valid``'s rows whose user has a row in ``train`` (user rows from ``lo``: a rank's), or ``valid`` itself
    where every one has."""
    from embedrec.data.dataset import Interactions

    keep = trained_users(np.asarray(train.user) - lo, n_users)[np.asarray(valid.user) - lo]
    if keep.all():
        return valid
    return Interactions(valid.user[keep], valid.movie[keep], valid.rating[keep],
                        None if valid.timestamp is None else valid.timestamp[keep])


def vectorless_users(valid, kept) -> int:
    """How many users of ``valid`` :func:`valid_with_vectors` left out (``kept``: what it returned)."""
    if kept is valid:
        return 0
    return int(setdiff(valid.user, kept.user).size)


def no_valid_reason(given: int) -> str:
    """Why a fit has no valid row to score: none given, or ``given`` rows all of users without a training row."""
    if not given:
        return "the validation split is empty"
    return (f"none of the {given:,} validation ratings is of a user with a training rating (users first seen after "
            "the training window, as a global time cut keeps them: no fit gives them a vector), so nothing is chosen "
            "on them")


def with_vectors(ds):
    """``ds``, or a view of it whose valid split holds only the rows of users with a training rating. What every
    choice on valid is scored on: the others (users first seen after a global time cut's training window) get
    no vector from any fit, so their lists say nothing about a candidate, and a fit's epochs (their drawn start
    vectors, partly solved towards zero) scored them otherwise than its users' final re-solve (exact zeros): a
    global time cut's chosen fit scored valid NDCG@10 0.1680 and its re-solve 0.1426, 77 of 162 users without a
    training rating."""
    import copy

    va = ds.splits.get("valid")
    if va is None or len(va) == 0:
        return ds
    kept = valid_with_vectors(ds.splits["train"], va, ds.n_users)
    if kept is va:
        return ds
    view = copy.copy(ds)
    view.splits = {**ds.splits, "valid": kept}
    view.manifest = {**ds.manifest, "valid_given": len(va)}  # what no_valid_reason says where none is kept
    return view


def numpy_als(loss: str, train_cfg, n_users: int, n_movies: int, dim: int) -> bool:
    """Whether als fits numpy tables (als.Tables, no torch import): on the CPU with the C kernel."""
    if loss != "als":
        return False
    from embedrec.device import device_name
    from embedrec.training import als

    return (device_name(train_cfg.device) == "cpu" and als.Tables.fits(n_users, n_movies, dim)
            and als._kernel() is not None)


def _torch_model(ds, model_cfg, train_cfg, features_cfg, threads: int):
    import torch

    torch.set_num_threads(threads)
    tr = ds.splits["train"]
    return seeded_model(ds.n_users, ds.n_movies, model_cfg, train_cfg, features_cfg, lambda: (ds.movies, ds.users),
                        float(tr.rating.mean()), (tr.user, tr.movie))
