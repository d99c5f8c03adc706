"""The minibatch (autograd: mse, bpr, softmax) and hogwild trainers on several ranks (torchrun).

Their tables fit one rank, so every rank holds the whole model (replicated) and reads only its shard of the
ratings: every world-th Parquet row group, routed to the owner of each rating's user
(``dist_data.read_row_groups`` / ``route_to_users``, as the ALS path reads), with each rating's place in
the one-process file.

- **Minibatch** (``minibatch.Minibatch`` with a group): the one-process schedule, global batch for global batch;
  each rank computes its examples' share of the batch loss and ``dist_sync.GradSync`` sums the gradients
  (dense ones by all_reduce, sparse embeddings' touched rows by all_gather), so every rank takes the step one
  process takes. The model equals the one-process model up to the order of float sums.
- **Hogwild** (``HogwildRanks``): each rank runs the C kernel over its shard for an epoch, then the ranks merge
  their tables (``dist_sync.RowAverage``: each row averaged over the ranks' copies, weighted by how often each
  rank touched it; a user's row is its owner's copy). Not the one-process model: close in quality (tested).

Both start from the one-process initialisation (``torch.manual_seed(seed)``) and write the one-process
checkpoint (``checkpoint.pt``, rank 0 only, the replicas being identical), so a run resumes on any number of
ranks, one process included. Validation, the final metrics and the baselines are computed per rank on its
users and summed (``dist_eval.Evaluator``, ``dist_eval.baselines``); rank 0 publishes the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from embedrec.data.layout import MANIFEST
from embedrec.dist_data import Shard, rank_below, read_manifest, read_row_groups, route_to_users
from embedrec.dist_eval import Evaluator, baselines, held_out, sum_ranks, versus_popular
from embedrec.dist_sync import RowAverage
from embedrec.distributed import Group, bounds
from embedrec.training.fit import (
    check_ratings,
    metrics_head,
    seeded_model,
    selection_of,
    zero_untrained_users,
)

log = logging.getLogger("embedrec")


@dataclass
class Data:
    """One rank's shard, each split's file positions, and the dataset's folder (users and movies tables)."""

    shard: Shard
    rows: dict  # split -> each local rating's position in the split's file
    path: Path


def load(g: Group, path) -> Data:
    path = Path(g.share(str((Path(path) / MANIFEST).resolve().parent)))  # one generation for all ranks
    manifest = read_manifest(path, g, ("train", "valid", "test"))
    nu, nm = int(manifest["counts"]["users"]), int(manifest["counts"]["movies"])
    u_cuts = bounds(nu, g.world)
    splits, rows = {}, {}
    for s in ("train", "valid", "test"):
        splits[s], rows[s] = route_to_users(g, *read_row_groups(path, s, g.rank, g.world, nu, nm), u_cuts,
                                            with_rows=True)
    below, parts = rank_below(g, path, manifest, nu, nm, u_cuts)
    return Data(Shard(nu, nm, u_cuts, bounds(nm, g.world), splits, manifest, below=below, below_split=parts), rows,
                path)


# ------------------------------------------------------------------------------------------------ runners
class HogwildRanks:
    """hogwild's epoch runner on one rank: the kernel over this rank's ratings, then the tables merged."""

    def __init__(self, g: Group, model, loss: str, train_cfg, train, n_movies: int, threads: int):
        from embedrec.training.sgd import Hogwild

        self.g, self.model = g, model
        self.h = Hogwild(model, loss, train_cfg, torch.from_numpy(train.user.astype(np.int64)),
                         torch.from_numpy(train.movie.astype(np.int64)), torch.from_numpy(train.rating.astype(np.float32)),
                         n_movies, threads, rank=g.rank)
        self.n_local = len(train)
        self.n = g.total(self.n_local)
        wu = np.bincount(train.user, minlength=model.n_users).astype(np.float64)
        wm = np.bincount(train.movie, minlength=n_movies).astype(np.float64)
        if loss == "bpr":  # each example also touches train.negatives uniformly drawn movies
            wm += self.n_local * train_cfg.negatives / max(n_movies, 1)
        pairs = [(model.user, wu), (model.movie, wm), (model.user_bias, wu), (model.movie_bias, wm),
                 (getattr(model, "implicit_movie", None), wm)]  # SVD++'s y_j: moved by each user who rated j
        self.tables = [t.weight for t, _ in pairs if t is not None]
        self.merge = RowAverage(g, [w for t, w in pairs if t is not None])

    def epoch(self, gen: torch.Generator) -> float:
        mean = self.h.epoch(gen)
        self.merge(self.tables)
        return self.g.total(mean * self.n_local) / max(self.n, 1)


