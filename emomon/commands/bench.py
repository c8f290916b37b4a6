"""`emomon bench`: model, pipeline and multi-stream benchmarks against a naive baseline, on CPU or GPU.

Writes bench.json (every figure and the environment, schema-versioned), bench.md (summary tables),
throughput.png and stages.png to --out, and prints the Markdown summary. `--realtime` instead answers whether
the default `emomon run` is real time here (benchmarks.realtime): realtime.json and realtime.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from detector.config import DetectorConfig
from emomon.commands.options import add_detector_weights_argument, add_model_arguments

_DET = DetectorConfig()
TEST_MODEL = Path(__file__).resolve().parents[2] / "tests" / "assets" / "trained_tiny.pt"
REALTIME_PARTS = ("startup", "detector", "speed", "accuracy", "webcam")


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
    p.add_argument("--streams", type=int,
                   help="concurrent streams in multi-stream mode (quick/CPU 2; GPU without it: the sweep 1,4,16,64)")
    p.add_argument("--stream-sweep", type=_ints, metavar="1,4,16,64",
                   help="multi-stream at each of these stream counts (one decode of the clip fanned out to all); "
                        "the report keeps every N's row and the largest N's full figures")
    p.add_argument("--stream-stagger", type=int, default=1, metavar="FRAMES",
                   help="stream i starts i x FRAMES into the clip, so streams show different frames (default 1)")
    p.add_argument("--max-batch", type=int, metavar="N",
                   help="multi-stream: most requests (frames) merged into one detector/scene/emotion call "
                        "(default: no limit)")
    p.add_argument("--realtime-fps", type=float, default=24.0,
                   help="multi-stream: the frame rate every stream must keep to count as real time (default 24)")
    p.add_argument("--budget-s", type=float, metavar="SECONDS",
                   help="time budget for the whole run: each part gets a share of what is left (models 3, detector "
                        "1, pipeline 3, multi-stream 3); sweep points, stream counts and naive frames past it are "
                        "skipped and named in the report")
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
    g = p.add_argument_group("real time (--realtime)")
    g.add_argument("--realtime", action="store_true",
                   help="is the default `emomon run` real time here: the real pipeline (video + JSONL written) side "
                        "by side on the same frames in fp32 every frame, the old defaults and the new ones; detector "
                        "runtimes; the accuracy guard; startup; the web app's webcam path. Writes realtime.json and "
                        "realtime.md to --out")
    g.add_argument("--rounds", type=int, default=1,
                   help="timed runs per setting, alternating settings (medians reported; more for loaded machines)")
    g.add_argument("--accuracy-model", default=str(TEST_MODEL) if TEST_MODEL.is_file() else None, metavar="PATH",
                   help="a model whose outputs depend on the input, for the accuracy guard (default: the trained "
                        "test model tests/assets/trained_tiny.pt where it exists)")
    p.set_defaults(func=run)


def config_from_args(args):
    from benchmarks.suite import BenchConfig

    return BenchConfig(
        quick=args.quick, device=args.device, source=args.source, frames=args.frames, naive_frames=args.naive_frames,
        naive_min_frames=args.naive_min_frames, naive_max_seconds=args.naive_max_seconds,
        streams=args.streams, stream_counts=args.stream_sweep, stream_stagger=args.stream_stagger,
        max_batch=args.max_batch, realtime_fps=args.realtime_fps, budget_s=args.budget_s,
        stream_frames=args.stream_frames, backends=args.backends,
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
    if args.realtime:
        return run_realtime(args)
    from benchmarks.suite import command_line, run_bench, write_outputs

    report = run_bench(config_from_args(args), command=command_line())
    paths = write_outputs(report, args.out)
    print((paths["markdown"]).read_text(encoding="utf-8"))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def run_realtime(args) -> int:
    from emomon.kernel import InputError

    if not args.source:  # before the imports below (torch, the models' code): a wrong call is one line at once
        raise InputError("--realtime needs --source VIDEO (e.g. ../shared/data/street_crossing.mp4)")
    unknown = set(args.skip) - set(REALTIME_PARTS)
    if unknown:
        raise InputError(f"--skip with --realtime takes {', '.join(REALTIME_PARTS)}, not {', '.join(sorted(unknown))}")
    from benchmarks.realtime import RealtimeConfig, markdown, write_realtime
    from benchmarks.realtime import run_realtime as realtime
    from benchmarks.suite import command_line

    config = RealtimeConfig(source=args.source, emotion_model=args.emotion_model, accuracy_model=args.accuracy_model,
                            detector_weights=args.detector_weights, rounds=max(1, args.rounds), seed=args.seed)
    if args.frames:
        config.frames = args.frames
    parts = tuple(p for p in REALTIME_PARTS if p not in args.skip)
    report = realtime(config, command_line(), parts)
    if "webcam" in parts:
        report["webcam"] = webcam_fps(config)
    paths = write_realtime(report, args.out)
    print(markdown(report))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def webcam_fps(config, frames: int = 60, warmup: int = 10) -> dict:
    """Frames/s of the web app's webcam tab: clip frames through the `WebcamSession` the tab uses (engine,
    session pipeline, faces hidden, overlay), with the app's default settings and the real-size model."""
    import dataclasses

    import cv2

    from emomon.webapp.config import AppConfig, Settings, app_monitor
    from emomon.webapp.engine import AppEngine
    from emomon.webapp.ui import WebcamSession
    from stream import open_source

    monitor = app_monitor()
    monitor.model = dataclasses.replace(monitor.model, emotion_model=config.emotion_model, seed=config.seed)
    monitor.detector = dataclasses.replace(monitor.detector, weights=config.detector_weights)
    engine = AppEngine(AppConfig(monitor=monitor))
    settings = Settings(model=config.emotion_model)
    session = WebcamSession(engine, settings)
    done = []
    with open_source(config.source, max_frames=frames) as source:
        for frame in source:
            session.process(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB), settings)
            done.append(time.perf_counter())
    session.close()
    w = min(warmup, len(done) - 1)
    fps = (len(done) - 1 - w) / (done[-1] - done[w]) if len(done) - 1 > w else None
    precision = engine.model(config.emotion_model).predictor.backend.precision
    logging.getLogger(__name__).info("webcam path: %.2f frames/s", fps or 0.0)
    return {"frames": len(done) - 1 - w, "model": config.emotion_model, "precision": precision,
            "detector": engine.detector.describe(), "fps": fps}
