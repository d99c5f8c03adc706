"""The selection and the refit around many fits: which fits ``embedrec train`` runs, and in what order.

``fit_selecting`` runs ``fit.fit`` once per candidate of an als selection (``train.als_reg`` and
``train.als_recency`` ``auto``, in the order :class:`Selection` gives, each in its own folder, each later one
warm-started from the best so far and resumable, which the warm-start key in its folder checks), keeps the best
on valid, then settles ``train.als_user_unobserved: auto`` (:func:`choose_user_unobserved`). ``fit_and_refit``
adds the refit on train+valid: als replays the selection's path (:func:`refit_path`, each stage a ``fit`` run by
:func:`run_path`), the other trainers fit afresh for the selected epochs. One fit, its model, runner,
checkpoint and validation, is ``fit.py``'s; ``shard_als`` runs the same ``Selection`` and refit path on ranks.
``fit`` is imported by name: a test that watches the fits of a selection or refit patches ``select.fit``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path

from embedrec.config import MAX_DIM
from embedrec.errors import ArtifactError
from embedrec.metrics import higher_is_better
from embedrec.threads import blas_threads, choose_threads
from embedrec.training.fit import (
    CHECKPOINT,
    DIST_POINTER,
    LOG,
    FitResult,
    _difference,
    _fp_config,
    _other_config,
    _valid_evaluator,
    clear_checkpoint,
    factors,
    fit,
    load_checkpoint,
    made_on,
    make_runner,
    recency_candidates,
    resolve_dim,
    resolve_loss,
    resumable,
)
from embedrec.training.loop import DETAIL

log = logging.getLogger("embedrec")


class Selection:
    """The candidates of an als selection over ``recencies`` x ``regs``, in order: the first recency at the first
    strength from the seeded draw, the other recencies at that strength, then the other strengths at the best
    recency (``best``: the best candidate's train config so far, which the caller keeps), each of these
    warm-started from the best model so far."""

    def __init__(self, train_cfg, recencies: tuple[float, ...], regs: tuple[float, ...], a0s: tuple = ()):
        import dataclasses

        self.recs, self.regs = recencies, regs
        self.a0s = a0s  # the other unobserved weights to try last, at the best (reg, recency): train.als_unobserved
        self.many = len(recencies) * len(regs) > 1 or bool(a0s)
        self.first = self.best = dataclasses.replace(train_cfg, als_reg=regs[0], als_recency=recencies[0])

    def __iter__(self):
        import dataclasses

        yield self.first
        for r in self.recs[1:]:
            yield dataclasses.replace(self.first, als_recency=r)
        for reg in self.regs[1:]:
            yield dataclasses.replace(self.best, als_reg=reg)
        for a0 in self.a0s:
            yield dataclasses.replace(self.best, als_unobserved=a0)

    def folder(self, run_dir, tcfg) -> Path:
        """``run_dir`` itself for a single candidate, else the candidate's own folder: als-reg-0.01,
        als-recency-2 or als-reg-0.01-recency-2 (what varies), with -a0-0.03 for an unobserved weight tried."""
        parts = ([f"reg-{tcfg.als_reg:g}"] if len(self.regs) > 1 else []) + (
            [f"recency-{tcfg.als_recency:g}"] if len(self.recs) > 1 else []) + (
            [f"a0-{tcfg.als_unobserved:.4g}"] if tcfg.als_unobserved in self.a0s else [])
        return Path(run_dir) / ("als-" + "-".join(parts)) if parts else Path(run_dir)

    def by_folder(self, run_dir) -> dict:
        """{folder: the train config a candidate fitted there has}, for every folder this selection may use."""
        import dataclasses

        return {self.folder(run_dir, t): t for t in (
            dataclasses.replace(self.first, als_reg=g, als_recency=r, als_unobserved=a)
            for g in self.regs for r in self.recs for a in (self.first.als_unobserved, *self.a0s))}

    def folders(self, run_dir) -> list[Path]:
        """Every folder this selection may use (cleared before a fresh one)."""
        return list(self.by_folder(run_dir))

    def first_lost(self, run_dir, has_checkpoint) -> bool:
        """Whether a resume finds no checkpoint for the first candidate but one for a later one: a run killed
        while a fresh ``train`` cleared an earlier run's checkpoints (a red team: its resume was refused as
        another config's). The first is then fitted again (deterministic: the later ones' warm-start keys still
        match); with no checkpoint at all the resume is refused as before (nothing to resume)."""
        first = self.folder(run_dir, self.first)
        return not has_checkpoint(first) and any(has_checkpoint(f) for f in self.folders(run_dir) if f != first)

    def describe(self, tcfg) -> str:
        """'als_reg 0.01, als_recency 2': the values this selection varies."""
        return ", ".join(([f"als_reg {tcfg.als_reg:g}"] if len(self.regs) > 1 else [])
                         + ([f"als_recency {tcfg.als_recency:g}"] if len(self.recs) > 1 else [])
                         + ([f"als_unobserved {tcfg.als_unobserved if isinstance(tcfg.als_unobserved, str) else f'{tcfg.als_unobserved:.4g}'}"]
                            if self.a0s else []))

    def run(self, run_dir, fit_one, *, resume: bool, has_checkpoint, clear, sync=None, writer: bool = True,
            first_lost: bool = False):
        """Fit every candidate, keeping the best on valid: ``fit_one(tcfg, folder, resume, best)`` fits one
        (``best``: the best FitResult so far, None for the first). A later candidate resumes only if its folder
        ``has_checkpoint`` and it started from the same model (more epochs may have moved the best); otherwise its
        old checkpoint is ``clear``-ed. ``sync`` (a distributed barrier) runs before the warm-start key is written,
        by the ``writer`` only. ``first_lost``: see :meth:`first_lost` (the first candidate is fitted afresh).
        Returns (the best FitResult, its seconds the whole selection's; its train config)."""
        best, seconds, level = None, 0.0, DETAIL.get()
        for i, tcfg in enumerate(self):
            folder = self.folder(run_dir, tcfg)
            # a run killed during the first candidate has no checkpoint for the later ones: they start afresh
            key = warm_key(best)
            again = resume and ((i == 0 and not first_lost) or (i > 0 and has_checkpoint(folder)
                                                                 and warm_matches(folder, key)))
            if sync is not None:
                sync()  # every process has read the old key before the writer replaces it
            if key is not None and writer:
                if not again:  # its old checkpoint (if any) started elsewhere: never resume it later
                    clear(folder)
                write_warm(folder, key)
            stops = DETAIL.set(logging.DEBUG if self.many else level)  # its candidate line says when it stopped
            try:
                r = fit_one(tcfg, folder, again, best)
            finally:
                DETAIL.reset(stops)
            # the path the refit replays (refit_path): the steps only, and the first candidate's state
            r.path = (best.path if best is not None else ()) + ((tcfg, r.best_epoch),)
            r.path_start = best.path_start if best is not None else r.model.state_dict()
            seconds += r.seconds
            better = best is None or (r.best_value > best.best_value if higher_is_better(r.metric)
                                      else r.best_value < best.best_value)
            if self.many:  # a warm start that did not beat its start after one epoch stopped there (loop.KeepBest)
                floor = "" if better or r.epochs_run != 1 else f", not past the {best.best_value:.4f} it started from"
                log.log(level, "%s: valid %s %.4f at epoch %d of %d%s", self.describe(tcfg), r.metric, r.best_value,
                        r.best_epoch, r.epochs_run, floor)
            if better:
                best, self.best = r, tcfg
        if self.many:
            log.log(level, "chose %s", self.describe(self.best))
        best.seconds = seconds  # the whole selection, every candidate's fit
        return best, self.best


def exact_index(index_cfg, n_movies: int) -> bool:
    """Whether the run's lists come from an exact index. ``als_user_unobserved: auto`` chooses only then: with an
    approximate one (HNSW over 500K movies) users re-solved at a0 x 2 and 4 were harder for the graph to search,
    recall@10 0.963 at 1 against 0.944 and 0.922 at efSearch 128, and the build's recall check then raised
    efSearch to 1024, an export 8x slower (BENCHMARKS.md, session 12)."""
    from embedrec.serve.index import resolve_kind

    return resolve_kind(index_cfg, n_movies) == "flat"


def choose_user_unobserved(ds, model_cfg, train_cfg, best: FitResult, reuse: dict, apply: bool) -> float:
    """``train.als_user_unobserved: auto``: the selected model's users re-solved with the unobserved weight a0
    times each of als.USER_SCALES (movies fixed, on a copy), the best on valid kept; 1 (the fitted users) on a
    tie. ``best`` takes the chosen value's valid score, and with ``apply`` (no refit follows) its users. A few
    CG steps per user and one validation each: cheap beside the fit."""
    import copy

    from embedrec.training.als import USER_SCALES, Tables

    tr = ds.splits["train"]
    threads = choose_threads(len(tr), resolve_dim(model_cfg, ds.n_users, ds.n_movies), train_cfg.threads)
    if isinstance(best.model, Tables):
        model = Tables(best.model.n_users, best.model.n_movies, best.model.dim, 0.0, 0, draw=False)
        model.load_state_dict(best.model.state_dict())
    else:
        model = copy.deepcopy(best.model)
    runner = make_runner(model, "als", train_cfg, ds, threads, reuse)
    on_valid = _valid_evaluator(ds, model_cfg, train_cfg, best.metric, threads, reuse)
    scores = {USER_SCALES[0]: best.best_value}
    with blas_threads(threads):
        for scale in USER_SCALES[1:]:
            model.load_state_dict(best.model.state_dict())  # each from the selected model (left as it is)
            runner.refit_users(scale)
            scores[scale] = float(on_valid(factors(model, best.unrated)).get(best.metric, float("nan")))
    chosen = pick_user_scale(scores, best)
    if apply and chosen != USER_SCALES[0]:
        model.load_state_dict(best.model.state_dict())
        with blas_threads(threads):
            runner.refit_users(chosen)
        best.model.load_state_dict(model.state_dict())
    return chosen


def pick_user_scale(scores: dict[float, float], best: FitResult) -> float:
    """The scale of ``scores`` ({scale: valid score}, the fitted users' first) with the best score, the first on
    a tie; logged, and its score given to ``best`` (the chosen configuration's, which the refit reports too)."""
    chosen = next(iter(scores))
    high = higher_is_better(best.metric)
    for scale, v in scores.items():
        if v > scores[chosen] if high else v < scores[chosen]:
            chosen = scale
    log.log(DETAIL.get(), "als_user_unobserved auto: valid %s %s; chose %g", best.metric,
             ", ".join(f"{v:.4f} at {s:g}" for s, v in scores.items()), chosen)
    best.best_value = scores[chosen]
    return chosen


def fit_selecting(ds, cfg, run_dir: str | Path, *, resume: bool = False, progress: bool = False,
                  refit: bool = False, reuse: dict | None = None, say: bool = True):
    """fit(); for als with ``train.als_reg`` or ``train.als_recency`` ``auto``, one fit per candidate (see
    :class:`Selection`; each in its own folder under ``run_dir``, each resumable), keeping the best on valid;
    then ``train.als_user_unobserved: auto`` chosen on valid (:func:`choose_user_unobserved`), applied to the
    returned model unless a ``refit`` follows (which applies it). Returns (FitResult, cfg with the chosen values).
    ``reuse``: see :func:`fit.fit` (given by a caller that fits more on the same ``ds``). ``say``: log the
    recency candidates (a selection at another dimension, :func:`choose_dim`, does not repeat them).

    The first candidate starts from the seeded draw; each later one starts from the best candidate so far (a
    warm start: ALS moves to the new setting's solution in a few sweeps instead of a whole fit, measured on
    ML-100K and the synthetic set in BENCHMARKS.md)."""
    import dataclasses

    from embedrec.training.als import AUTO_REGS

    loss = resolve_loss(cfg.model, cfg.features.active)
    if loss != "als":
        if resume:
            _checkpoint_elsewhere(run_dir, Path(run_dir) / CHECKPOINT, _fp_config(cfg.model, cfg.train, cfg.features))
        return fit(ds, cfg.model, cfg.train, run_dir, resume=resume, progress=progress, features_cfg=cfg.features), cfg
    has_valid = len(ds.splits.get("valid", ())) > 0
    # settled here, on train and valid, so that the refit on train+valid keeps the choice
    # (said once the checkpoint to resume is known to be this config's: a refusal stays the only line; a review)
    recs = recency_candidates(ds, cfg.train, level=logging.DEBUG if resume or not say else logging.INFO)
    regs = (AUTO_REGS if has_valid else AUTO_REGS[:1]) if cfg.train.als_reg == "auto" else (cfg.train.als_reg,)
    sel = Selection(cfg.train, recs, regs, unobserved_candidates(cfg.train, has_valid, len(ds.splits["train"]),
                                                                 ds.n_users, ds.n_movies))
    if resume:
        candidates = sel.by_folder(run_dir)

        def own(folder: Path, ck: dict):
            t = candidates.get(folder)
            return (None, False) if t is None else (
                _fp_config(cfg.model, t, cfg.features), resumable(ck.get("fingerprint"), ds, cfg.model, t, cfg.features))

        _checkpoint_elsewhere(run_dir, sel.folder(run_dir, sel.first) / CHECKPOINT,
                              _fp_config(cfg.model, sel.first, cfg.features), own, ds)
        recency_candidates(ds, cfg.train, level=logging.INFO if say else logging.DEBUG)  # now said
    if not resume and sel.many:  # a fresh selection: no candidate may later resume another run's checkpoint
        for folder in sel.folders(run_dir):
            clear_checkpoint(folder)
    reuse = {} if reuse is None else reuse

    def fit_one(tcfg, folder, again, best):
        return fit(ds, cfg.model, tcfg, folder, resume=again, progress=progress, features_cfg=cfg.features,
                   init_state=None if best is None else best.model.state_dict(), reuse=reuse,
                   floor=None if best is None else best.best_value)

    best, tcfg = sel.run(run_dir, fit_one, resume=resume, has_checkpoint=_has_checkpoint, clear=clear_checkpoint,
                         first_lost=resume and sel.many and sel.first_lost(run_dir, _has_checkpoint))
    if tcfg.als_user_unobserved == "auto":  # settled on valid; the refit (or, without one, this model) applies it
        scale = choose_user_unobserved(ds, cfg.model, tcfg, best, reuse, apply=not refit) \
            if has_valid and exact_index(cfg.index, ds.n_movies) else 1.0
        tcfg = dataclasses.replace(tcfg, als_user_unobserved=scale)
    return best, dataclasses.replace(cfg, train=tcfg)


def unobserved_candidates(train_cfg, has_valid: bool, nnz: int, n_users: int, n_movies: int) -> tuple:
    """``train.als_unobserved: auto``'s other candidate, half the auto weight, tried last on valid (warm-started
    from the best): a0 = min(sqrt(density), 36 x density) suits the synthetic sets it was set on and ML-100K, where
    valid never takes the half, but on a set with continuous tastes (20K x 5K, an independent check) half of it
    scored valid 0.1564 against 0.1509, and kept by the selection it raised test NDCG@10 by 4.5-4.8% on two data
    seeds, past tuned implicit ALS (BENCHMARKS.md, session 19)."""
    from embedrec.training.als import auto_unobserved

    if train_cfg.als_unobserved != "auto" or not has_valid:
        return ()
    return (round(auto_unobserved(nnz, n_users, n_movies) / 2, 6),)


def _has_checkpoint(folder: Path) -> bool:
    """Whether a candidate's folder holds its one-process checkpoint (shard_als has the ranks' own)."""
    return (Path(folder) / CHECKPOINT).exists()


def _checkpoint_elsewhere(run_dir, ckpt: Path, fp_cfg: dict, own=None, ds=None) -> None:
    """Resuming where this config keeps no checkpoint (``ckpt``) while the run holds one elsewhere (the run
    folder's own, or an als candidate's) that this run would not have written there: it was trained with
    another config (its -c FILE forgotten?) or on another dataset, refused naming the difference as a
    checkpoint of another config in the right place is, before anything is written. ``own(folder, checkpoint)``
    -> (this config's train config for that folder, or None; whether the checkpoint's fingerprint matches it):
    a selection's candidate that matches is this run's own (its first candidate is then fitted again). ``ds``:
    a checkpoint not made on it is said to be another dataset's, whatever its config."""
    if ckpt.exists():
        return
    root = Path(run_dir)
    for p in (root / CHECKPOINT, *sorted(root.glob(f"als-*/{CHECKPOINT}"))):
        if not p.is_file() or DIM_FOLDER.fullmatch(p.parent.name):  # a dimension's: choose_dim resumes those
            continue
        ck = load_checkpoint(p)
        want, matches = own(p.parent, ck) if own is not None else (None, False)
        if matches:
            continue  # this run's own, in its place
        if ds is not None and not made_on(ck, ds):  # ingested again since: no config brings it back
            raise _other_config(p, "dataset (its manifest differs)")
        # the config differs, or (the same config) the dataset; no value differs: the selection does
        differs = _difference(ck.get("config"), want, "") if want is not None else ""
        raise _other_config(p, differs or ("dataset (its manifest differs)" if want is not None else _difference(
            ck.get("config"), fp_cfg, "train.als_reg or train.als_recency (auto, or one value)")))


WARM = "warm-start.json"  # in a later candidate's folder: which model it started from


def warm_key(best: FitResult | None) -> dict | None:
    """What a warm-started candidate started from: the best candidate so far, named by that candidate's run
    (best epoch, its valid metric and loss), which a deterministic fit reproduces exactly."""
    if best is None:
        return None
    row = best.history[best.best_epoch - 1] if 0 < best.best_epoch <= len(best.history) else {}
    return {"best_epoch": best.best_epoch, "best_value": best.best_value, "loss": row.get("loss")}


def warm_matches(folder: Path, key: dict | None) -> bool:
    try:
        return json.loads((Path(folder) / WARM).read_text(encoding="utf-8")) == json.loads(json.dumps(key))
    except (OSError, ValueError):
        return False


def write_warm(folder: Path, key: dict) -> None:
    from embedrec.fsutil.files import atomic_write_text

    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(folder) / WARM, json.dumps(key))


