"""K-fold cross-validation (``er.cross_validate``, ``embedrec cross-validate``): every fold a normal dataset and run.

For fold i of K the source is ingested with ``split.folds=K``, ``split.fold=i`` into ``OUT/fold-i/data``
(:func:`api.prepare`: each user's ratings dealt into K folds, fold i the test split; ``data/split.py``), trained
into ``OUT/fold-i/run`` (:func:`api.train_run`: the selection, the refit and the publish, as ``embedrec train``),
and its test split evaluated as ``embedrec evaluate`` does (``Model.evaluate``: every user ranked). The folds'
metrics are then summarised, each model's and each metric's: the mean over the folds, their standard deviation
(n - 1) and its standard error, std / sqrt(K). ``OUT/cross_validation.json`` records, as each fold ends, the config,
the folds done and their summary.

A rerun with the same arguments goes on where the last one stopped: a fold whose dataset is there, ingested with
these settings, is not ingested again; a fold whose run is finished with this config keeps its model
(``publish.finished_run``), and one with checkpoints resumes from them (``train_run(resume=True)``), so a Ctrl-C
loses at most the epoch under way. A folder of another config's cross-validation is refused (``fresh=True`` redoes
every fold there).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING

from embedrec.data.layout import MANIFEST
from embedrec.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    Interrupted,
    UsageError,
    first_line,
    how_stopped,
    stop_signal,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    import pandas as pd

    from embedrec.config import Config

log = logging.getLogger("embedrec")
RESULTS = "cross_validation.json"
LOCK = ".lock"
DEFAULT_FOLDS = 5
# the config keys that change no fold's metrics, beside config_keys.METRIC_NEUTRAL's (where things go, how they are
# served, how fast: a rerun with another index or thread count goes on with the folds done): split.fold, which each
# fold sets
_NOT_COMPARED = ("split.fold",)
STATS = ("mean", "std", "se")


@dataclass
class CrossValidation:
    """What :func:`cross_validate` returns.

    ``folds``: one dict a fold, in order: ``fold`` (0-based, as split.fold), ``dataset`` and ``run`` (its folders),
    ``counts`` (the fold's train/valid/test rows), ``seconds`` (this call's time on the fold), ``kept`` (what a
    rerun kept: '', 'run' for a finished run, 'dataset' for its dataset alone) and ``metrics``: {model: {metric:
    value}} on the fold's test split, as ``Model.evaluate`` returns its ``splits['test']`` (the model and the
    baselines). ``summary``: {model: {metric: {'mean', 'std', 'se'}}} over the folds (std with n - 1, se = std /
    sqrt(K)). ``paired``: {baseline: {metric: {'folds', 'mean', 'std', 'se', 'tie'}}}, the model minus each
    baseline fold by fold (:func:`paired_folds`: the folds are the unit). ``config``: the settings that make the
    folds' metrics, flat ({'split.folds': 5, 'model.dim': 128, ...}; not the folders, index.*, recommend.*, tune.*
    or the thread count), as a rerun compares them. ``to_dict()``: all of it, what OUTPUT/cross_validation.json
    holds. ``rows()``: the per-fold and summary rows the command prints."""

    k: int
    output: Path
    folds: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)
    paired: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # a notebook review: the dataclass's repr ran to 17,421 characters
        metrics = self.summary.get("model", {})
        name = next((m for m in ("ndcg@10", "rmse") if m in metrics), next(iter(metrics), None))
        headline = f", model {name} {metrics[name]['mean']:.4f} (se {metrics[name]['se']:.4f})" if name else ""
        folds = f"{self.k} folds" if len(self.folds) == self.k else f"{len(self.folds)} of {self.k} folds"
        return f"<CrossValidation: {folds} in '{self.output}'{headline}>"

    def rows(self, models: tuple[str, ...] | None = ("model",)) -> list[dict]:
        """Rows of fold (0 .. K-1, then 'mean', 'std', 'se'), model, and each metric; ``models``: those models'
        rows (None: every model the folds report, the baselines too, then 'model-BASELINE', the model minus each
        baseline: :attr:`paired`)."""
        names = list(self.summary) if models is None else [m for m in models if m in self.summary]
        differences = {f"model-{b}": d for b, d in self.paired.items()
                       if models is None or f"model-{b}" in models}
        out = [{"fold": f["fold"], "model": m, **f["metrics"][m]} for m in names for f in self.folds
               if m in f["metrics"]]
        out += [{"fold": f["fold"], "model": m, **{k: v["folds"][i] for k, v in d.items()}}
                for m, d in differences.items() for i, f in enumerate(self.folds)]
        for m in names:
            for stat in STATS:
                out.append({"fold": stat, "model": m, **{k: v[stat] for k, v in self.summary[m].items()}})
        for m, d in differences.items():
            for stat in STATS:
                out.append({"fold": stat, "model": m, **{k: v[stat] for k, v in d.items()}})
        return out

    def mean(self, metric: str, model: str = "model") -> tuple[float, float]:
        """(mean, standard error) of ``metric`` over the folds, e.g. ``cv.mean('ndcg@10')``."""
        try:
            s = self.summary[model][metric]
        except KeyError:
            have = ", ".join(sorted(self.summary.get(model, {}))) or "none"
            raise UsageError(f"mean: no metric {metric!r} of {model!r} in this cross-validation; it has {have}") from None
        return s["mean"], s["se"]

    def to_dict(self) -> dict:
        return {"config": self.config, "folds_k": self.k, "output": str(self.output),
                "seconds": round(self.seconds, 2), "folds": self.folds, "summary": self.summary,
                "paired": self.paired}


def summarise(folds: list[dict]) -> dict:
    """{model: {metric: {'mean', 'std', 'se'}}} over the folds' metrics (a metric every fold has; counts such as
    users_evaluated are left out). One fold: std and se are NaN."""
    out: dict = {}
    if not folds:
        return out
    models = [m for m in folds[0]["metrics"] if all(m in f["metrics"] for f in folds)]
    for m in models:
        names = [k for k, v in folds[0]["metrics"][m].items() if isinstance(v, (int, float)) and
                 not isinstance(v, bool) and not k.startswith(("users_", "rows_"))]
        stats = {}
        for name in names:
            values = [f["metrics"][m].get(name) for f in folds]
            if not all(isinstance(v, (int, float)) for v in values):
                continue
            stats[name] = _stats([float(v) for v in values])
        out[m] = stats
    return out


def paired_folds(folds: list[dict]) -> dict:
    """{baseline: {metric: {'folds': the model's value minus the baseline's, a fold each, then 'mean', 'std', 'se'
    of those K differences (as :func:`summarise`'s) and 'tie': whether the mean is within two SE of 0 (None under
    2 folds)}}: every metric the model and a baseline both have in every fold. The folds are the unit here, not
    the users (each fold's users are all the users, scored on other ratings)."""
    out: dict = {}
    if not folds:
        return out
    first = folds[0]["metrics"]
    for b in (m for m in first if m != "model" and all(m in f["metrics"] and "model" in f["metrics"] for f in folds)):
        rows: dict = {}
        for name in first[b]:
            if name.startswith(("users_", "rows_")):
                continue
            pairs = [(f["metrics"]["model"].get(name), f["metrics"][b].get(name)) for f in folds]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for p in pairs for v in p):
                continue
            d = [float(a) - float(c) for a, c in pairs]
            stats = _stats(d)
            rows[name] = {"folds": d, **stats,
                          "tie": bool(abs(stats["mean"]) <= 2 * stats["se"]) if math.isfinite(stats["se"]) else None}
        if rows:
            out[b] = rows
    return out


def _stats(values: list[float]) -> dict:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return {"mean": mean, "std": float("nan"), "se": float("nan")}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "std": std, "se": std / math.sqrt(n)}


