"""``embedrec tune-dims``: sweep the embedding dimension (and optionally weight decay) with the same trainer.

Each trial runs ``training.fit`` in a fresh worker process (so its peak memory is its own), ``tune.workers`` at a
time; finished trials are saved after each one, so a rerun or a Ctrl-C keeps them. On Ctrl-C or SIGTERM (as
``errors.Terminated``) the sweep stops its workers before it returns: no trial starts after it, running ones
stop (a stopped trial is redone by the next sweep) and their processes are waited for, so nothing writes into
the tune folder once its lock is released (the processes: ``worker_pool.py``). The choice uses the validation metric only: the best one, or with a
tolerance the smallest dimension within it of the best. The test metric is reported beside it, never used.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing as mp
import os
import re
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec import worker_pool
from embedrec.errors import (
    ArtifactError,
    ConfigError,
    EmbedrecError,
    Interrupted,
    OutputExists,
    OutputRefused,
    UsageError,
    how_stopped,
    sh_quote,
    stop_signal,
)
from embedrec.fsutil.files import (
    JSON_MAX,
    atomic_write_text,
    loads_json,
    note_made,
    read_json,
    read_regular,
    write_json,
)
from embedrec.fsutil.integrity import SEAL, check_seal, seal
from embedrec.fsutil.locks import confirm_held, locked_folder
from embedrec.fsutil.outputs import (
    atomic_file,
    output_parent,
    refuse_foreign_files,
    refuse_inside_store,
    through_missing,
    through_missing_key,
)
from embedrec.metrics import higher_is_better
from embedrec.run_checks import training_folder_of
from embedrec.run_layout import TUNE_DIR, TUNE_RESULTS, WRITER_LOCK
from embedrec.sparse import csr, isin

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config
    from embedrec.data.dataset import Dataset

log = logging.getLogger("embedrec")
RESULTS = TUNE_RESULTS
PLOT = "tune.png"
LOCK = WRITER_LOCK  # the writer lock of a tune folder (locks.exclusive_lock)


def fourth_root(n_movies: int) -> int:
    from embedrec.model.factors import auto_dim

    return auto_dim(n_movies)


def trial_key(dim: int, wd: float | None) -> str:
    return f"d{dim}" + ("" if wd is None else f"-wd{wd:g}")


# keys that do not change a trial's result, beside config_keys.METRIC_NEUTRAL's (where things go, how they are served,
# how fast they run): train.als_dims (a trial trains its own dimension only) and data.source (the dataset a trial
# reads is identified by its manifest, below)
_NOT_IN_TRIAL = ("train.als_dims", "data.source")
# how a trial is run: bumped when that changes, so trials saved by an earlier procedure are redone (2: the als
# model's trial is train's whole selection, als_reg and als_recency candidates chosen on valid; 3: every als fit
# ends with its users re-solved against its movies, session 37; 4: als_unobserved auto tries twice its weight too,
# session 45)
TRIAL_PROCEDURE = 4


def trial_config_hash(cfg_dict: dict, dim: int, wd: float | None, dataset_manifest: dict) -> str:
    """A hash of everything a trial's result depends on: the whole resolved config as the trial runs it (dim and
    weight decay set), without output paths and speed-only settings, plus the prepared dataset's identity."""
    import hashlib

    from embedrec.config_keys import metric_config

    c = metric_config(cfg_dict, _NOT_IN_TRIAL)
    c["model"]["dim"] = dim
    if wd is not None:
        c["train"]["weight_decay_user"] = c["train"]["weight_decay_movie"] = c["train"]["als_reg"] = wd
    c.setdefault("data", {})
    # keys added since, left out where they change nothing, as before them (a review: every trial of a sweep made
    # before them was redone after the upgrade, blamed on 'train.lr or epochs'): data.repeats (the dataset's own,
    # below, is what trials read) and the count weight on a dataset of ratings
    c["data"].pop("repeats", None)
    if c["data"].get("min_rating") == "auto":  # data.min_rating: auto (the default since session 47) hashed as
        # the value it resolved to, which is what the null default and an explicit floor hashed as before it (a
        # review: every trial of a sweep was redone after the upgrade)
        c["data"]["min_rating"] = dataset_manifest.get("min_rating")
    if c.get("split", {}).get("folds") is None:  # and split.folds/fold (K-fold splits), unset
        for name in ("folds", "fold"):
            c["split"].pop(name, None)
    c["dataset"] = {k: dataset_manifest.get(k) for k in ("inputs", "counts", "split", "rating_scale", "cold_movies")}
    if dataset_manifest.get("repeats") == "sum":
        c["dataset"]["repeats"] = "sum"
    else:
        c["train"].pop("als_count_weight", None)
    c["procedure"] = TRIAL_PROCEDURE
    return hashlib.sha256(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:16]


TRAIN_SAMPLE = {"explicit": 20_000, "ranking": 2_000}  # the training ratings / users train_metric is measured on


def _train_metric(f: dict, ds: Dataset, explicit: bool, ks, sample: int = TRAIN_SAMPLE["ranking"],
                  seed: int = 0) -> float:
    """How well the model fits its own training data: RMSE on up to 20,000 training ratings (explicit), or
    NDCG@min(K) of each sampled user's training movies without excluding them (implicit); a seeded sample, so the
    trials compare on the same rows (what the table's line says)."""
    from embedrec.data.dataset import Interactions
    from embedrec.evaluate import ranking_metrics, split_rating_metrics

    tr = ds.splits["train"]
    rng = np.random.default_rng(seed)
    if explicit:
        idx = rng.choice(len(tr), size=min(TRAIN_SAMPLE["explicit"], len(tr)), replace=False)
        sample_rows = Interactions(tr.user[idx], tr.movie[idx], tr.rating[idx])
        return split_rating_metrics(f, sample_rows, ds.rating_scale)["rmse"]
    users = rng.choice(ds.n_users, size=min(sample, ds.n_users), replace=False)
    sel = isin(tr.user, users)
    empty = csr(np.zeros(0, np.int64), np.zeros(0, np.int64), ds.n_users)
    k = min(ks)
    return ranking_metrics(f["user_factors"], f["movie_factors"], f["movie_bias"], empty, tr.user[sel],
                           tr.movie[sel], ds.n_users, ds.n_movies, (k,))[f"ndcg@{k}"]


def run_trial(cfg_dict: dict, dim: int, wd: float | None, out_dir: str, threads: int,
              data: tuple[str, str] | None = None) -> dict:
    """One trial in a worker process: fit, then train/valid/test metrics, seconds and peak memory. Raises
    ``Interrupted`` at once, before anything is loaded or written, when the sweep is stopping."""
    with worker_pool.job(f"tune-dims is stopping: trial {trial_key(dim, wd)} was not started"):
        return _trial(cfg_dict, dim, wd, out_dir, threads, data)


