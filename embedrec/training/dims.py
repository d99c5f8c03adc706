"""``train.als_dims``: the selection again at other dimensions, and the choice among them.

After the selection at ``model.dim``, :func:`choose_dim` runs the whole selection again at each dimension
:func:`dim_candidates` gives (``auto``: 2x, then 4x while the doubling pays), each in its own folder
``als-dim-<d>`` and resumable; :func:`pick_dim` keeps the smallest dimension within DIM_GAIN of the best valid
score. A fresh run first clears what an earlier run's training wrote in those folders, and nothing else
(``folders.clear_dim_folders``). One process (``select.fit_and_refit``) and torchrun's ranks (``shard_als``) alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from embedrec.config_sections import MAX_DIM, ModelConfig
from embedrec.metrics import higher_is_better
from embedrec.training.fit import FitResult, resolve_dim, resolve_loss
from embedrec.training.loop import DETAIL

log = logging.getLogger("embedrec")


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
    d = resolve_dim(cfg.model, n_movies)
    if cfg.train.als_dims != "auto":
        dims = tuple(dict.fromkeys(x for x in cfg.train.als_dims if x != d))
        rank = min(n_users, n_movies)
        if say and any(x > rank for x in dims):  # tried as asked, but said (a red team: 2048 on 943 users, 89 s)
            log.warning("train.als_dims: %s above min(users, movies) = %d, which bounds the rank the factors can "
                        "hold: %s tried as asked, at a larger model's time and disk for no more rank",
                        ", ".join(str(x) for x in dims if x > rank), rank,
                        "they are" if sum(x > rank for x in dims) > 1 else "it is")
        return dims
    if _dim_alone(cfg):  # a review: `model.dim=16` trained 32, said at INFO only; implicit's factors=16 is 16
        if say:  # -v: it is what the user asked for (a line before a resume's refusal was a review's finding)
            log.debug("model.dim %d was given: train.als_dims auto tries no other dimension («--set "
                     "'train.als_dims=[%d]'|train.als_dims=[%d]» measures %d too)", d, 2 * d, 2 * d, 2 * d)
        return ()
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


def dim_source(cfg) -> str:
    """Where model.dim came from, the one account both rules below read (:func:`dim_chosen`, which
    :func:`_dim_alone` asks first): ``"set"`` (a --set, an override or updated() of it), ``"file"`` (a config
    file's own value, other than the default; ``auto`` is one, its default being a number), ``"file default"`` (a
    config file giving the default's value, as `embedrec config` and configs/default.yaml write every key) or
    ``"default"`` (nobody gave it)."""
    if "model.dim" in getattr(cfg, "set_keys", frozenset()):
        return "set"
    if "model.dim" not in getattr(cfg, "explicit_keys", frozenset()):
        return "default"
    return "file" if cfg.model.dim != ModelConfig.dim else "file default"


def _dim_alone(cfg) -> bool:
    """Whether train.als_dims auto trains model.dim alone: the user chose it (:func:`dim_chosen`, what
    :func:`within_rank` reads too: a --set, updated(), a config file's own value; a file's default is no choice)
    and did not give train.als_dims with it. The dimension asked for is then the one trained (and config.yaml
    records als_dims [], so `train -c` on it trains the same). A file that gives both (configs/default.yaml, or what
    `embedrec config` writes) keeps auto's search from its model.dim, unless a --set gives model.dim over it; a list
    is searched whatever model.dim's source (:func:`dim_candidates`), model.dim its first dimension, trained as
    asked where chosen."""
    if cfg.model.dim == "auto" or not dim_chosen(cfg):  # (a file giving the default's value alone: no choice, for
        return False                                    # the rank as for the search; a review found it one here)
    # a --set (or updated()) of model.dim over a file that gives both (a review: ./embedrec.yaml as `embedrec
    # config` writes it kept the search), or a file that gives model.dim alone; the keys given with it decide
    given_with = getattr(cfg, "set_keys" if dim_source(cfg) == "set" else "explicit_keys", frozenset())
    return "train.als_dims" not in given_with


def dim_chosen(cfg) -> bool:
    """Whether the user chose model.dim (:func:`dim_source`): a --set, an override or updated() of it, or a config
    file's own value (a file's default, as `embedrec config` and configs/default.yaml write every key, is no
    choice)."""
    return dim_source(cfg) in ("set", "file")


def within_rank(cfg, n_users: int, n_movies: int):
    """``cfg`` with model.dim at min(users, movies) where the user did not choose it (:func:`dim_chosen`) and the
    default is above it: the factors can hold no more rank than that, so the rest would be time and disk for
    nothing (a first-hour review: a 120-movie catalogue warned at every train to set model.dim=120). Else ``cfg``
    as given (a dimension chosen above it is trained as asked, and warned of: :func:`warn_above_rank`). What
    train fits, records (config.yaml, the manifest) and tune-dims takes as the config's own dimension."""
    import dataclasses

    rank = min(n_users, n_movies)
    if rank < 1 or dim_chosen(cfg) or resolve_dim(cfg.model, n_movies) <= rank:
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dim=rank))


