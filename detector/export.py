"""The YOLO detector's accelerated paths: Ultralytics' own export (OpenVINO, ONNX, TensorRT engine).

The detector loads `.onnx`, `.engine` files and `_openvino_model/` folders through `load_yolo` like `.pt`
weights, so an exported file is simply passed as `--detector-weights`. `detector_weights_for_runtime`
maps a detector runtime (`--detector-runtime`, or the emotion backend's) onto the matching format and
exports once into the cache (`$EMOMON_CACHE/detector/`, keyed by the weights' hash). OpenVINO and ONNX files
are exported with dynamic height and width, so a 640x360 frame runs at 640x384 as with the .pt model.

    >>> from detector import export_detector                                  # doctest: +SKIP
    >>> export_detector("yolo11n-pose.pt", "onnx", out_dir="exports/detector")
    PosixPath('exports/detector/yolo11n-pose.onnx')
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from detector.weights import DetectorError, load_yolo
from emomon.kernel import InputError, cache_dir, exclusive_lock, quiet_loggers, sha256_file

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "engine": ".engine", "openvino": "_openvino_model"}  # openvino: a folder
BACKEND_FORMATS = {"onnxruntime": "onnx", "tensorrt": "engine"}  # torch backends keep the .pt weights
RUNTIME_FORMATS = {"torch": None, "onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "engine"}
RUNTIMES = ("auto", *RUNTIME_FORMATS)
TENSORRT_HINT = "TensorRT is not installed: pip install 'emomon[trt]' (needs an NVIDIA GPU and driver)"


def default_cache_dir() -> Path:
    return cache_dir("detector")


def _require_tensorrt() -> None:
    """One clear line naming the install extra when TensorRT cannot be imported (the emotion backends' line)."""
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: the wheel is there but its CUDA libraries are not
        detail = "" if isinstance(exc, ModuleNotFoundError) else f" ({type(exc).__name__}: {str(exc)[:120]})"
        raise InputError(TENSORRT_HINT + detail) from None


def export_detector(weights: str | os.PathLike, format: str = "onnx", out_dir: str | os.PathLike | None = None,
                    half: bool = False, imgsz: int = 640, dynamic: bool = False, batch: int = 1,
                    device: str | None = None, simplify: bool = False, trust: bool = False) -> Path:
    """Export local YOLO `.pt` weights with Ultralytics into `out_dir` (default: the cache, keyed by the
    weights' hash) and return the exported file. `format="engine"` needs TensorRT and a GPU. `simplify`
    needs onnxslim; it is off by default so the export runs offline without installing anything.
    The weights load weights-only like every detector checkpoint (`load_yolo`); `trust` unpickles fully."""
    if format not in FORMATS:
        raise InputError(f"unknown detector export format '{format}': choose one of {', '.join(FORMATS)}")
    src = Path(weights).expanduser()
    if not src.is_file():
        raise InputError(f"detector weights '{weights}' not found: pass a local YOLO .pt file")
    if src.suffix != ".pt":
        raise InputError(f"detector weights '{weights}' are not PyTorch weights (.pt): only .pt files export")
    if format == "engine":
        _require_tensorrt()
    os.environ.setdefault("YOLO_OFFLINE", "1")  # never pip-install or download during an export
    out_dir = Path(out_dir) if out_dir else default_cache_dir() / f"{src.stem}-{sha256_file(src)[:12]}"
    suffix = f"-{imgsz}{'-fp16' if half else ''}{'-dynamic' if dynamic else ''}"
    final = out_dir / f"{src.stem}{suffix}{FORMATS[format]}"
    if _exported(final, src, format):
        return final
    with exclusive_lock(out_dir / ".export.lock"):  # processes starting together (Ray workers) export once
        if _exported(final, src, format):  # another one did, while this one waited
            return final
        return _export(src, format, final, out_dir, half, imgsz, dynamic, batch, device, simplify, trust)


def _exported(final: Path, src: Path, format: str) -> bool:
    return final.is_file() or (format == "openvino" and (final / f"{src.stem}.xml").is_file())


def _export(src: Path, format: str, final: Path, out_dir: Path, half: bool, imgsz: int, dynamic: bool, batch: int,
            device: str | None, simplify: bool, trust: bool) -> Path:
    """Ultralytics' export of `src` into `final` (the caller holds the cache folder's lock)."""
    work = out_dir / src.name  # Ultralytics writes next to the weights; ../shared is read-only
    if not work.exists() or work.resolve() != src.resolve():
        shutil.copyfile(src, work)
    from ultralytics.cfg import DEFAULT_CFG_DICT

    kwargs = {"format": format, "imgsz": imgsz, "dynamic": dynamic, "batch": batch, "verbose": False}
    if format != "openvino":  # Ultralytics refuses `simplify` for OpenVINO
        kwargs["simplify"] = simplify
    if half:  # newer Ultralytics spells fp16 `quantize=16`, older ones `half=True`
        kwargs.update({"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True})
    if device:
        kwargs["device"] = device
    from ultralytics.utils import LOGGER

    try:
        with quiet_loggers(LOGGER.name):  # Ultralytics prints a banner and a summary at INFO
            model = load_yolo(str(work), trust=trust, label=str(src))
            exported = Path(model.export(**kwargs))
    except DetectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ultralytics raises many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"Ultralytics could not export '{src}' to {format}: {first}") from None
    finally:
        if work.resolve() != src.resolve():
            work.unlink(missing_ok=True)
    if final.is_dir():  # a stale or half-written folder from an interrupted export
        shutil.rmtree(final)
    os.replace(exported, final)
    log.info("exported detector %s to %s", src.name, final)
    return final


def detector_weights_for_backend(weights: str | os.PathLike, backend: str, imgsz: int = 640,
                                 device: str | None = None, half: bool | None = None, trust: bool = False) -> str:
    """The detector weights to load for an emotion `backend`: `.pt` weights are exported (once, cached)
    to ONNX for `onnxruntime` and to a TensorRT engine for `tensorrt`; torch backends and weights that are
    already exported (or not a local .pt file) are returned unchanged."""
    fmt = BACKEND_FORMATS.get(backend)
    path = Path(weights).expanduser()
    if fmt is None or path.suffix != ".pt" or not path.is_file():
        return str(weights)
    if half is None:
        half = fmt == "engine"
    return str(export_detector(path, fmt, half=half, imgsz=imgsz, device=device, trust=trust))


def detector_weights_for_runtime(weights: str | os.PathLike, runtime: str, imgsz: int = 640,
                                 device: str | None = None, trust: bool = False) -> str:
    """The detector weights to load for a detector `runtime` (torch, onnxruntime, openvino, tensorrt):
    local `.pt` weights are exported once (cached) to that runtime's format; ONNX and OpenVINO with dynamic
    input size; `torch`, weights already exported and names that are not a local .pt file are unchanged."""
    if runtime not in RUNTIME_FORMATS:
        raise InputError(f"unknown detector runtime '{runtime}': choose one of {', '.join(RUNTIMES)}")
    fmt = RUNTIME_FORMATS[runtime]
    path = Path(weights).expanduser()
    if fmt is None or path.suffix != ".pt" or not path.is_file():
        return str(weights)
    if fmt == "engine":
        return str(export_detector(path, fmt, half=True, imgsz=imgsz, device=device, trust=trust))
    return str(export_detector(path, fmt, imgsz=imgsz, dynamic=True, device=device, trust=trust))
