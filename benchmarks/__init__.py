"""Throughput and latency benchmarks (GPU and CPU), per stage and end to end.

Will hold: model benchmarks per backend over batch sizes, the end-to-end pipeline benchmark with per-stage
timers, multi-stream mode and the naive baseline (issue: benchmarks/).
"""