def warn_above_rank(cfg, n_users: int, n_movies: int, given=None) -> None:
    """Say a model.dim above min(users, movies): the factors can hold no more rank than that, so the rest is time
    and disk for nothing (a first-hour review: a 5-movie catalogue trained 128 dimensions without a word). ``given``:
    the config before :func:`within_rank`, where that lowered the default to the rank: an INFO note says so."""
    d, rank = resolve_dim(cfg.model, n_movies), min(n_users, n_movies)
    if d > rank:
        log.warning("model.dim %d is above min(users, movies) = %d, which bounds the rank the factors can hold; "
                    "«--set model.dim=%d» trains the same rank in less time and disk", d, rank, rank)
    elif given is not None and resolve_dim(given.model, n_movies) != d:
        log.info("model.dim %d: the default, %d, is above min(users, movies) = %d, which bounds the rank the factors "
                 "can hold, so %d is trained (the same rank in less time and disk; «--set model.dim=N» chooses "
                 "another)", d, resolve_dim(given.model, n_movies), rank, d)


def choose_dim(cfg, selected: FitResult, chosen, run_dir, dims: tuple[int, ...], select_dim, *, resume: bool,
               has_checkpoint, auto_a0: float | None = None, park: bool = True):
    """``train.als_dims``: the whole selection again at each dimension of ``dims`` (``select_dim(cfg at that
    dimension, folder, resume)`` -> (FitResult, cfg with the chosen values), in its own folder als-dim-<d>,
    resumable: ``has_checkpoint(folder)``); the choice is :func:`pick_dim`'s, and ``auto`` stops once the
    dimension just tried is not the choice or beat the best before it by no more than AUTO_DIM_NEXT_GAIN.
    ``cfg``: the config as given (its ``auto`` values); ``selected``, ``chosen``: the selection at model.dim.
    Returns (the chosen FitResult, its seconds every selection's, its ``dims`` each dimension's valid score and
    ``dims_seconds`` its selection's; ``auto_a0``: the number train.als_unobserved auto stands for, said beside
    it; its chosen cfg, model.dim the number and train.als_dims [] besides the
    selection's chosen values, as config.yaml records them). One process and torchrun's ranks.

    ``park``: while a dimension fits, the tables of those fitted before that may still be chosen are on disk
    (:class:`Parked`), and those that can no longer be chosen let go; the chosen one's read back at the end, the
    same bytes (a scale review: the chosen dimension's tables, 512 MB of users at 1M x 128, and its users' re-solve
    were held while the later dimensions fit). False (torchrun's ranks): held in memory.

    A whole selection, not one fit at the chosen settings: on a 200-cluster synthetic set one fit at 256 with
    128's choices scored valid 0.1760 (128: 0.1753), the selection at 256 0.1832 (BENCHMARKS.md, session 21)."""
    import dataclasses

    if not dims:
        if chosen is not None and cfg.train.als_dims == "auto" and _dim_alone(cfg):  # config.yaml: the dimension
            chosen = dataclasses.replace(chosen, train=dataclasses.replace(chosen.train, als_dims=[]))  # trained
        return selected, chosen
    dim0 = int(selected.model.dim)  # model.dim resolved (auto: the fourth root)
    results = {dim0: (selected, chosen)}
    seconds, scores, took = selected.seconds, {dim0: selected.best_value}, {dim0: selected.seconds}
    pick = dim0
    parked = Parked(run_dir) if park else None
    try:
        for d in dims:
            if parked is not None:  # those that may still be chosen (the others are let go below)
                for other, _ in results.values():
                    parked.park(other)
            folder = Path(run_dir) / f"als-dim-{d}"
            again = resume and any(has_checkpoint(f) for f in (folder, *sorted(folder.glob("als-*"))))
            log.debug("model.dim %d (train.als_dims): the selection again%s", d, ", resumed" if again else "")
            detail = DETAIL.set(logging.DEBUG)  # its candidates' lines with -v; this dimension's sum below
            try:
                r, c = select_dim(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dim=d)), folder,
                                  again)
            finally:
                DETAIL.reset(detail)
            seconds += r.seconds
            scores[d], took[d], results[d] = r.best_value, r.seconds, (r, c)
            log.debug("model.dim %d: valid %s %.4f, its own selection choosing %s (model.dim %d: %.4f)", d, r.metric,
                      r.best_value, describe_chosen(c.train, auto_a0), pick, scores[pick])  # the sum: als_dims' line
            before, pick = scores[pick], pick_dim(scores, r.metric)
            for k, (other, _) in results.items():  # a replaced pick's kept user re-solve let go (a review: a user
                if k != pick:  # table held while later dimensions fit); one picked again is solved again, the same
                    other.users_resolved = None  # numbers
                    if parked is not None and not may_be_picked(scores, k, r.metric):
                        parked.drop(other)  # never chosen now: neither held nor written
            if cfg.train.als_dims == "auto" and (pick != d or not _gains(r.best_value, before, AUTO_DIM_NEXT_GAIN,
                                                                         r.metric)):
                break
        if parked is not None:
            for k, (other, _) in results.items():
                if k != pick:
                    parked.drop(other)
            parked.back(results[pick][0])  # (its tables read back once the others are let go)
    finally:
        if parked is not None:
            parked.close()
    top = max(scores, key=lambda d: scores[d] if higher_is_better(selected.metric) else -scores[d])
    why = (f"; {pick} is within {DIM_GAIN:.1%} of {top}'s score, and a smaller dimension costs less memory and "
           "time" if top != pick else "")  # a first-hour review: the lower score chosen, and no word why
    if pick != dim0:  # the lines above were model.dim's selection (a review: its als_user_unobserved read as served)
        why += f"; at {pick} its own selection chose {describe_chosen(results[pick][1].train, auto_a0)}"
    log.info("als_dims: chose model.dim %d (valid %s %s%s)", pick, selected.metric,
             ", ".join(f"{v:.4f} at {k}" for k, v in scores.items()), why)
    best, best_cfg = results[pick]
    best.seconds, best.dims, best.dims_seconds = seconds, scores, took
    return best, dataclasses.replace(best_cfg, model=dataclasses.replace(best_cfg.model, dim=pick),
                                     train=dataclasses.replace(best_cfg.train, als_dims=[]))


