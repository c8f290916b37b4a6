"""VideoSource: frames read in a background thread into a bounded queue, handed out by a generator.

Drop policy by kind: files and images never lose a frame (the reader waits while the queue is full);
live sources keep the newest frames (the reader drops the oldest queued one), because a monitor must show
now, not a growing backlog. The reader thread always stops and is joined: at the end of the stream, on
close(), when the consumer stops iterating (break, exception, Ctrl-C), via the generator's finally.

A live source that stops delivering (a camera off, a network blip) is re-opened with capped exponential
backoff and jitter (`SourceConfig`), forever by default; `with_events()` also hands out a `StreamEvent`
when it is lost and when it is back, so a run can log the outage where its frames are.
"""

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import count

from emomon.kernel import utc_now

from .config import SourceConfig
from .errors import SourceError
from .frames import Frame, FrameReader, SourceInfo, SourceStats, StreamEvent
from .kinds import SourceKind, is_live

logger = logging.getLogger(__name__)

_POLL_S = 0.1  # how often blocked waits re-check the stop event


class _End:
    """Queued by the reader after the last frame."""


class _Failure:
    """Queued by the reader when it failed; the consumer re-raises the error."""

    def __init__(self, error: BaseException):
        self.error = error


def check_limits(vid_stride: int, max_frames: int | None) -> None:
    """SourceError for a stride or frame limit that makes no sense (checked before anything is opened)."""
    if isinstance(vid_stride, bool) or not isinstance(vid_stride, int) or vid_stride < 1:
        raise SourceError(f"vid_stride must be a positive integer, got {vid_stride!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                   or max_frames < 1):
        raise SourceError(f"max_frames must be a positive integer or None, got {max_frames!r}")


class VideoSource:
    """An open frame source: iterate it (once) for Frame objects; use it as a context manager.

    Built by open_source(); build it directly to wrap any FrameReader (tests plug fake readers in).
    `reopen` re-opens a dropped live source; without it a failed read ends the stream. `start_utc`: the
    recorded start of a file (epoch seconds), so its frames get absolute times.
    """

    def __init__(
        self,
        reader: FrameReader,
        info: SourceInfo,
        *,
        vid_stride: int = 1,
        max_frames: int | None = None,
        config: SourceConfig | None = None,
        reopen: Callable[[], FrameReader] | None = None,
        start_utc: float | None = None,
    ):
        check_limits(vid_stride, max_frames)
        self.info = info
        self.vid_stride = vid_stride
        self.max_frames = max_frames
        self.config = config or SourceConfig()
        self.live = is_live(info.kind)
        self.end_reason: str | None = None  # set when the source ended abnormally (vanished, truncated)
        self._reader = reader
        self._reader_released = False
        self._reopen = reopen
        self.start_utc = start_utc
        self._rng = random.Random()
        self._restored_at: float | None = None  # monotonic time the source last came back
        self._level = 0  # backoff steps already taken by a source that keeps dropping right after coming back
        self._stats = SourceStats()
        self._queue: queue.Queue = queue.Queue(maxsize=self.config.buffer_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{info.kind.value}", daemon=True)
        self._lock = threading.Lock()
        self._iterated = False
        self._closed = False

    # -- consumer side -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        return self._start_iteration(events=False)

    def with_events(self) -> Iterator[Frame | StreamEvent]:
        """Iterate frames and, between them, the `StreamEvent`s of a live source that dropped and came back."""
        return self._start_iteration(events=True)

    def _start_iteration(self, events: bool) -> Iterator:
        with self._lock:
            if self._iterated:
                raise RuntimeError(f"{self.info.label} can be iterated only once")
            if self._closed:
                raise RuntimeError(f"{self.info.label} is closed")
            self._iterated = True
        return self._frames(events)

    def _frames(self, events: bool) -> Iterator:
        with self._lock:  # started on the first next(), so an iterator never advanced leaks no thread
            if self._closed:
                return
            self._thread.start()
        try:
            while self.max_frames is None or self._stats.yielded < self.max_frames:
                item = self._get()
                if isinstance(item, _End):
                    return
                if isinstance(item, _Failure):
                    raise item.error
                if isinstance(item, StreamEvent):
                    if events:
                        yield item
                    continue
                self._stats.yielded += 1
                yield item
        finally:
            self.close()

    def _get(self) -> object:
        while not self._stop.is_set():  # close() from elsewhere ends the iteration
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return _End()
        return _End()

    def close(self) -> None:
        """Stop the reader thread and release the source. Safe to call any number of times."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            # The thread may sit in a blocking read or (re)open; FFmpeg's timeouts bound both.
            timeout = max(self.config.open_timeout_s, self.config.read_timeout_s) + 2.0
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("%s: reader thread did not stop within %.0f s; leaving it behind",
                               self.info.label, timeout)
        elif self._thread.ident is None:  # never started: the reader is still ours to release
            self._release_reader()
        if self._stats.dropped:
            logger.info("%s: dropped %d of %d frames because processing was slower than the source "
                        "(kept the newest)", self.info.label, self._stats.dropped, self._stats.read)

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def stats(self) -> SourceStats:
        """A snapshot of the counters (frames read, yielded, dropped, reconnects)."""
        return replace(self._stats)

    @property
    def dropped(self) -> int:
        return self._stats.dropped

    @property
    def running(self) -> bool:
        """True while the reader thread is alive."""
        return self._thread.is_alive()

    def __repr__(self) -> str:
        return f"VideoSource({self.info.label}, {self.info.width}x{self.info.height}, fps={self.info.fps})"

    # -- reader thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._read_loop()
            self._put(_End())
        except Exception as error:  # forwarded to the consumer, which re-raises it
            self._put(_Failure(error))
        finally:
            self._release_reader()

    def _release_reader(self) -> None:
        if not self._reader_released:
            self._reader_released = True
            self._reader.release()

    def _read_loop(self) -> None:
        start = time.monotonic()
        index = -1  # index of the last frame pulled from the reader
        queued = 0
        last_utc = last_seen = None  # capture time (UTC) and monotonic time of the last frame pulled
        while not self._stop.is_set():
            if not self.live and self.max_frames is not None and queued >= self.max_frames:
                return
            wanted = (index + 1) % self.vid_stride == 0
            ok, image = self._pull(wanted)
            if not ok:
                if self._reopen is None:
                    self._note_end(index + 1)
                    return
                if not self._recover(start, index, last_utc, last_seen):
                    return
                continue
            index += 1
            self._stats.read += 1
            last_seen = time.monotonic()
            seconds = self._timestamp(index, start)
            last_utc = self._capture_utc(seconds)
            if wanted:
                frame = Frame(index=index, time=seconds, image=image, utc=last_utc)
                if not self._put(frame):
                    return
                queued += 1

    def _pull(self, wanted: bool):
        if wanted:
            return self._reader.read()
        grab = getattr(self._reader, "grab", None)
        return (grab(), None) if grab is not None else self._reader.read()

    def _capture_utc(self, seconds: float) -> float | None:
        if self.live:
            return utc_now()
        if self.start_utc is not None and self.info.kind is SourceKind.FILE:
            return self.start_utc + seconds
        return None

    def _recover(self, start: float, index: int, last_utc: float | None, last_seen: float | None) -> bool:
        """A live source stopped delivering: say so, get it back, say so. False when the source was closed
        meanwhile; SourceError when it stays away for every allowed attempt."""
        self._stats.outages += 1
        lost_at = time.monotonic()
        if self._restored_at is None or lost_at - self._restored_at >= self.config.reconnect_max_backoff_s:
            self._level = 0  # it stayed up a while: a new outage starts with a short wait
        self._put(StreamEvent("stream_lost", utc=utc_now(), time=lost_at - start, last_frame=index,
                              last_utc=last_utc, reason="the source stopped delivering frames"))
        attempts = self._reconnect()
        if not attempts:
            return False
        back = self._restored_at = time.monotonic()
        self._level += attempts  # a camera that flaps keeps backing off instead of being hammered every second
        return self._put(StreamEvent("stream_restored", utc=utc_now(), time=back - start, last_frame=index,
                                     last_utc=last_utc, downtime_s=back - (last_seen or lost_at),
                                     attempts=attempts))

    def _timestamp(self, index: int, start: float) -> float:
        if self.live:
            return time.monotonic() - start
        if self.info.kind is SourceKind.FILE:
            position = getattr(self._reader, "position_s", None)
            seconds = position() if position is not None else None
            if seconds is not None:
                return seconds
            if self.info.fps:
                return index / self.info.fps
        return float(index)

    def _put(self, item: object) -> bool:
        """Queue an item under the kind's policy; False if the consumer has gone away meanwhile.
        The end marker and errors always wait for room: they must not cost a frame."""
        if self.live and isinstance(item, Frame):
            while not self._stop.is_set():
                try:
                    self._queue.put_nowait(item)
                    return True
                except queue.Full:
                    self._drop_oldest()
            return False
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _drop_oldest(self) -> None:
        try:
            self._queue.get_nowait()
        except queue.Empty:
            return
        if self._stats.dropped == 0:
            logger.info("%s: processing is slower than the source; dropping the oldest frames",
                        self.info.label)
        self._stats.dropped += 1

    def _reconnect(self) -> int:
        """Re-open a dropped source with capped exponential backoff and jitter. The attempts it took once
        back; SourceError when it stays away; 0 when the source was closed meanwhile."""
        self._release_reader()
        limit = self.config.reconnect_attempts
        if limit == 0:
            raise SourceError(f"{self.info.label} dropped (reconnecting is off)")
        of = "" if limit is None else f"/{limit}"
        for attempt in count(1) if limit is None else range(1, limit + 1):
            delay = self.config.backoff_s(self._level + attempt, self._rng)
            logger.warning("%s dropped; reconnect attempt %d%s in %.1f s",
                           self.info.label, attempt, of, delay)
            if self._stop.wait(delay):
                return 0
            try:
                self._reader, self._reader_released = self._reopen(), False
            except SourceError as error:
                logger.warning("%s: reconnect attempt %d%s failed: %s", self.info.label, attempt, of, error)
                continue
            self._stats.reconnects += 1
            logger.warning("%s: reconnected after %d attempt(s)", self.info.label, attempt)
            return attempt
        raise SourceError(f"{self.info.label} dropped and did not come back after {limit} attempts")

    def _note_end(self, pulled: int) -> None:
        """Log why a source ended when the end looks abnormal (vanished webcam, truncated file)."""
        if self.info.kind is SourceKind.WEBCAM:
            self.end_reason = (f"{self.info.label} stopped delivering frames "
                               "(unplugged or taken by another program)")
        elif self.info.kind is SourceKind.FILE and self.info.frame_count:
            expected = self.info.frame_count
            if pulled < expected - max(2, expected // 100):  # containers may estimate the count
                self.end_reason = (f"{self.info.label} ended after {pulled} of {expected} frames "
                                   "(truncated or corrupt)")
        if self.end_reason:
            logger.warning("%s; ending the stream", self.end_reason)