# train.als_dims: auto tries model.dim times each of these after the selection, the next only while the one
# before is the choice and gained more than AUTO_DIM_NEXT_GAIN on valid (a 200-cluster synthetic set: valid
# NDCG@10 0.1753 at 128, 0.1832 at 256, 0.1827 at 512; an outside generator: 0.1885, 0.1958, 0.1972; ML-100K
# and the bench's synthetic set: 128 kept; BENCHMARKS.md session 21)
AUTO_DIM_SCALES = (2, 4)
# above this many training ratings auto tries no other dimension: each candidate is a whole selection at 2-4x a
# fit's time (the 100M run keeps its time; ML-20M's 14M training ratings are below it)
AUTO_DIMS_MAX_RATINGS = 25_000_000
# nor a dimension whose two tables would take more than this: a selection holds a few copies of them (the best
# model, the path's start, the candidate's), so 10M users x 1M movies stays at its own dimension (a review)
AUTO_DIMS_MAX_TABLE_BYTES = 1 << 30
# auto goes on to the next dimension only when the one just tried beat the best before it by more than this
# share: the gains shrink with each doubling (valid NDCG@10, 128 -> 256 -> 512: +3.9% then +0.7%, +2.1% then
# +1.7%, +4.5% then -0.3%, +1.2% then +0.2% on four sets), and 512 cost 59.5 s of a 114 s selection on 150K x 30K
# x 4M where 256's +1.2% foretold its +0.2% (BENCHMARKS.md, session 21)
AUTO_DIM_NEXT_GAIN = 0.02
# a larger dimension is kept only when its valid score beats the smaller ones' by more than this share
# (pick_dim): it doubles the factors' memory and the time of every later command (recommend, export, the index)
DIM_GAIN = 0.005


