"""Samplers: a rank-aware epoch sampler (uniform shuffle or class-balanced draws) and the class-balanced
example weights of the `cb_sampling` variant.

Class-balanced weights follow the effective number of samples (Cui et al., CVPR 2019): a category seen
n_c times has effective number E_c = (1 - beta^n_c) / (1 - beta) and weight 1 / E_c. Multi-label examples
take the weight of their rarest positive category (the largest). Examples are then drawn with
replacement with probability proportional to their weight.

The sampler draws the epoch's whole index list from a generator seeded by (seed, epoch), identically on
every rank, and hands rank r the slice r::world_size; so a resumed run and every DDP layout see
deterministic data orders, and ranks get equal counts (padded by wrapping, like DistributedSampler).

    >>> import numpy as np
    >>> from training.sampling import class_balanced_weights
    >>> w = class_balanced_weights(np.array([[1, 0], [1, 0], [1, 0], [0, 1]]), beta=0.9)
    >>> bool(w[3] > w[0])
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def effective_number_weights(counts: np.ndarray, beta: float) -> np.ndarray:
    """Per-category weight 1 / E_c with E_c = (1 - beta^n) / (1 - beta); 0 for categories never seen."""
    counts = np.asarray(counts, dtype=np.float64)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"cb_beta must be in [0, 1), got {beta}")
    eff = (1.0 - np.power(beta, counts)) / (1.0 - beta)
    return np.divide(1.0, eff, out=np.zeros_like(eff), where=counts > 0)


def class_balanced_weights(labels: np.ndarray, beta: float = 0.999) -> np.ndarray:
    """(N,) example weights: the class-balanced weight of each example's rarest positive category,
    normalised to mean 1 (examples without positives get the smallest category weight)."""
    y = np.asarray(labels) > 0.5
    cat_w = effective_number_weights(y.sum(0), beta)
    w = np.where(y, cat_w[None, :], 0.0).max(1)
    floor = cat_w[cat_w > 0].min() if (cat_w > 0).any() else 1.0
    w = np.where(w > 0, w, floor)
    return w / w.mean()


class EpochSampler(Sampler[int]):
    """Deterministic per-epoch order, sharded over ranks. `weights` switches to weighted draws with
    replacement (class-balanced sampling); `shuffle=False` keeps dataset order (evaluation)."""

    def __init__(self, n: int, *, weights: np.ndarray | None = None, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, num_samples: int | None = None, pad: bool = True):
        self.n, self.shuffle, self.seed = int(n), shuffle, int(seed)
        self.weights = None if weights is None else torch.as_tensor(np.asarray(weights, np.float64))
        self.rank, self.world = int(rank), int(world_size)
        self.total = int(num_samples if num_samples is not None else n)
        self.pad = pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, self.total, replacement=True, generator=g).tolist()
        if self.shuffle:
            return torch.randperm(self.n, generator=g).tolist()
        return list(range(self.n))

    def __iter__(self) -> Iterator[int]:
        idx = self._indices()
        if self.world > 1:
            if self.pad and idx:
                per_rank = math.ceil(len(idx) / self.world)
                idx = (idx * (1 + per_rank * self.world // len(idx)))[:per_rank * self.world]
            idx = idx[self.rank::self.world]
        return iter(idx)

    def __len__(self) -> int:
        total = self.total if self.weights is not None else self.n
        if self.world == 1:
            return total
        return math.ceil(total / self.world) if self.pad else len(range(self.rank, total, self.world))