def make_runner(g: Group, model, loss: str, train_cfg, data: Data, train, rows, counts, threads: int):
    if train_cfg.optimizer == "hogwild":
        from embedrec.training.sgd import refuse_cuda

        refuse_cuda(train_cfg.device)
        return HogwildRanks(g, model, loss, train_cfg, train, data.shard.n_movies, threads)
    from embedrec.training.minibatch import Minibatch

    return Minibatch(model.to(g.device), loss, train_cfg, SimpleNamespace(n_movies=data.shard.n_movies), train.user,
                     train.movie, train.rating, device=g.device, group=g, positions=rows, movie_counts=counts)


# ------------------------------------------------------------------------------------------------ the fit
def _model(g: Group, data: Data, train, model_cfg, train_cfg, features_cfg):
    """The one-process model (training.fit.seeded_model): the same shapes, global mean, features and draws."""
    shard = data.shard
    rated = None
    if model_cfg.implicit_terms is True:  # SVD++'s rated lists are part of the model: every rank holds them
        rated = tuple(g.allgather(torch.from_numpy(a.astype(np.int64)).to(g.device)).cpu().numpy()
                      for a in (train.user, train.movie))
    mean = g.total(float(train.rating.astype(np.float64).sum())) / max(g.total(len(train)), 1)
    return seeded_model(shard.n_users, shard.n_movies, model_cfg, train_cfg, features_cfg,
                        lambda: _tables(data), mean, rated)


def _tables(data: Data):
    """(movies, users) of the generation the ranks read (not DATASET/current, which an ingest may have moved),
    checked against its manifest (data.dataset.read_tables)."""
    from embedrec.data.dataset import read_tables

    users, movies = read_tables(data.shard.folder or data.path, data.shard.manifest)
    return movies, users


def fit_replica(g: Group, data: Data, train, rows, valid, model_cfg, train_cfg, folder, *, resume: bool = False,
                progress: bool = False, label: str = "train", features_cfg=None):
    """training.fit on ranks: the same loop, callbacks and checkpoint, the runner on this rank's ratings."""
    from embedrec.metrics import parse_metric
    from embedrec.shard_als import start_fit
    from embedrec.training import loop
    from embedrec.training.checkpoints import CHECKPOINT, fingerprint, fp_config, resumable, resume_checkpoint
    from embedrec.training.fit import (
        factors,
        fit_callbacks,
        fit_result,
        resolve_implicit_terms,
        resolve_loss,
        resolve_optimizer,
        resolve_patience,
        validation_ks,
    )

    t0 = time.perf_counter()
    _, threads, metric = start_fit(g, len(train), model_cfg, train_cfg, data.shard.n_movies)
    loss = resolve_loss(model_cfg, features_cfg is not None and features_cfg.active)
    folder = Path(folder)
    train_cfg = resolve_optimizer(loss, model_cfg, train_cfg, features_cfg is not None and features_cfg.active,
                                  device=g.device.type, resumed=folder / CHECKPOINT if resume else None,
                                  agree=lambda ok: g.total(int(ok)) == g.world, say=g.leader)
    model_cfg = resolve_implicit_terms(model_cfg, train_cfg, loss, features_cfg is not None and features_cfg.active,
                                       resumed=folder / CHECKPOINT if resume else None, say=g.leader)
    model = _model(g, data, train, model_cfg, train_cfg, features_cfg)
    counts = sum_ranks(g, np.bincount(train.movie, minlength=data.shard.n_movies).astype(np.int64))
    unrated = counts == 0
    unrated = unrated if unrated.any() else None
    runner = make_runner(g, model, loss, train_cfg, data, train, rows, counts, threads)
    state = loop.LoopState(model, runner, train_cfg.epochs, t0)
    score = None
    has_valid = valid is not None and g.total(len(valid)) > 0
    if has_valid:
        from embedrec.evaluate import score_device

        explicit = model_cfg.objective == "explicit"
        ev = Evaluator(g, data.shard, [train], valid, validation_ks(train_cfg, metric), train_cfg.eval_users, explicit,
                       not explicit or parse_metric(metric)[1] is not None, score_device(g.device), split="valid")

        def score():
            return ev.metrics(factors(model, unrated))

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fp_cfg = fp_config(model_cfg, train_cfg, features_cfg)
    fp = fingerprint(SimpleNamespace(manifest=data.shard.manifest), model_cfg, train_cfg, features_cfg)
    if resume:  # every rank reads the one checkpoint (written by any number of ranks)
        resume_checkpoint(state, folder / CHECKPOINT,
                          lambda got: resumable(got, SimpleNamespace(manifest=data.shard.manifest), model_cfg,
                                                train_cfg, features_cfg), fp_cfg, metric)
    callbacks = fit_callbacks(score, metric, resolve_patience(loss, train_cfg), has_valid, None,
                              logs=folder if g.leader else None, resume=resume,
                              checkpoint=loop.Checkpoint(folder / CHECKPOINT, fp, fp_cfg) if g.leader else None,
                              label=label, progress=progress and g.leader, lines=g.leader)
    loop.run(state, train_cfg.seed, train_cfg.lr, callbacks)
    g.barrier()  # rank 0's last checkpoint is written before any rank moves on
    model.cpu()
    result = fit_result(state, loss, metric, unrated, t0)  # (seconds from this start, a resumed fit's before not added)
    result.optimizer = (train_cfg.optimizer, train_cfg.lr)
    return result


