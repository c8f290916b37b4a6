"""The per-frame pipeline: detect and track, crop, one batched emotion call, smooth per track.

Work reuse (`ReuseConfig`) keeps it fast without changing what users see beyond a stated tolerance:
- the scene embedding is reused for up to `scene_every` frames, unless the frame changed (mean absolute
  difference of small grey thumbnails above `scene_change`);
- a tracked person's emotions are recomputed every `refresh_every` frames, or sooner when their box moved
  (IoU with the box of the last computation below `refresh_iou`). New tracks are always computed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import defaultdict

import cv2
import numpy as np

from emomon.pipeline.config import PipelineConfig
from emomon.pipeline.results import FrameResult, attach
from emomon.pipeline.smoothing import TrackSmoother
from fusion import PersonResult, Predictor

log = logging.getLogger(__name__)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _sharing_uploads(predictor):
    """`Predictor.sharing_uploads()`, or nothing for predictors without it (the benchmarks' stand-ins)."""
    share = getattr(predictor, "sharing_uploads", None)
    return share() if share is not None else contextlib.nullcontext()


def thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return grey.astype(np.float32) / 255.0


class StageTimes:
    """Seconds per stage per frame, for logs and benchmarks."""

    def __init__(self):
        self.samples: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, seconds: float) -> None:
        self.samples[stage].append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        return {s: {"mean_ms": 1000 * float(np.mean(v)), "p50_ms": 1000 * float(np.percentile(v, 50)),
                    "p95_ms": 1000 * float(np.percentile(v, 95)), "count": len(v)}
                for s, v in self.samples.items() if v}


