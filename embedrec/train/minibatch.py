"""The autograd epoch runner: shuffled mini-batches, one loss per objective, a torch optimiser.

``Batcher`` computes one batch's loss (mse, bpr, full or sampled softmax with the logQ correction, each with its
L2 terms); ``Minibatch`` runs an epoch of it with the configured optimiser (adam, sparse_adam, adagrad, sgd),
optionally through ``torch.compile``. The loop around it is ``loop.run``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from embedrec.model import losses
from embedrec.train.loop import Diverged

log = logging.getLogger("embedrec")


def make_optimizer(model, train_cfg) -> torch.optim.Optimizer:
    params = list(model.parameters())
    name, lr = train_cfg.optimizer, train_cfg.lr
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sparse_adam":
        return torch.optim.SparseAdam(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


class Batcher:
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


class Minibatch:
    """Epochs of shuffled mini-batches through ``Batcher`` and a torch optimiser."""

    def __init__(self, model, loss: str, train_cfg, ds, users: np.ndarray, movies: np.ndarray, ratings: np.ndarray):
        self.batcher = Batcher(model, loss, train_cfg, ds)
        self.opt = make_optimizer(model, train_cfg)
        self.U = torch.from_numpy(users.astype(np.int64))
        self.M = torch.from_numpy(movies.astype(np.int64))
        self.R = torch.from_numpy(ratings.astype(np.float32))
        self.bs = train_cfg.batch_size
        self.compiled = None
        if train_cfg.compile:
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
        n, bs, U, M, R = self.U.shape[0], self.bs, self.U, self.M, self.R
        perm = torch.randperm(n, generator=gen)
        total, steps = 0.0, 0
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            if self.compiled is not None and idx.shape[0] == bs:  # fixed shapes: a last partial batch runs eagerly
                u_b = U[idx]
                loss = self.compiled(u_b, M[idx], R[idx], self.batcher.sample(u_b, gen))
            else:
                loss = self.batcher(U[idx], M[idx], R[idx], gen)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            lv = loss.item()
            if not math.isfinite(lv):
                raise Diverged(lv, steps + 1)
            total += lv
            steps += 1
        return total / max(steps, 1)
