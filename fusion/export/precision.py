"""Reduced precision expressed in the ONNX graph itself, as TensorRT 11's strongly typed networks need.

- fp16: NVIDIA ModelOpt AutoCast when installed (keeps numerically sensitive ops in fp32), else
  onnxconverter-common's float16 conversion; inputs and outputs stay float32 in both cases.
- int8: explicit quantization (QuantizeLinear/DequantizeLinear pairs, symmetric int8 as TensorRT wants)
  calibrated on a small set of real frames: NVIDIA ModelOpt's ONNX PTQ when installed, else ONNX
  Runtime's static QDQ quantizer. The body and scene towers are quantized; the heads (a few small matmuls)
  are converted to fp16 instead.

Every converted file keeps the fp32 file's metadata with `emomon.precision` and `emomon.converter` set.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np

from emomon.kernel import IMAGE_SUFFIXES, InputError
from fusion.export.onnx_files import META_PREFIX, read_onnx_metadata, save_onnx, set_metadata
from fusion.models.preprocess import Preprocess, preprocess_images

log = logging.getLogger(__name__)

FP16_HINT = ("fp16 ONNX needs NVIDIA ModelOpt (pip install 'nvidia-modelopt[onnx]') or onnxconverter-common "
             "(pip install onnxconverter-common)")


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def to_fp16(src: str | os.PathLike, dst: str | os.PathLike, label: str = "fp16") -> Path:
    """fp32 ONNX -> mixed fp16 ONNX with float32 inputs and outputs (`label`: the precision recorded)."""
    import warnings

    import onnx

    src, dst = Path(src), Path(dst)
    meta = read_onnx_metadata(src)
    if _has("modelopt.onnx.autocast"):
        from modelopt.onnx import autocast

        proto = autocast.convert_to_mixed_precision(onnx_path=str(src), low_precision_type="fp16",
                                                    keep_io_types=True)
        converter = "modelopt-autocast"
    elif _has("onnxconverter_common"):
        from onnxconverter_common import float16

        with warnings.catch_warnings():  # "1e-12 will be truncated to 1e-07": normalize eps, harmless
            warnings.simplefilter("ignore", UserWarning)
            proto = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        converter = "onnxconverter-common"
    else:
        raise InputError(FP16_HINT)
    set_metadata(proto, {**_graph_keys(meta), META_PREFIX + "precision": label, META_PREFIX + "converter": converter,
                         META_PREFIX + "compute_precision": "fp16",
                         META_PREFIX + "source_onnx": src.name})
    save_onnx(proto, dst)
    return dst


def _graph_keys(meta: dict[str, str]) -> dict[str, str]:
    """The source file's metadata (converters may drop metadata_props), to be overridden per precision."""
    return {META_PREFIX + k: v for k, v in meta.items()}


