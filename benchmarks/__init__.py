"""Throughput and latency benchmarks (GPU and CPU), per stage and end to end, against a naive baseline.

`emomon bench` (see `benchmarks.commands`) runs everything and writes bench.json, bench.md and plots.
From Python:

    >>> from benchmarks import BenchConfig, run_bench, write_outputs        # doctest: +SKIP
    >>> report = run_bench(BenchConfig(quick=True, source="street.mp4",     # doctest: +SKIP
    ...                                detector_weights="yolo11n-pose.pt"))
    >>> report["pipeline"]["speedup"]["end_to_end"]                         # doctest: +SKIP
    12.3
    >>> write_outputs(report, "out/bench")                                  # doctest: +SKIP

The parts, usable on their own: `models` (backend and detector batch sweeps), `e2e` (the product pipeline with
per-stage timers), `naive` (the baseline), `multistream` (N streams through one model, micro-batched),
`flops` (counted FLOPs, device peaks), `stats` (percentiles, spread, synchronized timing loops), `schema`.
"""

from benchmarks.flops import count_flops, device_peak, emotion_flops, nominal_peak
from benchmarks.schema import SCHEMA, SCHEMA_VERSION, check, validate
from benchmarks.stats import percentile, summarize, synchronize, time_call, time_loop
from benchmarks.suite import BenchConfig, run_bench, write_outputs

__all__ = [
    "SCHEMA", "SCHEMA_VERSION", "BenchConfig", "check", "count_flops", "device_peak", "emotion_flops",
    "nominal_peak", "percentile", "run_bench", "summarize", "synchronize", "time_call", "time_loop", "validate",
    "write_outputs",
]
