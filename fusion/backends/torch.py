"""The `torch` backend: the model itself, eager PyTorch in fp32 on any device (the reference the others
are compared with)."""

from __future__ import annotations

import torch

from fusion.models.base import EmotionModel


class TorchBackend:
    """Eager PyTorch in fp32 on any device."""

    name = "torch"
    precision = "fp32"

    def __init__(self, model: EmotionModel, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def _in(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)

    @torch.inference_mode()
    def encode_body(self, body: torch.Tensor) -> torch.Tensor:
        return self.model.encode_body(self._in(body)).float()

    @torch.inference_mode()
    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor:
        return self.model.encode_scene(self._in(scene)).float()

    @torch.inference_mode()
    def heads(self, b: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model.forward_features(self._in(b), self._in(s))
        return self.model.probabilities(out["cat_logits"].float()), out["vad"].float()