def may_be_picked(scores: dict[int, float], d: int, metric: str, share: float = DIM_GAIN) -> bool:
    """Whether :func:`pick_dim` may still choose dimension ``d`` once more dimensions are scored: the best score
    only improves as scores are added, so a dimension outside ``share`` of it now stays out; one not scored (NaN)
    is chosen only as the first while none is."""
    import math

    finite = [v for v in scores.values() if math.isfinite(v)]
    if not math.isfinite(scores[d]):
        return not finite and d == next(iter(scores))
    high = higher_is_better(metric)
    edge = share_edge(max(finite) if high else min(finite), share, high)
    return scores[d] >= edge if high else scores[d] <= edge


class Parked:
    """train.als_dims' tables of the dimensions fitted before the one fitting now, on disk while it fits
    (:func:`choose_dim`). :meth:`park` writes each table a FitResult holds (its model's: als.Tables' arrays or a
    torch model's parameters and buffers; the refit's starting state ``path_start``; the users' re-solve
    ``users_resolved``), each once however many of them share it, as .npy files into a side folder of the run
    (``.als-dims.embedrec-tmp-<pid>-<8 random>``, run_layout.PARKED), and lets them go; :meth:`back` reads them into
    new buffers (numpy's on a cache line, as als.Tables allocates; torch's by torch, on their device), shared as
    they were shared, so what follows (the trend's choice, the refit, the publish) is the same to the bit.
    :meth:`drop` lets a FitResult's tables go, held or parked. A table that cannot be written (a full disk) stays
    held, as before. The folder goes with :meth:`close`; one a killed train left, with the next train's parking in
    that run (``outputs.sweep_stale``: its writer gone). A file is read back only where its stat is the one it was
    written with (fsutil.integrity.stat_key: a file written or replaced meanwhile is refused, not read)."""

    def __init__(self, run_dir):
        self.run_dir, self.folder = Path(run_dir), None
        self.files: dict = {}  # key -> (path, shape, dtype, torch device or None, stat key, bytes)
        self.held: dict = {}  # id(result) -> (result, [(put, key)])

    @staticmethod
    def _slots(result: FitResult) -> list:
        """(get, put) of each table ``result`` holds."""
        out = []
        model = result.model
        if hasattr(model, "named_parameters"):  # a torch model (a torchrun rank's ShardTables, the torch fit)
            for _, t in [*model.named_parameters(), *model.named_buffers()]:
                out.append((lambda t=t: t.data, lambda v, t=t: setattr(t, "data", v)))
        elif model is not None:  # als.Tables: its numpy tables
            for name in [n for n, v in vars(model).items() if _key(v) is not None]:
                out.append((lambda n=name: getattr(model, n), lambda v, n=name: setattr(model, n, v)))
        state = result.path_start
        for k in list(state or ()):
            out.append((lambda k=k: state[k], lambda v, k=k: state.__setitem__(k, v)))
        if result.users_resolved is not None:  # (let go meanwhile where no longer the pick: left so)
            out.append((lambda: result.users_resolved[2], lambda v: result.users_resolved is not None and setattr(
                result, "users_resolved", (*result.users_resolved[:2], v))))
        return out

    def park(self, result: FitResult) -> None:
        """``result``'s tables written and let go (nothing where parked already)."""
        if id(result) in self.held:
            return
        from embedrec.fsutil.integrity import stat_key

        slots, made = [], []
        try:
            for get, put in self._slots(result):
                v = get()
                key = _key(v)
                if key is None:
                    continue
                # a table is one file however many of this result's slots share it; the address read in the key is
                # never matched across results, where a table let go may leave its address to another (a review)
                key = (id(result), *key)
                if key not in self.files:
                    path = self._folder() / f"{len(self.files) + len(made)}.npy"
                    a = v if isinstance(v, np.ndarray) else v.detach().cpu().numpy()
                    made.append(path)
                    np.save(path, a, allow_pickle=False)
                    self.files[key] = (path, a.shape, v.dtype, None if isinstance(v, np.ndarray) else v.device,
                                       stat_key(path), a.nbytes)
                slots.append((put, key, None if isinstance(v, np.ndarray) else v.new_empty(0)))
        except OSError as e:  # a full disk, ...: this one held, as before
            for path in made:
                with contextlib.suppress(OSError):
                    path.unlink()
            self.files = {k: f for k, f in self.files.items() if f[0] not in made}
            log.debug("train.als_dims: model.dim %d's tables held in memory (%s)",
                      int(getattr(result.model, "dim", 0)), e)
            return
        for put, _, empty in slots:
            put(empty)
        self.held[id(result)] = (result, [(put, key) for put, key, _ in slots])
        log.debug("train.als_dims: model.dim %d's tables parked in %s", int(getattr(result.model, "dim", 0)),
                  self.folder)

    def back(self, result: FitResult) -> None:
        """``result``'s parked tables read back into it (nothing where it is held)."""
        _, slots = self.held.pop(id(result), (None, []))
        loaded = {}
        for put, key in slots:
            if key not in loaded:
                loaded[key] = self._read(*self.files[key])
            put(loaded[key])
        for key in loaded:  # held again: its files go (its id may be another result's once it is let go)
            with contextlib.suppress(OSError):
                self.files.pop(key)[0].unlink()

    def drop(self, result: FitResult) -> None:
        """``result``'s tables let go, held or parked (its files removed where no other parked result shares them)."""
        _, slots = self.held.pop(id(result), (None, []))
        if not slots:
            for get, put in self._slots(result):
                v = get()
                if _key(v) is not None:
                    put(None if isinstance(v, np.ndarray) else v.new_empty(0))
        kept = {key for _, s in self.held.values() for _, key in s}
        for _, key in slots:
            if key not in kept and key in self.files:
                with contextlib.suppress(OSError):
                    self.files.pop(key)[0].unlink()

    def close(self) -> None:
        if self.folder is not None:
            from embedrec.fsutil.files import rmtree

            rmtree(self.folder)
            self.folder = None

    def _folder(self) -> Path:
        if self.folder is None:
            from embedrec.fsutil.files import real_dir, tempfile_module
            from embedrec.fsutil.outputs import TMP, sweep_stale
            from embedrec.run_layout import PARKED

            sweep_stale(self.run_dir / PARKED)  # a killed train's
            self.folder = Path(tempfile_module().mkdtemp(prefix=f".{PARKED}.{TMP}-{os.getpid()}-",
                                                         dir=real_dir(self.run_dir)))
        return self.folder

    @staticmethod
    def _read(path: Path, shape, dtype, device, written, nbytes: int):
        from embedrec.errors import ArtifactError
        from embedrec.fsutil.integrity import stat_key

        try:
            size, now = os.path.getsize(path), stat_key(path)
            if now != written or size < nbytes:
                raise OSError("written or replaced since it was parked")
            if device is None:  # numpy: on a cache line, as als.Tables' own
                buf = np.empty(nbytes + 64, np.uint8)
                start = -buf.ctypes.data % 64
                out = buf[start:start + nbytes].view(dtype).reshape(shape)
                into = buf[start:start + nbytes]
            else:
                import torch

                out = torch.empty(shape, dtype=dtype)
                into = out.numpy().reshape(-1).view(np.uint8)
            with open(path, "rb") as fh:
                fh.seek(size - nbytes)  # after np.save's header
                if nbytes and fh.readinto(into) != nbytes:
                    raise OSError("cut short")
        except OSError as e:
            raise ArtifactError(f"train.als_dims' copy of a dimension's tables '{path}' could not be read back ("
                                f"{getattr(e, 'strerror', None) or e}); train again (with «--resume|resume=True» it takes up the "
                                "checkpoints)") from None
        return out if device is None or str(device) == "cpu" else out.to(device)


