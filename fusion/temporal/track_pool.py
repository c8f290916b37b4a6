"""Track-level zero-shot (EmoCLIP style): average a track's recent frame embeddings, then compare the mean
with the label text embeddings. The same `step` interface as `TemporalModel`, so the pipeline runs both alike.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from fusion.models.zero_shot import ZeroShotCLIP


class TrackPool:
    """Mean of the valid (unit) embeddings of each window, renormalised, through the zero-shot head."""

    def __init__(self, model: ZeroShotCLIP, window: int = 16):
        if not isinstance(model, ZeroShotCLIP):
            raise TypeError("track-level zero-shot needs a zero-shot CLIP model")
        self.model, self.labels = model, model.labels
        self.config = SimpleNamespace(window=int(window), kind="track_pool")

    @torch.no_grad()
    def step(self, windows: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        keep = valid.unsqueeze(-1).to(windows.dtype)
        mean = F.normalize((windows * keep).sum(1) / keep.sum(1).clamp(min=1), dim=-1)
        ref = self.model.class_text
        out = self.model.head(mean.to(ref.device, ref.dtype))
        return {"probs": self.model.probabilities(out["cat_logits"]), "vad": out["vad"]}