def dim_candidates(cfg, n_ratings: int, has_valid: bool, n_users: int, n_movies: int,
                   say: bool = True) -> tuple[int, ...]:
    """``train.als_dims``: the other dimensions an als fit with validation rows tries after its selection.
    ``auto``: model.dim x AUTO_DIM_SCALES, each at most min(users, movies) (no more rank to add) and
    AUTO_DIMS_MAX_TABLE_BYTES of tables, none above AUTO_DIMS_MAX_RATINGS training ratings (``n_ratings``); a
    list: its dimensions other than model.dim, as given (the user's to size). ``say``: warn of a list that has
    nothing to choose on (torchrun: rank 0 only)."""
    if resolve_loss(cfg.model, cfg.features.active) != "als":
        return ()
    if not has_valid:
        if say and cfg.train.als_dims not in ("auto", []):  # a list given for nothing (a review: said nowhere)
            log.warning("train.als_dims has no effect: there is no validation split to choose a dimension on; "
                        "model.dim is trained alone")
        return ()
    d = resolve_dim(cfg.model, n_users, n_movies)
    if cfg.train.als_dims != "auto":
        dims = tuple(dict.fromkeys(x for x in cfg.train.als_dims if x != d))
        rank = min(n_users, n_movies)
        if say and any(x > rank for x in dims):  # tried as asked, but said (a red team: 2048 on 943 users, 89 s)
            log.warning("train.als_dims: %s above min(users, movies) = %d, which bounds the rank the factors can "
                        "hold: %s tried as asked, at a larger model's time and disk for no more rank",
                        ", ".join(str(x) for x in dims if x > rank), rank,
                        "they are" if sum(x > rank for x in dims) > 1 else "it is")
        return dims
    if n_ratings > AUTO_DIMS_MAX_RATINGS:
        log.debug("als_dims auto: %s training ratings (above %s): only model.dim %d", f"{n_ratings:,}",
                  f"{AUTO_DIMS_MAX_RATINGS:,}", d)
        return ()
    out = []
    for k in AUTO_DIM_SCALES:
        if d * k > min(n_users, n_movies, MAX_DIM):
            break
        if (n_users + n_movies) * d * k * 4 > AUTO_DIMS_MAX_TABLE_BYTES:
            log.debug("als_dims auto: model.dim %d would take %.2f GB of tables (above %.2f GB): not tried", d * k,
                      (n_users + n_movies) * d * k * 4 / 1e9, AUTO_DIMS_MAX_TABLE_BYTES / 1e9)
            break
        out.append(d * k)
    return tuple(out)