def _key(v):
    """What tells a table apart (two names of one table share it), or None for what is no table to park: a
    C-contiguous numpy array or torch tensor (numpy's dtypes)."""
    if isinstance(v, np.ndarray):
        return ("numpy", v.__array_interface__["data"][0], v.shape, v.dtype.str) if v.flags.c_contiguous else None
    if type(v).__module__.startswith("torch") and hasattr(v, "data_ptr") and v.is_contiguous() and v.dtype in _torch_np():
        return ("torch", v.data_ptr(), tuple(v.shape), str(v.dtype), str(v.device))
    return None


def _torch_np() -> set:
    import torch

    return {torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool}


def describe_chosen(tcfg, auto_a0: float | None = None) -> str:
    """'als_reg 0.02, als_unobserved 0.1066, als_user_unobserved 1': what a selection chose; an auto unobserved
    weight as '0.2133 (auto)' given ``auto_a0`` (the selection's lines say it so)."""
    def num(v):
        return v if isinstance(v, str) else f"{v:.4g}"
    a0 = tcfg.als_unobserved
    a0 = f"{auto_a0:.4g} (auto)" if a0 == "auto" and auto_a0 is not None else num(a0)
    recency = f"als_recency {num(tcfg.als_recency)}, " if tcfg.als_recency else ""  # chosen on a time split
    counts = f"als_count_weight {num(tcfg.als_count_weight)}, " if tcfg.als_count_weight else ""  # on counts
    return (f"als_reg {num(tcfg.als_reg)}, {recency}{counts}als_unobserved {a0}, "
            f"als_user_unobserved {num(tcfg.als_user_unobserved)}")


