"""Statistics and synchronized timing: the two things every benchmark number goes through.

    >>> s = summarize([0.010, 0.011, 0.012, 0.050])   # seconds in, milliseconds out
    >>> round(s["p50"], 1), round(s["iqr"], 2), s["n"]
    (11.5, 10.75, 4)

Timing on CUDA synchronizes the whole device (`torch.cuda.synchronize`) around the timed call, not a CUDA
event pair on torch's current stream: ONNX Runtime and TensorRT backends run on streams of their own, and
only a device-wide synchronization sees their work finish.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

PERCENTILES = (25, 50, 75, 95, 99)


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation as numpy's default); None for no samples."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    values = np.asarray(list(samples), dtype=np.float64)
    if values.size == 0:
        return None
    return float(np.percentile(values, q))


def summarize(samples: Sequence[float], scale: float = 1000.0) -> dict | None:
    """n, mean, std, min, p25/p50/p75/p95/p99, max, iqr and rel_iqr (iqr / median) of `samples` * scale.

    The default scale turns seconds into milliseconds. None when there are no samples. `rel_iqr` is the
    spread figure reports quote next to a median (0.05 = the middle half of the runs lies within 5%).
    """
    values = np.asarray(list(samples), dtype=np.float64) * scale
    if values.size == 0:
        return None
    if not np.all(np.isfinite(values)):
        raise ValueError("summarize got non-finite samples")
    p = {f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES}
    iqr = p["p75"] - p["p25"]
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "min": float(values.min()),
        **p,
        "max": float(values.max()),
        "iqr": float(iqr),
        "rel_iqr": float(iqr / p["p50"]) if p["p50"] > 0 else 0.0,
    }


def rate(count: float, seconds: float) -> float:
    """count / seconds, 0.0 for an empty interval (never a division by zero in a report)."""
    return float(count) / seconds if seconds > 0 else 0.0


def is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def synchronize(device) -> None:
    """Wait for all queued work on a CUDA device (every stream); a no-op on CPU."""
    if is_cuda(device):
        import torch

        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device="cpu") -> float:
    """Seconds one call takes, synchronized before and after so queued GPU work is not misattributed."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def time_loop(fn: Callable[[], object], device="cpu", warmup: int = 2, repeats: int = 10,
              max_seconds: float = math.inf, min_repeats: int = 3) -> dict:
    """The timm-style benchmark loop: `warmup` untimed calls, then up to `repeats` synchronized timed calls.

    Stops early once `max_seconds` of timed calls have been spent (but never before `min_repeats`), so a
    slow configuration cannot blow a time budget. Returns {"samples_s": [...], "warmup_s": [...]}.
    """
    warm = [time_call(fn, device) for _ in range(max(0, warmup))]
    samples: list[float] = []
    spent = 0.0
    while len(samples) < max(repeats, min_repeats):
        if len(samples) >= min_repeats and spent >= max_seconds:
            break
        samples.append(time_call(fn, device))
        spent += samples[-1]
    return {"samples_s": samples, "warmup_s": warm}
