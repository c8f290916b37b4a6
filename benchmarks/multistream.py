"""Multi-stream mode: N video streams served by one detector and one emotion model instance.

Each stream runs the product's `EmotionPipeline` (tracking, work reuse, smoothing) in its own thread with its
own decoding thread. Their model calls meet in a `MicroBatcher`, which merges concurrent calls of one kind
into one batched call: `detector.track_batch` (one tracker per stream), `Predictor.encode_scene` and
`Predictor.predict_many`. It flushes when every live stream is waiting on it, or when the oldest request
has waited `max_wait_s`, so a slow stream cannot stall the others for long.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from concurrent.futures import Future

from benchmarks.stats import rate, summarize
from benchmarks.timing import open_video

log = logging.getLogger(__name__)


class MicroBatcher:
    """Merges model calls from stream threads into batched calls, run by one worker thread."""

    def __init__(self, predictor, detector=None, streams: int = 1, max_wait_s: float = 0.01, detector_for=None):
        self.predictor, self.detector = predictor, detector
        self.max_wait_s = max_wait_s
        self._detector_for = detector_for  # source -> own detector, for detectors without track_batch
        self._queues: dict[str, list] = defaultdict(list)
        self._active = streams
        self._cond = threading.Condition()
        self._closed = False
        self.batches: dict[str, list[int]] = defaultdict(list)    # requests merged per call
        self.seconds: dict[str, list[float]] = defaultdict(list)  # seconds per batched call
        self._worker = threading.Thread(target=self._loop, name="bench-microbatcher", daemon=True)
        self._worker.start()

    # -- stream side ---------------------------------------------------------------------------------
    def submit(self, kind: str, payload):
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the micro-batcher is closed")
            self._queues[kind].append((time.perf_counter(), payload, future))
            self._cond.notify_all()
        return future.result()

    def leave(self) -> None:
        """A stream has ended: stop waiting for it before flushing."""
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=60)

    # -- worker --------------------------------------------------------------------------------------
    def _next_batch(self):
        with self._cond:
            while True:
                pending = {k: q for k, q in self._queues.items() if q}
                if not pending:
                    if self._closed:
                        return None, []
                    self._cond.wait()
                    continue
                total = sum(len(q) for q in pending.values())
                oldest = min(q[0][0] for q in pending.values())
                age = time.perf_counter() - oldest
                if total >= self._active or age >= self.max_wait_s or self._closed:
                    kind = max(pending, key=lambda k: (len(pending[k]), -pending[k][0][0]))
                    batch, self._queues[kind] = self._queues[kind], []
                    return kind, batch
                self._cond.wait(timeout=self.max_wait_s - age)

    def _loop(self) -> None:
        while True:
            kind, batch = self._next_batch()
            if kind is None:
                return
            payloads = [p for _, p, _ in batch]
            t0 = time.perf_counter()
            try:
                results = self._run(kind, payloads)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting stream
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            self.seconds[kind].append(time.perf_counter() - t0)
            self.batches[kind].append(len(batch))
            for (_, _, future), result in zip(batch, results):
                future.set_result(result)

    def _run(self, kind: str, payloads: list) -> list:
        if kind == "track":
            frames, sources = [f for f, _ in payloads], [s for _, s in payloads]
            if self._detector_for is None:
                return self.detector.track_batch(frames, sources)
            return [self._detector_for(s).track(f) for f, s in payloads]
        if kind == "scene":
            emb = self.predictor.encode_scene(payloads)
            return [emb[i:i + 1] for i in range(len(payloads))]
        if kind == "predict":
            frames, boxes, scenes = zip(*payloads)
            return self.predictor.predict_many(list(frames), list(boxes), list(scenes))
        raise ValueError(f"unknown request kind {kind!r}")


class _DetectorHandle:
    """What one stream's pipeline sees as its detector."""

    def __init__(self, batcher: MicroBatcher, source: int):
        self.batcher, self.source = batcher, source

    def track(self, frame):
        return self.batcher.submit("track", (frame, self.source))

    def detect(self, frame):
        return self.track(frame)

    def reset(self) -> None:
        if self.batcher._detector_for is not None:
            self.batcher._detector_for(self.source).reset()
        else:
            self.batcher.detector.reset(self.source)


class _PredictorHandle:
    """What one stream's pipeline sees as its predictor."""

    def __init__(self, batcher: MicroBatcher):
        self.batcher = batcher

    def encode_scene(self, frames):
        if len(frames) != 1:
            raise ValueError("a stream asks for one scene embedding at a time")
        return self.batcher.submit("scene", frames[0])

    def predict(self, frame, boxes=None, scene_embedding=None):
        return self.batcher.submit("predict", (frame, boxes, scene_embedding))


