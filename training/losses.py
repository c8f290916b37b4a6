"""Losses, injected into the task objects: BCE or ASL for the 26 categories, Huber for VAD.

Every loss returns one value per example (shape (N,)), so the task can weight examples (unreadable
images get weight 0) and average over the batch. Over the 26 categories a category loss either sums
(`reduction="sum"`, Tandon-A/emotic and the ASL paper: each logit gets the full gradient of its own
term) or averages (`"mean"`: each logit gets 1/26 of it). The VAD loss averages over its three outputs.
Which of the two, and the VAD weight, set how the shared layers split their gradient between the 26
categories and the 3 VAD outputs (config `category_reduction`, `vad_weight`; see training/README.md).

    >>> import torch
    >>> from training.losses import AsymmetricLoss
    >>> AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0)(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    tensor([1.3863])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

REDUCTIONS = ("sum", "mean")


def _reduce(per_logit: torch.Tensor, reduction: str) -> torch.Tensor:
    """(N, C) -> (N,): sum or mean over the categories."""
    if reduction == "sum":
        return per_logit.sum(1)
    if reduction == "mean":
        return per_logit.mean(1)
    raise ValueError(f"category reduction must be sum or mean, got '{reduction}'")


class BCELoss(nn.Module):
    """Binary cross-entropy with logits, summed (default) or averaged over categories (soft targets
    allowed, e.g. mixup)."""

    name = "bce"

    def __init__(self, reduction: str = "sum"):
        super().__init__()
        _reduce(torch.zeros(1, 1), reduction)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_logit = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
        return _reduce(per_logit, self.reduction)


class AsymmetricLoss(nn.Module):
    """ASL (Ridnik et al., ICCV 2021): focusing with separate exponents for positives and negatives,
    plus probability shifting `clip` that discards very easy negatives:

        p_m = max(p - clip, 0)
        L+ = (1 - p)^gamma_pos * log(p)          L- = p_m^gamma_neg * log(1 - p_m)
        L  = -(y * L+ + (1 - y) * L-)

    The focusing weights take part in the gradient (the paper's repository optionally detaches them).
    """

    name = "asl"

    def __init__(self, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05, eps: float = 1e-8,
                 reduction: str = "sum"):
        super().__init__()
        _reduce(torch.zeros(1, 1), reduction)
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y = targets.float()
        p = torch.sigmoid(logits.float())
        p_m = (p - self.clip).clamp(min=0) if self.clip > 0 else p
        loss_pos = y * torch.log(p.clamp(min=self.eps))
        loss_neg = (1 - y) * torch.log((1 - p_m).clamp(min=self.eps))
        if self.gamma_pos > 0:
            loss_pos = loss_pos * (1 - p).pow(self.gamma_pos)
        if self.gamma_neg > 0:
            loss_neg = loss_neg * p_m.pow(self.gamma_neg)
        return _reduce(-(loss_pos + loss_neg), self.reduction)


class HuberVADLoss(nn.Module):
    """Huber (smooth L1) on valence/arousal/dominance in the 1..10 scale, mean over the three."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = delta

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(pred.float(), target.float(), delta=self.delta, reduction="none").mean(1)


class L1VADLoss(nn.Module):
    name = "l1"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred.float() - target.float()).abs().mean(1)


def build_category_loss(name: str, *, gamma_neg: float = 4.0, gamma_pos: float = 0.0,
                        clip: float = 0.05, reduction: str = "sum") -> nn.Module:
    if name == "bce":
        return BCELoss(reduction)
    if name == "asl":
        return AsymmetricLoss(gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip, reduction=reduction)
    raise ValueError(f"unknown category loss '{name}': use bce or asl")


def build_vad_loss(name: str, *, delta: float = 1.0) -> nn.Module:
    if name == "huber":
        return HuberVADLoss(delta)
    if name == "l1":
        return L1VADLoss()
    raise ValueError(f"unknown VAD loss '{name}': use huber or l1")
