"""The autograd epoch runner: shuffled mini-batches, one loss per objective, a torch optimiser.

``Batcher`` computes one batch's loss (mse, bpr, full or sampled softmax with the logQ correction, each with its
L2 terms); ``Minibatch`` runs an epoch of it with the configured optimiser (adam, sparse_adam, adagrad, sgd),
optionally through ``torch.compile``. The loop around it is ``loop.run``.

**Device.** ``train.device: cuda`` puts the model, the ratings and every batch on the GPU. The shuffle and the
negatives are drawn on the CPU from the epoch's generator and copied over, so a CUDA run draws the same batches
as a CPU run and the two agree to float rounding (``tests/test_distributed.py``). Non-finite losses are
checked every ``CHECK_EVERY`` steps on a GPU (every step on the CPU), so the GPU is not synchronised per step.

**Ranks.** Under torchrun every rank holds the whole model (it fits: replicated tables) and its own shard of
the ratings (``group``, ``positions``: each rating's place in the one-process training file). An epoch replays
the one-process schedule: the same global permutation and batches of ``batch_size``; each rank computes the loss
of the examples of the batch it holds, weighted by its share of the batch, and ``dist_sync.GradSync`` sums the
gradients over ranks before the (identical) optimiser step. So W ranks train the model one process trains, up
to the order of float sums. The cost: each rank holds the epoch's permutation and its inverse (16 bytes per
training rating).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from embedrec.model import losses
from embedrec.training.loop import Diverged

log = logging.getLogger("embedrec")


def make_optimizer(model, train_cfg) -> torch.optim.Optimizer:
    params = list(model.parameters())
    name, lr = train_cfg.optimizer, train_cfg.lr
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sparse_adam":
        return torch.optim.SparseAdam(params, lr=lr)
    if name == "adagrad":
        if hasattr(torch.sparse, "check_sparse_tensor_invariants"):  # the default, said explicitly: torch's
            torch.sparse.check_sparse_tensor_invariants.disable()  # adagrad otherwise warns on stderr that it is
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def compile_failure(e: BaseException) -> bool:
    """Whether ``e`` is torch.compile's own failure (dynamo or inductor: a torch 2.11 on Python 3.12 raised
    InternalTorchDynamoError on the explicit loss, an H200 run in session 38), not an error of the step itself."""
    return any(c.__module__.startswith(("torch._dynamo", "torch._inductor")) for c in type(e).__mro__)


class Batcher:
    """Computes one batch's loss for the configured objective, on ``device``.

    ``movie_counts``: training ratings per movie (sampled softmax's proposal); default: counted from ``ds``."""

    def __init__(self, model, loss: str, train_cfg, ds, *, device=None, movie_counts: np.ndarray | None = None):
        self.model, self.loss, self.cfg = model, loss, train_cfg
        self.device = torch.device(device if device is not None else "cpu")
        self.n_movies = ds.n_movies
        self.full = loss == "softmax" and ds.n_movies <= train_cfg.softmax_full_max
        if loss == "softmax" and not self.full:
            if movie_counts is None:
                movie_counts = np.bincount(ds.splits["train"].movie, minlength=ds.n_movies)
            probs = (np.asarray(movie_counts, np.float64) + 1.0) ** 0.75
            self.probs = torch.tensor(probs / probs.sum(), dtype=torch.float32)  # on the CPU: drawn from gen there
            self.log_probs = torch.log(self.probs).to(self.device)
        self.every = torch.arange(self.n_movies, device=self.device) if self.full else None
        self.wd = (*train_cfg.weight_decays(loss), train_cfg.weight_decay_bias)

    def sample(self, n: int, gen: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor | None:
        """Negatives for a batch of ``n`` examples, drawn on the CPU from ``gen`` outside the (possibly compiled)
        loss, then moved to the device; ``rows``: the examples of the batch this rank computes (bpr draws for the
        whole batch, so every rank draws what one process draws)."""
        if self.loss == "bpr":
            neg = torch.randint(0, self.n_movies, (n, self.cfg.negatives), generator=gen)
            return (neg if rows is None else neg[rows]).to(self.device)
        if self.loss == "softmax" and not self.full:
            return torch.multinomial(self.probs, max(self.cfg.negatives, 1), replacement=True,
                                     generator=gen).to(self.device)
        return None

    def __call__(self, u, m, r, gen) -> torch.Tensor:
        return self.loss_fn(u, m, r, self.sample(u.shape[0], gen))

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
            loss = losses.mse(pred, r) + losses.l2(model.user_l2_part(u, pu), qm, bm.unsqueeze(-1),
                                                  bu.unsqueeze(-1), weights=(wu, wm, wb, wb))
            ip = model.implicit_penalty(u)  # SVD++'s y_j, weighed like the movie vectors they are
            return loss if ip is None else loss + wm * ip
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
            every = self.every
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


CHECK_EVERY = 256  # steps between checks for a non-finite loss off the CPU (each check waits for the GPU)


class Minibatch:
    """Epochs of shuffled mini-batches through ``Batcher`` and a torch optimiser, on ``device``.

    With ``group`` (a ``distributed.Group`` of several ranks) the ratings given are this rank's shard and
    ``positions`` their places in the one-process training split (sorted, as ``route_to_users`` keeps them)."""

    def __init__(self, model, loss: str, train_cfg, ds, users: np.ndarray, movies: np.ndarray, ratings: np.ndarray,
                 *, device=None, group=None, positions: np.ndarray | None = None,
                 movie_counts: np.ndarray | None = None):
        self.device = torch.device(device if device is not None else "cpu")
        self.batcher = Batcher(model, loss, train_cfg, ds, device=self.device, movie_counts=movie_counts)
        self.opt = make_optimizer(model, train_cfg)
        self.U = torch.from_numpy(users.astype(np.int64)).to(self.device)
        self.M = torch.from_numpy(movies.astype(np.int64)).to(self.device)
        self.R = torch.from_numpy(ratings.astype(np.float32)).to(self.device)
        self.bs = train_cfg.batch_size
        self.g, self.sync, self.n = None, None, int(users.shape[0])
        if group is not None and group.world > 1:
            from embedrec.dist_sync import GradSync

            self.g, self.sync = group, GradSync(group, model)
            self.pos = torch.from_numpy(np.asarray(positions, np.int64))
            self.n = int(group.total(self.n))  # the global batches run over every rank's ratings
        self.every = 1 if self.device.type == "cpu" and self.g is None else CHECK_EVERY
        self.compiled = None
        if train_cfg.compile and self.g is not None:
            log.info("train.compile: on several ranks the local batch sizes vary, so batches run eagerly")
        elif train_cfg.compile:
            if loss == "mse":
                self.compiled = torch.compile(self.batcher.loss_fn, dynamic=False)
            else:
                log.warning("train.compile applies to the explicit loss only: %s runs eagerly (compiling it fails "
                            "on sparse embedding gradients in this torch)", loss)

    def state_dict(self) -> dict:
        return self.opt.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state)

    def epoch(self, gen: torch.Generator) -> float:
        n, bs = self.n, self.bs
        perm = torch.randperm(n, generator=gen)
        steps = -(-n // bs)
        if self.g is None:
            perm = perm.to(self.device)
            plan = None
        else:
            plan = self._plan(perm, steps)
        done = torch.zeros(steps, dtype=torch.float32, device=self.device)  # each step's loss (this rank's part)
        checked = 0
        for t in range(steps):
            size = min(bs, n - t * bs)
            if plan is None:
                idx, rows = perm[t * bs:t * bs + size], None
            else:
                order, offsets, within = plan
                idx, rows = order[offsets[t]:offsets[t + 1]], within[offsets[t]:offsets[t + 1]]
            loss = self._step(idx, size, rows, gen)
            if self.every == 1:  # one process on the CPU: each step's loss is at hand, check it now
                lv = float(loss)
                if not math.isfinite(lv):
                    raise Diverged(lv, t + 1)
            done[t] = loss
            if self.g is None and self.every > 1 and (t + 1 - checked >= self.every or t + 1 == steps):
                _check_finite(done, checked, t + 1)
                checked = t + 1
        if self.g is not None:
            self.g.sum_(done)  # the whole batches' losses, the same on every rank
            _check_finite(done, 0, steps)
        return float(done.double().sum()) / max(steps, 1)

    def _step(self, idx: torch.Tensor, size: int, rows, gen: torch.Generator) -> torch.Tensor:
        """One optimiser step on a batch of ``size`` examples, of which ``idx`` (rows ``rows`` of the batch) are
        this rank's; returns this rank's part of the batch loss (detached)."""
        neg = self.batcher.sample(size, gen, rows)  # drawn even with no example here: every rank draws alike
        self.opt.zero_grad(set_to_none=True)
        if not idx.shape[0]:
            loss = torch.zeros((), device=self.device)
        else:
            u, m, r = self.U[idx], self.M[idx], self.R[idx]
            loss = None
            if self.compiled is not None and size == self.bs:  # fixed shapes: a last partial batch runs eagerly
                try:
                    loss = self.compiled(u, m, r, neg)
                except Exception as e:  # nothing has moved yet: the same batch runs eagerly
                    if not compile_failure(e):
                        raise
                    log.warning("train.compile: torch %s could not compile the loss (%s: %s); the batches run "
                                "eagerly (the same model, unfused)", torch.__version__, type(e).__name__,
                                (str(e).strip().splitlines() or [""])[0][:200])
                    self.compiled = None
            if loss is None:
                loss = self.batcher.loss_fn(u, m, r, neg)
            if self.g is not None:  # this rank's share of the batch mean
                loss = loss * (idx.shape[0] / size)
            loss.backward()
        if self.sync is not None:
            self.sync()
        self.opt.step()
        return loss.detach()

    def _plan(self, perm: torch.Tensor, steps: int):
        """This rank's ratings in this epoch's global order: (local indices on the device, where step t's
        examples start, each one's row within its batch)."""
        place = torch.empty_like(perm)
        place[perm] = torch.arange(perm.shape[0])  # each global rating's place in the shuffled order
        mine = place[self.pos]
        del place
        order = torch.argsort(mine)
        placed = mine[order]
        starts = torch.arange(steps + 1, dtype=torch.int64) * self.bs
        offsets = torch.searchsorted(placed, starts).tolist()
        within = placed - (placed // self.bs) * self.bs
        return order.to(self.device), offsets, within


def _check_finite(losses: torch.Tensor, start: int, end: int) -> None:
    """Raise Diverged naming the first step in [start, end) whose loss is not finite."""
    part = losses[start:end]
    bad = ~torch.isfinite(part)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise Diverged(float(part[i]), start + i + 1)