def compared_config(cfg: Config) -> dict:
    """The flat config a cross-validation folder is recorded with: every key that can change a fold's metrics."""
    import json

    from embedrec.config_keys import flatten, metric_config

    kept = flatten(metric_config(cfg.to_dict(), _NOT_COMPARED))
    return json.loads(json.dumps(kept, default=str))  # as the record holds it


def _same_but_paths(was, now: dict) -> bool:
    """Whether a record differs from ``now`` only in how data.source or data.movies names a file that is the same
    one (ingestion.same_file_alike); whether its bytes are the same is the source check's (the inputs' SHA-256)."""
    from embedrec.ingestion import same_file_alike

    keys = ("data.source", "data.movies")
    return isinstance(was, dict) and same_file_alike(was, keys) == same_file_alike(now, keys)


def _floor_resolved_alike(was, now: dict, out: Path) -> bool:
    """Whether a record differs from ``now`` only in data.min_rating, ``now``'s auto where the record holds the
    value auto made of fold 0's data (its dataset's manifest): a cross-validation made before auto was the default
    (null then) is the same one (a review: refused after the upgrade)."""
    import json

    key = "data.min_rating"
    if not isinstance(was, dict) or now.get(key) != "auto" or key not in was or \
            {k: v for k, v in was.items() if k != key} != {k: v for k, v in now.items() if k != key}:
        return False
    try:  # (DATASET/manifest.json: the file itself, or data.layout's link to its current generation's)
        return json.loads((out / "fold-0" / "data" / MANIFEST).read_text()).get("min_rating") == was[key]
    except (OSError, ValueError, AttributeError):
        return False


