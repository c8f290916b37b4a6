"""TensorRT engine files, their cache keys and compatibility rules; nothing here imports TensorRT.

An engine file is `MAGIC` (8 bytes), the length of a JSON header (uint32, little endian), the UTF-8 JSON
header, then the serialized engine exactly as TensorRT wrote it. The header says what the engine is (graph,
precision, optimization profile, the sha256 of the ONNX it was built from) and where it runs (TensorRT
version, GPU name and compute capability), so a mismatch is a clear error before TensorRT is asked to
deserialize anything, and the header can be read without loading the engine.

Engines are cached under `$EMOMON_CACHE/tensorrt/`, keyed by (ONNX sha256, TensorRT version, GPU name,
precision, profile): the second start with the same model on the same machine loads and runs at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from emomon.kernel import InputError, atomic_write, cache_dir

MAGIC = b"EMOMTRT\x01"
FORMAT_VERSION = 1
MAX_HEADER = 1 << 20
REQUIRED = ("format_version", "graph", "precision", "tensorrt_version", "gpu_name", "compute_capability",
            "onnx_sha256", "profile", "engine_size")
REBUILD = "rebuild it with `emomon export --format tensorrt`, or delete it and let the cache rebuild it"
INSTALL_HINT = "TensorRT is not installed: pip install 'emomon[trt]' (needs an NVIDIA GPU and driver)"


class EngineFileError(InputError):
    """An engine file that is missing, truncated, not an emomon engine, or unusable here."""


class EngineMismatchError(EngineFileError):
    """An engine built for another TensorRT version or another GPU."""


class TensorRTUnavailable(InputError):
    """TensorRT cannot be imported."""


def require_tensorrt():
    """The `tensorrt` module, or one clear line naming the install extra."""
    try:
        import tensorrt
    except (ImportError, OSError) as exc:  # OSError: the wheel is there but its CUDA libraries are not
        detail = "" if isinstance(exc, ModuleNotFoundError) else f" ({type(exc).__name__}: {str(exc)[:120]})"
        raise TensorRTUnavailable(INSTALL_HINT + detail) from None
    return tensorrt


@dataclass(frozen=True)
class Profile:
    """One optimization profile over the batch axis: min <= opt <= max."""

    min: int = 1
    opt: int = 8
    max: int = 32

    def __post_init__(self):
        if not 1 <= self.min <= self.opt <= self.max:
            raise InputError(f"bad batch profile min={self.min} opt={self.opt} max={self.max}: "
                             f"need 1 <= min <= opt <= max")

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def default_profiles(max_batch: int = 32, opt_batch: int = 8, max_scene_batch: int = 8) -> dict[str, Profile]:
    """The batch profile of each graph: persons for body and heads (tuned for `opt_batch`), frames for scene."""
    persons = Profile(1, min(opt_batch, max_batch), max_batch)
    return {"body": persons, "scene": Profile(1, 1, max_scene_batch), "heads": persons}


# -- build plan by TensorRT version ----------------------------------------------------------------------
@dataclass(frozen=True)
class BuildPlan:
    onnx_precision: str      # which ONNX file to parse: fp32, fp16 (converted) or int8 (Q/DQ)
    strongly_typed: bool     # network built strongly typed (types come from the graph)
    fp16_flag: bool          # TensorRT 10 weak typing: BuilderFlag.FP16
    tf32: bool               # allow TF32 in fp32 layers


def trt_major(version: str) -> int:
    m = re.match(r"(\d+)", str(version))
    if not m:
        raise InputError(f"cannot read the TensorRT version '{version}'")
    return int(m.group(1))


def build_plan(trt_version: str, precision: str) -> BuildPlan:
    """How to get `precision` out of this TensorRT: 11+ removed the precision builder flags (reduced
    precision must be in the ONNX graph, networks are strongly typed); 10 still takes BuilderFlag.FP16.
    INT8 is explicit (Q/DQ nodes) on both."""
    major = trt_major(trt_version)
    if major < 10:
        raise InputError(f"TensorRT {trt_version} is too old: emomon needs TensorRT 10 or newer "
                         f"(pip install 'emomon[trt]')")
    if precision not in ("fp32", "fp16", "int8"):
        raise InputError(f"unknown precision '{precision}': choose fp32, fp16 or int8")
    if major >= 11:
        return BuildPlan(precision, strongly_typed=True, fp16_flag=False, tf32=False)
    if precision == "int8":
        return BuildPlan("int8", strongly_typed=True, fp16_flag=False, tf32=False)
    return BuildPlan("fp32", strongly_typed=False, fp16_flag=precision == "fp16", tf32=False)


# -- cache keys -------------------------------------------------------------------------------------------
def engine_cache_key(onnx_sha256: str, trt_version: str, gpu_name: str, precision: str, profile: Profile) -> str:
    blob = json.dumps({"onnx": onnx_sha256, "trt": str(trt_version), "gpu": gpu_name, "precision": precision,
                       "profile": profile.as_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "x"


def default_cache_dir() -> Path:
    return cache_dir("tensorrt")


def engine_cache_path(cache_dir: str | os.PathLike | None, stem: str, precision: str, key: str) -> Path:
    return Path(cache_dir or default_cache_dir()) / f"{stem}.{precision}.{key}.engine"


def timing_cache_path(cache_dir: str | os.PathLike | None, trt_version: str, gpu_name: str) -> Path:
    return Path(cache_dir or default_cache_dir()) / f"timing-trt{slug(trt_version)}-{slug(gpu_name)}.cache"


# -- the file format --------------------------------------------------------------------------------------
def pack_engine(header: dict, engine: bytes) -> bytes:
    header = {**header, "format_version": FORMAT_VERSION, "engine_size": len(engine)}
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise ValueError(f"engine header lacks {missing}")
    blob = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(blob)) + blob + bytes(engine)


def write_engine_file(path: str | os.PathLike, header: dict, engine: bytes) -> Path:
    """Write atomically (temp file + rename)."""
    path = Path(path)
    blob = pack_engine(header, engine)
    with atomic_write(path) as tmp:
        tmp.write_bytes(blob)
    return path


def read_engine_header(path: str | os.PathLike) -> tuple[dict, int]:
    """(header, offset of the engine bytes); reads only the header. EngineFileError for anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise EngineFileError(f"engine file '{path}' not found")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 4)
        if len(head) < len(MAGIC) + 4 or head[:len(MAGIC)] != MAGIC:
            raise EngineFileError(f"'{path}' is not an emomon engine file (no emomon header; a bare TensorRT "
                                  f"plan or another file): {REBUILD}")
        (length,) = struct.unpack("<I", head[len(MAGIC):])
        if length > MAX_HEADER or len(MAGIC) + 4 + length > size:
            raise EngineFileError(f"engine file '{path}' is truncated or corrupt (header of {length} bytes): {REBUILD}")
        try:
            header = json.loads(f.read(length).decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise EngineFileError(f"engine file '{path}' has a corrupt header: {REBUILD}") from None
    offset = len(MAGIC) + 4 + length
    if not isinstance(header, dict) or any(k not in header for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(header, dict) or k not in header]
        raise EngineFileError(f"engine file '{path}' header lacks {missing}: {REBUILD}")
    if header["format_version"] != FORMAT_VERSION:
        raise EngineFileError(f"engine file '{path}' has header format {header['format_version']}, this emomon "
                              f"reads {FORMAT_VERSION}: {REBUILD}")
    if size - offset != header["engine_size"]:
        raise EngineFileError(f"engine file '{path}' is truncated ({size - offset} engine bytes, header says "
                              f"{header['engine_size']}): {REBUILD}")
    return header, offset


def read_engine_file(path: str | os.PathLike) -> tuple[dict, bytes]:
    header, offset = read_engine_header(path)
    with open(path, "rb") as f:
        f.seek(offset)
        return header, f.read()


def check_compatible(header: dict, trt_version: str, gpu_name: str, compute_capability: str, path="engine",
                     graph: str | None = None, precision: str | None = None) -> None:
    """Refuse an engine built by another TensorRT, for another GPU, or for another graph/precision."""
    if header["tensorrt_version"] != str(trt_version):
        raise EngineMismatchError(f"engine '{path}' was built with TensorRT {header['tensorrt_version']} and this "
                                  f"is TensorRT {trt_version}: {REBUILD}")
    if header["gpu_name"] != gpu_name or str(header["compute_capability"]) != str(compute_capability):
        built = f"{header['gpu_name']} (sm {header['compute_capability']})"
        raise EngineMismatchError(f"engine '{path}' was built for {built} and this GPU is {gpu_name} "
                                  f"(sm {compute_capability}): {REBUILD}")
    if graph and header["graph"] != graph:
        raise EngineFileError(f"engine '{path}' holds the {header['graph']!r} graph, expected {graph!r}")
    if precision and header["precision"] != precision:
        raise EngineFileError(f"engine '{path}' is {header['precision']}, expected {precision}: {REBUILD}")


def current_gpu(device) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of a torch CUDA device."""
    import torch

    device = torch.device(device)
    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"
