"""Implicit ALS on several ranks (torchrun), each owning a contiguous shard of the users and of the movies.

Rank r reads every world-th row group of each split and routes each rating to the owner of its user
(``dist_data.read_row_groups``, ``route_to_users``: file order kept), computes its users' confidence weights (a
user's recency needs all of that user's ratings, which it now has), and routes each rating once more, to the
owner of its movie.
An epoch is then the single-process epoch, row for row::

    Q_need = fetch(Q rows my users rated)        G = a0 * sum over ranks of Q_r^T Q_r
    solve my users against Q_need and G           (the same CG steps, C kernel or torch)
    P_need = fetch(P rows who rated my movies)   G = a0 * sum over ranks of P_r^T P_r
    solve my movies against P_need and G

so the factors equal the single-process run's up to float rounding in the Gramian sums (tests check 1e-4).
Initialisation replays the single-process random stream and keeps this rank's rows, so a run on any number of
ranks starts from the same tables. Memory per rank: its rows of P and Q, the rows it fetches (at most one per
rating it holds), its ratings twice (by user and by movie); see docs/scaling.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from embedrec import shard_checkpoint as checkpoints
from embedrec.dist_data import Shard, load_shard
from embedrec.dist_eval import ShardRanking, held_out, versus_popular
from embedrec.distributed import Group, group_for
from embedrec.training.als_ranks import ShardALS, full_movies, gathered_unrated, init_tables
from embedrec.training.fit import (
    fit_callbacks,
    fit_result,
    metrics_head,
    recency_candidates,
    refit_users_at_end,
    refuse_empty_train,
    resolve_dim,
    resolve_loss,
    resolve_metric,
    resolve_patience,
    selection_of,
    trained_users,
    valid_with_vectors,
    validation_ks,
    zero_untrained_users,
)

log = logging.getLogger("embedrec")


# ------------------------------------------------------------------------------------------------ the fit
def _threads(n_ratings: int, dim: int, requested: int) -> int:
    """train.threads, else choose_threads over this host's CPUs shared by the ranks on it."""
    import os

    from embedrec.threads import available_cpus, choose_threads

    local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return choose_threads(n_ratings, dim, requested, cpus=max(1, available_cpus() // local_world))


def start_fit(g: Group, n_train: int, model_cfg, train_cfg, n_movies: int) -> tuple[int, int, str]:
    """What a fit on ranks settles first (fit_shard, replica.fit_replica): refuse an empty training split on
    every rank, then the dimension, this rank's threads (set for torch) and the validation metric."""
    refuse_empty_train(g.total(n_train))
    dim = resolve_dim(model_cfg, n_movies)
    threads = _threads(n_train, dim, train_cfg.threads)
    torch.set_num_threads(threads)
    return dim, threads, resolve_metric(model_cfg, train_cfg)


def fit_shard(g: Group, shard: Shard, train, valid, model_cfg, train_cfg, folder, *, resume: bool = False,
              progress: bool = False, label: str = "train", features_cfg=None, init_state: dict | None = None,
              floor: float | None = None):
    """training.fit for one rank's shard: the same loop (validation, early stopping, best epoch, checkpoints,
    resume), with ShardALS as the runner. Returns a train.FitResult whose model is this rank's ShardTables.
    ``init_state``: this rank's rows to start from (a warm start, as training.fit's)."""
    import time
    from types import SimpleNamespace

    from embedrec.errors import ArtifactError
    from embedrec.training import loop
    from embedrec.training.checkpoints import CHECKPOINT, fingerprint, fp_config, resumable

    t0 = time.perf_counter()
    dim, threads, metric = start_fit(g, len(train), model_cfg, train_cfg, shard.n_movies)
    tables = init_tables(shard, g.rank, dim, model_cfg.init_std, train_cfg.seed)
    if init_state is not None:
        tables.load_state_dict({k: torch.as_tensor(v) for k, v in init_state.items() if k in ("user.weight",
                                                                                             "movie.weight")})
    runner = ShardALS(g, tables, shard, train, train_cfg, threads)
    unrated = gathered_unrated(g, runner)
    state = loop.LoopState(tables, runner, train_cfg.epochs, t0)
    score = None
    has_valid = valid is not None and g.total(len(valid)) > 0
    if has_valid:
        from embedrec.evaluate import score_device

        ev = ShardRanking(g, shard, [train], valid, validation_ks(train_cfg, metric), train_cfg.eval_users,
                          score_device(g.device), split="valid")

        def score():  # a collective: every rank scores its users
            return ev.metrics(tables.user.weight.detach().cpu().numpy(), *full_movies(g, tables, unrated))

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # the one-process fingerprint (features included), so either kind of checkpoint resumes the other
    fp_cfg = fp_config(model_cfg, train_cfg, features_cfg)
    fp = fingerprint(SimpleNamespace(manifest=shard.manifest), model_cfg, train_cfg, features_cfg)
    if resume:
        ck = checkpoints.load_checkpoint(g, folder, shard)
        if ck is None:
            raise ArtifactError(f"nothing to resume: no checkpoint in '{folder}'; run train without «--resume|resume=True»")
        if not resumable(ck.get("fingerprint"), SimpleNamespace(manifest=shard.manifest), model_cfg, train_cfg,
                         features_cfg):
            from embedrec.training.checkpoints import difference, other_config

            # the key that differs, as one process names it; said once a node (each rank finds it: a review saw
            # it twice, naming no key)
            error = other_config(folder, difference(ck.get("config"), fp_cfg), ck)
            error.every_rank = True
            raise error
        state.resume_from(ck, folder)
        log.log(logging.DEBUG if state.epoch >= state.epochs else logging.INFO,  # a finished fit: read back
                "resuming after epoch %d on %d rank(s)", ck["epoch"] + 1, g.world)
    elif g.leader:
        (folder / CHECKPOINT).unlink(missing_ok=True)  # a stale one-process checkpoint must not win a resume
    callbacks = fit_callbacks(score, metric, resolve_patience("als", train_cfg), has_valid, floor,
                              logs=folder if g.leader else None, resume=resume,
                              checkpoint=checkpoints.ShardCheckpoint(g, folder, shard, fp, fp_cfg), label=label,
                              progress=progress and g.leader, lines=g.leader)
    loop.run(state, train_cfg.seed, train_cfg.learning_rate("adam", "als"), callbacks)  # read by no als step
    unsolved = refit_users_at_end(state, "als", train_cfg, has_valid, score, metric)  # as training.fit ends
    result = fit_result(state, "als", metric, unrated)
    result.floor_value = unsolved
    return result


def _with_vectors(g: Group, shard: Shard) -> Shard:
    """``shard``, or a view of it whose valid split holds this rank's valid rows of users with a training row
    (users are whole per rank): what every choice on valid is scored on, as training.fit.with_vectors in one
    process."""
    import copy

    lo, hi = shard.u_range(g.rank)
    kept = valid_with_vectors(shard.splits["train"], shard.splits["valid"], hi - lo, lo)
    if kept is shard.splits["valid"]:
        return shard
    view = copy.copy(shard)
    view.splits = {**shard.splits, "valid": kept}
    return view


def fit_selecting_shard(g: Group, shard: Shard, cfg, run_dir, *, resume: bool = False, progress: bool = False,
                        refit: bool = False, say: bool = True, before_clearing=None):
    """training.select.fit_selecting on shards: with train.als_reg or train.als_recency auto, one fit per candidate (each
    in its own folder, each resumable), the better on valid kept; then train.als_user_unobserved auto, applied
    unless a ``refit`` follows. Returns (FitResult, cfg with the chosen values). ``say``, ``before_clearing`` (rank 0
    runs it): as in fit_selecting."""
    import dataclasses

    from embedrec.training.select import Selection, floor_of

    tr, va = shard.splits["train"], shard.splits["valid"]
    recs = recency_candidates(shard, cfg.train, g.total, level=logging.INFO if say else logging.DEBUG)
    sel = Selection.of(cfg.train, recs, g.total(len(va)) > 0, int(g.total(len(tr))), shard.n_users, shard.n_movies,
                       shard.manifest)

    def fit_one(tcfg, folder, again, best):
        return fit_shard(g, shard, tr, va, cfg.model, tcfg, folder, resume=again, progress=progress,
                         features_cfg=cfg.features, init_state=None if best is None else best.model.state_dict(),
                         floor=None if best is None else floor_of(best))

    from embedrec.training.folders import check_folders

    check_folders(sel.folders(run_dir) if sel.many else [], resume)  # every rank, before any fit (as fit_selecting)
    if g.leader and before_clearing is not None:
        before_clearing()
    if not resume and sel.many and g.leader:  # as fit_selecting: an earlier run's files in the candidates' folders
        from embedrec.training.folders import clear_folders

        clear_folders(sel.folders(run_dir))
    g.barrier()
    # no first_lost here: the ranks check no checkpoint's config before the fits (a review: a resume with another
    # train.seed refitted the first candidate and cleared the later ones); a lost first one is refused
    if resume and sel.many and sel.first_lost(run_dir, checkpoints.in_folder):
        from embedrec.errors import ArtifactError

        how = "under torchrun" if g.world > 1 else \
            "in a run torchrun's ranks trained (resumed as they trained it, here in one process)"  # (a review)
        raise ArtifactError(f"the first candidate's checkpoint is missing from '{sel.folder(run_dir, sel.first)}' "
                            f"while later candidates' remain; {how} it is not fitted again in place: "
                            "train again without «--resume|resume=True»")
    best, tcfg = sel.run(run_dir, fit_one, resume=resume, sync=g.barrier, writer=g.leader, clear=checkpoints.clear,
                         has_checkpoint=checkpoints.in_folder)
    if tcfg.als_user_unobserved == "auto":  # as training.select.fit_selecting: chosen behind an exact index only
        from embedrec.training.select import choose_user_unobserved_on, exact_index

        scale = choose_user_unobserved_on(OnRanks(g, shard, cfg, tcfg), best, not refit,
                                          None if exact_index(cfg.index, shard.n_movies) else (1.0,))
        tcfg = dataclasses.replace(tcfg, als_user_unobserved=scale)
    return best, dataclasses.replace(cfg, train=tcfg)


def choose_dim_shard(g: Group, shard: Shard, cfg, selected, chosen, run_dir, *, resume: bool = False,
                     progress: bool = False, refit: bool = False):
    """training.dims.choose_dim on shards: train.als_dims' other dimensions, a fit_selecting_shard each; the ranks
    hold the chosen dimension's tables while the later ones fit (not parked on disk: a side folder's sweep by pid
    cannot tell another node's live rank from a killed one)."""
    from embedrec.training.als import auto_unobserved
    from embedrec.training.dims import choose_dim, dim_candidates

    tr, va = shard.splits["train"], shard.splits["valid"]
    dims = dim_candidates(cfg, int(g.total(len(tr))), g.total(len(va)) > 0, shard.n_users, shard.n_movies,
                          say=g.leader)
    return choose_dim(cfg, selected, chosen, run_dir, dims, lambda c, folder, again: fit_selecting_shard(
        g, shard, c, folder, resume=again, progress=progress, refit=refit, say=False), resume=resume,
        has_checkpoint=checkpoints.in_folder,
        auto_a0=auto_unobserved(int(g.total(len(tr))), shard.n_users, shard.n_movies), park=False)


class OnRanks:
    """training.select.OneProcess on torchrun's ranks, for select.choose_user_unobserved_on and choose_trend_on
    (collectives: every rank makes the same calls): the valid and train rows counted over every rank, a copy of
    this rank's tables re-solved by ShardALS, the same validation users scored by ShardRanking against every
    movie, the windows' z (:func:`window_z_shard`) and the paired test's sums added over the ranks. At
    ``train_cfg`` (the selection's candidate, or cfg.train); ``shard``: its valid rows those of users with a
    training row (:func:`_with_vectors`)."""

    def __init__(self, g: Group, shard: Shard, cfg, train_cfg):
        self.g, self.data, self.model_cfg, self.train_cfg = g, shard, cfg.model, train_cfg
        self.where = cfg.data.prepared
        self.train, self.valid = shard.splits["train"], shard.splits["valid"]
        self.has_valid = g.total(len(self.valid)) > 0
        self.n_train = int(g.total(len(self.train)))
        self.dim = resolve_dim(cfg.model, shard.n_movies)
        self.part = lowpass_part(g, shard, self.reduce)

    def reduce(self, sums: np.ndarray) -> np.ndarray:
        return summed(self.g, sums)

    def threads(self, dim: int) -> int:
        return _threads(len(self.train), dim, self.train_cfg.threads)

    def lowpass_of(self, train_cfg, threads: int, k: int | None = None):
        """training.lowpass.of_rows over every rank's train rows, this rank's users' x (a collective)."""
        from embedrec.training import lowpass

        return lowpass.of_rows(self.train, self.data.n_users, self.data.n_movies, train_cfg, threads, k=k,
                               part=self.part)

    def settled(self) -> dict | None:
        from embedrec.training import trend

        return trend.settled(self.train_cfg, self.has_valid, self.train.timestamp is not None, self.where,
                             say=self.g.leader)

    def copy(self, model):
        tables = init_tables(self.data, self.g.rank, self.dim, self.model_cfg.init_std, self.train_cfg.seed)
        tables.load_state_dict(model.state_dict())
        return tables

    def runner(self, tables):
        return ShardALS(self.g, tables, self.data, self.train, self.train_cfg,
                        _threads(len(self.train), self.dim, self.train_cfg.threads))

    def scorer(self, metric: str, dim: int):
        from embedrec.evaluate import score_device
        from embedrec.metrics import parse_metric

        k = parse_metric(metric)[1]
        ev = ShardRanking(self.g, self.data, [self.train], self.valid,
                          sorted(set(self.train_cfg.eval_k) | ({k} if k else set())), self.train_cfg.eval_users,
                          score_device(self.g.device), split="valid")
        return lambda f, per_user=None: ev.metrics(f["user_factors"], f["movie_factors"], f["movie_bias"],
                                                   per_user=per_user)

    def blas(self, dim: int):
        import contextlib

        return contextlib.nullcontext()  # (start_fit set torch's threads)

    def factors(self, tables, unrated) -> dict:
        P = tables.user.weight.detach().cpu().numpy()
        Q, b = full_movies(self.g, tables, unrated)
        return {"user_factors": P, "movie_factors": Q, "movie_bias": b}

    def trend_counts(self, f: dict) -> dict:
        from embedrec.training import trend

        lo = int(self.data.u_cuts[self.g.rank])
        return {"window_zs": lambda w: window_z_shard(self.g, self.train, self.data.n_movies, w),
                "counts": np.bincount(self.train.user - lo, minlength=f["user_factors"].shape[0]),
                "n0": trend.typical_count(int(self.g.total(len(self.train))), self.data.n_users)}


def summed(g: Group, a: np.ndarray) -> np.ndarray:
    """The numpy array ``a`` summed over every rank (a collective)."""
    return g.sum_(torch.from_numpy(np.ascontiguousarray(a)).to(g.device)).cpu().numpy()


def lowpass_part(g: Group, shard: Shard, reduce=None):
    """training.lowpass.Part of this rank: its users' rows of the shard, sums over every rank (:func:`summed`)."""
    from functools import partial

    from embedrec.training.lowpass import Part

    lo, hi = shard.u_range(g.rank)
    return Part(int(lo), int(hi - lo), int(shard.n_users), reduce or partial(summed, g), int(g.rank), int(g.world))


def served_lowpass(g: Group, shard: Shard, cfg, result, basis):
    """The served low-pass block as one process serves it (training.lowpass.served: over the final fit's rows,
    on the selection's ``basis`` W where it has one, its spread measured on the final fit ``result``'s users, those
    it did not train zeroed, and its movies): (block, c, s) with this rank's users' x, or None where
    train.als_lowpass is 0. A collective."""
    from embedrec.training import lowpass

    c = lowpass.weight_of(cfg.train)
    tr = shard.splits["train"]
    if c <= 0 or not g.total(len(tr)):
        return None
    P = result.model.user.weight.detach().cpu().numpy()
    P = zero_untrained_users({"user_factors": P}, trained_users(tr.user - int(shard.u_cuts[g.rank]), P.shape[0]),
                             False)["user_factors"]
    Q = full_movies(g, result.model, result.unrated)[0]
    part = lowpass_part(g, shard)
    lp = lowpass.of_rows(tr, shard.n_users, shard.n_movies, cfg.train, _threads(len(tr), Q.shape[1],
                                                                                 cfg.train.threads), part=part) \
        if basis is None else lowpass.from_basis(basis, tr.user, tr.movie, shard.n_users, shard.n_movies, part)
    return lp, c, lowpass.spread({"user_factors": P, "movie_factors": Q}, lp, int(cfg.train.seed), part)


# ------------------------------------------------------------------------------------------------ the command
def train_distributed(cfg, *, resume: bool = False, progress: bool = False) -> dict:
    """``embedrec train`` on this process's ranks: select (train.als_reg / als_recency auto), refit on
    train+valid, evaluate valid/test beside most-popular, and publish the run from rank 0. Returns the metrics (on
    every rank).
    Other losses (minibatch, hogwild) train replicated tables (``replica.train_replicated``; api.train_run
    chooses)."""
    from embedrec.training.refit import keep_selection, refit_als

    loss = resolve_loss(cfg.model, cfg.features.active)
    if loss != "als":
        from embedrec.errors import ConfigError

        raise ConfigError(f"train_distributed fits model.loss als, not {loss}; train with «embedrec train|"
                          "embedrec.api.train_run», which trains the other losses on ranks as replicas")
    g = group_for(cfg)
    user_scale_auto = cfg.train.als_user_unobserved == "auto"
    shard = load_shard(g, cfg.data.prepared)
    idle = int(g.total(0 if len(shard.splits["train"]) else 1))
    if idle:  # a review: such a rank hung the others' first fit until an outside timeout (a global cut's late users)
        from embedrec.errors import ArtifactError

        e = ArtifactError(f"{idle} of the {g.world} ranks hold no training rating (the users given to them rated "
                          "only in the valid and test splits, as a global time cut leaves the users first seen after "
                          "its training window), which the ranks' fit cannot take; train in one process, or with fewer ranks")
        e.every_rank = True  # every rank finds it: said once per node
        raise e
    log.info("rank 0 of %d: users %d-%d, movies %d-%d of %s x %s; %s train ratings here", g.world,
             *shard.u_range(0), *shard.m_range(0), f"{shard.n_users:,}", f"{shard.n_movies:,}",
             f"{len(shard.splits['train']):,}")
    run_dir = Path(cfg.run.dir)
    refit = cfg.train.refit and g.total(len(shard.splits["valid"])) > 0
    held = held_out(g, shard)  # metrics.json's, before the refit takes valid into training (as train_workflow)
    from embedrec.training.dims import dim_candidates, warn_above_rank, within_rank
    from embedrec.training.folders import REFIT, check_dim_folders, check_folders, clear_training

    given, cfg = cfg, within_rank(cfg, shard.n_users, shard.n_movies)  # as one process (select.fit_and_refit)

    # every rank, before any fit and any clearing: a file (on a resume, a link) where a dimension's folder or the
    # refit's goes (as select.fit_and_refit)
    check_dim_folders(run_dir, dim_candidates(cfg, int(g.total(len(shard.splits["train"]))),
                                              g.total(len(shard.splits["valid"])) > 0, shard.n_users, shard.n_movies,
                                              say=False), resume)
    check_folders([run_dir / REFIT] if refit else [], resume)

    def clear():  # rank 0, once the selection has checked its candidates' folders too
        if not resume:
            clear_training(run_dir)

    chosen_on = _with_vectors(g, shard)  # every choice on the valid rows of users with a training rating
    from embedrec.training.select import say_left_out_on_ranks

    say_left_out_on_ranks(g, shard.splits["valid"], chosen_on.splits["valid"])
    result, chosen = fit_selecting_shard(g, chosen_on, cfg, run_dir, resume=resume, progress=progress, refit=refit,
                                         before_clearing=clear)
    if g.leader:
        warn_above_rank(cfg, shard.n_users, shard.n_movies, given)
    result, cfg = choose_dim_shard(g, chosen_on, cfg, result, chosen, run_dir, resume=resume, progress=progress,
                                   refit=refit)
    cfg = choose_trend_shard(g, chosen_on, cfg, result, resolved=not refit or not user_scale_auto)
    if cfg.train.als_newuser_prior == "auto":
        cfg = choose_newuser_prior_shard(g, chosen_on, cfg, result)
    elif g.leader:  # a table given by hand: said as one process says it
        from embedrec.training.select import warn_growing_prior

        warn_growing_prior(cfg.train.als_newuser_prior)
    selection = selection_of(result, cfg.train)
    # the selection's low-pass basis W (the same on every rank), which the served block is made over; its x let go
    basis, result.lowpass_block = (None if result.lowpass_block is None else result.lowpass_block.w), None
    tr, va = shard.splits["train"], shard.splits["valid"]
    if refit:
        from embedrec.data.dataset import Interactions

        both = Interactions.concat([tr, va])  # the refit's valid split: none of valid's rows, its columns' types
        shard.splits = {"train": both, "valid": Interactions(va.user[:0], va.movie[:0], va.rating[:0]),
                        "test": shard.splits["test"]}
        selected = result
        result = refit_als(selected, cfg.train, run_dir, int(g.total(len(both))), lambda t, folder, init: fit_shard(
            g, shard, both, None, cfg.model, t, folder, progress=progress, label="refit", features_cfg=cfg.features,
            init_state=init), leader=g.leader)
        result = keep_selection(result, selected)
    got = _trend_z(g, shard.splits["train"], shard.n_movies, cfg.train)  # the final fit's rows' (a collective)
    z, window = (None, None) if got is None else got
    block = served_lowpass(g, shard, cfg, result, basis)  # (a collective)
    metrics = _final_metrics(g, shard, cfg, result, selection, refit, z, block, held)
    return _publish(g, shard, cfg, result, metrics, refit, resume, z, progress=progress, block=block,  # a finished
                    asked=given, window=window)
    # run's resume: its recorded metrics


def _trend_z(g: Group, train, n_movies: int, tcfg):
    """(The served recent popularity's z (training.trend.window_z over every rank's ``train`` rows, at the chosen
    window), its window's record), or None where train.als_trend is 0. A collective."""
    beta = 0.0 if tcfg.als_trend == "auto" else float(tcfg.als_trend)
    if beta <= 0:
        return None
    from embedrec.training.trend import served_window

    return window_stats_shard(g, train, n_movies, served_window(tcfg, train.timestamp is not None))


def _trend_activity(g: Group, shard: Shard, n_rows: int, tcfg):
    """Each of this rank's users' multiplier of the served term (training.trend.activity: its final fit's rows
    over n0 of every rank's), or None at activity 0. A collective where the term is on."""
    from embedrec.training.trend import activity, typical_count

    gamma = 0.0 if tcfg.als_trend_activity == "auto" or tcfg.als_trend in ("auto", 0) else \
        float(tcfg.als_trend_activity)
    if gamma == 0:
        return None
    tr = shard.splits["train"]
    lo = int(shard.u_cuts[g.rank])
    return activity(np.bincount(tr.user - lo, minlength=n_rows), gamma,
                    typical_count(int(g.total(len(tr))), shard.n_users))


def window_z_shard(g: Group, train, n_movies: int, share: float) -> np.ndarray:
    """training.trend.window_z over the rows of every rank: the cut, the 'higher' quantile at 1 - ``share`` of
    all their times, found by a bisection of counts summed over the ranks (no rank holds every time); the movies'
    counts after it summed likewise. The same z on every rank, equal to one process's."""
    return window_stats_shard(g, train, n_movies, share)[0]


def window_stats_shard(g: Group, train, n_movies: int, share: float) -> tuple[np.ndarray, dict]:
    """:func:`window_z_shard` and its record, as training.trend.window_stats gives one process's (a movie
    update-users adds gets its z by it). A collective."""
    from embedrec.training.trend import z_of_counts

    movies = np.asarray(train.movie, dtype=np.int64)
    ts = np.asarray(train.timestamp if train.timestamp is not None else movies[:0], dtype=np.int64)
    n = int(g.total(ts.size))  # (no timestamps: every row counts, as window_z)
    if share < 1.0 and n:
        k = int(np.ceil((1.0 - share) * (n - 1)))  # the cut is the (k+1)-th smallest time
        big = np.iinfo(np.int64).max
        lo = -int(g.max_(torch.tensor([-(int(ts.min()) if ts.size else big)], dtype=torch.int64,
                                      device=g.device)).item())
        hi = int(g.max_(torch.tensor([int(ts.max()) if ts.size else -big], dtype=torch.int64, device=g.device)).item())
        while lo < hi:
            mid = lo + (hi - lo) // 2
            if g.total(np.count_nonzero(ts <= mid)) >= k + 1:
                hi = mid
            else:
                lo = mid + 1
        movies = movies[ts >= lo]
    counts = torch.from_numpy(np.bincount(movies, minlength=n_movies).astype(np.float64)).to(g.device)
    total = g.sum_(counts).cpu().numpy()
    c = np.log1p(total)
    cut = int(lo) if share < 1.0 and n else None
    return z_of_counts(total), {"cut": cut, "mean": float(c.mean()) if c.size else 0.0,
                                "sd": float(c.std()) if c.size else 0.0}


def choose_trend_shard(g: Group, shard: Shard, cfg, result, resolved: bool):
    """training.select.choose_trend on ranks (select.choose_trend_on with :class:`OnRanks`): the same windows' z
    (:func:`window_z_shard`), the selected model's users (re-solved on a copy at the chosen als_user_unobserved
    where a refit follows it) scored on the same validation users by ShardRanking, those without a training row
    left out; the same choice. A collective."""
    from embedrec.training.select import choose_trend_on

    return choose_trend_on(OnRanks(g, shard, cfg, cfg.train), cfg, result, resolved)


def choose_newuser_prior_shard(g: Group, shard: Shard, cfg, result):
    """training.select.choose_newuser_prior on ranks: rank 0 chooses the table (training.newuser_prior.choose) on
    its own validation users (up to newuser_prior.USERS of them, as one process draws from all) against every
    movie's factors, the recent popularity chosen and the movies' training counts over every rank, says it and
    records it; every rank takes it (a sum of rank 0's numbers). A collective."""
    from embedrec.threads import blas_threads, choose_threads
    from embedrec.training import newuser_prior, trend
    from embedrec.training.als import user_solve
    from embedrec.training.select import liked_weight, newuser_prior_chosen

    tr = shard.splits["train"]
    Q, b = full_movies(g, result.model, result.unrated)
    f = {"movie_factors": Q, "movie_bias": b}
    from embedrec.training.select import lowpass_added

    block = lowpass_added({**f, "user_factors": result.model.user.weight.detach().cpu().numpy()},
                          OnRanks(g, shard, cfg, cfg.train), cfg.train, result)  # (a collective where it is on)
    if "lowpass" in block:  # the movies' side of the block, as one process chooses on it
        f = {k: block[k] for k in ("movie_factors", "movie_bias", "lowpass_a", "lowpass")}
    got = _trend_z(g, tr, shard.n_movies, cfg.train)
    window = None
    if got is not None:  # as the served model adds it (trend.served: the movies' bias beta z)
        z, window = got
        f = trend.with_bias(f, f, z, float(cfg.train.als_trend))
    counts = g.sum_(torch.from_numpy(np.bincount(tr.movie, minlength=shard.n_movies).astype(np.int64))
                    .to(g.device)).cpu().numpy()
    n_train = int(g.total(len(tr)))
    timed = bool(g.total(float(tr.timestamp is not None and len(tr) > 0)))  # (a rank without rows has no say)
    solve = user_solve(cfg.train, n_train, shard.n_users, shard.n_movies, timed)
    if f.get("lowpass"):  # a new user's block too (serve.foldin.als_vector)
        solve["lowpass"] = f["lowpass"]
    if window is not None:  # (a movie update-users adds: its z, as one process records it)
        solve["trend_window"] = window
    table = torch.zeros(1 + len(newuser_prior.TOLD), dtype=torch.float64, device=g.device)
    failed = None
    if g.leader:
        try:
            with blas_threads(choose_threads(len(tr), Q.shape[1], cfg.train.threads)):
                got = newuser_prior.choose(shard, f, solve, liked_weight(shard.manifest, cfg.train, solve),
                                           cfg.train.seed, counts=counts)
            value = newuser_prior_chosen(cfg, result, got).train.als_newuser_prior
            table[0] = float(isinstance(value, list))
            table[1:] = torch.tensor(value if isinstance(value, list) else [float(value)] * len(newuser_prior.TOLD),
                                     dtype=torch.float64)
        except Exception as e:  # (every rank raises below: none waits in a collective for rank 0; a review)
            failed = e
    g.agree(failed)  # (rank 0's error on rank 0, relayed as "rank 0 failed: ..." on the others)
    table = g.sum_(table).cpu().numpy()
    value = [float(w) for w in table[1:]] if table[0] else float(table[1])
    return cfg.updated({"train.als_newuser_prior": value})


def _final_metrics(g: Group, shard: Shard, cfg, result, selection: dict, refit: bool, z=None, block=None,
                   held: dict | None = None) -> dict:
    """What train_model reports: the model and most-popular on valid and test (seen: the splits before each),
    ``held``: dist_eval.held_out's, counted before the refit took valid into training;
    the low-pass ``block`` (:func:`served_lowpass`'s) and ``z``, the served recent popularity's (training.trend),
    added as the one process's served model has them."""
    from embedrec.evaluate import score_device
    from embedrec.sparse import PopularLists, seen_splits

    tables, ks, n = result.model, cfg.train.eval_k, cfg.train.eval_users
    metrics = metrics_head(cfg, result, selection, refit, ranks=g.world)
    if held:
        metrics["held_out"] = held
    P = tables.user.weight.detach().cpu().numpy()
    lo = int(shard.u_cuts[g.rank])  # this rank's users without a rating in the final fit: zero, as published
    P = zero_untrained_users({"user_factors": P}, trained_users(shard.splits["train"].user - lo, P.shape[0]),
                             False)["user_factors"]
    Q, b = full_movies(g, tables, result.unrated)
    if block is not None:
        from embedrec.training.lowpass import with_block

        served = with_block({"user_factors": P, "movie_factors": Q, "movie_bias": b}, *block)
        P, Q = served["user_factors"], served["movie_factors"]
    if z is not None:
        from embedrec.training.trend import apply

        served = apply({"user_factors": P, "movie_factors": Q, "movie_bias": b}, z, float(cfg.train.als_trend),
                       _trend_activity(g, shard, P.shape[0], cfg.train))
        P, b = served["user_factors"], served["movie_bias"]
    pop = np.bincount(shard.splits["train"].movie, minlength=shard.n_movies).astype(np.int64)
    pop = g.sum_(torch.from_numpy(pop).to(g.device)).cpu().numpy().astype(np.float32)
    dev = score_device(g.device)
    for split in ("valid", "test"):
        part = shard.splits.get(split)
        if part is None or g.total(len(part)) == 0:
            continue
        seen = [shard.splits[s] for s in seen_splits(split)]
        ev = ShardRanking(g, shard, seen, part, ks, n, dev, split=split)
        mine: list = []
        popular: list = []  # each user's values: the paired difference one process records (vs_popular)
        metrics["splits"][split] = {"model": ev.metrics(P, Q, b, per_user=mine),
                                    "most_popular": ev.metrics(None, None, None, ranked=PopularLists(pop).top,
                                                               per_user=popular)}
        paired = versus_popular(g, mine, popular, ks)
        if paired:
            metrics.setdefault("vs_popular", {})[split] = paired
    return metrics


def _publish(g: Group, shard: Shard, cfg, result, metrics: dict, refit: bool, resume: bool = False, z=None, *,
             progress: bool = False, block=None, asked=None, window: dict | None = None) -> dict:
    """Rank 0 assembles the tables and publishes the run as one process would (publish.publish_from_ranks; artifacts.py's
    single-file artifacts: at 100M users that is rank 0's memory, see docs/scaling.md), the users' solve weights
    included (:func:`solve_weights`, each rank's, gathered as the tables are), and the low-pass ``block``
    (:func:`served_lowpass`'s; its users' rows gathered as the tables are), with recent popularity's ``window``
    record in the solve. ``progress``: the publish's bars, on rank 0 (publish.publish_from_ranks)."""
    from embedrec.publish import publish_from_ranks
    from embedrec.run_layout import SOLVE_WEIGHTS
    from embedrec.trained import fold_in_solve
    from embedrec.training.fit import factors

    t = result.model
    tr = shard.splits["train"]  # what the final fit trained on (train+valid after a refit), this rank's users
    solve = fold_in_solve("als", cfg.train, int(g.total(len(tr))), shard.n_users, shard.n_movies,
                          tr.timestamp is not None)
    if window is not None:  # recent popularity's window (training.trend.window_stats): a movie update-users adds
        solve = {**solve, "trend_window": window}
    P = g.gather0(t.user.weight.detach().to(g.device))
    Q = g.gather0(t.movie.weight.detach().to(g.device))
    tu = g.gather0(torch.from_numpy(np.asarray(tr.user, dtype=np.int64)).to(g.device))  # the final fit's users
    W = g.gather0(torch.from_numpy(solve_weights(shard, g.rank, cfg.train, solve)).to(g.device))  # in rank order
    X = None if block is None else g.gather0(torch.from_numpy(block[0].x).to(g.device))  # its users' rows

    def published(ds):  # rank 0: the gathered tables, a zero vector for each user the final fit did not train
        f = factors(SimpleModel(P.cpu(), Q.cpu()), result.unrated)
        f[SOLVE_WEIGHTS] = W.cpu().numpy()  # the ranks' users one after the other: the run's seen CSR's order
        f = zero_untrained_users(f, trained_users(tu.cpu().numpy(), ds.n_users), False)
        if block is not None:  # the low-pass block, as train_workflow.served_factors adds it before the trend
            from embedrec.training.lowpass import with_block

            f = with_block(f, block[0]._replace(x=X.cpu().numpy()), block[1], block[2])
        if z is not None:  # popularity, as train_workflow.train_model serves it (training.trend)
            from embedrec.training.trend import activity, apply, typical_count

            f = apply(f, z, float(cfg.train.als_trend), activity(
                np.bincount(tu.cpu().numpy(), minlength=ds.n_users),
                0.0 if cfg.train.als_trend_activity == "auto" else float(cfg.train.als_trend_activity),
                typical_count(int(tu.numel()), ds.n_users)))
        return f

    # no state_dict.pt, as one process's als: the factor arrays are all of it (`export --to torch` builds the module)
    return publish_from_ranks(g, cfg, shard, Path(cfg.data.prepared), result, metrics, refit, resume, published,
                              asked=asked, solve=solve, progress=progress)


def solve_weights(shard: Shard, rank: int, train_cfg, solve: dict) -> np.ndarray:
    """This rank's part of the run's solve weights (run_layout.SOLVE_WEIGHTS): training.als.seen_weights of its
    users, aligned with their rows of the seen CSR rank 0 writes (artifacts.serving_arrays: their train and
    valid pairs and every pair rated below data.min_rating, the users [lo, hi) contiguous there). Rank 0 holds the
    seen pairs without their ratings or times; the rank that owns a user holds all of that user's training rows in
    file order (dist_data.route_to_users), so its recency positions are the one-process ones and the weights
    equal one process's."""
    from embedrec.data.dataset import Interactions
    from embedrec.sparse import csr
    from embedrec.training.als import rows_seen_weights

    lo, hi = shard.u_range(rank)
    pairs = [(p.user, p.movie) for p in (shard.splits[s] for s in ("train", "valid") if s in shard.splits)]
    if shard.below is not None:
        pairs.append(shard.below)
    seen = csr(np.concatenate([u for u, _ in pairs]).astype(np.int64) - lo,
               np.concatenate([m for _, m in pairs]), hi - lo)
    tr = shard.splits["train"]  # the final fit's rows (train+valid after a refit)
    mine = Interactions(tr.user.astype(np.int64) - lo, tr.movie, tr.rating, tr.timestamp)
    return rows_seen_weights(mine, shard.manifest, shard.n_movies, train_cfg, solve, seen)


class SimpleModel:
    """The attributes train.factors reads from a plain MatrixFactorization, over gathered tables."""

    def __init__(self, P: torch.Tensor, Q: torch.Tensor):
        self.user = torch.nn.Embedding(P.shape[0], P.shape[1], _weight=P)
        self.movie = torch.nn.Embedding(Q.shape[0], Q.shape[1], _weight=Q)
        self.user_bias = self.movie_bias = None
        self.global_mean = torch.tensor(0.0)