def _differences(saved: dict, now: dict) -> str:
    def shown(v) -> str:
        import json

        return v if isinstance(v, str) else json.dumps(v, default=str)

    keys = sorted(k for k in set(saved) | set(now) if saved.get(k, "<none>") != now.get(k, "<none>"))
    parts = [f"{k} {shown(saved.get(k))}, now {shown(now.get(k))}" for k in keys[:3]]
    return "; ".join(parts) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


def fold_config(cfg: Config, output: Path, k: int, i: int) -> Config:
    """The config of fold ``i``: split.folds, split.fold, and its dataset and run folders under ``output``."""
    return cfg.updated({"split.folds": k, "split.fold": i, "data.prepared": str(output / f"fold-{i}" / "data"),
                        "run.dir": str(output / f"fold-{i}" / "run")})


def default_output(cfg: Config) -> Path:
    """Where a cross-validation goes without ``output``: beside the config's run, ``RUN-cv`` (runs/ml-100k-cv)."""
    run = Path(cfg.run.dir)
    return run.with_name(run.name + "-cv")


def cross_validate(source: str | Path | pd.DataFrame | None = None, cfg: Config | None = None, *,
                   folds: int | None = None, output: str | Path | None = None, ks=None, fresh: bool = False,
                   progress: bool = False, metrics=None) -> CrossValidation:
    """``embedrec cross-validate``: K-fold cross-validation of the model ``cfg`` trains. For each fold i of
    ``folds`` (default split.folds, else 5) the ``source`` (default cfg.data.source; a path, a release name or a
    DataFrame) is ingested with split.folds=K and split.fold=i (each user's ratings dealt at random into K folds,
    fold i the test split, valid drawn from the others) into ``output/fold-i/data``, trained into
    ``output/fold-i/run`` as ``train_run`` trains, and its test split evaluated as ``Model.evaluate`` does at
    ``ks`` (default train.eval_k). ``output`` defaults to the config's run.dir with '-cv' added (runs/ml-100k-cv).

    Returns a :class:`embedrec.crossval.CrossValidation`: ``.folds`` (each fold's folders, counts, seconds and
    metrics, the baselines' too), ``.summary`` ({model: {metric: {'mean', 'std', 'se'}}}), ``.mean('ndcg@10')``
    (mean, standard error) and ``.rows()``. Called again with the same arguments it goes on where it stopped
    (finished folds kept, an interrupted fit resumed); ``fresh=True`` redoes every fold. ``metrics``: the metric
    names (without @K: 'ndcg', 'recall', as ``embedrec cross-validate --metrics`` takes them) its lines on stderr
    give, each fold's and the summary's (default: rmse and mae for an explicit model, ndcg@10 and recall@10); the
    result holds every metric whatever they are."""
    from embedrec import api
    from embedrec.argcheck import flag
    from embedrec.data.frames import forget, frame_source

    fresh, progress = flag(fresh, "fresh", "cross_validate"), flag(progress, "progress", "cross_validate")
    shown = _metric_names(metrics)
    cfg = api.config_argument(cfg, "cross_validate")
    made: list[str] = []  # the cache file of a DataFrame this call wrote, which its failure removes
    try:
        if type(source).__name__ == "DataFrame":  # as er.ingest takes one: cached once, read by each fold
            source = frame_source(source, cfg.data.cache_dir, made=made, call="cross_validate")
        if source is not None and str(source) == "-" or source is None and cfg.data.source == "-":
            raise UsageError("«cross-validate|cross_validate» reads its source once a fold, and standard input can be "
                             "read once: give a "
                             "file (save the input first, e.g. «embedrec cross-validate ratings.csv|"
                             "er.cross_validate('ratings.csv')»)")
        k = _folds(folds, cfg)
        _check_split(cfg, k, folds is not None or cfg.split.folds is None)
        if cfg.split.folds != k:  # K is split.folds from here on: each later update of the config checks it so
            cfg = cfg.updated({"split.folds": k})
        cfg = api.ingest_config(source, cfg, call="cross_validate")
        if output is not None:
            api.path_argument(output, "output", "cross_validate", "er.cross_validate(source, cfg, output='runs/cv')")
        from embedrec.fsutil.outputs import through_missing

        # a '..' after a folder not there taken out with it, as every output's (a review: 'a/../cv' left an 'a')
        out = through_missing(Path(output) if output is not None else default_output(cfg))
        ks = _ks(ks)
        fold_config(cfg, out, k, 0)  # every key checked together (split.test, a time method) before a folder is made
        from embedrec.data.readers import check_source

        check_source(cfg.data)  # a missing source or movies file: said before the folder is made, as ingest says it
        _check_folder(out)
        from embedrec.fsutil.locks import locked_folder

        with locked_folder(out, "embedrec cross-validate", "choose another «--output|output»",
                           "choose another «--output|output»", LOCK):
            return _run(cfg, out, k, ks, fresh, progress, shown)
    except BaseException:  # as a failed er.ingest(df) does (a review: each failed call left one): the folds done
        # that record it as their source are no finished cross-validation, and the call again, which goes on from
        # them, writes it back under the same name (named by the frame's content)
        forget(made)
        raise


