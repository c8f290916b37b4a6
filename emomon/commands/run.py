"""`emomon run`: the main job. Point it at a camera, a video, a stream or images; get per-person emotions
over time, drawn on the video and logged."""

from __future__ import annotations

import contextlib
import json
import sys

from emomon.commands.options import (
    add_detector_arguments,
    add_live_arguments,
    add_model_arguments,
    add_pipeline_arguments,
    add_privacy_arguments,
    integer,
    monitor_config,
    source_config,
)
from emomon.commands.vlm_options import add_vlm_arguments, vlm_stage_config


def register(sub) -> None:
    p = sub.add_parser("run", help="process a camera, video, stream or images",
                       description=__doc__.replace("\n", " "))
    p.add_argument("--source", required=True,
                   help="webcam index (0), video file, rtsp:// or http(s):// URL, image, folder or glob")
    p.add_argument("--output", metavar="out.mp4", help="annotated video")
    p.add_argument("--jsonl", metavar="out.jsonl", help="one JSON line per processed frame")
    p.add_argument("--csv", metavar="out.csv", help="one row per person per frame")
    p.add_argument("--summary", metavar="out.json", help="per-track summary at the end")
    add_model_arguments(p, backend=True)
    add_detector_arguments(p)
    add_pipeline_arguments(p)
    add_privacy_arguments(p)
    add_live_arguments(p)
    add_vlm_arguments(p)
    p.add_argument("--show", action="store_true", help="show a live window (q or Esc stops)")
    p.add_argument("--max-frames", type=integer(1), default=None, help="stop after N processed frames (>= 1)")
    p.add_argument("--vid-stride", type=integer(1), default=1, help="process every N-th frame (>= 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging

    from emomon.pipeline import OutputPaths, RunReport, build_pipeline, run_pipeline, storage_notice
    from emomon.pipeline.interrupts import Terminated
    from emomon.pipeline.runner import check_outputs
    from fusion import describe_model
    from stream import open_source

    log = logging.getLogger("emomon.run")
    if not (args.output or args.jsonl or args.csv or args.summary or args.show):
        log.warning("no output chosen (--output, --jsonl, --csv, --summary or --show): printing a summary only")
    config = monitor_config(args)  # validates options before loading models
    config.vlm = vlm_stage_config(args)
    outputs = OutputPaths(args.output, args.jsonl, args.csv, args.summary, rotate_s=args.rotate)
    check_outputs(outputs)  # a path that cannot be written fails now, not after the work
    source = open_source(args.source, vid_stride=args.vid_stride, max_frames=args.max_frames,
                         config=source_config(args))
    log.info(storage_notice(outputs, config.pipeline.privacy, show=args.show))  # after a bad source's one line
    report = pipeline = None
    try:
        pipeline = build_pipeline(config)
        log.info("source %s (%s); emotion model: %s", source.info.label, source.info.kind.value,
                 describe_model(pipeline.predictor.model))
        report = RunReport()
        with source:
            run_pipeline(source, pipeline, outputs, show=args.show,
                         progress=not args.no_progress and sys.stderr.isatty(), report=report)
    except Terminated as exc:  # SIGTERM/SIGHUP: every output was closed; exit as the signal's convention says
        print(f"emomon: stopped by {exc.name}", file=sys.stderr)
        return exc.exit_code
    finally:
        source.close()
        if pipeline is not None and pipeline.vlm is not None:  # its workers stop after their current question
            pipeline.vlm.close()
        if report is not None:  # also for a run that failed or was interrupted: it says why it stopped
            _print_report(report)
    return 0


def _print_report(report) -> None:
    with contextlib.suppress(OSError):  # a closed stdout must not hide the run's own result or error
        print(json.dumps({"frames": report.frames, "persons": report.persons, "fps": round(report.fps, 2),
                          "dropped": report.dropped, "stopped_by": report.stopped_by}), flush=True)
