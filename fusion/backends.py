"""One interface for running an emotion model, whatever executes it.

A backend runs the three stages on preprocessed tensors: the body stream on a batch of crops, the scene
stream on a batch of frames, and the heads on per-person embeddings. The Predictor, the pipeline and the
benchmarks only talk to this interface, so accelerated backends slot in by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from emomon.errors import InputError
from fusion.base import EmotionModel


@runtime_checkable
class InferenceBackend(Protocol):
    name: str
    model: EmotionModel
    device: torch.device

    def encode_body(self, body: torch.Tensor) -> torch.Tensor: ...

    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor: ...

    def heads(self, b: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-person embeddings -> (category probabilities (N, 26), VAD (N, 3) on 1..10)."""
        ...


class TorchBackend:
    """Eager PyTorch in fp32 on any device."""

    name = "torch"

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


_BACKENDS: dict[str, Callable[..., InferenceBackend]] = {"torch": TorchBackend}


def register_backend(name: str, factory: Callable[..., InferenceBackend]) -> None:
    _BACKENDS[name] = factory


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def create_backend(name: str, model: EmotionModel, device: str = "cpu", **options) -> InferenceBackend:
    if name not in _BACKENDS:
        raise InputError(f"unknown backend '{name}': choose one of {', '.join(list_backends())}")
    return _BACKENDS[name](model, device=device, **options)


def _lazy(module: str, cls: str) -> Callable[..., InferenceBackend]:
    """A factory that imports its backend module on first use (onnxruntime/TensorRT load only if asked)."""

    def factory(model: EmotionModel, device: str = "cpu", **options) -> InferenceBackend:
        import importlib

        return getattr(importlib.import_module(module), cls)(model, device=device, **options)

    factory.__name__ = cls
    return factory


register_backend("torch-fp16", _lazy("fusion.backends_torch_fast", "TorchFastBackend"))
register_backend("torch-compile", _lazy("fusion.backends_torch_fast", "TorchCompileBackend"))
register_backend("onnxruntime", _lazy("fusion.backends_onnx", "OnnxRuntimeBackend"))
register_backend("tensorrt", _lazy("fusion.backends_tensorrt", "TensorRTBackend"))
