"""Build TensorRT engines from the exported ONNX graphs (needs TensorRT and a CUDA GPU).

Written against the TensorRT 10/11 Python API documentation:
- TensorRT 11: networks are always strongly typed and the precision builder flags are gone, so the ONNX
  parsed is already fp16 (converted) or int8 (Q/DQ) — see `fusion.export.precision` and `build_plan`.
- TensorRT 10: fp16 is the weakly typed network with `BuilderFlag.FP16`; int8 parses the Q/DQ graph into
  a network created with `NetworkDefinitionCreationFlag.STRONGLY_TYPED`.
One optimization profile over the batch axis, and a timing cache per (TensorRT version, GPU) kept next to
the engines so later builds reuse measured tactics.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

from emomon.kernel import InputError, sha256_file
from fusion.export.onnx import OPSET, ensure_onnx
from fusion.export.onnx_files import INPUTS, OUTPUTS, read_onnx_metadata
from fusion.export.precision import convert_precision
from fusion.export.tensorrt import (
    BuildPlan,
    Profile,
    build_plan,
    current_gpu,
    engine_cache_key,
    engine_cache_path,
    read_engine_header,
    require_tensorrt,
    timing_cache_path,
    write_engine_file,
)

log = logging.getLogger(__name__)


def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def _input_shapes(meta: dict[str, str], graph: str) -> dict[str, tuple[int, ...]]:
    """Per-input shape without the batch axis, from the export metadata."""
    import json

    if graph == "heads":
        return {"body_embedding": (int(meta["body_dim"]),), "scene_embedding": (int(meta["scene_dim"]),)}
    size = json.loads(meta[f"{graph}_preprocess"])["size"]
    return {graph: (3, size, size)}


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, plan: BuildPlan, precision: str,
                 profile: Profile, device="cuda", timing_cache: str | os.PathLike | None = None,
                 workspace_gib: float | None = None) -> Path:
    """Parse `onnx_path`, build with one batch profile, write an engine file with its JSON header."""
    trt = require_tensorrt()
    import torch

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    meta = read_onnx_metadata(onnx_path)
    graph = meta["graph"]
    logger = _logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if plan.strongly_typed and strongly is not None:  # TensorRT 11 is strongly typed without the flag
        flags |= 1 << int(strongly)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.fspath(onnx_path)):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise InputError(f"TensorRT cannot parse '{onnx_path}': {errors[:300]}")
    config = builder.create_builder_config()
    if workspace_gib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if not plan.tf32 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: parity with ONNX Runtime and torch
    opt_profile = builder.create_optimization_profile()
    for name, rest in _input_shapes(meta, graph).items():
        opt_profile.set_shape(name, (profile.min, *rest), (profile.opt, *rest), (profile.max, *rest))
    config.add_optimization_profile(opt_profile)
    cache_blob = Path(timing_cache).read_bytes() if timing_cache and Path(timing_cache).is_file() else b""
    cache = config.create_timing_cache(cache_blob)
    config.set_timing_cache(cache, ignore_mismatch=True)  # a stale cache is re-timed, not an error
    log.info("building TensorRT %s engine for %s (%s, batch %s) - this takes a while once",
             trt.__version__, onnx_path.name, precision, profile.as_dict())
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InputError(f"TensorRT failed to build an engine from '{onnx_path}' (see the TensorRT log above)")
    if timing_cache:
        Path(timing_cache).parent.mkdir(parents=True, exist_ok=True)
        Path(timing_cache).write_bytes(bytes(config.get_timing_cache().serialize()))
    gpu_name, capability = current_gpu(device)
    header = {
        "graph": graph, "precision": precision, "tensorrt_version": trt.__version__, "gpu_name": gpu_name,
        "compute_capability": capability, "onnx_sha256": sha256_file(onnx_path), "onnx_file": onnx_path.name,
        "profile": profile.as_dict(), "inputs": list(INPUTS[graph]), "outputs": list(OUTPUTS[graph]),
        "strongly_typed": plan.strongly_typed, "fp16_flag": plan.fp16_flag,
        "model_name": meta.get("model_name"), "model_hash": meta.get("model_hash"),
        "weights_sha256": meta.get("weights_sha256"), "emomon_version": meta.get("emomon_version"),
        "torch_version": torch.__version__, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    return write_engine_file(engine_path, header, bytes(serialized))


def ensure_engine(onnx_files: dict[str, Path] | None, graph: str, precision: str, profile: Profile, device="cuda",
                  cache_dir: str | os.PathLike | None = None, model=None, onnx_cache_dir=None, calibration=None,
                  rebuild: bool = False, opset: int | None = None) -> Path:
    """The cached engine for one graph, built on a miss. The ONNX parsed follows `build_plan` (fp32 with the
    FP16 flag on TensorRT 10; the converted fp16/int8 graph on TensorRT 11); `onnx_files` maps graph ->
    fp32 ONNX, or `model` is exported through the ONNX cache."""
    trt = require_tensorrt()
    plan = build_plan(trt.__version__, precision)
    if model is not None:
        onnx_path = ensure_onnx(model, cache_dir=onnx_cache_dir, graphs=(graph,), precision=plan.onnx_precision,
                                calibration=calibration, opset=opset or OPSET)[graph]
    else:
        onnx_path = Path(onnx_files[graph])
        if plan.onnx_precision != "fp32":
            converted = onnx_path.with_name(f"{graph}.{plan.onnx_precision}.onnx")
            if not converted.is_file():
                convert_precision(onnx_path, plan.onnx_precision, converted, calibration=calibration)
            onnx_path = converted
    gpu_name, capability = current_gpu(device)
    key = engine_cache_key(sha256_file(onnx_path), trt.__version__, f"{gpu_name} sm{capability}", precision, profile)
    stem = f"{read_onnx_metadata(onnx_path).get('model_name', 'model')}-{graph}"
    path = engine_cache_path(cache_dir, stem, precision, key)
    if path.is_file() and not rebuild:
        try:
            read_engine_header(path)
            return path
        except InputError as exc:
            log.warning("rebuilding the cached engine %s (%s)", path, exc)
    timing = timing_cache_path(cache_dir, trt.__version__, gpu_name)
    return build_engine(onnx_path, path, plan, precision, profile, device=device, timing_cache=timing)