def command_config(path, overrides, folds: int | None) -> Config:
    """The config of ``embedrec cross-validate``: its -c file and --set values read as :func:`load_config` reads
    them, but its split keys checked as this cross-validation takes them (with ``folds``, its --folds, else
    split.folds, else 5, as K; :func:`cross_validate` checks them so too), and K set as split.folds. An ingest's
    config check would weigh split.valid against split.test, a key no fold uses (a review: --folds 10 with
    split.valid 0.85 was refused naming split.test, where split.folds=10 took it)."""
    from embedrec.config import load_unsplit

    cfg = load_unsplit(path, overrides)
    k = _folds(folds, cfg)
    _check_split(cfg, k, folds is not None or cfg.split.folds is None)
    return cfg.updated({"split.folds": k})


def _folds(folds, cfg: Config) -> int:
    from embedrec.config_checks import FOLDS_LIMIT, MAX_FOLDS

    if folds is None:
        k = cfg.split.folds or DEFAULT_FOLDS
        if k > MAX_FOLDS:  # (a config load_unsplit read: the folds not checked there)
            raise ConfigError(f"config key 'split.folds': {k} is above the maximum {MAX_FOLDS}: {FOLDS_LIMIT}")
        return k
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= MAX_FOLDS:
        above = f": {FOLDS_LIMIT}" if isinstance(folds, int) and folds > MAX_FOLDS else " (5 and 10 are usual)"
        raise UsageError(f"«--folds|folds» {folds!r}: expected a whole number of folds from 2 to {MAX_FOLDS}{above}")
    if cfg.split.folds is not None and cfg.split.folds != folds:
        raise ConfigError(f"config key 'split.folds' is {cfg.split.folds}, and «--folds|folds» {folds}; give one of them")
    return folds


def _check_split(cfg: Config, k: int, k_given: bool = True) -> None:
    """The split keys a cross-validation cannot take, said in its terms (the config's own check names split.folds,
    which the user did not give here); ``k_given``: K is the folds argument's (or its default), not split.folds."""
    from embedrec.config_checks import check_valid_share, kfold_conflict

    sp = cfg.split
    if "split.fold" in cfg.set_keys or sp.fold != 0:  # (a config file's fold: 0, as `embedrec config` writes every
        # key, is no choice; a review: --set split.fold=0 was taken without a word and split.fold=7 refused as an
        # ingest's key)
        raise ConfigError(f"config key 'split.fold' ({sp.fold}): «cross-validate|cross_validate» runs every fold, 0 to "
                          f"{k - 1}, each the test split in turn, so it takes no split.fold; leave split.fold out (to "
                          "train on one fold: ingest with split.folds and split.fold, then train)")
    conflict = kfold_conflict(sp, cfg.set_keys)  # split.folds' rule (config_checks._check_folds), said in its terms
    if conflict is not None:  # each of kfold_conflict's keys said (a KeyError where one is not: tested)
        raise ConfigError({
            "split.method": f"config key 'split.method' is {sp.method}: cross-validation deals each user's ratings at "
                            "random into the folds, and " + ("split.method=given holds out the rows the data gives" if
                                                     sp.method == "given" else
                                                     "a time split holds out one window (each user's latest ratings, "
                                                     "or every rating after a cut)") +
                            ", so it has no folds; cross-validate with "
                            "split.method=random, its default",
            "split.test": f"config key 'split.test' ({sp.test:g}): cross-validation's test split is each fold in turn, "
                          f"1/{k} of each user's ratings; leave split.test out («--folds|folds» sets the share)",
            "split.cold_movies": "config key 'split.cold_movies': its held-out movies would be test in every fold, so "
                                 "the folds would not partition the ratings; leave it at 0 to cross-validate",
        }[conflict])
    check_valid_share(sp.valid, k, "«--folds|folds»" if k_given else "split.folds")


def _metric_names(metrics) -> tuple[str, ...] | None:
    """The metrics argument: metric names without @K, as evaluate reports them (None: the default lines), read as
    ``Model.evaluate`` reads its own (``evaluate.metric_names_arg``)."""
    from embedrec.evaluate import metric_names_arg

    return metric_names_arg(metrics)


def _ks(ks) -> tuple[int, ...] | None:
    if ks is None:
        return None
    from embedrec.evaluate import check_ks

    return tuple(check_ks(ks))


