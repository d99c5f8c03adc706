"""How a fitted model becomes a run's published model: ``publish_trained``, which the one-process ``train`` and
the torchrun trainers (shard_als, replica) share, these two through ``publish_from_ranks`` (rank 0 builds the
``TrainedModel`` of trained.py from what the ranks gathered)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import ArtifactError
from embedrec.run_layout import CONFIG, METRICS
from embedrec.trained import TrainedModel, dataset_manifest, finished_key, without_later_defaults

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config
    from embedrec.dist_data import Shard
    from embedrec.distributed import Group

log = logging.getLogger("embedrec")


class IndexDamaged(ArtifactError):
    """A finished run whose model is whole but whose FAISS index is damaged or gone (:func:`finished_run`): its way
    on is ``index rebuild``, not a resume; cross-validate trains such a fold again (nothing of update-users' to
    lose there)."""


def publish_trained(model: TrainedModel, run_dir: Path, resume: bool, asked: Config | None = None,
                    progress: bool = False) -> dict:
    """Publish what ``train`` fitted, except a ``--resume`` of a finished run: its complete checkpoints rebuild
    the model ``run_dir`` already serves, which is then not published again (one process and the ranks alike).
    Returns the run's metrics: the model's, or that published model's as it recorded them (a first-hour review:
    each resume that did nothing reported a longer fit, the replay's seconds added). ``asked``: the config
    ``train`` was given (its ``auto`` values), whose ``trained.finished_key`` the manifest records, so that a later
    resume of this finished run stops before it replays the fits (:func:`finished_run`). ``progress``: the
    publish's bars (TrainedModel._publish)."""
    from embedrec.training.folders import clear_temporaries

    published = _published_as(run_dir, model) if resume else None
    if published is not None:
        clear_temporaries(run_dir)  # (a killed write's temporaries: the model served needs none)
        name, metrics = published
        log.info("nothing to resume: the checkpoints were complete and %s already holds this model (%s); train "
                 "without --resume to train again, or raise train.epochs to continue (a fit that stopped early "
                 "stays stopped unless train.patience is raised too)", run_dir, name)
        return metrics
    model._publish(Path(run_dir), asked, progress)
    clear_temporaries(run_dir)  # (a killed write's temporaries: the published model needs none, a resume's either)
    keep = model.config.train.keep_checkpoints
    if keep is not True:  # only the published model is needed to serve
        from embedrec.training.folders import clear_training, training_bytes

        size = training_bytes(run_dir) if keep == "auto" else 0
        if keep is False or size > KEEP_AUTO_MAX:
            clear_training(run_dir)
        if size > KEEP_AUTO_MAX:  # a scale review: 7.0 GB kept beside a 501 MB model filled a shared disk
            log.info("cleared the training checkpoints (%.1f GB, above the %d GB train.keep_checkpoints auto keeps "
                     "for --resume): «--set train.keep_checkpoints=true|train.keep_checkpoints=True» keeps them",
                     size / 2**30, KEEP_AUTO_MAX // 2**30)
    return model.metrics


# trained.finished_key's checkpoints of a run whose training folders hold no checkpoint (cleared after the publish)
CLEARED = hashlib.sha256(b"[]").hexdigest()


def finished_run(cfg: Config) -> tuple[str, dict, str | None] | None:
    """(the published model's folder name, its recorded metrics, what update-users did to it since in words or
    None) where ``train --resume`` with ``cfg`` finds ``cfg.run.dir`` finished: its published model recorded the
    ``finished_key`` it was trained at, and that key is the same now (a known gap: such a resume loaded every
    checkpoint and replayed the selection's choices, their lines said again, to find the same model). A model
    folder update-users published carries its key: its users were re-solved, the rest is the trained model, and a
    resume neither trains again nor undoes the update (the recorded metrics are the trained model's, measured
    before it: said). None otherwise (an older run, a file that cannot be read, a served file damaged or gone: the
    resume goes on as before, and publishes the model again)."""
    from embedrec.fsutil.files import loads_json
    from embedrec.run import load_run
    from embedrec.run_updates import updates_said

    run_dir = Path(cfg.run.dir)
    try:
        run = load_run(run_dir)
        recorded = run.manifest.get("finished")
        now = finished_key(cfg, run_dir)
        # its training folders cleared after the publish (train.keep_checkpoints false, or auto above 1 GB; each
        # cross-validate fold's): finished where the config and dataset are the same and no checkpoint is left
        cleared = isinstance(recorded, dict) and now["checkpoints"] == CLEARED and all(
            recorded.get(k) == now[k] for k in ("config", "dataset"))
        if isinstance(recorded, dict) and recorded != now and recorded.get("checkpoints") != now["checkpoints"]:
            now = {**now, "checkpoints": finished_key(cfg, run_dir, by_time=True)["checkpoints"]}  # (a run's key
            # trained before session 73)
        if not isinstance(recorded, dict) or (recorded != now and not cleared) or not _dataset_sizes_hold(cfg):
            return None
        metrics = loads_json(run.read_verified(run.path / METRICS) or b"null")
        bad = _damaged_served_files(run)
    except (ArtifactError, OSError, ValueError):
        return None
    if bad and all(name.endswith(".faiss") for name in bad):  # the model whole, its index not: built again from it,
        # not trained again, which would drop what update-users added since (a review)
        from embedrec.run_fixes import index_fix

        raise IndexDamaged(f"nothing to resume: {run_dir} is finished, but its index file '{bad[0]}' is damaged or "
                            f"missing; {index_fix(run.path, run.manifest.get('index'))}")
    if bad:
        return None
    return (run.path.name, metrics, updates_said(run.manifest)) if isinstance(metrics, dict) else None


def _dataset_sizes_hold(cfg: Config) -> bool:
    """Whether each file the prepared dataset's manifest lists has the size it records (a stat each): a file
    rewritten under its manifest since the run finished sends the resume the old way, whose read names the damage
    (a review: the finished-run answer hid it). Its bytes are not hashed here: that is every later read's."""
    from embedrec.fsutil.files import loads_json

    if not cfg.data.prepared:
        return True
    manifest = dataset_manifest(cfg)
    if manifest is None:
        return False
    folder = manifest.resolve().parent  # the generation's folder: a dataset's top links its main files alone, not
    try:  # rated_below.parquet (a review: a floor's dataset sent every finished run's resume back to training)
        files = loads_json(manifest.read_bytes()).get("files") or {}
        return all(not isinstance(e, dict) or not isinstance(e.get("bytes"), int)
                   or (folder / name).stat().st_size == e["bytes"] for name, e in files.items())
    except (OSError, ValueError, AttributeError):
        return False


# train.keep_checkpoints auto: the training folders a finished run keeps for --resume, at most (each candidate's,
# dimension's and the refit's last checkpoint: on ML-100K 31 MB; at 300K users x 60K movies 7.0 GB beside the
# 501 MB model)
KEEP_AUTO_MAX = 1 << 30


def publish_from_ranks(g: Group, cfg: Config, shard: Shard, path: Path, result, metrics: dict, refit: bool,
                       resume: bool, published, *, state_dict: bool = False, solve: dict | None = None,
                       progress: bool = False, asked=None) -> dict:
    """How both torchrun trainers (shard_als, replica) publish: every rank sends its users' seen pairs (train and
    valid, what the lists leave out) to rank 0, which builds the run's Dataset at ``path`` (users, movies and
    rated_below read from ``shard.folder``, the generation the ranks trained on even if an ingest swapped
    ``current`` since, else from ``path``), takes the factors ``published(ds)`` and the model record of ``result``
    (``training.fit.model_record``, with the ranks), and publishes as one process does (:func:`publish_trained`);
    the other ranks wait at the barrier until it has. ``state_dict``: publish the torch model's state_dict.pt too;
    ``solve``: the users' solve (:func:`fold_in_solve`; default: over the seen pairs); ``progress``: the publish's
    bars, as one process shows them (:func:`publish_trained`), drawn by rank 0 alone. A collective: every rank
    calls it. Returns the run's metrics (on rank 0 a finished run's resume gives its recorded ones, as
    :func:`publish_trained`; the other ranks' are ``metrics``). ``asked``: the config train was given, whose
    finished key the manifest records (:func:`finished_run`: a later resume under torchrun stops before the fits)."""
    import torch

    from embedrec.data.dataset import (
        Dataset,
        Interactions,
        read_rated_below,
        read_rated_below_unknown,
        read_tables,
    )
    from embedrec.training.fit import model_record, state_bytes

    seen = [shard.splits[s] for s in ("train", "valid") if s in shard.splits]
    su = g.gather0(torch.from_numpy(np.concatenate([p.user for p in seen])).to(g.device))
    sm = g.gather0(torch.from_numpy(np.concatenate([p.movie for p in seen])).to(g.device))
    if not g.leader:
        g.barrier()
        return metrics
    folder, manifest = shard.folder or path, shard.manifest
    users, movies = read_tables(folder, manifest)
    su, sm = su.cpu().numpy(), sm.cpu().numpy()
    given = Interactions(su, sm, np.ones(su.size, np.float32))  # ratings are not part of the run's files
    empty = Interactions(su[:0], sm[:0], np.ones(0, np.float32))
    ds = Dataset(path, {**manifest, "refit": refit}, users, movies, {"train": given, "valid": empty},
                 fingerprint=manifest.get("fingerprint", ""),
                 rated_below=read_rated_below(folder, manifest, len(users), len(movies)),
                 rated_below_unknown=read_rated_below_unknown(folder, manifest, len(movies)))
    # the pairs gathered, without their ratings or times: an als run's solve weights come from its ranks, in
    # ``published``'s arrays (shard_als.solve_weights)
    model = TrainedModel(cfg, ds, published(ds), metrics, model_record(cfg, result, refit, ranks=g.world),
                         state_bytes(result.model) if state_dict else None, result.history, result, solve,
                         weights_known=False)
    metrics = publish_trained(model, Path(cfg.run.dir), resume, asked=asked, progress=progress)
    g.barrier()
    return metrics


def _damaged_served_files(run) -> list[str]:
    """The files the published model's manifest lists that are damaged or gone: a resume that finds the run
    finished publishes it again then, not 'nothing to resume' (a red team: rc 0, then recommend refused the
    flipped user_factors.npy); where they are its FAISS index alone, ``index rebuild`` is the way on. Files above
    integrity.VERIFY_ON_OPEN_MAX are checked where they lie (their size, and their hash where written since it was
    recorded), as every reader checks them."""
    bad = []
    for name in run.manifest.get("checksums") or {}:
        try:
            run.read_verified(run.path / name)
        except (ArtifactError, OSError):
            bad.append(name)
    return bad


def _published_as(run_dir: Path, model: TrainedModel) -> tuple[str, dict] | None:
    """The folder name of ``run_dir``'s published model and its recorded metrics when it is ``model`` (the same
    factors bit for bit and the same config): what a --resume of a finished run recomputes, which is not
    published again."""
    from embedrec.artifacts import sha256_npy
    from embedrec.fsutil.files import loads_json
    from embedrec.run import load_run
    from embedrec.run_publish import sha256_array

    try:
        run = load_run(run_dir)
        config = run.read_verified(run.path / CONFIG)
        metrics = loads_json(run.read_verified(run.path / METRICS) or b"null")
        if _damaged_served_files(run):
            return None
    except (ArtifactError, OSError, ValueError):
        return None
    files = run.manifest.get("files") or {}

    def recorded(name: str) -> bool:  # the .npy file's SHA-256 since session 58; an earlier run's, the array's bytes
        a, digest = np.asarray(model._f[name], np.float32), files.get(f"{name}.npy")
        return digest == sha256_npy(a) or digest == sha256_array(a)

    same = all(recorded(name) for name in ("user_factors", "movie_factors"))
    yaml = model.config_yaml(model.config.updated({"run.dir": _run_dir_as_published(config, run_dir)}))
    if not (same and config is not None and isinstance(metrics, dict)
            and (config.decode("utf-8") == yaml or _same_but_stopping(config, yaml)
                 and metrics.get("epochs_run") == model.metrics.get("epochs_run"))):  # no epoch trained since
        return None
    return run.path.name, metrics


def _run_dir_as_published(published: bytes | None, run_dir: Path) -> str:
    """``run_dir`` as the published config spells it (a run trained as /abs/runs/x and resumed as runs/x, or
    through a link, or from another folder, is the same run: a check found each such resume published an
    identical model again), ``run_dir`` itself where that config has none."""
    import yaml as pyyaml

    try:
        spelt = (pyyaml.safe_load(published) or {}).get("run", {}).get("dir") if published is not None else None
    except (pyyaml.YAMLError, UnicodeDecodeError, AttributeError):
        spelt = None
    # the config was read from run_dir's own model: its run.dir names this run, however it was spelt then (a
    # relative one resolves against the folder train ran in, not this one: a review)
    return spelt if isinstance(spelt, str) and spelt else str(run_dir)


def _same_but_stopping(published: bytes, yaml: str) -> bool:
    """The two configs differ in train.epochs or train.patience only (or in keys added since the run was published,
    at their defaults: trained.LATER_DEFAULTS): where the factors are the same bit for bit
    (a fit that stopped early, resumed with more epochs, stays stopped), the model served is the same (a review: each
    such resume published an identical model again, in silence)."""
    import yaml as pyyaml

    try:
        a, b = pyyaml.safe_load(published), pyyaml.safe_load(yaml)
    except (pyyaml.YAMLError, UnicodeDecodeError):
        return False
    if not (isinstance(a, dict) and isinstance(b, dict) and isinstance(a.get("train"), dict)
            and isinstance(b.get("train"), dict)):
        return False
    a, b = without_later_defaults(a), without_later_defaults(b)  # (a run published before a key existed)
    for c in (a, b):
        c["train"] = {k: v for k, v in c["train"].items() if k not in ("epochs", "patience")}
    return a == b