def _warm_up(path: str, streams: int, detector, predictor) -> None:
    """Untimed batched calls at this run's batch sizes (kernel selection, allocator growth)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        return
    frames = [frame] * streams
    if detector is not None:
        warm = [f"warm-up-{i}" for i in range(streams)]
        dets = detector.track_batch(frames, warm)
        for source in warm:
            detector.reset(source)
        boxes = [d.xyxy for d in dets]
    else:
        h, w = frame.shape[:2]
        boxes = [[[0, 0, w // 2, h]]] * streams
    scenes = predictor.encode_scene(frames)
    predictor.predict_many(frames, boxes, [scenes[i] for i in range(streams)])


def run_multistream(path: str, streams: int, frames: int, detector, predictor, pipeline_config=None,
                    source_fps: float | None = None, max_wait_s: float = 0.01, make_detector=None,
                    warmup: bool = True) -> dict:
    """N copies of the video as N concurrent streams; aggregate frames/s, per-stream latency, real-time count.

    `make_detector()` builds one detector per stream when `detector` has no `track_batch` (then detection is
    not batched across streams, only the emotion model is).
    """
    from emomon.pipeline import EmotionPipeline

    if streams < 1:
        raise ValueError("streams must be >= 1")
    own: dict[int, object] = {}
    detector_for = None
    if not hasattr(detector, "track_batch"):
        def detector_for(source):
            if source not in own:
                own[source] = make_detector() if make_detector else detector
            return own[source]
    batcher = MicroBatcher(predictor, detector, streams, max_wait_s, detector_for)
    opened = [open_video(path, max_frames=frames) for _ in range(streams)]
    if warmup:
        _warm_up(path, streams, detector if detector_for is None else None, predictor)
    source_fps = source_fps or opened[0][0].info.fps
    pipelines = [EmotionPipeline(_DetectorHandle(batcher, i), _PredictorHandle(batcher), pipeline_config)
                 for i in range(streams)]
    latency: list[list[float]] = [[] for _ in range(streams)]
    persons, done_at, errors = [0] * streams, [0.0] * streams, []

    def work(i: int) -> None:
        source = opened[i][0]
        try:
            with source:
                for frame in source:
                    t0 = time.perf_counter()
                    result = pipelines[i].process(frame.index, frame.time, frame.image)
                    latency[i].append(time.perf_counter() - t0)
                    persons[i] += len(result.persons)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)
        finally:
            done_at[i] = time.perf_counter()
            batcher.leave()

    threads = [threading.Thread(target=work, args=(i,), name=f"bench-stream-{i}", daemon=True)
               for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    batcher.close()
    if errors:
        raise errors[0]
    total = sum(len(x) for x in latency)
    aggregate = rate(total, wall)
    per_stream_fps = [rate(len(latency[i]), done_at[i] - start) for i in range(streams)]
    fps = source_fps or 30.0
    result = {
        "streams": streams,
        "frames_per_stream": frames,
        "frames": total,
        "persons": sum(persons),
        "wall_s": wall,
        "aggregate_fps": aggregate,
        "persons_per_s": rate(sum(persons), wall),
        "per_stream_fps": per_stream_fps,
        "latency_ms": summarize([x for lat in latency for x in lat]),
        "per_stream_latency_ms": [summarize(lat) for lat in latency],
        "source_fps": fps,
        "source_fps_known": bool(source_fps),
        "realtime_at_n": bool(per_stream_fps) and min(per_stream_fps) >= fps,
        "realtime_streams_estimate": int(math.floor(aggregate / fps)) if fps else 0,
        "batched_detector": detector_for is None,
        "max_wait_ms": 1000.0 * max_wait_s,
        "batching": {kind: {"calls": len(sizes), "mean_requests": sum(sizes) / len(sizes),
                            "max_requests": max(sizes), "ms_per_call": summarize(batcher.seconds[kind])}
                     for kind, sizes in batcher.batches.items() if sizes},
        "note": ("aggregate frames/s over all streams (detect, track, emotions with reuse, smoothing; no overlay "
                 "or video output); real-time streams = floor(aggregate frames/s / source fps), extrapolated "
                 "from this N"),
    }
    log.info("bench multi-stream: %d streams, %.2f frames/s aggregate, latency p50 %.0f ms; ~%d real-time "
             "streams at %.0f fps", streams, aggregate, (result["latency_ms"] or {}).get("p50", 0.0),
             result["realtime_streams_estimate"], fps)
    return result