# ------------------------------------------------------------------------------------------------ the command
def train_replicated(g: Group, cfg, *, resume: bool = False, progress: bool = False) -> dict:
    """``embedrec train`` on ranks for the minibatch and hogwild trainers: fit, refit on train+valid, evaluate
    valid/test beside the baselines, publish from rank 0. Returns the metrics (on every rank)."""
    from embedrec.data.dataset import Interactions
    from embedrec.training.refit import afresh_config, keep_selection, selected_model_config

    asked = cfg  # the config given, whose finished key the publish records (a resume's early stop)
    data = load(g, cfg.data.prepared)

    def bounds():  # every rank's lowest and highest training rating (every rank has the same objective)
        r = data.shard.splits["train"].rating
        t = torch.tensor([-float(r.min()) if r.size else -np.inf, float(r.max()) if r.size else -np.inf],
                         dtype=torch.float64, device=g.device)
        neg_lo, hi = g.max_(t).tolist()
        return -neg_lo, hi

    check_ratings(data.shard.manifest, cfg.data.prepared, cfg.model, bounds)
    from embedrec.training.dims import warn_above_rank, within_rank

    given, cfg = cfg, within_rank(cfg, data.shard.n_users, data.shard.n_movies)  # as one process (select.py)
    sp, rows = data.shard.splits, data.rows
    log.info("%d ranks, the tables replicated; %s train ratings on rank 0", g.world, f"{len(sp['train']):,}")
    run_dir = Path(cfg.run.dir)
    from embedrec.training.folders import REFIT, check_folders, clear_training

    # every rank, before anything is cleared: a file (on a resume, a link) where the refit's folder goes (a review)
    check_folders([run_dir / REFIT] if cfg.train.refit and g.total(len(data.shard.splits["valid"])) > 0 else [], resume)
    if not resume and g.leader:  # what an earlier run's training left (another trainer's checkpoints): not resumed later
        clear_training(run_dir)
    scored = sp["valid"]  # every choice on the valid rows of users with a training rating (as training.fit's)
    if not (cfg.features.active and cfg.features.user):
        from embedrec.training.fit import valid_with_vectors

        lo, hi = data.shard.u_range(g.rank)
        scored = valid_with_vectors(sp["train"], sp["valid"], hi - lo, lo)
        from embedrec.training.select import say_left_out_on_ranks

        say_left_out_on_ranks(g, sp["valid"], scored)  # as one process says it (a review: the ranks said nothing)
    result = fit_replica(g, data, sp["train"], rows["train"], scored, cfg.model, cfg.train, run_dir,
                         resume=resume, progress=progress, features_cfg=cfg.features)
    if g.leader:  # after the first fit, as one process says it
        warn_above_rank(cfg, data.shard.n_users, data.shard.n_movies, given)
    selection = selection_of(result, cfg.train)
    held = held_out(g, data.shard)  # metrics.json's, before the refit takes valid into training (as train_workflow)
    refit = cfg.train.refit and g.total(len(sp["valid"])) > 0
    if refit:  # train+valid in the one-process order: valid's positions follow every train rating
        both = Interactions.concat([sp["train"], sp["valid"]])
        both_rows = np.concatenate([rows["train"], rows["valid"] + int(g.total(len(sp["train"])))])
        va = sp["valid"]
        sp.update(train=both, valid=Interactions(va.user[:0], va.movie[:0], va.rating[:0]))
        tcfg = afresh_config(result, cfg.train, int(g.total(len(both))))
        result = keep_selection(fit_replica(g, data, both, both_rows, None, selected_model_config(result, cfg.model),
                                            tcfg, run_dir / REFIT, progress=progress, label="refit",
                                            features_cfg=cfg.features), result)
    metrics = _final_metrics(g, data, cfg, result, selection, refit, held)
    # (a finished run's resume: its recorded metrics)
    return _publish(g, data, cfg, result, metrics, refit, resume, progress=progress, asked=asked)