def trial_modules(cfg: Config) -> tuple[str, ...]:
    """What a trial imports, imported once by the workers' forkserver: torch only where the model needs it (the
    default als fits numpy tables). Not pandas or pyarrow (the dataset's reader), whose import starts jemalloc's
    background thread: workers fork from the server, and a fork copies no thread but the one forking (OpenBLAS's
    pool, which numpy starts, is rebuilt after a fork by OpenBLAS itself)."""
    from embedrec.training.fit import resolve_loss

    torch = () if resolve_loss(cfg.model, cfg.features.active) == "als" else ("torch",)
    return (*torch, "numpy", "embedrec.tune", "embedrec.config", "embedrec.evaluate", "embedrec.training.fit",
            "embedrec.training.select")


def _trial(cfg_dict: dict, dim: int, wd: float | None, out_dir: str, threads: int,
           data: tuple[str, str] | None = None) -> dict:
    """``data``: (the dataset generation the sweep opened and holds, its fingerprint): every trial reads that one,
    so an ``ingest --overwrite`` during the sweep does not hand later trials another dataset (a review)."""
    import resource

    from embedrec.config import config_from_dict
    from embedrec.data.dataset import load_dataset
    from embedrec.evaluate import evaluate_model
    from embedrec.training.fit import factors, fit, resolve_loss
    from embedrec.training.select import fit_selecting

    cfg = config_from_dict(cfg_dict)
    als = resolve_loss(cfg.model, cfg.features.active) == "als"
    if threads and als:  # the default als fits numpy tables: torch is not imported (7 s a worker on a busy box)
        cfg = cfg.updated({"train.threads": threads})
    elif threads:
        import torch

        torch.set_num_threads(threads)
    cfg = cfg.updated({"model.dim": dim})
    if wd is not None:
        cfg = cfg.updated(dict.fromkeys(weight_decay_keys(cfg), wd))
    ds = load_dataset(data[0] if data else cfg.data.prepared, split_method=cfg.split.method)
    if data and ds.fingerprint != data[1]:
        raise ArtifactError(f"dataset '{data[0]}' changed during the sweep; rerun tune-dims")
    t0 = time.perf_counter()
    if als:  # what train fits: its als_reg / als_recency auto candidates, the best on valid
        r, cfg = fit_selecting(ds, cfg, Path(out_dir) / trial_key(dim, wd))
    else:  # train.optimizer auto made concrete here: its line is the sweep's (_sweep), not one per trial
        from embedrec.training.fit import resolve_implicit_terms, resolve_optimizer

        loss = resolve_loss(cfg.model, cfg.features.active)
        tcfg = resolve_optimizer(loss, cfg.model, cfg.train, cfg.features.active, say=False)
        mcfg = resolve_implicit_terms(cfg.model, tcfg, loss, cfg.features.active, say=False)  # as the optimizer
        r = fit(ds, mcfg, tcfg, Path(out_dir) / trial_key(dim, wd), features_cfg=cfg.features)
    secs = time.perf_counter() - t0
    f = factors(r.model, r.unrated)
    explicit = cfg.model.objective == "explicit"
    best_row = r.history[r.best_epoch - 1] if r.history else {}
    test = evaluate_model(f, ds, "test", explicit, cfg.train.eval_k, r.metric, ranking=not explicit)
    n_params = r.model.n_parameters() if hasattr(r.model, "n_parameters") else sum(p.numel() for p in r.model.parameters())
    return {"dim": dim, "weight_decay": wd, "params": int(n_params), "epochs": r.best_epoch,
            "epochs_run": r.epochs_run, "train_loss": best_row.get("loss"),
            "train_metric": _train_metric(f, ds, explicit, cfg.train.eval_k), "valid_metric": r.best_value,
            "test_metric": test.get(r.metric, float("nan")), "metric": r.metric, "seconds": round(secs, 2),
            "peak_mem_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            **({"als_reg": cfg.train.als_reg, "als_recency": cfg.train.als_recency,
                # the number auto stood for (a first-hour pass: the column read 'auto' where train said 0.5809)
                "als_unobserved": _a0_value(cfg.train.als_unobserved, ds),
                # on a data.repeats=sum dataset, what auto chose there (a red team: recorded nowhere)
                **({"als_count_weight": cfg.train.als_count_weight} if ds.manifest.get("repeats") == "sum" else {})}
               if als else {})}


def _a0_value(a0, ds) -> float:
    """train.als_unobserved as the trial's fit used it: auto's number over the training rows, as its selection
    (training.select.fit_and_refit's auto_a0)."""
    if a0 != "auto":
        return float(a0)
    from embedrec.training.als import auto_unobserved

    return round(auto_unobserved(len(ds.splits["train"]), ds.n_users, ds.n_movies), 6)


def choose(trials: list[dict], metric: str, tolerance: float, current: dict | None = None) -> dict:
    """The trial chosen on validation: among each dimension's best trial (:func:`best_per_dim`), the smallest
    dimension within ``tolerance`` (a share) of the best one's score, by the rule train's train.als_dims chooses
    by (training.dims.pick_dim, one function: tune.tolerance auto is its DIM_GAIN for the als model); 0: the best.
    At that dimension ``current`` (the config trained with now) is chosen where it too is within the tolerance of
    the best: another weight decay must beat it by more than the tolerance to be advised (a first-hour review:
    als_reg 0.02 advised for +0.0002 on valid, within the 0.5% the rule calls noise for a dimension).
    Only ``valid_metric`` is read: ``test_metric`` is reported beside the choice, never used."""
    from embedrec.training.dims import pick_dim, share_edge

    ok = [t for t in trials if t["valid_metric"] is not None and math.isfinite(t["valid_metric"])]
    if not ok:
        raise ConfigError("no tune-dims trial produced a validation metric; is the valid split empty?")
    per_dim = {t["dim"]: t for t in best_per_dim(ok, metric)}
    chosen = per_dim[pick_dim({d: t["valid_metric"] for d, t in per_dim.items()}, metric, tolerance)]
    if current is None or current is chosen or current not in ok or current["dim"] != chosen["dim"]:
        return chosen
    high = higher_is_better(metric)
    edge = share_edge(best_trial(ok, metric)["valid_metric"], tolerance, high)
    mine = current["valid_metric"]
    return current if (mine >= edge if high else mine <= edge) else chosen


def best_trial(trials: list[dict], metric: str) -> dict:
    """The trial of the best validation score (the smallest dimension among ties): what the choice is measured
    against, said and recorded beside it."""
    return choose(trials, metric, 0.0)


