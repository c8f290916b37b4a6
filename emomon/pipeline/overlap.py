"""Detect the next frames while this one's emotions and outputs are computed (`PipelineConfig.overlap`).

On a 2-core CPU one frame's work leaves a core idle much of the time: the emotion model's small batches and
the Python between the stages do not keep both busy. The detector (OpenVINO or torch; both release the GIL)
runs a few frames ahead in a worker thread (`FILE_AHEAD`, `LIVE_AHEAD`), so detection overlaps the emotion model
and the writers. Results
are the same as running the frames one after another: frames are detected in order, by one thread, and the
caller takes them in the same order.

A live source's lost/restored event is a barrier: the worker hands it over and waits until the caller has
handled it (a restored stream restarts tracking), so no frame after it is detected with the old tracker.
"""

from __future__ import annotations

import os
import queue
import threading

from stream import StreamEvent

_END = object()
# Frames detected ahead of the one being finished. A file's frames wait without harm, and a dozen in hand let the
# detector run on through a frame whose scene embedding is recomputed (one in `scene_every` = 12): on the street
# clip 12 measured 7% faster than 4, and 4 about 5% faster than 1. A live source's frames would only age.
FILE_AHEAD, LIVE_AHEAD = 12, 1


class Overlap:
    """Iterate `(item, detections)` over `frames` (a source's frames and events); detections are None for
    events. After an event, call `resume()` once it has been handled. Always `close()` (or use `with`)."""

    def __init__(self, frames, pipeline, live: bool = False, ahead: int | None = None):
        self._frames, self._pipeline = frames, pipeline
        ahead = ahead or (LIVE_AHEAD if live else FILE_AHEAD)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self._resume = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="emomon-detect-ahead", daemon=True)
        self._started = False

    def __enter__(self) -> Overlap:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _put(self, item) -> bool:
        """Hand `item` over; False once the caller has stopped listening."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._frames:
                if self._stop.is_set():
                    return
                if isinstance(item, StreamEvent):  # the caller handles it before the next frame is detected
                    self._resume.clear()
                    if not self._put((item, None)):
                        return
                    while not self._resume.wait(0.1):
                        if self._stop.is_set():
                            return
                    continue
                if not self._put((item, self._pipeline.detect(item.image))):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread, in frame order
            self._put((_END, exc))

    def __iter__(self):
        if not self._started:
            self._started = True
            self._share_cores(max(1, _cores() // 2))
            self._thread.start()
        while True:
            try:  # a timeout keeps the caller's thread responsive to signals on every platform
                item, payload = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is _END:
                if payload is not None:
                    raise payload
                return
            yield item, payload

    def resume(self) -> None:
        """The event just handed over has been handled: detect the frames after it."""
        self._resume.set()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the worker after the frame it is detecting (if any) and wait for it; a worker still waiting for
        a live source's next frame ends when the caller closes the source."""
        self._stop.set()
        self._resume.set()
        while True:  # unblock a worker waiting to hand over a frame
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._started and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            self._share_cores(0)

    def _share_cores(self, threads: int) -> None:
        """The detector's share of the CPU while it runs beside the emotion model (0: all of it again)."""
        set_threads = getattr(getattr(self._pipeline, "detector", None), "set_threads", None)
        if set_threads is not None:
            set_threads(threads)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
