"""Per-stage timers wrapped around the product's own parts, so the benchmark measures the real code path.

- `TimedBackend` wraps any `InferenceBackend`: scene, body and heads calls are timed (synchronized on CUDA)
  and handed to the unchanged `Predictor`/`EmotionPipeline`.
- `TimedReader` wraps a frame reader: the decode time of every frame, measured in the reader thread.
- `TimedSource` wraps a `VideoSource`: how long the consumer waited for each frame. Decode busy time vs
  consumer wait time is the measured decode/inference overlap.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

from benchmarks.stats import synchronize

BACKEND_STAGES = ("scene", "body", "heads")


class TimedBackend:
    """An InferenceBackend that times its three stages; `take_frame()` returns and clears per-frame sums."""

    def __init__(self, backend):
        self.inner = backend
        self.name, self.model, self.device = backend.name, backend.model, backend.device
        self.calls: dict[str, list[float]] = defaultdict(list)       # seconds per call
        self.batch_sizes: dict[str, list[int]] = defaultdict(list)    # rows per call
        self._frame: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def __getattr__(self, name):  # precision, options and anything else a backend declares
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _timed(self, stage: str, fn, *args):
        synchronize(self.device)
        t0 = time.perf_counter()
        out = fn(*args)
        synchronize(self.device)
        dt = time.perf_counter() - t0
        with self._lock:
            self.calls[stage].append(dt)
            self.batch_sizes[stage].append(int(args[0].shape[0]))
            self._frame[stage] += dt
        return out

    def encode_scene(self, scene):
        return self._timed("scene", self.inner.encode_scene, scene)

    def encode_body(self, body):
        return self._timed("body", self.inner.encode_body, body)

    def heads(self, b, s):
        return self._timed("heads", self.inner.heads, b, s)

    def take_frame(self) -> dict[str, float]:
        with self._lock:
            out = {stage: self._frame.get(stage, 0.0) for stage in BACKEND_STAGES}
            self._frame.clear()
        return out


class TimedReader:
    """A FrameReader whose read() times are recorded (one sample per decoded frame)."""

    def __init__(self, reader):
        self.inner = reader
        self.read_s: list[float] = []

    def read(self):
        t0 = time.perf_counter()
        out = self.inner.read()
        if out[0]:
            self.read_s.append(time.perf_counter() - t0)
        return out

    def __getattr__(self, name):  # grab, position_s, release, info, width, height
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class TimedSource:
    """Iterates a VideoSource and records how long the consumer waited for each frame."""

    def __init__(self, source):
        self.source = source
        self.info = source.info
        self.wait_s: list[float] = []

    def __iter__(self):
        frames = iter(self.source)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                self.wait_s.append(time.perf_counter() - t0)
                yield frame
        finally:
            frames.close()

    @property
    def dropped(self) -> int:
        return self.source.dropped

    @property
    def end_reason(self):
        return self.source.end_reason

    def close(self) -> None:
        self.source.close()


def open_video(path: str, max_frames: int | None = None, buffer_size: int = 4):
    """A VideoSource over a video file whose reader is timed: (source, timed_reader, open_seconds).

    Raises emomon's InputError (stream.SourceError) for a missing or undecodable file, and for sources that
    are not video files (a benchmark needs a repeatable input: not a camera or a network stream).
    """
    from emomon.kernel import InputError
    from stream import SourceConfig, SourceKind, VideoSource, detect_kind
    from stream.capture import open_capture

    kind = detect_kind(path)
    if kind is not SourceKind.FILE:
        raise InputError(f"bench --source must be a video file (got a {kind.value} source '{path}'); "
                         "cameras and network streams do not give repeatable numbers")
    config = SourceConfig(buffer_size=buffer_size)
    t0 = time.perf_counter()
    reader = open_capture(str(path), kind, config)
    opened = time.perf_counter() - t0
    timed = TimedReader(reader)
    source = VideoSource(timed, reader.info(kind, str(path)), max_frames=max_frames, config=config)
    return source, timed, opened