def choose_dim(cfg, selected: FitResult, chosen, run_dir, dims: tuple[int, ...], select_dim, *, resume: bool,
               has_checkpoint):
    """``train.als_dims``: the whole selection again at each dimension of ``dims`` (``select_dim(cfg at that
    dimension, folder, resume)`` -> (FitResult, cfg with the chosen values), in its own folder als-dim-<d>,
    resumable: ``has_checkpoint(folder)``); the choice is :func:`pick_dim`'s, and ``auto`` stops once the
    dimension just tried is not the choice or beat the best before it by no more than AUTO_DIM_NEXT_GAIN.
    ``cfg``: the config as given (its ``auto`` values); ``selected``, ``chosen``: the selection at model.dim.
    Returns (the chosen FitResult, its seconds every selection's, its ``dims`` each dimension's valid score and
    ``dims_seconds`` its selection's; its chosen cfg, model.dim the number and train.als_dims [] besides the
    selection's chosen values, as config.yaml records them). One process and torchrun's ranks.

    A whole selection, not one fit at the chosen settings: on a 200-cluster synthetic set one fit at 256 with
    128's choices scored valid 0.1760 (128: 0.1753), the selection at 256 0.1832 (BENCHMARKS.md, session 21)."""
    import dataclasses

    if not dims:
        return selected, chosen
    dim0 = int(selected.model.dim)  # model.dim resolved (auto: the fourth root)
    results = {dim0: (selected, chosen)}
    seconds, scores, took = selected.seconds, {dim0: selected.best_value}, {dim0: selected.seconds}
    pick = dim0
    for d in dims:
        folder = Path(run_dir) / f"als-dim-{d}"
        again = resume and any(has_checkpoint(f) for f in (folder, *sorted(folder.glob("als-*"))))
        log.info("model.dim %d (train.als_dims): the selection again%s", d, ", resumed" if again else "")
        detail = DETAIL.set(logging.DEBUG)  # its candidates' lines with -v; this dimension's sum below
        try:
            r, c = select_dim(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dim=d)), folder, again)
        finally:
            DETAIL.reset(detail)
        seconds += r.seconds
        scores[d], took[d], results[d] = r.best_value, r.seconds, (r, c)
        log.info("model.dim %d: valid %s %.4f at %s (model.dim %d: %.4f)", d, r.metric, r.best_value,
                 describe_chosen(c.train), pick, scores[pick])
        before, pick = scores[pick], pick_dim(scores, r.metric)
        if cfg.train.als_dims == "auto" and (pick != d or not _gains(r.best_value, before, AUTO_DIM_NEXT_GAIN,
                                                                     r.metric)):
            break
    log.info("als_dims: chose model.dim %d (valid %s %s)", pick, selected.metric,
             ", ".join(f"{v:.4f} at {k}" for k, v in scores.items()))
    best, best_cfg = results[pick]
    best.seconds, best.dims, best.dims_seconds = seconds, scores, took
    return best, dataclasses.replace(best_cfg, model=dataclasses.replace(best_cfg.model, dim=pick),
                                     train=dataclasses.replace(best_cfg.train, als_dims=[]))


