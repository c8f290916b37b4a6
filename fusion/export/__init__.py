"""Deployment files of an emotion model: ONNX graphs (fp32, fp16, int8) and TensorRT engines.

    onnx_files      names, `emomon.*` metadata (write, read, check), the atomic writer
    onnx            export_onnx, the on-the-fly ONNX cache (ensure_onnx), the exported graph modules
    precision       fp16 / int8 ONNX converted from the fp32 files, INT8 calibration frames
    tensorrt        engine files, their cache keys, build plans and batch profiles (no TensorRT import)
    tensorrt_build  building engines from the ONNX files (needs TensorRT and a GPU)

Builds on `fusion.models` only: nothing here imports `fusion.backends` or `fusion.predictor`.
"""

from fusion.export.onnx import OPSET, cache_dir_for, ensure_onnx, example_inputs, export_onnx, graph_module
from fusion.export.onnx_files import (
    GRAPHS,
    INPUTS,
    META_PREFIX,
    OUTPUTS,
    PRECISIONS,
    OnnxFileError,
    check_metadata,
    model_metadata,
    onnx_name,
    read_onnx_metadata,
    weights_sha256,
)
from fusion.export.precision import calibration_images, convert_precision
from fusion.export.tensorrt import (
    EngineFileError,
    EngineMismatchError,
    Profile,
    TensorRTUnavailable,
    default_profiles,
    require_tensorrt,
)

__all__ = [
    "GRAPHS", "INPUTS", "META_PREFIX", "OPSET", "OUTPUTS", "PRECISIONS", "EngineFileError", "EngineMismatchError",
    "OnnxFileError", "Profile", "TensorRTUnavailable", "cache_dir_for", "calibration_images", "check_metadata",
    "convert_precision", "default_profiles", "ensure_onnx", "example_inputs", "export_onnx", "graph_module",
    "model_metadata", "onnx_name", "read_onnx_metadata", "require_tensorrt", "weights_sha256",
]