def _trained(g: Group, data: Data) -> np.ndarray:
    """Per user: a rating in the final fit's training rows on some rank (train+valid after a refit)."""
    n = np.bincount(data.shard.splits["train"].user, minlength=data.shard.n_users).astype(np.int64)
    return g.sum_(torch.from_numpy(n).to(g.device)).cpu().numpy() > 0


def _final_metrics(g: Group, data: Data, cfg, result, selection: dict, refit: bool, held: dict | None = None) -> dict:
    """The model's and the baselines' metrics on valid and test; ``held``: dist_eval.held_out's, counted before the
    refit took valid into training."""
    from embedrec.evaluate import score_device
    from embedrec.sparse import seen_splits
    from embedrec.training.fit import factors

    f = zero_untrained_users(factors(result.model, result.unrated), _trained(g, data), bool(cfg.features.user))
    explicit, ks, n = cfg.model.objective == "explicit", cfg.train.eval_k, cfg.train.eval_users
    metrics = metrics_head(cfg, result, selection, refit, ranks=g.world)
    if held:
        metrics["held_out"] = held
    dev = score_device(g.device)
    for split in ("valid", "test"):
        part = data.shard.splits.get(split)
        if part is None or g.total(len(part)) == 0:
            continue
        seen = [data.shard.splits[s] for s in seen_splits(split)]
        mine: list = []
        popular: list = []  # each user's values: the paired difference one process records (vs_popular)
        model = Evaluator(g, data.shard, seen, part, ks, n, explicit, True, dev, split=split).metrics(f, mine)
        metrics["splits"][split] = {"model": model, **baselines(g, data.shard, seen, part, ks, n, explicit, dev,
                                                                split=split, per_user=popular)}
        paired = versus_popular(g, mine, popular, ks)
        if paired:
            metrics.setdefault("vs_popular", {})[split] = paired
    return metrics


def _publish(g: Group, data: Data, cfg, result, metrics: dict, refit: bool, resume: bool = False, *,
             progress: bool = False, asked=None) -> dict:
    """Rank 0 publishes the run as one process does (publish.publish_from_ranks), the model being every rank's;
    ``progress``: the publish's bars, on rank 0."""
    from embedrec.publish import publish_from_ranks
    from embedrec.training.fit import factors

    trained = _trained(g, data)  # a collective: every rank, before rank 0 alone goes on
    return publish_from_ranks(g, cfg, data.shard, data.path, result, metrics, refit, resume, lambda ds: zero_untrained_users(
        factors(result.model, result.unrated), trained, bool(cfg.features.user)), state_dict=True,
        progress=progress, asked=asked)
