"""What runs each model and in which precision: `--precision`, `--backend` and `--detector-runtime` resolved
into one choice that `build.py` builds, the log states and the run summary records.

The detector on a CPU with native bfloat16 runs as an OpenVINO model in bf16 (exported once into the
detector cache): measured side by side on the street clip it took about half the time of the .pt model in
fp32, with the same persons tracked (`benchmarks/results/cpu-realtime-street/`, tests/test_detector_runtimes.py).
bf16 autocast on the .pt model was about as fast but moved more boxes. Elsewhere the .pt model runs as before.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from detector import DetectorConfig
from fusion.backends.precision import Precision, cpu_bf16_support, resolve_backend, resolve_precision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorChoice:
    runtime: str     # torch | openvino | onnxruntime | tensorrt
    precision: str   # fp32 | bf16 | fp16
    reason: str


def emotion_choice(backend: str, precision: str, device: str) -> tuple[str, Precision]:
    """(backend, resolved precision) of the emotion model (see `fusion.backends.precision`)."""
    return resolve_backend(backend, precision, device)


def detector_choice(config: DetectorConfig, backend: str = "torch") -> DetectorChoice:
    """The detector's runtime and precision from its config and the emotion backend's name.

    int8 applies to the emotion model only: the detector then runs in the device's fast float format."""
    requested = config.precision
    if requested == "int8":
        requested = "auto"
    if backend == "torch-fp16":  # the old flag meant "the device's half format" for the emotion model only
        requested = "fp32" if requested == "auto" else requested
    precision = resolve_precision(requested, config.device).precision
    runtime = config.runtime
    if runtime == "auto":
        local_pt = Path(config.weights).expanduser().is_file() and str(config.weights).endswith(".pt")
        if backend == "tensorrt":
            runtime, reason = "tensorrt", "--backend tensorrt"
        elif str(config.device) == "cpu" and precision == "bf16" and local_pt and _has("openvino"):
            runtime, reason = "openvino", f"CPU with native bfloat16 ({cpu_bf16_support() or 'requested'})"
        else:
            runtime, reason = "torch", "default"
    else:
        reason = "--detector-runtime"
    if runtime == "torch" and precision == "bf16" and config.precision == "auto":
        precision = "fp32"  # bf16 autocast on the .pt model moves boxes more than OpenVINO's bf16; not by default
    return DetectorChoice(runtime, precision, reason)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
