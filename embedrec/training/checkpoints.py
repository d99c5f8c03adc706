"""A fit's checkpoint identity: the files training writes in a run folder, the fingerprint a checkpoint must match
to be resumed (the dataset's content and the config), what differs when it does not, and loading, resuming and
clearing one.

``training/fit.py`` (one fit), ``select.py`` and ``folders.py`` beside it, and the torchrun trainers (``shard_als``,
``replica``, ``shard_checkpoint``) import this module; it imports none of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from embedrec.errors import ArtifactError
from embedrec.run_layout import CHECKPOINT, DIST_POINTER, LOG, TENSORBOARD, WARM  # noqa: F401 (the run's layout; named here for training)
from embedrec.training import loop

log = logging.getLogger("embedrec")


def fingerprint(ds, model_cfg, train_cfg, features_cfg=None, *, legacy: bool = False) -> str:
    """What a checkpoint must match to be resumed: the dataset's content and the model/train config.

    The dataset counts by its content fingerprint (over its files' checksums: what a run pins its dataset by,
    what ``evaluate`` checks) and the manifest values training reads beside the files (:data:`_DATASET_KEYS`),
    not by its whole manifest: an identical re-ingest (a new generation whose manifest differs only in its
    'created' time) resumes. A dataset without a content fingerprint (written before checksums) counts by its
    whole manifest. ``legacy``: the whole-manifest hash, what checkpoints recorded before; a resume accepts it
    too (:func:`resumable`)."""
    h = hashlib.sha256()
    h.update(json.dumps(ds.manifest if legacy else _dataset_key(ds.manifest), sort_keys=True, default=str).encode())
    h.update(json.dumps(fp_config(model_cfg, train_cfg, features_cfg), sort_keys=True).encode())
    return h.hexdigest()


# what training reads from a dataset's manifest beside its files (the scale clips and weighs ratings; a refit
# dataset is train+valid in memory, flagged in its manifest)
_DATASET_KEYS = ("rating_scale", "min_rating", "refit")


def _dataset_key(manifest: dict) -> dict:
    if not manifest.get("fingerprint"):
        return manifest
    return {"fingerprint": manifest["fingerprint"], **{k: manifest.get(k) for k in _DATASET_KEYS}}


def made_on(checkpoint: dict, ds) -> bool:
    """Whether a checkpoint was made on this dataset, whatever its config: its fingerprint rebuilt from the config
    it recorded (True where it recorded none, or in the older whole-manifest form: nothing to tell by)."""
    recorded = checkpoint.get("config")
    if not recorded or not checkpoint.get("fingerprint"):
        return True
    h = hashlib.sha256()
    h.update(json.dumps(_dataset_key(ds.manifest), sort_keys=True, default=str).encode())
    h.update(json.dumps(recorded, sort_keys=True).encode())
    legacy = hashlib.sha256(json.dumps(ds.manifest, sort_keys=True, default=str).encode())
    legacy.update(json.dumps(recorded, sort_keys=True).encode())
    return checkpoint["fingerprint"] in (h.hexdigest(), legacy.hexdigest())


def resumable(recorded, ds, model_cfg, train_cfg, features_cfg=None) -> bool:
    """Whether a checkpoint's recorded fingerprint matches this dataset and config, in today's form or the
    whole-manifest form of checkpoints written before it."""
    return recorded is not None and recorded in (fingerprint(ds, model_cfg, train_cfg, features_cfg),
                                                 fingerprint(ds, model_cfg, train_cfg, features_cfg, legacy=True))


# keys that change how fast a run goes, not what it computes: a run may resume with other values
# not in a checkpoint's fingerprint: how long or where a fit runs, train.als_dims (which other fits follow, not
# what this one computes), train.keep_checkpoints (what becomes of the files after the publish) and train.als_trend*
# (a term added to the fitted factors, chosen after every fit); a review each time: the checkpoints of runs before
# the key could not be resumed
_RESOURCE_KEYS = ("epochs", "threads", "device", "fetch_rows", "als_dims", "keep_checkpoints", "als_trend",
                  "als_trend_window", "als_trend_activity", "als_newuser_prior")


def fp_config(model_cfg, train_cfg, features_cfg) -> dict:
    from dataclasses import asdict

    train = {k: v for k, v in asdict(train_cfg).items() if k not in _RESOURCE_KEYS}
    # off (0, or auto outside a selection, which fits 0 first; a fit's own config has auto's number), as before the
    # key: the checkpoints of runs before it resume
    if train.get("als_count_weight") in (0, "auto", None):
        train.pop("als_count_weight", None)
    # the weight decays the fit uses, not 'auto': a checkpoint resumes only with the same numbers (an explicit
    # objective always trains mse; bpr is never auto)
    loss = "mse" if model_cfg.objective == "explicit" else model_cfg.loss
    train["weight_decay_user"], train["weight_decay_movie"] = train_cfg.weight_decays(loss)
    # an auto optimizer reaches here only where it is not read (als: training.fit.resolve_optimizer makes it
    # concrete for the others), as adam and its lr, as before auto existed: an als run's checkpoint resumes
    train["optimizer"] = "adam" if train_cfg.optimizer == "auto" else train_cfg.optimizer
    train["lr"] = train_cfg.learning_rate(train["optimizer"], loss)
    model = asdict(model_cfg)
    # model.implicit_terms auto: off but for the explicit model on hogwild (training.fit.resolve_implicit_terms,
    # which a fit calls before it builds its model); outside a fit, an implicit model's auto is off, as the key's
    # old default recorded it, so an als run's checkpoint resumes
    if model["implicit_terms"] == "auto":
        model["implicit_terms"] = implicit_terms_auto(model_cfg, train["optimizer"],
                                                      features_cfg is not None and features_cfg.active)
    return {"model": model, "train": train, "features": asdict(features_cfg) if features_cfg is not None else None}


def implicit_terms_auto(model_cfg, optimizer: str, features: bool) -> bool:
    """What model.implicit_terms ``auto`` is: SVD++'s terms for the plain explicit model that hogwild trains,
    off elsewhere. The one rule, for a fit (training.fit.resolve_implicit_terms) and a checkpoint's fingerprint
    config alike."""
    return model_cfg.objective == "explicit" and optimizer == "hogwild" and not features


_LEFT_OUT_WHEN_OFF = {("train", "als_count_weight")}  # fp_config's keys left out at their off value


def difference(old: dict | None, new: dict, same: str = "dataset (its manifest differs)") -> str:
    """'train.lr (0.01, now 0.02)': what differs between a checkpoint's config and this run's; ``same`` where no
    value does."""
    if not old:
        return "dataset or model/train config"

    def shown(section: str, key: str, values: dict):
        if key in values:
            return repr(values[key])
        # a key fp_config leaves out when off (als_count_weight 0 or auto): said as off, not as None (a review: a
        # resume without the checkpoint's count weight was said to be on another dataset)
        return "0" if (section, key) == ("train", "als_count_weight") else "None"

    for section, values in new.items():
        was_values = old.get(section) or {}
        values = values or {}
        # a key this run leaves out that the checkpoint has: only fp_config's own optional ones (a key an older
        # embedrec recorded and today's has dropped says nothing of the difference)
        for key in [*values, *(k for k in was_values if k not in values and (section, k) in _LEFT_OUT_WHEN_OFF)]:
            if was_values.get(key, ...) != values.get(key, ...):
                return f"{section}.{key} ({shown(section, key, was_values):.40}, now {shown(section, key, values):.40})"
    return same


def dataset_folder(path) -> str | None:
    """The prepared dataset's folder as a checkpoint records it (absolute: a resume may run from elsewhere)."""
    return None if path is None else os.path.abspath(path)