def describe_choice(res: dict) -> str:
    """How the choice of sweep result ``res`` was made, for its line and a written config's header: 'the smallest
    dimension within 0.5% of the best, dim 256's 0.2385 (tune.tolerance auto: train.als_dims' rule, ...)', or 'the
    best (...)'; tune.tolerance auto is that rule for the als model and the best for the others."""
    rule = res["rule"]
    share = f"{rule['tolerance'] * 100:g}%"
    if rule["source"] == "given":
        how = f"the tolerance given, {share}"
    elif rule["tolerance"] > 0:
        how = (f"tune.tolerance auto: train.als_dims' rule, a larger dimension kept only when it beats the smaller "
               f"ones by more than {share}")
    else:  # auto on a model train chooses no dimension for
        how = "tune.tolerance auto: train chooses no dimension for this model, so the best; a tolerance such as 0.01 " \
              "prefers a smaller one within 1% of it"
    best, chosen = rule["best"], res["chosen"]
    if chosen["dim"] == best["dim"] and chosen.get("weight_decay") != best.get("weight_decay"):  # (choose)
        return (f"the current config, within {share} of the best, weight decay {_number(best['weight_decay'])}'s "
                f"{best['valid_metric']:.4f} ({how}; another weight decay must beat the current config by more "
                "than that to be advised)")
    if chosen["dim"] == best["dim"]:
        within = f"no smaller dimension within {share} of it; " if rule["tolerance"] > 0 else ""
        return f"the best ({within}{how})"
    return (f"the smallest dimension within {share} of the best, dim {best['dim']}'s {best['valid_metric']:.4f} "
            f"({how})")


def best_per_dim(trials: list[dict], metric: str) -> list[dict]:
    hib = higher_is_better(metric)
    out: dict[int, dict] = {}
    for t in trials:
        cur = out.get(t["dim"])
        if cur is None or (t["valid_metric"] > cur["valid_metric"] if hib else t["valid_metric"] < cur["valid_metric"]):
            out[t["dim"]] = t
    return [out[d] for d in sorted(out)]


def plot(trials: list[dict], metric: str, fourth: int, chosen: dict, path: Path, tolerance: float = 0.0,
         current: dict | None = None) -> None:
    """tune.png, two panels over the dimension (log2). Above, the validation metric alone on its own scale (the
    curve the choice is made on): the fourth-root value, the choice (with its weight decay), the config trained
    with now, and, with a tolerance, the band of validation scores within it of the best, which is why a smaller
    dimension than the best can be chosen. Below, the training and validation metric on one axis, the gap between
    them shaded and its size written at each dimension, so overfitting reads as a gap that widens (a first-hour
    review: the two curves on two axes, each scaled to fill the frame, showed no gap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = best_per_dim(trials, metric)
    dims = [t["dim"] for t in rows]
    valid = np.array([_finite(t["valid_metric"]) for t in rows])
    train = np.array([_finite(t.get("train_metric")) for t in rows])
    high = higher_is_better(metric)
    fig, (ax, low) = plt.subplots(2, 1, sharex=True, figsize=(7, 6.4), dpi=120,
                                  gridspec_kw={"height_ratios": (3, 2)})
    lines = ax.plot(dims, valid, "o-", color="tab:blue", label=f"validation {metric} (each dimension's best trial)")
    lines.append(ax.axvline(fourth, color="grey", ls=":", label=f"fourth-root rule ({fourth})"))
    wd = f", weight decay {chosen['weight_decay']:g}" if chosen.get("weight_decay") is not None else ""
    lines.append(ax.axvline(chosen["dim"], color="tab:red", ls="-", alpha=0.5,
                            label=f"chosen ({chosen['dim']}{wd})"))
    if current is not None and math.isfinite(_finite(current["valid_metric"])):
        lines += ax.plot([current["dim"]], [current["valid_metric"]], "*", color="black", markersize=11, ls="none",
                         label=f"the current config ({current['dim']}): {current['valid_metric']:.4f}")
    scores = [v for v in valid if math.isfinite(v)]
    if tolerance > 0 and scores:
        best = max(scores) if high else min(scores)
        from embedrec.training.dims import share_edge  # (the edge pick_dim keeps: one rule)

        edge = share_edge(best, tolerance, high)
        lines.append(ax.axhspan(min(best, edge), max(best, edge), color="tab:blue", alpha=0.12,
                                label=f"within {tolerance * 100:g}% of the best (the smallest such dim is chosen)"))
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("embedrec tune-dims: validation by dimension (the choice)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(handles=lines, fontsize=7, loc="best")
    # below: both on one axis, the gap shaded and written (train above validation for a score, below for an error)
    low.plot(dims, train, "s--", color="tab:orange", label=f"training {metric}")
    low.plot(dims, valid, "o-", color="tab:blue", label=f"validation {metric}")
    low.fill_between(dims, train, valid, color="tab:orange", alpha=0.15,
                     label="the gap: " + ("training minus validation" if high else "validation minus training"))
    gaps = (train - valid) if high else (valid - train)
    for i, (d, a, b, g) in enumerate(zip(dims, train, valid, gaps)):
        if math.isfinite(g):  # the last one written to its left, inside the frame
            last = i == len(dims) - 1 and i > 0
            low.annotate(f"{g:+.3f}", (d, (a + b) / 2), textcoords="offset points", xytext=(-4 if last else 4, 0),
                         fontsize=7, va="center", ha="right" if last else "left", color="dimgrey")
    low.set_ylabel(f"{metric}, one axis")
    low.set_title("training and validation on one axis: a gap that widens with the dimension is overfitting",
                  fontsize=9)
    low.grid(alpha=0.3)
    low.legend(fontsize=7, loc="best")
    low.set_xscale("log", base=2)
    low.set_xticks(dims)
    low.set_xticklabels([str(d) for d in dims])
    low.minorticks_off()
    low.set_xlabel("embedding dimension (log2)")
    fig.tight_layout()
    try:  # a temporary of its own, fsynced, renamed; removed on any failure, Ctrl-C and SIGTERM included
        with atomic_file(path, overwrite=True, command="embedrec tune-dims", suffix=".png", beside_run=True) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)


def _finite(value) -> float:
    """A score as a float for the plot: NaN for none (a trial without a validation or training figure)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def weight_decay_keys(cfg: Config) -> tuple[str, ...]:
    """The config keys a trial's weight decay sets: ``train.als_reg`` for als (it reads no other), the user and
    movie weight decays otherwise."""
    from embedrec.training.fit import resolve_loss

    if resolve_loss(cfg.model, cfg.features.active) == "als":
        return ("train.als_reg",)
    return ("train.weight_decay_user", "train.weight_decay_movie")


