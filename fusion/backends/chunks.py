"""Run a batch larger than an engine's profile in chunks, keeping the persons in their order."""

from __future__ import annotations

from collections.abc import Callable

import torch


def run_in_chunks(run: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]], feeds: dict[str, torch.Tensor],
                  max_batch: int) -> dict[str, torch.Tensor]:
    """`run(feeds)` on slices of at most `max_batch` rows (all inputs sliced alike), outputs concatenated in
    input order; one call when the batch fits."""
    n = next(iter(feeds.values())).shape[0]
    if n <= max_batch:
        return run(feeds)
    parts = [run({k: v[i:i + max_batch] for k, v in feeds.items()}) for i in range(0, n, max_batch)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
