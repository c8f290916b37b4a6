"""Which number format the models compute in (`--precision`), separate from what runs them (`--backend`).

`auto` asks the hardware, never the model name: fp16 on CUDA; bf16 on a CPU with native bfloat16 (AVX-512
BF16 or AMX, as torch's CPU capability checks report them, else /proc/cpuinfo's flags); fp32 elsewhere, where
bfloat16 is emulated and slower than fp32. `int8` runs where int8 kernels exist: ONNX Runtime (VNNI on CPU)
or TensorRT.

    >>> from fusion.backends.precision import resolve_precision
    >>> resolve_precision("fp32", "cpu").precision
    'fp32'
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from emomon.kernel import InputError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
# `--backend torch-fp16` predates `--precision`: it means the torch backend in the device's half format.
ALIASES = {"torch-fp16": "torch"}
INT8_BACKENDS = ("onnxruntime", "tensorrt")


@dataclass(frozen=True)
class Precision:
    """A resolved precision and why it was chosen (for the log, the run summary and the bench)."""

    precision: str   # fp32 | bf16 | fp16 | int8
    requested: str   # what the user asked for (auto included)
    reason: str

    def describe(self) -> str:
        return f"{self.precision} ({self.reason})"


@functools.lru_cache(maxsize=1)
def cpu_bf16_support() -> str | None:
    """The CPU feature that makes bfloat16 fast here ('AVX-512 BF16' or 'AMX'), or None."""
    import torch

    cpu = getattr(torch, "cpu", None)
    try:
        if cpu is not None and cpu._is_amx_tile_supported():
            return "AMX"
        if cpu is not None and cpu._is_avx512_bf16_supported():
            return "AVX-512 BF16"
    except AttributeError:  # older torch: read the flags the kernel reports
        pass
    flags = _cpuinfo_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    return None


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def resolve_precision(requested: str, device: str) -> Precision:
    """`requested` (one of PRECISIONS) on `device` -> the precision to run, or an InputError for a
    precision the device cannot run (fp16 on a CPU, bf16 on a CPU without it is allowed but slow)."""
    if requested not in PRECISIONS:
        raise InputError(f"unknown precision '{requested}': choose one of {', '.join(PRECISIONS)}")
    cuda = str(device).startswith("cuda")
    if requested == "auto":
        if cuda:
            return Precision("fp16", requested, "CUDA device")
        feature = cpu_bf16_support()
        if feature:
            return Precision("bf16", requested, f"CPU with native bfloat16 ({feature})")
        return Precision("fp32", requested, "CPU without native bfloat16")
    if requested == "fp16" and not cuda:
        raise InputError("--precision fp16 needs a CUDA device (CPUs have no fast float16 path): "
                         "use --precision bf16 or auto on a CPU")
    if requested == "bf16" and not cuda and not cpu_bf16_support():
        log.warning("bf16 on a CPU without AVX-512 BF16 or AMX is emulated and slower than fp32")
    return Precision(requested, requested, "requested")


def resolve_backend(backend: str, requested: str, device: str) -> tuple[str, Precision]:
    """(backend, precision) to build, from the `--backend` and `--precision` flags.

    `torch-fp16` is kept as an alias: the torch backend in fp16 on CUDA, bf16 on a CPU (said in the log).
    int8 needs a backend with int8 kernels; ONNX Runtime on a CPU has no bfloat16 graphs."""
    if backend in ALIASES:
        half = "fp16" if str(device).startswith("cuda") else "bf16"
        if requested not in ("auto", half):
            raise InputError(f"--backend {backend} means --backend torch --precision {half} on this device; "
                             f"it cannot run --precision {requested}: use --backend torch --precision {requested}")
        log.info("--backend %s is an alias of --backend %s --precision %s on %s", backend, ALIASES[backend], half,
                 device)
        return ALIASES[backend], Precision(half, requested, f"--backend {backend}")
    precision = resolve_precision(requested, device)
    if precision.precision == "int8" and backend not in INT8_BACKENDS:
        raise InputError(f"--precision int8 runs with --backend {' or '.join(INT8_BACKENDS)}, not {backend}")
    if backend == "onnxruntime" and precision.precision == "bf16":
        if requested == "auto":  # ONNX Runtime's CPU provider has no bfloat16 graphs: auto falls back
            return backend, Precision("fp32", requested, "onnxruntime on CPU runs fp32 or int8")
        raise InputError("--backend onnxruntime runs fp32 or int8 on a CPU, not bf16: use --backend torch "
                         "--precision bf16")
    return backend, precision


def backend_options(backend: str, precision: str) -> dict:
    """The keyword options that make `backend` compute in `precision`."""
    if backend in ("torch", "torch-compile"):
        return {} if precision == "fp32" and backend == "torch" else {"precision": precision}
    if backend in INT8_BACKENDS:
        return {"precision": precision}
    return {}
