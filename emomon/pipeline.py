"""The per-frame pipeline: detect and track, crop, one batched emotion call, smooth per track.

Work reuse keeps it fast without changing what users see beyond a stated tolerance:
- the scene embedding is reused for up to `scene_every` frames, unless the frame changed (mean absolute
  difference of small grey thumbnails above `scene_change`);
- a tracked person's emotions are recomputed every `refresh_every` frames, or sooner when their box moved
  (IoU with the box of the last computation below `refresh_iou`). New tracks are always computed.
Both set to 1 give the every-frame run.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import cv2
import numpy as np

from emomon.smoothing import SmoothingConfig, TrackSmoother
from fusion import Predictor
from fusion.predictor import emotion_fields

log = logging.getLogger(__name__)


@dataclass
class ReuseConfig:
    # Defaults measured on street_crossing.mp4 (README, "work reuse"): 2.3x the every-frame rate there, category
    # scores within 0.012 and VAD within 0.05 of it; tests/test_reuse_tolerance.py holds them to 0.05 / 0.25.
    scene_every: int = 4
    scene_change: float = 0.06
    refresh_every: int = 2
    refresh_iou: float = 0.7

    def __post_init__(self):
        if self.scene_every < 1 or self.refresh_every < 1:
            raise ValueError("scene_every and refresh_every must be >= 1 (1 = every frame)")


@dataclass
class PipelineConfig:
    reuse: ReuseConfig = field(default_factory=ReuseConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    top_k: int = 3


@dataclass
class FrameResult:
    index: int
    time: float
    image: np.ndarray
    detections: object           # supervision.Detections from the detector
    persons: list[dict]          # JSONL person entries, one per detection that got emotions
    detection_index: list[int] = field(default_factory=list)  # persons[k] belongs to detection detection_index[k]

    def record(self) -> dict:
        return {"frame": self.index, "time": round(self.time, 4), "persons": self.persons}

    def aligned(self) -> list[dict | None]:
        """One entry per detection (None where a detection got no emotions), as the overlay wants."""
        out: list[dict | None] = [None] * len(self.detections)
        for k, i in enumerate(self.detection_index):
            out[i] = self.persons[k]
        return out


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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

    def __init__(self, detector, predictor: Predictor, config: PipelineConfig | None = None):
        self.detector, self.predictor = detector, predictor
        self.config = config or PipelineConfig()
        self.smoother = TrackSmoother(self.config.smoothing)
        self.tracking = True  # off for unrelated still images: ids (and smoothing) only make sense in video
        self.times = StageTimes()
        self.counts = defaultdict(int)
        self.reset()

    def reset(self) -> None:
        """Forget everything about the previous source: tracker ids, smoothing, reuse caches."""
        if hasattr(self.detector, "reset"):
            self.detector.reset()
        self.smoother.reset()
        self._scene = None            # (embedding, thumbnail, frame number)
        self._tracks: dict[int, tuple[int, np.ndarray, np.ndarray, np.ndarray]] = {}  # id -> (n, box, p, vad)
        self._n = 0

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

    def process(self, index: int, time_s: float, image: np.ndarray) -> FrameResult:
        t0 = time.perf_counter()
        dets = self.detector.track(image) if self.tracking else self.detector.detect(image)
        t1 = time.perf_counter()
        self.times.add("detect_track", t1 - t0)
        cfg = self.config.reuse
        boxes = dets.xyxy.astype(np.float32)
        ids = dets.tracker_id if dets.tracker_id is not None else [None] * len(dets)
        ids = [None if t is None or int(t) < 0 else int(t) for t in ids]
        todo = []
        for i, (tid, box) in enumerate(zip(ids, boxes)):
            cached = self._tracks.get(tid) if tid is not None else None
            if (cached is None or self._n - cached[0] >= cfg.refresh_every
                    or box_iou(box, cached[1]) < cfg.refresh_iou):
                todo.append(i)
        raw: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if todo:
            scene = self._scene_embedding(image)
            people = self.predictor.predict(image, boxes[todo], scene_embedding=scene)
            for i, person in zip(todo, people):
                if person is None:
                    continue
                raw[i] = (person.probs, person.vad)
                if ids[i] is not None:
                    self._tracks[ids[i]] = (self._n, boxes[i], person.probs, person.vad)
        self.counts["persons_computed"] += len(raw)
        for i, tid in enumerate(ids):
            if i not in raw and tid is not None and tid in self._tracks and i not in todo:
                raw[i] = self._tracks[tid][2:]
                self.counts["persons_reused"] += 1
        t2 = time.perf_counter()
        self.times.add("emotion", t2 - t1)
        keypoints = dets.data.get("keypoints") if getattr(dets, "data", None) else None
        persons = []
        for i in sorted(raw):
            probs, vad = self.smoother.update(ids[i], self._n, *raw[i])
            persons.append(self._person(i, ids[i], boxes[i], dets, probs, vad, keypoints))
        self.smoother.forget_stale(self._n)
        for tid in [t for t, c in self._tracks.items() if self._n - c[0] > self.smoother.config.max_age]:
            del self._tracks[tid]
        self.times.add("smooth", time.perf_counter() - t2)
        self.counts["frames"] += 1
        self._n += 1
        return FrameResult(index, time_s, image, dets, persons, sorted(raw))

    def _person(self, i, tid, box, dets, probs, vad, keypoints) -> dict:
        kp = None
        if keypoints is not None and len(keypoints) > i:
            kp = [[round(float(x), 1), round(float(y), 1), round(float(c), 3)] for x, y, c in keypoints[i]]
        score = float(dets.confidence[i]) if dets.confidence is not None else 1.0
        return {
            "track_id": tid,
            "box": [round(float(v), 1) for v in box],
            "score": round(score, 4),
            **emotion_fields(probs, vad, self.config.top_k),
            "keypoints": kp,
        }
