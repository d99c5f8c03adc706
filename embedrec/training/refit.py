"""The refit on train+valid after a selection: what ``train`` publishes when ``train.refit`` is on.

als replays the selection's path (:func:`refit_path`: the first candidate's model, then each warm-started
candidate on the way to the chosen one, each stage a ``fit`` run by :func:`run_path` in its
:func:`refit_folder`); the other trainers fit afresh for the epochs valid chose (:func:`afresh_config`).
One process (:func:`refit_train_valid`) and torchrun's ranks (``shard_als``, through :func:`refit_als`;
``replica``, through :func:`afresh_config`); each reports the selection's best epoch (:func:`keep_selection`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from embedrec.run_layout import STAGE
from embedrec.training.fit import FitResult, fit
from embedrec.training.folders import REFIT, clear_stale_path

log = logging.getLogger("embedrec")


# als refits by continuing the selected model on train+valid for this many sweeps (a warm start): the first
# sweep already solves every vector with the validation rows in; a second lets both sides settle
WARM_REFIT_EPOCHS = 2


def refit_path(selected: FitResult, train_cfg) -> tuple[dict, list]:
    """What an als refit on train+valid runs: (the state it starts from, the train configs of its stages, each
    with its number of sweeps as ``epochs``). It replays the path valid measured: the first candidate's selected
    model continued for WARM_REFIT_EPOCHS sweeps with its own settings, then each warm-started candidate on the
    way to the selected one (:class:`Selection`) for the sweeps it ran to its best epoch, the last with
    ``train_cfg`` (the chosen values). A candidate picked one sweep after its warm start is a step from the
    model before it, not its own fixed point: continuing it alone drifted to that fixed point (on a
    taste-heavy synthetic set, -0.008 test NDCG@10 against the replay; BENCHMARKS.md, session 13)."""
    import dataclasses

    if not selected.path:  # not from a Selection: its own model, continued
        return selected.model.state_dict(), [dataclasses.replace(train_cfg, epochs=WARM_REFIT_EPOCHS)]
    stages = []
    for i, (tcfg, best_epoch) in enumerate(selected.path):  # each as the selection ran it (its users' re-solve)
        last = i == len(selected.path) - 1
        stages.append(dataclasses.replace(train_cfg if last else tcfg,
                                          epochs=WARM_REFIT_EPOCHS if i == 0 else max(best_epoch, 1)))
    return selected.path_start, stages


def describe_path(stages: list) -> str:
    """'2 sweeps at als_reg 0.01, then 1 at als_reg 0.02' (the refit's log line)."""
    def num(v) -> str:
        return v if isinstance(v, str) else f"{v:.4g}"

    # a value is said where the stages differ in it, or it is not its default (a review: '2 sweeps at als_reg
    # 0.05, then 12 at als_reg 0.05, als_unobserved 0.1066' hid that the first ran at the auto weight)
    varies = {k: len({str(getattr(t, k)) for t in stages}) > 1
              for k in ("als_recency", "als_unobserved", "als_count_weight")}

    def what(t):
        return f"als_reg {t.als_reg:g}" + (
            f", als_recency {num(t.als_recency)}" if varies["als_recency"] or t.als_recency else "") + (
            f", als_unobserved {num(t.als_unobserved)}" if varies["als_unobserved"] or
            not isinstance(t.als_unobserved, str) else "") + (
            f", als_count_weight {num(t.als_count_weight)}" if varies["als_count_weight"] or t.als_count_weight else "")

    first, *rest = stages
    return f"{first.epochs} sweeps at {what(first)}" + "".join(f", then {t.epochs} at {what(t)}" for t in rest) + (
        " (chosen)" if rest else "")


def refit_train_valid(ds, cfg, selected: FitResult, run_dir: Path, progress: bool):
    """Retrain on train+valid: als replays the selection's path from its first candidate's model
    (:func:`refit_path`); the other trainers start afresh for the selected number of epochs (chosen on valid
    only)."""
    merged = train_valid_dataset(ds)
    both = merged.splits["train"]
    if selected.loss != "als":
        result = fit(merged, selected_model_config(selected, cfg.model), afresh_config(selected, cfg.train, len(both)),
                     run_dir / REFIT, progress=progress, features_cfg=cfg.features)
    else:
        result = refit_als(selected, cfg.train, run_dir, len(both), lambda t, folder, init: fit(
            merged, cfg.model, t, folder, progress=progress, features_cfg=cfg.features, init_state=init))
    return merged, keep_selection(result, selected)


def train_valid_dataset(ds):
    """``ds`` as the refit trains on it: train+valid its train split, valid empty; the pairs kept apart as rated
    (rated_below) of valid are train's, as valid's ratings are, so a ranking on test leaves out the same ones."""
    from embedrec.data.dataset import Dataset, Interactions

    tr, va = ds.splits["train"], ds.splits["valid"]
    both = Interactions.concat([tr, va])
    empty = Interactions(tr.user[:0], tr.movie[:0], tr.rating[:0])
    parts = ds.rated_below_split
    return Dataset(ds.path, {**ds.manifest, "refit": True}, ds.users, ds.movies,
                   {"train": both, "valid": empty, "test": ds.splits["test"]}, rated_below=ds.rated_below,
                   rated_below_split=None if parts is None else np.where(parts == 1, 0, parts).astype(np.int8),
                   rated_below_unknown=ds.rated_below_unknown)


def selected_model_config(selected: FitResult, model_cfg):
    """The model config a refit trains (the trainers other than als): model.implicit_terms as the selection
    trained, not resolved again (a review: a resumed run trained before auto, the plain MF, was refit with SVD++'s
    terms, which its selection had not chosen). One process and torchrun's ranks."""
    import dataclasses

    svdpp = getattr(selected.model, "implicit_movie", None) is not None
    return model_cfg if model_cfg.implicit_terms == svdpp else dataclasses.replace(model_cfg, implicit_terms=svdpp)


def afresh_config(selected: FitResult, train_cfg, n_ratings: int):
    """The train config of a refit afresh on train+valid (``n_ratings``; the trainers other than als): the epochs
    valid chose, said in the log. One process and torchrun's ranks (``replica``)."""
    import dataclasses

    tcfg = dataclasses.replace(train_cfg, epochs=max(selected.best_epoch, 1))
    if selected.optimizer:  # the selection's own (train.optimizer auto resolved once, or as its checkpoint was)
        tcfg = dataclasses.replace(tcfg, optimizer=selected.optimizer[0], lr=selected.optimizer[1])
    log.info("refit on train+valid (%s ratings) for %d epoch%s", f"{n_ratings:,}", tcfg.epochs,
             "" if tcfg.epochs == 1 else "s")
    return tcfg


def keep_selection(result: FitResult, selected: FitResult) -> FitResult:
    """The refit's ``result`` reporting the selection's best epoch, metric and valid score (a refit has no valid
    split of its own), as ``train`` publishes it: one process and both torchrun paths."""
    result.best_epoch, result.metric, result.best_value = selected.best_epoch, selected.metric, selected.best_value
    return result


def refit_als(selected: FitResult, train_cfg, run_dir: Path, n_ratings: int, fit_stage, leader: bool = True):
    """The als refit on train+valid (``n_ratings``): the selection's path (:func:`refit_path`), each stage
    ``fit_stage(train_cfg, folder, init_state)`` in its :func:`refit_folder`; one process or torchrun's ranks
    (``leader``: the rank that clears stale stage folders). Returns the last stage's FitResult."""
    state, stages = refit_path(selected, train_cfg)
    epochs = sum(t.epochs for t in stages)
    log.debug("refit on train+valid (%s ratings) for %d epoch%s, replaying the selection: %s", f"{n_ratings:,}",
              epochs, "" if epochs == 1 else "s", describe_path(stages))  # the last line says the refit (-v: this)
    if leader:
        clear_stale_path(run_dir, len(stages))
    return run_path(stages, state, lambda t, i, init: fit_stage(t, refit_folder(run_dir, i, len(stages)), init))


def refit_folder(run_dir: Path, i: int, n: int) -> Path:
    """Where stage ``i`` of ``n`` of a refit writes: ``refit``, and ``refit/path-<i>`` for the stages before."""
    return Path(run_dir) / REFIT if i == n - 1 else Path(run_dir) / REFIT / f"{STAGE}{i}"


def run_path(stages: list, state: dict, fit_stage) -> FitResult:
    """Fit each stage from the state the one before left (``fit_stage(train_cfg, i, init_state)``); the last
    stage's FitResult, with every stage's sweeps and seconds."""
    runs, seconds, result = 0, 0.0, None
    for i, tcfg in enumerate(stages):
        result = fit_stage(tcfg, i, state)
        state = result.model.state_dict()
        runs, seconds = runs + result.epochs_run, seconds + result.seconds
    result.epochs_run, result.seconds = runs, seconds
    return result
