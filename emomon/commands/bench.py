"""`emomon bench`: model, pipeline and multi-stream benchmarks against a naive baseline, on CPU or GPU.

Writes bench.json (every figure and the environment, schema-versioned), bench.md (summary tables),
throughput.png and stages.png to --out, and prints the Markdown summary.
"""

from __future__ import annotations

import argparse

from detector.config import DetectorConfig
from emomon.commands.options import add_detector_weights_argument, add_model_arguments

_DET = DetectorConfig()


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be a comma-separated list of positive integers")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def register(sub) -> None:
    p = sub.add_parser("bench", help="throughput and latency benchmarks (models, pipeline, multi-stream)",
                       description=__doc__.replace("\n", " "))
    p.add_argument("--quick", action="store_true",
                   help="small sizes: batch 1,4,8; 48 frames (2 s of a 24 fps clip) for each optimized run; the "
                        "naive run at least 12 frames (a floor: it wins over its 60 s budget), then up to 24 while "
                        "time is left; 2 streams x 8 frames. 3-6 min with the real-size model on 2 CPU cores, by load")
    p.add_argument("--source", metavar="VIDEO",
                   help="video file for the pipeline benchmarks (default: a clip generated from Ultralytics' "
                        "example photos)")
    p.add_argument("--frames", type=int,
                   help="frames for each optimized pipeline run, every frame and with work reuse (quick 48, CPU "
                        "120, GPU 300)")
    p.add_argument("--naive-frames", type=int,
                   help="most frames for the naive baseline, the same first frames (quick 24, CPU 48, GPU 120)")
    p.add_argument("--naive-min-frames", type=int,
                   help="fewest frames for the naive baseline, whatever --naive-max-seconds says: the floor behind "
                        "its median and both speed-ups (quick 12, CPU 24, GPU 60)")
    p.add_argument("--naive-max-seconds", type=float,
                   help="past --naive-min-frames, stop the naive baseline once this long has passed "
                        "(quick 60, CPU 300, GPU 120)")
    p.add_argument("--streams", type=int, help="concurrent streams in multi-stream mode (quick/CPU 2, GPU 8)")
    p.add_argument("--stream-frames", type=int,
                   help="frames per stream in multi-stream mode (quick 8, CPU 48, GPU 150)")
    p.add_argument("--backends", type=_names, metavar="NAME[:KEY=VALUE...],...",
                   help="emotion backends to benchmark, with options, e.g. torch,torch-fp16,onnxruntime:precision=fp16,"
                        "tensorrt:precision=int8 (default: every registered one; --quick: torch)")
    p.add_argument("--pipeline-backend", default="auto", metavar="NAME",
                   help="backend for the pipeline runs (auto: the fastest benchmarked scene stream at batch 1)")
    p.add_argument("--batch-sizes", type=_ints, metavar="1,8,32,128", help="model benchmark batch sizes")
    p.add_argument("--detector-batch-sizes", type=_ints, metavar="1,8,32", help="detector benchmark batch sizes")
    p.add_argument("--warmup", type=int, help="untimed calls before each timed point")
    p.add_argument("--repeats", type=int, help="timed calls per point (fewer if --max-seconds runs out)")
    p.add_argument("--max-seconds", type=float, help="timed seconds per point before stopping early")
    p.add_argument("--max-wait-ms", type=float, default=10.0,
                   help="multi-stream: longest wait for other streams before a batch is run")
    p.add_argument("--skip", type=_names, default=[], metavar="PART,...",
                   help="parts to leave out: models, detector, pipeline, naive, multistream, flops")
    add_model_arguments(p, default="random")  # speed does not depend on the weights; no download needed
    add_detector_weights_argument(p)
    p.add_argument("--imgsz", type=int, default=_DET.imgsz, help="detector input size")
    p.add_argument("--out", default="out/bench", metavar="DIR", help="folder for bench.json, bench.md and plots")
    p.add_argument("--check", metavar="BENCH_JSON", help="only validate an existing bench.json against the schema")
    p.set_defaults(func=run)


def config_from_args(args):
    from benchmarks.suite import BenchConfig

    return BenchConfig(
        quick=args.quick, device=args.device, source=args.source, frames=args.frames, naive_frames=args.naive_frames,
        naive_min_frames=args.naive_min_frames, naive_max_seconds=args.naive_max_seconds,
        streams=args.streams, stream_frames=args.stream_frames, backends=args.backends,
        pipeline_backend=args.pipeline_backend, batch_sizes=args.batch_sizes,
        detector_batch_sizes=args.detector_batch_sizes, warmup=args.warmup, repeats=args.repeats,
        max_seconds=args.max_seconds, emotion_model=args.emotion_model, scene_weights=args.scene_weights,
        body_weights=args.body_weights, seed=args.seed, detector_weights=args.detector_weights,
        trust_detector_weights=args.trust_detector_weights, imgsz=args.imgsz,
        max_wait_ms=args.max_wait_ms, skip=list(args.skip), out=args.out)


def check_file(path: str) -> int:
    import json
    from pathlib import Path

    from benchmarks.schema import validate
    from emomon.kernel import InputError

    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read benchmark report '{path}': {exc}") from None
    errors = validate(report)
    if errors:
        raise InputError(f"'{path}' does not match the benchmark schema: " + "; ".join(errors[:10]))
    print(f"{path}: valid {report['schema']} v{report['schema_version']} report")
    return 0


def run(args) -> int:
    if args.check:
        return check_file(args.check)
    from benchmarks.suite import command_line, run_bench, write_outputs

    report = run_bench(config_from_args(args), command=command_line())
    paths = write_outputs(report, args.out)
    print((paths["markdown"]).read_text(encoding="utf-8"))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
