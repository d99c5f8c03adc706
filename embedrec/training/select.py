"""The selection around many fits: which fits ``embedrec train`` runs, and in what order.

``fit_selecting`` runs ``fit.fit`` once per candidate of an als selection (``train.als_reg``,
``train.als_recency``, ``train.als_unobserved`` and ``train.als_count_weight`` ``auto``, in the order
:class:`Selection` gives, each in its own folder, each later one warm-started from the best so far and
resumable, which the warm-start key in its folder checks), keeps the best on valid, then settles
``train.als_user_unobserved: auto`` (:func:`choose_user_unobserved`). ``fit_and_refit`` is the whole of
``train``: the selection, ``train.als_dims`` (``dims.py``: the selection again at other dimensions) and the
refit on train+valid (``refit.py``). One fit, its model, runner, checkpoint and validation, is ``fit.py``'s;
``shard_als`` runs the same ``Selection``, dimensions and refit path on ranks, and the same user-scale and trend
choices (:func:`choose_user_unobserved_on`, :func:`choose_trend_on`, given its ``OnRanks`` where one process gives
:class:`OneProcess`). ``fit`` is imported by name: a test that watches the fits of a selection patches
``select.fit``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from embedrec.metrics import higher_is_better
from embedrec.threads import blas_threads, choose_threads
from embedrec.training.checkpoints import (
    CHECKPOINT,
    WARM,
    clear_checkpoint,
    difference,
    fp_config,
    load_checkpoint,
    made_on,
    other_config,
    resumable,
)
from embedrec.training.dims import choose_dim, dim_candidates, warn_above_rank, within_rank
from embedrec.training.fit import (
    FitResult,
    _valid_evaluator,
    factors,
    fit,
    make_runner,
    numpy_als,
    recency_candidates,
    resolve_dim,
    resolve_loss,
    vectorless_users,
    with_vectors,
)
from embedrec.training.folders import (
    CANDIDATE_NAME,
    REFIT,
    check_dim_folders,
    check_folders,
    clear_folders,
    clear_training,
)
from embedrec.training.loop import DETAIL
from embedrec.training.refit import refit_train_valid

log = logging.getLogger("embedrec")


class Selection:
    """The candidates of an als selection over ``recencies`` x ``regs``, in order: the first recency at the first
    strength from the seeded draw, the other recencies at that strength, then the other strengths at the best
    recency (``best``: the best candidate's train config so far, which the caller keeps), then the other count
    weights (``cws``) and unobserved weights (``a0s``) at the best so far, each of these warm-started from the
    best model so far. The count weight comes before a0: tried last, at the half a0 the selection had kept at
    count weight 0, 1 lost on valid (0.1676 against 0.1720) on a click log where, tried at the auto a0, it wins
    (0.1778; weighing the counts raises the observed term, and a0 with it)."""

    def __init__(self, train_cfg, recencies: tuple[float, ...], regs: tuple[float, ...], a0s: tuple = (),
                 cws: tuple = ()):
        import dataclasses

        from embedrec.training.als import count_weight

        self.recs, self.regs = recencies, regs
        self.a0s = a0s  # the other unobserved weights to try last, at the best (reg, recency): train.als_unobserved
        self.cws = cws  # the other count weights, tried before them at the best: train.als_count_weight auto
        self.many = len(recencies) * len(regs) > 1 or bool(a0s) or bool(cws)
        self.first = self.best = dataclasses.replace(train_cfg, als_reg=regs[0], als_recency=recencies[0],
                                                     als_count_weight=count_weight(train_cfg))

    @classmethod
    def of(cls, train_cfg, recencies: tuple[float, ...], has_valid: bool, nnz: int, n_users: int, n_movies: int,
           manifest: dict) -> Selection:
        """The selection of :func:`fit_selecting` and ``shard_als.fit_selecting_shard`` alike: ``train.als_reg``
        auto's strengths (the first alone without valid rows), ``recencies`` (fit.recency_candidates), the other
        unobserved and count weights (:func:`unobserved_candidates`, :func:`count_candidates`). ``nnz``: the
        training rows (on ranks, over them all)."""
        from embedrec.training.als import AUTO_REGS

        regs = (AUTO_REGS if has_valid else AUTO_REGS[:1]) if train_cfg.als_reg == "auto" else (train_cfg.als_reg,)
        return cls(train_cfg, recencies, regs, unobserved_candidates(train_cfg, has_valid, nnz, n_users, n_movies),
                   count_candidates(train_cfg, has_valid, manifest))

    def __iter__(self):
        import dataclasses

        yield self.first
        for r in self.recs[1:]:
            yield dataclasses.replace(self.first, als_recency=r)
        for reg in self.regs[1:]:
            yield dataclasses.replace(self.best, als_reg=reg)
        for b in self.cws:  # before the unobserved weights: heavier counts favour a heavier a0 (below)
            yield dataclasses.replace(self.best, als_count_weight=b)
        for a0 in self.a0s:
            yield dataclasses.replace(self.best, als_unobserved=a0)

    def folder(self, run_dir, tcfg) -> Path:
        """``run_dir`` itself for a single candidate, else the candidate's own folder: als-reg-0.01,
        als-recency-2 or als-reg-0.01-recency-2 (what varies), with -a0-0.03 for an unobserved weight tried and
        -count-1 for a count weight."""
        parts = ([f"reg-{tcfg.als_reg:g}"] if len(self.regs) > 1 else []) + (
            [f"recency-{tcfg.als_recency:g}"] if len(self.recs) > 1 else []) + (
            [f"a0-{tcfg.als_unobserved:.4g}"] if tcfg.als_unobserved in self.a0s else []) + (
            [f"count-{tcfg.als_count_weight:g}"] if tcfg.als_count_weight in self.cws else [])
        return Path(run_dir) / ("als-" + "-".join(parts)) if parts else Path(run_dir)

    def by_folder(self, run_dir) -> dict:
        """{folder: the train config a candidate fitted there has}, for every folder this selection may use."""
        import dataclasses

        return {self.folder(run_dir, t): t for t in (
            dataclasses.replace(self.first, als_reg=g, als_recency=r, als_unobserved=a, als_count_weight=b)
            for g in self.regs for r in self.recs for a in (self.first.als_unobserved, *self.a0s)
            for b in (self.first.als_count_weight, *self.cws))}

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
                         + ([f"als_unobserved {self._a0(tcfg.als_unobserved)}"] if self.a0s else [])
                         + ([f"als_count_weight {tcfg.als_count_weight:g}"] if self.cws else []))

    def _a0(self, a0) -> str:
        """'0.2132 (auto)' for auto (twice its half weight, the first other candidate), '0.1066' for a number: the value,
        not just 'auto' (a first-hour review: 'chose ... auto', then 'at ... 0.1066' read as a contradiction)."""
        if not isinstance(a0, str):
            return f"{a0:.4g}"
        return f"{2 * self.a0s[0]:.4g} ({a0})" if a0 == "auto" and self.a0s else a0

    def run(self, run_dir, fit_one, *, resume: bool, has_checkpoint, clear, sync=None, writer: bool = True,
            first_lost: bool = False):
        """Fit every candidate, keeping the best on valid: ``fit_one(tcfg, folder, resume, best)`` fits one
        (``best``: the best FitResult so far, None for the first). A later candidate resumes only if its folder
        ``has_checkpoint`` and it started from the same model (more epochs may have moved the best); otherwise its
        old checkpoint is ``clear``-ed. ``sync`` (a distributed barrier) runs before the warm-start key is written,
        by the ``writer`` only. ``first_lost``: see :meth:`first_lost` (the first candidate is fitted afresh).
        Returns (the best FitResult, its seconds the whole selection's; its train config)."""
        best, seconds, level = None, 0.0, DETAIL.get()
        counts = {}  # train.als_count_weight auto: {count weight: valid score}, the best before its candidates first
        for i, tcfg in enumerate(self):
            if self.cws and not counts and tcfg.als_count_weight in self.cws:
                counts[self.best.als_count_weight] = best.best_value
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
                # each candidate with -v; its sum, the chosen one, below (a first-hour review: 11 lines of jargon
                # before the metrics)
                log.debug("%s: valid %s %.4f at epoch %d of %d%s", self.describe(tcfg), r.metric, r.best_value,
                          r.best_epoch, r.epochs_run, floor)
                fits = i + 1
            if tcfg.als_count_weight in self.cws and tcfg.als_count_weight not in counts:  # not a0's, at it
                counts[tcfg.als_count_weight] = r.best_value
            if better:
                best, self.best = r, tcfg
        if counts:  # as als_user_unobserved auto's line; a tie keeps 0 (the first), which a candidate must beat
            log.log(level, "als_count_weight auto: valid %s %s; chose %g", best.metric,
                    ", ".join(f"{v:.4f} at {b:g}" for b, v in counts.items()), self.best.als_count_weight)
        if self.many:  # 'as fitted': under als_user_unobserved auto, its users are solved again after it (choose_
            # user_unobserved's line says the figure that gives; a first-hour review read 0.2188 then 0.2180 as one fit's)
            log.log(level, "chose %s: valid %s %.4f%s, the best of %d fits", self.describe(self.best), best.metric,
                    best.best_value, " as fitted" if self.best.als_user_unobserved == "auto" else "", fits)
        best.seconds = seconds  # the whole selection, every candidate's fit
        return best, self.best


def exact_index(index_cfg, n_movies: int) -> bool:
    """Whether the run's lists come from an exact index. ``als_user_unobserved: auto`` chooses only then: with an
    approximate one (HNSW over 500K movies) users re-solved at a0 x 2 and 4 were harder for the graph to search,
    recall@10 0.963 at 1 against 0.944 and 0.922 at efSearch 128, and the build's recall check then raised
    efSearch to 1024, an export 8x slower (BENCHMARKS.md, session 12)."""
    from embedrec.serve.index import resolve_kind

    return resolve_kind(index_cfg, n_movies) == "flat"


def floor_of(best: FitResult) -> float:
    """The valid score a candidate warm-started from ``best`` must pass at its first epoch: ``best``'s kept epoch
    scored as every epoch is, before its users' final re-solve (a review: the re-solved score, compared with an
    unsolved first epoch, cut candidates that would have won)."""
    return best.floor_value if best.floor_value is not None else best.best_value


class OneProcess:
    """Where a choice on valid runs (:func:`choose_user_unobserved_on`, :func:`choose_trend_on`): in one process,
    on ``ds`` (the :func:`embedrec.training.fit.with_vectors` view) at ``train_cfg``, its validation evaluator
    kept in ``reuse``. ``shard_als.OnRanks`` is the same on torchrun's ranks: these attributes and methods are
    all that the two paths differ by (the rows counted, the model copied, the runner, the scoring on valid)."""

    reduce = None  # trend.paired_test's: the per-user sums are one process's own
    part = None  # training.lowpass's: every user's rows are here

    def __init__(self, ds, model_cfg, train_cfg, reuse: dict):
        self.data, self.model_cfg, self.train_cfg, self.reuse = ds, model_cfg, train_cfg, reuse
        self.has_valid = len(ds.splits.get("valid", ())) > 0
        self.n_train = len(ds.splits["train"])  # the training rows (every rank's, on ranks)
        self.dim = resolve_dim(model_cfg, ds.n_movies)  # the dimension the config gives the model

    def lowpass_of(self, train_cfg, threads: int, k: int | None = None):
        """training.lowpass.of_rows of the train rows, ``k`` columns wide (default its block_k)."""
        from embedrec.training import lowpass

        return lowpass.of_rows(self.data.splits["train"], self.data.n_users, self.data.n_movies, train_cfg, threads,
                               k=k)

    def threads(self, dim: int) -> int:
        """The threads of an als fit, re-solve or scoring at ``dim`` (the C kernel's rule where it runs them)."""
        return choose_threads(len(self.data.splits["train"]), dim, self.train_cfg.threads,
                              als=numpy_als("als", self.train_cfg, self.data.n_users, self.data.n_movies, dim))

    def settled(self) -> dict | None:
        """training.trend.settled on this dataset."""
        from embedrec.training import trend

        return trend.settled(self.train_cfg, self.has_valid, trend.has_times(self.data), self.data.path)

    def copy(self, model):
        """A copy of ``model`` to re-solve users on."""
        import copy

        from embedrec.training.als import Tables

        if isinstance(model, Tables):
            out = Tables(model.n_users, model.n_movies, model.dim, 0.0, 0, draw=False)
            out.load_state_dict(model.state_dict())
            return out
        return copy.deepcopy(model)

    def runner(self, model):
        """The als runner of ``model`` (its ``refit_users(scale)`` re-solves the users)."""
        return make_runner(model, "als", self.train_cfg, self.data, self.threads(self.dim), self.reuse)

    def scorer(self, metric: str, dim: int):
        """``on_valid(f, per_user=None) -> metrics`` of factors ``f`` (``dim`` wide) on the valid rows."""
        return _valid_evaluator(self.data, self.model_cfg, self.train_cfg, metric, self.threads(dim), self.reuse)

    def blas(self, dim: int):
        """The threads a re-solve or a scoring at ``dim`` runs with."""
        return blas_threads(self.threads(dim))

    def factors(self, model, unrated) -> dict:
        return factors(model, unrated)

    def trend_counts(self, f: dict) -> dict:
        """training.trend.choose's window_zs, counts and n0: its own, of this dataset's train rows."""
        return {}


def choose_user_unobserved(ds, model_cfg, train_cfg, best: FitResult, reuse: dict, apply: bool,
                           scales: tuple | None = None, progress: bool = False) -> float:
    """``train.als_user_unobserved: auto``: the selected model's users re-solved with the unobserved weight a0
    times each of ``scales`` (default als.USER_SCALES; (1.0,) where auto does not choose) against its movies, on
    a copy, the best on valid kept (1 on a tie) and its valid score given to ``best``; with ``apply`` (no refit
    follows: this model is served) ``best``'s users re-solved at it. A few CG steps per user and one validation
    each: cheap beside the fit. 1 is re-solved too: an epoch solves the movies last, so the fitted users lag them.
    In one process (:func:`choose_user_unobserved_on`). ``progress``: a line as it starts and a bar over the users
    solved at each weight (a scale review: 37 s at 1M users with the line alone)."""
    return choose_user_unobserved_on(OneProcess(ds, model_cfg, train_cfg, reuse), best, apply, scales, progress)


def choose_user_unobserved_on(on, best: FitResult, apply: bool, scales: tuple | None = None,
                              progress: bool = False) -> float:
    """:func:`choose_user_unobserved` where ``on`` (:class:`OneProcess`, or ``shard_als.OnRanks``: a collective
    there) runs it: the one algorithm of both paths.

    The re-solve at the scale that is chosen is kept (a copy of its user table, taken as it leads) and not solved
    again: applied to ``best`` with ``apply``, else left on ``best`` for :func:`choose_trend_on`
    (``best.users_resolved``: (the train config at that scale, the rows it was solved on, the user table: all the
    re-solve changes, the movies being the model's own)), which re-solved it on a copy (a scale review: about 5% of
    a train at 1M users)."""
    import copy
    import dataclasses

    from embedrec.bars import step
    from embedrec.training.als import USER_SCALES

    scales = USER_SCALES if scales is None else tuple(scales)
    if not on.has_valid and not apply:
        return scales[0]
    model = on.copy(best.model)
    runner = on.runner(model)
    n_users = on.data.n_users
    if progress:
        log.info("re-solving the selected model's %s users with its movies fixed (the unobserved weight %s: "
                 "train.als_user_unobserved)%s", f"{n_users:,}", ", ".join(f"x{s:g}" for s in scales),
                 ", each scored on valid" if on.has_valid else "")
    chosen, kept = scales[0], None  # kept: (scale, users) of the scale that leads so far, as pick_user_scale picks
    high = higher_is_better(best.metric)
    solves = len(scales) if on.has_valid else 1
    with step("re-solving users" if progress else None, solves * n_users, "user") as tick:
        if on.has_valid:
            on_valid = on.scorer(best.metric, on.dim)
            scores = {}
            with on.blas(on.dim):
                for scale in scales:
                    model.load_state_dict(best.model.state_dict())  # each from the selected model (left as it is)
                    runner.refit_users(scale, tick=tick)
                    scores[scale] = float(on_valid(on.factors(model, best.unrated)).get(best.metric, float("nan")))
                    lead = kept is None or (scores[scale] > scores[kept[0]] if high else scores[scale] < scores[kept[0]])
                    if lead:  # the user table alone (a review: the whole state's copy kept the movies too)
                        kept = (scale, copy.deepcopy(model.state_dict()["user.weight"]))
            chosen = pick_user_scale(scores, best)
        if kept is None or kept[0] != chosen:  # (no valid split: the one scale, solved here)
            model.load_state_dict(best.model.state_dict())
            with on.blas(on.dim):
                runner.refit_users(chosen, tick=tick)
            kept = (chosen, model.state_dict()["user.weight"])
    if apply:
        with_users(best.model, kept[1])
    else:
        best.users_resolved = (dataclasses.replace(on.train_cfg, als_user_unobserved=chosen),
                               on.data.splits["train"], kept[1])
    return chosen


def with_users(model, users) -> None:
    """Loads ``users`` (a user table, ``user.weight``) into ``model`` (a torch model or als.Tables), the rest of
    its state left as it is: a user re-solve kept by :func:`choose_user_unobserved_on` put back."""
    state = dict(model.state_dict())
    state["user.weight"] = users
    model.load_state_dict(state)


def pick_user_scale(scores: dict[float, float], best: FitResult) -> float:
    """The scale of ``scores`` ({scale: valid score}, 1 first) with the best score, the first on a tie; logged
    where there was a choice, and its score given to ``best`` (the chosen configuration's, which the refit
    reports too)."""
    chosen = next(iter(scores))
    high = higher_is_better(best.metric)
    for scale, v in scores.items():
        if v > scores[chosen] if high else v < scores[chosen]:
            chosen = scale
    if len(scores) > 1:
        # (said as a re-solve, with the fit's own figure and why it moved: a shell review, then a first-hour review,
        # read the score at 1 beside the chosen fit's as two figures of one fit)
        fitted = f"its {best.best_value:.4f} as fitted had them solved before" if math.isfinite(best.best_value) \
            else "as fitted, they were solved before"
        log.log(DETAIL.get(), "als_user_unobserved auto, the chosen fit's users solved again after its final movies, "
                "as served (%s): valid %s %s; chose %g", fitted, best.metric,
                ", ".join(f"{v:.4f} at {s:g}" for s, v in scores.items()), chosen)
    best.best_value = scores[chosen]
    return chosen


def fit_selecting(ds, cfg, run_dir: str | Path, *, resume: bool = False, progress: bool = False,
                  refit: bool = False, reuse: dict | None = None, say: bool = True, before_clearing=None):
    """fit(); for als with ``train.als_reg``, ``train.als_recency``, ``train.als_unobserved`` or
    ``train.als_count_weight`` ``auto``, one fit per candidate (see :class:`Selection`; each in its own folder
    under ``run_dir``, each resumable), keeping the best on valid;
    then ``train.als_user_unobserved: auto`` chosen on valid (:func:`choose_user_unobserved`), applied to the
    returned model unless a ``refit`` follows (which applies it). Returns (FitResult, cfg with the chosen values).
    ``reuse``: see :func:`fit.fit` (given by a caller that fits more on the same ``ds``). ``say``: log the
    recency candidates (a selection at another dimension, :func:`choose_dim`, does not repeat them).
    ``before_clearing()``: the caller's own clearing, run once this selection's folders are checked and before
    it clears them (fit_and_refit's: a refusal then leaves the earlier run whole; a review).

    The first candidate starts from the seeded draw; each later one starts from the best candidate so far (a
    warm start: ALS moves to the new setting's solution in a few sweeps instead of a whole fit, measured on
    ML-100K and the synthetic set in BENCHMARKS.md)."""
    import dataclasses

    loss = resolve_loss(cfg.model, cfg.features.active)
    if loss != "als":
        if resume:
            _checkpoint_elsewhere(run_dir, Path(run_dir) / CHECKPOINT, fp_config(cfg.model, cfg.train, cfg.features))
        if before_clearing is not None:
            before_clearing()
        return fit(ds, cfg.model, cfg.train, run_dir, resume=resume, progress=progress, features_cfg=cfg.features), cfg

    # every choice on the valid rows of users with a training rating (fit_and_refit gives that view already,
    # tune-dims the dataset itself)
    ds = with_vectors(ds)
    has_valid = len(ds.splits.get("valid", ())) > 0

    # settled here, on train and valid, so that the refit on train+valid keeps the choice
    # (said once the checkpoint to resume is known to be this config's: a refusal stays the only line; a review)
    recs = recency_candidates(ds, cfg.train, level=logging.DEBUG if resume or not say else logging.INFO)
    sel = Selection.of(cfg.train, recs, has_valid, len(ds.splits["train"]), ds.n_users, ds.n_movies, ds.manifest)
    if resume:
        candidates = sel.by_folder(run_dir)

        def own(folder: Path, ck: dict):
            t = candidates.get(folder)
            return (None, False) if t is None else (
                fp_config(cfg.model, t, cfg.features), resumable(ck.get("fingerprint"), ds, cfg.model, t, cfg.features))

        _checkpoint_elsewhere(run_dir, sel.folder(run_dir, sel.first) / CHECKPOINT,
                              fp_config(cfg.model, sel.first, cfg.features), own, ds)
        recency_candidates(ds, cfg.train, level=logging.INFO if say else logging.DEBUG)  # now said
    check_folders(sel.folders(run_dir) if sel.many else [], resume)  # before any fit: a file or link in the way
    if before_clearing is not None:
        before_clearing()
    if not resume and sel.many:  # a fresh selection: no candidate may later resume another run's checkpoint
        clear_folders(sel.folders(run_dir))
    reuse = {} if reuse is None else reuse

    def fit_one(tcfg, folder, again, best):
        return fit(ds, cfg.model, tcfg, folder, resume=again, progress=progress, features_cfg=cfg.features,
                   init_state=None if best is None else best.model.state_dict(), reuse=reuse,
                   floor=None if best is None else floor_of(best))

    best, tcfg = sel.run(run_dir, fit_one, resume=resume, has_checkpoint=_has_checkpoint, clear=clear_checkpoint,
                         first_lost=resume and sel.many and sel.first_lost(run_dir, _has_checkpoint))
    if tcfg.als_user_unobserved == "auto":  # settled on valid; the refit (or, without one, this model) applies it
        # (chosen only behind an exact index: else 1, its users re-solved all the same)
        scale = choose_user_unobserved(ds, cfg.model, tcfg, best, reuse, apply=not refit,
                                       scales=None if exact_index(cfg.index, ds.n_movies) else (1.0,),
                                       progress=progress)
        tcfg = dataclasses.replace(tcfg, als_user_unobserved=scale)
    return best, dataclasses.replace(cfg, train=tcfg)


def unobserved_candidates(train_cfg, has_valid: bool, nnz: int, n_users: int, n_movies: int) -> tuple:
    """``train.als_unobserved: auto``'s other candidates, half and twice the auto weight (twice at most 1), tried
    last on valid in that order, each warm-started from the best so far: a0 = min(sqrt(density), 36 x density)
    suits the synthetic sets it was set on and ML-100K's random split, where valid takes neither, but on a set
    with continuous tastes (20K x 5K, an independent check) half of it scored valid 0.1564 against 0.1509, and
    kept by the selection it raised test NDCG@10 by 4.5-4.8% on two data seeds, past tuned implicit ALS
    (BENCHMARKS.md, session 19); twice it, on ML-100K's per-user time split, valid 0.1675 against 0.1596 and test
    +0.0077 (0.2203 against 0.2126), and on a first-hour reviewer's 3,000 x 2,000 ratings of 12 tastes test
    0.1937 against 0.1838, level with tuned implicit ALS's 0.1942 (session 45). Where valid keeps the auto weight
    the model is the same, for one more epoch of the selection."""
    from embedrec.training.als import auto_unobserved

    if train_cfg.als_unobserved != "auto" or not has_valid:
        return ()
    a0 = auto_unobserved(nnz, n_users, n_movies)
    return (round(a0 / 2, 6),) + ((round(min(1.0, 2 * a0), 6),) if a0 < 1 else ())


def count_candidates(train_cfg, has_valid: bool, manifest: dict) -> tuple:
    """``train.als_count_weight: auto``'s other candidate (als.COUNT_WEIGHTS' 1; the first, 0, is the selection's
    own), tried on valid at the best reg and recency, before the unobserved weight's half (warm-started from the
    best), the better kept, 0 on a tie. Only
    where the ratings are counts (a dataset ingested with data.repeats=sum, its ``manifest`` says) and there is a
    validation split: elsewhere auto is 0 and nothing more is fitted. On a synthetic click log 1 gained 0.0068
    test NDCG@10 where the counts follow the users' tastes and lost 0.0062 where they are noise; valid NDCG@10
    ranked 0 and 1 alike (docs/known-gaps.md). Not where every count is 1 (a log without repeats: its
    ``rating_scale`` tops at 1), where 1 + c log(1) is 1 and the fit would be the same model (an independent check)."""
    from embedrec.training.als import COUNT_WEIGHTS

    if train_cfg.als_count_weight != "auto" or not has_valid or manifest.get("repeats") != "sum":
        return ()
    scale = manifest.get("rating_scale")
    if isinstance(scale, (list, tuple)) and len(scale) == 2 and scale[1] == 1:
        return ()
    return COUNT_WEIGHTS[1:]


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
    # the run's own and its candidates' (not a dimension's, which choose_dim resumes, nor a user's als-backup/)
    for p in (root / CHECKPOINT, *(q for q in sorted(root.glob(f"als-*/{CHECKPOINT}"))
                                   if CANDIDATE_NAME.fullmatch(q.parent.name))):
        if not p.is_file():
            continue
        ck = load_checkpoint(p)
        want, matches = own(p.parent, ck) if own is not None else (None, False)
        if matches:
            continue  # this run's own, in its place
        if ds is not None and not made_on(ck, ds):  # another folder's, or ingested again since
            raise other_config(p, "dataset (its manifest differs)", ck, ds.path)
        # the config differs, or (the same config) the dataset; no value differs: the selection does
        differs = difference(ck.get("config"), want, "") if want is not None else ""
        raise other_config(p, differs or ("dataset (its manifest differs)" if want is not None else difference(
            ck.get("config"), fp_cfg, "train.als_reg or train.als_recency (auto, or one value)")), ck,
            None if ds is None else ds.path)


def warm_key(best: FitResult | None) -> dict | None:
    """What a warm-started candidate started from: the best candidate so far, named by that candidate's run
    (best epoch, its valid metric and loss), which a deterministic fit reproduces exactly."""
    if best is None:
        return None
    row = best.history[best.best_epoch - 1] if 0 < best.best_epoch <= len(best.history) else {}
    return {"best_epoch": best.best_epoch, "best_value": best.best_value, "loss": row.get("loss")}


def warm_matches(folder: Path, key: dict | None) -> bool:
    from embedrec.fsutil.files import loads_json

    try:
        return loads_json((Path(folder) / WARM).read_text(encoding="utf-8")) == json.loads(json.dumps(key))
    except (OSError, ValueError):
        return False


def write_warm(folder: Path, key: dict) -> None:
    from embedrec.fsutil.files import atomic_write_text

    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(folder) / WARM, json.dumps(key))


def fit_and_refit(ds, cfg, work_dir: str | Path, *, resume: bool = False, progress: bool = False):
    """What ``embedrec train`` fits: :func:`fit_selecting` on train (validated on valid), then
    ``train.als_dims`` (:func:`choose_dim`), then with ``train.refit`` and a validation split the refit on
    train+valid. Returns (dataset of the final fit, its FitResult, the selection's FitResult, cfg with the chosen
    values)."""
    from embedrec.training.als import auto_unobserved

    refit = cfg.train.refit and len(ds.splits.get("valid", ())) > 0  # on every valid row, the vectorless users' too
    given, cfg = cfg, within_rank(cfg, ds.n_users, ds.n_movies)  # the default dimension at most the rank
    full = ds
    if not (cfg.features.active and cfg.features.user):
        ds = with_vectors(ds)  # every choice on the valid rows of users with a training rating (fit.with_vectors)
        say_left_out(len(full.splits.get("valid", ())), len(ds.splits.get("valid", ())),
                     lambda: vectorless_users(full.splits["valid"], ds.splits["valid"]))
    has_valid = len(ds.splits.get("valid", ())) > 0
    user_scale_auto = cfg.train.als_user_unobserved == "auto"
    reuse = {}
    # before the selection: what it says of a list is said first, not after minutes of fitting (a review)
    dims = dim_candidates(cfg, len(ds.splits["train"]), has_valid, ds.n_users, ds.n_movies)
    check_dim_folders(work_dir, dims, resume)  # before anything is cleared: a refusal leaves the earlier run whole
    check_folders([Path(work_dir) / REFIT] if refit else [], resume)

    def clear():  # once the selection has checked its candidates' folders too
        if not resume:
            clear_training(work_dir)

    selected, chosen = fit_selecting(ds, cfg, work_dir, resume=resume, progress=progress, refit=refit, reuse=reuse,
                                     before_clearing=clear)
    warn_above_rank(cfg, ds.n_users, ds.n_movies, given)  # after the first fit: a refusal of the data stays the one
    # line
    selected, cfg = choose_dim(cfg, selected, chosen, work_dir, dims, lambda c, folder, again: fit_selecting(
        ds, c, folder, resume=again, progress=progress, refit=refit, reuse=reuse, say=False),
        resume=resume, has_checkpoint=_has_checkpoint,
        auto_a0=auto_unobserved(len(ds.splits["train"]), ds.n_users, ds.n_movies))
    # added to the factors (the refit fits without it), on the users as served: re-solved at the chosen
    # als_user_unobserved already where no refit follows or the scale was a number (every fit ends so)
    cfg = choose_trend(ds, cfg, selected, reuse, resolved=not refit or not user_scale_auto, progress=progress)
    cfg = choose_newuser_prior(ds, cfg, selected, progress)
    if selected.lowpass_block is not None:  # its basis W alone, which the served block is made over (the final
        selected.lowpass_basis = selected.lowpass_block.w  # fit's rows, lowpass.from_basis); its users' x let go
    selected.lowpass_block = None
    if refit:
        merged, result = refit_train_valid(full, cfg, selected, Path(work_dir), progress)
    else:
        merged, result = full, selected
    selected.path_start = None  # the first candidate's tables: needed by the refit only
    return merged, result, selected, cfg


def say_left_out(given: int, kept: int, users, *, leader: bool = True, none_too: bool = False) -> None:
    """One line where valid's ``given`` ratings are cut to ``kept`` (those of users with a training rating: a
    review found a global cut's choice made on 1,733 of 10,000 without a word); ``users()`` counts the users left
    out (on ranks a collective: every rank calls this, the ``leader`` says it). None kept: said only with
    ``none_too`` (the ranks'; one process's fit says it, :func:`embedrec.training.fit.no_valid_reason`)."""
    if given and not kept:
        if none_too and leader:
            from embedrec.training.fit import no_valid_reason

            log.warning("%s: no early stopping, the last epoch is kept", no_valid_reason(given))
    elif kept < given:
        n = users()
        if leader:
            log.info("choices on valid are made on %s of its %s ratings, those of users with a training rating: "
                     "the %s users without one are left out (no fit gives them a vector; train.refit's fit on "
                     "train+valid learns them)", f"{kept:,}", f"{given:,}", f"{n:,}")


def say_left_out_on_ranks(g, valid, kept) -> None:
    """:func:`say_left_out` on torchrun's ranks (``g``: their group), each holding ``valid`` and ``kept`` of its
    users: the counts summed over them. A collective."""
    say_left_out(int(g.total(len(valid))), int(g.total(len(kept))), lambda: int(g.total(vectorless_users(valid, kept))),
                 leader=g.leader, none_too=True)


def choose_newuser_prior(ds, cfg, selected, progress: bool = False):
    """cfg with train.als_newuser_prior as weights (training.newuser_prior.choose, on the selected als model's
    movies and the recent popularity chosen) where it is auto and the dataset has valid rows (its choice in
    ``selected.newuser_prior``); else as given, auto as 0 (off: said) where nothing is to choose it on, or where
    the table chosen does not beat the fold-in alone by newuser_prior.MARGIN (said with its gain). ``progress``: a
    bar over the validation users' lists scored."""
    from embedrec.training import newuser_prior, trend
    from embedrec.training.als import user_solve

    if resolve_loss(cfg.model, cfg.features.active) != "als":
        return cfg
    given = cfg.train.als_newuser_prior
    warn_growing_prior(given)
    if given != "auto":
        return cfg
    ds = with_vectors(ds)
    f = trend.served(lowpass_added(factors(selected.model, selected.unrated), OneProcess(ds, cfg.model, cfg.train, {}),
                                   cfg.train, selected), ds, cfg.train)
    tr = ds.splits["train"]
    solve = user_solve(cfg.train, len(tr), ds.n_users, ds.n_movies, trend.has_times(ds))
    if f.get("lowpass"):  # a new user's block too (serve.foldin.als_vector)
        solve["lowpass"] = f["lowpass"]
    dim = f["movie_factors"].shape[1]
    threads = choose_threads(len(tr), dim, cfg.train.threads,
                             als=numpy_als("als", cfg.train, ds.n_users, ds.n_movies, dim))
    with blas_threads(threads):
        got = newuser_prior.choose(ds, f, solve, liked_weight(ds.manifest, cfg.train, solve), cfg.train.seed,
                                   bar="als_newuser_prior: lists scored" if progress else None)
    return newuser_prior_chosen(cfg, selected, got)


def warn_growing_prior(given) -> None:
    """A train.als_newuser_prior table given by hand whose weight grows with the movies told: taken as given, and
    said (a review), by one process and torchrun's rank 0 alike."""
    from embedrec.training import newuser_prior

    if isinstance(given, list) and any(b > a for a, b in zip(given, given[1:])):
        i = next(i for i, (a, b) in enumerate(zip(given, given[1:])) if b > a)
        log.warning("train.als_newuser_prior: the weight grows with the movies told (%g at %d, %g at %d): a longer "
                    "history leans more on the most popular movies, which auto never chooses", given[i],
                    newuser_prior.TOLD[i], given[i + 1], newuser_prior.TOLD[i + 1])


def liked_weight(manifest: dict, train_cfg, solve: dict) -> float:
    """A liked movie's weight in the served fold-in of an als run (its ``solve``, training.als.user_solve): the
    top of the rating scale (1 on counts), as training weighed it (serve.foldin.rated_rows, implicit_weights), at
    the middle of a history (untimed_weight): what the new users' prior is chosen with (training.newuser_prior)."""
    from embedrec.serve import foldin
    from embedrec.training.als import count_weight

    scale = manifest.get("rating_scale")
    counts = manifest.get("repeats") == "sum"
    top = 1.0 if counts or not scale else float(scale[1])
    return foldin.implicit_weights({0: top}, tuple(scale) if scale else None, None, float(train_cfg.als_rating_weight),
                                   count_weight(train_cfg) if counts else 0.0)[0] * foldin.untimed_weight(solve)


def newuser_prior_chosen(cfg, selected, got):
    """cfg with train.als_newuser_prior as training.newuser_prior.choose's ``got`` gives it (None: nothing to choose
    on), said in one line, and its record in ``selected.newuser_prior`` (metrics.json's selection): one process's
    choice and torchrun's rank 0's (shard_als)."""
    from embedrec.training import newuser_prior

    if got is None:
        log.info("als_newuser_prior auto: off (0), nothing to choose it on (no validation user with a training "
                 "rating, or 10 trained movies or fewer): a new user's list is the fold-in's alone")
        return cfg.updated({"train.als_newuser_prior": 0.0})
    weights, detail = got
    selected.newuser_prior = detail
    told = ", ".join(map(str, newuser_prior.TOLD))
    if all(v is None for v in detail["valid"]):  # no n scored: nothing measured (a review read a table of '-')
        log.info("als_newuser_prior auto: off (0), a new user's list is the fold-in's alone: %s validation users, "
                 "fewer than the %d a number of told movies needs to be measured on", f"{max(detail['users']):,}",
                 newuser_prior.MIN_USERS)
        return cfg.updated({"train.als_newuser_prior": 0.0})
    below = detail.get("below_margin")
    if below is not None:  # the best table's gain is within noise's (newuser_prior.MARGIN): off, said with it
        mine, alone = (sum(v for v in newuser_prior.weighed(vs) if v is not None)
                       for vs in (below["valid"], detail["alone"]))
        log.info("als_newuser_prior auto: off (0), a new user's list is the fold-in's alone: the best table (%s for "
                 "%s told movies) gains %+.2f%% on it (valid ndcg@10 of %s validation users told as many, summed over "
                 "the n up to %d: %.4f against %.4f), where a gain must pass %g%%",
                 ", ".join(f"{w:g}" for w in below["weights"]), told, 100 * (mine / alone - 1) if alone else 0.0,
                 f"{max(detail['users']):,}", newuser_prior.LAST_WEIGHED, mine, alone, 100 * newuser_prior.MARGIN)
        return cfg.updated({"train.als_newuser_prior": 0.0})
    log.info("als_newuser_prior auto: a new user told %s movies weighs the most popular %s (valid ndcg@10 of "
             "%s validation users told as many: %s; the fold-in alone %s)", told,
             ", ".join(f"{w:g}" for w in weights), f"{max(detail['users']):,}",
             ", ".join("-" if v is None else f"{v:.4f}" for v in detail["valid"]),
             ", ".join("-" if v is None else f"{v:.4f}" for v in detail["alone"]))
    return cfg.updated({"train.als_newuser_prior": weights})


def choose_trend(ds, cfg, selected, reuse: dict, resolved: bool, progress: bool = False):
    """cfg with train.als_trend (and its window and activity) as numbers: chosen on valid (training.trend.choose)
    on the selected als model where any is auto and the dataset has valid rows; else auto's off value (0), the
    default window (1 without timestamps) and activity 0. ``resolved``: the selected model's users are re-solved at the chosen
    als_user_unobserved already (no refit follows); else that is done on a copy first, so the choice is made on
    the users the served model has (a review: it was made on the fit's own). Users without a trained vector
    (split.cold_start's) are left out of the choice: their scores would be the term alone, while serving answers
    them as unknown. The chosen term's valid score becomes the selection's. In one process
    (:func:`choose_trend_on`). ``progress``: a count of the valid rankings scored."""
    if resolve_loss(cfg.model, cfg.features.active) != "als":
        return cfg
    ds = with_vectors(ds)  # (fit_and_refit's view already; a direct caller's dataset too)
    return choose_trend_on(OneProcess(ds, cfg.model, cfg.train, reuse), cfg, selected, resolved, progress)


def choose_trend_on(on, cfg, selected, resolved: bool, progress: bool = False):
    """:func:`choose_trend` where ``on`` (:class:`OneProcess`, or ``shard_als.OnRanks``: a collective there, the
    windows' z and the paired test's sums over every rank) runs it, at ``cfg.train``: the one algorithm of both
    paths."""
    import copy

    from embedrec.bars import counting, step
    from embedrec.training import trend

    tcfg = cfg.train
    # the selection's re-solve of the users (choose_user_unobserved_on), taken here or let go (a model's tables)
    resolve, selected.users_resolved = selected.users_resolved, None
    done = on.settled()
    lowpass_done = lowpass_settled(on, tcfg)
    if lowpass_done is not None:
        cfg = cfg.updated(lowpass_done)
        tcfg = cfg.train
    if done is not None and lowpass_done is not None:
        return cfg.updated(done) if done else cfg
    model = selected
    if not resolved and tcfg.als_user_unobserved != "auto":  # the chosen scale's re-solve, on a copy
        model = copy.copy(selected)
        model.model = copy.deepcopy(selected.model)
        if resolve is not None and resolve[0] == tcfg and resolve[1] is on.data.splits["train"]:
            with_users(model.model, resolve[2])  # the selection's own re-solve at this scale: the same numbers
        else:
            choose_user_unobserved_on(on, model, apply=True, scales=(float(tcfg.als_user_unobserved),),
                                      progress=progress)
    f = on.factors(model.model, model.unrated)
    if lowpass_done is None:  # the low-pass block's weight, chosen first: the trend is then weighed on the model
        cfg, f = choose_lowpass_on(on, cfg, selected, f, progress)  # with it, as it is served
        tcfg = cfg.train
        if done is not None:
            return cfg.updated(done) if done else cfg
    elif float(tcfg.als_lowpass) > 0:  # a number set: the trend weighed on the model with the block at it
        f = lowpass_added(f, on, tcfg, selected)
    dim = f["movie_factors"].shape[1]
    on_valid = on.scorer(selected.metric, dim)  # users with a vector
    # (a scale review: 17 s of valid rankings at 200K users before its first line)
    with step("als_trend" if progress else None, None, "valid rankings") as tick:
        on_valid = counting(on_valid, tick)
        paired = trend.paired_test(lambda fx, batches: on_valid(fx, per_user=batches), selected.metric,
                                   reduce=on.reduce)
        with on.blas(dim):
            beta, window, gamma, value = trend.choose(on.data, tcfg, f, on_valid, selected.metric,
                                                      higher_is_better(selected.metric), paired=paired,
                                                      **on.trend_counts(f))
    if value is not None and beta > 0:
        selected.best_value = value
    return cfg.updated({"train.als_trend": beta, "train.als_trend_window": window, "train.als_trend_activity": gamma})


def lowpass_settled(on, train_cfg) -> dict | None:
    """The train.als_lowpass value where nothing is to be chosen on valid ({} where it is a number already), or
    None where :func:`choose_lowpass_on` is to choose it: auto with valid rows (``on``: one process or torchrun's
    ranks). Auto without valid rows is off (0), said."""
    c = train_cfg.als_lowpass
    if c != "auto":
        return {}
    if not on.has_valid:
        log.info("als_lowpass auto: off (0), no validation split to choose its weight on")
        return {"train.als_lowpass": 0.0}
    from embedrec.training import lowpass

    ds = on.data
    why = lowpass.too_large(int(on.n_train), ds.n_users, ds.n_movies,
                            lowpass.block_k(train_cfg, ds.n_users, ds.n_movies))
    if why:
        log.info("als_lowpass auto: off (0), %s; set train.als_lowpass to a weight to make one", why)
        return {"train.als_lowpass": 0.0}
    return None


def choose_lowpass_on(on, cfg, selected, f: dict, progress: bool = False):
    """(cfg with train.als_lowpass as the number chosen on valid, ``f`` with the block at it): the block of the
    selection's train rows (training.lowpass, one SVD), each weight of lowpass.CS scored on valid on ``f`` (the
    selection's factors with its users as served), the best kept where it beats the model alone by
    lowpass.MARGIN and lowpass.Z paired standard errors, else 0 (the model alone, ``f`` as given). Its record
    (the valid scores, the spread, the seconds of the SVD) in ``selected.lowpass`` (metrics.json's selection)."""
    import time

    from embedrec.bars import counting, step
    from embedrec.training import lowpass, trend

    tcfg = cfg.train
    dim = f["movie_factors"].shape[1]
    ds = on.data
    ks = lowpass.widths(tcfg, ds.n_users, ds.n_movies, dim, next(iter(selected.dims or {dim: None})))  # (model.dim's
    # own first: dims.choose_dim)
    t0 = time.perf_counter()
    log.info("als_lowpass auto: the low-pass block of the %s training pairs (%s columns) ...",
             f"{int(on.n_train):,}", ", ".join(map(str, ks)))
    lp = on.lowpass_of(tcfg, on.threads(dim), k=ks[-1])
    seconds = time.perf_counter() - t0
    on_valid = on.scorer(selected.metric, dim)
    with step("als_lowpass" if progress else None, None, "valid rankings") as tick:
        on_valid = counting(on_valid, tick)
        paired = trend.paired_test(lambda fx, batches: on_valid(fx, per_user=batches), selected.metric,
                                   reduce=on.reduce)
        with on.blas(dim):
            c, s, detail = lowpass.choose(f, lp, on_valid, selected.metric, higher_is_better(selected.metric),
                                          "auto", int(tcfg.seed), paired=paired, ks=ks, part=on.part)
    detail["svd_seconds"] = round(seconds, 3)
    k = int(detail["k"])
    selected.lowpass, selected.lowpass_block = detail, lowpass.prefix(lp, k)
    scores = ", ".join(f"{v:.4f} at {w}" for w, v in detail["valid"].items())
    wide = (f" at {k} columns (the best of {', '.join(map(str, ks))}: train.als_dims chose {dim} dimensions)"
            if len(ks) > 1 else "")
    if c > 0:
        log.info("als_lowpass auto: the low-pass block weighs %g%s (valid %s %s; the model alone %.4f; its SVD "
                 "%.1fs)", c, wide, selected.metric, scores, detail["alone"], seconds)
        selected.best_value = detail["valid"][f"{c:g}"]
        f = lowpass.with_block(f, selected.lowpass_block, c, s)
    else:
        log.info("%s", lowpass_off_line(selected.metric, detail, wide, scores, seconds))
    # (off: the narrowest width recorded, as a block set by hand later would start from it)
    return cfg.updated({"train.als_lowpass": float(c), "train.als_lowpass_k": k if c > 0 else ks[0]}), f


def lowpass_off_line(metric: str, detail: dict, wide: str, scores: str, seconds: float) -> str:
    """als_lowpass auto's line where it keeps the model alone: the rule, and where the margin was passed, the paired
    test that refused the best weight, with its figures (a first-hour review read +0.84% against 'a gain must pass
    0.5%' and found the block off without a reason)."""
    from embedrec.training import lowpass

    pair = detail.get("paired")
    test = (f" and {lowpass.Z:g} paired SE (the best, c {detail['best']:g}: {pair['mean']:+.4f} a user, SE "
            f"{pair['se']:.4f})" if pair else f" and {lowpass.Z:g} paired SE")
    return (f"als_lowpass auto: off (0), the model alone (valid {metric} {detail['alone']:.4f}; with the block{wide} "
            f"{scores}, where a gain must pass {100 * lowpass.MARGIN:g}%{test}; its SVD {seconds:.1f}s)")


def lowpass_added(f: dict, on, train_cfg, selected) -> dict:
    """``f`` (the selection's factors) with the low-pass block at train.als_lowpass (a number by now) over ``on``'s
    train rows (:class:`OneProcess`, or ``shard_als.OnRanks``: a collective there), the block made once and kept in
    ``selected.lowpass_block`` for the choices after it; ``f`` at 0."""
    from embedrec.training import lowpass

    c = lowpass.weight_of(train_cfg)
    if c <= 0 or not on.n_train:
        return f
    if selected.lowpass_block is None:
        selected.lowpass_block = on.lowpass_of(train_cfg, on.threads(f["movie_factors"].shape[1]))
    lp = selected.lowpass_block
    return lowpass.with_block(f, lp, c, lowpass.spread(f, lp, int(train_cfg.seed), on.part))