def describe_chosen(tcfg) -> str:
    """'als_reg 0.02, als_unobserved 0.1066, als_user_unobserved 1': what a selection chose."""
    def num(v):
        return v if isinstance(v, str) else f"{v:.4g}"
    return (f"als_reg {num(tcfg.als_reg)}, als_unobserved {num(tcfg.als_unobserved)}, "
            f"als_user_unobserved {num(tcfg.als_user_unobserved)}")


def _gains(value: float, before: float, share: float, metric: str) -> bool:
    margin = abs(before) * share
    return value > before + margin if higher_is_better(metric) else value < before - margin


def pick_dim(scores: dict[int, float], metric: str) -> int:
    """The smallest dimension whose valid score is within DIM_GAIN of the best one's: a larger dimension doubles
    the factors' memory and every later command's time, so it must win by more than that share. The same
    choice in any order of ``scores`` ({dimension: valid score})."""
    import math

    high = higher_is_better(metric)
    finite = {d: v for d, v in scores.items() if math.isfinite(v)}
    if not finite:  # nothing scored (no validation user could be ranked): model.dim, the first
        return next(iter(scores))
    best = max(finite.values()) if high else min(finite.values())
    margin = abs(best) * DIM_GAIN
    return min(d for d, v in finite.items() if (v >= best - margin if high else v <= best + margin))