def _gains(value: float, before: float, share: float, metric: str) -> bool:
    margin = abs(before) * share
    return value > before + margin if higher_is_better(metric) else value < before - margin


def pick_dim(scores: dict[int, float], metric: str, share: float = DIM_GAIN) -> int:
    """The smallest dimension whose valid score is within ``share`` (DIM_GAIN) of the best one's: a larger
    dimension doubles the factors' memory and every later command's time, so it must win by more than that share
    (``share`` 0: the best, the smallest among ties). The same choice in any order of ``scores`` ({dimension:
    valid score}). train.als_dims' choice, and tune-dims' (tune.choose: tune.tolerance auto is DIM_GAIN)."""
    import math

    high = higher_is_better(metric)
    finite = {d: v for d, v in scores.items() if math.isfinite(v)}
    if not finite:  # nothing scored (no validation user could be ranked): model.dim, the first
        return next(iter(scores))
    best = max(finite.values()) if high else min(finite.values())
    edge = share_edge(best, share, high)
    return min(d for d, v in finite.items() if (v >= edge if high else v <= edge))


def share_edge(best: float, share: float, higher_better: bool) -> float:
    """The worst score still within ``share`` of ``best`` (of its size: a negative score's margin is not turned
    around): what :func:`pick_dim` keeps, and tune.png's band."""
    margin = abs(best) * share
    return best - margin if higher_better else best + margin
