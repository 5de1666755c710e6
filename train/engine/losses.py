"""Training losses: cross-entropy (the default) and the evidential loss ``reedl`` (EV9V's STFM).

``reedl`` follows bgx666/stfm ``losses.py`` (``reedl_loss``, ``get_uncertainty``; MIT), the
"relaxed" evidential loss of its ``ModifiedEvidentialN``: the logits are read as evidence for a
Dirichlet distribution, and the loss is the squared error between the one-hot target and a
relaxed expected probability::

    e_k = softplus(z_k)                                         evidence, (B, K)
    p_k = (e_k + lambda2) / (e_k + lambda1 * (S - e_k) + lambda2 * K),   S = sum_j e_j
    loss = mean_b sum_k (y_k - p_k) ** 2

With ``lambda1 = 1`` (the reference's value) ``p`` is the Dirichlet mean ``alpha / sum(alpha)``
for ``alpha = e + lambda2``; ``lambda1 < 1`` discounts the other classes' evidence. The
reference's ``reedl_loss`` takes an epoch and an annealing step but uses neither (its KL-annealed
variants are the ``edl_*`` losses, not used for STFM), so there is no annealing here.

Uncertainty of one clip (``get_uncertainty``): ``u = K * lambda2 / sum_k (e_k + lambda2)``, in
(0, 1], 1 with no evidence at all. The edge's fusion of several clips is
`echoweave.edge.evidential.fuse` (numpy).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from echoweave.train.config import OptimConfig


def reedl_loss(logits: torch.Tensor, target: torch.Tensor, relax: float = 1.0, prior: float = 0.8) -> torch.Tensor:
    """The reference's ``reedl_loss`` (bgx666/stfm ``losses.py``): mean squared error between the
    one-hot target and the relaxed Dirichlet probability of ``softplus(logits)``.

    Args:
        logits: ``(B, K)`` model outputs (any float dtype; computed in float32).
        target: ``(B,)`` class ids.
        relax: ``lambda1`` (``lamb1``, 1.0 in the reference), the weight of the other classes'
            evidence in the denominator.
        prior: ``lambda2`` (``lamb2``, 0.8), the evidence every class starts with.

    Returns:
        A scalar: the batch mean of the per-sample squared error (in [0, 2]).
    """
    evidence = F.softplus(logits.float())  # (B, K)
    k = evidence.shape[1]
    others = evidence.sum(dim=1, keepdim=True) - evidence  # (B, K): evidence for every other class
    prob = (evidence + prior) / (evidence + relax * others + prior * k)  # (B, K)
    onehot = F.one_hot(target, k).to(prob.dtype)  # (B, K)
    return (onehot - prob).square().sum(dim=1).mean()


def evidential_uncertainty(logits: torch.Tensor, prior: float = 0.8) -> torch.Tensor:
    """The reference's ``get_uncertainty``: ``K * prior / sum(softplus(logits) + prior)`` per row.

    Args:
        logits: ``(B, K)``.
        prior: ``lambda2`` of the loss.

    Returns:
        ``(B,)`` uncertainties in (0, 1] (1 = no evidence).
    """
    alpha = F.softplus(logits.float()) + prior  # (B, K)
    return logits.shape[1] * prior / alpha.sum(dim=1)


def training_loss(logits: torch.Tensor, target: torch.Tensor, optim: OptimConfig) -> torch.Tensor:
    """The loss ``optim.loss`` names, with its settings from ``optim``.

    Args:
        logits: ``(B, K)``.
        target: ``(B,)`` class ids.
        optim: ``loss`` (``cross_entropy`` | ``reedl``), ``label_smoothing`` (cross-entropy),
            ``evidence_relax`` and ``evidence_prior`` (reedl).
    """
    if optim.loss == "reedl":
        return reedl_loss(logits, target, relax=optim.evidence_relax, prior=optim.evidence_prior)
    return F.cross_entropy(logits.float(), target, label_smoothing=optim.label_smoothing)