def _check_folder(out: Path) -> None:
    """The output folder is new, empty, or a cross-validation's (its record, fold-N folders, hidden files): never a
    folder of the user's files, a run, or inside a run or dataset."""
    from embedrec.fsutil.outputs import refuse_foreign_files, refuse_inside_store

    refuse_inside_store(out / RESULTS, fix="choose another «--output|output»")
    refuse_foreign_files(out, lambda n: n == RESULTS or n.startswith("fold-") and n[5:].isdigit(), named="output",
                         writer="cross-validation", writes=f"it writes {RESULTS} and a fold-N folder for each fold "
                         "there", fix="choose another «--output|output»", where="«with -o|as output»")
    # a fold-N folder holds a fold's data/ and run/ alone (a review: a user's notes.txt in fold-1 was written beside)
    for fold in sorted(out.glob("fold-*")) if out.is_dir() else ():
        if fold.name[5:].isdigit() and fold.is_dir() and not fold.is_symlink():
            refuse_foreign_files(fold, lambda n: n in ("data", "run"), named="fold folder",
                                 writer="cross-validation", writes="a fold writes its data/ and run/ there",
                                 fix="choose another «--output|output»", where="«with -o|as output»")


def _run(cfg: Config, out: Path, k: int, ks, fresh: bool, progress: bool, shown=None) -> CrossValidation:
    from embedrec.data.dataset import has_manifest
    from embedrec.fsutil.files import link_loop, read_json, write_json
    from embedrec.fsutil.locks import confirm_held

    record = out / RESULTS
    compared = compared_config(fold_config(cfg, out, k, 0))
    if (record.exists() or link_loop(record) is not None) and not fresh:  # a loop: said by read_json, not replaced
        saved = read_json(record, "cross-validation record", "rerun with «--fresh|fresh=True» to redo its folds")
        was = saved.get("config") if isinstance(saved, dict) else None
        if was != compared and not _floor_resolved_alike(was, compared, out) and not _same_but_paths(was, compared):
            raise ConfigError(f"'{out}' holds a cross-validation of another config ({_differences(was or {}, compared)}): "
                              "rerun with the config it was made with, or with «--fresh|fresh=True» to redo its folds "
                              "there, or choose another «--output|output»")
        data = out / "fold-0" / "data"  # the same config, over other data: refused as another config is (a red
        # team: r.csv replaced, the rerun gave the old data's metrics, 'its run kept from an earlier run', exit 0)
        changed = _source_changed(_manifest(data), cfg.data) if has_manifest(data) else None
        if changed:
            raise ConfigError(f"'{out}' holds a cross-validation of other data ({changed}): rerun with "
                              "«--fresh|fresh=True» to redo its folds on the data as it is now, or choose another "
                              "«--output|output»")
    result = CrossValidation(k, out, config=compared)
    started = time.perf_counter()

    def save() -> None:
        confirm_held()
        result.summary = summarise(result.folds)
        result.paired = paired_folds(result.folds)
        result.seconds = time.perf_counter() - started
        write_json(record, result.to_dict())

    first: list = []  # the source files fold 1's dataset recorded (its manifest's inputs)

    def same_source(i: int, source, inputs) -> None:
        """Each fold's dataset read the source fold 1's did, checked before it is trained (a mean over two
        versions' folds is no figure): each equal to the first is each equal to every earlier one."""
        if not first:
            first.append(inputs)
        elif inputs != first[0]:
            raise DataError(_changed_during(out, source, first[0], inputs, i, k))

    log.info("cross-validation of %d folds into %s: each fold ingested, trained and evaluated in a folder of its own "
             "(fold-0 to fold-%d, named by its split.fold, from 0), a dataset and a run", k, out, k - 1)
    said_once = _OnceFilter()  # a warning of the source's reading said by each fold's ingest alike: said once (a
    logging.getLogger("embedrec").addFilter(said_once)  # first-hour review: 'skipped 1 line' three times in 3 folds)
    try:
        return _folds_run(cfg, out, k, ks, fresh, progress, shown, result, record, save, same_source)
    finally:
        logging.getLogger("embedrec").removeFilter(said_once)


