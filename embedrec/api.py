"""The public Python API (``import embedrec as er``): ids in, ids out.

    cfg = er.load_config()                       # defaults < embedrec.yaml < overrides, as the CLI resolves it
    ds = er.ingest("ml-100k", cfg)               # writes cfg.data.prepared, returns the Dataset
    model = er.train(ds, cfg)                    # a TrainedModel in memory; nothing is written
    model.save("runs/mine")                      # exactly what `embedrec train` publishes
    rec = er.open("runs/mine")                   # a Model over the run's files (no torch, no pandas)
    rec.recommend([196, 186], k=10)              # Recommendations: user ids -> movie ids and scores
    rec.export("parquet", "out/emb")             # embedrec export (also rec.topk_all(path), rec.plot_map(path))
    verify_files(run), rebuild_index(run, cfg), tune_dims(cfg)   # embedrec verify, index rebuild, tune-dims
    update_users(run, "since.csv")               # embedrec update-users: users re-solved with newer ratings

A Model answers in the ids of the source data and never in row numbers. An id not in the training data
raises NotFoundError unless ``missing=`` says otherwise. The CLI's ``recommend`` and ``predict`` commands
call these methods. Opening a run imports numpy only (FAISS for an approximate index; pyarrow only for a run
older than its catalogue files); ``train`` imports torch and ``ingest`` pandas when they are called.

This module is the workflows' public face: the bodies that outgrew it live in the modules it calls, a DataFrame
given to ``ingest`` in ``data/frames.py`` and training's workflow (``train_model``, ``train_run``, re-exported
here) in ``train_workflow.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedrec.argcheck import flag
from embedrec.errors import (
    DataError,
    Interrupted,
    Terminated,
    UsageError,
    how_stopped,
    marked,
    shorten,
    stop_signal,
)
from embedrec.list_metrics import score_lists  # noqa: F401 (er.score_lists: any lists, any split)

# the public types (er.Model, er.TrainedModel, er.Recommendations, er.Predictions), found here by embedrec/__init__
# and by pickles made when they were defined here (StreamAnswer too, before 83579c5)
from embedrec.models import (  # noqa: F401
    Model,
    Predictions,
    Recommendations,
    StreamAnswer,
)
from embedrec.predict_input import predict_lines  # noqa: F401 (the CLI's predict --pairs)
from embedrec.train_workflow import train_run  # noqa: F401 (embedrec.api.train_run: docs/python.md, the CLI's train)
from embedrec.trained import TrainedModel  # noqa: F401

if TYPE_CHECKING:  # annotations only: no import at run time
    import pandas as pd

    from embedrec.config import Config
    from embedrec.data.dataset import Dataset


# ----------------------------------------------------------------------------------------- workflow
def load_config(path: str | Path | None = None, overrides: Iterable[str] | Mapping[str, Any] | None = ()) -> Config:
    """The resolved Config: built-in defaults < the YAML file < ``overrides``: 'section.key=value' texts, as
    ``--set`` takes them, or a mapping {"section.key": value}, as ``Config.updated`` takes it.

    Without ``path``: $EMBEDREC_CONFIG, else ./embedrec.yaml, else the defaults (as the CLI finds it); the file
    found is logged at INFO, and ``cfg.source`` holds the file read (absolute; None: the defaults alone)."""
    import logging
    import os

    from embedrec.config import CONFIG_ENV, find_config
    from embedrec.config import load_config as _load

    # one 'section.key=value' text is one override; anything but texts or a mapping is a ConfigError (config's)
    found = find_config(path)
    cfg = _load(found, dict(overrides) if isinstance(overrides, Mapping) else overrides)
    if path is None and found is not None:  # a file nobody named: said (a review: ./embedrec.yaml read silently)
        logging.getLogger("embedrec").info(
            "config: read %s (%s)", cfg.source, f"${CONFIG_ENV}" if os.environ.get(CONFIG_ENV, "").strip() else
            "found in the current folder")
    return cfg


def config_argument(cfg, call: str) -> Config:
    """The ``cfg`` argument of a workflow function named ``call`` (for its messages): a Config, or None for
    :func:`load_config`'s (the one the CLI finds); anything else, such as a dict of overrides, is a UsageError
    saying how to make one. Every workflow here takes its ``cfg`` through it, and so do those built over this
    module beside it (``crossval.cross_validate``)."""
    from embedrec.config import Config

    if cfg is None:
        return load_config()
    if not isinstance(cfg, Config):
        raise UsageError(f"{call}: cfg must be a Config, not {type(cfg).__name__}; make one with "
                         "er.load_config(path, {'section.key': value}) or change one with cfg.updated({...})")
    return cfg


def path_argument(value, name: str, call: str, example: str) -> None:
    """A folder or file argument ``name`` of the workflow ``call``: a str or os.PathLike that a file system takes
    (``argcheck.path_problem``); a Config in its place (``er.train(cfg)``) is a UsageError saying where the config
    goes, with ``example`` (a call that works), a DataFrame one saying what takes it. As :func:`config_argument`,
    for the workflows here and those built over them (``crossval.cross_validate``'s ``output``)."""
    import os

    if isinstance(value, str) and value == "":  # an unset variable: not the default folder, nor the current one (a red team)
        raise UsageError(f"{call}: {name} is an empty path ''; give a path, or None: {example}")
    if isinstance(value, (str, os.PathLike)):
        from embedrec.argcheck import path_problem

        why = path_problem(value)
        if why:
            from embedrec.argcheck import path_message

            raise UsageError(path_message(call, name, why))
        return
    from embedrec.config import Config

    if isinstance(value, Config):
        raise UsageError(f"{call}: got a Config as {name}; pass it as cfg: {example}")
    if type(value).__name__ == "DataFrame" and name == "source":  # a notebook review: no word on what to do
        raise UsageError(f"{call}: source is a path here, not a DataFrame: er.ingest(df, cfg) takes one (or write "
                         "it first, df.to_parquet('ratings.parquet', index=False), and give that path)")
    also = (", or a pandas DataFrame of the ratings" if call == "ingest" and name == "source"
            else ", or a pandas DataFrame of the movies" if call == "ingest" and name == "movies"
            else ", or the Dataset er.ingest returns" if name == "ds" else "")
    raise UsageError(f"{call}: {name} must be a path (str or pathlib.Path){also}, not {type(value).__name__}")


def ingest(source: str | Path | pd.DataFrame | None = None, cfg: Config | None = None, *,
           movies: str | Path | pd.DataFrame | None = None, test: str | Path | pd.DataFrame | None = None,
           valid: str | Path | pd.DataFrame | None = None, output: str | Path | None = None,
           overwrite: bool = False, progress: bool = False) -> Dataset:
    """``embedrec ingest``: read ``source`` (default cfg.data.source), clean, split, write the dataset to
    ``output`` and return it as a Dataset. Without ``output`` the folder is cfg.data.prepared where the config
    sets it, else it is named after the source (``data/prepared/ratings`` for ``ratings.csv``), as the command
    names it.

    ``source`` may be a pandas DataFrame of ratings (its columns, not its index, matched as a file's are:
    user_id/userId, movie_id/movieId/itemId, [rating], [timestamp], or data.columns.*): it is written to the
    cache as Parquet (``CACHE/dataframes/dataframe-<hash>.parquet``, named by its content;
    ``data.frames.frame_source``), which the dataset records as its source, and its default folder is
    ``data/prepared/dataframe-<hash>``.

    ``movies``: the movies' titles, genres (and years) as data.movies names a movies file: that file's path, or a
    pandas DataFrame of them (its columns matched as a movies file's are: movie_id/movieId/itemId, title,
    [genres: text split at data.genre_separator, or lists], [year], or data.columns.*), written to the cache as a
    ratings DataFrame is and read as that file, with the same checks and messages (a missing column named), said
    of 'the movies DataFrame'.

    ``test``, ``valid``: a split made elsewhere, held out as it is (split.method=given, set by them): the test
    rows (and the validation rows; without them split.valid of ``source``'s rows is drawn) as a file's path or a
    DataFrame of ``source``'s columns, as data.test_source and data.valid_source name them; ``source`` holds the
    training rows.

    A ``source``, ``movies`` or ``output`` given here applies to this call (``cfg`` itself is frozen and never changes);
    the returned Dataset knows its folder, so ``train(ds, cfg)`` needs nothing else, and the model's config
    (``model.config``) names the run folder after the dataset: ``model.save()`` writes ``runs/ratings`` (not
    ``cfg.run.dir``, which still names the config's own source)."""
    from embedrec.config import set_explicit
    from embedrec.data.dataset import current_generation, load_dataset
    from embedrec.data.frames import (
        MOVIES_FRAME,
        RATINGS_FRAME,
        TEST_FRAME,
        VALID_FRAME,
        about_the_frame,
        as_movies_file,
        cached_frame,
        forget,
        frame_source,
    )

    overwrite, progress = flag(overwrite, "overwrite", "ingest"), flag(progress, "progress", "ingest")
    made: list[str] = []  # the cache files of this call's frames it wrote, which a failure removes
    folder = before = None  # the dataset's folder and the generation it served before this call
    try:
        frame = movies_frame = None
        if type(source).__name__ == "DataFrame":  # Surprise's load_from_df, LensKit's from_interactions_df
            source = frame = frame_source(source, config_argument(cfg, "ingest").data.cache_dir, made=made)
        if type(movies).__name__ == "DataFrame":  # the titles beside a ratings frame (a known gap: a file alone)
            data = config_argument(cfg, "ingest").data
            movies = movies_frame = frame_source(as_movies_file(movies, data.genre_separator), data.cache_dir,
                                                 MOVIES_FRAME, made)
        held = {}  # split.method=given's held-out rows, a DataFrame written to the cache as the ratings' is
        for value, kind in ((test, TEST_FRAME), (valid, VALID_FRAME)):
            if type(value).__name__ == "DataFrame":
                value = held[kind] = frame_source(value, config_argument(cfg, "ingest").data.cache_dir, kind, made)
            if kind is TEST_FRAME:
                test = value
            else:
                valid = value
        cfg = ingest_config(source, cfg, output=output, movies=movies, test=test, valid=valid)
        folder = cfg.data.prepared
        before = current_generation(folder)
        if source is None and overwrite:
            recorded = other_source(cfg)
            if recorded is not None:  # as `embedrec ingest --overwrite` with no SOURCE (a review: a notebook's replaced a
                # click log's dataset with ML-100K, as the command did before); a DataFrame's cache file is said as such
                framed = cached_frame(recorded)
                movies = next((kv.split("=", 1)[1] for kv in ingested_with(cfg.data.prepared)[2]
                               if kv.startswith("data.movies=")), None)  # (a first-hour review: the advice dropped it)
                raise UsageError(
                    f"no source given, so er.ingest would read {cfg.data.source} (data.source's default) into "
                    f"'{cfg.data.prepared}', which holds a dataset ingested from "
                    + ("a DataFrame; give that DataFrame again: er.ingest(df, " if framed else
                       f"'{recorded}'; give its source again: er.ingest({recorded!r}, ")
                    + f"output={str(cfg.data.prepared)!r}, overwrite=True), with the config it was ingested with"
                    + ("" if not movies else " (its movies DataFrame too, as movies=)" if cached_frame(movies) else
                       f" (its movies file too: data.movies={movies!r})"))
        # a DataFrame's text ids (its dtype says them: 'u1') read as text where data.id_type is not set: the default,
        # int, refuses them (a notebook review; Surprise, LensKit and implicit take any ids)
        text_ids = set_explicit(cfg, "data.id_type", "auto") if (frame is not None or movies_frame is not None
                                                                  or held) and not cfg.is_set("data.id_type") else None
        if not overwrite and (reused(cfg) or text_ids is not None and reused(text_ids)):
            return load_dataset(cfg.data.prepared)
        from embedrec.data.textfiles import NAMED

        framed = [(f, kind) for f, kind in ((frame, RATINGS_FRAME), (movies_frame, MOVIES_FRAME)) if f is not None]
        framed += [(f, kind) for kind, f in held.items()]
        for f, kind in framed:
            NAMED[str(f)] = kind.name
        try:
            try:
                prepare(cfg, overwrite=overwrite, progress=progress)
            except DataError as e:
                if text_ids is None or not getattr(e, "text_ids", False):
                    raise
                logging.getLogger("embedrec").info(
                    "note: the DataFrame's ids are text: read as text ids, kept as written, as data.id_type=auto "
                    "reads them (set data.id_type=int to refuse them)")
                prepare(text_ids, overwrite=overwrite, progress=progress)
        except DataError as e:
            if not framed:
                raise
            for f, kind in framed:
                e = about_the_frame(e, f, kind)
            raise e from None
        finally:
            for f, _ in framed:
                NAMED.pop(str(f), None)
    except BaseException:  # no dataset records them (a notebook review: every failed call left one), unless this
        # call published its dataset (current moved on) before it stopped: a Ctrl-C while older generations were
        # pruned removed the file the new dataset names (a review)
        if folder is None or current_generation(folder) in (None, before):
            forget(made)
        raise
    return load_dataset(cfg.data.prepared)


def reused(cfg: Config) -> bool:
    """Whether ``er.ingest`` without ``overwrite`` finds the dataset it would write at cfg.data.prepared already
    there: ingested from the same data (the SHA-256 its manifest records of each input, as the files are now) with
    the same data.* and split.* settings (``ingestion.ingested_alike``), said in one line. A notebook's cell run
    again (a DataFrame's dataset is named by its content) returns it, where it was refused as an output there; other
    settings or data are still refused, with the advice."""
    import logging

    from embedrec.ingestion import ingested_alike

    folder = Path(cfg.data.prepared)
    if not folder.exists() or not ingested_alike(folder, cfg):
        return False
    logging.getLogger("embedrec").info("reused dataset '%s': ingested from the same data with the same settings (overwrite=True ingests it "
             "again)", folder)
    return True


def load_dataset(path: str | Path | None = None, cfg: Config | None = None) -> Dataset:
    """A prepared dataset opened again (what ``er.ingest`` returned, in a later session): ``path``, default
    cfg.data.prepared (the config ``embedrec`` reads where None). Its splits with their ids: ``split_frame(name)``;
    ``er.train(ds, cfg)`` trains on it. Nothing is written (a review: reopening one took ``ingest`` with
    ``overwrite=True``, which rewrote the data a run depends on, or an internal import)."""
    from embedrec.data.dataset import load_dataset as _load

    if path is not None:
        path_argument(path, "path", "load_dataset", "er.load_dataset(None, cfg) opens cfg.data.prepared")
    cfg = config_argument(cfg, "load_dataset")
    return _load(path if path is not None else cfg.data.prepared, split_method=cfg.split.method)


def ingest_config(source: str | None = None, cfg: Config | None = None, *, output: str | Path | None = None,
                  call: str = "ingest", movies: str | Path | None = None, test: str | Path | None = None,
                  valid: str | Path | None = None) -> Config:
    """The config ``ingest(source, cfg, output=output, movies=movies, test=test, valid=valid)`` works with:
    ``source`` as data.source, ``movies`` as data.movies, ``test`` and ``valid`` as data.test_source and
    data.valid_source (with split.method=given, where the config sets no method) and ``output`` as data.prepared
    where given (``embedrec ingest`` reads the dataset's folder from it before it writes)."""
    from embedrec.config import set_explicit

    cfg = config_argument(cfg, call)
    for value, name in ((source, "source"), (movies, "movies"), (test, "test"), (valid, "valid"),
                        (output, "output")):
        if value is not None:
            path_argument(value, name, call, "er.ingest(None, cfg) reads cfg.data.source")
    if source is not None:
        cfg = set_explicit(cfg, "data.source", str(source))
    if movies is not None:
        cfg = set_explicit(cfg, "data.movies", str(movies))
    if (test is not None or valid is not None) and not cfg.is_set("split.method"):
        cfg = set_explicit(cfg, "split.method", "given")
    for value, key in ((test, "data.test_source"), (valid, "data.valid_source")):
        if value is not None:
            cfg = set_explicit(cfg, key, str(value))
    if output is not None:
        cfg = set_explicit(cfg, "data.prepared", str(output))
    from embedrec.fsutil.outputs import through_missing_key

    return through_missing_key(cfg, "data.prepared")  # 'a/../x' with no 'a': 'x', made and named (a review)


def ingested_with(prepared) -> tuple[str | None, str | None, list[str]]:
    """(its source as data.source named it, that source as a path from anywhere, the non-default data.* and
    split.* settings as key=value, its movies file first as a path from anywhere: config_ingest.recorded_movies) of the
    dataset at ``prepared``, from its manifest; (None, None, []) where it cannot be read. What a command that
    ingests it again repeats (``embedrec ingest``'s refusal, train's advice)."""
    import json

    from embedrec.config_ingest import recorded_ingest_sets, recorded_movies
    from embedrec.data.layout import MANIFEST

    try:
        manifest = json.loads((Path(prepared) / "current" / MANIFEST).read_text(encoding="utf-8"))
        name = manifest.get("source")
        path = manifest.get("source_path") or name
        # where the data is, as the source, but the titles and genres are lost without it (a first-hour review)
        movies = recorded_movies(manifest)
        sets = ([f"data.movies={movies}"] if movies else []) + recorded_ingest_sets(manifest.get("config") or {})
    except (OSError, ValueError, AttributeError):
        return None, None, []
    return (name if isinstance(name, str) else None), (path if isinstance(path, str) and path else None), sets


def other_source(cfg: Config) -> str | None:
    """The source the dataset at cfg.data.prepared was ingested from, where data.source was not given (its
    default, ML-100K, would be read) and that dataset's source is another: what ``ingest --overwrite`` with no
    SOURCE refuses (a first-hour pass: following train's advice it read ML-100K into a click log's folder)."""
    if cfg.is_set("data.source"):
        return None
    name, path, _ = ingested_with(cfg.data.prepared)
    return None if name == cfg.data.source else path  # (that release again, or no dataset there yet: None)


def prepare(cfg: Config, *, overwrite: bool = False, progress: bool = False) -> dict:
    """``ingest``'s work without loading the result (what ``embedrec ingest`` calls): read cfg.data.source,
    clean, split, write cfg.data.prepared; returns the summary the command prints. A DataFrame's cache file it
    reads (data.source or data.movies) counts as used (``data.frames.mark_read``): the cache keeps it."""
    from embedrec.data.frames import mark_read
    from embedrec.ingestion import ingest as run_ingest
    from embedrec.worker_pool import refuse_in_spawned_main

    refuse_in_spawned_main("er.ingest")
    overwrite, progress = flag(overwrite, "overwrite", "prepare"), flag(progress, "progress", "prepare")
    cfg = config_argument(cfg, "prepare")
    mark_read(cfg.data.source, cfg.data.movies)  # ingest -c, cross-validate's folds: a read keeps it (a review)
    return run_ingest(cfg.data, cfg.split, output=cfg.data.prepared, overwrite=overwrite, progress=progress,
                      full_config=cfg.to_dict())


def train(ds: Dataset | None = None, cfg: Config | None = None, *, progress: bool = False) -> TrainedModel:
    """Fit on ``ds`` (a Dataset or its directory; default cfg.data.prepared) as ``embedrec train`` does: select
    the epoch on valid, refit on train+valid when train.refit, evaluate. Nothing is published: checkpoints go
    to a temporary folder; call ``.save(run_dir)`` on the result. What the command says of the figures (a best
    epoch at train.epochs, a sampled evaluation, a model behind its baseline, ...: ``figure_notes.train_notes``) is
    logged on the ``embedrec`` logger."""
    import tempfile

    from embedrec.train_workflow import log_train_notes, train_model
    from embedrec.worker_pool import refuse_in_spawned_main

    refuse_in_spawned_main("er.train")
    progress = flag(progress, "progress", "train")

    keeps = ("er.train keeps nothing (it trains in a temporary folder); for training that can be resumed, use "
             "embedrec.api.train_run(cfg), then train_run(cfg, resume=True)")
    try:
        from embedrec.data.dataset import Dataset, load_dataset

        if not isinstance(ds, Dataset) and ds is not None:
            path_argument(ds, "ds", "train", "er.train(None, cfg) trains on cfg.data.prepared")
        cfg = config_argument(cfg, "train")
        if not isinstance(ds, Dataset):
            ds = load_dataset(ds if ds is not None else cfg.data.prepared, split_method=cfg.split.method)
        # the model records the dataset it trained on (its config.yaml, save()'s default run.dir), not the
        # config's: er.train(er.ingest(src, cfg, output=OTHER), cfg) trains on OTHER
        cfg = _naming(cfg, ds)
        with tempfile.TemporaryDirectory(prefix="embedrec-train-") as work:
            model = train_model(ds, cfg, Path(work), progress=progress)
    except Interrupted as e:  # its checkpoint was in the temporary folder, removed as this left
        where = e.where or f"training {how_stopped(e.signum)}"
        raise Interrupted(f"{where}: {keeps}", terminated=e.signum, saved=False, where=where) from None
    except KeyboardInterrupt as e:  # outside the epochs (loading, the final evaluation)
        term = stop_signal(e)
        raise Interrupted(f"training {how_stopped(term)}: {keeps}", terminated=term,
                          saved=False) from None
    # what embedrec train says of the figures (a review: said by the CLI alone, so a notebook never saw them)
    log_train_notes(model.metrics, cfg, lambda n: f"er.train(ds, cfg.updated({{'train.epochs': {n}}})), which "
                    "starts again (embedrec.api.train_run(cfg, resume=True) goes on from a run's checkpoint)")
    return model


def _naming(cfg: Config, ds) -> Config:
    """``cfg`` with data.prepared (and data.source) naming the Dataset ``ds``, where it names another folder."""
    if ds.path is None or Path(ds.path).resolve() == Path(cfg.data.prepared).resolve():
        return cfg
    changed = {"data.prepared": str(ds.path)}
    if isinstance(ds.manifest.get("source"), str) and ds.manifest["source"]:
        changed["data.source"] = ds.manifest["source"]
    return cfg.updated(changed)


def open(run_dir: str | Path | None = None, cfg: Config | None = None) -> Model:  # noqa: A001 (er.open, as the issue spells it)
    """A Model over a trained run's artifacts (default cfg.run.dir). Imports numpy only (FAISS for an approximate index)."""
    if run_dir is not None:
        path_argument(run_dir, "run_dir", "open", "er.open(None, cfg) opens cfg.run.dir")
    # cfg None: the config the CLI would read ($EMBEDREC_CONFIG, else ./embedrec.yaml, else the defaults), so its
    # recommend.* settings (k, foldin_recency, ...) answer as `embedrec recommend` does
    from embedrec.serve.recommender import Recommender

    cfg = config_argument(cfg, "open")
    if run_dir is None:
        run_dir = cfg.run.dir
    # where neither the run nor the dataset train would read is, say ingest, then train (a review: --run runs/foo
    # in an empty folder still said 'run train', which then failed with 'run ingest')
    return Model(Recommender.open(run_dir, cfg.recommend, cfg.data.prepared))


# ----------------------------------------------------------------------------------------- the run's other commands
def _write_outside_tune_dir(write, cfg: Config) -> None:
    """UsageError where tune-dims' ``write`` lies inside the folder its sweep keeps (tune.dir, else RUN/tune): a
    red team's `--write runs/t/tune/tuned.yaml` was written, and the next sweep refused its own folder as holding a
    file tune-dims did not write."""
    import os

    from embedrec.run_layout import TUNE_DIR

    folder = os.path.realpath(cfg.tune.dir or Path(cfg.run.dir) / TUNE_DIR)
    if os.path.realpath(write).startswith(folder.rstrip(os.sep) + os.sep):
        raise UsageError(f"«--write|write» {write}: inside the folder the sweep keeps its trials in ('{folder}'), "
                         "which holds tune-dims' own files alone; write the config beside it, e.g. «--write "
                         "tuned.yaml|write='tuned.yaml'»")


def export_run(cfg: Config | None = None, run_dir: str | Path | None = None, *, to: str | None = None,
               output: str | Path | None = None, topk_all: str | Path | None = None, k: int | None = None,
               plot: str | Path | None = None, plot_method: str | None = None, overwrite: bool = False,
               sample: int | None = None, sample_users: int = 0, base_url: str | None = None,
               progress: bool = False, diversify: float | None = None) -> list[dict] | None:
    """``embedrec export``: the run (default cfg.run.dir) opened as ``open`` does and written as ``Model.export``
    (``to`` into the folder ``output``), ``Model.topk_all`` and ``Model.plot_map`` write it, in that order; every
    request is checked before anything is written (the plot's and the top-K's targets, and under torchrun, where the ranks
    share ``topk_all``, that nothing else is asked). An option for an output not asked for (``k`` without
    ``topk_all``, ``sample`` without ``to="projector"``, ...) is a UsageError (:func:`export_misapplied`), not
    ignored. ``plot_method``: 'pca' (None), 'tsne' or 'umap'. One dict per output; None on a torchrun rank other
    than 0, where rank 0 alone reports. ``diversify``: ``topk_all``'s lists re-ranked (``Model.topk_all``)."""
    from embedrec.device import secondary
    from embedrec.export import plot_target
    from embedrec.export_topk import topk_target
    from embedrec.models_offline import one_process

    if not (to or topk_all or plot):
        raise UsageError("nothing to export: give «--to FORMAT -o DIR|to=FORMAT with output=DIR», «--topk-all FILE|"
                         "topk_all=FILE», or «--plot FILE.png|plot=FILE.png»")
    if to and not output:
        raise UsageError(f"{marked(f'--to {to}', f'to={to!r}')} needs «-o/--output DIR|output=DIR»")
    why = export_misapplied(to=to, output=output, topk_all=topk_all, k=k, plot=plot, plot_method=plot_method,
                            sample=sample, sample_users=sample_users, base_url=base_url, diversify=diversify)
    if why is not None:
        raise UsageError(why)
    if diversify is not None:  # refused before anything is written
        from embedrec.serve.diversify import lambda_arg

        diversify = lambda_arg(diversify)
    overwrite, progress = flag(overwrite, "overwrite", "export_run"), flag(progress, "progress", "export_run")
    cfg = config_argument(cfg, "export_run")
    _distinct_outputs({"«-o/--output|output»": output if to else None, "«--topk-all|topk_all»": topk_all,
                       "«--plot|plot»": plot})
    if plot:  # before the export and the top-K have written anything
        plot_target(plot, overwrite)
    if topk_all:  # before the export has written anything (a review: a refused --topk-all left -o written)
        topk_target(topk_all, overwrite)
    if to or plot:
        one_process("export_run")
    results: list[dict] = []
    try:
        with open(run_dir, cfg) as model:
            if to:
                results.append(model.export(to, output, overwrite=overwrite, sample=sample, sample_users=sample_users,
                                            base_url=base_url))
            if topk_all:
                results.append(model.topk_all(topk_all, k, overwrite=overwrite, device=cfg.train.device,
                                              progress=progress, diversify=diversify))
                if secondary():
                    return None
            if plot:
                results.append(model.plot_map(plot, plot_method or "pca", overwrite=overwrite))
    except BaseException as e:  # an output written before a later one failed or a signal came: named on the error
        if results:  # (a red team: 'nothing half-written was left behind', and the rerun refused as existing)
            import contextlib

            with contextlib.suppress(AttributeError, TypeError):
                e.published = [str(r.get("output") or r.get("topk_all") or r.get("plot")) for r in results]
        raise
    return results


def _distinct_outputs(targets: dict) -> None:
    """UsageError where two outputs of one export are the same path or one lies inside the other (a red team:
    '--to npy -o c7 --topk-all c7 --overwrite' replaced the npy files with the top-K and reported both written;
    without --overwrite it left the npy files and failed)."""
    import os

    given = [(name, os.path.abspath(os.fsdecode(value))) for name, value in targets.items()
             if isinstance(value, (str, bytes, os.PathLike)) and os.fsdecode(value)]
    for i, (a, pa) in enumerate(given):
        for b, pb in given[i + 1:]:
            if pa == pb or pb.startswith(pa.rstrip(os.sep) + os.sep) or pa.startswith(pb.rstrip(os.sep) + os.sep):
                raise UsageError(f"{a} and {b} are the same path, or one holds the other; give each output a "
                                 "path of its own")


def export_misapplied(*, to: str | None = None, output=None, topk_all=None, k: int | None = None, plot=None,
                      plot_method: str | None = None, sample: int | None = None, sample_users: int = 0,
                      base_url: str | None = None, diversify: float | None = None) -> str | None:
    """The first of ``export_run``'s options given for an output not asked for, said in «CLI|library» terms
    (``«-k|k» applies to «--topk-all|topk_all» only``), or None. A request with nothing to export, or ``to``
    without ``output``, is None here: export_run refuses those first. The CLI asks this before it calls
    export_run, to say it as click's own option errors."""
    if not (to or topk_all or plot) or (to and not output):
        return None
    projector = "«--to projector|to='projector'»"
    for option, given, applies, where in (("«--sample|sample»", sample is not None, to == "projector", projector),
                                          ("«--base-url|base_url»", base_url is not None, to == "projector", projector),
                                          ("«--sample-users|sample_users»", bool(sample_users), to == "projector",
                                           projector),
                                          ("«-o/--output|output»", output is not None, to, "«--to|to»"),
                                          ("«-k|k»", k is not None, topk_all, "«--topk-all|topk_all»"),
                                          ("«--diversify|diversify»", diversify is not None, topk_all,
                                           "«--topk-all|topk_all»"),
                                          ("«--plot-method|plot_method»", plot_method is not None, plot, "«--plot|plot»")):
        if given and not applies:
            return f"{option} applies to {where} only"
    return None


def tune_dims(cfg: Config | None = None, *, dataset: Dataset | str | Path | None = None,
              dims: Iterable[int] | None = None,
              weight_decays: Iterable[float] | None = None, tolerance: float | str | None = None, fresh: bool = False,
              write: str | Path | None = None, overwrite: bool = False, config_file: str | Path | None = None,
              progress: bool = False) -> dict:
    """``embedrec tune-dims``: train one model per dimension (``dims``, default tune.dims, with the fourth-root
    value added) and weight decay (``weight_decays``, default tune.weight_decays) on the train split, score each on
    valid, and choose the smallest dimension within ``tolerance`` (a share, e.g. 0.01; default tune.tolerance, whose
    auto is train.als_dims' rule for the als model, 0.5%: training.dims.DIM_GAIN, and 0, the best, for the others)
    of the best; the test metric is reported, never used. The trials run in worker processes into tune.dir (default run.dir/tune), where finished ones are kept
    and reused by the next call unless ``fresh=True``; tune.json and tune.png record them there. ``dataset``: the
    Dataset (or its folder) to sweep on, as ``er.train(ds, cfg)`` takes it (default cfg.data.prepared); give
    ``cfg`` as you trained with it, not a TrainedModel's ``config``, which holds what train chose (``als_reg``
    where cfg said auto) and would keep it in every trial.

    Returns {'trials': [...], 'chosen': {the chosen trial}, 'rule' (how it was chosen: 'source' auto or given, the
    'tolerance' share, the 'best' trial's dim, weight_decay and valid_metric; tune.json records it too), 'metric',
    'fourth_root', 'current' (the config's model.dim, always a trial), 'current_config' (the config as it is, always
    a trial, at its own weight decay too: its 'dim', 'weight_decay' (None: the config's own), 'valid_metric' and
    'config', how the report names it; ``tune.current_note(res)`` says it beside the choice), 'results', 'plot'}.
    ``write``: also write a copy of the config with the choice to that file (checked before the sweep; an
    existing file is replaced only when tune-dims wrote it, or with ``overwrite=True``); ``config_file``: the
    file ``cfg`` was read from, never written over and named in the new file's header. Ctrl-C (or SIGTERM where
    the caller takes it as one) stops the workers and raises ``Interrupted``: the finished trials are kept."""
    import numbers

    from embedrec.tune import check_write_target, current_note, describe_choice, sweep, write_choice
    from embedrec.worker_pool import refuse_in_spawned_main

    refuse_in_spawned_main("er.tune_dims")
    fresh, overwrite, progress = (flag(v, name, "tune_dims") for v, name in ((fresh, "fresh"), (overwrite, "overwrite"),
                                                                            (progress, "progress")))
    cfg = config_argument(cfg, "tune_dims")
    if dataset is not None:  # a path is named as it is (the trials load it); a Dataset by its folder
        from embedrec.data.dataset import Dataset as _Dataset

        if isinstance(dataset, _Dataset):
            cfg = _naming(cfg, dataset)
        else:
            path_argument(dataset, "dataset", "tune_dims", "er.tune_dims(cfg, dataset=ds) sweeps on ds")
            cfg = cfg.updated({"data.prepared": str(dataset)})
    from embedrec.fsutil.outputs import through_missing_key

    # run.dir=a/../x, no 'a': x, where the sweep goes (tune.sweep says it too) and the written config's run beside it
    cfg = through_missing_key(through_missing_key(cfg, "run.dir"), "tune.dir")
    given = {}
    for name, values, kind in (("dims", dims, int), ("weight_decays", weight_decays, float)):
        if values is None:
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise UsageError(f"tune_dims: {name} must be a list of numbers, e.g. {name}=[16, 32, 64], not "
                             f"{type(values).__name__}")
        values = list(values)
        if not values:  # a review: [] swept the default dimensions, where the CLI's --dims '' is refused
            raise UsageError(f"tune_dims: {name}=[] names nothing to sweep; give at least one value, or None for "
                             f"tune.{name}")
        if any(isinstance(v, bool) or not isinstance(v, numbers.Integral if kind is int else numbers.Real)
               for v in values):
            raise UsageError(f"tune_dims: {name}={shorten(repr(values), 60)}: give a list of "
                             f"{'whole numbers, e.g. [16, 32, 64]' if kind is int else 'numbers, e.g. [1e-4, 1e-3]'}")
        given[name] = [kind(v) for v in values]
    if tolerance is not None and tolerance != "auto" and (isinstance(tolerance, bool) or
                                                          not isinstance(tolerance, numbers.Real)):
        raise UsageError(f"tune_dims: tolerance must be a share such as 0.01, or 'auto', not "
                         f"{type(tolerance).__name__}")
    for value, name in ((write, "write"), (config_file, "config_file")):
        if value is not None:
            path_argument(value, name, "tune_dims", "er.tune_dims(cfg, write='tuned.yaml')")
    config_file = None if config_file is None else str(config_file)
    if write is not None:  # before the sweep, not after its hours
        check_write_target(write, config_file, overwrite)
        _write_outside_tune_dir(write, cfg)
    try:
        res = sweep(cfg, given.get("dims"), given.get("weight_decays"), tolerance, fresh, progress)
    except Terminated as e:  # outside the trials (loading the dataset, the plot): each leaves nothing half-written
        raise Interrupted(f"tune-dims {how_stopped(e.signum)}: nothing half-written was left behind; rerun the same "
                          "command to continue", terminated=e.signum) from None
    if write is not None:
        said, keep = current_note(res)
        write_choice(cfg, res["chosen"], write, config_file, overwrite, f"{describe_choice(res)}; {said}", keep)
    return res


def verify_files(path: str | Path | None = None, cfg: Config | None = None) -> dict:
    """``embedrec verify``: hash every file of a run (its current model; default cfg.run.dir), one of its
    artifacts-* folders, or a prepared dataset against the SHA-256 its manifest records, and refuse a file the
    manifest does not list. Returns {'what': 'run' or 'dataset', 'path', 'files', 'bytes'}; ArtifactError names the
    first file that does not match and how to make it again."""
    from embedrec.verify import verify_path

    if path is None:
        path = config_argument(cfg, "verify_files").run.dir
    else:
        path_argument(path, "path", "verify_files", "er.verify_files(None, cfg) checks cfg.run.dir")
    return verify_path(path)


def rebuild_index(run_dir: str | Path | None = None, cfg: Config | None = None, *, progress: bool = False) -> dict:
    """``embedrec index rebuild``: build a trained run's FAISS indexes again from its embeddings with cfg.index's
    settings (e.g. ``cfg.updated({"index.kind": "hnsw"})``), published as a new model folder of the run (default
    cfg.run.dir); the other files are carried over, each checked first. Returns the index's manifest entry (kind,
    settings, the measured recall). A Model opened before keeps answering from the folder it opened.
    ``progress=True`` shows bars on stderr over the files carried over, the movies indexed and the bytes hashed."""
    from embedrec.artifacts import rebuild_index as rebuild

    if run_dir is not None:
        path_argument(run_dir, "run_dir", "rebuild_index", "er.rebuild_index(None, cfg) rebuilds cfg.run.dir")
    progress = flag(progress, "progress", "rebuild_index")
    cfg = config_argument(cfg, "rebuild_index")
    return rebuild(run_dir if run_dir is not None else cfg.run.dir, cfg.index, progress)


def update_users(run_dir: str | Path | None = None, ratings: str | Path | pd.DataFrame | None = None,
                 cfg: Config | None = None, *,
                 strict: bool = False, new_users: bool = True, new_movies: bool = False,
                 progress: bool = False) -> dict:
    """``embedrec update-users``: re-solve the users named in ``ratings`` (a ratings table's path, CSV, TSV or
    Parquet of user, movie, rating[, timestamp] rows, read as ingest reads one under cfg.data's reading settings,
    those the config does not give as the run's dataset was ingested: its columns' names, separator, header,
    encoding, decimal mark and data.missing; '-' for standard input) with those ratings, made since training, the
    movie factors fixed, as the run's own training solved them (or a pandas DataFrame of them, as ``ingest`` takes
    one: written to the cache as Parquet and read as that file), and publish them as the run's new model folder (default cfg.run.dir), so that
    ``recommend``, ``export --topk-all`` and ``explain`` serve them (implicit's ``partial_fit_users``;
    ``Model.recommend_new(user=...)`` is the same re-solve for one request, writing nothing). A user the run does
    not know is added (n_users grows), its vector the one ``recommend_new(rated=...)`` folds in from the same
    ratings; ``new_users=False`` refuses such a file instead (``NotFoundError``). An als run only (its train, in one
    process or on ranks, records the weights it needs); a rating of an unknown movie is left out with a warning, or refused with
    ``strict=True``, or, with ``new_movies=True``, the movie added (n_movies grows; implicit's ``partial_fit_items``):
    solved against the users the run knows that rated it, as training solves a movie, before the users are, the
    indexes built again over every movie. Under the run's writer lock (``Busy`` while another writer holds it); a Model opened before
    keeps answering from the folder it opened. Returns the ``updates`` record the manifest gains (its
    ``model_folder``: None where the file adds nothing, and nothing is published). ``progress=True`` shows bars on
    stderr over the users solved, the files carried over and the bytes written and hashed."""
    from embedrec.config_ingest import chosen_keys
    from embedrec.user_update import update_users as update
    from embedrec.user_update_settings import AS_INGESTED

    if run_dir is not None:
        path_argument(run_dir, "run_dir", "update_users", "er.update_users(None, 'since.csv', cfg) updates cfg.run.dir")
    strict = flag(strict, "strict", "update_users")
    new_users = flag(new_users, "new_users", "update_users")
    new_movies = flag(new_movies, "new_movies", "update_users")
    progress = flag(progress, "progress", "update_users")
    cfg = config_argument(cfg, "update_users")
    if ratings is None:
        raise UsageError("update_users: give the ratings file: er.update_users(run_dir, 'since.csv')")
    run_dir = run_dir if run_dir is not None else cfg.run.dir
    if type(ratings).__name__ != "DataFrame":
        return update(run_dir, ratings, cfg.data, strict=strict, new_users=new_users,
                      new_movies=new_movies, given=chosen_keys(cfg, AS_INGESTED), progress=progress)
    # a DataFrame of the ratings since training, as er.ingest takes one (a notebook review: a file alone): written
    # to the cache as Parquet and read as that file, its messages said of the frame
    from embedrec.data.frames import RATINGS_FRAME, about_the_frame, forget, frame_source
    from embedrec.data.textfiles import NAMED

    made: list[str] = []
    path = frame_source(ratings, cfg.data.cache_dir, made=made, call="update_users")
    NAMED[path] = RATINGS_FRAME.name
    try:
        return update(run_dir, path, cfg.data, strict=strict, new_users=new_users,
                      new_movies=new_movies, given=chosen_keys(cfg, AS_INGESTED), progress=progress)
    except DataError as e:
        forget(made)
        raise about_the_frame(e, path, RATINGS_FRAME) from None
    except BaseException:
        forget(made)
        raise
    finally:
        NAMED.pop(path, None)
