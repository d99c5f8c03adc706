"""The ``embedrec train`` workflow below ``api.train`` and ``api.train_run``: what train says of its config before
it fits (``_warn_config``: data.* and split.* keys other than the dataset was ingested with, train.* keys the
trainer does not read (``_warn_unused_train_keys``), a count weight on ratings; ``_warn_ingest_settings`` adds the
dataset's own notes), ``train_model`` (the selection and refit, ``training.select.fit_and_refit``, then the final
factors evaluated on valid and test into a ``TrainedModel``: what ``er.train`` returns and ``train_run``
publishes) and ``train_run`` (``embedrec train``: the run folder checked, the run's writer lock held, a resume
checked first (``_check_resumable``) and a finished run's resume stopped before any fit, then one process's
``train_model`` and ``publish.publish_trained``, or under torchrun (or resuming a checkpoint several ranks wrote,
``_sharded_checkpoint``) ``shard_als.train_distributed`` for als and ``replica.train_replicated`` for the other
losses), then the notes on the figures logged (``log_train_notes``: ``figure_notes.train_notes``, as ``er.train``
logs them). ``api.train_run`` is this ``train_run``; torch is imported inside the functions that fit."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from embedrec.argcheck import flag
from embedrec.errors import ArtifactError, Busy, EmbedrecError
from embedrec.sparse import unique
from embedrec.trained import TrainedModel

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config
    from embedrec.data.dataset import Dataset

log = logging.getLogger("embedrec")


# train.* keys each loss does not read: set in a config file or with --set, they would be ignored without a word
_SGD_ONLY = ("batch_size", "optimizer", "lr", "weight_decay_user", "weight_decay_movie", "weight_decay_bias")
_ALS_ONLY = ("als_unobserved", "als_reg", "als_reg_exponent", "als_cg_steps", "als_rating_weight", "als_count_weight",
             "als_recency", "als_user_unobserved", "als_trend", "als_trend_window", "als_trend_activity",
             "als_lowpass", "als_lowpass_k", "als_newuser_prior", "als_dims", "fetch_rows")
_UNUSED = {"als": (*_SGD_ONLY, "negatives", "softmax_full_max", "compile"),
           "mse": (*_ALS_ONLY, "negatives", "softmax_full_max"),
           "bpr": (*_ALS_ONLY, "softmax_full_max", "compile"),
           "softmax": (*_ALS_ONLY, "compile")}


def _warn_unused_train_keys(cfg: Config, loss: str, n_movies: int | None = None) -> None:
    """One warning naming the train.* keys the config sets (in its file or with --set) that
    ``loss`` does not read (a review: `train --set train.optimizer=hogwild --set train.lr=50` trained the default
    als model, and its config.yaml recorded both as if used). Keys set to their default value are not named: a
    full config file (embedrec config's) sets them all. And one per key this configuration leaves unused
    (batch_size under hogwild, weight_decay_bias without biases, negatives under a full softmax, biases in als)."""
    from embedrec.config import Config as Defaults

    given, default = cfg.explicit_keys, Defaults()

    def set_here(key: str) -> bool:
        section, name = key.split(".")
        return key in given and getattr(getattr(cfg, section), name) != getattr(getattr(default, section), name)

    unused = [k for k in (f"train.{k}" for k in _UNUSED.get(loss, ())) if set_here(k)]
    # keys the trainer reads but this configuration does not use (a review: each ignored without a word)
    hogwild = loss in ("mse", "bpr") and set_here("train.batch_size") and _optimizer(cfg, loss) == "hogwild"
    why = {"train.batch_size": hogwild and ("train.optimizer=hogwild updates one rating at a time"
                                            if cfg.train.optimizer == "hogwild" else "train.optimizer auto trains "
                                            f"{loss} with hogwild, one rating at a time (set train.optimizer=adam "
                                            "to train in batches)"),
           "train.weight_decay_bias": not cfg.model.biases and "model.biases is false",
           "train.negatives": loss == "softmax" and n_movies is not None and n_movies <= cfg.train.softmax_full_max
           and f"the softmax is full here ({n_movies:,} movies <= train.softmax_full_max), no negatives are drawn",
           "model.biases": loss == "als" and "an als model has no biases",
           "train.compile": cfg.train.optimizer == "hogwild" and "train.optimizer=hogwild runs its own compiled C "
           "kernel"}
    for key, reason in why.items():
        if reason and key not in unused and set_here(key):
            log.warning("%s has no effect: %s; leave it out", key, reason)
    if unused:
        log.warning("%s %s not used by the %s trainer (model.loss=%s%s), so %s no effect; leave %s out, or set "
                    "model.loss to a trainer that reads %s", ", ".join(unused), "is" if len(unused) == 1 else "are",
                    loss, loss, ", the implicit default" if loss == "als" and cfg.model.loss == "auto" else "",
                    "it has" if len(unused) == 1 else "they have", "it" if len(unused) == 1 else "them",
                    "it" if len(unused) == 1 else "them")


def _optimizer(cfg: Config, loss: str) -> str:
    from embedrec.training.fit import resolve_optimizer

    return resolve_optimizer(loss, cfg.model, cfg.train, cfg.features.active, say=False).optimizer


def _warn_config(cfg: Config, manifest: dict, path, n_movies: int | None) -> None:
    """What train says of its config before it fits, in one process and (rank 0) under torchrun alike (a review:
    the ranks said none of it): data.* or split.* keys other than the dataset was ingested with
    (config_ingest.ingest_settings_warning), train.* keys the trainer does not read, a count weight on a dataset of
    ratings."""
    from embedrec.config_ingest import dislikes_warning, ingest_settings_warning
    from embedrec.training.fit import resolve_loss

    said = ingest_settings_warning(cfg, manifest.get("config") or {}, path, "train", manifest.get("columns_read"),
                                   manifest)
    if said:
        log.warning(said)  # its «CLI|library» marks are resolved as the format
    loss = resolve_loss(cfg.model, cfg.features.active)
    _warn_unused_train_keys(cfg, loss, n_movies)
    if cfg.model.objective == "implicit":
        from embedrec.config_ingest import two_values_train_warning

        for said in (dislikes_warning(manifest, path), two_values_train_warning(manifest, path)):
            if said:
                log.warning(said)  # its «CLI|library» marks are resolved as the format
    if cfg.train.als_count_weight not in ("auto", 0) and manifest.get("repeats") != "sum" and loss == "als":
        log.warning("train.als_count_weight has no effect: dataset '%s' was ingested with data.repeats=latest, so "
                    "its ratings are not counts; ingest it again with «--set data.repeats=sum --overwrite|"
                    "data.repeats='sum' and overwrite=True», or leave train.als_count_weight out", path)


def _warn_ingest_settings(ds: Dataset, cfg: Config) -> None:
    """:func:`_warn_config`, and one warning where the dataset dropped low ratings it now keeps apart (a note where
    it keeps them without their parts)."""
    from embedrec.data.layout import table_file

    _warn_config(cfg, ds.manifest, ds.path, ds.n_movies)
    cleaning = ds.manifest.get("cleaning") or {}
    dropped = cleaning.get("below_min_rating_dropped") or 0
    if dropped and table_file("rated_below") not in (ds.manifest.get("files") or {}) and ds.rated_below is None:
        log.warning("dataset '%s' dropped %s ratings below data.min_rating before embedrec kept them apart, so its "
                    "lists may offer users movies they rated low; ingest it again (embedrec ingest --overwrite) to "
                    "exclude them", ds.path, f"{dropped:,}")
    elif (dropped or cleaning.get("k_core_dropped")) and "users_left_out" not in cleaning:
        log.warning("dataset '%s' was prepared before embedrec kept what the users its cleaning leaves out "
                    "(data.min_rating, the k-core filter) rated, so --fallback popular may offer them those movies; "
                    "ingest it again (embedrec ingest --overwrite) to exclude them", ds.path)
    elif ds.rated_below is not None and ds.rated_below[0].size and ds.rated_below_split is None:
        log.info("note: dataset '%s' was ingested before embedrec split the %s pairs it keeps apart as rated (below "
                 "data.min_rating) as it splits the ratings, so validation and evaluate leave every one out of the "
                 "candidates, those rated in the held-out period too (which flatters the figures a little); ingest "
                 "it again (embedrec ingest --overwrite) to leave out only those rated before", ds.path,
                 f"{ds.rated_below[0].size:,}")


def held_out(ds: Dataset) -> dict:
    """metrics.json's ``held_out``: for valid and test where they hold rows, their ratings and the users they are
    of ({"valid": {"ratings": 10000, "users": 943}, ...}). A ranking metric at k grows with the movies held out per
    user, so train says it beside valid's and test's figures, which differ by it (a first-hour review read valid
    ndcg@10 0.2180 and test 0.4510 as a contradiction: about 11 held out a user against 21)."""
    out = {}
    for split in ("valid", "test"):
        part = ds.splits.get(split)
        if part is not None and len(part):
            out[split] = {"ratings": int(len(part)), "users": int(unique(part.user).size)}
    return out


def served_factors(f: dict, ds: Dataset, cfg: Config, loss: str, basis=None) -> dict:
    """The factors every path serves from the final fit's ``f`` (fit on ``ds``'s train rows): an als model's
    low-pass block (training.lowpass; over ``basis``, the selection's W, where given: FitResult.lowpass_basis),
    then its recent popularity (training.trend), each where valid chose it (or the config sets it); ``f`` itself
    for the other losses. ``benchmarks/ranking.py`` serves what train serves through it."""
    if loss != "als":
        return f
    from embedrec.training import lowpass, trend

    return trend.served(lowpass.served(f, ds, cfg.train, basis=basis), ds, cfg.train)


def train_model(ds: Dataset, cfg: Config, work_dir: Path, *, resume: bool = False, progress: bool = False) -> TrainedModel:
    """train() with its working folder (checkpoint.pt, metrics.jsonl) given: what ``train_run`` does before it
    publishes."""
    from embedrec.evaluate import baselines, evaluate_model
    from embedrec.evaluate_paired import versus_popular
    from embedrec.training.fit import (
        factors,
        metrics_head,
        model_record,
        selection_of,
        state_bytes,
        trained_users,
        zero_untrained_users,
    )
    from embedrec.training.select import fit_and_refit

    _warn_ingest_settings(ds, cfg)
    held = held_out(ds)  # before the refit takes valid into training
    ds, final, result, cfg = fit_and_refit(ds, cfg, work_dir, resume=resume, progress=progress)
    history = list(result.history)
    selection = selection_of(result, cfg.train)
    selected_basis, result.lowpass_basis = result.lowpass_basis, None  # (the selection's W: the served block's)
    result = final
    f = zero_untrained_users(factors(result.model, result.unrated), trained_users(ds.splits["train"].user, ds.n_users),
                             bool(cfg.features.user))
    f = served_factors(f, ds, cfg, result.loss, selected_basis)
    explicit = cfg.model.objective == "explicit"
    ks = cfg.train.eval_k
    metrics = metrics_head(cfg, result, selection, ds.manifest.get("refit", False))
    if held:
        metrics["held_out"] = held
    for split in ("valid", "test"):
        if len(ds.splits.get(split, ())):
            mine: list = []  # each ranked user's values, the model's and most_popular's: their paired difference
            popular: list = []
            metrics["splits"][split] = {"model": evaluate_model(f, ds, split, explicit, ks,
                                                                max_users=cfg.train.eval_users,
                                                                device=cfg.train.device, progress=progress,
                                                                per_user=mine),
                                        **baselines(ds, split, explicit, ks, max_users=cfg.train.eval_users,
                                                    per_user=popular, progress=progress)}
            paired = versus_popular(mine, popular, ds)
            if paired:
                metrics.setdefault("vs_popular", {})[split] = paired
    extra = model_record(cfg, result, ds.manifest.get("refit", False))
    return TrainedModel(cfg, ds, f, metrics, extra, state_bytes(result.model), history, result)


def train_run(cfg: Config, *, resume: bool = False, progress: bool = False, notes: bool = True) -> dict:
    """``embedrec train``: fit on the prepared dataset, evaluate, publish the artifacts. Returns metrics.

    Under torchrun (WORLD_SIZE > 1), or resuming a run whose checkpoint was written by several ranks, the
    ranks train shards of the tables (als: ``shard_als.train_distributed``) or replicas of them (the other
    losses: ``replica.train_replicated``).

    ``notes``: once a model is published, the notes on its figures are logged (rank 0's), as ``embedrec train``
    says them (:func:`log_train_notes`); False leaves them to the caller (the CLI logs them where its lines go).
    A finished run's resume logs none."""
    from embedrec import device
    from embedrec.fsutil.outputs import through_missing_key
    from embedrec.run_checks import check_run_folder
    from embedrec.run_layout import published_since
    from embedrec.training.folders import check_training_files
    from embedrec.worker_pool import refuse_in_spawned_main

    refuse_in_spawned_main("train_run")
    resume, progress = flag(resume, "resume", "train_run"), flag(progress, "progress", "train_run")
    notes = flag(notes, "notes", "train_run")
    cfg = through_missing_key(cfg, "run.dir")  # run.dir=a/../x with no 'a': x, and no 'a' made (a review)
    # before anything is written there (and before the lock file is made in it; resume: its place only)
    check_run_folder(cfg.run.dir, contents=not resume)
    check_training_files(cfg.run.dir)  # a folder named checkpoint.pt: said, not "nothing to resume"
    if resume:
        _check_resumable(cfg)
    started = time.time()  # a model published from here on is this call's (a finished run's resume: none)
    metrics = _train_and_publish(cfg, resume, progress)
    if notes and not device.secondary() and (not resume or published_since(cfg.run.dir, started)):
        log_train_notes(metrics, cfg, lambda n: f"train_run(cfg.updated({{'train.epochs': {n}}}), resume=True)")
    return metrics


def _train_and_publish(cfg: Config, resume: bool, progress: bool) -> dict:
    """:func:`train_run`'s work once its arguments are checked: under the run's writer lock, a torchrun trainer, or
    a finished run's resume stopped, or ``train_model`` and ``publish.publish_trained``."""
    from embedrec import device
    from embedrec.distributed import lock_run

    # one writer per run dir (checkpoints, metrics.jsonl, the publish), on one process and on ranks alike: under
    # torchrun rank 0 holds it and every rank is refused alike (a review: a Python train_run on ranks wrote into a
    # run another train held); re-entrant within a process
    with lock_run(cfg.run.dir, "embedrec train", cfg.train.device):
        if device.active() or (resume and _sharded_checkpoint(cfg.run.dir)):
            from embedrec.training.fit import resolve_loss

            if not device.secondary():  # rank 0 says what one process says of the config (a review: nothing)
                from embedrec.dist_data import read_manifest

                try:
                    manifest = read_manifest(cfg.data.prepared)
                except ArtifactError:
                    manifest = None  # every rank's own load says it, on every rank alike
                if manifest is not None:
                    _warn_config(cfg, manifest, cfg.data.prepared, (manifest.get("counts") or {}).get("movies"))

            if resume:
                done = _finished_on_ranks(cfg)
                if done is not None:
                    return done
            if resolve_loss(cfg.model, cfg.features.active) == "als":
                from embedrec import shard_als

                return shard_als.train_distributed(cfg, resume=resume, progress=progress)
            from embedrec import replica
            from embedrec.distributed import group_for

            return replica.train_replicated(group_for(cfg), cfg, resume=resume, progress=progress)
        from embedrec.data.dataset import load_dataset
        from embedrec.publish import finished_run, publish_trained

        run_dir = Path(cfg.run.dir)
        done = finished_run(cfg) if resume else None
        if done is not None:  # nothing replayed: the published model is what these checkpoints and config made
            return _said_finished(run_dir, done)
        model = train_model(load_dataset(cfg.data.prepared, split_method=cfg.split.method), cfg, run_dir, resume=resume,
                            progress=progress)
        # (a finished run's resume: the metrics it recorded)
        return publish_trained(model, run_dir, resume, asked=cfg, progress=progress)


def _finished_on_ranks(cfg: Config) -> dict | None:
    """Under torchrun, a finished run's resume stopped before the fits, as one process stops it: rank 0 reads the
    run (:func:`publish.finished_run`) and every rank takes its answer (a review: the ranks loaded the data and
    said every selection line again before 'nothing to resume'). The recorded metrics, or None to train."""
    from embedrec import device
    from embedrec.distributed import group_for
    from embedrec.publish import finished_run

    g = group_for(cfg)
    done, error = None, None
    if g.leader:
        try:
            done = finished_run(cfg)
        except EmbedrecError as e:  # (a damaged index: said on every rank, none left waiting)
            error = e
    g.agree(error)
    got = g.share(done)
    if got is None:
        return None
    if not device.secondary():
        _said_finished(Path(cfg.run.dir), got)
    g.barrier()
    return got[1]


def _said_finished(run_dir: Path, done: tuple) -> dict:
    """A finished run's resume (``publish.finished_run``'s ``done``: folder, metrics, updates said): its
    temporaries swept, 'nothing to resume' said; its recorded metrics."""
    from embedrec.run_layout import has_checkpoint
    from embedrec.training.folders import clear_temporaries

    clear_temporaries(run_dir)  # (a killed write's temporaries: the model served needs none)
    given = any((done[1] or {}).get("splits") or {})  # (a dataset without a test split: none to give, an ops review)
    updated = (f"; since then {done[2]}: " + ("the metrics given are the trained model's, from before" if given else
                                             "its metrics are the trained model's, from before (none to print: no "
                                             "test split)")) if done[2] else ""
    if not has_checkpoint(run_dir):  # cleared after its publish (keep_checkpoints): no epoch to go on from (a review)
        log.info("nothing to resume: %s is finished (its model %s was trained with this config; its checkpoints were "
                 "cleared once it was published%s); train without «--resume|resume=True» to train again",
                 run_dir, done[0], updated)
        return done[1]
    log.info("nothing to resume: %s is finished (its model %s was trained with this config and these "
             "checkpoints%s); train without «--resume|resume=True» to train again, or raise train.epochs to "
             "continue", run_dir, done[0], updated)
    return done[1]


def log_train_notes(metrics: dict, cfg: Config, go_on) -> None:
    """What ``embedrec train`` says of a trained model's figures (``metrics``), logged: ``figure_notes.train_notes``
    at cfg.train.epochs, ``go_on(n)`` the call that trains on to n epochs. ``er.train`` and :func:`train_run` call
    it."""
    from embedrec.figure_notes import log_notes, train_notes

    log_notes(train_notes(metrics, cfg.train.epochs, go_on))


def _check_resumable(cfg: Config) -> None:
    """``resume=True`` with no checkpoint to continue: said before the dataset is loaded, with what to do (a
    writer at work there that has saved none yet; no prepared dataset either, so the fix is ingest first); or in a
    run whose ``current`` link is gone while its newest model folder is an update's (run.unlinked_update)."""
    from embedrec.data.layout import has_manifest
    from embedrec.run import unlinked_update
    from embedrec.run_layout import has_checkpoint, writer_note

    unlinked = unlinked_update(Path(cfg.run.dir))  # an updated run's link removed: relinked, not trained again
    if unlinked is not None:
        raise unlinked
    if has_checkpoint(cfg.run.dir):
        return
    from embedrec.publish import finished_run

    if finished_run(cfg) is not None:  # finished, its checkpoints cleared after the publish (keep_checkpoints false):
        return  # said as a finished run's resume is (a diff review: 'nothing to resume: no checkpoint')
    busy = writer_note(cfg.run.dir)
    if busy is not None:  # a writer there has saved no checkpoint yet (a red team: "nothing to resume", as if none ran)
        raise Busy(f"{busy}, with no checkpoint saved yet: nothing to resume; wait for it to finish (a "
                            "second train there would be refused)")
    if not has_manifest(cfg.data.prepared):  # no dataset either (a first-hour pass: the fix then failed)
        raise ArtifactError(f"nothing to resume: no checkpoint in '{cfg.run.dir}', and no prepared dataset at "
                            f"'{cfg.data.prepared}': run «'embedrec ingest' (with the same -c/--set options)|er.ingest(source, "
                            "cfg)», then «'embedrec train' without --resume|train_run without resume=True»")
    published = Path(cfg.run.dir) / "current"
    why = (" (a finished run's checkpoints are cleared once its model is published where train.keep_checkpoints is "
           "false, or auto and they took over 1 GB; the run still serves its model)" if published.exists() else "")
    raise ArtifactError(f"nothing to resume: no checkpoint in '{cfg.run.dir}'{why}; train without "
                        "«--resume|resume=True» (with «--set train.keep_checkpoints=true|train.keep_checkpoints=True» "
                        "to keep them)" if why else f"nothing to resume: no checkpoint in '{cfg.run.dir}'; train "
                        "without «--resume|resume=True»")


def _sharded_checkpoint(run_dir) -> bool:
    from embedrec.run_layout import training_files
    from embedrec.training.checkpoints import DIST_POINTER

    if not training_files(run_dir, DIST_POINTER):  # no pointer file anywhere: no sharded checkpoint, no torch import
        return False
    from embedrec import shard_checkpoint  # imports torch

    return shard_checkpoint.has_checkpoint(run_dir)
