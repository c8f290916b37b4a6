"""One interface for running an emotion model, whatever executes it.

A backend runs the three stages on preprocessed tensors: the body stream on a batch of crops, the scene
stream on a batch of frames, and the heads on per-person embeddings. The Predictor, the pipeline and the
benchmarks only talk to this interface, so accelerated backends slot in by name.

    torch           eager PyTorch fp32 (`fusion.backends.torch`)
    torch-fp16      autocast towers; torch-compile: the same under torch.compile (`fusion.backends.torch_fast`)
    onnxruntime     the exported ONNX graphs (`fusion.backends.onnxruntime`)
    tensorrt        TensorRT engines (`fusion.backends.tensorrt`, run by `fusion.backends.tensorrt_runner`)

Only `torch` is imported with the package; the others load on first use. (`fusion.backends.torch` is a
submodule, so this package never binds the name `torch` to PyTorch itself.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import Tensor
from torch import device as Device

from emomon.kernel import InputError
from fusion.backends.torch import TorchBackend
from fusion.models.base import EmotionModel


@runtime_checkable
class InferenceBackend(Protocol):
    name: str
    model: EmotionModel
    device: Device

    def encode_body(self, body: Tensor) -> Tensor: ...

    def encode_scene(self, scene: Tensor) -> Tensor: ...

    def heads(self, b: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """Per-person embeddings -> (category probabilities (N, 26), VAD (N, 3) on 1..10)."""
        ...


_BACKENDS: dict[str, Callable[..., InferenceBackend]] = {"torch": TorchBackend}


def register_backend(name: str, factory: Callable[..., InferenceBackend]) -> None:
    _BACKENDS[name] = factory


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def check_backend(name: str) -> None:
    """A one-line input error for a backend name that is not registered (before any model is loaded)."""
    if name not in _BACKENDS:
        raise InputError(f"unknown backend '{name}': choose one of {', '.join(list_backends())}")


def create_backend(name: str, model: EmotionModel, device: str = "cpu", **options) -> InferenceBackend:
    check_backend(name)
    return _BACKENDS[name](model, device=device, **options)


def _lazy(module: str, cls: str) -> Callable[..., InferenceBackend]:
    """A factory that imports its backend module on first use (onnxruntime/TensorRT load only if asked)."""

    def factory(model: EmotionModel, device: str = "cpu", **options) -> InferenceBackend:
        import importlib

        return getattr(importlib.import_module(module), cls)(model, device=device, **options)

    factory.__name__ = cls
    return factory


register_backend("torch-fp16", _lazy("fusion.backends.torch_fast", "TorchFastBackend"))
register_backend("torch-compile", _lazy("fusion.backends.torch_fast", "TorchCompileBackend"))
register_backend("onnxruntime", _lazy("fusion.backends.onnxruntime", "OnnxRuntimeBackend"))
register_backend("tensorrt", _lazy("fusion.backends.tensorrt", "TensorRTBackend"))

__all__ = ["InferenceBackend", "TorchBackend", "create_backend", "list_backends", "register_backend"]