def _check_values(cfg: Config, option: str, values, keys: tuple[str, ...]) -> None:
    """Each of ``option``'s values as the config ``keys`` a trial sets would take it: one they refuse is a
    UsageError naming the option, before any trial runs (the trial's own error would name only the key)."""
    for v in values:
        try:
            cfg.updated(dict.fromkeys(keys, v))
        except ConfigError as e:
            why = e.raw.split(" (from updated()): ", 1)[-1]  # what is wrong, without "config key '...'"
            raise UsageError(f"{option} {v:g}: {why} (it sets {keys[0]})") from None


def auto_tolerance(cfg: Config) -> float:
    """tune.tolerance auto: as train would choose. The als model by train.als_dims' rule, the smallest dimension
    within DIM_GAIN (0.5%) of the best (a review: 256 chosen at valid 0.2385 over 64's 0.2383, 0.08% for 4x the
    parameters, where train keeps 64); train chooses no dimension for the others, so the best, 0 (0.5% of an RMSE
    is most of the spread between dimensions: 0.9047 at 8, 0.9018 at 128 on ML-100K's explicit config, test
    0.9040 and 0.8989)."""
    from embedrec.training.dims import DIM_GAIN
    from embedrec.training.fit import resolve_loss

    return DIM_GAIN if resolve_loss(cfg.model, cfg.features.active) == "als" else 0.0


def sweep(cfg: Config, dims: list[int] | None = None, weight_decays: list[float] | None = None,
          tolerance: float | None = None, fresh: bool = False, progress: bool = False) -> dict:
    """Run (or resume) the sweep described by ``cfg.tune``; returns trials, the choice and file paths. Holds
    the writer lock of the tune folder (``.lock`` in it) while it runs."""
    from embedrec.config_ingest import dislikes_warning, ingest_settings_warning
    from embedrec.data.dataset import load_dataset
    from embedrec.training.fit import no_valid_reason, resolve_metric, with_vectors

    # run.dir=a/../x (or tune.dir) with no 'a': x, made and named so, and no 'a' made (a review: mkdir -p made it)
    cfg = through_missing_key(through_missing_key(cfg, "run.dir"), "tune.dir")
    tol = cfg.tune.tolerance if tolerance is None else tolerance
    source = "auto" if tol == "auto" else "given"
    if tol == "auto":
        tol = auto_tolerance(cfg)
    # at most 0.99, as the config key tune.tolerance takes (a review: the two bounds differed)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol <= 0.99:  # NaN fails too
        # the argument is at fault, as for dims: a UsageError (a red team); the config key, a ConfigError
        kind = ConfigError if tolerance is None else UsageError
        raise kind(f"«--tolerance|tolerance» {tol!r}: expected a share from 0 to 0.99 (99%), e.g. 0.01, or 'auto'")
    wds = weight_decays if weight_decays is not None else cfg.tune.weight_decays
    _check_values(cfg, "«--dims|dims»" if dims else "tune.dims", dims or cfg.tune.dims, ("model.dim",))
    _check_values(cfg, "«--weight-decay|weight_decays»" if weight_decays is not None else "tune.weight_decays",
                  wds or (), weight_decay_keys(cfg))
    if cfg.is_set("train.als_dims") and cfg.train.als_dims != "auto":
        log.warning("train.als_dims has no effect in tune-dims: each trial trains its own dimension (the sweep is "
                    "the choice, over «--dims|dims» or tune.dims); leave it out")
    ds = load_dataset(cfg.data.prepared, ("train", "valid"), split_method=cfg.split.method)
    said = ingest_settings_warning(cfg, ds.manifest.get("config") or {}, ds.path, "tune-dims",
                                   ds.manifest.get("columns_read"), ds.manifest)
    if said:  # a first-hour review: `tune-dims --set split.test=0.3` swept the dataset's split without a word
        log.warning(said)  # its «CLI|library» marks are resolved as the format
    if cfg.model.objective == "implicit":  # as train says them (a review: the sweep ran with the dislikes as
        from embedrec.config_ingest import two_values_train_warning  # positives without a word)

        for said in (dislikes_warning(ds.manifest, ds.path), two_values_train_warning(ds.manifest, ds.path)):
            if said:
                log.warning(said)
    if (ds.manifest.get("split") or {}).get("valid") == 0:  # said before the trials (a first-hour pass: every
        # trial trained, each 'valid ndcg@10 nan', then 'is the valid split empty?')
        asked = ((ds.manifest.get("config") or {}).get("split") or {}).get("valid")
        why = "ingested with split.valid=0" if not asked else "its validation rows were dropped at ingest: users or " \
            "movies with no training rating, or too few ratings a user"
        raise ConfigError(f"tune-dims chooses the dimension on the validation split, and '{ds.path}' has none "
                          f"({why}); ingest again with a validation share, e.g. «--set "
                          "split.valid=0.1|cfg.updated({'split.valid': 0.1})»")
    given, kept = len(ds.splits.get("valid", ())), with_vectors(ds).splits.get("valid", ())
    if not len(kept):  # valid rows of users without a training rating only (a global
        # time cut's later users): as train says it, before the trials (a review: every trial, then "is the valid
        # split empty?")
        raise ConfigError(f"tune-dims chooses the dimension on the validation split, and in '{ds.path}' "
                          f"{no_valid_reason(given)}; ingest again with a split whose validation users have training "
                          "ratings, e.g. «--set split.method=user_time|cfg.updated({'split.method': 'user_time'})»")
    fourth = fourth_root(ds.n_movies)
    # the fourth-root reference and the config's own model.dim are always trials: a choice never advises a
    # dimension worse than the one the config trains at without saying so (a first-hour review)
    current = _current_dim(cfg, ds)  # the config's own dimension (auto: what train would use)
    dims = sorted(set(dims or cfg.tune.dims) | {fourth, current})
    # each value once, as dims (a red team: '--weight-decay 0,0' ran two trials racing on one folder)
    wds = [None] if not wds else list(dict.fromkeys(float(w) for w in wds))
    metric = resolve_metric(cfg.model, cfg.train)
    out = Path(cfg.tune.dir or Path(cfg.run.dir) / TUNE_DIR)
    # beside a run's current (RUN/tune), never in its model folders (pruned with them) or in a dataset
    try:
        refuse_inside_store(out / RESULTS, beside_run=True)
    except ArtifactError as e:  # the setting is at fault, as for a folder of the user's: a usage error (exit 2)
        key = "tune.dir" if cfg.tune.dir else "run.dir (tune-dims writes RUN_DIR/tune without a tune.dir)"
        raise ConfigError(f"{key}: {e.raw}") from None
    inside = training_folder_of(out)
    if inside is not None:
        key = "tune.dir" if cfg.tune.dir else "run.dir (tune-dims writes RUN_DIR/tune without a tune.dir)"
        raise ConfigError(f"{key}: '{out}' is inside '{inside}', a folder the run '{inside.parent}' trains or keeps "
                          f"a model in; give the run itself («--run {sh_quote(str(inside.parent))}|run.dir="
                          f"{str(inside.parent)!r}»: tune-dims writes its tune folder) or a tune.dir outside it")
    check_tune_folder(out)
    # one writer per tune.dir: a second sweep would overwrite tune.json without the first one's finished trials
    with locked_folder(out, "embedrec tune-dims", "use another tune.dir", "choose another tune.dir", LOCK):
        return _sweep(cfg, ds, dims, wds, tol, metric, fourth, out, fresh, progress, source)


