"""The model worker of `emomon batch`: loads the detector and emotion model once and processes whole videos
(tracking is sequential within a video, so a video is the unit of work). The same class runs in the driver's
own process (no `--ray`) and as a Ray actor, so both paths write the same outputs."""

from __future__ import annotations

import logging
import os
import threading

from emomon.cluster.config import BatchConfig
from emomon.cluster.inputs import VideoItem
from emomon.cluster.video_job import process_video
from emomon.kernel import InputError, first_line

log = logging.getLogger(__name__)


class VideoWorker:
    def __init__(self, monitor_config, batch_config: BatchConfig, out_dir: str, source_config=None,
                 threads: int | None = None, log_level: int | None = None):
        """Builds the pipeline; a failure (a bad model file) is kept for `ready()` to report, so the driver
        can say it in one line instead of every video failing."""
        if log_level is not None:  # in a Ray actor: the driver's level, through Ray's log forwarding
            from emomon.kernel import setup_logging

            setup_logging(log_level <= logging.DEBUG)
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # per-file lines of the runner: -v only
            logging.getLogger("emomon.pipeline.runner").setLevel(logging.WARNING)
        self.batch_config, self.out_dir, self.source_config = batch_config, out_dir, source_config
        self._frames = 0
        self._current: str | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        self.pipeline = None
        self.listener = None  # called with the frame count after each frame (the one-process progress line)
        try:
            if threads:
                import torch

                torch.set_num_threads(threads)
            from emomon.pipeline import build_pipeline

            self.pipeline = build_pipeline(monitor_config)
        except Exception as exc:  # noqa: BLE001 - reported by ready() in one line
            self.error = str(exc) if isinstance(exc, InputError) else first_line(exc)

    def ready(self) -> str | None:
        """None when the models are loaded, else why they could not be."""
        return self.error

    def pid(self) -> int:
        return os.getpid()

    def process(self, item: VideoItem) -> dict:
        """The manifest entry of `item` (its outputs are in place when it says `done`)."""
        if self.pipeline is None:
            raise InputError(self.error or "the worker has no pipeline")
        with self._lock:
            self._current, self._frames = item.source, 0
        try:
            return process_video(item, self.pipeline, self.out_dir, self.batch_config, self.source_config,
                                 on_frame=self._count)
        finally:
            with self._lock:
                self._current = None

    def _count(self, _result) -> None:
        self._frames += 1
        if self.listener is not None:
            self.listener(self._frames)

    def progress(self) -> tuple[str | None, int]:
        """(the video in progress, its frames so far): the driver's frames/s across the cluster."""
        with self._lock:
            return self._current, self._frames