class _OnceFilter(logging.Filter):
    """Lets each warning's text through once: the folds ingest one source, and its reading's warnings (a line
    skipped, rows dropped) are the same in each."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


def _folds_run(cfg, out: Path, k: int, ks, fresh: bool, progress: bool, shown, result, record, save,
               same_source) -> CrossValidation:
    """:func:`_run`'s loop over the folds, then its summary."""
    for i in range(k):  # (the record is written as each fold ends: a first fold that fails leaves no folder behind)
        fcfg = fold_config(cfg, out, k, i)
        t0 = time.perf_counter()
        # (human text counts from 1, 'fold 1 of 5'; the folders, split.fold and the results' 'fold' from 0: a
        # first-hour review read 'fold 0 of 0-4')
        log.info("fold %d of %d: into %s (split.fold=%d)", i + 1, k, out / f"fold-{i}", i)
        try:
            kept, counts = _fold(fcfg, fresh, progress, functools.partial(same_source, i, fcfg.data.source))
            metrics = _evaluate(fcfg, ks)
        except (KeyboardInterrupt, Interrupted) as e:
            signum = stop_signal(e)
            done = f"folds 1-{i} are done and kept" if i > 1 else "fold 1 is done and kept" if i else \
                "no fold is done yet"
            raise Interrupted(f"cross-validation {how_stopped(signum)} in fold {i + 1} of {k} ({done}; this fold's "
                              f"dataset and checkpoints, where written, are kept in {out / f'fold-{i}'}): rerun «the "
                              "same command|cross_validate with the same arguments» to go on from there",
                              terminated=signum) from None
        seconds = time.perf_counter() - t0
        test = metrics["splits"].get("test") or {}
        if "model" not in test:
            raise ArtifactError(f"the test split of fold {i + 1} of {k} in {fcfg.data.prepared} has no rows to score "
                                "(every test row dropped at ingest?); cross-validation needs each fold's test rows: "
                                "give each user more ratings, or fewer folds")
        result.folds.append({"fold": i, "dataset": fcfg.data.prepared, "run": fcfg.run.dir, "counts": counts,
                             "seconds": round(seconds, 2), "kept": kept, "metrics": test})
        save()
        log.info("fold %d of %d: %s (%.1fs%s)", i + 1, k, _headline(test["model"], result.summary, shown), seconds,
                 f"; its {kept} kept from an earlier run" if kept else "")
        if i == 0 and k > 1:  # the cost, once measured (a review: --folds 100000 ran 174 folds, 5.7 GB, unsaid)
            size = disk_bytes(out / "fold-0")
            took = f"{seconds:.1f}s and " if not kept else ""
            whole = f"{seconds * k:.0f}s and " if not kept else ""
            log.info("fold 1 took %s%s on disk: the %d folds about %s%s", took, size_text(size), k, whole,
                     size_text(size * k))
    save()
    log.info("%d folds in %.1fs: %s; results: %s", k, result.seconds, _summary_line(result.summary, shown), record)
    said = _paired_line(result.paired, result.summary, k, shown)
    if said:
        log.info("%s", said)
    return result


def disk_bytes(folder: Path) -> int:
    """The disk a folder's files take, as du counts it (allocated blocks, each file once, links not followed)."""
    total, seen = 0, set()
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                if (st.st_dev, st.st_ino) in seen or not S_ISREG(st.st_mode):
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
    return total


def size_text(n: float) -> str:
    """'31.2 MB', '1.4 GB' (binary units, as the other size lines say them)."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


class _FoldLines(logging.Filter):
    """Inside a fold, ingest's and train's INFO lines are left out unless the logger is at DEBUG (-v): K folds of
    selection lines would bury the cross-validation's own. Warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.INFO


@contextlib.contextmanager
def _quiet_fold():
    quiet = not log.isEnabledFor(logging.DEBUG)
    f = _FoldLines()
    if quiet:
        log.addFilter(f)
    try:
        yield
    finally:
        if quiet:
            log.removeFilter(f)


def _changed_during(out: Path, source, first, inputs, i: int, k: int) -> str:
    """The line for a fold whose dataset's recorded source files (``inputs``: {name: SHA-256}) are not fold 1's
    (``first``): the source was written while the folds were ingested, one after another (a red team: folds 1-2 of
    3 read 99,9xx ratings, fold 3 79,918 of a file replaced meanwhile, and the mean of the three was reported, exit
    0)."""
    first = first if isinstance(first, dict) else {}
    inputs = inputs if isinstance(inputs, dict) else {}
    name = next((n for n in sorted(set(first) | set(inputs)) if first.get(n) != inputs.get(n)), None)

    def said(fold: int, sha) -> str:
        return f"fold {fold} read it with SHA-256 {str(sha)[:12]}..." if sha else f"fold {fold} read the source " \
            "without it"

    what = f"'{name}': {said(i + 1, inputs.get(name))}, {said(1, first.get(name))}" if name else \
        f"fold {i + 1} recorded no source files, fold 1 did"  # (one of them read from a stream)
    return (f"the source '{source}' changed while the cross-validation in '{out}' ran ({what}), so its {k} folds "
            f"would mix two versions of the data, and fold {i + 1} is not trained; once the source is no longer "
            "written to, rerun with «--fresh|fresh=True» to redo every fold on it as it is then")