def _current_dim(cfg: Config, ds: Dataset) -> int:
    """The dimension ``train`` fits with this config on ``ds``: model.dim (auto: the fourth root), the default at
    most min(users, movies) (training.dims.within_rank)."""
    from embedrec.training.dims import within_rank
    from embedrec.training.fit import resolve_dim

    return resolve_dim(within_rank(cfg, ds.n_users, ds.n_movies).model, ds.n_movies)


def check_tune_folder(out: Path) -> None:
    """Refuse a tune.dir that holds files tune-dims did not write (a review: a sweep into a folder of the user's
    own replaced their tune.json and tune.png without a word): it must be new, empty, or hold only a sweep's
    files (tune.json with its trials, tune.png, the trials' d<dim> folders, hidden locks and temporaries), as
    ``fsutil.outputs.refuse_foreign_files`` checks a cross-validation's folder too."""
    refuse_foreign_files(out, lambda n: n in (RESULTS, PLOT) or bool(_TRIAL.fullmatch(n)), named="tune.dir",
                         writer="tune-dims", writes=f"it writes {RESULTS} and {PLOT} there and would replace files "
                         "of those names", fix="choose another tune.dir", where="for tune.dir", error=ConfigError,
                         vet=lambda names: [RESULTS] if RESULTS in names and not _a_sweeps_record(out / RESULTS) else [])


