"""Multi-stream mode: N video streams served by one detector and one emotion model instance.

Each stream runs the product's `EmotionPipeline` (tracking, work reuse, smoothing) in its own thread. Their
model calls meet in a `MicroBatcher`, which merges concurrent calls of one kind into one batched call:
`detector.track_batch` (the frames of all streams in one detector batch, one tracker per stream),
`Predictor.encode_scene` (the scenes of many streams in one scene batch) and `Predictor.predict_many` (the
persons of many streams' frames in one body batch). It flushes a kind when every live stream is waiting,
when `max_batch` requests of it are queued, or when the oldest request has waited `max_wait_s` since the worker
was free, so latency stays bounded; each flush's wait, size and reason are recorded.

Each source is decoded once (`decode_once`, timed on its own) and fanned out to the streams from memory: on a
real deployment decoding is the camera side's or NVDEC's job, so the streams' figures leave it out and the
report states the decode cost and the decoder apart. Stream i starts `stagger` x i frames into the clip, so
the streams show different frames at any moment (and a result handed to the wrong stream shows).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from concurrent.futures import Future

from benchmarks.stats import rate, summarize

log = logging.getLogger(__name__)


class MicroBatcher:
    """Merges model calls from stream threads into batched calls, run by one worker thread."""

    def __init__(self, predictor, detector=None, streams: int = 1, max_wait_s: float = 0.01, detector_for=None,
                 max_batch: int | None = None):
        self.predictor, self.detector = predictor, detector
        self.max_wait_s, self.max_batch = max_wait_s, max_batch
        self._detector_for = detector_for  # source -> own detector, for detectors without track_batch
        self._queues: dict[str, list] = defaultdict(list)
        self._active = streams
        self._cond = threading.Condition()
        self._closed = False
        self.batches: dict[str, list[int]] = defaultdict(list)    # requests merged per call
        self.seconds: dict[str, list[float]] = defaultdict(list)  # seconds per batched call
        # per call: how long the batcher held the oldest request back (from its arrival or the worker becoming
        # free, whichever is later: at most max_wait_s), and that request's whole age (queueing included)
        self.waits: dict[str, list[float]] = defaultdict(list)
        self.ages: dict[str, list[float]] = defaultdict(list)
        self.reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # why each call ran
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
        free = time.perf_counter()  # the worker is free from now: waiting starts here at the earliest
        with self._cond:
            while True:
                pending = {k: q for k, q in self._queues.items() if q}
                if not pending:
                    if self._closed:
                        return None, []
                    self._cond.wait()
                    free = time.perf_counter()
                    continue
                now = time.perf_counter()
                total = sum(len(q) for q in pending.values())
                oldest = min(q[0][0] for q in pending.values())
                held = now - max(oldest, free)
                full = [k for k, q in pending.items() if self.max_batch and len(q) >= self.max_batch]
                reason = ("full" if full else "all_waiting" if total >= self._active
                          else "max_wait" if held >= self.max_wait_s else "closing" if self._closed else None)
                if reason:
                    kind = full[0] if full else max(pending, key=lambda k: (len(pending[k]), -pending[k][0][0]))
                    queue = self._queues[kind]
                    take = len(queue) if not self.max_batch else min(len(queue), self.max_batch)
                    batch, self._queues[kind] = queue[:take], queue[take:]
                    self.waits[kind].append(max(0.0, now - max(batch[0][0], free)))
                    self.ages[kind].append(now - batch[0][0])
                    self.reasons[kind][reason] += 1
                    return kind, batch
                self._cond.wait(timeout=self.max_wait_s - held)

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


class DecodedSource:
    """The first frames of a video, decoded once and held in memory, with what decoding them cost."""

    def __init__(self, path: str, frames: int):
        import cv2

        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            from emomon.kernel import InputError

            raise InputError(f"cannot open '{path}' as a video")
        try:
            self.fps = capture.get(cv2.CAP_PROP_FPS) or None
            backend = capture.getBackendName()
            self.images, seconds = [], []
            while len(self.images) < frames:
                t0 = time.perf_counter()
                ok, image = capture.read()
                if not ok:
                    break
                seconds.append(time.perf_counter() - t0)
                self.images.append(image)
        finally:
            capture.release()
        if not self.images:
            from emomon.kernel import InputError

            raise InputError(f"'{path}' has no decodable frames")
        h, w = self.images[0].shape[:2]
        self.report = {
            "decoder": f"OpenCV {cv2.__version__} VideoCapture ({backend}), software decoding on the CPU, one thread",
            "frames": len(seconds), "width": w, "height": h, "ms_per_frame": summarize(seconds),
            "fps": rate(len(seconds), sum(seconds)),
            "note": "each source decoded once and fanned out to the streams from memory; the streams' figures "
                    "leave decoding out (on a deployment it is the camera side's or NVDEC's job)"}

    def stream(self, i: int, frames: int, stagger: int):
        """Stream i: `frames` frames from `stagger` x i frames in (wrapping round the decoded ones)."""
        n = len(self.images)
        start = (i * stagger) % n
        return [((start + j) % n, self.images[(start + j) % n]) for j in range(min(frames, n))]


def _warm_up(images: list, streams: int, detector, predictor) -> None:
    """Untimed batched calls at this run's batch sizes (kernel selection, allocator growth)."""
    frames = [images[i % len(images)] for i in range(streams)]
    if detector is not None:
        warm = [f"warm-up-{i}" for i in range(streams)]
        dets = detector.track_batch(frames, warm)
        for source in warm:
            detector.reset(source)
        boxes = [d.xyxy for d in dets]
    else:
        h, w = frames[0].shape[:2]
        boxes = [[[0, 0, w // 2, h]]] * streams
    scenes = predictor.encode_scene(frames)
    predictor.predict_many(frames, boxes, [scenes[i] for i in range(streams)])


def run_multistream(path: str, streams: int, frames: int, detector, predictor, pipeline_config=None,
                    source_fps: float | None = None, max_wait_s: float = 0.01, make_detector=None,
                    warmup: bool = True, max_batch: int | None = None, stagger: int = 0,
                    realtime_fps: float = 24.0, decoded: DecodedSource | None = None,
                    outputs: list | None = None) -> dict:
    """N streams of one video (decoded once, stream i `stagger` x i frames in); aggregate frames/s, per-stream
    latency, whether every stream kept `realtime_fps`, how the batcher merged and how long it held requests.

    `make_detector()` builds one detector per stream when `detector` has no `track_batch` (then detection is
    not batched across streams, only the emotion model is). `outputs`, when given, gets one list per stream of
    `benchmarks.e2e.person_outputs` per frame (not part of the report).
    """
    from benchmarks.e2e import person_outputs
    from emomon.pipeline import EmotionPipeline

    if streams < 1:
        raise ValueError("streams must be >= 1")
    decoded = decoded or DecodedSource(path, frames + stagger * (streams - 1))
    own: dict[int, object] = {}
    detector_for = None
    if not hasattr(detector, "track_batch"):
        def detector_for(source):
            if source not in own:
                own[source] = make_detector() if make_detector else detector
            return own[source]
    if warmup:
        _warm_up(decoded.images, streams, detector if detector_for is None else None, predictor)
    batcher = MicroBatcher(predictor, detector, streams, max_wait_s, detector_for, max_batch)
    source_fps = source_fps or decoded.fps
    pipelines = [EmotionPipeline(_DetectorHandle(batcher, i), _PredictorHandle(batcher), pipeline_config)
                 for i in range(streams)]
    plans = [decoded.stream(i, frames, stagger) for i in range(streams)]
    if outputs is not None:
        outputs[:] = [[] for _ in range(streams)]
    latency: list[list[float]] = [[] for _ in range(streams)]
    persons, done_at, errors = [0] * streams, [0.0] * streams, []

    def work(i: int) -> None:
        try:
            for n, (_clip_index, image) in enumerate(plans[i]):
                t0 = time.perf_counter()
                result = pipelines[i].process(n, n / (source_fps or 30.0), image)
                latency[i].append(time.perf_counter() - t0)
                persons[i] += len(result.persons)
                if outputs is not None:
                    outputs[i].append(person_outputs(result))
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
    per_stream = [summarize(lat) for lat in latency]
    fps = source_fps or 30.0
    result = {
        "streams": streams,
        "frames_per_stream": frames,
        "stagger_frames": stagger,
        "frames": total,
        "persons": sum(persons),
        "wall_s": wall,
        "aggregate_fps": aggregate,
        "persons_per_s": rate(sum(persons), wall),
        "per_stream_fps": per_stream_fps,
        "latency_ms": summarize([x for lat in latency for x in lat]),
        "per_stream_latency_ms": per_stream,
        "stream_latency_p50_ms": _median([s["p50"] for s in per_stream if s]),   # the median stream's p50
        "stream_latency_p95_ms": max((s["p95"] for s in per_stream if s), default=None),  # the worst stream's p95
        "source_fps": fps,
        "source_fps_known": bool(source_fps),
        "realtime_fps": realtime_fps,
        "realtime_at_n": bool(per_stream_fps) and min(per_stream_fps) >= realtime_fps,
        "realtime_streams_estimate": int(math.floor(aggregate / realtime_fps)) if realtime_fps else 0,
        "batched_detector": detector_for is None,
        "max_wait_ms": 1000.0 * max_wait_s,
        "max_batch": max_batch,
        "batching": {kind: {"calls": len(sizes), "mean_requests": sum(sizes) / len(sizes),
                            "max_requests": max(sizes), "ms_per_call": summarize(batcher.seconds[kind]),
                            "held_ms": summarize(batcher.waits[kind]), "age_ms": summarize(batcher.ages[kind]),
                            "reasons": dict(batcher.reasons[kind])}
                     for kind, sizes in batcher.batches.items() if sizes},
        "decode": decoded.report,
        "note": (f"aggregate frames/s over all streams (detect, track, emotions with reuse, smoothing; no decoding, "
                 f"overlay or video output); latency: one frame's pipeline call, batching waits included; "
                 f"real-time: every stream at >= {realtime_fps:g} frames/s at this N (realtime_at_n), and "
                 f"floor(aggregate / {realtime_fps:g}) as an estimate"),
    }
    log.info("bench multi-stream: %d streams, %.2f frames/s aggregate, latency p50 %.0f ms; ~%d real-time "
             "streams at %.0f fps", streams, aggregate, (result["latency_ms"] or {}).get("p50", 0.0),
             result["realtime_streams_estimate"], realtime_fps)
    return result


def run_sweep(path: str, stream_counts: list[int], frames: int, detector, predictor, pipeline_config=None,
              source_fps: float | None = None, max_wait_s: float = 0.01, make_detector=None,
              max_batch: int | None = None, stagger: int = 1, realtime_fps: float = 24.0,
              deadline: float | None = None) -> dict:
    """`run_multistream` at each N of `stream_counts` (ascending) on frames decoded once; an N whose predicted
    time (the last run's, scaled by N) would pass `deadline` (a perf_counter time) is skipped with the reason.
    Returns the largest N's full run with `sweep` (one row per N) and the decode cost beside it."""
    counts = sorted(set(stream_counts))
    decoded = DecodedSource(path, frames + stagger * (max(counts) - 1))
    runs, rows, last = {}, [], None
    for n in counts:
        if deadline is not None and last is not None:
            predicted = last["wall_s"] * n / last["streams"] * 1.2 + 2.0
            left = deadline - time.perf_counter()
            if predicted > left:
                rows.append({"streams": n, "skipped": f"predicted {predicted:.0f} s (from {last['streams']} "
                                                      f"streams) exceeds the {max(left, 0):.0f} s of budget left"})
                continue
        run = run_multistream(path, n, frames, detector, predictor, pipeline_config, source_fps, max_wait_s,
                              make_detector, max_batch=max_batch, stagger=stagger, realtime_fps=realtime_fps,
                              decoded=decoded)
        runs[n], last = run, run
        rows.append(_sweep_row(run))
    if not runs:
        raise RuntimeError("no multi-stream run fitted the budget")
    best = runs[max(runs)]
    realtime = [n for n, r in runs.items() if r["realtime_at_n"]]
    return {**best, "sweep": rows, "realtime_streams_measured": max(realtime, default=0),
            "decode": decoded.report}


def _sweep_row(run: dict) -> dict:
    return {k: run[k] for k in ("streams", "frames", "wall_s", "aggregate_fps", "persons_per_s", "realtime_at_n",
                                "realtime_streams_estimate", "stream_latency_p50_ms", "stream_latency_p95_ms")} | {
        "latency_ms": {k: (run["latency_ms"] or {}).get(k) for k in ("p50", "p95", "p99")},
        "min_stream_fps": min(run["per_stream_fps"], default=0.0),
        "batch_mean": {kind: b["mean_requests"] for kind, b in run["batching"].items()},
        "held_ms_max": {kind: (b["held_ms"] or {}).get("max") for kind, b in run["batching"].items()}}


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
