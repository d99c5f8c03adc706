"""The fit loop: batches, loss, optimiser, per-epoch validation, early stopping, checkpoints, resume.

Every random draw of epoch e comes from a generator seeded with (seed, e), so a run resumed from the
checkpoint of epoch e continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from embedrec import evaluate as E
from embedrec import losses
from embedrec.errors import ArtifactError, ConfigError, Interrupted, TrainingError, first_line
from embedrec.fsutil import atomic_write_bytes
from embedrec.metrics import higher_is_better, parse_metric
from embedrec.model import MatrixFactorization, auto_dim
from embedrec.threads import choose_threads

log = logging.getLogger("embedrec")
CHECKPOINT = "checkpoint.pt"
LOG = "metrics.jsonl"


@dataclass
class FitResult:
    model: MatrixFactorization
    loss: str
    metric: str
    best_epoch: int
    best_value: float
    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0
    unrated: np.ndarray | None = None  # movies without training ratings (scored from features, if any)


def resolve_loss(model_cfg, features: bool = False) -> str:
    """auto: mse for explicit ratings; als for implicit, or the full/sampled softmax when side features are on
    (als fits the plain model only)."""
    if model_cfg.objective == "explicit":
        return "mse"
    if model_cfg.loss == "auto":
        return "softmax" if features else "als"
    return model_cfg.loss


def resolve_metric(model_cfg, train_cfg) -> str:
    if train_cfg.metric != "auto":
        return train_cfg.metric.lower()
    return "rmse" if model_cfg.objective == "explicit" else f"ndcg@{min(train_cfg.eval_k)}"


def resolve_dim(model_cfg, n_users: int, n_movies: int) -> int:
    return auto_dim(n_users, n_movies) if model_cfg.dim == "auto" else int(model_cfg.dim)


def build_model(n_users: int, n_movies: int, model_cfg, train_cfg, global_mean: float,
                fs=None) -> MatrixFactorization:
    """The plain model, or FeatureMF when a FeatureSet with columns or crosses is given."""
    loss = resolve_loss(model_cfg, fs is not None and not fs.empty)
    full_softmax = loss == "softmax" and n_movies <= train_cfg.softmax_full_max
    if full_softmax and train_cfg.optimizer == "sparse_adam":
        raise ConfigError("config key 'train.optimizer': sparse_adam cannot train a full softmax (dense gradients); "
                          "use adam, sgd or adagrad, or lower train.softmax_full_max for sampled softmax")
    sparse = train_cfg.optimizer in ("sgd", "adagrad", "sparse_adam") and not full_softmax
    explicit = model_cfg.objective == "explicit"
    kw = dict(user_bias=explicit and model_cfg.biases, movie_bias=model_cfg.biases and loss != "als", sparse=sparse,
              init_std=model_cfg.init_std, global_mean=global_mean if explicit else 0.0)
    dim = resolve_dim(model_cfg, n_users, n_movies)
    if fs is not None and not fs.empty:
        if train_cfg.optimizer == "sparse_adam":
            raise ConfigError("config key 'train.optimizer': sparse_adam cannot train feature embeddings "
                              "(dense gradients); use adam, sgd or adagrad with features")
        from embedrec.model import FeatureMF

        return FeatureMF(n_users, n_movies, dim, fs, explicit=explicit, **kw)
    return MatrixFactorization(n_users, n_movies, dim, **kw)


def make_optimizer(model: MatrixFactorization, train_cfg) -> torch.optim.Optimizer:
    params = list(model.parameters())
    name, lr = train_cfg.optimizer, train_cfg.lr
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sparse_adam":
        return torch.optim.SparseAdam(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def factors(model: MatrixFactorization, unrated: np.ndarray | None = None) -> dict[str, np.ndarray | float]:
    """Plain numpy copies of what the model scores with.

    ``unrated`` marks movies without training ratings (kept by data.keep_unrated_movies). A feature model
    scores them from their features alone; a plain model cannot score them, so their vector is zero and
    their bias -1000: they never rank above a movie it learned.
    """
    if hasattr(model, "export"):
        return model.export(None if unrated is None else torch.from_numpy(unrated))
    with torch.no_grad():
        f = {
            "user_factors": model.user.weight.detach().numpy().copy(),
            "movie_factors": model.movie.weight.detach().numpy().copy(),
            "user_bias": (model.user_bias.weight.detach().numpy()[:, 0].copy()
                          if model.user_bias is not None else None),
            "movie_bias": (model.movie_bias.weight.detach().numpy()[:, 0].copy()
                           if model.movie_bias is not None else None),
            "global_mean": float(model.global_mean),
        }
    return f if unrated is None or not unrated.any() else _mask_unrated(f, unrated)


def _mask_unrated(f: dict, unrated: np.ndarray) -> dict:
    f["movie_factors"][unrated] = 0.0
    if f["movie_bias"] is None:
        f["movie_bias"] = np.zeros(f["movie_factors"].shape[0], np.float32)
    f["movie_bias"][unrated] = -1000.0
    return f


def evaluate_model(f: dict, ds, split: str, explicit: bool, ks, metric: str | None = None,
                   ranking: bool = True, max_users: int = 0) -> dict:
    """Metrics of factors ``f`` on ``split`` of dataset ``ds`` (rating metrics when explicit, ranking when asked)."""
    part = ds.splits[split]
    out: dict = {}
    if len(part) == 0:
        return out
    if explicit:
        pred = E.predict_ratings(f["user_factors"], f["movie_factors"], f["user_bias"], f["movie_bias"],
                                 f["global_mean"], part.user, part.movie, ds.rating_scale)
        out.update(E.rating_metrics(pred, part.rating))
    need_rank = ranking or (metric is not None and parse_metric(metric)[1] is not None)
    if need_rank:
        train_csr = E.seen_csr(ds, E.seen_splits(split))
        tu, ti = E.relevant(part, None)
        ks = sorted(set(ks) | ({parse_metric(metric)[1]} if metric and parse_metric(metric)[1] else set()))
        out.update(E.ranking_metrics(f["user_factors"], f["movie_factors"], f["movie_bias"], train_csr, tu, ti,
                                     ds.n_users, ds.n_movies, ks, max_users=max_users))
    return out


def fingerprint(ds, model_cfg, train_cfg, features_cfg=None) -> str:
    """What a checkpoint must match to be resumed: the dataset manifest and the model/train config."""
    h = hashlib.sha256()
    h.update(json.dumps(ds.manifest, sort_keys=True, default=str).encode())
    h.update(json.dumps(_fp_config(model_cfg, train_cfg, features_cfg), sort_keys=True).encode())
    return h.hexdigest()


# keys that change how fast a run goes, not what it computes: a run may resume with other values
_RESOURCE_KEYS = ("epochs", "threads")


def _fp_config(model_cfg, train_cfg, features_cfg) -> dict:
    from dataclasses import asdict

    return {"model": asdict(model_cfg), "train": {k: v for k, v in asdict(train_cfg).items() if k not in _RESOURCE_KEYS},
            "features": asdict(features_cfg) if features_cfg is not None else None}


def _difference(old: dict | None, new: dict) -> str:
    """'dataset' or 'value of train.lr (0.01, now 0.02)': what differs between a checkpoint and this run."""
    if not old:
        return "dataset or model/train config"
    for section, values in new.items():
        for key, value in (values or {}).items():
            was = (old.get(section) or {}).get(key)
            if was != value:
                return f"{section}.{key} ({was!r:.40}, now {value!r:.40})"
    return "dataset (its manifest differs)"


class _Batcher:
    """Computes one batch's loss for the configured objective."""

    def __init__(self, model, loss: str, train_cfg, ds):
        self.model, self.loss, self.cfg = model, loss, train_cfg
        self.n_movies = ds.n_movies
        self.full = loss == "softmax" and ds.n_movies <= train_cfg.softmax_full_max
        if loss == "softmax" and not self.full:
            counts = np.bincount(ds.splits["train"].movie, minlength=ds.n_movies).astype(np.float64) + 1.0
            probs = counts ** 0.75
            self.probs = torch.tensor(probs / probs.sum(), dtype=torch.float32)
            self.log_probs = torch.log(self.probs)
        self.wd = (train_cfg.weight_decay_user, train_cfg.weight_decay_movie, train_cfg.weight_decay_bias)

    def sample(self, u: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        """Negatives for this batch, drawn outside the (possibly compiled) loss."""
        if self.loss == "bpr":
            return torch.randint(0, self.n_movies, (u.shape[0], self.cfg.negatives), generator=gen)
        if self.loss == "softmax" and not self.full:
            return torch.multinomial(self.probs, max(self.cfg.negatives, 1), replacement=True, generator=gen)
        return None

    def __call__(self, u, m, r, gen) -> torch.Tensor:
        return self.loss_fn(u, m, r, self.sample(u, gen))

    def loss_fn(self, u, m, r, neg) -> torch.Tensor:
        model, (wu, wm, wb) = self.model, self.wd
        pu = model.user_vec(u)
        if self.loss == "mse":
            qm = model.movie_vec(m)
            bm = model.movie_bias_of(m)
            bu = model.user_bias_of(u)
            pred = (pu * qm).sum(-1) + bm + bu + model.global_mean
            cs = model.cross_score(u, m)
            if cs is not None:
                pred = pred + cs
            return losses.mse(pred, r) + losses.l2(pu, qm, bm.unsqueeze(-1), bu.unsqueeze(-1),
                                                   weights=(wu, wm, wb, wb))
        if self.loss == "bpr":
            k = neg.shape[1]
            ids = torch.cat([m, neg.reshape(-1)])  # one lookup for positives and negatives
            q = model.movie_vec(ids)
            b = model.movie_bias_of(ids)
            qm, qn = q[: m.shape[0]], q[m.shape[0]:].reshape(u.shape[0], k, -1)
            bp, bn = b[: m.shape[0]], b[m.shape[0]:].reshape(u.shape[0], k)
            pos = (pu * qm).sum(-1) + bp
            negs = (pu.unsqueeze(1) * qn).sum(-1) + bn
            cs = model.cross_score(torch.cat([u, u.repeat_interleave(k)]), ids)
            if cs is not None:
                pos = pos + cs[: m.shape[0]]
                negs = negs + cs[m.shape[0]:].reshape(u.shape[0], k)
            return losses.bpr(pos, negs) + losses.l2(pu, qm, qn.reshape(-1, qn.shape[-1]), weights=(wu, wm, wm))
        if self.full:
            every = torch.arange(self.n_movies)
            w = model.movie_vec(every)
            logits = pu @ w.T + model.movie_bias_of(every)
            cm = model.cross_matrix(u, every)
            if cm is not None:
                logits = logits + cm
            return losses.softmax_full(logits, m) + losses.l2(pu, w[m], weights=(wu, wm))
        s = neg.shape[0]
        ids = torch.cat([m, neg])
        q = model.movie_vec(ids)
        b = model.movie_bias_of(ids)
        qm, qn = q[: m.shape[0]], q[m.shape[0]:]
        pos = (pu * qm).sum(-1) + b[: m.shape[0]]
        negs = pu @ qn.T + b[m.shape[0]:]
        cs, cm = model.cross_score(u, m), model.cross_matrix(u, neg)
        if cs is not None:
            pos, negs = pos + cs, negs + cm
        acc = m.unsqueeze(1) == neg.unsqueeze(0)
        return losses.softmax_sampled(pos, negs, self.log_probs[m] + math.log(s), self.log_probs[neg] + math.log(s),
                                      acc) + losses.l2(pu, qm, weights=(wu, wm))


def _tensorboard(run_dir: Path):
    """A TensorBoard writer into RUN/tensorboard when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _diverged(value: float, where: str, lr: float) -> TrainingError:
    return TrainingError(f"the loss became {value} {where}: training diverged; the learning rate "
                         f"(train.lr={lr:g}) is probably too high, try --set train.lr={lr / 10:g}")


def _save_checkpoint(path: Path, state: dict) -> None:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue(), durable=False)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ArtifactError(f"checkpoint '{path}' cannot be read ({first_line(e)}); rerun train "
                            "without --resume") from None


def fit(ds, model_cfg, train_cfg, run_dir: str | Path, *, resume: bool = False, progress: bool = False,
        on_epoch=None, features_cfg=None) -> FitResult:
    """Train on ``ds.splits['train']``, validate on ``valid`` each epoch, keep the best epoch."""
    t0 = time.perf_counter()  # everything counts: model, optimiser and kernel set-up included
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # train.threads, else 1 for small problems or a busy machine (torch's default oversubscribes a shared box)
    threads = choose_threads(len(ds.splits["train"]), resolve_dim(model_cfg, ds.n_users, ds.n_movies),
                             train_cfg.threads)
    torch.set_num_threads(threads)
    log.debug("training with %d thread(s)", threads)
    explicit = model_cfg.objective == "explicit"
    loss_name = resolve_loss(model_cfg, features_cfg is not None and features_cfg.active)
    metric = resolve_metric(model_cfg, train_cfg)
    better_high = higher_is_better(metric)
    tr = ds.splits["train"]
    if len(tr) == 0:
        raise TrainingError("the training split is empty; check the split settings and rerun ingest")
    has_valid = len(ds.splits.get("valid", ())) > 0
    if not has_valid and not ds.manifest.get("refit"):
        log.warning("the validation split is empty: no early stopping, the last epoch is kept")
    torch.manual_seed(train_cfg.seed)
    fs = None
    if features_cfg is not None and features_cfg.active:
        from embedrec.features import build

        fs = build(features_cfg, ds.movies, ds.users)
    model = build_model(ds.n_users, ds.n_movies, model_cfg, train_cfg, float(tr.rating.mean()), fs)
    unrated = np.bincount(tr.movie, minlength=ds.n_movies) == 0
    unrated = unrated if unrated.any() else None
    hogwild = train_cfg.optimizer == "hogwild" and loss_name != "als"
    opt = None if hogwild or loss_name == "als" else make_optimizer(model, train_cfg)
    fp = fingerprint(ds, model_cfg, train_cfg, features_cfg)
    ckpt_path = run_dir / CHECKPOINT
    start, history, best, best_epoch, best_state, bad = 0, [], None, -1, None, 0
    if resume:
        if not ckpt_path.exists():
            raise ArtifactError(f"nothing to resume: no checkpoint at '{ckpt_path}'; run train without --resume")
        ck = load_checkpoint(ckpt_path)
        if ck.get("fingerprint") != fp:
            raise ArtifactError(f"checkpoint '{ckpt_path}' was made with another "
                                f"{_difference(ck.get('config'), _fp_config(model_cfg, train_cfg, features_cfg))}; "
                                "rerun train without --resume, or with the same config")
        model.load_state_dict(ck["model"])
        if opt is not None:
            opt.load_state_dict(ck["optimizer"])
        start, history, best, best_epoch, bad = ck["epoch"] + 1, ck["history"], ck["best"], ck["best_epoch"], ck["bad"]
        best_state = ck["best_state"]
        log.info("resuming after epoch %d (best %s %.4f at epoch %d)", start, metric, best or float("nan"),
                 best_epoch + 1)
        if ck.get("stopped"):
            start = train_cfg.epochs
        # the log is rewritten from the checkpoint: a kill between an epoch's log line and its checkpoint
        # must not leave that epoch twice
        atomic_write_bytes(run_dir / LOG, "".join(json.dumps(r) + "\n" for r in history).encode(), durable=False)
    else:
        (run_dir / LOG).unlink(missing_ok=True)

    if loss_name != "als":  # als builds its own CSR lists; at 100M ratings these copies are 2 GB
        U = torch.from_numpy(tr.user.astype(np.int64))
        Mv = torch.from_numpy(tr.movie.astype(np.int64))
        R = torch.from_numpy(tr.rating.astype(np.float32))
    n, bs = len(tr), train_cfg.batch_size
    batcher = _Batcher(model, loss_name, train_cfg, ds)
    compiled, hog = None, None
    if loss_name == "als":
        from embedrec.als import ALS, confidence

        w = confidence(tr.user, tr.rating, tr.timestamp, ds.manifest.get("rating_scale"), train_cfg)
        hog = ALS(model, train_cfg, tr.user, tr.movie, threads, weights=w)
    elif hogwild:
        from embedrec.sgd import Hogwild

        hog = Hogwild(model, loss_name, train_cfg, U, Mv, R, ds.n_movies,
                      threads)
        if train_cfg.compile:
            log.info("train.compile does not apply to train.optimizer=hogwild (its kernel is compiled C)")
    elif train_cfg.compile:
        if loss_name == "mse":
            compiled = torch.compile(batcher.loss_fn, dynamic=False)
        else:
            log.warning("train.compile applies to the explicit loss only: %s runs eagerly (compiling it fails on "
                        "sparse embedding gradients in this torch)", loss_name)
    from tqdm import tqdm

    tb = _tensorboard(run_dir)
    bar = tqdm(total=train_cfg.epochs, initial=min(start, train_cfg.epochs), unit="epoch",
               desc="refit" if ds.manifest.get("refit") else "train",
               disable=not progress, file=None, dynamic_ncols=True)
    epoch = start
    try:
        for epoch in range(start, train_cfg.epochs):
            te = time.perf_counter()
            gen = torch.Generator().manual_seed(train_cfg.seed * 1_000_003 + epoch)
            model.train()
            total, steps = 0.0, 0
            if hog is not None:
                total, steps = hog.epoch(gen), 1
                if not math.isfinite(total):
                    raise _diverged(total, f"in epoch {epoch + 1}", train_cfg.lr)
            else:
                perm = torch.randperm(n, generator=gen)
                for s in range(0, n, bs):
                    idx = perm[s:s + bs]
                    if compiled is not None and idx.shape[0] == bs:  # fixed shapes: the last partial batch runs eagerly
                        u_b = U[idx]
                        loss = compiled(u_b, Mv[idx], R[idx], batcher.sample(u_b, gen))
                    else:
                        loss = batcher(U[idx], Mv[idx], R[idx], gen)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    lv = loss.item()
                    if not math.isfinite(lv):
                        raise _diverged(lv, f"at epoch {epoch + 1}, step {steps + 1}", train_cfg.lr)
                    total += lv
                    steps += 1
            f = factors(model, unrated)
            row = {"epoch": epoch + 1, "loss": total / max(steps, 1), "seconds": round(time.perf_counter() - te, 3)}
            if has_valid:
                vm = evaluate_model(f, ds, "valid", explicit, train_cfg.eval_k, metric, ranking=not explicit,
                                    max_users=train_cfg.eval_users)
                row.update({f"valid_{k}": v for k, v in vm.items() if not k.startswith("users_")})
                value = vm[metric]
                improved = best is None or (value > best if better_high else value < best)
            else:
                value, improved = float("nan"), True
            if improved:
                best, best_epoch, bad = value, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
            row["elapsed"] = round(time.perf_counter() - t0, 3)  # wall since fit() began, validation included
            history.append(row)
            with open(run_dir / LOG, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            if tb is not None:
                for key, scalar in row.items():
                    if key != "epoch" and isinstance(scalar, (int, float)):
                        tb.add_scalar(key.replace("valid_", "valid/").replace("@", "_at_"), scalar, epoch + 1)
                tb.flush()
            stop = has_valid and bad >= max(train_cfg.patience, 1)
            _save_checkpoint(ckpt_path, {"fingerprint": fp, "config": _fp_config(model_cfg, train_cfg, features_cfg),
                                         "model": model.state_dict(),
                                         "optimizer": opt.state_dict() if opt is not None else {}, "epoch": epoch, "history": history,
                                         "best": best, "best_epoch": best_epoch, "best_state": best_state,
                                         "bad": bad, "stopped": stop})
            bar.update(1)
            bar.set_postfix({"loss": f"{row['loss']:.4f}", **({metric: f"{value:.4f}"} if has_valid else {})})
            log.debug("epoch %d: %s", epoch + 1, row)
            if on_epoch is not None:
                on_epoch(row)
            if stop:
                log.info("early stop after epoch %d: %s has not improved for %d epochs (best %.4f at epoch %d)",
                         epoch + 1, metric, bad, best, best_epoch + 1)
                break
    except KeyboardInterrupt:
        bar.close()
        if not history:
            raise Interrupted(f"training interrupted in epoch {epoch + 1}, before any epoch finished: nothing was "
                              "saved; rerun the same command to start again") from None
        raise Interrupted(f"training interrupted in epoch {epoch + 1}; the checkpoint of epoch {len(history)} is in "
                          f"{ckpt_path}: continue with the same command plus --resume") from None
    bar.close()
    if tb is not None:
        tb.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(model, loss_name, metric, best_epoch + 1, float(best if best is not None else float("nan")),
                     history, len(history), time.perf_counter() - t0, unrated)


def fit_selecting(ds, cfg, run_dir: str | Path, *, resume: bool = False, progress: bool = False):
    """fit(); for als with ``train.als_reg: auto``, one fit per candidate strength (each in its own folder under
    ``run_dir``, each resumable), keeping the best on valid. Returns (FitResult, cfg with the chosen values)."""
    import dataclasses

    from embedrec.als import AUTO_REGS

    loss = resolve_loss(cfg.model, cfg.features.active)
    if loss != "als" or cfg.train.als_reg != "auto":
        return fit(ds, cfg.model, cfg.train, run_dir, resume=resume, progress=progress, features_cfg=cfg.features), cfg
    regs = AUTO_REGS if len(ds.splits.get("valid", ())) else AUTO_REGS[:1]
    best, best_cfg, seconds = None, cfg, 0.0
    for i, reg in enumerate(regs):
        tcfg = dataclasses.replace(cfg.train, als_reg=reg)
        folder = Path(run_dir) / f"als-reg-{reg:g}" if len(regs) > 1 else Path(run_dir)
        # a run killed during the first candidate has no checkpoint for the later ones: they start afresh
        again = resume and (i == 0 or (folder / CHECKPOINT).exists())
        r = fit(ds, cfg.model, tcfg, folder, resume=again, progress=progress, features_cfg=cfg.features)
        seconds += r.seconds
        if len(regs) > 1:
            log.info("als_reg %g: valid %s %.4f at epoch %d", reg, r.metric, r.best_value, r.best_epoch)
        if best is None or (r.best_value > best.best_value if higher_is_better(r.metric) else r.best_value < best.best_value):
            best, best_cfg = r, dataclasses.replace(cfg, train=tcfg)
    if len(regs) > 1:
        log.info("als_reg auto: chose %g", best_cfg.train.als_reg)
    best.seconds = seconds  # the whole selection, every candidate's fit
    return best, best_cfg


def clear_checkpoint(run_dir: str | Path) -> None:
    p = Path(run_dir) / CHECKPOINT
    if p.exists():
        os.unlink(p)


def _refit(ds, cfg, selected: FitResult, run_dir: Path, progress: bool):
    """Retrain on train+valid for the selected number of epochs (chosen on valid only)."""
    import dataclasses

    from embedrec.dataset import Dataset, Interactions

    tr, va = ds.splits["train"], ds.splits["valid"]
    both = Interactions(np.concatenate([tr.user, va.user]), np.concatenate([tr.movie, va.movie]),
                        np.concatenate([tr.rating, va.rating]),
                        None if tr.timestamp is None else np.concatenate([tr.timestamp, va.timestamp]))
    empty = Interactions(tr.user[:0], tr.movie[:0], tr.rating[:0])
    merged = Dataset(ds.path, {**ds.manifest, "refit": True}, ds.users, ds.movies,
                     {"train": both, "valid": empty, "test": ds.splits["test"]})
    tcfg = dataclasses.replace(cfg.train, epochs=max(selected.best_epoch, 1))
    log.info("refit on train+valid (%s ratings) for %d epochs", f"{len(both):,}", tcfg.epochs)
    result = fit(merged, cfg.model, tcfg, run_dir / "refit", progress=progress, features_cfg=cfg.features)
    result.best_epoch, result.metric, result.best_value = selected.best_epoch, selected.metric, selected.best_value
    return merged, result


def train_run(cfg, *, resume: bool = False, progress: bool = False) -> dict:
    """``embedrec train``: fit on the prepared dataset, evaluate, publish the artifacts. Returns metrics."""
    from embedrec.api import train_model
    from embedrec.dataset import load_dataset

    run_dir = Path(cfg.run.dir)
    model = train_model(load_dataset(cfg.data.prepared), cfg, run_dir, resume=resume, progress=progress)
    model.save(run_dir)
    return model.metrics
