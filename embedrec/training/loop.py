"""The training loop, written once over interchangeable epoch runners, with everything else as callbacks.

A runner is any object with ``epoch(gen) -> mean loss`` that updates the model in place (``minibatch.Minibatch``
for the autograd optimisers, ``sgd.Hogwild`` for the C kernel, ``als.ALS`` for implicit ALS); if it keeps
state of its own (an optimiser) it also has ``state_dict()`` / ``load_state_dict()``. The loop seeds epoch ``e``
from ``(seed, e)``, so a run resumed after epoch ``e`` repeats the uninterrupted one exactly.

Callbacks (the LensKit ``ModelTrainer`` / minGPT pattern): each may define ``start(state)``, ``measure(state,
row)`` (adds metrics to the epoch's row, may set ``state.stop``), ``record(state, row)`` (writes the finished
row somewhere) and ``close(state)``. ``measure`` runs for every callback before any ``record``; the loop stamps
``row['elapsed']`` between the two.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import ArtifactError, Interrupted, TrainingError, first_line, how_stopped, stop_signal
from embedrec.fsutil.files import atomic_write_bytes, loads_json

if TYPE_CHECKING:  # annotations only: torch is imported where a runner or model needs it
    import torch

log = logging.getLogger("embedrec")
# the level of the lines a fit says as it stops and a selection says per candidate: INFO, but DEBUG (-v) in the
# selection at another dimension (training.dims.choose_dim), which sums each dimension up in one line
DETAIL = contextvars.ContextVar("embedrec_detail", default=logging.INFO)


@dataclass
class LoopState:
    """What the loop and its callbacks share; everything in it except ``model``/``runner`` is checkpointed."""

    model: torch.nn.Module
    runner: object
    epochs: int
    t0: float
    epoch: int = 0  # the epoch running now (0-based)
    history: list[dict] = field(default_factory=list)
    value: float = float("nan")  # this epoch's validation metric
    best: float | None = None
    best_epoch: int = -1
    best_state: dict | None = None
    bad: int = 0  # epochs since the best
    stop: bool = False

    def resume_from(self, ck: dict, where: object = "the checkpoint") -> None:
        _check_checkpoint(ck, self.model.state_dict(), where)
        if ck["epoch"] + 1 > self.epochs:  # train.epochs is left out of the fingerprint (more continues a fit), but
            # fewer than it ran is another fit (a review: a fresh run killed while clearing resumed the earlier
            # run's 6 epochs under train.epochs=4)
            raise ArtifactError(f"the checkpoint '{where}' holds {ck['epoch'] + 1} epochs, more than train.epochs "
                                f"{self.epochs}: another run's; train without «--resume|resume=True», or resume with "
                                f"«--set train.epochs={ck['epoch'] + 1}|train.epochs={ck['epoch'] + 1}» or more")
        self.model.load_state_dict(ck["model"])
        if hasattr(self.runner, "load_state_dict"):
            self.runner.load_state_dict(ck["optimizer"])
        self.history, self.best, self.best_epoch, self.bad = ck["history"], ck["best"], ck["best_epoch"], ck["bad"]
        self.best_state = ck["best_state"]
        self.epoch = self.epochs if ck.get("stopped") else ck["epoch"] + 1
        if self.history:  # the seconds (each row's elapsed, the fit's) go on from the interrupted part's last row
            self.t0 -= float(self.history[-1].get("elapsed", 0.0))


def _check_checkpoint(ck: dict, own: dict, where) -> None:
    """Refuse a checkpoint that does not hold what this fit saves (its CRCs pass, but a hand-edited or foreign
    one: a review found a missing 'epoch' an internal error, a narrower table a broadcast error, int8 tables
    resumed into another model, and a negative epoch an endless loop)."""
    def bad(what: str) -> ArtifactError:
        return ArtifactError(f"checkpoint '{where}' {what}, not what this fit saves; train again without "
                             "«--resume|resume=True»")

    for key, kind in (("model", dict), ("epoch", int), ("history", list), ("best_epoch", int), ("bad", int)):
        if not isinstance(ck.get(key), kind) or isinstance(ck.get(key), bool):
            raise bad(f"has no valid '{key}'")
    if not 0 <= ck["epoch"] < 10 ** 6 or not -1 <= ck["best_epoch"] <= ck["epoch"]:
        raise bad(f"names epoch {ck['epoch']} (best {ck['best_epoch']})")
    best = ck.get("best_state")
    if best is not None and not isinstance(best, dict):
        raise bad("has no valid 'best_state'")
    for part, state in (("", ck["model"]), ("best_state ", best or {})):
        for name, value in own.items():
            got = state.get(name)
            if (got is None and not part) or got is not None and (
                    tuple(got.shape) != tuple(value.shape) or _dtype(got) != _dtype(value)):
                shape = "missing" if got is None else f"{tuple(got.shape)} {_dtype(got)}"
                raise bad(f"holds {part}'{name}' as {shape} where the model has {tuple(value.shape)} {_dtype(value)}")


def _dtype(a) -> str:
    """'float32' of a numpy array or a torch tensor alike."""
    return str(a.dtype).split(".")[-1]


class Diverged(Exception):
    """Raised by a runner mid-epoch when a step's loss is not finite; the loop names the epoch."""

    def __init__(self, value: float, step: int):
        super().__init__(value, step)
        self.value, self.step = value, step


