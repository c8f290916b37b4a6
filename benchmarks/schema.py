"""The versioned shape of a benchmark report, and a validator (no extra dependency).

Bump SCHEMA_VERSION when a field changes meaning or disappears; adding fields keeps the version. Reports of
one version compare field by field across runs and machines.

    >>> errors = validate({"schema": "emomon.bench", "schema_version": SCHEMA_VERSION})
    >>> any("config" in e for e in errors)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.e2e import STAGES

SCHEMA = "emomon.bench"
SCHEMA_VERSION = 1
PARTS = ("models", "detector", "pipeline", "naive", "multistream", "flops")


@dataclass(frozen=True)
class Opt:
    """None or the inner spec."""

    spec: Any


@dataclass(frozen=True)
class ListOf:
    spec: Any


@dataclass(frozen=True)
class MapOf:
    """A dict with any string keys, every value matching the spec."""

    spec: Any


class Num:
    """An int or a float (not a bool)."""


STATS = {"n": int, "mean": Num, "std": Num, "min": Num, "p25": Num, "p50": Num, "p75": Num, "p95": Num, "p99": Num,
         "max": Num, "iqr": Num, "rel_iqr": Num}

POINT = {"batch_size": int, "iterations": int, "images_per_s": Num, "images_per_s_iqr": ListOf(Num),
         "ms_per_batch": STATS, "ms_per_image": Num, "achieved_flops_per_s": Opt(Num),
         "fraction_of_peak": Opt(Num), "peak_memory_mb": Opt(Num), "device_memory_used_mb": Opt(Num)}

STAGE = {"per_frame_ms": STATS, "total_s": Num, "share": Num, "overlapped": bool}

RUN = {"frames": int, "persons": int, "wall_s": Num, "fps": Num, "persons_per_s": Num,
       "mean_persons_per_frame": Num, "frame_done_s": ListOf(Num), "backend": str,
       "stages": {stage: STAGE for stage in STAGES}, "emotion_frame_s": ListOf(Num), "other_s": Num,
       "executed_flops": Opt(int),
       "achieved_flops_per_s": Opt(Num), "fraction_of_peak": Opt(Num)}

OPTIMIZED = {**RUN, "overlap": {"decode_busy_s": Num, "consumer_wait_s": Num, "decode_hidden_fraction": Num,
                                "serial_estimate_s": Num, "hidden_s": Num},
             "counts": MapOf(int), "reuse": dict}

MULTISTREAM = {"streams": int, "frames": int, "wall_s": Num, "aggregate_fps": Num, "persons_per_s": Num,
               "per_stream_fps": ListOf(Num), "latency_ms": STATS, "per_stream_latency_ms": ListOf(Opt(STATS)),
               "source_fps": Num, "realtime_at_n": bool, "realtime_streams_estimate": int,
               "batched_detector": bool, "batching": MapOf(dict)}

REPORT = {
    "schema": str,
    "schema_version": int,
    "created_utc": str,
    "duration_s": Num,
    "command": str,
    "config": {"quick": bool, "device": str, "frames": int, "streams": int, "backends": ListOf(str),
               "batch_sizes": ListOf(int), "warmup": int, "repeats": int, "emotion_model": str,
               "detector_weights": str, "skip": ListOf(str)},
    "environment": {"python": str, "torch_threads": int, "cpu_count": Opt(int), "device": str, "gpu": Opt(str),
                    "driver": Opt(str), "cuda": Opt(str), "tensorrt": Opt(str), "versions": MapOf(Opt(str))},
    "model": {"description": str, "name": str, "parameters": MapOf(int)},
    "source": {"path": str, "generated": bool, "fps": Opt(Num), "width": int, "height": int},
    "flops": Opt({"method": str, "scene_per_frame": int, "body_per_person": int, "heads_per_person": int,
                  "detector_per_frame": Opt(int)}),
    "peak": Opt({"basis": str, "flops_per_s": MapOf(Num), "measured_matmul_flops_per_s": MapOf(Num), "note": str}),
    "model_benchmarks": {"backends": MapOf({"status": str}), "detector": MapOf({"status": str})},
    "pipeline": Opt({"optimized": OPTIMIZED, "naive": Opt(RUN), "speedup": Opt(dict)}),
    "multistream": Opt(MULTISTREAM),
    "summary": dict,
    "skipped": MapOf(str),
    "warnings": ListOf(str),
    "part_seconds": MapOf(Num),
}


def _check(value, spec, path: str, errors: list[str]) -> None:
    if isinstance(spec, Opt):
        if value is not None:
            _check(value, spec.spec, path, errors)
        return
    if spec is Num:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {type(value).__name__}")
        elif value != value or value in (float("inf"), float("-inf")):
            errors.append(f"{path}: not a finite number ({value})")
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(item, spec.spec, f"{path}[{i}]", errors)
        return
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(item, spec.spec, f"{path}.{key}", errors)
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        for key, sub in spec.items():
            if key not in value:
                errors.append(f"{path}.{key}: missing")
            else:
                _check(value[key], sub, f"{path}.{key}", errors)
        return
    if spec is int and isinstance(value, bool):
        errors.append(f"{path}: expected int, got bool")
    elif not isinstance(value, spec):
        errors.append(f"{path}: expected {spec.__name__}, got {type(value).__name__}")


def validate(report: dict) -> list[str]:
    """Everything wrong with a report, as 'path: problem' lines; empty when it is valid."""
    errors: list[str] = []
    if not isinstance(report, dict):
        return ["report: expected an object"]
    if report.get("schema") != SCHEMA:
        errors.append(f"schema: expected '{SCHEMA}', got {report.get('schema')!r}")
    if report.get("schema_version") != SCHEMA_VERSION:
        errors.append(f"schema_version: expected {SCHEMA_VERSION}, got {report.get('schema_version')!r}")
    _check(report, REPORT, "report", errors)
    if errors:
        return errors
    skipped = report["skipped"]
    for part in ("pipeline", "multistream", "flops"):
        if report[part] is None and part not in skipped:
            errors.append(f"report.{part}: null but not listed in report.skipped")
    for name, entry in {**report["model_benchmarks"]["backends"], **report["model_benchmarks"]["detector"]}.items():
        if entry["status"] == "ok":
            points = entry.get("streams", {"points": entry.get("points")})
            for stream, pts in points.items():
                _check(pts, ListOf(dict), f"report.model_benchmarks.{name}.{stream}", errors)
                for i, p in enumerate(pts or []):
                    if "skipped" not in p:
                        _check(p, POINT, f"report.model_benchmarks.{name}.{stream}[{i}]", errors)
        elif not entry.get("reason"):
            errors.append(f"report.model_benchmarks.{name}: status {entry['status']} without a reason")
    pipeline = report["pipeline"]
    if pipeline is not None:
        for run in ("optimized", "naive"):
            if pipeline[run] is None:
                continue
            for stage in STAGES:
                if pipeline[run]["stages"][stage]["per_frame_ms"] is None:
                    errors.append(f"report.pipeline.{run}.stages.{stage}: no timing")
        if pipeline["naive"] is not None and not (pipeline["speedup"] or {}).get("end_to_end"):
            errors.append("report.pipeline.speedup.end_to_end: missing although the naive baseline ran")
    return errors


def check(report: dict) -> dict:
    """The report itself when valid, else ValueError listing every problem."""
    errors = validate(report)
    if errors:
        raise ValueError("invalid benchmark report:\n  " + "\n  ".join(errors))
    return report