def _fold(fcfg: Config, fresh: bool, progress: bool, check=None) -> tuple[str, dict]:
    """Ingest and train one fold where it is not done; (what was kept: '', 'dataset' or 'run', the fold's row
    counts). ``check(inputs)``: called with the source files its dataset recorded (its manifest's ``inputs``) once
    it is ingested or kept, before it is trained."""
    from embedrec import api
    from embedrec.data.dataset import has_manifest
    from embedrec.publish import IndexDamaged, finished_run
    from embedrec.run_layout import has_checkpoint
    from embedrec.training.checkpoints import OtherCheckpoint
    from embedrec.training.loop import DamagedCheckpoint

    prepared = Path(fcfg.data.prepared)
    with _quiet_fold():
        manifest = _manifest(prepared) if has_manifest(prepared) else None
        same = manifest is not None and not fresh and _ingested_as(manifest, fcfg)
        if not same:
            api.prepare(fcfg, overwrite=prepared.exists(), progress=progress)
            manifest = _manifest(prepared)
        counts = {s: (manifest.get("split") or {}).get(s) for s in ("train", "valid", "test")}
        if check is not None:
            check(manifest.get("inputs"))
        again = False
        try:
            done = finished_run(fcfg) if same else None
        except IndexDamaged:  # its index alone damaged: the fold is trained again, not resumed (cross-validate
            done, again = None, True  # refuses a fold update-users changed, so nothing is lost; a review: 'nothing
            # to resume' named an option cross-validate has not)
        if done is not None and done[2]:  # its served model is no longer the trained one (a red team: update-users
            # re-solved a fold's users with its own test rows, and the rerun kept and scored it: ndcg 0.06 to 0.73)
            out = Path(fcfg.run.dir).parent.parent
            raise ArtifactError(f"fold {fcfg.split.fold + 1}'s run '{fcfg.run.dir}' was changed since cross-validate "
                                f"trained it ({done[2]}), so its test figures are not the fold's; rerun with "
                                f"«--fresh|fresh=True» to redo the folds in '{out}', or remove "
                                f"'{Path(fcfg.run.dir).parent}' to redo that fold alone")
        if done is not None:
            return "run", counts
        resume = same and has_checkpoint(fcfg.run.dir) and not again
        try:
            api.train_run(fcfg, resume=resume, progress=progress, notes=False)  # a fold's: the folds' own lines
        except DamagedCheckpoint as e:  # a kept fold's leftover checkpoint: the fold is redone, as cross-validate
            # can (a red team was told to 'train again without resuming', an option it has not)
            raise ArtifactError(f"{first_line(e).split('; train again')[0]}; rerun with «--fresh|fresh=True» to "
                                f"redo the folds, or remove '{Path(fcfg.run.dir).parent}' to redo that fold "
                                "alone") from None
        except OtherCheckpoint as e:  # a resume this call chose: said as the record's refusal is, with --fresh (a
            # red team: its record gone, another model.dim was told to 'train again without --resume', which
            # cross-validate has not)
            out = Path(fcfg.run.dir).parent.parent
            raise ConfigError(f"'{out}' holds a cross-validation of another config (fold {fcfg.split.fold + 1}'s "
                              f"checkpoint '{e.path}' was made with another {e.what}): rerun with the config it was "
                              "made with, or with «--fresh|fresh=True» to redo its folds there, or choose another "
                              "«--output|output»") from None
    return ("dataset" if same else ""), counts


def _manifest(prepared: Path) -> dict:
    from embedrec.fsutil.files import read_json

    path = prepared / "current" / MANIFEST
    return read_json(path if path.exists() else prepared / MANIFEST, "dataset manifest",
                     "rerun with «--fresh|fresh=True»")


def _ingested_as(manifest: dict, fcfg: Config) -> bool:
    """Whether a fold's dataset was ingested with this fold's data.* and split.* settings (where the data is kept
    aside but its source), from the source's files as they are now (:func:`_source_changed`)."""
    from embedrec.ingestion import same_settings

    return same_settings(manifest, fcfg) and _source_changed(manifest, fcfg.data) is None