class OtherCheckpoint(ArtifactError):
    """A resume refused: the checkpoint at ``path`` was made with another config or dataset (``what``: 'model.dim
    (128, now 16)', 'dataset (its manifest differs)'). A caller that chose the resume itself (cross-validate, which
    has no --resume to leave out) says it in its own terms."""

    def __init__(self, message: str, path: Path | None = None, what: str = ""):  # (defaults: unpickled from its
        super().__init__(message)  # args, the message alone, as a tune-dims worker's error is)
        self.path, self.what = path, what


def other_config(path: Path, what: str, ck: dict | None = None, dataset=None) -> OtherCheckpoint:
    """A checkpoint made with another config (``what`` differs): e.g. a resume without the -c FILE it was trained
    with; or on another dataset: one in another folder (its config's data.prepared forgotten: a review), or the
    same folder ingested again since, where no config brings it back (a review)."""
    made_in = (ck or {}).get("dataset")
    if what.startswith("dataset") and made_in and dataset is not None and made_in != dataset_folder(dataset):
        return OtherCheckpoint(f"checkpoint '{path}' was made on dataset '{made_in}', not on '{dataset}' "
                               "(data.prepared):"
                               " resume with the config it was trained with («-c FILE and the same --set options|the "
                               "same cfg»), or train again without «--resume|resume=True»", path, what)
    if what.startswith("dataset"):
        return OtherCheckpoint(f"checkpoint '{path}' was made on another {what}: the dataset was ingested again since "
                               "(another split or data), so it cannot be resumed; train again without "
                               "«--resume|resume=True»", path, what)
    dims = re.fullmatch(r"model\.dim \((\d+), now (\d+)\)", what)
    if dims:  # a default dimension is at most min(users, movies) since session 50: a run trained at 128 on a
        # smaller catalogue before then resumes with the dimension given (a review: the same options were refused)
        return OtherCheckpoint(f"checkpoint '{path}' was made with model.dim {dims[1]}, where this config trains "
                               f"{dims[2]} (a model.dim left at its default is at most min(users, movies)); resume "
                               f"with «--set model.dim={dims[1]}|cfg.updated({{'model.dim': {dims[1]}}})» beside the "
                               "config it was trained with, or train again without «--resume|resume=True»", path, what)
    return OtherCheckpoint(f"checkpoint '{path}' was made with another {what}; resume with the config it was trained "
                           "with («-c FILE and the same --set options|the same cfg»), or train again without "
                           "«--resume|resume=True»", path, what)