DIM_FOLDER = re.compile(r"als-dim-[0-9]+")  # choose_dim's folders; no other name is ever cleared
# what training writes in a dimension's folder and its candidates' (fit, loop, shard_als): checkpoints, the
# torchrun pointer, the epoch log, the warm-start key, their temporaries (fsutil's '.<name>.XXXXXXXX');
# TensorBoard's event files; torchrun's checkpoint folders and their tables
_NAMES = "|".join(map(re.escape, (CHECKPOINT, DIST_POINTER, LOG, WARM)))
TRAINING_FILE = re.compile(rf"({_NAMES})|\.({_NAMES})\.[a-z0-9_]{{8}}")
EVENTS = re.compile(r"events\.out\.tfevents\..+")
DIST_FOLDER = re.compile(r"checkpoint-dist-e[0-9]{5}|\.checkpoint-dist-e[0-9]{5}\.tmp")
DIST_TABLES = ("user.npy", "movie.npy", "best_user.npy", "best_movie.npy")
CANDIDATE = re.compile(r"als-(?!dim-)[0-9a-z.-]+")  # a selection's candidate folder (Selection.folder)


def clear_dim_folders(run_dir) -> None:
    """A fresh run (not a resume) clears the als-dim-<d> folders an earlier run left: a resume of this run must
    never take another run's checkpoint there for its own. Only what training writes goes, in the folders
    training makes (the candidates', TensorBoard's, torchrun's checkpoints'), and the folders left empty; a
    folder holding anything else is kept with it, and said (a red team: every als-dim-* folder was removed
    whole, a user's files in one and a folder of the user's own so named). A link where training writes (a
    dimension's or a candidate's folder, ...) is removed, never followed: its files would land where it points."""
    kept = []
    for top in sorted(Path(run_dir).glob("als-dim-*")):
        if not DIM_FOLDER.fullmatch(top.name):
            continue
        if top.is_symlink():
            top.unlink()
        elif top.is_dir():
            removed = _clear_training_folder(top, candidates=True)
            with contextlib.suppress(OSError):
                top.rmdir()
            if top.exists():
                kept.append((top, removed))
    for top, removed in kept:  # what is left: files, links and folders holding nothing else (a review: "()")
        left = sorted(str(p.relative_to(top)) + ("/" if p.is_dir() and not p.is_symlink() else "")
                      for p in top.rglob("*") if not p.is_dir() or p.is_symlink() or not any(p.iterdir()))
        log.warning("kept '%s': it holds files train did not write (%s%s)%s", top, ", ".join(left[:3]),
                    ", ..." if len(left) > 3 else "", "; train's files in it were removed" if removed else "")