def _a_sweeps_record(path: Path) -> bool:
    """Whether tune.json in a tune.dir is a sweep's (its trials a list, sealed or from before seals) or a damaged
    one (truncated, empty, bytes flipped: among a sweep's files, a sweep's; a review: then refused as a stranger's,
    and --fresh could not help)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):  # a FIFO, a folder: no sweep's (a red team: a FIFO here hung the sweep)
            return False
        saved = loads_json(read_regular(path, "tune results", "", limit=JSON_MAX))
    except (OSError, ValueError, ArtifactError):
        return True
    return isinstance(saved, dict) and isinstance(saved.get("trials"), list)


def _hashed_config(cfg: Config, say: bool = False) -> dict:
    """The config a trial's hash is taken of: train.optimizer, train.lr and model.implicit_terms as the trials
    train (``auto`` resolved;
    a review: trials kept under ``auto`` would be reused where auto now picks another optimizer, e.g. on a machine
    without a C compiler, or after a release changes the rule)."""
    from embedrec.training.fit import resolve_implicit_terms, resolve_loss, resolve_optimizer

    d = cfg.to_dict()
    loss = resolve_loss(cfg.model, cfg.features.active)
    t = resolve_optimizer(loss, cfg.model, cfg.train, cfg.features.active, say=say)
    d["train"]["optimizer"], d["train"]["lr"] = t.optimizer, t.lr
    # model.implicit_terms auto as the trials train it, said once a sweep as the optimizer is (a review)
    d["model"]["implicit_terms"] = resolve_implicit_terms(cfg.model, t, loss, cfg.features.active,
                                                          say=say).implicit_terms
    return d


_TRIAL = re.compile(r"d\d+(-wd[0-9.e+-]+)?")  # a trial's folder (trial_key)


def _ingested(manifest: dict) -> dict:
    """A dataset's ingest as tune.json records it beside its inputs: its files' fingerprint, split and counts."""
    return {k: manifest.get(k) for k in ("fingerprint", "counts", "split", "rating_scale", "cold_movies")}


def _sweep(cfg: Config, ds: Dataset, dims: list[int], wds: list, tol: float, metric: str, fourth: int, out: Path,
           fresh: bool, progress: bool, source: str = "given") -> dict:
    """The trials of each dimension and weight decay asked for, and the config's own: those an earlier record of the
    same sweep holds kept, the others run; the choice made, saved with them in tune.json and plotted."""
    current = _current_dim(cfg, ds)

    state_path = out / RESULTS
    finished: dict[str, dict] = {}
    if state_path.exists() and not fresh:
        finished = _earlier_trials(cfg, ds, metric, out, state_path)
    now, asked, todo = _trials_asked(cfg, dims, wds, current, finished)
    save = functools.partial(_save_results, state_path, ds, metric, finished)
    _run_trials(cfg, ds, todo, out, state_path, metric, progress, finished, save)
    keys = {trial_key(d, w) for d, w in asked}
    trials = [t for t in finished.values() if t["key"] in keys]
    for t in finished.values():  # every trial tune.json keeps, this sweep's marks (a review: 'current' stayed on a
        # trial an earlier sweep marked, and was put on each weight decay's trial at the config's dimension)
        t["fourth_root"] = t["dim"] == fourth
        t["current"] = t["key"] == trial_key(*now)
    chosen = choose(trials, metric, tol, finished[trial_key(*now)])
    best = best_trial(trials, metric)
    mine = finished[trial_key(*now)]
    # the rule that chose and the best's figure beside the choice (a review: neither said), in tune.json too
    rule = {"source": source, "tolerance": tol, "best": _brief(best)}
    # the config trained with now, said beside the choice (a first-hour review: it was not)
    here = {**_brief(mine), "config": _own_setting(cfg, mine, swept=wds != [None])}
    save({"chosen": _brief(chosen), "rule": rule, "current": here})
    plot(trials, metric, fourth, chosen, out / PLOT, tol, mine)
    return {"metric": metric, "fourth_root": fourth, "current": current, "tolerance": tol, "rule": rule, "trials":
            sorted(trials, key=lambda t: (t["dim"], t["weight_decay"] or 0)),
            "best_per_dim": best_per_dim(trials, metric), "chosen": chosen, "current_config": here,
            "results": str(state_path), "plot": str(out / PLOT)}


def _earlier_trials(cfg: Config, ds: Dataset, metric: str, out: Path, state_path: Path) -> dict[str, dict]:
    """The finished trials of an earlier sweep's tune.json (sealed, and checked as what tune-dims writes) that this
    sweep reuses, by key: those of the same dataset as ingested, metric and config; none (said) where the dataset
    is another. A record of another metric is refused."""
    finished: dict[str, dict] = {}
    # sealed like a manifest: an edited or damaged record is not reused as finished trials
    fix = "rerun with «--fresh|fresh=True» to redo its trials"
    saved = read_json(state_path, "tune results", fix)
    check_seal(saved, state_path, "tune results", fix)
    if SEAL not in saved:  # tune-dims always seals it: without one it was edited (a review: then reused)
        raise ArtifactError(f"tune results '{state_path}' have lost their own checksum ('{SEAL}'): edited; {fix}")
    trials = saved.get("trials")
    if not isinstance(trials, list) or not all(
            isinstance(t, dict) and isinstance(t.get("key"), str) and isinstance(t.get("dim"), int)
            and (t.get("valid_metric") is None or isinstance(t.get("valid_metric"), (int, float)))
            for t in trials):  # NaN (no validation split) is written as null
        raise ArtifactError(f"tune results '{state_path}' hold trials that are not what tune-dims writes; {fix}")
    if saved.get("dataset") == ds.manifest.get("inputs") and saved.get("metric") == metric:
        finished = {t["key"]: t for t in saved.get("trials", [])}
        cfg_now = _hashed_config(cfg)
        # the dataset as ingested (its files' fingerprint: another split.seed holds other rows in the same
        # counts, which the trials' hash does not tell), then the config: said which (a red team: a dataset
        # ingested again was blamed on 'train.lr or epochs'); a record from before 'ingested': the hash alone
        again = saved.get("ingested") not in (None, _ingested(ds.manifest))
        stale = list(finished) if again else [
            k for k, t in finished.items()
            if t.get("config_hash") != trial_config_hash(cfg_now, t["dim"], t.get("weight_decay"), ds.manifest)]
        if stale:
            log.info("%d earlier trials in %s %s; they are not reused", len(stale), out,
                     "were for the dataset as it was ingested before (its split or counts have changed since)"
                     if again else "used another config (e.g. train.lr or epochs)")
            for k in stale:
                finished.pop(k)
    elif saved.get("metric") not in (None, metric):
        # a review: `tune-dims --run RUN` of an explicit run swept the default model and replaced that run's
        # rmse sweep with a warning; the sweep a user meant is the one their config gives: refused, not replaced
        raise ConfigError(f"the tune results in '{out}' are for the metric {saved.get('metric')}, where this "
                          f"sweep's is {metric}: pass the config they were made with «(-c FILE)|(load_config(FILE))», "
                          "or «--fresh|fresh=True» to replace them, or choose another tune.dir")
    else:  # the same sweep on data ingested again: its trials say nothing of this data
        log.warning("earlier tune results in %s are for another dataset (ingested again since?); starting afresh",
                    out)
    return finished


def _trials_asked(cfg: Config, dims: list[int], wds: list, current: int, finished: dict) -> tuple[tuple, list, list]:
    """The config's own trial (its dimension, and its weight decay where that is swept), the trials asked for (with
    it), and those of them not finished (said where some are)."""
    # the config trained with now is always a trial, as its dimension is: with weight decays swept, at its own
    # weight decay too (train.als_reg auto's selection), so the choice is never a setting that validates below it
    # by more than the tolerance (a first-hour review: dim 16 at als_reg 0.01 advised, 0.2117, where the config
    # trained at 0.2180); where a swept value is the config's own, that trial is it
    own = _own_weight_decay(cfg)
    now = (current, own if own in wds else None)
    asked = [(d, w) for d in dims for w in wds]
    asked += [now] if now not in asked else []
    todo = [(d, w) for d, w in asked if trial_key(d, w) not in finished]
    kept = len(asked) - len(todo)
    if kept:
        log.info("%d of the %d trials asked for already finished (use «--fresh|fresh=True» to redo them), %d to run",
                 kept, len(asked), len(todo))
    return now, asked, todo


def _save_results(state_path: Path, ds: Dataset, metric: str, finished: dict, choice: dict | None = None) -> None:
    """tune.json written, sealed: the dataset, the metric, the finished trials and (at the end) the choice."""
    confirm_held()  # tune.dir's lock is still this sweep's (a user may have deleted the file)
    write_json(state_path, seal({"dataset": ds.manifest.get("inputs"), "ingested": _ingested(ds.manifest),
                                 "metric": metric, "trials":
                                 sorted(finished.values(), key=lambda t: (t["dim"], t["weight_decay"] or 0)),
                                 **(choice or {})}))


def _run_trials(cfg: Config, ds: Dataset, todo: list, out: Path, state_path: Path, metric: str, progress: bool,
                finished: dict, save) -> None:
    """The trials ``todo`` run in worker processes, each recorded in ``finished`` and saved as it finishes, counted
    on a bar (or a line each); a stop is an Interrupted saying what was kept."""
    from tqdm import tqdm

    workers = max(1, min(cfg.tune.workers, len(todo) or 1))
    threads = cfg.tune.threads or max(1, (mp.cpu_count() or 1) // workers)
    cfg_dict = cfg.to_dict()
    hashed = _hashed_config(cfg, say=True)  # train.optimizer auto's one line, for every trial
    bar = tqdm(total=len(todo), desc="tune-dims", unit="trial", disable=not progress)
    ran: list[int] = []  # trials finished by this sweep (the line per trial without a bar)

    def record(d: int, w: float | None, res: dict) -> None:
        res["key"] = trial_key(d, w)
        res["config_hash"] = trial_config_hash(hashed, d, w, ds.manifest)
        finished[res["key"]] = res
        save()
        bar.update(1)
        bar.set_postfix({"dim": d, metric: f"{res['valid_metric']:.4f}"})
        if not progress:  # no bar (stderr not a terminal: a log, nohup, CI): a line per finished trial instead
            wd = "" if w is None else f", weight_decay {w:g}"
            ran.append(d)
            log.info("trial %d of %d: dim %d%s: valid %s %.4f (%.1fs)", len(ran), len(todo), d, wd, metric,
                     res["valid_metric"], res.get("seconds") or 0.0)

    try:
        data = (str(ds.folder or cfg.data.prepared), ds.fingerprint)  # the generation held here, for every trial
        worker_pool.run_jobs(run_trial, [((cfg_dict, d, w, str(out), threads, data), (d, w)) for d, w in todo],
                             workers, record, preload=trial_modules(cfg))
    except (KeyboardInterrupt, Interrupted) as e:  # Ctrl-C, SIGTERM (Terminated), or a stopped worker's trial
        bar.close()
        if finished:
            save()  # a trial recorded while a signal cut its save short
        signum = stop_signal(e)
        how = how_stopped(signum)
        if not finished:  # nothing saved: the folder this sweep made goes as it leaves (locks.locked_folder)
            earlier = ("; the earlier sweep's results in it are as they were (a rerun with --fresh redoes them)"
                       if state_path.exists() else "")  # --fresh: replaced only as its first trial finishes
            raise Interrupted(f"tune-dims {how} before any trial finished; nothing new was kept in {out}{earlier}: "
                              "rerun the same command to start again", terminated=signum,
                              saved=False) from None
        raise Interrupted(f"tune-dims {how}; {len(finished)} finished trial{'s are' if len(finished) != 1 else ' is'} kept in {state_path}: "
                          "rerun the same command to continue", terminated=signum) from None
    bar.close()


def _brief(trial: dict) -> dict:
    """A trial as tune.json names it beside the trials: its dimension, weight decay and validation score."""
    return {"dim": trial["dim"], "weight_decay": trial["weight_decay"], "valid_metric": trial["valid_metric"]}


def _own_weight_decay(cfg: Config) -> float | None:
    """The weight decay the config trains with, as a trial's would set it (:func:`weight_decay_keys`): a number
    where its keys hold one value, None where they hold auto or differ (then no swept value is the config's)."""
    values = {getattr(cfg.train, k.split(".")[1]) for k in weight_decay_keys(cfg)}
    if len(values) != 1:
        return None
    (value,) = values
    return None if value == "auto" else float(value)


def _own_setting(cfg: Config, trial: dict, swept: bool) -> str:
    """How the report names the config trained with now: 'dim 128', and where weight decays were swept, its own
    ('dim 128, als_reg auto'; a trial's weight decay where a swept value is the config's)."""
    said = f"dim {trial['dim']}"
    if not swept:
        return said
    keys = weight_decay_keys(cfg)
    values = [getattr(cfg.train, k.split(".")[1]) for k in keys]
    if len(set(values)) == 1:
        return f"{said}, {'als_reg' if keys == ('train.als_reg',) else 'weight decay'} {_number(values[0])}"
    return f"{said}, " + ", ".join(f"{k.split('.')[1]} {_number(v)}" for k, v in zip(keys, values))


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def current_note(res: dict) -> tuple[str, bool]:
    """What the sweep's report says of the config trained with now (``res['current_config']``) beside the choice,
    and whether the choice is that config (then there is nothing to change: keep it). The choice validates below it
    only within the tolerance, for a smaller dimension (the config is a trial, and the rule takes the smallest
    dimension within the tolerance of the best): said so, with the share, not left to a table."""
    here, chosen, metric = res["current_config"], res["chosen"], res["metric"]
    mine, theirs = here["valid_metric"], chosen["valid_metric"]
    name = f"the current config ({here['config']})"
    if (chosen["dim"], chosen["weight_decay"]) == (here["dim"], here["weight_decay"]):
        others = [t for t in res["trials"] if t is not chosen and t["valid_metric"] is not None
                  and math.isfinite(t["valid_metric"])]
        runner = ""
        if others:
            second = best_trial(others, metric)
            wd = "" if second["weight_decay"] is None else f" at weight decay {second['weight_decay']:g}"
            runner = f"; the best other trial, dim {second['dim']}{wd}, validates {second['valid_metric']:.4f}"
        return f"{name} is the choice: keep it, nothing to change{runner}", True
    if mine is None or not math.isfinite(mine):
        return f"{name} gave no validation score", False
    high = higher_is_better(metric)
    if not (theirs < mine if high else theirs > mine):
        return f"{name} validates {mine:.4f}", False
    share = abs(mine - theirs) / abs(mine) * 100
    return (f"{name} validates {'higher' if high else 'lower'}: {mine:.4f}, {share:.2g}% better than the choice, "
            f"which the tolerance "
            f"({res['tolerance'] * 100:g}%) gives up for a smaller dimension; keep it where those "
            f"{share:.2g}% matter more than the size"), False


WRITTEN_BY = "# written by embedrec tune-dims"  # the first line of every config write_choice writes


def check_write_target(path: str | Path, input_path: str | None, overwrite: bool = False) -> Path:
    """Where write_choice may write, checked before a sweep (not after its hours): a .yaml or .yml file, not the
    input config, a regular file or nothing yet (not a folder, FIFO or device), in an existing folder. An existing
    file is replaced only with ``overwrite``, and only one tune-dims wrote (its first line is ``WRITTEN_BY``) or
    an empty one, as every output of embedrec (a first-hour review: `--write mydata.csv --overwrite` replaced the
    user's file with YAML)."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise UsageError(f"«--write|write» {path}: a config is YAML; give a file name ending in .yaml or .yml")
    if path.is_symlink():  # a red team: a link to nothing counted as no file, and a link was swapped for a file
        raise OutputRefused(f"«--write|write» {path}: a symbolic link (to '{os.readlink(path)}'); give the file's own "
                            "path, or a new file name")
    if input_path is not None and path.resolve() == Path(input_path).resolve():
        raise UsageError(f"«--write|write» {path}: refusing to overwrite the input config; choose a new file name")
    if path.exists() and not path.is_file():
        raise UsageError(f"«--write|write» {path}: not a regular file (a folder, pipe or device); choose a new "
                         "file name")
    refuse_inside_store(path)  # a review: --write RUN/current/config.yaml --overwrite damaged the run
    if path.is_file() and path.stat().st_size and not _written_by_tune(path):
        raise OutputRefused(f"«--write|write» {path}: the file exists and tune-dims did not write it (its first line "
                            f"is not '{WRITTEN_BY}'); «--overwrite|overwrite=True» only replaces embedrec's own: "
                            "choose a new file name, or move that file away first")
    if path.is_file() and not overwrite:
        raise OutputExists(f"«--write|write» {path}: the file exists ({'empty' if not path.stat().st_size else 'tune-dims wrote it'}); pass "
                           "«--overwrite|overwrite=True» to replace it, or choose a new file name")
    _probe_folder(path)
    return path


def _probe_folder(path: Path) -> None:
    """That the file can be written where it is named (its folder, made where missing as every output's is:
    fsutil.outputs.output_parent, which tries a temporary file in the nearest folder that is there), before the
    sweep: a first-hour pass found a folder this user cannot write in refused only after every trial, with the
    table and the choice lost."""
    try:
        output_parent(path, "choose another folder, or one this user can write")
    except ArtifactError as e:  # io_error's (permission denied, a read-only disk) too
        raise OutputRefused(f"«--write|write» {path}: {str(e).removeprefix(repr(str(path)) + ': ')}") from None


def _written_by_tune(path: Path) -> bool:
    """Whether the file's first line is the one write_choice writes: WRITTEN_BY, then ':' (a red team: a first line
    '# written by embedrec tune-dimsXYZ' of the user's counted as tune-dims')."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO is no file tune-dims wrote (open would wait on it)
            return False
        with open(path, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return False
    return first.rstrip(b"\r\n") == WRITTEN_BY.encode() or first.startswith(WRITTEN_BY.encode() + b":")


def _choice_values(chosen: dict) -> dict:
    """The config values of a chosen trial: its dimension, and its weight decay as the key its model reads
    (``train.als_reg`` for als, whose trials carry ``als_reg``; the user and movie weight decays otherwise)."""
    out: dict = {"model.dim": chosen["dim"]}
    wd = chosen.get("weight_decay")
    if wd is not None:
        keys = ("train.als_reg",) if "als_reg" in chosen else ("train.weight_decay_user", "train.weight_decay_movie")
        out.update(dict.fromkeys(keys, wd))
    if "als_reg" in chosen:  # an als trial: train keeps this dimension (train.als_dims: auto would try 2x and 4x)
        out["train.als_dims"] = []
    return out


def choice_overrides(chosen: dict) -> list[str]:
    """The ``--set`` values (``key=value``) that train what was chosen (what write_choice writes)."""
    return [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in _choice_values(chosen).items()]


def write_choice(cfg: Config, chosen: dict, path: str | Path, input_path: str | None,
                 overwrite: bool = False, how: str | None = None, current: bool = False) -> Path:
    """Write a copy of the config with the chosen dimension (and weight decay) to a new file, or with
    ``overwrite`` over one that tune-dims wrote (never the input config, never a file of the user's); ``how``: how
    it was chosen (:func:`describe_choice`), said in its header; ``current``: the choice is the config trained with
    now (:func:`current_note`), whose run the written config keeps (:func:`tuned_run_dir`)."""
    # a '..' after a folder not there taken out with it, as every output's (a review: a stray 'a' for a/../b/t.yaml)
    path = through_missing(check_write_target(path, input_path, overwrite))
    # its own run.dir: `train -c` with it keeps the run trained before (a first-hour review: it replaced it)
    run_dir = tuned_run_dir(cfg, chosen, current)
    new = _with_ingest_settings(cfg.updated({**_choice_values(chosen), "run.dir": run_dir}))
    import yaml

    from embedrec.config import Config

    changed = _diff(new.to_dict(), Config().to_dict())
    _paths_from(changed, new, path)
    head = (f"{WRITTEN_BY}: dim {chosen['dim']} chosen on validation "
            f"{chosen['metric']} = {chosen['valid_metric']:.4f}{', ' + how if how else ''}\n"
            f"# {'the config of ' + str(input_path) if input_path else 'the built-in defaults'} with that choice; "
            "only keys that differ from the defaults (configs/default.yaml documents every key); "
            + ("run.dir is the config's own: the choice is the model it trains\n" if current else
               "run.dir is this choice's own run, beside the one trained before\n"))
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    atomic_write_text(path, head + yaml.safe_dump(changed, sort_keys=False, default_flow_style=False))
    if missing:  # made as every output's folder is (fsutil.outputs.output_parent), and said
        note_made(path)
    return path


def _with_ingest_settings(cfg: Config) -> Config:
    """``cfg`` with the settings its dataset (data.prepared) was ingested with
    (:func:`config_ingest.with_ingest_settings`, which a run's config.yaml shares), its notes logged."""
    from embedrec.config_ingest import with_ingest_settings
    from embedrec.data.layout import read_manifest

    root = Path(str(cfg.data.prepared))
    try:  # read as every reader of a dataset's manifest reads it (the sweep read it so: only a change since fails)
        manifest, _ = read_manifest(root / "current" if (root / "current").exists() else root, root)
    except (OSError, EmbedrecError):
        manifest = None
    cfg, notes = with_ingest_settings(cfg, manifest)
    for note in notes:
        log.warning("%s", note)
    return cfg


def tuned_run_dir(cfg: Config, chosen: dict, current: bool = False) -> str:
    """The run.dir a written config trains into: the config's own with the choice added, '-d<dim>' and, where the
    sweep chose a weight decay, '-wd<value>' (runs/ml-100k-d32-wd0.01), so two choices never share a run. A
    run.dir that already ends with that suffix (a config tune-dims wrote, the same choice again) is kept: it is
    this choice's run. Nothing else is taken off the name (a review: 'runs/exp-d2' lost its own '-d2'); a
    run.dir with no name of its own ('.') gets 'tuned'. ``current``: the choice is the config trained with now,
    whose model a new run would train again (a first-hour review): the config's own run.dir."""
    path = Path(str(cfg.run.dir))
    if current:
        return str(path)
    wd = chosen.get("weight_decay")
    suffix = f"-d{chosen['dim']}" + ("" if wd is None else f"-wd{wd:g}")
    if path.name in ("", ".", ".."):  # '.', '..', '/': not a name to add to
        return str(path / f"tuned{suffix}")
    return str(path) if path.name.endswith(suffix) else str(path.with_name(path.name + suffix))


def _paths_from(changed: dict, cfg: Config, path: Path) -> None:
    """A written config keeps its paths pointing where they point now, from any folder it is used in: each relative
    one (taken from the working folder) is written relative to the new file, './' or '../' first, as a config
    file's paths are read (config_keys.PATH_KEYS, rebased on the file's folder); absolute where the file goes
    outside the working folder. A review: --write deep/er/out.yaml wrote run.dir 'runs/rel' and left data.prepared
    out, so `train -c` from elsewhere found no dataset; a first-hour review: --write tuned.yaml in the working folder
    wrote 'prepared: ml' where the source said './ml', so `cd /tmp && train -c DIR/tuned.yaml` found none.
    data.source and data.movies count only when they name something on disk (not a release name such as ml-100k)."""
    from embedrec.config_keys import PATH_KEYS

    here, there = Path.cwd().resolve(), path.parent.resolve()
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not isinstance(value, str) or not value or os.path.isabs(value) or value.startswith("~"):
            continue
        if key in ("data.source", "data.movies") and not (here / value).exists():
            continue
        target = here / value
        if not there.is_relative_to(here):  # the file goes outside the working folder: the path as it is absolute
            changed.setdefault(section, {})[name] = os.path.normpath(target)
            continue
        rel = os.path.relpath(target, there)
        changed.setdefault(section, {})[name] = rel if rel.startswith("..") else f"./{rel}"


def _diff(values: dict, defaults: dict) -> dict:
    """The nested keys of ``values`` that differ from ``defaults``."""
    out = {}
    for k, v in values.items():
        if isinstance(v, dict):
            d = _diff(v, defaults.get(k) or {})
            if d:
                out[k] = d
        elif k not in defaults or defaults[k] != v:
            out[k] = v
    return out
