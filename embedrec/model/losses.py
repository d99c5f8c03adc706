"""Loss functions: pure functions of scores, no state."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target)


def bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: -log sigmoid(s_pos - s_neg), averaged. ``neg`` may be (B, n_neg)."""
    if neg.dim() == 2:
        pos = pos.unsqueeze(1)
    return -F.logsigmoid(pos - neg).mean()


def softmax_full(logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Full softmax cross-entropy: logits (B, n_movies), pos (B,) the positive movie index."""
    return F.cross_entropy(logits, pos)


def softmax_sampled(pos_logit: torch.Tensor, neg_logits: torch.Tensor, log_q_pos: torch.Tensor,
                    log_q_neg: torch.Tensor, accidental: torch.Tensor | None = None) -> torch.Tensor:
    """Sampled softmax with the logQ correction (Bengio & Senecal; Yi et al. 2019).

    pos_logit (B,), neg_logits (B, S) for S shared sampled negatives, log_q_* the log sampling probabilities.
    ``accidental`` (B, S) marks negatives equal to the positive; they are masked out.
    """
    logits = torch.cat([(pos_logit - log_q_pos).unsqueeze(1), neg_logits - log_q_neg.unsqueeze(0)], dim=1)
    if accidental is not None:
        logits[:, 1:] = logits[:, 1:].masked_fill(accidental, float("-inf"))
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))


def l2(*tensors: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    """Per-example L2 penalty: sum_t w_t * ||t_row||^2, averaged over the batch."""
    total = torch.zeros(())
    for t, w in zip(tensors, weights):
        if w:
            total = total + w * t.pow(2).sum(-1).mean()
    return total