def _source_changed(manifest: dict, data) -> str | None:
    """What differs between the source files a fold's dataset was ingested from (its manifest's ``inputs``: each
    file's SHA-256, by name) and those ingest would read now (``readers.source_files``): a file new beside them
    ("'rel/movies.csv' is new since its folds were ingested, which read the source without it"; a red team: a
    movies.csv put in a release's folder was never looked at), one gone, or one changed ("'r.csv' changed since its
    folds were ingested: SHA-256 ..."); None where nothing does, or nothing can be compared (a release by its name,
    read from the cache whose copy is checked as it is read; a stream; a dataset from before inputs were
    recorded). ``data``: the DataConfig. Each file is hashed once while it is unchanged (:func:`_sha256_of`): a
    rerun reads a 1 GB source once, about 1-2 s, whatever K."""
    from embedrec.data.readers import source_files

    recorded = manifest.get("inputs")
    if not isinstance(recorded, dict) or not recorded:
        return None
    path = Path(str(data.source)).expanduser()
    try:
        found = source_files(data)
    except (DataError, OSError):  # a release's folder whose layout is not found now: its files as recorded
        found = [path / n for n in recorded]
    if found is None:
        return None
    files = {p.name: p for p in found}
    new = sorted(set(files) - set(recorded))
    if new:
        return f"'{files[new[0]]}' is new since its folds were ingested, which read the source without it"
    for name, want in sorted(recorded.items()):
        p = files.get(name)
        if p is None:  # read then, and not now (gone, or the folder read as another layout)
            where = path if path.is_dir() else path.parent
            return f"'{where / name}' is gone since its folds were ingested"
        try:
            st = os.stat(p)
        except FileNotFoundError:
            return f"'{p}' is gone since its folds were ingested"
        except OSError:
            continue  # (not to be read: the ingest that follows says so)
        if not S_ISREG(st.st_mode):
            continue
        try:
            now = _sha256_of(str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            continue
        if now != want:
            return f"'{p}' changed since its folds were ingested: SHA-256 {str(want)[:12]}..., now {now[:12]}..."
    return None


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, *stat_key) -> str:
    """A source file's SHA-256, once for each ``stat_key`` (device, inode, size, mtime, ctime: what moves when it is
    written or replaced): the folds of one call, and the reruns of a notebook, hash it once."""
    from embedrec.fsutil.integrity import sha256_file

    return sha256_file(path)


def _evaluate(fcfg: Config, ks) -> dict:
    """The fold's run evaluated on its test split, every user ranked (``embedrec evaluate``'s)."""
    from embedrec import api

    with api.open(fcfg.run.dir, fcfg) as model:
        return model.evaluate("test", ks, device=fcfg.train.device, notes=False)  # (as train_run's above)


def _said(model: dict, shown, preferred: tuple[str, ...]) -> list[str]:
    """The metrics of ``model`` a line gives: ``preferred`` ones it has, else its first ones; of ``shown``'s names
    (the metrics argument's, without @K) only, where given."""
    have = [n for n in model if isinstance(model[n], (int, float, dict)) and not n.startswith(("users_", "rows_"))
            and (shown is None or n.split("@")[0] in shown)]
    return [n for n in preferred if n in have] or have


def _headline(model: dict, summary: dict, shown=None) -> str:
    """'test ndcg@10 0.4510 (mean so far 0.4498 +- 0.0012)': the first ranking metric (rmse for an explicit model),
    or the first of ``shown``'s."""
    said = _said(model, shown, ("rmse", "ndcg@10", *(n for n in model if n.startswith("ndcg@"))))
    name = said[0] if said else None
    if name is None or not isinstance(model[name], (int, float)):
        return "scored"
    s = (summary.get("model") or {}).get(name)
    so_far = f" (mean so far {s['mean']:.4f} +- {s['se']:.4f} SE)" if s and math.isfinite(s["se"]) else ""
    return f"test {name} {model[name]:.4f}{so_far}"


def _summary_line(summary: dict, shown=None) -> str:
    model = summary.get("model") or {}
    have = _said(model, shown, ())
    said = [n for n in ("rmse", "mae", "ndcg@10", "recall@10") if n in have] or have[:2]
    return ", ".join(f"{n} {model[n]['mean']:.4f} +- {model[n]['se']:.4f} (SE)" for n in said) or "none of the metrics chosen measured"


def _paired_line(paired: dict, summary: dict, k: int, shown=None) -> str:
    """'the model minus each baseline, fold by fold (...): most_popular ndcg@10 +0.2259 +- 0.0040, ...; a
    difference within two SE of 0 is a tie: none here is', of the metrics :func:`_summary_line` gives; '' where
    no baseline has them (or under 2 folds)."""
    have = _said(summary.get("model") or {}, shown, ())
    said = [n for n in ("rmse", "mae", "ndcg@10", "recall@10") if n in have] or have[:2]
    parts, ties = [], []
    for b, rows in paired.items():
        got = [n for n in said if n in rows and math.isfinite(rows[n]["se"])]
        if got:
            parts.append(f"{b} " + ", ".join(f"{n} {rows[n]['mean']:+.4f} +- {rows[n]['se']:.4f}" for n in got))
            ties += [f"{b}'s {n}" for n in got if rows[n]["tie"]]
    if not parts:
        return ""
    return (f"the model minus each baseline, fold by fold (the folds are the unit: the mean and SE of the {k} "
            f"folds' differences): {'; '.join(parts)}; a difference within two SE of 0 is a tie: "
            + (", ".join(ties) if ties else "none here is"))
