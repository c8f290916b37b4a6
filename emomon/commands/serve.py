"""`emomon serve --ray`: many live cameras on a Ray cluster, listed in a YAML file (name, source, output). The
emotion model runs as a Ray Serve deployment that batches the frames of all cameras; each camera has an ingest
actor (source, detector, tracker, JSONL); a camera that fails is restarted while the others go on; a status
endpoint reports every camera."""

from __future__ import annotations

import contextlib
import json

from emomon.cluster.config import ServeConfig, WorkerConfig
from emomon.commands.options import (
    add_detector_arguments,
    add_live_arguments,
    add_model_arguments,
    add_pipeline_arguments,
    add_privacy_arguments,
    integer,
    monitor_config,
    positive,
    source_config,
)

_SERVE, _WORKERS = ServeConfig(), WorkerConfig()


def register(sub) -> None:
    p = sub.add_parser("serve", help="many live cameras on a Ray cluster (--ray), from a YAML file",
                       description=__doc__.replace("\n", " "))
    p.add_argument("--cameras", required=True, metavar="cameras.yaml",
                   help="the cameras: a 'cameras:' list of name, source, output (optional: csv, "
                        "reconnect_attempts, vid_stride); relative paths are relative to the file")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="required: alone, the cluster 'ray start' runs on this machine if any, else a new local one; "
                        "with ADDRESS, join one ('auto', HOST:PORT, ray://HOST:10001) or 'local' for a new one")
    g = p.add_argument_group("model deployment and cameras")
    g.add_argument("--replicas", type=integer(1), default=_SERVE.replicas,
                   help=f"model replicas (default {_SERVE.replicas})")
    g.add_argument("--replica-cpus", type=positive, default=_WORKERS.num_cpus,
                   help=f"CPUs per model replica, also its torch threads (default {_WORKERS.num_cpus:g})")
    g.add_argument("--replica-gpus", type=float, default=_WORKERS.num_gpus,
                   help="GPUs per model replica (0.5: two replicas per GPU; default 0); use --device cuda")
    g.add_argument("--camera-cpus", type=positive, default=_WORKERS.num_cpus,
                   help=f"CPUs per camera's ingest actor (its detector; default {_WORKERS.num_cpus:g})")
    g.add_argument("--max-batch-size", type=integer(1), default=_SERVE.max_batch_size,
                   help=f"frames (of any cameras) per model call at most (default {_SERVE.max_batch_size})")
    g.add_argument("--batch-wait-ms", type=positive, default=_SERVE.batch_wait_s * 1000,
                   help="how long a request waits for others to join its batch, in ms "
                        f"(default {_SERVE.batch_wait_s * 1000:g})")
    g.add_argument("--status-host", default=_SERVE.status_host, help="address of the status endpoint")
    g.add_argument("--status-port", type=integer(0, 65535), default=_SERVE.status_port,
                   help=f"port of GET /status and GET /health (0: any free one; default {_SERVE.status_port})")
    g.add_argument("--restart-delay", type=positive, default=_SERVE.restart_delay_s, metavar="S",
                   help=f"first wait before a failed camera is restarted; it doubles up to "
                        f"{_SERVE.restart_max_delay_s:g} s (default {_SERVE.restart_delay_s:g})")
    add_model_arguments(p, backend=True)
    add_detector_arguments(p)
    add_pipeline_arguments(p)
    add_privacy_arguments(p)
    add_live_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from emomon.cluster import load_cameras, serve_cameras
    from emomon.kernel import InputError

    if args.ray is None:
        raise InputError("emomon serve runs on Ray: add --ray (a local cluster) or --ray=ADDRESS (one camera in one "
                         "process: emomon run --source ...)")
    if args.rotate:
        raise InputError("--rotate is not supported by emomon serve yet")
    cameras = load_cameras(args.cameras)
    config = monitor_config(args)
    serve = ServeConfig(replicas=args.replicas, max_batch_size=args.max_batch_size,
                        batch_wait_s=args.batch_wait_ms / 1000, status_host=args.status_host,
                        status_port=args.status_port, restart_delay_s=args.restart_delay,
                        restart_max_delay_s=max(args.restart_delay, ServeConfig.restart_max_delay_s))
    try:
        replica = WorkerConfig(num_cpus=args.replica_cpus, num_gpus=args.replica_gpus)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    status = serve_cameras(cameras, config, source_config(args), serve, replica, args.camera_cpus,
                           args.ray or None)
    with contextlib.suppress(OSError):
        print(json.dumps(status, default=str), flush=True)
    return 0