# -- calibration --------------------------------------------------------------------------------------
def calibration_images(source: str | os.PathLike | None = None, limit: int = 32) -> list[np.ndarray]:
    """BGR frames for INT8 calibration: a folder, a glob, a video file or one image. None uses the two
    photos Ultralytics ships (a weak set: pass real frames from your cameras for production engines)."""
    import cv2

    if source is None:
        from ultralytics.utils import ASSETS

        paths = sorted(str(p) for p in Path(ASSETS).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        log.warning("INT8 calibration on Ultralytics' %d sample photos; pass --calibration with real frames",
                    len(paths))
    else:
        source = str(source)
        if os.path.isdir(source):
            paths = sorted(str(p) for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(c in source for c in "*?["):
            paths = sorted(glob.glob(source))
        elif os.path.isfile(source) and Path(source).suffix.lower() not in IMAGE_SUFFIXES:
            return _video_frames(source, limit)
        else:
            paths = [source]
    frames = [im for im in (cv2.imread(p) for p in paths[:limit]) if im is not None]
    if not frames:
        raise InputError(f"no readable calibration images in '{source}': pass a folder, glob or video of frames")
    return frames


def _video_frames(path: str, limit: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or limit
    step, frames, i = max(1, total // limit), [], 0
    while len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    cap.release()
    if not frames:
        raise InputError(f"cannot read calibration frames from video '{path}'")
    return frames


def calibration_batch(frames: list[np.ndarray], graph: str, meta: dict[str, str]) -> np.ndarray:
    """Preprocessed calibration inputs for the body (whole frames plus person-shaped strips) or scene graph."""
    pre = json.loads(meta[f"{graph}_preprocess"])
    pre = Preprocess(pre["size"], tuple(pre["mean"]), tuple(pre["std"]), pre["resize"])
    images = list(frames)
    if graph == "body":  # crops look like people more than whole frames do: add upright strips
        for f in frames:
            h, w = f.shape[:2]
            images += [f[:, x:x + max(4, w // 3)] for x in range(0, w - w // 3 + 1, max(1, w // 3))]
    return preprocess_images(images, pre).numpy()


# -- int8 ---------------------------------------------------------------------------------------------
def to_int8(src: str | os.PathLike, dst: str | os.PathLike, frames: list[np.ndarray] | None = None) -> Path:
    """fp32 ONNX -> Q/DQ int8 ONNX calibrated on `frames` (see `calibration_images`)."""
    src, dst = Path(src), Path(dst)
    meta = read_onnx_metadata(src)
    graph = meta["graph"]
    if graph == "heads":
        log.info("int8: the heads graph is converted to fp16, not quantized")
        return to_fp16(src, dst, label="int8")
    data = calibration_batch(frames if frames is not None else calibration_images(), graph, meta)
    name = meta.get("inputs", graph).split(",")[0]
    if _has("modelopt.onnx.quantization"):
        from modelopt.onnx.quantization import quantize

        tmp = dst.with_name(dst.name + ".modelopt.onnx")
        quantize(onnx_path=str(src), quantize_mode="int8", calibration_data={name: data},
                 calibration_method="entropy", output_path=str(tmp), high_precision_dtype="fp16")
        converter = "modelopt-ptq"
    elif _has("onnxruntime.quantization"):
        tmp = _ort_quantize(src, dst, name, data)
        converter = "onnxruntime-qdq"
    else:
        raise InputError("int8 ONNX needs NVIDIA ModelOpt (pip install 'nvidia-modelopt[onnx]') or onnxruntime")
    import onnx

    proto = onnx.load(str(tmp))
    tmp.unlink(missing_ok=True)
    set_metadata(proto, {**_graph_keys(meta), META_PREFIX + "precision": "int8", META_PREFIX + "converter": converter,
                         META_PREFIX + "compute_precision": "int8",
                         META_PREFIX + "source_onnx": src.name,
                         META_PREFIX + "calibration_images": str(len(data))})
    save_onnx(proto, dst)
    return dst


def _ort_quantize(src: Path, dst: Path, name: str, data: np.ndarray) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{name: data[i:i + 8]} for i in range(0, len(data), 8)])

        def get_next(self):
            return next(self.items, None)

    tmp = dst.with_name(dst.name + ".ort.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs "consider pre-processing" on the root logger
    try:
        # TensorRT takes symmetric int8 (zero point 0) for activations and weights, per-channel weights.
            quantize_static(str(src), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    finally:
        root.setLevel(level)
    return tmp


def convert_precision(src: str | os.PathLike, precision: str, dst: str | os.PathLike, calibration=None) -> Path:
    """fp32 ONNX `src` -> `dst` in `precision` ("fp16" or "int8"; int8 calibrates on `calibration`: a list
    of BGR frames, a path/glob/video for `calibration_images`, or None for the built-in sample photos)."""
    if precision == "fp16":
        return to_fp16(src, dst)
    if precision == "int8":
        frames = calibration if isinstance(calibration, list) or calibration is None else \
            calibration_images(calibration)
        return to_int8(src, dst, frames)
    raise InputError(f"cannot convert ONNX to '{precision}': use fp16 or int8")