def check_dim_folders(run_dir, dims) -> None:
    """Refuse, before any fitting, a file where a dimension's selection will write its folder or a candidate's
    (a review: a file named als-dim-16 failed the run after the whole first selection, naming another path)."""
    for d in dims:
        top = Path(run_dir) / f"als-dim-{d}"
        blocking = [top] if top.exists() and not top.is_dir() else [
            p for p in (top.iterdir() if top.is_dir() else ()) if CANDIDATE.fullmatch(p.name) and not p.is_dir()]
        if blocking:
            raise ArtifactError(f"'{blocking[0]}' is a file where train writes the selection at model.dim {d} (a "
                                "folder of checkpoints); move it away, or use another run.dir")


def _clear_training_folder(folder: Path, candidates: bool) -> int:
    """Remove what training wrote in ``folder`` (and with ``candidates`` in its candidates' folders), then the
    folders it made that are left empty. Returns how many files went."""
    removed = 0
    for entry in os.scandir(folder):
        path = Path(entry.path)
        ours_dir = entry.name == "tensorboard" or DIST_FOLDER.fullmatch(entry.name) or (
            candidates and CANDIDATE.fullmatch(entry.name))
        if entry.is_symlink():
            if ours_dir or TRAINING_FILE.fullmatch(entry.name):
                path.unlink()
            continue
        if entry.is_file() and TRAINING_FILE.fullmatch(entry.name):
            path.unlink()
            removed += 1
        elif entry.is_dir() and ours_dir:
            if entry.name == "tensorboard" or DIST_FOLDER.fullmatch(entry.name):
                names = EVENTS.fullmatch if entry.name == "tensorboard" else DIST_TABLES.__contains__
                for inner in os.scandir(path):
                    if inner.is_file(follow_symlinks=False) and names(inner.name):
                        os.unlink(inner.path)
                        removed += 1
            else:
                removed += _clear_training_folder(path, candidates=False)
            with contextlib.suppress(OSError):  # not empty: it holds what training did not write
                path.rmdir()
    return removed


