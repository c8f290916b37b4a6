"""Fusion layers (where body and scene meet) and the variant modules that plug in after them."""

from __future__ import annotations

import math

import torch
from torch import nn


class ConcatFusion(nn.Module):
    """The paper's fusion: concatenate both embeddings, then an MLP with dropout."""

    def __init__(self, body_dim: int, scene_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(body_dim + scene_dim, hidden), nn.LayerNorm(hidden),
                                 nn.ReLU(inplace=True), nn.Dropout(dropout))

    def forward(self, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([b, s], dim=1))


class AttentionFusion(nn.Module):
    """A small Transformer layer over two tokens (body, scene), mean-pooled: lets each stream weigh the
    other per person instead of a fixed concatenation."""

    def __init__(self, body_dim: int, scene_dim: int, hidden: int, dropout: float, heads: int):
        super().__init__()
        self.body_proj = nn.Linear(body_dim, hidden)
        self.scene_proj = nn.Linear(scene_dim, hidden)
        self.token_type = nn.Parameter(torch.zeros(2, hidden))
        self.layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=dropout,
                                                batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        tokens = torch.stack([self.body_proj(b), self.scene_proj(s)], dim=1) + self.token_type
        return self.drop(self.norm(self.layer(tokens).mean(dim=1)))


class BackdoorAdjustment(nn.Module):
    """CCIM-style causal intervention (Yang et al., CVPR 2023): the backdoor adjustment
    P(Y|do(X)) = sum_z P(Y|X,z) P(z) over a dictionary of scene prototypes z_k (k-means centres of training
    scene features) with priors P(z_k) (cluster frequencies), in CCIM's feature-level (NWGM) form:

        a_k(x) = softmax_k(q(x) . key(z_k) / sqrt(d))          attention of the fused feature x over the z_k
        g(x)   = sum_k a_k(x) P(z_k) value(z_k)                the prior-weighted expectation over confounders
        out    = x + g(x)

    The prior multiplies each term and the weights a_k P(z_k) are NOT renormalised (they sum to
    sum_k a_k P(z_k) <= 1): renormalising would give softmax(scores + log P), a posterior P(z|x) that
    reintroduces the dependence of z on x the adjustment removes. Moving the expectation from the
    prediction P(Y|X,z) to the feature (NWGM) is CCIM's approximation, kept here.

    Until `set_dictionary` is called the priors are zero and the module adds nothing.
    """

    def __init__(self, fused_dim: int, scene_dim: int, prototypes: int):
        super().__init__()
        self.register_buffer("prototypes", torch.zeros(prototypes, scene_dim))
        self.register_buffer("priors", torch.zeros(prototypes))
        self.query = nn.Linear(fused_dim, fused_dim, bias=False)
        self.key = nn.Linear(scene_dim, fused_dim, bias=False)
        self.value = nn.Linear(scene_dim, fused_dim)

    @torch.no_grad()
    def set_dictionary(self, prototypes: torch.Tensor, priors: torch.Tensor) -> None:
        if prototypes.shape != self.prototypes.shape or priors.shape != self.priors.shape:
            raise ValueError(f"dictionary must be {tuple(self.prototypes.shape)} with priors "
                             f"{tuple(self.priors.shape)}, got {tuple(prototypes.shape)}/{tuple(priors.shape)}")
        if torch.any(priors < 0) or float(priors.sum()) <= 0:
            raise ValueError("priors must be non-negative and not all zero")
        self.prototypes.copy_(prototypes)
        self.priors.copy_(priors / priors.sum())

    def attention(self, z: torch.Tensor) -> torch.Tensor:
        """(N, K) backdoor weights a_k(x) P(z_k): softmax attention times the prior, not renormalised."""
        scores = self.query(z) @ self.key(self.prototypes).T / math.sqrt(z.shape[1])
        return torch.softmax(scores, dim=1) * self.priors

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # Branch-free (exportable): with an empty dictionary the weights are all zero and nothing is added.
        return z + self.attention(z) @ self.value(self.prototypes)


class VADHead(nn.Module):
    """Valence, arousal, dominance on EMOTIC's 1..10 scale (a bounded output keeps the range honest)."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 1.0 + 9.0 * torch.sigmoid(self.linear(z))
