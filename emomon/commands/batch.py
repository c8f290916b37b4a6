"""`emomon batch`: many videos into one output folder: a result set per video (JSONL, CSV, summary; the
annotated video optional), a corpus table (one row per track; CSV and Parquet) and a manifest. In one process,
or with --ray on a pool of model workers on a Ray cluster. A re-run skips the finished videos."""

from __future__ import annotations

import contextlib
import json
import os
import sys

from emomon.cluster.config import BatchConfig, WorkerConfig
from emomon.commands.options import (
    add_detector_arguments,
    add_model_arguments,
    add_pipeline_arguments,
    add_privacy_arguments,
    integer,
    monitor_config,
    positive,
    source_config,
)

_BATCH, _WORKERS = BatchConfig(), WorkerConfig()


def register(sub) -> None:
    p = sub.add_parser("batch", help="process many videos (a corpus), in one process or on a Ray cluster",
                       description=__doc__.replace("\n", " "))
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video files, folders (searched recursively), globs ('videos/**/*.mp4') or text files "
                        "listing paths or URLs, one a line")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: DIR/NAME/ per video, DIR/tracks.csv and .parquet, DIR/manifest.jsonl")
    p.add_argument("--video", action="store_true", default=_BATCH.video,
                   help="also write each video's annotated copy (DIR/NAME/annotated.mp4; the slowest output)")
    p.add_argument("--no-csv", dest="csv", action="store_false", default=_BATCH.csv,
                   help="no per-frame CSV beside each video's JSONL")
    p.add_argument("--no-resume", dest="resume", action="store_false", default=_BATCH.resume,
                   help="redo every video, also those the manifest lists as finished (default: skip them)")
    p.add_argument("--max-frames", type=integer(1), default=_BATCH.max_frames,
                   help="stop each video after N processed frames (>= 1)")
    p.add_argument("--vid-stride", type=integer(1), default=_BATCH.vid_stride, help="process every N-th frame")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("Ray (pip install 'emomon[ray]')")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on a pool of Ray workers: alone, the cluster 'ray start' runs on this machine if any, "
                        "else a new local one; with ADDRESS, join one ('auto', HOST:PORT, ray://HOST:10001) or "
                        "'local' for a new one. Write --ray=ADDRESS or put --ray after the inputs")
    g.add_argument("--workers", type=integer(1), default=_WORKERS.count,
                   help="model workers (default: as many as the cluster's free CPUs, or GPUs, allow)")
    g.add_argument("--worker-cpus", type=positive, default=_WORKERS.num_cpus,
                   help=f"CPUs each worker reserves, also its torch threads (default {_WORKERS.num_cpus:g})")
    g.add_argument("--worker-gpus", type=float, default=_WORKERS.num_gpus,
                   help="GPUs each worker reserves (0.5: two workers per GPU; default 0); use --device cuda")
    g.add_argument("--max-attempts", type=integer(1), default=_WORKERS.max_attempts,
                   help=f"tries per video when its worker dies (default {_WORKERS.max_attempts})")
    add_model_arguments(p, backend=True)
    add_detector_arguments(p)
    add_pipeline_arguments(p)
    add_privacy_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from emomon.cluster import LocalPool, RayPool, expand_inputs, is_address, run_batch
    from emomon.kernel import InputError

    inputs = list(args.inputs)
    if args.ray is not None and not is_address(args.ray):  # `--ray a.mp4 b.mp4`: a.mp4 is an input
        inputs.insert(0, args.ray)
        args.ray = ""
    if not inputs:
        raise InputError("no inputs: give video files, folders, globs or a list file")
    items = expand_inputs(inputs)
    out = os.path.abspath(args.out)  # workers on other nodes, or in another folder, write there too
    config = monitor_config(args)  # validates the flags before any model loads
    batch = BatchConfig(video=args.video, csv=args.csv, resume=args.resume, max_frames=args.max_frames,
                        vid_stride=args.vid_stride)
    if args.ray is None:
        pool = LocalPool(config, batch, out, source_config(args))
    else:
        try:
            workers = WorkerConfig(count=args.workers, num_cpus=args.worker_cpus, num_gpus=args.worker_gpus,
                                   max_attempts=args.max_attempts)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        pool = RayPool(args.ray or None, workers, config, batch, out, source_config(args))
    report = run_batch(items, out, pool, resume=batch.resume,
                       progress=not args.no_progress and sys.stderr.isatty())
    with contextlib.suppress(OSError):
        print(json.dumps(report.to_dict()), flush=True)
    if report.failed:
        source, reason = report.failures[0]
        print(f"emomon: error: {report.failed} of {report.videos} videos failed (each one's reason is in "
              f"{args.out}/manifest.jsonl); the first: {source}: {reason}", file=sys.stderr)
        return 2
    return 0