def load_checkpoint(path: Path) -> dict:
    return loop.load(path)



def resume_checkpoint(state: loop.LoopState, ckpt_path: Path, matches, fp_cfg: dict, metric: str, dataset=None) -> None:
    """Load the checkpoint into ``state`` if ``matches(its recorded fingerprint)`` (:func:`resumable`); ``dataset``:
    this run's prepared folder, named if the checkpoint was made on another."""
    if not ckpt_path.exists():
        raise ArtifactError(f"nothing to resume: no checkpoint at '{ckpt_path}'; train without «--resume|resume=True»")
    ck = load_checkpoint(ckpt_path)
    if not matches(ck.get("fingerprint")):
        raise other_config(ckpt_path, difference(ck.get("config"), fp_cfg), ck, dataset)
    state.resume_from(ck, ckpt_path)
    # a fit that had finished (stopped early, or all its epochs) is read back, not resumed: said with -v only (a
    # first-hour pass: `train --resume` on a finished run repeated one such line per candidate)
    log.log(logging.DEBUG if state.epoch >= state.epochs else logging.INFO, "resuming after epoch %d (best %s %.4f "
            "at epoch %d)", ck["epoch"] + 1, metric, state.best if state.best is not None else float("nan"),
            state.best_epoch + 1)


def clear_checkpoint(run_dir: str | Path) -> None:
    p = Path(run_dir) / CHECKPOINT
    if p.exists():
        os.unlink(p)
