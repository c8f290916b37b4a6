"""Video jobs that outlive the page that started them, one at a time, in the order they were asked for.

A job runs in the app's one worker thread, not in the request that started it: the page only follows it
(progress, a preview frame, the result) and can let go. A page that goes away (closed, reloaded) releases its
jobs; a job nobody re-attaches to within `grace_s` is stopped, so an abandoned video never holds the server.
A reloaded page keeps the job id in the browser and re-attaches within the grace time, and sees the job
as if it had never left.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from emomon.kernel import InputError

log = logging.getLogger(__name__)

PREVIEW_EVERY_S = 2.0   # a new preview frame at most this often
KEEP_DONE_S = 3 * 3600  # finished jobs are forgotten after this long


@dataclass
class VideoJob:
    """One video job as the page sees it: where it is in the queue, how far it got, its result or error."""

    id: str
    owner: str                        # the browser session following it
    name: str                         # what the page calls the video (the upload's file name)
    top_k: int = 3                    # emotions per track in the result's timeline
    state: str = "waiting"            # waiting -> running -> done | failed
    done: int = 0
    total: int | None = None
    rate: float = 0.0                 # frames/s so far
    persons: int = 0                  # persons in the newest frame
    started: float | None = None
    finished: float | None = None
    preview: np.ndarray | None = None  # the newest annotated frame (RGB), refreshed every PREVIEW_EVERY_S
    preview_version: int = 0
    result: object = None             # the run's result (a `VideoRun`) once done
    error: str | None = None          # one readable line once failed
    cancel: threading.Event = field(default_factory=threading.Event)
    released_at: float | None = None  # when its page went away (None: someone follows it)
    on_end: Callable[[], object] | None = None  # runs once when the job is over (lets go of its upload)
    _preview_at: float = 0.0

    @property
    def active(self) -> bool:
        return self.state in ("waiting", "running")

    @property
    def remaining_s(self) -> float | None:
        """Seconds left at the speed so far; None until a rate and a total are known."""
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def report(self, done: int, total: int | None, rate: float, persons: int, frame: np.ndarray | None) -> None:
        """Progress from the worker; `frame` (RGB) becomes the preview if the last one is old enough."""
        self.done, self.total, self.rate, self.persons = done, total, rate, persons
        now = time.monotonic()
        if frame is not None and (self.preview is None or now - self._preview_at >= PREVIEW_EVERY_S):
            self.preview, self._preview_at = frame, now
            self.preview_version += 1


class VideoJobs:
    """The queue of video jobs and the worker thread that runs them, one after the other."""

    def __init__(self, grace_s: float = 8.0):
        self.grace_s = grace_s
        self.seconds_per_frame: dict[str, float] = {}  # emotion model -> measured by the last job or stream
        self._jobs: dict[str, VideoJob] = {}
        self._order: list[str] = []   # ids of waiting and running jobs, oldest first
        self._work: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="emomon-video-jobs", daemon=True)
        self._worker.start()

    def submit(self, owner: str, name: str, work: Callable[[VideoJob], object], top_k: int = 3,
               on_end: Callable[[], object] | None = None) -> VideoJob:
        """Queue `work(job)`; it reports progress through `job.report` and watches `job.cancel`. `on_end` runs
        once the job is over, however it ended (stopped while waiting included)."""
        job = VideoJob(uuid.uuid4().hex, owner, name, top_k)
        job.on_end = on_end
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
            self._order.append(job.id)
        self._work.put((job, work))
        return job

    def get(self, job_id: str | None) -> VideoJob | None:
        return self._jobs.get(job_id) if job_id else None

    def ahead(self, job: VideoJob) -> int:
        """How many jobs run or wait before this one."""
        with self._lock:
            return self._order.index(job.id) if job.id in self._order else 0

    def attach(self, job_id: str | None, owner: str) -> VideoJob | None:
        """A (reloaded) page follows job `job_id` from now on: it is no longer released."""
        job = self.get(job_id)
        if job is not None:
            job.owner, job.released_at = owner, None
        return job

    def stop(self, owner: str) -> int:
        """Stop every active job of `owner`; how many there were."""
        jobs = [j for j in list(self._jobs.values()) if j.owner == owner and j.active]
        for job in jobs:
            job.cancel.set()
        return len(jobs)

    def release(self, owner: str) -> None:
        """`owner`'s page went away: its active jobs stop unless a page re-attaches within `grace_s`."""
        jobs = [j for j in list(self._jobs.values()) if j.owner == owner and j.active]
        if not jobs:
            return
        now = time.monotonic()
        for job in jobs:
            job.released_at = now
        timer = threading.Timer(self.grace_s, self._stop_released, args=(jobs,))
        timer.daemon = True
        timer.start()

    def _stop_released(self, jobs: list[VideoJob]) -> None:
        for job in jobs:
            if job.released_at is not None and job.active:
                log.info("video job %s (%s): its page went away; stopping it", job.id[:8], job.name)
                job.cancel.set()

    def _run(self) -> None:
        while True:
            job, work = self._work.get()
            try:
                if job.cancel.is_set():  # stopped or abandoned while it waited
                    job.state, job.error = "failed", "Stopped before it started."
                    continue
                job.state, job.started = "running", time.monotonic()
                try:
                    job.result = work(job)
                    job.state = "done"
                except InputError as exc:
                    job.error, job.state = str(exc), "failed"
                except Exception as exc:  # noqa: BLE001 - one line for the page, the traceback for the log
                    log.exception("video job %s failed", job.id[:8])
                    job.error = (f"The video could not be processed ({type(exc).__name__}); details are in the "
                                 "server log.")
                    job.state = "failed"
            finally:
                job.finished = time.monotonic()
                with self._lock:
                    if job.id in self._order:
                        self._order.remove(job.id)
                if job.on_end is not None:
                    try:
                        job.on_end()
                    except Exception:  # noqa: BLE001 - the queue must go on
                        log.exception("video job %s: clean-up failed", job.id[:8])

    def _forget_old(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self._jobs.items()):
            if job.finished is not None and now - job.finished > KEEP_DONE_S:
                del self._jobs[job_id]
