"""VideoSource: frames read in a background thread into a bounded queue, handed out by a generator.

Drop policy by kind: files and images never lose a frame (the reader waits while the queue is full);
live sources keep the newest frames (the reader drops the oldest queued one), because a monitor must show
now, not a growing backlog. The reader thread always stops and is joined: at the end of the stream, on
close(), when the consumer stops iterating (break, exception, Ctrl-C), via the generator's finally.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import count

from .config import SourceConfig
from .errors import SourceError
from .frames import Frame, FrameReader, SourceInfo, SourceStats
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
    `reopen` re-opens a dropped network stream; without it a failed read ends the stream.
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
        self._stats = SourceStats()
        self._queue: queue.Queue = queue.Queue(maxsize=self.config.buffer_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{info.kind.value}", daemon=True)
        self._lock = threading.Lock()
        self._iterated = False
        self._closed = False

    # -- consumer side -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if self._iterated:
                raise RuntimeError(f"{self.info.label} can be iterated only once")
            if self._closed:
                raise RuntimeError(f"{self.info.label} is closed")
            self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
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
        while not self._stop.is_set():
            if not self.live and self.max_frames is not None and queued >= self.max_frames:
                return
            wanted = (index + 1) % self.vid_stride == 0
            ok, image = self._pull(wanted)
            if not ok:
                if self._reopen is not None and self._reconnect():
                    continue
                self._note_end(index + 1)
                return
            index += 1
            self._stats.read += 1
            if wanted:
                frame = Frame(index=index, time=self._timestamp(index, start), image=image)
                if not self._put(frame):
                    return
                queued += 1

    def _pull(self, wanted: bool):
        if wanted:
            return self._reader.read()
        grab = getattr(self._reader, "grab", None)
        return (grab(), None) if grab is not None else self._reader.read()

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

    def _reconnect(self) -> bool:
        """Re-open a dropped stream with exponential backoff. True once back; SourceError when it stays
        away; False when the source was closed meanwhile."""
        self._release_reader()
        limit = self.config.reconnect_attempts
        of = "" if limit is None else f"/{limit}"
        for attempt in count(1) if limit is None else range(1, limit + 1):
            delay = self.config.backoff_s(attempt)
            logger.warning("%s dropped; reconnect attempt %d%s in %.1f s",
                           self.info.label, attempt, of, delay)
            if self._stop.wait(delay):
                return False
            try:
                self._reader, self._reader_released = self._reopen(), False
            except SourceError as error:
                logger.warning("%s: reconnect attempt %d%s failed: %s", self.info.label, attempt, of, error)
                continue
            self._stats.reconnects += 1
            logger.warning("%s: reconnected after %d attempt(s)", self.info.label, attempt)
            return True
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
