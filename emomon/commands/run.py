"""`emomon run`: the main job. Point it at a camera, a video, a stream or images; get per-person emotions
over time, drawn on the video and logged."""

from __future__ import annotations

import argparse
import json
import sys

from emomon.commands.predict import add_model_arguments


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--detector-weights", default="yolo11n-pose.pt", metavar="PATH",
                   help="Ultralytics weights: a name (downloaded once) or a local .pt/.onnx/.engine file")
    g.add_argument("--conf", type=float, default=0.25, help="detection confidence threshold")
    g.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    g.add_argument("--imgsz", type=int, default=640, help="detector input size")
    g.add_argument("--half", action="store_true", help="half precision detector (CUDA)")
    g.add_argument("--tracker", default="bytetrack.yaml", help="bytetrack.yaml or botsort.yaml")
    g.add_argument("--min-box-size", type=int, default=16, help="skip persons smaller than this (pixels)")


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("smoothing and work reuse")
    g.add_argument("--smoothing", choices=["ema", "window", "none"], default="ema")
    g.add_argument("--smooth-alpha", type=float, default=0.4, help="EMA weight of the newest frame")
    g.add_argument("--smooth-window", type=int, default=8, help="frames in the window mean")
    g.add_argument("--scene-every", type=int, default=None, metavar="K",
                   help="reuse the scene embedding for up to K frames (1 = every frame; default 4)")
    g.add_argument("--scene-change", type=float, default=None,
                   help="frame change (mean abs grey difference, 0-1) that forces a new scene embedding")
    g.add_argument("--refresh-every", type=int, default=None, metavar="M",
                   help="recompute a tracked person's emotions every M frames (1 = every frame; default 2)")
    g.add_argument("--every-frame", action="store_true", help="no reuse at all (same as K=1, M=1)")
    g.add_argument("--top-k", type=int, default=3, help="emotions shown per person")
    g.add_argument("--backend", default="torch",
                   help="emotion model backend: torch, torch-fp16, torch-compile, onnxruntime, tensorrt "
                        "(tensorrt also runs the detector as a TensorRT engine)")


def register(sub) -> None:
    p = sub.add_parser("run", help="process a camera, video, stream or images",
                       description=__doc__.replace("\n", " "))
    p.add_argument("--source", required=True,
                   help="webcam index (0), video file, rtsp:// or http(s):// URL, image, folder or glob")
    p.add_argument("--output", metavar="out.mp4", help="annotated video")
    p.add_argument("--jsonl", metavar="out.jsonl", help="one JSON line per processed frame")
    p.add_argument("--csv", metavar="out.csv", help="one row per person per frame")
    p.add_argument("--summary", metavar="out.json", help="per-track summary at the end")
    add_model_arguments(p)
    add_detector_arguments(p)
    add_pipeline_arguments(p)
    p.add_argument("--show", action="store_true", help="show a live window (q or Esc stops)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N processed frames")
    p.add_argument("--vid-stride", type=int, default=1, help="process every N-th frame")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def pipeline_config(args):
    from emomon.errors import InputError
    from emomon.pipeline import PipelineConfig, ReuseConfig
    from emomon.smoothing import SmoothingConfig

    try:
        reuse = ReuseConfig()
        if args.every_frame:
            reuse.scene_every = reuse.refresh_every = 1
        for name in ("scene_every", "scene_change", "refresh_every"):
            if getattr(args, name) is not None:
                setattr(reuse, name, getattr(args, name))
        if reuse.scene_every < 1 or reuse.refresh_every < 1:
            raise ValueError("--scene-every and --refresh-every must be >= 1 (1 = every frame)")
        smoothing = SmoothingConfig(args.smoothing, args.smooth_alpha, args.smooth_window)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return PipelineConfig(reuse=reuse, smoothing=smoothing, top_k=args.top_k)


def build_pipeline(args):
    from detector import DetectorConfig, PersonDetector
    from emomon.pipeline import EmotionPipeline
    from fusion import Predictor, describe_model, load_emotion_model

    weights = args.detector_weights
    if args.backend == "tensorrt":  # the detector's fast path is Ultralytics' own engine export (cached)
        from fusion.detector_export import detector_weights_for_backend

        weights = detector_weights_for_backend(weights, "tensorrt", imgsz=args.imgsz, device=args.device)
    detector = PersonDetector(DetectorConfig(
        weights=weights, conf=args.conf, iou=args.iou, imgsz=args.imgsz, device=args.device,
        half=args.half, tracker=args.tracker, min_box_size=args.min_box_size))
    model = load_emotion_model(args.emotion_model, device=args.device, seed=args.seed,
                               scene_weights=args.scene_weights, body_weights=args.body_weights)
    predictor = Predictor(model, device=args.device, backend=args.backend)
    return EmotionPipeline(detector, predictor, pipeline_config(args)), describe_model(model)


def run(args) -> int:
    import logging

    from emomon.errors import InputError
    from emomon.runner import OutputPaths, run_pipeline
    from stream import open_source

    log = logging.getLogger("emomon.run")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError("--max-frames must be >= 1")
    if not (args.output or args.jsonl or args.csv or args.summary or args.show):
        log.warning("no output chosen (--output, --jsonl, --csv, --summary or --show): printing a summary only")
    pipeline_cfg = pipeline_config(args)  # validate options before loading models
    del pipeline_cfg
    source = open_source(args.source, vid_stride=args.vid_stride, max_frames=args.max_frames)
    try:
        pipeline, model_text = build_pipeline(args)
        log.info("source %s (%s); emotion model: %s", source.info.label, source.info.kind.value, model_text)
        with source:
            report = run_pipeline(source, pipeline,
                                  OutputPaths(args.output, args.jsonl, args.csv, args.summary),
                                  show=args.show, progress=not args.no_progress and sys.stderr.isatty())
    finally:
        source.close()
    print(json.dumps({"frames": report.frames, "persons": report.persons, "fps": round(report.fps, 2),
                      "dropped": report.dropped, "stopped_by": report.stopped_by}))
    return 0