def diverged(value: float, where: str, lr: float) -> TrainingError:
    return TrainingError(f"the loss became {value} {where}: training diverged; the learning rate "
                         f"(train.lr={lr:g}) is probably too high, try «--set train.lr={lr / 10:g}»")


def run(state: LoopState, seed: int, lr: float, callbacks: list) -> LoopState:
    """Epochs ``state.epoch .. state.epochs - 1``; Ctrl-C (or SIGTERM as ``errors.Terminated``) becomes
    ``Interrupted`` saying what was kept."""
    for cb in callbacks:
        getattr(cb, "start", _nothing)(state)
    try:
        for epoch in range(state.epoch, state.epochs):
            state.epoch = epoch
            te = time.perf_counter()
            gen = _generator(seed * 1_000_003 + epoch) if getattr(state.runner, "uses_generator", True) else None
            state.model.train()
            try:
                loss = state.runner.epoch(gen)
            except Diverged as d:
                raise diverged(d.value, f"at epoch {epoch + 1}, step {d.step}", lr) from None
            if not math.isfinite(loss):
                raise diverged(loss, f"in epoch {epoch + 1}", lr)
            row = {"epoch": epoch + 1, "loss": loss, "seconds": round(time.perf_counter() - te, 3)}
            for cb in callbacks:
                getattr(cb, "measure", _nothing)(state, row)
            row["elapsed"] = round(time.perf_counter() - state.t0, 3)  # wall since fit() began, validation included
            state.history.append(row)
            for cb in callbacks:
                getattr(cb, "record", _nothing)(state, row)
            if state.stop:
                break
    except KeyboardInterrupt as e:
        _close(state, callbacks)
        term = stop_signal(e)
        # between an epoch's row and the next epoch (in a callback: validation, the log, the checkpoint, the bar)
        after = bool(state.history) and state.history[-1].get("epoch") == state.epoch + 1
        where = f"training {how_stopped(term)} {'after' if after else 'in'} " \
                f"epoch {state.epoch + 1}"
        ck = next((cb for cb in callbacks if isinstance(cb, Checkpoint)), None)
        if not state.history or (ck is not None and not ck.saved):
            when = "before its checkpoint was written" if state.history else "before any epoch finished"
            raise Interrupted(f"{where}, {when}: nothing was saved; rerun the same command to start again",
                              terminated=term, saved=False, where=where) from None
        kept = f"; the checkpoint of epoch {ck.saved} is in {ck.path}" if ck else ""
        if ck and after and ck.saved != state.epoch + 1:  # its row was logged, its checkpoint not yet written (a
            kept = f", before its checkpoint was written{kept} (resuming runs epoch {ck.saved + 1} again)"  # review)
        raise Interrupted(f"{where}{kept}: continue with «the same command plus --resume|resume=True»",
                          terminated=term, where=where, kept=kept) from None
    _close(state, callbacks)
    if state.best_state is not None:
        state.model.load_state_dict(state.best_state)
    return state


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def _nothing(*_a) -> None:
    return None


