"""``TrainedModel``: a model fitted in this process (``er.train``, ``embedrec train``, the torchrun trainers'
rank 0), answering through ``Model``'s methods over its arrays in memory, until ``save()`` publishes it to a
run folder as ``embedrec train`` does. ``fold_in_solve``: what a run's manifest records of its users' solve.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from embedrec.argcheck import choice_arg, device_arg, path_arg
from embedrec.argcheck import flag as flag_arg
from embedrec.data.layout import MANIFEST
from embedrec.errors import ArtifactError, TrainingError, UsageError, shorten
from embedrec.model.factors import IMPLICIT_MOVIE, Factors
from embedrec.models import Model
from embedrec.run_layout import SOLVE_WEIGHTS, USER_SCALE, serves_another, training_files
from embedrec.serve.recommender import Recommender

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config
    from embedrec.data.dataset import Dataset


def fold_in_solve(loss: str, train_cfg, pairs: int, n_users: int, n_movies: int, timed: bool) -> dict | None:
    """What a run's manifest records of its users' solve (``training_ratings.solve``, serve.foldin.fold_in): als
    (training.als.user_solve, over the ``pairs`` trained on, ``timed`` if they had times) and softmax (the user
    L2); None for the other losses, whose new users get a fixed solve."""
    if loss == "als":
        from embedrec.training.als import user_solve

        return user_solve(train_cfg, pairs, n_users, n_movies, timed)
    if loss == "softmax":
        return {"loss": "softmax", "l2": train_cfg.weight_decays("softmax")[0]}
    return None


def dataset_manifest(cfg: Config) -> Path | None:
    """The manifest.json of cfg.data.prepared (the folder's own, or its ``current`` generation's), None where there
    is none: what a finished run's key records of its dataset, and whose sizes its resume checks
    (publish.finished_run)."""
    data = Path(cfg.data.prepared) if cfg.data.prepared else None
    return None if data is None else next(
        (m for m in (data / MANIFEST, data / "current" / MANIFEST) if m.is_file()), None)


# keys added to the config after runs were published, with the value that does what those runs did: a key at it is
# left out of what a resume compares (finished_key, publish._published_as), so a run finished before the key existed
# is still found finished, its model still the one served (a review: data.id_case, data.timestamp_format and
# data.duplicates made every earlier run's `train --resume` fit its whole selection again and publish it anew)
LATER_DEFAULTS = {("split", "folds"): None, ("split", "fold"): None, ("data", "id_case"): "keep",
                  ("data", "timestamp_format"): None, ("data", "duplicates"): "keep", ("data", "bad_lines"): "error"}


def without_later_defaults(config: dict) -> dict:
    """``config`` (a config's dict, or a run's config.yaml read) without the :data:`LATER_DEFAULTS` keys that hold
    their default (the K-fold keys: both while split.folds is unset); a copy of each section it changes."""
    out = dict(config)
    folds_unset = isinstance(out.get("split"), dict) and out["split"].get("folds") is None
    for (section, key), default in LATER_DEFAULTS.items():
        part = out.get(section)
        if not isinstance(part, dict) or key not in part:
            continue
        if (folds_unset if section == "split" else part[key] == default):
            out[section] = {k: v for k, v in part.items() if k != key}
    return out


def finished_key(cfg: Config, run_dir: Path, by_time: bool = False) -> dict:
    """What a resume of ``run_dir`` must find unchanged to be a finished run's: the config asked (its run.dir
    aside: one run however spelt), the prepared dataset's manifest and every checkpoint file of the training
    folders (path, size, and its bytes' hash: :func:`_held`): a train started again since, or more epochs asked, is
    not finished. ``by_time``: each file's modification time in place of what it holds, the key of runs trained
    before session 73 (a red team: a `touch` or a copy without its times, `cp -r`, made a finished and updated run's
    resume train again and replace the update)."""
    import hashlib
    import json

    from embedrec.training.checkpoints import CHECKPOINT, DIST_POINTER

    def digest(value) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()

    asked = without_later_defaults(cfg.to_dict())
    asked.get("run", {}).pop("dir", None)
    manifest = dataset_manifest(cfg)
    files = []
    for name in (CHECKPOINT, DIST_POINTER):
        for p in training_files(run_dir, name):
            st = p.stat()
            files.append([str(p.relative_to(run_dir)), st.st_size, st.st_mtime_ns if by_time else _held(p, st)])
    return {"config": digest(asked), "dataset": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest else None,
            "checkpoints": digest(sorted(files))}


def _held(path: Path, st) -> object:
    """What a checkpoint file holds: its SHA-256 (a byte changed is a checkpoint changed, which the resume then reads
    and names as damaged; at most train.keep_checkpoints auto's 1 GB hashed at a publish, unless kept whole), else,
    where it cannot be read, its modification time."""
    from embedrec.fsutil.integrity import sha256_file

    try:
        return sha256_file(path)
    except OSError:
        return st.st_mtime_ns


class TrainedModel(Model):
    """A model trained in this process (``er.train``): the Model methods over its arrays, plus ``save``.

    ``metrics`` are what ``embedrec train`` prints; ``dataset`` the Dataset it was trained on (train+valid merged
    when refit); ``config`` the Config; ``result`` the FitResult (the torch model is ``result.model``).
    ``weights_known``: ``ds`` holds the ratings and times the final fit weighed (the one-process train), so an als
    model records its users' solve weights (run_layout.SOLVE_WEIGHTS); the torchrun trainers' gathered pairs do not,
    and their ranks bring those weights in ``f`` (shard_als.solve_weights), aligned with ``ds``'s seen CSR."""

    def __init__(self, cfg: Config, ds: Dataset, f: dict, metrics: dict, extra: dict, state_bytes: bytes, history: list,
                 result=None, solve: dict | None = None, weights_known: bool = True):
        import pyarrow as pa

        from embedrec.artifacts import serving_arrays
        from embedrec.data.ids import ids_from_arrow

        self._config, self.dataset, self._metrics, self.result = cfg, ds, metrics, result
        self._saved: Path | None = None  # the artifacts folder save() published, which the exports read
        # how training took the ratings, for a new user's fold-in: what ingest kept, what als weighted
        loss = extra["model"]["loss"]
        ratings = {"min_rating": ds.manifest.get("min_rating"),
                   "rating_weight": cfg.train.als_rating_weight if loss == "als" else 0.0}
        if ds.manifest.get("repeats") == "sum":  # counts: a new user's --rated are counts, weighed as training did
            from embedrec.training.als import count_weight

            ratings["count_weight"] = count_weight(cfg.train) if loss == "als" else 0.0
        else:  # the values of a discrete scale: a new rating off its step (4.7 on halves) is warned of at serving
            from embedrec.data.levels import histogram_levels

            levels = histogram_levels(ds.manifest.get("rating_histogram"))
            if levels is not None:
                ratings["rating_levels"] = levels
        tr = ds.splits["train"]  # ingest keeps one rating per pair: its rows are the pairs trained on
        solve = solve or fold_in_solve(loss, cfg.train, len(tr), ds.n_users, ds.n_movies, tr.timestamp is not None)
        if solve is not None and f.get("lowpass"):  # the low-pass block's columns and weight (training.lowpass): a
            solve = {**solve, "lowpass": dict(f["lowpass"])}  # new user's block is w x the sum of a's rows told
        if solve is not None and f.get("trend_window"):  # recent popularity's window (training.trend.window_stats):
            solve = {**solve, "trend_window": dict(f["trend_window"])}  # a movie update-users adds gets its z by it
        if solve is not None:  # the users' half of the training objective, which a new user's fold-in repeats
            ratings["solve"] = solve
        extra = {**extra, "training_ratings": ratings}
        arrays = serving_arrays(ds)
        if (solve or {}).get("loss") == "als" and weights_known:  # the users' final solve, which explanations
            from embedrec.training.als import seen_weights  # split a known user's scores by (serve.explain)

            f = {**f, SOLVE_WEIGHTS: seen_weights(ds, cfg.train, solve, (arrays["seen_indptr"],
                                                                         arrays["seen_indices"]))}
        elif f.get(SOLVE_WEIGHTS) is not None and len(f[SOLVE_WEIGHTS]) != len(arrays["seen_indices"]):
            raise TrainingError(f"the ranks' solve weights ({len(f[SOLVE_WEIGHTS]):,}) do not align with the "
                                f"{len(arrays['seen_indices']):,} seen pairs the run serves; this is a bug: please "
                                "report it")
        self._f, self._extra, self._state_bytes, self._history = f, extra, state_bytes, history
        explicit = cfg.model.objective == "explicit"
        fac = Factors.from_dict(f, explicit, ds.manifest.get("rating_scale"))
        # through Arrow, as a saved run's parquet files are read: the same ids, titles, years and genres
        movies = pa.Table.from_pandas(ds.movies[["movie_id", "title", "year", "genres"]], preserve_index=False)
        users = pa.Table.from_pandas(ds.users[["user_id"]], preserve_index=False)
        cols = {name: movies.column(name).combine_chunks() for name in movies.column_names}
        engine = Recommender.from_parts(
            fac, ids_from_arrow(users.column("user_id").combine_chunks()),
            {"movie_id": ids_from_arrow(cols["movie_id"]), "title": cols["title"].to_pylist(),
             "year": cols["year"].to_pylist(), "genres": cols["genres"].to_pylist()},
            (arrays["seen_indptr"], arrays["seen_indices"]), arrays["popularity"], cfg.recommend, ratings,
            ds.rated_below_unknown, bool((extra.get("features") or {}).get("user")),
            (f.get("feature_tables") or {}).get(IMPLICIT_MOVIE), (f.get(SOLVE_WEIGHTS), f.get(USER_SCALE)), loss)
        super().__init__(engine)

    def save(self, run_dir: str | Path | None = None, *, progress: bool = False) -> Path:
        """Publish the run to ``run_dir`` (default config.run.dir) exactly as ``embedrec train`` does: the
        artifacts folder, its checksums, the ``current`` link. Returns the artifacts folder. ``progress``: the
        publish's bars on stderr, as train shows them (the arrays written, the movies indexed, the bytes hashed)."""
        from embedrec.run_checks import check_run_folder
        from embedrec.worker_pool import refuse_in_spawned_main

        refuse_in_spawned_main("TrainedModel.save")
        progress = flag_arg(progress, "progress", "save")
        if run_dir is not None and (not isinstance(run_dir, (str, os.PathLike)) or str(run_dir) == ""):
            raise UsageError(f"save: run_dir {shorten(repr(run_dir))} is not a folder path (an unset variable?); "
                             "give the run folder, or None for config.run.dir")
        from embedrec.fsutil.outputs import through_missing

        run_dir = through_missing(Path(run_dir if run_dir is not None else self.config.run.dir))  # no stray 'a'
        check_run_folder(run_dir)  # as train: new, empty, or a run (a review: a user's 'current' file was replaced)
        return self._publish(run_dir, progress=progress)

    def _publish(self, run_dir: Path, asked: Config | None = None, progress: bool = False) -> Path:
        """save() for the training paths, which checked the folder before they wrote their checkpoints in it;
        ``asked``: the config ``train`` was given, whose :func:`finished_key` the manifest records (else this
        model's own: a run saved from Python has no checkpoint a resume would find). ``progress``: bars over the
        arrays written, the movies indexed and the bytes hashed (artifacts.save_artifacts, run_publish.publish)."""
        import json

        from embedrec.artifacts import save_artifacts
        from embedrec.run_publish import publish

        cfg = self.config.updated({"run.dir": str(run_dir)})
        log_text = "".join(json.dumps(r) + "\n" for r in self._history)
        extra = {**self._extra, "finished": finished_key(asked or self.config, Path(run_dir))}
        hashed: dict = {}  # each array's checksum, taken as it is written: not read back for the manifest
        self._saved = publish(run_dir, lambda tmp: save_artifacts(tmp, self._f, self.dataset, self._state_bytes,
                                                                  extra, self.config_yaml(cfg), self.metrics,
                                                                  cfg.index, log_text, progress, hashed),
                              progress=progress, hashed=hashed)
        return self._saved

    def config_yaml(self, cfg: Config | None = None) -> str:
        """The run's config.yaml: ``cfg`` (this model's config) with each ``auto`` this training resolved said in a
        comment of what it chose (the manifest's and metrics.json's values: the unobserved weight the served
        model was fitted at, the loss, the metric, the optimizer). ``auto`` stays where a rerun must choose
        again: an als run's weight is a rule of its ratings (the refit's, train+valid, differ from the
        selection's), so a number there would train another model; the selection's choices on valid (als_reg,
        als_recency, the half weight, model.dim, ...) are written as the numbers they are. Its data and split
        sections are the dataset's as ingested (:func:`config_ingest.with_ingest_settings`: a review found a run trained
        on a shop log recording `source: ml-100k`, MovieLens' columns and a test share its dataset did not have)."""
        from embedrec.config_ingest import with_ingest_settings

        cfg, _ = with_ingest_settings(cfg or self.config, getattr(self.dataset, "manifest", None))
        chosen: dict[str, str] = {}
        solve = (self._extra.get("training_ratings") or {}).get("solve") or {}
        if isinstance(solve.get("a0"), float):
            chosen["train.als_unobserved"] = f"{solve['a0']:.4g}"
        model = self._extra.get("model") or {}
        chosen["model.loss"] = str(model.get("loss"))
        chosen["model.implicit_terms"] = "true" if model.get("implicit_terms") else "false"
        chosen["train.metric"] = str(self._extra.get("metric"))
        selection = self.metrics.get("selection") or {}
        if selection.get("optimizer") is not None:  # the trainers other than als
            chosen["train.optimizer"] = str(selection["optimizer"])
            chosen["train.lr"] = f"{selection.get('lr'):g}"
            l2 = cfg.train.weight_decays(str(model.get("loss")))
            chosen["train.weight_decay_user"], chosen["train.weight_decay_movie"] = (f"{v:g}" for v in l2)
        return cfg.to_yaml(chosen)

    def _history_dataset(self) -> tuple:
        """:meth:`Model.history`'s dataset: the one this model was trained on, read from its folder (the splits in
        memory are train+valid merged where the model was refit)."""
        ds = self.dataset
        return str(ds.path), getattr(ds, "fingerprint", "") or ds.manifest.get("fingerprint"), "(in memory)"

    @contextlib.contextmanager
    def _served(self, call: str) -> Iterator[Recommender]:
        """The run this model was saved to, opened for the exports (they read its files: the index, the
        popularity); UsageError before ``save``, ArtifactError once a later ``train`` replaced it there."""
        saved = getattr(self, "_saved", None)  # (none in a TrainedModel pickled by an older embedrec)
        if saved is None:
            raise UsageError(f"{call}: this model is in memory only (er.train writes nothing); save it to a run "
                             f"first: model.save(run_dir), then model.{call}(...) or er.open(run_dir).{call}(...)")

        if serves_another(saved):  # a notebook review: 'open the run folder', which serves another model now
            raise ArtifactError(f"{call}: the run this model was saved to, '{saved.parent}', serves another model "
                                "since (a later train, update-users or index rebuild), and the exports read the "
                                f"run's files: save this model to another run folder (model.save('OTHER')) to "
                                f"export it (saved to '{saved.parent}' again, it would replace what that run serves, "
                                f"update-users' users among it), or er.open('{saved.parent}').{call}(...) for the "
                                "model the run serves")
        with Model(Recommender.open(saved, self.engine.cfg)) as opened:  # its hold let go afterwards
            yield opened.engine

    def evaluate(self, split: str = "test", ks: Iterable[int] | None = None, *, dataset_dir: str | Path | None = None,
                 moved_to: str | Path | None = None, device: str | None = None, per_user: bool | str | Path = False,
                 overwrite: bool = False, lists: dict | None = None, metrics=None, against=None,
                 progress: bool = False, notes: bool = True) -> dict:
        """As :meth:`Model.evaluate`, on the Dataset it was trained on (in memory: no ``dataset_dir`` or
        ``moved_to``); ``against``'s runs must have been trained on that dataset as it is on disk (its files'
        fingerprint); its notes logged as that one's. ``per_user`` a file name writes the table there, as
        Model.evaluate's does (``overwrite=True``: over one this wrote)."""
        from embedrec.artifacts import inputs_fingerprint
        from embedrec.evaluate import check_ks, evaluate_factors
        from embedrec.evaluate_against import against_arg, close_against, open_against
        from embedrec.evaluate_paired import finish_per_user
        from embedrec.models_offline import beside, log_evaluate_notes, per_user_metrics

        choice_arg(split, ("valid", "test"), "split")
        for name, value in (("dataset_dir", dataset_dir), ("moved_to", moved_to)):
            if value is not None:
                raise UsageError(f"evaluate: a model from er.train evaluates on the Dataset it was trained on "
                                 f"(model.dataset), not {name}; give {name} to er.open(run_dir).evaluate(...)")
        device_arg(device)
        from embedrec.list_metrics import check_lists

        check_lists(lists)
        ks = check_ks(ks if ks is not None else self.config.train.eval_k)
        overwrite = flag_arg(overwrite, "overwrite")
        if isinstance(per_user, (str, Path)):  # (a notebook review: a UsageError, and overwrite= a TypeError)
            from embedrec.export_tables import write_per_user
            from embedrec.models_offline import log_evaluate_notes, per_user_metrics

            path_arg(per_user, "evaluate", "per_user")
            metrics = per_user_metrics(metrics, per_user)
            result = write_per_user(per_user, overwrite, lambda: self.evaluate(
                split, ks, device=device, per_user=True, lists=lists, metrics=metrics, against=against,
                progress=progress, notes=False))
            return log_evaluate_notes(result, split, metrics, notes)
        if overwrite:
            raise UsageError("overwrite=True applies to per_user=FILE only; give per_user=, or leave overwrite out")
        per_user, progress = flag_arg(per_user, "per_user"), flag_arg(progress, "progress")
        notes = flag_arg(notes, "notes")
        metrics = per_user_metrics(metrics, per_user)
        runs = against_arg(against, tuple(lists or ()))
        ds = self.dataset
        opened = open_against(runs, split, {"path": str(ds.path) if ds.path else None, "files_fingerprint": ds.fingerprint,
                                            "fingerprint": inputs_fingerprint(ds.manifest)},
                              (ds.n_users, ds.n_movies), "this model (er.train's)") if runs else {}
        try:
            result = evaluate_factors(self._f, self.engine.explicit, ds, split, ks, bool(ds.manifest.get("refit")),
                                      device=device, progress=progress)
            scored = beside(split, ks, opened, lists, device, progress)
            if scored is not None:
                scored(result, ds)
        finally:
            close_against(opened, runs)
        return log_evaluate_notes(finish_per_user(result, split, per_user, metrics), split, metrics, notes)