class EmotionPipeline:
    """detector + predictor + smoothing; `process(frame)` per frame, `reset()` per source."""

    def __init__(self, detector, predictor: Predictor, config: PipelineConfig | None = None, temporal=None):
        self.detector, self.predictor = detector, predictor
        self.config = config or PipelineConfig()
        self.temporal = temporal  # emomon.pipeline.temporal_stage.TemporalStage: emotions over a track's frames
        if temporal is not None:
            predictor.keep_features = True
            if getattr(temporal, "fresh_features", False) and self.config.reuse.refresh_every > 1:
                log.info("temporal model: tracked persons are recomputed every frame (its input is each frame's "
                         "feature); the scene embedding is still reused")
                self.config = dataclasses.replace(self.config, reuse=dataclasses.replace(self.config.reuse,
                                                                                          refresh_every=1))
        self.smoother = TrackSmoother(self.config.smoothing)
        self.tracking = True  # off for unrelated still images: ids (and smoothing) only make sense in video
        self.times = StageTimes()
        self.counts = defaultdict(int)
        self.vlm = None  # emomon.pipeline.vlm_stage.VlmStage (`--vlm`): asks a VLM in the background, never waited for
        self.reset()

    @property
    def labels(self):
        """The label space of this pipeline's outputs (the temporal head's, else the frame model's)."""
        return self.temporal.labels if self.temporal is not None else self.predictor.model.labels

    def reset(self) -> None:
        """Forget everything about the previous source: tracker ids, smoothing, reuse caches."""
        if hasattr(self.detector, "reset"):
            self.detector.reset()
        self.smoother.reset()
        if self.temporal is not None:
            self.temporal.reset()
        if self.vlm is not None:
            self.vlm.reset()
        self._scene = None            # (embedding, thumbnail, frame number)
        self._tracks: dict[int, tuple[int, PersonResult]] = {}  # id -> (frame number, last computed result)
        self._n = 0
        self._id_base = self._last_id = 0  # see restart_tracks()

    def restart_tracks(self) -> int:
        """Start tracking afresh after a gap in a live source (tracker, smoothing, reuse caches), with ids above
        every id handed out so far, so an id means one person across the whole run. Returns the next new id."""
        last = self._last_id
        self.reset()
        self._id_base = self._last_id = last
        return last + 1

    def _scene_embedding(self, image: np.ndarray):
        cfg = self.config.reuse
        thumb = thumbnail(image) if cfg.scene_every > 1 else None
        if self._scene is not None and cfg.scene_every > 1:
            emb, old_thumb, n = self._scene
            if self._n - n < cfg.scene_every and float(np.abs(thumb - old_thumb).mean()) <= cfg.scene_change:
                self.counts["scene_reused"] += 1
                return emb
        emb = self.predictor.encode_scene([image])[0]
        self.counts["scene_computed"] += 1
        self._scene = (emb, thumb, self._n)
        return emb

    def _needs_update(self, tid: int | None, box: np.ndarray) -> bool:
        cached = self._tracks.get(tid) if tid is not None else None
        cfg = self.config.reuse
        return (cached is None or self._n - cached[0] >= cfg.refresh_every
                or box_iou(box, cached[1].box) < cfg.refresh_iou)

    def _emotions(self, image: np.ndarray, boxes: np.ndarray, ids: list[int | None]) -> dict[int, PersonResult]:
        """Raw (unsmoothed) results per detection row: computed where needed, reused from the track elsewhere."""
        todo = [i for i, (tid, box) in enumerate(zip(ids, boxes)) if self._needs_update(tid, box)]
        raw: dict[int, PersonResult] = {}
        if todo:
            with _sharing_uploads(self.predictor):  # device preprocessing: the frame goes to the device once
                scene = self._scene_embedding(image)
                people = self.predictor.predict(image, boxes[todo], scene_embedding=scene)
            for i, person in zip(todo, people):
                if person is None:
                    continue
                raw[i] = person
                if ids[i] is not None:
                    self._tracks[ids[i]] = (self._n, person.replace(box=boxes[i]))
        self.counts["persons_computed"] += len(raw)
        for i, tid in enumerate(ids):
            if i not in raw and i not in todo and tid in self._tracks:
                raw[i] = self._tracks[tid][1]
                self.counts["persons_reused"] += 1
        return raw

    def detect(self, image: np.ndarray):
        """Detect (and track) the persons of the next frame: the first half of `process`, which may run a frame
        ahead in another thread (`emomon.pipeline.overlap`); frames must come in order."""
        t0 = time.perf_counter()
        dets = self.detector.track(image) if self.tracking else self.detector.detect(image)
        self.times.add("detect_track", time.perf_counter() - t0)
        if dets.tracker_id is not None:
            ids = [None if int(t) < 0 else int(t) + self._id_base for t in dets.tracker_id]
            if self._id_base:  # the overlay draws these
                dets.tracker_id = np.array([-1 if t is None else t for t in ids], dtype=int)
            self._last_id = max([self._last_id, *(t for t in ids if t is not None)])
        return dets

    def process(self, index: int, time_s: float, image: np.ndarray, detections=None) -> FrameResult:
        """One frame: detect and track (unless `detections` is this frame's result of `detect`), emotions where
        needed, smoothing."""
        dets = self.detect(image) if detections is None else detections
        t1 = time.perf_counter()
        boxes = dets.xyxy.astype(np.float32)
        tracked = dets.tracker_id
        ids = [None if t < 0 else int(t) for t in tracked] if tracked is not None else [None] * len(dets)
        raw = self._emotions(image, boxes, ids)
        t2 = time.perf_counter()
        self.times.add("emotion", t2 - t1)
        if self.temporal is not None:  # replaces smoothing: the head integrates over the track's frames
            raw = self.temporal.apply(self._n, time_s, ids, raw)
            self.times.add("temporal", time.perf_counter() - t2)
            t2 = time.perf_counter()
        keypoints = dets.data.get("keypoints") if dets.data else None
        persons: list[PersonResult | None] = [None] * len(dets)
        for i in sorted(raw):
            if not raw[i].is_finite:  # the predictor leaves NaN/inf persons out; a custom one might not
                log.debug("frame %d: detection %d has non-finite emotion scores; left out", index, i)
                continue
            probs, vad = raw[i].probs, raw[i].vad
            if self.temporal is None:
                probs, vad = self.smoother.update(ids[i], self._n, probs, vad)
            persons[i] = PersonResult(
                index=i, box=boxes[i], probs=probs, vad=vad, track_id=ids[i],
                score=float(dets.confidence[i]) if dets.confidence is not None else 1.0,
                keypoints=keypoints[i] if keypoints is not None and len(keypoints) > i else None,
                labels=raw[i].labels)
        if self.vlm is not None:  # hands due tracks to its workers and attaches arrived answers; never blocks
            persons = self.vlm.step(index, time_s, image, persons)
        self.smoother.forget_stale(self._n)
        if self.temporal is not None:
            self.temporal.forget_stale(self._n)
        for tid in [t for t, c in self._tracks.items() if self._n - c[0] > self.smoother.config.max_age]:
            del self._tracks[tid]
        self.times.add("smooth", time.perf_counter() - t2)
        self.counts["frames"] += 1
        self._n += 1
        return FrameResult(index, time_s, image, attach(dets, persons), self.config.top_k)