def _close(state: LoopState, callbacks: list) -> None:
    for cb in callbacks:
        getattr(cb, "close", _nothing)(state)


# ---------------------------------------------------------------------------------------------- callbacks
class Validation:
    """Scores the epoch's model on the validation split: ``evaluate()`` returns {metric: value}."""

    def __init__(self, evaluate, metric: str):
        self.evaluate, self.metric = evaluate, metric

    def measure(self, state: LoopState, row: dict) -> None:
        vm = self.evaluate()
        row.update({f"valid_{k}": v for k, v in vm.items() if not k.startswith("users_")})
        state.value = vm[self.metric]


class KeepBest:
    """Keeps the best epoch's weights; with ``patience`` > 0, stops after that many epochs without a gain (0: runs
    every epoch, the best still kept).
    Without a validation split every epoch counts as the best (the last one is kept).

    ``floor``: for a warm-started candidate (training.select.fit_selecting), the best value of the candidates before it,
    which its start already scores: a first epoch below it stops the fit (the new setting leads away from what
    validation prefers). Measured for the als_reg candidates: on ML-100K (both protocols, 6 splits) and the
    synthetic sets, every candidate that won was above the floor after its first epoch, and every one below it
    never rose above it (BENCHMARKS.md). The als_recency candidates were traced on ML-100K's three time splits:
    the one below the floor after its first epoch also scored below it when it was fitted on its own."""

    def __init__(self, metric: str, higher_is_better: bool, patience: int, validated: bool,
                 floor: float | None = None):
        self.metric, self.high, self.patience, self.validated = metric, higher_is_better, max(patience, 0), validated
        self.floor, self.stopped = floor, None

    def _below_floor(self, state: LoopState) -> bool:
        v = state.value
        return (self.validated and self.floor is not None and state.epoch == 0
                and not (v > self.floor if self.high else v < self.floor))

    def measure(self, state: LoopState, row: dict) -> None:
        v = state.value
        improved = (not self.validated or state.best is None
                    or (v > state.best if self.high else v < state.best))
        if improved:
            state.best, state.best_epoch, state.bad = v, state.epoch, 0
            state.best_state = copy.deepcopy(state.model.state_dict())
        else:
            state.bad += 1
        state.stop = (self.validated and 0 < self.patience <= state.bad) or self._below_floor(state)

    def record(self, state: LoopState, row: dict) -> None:
        if state.stop:  # said once the loop ends, after the epoch's own line (a first-hour review: the stop came first)
            self.stopped = (state.epoch, state.value, self._below_floor(state))

    def close(self, state: LoopState) -> None:
        if self.stopped is None:
            return
        epoch, value, below = self.stopped
        if below:
            log.log(DETAIL.get(), "stopped after epoch 1: %s %.4f, %s the %.4f this warm start began from", self.metric,
                     value, ("below" if value < self.floor else "not above") if self.high else
                     ("above" if value > self.floor else "not below"), self.floor)
        else:
            log.log(DETAIL.get(), "early stop after epoch %d: %s has not improved for %d epoch%s (best %.4f at epoch %d)",
                     epoch + 1, self.metric, state.bad, "" if state.bad == 1 else "s", state.best, state.best_epoch + 1)


