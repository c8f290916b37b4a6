"""Settings of `emomon batch` and `emomon serve --ray`, with their defaults in one place (the CLI reads them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkerConfig:
    """The model workers of a Ray run: how many, and what each reserves on the cluster.

    Each worker loads the detector and the emotion model once and keeps them for every video (batch) or request
    (serve). `count` None: as many as the cluster's free CPUs (or GPUs, with `num_gpus`) allow."""

    count: int | None = None
    num_cpus: float = 1.0         # CPUs reserved per worker; also its torch thread count
    num_gpus: float = 0.0         # GPUs per worker (0.5: two workers share one GPU)
    max_attempts: int = 3         # tries per video when workers die under it (a crash, a lost node)

    def __post_init__(self):
        if self.count is not None and self.count < 1:
            raise ValueError("the worker count must be >= 1")
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise ValueError("workers need > 0 CPUs and >= 0 GPUs each")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


@dataclass
class BatchConfig:
    """What `emomon batch` writes per video and how it treats an earlier run in the same output folder."""

    video: bool = False           # the annotated video per video (the slowest output: encoding)
    csv: bool = True              # one row per person per frame, beside the JSONL
    resume: bool = True           # skip the videos the manifest lists as done; redo the rest
    max_frames: int | None = None
    vid_stride: int = 1
    progress_every_s: float = 2.0  # how often the progress line (and the workers' frame counts) refresh


@dataclass
class ServeConfig:
    """`emomon serve --ray`: the model deployment's replicas and batching, the cameras' supervision."""

    replicas: int = 1
    max_batch_size: int = 8           # requests (one camera frame each) joined into one model call
    batch_wait_s: float = 0.01        # how long the first request of a batch waits for more
    status_host: str = "127.0.0.1"
    status_port: int = 8765
    restart_delay_s: float = 2.0      # first wait before a failed camera is restarted; doubles up to the max
    restart_max_delay_s: float = 60.0
    fps_window_s: float = 10.0        # the status endpoint's frames/s is over this many recent seconds
