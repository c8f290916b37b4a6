"""One interface for running an emotion model, whatever executes it.

A backend runs the three stages on preprocessed tensors: the body stream on a batch of crops, the scene
stream on a batch of frames, and the heads on per-person embeddings. The Predictor, the pipeline and the
benchmarks only talk to this interface, so accelerated backends slot in by name.

    torch           eager PyTorch: fp32 (`fusion.backends.torch`), or bf16/fp16 towers with `precision=`
                    (`fusion.backends.torch_fast`; `torch-fp16` is the old name for the device's half format)
    torch-compile   the same under torch.compile
    onnxruntime     the exported ONNX graphs (`fusion.backends.onnxruntime`)
    tensorrt        TensorRT engines (`fusion.backends.tensorrt`, run by `fusion.backends.tensorrt_runner`)

`--precision` is separate from the backend: `fusion.backends.precision` resolves `auto` from the hardware
and turns (backend, precision) into backend options. Only `torch` is imported with the package; the others
load on first use. (`fusion.backends.torch` is a submodule, so this package never binds the name `torch` to
PyTorch itself.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import Tensor
from torch import device as Device

from emomon.kernel import InputError
from fusion.backends.precision import PRECISIONS, Precision, cpu_bf16_support, resolve_backend, resolve_precision
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


def _torch(model: EmotionModel, device: str = "cpu", precision: str = "fp32", **options) -> InferenceBackend:
    """`torch`: eager fp32, or the reduced-precision towers of `torch_fast` for precision bf16/fp16."""
    if precision == "fp32" and not options:
        return TorchBackend(model, device=device)
    if precision == "fp32":
        raise InputError(f"the torch backend in fp32 takes no options ({', '.join(options)})")
    from fusion.backends.torch_fast import TorchFastBackend

    return TorchFastBackend(model, device=device, precision=precision, name="torch", **options)


_BACKENDS: dict[str, Callable[..., InferenceBackend]] = {"torch": _torch}


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

__all__ = ["PRECISIONS", "InferenceBackend", "Precision", "TorchBackend", "cpu_bf16_support", "create_backend",
           "list_backends", "register_backend", "resolve_backend", "resolve_precision"]