class JsonlLog:
    """One JSON line per epoch in ``path``; on resume the file is rewritten from the checkpoint's history, so a
    kill between an epoch's line and its checkpoint never leaves that epoch twice."""

    def __init__(self, path: Path, resumed: bool):
        self.path, self.resumed = path, resumed

    def start(self, state: LoopState) -> None:
        if self.resumed:
            text = "".join(json.dumps(r) + "\n" for r in state.history)
            atomic_write_bytes(self.path, text.encode(), durable=False)
        else:
            self.path.unlink(missing_ok=True)

    def record(self, state: LoopState, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


class TensorBoardLog:
    """Scalars into an event file in ``folder`` when the tensorboard package is installed (silently nothing
    otherwise), one record per epoch, written by ``tfevents`` (no torch, no TensorFlow)."""

    def __init__(self, folder: Path):
        import importlib.util

        self.folder, self.path = folder, None
        self.enabled = importlib.util.find_spec("tensorboard") is not None

    def record(self, state: LoopState, row: dict) -> None:
        from embedrec.training import tfevents

        if not self.enabled:
            return
        if self.path is None:
            self.path = tfevents.new_event_file(self.folder)
        values = {key.replace("valid_", "valid/").replace("@", "_at_"): scalar for key, scalar in row.items()
                  if key != "epoch" and isinstance(scalar, (int, float)) and not isinstance(scalar, bool)}
        with open(self.path, "ab") as fh:
            fh.write(tfevents.tfrecord(tfevents.scalars_event(values, state.epoch + 1, time.time())))


class Checkpoint:
    """After every epoch, everything needed to resume (written by rename: a kill leaves the previous one)."""

    def __init__(self, path: Path, fingerprint: str, config: dict, dataset: str | None = None):
        # dataset: the prepared folder it was made on, so a resume naming another one is told which (a review)
        self.path, self.fingerprint, self.config, self.dataset = path, fingerprint, config, dataset
        self.saved = 0  # the epochs the checkpoint on disk holds (what an interrupted run says it kept)

    def start(self, state: LoopState) -> None:
        self.saved = len(state.history)  # resumed: the epochs of the checkpoint it resumed from; else 0

    def record(self, state: LoopState, row: dict) -> None:
        runner = state.runner
        # Ctrl-C or SIGTERM during the write waits for it: the file and self.saved (which the interrupted run's
        # message names) change together (a first-hour review: an interrupt between the rename and the count
        # named the epoch before the one on disk)
        with signals_deferred():
            save(self.path, {"fingerprint": self.fingerprint, "config": self.config,
                             "model": state.model.state_dict(),
                             "optimizer": runner.state_dict() if hasattr(runner, "state_dict") else {},
                             "epoch": state.epoch, "history": state.history, "best": state.best,
                             "best_epoch": state.best_epoch, "best_state": state.best_state, "bad": state.bad,
                             "stopped": state.stop, "dataset": self.dataset})
            self.saved = state.epoch + 1


@contextlib.contextmanager
def signals_deferred():
    """SIGINT, SIGTERM and SIGHUP that arrive inside the block are delivered when it ends (in the main thread, where
    Python runs signal handlers; elsewhere nothing is deferred)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    kinds = [k for k in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if signal.getsignal(k) is not signal.SIG_IGN]
    old = {}
    try:
        for k in kinds:
            old[k] = signal.signal(k, lambda n, _frame: pending.append(n))
        yield
    finally:
        for k, h in old.items():
            signal.signal(k, h)
        if pending:
            os.kill(os.getpid(), pending[0])  # delivered to the handlers put back


# without a bar (stderr not a terminal: a log file, a pipe, a CI console), an epoch line at most this often: a
# fit of 15-20 s epochs wrote nothing for minutes (a first-hour review); ML-100K's als fits say nothing more
LINE_EVERY = 15.0


class Progress:
    """A tqdm bar on stderr, one step per epoch, the loss and the validation metric as its postfix. ``may_stop``:
    early stopping may end the fit before train.epochs, a cap rather than the count, so the bar shows no fill or
    time left for it (a review: '5/100 [00:00<00:12]', then a stop at epoch 6). Without a bar, ``lines``: an
    epoch's line at INFO once LINE_EVERY seconds have passed since the fit began or the last such line. A fit its
    checkpoint holds finished (--resume) shows one still line: the epochs it ran, 'stopped early' where it did, and
    its last row."""

    def __init__(self, desc: str, metric: str | None, enabled: bool, may_stop: bool = False, lines: bool = True):
        self.desc, self.metric, self.enabled, self.bar, self.may_stop = desc, metric, enabled, None, may_stop
        self.lines, self.said = lines and not enabled, time.monotonic()

    def start(self, state: LoopState) -> None:
        from tqdm import tqdm

        capped = "{desc}: epoch {n_fmt} of at most {total_fmt} [{elapsed}, {rate_fmt}{postfix}]"
        done = len(state.history)  # the epochs its checkpoint holds (0 for a fresh fit)
        if state.epoch >= state.epochs and done:
            # finished before this command (read back from its checkpoint, no epoch runs here): the epochs it ran
            # and its last row, as the fit's own bar ended, not the epoch the loop skips to (a scale review: each
            # candidate stopped after 1-4 epochs showed 'epoch 100 of at most 100' on --resume), and no time or rate
            stopped = ", stopped early" if done < state.epochs else ""
            self.bar = tqdm(total=state.epochs, initial=done, unit="epoch", desc=self.desc, disable=not self.enabled,
                            dynamic_ncols=True, bar_format="{desc}: epoch {n_fmt} of " + ("at most " if self.may_stop
                            else "") + "{total_fmt}" + stopped + " (its checkpoint){postfix}")
            last = state.history[-1]
            value = last.get(f"valid_{self.metric}") if self.metric else None
            shown = {self.metric: f"{value:.4f}"} if isinstance(value, (int, float)) else {}
            if isinstance(last.get("loss"), (int, float)):
                self.bar.set_postfix({"loss": f"{last['loss']:.4f}", **shown})
            return
        self.bar = tqdm(total=state.epochs, initial=min(state.epoch, state.epochs), unit="epoch", desc=self.desc,
                        disable=not self.enabled, dynamic_ncols=True, bar_format=capped if self.may_stop else None)

    def record(self, state: LoopState, row: dict) -> None:
        self.bar.update(1)
        shown = {self.metric: f"{state.value:.4f}"} if self.metric else {}
        self.bar.set_postfix({"loss": f"{row['loss']:.4f}", **shown})
        if log.isEnabledFor(logging.DEBUG):  # -v: one readable line, 4 decimals (a first-hour pass: a raw dict)
            log.debug("epoch %d: %s", state.epoch + 1, " ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k != "epoch"))
        elif self.lines and time.monotonic() - self.said >= LINE_EVERY:
            self.said = time.monotonic()
            shown = f", valid {self.metric} {state.value:.4f}" if self.metric else ""
            log.info("%s: epoch %d of %s%d, loss %.4f%s", self.desc, state.epoch + 1,
                     "at most " if self.may_stop else "", state.epochs, row["loss"], shown)

    def close(self, state: LoopState) -> None:
        if self.bar is not None:
            self.bar.close()


class EachEpoch:
    """Calls ``fn(row)`` after each epoch is recorded (tune-dims' live table, tests that interrupt a run)."""

    def __init__(self, fn):
        self.fn = fn

    def record(self, state: LoopState, row: dict) -> None:
        self.fn(row)


# ---------------------------------------------------------------------------------------------- checkpoints
# A checkpoint whose model state holds numpy arrays only (als.Tables) is written without torch: an .npz of the
# arrays (allow_pickle=False) plus the rest of the state as JSON in its "meta" member; else torch.save.
_NP_STATES = ("model", "best_state")


def save(path: Path, state: dict) -> None:
    if all(isinstance(v, np.ndarray) for k in _NP_STATES for v in (state.get(k) or {}).values()):
        model, best = state.get("model") or {}, state.get("best_state")
        # the best state is the model itself whenever the last epoch was the best: written once, not twice
        same = best is not None and best.keys() == model.keys() and all(np.array_equal(best[n], model[n]) for n in best)
        arrays = {f"{k}/{name}": v for k in _NP_STATES if not (same and k == "best_state")
                  for name, v in (state.get(k) or {}).items()}
        meta = {k: v for k, v in state.items() if k not in _NP_STATES}
        meta["has_best_state"] = "model" if same else best is not None
        atomic_write_bytes(path, lambda fh: np.savez(fh, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                                                     **arrays), durable=False)
    else:
        import torch

        atomic_write_bytes(path, lambda fh: torch.save(state, fh), durable=False)


class DamagedCheckpoint(ArtifactError):
    """A checkpoint a resume cannot read (damaged, truncated, not one training saves, non-finite weights): its
    message advises training again without resuming, which a caller with no such choice says its own way
    (cross-validate: a red team was told to 'train again without resuming', an option it has not)."""


def load(path: Path) -> dict:
    import zipfile
    import zlib

    try:
        with open(path, "rb"):  # is_zipfile says False for a file it cannot open: no "damaged" for a permission
            pass
        whole = zipfile.is_zipfile(path)  # both kinds of checkpoint are zip archives
    except OSError as e:
        from embedrec.fsutil.files import read_denied

        denied = read_denied(e, path, "checkpoint")  # a red team: "damaged ... train again", which loses the work
        if denied is not None:
            raise denied from None
        raise DamagedCheckpoint(f"checkpoint '{path}' cannot be read ({first_line(e)}); train again without "
                            "resuming") from None
    if not whole:
        raise DamagedCheckpoint(f"checkpoint '{path}' is damaged or truncated (not a complete archive); train again "
                            "without resuming")
    import pickle

    try:
        return _checked(_load_numpy(path) or _load_torch(path), path)
    except ArtifactError:
        raise
    # what a damaged archive raises from zipfile, numpy or torch.load (weights_only's refusals are
    # UnpicklingError); a TypeError or AttributeError is a bug of ours, not a damaged file, and goes up as one
    except (OSError, EOFError, ValueError, KeyError, IndexError, RuntimeError, zipfile.BadZipFile,
            pickle.UnpicklingError, zlib.error) as e:
        raise DamagedCheckpoint(f"checkpoint '{path}' cannot be read ({first_line(e)}); train again without "
                            "resuming") from None


_NEEDED = ("fingerprint", "model", "epoch")  # what every checkpoint Checkpoint.record writes holds


def _checked(state, path: Path) -> dict:
    """A loaded checkpoint that holds what training saves, its weights finite (a red team: a valid archive of a
    text was an internal error on --resume, one of {} was blamed on a re-ingest, and NaN weights on the learning
    rate)."""
    if not isinstance(state, dict) or any(k not in state for k in _NEEDED) or not isinstance(state["model"], dict):
        lacks = [k for k in _NEEDED if k not in state] if isinstance(state, dict) else []
        raise DamagedCheckpoint(f"checkpoint '{path}' is not one embedrec's training saves ("
                            + (f"it lacks {', '.join(repr(k) for k in lacks)}" if lacks else
                               f"it holds {type(state).__name__ if not isinstance(state, dict) else 'no model'}")
                            + "); train again without resuming")
    for part in _NP_STATES:
        for name, v in (state.get(part) or {}).items():
            if not _finite(v):
                raise DamagedCheckpoint(f"checkpoint '{path}' holds non-finite values in its {part} '{name}' (damaged, "
                                    "or saved by a fit that diverged); train again without resuming")
    return state


def _finite(v) -> bool:
    if isinstance(v, np.ndarray):
        return not np.issubdtype(v.dtype, np.floating) or bool(np.isfinite(v).all())
    if hasattr(v, "is_floating_point") and v.is_floating_point():  # a torch tensor
        import torch

        return bool(torch.isfinite(v).all())
    return True


def _load_numpy(path: Path) -> dict | None:
    import zipfile

    with zipfile.ZipFile(path) as z:  # a whole zip: load() checked
        if "meta.npy" not in z.namelist():
            return None
    with np.load(path, allow_pickle=False) as z:
        state = loads_json(z["meta"].tobytes())
        for k in _NP_STATES:
            state[k] = {name.split("/", 1)[1]: z[name] for name in z.files if name.startswith(k + "/")}
    has_best = state.pop("has_best_state")
    if has_best == "model":
        state["best_state"] = {name: v.copy() for name, v in state["model"].items()}
    elif not has_best:
        state["best_state"] = None
    return state


def _load_torch(path: Path) -> dict:
    import zipfile

    import torch

    # torch.load never checks the members' CRC-32s (np.load does, through zipfile): a flipped bit in a tensor
    # would be resumed and published, so every member is read and checked first
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
    if bad is not None:
        raise ArtifactError(f"checkpoint '{path}' is damaged (its member '{bad}' fails its CRC-32 check); train "
                            "again without resuming")
    return torch.load(path, map_location="cpu", weights_only=True)
