"""The versioned shape of a benchmark report, and a validator (no extra dependency).

Bump SCHEMA_VERSION when a field changes meaning or disappears; adding fields keeps the version. Reports of
one version compare field by field across runs and machines.

v2 (from v1): the pipeline runs twice, `pipeline.every_frame` (work reuse off) and `pipeline.reuse` (the
default; v1's `pipeline.optimized`); `pipeline.speedup` holds `exact` (every frame vs naive) and `with_reuse`
(reuse vs naive), each with its frame count, both sides' frames/s and per-frame spreads; new
`pipeline.reuse_over_every_frame`, `pipeline.reuse_deviation` and `pipeline.naive_deviation` (outputs matched by
frame and track id); runs carry `precision` and `frame_ms`, the naive run its frame floor and why it stopped;
`peak` holds `measured` (with its method) and `nominal` apart, `flops_per_s` is the peak fractions use and
`raised` says where a run beat a measured peak (every `fraction_of_peak` is in (0, 1]); `environment.git`
records the full commit and whether the tree was dirty. Beyond types, `validate` checks that every speed-up
is the ratio of the two runs' frames/s over the same first frames, recomputed from `frame_done_s`.

    >>> errors = validate({"schema": "emomon.bench", "schema_version": SCHEMA_VERSION})
    >>> any("config" in e for e in errors)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from benchmarks.e2e import STAGES

SCHEMA = "emomon.bench"
SCHEMA_VERSION = 2
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
       "mean_persons_per_frame": Num, "frame_done_s": ListOf(Num), "frame_ms": Opt(STATS), "backend": str,
       "precision": str,
       "stages": {stage: STAGE for stage in STAGES}, "emotion_frame_s": ListOf(Num), "other_s": Num,
       "executed_flops": Opt(int),
       "achieved_flops_per_s": Opt(Num), "fraction_of_peak": Opt(Num)}

OPTIMIZED = {**RUN, "overlap": {"decode_busy_s": Num, "consumer_wait_s": Num, "decode_hidden_fraction": Num,
                                "serial_estimate_s": Num, "hidden_s": Num},
             "counts": MapOf(int), "reuse": dict}

NAIVE = {**RUN, "min_frames": int, "max_frames": int, "max_seconds": Opt(Num), "stopped_by": str}

SPEEDUP = {"run": str, "baseline": str, "frames": int, "run_fps": Num, "baseline_fps": Num, "speedup": Opt(Num),
           "run_frame_ms": Opt(STATS), "baseline_frame_ms": Opt(STATS), "median_frame_speedup": Opt(Num),
           "emotion_speedup": Opt(Num)}

DEVIATION = {"frames": int, "reference_persons": int, "candidate_persons": int, "matched": int,
             "prob_max_abs": Opt(Num), "prob_mean_abs": Opt(Num), "prob_p99_abs": Opt(Num), "vad_max_abs": Opt(Num),
             "vad_mean_abs": Opt(Num), "top1_agreement": Opt(Num)}

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
    "environment": {"python": str, "cpu": str, "torch_threads": int, "cpu_count": Opt(int), "device": str,
                    "gpu": Opt(str), "driver": Opt(str), "cuda": Opt(str), "tensorrt": Opt(str),
                    "versions": MapOf(Opt(str)), "git": {"commit": Opt(str), "dirty": Opt(bool)}},
    "model": {"description": str, "name": str, "parameters": MapOf(int)},
    "source": {"path": str, "generated": bool, "fps": Opt(Num), "width": int, "height": int},
    "flops": Opt({"method": str, "scene_per_frame": int, "body_per_person": int, "heads_per_person": int,
                  "detector_per_frame": Opt(int)}),
    "peak": Opt({"basis": str, "flops_per_s": MapOf(Num), "note": str,
                 "measured": {"flops_per_s": MapOf(Num), "method": str},
                 "nominal": Opt({"matched": str, "flops_per_s": MapOf(Num), "source": str}), "nominal_note": str,
                 "raised": ListOf({"key": str, "from": Num, "to": Num, "by": str})}),
    "model_benchmarks": {"backends": MapOf({"status": str}), "detector": MapOf({"status": str})},
    "pipeline": Opt({"every_frame": OPTIMIZED, "reuse": OPTIMIZED, "naive": Opt(NAIVE),
                     "speedup": Opt({"exact": SPEEDUP, "with_reuse": SPEEDUP, "note": str}),
                     "reuse_over_every_frame": SPEEDUP, "reuse_deviation": DEVIATION,
                     "naive_deviation": Opt(DEVIATION)}),
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
    errors += _pipeline_errors(report["pipeline"])
    errors += _fraction_errors(report)
    return errors


def _pipeline_errors(pipeline: dict | None) -> list[str]:
    """Timings for every stage; each speed-up recomputed from its two runs over the same first frames."""
    errors: list[str] = []
    if pipeline is None:
        return errors
    for run in ("every_frame", "reuse", "naive"):
        if pipeline[run] is None:
            continue
        for stage in STAGES:
            if pipeline[run]["stages"][stage]["per_frame_ms"] is None:
                errors.append(f"report.pipeline.{run}.stages.{stage}: no timing")
        if len(pipeline[run]["frame_done_s"]) != pipeline[run]["frames"]:
            errors.append(f"report.pipeline.{run}.frame_done_s: {len(pipeline[run]['frame_done_s'])} times for "
                          f"{pipeline[run]['frames']} frames")
    if pipeline["naive"] is not None and pipeline["speedup"] is None:
        errors.append("report.pipeline.speedup: missing although the naive baseline ran")
    speeds = {f"speedup.{k}": v for k, v in (pipeline["speedup"] or {}).items() if isinstance(v, dict)}
    speeds["reuse_over_every_frame"] = pipeline["reuse_over_every_frame"]
    for path, s in speeds.items():
        errors += [f"report.pipeline.{path}: {e}" for e in _speedup_errors(s, pipeline)]
    for name in ("reuse_deviation", "naive_deviation"):
        d = pipeline[name]
        if d is None:
            continue
        if d["matched"] > min(d["reference_persons"], d["candidate_persons"]):
            errors.append(f"report.pipeline.{name}.matched: more than the persons of either run")
        if d["top1_agreement"] is not None and not 0 <= d["top1_agreement"] <= 1:
            errors.append(f"report.pipeline.{name}.top1_agreement: not within [0, 1]")
    return errors


def _speedup_errors(s: dict, pipeline: dict) -> list[str]:
    run, base = pipeline.get(s["run"]), pipeline.get(s["baseline"])
    if not isinstance(run, dict) or not isinstance(base, dict):
        return [f"names runs '{s['run']}' / '{s['baseline']}' that are not in the report"]
    k = s["frames"]
    if not 1 <= k <= min(run["frames"], base["frames"]):
        return [f"frames {k}: not within 1..{min(run['frames'], base['frames'])} (the runs' frames)"]
    errors = []
    for side, name, data in (("run_fps", s["run"], run), ("baseline_fps", s["baseline"], base)):
        expected = k / data["frame_done_s"][k - 1] if data["frame_done_s"][k - 1] > 0 else 0.0
        if not math.isclose(s[side], expected, rel_tol=1e-6):
            errors.append(f"{side} {s[side]:.6g} is not the frames/s of '{name}' over its first {k} frames "
                          f"({expected:.6g})")
    if s["speedup"] is None or s["baseline_fps"] <= 0 or not math.isclose(
            s["speedup"], s["run_fps"] / s["baseline_fps"], rel_tol=1e-6):
        errors.append(f"speedup {s['speedup']} is not run_fps / baseline_fps")
    return errors


def _fraction_errors(node, path: str = "report") -> list[str]:
    """Every fraction_of_peak must lie in (0, 1]: a figure above the peak means the peak is wrong."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "fraction_of_peak" and value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                    found.append(f"{path}.{key}: {value} is not within (0, 1]")
            else:
                found += _fraction_errors(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _fraction_errors(value, f"{path}[{i}]")
    return found


def check(report: dict) -> dict:
    """The report itself when valid, else ValueError listing every problem."""
    errors = validate(report)
    if errors:
        raise ValueError("invalid benchmark report:\n  " + "\n  ".join(errors))
    return report