def fit_and_refit(ds, cfg, work_dir: str | Path, *, resume: bool = False, progress: bool = False):
    """What ``embedrec train`` fits: :func:`fit_selecting` on train (validated on valid), then
    ``train.als_dims`` (:func:`choose_dim`), then with ``train.refit`` and a validation split the refit on
    train+valid. Returns (dataset of the final fit, its FitResult, the selection's FitResult, cfg with the chosen
    values)."""
    has_valid = len(ds.splits.get("valid", ())) > 0
    refit = cfg.train.refit and has_valid
    reuse = {}
    if not resume:
        clear_dim_folders(work_dir)
    # before the selection: what it says of a list is said first, not after minutes of fitting (a review)
    dims = dim_candidates(cfg, len(ds.splits["train"]), has_valid, ds.n_users, ds.n_movies)
    check_dim_folders(work_dir, dims)
    selected, chosen = fit_selecting(ds, cfg, work_dir, resume=resume, progress=progress, refit=refit, reuse=reuse)
    selected, cfg = choose_dim(cfg, selected, chosen, work_dir, dims, lambda c, folder, again: fit_selecting(
        ds, c, folder, resume=again, progress=progress, refit=refit, reuse=reuse, say=False),
        resume=resume, has_checkpoint=_has_checkpoint)
    if refit:
        merged, result = _refit(ds, cfg, selected, Path(work_dir), progress)
    else:
        merged, result = ds, selected
    selected.path_start = None  # the first candidate's tables: needed by the refit only
    return merged, result, selected, cfg


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
    def what(t):
        return f"als_reg {t.als_reg:g}" + (f", als_recency {t.als_recency:g}" if t.als_recency else "") + (
            f", als_unobserved {t.als_unobserved:.4g}" if not isinstance(t.als_unobserved, str) else "")

    first, *rest = stages
    return f"{first.epochs} sweeps at {what(first)}" + "".join(f", then {t.epochs} at {what(t)}" for t in rest)


def _refit(ds, cfg, selected: FitResult, run_dir: Path, progress: bool):
    """Retrain on train+valid: als replays the selection's path from its first candidate's model
    (:func:`refit_path`); the other trainers start afresh for the selected number of epochs (chosen on valid
    only)."""
    import dataclasses

    from embedrec.data.dataset import Dataset, Interactions

    tr, va = ds.splits["train"], ds.splits["valid"]
    both = Interactions.concat([tr, va])
    empty = Interactions(tr.user[:0], tr.movie[:0], tr.rating[:0])
    merged = Dataset(ds.path, {**ds.manifest, "refit": True}, ds.users, ds.movies,
                     {"train": both, "valid": empty, "test": ds.splits["test"]}, rated_below=ds.rated_below,
                     rated_below_unknown=ds.rated_below_unknown)
    if selected.loss != "als":
        tcfg = dataclasses.replace(cfg.train, epochs=max(selected.best_epoch, 1))
        log.info("refit on train+valid (%s ratings) for %d epoch%s", f"{len(both):,}", tcfg.epochs,
                 "" if tcfg.epochs == 1 else "s")
        result = fit(merged, cfg.model, tcfg, run_dir / "refit", progress=progress, features_cfg=cfg.features)
    else:
        result = refit_als(selected, cfg.train, run_dir, len(both), lambda t, folder, init: fit(
            merged, cfg.model, t, folder, progress=progress, features_cfg=cfg.features, init_state=init))
    result.best_epoch, result.metric, result.best_value = selected.best_epoch, selected.metric, selected.best_value
    return merged, result


def refit_als(selected: FitResult, train_cfg, run_dir: Path, n_ratings: int, fit_stage, leader: bool = True):
    """The als refit on train+valid (``n_ratings``): the selection's path (:func:`refit_path`), each stage
    ``fit_stage(train_cfg, folder, init_state)`` in its :func:`refit_folder`; one process or torchrun's ranks
    (``leader``: the rank that clears stale stage folders). Returns the last stage's FitResult."""
    state, stages = refit_path(selected, train_cfg)
    epochs = sum(t.epochs for t in stages)
    log.info("refit on train+valid (%s ratings) for %d epoch%s, from the selection's path: %s", f"{n_ratings:,}",
             epochs, "" if epochs == 1 else "s", describe_path(stages))
    if leader:
        clear_stale_path(run_dir, len(stages))
    return run_path(stages, state, lambda t, i, init: fit_stage(t, refit_folder(run_dir, i, len(stages)), init))


def refit_folder(run_dir: Path, i: int, n: int) -> Path:
    """Where stage ``i`` of ``n`` of a refit writes: ``refit``, and ``refit/path-<i>`` for the stages before."""
    return Path(run_dir) / "refit" if i == n - 1 else Path(run_dir) / "refit" / f"path-{i}"


def clear_stale_path(run_dir: Path, n: int) -> None:
    """Remove the ``refit/path-<i>`` folders that a refit of ``n`` stages does not write (left by an earlier run in
    the same folder whose path was longer), so the folder holds this refit's logs only."""
    import shutil

    for old in (Path(run_dir) / "refit").glob("path-*"):
        if not old.name[5:].isdigit() or int(old.name[5:]) >= n - 1:
            shutil.rmtree(old, ignore_errors=True)


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
