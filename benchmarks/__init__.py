"""Throughput and latency benchmarks (GPU and CPU), per stage and end to end, against a naive baseline.

`emomon bench` (see `emomon.commands.bench`) runs everything and writes bench.json, bench.md and plots.
From Python:

    >>> from benchmarks import BenchConfig, run_bench, write_outputs        # doctest: +SKIP
    >>> report = run_bench(BenchConfig(quick=True, source="street.mp4",     # doctest: +SKIP
    ...                                detector_weights="yolo11n-pose.pt"))
    >>> s = report["pipeline"]["speedup"]["exact"]                          # doctest: +SKIP
    >>> s["speedup"], s["frames"]   # every-frame pipeline vs naive, same outputs, over the same first frames
    (5.9, 12)
    >>> write_outputs(report, "out/bench")                                  # doctest: +SKIP

The parts, usable on their own: `models` (backend and detector batch sweeps), `e2e` (the product pipeline with
per-stage timers), `naive` (the baseline), `compare` (speed-ups over the same frames, output deviations),
`multistream` (N streams through one detector and one model, micro-batched, decoded once and fanned out, swept
over stream counts), `preprocess` (OpenCV vs on-device preprocessing side by side), `gpu_check` (the one-command
GPU check: tests, preprocessing, the full bench within a budget), `flops` (counted FLOPs, device peaks measured and
nominal), `stats` (percentiles, spread, synchronized timing loops), `env` (machine, versions, git commit),
`schema`. Committed result files behind the README's figures: benchmarks/results/.
"""

import importlib

# Re-exported lazily (PEP 562): `emomon --help` must not pay for torch.
_EXPORTS = {
    "count_flops": "flops", "device_peak": "flops", "emotion_flops": "flops", "nominal_peak": "flops",
    "SCHEMA": "schema", "SCHEMA_VERSION": "schema", "check": "schema", "validate": "schema",
    "percentile": "stats", "summarize": "stats", "synchronize": "stats", "time_call": "stats", "time_loop": "stats",
    "BenchConfig": "suite", "run_bench": "suite", "write_outputs": "suite",
    "DecodedSource": "multistream", "MicroBatcher": "multistream", "run_multistream": "multistream",
    "run_sweep": "multistream", "compare_preprocess": "preprocess",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"benchmarks.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'benchmarks' has no attribute {name!r}")
